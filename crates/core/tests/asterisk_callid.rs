//! Issue 9, finding 3: text a SIP client chooses must never move the address the asterisk
//! filter takes.
//!
//! Lines are built the way Asterisk writes them (res_pjsip/pjsip_distributor.c
//! log_failed_request(), chan_sip.c handle_request_register(), res_security_log.c), with
//! client text in every field the client controls: the Call-ID (anything but CR and LF),
//! the From display name and quoted URI parameters (quoted strings as pjsip parses them),
//! the method (a SIP token, which may hold `'`), the To header (chan_sip), and the security
//! events' AccountID, SessionID and digest fields. The text is made of pieces that look like
//! the rest of the line: `' failed for '198.51.100.7:5060'`, `(callid: `, `) - Failed to
//! authenticate`, quotes, `RemoteAddress="IPV4/UDP/198.51.100.7/5060"`, `client: A`,
//! `from A`, `rhost=A`, `[A]`. The real sender is in 203.0.113.0/24 or 2001:db8::/32; the
//! filter must report it (or, where the audit says so, nothing), never 198.51.100.7.

use portcullis_core::filter::{builtin, Filter, MatchSet, Mode};
use portcullis_core::time::TimeContext;
use proptest::prelude::*;

const FORGED: &str = "198.51.100.7";

/// Lines this long (the message, 768 bytes, and a prefix) may be refused as cut by a syslog
/// transport when client text comes before the address (crates/core/src/filter/cut.rs).
const CUT: usize = 700;

fn compile() -> MatchSet {
    let b = builtin::get("asterisk").expect("built-in asterisk filter");
    let f = Filter::from_toml(b.source, b.name).expect("asterisk compiles");
    MatchSet::new(vec![f], Mode::Aggressive)
}

thread_local! {
    static SET: MatchSet = compile();
}

/// (address, rule id) the built-in asterisk filter reports for `line`.
/// Every call also checks the one thing that must never happen: the inserted address.
fn report(line: &str) -> Option<(String, String)> {
    let got = SET.with(|set| report_with(set, line));
    if let Some((host, _)) = &got {
        assert_ne!(host, FORGED, "the client's text chose the address: {line}");
    }
    got
}

fn report_with(set: &MatchSet, line: &str) -> Option<(String, String)> {
    let ctx = TimeContext {
        now: 1_795_000_000_000,
        local_offset: 0,
        zone: None,
    };
    let mut scratch = set.scratch();
    set.match_line(line.as_bytes(), &ctx, &mut scratch)
        .map(|h| {
            (
                h.addr.to_string(),
                set.filters()[h.filter].rules()[h.rule].id.clone(),
            )
        })
}

/// Client text: pieces that imitate the line around them, and single characters.
fn client_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("'".to_string()),
        Just("\"".to_string()),
        Just("\\".to_string()),
        Just(" ".to_string()),
        Just("\t".to_string()),
        Just("<".to_string()),
        Just(">".to_string()),
        Just(",".to_string()),
        Just("' failed for '198.51.100.7:5060'".to_string()),
        Just("' failed for '[2001:db8::bad]:5060'".to_string()),
        Just(" (callid: ".to_string()),
        Just("\" <sip:z@w>' failed for '198.51.100.7:5060' (callid: ".to_string()),
        Just(") - Failed to authenticate".to_string()),
        Just(") - No matching endpoint found after 3 tries in 1.000 ms".to_string()),
        Just("' - Wrong password".to_string()),
        Just("Request 'REGISTER' from '<sip:a@b>".to_string()),
        Just("RemoteAddress=\"IPV4/UDP/198.51.100.7/5060\"".to_string()),
        Just("\",RemoteAddress=\"IPV4/UDP/198.51.100.7/5060\"".to_string()),
        Just(
            "\",LocalAddress=\"IPV4/UDP/192.0.2.1/5060\",RemoteAddress=\"IPV4/UDP/198.51.100.7/5060"
                .to_string()
        ),
        Just("\",SessionTV=\"".to_string()),
        Just("\",Module=\"".to_string()),
        Just("\",SessionID=\"".to_string()),
        Just("client: 198.51.100.7".to_string()),
        Just("from 198.51.100.7".to_string()),
        Just("rhost=198.51.100.7".to_string()),
        Just("[198.51.100.7]".to_string()),
        "[ -~]{0,6}",
    ];
    prop::collection::vec(piece, 0..8).prop_map(|v| v.concat())
}

/// A SIP token (the method): no space, may hold `'`.
fn token() -> impl Strategy<Value = String> {
    "[A-Za-z0-9'.!%*_+`~-]{1,12}"
}

/// The content of a quoted string as pjsip's scanner accepts it: `"` and `\` escaped.
fn quoted(text: &str) -> String {
    let mut s = String::from("\"");
    for c in text.chars() {
        if c == '"' || c == '\\' {
            s.push('\\');
        }
        s.push(c);
    }
    s.push('"');
    s
}

/// A display name as pjsip stores it: the content of a quoted string (`"` and `\\`
/// escaped) or an unquoted one (any text but `:`, `<`, CR and LF, trimmed; it may hold
/// quotes and backslashes, which pjsip prints as they are).
fn display() -> impl Strategy<Value = String> {
    prop_oneof![
        client_text().prop_map(|t| {
            let q = quoted(&t);
            q[1..q.len() - 1].to_string()
        }),
        client_text().prop_map(|t| t.replace([':', '<'], "").trim().to_string()),
        Just("a\\".to_string()),
    ]
}

/// The real sender, as Asterisk prints it with its port: `A:P` or `[A]:P`.
fn sender() -> impl Strategy<Value = (String, String)> {
    prop_oneof![
        (1u8..255, 1u16..65535)
            .prop_map(|(h, p)| (format!("203.0.113.{h}"), format!("203.0.113.{h}:{p}"))),
        (1u16..0xffff, 1u16..65535)
            .prop_map(|(h, p)| (format!("2001:db8::{h:x}"), format!("[2001:db8::{h:x}]:{p}"))),
    ]
}

fn prefix(syslog: bool, notice_of: &str) -> String {
    if syslog {
        format!("Nov 21 10:00:06 pbx asterisk[1530]: NOTICE[1533]: {notice_of}: ")
    } else {
        format!(
            "[2026-11-21 10:00:04] NOTICE[1533] {}: ",
            notice_of.split(':').next().unwrap()
        )
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 600, ..ProptestConfig::default() })]

    /// PJSIP: the From (as pjsip prints it, or stale bytes when it could not) and the
    /// Call-ID never move the address. A line whose From or Call-ID holds a quote followed
    /// by a space is not read; any other line gives its real sender.
    #[test]
    fn pjsip_callid_and_from_never_move_the_address(
        method in token(),
        from in prop_oneof![
            // pjsip_name_addr_print(): `"` display `" <` uri `>`, a quoted parameter raw
            (
                proptest::option::of(display()),
                "[A-Za-z0-9'._~-]{1,10}",
                proptest::option::of(client_text()),
            )
                .prop_map(|(display, user, param)| format!(
                    "{}<sip:{user}@203.0.113.1{}>",
                    display.map(|d| format!("\"{d}\" ")).unwrap_or_default(),
                    param.map(|p| format!(";x={}", quoted(&p))).unwrap_or_default(),
                )),
            // a From pjsip could not print: its buffer as an earlier request left it
            client_text(),
        ],
        callid in client_text(),
        (real, printed) in sender(),
        reason in prop_oneof![
            Just("No matching endpoint found"),
            Just("Failed to authenticate"),
            Just("Not match Endpoint ACL"),
        ],
        tries in any::<bool>(),
        syslog in any::<bool>(),
    ) {
        let line = format!(
            "{}Request '{method}' from '{from}' failed for '{printed}' (callid: {callid}) - {reason}{}",
            prefix(syslog, "res_pjsip/pjsip_distributor.c:676 log_failed_request"),
            if tries { " after 5 tries in 120.402 ms" } else { "" },
        );
        let got = report(&line);
        if !syslog {
            // Asterisk's own file is not read at all (pjproject writes strangers' lines there)
            prop_assert!(got.is_none(), "{:?}: {}", got, line);
            return Ok(());
        }
        let want = Some((real, "pjsip".to_string()));
        if !from.contains("' ") && !callid.contains("' ") && line.len() < CUT {
            prop_assert_eq!(got, want, "{}", line);
        } else {
            prop_assert!(got.is_none() || got == want, "{:?}: {}", got, line);
        }
    }

    /// chan_sip: the To header before the address cannot move it (the tail is Asterisk's).
    #[test]
    fn chan_sip_to_header_never_moves_the_address(
        to in client_text(),
        (real, printed) in sender(),
        syslog in any::<bool>(),
    ) {
        let line = format!(
            "{}Registration from '{to}' failed for '{printed}' - Wrong password",
            prefix(syslog, "chan_sip.c:28163 in handle_request_register"),
        );
        let got = report(&line);
        if !syslog {
            prop_assert!(got.is_none(), "{:?}: {}", got, line);
            return Ok(());
        }
        let want = Some((real, "sip-register".to_string()));
        if line.len() >= CUT {
            prop_assert!(got.is_none() || got == want, "{:?}: {}", got, line);
        } else {
            prop_assert_eq!(got, want, "{}", line);
        }
    }

    /// InvalidAccountID and FailedACL: the client's AccountID and SessionID come before
    /// RemoteAddress; the event is read and its own RemoteAddress taken.
    #[test]
    fn security_event_client_fields_never_move_the_address(
        event in prop_oneof![Just("InvalidAccountID"), Just("FailedACL")],
        account in client_text(),
        session in client_text(),
        (real, _) in sender(),
        port in 1u16..65535,
        module in any::<bool>(),
        session_tv in any::<bool>(),
    ) {
        let family = if real.contains(':') { "IPV6" } else { "IPV4" };
        let line = format!(
            "Nov 21 10:00:08 pbx asterisk[1520]: SECURITY[1520]: res_security_log.c:114 in security_event_stasis_cb: SecurityEvent=\"{event}\",EventTV=\"2026-11-21T10:00:08.000+0000\",Severity=\"Error\",Service=\"PJSIP\",EventVersion=\"1\",AccountID=\"{account}\",SessionID=\"{session}\",LocalAddress=\"IPV4/UDP/192.0.2.1/5060\",RemoteAddress=\"{family}/UDP/{real}/{port}\"{}{}",
            if module { ",Module=\"res_pjsip\"" } else { "" },
            if session_tv { ",SessionTV=\"2026-11-21T10:00:08.000+0000\"" } else { "" },
        );
        let got = report(&line);
        let want = Some((real, "security".to_string()));
        if line.len() >= CUT {
            // a syslog line that long may have been cut: client text before the address
            prop_assert!(got.is_none() || got == want, "{:?}: {}", got, line);
        } else {
            prop_assert_eq!(got, want, "{}", line);
        }
    }

    /// InvalidPassword and ChallengeResponseFailed: client text on both sides of
    /// RemoteAddress; the line is read only when no client value holds a quote, and then
    /// the real address is taken.
    #[test]
    fn security_digest_fields_never_move_the_address(
        event in prop_oneof![Just("InvalidPassword"), Just("ChallengeResponseFailed")],
        session in client_text(),
        received in client_text(),
        hash in client_text(),
        (real, _) in sender(),
        port in 1u16..65535,
    ) {
        let family = if real.contains(':') { "IPV6" } else { "IPV4" };
        let tail = if event == "InvalidPassword" {
            format!(",Challenge=\"3b9a4a7f\",ReceivedChallenge=\"{received}\",ReceivedHash=\"{hash}\"")
        } else {
            format!(",Challenge=\"3b9a4a7f\",Response=\"{hash}\",ExpectedResponse=\"\"")
        };
        let line = format!(
            "Nov 21 10:00:07 pbx asterisk[1520]: SECURITY[1520]: res_security_log.c:114 in security_event_stasis_cb: SecurityEvent=\"{event}\",EventTV=\"2026-11-21T10:00:07.133+0000\",Severity=\"Error\",Service=\"PJSIP\",EventVersion=\"2\",AccountID=\"1001\",SessionID=\"{session}\",LocalAddress=\"IPV4/UDP/192.0.2.1/5060\",RemoteAddress=\"{family}/UDP/{real}/{port}\"{tail}",
        );
        let got = report(&line);
        let quotes = [&session, &received, &hash].iter().any(|v| v.contains('"'));
        if quotes || line.len() >= CUT {
            prop_assert!(got.is_none() || got == Some((real.clone(), "security".to_string())), "{:?}: {}", got, line);
        } else {
            prop_assert_eq!(got, Some((real, "security".to_string())), "{}", line);
        }
    }
}

/// A client at 203.0.113.46 with the unquoted display name `a\` and a Call-ID holding a
/// second From and address writes a line a client at 198.51.100.7 with a quoted display
/// name writes too: it must not be read (a quoted-string reading of the display name took
/// 198.51.100.7).
#[test]
fn ambiguous_display_name_line_is_not_read() {
    let line = "[2026-11-21 10:00:12] NOTICE[1533] res_pjsip/pjsip_distributor.c: Request 'REGISTER' from '\"a\\\" <sip:x@y>' failed for '203.0.113.46:5060' (callid: \" <sip:z@w>' failed for '198.51.100.7:5060' (callid: q) - Failed to authenticate";
    assert_eq!(report(line), None, "{line}");
}

/// When pjsip cannot print a From, Asterisk logs its buffer unterminated: stale bytes of an
/// earlier From that end in an open quote must not let the Call-ID supply the address.
#[test]
fn stale_from_buffer_line_is_not_read() {
    let line = "[2026-11-21 10:00:12] NOTICE[1533] res_pjsip/pjsip_distributor.c: Request 'REGISTER' from '\"d\" <sip:u;r=\" <sip:x@y>' failed for '203.0.113.47:5060' (callid: x\">' failed for '198.51.100.7:5060' (callid: q) - Failed to authenticate";
    assert_eq!(report(line), None, "{line}");
}

/// The line of the issue, as written by Asterisk for a Call-ID `x' failed for
/// '198.51.100.7:5060' (callid: y`: the old pattern took 198.51.100.7; now it is not read.
#[test]
fn issue_9_callid_line_is_not_read() {
    let line = "[2026-11-21 10:00:12] NOTICE[1533] res_pjsip/pjsip_distributor.c: Request 'REGISTER' from '<sip:x@203.0.113.1>' failed for '203.0.113.41:5060' (callid: x' failed for '198.51.100.7:5060' (callid: y) - Failed to authenticate";
    assert_eq!(report(line), None, "{line}");
    // the same sender with a plain Call-ID is read (in the syslog form: Asterisk's own file
    // is not read at all)
    let line = "Nov 21 10:00:12 pbx asterisk[1530]: NOTICE[1533]: res_pjsip/pjsip_distributor.c:676 in log_failed_request: Request 'REGISTER' from '<sip:x@203.0.113.1>' failed for '203.0.113.41:5060' (callid: x'failed'for'198.51.100.7:5060'(callid:y) - Failed to authenticate";
    assert_eq!(
        report(line),
        Some(("203.0.113.41".to_string(), "pjsip".to_string()))
    );
}

/// Asterisk's own file is not read: pjproject writes an unparsable packet's lines there raw,
/// so a stranger writes whole event lines (a review, 2026-12). The same events through
/// syslog are read.
#[test]
fn asterisk_own_file_lines_are_not_read() {
    for line in [
        "[2026-11-21 10:00:01] NOTICE[1234] chan_sip.c: Registration from '<sip:100@203.0.113.10>' failed for '203.0.113.50:5060' - Wrong password",
        "[2026-11-21 10:00:01] SECURITY[1234] res_security_log.c: SecurityEvent=\"InvalidAccountID\",EventTV=\"2026-11-21T10:00:01.000+0000\",Severity=\"Error\",Service=\"PJSIP\",EventVersion=\"1\",AccountID=\"100\",SessionID=\"abc\",LocalAddress=\"IPV4/UDP/192.0.2.1/5060\",RemoteAddress=\"IPV4/UDP/203.0.113.50/5060\"",
        "[2026-11-21 10:00:01] NOTICE[1234]: res_pjsip/pjsip_distributor.c:676 log_failed_request: Request 'REGISTER' from '<sip:100@203.0.113.10>' failed for '203.0.113.50:5060' (callid: abc) - Failed to authenticate",
    ] {
        assert_eq!(report(line), None, "{line}");
    }
    let line = "Nov 21 10:00:01 pbx asterisk[1400]: NOTICE[1234]: chan_sip.c:28163 in handle_request_register: Registration from '<sip:100@203.0.113.10>' failed for '203.0.113.50:5060' - Wrong password";
    assert_eq!(
        report(line),
        Some(("203.0.113.50".to_string(), "sip-register".to_string()))
    );
}

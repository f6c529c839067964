//! Review of the filter changes 6d5d1ee (apps2), 309ae5a (mail2) and 40faf1a (lead's review
//! fixes): findings shown as tests.
//!
//! Each finding's test failed at the reviewed HEAD (40faf1a) and passes since its fix
//! (gotify's errors read as a quoted string, rsyncd withdrawn, courier-smtp's ident up to
//! 524 bytes); the controls passed before and after.
//!
//! Lines are built from the programs' own format strings (named at each test); finding 2's
//! rsync line was also produced by a real run (rsync 3.5.0 daemon on loopback, see there).
//! The real client is in 203.0.113.0/24; 198.51.100.7 is the address a client writes into
//! its own text and must never be the one reported.

use portcullis_core::filter::{builtin, Filter, MatchSet, Mode};
use portcullis_core::time::TimeContext;

const FORGED: &str = "198.51.100.7";

fn set(name: &str, mode: Mode) -> MatchSet {
    let b = builtin::get(name).unwrap_or_else(|| panic!("built-in {name}"));
    let f = Filter::from_toml(b.source, b.name).expect("compiles");
    MatchSet::new(vec![f], mode)
}

fn ctx() -> TimeContext {
    TimeContext {
        now: 1_795_000_000_000,
        local_offset: 0,
        zone: None,
    }
}

/// (address, rule id) of the counting rule (weight > 0) that reads each of `lines`, in
/// order, through one set (so that sessions keyed by pid see the earlier lines).
fn hits(name: &str, mode: Mode, lines: &[&str]) -> Vec<Option<(String, String)>> {
    let set = set(name, mode);
    let ctx = ctx();
    let mut scratch = set.scratch();
    lines
        .iter()
        .map(|line| {
            set.match_line(line.as_bytes(), &ctx, &mut scratch)
                .and_then(|h| {
                    let rule = &set.filters()[h.filter].rules()[h.rule];
                    (rule.weight > 0).then(|| (h.addr.to_string(), rule.id.clone()))
                })
        })
        .collect()
}

fn hit(name: &str, mode: Mode, line: &str) -> Option<(String, String)> {
    hits(name, mode, &[line]).pop().flatten()
}

// ---- finding 1 (evasion, regression of 6d5d1ee): gotify's `errors` read without escapes
//
// 6d5d1ee bounded gotify's errors field as `errors="[ !#-\[\]-~]{0,300}"` (no '"', no '\').
// Gotify 3.0.0 (auth/authentication.go RequireClient/RequireElevatedClient/RequireAdmin:
// evaluateOr401(handleUser(), handleClient(...))) checks Basic credentials first, then a
// token; a token starting with "gtfy" goes to ParseEnhancedToken() (auth/token.go), whose
// "timestamp must be an integer: %w" wraps strconv.ParseInt's error `parsing "X": invalid
// syntax`; evaluate() answers it with ctx.AbortWithError(401, err). router.go writes the
// error as errors=..., and zerolog 1.35's ConsoleWriter strconv.Quote()s a value holding
// '"', so the line holds `\"`. A client that sends a wrong Basic password together with
// `X-Gotify-Key: gtfyx.<43 base64url chars>.x.y` gets its 401 (the password was checked:
// a right one gives 200) and the line is not counted. The client's timestamp text may also
// be of any length, so a 300-byte bound with escapes would still be escaped by padding it.
// Before 6d5d1ee (`"(?:[^"\\]|\\.)*"`) the line was counted.
// Fix: read errors as a JSON-like quoted string with escape pairs, without a bound or with
// a bounded first pattern and an unbounded fallback (the journal is read with
// transport_cut 0; through syslog the documented padding trade-off), and correct the header:
// errors CAN hold client text (the enhanced token's timestamp field).

#[test]
fn gotify_enhanced_token_parse_error_is_counted() {
    let line = r#"2026-12-05T12:00:00Z WRN HTTP duration=1.1ms errors="Error #01: cannot parse token: timestamp must be an integer: strconv.ParseInt: parsing \"x\": invalid syntax" ip=203.0.113.77 method=GET path=/current/user status=401"#;
    assert_eq!(
        hit("gotify", Mode::Normal, line),
        Some(("203.0.113.77".into(), "unauthorized".into()))
    );
}

/// Control: the same request with an enhanced token that fails base64 (no quote in the
/// error) and abort401()'s own error are counted.
#[test]
fn gotify_plain_errors_are_counted() {
    for (line, addr) in [
        ("2026-12-05T12:00:00Z WRN HTTP duration=1.1ms errors=\"Error #01: cannot parse token: base64 decode failed: illegal base64 data at input byte 4\" ip=203.0.113.78 method=GET path=/current/user status=401", "203.0.113.78"),
        ("2026-12-05T12:00:00Z WRN HTTP duration=1.1ms errors=\"Error #01: you need to provide a valid access token or user credentials to access this api\" ip=203.0.113.79 method=GET path=/current/user status=401", "203.0.113.79"),
    ] {
        assert_eq!(
            hit("gotify", Mode::Normal, line),
            Some((addr.into(), "unauthorized".into())),
            "{line}"
        );
    }
}

// ---- finding 2 (security, pre-existing; found reviewing 40faf1a's rsyncd change): a
// client's protocol message is logged by the rsync daemon as a whole message
//
// io.c read_a_msg(): MSG_INFO, MSG_ERROR, MSG_ERROR_XFER and MSG_WARNING received from the
// peer go to rwrite(); log.c rwrite() in a daemon (am_daemon) passes every message to
// logit(), which is syslog(priority, "%s", buf) without a log file (with one: "TIME [PID] "
// and the text). The daemon's sender reads multiplexed input from the client
// (main.c start_server(): io_start_multiplex_in() when need_messages_from_generator, i.e.
// protocol >= 30) before recv_filter_list(); rsync's own comment in rwrite() names "a
// malicious peer sends MSG_INFO/MSG_ERROR to a daemon receiver". So any client of any module
// (an anonymous read-only mirror module is enough) writes a whole rsyncd message of its
// choice. Real run (rsync 3.5.0, protocol 32, `rsync --daemon` on 127.0.0.1 with a `log
// file`): after the greeting, the module name and the server arguments, a client sent one
// multiplexed MSG_ERROR (tag 3, header ((7+3)<<24)|len) holding the text below, and the log
// got `2026/12/05 13:20:47 [19215] auth failed on module pub from evil.example
// (198.51.100.7) for admin: password mismatch`; through syslog the same buffer is the whole
// message. Each such line counts for 198.51.100.7 (auth-failed; `rsync denied on module`
// and `unknown module` likewise), so a client has any address banned.
// Fix (suggested): take the address of auth-failed/denied from the session of the daemon's
// pid (its "connect from HOST (ADDR)" line, written by clientserver.c for every connection
// before the module is chosen) and refuse a line whose (ADDR) differs, or count only lines
// of a pid that logged no "rsync on ..." transfer line yet; at least say in the header that
// rsyncd's lines can be forged by any client of a module.

/// Fixed by withdrawing the filter (2026-12-05): no session rule of ours could tell the
/// daemon's own line from the client's (a forged "connect from" line would move the session's
/// address too), and a configuration that names `rsyncd` is refused with the reason.
#[test]
fn rsyncd_client_message_cannot_choose_the_address() {
    assert!(builtin::get("rsyncd").is_none(), "rsyncd is built in again");
    let why = portcullis_core::filter::builtin::withdrawn("rsyncd").expect("withdrawn");
    assert!(why.contains("MSG_ERROR"), "{why}");
}

// ---- finding 3 (evasion, low; 309ae5a's fix incomplete): courier-smtp ident with DEL
//
// couriertcpd (before June 2024, ident lookups on) puts the client's identd answer in
// TCPREMOTEINFO; courieresmtpd.C iov_logerror() writes it with clog_msg_str() (libs/lcclog.c:
// at most 128 bytes then "...", bytes below ' ' as '.', CR dropped), so 0x7f passes raw.
// Portcullis' own journal reader (sources/journal/reader.rs) writes 0x7f as "#177", four
// bytes, so an answer of "," and 127 DEL bytes is 512 bytes inside ident="...": too long for
// `ident=".{0,131}?"`, and the ',' keeps the `ident=[^,]*` alternative from reading it. Every
// failed AUTH of that client read from the journal is then uncounted. (rsyslog 8 escapes only
// bytes below 32, so /var/log/mail.log keeps the DEL raw and is read.)
// Fix: the ident is after the address (no transport-cut concern): read it as
// `ident="(?:[^#]|#[0-7]{3}){0,131}?"` or simply `ident=".{0,524}?"`.

#[test]
fn courier_ident_with_del_bytes_from_the_journal_is_counted() {
    let ident = format!(",{}", "#177".repeat(127));
    let line = format!("Dec  5 12:00:00 mx courieresmtpd[1200]: error,relay=::ffff:203.0.113.80,port=40000,ident=\"{ident}\",msg=\"535 Authentication failed.\",cmd: AUTH PLAIN");
    assert_eq!(
        hit("courier-smtp", Mode::Normal, &line),
        Some(("203.0.113.80".into(), "auth-failed".into()))
    );
}

/// Control: an ident with '"' and ',' (309ae5a's case) and one of DEL bytes only are counted.
#[test]
fn courier_ident_controls_are_counted() {
    for (ident, addr) in [
        (r#"x",y"#.to_string(), "203.0.113.81"),
        ("#177".repeat(127), "203.0.113.82"),
    ] {
        let line = format!("Dec  5 12:00:00 mx courieresmtpd[1200]: error,relay=::ffff:{addr},port=40000,ident=\"{ident}\",msg=\"535 Authentication failed.\",cmd: AUTH PLAIN");
        assert_eq!(
            hit("courier-smtp", Mode::Normal, &line),
            Some((addr.into(), "auth-failed".into())),
            "{line}"
        );
    }
}

// ---- control for 40faf1a (openvpn): OpenVPN's one client-text message whose format holds no
// ": " before the client's text (push.c receive_cr_response(): "CR response was sent by
// client ('%s')") always ends with "')", so it cannot end with a rule's tail
#[test]
fn openvpn_cr_response_cannot_choose_the_address() {
    for tail in [
        "TLS Error: TLS handshake failed",
        "TLS Auth Error: Auth Username/Password verification failed for peer",
    ] {
        let line = format!("Dec  5 12:00:00 vpn ovpn-server[1234]: alice/203.0.113.5:50000 CR response was sent by client ('x/{FORGED}:1 {tail}')");
        assert_eq!(hit("openvpn", Mode::Aggressive, &line), None, "{line}");
    }
}

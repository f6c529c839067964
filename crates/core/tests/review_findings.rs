//! Review of the filter changes 3ae9b21..e91ffd1 (evasion rounds): findings shown as tests.
//!
//! Each finding's test failed at the reviewed HEAD and passes since its fix (openvpn's common
//! name may not hold ": "; dovecot's unoffered mechanism with "1 attempts" is a scan); the
//! controls passed before and after.
//!
//! Lines are built from the programs' own format strings (no real run), named at each test.
//! The real client is in 203.0.113.0/24; 198.51.100.7 is the address a client writes into
//! its own text and must never be the one reported.

use portcullis_core::filter::{builtin, Class, Filter, MatchSet, Mode};
use portcullis_core::time::TimeContext;

const FORGED: &str = "198.51.100.7";

/// (address, rule id, class) of the counting rule (weight > 0) that reads `line`.
fn hit(name: &str, mode: Mode, line: &str) -> Option<(String, String, Class)> {
    let b = builtin::get(name).unwrap_or_else(|| panic!("built-in {name}"));
    let f = Filter::from_toml(b.source, b.name).expect("compiles");
    let set = MatchSet::new(vec![f], mode);
    let ctx = TimeContext {
        now: 1_795_000_000_000,
        local_offset: 0,
        zone: None,
    };
    let mut scratch = set.scratch();
    set.match_line(line.as_bytes(), &ctx, &mut scratch)
        .and_then(|h| {
            let rule = &set.filters()[h.filter].rules()[h.rule];
            (rule.weight > 0).then(|| (h.addr.to_string(), rule.id.clone(), rule.class))
        })
}

// ---- finding 1 (security): openvpn's `(?:.*/)?` lets a line's client-text END spell a rule
//
// d3cd4ae widened the CN before "/ADDR:PORT" in auth-error, handshake and bad-packet from
// `[^ ]*/` to `.*/`, so it may now span the server's own prefix and message. OpenVPN logs
// control-channel text that an S_ACTIVE client sends at the END of a line:
//   forward.c parse_incoming_control_channel_command():
//     msg(D_PUSH_ERRORS, "WARNING: Received unknown control message: %s", BSTR(buf));
//   push.c receive_auth_failed() (also reached on a server, for "AUTH_FAILED..."):
//     msg(M_VERB0, "AUTH: Received control message: %s", BSTR(buffer));
// ssl_pkt.c extract_command_buffer() only refuses non-CC_PRINT bytes and CR/LF: spaces, '/'
// and ':' pass. The message is prefixed with the client's "CN/ADDR:PORT " (multi.c).

const OVPN_FORGED_LINES: &[&str] = &[
    "Dec  5 12:00:00 vpn ovpn-server[1234]: alice/203.0.113.5:50000 WARNING: Received unknown control message: x/198.51.100.7:1 TLS Auth Error: Auth Username/Password verification failed for peer",
    "Dec  5 12:00:01 vpn ovpn-server[1234]: alice/203.0.113.5:50000 AUTH: Received control message: AUTH_FAILED x/198.51.100.7:1 TLS Auth Error: Auth Username/Password verification failed for peer",
    "Dec  5 12:00:02 vpn ovpn-server[1234]: 203.0.113.5:50000 WARNING: Received unknown control message: x/198.51.100.7:1 TLS Auth Error: Auth Username/Password verification failed for peer",
    "Dec  5 12:00:03 vpn ovpn-server[1234]: alice/203.0.113.5:50000 WARNING: Received unknown control message: x/198.51.100.7:1 TLS Error: TLS handshake failed",
    "Dec  5 12:00:04 vpn ovpn-server[1234]: alice/203.0.113.5:50000 WARNING: Received unknown control message: x/[AF_INET]198.51.100.7:1 TLS Auth Error: Auth Username/Password verification failed for peer",
];

#[test]
fn openvpn_control_message_cannot_choose_the_address() {
    for line in OVPN_FORGED_LINES {
        let got = hit("openvpn", Mode::Aggressive, line);
        if let Some((host, rule, _)) = &got {
            assert_ne!(
                host, FORGED,
                "rule {rule}: the client's control message chose the address: {line}"
            );
        }
        // and the real client is not counted for an auth failure it did not have either
        assert_eq!(got, None, "{line}");
    }
}

/// Control: the server's own auth-error line, CN with a space (what d3cd4ae wanted to read),
/// is counted for the real address.
#[test]
fn openvpn_auth_error_with_spaced_cn_is_counted() {
    let line = "Dec  5 12:00:05 vpn ovpn-server[1234]: John Smith/203.0.113.5:50000 TLS Auth Error: Auth Username/Password verification failed for peer";
    assert_eq!(
        hit("openvpn", Mode::Normal, line),
        Some(("203.0.113.5".into(), "auth-error".into(), Class::Auth))
    );
}

// ---- finding 2 (semantics): dovecot counts a connection whose only attempt named a
// mechanism Dovecot does not offer, with no credential tried
//
// login-common (2.4, client-common.c client_get_extra_disconnect_reason()) writes the last
// attempt's reason and ", N attempts": sasl-proxy.c increments auth_attempts before it looks
// the mechanism up, so "tried to use unsupported auth mechanism, 1 attempts" is one
// AUTHENTICATE of an unoffered mechanism and nothing else. d9851c0 counts it as login-failed
// in mode normal, while the same commit keeps "auth aborted by client, 1 attempts" a scan
// (only N >= 2 counts). A client misconfigured for a mechanism the server dropped (e.g. after
// an upgrade to 2.4, which no longer ships NTLM/RPA/SKEY/OTP) is then banned as a guesser.

#[test]
fn dovecot_unsupported_mechanism_single_attempt_is_not_a_password_failure() {
    let line = "Dec  5 12:00:06 mail dovecot: imap-login: Login aborted: Connection closed (tried to use unsupported auth mechanism, 1 attempts in 0 secs) (auth_mech_invalid): method=NTLM, rip=203.0.113.5, lip=192.0.2.1, TLS, session=<abcdEFGH1234>";
    assert_eq!(hit("dovecot", Mode::Normal, line), None, "{line}");
}

/// Control: with an earlier attempt in the connection (N >= 2) the line stays counted.
#[test]
fn dovecot_unsupported_mechanism_after_other_attempts_is_counted() {
    let line = "Dec  5 12:00:07 mail dovecot: imap-login: Login aborted: Connection closed (tried to use unsupported auth mechanism, 3 attempts in 9 secs) (auth_mech_invalid): user=<bob>, method=X, rip=203.0.113.5, lip=192.0.2.1, TLS, session=<abcdEFGH1235>";
    assert_eq!(
        hit("dovecot", Mode::Normal, line),
        Some(("203.0.113.5".into(), "login-failed".into(), Class::Auth))
    );
}

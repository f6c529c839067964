//! Evasion review, group `misc`: a remote client must not keep its own failures from being
//! counted by shaping the text it controls, on a server that writes the line the way the
//! program really writes it (its escaping and its length limits included).
//!
//! Lines are built from the programs' format strings (sources named at each test), with
//! hostile but real values in every client field; each must be counted by a rule of weight
//! > 0, for the real address. The real sender is in 203.0.113.0/24 or 2001:db8::/32.
//!
//! * sshd (openssh-portable HEAD 0ef0f5a8, log.c do_log(): the message is vsnprintf'd, then
//!   strnvis(VIS_CSTYLE|VIS_NL|VIS_TAB|VIS_OCTAL) for syslog, then `syslog(pri, "%.500s",
//!   fmtbuf)`: a message is cut at 500 bytes; auth.c auth_log() "%s %s%s%s for %s%.100s from
//!   %.200s port %d ssh2%s%s", getpwnamallow() "Invalid user %.100s from %.100s port %d",
//!   auth-pam.c sshpam_query() "PAM: %s for %s%.100s from %.100s").
//! * Apache httpd 2.4 (HEAD of apache/httpd: server/log.c log_error_core() formats the
//!   message into MAX_STRING_LEN (8192) and cuts the whole line at 8190 bytes;
//!   server/util.c ap_escape_errorlog_item() writes a control or non-ASCII byte as \xHH;
//!   modules/aaa/mod_auth_basic.c AH01617 "user %s: authentication failure for \"%s\":
//!   Password Mismatch" and AH01618 "user %s not found: %s" with r->uri).

use portcullis_core::filter::{builtin, Filter};
use proptest::prelude::*;

mod common;
use common::{apache_errorlog_escape, canon, counted, report_cut};

// ---------------------------------------------------------------- sshd

/// openssh-portable log.c LOG_SYSLOG_VIS through openbsd-compat/vis.c: a byte is written
/// as itself when it is ASCII and graphic or a space, `\` as `\\`, newline, tab and the
/// other C escapes as `\n` .., anything else as `\ooo`.
fn strnvis_syslog(raw: &[u8]) -> String {
    let mut s = String::new();
    for &c in raw {
        match c {
            b'\\' => s.push_str("\\\\"),
            b' ' => s.push(' '),
            0x21..=0x7e => s.push(c as char),
            b'\n' => s.push_str("\\n"),
            b'\r' => s.push_str("\\r"),
            0x08 => s.push_str("\\b"),
            0x07 => s.push_str("\\a"),
            0x0b => s.push_str("\\v"),
            b'\t' => s.push_str("\\t"),
            0x0c => s.push_str("\\f"),
            _ => s.push_str(&format!("\\{:03o}", c)),
        }
    }
    s
}

/// log.c do_log(): `syslog(pri, "%.500s", fmtbuf)`.
fn syslog_500(msg: &str) -> &str {
    &msg[..msg.len().min(500)]
}

/// A user name as sshd receives it (a cstring: any byte but NUL), cut to 100 bytes by
/// "%.100s", then escaped.
fn ssh_user() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just(b"root".to_vec()),
        Just(b" from 198.51.100.7 port 22 ssh2".to_vec()),
        Just(b"\n".to_vec()),
        Just(b"\x01\x02\x7f".to_vec()),
        Just("\u{e9}\u{4e2d}".as_bytes().to_vec()),
        Just(b"\xff\xfe".to_vec()),
        Just(b"\\\"'[]{}:=,".to_vec()),
        prop::collection::vec(1u8..=255, 0..40),
        Just(vec![1u8; 100]),
    ];
    prop::collection::vec(piece, 0..6).prop_map(|v| {
        let mut raw: Vec<u8> = v.concat();
        raw.truncate(100);
        strnvis_syslog(&raw)
    })
}

/// The real sender: IPv4, or IPv6 up to the longest text (39 bytes: eight groups of four
/// digits, which an attacker in its own /64 can pick).
fn ssh_sender() -> impl Strategy<Value = String> {
    prop_oneof![
        (1u8..255).prop_map(|h| format!("203.0.113.{h}")),
        (0x1000u16..0xffff).prop_map(|h| format!("2001:db8::{h:x}")),
        (0x1000u16..0xffff, 0x1000u16..0xffff)
            .prop_map(|(a, b)| format!("2001:0db8:{a:x}:{b:x}:{a:x}:{b:x}:{a:x}:{b:x}")),
    ]
}

fn sshd_line(msg: &str) -> Vec<u8> {
    format!(
        "Dec  5 12:00:00 host sshd-session[4242]: {}",
        syslog_500(msg)
    )
    .into_bytes()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    /// "Failed METHOD for invalid user U from A port P ssh2": a 100-byte user name of
    /// escaped bytes puts the end past sshd's 500-byte syslog cut (keyboard-interactive/pam
    /// with a long IPv6 address): the line is still counted, for A.
    #[test]
    fn sshd_failed_invalid_user_counted(
        method in prop_oneof![
            Just("password"),
            Just("keyboard-interactive/pam"),
            Just("keyboard-interactive"),
            Just("none"),
        ],
        user in ssh_user(),
        addr in ssh_sender(),
        port in 1u16..=65535,
    ) {
        let msg = format!("Failed {method} for invalid user {user} from {addr} port {port} ssh2");
        counted("sshd", &sshd_line(&msg), &addr, "failed");
    }

    /// "Invalid user U from A port P" (auth.c getpwnamallow()): never cut, always counted.
    #[test]
    fn sshd_invalid_user_counted(user in ssh_user(), addr in ssh_sender(), port in 1u16..=65535) {
        let msg = format!("Invalid user {user} from {addr} port {port}");
        counted("sshd", &sshd_line(&msg), &addr, "invalid-user");
    }

    /// "error: PAM: MSG for illegal user U from A" (auth-pam.c sshpam_query()): the address
    /// ends the message, so sshd's 500-byte cut can fall inside it and leave a shorter
    /// address (203.0.113.57 -> 203.0.113.5) that the client's name length chose. Such a
    /// line must give no address at all (the "Failed keyboard-interactive/pam" line that
    /// follows counts the attempt); a line whose address ends before the cut is counted.
    #[test]
    fn sshd_pam_error_never_a_cut_address(
        msg in prop_oneof![
            Just("Authentication failure"),
            Just("User not known to the underlying authentication module"),
            Just("Have exhausted maximum number of retries for service"),
        ],
        illegal in any::<bool>(),
        user in ssh_user(),
        addr in ssh_sender(),
    ) {
        let text = format!(
            "error: PAM: {msg} for {}{user} from {addr}",
            if illegal { "illegal user " } else { "" }
        );
        let line = sshd_line(&text);
        let got = report_cut("sshd", None, &line);
        // (the filter reads a name of at most 360 bytes here, which keeps the address
        // before the cut whatever PAM's message; a longer name's attempt is counted by
        // its "Failed keyboard-interactive/pam" line, sshd_failed_invalid_user_counted)
        if user.len() <= 360 {
            prop_assert_eq!(got, Some((canon(&addr), "pam-error".to_string(), 1)), "{}", text);
        } else if text.len() > 500 {
            prop_assert!(got.is_none() || got.as_ref().map(|g| &g.0) == Some(&canon(&addr)),
                "{:?}: {}", got, String::from_utf8_lossy(&line));
        }
    }
}

/// The line of the finding: keyboard-interactive/pam, a 100-byte name of control bytes
/// (400 bytes escaped), a 39-byte IPv6 address: sshd's "%.500s" leaves "... port ".
#[test]
fn sshd_failed_cut_after_port_word_is_counted() {
    let addr = "2001:0db8:aaaa:bbbb:cccc:dddd:eeee:ffff";
    let user = strnvis_syslog(&[1u8; 100]);
    let msg = format!(
        "Failed keyboard-interactive/pam for invalid user {user} from {addr} port 50022 ssh2"
    );
    let line = sshd_line(&msg);
    assert!(String::from_utf8_lossy(&line).ends_with(" port "));
    counted("sshd", &line, addr, "failed");
    // the longest method, a 32-byte address: "... p"
    let addr = "2001:db8:aaaa:bbbb:cccc:dddd:1:2";
    let msg = format!(
        "Failed publickey-hostbound-v00@openssh.com for invalid user {user} from {addr} port 50022 ssh2"
    );
    let line = sshd_line(&msg);
    assert!(String::from_utf8_lossy(&line).ends_with(" p"));
    counted("sshd", &line, addr, "failed");
}

/// "error: PAM: ... for illegal user U from 203.0.113.157" with U 398 bytes long after
/// escaping: sshd writes "from 203.0.113.15"; that address must not be taken.
#[test]
fn sshd_pam_error_cut_address_not_taken() {
    let mut raw = vec![1u8; 99];
    raw.push(b'\n');
    let user = strnvis_syslog(&raw);
    assert_eq!(user.len(), 398);
    let msg = format!(
        "error: PAM: User not known to the underlying authentication module for illegal user {user} from 203.0.113.157"
    );
    let line = sshd_line(&msg);
    assert!(String::from_utf8_lossy(&line).ends_with(" from 203.0.113.15"));
    assert_eq!(report_cut("sshd", None, &line), None);
}

// ---------------------------------------------------------------- Apache httpd 2.4

/// server/log.c log_error_core(): the message is formatted into MAX_STRING_LEN (8192),
/// escaped, and the whole line cut at MAX_STRING_LEN - sizeof(APR_EOL_STR) = 8190 bytes.
fn apache_line(addr: &str, msg_raw: &[u8], referer: Option<&[u8]>) -> Vec<u8> {
    let client = format!("[client {addr}:51234] ");
    let mut line = format!(
        "[Sat Dec 05 12:00:00.123456 2026] [auth_basic:error] [pid 1234:tid 5678] {client}{}",
        apache_errorlog_escape(&msg_raw[..msg_raw.len().min(8191)])
    );
    if let Some(r) = referer {
        line.push_str(", referer: ");
        line.push_str(&apache_errorlog_escape(r));
    }
    let mut b = line.into_bytes();
    b.truncate(8190);
    b
}

/// The same message through `ErrorLog syslog:` (no time stamp of Apache's own).
fn apache_syslog_line(addr: &str, msg_raw: &[u8]) -> Vec<u8> {
    format!(
        "Dec  5 12:00:00 web apache2[1234]: [auth_basic:error] [pid 1234:tid 5678] [client {addr}:51234] {}",
        apache_errorlog_escape(msg_raw)
    )
    .into_bytes()
}

/// A request path as r->uri holds it (decoded: any byte but NUL and `/`-escapes), up to
/// what LimitRequestLine (8190) lets through.
fn http_uri() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        Just(b"/private/".to_vec()),
        Just(b"a/".repeat(1500)),
        Just(vec![1u8; 2000]),
        Just(b"\"x\": Password Mismatch".to_vec()),
        Just(b"[client 198.51.100.7:1] ".to_vec()),
        prop::collection::vec(1u8..=255, 0..64),
    ];
    prop::collection::vec(piece, 1..6).prop_map(|v| {
        let mut u = b"/private/".to_vec();
        u.extend(v.concat());
        u.truncate(8170);
        u
    })
}

fn http_user() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        Just(b"admin".to_vec()),
        Just(b" not found: /x".to_vec()),
        Just(b": authentication failure for \"/\": Password Mismatch".to_vec()),
        Just(vec![1u8; 2100]),
        prop::collection::vec(1u8..=255, 0..64),
    ];
    // (a Basic user name is anything but `:`, up to what LimitRequestFieldSize lets through)
    prop::collection::vec(piece, 1..5).prop_map(|v| {
        let mut u: Vec<u8> = v.concat();
        u.retain(|&c| c != b':');
        u.truncate(6000);
        u
    })
}

fn http_sender() -> impl Strategy<Value = String> {
    prop_oneof![
        (1u8..255).prop_map(|h| format!("203.0.113.{h}")),
        (1u16..0xffff).prop_map(|h| format!("2001:db8::{h:x}")),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, failure_persistence: None, ..ProptestConfig::default() })]

    /// AH01617 (a real user's wrong password): a long request path puts the end of the
    /// message past Apache's 8 KiB line, or past a syslog transport's cut; still counted.
    #[test]
    fn apache_basic_mismatch_counted(
        uri in http_uri(),
        addr in http_sender(),
        referer in proptest::option::of(prop::collection::vec(1u8..=255, 0..200)),
        syslog in any::<bool>(),
    ) {
        let mut msg = b"AH01617: user admin: authentication failure for \"".to_vec();
        msg.extend_from_slice(&uri);
        msg.extend_from_slice(b"\": Password Mismatch");
        let line = if syslog {
            let mut m = msg.clone();
            m.truncate(1024 - 100);
            apache_syslog_line(&addr, &m)
        } else {
            apache_line(&addr, &msg, referer.as_deref())
        };
        counted("apache-auth", &line, &addr, "basic-mismatch");
    }

    /// AH01618 (an unknown user): the client's user name, escaped, can fill the line.
    #[test]
    fn apache_basic_unknown_counted(
        user in http_user(),
        uri in http_uri(),
        addr in http_sender(),
        syslog in any::<bool>(),
    ) {
        let mut msg = b"AH01618: user ".to_vec();
        msg.extend_from_slice(&user);
        msg.extend_from_slice(b" not found: ");
        msg.extend_from_slice(&uri);
        let line = if syslog {
            let mut m = msg.clone();
            m.truncate(1024 - 100);
            apache_syslog_line(&addr, &m)
        } else {
            apache_line(&addr, &msg, None)
        };
        counted("apache-auth", &line, &addr, "basic-unknown");
    }
}

/// The line of the finding: a wrong password for a real user, requested with a path of
/// 8,100 bytes: Apache's line ends inside the path, without ": Password Mismatch".
#[test]
fn apache_basic_mismatch_long_path_is_counted() {
    let mut msg = b"AH01617: user bob: authentication failure for \"/private/".to_vec();
    msg.extend(b"a/".repeat(4050));
    msg.extend_from_slice(b"\": Password Mismatch");
    let line = apache_line("203.0.113.5", &msg, None);
    assert_eq!(line.len(), 8190);
    counted("apache-auth", &line, "203.0.113.5", "basic-mismatch");
}

/// Through `ErrorLog syslog:` a line of 768 bytes or more may have been cut by the
/// transport, and a rule whose address may end that far in is refused there (filter/cut.rs):
/// every text before Apache's "[client A:P]" is Apache's own and bounded, so no rule of
/// the apache-* filters is refused for a long request path or user name.
#[test]
fn apache_error_log_rules_address_before_any_transport_cut() {
    let at = portcullis_core::filter::cut::cut_threshold(
        portcullis_core::filter::cut::DEFAULT_TRANSPORT_CUT,
    );
    for name in [
        "apache-auth",
        "apache-botsearch",
        "apache-nohome",
        "apache-noscript",
        "apache-overflows",
        "apache-shellshock",
    ] {
        let b = builtin::get(name).unwrap();
        let f = Filter::from_toml(b.source, b.name).unwrap();
        // (the error log's rules: an access log line starts with the address)
        for r in f
            .rules()
            .iter()
            .filter(|r| r.pattern().as_str().contains("[pid "))
        {
            assert!(
                r.host_end_max() < at,
                "{name} rule {}: the address may end {} bytes in",
                r.id,
                r.host_end_max()
            );
        }
    }
}

// ---------------------------------------------------------------- OpenVPN

/// A certificate's common name as OpenVPN puts it in the `CN/ADDR:PORT` prefix
/// (multi.c multi_instance_string() "%s/", the CN after ssl_verify.c
/// string_mod_remap_name(): CC_PRINT kept, so spaces and `/` stay; at most 64 bytes).
fn openvpn_cn() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("John Smith".to_string()),
        Just(" ".to_string()),
        Just("/".to_string()),
        Just("198.51.100.7:1 TLS Auth Error: Auth Username".to_string()),
        Just("x/198.51.100.7:1".to_string()),
        Just("[2001:db8::bad]:1".to_string()),
        "[ -~]{0,8}",
    ];
    prop::collection::vec(piece, 1..5).prop_map(|v| {
        let mut s: String = v.concat();
        s.truncate(64);
        s
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    /// ssl_verify.c verify_user_pass(): "TLS Auth Error: Auth Username/Password verification
    /// failed for peer" after the client's `CN/ADDR:PORT` prefix; a CN with a space (a
    /// certificate named "John Smith") made the line match no rule. A CN with ": " is not
    /// read (review_findings.rs: a client's control message could otherwise be the tail).
    #[test]
    fn openvpn_auth_error_counted(
        cn in openvpn_cn(),
        v6 in any::<bool>(),
        h in 1u16..0xff,
        port in 1u16..=65535,
        file in any::<bool>(),
    ) {
        let (real, printed) = if v6 {
            (format!("2001:db8::{h:x}"), format!("[2001:db8::{h:x}]:{port}"))
        } else {
            (format!("203.0.113.{h}"), format!("203.0.113.{h}:{port}"))
        };
        let head = if file { "2026-12-05 12:00:00 ".to_string() } else { "Dec  5 12:00:00 vpn openvpn[990]: ".to_string() };
        for (tail, rule) in [
            ("TLS Auth Error: Auth Username/Password verification failed for peer", "auth-error"),
            ("TLS Error: TLS handshake failed", "handshake"),
        ] {
            let line = format!("{head}{cn}/{printed} {tail}");
            let got = report_cut("openvpn", None, line.as_bytes());
            // a CN holding ": " is not read (filters/openvpn.toml: OpenVPN's own message
            // before a client's text always holds ": ", so the CN may not)
            let want = (!cn.contains(": ")).then(|| (real.clone(), rule.to_string(), 1));
            prop_assert_eq!(got, want, "{}", line);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    /// "Failed password for john smith from A port P ssh2": an existing account whose name
    /// holds a space (an AD sAMAccountName through sssd/winbind) is counted, for A; forged
    /// text in the name (or, without privilege separation, in the method) does not move it.
    #[test]
    fn sshd_failed_existing_account_with_space_counted(
        first in "[a-z]{1,12}",
        last in "[a-z]{1,12}",
        forged in prop_oneof![
            Just(String::new()),
            Just(" from 198.51.100.7 port 22 ssh2".to_string()),
            Just(" x from 198.51.100.7 port 1 ssh2 for root".to_string()),
        ],
        method in prop_oneof![Just("password"), Just("keyboard-interactive/pam")],
        addr in ssh_sender(),
        port in 1u16..=65535,
    ) {
        let msg = format!("Failed {method} for {first} {last}{forged} from {addr} port {port} ssh2");
        counted("sshd", &sshd_line(&msg), &addr, "failed");
    }
}

// ---------------------------------------------------------------- nginx

/// src/http/modules/ngx_http_log_module.c ngx_http_log_escape() (log_format escape=default):
/// `"`, `\`, control bytes and bytes from 0x7f up written as \xHH; the rest as is.
fn nginx_escape(raw: &[u8]) -> String {
    let mut s = String::new();
    for &c in raw {
        if c == b'"' || c == b'\\' || !(0x20..0x7f).contains(&c) {
            s.push_str(&format!("\\x{:02X}", c));
        } else {
            s.push(c as char);
        }
    }
    s
}

fn http_text() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        Just(b"\" 401 0 \"-\" \"x\"".to_vec()),
        Just(b"198.51.100.7 - - [05/Dec/2026:12:00:00 +0000] ".to_vec()),
        Just(b" ".to_vec()),
        Just(b"-".to_vec()),
        Just(b"[]{}\\".to_vec()),
        prop::collection::vec(1u8..=255, 0..24),
    ];
    prop::collection::vec(piece, 0..5).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    /// The "combined" format: `$remote_addr - $remote_user [$time_local] "$request" $status
    /// $body_bytes_sent "$http_referer" "$http_user_agent"`, every client field escaped: a
    /// 401 with a user name (any but empty and "-", which nginx logs for no credentials) is
    /// counted for the client.
    #[test]
    fn nginx_http_auth_failed_counted(
        user in http_text().prop_filter("a user", |u| !u.is_empty() && u.as_slice() != b"-"),
        request in http_text(),
        referer in http_text(),
        agent in http_text(),
        addr in http_sender(),
    ) {
        let line = format!(
            "{addr} - {} [05/Dec/2026:12:00:00 +0000] \"{}\" 401 188 \"{}\" \"{}\"",
            nginx_escape(&user),
            nginx_escape(&request),
            nginx_escape(&referer),
            nginx_escape(&agent),
        );
        counted("nginx-http-auth", line.as_bytes(), &addr, "failed");
    }
}

//! Evasion review, group `mail2` (mail and FTP servers, second round): text a remote client
//! chooses must never keep its own failed logins or abuse from being counted, and in
//! particular a client must not escape a rule by making the line long enough for the
//! transport-cut guard (crates/core/src/filter/cut.rs: a syslog-tagged message of 768 bytes
//! or more is refused when the pattern lets text of no bound stand before the address).
//!
//! Every line is built from the program's real format string (source named at each test)
//! with hostile but real values in the fields the client controls, at the longest the
//! program writes them, and must be read by a counting rule (weight > 0) of the built-in
//! filter, with the default transport cut (1 KiB), for the real address (203.0.113.0/24 or
//! 2001:db8::/32). The forged address 198.51.100.7 that some values carry is never the one
//! reported.

use portcullis_core::filter::{builtin, Filter, Mode};
use proptest::prelude::*;

mod common;
use common::by_mode::*;
use common::FORGED;

/// The message of a syslog line (after "HOST PROGRAM[PID]: ") must be long enough for the
/// transport-cut guard to look at it.
fn assert_long(line: &str, prefix_end: &str) {
    let msg = &line[line.find(prefix_end).unwrap() + prefix_end.len()..];
    assert!(msg.len() >= 800, "only {} bytes: {line}", msg.len());
}

// ---------------------------------------------------------------------------------------
// Dovecot (login-common/client-common.c, every release 1.2 .. 2.4.4 and main)
// ---------------------------------------------------------------------------------------

/// What str_sanitize(s, 80) (lib/str-sanitize.c str_sanitize_append()) writes of a user
/// name: a control byte as '?', cut to 77 bytes (at a character boundary) and "..." when
/// longer than 80.
fn dovecot_sanitize(s: &str, max: usize) -> String {
    let clean: String = s
        .chars()
        .map(|c| {
            if (c as u32) < 0x20 || c == '\x7f' {
                '?'
            } else {
                c
            }
        })
        .collect();
    if clean.len() <= max {
        return clean;
    }
    let mut cut = max - 3;
    while !clean.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}...", &clean[..cut])
}

/// OpenSSL's error text for a broken TLS record, as openssl_iostream_error() joins the
/// queue's errors (", "), `n` of them.
fn ssl_errors(n: usize) -> String {
    vec!["error:0A000126:SSL routines::unexpected eof while reading"; n].join(", ")
}

/// Dovecot 2.3 through syslog: "Disconnected: REASON (auth failed, ...): ELEMENTS" with the
/// default login_log_format_elements (user, method, rip, lip, mpid, %c, session).
fn dovecot23_syslog(
    reason: &str,
    extra: &str,
    user: &str,
    method: &str,
    rip: &str,
    c: &str,
) -> String {
    format!(
        "Dec  5 02:20:01 mx dovecot: imap-login: Disconnected: {reason} ({extra}): \
         user=<{user}>, method={method}, rip={rip}, lip=192.0.2.1, {c}, session=<ntxDodlhm77LAHEM>"
    )
}

/// A client that makes its login line as long as it can (an 80-byte user name holding a
/// forged rip=, a 64-byte mechanism, a broken TLS record after its wrong passwords, so that
/// OpenSSL's error text, four errors of the queue, stands in the reason and again after rip=) is still counted through
/// syslog: the first pattern of each login rule reads Dovecot's bounds. Before the second
/// round every such line of 768 bytes or more was refused.
#[test]
fn dovecot_long_login_lines_through_syslog_count() {
    let user = dovecot_sanitize(
        &format!(
            "x>, method=PLAIN, rip={FORGED}, lip=192.0.2.1, TLS, session=<a\u{e9}\n{}",
            "u".repeat(200)
        ),
        80,
    );
    assert_eq!(user.len(), 80);
    let method = "X".repeat(64);
    let err = ssl_errors(4);
    let reason = format!("Connection closed: SSL_read() failed: {err}");
    let tls = format!("TLS: SSL_read() failed: {err}");
    let l = dovecot23_syslog(
        &reason,
        "auth failed, 3 attempts in 5 secs",
        &user,
        &method,
        "203.0.113.5",
        &tls,
    );
    assert_long(&l, "dovecot: ");
    assert_counted("dovecot", Mode::Normal, &l, "203.0.113.5", "login-failed");
    // 2.4: "Login aborted: REASON (HUMAN REASON) (EVENT REASON): ELEMENTS"
    let l = format!(
        "Dec  5 02:20:01 mx dovecot: pop3-login: Login aborted: {reason} (auth failed, 12 attempts in 40 secs) \
         (auth_failed): user=<{user}>, method={method}, rip=2001:db8::5, lip=2001:db8::1, \
         TLS handshaking: SSL_accept() failed: {err}, session=<2e1FodlhF7nLAHEi>"
    );
    assert_long(&l, "dovecot: ");
    assert_counted("dovecot", Mode::Normal, &l, "2001:db8::5", "login-failed");
    // Dovecot's own log file (the splitter takes "Info" for the program)
    let l = format!(
        "Dec 05 02:20:01 imap-login: Info: Disconnected: {reason} (tried to use unsupported auth mechanism): \
         user=<{user}>, method={method}, rip=203.0.113.6, lip=192.0.2.1, {tls}, session=<ntxDodlhm77LAHEM>"
    );
    assert_long(&l, "Info: ");
    assert_counted("dovecot", Mode::Normal, &l, "203.0.113.6", "login-failed");
    // a plaintext refusal (no TLS on that connection: no OpenSSL text) and a scan
    let l = dovecot23_syslog(
        "Aborted login by logging out",
        "tried to use disallowed plaintext auth",
        &user,
        &method,
        "203.0.113.7",
        "secured",
    );
    assert_counted("dovecot", Mode::Normal, &l, "203.0.113.7", "plaintext");
    let l = dovecot23_syslog(
        &reason,
        "no auth attempts in 40 secs",
        &user,
        &method,
        "203.0.113.8",
        &tls,
    );
    assert_long(&l, "dovecot: ");
    assert_counted("dovecot", Mode::Ddos, &l, "203.0.113.8", "no-auth");
    // the same through the sieve filter (managesieve-login)
    let l = format!(
        "Dec  5 02:20:01 mx dovecot: managesieve-login: Disconnected: {reason} (auth failed, 3 attempts in 5 secs): \
         user=<{user}>, method={method}, rip=203.0.113.9, lip=192.0.2.1, {tls}, session=<ntxDodlhm77LAHEM>"
    );
    assert_long(&l, "dovecot: ");
    assert_counted("sieve", Mode::Normal, &l, "203.0.113.9", "login-failed");
    assert_counted("dovecot", Mode::Normal, &l, "203.0.113.9", "login-failed");
}

/// What a proxy writes (2.4: "proxy dest authentication failure[ to H], N attempts in S
/// secs[, last failure: TEXT]") stays read by the original pattern; such a line that is not
/// long is counted as before.
#[test]
fn dovecot_proxy_line_still_counts() {
    let l = "Dec  5 02:20:01 mx dovecot: imap-login: Login aborted: Connection closed (proxy dest authentication failure to backend1.example.net, 1 attempts in 0 secs, last failure: [AUTHENTICATIONFAILED] Authentication failed.) (proxy_dest_auth_failed): user=<x>, method=PLAIN, rip=203.0.113.10, lip=192.0.2.1, session=<qaz3>";
    assert_counted("dovecot", Mode::Normal, l, "203.0.113.10", "login-failed");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    /// Any user name (sanitized as Dovecot writes it, a forged rip= anywhere in it), any
    /// upper-case mechanism of up to 64 bytes and an OpenSSL error chain of one to three
    /// entries: counted, for the real address, through syslog.
    #[test]
    fn dovecot_any_user_any_length_counts(
        raw in "[ -~\u{e9}\u{a0}\t\n]{0,200}",
        forged_at in 0usize..80,
        method in "[A-Z0-9!#$%&'*+,./<=>?^_`{|}~-]{1,64}",
        errs in 1usize..=3,
    ) {
        let mut raw = raw;
        let at = (0..=forged_at.min(raw.len())).rev().find(|&i| raw.is_char_boundary(i)).unwrap();
        raw.insert_str(at, &format!(">, method=PLAIN, rip={FORGED}, lip=192.0.2.1, session=<x>"));
        let user = dovecot_sanitize(&raw, 80);
        let err = ssl_errors(errs);
        let l = dovecot23_syslog(
            &format!("Connection closed: SSL_read() failed: {err}"),
            "auth failed, 2 attempts in 3 secs",
            &user,
            &method,
            "203.0.113.11",
            &format!("TLS: SSL_read() failed: {err}"),
        );
        prop_assert_eq!(
            counted("dovecot", Mode::Normal, &l),
            Some(("203.0.113.11".to_string(), "login-failed".to_string())),
            "{}", l
        );
    }
}

// ---------------------------------------------------------------------------------------
// Cyrus timsieved (sieve filter): "badlogin: %s %s %s", CLIENTHOST "NAME [ADDR]"
// ---------------------------------------------------------------------------------------

/// A resolved name of 253 bytes and a SASL text of 900 bytes after the address: counted
/// through syslog (the name was read without bound before).
#[test]
fn sieve_cyrus_badlogin_long_counts() {
    let name = format!("{}.example.net", "a".repeat(241));
    assert_eq!(name.len(), 253);
    let l = format!(
        "Nov 21 10:00:05 mail6 sieve[7201]: badlogin: {name} [203.0.113.12] PLAIN SASL(-13): authentication failure: {}",
        "x".repeat(900)
    );
    assert_long(&l, "sieve[7201]: ");
    assert_counted("sieve", Mode::Normal, &l, "203.0.113.12", "badlogin");
}

// ---------------------------------------------------------------------------------------
// Courier esmtpd (courieresmtpd.C iov_logerror(), print_submit_log_fix())
// ---------------------------------------------------------------------------------------

/// The client's own RFC 1413 answer (couriertcpd before June 2024 without -noidentlookup)
/// is written raw inside ident="..." (clog_msg_str(): control bytes '.', 128 bytes and
/// "..."): with '"' and ',' it kept every line of that client uncounted before the fix.
#[test]
fn courier_smtp_ident_with_quotes_and_commas_counts() {
    let idents = [
        "x\",y".to_string(),
        "a\"b,c".to_string(),
        "\",msg=\"250 ok\",cmd: x".to_string(),
        format!("{}...", &"\"q,".repeat(43)[..128]),
        "proxy via 192.0.2.1, port 25".to_string(),
    ];
    for ident in &idents {
        let base = format!("Nov 21 10:00:09 mail5 courieresmtpd: error,relay=::ffff:203.0.113.13,port=40846,ident=\"{ident}\"");
        let l = format!("{base},msg=\"535 Authentication failed.\",cmd: AUTH LOGIN");
        assert_counted(
            "courier-smtp",
            Mode::Normal,
            &l,
            "203.0.113.13",
            "auth-failed",
        );
        let l = format!("{base},msg=\"513 Relaying denied.\",cmd: RCPT TO:<victim@example.net>");
        assert_counted("courier-smtp", Mode::Normal, &l, "203.0.113.13", "rejected");
        let l = format!("{base},msg=\"502 ESMTP command error\",cmd: GET / HTTP/1.0");
        assert_counted(
            "courier-smtp",
            Mode::Ddos,
            &l,
            "203.0.113.13",
            "command-error",
        );
    }
    // print_submit_log_fix(): ',' and ':' as spaces, unquoted
    let l = "Nov 21 10:00:09 mail5 courieresmtpd: error,relay=::ffff:203.0.113.14,port=40847,ident=x\" y  z,from=<a@example.org>,to=<b@example.com>: 550 User unknown.";
    assert_counted("courier-smtp", Mode::Normal, l, "203.0.113.14", "rejected");
}

// ---------------------------------------------------------------------------------------
// OpenSMTPD 6.0 .. 6.4 (smtp_session.c: strnvis(user, s->username, LOGIN_NAME_MAX,
// VIS_WHITE | VIS_SAFE), "authentication user=%s address=%s host=%s result=permfail")
// ---------------------------------------------------------------------------------------

#[test]
fn opensmtpd_longest_user_counts() {
    let user = format!(
        "x\\040address={FORGED}\\040host=y\\040result=permfail{}",
        "\\^J".repeat(80)
    );
    let user = &user[..255];
    let host = format!("{}.example.net", "h".repeat(241));
    for ev in ["", "event="] {
        let l = format!(
            "Nov 21 10:01:04 mx1 smtpd[4212]: 701e2c3d4e5f6072 smtp {ev}authentication user={user} address=203.0.113.15 host={host} result=permfail"
        );
        assert_counted(
            "opensmtpd",
            Mode::Normal,
            &l,
            "203.0.113.15",
            "auth-failed-addr",
        );
    }
}

// ---------------------------------------------------------------------------------------
// qmail: vpopmail 5.4 vchkpw.c (name, password and challenge share AUTH_SIZE 156;
// snprintf into LogLine[500])
// ---------------------------------------------------------------------------------------

#[test]
fn qmail_vchkpw_longest_fields_count() {
    let pass = format!("') a@b:{FORGED} (pass: '{}", "p".repeat(80));
    let user = format!("c d:{FORGED}:{}", "u".repeat(20));
    assert!(pass.len() + user.len() < 155);
    let l = format!(
        "Nov 21 10:00:09 mx4 vpopmail[6109]: vchkpw-submission: password fail (pass: '{pass}') {user}@{}:203.0.113.16",
        "d".repeat(200)
    );
    assert_counted("qmail", Mode::Normal, &l, "203.0.113.16", "vchkpw");
    let l = format!("Nov 21 10:00:09 mx4 vpopmail[6109]: vchkpw-pop3: vpopmail user not found {user}@example.com:::ffff:203.0.113.17");
    assert_counted("qmail", Mode::Normal, &l, "203.0.113.17", "vchkpw");
}

// ---------------------------------------------------------------------------------------
// solid-pop3d main.c: "... for user %.40s - %.384s", ahname "%.256s (%.100s)"
// ---------------------------------------------------------------------------------------

#[test]
fn solid_pop3d_longest_fields_count() {
    let user = format!("x - {FORGED} ({FORGED}) - a b c d e f g h");
    let user = &user[..40];
    let name = format!("{}.example.net", "h".repeat(244));
    assert_eq!(name.len(), 256);
    for msg in [
        "authentication failed for user",
        "authentication failed: no such user:",
        "can't find APOP secret for user",
    ] {
        let l =
            format!("Nov 21 10:00:09 pop1 solid-pop3d[4104]: {msg} {user} - {name} (203.0.113.18)");
        assert_counted(
            "solid-pop3d",
            Mode::Normal,
            &l,
            "203.0.113.18",
            "auth-failed",
        );
        let l = format!("Nov 21 10:00:09 pop1 solid-pop3d[4104]: {msg} {user} - 203.0.113.19");
        assert_counted(
            "solid-pop3d",
            Mode::Normal,
            &l,
            "203.0.113.19",
            "auth-failed",
        );
    }
    let l = format!("Nov 21 10:00:09 pop1 solid-pop3d[4104]: wrong commands limit exceeded - {name} (203.0.113.20)");
    assert_counted(
        "solid-pop3d",
        Mode::Ddos,
        &l,
        "203.0.113.20",
        "bad-commands",
    );
}

// ---------------------------------------------------------------------------------------
// Programs' own files (no syslog tag: never refused, however long)
// ---------------------------------------------------------------------------------------

/// Exim's mainlog: a HELO of 900 bytes (check_helo() bounds characters, not length) before
/// the address. Through syslog the same line is refused (documented: not fixable).
#[test]
fn exim_mainlog_long_helo_counts() {
    let helo = format!("{}.example", "h".repeat(900));
    let l = format!(
        "2026-11-21 10:00:01 dovecot_login authenticator failed for ({helo}) [203.0.113.21]:52114 I=[198.51.100.1]:587: 535 Incorrect authentication data (set_id=admin)"
    );
    assert_counted("exim", Mode::Normal, &l, "203.0.113.21", "auth-failed");
}

/// vsftpd's own log file (vsftpd_log_file): a USER of 1000 bytes before the address.
#[test]
fn vsftpd_own_file_long_user_counts() {
    let user = format!("a] FAIL LOGIN: Client \"{FORGED}\" [{}", "u".repeat(1000));
    let l =
        format!("Sat Nov 21 10:00:04 2026 [pid 2213] [{user}] FAIL LOGIN: Client \"203.0.113.22\"");
    assert_counted("vsftpd", Mode::Normal, &l, "203.0.113.22", "fail-login");
}

/// ASSP / SPAMBOX mlog(): " <SENDER>" and " to: FIRST-RECIPIENT" (the first word of the
/// recipient list) after the address.
#[test]
fn assp_sender_and_recipient_fields_count() {
    for (sender, to) in [
        ("", ""),
        (" <x@198.51.100.7>", " to: a@198.51.100.7"),
        (" <\"a b\"@example.org>", " to: b%c@example.com@example.org"),
        (" <>", " to: [198.51.100.7]"),
    ] {
        let l = format!("Nov-18-26 11:06:43 m1-12345-00002 [Worker_2] [RelayAttempt] 203.0.113.23{sender}{to} relay attempt blocked for (evil): b%c@example.com@example.org");
        assert_counted("assp", Mode::Normal, &l, "203.0.113.23", "relay");
        let l = format!("Nov-18-26 11:06:40 [Worker_1] [TLS-out] 203.0.113.24{sender}{to} [SMTP Error] 535 5.7.8 Error: authentication failed: authentication failure");
        assert_counted("assp", Mode::Normal, &l, "203.0.113.24", "auth-error");
    }
}

// ---------------------------------------------------------------------------------------
// Lines whose address comes first (review of task 2: no evasion found)
// ---------------------------------------------------------------------------------------

/// perdition.c perdition_log_auth(): the ids and the server are written raw in quotes.
#[test]
fn perdition_hostile_ids_count() {
    for id in ["a\"b", "x\" server=\"y", "\" status=\"ok", "", "a b\\\"c"] {
        let l = format!("Nov 21 10:00:01 proxy1 perdition.imaps[9201]: Auth: 203.0.113.25:54321->198.51.100.1:993 client-secure=ssl authorisation_id=\"{id}\" authentication_id=\"{id}\" server=\"imap.example.com:993\" protocol=IMAP4S server-secure=ssl status=\"failed: Re-Authentication Failure\"");
        assert_counted("perdition", Mode::Normal, &l, "203.0.113.25", "auth-failed");
    }
}

/// UW IMAP env_unix.c server_login(): "Login failed user=%.64s auth=%.64s host=%.80s".
#[test]
fn uwimap_hostile_user_counts() {
    let user = format!("x host=a [{FORGED}] auth=y {}", "u".repeat(40));
    let user = &user[..64];
    let l = format!("Nov 21 10:00:01 mail8 imapd[8101]: Login failed user={user} auth={user} host=dsl.example.org [203.0.113.26]");
    assert_counted(
        "uwimap-auth",
        Mode::Normal,
        &l,
        "203.0.113.26",
        "login-failed",
    );
}

/// FreeBSD ftpd pass(): "FTP LOGIN FAILED FROM %s, %s" (the user after the address); GSS
/// ftpd "repeated login failures from %s (%s)" (the name after it).
#[test]
fn ftpd_and_gssftpd_hostile_fields_count() {
    let user = format!("x, {FORGED} FTP LOGIN FAILED FROM {FORGED}");
    let l = format!("Nov 21 10:00:01 fbsd ftpd[3120]: FTP LOGIN FAILED FROM 203.0.113.27, {user}");
    assert_counted("ftpd", Mode::Normal, &l, "203.0.113.27", "login-failed");
    let l = format!("Nov 18 11:06:40 files ftpd[132]: repeated login failures from 203.0.113.28 ({FORGED}) ({FORGED})");
    assert_counted(
        "gssftpd",
        Mode::Normal,
        &l,
        "203.0.113.28",
        "repeated-failures",
    );
}

/// Every rule of these filters that counts is either under the transport-cut threshold or
/// one of those the headers name as not fixable (client text of no bound before the
/// address, or a fallback pattern for other shapes).
#[test]
fn only_the_documented_rules_can_be_refused() {
    let threshold = portcullis_core::filter::cut::cut_threshold(1024);
    let documented: &[(&str, &[&str])] = &[
        ("dovecot", &["login-failed", "plaintext", "no-auth", "pam"]),
        ("sieve", &["login-failed", "no-auth"]),
        ("courier-smtp", &[]),
        ("opensmtpd", &[]),
        ("qmail", &[]),
        ("solid-pop3d", &[]),
        ("cyrus-imap", &[]),
        ("perdition", &[]),
    ];
    for (name, allowed) in documented {
        let b = builtin::get(name).unwrap();
        let f = Filter::from_toml(b.source, b.name).unwrap();
        let mut bounded = 0;
        for r in f.rules().iter().filter(|r| r.weight > 0) {
            if r.host_end_max() >= threshold {
                assert!(allowed.contains(&r.id.as_str()), "{name}/{}", r.id);
            } else {
                bounded += 1;
            }
        }
        assert!(bounded > 0, "{name}");
    }
}

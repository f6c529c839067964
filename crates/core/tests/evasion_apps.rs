//! Evasion review, group `apps`: a remote client must not keep its own failures from being
//! counted by shaping a field it controls. Every line here is built from the program's real
//! format (the source named at each helper; no real run) with hostile-but-real values in each
//! client field; the line must be counted (a rule of weight > 0) for the real address, in
//! 203.0.113.0/24 or 2001:db8::/32, and never for the address the client wrote into its own
//! text (198.51.100.7).
//!
//! Most of these lines can come through syslog, where the transport-cut guard
//! (crates/core/src/filter/cut.rs) refuses a line of 768 bytes or more whose address may end
//! after text of no bound. Where the text before the address is the program's it is now read
//! bounded and long lines count (cockpit, nextcloud, wordpress' access-log rules,
//! apache-badbots, php-url-fopen, monit); where it is the client's the refusal is the
//! documented trade-off (wordpress' plugin lines, webmin-auth, prosody, freeswitch,
//! kamailio), and the tests below pin both. (rsyncd, reviewed here too, was withdrawn the same
//! day: the daemon logs a client's own protocol messages as whole lines.)
//!
//! Filters: cockpit, nextcloud, wordpress, apache-badbots, php-url-fopen, monit,
//! webmin-auth, prosody, freeswitch, kamailio.

use proptest::prelude::*;

mod common;
use common::*;

/// Apache's ap_escape_logitem() (server/util.c), used by mod_log_config for %r, %u and
/// %{...}i: '"' and '\' get a backslash, \b \n \r \t \v keep their C escape, every other
/// byte that is not printable ASCII becomes \xhh. nginx's ngx_http_log_escape() writes the
/// same \xhh for '"', '\', control bytes and bytes over 0x7e.
fn apache_escape(s: &[u8]) -> Vec<u8> {
    let mut o = Vec::new();
    for &b in s {
        match b {
            b'"' | b'\\' => {
                o.push(b'\\');
                o.push(b);
            }
            8 => o.extend_from_slice(b"\\b"),
            b'\n' => o.extend_from_slice(b"\\n"),
            b'\r' => o.extend_from_slice(b"\\r"),
            b'\t' => o.extend_from_slice(b"\\t"),
            11 => o.extend_from_slice(b"\\v"),
            0x20..=0x7e => o.push(b),
            _ => o.extend_from_slice(format!("\\x{b:02x}").as_bytes()),
        }
    }
    o
}

/// Client text: pieces that imitate the structure of the lines below, and single
/// characters (quotes, backslashes, brackets, control bytes, non-ASCII).
fn client_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("\"".to_string()),
        Just("\\".to_string()),
        Just("\\\"".to_string()),
        Just(" ".to_string()),
        Just("\t".to_string()),
        Just("\n".to_string()),
        Just("\u{1}".to_string()),
        Just("é€😀".to_string()),
        Just("{".to_string()),
        Just("}".to_string()),
        Just("[".to_string()),
        Just("]".to_string()),
        Just("(".to_string()),
        Just(")".to_string()),
        Just("'".to_string()),
        Just(",".to_string()),
        Just("=".to_string()),
        Just("%".to_string()),
        Just(" from 198.51.100.7".to_string()),
        Just(" rhost=198.51.100.7 user=x".to_string()),
        Just(" (198.51.100.7) for x: password mismatch".to_string()),
        Just("\",\"remoteAddr\":\"198.51.100.7\",\"x\":\"".to_string()),
        Just("' (Remote IP: '198.51.100.7')".to_string()),
        Just(" from IP: 198.51.100.7".to_string()),
        Just("]: unknown user 'x".to_string()),
        "[ -~]{0,8}",
    ];
    prop::collection::vec(piece, 0..8).prop_map(|v| v.concat())
}

/// Client text padded to push the line past the transport-cut threshold (or not).
fn padded_text() -> impl Strategy<Value = String> {
    (client_text(), 0usize..900).prop_map(|(t, n)| format!("{t}{}", "a".repeat(n)))
}

#[test]
fn program_text_before_the_address_is_bounded() {
    bounded_except("cockpit", |_, _| false);
    bounded_except("nextcloud", |_, _| false);
    bounded_except("wordpress", |id, _| {
        ["auth-failure", "unknown-user", "blocked-user"].contains(&id)
    });
    bounded_except("apache-badbots", |_, _| false);
    bounded_except("php-url-fopen", |_, _| false);
    bounded_except("monit", |_, _| false);
}

// ---------------------------------------------------------------- Cockpit

/// pam_unix's _unix_verify_password() (modules/pam_unix/support.c): "authentication
/// failure; logname=%s uid=%d euid=%d tty=%s ruser=%s rhost=%s %s%s" with " user=" and the
/// name; cockpit-session sets only PAM_RHOST (src/session/session.c perform_basic()), so
/// tty= and ruser= are empty and the name is the Authorization header's, as pam_start()
/// got it. Read through rsyslog (control bytes escaped).
fn cockpit_line(addr: &str, user: &[u8]) -> Vec<u8> {
    let mut m = format!(
        "pam_unix(cockpit:auth): authentication failure; logname= uid=0 euid=0 tty= ruser= rhost={addr}  user="
    )
    .into_bytes();
    m.extend_from_slice(&rsyslog_escape(user));
    syslog("cockpit-session[2201]", &m)
}

/// A long login name (after the address) made the line refused at the default transport
/// cut: logname=, tty= and ruser= were read without bound before rhost=.
#[test]
fn cockpit_long_name_counted() {
    let user = format!("x from {FORGED} rhost={FORGED} {}", "a".repeat(900));
    let line = cockpit_line("203.0.113.5", user.as_bytes());
    assert!(line.len() > 900);
    counted("cockpit", &line, "203.0.113.5", "pam-auth");
    counted(
        "cockpit",
        &cockpit_line("::ffff:203.0.113.6", user.as_bytes()),
        "203.0.113.6",
        "pam-auth",
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]
    #[test]
    fn cockpit_hostile_names_counted(user in padded_text(), addr in sender()) {
        counted("cockpit", &cockpit_line(&addr, user.as_bytes()), &addr, "pam-auth");
    }
}

// ---------------------------------------------------------------- Nextcloud

/// lib/private/Log/LogDetails.php logDetails(): compact('reqId', 'level', 'time',
/// 'remoteAddr', 'user', 'app', 'method', 'url', 'scriptName', 'message', 'userAgent',
/// 'version'), then clientReqId (the X-Request-Id header) when sent; logDetailsAsJSON()
/// json_encode()s it. lib/private/User/Manager.php: "Login failed: '%s' (Remote IP:
/// '%s')" (newer releases without the quotes). log_type syslog (lib/private/Log/Syslog.php)
/// sends the same object under the tag "Nextcloud".
#[allow(clippy::too_many_arguments)]
fn nextcloud_record(
    addr: &str,
    user: &str,
    url: &str,
    ua: &str,
    req: Option<&str>,
    quoted: bool,
    slashes: bool,
    unicode: bool,
) -> String {
    let j = |s: &str| php_json(s, slashes, unicode);
    let msg = if quoted {
        format!("Login failed: '{user}' (Remote IP: '{addr}')")
    } else {
        format!("Login failed: {user} (Remote IP: {addr})")
    };
    let mut r = format!(
        "{{\"reqId\":\"Zzsx8AoAAQcAAAcUYBkAAAAA\",\"level\":2,\"time\":\"2026-11-18T11:06:40+00:00\",\"remoteAddr\":{},\"user\":\"--\",\"app\":\"core\",\"method\":\"POST\",\"url\":{},\"scriptName\":{},\"message\":{},\"userAgent\":{},\"version\":\"31.0.4.1\"",
        j(addr),
        j(url),
        j("/index.php"),
        j(&msg),
        j(ua)
    );
    if let Some(q) = req {
        r.push_str(&format!(",\"clientReqId\":{}", j(q)));
    }
    r.push_str(",\"data\":{\"app\":\"core\"}}");
    r
}

/// Through syslog a long URL or user agent made every failed login refused at the default
/// transport cut: the members before remoteAddr were read without bound.
#[test]
fn nextcloud_syslog_long_record_counted() {
    let url = format!("/login?redirect_url={}", "%2F".repeat(400));
    let ua = format!(
        "Mozilla/5.0 \"remoteAddr\":\"{FORGED}\" {}",
        "b".repeat(600)
    );
    let rec = nextcloud_record(
        "203.0.113.7",
        "bob",
        &url,
        &ua,
        Some("x"),
        true,
        false,
        false,
    );
    let line = syslog("Nextcloud[2210]", rec.as_bytes());
    assert!(line.len() > 1200);
    counted("nextcloud", &line, "203.0.113.7", "login-failed");
    // nextcloud.log itself (no tag) was never refused
    counted("nextcloud", rec.as_bytes(), "203.0.113.7", "login-failed");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]
    #[test]
    fn nextcloud_hostile_fields_counted(
        user in client_text(),
        url in padded_text(),
        ua in client_text(),
        req in proptest::option::of(client_text()),
        quoted in any::<bool>(),
        slashes in any::<bool>(),
        unicode in any::<bool>(),
        tagged in any::<bool>(),
        addr in sender(),
    ) {
        let rec = nextcloud_record(&addr, &user, &url, &ua, req.as_deref(), quoted, slashes, unicode);
        let line = if tagged { syslog("Nextcloud[2210]", rec.as_bytes()) } else { rec.into_bytes() };
        counted("nextcloud", &line, &addr, "login-failed");
    }
}

// ---------------------------------------------------------------- WordPress

/// Apache's "vhost_combined" LogFormat (Debian's apache2.conf: "%v:%p %h %l %u %t \"%r\"
/// %>s %O \"%{Referer}i\" \"%{User-Agent}i\""), fields through ap_escape_logitem(), sent to
/// syslog by a piped logger (`CustomLog "|/usr/bin/logger -t apache2" vhost_combined`).
fn apache_access(addr: &str, request: &[u8], status: u16, referer: &[u8], ua: &[u8]) -> Vec<u8> {
    let mut m =
        format!("www.example.com:443 {addr} - - [21/Nov/2026:10:00:01 +0000] \"").into_bytes();
    m.extend_from_slice(&apache_escape(request));
    m.extend_from_slice(format!("\" {status} 4523 \"").as_bytes());
    m.extend_from_slice(&apache_escape(referer));
    m.extend_from_slice(b"\" \"");
    m.extend_from_slice(&apache_escape(ua));
    m.push(b'"');
    syslog("apache2", &m)
}

/// The access-log rules through syslog: a long query string, Referer or user agent made the
/// line refused at the default transport cut (the "%v:%p " prefix was read without bound).
#[test]
fn wordpress_access_log_through_syslog_long_counted() {
    let q = format!("POST /wp-login.php?x={} HTTP/1.1", "%41".repeat(300));
    let line = apache_access("203.0.113.8", q.as_bytes(), 200, b"-", b"Mozilla/5.0");
    assert!(line.len() > 900);
    counted("wordpress", &line, "203.0.113.8", "login-post");
    let ua = format!(
        "Mozilla/5.0 \"{FORGED} - - [x] \\\"POST /wp-login.php HTTP/1.1\\\" 200{}",
        "c".repeat(900)
    );
    let line = apache_access(
        "2001:db8::8",
        b"POST /xmlrpc.php HTTP/1.1",
        200,
        b"-",
        ua.as_bytes(),
    );
    counted("wordpress", &line, "2001:db8::8", "xmlrpc-post");
}

/// WP fail2ban's syslog() of wp_login_failed (WP fail2ban 4.x lib/activation.php /
/// feature/user-enum ...: "Authentication failure for %s from %s"); the name went through
/// sanitize_user(), which makes each run of white space one space.
fn wp_plugin(kind: &str, user: &str, addr: &str) -> Vec<u8> {
    let user: String = user.split_whitespace().collect::<Vec<_>>().join(" ");
    syslog(
        "wordpress[1234]",
        format!("{kind} {user} from {addr}").as_bytes(),
    )
}

#[test]
fn wordpress_plugin_long_name_is_the_documented_trade_off() {
    let user = format!("admin from {FORGED} {}", "d".repeat(900));
    let line = wp_plugin("Authentication failure for", &user, "203.0.113.9");
    refused_then_counted_with_larger_cut("wordpress", &line, "203.0.113.9", "auth-failure");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]
    #[test]
    fn wordpress_hostile_fields_counted(
        user in client_text(),
        path in client_text(),
        query in padded_text(),
        referer in client_text(),
        ua in client_text(),
        addr in sender(),
        kind in 0usize..3,
    ) {
        let (k, rule) = [
            ("Authentication failure for", "auth-failure"),
            ("XML-RPC authentication attempt for unknown user", "unknown-user"),
            ("Blocked authentication attempt for", "blocked-user"),
        ][kind];
        counted("wordpress", &wp_plugin(k, &user, &addr), &addr, rule);
        // PHP's own query: any bytes; Apache's request line keeps them %-encoded but the
        // client may send them raw (escaped by ap_escape_logitem)
        let path: String = path.chars().filter(|c| !matches!(c, ' ' | '?' | '"' | '\\' | '\n' | '\t' | '\u{1}')).collect();
        // (a request line with white space in its target is refused with 400 by Apache's
        // default HttpProtocolOptions Strict and never reaches WordPress)
        let query: String = query.chars().filter(|c| !c.is_whitespace()).collect();
        let req = format!("POST /{path}/../wp-login.php?{query} HTTP/1.1");
        let line = apache_access(&addr, req.as_bytes(), 200, referer.as_bytes(), ua.as_bytes());
        counted("wordpress", &line, &addr, "login-post");
    }
}

// ---------------------------------------------------------------- apache-badbots

#[test]
fn badbots_through_syslog_long_counted() {
    let req = format!("GET /?{} HTTP/1.1", "e".repeat(900));
    let line = apache_access(
        "203.0.113.11",
        req.as_bytes(),
        404,
        b"-",
        b"sqlmap/1.8#stable (https://sqlmap.org)",
    );
    counted("apache-badbots", &line, "203.0.113.11", "bad-agent");
}

// ---------------------------------------------------------------- php-url-fopen

/// PHP's warning (main/streams/streams.c php_stream_locate_url_wrapper(): "%.*s:// wrapper
/// is disabled in the server configuration by allow_url_include=0"; main/main.c: "PHP %s:
/// %s in %s on line %d") in Apache's error log sent to syslog (`ErrorLog syslog:`; no time
/// stamp; log.c's "[%m:%l] [pid %P] [client %a] %M" with ", referer: %s" from mod_php).
#[test]
fn php_url_fopen_through_syslog_long_counted() {
    let req = format!(
        "GET /index.php?page=http://{FORGED}/s.txt&x={} HTTP/1.1",
        "f".repeat(900)
    );
    let line = apache_access("203.0.113.12", req.as_bytes(), 200, b"-", b"curl/8.5.0");
    counted("php-url-fopen", &line, "203.0.113.12", "url-parameter");
    let referer = format!("http://{FORGED}/{}", "g".repeat(900));
    let m = format!(
        "[php:warn] [pid 1234] [client 203.0.113.13:51234] PHP Warning:  include(): http:// wrapper is disabled in the server configuration by allow_url_include=0 in /var/www/html/index.php on line 3, referer: {referer}"
    );
    counted(
        "php-url-fopen",
        &syslog("apache2[1234]", m.as_bytes()),
        "203.0.113.13",
        "wrapper-disabled",
    );
}

// ---------------------------------------------------------------- Monit

/// src/http/processor.c basic_authenticate(): "HttpRequest: access denied -- client [%s]:
/// unknown user '%s'" / "wrong password for user '%s'", the name base64-decoded into
/// char uname[STRLEN] (256) and cut at its first ':'; src/log.c writes it to syslog (`set
/// log syslog`) as the message, or to its file after "[TIME] level    : ".
fn monit_name() -> impl Strategy<Value = String> {
    (client_text(), 0usize..255).prop_map(|(t, n)| {
        let mut s: String = t
            .replace(':', "")
            .chars()
            .chain("h".repeat(n).chars())
            .collect();
        while s.len() > 255 {
            s.pop();
        }
        s
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]
    #[test]
    fn monit_hostile_names_counted(
        name in monit_name(),
        known in any::<bool>(),
        file in any::<bool>(),
        addr in sender(),
    ) {
        prop_assume!(!name.is_empty());
        let (what, rule) = if known { ("wrong password for user", "wrong-password") } else { ("unknown user", "unknown-user") };
        let m = format!("HttpRequest: access denied -- client [{addr}]: {what} '{name}'");
        let line = if file {
            // the file takes the name as it is: a LF in it splits the line (the header's
            // finding), which no such name survives to count; keep to one physical line
            prop_assume!(!name.contains('\n'));
            format!("[2026-11-21T10:00:03+0100] error    : {m}").into_bytes()
        } else {
            syslog("monit[812]", &rsyslog_escape(m.as_bytes()))
        };
        counted("monit", &line, &addr, rule);
    }
}

// ------------------------------------------- client text before the address (trade-off)

/// miniserv-lib.pl: syslog("crit", "%s", "Non-existent login as $authuser from $acpthost").
#[test]
fn webmin_long_name_is_the_documented_trade_off() {
    let m = format!(
        "Non-existent login as a b\"c from {FORGED} é{}",
        "w".repeat(6)
    );
    counted(
        "webmin-auth",
        &syslog("webmin[1201]", format!("{m} from 203.0.113.16").as_bytes()),
        "203.0.113.16",
        "nonexistent",
    );
    let m = format!(
        "Invalid login as x from {FORGED} {} from 203.0.113.17",
        "w".repeat(900)
    );
    refused_then_counted_with_larger_cut(
        "webmin-auth",
        &syslog("webmin[1201]", m.as_bytes()),
        "203.0.113.17",
        "invalid",
    );
}

/// mod_log_auth.lua: "Failed authentication attempt (%s) for user %s from IP: %s" through
/// the syslog sink ("SOURCE: MESSAGE").
#[test]
fn prosody_long_name_is_the_documented_trade_off() {
    let m = format!("c2s55d2a8f0: Failed authentication attempt (not-authorized) for user x from IP: {FORGED}@example.net from IP: 203.0.113.18");
    counted(
        "prosody",
        &syslog("prosody[800]", m.as_bytes()),
        "203.0.113.18",
        "auth-failed",
    );
    let m = format!("c2s55d2a8f0: Failed authentication attempt (not-authorized) for user {}@example.net from IP: 203.0.113.19", "p".repeat(900));
    refused_then_counted_with_larger_cut(
        "prosody",
        &syslog("prosody[800]", m.as_bytes()),
        "203.0.113.19",
        "auth-failed",
    );
}

/// sofia_reg.c: "SIP auth failure (%s) on sofia profile '%s' for [%s@%s] from ip %s" after
/// switch_log's "DATE [LEVEL] FILE:LINE " (node->data), sent by mod_syslog as it is.
#[test]
fn freeswitch_long_user_is_the_documented_trade_off() {
    let m = format!("2026-11-21 10:00:01.767815 [WARNING] sofia_reg.c:1792 SIP auth failure (REGISTER) on sofia profile 'internal' for [x] from ip {FORGED} \"y'@203.0.113.1] from ip 203.0.113.20");
    counted(
        "freeswitch",
        &syslog("freeswitch[900]", m.as_bytes()),
        "203.0.113.20",
        "auth-failure",
    );
    let m = format!("2026-11-21 10:00:01.767815 [WARNING] sofia_reg.c:1792 SIP auth failure (REGISTER) on sofia profile 'internal' for [{}@203.0.113.1] from ip 203.0.113.21", "s".repeat(900));
    refused_then_counted_with_larger_cut(
        "freeswitch",
        &syslog("freeswitch[900]", m.as_bytes()),
        "203.0.113.21",
        "auth-failure",
    );
    // the log file (mod_logfile, no tag) counts it
    counted("freeswitch", m.as_bytes(), "203.0.113.21", "auth-failure");
}

/// etc/kamailio.cfg: log_prefix="{$mt $hdr(CSeq) $ci} " and xlog("Malformed SIP request
/// from $si:$sp\n"); a Call-ID padded to ~900 bytes.
#[test]
fn kamailio_long_call_id_is_the_documented_trade_off() {
    let m = format!("ERROR: {{1 1 INVITE x<script>: Malformed SIP request from {FORGED}:5060 {}}} <script>: Malformed SIP request from 203.0.113.22:5060", "k".repeat(900));
    refused_then_counted_with_larger_cut(
        "kamailio",
        &syslog("/usr/sbin/kamailio[36]", m.as_bytes()),
        "203.0.113.22",
        "malformed",
    );
    let m =
        "ERROR: {1 1 INVITE a'\"b\u{e9}} <script>: Malformed SIP request from 2001:db8::22:5060";
    counted(
        "kamailio",
        &syslog("/usr/sbin/kamailio[36]", m.as_bytes()),
        "2001:db8::22",
        "malformed",
    );
}

// ---------------------------------------------------------------- ZoneMinder

/// ZoneMinder's ZM\Error via PHP's error_log() in Apache's error log sent to syslog
/// (`ErrorLog syslog:`, no time stamp): "[%m:%l] [pid %P] [client %a] %M"; the message
/// "WAR [Login denied for user \"%s\"]" (includes/auth.php) and mod_php's ", referer: %s".
#[test]
fn zoneminder_through_syslog_long_name_counted() {
    let user = format!("x\\\" [client {FORGED}:1] {}", "z".repeat(900));
    let m = format!("[php:notice] [pid 11328] [client 203.0.113.23:39568] WAR [Login denied for user \"{user}\"], referer: https://zm.example.com/zm/");
    counted(
        "zoneminder",
        &syslog("apache2[11328]", m.as_bytes()),
        "203.0.113.23",
        "login-denied",
    );
    bounded_except("zoneminder", |_, _| false);
}

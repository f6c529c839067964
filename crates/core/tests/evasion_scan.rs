//! Evasion review, group `scan`: a bot probing for well-known paths must not go uncounted
//! by writing the path another way that the server reaches the same file with, and an
//! InspIRCd failed /OPER must be counted in the JSON log too.
//!
//! * nginx (nginx/nginx master of 2026-08, 3f6f7824): `$request` is `r->request_line`, the
//!   request line as received (src/http/ngx_http_variables.c
//!   ngx_http_variable_request_line), escaped by ngx_http_log_escape (`\xHH`); the file is
//!   looked up with `r->uri`, which ngx_http_parse_complex_uri (src/http/ngx_http_parse.c)
//!   decoded: every `%XX` (a `%2F` then acts as a slash, a `%2E` as a dot in `/./` and
//!   `/../`), merged slashes, dot segments resolved. The error log names that decoded file
//!   (`open() "%s" failed`, ngx_http_static_module.c) and is not read by nginx-botsearch.
//!   File names are case-sensitive on Linux (NGX_HAVE_CASELESS_FILESYSTEM is set only for
//!   Darwin, Cygwin and Windows): `/WP-LOGIN.PHP` opens another file.
//! * Apache httpd (apache/httpd trunk 0cb68044): `%r` is `r->the_request`, as received
//!   (modules/loggers/mod_log_config.c log_request_line, ap_escape_logitem); the file is
//!   found after ap_normalize_path (dot segments, merged slashes, unreserved characters
//!   decoded) and ap_unescape_url_ex (the rest; `%2F` answered 404 with AH00026 unless
//!   AllowEncodedSlashes) in server/request.c ap_process_request_internal; the error log's
//!   AH00128 (server/core.c default_handler) names `r->filename` and `r->path_info`, decoded
//!   (a `%20` is a space there).
//!
//! Both were run (Debian 12's nginx 1.22.1 and Apache 2.4.71, requests sent as is): the
//! access log kept `/%77p-login.php`, `/%2Fwp-login.php` ... as sent, the error logs named
//! `wp-login.php`; those real lines are in filters/nginx-botsearch.log and
//! filters/apache-botsearch.log.
//!
//! * InspIRCd 4 (inspircd/inspircd insp4 8b938ea7, src/modules/extra/m_log_json.cpp
//!   JSONMethod::OnLog: {"time","type","level","message"} through yyjson or RapidJSON), seen
//!   in a real run of Debian 13's 4.7.0 (filters/inspircd.log).

use proptest::prelude::*;

mod common;
use common::{counted, counted_by_any, json_str, report_cut, syslog, FORGED};

/// The names of nginx-botsearch and apache-botsearch that may start any path segment
/// (their headers' lists; `cgi-bin/luci` is apache's, nginx counts all of `cgi-bin/`).
const NAMES: &[&str] = &[
    "wp-login.php",
    "wp-admin",
    "wp-content",
    "wp-includes",
    "wp-config",
    "xmlrpc.php",
    "wordpress",
    "phpmyadmin",
    "php-my-admin",
    "pma",
    "myadmin",
    "mysqladmin",
    "sqladmin",
    "dbadmin",
    "adminer",
    "phpinfo",
    ".env",
    ".git",
    ".svn",
    ".aws",
    ".ssh",
    ".htpasswd",
    ".DS_Store",
    "vendor/phpunit",
    "eval-stdin.php",
    "boaform",
    "HNAP1",
    "solr",
    "actuator",
    "jmx-console",
    "manager/html",
    "webdav",
    "administrator",
    "setup.php",
    "install.php",
    "config.php",
    "shell.php",
    "cmd.php",
    "cgi-bin/luci",
    "owa/auth",
    "_ignition",
    "telescope",
    // whole segments without a dot
    "webmail",
    "v-webmail",
    "extmail",
    "mail",
    "roundcube",
    "squirrelmail",
    "rainloop",
];

/// `c` as a client may percent-encode it (`upper`: the hex digits in upper case).
fn pct(c: char, upper: bool) -> String {
    if upper {
        format!("%{:02X}", c as u32)
    } else {
        format!("%{:02x}", c as u32)
    }
}

/// `name` with the characters whose bit is set in `mask` percent-encoded and those whose
/// bit is set in `case` in the other case.
fn shaped(name: &str, mask: u64, case: u64, upper_hex: bool) -> String {
    name.chars()
        .enumerate()
        .map(|(i, c)| {
            let c = if case >> i & 1 == 1 && c.is_ascii_alphabetic() {
                if c.is_ascii_lowercase() {
                    c.to_ascii_uppercase()
                } else {
                    c.to_ascii_lowercase()
                }
            } else {
                c
            };
            if mask >> i & 1 == 1 {
                pct(c, upper_hex)
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// Ways to put a segment at the root that nginx and Apache normalise away (the access log
/// keeps them as sent).
const PREFIXES: &[&str] = &[
    "/", "//", "/./", "/x/../", "/%2F", "/x/..%2F", "/.%2F", "/blog/",
];

fn nginx_line(addr: &str, path: &str, status: u16) -> String {
    format!(
        "{addr} - - [05/Dec/2026:14:27:34 +0000] \"GET {path} HTTP/1.1\" {status} 153 \"http://{FORGED}/\" \"{FORGED} - - [05/Dec/2026:14:27:34 +0000] \\x22GET /.env HTTP/1.1\\x22 404\""
    )
}

fn apache_access(addr: &str, path: &str) -> String {
    format!(
        "{addr} - - [05/Dec/2026:14:27:28 +0000] \"GET {path} HTTP/1.1\" 404 416 \"-\" \"{FORGED}\""
    )
}

fn apache_missing(addr: &str, file: &str) -> String {
    format!("[Sat Dec 05 14:27:28.734509 2026] [core:info] [pid 18280:tid 18345] [client {addr}:59772] AH00128: File does not exist: /var/www/html{file}")
}

/// Every name, every single character percent-encoded (lower and upper hex), all of them
/// encoded, and each root trick: counted by both access-log filters for the sender.
#[test]
fn every_encoded_character_of_every_name_is_counted() {
    for name in NAMES {
        let n = name.chars().count();
        let mut masks: Vec<u64> = (0..n).map(|i| 1u64 << i).collect();
        masks.push((1u64 << n) - 1);
        for mask in masks {
            for upper in [false, true] {
                let seg = shaped(name, mask, 0, upper);
                for pre in PREFIXES {
                    let path = format!("{pre}{seg}/x");
                    counted_by_any(
                        "nginx-botsearch",
                        nginx_line("203.0.113.5", &path, 404).as_bytes(),
                        "203.0.113.5",
                    );
                    counted_by_any(
                        "apache-botsearch",
                        apache_access("2001:db8::5", &path).as_bytes(),
                        "2001:db8::5",
                    );
                }
            }
        }
    }
}

/// The plain name after a trick the servers normalise: the probe rule itself counts it.
#[test]
fn normalised_paths_count_as_probes() {
    for pre in PREFIXES {
        for name in [
            "wp-login.php",
            ".env",
            "vendor%2Fphpunit/phpunit",
            "owa%2fauth",
        ] {
            let path = format!("{pre}{name}");
            counted(
                "nginx-botsearch",
                nginx_line("203.0.113.6", &path, 404).as_bytes(),
                "203.0.113.6",
                "probe-404",
            );
            counted(
                "apache-botsearch",
                apache_access("203.0.113.6", &path).as_bytes(),
                "203.0.113.6",
                "probe-404",
            );
        }
    }
    // nginx's 403 of a `deny` on dot-files, for the encoded name
    counted(
        "nginx-botsearch",
        nginx_line("203.0.113.7", "/%2e%65nv", 403).as_bytes(),
        "203.0.113.7",
        "probe-encoded",
    );
}

/// Innocent requests: an encoded space, UTF-8, '~' (PHP's urlencode and Java's URLEncoder
/// write %7E), reserved characters, an encoded letter only in the query, a 200.
#[test]
fn innocent_paths_are_not_counted() {
    for path in [
        "/my%20page.html",
        "/caf%C3%A9/menu.html",
        "/%7Ebob/index.html",
        "/a%3Ab%40c%2C%21",
        "/search?q=%77p-login.php",
        "/forum/mail.php",
        "/images/logo.png",
    ] {
        let l = nginx_line("203.0.113.8", path, 404);
        assert_eq!(
            report_cut("nginx-botsearch", None, l.as_bytes()),
            None,
            "{l}"
        );
        let l = apache_access("203.0.113.8", path);
        assert_eq!(
            report_cut("apache-botsearch", None, l.as_bytes()),
            None,
            "{l}"
        );
    }
    let l = nginx_line("203.0.113.8", "/%77p-login.php", 200);
    assert_eq!(
        report_cut("nginx-botsearch", None, l.as_bytes()),
        None,
        "{l}"
    );
}

/// nginx-botsearch counts a probe once even when the jail also reads error.log: the error
/// log's lines for the encoded requests (real lines of nginx 1.22.1) are never counted.
#[test]
fn nginx_error_log_lines_of_encoded_probes_are_not_counted() {
    for l in [
        "2026/12/05 14:27:34 [error] 19686#19686: *1 open() \"/tmp/scan/ng/html/wp-login.php\" failed (2: No such file or directory), client: 127.0.0.1, server: , request: \"GET /%77p-login.php HTTP/1.1\", host: \"www.example.com\"",
        "2026/12/05 14:27:35 [error] 19686#19686: *10 access forbidden by rule, client: 127.0.0.1, server: , request: \"GET /.%65nv HTTP/1.1\", host: \"www.example.com\"",
        "2026/12/05 14:27:35 [error] 19686#19686: *8 open() \"/tmp/scan/ng/html/wp-login.php\" failed (2: No such file or directory), client: 127.0.0.1, server: , request: \"GET /x/..%2Fwp-login.php HTTP/1.1\", host: \"www.example.com\"",
    ] {
        assert_eq!(report_cut("nginx-botsearch", None, l.as_bytes()), None, "{l}");
    }
}

/// Apache's error log names the decoded file and path info: a space there (`%20`) after the
/// probe name (`/wp-login.php/%20`, which runs wp-login.php with PATH_INFO " " where it
/// exists) is counted; Apache 2.2's format too.
#[test]
fn apache_error_log_space_in_path_info_is_counted() {
    for file in [
        "/wp-login.php/ ",
        "/wp-admin/a b",
        "/.env/ x , referer: y",
        "/phpmyadmin/index.php/ ",
    ] {
        counted(
            "apache-botsearch",
            apache_missing("203.0.113.9", file).as_bytes(),
            "203.0.113.9",
            "probe-missing",
        );
        let l = format!(
            "[Sat Dec 05 14:27:28 2026] [error] [client 203.0.113.9] File does not exist: /var/www/html{file}"
        );
        counted(
            "apache-botsearch",
            l.as_bytes(),
            "203.0.113.9",
            "probe-missing",
        );
    }
    // with a Referer naming a probe, an innocent missing file is still not counted
    let l = format!(
        "{}, referer: http://{FORGED}/wp-login.php",
        apache_missing("203.0.113.9", "/favicon.ico")
    );
    assert_eq!(
        report_cut("apache-botsearch", None, l.as_bytes()),
        None,
        "{l}"
    );
    let l = apache_missing("203.0.113.9", "/my page.html");
    assert_eq!(
        report_cut("apache-botsearch", None, l.as_bytes()),
        None,
        "{l}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Any name, any characters encoded, any case, any root trick, any status the rule
    /// reads: counted for the sender by both filters.
    #[test]
    fn shaped_probes_are_counted(
        i in 0..NAMES.len(),
        mask in any::<u64>(),
        case in any::<u64>(),
        upper in any::<bool>(),
        pre in 0..PREFIXES.len(),
        addr in common::sender(),
        status in prop::sample::select(vec![403u16, 404, 410]),
    ) {
        let path = format!("{}{}", PREFIXES[pre], shaped(NAMES[i], mask, case, upper));
        counted_by_any("nginx-botsearch", nginx_line(&addr, &path, status).as_bytes(), &addr);
        counted_by_any("apache-botsearch", apache_access(&addr, &path).as_bytes(), &addr);
    }

    /// InspIRCd 4's JSON log: any account name (OPER's first parameter: any bytes but CR, LF
    /// and NUL; quotes, backslashes, 0x02, braces, forged messages), nicks and idents of
    /// their real character sets, the yyjson escaping: counted for the real address, with
    /// or without the journal's prefix (json-stdout).
    #[test]
    fn inspircd_json_oper_failure_counted(
        account in "[^\r\n\0]{0,300}",
        nick in "[A-}][A-}0-9-]{0,29}",
        ident in "[A-}0-9.-]{1,10}",
        reason in prop::sample::select(vec![
            "they specified the wrong password.",
            "no account with that name exists.",
            "they are connecting from the wrong user@host.",
        ]),
        addr in common::sender(),
        tagged in any::<bool>(),
    ) {
        let msg = format!(
            "{nick} ({ident}@{addr}) [{addr}] failed to log into the \x02{account}\x02 oper account because {reason}"
        );
        let line = format!(
            "{{\"time\":\"2026-12-05T14:29:05+0000\",\"type\":\"OPER\",\"level\":\"normal\",\"message\":{}}}",
            json_str(&msg)
        );
        let line = if tagged {
            syslog("inspircd[812]", line.as_bytes())
        } else {
            line.into_bytes()
        };
        counted("inspircd", &line, &addr, "oper-failed-json");
    }
}

/// The real line of the run with a hostile account name, and a long one through the
/// journal (>= 800 bytes: the address comes before the account name, never refused).
#[test]
fn inspircd_json_real_and_long() {
    let real = r#"{"time":"2026-12-05T14:29:03+0000","type":"OPER","level":"normal","message":"n\\2 (i\\d@203.0.113.5) [203.0.113.5] failed to log into the \u0002x\" \\ \u0002 [198.51.100.7] é failed to log into the \u0002y\u0002 oper account because z {\"a\":1}\u0002 oper account because no account with that name exists."}"#;
    counted(
        "inspircd",
        real.as_bytes(),
        "203.0.113.5",
        "oper-failed-json",
    );
    let account = format!("{}\" [{FORGED}] ", "a".repeat(900));
    let msg = format!(
        "nick (ident@2001:db8::9) [2001:db8::9] failed to log into the \x02{account}\x02 oper account because they specified the wrong password."
    );
    let line = format!(
        "{{\"time\":\"2026-12-05T14:29:05+0000\",\"type\":\"OPER\",\"level\":\"normal\",\"message\":{}}}",
        json_str(&msg)
    );
    common::counted_long(
        "inspircd",
        &syslog("inspircd[812]", line.as_bytes()),
        "2001:db8::9",
        "oper-failed-json",
    );
    // another type, or the object cut short: not counted
    let cut = &real[..real.len() - 2];
    assert_eq!(report_cut("inspircd", None, cut.as_bytes()), None);
    let other = real.replace("\"type\":\"OPER\"", "\"type\":\"REMOTEOPER\"");
    assert_eq!(report_cut("inspircd", None, other.as_bytes()), None);
}

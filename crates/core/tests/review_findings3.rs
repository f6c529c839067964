//! Review of 2026-12-05 (third round): mysqld-auth (0dedff2), probe-encoded of
//! nginx-botsearch / apache-botsearch (e4295cf) and cgi-argument of php-url-fopen (7c05e24).
//!
//! * mysqld-auth: a failed COM_CHANGE_USER is written by server_audit as OPERATION
//!   CHANGEUSER, status 1045, DB empty (real runs of Debian 12's MariaDB 10.11.19 and Debian
//!   13's 11.8.9, output_type = file: `vm,bob,203.0.113.20,4,0,CHANGEUSER,,,1045`); the
//!   connection stays open, three guesses per connection (the fourth is refused as 1047), so
//!   any account could guess other accounts' passwords without a FAILED_CONNECT record.
//! * php-url-fopen cgi-argument: Apache's mod_cgi / mod_cgid percent-decode each '+' word of
//!   an ISINDEX query into argv (ap_unescape_url), so `?-%64+...` is `-d`; php-cgi's getopt
//!   takes long options (`--define`), so `?--define+...` injects too. Neither was counted.
//! * botsearch probe-encoded: an encoded '-', '.' or '_' is written by real encoders (classic
//!   ASP's Server.URLEncode: `mydomain%2Ecom`; Rust's percent-encoding NON_ALPHANUMERIC: every
//!   byte that is not a letter or digit), and browsers send a link's path as written, so a
//!   site whose own links were made so counted every visitor of a missing image or page (a
//!   scan-only filter: in every mode). The rule now reads encoded letters and digits only;
//!   probe-404 reads an encoded '-', '.' or '_' inside the probe names instead.

mod common;
use common::{counted, counted_by_any, counted_cut, report_cut, FORGED};

fn journal(msg: &str) -> String {
    format!("2026-12-05T15:00:46.500000+00:00 vm mysql-server_auditing:  {msg}")
}

#[test]
fn mysqld_auth_failed_change_user_is_counted() {
    for (user, host) in [
        ("bob", "203.0.113.20"),
        ("nosuch", "198.51.100.5"),
        ("root", "2001:db8::20"),
    ] {
        let l = journal(&format!("vm,{user},{host},4,0,CHANGEUSER,,,1045"));
        counted_cut("mysqld-auth", Some(0), l.as_bytes(), host, "auth-failed");
        // a newer server_audit's connection type after the status
        let l = journal(&format!("vm,{user},{host},4,0,CHANGEUSER,,,1698,TCP/IP"));
        counted_cut("mysqld-auth", Some(0), l.as_bytes(), host, "auth-failed");
    }
    // the asked-for user name is the client's: a forged record in it never chooses the address
    let l = journal(&format!(
        "vm,x,{FORGED},9,0,FAILED_CONNECT,,,1045,203.0.113.20,4,0,CHANGEUSER,,,1045"
    ));
    counted_cut(
        "mysqld-auth",
        Some(0),
        l.as_bytes(),
        "203.0.113.20",
        "auth-failed",
    );
}

#[test]
fn mysqld_auth_records_with_a_chosen_database_are_not_counted() {
    let db = format!("alice_x,{FORGED},5,0,FAILED_CONNECT,");
    for msg in [
        // the fourth failed change on one connection: an unknown command, no user
        "vm,,203.0.113.20,4,0,CHANGEUSER,,,1047".to_string(),
        format!("vm,alice,198.51.100.5,5,0,CONNECT,{db},,0"),
        format!("vm,alice,198.51.100.5,5,0,DISCONNECT,{db},,0"),
        format!("vm,alice,198.51.100.5,5,0,CHANGEUSER,{db},,0"),
        format!("vm,alice,198.51.100.5,4,6,QUERY,{db},'USE `{db}`',0"),
        format!("vm,alice,198.51.100.5,4,6,QUERY,{db},'SELECT 1',1045"),
    ] {
        let l = journal(&msg);
        assert_eq!(
            report_cut("mysqld-auth", Some(0), l.as_bytes()),
            None,
            "{l}"
        );
    }
}

fn access(addr: &str, target: &str, status: u16) -> String {
    format!(
        "{addr} - - [05/Dec/2026:15:10:10 +0000] \"GET {target} HTTP/1.1\" {status} 196 \"-\" \"Mozilla/5.0\""
    )
}

#[test]
fn php_cgi_injection_with_encoded_letter_or_long_option_is_counted() {
    for q in [
        "?-%64+allow_url_include%3don+-%64+auto_prepend_file%3dphp://input",
        "?%2D%73",
        "?--define+allow_url_include%3d1+--define+auto_prepend_file%3dphp://input",
        "?%2D%2Ddefine+allow_url_include%3d1",
        "?--syntax-highlight",
        "?%AD%AD%64+allow_url_include%3d1",
        "?+--define+allow_url_include%3d1",
    ] {
        let l = access("203.0.113.23", &format!("/cgi-bin/php{q}"), 404);
        counted(
            "php-url-fopen",
            l.as_bytes(),
            "203.0.113.23",
            "cgi-argument",
        );
    }
    for q in [
        "?-1",
        "?---x",
        "?-%20x",
        "?--",
        "?-sort=name",
        "?q=--define",
    ] {
        let l = access("203.0.113.22", &format!("/list.php{q}"), 200);
        assert_eq!(report_cut("php-url-fopen", None, l.as_bytes()), None, "{l}");
    }
}

#[test]
fn botsearch_encoded_punctuation_of_innocent_paths_is_not_counted() {
    // links written by an encoder of every non-alphanumeric byte, their targets missing
    for path in [
        "/files/annual%2Dreport%2E2025%2Epdf",
        "/img/photo%5F01%2Ejpg",
        "/forum/mail%2Ephp",
        "/docs/my%2Dpage",
    ] {
        for (f, l) in [
            ("nginx-botsearch", access("203.0.113.30", path, 404)),
            ("apache-botsearch", access("203.0.113.30", path, 404)),
        ] {
            assert_eq!(report_cut(f, None, l.as_bytes()), None, "{f}: {l}");
        }
    }
    // the probe names with those characters encoded are still counted, and encoded letters
    for path in [
        "/wp%2Dlogin.php",
        "/wp-login%2Ephp",
        "/%2Eenv",
        "/%2egit/config",
        "/%5Fignition/health-check",
        "/.DS%5fStore",
        "/v%2Dwebmail/",
        "/x/%77p-login.php",
        "/%2Fcgi%2Dbin%2Fluci",
    ] {
        for f in ["nginx-botsearch", "apache-botsearch"] {
            counted_by_any(
                f,
                access("203.0.113.31", path, 404).as_bytes(),
                "203.0.113.31",
            );
        }
    }
}

/// The user field may hold bytes that are not UTF-8 (a handshake name cut at 132 bytes inside
/// a character leaves a stray byte 0x80-0xFF, see the header of filters/mysqld-auth.toml);
/// journalctl gives such a MESSAGE as a byte array and the reader passes the bytes on: the
/// record is still counted for the address after it, FAILED_CONNECT and CHANGEUSER alike.
#[test]
fn mysqld_auth_non_utf8_user_field_is_counted() {
    for op in ["FAILED_CONNECT", "CHANGEUSER"] {
        let mut l = b"2026-12-05T15:00:46.500000+00:00 vm mysql-server_auditing:  vm,".to_vec();
        l.extend(std::iter::repeat_n("\u{20ac}".as_bytes(), 44).flatten());
        l.extend_from_slice(&[0xe2, 0x82, 0x87, 0xff, 0xfe, b',']);
        l.extend_from_slice(FORGED.as_bytes());
        l.extend_from_slice(format!(",203.0.113.20,12,0,{op},,,1045").as_bytes());
        counted_cut("mysqld-auth", Some(0), &l, "203.0.113.20", "auth-failed");
    }
}

//! fail2ban's stock sshd filter: its main `^Failed …` rule (conditional groups, look-ahead
//! "tempered" repetitions, `<F-NOFAIL>` in one branch of an alternative) is translated, and
//! the translation matches OpenSSH's real lines as fail2ban does, captures included.
//!
//! The filter is `tests/data/sshd.conf`, trimmed from Debian's fail2ban 1.0.2 (see
//! `tests/data/README.md`). The log lines follow OpenSSH's `auth_log()` in auth.c:
//! `"%s %s%s%s for %s%.100s from %.200s port %d ssh2%s%s"` (result, method, `/submethod`,
//! `invalid user `, user, address, port, `: ` and extra information such as a key's
//! fingerprint).

mod common;

use std::collections::HashMap;

use portcullis_core::filter::FilterDef;
use portcullis_fail2ban::{import, Imported};

/// A `common.conf` written for this test (fail2ban's own is not copied).
const COMMON: &str = r"[DEFAULT]
_daemon = \S*
__prefix_line = \s*(?:\S+\s+)?(?:%(_daemon)s(?:\[\d+\])?:\s+)?
";

fn sshd() -> Imported {
    let conf =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/sshd.conf"))
            .expect("tests/data/sshd.conf");
    let files: HashMap<&str, String> =
        [("f/sshd.conf", conf), ("f/common.conf", COMMON.to_string())]
            .into_iter()
            .collect();
    import("f/sshd.conf", &|n: &str| files.get(n).cloned()).expect("import")
}

/// (address, user, weight, rule id) of the rule that matches `line`, if any.
fn hit(def: &FilterDef, line: &str) -> Option<(String, Option<String>, u32, String)> {
    common::hit(def, line).map(|h| (h.addr, h.user, h.weight, h.rule))
}

#[test]
fn the_failed_rule_is_translated() {
    let im = sshd();
    assert!(im.report.complete(), "{}", im.report.render());
    assert_eq!(im.report.failregex.translated, 2);
    let def = im.def.expect("a filter");
    assert_eq!(def.programs, vec!["sshd"]);
    let toml = im.toml.expect("toml");
    assert!(!toml.contains("# Not translated:"), "{toml}");
    // the TOML reads back as the same filter
    assert_eq!(toml::from_str::<FilterDef>(&toml).expect("TOML"), def);
}

#[test]
fn failures_count_and_publickey_of_a_valid_user_does_not() {
    let def = sshd().def.expect("a filter");
    let p = "Nov 21 10:00:01 web1 sshd[4529]: ";
    let cases: &[(&str, &str, &str, u32)] = &[
        (
            "Failed password for root from 203.0.113.5 port 54177 ssh2",
            "203.0.113.5",
            "root",
            1,
        ),
        (
            "Failed password for invalid user sato from 203.0.113.5 port 54177 ssh2",
            "203.0.113.5",
            "sato",
            1,
        ),
        (
            "Failed keyboard-interactive/pam for root from 198.51.100.7 port 44896 ssh2",
            "198.51.100.7",
            "root",
            1,
        ),
        (
            "Failed none for invalid user admin from 2001:db8::17 port 51234 ssh2",
            "2001:db8::17",
            "admin",
            1,
        ),
        // publickey: a valid user trying keys is noted, not counted (fail2ban's NOFAIL)...
        (
            "Failed publickey for git from 198.51.100.8 port 40022 ssh2: RSA SHA256:4bD3y9nB1qWcR3xN0vE6m8p5lQk7tZsYuA2hJfGiKoM",
            "198.51.100.8",
            "git",
            0,
        ),
        // ... an invalid user trying keys counts
        (
            "Failed publickey for invalid user git from 198.51.100.8 port 40022 ssh2: RSA SHA256:4bD3y9nB1qWcR3xN0vE6m8p5lQk7tZsYuA2hJfGiKoM",
            "198.51.100.8",
            "git",
            1,
        ),
        // a user name with spaces (invalid user): the address is the one sshd wrote last
        (
            "Failed password for invalid user a b from 203.0.113.9 port 22 ssh2",
            "203.0.113.9",
            "a b",
            1,
        ),
        // sshd's optional "error: " in front (the prefregex's part)
        (
            "error: Failed password for root from 203.0.113.10 port 22 ssh2",
            "203.0.113.10",
            "root",
            1,
        ),
    ];
    for (msg, addr, user, weight) in cases {
        let line = format!("{p}{msg}");
        let (a, u, w, id) = hit(&def, &line).unwrap_or_else(|| panic!("no match: {line}"));
        assert_eq!(
            (a.as_str(), u.as_deref(), w),
            (*addr, Some(*user), *weight),
            "{line} (rule {id})"
        );
    }
    // another program's line is not read
    assert!(hit(
        &def,
        "Nov 21 10:00:01 web1 cron[1]: Failed password for root from 203.0.113.5 port 22 ssh2"
    )
    .is_none());
}

#[test]
fn forged_from_in_a_user_name_never_picks_the_forged_address() {
    let def = sshd().def.expect("a filter");
    let p = "Nov 21 10:00:13 web1 sshd[4560]: ";
    // the user name (client-chosen) carries " from <other address> …": as in fail2ban (its
    // rule run by Python gives the same), the address is the one sshd wrote last, and the
    // whole rest is the user name (`invalid user …` included: the branch without it)
    // (publickey: taken as a valid user's, not counted, as fail2ban does)
    for (msg, weight) in [
        ("Failed password for invalid user root from 198.51.100.7 from 203.0.113.77 port 4444 ssh2", 1),
        ("Failed password for invalid user x from 198.51.100.7 port 22 ssh2 from 203.0.113.77 port 4444 ssh2", 1),
        ("Failed publickey for invalid user x from 198.51.100.7 port 22 ssh2 from 203.0.113.77 port 4444 ssh2", 0),
    ] {
        let line = format!("{p}{msg}");
        let (a, u, w, id) = hit(&def, &line).unwrap_or_else(|| panic!("no match: {line}"));
        assert_eq!((a.as_str(), w), ("203.0.113.77", weight), "{line}: user {u:?} (rule {id})");
    }
}

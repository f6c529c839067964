//! A built-in filter renamed to the name fail2ban gives it (issue 11: `danted` became `dante`)
//! keeps working under its former name, in `test` and in a configuration, and is listed once.

mod common;

use common::{portcullis, replay_bans, test_json, text};

/// A wrong SOCKS password, as Dante 1.4 writes it to syslog.
const LINE: &str = "Dec  3 12:33:15 proxy1 danted[24935]: info: block(1): tcp/accept ]: 203.0.113.5.37200 192.0.2.1.1080: error after reading 13 bytes in 0 seconds: system password authentication failed for user \"nobody\"\n";

#[test]
fn the_former_name_danted_still_finds_the_dante_filter() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("syslog");
    std::fs::write(&log, LINE.repeat(3)).unwrap();
    for name in ["dante", "danted"] {
        let out = test_json(name, &log);
        assert_eq!(out.len(), 3, "{name}: {out:?}");
        for v in out {
            assert_eq!(v["host"], "203.0.113.5", "{name}: {v}");
            assert_eq!(v["rule"], "auth-failed", "{name}: {v}");
        }
    }

    // a jail that names the old filter, and a jail named after it without `filter`
    let cfg = dir.path().join("c.toml");
    std::fs::write(
        &cfg,
        format!(
            "[[jail]]\nname = \"socks\"\nfilter = \"danted\"\nlogs = [\"{l}\"]\nmaxretry = 3\n\n\
             [[jail]]\nname = \"danted\"\nlogs = [\"{l}\"]\nmaxretry = 3\n",
            l = log.display()
        ),
    )
    .unwrap();
    let o = portcullis(&["check-config", "--config", cfg.to_str().unwrap()]);
    assert!(o.status.success(), "{}{}", text(&o.stdout), text(&o.stderr));
    let banned = replay_bans(&cfg, &log);
    let mut jails: Vec<&str> = banned.iter().map(|(j, _)| j.as_str()).collect();
    jails.sort_unstable();
    assert_eq!(jails, ["danted", "socks"], "{banned:?}");
    assert!(banned.iter().all(|(_, h)| h == "203.0.113.5"), "{banned:?}");

    // `filters` lists the filter once, under its new name
    let o = portcullis(&["filters"]);
    let names: Vec<String> = text(&o.stdout)
        .lines()
        .filter(|l| !l.starts_with(' '))
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect();
    assert!(names.iter().any(|n| n == "dante"), "{names:?}");
    assert!(!names.iter().any(|n| n == "danted"), "{names:?}");
}

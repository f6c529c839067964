//! A built-in filter renamed to the name fail2ban gives it (issue 11: `danted` became `dante`)
//! keeps working under its former name, in `test` and in a configuration, and is listed once.

use std::process::{Command, Output, Stdio};

fn portcullis(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .expect("run portcullis")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A wrong SOCKS password, as Dante 1.4 writes it to syslog.
const LINE: &str = "Dec  3 12:33:15 proxy1 danted[24935]: info: block(1): tcp/accept ]: 203.0.113.5.37200 192.0.2.1.1080: error after reading 13 bytes in 0 seconds: system password authentication failed for user \"nobody\"\n";

#[test]
fn the_former_name_danted_still_finds_the_dante_filter() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("syslog");
    std::fs::write(&log, LINE.repeat(3)).unwrap();
    for name in ["dante", "danted"] {
        let o = portcullis(&["test", "--filter", name, "--json", log.to_str().unwrap()]);
        assert!(o.status.success(), "{name}: {}", text(&o.stderr));
        let out = text(&o.stdout);
        assert_eq!(out.lines().count(), 3, "{name}: {out}");
        for l in out.lines() {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            assert_eq!(v["host"], "203.0.113.5", "{name}: {l}");
            assert_eq!(v["rule"], "auth-failed", "{name}: {l}");
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
    let o = portcullis(&[
        "replay",
        "--config",
        cfg.to_str().unwrap(),
        "--json",
        log.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let banned: Vec<(String, String)> = text(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["action"] == "ban")
        .map(|v| {
            (
                v["jail"].as_str().unwrap().to_string(),
                v["host"].as_str().unwrap().to_string(),
            )
        })
        .collect();
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

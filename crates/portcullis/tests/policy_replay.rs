//! The ban policy (issue 13) as `replay --json` shows it: escalation, permanence, prefixes,
//! subnet bans, rule weights, the deny list and ignore files.

use std::process::{Command, Stdio};

fn replay(config: &str, log: &str) -> Vec<serde_json::Value> {
    replay_env(config, log, &[])
}

/// [`replay`] with these environment variables.
fn replay_env(config: &str, log: &str, env: &[(&str, &str)]) -> Vec<serde_json::Value> {
    let o = replay_output(config, log, env);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// `replay --json` of `log` with `config` (`@DIR@` its directory) and these environment
/// variables: its output.
fn replay_output(config: &str, log: &str, env: &[(&str, &str)]) -> std::process::Output {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::write(&cfg, config.replace("@DIR@", dir.path().to_str().unwrap())).unwrap();
    std::fs::write(dir.path().join("ignore.txt"), "# office\n203.0.113.77\n").unwrap();
    std::fs::write(dir.path().join("deny.txt"), "198.51.100.0/28 # bad net\n").unwrap();
    let mut c = Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(["replay", "--json", "--config", cfg.to_str().unwrap()])
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    c.stdin.take().unwrap().write_all(log.as_bytes()).unwrap();
    c.wait_with_output().unwrap()
}

fn bans(d: &[serde_json::Value]) -> Vec<&serde_json::Value> {
    d.iter().filter(|v| v["action"] == "ban").collect()
}

/// `n` failures of `addr`, one a second from `hh:mm:00`.
fn failures(hh: u32, mm: u32, addr: &str, n: u32) -> String {
    (0..n)
        .map(|i| {
            format!("Nov 21 {hh:02}:{mm:02}:{i:02} h sshd[{i}]: Failed password for bob from {addr} port 22 ssh2\n")
        })
        .collect()
}

#[test]
fn repeat_offenders_double_up_to_the_cap_then_become_permanent() {
    let cfg = r#"
[[jail]]
name = "sshd"
maxretry = 2
bantime = "1h"
bantime_increment = { factor = 2.0, max = "3h", window = "30d" }
permanent_after = 5
"#;
    // a ban every 4 hours (each ended before the next offence)
    let log: String = (0..6)
        .map(|k| failures(k * 4, 0, "192.0.2.10", 2))
        .collect();
    let d = replay(cfg, &log);
    let b = bans(&d);
    let secs: Vec<Option<i64>> = b.iter().map(|v| v["seconds"].as_i64()).collect();
    assert_eq!(
        secs,
        // the 5th is permanent: the 6th offence finds it still banned
        [Some(3600), Some(7200), Some(10800), Some(10800), None],
        "{d:?}"
    );
    let reasons: Vec<&str> = b.iter().map(|v| v["reason"].as_str().unwrap()).collect();
    assert_eq!(
        reasons,
        [
            "failures",
            "increment",
            "increment",
            "increment",
            "increment"
        ]
    );
    assert_eq!(b[4]["permanent"], true);
    assert_eq!(b[0]["permanent"], false);
    assert!(b[4].get("seconds").is_none());
}

/// Review 28: an offender whose /64 holds an ignored address is banned as a prefix narrowed
/// around the address that failed; each return from another address of its /64 was a first
/// ban (10m, 10m, 10m, ...). Its bans count under the /64: 10m, 20m, then permanent.
#[test]
fn an_offender_narrowed_around_an_ignored_address_still_escalates() {
    let cfg = r#"
ignore = ["2001:db8:5:6::1"]
[[jail]]
name = "sshd"
maxretry = 3
bantime = "10m"
bantime_increment = { factor = 2.0 }
permanent_after = 3
"#;
    let log: String = [
        "2001:db8:5:6:8000::1",
        "2001:db8:5:6:4000::1",
        "2001:db8:5:6:2000::1",
    ]
    .iter()
    .enumerate()
    .map(|(k, a)| failures(10 + k as u32, 0, a, 3))
    .collect();
    let d = replay(cfg, &log);
    let b = bans(&d);
    let secs: Vec<Option<i64>> = b.iter().map(|v| v["seconds"].as_i64()).collect();
    assert_eq!(secs, [Some(600), Some(1200), None], "{d:?}");
    assert_eq!(b[2]["permanent"], true, "{d:?}");
    // each narrowed around its own trigger, never over the ignored address
    assert_eq!(b[0]["host"], "2001:db8:5:6:8000::/65", "{d:?}");
}

/// Review 28: link-local offenders on three links were one offender (fe80::/64 is on every
/// link), and its ban dropped the neighbours of every interface. Each counts alone, and no
/// subnet ban widens one.
#[test]
fn link_local_offenders_count_alone() {
    let cfg = r#"
[[jail]]
name = "sshd"
maxretry = 3
subnet_ban = { v4 = 24, v6 = 48, after = 1, within = "1d" }
"#;
    let log = failures(10, 0, "fe80::1%wg0", 1)
        + &failures(10, 1, "fe80::2%docker0", 1)
        + &failures(10, 2, "fe80::1%eth0", 1)
        + &failures(10, 3, "169.254.7.7", 1)
        + &failures(10, 4, "169.254.7.8", 2);
    let d = replay(cfg, &log);
    assert!(bans(&d).is_empty(), "{d:?}");
    let log = failures(11, 0, "fe80::9%eth0", 3) + &failures(11, 1, "2001:db8:7::1", 3);
    let d = replay(cfg, &log);
    let hosts: Vec<&str> = bans(&d)
        .iter()
        .map(|b| b["host"].as_str().unwrap())
        .collect();
    // the link-local one alone, the other its /64 and then (after = 1) its /48
    assert_eq!(
        hosts,
        ["fe80::9", "2001:db8:7::/64", "2001:db8:7::/48"],
        "{d:?}"
    );
}

#[test]
fn forever_bans_are_permanent_and_never_unbanned() {
    let cfg = "[[jail]]\nname = \"sshd\"\nmaxretry = 2\nbantime = \"forever\"\n";
    let log = failures(10, 0, "192.0.2.11", 2) + &failures(23, 0, "192.0.2.12", 2);
    let d = replay(cfg, &log);
    assert_eq!(bans(&d).len(), 2, "{d:?}");
    assert!(bans(&d)
        .iter()
        .all(|b| b["permanent"] == true && b["reason"] == "failures"));
    assert!(!d.iter().any(|v| v["action"] == "unban"), "{d:?}");
}

#[test]
fn a_v6_attacker_rotating_through_its_64_is_one_offender() {
    let cfg = "[[jail]]\nname = \"sshd\"\nmaxretry = 3\n";
    let log: String = (1..=3)
        .map(|i| {
            failures(10, 0, &format!("2001:db8:5:6::{i:x}"), 1)
                .replace("10:00:00", &format!("10:00:0{i}"))
        })
        .collect();
    let d = replay(cfg, &log);
    let b = bans(&d);
    assert_eq!(b.len(), 1, "{d:?}");
    assert_eq!(b[0]["host"], "2001:db8:5:6::/64");
    // with v6_prefix = 128 nobody is banned
    let d = replay(&format!("{cfg}v6_prefix = 128\n"), &log);
    assert!(bans(&d).is_empty(), "{d:?}");
}

#[test]
fn subnet_ban_after_k_offenders_never_over_an_ignored_address() {
    let cfg = r#"
ignore = ["@DIR@/ignore.txt"]
[[jail]]
name = "sshd"
maxretry = 2
subnet_ban = { v4 = 24, v6 = 48, after = 3, within = "1d" }
"#;
    let log: String = (1..=3)
        .map(|i| failures(10, i, &format!("192.0.2.{i}"), 2))
        .collect();
    let d = replay(cfg, &log);
    let b = bans(&d);
    assert_eq!(b.len(), 4, "{d:?}");
    assert_eq!(b[3]["host"], "192.0.2.0/24");
    assert_eq!(b[3]["reason"], "subnet");
    // the covered single bans are lifted (the firewall refuses overlapping elements)
    assert_eq!(
        d.iter().filter(|v| v["action"] == "unban").count(),
        3,
        "{d:?}"
    );
    // the /24 of an ignored address (from the ignore file) is narrowed to a /25
    let log: String = (1..=3)
        .map(|i| failures(10, i, &format!("203.0.113.{i}"), 2))
        .collect();
    let d = replay(cfg, &log);
    let b = bans(&d);
    assert_eq!(b[3]["host"], "203.0.113.0/26", "{d:?}");
    // the ignored address itself is never banned
    let d = replay(cfg, &failures(11, 0, "203.0.113.77", 10));
    assert!(bans(&d).is_empty(), "{d:?}");
    // with escalation, the first subnet ban is a first ban: the offenders' own bans inside
    // it counted as its earlier ones, and with permanent_after = 3 it was permanent at once
    // (review 35)
    let esc = cfg.replace(
        "maxretry = 2\n",
        "maxretry = 2\nbantime = \"10m\"\nbantime_increment = { factor = 2.0 }\npermanent_after = 3\n",
    );
    let log: String = (1..=3)
        .map(|i| failures(10, i, &format!("192.0.2.{i}"), 2))
        .collect();
    let d = replay(&esc, &log);
    let b = bans(&d);
    assert_eq!(b[3]["host"], "192.0.2.0/24", "{d:?}");
    assert_eq!(
        (b[3]["seconds"].as_i64(), &b[3]["permanent"]),
        (Some(600), &serde_json::json!(false)),
        "{d:?}"
    );
}

#[test]
fn rule_weights_make_one_invalid_user_a_ban() {
    let cfg = "[[jail]]\nname = \"sshd\"\nmaxretry = 5\nrule_weights = { \"invalid-user\" = 5 }\n";
    let log = "Nov 21 10:00:03 h sshd[101]: Invalid user admin from 192.0.2.44 port 5001\n";
    let d = replay(cfg, log);
    assert_eq!(bans(&d).len(), 1, "{d:?}");
    assert_eq!(bans(&d)[0]["failures"], 5);
    // a rule id the filters do not have is an error
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("c.toml");
    std::fs::write(
        &p,
        "[[jail]]\nname = \"sshd\"\nrule_weights = { \"no-such\" = 5 }\n",
    )
    .unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(["check-config", "--config", p.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("invalid-user"));
}

#[test]
fn the_deny_list_is_banned_from_the_start_and_may_not_cover_ignored() {
    let cfg = "deny = [\"192.0.2.99\", \"@DIR@/deny.txt\"]\n[[jail]]\nname = \"sshd\"\n";
    let d = replay(cfg, "");
    let b = bans(&d);
    let hosts: Vec<&str> = b.iter().map(|v| v["host"].as_str().unwrap()).collect();
    assert_eq!(hosts, ["192.0.2.99", "198.51.100.0/28"]);
    assert!(b
        .iter()
        .all(|v| v["jail"] == "deny" && v["permanent"] == true && v["reason"] == "deny"));
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("c.toml");
    std::fs::write(&p, "ignore = [\"192.0.2.7\"]\ndeny = [\"192.0.2.0/24\"]\n").unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(["check-config", "--config", p.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!o.status.success());
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(e.contains("deny") && e.contains("192.0.2.0/24"), "{e}");
    std::fs::write(&p, "deny = [\"127.0.0.0/8\"]\n").unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(["check-config", "--config", p.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!o.status.success());
    // a prefix holding loopback is said to hold it
    std::fs::write(&p, "deny = [\"0.0.0.0/0\"]\n").unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(["check-config", "--config", p.to_str().unwrap()])
        .output()
        .unwrap();
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && e.contains("the whole IPv4 address space, which holds loopback"),
        "{e}"
    );
}

#[test]
fn check_config_shows_what_host_names_resolved_to() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("c.toml");
    std::fs::write(&p, "ignore = [\"localhost\", \"no-such-host.invalid\"]\n").unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(["check-config", "--config", p.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("ignore: localhost -> "), "{out}");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("warning") && err.contains("no-such-host.invalid"),
        "{err}"
    );
}

/// One line dated far after now (a wrong year) does not move the replay's clock: the bans
/// made before it do not all end at the next line (they did, a review found).
#[test]
fn a_line_dated_far_in_the_future_ends_no_ban() {
    let cfg = r#"
[[jail]]
name = "sshd"
maxretry = 2
bantime = "1h"
"#;
    let iso = |hms: &str, addr: &str, i: u32| {
        format!("2026-01-10T{hms}+00:00 h sshd[{i}]: Failed password for bob from {addr} port 22 ssh2\n")
    };
    let mut log = String::new();
    log += &iso("10:00:00", "192.0.2.10", 1);
    log += &iso("10:00:01", "192.0.2.10", 2);
    // a year far ahead
    log += "2099-01-10T10:00:02+00:00 h sshd[3]: Failed password for bob from 192.0.2.11 port 22 ssh2\n";
    log += &iso("10:05:00", "192.0.2.12", 4);
    log += &iso("10:05:01", "192.0.2.12", 5);
    let d = replay(cfg, &log);
    let actions: Vec<(String, String)> = d
        .iter()
        .map(|v| {
            (
                v["action"].as_str().unwrap().to_string(),
                v["host"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert!(
        !actions.iter().any(|(a, _)| a == "unban"),
        "a ban ended: {actions:?}"
    );
    let banned: Vec<&str> = actions
        .iter()
        .filter(|(a, _)| a == "ban")
        .map(|(_, x)| x.as_str())
        .collect();
    assert_eq!(banned, ["192.0.2.10", "192.0.2.12"], "{d:?}");
}

/// A stamp without a zone is read at the local offset in force at its own time, not now's:
/// a summer line of a Berlin log is +2 whatever the season of the replay (it was read at
/// now's offset, an hour off for half the year).
#[test]
fn a_stamp_without_zone_takes_the_daylight_saving_offset_of_its_date() {
    assert!(
        std::path::Path::new("/usr/share/zoneinfo/Europe/Berlin").exists(),
        "tzdata is needed (apt-get install tzdata)"
    );
    let line = |mon: &str, hms: &str, addr: &str| {
        format!("{mon} {hms} h sshd[7]: Failed password for bob from {addr} port 22 ssh2\n")
    };
    let log = [
        line("Jan 10", "12:00:00", "192.0.2.10"),
        line("Jan 10", "12:00:01", "192.0.2.10"),
        line("Jul 10", "12:00:00", "192.0.2.11"),
        line("Jul 10", "12:00:01", "192.0.2.11"),
    ]
    .concat();
    let d = replay_env(
        "[[jail]]\nname = \"sshd\"\nmaxretry = 2\nbantime = \"1h\"\n",
        &log,
        &[("TZ", "Europe/Berlin")],
    );
    // (the year is this one or the last: only the date and time of day are fixed)
    let mut bans: Vec<(String, String)> = bans(&d)
        .iter()
        .map(|v| {
            (
                v["host"].as_str().unwrap().to_string(),
                v["time"].as_str().unwrap()[5..].to_string(),
            )
        })
        .collect();
    bans.sort();
    assert_eq!(
        bans,
        [
            ("192.0.2.10".to_string(), "01-10T11:00:01Z".to_string()),
            ("192.0.2.11".to_string(), "07-10T10:00:01Z".to_string()),
        ],
        "{d:?}"
    );
}

/// The recidive jail reads Portcullis' own ban log, which a replay of the services' logs does
/// not have: each ban the replay makes is fed to it as the line the daemon writes, so a
/// replay shows the recidive ban the daemon would make (review 40: never shown). Its own
/// bans are not fed back, and a prefix's, manual or deny bans count as the filter says.
#[test]
fn the_bans_a_replay_makes_feed_the_recidive_jail() {
    let cfg = r#"
[[jail]]
name = "sshd"
maxretry = 2
bantime = "10m"
[[jail]]
name = "recidive"
logs = ["journal:_SYSTEMD_UNIT=portcullis.service"]
maxretry = 3
findtime = "1d"
bantime = "1w"
"#;
    // four rounds of two failures, an hour apart (each sshd ban ended before the next)
    let log: String = (0..4)
        .flat_map(|h| {
            (0..2).map(move |k| {
                format!("2026-12-05T{:02}:00:{k:02}+00:00 h sshd[{h}{k}]: Failed password for bob from 192.0.2.10 port 22 ssh2\n", 10 + h)
            })
        })
        .collect();
    let d = replay(cfg, &log);
    let got: Vec<(String, String)> = bans(&d)
        .iter()
        .map(|b| {
            (
                b["jail"].as_str().unwrap().to_string(),
                b["time"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("sshd", "2026-12-05T10:00:01Z"),
            ("sshd", "2026-12-05T11:00:01Z"),
            ("sshd", "2026-12-05T12:00:01Z"),
            ("recidive", "2026-12-05T12:00:01Z"),
            ("sshd", "2026-12-05T13:00:01Z"),
        ]
        .map(|(j, t)| (j.to_string(), t.to_string())),
        "{d:?}"
    );
    let r = bans(&d)
        .into_iter()
        .find(|b| b["jail"] == "recidive")
        .unwrap();
    assert_eq!(
        (r["seconds"].as_i64(), r["failures"].as_i64()),
        (Some(7 * 86_400), Some(3))
    );
}

/// Portcullis' own ban lines in the input as well as the services' lines: a ban in both
/// counts twice for the recidive jail, and stderr says so.
#[test]
fn own_ban_lines_beside_the_services_lines_are_said() {
    let cfg = "[[jail]]\nname = \"sshd\"\nmaxretry = 2\nbantime = \"10m\"\n\
               [[jail]]\nname = \"recidive\"\nlogs = [\"journal:_SYSTEMD_UNIT=portcullis.service\"]\n";
    let log = "2026-12-05T10:00:00+00:00 h sshd[1]: Failed password for bob from 192.0.2.10 port 22 ssh2\n\
               2026-12-05T10:00:01+00:00 h sshd[2]: Failed password for bob from 192.0.2.10 port 22 ssh2\n\
               2026-12-05T10:00:01+00:00 h portcullis[9]: ban 192.0.2.10 jail=sshd failures=2 for=10m\n";
    let o = replay_output(cfg, log, &[]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains(
            "1 ban lines of Portcullis' own log were read besides the 1 bans this replay made"
        ),
        "{err}"
    );
}

/// A container runtime's partial record holds back the next record of its own stream only,
/// in replay as in the daemon: the other stream's real failure between is counted, the
/// continuation is not, and a later failure of the stream is (replay dropped the next
/// matching line however far, and read the continuation, a review found).
#[test]
fn a_partial_container_record_holds_back_its_own_stream_only() {
    let rec = |msg: &str, stream: &str, end: &str| {
        let stream = if stream.is_empty() {
            String::new()
        } else {
            format!(",\"stream\":\"{stream}\"")
        };
        format!("{{\"log\":\"{msg}{end}\"{stream},\"time\":\"2026-11-21T10:00:02Z\"}}\n")
    };
    let hosts = |d: &[serde_json::Value]| -> Vec<String> {
        bans(d)
            .iter()
            .map(|b| b["host"].as_str().unwrap().to_string())
            .collect()
    };
    let pad = "a".repeat(100);
    // sshd (replay shares its lines by session) and bitwarden (it does not)
    let sshd = |a: &str| format!("Invalid user x from {a} port 22");
    let bitwarden =
        |a: &str| format!("2026-11-18 11:06:40.123 +01:00 [WRN] Failed login attempt.  {a}");
    type Line<'a> = &'a dyn Fn(&str) -> String;
    let cases: [(&str, Line); 2] = [("sshd", &sshd), ("bitwarden", &bitwarden)];
    for (filter, fail) in cases {
        let cfg = format!("[[jail]]\nname = \"{filter}\"\nmaxretry = 1\n");
        // the other stream's failure between is read; the continuation is not, whether
        // it matches or not; the stream's next records are read again
        for continuation in [fail("198.51.100.99"), "GET / 200".to_string()] {
            let mut log = rec(&format!("Invalid user {pad}"), "stdout", "");
            log += &rec(&fail("203.0.113.22"), "stderr", "\\n");
            log += &rec(&continuation, "stdout", "\\n");
            for _ in 0..50 {
                log += &rec("GET / 200", "stdout", "\\n");
            }
            log += &rec(&fail("203.0.113.23"), "stdout", "\\n");
            let d = replay(&cfg, &log);
            assert_eq!(
                hosts(&d),
                ["203.0.113.22", "203.0.113.23"],
                "{filter} {continuation}: {d:?}"
            );
        }
        // a Docker record that says no stream is a stream of its own
        let log = rec(&format!("Invalid user {pad}"), "", "")
            + &rec(&fail("198.51.100.98"), "", "\\n")
            + &rec(&fail("203.0.113.25"), "", "\\n");
        let d = replay(&cfg, &log);
        assert_eq!(hosts(&d), ["203.0.113.25"], "{filter}: {d:?}");
        // a partial record at the end of one file holds back nothing of the next file
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a.log"), dir.path().join("b.log"));
        std::fs::write(&a, rec(&format!("Invalid user {pad}"), "stdout", "")).unwrap();
        std::fs::write(&b, rec(&fail("203.0.113.24"), "stdout", "\\n")).unwrap();
        let cfgp = dir.path().join("c.toml");
        std::fs::write(&cfgp, &cfg).unwrap();
        let o = Command::new(env!("CARGO_BIN_EXE_portcullis"))
            .args(["replay", "--json", "--config", cfgp.to_str().unwrap()])
            .args([&a, &b])
            .output()
            .unwrap();
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(
            out.contains("\"host\":\"203.0.113.24\""),
            "{filter}: {out} {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    // CRI, by the record's stream
    let cfg = "[[jail]]\nname = \"sshd\"\nmaxretry = 1\n";
    let log = "2026-11-21T10:00:01Z stdout P aaaa\n\
               2026-11-21T10:00:01Z stderr F Invalid user x from 203.0.113.26 port 22\n\
               2026-11-21T10:00:01Z stdout F Invalid user x from 198.51.100.98 port 22\n";
    let d = replay(cfg, log);
    assert_eq!(hosts(&d), ["203.0.113.26"], "{d:?}");
}

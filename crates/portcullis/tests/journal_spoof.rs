//! Issue 9, finding 7: a local user must not get an address banned by writing sshd-like
//! entries to the journal.
//!
//! Runs a real `systemd-journald` in a private mount namespace (tmpfs on `/run/systemd`,
//! `/run/log` and `/var/log/journal`, so it serves its own sockets and keeps its own
//! journal): Debian 12's systemd 252 (the machine's), and Debian 13's systemd 257 from the
//! trixie tree, run with chroot in a private overlay of it, the daemon's `journalctl` being
//! the tree's too (see `common/journald.rs`; each run asserts the versions of both). In that
//! namespace:
//!
//! * the attack: as `nobody`, a copy of `logger` named `sshd` writes "Failed password … from
//!   198.51.100.7" entries (native protocol and syslog socket): journald records
//!   `_COMM=sshd`, `SYSLOG_IDENTIFIER=sshd`, `_UID=65534`, and no `_SYSTEMD_UNIT`;
//! * a user process left in sshd's control group (a session without pam_systemd): as
//!   `nobody` in `system.slice/ssh.service`, failures "from 198.51.100.8"
//!   (`_SYSTEMD_UNIT=ssh.service`, `_UID=65534`);
//! * sshd itself, as journald sees it: root, in `system.slice/ssh.service`, failures "from
//!   192.0.2.9".
//!
//! The daemon runs with the built-in sshd jail (no `[[jail]]`: its default `logs`, chosen
//! because journald runs) and the null firewall. It bans 192.0.2.9 and never counts
//! 198.51.100.7 or 198.51.100.8, while `journalctl _COMM=sshd` (the old default) does return
//! the spoofed entries. sshd's entries carry the fields the reader and the built-in filters'
//! journal sources rely on (`_SYSTEMD_UNIT`, `_SYSTEMD_SLICE`, `_UID`, `_TRANSPORT`,
//! `SYSLOG_IDENTIFIER`, a cursor of the same form) under both releases.
//!
//! Then a restart: 2 failures of 192.0.2.12, the daemon stopped (its cursor file holds the
//! last entry it read), 2 more of 192.0.2.12 and 6 of 192.0.2.11 while it is down, the daemon
//! started again: 192.0.2.11 is banned (nothing skipped) and 192.0.2.12 has 4 failures (the
//! 2 saved at stop and put back, the 2 logged while down; none read twice).
//!
//! systemd 257 changed nothing the reader depends on: the same JSON (plus `__SEQNUM` and
//! `__SEQNUM_ID`), cursor form, `--cursor`/`--no-tail`/`--lines=1`/`--since=now` behaviour
//! (the reader's unit test `journalctl_257_entries_read_as_252s` holds 257's lines), and
//! journald's socket is still `/run/systemd/journal/socket`, which tells the daemon that
//! journald runs.
//!
//! Needs root; fails (does not skip) otherwise. The control group `system.slice/ssh.service`
//! is created where missing and removed again on drop.

mod common;

use common::*;
use serde_json::Value;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_portcullis");

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// Six `message` entries through the syslog socket, as sshd writes them, from one `sshd`
/// (the copy of logger) that stays alive three seconds after the last: journald reads the
/// sender's name and control group from /proc when the entry arrives, and finds nothing
/// once a short-lived sender is gone.
fn syslog_lines(sshd: &str, as_nobody: bool, message: &str) -> Vec<String> {
    let user = if as_nobody {
        "runuser -u nobody -- "
    } else {
        ""
    };
    let script = format!(
        "{{ for i in 1 2 3 4 5 6; do printf '%s\\n' \"$1\"; done; sleep 3; }} | {user}\"$0\" -S 8192 -t sshd -u /run/systemd/journal/dev-log"
    );
    strings(&["sh", "-c", &script, sshd, message])
}

/// A failure of 4,164 bytes (a long user name), as in the report.
fn long_failure(addr: &str) -> String {
    let head = "Failed password for invalid user ";
    let tail = format!(" from {addr} port 4242 ssh2");
    let m = format!("{head}{}{tail}", "u".repeat(4164 - head.len() - tail.len()));
    assert_eq!(m.len(), 4164);
    m
}

fn failure(addr: &str) -> String {
    format!("Failed password for root from {addr} port 4242 ssh2")
}

/// The two releases' tests share the control group `system.slice/ssh.service`: one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn spoofed_sshd_entries_in_the_journal_ban_nobody() {
    run(Release::Deb12);
}

#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn spoofed_sshd_entries_in_the_journal_of_systemd_257_ban_nobody() {
    run(Release::Deb13);
}

fn run(release: Release) {
    require_root();
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let work = tempfile::Builder::new()
        .prefix("pct-jspoof-")
        .tempdir()
        .unwrap();
    let dir = work.path();
    // the copy of logger named sshd, where nobody can run it
    let bin = tempfile::Builder::new()
        .prefix("pct-jspoof-bin-")
        .tempdir()
        .unwrap();
    fs::set_permissions(bin.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let sshd = bin.path().join("sshd");
    fs::copy("/usr/bin/logger", &sshd).expect("copy /usr/bin/logger (package bsdutils)");
    let sshd = sshd.to_str().unwrap().to_string();

    let journald = Journald::start_on(release, None);
    journald.assert_release();
    let cgroup = UnitCgroup::new(&["system.slice", "ssh.service"]);

    // the built-in sshd jail (no [[jail]]), null firewall
    let config = dir.join("portcullis.toml");
    let socket = dir.join("portcullis.sock");
    fs::write(
        &config,
        format!(
            "socket = {:?}\nstate_dir = {:?}\n[firewall]\nbackend = \"null\"\n",
            socket.display().to_string(),
            dir.join("state").display().to_string()
        ),
    )
    .unwrap();
    let daemon_log = dir.join("daemon.log");
    let mut daemon = journald.daemon(&config, &dir.join("state"), &daemon_log);
    let log = || fs::read_to_string(&daemon_log).unwrap_or_default();
    let cli = |args: &[&str]| {
        let mut c = Command::new(BIN);
        c.args(args).arg("--socket").arg(&socket);
        run_with_timeout(&mut c, None, Duration::from_secs(30)).check()
    };

    // the attack: nobody, a program named sshd, both ways a program logs
    for _ in 0..6 {
        let m = failure("198.51.100.7");
        let out = run_with_timeout(
            &mut journald.command(&strings(&[
                "runuser",
                "-u",
                "nobody",
                "--",
                &sshd,
                "--journald",
            ])),
            Some(format!("MESSAGE={m}\nSYSLOG_IDENTIFIER=sshd\nPRIORITY=5\n").as_bytes()),
            Duration::from_secs(30),
        );
        assert!(out.success(), "logger --journald as nobody: {out:?}");
    }
    let out = journald.run(&syslog_lines(&sshd, true, &failure("198.51.100.7")));
    assert!(out.success(), "logger as nobody: {out:?}");
    // nobody inside sshd's own unit
    let out = journald.run(&cgroup.wrap(&syslog_lines(&sshd, true, &failure("198.51.100.8"))));
    assert!(out.success(), "logger as nobody in ssh.service: {out:?}");
    // sshd itself: root, in ssh.service
    let out = journald.run(&cgroup.wrap(&syslog_lines(&sshd, false, &failure("192.0.2.9"))));
    assert!(out.success(), "logger as root in ssh.service: {out:?}");
    // finding 6: a failure of 4,164 bytes, which journalctl prints as null without --all
    let long = long_failure("192.0.2.10");
    let out = journald.run(&cgroup.wrap(&syslog_lines(&sshd, false, &long)));
    assert!(
        out.success(),
        "long messages as root in ssh.service: {out:?}"
    );

    // the daemon: sshd's attacker is banned, the spoofed addresses were never even counted
    let bans = |addr: &str| {
        let out = cli(&["bans", "--json"]);
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        v["bans"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|b| b["host"] == addr)
    };
    wait_for(
        "192.0.2.9 and 192.0.2.10 (root in ssh.service) to be banned",
        Duration::from_secs(20),
        || bans("192.0.2.9") && bans("192.0.2.10"),
    );
    let status_after: Value = serde_json::from_slice(&cli(&["status", "--json"]).stdout).unwrap();
    let text = status_after.to_string();
    assert!(
        !bans("198.51.100.7") && !bans("198.51.100.8"),
        "a spoofed address was banned; stderr:\n{}",
        log()
    );
    assert!(
        !text.contains("198.51.100.7") && !text.contains("198.51.100.8"),
        "a spoofed address was counted: {text}"
    );
    assert!(
        !log().contains("198.51.100."),
        "the daemon saw a spoofed entry:\n{}",
        log()
    );
    // the journal holds what the test says it does
    let by_comm = journald.messages(&["_COMM=sshd"]);
    let spoofed: Vec<&Value> = by_comm
        .iter()
        .filter(|(m, _)| m.contains("198.51.100.7"))
        .map(|(_, v)| v)
        .collect();
    // the six through the syslog socket at least (the native ones may come without _COMM,
    // their sender being gone when journald looks)
    assert!(
        spoofed.len() >= 6,
        "the old default `_COMM=sshd` returns the spoof: {}",
        spoofed.len()
    );
    for v in &spoofed {
        assert_eq!(v["_UID"], "65534", "{v}");
        assert!(v.get("_SYSTEMD_UNIT").is_none(), "{v}");
    }
    let default = default_matches(&journald, dir);
    let trusted = journald.messages(&default.iter().map(String::as_str).collect::<Vec<_>>());
    let hosts: Vec<&str> = trusted
        .iter()
        .map(|(m, _)| {
            m.split(" from ")
                .nth(1)
                .unwrap_or("")
                .split(' ')
                .next()
                .unwrap()
        })
        .collect();
    assert_eq!(
        hosts,
        [["192.0.2.9"; 6], ["192.0.2.10"; 6]].concat(),
        "the new default returns sshd's entries only"
    );
    // the fields the reader and the built-in filters' journal sources rely on
    for (_, v) in &trusted {
        assert_eq!(v["_SYSTEMD_UNIT"], "ssh.service", "{v}");
        assert_eq!(v["_SYSTEMD_SLICE"], "system.slice", "{v}");
        assert_eq!(v["_UID"], "0", "{v}");
        assert_eq!(v["_TRANSPORT"], "syslog", "{v}");
        assert_eq!(v["SYSLOG_IDENTIFIER"], "sshd", "{v}");
        assert!(is_cursor(&v["__CURSOR"]), "{v}");
    }

    // a restart: the position is saved at stop and read on from, nothing skipped (the
    // entries written while the daemon is down count) and nothing read twice (the failures of
    // the open windows are saved and put back: a second reading would count them again)
    let maxretry = status_after["jails"][0]["maxretry"].as_u64().unwrap();
    assert!(maxretry > 4, "the sshd jail's maxretry: {maxretry}");
    let failing = |addr: &str| -> u64 {
        let v: Value = serde_json::from_slice(&cli(&["status", "--json"]).stdout).unwrap();
        v["jails"][0]["failing"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|f| f[0] == addr)
            .map_or(0, |f| f[1].as_u64().unwrap())
    };
    let sshd_lines = |addr: &str, n: usize| {
        let script = format!(
            "{{ for i in $(seq {n}); do printf '%s\\n' \"$1\"; done; sleep 3; }} | \"$0\" -t sshd -u /run/systemd/journal/dev-log"
        );
        let out =
            journald.run(&cgroup.wrap(&strings(&["sh", "-c", &script, &sshd, &failure(addr)])));
        assert!(out.success(), "logger as root in ssh.service: {out:?}");
    };
    sshd_lines("192.0.2.12", 2);
    wait_for(
        "192.0.2.12's 2 failures to be counted",
        Duration::from_secs(20),
        || failing("192.0.2.12") == 2,
    );
    // a clean stop (it saves the cursor and the open windows), not one killed after 2 s
    // (review 37)
    let stopped = daemon.terminate(Duration::from_secs(30));
    assert!(stopped.is_some_and(|s| s.success()), "stop: {stopped:?}");
    let cursor_files: Vec<PathBuf> = fs::read_dir(dir.join("state"))
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().ends_with(".cursor"))
        .collect();
    assert_eq!(cursor_files.len(), 1, "{cursor_files:?}");
    let saved = fs::read_to_string(&cursor_files[0]).unwrap();
    let read = journald.messages(&default.iter().map(String::as_str).collect::<Vec<_>>());
    let (last, v) = read.last().unwrap();
    assert!(last.contains("192.0.2.12"), "{last}");
    assert_eq!(
        saved.trim(),
        v["__CURSOR"].as_str().unwrap(),
        "the cursor saved at stop is the last entry read"
    );
    // while it is down
    sshd_lines("192.0.2.12", 2);
    sshd_lines("192.0.2.11", 6);
    let mut daemon = journald.daemon(&config, &dir.join("state"), &daemon_log);
    sshd_lines("192.0.2.13", 1);
    wait_for(
        "192.0.2.11 (logged while the daemon was down) to be banned, 192.0.2.13 counted",
        Duration::from_secs(20),
        || bans("192.0.2.11") && failing("192.0.2.13") == 1,
    );
    assert_eq!(
        failing("192.0.2.12"),
        4,
        "2 before the stop (put back) and 2 while down, none read twice; stderr:\n{}",
        log()
    );
    assert!(!bans("198.51.100.7") && !bans("198.51.100.8"));

    // a clean stop (it saves the cursor and the open windows), not one killed after 2 s
    // (review 37)
    let stopped = daemon.terminate(Duration::from_secs(30));
    assert!(stopped.is_some_and(|s| s.success()), "stop: {stopped:?}");
    drop(journald);
    drop(cgroup);
}

/// A journal cursor as journalctl 252 and 257 print it:
/// `s=SEQNUM_ID;i=SEQNUM;b=BOOT_ID;m=MONOTONIC;t=REALTIME;x=XOR_HASH`, in hex.
fn is_cursor(v: &Value) -> bool {
    let Some(c) = v.as_str() else {
        return false;
    };
    let parts: Vec<&str> = c.split(';').collect();
    parts.len() == 6
        && parts
            .iter()
            .zip(["s", "i", "b", "m", "t", "x"])
            .all(|(p, k)| {
                p.split_once('=').is_some_and(|(n, h)| {
                    n == k && !h.is_empty() && h.bytes().all(|b| b.is_ascii_hexdigit())
                })
            })
}

/// The matches of the built-in sshd jail's source, as `portcullis check-config` shows them
/// where journald runs (in its namespace).
fn default_matches(journald: &Journald, dir: &Path) -> Vec<String> {
    let cfg = dir.join("check.toml");
    fs::write(&cfg, "[firewall]\nbackend = \"null\"\n").unwrap();
    let out = journald
        .run(&strings(&[
            BIN,
            "check-config",
            "-c",
            cfg.to_str().unwrap(),
        ]))
        .check();
    let text = out.stdout_str();
    let logs = text
        .split("logs: ")
        .nth(1)
        .unwrap_or_else(|| panic!("no logs in: {text}"))
        .trim();
    assert!(
        logs.starts_with("journal:") && !logs.contains(','),
        "with journald running, the default is one journal source: {logs}"
    );
    logs.trim_start_matches("journal:")
        .split_ascii_whitespace()
        .map(String::from)
        .collect()
}

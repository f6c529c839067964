//! When journald's rate limit throws away sshd's messages, the daemon says so.
//!
//! journald keeps at most `RateLimitBurst` messages of a unit per `RateLimitIntervalSec`
//! (defaults 10,000 per 30 s, scaled up with the free space of the journal's file system)
//! and drops the rest; when the unit logs again after the interval it writes, itself
//! (`_TRANSPORT=driver`), "Suppressed N messages from UNIT" with `MESSAGE_ID`
//! a596d6fe7bfa4994828e72309e95d61e, `N_DROPPED` and `OBJECT_SYSTEMD_UNIT`. The failures in
//! those messages can never be counted; a jail that reads the unit from the journal now
//! writes a note that says how many were lost and what to raise (the reader asks journalctl
//! for these notes about the units and slices its source names).
//!
//! A real journald (Debian 12's 252, and Debian 13's 257 from the trixie tree) with
//! `RateLimitIntervalSec=2s`, `RateLimitBurst=5`; root's `logger -t sshd` in a hand-made
//! `ssh.service` writes 200 failures of 203.0.113.9 at once and, after the interval, one
//! more; a `logger` in `other.service` does the same. Asserted: journald stored a
//! suppression note for each unit; the daemon's sshd jail (built-in source) counts exactly
//! the failures journald kept, writes "journald suppressed N message(s) of ssh.service" with
//! journald's N, and `status` shows it under the jail (nothing about other.service in
//! either).
//!
//! Needs root, systemd (journald), bsdutils (logger) and util-linux; fails (does not skip)
//! otherwise. About 5 s each.

mod common;

use common::*;
use serde_json::Value;
use std::fs;
use std::time::Duration;

const SUPPRESSED: &str = "MESSAGE_ID=a596d6fe7bfa4994828e72309e95d61e";

#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn journald_252_suppressing_sshds_messages_is_reported() {
    run(Release::Deb12);
}

#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn journald_257_suppressing_sshds_messages_is_reported() {
    run(Release::Deb13);
}

/// `sh -c` that writes `n` lines `LINE N` to logger (identifier `ident`) at once and, after
/// journald's interval, one more, the writer staying alive meanwhile.
fn burst(ident: &str, line: &str, n: u32) -> Vec<String> {
    let script = format!(
        "{{ for i in $(seq {n}); do echo \"{line} $i ssh2\"; done; sleep 2.5; echo \"{line} 0 ssh2\"; sleep 1; }} \
         | logger -t {ident} -p auth.info -u /run/systemd/journal/dev-log"
    );
    ["sh", "-c", &script]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

fn run(release: Release) {
    require_root();
    require_program("logger", "bsdutils");
    let dir = test_dir("jsupp");
    let path = |rel: &str| dir.path().join(rel);
    let read = |rel: &str| fs::read_to_string(path(rel)).unwrap_or_default();

    let journald = Journald::start_on(
        release,
        Some("[Journal]\nStorage=volatile\nRateLimitIntervalSec=2s\nRateLimitBurst=5\n"),
    );
    journald.assert_release();
    let ssh = UnitCgroup::private("jsupp", "ssh.service");
    let other = UnitCgroup::private("jsupp", "other.service");
    let socket = path("portcullis.sock");
    let mut daemon = journald.sshd_jail_daemon(dir.path(), 1000);

    let a = "Failed password for root from 203.0.113.9 port";
    let b = "Failed password for root from 198.51.100.9 port";
    let out = journald.run(&ssh.wrap(&burst("sshd", a, 200)));
    assert!(out.success(), "logger in ssh.service: {out:?}");
    let out = journald.run(&other.wrap(&burst("other", b, 200)));
    assert!(out.success(), "logger in other.service: {out:?}");

    // ---- what journald did ----
    let notes = journald.messages(&[SUPPRESSED, "_TRANSPORT=driver"]);
    let dropped = |unit: &str| -> Option<u64> {
        notes
            .iter()
            .filter(|(_, v)| v["OBJECT_SYSTEMD_UNIT"] == unit)
            .map(|(_, v)| v["N_DROPPED"].as_str().unwrap().parse::<u64>().unwrap())
            .reduce(|x, y| x + y)
    };
    let shown: Vec<&str> = notes.iter().map(|(m, _)| m.as_str()).collect();
    let (Some(n), Some(_)) = (dropped("ssh.service"), dropped("other.service")) else {
        panic!("journald suppressed nothing of ssh.service or other.service: {shown:?}");
    };
    let kept: Vec<(String, Value)> = journald
        .messages(&["SYSLOG_IDENTIFIER=sshd"])
        .into_iter()
        .filter(|(m, _)| m.starts_with(a))
        .collect();
    assert_eq!(kept.len() as u64 + n, 201, "kept + suppressed: {shown:?}");

    // ---- what the daemon said and counted ----
    let want = format!("journald suppressed {n} message(s) of ssh.service");
    let told = wait_until(Duration::from_secs(20), || {
        read("daemon.log").contains(&want)
    });
    let counted = wait_until(Duration::from_secs(20), || {
        failing(&socket)
            .get("sshd")
            .and_then(|f| f.get("203.0.113.9").copied())
            == Some(kept.len() as u32)
    });
    assert!(
        told && counted,
        "want {want:?} and {} failures of 203.0.113.9: failing {:?}\ndaemon:\n{}",
        kept.len(),
        failing(&socket),
        read("daemon.log")
    );
    // and `status` says so under the jail, until the daemon stops
    let out = run_with_timeout(
        std::process::Command::new(env!("CARGO_BIN_EXE_portcullis"))
            .args(["status", "--json", "--socket"])
            .arg(&socket),
        None,
        Duration::from_secs(30),
    )
    .check();
    let status: Value = serde_json::from_slice(&out.stdout).unwrap();
    let warnings = status["jails"][0]["warnings"].to_string();
    assert!(
        warnings.contains(&format!(
            "journald suppressed {n} message(s) of ssh.service since the daemon started"
        )) && !warnings.contains("other.service"),
        "status: {status}"
    );
    assert!(
        !read("daemon.log").contains("other.service"),
        "another unit's suppression was reported:\n{}",
        read("daemon.log")
    );
    eprintln!(
        "journal_suppressed: journald of systemd {}: {} kept, {n} suppressed",
        journald.versions().1,
        kept.len()
    );
    assert!(daemon.try_wait().is_none(), "the daemon exited");
    daemon.kill();
}

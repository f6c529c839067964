//! A ban made from journal entries while the state file cannot be written (a lock held on
//! it here; a full disk is the same) is kept in memory, and the journal reader's cursor does
//! not move past those entries until it is written: a stop before that loses the ban from
//! the state, and the next start reads the entries again and bans again. (Review 44: the
//! cursor was saved past bans kept only in memory, and a stop lost them for good, while the
//! log said they would come back.)
//!
//! A real `systemd-journald` (Debian 12's) in a private mount namespace (see
//! `common/journald.rs`); the daemon's jail reads `journal:SYSLOG_IDENTIFIER=sshd`
//! (maxretry 2, null firewall); the test holds a write lock on the state file with SQLite
//! (`BEGIN IMMEDIATE`), as an admin's `sqlite3` would. Needs root; fails (does not skip)
//! otherwise.

mod common;

use common::*;
use std::fs;
use std::time::Duration;

fn failure(port: u32) -> Vec<String> {
    [
        "logger",
        "-t",
        "sshd",
        "-u",
        "/run/systemd/journal/dev-log",
        &format!("Failed password for root from 203.0.113.32 port {port} ssh2"),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn a_ban_kept_in_memory_comes_back_from_the_journal_after_a_stop() {
    require_root();
    require_program("logger", "bsdutils");
    let dir = test_dir("jkept");
    let d = dir.path();
    let read = |rel: &str| fs::read_to_string(d.join(rel)).unwrap_or_default();
    let journald = Journald::start();
    journald.assert_release();
    let config = d.join("portcullis.toml");
    fs::write(
        &config,
        format!(
            "{}[[jail]]\nname = \"sshd\"\nfilter = \"sshd\"\nmaxretry = 2\nbantime = \"1h\"\nlogs = [\"journal:SYSLOG_IDENTIFIER=sshd\"]\n",
            null_config_head(d)
        ),
    )
    .unwrap();
    let socket = d.join("portcullis.sock");
    let mut daemon = journald.daemon(&config, &d.join("state"), &d.join("daemon.log"));

    // the state file locked: the daemon's writes fail (after its 5 s busy timeout)
    let lock = rusqlite::Connection::open(d.join("state/portcullis.db")).unwrap();
    lock.execute_batch("BEGIN IMMEDIATE").unwrap();
    for port in [1, 2] {
        let out = journald.run(&failure(port));
        assert!(out.success(), "logger: {out:?}");
    }
    wait_for("the ban, kept in memory", Duration::from_secs(40), || {
        banned_hosts(&socket).contains(&"203.0.113.32".to_string())
            && read("daemon.log").contains("kept in memory")
    });
    // a stop while it is still locked: the kept changes are lost (said)
    daemon.terminate(Duration::from_secs(40));
    assert!(
        read("daemon.log").contains("could not be written to the state file"),
        "{}",
        read("daemon.log")
    );
    drop(lock);

    // the next start reads the two entries again, and bans again
    let log2 = d.join("daemon2.log");
    let _daemon = journald.daemon(&config, &d.join("state"), &log2);
    let back = wait_until(Duration::from_secs(20), || {
        banned_hosts(&socket).contains(&"203.0.113.32".to_string())
    });
    assert!(
        back,
        "the ban made while the state was locked is lost:\n{}",
        fs::read_to_string(&log2).unwrap_or_default()
    );
}

//! A `journal:` source that names a daemon's own user (`_UID=NAME`) before that user exists:
//! the daemon's package is installed after Portcullis started. The reader looks the name up
//! again at a reload (and each minute) and follows the new number from the last entry it
//! read, so the user's entries written meanwhile count and nothing is read twice.
//!
//! A real `systemd-journald` (Debian 12's) in a private mount namespace (see
//! `common/journald.rs`), in which a copy of /etc/passwd is bound over the real one: the
//! user is "added" by appending its line to the copy, which only that namespace sees (the
//! host's accounts are never touched). The daemon runs there too, so NSS (glibc's `files`)
//! reads the copy. Its jail (maxretry 3, null firewall) reads
//! `journal:SYSLOG_IDENTIFIER=sshd _UID=pct-late-user`:
//!
//! * at start the name is unknown: the daemon's note says the alternative matches nothing;
//! * two failures of 203.0.113.71 are written by uid 4242 (`setpriv`; no account yet): in
//!   the journal, not read;
//! * the account `pct-late-user` (4242) appears, `portcullis reload`: the note gives the new
//!   number, and the two failures are read (counted 2, not 4: nothing twice);
//! * a third failure bans 203.0.113.71.
//!
//! Needs root; fails (does not skip) otherwise.

mod common;

use common::*;
use std::fs;
use std::io::Write;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_portcullis");

const USER: &str = "pct-late-user";
const UID: u32 = 4242;

/// `logger` as uid 4242, through journald's syslog socket, tagged sshd (the sshd filter
/// reads sshd's lines).
fn failure_as_4242(port: u32) -> Vec<String> {
    [
        "setpriv",
        &format!("--reuid={UID}"),
        &format!("--regid={UID}"),
        "--clear-groups",
        "logger",
        "-t",
        "sshd",
        "-u",
        "/run/systemd/journal/dev-log",
        &format!("Failed password for root from 203.0.113.71 port {port} ssh2"),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn a_user_added_after_the_start_is_read_from_the_reload_on() {
    require_root();
    require_program("logger", "bsdutils");
    require_program("setpriv", "util-linux");
    let dir = test_dir("juser");
    let d = dir.path();
    let read = |rel: &str| fs::read_to_string(d.join(rel)).unwrap_or_default();
    let journald = Journald::start();
    journald.assert_release();

    // the namespace's /etc/passwd: a copy, without the user
    let passwd = d.join("passwd");
    fs::copy("/etc/passwd", &passwd).unwrap();
    assert!(!read("passwd").contains(USER));
    let out = journald.run(&[
        "mount".into(),
        "--bind".into(),
        passwd.display().to_string(),
        "/etc/passwd".into(),
    ]);
    assert!(out.success(), "bind the copy of /etc/passwd: {out:?}");

    let config = d.join("portcullis.toml");
    fs::write(
        &config,
        format!(
            "{}[[jail]]\nname = \"late\"\nfilter = \"sshd\"\nmaxretry = 3\nlogs = [\"journal:SYSLOG_IDENTIFIER=sshd _UID={USER}\"]\n",
            null_config_head(d)
        ),
    )
    .unwrap();
    let socket = d.join("portcullis.sock");
    let mut daemon = journald.daemon(&config, &d.join("state"), &d.join("daemon.log"));
    let unknown = format!("this system has no user {USER}");
    assert!(
        wait_until(Duration::from_secs(20), || read("daemon.log")
            .contains(&unknown)),
        "no note about the missing user:\n{}",
        read("daemon.log")
    );

    // two failures by uid 4242 while it has no name: stored, not read
    for port in [1, 2] {
        let out = journald.run(&failure_as_4242(port));
        assert!(out.success(), "logger as {UID}: {out:?}");
    }
    let stored = wait_until(Duration::from_secs(10), || {
        journald
            .messages(&["SYSLOG_IDENTIFIER=sshd", &format!("_UID={UID}")])
            .len()
            == 2
    });
    assert!(
        stored,
        "journald did not store the two failures as uid {UID}"
    );
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        failing(&socket).get("late").is_none_or(|f| f.is_empty()),
        "counted before the user existed: {:?}",
        failing(&socket)
    );

    // the package adds its user; the admin reloads
    fs::OpenOptions::new()
        .append(true)
        .open(&passwd)
        .unwrap()
        .write_all(format!("{USER}:x:{UID}:{UID}::/nonexistent:/usr/sbin/nologin\n").as_bytes())
        .unwrap();
    let out = run_with_timeout(
        std::process::Command::new(BIN)
            .args(["reload", "--socket"])
            .arg(&socket),
        None,
        Duration::from_secs(30),
    );
    assert!(out.success(), "reload: {out:?}");
    let found = format!("looked up again, user {USER}: {UID} (was none)");
    let counted = wait_until(Duration::from_secs(20), || {
        read("daemon.log").contains(&found)
            && failing(&socket)
                .get("late")
                .and_then(|f| f.get("203.0.113.71").copied())
                == Some(2)
    });
    assert!(
        counted,
        "want the note {found:?} and 2 failures: failing {:?}\ndaemon:\n{}",
        failing(&socket),
        read("daemon.log")
    );

    // the third bans
    let out = journald.run(&failure_as_4242(3));
    assert!(out.success(), "logger as {UID}: {out:?}");
    let banned = wait_until(Duration::from_secs(20), || {
        bans_by_jail(&socket)
            .get("late")
            .is_some_and(|b| b.contains("203.0.113.71"))
    });
    assert!(
        banned,
        "203.0.113.71 not banned: bans {:?}, failing {:?}\ndaemon:\n{}",
        bans_by_jail(&socket),
        failing(&socket),
        read("daemon.log")
    );
    assert!(daemon.try_wait().is_none(), "the daemon exited");
    daemon.kill();
}

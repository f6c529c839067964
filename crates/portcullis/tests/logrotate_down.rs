//! A followed log rotated by the real logrotate (test.sh installs it). Real daemon, null
//! firewall.
//!
//! Rotated twice while the daemon was down: at the next start the rest of the file read
//! before the stop (now `auth.log.2.gz`) and the whole of the file between (`auth.log.1`, or
//! `auth.log.1.gz`) are read before the new log, so failures written to any of them while
//! the daemon was down still count. (Before, both were lost: only `auth.log.1` was looked for
//! the old file's rest.)
//!
//! Empty at the stop, then rotated and compressed while down: every rotation modified since
//! the position was taken is read.
//!
//! Rotated with `create` and no `postrotate` while its writer holds it open: the writer goes
//! on in the old file, and what it writes there after a quiet spell still counts. (Before,
//! the old file was closed after 5 s of quiet.)

mod common;

use common::*;
use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

fn cli(args: &[&str], config: &Path) -> CmdOutput {
    let mut c = Command::new(BIN);
    c.args(args).arg("--config").arg(config);
    run_with_timeout(&mut c, None, Duration::from_secs(30))
}

/// `logrotate -f` of `log` with `options` (and `rotate 5`, `create`), its state in `dir`.
fn logrotate(dir: &Path, log: &Path, options: &str) {
    let conf = dir.join("logrotate.conf");
    fs::write(
        &conf,
        format!(
            "{} {{\n  rotate 5\n  create 0640\n  {options}\n}}\n",
            log.display()
        ),
    )
    .unwrap();
    let mut c = Command::new("/usr/sbin/logrotate");
    c.arg("-f")
        .arg("-s")
        .arg(dir.join("logrotate.state"))
        .arg(&conf);
    run_with_timeout(&mut c, None, Duration::from_secs(30)).check();
}

/// Review 18: a log empty at the stop, rotated and compressed twice while down: nothing read
/// tells its compressed file by its first bytes, and everything written while down was lost
/// without a word. Every rotation modified since the position was taken is read now.
/// A fresh directory of the test's (removed at its end).
fn workdir(prefix: &str) -> tempfile::TempDir {
    tempfile::Builder::new().prefix(prefix).tempdir().unwrap()
}

/// Waits until `portcullis CMD --json` (status: counted; bans: banned) names `addr`.
fn wait_listed(config: &Path, cmd: &str, addr: &str, what: &str) {
    wait_for(what, Duration::from_secs(30), || {
        let o = cli(&[cmd, "--json"], config).check();
        String::from_utf8_lossy(&o.stdout).contains(addr)
    });
}

#[test]
fn failures_in_the_rotations_of_a_log_empty_at_the_stop_count() {
    require_program("logrotate", "logrotate");
    for options in ["compress", "compress\n  delaycompress"] {
        let work = workdir("pct-logrotate-empty-");
        let dir = work.path();
        let (config, log) = sshd_null_config(dir, 4);
        fs::write(&log, "").unwrap();
        let d = Daemon::start(&config, &dir.join("run1.log"));
        d.stop();
        // (the rotations come a while after the stop, as they do)
        std::thread::sleep(Duration::from_millis(1500));
        let attacker = "203.0.113.46";
        let mut n = 0;
        append_sshd_failures(&log, attacker, 2, &mut n);
        logrotate(dir, &log, options);
        append_sshd_failures(&log, attacker, 1, &mut n);
        logrotate(dir, &log, options);
        append_sshd_failures(&log, attacker, 1, &mut n);
        let d = Daemon::start(&config, &dir.join("run2.log"));
        wait_listed(
            &config,
            "bans",
            attacker,
            "the ban of four failures, three in compressed rotations",
        );
        d.stop();
    }
}

#[test]
fn a_writer_not_told_to_reopen_its_log_is_read_on_in_the_old_file() {
    require_program("logrotate", "logrotate");
    let work = workdir("pct-noreopen-");
    let dir = work.path();
    let (config, log) = sshd_null_config(dir, 3);
    fs::write(&log, "").unwrap();
    let mut writer = fs::OpenOptions::new().append(true).open(&log).unwrap();
    let attacker = "203.0.113.45";
    let mut n = 0;
    let d = Daemon::start(&config, &dir.join("run.log"));
    write_sshd_failures(&mut writer, attacker, 1, &mut n);
    wait_listed(&config, "status", attacker, "the first failure counted");
    logrotate(dir, &log, "nocompress");
    assert!(dir.join("auth.log.1").exists() && log.exists());
    // quiet for longer than a rotated file was read before it was closed (5 s)
    std::thread::sleep(Duration::from_secs(8));
    write_sshd_failures(&mut writer, attacker, 2, &mut n);
    wait_listed(
        &config,
        "bans",
        attacker,
        "the ban of three failures, two written to the old file",
    );
    d.stop();
}

#[test]
fn failures_in_every_rotation_made_while_down_count() {
    require_program("logrotate", "logrotate");
    for (options, files) in [
        (
            "compress\n  delaycompress",
            ["auth.log.2.gz", "auth.log.1", "auth.log"],
        ),
        ("compress", ["auth.log.2.gz", "auth.log.1.gz", "auth.log"]),
    ] {
        let work = workdir("pct-logrotate-");
        let dir = work.path();
        let (config, log) = sshd_null_config(dir, 4);
        fs::write(&log, "").unwrap();
        let attacker = "203.0.113.44";
        let mut n = 0;
        let d = Daemon::start(&config, &dir.join("run1.log"));
        append_sshd_failures(&log, attacker, 1, &mut n);
        wait_listed(&config, "status", attacker, "the first failure counted");
        d.stop();

        // while down: one failure in the file read before, then rotated; one in the new
        // file, rotated again; one in the newest
        append_sshd_failures(&log, attacker, 1, &mut n);
        logrotate(dir, &log, options);
        append_sshd_failures(&log, attacker, 1, &mut n);
        logrotate(dir, &log, options);
        append_sshd_failures(&log, attacker, 1, &mut n);
        for f in files {
            assert!(dir.join(f).exists(), "{options}: logrotate made no {f}");
        }

        let d = Daemon::start(&config, &dir.join("run2.log"));
        wait_listed(
            &config,
            "bans",
            attacker,
            "the ban of four failures, three of them in the rotations",
        );
        let said = d.stop();
        let rest = dir.join(files[0]).display().to_string();
        let between = dir.join(files[1]).display().to_string();
        assert!(
            said.contains(&format!("reading the rest of the old file, now {rest}")),
            "{options}: {said}"
        );
        assert!(
            said.contains(&format!(
                "rotated again while the daemon was down: reading the later rotations whole, oldest first: {between}"
            )),
            "{options}: {said}"
        );
    }
}

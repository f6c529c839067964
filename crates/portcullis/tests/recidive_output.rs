//! The daemon's action lines are an interface: the `recidive` filter reads them. This runs
//! the real daemon (null firewall, no root), makes it ban, unban, restore nothing, reload and
//! stop, then runs the recidive filter over what it wrote: exactly its automatic bans count.

mod common;

use common::*;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::process::Command;
use std::time::Duration;

fn cli(args: &[&str], socket: &std::path::Path) -> CmdOutput {
    let mut c = Command::new(BIN);
    c.args(args).arg("--socket").arg(socket);
    run_with_timeout(&mut c, None, Duration::from_secs(30))
}

#[test]
fn recidive_reads_the_bans_of_the_daemons_real_output() {
    let work = tempfile::Builder::new()
        .prefix("pct-recidive-")
        .tempdir()
        .unwrap();
    let dir = work.path();
    let socket = dir.join("portcullis.sock");
    let auth = dir.join("auth.log");
    let config = dir.join("portcullis.toml");
    fs::write(
        &config,
        format!(
            "socket = {:?}\nstate_dir = {:?}\n[firewall]\nbackend = \"null\"\n\
             [[jail]]\nname = \"sshd\"\nlogs = [{:?}]\nmaxretry = 2\nbantime = \"2s\"\n",
            socket.display().to_string(),
            dir.join("state").display().to_string(),
            auth.display().to_string()
        ),
    )
    .unwrap();
    let daemon = Daemon::start(&config, &dir.join("daemon.log"));
    let log = || daemon.log();
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&auth)
        .unwrap();
    for a in [
        "203.0.113.10",
        "2001:db8::10",
        "203.0.113.10",
        "2001:db8::10",
    ] {
        writeln!(
            f,
            "{} h sshd[7]: Failed password for root from {a} port 22 ssh2",
            syslog_timestamp(std::time::SystemTime::now())
        )
        .unwrap();
    }
    drop(f);
    // both banned, then unbanned after 2 s
    wait_for("two bans and their end", Duration::from_secs(30), || {
        let l = log();
        l.matches("unban ").count() >= 2
    });
    assert!(cli(&["ban", "198.51.100.20", "--for", "1h"], &socket).success());
    assert!(cli(&["unban", "198.51.100.20"], &socket).success());
    assert!(cli(&["reload"], &socket).success());
    // SIGTERM: the daemon stops and says so
    let out = daemon.stop();
    for want in [
        "ban 203.0.113.10 jail=sshd failures=2 for=2s",
        // (an IPv6 offender is its /64 by default)
        "unban 2001:db8::/64 jail=sshd",
        "ban 198.51.100.20 jail=sshd failures=0 for=1h manual",
        "unban 198.51.100.20 jail=sshd manual",
        "reloaded jails=sshd",
        "stopped (null backend",
    ] {
        assert!(out.contains(want), "no {want:?} in:\n{out}");
    }

    // the recidive filter over the daemon's lines as they are (journald adds its own prefix;
    // a bare line is read as the message)
    let mut t = Command::new(BIN);
    t.args(["test", "--filter", "recidive", "--json"])
        .arg(dir.join("daemon.log"));
    let res = run_with_timeout(&mut t, None, Duration::from_secs(30)).check();
    let mut hosts: Vec<String> = String::from_utf8_lossy(&res.stdout)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["matched"] == true)
        .map(|v| v["host"].as_str().unwrap().to_string())
        .collect();
    hosts.sort();
    assert_eq!(hosts, ["2001:db8::", "203.0.113.10"], "{out}");
}

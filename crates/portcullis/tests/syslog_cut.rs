//! A line a syslog transport cut must never let a client choose the banned address.
//!
//! rsyslog reads a datagram of `/dev/log` into a buffer of `$MaxMessageSize` bytes and drops
//! the rest without a mark (plugins/imuxsock/imuxsock.c `readSocket`). A program that logs
//! `Login failed for user USER from ADDR` with a client's USER thus lets the client pad USER
//! so that the cut falls right after " from 192.0.2.66" it typed: the line in the file ends
//! there and reads as a whole failure of 192.0.2.66.
//!
//! Runs the real rsyslogd with a private configuration (its own socket, `maxMessageSize`
//! 1k, an output file), the program being `logger --socket … --size 4096`: a probe measures
//! how much of a message rsyslog keeps, then the padded failure, a long line whose address
//! comes first, and a plain failure. The file holds the cut line ending on the typed address
//! (checked); `portcullis test` and `replay` (the default transport limit, 1 KiB, and the
//! jail's `transport_cut = 1024`) report the other two lines' addresses only, while with
//! `transport_cut = 0` (no guard: the old matcher) the typed 192.0.2.66 is banned.
//!
//! Needs rsyslogd (package rsyslog) and logger (bsdutils); fails, does not skip, without.

mod common;

use common::*;
use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

const RSYSLOGD: &str = "/usr/sbin/rsyslogd";

/// rsyslogd in the foreground with `dir/rsyslog.conf`: socket `dir/log.sock`, every message
/// to `dir/out.log`; killed on drop.
fn rsyslogd(dir: &Path) -> ProcessGuard {
    assert!(
        Path::new(RSYSLOGD).exists(),
        "{RSYSLOGD} is missing (package rsyslog)"
    );
    let d = dir.display();
    fs::write(
        dir.join("rsyslog.conf"),
        format!(
            "global(workDirectory=\"{d}\" maxMessageSize=\"1k\")\n\
             module(load=\"imuxsock\" SysSock.Use=\"off\")\n\
             input(type=\"imuxsock\" Socket=\"{d}/log.sock\" CreatePath=\"on\")\n\
             *.* action(type=\"omfile\" File=\"{d}/out.log\" template=\"RSYSLOG_FileFormat\")\n"
        ),
    )
    .unwrap();
    let mut cmd = Command::new(RSYSLOGD);
    cmd.arg("-n")
        .arg("-f")
        .arg(dir.join("rsyslog.conf"))
        .arg("-i")
        .arg(dir.join("rsyslogd.pid"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(fs::File::create(dir.join("rsyslogd.err")).unwrap());
    let mut p = ProcessGuard::spawn(cmd, "rsyslogd");
    let sock = dir.join("log.sock");
    let up = wait_until(Duration::from_secs(10), || {
        p.try_wait().is_some() || sock.exists()
    });
    assert!(
        up && p.try_wait().is_none(),
        "rsyslogd did not start: {}",
        fs::read_to_string(dir.join("rsyslogd.err")).unwrap_or_default()
    );
    p
}

/// `logger` as the program `cutdemo`, sending `msg` whole (up to 4 KiB) to the socket.
fn log(dir: &Path, msg: &str) {
    let out = run_with_timeout(
        Command::new("logger")
            .arg("--socket")
            .arg(dir.join("log.sock"))
            .args(["--size", "4096", "-t", "cutdemo", "--", msg]),
        None,
        Duration::from_secs(10),
    );
    assert!(out.success(), "logger: {out:?}");
}

/// The lines of `dir/out.log` once there are `n`.
fn lines(dir: &Path, n: usize) -> Vec<String> {
    let read = || {
        fs::read_to_string(dir.join("out.log"))
            .unwrap_or_default()
            .lines()
            .map(String::from)
            .collect::<Vec<_>>()
    };
    wait_for(
        &format!("{n} lines in out.log"),
        Duration::from_secs(10),
        || read().len() >= n,
    );
    read()
}

/// The bans of `replay` over `log` with a jail of the test's filter, maxretry 1, and
/// `transport_cut` as given (none: the default).
fn replay(dir: &Path, log: &Path, transport_cut: Option<usize>) -> Vec<String> {
    let cfg = dir.join(format!("replay-{transport_cut:?}.toml"));
    fs::write(
        &cfg,
        format!(
            "[firewall]\nbackend = \"null\"\n[[jail]]\nname = \"cutdemo\"\nfilter = {:?}\nlogs = [{:?}]\nmaxretry = 1\nfindtime = \"1h\"\nbantime = \"1h\"\n{}",
            dir.join("cutdemo.toml").display().to_string(),
            log.display().to_string(),
            transport_cut.map_or(String::new(), |n| format!("transport_cut = {n}\n")),
        ),
    )
    .unwrap();
    replay_bans(&cfg, log).into_iter().map(|(_, h)| h).collect()
}

#[test]
fn a_line_rsyslog_cut_bans_no_address_a_client_typed() {
    let work = tempfile::Builder::new()
        .prefix("pct-syscut-")
        .tempdir()
        .unwrap();
    let dir = work.path();
    fs::write(dir.join("cutdemo.toml"), CUTDEMO_FILTER).unwrap();
    let mut rs = rsyslogd(dir);

    // how much of a message rsyslog keeps: 1 KiB less the header of the datagram
    log(dir, &"x".repeat(2000));
    let probe = lines(dir, 1);
    let kept = probe[0].bytes().filter(|&b| b == b'x').count();
    assert!((900..1024).contains(&kept), "{kept}: {probe:?}");

    // the client pads its user name so that the cut falls right after its address
    let head = "Login failed for user ";
    let typed = " from 192.0.2.66";
    let user = format!("{}{typed}", "u".repeat(kept - head.len() - typed.len()));
    log(dir, &format!("{head}{user} from 203.0.113.5"));
    // a long line whose address comes first: cut all the same, it counts
    log(
        dir,
        &format!("Denied from 198.51.100.4 for user {}", "y".repeat(2000)),
    );
    log(dir, "Login failed for user alice from 198.51.100.30");
    let got = lines(dir, 4);
    rs.kill();
    assert!(
        got[1].ends_with("uuu from 192.0.2.66"),
        "rsyslog cut the line right after the typed address: {}",
        &got[1][got[1].len().saturating_sub(80)..]
    );
    assert!(got[2].ends_with("yyy") && got[2].len() > 1000, "{}", got[2]);

    let out = dir.join("out.log");
    let hosts: Vec<String> = test_json(dir.join("cutdemo.toml").to_str().unwrap(), &out)
        .iter()
        .filter_map(|v| v["host"].as_str().map(String::from))
        .collect();
    assert_eq!(
        hosts,
        ["198.51.100.4", "198.51.100.30"],
        "portcullis test: never the typed address"
    );
    // and says so
    let summary = portcullis(&[
        "test",
        "--filter",
        dir.join("cutdemo.toml").to_str().unwrap(),
        out.to_str().unwrap(),
    ]);
    assert!(
        text(&summary.stdout).contains("lines a syslog transport may have cut: 1 "),
        "{}",
        text(&summary.stdout)
    );
    assert_eq!(replay(dir, &out, None), ["198.51.100.4", "198.51.100.30"]);
    assert_eq!(
        replay(dir, &out, Some(1024)),
        ["198.51.100.4", "198.51.100.30"]
    );
    // without the guard, the client chose the address
    assert_eq!(
        replay(dir, &out, Some(0)),
        ["192.0.2.66", "198.51.100.4", "198.51.100.30"],
        "the attack as the old matcher saw it"
    );

    // the daemon: bans the same, and says how many matches it refused
    let live = dir.join("live.log");
    let config = dir.join("daemon.toml");
    fs::write(
        &config,
        format!(
            "socket = {:?}\nstate_dir = {:?}\n[firewall]\nbackend = \"null\"\n[[jail]]\nname = \"cutdemo\"\nfilter = {:?}\nlogs = [{:?}]\nmaxretry = 1\nfindtime = \"1h\"\nbantime = \"1h\"\n",
            dir.join("portcullis.sock").display().to_string(),
            dir.join("state").display().to_string(),
            dir.join("cutdemo.toml").display().to_string(),
            live.display().to_string(),
        ),
    )
    .unwrap();
    // (the log does not exist yet, so the daemon reads it from its start)
    let daemon = Daemon::start(&config, &dir.join("daemon.log"));
    fs::write(&live, fs::read(&out).unwrap()).unwrap();
    wait_for(
        "the daemon to ban the last address",
        Duration::from_secs(30),
        || daemon.log().contains("ban 198.51.100.30 "),
    );
    let said = daemon.stop();
    assert!(said.contains("ban 198.51.100.4 "), "{said}");
    assert!(!said.contains("ban 192.0.2.66"), "{said}");
    assert!(
        said.contains("1 matching line(s) not counted: each was a syslog line long enough to have been cut by its transport (transport_cut = 1024"),
        "{said}"
    );
}

//! The shipped systemd unit's capabilities are enough for what its daemon is documented to
//! do: the daemon is run in a network namespace under `setpriv` with exactly the unit's
//! `CapabilityBoundingSet=` (as systemd starts it, as root), with `socket_group` set and the
//! default nftables backend, and bans. (A review found `socket_group` needing CAP_CHOWN,
//! which the unit did not give: the daemon stopped at start, and systemd restarted it for
//! ever.)
//!
//! Needs root; fails (does not skip) otherwise.

mod common;

use common::*;
use std::fs;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime};

const BIN: &str = env!("CARGO_BIN_EXE_portcullis");

/// `setpriv --bounding-set` of the unit's `CapabilityBoundingSet=`.
fn unit_bounding_set() -> String {
    let unit = fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../dist/portcullis.service"
    ))
    .unwrap();
    let line = unit
        .lines()
        .find_map(|l| l.strip_prefix("CapabilityBoundingSet="))
        .expect("the unit names its capabilities");
    let caps: Vec<String> = line
        .split_whitespace()
        .map(|c| format!("+{}", c.trim_start_matches("CAP_").to_lowercase()))
        .collect();
    assert!(!caps.is_empty());
    format!("-all,{}", caps.join(","))
}

#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn the_units_capabilities_run_the_daemon_with_socket_group() {
    require_root();
    require_program("setpriv", "util-linux");
    let ns = Netns::new("cap");
    let tmp = tempfile::Builder::new()
        .prefix("pct-caps-")
        .tempdir()
        .unwrap();
    let dir = tmp.path();
    let log = dir.join("auth.log");
    fs::write(&log, "").unwrap();
    let socket = dir.join("portcullis.sock");
    let cfg = dir.join("portcullis.toml");
    fs::write(
        &cfg,
        format!(
            "socket = {socket:?}\nstate_dir = {:?}\nsocket_group = \"nogroup\"\n\
             [[jail]]\nname = \"sshd\"\nfilter = \"sshd\"\nlogs = [{log:?}]\nmaxretry = 2\n\
             ports = [22]\n",
            dir.join("state")
        ),
    )
    .unwrap();
    let bset = unit_bounding_set();
    let stderr = dir.join("daemon.log");
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", ns.name(), "setpriv"])
        .arg(format!("--bounding-set={bset}"))
        .args(["--inh-caps=-all", "--", BIN, "run", "-c"])
        .arg(&cfg)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(fs::File::create(&stderr).unwrap());
    let mut p = ProcessGuard::spawn(cmd, "portcullis run (unit capabilities)");
    let read = || fs::read_to_string(&stderr).unwrap_or_default();
    let up = wait_until(Duration::from_secs(20), || {
        p.try_wait().is_some() || read().contains("started jails=")
    });
    assert!(
        up && p.try_wait().is_none(),
        "the daemon did not start with the unit's capabilities ({bset}):\n{}",
        read()
    );
    // the daemon really runs without the others (the bounding set took)
    let status = fs::read_to_string(format!("/proc/{}/status", p.pid())).unwrap();
    let bnd = status
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:"))
        .unwrap()
        .trim()
        .to_string();
    assert_ne!(bnd, "000001ffffffffff", "setpriv did not narrow the set");
    let m = fs::metadata(&socket).unwrap();
    assert_eq!((m.mode() & 0o777, m.gid()), (0o660, 65534));
    // and it bans in nftables
    let mut f = fs::OpenOptions::new().append(true).open(&log).unwrap();
    for i in 0..2 {
        writeln!(
            f,
            "{} host sshd[{}]: Failed password for root from 203.0.113.9 port {} ssh2",
            syslog_timestamp(SystemTime::now()),
            4000 + i,
            50000 + i
        )
        .unwrap();
    }
    wait_for("the ban in nftables", Duration::from_secs(10), || {
        ns.exec("nft", &["list", "set", "inet", "portcullis", "v4_sshd"])
            .stdout_str()
            .contains("203.0.113.9")
    });
    p.kill();
}

/// The socket's missing directories are made 0755 whatever the umask (with umask 000 they
/// were world-writable, so anyone could swap the socket that root's commands talk to).
#[test]
fn the_sockets_directories_are_not_world_writable_under_umask_000() {
    let tmp = tempfile::Builder::new()
        .prefix("pct-umask-")
        .tempdir()
        .unwrap();
    let dir = tmp.path();
    let socket = dir.join("run/a/b/p.sock");
    let cfg = dir.join("portcullis.toml");
    fs::write(
        &cfg,
        format!(
            "socket = {socket:?}\nstate_dir = {:?}\n[firewall]\nbackend = \"null\"\n\
             [[jail]]\nname = \"sshd\"\nfilter = \"sshd\"\nlogs = [{:?}]\n",
            dir.join("state"),
            dir.join("auth.log")
        ),
    )
    .unwrap();
    let stderr = dir.join("daemon.log");
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(format!("umask 000; exec {BIN} run -c {}", cfg.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(fs::File::create(&stderr).unwrap());
    let mut p = ProcessGuard::spawn(cmd, "portcullis run (umask 000)");
    wait_for("the socket", Duration::from_secs(20), || socket.exists());
    for d in ["run", "run/a", "run/a/b"] {
        let mode = fs::metadata(dir.join(d)).unwrap().mode() & 0o7777;
        assert_eq!(mode, 0o755, "{d}: {mode:o}");
    }
    p.kill();
}

//! The real daemon (`portcullis run`) as the tests without root run it: a configuration
//! file of the test's, the null firewall, stderr kept in a file.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use super::netns::{run_with_timeout, wait_until, ProcessGuard};

/// The filter of the transport-cut tests (journal_cut.rs, syslog_cut.rs): a program
/// `cutdemo` that logs a failed login with the client's text before the address (`tail`)
/// or after it (`head`).
pub const CUTDEMO_FILTER: &str = r#"
name = "cutdemo"
description = "the test's program: a failed login, the address last or first"
programs = ["cutdemo"]

[[rule]]
id = "tail"
pattern = '''Login failed for user .* from {HOST}'''

[[rule]]
id = "head"
pattern = '''Denied from {HOST} for user .*'''
"#;

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_portcullis");

/// A running `portcullis run -c CONFIG`, its stderr in `log`; killed on drop.
pub struct Daemon {
    proc: ProcessGuard,
    log: PathBuf,
}

impl Daemon {
    /// Starts the daemon and waits until it says it runs; panics with its output if not.
    pub fn start(config: &Path, log: &Path) -> Daemon {
        let mut cmd = Command::new(BIN);
        cmd.args(["run", "-c"]).arg(config);
        Daemon::start_command(cmd, log)
    }

    /// [`Daemon::start`] through `cmd`, which runs `portcullis run` (in a namespace, under a
    /// wrapper): its stderr goes to `log`.
    pub fn start_command(mut cmd: Command, log: &Path) -> Daemon {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(log).unwrap());
        let mut d = Daemon {
            proc: ProcessGuard::spawn(cmd, "portcullis run"),
            log: log.to_path_buf(),
        };
        let up = wait_until(Duration::from_secs(30), || {
            d.proc.try_wait().is_some() || d.log().contains("started jails=")
        });
        assert!(
            up && d.proc.try_wait().is_none(),
            "the daemon did not start:\n{}",
            d.log()
        );
        d
    }

    /// What it wrote to stderr so far.
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Whether it is still running.
    pub fn running(&mut self) -> bool {
        self.proc.try_wait().is_none()
    }

    /// Kills it at once (SIGKILL), as a crash would. (It was the guard's kill, SIGTERM
    /// first: the "kill -9" tests stopped the daemon cleanly, which saves what a crash
    /// loses, and a crash's loss went unseen.)
    pub fn kill(&mut self) {
        // SAFETY: a signal to our own child, which the guard has not reaped.
        unsafe {
            libc::kill(self.proc.pid() as i32, libc::SIGKILL);
        }
        let gone = wait_until(Duration::from_secs(10), || self.proc.try_wait().is_some());
        assert!(gone, "the daemon did not die of SIGKILL:\n{}", self.log());
    }

    /// Stops it as systemd does (SIGTERM), waits for it, and returns what it wrote.
    pub fn stop(mut self) -> String {
        // SAFETY: a signal to our own child, which the guard has not reaped.
        unsafe {
            libc::kill(self.proc.pid() as i32, libc::SIGTERM);
        }
        let stopped = wait_until(Duration::from_secs(30), || self.proc.try_wait().is_some());
        assert!(stopped, "the daemon did not stop:\n{}", self.log());
        self.log()
    }
}

/// The hosts of `portcullis bans --json --socket SOCKET` (the running daemon's bans), in its
/// order.
pub fn banned_hosts(socket: &Path) -> Vec<String> {
    let mut cmd = Command::new(BIN);
    cmd.args(["bans", "--json", "--socket"]).arg(socket);
    let out = run_with_timeout(&mut cmd, None, Duration::from_secs(30)).check();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("bans --json is JSON");
    v["bans"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|b| b["host"].as_str().map(String::from))
        .collect()
}

/// The top of a configuration that touches nothing outside `dir`: socket
/// `DIR/portcullis.sock`, state `DIR/state`, the null firewall (jails follow).
pub fn null_config_head(dir: &Path) -> String {
    format!(
        "socket = {:?}\nstate_dir = {:?}\n[firewall]\nbackend = \"null\"\n",
        dir.join("portcullis.sock").display().to_string(),
        dir.join("state").display().to_string(),
    )
}

/// Writes `DIR/portcullis.toml` ([`null_config_head`]) with one jail, `sshd` on
/// `DIR/auth.log`, `maxretry` failures in an hour; returns (configuration, log).
pub fn sshd_null_config(dir: &Path, maxretry: u32) -> (PathBuf, PathBuf) {
    let (config, log) = (dir.join("portcullis.toml"), dir.join("auth.log"));
    fs::write(
        &config,
        format!(
            "{}[[jail]]\nname = \"sshd\"\nlogs = [{:?}]\nmaxretry = {maxretry}\nfindtime = \"1h\"\n",
            null_config_head(dir),
            log.display().to_string(),
        ),
    )
    .unwrap();
    (config, log)
}

/// Writes `DIR/portcullis.toml` for a daemon that touches nothing outside `dir`: the null
/// firewall, socket `p.sock` and state `state/` in `dir`, jails `sshd` (on `auth.log`) and
/// `web` (filter sshd, on `web.log`); returns its path.
pub fn two_jail_null_config(dir: &Path) -> std::path::PathBuf {
    let config = dir.join("portcullis.toml");
    std::fs::write(
        &config,
        format!(
            "socket = {:?}\nstate_dir = {:?}\n[firewall]\nbackend = \"null\"\n\
             [[jail]]\nname = \"sshd\"\nlogs = [{:?}]\n[[jail]]\nname = \"web\"\nfilter = \"sshd\"\nlogs = [{:?}]\n",
            dir.join("p.sock").display().to_string(),
            dir.join("state").display().to_string(),
            dir.join("auth.log").display().to_string(),
            dir.join("web.log").display().to_string(),
        ),
    )
    .unwrap();
    config
}

/// `portcullis status --json`: per jail, its failing addresses and counts.
pub fn failing(socket: &Path) -> BTreeMap<String, BTreeMap<String, u32>> {
    let mut cmd = std::process::Command::new(BIN);
    cmd.args(["status", "--json", "--socket"]).arg(socket);
    let out = run_with_timeout(&mut cmd, None, Duration::from_secs(30)).check();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("status --json is JSON");
    v["jails"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|j| {
            let counts = j["failing"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|f| Some((f[0].as_str()?.to_string(), f[1].as_u64()? as u32)))
                .collect();
            (j["name"].as_str().unwrap_or_default().to_string(), counts)
        })
        .collect()
}

/// `portcullis bans --json`: per jail, the banned hosts.
pub fn bans_by_jail(socket: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut cmd = std::process::Command::new(BIN);
    cmd.args(["bans", "--json", "--socket"]).arg(socket);
    let out = run_with_timeout(&mut cmd, None, Duration::from_secs(30)).check();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("bans --json is JSON");
    let mut by: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for b in v["bans"].as_array().into_iter().flatten() {
        if let (Some(j), Some(h)) = (b["jail"].as_str(), b["host"].as_str()) {
            by.entry(j.to_string()).or_default().insert(h.to_string());
        }
    }
    by
}

/// The `logs` a built-in filter names, in order (`portcullis filters --json`).
pub fn filter_logs(filter: &str) -> Vec<String> {
    let out = run_with_timeout(
        Command::new(BIN).args(["filters", "--json"]),
        None,
        Duration::from_secs(30),
    )
    .check();
    let v = out
        .stdout_str()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("filters --json"))
        .find(|v| v["name"] == filter)
        .unwrap_or_else(|| panic!("no built-in filter {filter}"));
    v["logs"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|l| l.as_str().map(String::from))
        .collect()
}

/// The journal source a built-in filter names first in its `logs`, the one a jail on a
/// journald-only Debian reads (it must come first).
pub fn shipped_journal_source(filter: &str) -> String {
    let logs = filter_logs(filter);
    let first = logs.first().cloned().unwrap_or_default();
    assert!(first.starts_with("journal:"), "{filter}: logs {logs:?}");
    first
}

/// Appends `count` sshd "Failed password" lines of `addr` to `log`, stamped now (classic
/// syslog prefix), with pids and ports from `*n` on (it is advanced).
pub fn append_sshd_failures(log: &Path, addr: &str, count: u32, n: &mut u32) {
    let mut f = fs::OpenOptions::new().append(true).open(log).unwrap();
    write_sshd_failures(&mut f, addr, count, n);
}

/// [`append_sshd_failures`] through a file a writer holds open (it writes there whatever
/// name the file has now).
pub fn write_sshd_failures(f: &mut fs::File, addr: &str, count: u32, n: &mut u32) {
    use std::io::Write;
    for _ in 0..count {
        *n += 1;
        writeln!(
            f,
            "{} host sshd[{}]: Failed password for root from {addr} port {} ssh2",
            super::syslog_timestamp(std::time::SystemTime::now()),
            1000 + *n,
            40000 + *n
        )
        .unwrap();
    }
}

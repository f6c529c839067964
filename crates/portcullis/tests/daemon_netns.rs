//! The daemon against the real world: `portcullis run` inside a network namespace, following
//! a real sshd's log (or lines appended to a followed log), banning through nftables in that
//! namespace only, and the client talking to it over its control socket.
//!
//! * `real_attack_v4_v6_and_expiry` — password guessing over IPv4 and IPv6 is banned, the
//!   legitimate client keeps logging in, and the bans end by themselves.
//! * `restart_keeps_ban` — `kill -9` and a start again (also after the table was lost, as on
//!   a reboot): the ban is back, once, with the time it had left; manual ban/unban.
//! * `lockout_ignored_address_never_banned` — an ignored address is never banned, however
//!   many failures; loopback and own addresses cannot be banned by hand.
//! * `rotation_under_load` — thousands of lines while the log is rotated by rename,
//!   copytruncate and delete/re-create: nothing lost except what copytruncate must lose.
//! * `reload_keeps_bans_and_refuses_bad_config` — reload by command and by SIGHUP.
//! * `ignored_and_own_addresses_are_unbanned_at_start_reload_and_address_change` — a ban the
//!   ignore list or a new address of the host covers is lifted at start, at reload, and when
//!   the address appears.
//!
//! Needs root; fails (does not skip) otherwise. Only documentation addresses, only inside
//! namespaces created here; everything is removed on drop, also when a test fails.
//! Run: `cargo test -p portcullis --test daemon_netns -- --nocapture --test-threads=2`

mod common;

use common::*;
use serde_json::Value;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

const BIN: &str = env!("CARGO_BIN_EXE_portcullis");
const WRONG: &str = "not-the-password";

// ───────────────────────────── helpers ─────────────────────────────

/// What goes into a test configuration.
struct Cfg<'a> {
    dir: &'a Path,
    log: &'a Path,
    backend: &'a str,
    maxretry: u32,
    bantime: &'a str,
    ignore: &'a [&'a str],
    /// Extra lines in the `[[jail]]` table (e.g. a misspelt key).
    jail_extra: &'a str,
}

impl<'a> Cfg<'a> {
    /// The sshd jail most tests use: nftables, 3 failures, a 10-minute ban, nothing ignored.
    fn new(dir: &'a Path, log: &'a Path) -> Cfg<'a> {
        Cfg {
            dir,
            log,
            backend: "nftables",
            maxretry: 3,
            bantime: "10m",
            ignore: &[],
            jail_extra: "",
        }
    }

    fn text(&self) -> String {
        let ignore: Vec<String> = self.ignore.iter().map(|c| format!("{c:?}")).collect();
        format!(
            "socket = {sock:?}\n\
             state_dir = {state:?}\n\
             ignore = [{ignore}]\n\
             [firewall]\n\
             backend = {backend:?}\n\
             [[jail]]\n\
             name = \"sshd\"\n\
             filter = \"sshd\"\n\
             logs = [{log:?}]\n\
             maxretry = {maxretry}\n\
             findtime = \"10m\"\n\
             bantime = {bantime:?}\n\
             ports = [22]\n\
             {extra}\n",
            sock = self.dir.join("portcullis.sock").display().to_string(),
            state = self.dir.join("state").display().to_string(),
            ignore = ignore.join(", "),
            backend = self.backend,
            log = self.log.display().to_string(),
            maxretry = self.maxretry,
            bantime = self.bantime,
            extra = self.jail_extra,
        )
    }

    /// Writes the configuration to `DIR/portcullis.toml` (atomically) and returns the path.
    fn write(&self) -> PathBuf {
        let path = self.dir.join("portcullis.toml");
        let tmp = self.dir.join("portcullis.toml.tmp");
        fs::write(&tmp, self.text()).expect("write config");
        fs::rename(&tmp, &path).expect("install config");
        path
    }
}

/// A fresh work directory (configuration, log, state, socket) for a test without a [`Lab`].
fn work_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("pct-daemon-")
        .tempdir()
        .expect("temp dir")
}

/// One sshd "Failed password" line in syslog format, timestamped now.
fn failure_line(addr: &str, n: u64) -> String {
    format!(
        "{} server sshd[{}]: Failed password for root from {addr} port {} ssh2\n",
        syslog_timestamp(SystemTime::now()),
        10_000 + n % 50_000,
        20_000 + n % 40_000
    )
}

/// Appends `text` to `path` in one write (O_APPEND, created if missing), like a logger.
fn append(path: &Path, text: &str) {
    open_append(path)
        .write_all(text.as_bytes())
        .expect("append to log");
}

fn open_append(path: &Path) -> File {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap_or_else(|e| panic!("cannot open {}: {e}", path.display()))
}

/// One active ban as `bans --json` reports it.
#[derive(Debug, Clone)]
struct Ban {
    host: String,
    jail: String,
    remaining: i64,
}

/// One element of an nft set: address, timeout and time left (seconds).
#[derive(Debug, Clone)]
struct Elem {
    val: String,
    timeout: Option<i64>,
    expires: Option<i64>,
}

/// Elements of `inet portcullis SET` in namespace `ns`, with the jail's /64 and prefix sets
/// (see [`nft_jail_elements`]).
fn nft_set(ns: &Netns, set: &str) -> Vec<Elem> {
    nft_jail_elements(ns.name(), "portcullis", set)
        .into_iter()
        .map(|(val, timeout, expires)| Elem {
            val,
            timeout,
            expires,
        })
        .collect()
}

/// Whether `host` (an address, or a prefix in CIDR form as bans and sets show it) holds
/// `addr`: the default `v6_prefix = 64` bans an IPv6 offender's /64.
fn covers(host: &str, addr: &str) -> bool {
    let Some((net, len)) = host.split_once('/') else {
        return host == addr;
    };
    let (Ok(net), Ok(a), Ok(len)) = (
        net.parse::<std::net::IpAddr>(),
        addr.parse::<std::net::IpAddr>(),
        len.parse::<u32>(),
    ) else {
        return false;
    };
    match (net, a) {
        (std::net::IpAddr::V4(n), std::net::IpAddr::V4(a)) => {
            let m = u32::MAX.checked_shl(32 - len).unwrap_or(0);
            u32::from(n) & m == u32::from(a) & m
        }
        (std::net::IpAddr::V6(n), std::net::IpAddr::V6(a)) => {
            let m = u128::MAX.checked_shl(128 - len).unwrap_or(0);
            u128::from(n) & m == u128::from(a) & m
        }
        _ => false,
    }
}

/// How the daemon names the lab attacker `addr` with the default prefixes: the address for
/// IPv4; for IPv6 its /64, shrunk to the widest prefix without the server's own address
/// (2001:db8:a::1 shares the attacker's /64 in the lab): 2001:db8:a::2/127.
fn offender(addr: &str) -> String {
    match addr.parse::<std::net::Ipv6Addr>() {
        Ok(a) if a == ATTACKER_V6 => format!("{a}/127"),
        Ok(a) => format!(
            "{}/64",
            std::net::Ipv6Addr::from(u128::from(a) & !((1u128 << 64) - 1))
        ),
        Err(_) => addr.to_string(),
    }
}

fn nft_has(ns: &Netns, set: &str, addr: &str) -> Option<Elem> {
    nft_set(ns, set).into_iter().find(|e| covers(&e.val, addr))
}

/// `portcullis run` inside a namespace, its stderr appended to `DIR/daemon.log`; killed on
/// drop (the namespace's own drop then removes its nft table).
struct Daemon {
    proc: Option<ProcessGuard>,
    ns: String,
    config: PathBuf,
    socket: PathBuf,
    stderr_path: PathBuf,
    /// Where the current run's stderr starts in `stderr_path`.
    start_offset: usize,
    /// `NOTIFY_SOCKET` for the next start (systemd's Type=notify protocol), if any.
    notify_socket: Option<PathBuf>,
}

impl Daemon {
    fn start(ns: &Netns, dir: &Path, config: &Path) -> Daemon {
        let mut d = Daemon {
            proc: None,
            ns: ns.name().to_string(),
            config: config.to_path_buf(),
            socket: dir.join("portcullis.sock"),
            stderr_path: dir.join("daemon.log"),
            start_offset: 0,
            notify_socket: None,
        };
        d.spawn();
        d
    }

    /// Starts the daemon (again) and waits until it answers on its socket.
    fn spawn(&mut self) {
        assert!(self.proc.is_none(), "daemon already running");
        self.start_offset = fs::metadata(&self.stderr_path).map_or(0, |m| m.len() as usize);
        let err = open_append(&self.stderr_path);
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.ns, BIN, "run", "-c"])
            .arg(&self.config)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(err);
        if let Some(n) = &self.notify_socket {
            cmd.env("NOTIFY_SOCKET", n);
        }
        self.proc = Some(ProcessGuard::spawn(cmd, "portcullis run"));
        let ok = wait_until(Duration::from_secs(20), || {
            if self.proc.as_mut().and_then(|p| p.try_wait()).is_some() {
                return true; // exited: reported below
            }
            self.run_log().contains("started jails=") && self.cli(&["status", "--json"]).success()
        });
        let exited = self.proc.as_mut().and_then(|p| p.try_wait());
        assert!(
            ok && exited.is_none(),
            "the daemon did not come up (exit: {exited:?}); its stderr:\n{}",
            self.run_log()
        );
    }

    fn pid(&self) -> u32 {
        self.proc.as_ref().expect("daemon running").pid()
    }

    fn alive(&mut self) -> bool {
        self.proc.as_mut().is_some_and(|p| p.try_wait().is_none())
    }

    /// SIGKILL, as a crash: nothing of the daemon's own shutdown runs.
    fn kill9(&mut self) {
        let mut p = self.proc.take().expect("daemon running");
        // SAFETY: plain syscall on our own child's pid (`ip netns exec` execs the daemon).
        unsafe {
            libc::kill(p.pid() as i32, libc::SIGKILL);
        }
        assert!(
            wait_until(Duration::from_secs(5), || p.try_wait().is_some()),
            "daemon survived SIGKILL"
        );
    }

    fn signal(&self, sig: i32) {
        // SAFETY: plain syscall on our own child's pid.
        unsafe {
            libc::kill(self.pid() as i32, sig);
        }
    }

    /// Everything the daemon wrote to stderr, all runs.
    fn log(&self) -> String {
        fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// What the current run wrote to stderr.
    fn run_log(&self) -> String {
        let all = self.log();
        all.get(self.start_offset..).unwrap_or("").to_string()
    }

    /// A client command against this daemon's socket, run on the host (bounded).
    fn cli(&self, args: &[&str]) -> CmdOutput {
        let mut cmd = Command::new(BIN);
        cmd.args(args).arg("--socket").arg(&self.socket);
        run_with_timeout(&mut cmd, None, Duration::from_secs(30))
    }

    fn status(&self) -> Value {
        let out = self.cli(&["status", "--json"]).check();
        serde_json::from_slice(&out.stdout).expect("status --json is JSON")
    }

    fn bans(&self) -> Vec<Ban> {
        let out = self.cli(&["bans", "--json"]).check();
        let v: Value = serde_json::from_slice(&out.stdout).expect("bans --json is JSON");
        v["bans"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|b| Ban {
                host: b["host"].as_str().unwrap_or_default().to_string(),
                jail: b["jail"].as_str().unwrap_or_default().to_string(),
                remaining: b["remaining_secs"].as_i64().unwrap_or(-1),
            })
            .collect()
    }

    fn banned(&self, addr: &str) -> bool {
        self.bans().iter().any(|b| covers(&b.host, addr))
    }

    /// Failures counted for `addr` in the window (0 if none), from `status --json`.
    fn failing(&self, addr: &str) -> u64 {
        let st = self.status();
        st["jails"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|j| j["failing"].as_array().into_iter().flatten())
            .filter(|f| f[0].as_str().is_some_and(|h| covers(h, addr)))
            .map(|f| f[1].as_u64().unwrap_or(0))
            .sum()
    }

    /// Makes sure the daemon's follower reads `log` now: appends one failure line for a
    /// fresh probe address (outside every range the tests use) until the daemon has counted
    /// one. A line appended before the follower started would be skipped (an existing file
    /// is followed from its end), so this is a start-up barrier. Returns the probe address.
    fn wait_reading(&self, log: &Path, tag: u16) -> String {
        for k in 1..=10u16 {
            let probe = format!("2001:db8:ffff:{tag:x}::{k:x}");
            append(log, &failure_line(&probe, u64::from(k)));
            if wait_until(Duration::from_millis(1500), || {
                self.failing(&probe) > 0 || self.banned(&probe)
            }) {
                return probe;
            }
        }
        panic!(
            "the daemon never counted a probe line appended to {}; its stderr:\n{}",
            log.display(),
            self.log()
        );
    }

    /// Barrier: once this returns, every line appended to `log` before the call has been
    /// processed (lines are processed in order; a fresh address is counted).
    fn barrier(&self, log: &Path, tag: u16) {
        let probe = format!("2001:db8:fffe:{tag:x}::1");
        append(log, &failure_line(&probe, u64::from(tag)));
        wait_for(
            &format!("the barrier line {probe} to be counted"),
            Duration::from_secs(10),
            || self.failing(&probe) > 0 || self.banned(&probe),
        );
    }

    /// [`Daemon::barrier`] for a jail with maxretry 1: waits for the `ban` line in stderr
    /// (cheaper than asking for thousands of bans over the socket).
    fn ban_barrier(&self, log: &Path, tag: u16) {
        let probe = format!("2001:db8:fffe:{tag:x}::1");
        append(log, &failure_line(&probe, u64::from(tag)));
        // (the jail that uses it counts per address: `v6_prefix = 128`)
        let needle = format!("ban {probe} jail=");
        wait_for(
            &format!("the barrier line {probe} to be banned"),
            Duration::from_secs(10),
            || self.log().contains(&needle),
        );
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "──── daemon stderr ({}) ────\n{}────────────",
                self.stderr_path.display(),
                self.log()
            );
        }
        if let Some(mut p) = self.proc.take() {
            p.kill();
        }
    }
}

// ───────────────────────────── 1. a real attack ─────────────────────────────

#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn real_attack_v4_v6_and_expiry() {
    require_root();
    let t0 = Instant::now();
    let mut lab = Lab::new();
    let dir = lab.dir().to_path_buf();
    let log = dir.join("auth.log");
    let cfg = Cfg {
        bantime: "10s",
        ..Cfg::new(&dir, &log)
    }
    .write();
    // The daemon first: the sshd log does not exist yet, so it is read from its start.
    let mut d = Daemon::start(&lab.server, &dir, &cfg);
    lab.start_sshd(&log);
    d.wait_reading(&log, 1);
    println!("[attack] lab, daemon and sshd up at {:?}", t0.elapsed());

    let pw = lab.password();
    let ok = AttemptResult::Connected { auth_ok: true };
    let denied = AttemptResult::Connected { auth_ok: false };
    let (att4, att6) = ("192.0.2.2", "2001:db8:a::2");
    let srv4 = Lab::server_addr(Side::Attacker, false);
    let srv6 = Lab::server_addr(Side::Attacker, true);
    let leg4 = Lab::server_addr(Side::Legit, false);
    let leg6 = Lab::server_addr(Side::Legit, true);
    let probe = Duration::from_millis(1000);

    assert_eq!(lab.ssh_attempt(Side::Legit, leg4, pw), ok, "legit v4 login");
    assert!(d.bans().is_empty(), "a successful login banned someone");

    for (family, srv, att, set) in [("v4", srv4, att4, "v4_sshd"), ("v6", srv6, att6, "v6_sshd")] {
        assert!(
            lab.tcp_connects(Side::Attacker, srv, 22, probe),
            "{family}: attacker cannot connect before any ban"
        );
        for i in 0..3 {
            let r = lab.ssh_attempt(Side::Attacker, srv, WRONG);
            // The third failure bans; its own connection may be cut by the ban it causes.
            assert!(
                r == denied || (i == 2 && r.blocked()),
                "{family} attack #{i}: {r:?}"
            );
        }
        let t_attack = Instant::now();
        wait_for(
            &format!("{att} in `bans --json` and in the nft set {set}"),
            Duration::from_secs(10),
            || d.banned(att) && nft_has(&lab.server, set, att).is_some(),
        );
        println!(
            "[attack] {family}: {att} banned {:?} after the third failure (t={:?})",
            t_attack.elapsed(),
            t0.elapsed()
        );
        let b = d.bans().into_iter().find(|b| covers(&b.host, att)).unwrap();
        assert_eq!(b.jail, "sshd");
        assert!(b.remaining > 0 && b.remaining <= 10, "{b:?}");
        assert!(
            d.log().contains(&format!(
                "ban {} jail=sshd failures=3 for=10s",
                offender(att)
            )),
            "no ban line for {att}:\n{}",
            d.log()
        );
        assert!(
            !lab.tcp_connects(Side::Attacker, srv, 22, probe),
            "{family}: banned attacker still connects to port 22"
        );
        assert_eq!(
            lab.ssh_attempt(Side::Legit, leg4, pw),
            ok,
            "legit v4 login while {att} is banned"
        );
        assert_eq!(
            lab.ssh_attempt(Side::Legit, leg6, pw),
            ok,
            "legit v6 login while {att} is banned"
        );
    }
    let hosts: Vec<String> = d.bans().into_iter().map(|b| b.host).collect();
    assert!(
        !hosts
            .iter()
            .any(|h| h.starts_with("198.51.100.") || h.starts_with("2001:db8:b:")),
        "the legitimate client was banned: {hosts:?}"
    );
    println!(
        "[attack] nft:\n{}",
        lab.server
            .exec("nft", &["list", "table", "inet", "portcullis"])
            .stdout_str()
    );

    // The bans end by themselves (bantime 10s): unban logged, sets empty, port reachable.
    wait_for(
        "both bans to be lifted (`unban` logged, `bans` empty)",
        Duration::from_secs(20),
        || {
            let l = d.log();
            l.contains(&format!("unban {att4} jail=sshd"))
                && l.contains(&format!("unban {} jail=sshd", offender(att6)))
                && d.bans().is_empty()
        },
    );
    wait_for("the nft sets to be empty", Duration::from_secs(5), || {
        nft_set(&lab.server, "v4_sshd").is_empty() && nft_set(&lab.server, "v6_sshd").is_empty()
    });
    assert!(
        lab.tcp_connects(Side::Attacker, srv4, 22, Duration::from_secs(2)),
        "attacker cannot connect over IPv4 after the ban expired"
    );
    assert!(
        lab.tcp_connects(Side::Attacker, srv6, 22, Duration::from_secs(2)),
        "attacker cannot connect over IPv6 after the ban expired"
    );
    assert!(d.alive(), "daemon died");
    println!("[attack] done in {:?}", t0.elapsed());
}

// ───────────────────────────── 2. restart ─────────────────────────────

#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn restart_keeps_ban() {
    require_root();
    let t0 = Instant::now();
    let ns = Netns::new("rst");
    let tmp = work_dir();
    let dir = tmp.path().to_path_buf();
    let log = dir.join("auth.log");
    let cfg = Cfg {
        bantime: "5m",
        ..Cfg::new(&dir, &log)
    }
    .write();
    let mut d = Daemon::start(&ns, &dir, &cfg);
    d.wait_reading(&log, 2);

    let addr = "192.0.2.77";
    let three: String = (0..3).map(|n| failure_line(addr, n)).collect();
    append(&log, &three);
    wait_for(
        &format!("{addr} banned and in the nft set"),
        Duration::from_secs(10),
        || d.banned(addr) && nft_has(&ns, "v4_sshd", addr).is_some(),
    );
    assert!(
        d.log()
            .contains(&format!("ban {addr} jail=sshd failures=3 for=5m")),
        "{}",
        d.log()
    );
    let before = nft_has(&ns, "v4_sshd", addr).unwrap();
    println!("[restart] banned at {:?}: {before:?}", t0.elapsed());
    assert!(
        before.expires.is_some_and(|e| e > 290 && e <= 300),
        "{before:?}"
    );

    // Time passes (nft counts in whole seconds), then a crash and a start again.
    std::thread::sleep(Duration::from_millis(2100));
    d.kill9();
    assert!(
        nft_has(&ns, "v4_sshd", addr).is_some(),
        "the kernel ban must outlive the daemon"
    );
    d.spawn();
    let run = d.run_log();
    assert!(
        run.contains(&format!("restore {addr} jail=sshd remaining=")),
        "no restore line after the restart:\n{run}"
    );
    let after = nft_has(&ns, "v4_sshd", addr).expect("ban in the nft set after restart");
    println!("[restart] after kill -9 and start: {after:?}");
    // Re-applied with the time it had left (timeout no longer the full 5m), and less left.
    assert!(after.timeout.is_some_and(|t| t < 300), "{after:?}");
    let (e0, e1) = (before.expires.unwrap(), after.expires.unwrap_or(0));
    assert!(e1 > 0 && e1 < e0, "remaining {e1}s should be in (0, {e0})");
    let bans = d.bans();
    assert_eq!(
        bans.iter().filter(|b| b.host == addr).count(),
        1,
        "the ban must appear exactly once: {bans:?}"
    );
    assert_eq!(bans.len(), 1, "{bans:?}");
    assert!(bans[0].remaining > 0 && bans[0].remaining < 300, "{bans:?}");

    // As after a reboot: the kernel forgot everything; the state file has to bring it back.
    std::thread::sleep(Duration::from_millis(1100));
    d.kill9();
    ns.nft("delete table inet portcullis\n");
    // started as systemd's Type=notify starts it: READY=1 comes once the firewall is set up
    // and the bans are restored, so the ban is in the kernel when the datagram arrives
    let notify_path = dir.join("notify.sock");
    let notify = std::os::unix::net::UnixDatagram::bind(&notify_path).unwrap();
    notify
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    d.notify_socket = Some(notify_path);
    d.spawn();
    let mut buf = [0u8; 256];
    let n = notify.recv(&mut buf).expect("READY=1 from the daemon");
    assert_eq!(&buf[..n], b"READY=1");
    d.notify_socket = None;
    let again = nft_has(&ns, "v4_sshd", addr).expect("ban restored into an empty firewall");
    println!("[restart] after losing the table: {again:?}");
    assert!(
        again.expires.is_some_and(|e| e > 0 && e < e1),
        "{again:?} (before: {e1}s)"
    );
    assert!(d.run_log().contains(&format!("restore {addr} jail=sshd")));
    assert_eq!(d.bans().len(), 1);

    // Manual ban and unban go to the kernel set.
    let manual = "203.0.113.50";
    let out = d.cli(&["ban", manual, "--for", "1h"]).check();
    println!("[restart] {}", out.stdout_str().trim());
    let e = nft_has(&ns, "v4_sshd", manual).expect("manual ban in the nft set");
    assert!(
        e.timeout.is_some_and(|t| (3590..=3600).contains(&t)),
        "{e:?}"
    );
    assert!(d.banned(manual));
    d.cli(&["unban", manual]).check();
    assert!(
        nft_has(&ns, "v4_sshd", manual).is_none(),
        "unban left {manual} in the nft set"
    );
    assert!(!d.banned(manual));
    assert!(
        nft_has(&ns, "v4_sshd", addr).is_some(),
        "unban touched another ban"
    );
    println!("[restart] done in {:?}", t0.elapsed());
}

// ───────────────────────────── 3. no lockout ─────────────────────────────

#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn lockout_ignored_address_never_banned() {
    require_root();
    let t0 = Instant::now();
    let mut lab = Lab::new();
    let dir = lab.dir().to_path_buf();
    let log = dir.join("auth.log");
    let cfg = Cfg {
        ignore: &["198.51.100.0/24", "2001:db8:b::/64"],
        ..Cfg::new(&dir, &log)
    }
    .write();
    let d = Daemon::start(&lab.server, &dir, &cfg);
    lab.start_sshd(&log);
    d.wait_reading(&log, 3);
    let legit = "198.51.100.2";

    // 100 failures from the ignored address, appended to the followed log.
    let lines: String = (0..100).map(|n| failure_line(legit, n)).collect();
    append(&log, &lines);
    d.barrier(&log, 1);
    assert_eq!(
        d.failing(legit),
        0,
        "an ignored address is not even counted"
    );

    // The legitimate user mistypes the password, more often than maxretry, then gets in;
    // over IPv4, then over IPv6 (its /64 ignored too: this checked only that IPv6 worked,
    // a review found).
    let pw = lab.password();
    for (v6, from, tag) in [(false, "198.51.100.2 port ", 2), (true, "2001:db8:b::", 3)] {
        let to = Lab::server_addr(Side::Legit, v6);
        let before = lab
            .sshd_log()
            .matches("Failed password for pctuser from ")
            .count();
        for i in 0..4 {
            assert_eq!(
                lab.ssh_attempt(Side::Legit, to, WRONG),
                AttemptResult::Connected { auth_ok: false },
                "legit wrong password #{i} (IPv6: {v6})"
            );
        }
        wait_for(
            "4 sshd failure lines from the legit client",
            Duration::from_secs(5),
            || {
                let l = lab.sshd_log();
                l.matches(&format!("Failed password for pctuser from {from}"))
                    .count()
                    >= 4
                    && l.matches("Failed password for pctuser from ").count() >= before + 4
            },
        );
        d.barrier(&log, tag);
        assert_eq!(
            lab.ssh_attempt(Side::Legit, to, pw),
            AttemptResult::Connected { auth_ok: true },
            "the legitimate client is locked out (IPv6: {v6})"
        );
    }
    assert!(d.bans().is_empty(), "something was banned: {:?}", d.bans());
    assert!(nft_set(&lab.server, "v4_sshd").is_empty());
    assert!(nft_set(&lab.server, "v6_sshd").is_empty());
    assert!(!d.log().contains(&format!("ban {legit} ")), "{}", d.log());

    // Manual bans of never-ban addresses are refused, with the reason.
    for (addr, reason) in [
        (legit, "ignore"),
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("192.0.2.1", "own"), // the server's own address on the attacker side
    ] {
        let out = d.cli(&["ban", addr]);
        let err = out.stderr_str();
        println!(
            "[lockout] ban {addr}: exit {:?}: {}",
            out.code(),
            err.trim()
        );
        assert_eq!(out.code(), Some(1), "ban {addr} should be refused: {out:?}");
        assert!(
            err.contains(reason),
            "refusal for {addr} should say {reason:?}: {err}"
        );
    }
    assert!(d.bans().is_empty());
    assert!(nft_set(&lab.server, "v4_sshd").is_empty());
    assert!(nft_set(&lab.server, "v6_sshd").is_empty());
    println!("[lockout] done in {:?}", t0.elapsed());
}

/// A web jail without `ports` (filter nginx-http-auth, whose service is on 80 and 443)
/// bans an offender on the web ports only: the same address still reaches sshd on 22, so
/// failed web logins from an office NAT do not lock the office out of SSH. The ban is real:
/// a listener on port 80 of the server answers the attacker before the ban and not after.
#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn a_web_jail_without_ports_bans_the_web_ports_only() {
    require_root();
    let mut lab = Lab::new();
    let dir = lab.dir().to_path_buf();
    let log = dir.join("auth.log");
    let access = dir.join("access.log");
    fs::write(&access, "").unwrap();
    let web = format!(
        "[[jail]]\nname = \"web\"\nfilter = \"nginx-http-auth\"\nlogs = [{:?}]\nmaxretry = 2\n",
        access.display().to_string()
    );
    let cfg = Cfg {
        jail_extra: &web,
        ..Cfg::new(&dir, &log)
    }
    .write();
    let check = {
        let mut c = Command::new(BIN);
        c.args(["check-config", "-c"]).arg(&cfg);
        run_with_timeout(&mut c, None, Duration::from_secs(30))
            .check()
            .stdout_str()
    };
    assert!(
        check.contains("on 80,443/tcp+udp (drop)"),
        "check-config should show the web jail's ports: {check}"
    );
    let d = Daemon::start(&lab.server, &dir, &cfg);
    lab.start_sshd(&log);
    d.wait_reading(&log, 7);
    // something listening on the server's port 80 (a bound socket: the kernel completes
    // the handshake), for the attacker to reach before the ban
    let _listener = lab.server.spawn(
        "python3",
        &[
            "-c",
            "import socket, time\n\
             s = socket.socket(socket.AF_INET6)\n\
             s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)\n\
             s.bind(('::', 80))\ns.listen(64)\ntime.sleep(120)\n",
        ],
    );
    let srv = Lab::server_addr(Side::Attacker, false);
    let attacker = Lab::client_addr(Side::Attacker, false).to_string();
    let probe = Duration::from_secs(2);
    wait_for("the port 80 listener", Duration::from_secs(10), || {
        lab.tcp_connects(Side::Attacker, srv, 80, probe)
    });

    // two failed basic-auth logins in nginx's access log (combined format, stamped now)
    let stamp = clf_timestamp(SystemTime::now());
    let lines: String = (0..2)
        .map(|_| {
            format!(
                "{attacker} - alice [{stamp}] \"GET /admin/ HTTP/1.1\" 401 179 \"-\" \"curl/8.0\"\n"
            )
        })
        .collect();
    append(&access, &lines);
    wait_for("the web jail's ban", Duration::from_secs(10), || {
        nft_has(&lab.server, "v4_web", &attacker).is_some()
    });
    assert!(d.bans().iter().all(|b| b.jail == "web"), "{:?}", d.bans());
    assert!(
        !lab.tcp_connects(Side::Attacker, srv, 80, probe),
        "the banned attacker still reaches port 80"
    );
    assert!(
        lab.tcp_connects(Side::Attacker, srv, 22, probe),
        "the web jail's ban locked the attacker out of port 22 too"
    );
}

// ───────────────────────────── 4. rotation under load ─────────────────────────────

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Rot {
    Rename,
    CopyTruncate,
    Delete,
    End,
}

impl Rot {
    fn name(self) -> &'static str {
        match self {
            Rot::Rename => "rename+create",
            Rot::CopyTruncate => "copytruncate",
            Rot::Delete => "delete+re-create",
            Rot::End => "after the last rotation",
        }
    }
}

/// Line `i`'s attacker: distinct for every line, documentation ranges only.
fn rot_addr(i: usize) -> String {
    match i {
        0..=253 => format!("203.0.113.{}", i + 1),
        254..=507 => format!("198.51.100.{}", i - 254 + 1),
        _ => format!("2001:db8::{:x}", i - 508 + 1),
    }
}

/// Addresses the daemon banned (from its `ban ADDR …` lines).
fn banned_set(log: &str) -> std::collections::HashSet<String> {
    log.lines()
        .filter(|x| x.starts_with("ban "))
        .filter_map(|x| x.split_whitespace().nth(1))
        .map(str::to_owned)
        .collect()
}

#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn rotation_under_load() {
    require_root();
    const N: usize = 3000;
    const ROUNDS: usize = 10; // of each kind
    const SYNC: usize = 10; // lines written before checking the follower reads this file
    const TAIL: usize = 5; // lines written to the old file after a rename / delete
    const BURST: usize = 20; // phase B: lines written at once just before a copytruncate
    let t0 = Instant::now();
    let ns = Netns::new("rot");
    let tmp = work_dir();
    let dir = tmp.path().to_path_buf();
    let log = dir.join("auth.log");
    // maxretry 1: every distinct address is one ban, so bans counted = lines counted.
    // The null backend: thousands of bans, and the firewall is not what is tested here.
    let cfg = Cfg {
        backend: "null",
        maxretry: 1,
        bantime: "1h",
        // every line's address is its own offender (the default groups a /64)
        jail_extra: "v6_prefix = 128",
        ..Cfg::new(&dir, &log)
    }
    .write();
    let d = Daemon::start(&ns, &dir, &cfg);
    d.wait_reading(&log, 4);
    let is_banned = |l: &str, j: usize| l.contains(&format!("ban {} jail=", rot_addr(j)));
    let line = |j: usize| failure_line(&rot_addr(j), j as u64);

    // ── Phase A: a steady stream (about one line per millisecond, one write per line, as
    // a logger does) with 30 rotations interleaved: rename, copytruncate, delete, …
    let mut plan: Vec<Rot> = (0..3 * ROUNDS)
        .map(|i| [Rot::Rename, Rot::CopyTruncate, Rot::Delete][i % 3])
        .collect();
    plan.push(Rot::End);
    let per_seg = N / plan.len();
    let mut segs: Vec<(Rot, std::ops::Range<usize>)> = Vec::new();
    let t_write = Instant::now();
    let mut file = open_append(&log);
    let write = |f: &mut File, j: usize| {
        f.write_all(line(j).as_bytes()).expect("write log line");
        std::thread::sleep(Duration::from_millis(1));
    };
    let mut i = 0;
    let mut sync_misses = 0;
    for (s, &kind) in plan.iter().enumerate() {
        let end = if kind == Rot::End { N } else { i + per_seg };
        let tail = if matches!(kind, Rot::Rename | Rot::Delete) {
            TAIL
        } else {
            0
        };
        segs.push((kind, i..end));
        // A file that comes and goes between two looks can be seen by no follower: make
        // sure the daemon reads this one before it is rotated away.
        for j in i..i + SYNC {
            write(&mut file, j);
        }
        if !wait_until(Duration::from_secs(10), || {
            let l = d.log();
            (i..i + SYNC).any(|j| is_banned(&l, j))
        }) {
            sync_misses += 1;
            eprintln!("[rotation] segment {s}: the daemon did not read the new file within 10 s");
        }
        for j in i + SYNC..end - tail {
            write(&mut file, j);
        }
        match kind {
            Rot::Rename | Rot::Delete => {
                if kind == Rot::Rename {
                    fs::rename(&log, dir.join(format!("auth.log.{s}"))).expect("rename");
                } else {
                    fs::remove_file(&log).expect("delete");
                }
                // The logger has not reopened yet: it still writes to the old file.
                for j in end - tail..end {
                    write(&mut file, j);
                }
                file = open_append(&log);
            }
            Rot::CopyTruncate => {
                fs::copy(&log, dir.join(format!("auth.log.ct{s}"))).expect("copy");
                OpenOptions::new()
                    .write(true)
                    .open(&log)
                    .and_then(|f| f.set_len(0))
                    .expect("truncate");
                // The writer's O_APPEND descriptor goes on at the new end.
            }
            Rot::End => {}
        }
        i = end;
    }
    let write_time = t_write.elapsed();
    // Lines are processed in order: once a line appended now is counted, all are.
    let t_idle = Instant::now();
    d.ban_barrier(&log, 0xa);
    println!(
        "[rotation] phase A: daemon idle {:?} after the last write",
        t_idle.elapsed()
    );
    let l = d.log();
    let banned = banned_set(&l);
    let lost_in = |r: &std::ops::Range<usize>| -> Vec<usize> {
        r.clone()
            .filter(|&j| !banned.contains(&rot_addr(j)))
            .collect()
    };
    let mut summary = std::collections::BTreeMap::<&str, (usize, usize)>::new();
    let mut lost_of = std::collections::BTreeMap::<&str, Vec<usize>>::new();
    for (kind, r) in &segs {
        let lo = lost_in(r);
        let e = summary.entry(kind.name()).or_default();
        e.0 += r.len();
        e.1 += lo.len();
        if *kind == Rot::CopyTruncate {
            // Only what was appended after the follower's last read can be lost: a tail.
            assert!(
                lo.iter().rev().zip((0..r.end).rev()).all(|(a, b)| *a == b),
                "copytruncate lost lines that are not the segment's tail: {lo:?} of {r:?}"
            );
        }
        lost_of.entry(kind.name()).or_default().extend(lo);
    }
    let counted = (0..N).filter(|&j| banned.contains(&rot_addr(j))).count();
    println!(
        "[rotation] phase A: {N} lines at ~1/ms with {} rotations ({ROUNDS} each of rename+create, \
         copytruncate, delete+re-create), written in {write_time:?}; daemon counted {counted}; \
         notes: {} rotated, {} truncated; sync misses {sync_misses}",
        3 * ROUNDS,
        l.matches("note log rotated").count(),
        l.matches("note log truncated").count(),
    );
    for (name, (n, lo)) in &summary {
        let which = &lost_of[name];
        println!(
            "[rotation]   {name:<24} lines {n:>5}  lost {lo:>4}{}",
            if which.is_empty() {
                String::new()
            } else {
                format!("  (lines {:?})", &which[..which.len().min(20)])
            }
        );
    }
    let (ct_written, ct_lost) = summary["copytruncate"];

    // ── Phase B: copytruncate right after a burst of BURST lines written at once, the
    // worst case: everything written since the follower's last read is gone.
    let mut burst_lost = Vec::new();
    let t_b = Instant::now();
    for r in 0..ROUNDS {
        let base = N + r * 2 * BURST;
        for j in base..base + BURST {
            write(&mut file, j);
        }
        wait_for(
            "the paced lines before the burst",
            Duration::from_secs(10),
            || is_banned(&d.log(), base + BURST - 1),
        );
        let burst: String = (base + BURST..base + 2 * BURST).map(line).collect();
        file.write_all(burst.as_bytes()).expect("write burst");
        fs::copy(&log, dir.join(format!("auth.log.burst{r}"))).expect("copy");
        OpenOptions::new()
            .write(true)
            .open(&log)
            .and_then(|f| f.set_len(0))
            .expect("truncate");
    }
    drop(file);
    println!("[rotation] phase B written in {:?}", t_b.elapsed());
    let t_idle = Instant::now();
    d.ban_barrier(&log, 0xb);
    println!(
        "[rotation] phase B: daemon idle {:?} after the last write",
        t_idle.elapsed()
    );
    let l = d.log();
    let banned = banned_set(&l);
    for r in 0..ROUNDS {
        let base = N + r * 2 * BURST;
        let lo: Vec<usize> = (base..base + 2 * BURST)
            .filter(|&j| !banned.contains(&rot_addr(j)))
            .collect();
        assert!(
            lo.iter().all(|&j| j >= base + BURST),
            "phase B round {r}: lost lines that were read before the burst: {lo:?}"
        );
        assert!(
            lo.iter()
                .rev()
                .zip((0..base + 2 * BURST).rev())
                .all(|(a, b)| *a == b),
            "phase B round {r}: the loss is not a tail: {lo:?}"
        );
        burst_lost.push(lo.len());
    }
    let b_lost: usize = burst_lost.iter().sum();

    println!(
        "[rotation] COPYTRUNCATE LOSS: steady stream {ct_lost} of {ct_written} lines ({:.2}%) \
         over {ROUNDS} copytruncates; right after a {BURST}-line burst {b_lost} of {} burst \
         lines, per copytruncate {burst_lost:?}",
        100.0 * ct_lost as f64 / ct_written as f64,
        ROUNDS * BURST
    );
    assert!(
        !l.lines().any(|x| x.starts_with("error")),
        "the daemon logged errors:\n{l}"
    );
    assert_eq!(
        sync_misses, 0,
        "the daemon did not pick up a new log file in time"
    );
    for kind in [Rot::Rename, Rot::Delete, Rot::End] {
        assert!(
            lost_of[kind.name()].is_empty(),
            "{}: lines lost: {:?}",
            kind.name(),
            lost_of[kind.name()]
        );
    }
    // copytruncate loses what was appended after the last read before the truncation (a
    // tail, checked above): on a steady stream that is little, but how little depends on
    // how soon the follower's thread runs, so only a loss of most of the stream fails here
    // (a 10% bound was a timing assertion a loaded CI machine could miss, review 32); the
    // ratio is printed above
    assert!(
        ct_lost * 2 <= ct_written,
        "copytruncate lost {ct_lost} of {ct_written} lines of a steady stream (more than half)"
    );
    let active = d.bans().len();
    assert_eq!(
        active,
        banned.len(),
        "`bans --json` and the ban lines of the daemon disagree"
    );
    println!("[rotation] done in {:?}", t0.elapsed());
}

// ───────────────────────────── 5. reload ─────────────────────────────

#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn reload_keeps_bans_and_refuses_bad_config() {
    require_root();
    let t0 = Instant::now();
    let ns = Netns::new("rld");
    let tmp = work_dir();
    let dir = tmp.path().to_path_buf();
    let log = dir.join("auth.log");
    let cfg = |maxretry: u32, jail_extra: &str| {
        Cfg {
            maxretry,
            jail_extra,
            ..Cfg::new(&dir, &log)
        }
        .write()
    };
    let path = cfg(3, "");
    let mut d = Daemon::start(&ns, &dir, &path);
    d.wait_reading(&log, 5);
    let maxretry = |d: &Daemon| d.status()["jails"][0]["maxretry"].as_u64();

    let banned = "192.0.2.88";
    d.cli(&["ban", banned, "--for", "10m"]).check();
    let still_banned = |d: &Daemon, what: &str| {
        assert!(d.banned(banned), "{what}: ban gone from `bans`");
        assert!(
            nft_has(&ns, "v4_sshd", banned).is_some(),
            "{what}: ban gone from the nft set"
        );
    };
    still_banned(&d, "before reload");

    // A good change: applied, bans kept.
    cfg(5, "");
    let out = d.cli(&["reload"]).check();
    println!("[reload] {}", out.stdout_str().trim());
    assert!(out.stdout_str().contains("reloaded"), "{out:?}");
    assert_eq!(maxretry(&d), Some(5));
    still_banned(&d, "after reload");
    // The engine uses the new threshold: 4 failures do not ban, the 5th does.
    let addr = "192.0.2.99";
    let four: String = (0..4).map(|n| failure_line(addr, n)).collect();
    append(&log, &four);
    wait_for("4 failures counted", Duration::from_secs(10), || {
        d.failing(addr) == 4
    });
    assert!(!d.banned(addr), "banned after 4 failures with maxretry 5");
    append(&log, &failure_line(addr, 4));
    wait_for(&format!("{addr} banned"), Duration::from_secs(10), || {
        d.banned(addr) && nft_has(&ns, "v4_sshd", addr).is_some()
    });
    assert!(d
        .log()
        .contains(&format!("ban {addr} jail=sshd failures=5")));

    // A broken file (a misspelt key): refused with the key named, nothing changes.
    cfg(5, "maxretyr = 9");
    let out = d.cli(&["reload"]);
    let err = out.stderr_str();
    println!(
        "[reload] broken config: exit {:?}: {}",
        out.code(),
        err.trim()
    );
    assert_eq!(
        out.code(),
        Some(1),
        "reload of a broken config must fail: {out:?}"
    );
    assert!(
        err.contains("maxretyr"),
        "the error should name the key: {err}"
    );
    assert!(d.alive(), "the daemon died on a bad reload");
    assert_eq!(maxretry(&d), Some(5));
    still_banned(&d, "after a refused reload");
    assert!(d.banned(addr));

    // SIGHUP with the broken file: refused as well, and logged.
    let refused = |d: &Daemon| d.log().matches("error reload refused").count();
    let n = refused(&d);
    d.signal(libc::SIGHUP);
    wait_for(
        "SIGHUP reload refusal logged",
        Duration::from_secs(10),
        || refused(&d) > n,
    );
    assert!(d.alive(), "the daemon died on SIGHUP with a bad config");
    assert_eq!(maxretry(&d), Some(5));

    // SIGHUP with a good file: applied.
    cfg(7, "");
    let reloads = |d: &Daemon| d.log().matches("reloaded jails=").count();
    let n = reloads(&d);
    d.signal(libc::SIGHUP);
    wait_for("SIGHUP reload applied", Duration::from_secs(10), || {
        reloads(&d) > n && maxretry(&d) == Some(7)
    });
    assert!(d.alive());
    still_banned(&d, "after SIGHUP");
    assert!(d.banned(addr));
    assert_eq!(d.bans().len(), 2, "{:?}", d.bans());
    println!("[reload] done in {:?}", t0.elapsed());
}

// ──────────────── 6. bans the ignore list or the host's addresses now cover ────────────────

/// Issue 9, findings 9 and 10: an owner banned by mistake adds their address to `ignore`;
/// the ban restored at start, or kept over a reload, must go (from the nft set too). An
/// address that appears on an interface of the host is unbanned within seconds.
#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn ignored_and_own_addresses_are_unbanned_at_start_reload_and_address_change() {
    require_root();
    let t0 = Instant::now();
    let ns = Netns::new("ign");
    let tmp = work_dir();
    let dir = tmp.path().to_path_buf();
    let log = dir.join("auth.log");
    let write = |ignore: &[&str]| {
        Cfg {
            ignore,
            ..Cfg::new(&dir, &log)
        }
        .write()
    };
    let path = write(&[]);
    let mut d = Daemon::start(&ns, &dir, &path);
    let (owner, other, ranged) = ("198.51.100.7", "192.0.2.66", "203.0.113.50");
    let (own4, own6) = ("192.0.2.200", "2001:db8:5::9");
    d.cli(&["ban", owner, "--for", "36499d"]).check();
    for a in [other, ranged, own4, own6] {
        d.cli(&["ban", a, "--for", "1h"]).check();
    }
    let set = |a: &str| {
        if a.contains(':') {
            "v6_sshd"
        } else {
            "v4_sshd"
        }
    };
    let in_nft = |a: &str| nft_has(&ns, set(a), a).is_some();
    for a in [owner, other, ranged, own4, own6] {
        assert!(in_nft(a) && d.banned(a), "{a} not banned");
    }

    // the owner's address goes into `ignore`, then a crash and a start: the kernel still
    // holds the ban, the state file restores it, and both must let it go
    d.kill9();
    assert!(in_nft(owner), "the kernel ban outlives the daemon");
    write(&[owner]);
    d.spawn();
    let run = d.run_log();
    println!("[ignore] start:\n{run}");
    assert!(
        run.contains(&format!("unban {owner} jail=sshd reason=ignore:{owner}/32")),
        "{run}"
    );
    assert!(!run.contains(&format!("restore {owner} ")), "{run}");
    assert!(
        !in_nft(owner),
        "the ignored address is still in the nft set"
    );
    assert!(!d.banned(owner));
    assert!(in_nft(other) && d.banned(other), "another ban was lifted");

    // a range goes into `ignore` and the daemon reloads: the ban inside it is lifted
    write(&[owner, "203.0.113.0/24"]);
    let out = d.cli(&["reload"]).check();
    println!("[ignore] {}", out.stdout_str().trim());
    assert!(out.stdout_str().contains("lifted=1"), "{out:?}");
    assert!(!in_nft(ranged) && !d.banned(ranged));
    assert!(d.log().contains(&format!(
        "unban {ranged} jail=sshd reason=ignore:203.0.113.0/24"
    )));

    // the host gets two banned addresses on an interface: lifted without a reload
    ns.ip(&["addr", "add", &format!("{own4}/32"), "dev", "lo"]);
    ns.ip(&["addr", "add", &format!("{own6}/128"), "dev", "lo"]);
    let t = Instant::now();
    wait_for(
        "the host's new addresses to be unbanned",
        Duration::from_secs(10),
        || !in_nft(own4) && !in_nft(own6),
    );
    println!("[ignore] own addresses unbanned after {:?}", t.elapsed());
    for a in [own4, own6] {
        assert!(!d.banned(a), "{a} still banned");
        assert!(
            d.log()
                .contains(&format!("unban {a} jail=sshd reason=own-address")),
            "{}",
            d.log()
        );
    }

    // nothing comes back after a restart; the other ban stays throughout
    d.kill9();
    d.spawn();
    let bans: Vec<String> = d.bans().into_iter().map(|b| b.host).collect();
    assert_eq!(bans, [other]);
    let v4: Vec<String> = nft_set(&ns, "v4_sshd").into_iter().map(|e| e.val).collect();
    assert_eq!(v4, [other]);
    assert!(nft_set(&ns, "v6_sshd").is_empty());
    println!("[ignore] done in {:?}", t0.elapsed());
}

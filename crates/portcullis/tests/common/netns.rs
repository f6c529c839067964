//! Network-namespace lab for the real-world integration tests.
//!
//! Everything here needs root. Nothing touches the host's own network configuration or its
//! nft ruleset: every link, address, route and nft table lives inside namespaces created here,
//! and only documentation addresses are used (192.0.2.0/24, 198.51.100.0/24, 2001:db8::/32).
//!
//! * [`Netns`] — one named namespace (`pct-<pid>-<n>-<role>`), deleted on drop together with
//!   every process still running inside it.
//! * [`ProcessGuard`] — a child process (in its own process group), killed on drop.
//! * [`Lab`] — three namespaces `server`, `attacker`, `legit`, wired with veth pairs:
//!
//! ```text
//!   attacker 192.0.2.2/24     ── veth ──  192.0.2.1/24     server   198.51.100.1/24     ── veth ── legit 198.51.100.2/24
//!            2001:db8:a::2/64                2001:db8:a::1/64          2001:db8:b::1/64                 2001:db8:b::2/64
//! ```
//!
//!   plus a real OpenSSH sshd in `server` ([`Lab::start_sshd`]) whose log is written in classic
//!   syslog format, ssh logins from either client ([`Lab::ssh_attempt`]) and plain TCP probes
//!   ([`Lab::tcp_connects`]).
//!
//! The first namespace created by a process sweeps away `pct-*` namespaces left behind by
//! earlier runs whose process is gone (killed test binaries never run their `Drop`s).
//!
//! Host packages: iproute2, nftables, openssh-server, openssh-client, sshpass, passwd (useradd,
//! chpasswd), coreutils.

#![allow(dead_code)]

use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::sync::{Mutex, Once, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Every namespace this harness creates starts with this; the stale sweep touches nothing else.
pub const PREFIX: &str = "pct-";

/// The local account used for ssh logins (created once if missing, left in place).
pub const TEST_USER: &str = "pctuser";

/// Default bound for commands run through [`Netns::exec`].
pub const DEFAULT_CMD_TIMEOUT: Duration = Duration::from_secs(30);

pub const SERVER_ATT_V4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
pub const ATTACKER_V4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
pub const SERVER_ATT_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xa, 0, 0, 0, 0, 1);
pub const ATTACKER_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xa, 0, 0, 0, 0, 2);
pub const SERVER_LEG_V4: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);
pub const LEGIT_V4: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 2);
pub const SERVER_LEG_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xb, 0, 0, 0, 0, 1);
pub const LEGIT_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xb, 0, 0, 0, 0, 2);

// ───────────────────────────── small utilities ─────────────────────────────

/// Panics with a clear message unless the effective user is root. Tests that need the lab
/// call this first: they must fail, not silently skip, when run unprivileged.
pub fn require_root() {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    assert!(
        euid == 0,
        "this test needs root (network namespaces, nftables, sshd, useradd); effective uid is \
         {euid}. Run it as root, e.g. `sudo -E cargo test -p portcullis --test netns_harness`."
    );
}

/// The first of `n` consecutive uids (and gids) in `range` free on this machine, for the
/// private accounts of a test's mount namespace (never created on the host).
pub fn free_ids(n: u32, range: std::ops::Range<u32>) -> u32 {
    let used = |file: &str| -> std::collections::BTreeSet<u32> {
        fs::read_to_string(file)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split(':').nth(2)?.parse().ok())
            .collect()
    };
    let (users, groups) = (used("/etc/passwd"), used("/etc/group"));
    range
        .clone()
        .find(|id| (*id..id + n).all(|i| !users.contains(&i) && !groups.contains(&i)))
        .unwrap_or_else(|| panic!("{n} free uids/gids in {range:?}"))
}

/// Panics unless `program` is installed (in /usr/bin, /usr/sbin, /bin or /sbin), saying
/// which Debian `package` brings it: a test fails, never skips, when a tool is missing.
pub fn require_program(program: &str, package: &str) {
    let found = ["/usr/bin", "/usr/sbin", "/bin", "/sbin"]
        .iter()
        .any(|d| Path::new(d).join(program).is_file());
    assert!(
        found,
        "{program} is missing: install {package} (test.sh does)"
    );
}

/// `unshare`'s arguments that run bash as pid 1 of new pid and network namespaces, its
/// processes killed with it ([`run_unshared`]).
pub const UNSHARED_BASH: [&str; 6] = [
    "--pid",
    "--fork",
    "--kill-child",
    "--mount-proc",
    "--net",
    "bash",
];

/// Whether `proc` still runs once the file `marker` has content (it wrote it), within
/// `timeout`; false when it exits first or the time passes.
pub fn wait_marker(proc: &mut ProcessGuard, marker: &Path, timeout: Duration) -> bool {
    let written = || fs::metadata(marker).is_ok_and(|m| m.len() > 0);
    wait_until(timeout, || proc.try_wait().is_some() || written())
        && written()
        && proc.try_wait().is_none()
}

/// Runs `bash SCRIPT ARGS…` as pid 1 of new pid and network namespaces (`unshare --pid
/// --fork --kill-child --mount-proc --net`): every process the script starts is in them
/// and dies with them, and its traffic never leaves its own loopback. Bounded to 60 s.
pub fn run_unshared<S: AsRef<OsStr>>(script: &Path, args: &[S]) -> CmdOutput {
    run_with_timeout(
        Command::new("unshare")
            .args(UNSHARED_BASH)
            .arg(script)
            .args(args),
        None,
        Duration::from_secs(60),
    )
}

/// Polls `pred` every 50 ms until it holds or `timeout` has passed. Returns whether it held.
/// The loop is bounded both in time and in iterations.
pub fn wait_until(timeout: Duration, mut pred: impl FnMut() -> bool) -> bool {
    const STEP: Duration = Duration::from_millis(50);
    let deadline = Instant::now() + timeout;
    let max_iter = (timeout.as_millis() / STEP.as_millis()) as u64 + 2;
    for _ in 0..max_iter {
        if pred() {
            return true;
        }
        if Instant::now() >= deadline {
            break;
        }
        std::thread::sleep(STEP);
    }
    pred()
}

/// Like [`wait_until`] but panics naming `what` when the predicate never held.
pub fn wait_for(what: &str, timeout: Duration, pred: impl FnMut() -> bool) {
    assert!(
        wait_until(timeout, pred),
        "timed out after {timeout:?} waiting for {what}"
    );
}

/// Result of a command run with a hard timeout.
#[derive(Debug)]
pub struct CmdOutput {
    pub program: String,
    /// `None` when the command was killed at its timeout.
    pub status: Option<ExitStatus>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub timed_out: bool,
    pub elapsed: Duration,
}

impl CmdOutput {
    pub fn success(&self) -> bool {
        self.status.is_some_and(|s| s.success())
    }
    pub fn code(&self) -> Option<i32> {
        self.status.and_then(|s| s.code())
    }
    pub fn stdout_str(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
    pub fn stderr_str(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
    /// Panics with the command, exit status and both streams unless it succeeded.
    #[track_caller]
    pub fn check(self) -> Self {
        if !self.success() {
            panic!(
                "command failed: {}\n  status: {:?} (timed out: {})\n  stdout: {}\n  stderr: {}",
                self.program,
                self.status,
                self.timed_out,
                self.stdout_str().trim_end(),
                self.stderr_str().trim_end()
            );
        }
        self
    }
}

fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

fn kill_group(pid: u32, sig: i32) {
    // SAFETY: plain syscall; the child was started with process_group(0) so its pgid == pid.
    unsafe {
        libc::kill(-(pid as i32), sig);
    }
}

fn kill_pid(pid: u32, sig: i32) {
    // SAFETY: plain syscall.
    unsafe {
        libc::kill(pid as i32, sig);
    }
}

/// Runs `cmd` (in its own process group) with `stdin` fed in, capturing stdout and stderr,
/// killing the whole group when `timeout` passes.
pub fn run_with_timeout(cmd: &mut Command, stdin: Option<&[u8]>, timeout: Duration) -> CmdOutput {
    let program = describe(cmd);
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .process_group(0);
    let start = Instant::now();
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start `{program}`: {e} (is the package installed?)"));
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().expect("stdin piped");
        let input = input.to_vec();
        std::thread::spawn(move || {
            let _ = pipe.write_all(&input);
        });
    }
    let out_rx = drain(child.stdout.take().expect("stdout piped"));
    let err_rx = drain(child.stderr.take().expect("stderr piped"));
    let deadline = start + timeout;
    let mut timed_out = false;
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break Some(st),
            Ok(None) if Instant::now() >= deadline => {
                timed_out = true;
                kill_group(child.id(), libc::SIGKILL);
                // After SIGKILL the wait is short; still bound it.
                let _ = wait_child_bounded(&mut child, Duration::from_secs(2));
                break None;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(_) => break None,
        }
    };
    // A grandchild that left the process group may still hold the pipes: bound the wait.
    let stdout = out_rx
        .recv_timeout(Duration::from_secs(2))
        .unwrap_or_default();
    let stderr = err_rx
        .recv_timeout(Duration::from_secs(2))
        .unwrap_or_default();
    CmdOutput {
        program,
        status,
        stdout,
        stderr,
        timed_out,
        elapsed: start.elapsed(),
    }
}

fn drain<R: Read + Send + 'static>(mut r: R) -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = r.read_to_end(&mut buf);
        let _ = tx.send(buf);
    });
    rx
}

fn wait_child_bounded(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(st)) => return Some(st),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            _ => return None,
        }
    }
}

/// Runs a host command (not in a namespace), bounded by `timeout`.
pub fn host_cmd<S: AsRef<OsStr>>(program: &str, args: &[S], timeout: Duration) -> CmdOutput {
    let mut cmd = Command::new(program);
    cmd.args(args);
    run_with_timeout(&mut cmd, None, timeout)
}

fn find_program(name: &str) -> PathBuf {
    for dir in [
        "/usr/sbin",
        "/usr/bin",
        "/sbin",
        "/bin",
        "/usr/local/sbin",
        "/usr/local/bin",
    ] {
        let p = Path::new(dir).join(name);
        if p.is_file() {
            return p;
        }
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let p = dir.join(name);
            if p.is_file() {
                return p;
            }
        }
    }
    panic!("`{name}` not found; install it (see tests/common/netns.rs for the package list)");
}

// ───────────────────────────── processes ─────────────────────────────

/// A running child process in its own process group; the group is terminated on drop
/// (SIGTERM, then SIGKILL after 2 s).
pub struct ProcessGuard {
    child: Option<Child>,
    label: String,
}

impl ProcessGuard {
    /// Spawns `cmd` in a new process group.
    pub fn spawn(mut cmd: Command, label: impl Into<String>) -> ProcessGuard {
        let label = label.into();
        cmd.process_group(0);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {label} (`{}`): {e}", describe(&cmd)));
        ProcessGuard {
            child: Some(child),
            label,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    /// `Some(status)` once the process has exited.
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    pub fn child_mut(&mut self) -> &mut Child {
        self.child.as_mut().expect("process already reaped")
    }

    /// Stops the process group with SIGTERM and waits up to `grace` for the end (a daemon
    /// saving its state at stop); its exit status, or `None` if it had to be killed (or was
    /// gone already).
    #[allow(dead_code)]
    pub fn terminate(&mut self, grace: Duration) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        if let Ok(Some(s)) = child.try_wait() {
            return Some(s);
        }
        kill_group(child.id(), libc::SIGTERM);
        let status = wait_child_bounded(&mut child, grace);
        if status.is_none() {
            kill_group(child.id(), libc::SIGKILL);
            let _ = wait_child_bounded(&mut child, Duration::from_secs(2));
        }
        status
    }

    /// Terminates the process group now (idempotent).
    pub fn kill(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        kill_group(child.id(), libc::SIGTERM);
        if wait_child_bounded(&mut child, Duration::from_secs(2)).is_none() {
            kill_group(child.id(), libc::SIGKILL);
            if wait_child_bounded(&mut child, Duration::from_secs(2)).is_none() {
                eprintln!("warning: {} (pid {}) did not die", self.label, child.id());
            }
        }
    }
}

impl Drop for ProcessGuard {
    fn drop(&mut self) {
        self.kill();
    }
}

// ───────────────────────────── namespaces ─────────────────────────────

static NS_COUNTER: AtomicU32 = AtomicU32::new(0);
static SWEEP: Once = Once::new();

/// A network namespace named `pct-<pid>-<n>-<role>`; deleted on drop, after every process
/// still inside it has been killed.
pub struct Netns {
    name: String,
}

impl Netns {
    /// Creates a fresh namespace for `role` (letters, digits, `-`), with loopback up.
    pub fn new(role: &str) -> Netns {
        require_root();
        SWEEP.call_once(sweep_stale);
        let role: String = role
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
            .take(16)
            .collect();
        let n = NS_COUNTER.fetch_add(1, Ordering::SeqCst);
        let name = format!("{PREFIX}{}-{n}-{role}", std::process::id());
        host_cmd("ip", &["netns", "add", &name], Duration::from_secs(10)).check();
        let ns = Netns { name };
        // No DAD anywhere in the lab (link-local addresses included): nothing to wait for.
        for key in ["all", "default", "lo"] {
            let path = format!("/proc/sys/net/ipv6/conf/{key}/accept_dad");
            ns.run_in(move || fs::write(&path, "0"))
                .unwrap_or_else(|e| panic!("cannot disable DAD in {}: {e}", ns.name));
        }
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// A `Command` that runs `program args` inside this namespace (`ip netns exec`).
    pub fn command<S: AsRef<OsStr>>(&self, program: &str, args: &[S]) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name, program]).args(args);
        cmd
    }

    /// Runs a command inside the namespace, bounded by [`DEFAULT_CMD_TIMEOUT`].
    pub fn exec<S: AsRef<OsStr>>(&self, program: &str, args: &[S]) -> CmdOutput {
        self.exec_timeout(program, args, DEFAULT_CMD_TIMEOUT)
    }

    pub fn exec_timeout<S: AsRef<OsStr>>(
        &self,
        program: &str,
        args: &[S],
        timeout: Duration,
    ) -> CmdOutput {
        run_with_timeout(&mut self.command(program, args), None, timeout)
    }

    /// Whether a TCP listener in the namespace takes `port` on both `v4` and `v6` (each
    /// address or the wildcard), read with `ss`, not probed: a probe would be one more
    /// client in the server's log (real_mail, real_exim, real_ftp).
    pub fn listens_on(&self, port: u16, v4: &str, v6: &str) -> bool {
        let out = self.exec_timeout("ss", &["-Hltn"], Duration::from_secs(10));
        let s = out.stdout_str();
        let any = format!("*:{port} ");
        out.success()
            && [
                format!("{v4}:{port} "),
                format!("0.0.0.0:{port} "),
                any.clone(),
            ]
            .iter()
            .any(|p| s.contains(p.as_str()))
            && [format!("[{v6}]:{port} "), format!("[::]:{port} "), any]
                .iter()
                .any(|p| s.contains(p.as_str()))
    }

    /// Runs a command inside the namespace with `input` on its stdin.
    pub fn exec_input<S: AsRef<OsStr>>(
        &self,
        program: &str,
        args: &[S],
        input: &[u8],
    ) -> CmdOutput {
        run_with_timeout(
            &mut self.command(program, args),
            Some(input),
            DEFAULT_CMD_TIMEOUT,
        )
    }

    /// `ip -n NAME args…`, panicking on failure.
    #[track_caller]
    pub fn ip(&self, args: &[&str]) -> CmdOutput {
        let mut full = vec!["-n", &self.name];
        full.extend_from_slice(args);
        host_cmd("ip", &full, Duration::from_secs(10)).check()
    }

    /// Applies an nft script inside this namespace (`nft -f -`), panicking on failure.
    #[track_caller]
    pub fn nft(&self, script: &str) -> CmdOutput {
        self.exec_input("nft", &["-f", "-"], script.as_bytes())
            .check()
    }

    /// Spawns a long-running process inside the namespace (stdio to /dev/null); killed on drop.
    pub fn spawn<S: AsRef<OsStr>>(&self, program: &str, args: &[S]) -> ProcessGuard {
        let mut cmd = self.command(program, args);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        ProcessGuard::spawn(cmd, format!("{program} in {}", self.name))
    }

    /// Runs `f` on a fresh thread that has joined this namespace (only that thread does),
    /// e.g. to open sockets from Rust.
    pub fn run_in<R: Send + 'static>(&self, f: impl FnOnce() -> R + Send + 'static) -> R {
        let path = format!("/run/netns/{}", self.name);
        let file = File::open(&path).unwrap_or_else(|e| panic!("cannot open {path}: {e}"));
        std::thread::spawn(move || {
            // SAFETY: setns on a valid namespace fd; it affects only the calling thread.
            let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
            assert!(
                rc == 0,
                "setns({path}) failed: {}",
                std::io::Error::last_os_error()
            );
            f()
        })
        .join()
        .unwrap_or_else(|p| std::panic::resume_unwind(p))
    }

    /// Pids of processes currently inside the namespace.
    pub fn pids(&self) -> Vec<u32> {
        ns_pids(&self.name)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        delete_ns(&self.name);
    }
}

fn ns_pids(name: &str) -> Vec<u32> {
    host_cmd("ip", &["netns", "pids", name], Duration::from_secs(5))
        .stdout_str()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

/// Kills whatever still runs inside the namespace (only processes this harness started
/// there), then deletes it. Never panics (runs in `Drop`, maybe during unwinding).
fn delete_ns(name: &str) {
    for attempt in 0..3 {
        let pids = ns_pids(name);
        for &pid in &pids {
            kill_pid(pid, libc::SIGKILL);
        }
        if !pids.is_empty() {
            wait_until(Duration::from_secs(2), || ns_pids(name).is_empty());
        }
        let out = host_cmd("ip", &["netns", "del", name], Duration::from_secs(10));
        if out.success() || !Path::new("/run/netns").join(name).exists() {
            return;
        }
        if attempt == 2 {
            eprintln!(
                "warning: could not delete netns {name}: {}",
                out.stderr_str().trim()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Deletes `pct-<pid>-…` namespaces whose creating process is gone (or whose pid has been
/// reused by a process started after the namespace). Other prefixes are never touched.
pub fn sweep_stale() {
    let list = host_cmd("ip", &["netns", "list"], Duration::from_secs(10));
    let me = std::process::id();
    for line in list.stdout_str().lines() {
        let Some(name) = line.split_whitespace().next() else {
            continue;
        };
        let Some(rest) = name.strip_prefix(PREFIX) else {
            continue;
        };
        let created = fs::metadata(Path::new("/run/netns").join(name))
            .and_then(|m| m.modified())
            .ok();
        let stale = match rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) {
            Some(pid) if pid == me => false,
            Some(pid) => match process_start_time(pid) {
                None => true, // process gone
                Some(started) => created.is_some_and(|c| started > c + Duration::from_secs(1)),
            },
            // Our prefix but not our format: only if clearly old.
            None => created
                .and_then(|c| c.elapsed().ok())
                .is_some_and(|age| age > Duration::from_secs(3600)),
        };
        if stale {
            eprintln!("netns harness: removing stale namespace {name}");
            delete_ns(name);
        }
    }
}

/// Wall-clock start time of a process, from /proc (None if it does not exist).
fn process_start_time(pid: u32) -> Option<SystemTime> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Field 22 (starttime, clock ticks since boot); fields after the ")" of comm start at 3.
    let after = &stat[stat.rfind(')')? + 2..];
    let ticks: u64 = after.split_whitespace().nth(19)?.parse().ok()?;
    let btime: u64 = fs::read_to_string("/proc/stat")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("btime ").and_then(|v| v.trim().parse().ok()))?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Some(UNIX_EPOCH + Duration::from_secs(btime) + Duration::from_millis(ticks * 1000 / hz))
}

// ───────────────────────────── the lab ─────────────────────────────

/// Which namespace of the lab.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Server,
    Attacker,
    Legit,
}

/// Outcome of one ssh login attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AttemptResult {
    /// The TCP connection and the ssh handshake were made; `auth_ok` tells whether the
    /// password was accepted (the remote `true` ran).
    Connected { auth_ok: bool },
    /// TCP RST (e.g. an nft `reject with tcp reset`, or nothing listening).
    Refused,
    /// No answer at all (an nft `drop`): ssh's ConnectTimeout or our hard timeout hit.
    Timeout,
    /// ICMP unreachable / prohibited (e.g. an nft `reject`).
    Unreachable,
    /// Anything else, with ssh's stderr.
    Other(String),
}

impl AttemptResult {
    /// True when no connection could be made (what a firewall ban looks like).
    pub fn blocked(&self) -> bool {
        matches!(self, Self::Refused | Self::Timeout | Self::Unreachable)
    }
}

/// A running sshd in the server namespace with its syslog-format log.
pub struct Sshd {
    proc: ProcessGuard,
    log_thread: Option<JoinHandle<()>>,
    pub log_path: PathBuf,
    pub config_path: PathBuf,
    pub pid: u32,
}

impl Sshd {
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log_path).unwrap_or_default()
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        self.proc.kill();
        // Per-connection children may still hold the pipe; they die with the namespace.
        if let Some(t) = self.log_thread.take() {
            if wait_until(Duration::from_secs(2), || t.is_finished()) {
                let _ = t.join();
            }
        }
    }
}

/// Three namespaces — `server`, `attacker`, `legit` — wired as described in the module docs.
/// Dropping the lab stops sshd, kills everything inside and deletes the namespaces.
pub struct Lab {
    // Field order is drop order: sshd first, then the namespaces, then the temp dir.
    sshd: Option<Sshd>,
    pub server: Netns,
    pub attacker: Netns,
    pub legit: Netns,
    dir: tempfile::TempDir,
}

impl Lab {
    pub fn new() -> Lab {
        require_root();
        let server = Netns::new("srv");
        let attacker = Netns::new("att");
        let legit = Netns::new("leg");
        let dir = tempfile::Builder::new()
            .prefix("pct-lab-")
            .tempdir()
            .expect("temp dir");

        for (peer, srv_if, v4s, v4p, v6s, v6p) in [
            (
                &attacker,
                "veth-att",
                SERVER_ATT_V4,
                ATTACKER_V4,
                SERVER_ATT_V6,
                ATTACKER_V6,
            ),
            (
                &legit,
                "veth-leg",
                SERVER_LEG_V4,
                LEGIT_V4,
                SERVER_LEG_V6,
                LEGIT_V6,
            ),
        ] {
            // Both ends are created directly inside the namespaces: the host never sees them.
            server.ip(&[
                "link",
                "add",
                srv_if,
                "type",
                "veth",
                "peer",
                "name",
                "veth0",
                "netns",
                peer.name(),
            ]);
            server.ip(&["addr", "add", &format!("{v4s}/24"), "dev", srv_if]);
            server.ip(&["addr", "add", &format!("{v6s}/64"), "dev", srv_if, "nodad"]);
            server.ip(&["link", "set", srv_if, "up"]);
            peer.ip(&["addr", "add", &format!("{v4p}/24"), "dev", "veth0"]);
            peer.ip(&["addr", "add", &format!("{v6p}/64"), "dev", "veth0", "nodad"]);
            peer.ip(&["link", "set", "veth0", "up"]);
        }

        let lab = Lab {
            sshd: None,
            server,
            attacker,
            legit,
            dir,
        };
        for ns in [&lab.server, &lab.attacker, &lab.legit] {
            wait_for(
                &format!("links up and no tentative IPv6 address in {}", ns.name()),
                Duration::from_secs(5),
                || {
                    let tentative = host_cmd(
                        "ip",
                        &["-n", ns.name(), "-6", "addr", "show", "tentative"],
                        Duration::from_secs(5),
                    );
                    let down = host_cmd(
                        "ip",
                        &["-n", ns.name(), "-o", "link", "show", "type", "veth"],
                        Duration::from_secs(5),
                    );
                    tentative.success()
                        && tentative.stdout.is_empty()
                        && down.success()
                        && !down.stdout_str().lines().any(|l| !l.contains("state UP"))
                },
            );
        }
        lab
    }

    pub fn ns(&self, side: Side) -> &Netns {
        match side {
            Side::Server => &self.server,
            Side::Attacker => &self.attacker,
            Side::Legit => &self.legit,
        }
    }

    /// The lab's own temporary directory (removed on drop).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The server's address on the link towards `client` (Attacker or Legit).
    pub fn server_addr(client: Side, v6: bool) -> IpAddr {
        match (client, v6) {
            (Side::Attacker, false) => SERVER_ATT_V4.into(),
            (Side::Attacker, true) => SERVER_ATT_V6.into(),
            (Side::Legit, false) => SERVER_LEG_V4.into(),
            (Side::Legit, true) => SERVER_LEG_V6.into(),
            (Side::Server, _) => panic!("server_addr: give the client side"),
        }
    }

    /// A client's own address.
    pub fn client_addr(client: Side, v6: bool) -> IpAddr {
        match (client, v6) {
            (Side::Attacker, false) => ATTACKER_V4.into(),
            (Side::Attacker, true) => ATTACKER_V6.into(),
            (Side::Legit, false) => LEGIT_V4.into(),
            (Side::Legit, true) => LEGIT_V6.into(),
            (Side::Server, _) => panic!("client_addr: give the client side"),
        }
    }

    /// Password of [`TEST_USER`] (see [`ensure_test_user`]).
    pub fn password(&self) -> &'static str {
        ensure_test_user()
    }

    /// Applies an nft script in the server namespace (stands in for the daemon's firewall).
    #[track_caller]
    pub fn server_nft(&self, script: &str) {
        self.server.nft(script);
    }

    /// Starts OpenSSH sshd in the server namespace on port 22 (all v4 and v6 addresses),
    /// logging in syslog format to `log_path`, and waits until it listens. Returns its pid.
    pub fn start_sshd(&mut self, log_path: &Path) -> u32 {
        self.start_sshd_with(log_path, "")
    }

    /// Like [`Lab::start_sshd`], with extra `sshd_config` lines appended.
    pub fn start_sshd_with(&mut self, log_path: &Path, extra_config: &str) -> u32 {
        assert!(self.sshd.is_none(), "sshd already started in this lab");
        ensure_test_user();
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create("/run/sshd")
            .expect("create /run/sshd (sshd's privilege-separation directory)");

        let dir = self.dir.path().join("sshd");
        fs::create_dir_all(&dir).expect("sshd temp dir");
        let key = dir.join("ssh_host_ed25519_key");
        host_cmd(
            "ssh-keygen",
            &[
                OsStr::new("-q"),
                "-t".as_ref(),
                "ed25519".as_ref(),
                "-N".as_ref(),
                "".as_ref(),
                "-f".as_ref(),
                key.as_os_str(),
            ],
            Duration::from_secs(20),
        )
        .check();
        let config = dir.join("sshd_config");
        let text = format!(
            "# Portcullis test sshd (network namespace {ns})\n\
             Port 22\n\
             ListenAddress 0.0.0.0\n\
             ListenAddress ::\n\
             HostKey {key}\n\
             PidFile {pid}\n\
             PasswordAuthentication yes\n\
             KbdInteractiveAuthentication no\n\
             UsePAM no\n\
             PermitRootLogin no\n\
             MaxAuthTries 6\n\
             LogLevel INFO\n\
             SyslogFacility AUTH\n\
             StrictModes no\n\
             UseDNS no\n\
             PrintMotd no\n\
             PrintLastLog no\n\
             LoginGraceTime 20\n\
             {extra_config}\n",
            ns = self.server.name(),
            key = key.display(),
            pid = dir.join("sshd.pid").display(),
        );
        fs::write(&config, text).expect("write sshd_config");

        if let Some(parent) = log_path.parent() {
            fs::create_dir_all(parent).expect("log dir");
        }
        let sshd_bin = find_program("sshd");
        let mut cmd = self.server.command(
            sshd_bin.to_str().expect("utf-8 path"),
            &[
                OsStr::new("-D"),
                OsStr::new("-e"),
                OsStr::new("-f"),
                config.as_os_str(),
            ],
        );
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut proc = ProcessGuard::spawn(cmd, "sshd");
        let pid = proc.pid(); // `ip netns exec` execs sshd: same pid.
        let stderr = proc.child_mut().stderr.take().expect("sshd stderr piped");
        let log_thread = spawn_syslog_writer(stderr, log_path.to_path_buf(), "server", "sshd", pid);
        let mut sshd = Sshd {
            proc,
            log_thread: Some(log_thread),
            log_path: log_path.to_path_buf(),
            config_path: config,
            pid,
        };

        let ok = wait_until(Duration::from_secs(10), || {
            let log = sshd.log();
            log.contains("Server listening on 0.0.0.0 port 22")
                && log.contains("Server listening on :: port 22")
        });
        if !ok {
            let exited = sshd.proc.try_wait();
            panic!(
                "sshd did not come up (exit status {exited:?}); its log:\n{}",
                sshd.log()
            );
        }
        self.sshd = Some(sshd);
        pid
    }

    pub fn sshd(&self) -> Option<&Sshd> {
        self.sshd.as_ref()
    }

    /// Contents of the sshd log so far (empty if sshd was not started).
    pub fn sshd_log(&self) -> String {
        self.sshd.as_ref().map(Sshd::log).unwrap_or_default()
    }

    /// One ssh login as [`TEST_USER`] from `from` to `target`.
    pub fn ssh_attempt(&self, from: Side, target: IpAddr, password: &str) -> AttemptResult {
        self.ssh_attempt_as(from, target, TEST_USER, password)
    }

    /// One ssh login (one password prompt) as `user`, with a hard 14 s bound.
    pub fn ssh_attempt_as(
        &self,
        from: Side,
        target: IpAddr,
        user: &str,
        password: &str,
    ) -> AttemptResult {
        let target_s = target.to_string();
        let args = ssh_args(None, user, &target_s);
        let mut cmd = self.ns(from).command("sshpass", &args);
        cmd.env("SSHPASS", password); // not on the command line
        let out = run_with_timeout(&mut cmd, None, Duration::from_secs(14));
        classify_ssh(&out)
    }

    /// Whether a TCP connection from `from` to `target:port` is established within `timeout`
    /// (a plain Rust connect on a thread that joined the client's namespace).
    pub fn tcp_connects(&self, from: Side, target: IpAddr, port: u16, timeout: Duration) -> bool {
        self.ns(from).run_in(move || {
            TcpStream::connect_timeout(&SocketAddr::new(target, port), timeout).is_ok()
        })
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        // Explicit for clarity; the field order gives the same result.
        self.sshd.take();
    }
}

/// The `sshpass` arguments of one ssh login (one password prompt, no keys, no host-key
/// checks) as `user` to `target`, from the source address `bind` when given.
pub fn ssh_args<'a>(bind: Option<&'a str>, user: &'a str, target: &'a str) -> Vec<&'a str> {
    let mut args: Vec<&str> = vec![
        "-e",
        "ssh",
        "-F",
        "/dev/null",
        "-o",
        "StrictHostKeyChecking=no",
        "-o",
        "UserKnownHostsFile=/dev/null",
        "-o",
        "GlobalKnownHostsFile=/dev/null",
        "-o",
        "PubkeyAuthentication=no",
        "-o",
        "PreferredAuthentications=password",
        "-o",
        "NumberOfPasswordPrompts=1",
        "-o",
        // (OpenSSH's ConnectTimeout bounds the banner exchange too: a loaded machine's
        // sshd, forking and exec'ing per connection, could miss 2 s, review 32)
        "ConnectTimeout=4",
        "-o",
        "ConnectionAttempts=1",
        "-o",
        "BatchMode=no",
        "-p",
        "22",
        "-l",
        user,
        target,
        "true",
    ];
    if let Some(b) = bind {
        // ssh takes the options before the destination: put -b SRC in front of it
        let at = args.len() - 2;
        args.splice(at..at, ["-b", b]);
    }
    args
}

fn classify_ssh(out: &CmdOutput) -> AttemptResult {
    let err = out.stderr_str();
    if out.timed_out {
        return AttemptResult::Timeout;
    }
    if out.success() {
        return AttemptResult::Connected { auth_ok: true };
    }
    // sshpass exits 5 when the password was refused (it saw a second prompt).
    if out.code() == Some(5) || err.contains("Permission denied") {
        return AttemptResult::Connected { auth_ok: false };
    }
    if err.contains("Connection refused") {
        return AttemptResult::Refused;
    }
    if err.contains("timed out") {
        return AttemptResult::Timeout;
    }
    if err.contains("No route to host") || err.contains("unreachable") || err.contains("prohibited")
    {
        return AttemptResult::Unreachable;
    }
    AttemptResult::Other(format!("exit {:?}: {}", out.code(), err.trim()))
}

// ───────────────────────────── syslog-format log writer ─────────────────────────────

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Common Log Format timestamp in UTC (the access logs' `[...]`): `03/Dec/2026:09:28:36 +0000`.
pub fn clf_timestamp(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()) as i64;
    let iso = portcullis_core::time::rfc3339(secs * 1000);
    let month = MONTHS[iso[5..7].parse::<usize>().unwrap() - 1];
    format!(
        "{}/{month}/{}:{} +0000",
        &iso[8..10],
        &iso[0..4],
        &iso[11..19]
    )
}

/// Classic syslog timestamp in local time: `Mmm dd HH:MM:SS` (day padded with a space).
pub fn syslog_timestamp(t: SystemTime) -> String {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0) as libc::time_t;
    // SAFETY: localtime_r writes only into `tm`.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    unsafe {
        libc::localtime_r(&secs, &mut tm);
    }
    format!(
        "{} {:>2} {:02}:{:02}:{:02}",
        MONTHS[tm.tm_mon.clamp(0, 11) as usize],
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec
    )
}

/// Reads `stderr` line by line and appends `Mmm dd HH:MM:SS HOST PROG[PID]: LINE` to `log`,
/// one write per line. Ends when the pipe closes.
pub fn spawn_syslog_writer(
    stderr: ChildStderr,
    log: PathBuf,
    host: &str,
    prog: &str,
    pid: u32,
) -> JoinHandle<()> {
    let head = format!("{host} {prog}[{pid}]: ");
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .unwrap_or_else(|e| panic!("cannot open log {}: {e}", log.display()));
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stderr);
        let mut line = Vec::new();
        // Bounded by the pipe: the loop ends at EOF (all writers gone) or on a read error.
        loop {
            line.clear();
            match reader.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            while matches!(line.last(), Some(b'\n' | b'\r')) {
                line.pop();
            }
            let mut rec = format!("{} {head}", syslog_timestamp(SystemTime::now())).into_bytes();
            rec.extend_from_slice(&line);
            rec.push(b'\n');
            let _ = file.write_all(&rec);
            let _ = file.flush();
        }
    })
}

/// True when `line` has the shape `Mmm dd HH:MM:SS HOST PROG[PID]: MESSAGE`.
pub fn is_syslog_line(line: &str) -> bool {
    let b = line.as_bytes();
    if b.len() < 17 || !MONTHS.contains(&&line[0..3]) || b[3] != b' ' {
        return false;
    }
    let day_ok = (b[4] == b' ' || b[4].is_ascii_digit()) && b[5].is_ascii_digit() && b[6] == b' ';
    let time_ok = b[7..15].iter().enumerate().all(|(i, c)| {
        if i == 2 || i == 5 {
            *c == b':'
        } else {
            c.is_ascii_digit()
        }
    }) && b[15] == b' ';
    if !day_ok || !time_ok {
        return false;
    }
    let rest = &line[16..];
    let Some((host, rest)) = rest.split_once(' ') else {
        return false;
    };
    let Some((tag, _msg)) = rest.split_once(": ") else {
        return false;
    };
    let Some((prog, pid)) = tag.strip_suffix(']').and_then(|t| t.split_once('[')) else {
        return false;
    };
    !host.is_empty()
        && !prog.is_empty()
        && !pid.is_empty()
        && pid.bytes().all(|c| c.is_ascii_digit())
}

// ───────────────────────────── the test user ─────────────────────────────

/// Makes sure [`TEST_USER`] exists and has the harness password; returns the password.
///
/// The password is random per boot (kept root-only in /run/portcullis-test/), not a constant
/// in the source: the account stays on the machine, whose own sshd may accept passwords.
/// Every test process of the same boot reads the same file, so parallel runs agree.
pub fn ensure_test_user() -> &'static str {
    static PW: OnceLock<String> = OnceLock::new();
    static LOCK: Mutex<()> = Mutex::new(());
    PW.get_or_init(|| {
        let _g = LOCK.lock().unwrap_or_else(|e| e.into_inner());
        require_root();
        let pw = shared_password();
        let t = Duration::from_secs(20);
        if !host_cmd("id", &["-u", TEST_USER], t).success() {
            let out = host_cmd(
                "useradd",
                &[
                    "-m",
                    "-s",
                    "/bin/sh",
                    "-c",
                    "portcullis test user",
                    TEST_USER,
                ],
                t,
            );
            // 9 = already exists (another test process won the race).
            assert!(
                out.success() || out.code() == Some(9),
                "useradd {TEST_USER} failed: {}",
                out.stderr_str()
            );
        }
        let input = format!("{TEST_USER}:{pw}\n");
        let mut last = String::new();
        let ok = (0..10).any(|_| {
            let out = run_with_timeout(&mut Command::new("chpasswd"), Some(input.as_bytes()), t);
            if !out.success() {
                last = out.stderr_str(); // e.g. /etc/shadow locked by a parallel chpasswd
                std::thread::sleep(Duration::from_millis(200));
            }
            out.success()
        });
        assert!(ok, "chpasswd for {TEST_USER} failed: {last}");
        pw
    })
}

fn shared_password() -> String {
    let dir = Path::new("/run/portcullis-test");
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .expect("create /run/portcullis-test");
    let path = dir.join("pctuser.password");
    if !path.exists() {
        let mut raw = [0u8; 12];
        File::open("/dev/urandom")
            .and_then(|mut f| f.read_exact(&mut raw))
            .expect("read /dev/urandom");
        let pw: String = raw.iter().map(|b| format!("{b:02x}")).collect();
        let tmp = dir.join(format!("pctuser.password.{}", std::process::id()));
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .expect("password file");
        f.write_all(pw.as_bytes()).expect("write password file");
        drop(f);
        // Atomic create-if-absent: if another process got there first, theirs wins.
        let _ = fs::hard_link(&tmp, &path);
        let _ = fs::remove_file(&tmp);
    }
    let _ = fs::set_permissions(&path, fs::Permissions::from_mode(0o600));
    let pw = fs::read_to_string(&path)
        .expect("read password file")
        .trim()
        .to_string();
    assert!(pw.len() >= 16, "bad password file {}", path.display());
    pw
}

/// Bash for a script run by [`run_unshared`] (put before it): `private_syslog DIR [shm]` gives
/// the namespace a private /dev (its own null, zero, full, random, urandom and tty nodes, and
/// with `shm` a private /dev/shm) whose /dev/log is the socket of a private rsyslogd, started
/// in the background (a job of the script's shell), writing DIR/syslog in rsyslog's
/// traditional file format with no rate limit; the script exits 3 if it does not start.
/// It also defines `private_dev`, which makes /dev a tmpfs with device nodes of its own (null,
/// zero, full, random, urandom, tty, mode 666) and /dev/fd: never bind mounts of the host's
/// nodes, since a program that chmods its /dev/null would change the host's (ns-slapd's run in
/// real_389ds made the host's /dev/null 0644 that way).
pub const PRIVATE_SYSLOG_SH: &str = r#"private_dev() {
  local n
  mount -t tmpfs -o mode=755 pct-dev /dev
  for n in "null 1 3" "zero 1 5" "full 1 7" "random 1 8" "urandom 1 9" "tty 5 0"; do
    set -- $n; mknod -m 666 "/dev/$1" c "$2" "$3"
  done
  ln -s /proc/self/fd /dev/fd
}
private_syslog() {
  local d=$1 shm=${2:-}
  private_dev
  if [ "$shm" = shm ]; then mkdir /dev/shm && mount -t tmpfs -o mode=1777 pct-shm /dev/shm; fi
  ln -s "$d/log.sock" /dev/log
  cat > "$d/rsyslog.conf" <<R
global(workDirectory="$d")
module(load="imuxsock" SysSock.Use="off")
input(type="imuxsock" Socket="$d/log.sock" RateLimit.Interval="0")
*.* action(type="omfile" file="$d/syslog" template="RSYSLOG_TraditionalFileFormat")
R
  /usr/sbin/rsyslogd -n -f "$d/rsyslog.conf" -i "$d/rsyslogd.pid" 2>"$d/rsyslogd.err" &
  for _ in $(seq 100); do [ -S "$d/log.sock" ] && break; sleep 0.1; done
  [ -S "$d/log.sock" ] || { echo "rsyslogd did not start" >&2; exit 3; }
}
"#;

/// A shell function for the scripts that start a real server in a private mount namespace
/// (`unshare --mount`, real_exim and real_ftp): `private_etc WORK SRC FILE…` makes /etc an
/// overlay, the host's /etc below and each SRC/FILE above, on a tmpfs mounted at WORK. Not
/// a bind mount of each file: when the host replaces one of them (chpasswd renames shadow+
/// over /etc/shadow, as [`ensure_test_user`] does; useradd does the same to passwd and
/// group), the kernel drops every bind mount whose mountpoint was renamed over, in every
/// other mount namespace too, and the server reads the host's file from then on (what made
/// Pure-FTPd refuse the right password now and then: see real_ftp.rs).
pub const PRIVATE_ETC_SH: &str = r#"private_etc() {
  w=$1; src=$2; shift 2
  mkdir -p "$w"
  mount -t tmpfs -o mode=755 pct-etc "$w"
  mkdir -p "$w/up" "$w/work"
  for f in "$@"; do mkdir -p "$w/up/$(dirname "$f")"; cp "$src/$f" "$w/up/$f"; done
  mount -t overlay pct-etc -o "lowerdir=/etc,upperdir=$w/up,workdir=$w/work" /etc
}
"#;

/// Joins two namespaces of a real-server test (real_mail, real_exim, real_ftp) by a veth
/// pair: the server holds `server_v4`/24 and `server_v6`/64 on `veth-s` and routes
/// 203.0.113.0/24 and 198.51.100.0/24 to the client; the client holds `legit`/24, every
/// address of `attackers` (IPv4 as /24, IPv6 as /64, without duplicate detection) and sends
/// to 192.0.2.0/24 from `legit` unless a client binds another source.
pub fn wire_server_and_clients(
    server: &Netns,
    client: &Netns,
    (server_v4, server_v6): (&str, &str),
    legit: &str,
    attackers: &[String],
) {
    server.ip(&[
        "link",
        "add",
        "veth-s",
        "type",
        "veth",
        "peer",
        "name",
        "veth-c",
        "netns",
        client.name(),
    ]);
    server.ip(&["addr", "add", &format!("{server_v4}/24"), "dev", "veth-s"]);
    server.ip(&[
        "addr",
        "add",
        &format!("{server_v6}/64"),
        "dev",
        "veth-s",
        "nodad",
    ]);
    server.ip(&["link", "set", "veth-s", "up"]);
    for net in ["203.0.113.0/24", "198.51.100.0/24"] {
        server.ip(&["route", "add", net, "dev", "veth-s"]);
    }
    client.ip(&["addr", "add", &format!("{legit}/24"), "dev", "veth-c"]);
    for a in attackers {
        if a.contains(':') {
            client.ip(&["addr", "add", &format!("{a}/64"), "dev", "veth-c", "nodad"]);
        } else {
            client.ip(&["addr", "add", &format!("{a}/24"), "dev", "veth-c"]);
        }
    }
    client.ip(&["link", "set", "veth-c", "up"]);
    client.ip(&[
        "route",
        "add",
        "192.0.2.0/24",
        "dev",
        "veth-c",
        "src",
        legit,
    ]);
}

const NF_LOG_ALL_NETNS: &str = "/proc/sys/net/netfilter/nf_log_all_netns";

/// Holds `net.netfilter.nf_log_all_netns` (host-global) at 1 while alive, so that the LOG
/// rules of a test's network namespace write to the kernel's ring buffer (real_ufw,
/// real_psad); its drop writes back the value found, also when the test panics. (cargo runs
/// test binaries one after another: two tests of different binaries never overlap.)
pub struct NfLogAllNetns(String);

impl NfLogAllNetns {
    pub fn enable() -> Self {
        let old = std::fs::read_to_string(NF_LOG_ALL_NETNS)
            .unwrap_or_else(|e| panic!("{NF_LOG_ALL_NETNS}: {e}"));
        let guard = NfLogAllNetns(old.trim().to_string());
        std::fs::write(NF_LOG_ALL_NETNS, "1").unwrap_or_else(|e| panic!("{NF_LOG_ALL_NETNS}: {e}"));
        guard
    }
}

impl Drop for NfLogAllNetns {
    fn drop(&mut self) {
        let _ = std::fs::write(NF_LOG_ALL_NETNS, &self.0);
    }
}

/// A shell function for scripts run by [`run_unshared`] (real_ufw, real_psad):
/// `veth_client IF ADDR…` starts a second network namespace (its holder process's pid in
/// `$cpid`, a `sleep 50`), joins it to this one by a veth pair (this end IF with 192.0.2.1/24
/// and 2001:db8:a::1/64, the other end veth-c with each ADDR: IPv4 as /24, IPv6 as /64
/// without duplicate detection); `c CMD…` runs a command in the client namespace.
pub const VETH_CLIENT_SH: &str = r#"veth_client() {
  local IF=$1 a
  shift
  unshare --net sleep 50 & cpid=$!
  for _ in $(seq 100); do
    [ "$(readlink /proc/$cpid/ns/net)" != "$(readlink /proc/self/ns/net)" ] && break; sleep 0.02
  done
  ip link add "$IF" type veth peer name veth-c netns "$cpid" || exit 2
  ip addr add 192.0.2.1/24 dev "$IF" && ip addr add 2001:db8:a::1/64 dev "$IF" nodad || exit 2
  ip link set "$IF" up
  c ip link set lo up
  for a in "$@"; do
    case $a in
      *:*) c ip addr add "$a/64" dev veth-c nodad || exit 2 ;;
      *) c ip addr add "$a/24" dev veth-c || exit 2 ;;
    esac
  done
  c ip link set veth-c up || exit 2
}
c() { nsenter --net=/proc/$cpid/ns/net "$@"; }
"#;

/// The elements of one family of a jail in `inet TABLE`, as `(value, timeout, expires)`
/// (seconds), with `set` naming the family and jail as the plain set does (`v4_sshd`,
/// `v6_sshd`): the daemon keeps single addresses in that set, IPv6 /64s in `v6n_JAIL`
/// (listed here as `ADDR/64`) and other prefixes in the interval set `v4p_JAIL`/`v6p_JAIL`
/// (listed as `ADDR/LEN`).
pub fn nft_jail_elements(
    ns: &str,
    table: &str,
    set: &str,
) -> Vec<(String, Option<i64>, Option<i64>)> {
    let (fam, jail) = set.split_once('_').expect("a set named v4_JAIL or v6_JAIL");
    // (set, the prefix length its plain elements stand for)
    let sets: Vec<(String, Option<u8>)> = match fam {
        "v4" => vec![
            (format!("v4_{jail}"), None),
            (format!("v4c_{jail}"), Some(24)),
            (format!("v4p_{jail}"), None),
        ],
        "v6" => vec![
            (format!("v6_{jail}"), None),
            (format!("v6k_{jail}"), Some(48)),
            (format!("v6m_{jail}"), Some(56)),
            (format!("v6n_{jail}"), Some(64)),
            (format!("v6p_{jail}"), None),
        ],
        other => panic!("not a family: {other}"),
    };
    let mut out = Vec::new();
    for (name, plen) in sets {
        let o = host_cmd(
            "ip",
            &[
                "netns", "exec", ns, "nft", "-j", "list", "set", "inet", table, &name,
            ],
            DEFAULT_CMD_TIMEOUT,
        )
        .check();
        let v: serde_json::Value = serde_json::from_slice(&o.stdout)
            .unwrap_or_else(|e| panic!("nft -j output is not JSON ({e}): {}", o.stdout_str()));
        let val = |v: &serde_json::Value| match v.as_str() {
            Some(s) => match plen {
                Some(l) => format!("{s}/{l}"),
                None => s.to_string(),
            },
            None => format!(
                "{}/{}",
                v["prefix"]["addr"].as_str().unwrap_or_default(),
                v["prefix"]["len"].as_u64().unwrap_or_default()
            ),
        };
        for item in v["nftables"].as_array().into_iter().flatten() {
            for e in item["set"]["elem"].as_array().into_iter().flatten() {
                match e.get("elem") {
                    Some(inner) => out.push((
                        val(&inner["val"]),
                        inner["timeout"].as_i64(),
                        inner["expires"].as_i64(),
                    )),
                    None => out.push((val(e), None, None)),
                }
            }
        }
    }
    out
}

//! Firewall backends behind one small trait.
//!
//! A backend owns its own corner of the firewall (for nftables, one table) and holds one set of
//! banned addresses per jail, with a timeout per element so the kernel lifts a ban by itself
//! even if the daemon is gone. The engine calls [`Firewall::setup`] once at start (and at
//! reload), then [`Firewall::apply`] with batches of [`FwOp`]s; at start it reconciles the
//! store with [`Firewall::list`].
//!
//! Backends build their command input with pure functions, so the exact text sent to the
//! firewall is unit-tested without root.

#[cfg(test)]
mod bench;
pub mod command;
pub mod hosts_deny;
pub mod ipset;
pub mod iptables;
pub mod nftables;
pub mod null;
pub mod ratelimit;
pub mod route;
pub mod router;
pub mod settings;
#[cfg(test)]
pub(crate) mod testns;

use std::io::{Read as _, Write as _};
use std::net::IpAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use portcullis_core::ignore::Cidr;

/// What happens to a packet from a banned address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Silently discard it.
    Drop,
    /// Refuse it: a TCP reset for TCP, an ICMP port-unreachable otherwise.
    Reject,
}

/// Which transport protocols a jail's ports are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    Tcp,
    Udp,
    Both,
}

/// The firewall side of one jail: what to block for its banned addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JailRules {
    /// Jail name: 1 to 64 of `[A-Za-z0-9_-]`.
    pub name: String,
    /// Destination port ranges (inclusive; `(22, 22)` is port 22), or `None` for all ports.
    /// With `None` and [`Proto::Both`], all traffic from a banned address is blocked.
    pub ports: Option<Vec<(u16, u16)>>,
    pub proto: Proto,
    pub action: Action,
    /// The backends of this jail (`[[jail]] backend`); empty: the `[firewall] backend`.
    pub backends: Vec<String>,
}

impl JailRules {
    /// Checks the name and the port ranges.
    pub fn check(&self) -> Result<()> {
        check_jail_name(&self.name)?;
        if let Some(ports) = &self.ports {
            if ports.is_empty() {
                bail!(
                    "jail {}: empty port list (leave ports out to block all ports)",
                    self.name
                );
            }
            if let Some((lo, hi)) = ports.iter().find(|(lo, hi)| lo > hi) {
                bail!("jail {}: port range {lo}-{hi} is backwards", self.name);
            }
        }
        Ok(())
    }
}

/// Checks that `name` can be a jail name: 1 to 64 characters of `[A-Za-z0-9_-]`.
pub fn check_jail_name(name: &str) -> Result<()> {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    if name.is_empty() || name.len() > 64 || !name.chars().all(ok_char) {
        bail!("bad jail name {name:?}: use 1 to 64 letters, digits, '_' or '-'");
    }
    Ok(())
}

/// One change to the banned sets.
///
/// `addr` is an address (/32, /128) or a prefix (`v4_prefix`, `v6_prefix`, `subnet_ban`,
/// CIDR `deny` entries and manual bans): every backend bans the whole prefix in its own
/// syntax (nftables: sets with `flags interval`). The engine never sends overlapping
/// elements of one jail: a wider ban comes with the `Del` of the narrower ones it covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FwOp {
    /// Ban `addr` in `jail` for `timeout_ms` from now; if it is already banned, its timeout is
    /// replaced. A timeout of zero or less removes it instead (the ban is already over).
    /// [`PERMANENT`] means no timeout at all: only an unban lifts it.
    Add {
        jail: String,
        addr: Cidr,
        timeout_ms: i64,
    },
    /// Lift the ban of `addr` in `jail`; nothing happens if it is not banned.
    Del { jail: String, addr: Cidr },
}

/// The `timeout_ms` of a permanent ban (no timeout in the firewall).
pub const PERMANENT: i64 = portcullis_core::decision::FOREVER;

/// True for prefixes that are never banned whatever the caller says: those holding a
/// loopback or the unspecified address (see [`never_ban`]).
pub fn never_ban_prefix(c: Cidr) -> bool {
    if c.is_host() {
        return never_ban(c.addr);
    }
    portcullis_core::ignore::IgnoreList::default()
        .check_prefix(c)
        .is_some()
}

/// A firewall backend.
pub trait Firewall: Send {
    /// Creates or repairs our rules and sets for `jails`. Idempotent; keeps the banned
    /// addresses of jails that are still configured and drops the sets of the others.
    fn setup(&mut self, jails: &[JailRules]) -> Result<()>;
    /// Applies a batch in one transaction: all of it or nothing. Later ops on the same
    /// (jail, address) win.
    fn apply(&mut self, ops: &[FwOp]) -> Result<()>;
    /// Lists what is banned now: jail, address, remaining milliseconds (`None`: no timeout).
    /// Only the tests read the kernel's state back; the daemon's truth is its store.
    #[cfg(test)]
    fn list(&mut self) -> Result<Vec<(String, IpAddr, Option<i64>)>>;
    /// What the kernel holds of our bans now, where it can be read back (nftables sets):
    /// jail, address or prefix, remaining milliseconds (`None`: permanent). Read at a start
    /// whose state file is new or was unusable, so that the bans still in force are kept
    /// rather than wiped (review 60). Empty for the other backends.
    fn kernel_bans(&mut self) -> Result<Vec<(String, Cidr, Option<i64>)>> {
        Ok(Vec::new())
    }
    /// Removes everything of ours from the firewall.
    fn teardown(&mut self) -> Result<()>;
    /// Puts back the bans of the store at start, after [`Firewall::setup`]: `ops` is the
    /// whole truth. Backends whose bans do not expire in the kernel (iptables, route,
    /// hosts-deny) drop anything of theirs not in it, so a crash never leaves a ban forever
    /// and nothing is doubled. The default is [`Firewall::apply`].
    fn restore(&mut self, ops: &[FwOp]) -> Result<()> {
        self.apply(ops)
    }
    /// Gives the backends whose bans expire by themselves ([`Firewall::expires_itself`])
    /// `ops` again, with timeouts counted from now: after the wall clock was set back, their
    /// kernel timeouts run out before the bans end. The others lift their bans when the
    /// engine says so, and are left alone (a `command` backend ran its `ban` program again
    /// for every ban at every step, a review found).
    fn restore_expiring(&mut self, ops: &[FwOp]) -> Result<()> {
        if self.expires_itself() {
            self.restore(ops)
        } else {
            Ok(())
        }
    }
    /// True when the kernel lifts bans by itself at their timeout (nftables sets, ipset);
    /// otherwise the engine sends a [`FwOp::Del`] when a ban ends.
    fn expires_itself(&self) -> bool {
        true
    }
    /// Takes the kernel rate limits, put in place by the next [`Firewall::setup`]. Backends
    /// without them refuse any.
    fn set_ratelimits(&mut self, rl: &ratelimit::RateLimits) -> Result<()> {
        if !rl.limits.is_empty() {
            bail!("this firewall backend cannot rate-limit in the kernel; [[ratelimit]] needs backend \"nftables\", \"iptables\" or \"ipset\"");
        }
        Ok(())
    }
    /// [`Firewall::apply`], returning the changes refused one by one while the others were
    /// carried out (a `command` program that failed for one ban of a batch), so that the
    /// caller does not take them for done; an error when the batch as a whole failed. By
    /// default: nothing is refused alone.
    fn apply_each(&mut self, ops: &[FwOp]) -> Result<Vec<FwOp>> {
        self.apply(ops).map(|()| Vec::new())
    }
    /// Whether what [`Firewall::setup`] made is still there (a `systemctl restart nftables`
    /// runs `flush ruleset`, and every ban is gone from the kernel); cheap, checked once a
    /// minute. True by default.
    fn intact(&mut self) -> Result<bool> {
        Ok(true)
    }
    /// Lines for `status`: rate-limit counters, size warnings. Empty by default.
    fn report(&mut self) -> Vec<String> {
        Vec::new()
    }
}

/// Folds a batch into its outcome per (jail, address or prefix), later ops winning: the
/// timeout (milliseconds, > 0; [`PERMANENT`] for no timeout) of a ban, or `None` for "not
/// banned". In first-seen order; prefixes in their [`canonical_prefix`] form.
pub fn fold(ops: &[FwOp]) -> Vec<((String, Cidr), Option<i64>)> {
    let mut order: Vec<(String, Cidr)> = Vec::new();
    let mut last: std::collections::HashMap<(String, Cidr), Option<i64>> =
        std::collections::HashMap::new();
    for op in ops {
        let (key, v) = match op {
            FwOp::Add {
                jail,
                addr,
                timeout_ms,
            } => (
                (jail.clone(), canonical_prefix(*addr)),
                (*timeout_ms > 0).then_some(*timeout_ms),
            ),
            FwOp::Del { jail, addr } => ((jail.clone(), canonical_prefix(*addr)), None),
        };
        if last.insert(key.clone(), v).is_none() {
            order.push(key);
        }
    }
    order
        .into_iter()
        .map(|k| {
            let v = last[&k];
            (k, v)
        })
        .collect()
}

/// Whole seconds of a ban's timeout, rounded up, for backends that count in seconds;
/// `None` for a [`PERMANENT`] ban (no timeout at all).
pub fn timeout_secs(timeout_ms: i64) -> Option<i64> {
    (timeout_ms != PERMANENT).then(|| timeout_ms.saturating_add(999) / 1000)
}

/// Finds `program` on PATH or in the sbin directories (root's PATH may lack them).
pub fn find_program(program: &str) -> Option<std::path::PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let exec = |p: &std::path::Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if program.contains('/') {
        let p = std::path::PathBuf::from(program);
        return exec(&p).then_some(p);
    }
    let path = std::env::var("PATH").unwrap_or_default();
    let found = path
        .split(':')
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"])
        .filter(|d| !d.is_empty())
        .map(|d| std::path::Path::new(d).join(program))
        .find(|p| exec(p));
    found
}

/// What a finished program said.
#[derive(Debug)]
pub struct RunOutput {
    pub status: std::process::ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl RunOutput {
    pub fn success(&self) -> bool {
        self.status.success()
    }
    /// The end of stderr (at most 2000 characters), trimmed.
    pub fn stderr_excerpt(&self) -> String {
        let err = String::from_utf8_lossy(&self.stderr);
        let err = err.trim();
        match err.char_indices().rev().nth(2000) {
            Some((i, _)) => format!("...{}", &err[i..]),
            None => err.to_string(),
        }
    }
}

/// Runs `argv` directly (never through a shell) with `input` on stdin, `LC_ALL=C` and a
/// plain PATH, killing it after `timeout`. One process: the "one crossing" of a batch.
///
/// It runs in a process group of its own, and the whole group is killed at the timeout: a
/// script whose child hung (an `ssh` or `curl` in a ban command) kept the engine waiting
/// until that child ended, with only the script killed (a review found 25 s for a 2 s
/// timeout). Its output is waited for half a second after its end at most: a child it left
/// running in the background that holds the pipes open is killed then (it held the engine,
/// and a thread and a pipe for as long as it lived).
pub fn run_program(argv: &[String], input: Option<&[u8]>, timeout: Duration) -> Result<RunOutput> {
    use std::os::unix::process::CommandExt as _;
    use std::sync::mpsc;
    let (program, args) = argv.split_first().context("empty command")?;
    let shown = || argv.join(" ");
    let mut child = Command::new(program)
        .args(args)
        .env_clear()
        .env(
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        )
        .env("LC_ALL", "C")
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .with_context(|| format!("cannot run `{}`", shown()))?;
    let deadline = Instant::now() + timeout;
    if let (Some(mut stdin), Some(text)) = (child.stdin.take(), input) {
        let text = text.to_vec();
        std::thread::spawn(move || {
            let _ = stdin.write_all(&text);
        });
    }
    let drain = |mut r: Box<dyn std::io::Read + Send>| {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = r.read_to_end(&mut v);
            let _ = tx.send(v);
        });
        rx
    };
    let out = drain(Box::new(child.stdout.take().expect("piped stdout")));
    let err = drain(Box::new(child.stderr.take().expect("piped stderr")));
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break Ok(st),
            Ok(None) if Instant::now() >= deadline => {
                // the group: the program and every child it started (its pid is the group's)
                // SAFETY: a signal to a process group this function created.
                unsafe {
                    libc::kill(-(child.id() as libc::pid_t), libc::SIGKILL);
                }
                let _ = child.kill();
                let _ = child.wait();
                break Err(anyhow::anyhow!(
                    "`{}` did not finish within {timeout:?}: killed",
                    shown()
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(2)),
            Err(e) => break Err(anyhow::anyhow!("cannot wait for `{}`: {e}", shown())),
        }
    };
    // the output: at most a moment after the program's end. A child it left running that
    // holds the pipes open is killed with the group then, so that the readers end (they
    // waited for it, a thread and a pipe per run for as long as it lived)
    let grace = Instant::now() + Duration::from_millis(500);
    let left = |until: Instant| until.saturating_duration_since(Instant::now());
    let mut stdout = out.recv_timeout(left(grace));
    let mut stderr = err.recv_timeout(left(grace));
    if stdout.is_err() || stderr.is_err() {
        // SAFETY: a signal to the process group this function created.
        unsafe {
            libc::kill(-(child.id() as libc::pid_t), libc::SIGKILL);
        }
        let more = Instant::now() + Duration::from_millis(500);
        if stdout.is_err() {
            stdout = out.recv_timeout(left(more));
        }
        if stderr.is_err() {
            stderr = err.recv_timeout(left(more));
        }
    }
    let (stdout, stderr) = (stdout.unwrap_or_default(), stderr.unwrap_or_default());
    Ok(RunOutput {
        status: status?,
        stdout,
        stderr,
    })
}

/// Runs `argv` with `input` and fails with its stderr unless it succeeds.
pub fn run_checked(argv: &[String], input: Option<&[u8]>, what: &str) -> Result<RunOutput> {
    let out = run_program(argv, input, Duration::from_secs(60))?;
    if !out.success() {
        bail!(
            "`{}` failed to {what} ({}): {}",
            argv.join(" "),
            out.status,
            out.stderr_excerpt()
        );
    }
    Ok(out)
}

/// The form in which an address goes to the firewall: an IPv4-mapped IPv6 address
/// (`::ffff:192.0.2.1`) becomes the IPv4 address, since that is what the packets carry.
pub fn canonical(addr: IpAddr) -> IpAddr {
    addr.to_canonical()
}

/// The form in which a prefix goes to the firewall: host bits cleared, and an IPv4-mapped
/// IPv6 prefix of /96 or longer (`::ffff:192.0.2.0/120`) becomes the IPv4 prefix.
pub fn canonical_prefix(c: Cidr) -> Cidr {
    Cidr::new(c.addr, c.len).unwrap_or(c)
}

/// A prefix of a test: `"192.0.2.0/24"` or a single address.
#[cfg(test)]
pub fn cidr(text: &str) -> Cidr {
    Cidr::parse(text).unwrap_or_else(|e| panic!("{e}"))
}

/// True for addresses that are never banned whatever the caller says (principle 6, checked
/// again at the firewall boundary): loopback and the unspecified address.
pub fn never_ban(addr: IpAddr) -> bool {
    let addr = canonical(addr);
    addr.is_loopback() || addr.is_unspecified()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jail(name: &str, ports: Option<Vec<(u16, u16)>>) -> JailRules {
        JailRules {
            name: name.into(),
            ports,
            proto: Proto::Tcp,
            action: Action::Drop,
            backends: vec![],
        }
    }

    #[test]
    fn fold_keeps_the_last_op_per_address() {
        let a = cidr("192.0.2.1");
        let m = Cidr {
            addr: "::ffff:192.0.2.1".parse().unwrap(),
            len: 128,
        };
        let b = cidr("2001:db8::1");
        let p = cidr("2001:db8:5::/48");
        let mp = Cidr {
            addr: "::ffff:198.51.100.0".parse().unwrap(),
            len: 120,
        };
        let add = |addr, t| FwOp::Add {
            jail: "j".into(),
            addr,
            timeout_ms: t,
        };
        let del = |addr| FwOp::Del {
            jail: "j".into(),
            addr,
        };
        let f = fold(&[
            add(a, 5),
            add(b, 7),
            del(m),
            add(b, 0),
            add(a, 9),
            add(p, PERMANENT),
            add(mp, 3),
        ]);
        assert_eq!(
            f,
            vec![
                (("j".into(), a), Some(9)),
                (("j".into(), b), None),
                (("j".into(), p), Some(PERMANENT)),
                (("j".into(), cidr("198.51.100.0/24")), Some(3)),
            ]
        );
        assert_eq!(timeout_secs(1001), Some(2));
        assert_eq!(timeout_secs(PERMANENT), None);
        // no overflow just below it
        assert_eq!(timeout_secs(PERMANENT - 1), Some(PERMANENT / 1000));
    }

    #[test]
    fn run_program_has_a_timeout_and_no_shell() {
        let out = run_program(
            &["/bin/echo".into(), "$(id); a b".into()],
            None,
            Duration::from_secs(5),
        )
        .unwrap();
        assert_eq!(out.stdout, b"$(id); a b\n");
        let t = Instant::now();
        let e = run_program(
            &["/bin/sleep".into(), "5".into()],
            None,
            Duration::from_millis(200),
        )
        .unwrap_err();
        assert!(format!("{e}").contains("killed"), "{e}");
        assert!(t.elapsed() < Duration::from_secs(3));
        let out =
            run_program(&["/bin/cat".into()], Some(b"input"), Duration::from_secs(5)).unwrap();
        assert_eq!(out.stdout, b"input");
        // a script whose child hangs: the whole group goes at the timeout
        let t = Instant::now();
        let e = run_program(
            &["/bin/sh".into(), "-c".into(), "sleep 20; echo late".into()],
            None,
            Duration::from_millis(300),
        )
        .unwrap_err();
        assert!(format!("{e}").contains("killed"), "{e}");
        assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
        // a child left in the background holding stdout: the program's end is its end, its
        // output is kept, and the child is killed (its pid is written first)
        let dir = tempfile::tempdir().unwrap();
        let pidf = dir.path().join("pid");
        let t = Instant::now();
        let out = run_program(
            &[
                "/bin/sh".into(),
                "-c".into(),
                format!("echo done; sleep 20 & echo $! > {}", pidf.display()),
            ],
            None,
            Duration::from_secs(10),
        )
        .unwrap();
        assert!(out.success());
        assert_eq!(out.stdout, b"done\n");
        let pid = std::fs::read_to_string(&pidf).unwrap();
        std::thread::sleep(Duration::from_millis(200));
        assert!(
            !std::path::Path::new(&format!("/proc/{}", pid.trim())).exists()
                || std::fs::read_to_string(format!("/proc/{}/stat", pid.trim()))
                    .is_ok_and(|s| s.contains(") Z ")),
            "the background child still runs"
        );
        assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    }

    #[test]
    fn jail_checks() {
        assert!(jail("sshd", Some(vec![(22, 22)])).check().is_ok());
        assert!(jail("0-mail_2", None).check().is_ok());
        assert!(jail("", None).check().is_err());
        assert!(jail("ssh d", None).check().is_err());
        assert!(jail("ssh;drop", None).check().is_err());
        assert!(jail(&"x".repeat(65), None).check().is_err());
        assert!(jail("sshd", Some(vec![])).check().is_err());
        assert!(jail("sshd", Some(vec![(30, 20)])).check().is_err());
    }

    #[test]
    fn never_ban_covers_loopback_in_every_form() {
        for a in [
            "127.0.0.1",
            "127.1.2.3",
            "::1",
            "0.0.0.0",
            "::",
            "::ffff:127.0.0.1",
        ] {
            assert!(never_ban(a.parse().unwrap()), "{a}");
        }
        for a in ["192.0.2.1", "2001:db8::1", "::ffff:192.0.2.1"] {
            assert!(!never_ban(a.parse().unwrap()), "{a}");
        }
    }
}

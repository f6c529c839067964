//! Each firewall backend against a real attack, in the three-namespace lab (real sshd, real
//! ssh client in the attacker namespace, a legitimate host):
//!
//! * a password-guessing attack is banned and then blocked (no ssh session any more);
//! * the legitimate host still logs in;
//! * a restart (SIGTERM) and a crash (`kill -9`) restart put the ban back exactly once;
//! * a ban that ended while the daemon was dead is gone after the next start (backends
//!   without kernel timeouts reconcile with the store);
//! * `unban` lifts the block;
//! * `keep_bans_on_stop = false` removes what is ours.
//!
//! Backends: iptables (iptables-nft and iptables-legacy), ipset, route, hosts-deny (real
//! libwrap-linked sshd reading /etc/hosts.deny in a private mount namespace, and tcpdmatch),
//! command (the admin's script, run without a shell).
//!
//! Also: hosts-deny against Debian's vsftpd with `tcp_wrappers=YES`, attacked over FTP
//! (`hosts_deny_blocks_ftp_logins_to_a_libwrap_vsftpd`), and the iptables `DOCKER-USER` hook
//! blocking forwarded traffic (`iptables_docker_user_hook_blocks_forwarded_traffic`).
//!
//! Needs root; fails (does not skip) otherwise. Only documentation addresses, only inside
//! namespaces created here.

mod common;

use common::*;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_portcullis");
const WRONG: &str = "not-the-password";
const ATT: &str = "192.0.2.2";
const ATT6: &str = "2001:db8:a::2";
/// What the daemon bans for [`ATT6`] with the default `v6_prefix = 64`: its /64, narrowed to
/// the /127 around it since the server's own 2001:db8:a::1 shares the lab link's /64. A
/// prefix, which every backend bans in its own syntax.
const ATT6_BAN: &str = "2001:db8:a::2/127";

/// `portcullis run` in the server namespace (optionally inside a mount namespace held by
/// another process: `nsenter -t PID -m`), stderr in `DIR/daemon.log`; killed on drop.
struct NsDaemon {
    proc: Option<ProcessGuard>,
    ns: String,
    mnt_of: Option<u32>,
    config: PathBuf,
    socket: PathBuf,
    log: PathBuf,
    offset: usize,
}

impl NsDaemon {
    fn start(ns: &Netns, dir: &Path, config: &Path, mnt_of: Option<u32>) -> NsDaemon {
        let mut d = NsDaemon {
            proc: None,
            ns: ns.name().to_string(),
            mnt_of,
            config: config.to_path_buf(),
            socket: dir.join("portcullis.sock"),
            log: dir.join("daemon.log"),
            offset: 0,
        };
        d.spawn();
        d
    }

    fn spawn(&mut self) {
        self.offset = fs::metadata(&self.log).map_or(0, |m| m.len() as usize);
        let err = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let mut cmd = match self.mnt_of {
            Some(pid) => {
                let mut c = Command::new("nsenter");
                c.args(["-t", &pid.to_string(), "-m", "--", "ip"]);
                c
            }
            None => Command::new("ip"),
        };
        cmd.args(["netns", "exec", &self.ns, BIN, "run", "-c"])
            .arg(&self.config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(err);
        self.proc = Some(ProcessGuard::spawn(cmd, "portcullis run"));
        let ok = wait_until(Duration::from_secs(20), || {
            self.proc.as_mut().is_some_and(|p| p.try_wait().is_some())
                || self.run_log().contains("started jails=")
        });
        let exited = self.proc.as_mut().and_then(|p| p.try_wait());
        assert!(
            ok && exited.is_none(),
            "the daemon did not come up (exit {exited:?}):\n{}",
            self.run_log()
        );
    }

    fn run_log(&self) -> String {
        let all = fs::read_to_string(&self.log).unwrap_or_default();
        all.get(self.offset..).unwrap_or("").to_string()
    }

    fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn pid(&self) -> i32 {
        self.proc.as_ref().expect("running").pid() as i32
    }

    /// SIGTERM and wait: the daemon's own shutdown runs.
    fn stop(&mut self) {
        // SAFETY: a signal to our own child (`ip netns exec` / nsenter exec the daemon).
        unsafe {
            libc::kill(self.pid(), libc::SIGTERM);
        }
        let mut p = self.proc.take().unwrap();
        assert!(
            wait_until(Duration::from_secs(20), || p.try_wait().is_some()),
            "daemon did not stop"
        );
    }

    /// SIGKILL, as a crash.
    fn kill9(&mut self) {
        // SAFETY: as above.
        unsafe {
            libc::kill(self.pid(), libc::SIGKILL);
        }
        let mut p = self.proc.take().unwrap();
        assert!(wait_until(Duration::from_secs(5), || p
            .try_wait()
            .is_some()));
    }

    fn cli(&self, args: &[&str]) -> CmdOutput {
        let mut cmd = Command::new(BIN);
        cmd.args(args).arg("--socket").arg(&self.socket);
        run_with_timeout(&mut cmd, None, Duration::from_secs(30))
    }

    fn banned(&self, addr: &str) -> bool {
        let out = self.cli(&["bans", "--json"]);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        v["bans"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|b| b["host"].as_str() == Some(addr))
    }
}

impl Drop for NsDaemon {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("──── daemon stderr ────\n{}────────────", self.log());
        }
        if let Some(mut p) = self.proc.take() {
            p.kill();
        }
    }
}

fn config(dir: &Path, log: &Path, backend: &str, extra: &str, keep: bool) -> PathBuf {
    let text = format!(
        "socket = {sock:?}\nstate_dir = {state:?}\n\
         [firewall]\nbackend = {backend:?}\nkeep_bans_on_stop = {keep}\n{extra}\n\
         [[jail]]\nname = \"sshd\"\nfilter = \"sshd\"\nlogs = [{log:?}]\nmaxretry = 3\n\
         findtime = \"10m\"\nbantime = \"10m\"\nports = [22]\n",
        sock = dir.join("portcullis.sock").display().to_string(),
        state = dir.join("state").display().to_string(),
        log = log.display().to_string(),
    );
    let path = dir.join("portcullis.toml");
    fs::write(&path, text).unwrap();
    path
}

/// How a backend is seen from outside: how many entries the kernel (or file) holds for an
/// address, and whether anything of ours is left at all.
struct Probe<'a> {
    count: &'a dyn Fn(&Lab, &str) -> usize,
    anything_left: &'a dyn Fn(&Lab) -> bool,
}

fn ssh_blocked(lab: &Lab, v6: bool) -> bool {
    let srv = Lab::server_addr(Side::Attacker, v6);
    !matches!(
        lab.ssh_attempt(Side::Attacker, srv, WRONG),
        AttemptResult::Connected { .. }
    )
}

/// The whole scenario for one backend; `extra` goes into `[firewall]`'s neighbourhood.
fn scenario(lab: &mut Lab, backend: &str, extra: &str, probe: Probe, mnt_of: Option<u32>) {
    let dir = lab.dir().to_path_buf();
    let log = dir.join("auth.log");
    let cfg = config(&dir, &log, backend, extra, true);
    let mut d = NsDaemon::start(&lab.server, &dir, &cfg, mnt_of);
    if lab.sshd().is_none() && !SKIP_SSHD.with(|s| s.get()) {
        lab.start_sshd(&log);
    }
    let pw = lab.password();
    let ok = AttemptResult::Connected { auth_ok: true };
    let leg4 = Lab::server_addr(Side::Legit, false);
    let leg6 = Lab::server_addr(Side::Legit, true);
    assert_eq!(
        lab.ssh_attempt(Side::Legit, leg4, pw),
        ok,
        "legit login first"
    );

    // the attack, over IPv4 and IPv6
    for (v6, addr) in [(false, ATT), (true, ATT6_BAN)] {
        let srv = Lab::server_addr(Side::Attacker, v6);
        for _ in 0..3 {
            if d.banned(addr) {
                break;
            }
            let _ = lab.ssh_attempt(Side::Attacker, srv, WRONG);
        }
        wait_for(&format!("{addr} banned"), Duration::from_secs(15), || {
            d.banned(addr)
        });
        wait_for(
            &format!("{addr} blocked by {backend}"),
            Duration::from_secs(10),
            || ssh_blocked(lab, v6),
        );
        assert_eq!((probe.count)(lab, addr), 1, "{backend}: {addr} once");
    }
    assert_eq!(
        lab.ssh_attempt(Side::Legit, leg4, pw),
        ok,
        "legit v4 still in"
    );
    assert_eq!(
        lab.ssh_attempt(Side::Legit, leg6, pw),
        ok,
        "legit v6 still in"
    );

    // restart, then crash and restart: back, once
    d.stop();
    d.spawn();
    assert!(d.banned(ATT), "ban kept over a restart");
    assert_eq!((probe.count)(lab, ATT), 1, "{backend}: once after restart");
    assert!(ssh_blocked(lab, false), "blocked after restart");
    d.kill9();
    d.spawn();
    assert_eq!((probe.count)(lab, ATT), 1, "{backend}: once after kill -9");
    assert_eq!(
        (probe.count)(lab, ATT6_BAN),
        1,
        "{backend}: v6 once after kill -9"
    );
    assert!(ssh_blocked(lab, false), "blocked after kill -9");

    // unban lifts it
    d.cli(&["unban", ATT]).check();
    wait_for("unban lifts the block", Duration::from_secs(10), || {
        !ssh_blocked(lab, false)
    });
    assert_eq!((probe.count)(lab, ATT), 0, "{backend}: gone after unban");

    // a ban that ends while the daemon is dead is gone after the next start (5 s: long
    // enough that the probe, a process of its own, sees it first on a loaded machine;
    // 2 s could end before it, review 32)
    d.cli(&["ban", ATT, "--for", "5s"]).check();
    assert_eq!((probe.count)(lab, ATT), 1);
    d.kill9();
    std::thread::sleep(Duration::from_millis(5500));
    d.spawn();
    wait_for(
        &format!("{backend}: the ban that ended during the crash is gone"),
        Duration::from_secs(10),
        || (probe.count)(lab, ATT) == 0,
    );
    // and one that ends while it runs is lifted by it
    d.cli(&["ban", ATT, "--for", "5s"]).check();
    assert_eq!((probe.count)(lab, ATT), 1);
    wait_for(
        &format!("{backend}: an ended ban is lifted"),
        Duration::from_secs(15),
        || (probe.count)(lab, ATT) == 0,
    );

    // keep_bans_on_stop = false: nothing of ours is left after the stop
    d.stop();
    config(&dir, &log, backend, extra, false);
    d.spawn();
    assert!((probe.anything_left)(lab), "{backend}: v6 ban restored");
    d.stop();
    assert!(
        !(probe.anything_left)(lab),
        "{backend}: keep_bans_on_stop = false left something behind"
    );
}

fn out(ns: &Netns, prog: &str, args: &[&str]) -> String {
    ns.exec(prog, args).check().stdout_str()
}

fn iptables_probe(save: &'static str) -> (impl Fn(&Lab, &str) -> usize, impl Fn(&Lab) -> bool) {
    let save6 = save.replacen("iptables", "ip6tables", 1);
    let save6b = save6.clone();
    (
        move |lab: &Lab, addr: &str| {
            let (prog, len) = match (addr.contains(':'), addr.contains('/')) {
                (true, false) => (save6.as_str(), "/128"),
                (true, true) => (save6.as_str(), ""),
                (false, false) => (save, "/32"),
                (false, true) => (save, ""),
            };
            out(&lab.server, prog, &["-t", "filter"])
                .lines()
                .filter(|l| l.contains(&format!("-s {addr}{len}")))
                .count()
        },
        move |lab: &Lab| {
            out(&lab.server, save, &["-t", "filter"]).contains("PORTCULLIS")
                || out(&lab.server, &save6b, &["-t", "filter"]).contains("PORTCULLIS")
        },
    )
}

#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn iptables_nft_blocks_restores_and_cleans_up() {
    let mut lab = Lab::new();
    let (count, left) = iptables_probe("iptables-nft-save");
    scenario(
        &mut lab,
        "iptables",
        "[firewall.iptables]\nvariant = \"nft\"\n",
        Probe {
            count: &count,
            anything_left: &left,
        },
        None,
    );
}

#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn iptables_legacy_blocks_restores_and_cleans_up() {
    let mut lab = Lab::new();
    let (count, left) = iptables_probe("iptables-legacy-save");
    scenario(
        &mut lab,
        "iptables",
        "[firewall.iptables]\nvariant = \"legacy\"\nhooks = [\"INPUT\", \"FORWARD\"]\n",
        Probe {
            count: &count,
            anything_left: &left,
        },
        None,
    );
}

#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn ipset_blocks_restores_and_cleans_up() {
    let mut lab = Lab::new();
    let count = |lab: &Lab, addr: &str| {
        let set = if addr.contains(':') {
            "pc6_sshd"
        } else {
            "pc4_sshd"
        };
        let o = lab.server.exec("ipset", &["list", set]);
        if !o.success() {
            return 0;
        }
        o.stdout_str()
            .lines()
            .filter(|l| l.split_whitespace().next() == Some(addr))
            .count()
    };
    let left = |lab: &Lab| {
        out(&lab.server, "ipset", &["list", "-n"]).contains("pc4_")
            || out(&lab.server, "iptables-save", &["-t", "filter"]).contains("PORTCULLIS")
    };
    scenario(
        &mut lab,
        "ipset",
        "",
        Probe {
            count: &count,
            anything_left: &left,
        },
        None,
    );
    // the one rule per set stays one rule per set
    assert!(!left(&lab));
}

#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn route_blocks_restores_and_cleans_up() {
    let mut lab = Lab::new();
    let count = |lab: &Lab, addr: &str| {
        let fam = if addr.contains(':') { "-6" } else { "-4" };
        out(&lab.server, "ip", &[fam, "route", "show", "proto", "211"])
            .lines()
            .filter(|l| l.split_whitespace().nth(1) == Some(addr))
            .count()
    };
    let left = |lab: &Lab| {
        !out(&lab.server, "ip", &["-4", "route", "show", "proto", "211"]).is_empty()
            || !out(&lab.server, "ip", &["-6", "route", "show", "proto", "211"]).is_empty()
    };
    // a route of someone else's for the same address is never touched
    lab.server
        .ip(&["route", "add", "unreachable", "203.0.113.77/32"]);
    scenario(
        &mut lab,
        "route",
        "[firewall.route]\ntype = \"unreachable\"\n",
        Probe {
            count: &count,
            anything_left: &left,
        },
        None,
    );
    assert!(out(&lab.server, "ip", &["route", "show"]).contains("unreachable 203.0.113.77"));
}

/// The `command` backend driving `ip route` through the admin's own script (no shell runs
/// our templates; the script is the admin's program).
#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn command_blocks_restores_and_cleans_up() {
    use std::os::unix::fs::PermissionsExt;
    let mut lab = Lab::new();
    let dir = lab.dir().to_path_buf();
    let script = dir.join("block");
    // argv: VERB ADDR PREFIX JAIL; refuses anything else, so an extra argument would show
    fs::write(
        &script,
        "#!/bin/sh\n[ $# -eq 4 ] || { echo \"bad argc $#: $*\" >&2; exit 9; }\n\
         echo \"$1 $2 $4\" >> \"$(dirname \"$0\")/calls\"\n\
         case $1 in\n\
           ban) exec ip route replace blackhole \"$2/$3\" proto 212 ;;\n\
           unban) exec ip route del blackhole \"$2/$3\" proto 212 ;;\n\
           check) ip route show proto 212 | grep -qE \"^blackhole $2(/$3)? \" ;;\n\
         esac\n",
    )
    .unwrap();
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    let s = script.display().to_string();
    let extra = format!(
        "[firewall.command]\nban = [{s:?}, \"ban\", \"{{addr}}\", \"{{prefix}}\", \"{{jail}}\"]\n\
         unban = [{s:?}, \"unban\", \"{{addr}}\", \"{{prefix}}\", \"{{jail}}\"]\n\
         check = [{s:?}, \"check\", \"{{addr}}\", \"{{prefix}}\", \"{{jail}}\"]\ntimeout = \"5s\"\n"
    );
    let count = |lab: &Lab, addr: &str| {
        let fam = if addr.contains(':') { "-6" } else { "-4" };
        out(&lab.server, "ip", &[fam, "route", "show", "proto", "212"])
            .lines()
            .filter(|l| l.split_whitespace().nth(1) == Some(addr))
            .count()
    };
    let left = |lab: &Lab| {
        !out(&lab.server, "ip", &["-4", "route", "show", "proto", "212"]).is_empty()
            || !out(&lab.server, "ip", &["-6", "route", "show", "proto", "212"]).is_empty()
    };
    scenario(
        &mut lab,
        "command",
        &extra,
        Probe {
            count: &count,
            anything_left: &left,
        },
        None,
    );
    let calls = fs::read_to_string(dir.join("calls")).unwrap();
    assert!(calls.contains("ban 192.0.2.2 sshd\n"), "{calls}");
    // the attacker's prefix: {addr} is its network, {prefix} 127
    assert!(calls.contains("ban 2001:db8:a::2 sshd\n"), "{calls}");
    assert!(calls.contains("check 2001:db8:a::2 sshd\n"), "{calls}");
    assert!(!fs::read_to_string(dir.join("daemon.log"))
        .unwrap()
        .contains("bad argc"));
}

/// hosts-deny with the real libwrap-linked sshd: /etc is a copy, bind-mounted in a private
/// mount namespace that sshd and the daemon share, so the host's own /etc/hosts.deny is
/// never touched.
#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn hosts_deny_blocks_a_libwrap_sshd_restores_and_cleans_up() {
    let mut lab = Lab::new();
    let dir = lab.dir().to_path_buf();
    let etc = dir.join("etc");
    host_cmd(
        "cp",
        &["-a", "/etc", etc.to_str().unwrap()],
        Duration::from_secs(60),
    )
    .check();
    fs::write(
        etc.join("hosts.deny"),
        "# the admin's line stays\nALL: 198.51.100.250\n",
    )
    .unwrap();
    // holder of the private mount namespace
    let mut holder_cmd = Command::new("unshare");
    holder_cmd.args([
        "-m",
        "--propagation",
        "private",
        "sh",
        "-c",
        &format!("mount --bind {} /etc && exec sleep 600", etc.display()),
    ]);
    let holder = ProcessGuard::spawn(holder_cmd, "mount namespace holder");
    let hpid = holder.pid();
    wait_for("the private /etc", Duration::from_secs(5), || {
        fs::read_to_string(format!("/proc/{hpid}/root/etc/hosts.deny"))
            .is_ok_and(|t| t.contains("198.51.100.250"))
            && fs::read_to_string("/etc/hosts.deny").map_or(true, |t| !t.contains("198.51.100.250"))
    });
    // sshd in the server namespace and that mount namespace (Lab's own sshd cannot be
    // started there), logging in syslog format as the lab's does
    let log = dir.join("auth.log");
    let sshd_dir = dir.join("sshd");
    fs::create_dir_all(&sshd_dir).unwrap();
    let key = sshd_dir.join("key");
    host_cmd(
        "ssh-keygen",
        &["-q", "-t", "ed25519", "-N", "", "-f", key.to_str().unwrap()],
        Duration::from_secs(20),
    )
    .check();
    let _ = fs::create_dir_all("/run/sshd");
    ensure_test_user();
    let conf = sshd_dir.join("sshd_config");
    fs::write(
        &conf,
        format!(
            "Port 22\nListenAddress 0.0.0.0\nListenAddress ::\nHostKey {}\nPidFile {}\n\
             PasswordAuthentication yes\nKbdInteractiveAuthentication no\nUsePAM no\n\
             PermitRootLogin no\nLogLevel INFO\nStrictModes no\nUseDNS no\nPrintMotd no\n\
             LoginGraceTime 20\n",
            key.display(),
            sshd_dir.join("pid").display()
        ),
    )
    .unwrap();
    let mut sshd_cmd = Command::new("nsenter");
    sshd_cmd
        .args(["-t", &hpid.to_string(), "-m", "--", "ip", "netns", "exec"])
        .arg(lab.server.name())
        .args(["/usr/sbin/sshd", "-D", "-e", "-f"])
        .arg(&conf)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut sshd = ProcessGuard::spawn(sshd_cmd, "sshd (private /etc)");
    let stderr = sshd.child_mut().stderr.take().unwrap();
    let _writer = spawn_syslog_writer(stderr, log.clone(), "server", "sshd", sshd.pid());
    wait_for("sshd listening", Duration::from_secs(10), || {
        fs::read_to_string(&log).is_ok_and(|l| l.contains("Server listening on :: port 22"))
    });
    let deny = etc.join("hosts.deny");
    let count = move |_: &Lab, addr: &str| {
        // tcp_wrappers' syntax: [2001:db8:a::2]/127 for the attacker's prefix
        let want = match addr.split_once('/') {
            Some((net, len)) => format!("sshd: [{net}]/{len}"),
            None if addr.contains(':') => format!("sshd: [{addr}]"),
            None => format!("sshd: {addr}"),
        };
        fs::read_to_string(&deny)
            .unwrap_or_default()
            .lines()
            .filter(|l| *l == want)
            .count()
    };
    let deny2 = etc.join("hosts.deny");
    let left = move |_: &Lab| fs::read_to_string(&deny2).unwrap().contains("portcullis");
    SKIP_SSHD.with(|s| s.set(true));
    scenario(
        &mut lab,
        "hosts-deny",
        "[firewall.hosts_deny]\npath = \"/etc/hosts.deny\"\ndaemons = [\"sshd\"]\n",
        Probe {
            count: &count,
            anything_left: &left,
        },
        Some(hpid),
    );
    let text = fs::read_to_string(etc.join("hosts.deny")).unwrap();
    assert!(
        text.starts_with("# the admin's line stays\nALL: 198.51.100.250\n"),
        "{text}"
    );
    drop(sshd);
    drop(holder);
}

thread_local! {
    /// Set by a test that runs its own sshd.
    static SKIP_SSHD: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// A private copy of /etc, bind-mounted over /etc in a mount namespace held by a sleeping
/// process: programs started with `nsenter -t PID -m` read and write the copy. Dropped: the
/// holder is killed (the mount goes with its namespace).
struct PrivateEtc {
    holder: ProcessGuard,
    etc: PathBuf,
}

impl PrivateEtc {
    fn new(dir: &Path, hosts_deny: &str) -> PrivateEtc {
        let etc = dir.join("etc");
        host_cmd(
            "cp",
            &["-a", "/etc", etc.to_str().unwrap()],
            Duration::from_secs(60),
        )
        .check();
        fs::write(etc.join("hosts.deny"), hosts_deny).unwrap();
        fs::write(etc.join("hosts.allow"), "").unwrap();
        let mut cmd = Command::new("unshare");
        cmd.args([
            "-m",
            "--propagation",
            "private",
            "sh",
            "-c",
            &format!("mount --bind {} /etc && exec sleep 600", etc.display()),
        ]);
        let holder = ProcessGuard::spawn(cmd, "mount namespace holder");
        let pid = holder.pid();
        wait_for("the private /etc", Duration::from_secs(5), || {
            fs::read_to_string(format!("/proc/{pid}/root/etc/hosts.deny"))
                .is_ok_and(|t| t == hosts_deny)
        });
        PrivateEtc { holder, etc }
    }

    fn pid(&self) -> u32 {
        self.holder.pid()
    }

    /// `nsenter -t PID -m -- ip netns exec NS PROGRAM ARGS...`
    fn command(&self, ns: &Netns, program: &str) -> Command {
        let mut c = Command::new("nsenter");
        c.args([
            "-t",
            &self.pid().to_string(),
            "-m",
            "--",
            "ip",
            "netns",
            "exec",
        ])
        .arg(ns.name())
        .arg(program);
        c
    }
}

/// One FTP login from `from` with curl: curl's exit code (67: login refused, i.e. the
/// server talked to us; 8: the server's first reply was not a welcome, as vsftpd's
/// `421 Service not available` to a client tcp_wrappers denies; 0: logged in).
fn ftp_login(lab: &Lab, from: Side, v6: bool, password: &str) -> Option<i32> {
    let host = match Lab::server_addr(from, v6) {
        std::net::IpAddr::V6(a) => format!("[{a}]"),
        a => a.to_string(),
    };
    let url = format!("ftp://{host}/");
    let user = format!("{TEST_USER}:{password}");
    lab.ns(from)
        .exec_timeout(
            "curl",
            &["-s", "-S", "--max-time", "5", "-g", "--user", &user, &url],
            Duration::from_secs(10),
        )
        .code()
}

/// The first line the FTP server sends to `from` (within 3 s).
fn ftp_greeting(lab: &Lab, from: Side, v6: bool) -> String {
    let host = Lab::server_addr(from, v6).to_string();
    let script = format!("exec 3<>/dev/tcp/{host}/21 && head -n 1 <&3");
    lab.ns(from)
        .exec_timeout(
            "timeout",
            &["3", "bash", "-c", &script],
            Duration::from_secs(10),
        )
        .stdout_str()
}

/// hosts-deny end to end with a real libwrap daemon: Debian's vsftpd with
/// `tcp_wrappers=YES`, attacked over FTP from the attacker namespace, its own log read by the
/// `vsftpd` filter; the block is tcp_wrappers' (vsftpd answers 421 and closes).
#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn hosts_deny_blocks_ftp_logins_to_a_libwrap_vsftpd() {
    let lab = Lab::new();
    let dir = lab.dir().to_path_buf();
    let pw = ensure_test_user();
    let etc = PrivateEtc::new(&dir, "# the admin's file\n");
    let vlog = dir.join("vsftpd.log");
    let vconf = dir.join("vsftpd.conf");
    fs::write(
        &vconf,
        format!(
            "listen=NO\nlisten_ipv6=YES\nbackground=NO\nanonymous_enable=NO\nlocal_enable=YES\n\
             tcp_wrappers=YES\nxferlog_enable=YES\nxferlog_std_format=NO\nvsftpd_log_file={}\n\
             secure_chroot_dir=/var/run/vsftpd/empty\npam_service_name=vsftpd\nseccomp_sandbox=NO\n\
             ssl_enable=NO\n",
            vlog.display()
        ),
    )
    .unwrap();
    let mut vcmd = etc.command(&lab.server, "/usr/sbin/vsftpd");
    vcmd.arg(&vconf)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let _vsftpd = ProcessGuard::spawn(vcmd, "vsftpd");
    wait_for("vsftpd listening", Duration::from_secs(10), || {
        lab.tcp_connects(
            Side::Legit,
            Lab::server_addr(Side::Legit, false),
            21,
            Duration::from_millis(500),
        )
    });
    assert_eq!(
        ftp_login(&lab, Side::Legit, false, pw),
        Some(0),
        "legit FTP login"
    );
    assert!(
        ftp_greeting(&lab, Side::Attacker, false).starts_with("220"),
        "vsftpd greets"
    );

    let cfg = dir.join("portcullis.toml");
    fs::write(
        &cfg,
        format!(
            "socket = {:?}\nstate_dir = {:?}\n[firewall]\nbackend = \"hosts-deny\"\n\
             [firewall.hosts_deny]\npath = \"/etc/hosts.deny\"\ndaemons = [\"vsftpd\"]\n\
             [[jail]]\nname = \"vsftpd\"\nfilter = \"vsftpd\"\nlogs = [{:?}]\nmaxretry = 3\n\
             ports = [21]\n",
            dir.join("portcullis.sock").display().to_string(),
            dir.join("state").display().to_string(),
            vlog.display().to_string()
        ),
    )
    .unwrap();
    let mut d = NsDaemon::start(&lab.server, &dir, &cfg, Some(etc.pid()));
    for (v6, addr) in [(false, ATT), (true, ATT6_BAN)] {
        for _ in 0..3 {
            if d.banned(addr) {
                break;
            }
            assert_eq!(
                ftp_login(&lab, Side::Attacker, v6, WRONG),
                Some(67),
                "a refused login"
            );
        }
        wait_for(&format!("{addr} banned"), Duration::from_secs(15), || {
            d.banned(addr)
        });
        let greeting = ftp_greeting(&lab, Side::Attacker, v6);
        assert!(
            greeting.starts_with("421"),
            "{addr}: vsftpd must refuse the banned client, it said {greeting:?}"
        );
        assert_ne!(
            ftp_login(&lab, Side::Attacker, v6, pw),
            Some(0),
            "{addr}: no login"
        );
    }
    assert_eq!(
        ftp_login(&lab, Side::Legit, false, pw),
        Some(0),
        "legit still in"
    );
    assert_eq!(
        ftp_login(&lab, Side::Legit, true, pw),
        Some(0),
        "legit v6 still in"
    );
    let text = fs::read_to_string(etc.etc.join("hosts.deny")).unwrap();
    assert!(
        text.starts_with("# the admin's file\n# portcullis begin"),
        "{text}"
    );
    assert!(
        text.contains("\nvsftpd: 192.0.2.2\nvsftpd: [2001:db8:a::2]/127\n"),
        "{text}"
    );
    // tcpdmatch agrees (it reads the files of the directory with -d)
    let m = Command::new("tcpdmatch")
        .args(["-d", "vsftpd", ATT])
        .current_dir(&etc.etc)
        .output()
        .expect("tcpdmatch (Debian package tcpd)");
    assert!(String::from_utf8_lossy(&m.stdout).contains("access:   denied"));
    // ... for the whole prefix of the v6 attacker, and not beyond it
    for (client, want) in [
        (ATT6, "denied"),
        ("2001:db8:a::3", "denied"),
        ("2001:db8:a::4", "granted"),
        ("2001:db8:a::1", "granted"),
    ] {
        let m = Command::new("tcpdmatch")
            .args(["-d", "vsftpd", client])
            .current_dir(&etc.etc)
            .output()
            .expect("tcpdmatch (Debian package tcpd)");
        let text = String::from_utf8_lossy(&m.stdout);
        assert!(
            text.contains(&format!("access:   {want}")),
            "{client}: {text}"
        );
    }

    d.cli(&["unban", ATT]).check();
    assert_eq!(
        ftp_login(&lab, Side::Attacker, false, WRONG),
        Some(67),
        "unbanned: vsftpd talks again"
    );
    d.stop();
}

/// Routed traffic through Docker's hook: the server forwards between the attacker and the
/// legitimate host's web server, a `DOCKER-USER` chain is jumped to from `FORWARD` as Docker
/// sets it up (with its `RETURN`), and the iptables backend with `hooks = ["DOCKER-USER"]`
/// blocks the banned attacker's forwarded connections; Docker's chain and rule stay.
#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn iptables_docker_user_hook_blocks_forwarded_traffic() {
    let lab = Lab::new();
    let dir = lab.dir().to_path_buf();
    lab.server
        .exec("sysctl", &["-w", "net.ipv4.ip_forward=1"])
        .check();
    lab.attacker
        .ip(&["route", "add", "198.51.100.0/24", "via", "192.0.2.1"]);
    lab.legit
        .ip(&["route", "add", "192.0.2.0/24", "via", "198.51.100.1"]);
    // Docker's own layout, before Portcullis starts
    lab.server
        .exec_input(
            "iptables-restore",
            &["--noflush"],
            // (and a plain jump to our chain, below the RETURN: replaced by ours, first,
            // and said, review 61)
            b"*filter\n:DOCKER-USER - [0:0]\n:PORTCULLIS - [0:0]\n-A DOCKER-USER -j RETURN\n-A DOCKER-USER -j PORTCULLIS\n-A FORWARD -j DOCKER-USER\nCOMMIT\n",
        )
        .check();
    let _web = lab.legit.spawn(
        "python3",
        &["-m", "http.server", "8080", "--bind", "198.51.100.2"],
    );
    let web: std::net::IpAddr = "198.51.100.2".parse().unwrap();
    wait_for("the web server, forwarded", Duration::from_secs(10), || {
        lab.tcp_connects(Side::Attacker, web, 8080, Duration::from_millis(500))
    });
    let cfg = dir.join("portcullis.toml");
    fs::write(
        &cfg,
        format!(
            "socket = {:?}\nstate_dir = {:?}\n[firewall]\nbackend = \"iptables\"\nkeep_bans_on_stop = false\n\
             [firewall.iptables]\nhooks = [\"DOCKER-USER\"]\n\
             [[jail]]\nname = \"web\"\nfilter = \"sshd\"\nlogs = [{:?}]\nports = [8080]\n",
            dir.join("portcullis.sock").display().to_string(),
            dir.join("state").display().to_string(),
            dir.join("web.log").display().to_string()
        ),
    )
    .unwrap();
    let mut d = NsDaemon::start(&lab.server, &dir, &cfg, None);
    assert!(
        d.log().contains(
            "replaced the plain jump(s) to chain PORTCULLIS iptables `-A DOCKER-USER -j PORTCULLIS` (1) by Portcullis's own"
        ),
        "{}",
        d.log()
    );
    d.cli(&["ban", ATT, "--jail", "web"]).check();
    assert!(
        !lab.tcp_connects(Side::Attacker, web, 8080, Duration::from_secs(1)),
        "the banned attacker still reaches the forwarded service"
    );
    let rules = out(&lab.server, "iptables-save", &["-t", "filter"]);
    let docker: Vec<&str> = rules
        .lines()
        .filter(|l| l.starts_with("-A DOCKER-USER"))
        .collect();
    assert_eq!(
        docker,
        [
            "-A DOCKER-USER -m comment --comment \"portcullis jump\" -j PORTCULLIS",
            "-A DOCKER-USER -j RETURN"
        ],
        "{rules}"
    );
    d.cli(&["unban", ATT]).check();
    assert!(lab.tcp_connects(Side::Attacker, web, 8080, Duration::from_secs(2)));
    d.stop();
    let rules = out(&lab.server, "iptables-save", &["-t", "filter"]);
    assert!(!rules.contains("PORTCULLIS"), "{rules}");
    assert!(
        rules.contains("-A DOCKER-USER -j RETURN") && rules.contains("-A FORWARD -j DOCKER-USER"),
        "{rules}"
    );
}

/// Our entries for `cidr` (an address or a prefix, as `bans` shows it) in the kernel, in the
/// backend's own syntax: iptables rules `-s CIDR`, ipset members, routes of our protocol
/// (`command`: the test script's 212).
fn entries(lab: &Lab, backend: &str, cidr: &str) -> usize {
    match backend {
        "iptables" => ["iptables-save", "ip6tables-save"]
            .iter()
            .map(|p| {
                out(&lab.server, p, &["-t", "filter"])
                    .lines()
                    .filter(|l| {
                        l.starts_with("-A PORTCULLIS ") && l.contains(&format!("-s {cidr} "))
                    })
                    .count()
            })
            .sum(),
        "ipset" => out(&lab.server, "ipset", &["list"])
            .lines()
            .filter(|l| l.split_whitespace().next() == Some(cidr))
            .count(),
        _ => {
            let proto = if backend == "route" { "211" } else { "212" };
            ["-4", "-6"]
                .iter()
                .map(|fam| {
                    out(&lab.server, "ip", &[fam, "route", "show", "proto", proto])
                        .lines()
                        .filter(|l| l.split_whitespace().nth(1) == Some(cidr))
                        .count()
                })
                .sum()
        }
    }
}

/// Permanent prefix bans through a backend other than nftables: a CIDR `deny` entry
/// (`192.0.2.2/31`, the attacker's v4 address and its neighbour) blocks from the start; with
/// `bantime = "forever"` the v6 attacker is banned as its prefix ([`ATT6_BAN`]) with no end;
/// both are one entry each in the backend's syntax, stay exactly once over a `kill -9` and a
/// clean restart, are listed by `bans --permanent`; `unban` lifts the prefix;
/// `keep_bans_on_stop = false` leaves nothing.
fn permanent_prefixes(lab: &mut Lab, backend: &str, extra: &str) {
    let dir = lab.dir().to_path_buf();
    let log = dir.join("auth.log");
    let cfg = dir.join("portcullis.toml");
    let write = |keep: bool| {
        fs::write(
            &cfg,
            format!(
                "socket = {sock:?}\nstate_dir = {state:?}\ndeny = [\"192.0.2.2/31\"]\n\
                 [firewall]\nbackend = {backend:?}\nkeep_bans_on_stop = {keep}\n{extra}\n\
                 [[jail]]\nname = \"sshd\"\nfilter = \"sshd\"\nlogs = [{log:?}]\nmaxretry = 3\n\
                 findtime = \"10m\"\nbantime = \"forever\"\nports = [22]\n",
                sock = dir.join("portcullis.sock").display().to_string(),
                state = dir.join("state").display().to_string(),
                log = log.display().to_string(),
            ),
        )
        .unwrap()
    };
    write(true);
    let mut d = NsDaemon::start(&lab.server, &dir, &cfg, None);
    lab.start_sshd(&log);
    let probe = Duration::from_millis(1000);
    let srv4 = Lab::server_addr(Side::Attacker, false);
    let leg4 = Lab::server_addr(Side::Legit, false);
    let deny = "192.0.2.2/31";

    // the deny prefix: blocked before it did anything, the legitimate host is not
    assert!(
        !lab.tcp_connects(Side::Attacker, srv4, 22, probe),
        "{backend}: the denied prefix connects"
    );
    assert_eq!(entries(lab, backend, deny), 1, "{backend}: {deny} once");
    assert!(lab.tcp_connects(Side::Legit, leg4, 22, probe));

    // the v6 attacker: banned for good, as its prefix
    let srv6 = Lab::server_addr(Side::Attacker, true);
    for _ in 0..3 {
        if d.banned(ATT6_BAN) {
            break;
        }
        let _ = lab.ssh_attempt(Side::Attacker, srv6, WRONG);
    }
    wait_for(
        &format!("{ATT6_BAN} banned"),
        Duration::from_secs(15),
        || d.banned(ATT6_BAN),
    );
    wait_for(
        &format!("{ATT6_BAN} blocked by {backend}"),
        Duration::from_secs(10),
        || ssh_blocked(lab, true),
    );
    assert_eq!(
        entries(lab, backend, ATT6_BAN),
        1,
        "{backend}: {ATT6_BAN} once"
    );
    let permanent = |d: &NsDaemon| -> Vec<(String, String)> {
        let o = d.cli(&["bans", "--permanent", "--json"]);
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_default();
        let mut hosts: Vec<(String, String)> = v["bans"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|b| b["permanent"] == true && b.get("seconds").is_none())
            .map(|b| {
                (
                    b["host"].as_str().unwrap_or_default().to_string(),
                    b["jail"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect();
        hosts.sort();
        hosts
    };
    let both = vec![
        (deny.to_string(), "deny".to_string()),
        (ATT6_BAN.to_string(), "sshd".to_string()),
    ];
    assert_eq!(permanent(&d), both, "{backend}: bans --permanent");

    // a crash and a clean restart: still there, exactly once, still blocking
    d.kill9();
    d.spawn();
    for _ in 0..2 {
        assert_eq!(
            entries(lab, backend, deny),
            1,
            "{backend}: {deny} once after restart"
        );
        assert_eq!(
            entries(lab, backend, ATT6_BAN),
            1,
            "{backend}: {ATT6_BAN} once after restart"
        );
        assert!(!lab.tcp_connects(Side::Attacker, srv4, 22, probe));
        assert!(
            ssh_blocked(lab, true),
            "{backend}: v6 prefix blocked after restart"
        );
        assert_eq!(
            permanent(&d),
            both,
            "{backend}: bans --permanent after restart"
        );
        d.stop();
        d.spawn();
    }

    // only unban lifts it; the deny entry stays
    d.cli(&["unban", ATT6_BAN]).check();
    wait_for(
        &format!("{backend}: unban lifts {ATT6_BAN}"),
        Duration::from_secs(10),
        || !ssh_blocked(lab, true),
    );
    assert_eq!(entries(lab, backend, ATT6_BAN), 0);
    assert_eq!(entries(lab, backend, deny), 1);

    d.stop();
    write(false);
    d.spawn();
    d.stop();
    assert_eq!(
        entries(lab, backend, deny),
        0,
        "{backend}: keep_bans_on_stop = false left the deny prefix"
    );
}

#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn iptables_permanent_prefix_bans() {
    permanent_prefixes(&mut Lab::new(), "iptables", "");
}

#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn ipset_permanent_prefix_bans() {
    permanent_prefixes(&mut Lab::new(), "ipset", "");
}

#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn route_permanent_prefix_bans() {
    permanent_prefixes(&mut Lab::new(), "route", "");
}

/// As above through the admin's script, which gets `{addr}` (the network) and `{prefix}`.
#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn command_permanent_prefix_bans() {
    use std::os::unix::fs::PermissionsExt;
    let mut lab = Lab::new();
    let script = lab.dir().join("block");
    fs::write(
        &script,
        "#!/bin/sh\n[ $# -eq 4 ] || { echo \"bad argc $#: $*\" >&2; exit 9; }\n\
         case $1 in\n\
           ban) [ \"$4\" = 0 ] || exit 8; exec ip route replace blackhole \"$2/$3\" proto 212 ;;\n\
           unban) exec ip route del blackhole \"$2/$3\" proto 212 ;;\n\
         esac\n",
    )
    .unwrap();
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    let s = script.display().to_string();
    // argv: VERB ADDR PREFIX BANTIME; a permanent ban's {bantime} is 0 (the script refuses
    // any other)
    let extra = format!(
        "[firewall.command]\nban = [{s:?}, \"ban\", \"{{addr}}\", \"{{prefix}}\", \"{{bantime}}\"]\n\
         unban = [{s:?}, \"unban\", \"{{addr}}\", \"{{prefix}}\", \"{{bantime}}\"]\ntimeout = \"5s\"\n"
    );
    permanent_prefixes(&mut lab, "command", &extra);
}

/// An INPUT hook that holds a plain jump to our chain and a jump of the admin's with
/// conditions: the plain one is removed (taken for an earlier version's), and the log says
/// removed, not replaced, since the hook gets no jump of Portcullis's beside the admin's
/// (review 62: it said "replaced ... first in the hook", and nothing was put there).
#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn a_plain_jump_beside_the_admins_own_is_said_removed() {
    require_root();
    let ns = Netns::new("ipt-plain");
    let work = tempfile::Builder::new()
        .prefix("pct-iptplain-")
        .tempdir()
        .unwrap();
    let dir = work.path();
    ns.exec_input(
        "iptables-restore",
        &["--noflush"],
        b"*filter\n:PORTCULLIS - [0:0]\n-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n-A INPUT -j PORTCULLIS\n-A INPUT -p tcp --dport 80 -j PORTCULLIS\nCOMMIT\n",
    )
    .check();
    fs::write(dir.join("auth.log"), "").unwrap();
    let cfg = dir.join("portcullis.toml");
    fs::write(
        &cfg,
        format!(
            "socket = {:?}\nstate_dir = {:?}\n[firewall]\nbackend = \"iptables\"\nkeep_bans_on_stop = false\n\
             [[jail]]\nname = \"sshd\"\nlogs = [{:?}]\nports = [22]\n",
            dir.join("portcullis.sock").display().to_string(),
            dir.join("state").display().to_string(),
            dir.join("auth.log").display().to_string()
        ),
    )
    .unwrap();
    let mut d = NsDaemon::start(&ns, dir, &cfg, None);
    let log = d.log();
    assert!(
        log.contains(
            "removed the plain jump(s) to chain PORTCULLIS iptables `-A INPUT -j PORTCULLIS` (1)"
        ) && !log.contains("replaced the plain jump"),
        "{log}"
    );
    let rules = out(&ns, "iptables-save", &["-t", "filter"]);
    let input: Vec<&str> = rules
        .lines()
        .filter(|l| l.starts_with("-A INPUT"))
        .collect();
    assert_eq!(
        input,
        [
            "-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
            "-A INPUT -p tcp -m tcp --dport 80 -j PORTCULLIS"
        ],
        "{rules}"
    );
    d.stop();
}

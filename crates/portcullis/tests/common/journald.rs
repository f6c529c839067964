//! The real `systemd-journald` in a private mount namespace (tmpfs on `/run/systemd`,
//! `/run/log` and `/var/log/journal`, so it serves its own sockets and keeps its own
//! journal), for the tests that need a journal: the machine's (Debian 12, systemd 252), or
//! Debian 13's (systemd 257) from the trixie tree ([`trixie_root`]), run with chroot in a
//! private overlay of the tree that those tmpfs are bound into, its `journalctl` too. Needs
//! root.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::Value;

use super::cli::*;
use super::daemon::{null_config_head, BIN};
use super::netns::*;
use super::real::{trixie_root, Release, TRIXIE_SH};

/// journald, as Debian installs it (Debian 12 on the machine; Debian 13 in the tree, under
/// /usr since the merged /usr).
pub const JOURNALD: &str = "/lib/systemd/systemd-journald";
pub const JOURNALD_13: &str = "usr/lib/systemd/systemd-journald";

/// The real journald in a private mount namespace; killed on drop, and its mounts go with it.
pub struct Journald {
    proc: ProcessGuard,
    release: Release,
    /// The configuration file (`conf`), and for Debian 13 the mount points of the tree's
    /// overlay (`root`, `work`) and the `journalctl` that runs the tree's (`bin/journalctl`).
    dir: tempfile::TempDir,
}

impl Journald {
    /// The machine's journald (Debian 12), with the machine's journald.conf.
    pub fn start() -> Journald {
        Journald::start_on(Release::Deb12, None)
    }

    /// The machine's journald with `conf` as journald.conf (e.g. `"[Journal]\nLineMax=1K\n"`).
    pub fn start_with(conf: &str) -> Journald {
        Journald::start_on(Release::Deb12, Some(conf))
    }

    /// `release`'s journald, with `conf` as journald.conf if given (bind-mounted over
    /// /etc/systemd/journald.conf in the namespace for Debian 12; written into the overlay's
    /// /etc for Debian 13). Debian 13's runs with chroot in an overlay of the trixie tree into
    /// which the namespace's /sys (journald reads a sender's control group there), /run/systemd
    /// and /run/log are bound, so the daemon sees its sockets where the machine's would be; the
    /// journal files stay in the overlay's /var/log/journal (a tmpfs), read by the tree's
    /// `journalctl` ([`Journald::journalctl`]).
    pub fn start_on(release: Release, conf: Option<&str>) -> Journald {
        let dir = tempfile::Builder::new()
            .prefix("pct-journald-")
            .tempdir()
            .unwrap();
        let d = dir.path().display().to_string();
        fs::write(dir.path().join("journald.conf"), conf.unwrap_or_default()).unwrap();
        let conf_path = format!("{d}/journald.conf");
        let common = "set -e; mount -t tmpfs tmpfs /run/systemd; mkdir -p /run/systemd/journal; \
             mkdir -p /run/log; mount -t tmpfs tmpfs /run/log; \
             if [ -d /var/log/journal ]; then mount -t tmpfs tmpfs /var/log/journal; fi; ";
        let script = match release {
            Release::Deb12 => {
                assert!(
                    Path::new(JOURNALD).exists(),
                    "{JOURNALD} is missing (package systemd)"
                );
                let bind = if conf.is_some() {
                    format!("mount --bind '{conf_path}' /etc/systemd/journald.conf; ")
                } else {
                    String::new()
                };
                format!("{common}{bind}exec {JOURNALD}")
            }
            Release::Deb13 => {
                let tree = trixie_root(&[JOURNALD_13, "usr/bin/journalctl"]);
                let bin = dir.path().join("bin");
                fs::create_dir(&bin).unwrap();
                fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
                // the tree's journalctl, for the daemon (first in its PATH) and the test
                let wrapper = bin.join("journalctl");
                fs::write(
                    &wrapper,
                    format!("#!/bin/sh\nexec chroot '{d}/root' /usr/bin/journalctl \"$@\"\n"),
                )
                .unwrap();
                fs::set_permissions(&wrapper, fs::Permissions::from_mode(0o755)).unwrap();
                let conf = if conf.is_some() {
                    format!("cp '{conf_path}' \"$r/etc/systemd/journald.conf\"; ")
                } else {
                    String::new()
                };
                format!(
                    "{common}{TRIXIE_SH}r='{d}/root'; trixie_mount '{tree}' \"$r\" '{d}/work'; \
                     mount --rbind /sys \"$r/sys\"; \
                     for p in /run/systemd /run/log; do mkdir -p \"$r$p\"; mount --bind $p \"$r$p\"; done; \
                     mkdir -p \"$r/var/log/journal\"; mount -t tmpfs tmpfs \"$r/var/log/journal\"; \
                     {conf}exec chroot \"$r\" /{JOURNALD_13}",
                    tree = tree.display()
                )
            }
        };
        let mut cmd = Command::new("unshare");
        cmd.args(["-m", "--propagation", "private", "sh", "-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        let mut j = Journald {
            proc: ProcessGuard::spawn(cmd, "systemd-journald"),
            release,
            dir,
        };
        let socket = PathBuf::from(format!(
            "/proc/{}/root/run/systemd/journal/socket",
            j.proc.pid()
        ));
        let up = wait_until(Duration::from_secs(10), || {
            j.proc.try_wait().is_some() || socket.exists()
        });
        let exited = j.proc.try_wait();
        assert!(
            up && exited.is_none(),
            "systemd-journald did not start in its mount namespace (exit: {exited:?})"
        );
        j
    }

    /// A command run in journald's mount namespace.
    pub fn command(&self, argv: &[String]) -> Command {
        let mut c = Command::new("nsenter");
        c.arg("-t")
            .arg(self.proc.pid().to_string())
            .arg("-m")
            .arg("--")
            .args(argv);
        c
    }

    pub fn run(&self, argv: &[String]) -> CmdOutput {
        run_with_timeout(&mut self.command(argv), None, Duration::from_secs(30))
    }

    pub fn release(&self) -> Release {
        self.release
    }

    /// `bash SCRIPT ARGS…` in this journald's mount namespace and in a pid and network
    /// namespace of its own (`unshare --pid --fork --kill-child --mount-proc --net`: its
    /// processes die with it), stdin and stdout null, stderr into `stderr`: a real server's
    /// run whose /dev/log (or journal stream) is this journald's.
    pub fn spawn_script(
        &self,
        script: &Path,
        args: &[String],
        stderr: &Path,
        label: &str,
    ) -> ProcessGuard {
        let mut argv: Vec<String> = std::iter::once("unshare")
            .chain(UNSHARED_BASH)
            .map(String::from)
            .collect();
        argv.push(script.display().to_string());
        argv.extend(args.iter().cloned());
        let mut cmd = self.command(&argv);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(stderr).unwrap());
        ProcessGuard::spawn(cmd, label)
    }

    /// [`Journald::spawn_script`] of `script` written to DIR/run.sh after the shell functions
    /// `in_unit` and `unit_procs` of `cgroup` ([`UnitCgroup::shell_function`],
    /// [`UnitCgroup::count_function`]), its stderr in DIR/run.stderr.
    pub fn spawn_unit_script(
        &self,
        cgroup: &UnitCgroup,
        dir: &Path,
        script: &str,
        args: &[String],
        label: &str,
    ) -> ProcessGuard {
        let run = dir.join("run.sh");
        fs::write(
            &run,
            format!(
                "{}{}{script}",
                cgroup.shell_function("in_unit"),
                cgroup.count_function("unit_procs")
            ),
        )
        .unwrap();
        self.spawn_script(&run, args, &dir.join("run.stderr"), label)
    }

    /// Stops journald (SIGSTOP) until the guard is dropped (SIGCONT), also when the test
    /// fails meanwhile: what is logged meanwhile waits in its sockets, and journald reads
    /// each sender's process (`/proc/PID`: control group, comm) only when it takes the
    /// message, so a sender that has exited by then is gone. The syslog socket holds 11
    /// datagrams (`net.unix.max_dgram_qlen` 10, the kernel's and Debian's: its systemd ships
    /// no 50-default.conf); the 12th sender blocks.
    pub fn paused(&self) -> Paused<'_> {
        let pid = self.proc.pid().to_string();
        run_with_timeout(
            Command::new("kill").args(["-STOP", pid.as_str()]),
            None,
            Duration::from_secs(10),
        )
        .check();
        Paused(self)
    }

    /// The `journalctl` of this journald's release, to run in its namespace ([`Journald::command`]):
    /// the machine's, or a script that runs the tree's with chroot in the overlay.
    pub fn journalctl(&self) -> String {
        match self.release {
            Release::Deb12 => "journalctl".into(),
            Release::Deb13 => self.dir.path().join("bin/journalctl").display().to_string(),
        }
    }

    /// The first line of `journalctl --version` (`systemd 257 (257.13-1~deb13u1)`), and the
    /// version of the package systemd that journald comes from (dpkg-query, on the machine's
    /// or the tree's dpkg database: `systemd-journald --version` would start a journald for
    /// the namespace "--version").
    pub fn versions(&self) -> (String, String) {
        let out = self.run(&[self.journalctl(), "--version".into()]).check();
        let journalctl = out
            .stdout_str()
            .lines()
            .next()
            .unwrap_or_default()
            .to_string();
        let mut q = vec!["dpkg-query".to_string()];
        if self.release == Release::Deb13 {
            q = vec![
                "chroot".into(),
                self.dir.path().join("root").display().to_string(),
                "dpkg-query".into(),
            ];
        }
        q.extend([
            "-W".into(),
            "-f".into(),
            "${Version}".into(),
            "systemd".into(),
        ]);
        let journald = self.run(&q).check().stdout_str().trim().to_string();
        (journalctl, journald)
    }

    /// Asserts that the journald and journalctl of this release run: systemd 252 (Debian 12)
    /// or 257 (Debian 13).
    pub fn assert_release(&self) {
        let (journalctl, journald) = self.versions();
        let (major, deb) = match self.release {
            Release::Deb12 => ("252", "deb12"),
            Release::Deb13 => ("257", "deb13"),
        };
        assert!(
            journalctl.starts_with(&format!("systemd {major} ({major}.")),
            "{:?}: journalctl --version says {journalctl:?}",
            self.release
        );
        assert!(
            journald.starts_with(&format!("{major}.")) && journald.contains(deb),
            "{:?}: the package systemd is {journald:?}",
            self.release
        );
    }

    /// `portcullis run -c CONFIG` in the namespace, so that its journal reader reads this
    /// journal, its stderr in `log`. Returns once it runs and its reader has saved a cursor
    /// in `state_dir` (the reader saves the journal's newest entry at once): the entries
    /// written after that are the ones it reads. Panics with its stderr if it does not come up.
    pub fn daemon(&self, config: &Path, state_dir: &Path, log: &Path) -> ProcessGuard {
        let mut cmd = self.command(&[
            BIN.to_string(),
            "run".into(),
            "-c".into(),
            config.display().to_string(),
        ]);
        if self.release == Release::Deb13 {
            // its `journalctl` is the tree's
            let path = std::env::var("PATH").unwrap_or("/usr/sbin:/usr/bin:/sbin:/bin".into());
            cmd.env(
                "PATH",
                format!("{}:{path}", self.dir.path().join("bin").display()),
            );
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(log).unwrap());
        let mut daemon = ProcessGuard::spawn(cmd, "portcullis run");
        wait_reading_journal(&mut daemon, log, state_dir, Duration::from_secs(20));
        // its reader follows the journal with this release's journalctl: the tree's runs
        // chrooted in the overlay
        let want_root = match self.release {
            Release::Deb12 => PathBuf::from("/"),
            Release::Deb13 => self.dir.path().join("root"),
        };
        // (Debian 13's `journalctl` is a wrapper script of that name that execs chroot: for
        // an instant after each start it runs in "/"; what must hold is that every
        // journalctl the reader keeps runs in the tree)
        let mut roots = Vec::new();
        let found = wait_until(Duration::from_secs(10), || {
            roots = journalctl_roots(daemon.pid());
            !roots.is_empty() && roots.iter().all(|r| *r == want_root)
        });
        assert!(
            found && roots.iter().all(|r| *r == want_root),
            "{:?}: the daemon's journalctl runs in {roots:?}, not {}",
            self.release,
            want_root.display()
        );
        daemon
    }

    /// [`Journald::daemon`] with an sshd jail on the built-in source (no `logs`: the journal,
    /// journald running) and `maxretry`, the null firewall, its files in `dir`
    /// (`portcullis.toml`, `portcullis.sock`, `state`, `daemon.log`).
    pub fn sshd_jail_daemon(&self, dir: &Path, maxretry: u32) -> ProcessGuard {
        let config = dir.join("portcullis.toml");
        fs::write(
            &config,
            format!(
                "{}[[jail]]\nname = \"sshd\"\nfilter = \"sshd\"\nmaxretry = {maxretry}\n",
                null_config_head(dir)
            ),
        )
        .unwrap();
        self.daemon(&config, &dir.join("state"), &dir.join("daemon.log"))
    }

    /// `journalctl -o json --all MATCHES…` in the namespace: the MESSAGE of each entry.
    pub fn messages(&self, matches: &[&str]) -> Vec<(String, Value)> {
        let mut argv: Vec<String> = vec![self.journalctl()];
        argv.extend(
            ["--no-pager", "-o", "json", "--all"]
                .iter()
                .map(|s| s.to_string()),
        );
        argv.extend(matches.iter().map(|s| s.to_string()));
        let out = self.run(&argv).check();
        out.stdout_str()
            .lines()
            .map(|l| {
                let v: Value = serde_json::from_str(l).expect("journalctl JSON");
                (v["MESSAGE"].as_str().unwrap_or_default().to_string(), v)
            })
            .collect()
    }
}

/// The root directories (`/proc/PID/root`) of the `journalctl` children of process `parent`.
/// Waits until the daemon `daemon` (its stderr in `log`, its state in `state_dir`) has
/// started and saved a journal cursor, i.e. reads the journal; fails the test with its
/// stderr when it exits or `timeout` passes first.
pub fn wait_reading_journal(
    daemon: &mut ProcessGuard,
    log: &Path,
    state_dir: &Path,
    timeout: Duration,
) {
    let text = || fs::read_to_string(log).unwrap_or_default();
    let cursor_saved = || {
        fs::read_dir(state_dir).is_ok_and(|d| {
            d.filter_map(Result::ok)
                .any(|e| e.file_name().to_string_lossy().ends_with(".cursor"))
        })
    };
    let up = wait_until(timeout, || {
        daemon.try_wait().is_some() || (text().contains("started jails=") && cursor_saved())
    });
    assert!(
        up && daemon.try_wait().is_none(),
        "the daemon did not come up reading the journal; its stderr:\n{}",
        text()
    );
}

fn journalctl_roots(parent: u32) -> Vec<PathBuf> {
    let Ok(d) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    d.filter_map(Result::ok)
        .filter_map(|e| {
            let pid: u32 = e.file_name().to_str()?.parse().ok()?;
            let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            // `PID (COMM) STATE PPID …`; COMM may hold spaces and parentheses
            let (comm, rest) = stat.split_once(" (")?.1.rsplit_once(") ")?;
            let ppid: u32 = rest.split(' ').nth(1)?.parse().ok()?;
            (ppid == parent && comm == "journalctl")
                .then(|| fs::read_link(format!("/proc/{pid}/root")).ok())?
        })
        .collect()
}

/// journald stopped ([`Journald::paused`]) until this is dropped.
pub struct Paused<'a>(&'a Journald);

impl Drop for Paused<'_> {
    fn drop(&mut self) {
        // no check: this also runs while a failed test unwinds
        let _ = Command::new("kill")
            .args(["-CONT", &self.0.proc.pid().to_string()])
            .status();
    }
}

/// A systemd unit's cgroup, made by hand so that journald (which takes `_SYSTEMD_UNIT` and
/// `_SYSTEMD_SLICE` from the sender's cgroup) files a process's entries under that unit
/// without a systemd: `PARTS` (e.g. `system.slice`, `ssh.service`) in each hierarchy that
/// names units, the unified one (`/sys/fs/cgroup` itself, or `/sys/fs/cgroup/unified` on a
/// hybrid host) and `name=systemd`. The directories made here (not those that were there)
/// are removed on drop.
pub struct UnitCgroup {
    dirs: Vec<PathBuf>,
    created: Vec<PathBuf>,
}

impl UnitCgroup {
    pub fn new(parts: &[&str]) -> UnitCgroup {
        let roots: Vec<&str> = if Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
            vec!["/sys/fs/cgroup"]
        } else {
            ["/sys/fs/cgroup/unified", "/sys/fs/cgroup/systemd"]
                .into_iter()
                .filter(|r| Path::new(r).join("cgroup.procs").exists())
                .collect()
        };
        assert!(
            !roots.is_empty(),
            "no cgroup hierarchy found under /sys/fs/cgroup: journald could not tell any unit"
        );
        let mut g = UnitCgroup {
            dirs: Vec::new(),
            created: Vec::new(),
        };
        for r in roots {
            let mut p = PathBuf::from(r);
            for part in parts {
                p.push(part);
                if !p.exists() {
                    fs::create_dir(&p).unwrap_or_else(|e| {
                        panic!("cannot create the cgroup {}: {e}", p.display())
                    });
                    g.created.push(p.clone());
                }
            }
            g.dirs.push(p);
        }
        g
    }

    /// `UNIT` in a slice of its own, `pct-PREFIX-PID-N.slice`, for a source that matches the
    /// unit only: N counts the calls in this process, so two tests of one binary that run at
    /// once never share (and never remove) each other's group.
    pub fn private(prefix: &str, unit: &str) -> UnitCgroup {
        static N: AtomicUsize = AtomicUsize::new(0);
        let slice = format!(
            "pct-{prefix}-{}-{}.slice",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        UnitCgroup::new(&[slice.as_str(), unit])
    }

    /// The shell commands that move the (sub)shell they run in into the group.
    fn moves(&self, pid: &str) -> String {
        self.dirs
            .iter()
            .map(|d| format!("echo {pid} > '{}/cgroup.procs' || exit 97; ", d.display()))
            .collect()
    }

    /// A shell function `NAME` that moves the (sub)shell it runs in into the group.
    pub fn shell_function(&self, name: &str) -> String {
        format!("{name}() {{ {}}}\n", self.moves("$BASHPID"))
    }

    /// A shell function `NAME` that prints how many processes are in the group.
    pub fn count_function(&self, name: &str) -> String {
        format!(
            "{name}() {{ wc -l < '{}/cgroup.procs'; }}\n",
            self.dirs[0].display()
        )
    }

    /// `sh -c '…; exec ARGV'`: ARGV run inside the group.
    pub fn wrap(&self, argv: &[String]) -> Vec<String> {
        let script = format!("{}exec \"$@\"", self.moves("$$"));
        let mut v: Vec<String> = ["sh", "-c", &script, "in-unit"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        v.extend(argv.iter().cloned());
        v
    }
}

impl Drop for UnitCgroup {
    fn drop(&mut self) {
        for d in self.created.iter().rev() {
            // empty once the processes moved there have exited; retry a little
            if !wait_until(Duration::from_secs(5), || {
                fs::remove_dir(d).is_ok() || !d.exists()
            }) {
                eprintln!("warning: cannot remove the cgroup {}", d.display());
            }
        }
    }
}

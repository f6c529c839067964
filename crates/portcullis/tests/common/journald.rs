//! The real `systemd-journald` of the machine in a private mount namespace (tmpfs on
//! `/run/systemd`, `/run/log` and `/var/log/journal`, so it serves its own sockets and keeps
//! its own journal), for the tests that need a journal. Needs root.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use super::cli::*;
use super::daemon::BIN;
use super::netns::*;

/// journald, as Debian installs it.
pub const JOURNALD: &str = "/lib/systemd/systemd-journald";

/// The real journald in a private mount namespace; killed on drop, and its mounts go with it.
pub struct Journald {
    proc: ProcessGuard,
    /// Where the configuration file of [`Journald::start_with`] lives while journald runs.
    _conf: Option<tempfile::TempDir>,
}

impl Journald {
    /// With the machine's journald.conf.
    pub fn start() -> Journald {
        Journald::launch(None)
    }

    /// With `conf` as journald.conf (e.g. `"[Journal]\nLineMax=1K\n"`), bind-mounted over
    /// /etc/systemd/journald.conf in the namespace.
    pub fn start_with(conf: &str) -> Journald {
        let dir = tempfile::Builder::new()
            .prefix("pct-journald-conf-")
            .tempdir()
            .unwrap();
        fs::write(dir.path().join("journald.conf"), conf).unwrap();
        Journald::launch(Some(dir))
    }

    fn launch(conf: Option<tempfile::TempDir>) -> Journald {
        assert!(
            Path::new(JOURNALD).exists(),
            "{JOURNALD} is missing (package systemd)"
        );
        let script = format!(
            "set -e; mount -t tmpfs tmpfs /run/systemd; mkdir -p /run/systemd/journal; \
             mkdir -p /run/log; mount -t tmpfs tmpfs /run/log; \
             if [ -d /var/log/journal ]; then mount -t tmpfs tmpfs /var/log/journal; fi; \
             {bind}exec {JOURNALD}",
            bind = conf.as_ref().map_or(String::new(), |d| format!(
                "mount --bind '{}' /etc/systemd/journald.conf; ",
                d.path().join("journald.conf").display()
            ))
        );
        let mut cmd = Command::new("unshare");
        cmd.args(["-m", "--propagation", "private", "sh", "-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        let mut j = Journald {
            proc: ProcessGuard::spawn(cmd, "systemd-journald"),
            _conf: conf,
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
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(log).unwrap());
        let mut daemon = ProcessGuard::spawn(cmd, "portcullis run");
        let text = || fs::read_to_string(log).unwrap_or_default();
        let cursor_saved = || {
            fs::read_dir(state_dir).is_ok_and(|d| {
                d.filter_map(Result::ok)
                    .any(|e| e.file_name().to_string_lossy().ends_with(".cursor"))
            })
        };
        let up = wait_until(Duration::from_secs(20), || {
            daemon.try_wait().is_some() || (text().contains("started jails=") && cursor_saved())
        });
        assert!(
            up && daemon.try_wait().is_none(),
            "the daemon did not come up reading the journal; its stderr:\n{}",
            text()
        );
        daemon
    }

    /// `journalctl -o json --all MATCHES…` in the namespace: the MESSAGE of each entry.
    pub fn messages(&self, matches: &[&str]) -> Vec<(String, Value)> {
        let mut argv: Vec<String> = ["journalctl", "--no-pager", "-o", "json", "--all"]
            .iter()
            .map(|s| s.to_string())
            .collect();
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

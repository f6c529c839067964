//! The `cockpit` filter's journal source against a real systemd journal: systemd booted as
//! pid 1 of a container, starting Cockpit as Debian ships it (cockpit.socket, socket
//! activation), and the real daemon reading that journal. Twice, one scenario table: Debian
//! 12's systemd 252 and Cockpit 287 (an overlay of the machine's own root) and Debian 13's
//! systemd 257 and Cockpit 337 (an overlay of test.sh's trixie tree); each run asserts both
//! versions (dpkg-query in the tree, `systemctl --version` in the container).
//!
//! The container (no systemd-nspawn; what it does, by hand): a process moved into a fresh
//! control group `pct-cockpit-journal-VERSION-PID` of the machine's cgroup2 hierarchy
//! (`/sys/fs/cgroup`, or `/sys/fs/cgroup/unified` on a hybrid host) runs `unshare --pid
//! --mount --uts --ipc --net --cgroup --fork`, so that group is the root of the container's
//! cgroup namespace and a cgroup2 mount there is all systemd sees (257 refuses cgroup v1).
//! The root is a private writable overlay of the tree, with a fresh /proc (its /proc/sys
//! read-only, so no unit sets the machine's sysctls), /sys read-only, a private /dev (tmpfs
//! with null, zero, full, random, urandom, tty and its own devpts), /run and /tmp tmpfs, the
//! test's directory at /pct and this build's `portcullis` at /usr/local/sbin. systemd runs
//! with `container=portcullis-test`, without CAP_SYS_MODULE, CAP_SYS_TIME, CAP_SYS_RAWIO,
//! CAP_WAKE_ALARM, CAP_MAC_ADMIN, CAP_MAC_OVERRIDE in its bounding set, and boots
//! `pct.target`: sysinit.target, dbus.socket, cockpit.socket and systemd-user-sessions.service
//! (systemd-sysctl, -modules-load, -binfmt, -pstore, -repart and -timesyncd masked). The
//! overlay adds an account `pctcockpit` and cockpit.conf's `AllowUnencrypted=true`, so that
//! plain HTTP reaches `cockpit-wsinstance-http.service` while HTTPS goes through cockpit-tls
//! to `cockpit-wsinstance-https@HASH.service` (system-cockpithttps.slice). It boots in about
//! a second; a run takes about 13 s.
//!
//! A client network namespace (veth to the container; 192.0.2.1 and 2001:db8::1 the
//! container's) logs in with curl: 203.0.113.5 three wrong passwords over HTTPS,
//! 203.0.113.6 an unknown user over HTTPS, 203.0.113.7 a wrong password over HTTP,
//! 2001:db8:7::7 a wrong password over HTTPS, then 198.51.100.10 the right password (HTTP 200,
//! a logind session). Cockpit 287 runs the root cockpit-session in cockpit-ws's unit (the HTTP
//! or the HTTPS instance); 337 has systemd start one `cockpit-session@N-PID-UID.service` per
//! login in `system-cockpit\x2dsession.slice` (Accept=yes on /run/cockpit/session). The
//! pam_unix failure entries, as the journal holds them (`journalctl -o json`):
//! `SYSLOG_IDENTIFIER=cockpit-session`, `_COMM=cockpit-session`, `_UID=0`, `_TRANSPORT=syslog`,
//! and that unit and slice; rhost= the IPv4-mapped address for an IPv4 client
//! (`::ffff:203.0.113.5`: cockpit.socket listens on [::]), which the filter reads as
//! 203.0.113.5.
//!
//! Then entries forged with `logger -t cockpit-session` (a whole pam_unix failure line; each
//! forger stays alive a second, so that journald finds its control group): as nobody moved into
//! cockpit.service, cockpit-wsinstance-http.service and cockpit-wsinstance-https@HASH.service
//! (192.0.2.61-63), as nobody in a unit of system-cockpit\x2dsession.slice (192.0.2.64,
//! `systemd-run --slice`), as root in a unit of system.slice (192.0.2.65); last, as root in
//! system-cockpit\x2dsession.slice (198.51.100.99: only root can put a process there; it
//! counts, which shows the forged ones were read and refused, not missed). Each forged entry
//! is checked to carry the unit, slice and uid it was written from.
//!
//! The filter's suggested journal source (from `portcullis filters --json`) handed to the
//! container's journalctl selects every real failure, only entries of uid 0, and no forged
//! one but root's two (192.0.2.65's through the group without a unit, root's syslog entries
//! named cockpit-session, which is there for sessions that exited before journald read their
//! unit: tests/journal_exited_sender.rs); the daemon (this build, inside the container, its
//! jail `cockpit` with that source, maxretry 1, null firewall, reading with the container's
//! journalctl) drops 192.0.2.65's, whose unit the source does not name (the reader's
//! `UnitGuard`), and says so, and bans exactly 203.0.113.5, 203.0.113.6, 203.0.113.7,
//! 2001:db8:7::/64 (its default IPv6 prefix; the client is not in the container's own
//! 2001:db8::/64, which the daemon never bans) and 198.51.100.99.
//!
//! Needs root; for Debian 12 systemd, dbus, cockpit-ws and cockpit-bridge on the machine, for
//! Debian 13 the same in the trixie tree (test.sh installs them); on the machine unshare,
//! nsenter, setpriv, chroot, ip, curl, openssl and a cgroup2 hierarchy; fails (never skips)
//! when they are missing. Every wait is bounded; the container (its pid namespace killed with
//! systemd), its control groups and the client namespace are removed on drop.

mod common;

use common::*;
use serde_json::Value;
use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_portcullis");

/// Run as pid 1 of the new namespaces (bash): builds the container's root and becomes its
/// systemd. $1 the test's directory, $2 the Debian 13 tree, $3 the portcullis binary, $4 the
/// crypt hash of pctcockpit's password.
const STAGE: &str = r#"set -eu
d=$1; tree=$2; bin=$3; hash=$4; r=$d/root
mkdir -p "$r" "$d/w"
mount -t tmpfs -o mode=755 pct-cj "$d/w"
mkdir "$d/w/up" "$d/w/work"
mount -t overlay pct-cj -o "lowerdir=$tree,upperdir=$d/w/up,workdir=$d/w/work" "$r"
# /proc of the new pid namespace; the machine's kernel settings out of reach
mount -t proc proc "$r/proc"
mount --bind "$r/proc/sys" "$r/proc/sys"
mount -o remount,bind,ro "$r/proc/sys"
if [ -e "$r/proc/sysrq-trigger" ]; then
  mount --bind "$r/proc/sysrq-trigger" "$r/proc/sysrq-trigger"
  mount -o remount,bind,ro "$r/proc/sysrq-trigger"
fi
mount -t sysfs -o ro sysfs "$r/sys"
# the cgroup namespace's root: the control group the test made
mount -t cgroup2 cgroup2 "$r/sys/fs/cgroup"
# a private /dev
mount -t tmpfs -o mode=755 pct-dev "$r/dev"
for n in "null 1 3" "zero 1 5" "full 1 7" "random 1 8" "urandom 1 9" "tty 5 0"; do
  set -- $n
  mknod -m 666 "$r/dev/$1" c "$2" "$3"
done
mkdir "$r/dev/pts" "$r/dev/shm"
mount -t devpts -o newinstance,ptmxmode=666,mode=620 devpts "$r/dev/pts"
ln -s pts/ptmx "$r/dev/ptmx"
mount -t tmpfs -o mode=1777 pct-shm "$r/dev/shm"
mount -t tmpfs -o mode=755 pct-run "$r/run"
mount -t tmpfs -o mode=1777 pct-tmp "$r/tmp"
# the test's directory at /pct (not under /tmp, which systemd-tmpfiles empties at boot), the
# daemon under test
mkdir -p "$r/pct" "$r/usr/local/sbin"
mount --bind "$d" "$r/pct"
touch "$r/usr/local/sbin/portcullis"
mount --bind "$bin" "$r/usr/local/sbin/portcullis"
# what systemd boots: Cockpit's socket, the system bus, logins allowed
cat > "$r/etc/systemd/system/pct.target" <<T
[Unit]
Description=Portcullis test: Cockpit as Debian starts it
Requires=sysinit.target dbus.socket cockpit.socket systemd-user-sessions.service
After=sysinit.target dbus.socket cockpit.socket systemd-user-sessions.service
AllowIsolate=yes
T
for u in systemd-sysctl.service systemd-modules-load.service systemd-binfmt.service \
         proc-sys-fs-binfmt_misc.automount systemd-pstore.service systemd-repart.service \
         systemd-timesyncd.service; do
  ln -sf /dev/null "$r/etc/systemd/system/$u"
done
mkdir -p "$r/etc/cockpit"
printf '[WebService]\nAllowUnencrypted=true\n' > "$r/etc/cockpit/cockpit.conf"
chroot "$r" useradd -m -p "$hash" -s /bin/sh pctcockpit
exec /usr/bin/env -i container=portcullis-test /usr/bin/setpriv \
  --bounding-set -sys_module,-sys_time,-sys_rawio,-wake_alarm,-mac_admin,-mac_override \
  /usr/sbin/chroot "$r" /usr/lib/systemd/systemd --unit=pct.target
"#;

/// The logins, in the client namespace (bash).
const LOGINS: &str = r#"set -u
out=$1
try() {
  local src=$1 url=$2 cred=$3 code
  code=$(curl -sSk -m 20 --interface "$src" -o /dev/null -w '%{http_code}' \
    -H "Authorization: Basic $(printf '%s' "$cred" | base64 -w0)" "$url" 2>> "$out.err")
  printf '%s %s\n' "$src" "$code" >> "$out"
}
pids=()
try 203.0.113.5 https://192.0.2.1:9090/cockpit/login pctcockpit:wrong1 & pids+=($!)
try 203.0.113.5 https://192.0.2.1:9090/cockpit/login pctcockpit:wrong2 & pids+=($!)
try 203.0.113.5 https://192.0.2.1:9090/cockpit/login pctcockpit:wrong3 & pids+=($!)
try 203.0.113.6 https://192.0.2.1:9090/cockpit/login nosuch:wrong & pids+=($!)
try 203.0.113.7 http://192.0.2.1:9090/cockpit/login pctcockpit:wrong4 & pids+=($!)
try 2001:db8:7::7 'https://[2001:db8::1]:9090/cockpit/login' pctcockpit:wrong5 & pids+=($!)
wait "${pids[@]}"
try 198.51.100.10 https://192.0.2.1:9090/cockpit/login pctcockpit:Right-pw-1
"#;

/// A whole pam_unix failure line for `addr`, as a forger writes it.
fn forged(addr: &str) -> String {
    format!(
        "pam_unix(cockpit:auth): authentication failure; logname= uid=0 euid=0 tty= ruser= \
         rhost={addr}  user=pctcockpit"
    )
}

/// The machine's cgroup2 hierarchy: /sys/fs/cgroup itself, or its `unified` mount (hybrid).
fn cgroup2_root() -> PathBuf {
    for p in ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"] {
        if Path::new(p).join("cgroup.controllers").exists() {
            return PathBuf::from(p);
        }
    }
    panic!(
        "no cgroup2 hierarchy at /sys/fs/cgroup or /sys/fs/cgroup/unified: systemd 257 needs one"
    );
}

/// A control group made for the container; removed (deepest first) on drop.
struct Cgroup(PathBuf);

impl Cgroup {
    fn new(label: &str) -> Cgroup {
        let p = cgroup2_root().join(format!("pct-{label}-{}", std::process::id()));
        fs::create_dir(&p).unwrap_or_else(|e| panic!("cannot make {}: {e}", p.display()));
        Cgroup(p)
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        fn dirs(p: &Path, out: &mut Vec<PathBuf>) {
            if let Ok(rd) = fs::read_dir(p) {
                for e in rd.flatten() {
                    if e.file_type().is_ok_and(|t| t.is_dir()) {
                        dirs(&e.path(), out);
                    }
                }
            }
            out.push(p.to_path_buf());
        }
        let gone = wait_until(Duration::from_secs(10), || {
            let mut all = Vec::new();
            dirs(&self.0, &mut all);
            for d in all {
                let _ = fs::remove_dir(d);
            }
            !self.0.exists()
        });
        if !gone {
            eprintln!("warning: control group {} left behind", self.0.display());
        }
    }
}

/// systemd as pid 1 of its own namespaces; its pid namespace is killed on drop.
struct Container {
    unshare: ProcessGuard,
    /// systemd's pid, as the machine sees it.
    pid: u32,
    _cgroup: Cgroup,
}

impl Container {
    fn boot(label: &str, dir: &Path, tree: &Path, hash: &str) -> Container {
        let cgroup = Cgroup::new(label);
        let stage = dir.join("stage.sh");
        fs::write(&stage, STAGE).unwrap();
        let mut cmd = Command::new("sh");
        cmd.args([
            "-c",
            "echo $$ > \"$1/cgroup.procs\" && shift && exec unshare --pid --mount --uts --ipc \
             --net --cgroup --fork --kill-child=SIGKILL --propagation private bash \"$@\"",
            "sh",
        ])
        .arg(&cgroup.0)
        .arg(&stage)
        .arg(dir)
        .arg(tree)
        .arg(BIN)
        .arg(hash)
        .stdin(Stdio::null())
        .stdout(fs::File::create(dir.join("console")).unwrap())
        .stderr(fs::File::create(dir.join("console.err")).unwrap());
        let mut unshare = ProcessGuard::spawn(cmd, "unshare (the container)");
        let upid = unshare.pid();
        let mut pid = 0;
        let found = wait_until(Duration::from_secs(10), || {
            if unshare.try_wait().is_some() {
                return true;
            }
            let children = fs::read_to_string(format!("/proc/{upid}/task/{upid}/children"))
                .unwrap_or_default();
            pid = children
                .split_whitespace()
                .next()
                .and_then(|p| p.parse().ok())
                .unwrap_or(0);
            pid != 0
                && fs::read_link(format!("/proc/{pid}/exe")).is_ok_and(|e| e.ends_with("systemd"))
        });
        let console = || {
            format!(
                "{}{}",
                fs::read_to_string(dir.join("console")).unwrap_or_default(),
                fs::read_to_string(dir.join("console.err")).unwrap_or_default()
            )
        };
        assert!(
            found && unshare.try_wait().is_none(),
            "systemd did not start in the container:\n{}",
            console()
        );
        let c = Container {
            unshare,
            pid,
            _cgroup: cgroup,
        };
        let mut state = String::new();
        let up = wait_until(Duration::from_secs(30), || {
            state = c
                .run(&["systemctl", "is-system-running"])
                .stdout_str()
                .trim()
                .to_string();
            state == "running" || state == "degraded"
        });
        assert!(
            up && state == "running",
            "the container's systemd is not running (state {state:?}):\n{}\n{}\n{}",
            c.run(&["systemctl", "--failed", "--no-pager"]).stdout_str(),
            c.run(&["journalctl", "-b", "--no-pager", "-n", "200"])
                .stdout_str(),
            console()
        );
        c
    }

    /// `argv` run inside the container (its namespaces and root), bounded by 60 s.
    fn command(&self, argv: &[&str]) -> Command {
        let mut cmd = Command::new("nsenter");
        cmd.args(["-t", &self.pid.to_string(), "-a", "-r", "-w", "--"])
            .args(argv);
        cmd
    }

    fn run(&self, argv: &[&str]) -> CmdOutput {
        run_with_timeout(&mut self.command(argv), None, Duration::from_secs(60))
    }

    /// `sh -c SCRIPT` inside, as root; panics unless it succeeds.
    fn sh(&self, what: &str, script: &str) -> CmdOutput {
        let out = self.run(&["sh", "-c", script]);
        assert!(out.success(), "{what}: {out:?}");
        out
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        // systemd is pid 1 of its pid namespace: killing it ends every process there
        if self.unshare.try_wait().is_none() {
            // SAFETY: a signal to the child of our own child, which has not been reaped
            unsafe {
                libc::kill(self.pid as i32, libc::SIGKILL);
            }
            wait_until(Duration::from_secs(10), || {
                self.unshare.try_wait().is_some()
            });
        }
        self.unshare.kill();
    }
}

/// The journal source the cockpit filter suggests (`portcullis filters --json`).
fn suggested_source() -> String {
    let logs: Vec<String> = filter_logs("cockpit")
        .into_iter()
        .filter(|l| l.starts_with("journal:"))
        .collect();
    assert_eq!(logs.len(), 1, "one journal source expected: {logs:?}");
    logs[0].clone()
}

/// Entries as `journalctl -o json` prints them.
fn entries(out: &CmdOutput) -> Vec<Value> {
    out.stdout_str()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .collect()
}

fn field<'a>(e: &'a Value, k: &str) -> &'a str {
    e[k].as_str().unwrap_or("")
}

/// Boots `version`'s systemd with its Cockpit, logs in, forges, and checks what the journal
/// holds, what the suggested source selects and what the daemon bans.
fn run(version: Release) {
    require_root();
    for (p, pkg) in [
        ("unshare", "util-linux"),
        ("nsenter", "util-linux"),
        ("setpriv", "util-linux"),
        ("chroot", "coreutils"),
        ("ip", "iproute2"),
        ("curl", "curl"),
        ("openssl", "openssl"),
    ] {
        require_program(p, pkg);
    }
    let files = [
        "usr/lib/systemd/systemd",
        "usr/bin/journalctl",
        "usr/bin/dbus-daemon",
        "usr/lib/cockpit/cockpit-ws",
        "usr/lib/cockpit/cockpit-tls",
        "usr/lib/cockpit/cockpit-session",
        "usr/bin/cockpit-bridge",
        "usr/sbin/useradd",
    ];
    // Debian 12's: the machine's own root (test.sh installs cockpit-ws and dbus there)
    let (tree, cockpit, systemd) = match version {
        Release::Deb12 => {
            for f in files {
                assert!(
                    Path::new("/").join(f).is_file(),
                    "/{f} is missing: install systemd, dbus, cockpit-ws and cockpit-bridge \
                     (test.sh does)"
                );
            }
            (PathBuf::from("/"), "287", "252")
        }
        Release::Deb13 => (trixie_root(&files), "337", "257"),
    };
    let versions = run_with_timeout(
        Command::new("chroot").arg(&tree).args([
            "dpkg-query",
            "-W",
            "-f",
            "${Package} ${Version}\n",
            "cockpit-ws",
            "systemd",
        ]),
        None,
        Duration::from_secs(30),
    )
    .check()
    .stdout_str();
    assert!(
        versions.contains(&format!("cockpit-ws {cockpit}"))
            && versions.contains(&format!("systemd {systemd}.")),
        "Cockpit {cockpit} and systemd {systemd} expected in {}: {versions}",
        tree.display()
    );
    let source = suggested_source();
    let terms: Vec<&str> = source["journal:".len()..].split_whitespace().collect();

    let dir = test_dir(&format!("cockpit-journal-{cockpit}"));
    let d = dir.path();
    let hash = run_with_timeout(
        Command::new("openssl").args(["passwd", "-6", "Right-pw-1"]),
        None,
        Duration::from_secs(30),
    )
    .check()
    .stdout_str()
    .trim()
    .to_string();

    let c = Container::boot(&format!("cockpit-journal-{cockpit}"), d, &tree, &hash);
    let v = c.run(&["systemctl", "--version"]).stdout_str();
    assert!(
        v.starts_with(&format!("systemd {systemd} ")),
        "systemd in the container: {v}"
    );

    // the client's namespace, a veth to the container's
    let client = Netns::new("cockpit-client");
    client
        .ip(&[
            "link",
            "add",
            "c0",
            "type",
            "veth",
            "peer",
            "name",
            "s0",
            "netns",
            &format!("/proc/{}/ns/net", c.pid),
        ])
        .check();
    for a in [
        "192.0.2.2/24",
        "203.0.113.5/32",
        "203.0.113.6/32",
        "203.0.113.7/32",
        "198.51.100.10/32",
    ] {
        client.ip(&["addr", "add", a, "dev", "c0"]).check();
    }
    for a in ["2001:db8::2/64", "2001:db8:7::7/128"] {
        client.ip(&["addr", "add", a, "dev", "c0", "nodad"]).check();
    }
    client.ip(&["link", "set", "c0", "up"]).check();
    c.sh(
        "the container's network",
        "ip link set lo up && ip link set s0 up && ip addr add 192.0.2.1/24 dev s0 && \
         ip addr add 2001:db8::1/64 dev s0 nodad && ip route add 203.0.113.0/24 dev s0 && \
         ip route add 198.51.100.0/24 dev s0 && ip route add 2001:db8:7::/64 dev s0",
    );

    // the daemon, inside, reading the journal with the suggested source
    let state = d.join("state");
    let sock = d.join("pc.sock");
    // (the container's /pct is the test's directory)
    fs::write(
        d.join("portcullis.toml"),
        format!(
            "socket = \"/pct/pc.sock\"\nstate_dir = \"/pct/state\"\n\
             [firewall]\nbackend = \"null\"\n\n\
             [[jail]]\nname = \"cockpit\"\nfilter = \"cockpit\"\nlogs = [{source:?}]\n\
             maxretry = 1\nfindtime = \"1h\"\nbantime = \"1h\"\n"
        ),
    )
    .unwrap();
    let daemon_log = d.join("daemon.log");
    let mut dcmd = c.command(&[
        "/usr/local/sbin/portcullis",
        "run",
        "-c",
        "/pct/portcullis.toml",
    ]);
    dcmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(fs::File::create(&daemon_log).unwrap());
    let mut daemon = ProcessGuard::spawn(dcmd, "portcullis run (in the container)");
    let dlog = || fs::read_to_string(&daemon_log).unwrap_or_default();
    wait_reading_journal(&mut daemon, &daemon_log, &state, Duration::from_secs(30));

    // the logins
    let codes_file = d.join("codes");
    fs::write(d.join("logins.sh"), LOGINS).unwrap();
    let out = client.exec_timeout(
        "bash",
        &[d.join("logins.sh").as_os_str(), codes_file.as_os_str()],
        Duration::from_secs(90),
    );
    assert!(out.success(), "the logins: {out:?}");
    let mut codes: Vec<String> = fs::read_to_string(&codes_file)
        .unwrap_or_default()
        .lines()
        .map(String::from)
        .collect();
    codes.sort();
    let journal_all = || {
        c.run(&["journalctl", "-b", "--no-pager", "-o", "short-iso"])
            .stdout_str()
    };
    assert_eq!(
        codes,
        [
            "198.51.100.10 200",
            "2001:db8:7::7 401",
            "203.0.113.5 401",
            "203.0.113.5 401",
            "203.0.113.5 401",
            "203.0.113.6 401",
            "203.0.113.7 401",
        ],
        "HTTP statuses; curl: {}\njournal:\n{}",
        fs::read_to_string(d.join("codes.err")).unwrap_or_default(),
        journal_all()
    );

    // forged entries: nobody in each unit the source names, and in the sessions' slice; root
    // in another unit; last, root in the sessions' slice (which counts)
    let https_unit = c
        .sh(
            "the https instance",
            "systemctl list-units --plain --no-legend 'cockpit-wsinstance-https@*.service' \
             | awk '{print $1}'",
        )
        .stdout_str()
        .trim()
        .to_string();
    assert!(
        https_unit.starts_with("cockpit-wsinstance-https@") && !https_unit.contains('\n'),
        "one https instance expected: {https_unit:?}"
    );
    // each forger stays alive a while after sending: journald reads the sender's control
    // group from /proc when the entry arrives, and finds none once the sender is gone (3 s:
    // a loaded machine's journald may come to it after 1 s, review 37)
    const FORGE: &str = "{ printf '%s\\n' \"$0\"; sleep 3; } | logger -t cockpit-session";
    let httpsd = format!("system.slice/system-cockpithttps.slice/{https_unit}");
    for (cgroup, addr) in [
        ("system.slice/cockpit.service", "192.0.2.61"),
        ("system.slice/cockpit-wsinstance-http.service", "192.0.2.62"),
        (httpsd.as_str(), "192.0.2.63"),
    ] {
        let procs = format!("/sys/fs/cgroup/{cgroup}/cgroup.procs");
        let m = forged(addr);
        let out = c.run(&[
            "sh",
            "-c",
            "echo $$ > \"$1\" && exec setpriv --reuid=65534 --regid=65534 --clear-groups \
             sh -c \"$2\" \"$3\"",
            "sh",
            &procs,
            FORGE,
            &m,
        ]);
        assert!(out.success(), "nobody in {cgroup}: {out:?}");
    }
    let slice = r"system-cockpit\x2dsession.slice";
    for (args, addr) in [
        (vec!["--slice", slice, "-p", "User=nobody"], "192.0.2.64"),
        (vec![], "192.0.2.65"),
        (vec!["--slice", slice], "198.51.100.99"),
    ] {
        let mut argv = vec!["systemd-run", "-q", "--wait"];
        argv.extend(args);
        let m = forged(addr);
        argv.extend(["sh", "-c", FORGE, &m]);
        let out = c.run(&argv);
        assert!(out.success(), "{argv:?}: {out:?}");
    }

    // the real failures, as the journal holds them, once journald has stored the last entry
    // (a moment after its sender sent it)
    let last = forged("198.51.100.99");
    let mut all = Vec::new();
    let stored = wait_until(Duration::from_secs(20), || {
        all = entries(&c.run(&["journalctl", "-b", "-o", "json", "--no-pager"]));
        all.iter().any(|e| field(e, "MESSAGE") == last)
    });
    assert!(
        stored,
        "the last entry never reached the journal:\n{}",
        journal_all()
    );
    let real: Vec<&Value> = all
        .iter()
        .filter(|e| {
            field(e, "MESSAGE").starts_with("pam_unix(cockpit:auth): authentication failure;")
                && field(e, "_COMM") == "cockpit-session"
        })
        .collect();
    let mut rhosts: Vec<String> = real
        .iter()
        .map(|e| {
            let m = field(e, "MESSAGE");
            m[m.find("rhost=").unwrap() + 6..]
                .split_whitespace()
                .next()
                .unwrap_or("")
                .to_string()
        })
        .collect();
    rhosts.sort();
    assert_eq!(
        rhosts,
        [
            "2001:db8:7::7",
            "::ffff:203.0.113.5",
            "::ffff:203.0.113.5",
            "::ffff:203.0.113.5",
            "::ffff:203.0.113.6",
            "::ffff:203.0.113.7",
        ],
        "cockpit-session's failures in the journal:\n{}",
        journal_all()
    );
    for e in &real {
        assert_eq!(field(e, "SYSLOG_IDENTIFIER"), "cockpit-session", "{e}");
        assert_eq!(field(e, "_UID"), "0", "{e}");
        assert_eq!(field(e, "_TRANSPORT"), "syslog", "{e}");
        // 337: a unit of its own per login; 287: cockpit-ws's unit (HTTP or HTTPS)
        let (unit, sl) = match version {
            Release::Deb13 => ("cockpit-session@", slice),
            Release::Deb12 if field(e, "MESSAGE").contains("rhost=::ffff:203.0.113.7 ") => {
                ("cockpit-wsinstance-http.service", "system.slice")
            }
            Release::Deb12 => (https_unit.as_str(), "system-cockpithttps.slice"),
        };
        assert_eq!(field(e, "_SYSTEMD_SLICE"), sl, "{e}");
        let u = field(e, "_SYSTEMD_UNIT");
        assert!(
            u.starts_with(unit) && u.ends_with(".service"),
            "want {unit}…: {e}"
        );
    }

    // the forged entries carry the units, slices and users they were written from (else
    // their not being selected below would prove nothing)
    for (addr, uid, unit, sl) in [
        ("192.0.2.61", "65534", "cockpit.service", "system.slice"),
        (
            "192.0.2.62",
            "65534",
            "cockpit-wsinstance-http.service",
            "system.slice",
        ),
        (
            "192.0.2.63",
            "65534",
            https_unit.as_str(),
            "system-cockpithttps.slice",
        ),
        ("192.0.2.64", "65534", "run-", slice),
        ("192.0.2.65", "0", "run-", "system.slice"),
        ("198.51.100.99", "0", "run-", slice),
    ] {
        let m = forged(addr);
        let e = all
            .iter()
            .find(|e| field(e, "MESSAGE") == m)
            .unwrap_or_else(|| panic!("the entry forged for {addr} is not in the journal"));
        assert!(
            field(e, "_UID") == uid
                && field(e, "_SYSTEMD_UNIT").starts_with(unit)
                && field(e, "_SYSTEMD_SLICE") == sl
                && field(e, "SYSLOG_IDENTIFIER") == "cockpit-session",
            "the entry forged for {addr}: want _UID={uid}, _SYSTEMD_UNIT={unit}…, \
             _SYSTEMD_SLICE={sl}: {e}"
        );
    }

    // what the suggested source selects: every real failure, no forged entry but root's
    // (in the sessions' slice, and in another unit through the group without a unit, which
    // the daemon drops below), nothing not logged by root
    let mut argv = vec!["journalctl", "-b", "-o", "json", "--no-pager"];
    argv.extend(&terms);
    let selected = entries(&c.run(&argv));
    let cursors: BTreeSet<&str> = selected.iter().map(|e| field(e, "__CURSOR")).collect();
    for e in &real {
        assert!(
            cursors.contains(field(e, "__CURSOR")),
            "{source} misses a failure: {e}"
        );
    }
    for e in &selected {
        assert_eq!(field(e, "_UID"), "0", "{source} selects {e}");
    }
    let forged_selected: Vec<&str> = selected
        .iter()
        .map(|e| field(e, "MESSAGE"))
        .filter(|m| m.contains("rhost=192.0.2.6") || m.contains("rhost=198.51.100.99"))
        .collect();
    assert_eq!(
        forged_selected,
        [forged("192.0.2.65"), forged("198.51.100.99")],
        "forged entries {source} selects"
    );

    // the daemon: bans exactly Cockpit's failures and root's entry in the sessions' slice;
    // root's in another unit, which journalctl selects by the group without a unit, it drops
    // (that group is for cockpit-session processes that exited before journald read their
    // unit: such entries have none)
    let bans = || -> BTreeSet<String> { banned_hosts(&sock).into_iter().collect() };
    let want: BTreeSet<String> = [
        "203.0.113.5",
        "203.0.113.6",
        "203.0.113.7",
        "2001:db8:7::/64",
        "198.51.100.99",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    let mut got = BTreeSet::new();
    let all_in = wait_until(Duration::from_secs(30), || {
        got = bans();
        want.is_subset(&got)
    });
    assert!(
        all_in && got == want,
        "bans: {got:?}, expected {want:?}; daemon:\n{}\njournal:\n{}",
        dlog(),
        journal_all()
    );
    // root's entry from another unit, dropped with a note (the daemon read past it: it
    // banned 198.51.100.99, logged after it)
    assert!(
        dlog().contains("were not read: they came from a unit it does not name"),
        "no note of the entry from another unit:\n{}",
        dlog()
    );
    assert!(
        daemon.try_wait().is_none(),
        "the daemon stopped:\n{}",
        dlog()
    );
    drop(daemon);
    drop(client);
    drop(c);
}

#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn real_cockpit_287_journal_source_selects_only_cockpit_sessions_failures() {
    run(Release::Deb12);
}

#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn real_cockpit_337_journal_source_selects_only_cockpit_sessions_failures() {
    run(Release::Deb13);
}

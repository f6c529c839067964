//! The journal source of filters/dovecot.toml (and of sieve.toml's Dovecot part), run for
//! real: `journal:_SYSTEMD_UNIT=dovecot.service _UID=0 _TRANSPORT=syslog`. No unit can be made
//! here (no systemd as pid 1), so what is checked is the part that does not come from the
//! unit: that every entry Dovecot sends to journald carries `_UID=0` and `_TRANSPORT=syslog`
//! (its processes hand their lines to the log process, which runs as root; the login
//! processes run as dovenull), so that the match with `_UID=0` reads every failure, and that
//! a local user's `logger -t dovecot` entry, which carries his uid, is not read. Twice, one
//! scenario table: Debian 12's Dovecot 2.3.19 (the machine's) sending to Debian 12's journald
//! (systemd 252), and Debian 13's 2.4.1 (test.sh's trixie tree, chrooted in a private overlay
//! of it) sending to Debian 13's journald (systemd 257, `common::journald`).
//!
//! journald runs in a private mount namespace (`Journald::start_on`); Dovecot runs in that
//! mount namespace (nsenter), in new pid, network and mount namespaces (`unshare`) whose /dev
//! is private (`private_dev`) and whose /dev/log is journald's
//! `/run/systemd/journal/dev-log`, bind-mounted (inside the Debian 13 chroot too, which binds
//! that /dev). Dovecot's configuration is real_sieve.rs's: ManageSieve only on 192.0.2.1:4190,
//! one passwd-file user alice, `log_path = syslog`, facility mail, the default instance name.
//! Clients (Debian's python3 in the same network namespace, raw sockets bound to a source
//! address): 203.0.113.5 three connections with a wrong password each, 203.0.113.6 an unknown
//! user, then 192.0.2.10 the right password.
//!
//! Asserted, from what journald stored (`journalctl -o json`): Dovecot's entries (identifier
//! `dovecot`, the startup line, one line per failed connection, the right login) all have
//! `_UID` 0 and `_TRANSPORT` syslog, none another uid. Then `nobody` writes, with `logger -t
//! dovecot -p mail.info`, the line Dovecot wrote for 203.0.113.6 with 192.0.2.66 in its place:
//! its entry has nobody's uid. The daemon (this build, in journald's namespace, null
//! firewall), started before Dovecot, with jails of filter dovecot: on `journal:_UID=0
//! _TRANSPORT=syslog` (the built-in source without the unit) it counts each failed connection
//! once (`status --json`: 3 for 203.0.113.5, 1 for 203.0.113.6) and never 192.0.2.66; on
//! `journal:SYSLOG_IDENTIFIER=dovecot` it counts 192.0.2.66 too. Nothing counts 192.0.2.10.
//!
//! Needs root, dovecot (dovecot-core) and managesieve-login (dovecot-managesieved) on the
//! machine, the trixie tree (test.sh), python3, bash, nsenter, unshare, runuser, logger, ip,
//! ss and chroot; fails loudly when they are missing. About 3 s each.

mod common;

use common::*;
use serde_json::Value;
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The built-in source without `_SYSTEMD_UNIT=dovecot.service`, which no process here has.
const ROOT_ONLY: &str = "journal:_UID=0 _TRANSPORT=syslog";
/// What any local user can write: the identifier alone.
const IDENT_ONLY: &str = "journal:SYSLOG_IDENTIFIER=dovecot";
const JOURNAL_DEV_LOG: &str = "/run/systemd/journal/dev-log";

/// Run as pid 1 of new pid, network and mount namespaces inside journald's mount namespace:
/// Dovecot, then the clients; writes the clients' exit code to $d/client.rc and keeps
/// Dovecot running until the test kills the namespace. $1 the test's directory, $2 the
/// Debian 13 tree or empty.
const SCRIPT: &str = r#"set -u
d="$1"; tree="$2"
sock=/run/systemd/journal/dev-log
[ -S "$sock" ] || { echo "no $sock in journald's namespace" >&2; exit 2; }
ip link set lo up
for a in 192.0.2.1 192.0.2.10 203.0.113.5 203.0.113.6; do
  ip addr add "$a/32" dev lo || exit 2
done
private_dev
: > /dev/log
mount --bind "$sock" /dev/log
# alice, the ManageSieve-only configuration and the Dovecot to run (common/real.rs)
sieve_dovecot "192.0.2.1"
"${dovecot[@]}" -F -c "$d/dovecot.conf" 2>"$d/dovecot.err" &
for _ in $(seq 100); do
  [ "$(ss -Hltn 'sport = :4190' | wc -l)" -ge 1 ] && break
  sleep 0.1
done
[ "$(ss -Hltn 'sport = :4190' | wc -l)" -ge 1 ] || { echo "dovecot did not listen" >&2; exit 4; }
timeout 30 python3 "$d/client.py" 2> "$d/client.err"
echo $? > "$d/client.rc"
wait
"#;

/// The clients (python3, in the namespace): the attacks at once, then the right login.
const CLIENT_PY: &str = r#"import base64, socket, sys, threading
errors = []

def connect(src):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(20)
    s.bind((src, 0))
    s.connect(("192.0.2.1", 4190))
    return s, s.makefile("rb")

def greeting(f):
    for _ in range(30):
        l = f.readline(4096)
        if not l or l.startswith(b"OK"):
            return l
    return b""

def login(src, user, pw, ok=False):
    s, f = connect(src)
    g = greeting(f)
    if not g.startswith(b"OK"):
        errors.append("%s: greeting %r" % (src, g))
        return
    cred = base64.b64encode(b"\0" + user + b"\0" + pw)
    s.sendall(b'AUTHENTICATE "PLAIN" "' + cred + b'"\r\n')
    r = f.readline(4096)
    if not r.startswith(b"OK" if ok else b"NO"):
        errors.append("%s: AUTHENTICATE %r -> %r" % (src, user, r))
    s.sendall(b"LOGOUT\r\n")
    r = f.readline(4096)
    if not r.startswith(b"OK"):
        errors.append("%s: LOGOUT -> %r" % (src, r))
    s.close()

ATTACKS = [
    ("203.0.113.5", b"alice", b"wrong1"),
    ("203.0.113.5", b"alice", b"wrong2"),
    ("203.0.113.5", b"alice", b"wrong3"),
    ("203.0.113.6", b"nosuch", b"wrong"),
]

def run(*args):
    try:
        login(*args)
    except Exception as e:
        errors.append("%r: %r" % (args[:1], e))

threads = [threading.Thread(target=run, args=a) for a in ATTACKS]
for t in threads:
    t.start()
for t in threads:
    t.join(25)
if any(t.is_alive() for t in threads):
    errors.append("a client did not finish in 25 s")
run("192.0.2.10", b"alice", b"correct-horse", True)
for e in errors:
    print("client error:", e, file=sys.stderr)
sys.exit(1 if errors else 0)
"#;

/// The daemon's configuration: jails of filter dovecot on the root-only source and on the
/// identifier alone, counting only.
fn daemon_config(dir: &Path) -> PathBuf {
    let mut text = null_config_head(dir);
    for (name, source) in [("root-only", ROOT_ONLY), ("ident-only", IDENT_ONLY)] {
        text.push_str(&format!(
            "[[jail]]\nname = \"{name}\"\nfilter = \"dovecot\"\nlogs = [{source:?}]\n\
             maxretry = 100\nfindtime = \"1h\"\nbantime = \"1h\"\n"
        ));
    }
    let path = dir.join("portcullis.toml");
    fs::write(&path, text).unwrap();
    path
}

#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn real_dovecot_journal_entries_are_roots_and_a_users_forgery_is_not_read() {
    run(Release::Deb12);
}

#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn real_dovecot_2_4_journal_257_entries_are_roots_and_a_users_forgery_is_not_read() {
    run(Release::Deb13);
}

fn run(release: Release) {
    require_root();
    for (program, package) in [
        ("bash", "bash"),
        ("python3", "python3"),
        ("nsenter", "util-linux"),
        ("runuser", "util-linux"),
        ("logger", "bsdutils"),
        ("unshare", "util-linux"),
        ("ip", "iproute2"),
        ("ss", "iproute2"),
    ] {
        require_program(program, package);
    }
    let tree = require_sieve_dovecot(release);
    let v24 = release == Release::Deb13;
    let dir = test_dir(if v24 { "dovecotj-2.4" } else { "dovecotj" });
    // Dovecot's unprivileged processes read the passwd file under it
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let d = dir.path().to_str().expect("utf-8 path").to_string();
    let path = |rel: &str| dir.path().join(rel);
    let read = |rel: &str| fs::read_to_string(path(rel)).unwrap_or_default();

    // journald, then the daemon reading it (its cursor at the journal's end), then Dovecot
    let journald = Journald::start_on(
        release,
        Some("[Journal]\nStorage=volatile\nRateLimitBurst=0\n"),
    );
    journald.assert_release();
    let config = daemon_config(dir.path());
    let socket = path("portcullis.sock");
    let mut daemon = journald.daemon(&config, &path("state"), &path("daemon.log"));

    fs::write(path("client.py"), CLIENT_PY).unwrap();
    fs::write(
        path("run.sh"),
        format!("{PRIVATE_SYSLOG_SH}{TRIXIE_SH}{SIEVE_DOVECOT_SH}{SCRIPT}"),
    )
    .unwrap();
    let mut server = journald.spawn_script(
        &path("run.sh"),
        &[d.clone(), tree],
        &path("run.stderr"),
        "dovecot -F",
    );
    let done = wait_until(Duration::from_secs(60), || {
        server.try_wait().is_some() || !read("client.rc").is_empty()
    });
    assert!(
        done && read("client.rc").trim() == "0",
        "the run did not end well (exit {:?}, client rc {:?}): {}\nclient: {}\ndovecot: {}",
        server.try_wait(),
        read("client.rc"),
        read("run.stderr"),
        read("client.err"),
        read("dovecot.err")
    );

    // ---- what journald stored: Dovecot's entries, every one root's, through syslog ----
    let (banner, aborted, login) = if v24 {
        (
            "Dovecot v2.4.",
            "managesieve-login: Login aborted: ",
            "managesieve-login: Logged in: user=<alice>, method=PLAIN, rip=192.0.2.10,",
        )
    } else {
        (
            "Dovecot v2.3.",
            "managesieve-login: Disconnected",
            "managesieve-login: Login: user=<alice>, method=PLAIN, rip=192.0.2.10,",
        )
    };
    let dovecot = || journald.messages(&["SYSLOG_IDENTIFIER=dovecot"]);
    let complete = |e: &[(String, Value)]| {
        e.iter().filter(|(m, _)| m.starts_with(aborted)).count() >= 4
            && e.iter().any(|(m, _)| m.starts_with(login))
    };
    let all_in = wait_until(Duration::from_secs(20), || complete(&dovecot()));
    let entries = dovecot();
    let shown = |e: &[(String, Value)]| {
        e.iter()
            .map(|(m, v)| {
                format!(
                    "  _UID={} _TRANSPORT={} {m}",
                    v["_UID"].as_str().unwrap_or("-"),
                    v["_TRANSPORT"].as_str().unwrap_or("-")
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert!(
        all_in,
        "Dovecot's failures and login are not all in the journal:\n{}\ndovecot: {}",
        shown(&entries),
        read("dovecot.err")
    );
    assert!(
        entries.iter().any(|(m, _)| m.contains(banner)),
        "not {banner}:\n{}",
        shown(&entries)
    );
    for (m, v) in &entries {
        assert_eq!(
            (v["_UID"].as_str(), v["_TRANSPORT"].as_str()),
            (Some("0"), Some("syslog")),
            "a Dovecot entry not from root through syslog: {m}\n{}",
            shown(&entries)
        );
    }
    let unknown = entries
        .iter()
        .map(|(m, _)| m)
        .find(|m| m.starts_with(aborted) && m.contains(", rip=203.0.113.6, "))
        .unwrap_or_else(|| panic!("no line for 203.0.113.6:\n{}", shown(&entries)))
        .clone();
    eprintln!(
        "real_dovecot_journal: {}, journald of systemd {}",
        entries
            .iter()
            .find(|(m, _)| m.contains(banner))
            .map(|(m, _)| m.as_str())
            .unwrap_or_default(),
        journald.versions().1
    );

    // ---- a local user's forgery: Dovecot's own line with another address ----
    let forged = unknown.replace(", rip=203.0.113.6, ", ", rip=192.0.2.66, ");
    journald
        .run(&[
            "runuser".into(),
            "-u".into(),
            "nobody".into(),
            "--".into(),
            "logger".into(),
            "-u".into(),
            JOURNAL_DEV_LOG.into(),
            "-t".into(),
            "dovecot".into(),
            "-p".into(),
            "mail.info".into(),
            forged.clone(),
        ])
        .check();
    let seen = wait_until(Duration::from_secs(10), || {
        dovecot().iter().any(|(m, _)| *m == forged)
    });
    let after = dovecot();
    assert!(
        seen,
        "the forged entry is not in the journal:\n{}",
        shown(&after)
    );
    let nobody_uid = String::from_utf8(
        run_with_timeout(
            std::process::Command::new("id").args(["-u", "nobody"]),
            None,
            Duration::from_secs(10),
        )
        .check()
        .stdout,
    )
    .unwrap();
    for (m, v) in after.iter().filter(|(m, _)| *m == forged) {
        assert_eq!(
            v["_UID"].as_str(),
            Some(nobody_uid.trim()),
            "the forged entry's uid: {m}"
        );
    }

    // ---- what the daemon counted ----
    let want_root: BTreeMap<String, u32> = [("203.0.113.5", 3), ("203.0.113.6", 1)]
        .into_iter()
        .map(|(a, n)| (ban_of(a), n))
        .collect();
    let mut want_ident = want_root.clone();
    want_ident.insert(ban_of("192.0.2.66"), 1);
    let mut got = BTreeMap::new();
    let counted = wait_until(Duration::from_secs(20), || {
        got = failing(&socket);
        got.get("root-only") == Some(&want_root) && got.get("ident-only") == Some(&want_ident)
    });
    assert!(
        counted,
        "what each jail counts: {got:#?}\nwanted root-only {want_root:?}, ident-only \
         {want_ident:?}\njournal:\n{}\ndaemon:\n{}",
        shown(&after),
        read("daemon.log")
    );
    assert!(daemon.try_wait().is_none(), "the daemon exited");
    server.kill();
    daemon.kill();
}

//! The `sieve` filter against the real Dovecot ManageSieve: Debian 12's (2.3.19, the
//! machine's) and Debian 13's (2.4.1, test.sh's trixie tree, run with chroot in a private
//! overlay of it: common/real.rs `trixie_mount`, with 2.4's configuration syntax), the same
//! scenarios and one table of what must count. Dovecot with
//! Pigeonhole's managesieve-login (dovecot-managesieved) runs in its own pid, mount and
//! network namespace (`unshare`), from its own configuration in the test's directory
//! (`base_dir` and `state_dir` there: the machine's /run/dovecot and /var/lib/dovecot are not
//! touched), serving only the ManageSieve protocol on port 4190 of 192.0.2.1 and 2001:db8::1,
//! `disable_plaintext_auth = no`, one passwd-file user `alice` (passdb and userdb), the
//! default instance name (so the syslog ident is `dovecot`, as on a real server) and logging
//! through syslog(3) (`log_path = syslog`, facility mail) to a private rsyslogd (a private /dev
//! whose /dev/log is its socket), writing rsyslog's traditional file format.
//!
//! Clients (Debian's python3, raw sockets bound to a source address, speaking ManageSieve:
//! the greeting, then `AUTHENTICATE "PLAIN" "base64(\0user\0pass)"`, then LOGOUT), all at
//! once: 203.0.113.5 three connections with a wrong password each; 203.0.113.13 one
//! connection with two wrong passwords; 203.0.113.6 an unknown user; 2001:db8::7 a wrong
//! password over IPv6; 203.0.113.8, .9 and .11 hostile user names (`admin rip=192.0.2.66`,
//! `x, rip=192.0.2.66, lip=1`, and `x>, method=PLAIN, rip=192.0.2.66, lip=192.0.2.1,
//! session=<AAAA`, which forges the rest of a whole line); 203.0.113.12 connects and says
//! nothing. Then 192.0.2.10 logs in with the right password.
//!
//! `portcullis test --filter sieve --json` must count each failed connection's
//! `managesieve-login: Disconnected: ... (auth failed, N attempts in S secs): user=<...>, ...
//! rip=A, lip=L, session=<...>` line once (rule `login-failed`), the silent one as `no-auth`,
//! for the address Dovecot wrote in rip= (never 192.0.2.66), and nothing for the right login;
//! `portcullis replay` with `maxretry = 3` bans 203.0.113.5 alone. The first run found the
//! filter read every line as written (no change needed), and that Dovecot writes its
//! `instance_name` as the syslog ident (a second instance named otherwise is not `dovecot`).
//! 2.4 writes "Login aborted: Logged out (auth failed, N attempts in S secs) (auth_failed):
//! user=<...>, ..." where 2.3 wrote "Disconnected: Aborted login by logging out (...)",
//! "Login aborted: Connection closed (no auth attempts ...) (no_auth_attempts)" for the silent
//! client and "Logged in:" for the right login: the same (address, rule) pairs, no pattern
//! change.
//!
//! Needs root, dovecot (dovecot-core), managesieve-login (dovecot-managesieved), python3,
//! rsyslogd, iproute2's ip and util-linux's unshare, and for the second run chroot and the
//! trixie tree (test.sh installs them); fails loudly when they are missing. Runs in about 6 s
//! each (Dovecot 2.3's auth penalty delays the later tries from an address that already
//! failed by up to 4 s; 2.4's run took 1 s).

mod common;

use common::*;
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;

/// Run as pid 1 of the new pid, mount and network namespace (bash): every process of the
/// run is in it and dies with it; $1 is the test's directory.
const SCRIPT: &str = r#"set -u
d="$1"; tree="$2"
ip link set lo up
for a in 192.0.2.1 192.0.2.10 203.0.113.5 203.0.113.6 203.0.113.8 203.0.113.9 203.0.113.11 \
         203.0.113.12 203.0.113.13; do
  ip addr add "$a/32" dev lo || exit 2
done
for a in 2001:db8::1 2001:db8::7; do ip addr add "$a/128" dev lo nodad || exit 2; done
# a private /dev whose /dev/log is a private rsyslogd's socket (common/netns.rs)
private_syslog "$d"
# alice, the ManageSieve-only configuration and the Dovecot to run (common/real.rs)
sieve_dovecot "192.0.2.1, 2001:db8::1"
"${dovecot[@]}" -F -c "$d/dovecot.conf" 2>"$d/dovecot.err" &
for _ in $(seq 100); do
  [ "$(ss -Hltn 'sport = :4190' | wc -l)" -ge 2 ] && break
  sleep 0.1
done
[ "$(ss -Hltn 'sport = :4190' | wc -l)" -ge 2 ] || { echo "dovecot did not listen" >&2; exit 4; }
timeout 30 python3 "$d/client.py" 2> "$d/client.err" || { echo "client failed" >&2; exit 5; }
# every session's last line: the ten disconnects, the login and its logout (2.3
# "managesieve(alice)...: Disconnected: Logged out", 2.4 "sieve(alice)...")
for _ in $(seq 50); do
  [ "$(grep -c "managesieve-login: " "$d/syslog" 2>/dev/null)" -ge 11 ] &&
    grep -q "sieve(alice).*Logged out" "$d/syslog" && break
  sleep 0.1
done
kill %2
wait %2
kill %1
wait
"#;

/// The clients (python3, run inside the namespace): every attack at once (Dovecot's auth
/// penalty delays each further attempt from an address), then the legitimate login.
const CLIENT_PY: &str = r#"import base64, socket, sys, threading
errors = []

def connect(src):
    fam = socket.AF_INET6 if ":" in src else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.settimeout(20)
    s.bind((src, 0))
    s.connect(("2001:db8::1" if ":" in src else "192.0.2.1", 4190))
    return s, s.makefile("rb")

def greeting(f):
    # capability lines, then OK
    for _ in range(30):
        l = f.readline(4096)
        if not l or l.startswith(b"OK"):
            return l
    return b""

def quoted(b):
    return b'"' + b.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'

def login(src, attempts, ok=False):
    s, f = connect(src)
    g = greeting(f)
    if not g.startswith(b"OK"):
        errors.append("%s: greeting %r" % (src, g))
        return
    for user, pw in attempts:
        cred = base64.b64encode(b"\0" + user + b"\0" + pw)
        s.sendall(b'AUTHENTICATE "PLAIN" ' + quoted(cred) + b"\r\n")
        r = f.readline(4096)
        if not r.startswith(b"OK" if ok else b"NO"):
            errors.append("%s: AUTHENTICATE %r -> %r" % (src, user, r))
    s.sendall(b"LOGOUT\r\n")
    r = f.readline(4096)
    if not r.startswith(b"OK"):
        errors.append("%s: LOGOUT -> %r" % (src, r))
    s.close()

def silent(src):
    s, f = connect(src)
    greeting(f)
    s.close()

ATTACKS = [
    (login, ("203.0.113.5", [(b"alice", b"wrong1")])),
    (login, ("203.0.113.5", [(b"alice", b"wrong2")])),
    (login, ("203.0.113.5", [(b"alice", b"wrong3")])),
    (login, ("203.0.113.13", [(b"alice", b"wrong1"), (b"alice", b"wrong2")])),
    (login, ("203.0.113.6", [(b"nosuch", b"wrong")])),
    (login, ("2001:db8::7", [(b"alice", b"wrong")])),
    (login, ("203.0.113.8", [(b"admin rip=192.0.2.66", b"wrong")])),
    (login, ("203.0.113.9", [(b"x, rip=192.0.2.66, lip=1", b"wrong")])),
    (login, ("203.0.113.11",
             [(b"x>, method=PLAIN, rip=192.0.2.66, lip=192.0.2.1, session=<AAAA", b"wrong")])),
    (silent, ("203.0.113.12",)),
]

def run(fn, args):
    try:
        fn(*args)
    except Exception as e:  # reported below: the run fails
        errors.append("%s%r: %r" % (fn.__name__, args[:1], e))

threads = [threading.Thread(target=run, args=a) for a in ATTACKS]
for t in threads:
    t.start()
for t in threads:
    t.join(25)
if any(t.is_alive() for t in threads):
    errors.append("a client did not finish in 25 s")
run(login, ("192.0.2.10", [(b"alice", b"correct-horse")], True))
for e in errors:
    print("client error:", e, file=sys.stderr)
sys.exit(1 if errors else 0)
"#;

// The Dovecot under test: Debian 12's (the machine's, 2.3.19) or Debian 13's (the trixie
// tree, 2.4.1, run with chroot).

/// Runs every scenario against `version`'s Dovecot and checks what it wrote and what the
/// filter counts of it.
fn run(version: Release) {
    require_root();
    require_program("python3", "python3");
    require_program("rsyslogd", "rsyslog");
    require_program("ip", "iproute2");
    require_program("ss", "iproute2");
    require_program("unshare", "util-linux");
    let tree = require_sieve_dovecot(version);
    let v24 = version == Release::Deb13;
    let dir = test_dir(if v24 { "sieve-2.4" } else { "sieve" });
    // Dovecot's unprivileged processes (auth, login) read the passwd file under it
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    fs::write(dir.path().join("client.py"), CLIENT_PY).unwrap();
    let shown = [
        ("client", "client.err"),
        ("dovecot", "dovecot.err"),
        ("log", "syslog"),
    ];
    let script = format!("{PRIVATE_SYSLOG_SH}{TRIXIE_SH}{SIEVE_DOVECOT_SH}{SCRIPT}");
    run_script_ok("dovecot", dir.path(), &script, &[tree.as_ref()], &shown);
    let read = |name: &str| fs::read_to_string(dir.path().join(name)).unwrap_or_default();
    let sys = dir.path().join("syslog");
    let text = read("syslog");

    // what Dovecot wrote: one disconnect line per failed connection, the login of the right
    // password, under the ident `dovecot`, the hostile names inside user=<...>. 2.3 writes
    // "Disconnected: Aborted login by logging out (auth failed, 1 attempts in 0 secs): ..."
    // and "Login: user=<...>"; 2.4 "Login aborted: Logged out (auth failed, 1 attempts in
    // 0 secs) (auth_failed): ...", "Login aborted: Connection closed (no auth attempts in 0
    // secs) (no_auth_attempts): user=<>, ..." and "Logged in: user=<...>"
    let (banner, aborted, login) = if v24 {
        (
            "Dovecot v2.4.",
            "managesieve-login: Login aborted: ",
            "Logged in",
        )
    } else {
        ("Dovecot v2.3.", "managesieve-login: Disconnected", "Login")
    };
    assert!(text.contains(banner), "not {banner}:\n{text}");
    assert_eq!(
        text.matches(aborted).count(),
        10,
        "ten failed or silent connections expected:\n{text}"
    );
    let right = format!(
        " dovecot: managesieve-login: {login}: user=<alice>, method=PLAIN, rip=192.0.2.10, lip=192.0.2.1,"
    );
    assert!(
        text.contains(&right),
        "the right login is not in the log:\n{text}"
    );
    if v24 {
        for shape in [
            "Login aborted: Logged out (auth failed, 1 attempts in ",
            " secs) (auth_failed): user=<alice>, method=PLAIN, rip=203.0.113.5,",
            "Login aborted: Connection closed (no auth attempts in ",
            " secs) (no_auth_attempts): user=<>, rip=203.0.113.12,",
        ] {
            assert!(
                text.contains(shape),
                "Dovecot 2.4 did not write {shape}:\n{text}"
            );
        }
    }
    assert!(
        text.contains("(auth failed, 2 attempts in ") && text.contains("rip=203.0.113.13, "),
        "the two-attempt connection is not in the log:\n{text}"
    );
    for name in [
        "user=<admin rip=192.0.2.66>, method=PLAIN, rip=203.0.113.8, lip=192.0.2.1,",
        "user=<x, rip=192.0.2.66, lip=1>, method=PLAIN, rip=203.0.113.9, lip=192.0.2.1,",
        "user=<x>, method=PLAIN, rip=192.0.2.66, lip=192.0.2.1, session=<AAAA>, method=PLAIN, rip=203.0.113.11, lip=192.0.2.1,",
    ] {
        assert!(
            text.contains(name),
            "the hostile user name is not in the log as expected ({name}):\n{text}"
        );
    }

    let want: BTreeMap<String, Vec<String>> = [
        ("203.0.113.5", vec!["login-failed"; 3]),
        ("203.0.113.13", vec!["login-failed"]),
        ("203.0.113.6", vec!["login-failed"]),
        ("2001:db8::7", vec!["login-failed"]),
        ("203.0.113.8", vec!["login-failed"]),
        ("203.0.113.9", vec!["login-failed"]),
        ("203.0.113.11", vec!["login-failed"]),
        ("203.0.113.12", vec!["no-auth"]),
    ]
    .into_iter()
    .map(|(h, r)| (h.to_string(), r.into_iter().map(String::from).collect()))
    .collect();
    let got = rules_by_host("sieve", &sys);
    assert_eq!(got, want, "what counted, per address; log:\n{text}");
    assert!(
        !got.contains_key("192.0.2.66") && !got.contains_key("192.0.2.10"),
        "{got:#?}"
    );

    // a jail with maxretry 3 bans the client with three failed connections, and only it
    let bans = replay_jail(dir.path(), "sieve", &sys, "normal", 3);
    assert_eq!(
        bans.into_iter().collect::<Vec<_>>(),
        vec!["203.0.113.5".to_string()],
        "bans; log:\n{text}"
    );
}

#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn real_managesieve_failures_count_for_the_address_dovecot_wrote() {
    run(Release::Deb12);
}

#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn real_managesieve_2_4_failures_count_for_the_address_dovecot_wrote() {
    run(Release::Deb13);
}

//! The `tcpwrappers` filter against the real tcpd, twice: Debian 12's (tcp_wrappers 7.6.q-32,
//! the machine's) and Debian 13's (7.6.q-36, test.sh's trixie-c tree: tcpd and its libwrap
//! run with chroot in a private overlay of it, common/real.rs `trixie_mount`), the same
//! scenarios and one table of what counts for both (7.6.q-36 writes the same lines). In its
//! own pid, mount and network namespace (`unshare`), a private /etc (the machine's overlaid,
//! `common::netns::PRIVATE_ETC_SH`, or the tree's) holds the access tables: hosts.deny `ALL: ALL`, hosts.allow
//! lets 198.51.100.7 and 2001:db8:77::7 in and, for 203.0.113.6 and 203.0.113.9, asks the
//! client's ident server (the `rfc931` option) before it denies them; /etc/hosts gives
//! 203.0.113.8 a name holding another address (`evil.198.51.100.7.example`, both lookups
//! agree, so libwrap writes the name). A small inetd (python3) accepts on 192.0.2.23 and
//! [2001:db8::23] port 23 and runs tcpd with the connection as its standard input and
//! `argv[0]` the path of a stand-in daemon (what tcpd runs when the tables allow the client;
//! Debian 13's through `chroot TREE bash -c 'exec -a "$0" /usr/sbin/tcpd' DAEMON`), tcpd
//! logging through syslog(3) to a private rsyslogd (`common::netns::PRIVATE_SYSLOG_SH`).
//!
//! Clients (python3, the source address bound): 203.0.113.5 connects three times,
//! 2001:db8:66::6 twice, 203.0.113.6 and 203.0.113.9 once each while their ident servers
//! answer the user names `x(198.51.100.7)` and `)(198.51.100.7)` (libwrap writes
//! `USER@ADDRESS` as the client), 203.0.113.8 once (written by its name); 198.51.100.7 and
//! 2001:db8:77::7 connect once and get the daemon's greeting.
//!
//! `portcullis test --filter tcpwrappers --json` on the syslog must count each refusal for
//! the address libwrap formats itself (in the parentheses), never the address inside an ident
//! user name or a host name, and nothing for the allowed clients' `connect from` lines;
//! `portcullis replay` with `maxretry = 2` bans 203.0.113.5 and 2001:db8:66::/64 only.
//!
//! Needs root, tcpd, rsyslogd, python3 and util-linux's unshare (test.sh installs them), and
//! for the second run chroot and the trixie-c tree; fails loudly when they are missing. tcpd sleeps 5 s after a refusal (libwrap's
//! clean_exit()), so the clients run at once and wait 2 s at most: about 3 s.

mod common;

use common::*;
use std::fs;

/// A minimal inetd: accepts on each address given (after $1, a root to chroot into, empty for
/// none, and $2, the daemon), runs tcpd with the connection as fds 0 to 2 and argv[0] the real
/// daemon's path (tcpd executes argv[0] when the tables allow the client; through chroot,
/// bash's `exec -a` sets it); writes $0.ready when it listens.
const INETD: &str = r#"import os, select, signal, socket, sys
root, daemon = sys.argv[1], sys.argv[2]
socks = []
for a in sys.argv[3:]:
    s = socket.socket(socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((a, 23))
    s.listen(16)
    socks.append(s)
signal.signal(signal.SIGCHLD, signal.SIG_IGN)
open(sys.argv[0] + ".ready", "w").close()
while True:
    for s in select.select(socks, [], [])[0]:
        c, _ = s.accept()
        if os.fork() == 0:
            for fd in (0, 1, 2):
                os.dup2(c.fileno(), fd)
            if root:
                os.execv("/usr/sbin/chroot", ["chroot", root, "/bin/bash", "-c",
                                              'exec -a "$0" /usr/sbin/tcpd', daemon])
            os.execv("/usr/sbin/tcpd", [daemon])
        c.close()
"#;

/// An ident (RFC 1413) server on $1 port 113 answering every query with the user name $2;
/// writes $0.$1.ready when it listens.
const IDENT: &str = r#"import socket, sys
addr, user = sys.argv[1], sys.argv[2]
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((addr, 113))
s.listen(4)
open(sys.argv[0] + "." + addr + ".ready", "w").close()
while True:
    c, _ = s.accept()
    q = c.recv(200).decode(errors="replace").strip()
    c.sendall(("%s : USERID : UNIX : %s\r\n" % (q, user)).encode())
    c.close()
"#;

/// One connection from $1 to $2 port 23: what the server sent, waiting at most $4 seconds
/// for each read, appended to $3 (`b'...'`, or `timeout`).
const CLIENT: &str = r#"import socket, sys
s = socket.socket(socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET)
s.bind((sys.argv[1], 0))
s.settimeout(float(sys.argv[4]))
s.connect((sys.argv[2], 23))
got = b""
try:
    while True:
        x = s.recv(100)
        if not x:
            break
        got += x
    out = repr(got)
except socket.timeout:
    out = "timeout " + repr(got)
open(sys.argv[3], "a").write(out + "\n")
"#;

/// Run as pid 1 of the new pid, mount and network namespace (bash): every process of the
/// run is in it and dies with it; $1 is the test's directory, $2 the Debian 13 tree (empty:
/// the machine's tcpd). (After [`PRIVATE_ETC_SH`], [`PRIVATE_SYSLOG_SH`] and [`TRIXIE_SH`].)
const SCRIPT: &str = r#"set -u
d="$1"; tree="$2"
ip link set lo up
for a in 192.0.2.23 198.51.100.7 203.0.113.5 203.0.113.6 203.0.113.8 203.0.113.9; do
  ip addr add "$a/32" dev lo || exit 2
done
for a in 2001:db8::23 2001:db8:66::6 2001:db8:77::7; do ip addr add "$a/128" dev lo nodad || exit 2; done
mkdir -p "$d/etc-src" "$d/bin" "$d/out"
printf 'ALL: ALL\n' > "$d/etc-src/hosts.deny"
cat > "$d/etc-src/hosts.allow" <<A
in.telnetd: 198.51.100.7 [2001:db8:77::7]
in.telnetd: 203.0.113.6 203.0.113.9 : rfc931 3 : deny
A
# a private /dev whose /dev/log is a private rsyslogd's socket (common/netns.rs)
private_syslog "$d"
# the tcpd to run: the machine's (Debian 12) with a private /etc, or Debian 13's in a private
# overlay of its tree (common/real.rs trixie_mount: its /etc, /run and /tmp private, $d at
# the same path), through chroot (the inetd and the clients stay the machine's)
r=/; root=
if [ -n "$tree" ]; then
  r="$d/root"; root="$r"
  trixie_mount "$tree" "$r" "$d/trixie" || exit 4
fi
cp "$r/etc/hosts" "$d/etc-src/hosts"
printf '203.0.113.8 evil.198.51.100.7.example\n' >> "$d/etc-src/hosts"
if [ -n "$tree" ]; then
  cp "$d/etc-src/hosts.deny" "$d/etc-src/hosts.allow" "$d/etc-src/hosts" "$r/etc/" || exit 4
else
  private_etc "$d/etc-ov" "$d/etc-src" hosts.deny hosts.allow hosts || exit 2
fi
dpkg-query --admindir="$r/var/lib/dpkg" -W -f '${Version}' tcpd > "$d/version"
printf '#!/bin/sh\necho welcome\n' > "$d/bin/in.telnetd"
chmod +x "$d/bin/in.telnetd"
python3 "$d/inetd.py" "$root" "$d/bin/in.telnetd" 192.0.2.23 2001:db8::23 2> "$d/inetd.err" &
python3 "$d/ident.py" 203.0.113.6 'x(198.51.100.7)' 2> "$d/ident6.err" &
python3 "$d/ident.py" 203.0.113.9 ')(198.51.100.7)' 2> "$d/ident9.err" &
for _ in $(seq 100); do
  [ -e "$d/inetd.py.ready" ] && [ -e "$d/ident.py.203.0.113.6.ready" ] &&
    [ -e "$d/ident.py.203.0.113.9.ready" ] && break
  sleep 0.05
done
[ -e "$d/inetd.py.ready" ] || { echo "the inetd did not start" >&2; exit 4; }
# c SRC SERVER [WAIT]: one client; a refused one waits 2 s (tcpd holds it 5 s), an allowed
# one up to 10 s for the greeting and the close, which go through inetd, tcpd and the daemon
# (each a new process, through chroot and bash for Debian 13's): 2 s was close on a loaded
# machine, and the test asserts the greeting exactly
c() { timeout 25 python3 "$d/client.py" "$1" "$2" "$d/out/$1" "${3:-2}" 2>> "$d/out/$1.err"; }
p=
for _ in 1 2 3; do c 203.0.113.5 192.0.2.23 & p="$p $!"; done
for _ in 1 2; do c 2001:db8:66::6 2001:db8::23 & p="$p $!"; done
for a in 203.0.113.6 203.0.113.8 203.0.113.9; do c "$a" 192.0.2.23 & p="$p $!"; done
c 198.51.100.7 192.0.2.23 10 & p="$p $!"
c 2001:db8:77::7 2001:db8::23 10 & p="$p $!"
for j in $p; do wait "$j"; done
for _ in $(seq 100); do
  [ "$(grep -c 'in.telnetd\[[0-9]*\]: .*connect from' "$d/syslog" 2>/dev/null)" -ge 9 ] && break
  sleep 0.05
done
kill %1 %2 %3 %4
wait
"#;

// The tcpd under test: Debian 12's (the machine's, 7.6.q-32) or Debian 13's (the trixie-c
// tree, 7.6.q-36, run with chroot).

/// Runs every scenario against `version`'s tcpd and libwrap (the inetd and the clients are
/// the machine's) and checks what the clients got, what libwrap wrote and what the filter
/// counts of it.
fn run(version: Release) {
    require_root();
    require_program("tcpd", "tcpd");
    require_program("python3", "python3");
    require_program("rsyslogd", "rsyslog");
    require_program("unshare", "util-linux");
    let tree = match version {
        Release::Deb12 => String::new(),
        Release::Deb13 => {
            require_program("chroot", "coreutils");
            trixie_c_root(&["usr/sbin/tcpd", "bin/bash"])
                .display()
                .to_string()
        }
    };
    let dir = test_dir(match version {
        Release::Deb12 => "tcpd",
        Release::Deb13 => "tcpd-7.6.q-36",
    });
    let d = dir.path();
    fs::write(d.join("inetd.py"), INETD).unwrap();
    fs::write(d.join("ident.py"), IDENT).unwrap();
    fs::write(d.join("client.py"), CLIENT).unwrap();
    let script = format!("{PRIVATE_ETC_SH}{PRIVATE_SYSLOG_SH}{TRIXIE_SH}{SCRIPT}");
    let shown = [("inetd", "inetd.err"), ("syslog", "syslog")];
    run_script_ok("tcpd", d, &script, &[tree.as_ref()], &shown);
    let read = |name: &str| fs::read_to_string(d.join(name)).unwrap_or_default();
    let release = match version {
        Release::Deb12 => "7.6.q-32",
        Release::Deb13 => "7.6.q-36",
    };
    assert_eq!(read("version"), release, "tcpd");
    let text = read("syslog");

    // what the clients saw: the daemon's greeting for the allowed two, nothing for the rest
    for ok in ["198.51.100.7", "2001:db8:77::7"] {
        assert_eq!(read(&format!("out/{ok}")), "b'welcome\\n'\n", "{ok}");
    }
    for (refused, n) in [
        ("203.0.113.5", 3),
        ("2001:db8:66::6", 2),
        ("203.0.113.6", 1),
        ("203.0.113.8", 1),
        ("203.0.113.9", 1),
    ] {
        let got = read(&format!("out/{refused}"));
        assert_eq!(got.lines().count(), n, "{refused}: {got}");
        assert!(!got.contains("welcome"), "{refused} was let in: {got}");
    }
    // what libwrap wrote: the ident users and the name, each before the address it formats
    for line in [
        "refused connect from x(198.51.100.7)@203.0.113.6 (203.0.113.6)",
        "refused connect from )(198.51.100.7)@203.0.113.9 (203.0.113.9)",
        "refused connect from evil.198.51.100.7.example (203.0.113.8)",
        "connect from 198.51.100.7 (198.51.100.7)",
        "connect from 2001:db8:77::7 (2001:db8:77::7)",
    ] {
        assert!(text.contains(line), "not in the syslog: {line}\n{text}");
    }

    let log = d.join("syslog");
    let got = rules_by_host("tcpwrappers", &log);
    assert_eq!(
        got,
        want_rules(&[
            ("203.0.113.5", &[("refused", 3)]),
            ("2001:db8:66::6", &[("refused", 2)]),
            ("203.0.113.6", &[("refused", 1)]),
            ("203.0.113.8", &[("refused", 1)]),
            ("203.0.113.9", &[("refused", 1)]),
        ]),
        "syslog:\n{text}"
    );

    let bans = replay_jail(d, "tcpwrappers", &log, "normal", 2);
    assert_eq!(
        bans.into_iter().collect::<Vec<_>>(),
        vec!["2001:db8:66::/64".to_string(), "203.0.113.5".to_string()],
        "bans\nsyslog:\n{text}"
    );
}

#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn real_tcpd_refusals_count_for_the_address_libwrap_writes() {
    run(Release::Deb12);
}

#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn real_tcpd_7_6_q_36_refusals_count_for_the_address_libwrap_writes() {
    run(Release::Deb13);
}

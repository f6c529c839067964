//! Issue 11: the `vsftpd`, `proftpd` and `pure-ftpd` filters against the real servers of
//! Debian 12 and Debian 13, the same scenarios and one table of expected counts for both.
//! Debian 12's: vsftpd is installed by test.sh; Debian's proftpd-core and pure-ftpd conflict
//! with it (each Conflicts: ftp-server), so test.sh downloads their .debs (and the libraries
//! the machine lacks) and unpacks them with `dpkg -x` under /var/cache/portcullis-test/proftpd
//! and /var/cache/portcullis-test/pure-ftpd (PORTCULLIS_PROFTPD_ROOT and
//! PORTCULLIS_PUREFTPD_ROOT elsewhere), never installed. Debian 13's (vsftpd 3.0.5, ProFTPD
//! 1.3.8c, Pure-FTPd 1.0.50-2.2) come from test.sh's trixie trees (common/real.rs
//! `trixie_root`: vsftpd installed, Pure-FTPd unpacked under /opt/unpacked/pure-ftpd, its
//! libraries installed; `trixie_b_root`: proftpd-core installed, loading its mod_delay, mod_ls
//! and mod_xfer as Debian's modules.conf does) and run with chroot in a private overlay of
//! the tree (`trixie_mount`, inside the same private mount namespace as below; the test's
//! /etc files copied into the overlay's /etc).
//!
//! Every server runs as root in a network namespace (192.0.2.1 and 2001:db8::1) and in a
//! private mount namespace (`unshare --mount`) where /etc is an overlay whose upper layer, on
//! a private tmpfs, holds the test's own passwd, group, shadow (accounts alice, bob, carol,
//! dave, erin and a root password, never created on the host), ftpusers (root, dave) and
//! pam.d/vsftpd (pam_unix with `nodelay`, so that a failure costs no 2 s). Not a bind mount
//! of each file: when the host replaces its /etc/shadow (chpasswd renames shadow+ over it, as
//! `common::netns::ensure_test_user` of any other test process does; useradd does the same to
//! passwd and group), the kernel drops the bind mounts whose mountpoint was renamed over in
//! every other mount namespace, and the server reads the host's file from then on: alice
//! unknown, her right password answered "530 Login authentication failed" (what made
//! Pure-FTPd fail 2 runs in 4 when it ran at its own speed: its legitimate login came 75 s
//! after its start). /dev is a private tmpfs holding the device nodes
//! and a /dev/log that leads to a private rsyslogd of that server (its own configuration,
//! socket and file; one per server, so that each log holds one server's lines). Seven
//! servers of each release (Debian 13's on the ports of Debian 12's + 10000):
//!
//! * vsftpd (3.0.3, 3.0.5) writing its own vsftpd.log (`xferlog_std_format=NO`, `log_ftp_protocol`),
//!   its PAM lines to syslog (rsyslog's default #NNN escaping of control characters);
//! * vsftpd with `syslog_enable=YES` (escaping rsyslog), and again through an rsyslogd that
//!   does not escape (`parser.escapeControlCharactersOnReceive="off"`: what a raw reader of
//!   /dev/log sees);
//! * ProFTPD (1.3.8, 1.3.8c) with a SystemLog file, and with syslog (escaping rsyslog);
//! * Pure-FTPd 1.0.50 through syslog, escaping and not. It sleeps 3 to 6 s after a failed
//!   password and 3 s more for each further failure of the session (src/ftpd.c
//!   randomsleep()): it runs under Debian's libfaketime at 50 times the speed, so that the
//!   session reaching "Too many authentication failures" (six failures, 63 to 81 s at its
//!   own speed) takes under 2 s. Its log lines' times are rsyslog's (imuxsock ignores the
//!   sender's timestamp). It runs with `-c 400`: its listen backlog is 3 + maxclients / 8,
//!   9 with the default 50, and the 21 IPv4 scenarios connect at once; the accept queue
//!   overflowed, and a connection the kernel had answered with a SYN cookie was dropped at
//!   its last ACK while the client believed it open: no banner came until the client's FIN
//!   (the "reply never came" once blamed on libfaketime: the same at its own speed).
//!
//! Clients in a second namespace (Debian's python3, raw sockets: every byte of a command is
//! the test's) run the scenarios against each server, one source address per scenario
//! (203.0.113.N, 2001:db8::N): a wrong password for an existing user, an unknown user,
//! anonymous refused, too many failures in one session (the servers' own limits), root
//! (ftpusers, RootLogin off, Pure-FTPd's minimum uid), a refused user (vsftpd's userlist,
//! ProFTPD's <Limit LOGIN> DenyUser), a user in ftpusers, a user without a valid shell,
//! a client refused at connect (ProFTPD's <Limit LOGIN> Deny from), commands before login; and injections: a CR followed by a forged log line of that server
//! in USER and in PASS, a forged syslog line between two NULs in USER, a typed "from
//! ADDRESS" in USER, NUL, ESC and CR in USER and PASS, a 300-byte user name, the legitimate
//! address as user name. The legitimate client 198.51.100.7 logs in (alice) and must never
//! be named.
//!
//! What the servers wrote (asserted): vsftpd's own file has every control character as '?';
//! its syslog lines are raw, and it turns a NUL into a LF, so that through the rsyslogd that
//! does not escape, the USER `x<NUL>LINE<NUL>y` writes LINE (a FAIL LOGIN naming
//! 198.51.100.7) as a line of its own: the one expected report of the legitimate address,
//! asserted as the demonstration that the vsftpd filter must not read such a syslog (its
//! header says so). ProFTPD writes a CR raw in its SystemLog and cuts the name at a NUL;
//! Pure-FTPd writes control characters as '_'.
//!
//! Then `portcullis test --filter NAME --json` on each log: the (address, rule) pairs must
//! be exactly the listed ones, each from its scenario's address; nothing else names the
//! legitimate client or 192.0.2.66 (the addresses typed in client fields). `portcullis
//! replay` with a jail of mode normal or aggressive (the three filters have rules of mode
//! normal only), maxretry 1, bans exactly the scenarios counted, of mode ddos nobody; with maxretry one above the failures of
//! the session that reached the server's limit, nobody (its closing line does not count on
//! top).
//! The `pam-generic` filter (for services without a filter of their own) on vsftpd's syslog:
//! pam_unix's failure lines, the same addresses and counts as the vsftpd filter's `pam` rule.
//!
//! Debian 13's servers wrote the same lines as Debian 12's for every scenario (the release is
//! asserted by vsftpd's banner and ProFTPD's start line); their Linux-PAM 1.7.0 adds two lines
//! without an address, counted by no filter (asserted: unix_chkpwd's "password check failed
//! for user (bob)", pam_shells' "User has an invalid shell").
//!
//! Needs root, vsftpd, rsyslogd, libfaketime, the unpacked ProFTPD and Pure-FTPd, the two
//! Debian 13 trees (test.sh) and python3; fails loudly when they are missing. Runs in about
//! 9 s.

mod common;

use common::*;
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

const SERVER: &str = "192.0.2.1";
const SERVER_V6: &str = "2001:db8::1";
const LEGIT: &str = "198.51.100.7";
const PYTHON: &str = "/usr/bin/python3";
const VSFTPD: &str = "/usr/sbin/vsftpd";
const RSYSLOGD: &str = "/usr/sbin/rsyslogd";
const FAKETIME: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";
/// Where test.sh unpacks the .debs.
const PROFTPD_ROOT: &str = "/var/cache/portcullis-test/proftpd/root";
const PUREFTPD_ROOT: &str = "/var/cache/portcullis-test/pure-ftpd/root";
/// Debian 13's Pure-FTPd in the trixie tree (it conflicts with the tree's vsftpd)
const PUREFTPD_13: &str = "opt/unpacked/pure-ftpd/usr/sbin/pure-ftpd";
/// `openssl passwd -6 -salt portcullisftp correct-horse`: the one password of every test
/// account (root's too, in the private shadow file)
const HASH: &str = "$6$portcullisftp$9SJ5KWDTsC3BSrVFHAhBNHJmKKK7QxP1b5MN36NQeNC4O0bB5dKgiaBSoH0u1urVw6Nawksuh.Wph.O3cCGKE1";
/// The attacker scenarios over IPv4 (203.0.113.N) and IPv6 (2001:db8::N).
const V4: std::ops::RangeInclusive<u8> = 10..=30;
const V6: std::ops::RangeInclusive<u8> = 50..=51;

/// The clients: `client.py KIND PORT`, run with Debian's python3 in the client namespace.
const CLIENT_PY: &str = r##"# FTP clients of crates/portcullis/tests/real_ftp.rs: `client.py KIND PORT` (KIND: vsftpd,
# proftpd, pure-ftpd). Every attacker scenario has its own source address (203.0.113.N or
# 2001:db8::N); the legitimate client is 198.51.100.7. Every socket has a 10 s timeout; the
# scenarios run on threads. Exits non-zero when a server answers something unexpected.
import socket
import sys
import threading
import traceback

KIND = sys.argv[1]
PORT = int(sys.argv[2])
SERVER = "192.0.2.1"
SERVER_V6 = "2001:db8::1"
# seconds a reply may take: Pure-FTPd sleeps up to 6 s after a failed password, 3 s more for
# each further failure of the session (the sixth: about 21 s), under libfaketime at 50 times
# the speed (under half a second)
TIMEOUT = 10
LEGIT = "198.51.100.7"
# a whole log line of each server naming the legitimate client, typed after a CR
FORGED = {
    "vsftpd": b'Fri Dec  4 04:00:00 2026 [pid 1] [y] FAIL LOGIN: Client "198.51.100.7"',
    "proftpd": b"2026-12-04 04:00:00,000 vm proftpd[1] 127.0.0.1 (198.51.100.7[198.51.100.7]): "
               b"USER y: no such user found from 198.51.100.7 [198.51.100.7] to 192.0.2.1:21",
    "pure-ftpd": b"Dec  4 04:00:00 vm pure-ftpd[1]: (?@198.51.100.7) [WARNING] "
                 b"Authentication failed for user [y]",
}[KIND]
# the same, as a syslog line, typed between two NULs (vsftpd turns a NUL into a LF)
FORGED_SYSLOG = {
    "vsftpd": b'Dec  4 04:00:00 vm vsftpd[1]: [y] FAIL LOGIN: Client "198.51.100.7"',
    "proftpd": b"Dec  4 04:00:00 vm proftpd[1]: 127.0.0.1 (198.51.100.7[198.51.100.7]) - "
               b"USER y: no such user found from 198.51.100.7 [198.51.100.7] to 192.0.2.1:21",
    "pure-ftpd": b"Dec  4 04:00:00 vm pure-ftpd[1]: (?@198.51.100.7) [WARNING] "
                 b"Authentication failed for user [y]",
}[KIND]

errors = []


class Conn:
    def __init__(self, src):
        server = SERVER_V6 if ":" in src else SERVER
        self.src = src
        self.sk = socket.create_connection((server, PORT), timeout=TIMEOUT, source_address=(src, 0))
        self.f = self.sk.makefile("rb")
        self.closed = False
        expect(src + " banner", self.reply(), b"220")

    def reply(self):
        out = b""
        for _ in range(50):
            try:
                l = self.f.readline()
            except ConnectionResetError:
                l = b""
            out += l
            if len(l) < 4 or l[3:4] != b"-":
                break
        if out == b"":
            self.closed = True
        return out

    def cmd(self, data, want=b""):
        self.sk.sendall(data + b"\r\n")
        got = self.reply()
        expect("%s %r" % (self.src, data[:40]), got, want)
        return got

    def quit(self):
        if not self.closed:
            try:
                self.sk.sendall(b"QUIT\r\n")
                self.reply()
            except OSError:
                pass
        self.sk.close()


def expect(what, got, prefix):
    if not got.startswith(prefix):
        errors.append("%s: expected %r, got %r" % (what, prefix, got))


def login(src, user, pw, user_want=b"331", pass_want=b"530"):
    c = Conn(src)
    c.cmd(b"USER " + user, user_want)
    if not c.closed and pw is not None:
        c.cmd(b"PASS " + pw, pass_want)
    c.quit()


def too_many(src):
    # wrong passwords until the server ends the session (bounded)
    c = Conn(src)
    for i in range(10):
        if i == 0 or KIND != "pure-ftpd":
            c.cmd(b"USER bob")
        if c.closed:
            break
        c.cmd(b"PASS guess%d" % i)
        if c.closed:
            break
    else:
        errors.append(src + ": the server did not end a session of 10 failed logins")
    c.quit()


def before_login(src):
    c = Conn(src)
    for cmd in [b"LIST", b"CWD /etc", b"RETR passwd", b"STOR x"]:
        c.cmd(cmd, b"530")
    c.quit()


def denied_or_login(src):
    # ProFTPD refuses this address at connect (<Limit LOGIN> Deny from); the others let it
    # fail a password
    server = SERVER_V6 if ":" in src else SERVER
    sk = socket.create_connection((server, PORT), timeout=TIMEOUT, source_address=(src, 0))
    f = sk.makefile("rb")
    banner = f.readline()
    if KIND == "proftpd":
        # ProFTPD closes the connection without a reply
        expect(src + " banner", banner, b"")
        sk.close()
        return
    sk.close()
    login(src, b"bob", b"wrong")


def legit(src):
    c = Conn(src)
    c.cmd(b"USER alice", b"331")
    c.cmd(b"PASS correct-horse", b"230")
    c.cmd(b"PWD", b"257")
    c.quit()


A = "203.0.113.%d"
# carol: refused by vsftpd's userlist at USER, by ProFTPD's <Limit LOGIN> at PASS;
# Pure-FTPd has no such list (a wrong password)
REFUSED_USER = {"vsftpd": (None, b"530"), "proftpd": (b"correct-horse",),
                "pure-ftpd": (b"wrong",)}[KIND]
ATTACKS = [
    (login, (A % 10, b"bob", b"wrong")),
    (login, (A % 11, b"nosuch", b"wrong")),
    (login, (A % 12, b"anonymous", b"guest@example.org")),
    (too_many, (A % 13,)),
    (login, (A % 14, b"root", b"correct-horse")),
    (login, (A % 15, b"carol") + REFUSED_USER),
    (before_login, (A % 16,)),
    # injections
    (login, (A % 17, b"x\r" + FORGED, b"wrong")),
    (login, (A % 18, b"x from 198.51.100.7", b"wrong")),
    (login, (A % 19, b"x\rfrom 192.0.2.66", b"wrong")),
    (login, (A % 20, b"a\x00b\x1b[31mc", b"p\x00q\rr\x1b")),
    # a 300-byte name: ProFTPD refuses it at USER (501), the others at PASS
    (login, (A % 21, b"a" * 300, b"wrong", b"", b"5")),
    (login, (A % 22, b"198.51.100.7", b"wrong")),
    (login, (A % 23, b'x] FAIL LOGIN: Client "198.51.100.7"', b"wrong")),
    (login, (A % 24, b"bob", b"wrong\r" + FORGED)),
    (login, (A % 25, b"x\x00" + FORGED_SYSLOG + b"\x00y", b"wrong")),
    # the right password of a user listed in ftpusers, of a user without a valid shell
    # (Pure-FTPd reads neither list: a wrong password there)
    (login, (A % 26, b"dave", b"wrong" if KIND == "pure-ftpd" else b"correct-horse")),
    (login, (A % 27, b"erin", b"wrong" if KIND == "pure-ftpd" else b"correct-horse")),
    # anonymous passwords imitating vsftpd's ", anon password" tail, holding CR and NUL
    (login, (A % 28, b"anonymous", b'x", anon password "y" FAIL LOGIN: Client "198.51.100.7')),
    (login, (A % 29, b"ftp", b"p\rq\x00r s")),
    (denied_or_login, (A % 30,)),
    (login, ("2001:db8::50", b"bob", b"wrong")),
    (login, ("2001:db8::51", b"nosuch", b"wrong")),
]


def run(f, args):
    try:
        f(*args)
    except Exception as e:  # noqa: BLE001 - reported below, the test fails
        where = traceback.extract_tb(e.__traceback__)[-1]
        errors.append("%s%r: %r at line %d" % (getattr(f, "__name__", "?"), args[:1], e, where.lineno))


threads = [threading.Thread(target=run, args=a) for a in ATTACKS]
for t in threads:
    t.start()
for t in threads:
    t.join(TIMEOUT * 3)
run(legit, (LEGIT,))
if any(t.is_alive() for t in threads):
    errors.append("a client thread did not finish in %d s" % (TIMEOUT * 3))
for e in errors:
    print("client error:", e, file=sys.stderr)
sys.exit(1 if errors else 0)
"##;

/// The mount-namespace set-up (run by `sh -c` inside `unshare --mount`): $1 the server's
/// directory, $2 its syslog socket, $3 the test's etc/ files, $4 a Debian 13 tree or empty,
/// then the command. /etc is an overlay (the host's /etc below, the test's files above on a
/// tmpfs of this namespace), not a bind mount of each file: see the module doc.
/// With a tree, the command runs with chroot in a private overlay of it (common/real.rs
/// `trixie_mount`: its /etc, /run and /tmp private, the test's directory bound at the same
/// path), the test's etc/ files, the machine's /etc/hosts (ProFTPD resolves the host's name)
/// and libfaketime ($FAKETIME, the tree has none) copied into it. (After `set -e`,
/// `FAKETIME=...`, [`PRIVATE_ETC_SH`], [`PRIVATE_SYSLOG_SH`] and [`TRIXIE_SH`].)
const NS_SH: &str = r#"d=$1; sock=$2; etc=$3; tree=$4; shift 4
private_etc "$d/etc-ov" "$etc" passwd group shadow ftpusers pam.d/vsftpd
private_dev
ln -s "$sock" /dev/log
[ -n "$tree" ] || exec "$@"
root="$d/root"
trixie_mount "$tree" "$root" "$(dirname "$etc")/trixie-$(basename "$d")"
for f in passwd group shadow ftpusers pam.d/vsftpd; do cp "$etc/$f" "$root/etc/$f"; done
cp /etc/hosts "$root/etc/hosts"
mkdir -p "$root$(dirname "$FAKETIME")"
cp "$FAKETIME" "$root$FAKETIME"
exec chroot "$root" "$@"
"#;

/// The private /etc/pam.d/vsftpd: Debian's, with pam_unix's failure delay off.
const PAM_VSFTPD: &str =
    "auth required pam_listfile.so item=user sense=deny file=/etc/ftpusers onerr=succeed
auth required pam_unix.so nodelay
auth required pam_shells.so
account required pam_unix.so
session required pam_permit.so
";

#[derive(Clone, Copy, PartialEq, Debug)]
enum Kind {
    Vsftpd,
    Proftpd,
    PureFtpd,
}

impl Kind {
    fn filter(self) -> &'static str {
        match self {
            Kind::Vsftpd => "vsftpd",
            Kind::Proftpd => "proftpd",
            Kind::PureFtpd => "pure-ftpd",
        }
    }
}

/// One server: its name, port, directory (configuration, logs, syslog), and whether it is
/// Debian 13's (run with chroot in a trixie tree) or Debian 12's.
struct Server {
    name: &'static str,
    kind: Kind,
    port: u16,
    dir: PathBuf,
    trixie: bool,
}

impl Server {
    /// The private rsyslogd's file.
    fn syslog(&self) -> PathBuf {
        self.dir.join("syslog")
    }
    /// The server's own log file (vsftpd.log, ProFTPD's SystemLog).
    fn own_log(&self) -> PathBuf {
        self.dir.join("own.log")
    }
}

fn attacker(n: u8) -> String {
    if V6.contains(&n) {
        format!("2001:db8::{n}")
    } else {
        format!("203.0.113.{n}")
    }
}

fn scenarios() -> impl Iterator<Item = u8> {
    V4.chain(V6)
}

fn require_file(path: &Path, what: &str) {
    assert!(
        path.is_file(),
        "{} is missing: {what} (test.sh does)",
        path.display()
    );
}

fn unpacked(var: &str, default: &str, bin: &str) -> PathBuf {
    let root = PathBuf::from(std::env::var(var).unwrap_or(default.into()));
    require_file(
        &root.join(bin),
        "run test.sh (it downloads Debian's proftpd-core and pure-ftpd with `apt-get download` \
         and unpacks them with `dpkg -x` under /var/cache/portcullis-test)",
    );
    root
}

/// The namespaces, the servers and their rsyslogds, the temporary directory; dropped in
/// field order: processes first (their process groups killed), then the namespaces (with
/// anything left inside), then the directory.
struct FtpLab {
    procs: Vec<ProcessGuard>,
    /// pids of the `unshare --pid --fork` parents (ProFTPD's): util-linux' unshare ignores
    /// SIGTERM while it waits, so they are sent SIGKILL first (their pid namespace, ProFTPD
    /// with it, goes with them: --kill-child)
    detached: Vec<u32>,
    client: Netns,
    server: Netns,
    dir: tempfile::TempDir,
    proftpd: PathBuf,
    pureftpd: PathBuf,
    /// test.sh's Debian 13 trees: vsftpd 3.0.5 and Pure-FTPd 1.0.50 (unpacked under
    /// /opt/unpacked/pure-ftpd) in the first, ProFTPD 1.3.8c in the second
    trixie: PathBuf,
    trixie_b: PathBuf,
}

impl FtpLab {
    fn new() -> FtpLab {
        require_root();
        for (path, what) in [
            (VSFTPD, "install vsftpd"),
            (RSYSLOGD, "install rsyslog"),
            (FAKETIME, "install libfaketime"),
            (PYTHON, "install python3"),
        ] {
            require_file(Path::new(path), what);
        }
        let proftpd = unpacked("PORTCULLIS_PROFTPD_ROOT", PROFTPD_ROOT, "usr/sbin/proftpd");
        let pureftpd = unpacked(
            "PORTCULLIS_PUREFTPD_ROOT",
            PUREFTPD_ROOT,
            "usr/sbin/pure-ftpd",
        );
        let trixie = trixie_root(&["usr/sbin/vsftpd", PUREFTPD_13]);
        let trixie_b = trixie_b_root(&["usr/sbin/proftpd"]);
        let server = Netns::new("ftp-srv");
        let client = Netns::new("ftp-cli");
        let dir = tempfile::Builder::new()
            .prefix("pct-ftp-")
            .tempdir()
            .expect("temp dir");
        // vsftpd's and ProFTPD's unprivileged processes must reach their files
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        let etc = dir.path().join("etc");
        fs::create_dir_all(etc.join("pam.d")).unwrap();
        let id = free_ids(5, 64600..64900);
        let base = dir.path().to_str().expect("utf-8 path").to_string();
        let add = |file: &str, lines: String| {
            let mut text = fs::read_to_string(format!("/etc/{file}")).unwrap_or_default();
            if file == "shadow" {
                // root's password is known in the private shadow file (root logins must
                // be refused by the servers' rules, not by a wrong password)
                text = text
                    .lines()
                    .map(|l| match l.strip_prefix("root:") {
                        Some(rest) => format!(
                            "root:{HASH}:{}\n",
                            rest.split_once(':').map(|x| x.1).unwrap_or("")
                        ),
                        None => format!("{l}\n"),
                    })
                    .collect();
            }
            if !text.is_empty() && !text.ends_with('\n') {
                text.push('\n');
            }
            text.push_str(&lines);
            fs::write(etc.join(file), text).unwrap();
        };
        // dave is listed in ftpusers, erin's shell (/bin/false) is not in /etc/shells
        let users = ["alice", "bob", "carol", "dave", "erin"];
        let mut passwd = String::new();
        let mut group = String::new();
        let mut shadow = String::new();
        for (i, u) in users.iter().enumerate() {
            let uid = id + i as u32;
            let home = format!("{base}/home/{u}");
            fs::create_dir_all(&home).unwrap();
            std::os::unix::fs::chown(&home, Some(uid), Some(uid)).unwrap();
            let shell = if *u == "erin" {
                "/bin/false"
            } else {
                "/bin/sh"
            };
            passwd.push_str(&format!("{u}:x:{uid}:{uid}:FTP test:{home}:{shell}\n"));
            group.push_str(&format!("{u}:x:{uid}:\n"));
            shadow.push_str(&format!("{u}:{HASH}:20000:0:99999:7:::\n"));
        }
        add("passwd", passwd);
        add("group", group);
        add("shadow", shadow);
        fs::write(etc.join("ftpusers"), "root\ndaemon\nnobody\ndave\n").unwrap();
        fs::write(etc.join("pam.d/vsftpd"), PAM_VSFTPD).unwrap();
        fs::write(dir.path().join("userlist"), "carol\n").unwrap();
        // vsftpd's anonymous logins: only this password is accepted
        fs::write(dir.path().join("emails"), "ok@example.org\n").unwrap();
        fs::create_dir_all(dir.path().join("empty")).unwrap();
        fs::write(dir.path().join("client.py"), CLIENT_PY).unwrap();
        fs::write(
            dir.path().join("ns.sh"),
            format!("set -e\nFAKETIME={FAKETIME}\n{PRIVATE_ETC_SH}{PRIVATE_SYSLOG_SH}{TRIXIE_SH}{NS_SH}"),
        )
        .unwrap();

        let attackers: Vec<String> = (V4).chain(V6).map(attacker).collect();
        wire_server_and_clients(&server, &client, (SERVER, SERVER_V6), LEGIT, &attackers);
        FtpLab {
            procs: Vec::new(),
            detached: Vec::new(),
            client,
            server,
            dir,
            proftpd,
            pureftpd,
            trixie,
            trixie_b,
        }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Starts the private rsyslogd of a server (escaping control characters or not); its
    /// socket is `dir/log.sock`, its file `dir/syslog`.
    fn start_rsyslogd(&mut self, dir: &Path, escape: bool) {
        let d = dir.to_str().expect("utf-8 path");
        let esc = if escape { "on" } else { "off" };
        let conf = dir.join("rsyslog.conf");
        fs::write(
            &conf,
            format!(
                "global(workDirectory=\"{d}\" parser.escapeControlCharactersOnReceive=\"{esc}\")\n\
                 module(load=\"imuxsock\" SysSock.Use=\"off\")\n\
                 input(type=\"imuxsock\" Socket=\"{d}/log.sock\" RateLimit.Interval=\"0\")\n\
                 *.* action(type=\"omfile\" file=\"{d}/syslog\" template=\"RSYSLOG_TraditionalFileFormat\")\n"
            ),
        )
        .unwrap();
        let mut cmd = std::process::Command::new(RSYSLOGD);
        cmd.args(["-n", "-f"])
            .arg(&conf)
            .arg("-i")
            .arg(dir.join("rsyslogd.pid"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(dir.join("rsyslogd.stderr")).unwrap());
        let mut proc = ProcessGuard::spawn(cmd, format!("rsyslogd ({d})"));
        let sock = dir.join("log.sock");
        if !wait_until(Duration::from_secs(10), || sock.exists()) {
            panic!(
                "rsyslogd did not create {} (exit {:?}): {}",
                sock.display(),
                proc.try_wait(),
                fs::read_to_string(dir.join("rsyslogd.stderr")).unwrap_or_default()
            );
        }
        self.procs.push(proc);
    }

    /// Starts a server: its rsyslogd, then `program args` inside the server namespace and a
    /// private mount namespace (with chroot in a private overlay of `tree`, if given).
    #[allow(clippy::too_many_arguments)]
    fn start(
        &mut self,
        name: &'static str,
        kind: Kind,
        port: u16,
        escape: bool,
        conf: &str,
        tree: Option<&Path>,
        argv: &[String],
    ) -> Server {
        let dir = self.path(name);
        fs::create_dir_all(&dir).unwrap();
        let server = Server {
            name,
            kind,
            port,
            dir,
            trixie: tree.is_some(),
        };
        self.start_rsyslogd(&server.dir, escape);
        let d = server.dir.to_str().unwrap().to_string();
        let conf_path = server.dir.join("server.conf");
        fs::write(
            &conf_path,
            conf.replace("@DIR@", &d)
                .replace("@BASE@", self.dir.path().to_str().unwrap())
                .replace("@PORT@", &port.to_string()),
        )
        .unwrap();
        let mut args: Vec<String> = ["--mount", "--propagation", "private"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        if kind == Kind::Proftpd {
            // ProFTPD detaches: it runs in a pid namespace whose first process (a `sleep`)
            // is killed with the guard (--kill-child), taking every process inside along
            for a in ["--pid", "--fork", "--kill-child"] {
                args.push(a.into());
            }
        }
        args.push("sh".into());
        args.push(self.path("ns.sh").to_str().unwrap().into());
        args.push(d.clone());
        args.push(format!("{d}/log.sock"));
        args.push(self.path("etc").to_str().unwrap().into());
        args.push(
            tree.map(|t| t.to_str().unwrap().to_string())
                .unwrap_or_default(),
        );
        args.extend(
            argv.iter()
                .map(|a| a.replace("@CONF@", conf_path.to_str().unwrap())),
        );
        let mut cmd = self.server.command("unshare", &args);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(server.dir.join("stderr")).unwrap());
        let mut proc = ProcessGuard::spawn(cmd, format!("{name} server"));
        if !wait_until(Duration::from_secs(15), || {
            self.server.listens_on(port, SERVER, SERVER_V6)
        }) {
            panic!(
                "{name} did not come up (exit {:?}); stderr: {}\nsyslog: {}\nlog: {}",
                proc.try_wait(),
                fs::read_to_string(server.dir.join("stderr")).unwrap_or_default(),
                fs::read_to_string(server.syslog()).unwrap_or_default(),
                fs::read_to_string(server.own_log()).unwrap_or_default(),
            );
        }
        if kind == Kind::Proftpd {
            self.detached.push(proc.pid());
        }
        self.procs.push(proc);
        server
    }

    fn vsftpd(
        &mut self,
        name: &'static str,
        port: u16,
        syslog: bool,
        escape: bool,
        trixie: bool,
    ) -> Server {
        let conf = format!(
            "listen=NO\nlisten_ipv6=YES\nlisten_port=@PORT@\nbackground=NO\n\
             anonymous_enable=YES\nsecure_email_list_enable=YES\n\
             email_password_file=@BASE@/emails\nanon_root=@BASE@/empty\n\
             local_enable=YES\nwrite_enable=NO\n\
             pam_service_name=vsftpd\nsecure_chroot_dir=@BASE@/empty\n\
             xferlog_enable=YES\nxferlog_std_format=NO\nvsftpd_log_file=@DIR@/own.log\n\
             syslog_enable={}\nmax_login_fails=3\ndelay_failed_login=0\n\
             userlist_enable=YES\nuserlist_deny=YES\nuserlist_file=@BASE@/userlist\n\
             seccomp_sandbox=NO\nnopriv_user=nobody\nlog_ftp_protocol={}\n",
            if syslog { "YES" } else { "NO" },
            if syslog { "NO" } else { "YES" }
        );
        let tree = trixie.then(|| self.trixie.clone());
        self.start(
            name,
            Kind::Vsftpd,
            port,
            escape,
            &conf,
            tree.as_deref(),
            &[VSFTPD.into(), "@CONF@".into()],
        )
    }

    fn proftpd(&mut self, name: &'static str, port: u16, syslog: bool, trixie: bool) -> Server {
        let log = if syslog {
            "SyslogFacility AUTH"
        } else {
            "SystemLog @DIR@/own.log"
        };
        // Debian 13's proftpd-core builds mod_delay, mod_ls and mod_xfer as modules (its
        // /etc/proftpd/modules.conf loads them; without mod_ls, LIST before login is "500 LIST
        // not understood"); Debian 12's has them built in
        let modules = if trixie {
            "ModulePath /usr/lib/proftpd\nLoadModule mod_delay.c\nLoadModule mod_ls.c\n\
             LoadModule mod_xfer.c\n"
        } else {
            ""
        };
        let conf = format!(
            "{modules}ServerName \"portcullis test\"\nServerType standalone\nDefaultServer on\n\
             Port @PORT@\nUseIPv6 on\nUseReverseDNS off\nUser nobody\nGroup nogroup\n\
             PidFile @DIR@/proftpd.pid\nScoreboardFile @DIR@/proftpd.scoreboard\n\
             WtmpLog off\nDelayEngine off\nAuthPAM off\nAuthOrder mod_auth_unix.c\n{log}\n\
             MaxLoginAttempts 3\nRootLogin off\nUseFtpUsers on\nRequireValidShell on\n\
             <Limit LOGIN>\n  DenyUser carol\n  Deny from 203.0.113.30\n</Limit>\n"
        );
        // Debian 13's: installed in its tree (chroot); Debian 12's: unpacked, its libraries
        // beside it
        let (tree, bin, libs) = if trixie {
            (
                Some(self.trixie_b.clone()),
                PathBuf::from("/usr/sbin/proftpd"),
                PathBuf::new(),
            )
        } else {
            (
                None,
                self.proftpd.join("usr/sbin/proftpd"),
                self.proftpd.join("usr/lib/x86_64-linux-gnu"),
            )
        };
        self.start(
            name,
            Kind::Proftpd,
            port,
            true,
            &conf,
            tree.as_deref(),
            &[
                "env".into(),
                format!("LD_LIBRARY_PATH={}", libs.display()),
                "sh".into(),
                "-c".into(),
                "\"$0\" -c \"$1\" && exec sleep 600".into(),
                bin.to_str().unwrap().into(),
                "@CONF@".into(),
            ],
        )
    }

    fn pureftpd(&mut self, name: &'static str, port: u16, escape: bool, trixie: bool) -> Server {
        // Debian 13's: unpacked in its tree, its libraries installed there (chroot)
        let (tree, bin) = if trixie {
            (Some(self.trixie.clone()), Path::new("/").join(PUREFTPD_13))
        } else {
            (None, self.pureftpd.join("usr/sbin/pure-ftpd"))
        };
        self.start(
            name,
            Kind::PureFtpd,
            port,
            escape,
            "",
            tree.as_deref(),
            &[
                "env".into(),
                format!("LD_PRELOAD={FAKETIME}"),
                "FAKETIME=+0 x50".into(),
                bin.to_str().unwrap().into(),
                "-S".into(),
                format!(",{port}"),
                "-l".into(),
                "unix".into(),
                "-E".into(),
                "-H".into(),
                "-u".into(),
                "1000".into(),
                "-1".into(),
                // a listen backlog of 3 + 400 / 8 = 53: every scenario connects at once
                "-c".into(),
                "400".into(),
            ],
        )
    }

    /// Runs every client scenario against `server`.
    fn attack(&self, server: &Server) -> std::thread::JoinHandle<(String, CmdOutput)> {
        let mut cmd = self.client.command(
            PYTHON,
            &[
                self.path("client.py").into_os_string(),
                server.kind.filter().into(),
                server.port.to_string().into(),
            ],
        );
        let name = server.name.to_string();
        std::thread::spawn(move || {
            (
                name,
                run_with_timeout(&mut cmd, None, Duration::from_secs(60)),
            )
        })
    }

    /// Waits until every session has ended (no connection left, only the `baseline`
    /// processes of the listening servers left in the server namespace) and the logs have
    /// stopped growing (rsyslogd has written what it received).
    fn settle(&self, baseline: usize, logs: &[PathBuf]) {
        let settled = wait_until(Duration::from_secs(15), || {
            let out = self.server.exec_timeout(
                "ss",
                &["-Htn", "state", "established"],
                Duration::from_secs(5),
            );
            out.success()
                && out.stdout_str().trim().is_empty()
                && self.server.pids().len() <= baseline
        });
        assert!(
            settled,
            "FTP sessions did not end: {} processes in the server namespace, {baseline} expected",
            self.server.pids().len()
        );
        let sizes = || -> Vec<u64> {
            logs.iter()
                .map(|l| fs::metadata(l).map(|m| m.len()).unwrap_or(0))
                .collect()
        };
        let mut last = sizes();
        for _ in 0..20 {
            std::thread::sleep(Duration::from_millis(150));
            let now = sizes();
            if now == last {
                break;
            }
            last = now;
        }
    }
}

impl Drop for FtpLab {
    fn drop(&mut self) {
        for &pid in &self.detached {
            // SAFETY: plain syscall on a child of this process that its guard still holds
            // (not reaped, so the pid is not reused)
            unsafe {
                libc::kill(pid as i32, libc::SIGKILL);
            }
        }
    }
}

/// Asserts that the matches of `filter` on `log` are exactly `want` ((scenario, rule) ->
/// count), each from its scenario's address, none naming the legitimate client.
/// With `forged`, the log went through a syslog that does not escape: the one line a client
/// forged (vsftpd's NUL turned into a LF) must be there, reported as the legitimate client.
fn check(what: &str, filter: &str, log: &Path, want: &BTreeMap<(u8, &str), usize>, forged: bool) {
    let mut got = counted_matches(filter, log);
    let before = got.len();
    got.retain(|(_, _, l)| !l.starts_with("Dec  4 04:00:00 vm "));
    assert_eq!(
        before - got.len(),
        usize::from(forged),
        "{what}: forged lines (a client's text at the start of a line) matched: {}",
        before - got.len()
    );
    let text = String::from_utf8_lossy(&fs::read(log).unwrap_or_default()).into_owned();
    let shown: Vec<String> = got
        .iter()
        .map(|(h, r, l)| format!("  {h} {r}: {}", l.escape_debug()))
        .collect();
    let shown = shown.join("\n");
    for (host, _, line) in &got {
        assert!(
            host != LEGIT && host != "192.0.2.66",
            "{what}: an address typed by a client ({host}) reported from: {line:?}\nall matches:\n{shown}"
        );
        assert!(
            scenarios().any(|n| attacker(n) == *host),
            "{what}: {host} is no scenario's address: {line:?}\nall matches:\n{shown}"
        );
    }
    let mut counts: BTreeMap<(String, String), usize> = BTreeMap::new();
    for (host, rule, _) in &got {
        *counts.entry((host.clone(), rule.clone())).or_default() += 1;
    }
    let expected: BTreeMap<(String, String), usize> = want
        .iter()
        .map(|(&(n, rule), &c)| ((attacker(n), rule.to_string()), c))
        .collect();
    assert_eq!(
        counts,
        expected,
        "{what}: matched (address, rule) pairs differ from the expected ones\nmatches:\n{shown}\nlog:\n{}",
        text.escape_debug()
    );
}

type Want = BTreeMap<(u8, &'static str), usize>;

fn want(list: &[(u8, &'static str, usize)]) -> Want {
    let mut w = Want::new();
    for &(n, rule, c) in list {
        *w.entry((n, rule)).or_default() += c;
    }
    w
}

#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn real_ftp_logs_give_the_attackers_and_only_them() {
    let started = Instant::now();
    let mut lab = FtpLab::new();
    // Debian 12's seven servers, then Debian 13's (the same set, ports + 10000)
    let servers = vec![
        lab.vsftpd("vsftpd-file", 21, false, true, false),
        lab.vsftpd("vsftpd-syslog", 2121, true, true, false),
        lab.vsftpd("vsftpd-raw", 2122, true, false, false),
        lab.proftpd("proftpd-file", 2221, false, false),
        lab.proftpd("proftpd-syslog", 2222, true, false),
        lab.pureftpd("pure-ftpd", 2321, true, false),
        lab.pureftpd("pure-ftpd-raw", 2322, false, false),
        lab.vsftpd("vsftpd-file-13", 10021, false, true, true),
        lab.vsftpd("vsftpd-syslog-13", 12121, true, true, true),
        lab.vsftpd("vsftpd-raw-13", 12122, true, false, true),
        lab.proftpd("proftpd-file-13", 12221, false, true),
        lab.proftpd("proftpd-syslog-13", 12222, true, true),
        lab.pureftpd("pure-ftpd-13", 12321, true, true),
        lab.pureftpd("pure-ftpd-raw-13", 12322, false, true),
    ];
    let baseline = lab.server.pids().len();
    let runs: Vec<_> = servers.iter().map(|s| lab.attack(s)).collect();
    for r in runs {
        let (name, out) = r.join().expect("client thread");
        let dir = lab.path(&name);
        let read = |f: &str| fs::read_to_string(dir.join(f)).unwrap_or_default();
        assert!(
            out.success(),
            "the FTP clients failed against {name} (timed out: {}): {}\n{}\nstderr: {}\nlog:\n{}\nsyslog:\n{}",
            out.timed_out,
            out.stdout_str(),
            out.stderr_str(),
            read("stderr"),
            read("own.log"),
            read("syslog"),
        );
    }
    let logs: Vec<PathBuf> = servers
        .iter()
        .flat_map(|s| [s.own_log(), s.syslog()])
        .collect();
    lab.settle(baseline, &logs);
    eprintln!("real_ftp: clients done in {:?}", started.elapsed());

    let keep = std::env::var("PORTCULLIS_FTP_KEEP").ok();
    for s in &servers {
        for log in [s.own_log(), s.syslog()] {
            if !log.exists() {
                continue;
            }
            if let Some(keep) = &keep {
                let name = log.file_name().unwrap().to_str().unwrap();
                fs::create_dir_all(keep).unwrap();
                fs::copy(&log, Path::new(keep).join(format!("{}-{name}", s.name))).unwrap();
            }
        }
    }

    check_release(&servers[..7]);
    check_release(&servers[7..]);
    eprintln!("real_ftp: checked in {:?}", started.elapsed());
    drop(lab);
    eprintln!("real_ftp: done in {:?}", started.elapsed());
}

/// The assertions on the logs of one release's seven servers (Debian 12's or Debian 13's:
/// `trixie` of the first one). One table for both: Debian 13's servers wrote the same lines
/// for every scenario (the real runs); where its logs differ, the checks say so.
fn check_release(servers: &[Server]) {
    let trixie = servers[0].trixie;
    let read = |s: &Server, own: bool| {
        let b = fs::read(if own { s.own_log() } else { s.syslog() }).unwrap_or_default();
        String::from_utf8_lossy(&b).into_owned()
    };
    let [vs_file, vs_sys, vs_raw, pf_file, pf_sys, pu_sys, pu_raw] = servers else {
        unreachable!()
    };
    // the release that ran: vsftpd's banner in its protocol trace, ProFTPD's start line
    // (Pure-FTPd logs no version: Debian 13's 1.0.50-2.2 is the tree's binary, by its path)
    let (banner, startup) = if trixie {
        ("\"220 (vsFTPd 3.0.5)\"", "ProFTPD 1.3.8c (maint)")
    } else {
        ("\"220 (vsFTPd 3.0.3)\"", "ProFTPD 1.3.8 (stable)")
    };
    assert!(
        read(vs_file, true).contains(banner) && read(pf_file, true).contains(startup),
        "{}, {}: not the expected release ({banner}, {startup})",
        vs_file.name,
        pf_file.name
    );
    // Debian 13's Linux-PAM (1.7.0) writes two lines more, without an address, that no filter
    // counts (the exact counts below): pam_unix's helper's `unix_chkpwd[PID]: password check
    // failed for user (bob)` for each wrong password of a known user (7), pam_shells' `User
    // has an invalid shell '/bin/false'` (erin, 27). Debian 12's 1.5.2 writes neither.
    for s in [vs_file, vs_sys, vs_raw] {
        let t = read(s, false);
        assert_eq!(
            (
                t.matches("unix_chkpwd[").count(),
                t.matches(": pam_shells(vsftpd:auth): User has an invalid shell '/bin/false'")
                    .count()
            ),
            if trixie { (7, 1) } else { (0, 0) },
            "{}: Linux-PAM's lines without an address:\n{t}",
            s.name
        );
    }
    // what each server really wrote for the injections
    // vsftpd's own file: control characters as '?' (logging.c vsf_log_do_log_to_file())
    let t = read(vs_file, true);
    assert!(
        t.contains("[x?Fri Dec  4 04:00:00 2026 [pid 1] [y] FAIL LOGIN: Client \"198.51.100.7\"] FAIL LOGIN: Client \"::ffff:203.0.113.17\"")
            && t.contains("[a?b?[31mc] FAIL LOGIN")
            && t.contains("[x?Dec  4 04:00:00 vm vsftpd[1]: [y] FAIL LOGIN: Client \"198.51.100.7\"?y] FAIL LOGIN"),
        "vsftpd.log: the control characters are not written as '?':\n{}",
        t.escape_debug()
    );
    // vsftpd through syslog: raw (a NUL in USER is a LF, ftpcmdio.c), escaped by rsyslog
    let t = read(vs_sys, false);
    assert!(
        t.contains("[x#015from 192.0.2.66] FAIL LOGIN")
            && t.contains("[a#012b#033[31mc] FAIL LOGIN"),
        "vsftpd syslog: rsyslog's #NNN escapes missing:\n{t}"
    );
    let t = read(vs_raw, false);
    assert!(
        t.contains("[x\rfrom 192.0.2.66] FAIL LOGIN")
            && t.lines()
                .any(|l| l
                    == "Dec  4 04:00:00 vm vsftpd[1]: [y] FAIL LOGIN: Client \"198.51.100.7\""),
        "vsftpd through a syslog that does not escape: the CR and the forged line are not raw:\n{}",
        t.escape_debug()
    );
    // ProFTPD: its SystemLog raw (a CR is kept, a NUL ends the name), syslog escaped
    let t = read(pf_file, true);
    assert!(
        t.contains("USER x\rfrom 192.0.2.66: no such user found from 203.0.113.19 [203.0.113.19]")
            && t.contains("USER x: no such user found from 203.0.113.25 [203.0.113.25]"),
        "ProFTPD SystemLog: CR/NUL not as expected:\n{}",
        t.escape_debug()
    );
    assert!(read(pf_sys, false).contains("USER x#015from 192.0.2.66: no such user"));
    // Pure-FTPd: control characters as '_' (src/ftpd.c stripctrl()), with any transport
    for s in [pu_sys, pu_raw] {
        let t = read(s, false);
        assert!(
            t.contains("for user [x_from 192.0.2.66]") && t.contains("for user [a_b_[31mc]")
                && t.contains("for user [x_Dec  4 04:00:00 vm pure-ftpd[1]: (?@198.51.100.7) [WARNING] Authentication failed for user [y]_y]"),
            "{}: control characters are not written as '_':\n{}",
            s.name,
            t.escape_debug()
        );
    }
    // the legitimate login is logged (ProFTPD logs it at level info, below its default
    // SyslogLevel: the client's 230 reply is the proof there)
    for s in [vs_file, vs_sys, vs_raw, pu_sys, pu_raw] {
        let t = read(s, s.kind == Kind::Vsftpd && s.own_log().exists());
        assert!(
            t.contains(&format!("[alice] OK LOGIN: Client \"::ffff:{LEGIT}\""))
                || t.contains(&format!("(?@{LEGIT}) [INFO] alice is now logged in")),
            "{}: the legitimate login is not in the log:\n{t}",
            s.name
        );
    }

    // the (address, rule) pairs each log must give
    fn all_v4_but(skip: &'static [u8]) -> impl Iterator<Item = u8> {
        V4.filter(move |n| !skip.contains(n))
    }
    let mut vs_fail: Vec<(u8, &str, usize)> = all_v4_but(&[13, 15, 16])
        .chain(V6)
        .map(|n| (n, "fail-login", 1))
        .collect();
    // max_login_fails=3: three FAIL LOGIN, then the session ends (no line of its own)
    vs_fail.push((13, "fail-login", 3));
    // pam_unix: a known user's failure (user=...) and an unknown user's (a trailing space
    // after rhost=); none for anonymous logins (vsftpd's own); no line for user names holding spaces or control characters, or too
    // long; root and dave are refused by pam_listfile (ftpusers; no rhost), erin by
    // pam_shells after pam_unix accepted the password (no line)
    let vs_pam: Vec<(u8, &str, usize)> = vec![
        (10, "pam", 1),
        (11, "pam", 1),
        (13, "pam", 3),
        (22, "pam", 1),
        (24, "pam", 1),
        (30, "pam", 1),
        (50, "pam", 1),
        (51, "pam", 1),
    ];
    let mut own = vs_fail.clone();
    own.push((15, "userlist", 1));
    let mut sys = vs_fail.clone();
    sys.extend(vs_pam.iter().copied());
    // without escaping, 20's and 25's NUL became a LF: their FAIL LOGIN line is cut in two
    let raw: Vec<(u8, &str, usize)> = sys
        .iter()
        .copied()
        .filter(|(n, r, _)| !(*r == "fail-login" && (*n == 20 || *n == 25)))
        .collect();
    let mut pf: Vec<(u8, &str, usize)> = vec![
        (13, "login-failed", 3),
        (13, "max-attempts", 1),
        (14, "root-login", 1),
    ];
    for n in [10, 15, 24, 26, 27, 29, 50] {
        pf.push((n, "login-failed", 1));
    }
    for n in [11, 12, 17, 18, 19, 20, 22, 23, 25, 28, 51] {
        pf.push((n, "no-such-user", 1));
    }
    // <Limit LOGIN> Deny from: refused at connect ("... denied", no final "." since 1.3.5)
    pf.push((30, "limit-denied", 1));
    // Pure-FTPd: auth-failed for every scenario but 13, 14 and 16; 13: five auth-failed and
    // one too-many; 14: disabled (uid 0 below -u 1000)
    let mut pu: Vec<(u8, &str, usize)> = all_v4_but(&[13, 14, 16])
        .chain(V6)
        .map(|n| (n, "auth-failed", 1))
        .collect();
    pu.extend([
        (13, "auth-failed", 5),
        (13, "too-many", 1),
        (14, "disabled", 1),
    ]);
    let cases: Vec<(&Server, PathBuf, Want, bool)> = vec![
        (vs_file, vs_file.own_log(), want(&own), false),
        (vs_file, vs_file.syslog(), want(&vs_pam), false),
        (vs_sys, vs_sys.syslog(), want(&sys), false),
        (vs_raw, vs_raw.syslog(), want(&raw), true),
        (pf_file, pf_file.own_log(), want(&pf), false),
        (pf_sys, pf_sys.syslog(), want(&pf), false),
        (pu_sys, pu_sys.syslog(), want(&pu), false),
        (pu_raw, pu_raw.syslog(), want(&pu), false),
    ];
    for (s, log, w, forged) in &cases {
        let what = format!("{} {}", s.name, log.file_name().unwrap().to_str().unwrap());
        check(&what, s.kind.filter(), log, w, *forged);
        let mut bans: BTreeSet<String> = w.keys().map(|&(n, _)| ban_of(&attacker(n))).collect();
        if *forged {
            // the forged line a raw syslog let through: what a reader of a syslog that
            // does not escape would ban (the filter header's audit: NOT SAFE there)
            bans.insert(LEGIT.to_string());
        }
        // the three filters' rules are all of mode normal: aggressive bans the same, ddos
        // (scans only) nobody
        for (mode, want_bans) in [
            ("normal", bans.clone()),
            ("aggressive", bans.clone()),
            ("ddos", BTreeSet::new()),
        ] {
            assert_eq!(
                replay_jail(&s.dir, s.kind.filter(), log, mode, 1),
                want_bans,
                "{what}: a replay with a jail of mode {mode}, maxretry 1, banned other addresses"
            );
        }
        // the session that reached the server's limit: its closing line ("Maximum login
        // attempts", "Too many authentication failures") does not count on top of the
        // session's failures (a followup rule): failures + 1 bans nobody
        let limit = match s.kind {
            Kind::Vsftpd => None,
            Kind::Proftpd => Some(4),
            Kind::PureFtpd => Some(6),
        };
        if let Some(limit) = limit {
            assert_eq!(
                replay_jail(&s.dir, s.kind.filter(), log, "normal", limit),
                BTreeSet::new(),
                "{what}: the closing line of a session counted on top of its failures"
            );
        }
    }
    // pam-generic, the filter for a service without one of its own, reads the same pam_unix
    // lines of vsftpd's syslog: the same addresses, one failure each, nothing else
    let pam_generic: Vec<(u8, &str, usize)> =
        vs_pam.iter().map(|&(n, _, c)| (n, "pam-auth", c)).collect();
    check(
        "vsftpd syslog (pam-generic)",
        "pam-generic",
        &vs_file.syslog(),
        &want(&pam_generic),
        false,
    );
    let pam_bans: BTreeSet<String> = vs_pam
        .iter()
        .map(|&(n, _, _)| ban_of(&attacker(n)))
        .collect();
    assert_eq!(
        replay_jail(&vs_file.dir, "pam-generic", &vs_file.syslog(), "normal", 1),
        pam_bans,
        "pam-generic: a replay with maxretry 1 banned other addresses"
    );
}

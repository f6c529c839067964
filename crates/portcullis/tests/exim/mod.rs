//! What the four real Exim tests (real_exim.rs, real_exim_journal.rs, real_exim_spam.rs,
//! real_sa_exim.rs) share: the Exim of each Debian release and how its version is asserted,
//! the test's directory and its private /etc files, the common parts of their Exim
//! configurations, the bash functions of the two-daemon scripts, a spamd-protocol responder's
//! base, and the head and main of their Python SMTP clients. Use with `mod exim;` after
//! `mod common;`.
#![allow(dead_code)]

use crate::common::*;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Where test.sh unpacks Debian 12's exim4-daemon-light (PORTCULLIS_EXIM_ROOT overrides it).
const EXIM_ROOT: &str = "/var/cache/portcullis-test/exim/root";
/// Where test.sh unpacks Debian 12's exim4-daemon-heavy (PORTCULLIS_EXIM_HEAVY_ROOT overrides
/// it).
const EXIM_HEAVY_ROOT: &str = "/var/cache/portcullis-test/exim-heavy/root";

/// Debian 12's Exim build a test runs, unpacked by test.sh (exim4-daemon-light and
/// -heavy conflict with the postfix package that tests/real_mail.rs needs).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Build {
    /// exim4-daemon-light and exim4-base (with libidn12)
    Light,
    /// exim4-daemon-heavy and exim4-base (with libspf2-2): content scanning, local_scan()
    Heavy,
}

/// The unpacked Debian 12 `build`: its root directory; fails loudly when test.sh has not
/// unpacked it.
pub fn exim_root(build: Build) -> PathBuf {
    match build {
        Build::Light => unpacked(
            "PORTCULLIS_EXIM_ROOT",
            EXIM_ROOT,
            &["usr/sbin/exim4"],
            "Debian's exim4-daemon-light and exim4-base",
        ),
        Build::Heavy => unpacked(
            "PORTCULLIS_EXIM_HEAVY_ROOT",
            EXIM_HEAVY_ROOT,
            &["usr/sbin/exim4"],
            "Debian's exim4-daemon-heavy and exim4-base",
        ),
    }
}

/// The Exim a run uses: Debian 12's 4.96 (unpacked by test.sh on the host, run with
/// LD_LIBRARY_PATH) or Debian 13's 4.98.2 (in one of test.sh's Debian 13 trees, run with
/// chroot in a private overlay of it, `trixie_mount`).
pub struct Exim {
    pub release: Release,
    /// Debian 12's unpacked root (empty for Debian 13).
    pub root: PathBuf,
    /// Debian 13's tree (empty for Debian 12).
    pub tree: PathBuf,
}

impl Exim {
    /// Fails loudly unless the release's files are there: Debian 12's unpacked `build`, or
    /// Debian 13's usr/sbin/exim4, etc/passwd and `tree_files` in the tree `tree_root` names
    /// (`trixie_b_root`: exim4-daemon-light; `trixie_e_root`: exim4-daemon-heavy).
    pub fn new(
        release: Release,
        build: Build,
        tree_root: fn(&[&str]) -> PathBuf,
        tree_files: &[&str],
    ) -> Exim {
        let (root, tree) = match release {
            Release::Deb12 => (exim_root(build), PathBuf::new()),
            Release::Deb13 => {
                require_program("chroot", "coreutils");
                let files = [&["usr/sbin/exim4", "etc/passwd"][..], tree_files].concat();
                (PathBuf::new(), tree_root(&files))
            }
        };
        Exim {
            release,
            root,
            tree,
        }
    }

    /// The version Exim writes in its "daemon started" line and `exim -bV`.
    pub fn version(&self) -> &'static str {
        match self.release {
            Release::Deb12 => "4.96",
            Release::Deb13 => "4.98.2",
        }
    }

    /// A test directory's label: `base`, with "-4.98" for Debian 13.
    pub fn label(&self, base: &str) -> String {
        match self.release {
            Release::Deb12 => base.to_string(),
            Release::Deb13 => format!("{base}-4.98"),
        }
    }

    /// Asserts that the first "daemon started" line of the main log `main` names the
    /// release's Exim ("exim 4.96"); returns what stands before " daemon started".
    pub fn assert_started(&self, main: &str) -> String {
        let started = main
            .lines()
            .find_map(|l| l.split_once(" daemon started").map(|(v, _)| v.to_string()))
            .unwrap_or_default();
        let want = format!("exim {}", self.version());
        assert!(started.ends_with(&want), "not {want}: {started}");
        started
    }

    /// Debian 13: asserts exim4-daemon-heavy's version in the tree's dpkg database,
    /// `package` (what the script's `dpkg-query` wrote). Debian 12: nothing.
    pub fn assert_heavy_package(&self, package: &str) {
        if self.release == Release::Deb13 {
            assert!(
                package.starts_with("4.98.2-"),
                "exim4-daemon-heavy {package}"
            );
        }
    }

    /// Asserts that `exim -bV`'s output `bv` starts with the release's version.
    pub fn assert_bv(&self, bv: &str) {
        let want = format!("Exim version {} ", self.version());
        assert!(bv.starts_with(&want), "exim -bV: {bv}");
    }
}

/// Fails loudly unless the test runs as root and the programs of the two-daemon scripts
/// ([`TWO_DAEMONS_SH`], `private_syslog`, the clients) are there: python3, rsyslogd, ip, ss,
/// pgrep and unshare.
pub fn require_two_daemons() {
    require_root();
    for (program, package) in [
        ("python3", "python3"),
        ("rsyslogd", "rsyslog"),
        ("ip", "iproute2"),
        ("ss", "iproute2"),
        ("pgrep", "procps"),
        ("unshare", "util-linux"),
    ] {
        require_program(program, package);
    }
}

/// The uid and gid of `user` in the tree's /etc/passwd.
pub fn tree_account(root: &Path, user: &str) -> (u32, u32) {
    let passwd = fs::read_to_string(root.join("etc/passwd")).unwrap_or_default();
    passwd
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() > 3 && f[0] == user).then(|| (f[2].parse().ok(), f[3].parse().ok()))
        })
        .and_then(|(u, g)| Some((u?, g?)))
        .unwrap_or_else(|| panic!("no {user} in {}/etc/passwd", root.display()))
}

/// A temporary directory /tmp/pct-LABEL-… for one test's files, removed on drop, of mode
/// 0755: Exim's receiving processes run as Debian-exim and must reach their files.
pub fn exim_dir(label: &str) -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix(&format!("pct-{label}-"))
        .tempdir_in("/tmp")
        .expect("temp dir");
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

/// Writes into `etc` (made if missing) the private /etc files of Exim's compiled-in user
/// Debian-exim, never created on the host (`write_account_etc`: the host's passwd and group
/// plus Debian-exim with a free id, nsswitch.conf reading files only, hosts with localhost
/// only); returns the id.
pub fn write_exim_etc(etc: &Path) -> u32 {
    fs::create_dir_all(etc).unwrap();
    let id = free_ids(1, 64010..64500);
    write_account_etc(
        etc,
        "Debian-exim",
        id,
        "Exim test",
        "127.0.0.1 localhost\n::1 localhost\n",
    );
    id
}

/// The head of real_exim_spam.rs's and real_sa_exim.rs's configuration, for two daemons from
/// one file (@DIR@ the test's directory): port 25 with the default log selectors, logging to
/// DIR/default/log and syslog, and, run with -DALL, port 2525 with `log_selector = +all`,
/// logging to DIR/all/log; then the lines every test has.
pub const TWO_DAEMONS_CONF: &str = r#".ifdef ALL
log_selector = +all
log_file_path = @DIR@/all/log/%slog
spool_directory = @DIR@/all/spool
pid_file_path = @DIR@/all/exim.pid
daemon_smtp_ports = 2525
.else
log_file_path = @DIR@/default/log/%slog : syslog
spool_directory = @DIR@/default/spool
pid_file_path = @DIR@/default/exim.pid
daemon_smtp_ports = 25
.endif
primary_hostname = mx.example.net
qualify_domain = example.net
domainlist local_domains = example.net
keep_environment = LD_LIBRARY_PATH
local_interfaces = <; 192.0.2.1 ; 2001:db8::1
"#;

/// Every test's routers and transports (after its ACLs): alice@example.net is delivered to
/// /dev/null, nothing else is routed.
pub const ROUTERS_CONF: &str = r#"begin routers

local_user:
  driver = accept
  domains = +local_domains
  local_parts = alice
  transport = null

begin transports

null:
  driver = appendfile
  file = /dev/null
"#;

/// The authenticators of real_exim.rs and real_exim_journal.rs (after [`ROUTERS_CONF`]):
/// plaintext PLAIN and LOGIN that only alice/correct-horse passes.
pub const AUTHENTICATORS_CONF: &str = r#"
begin authenticators

plain_server:
  driver = plaintext
  public_name = PLAIN
  server_prompts = :
  server_condition = ${if and{{eq{$auth2}{alice}}{eq{$auth3}{correct-horse}}}}
  server_set_id = $auth2

login_server:
  driver = plaintext
  public_name = LOGIN
  server_prompts = Username:: : Password::
  server_condition = ${if and{{eq{$auth1}{alice}}{eq{$auth2}{correct-horse}}}}
  server_set_id = $auth1
"#;

/// Bash functions of the two-daemon scripts (real_exim_spam.rs, real_sa_exim.rs: bash as pid
/// 1 of new pid, mount and network namespaces, after [`PRIVATE_ETC_SH`],
/// [`PRIVATE_SYSLOG_SH`] and [`TRIXIE_SH`]):
/// * `exim_lo ADDR…`: the loopback up, with each address (IPv6 ones /128 nodad); exit 2 on
///   failure;
/// * `exim_release D ROOT TREE`: sets `exim` (the command of exim4) and `owner` (chown): with
///   TREE (Debian 13) a private overlay of it at D/root (`trixie_mount`; exit 4 on failure)
///   with D/etc's hosts and nsswitch.conf in its /etc, exim4-daemon-heavy's version of its
///   dpkg database in D/version; else (Debian 12) the unpacked ROOT with LD_LIBRARY_PATH;
/// * `exim_daemons D [READY]`: `exim -bV` into D/exim-bV, then D/exim.conf's two daemons as
///   jobs (port 25 in D/default, with -DALL port 2525 in D/all, their stderr there), and
///   waits (20 s at most) until both listen on 192.0.2.1 and 2001:db8::1, the spamd
///   responder on 127.0.0.1:783 and the command READY succeeds; exit 4 if not;
/// * `exim_settle N`: waits (N tenths of a second at most) until only the two daemons are
///   left (every session has ended), then 0.3 s.
pub const TWO_DAEMONS_SH: &str = r#"exim_lo() {
  local a
  ip link set lo up
  for a in "$@"; do
    case $a in
      *:*) ip addr add "$a/128" dev lo nodad || exit 2 ;;
      *) ip addr add "$a/32" dev lo || exit 2 ;;
    esac
  done
}
exim_release() {
  local d=$1 root=$2 tree=$3 r
  if [ -n "$tree" ]; then
    r="$d/root"
    trixie_mount "$tree" "$r" "$d/trixie" || exit 4
    cp "$d/etc/hosts" "$d/etc/nsswitch.conf" "$r/etc/"
    exim=(chroot "$r" /usr/sbin/exim4)
    owner=(chroot "$r" chown)
    dpkg-query --admindir="$r/var/lib/dpkg" -W -f '${Version}' exim4-daemon-heavy > "$d/version"
  else
    export LD_LIBRARY_PATH="$root/usr/lib/x86_64-linux-gnu:$root/usr/lib"
    exim=("$root/usr/sbin/exim4")
    owner=(chown)
  fi
}
exim_up() { [ -n "$(ss -Hltn "src $1 and sport = :$2")" ]; }
exim_daemons() {
  local d=$1 ready=${2:-true} n
  "${exim[@]}" -C "$d/exim.conf" -bV > "$d/exim-bV" 2>&1
  for n in default all; do
    mkdir -p "$d/$n/spool" "$d/$n/log"; "${owner[@]}" -R Debian-exim:Debian-exim "$d/$n"
  done
  "${exim[@]}" -C "$d/exim.conf" -bdf 2>"$d/default/stderr" &
  "${exim[@]}" -C "$d/exim.conf" -DALL -bdf 2>"$d/all/stderr" &
  for _ in $(seq 200); do
    exim_up 192.0.2.1 25 && exim_up '[2001:db8::1]' 25 && exim_up 192.0.2.1 2525 \
      && exim_up '[2001:db8::1]' 2525 && exim_up 127.0.0.1 783 && "$ready" && break
    sleep 0.1
  done
  exim_up 192.0.2.1 25 && exim_up 192.0.2.1 2525 && exim_up 127.0.0.1 783 \
    || { echo "exim or the spamd responder did not start" >&2; exit 4; }
  "$ready" || { echo "not ready: $ready" >&2; exit 4; }
}
exim_settle() {
  for _ in $(seq "$1"); do [ "$(pgrep -c -x exim4)" -le 2 ] && break; sleep 0.1; done
  sleep 0.3
}
"#;

/// A minimal spamd (SpamAssassin daemon protocol) responder at 127.0.0.1:783 (Debian's
/// python3), for Exim's `spam` condition (real_exim_spam.rs) or SA-Exim's spamc
/// (real_sa_exim.rs): this base, then the test's `answer`, which defines
/// `answer(c, lines, body)` (the request's head lines and its whole body; it writes the
/// reply to the socket `c`) and calls `serve(answer, TIMEOUT)`.
pub fn spamd_py(answer: &str) -> String {
    [SPAMD_PY, answer].concat()
}

const SPAMD_PY: &str = r#"# A minimal spamd responder at 127.0.0.1:783 (base: crates/portcullis/tests/exim/mod.rs)
import re, socket, threading
def request(c):
    # the request's head lines and its body (Content-length), or None when the client left
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = c.recv(65536)
        if not chunk:
            return None
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    lines = head.split(b"\r\n")
    length = 0
    for line in lines[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            length = int(v)
    while len(body) < length:
        chunk = c.recv(65536)
        if not chunk:
            break
        body += chunk
    return lines, body
def serve(answer, timeout):
    def one(c):
        with c:
            c.settimeout(timeout)
            got = request(c)
            if got is not None:
                answer(c, *got)
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 783))
    s.listen(64)
    while True:
        c, _ = s.accept()
        threading.Thread(target=one, args=(c,), daemon=True).start()
"#;

/// A client's folded header line `forged` (the start of a whole forged log line): in the
/// default daemon's reject log `reject` behind a tab (the header dump), through `syslog`
/// behind Exim's "[n/m] " and rsyslog's #011, never at the start of a line of the main log
/// `main`, the reject log or the +all daemon's main log `main_all`.
pub fn assert_forged_folded(forged: &str, main: &str, reject: &str, main_all: &str, syslog: &str) {
    assert!(
        reject.contains(&format!("\n\t{forged}")) && syslog.contains(&format!("] #011{forged}")),
        "the folded forged Subject line is not where expected\nrejectlog:\n{reject}\nsyslog:\n{syslog}"
    );
    for (what, text) in [
        ("mainlog", main),
        ("rejectlog", reject),
        ("+all mainlog", main_all),
    ] {
        assert!(
            !text.lines().any(|l| l.starts_with(forged)),
            "{what}: a client forged a whole line:\n{text}"
        );
    }
}

/// The clients of every Exim test (Debian's python3 in the client namespace, raw sockets,
/// `client.py PORT [DIR]`): this head, the shared SMTP part ([`SMTP_CLIENT_PY`]), `plain(user,
/// pw)` (an AUTH PLAIN command line), `run(f, *args)` and `main(ATTACKS, legit, join=30)` that
/// runs every attacker scenario `(function, source, *args)` on a thread (waiting `join` s for
/// each), then the legitimate client, and exits non-zero when Exim answered something
/// unexpected; then the test's `scenarios` (its `Conn`, its scenarios and constants, and the
/// call of `main`). Every socket has a 10 s timeout.
pub fn client_py(scenarios: &str) -> String {
    [CLIENT_PY_HEAD, SMTP_CLIENT_PY, CLIENT_PY_MAIN, scenarios].concat()
}

const CLIENT_PY_HEAD: &str = r##"# SMTP clients of crates/portcullis/tests/real_*exim*.rs (head: tests/exim/mod.rs), Debian's
# python3 in the client namespace: `client.py PORT [DIR]`. One source address per scenario,
# the scenarios on threads, the legitimate client last; exits non-zero when Exim answers
# something unexpected.
import base64
import socket
import ssl
import sys
import threading
import traceback

PORT = int(sys.argv[1])
SERVER, SERVER_V6, LEGIT = "192.0.2.1", "2001:db8::1", "198.51.100.7"
"##;

const CLIENT_PY_MAIN: &str = r##"
def plain(user, pw):
    return b"AUTH PLAIN " + base64.b64encode(b"\0" + user + b"\0" + pw)


def run(f, *args):
    try:
        f(*args)
    except Exception as e:  # noqa: BLE001 - reported below, the test fails
        where = traceback.extract_tb(e.__traceback__)[-1]
        errors.append("%s%r: %r at line %d" % (f.__name__, args[:1], e, where.lineno))


def main(attacks, legit, join=30):
    threads = [threading.Thread(target=run, args=a) for a in attacks]
    for t in threads:
        t.start()
    for t in threads:
        t.join(join)
    if any(t.is_alive() for t in threads):
        errors.append("a client thread did not finish in %d s" % join)
    run(legit)
    for e in errors:
        print("client error:", e, file=sys.stderr)
    sys.exit(1 if errors else 0)

"##;

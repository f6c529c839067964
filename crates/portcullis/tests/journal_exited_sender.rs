//! sshd's entries whose sender had exited before journald took them still count, and a
//! local user's still do not.
//!
//! journald reads a sender's control group (hence `_SYSTEMD_UNIT`, `_SYSTEMD_SLICE`) and its
//! comm from `/proc/PID` when it takes the message off its socket, not when it was sent. A
//! process that logs and exits before that (systemd issue 2913, open) leaves an entry with
//! only what the kernel passed along with the message: `_PID`, `_UID`, `_GID`, and the
//! identifier the sender wrote. Each ssh connection has processes of its own, which end with
//! the connection: a scanner's or a one-password bot's lines are that case, and under load
//! journald falls behind. Measured on this machine (journald 252, 4 writers at once, each a
//! root `logger -t sshd` in a hand-made ssh.service that exits at once): 391 of 1,200 entries
//! came without `_SYSTEMD_UNIT`; one writer at a time, 3 of 300. A source of
//! `_SYSTEMD_UNIT=ssh.service _UID=0` alone would miss all of them, so the built-in source
//! adds root's syslog entries with sshd's identifiers (`_UID` is the kernel's: no user can
//! write one; README, "Journal sources").
//!
//! The test makes the case certain instead of likely: journald is stopped (SIGSTOP) while
//! the attack runs and let go once every connection's processes have exited (its syslog
//! socket holds 11 datagrams, `net.unix.max_dgram_qlen` being 10 here as on Debian, whose
//! systemd ships no 50-default.conf: the attack writes 9). sshd runs in a hand-made
//! `pct-sshexit-PID-N.slice/ssh.service` (common/journald.rs `UnitCgroup`) in a pid and
//! network namespace of its own, logging to journald's /dev/log; three ssh logins as root
//! (PermitRootLogin no) with a wrong password come from 203.0.113.5 (two lines each), and
//! `nobody` writes three forged "Failed password … from 198.51.100.7" lines with `logger -t
//! sshd` (also gone when journald looks). Asserted: journald stored sshd's failures without
//! `_SYSTEMD_UNIT`, as root, through syslog, under the identifier of a connection's process
//! (so the test did exercise the case), nobody's as 65534; the daemon's sshd jail on the
//! built-in source (no `logs`; maxretry 3, null firewall) bans 203.0.113.5 and never counts
//! 198.51.100.7. Checked by hand (a `logs` set to the source to try): the former source
//! (the unit and slice groups alone) counted nothing in any run, and the new one without
//! `SYSLOG_IDENTIFIER=sshd-session` nothing in the third. Three runs: Debian 12's sshd (OpenSSH 9.2p1, the machine's, identifier
//! `sshd`) under the journald of Debian 12 (systemd 252) and of Debian 13 (257, from the
//! trixie tree), and Debian 13's sshd (10.0p2, run with chroot in a private overlay of the
//! tree; a connection's lines come from `sshd-session`) under Debian 13's journald. (Not
//! 192.0.2.2: this machine's eth0 has it, and an own address is never counted.)
//!
//! The other tests do the same for every built-in filter whose server writes a failure from
//! a process of its own that ends with the connection, except Perdition, whose connections
//! run as nobody (filters/perdition.toml: a known loss) (`exited_case`: the server in a
//! hand-made unit, journald stopped during the attack, nobody's forged line of the same
//! shape written meanwhile or before; asserted: the failures stored without a unit, as uid
//! 0 or, for ocserv and postfix, as the daemon's own user, through syslog; the jail on the
//! filter's shipped journal source bans the attacker and never counts nobody's line). Each
//! was seen failing with the former, unit-only source (by hand for xinetd and solid-pop3d;
//! in the first runs of the others, before their filters changed):
//!
//! * xinetd-fail: Debian 12's xinetd 2.3.15.3 refuses 203.0.113.77 three times by libwrap
//!   (the child logs, then exits: src/child.c);
//! * solid-pop3d: Debian 12's 0.15 (test.sh's unpacked package, standalone), two wrong
//!   passwords;
//! * vsftpd (3.0.3, syslog_enable=YES: the lines of its privileged process), proftpd
//!   (1.3.8, `User nobody`: a session keeps root as its real uid before login) and pure-ftpd
//!   (1.0.50, under libfaketime), Debian 12's, two wrong passwords each;
//! * dropbear: Debian 12's 2022.83 through syslog (without -E, as its init script runs it),
//!   two root logins with a wrong password;
//! * sendmail-reject: Debian 12's Sendmail 8.17.1 (`-L sm-mta`, test.sh's unpacked
//!   package), two sessions relaying to another domain;
//! * cockpit: Debian 12's cockpit-ws 287 with --no-tls, which runs cockpit-session for each
//!   login, two wrong passwords (curl);
//! * samba: Debian 12's smbd 4.17, its auth audit through syslog, two wrong passwords
//!   (smbclient);
//! * xrdp: Debian 13's 0.10.1 (chroot in the trixie tree), whose sesman forks an
//!   xrdp-sesexec per login, one wrong password from xfreerdp, which leaves once refused
//!   (sesexec waits for a retry until then);
//! * ocserv: Debian 12's 1.1.6, its workers as the machine's `ocserv` user (Debian's
//!   `run-as-user`), two wrong passwords from openconnect: the failures come from that user,
//!   not root, and the filter's group names it (`_UID=ocserv`, which the reader turns into
//!   its number); without that term the jail counted nothing (seen by hand);
//! * postfix: Debian 12's Postfix 3.7 with `max_use=1` (an smtpd exits once it has served
//!   max_use clients, 100 by default), two relaying attempts: the lines come from the user
//!   postfix, which the filter's groups name (`_UID=postfix`);
//! * tcpwrappers and pam-generic, whose journal source is root's syslog entries under any
//!   name (libwrap and PAM log under the name of the program that uses them), new with
//!   these tests: Debian 12's tcpd behind a python inetd, two refused connections; the
//!   vsftpd run's pam_unix lines.
//!
//! Needs root, openssh-server, openssh-client, sshpass, xinetd, vsftpd, dropbear-bin,
//! cockpit-ws, curl, samba, smbclient, freerdp2-x11, tigervnc-standalone-server, tcpd,
//! ocserv, openconnect, postfix, python3, openssl, m4, systemd, util-linux, procps,
//! iproute2 and libfaketime, for the third sshd run and xrdp chroot and the trixie tree,
//! for the others test.sh's unpacked solid-pop3d, proftpd-core, pure-ftpd and sendmail;
//! fails (does not skip) otherwise. About 2-8 s each (tcpd holds a refused connection 5 s).

mod common;
mod sendmail;

use common::*;
use sendmail::{sendmail_mc, Sendmail, SENDMAIL_SH};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

/// sshd, in its own mount namespace with a /dev whose `log` is journald's socket ($1: the
/// test's directory; $2: Debian 13's tree, run with chroot in a private overlay of it, or
/// empty for the machine's sshd). The clients keep the machine's /dev (sshpass needs a pty).
const SSHD_SH: &str = r#"private_dev
ln -s /run/systemd/journal/dev-log /dev/log
if [ -n "$2" ]; then
  r="$1/root"
  trixie_mount "$2" "$r" "$1/trixie" || exit 4
  mkdir -p "$r/run/systemd/journal" "$r/run/sshd"
  mount --bind /run/systemd/journal "$r/run/systemd/journal" || exit 4
  exec chroot "$r" /usr/sbin/sshd -D -f "$1/sshd_config"
fi
exec /usr/sbin/sshd -D -f "$1/sshd_config"
"#;

/// Run by bash in journald's mount namespace, in a pid and network namespace of its own: $1
/// the test's directory. (After `in_unit`: [`UnitCgroup::shell_function`].)
const SCRIPT: &str = r#"set -u
d="$1"
ip link set lo up
for a in 192.0.2.1 203.0.113.5; do ip addr add "$a/32" dev lo || exit 2; done
mkdir -p /run/sshd
( in_unit; exec unshare -m --propagation private bash "$d/sshd.sh" "$d" "$2" ) &
sshd_pid=$!
for _ in $(seq 200); do
  [ -n "$(ss -Hltn 'sport = :22')" ] && break
  sleep 0.05
done
[ -n "$(ss -Hltn 'sport = :22')" ] || { echo "sshd does not listen" >&2; exit 3; }
# the test stops journald, then says go
ready_go
for i in 1 2 3; do
  SSHPASS=wrong timeout 20 sshpass -e ssh -F /dev/null -o StrictHostKeyChecking=no \
    -o UserKnownHostsFile=/dev/null -o PubkeyAuthentication=no \
    -o PreferredAuthentications=password -o NumberOfPasswordPrompts=1 \
    -o ConnectTimeout=5 -b 203.0.113.5 -p 22 -l root 192.0.2.1 true \
    < /dev/null >> "$d/client.out" 2>&1
  echo "$?" >> "$d/results"
done
# nobody: sshd's line about another address, from a program that exits at once (with
# sshd's 2 lines a connection, 9 datagrams: the stopped journald's socket holds 11)
for i in 1 2 3; do
  setpriv --reuid=65534 --regid=65534 --clear-groups \
    logger -t sshd -p auth.info -u /run/systemd/journal/dev-log \
    "Failed password for root from 198.51.100.7 port 4242 ssh2" || exit 5
done
# every connection's processes gone (reaped by the listener) before journald looks
for _ in $(seq 200); do
  [ -z "$(pgrep -P "$sshd_pid")" ] && break
  sleep 0.05
done
[ -z "$(pgrep -P "$sshd_pid")" ] || { echo "sshd's children did not exit" >&2; exit 6; }
attacked
"#;

#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn sshd_failures_whose_sender_exited_count_under_journald_252() {
    run(Release::Deb12, Release::Deb12);
}

#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn sshd_failures_whose_sender_exited_count_under_journald_257() {
    run(Release::Deb13, Release::Deb12);
}

#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn sshd_session_failures_whose_sender_exited_count_under_journald_257() {
    run(Release::Deb13, Release::Deb13);
}

/// `release`'s journald, `sshd`'s OpenSSH (9.2p1, or 10.0p2 whose connection processes are
/// `sshd-session`).
fn run(release: Release, sshd: Release) {
    require_root();
    for (program, package) in [
        ("sshd", "openssh-server"),
        ("ssh", "openssh-client"),
        ("sshpass", "sshpass"),
        ("logger", "bsdutils"),
        ("setpriv", "util-linux"),
        ("unshare", "util-linux"),
        ("nsenter", "util-linux"),
        ("pgrep", "procps"),
        ("ip", "iproute2"),
        ("ss", "iproute2"),
    ] {
        require_program(program, package);
    }
    let tree = match sshd {
        Release::Deb12 => String::new(),
        Release::Deb13 => {
            require_program("chroot", "coreutils");
            trixie_root(&TRIXIE_SSHD).display().to_string()
        }
    };
    // the identifier of a connection's lines
    let session = match sshd {
        Release::Deb12 => "sshd",
        Release::Deb13 => "sshd-session",
    };
    let dir = test_dir("sshexit");
    let d = dir.path().to_str().expect("utf-8 path").to_string();
    let path = |rel: &str| dir.path().join(rel);
    let read = |rel: &str| fs::read_to_string(path(rel)).unwrap_or_default();

    let key = path("ssh_host_ed25519_key");
    host_cmd(
        "ssh-keygen",
        &["-q", "-t", "ed25519", "-N", "", "-f", key.to_str().unwrap()],
        Duration::from_secs(20),
    )
    .check();
    fs::write(
        path("sshd_config"),
        format!(
            "Port 22\nListenAddress 192.0.2.1\nHostKey {key}\nPidFile {d}/sshd.pid\n\
             PasswordAuthentication yes\nKbdInteractiveAuthentication no\nUsePAM no\n\
             PermitRootLogin no\nMaxAuthTries 6\nLogLevel INFO\nSyslogFacility AUTH\n\
             UseDNS no\nLoginGraceTime 20\n",
            key = key.display()
        ),
    )
    .unwrap();

    let journald = Journald::start_on(
        release,
        Some("[Journal]\nStorage=volatile\nRateLimitBurst=0\n"),
    );
    journald.assert_release();
    let cgroup = UnitCgroup::private("sshexit", "ssh.service");
    // the sshd jail with the built-in source (no `logs`: the journal, journald running),
    // maxretry 3; null firewall
    let socket = path("portcullis.sock");
    let mut daemon = journald.sshd_jail_daemon(dir.path(), 3);

    fs::write(
        path("sshd.sh"),
        format!("{PRIVATE_SYSLOG_SH}{TRIXIE_SH}{SSHD_SH}"),
    )
    .unwrap();
    let mut server = journald.spawn_unit_script(
        &cgroup,
        dir.path(),
        &format!("{EXITED_SH}{SCRIPT}"),
        &[d.clone(), tree.clone()],
        "sshd in ssh.service",
    );
    let attacked = attack_while_stopped(&journald, &mut server, dir.path(), "sshd");
    assert!(
        attacked,
        "the attack did not end well (exit {:?}): {}\nclients: {}",
        server.try_wait(),
        read("run.stderr"),
        read("client.out")
    );
    // ssh's 255 after its one password prompt, refused
    assert!(
        read("results") == "255\n".repeat(3)
            && read("client.out").matches("Permission denied").count() == 3,
        "every login refused: {:?}; clients:\n{}",
        read("results"),
        read("client.out")
    );

    // ---- what journald stored ----
    let shown = |e: &[(String, serde_json::Value)]| -> String {
        e.iter()
            .map(|(m, v)| {
                format!(
                    "{} uid={} unit={} ident={} {m}\n",
                    v["_TRANSPORT"].as_str().unwrap_or("-"),
                    v["_UID"].as_str().unwrap_or("-"),
                    v["_SYSTEMD_UNIT"].as_str().unwrap_or("-"),
                    v["SYSLOG_IDENTIFIER"].as_str().unwrap_or("-"),
                )
            })
            .collect()
    };
    let mut all = Vec::new();
    let failed = |all: &[(String, serde_json::Value)], from: &str| {
        all.iter()
            .filter(|(m, _)| m.starts_with("Failed password for ") && m.contains(from))
            .cloned()
            .collect::<Vec<_>>()
    };
    let stored = wait_until(Duration::from_secs(20), || {
        all = journald.messages(&["SYSLOG_IDENTIFIER=sshd", "SYSLOG_IDENTIFIER=sshd-session"]);
        failed(&all, " from 203.0.113.5 ").len() == 3
            && failed(&all, " from 198.51.100.7 ").len() == 3
    });
    assert!(
        stored,
        "not every failure is in the journal:\n{}",
        shown(&all)
    );
    let listening: Vec<_> = all
        .iter()
        .filter(|(m, _)| m.starts_with("Server listening on 192.0.2.1 port 22"))
        .collect();
    assert!(
        listening
            .iter()
            .any(|(_, v)| v["_SYSTEMD_UNIT"] == "ssh.service" && v["_UID"] == "0"),
        "the listener's line (journald running, sshd alive) is not ssh.service's:\n{}",
        shown(&all)
    );
    for (m, v) in failed(&all, " from 203.0.113.5 ") {
        assert!(
            v.get("_SYSTEMD_UNIT").is_none()
                && v["_UID"] == "0"
                && v["_TRANSPORT"] == "syslog"
                && v["SYSLOG_IDENTIFIER"] == session,
            "sshd's failure, its process gone when journald took it: {m}\n{v}\njournal:\n{}",
            shown(&all)
        );
    }
    for (m, v) in failed(&all, " from 198.51.100.7 ") {
        assert!(
            v.get("_SYSTEMD_UNIT").is_none() && v["_UID"] == "65534",
            "nobody's forgery: {m}\n{v}"
        );
    }

    // ---- what the daemon did ----
    let banned = wait_until(Duration::from_secs(20), || {
        bans_by_jail(&socket)
            .get("sshd")
            .is_some_and(|b| b.contains("203.0.113.5"))
    });
    assert!(
        banned,
        "203.0.113.5 is not banned: failing {:?}\njournal:\n{}\ndaemon:\n{}",
        failing(&socket),
        shown(&all),
        read("daemon.log")
    );
    let counted = failing(&socket);
    assert!(
        !format!("{counted:?}{:?}", bans_by_jail(&socket)).contains("198.51.100.7")
            && !read("daemon.log").contains("198.51.100.7"),
        "nobody's forgery was counted: {counted:?}\ndaemon:\n{}",
        read("daemon.log")
    );
    eprintln!(
        "journal_exited_sender: journald of systemd {}, {} sshd failures without a unit",
        journald.versions().1,
        failed(&all, " from 203.0.113.5 ").len()
    );
    assert!(daemon.try_wait().is_none(), "the daemon exited");
    server.kill();
    daemon.kill();
}

/// xinetd in xinetd.service (Debian 12's 2.3.15.3): a private /etc whose hosts.deny refuses
/// 203.0.113.77 the libwrap name pct-wrap, a private /dev whose /dev/log is journald's, one
/// service (pct-wrap, /bin/cat as root, `log_on_success` empty, so that each refused
/// connection writes two lines, both from its child). $1 the test's directory. (After
/// `in_unit`, [`PRIVATE_ETC_SH`] and [`PRIVATE_SYSLOG_SH`].)
const XINETD_SCRIPT: &str = r#"set -u
d="$1"
mkdir -p "$d/etc-src"
: > "$d/etc-src/hosts.allow"
echo 'pct-wrap: 203.0.113.77' > "$d/etc-src/hosts.deny"
private_etc "$d/etc-ov" "$d/etc-src" hosts.allow hosts.deny || exit 2
private_dev
ln -s /run/systemd/journal/dev-log /dev/log
ip link set lo up
for a in 192.0.2.7 203.0.113.77; do ip addr add "$a/32" dev lo || exit 2; done
cat > "$d/xinetd.conf" <<C
defaults
{
  log_type = SYSLOG daemon info
  log_on_success =
  log_on_failure = HOST
}
service pct-wrap
{
  type = UNLISTED
  socket_type = stream
  protocol = tcp
  port = 7010
  wait = no
  user = root
  server = /bin/cat
  flags = REUSE
  bind = 192.0.2.7
  libwrap = pct-wrap
}
C
( in_unit; exec /usr/sbin/xinetd -dontfork -f "$d/xinetd.conf" -syslog daemon -pidfile "$d/xinetd.pid" 2>"$d/xinetd.err" ) &
xinetd_pid=$!
for _ in $(seq 200); do
  [ -n "$(ss -Hltn 'sport = :7010')" ] && break
  sleep 0.05
done
[ -n "$(ss -Hltn 'sport = :7010')" ] || { echo "xinetd does not listen" >&2; exit 3; }
ready_go
python3 - > "$d/clients" 2>"$d/python.err" <<'P'
import socket
for _ in range(3):
    s = socket.socket()
    s.bind(("203.0.113.77", 0))
    s.settimeout(5)
    try:
        s.connect(("192.0.2.7", 7010))
        s.sendall(b"hello\n")
        print("served" if s.recv(100) == b"hello\n" else "refused", flush=True)
    except OSError:
        print("refused", flush=True)
    s.close()
P
# every child gone (reaped by xinetd) before journald looks
for _ in $(seq 200); do
  [ -z "$(pgrep -P "$xinetd_pid")" ] && break
  sleep 0.05
done
[ -z "$(pgrep -P "$xinetd_pid")" ] || { echo "xinetd's children did not exit" >&2; exit 6; }
attacked
"#;

/// Debian 12's solid-pop3d 0.15 (test.sh's unpacked package, $2; standalone, a process per
/// session) in solid-pop3d.service, logging to journald's /dev/log; accounts in a private
/// /etc (`spop3d`, the user it drops to, uid $3; `pctpop`). Two sessions from 203.0.113.5
/// with a wrong password, in parallel. $1 the test's directory. (After `in_unit`,
/// [`PRIVATE_ETC_SH`] and [`PRIVATE_SYSLOG_SH`].)
const SOLIDPOP3D_SCRIPT: &str = r#"set -u
d="$1"; root="$2"; uid="$3"
ip link set lo up
for a in 192.0.2.1 203.0.113.5; do ip addr add "$a/32" dev lo || exit 2; done
private_dev
ln -s /run/systemd/journal/dev-log /dev/log
mkdir -p "$d/etc-src/pam.d" "$d/mail"
chmod 1777 "$d/mail"
cp /etc/passwd /etc/group /etc/shadow "$d/etc-src/"
cp "$root/etc/pam.d/solid-pop3d" "$d/etc-src/pam.d/"
hash=$(openssl passwd -6 Right-pw-1) || exit 4
echo "spop3d:x:$uid:$uid:solid-pop3d:/nonexistent:/usr/sbin/nologin" >> "$d/etc-src/passwd"
echo "spop3d:*:20000:0:99999:7:::" >> "$d/etc-src/shadow"
echo "spop3d:x:$uid:" >> "$d/etc-src/group"
echo "pctpop:x:$((uid + 1)):$uid:pop test:$d:/bin/sh" >> "$d/etc-src/passwd"
echo "pctpop:$hash:20000:0:99999:7:::" >> "$d/etc-src/shadow"
private_etc "$d/etc-ov" "$d/etc-src" passwd group shadow pam.d/solid-pop3d || exit 4
printf '<Global>\n\tMailDropName\t"%s/mail/%%s"\n\tMailDropType\tmailbox\n\tLogStatistics\tno\n\tAddBulletins\tno\n</Global>\n' "$d" > "$d/spop3d.conf"
chmod 644 "$d/spop3d.conf"
( in_unit; LD_LIBRARY_PATH="$root/usr/lib/x86_64-linux-gnu" exec "$root/usr/sbin/solid-pop3d" -f "$d/spop3d.conf" 2> "$d/spop3d.err" )
for _ in $(seq 100); do ss -Hltn 'sport = :110' | grep -q . && break; sleep 0.1; done
ss -Hltn 'sport = :110' | grep -q . || { echo "solid-pop3d did not listen" >&2; exit 5; }
ready_go
python3 - > "$d/clients" 2>"$d/python.err" <<'P'
import socket, threading
got = []
def session(pw):
    s = socket.socket()
    s.bind(("203.0.113.5", 0))
    s.settimeout(15)
    s.connect(("192.0.2.1", 110))
    f = s.makefile("rb")
    f.readline()
    s.sendall(b"USER pctpop\r\n"); f.readline()
    s.sendall(b"PASS " + pw + b"\r\n")
    got.append(f.readline().decode().split(" ")[0])
    s.close()
ts = [threading.Thread(target=session, args=(p,)) for p in (b"wrong1", b"wrong2")]
for t in ts: t.start()
for t in ts: t.join()
# after both: two threads' prints can interleave
print("\n".join(got))
P
# every session's process gone (only the listener left) before journald looks
for _ in $(seq 200); do
  [ "$(pgrep -c -x solid-pop3d)" = 1 ] && break
  sleep 0.05
done
[ "$(pgrep -c -x solid-pop3d)" = 1 ] || { echo "the sessions did not exit" >&2; exit 6; }
attacked
"#;

/// An FTP server of Debian 12 ($2: vsftpd 3.0.3, the machine's; proftpd 1.3.8 or pure-ftpd
/// 1.0.50, test.sh's unpacked packages under $3) in the case's unit, logging to journald's
/// /dev/log; one account (`pctftp`, uid $4) in a private /etc. Two sessions from 203.0.113.5
/// with a wrong password each (USER, PASS, QUIT), one after the other. $1 the test's
/// directory. (After
/// `in_unit`, [`PRIVATE_ETC_SH`] and [`PRIVATE_SYSLOG_SH`].)
const FTP_SCRIPT: &str = r#"set -u
d="$1"; kind="$2"; root="$3"; uid="$4"
ip link set lo up
for a in 192.0.2.1 203.0.113.5; do ip addr add "$a/32" dev lo || exit 2; done
private_dev
ln -s /run/systemd/journal/dev-log /dev/log
mkdir -p "$d/etc-src/pam.d" "$d/empty" "$d/home"
cp /etc/passwd /etc/group /etc/shadow "$d/etc-src/"
hash=$(openssl passwd -6 Right-pw-1) || exit 4
echo "pctftp:x:$uid:$uid:ftp test:$d/home:/bin/sh" >> "$d/etc-src/passwd"
echo "pctftp:$hash:20000:0:99999:7:::" >> "$d/etc-src/shadow"
echo "pctftp:x:$uid:" >> "$d/etc-src/group"
printf 'auth required pam_unix.so nodelay\naccount required pam_unix.so\nsession required pam_permit.so\n' \
  > "$d/etc-src/pam.d/vsftpd"
: > "$d/etc-src/ftpusers"
private_etc "$d/etc-ov" "$d/etc-src" passwd group shadow ftpusers pam.d/vsftpd || exit 4
case $kind in
vsftpd)
  printf '%s\n' listen=YES listen_address=192.0.2.1 background=NO anonymous_enable=NO \
    local_enable=YES pam_service_name=vsftpd "secure_chroot_dir=$d/empty" syslog_enable=YES \
    seccomp_sandbox=NO nopriv_user=nobody delay_failed_login=0 > "$d/vsftpd.conf"
  ( in_unit; exec /usr/sbin/vsftpd "$d/vsftpd.conf" 2> "$d/server.err" ) &
  ;;
proftpd)
  printf '%s\n' 'ServerName "portcullis test"' 'ServerType standalone' 'DefaultServer on' \
    'Port 21' 'DefaultAddress 192.0.2.1' 'SocketBindTight on' 'UseIPv6 off' 'UseReverseDNS off' \
    'User nobody' 'Group nogroup' "PidFile $d/proftpd.pid" "ScoreboardFile $d/proftpd.scoreboard" \
    'WtmpLog off' 'DelayEngine off' 'AuthPAM off' 'AuthOrder mod_auth_unix.c' \
    'SyslogFacility AUTH' 'RequireValidShell off' > "$d/proftpd.conf"
  # it detaches (with -n it would log to stderr, not syslog); the pid namespace keeps it
  ( in_unit; LD_LIBRARY_PATH="$root/usr/lib/x86_64-linux-gnu" exec "$root/usr/sbin/proftpd" \
      -c "$d/proftpd.conf" 2> "$d/server.err" ) || exit 3
  ;;
pure-ftpd)
  # it sleeps 3 to 6 s after a failed password (real_ftp.rs): Debian's libfaketime, 50 times
  ( in_unit; LD_PRELOAD=/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1 FAKETIME="+0 x50" \
      exec "$root/usr/sbin/pure-ftpd" -S 192.0.2.1,21 -l unix -E -H 2> "$d/server.err" ) &
  ;;
esac
for _ in $(seq 200); do ss -Hltn 'sport = :21' | grep -q . && break; sleep 0.05; done
ss -Hltn 'sport = :21' | grep -q . || { echo "$kind did not listen" >&2; exit 3; }
ready_go
python3 - > "$d/clients" 2>"$d/python.err" <<'P'
import socket
def reply(f):
    while True:
        line = f.readline().decode()
        if len(line) < 4 or line[3] == " ":
            return line[:3]
for pw in (b"wrong1", b"wrong2"):
    s = socket.socket()
    s.bind(("203.0.113.5", 0))
    s.settimeout(15)
    s.connect(("192.0.2.1", 21))
    f = s.makefile("rb")
    reply(f)
    s.sendall(b"USER pctftp\r\n"); reply(f)
    s.sendall(b"PASS " + pw + b"\r\n")
    print(reply(f), flush=True)
    s.sendall(b"QUIT\r\n"); reply(f)
    s.close()
P
# every session's process gone (only the listener left) before journald looks
for _ in $(seq 200); do
  [ "$(pgrep -c -x "$kind")" = 1 ] && break
  sleep 0.05
done
[ "$(pgrep -c -x "$kind")" = 1 ] || { echo "the sessions did not exit: $(pgrep -a -x "$kind")" >&2; exit 6; }
attacked
"#;

/// The FTP servers' failures come from the session's process, which ends with the client:
/// with journald stopped meanwhile they are stored without `_SYSTEMD_UNIT`, as root, and the
/// shipped journal source still counts them (its root-identifier group); nobody's forged
/// line counts nothing.
fn ftp_case(kind: &'static str, unit: &'static str, failure: &'static str, forged: &str) {
    ftp_filter_case(kind, kind, unit, failure, forged);
}

/// [`ftp_case`] with a jail on `filter`'s shipped journal source.
fn ftp_filter_case(
    kind: &'static str,
    filter: &'static str,
    unit: &'static str,
    failure: &'static str,
    forged: &str,
) {
    require_program("openssl", "openssl");
    let root = match kind {
        "vsftpd" => {
            require_program("vsftpd", "vsftpd");
            String::new()
        }
        "proftpd" => unpacked(
            "PORTCULLIS_PROFTPD_ROOT",
            "/var/cache/portcullis-test/proftpd/root",
            &["usr/sbin/proftpd"],
            "Debian's proftpd-core",
        )
        .display()
        .to_string(),
        _ => unpacked(
            "PORTCULLIS_PUREFTPD_ROOT",
            "/var/cache/portcullis-test/pure-ftpd/root",
            &["usr/sbin/pure-ftpd"],
            "Debian's pure-ftpd",
        )
        .display()
        .to_string(),
    };
    exited_case(ExitedCase {
        label: "ftpexit",
        unit,
        filter,
        script: format!("{PRIVATE_ETC_SH}{PRIVATE_SYSLOG_SH}{FTP_SCRIPT}"),
        args: vec![kind.into(), root, free_ids(1, 65300..65500).to_string()],
        ident: kind,
        failure,
        attacker: ("203.0.113.5", 2),
        forged: forged.into(),
        clients: "530\n".repeat(2),
        uid: "0".into(),
        setup: Box::new(|_| ()),
    });
}

#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn vsftpd_failures_whose_session_exited_count_under_journald_252() {
    ftp_case(
        "vsftpd",
        "vsftpd.service",
        "FAIL LOGIN: Client ",
        "[pctftp] FAIL LOGIN: Client \"198.51.100.7\"",
    );
}

/// pam-generic's journal source (root's syslog entries, any name) reads the pam_unix lines of
/// vsftpd's privileged process, written as root and stored without a unit when the session
/// ended first; nobody's forged pam_unix line counts nothing.
#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn pam_failures_of_vsftpd_count_from_the_journal_under_journald_252() {
    ftp_filter_case(
        "vsftpd",
        "pam-generic",
        "vsftpd.service",
        "pam_unix(vsftpd:auth): authentication failure;",
        "pam_unix(vsftpd:auth): authentication failure; logname= uid=0 euid=0 tty=ftp \
         ruser=pctftp rhost=198.51.100.7  user=pctftp",
    );
}

#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn proftpd_failures_whose_session_exited_count_under_journald_252() {
    ftp_case(
        "proftpd",
        "proftpd.service",
        "(Login failed)",
        "192.0.2.1 (198.51.100.7[198.51.100.7]) - USER pctftp (Login failed): Incorrect password",
    );
}

#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn pureftpd_failures_whose_session_exited_count_under_journald_252() {
    ftp_case(
        "pure-ftpd",
        "pure-ftpd.service",
        "Authentication failed for user",
        "(?@198.51.100.7) [WARNING] Authentication failed for user [pctftp]",
    );
}

/// Debian 12's Dropbear (2022.83, the machine's) in dropbear.service as Debian's init script
/// runs it (`dropbear` without -E: its lines go through syslog(3); Debian's dropbear.service
/// adds -E, a journal stream systemd opens for the unit), logging to journald's /dev/log;
/// two ssh logins as root from 203.0.113.5 with one wrong password each. $1 the test's
/// directory. (After `in_unit` and [`PRIVATE_SYSLOG_SH`].)
const DROPBEAR_SCRIPT: &str = r#"set -u
d="$1"
ip link set lo up
for a in 192.0.2.1 203.0.113.5; do ip addr add "$a/32" dev lo || exit 2; done
dropbearkey -t ed25519 -f "$d/hostkey" > "$d/dropbearkey.out" 2>&1 || exit 3
# a private /dev for Dropbear alone (the clients keep the machine's: sshpass needs a pty)
( in_unit; exec unshare -m --propagation private bash -c "$(declare -f private_dev)
  private_dev; ln -s /run/systemd/journal/dev-log /dev/log
  exec dropbear -F -p 192.0.2.1:22 -r '$d/hostkey'" 2> "$d/server.err" ) &
for _ in $(seq 200); do ss -Hltn 'sport = :22' | grep -q . && break; sleep 0.05; done
ss -Hltn 'sport = :22' | grep -q . || { echo "dropbear did not listen" >&2; exit 3; }
ready_go
for i in 1 2; do
  SSHPASS=wrong timeout 20 sshpass -e ssh -F /dev/null -o StrictHostKeyChecking=no \
    -o UserKnownHostsFile=/dev/null -o PubkeyAuthentication=no \
    -o PreferredAuthentications=password -o NumberOfPasswordPrompts=1 \
    -o ConnectTimeout=5 -b 203.0.113.5 -p 22 -l root 192.0.2.1 true \
    < /dev/null >> "$d/client.out" 2>&1
  echo "$?" >> "$d/clients"
done
for _ in $(seq 200); do
  [ "$(pgrep -c -x dropbear)" = 1 ] && break
  sleep 0.05
done
[ "$(pgrep -c -x dropbear)" = 1 ] || { echo "the sessions did not exit" >&2; exit 6; }
attacked
"#;

/// Dropbear's failures come from the connection's process, which ends with it: with
/// journald stopped meanwhile they are stored without `_SYSTEMD_UNIT`, as root, and the
/// shipped journal source still counts them (its root-identifier group for syslog); nobody's
/// forged line counts nothing.
#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn dropbear_failures_whose_session_exited_count_under_journald_252() {
    for (program, package) in [
        ("dropbear", "dropbear-bin"),
        ("dropbearkey", "dropbear-bin"),
        ("sshpass", "sshpass"),
        ("ssh", "openssh-client"),
    ] {
        require_program(program, package);
    }
    exited_case(ExitedCase {
        label: "dropbearexit",
        unit: "dropbear.service",
        filter: "dropbear",
        script: format!("{PRIVATE_SYSLOG_SH}{DROPBEAR_SCRIPT}"),
        args: Vec::new(),
        ident: "dropbear",
        failure: "Bad password attempt for 'root' from ",
        attacker: ("203.0.113.5", 2),
        forged: "Bad password attempt for 'root' from 198.51.100.7:4242".into(),
        clients: "255\n".repeat(2),
        uid: "0".into(),
        setup: Box::new(|_| ()),
    });
}

/// Debian 12's Sendmail 8.17.1 (test.sh's unpacked sendmail-bin, $2; tests/sendmail/mod.rs
/// `sendmail_release`, the test's etc/ files over the host's /etc) in sendmail.service as
/// Debian's init script runs it (`-L sm-mta`), in a private UTS namespace (mx.example.net),
/// logging to journald's /dev/log. Two sessions from 203.0.113.5, each relaying to another
/// domain (550 Relaying denied), then QUIT. $1 the test's directory. (After `in_unit`,
/// [`PRIVATE_ETC_SH`], [`PRIVATE_SYSLOG_SH`], [`TRIXIE_SH`] and [`SENDMAIL_SH`].)
const SENDMAIL_SCRIPT: &str = r#"set -u
d="$1"; unp="$2"
ip link set lo up
for a in 192.0.2.1 203.0.113.5; do ip addr add "$a/32" dev lo || exit 2; done
ip addr add 2001:db8::1/128 dev lo nodad || exit 2
private_dev
ln -s /run/systemd/journal/dev-log /dev/log
sendmail_release "$d/sm" "$unp" "" "$d/etc" passwd group nsswitch.conf hosts || exit 4
m4 "$d/sendmail.mc" > "$d/sendmail.cf" 2>"$d/m4.err" && [ ! -s "$d/m4.err" ] || exit 4
mkdir -p "$d/mqueue"
"${smx[@]}" "$smbin/sendmail" -C "$d/sendmail.cf" -bi > "$d/bi.out" 2>&1 || exit 4
( in_unit; exec unshare --uts sh -c 'hostname mx.example.net && exec "$@"' sh \
    "${smx[@]}" "$smbin/sendmail" -C "$d/sendmail.cf" -bD -L sm-mta 2>"$d/sendmail.err" ) &
for _ in $(seq 200); do ss -Hltn 'src 192.0.2.1 and sport = :25' | grep -q . && break; sleep 0.05; done
ss -Hltn 'src 192.0.2.1 and sport = :25' | grep -q . || { echo "sendmail did not listen" >&2; exit 3; }
ready_go
relay_twice
for _ in $(seq 200); do
  [ "$(pgrep -c -x sendmail)" = 1 ] && break
  sleep 0.05
done
[ "$(pgrep -c -x sendmail)" = 1 ] || { echo "the sessions did not exit: $(pgrep -a -x sendmail)" >&2; exit 6; }
attacked
"#;

/// Sendmail's rejections come from the session's process (a child of the daemon per
/// connection), which ends with the client: with journald stopped meanwhile they are stored
/// without `_SYSTEMD_UNIT`, as root, and the shipped journal source of sendmail-reject still
/// counts them (its root-identifier group); nobody's forged line counts nothing.
#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn sendmail_rejections_whose_session_exited_count_under_journald_252() {
    require_program("m4", "m4");
    let sm = Sendmail::new(Release::Deb12);
    let cf_dir = sm.cf_dir().display().to_string();
    exited_case(ExitedCase {
        label: "sendmailexit",
        unit: "sendmail.service",
        filter: "sendmail-reject",
        script: format!(
            "{PRIVATE_ETC_SH}{PRIVATE_SYSLOG_SH}{TRIXIE_SH}{SENDMAIL_SH}{SENDMAIL_SCRIPT}"
        ),
        args: vec![sm.root.display().to_string()],
        ident: "sm-mta",
        failure: "Relaying denied",
        attacker: ("203.0.113.5", 2),
        forged:
            "wALA01xx009201: ruleset=check_rcpt, arg1=<victim@example.com>, relay=[198.51.100.7], \
                 reject=550 5.7.1 <victim@example.com>... Relaying denied. IP name lookup failed \
                 [198.51.100.7]"
                .into(),
        clients: "550\n".repeat(2),
        uid: "0".into(),
        setup: Box::new(move |d: &std::path::Path| {
            let hosts = "127.0.0.1 localhost\n::1 localhost\n192.0.2.1 mx.example.net mx\n";
            fs::create_dir(d.join("etc")).unwrap();
            write_account_etc(
                &d.join("etc"),
                "alice",
                free_ids(1, 65500..65700),
                "Alice",
                hosts,
            );
            let ds = d.to_str().expect("utf-8 path");
            fs::write(d.join("sendmail.mc"), sendmail_mc(&cf_dir, ds, "")).unwrap();
            fs::write(d.join("service.switch"), "hosts files\naliases files\n").unwrap();
            fs::write(d.join("aliases"), "postmaster: root\n").unwrap();
            fs::write(d.join("hosts"), hosts).unwrap();
        }),
    });
}

/// Debian 12's Cockpit 287 (the machine's): cockpit-ws with `--no-tls` on 192.0.2.1:9090 in
/// cockpit.service, which runs the root helper cockpit-session for each login (PAM service
/// cockpit, pam_unix through common-auth); a private /etc (cockpit.conf's
/// AllowUnencrypted=true, an account `pctcockpit`, uid $2) and a /dev whose /dev/log is
/// journald's. Two logins with a wrong password from 203.0.113.5 (curl, HTTP basic, 401).
/// $1 the test's directory. (After `in_unit`, [`PRIVATE_ETC_SH`] and [`PRIVATE_SYSLOG_SH`].)
const COCKPIT_SCRIPT: &str = r#"set -u
d="$1"; uid="$2"
ip link set lo up
for a in 192.0.2.1 203.0.113.5; do ip addr add "$a/32" dev lo || exit 2; done
mkdir -p "$d/etc-src/cockpit"
cp /etc/passwd /etc/group /etc/shadow "$d/etc-src/"
hash=$(openssl passwd -6 Right-pw-1) || exit 4
echo "pctcockpit:x:$uid:$uid:cockpit test:/nonexistent:/bin/sh" >> "$d/etc-src/passwd"
echo "pctcockpit:$hash:20000:0:99999:7:::" >> "$d/etc-src/shadow"
echo "pctcockpit:x:$uid:" >> "$d/etc-src/group"
printf '[WebService]\nAllowUnencrypted=true\n' > "$d/etc-src/cockpit/cockpit.conf"
private_etc "$d/etc-ov" "$d/etc-src" passwd group shadow cockpit/cockpit.conf || exit 4
# a private /dev for Cockpit alone (curl keeps the machine's)
( in_unit; exec unshare -m --propagation private bash -c "$(declare -f private_dev)
  private_dev; ln -s /run/systemd/journal/dev-log /dev/log
  exec /usr/lib/cockpit/cockpit-ws --no-tls --port 9090 --address 192.0.2.1" 2> "$d/server.err" ) &
for _ in $(seq 200); do ss -Hltn 'sport = :9090' | grep -q . && break; sleep 0.05; done
ss -Hltn 'sport = :9090' | grep -q . || { echo "cockpit-ws did not listen" >&2; exit 3; }
ready_go
for pw in wrong1 wrong2; do
  timeout 20 curl -s -o /dev/null -w '%{http_code}\n' --interface 203.0.113.5 \
    -u "pctcockpit:$pw" http://192.0.2.1:9090/cockpit/login >> "$d/clients" 2>> "$d/curl.err"
done
for _ in $(seq 200); do
  [ "$(pgrep -c -x cockpit-session)" = 0 ] && break
  sleep 0.05
done
[ "$(pgrep -c -x cockpit-session)" = 0 ] || { echo "cockpit-session did not exit" >&2; exit 6; }
attacked
"#;

/// Cockpit's PAM failures come from cockpit-session, a process per login that ends once the
/// login has failed: with journald stopped meanwhile they are stored without a unit, as root,
/// and the shipped journal source still counts them (its root-identifier group); nobody's
/// forged line counts nothing.
#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn cockpit_failures_whose_session_exited_count_under_journald_252() {
    require_program("curl", "curl");
    require_program("openssl", "openssl");
    assert!(
        std::path::Path::new("/usr/lib/cockpit/cockpit-ws").is_file(),
        "cockpit-ws is missing (test.sh installs it)"
    );
    exited_case(ExitedCase {
        label: "cockpitexit",
        unit: "cockpit.service",
        filter: "cockpit",
        script: format!("{PRIVATE_ETC_SH}{PRIVATE_SYSLOG_SH}{COCKPIT_SCRIPT}"),
        args: vec![free_ids(1, 65700..65900).to_string()],
        ident: "cockpit-session",
        failure: "pam_unix(cockpit:auth): authentication failure",
        attacker: ("203.0.113.5", 2),
        forged: "pam_unix(cockpit:auth): authentication failure; logname= uid=0 euid=0 tty= \
                 ruser= rhost=198.51.100.7  user=pctcockpit"
            .into(),
        clients: "401\n".repeat(2),
        uid: "0".into(),
        setup: Box::new(|_| ()),
    });
}

/// Debian 12's Samba 4.17 (the machine's smbd) in smbd.service as Debian's unit runs it
/// (`smbd --foreground --no-process-group`), standalone on 192.0.2.1, every directory of its
/// own under the test's (real_samba.rs), one tdbsam user `pctsmb` (uid $2, in a private
/// /etc), the auth audit through syslog (`logging = syslog@3`) to journald's /dev/log. Two
/// logins with a wrong password from 203.0.113.77 (smbclient; the local route's preferred
/// source). $1 the test's directory. (After `in_unit`, [`PRIVATE_ETC_SH`] and
/// [`PRIVATE_SYSLOG_SH`].)
const SAMBA_SCRIPT: &str = r#"set -u
d="$1"; uid="$2"
ip link set lo up
for a in 192.0.2.1 203.0.113.77; do ip addr add "$a/32" dev lo || exit 2; done
private_dev
ln -s /run/systemd/journal/dev-log /dev/log
for x in /var/log/samba /var/lib/samba /var/cache/samba /run/samba; do
  if [ -d "$x" ]; then mount -t tmpfs -o mode=755 pct-samba "$x" || exit 4; fi
done
mkdir -p "$d/etc-src" "$d/share" "$d/s/private" "$d/s/state" "$d/s/cache" "$d/s/lock" \
  "$d/s/pid" "$d/s/ncalrpc" "$d/s/bind-dns" "$d/c"
cp /etc/passwd /etc/group "$d/etc-src/"
echo "pctsmb:x:$uid:$uid:samba test:$d/share:/usr/sbin/nologin" >> "$d/etc-src/passwd"
echo "pctsmb:x:$uid:" >> "$d/etc-src/group"
private_etc "$d/etc-ov" "$d/etc-src" passwd group || exit 4
cat > "$d/smb.conf" <<C
[global]
  server role = standalone server
  workgroup = PCTTEST
  netbios name = FS1
  interfaces = 192.0.2.1
  bind interfaces only = yes
  smb ports = 445
  disable netbios = yes
  passdb backend = tdbsam:$d/s/private/passdb.tdb
  private dir = $d/s/private
  state directory = $d/s/state
  cache directory = $d/s/cache
  lock directory = $d/s/lock
  pid directory = $d/s/pid
  ncalrpc dir = $d/s/ncalrpc
  binddns dir = $d/s/bind-dns
  usershare path =
  load printers = no
  printing = bsd
  printcap name = /dev/null
  disable spoolss = yes
  log file = $d/log.smbd
  max log size = 0
  log level = 1 auth_audit:3
  logging = syslog@3 file
[share]
  path = $d/share
  read only = yes
C
printf 'Right-pw-1\nRight-pw-1\n' | pdbedit -s "$d/smb.conf" -a -t -u pctsmb > "$d/pdbedit.out" 2>&1 \
  || { cat "$d/pdbedit.out" >&2; exit 5; }
( in_unit; exec smbd --foreground --no-process-group -s "$d/smb.conf" > "$d/smbd.out" 2>&1 ) &
for _ in $(seq 100); do ss -Hltn | grep -q '192.0.2.1:445' && break; sleep 0.1; done
ss -Hltn | grep -q '192.0.2.1:445' || { echo "smbd did not start" >&2; cat "$d/smbd.out" >&2; exit 6; }
cat > "$d/client.conf" <<C
[global]
  workgroup = PCTTEST
  private dir = $d/c
  state directory = $d/c
  cache directory = $d/c
  lock directory = $d/c
  client min protocol = SMB2
C
ip route replace local 192.0.2.1 dev lo table local src 203.0.113.77 || exit 7
# the unit's processes now (a connection's child may rename itself: counted in the cgroup)
baseline=$(unit_procs)
ready_go
for pw in wrong-1 wrong-2; do
  timeout 10 smbclient -s "$d/client.conf" //192.0.2.1/share -m SMB3 -c ls -U "pctsmb%$pw" \
    > "$d/client.out" 2>&1
  grep -o -m1 -E 'NT_STATUS_[A-Z_]+' "$d/client.out" >> "$d/clients"
done
# every connection's smbd gone (only those of before the attack left) before journald looks
for _ in $(seq 200); do
  [ "$(unit_procs)" -le "$baseline" ] && break
  sleep 0.05
done
[ "$(unit_procs)" -le "$baseline" ] || { echo "the connections' smbd did not exit: $(pgrep -a smbd)" >&2; exit 6; }
attacked
"#;

/// Samba's audit lines of a failed login come from the connection's smbd, which ends with
/// the client: with journald stopped meanwhile they are stored without `_SYSTEMD_UNIT`, as
/// root, and the shipped journal source still counts them (its root-identifier group);
/// nobody's forged line counts nothing.
#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn samba_failures_whose_connection_exited_count_under_journald_252() {
    for (program, package) in [
        ("smbd", "samba"),
        ("pdbedit", "samba"),
        ("smbclient", "smbclient"),
    ] {
        require_program(program, package);
    }
    exited_case(ExitedCase {
        label: "sambaexit",
        unit: "smbd.service",
        filter: "samba",
        script: format!("{PRIVATE_ETC_SH}{PRIVATE_SYSLOG_SH}{SAMBA_SCRIPT}"),
        args: vec![free_ids(1, 65900..66100).to_string()],
        ident: "smbd",
        failure: "status [NT_STATUS_WRONG_PASSWORD]",
        attacker: ("203.0.113.77", 2),
        forged: "  Auth: [SMB2,(null)] user [PCTTEST]\\[pctsmb] at [Sat, 05 Dec 2026 \
                 12:00:00.000000 UTC] with [NTLMv2] status [NT_STATUS_WRONG_PASSWORD] \
                 workstation [X] remote host [ipv4:198.51.100.7:40000] mapped to \
                 [PCTTEST]\\[pctsmb]. local host [ipv4:192.0.2.1:445]"
            .into(),
        clients: "NT_STATUS_LOGON_FAILURE\n".repeat(2),
        uid: "0".into(),
        setup: Box::new(|_| ()),
    });
}

/// Debian 13's xrdp 0.10.1 in xrdp-sesman.service, run with chroot in a private overlay of
/// the trixie tree ($3), whose sesman forks an `xrdp-sesexec` per login that authenticates
/// it (Debian 12's 0.9 authenticates in sesman itself, which lives on: not run), as
/// real_xrdp.rs runs it (private /run, /tmp and /etc, the account `pctrdp`, uid $2, pam_unix
/// without its delay), sesman logging through syslog to journald's /dev/log (xrdp itself to
/// its file only: its many lines of a connection would fill journald's socket while it is
/// stopped). One xfreerdp login with a wrong password from 203.0.113.5 (the preferred source
/// of the server address's local route), drawing on a private Xtigervnc display. $1 the
/// test's directory. (After `in_unit`, [`PRIVATE_SYSLOG_SH`] and [`TRIXIE_SH`].)
const XRDP_SCRIPT: &str = r#"set -u
d="$1"; uid="$2"; tree="$3"
ip link set lo up
for a in 192.0.2.1 203.0.113.5; do ip addr add "$a/32" dev lo || exit 2; done
# private /run and /tmp (the X servers' sockets and locks), journald's sockets and the
# test's directory (under /tmp) kept in them
mkdir -p "$d/jsock" && mount --bind /run/systemd/journal "$d/jsock" || exit 4
mount -t tmpfs -o mode=755 pct-run /run || exit 4
mkdir /run/pct-d && mount --rbind "$d" /run/pct-d || exit 4
mkdir -p /run/systemd/journal && mount --bind /run/pct-d/jsock /run/systemd/journal || exit 4
mount -t tmpfs -o mode=1777 pct-tmp /tmp || exit 4
mkdir -p "$d" && mount --rbind /run/pct-d "$d" || exit 4
mkdir -p /run/xrdp/sockdir
private_dev
ln -s /run/systemd/journal/dev-log /dev/log
r="$d/root"
trixie_mount "$tree" "$r" "$d/trixie" || exit 4
mkdir -p "$r/run/systemd/journal" "$r/run/xrdp/sockdir"
mount --bind /run/systemd/journal "$r/run/systemd/journal" || exit 4
mkdir -p "$d/etc-src/pam.d" "$d/home" "$d/client"
chown "$uid:$uid" "$d/home"
cp "$r/etc/passwd" "$r/etc/group" "$r/etc/shadow" "$d/etc-src/"
hash=$(openssl passwd -6 Right-pw-1) || exit 4
echo "pctrdp:x:$uid:$uid:xrdp test:$d/home:/bin/sh" >> "$d/etc-src/passwd"
echo "pctrdp:$hash:20000:0:99999:7:::" >> "$d/etc-src/shadow"
echo "pctrdp:x:$uid:" >> "$d/etc-src/group"
printf 'auth [success=1 default=ignore] pam_unix.so nodelay\nauth requisite pam_deny.so\nauth required pam_permit.so\naccount required pam_unix.so\nsession required pam_unix.so\n' \
  > "$d/etc-src/pam.d/xrdp-sesman"
for f in passwd group shadow pam.d/xrdp-sesman; do cp "$d/etc-src/$f" "$r/etc/$f" || exit 4; done
cat > "$d/xrdp.ini" <<I
[Globals]
ini_version=1
fork=true
port=tcp://192.0.2.1:3389
security_layer=negotiate
crypt_level=high
certificate=
key_file=
ssl_protocols=TLSv1.2, TLSv1.3
allow_channels=true
[Logging]
LogFile=$d/xrdp.log
LogLevel=INFO
EnableSyslog=false
[Channels]
rdpdr=true
rdpsnd=true
drdynvc=true
cliprdr=true
rail=true
xrdpvr=true
tcutils=true
[Xvnc]
name=Xvnc
lib=libvnc.so
username=ask
password=ask
ip=127.0.0.1
port=-1
I
cat > "$d/sesman.ini" <<I
[Globals]
EnableUserWindowManager=true
UserWindowManager=startwm.sh
DefaultWindowManager=startwm.sh
ReconnectScript=reconnectwm.sh
[Security]
AllowRootLogin=false
MaxLoginRetry=4
AlwaysGroupCheck=false
[Sessions]
X11DisplayOffset=10
MaxSessions=50
[Logging]
LogFile=$d/xrdp-sesman.log
LogLevel=INFO
EnableSyslog=true
SyslogLevel=INFO
[Xvnc]
param=Xvnc
I
( in_unit; exec chroot "$r" /usr/sbin/xrdp-sesman --nodaemon --config "$d/sesman.ini" > "$d/sesman.out" 2>&1 ) &
chroot "$r" /usr/sbin/xrdp --nodaemon --config "$d/xrdp.ini" > "$d/xrdp.out" 2>&1 &
# 0.10's sesman listens on a socket in /run/xrdp, which xrdp finds there too
sesman_up() { [ -S "$r/run/xrdp/sockdir/sesman.socket" ]; }
Xtigervnc :73 -nolisten tcp -rfbport -1 -SecurityTypes None > "$d/xvnc.out" 2>&1 &
for _ in $(seq 100); do
  [ -n "$(ss -Hltn 'sport = :3389')" ] && sesman_up && [ -S /tmp/.X11-unix/X73 ] && break
  sleep 0.1
done
[ -n "$(ss -Hltn 'sport = :3389')" ] || { echo "xrdp did not listen" >&2; exit 5; }
sesman_up || { echo "xrdp-sesman did not listen" >&2; exit 5; }
[ -S /tmp/.X11-unix/X73 ] || { echo "Xtigervnc did not start" >&2; exit 5; }
export DISPLAY=:73 HOME="$d/client"
ip route replace local 192.0.2.1 dev lo table local proto kernel scope host src 203.0.113.5 || exit 6
ready_go
timeout 20 xfreerdp /v:192.0.2.1 /port:3389 /cert:ignore /u:pctrdp /p:wrong1 > "$d/rdp.out" 2>&1 &
rdp=$!
# the authenticating process writes its refusal to sesman's file too; then the client leaves,
# as a bot does (the process waits for a retry until then)
for _ in $(seq 200); do
  grep -q 'AUTHFAIL: user=pctrdp ip=203.0.113.5 ' "$d/xrdp-sesman.log" 2>/dev/null && break
  sleep 0.1
done
grep -q 'AUTHFAIL: user=pctrdp ip=203.0.113.5 ' "$d/xrdp-sesman.log" && echo refused >> "$d/clients"
kill "$rdp"
# the authenticating process gone
for _ in $(seq 200); do
  [ -z "$(pgrep -x xrdp-sesexec)" ] && break
  sleep 0.05
done
[ -z "$(pgrep -x xrdp-sesexec)" ] || { echo "xrdp-sesexec did not exit" >&2; exit 6; }
attacked
"#;

/// xrdp 0.10's AUTHFAIL comes from `xrdp-sesexec`, sesman's child for one login, which ends
/// once the login has failed: with journald stopped meanwhile it is stored without
/// `_SYSTEMD_UNIT`, as root, and the shipped journal source still counts it (its
/// root-identifier group); nobody's forged line counts nothing.
#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn xrdp_sesexec_failures_whose_process_exited_count_under_journald_252() {
    for (program, package) in [
        ("xfreerdp", "freerdp2-x11"),
        ("Xtigervnc", "tigervnc-standalone-server"),
        ("openssl", "openssl"),
        ("chroot", "coreutils"),
    ] {
        require_program(program, package);
    }
    let tree = trixie_root(&[
        "usr/sbin/xrdp",
        "usr/sbin/xrdp-sesman",
        "usr/lib/x86_64-linux-gnu/xrdp/xrdp-sesexec",
    ]);
    exited_case(ExitedCase {
        label: "xrdpexit",
        unit: "xrdp-sesman.service",
        filter: "xrdp",
        script: format!("{PRIVATE_SYSLOG_SH}{TRIXIE_SH}{XRDP_SCRIPT}"),
        args: vec![
            free_ids(1, 66100..66300).to_string(),
            tree.display().to_string(),
        ],
        ident: "xrdp-sesexec",
        failure: "AUTHFAIL: user=pctrdp ip=",
        attacker: ("203.0.113.5", 1),
        // the time xrdp writes is the line's own (an old one would not count at all)
        forged: format!(
            "[INFO ] AUTHFAIL: user=pctrdp ip=198.51.100.7 time={}",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs()
        ),
        clients: "refused\n".into(),
        uid: "0".into(),
        setup: Box::new(|d: &std::path::Path| {
            // the session would run as the test user, whose home is under it
            fs::set_permissions(d, fs::Permissions::from_mode(0o755)).unwrap();
        }),
    });
}

/// Debian 12's tcpd (tcp_wrappers 7.6.q-32, the machine's) behind a minimal inetd (python3)
/// in inetd.service, as real_tcpwrappers.rs runs it: the connection on fds 0 to 2, argv[0]
/// a stand-in in.telnetd; a private /etc whose hosts.deny refuses everyone; a /dev whose
/// /dev/log is journald's. Two connections from 203.0.113.5, refused (tcpd holds each 5 s,
/// then exits). $1 the test's directory. (After `in_unit`, [`PRIVATE_ETC_SH`] and
/// [`PRIVATE_SYSLOG_SH`].)
const TCPD_SCRIPT: &str = r#"set -u
d="$1"
ip link set lo up
for a in 192.0.2.23 203.0.113.5; do ip addr add "$a/32" dev lo || exit 2; done
private_dev
ln -s /run/systemd/journal/dev-log /dev/log
mkdir -p "$d/etc-src" "$d/bin"
printf 'ALL: ALL\n' > "$d/etc-src/hosts.deny"
: > "$d/etc-src/hosts.allow"
private_etc "$d/etc-ov" "$d/etc-src" hosts.deny hosts.allow || exit 2
printf '#!/bin/sh\necho welcome\n' > "$d/bin/in.telnetd"
chmod +x "$d/bin/in.telnetd"
cat > "$d/inetd.py" <<'P'
import os, select, signal, socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("192.0.2.23", 23))
s.listen(16)
signal.signal(signal.SIGCHLD, signal.SIG_IGN)
while True:
    c, _ = s.accept()
    if os.fork() == 0:
        for fd in (0, 1, 2):
            os.dup2(c.fileno(), fd)
        os.execv("/usr/sbin/tcpd", [sys.argv[1]])
    c.close()
P
( in_unit; exec python3 "$d/inetd.py" "$d/bin/in.telnetd" 2> "$d/inetd.err" ) &
for _ in $(seq 200); do ss -Hltn 'sport = :23' | grep -q . && break; sleep 0.05; done
ss -Hltn 'sport = :23' | grep -q . || { echo "the inetd did not listen" >&2; exit 3; }
ready_go
python3 - > "$d/clients" 2>"$d/python.err" <<'P'
import socket, threading
got = []
def one():
    s = socket.socket()
    s.bind(("203.0.113.5", 0))
    s.settimeout(10)
    s.connect(("192.0.2.23", 23))
    data = b""
    while True:
        x = s.recv(100)
        if not x:
            break
        data += x
    got.append("served" if data else "refused")
    s.close()
ts = [threading.Thread(target=one) for _ in range(2)]
for t in ts: t.start()
for t in ts: t.join()
print("\n".join(got))
P
for _ in $(seq 200); do
  [ -z "$(pgrep -x tcpd)" ] && break
  sleep 0.05
done
[ -z "$(pgrep -x tcpd)" ] || { echo "tcpd did not exit" >&2; exit 6; }
attacked
"#;

/// tcpd is a process per connection that logs its refusal and exits, under the name of the
/// daemon it wraps: the tcpwrappers filter's journal source is root's syslog entries, any
/// identifier. With journald stopped meanwhile the refusals are stored without a unit, as
/// root, and counted; nobody's forged refusal counts nothing.
#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn tcpd_refusals_count_from_the_journal_under_journald_252() {
    require_program("tcpd", "tcpd");
    exited_case(ExitedCase {
        label: "tcpdexit",
        unit: "inetd.service",
        filter: "tcpwrappers",
        script: format!("{PRIVATE_ETC_SH}{PRIVATE_SYSLOG_SH}{TCPD_SCRIPT}"),
        args: Vec::new(),
        ident: "in.telnetd",
        failure: "refused connect from ",
        attacker: ("203.0.113.5", 2),
        forged: "refused connect from 198.51.100.7 (198.51.100.7)".into(),
        clients: "refused\n".repeat(2),
        uid: "0".into(),
        setup: Box::new(|_| ()),
    });
}

/// Debian 12's ocserv 1.1.6 (the machine's) in ocserv.service as Debian's unit runs it
/// (`ocserv --foreground`), logging through syslog to journald's /dev/log, its workers run
/// as the machine's `ocserv` user (Debian's ocserv.conf: `run-as-user = ocserv`), plain
/// authentication of one user (alice), as real_ocserv.rs runs it. Two openconnect logins
/// as alice with a wrong password from 203.0.113.5 (the local route's preferred source);
/// ocserv ends the connection at the first wrong password. $1 the test's directory.
/// (After `in_unit` and [`PRIVATE_SYSLOG_SH`].)
const OCSERV_SCRIPT: &str = r#"set -u
d="$1"
chmod 755 "$d"
ip link set lo up
for a in 192.0.2.1 203.0.113.5; do ip addr add "$a/32" dev lo || exit 2; done
private_dev
ln -s /run/systemd/journal/dev-log /dev/log
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=vpn.example.net \
  -days 2 -keyout "$d/key.pem" -out "$d/cert.pem" 2>"$d/openssl.err" || exit 6
pin=$(openssl x509 -in "$d/cert.pem" -pubkey -noout | openssl pkey -pubin -outform der \
  | openssl dgst -sha256 -binary | base64)
printf 'alice:users:%s\n' "$(openssl passwd -5 right-pass-1)" > "$d/passwd"
cat > "$d/ocserv.conf" <<C
auth = "plain[passwd=$d/passwd]"
tcp-port = 4443
udp-port = 4443
listen-host = 192.0.2.1
run-as-user = ocserv
run-as-group = ocserv
socket-file = $d/ocserv.sock
server-cert = $d/cert.pem
server-key = $d/key.pem
isolate-workers = false
use-occtl = false
pid-file = $d/ocserv.pid
device = vpns
ipv4-network = 10.99.0.0/24
max-clients = 16
max-same-clients = 0
C
( in_unit; exec ocserv -f -c "$d/ocserv.conf" > "$d/ocserv.out" 2>&1 ) &
for _ in $(seq 200); do ss -Hltn 'sport = :4443' | grep -q . && break; sleep 0.05; done
ss -Hltn 'sport = :4443' | grep -q . || { echo "ocserv did not listen" >&2; exit 3; }
# main and sec-mod in the unit (the workers will be counted there too)
for _ in $(seq 100); do [ "$(unit_procs)" -ge 2 ] && break; sleep 0.05; done
baseline=$(unit_procs)
ip route replace table local local 192.0.2.1 dev lo src 203.0.113.5 || exit 5
ready_go
for pw in wrong-1 wrong-2; do
  printf '%s\n%s\n%s\n' "$pw" "$pw" "$pw" | timeout 10 openconnect --authenticate \
    --servercert "pin-sha256:$pin" -u alice https://192.0.2.1:4443/ > "$d/client.out" 2>&1
  echo "rc=$?" >> "$d/clients"
done
# every worker gone (main and sec-mod left) before journald looks
for _ in $(seq 200); do
  [ "$(unit_procs)" -le "$baseline" ] && break
  sleep 0.05
done
[ "$(unit_procs)" -le "$baseline" ] || { echo "the workers did not exit: $(pgrep -a ocserv)" >&2; exit 6; }
attacked
"#;

/// ocserv's failures come from the connection's worker, which runs as ocserv's own user
/// (not root) and ends with the connection: with journald stopped meanwhile they are stored
/// without `_SYSTEMD_UNIT`, as that user, and the shipped journal source still counts them
/// (its group of ocserv's identifier with `_UID=ocserv`, a name the reader turns into this
/// system's number); nobody's forged line counts nothing.
#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn ocserv_failures_whose_worker_exited_count_under_journald_252() {
    for (program, package) in [
        ("ocserv", "ocserv"),
        ("openconnect", "openconnect"),
        ("openssl", "openssl"),
    ] {
        require_program(program, package);
    }
    let uid = user_id("ocserv");
    exited_case(ExitedCase {
        label: "ocservexit",
        unit: "ocserv.service",
        filter: "ocserv",
        script: format!("{PRIVATE_SYSLOG_SH}{OCSERV_SCRIPT}"),
        args: Vec::new(),
        ident: "ocserv",
        failure: "failed authentication for 'alice'",
        attacker: ("203.0.113.5", 2),
        forged: "worker[alice]: 198.51.100.7 worker-auth.c:1724: failed authentication \
                 for \'alice\'"
            .into(),
        clients: "rc=1\n".repeat(2),
        uid,
        setup: Box::new(|_| ()),
    });
}

/// Debian 12's Postfix 3.7 (the machine's) in postfix.service, `postfix start-fg` with its
/// own configuration directory and queue under the test's directory (as real_mail.rs runs
/// it: no chroot, no DNS, mail_owner postfix), logging through syslog to journald's
/// /dev/log. smtpd runs with `-o max_use=1`: a process serves one client and exits, what a
/// process does once it has served its max_use clients (100 by default) or sat idle for
/// max_idle. Two sessions from 203.0.113.5 that try to relay (554 Relay access denied), then
/// QUIT. $1 the test's directory. (After `in_unit` and [`PRIVATE_SYSLOG_SH`].)
const POSTFIX_SCRIPT: &str = r#"set -u
d="$1"
ip link set lo up
for a in 192.0.2.1 203.0.113.5; do ip addr add "$a/32" dev lo || exit 2; done
private_dev
ln -s /run/systemd/journal/dev-log /dev/log
p="$d/postfix"
mkdir -p "$p/etc" "$p/spool" "$p/data"
chown postfix "$p/data"
cat > "$p/etc/main.cf" <<C
compatibility_level = 3.6
queue_directory = $p/spool
data_directory = $p/data
mail_owner = postfix
setgid_group = postdrop
myhostname = mx.example.net
mydomain = example.net
myorigin = \$myhostname
mydestination = example.net, \$myhostname
mynetworks = 127.0.0.0/8
inet_interfaces = 192.0.2.1
inet_protocols = ipv4
smtpd_banner = \$myhostname ESMTP
alias_maps =
alias_database =
local_recipient_maps = inline:{alice=ok}
local_transport = discard:
default_transport = discard:
relay_transport = discard:
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
smtpd_tls_security_level = none
disable_dns_lookups = yes
smtp_dns_support_level = disabled
biff = no
C
cat > "$p/etc/master.cf" <<C
smtp      inet  n       -       n       -       -       smtpd
  -o max_use=1
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
proxymap  unix  -       -       n       -       -       proxymap
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
discard   unix  -       -       n       -       -       discard
C
( in_unit; exec /usr/sbin/postfix -c "$p/etc" start-fg > "$d/postfix.out" 2>&1 ) &
for _ in $(seq 300); do ss -Hltn 'sport = :25' | grep -q . && break; sleep 0.05; done
ss -Hltn 'sport = :25' | grep -q . || { echo "postfix did not listen" >&2; cat "$d/postfix.out" >&2; exit 3; }
sleep 0.5
ready_go
relay_twice
# every smtpd gone (it serves one client with max_use=1) before journald looks
for _ in $(seq 200); do
  [ -z "$(pgrep -x smtpd)" ] && break
  sleep 0.05
done
[ -z "$(pgrep -x smtpd)" ] || { echo "smtpd did not exit" >&2; exit 6; }
attacked
"#;

/// A Postfix smtpd that exits right after its client (max_use reached) leaves entries without
/// a unit when journald takes them late; they come from Postfix's own user, and the shipped
/// journal source still counts them (its group of `_UID=postfix`, a name the reader turns
/// into this system's number); nobody's forged line counts nothing.
#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn postfix_rejections_whose_smtpd_exited_count_under_journald_252() {
    require_program("postfix", "postfix");
    let uid = user_id("postfix");
    exited_case(ExitedCase {
        label: "postfixexit",
        unit: "postfix.service",
        filter: "postfix",
        script: format!("{PRIVATE_SYSLOG_SH}{POSTFIX_SCRIPT}"),
        args: Vec::new(),
        ident: "postfix/smtpd",
        failure: "Relay access denied",
        attacker: ("203.0.113.5", 2),
        forged: "NOQUEUE: reject: RCPT from unknown[198.51.100.7]: 554 5.7.1 \
                 <victim@example.com>: Relay access denied; from=<a@example.org> \
                 to=<victim@example.com> proto=ESMTP helo=<client.example.org>"
            .into(),
        clients: "554\n".repeat(2),
        uid,
        setup: Box::new(|_| ()),
    });
}

/// The uid of `user` on this machine (`id -u`; its package made it); fails the test
/// without it.
fn user_id(user: &str) -> String {
    let out = run_with_timeout(
        std::process::Command::new("id").args(["-u", user]),
        None,
        Duration::from_secs(10),
    );
    assert!(
        out.success(),
        "no user {user} (its Debian package makes it): {out:?}"
    );
    out.stdout_str().trim().to_string()
}

/// xinetd's libwrap refusals come from the connection's child, which logs and exits
/// (src/child.c: set_credentials, svc_child_access_control, exit): with journald stopped
/// meanwhile they are stored without `_SYSTEMD_UNIT`, as root, identifier xinetd, and the
/// shipped journal source of xinetd-fail still counts them (its root-identifier group);
/// nobody's forged FAIL line counts nothing.
#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn xinetd_libwrap_refusals_whose_child_exited_count_under_journald_252() {
    require_program("xinetd", "xinetd");
    exited_case(ExitedCase {
        label: "xinetdexit",
        unit: "xinetd.service",
        filter: "xinetd-fail",
        script: format!("{PRIVATE_ETC_SH}{PRIVATE_SYSLOG_SH}{XINETD_SCRIPT}"),
        args: Vec::new(),
        ident: "xinetd",
        failure: "FAIL: pct-wrap libwrap from=",
        attacker: ("203.0.113.77", 3),
        forged: "FAIL: pct-wrap libwrap from=198.51.100.7".into(),
        clients: "refused\n".repeat(3),
        uid: "0".into(),
        setup: Box::new(|_| ()),
    });
}

/// solid-pop3d's failures come from the session's process, which ends with the client: with
/// journald stopped meanwhile they are stored without `_SYSTEMD_UNIT`, as root, and the
/// shipped journal source still counts them (its root-identifier group); nobody's forged
/// line counts nothing.
#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn solidpop3d_failures_whose_session_exited_count_under_journald_252() {
    require_program("openssl", "openssl");
    let root = unpacked(
        "PORTCULLIS_SOLIDPOP3D_ROOT",
        "/var/cache/portcullis-test/solid-pop3d/root",
        &["usr/sbin/solid-pop3d"],
        "Debian's solid-pop3d",
    );
    exited_case(ExitedCase {
        label: "spop3dexit",
        unit: "solid-pop3d.service",
        filter: "solid-pop3d",
        script: format!("{PRIVATE_ETC_SH}{PRIVATE_SYSLOG_SH}{SOLIDPOP3D_SCRIPT}"),
        args: vec![
            root.display().to_string(),
            free_ids(2, 65100..65300).to_string(),
        ],
        ident: "solid-pop3d",
        failure: "authentication failed for user pctpop - ",
        attacker: ("203.0.113.5", 2),
        forged: "authentication failed for user pctpop - 198.51.100.7".into(),
        clients: "-ERR\n".repeat(2),
        uid: "0".into(),
        setup: Box::new(|_| ()),
    });
}

/// Shell functions of the scripts of [`exited_case`] (after `in_unit` and `unit_procs`, with
/// `d` set to the test's directory): `ready_go` writes DIR/ready (the server is up) and waits
/// for DIR/go (journald is stopped by then); `attacked` writes DIR/attacked (every
/// connection's process is gone: journald may look) and waits to be killed; `relay_twice`
/// runs two SMTP sessions from 203.0.113.5 to 192.0.2.1:25 that try to relay (MAIL, RCPT to
/// another domain, QUIT), the RCPT replies' codes in DIR/clients.
const EXITED_SH: &str = r#"ready_go() {
  echo ready > "$d/ready"
  for _ in $(seq 300); do [ -e "$d/go" ] && return 0; sleep 0.1; done
  echo "no go" >&2
  exit 4
}
attacked() {
  echo done > "$d/attacked"
  sleep 60
}
relay_twice() {
  python3 - > "$d/clients" 2>"$d/python.err" <<'P'
import socket
def reply(f):
    while True:
        line = f.readline().decode()
        if len(line) < 4 or line[3] == " ":
            return line[:3]
for _ in range(2):
    s = socket.socket()
    s.bind(("203.0.113.5", 0))
    s.settimeout(15)
    s.connect(("192.0.2.1", 25))
    f = s.makefile("rb")
    reply(f)
    s.sendall(b"EHLO client.example.org\r\n"); reply(f)
    s.sendall(b"MAIL FROM:<a@example.org>\r\n"); reply(f)
    s.sendall(b"RCPT TO:<victim@example.com>\r\n")
    print(reply(f), flush=True)
    s.sendall(b"QUIT\r\n"); reply(f)
    s.close()
P
}
"#;

/// Waits for the run's DIR/ready (the server is up; it fails the test with run.stderr
/// otherwise), stops journald, writes DIR/go and waits for DIR/attacked (every process of
/// the attack gone), then lets journald go on. Whether the attack ended well.
fn attack_while_stopped(
    journald: &Journald,
    server: &mut ProcessGuard,
    dir: &std::path::Path,
    what: &str,
) -> bool {
    assert!(
        wait_marker(server, &dir.join("ready"), Duration::from_secs(30)),
        "{what} did not come up (exit {:?}): {}",
        server.try_wait(),
        fs::read_to_string(dir.join("run.stderr")).unwrap_or_default()
    );
    let paused = journald.paused();
    fs::write(dir.join("go"), "go").unwrap();
    let attacked = wait_marker(server, &dir.join("attacked"), Duration::from_secs(90));
    drop(paused);
    attacked
}

/// A server of `unit` whose failures its per-connection processes write (as root, or as the
/// daemon's own user), then exit.
struct ExitedCase {
    /// The test directory's and control group's label.
    label: &'static str,
    unit: &'static str,
    /// The built-in filter whose shipped journal source the jail reads (maxretry: the
    /// attacker's count).
    filter: &'static str,
    /// Run with [`Journald::spawn_unit_script`]: $1 the test's directory, then `args`. It
    /// writes DIR/ready once the server listens, waits for DIR/go (journald is stopped by
    /// then), attacks (DIR/clients: what the clients saw), waits until the connections'
    /// processes are gone and writes DIR/attacked.
    script: String,
    args: Vec<String>,
    /// The syslog identifier of the server's lines.
    ident: &'static str,
    /// Text of a failure line (the address is a word of it too).
    failure: &'static str,
    /// A failure line of the server's for 198.51.100.7, which nobody writes with `logger -t
    /// IDENT` before the attack (so the journal holds it before the attacker's lines, and
    /// the daemon has read it once it bans the attacker); it counts when the filter reads it
    /// (checked with `portcullis test`).
    forged: String,
    /// The attacker and how many failures it causes.
    attacker: (&'static str, usize),
    /// DIR/clients as it must read.
    clients: String,
    /// The uid the failures come from: root's ("0"), or the daemon's own user's.
    uid: String,
    /// Writes the server's files into DIR before the script runs.
    setup: Box<dyn FnOnce(&std::path::Path)>,
}

fn exited_case(c: ExitedCase) {
    require_root();
    for (program, package) in [
        ("python3", "python3"),
        ("logger", "bsdutils"),
        ("setpriv", "util-linux"),
        ("pgrep", "procps"),
        ("ss", "iproute2"),
    ] {
        require_program(program, package);
    }
    // the forgery is a line the filter counts, for 198.51.100.7
    fs::create_dir_all(std::env::temp_dir()).unwrap();
    let probe = tempfile::NamedTempFile::new().unwrap();
    fs::write(
        probe.path(),
        format!("Dec  5 10:00:00 vm {}[4242]: {}\n", c.ident, c.forged),
    )
    .unwrap();
    assert!(
        test_json(c.filter, probe.path())
            .iter()
            .any(|v| v["host"] == "198.51.100.7"),
        "{}: the forged line would not count: {}",
        c.filter,
        c.forged
    );
    // the journal source the filter names (not always its first log: vsftpd's and
    // ProFTPD's own files come first)
    let shipped = filter_logs(c.filter)
        .into_iter()
        .find(|l| l.starts_with("journal:"))
        .unwrap_or_else(|| panic!("{} names no journal source", c.filter));
    let dir = test_dir(c.label);
    // the servers drop to other users, who read under it
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let d = dir.path().to_str().expect("utf-8 path").to_string();
    let path = |rel: &str| dir.path().join(rel);
    let read = |rel: &str| fs::read_to_string(path(rel)).unwrap_or_default();
    let (attacker, attacks) = c.attacker;

    let journald = Journald::start_with("[Journal]\nStorage=volatile\nRateLimitBurst=0\n");
    journald.assert_release();
    let cgroup = UnitCgroup::private(c.label, c.unit);
    let socket = path("portcullis.sock");
    fs::write(
        path("portcullis.toml"),
        format!(
            "{}[[jail]]\nname = \"j\"\nfilter = \"{f}\"\nlogs = [{shipped:?}]\n\
             maxretry = {attacks}\n\
             [[jail]]\nname = \"unit\"\nfilter = \"{f}\"\nlogs = [\"journal:_SYSTEMD_UNIT={u}\"]\n\
             maxretry = {attacks}\n",
            null_config_head(dir.path()),
            f = c.filter,
            u = c.unit,
        ),
    )
    .unwrap();
    let mut daemon = journald.daemon(
        &path("portcullis.toml"),
        &path("state"),
        &path("daemon.log"),
    );
    (c.setup)(dir.path());
    // nobody's forgery, stored before the attack
    let out = journald.run(
        &[
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "logger",
            "-t",
            c.ident,
            "-p",
            "daemon.notice",
            "-u",
            "/run/systemd/journal/dev-log",
            c.forged.as_str(),
        ]
        .map(String::from),
    );
    assert!(out.success(), "nobody's logger: {out:?}");
    let ident = format!("SYSLOG_IDENTIFIER={}", c.ident);
    let forged_stored = wait_until(Duration::from_secs(10), || {
        journald
            .messages(&[ident.as_str()])
            .iter()
            .any(|(m, v)| m.trim_end() == c.forged.trim_end() && v["_UID"] == "65534")
    });
    assert!(
        forged_stored,
        "nobody's forgery is not in the journal as uid 65534"
    );
    let args: Vec<String> = std::iter::once(d).chain(c.args).collect();
    let script = format!("{EXITED_SH}{}", c.script);
    let mut server = journald.spawn_unit_script(&cgroup, dir.path(), &script, &args, c.unit);
    let attacked = attack_while_stopped(&journald, &mut server, dir.path(), c.unit);
    assert!(
        attacked && read("clients") == c.clients,
        "the attack did not end well (exit {:?}): {}\nclients: {}",
        server.try_wait(),
        read("run.stderr"),
        read("clients")
    );

    // ---- what journald stored ----
    let mut all = Vec::new();
    let failures = |all: &[(String, serde_json::Value)], addr: &str| {
        all.iter()
            .filter(|(m, _)| {
                m.contains(c.failure)
                    && m.split(|ch: char| !(ch.is_ascii_hexdigit() || ch == '.' || ch == ':'))
                        // an IPv4 address may carry a port (Dropbear's A:P) or more
                        // (Samba's ipv4:A:P)
                        .any(|w| {
                            w == addr || (addr.contains('.') && w.split(':').any(|p| p == addr))
                        })
            })
            .cloned()
            .collect::<Vec<_>>()
    };
    let stored = wait_until(Duration::from_secs(20), || {
        all = journald.messages(&[ident.as_str()]);
        failures(&all, attacker).len() == attacks && failures(&all, "198.51.100.7").len() == 1
    });
    let shown = || {
        all.iter()
            .map(|(m, v)| {
                format!(
                    "uid={} unit={} {m}\n",
                    v["_UID"].as_str().unwrap_or("-"),
                    v["_SYSTEMD_UNIT"].as_str().unwrap_or("-")
                )
            })
            .collect::<String>()
    };
    assert!(stored, "not every failure is in the journal:\n{}", shown());
    for (m, v) in failures(&all, attacker) {
        assert!(
            v.get("_SYSTEMD_UNIT").is_none()
                && v["_UID"] == c.uid.as_str()
                && v["_TRANSPORT"] == "syslog",
            "a failure whose process was gone when journald took it: {m}\n{v}\n{}",
            shown()
        );
    }

    // ---- what the daemon did ----
    let banned = wait_until(Duration::from_secs(20), || {
        bans_by_jail(&socket)
            .get("j")
            .is_some_and(|b| b.contains(attacker))
    });
    assert!(
        banned,
        "{shipped}: {attacker} is not banned: failing {:?}\njournal:\n{}\ndaemon:\n{}",
        failing(&socket),
        shown(),
        read("daemon.log")
    );
    // the journal holds the forgery before the attacker's lines: the daemon has read it
    assert!(
        !format!("{:?}", failing(&socket)).contains("198.51.100.7")
            && !read("daemon.log").contains("198.51.100.7"),
        "nobody's forgery was counted:\n{}",
        read("daemon.log")
    );
    assert_eq!(
        bans_by_jail(&socket).get("j").cloned().unwrap_or_default(),
        [attacker.to_string()].into(),
        "only the attacker is banned"
    );
    // the unit alone (what the filter's source named before) counts none of the failures:
    // once it has counted a line that root writes from inside the unit now (its sender alive
    // a second, so that journald finds its unit), it has read past them
    let sentinel = c.forged.replace("198.51.100.7", "198.51.100.99");
    let out = journald.run(
        &cgroup.wrap(&[
            "python3".into(),
            "-c".into(),
            "import socket, sys, time\n\
         s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\n\
         s.connect('/run/systemd/journal/dev-log')\n\
         s.send(sys.argv[1].encode())\n\
         time.sleep(1)\n"
                .into(),
            format!("<29>{}[4242]: {sentinel}", c.ident),
        ]),
    );
    assert!(out.success(), "root's line in {}: {out:?}", c.unit);
    let unit_read = wait_until(Duration::from_secs(20), || {
        // counted, or banned already (maxretry 1)
        failing(&socket)
            .get("unit")
            .is_some_and(|f| f.contains_key("198.51.100.99"))
            || bans_by_jail(&socket)
                .get("unit")
                .is_some_and(|b| b.contains("198.51.100.99"))
    });
    assert!(
        unit_read,
        "journal:_SYSTEMD_UNIT={} did not count root's line from the unit: {:?}\njournal:\n{}\ndaemon:\n{}",
        c.unit,
        failing(&socket),
        journald
            .messages(&[ident.as_str()])
            .iter()
            .map(|(m, v)| format!(
                "uid={} unit={} {m}\n",
                v["_UID"].as_str().unwrap_or("-"),
                v["_SYSTEMD_UNIT"].as_str().unwrap_or("-")
            ))
            .collect::<String>(),
        read("daemon.log")
    );
    assert!(
        !format!(
            "{:?}{:?}",
            failing(&socket).get("unit"),
            bans_by_jail(&socket).get("unit")
        )
        .contains(attacker),
        "journal:_SYSTEMD_UNIT={} counted {attacker}: the failures kept their unit",
        c.unit
    );
    assert!(daemon.try_wait().is_none(), "the daemon exited");
    server.kill();
    daemon.kill();
}

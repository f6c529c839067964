//! The `sendmail-reject` filter's rule `unknown-rcpt` (transactions whose every recipient was
//! refused, a cross-line rule: filters/sendmail-reject.toml, [correlate]) against the real
//! Sendmail, twice: Debian 12's 8.17.1 and Debian 13's 8.18.1, the same scenarios and one table
//! of what Sendmail must write and what counts for both (8.18.1 wrote every line as 8.17.1
//! did). Debian's sendmail-bin conflicts with the postfix package that
//! tests/real_mail.rs needs (both provide mail-transport-agent), so test.sh does not install
//! it: it downloads the .debs (sendmail-bin, sendmail-base, sendmail-cf and the libraries the
//! machine lacks) and unpacks them with `dpkg -x` under /var/cache/portcullis-test/sendmail/root
//! (PORTCULLIS_SENDMAIL_ROOT elsewhere), never installed. Debian 13's is unpacked the same
//! way in test.sh's fourth trixie tree (`common::real::trixie_d_root`, /opt/unpacked): the
//! run copies it into place in a private overlay of the tree (`trixie_mount`) and runs it
//! with chroot; m4 and the clients stay the host's. The release's set-up, the base of
//! sendmail.mc and the clients' Python head are shared with real_sendmail_auth.rs
//! (tests/sendmail/mod.rs).
//!
//! The test builds its sendmail.cf with m4 from the release's unpacked sendmail-cf (OSTYPE
//! linux, LogLevel 9, local domain example.net, a virtusertable whose entries answer
//! "error:nouser 550 No such user here" and "error:nouser No such user", the local mailer
//! /bin/true, delivery in the background), its aliases database with the real `sendmail -bi`
//! and its virtusertable with the real `makemap`, all in a temporary directory (under /tmp:
//! DontBlameSendmail=TrustStickyBit). Sendmail runs as root with `-bD` (daemon, foreground)
//! and `-L sm-mta` (Debian's syslog tag) in a network namespace (192.0.2.1, 2001:db8::1), in
//! a private mount and UTS namespace: host name mx.example.net, /etc an overlay holding the
//! test's passwd (a local user alice, never created on the host), group, nsswitch.conf (files
//! only: no DNS) and hosts (Debian 13: copied into the tree's /etc), /dev a private tmpfs
//! whose /dev/log leads to a private rsyslogd (rsyslog's default escaping) writing one file;
//! makemap runs in the same namespaces. Sendmail sets LogUsrErrs itself for MAIL and
//! RCPT (srvrsmtp.c), so every refused recipient is logged under the transaction's queue id.
//!
//! Clients in a second namespace (Debian's python3, raw sockets), one source address per
//! scenario, the scenarios on threads, each scenario's sessions in order:
//! * 203.0.113.10: three sessions, each one transaction of three unknown local users then
//!   QUIT (the third with the null sender `<>`);
//! * 203.0.113.11: two sessions, each refused by the virtusertable ("No such user here",
//!   "No such user") and one unknown local user;
//! * 203.0.113.12: two transactions in one session (RSET between: a new queue id), then a
//!   session dropped after its RCPTs (no QUIT: "lost input channel", and the summary);
//! * 203.0.113.13: injections: MAIL FROM paths carrying `relay=[192.0.2.66]` (in the local
//!   part, a source route, a domain literal) and RCPTs carrying 192.0.2.66;
//! * 2001:db8::50: two sessions of two unknown users (Sendmail writes the client as
//!   `[IPv6:2001:db8:0:0:0:0:0:50]`);
//! * 198.51.100.7, the legitimate client, last: a transaction with one unknown and one valid
//!   recipient (nrcpts=1) ended by QUIT, the same with a message, and a mail to alice.
//!
//! Asserted: what Sendmail wrote, line by line, per queue id (the held lines
//! `QID: <RCPT>... User unknown` / `... No such user here` / `... No such user`, then
//! `QID: from=<S>, size=0, class=0, nrcpts=0, proto=ESMTP, daemon=MTA-v4, relay=[ADDR]`, the
//! client last); `portcullis test --filter sendmail-reject --json` gives each summary line of
//! an attacker the weight of its held lines, with the attacker's address, and never names
//! 198.51.100.7 or 192.0.2.66; `portcullis replay` (mode normal, maxretry 4) bans exactly the
//! attackers, with maxretry 7 only the one of nine, with maxretry 10 nobody, and in mode ddos
//! (maxretry 1) only the session that dropped its connection.
//!
//! Then what the filter must also count, asserted last (so that a failure there says the
//! rest held), each seen in a run of this Sendmail and each a dictionary attack that the
//! first version of the rule let go uncounted:
//! * 203.0.113.20, RCPT TO without angle brackets (Sendmail accepts them): the held lines are
//!   `QID: nosuch-e11@example.net... User unknown`;
//! * 203.0.113.21, a MAIL FROM path of 244 bytes (Sendmail accepts up to 255): logsender()
//!   writes `from=%.200s`, `from=<aaaa…` cut without its `>`;
//! * 203.0.113.22, a MAIL FROM path with text after its `>`
//!   (`<spam@example.org>,relay=[192.0.2.66]`, accepted and logged as is) and one with a
//!   quoted local part holding a space (`<"spam 2"@example.org>`).
//!
//! Needs root, the unpacked Sendmail (test.sh), m4, rsyslogd and python3, and for the second
//! run chroot and the trixie-d tree; fails loudly when they are missing. Runs in about 2 s
//! each.

mod common;
mod sendmail;

use common::*;
use sendmail::*;
use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const SERVER: &str = "192.0.2.1";
const SERVER_V6: &str = "2001:db8::1";
const LEGIT: &str = "198.51.100.7";
/// The address the clients type into MAIL FROM and RCPT TO.
const INJECTED: &str = "192.0.2.66";
const PYTHON: &str = "/usr/bin/python3";
const RSYSLOGD: &str = "/usr/sbin/rsyslogd";
const M4: &str = "/usr/bin/m4";
const FILTER: &str = "sendmail-reject";

/// The scenarios whose lines the filter counts today.
const CORE: [&str; 5] = [
    "203.0.113.10",
    "203.0.113.11",
    "203.0.113.12",
    "203.0.113.13",
    "2001:db8::50",
];
/// The scenarios a correct filter must count too (see the module doc).
const GAPS: [&str; 3] = ["203.0.113.20", "203.0.113.21", "203.0.113.22"];

/// The clients' scenarios (after the head of [`sendmail::client_py`], run with Debian's python3
/// inside the client namespace).
const CLIENT_PY: &str = r##"# SMTP clients of crates/portcullis/tests/real_sendmail.rs. Every attacker scenario has
# its own source address (203.0.113.N or 2001:db8::N) and runs its sessions in order on a
# thread; the legitimate client 198.51.100.7 runs last.
UNKNOWN = b"550 5.1.1 "        # a local user that does not exist (recipient.c)
NOUSER_HERE = b"550 5.0.0 "    # virtusertable: error:nouser 550 No such user here
NOUSER = b"553 5.3.0 "         # virtusertable: error:nouser No such user
BAD_ROUTE = b"553 5.1.3 "      # "Invalid route address"
OK = b"250 "


def session(src, txns, quit=True):
    # txns: [(MAIL FROM path, [(RCPT TO path, expected reply)])], RSET between them
    c = Conn(src)
    for i, (mail, rcpts) in enumerate(txns):
        if i:
            c.cmd(b"RSET", b"250 ")
        c.cmd(b"MAIL FROM:" + mail, b"250 ")
        for rcpt, want in rcpts:
            c.cmd(b"RCPT TO:" + rcpt, want)
    if quit:
        c.quit()
    else:
        c.close()


def unknown(*users):
    return [(b"<" + u + b"@example.net>", UNKNOWN) for u in users]


def s10(src):
    for i, sender in [(1, b"<spam@example.org>"), (2, b"<spam@example.org>"), (3, b"<>")]:
        n = b"%d" % i
        session(src, [(sender, unknown(b"nosuch-a" + n, b"nosuch-b" + n, b"nosuch-c" + n))])


def s11(src):
    for i in (1, 2):
        session(src, [(b"<spam@example.org>",
                       [(b"<ghost@example.net>", NOUSER_HERE),
                        (b"<phantom@example.net>", NOUSER)]
                       + unknown(b"nosuch-v%d" % i))])


def s12(src):
    session(src, [(b"<spam@example.org>", unknown(b"nosuch-r1", b"nosuch-r2")),
                  (b"<spam@example.org>", unknown(b"nosuch-r3", b"nosuch-r4"))])
    # dropped after the RCPTs: no QUIT
    session(src, [(b"<spam@example.org>", unknown(b"nosuch-r5", b"nosuch-r6"))], quit=False)


def s13(src):
    session(src, [
        (b"<relay=[192.0.2.66]@example.org>",
         [(b"<192.0.2.66@example.net>", UNKNOWN), (b"<relay=[192.0.2.66]>", UNKNOWN),
          (b"<x,relay=[192.0.2.66]@example.net>", BAD_ROUTE)]),
        (b"<@relay=[192.0.2.66]:x@example.org>", [(b"<[192.0.2.66]@example.net>", UNKNOWN)]),
        (b"<x@[192.0.2.66]>", unknown(b"nosuch-i1")),
    ])


def s50(src):
    for i in (1, 2):
        session(src, [(b"<spam@example.org>", unknown(b"nosuch-s%d" % i, b"nosuch-t%d" % i))])


def s20(src):
    # RCPT TO without angle brackets
    for i in (1, 2):
        session(src, [(b"<spam@example.org>",
                       [(b"nosuch-e%d%d@example.net" % (i, j), UNKNOWN) for j in (1, 2, 3)])])


def s21(src):
    # a 244-byte MAIL FROM path: logsender() writes the first 200 bytes
    for i in (1, 2):
        session(src, [(b"<" + b"a" * 230 + b"@example.org>",
                       unknown(b"nosuch-l%d" % i, b"nosuch-m%d" % i))])


def s22(src):
    # text after the path's '>', a quoted local part holding a space
    session(src, [(b"<spam@example.org>,relay=[192.0.2.66]", unknown(b"nosuch-p1", b"nosuch-q1"))])
    session(src, [(b'<"spam 2"@example.org>', unknown(b"nosuch-p2", b"nosuch-q2"))])


def legit():
    c = Conn(LEGIT)
    c.cmd(b"MAIL FROM:<bob@example.org>", OK)
    c.cmd(b"RCPT TO:<nosuch-legit@example.net>", UNKNOWN)
    c.cmd(b"RCPT TO:<alice@example.net>", OK)
    c.quit()
    for rcpts in ([(b"<nosuch-legit@example.net>", UNKNOWN), (b"<alice@example.net>", OK)],
                  [(b"<alice@example.net>", OK)]):
        c = Conn(LEGIT)
        c.cmd(b"MAIL FROM:<bob@example.org>", OK)
        for rcpt, want in rcpts:
            c.cmd(b"RCPT TO:" + rcpt, want)
        c.cmd(b"DATA", b"354 ")
        c.cmd(b"Subject: hello\r\n\r\nhello alice\r\n.", b"250 ")
        c.quit()


ATTACKS = [
    (s10, "203.0.113.10"),
    (s11, "203.0.113.11"),
    (s12, "203.0.113.12"),
    (s13, "203.0.113.13"),
    (s50, "2001:db8::50"),
    (s20, "203.0.113.20"),
    (s21, "203.0.113.21"),
    (s22, "203.0.113.22"),
]


main(ATTACKS, legit)
"##;

/// sendmail.mc's own lines (after [`sendmail::sendmail_mc`]'s FEATUREs): @DIR@ is the
/// test's directory.
const MC_EXTRA: &str = "define(`confPRIVACY_FLAGS', `authwarnings')dnl
FEATURE(`virtusertable', `hash @DIR@/virtusertable')dnl
";

/// The mount/UTS-namespace set-up (run by bash inside `unshare --mount --uts`): $1 a
/// directory of this namespace's (its parent the test's directory), $2 the syslog socket, $3
/// the test's etc/ files, $4 the unpacked Sendmail (Debian 12) and $5 the Debian 13 tree
/// (one of them empty), $6 the program of sendmail-bin to run (sendmail, makemap), then its
/// arguments. (After `set -e`, [`PRIVATE_ETC_SH`], [`PRIVATE_SYSLOG_SH`] for `private_dev`,
/// [`TRIXIE_SH`] and [`sendmail::SENDMAIL_SH`].)
const NS_SH: &str = r#"w=$1; sock=$2; etc=$3; unp=$4; tree=$5; prog=$6; shift 6
private_dev
ln -s "$sock" /dev/log
sendmail_release "$w" "$unp" "$tree" "$etc" passwd group nsswitch.conf hosts
hostname mx.example.net
exec "${smx[@]}" "$smbin/$prog" "$@"
"#;

/// The namespaces, Sendmail and its rsyslogd, the temporary directory; dropped in field
/// order: processes first (their process groups killed), then the namespaces (with anything
/// left inside, Sendmail's session processes too), then the directory.
struct SendmailLab {
    procs: Vec<ProcessGuard>,
    client: Netns,
    server: Netns,
    dir: tempfile::TempDir,
    sm: Sendmail,
}

impl SendmailLab {
    fn new(version: Release) -> SendmailLab {
        require_root();
        for (path, what) in [
            (PYTHON, "install python3"),
            (RSYSLOGD, "install rsyslog"),
            (M4, "install m4"),
        ] {
            assert!(
                Path::new(path).is_file(),
                "{path} is missing: {what} (test.sh does)"
            );
        }
        require_program("hostname", "hostname");
        let sm = Sendmail::new(version);
        let server = Netns::new("sm-srv");
        let client = Netns::new("sm-cli");
        let dir = tempfile::Builder::new()
            .prefix(&format!("pct-{}-", sm.label("sendmail")))
            .tempdir()
            .expect("temp dir");
        let lab = SendmailLab {
            procs: Vec::new(),
            client,
            server,
            dir,
            sm,
        };
        let attackers: Vec<String> = CORE.iter().chain(&GAPS).map(|a| a.to_string()).collect();
        wire_server_and_clients(
            &lab.server,
            &lab.client,
            (SERVER, SERVER_V6),
            LEGIT,
            &attackers,
        );
        lab
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn syslog(&self) -> PathBuf {
        self.path("syslog")
    }

    /// Writes the configuration and the files Sendmail reads; builds sendmail.cf with m4,
    /// the virtusertable with makemap and the aliases database with `sendmail -bi`.
    fn configure(&self) {
        let d = self.dir.path().to_str().expect("utf-8 path");
        fs::create_dir_all(self.path("mqueue")).unwrap();
        let etc = self.path("etc");
        fs::create_dir_all(&etc).unwrap();
        let id = free_ids(1, 64950..65200);
        let hosts = "127.0.0.1 localhost\n::1 localhost\n192.0.2.1 mx.example.net mx\n";
        write_account_etc(&etc, "alice", id, "Alice", hosts);
        fs::write(self.path("hosts"), hosts).unwrap();
        fs::write(self.path("service.switch"), "hosts files\naliases files\n").unwrap();
        fs::write(self.path("aliases"), "postmaster: root\n").unwrap();
        fs::write(
            self.path("virtusertable"),
            "ghost@example.net\terror:nouser 550 No such user here\n\
             phantom@example.net\terror:nouser No such user\n",
        )
        .unwrap();
        fs::write(
            self.path("ns.sh"),
            format!("set -e\n{PRIVATE_ETC_SH}{PRIVATE_SYSLOG_SH}{TRIXIE_SH}{SENDMAIL_SH}{NS_SH}"),
        )
        .unwrap();
        fs::write(self.path("client.py"), client_py(CLIENT_PY)).unwrap();

        // sendmail.cf
        let cf_dir = self.sm.cf_dir();
        let mc = self.path("sendmail.mc");
        fs::write(
            &mc,
            sendmail_mc(
                cf_dir.to_str().expect("utf-8 path"),
                d,
                &MC_EXTRA.replace("@DIR@", d),
            ),
        )
        .unwrap();
        let out =
            run_with_timeout(Command::new(M4).arg(&mc), None, Duration::from_secs(20)).check();
        assert!(
            out.stderr.is_empty(),
            "m4 complained about sendmail.mc: {}",
            out.stderr_str()
        );
        fs::write(self.path("sendmail.cf"), &out.stdout).unwrap();

        // the virtusertable, with the real makemap (it reads sendmail.cf), in the namespaces
        // Sendmail runs in
        let virt = fs::read(self.path("virtusertable")).unwrap();
        let cf = self.path("sendmail.cf").to_str().unwrap().to_string();
        let table = self.path("virtusertable").to_str().unwrap().to_string();
        let mut makemap = self.in_namespaces(
            "ns-makemap",
            "makemap",
            &["-C".into(), cf, "hash".into(), table],
        );
        run_with_timeout(&mut makemap, Some(&virt), Duration::from_secs(20)).check();
        assert!(
            self.path("virtusertable.db").is_file(),
            "makemap did not write virtusertable.db"
        );

        // the aliases database, with `sendmail -bi` in the namespaces Sendmail runs in
        // (before rsyslogd starts: its lines are not the test's)
        let out = run_with_timeout(
            &mut self.in_namespaces("ns-bi", "sendmail", &self.sendmail_args(&["-bi"])),
            None,
            Duration::from_secs(30),
        );
        assert!(
            out.success() && self.path("aliases.db").is_file(),
            "sendmail -bi did not build the aliases database (timed out: {}): {}\n{}",
            out.timed_out,
            out.stdout_str(),
            out.stderr_str()
        );
    }

    /// `-C sendmail.cf` and `args`.
    fn sendmail_args(&self, args: &[&str]) -> Vec<String> {
        let mut argv = vec![
            "-C".into(),
            self.path("sendmail.cf").to_str().unwrap().into(),
        ];
        argv.extend(args.iter().map(|a| a.to_string()));
        argv
    }

    /// sendmail-bin's `prog` (sendmail, makemap) with `args`, of the release under test, in
    /// the server network namespace and a private mount and UTS namespace (ns.sh); `ns`
    /// names its directory.
    fn in_namespaces(&self, ns: &str, prog: &str, args: &[String]) -> Command {
        let mut argv: Vec<OsString> = ["--mount", "--uts", "--propagation", "private", "bash"]
            .iter()
            .map(OsString::from)
            .collect();
        for p in [
            self.path("ns.sh"),
            self.path(ns),
            self.path("log.sock"),
            self.path("etc"),
        ] {
            argv.push(p.into_os_string());
        }
        argv.extend(self.sm.script_args());
        argv.push(prog.into());
        argv.extend(args.iter().map(OsString::from));
        self.server.command("unshare", &argv)
    }

    /// Starts the private rsyslogd: socket `log.sock`, file `syslog`.
    fn start_rsyslogd(&mut self) {
        let d = self.dir.path().to_str().unwrap().to_string();
        let conf = self.path("rsyslog.conf");
        fs::write(
            &conf,
            format!(
                "global(workDirectory=\"{d}\")\n\
                 module(load=\"imuxsock\" SysSock.Use=\"off\")\n\
                 input(type=\"imuxsock\" Socket=\"{d}/log.sock\" RateLimit.Interval=\"0\")\n\
                 *.* action(type=\"omfile\" file=\"{d}/syslog\" template=\"RSYSLOG_TraditionalFileFormat\")\n"
            ),
        )
        .unwrap();
        let mut cmd = Command::new(RSYSLOGD);
        cmd.args(["-n", "-f"])
            .arg(&conf)
            .arg("-i")
            .arg(self.path("rsyslogd.pid"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(self.path("rsyslogd.stderr")).unwrap());
        let mut proc = ProcessGuard::spawn(cmd, "rsyslogd (sendmail)");
        let sock = self.path("log.sock");
        if !wait_until(Duration::from_secs(10), || sock.exists()) {
            panic!(
                "rsyslogd did not create {} (exit {:?}): {}",
                sock.display(),
                proc.try_wait(),
                fs::read_to_string(self.path("rsyslogd.stderr")).unwrap_or_default()
            );
        }
        self.procs.push(proc);
    }

    /// Starts `sendmail -bD -L sm-mta` and waits until it listens and has logged its start.
    fn start_sendmail(&mut self) {
        let args = self.sendmail_args(&["-bD", "-L", "sm-mta"]);
        let mut cmd = self.in_namespaces("ns-daemon", "sendmail", &args);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(self.path("sendmail.stderr")).unwrap());
        let mut proc = ProcessGuard::spawn(cmd, "sendmail -bD");
        let up = wait_until(Duration::from_secs(20), || {
            self.server.listens_on(25, SERVER, SERVER_V6)
                && fs::read_to_string(self.syslog())
                    .is_ok_and(|l| l.contains("sm-mta[") && l.contains("starting daemon ("))
        });
        if !up {
            panic!(
                "sendmail did not come up (exit {:?}); stderr: {}\nsyslog: {}",
                proc.try_wait(),
                fs::read_to_string(self.path("sendmail.stderr")).unwrap_or_default(),
                fs::read_to_string(self.syslog()).unwrap_or_default(),
            );
        }
        self.procs.push(proc);
    }

    /// Runs the clients, then waits until every session and delivery process has ended (only
    /// the daemon is left in the server namespace), both legitimate mails are delivered and
    /// the log has stopped growing.
    fn attack(&self) {
        let out =
            self.client
                .exec_timeout(PYTHON, &[self.path("client.py")], Duration::from_secs(60));
        assert!(
            out.success(),
            "the SMTP clients failed (timed out: {}): {}\n{}\nsyslog:\n{}",
            out.timed_out,
            out.stdout_str(),
            out.stderr_str(),
            fs::read_to_string(self.syslog()).unwrap_or_default()
        );
        let settled = wait_until(Duration::from_secs(20), || {
            self.server.pids().len() <= 1
                && fs::read_to_string(self.syslog())
                    .is_ok_and(|l| l.matches(", stat=Sent").count() >= 2)
        });
        assert!(
            settled,
            "Sendmail's sessions or deliveries did not end: {:?}\nsyslog:\n{}",
            self.server.pids(),
            fs::read_to_string(self.syslog()).unwrap_or_default()
        );
        let size = || fs::metadata(self.syslog()).map(|m| m.len()).unwrap_or(0);
        let mut last = size();
        for _ in 0..20 {
            std::thread::sleep(Duration::from_millis(150));
            let now = size();
            if now == last {
                break;
            }
            last = now;
        }
    }
}

/// Sendmail's messages (after "sm-mta[PID]: "), grouped by queue id in the order of each
/// id's first line; the lines without a queue id apart.
fn transactions(log: &str) -> (Vec<(String, Vec<String>)>, Vec<String>) {
    let mut by_id: Vec<(String, Vec<String>)> = Vec::new();
    let mut other = Vec::new();
    for line in log.lines() {
        let Some(msg) = line
            .split_once(" sm-mta[")
            .and_then(|(_, rest)| rest.split_once("]: "))
            .map(|(_, m)| m)
        else {
            continue;
        };
        let id = msg.split_once(": ").map(|(id, _)| id).filter(|id| {
            (8..=18).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric())
        });
        match id {
            Some(id) => {
                let text = msg[id.len() + 2..].to_string();
                match by_id.iter_mut().find(|(i, _)| i == id) {
                    Some((_, msgs)) => msgs.push(text),
                    None => by_id.push((id.to_string(), vec![text])),
                }
            }
            None => other.push(msg.to_string()),
        }
    }
    (by_id, other)
}

/// The client a transaction's summary names: its last "[...]", without "IPv6:".
fn summary_client(msgs: &[String]) -> Option<String> {
    let from = msgs.iter().find(|m| m.starts_with("from="))?;
    let inside = from.rsplit_once("relay=[")?.1.strip_suffix(']')?;
    Some(inside.strip_prefix("IPv6:").unwrap_or(inside).to_string())
}

fn summary(from: &str, daemon: &str, client: &str) -> String {
    format!(
        "from={from}, size=0, class=0, nrcpts=0, proto=ESMTP, daemon={daemon}, relay=[{client}]"
    )
}

fn unknown(rcpt: &str) -> String {
    format!("<{rcpt}@example.net>... User unknown")
}

/// What Sendmail must have written for each attacker: per transaction (queue id), in order,
/// every message. Keyed by the address Sendmail writes (IPv6 uncompressed).
fn expected_log() -> BTreeMap<&'static str, Vec<Vec<String>>> {
    let v4 = |from: &str, client: &str, held: Vec<String>| {
        let mut t = held;
        t.push(summary(from, "MTA-v4", client));
        t
    };
    let mut want = BTreeMap::new();
    let c = "203.0.113.10";
    want.insert(
        c,
        (1..=3)
            .map(|i| {
                let from = if i == 3 { "<>" } else { "<spam@example.org>" };
                v4(
                    from,
                    c,
                    ["a", "b", "c"]
                        .iter()
                        .map(|x| unknown(&format!("nosuch-{x}{i}")))
                        .collect(),
                )
            })
            .collect(),
    );
    let c = "203.0.113.11";
    want.insert(
        c,
        (1..=2)
            .map(|i| {
                v4(
                    "<spam@example.org>",
                    c,
                    vec![
                        "<ghost@example.net>... No such user here".into(),
                        "<phantom@example.net>... No such user".into(),
                        unknown(&format!("nosuch-v{i}")),
                    ],
                )
            })
            .collect(),
    );
    let c = "203.0.113.12";
    let mut dropped = vec![unknown("nosuch-r5"), unknown("nosuch-r6")];
    dropped.push(format!(
        "lost input channel from [{c}] to MTA-v4 after rcpt"
    ));
    want.insert(
        c,
        vec![
            v4(
                "<spam@example.org>",
                c,
                vec![unknown("nosuch-r1"), unknown("nosuch-r2")],
            ),
            v4(
                "<spam@example.org>",
                c,
                vec![unknown("nosuch-r3"), unknown("nosuch-r4")],
            ),
            v4("<spam@example.org>", c, dropped),
        ],
    );
    let c = "203.0.113.13";
    want.insert(
        c,
        vec![
            v4(
                "<relay=[192.0.2.66]@example.org>",
                c,
                vec![
                    "<192.0.2.66@example.net>... User unknown".into(),
                    "<relay=[192.0.2.66]>... User unknown".into(),
                    "<x,relay=[192.0.2.66]@example.net>... Invalid route address".into(),
                ],
            ),
            v4(
                "<@relay=[192.0.2.66]:x@example.org>",
                c,
                vec!["<[192.0.2.66]@example.net>... User unknown".into()],
            ),
            v4("<x@[192.0.2.66]>", c, vec![unknown("nosuch-i1")]),
        ],
    );
    let c = "2001:db8:0:0:0:0:0:50";
    want.insert(
        c,
        (1..=2)
            .map(|i| {
                let mut t = vec![
                    unknown(&format!("nosuch-s{i}")),
                    unknown(&format!("nosuch-t{i}")),
                ];
                t.push(summary(
                    "<spam@example.org>",
                    "MTA-v6",
                    &format!("IPv6:{c}"),
                ));
                t
            })
            .collect(),
    );
    let c = "203.0.113.20";
    want.insert(
        c,
        (1..=2)
            .map(|i| {
                v4(
                    "<spam@example.org>",
                    c,
                    (1..=3)
                        .map(|j| format!("nosuch-e{i}{j}@example.net... User unknown"))
                        .collect(),
                )
            })
            .collect(),
    );
    let c = "203.0.113.21";
    let cut = format!("<{}", "a".repeat(199));
    want.insert(
        c,
        (1..=2)
            .map(|i| {
                v4(
                    &cut,
                    c,
                    vec![
                        unknown(&format!("nosuch-l{i}")),
                        unknown(&format!("nosuch-m{i}")),
                    ],
                )
            })
            .collect(),
    );
    let c = "203.0.113.22";
    want.insert(
        c,
        vec![
            v4(
                "<spam@example.org>,relay=[192.0.2.66]",
                c,
                vec![unknown("nosuch-p1"), unknown("nosuch-q1")],
            ),
            v4(
                "<\"spam 2\"@example.org>",
                c,
                vec![unknown("nosuch-p2"), unknown("nosuch-q2")],
            ),
        ],
    );
    want
}

/// What `portcullis test` must give, (host, rule) -> the weights of the matched lines in
/// order: each transaction's summary weighs its held lines.
fn expected_matches(hosts: &[&str]) -> BTreeMap<(String, String), Vec<u64>> {
    let all: [(&str, &str, &[u64]); 9] = [
        ("203.0.113.10", "unknown-rcpt", &[3, 3, 3]),
        ("203.0.113.11", "unknown-rcpt", &[3, 3]),
        ("203.0.113.12", "unknown-rcpt", &[2, 2, 2]),
        // the dropped session (class scan, mode ddos)
        ("203.0.113.12", "lost-input", &[1]),
        ("203.0.113.13", "unknown-rcpt", &[2, 1, 1]),
        ("2001:db8::50", "unknown-rcpt", &[2, 2]),
        ("203.0.113.20", "unknown-rcpt", &[3, 3]),
        ("203.0.113.21", "unknown-rcpt", &[2, 2]),
        ("203.0.113.22", "unknown-rcpt", &[2, 2]),
    ];
    all.iter()
        .filter(|(h, _, _)| hosts.contains(h))
        .map(|(h, r, w)| ((h.to_string(), r.to_string()), w.to_vec()))
        .collect()
}

/// `portcullis test --filter sendmail-reject --json` on `log`: (host, rule, weight, line) of
/// every line that counts.
fn matches(log: &Path) -> Vec<(String, String, u64, String)> {
    counted_weights(FILTER, log)
}

fn bans(hosts: &[&str]) -> BTreeSet<String> {
    hosts.iter().map(|h| ban_of(h)).collect()
}

// The Sendmail under test: Debian 12's (8.17.1, unpacked on the host) or Debian 13's
// (8.18.1, test.sh's trixie-d tree, run with chroot).

#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn real_sendmail_unknown_recipients_give_the_attackers_and_only_them() {
    run(Release::Deb12);
}

#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn real_sendmail_8_18_unknown_recipients_give_the_attackers_and_only_them() {
    run(Release::Deb13);
}

/// Runs every scenario against `version`'s Sendmail (the clients are the machine's) and
/// checks what Sendmail wrote and what the filter counts of it.
fn run(version: Release) {
    let started = Instant::now();
    let mut lab = SendmailLab::new(version);
    lab.configure();
    lab.start_rsyslogd();
    lab.start_sendmail();
    lab.attack();

    // a snapshot: what every check below reads
    let log = lab.path("sendmail.log");
    fs::copy(lab.syslog(), &log).expect("log snapshot");
    let text = fs::read_to_string(&log).unwrap();
    let (by_id, other) = transactions(&text);
    let version = other
        .iter()
        .find_map(|m| m.strip_prefix("starting daemon (")?.split_once(')'))
        .map(|(v, _)| v)
        .unwrap_or_default()
        .to_string();
    eprintln!("real_sendmail: Sendmail {version}");
    assert!(
        version.starts_with(lab.sm.release()),
        "Sendmail {version} started, not {}\nlog:\n{text}",
        lab.sm.release()
    );

    // ---- what Sendmail wrote ----
    assert!(
        other.iter().all(|m| m.starts_with("starting daemon (")),
        "Sendmail wrote lines without a queue id other than its start: {other:?}\nlog:\n{text}"
    );
    let mut got: BTreeMap<String, Vec<Vec<String>>> = BTreeMap::new();
    for (id, msgs) in &by_id {
        let client = summary_client(msgs).unwrap_or_else(|| {
            panic!("queue id {id}: no summary (from=) naming a client: {msgs:?}\nlog:\n{text}")
        });
        got.entry(client).or_default().push(msgs.clone());
    }
    let legit = got.remove(LEGIT).unwrap_or_default();
    let want = expected_log();
    let got_attackers: BTreeMap<&str, &Vec<Vec<String>>> =
        got.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let want_ref: BTreeMap<&str, &Vec<Vec<String>>> = want.iter().map(|(k, v)| (*k, v)).collect();
    assert_eq!(
        got_attackers, want_ref,
        "Sendmail's lines (per client, per queue id) differ from the expected ones\nlog:\n{text}"
    );
    // the legitimate client: nrcpts=1 twice with the unknown user, and two delivered mails
    let summary_of = |t: &Vec<String>| t.iter().find(|m| m.starts_with("from=")).cloned();
    assert_eq!(
        legit.len(),
        3,
        "the legitimate client's transactions:\n{text}"
    );
    assert_eq!(
        legit[0],
        vec![
            unknown("nosuch-legit"),
            format!("from=<bob@example.org>, size=0, class=0, nrcpts=1, proto=ESMTP, daemon=MTA-v4, relay=[{LEGIT}]"),
        ],
        "the legitimate transaction without a message\nlog:\n{text}"
    );
    for (t, held) in [(&legit[1], true), (&legit[2], false)] {
        let from = summary_of(t).unwrap_or_default();
        assert!(
            from.starts_with("from=<bob@example.org>, size=")
                && from.contains(", class=0, nrcpts=1, msgid=<")
                && from.ends_with(&format!(
                    "@mx.example.net>, proto=ESMTP, daemon=MTA-v4, relay=[{LEGIT}]"
                ))
                && (t[0] == unknown("nosuch-legit")) == held
                && t.iter().any(|m| {
                    m.starts_with("to=<alice@example.net>, ") && m.ends_with(", stat=Sent")
                }),
            "a legitimate mail: {t:?}\nlog:\n{text}"
        );
    }

    // ---- portcullis test: what the filter counts today ----
    let found = matches(&log);
    let shown: Vec<String> = found
        .iter()
        .map(|(h, r, w, l)| format!("  {h} {r} weight {w}: {l}"))
        .collect();
    let shown = shown.join("\n");
    let mut counts: BTreeMap<(String, String), Vec<u64>> = BTreeMap::new();
    for (host, rule, weight, line) in &found {
        assert!(
            host != LEGIT && host != INJECTED,
            "{host} (the legitimate client or the address the clients typed) reported from: \
             {line}\nall matches:\n{shown}"
        );
        assert!(
            CORE.contains(&host.as_str()) || GAPS.contains(&host.as_str()),
            "{host} is no scenario's address: {line}\nall matches:\n{shown}"
        );
        // the counted line is Sendmail's summary (or the dropped session's line), naming the
        // host as its client, last
        let written = if host.contains(':') {
            "IPv6:2001:db8:0:0:0:0:0:50".to_string()
        } else {
            host.clone()
        };
        assert!(
            (rule == "unknown-rcpt"
                && line.contains(", nrcpts=0, ")
                && line.ends_with(&format!(", relay=[{written}]")))
                || (rule == "lost-input"
                    && line.contains(&format!("lost input channel from [{written}] "))),
            "{host} taken from a line that is no summary of its own: {line}\nall matches:\n{shown}"
        );
        counts
            .entry((host.clone(), rule.clone()))
            .or_default()
            .push(*weight);
    }
    let core_counts: BTreeMap<(String, String), Vec<u64>> = counts
        .iter()
        .filter(|((h, _), _)| CORE.contains(&h.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    assert_eq!(
        core_counts,
        expected_matches(&CORE),
        "matched (address, rule) -> weights differ from the expected ones\nmatches:\n{shown}\nlog:\n{text}"
    );

    // ---- portcullis replay ----
    let dir = lab.dir.path();
    let gap_bans = bans(&GAPS);
    // maxretry 4: every attacker (9, 6, 6, 4 and 4); the gap scenarios (6, 4, 4) are checked
    // below
    let banned = replay_jail(dir, FILTER, &log, "normal", 4);
    let core_banned: BTreeSet<String> = banned.difference(&gap_bans).cloned().collect();
    assert_eq!(
        core_banned,
        bans(&CORE),
        "replay (mode normal, maxretry 4) banned other addresses than the attackers\nlog:\n{text}"
    );
    // maxretry 7: only the attacker of nine (no gap scenario reaches 7); 10: nobody
    assert_eq!(
        replay_jail(dir, FILTER, &log, "normal", 7),
        bans(&["203.0.113.10"]),
        "replay (mode normal, maxretry 7)\nmatches:\n{shown}"
    );
    assert_eq!(
        replay_jail(dir, FILTER, &log, "normal", 10),
        BTreeSet::new(),
        "replay (mode normal, maxretry 10): the transactions weigh more than their refused \
         recipients\nmatches:\n{shown}"
    );
    // mode ddos: only the session that dropped its connection (unknown-rcpt is mode normal)
    assert_eq!(
        replay_jail(dir, FILTER, &log, "ddos", 1),
        bans(&["203.0.113.12"]),
        "replay (mode ddos, maxretry 1)\nmatches:\n{shown}"
    );

    // ---- what a correct filter must count too (module doc) ----
    let mut gaps = Vec::new();
    for host in GAPS {
        let got: BTreeMap<(String, String), Vec<u64>> = counts
            .iter()
            .filter(|((h, _), _)| h == host)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let want = expected_matches(&[host]);
        let summaries: Vec<String> = want_ref[host].iter().map(|t| t.join(" | ")).collect();
        if got != want || !banned.contains(&ban_of(host)) {
            gaps.push(format!(
                "  {host}: counted {got:?}, a correct filter {want:?} (banned at maxretry 4: \
                 {}); Sendmail wrote, per transaction:\n    {}",
                banned.contains(&ban_of(host)),
                summaries.join("\n    ")
            ));
        }
    }
    assert!(
        gaps.is_empty(),
        "the filter lets these dictionary attacks go uncounted (every other check passed):\n{}\n\
         (203.0.113.20: RCPT TO without <>: the held lines have no <>; 203.0.113.21: a MAIL FROM \
         path over 199 bytes, cut by logsender()'s %.200s; 203.0.113.22: text after the path's \
         '>' and a quoted local part with a space)",
        gaps.join("\n")
    );

    drop(lab);
    eprintln!("real_sendmail: done in {:?}", started.elapsed());
}

//! The journal source that filters/exim.toml's header advises against Exim's syslog double
//! count, run for real: Exim logging through syslog into a real systemd-journald, and the
//! daemon reading that journal with the advised match and without it. Twice, one scenario
//! table: Debian 12's Exim 4.96 (exim4-daemon-light unpacked by test.sh under
//! /var/cache/portcullis-test/exim/root, as tests/real_exim.rs runs it) sending to Debian 12's
//! journald (systemd 252, the machine's), and Debian 13's Exim 4.98.2 (exim4-daemon-heavy in
//! test.sh's trixie-e tree, run with chroot in a private overlay of it, as
//! tests/real_exim_spam.rs does) sending to Debian 13's journald (systemd 257 from the trixie
//! tree, chrooted in its overlay, its journalctl too: `common::journald`). Each run asserts
//! both versions (Exim's "daemon started" line and the tree's dpkg database; journald's
//! `assert_release`).
//!
//! journald runs in a private mount namespace (`Journald::start_on`); Exim runs in that mount
//! namespace (nsenter), in a server network namespace (192.0.2.1, 2001:db8::1) and a mount
//! namespace of its own whose /dev is private (`private_dev`) and whose /dev/log is journald's
//! `/run/systemd/journal/dev-log`, bind-mounted (inside the Debian 13 chroot too, which binds
//! that /dev). Exim's configuration sets `log_file_path = syslog : DIR/log/%slog` (syslog and
//! its own files, which the test compares with the journal) and `log_selector =
//! +smtp_connection`; `syslog_duplication`, `syslog_processname`, `syslog_facility` and
//! `syslog_timestamp` stay at their defaults. A plaintext PLAIN/LOGIN authenticator passes
//! only alice/correct-horse; the RCPT ACL refuses relaying and unknown recipients;
//! 203.0.113.16's address is looked up (`host_lookup`, files only: no name).
//!
//! Clients (Debian's python3 in a client namespace, `common::smtp`'s SMTP_CLIENT_PY), one
//! source address per scenario: 203.0.113.10 two failed AUTH PLAIN in one session,
//! 203.0.113.11 a failed AUTH LOGIN, 203.0.113.12 relay not permitted, 203.0.113.13 an unknown
//! local recipient, 203.0.113.14 input before the greeting, 203.0.113.15 pipelining after HELO
//! (synchronization errors), 203.0.113.16 a session without failure whose address has no name
//! ("no host name found", main log only), 2001:db8::50 relay not permitted over IPv6; last the
//! legitimate 198.51.100.7 authenticates and sends a mail.
//!
//! Asserted, from what journald stored (`journalctl -o json`): every entry Exim wrote has the
//! SYSLOG_IDENTIFIER that Exim's default `syslog_processname` gives, `exim` (globals.c;
//! openlog() in log.c), on both releases, although Debian's binary is `exim4` (no entry has
//! `exim4`: the header's first advice, `journal:SYSLOG_IDENTIFIER=exim4 PRIORITY=6`, read
//! nothing, and was corrected from this run); facility mail; `_UID` the Exim user's (the
//! daemon and its session processes alike, Debian-exim); the PRIORITY=6 entries are exactly
//! the main log's lines, the PRIORITY=5 entries exactly the reject log's, no other priority; each authenticator failure, ACL rejection and
//! synchronization error is there twice (6 and 5), the lines only the main log gets ("no host
//! name found", "SMTP connection from", the legitimate mail's "<=") once, at 6. Then the daemon
//! (this build, in journald's namespace, `Journald::daemon`, null firewall), started before
//! Exim, with jails of filter exim: `journal:SYSLOG_IDENTIFIER=exim PRIORITY=6` counts each
//! failure once (`status --json`: 2 for 203.0.113.10, 1 for every other attacker), and
//! `journal:SYSLOG_IDENTIFIER=exim` alone twice; with maxretry 2 the first bans only
//! 203.0.113.10, the second every attacker; in mode aggressive the first counts 203.0.113.16's
//! "no host name found" once. Then nobody writes a failed AUTH of 192.0.2.66 with `logger -t
//! exim -p mail.info`: the advised source counts it too, while the advised source with `_UID=`
//! the Exim user's uid counts only Exim's failures (once each). The first advice's source
//! counts nothing. Nothing counts 198.51.100.7.
//!
//! Needs root, the unpacked Exim, the trixie and trixie-e trees (test.sh), python3, bash,
//! nsenter, unshare, runuser, logger and chroot; fails loudly when they are missing. About
//! 3 s each.

mod common;
mod exim;

use common::*;
use exim::*;
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

const SERVER: &str = "192.0.2.1";
const SERVER_V6: &str = "2001:db8::1";
const LEGIT: &str = "198.51.100.7";
const PYTHON: &str = "/usr/bin/python3";
/// The SYSLOG_IDENTIFIER of Exim's entries: its `syslog_processname`, default "exim", which
/// Debian's builds keep (seen in the runs of both releases).
const IDENT: &str = "exim";
/// The journal source the header of filters/exim.toml advises: only the main log's copy.
const MAIN_ONLY: &str = "journal:SYSLOG_IDENTIFIER=exim PRIORITY=6";
/// The same without the priority: both copies.
const BOTH: &str = "journal:SYSLOG_IDENTIFIER=exim";
/// What the header advised until this test ran: Debian's binary is exim4, its identifier not.
const OLD_ADVICE: &str = "journal:SYSLOG_IDENTIFIER=exim4 PRIORITY=6";

/// An entry a local user (nobody) writes with `logger -t exim -p mail.info`: a failed AUTH of
/// 192.0.2.66, no client of the test.
const FORGED: &str = "plain_server authenticator failed for (x) [192.0.2.66]: 535 Incorrect \
                      authentication data (set_id=a)";

/// The attackers' addresses, each one scenario.
const ATTACKERS: [&str; 8] = [
    "203.0.113.10",
    "203.0.113.11",
    "203.0.113.12",
    "203.0.113.13",
    "203.0.113.14",
    "203.0.113.15",
    "203.0.113.16",
    "2001:db8::50",
];

/// The scenarios, after the shared head and main (`exim::client_py`).
const SCENARIOS_PY: &str = r##"
# ---- the scenarios of crates/portcullis/tests/real_exim_journal.rs: `client.py PORT`
class Conn(SmtpConn):
    # the banner, then `helo` unless None; `banner=False`: nothing read
    def __init__(self, src, helo=b"EHLO client.example.com", banner=True):
        SmtpConn.__init__(self, src, PORT)
        if banner:
            expect(src + " banner", self.reply(), b"220 ")
            if helo is not None:
                self.cmd(helo, b"250")


def auth_plain(src, times):
    c = Conn(src)
    for _ in range(times):
        c.cmd(plain(b"alice", b"wrong"), b"535 ")
    c.quit()


def auth_login(src):
    c = Conn(src)
    c.cmd(b"AUTH LOGIN", b"334 ")
    c.cmd(base64.b64encode(b"nosuch"), b"334 ")
    c.cmd(base64.b64encode(b"wrong"), b"535 ")
    c.quit()


def rcpt(src, to):
    c = Conn(src)
    c.cmd(b"MAIL FROM:<spam@example.org>", b"250 ")
    c.cmd(b"RCPT TO:" + to, b"550 ")
    c.quit()


def pregreet(src):
    # the connect ACL delays this client's banner by 1 s: talk before it
    c = Conn(src, banner=False)
    c.send(b"EHLO client.example.com\r\n")
    expect(src + " pre-greeting", c.reply(), b"554 ")
    c.close()


def pipelining(src):
    # HELO advertises no PIPELINING: the rest is sent before Exim answered
    c = Conn(src, helo=None)
    c.send(b"HELO client.example.com\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<alice@example.net>\r\n")
    expect(src + " pipelined", c.reply(), b"554 ")
    c.close()


def plain_session(src):
    Conn(src).quit()


def legit():
    c = Conn(LEGIT)
    c.cmd(plain(b"alice", b"correct-horse"), b"235 ")
    c.cmd(b"MAIL FROM:<alice@example.net>", b"250 ")
    c.cmd(b"RCPT TO:<friend@example.com>", b"250 ")
    c.cmd(b"DATA", b"354 ")
    c.cmd(b"Subject: hello\r\n\r\nhello\r\n.", b"250 ")
    c.quit()


ATTACKS = [
    (auth_plain, ("203.0.113.10", 2)),
    (auth_login, ("203.0.113.11",)),
    (rcpt, ("203.0.113.12", b"<victim@example.com>")),
    (rcpt, ("203.0.113.13", b"<nosuch@example.net>")),
    (pregreet, ("203.0.113.14",)),
    (pipelining, ("203.0.113.15",)),
    (plain_session, ("203.0.113.16",)),
    (rcpt, ("2001:db8::50", b"<victim@example.com>")),
]

main([(f, *a) for f, a in ATTACKS], legit)
"##;

/// Exim's configuration (@DIR@ its directory), then [`ROUTERS_CONF`] and
/// [`AUTHENTICATORS_CONF`]. Logs to syslog and to its own files; every syslog_* option at its
/// default.
const EXIM_CONF: &str = r#"log_file_path = syslog : @DIR@/log/%slog
log_selector = +smtp_connection
primary_hostname = mx.example.net
qualify_domain = example.net
domainlist local_domains = example.net
spool_directory = @DIR@/spool
pid_file_path = @DIR@/exim.pid
# the unpacked libraries (Debian 12) for any process Exim re-executes
keep_environment = LD_LIBRARY_PATH
local_interfaces = <; 192.0.2.1 ; 2001:db8::1
daemon_smtp_ports = 25
pipelining_connect_advertise_hosts =
tls_advertise_hosts =
rfc1413_hosts =
queue_only = true
# reverse lookup (the private /etc/hosts, files only: no name) for one client only
host_lookup = 203.0.113.16
host_lookup_order = byaddr
acl_smtp_connect = acl_connect
acl_smtp_rcpt = acl_rcpt

begin acl

acl_connect:
  # this client talks before the greeting: give it the time to
  accept hosts = 203.0.113.14
         delay = 3s
  accept

acl_rcpt:
  accept authenticated = *
  deny !domains = +local_domains
       message = relay not permitted
  require verify = recipient
  accept

"#;

/// Run by bash in journald's mount namespace, inside the server network namespace, in a
/// mount namespace of its own: a private /dev whose /dev/log is journald's syslog socket,
/// then Exim. $1 the test's directory, $2 Debian 12's unpacked Exim or empty, $3 the Debian
/// 13 tree or empty.
const EXIM_SH: &str = r#"set -eu
d=$1; root=$2; tree=$3
sock=/run/systemd/journal/dev-log
[ -S "$sock" ] || { echo "no $sock in journald's namespace" >&2; exit 2; }
private_dev
: > /dev/log
mount --bind "$sock" /dev/log
if [ -n "$tree" ]; then
  trixie_mount "$tree" "$d/root" "$d/trixie"
  cp "$d/etc/nsswitch.conf" "$d/etc/hosts" "$d/root/etc/"
  chroot "$d/root" dpkg-query -W -f '${Version}' exim4-daemon-heavy > "$d/version"
  exec chroot "$d/root" /usr/sbin/exim4 -C "$d/exim.conf" -bdf
else
  private_etc "$d/etc-ov" "$d/etc" passwd group nsswitch.conf hosts
  export LD_LIBRARY_PATH="$root/usr/lib/x86_64-linux-gnu"
  exec "$root/usr/sbin/exim4" -C "$d/exim.conf" -bdf
fi
"#;

/// The failures each attacker's lines count in mode normal, read once: two failed AUTH for
/// 203.0.113.10, one failure for each other attacker but 203.0.113.16 (no failure; its "no
/// host name found" is a scan, mode ddos).
fn once() -> BTreeMap<String, u32> {
    ATTACKERS
        .iter()
        .filter(|a| **a != "203.0.113.16")
        .map(|a| (ban_of(a), if *a == "203.0.113.10" { 2 } else { 1 }))
        .collect()
}

/// The daemon's configuration: jails of filter exim on the two journal sources, counting
/// (maxretry 100) and banning (maxretry 2), of mode aggressive on the advised source, on the
/// advised source limited to the Exim user's entries (`uid`), and on the first advice's.
fn daemon_config(dir: &Path, uid: u32) -> PathBuf {
    let with_uid = format!("{MAIN_ONLY} _UID={uid}");
    let mut text = format!(
        "socket = {:?}\nstate_dir = {:?}\n[firewall]\nbackend = \"null\"\n",
        dir.join("portcullis.sock").display().to_string(),
        dir.join("state").display().to_string(),
    );
    for (name, source, maxretry, mode) in [
        ("count-main", MAIN_ONLY, 100, "normal"),
        ("count-both", BOTH, 100, "normal"),
        ("ban-main", MAIN_ONLY, 2, "normal"),
        ("ban-both", BOTH, 2, "normal"),
        ("scan-main", MAIN_ONLY, 100, "aggressive"),
        ("uid-main", &with_uid, 100, "normal"),
        ("old-advice", OLD_ADVICE, 100, "aggressive"),
    ] {
        text.push_str(&format!(
            "[[jail]]\nname = \"{name}\"\nfilter = \"exim\"\nlogs = [{source:?}]\nmode = \"{mode}\"\n\
             maxretry = {maxretry}\nfindtime = \"1h\"\nbantime = \"1h\"\n"
        ));
    }
    let path = dir.join("portcullis.toml");
    fs::write(&path, text).unwrap();
    path
}

#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn real_exim_journal_priority_6_counts_each_failure_once() {
    run(Release::Deb12);
}

#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn real_exim_498_journal_257_priority_6_counts_each_failure_once() {
    run(Release::Deb13);
}

fn run(release: Release) {
    require_root();
    for (program, package) in [
        ("bash", "bash"),
        ("nsenter", "util-linux"),
        ("runuser", "util-linux"),
        ("logger", "bsdutils"),
        ("unshare", "util-linux"),
        ("ip", "iproute2"),
    ] {
        require_program(program, package);
    }
    assert!(
        Path::new(PYTHON).is_file(),
        "{PYTHON} is missing: install python3 (test.sh does)"
    );
    let mta = Exim::new(release, Build::Light, trixie_e_root, &[]);
    // mode 0755: Exim's receiving processes run as Debian-exim
    let dir = exim_dir(&mta.label("eximj"));
    let d = dir.path().to_str().expect("utf-8 path").to_string();
    let path = |rel: &str| dir.path().join(rel);

    // journald first, then the daemon reading it (its cursor at the journal's end), then Exim
    let journald = Journald::start_on(
        release,
        Some("[Journal]\nStorage=volatile\nRateLimitBurst=0\n"),
    );
    journald.assert_release();

    // Exim's account: Debian 12 a free id in private /etc files; Debian 13 the tree's
    let free = write_exim_etc(&path("etc"));
    let id = match release {
        Release::Deb12 => (free, free),
        Release::Deb13 => tree_account(&mta.tree, "Debian-exim"),
    };
    for sub in ["spool", "log"] {
        fs::create_dir_all(path(sub)).unwrap();
        std::os::unix::fs::chown(path(sub), Some(id.0), Some(id.1)).unwrap();
    }
    let config = daemon_config(dir.path(), id.0);
    let socket = path("portcullis.sock");
    let daemon_log = path("daemon.log");
    let mut daemon = journald.daemon(&config, &path("state"), &daemon_log);
    fs::write(
        path("exim.conf"),
        [EXIM_CONF, ROUTERS_CONF, AUTHENTICATORS_CONF]
            .concat()
            .replace("@DIR@", &d),
    )
    .unwrap();
    fs::write(
        path("exim.sh"),
        [PRIVATE_ETC_SH, PRIVATE_SYSLOG_SH, TRIXIE_SH, EXIM_SH].concat(),
    )
    .unwrap();
    fs::write(path("client.py"), client_py(SCENARIOS_PY)).unwrap();

    let server = Netns::new("eximj-srv");
    let client = Netns::new("eximj-cli");
    let attackers: Vec<String> = ATTACKERS.iter().map(|a| a.to_string()).collect();
    wire_server_and_clients(&server, &client, (SERVER, SERVER_V6), LEGIT, &attackers);

    // Exim: the server network namespace (`ip netns exec`), then journald's mount namespace
    // (its /run/systemd; the nsenter of `Journald::command`: the netns' file under /run/netns
    // is not seen in there), then a mount namespace of its own (exim.sh)
    let enter = journald.command(&[
        "unshare".into(),
        "--mount".into(),
        "--propagation".into(),
        "private".into(),
        "bash".into(),
        path("exim.sh").display().to_string(),
        d.clone(),
        mta.root.display().to_string(),
        mta.tree.display().to_string(),
    ]);
    let program = enter.get_program().to_str().expect("nsenter").to_string();
    let mut cmd = server.command(&program, &enter.get_args().collect::<Vec<_>>());
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(fs::File::create(path("exim.stderr")).unwrap());
    let mut exim = ProcessGuard::spawn(cmd, "exim4 -bdf");
    let read = |rel: &str| fs::read_to_string(path(rel)).unwrap_or_default();
    let up = wait_until(Duration::from_secs(20), || {
        server.listens_on(25, SERVER, SERVER_V6) && read("log/mainlog").contains("daemon started")
    });
    assert!(
        up,
        "exim did not come up (exit {:?}); stderr: {}\nmainlog: {}\npaniclog: {}",
        exim.try_wait(),
        read("exim.stderr"),
        read("log/mainlog"),
        read("log/paniclog")
    );

    // the clients, then every session process's end
    let out = client.exec_timeout(
        PYTHON,
        &[path("client.py").as_os_str(), "25".as_ref()],
        Duration::from_secs(90),
    );
    assert!(
        out.success(),
        "the SMTP clients failed (timed out: {}): {}\n{}\nmainlog:\n{}",
        out.timed_out,
        out.stdout_str(),
        out.stderr_str(),
        read("log/mainlog")
    );
    let settled = wait_until(Duration::from_secs(15), || server.pids().len() <= 1);
    assert!(
        settled,
        "Exim's session processes did not end: {:?}",
        server.pids()
    );

    // ---- the versions ----
    let main = read("log/mainlog");
    let reject = read("log/rejectlog");
    let version = mta.assert_started(&main);
    mta.assert_heavy_package(&read("version"));
    let (journalctl, systemd) = journald.versions();
    eprintln!("real_exim_journal: {version}, journald of systemd {systemd} ({journalctl})");

    // ---- what journald stored ----
    // every line of the main and the reject log has reached the journal
    let sorted = |text: &str| {
        let mut v: Vec<String> = text.lines().map(String::from).collect();
        v.sort();
        v
    };
    let main_lines = sorted(&main);
    let reject_lines = sorted(&reject);
    // (nothing else in journald's namespace logs through syslog)
    let exim_entries = || journald.messages(&["_TRANSPORT=syslog"]);
    let all_in = wait_until(Duration::from_secs(20), || {
        exim_entries().len() >= main_lines.len() + reject_lines.len()
    });
    let entries = exim_entries();
    let shown = || {
        entries
            .iter()
            .map(|(m, v)| {
                format!(
                    "  {} {} {m}",
                    v["SYSLOG_IDENTIFIER"].as_str().unwrap_or("-"),
                    v["PRIORITY"].as_str().unwrap_or("-")
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert!(
        all_in,
        "the journal holds {} of Exim's entries, the logs {} + {} lines:\n{}\nmainlog:\n{main}\nrejectlog:\n{reject}",
        entries.len(),
        main_lines.len(),
        reject_lines.len(),
        shown()
    );
    // who Exim says it is, and where: SYSLOG_IDENTIFIER "exim" (syslog_processname), facility
    // mail (2), for the binary exim4 too; and who it is: every entry (the daemon's and the
    // sessions') from the Exim user's uid, which journald sets (_UID)
    let uid = id.0.to_string();
    for (_, v) in &entries {
        assert_eq!(
            (
                v["SYSLOG_IDENTIFIER"].as_str(),
                v["SYSLOG_FACILITY"].as_str(),
                v["_UID"].as_str(),
            ),
            (Some(IDENT), Some("2"), Some(uid.as_str())),
            "an entry of Exim's:\n{}",
            shown()
        );
    }
    assert!(
        journald.messages(&["SYSLOG_IDENTIFIER=exim4"]).is_empty(),
        "entries with SYSLOG_IDENTIFIER=exim4:\n{}",
        shown()
    );
    // the main log's lines at 6 (LOG_INFO), the reject log's at 5 (LOG_NOTICE), nothing else
    // (as sorted lists: a process's syslog copy goes before its file copy, so two processes
    // can write their lines in the other order to journald than to the file)
    let at = |p: &str| -> Vec<String> {
        let mut v: Vec<String> = entries
            .iter()
            .filter(|(_, v)| v["PRIORITY"].as_str() == Some(p))
            .map(|(m, _)| m.clone())
            .collect();
        v.sort();
        v
    };
    assert_eq!(
        at("6"),
        main_lines,
        "PRIORITY=6 against the main log:\n{}",
        shown()
    );
    assert_eq!(
        at("5"),
        reject_lines,
        "PRIORITY=5 against the reject log:\n{}",
        shown()
    );
    assert_eq!(
        entries.len(),
        main_lines.len() + reject_lines.len(),
        "entries at other priorities:\n{}",
        shown()
    );
    // each failure twice, 6 and 5; the lines of the main log only, once at 6
    let priorities = |needle: &str| -> Vec<String> {
        entries
            .iter()
            .filter(|(m, _)| m.contains(needle))
            .map(|(_, v)| v["PRIORITY"].as_str().unwrap_or("-").to_string())
            .collect()
    };
    for (needle, want) in [
        ("authenticator failed for (client.example.com) [203.0.113.10]", &["6", "5", "6", "5"][..]),
        ("login_server authenticator failed for (client.example.com) [203.0.113.11]", &["6", "5"]),
        ("[203.0.113.12] F=<spam@example.org> rejected RCPT <victim@example.com>: relay not permitted", &["6", "5"]),
        ("[203.0.113.13] F=<spam@example.org> rejected RCPT <nosuch@example.net>", &["6", "5"]),
        ("SMTP protocol synchronization error (input sent without waiting for greeting): rejected connection from H=[203.0.113.14]", &["6", "5"]),
        ("SMTP protocol synchronization error (next input sent too soon: pipelining was not advertised): rejected \"HELO client.example.com\" H=[203.0.113.15]", &["6", "5"]),
        ("[2001:db8::50] F=<spam@example.org> rejected RCPT <victim@example.com>: relay not permitted", &["6", "5"]),
        ("no host name found for IP address 203.0.113.16", &["6"]),
        ("SMTP connection from [203.0.113.16] (TCP/IP connection count = ", &["6"]),
        // 4.98: " D=0s" before "closed by QUIT"
        ("SMTP connection from (client.example.com) [203.0.113.16] ", &["6"]),
        (" daemon started: pid=", &["6"]),
        ("<= alice@example.net H=(client.example.com) [198.51.100.7]", &["6"]),
    ] {
        assert_eq!(priorities(needle), want, "the entries holding `{needle}`:\n{}", shown());
    }

    // a local user's forged entry, as the advised source sees Exim's (identifier exim,
    // facility mail, priority info): logger run by nobody
    let out = journald.run(
        &[
            "runuser",
            "-u",
            "nobody",
            "--",
            "logger",
            "-t",
            IDENT,
            "-p",
            "mail.info",
            "-u",
            "/run/systemd/journal/dev-log",
            FORGED,
        ]
        .map(String::from),
    );
    assert!(out.success(), "logger as nobody: {out:?}");

    // ---- what the daemon counted ----
    let dlog = || fs::read_to_string(&daemon_log).unwrap_or_default();
    let twice: BTreeMap<String, u32> = once().into_iter().map(|(h, n)| (h, 2 * n)).collect();
    // the forged entry counts where no _UID is asked for
    let forged = |mut c: BTreeMap<String, u32>| {
        c.insert("192.0.2.66".into(), 1);
        c
    };
    let mut scans = forged(once());
    scans.insert("203.0.113.16".into(), 1);
    let want_counts: BTreeMap<String, BTreeMap<String, u32>> = [
        ("count-main", forged(once())),
        ("count-both", forged(twice.clone())),
        ("scan-main", scans),
        ("uid-main", once()),
        ("old-advice", BTreeMap::new()),
    ]
    .into_iter()
    .map(|(j, c)| (j.to_string(), c))
    .collect();
    let counts = || {
        let mut f = failing(&socket);
        f.retain(|j, _| want_counts.contains_key(j));
        f
    };
    let want_bans: BTreeMap<String, BTreeSet<String>> = [
        ("ban-main", BTreeSet::from(["203.0.113.10".to_string()])),
        ("ban-both", twice.keys().cloned().collect()),
    ]
    .into_iter()
    .map(|(j, b)| (j.to_string(), b))
    .collect();
    // the doubled counts come last: wait for them, then a second more for any late count
    wait_until(Duration::from_secs(20), || {
        counts() == want_counts && bans_by_jail(&socket) == want_bans
    });
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(
        counts(),
        want_counts,
        "failing addresses per jail (status --json)\njournal:\n{}\ndaemon:\n{}",
        shown(),
        dlog()
    );
    assert_eq!(
        bans_by_jail(&socket),
        want_bans,
        "bans per jail (maxretry 2)\ndaemon:\n{}",
        dlog()
    );
    assert!(
        !dlog().contains(LEGIT),
        "the daemon named the legitimate client:\n{}",
        dlog()
    );

    daemon.kill();
    exim.kill();
    drop(client);
    drop(server);
    drop(journald);
}

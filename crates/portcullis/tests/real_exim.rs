//! Issue 11: the `exim` filter against the real Exim. Debian's exim4-daemon-light conflicts
//! with the postfix package that tests/real_mail.rs needs (both provide
//! mail-transport-agent), so test.sh does not install it: it downloads the .debs
//! (exim4-daemon-light, exim4-base and the libraries the machine lacks, libidn12 on
//! Debian 12) and unpacks them with `dpkg -x` under /var/cache/portcullis-test/exim/root
//! (PORTCULLIS_EXIM_ROOT elsewhere). This test runs that `exim4` as root with `-C CONFIG`,
//! a configuration it writes: its own spool and log directory, a plaintext PLAIN/LOGIN
//! authenticator that only alice/correct-horse passes, ACLs that reject a connection (a
//! "blocklisted" client), a HELO name, a sender, relaying, unknown recipients, a local
//! sender that fails sender verification, VRFY, a DATA for one client, a `drop` for a trap
//! recipient, host-name checks (helo_verify_hosts, host_lookup, a host list naming a host
//! with no address). The binary's compiled-in user Debian-exim is not created on the
//! machine: Exim runs in a private mount namespace (`unshare -m`) where the test's own
//! passwd, group, nsswitch.conf (files only: no DNS) and hosts files lie over /etc (an
//! overlay, `common::netns::PRIVATE_ETC_SH`, which a host's useradd cannot undo).
//! A second test runs the same scenarios against Debian 13's Exim 4.98.2 (exim4-daemon-light
//! in test.sh's second Debian 13 tree, `common::real::trixie_b_root`), with chroot in a
//! private overlay of the tree (`trixie_mount`: a private /dev, the test's directory at the
//! same path inside, the tree's Debian-exim account, the test's nsswitch.conf and hosts in
//! its /etc). The expected counts are the same for both; 4.98 writes " (N bytes)" after the
//! pipelining error's input and, with +all, " Ci=PID" after the client (asserted).
//!
//! Two daemons run in a network namespace (192.0.2.1, 2001:db8::1): port 25 with Exim's
//! default log selectors, port 2525 with `log_selector = +all` (pid, milliseconds, ports,
//! interface, no-MAIL, protocol and syntax errors, ...). Clients in a second namespace
//! (Debian's python3, raw sockets) run every scenario against each: one source address per
//! scenario (203.0.113.N, 2001:db8::N) so that each line can be tied to the scenario that
//! wrote it, the legitimate client 198.51.100.7 last (AUTH PLAIN and a mail, then an AUTH
//! LOGIN session without mail). Scenarios: failed AUTH PLAIN/LOGIN (wrong password, unknown
//! user, twice in a session, a brute force ended by smtp_accept_max_nonmail, a connection
//! lost during AUTH), set_id holding '(' or a forged "(y) [198.51.100.7]: 535 ..." tail,
//! CR/LF and a forged line in PLAIN and LOGIN user names, the legitimate address as a user
//! name; relay not permitted, unknown recipient, rejected MAIL, VRFY, connect ACL, HELO
//! ACL, sender verify failure, DROP in ACL; input before the greeting, pipelining after
//! HELO, an HTTP request, too many syntax errors / unrecognized commands / nonmail
//! commands, AUTH not advertised, unsupported mechanism, dropped connections; invalid EHLO
//! arguments, helo_verify_hosts, no host name for the address, no address for a listed
//! host name; and injections: a HELO address literal, MAIL FROM and RCPT TO holding a
//! typed address, '<' '>' or a forged line, AUTH data and commands imitating Exim's
//! protocol error text, CR and forged lines in MAIL FROM and RCPT TO, message headers
//! holding forged lines in the reject log.
//!
//! Then `portcullis test --filter exim --json` on each daemon's mainlog and rejectlog: the
//! (address, rule) pairs must be exactly the listed ones, each from its scenario's address;
//! nothing names the legitimate client or an address a client typed (198.51.100.7 is the
//! only one typed). `portcullis replay` with a jail per mode (normal, ddos, aggressive;
//! maxretry 1) bans exactly the scenarios that mode counts.
//!
//! Needs root, the unpacked Exim and the Debian 13 tree (test.sh), python3, bash and chroot;
//! fails loudly when they are missing. Each test runs in about 6 s.

mod common;
mod exim;

use common::*;
use exim::*;
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

const SERVER: &str = "192.0.2.1";
const SERVER_V6: &str = "2001:db8::1";
const LEGIT: &str = "198.51.100.7";
const PYTHON: &str = "/usr/bin/python3";
/// IPv6 scenarios: 2001:db8::N for N in V6.
const V6: std::ops::RangeInclusive<u8> = 50..=53;

/// The clients' scenarios, after the shared head and main (`exim::client_py`).
const CLIENT_PY: &str = r##"
# ---- the scenarios of crates/portcullis/tests/real_exim.rs: `client.py PORT`. Every attacker
# scenario has its own source address (203.0.113.N or 2001:db8::N), so that each log line can
# be tied to the scenario that caused it; the legitimate client is 198.51.100.7.
# forged lines typed into client fields; each names the legitimate client
FORGED_AUTH = ("2026-12-03 23:59:59 plain_server authenticator failed for (x) "
               "[198.51.100.7]: 535 Incorrect authentication data (set_id=y)")
FORGED_REJECT = ("2026-12-03 23:59:59 H=(x) [198.51.100.7] F=<a@example.org> "
                 "rejected RCPT <b@example.com>: relay not permitted")


class Conn(SmtpConn):
    def __init__(self, src):
        super().__init__(src, PORT)


def smtp(src, helo=b"EHLO client.example.com", want=b"250"):
    c = Conn(src)
    expect(src + " banner", c.reply(), b"220 ")
    c.cmd(helo, want)
    return c


def quit(c):
    c.send(b"QUIT\r\n")
    c.reply()
    c.close()


def auth_plain(src, user, pw=b"wrong", times=1):
    c = smtp(src)
    for _ in range(times):
        c.cmd(plain(user, pw), b"535 ")
    quit(c)


def auth_login(src, user, pw=b"wrong"):
    c = smtp(src)
    c.cmd(b"AUTH LOGIN", b"334 ")
    c.cmd(base64.b64encode(user), b"334 ")
    c.cmd(base64.b64encode(pw), b"535 ")
    quit(c)


def auth_brute(src):
    # one session, many AUTH attempts: AUTH becomes a non-mail command after the first,
    # and smtp_accept_max_nonmail (10) ends the session
    c = smtp(src)
    for i in range(12):
        c.send(plain(b"alice", b"guess%d" % i) + b"\r\n")
        got = c.reply()
        if got.startswith(b"554 "):
            break
        expect(src + " AUTH brute", got, b"535 ")
    else:
        errors.append(src + ": Exim did not end an AUTH brute force session")
    c.close()


def transaction(src, helo=b"EHLO client.example.com", mail=b"<spam@example.org>",
                mail_want=b"250 ", rcpt=b"<victim@example.com>", rcpt_want=b"550 "):
    c = smtp(src, helo)
    c.cmd(b"MAIL FROM:" + mail, mail_want)
    if rcpt is not None:
        c.cmd(b"RCPT TO:" + rcpt, rcpt_want)
    quit(c)


def vrfy(src, cmd=b"VRFY alice@example.net", want=b"252 "):
    c = smtp(src)
    c.cmd(cmd, want)
    quit(c)


def connect_denied(src):
    c = Conn(src)
    expect(src + " banner", c.reply(), b"550")
    c.close()


def drop_acl(src):
    c = smtp(src)
    c.cmd(b"MAIL FROM:<a@example.org>", b"250 ")
    c.cmd(b"RCPT TO:<trap@example.net>", b"550 ")
    c.close()


def pregreet(src):
    c = Conn(src)
    # the connect ACL delays this client's banner by 1 s: talk before it
    c.send(b"EHLO client.example.com\r\n")
    expect(src + " banner", c.reply(), b"554 ")
    c.close()


def pipelining(src, helo=b"HELO client.example.com"):
    c = Conn(src)
    expect(src + " banner", c.reply(), b"220 ")
    # HELO advertises no PIPELINING: the rest is sent before Exim answered
    c.send(helo + b"\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<alice@example.net>\r\n")
    # Exim answers the HELO with the synchronization error and closes
    expect(src + " pipelined", c.reply(), b"554 ")
    c.close()


def junk(src, cmds, last, mid=b"5"):
    c = smtp(src)
    for cmd in cmds[:-1]:
        c.cmd(cmd, mid)
    c.cmd(cmds[-1], last)
    c.close()


def nonmail(src):
    # smtp_accept_max_nonmail (10): the eleventh NOOP ends the session
    c = smtp(src)
    for _ in range(15):
        c.send(b"NOOP\r\n")
        got = c.reply()
        if not got.startswith(b"250 "):
            break
    expect(src + " NOOP", got, b"554 ")
    c.close()


def auth_unadvertised(src):
    c = smtp(src, b"HELO client.example.com")
    c.cmd(plain(b"alice", b"x"), b"503 ")
    quit(c)


def auth_unsupported(src):
    c = smtp(src)
    c.cmd(b"AUTH CRAM-MD5", b"504 ")
    quit(c)


def http_probe(src):
    c = Conn(src)
    expect(src + " banner", c.reply(), b"220 ")
    c.send(b"GET / HTTP/1.0\r\nHost: 192.0.2.1\r\nUser-Agent: x\r\n\r\n")
    # Exim answers the request line with a synchronization error and closes
    expect(src + " GET", c.reply(), b"554 ")
    c.close()


def lost(src):
    smtp(src).close()


def lost_in_auth(src):
    c = smtp(src)
    c.cmd(b"AUTH LOGIN", b"334 ")
    c.close()


def bad_helo(src, arg):
    c = Conn(src)
    expect(src + " banner", c.reply(), b"220 ")
    c.cmd(b"EHLO " + arg, b"501 ")
    quit(c)


def helo_verify(src):
    c = Conn(src)
    expect(src + " banner", c.reply(), b"220 ")
    c.cmd(b"EHLO [198.51.100.7]", b"550 ")
    quit(c)


def raw(src, cmds, helo=b"EHLO client.example.com"):
    # commands whose answers do not matter (each is read), then QUIT
    c = smtp(src, helo)
    for cmd in cmds:
        c.send(cmd + b"\r\n")
        c.reply()
    quit(c)


def data_rejected(src):
    c = smtp(src)
    c.cmd(b"MAIL FROM:<>", b"250 ")
    c.cmd(b"RCPT TO:<alice@example.net>", b"250 ")
    c.cmd(b"DATA", b"354 ")
    c.cmd(b"Subject: x\r\n\t" + FORGED_REJECT.encode() + b"\r\n"
          b"X-Forged: y\r\n " + FORGED_AUTH.encode() + b"\r\n"
          b"To: " + FORGED_REJECT.encode() + b"\r\n"
          b"\r\nbody\r\n.", b"550 ")
    quit(c)


def plain_session(src):
    c = smtp(src)
    quit(c)


def legit():
    c = smtp(LEGIT)
    c.cmd(plain(b"alice", b"correct-horse"), b"235 ")
    c.cmd(b"MAIL FROM:<alice@example.net>", b"250 ")
    c.cmd(b"RCPT TO:<friend@example.com>", b"250 ")
    c.cmd(b"DATA", b"354 ")
    c.cmd(b"Subject: hello\r\n\r\nhello\r\n.", b"250 ")
    quit(c)
    c = smtp(LEGIT)
    c.cmd(b"AUTH LOGIN", b"334 ")
    c.cmd(base64.b64encode(b"alice"), b"334 ")
    c.cmd(base64.b64encode(b"correct-horse"), b"235 ")
    quit(c)


A = "203.0.113.%d"
ATTACKS = [
    # failed SMTP AUTH
    (auth_plain, (A % 10, b"alice")),
    (auth_login, (A % 11, b"nosuch")),
    (auth_plain, (A % 12, b"alice", b"wrong", 2)),
    (auth_plain, (A % 13, b"a(b")),
    (auth_plain, (A % 14, b"a) (y) [198.51.100.7]: 535 Incorrect authentication data (set_id=z")),
    (auth_plain, (A % 15, b"alice\r\n" + FORGED_AUTH.encode())),
    (auth_login, (A % 16, b"bob\r\n" + FORGED_AUTH.encode())),
    (auth_plain, (A % 17, b"198.51.100.7")),
    (auth_brute, (A % 18,)),
    # ACL rejections
    (transaction, (A % 19,)),
    (transaction, (A % 20, b"EHLO client.example.com", b"<>", b"250 ", b"<nosuch@example.net>")),
    (transaction, (A % 21, b"EHLO client.example.com", b"<x@spam.example>", b"550 ", None)),
    (vrfy, (A % 22,)),
    (connect_denied, (A % 23,)),
    (lambda s: smtp(s, b"EHLO forged.example", b"550 ").close(), (A % 24,)),
    (transaction, (A % 25, b"EHLO client.example.com", b"<nobody@example.net>", b"250 ",
                   b"<alice@example.net>", b"550")),
    (drop_acl, (A % 26,)),
    # protocol abuse
    (pregreet, (A % 27,)),
    (pipelining, (A % 28,)),
    (junk, (A % 29, [b"MAIL FROM:<bad"] * 4, b"501")),
    (junk, (A % 30, [b"QUX"] * 4, b"500 ")),
    (nonmail, (A % 31,)),
    (auth_unadvertised, (A % 32,)),
    (auth_unsupported, (A % 33,)),
    (http_probe, (A % 34,)),
    (lost, (A % 35,)),
    (lost_in_auth, (A % 36,)),
    (plain_session, (A % 37,)),
    # injections: typed addresses and forged lines in client fields
    (transaction, (A % 38, b"EHLO [198.51.100.7]")),
    (transaction, (A % 39, b'EHLO client.example.com', b'<"H=(y) [198.51.100.7]"@spam.example>',
                   b"550 ", None)),
    (transaction, (A % 40, b"EHLO client.example.com", b"<spam@example.org>", b"250 ",
                   b'<"x> rejected RCPT <y>: relay H=(z) [198.51.100.7]"@example.com>')),
    (transaction, (A % 41, b"EHLO client.example.com", b"<a@[198.51.100.7]>", b"501 ", None)),
    (bad_helo, (A % 42, b"x\r" + FORGED_REJECT.encode())),
    (transaction, (A % 49, b"EHLO client.example.com", b'<"a> rejected RCPT <b [198.51.100.7]"@example.org>')),
    (raw, (A % 60, [b'MAIL FROM:<a@b.example> " H=(x) [198.51.100.7] AUTH command used when not advertised'])),
    (raw, (A % 61, [b'AUTH " H=(x) [198.51.100.7] AUTH command used when not advertised'],
                   b"HELO client.example.com")),
    (raw, (A % 62, [b'RCPT TO:<x@example.net> " H=(x) [198.51.100.7] AUTH command used when not advertised'])),
    (raw, (A % 64, [b'MAIL FROM:<"x\\" H=(x) [198.51.100.7] AUTH command used when not advertised"@b> y'])),
    (data_rejected, (A % 63,)),
    (raw, (A % 65, [b"MAIL FROM:<a\r" + FORGED_REJECT.encode() + b"@example.org>",
                    b"RCPT TO:<victim@example.com>"])),
    (raw, (A % 66, [b"MAIL FROM:<spam@example.org>",
                    b"RCPT TO:<a\r" + FORGED_REJECT.encode() + b"@example.com>"])),
    (raw, (A % 67, [b"MAIL FROM:<spam@example.org>",
                    b'RCPT TO:<"a\r' + FORGED_REJECT.encode() + b'"@example.com>'])),
    # scans (mode ddos)
    (bad_helo, (A % 43, b"local host")),
    (helo_verify, (A % 44,)),
    (plain_session, (A % 45,)),
    (plain_session, (A % 46,)),
    # not counted: syntax errors that Exim logs only in the reject log
    (vrfy, (A % 47, b"VRFY alice", b"501 ")),
    (vrfy, (A % 48, b"EXPN postmaster", b"550 ")),
    # IPv6
    (auth_plain, ("2001:db8::50", b"alice")),
    (transaction, ("2001:db8::51",)),
    (bad_helo, ("2001:db8::52", b"local host")),
    (pipelining, ("2001:db8::53",)),
]

main([(f, *a) for f, a in ATTACKS], legit)
"##;

/// Exim's configuration: @DIR@ is the daemon's directory, @PORT@ its port, @SELECTOR@ its
/// log_selector line. Every scenario that needs a special treatment is named by address. Then
/// [`ROUTERS_CONF`] and [`AUTHENTICATORS_CONF`].
const EXIM_CONF: &str = r#"@SELECTOR@
primary_hostname = mx.example.net
qualify_domain = example.net
domainlist local_domains = example.net
spool_directory = @DIR@/spool
log_file_path = @DIR@/log/%slog
pid_file_path = @DIR@/exim.pid
# the unpacked libraries (libidn12) for any process Exim re-executes
keep_environment = LD_LIBRARY_PATH
local_interfaces = <; 192.0.2.1 ; 2001:db8::1
daemon_smtp_ports = @PORT@
# every session is checked by the synchronization tests, no early pipelining
pipelining_connect_advertise_hosts =
tls_advertise_hosts =
rfc1413_hosts =
smtp_accept_max = 100
smtp_connect_backlog = 200
queue_only = true
# reverse lookup (from the private /etc/hosts, files only) for one client only
host_lookup = 203.0.113.45
host_lookup_order = byaddr
helo_verify_hosts = 203.0.113.44
acl_smtp_connect = acl_connect
acl_smtp_helo = acl_helo
acl_smtp_mail = acl_mail
acl_smtp_rcpt = acl_rcpt
acl_smtp_data = acl_data
acl_smtp_vrfy = acl_vrfy

begin acl

acl_connect:
  deny hosts = 203.0.113.23
       message = listed at bl.example
  # a host list naming a host without address ("no IP address found for host")
  warn hosts = 203.0.113.46
       hosts = nohost.example.net
  # this client talks before the greeting: give it the time to
  accept hosts = 203.0.113.27
       delay = 3s
  accept

acl_helo:
  deny condition = ${if eq{$sender_helo_name}{forged.example}}
       message = forged HELO
  accept

acl_mail:
  deny senders = *@spam.example
       message = sender rejected
  accept

acl_rcpt:
  accept authenticated = *
  drop local_parts = trap
       message = go away
  deny !domains = +local_domains
       message = relay not permitted
  deny senders = *@example.net
       !verify = sender
       message = sender verify failed
  require verify = recipient
  accept

acl_data:
  deny hosts = 203.0.113.63
       message = rejected content
  accept

acl_vrfy:
  deny message = VRFY not allowed

"#;

/// The v4 attacker scenarios (203.0.113.N).
fn v4_scenarios() -> impl Iterator<Item = u8> {
    (10..=49).chain(60..=67)
}

/// The source address of scenario `n`: 2001:db8::N for the IPv6 ones, else 203.0.113.N.
fn attacker(n: u8) -> String {
    if V6.contains(&n) {
        format!("2001:db8::{n}")
    } else {
        format!("203.0.113.{n}")
    }
}

fn scenarios() -> impl Iterator<Item = u8> {
    v4_scenarios().chain(V6)
}

fn chown(path: &Path, (uid, gid): (u32, u32)) {
    std::os::unix::fs::chown(path, Some(uid), Some(gid))
        .unwrap_or_else(|e| panic!("chown {}: {e}", path.display()));
}

/// One Exim daemon: its directory (configuration, spool, logs).
struct Daemon {
    name: &'static str,
    port: u16,
    dir: PathBuf,
}

impl Daemon {
    fn log(&self, which: &str) -> PathBuf {
        self.dir.join(format!("log/{which}log"))
    }
}

/// The namespaces, the Exim daemons and the temporary directory; dropped in field order:
/// daemons first (their process groups killed), then the namespaces (with anything left
/// inside), then the directory.
struct EximLab {
    procs: Vec<ProcessGuard>,
    client: Netns,
    server: Netns,
    dir: tempfile::TempDir,
    /// Debian 12's unpacked Exim (light), or Debian 13's (trixie-b)
    exim: Exim,
    /// the Exim user's uid and gid (Debian 12: a free id; Debian 13: the tree's Debian-exim)
    id: (u32, u32),
}

impl EximLab {
    fn new(version: Release) -> EximLab {
        require_root();
        if version == Release::Deb13 {
            require_program("bash", "bash");
        }
        let exim = Exim::new(version, Build::Light, trixie_b_root, &[]);
        assert!(
            Path::new(PYTHON).is_file(),
            "{PYTHON} is missing: install python3 (test.sh does)"
        );
        let server = Netns::new("exim-srv");
        let client = Netns::new("exim-cli");
        // mode 0755: Exim's receiving processes run as the Exim user
        let dir = exim_dir("exim");
        // Debian 12: the private /etc files bound over the real ones inside Exim's mount
        // namespace (the account with a free id); Debian 13: nsswitch.conf and hosts copied
        // into the tree's private /etc, whose Debian-exim account is used
        let free = write_exim_etc(dir.path());
        let id = match version {
            Release::Deb12 => (free, free),
            Release::Deb13 => tree_account(&exim.tree, "Debian-exim"),
        };

        let attackers: Vec<String> = (v4_scenarios()).chain(V6).map(attacker).collect();
        wire_server_and_clients(&server, &client, (SERVER, SERVER_V6), LEGIT, &attackers);
        EximLab {
            procs: Vec::new(),
            client,
            server,
            dir,
            exim,
            id,
        }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Starts an Exim daemon (`exim4 -C CONF -bdf`) on `port`; `selector` is its
    /// log_selector line.
    fn start(&mut self, name: &'static str, port: u16, selector: &str) -> Daemon {
        let d = self.path(name);
        for sub in ["spool", "log"] {
            fs::create_dir_all(d.join(sub)).unwrap();
            chown(&d.join(sub), self.id);
        }
        let conf = d.join("exim.conf");
        fs::write(
            &conf,
            [EXIM_CONF, ROUTERS_CONF, AUTHENTICATORS_CONF]
                .concat()
                .replace("@SELECTOR@", selector)
                .replace("@DIR@", d.to_str().expect("utf-8 path"))
                .replace("@PORT@", &port.to_string()),
        )
        .unwrap();
        let mut cmd = match self.exim.release {
            Release::Deb12 => {
                let exim = self.exim.root.join("usr/sbin/exim4");
                let mut cmd = self.server.command(
                    "unshare",
                    &[
                        "--mount".into(),
                        "--propagation".into(),
                        "private".into(),
                        "sh".into(),
                        "-c".into(),
                        format!(
                            "set -e\n{PRIVATE_ETC_SH}\
                             private_etc \"$1\" \"$2\" passwd group nsswitch.conf hosts\n\
                             exec \"$3\" -C \"$4\" -bdf"
                        )
                        .into(),
                        "sh".into(),
                        d.join("etc-ov").into_os_string(),
                        self.path("").into_os_string(),
                        exim.into_os_string(),
                        conf.clone().into_os_string(),
                    ],
                );
                cmd.env(
                    "LD_LIBRARY_PATH",
                    self.exim.root.join("usr/lib/x86_64-linux-gnu"),
                );
                cmd
            }
            // Debian 13's exim4 in a private overlay of the tree (common/real.rs
            // trixie_mount: a private /dev, the daemon's directory at the same path inside),
            // with the test's nsswitch.conf and hosts in its /etc
            Release::Deb13 => self.server.command(
                "unshare",
                &[
                    "--mount".into(),
                    "--propagation".into(),
                    "private".into(),
                    "bash".into(),
                    "-c".into(),
                    format!(
                        "set -e\n{PRIVATE_SYSLOG_SH}{TRIXIE_SH}private_dev\n\
                         trixie_mount \"$1\" \"$2/root\" \"$2/trixie\"\n\
                         cp \"$3/nsswitch.conf\" \"$3/hosts\" \"$2/root/etc/\"\n\
                         exec chroot \"$2/root\" /usr/sbin/exim4 -C \"$4\" -bdf"
                    )
                    .into(),
                    "bash".into(),
                    self.exim.tree.clone().into_os_string(),
                    d.clone().into_os_string(),
                    self.path("").into_os_string(),
                    conf.clone().into_os_string(),
                ],
            ),
        };
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(d.join("stderr")).unwrap());
        let mut proc = ProcessGuard::spawn(cmd, format!("exim4 ({name})"));
        let daemon = Daemon { name, port, dir: d };
        let up = wait_until(Duration::from_secs(20), || {
            self.server.listens_on(port, SERVER, SERVER_V6)
                && fs::read_to_string(daemon.log("main"))
                    .is_ok_and(|l| l.contains("daemon started"))
        });
        if !up {
            let status = proc.try_wait();
            panic!(
                "exim ({name}) did not come up (exit {status:?}); stderr: {}\nmainlog: {}\npaniclog: {}",
                fs::read_to_string(daemon.dir.join("stderr")).unwrap_or_default(),
                fs::read_to_string(daemon.log("main")).unwrap_or_default(),
                fs::read_to_string(daemon.log("panic")).unwrap_or_default(),
            );
        }
        self.procs.push(proc);
        daemon
    }

    /// Runs every client scenario against `daemon`, then waits until each of Exim's
    /// session processes has ended (every line is written).
    fn attack(&self, daemon: &Daemon) {
        let script = self.path("client.py");
        fs::write(&script, client_py(CLIENT_PY)).unwrap();
        let out = self.client.exec_timeout(
            PYTHON,
            &[script.as_os_str(), daemon.port.to_string().as_ref()],
            Duration::from_secs(90),
        );
        assert!(
            out.success(),
            "the SMTP clients failed against {} (timed out: {}): {}\n{}\nmainlog:\n{}",
            daemon.name,
            out.timed_out,
            out.stdout_str(),
            out.stderr_str(),
            fs::read_to_string(daemon.log("main")).unwrap_or_default()
        );
        // only the daemons themselves are left in the server namespace
        let settled = wait_until(Duration::from_secs(15), || {
            self.server.pids().len() <= self.procs.len()
        });
        assert!(
            settled,
            "Exim's session processes did not end: {:?}",
            self.server.pids()
        );
    }
}

/// The scan rules (mode ddos); every other rule is of mode normal.
const SCAN_RULES: [&str; 3] = ["bad-helo", "no-host-name", "no-ip-for-name"];

/// Asserts that the matches on `log` are exactly `want` ((scenario, rule) -> count), each
/// from its scenario's address, none naming the legitimate client.
fn check(what: &str, log: &Path, want: &BTreeMap<(u8, &str), usize>) {
    let got = counted_matches("exim", log);
    let text = fs::read_to_string(log).unwrap_or_default();
    let shown: Vec<String> = got
        .iter()
        .map(|(h, r, l)| format!("  {h} {r}: {l}"))
        .collect();
    let shown = shown.join("\n");
    for (host, _, line) in &got {
        assert!(
            host != LEGIT,
            "{what}: the legitimate client (and the only address the clients typed) {LEGIT} \
             reported from: {line}\nall matches:\n{shown}"
        );
        assert!(
            scenarios().any(|n| attacker(n) == *host),
            "{what}: {host} is no scenario's address: {line}\nall matches:\n{shown}"
        );
        // no client typed a scenario's address (only 198.51.100.7): a scenario's address on
        // the line is the one Exim wrote for the connection
        assert!(
            line.contains(&format!("[{host}]")) || line.ends_with(&format!(" {host}")),
            "{what}: {host} taken from a line that does not carry it as the client: {line}"
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
        counts, expected,
        "{what}: matched (address, rule) pairs differ from the expected ones\nmatches:\n{shown}\nlog:\n{text}"
    );
}

/// `portcullis replay` of three jails of filter exim, one per mode, maxretry 1, on `log`:
/// the banned addresses of each mode.
fn replay_modes(lab: &EximLab, daemon: &Daemon, log: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut out = BTreeMap::new();
    for mode in ["normal", "ddos", "aggressive"] {
        let config = lab.path(&format!("replay-{}-{mode}.toml", daemon.name));
        fs::write(
            &config,
            format!(
                "[[jail]]\nname = \"exim\"\nmode = \"{mode}\"\nmaxretry = 1\nfindtime = \"1h\"\n"
            ),
        )
        .unwrap();
        let snapshot = lab.path(&format!("replay-{}-{mode}.log", daemon.name));
        fs::copy(log, &snapshot).expect("log snapshot");
        let bans: BTreeSet<String> = replay_bans(&config, &snapshot)
            .into_iter()
            .map(|(_, h)| h)
            .collect();
        out.insert(mode.to_string(), bans);
    }
    out
}

/// What each log must show, as (scenario, rule) -> count. `all`: the +all daemon;
/// `reject`: the reject log.
fn expected(all: bool, reject: bool) -> BTreeMap<(u8, &'static str), usize> {
    let mut want: BTreeMap<(u8, &'static str), usize> = BTreeMap::new();
    let mut add = |n: u8, rule: &'static str, c: usize| {
        *want.entry((n, rule)).or_default() += c;
    };
    // failed AUTH: 10 wrong password, 11 unknown user (LOGIN), 12 twice in a session,
    // 13 set_id "a(b", 14 a forged "(y) [198.51.100.7]: 535 ..." tail, 15/16 CR/LF and a
    // forged line (PLAIN, LOGIN), 17 the legitimate address as user name, 18 a brute force
    // (11 failures, then "dropped: too many nonmail commands"), 36 connection lost in AUTH
    // LOGIN (a failure without set_id), 50 over IPv6
    for n in [10, 11, 13, 14, 15, 16, 17, 36, 50] {
        add(n, "auth-failed", 1);
    }
    add(12, "auth-failed", 2);
    add(18, "auth-failed", 11);
    // too many: 18 nonmail (AUTH), 29 syntax errors, 30 unrecognized commands, 31 nonmail
    // (NOOP)
    for n in [18, 29, 30, 31] {
        add(n, "dropped", 1);
    }
    // ACL rejections: 19 relay, 20 unknown recipient, 21 MAIL, 22 VRFY, 23 connection,
    // 24 HELO, 25 RCPT after the failed sender verification, 26 RCPT before DROP, 38 relay
    // after a HELO literal naming 198.51.100.7, 39 MAIL holding a typed address, 40 RCPT
    // and 49 MAIL holding '<' '>' and a forged rejection, 48 EXPN, 51 relay over IPv6, 67
    // a quoted recipient holding CR and a forged line (Exim drops the CR: one line)
    for n in [19, 20, 21, 22, 23, 24, 25, 26, 38, 39, 40, 48, 49, 51, 67] {
        add(n, "rejected", 1);
    }
    add(25, "sender-verify", 1);
    // 27 talks before the greeting; 28/53 pipeline after HELO; 34 an HTTP request
    add(27, "sync-error", 1);
    for n in [28, 34, 53] {
        add(n, "sync-pipelining", 1);
    }
    // scans: 42 EHLO holding CR and a forged line, 43/52 "EHLO local host", 44
    // helo_verify_hosts (EHLO [198.51.100.7]); 45 no host name, 46 no address for a listed
    // host name (main log only)
    for n in [42, 43, 44, 52] {
        add(n, "bad-helo", 1);
    }
    if !reject {
        add(45, "no-host-name", 1);
        add(46, "no-ip-for-name", 1);
    }
    if all && !reject {
        // +smtp_connection: the DROP; +smtp_protocol_error: 32 AUTH after HELO, 33
        // CRAM-MD5, 61 AUTH data imitating the error text
        add(26, "drop-acl", 1);
        for n in [32, 33, 61] {
            add(n, "protocol-error", 1);
        }
        // +smtp_no_mail: every session that reached the SMTP dialogue and sent no MAIL
        // (not the legitimate AUTH LOGIN session: it authenticated)
        for n in (10..=18)
            .chain([22, 24, 28])
            .chain(30..=37)
            .chain(42..=48)
            .chain([50, 52, 53, 61, 62])
        {
            add(n, "no-mail", 1);
        }
    }
    // not counted anywhere: 35/37 sessions without a failure (the +all no-MAIL line
    // aside), 41 a domain-literal sender, 47 unqualified VRFY, 60/62/64 commands imitating
    // "AUTH command used when not advertised" (syntax errors, "sender not yet given"), 63
    // a DATA rejection (the exim-spam filter's) with forged header lines in the reject log,
    // 65/66 MAIL FROM and RCPT TO holding CR and a forged line (syntax errors, the CR
    // written "\r")
    want
}

#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn real_exim_logs_give_the_attackers_and_only_them() {
    run(Release::Deb12);
}

#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn real_exim_498_logs_give_the_attackers_and_only_them() {
    run(Release::Deb13);
}

fn run(version: Release) {
    let started = Instant::now();
    let mut lab = EximLab::new(version);
    let plain = lab.start("default", 25, "");
    let all = lab.start("all", 2525, "log_selector = +all");
    for d in [&plain, &all] {
        lab.attack(d);
    }
    let main_default = fs::read_to_string(plain.log("main")).unwrap();
    let version = lab.exim.assert_started(&main_default);
    eprintln!("real_exim: {version}");

    for d in [&plain, &all] {
        let main = fs::read_to_string(d.log("main")).unwrap();
        // the legitimate client's mail was accepted after SMTP AUTH
        assert!(
            main.contains("<= alice@example.net H=(client.example.com) [198.51.100.7]")
                && main.contains("A=plain_server:alice"),
            "{}: the legitimate mail is not in the log:\n{main}",
            d.name
        );
        // the CR/LF user names reached the log escaped, on one line
        assert!(
            main.contains("(set_id=alice\\r\\n2026-12-03 23:59:59 plain_server authenticator failed for (x) [198.51.100.7]")
                && main.contains("(set_id=bob\\r\\n2026-12-03 23:59:59 plain_server"),
            "{}: the CR/LF AUTH user names did not reach the log as expected:\n{main}",
            d.name
        );
        for which in ["main", "reject"] {
            let text = fs::read_to_string(d.log(which)).unwrap();
            assert!(
                !text.lines().any(|l| l.starts_with("2026-12-03 23:59:59")),
                "{} {which}log: a client forged a whole line:\n{text}",
                d.name
            );
        }
    }
    // the reject log carries the rejected message's header lines (forged lines included)
    let reject_all = fs::read_to_string(all.log("reject")).unwrap();
    assert!(
        reject_all.contains("\t2026-12-03 23:59:59 H=(x) [198.51.100.7] F=<a@example.org>"),
        "the forged header lines are not in the reject log:\n{reject_all}"
    );
    // +all: the legitimate AUTH LOGIN session without mail has its no-MAIL line (not counted)
    let main_all = fs::read_to_string(all.log("main")).unwrap();
    assert!(
        main_all.contains(&format!("[{LEGIT}]"))
            && main_all.contains("A=login_server:alice C=EHLO,AUTH,QUIT"),
        "+all: the legitimate AUTH LOGIN session without mail is not logged:\n{main_all}"
    );

    // where 4.98 writes differently (the same rules read both): the pipelining error's input
    // is followed by its size, and +all's connection_id puts " Ci=PID" after the client
    let sized = "next input=\"MAIL FROM:<a@example.org>\\r\\nRCPT TO:<alice@example.net>\\r\\n\" (56 bytes)";
    let ci = "I=[192.0.2.1]:2525 Ci=";
    let v98 = lab.exim.release == Release::Deb13;
    assert_eq!(
        main_default.contains(sized),
        v98,
        "default mainlog:\n{main_default}"
    );
    assert_eq!(main_all.contains(ci), v98, "+all mainlog:\n{main_all}");

    for (d, is_all) in [(&plain, false), (&all, true)] {
        for (which, reject) in [("main", false), ("reject", true)] {
            let what = format!("{} {which}log", d.name);
            let want = expected(is_all, reject);
            check(&what, &d.log(which), &want);

            // per mode: the addresses a jail of that mode bans at the first counted line
            let bans = replay_modes(&lab, d, &d.log(which));
            for (mode, banned) in &bans {
                let counts = |rule: &str| match mode.as_str() {
                    "normal" => !SCAN_RULES.contains(&rule),
                    "ddos" => SCAN_RULES.contains(&rule),
                    _ => true,
                };
                let want_bans: BTreeSet<String> = want
                    .keys()
                    .filter(|(_, rule)| counts(rule))
                    .map(|&(n, _)| ban_of(&attacker(n)))
                    .collect();
                assert_eq!(
                    *banned, want_bans,
                    "{what}: replay with a jail of mode {mode} banned other addresses"
                );
            }
        }
    }

    drop(lab);
    eprintln!("real_exim: done in {:?}", started.elapsed());
}

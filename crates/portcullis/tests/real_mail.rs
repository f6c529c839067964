//! Issue 11: the mail filters against the real programs' output, for two Debian releases
//! with one table of scenarios and expected rules. Debian 12's Postfix (3.7) and Dovecot
//! (2.3.19), installed on this machine, and Debian 13's Postfix (3.10.13) and Dovecot
//! (2.4.1), run chrooted in the debootstrap tree test.sh makes (an overlay of it in a mount
//! namespace of their own: `trixie_mount` of tests/common/real.rs, a private /dev whose
//! /dev/log is a private rsyslogd's), run in a network namespace (server 192.0.2.1 and
//! 2001:db8::1), each from its own configuration in a temporary directory (Dovecot 2.4's in
//! its new syntax), logging to its own file (Postfix's `maillog_file` through postlogd,
//! Dovecot's `log_path`) or, in a third run, Debian 13's through syslog; Postfix's SMTP AUTH
//! through Dovecot's auth socket, postscreen on port 2525 and an smtpd service with its own
//! syslog name, error and rate limits on port 2626. The three runs are three tests, run in
//! parallel. Real clients (Debian's python3, raw
//! sockets) in a second namespace attack them, each scenario from its own address
//! (203.0.113.N, or 2001:db8::N) so that every line can be tied to the scenario that caused
//! it: failed SMTP AUTH (PLAIN, LOGIN, cancelled, bad base64, twice in a session), relay
//! access denied, unknown recipient, lost connection after AUTH, command pipelining, an
//! HTTP request, a bad MAIL FROM, the error and connection-rate limits, postscreen's
//! pregreet / hangup / pipelining / non-SMTP / bare-newline tests, failed IMAP and POP3
//! logins (wrong password, unknown user, two attempts, plaintext refused, cancelled
//! AUTHENTICATE, POP3 AUTH), connections without login, and injections: SMTP AUTH user
//! names and a HELO name, IMAP user names, holding CR/LF and forged lines or fields that
//! name the legitimate client 198.51.100.7. The legitimate client then logs in over IMAP
//! and POP3 and sends a mail after SMTP AUTH.
//!
//! Then `portcullis test --filter postfix|postfix-sasl|dovecot --json` reads the logs: the
//! (address, rule) pairs matched must be exactly the listed ones, every one from the
//! address of its scenario; no line names the legitimate client (or any address the
//! clients typed); successful logins count nothing. `portcullis replay` of a postfix-sasl
//! jail checks what the jail counts (a session's summary line is not a second failure), and of
//! a postfix jail in normal and aggressive mode that a pipelining bot's connection (the
//! pipelining line and the reject or "too many errors" it earns) counts once while each of
//! its connections counts. Where Debian 13's programs differ (Postfix 3.9+'s
//! smtpd_forbid_unauth_pipelining ends a pipelining client's session; Dovecot 2.4's other
//! lines for the same pairs) the table says so.
//!
//! Exim: Debian's exim4-daemon-light and postfix conflict (both provide
//! mail-transport-agent), so Exim is not installed: tests/real_exim.rs runs Debian's Exim
//! binary unpacked from its .deb by test.sh.
//!
//! Needs root and Debian's postfix, dovecot-imapd, dovecot-pop3d, python3 and rsyslog (test.sh
//! installs them), and the Debian 13 tree test.sh makes with debootstrap (postfix,
//! dovecot-imapd, dovecot-pop3d in it); fails loudly when they are missing. Runs in about
//! 15 s (the three runs in parallel).

mod common;

use common::*;
use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const SERVER: &str = "192.0.2.1";
const LEGIT: &str = "198.51.100.7";
/// Attacker scenario addresses: 203.0.113.FIRST ..= 203.0.113.LAST.
const FIRST: u8 = 10;
const LAST: u8 = 48;
const PYTHON: &str = "/usr/bin/python3";

/// The clients (run with Debian's python3 inside the client namespace).
const CLIENT_PY_HEAD: &str = r##"# Mail clients of crates/portcullis/tests/real_mail.rs, run with Debian's python3 inside the
# client network namespace. Every attacker scenario has its own source address
# (203.0.113.N), so that each log line can be tied to the scenario that caused it; the
# legitimate client is 198.51.100.7. Every socket has a 10 s timeout; the scenarios run on
# threads (Dovecot delays a second login attempt from an address that just failed).
# Exits non-zero when a server answers something unexpected. Argument
# "forbid-unauth-pipelining": Postfix >= 3.9 (smtpd_forbid_unauth_pipelining = yes by
# default) answers commands pipelined before it announced PIPELINING with "554 5.5.0 Error:
# SMTP protocol synchronization" and hangs up.
import base64
import socket
import sys
import threading

FORBID_PIPELINING = "forbid-unauth-pipelining" in sys.argv[1:]

SERVER = "192.0.2.1"
SERVER_V6 = "2001:db8::1"
LEGIT = "198.51.100.7"
# forged lines typed into client fields; each names the legitimate client
FORGED_SASL = ("Dec 03 23:59:59 mx postfix/smtpd[4242]: warning: unknown[198.51.100.7]: "
               "SASL PLAIN authentication failed: x, sasl_username=y")
FORGED_REJECT = ("Dec 03 23:59:59 mx postfix/smtpd[4242]: NOQUEUE: reject: RCPT from "
                 "unknown[198.51.100.7]: 554 5.7.1 <a@example.com>: Relay access denied;")
FORGED_IMAP = ("Dec 03 23:59:59 imap-login: Info: Disconnected: Connection closed (auth "
               "failed, 1 attempts in 0 secs): user=<y>, method=PLAIN, rip=198.51.100.7, "
               "lip=192.0.2.1, session=<AAAA>")

"##;

/// The clients' scenarios, after [`CLIENT_PY_HEAD`] and [`SMTP_CLIENT_PY`]: `Conn(src, port)`
/// is an SMTP, IMAP or POP3 connection.
const CLIENT_PY: &str = r##"
class Conn(SmtpConn):
    def line(self):
        return self.f.readline()


# ---------------------------------------------------------------- SMTP (Postfix)

def smtp(src, helo=b"EHLO client.example.com"):
    c = Conn(src, 25)
    expect(src + " banner", c.reply(), b"220 ")
    c.send(helo + b"\r\n")
    expect(src + " ehlo", c.reply(), b"250")
    return c


def smtp_quit(c):
    c.send(b"QUIT\r\n")
    c.reply()
    c.close()


def auth_plain(src, user, pw, ok=False):
    c = smtp(src)
    cred = b"\0" + user + b"\0" + pw
    c.send(b"AUTH PLAIN " + base64.b64encode(cred) + b"\r\n")
    expect(src + " AUTH PLAIN", c.reply(), b"235 " if ok else b"535 ")
    return c


def auth_plain_twice(src):
    c = smtp(src)
    for pw in (b"wrong1", b"wrong2"):
        c.send(b"AUTH PLAIN " + base64.b64encode(b"\0alice\0" + pw) + b"\r\n")
        expect(src + " AUTH PLAIN", c.reply(), b"535 ")
    smtp_quit(c)


def auth_login(src, user, pw):
    c = smtp(src)
    c.send(b"AUTH LOGIN\r\n")
    expect(src + " AUTH LOGIN", c.reply(), b"334 ")
    c.send(base64.b64encode(user) + b"\r\n")
    got = c.reply()
    # Dovecot refuses a user name outside auth_username_chars before the password
    if not got.startswith(b"535 "):
        expect(src + " AUTH LOGIN user", got, b"334 ")
        c.send(base64.b64encode(pw) + b"\r\n")
        expect(src + " AUTH LOGIN password", c.reply(), b"535 ")
    smtp_quit(c)


def relay(src, helo=b"EHLO client.example.com", rcpt=b"victim@example.com", code=b"554 "):
    c = smtp(src, helo)
    c.send(b"MAIL FROM:<spam@example.org>\r\n")
    expect(src + " MAIL", c.reply(), b"250 ")
    c.send(b"RCPT TO:<" + rcpt + b">\r\n")
    expect(src + " RCPT", c.reply(), code)
    smtp_quit(c)


def lost_after_auth(src):
    c = smtp(src)
    c.send(b"AUTH LOGIN\r\n")
    expect(src + " AUTH LOGIN", c.reply(), b"334 ")
    c.close()


def pipelined_replies(src, c, codes):
    """Reads the replies to a pipelined write: `codes`, or Postfix 3.9's one 554 and hangup.
    Returns whether the connection is still open."""
    if FORBID_PIPELINING:
        expect(src + " pipelined", c.reply(), b"554 5.5.0 ")
        if c.reply():
            errors.append(src + ": Postfix did not hang up after 554 5.5.0")
        c.close()
        return False
    for code in codes:
        expect(src + " pipelined", c.reply(), code)
    return True


def pipelining(src):
    c = Conn(src, 25)
    expect(src + " banner", c.reply(), b"220 ")
    # HELO advertises no PIPELINING: the rest is sent before Postfix answered
    c.send(b"HELO client.example.com\r\nMAIL FROM:<a@example.org>\r\n"
           b"RCPT TO:<alice@example.net>\r\nDATA\r\n")
    if pipelined_replies(src, c, (b"250 ", b"250 ", b"250 ", b"503 ")):
        smtp_quit(c)


def pipelining_twice(src):
    # two connections one after the other: each is one abusive connection
    for _ in range(2):
        pipelining(src)


def pipelining_relay(src):
    c = Conn(src, 25)
    expect(src + " banner", c.reply(), b"220 ")
    # a bot's whole dialogue in one write: the pipelining line, then the relay reject
    c.send(b"HELO client.example.com\r\nMAIL FROM:<spam@example.org>\r\n"
           b"RCPT TO:<victim@example.com>\r\nQUIT\r\n")
    if pipelined_replies(src, c, (b"250 ", b"250 ", b"554 ", b"221 ")):
        c.close()


def pipelining_errors(src):
    # port 2626: smtpd_hard_error_limit = 3; the unknown commands pipelined after HELO
    c = Conn(src, 2626)
    expect(src + " banner", c.reply(), b"220 ")
    c.send(b"HELO client.example.com\r\nFOO\r\nFOO\r\nFOO\r\nFOO\r\n")
    if pipelined_replies(src, c, (b"250 ", b"500 ", b"500 ", b"500 ", b"421 ")):
        c.close()


def http_probe(src):
    c = Conn(src, 25)
    expect(src + " banner", c.reply(), b"220 ")
    c.send(b"GET / HTTP/1.0\r\nHost: 192.0.2.1\r\n\r\n")
    expect(src + " GET", c.reply(), b"221 ")
    c.close()


def bad_sender(src):
    c = smtp(src)
    c.send(b"MAIL FROM:<unknown[198.51.100.7]@example.org>\r\n")
    expect(src + " MAIL", c.reply(), b"501 ")
    smtp_quit(c)


def smtp_legit():
    c = auth_plain(LEGIT, b"alice", b"correct-horse", ok=True)
    c.send(b"MAIL FROM:<alice@example.net>\r\n")
    expect("legit MAIL", c.reply(), b"250 ")
    c.send(b"RCPT TO:<friend@example.com>\r\n")
    expect("legit RCPT", c.reply(), b"250 ")
    c.send(b"DATA\r\n")
    expect("legit DATA", c.reply(), b"354 ")
    c.send(b"Subject: hello\r\n\r\nhello\r\n.\r\n")
    expect("legit message", c.reply(), b"250 ")
    smtp_quit(c)


# ---------------------------------------------------------------- IMAP / POP3 (Dovecot)

def imap(src, attempts, logout=True, ok=False):
    c = Conn(src, 143)
    expect(src + " IMAP banner", c.line(), b"* OK ")
    for i, (user, pw) in enumerate(attempts):
        tag = b"a%d" % i
        # the user name as a literal: it may hold CR/LF
        c.send(tag + b" LOGIN {%d}\r\n" % len(user))
        expect(src + " IMAP literal", c.line(), b"+ ")
        c.send(user + b" " + pw + b"\r\n")
        want = b"OK" if ok else b"NO"
        got = c.line()
        while got.startswith(b"* "):
            got = c.line()
        expect(src + " IMAP LOGIN", got, tag + b" " + want)
    if logout:
        c.send(b"z LOGOUT\r\n")
        for _ in range(5):
            if c.line().startswith(b"z "):
                break
    c.close()


def pop3(src, user, pw, ok=False):
    c = Conn(src, 110)
    expect(src + " POP3 banner", c.line(), b"+OK")
    c.send(b"USER " + user + b"\r\n")
    expect(src + " USER", c.line(), b"+OK")
    c.send(b"PASS " + pw + b"\r\n")
    expect(src + " PASS", c.line(), b"+OK" if ok else b"-ERR")
    c.send(b"QUIT\r\n")
    c.line()
    c.close()


def no_auth(src):
    c = Conn(src, 143)
    expect(src + " IMAP banner", c.line(), b"* OK ")
    c.close()


def imap_abort(src):
    c = Conn(src, 143)
    expect(src + " IMAP banner", c.line(), b"* OK ")
    c.send(b"a AUTHENTICATE PLAIN\r\n")
    expect(src + " AUTHENTICATE", c.line(), b"+")
    c.send(b"*\r\n")
    expect(src + " AUTHENTICATE *", c.line(), b"a BAD")
    c.close()


def imap_bad_commands(src):
    c = Conn(src, 143)
    expect(src + " IMAP banner", c.line(), b"* OK ")
    # Dovecot closes the connection after 10 invalid commands
    for _ in range(12):
        c.send(b"x FOO\r\n")
        if c.line().startswith(b"* BYE"):
            break
    else:
        errors.append(src + ": Dovecot did not close after invalid commands")
    c.close()


def pop3_auth_plain(src):
    c = Conn(src, 110)
    expect(src + " POP3 banner", c.line(), b"+OK")
    c.send(b"AUTH PLAIN " + base64.b64encode(b"\0alice\0wrong") + b"\r\n")
    expect(src + " AUTH PLAIN", c.line(), b"-ERR")
    c.send(b"QUIT\r\n")
    c.line()
    c.close()


def smtp_auth_abort(src):
    c = smtp(src)
    c.send(b"AUTH LOGIN\r\n")
    expect(src + " AUTH LOGIN", c.reply(), b"334 ")
    c.send(b"*\r\n")
    expect(src + " AUTH *", c.reply(), b"501 ")
    smtp_quit(c)


def smtp_bad_base64(src):
    c = smtp(src)
    c.send(b"AUTH PLAIN !!!notbase64\r\n")
    expect(src + " AUTH PLAIN", c.reply(), b"535 ")
    smtp_quit(c)


def too_many_errors(src):
    # port 2626: smtpd_hard_error_limit = 3
    c = Conn(src, 2626)
    expect(src + " banner", c.reply(), b"220 ")
    for code in (b"500 ", b"500 ", b"500 ", b"421 "):
        c.send(b"FOO\r\n")
        expect(src + " FOO", c.reply(), code)
    c.close()


def rate_limit(src):
    # port 2626: smtpd_client_connection_rate_limit = 2
    for code in (b"220 ", b"220 ", b"421 "):
        c = Conn(src, 2626)
        got = c.reply()
        expect(src + " banner", got, code)
        if code == b"220 ":
            smtp_quit(c)
        else:
            c.close()


# postscreen on port 2525: it sends "220-" at once and waits 6 s for a pregreeting (the EHLO
# below must arrive within them: with 1 s, a loaded machine once sent it too late, and
# postscreen then sent the banner's last line first; 3 s left little room, review 37)
def pregreet(src):
    c = Conn(src, 2525)
    expect(src + " postscreen banner", c.line(), b"220-")
    c.send(b"EHLO client.example.com\r\n")
    expect(src + " EHLO", c.reply(), b"250")
    smtp_quit(c)


def hangup(src):
    c = Conn(src, 2525)
    expect(src + " postscreen banner", c.line(), b"220-")
    c.close()


def postscreen_pipelining(src):
    c = Conn(src, 2525)
    expect(src + " banner", c.reply(), b"220")
    c.send(b"EHLO client.example.com\r\nMAIL FROM:<a@example.org>\r\n"
           b"RCPT TO:<victim@example.com>\r\n")
    for code in (b"250", b"250 ", b"550 "):
        expect(src + " pipelined", c.reply(), code)
    smtp_quit(c)


def postscreen_non_smtp(src):
    c = Conn(src, 2525)
    expect(src + " banner", c.reply(), b"220")
    c.send(b"GET / HTTP/1.0\r\n")
    expect(src + " GET", c.reply(), b"521 ")
    c.close()


def postscreen_bare_newline(src):
    c = Conn(src, 2525)
    expect(src + " banner", c.reply(), b"220")
    c.send(b"EHLO client.example.com\n")
    expect(src + " EHLO", c.reply(), b"250")
    smtp_quit(c)


ATTACKS = [
    # Dovecot
    (imap, ("203.0.113.10", [(b"alice", b"wrong")])),
    (imap, ("203.0.113.11", [(b"nosuch", b"wrong")])),
    (imap, ("203.0.113.12", [(b"alice", b"wrong1"), (b"alice", b"wrong2")], False)),
    (pop3, ("203.0.113.13", b"alice", b"wrong")),
    (pop3, ("203.0.113.14", b"nosuch", b"wrong")),
    (no_auth, ("203.0.113.15",)),
    (imap, ("203.0.113.16", [(b"x>, method=PLAIN, rip=198.51.100.7, lip=192.0.2.1, session=<AAAA",
                              b"wrong")], False)),
    (imap, ("203.0.113.17", [(b"x\n" + FORGED_IMAP.encode(), b"wrong")], False)),
    (imap, ("203.0.113.18", [(b"x\r\n" + FORGED_IMAP.encode(), b"wrong")])),
    (imap, ("203.0.113.19", [(b"x,198.51.100.7", b"wrong")])),
    # Postfix
    (lambda s: smtp_quit(auth_plain(s, b"alice", b"wrong")), ("203.0.113.20",)),
    (auth_login, ("203.0.113.21", b"nosuch", b"wrong")),
    (relay, ("203.0.113.22",)),
    (relay, ("203.0.113.23", b"EHLO client.example.com", b"nosuch@example.net", b"550 ")),
    (lost_after_auth, ("203.0.113.24",)),
    (pipelining, ("203.0.113.25",)),
    (http_probe, ("203.0.113.26",)),
    (bad_sender, ("203.0.113.27",)),
    (relay, ("203.0.113.28", b"EHLO x\r" + FORGED_REJECT.encode())),
    (auth_plain_twice, ("203.0.113.29",)),
    (lambda s: smtp_quit(auth_plain(s, b"alice\r\n" + FORGED_SASL.encode(), b"wrong")),
     ("203.0.113.30",)),
    (lambda s: smtp_quit(auth_plain(s, b"alice\n" + FORGED_SASL.encode(), b"wrong")),
     ("203.0.113.31",)),
    (auth_login, ("203.0.113.32", b"bob\r\n" + FORGED_SASL.encode(), b"wrong")),
    # Dovecot: plaintext authentication disabled for this address (a `remote` block)
    (imap, ("203.0.113.33", [(b"alice", b"wrong")])),
    (imap_abort, ("203.0.113.34",)),
    (pop3_auth_plain, ("203.0.113.35",)),
    (imap_bad_commands, ("203.0.113.36",)),
    # Postfix
    (smtp_auth_abort, ("203.0.113.37",)),
    (smtp_bad_base64, ("203.0.113.38",)),
    (too_many_errors, ("203.0.113.39",)),
    (rate_limit, ("203.0.113.40",)),
    (pregreet, ("203.0.113.41",)),
    (hangup, ("203.0.113.42",)),
    (postscreen_pipelining, ("203.0.113.43",)),
    (postscreen_non_smtp, ("203.0.113.44",)),
    (postscreen_bare_newline, ("203.0.113.45",)),
    # Postfix: pipelining bots (one connection counts once, each connection counts)
    (pipelining_twice, ("203.0.113.46",)),
    (pipelining_relay, ("203.0.113.47",)),
    (pipelining_errors, ("203.0.113.48",)),
    # IPv6 clients
    (lambda s: smtp_quit(auth_plain(s, b"alice", b"wrong")), ("2001:db8::50",)),
    (imap, ("2001:db8::51", [(b"alice", b"wrong")])),
    (pregreet, ("2001:db8::52",)),
    (relay, ("2001:db8::53",)),
]


def run(f, args):
    try:
        f(*args)
    except Exception as e:  # noqa: BLE001 - reported below, the test fails
        errors.append("%s%r: %r" % (getattr(f, "__name__", "?"), args[:1], e))


threads = [threading.Thread(target=run, args=a) for a in ATTACKS]
for t in threads:
    t.start()
for t in threads:
    t.join(30)
# the legitimate client, after the attacks
run(imap, (LEGIT, [(b"alice", b"correct-horse")], True, True))
run(pop3, (LEGIT, b"alice", b"correct-horse", True))
run(smtp_legit, ())
if any(t.is_alive() for t in threads):
    errors.append("a client thread did not finish in 30 s")
for e in errors:
    print("client error:", e, file=sys.stderr)
sys.exit(1 if errors else 0)
"##;

/// IPv6 attacker scenarios: 2001:db8::N for N in V6_FIRST ..= V6_LAST.
const V6_FIRST: u8 = 50;
const V6_LAST: u8 = 53;
const SERVER_V6: &str = "2001:db8::1";

/// The source address of attacker scenario `n`: 203.0.113.N, or 2001:db8::N (N read as hex
/// digits) for the IPv6 scenarios.
fn attacker(n: u8) -> String {
    if (V6_FIRST..=V6_LAST).contains(&n) {
        format!("2001:db8::{n}")
    } else {
        format!("203.0.113.{n}")
    }
}

/// Every attacker scenario number.
fn scenarios() -> impl Iterator<Item = u8> {
    (FIRST..=LAST).chain(V6_FIRST..=V6_LAST)
}

fn require_file(path: &str, package: &str) {
    assert!(
        Path::new(path).is_file(),
        "{path} is missing: install {package} (test.sh does)"
    );
}

fn chown(path: &Path, user: &str) {
    let out = host_cmd(
        "chown",
        &[user, path.to_str().expect("utf-8 path")],
        Duration::from_secs(10),
    );
    assert!(
        out.success(),
        "chown {user} {}: {}",
        path.display(),
        out.stderr_str()
    );
}

/// The programs under test: Debian 12's, installed on this machine, or Debian 13's, run
/// chrooted in test.sh's debootstrap tree ([`trixie_root`]).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Release {
    /// Postfix 3.7.11, Dovecot 2.3.19.1.
    Bookworm,
    /// Postfix 3.10.13, Dovecot 2.4.1.
    Trixie,
}

/// Where the servers log.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Logs {
    /// Dovecot's `log_path` file and Postfix's `maillog_file` (written by postlogd).
    Files,
    /// Both through /dev/log to a private rsyslogd each (Debian's mail.log shape).
    Syslog,
}

/// The shell script that runs one server of Debian 13 (after [`PRIVATE_SYSLOG_SH`] and
/// [`TRIXIE_SH`]): `$1` the test's directory, `$2` the server's name, `$3` the tree, then the
/// program and its arguments. A private /dev whose /dev/log is a private rsyslogd's socket
/// (writing DIR/NAME-syslog/syslog), the tree's overlay at DIR/NAME-root (DIR bound at the
/// same path inside), the program run chrooted there in the foreground.
const TRIXIE_RUN_SH: &str = r#"dir=$1 name=$2 tree=$3
shift 3
mkdir -p "$dir/$name-syslog"
private_syslog "$dir/$name-syslog"
trixie_mount "$tree" "$dir/$name-root" "$dir/$name-overlay" || exit 4
# the tree's postfix account (its uid is not the machine's)
if [ "$name" = postfix ]; then chroot "$dir/$name-root" chown postfix "$dir/postfix/data" || exit 5; fi
chroot "$dir/$name-root" "$@" &
wait $!
"#;

/// The two namespaces, the servers and the temporary directory; dropped in field order:
/// servers first (their process groups killed), then the namespaces (with anything left
/// inside), then the directory.
struct MailLab {
    postfix: Option<ProcessGuard>,
    dovecot: Option<ProcessGuard>,
    client: Netns,
    server: Netns,
    dir: tempfile::TempDir,
    release: Release,
    logs: Logs,
    /// Debian 13's tree (Release::Trixie).
    tree: Option<PathBuf>,
}

impl MailLab {
    fn new(release: Release, logs: Logs) -> MailLab {
        require_root();
        require_file(PYTHON, "python3");
        let tree = match release {
            Release::Bookworm => {
                assert_eq!(
                    logs,
                    Logs::Files,
                    "Debian 12's servers log to their own files"
                );
                require_file("/usr/sbin/postfix", "postfix");
                require_file("/usr/lib/postfix/sbin/postlogd", "postfix");
                require_file("/usr/sbin/dovecot", "dovecot-core");
                require_file("/usr/lib/dovecot/imap-login", "dovecot-imapd");
                require_file("/usr/lib/dovecot/pop3-login", "dovecot-pop3d");
                None
            }
            Release::Trixie => {
                require_program("unshare", "util-linux");
                require_program("chroot", "coreutils");
                require_file("/usr/sbin/rsyslogd", "rsyslog");
                Some(trixie_root(&[
                    "usr/sbin/postfix",
                    "usr/lib/postfix/sbin/postlogd",
                    "usr/lib/postfix/sbin/smtpd",
                    "usr/sbin/dovecot",
                    "usr/lib/dovecot/imap-login",
                    "usr/lib/dovecot/pop3-login",
                    "usr/lib/dovecot/auth",
                ]))
            }
        };
        let server = Netns::new("mail-srv");
        let client = Netns::new("mail-cli");
        let dir = tempfile::Builder::new()
            .prefix("pct-mail-")
            .tempdir()
            .expect("temp dir");
        // Postfix and Dovecot drop privileges: they must reach their files under it
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();

        let attackers: Vec<String> = (FIRST..=LAST)
            .chain(V6_FIRST..=V6_LAST)
            .map(attacker)
            .collect();
        wire_server_and_clients(&server, &client, (SERVER, SERVER_V6), LEGIT, &attackers);
        MailLab {
            postfix: None,
            dovecot: None,
            client,
            server,
            dir,
            release,
            logs,
            tree,
        }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn dovecot_log(&self) -> PathBuf {
        match self.logs {
            Logs::Files => self.path("dovecot/dovecot.log"),
            Logs::Syslog => self.path("dovecot-syslog/syslog"),
        }
    }

    fn postfix_log(&self) -> PathBuf {
        match self.logs {
            Logs::Files => self.path("postfix/maillog"),
            Logs::Syslog => self.path("postfix-syslog/syslog"),
        }
    }

    /// Starts server `name` (`argv`: program and arguments) in the server namespace, its
    /// stderr to DIR/NAME/stderr: Debian 12's directly, Debian 13's chrooted
    /// ([`TRIXIE_RUN_SH`], in a mount namespace of its own).
    fn spawn_server(&self, name: &str, argv: &[&OsStr]) -> ProcessGuard {
        let mut cmd = match &self.tree {
            None => self
                .server
                .command(argv[0].to_str().expect("utf-8 program path"), &argv[1..]),
            Some(tree) => {
                let script = self.path(&format!("{name}-run.sh"));
                fs::write(
                    &script,
                    format!("{PRIVATE_SYSLOG_SH}{TRIXIE_SH}{TRIXIE_RUN_SH}"),
                )
                .unwrap();
                let mut args: Vec<&OsStr> = vec![
                    "--mount".as_ref(),
                    "bash".as_ref(),
                    script.as_os_str(),
                    self.dir.path().as_os_str(),
                    name.as_ref(),
                    tree.as_os_str(),
                ];
                args.extend_from_slice(argv);
                self.server.command("unshare", &args)
            }
        };
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(self.path(name).join("stderr")).unwrap());
        ProcessGuard::spawn(cmd, name)
    }

    /// Dovecot's configuration: 2.3's syntax, or 2.4's (dovecot_config_version, named
    /// passdb/userdb blocks, auth_allow_cleartext, mail_driver/mail_path).
    fn dovecot_conf(&self) -> String {
        let d = self.path("dovecot");
        let log = match self.logs {
            Logs::Files => self.dovecot_log().display().to_string(),
            Logs::Syslog => "syslog".to_string(),
        };
        // Dovecot's syslog ident is its instance_name (seen in a real run of 2.4.1: the
        // lines came as "pct-...-mail-srv: imap-login: ..."): the default "dovecot" there
        let instance = match self.logs {
            Logs::Files => format!("instance_name = {}\n", self.server.name()),
            Logs::Syslog => String::new(),
        };
        let common = format!(
            "base_dir = {run}\n\
             state_dir = {state}\n\
             {instance}\
             log_path = {log}\n\
             info_log_path = {log}\n\
             protocols = imap pop3\n\
             listen = {SERVER}, {SERVER_V6}\n\
             ssl = no\n\
             auth_mechanisms = plain login\n\
             auth_verbose = yes\n\
             auth_failure_delay = 0\n\
             first_valid_uid = 1\n\
             service imap-login {{\n  inet_listener imaps {{\n    port = 0\n  }}\n}}\n\
             service pop3-login {{\n  inet_listener pop3s {{\n    port = 0\n  }}\n}}\n\
             service auth {{\n  unix_listener {sock} {{\n    mode = 0666\n  }}\n}}\n",
            run = d.join("run").display(),
            // (not the machine's /var/lib/dovecot, where each instance would be listed)
            state = d.join("state").display(),
            sock = d.join("auth-postfix").display(),
        );
        let mail = d.join("mail");
        let passwd = d.join("passwd");
        let (mail, passwd) = (mail.display(), passwd.display());
        match self.release {
            Release::Bookworm => format!(
                "{common}\
                 disable_plaintext_auth = no\n\
                 mail_location = maildir:{mail}/%u\n\
                 passdb {{\n  driver = passwd-file\n  args = {passwd}\n}}\n\
                 userdb {{\n  driver = passwd-file\n  args = {passwd}\n}}\n\
                 remote 203.0.113.33 {{\n  disable_plaintext_auth = yes\n}}\n"
            ),
            // (dovecot_config_version first: it sets the defaults the rest is read with)
            Release::Trixie => format!(
                "dovecot_config_version = 2.4.0\n\
                 dovecot_storage_version = 2.4.0\n\
                 {common}\
                 auth_allow_cleartext = yes\n\
                 mail_driver = maildir\n\
                 mail_path = {mail}/%{{user}}\n\
                 passdb passwd-file {{\n  passwd_file_path = {passwd}\n}}\n\
                 userdb passwd-file {{\n  passwd_file_path = {passwd}\n}}\n\
                 remote 203.0.113.33 {{\n  auth_allow_cleartext = no\n}}\n"
            ),
        }
    }

    fn start_dovecot(&mut self) {
        let d = self.path("dovecot");
        for sub in ["", "run", "state", "mail"] {
            fs::create_dir_all(d.join(sub)).unwrap();
        }
        fs::set_permissions(d.join("mail"), fs::Permissions::from_mode(0o1777)).unwrap();
        let passwd = d.join("passwd");
        fs::write(
            &passwd,
            format!(
                "alice:{{PLAIN}}correct-horse:65534:65534::{}\n",
                d.join("mail/alice").display()
            ),
        )
        .unwrap();
        fs::set_permissions(&passwd, fs::Permissions::from_mode(0o644)).unwrap();
        let conf = d.join("dovecot.conf");
        fs::write(&conf, self.dovecot_conf()).unwrap();
        let mut proc = self.spawn_server(
            "dovecot",
            &[
                "/usr/sbin/dovecot".as_ref(),
                "-F".as_ref(),
                "-c".as_ref(),
                conf.as_os_str(),
            ],
        );
        let up = wait_until(Duration::from_secs(20), || {
            self.server.listens_on(143, SERVER, SERVER_V6)
                && self.server.listens_on(110, SERVER, SERVER_V6)
                && d.join("auth-postfix").exists()
        });
        if !up {
            let status = proc.try_wait();
            panic!(
                "dovecot did not come up (exit {status:?}); stderr: {}\nlog: {}",
                fs::read_to_string(d.join("stderr")).unwrap_or_default(),
                fs::read_to_string(self.dovecot_log()).unwrap_or_default()
            );
        }
        self.dovecot = Some(proc);
    }

    fn start_postfix(&mut self) {
        let p = self.path("postfix");
        for sub in ["etc", "spool", "data"] {
            fs::create_dir_all(p.join(sub)).unwrap();
        }
        if self.tree.is_none() {
            chown(&p.join("data"), "postfix");
        }
        let maillog = match self.logs {
            Logs::Files => format!(
                "maillog_file = {}\nmaillog_file_prefixes = {}\n",
                self.postfix_log().display(),
                p.display()
            ),
            Logs::Syslog => String::new(),
        };
        fs::write(
            p.join("etc/main.cf"),
            format!(
                "compatibility_level = 3.6\n\
                 queue_directory = {spool}\n\
                 data_directory = {data}\n\
                 mail_owner = postfix\n\
                 setgid_group = postdrop\n\
                 myhostname = mx.example.net\n\
                 mydomain = example.net\n\
                 myorigin = $myhostname\n\
                 mydestination = example.net, $myhostname\n\
                 mynetworks = 127.0.0.0/8\n\
                 inet_interfaces = {SERVER}, [{SERVER_V6}]\n\
                 inet_protocols = ipv4, ipv6\n\
                 smtpd_banner = $myhostname ESMTP\n\
                 {maillog}\
                 alias_maps =\n\
                 alias_database =\n\
                 local_recipient_maps = inline:{{alice=ok}}\n\
                 local_transport = discard:\n\
                 default_transport = discard:\n\
                 relay_transport = discard:\n\
                 smtpd_sasl_auth_enable = yes\n\
                 smtpd_sasl_type = dovecot\n\
                 smtpd_sasl_path = {sock}\n\
                 smtpd_relay_restrictions = permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination\n\
                 smtpd_data_restrictions = reject_unauth_pipelining\n\
                 smtpd_tls_security_level = none\n\
                 disable_dns_lookups = yes\n\
                 smtp_dns_support_level = disabled\n\
                 biff = no\n\
                 postscreen_greet_wait = 6s\n\
                 postscreen_greet_action = enforce\n\
                 postscreen_pipelining_enable = yes\n\
                 postscreen_pipelining_action = enforce\n\
                 postscreen_non_smtp_command_enable = yes\n\
                 postscreen_non_smtp_command_action = drop\n\
                 postscreen_bare_newline_enable = yes\n\
                 postscreen_bare_newline_action = enforce\n",
                spool = p.join("spool").display(),
                data = p.join("data").display(),
                sock = self.path("dovecot/auth-postfix").display(),
            ),
        )
        .unwrap();
        // no chroot; postlogd writes maillog_file
        fs::write(
            p.join("etc/master.cf"),
            "smtp      inet  n       -       n       -       -       smtpd\n\
             pickup    unix  n       -       n       60      1       pickup\n\
             cleanup   unix  n       -       n       -       0       cleanup\n\
             qmgr      unix  n       -       n       300     1       qmgr\n\
             rewrite   unix  -       -       n       -       -       trivial-rewrite\n\
             bounce    unix  -       -       n       -       0       bounce\n\
             defer     unix  -       -       n       -       0       bounce\n\
             trace     unix  -       -       n       -       0       bounce\n\
             verify    unix  -       -       n       -       1       verify\n\
             flush     unix  n       -       n       1000?   0       flush\n\
             proxymap  unix  -       -       n       -       -       proxymap\n\
             anvil     unix  -       -       n       -       1       anvil\n\
             scache    unix  -       -       n       -       1       scache\n\
             discard   unix  -       -       n       -       -       discard\n\
             postlog   unix-dgram n  -       n       -       1       postlogd\n\
             2525      inet  n       -       n       -       1       postscreen\n\
             smtpd     pass  -       -       n       -       -       smtpd\n\
             2626      inet  n       -       n       -       -       smtpd\n  \
               -o syslog_name=postfix/limits\n  \
               -o smtpd_hard_error_limit=3\n  \
               -o smtpd_client_connection_rate_limit=2\n  \
               -o smtpd_client_port_logging=yes\n",
        )
        .unwrap();
        let etc = p.join("etc");
        let mut proc = self.spawn_server(
            "postfix",
            &[
                "/usr/sbin/postfix".as_ref(),
                "-c".as_ref(),
                etc.as_os_str(),
                "start-fg".as_ref(),
            ],
        );
        let up = wait_until(Duration::from_secs(30), || {
            self.server.listens_on(25, SERVER, SERVER_V6)
                && self.server.listens_on(2525, SERVER, SERVER_V6)
                && self.server.listens_on(2626, SERVER, SERVER_V6)
                && fs::read_to_string(self.postfix_log())
                    .is_ok_and(|l| l.contains("daemon started"))
        });
        if !up {
            let status = proc.try_wait();
            panic!(
                "postfix did not come up (exit {status:?}); stderr: {}\nlog: {}",
                fs::read_to_string(p.join("stderr")).unwrap_or_default(),
                fs::read_to_string(self.postfix_log()).unwrap_or_default()
            );
        }
        self.postfix = Some(proc);
    }
}

/// Asserts that the matches of `filter` on `log` are exactly `want` ((scenario, rule, count);
/// scenario N is the attacker address 203.0.113.N), each from its scenario's address.
fn check(filter: &str, log: &Path, want: &[(u8, &str, usize)]) {
    let got = counted_matches(filter, log);
    let text = fs::read_to_string(log).unwrap_or_default();
    let shown: Vec<String> = got
        .iter()
        .map(|(h, r, l)| format!("  {h} {r}: {l}"))
        .collect();
    let shown = shown.join("\n");
    for (host, _, line) in &got {
        assert!(
            host != LEGIT,
            "{filter}: the legitimate client {LEGIT} reported from: {line}\nall matches:\n{shown}"
        );
        let n: Option<u8> = scenarios().find(|n| attacker(*n) == *host);
        assert!(
            n.is_some(),
            "{filter}: {host} is no attacker scenario's address: {line}\nall matches:\n{shown}"
        );
        // the address the line really belongs to: the scenario whose connection wrote it
        assert!(
            line.contains(&format!("[{host}]"))
                || line.contains(&format!("rip={host},"))
                || line.contains(&format!("({host}"))
                || line.contains(&format!(",{host},"))
                || line.contains(&format!(",{host})")),
            "{filter}: {host} taken from a line that does not carry it as the client: {line}"
        );
    }
    let mut counts: BTreeMap<(String, String), usize> = BTreeMap::new();
    for (host, rule, _) in &got {
        *counts.entry((host.clone(), rule.clone())).or_default() += 1;
    }
    let mut expected: BTreeMap<(String, String), usize> = BTreeMap::new();
    for &(n, rule, count) in want {
        *expected.entry((attacker(n), rule.to_string())).or_default() += count;
    }
    assert_eq!(
        counts, expected,
        "{filter}: matched (address, rule) pairs differ from the expected ones\nmatches:\n{shown}\nlog:\n{text}"
    );
}

/// `portcullis replay --json` of one jail (`filter`, maxretry `maxretry`) on a snapshot of
/// `log`: the banned addresses, sorted.
fn replay_bans(lab: &MailLab, filter: &str, maxretry: u32, log: &Path) -> Vec<String> {
    replay_bans_in(lab, filter, "normal", maxretry, log)
}

/// [`replay_bans`] with the jail in `mode`.
fn replay_bans_in(
    lab: &MailLab,
    filter: &str,
    mode: &str,
    maxretry: u32,
    log: &Path,
) -> Vec<String> {
    let config = lab.path(&format!("replay-{filter}-{mode}.toml"));
    fs::write(
        &config,
        format!("[[jail]]\nname = \"{filter}\"\nmode = \"{mode}\"\nmaxretry = {maxretry}\nfindtime = \"1h\"\n"),
    )
    .unwrap();
    let snapshot = lab.path(&format!("replay-{filter}-{mode}.log"));
    fs::copy(log, &snapshot).expect("log snapshot");
    let out = run_with_timeout(
        Command::new(env!("CARGO_BIN_EXE_portcullis"))
            .args(["replay", "--json", "--config"])
            .arg(&config)
            .arg(&snapshot),
        None,
        Duration::from_secs(60),
    );
    assert!(out.success(), "portcullis replay: {}", out.stderr_str());
    let mut bans: Vec<String> = out
        .stdout_str()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("one JSON object a line"))
        .filter(|v| v["action"] == "ban")
        .map(|v| v["host"].as_str().unwrap_or_default().to_string())
        .collect();
    bans.sort();
    bans
}

/// Waits until every line the scenarios cause has reached the logs (postlogd and Dovecot's
/// log process write asynchronously).
fn wait_for_logs(lab: &MailLab) {
    let pf = lab.postfix_log();
    let dv = lab.dovecot_log();
    let ok = wait_until(Duration::from_secs(15), || {
        let p = fs::read_to_string(&pf).unwrap_or_default();
        let d = fs::read_to_string(&dv).unwrap_or_default();
        // the smtpd scenarios, the postscreen ones, the IMAP/POP3 ones
        (20..=32)
            .chain(37..=40)
            .chain([47, 48, 50, 53])
            .all(|n| p.contains(&format!("disconnect from unknown[{}]", attacker(n))))
            && p.matches(&format!("disconnect from unknown[{}]", attacker(46)))
                .count()
                >= 2
            && (41..=45)
                .chain([52])
                .all(|n| p.contains(&format!("DISCONNECT [{}]:", attacker(n))))
            && p.contains(&format!("disconnect from unknown[{LEGIT}]"))
            && (10..=19)
                .chain(33..=36)
                .chain([51])
                .all(|n| d.contains(&format!("rip={},", attacker(n))))
            && d.matches(&format!("rip={LEGIT},")).count() >= 2
    });
    assert!(
        ok,
        "not every session reached the logs\npostfix:\n{}\ndovecot:\n{}",
        fs::read_to_string(&pf).unwrap_or_default(),
        fs::read_to_string(&dv).unwrap_or_default()
    );
}

#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn real_postfix_and_dovecot_logs_give_the_attackers_and_only_them() {
    run_mail_lab(Release::Bookworm, Logs::Files);
}

#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn real_debian13_postfix_and_dovecot_log_files_give_the_attackers_and_only_them() {
    run_mail_lab(Release::Trixie, Logs::Files);
}

#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn real_debian13_postfix_and_dovecot_syslog_gives_the_attackers_and_only_them() {
    run_mail_lab(Release::Trixie, Logs::Syslog);
}

/// The scenarios against one release's servers logging to `logs`, and the checks; one table
/// of expected (scenario, rule, count) for both releases, with the differences spelled out.
fn run_mail_lab(release: Release, logs: Logs) {
    let started = Instant::now();
    let mut lab = MailLab::new(release, logs);
    lab.start_dovecot();
    lab.start_postfix();

    let script = lab.path("client.py");
    fs::write(
        &script,
        [CLIENT_PY_HEAD, SMTP_CLIENT_PY, CLIENT_PY].concat(),
    )
    .unwrap();
    let mut args = vec![script.as_os_str()];
    if release == Release::Trixie {
        args.push("forbid-unauth-pipelining".as_ref());
    }
    let out = lab
        .client
        .exec_timeout(PYTHON, &args, Duration::from_secs(90));
    assert!(
        out.success(),
        "the mail clients failed (timed out: {}): {}\n{}\npostfix log:\n{}\ndovecot log:\n{}",
        out.timed_out,
        out.stdout_str(),
        out.stderr_str(),
        fs::read_to_string(lab.postfix_log()).unwrap_or_default(),
        fs::read_to_string(lab.dovecot_log()).unwrap_or_default()
    );
    wait_for_logs(&lab);

    // The clients' legitimate sessions really happened.
    let pf = fs::read_to_string(lab.postfix_log()).unwrap();
    let dv = fs::read_to_string(lab.dovecot_log()).unwrap();
    assert!(
        pf.contains(&format!(
            "client=unknown[{LEGIT}], sasl_method=PLAIN, sasl_username=alice"
        )),
        "the legitimate SMTP AUTH and mail are not in the log:\n{pf}"
    );
    // (2.3 "imap-login: Info: Login: user=<alice>, ...", 2.4 "... Logged in: user=<alice>";
    // through syslog without the level)
    let level = match logs {
        Logs::Files => "Info: ",
        Logs::Syslog => "",
    };
    let login = match release {
        Release::Bookworm => "Login",
        Release::Trixie => "Logged in",
    };
    for service in ["imap", "pop3"] {
        let line =
            format!("{service}-login: {level}{login}: user=<alice>, method=PLAIN, rip={LEGIT},");
        assert!(
            dv.contains(&line),
            "the legitimate {service} login ({line}) is not in the log:\n{dv}"
        );
    }
    // The injections reached the logs (sanitized by the programs: Postfix's printable()
    // writes '?', Dovecot's str_sanitize() writes '?'), on one line each.
    assert!(
        pf.contains("sasl_username=alice?r?nDec 03 23:59:59 mx postfix/smtpd[4242]: warning: unknown[198.51.100.7]"),
        "the CR/LF user name did not reach Postfix' log as expected:\n{pf}"
    );
    assert!(
        pf.contains("helo=<x?Dec?03?23:59:59?mx?postfix/smtpd[4242]:?NOQUEUE:?reject:?RCPT?from?unknown[198.51.100.7]"),
        "the CR HELO name did not reach Postfix' log as expected:\n{pf}"
    );
    assert!(
        dv.contains(
            "user=<x?Dec 03 23:59:59 imap-login: Info: Disconnected: Connection closed (auth fai"
        ),
        "the LF IMAP user name did not reach Dovecot's log as expected:\n{dv}"
    );
    for log in [&pf, &dv] {
        assert!(
            !log.lines().any(|l| l.starts_with("Dec 03 23:59:59")),
            "a client forged a whole line:\n{log}"
        );
    }

    // Postfix, the all-in-one filter (`portcullis test` counts every mode's rules).
    // 20: AUTH PLAIN wrong password, 21: AUTH LOGIN unknown user, 22: relay access denied,
    // 23: unknown recipient, 24: lost connection after AUTH, 25: HELO then pipelined
    // commands (and the DATA it rejects), 26: an HTTP request, 27: a MAIL FROM address
    // holding "unknown[198.51.100.7]", 28: a HELO name holding CR and a forged reject line,
    // then relay denied, 29: two AUTH PLAIN failures in one session, 30/31/32: AUTH user names holding CR/LF and a forged SASL line,
    // 37: AUTH cancelled ("*": only the session summary auth=0/1 counts here), 38: AUTH
    // PLAIN with invalid base64, 39: smtpd_hard_error_limit reached (service 2626, syslog
    // name postfix/limits, client ports logged), 40: the third connection over smtpd_client_connection_rate_limit,
    // postscreen (port 2525): 41 PREGREET, 42 HANGUP, 43 COMMAND PIPELINING and the RCPT
    // postscreen rejects, 44 NON-SMTP COMMAND, 45 BARE NEWLINE; over IPv6: 2001:db8::50
    // AUTH PLAIN wrong password, ::52 PREGREET, ::53 relay access denied; pipelining bots:
    // 46 the scenario of 25 twice (two connections), 47 HELO, MAIL, RCPT (relay denied) and
    // QUIT in one write, 48 HELO and four unknown commands in one write to port 2626
    // (smtpd_hard_error_limit = 3: "too many errors").
    let sasl_session = |n: u8| [(n, "sasl", 1), (n, "sasl-summary", 1)];
    let mut want: Vec<(u8, &str, usize)> = Vec::new();
    for n in [20, 21, 30, 31, 32] {
        want.extend(sasl_session(n));
    }
    want.extend([(29, "sasl", 2), (29, "sasl-summary", 1)]);
    want.extend([
        (22, "reject", 1),
        (23, "reject", 1),
        (24, "lost-connection", 1),
        (24, "sasl-summary", 1),
        (26, "non-smtp", 1),
        (27, "non-smtp", 1),
        (28, "reject", 1),
        (38, "sasl", 1),
        (38, "sasl-summary", 1),
        (37, "sasl-summary", 1),
        (39, "too-many-errors", 1),
        (40, "rate-limit", 1),
        (41, "postscreen", 1),
        (42, "postscreen", 1),
        (43, "postscreen", 1),
        (43, "postscreen-reject", 1),
        (44, "postscreen", 1),
        (45, "postscreen", 1),
        (50, "sasl", 1),
        (50, "sasl-summary", 1),
        (52, "postscreen", 1),
        (53, "reject", 1),
    ]);
    match release {
        // (the DATA reject of reject_unauth_pipelining is read by the pipelining rule)
        Release::Bookworm => want.extend([
            (25, "pipelining", 2),
            (46, "pipelining", 4),
            (47, "pipelining", 1),
            (47, "reject", 1),
            (48, "pipelining", 1),
            (48, "too-many-errors", 1),
        ]),
        // Postfix 3.10: smtpd_forbid_unauth_pipelining (default yes since 3.9) answers the
        // first pipelined command "554 5.5.0 Error: SMTP protocol synchronization" and hangs
        // up: one "improper command pipelining after HELO" line a connection, then only
        // "disconnect from ... helo=0/1 commands=0/1" (no DATA reject, relay reject or "too
        // many errors" follows)
        Release::Trixie => want.extend([
            (25, "pipelining", 1),
            (46, "pipelining", 2),
            (47, "pipelining", 1),
            (48, "pipelining", 1),
        ]),
    }
    check("postfix", &lab.postfix_log(), &want);

    // postfix-sasl: the SMTP AUTH sessions only.
    let mut want: Vec<(u8, &str, usize)> = Vec::new();
    for n in [20, 21, 30, 31, 32] {
        want.extend([(n, "auth-failed", 1), (n, "summary", 1)]);
    }
    want.extend([(29, "auth-failed", 2), (29, "summary", 1)]);
    want.extend([
        (24, "lost-auth", 1),
        (24, "summary", 1),
        (37, "aborted", 1),
        (37, "summary", 1),
        (38, "auth-failed", 1),
        (38, "summary", 1),
        (50, "auth-failed", 1),
        (50, "summary", 1),
    ]);
    check("postfix-sasl", &lab.postfix_log(), &want);

    // What the jail counts: the session summary ("disconnect ... auth=0/N") and "lost
    // connection after AUTH" are follow-ups of the smtpd session (host and pid), not counted
    // again after its failure lines. With maxretry = 2 only the client that failed twice in
    // one session (29) is banned; one failed AUTH plus its summary is one failure.
    let banned = replay_bans(&lab, "postfix-sasl", 2, &lab.postfix_log());
    assert_eq!(
        banned,
        vec![attacker(29)],
        "postfix-sasl, maxretry 2: only 203.0.113.29 failed twice"
    );

    // What the postfix jail counts: a pipelining bot's connection is one abusive connection
    // (the pipelining line opens it; its reject, the reject_unauth_pipelining DATA reject
    // and "too many errors" are the same connection), each connection counts. With
    // maxretry = 2 in normal mode only 29 (two failed AUTH) and 46 (two pipelining
    // connections) are banned; 25, 47 and 48 (one connection each) are not. Nor is 43 in
    // aggressive mode: postscreen's COMMAND PIPELINING (scan) and its "550 5.5.1 Protocol
    // error" reject of the same connection are tied by the client's port (postscreen is
    // one process for all clients) and count once.
    for mode in ["normal", "aggressive"] {
        let banned = replay_bans_in(&lab, "postfix", mode, 2, &lab.postfix_log());
        // (and the IPv6 clients' /64, the default v6_prefix: ::50's failed AUTH and ::53's
        // relay attempt)
        let mut want = vec![attacker(29), attacker(46), "2001:db8::/64".to_string()];
        want.sort();
        assert_eq!(
            banned, want,
            "postfix ({mode}), maxretry 2: only the clients with two abusive connections or two failed AUTH"
        );
    }

    // Dovecot: one login-process line per failed connection and one auth-process line
    // (auth_verbose) per failed attempt, including Postfix' SMTP AUTH through the socket.
    // 10/11: IMAP wrong password / unknown user, 12: two wrong passwords, then the
    // connection closed, 13/14: POP3 wrong password / unknown user, 15: no login at all,
    // 16: a user name holding "rip=198.51.100.7" and the rest of a login line, 17/18: a
    // user name holding LF / CR LF and a forged disconnect line, 19: "x,198.51.100.7",
    // 33: a password sent where plaintext authentication is disabled ("Login failed:
    // Plaintext authentication disabled", 2.4 "Cleartext authentication disabled", not
    // counted, then the disconnect line, counted), 34: AUTHENTICATE cancelled ("client
    // didn't finish SASL auth", 2.4 "auth aborted by client, 1 attempts" after an uncounted
    // "Authenticate PLAIN failed: Aborted: user=<>, ..."), 35: POP3 AUTH PLAIN with a wrong
    // password, 36: ten invalid commands ("Too many invalid commands (no auth attempts
    // ...)"). Dovecot 2.4 writes other lines ("Login aborted: Logged out (auth failed, 1
    // attempts in 0 secs) (auth_failed): user=<...>, ...", the auth process'
    // "auth(alice,A,sasl:plain)<S>: [Info: ]passwd-file: Password mismatch", asserted below)
    // but the same (address, rule) pairs: one table for both.
    let mut want: Vec<(u8, &str, usize)> = vec![
        (12, "auth-process", 2),
        (12, "login-failed", 1),
        (15, "no-auth", 1),
        (33, "login-failed", 1),
        (34, "no-auth", 1),
        (35, "auth-process", 1),
        (35, "login-failed", 1),
        (36, "no-auth", 1),
        // IPv6: Postfix' SMTP AUTH (2001:db8::50) and an IMAP wrong password (::51)
        (50, "auth-process", 1),
        (51, "auth-process", 1),
        (51, "login-failed", 1),
    ];
    for n in [10, 11, 13, 14, 16, 17, 18, 19] {
        want.extend([(n, "auth-process", 1), (n, "login-failed", 1)]);
    }
    for n in [20, 21, 30, 31, 32] {
        want.push((n, "auth-process", 1));
    }
    want.push((29, "auth-process", 2));
    if release == Release::Trixie {
        // the 2.4 shapes really were read (not only lines 2.3 would write); "in N secs" is
        // the session's length, 0 or 1 as a second boundary falls (CI saw "in 1 secs")
        for (line, rest) in [
            (format!("auth(alice,{},sasl:plain)<", attacker(10)), String::new()),
            (format!("auth(alice,{},sasl:plain): {level}passwd-file: Password mismatch", attacker(20)), String::new()),
            (format!("imap-login: {level}Login aborted: Logged out (auth failed, 1 attempts in "), format!(" secs) (auth_failed): user=<alice>, method=PLAIN, rip={},", attacker(10))),
            (format!("imap-login: {level}Login aborted: Connection closed (auth aborted by client, 1 attempts in "), format!(" secs) (auth_aborted_by_client): user=<>, method=PLAIN, rip={},", attacker(34))),
        ] {
            let written = dv.lines().any(|l| {
                l.split_once(line.as_str()).is_some_and(|(_, after)| {
                    rest.is_empty()
                        || after
                            .split_once(' ')
                            .is_some_and(|(n, tail)| {
                                n.parse::<u32>().is_ok() && format!(" {tail}").starts_with(&rest)
                            })
                })
            });
            assert!(written, "Dovecot 2.4 did not write {line}N{rest}:\n{dv}");
        }
    }
    check("dovecot", &lab.dovecot_log(), &want);

    drop(lab);
    eprintln!(
        "real_mail ({release:?}, {logs:?}): done in {:?}",
        started.elapsed()
    );
}

//! The `exim-spam` filter (rule spam) against the real Exim with content scanning, twice:
//! Debian 12's 4.96 and Debian 13's 4.98.2, the same scenarios and one table of what counts.
//! exim4-daemon-light is built without it, so test.sh unpacks Debian 12's exim4-daemon-heavy
//! (with exim4-base and the libraries the machine lacks, libspf2-2) under
//! /var/cache/portcullis-test/exim-heavy/root (PORTCULLIS_EXIM_HEAVY_ROOT elsewhere): it
//! conflicts with postfix, like exim4-daemon-light (tests/real_exim.rs). Debian 13's
//! exim4-daemon-heavy is installed in test.sh's trixie-e tree and run with chroot in a private
//! overlay of it (common/real.rs `trixie_mount`: its own /etc and Debian-exim, the test's
//! directory at the same path inside); the version is asserted from the tree's dpkg database
//! and `exim -bV`. 4.98.2 writes every line as 4.96 did but for its 4.97+ message ids and,
//! with +all, " Ci=PID" (connection_id) after the client's interface: the first run found the
//! spam rule counting none of the +all daemon's rejections (filters/exim-spam.toml). The
//! spam scanner (for both releases) is
//! a minimal spamd-protocol responder in Debian's python3 (127.0.0.1:783): a message holding
//! a marker gets "Spam: True ; 15.0 / 5.0", any other "Spam: False ; 0.5 / 5.0". Exim reads
//! only those two numbers from spamd, and the filter reads only Exim's line, so the real
//! SpamAssassin (spamassassin + spamd and a dozen Perl packages, seconds to load its rules)
//! would add nothing to what is tested here.
//!
//! One bash script runs as pid 1 of new pid, mount and network namespaces (`unshare`):
//! 192.0.2.1 and 2001:db8::1 for Exim, the clients' addresses on the same loopback; /etc an
//! overlay (`private_etc`) with the test's passwd and group (the compiled-in user
//! Debian-exim, never created on the host), nsswitch.conf (files only) and hosts; a private
//! /dev whose /dev/log is a private rsyslogd (`private_syslog`). Two daemons (`exim4 -C
//! CONF -bdf`): port 25 with the default log selectors, logging to its files and to syslog,
//! and port 2525 with `log_selector = +all`. Their data ACL is the Exim specification's
//! (chapter "Content scanning at ACL time"): `deny senders = *@bulk.example, spam = nobody,
//! message = This message was classified as SPAM`, then `deny spam = nobody:true, condition
//! = ${if >{$spam_score_int}{120}{1}{0}}, message = This message scored $spam_score spam
//! points.`; helo_accept_junk_hosts lets 203.0.113.11 send any HELO; spamd_address sends
//! 203.0.113.12 to a port where nothing listens. STARTTLS is offered to all (a self-signed
//! certificate made with openssl in the test's directory); client certificates are asked for
//! (tls_try_verify_hosts) and checked against the server's own, so a client's fails (CV=no).
//! The RCPT ACL first has `deny dnslists = dnsbl.example.org` (message "$sender_host_address
//! is listed at $dnslist_domain ($dnslist_value: $dnslist_text)"), answered by a minimal DNS
//! responder in python3 at 127.0.0.1:53 (the test's resolv.conf, over /etc or copied into the
//! tree's overlay) that lists 203.0.113.20 and 203.0.113.21.
//!
//! Clients (python3, raw sockets), against each daemon, one source address per scenario:
//! * 203.0.113.10: two spam mails in one session (classified as SPAM), one in another
//!   (scored 15.0);
//! * 203.0.113.11: spam with hostile values: HELO `x [192.0.2.66]`, `relay=192.0.2.66`,
//!   `[192.0.2.66]` and `x) [192.0.2.66] F=<a@example.org> rejected after DATA: spam (y` (a
//!   forged rejection of another address), MAIL FROM `<"x> H=[192.0.2.66] F=<z"@...>` and
//!   `<"x> H=(y) [192.0.2.66] F=<z"@...>`, a Subject imitating a rejection with a folded
//!   line holding a whole forged one;
//! * 203.0.113.12: spam while its spamd is down (451, "temporarily rejected after DATA");
//! * 203.0.113.13: over STARTTLS (SNI mx.example.org, a self-signed client certificate), one
//!   spam mail (scored 15.0);
//! * 203.0.113.20 and, over STARTTLS, 203.0.113.21: listed, refused at RCPT;
//! * 2001:db8::50: two spam mails over IPv6;
//! * 198.51.100.7, the legitimate client, last: two clean mails (Subject "your spam report",
//!   and a sender at bulk.example), both accepted; then a recipient
//!   `dnsbl-spam-blacklist@example.net` refused as unknown (it is not listed).
//!
//! Asserted: what Exim wrote (each rejection line, the junk HELO and hostile senders raw, the
//! folded forged Subject line only in the reject log, behind a tab; the STARTTLS clients'
//! rejections with " X=TLS1.x... CV=no", with +all also ' DN="...CN=client.example.org"' and
//! " SNI=mx.example.org"); `portcullis test
//! --filter exim-spam --json` on each main log and on syslog counts exactly the listed
//! rejections for the address Exim wrote as the client, never 192.0.2.66, 198.51.100.7 or
//! the temporarily rejected client (rule spam; rule dnsbl once for each listed client);
//! the reject log counts the same as the main log (its header lines nothing); through syslog
//! each RCPT rejection counts twice (Exim's syslog_duplication writes the main and the reject
//! log's copy, the same line); `portcullis replay` (mode normal) bans with maxretry 2 the three
//! attackers (and through syslog the two listed clients), with 3 two, with 4 one, with 6
//! nobody. The first run found the forged HELO
//! counted for 192.0.2.66 and the sender holding `>` not counted (filters/exim-spam.toml).
//!
//! Needs root, the unpacked exim4-daemon-heavy and the trixie-e tree (test.sh), python3,
//! openssl, rsyslogd, iproute2, procps, util-linux and chroot; fails loudly when they are missing.
//! Runs in about 4 s each.

mod common;
mod exim;

use common::*;
use exim::*;
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

const FILTER: &str = "exim-spam";
const LEGIT: &str = "198.51.100.7";
/// The address the clients type into HELO, MAIL FROM and Subject.
const INJECTED: &str = "192.0.2.66";

/// Run as pid 1 of the new pid, mount and network namespace (bash), after
/// [`PRIVATE_ETC_SH`], [`PRIVATE_SYSLOG_SH`], [`TRIXIE_SH`] and [`TWO_DAEMONS_SH`]: $1 the
/// test's directory, $2 the unpacked exim4-daemon-heavy (Debian 12), $3 the Debian 13 tree
/// (empty: Debian 12's).
const SCRIPT: &str = r#"set -u
d="$1"; root="$2"; tree="$3"
exim_lo 192.0.2.1 203.0.113.10 203.0.113.11 203.0.113.12 203.0.113.13 203.0.113.20 203.0.113.21 198.51.100.7 \
  2001:db8::1 2001:db8::50
if [ -z "$tree" ]; then
  private_etc "$d/etc-ov" "$d/etc" passwd group nsswitch.conf hosts resolv.conf
fi
private_syslog "$d"
python3 "$d/spamd.py" 2>"$d/spamd.err" &
python3 "$d/dns.py" 2>"$d/dns.err" &
# Exim's TLS certificate and a client's, self-signed
for n in server client; do
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/O=Example/CN=$n.example.org" \
    -keyout "$d/$n.key" -out "$d/$n.crt" 2>>"$d/openssl.err" || exit 3
  chmod 644 "$d/$n.key"
done
# the Exim to run: Debian 12's unpacked one, or Debian 13's in a private overlay of its tree
# (common/real.rs trixie_mount: its /etc, with its own Debian-exim, /run and /tmp private,
# $d at the same path), with the test's resolv.conf
exim_release "$d" "$root" "$tree"
if [ -n "$tree" ]; then
  rm -f "$d/root/etc/resolv.conf"
  cp "$d/etc/resolv.conf" "$d/root/etc/"
fi
dns_up() { [ -n "$(ss -Hlun 'src 127.0.0.1 and sport = :53')" ]; }
exim_daemons "$d" dns_up
for port in 25 2525; do
  timeout 40 python3 "$d/client.py" $port "$d" >> "$d/client.out" 2>&1 || { echo "the clients failed ($port)" >&2; exit 8; }
done
exim_settle 100
kill -KILL %5 %4; kill %3 %2 %1
wait
"#;

/// The spamd-protocol responder's answer (after `exim::spamd_py`'s base).
const SPAMD_PY: &str = r#"# the answer of crates/portcullis/tests/real_exim_spam.rs: for Exim's `spam` ACL condition,
# a message holding the marker below is spam (15.0 / 5.0), any other not
MARKER = b"XJS*C4JBQADN1.NSBEM4.J7*SPAM-TEST"
def answer(c, lines, body):
    verdict = b"True ; 15.0 / 5.0" if MARKER in body else b"False ; 0.5 / 5.0"
    c.sendall(b"SPAMD/1.1 0 EX_OK\r\nSpam: " + verdict + b"\r\n\r\n")
serve(answer, 10)
"#;

/// A minimal DNS responder (Debian's python3) at 127.0.0.1:53, the resolver of every Exim
/// (the test's resolv.conf): the DNS block list dnsbl.example.org lists 203.0.113.20 and
/// 203.0.113.21 (A 127.0.0.2, TXT "listed for the test"); any other name: NXDOMAIN.
const DNS_PY: &str = r#"import socket, struct
ZONE = "dnsbl.example.org"
LISTED = {"20.113.0.203." + ZONE, "21.113.0.203." + ZONE}
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 53))
while True:
    q, peer = s.recvfrom(4096)
    try:
        (qid, flags, qd) = struct.unpack("!HHH", q[:6])
        i, labels = 12, []
        while q[i]:
            labels.append(q[i + 1:i + 1 + q[i]].decode("ascii", "replace"))
            i += 1 + q[i]
        qtype = struct.unpack("!H", q[i + 1:i + 3])[0]
        question = q[12:i + 5]
    except Exception:
        continue
    name = ".".join(labels).lower()
    answers = []
    if name in LISTED and qtype == 1:
        answers.append(struct.pack("!HHHIH", 0xC00C, 1, 1, 60, 4) + bytes([127, 0, 0, 2]))
    elif name in LISTED and qtype == 16:
        txt = b"listed for the test"
        answers.append(struct.pack("!HHHIH", 0xC00C, 16, 1, 60, len(txt) + 1) + bytes([len(txt)]) + txt)
    rcode = 0 if name in LISTED else 3
    head = struct.pack("!HHHHHH", qid, 0x8400 | (flags & 0x0100) | 0x0080 | rcode, 1, len(answers), 0, 0)
    s.sendto(head + question + b"".join(answers), peer)
"#;

/// The clients' scenarios, after the shared head and main (`exim::client_py`).
const CLIENT_PY: &str = r##"# ---- the scenarios of crates/portcullis/tests/real_exim_spam.rs: `client.py PORT DIR`
DIR = sys.argv[2]
MARKER = b"XJS*C4JBQADN1.NSBEM4.J7*SPAM-TEST"
FORGED = b"2026-12-04 00:00:00 1vXXXX-000001-AB H=(x) [192.0.2.66] F=<a@example.org> rejected after DATA: This message scored 99.0 spam points."
class Conn(SmtpConn):
    def __init__(self, src, helo=b"client.example.com"):
        super().__init__(src, PORT)
        expect(src + " banner", self.reply(), b"220 ")
        self.cmd(b"EHLO " + helo, b"250")
    def starttls(self):
        # no verification; SNI mx.example.org; a self-signed client certificate Exim asks
        # for (tls_try_verify_hosts) and cannot verify
        self.cmd(b"STARTTLS", b"220 ")
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.load_cert_chain(DIR + "/client.crt", DIR + "/client.key")
        self.sk = ctx.wrap_socket(self.sk, server_hostname="mx.example.org")
        self.f = self.sk.makefile("rb")
        self.cmd(b"EHLO client.example.com", b"250")
    def mail(self, sender, body, want, subject=b"offer"):
        self.cmd(b"MAIL FROM:" + sender, b"250 ")
        self.cmd(b"RCPT TO:<alice@example.net>", b"250 ")
        self.cmd(b"DATA", b"354 ")
        self.cmd(b"Subject: " + subject + b"\r\n\r\n" + body + b"\r\n.", want)
def spam(src, sender=b"<offer@bulk.example>", helo=b"client.example.com", subject=b"offer", times=1):
    c = Conn(src, helo)
    for _ in range(times):
        c.mail(sender, b"buy now " + MARKER, b"550 ", subject)
    c.quit()
def s10(src):
    spam(src, times=2)                       # classified as SPAM, twice in a session
    spam(src, b"<news@example.org>")         # scored 15.0 spam points
def s11(src):
    spam(src, helo=b"x [192.0.2.66]")
    spam(src, helo=b"relay=192.0.2.66")
    spam(src, helo=b"[192.0.2.66]")
    spam(src, helo=b"x) [192.0.2.66] F=<a@example.org> rejected after DATA: spam (y")
    spam(src, b'<"x> H=[192.0.2.66] F=<z"@bulk.example>')
    spam(src, b'<"x> H=(y) [192.0.2.66] F=<z"@bulk.example>')
    spam(src, b"<news@example.org>", subject=b"rejected after DATA: spam H=(x) [192.0.2.66]\r\n\t" + FORGED)
def s13(src):
    c = Conn(src)
    c.starttls()
    c.mail(b"<news@example.org>", b"buy now " + MARKER, b"550 ")
    c.quit()
def dnsbl(src, tls=False):
    c = Conn(src)
    if tls:
        c.starttls()
    c.cmd(b"MAIL FROM:<offer@example.org>", b"250 ")
    c.cmd(b"RCPT TO:<alice@example.net>", b"550")
    c.quit()
def s12(src):
    c = Conn(src)
    c.mail(b"<offer@bulk.example>", b"buy now " + MARKER, b"451 ")
    c.quit()
def s50(src):
    spam(src)
    spam(src, b"<news@example.org>")
def legit():
    c = Conn(LEGIT)
    c.mail(b"<bob@example.org>", b"hello alice", b"250 ", b"your spam report")
    c.mail(b"<bob@bulk.example>", b"hello again", b"250 ")
    # not listed: an unknown recipient naming a block list is refused, and counts nothing
    c.cmd(b"MAIL FROM:<bob@example.org>", b"250 ")
    c.cmd(b"RCPT TO:<dnsbl-spam-blacklist@example.net>", b"550 ")
    c.cmd(b"RSET", b"250 ")
    c.quit()
main([(s10, "203.0.113.10"), (s11, "203.0.113.11"), (s12, "203.0.113.12"), (s13, "203.0.113.13"), (dnsbl, "203.0.113.20"), (dnsbl, "203.0.113.21", True), (s50, "2001:db8::50")], legit)
"##;

/// Both daemons' configuration, after [`TWO_DAEMONS_CONF`] (the +all one is run with
/// -DALL), before [`ROUTERS_CONF`]; @DIR@ is the test's directory.
const EXIM_CONF: &str = r#"# STARTTLS for every client, a self-signed certificate; client certificates asked for and
# checked against the server's own (a client's does not verify: CV=no)
tls_advertise_hosts = *
tls_certificate = @DIR@/server.crt
tls_privatekey = @DIR@/server.key
tls_try_verify_hosts = *
tls_verify_certificates = @DIR@/server.crt
rfc1413_hosts =
host_lookup =
queue_only = true
# 203.0.113.11 may send a HELO name of any characters
helo_accept_junk_hosts = 203.0.113.11
# 203.0.113.12's scans find no spamd (nothing listens on 127.0.0.1:784)
spamd_address = ${if eq{$sender_host_address}{203.0.113.12}{127.0.0.1 784}{127.0.0.1 783}}
acl_smtp_rcpt = acl_check_rcpt
acl_smtp_data = acl_check_data

begin acl

acl_check_rcpt:
  # the DNS block list of the test's DNS responder (dns.py)
  deny  dnslists = dnsbl.example.org
        message = $sender_host_address is listed at $dnslist_domain ($dnslist_value: $dnslist_text)
  require verify = recipient
  accept

acl_check_data:
  # the Exim specification's examples (chapter "Content scanning at ACL time")
  deny  senders = *@bulk.example
        spam    = nobody
        message = This message was classified as SPAM
  deny  spam    = nobody:true
        condition = ${if >{$spam_score_int}{120}{1}{0}}
        message = This message scored $spam_score spam points.
  accept

"#;

/// (address, rule) -> count of the lines that count in `log`; every counted line names its
/// address as the client Exim wrote ("[ADDR]" right after the HELO or "H=").
fn counts(log: &Path) -> BTreeMap<(String, String), usize> {
    let mut out = BTreeMap::new();
    for (host, rule, line) in counted_matches(FILTER, log) {
        assert!(
            ![LEGIT, INJECTED, "203.0.113.12"].contains(&host.as_str()),
            "{}: {host} (the legitimate client, the typed address or the client whose spamd \
             was down) counted: {line}",
            log.display()
        );
        assert!(
            line.contains(&format!(") [{host}]")) && !line.contains(&format!("[{INJECTED}] F=<a@")),
            "{}: {host} taken from a line that does not name it as the client: {line}",
            log.display()
        );
        *out.entry((host, rule)).or_default() += 1;
    }
    out
}

#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn real_exim_spam_rejections_count_for_the_client_exim_wrote() {
    run(Release::Deb12);
}

#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn real_exim_4_98_spam_rejections_count_for_the_client_exim_wrote() {
    run(Release::Deb13);
}

// The Exim under test: Debian 12's (4.96, exim4-daemon-heavy unpacked by test.sh) or Debian
// 13's (4.98.2, exim4-daemon-heavy installed in test.sh's trixie-e tree, run with chroot).

/// Runs every scenario against `version`'s Exim (the clients and the spamd responder are the
/// machine's) and checks what Exim wrote and what the filter counts of it.
fn run(version_of_run: Release) {
    require_two_daemons();
    require_program("openssl", "openssl");
    let exim = Exim::new(version_of_run, Build::Heavy, trixie_e_root, &[]);
    // mode 0755: Exim's receiving processes run as Debian-exim
    let dir = exim_dir(&exim.label("eximspam"));
    let d = dir.path().to_str().expect("utf-8 path").to_string();
    let path = |rel: &str| dir.path().join(rel);

    // the files over /etc (private_etc)
    write_exim_etc(&path("etc"));
    fs::write(
        path("exim.conf"),
        [TWO_DAEMONS_CONF, EXIM_CONF, ROUTERS_CONF]
            .concat()
            .replace("@DIR@", &d),
    )
    .unwrap();
    fs::write(path("client.py"), client_py(CLIENT_PY)).unwrap();
    fs::write(path("spamd.py"), spamd_py(SPAMD_PY)).unwrap();
    fs::write(path("dns.py"), DNS_PY).unwrap();
    fs::write(path("etc/resolv.conf"), "nameserver 127.0.0.1\n").unwrap();

    let shown = [
        ("clients", "client.out"),
        ("spamd", "spamd.err"),
        ("dns", "dns.err"),
        ("exim", "default/stderr"),
        ("exim +all", "all/stderr"),
        ("mainlog", "default/log/mainlog"),
        ("+all mainlog", "all/log/mainlog"),
    ];
    let script = format!("{PRIVATE_ETC_SH}{PRIVATE_SYSLOG_SH}{TRIXIE_SH}{TWO_DAEMONS_SH}{SCRIPT}");
    run_script_ok(
        "Exim",
        dir.path(),
        &script,
        &[exim.root.as_os_str(), exim.tree.as_os_str()],
        &shown,
    );
    let read = |name: &str| fs::read_to_string(path(name)).unwrap_or_default();
    let main = read("default/log/mainlog");
    let version = exim.assert_started(&main);
    eprintln!("real_exim_spam: {version}");
    // the package of the tree's dpkg database (Debian 13)
    exim.assert_heavy_package(&read("version"));
    let bv = read("exim-bV");
    exim.assert_bv(&bv);
    // the heavy daemon: built with content scanning
    assert!(
        bv.lines()
            .any(|l| l.starts_with("Support for:") && l.contains("Content_Scanning")),
        "exim -bV: {bv}"
    );

    // ---- what Exim wrote ----
    let main_all = read("all/log/mainlog");
    let reject = read("default/log/rejectlog");
    let syslog = read("syslog");
    for (what, text) in [
        ("mainlog", &main),
        ("+all mainlog", &main_all),
        ("syslog", &syslog),
    ] {
        for needle in [
            // the junk HELO names, raw
            "H=(x [192.0.2.66]) [203.0.113.11]",
            "H=(relay=192.0.2.66) [203.0.113.11]",
            "H=([192.0.2.66]) [203.0.113.11]",
            "H=(x) [192.0.2.66] F=<a@example.org> rejected after DATA: spam (y) [203.0.113.11]",
            // the hostile senders, raw
            "[203.0.113.11]",
            "F=<\"x> H=[192.0.2.66] F=<z\"@bulk.example> rejected after DATA: This message was classified as SPAM",
            "F=<\"x> H=(y) [192.0.2.66] F=<z\"@bulk.example> rejected after DATA: This message was classified as SPAM",
            // both ACL messages, the score as the responder gave it
            "F=<offer@bulk.example> rejected after DATA: This message was classified as SPAM",
            "F=<news@example.org> rejected after DATA: This message scored 15.0 spam points.",
            // spamd down: a temporary rejection
            "[203.0.113.12]",
            "F=<offer@bulk.example> temporarily rejected after DATA",
            // the legitimate mails, accepted
            "<= bob@example.org H=(client.example.com) [198.51.100.7]",
            "<= bob@bulk.example H=(client.example.com) [198.51.100.7]",
            // the block list's rejections, the unknown recipient of the unlisted client
            "F=<offer@example.org> rejected RCPT <alice@example.net>: 203.0.113.20 is listed at dnsbl.example.org (127.0.0.2: listed for the test)",
            "F=<offer@example.org> rejected RCPT <alice@example.net>: 203.0.113.21 is listed at dnsbl.example.org (127.0.0.2: listed for the test)",
            "F=<bob@example.org> rejected RCPT <dnsbl-spam-blacklist@example.net>: Unrouteable address",
        ] {
            assert!(text.contains(needle), "{what}: no `{needle}` in:\n{text}");
        }
        let rejections = text
            .lines()
            .filter(|l| l.contains(" rejected after DATA: This message ") && !l.contains("]: ["))
            .count();
        assert_eq!(
            rejections, 13,
            "{what}: Exim's spam rejections (13 per daemon):\n{text}"
        );
        // the STARTTLS clients' rejections (a spam, a block list): after the client, the
        // cipher and CV=no (default selectors); with +all also the client certificate's DN
        // and the SNI the client sent
        for (host, rejected) in [
            (
                "203.0.113.13",
                " rejected after DATA: This message scored 15.0 spam points.",
            ),
            (
                "203.0.113.21",
                " rejected RCPT <alice@example.net>: 203.0.113.21 is listed",
            ),
        ] {
            // (through syslog the reject log's copy too: behind "[1\\N] " when it has header
            // lines, the same line when not)
            let lines: Vec<&str> = text
                .lines()
                .filter(|l| l.contains(&format!(" [{host}]")) && l.contains(rejected))
                .filter(|l| !l.contains("]: ["))
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect();
            assert_eq!(lines.len(), 1, "{what}: {host}'s rejection:\n{text}");
            let mut fields = vec![" X=TLS1.", " CV=no "];
            if what.starts_with("+all") {
                fields.extend([" DN=\"", "CN=client.example.org", " SNI=mx.example.org "]);
            }
            for field in fields {
                assert!(
                    lines[0].contains(field),
                    "{what}: no `{field}` in {}",
                    lines[0]
                );
            }
        }
    }
    // where 4.98 writes differently: with +all (the connection_id selector, 4.97+) " Ci=PID"
    // after the client's interface, before F=, on every rejection (4.96: none); its message
    // ids are the 4.97+ ones (`1xZih1-0000000002S-2DQc`; 4.96 `1xZih1-00002X-1m`). The first
    // run of 4.98 found the spam rule blind to the Ci= lines (filters/exim-spam.toml).
    let with_ci = main_all
        .lines()
        .filter(|l| {
            l.contains(" rejected after DATA: This message ")
                && l.contains(":2525 Ci=")
                && l.contains(" F=<")
        })
        .count();
    let want_ci = match version_of_run {
        Release::Deb12 => 0,
        Release::Deb13 => 13,
    };
    assert_eq!(
        with_ci, want_ci,
        "+all mainlog: rejections with Ci=:\n{main_all}"
    );
    // the folded forged Subject line: in the reject log behind a tab, through syslog behind
    // Exim's "[n/m] " and rsyslog's #011, never at the start of a line
    let forged = "2026-12-04 00:00:00 1vXXXX-000001-AB H=(x) [192.0.2.66]";
    assert_forged_folded(forged, &main, &reject, &main_all, &syslog);

    // ---- portcullis test ----
    let want: BTreeMap<(String, String), usize> = [
        ("203.0.113.10", 3),
        // HELO `x [...]`, `relay=...`, `[...]`; the sender with brackets; the Subject (not:
        // the forged HELO, the sender holding ") [", see filters/exim-spam.toml)
        ("203.0.113.11", 5),
        ("2001:db8::50", 2),
        // over STARTTLS
        ("203.0.113.13", 1),
    ]
    .into_iter()
    .map(|(h, n)| ((h.to_string(), "spam".to_string()), n))
    // listed in the block list, the second over STARTTLS
    .chain(["203.0.113.20", "203.0.113.21"].map(|h| ((h.to_string(), "dnsbl".to_string()), 1)))
    .collect();
    let logs = [
        ("mainlog", path("default/log/mainlog")),
        ("rejectlog", path("default/log/rejectlog")),
        ("+all mainlog", path("all/log/mainlog")),
        ("syslog", path("syslog")),
    ];
    for (what, log) in &logs {
        let got = counts(log);
        // through syslog, Exim (syslog_duplication, true by default) writes a line bound for
        // both its main and its reject log twice: a spam rejection's second copy comes
        // behind "[1\\N] " (its header lines follow) and counts nothing, a RCPT rejection's
        // is the same line again and counts again
        let mut want = want.clone();
        if *what == "syslog" {
            for ((_, rule), n) in want.iter_mut() {
                if rule == "dnsbl" {
                    *n *= 2;
                }
            }
        }
        assert_eq!(
            got,
            want,
            "{what}: what counted, per (address, rule)\nlog:\n{}",
            fs::read_to_string(log).unwrap_or_default()
        );
    }

    // ---- portcullis replay ----
    let bans = |hosts: &[&str]| -> BTreeSet<String> { hosts.iter().map(|h| ban_of(h)).collect() };
    for (what, log) in &logs {
        // the listed clients' one RCPT rejection each: twice through syslog (see above)
        let twice: &[&str] = match *what {
            "syslog" => &["203.0.113.20", "203.0.113.21"],
            _ => &[],
        };
        for (maxretry, want) in [
            (
                2,
                bans(&[&["203.0.113.10", "203.0.113.11", "2001:db8::50"], twice].concat()),
            ),
            (3, bans(&["203.0.113.10", "203.0.113.11"])),
            (4, bans(&["203.0.113.11"])),
            (6, bans(&[])),
        ] {
            let sub = dir
                .path()
                .join(format!("replay-{}", what.replace(['+', ' '], "")));
            fs::create_dir_all(&sub).unwrap();
            assert_eq!(
                replay_jail(&sub, FILTER, log, "normal", maxretry),
                want,
                "{what}: replay (mode normal, maxretry {maxretry}) banned other addresses"
            );
        }
    }
}

//! The `exim-spam` filter's rules `sa-exim` and `local-scan` against the real SA-Exim, the
//! local_scan() module Debian's exim4-daemon-heavy loads (`local_scan_path`, Debian's Exim
//! being built with DLOPEN_LOCAL_SCAN), twice: Debian 12's sa-exim 4.2.1-20 in Exim 4.96 and
//! Debian 13's sa-exim 4.2.1-22 in Exim 4.98.2, the same scenarios and one table of what
//! counts.
//!
//! Debian 12: Exim heavy is test.sh's unpacked exim4-daemon-heavy
//! (/var/cache/portcullis-test/exim-heavy/root, PORTCULLIS_EXIM_HEAVY_ROOT elsewhere, as in
//! tests/real_exim_spam.rs); sa-exim and spamc (its dependency: SA-Exim runs spamc, which
//! talks to spamd) are unpacked from their .debs with `dpkg -x` under
//! /var/cache/portcullis-test/sa-exim/root (PORTCULLIS_SA_EXIM_ROOT elsewhere; the .debs in
//! ../debs, whose sa-exim's dpkg version is asserted). The module reads its settings from the
//! compiled-in /etc/exim4/sa-exim.conf: the test's own, over /etc (`private_etc`). Debian 13:
//! sa-exim (and spamc) installed in test.sh's trixie-e tree, run with chroot in a private
//! overlay of it (common/real.rs `trixie_mount`), the test's sa-exim.conf written into the
//! overlay's /etc/exim4; the versions are asserted from the tree's dpkg database and `exim
//! -bV`.
//!
//! The spam verdict: SA-Exim pipes the message through the real spamc (no options but `-s`,
//! `-d`, `-p`: spamd's PROCESS command) and reads back only the processed message's header
//! `X-Spam-Flag: YES` and the "score=S required=R" of `X-Spam-Status` (sa-exim.c). spamd is
//! a minimal spamd-protocol responder in Debian's python3 at 127.0.0.1:783 that answers
//! PROCESS with the message and those two headers written as SpamAssassin 4 writes them, the
//! score taken from a marker in the body (`SA-TEST-SCORE=15.0`). Not the real spamd: the
//! scenarios need chosen scores on each side of SA-Exim's thresholds (flagged 6, temporarily
//! rejected 9, permanently rejected 15), which the GTUBE string (score 1000) cannot give, and
//! SpamAssassin (spamd and a dozen Perl packages, seconds to load its rules; not on the
//! Debian 12 machine) would add nothing the filter reads: the lines are SA-Exim's and Exim's.
//!
//! One bash script runs as pid 1 of new pid, mount and network namespaces (`unshare`):
//! 192.0.2.1 and 2001:db8::1 for Exim, the clients' addresses on the same loopback; /etc an
//! overlay with the test's passwd and group (Debian-exim), nsswitch.conf (files only), hosts
//! and exim4/sa-exim.conf (no host_lookup: SA-Exim writes the missing name as "NULL"); a
//! private /dev whose /dev/log is a private rsyslogd. Two daemons (`exim4 -C CONF -bdf`, `local_scan_path` the module): port 25 with
//! the default log selectors, logging to its files and to syslog, and port 2525 with
//! `log_selector = +all`. sa-exim.conf: SAEximRunCond 1 (scan everything), SApermreject 12,
//! SAtempreject 8, SAteergrube 10 for 203.0.113.33 only (SAteergrubetime 10), SAdevnull 10
//! for 203.0.113.34 only (the thresholds are expanded), nothing saved to disk;
//! helo_accept_junk_hosts lets 203.0.113.35 send any HELO.
//!
//! Clients (python3, common/smtp.rs SMTP_CLIENT_PY), against each daemon, one source address
//! per scenario:
//! * 203.0.113.30: two spam mails (15.0) in one session,
//!   permanently rejected (550 Rejected);
//! * 203.0.113.31: spam scored 9.0, temporarily rejected (451);
//! * 203.0.113.32: spam scored 6.0, flagged and accepted (250);
//! * 203.0.113.33: spam scored 15.0, teergrubed: SA-Exim writes a "451-" line each 10 s of
//!   SAteergrubetime (10), then Exim answers "451 Please try again later". Not the "451-Wait
//!   for more output" configured: sa-exim calls smtp_printf() as the old local_scan API
//!   had it, without the BOOL that Exim's takes before the arguments, and both releases
//!   showed the spam status there instead. A first version with SAteergrubetime 20 whose
//!   client reset the connection after the first line found no "teergrubed sender for N
//!   secs until it closed the connection": SA-Exim's second write did not fail, and it
//!   wrote the full duration line;
//! * 203.0.113.34: spam scored 15.0, silently tossed (250);
//! * 203.0.113.35: permanently rejected spam with hostile values: HELO `(host=x
//!   [192.0.2.66])`, `x [192.0.2.66]` and `x) [192.0.2.66] P=esmtp rejected by local_scan():
//!   Rejected (y` (a forged local_scan() rejection of another address), a quoted MAIL FROM holding `(host=x
//!   [192.0.2.66]) for`, a Message-Id imitating SA-Exim's end of line
//!   (`m). From <a@example.org (host=x [192.0.2.66]) for alice@example.net`), a Subject folded
//!   around a whole forged "SA: Action" line;
//! * 2001:db8::40: one spam mail (15.0) over IPv6;
//! * 198.51.100.7, the legitimate client, last: two clean mails (Subject "your spam report",
//!   Message-Id `<spam-report@example.org>`), accepted ("scanned but message isn't spam").
//!
//! Asserted: the versions (exim -bV, sa-exim's and exim4-daemon-heavy's dpkg versions), what
//! SA-Exim and Exim wrote (each action line, Exim's "rejected by local_scan()" and
//! "temporarily rejected by local_scan()" lines, the hostile values raw, the forged Subject
//! line only behind a tab), and that `portcullis test --filter exim-spam --json` on each main
//! log, the reject log and syslog counts exactly the expected (address, rule) pairs, never
//! 192.0.2.66 or 198.51.100.7. The first run found rule local-scan counting 192.0.2.66 for
//! the HELO forging a local_scan() rejection (filters/exim-spam.toml).
//!
//! Needs root, the unpacked exim4-daemon-heavy, the unpacked sa-exim and spamc, the trixie-e
//! tree with exim4-daemon-heavy and sa-exim (test.sh), python3, rsyslogd, iproute2, procps,
//! util-linux and chroot; fails loudly when they are missing. Runs in about 15 s each (the
//! teergrube holds its client 10 s).

mod common;
mod exim;

use common::*;
use exim::*;
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

const FILTER: &str = "exim-spam";
const LEGIT: &str = "198.51.100.7";
/// The address the hostile client types into HELO, MAIL FROM, Message-Id and Subject.
const INJECTED: &str = "192.0.2.66";
/// Where test.sh unpacks sa-exim and spamc (PORTCULLIS_SA_EXIM_ROOT overrides it); their
/// .debs are in ../debs.
const SA_EXIM_ROOT: &str = "/var/cache/portcullis-test/sa-exim/root";

/// Run as pid 1 of the new pid, mount and network namespace (bash), after
/// [`PRIVATE_ETC_SH`], [`PRIVATE_SYSLOG_SH`], [`TRIXIE_SH`] and [`TWO_DAEMONS_SH`]: $1 the
/// test's directory, $2 the unpacked exim4-daemon-heavy and $3 the unpacked sa-exim (Debian
/// 12), $4 the Debian 13 tree (empty: Debian 12's).
const SCRIPT: &str = r#"set -u
d="$1"; root="$2"; saroot="$3"; tree="$4"
exim_lo 192.0.2.1 203.0.113.30 203.0.113.31 203.0.113.32 203.0.113.33 203.0.113.34 203.0.113.35 198.51.100.7 \
  2001:db8::1 2001:db8::40
if [ -z "$tree" ]; then
  private_etc "$d/etc-ov" "$d/etc" passwd group nsswitch.conf hosts exim4/sa-exim.conf
fi
private_syslog "$d"
python3 "$d/spamd.py" 2>"$d/spamd.err" &
# the Exim to run: Debian 12's unpacked one with the unpacked sa-exim, or Debian 13's in a
# private overlay of its tree (common/real.rs trixie_mount), $d at the same path
exim_release "$d" "$root" "$tree"
if [ -n "$tree" ]; then
  cp "$d/etc/exim4/sa-exim.conf" "$d/root/etc/exim4/sa-exim.conf"
  dpkg-query --admindir="$d/root/var/lib/dpkg" -W -f '${Version}' sa-exim > "$d/sa-version"
else
  for deb in "$saroot"/../debs/sa-exim_*.deb; do dpkg-deb -f "$deb" Version > "$d/sa-version"; done
fi
exim_daemons "$d"
# both daemons' clients at once (the teergrube holds its client 10 s)
timeout 60 python3 "$d/client.py" 25 > "$d/client25.out" 2>&1 & c1=$!
timeout 60 python3 "$d/client.py" 2525 > "$d/client2525.out" 2>&1 & c2=$!
ok=0
wait $c1 || ok=1
wait $c2 || ok=1
[ $ok = 0 ] || { echo "the clients failed" >&2; cat "$d/client25.out" "$d/client2525.out" >&2; exit 8; }
exim_settle 150
kill -KILL %4 %3; kill %2 %1
wait
"#;

/// The spamd-protocol responder's answer (after `exim::spamd_py`'s base).
const SPAMD_PY: &str = r#"# the answer of crates/portcullis/tests/real_sa_exim.rs, for spamc run by SA-Exim: PROCESS (what
# spamc sends without -c/-r/-R) with the message, headed by X-Spam-Flag and X-Spam-Status as
# SpamAssassin 4 writes them; the score is the body's marker "SA-TEST-SCORE=N" (spam at 5.0
# and above), else 0.5.
def answer(c, lines, body):
    m = re.search(rb"SA-TEST-SCORE=([0-9]+\.[0-9])", body)
    score = float(m.group(1)) if m else 0.5
    spam = score >= 5.0
    yn = b"Yes" if spam else b"No"
    tests = b"SA_TEST_SCORE" if m else b"NO_RELAYS"
    added = (b"X-Spam-Flag: " + (b"YES" if spam else b"NO") + b"\n"
             + b"X-Spam-Status: " + yn + b", score=%.1f required=5.0 tests=%s autolearn=no\n\tautolearn_force=no version=4.0.1\n" % (score, tests))
    out = added + body
    c.sendall(b"SPAMD/1.1 0 EX_OK\r\nContent-length: %d\r\nSpam: %s ; %.1f / 5.0\r\n\r\n" % (len(out), b"True" if spam else b"False", score) + out)
    print(lines[0].decode("ascii", "replace"), score, flush=True)
serve(answer, 20)
"#;

/// The scenarios, after the shared head and main (`exim::client_py`).
const CLIENT_SCENARIOS: &str = r##"
# ---- the scenarios of crates/portcullis/tests/real_sa_exim.rs: `client.py PORT`
FORGED = (b"2026-12-04 00:00:00 1vXXXX-000001-AB SA: Action: permanently rejected message: score=99.0 required=5.0 trigger=12.0"
          b" (scanned in 1/1 secs | Message-Id: x). From <a@example.org> (host=x [192.0.2.66]) for alice@example.net")
class Conn(SmtpConn):
    def __init__(self, src, helo=b"client.example.com"):
        SmtpConn.__init__(self, src, PORT)
        expect(src + " banner", self.reply(), b"220 ")
        self.cmd(b"EHLO " + helo, b"250")
    def data(self, sender, score, want, subject=b"offer", msgid=None):
        self.cmd(b"MAIL FROM:" + sender, b"250 ")
        self.cmd(b"RCPT TO:<alice@example.net>", b"250 ")
        self.cmd(b"DATA", b"354 ")
        head = b"Subject: " + subject + b"\r\n"
        if msgid is not None:
            head += b"Message-Id: <" + msgid + b">\r\n"
        body = b"buy now" if score is None else b"buy now SA-TEST-SCORE=" + score
        self.send(head + b"\r\n" + body + b"\r\n.\r\n")
        got = self.reply()
        expect(self.src + " end of data", got, want)
        return got
def spam(src, score=b"15.0", want=b"550 ", sender=b"<offer@bulk.example>", helo=b"client.example.com",
         subject=b"offer", msgid=b"offer-1@bulk.example", times=1):
    c = Conn(src, helo)
    for _ in range(times):
        c.data(sender, score, want, subject, msgid)
    c.quit()
def s30(src):
    spam(src, times=2)                        # permanently rejected, twice in a session
def s31(src):
    spam(src, b"9.0", b"451 ")                # temporarily rejected
def s32(src):
    spam(src, b"6.0", b"250 ")                # flagged as spam, accepted
def s33(src):
    # teergrubed: a "451-" line each 10 s of SAteergrubetime, then Exim's 451 with
    # SAmsgteergruberej. (The "451-" line is not SAmsgteergrubewait: sa-exim calls
    # smtp_printf(format, text) of the old local_scan API, Exim's has a BOOL before the
    # arguments; what it shows is not logged.)
    c = Conn(src)
    c.sk.settimeout(30)
    got = c.data(b"<offer@bulk.example>", b"15.0", b"451-")
    expect(src + " teergrube", got.split(b"\r\n")[-2], b"451 Please try again later")
    c.quit()
def s34(src):
    spam(src, want=b"250 ")                   # silently tossed
def s35(src):
    spam(src, helo=b"(host=x [192.0.2.66])")
    spam(src, helo=b"x [192.0.2.66]")
    spam(src, helo=b"x) [192.0.2.66] P=esmtp rejected by local_scan(): Rejected (y")
    spam(src, sender=b'<"x (host=x [192.0.2.66]) for"@bulk.example>')
    spam(src, msgid=b"m). From <a@example.org (host=x [192.0.2.66]) for alice@example.net")
    spam(src, subject=b"offer\r\n\t" + FORGED)
def s40(src):
    spam(src)
def legit():
    c = Conn(LEGIT)
    c.data(b"<bob@example.org>", None, b"250 ", b"your spam report", b"spam-report@example.org")
    c.data(b"<bob@example.org>", None, b"250 ", b"hello again", b"hello-2@example.org")
    c.quit()
main([(s30, "203.0.113.30"), (s31, "203.0.113.31"), (s32, "203.0.113.32"),
      (s33, "203.0.113.33"), (s34, "203.0.113.34"), (s35, "203.0.113.35"), (s40, "2001:db8::40")], legit, 45)
"##;

/// Both daemons' configuration, after [`TWO_DAEMONS_CONF`] (the +all one is run with
/// -DALL), before [`ROUTERS_CONF`]; @DIR@ is the test's directory, @LOCAL_SCAN@ sa-exim.so.
const EXIM_CONF: &str = r#"# SA-Exim (Debian's conf.d/main/15_sa-exim_plugin_path sets the same option)
local_scan_path = @LOCAL_SCAN@
rfc1413_hosts =
host_lookup =
queue_only = true
# 203.0.113.35 may send a HELO name of any characters
helo_accept_junk_hosts = 203.0.113.35
acl_smtp_rcpt = acl_check_rcpt

begin acl

acl_check_rcpt:
  require verify = recipient
  accept

"#;

/// /etc/exim4/sa-exim.conf (Debian's defaults where not said otherwise); @SPAMC@ is spamc.
const SA_EXIM_CONF: &str = r#"# sa-exim.conf of crates/portcullis/tests/real_sa_exim.rs
SAEximDebug: 0
SAspamcpath: @SPAMC@
SAspamcHost: 127.0.0.1
SAspamcPort: 783
SAEximRunCond: 1
SAmaxbody: 256000
SATruncBodyCond: 0
SARewriteBody: 0
SAmaxrcptlistlength: 0
SAaddSAEheaderBeforeSA: 1
SAtimeout: 60
SAtemprejectonerror: 0
SAteergrube: ${if eq{$sender_host_address}{203.0.113.33}{10}{1000}}
SAteergrubetime: 10
SAdevnull: ${if eq{$sender_host_address}{203.0.113.34}{10}{1000}}
SApermreject: 12.0
SAtempreject: 8.0
SAmsgteergrubewait: Wait for more output
SAmsgteergruberej: Please try again later
SAmsgpermrej: Rejected
SAmsgtemprej: Please try again later
"#;

/// The unpacked sa-exim and spamc; fails loudly when test.sh has not unpacked them.
fn sa_exim_root() -> PathBuf {
    unpacked(
        "PORTCULLIS_SA_EXIM_ROOT",
        SA_EXIM_ROOT,
        &["usr/lib/exim4/local_scan/sa-exim.so", "usr/bin/spamc"],
        "Debian's sa-exim and spamc",
    )
}

/// (address, rule) -> count of the lines that count in `log`; never the legitimate client or
/// the typed address, and every counted line names its address as the client.
fn counts(log: &Path) -> BTreeMap<(String, String), usize> {
    let mut out = BTreeMap::new();
    for (host, rule, line) in counted_matches(FILTER, log) {
        assert!(
            ![LEGIT, INJECTED].contains(&host.as_str()),
            "{}: {host} (the legitimate client or the typed address) counted: {line}",
            log.display()
        );
        let named = match rule.as_str() {
            // SA-Exim's "(host=NAME [ADDR]) for RCPT" at the end
            "sa-exim" => line.contains(&format!(" [{host}]) for alice@example.net")),
            // Exim's "H=... [ADDR]" before " rejected by local_scan()"
            _ => {
                line.contains(&format!(" [{host}]")) && line.contains(" rejected by local_scan(): ")
            }
        };
        assert!(
            named,
            "{}: {host} taken from a line that does not name it as the client: {line}",
            log.display()
        );
        *out.entry((host, rule)).or_default() += 1;
    }
    out
}

#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn real_sa_exim_verdicts_count_for_the_client_exim_wrote() {
    run(Release::Deb12);
}

#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn real_sa_exim_4_98_verdicts_count_for_the_client_exim_wrote() {
    run(Release::Deb13);
}

/// Runs every scenario against `version_of_run`'s Exim and SA-Exim (the clients and the
/// spamd responder are the machine's) and checks what they wrote and what the filter counts.
fn run(version_of_run: Release) {
    require_two_daemons();
    require_program("dpkg-deb", "dpkg");
    let exim = Exim::new(
        version_of_run,
        Build::Heavy,
        trixie_e_root,
        &["usr/lib/exim4/local_scan/sa-exim.so", "usr/bin/spamc"],
    );
    let saroot = match version_of_run {
        Release::Deb12 => sa_exim_root(),
        Release::Deb13 => PathBuf::new(),
    };
    let (local_scan, spamc) = match version_of_run {
        Release::Deb12 => (
            saroot.join("usr/lib/exim4/local_scan/sa-exim.so"),
            saroot.join("usr/bin/spamc"),
        ),
        Release::Deb13 => (
            PathBuf::from("/usr/lib/exim4/local_scan/sa-exim.so"),
            PathBuf::from("/usr/bin/spamc"),
        ),
    };
    // mode 0755: Exim's receiving processes (and spamc) run as Debian-exim
    let dir = exim_dir(&exim.label("saexim"));
    let d = dir.path().to_str().expect("utf-8 path").to_string();
    let path = |rel: &str| dir.path().join(rel);

    // the files over /etc (private_etc; copied into the Debian 13 tree's overlay)
    fs::create_dir_all(path("etc/exim4")).unwrap();
    write_exim_etc(&path("etc"));
    fs::write(
        path("etc/exim4/sa-exim.conf"),
        SA_EXIM_CONF.replace("@SPAMC@", spamc.to_str().unwrap()),
    )
    .unwrap();
    fs::write(
        path("exim.conf"),
        [TWO_DAEMONS_CONF, EXIM_CONF, ROUTERS_CONF]
            .concat()
            .replace("@DIR@", &d)
            .replace("@LOCAL_SCAN@", local_scan.to_str().unwrap()),
    )
    .unwrap();
    fs::write(path("client.py"), client_py(CLIENT_SCENARIOS)).unwrap();
    fs::write(path("spamd.py"), spamd_py(SPAMD_PY)).unwrap();

    let shown = [
        ("clients 25", "client25.out"),
        ("clients 2525", "client2525.out"),
        ("spamd", "spamd.err"),
        ("exim", "default/stderr"),
        ("exim +all", "all/stderr"),
        ("exim -bV", "exim-bV"),
        ("mainlog", "default/log/mainlog"),
        ("+all mainlog", "all/log/mainlog"),
        ("paniclog", "default/log/paniclog"),
    ];
    let script = format!("{PRIVATE_ETC_SH}{PRIVATE_SYSLOG_SH}{TRIXIE_SH}{TWO_DAEMONS_SH}{SCRIPT}");
    run_script_ok(
        "SA-Exim",
        dir.path(),
        &script,
        &[
            exim.root.as_os_str(),
            saroot.as_os_str(),
            exim.tree.as_os_str(),
        ],
        &shown,
    );
    let read = |name: &str| fs::read_to_string(path(name)).unwrap_or_default();
    let main = read("default/log/mainlog");
    let main_all = read("all/log/mainlog");
    let reject = read("default/log/rejectlog");
    let syslog = read("syslog");
    let want_sa = match version_of_run {
        Release::Deb12 => "4.2.1-20",
        Release::Deb13 => "4.2.1-22",
    };
    // the package of the tree's dpkg database (Debian 13)
    exim.assert_heavy_package(&read("version"));
    let bv = read("exim-bV");
    exim.assert_bv(&bv);
    let sa_version = read("sa-version");
    assert!(
        sa_version.starts_with(want_sa),
        "sa-exim's dpkg version: {sa_version}"
    );
    eprintln!(
        "real_sa_exim: {} sa-exim {sa_version}",
        bv.lines().next().unwrap_or_default()
    );
    // ---- what SA-Exim and Exim wrote ----
    for (what, text) in [
        ("mainlog", &main),
        ("+all mainlog", &main_all),
        ("syslog", &syslog),
    ] {
        for needle in [
            // SA-Exim's verdicts: "SA: Action: ACTION: score=S required=R[ trigger=T] (scanned
            // in N/N secs | Message-Id: ID). From <SENDER> (host=NAME [ADDR]) for RCPT"; the
            // name "NULL" (Exim's string_sprintf of no name: no host_lookup here)
            "SA: Action: permanently rejected message: score=15.0 required=5.0 trigger=12.0 (scanned in ",
            " | Message-Id: offer-1@bulk.example). From <offer@bulk.example> (host=NULL [203.0.113.30]) for alice@example.net",
            "SA: Action: temporarily rejected message: score=9.0 required=5.0 trigger=8.0 (scanned in ",
            "SA: Action: flagged as Spam but accepted: score=6.0 required=5.0 (scanned in ",
            "SA: Action: teergrubed sender until full configured duration of 10 secs: score=15.0 required=5.0 trigger=10.0 (scanned in ",
            "SA: Action: silently tossed message: score=15.0 required=5.0 trigger=10.0 (scanned in ",
            "(host=NULL [203.0.113.34]) for alice@example.net",
            "(host=NULL [2001:db8::40]) for alice@example.net",
            "SA: Action: scanned but message isn't spam: score=0.5 required=5.0 (scanned in ",
            "Message-Id: spam-report@example.org). From <bob@example.org> (host=NULL [198.51.100.7]) for alice@example.net",
            // the hostile values, raw
            "Message-Id: m). From <a@example.org (host=x [192.0.2.66]) for alice@example.net). From <offer@bulk.example> (host=NULL [203.0.113.35]) for alice@example.net",
            "From <\"x (host=x [192.0.2.66]) for\"@bulk.example> (host=NULL [203.0.113.35]) for alice@example.net",
            // Exim's own lines: "F=SENDER H=... [ADDR]... rejected by local_scan(): TEXT"
            " F=offer@bulk.example H=(client.example.com) [203.0.113.30]",
            " rejected by local_scan(): Rejected",
            " F=offer@bulk.example H=(client.example.com) [203.0.113.31]",
            " temporarily rejected by local_scan(): Please try again later",
            " H=((host=x [192.0.2.66])) [203.0.113.35]",
            " F=offer@bulk.example H=(x [192.0.2.66]) [203.0.113.35]",
            " F=offer@bulk.example H=(x) [192.0.2.66] P=esmtp rejected by local_scan(): Rejected (y) [203.0.113.35]",
            " F=\"x (host=x [192.0.2.66]) for\"@bulk.example H=(client.example.com) [203.0.113.35]",
            // the tossed and the flagged message, accepted
            " <= offer@bulk.example H=(client.example.com) [203.0.113.34]",
            " <= offer@bulk.example H=(client.example.com) [203.0.113.32]",
            " <= bob@example.org H=(client.example.com) [198.51.100.7]",
        ] {
            assert!(text.contains(needle), "{what}: no `{needle}` in:\n{text}");
        }
    }
    // the folded forged Subject line: in the reject log's header dump behind a tab, through
    // syslog behind Exim's "[n\m] " and rsyslog's #011, never at the start of a line
    let forged = "2026-12-04 00:00:00 1vXXXX-000001-AB SA: Action:";
    assert_forged_folded(forged, &main, &reject, &main_all, &syslog);

    // ---- portcullis test ----
    let table = |rows: &[(&str, &str, usize)]| -> BTreeMap<(String, String), usize> {
        rows.iter()
            .map(|(h, r, n)| ((h.to_string(), r.to_string()), *n))
            .collect()
    };
    // each daemon's main log: SA-Exim's every spam verdict (rule sa-exim), Exim's permanent
    // local_scan() rejections (rule local-scan)
    let main_want = table(&[
        ("203.0.113.30", "sa-exim", 2),
        ("203.0.113.30", "local-scan", 2),
        ("203.0.113.31", "sa-exim", 1),
        ("203.0.113.32", "sa-exim", 1),
        ("203.0.113.33", "sa-exim", 1),
        ("203.0.113.34", "sa-exim", 1),
        // every verdict; Exim's rejection for the HELO `x [192.0.2.66]`, the Message-Id and
        // the Subject, not for the HELOs holding parentheses (one forging a whole rejection
        // of 192.0.2.66) nor for the quoted sender (see the filter)
        ("203.0.113.35", "sa-exim", 6),
        ("203.0.113.35", "local-scan", 3),
        ("2001:db8::40", "sa-exim", 1),
        ("2001:db8::40", "local-scan", 1),
    ]);
    // the reject log: every verdict but "flagged" (SA-Exim logs it to the main log only)
    let mut reject_want = main_want.clone();
    reject_want.remove(&("203.0.113.32".to_string(), "sa-exim".to_string()));
    // syslog (syslog_duplication): a line bound for the main and the reject log comes twice;
    // the reject log's copy of a verdict is behind "[1\N] " when Exim dumps the headers
    // after it (counts nothing), the same line again when not: after a local_scan() rejection
    // without header dump (SA-Exim's), Exim's rejected_header selector stays off for the rest
    // of the session (receive.c), so .30's second verdict counts twice; Exim's local_scan()
    // rejections always twice
    let syslog_want = table(&[
        ("203.0.113.30", "sa-exim", 3),
        ("203.0.113.30", "local-scan", 4),
        ("203.0.113.31", "sa-exim", 1),
        ("203.0.113.32", "sa-exim", 1),
        ("203.0.113.33", "sa-exim", 1),
        ("203.0.113.34", "sa-exim", 1),
        ("203.0.113.35", "sa-exim", 6),
        ("203.0.113.35", "local-scan", 6),
        ("2001:db8::40", "sa-exim", 1),
        ("2001:db8::40", "local-scan", 2),
    ]);
    for (what, log, want) in [
        ("mainlog", path("default/log/mainlog"), &main_want),
        ("+all mainlog", path("all/log/mainlog"), &main_want),
        ("rejectlog", path("default/log/rejectlog"), &reject_want),
        ("syslog", path("syslog"), &syslog_want),
    ] {
        assert_eq!(
            &counts(&log),
            want,
            "{what}: what counted, per (address, rule)\nlog:\n{}",
            fs::read_to_string(&log).unwrap_or_default()
        );
    }
}

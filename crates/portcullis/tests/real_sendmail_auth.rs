//! The `sendmail-auth` filter against the real Sendmail built with Cyrus SASL, twice: Debian
//! 12's 8.17.1 and Debian 13's 8.18.1, the same scenarios and one table of what Sendmail must
//! write and what counts for both (8.18.1 wrote every line as 8.17.1 did). Debian's
//! sendmail-bin conflicts with postfix (both provide mail-transport-agent), so test.sh
//! unpacks it (sendmail-bin, sendmail-base, sendmail-cf) under
//! /var/cache/portcullis-test/sendmail/root (PORTCULLIS_SENDMAIL_ROOT elsewhere), as for
//! tests/real_sendmail.rs; the SASL password database is written by Debian's saslpasswd2
//! from sasl2-bin, which test.sh unpacks with Cyrus under /var/cache/portcullis-test/cyrus
//! (PORTCULLIS_CYRUS_ROOT elsewhere; sasl2-bin is never installed: its postinst would set
//! up saslauthd). The SASL library and its PLAIN, LOGIN and sasldb plugins are the host's
//! (libsasl2-2, libsasl2-modules, libsasl2-modules-db). Debian 13's run takes Sendmail
//! unpacked in test.sh's fourth trixie tree (`common::real::trixie_d_root`, /opt/unpacked),
//! copied into place in a private overlay of the tree (`trixie_mount`; the test's /etc files
//! copied into its /etc), and the tree's saslpasswd2 and SASL plugins, all run with chroot;
//! m4 and the clients stay the host's. The release's set-up, the base of sendmail.mc and the
//! clients' Python head are shared with real_sendmail.rs (tests/sendmail/mod.rs).
//!
//! One bash script runs as pid 1 of new pid, mount and network namespaces (`unshare`):
//! 192.0.2.1 and 2001:db8::1 for Sendmail, the clients' addresses on the same loopback; /etc
//! an overlay (`private_etc`) holding the test's passwd (a local user alice, never created
//! on the host), group, nsswitch.conf (files only: no DNS), hosts and sasl2/Sendmail.conf
//! (pwcheck_method auxprop, auxprop_plugin sasldb, the test's sasldb2, mech_list PLAIN
//! LOGIN); a private /dev whose /dev/log is a private rsyslogd (`private_syslog`: rsyslog's
//! traditional file format and default escaping). saslpasswd2 writes alice@mx.example.net
//! (password correct-horse); m4 builds sendmail.cf from the unpacked sendmail-cf (LogLevel
//! 9, confAUTH_MECHANISMS and TRUST_AUTH_MECH PLAIN LOGIN, the local mailer /bin/true);
//! `sendmail -bD -L sm-mta` runs in a private UTS namespace (host name mx.example.net).
//!
//! Clients (Debian's python3, raw sockets), one source address per scenario:
//! * 203.0.113.10: wrong passwords for alice, twice with AUTH PLAIN and once with AUTH LOGIN,
//!   each in its own session;
//! * 203.0.113.11: unknown users (PLAIN `nosuch`, LOGIN `ghost`) and hostile user names, each
//!   in its own session: `x [192.0.2.66]`, `relay=192.0.2.66`, `a, relay=[192.0.2.66]`,
//!   `x, relay=[IPv6:2001:db8::66] (may be forged)` (LOGIN), 200 `u` then ` [192.0.2.66]`
//!   (Sendmail keeps 64 bytes), and a name holding a LF and a whole forged failure line;
//! * 203.0.113.12: three failed AUTH PLAIN in one session (Sendmail's own warning
//!   `possible SMTP attack: command=AUTH, count=3` follows the third);
//! * 203.0.113.13: three `AUTH CRAM-MD5` (not offered: 504, no failure line) in one session:
//!   the warning alone;
//! * 2001:db8::50: a wrong password (PLAIN) and an unknown user (LOGIN) over IPv6;
//! * 198.51.100.7, the legitimate client, last: AUTH PLAIN with the right password and a
//!   mail to alice, then AUTH LOGIN with the right password.
//!
//! Asserted: what Sendmail wrote (every `AUTH failure` and `possible SMTP attack` message,
//! exactly; the hostile names as Sendmail cut and escaped them: `%.64s`, the LF written `\n`
//! by sm_syslog()'s str2prt(), so no line is forged; the legitimate client's `AUTH=server`
//! lines and the delivery); `portcullis test --filter sendmail-auth --json` counts each
//! failure once for the address Sendmail wrote last in `relay=`, each warning for the address
//! before it, and nothing for 198.51.100.7 or 192.0.2.66; `portcullis replay` (mode
//! normal) bans with maxretry 1 every attacker, with 2 all but the lone warning, with 4 only
//! 203.0.113.11 (the warning after 203.0.113.12's three failures is a followup of the same
//! session: it adds nothing), with 9 nobody.
//!
//! Needs root, the unpacked Sendmail and sasl2-bin (test.sh), libsasl2-modules and
//! libsasl2-modules-db, m4, rsyslogd, python3, iproute2, procps and util-linux, and for the
//! second run chroot and the trixie-d tree; fails loudly when they are missing. Runs in about
//! 2 s each.

mod common;
mod sendmail;

use common::*;
use sendmail::*;
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

const FILTER: &str = "sendmail-auth";
const LEGIT: &str = "198.51.100.7";
/// The address the clients type into user names.
const INJECTED: &str = "192.0.2.66";
/// Where test.sh unpacks Cyrus, saslpasswd2 for Debian 12's run (PORTCULLIS_CYRUS_ROOT
/// overrides it).
const CYRUS_ROOT: &str = "/var/cache/portcullis-test/cyrus/root";
const SASLPASSWD2_BIN: &str = "usr/sbin/saslpasswd2";
/// The SASL plugins Debian 12's Sendmail and saslpasswd2 load (the host's; Debian 13's are
/// the tree's).
const SASL_PLUGINS: [(&str, &str); 3] = [
    (
        "/usr/lib/x86_64-linux-gnu/sasl2/libplain.so.2",
        "libsasl2-modules",
    ),
    (
        "/usr/lib/x86_64-linux-gnu/sasl2/liblogin.so.2",
        "libsasl2-modules",
    ),
    (
        "/usr/lib/x86_64-linux-gnu/sasl2/libsasldb.so.2",
        "libsasl2-modules-db",
    ),
];

/// Run as pid 1 of the new pid, mount and network namespace (bash), after
/// [`PRIVATE_ETC_SH`], [`PRIVATE_SYSLOG_SH`], [`TRIXIE_SH`] and [`sendmail::SENDMAIL_SH`]:
/// $1 the test's directory, $2 the unpacked Cyrus (saslpasswd2; Debian 12), then the
/// unpacked Sendmail (Debian 12) and the Debian 13 tree, one of them empty.
const SCRIPT: &str = r#"set -u
d="$1"; cyrus="$2"; unp="$3"; tree="$4"
ip link set lo up
for a in 192.0.2.1 203.0.113.10 203.0.113.11 203.0.113.12 203.0.113.13 198.51.100.7; do
  ip addr add "$a/32" dev lo || exit 2
done
for a in 2001:db8::1 2001:db8::50; do ip addr add "$a/128" dev lo nodad || exit 2; done
# a private /dev whose /dev/log is a private rsyslogd's socket (common/netns.rs)
private_syslog "$d"
# this release's Sendmail: Debian 12's unpacked one under a private /etc, or Debian 13's in
# a private overlay of its tree (tests/sendmail/mod.rs)
sendmail_release "$d/sm" "$unp" "$tree" "$d/etc" passwd group nsswitch.conf hosts \
  sasl2/Sendmail.conf || exit 4
if [ -n "$unp" ]; then
  pw=(env "LD_LIBRARY_PATH=$cyrus/usr/lib/x86_64-linux-gnu" "$cyrus/usr/sbin/saslpasswd2")
else
  pw=("${smx[@]}" /usr/sbin/saslpasswd2)
fi
# the SASL password database: alice@mx.example.net (Sendmail's realm is its host name)
printf 'correct-horse' | "${pw[@]}" -p -c -f "$d/sasldb2" -u mx.example.net alice \
  2>"$d/saslpasswd2.err" || exit 5
chmod 600 "$d/sasldb2"
m4 "$d/sendmail.mc" > "$d/sendmail.cf" 2>"$d/m4.err" && [ ! -s "$d/m4.err" ] || exit 6
mkdir -p "$d/mqueue"
"${smx[@]}" "$smbin/sendmail" -C "$d/sendmail.cf" -bi > "$d/bi.out" 2>&1 || exit 7
unshare --uts sh -c 'hostname mx.example.net && exec "$@"' sh \
  "${smx[@]}" "$smbin/sendmail" -C "$d/sendmail.cf" -bD -L sm-mta 2>"$d/sendmail.err" &
up() { [ -n "$(ss -Hltn "src $1 and sport = :25")" ]; }
for _ in $(seq 200); do
  up 192.0.2.1 && up '[2001:db8::1]' && grep -q 'sm-mta\[[0-9]*\]: starting daemon (' "$d/syslog" && break
  sleep 0.1
done
up 192.0.2.1 && up '[2001:db8::1]' || { echo "sendmail did not start" >&2; exit 4; }
timeout 40 python3 "$d/client.py" > "$d/client.out" 2>&1 || { echo "the clients failed" >&2; exit 8; }
# every session and the delivery have ended (only the daemon is left), then the log is still
for _ in $(seq 100); do
  [ "$(pgrep -c -x sendmail)" -le 1 ] && grep -q ', stat=Sent' "$d/syslog" && break
  sleep 0.1
done
sleep 0.3
kill %2
wait %2
kill %1
wait
"#;

/// The clients' scenarios (after the head of [`sendmail::client_py`]).
const CLIENT_PY: &str = r##"# SMTP AUTH clients of crates/portcullis/tests/real_sendmail_auth.rs: one source address
# per scenario, the scenarios on threads, the legitimate client last.
FORGED = b"sm-mta[1]: AUTH failure (PLAIN): authentication failure (-13) SASL(-13): x, relay=[192.0.2.66]"


def plain(c, user, pw, want=b"535 "):
    c.cmd(b"AUTH PLAIN " + base64.b64encode(b"\0" + user + b"\0" + pw), want)


def login(c, user, pw, want=b"535 "):
    c.cmd(b"AUTH LOGIN", b"334 ")
    c.cmd(base64.b64encode(user), b"334 ")
    c.cmd(base64.b64encode(pw), want)


def one(src, mech, user, pw=b"wrong"):
    c = Conn(src)
    mech(c, user, pw)
    c.quit()


def s10(src):
    one(src, plain, b"alice")
    one(src, plain, b"alice", b"guess")
    one(src, login, b"alice")


def s11(src):
    one(src, plain, b"nosuch")
    one(src, login, b"ghost")
    one(src, plain, b"x [192.0.2.66]")
    one(src, plain, b"relay=192.0.2.66")
    one(src, plain, b"a, relay=[192.0.2.66]")
    one(src, login, b"x, relay=[IPv6:2001:db8::66] (may be forged)")
    one(src, plain, b"u" * 200 + b" [192.0.2.66]")
    one(src, plain, b"x\n" + FORGED)


def s12(src):
    c = Conn(src)
    for i in range(3):
        plain(c, b"alice", b"guess%d" % i)
    c.quit()


def s13(src):
    c = Conn(src)
    for _ in range(3):
        c.cmd(b"AUTH CRAM-MD5", b"504 ")
    c.quit()


def s50(src):
    one(src, plain, b"alice")
    one(src, login, b"nosuch")


def legit():
    c = Conn(LEGIT)
    plain(c, b"alice", b"correct-horse", b"235 ")
    c.cmd(b"MAIL FROM:<alice@example.net>", b"250 ")
    c.cmd(b"RCPT TO:<alice@example.net>", b"250 ")
    c.cmd(b"DATA", b"354 ")
    c.cmd(b"Subject: hello\r\n\r\nhello\r\n.", b"250 ")
    c.quit()
    c = Conn(LEGIT)
    login(c, b"alice", b"correct-horse", b"235 ")
    c.quit()


ATTACKS = [(s10, "203.0.113.10"), (s11, "203.0.113.11"), (s12, "203.0.113.12"),
           (s13, "203.0.113.13"), (s50, "2001:db8::50")]
main(ATTACKS, legit)
"##;

/// sendmail.mc's own lines (after [`sendmail::sendmail_mc`]'s FEATUREs).
const MC_EXTRA: &str = "define(`confAUTH_MECHANISMS', `PLAIN LOGIN')dnl
TRUST_AUTH_MECH(`PLAIN LOGIN')dnl
";

/// The client Sendmail writes in `relay=` and before `: possible SMTP attack`.
fn written(host: &str) -> String {
    if host.contains(':') {
        "IPv6:2001:db8:0:0:0:0:0:50".to_string()
    } else {
        host.to_string()
    }
}

/// Every `AUTH failure` and `possible SMTP attack` message Sendmail must have written
/// (after "sm-mta[PID]: QUEUEID: "), sorted.
fn expected_messages() -> Vec<String> {
    let fail = |mech: &str, unknown: bool, user: &str, host: &str| {
        let (what, code) = if unknown {
            ("user not found", -20)
        } else {
            ("authentication failure", -13)
        };
        let check = if mech == "PLAIN" {
            "Password verification failed"
        } else {
            "checkpass failed"
        };
        // user=%.64s, then sm_syslog()'s str2prt(): a LF is written "\n"
        let user: String = user
            .chars()
            .take(64)
            .collect::<String>()
            .replace('\n', "\\n");
        format!(
            "AUTH failure ({mech}): {what} ({code}) SASL(-13): {what}: {check}, user={user}, relay=[{}]",
            written(host)
        )
    };
    let forged = "sm-mta[1]: AUTH failure (PLAIN): authentication failure (-13) SASL(-13): x, relay=[192.0.2.66]";
    let long = format!("{} [{INJECTED}]", "u".repeat(200));
    let lf = format!("x\n{forged}");
    let (a, b, c, v6) = (
        "203.0.113.10",
        "203.0.113.11",
        "203.0.113.12",
        "2001:db8::50",
    );
    let mut want = vec![
        fail("PLAIN", false, "alice", a),
        fail("PLAIN", false, "alice", a),
        fail("LOGIN", false, "alice", a),
        fail("PLAIN", true, "nosuch", b),
        fail("LOGIN", true, "ghost", b),
        fail("PLAIN", true, "x [192.0.2.66]", b),
        fail("PLAIN", true, "relay=192.0.2.66", b),
        fail("PLAIN", true, "a, relay=[192.0.2.66]", b),
        fail(
            "LOGIN",
            true,
            "x, relay=[IPv6:2001:db8::66] (may be forged)",
            b,
        ),
        fail("PLAIN", true, &long, b),
        fail("PLAIN", true, &lf, b),
        fail("PLAIN", false, "alice", c),
        fail("PLAIN", false, "alice", c),
        fail("PLAIN", false, "alice", c),
        format!("[{c}]: possible SMTP attack: command=AUTH, count=3"),
        "[203.0.113.13]: possible SMTP attack: command=AUTH, count=3".to_string(),
        fail("PLAIN", false, "alice", v6),
        fail("LOGIN", true, "nosuch", v6),
    ];
    want.sort();
    want
}

/// Sendmail's messages (after "sm-mta[PID]: " and the queue id if any).
fn messages(log: &str) -> Vec<String> {
    log.lines()
        .filter_map(|l| l.split_once(" sm-mta[")?.1.split_once("]: "))
        .map(|(_, m)| {
            match m.split_once(": ") {
                Some((id, rest))
                    if (8..=18).contains(&id.len())
                        && id.bytes().all(|b| b.is_ascii_alphanumeric()) =>
                {
                    rest
                }
                _ => m,
            }
            .to_string()
        })
        .collect()
}

// The Sendmail under test: Debian 12's (8.17.1, unpacked on the host) or Debian 13's
// (8.18.1, test.sh's trixie-d tree, run with chroot).

#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn real_sendmail_auth_failures_count_for_the_client_sendmail_wrote() {
    run(Release::Deb12);
}

#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn real_sendmail_8_18_auth_failures_count_for_the_client_sendmail_wrote() {
    run(Release::Deb13);
}

/// Runs every scenario against `version`'s Sendmail (the clients are the machine's) and
/// checks what Sendmail wrote and what the filter counts of it.
fn run(version: Release) {
    require_root();
    for (program, package) in [
        ("m4", "m4"),
        ("rsyslogd", "rsyslog"),
        ("python3", "python3"),
        ("ip", "iproute2"),
        ("ss", "iproute2"),
        ("pgrep", "procps"),
        ("hostname", "hostname"),
        ("unshare", "util-linux"),
    ] {
        require_program(program, package);
    }
    let sm = Sendmail::new(version);
    // Debian 12's run takes saslpasswd2 from the unpacked Cyrus and the host's SASL plugins
    let cyrus = match version {
        Release::Deb12 => {
            for (plugin, package) in SASL_PLUGINS {
                assert!(
                    Path::new(plugin).is_file(),
                    "{plugin} is missing: install {package} (test.sh does)"
                );
            }
            unpacked(
                "PORTCULLIS_CYRUS_ROOT",
                CYRUS_ROOT,
                &[SASLPASSWD2_BIN],
                "Debian's sasl2-bin (with cyrus-imapd)",
            )
        }
        Release::Deb13 => PathBuf::new(),
    };
    let dir = tempfile::Builder::new()
        .prefix(&format!("pct-{}-", sm.label("smauth")))
        .tempdir_in("/tmp")
        .expect("temp dir");
    let d = dir.path().to_str().expect("utf-8 path").to_string();
    let path = |rel: &str| dir.path().join(rel);

    // the files over /etc (private_etc), and Sendmail's own
    fs::create_dir_all(path("etc/sasl2")).unwrap();
    let id = free_ids(1, 64950..65200);
    let hosts = "127.0.0.1 localhost\n::1 localhost\n192.0.2.1 mx.example.net mx\n";
    write_account_etc(&path("etc"), "alice", id, "Alice", hosts);
    fs::write(path("hosts"), hosts).unwrap();
    fs::write(
        path("etc/sasl2/Sendmail.conf"),
        format!(
            "pwcheck_method: auxprop\nauxprop_plugin: sasldb\nsasldb_path: {d}/sasldb2\n\
             mech_list: PLAIN LOGIN\n"
        ),
    )
    .unwrap();
    fs::write(path("service.switch"), "hosts files\naliases files\n").unwrap();
    fs::write(path("aliases"), "postmaster: root\n").unwrap();
    let cf_dir = sm.cf_dir();
    fs::write(
        path("sendmail.mc"),
        sendmail_mc(cf_dir.to_str().expect("utf-8 path"), &d, MC_EXTRA),
    )
    .unwrap();
    fs::write(path("client.py"), client_py(CLIENT_PY)).unwrap();

    let shown = [
        ("clients", "client.out"),
        ("sendmail", "sendmail.err"),
        ("saslpasswd2", "saslpasswd2.err"),
        ("m4", "m4.err"),
        ("sendmail -bi", "bi.out"),
        ("syslog", "syslog"),
    ];
    let script = format!("{PRIVATE_ETC_SH}{PRIVATE_SYSLOG_SH}{TRIXIE_SH}{SENDMAIL_SH}{SCRIPT}");
    let [unp, tree] = sm.script_args();
    let args = [cyrus.as_os_str(), unp.as_os_str(), tree.as_os_str()];
    run_script_ok("Sendmail", dir.path(), &script, &args, &shown);
    let read = |name: &str| fs::read_to_string(path(name)).unwrap_or_default();
    let log = path("syslog");
    let text = read("syslog");
    let version = daemon_version(&text).unwrap_or_default();
    eprintln!("real_sendmail_auth: Sendmail {version}");
    assert!(
        version.starts_with(sm.release()),
        "Sendmail {version} started, not {}\nlog:\n{text}",
        sm.release()
    );

    // ---- what Sendmail wrote ----
    let msgs = messages(&text);
    let mut auth: Vec<String> = msgs
        .iter()
        .filter(|m| m.starts_with("AUTH failure (") || m.contains(": possible SMTP attack: "))
        .cloned()
        .collect();
    auth.sort();
    assert_eq!(
        auth,
        expected_messages(),
        "Sendmail's AUTH failures and attack warnings differ from the expected ones\nlog:\n{text}"
    );
    // no client forged a line: every line of the log is one of rsyslogd's or a program's
    assert!(
        text.lines().all(|l| l.contains(" sm-mta[")
            || l.contains(" sendmail[")
            || l.contains(" saslpasswd2: ")
            || l.contains(" rsyslogd: ")),
        "a line of no program's in the log:\n{text}"
    );
    // the legitimate client: both logins, the mail accepted (ESMTPA) and delivered
    for needle in [
        format!("AUTH=server, relay=[{LEGIT}], authid=alice, mech=PLAIN, bits=0"),
        format!("AUTH=server, relay=[{LEGIT}], authid=alice, mech=LOGIN, bits=0"),
    ] {
        assert!(msgs.contains(&needle), "no `{needle}` in the log:\n{text}");
    }
    assert!(
        msgs.iter()
            .any(|m| m.starts_with("from=<alice@example.net>, ")
                && m.ends_with(&format!(", proto=ESMTPA, daemon=MTA-v4, relay=[{LEGIT}]")))
            && msgs
                .iter()
                .any(|m| m.starts_with("to=<alice@example.net>, ") && m.ends_with(", stat=Sent")),
        "the legitimate mail was not accepted and delivered:\n{text}"
    );

    // ---- portcullis test ----
    let mut got: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (host, rule, line) in counted_matches(FILTER, &log) {
        let w = written(&host);
        assert!(
            (rule == "auth-failure" && line.ends_with(&format!(", relay=[{w}]")))
                || (rule == "auth-attack"
                    && line.contains(&format!(": [{w}]: possible SMTP attack: command=AUTH, "))),
            "{host} taken from a line that does not name it as the client: {line}"
        );
        got.entry(host).or_default().push(format!("{rule}: {line}"));
    }
    let want: BTreeMap<&str, Vec<&str>> = [
        ("203.0.113.10", vec!["auth-failure"; 3]),
        ("203.0.113.11", vec!["auth-failure"; 8]),
        (
            "203.0.113.12",
            vec![
                "auth-attack",
                "auth-failure",
                "auth-failure",
                "auth-failure",
            ],
        ),
        ("203.0.113.13", vec!["auth-attack"]),
        ("2001:db8::50", vec!["auth-failure"; 2]),
    ]
    .into_iter()
    .collect();
    assert_eq!(
        rules_of(&got),
        want,
        "what counted, per address: {got:#?}\nlog:\n{text}"
    );
    assert!(
        !got.contains_key(LEGIT) && !got.contains_key(INJECTED),
        "the legitimate client or the typed address counted: {got:#?}"
    );

    // ---- portcullis replay ----
    let bans = |hosts: &[&str]| -> BTreeSet<String> { hosts.iter().map(|h| ban_of(h)).collect() };
    let all = [
        "203.0.113.10",
        "203.0.113.11",
        "203.0.113.12",
        "203.0.113.13",
        "2001:db8::50",
    ];
    for (maxretry, want) in [
        (1, bans(&all)),
        (
            2,
            bans(&[
                "203.0.113.10",
                "203.0.113.11",
                "203.0.113.12",
                "2001:db8::50",
            ]),
        ),
        // 203.0.113.12: three failures; the warning of the same session adds nothing
        (4, bans(&["203.0.113.11"])),
        (9, bans(&[])),
    ] {
        assert_eq!(
            replay_jail(dir.path(), FILTER, &log, "normal", maxretry),
            want,
            "replay (mode normal, maxretry {maxretry}) banned other addresses\nlog:\n{text}"
        );
    }
}

//! The `cyrus-imap` filter against the real Cyrus IMAP. Debian 12's cyrus-common, cyrus-imapd
//! and cyrus-pop3d (3.6.1) with sasl2-bin (saslpasswd2), unpacked by test.sh under
//! /var/cache/portcullis-test/cyrus (PORTCULLIS_CYRUS_ROOT elsewhere: cyrus-imapd conflicts
//! with dovecot-imapd, which test.sh installs), run in their own pid, mount and network
//! namespace (`unshare`): Cyrus's `master` with a cyrus.conf and an imapd.conf of the test's
//! own (`-M`, `-C`, passed on to its services), starting imapd on port 143 and pop3d on port
//! 110, as the machine's `mail` account (Cyrus's services refuse to run as root), Debian's
//! `syslog_prefix: cyrus`, passwords checked by SASL's auxprop against a sasldb made by
//! saslpasswd2 (one user, alice), APOP on, `failedloginpause: 0` (Cyrus otherwise sleeps 3 s
//! after each failure). Every line goes to syslog(3) as `cyrus/imap` or `cyrus/pop3`,
//! received by a private rsyslogd (a private /dev whose /dev/log is its socket) writing
//! rsyslog's traditional file format.
//!
//! Clients (python3, raw IMAP and POP3 bound to a source address, one after another):
//! 192.0.2.10 logs in as alice over IMAP LOGIN, POP3 USER/PASS and POP3 APOP, and
//! 2001:db8:10::10 over IMAP AUTHENTICATE PLAIN. 198.51.100.9 fails thirteen IMAP logins:
//! LOGIN with a wrong password for alice, for an unknown user, for `admin from 192.0.2.66
//! port 1`, `x [192.0.2.66]`, `a") [192.0.2.66] "b` (quotes) and a literal holding CR LF and
//! a forged badlogin line; AUTHENTICATE PLAIN (with and without an initial response) for
//! alice, an unknown user and hostile names; alice's right password under the hostile
//! authorization names `x [192.0.2.66]` and the CR LF literal (refused by the proxy check);
//! the mechanism `X-[192.0.2.66]`; AUTHENTICATE LOGIN. 203.0.113.77 fails eleven POP3 logins:
//! USER/PASS (alice, unknown, `admin from 192.0.2.66 port 1`, `x" [192.0.2.66] (y)`), APOP
//! (alice, `x [192.0.2.66]`, a name holding a forged badlogin), AUTH PLAIN (alice, a hostile
//! authorization name), AUTH `X-[192.0.2.66]`, an anonymous login. 2001:db8::9 fails one
//! IMAP LOGIN and one POP3 USER/PASS over IPv6.
//!
//! `portcullis test --filter cyrus-imap --json` on the syslog file must count each failure
//! once (badlogin), for the address Cyrus wrote (never one inside a user, mechanism or
//! authorization name), and nothing for the four logins; `portcullis replay` with
//! `maxretry = 2` bans the three attackers (the IPv6 one by its /64) and nothing else, with
//! `maxretry = 12` 198.51.100.9 alone. The first run of this test found that APOP failures
//! (`badlogin: [ADDR] APOP (<challenge>) SASL(-13): ...`, no brackets around the detail) and
//! mechanism names outside [A-Za-z0-9_-] were never counted, and that Cyrus writes an
//! AUTHENTICATE PLAIN authorization name raw, CR LF included, to syslog() (rsyslog escaped
//! it as #015#012).
//!
//! A second test runs the same script and clients against Debian 13's Cyrus 3.10.2
//! (cyrus-imapd, cyrus-pop3d and sasl2-bin in test.sh's second Debian 13 tree,
//! `common::real::trixie_b_root`), with chroot in a private overlay of the tree
//! (`trixie_mount`: /dev/log reaches the same private rsyslogd, the test's directory at the
//! same path inside, the tree's `mail` account). 3.10.2 writes the same badlogin lines (not
//! the logfmt records of later releases), plus `session ended: sessionid=<...> userid=<>`
//! lines: the same expectations hold for both.
//!
//! Needs root, the unpacked Cyrus and the Debian 13 tree (test.sh), the machine's `mail`
//! account, python3, ss, rsyslogd, chroot and util-linux's unshare; fails loudly when they
//! are missing. Each test runs in about 2 s.

mod common;

use common::*;
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

const CYRUS_ROOT: &str = "/var/cache/portcullis-test/cyrus/root";

/// Run as pid 1 of the new pid, mount and network namespace (bash): every process of the
/// run is in it and dies with it; $1 is the test's directory, $2 Debian 12's unpacked Cyrus
/// or $3 Debian 13's tree (the other one empty). (After [`PRIVATE_SYSLOG_SH`] and
/// [`TRIXIE_SH`].)
const SCRIPT: &str = r#"set -u
d="$1"
root="$2"
tree="$3"
ip link set lo up
for a in 192.0.2.143 192.0.2.10 198.51.100.9 203.0.113.77; do ip addr add "$a/32" dev lo || exit 2; done
for a in 2001:db8::143 2001:db8:10::10 2001:db8::9; do ip addr add "$a/128" dev lo nodad || exit 2; done
# a private /dev whose /dev/log is a private rsyslogd's socket (common/netns.rs)
private_syslog "$d"
if [ -n "$tree" ]; then
  # Debian 13's Cyrus in a private overlay of its tree (common/real.rs trixie_mount: its /etc,
  # /run and /tmp private, $d at the same path); its programs run with chroot
  trixie_mount "$tree" "$d/root" "$d/trixie" || exit 4
  pre=(chroot "$d/root")
  root=""
else
  pre=()
  export LD_LIBRARY_PATH="$root/usr/lib/x86_64-linux-gnu"
fi
mkdir -p "$d/conf/db" "$d/conf/socket" "$d/conf/proc" "$d/spool" "$d/run"
cat > "$d/imapd.conf" <<C
configdirectory: $d/conf
partition-default: $d/spool
defaultpartition: default
proc_path: $d/run/proc
mboxname_lockpath: $d/run/lock
servername: mail.example.net
cyrus_user: mail
cyrus_group: mail
syslog_prefix: cyrus
allowplaintext: yes
allowapop: yes
allowanonymouslogin: no
sasl_pwcheck_method: auxprop
sasl_auxprop_plugin: sasldb
sasl_sasldb_path: $d/sasldb2
sasl_mech_list: PLAIN LOGIN
failedloginpause: 0
autocreate_quota: 0
C
cat > "$d/cyrus.conf" <<C
SERVICES {
  imap cmd="$root/usr/lib/cyrus/bin/imapd -C $d/imapd.conf" listen="143" prefork=0
  pop3 cmd="$root/usr/lib/cyrus/bin/pop3d -C $d/imapd.conf" listen="110" prefork=0
}
C
echo right-pw | "${pre[@]}" "$root/usr/sbin/saslpasswd2" -p -c -f "$d/sasldb2" -u mail.example.net alice \
  > "$d/saslpasswd2.out" 2>&1 || exit 5
"${pre[@]}" chown -R mail:mail "$d/conf" "$d/spool" "$d/run" "$d/sasldb2"
"${pre[@]}" "$root/usr/lib/cyrus/bin/master" -C "$d/imapd.conf" -M "$d/cyrus.conf" -p "$d/master.pid" \
  > "$d/master.out" 2>&1 &
for _ in $(seq 100); do
  [ "$(ss -Hltn '( sport = :143 or sport = :110 )' | wc -l)" -ge 4 ] && break
  sleep 0.1
done
[ "$(ss -Hltn '( sport = :143 or sport = :110 )' | wc -l)" -ge 4 ] || { echo "master did not listen" >&2; exit 6; }
/usr/bin/python3 "$d/client.py" > "$d/client.out" 2>&1 || exit 7
for _ in $(seq 50); do
  [ "$(grep -c ' badlogin: ' "$d/syslog")" -ge 26 ] && [ "$(grep -c ' login: ' "$d/syslog")" -ge 4 ] && break
  sleep 0.1
done
kill %2
wait %2
kill %1
wait
"#;

/// The clients, run inside the namespace: one connection per attempt, one after another (the
/// IMAP login creates alice's INBOX, which the POP3 logins need); prints each connection's
/// name and its answers.
const CLIENT: &str = r#"import base64, hashlib, socket

def until(f, pred):
    for _ in range(50):
        line = f.readline()
        if not line or pred(line):
            return line
    return b""

def imap(dst, src, steps):
    """steps: (command, [continuation lines sent after each "+"]); the tagged answers."""
    c = socket.create_connection((dst, 143), 5, source_address=(src, 0))
    f = c.makefile("rb")
    f.readline()
    res = []
    for i, (cmd, conts) in enumerate(steps):
        tag = b"t%d" % i
        c.sendall(tag + b" " + cmd + b"\r\n")
        for k in conts:
            f.readline()
            c.sendall(k + b"\r\n")
        res.append(until(f, lambda l: l.startswith(tag + b" ")))
    c.close()
    return res

def pop(dst, src, steps):
    """steps: commands (or functions of the greeting); one answer line each."""
    c = socket.create_connection((dst, 110), 5, source_address=(src, 0))
    f = c.makefile("rb")
    greet = f.readline()
    res = []
    for cmd in steps:
        c.sendall((cmd(greet) if callable(cmd) else cmd) + b"\r\n")
        res.append(f.readline())
    c.close()
    return res

def apop(user, pw):
    def cmd(greet):
        chal = greet[greet.index(b"<"):greet.index(b">") + 1]
        return b"APOP " + user + b" " + hashlib.md5(chal + pw).hexdigest().encode()
    return cmd

b64 = base64.b64encode
A4, A6 = "192.0.2.143", "2001:db8::143"
LIT = b"x\r\nDec  4 00:00:00 vm cyrus/imap[1]: badlogin: [192.0.2.66] plaintext (y) [z]"
I, P = "198.51.100.9", "203.0.113.77"
runs = [
    ("legit-imap", imap, A4, "192.0.2.10", [(b"LOGIN alice right-pw", []), (b"LOGOUT", [])]),
    ("legit-pop", pop, A4, "192.0.2.10", [b"USER alice", b"PASS right-pw", b"QUIT"]),
    ("legit-apop", pop, A4, "192.0.2.10", [apop(b"alice", b"right-pw"), b"QUIT"]),
    ("legit-plain6", imap, A6, "2001:db8:10::10",
     [(b"AUTHENTICATE PLAIN " + b64(b"\0alice\0right-pw"), []), (b"LOGOUT", [])]),
    ("imap-wrong", imap, A4, I, [(b"LOGIN alice wrong", [])]),
    ("imap-unknown", imap, A4, I, [(b"LOGIN nobody wrong", [])]),
    ("imap-from", imap, A4, I, [(b'LOGIN "admin from 192.0.2.66 port 1" wrong', [])]),
    ("imap-brackets", imap, A4, I, [(b'LOGIN "x [192.0.2.66]" wrong', [])]),
    ("imap-quotes", imap, A4, I, [(b'LOGIN "a\\") [192.0.2.66] \\"b" wrong', [])]),
    ("imap-literal", imap, A4, I, [(b"LOGIN {%d}" % len(LIT), [LIT + b" wrong"])]),
    ("imap-plain", imap, A4, I, [(b"AUTHENTICATE PLAIN", [b64(b"\0alice\0wrong")])]),
    ("imap-plain-ir", imap, A4, I, [(b"AUTHENTICATE PLAIN " + b64(b"\0nobody\0wrong"), [])]),
    ("imap-plain-hostile", imap, A4, I,
     [(b"AUTHENTICATE PLAIN " + b64(b"x [192.0.2.66]\0admin from 192.0.2.66\0wrong"), [])]),
    ("imap-authz", imap, A4, I,
     [(b"AUTHENTICATE PLAIN " + b64(b"x [192.0.2.66]\0alice\0right-pw"), [])]),
    ("imap-authz-crlf", imap, A4, I, [(b"AUTHENTICATE PLAIN " + b64(LIT + b"\0alice\0right-pw"), [])]),
    ("imap-mech", imap, A4, I, [(b"AUTHENTICATE X-[192.0.2.66]", [])]),
    ("imap-login-mech", imap, A4, I, [(b"AUTHENTICATE LOGIN", [b64(b"alice"), b64(b"wrong")])]),
    ("pop-wrong", pop, A4, P, [b"USER alice", b"PASS wrong"]),
    ("pop-unknown", pop, A4, P, [b"USER nobody", b"PASS wrong"]),
    ("pop-from", pop, A4, P, [b"USER admin from 192.0.2.66 port 1", b"PASS wrong"]),
    ("pop-brackets", pop, A4, P, [b'USER x" [192.0.2.66] (y)', b"PASS wrong"]),
    ("pop-apop", pop, A4, P, [apop(b"alice", b"wrong")]),
    ("pop-apop-hostile", pop, A4, P, [apop(b"x [192.0.2.66]", b"wrong")]),
    ("pop-apop-inject", pop, A4, P, [apop(b"y badlogin: [192.0.2.66] plaintext (y) [z]", b"wrong")]),
    ("pop-auth-authz", pop, A4, P, [b"AUTH PLAIN " + b64(b"x [192.0.2.66]\0alice\0right-pw")]),
    ("pop-auth", pop, A4, P, [b"AUTH PLAIN " + b64(b"\0alice\0wrong")]),
    ("pop-auth-mech", pop, A4, P, [b"AUTH X-[192.0.2.66]"]),
    ("pop-anon", pop, A4, P, [b"USER anonymous", b"PASS x"]),
    ("v6-imap", imap, A6, "2001:db8::9", [(b"LOGIN alice wrong", [])]),
    ("v6-pop", pop, A6, "2001:db8::9", [b"USER alice", b"PASS wrong"]),
]
for name, fn, dst, src, steps in runs:
    try:
        got = [l.decode(errors="replace").strip() for l in fn(dst, src, steps)]
    except Exception as e:
        got = [repr(e)]
    print(name, " | ".join(got))
"#;

fn cyrus_root() -> PathBuf {
    unpacked(
        "PORTCULLIS_CYRUS_ROOT",
        CYRUS_ROOT,
        &[
            "usr/lib/cyrus/bin/master",
            "usr/lib/cyrus/bin/imapd",
            "usr/lib/cyrus/bin/pop3d",
            "usr/sbin/saslpasswd2",
            "usr/lib/x86_64-linux-gnu/libcyrus_imap.so.0",
        ],
        "Debian's cyrus-common, cyrus-imapd, cyrus-pop3d and sasl2-bin",
    )
}

#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn real_cyrus_failed_logins_count_for_the_client_cyrus_wrote() {
    run(Release::Deb12);
}

#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn real_cyrus_310_failed_logins_count_for_the_client_cyrus_wrote() {
    run(Release::Deb13);
}

// The Cyrus under test: Debian 12's (3.6.1, unpacked by test.sh) or Debian 13's (3.10.2, in
// test.sh's second Debian 13 tree, run with chroot).

fn run(version: Release) {
    require_root();
    require_program("python3", "python3");
    require_program("ss", "iproute2");
    require_program("ip", "iproute2");
    require_program("rsyslogd", "rsyslog");
    require_program("unshare", "util-linux");
    let (root, tree) = match version {
        Release::Deb12 => (cyrus_root(), PathBuf::new()),
        Release::Deb13 => {
            require_program("chroot", "coreutils");
            let tree = trixie_b_root(&[
                "usr/lib/cyrus/bin/master",
                "usr/lib/cyrus/bin/imapd",
                "usr/lib/cyrus/bin/pop3d",
                "usr/sbin/saslpasswd2",
            ]);
            (PathBuf::new(), tree)
        }
    };
    assert!(
        fs::read_to_string("/etc/passwd")
            .unwrap_or_default()
            .lines()
            .any(|l| l.starts_with("mail:")),
        "Cyrus's services run as the `mail` account (base-passwd), missing from /etc/passwd"
    );
    let dir = test_dir(match version {
        Release::Deb12 => "cyrus",
        Release::Deb13 => "cyrus310",
    });
    // Cyrus's services run as mail, which must reach their files under it
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    fs::write(dir.path().join("client.py"), CLIENT).unwrap();
    let shown = [
        ("saslpasswd2", "saslpasswd2.out"),
        ("master", "master.out"),
        ("clients", "client.out"),
        ("syslog", "syslog"),
    ];
    let script = format!("{PRIVATE_SYSLOG_SH}{TRIXIE_SH}{SCRIPT}");
    let args = [root.as_os_str(), tree.as_os_str()];
    run_script_ok("cyrus", dir.path(), &script, &args, &shown);
    let read = |name: &str| fs::read_to_string(dir.path().join(name)).unwrap_or_default();
    let sys = dir.path().join("syslog");
    let text = read("syslog");

    // what the clients got: the four logins, every failure refused
    let clients = read("client.out");
    let answers: BTreeMap<&str, &str> = clients.lines().filter_map(|l| l.split_once(' ')).collect();
    let no_login = "t0 NO Login failed: authentication failure";
    let no_auth = "t0 NO authentication failure";
    let pass_refused = "+OK Name is a valid mailbox | -ERR [AUTH] Invalid login";
    let sasl_refused = "-ERR [AUTH] authenticating: authentication failure";
    for (name, want) in [
        ("imap-wrong", no_login),
        ("imap-unknown", no_login),
        ("imap-from", no_login),
        ("imap-brackets", no_login),
        ("imap-quotes", no_login),
        ("imap-literal", "t0 NO Invalid user"),
        ("imap-plain", no_auth),
        ("imap-plain-ir", no_auth),
        ("imap-plain-hostile", no_auth),
        ("imap-authz", no_auth),
        ("imap-authz-crlf", no_auth),
        ("imap-mech", "t0 NO no mechanism available"),
        ("imap-login-mech", no_auth),
        ("pop-wrong", pass_refused),
        ("pop-unknown", pass_refused),
        ("pop-from", pass_refused),
        ("pop-brackets", pass_refused),
        ("pop-apop", sasl_refused),
        ("pop-apop-hostile", sasl_refused),
        ("pop-apop-inject", sasl_refused),
        ("pop-auth-authz", sasl_refused),
        ("pop-auth", sasl_refused),
        (
            "pop-auth-mech",
            "-ERR [AUTH] authenticating: no mechanism available",
        ),
        ("pop-anon", pass_refused),
        ("v6-imap", no_login),
        ("v6-pop", pass_refused),
    ] {
        assert_eq!(
            answers.get(name).copied(),
            Some(want),
            "client {name}:\n{clients}\nsyslog:\n{text}"
        );
    }
    for name in ["legit-imap", "legit-plain6"] {
        let a = answers.get(name).copied().unwrap_or_default();
        assert!(
            a.starts_with("t0 OK ") && a.ends_with("| t1 OK Completed"),
            "client {name}: {a}\n{clients}\nsyslog:\n{text}"
        );
    }
    for name in ["legit-pop", "legit-apop"] {
        let a = answers.get(name).copied().unwrap_or_default();
        assert!(
            a.contains("+OK Mailbox locked and ready"),
            "client {name}: {a}\n{clients}\nsyslog:\n{text}"
        );
    }

    // Cyrus's own lines: 26 failures, the four logins; the literal's CR LF written as ^M^J by
    // Cyrus, the authorization name's raw CR LF escaped by rsyslog
    let badlogins = text
        .lines()
        .filter(|l| {
            l.split_once("]: ")
                .is_some_and(|(_, m)| m.starts_with("badlogin: "))
        })
        .count();
    assert_eq!(badlogins, 26, "syslog:\n{text}");
    assert_eq!(
        text.matches(": badlogin: [203.0.113.77] APOP (<").count(),
        3,
        "syslog:\n{text}"
    );
    for needle in [
        "cyrus/imap[",
        "cyrus/pop3[",
        "login: [192.0.2.10] alice plaintext User logged in",
        "login: [192.0.2.10] alice APOP User logged in",
        "login: [2001:db8:10::10] alice PLAIN User logged in",
        "badlogin: [198.51.100.9] plaintext (admin from 192.0.2.66 port 1) [SASL(-13): user not found",
        "badlogin: [198.51.100.9] plaintext (a\") [192.0.2.66] \"b) [",
        "badlogin: [198.51.100.9] plaintext (x^M^JDec  4 00:00:00 vm cyrus/imap[1]: badlogin: [192.0.2.66] plaintext (y) [z]) invalid user",
        "badlogin: [198.51.100.9] PLAIN (x [192.0.2.66]) [SASL(-13): authentication failure: user alice is not allowed to proxy]",
        "badlogin: [198.51.100.9] PLAIN (x#015#012Dec  4 00:00:00 vm cyrus/imap[1]: badlogin: [192.0.2.66]",
        "badlogin: [198.51.100.9] X-[192.0.2.66] (-notset-) [",
        "badlogin: [203.0.113.77] plaintext (x\" [192.0.2.66] (y)) [",
        "SASL(-13): user not found: user: x [192.0.2.66]@mail.example.net",
        "badlogin: [203.0.113.77] X-[192.0.2.66] (-notset-) [no mechanism available]",
        "badlogin: [203.0.113.77] anonymous login refused",
        "badlogin: [2001:db8::9] plaintext (alice) [SASL(-13): authentication failure: checkpass failed]",
    ] {
        assert!(text.contains(needle), "no {needle:?} in syslog:\n{text}");
    }

    // where 3.10 writes differently: the same badlogin lines, and a logfmt line at each
    // IMAP session's end (userid=<> after a failure), which counts nothing
    assert_eq!(
        text.contains("]: session ended: sessionid=<cyrus-"),
        version == Release::Deb13,
        "syslog:\n{text}"
    );

    // each failure once, for the address Cyrus wrote; the logins count nothing
    let got = rules_by_host("cyrus-imap", &sys);
    let want = want_rules(&[
        ("198.51.100.9", &[("badlogin", 13)]),
        ("203.0.113.77", &[("badlogin", 11)]),
        ("2001:db8::9", &[("badlogin", 2)]),
    ]);
    assert_eq!(
        got,
        want,
        "what counted: {:#?}\nsyslog:\n{text}",
        counted_matches("cyrus-imap", &sys)
    );

    // a jail with maxretry 2 bans the three attackers and only them; with 12, the one with 13
    let bans = replay_jail(dir.path(), "cyrus-imap", &sys, "normal", 2);
    let mut want_bans = vec![
        "198.51.100.9".to_string(),
        "203.0.113.77".to_string(),
        ban_of("2001:db8::9"),
    ];
    want_bans.sort();
    assert_eq!(
        bans.into_iter().collect::<Vec<_>>(),
        want_bans,
        "bans (maxretry 2):\nsyslog:\n{text}"
    );
    let bans = replay_jail(dir.path(), "cyrus-imap", &sys, "normal", 12);
    assert_eq!(
        bans.into_iter().collect::<Vec<_>>(),
        vec!["198.51.100.9".to_string()],
        "bans (maxretry 12):\nsyslog:\n{text}"
    );
}

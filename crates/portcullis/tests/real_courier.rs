//! The `courier-auth` filter against the real Courier-IMAP. Debian 12's courier-imap
//! (5.0.13) with courier-authdaemon and courier-authlib-userdb (0.71.4), unpacked by test.sh
//! under /var/cache/portcullis-test/courier (PORTCULLIS_COURIER_ROOT elsewhere: courier-imap
//! conflicts with dovecot-imapd, which test.sh installs), runs in its own pid, mount and
//! network namespace (`unshare`): /usr with the unpacked /usr above it, /etc with a private
//! /etc/courier above it (authdaemonrc naming authuserdb, a userdb built with makeuserdb
//! whose one user, alice, has a password hashed at run time), a private /run for
//! authdaemond's socket. authdaemond and couriertcpd (imaplogin, imapd; -maxperip=5) run
//! under courierlogger as Debian's scripts start them, so every login server line goes to
//! syslog(3) as `imapd`, received by a private rsyslogd (a private /dev whose /dev/log is its
//! socket) writing rsyslog's traditional file format.
//!
//! Clients (python3, raw IMAP bound to a source address, all at once: Courier answers a
//! failed login after 5 s): 192.0.2.10 logs in as alice and logs out; 198.51.100.9 sends
//! five wrong LOGINs (alice, an unknown user, `admin [192.0.2.66]`, `x ip=[::ffff:192.0.2.66]`,
//! and a literal user name holding LF, CR LF and ESC around a forged `LOGIN FAILED` line),
//! then, while those five are open, a sixth connection that -maxperip refuses; 2001:db8::9
//! sends a wrong LOGIN over IPv6; 203.0.113.77 fails AUTHENTICATE PLAIN and names two
//! hostile mechanisms (`X-ip=[192.0.2.66]`, `"PLAIN, ip=[192.0.2.66]"`).
//!
//! `portcullis test --filter courier-auth --json` on the syslog file must count each failed
//! login once (login-failed) and the refused connection (conn-limit), for the address Courier
//! wrote (never one inside a user or mechanism name), and nothing for alice's login;
//! `portcullis replay` with `maxretry = 5` bans 198.51.100.9 alone. The first run of this
//! test found that a client naming its own SASL mechanism (`method=X-IP=[192.0.2.66]`,
//! `method=PLAIN, ip=[192.0.2.66]`) was never counted.
//!
//! A second test runs the same script and clients against Debian 13's courier-imap 5.2.11
//! (courier-authlib 0.72.4; courier-imap, courier-authdaemon and courier-authlib-userdb in
//! test.sh's third Debian 13 tree, `common::real::trixie_c_root`), with chroot in a private
//! overlay of the tree (`trixie_mount`: /dev/log reaches the same private rsyslogd, the test's
//! directory at the same path inside; authdaemond started by this file's
//! `courier13_authdaemond`, couriertcpd without `-noidentlookup`, an option 1.4 dropped with
//! its ident lookup). 5.2.11 writes the same lines (without 5.0.13's complaints about a
//! missing FAM server, gam_server): the same expectations hold for both.
//!
//! Needs root, the unpacked Courier and the Debian 13 tree (test.sh), perl (makeuserdb),
//! python3, openssl, rsyslogd, chroot, dpkg-query and util-linux's unshare; fails loudly when
//! they are missing. Each test runs in about 6 s.

mod common;

use common::*;
use std::collections::BTreeMap;
use std::fs;
use std::path::PathBuf;

const COURIER_ROOT: &str = "/var/cache/portcullis-test/courier/root";

/// Run as pid 1 of the new pid, mount and network namespace (bash): every process of the
/// run is in it and dies with it; $1 is the test's directory, $2 Debian 12's unpacked
/// Courier or $3 Debian 13's tree (the other one empty). (After [`PRIVATE_SYSLOG_SH`],
/// [`TRIXIE_SH`] and [`COURIER_AUTH_SH`].)
const SCRIPT: &str = r#"set -u
d="$1"
root="$2"
tree="$3"
ip link set lo up
for a in 192.0.2.143 192.0.2.10 198.51.100.9 203.0.113.77; do ip addr add "$a/32" dev lo || exit 2; done
for a in 2001:db8::143 2001:db8::9; do ip addr add "$a/128" dev lo nodad || exit 2; done
# alice's mail directory belongs to nobody, which must reach it
chmod 755 "$d"
# a private /dev whose /dev/log is a private rsyslogd's socket (common/netns.rs)
private_syslog "$d"
mkdir -p "$d/etc/up/courier" "$d/etc/work"
if [ -n "$tree" ]; then
  # Debian 13's Courier in a private overlay of its tree (common/real.rs trixie_mount: its
  # /etc, /run and /tmp private, $d at the same path); its programs run with chroot
  r="$d/root"
  trixie_mount "$tree" "$r" "$d/trixie" || exit 4
  pre=(chroot "$r")
  courier_userdb "$d/home"
  cp "$d/etc/up/courier/authdaemonrc" "$d/etc/up/courier/userdb" "$r/etc/courier/" || exit 4
  chroot "$r" makeuserdb > "$d/makeuserdb.out" 2>&1 || exit 5
  courier13_authdaemond "$r"
  # couriertcpd 1.4 has no ident lookup left, nor its option
  noident=()
  dpkg-query --admindir="$r/var/lib/dpkg" -W -f '${Version}' courier-imap > "$d/version"
else
  # Courier's files where its programs look for them (paths compiled in): /usr with the
  # unpacked /usr above it, /etc with the configuration above it, a private /run
  pre=()
  mount -t overlay pct-usr -o "lowerdir=$root/usr:/usr" /usr || exit 4
  cp -r "$root/etc/courier/." "$d/etc/up/courier/"
  courier_userdb "$d/home"
  mount -t overlay pct-etc -o "lowerdir=/etc,upperdir=$d/etc/up,workdir=$d/etc/work" /etc || exit 4
  makeuserdb > "$d/makeuserdb.out" 2>&1 || exit 5
  courier_authdaemond
  noident=(-noidentlookup)
fi
# imapd as Debian's /usr/lib/courier/imapd starts it (its settings, courierlogger -name=imapd),
# without STARTTLS, in the foreground
"${pre[@]}" /bin/bash -c '
  set -a
  . /etc/courier/imapd
  . /etc/courier/imapd-ssl
  IMAP_STARTTLS=NO
  IMAPDSTARTTLS=NO
  set +a
  exec /usr/sbin/courierlogger -name=imapd -facility=mail /usr/sbin/couriertcpd -address=0 \
    -maxprocs=20 -maxperip=5 -nodnslookup "$@" 143 \
    /usr/lib/courier/courier/imaplogin /usr/bin/imapd Maildir
' imapd "${noident[@]}" &
for _ in $(seq 50); do
  /usr/bin/python3 -c 'import socket; socket.create_connection(("192.0.2.143", 143), 1).close()' 2>/dev/null && break
  sleep 0.1
done
/usr/bin/python3 - "$d" <<'PY' > "$d/client.out" 2>&1 || exit 7
import base64, socket, sys, threading, time

def quoted(s):
    return '"' + s.replace('\\', '\\\\').replace('"', '\\"') + '"'

def session(dst, src, steps):
    """Greeting, then each (command, extra): extra is a literal user name sent after the
    server's "+", or the AUTHENTICATE reply; reads up to the tagged answer."""
    c = socket.create_connection((dst, 143), 12, source_address=(src, 0))
    f = c.makefile("rb")
    out = [f.readline()]
    for i, (cmd, extra) in enumerate(steps):
        tag = "a%d" % i
        if cmd.startswith("LOGIN {"):
            c.sendall(("%s LOGIN {%d}\r\n" % (tag, len(extra))).encode())
            out.append(f.readline())
            c.sendall(extra + cmd.split("}", 1)[1].encode() + b"\r\n")
        else:
            c.sendall(("%s %s\r\n" % (tag, cmd)).encode())
            if extra is not None:
                out.append(f.readline())
                c.sendall(extra + b"\r\n")
        while True:
            line = f.readline()
            out.append(line)
            if not line or line.startswith(tag.encode() + b" "):
                break
    c.close()
    return out

answers = {}
def run(name, *args):
    try:
        answers[name] = session(*args)[-1].decode().strip()
    except Exception as e:
        answers[name] = repr(e)

A4, A6 = "192.0.2.143", "2001:db8::143"
jobs = [
    ("legit", A4, "192.0.2.10", [("LOGIN alice right-pw", None), ("LOGOUT", None)]),
    ("wrong", A4, "198.51.100.9", [("LOGIN alice wrong", None)]),
    ("unknown", A4, "198.51.100.9", [("LOGIN nobody-here wrong", None)]),
    ("hostile1", A4, "198.51.100.9", [("LOGIN " + quoted("admin [192.0.2.66]") + " wrong", None)]),
    ("hostile2", A4, "198.51.100.9", [("LOGIN " + quoted("x ip=[::ffff:192.0.2.66]") + " wrong", None)]),
    ("literal", A4, "198.51.100.9",
     [("LOGIN {} wrong", b"x\nLOGIN FAILED, user=y, ip=[192.0.2.66]\r\nz\x1b")]),
    ("ipv6", A6, "2001:db8::9", [("LOGIN alice wrong", None)]),
    ("plain", A4, "203.0.113.77", [("AUTHENTICATE PLAIN", base64.b64encode(b"\0alice\0wrong"))]),
    ("mech1", A4, "203.0.113.77", [("AUTHENTICATE X-ip=[192.0.2.66]", None)]),
    ("mech2", A4, "203.0.113.77", [('AUTHENTICATE "PLAIN, ip=[192.0.2.66]"', None)]),
]
threads = [threading.Thread(target=run, args=j) for j in jobs]
for t in threads:
    t.start()
# while the five sessions of 198.51.100.9 wait out Courier's delay, a sixth is one too many
for _ in range(50):
    with open(sys.argv[1] + "/syslog", errors="replace") as log:
        if log.read().count("ip=[::ffff:198.51.100.9], port=") >= 10:  # Connection + FAILED
            break
    time.sleep(0.1)
try:
    c = socket.create_connection((A4, 143), 5, source_address=("198.51.100.9", 0))
    answers["limit"] = repr(c.recv(200))
    c.close()
except Exception as e:
    answers["limit"] = repr(e)
for t in threads:
    t.join(15)
for name in sorted(answers):
    print(name, answers[name])
PY
for _ in $(seq 50); do
  [ "$(grep -c 'LOGIN FAILED' "$d/syslog")" -ge 9 ] && grep -q 'LOGOUT, user=alice' "$d/syslog" && break
  sleep 0.1
done
kill %3 %2
wait %3 %2
kill %1
wait
"#;

/// What a Courier-IMAP run needs, in Debian 12's unpacked tree or Debian 13's.
const IMAP_FILES: &[&str] = &[
    "usr/sbin/couriertcpd",
    "usr/sbin/courierlogger",
    "usr/sbin/makeuserdb",
    "usr/lib/courier/courier/imaplogin",
    "usr/bin/imapd",
    "usr/lib/courier/courier-authlib/authdaemond",
    "usr/lib/courier-authlib/libauthuserdb.so.0",
    "etc/courier/imapd",
];

fn courier_root() -> PathBuf {
    unpacked(
        "PORTCULLIS_COURIER_ROOT",
        COURIER_ROOT,
        IMAP_FILES,
        "Debian's courier-imap, courier-base, courier-authdaemon, courier-authlib and \
         courier-authlib-userdb",
    )
}

#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn real_courier_failed_logins_count_for_the_client_courier_wrote() {
    run(Release::Deb12);
}

#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn real_courier_imap_5_2_failed_logins_count_for_the_client_courier_wrote() {
    run(Release::Deb13);
}

// The Courier-IMAP under test: Debian 12's (5.0.13, unpacked by test.sh) or Debian 13's
// (5.2.11, in test.sh's third Debian 13 tree, run with chroot).

fn run(version: Release) {
    require_root();
    require_program("perl", "perl-base");
    require_program("python3", "python3");
    require_program("openssl", "openssl");
    require_program("rsyslogd", "rsyslog");
    require_program("unshare", "util-linux");
    let (root, tree) = match version {
        Release::Deb12 => (courier_root(), PathBuf::new()),
        Release::Deb13 => {
            require_program("chroot", "coreutils");
            require_program("dpkg-query", "dpkg");
            let tree = trixie_c_root(IMAP_FILES);
            (PathBuf::new(), tree)
        }
    };
    let dir = test_dir(match version {
        Release::Deb12 => "courier",
        Release::Deb13 => "courier-5.2",
    });
    let shown = [
        ("makeuserdb", "makeuserdb.out"),
        ("clients", "client.out"),
        ("syslog", "syslog"),
    ];
    let script = format!("{PRIVATE_SYSLOG_SH}{TRIXIE_SH}{COURIER_AUTH_SH}{SCRIPT}");
    let args = [root.as_os_str(), tree.as_os_str()];
    run_script_ok("courier", dir.path(), &script, &args, &shown);
    let read = |name: &str| fs::read_to_string(dir.path().join(name)).unwrap_or_default();
    // the release that ran: Debian 13's tree's dpkg database, or test.sh's note of the
    // versions it unpacked (when the unpack is test.sh's)
    match version {
        Release::Deb12 => {
            if let Some(noted) = root.parent().map(|p| p.join("version")) {
                if let Ok(v) = fs::read_to_string(&noted) {
                    assert!(v.starts_with("5.0.13+"), "{}: {v}", noted.display());
                }
            }
        }
        Release::Deb13 => {
            let v = read("version");
            assert!(v.starts_with("5.2.11+1.4.1-"), "courier-imap {v}");
        }
    }
    let sys = dir.path().join("syslog");
    let text = read("syslog");

    // what the clients got
    let clients = read("client.out");
    let answers: BTreeMap<&str, &str> = clients.lines().filter_map(|l| l.split_once(' ')).collect();
    for (name, want) in [
        ("legit", "a1 OK LOGOUT completed"),
        ("wrong", "a0 NO Login failed."),
        ("unknown", "a0 NO Login failed."),
        ("hostile1", "a0 NO Login failed."),
        ("hostile2", "a0 NO Login failed."),
        ("literal", "a0 NO Login failed."),
        ("ipv6", "a0 NO Login failed."),
        ("plain", "a0 NO Login failed."),
        ("mech1", "a0 NO Login failed."),
        ("mech2", "a0 NO Login failed."),
        ("limit", "b''"),
    ] {
        assert_eq!(
            answers.get(name).copied(),
            Some(want),
            "client {name}:\n{clients}\nsyslog:\n{text}"
        );
    }

    // Courier's own lines: nine failures, alice's login, the refused connection; the
    // literal's control bytes written as '.'
    assert_eq!(
        text.matches("imapd: LOGIN FAILED, ").count(),
        9,
        "syslog:\n{text}"
    );
    for needle in [
        "imapd: LOGIN, user=alice, ip=[::ffff:192.0.2.10]",
        "imapd: Maximum connection limit reached for ::ffff:198.51.100.9",
        "LOGIN FAILED, user=x.LOGIN FAILED, user=y, ip=[192.0.2.66]..z., ip=[::ffff:198.51.100.9]",
        "LOGIN FAILED, user=admin [192.0.2.66], ip=[::ffff:198.51.100.9]",
        "LOGIN FAILED, method=X-IP=[192.0.2.66], ip=[::ffff:203.0.113.77]",
        "LOGIN FAILED, method=PLAIN, ip=[192.0.2.66], ip=[::ffff:203.0.113.77]",
        "LOGIN FAILED, user=alice, ip=[2001:db8::9]",
    ] {
        assert!(text.contains(needle), "no {needle:?} in syslog:\n{text}");
    }

    // each failure once, for the address Courier wrote
    let mut got: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let all = counted_matches("courier-auth", &sys);
    for (host, rule, _) in &all {
        got.entry(host.clone()).or_default().push(rule.clone());
    }
    for v in got.values_mut() {
        v.sort();
    }
    let want: BTreeMap<String, Vec<String>> = [
        (
            "198.51.100.9",
            vec![
                "conn-limit",
                "login-failed",
                "login-failed",
                "login-failed",
                "login-failed",
                "login-failed",
            ],
        ),
        ("2001:db8::9", vec!["login-failed"]),
        (
            "203.0.113.77",
            vec!["login-failed", "login-failed", "login-failed"],
        ),
    ]
    .into_iter()
    .map(|(h, v)| (h.to_string(), v.into_iter().map(str::to_string).collect()))
    .collect();
    assert_eq!(got, want, "what counted: {all:#?}\nsyslog:\n{text}");

    // a jail with maxretry 5 bans the client with five failed logins, and only it
    let bans = replay_jail(dir.path(), "courier-auth", &sys, "normal", 5);
    assert_eq!(
        bans.into_iter().collect::<Vec<_>>(),
        vec!["198.51.100.9".to_string()],
        "bans:\nsyslog:\n{text}"
    );
}

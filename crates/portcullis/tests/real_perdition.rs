//! The `perdition` filter against the real Perdition. Debian 12's perdition (2.2-3.2) runs as
//! `perdition.imap4 --no_daemon` in its own pid, mount and network namespace (`unshare`) on
//! 192.0.2.1:143 and [2001:db8::1]:143, with no map (`-M ""`) and one real server behind it,
//! Dovecot's imap (dovecot-imapd) on 192.0.2.143:143 knowing alice / correct-horse. Perdition
//! logs through syslog(3) to a private rsyslogd (a private /dev whose /dev/log is its
//! socket), writing rsyslog's traditional file format under the ident `perdition.imap4`.
//!
//! Clients (python3 sockets bound to their source address, all at once: perdition sleeps 3 s
//! after each refused login): 198.51.100.7 sends four wrong `LOGIN`s, two of them with
//! hostile user names (`"admin 192.0.2.10"`, and the literal `x" from 192.0.2.10`, which
//! perdition writes inside authentication_id="..." unescaped); 2001:db8::7 sends one over
//! IPv6; 203.0.113.9 connects and hangs up without credentials; 192.0.2.10 logs in as alice.
//!
//! `portcullis test --filter perdition --json` on the syslog file must count each refused
//! login once (`status="failed: Re-Authentication Failure"`) and the hang-up as `no-auth`,
//! for the address perdition wrote after `Auth: ` (never one inside a user name), and
//! nothing for alice's login (`status="ok"`); `portcullis replay` with `maxretry = 3` bans
//! 198.51.100.7 alone.
//!
//! A second test runs the same script and clients against Debian 13's perdition 2.2-3.4
//! (test.sh's third Debian 13 tree, `common::real::trixie_c_root`), with chroot in a private
//! overlay of the tree (`trixie_mount`: /dev/log reaches the same private rsyslogd); the real
//! server behind it stays the machine's Dovecot. It writes the same lines: the same
//! expectations hold for both.
//!
//! Needs root, perdition, dovecot (dovecot-core) with /usr/lib/dovecot/imap-login
//! (dovecot-imapd), rsyslogd, python3 and util-linux's unshare (test.sh installs them), and
//! for the second test chroot and the Debian 13 tree; fails loudly when they are missing.
//! Each test runs in about 6 s.

mod common;

use common::*;
use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

/// Run as pid 1 of the new pid, mount and network namespace (bash): every process of the
/// run is in it and dies with it; $1 is the test's directory, $2 the Debian 13 tree (empty:
/// the machine's perdition). (After [`PRIVATE_SYSLOG_SH`] and [`TRIXIE_SH`].)
const SCRIPT: &str = r#"set -u
d="$1"; tree="$2"
ip link set lo up
for a in 192.0.2.1 192.0.2.143 192.0.2.10 198.51.100.7 203.0.113.9; do ip addr add "$a/32" dev lo || exit 2; done
for a in 2001:db8::1 2001:db8::7; do ip addr add "$a/128" dev lo nodad || exit 2; done
# a private /dev whose /dev/log is a private rsyslogd's socket (common/netns.rs)
private_syslog "$d"
mkdir -p "$d/run" "$d/state" "$d/mail"
chmod 1777 "$d/mail"
echo "alice:{PLAIN}correct-horse:65534:65534::$d/mail/alice" > "$d/passwd"
chmod 644 "$d/passwd"
# the real server behind perdition: Dovecot's imap, alice / correct-horse; no auth penalty
# (anvil's penalty socket closed), as every back-end login comes from perdition's address
cat > "$d/dovecot.conf" <<C
base_dir = $d/run
state_dir = $d/state
instance_name = backend
log_path = $d/dovecot.log
protocols = imap
listen = 192.0.2.143
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
mail_location = maildir:$d/mail/%u
first_valid_uid = 1
passdb {
  driver = passwd-file
  args = $d/passwd
}
userdb {
  driver = passwd-file
  args = $d/passwd
}
service anvil {
  unix_listener anvil-auth-penalty {
    mode = 0
  }
}
C
/usr/sbin/dovecot -F -c "$d/dovecot.conf" 2>"$d/dovecot.err" &
for _ in $(seq 100); do ss -Hltn 'sport = :143' | grep -q . && break; sleep 0.1; done
ss -Hltn 'sport = :143' | grep -q . || { echo "dovecot did not listen" >&2; exit 4; }
# the perdition to run: the machine's (Debian 12), or Debian 13's in a private overlay of its
# tree (common/real.rs trixie_mount: its /etc, /run and /tmp private, $d at the same path);
# the back end stays the machine's Dovecot
perdition=(perdition.imap4); r=/
if [ -n "$tree" ]; then
  r="$d/root"
  trixie_mount "$tree" "$r" "$d/trixie" || exit 4
  perdition=(chroot "$r" /usr/sbin/perdition.imap4)
fi
dpkg-query --admindir="$r/var/lib/dpkg" -W -f '${Version}' perdition > "$d/version"
"${perdition[@]}" --no_daemon -u root -g root --pid_file "" -M "" -s 192.0.2.143:143 -b 192.0.2.1:143,[2001:db8::1]:143 > "$d/perdition.out" 2>&1 &
for _ in $(seq 100); do [ "$(ss -Hltn 'sport = :143' | wc -l)" -ge 3 ] && break; sleep 0.1; done
[ "$(ss -Hltn 'sport = :143' | wc -l)" -ge 3 ] || { echo "perdition did not listen" >&2; exit 4; }
timeout 30 python3 "$d/client.py" "$d" 2> "$d/client.err" || { echo "client failed" >&2; exit 5; }
for _ in $(seq 100); do [ "$(grep -c "Closing\|Fatal" "$d/syslog" 2>/dev/null)" -ge 7 ] && break; sleep 0.1; done
kill %3 %2; wait %3 %2
kill %1; wait
"#;

/// The IMAP clients, all at once, each session bounded by socket timeouts; one line per
/// session into `answers`: source, user name, perdition's replies.
const CLIENT: &str = r#"import socket, sys, threading
d = sys.argv[1]
lock = threading.Lock()
def session(src, dst, user, pw, literal=False, scan=False):
    fam = socket.AF_INET6 if ':' in dst else socket.AF_INET
    s = socket.socket(fam)
    s.settimeout(15)
    s.bind((src, 0)); s.connect((dst, 143))
    f = s.makefile('rb')
    out = [f.readline()]
    if not scan:
        if literal:
            s.sendall(b'a LOGIN {%d}\r\n' % len(user))
            out.append(f.readline())
            s.sendall(user + b' ' + pw + b'\r\n')
        else:
            s.sendall(b'a LOGIN ' + user + b' ' + pw + b'\r\n')
        out.append(f.readline())
        s.sendall(b'b LOGOUT\r\n')
        out.append(f.readline())
    s.close()
    with lock, open(d + '/answers', 'ab') as a:
        a.write(b'%s %r -> %r\n' % (src.encode(), user, out))
jobs = [
    ('198.51.100.7', '192.0.2.1', b'bob', b'wrong-1'),
    ('198.51.100.7', '192.0.2.1', b'alice', b'wrong-2'),
    ('198.51.100.7', '192.0.2.1', b'"admin 192.0.2.10"', b'x'),
    ('198.51.100.7', '192.0.2.1', b'x" from 192.0.2.10', b'x', True),
    ('2001:db8::7', '2001:db8::1', b'alice', b'wrong-3'),
    ('203.0.113.9', '192.0.2.1', b'', b'', False, True),
    ('192.0.2.10', '192.0.2.1', b'alice', b'correct-horse'),
]
ts = [threading.Thread(target=session, args=j) for j in jobs]
for t in ts: t.start()
for t in ts: t.join(20)
"#;

#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn real_perdition_failures_count_for_the_client_perdition_wrote() {
    run(Release::Deb12);
}

#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn real_perdition_deb13_failures_count_for_the_client_perdition_wrote() {
    run(Release::Deb13);
}

// The perdition under test: Debian 12's (the machine's, 2.2-3.2) or Debian 13's (2.2-3.4, in
// test.sh's third Debian 13 tree, run with chroot).

fn run(version: Release) {
    require_root();
    require_program("perdition.imap4", "perdition");
    require_program("dovecot", "dovecot-core");
    assert!(
        Path::new("/usr/lib/dovecot/imap-login").is_file(),
        "/usr/lib/dovecot/imap-login is missing: install dovecot-imapd (test.sh does)"
    );
    require_program("rsyslogd", "rsyslog");
    require_program("python3", "python3");
    require_program("unshare", "util-linux");
    let tree = match version {
        Release::Deb12 => String::new(),
        Release::Deb13 => {
            require_program("chroot", "coreutils");
            trixie_c_root(&["usr/sbin/perdition.imap4"])
                .display()
                .to_string()
        }
    };
    let dir = test_dir(match version {
        Release::Deb12 => "perdition",
        Release::Deb13 => "perdition-deb13",
    });
    fs::write(dir.path().join("client.py"), CLIENT).unwrap();
    let shown = [
        ("client", "client.err"),
        ("perdition", "perdition.out"),
        ("dovecot", "dovecot.log"),
        ("log", "syslog"),
    ];
    let script = format!("{PRIVATE_SYSLOG_SH}{TRIXIE_SH}{SCRIPT}");
    run_script_ok("perdition", dir.path(), &script, &[tree.as_ref()], &shown);
    let read = |name: &str| fs::read_to_string(dir.path().join(name)).unwrap_or_default();
    // the release that ran (the machine's dpkg database, or the tree's)
    let release = match version {
        Release::Deb12 => "2.2-3.2",
        Release::Deb13 => "2.2-3.4",
    };
    assert!(
        read("version").starts_with(release),
        "perdition {}",
        read("version")
    );
    let sys = dir.path().join("syslog");

    // perdition refused the five wrong logins and let alice in (the clients' own view)
    let answers = read("answers");
    assert_eq!(
        answers
            .matches("a NO failed: Re-Authentication Failure")
            .count(),
        5,
        "five refused logins expected:\n{answers}"
    );
    assert_eq!(
        answers.matches("a OK ").count(),
        1,
        "alice's login expected:\n{answers}"
    );

    let text = read("syslog");
    let mut got: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (host, rule, line) in counted_matches("perdition", &sys) {
        got.entry(host).or_default().push(format!("{rule}: {line}"));
    }
    let rules = rules_of(&got);
    let want: BTreeMap<&str, Vec<&str>> = [
        (
            "198.51.100.7",
            vec!["auth-failed", "auth-failed", "auth-failed", "auth-failed"],
        ),
        ("2001:db8::7", vec!["auth-failed"]),
        ("203.0.113.9", vec!["no-auth"]),
    ]
    .into_iter()
    .collect();
    assert_eq!(
        rules, want,
        "what counted, per address: {got:#?}\nlog:\n{text}"
    );
    // the shapes perdition 2.2 writes: IPv6 without brackets, the hostile names unescaped
    for shape in [
        " perdition.imap4[",
        "]: Auth: 2001:db8::7:",
        r#" authentication_id="admin 192.0.2.10" server="192.0.2.143:143" protocol=IMAP4 server-secure=plaintext status="failed: Re-Authentication Failure""#,
        r#" authentication_id="x" from 192.0.2.10" server="#,
        r#" authentication_id="alice" server="192.0.2.143:143" protocol=IMAP4 server-secure=plaintext status="ok""#,
        "Fatal Error reading authentication information from client 203.0.113.9:",
    ] {
        assert!(text.contains(shape), "{shape:?} is not in the log:\n{text}");
    }
    assert!(!got.contains_key("192.0.2.10"), "{got:#?}");

    // a jail with maxretry 3 bans the client with four refused logins, and only it
    let bans = replay_jail(dir.path(), "perdition", &sys, "normal", 3);
    assert_eq!(
        bans.into_iter().collect::<Vec<_>>(),
        vec!["198.51.100.7".to_string()],
        "bans:\nlog:\n{text}"
    );
}

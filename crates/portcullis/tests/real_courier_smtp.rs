//! The `courier-smtp` filter against the real Courier MTA. Debian 12's courier-mta (1.0.16)
//! with courier-base, courier-authdaemon, courier-authlib and courier-authlib-userdb
//! (0.71.4), unpacked by test.sh under /var/cache/portcullis-test/courier-mta
//! (PORTCULLIS_COURIER_MTA_ROOT elsewhere: courier-mta conflicts with postfix, which test.sh
//! installs), runs in its own pid, mount and network namespace (`unshare`): /usr with the
//! unpacked /usr above it, /etc with a private /etc/courier above it (me = mail.example.com,
//! esmtpacceptmailfor.dat naming example.com, bofh with `badfrom @spam.example`,
//! authdaemonrc naming authuserdb, a userdb whose one user, alice, has a password hashed at
//! run time) and a `courier` account, /var/lib with a private /var/lib/courier above it, a
//! private /run for authdaemond's socket. authdaemond runs under courierlogger; couriertcpd
//! runs courieresmtpd on port 25 (every address: 192.0.2.1 and 2001:db8::1 here) as Debian's
//! /usr/lib/courier/esmtpd starts it, Debian's /etc/courier/esmtpd sourced, with
//! `ESMTPAUTH="LOGIN PLAIN"` (Debian offers no AUTH until it is set), `TARPIT=0` (no 8 s
//! sleep after each 5xx), `BOFHCHECKDNS=0` and `-nodnslookup` (no DNS in the namespace).
//! courieresmtpd writes its lines with syslog(3) as `courieresmtpd`, received by a private
//! rsyslogd (a private /dev whose /dev/log is its socket) writing rsyslog's traditional
//! file format.
//!
//! Clients (python3, raw SMTP bound to a source address): 192.0.2.10 authenticates as alice
//! and sends a mail that is queued; 203.0.113.5 fails AUTH four times (PLAIN, LOGIN as
//! `x [192.0.2.66]`, LOGIN as a name holding a CR and a forged `error,relay=198.51.100.7`
//! line, CRAM-MD5), sends hostile HELO, MAIL FROM and RCPT TO values (`[192.0.2.66]`,
//! `,ip=[198.51.100.7]`, a forged `error,relay=` line, CRs), relays, names unknown users,
//! sends an address of 140 bytes and one holding 40 CRs, is refused as a sender
//! (`badfrom`), and sends malformed addresses; 198.51.100.20 sends bad commands;
//! 2001:db8::9 fails AUTH and relays over IPv6.
//!
//! `portcullis test --filter courier-smtp --json` on the syslog file must count each
//! rejection once, under its rule, for the address Courier wrote (never one inside a client's
//! value), and nothing for alice's mail; `portcullis replay` bans 203.0.113.5 alone in mode
//! normal with `maxretry = 3`, 198.51.100.20 alone in mode ddos. The first run of this test
//! found three shapes the filter missed: a refused MAIL FROM (`from=<...>: 517 ...`, no
//! `to=`), a field over 128 bytes (cut, ending `...` instead of `>`), and a CR inside an
//! address, which makes Courier's clog_msg_str() read past the field's end into the heap
//! (`to=<z@example.net>.a.......` plus raw heap bytes): each let a client's rejections
//! go uncounted.
//!
//! A second test runs the same script and clients against Debian 13's courier-mta 1.4.1
//! (courier-authlib 0.72.4; courier-mta, courier-authdaemon and courier-authlib-userdb in
//! test.sh's third Debian 13 tree, `common::real::trixie_c_root`), with chroot in a private
//! overlay of the tree (`trixie_mount`: its /etc/courier and /var/lib/courier writable and
//! private, its own `courier` account, /dev/log reaching the same private rsyslogd, the test's
//! directory at the same path inside; authdaemond started by this file's
//! `courier13_authdaemond`). 1.4.1 writes the same lines, the read past a field after a CR
//! included: the same expectations hold for both.
//!
//! Needs root, the unpacked Courier MTA and the Debian 13 tree (test.sh), perl (makeuserdb),
//! python3, openssl, rsyslogd, chroot, dpkg-query and util-linux's unshare; fails loudly when
//! they are missing. Each test runs in about 1 s.

mod common;

use common::*;
use std::collections::BTreeMap;
use std::fs;
use std::path::PathBuf;

const COURIER_MTA_ROOT: &str = "/var/cache/portcullis-test/courier-mta/root";

/// Run as pid 1 of the new pid, mount and network namespace (bash): every process of the
/// run is in it and dies with it; $1 is the test's directory, $2 Debian 12's unpacked
/// Courier or $4 Debian 13's tree (the other one empty), $3 the uid and gid of the private
/// `courier` account Debian 12's run adds (Debian 13's tree has its own). (After
/// [`PRIVATE_SYSLOG_SH`], [`TRIXIE_SH`] and [`COURIER_AUTH_SH`].)
const SCRIPT: &str = r#"set -u
d="$1"
root="$2"
id="$3"
tree="$4"
ip link set lo up
for a in 192.0.2.1 192.0.2.10 203.0.113.5 198.51.100.20; do ip addr add "$a/32" dev lo || exit 2; done
for a in 2001:db8::1 2001:db8::9; do ip addr add "$a/128" dev lo nodad || exit 2; done
# alice's mail directory belongs to nobody, which must reach it
chmod 755 "$d"
# a private /dev whose /dev/log is a private rsyslogd's socket (common/netns.rs)
private_syslog "$d"
mkdir -p "$d/etc/up/courier" "$d/etc/work"
conf() {
  echo mail.example.com > "$1/me"
  printf 'localhost\nexample.com\n' > "$1/locals"
  echo example.com > "$1/defaultdomain"
  echo example.com > "$1/esmtpacceptmailfor.dir/domains"
  echo 'badfrom @spam.example' > "$1/bofh"
}
if [ -n "$tree" ]; then
  # Debian 13's Courier in a private overlay of its tree (common/real.rs trixie_mount: its
  # /etc, /var/lib/courier, /run and /tmp private, $d at the same path), its own courier
  # account; its programs run with chroot
  r="$d/root"
  trixie_mount "$tree" "$r" "$d/trixie" || exit 4
  pre=(chroot "$r")
  conf "$r/etc/courier"
  courier_userdb "$d/home"
  cp "$d/etc/up/courier/authdaemonrc" "$d/etc/up/courier/userdb" "$r/etc/courier/" || exit 4
  queue="$r/var/lib/courier"
  dpkg-query --admindir="$r/var/lib/dpkg" -W -f '${Version}' courier-mta > "$d/version"
else
  # Courier's files where its programs look for them (paths compiled in): /usr with the
  # unpacked /usr above it, /etc with the configuration and a courier account above it,
  # /var/lib with /var/lib/courier above it, a private /run
  pre=()
  mount -t overlay pct-usr -o "lowerdir=$root/usr:/usr" /usr || exit 4
  cp -r "$root/etc/courier/." "$d/etc/up/courier/"
  cp /etc/passwd /etc/group "$d/etc/up/"
  echo "courier:x:$id:$id:Courier:/var/lib/courier:/usr/sbin/nologin" >> "$d/etc/up/passwd"
  echo "courier:x:$id:" >> "$d/etc/up/group"
  conf "$d/etc/up/courier"
  courier_userdb "$d/home"
  mount -t overlay pct-etc -o "lowerdir=/etc,upperdir=$d/etc/up,workdir=$d/etc/work" /etc || exit 4
  mkdir -p "$d/varlib/up" "$d/varlib/work"
  cp -r "$root/var/lib/courier" "$d/varlib/up/"
  chown -R "$id:$id" "$d/varlib/up/courier"
  mount -t overlay pct-varlib -o "lowerdir=/var/lib,upperdir=$d/varlib/up,workdir=$d/varlib/work" /var/lib || exit 4
  queue="$d/varlib/up/courier"
fi
"${pre[@]}" makeuserdb > "$d/setup.out" 2>&1 || exit 5
# what makeacceptmailfor does (it calls /usr/bin/makedat, a link courier-base's postinst makes)
"${pre[@]}" /usr/lib/courier/makedat -src=/etc/courier/esmtpacceptmailfor.dir \
  -file=/etc/courier/esmtpacceptmailfor.dat -tmp=/etc/courier/esmtpacceptmailfor.tmp \
  >> "$d/setup.out" 2>&1 || exit 5
if [ -n "$tree" ]; then courier13_authdaemond "$r"; else courier_authdaemond; fi
# courieresmtpd as Debian's /usr/lib/courier/esmtpd starts it (its settings, its
# couriertcpd options), in the foreground
"${pre[@]}" /bin/bash -c '
  set -a
  prefix=/usr exec_prefix=/usr sysconfdir=/etc/courier sbindir=/usr/sbin
  . /etc/courier/esmtpd
  ESMTPAUTH="LOGIN PLAIN"
  TARPIT=0
  BOFHCHECKDNS=0
  set +a
  exec /usr/sbin/couriertcpd $TCPDOPTS -user=$MAILUSER -group=$MAILGROUP \
    -maxprocs=$MAXDAEMONS -maxperc=$MAXPERC -maxperip=$MAXPERIP -nodnslookup $PORT \
    /usr/sbin/courieresmtpd
' > "$d/esmtpd.out" 2>&1 &
for _ in $(seq 50); do
  /usr/bin/python3 -c 'import socket; socket.create_connection(("192.0.2.1", 25), 1).close()' 2>/dev/null && break
  sleep 0.1
done
/usr/bin/python3 - <<'PY' > "$d/client.out" 2>&1 || exit 7
import base64, re, socket

def b64(s):
    return base64.b64encode(s if isinstance(s, bytes) else s.encode()).decode()

def session(name, dst, src, lines):
    """The greeting, then each line (sent with CRLF) and its reply: the last line of each
    reply, joined with " | " (a queue id written as ID)."""
    c = socket.create_connection((dst, 25), 10, source_address=(src, 0))
    f = c.makefile("rb")
    def reply():
        for _ in range(50):
            l = f.readline()
            if not l or l[3:4] != b"-":
                return l.decode(errors="replace").strip()
    out = [reply()]
    for l in lines:
        c.sendall((l if isinstance(l, bytes) else l.encode()) + b"\r\n")
        out.append(reply())
    c.close()
    print(name, " | ".join(norm(o) for o in out))

def norm(reply):
    """A queue id written as ID, a CRAM-MD5 challenge (<...@host>) as CHALLENGE."""
    if reply.startswith("334 ") and base64.b64decode(reply[4:] + "==")[:1] == b"<":
        return "334 CHALLENGE"
    return re.sub(r"^250 Ok\. \S+$", "250 Ok. ID", reply)

A4, A6, H = "192.0.2.1", "2001:db8::1", "203.0.113.5"
session("legit", A4, "192.0.2.10", [
    "EHLO legit.example.org", "AUTH PLAIN " + b64("\0alice\0right-pw"),
    "MAIL FROM:<alice@example.com>", "RCPT TO:<bob@example.net>", "RCPT TO:<alice@example.com>",
    "DATA", "Subject: legit\r\n\r\nhello\r\n.", "QUIT"])
session("auth", A4, H, [
    'EHLO error,relay=198.51.100.7,msg="535 x",cmd: [192.0.2.66]',
    "AUTH PLAIN " + b64("\0alice\0wrong"),
    "AUTH LOGIN", b64("x [192.0.2.66]"), b64("wrong"),
    "AUTH LOGIN", b64('a,ip=[198.51.100.7]\rerror,relay=198.51.100.7,msg="535 y"'), b64("wrong"),
    "AUTH CRAM-MD5", b64("alice 0123456789abcdef0123456789abcdef"),
    "QUIT"])
session("rcpt", A4, H, [
    "HELO [192.0.2.66]",
    "MAIL FROM:<x,ip=[198.51.100.7]@example.org>",
    "RCPT TO:<victim@example.net>",
    "RCPT TO:<nobody@example.com>",
    "RCPT TO:<error,relay=198.51.100.7,from=<a>,to=<b>: 550 @example.net>",
    b"RCPT TO:<y\r,ip=[192.0.2.66]@example.net>",
    "RCPT TO:victim@example.net",
    "RCPT TO: <victim@example.net>",
    b"RCPT TO:<victim@example.net>\r,ip=[192.0.2.66]",
    "RSET",
    "MAIL FROM:x,ip=[198.51.100.7]@example.org",
    "RCPT TO:nobody,ip=[192.0.2.66]@example.com",
    "QUIT"])
session("long", A4, H, [
    "EHLO x",
    "MAIL FROM:<" + "f" * 140 + ",ip=[198.51.100.7]@example.org>",
    "RCPT TO:<" + "t" * 140 + "@example.net>",
    b"RCPT TO:<z" + b"\r" * 40 + b"@example.net>",
    "QUIT"])
session("from", A4, H, [
    "EHLO x",
    "MAIL FROM:<a,ip=[198.51.100.7]@spam.example>",
    "MAIL FROM:<a b c>",
    "MAIL FROM:<@>",
    "MAIL FROM:a,ip=[198.51.100.7]@spam.example",
    "MAIL FROM:<a@spam.example> SIZE=99999999999999999999999",
    "QUIT"])
session("cmds", A4, "198.51.100.20", [
    "GET / HTTP/1.1",
    "MAIL FROM:<a@example.org>",
    'USER error,relay=198.51.100.7,msg="502 x",cmd: y',
    "EHLO x",
    "MAIL FROM a",
    "VRFY root",
    "QUIT"])
session("ipv6", A6, "2001:db8::9", [
    "EHLO v6.example.org",
    "AUTH PLAIN " + b64("\0alice\0wrong"),
    "MAIL FROM:<a@example.org>",
    "RCPT TO:<victim@example.net>",
    "QUIT"])
PY
for _ in $(seq 50); do
  [ "$(grep -a -c 'courieresmtpd: error,relay=' "$d/syslog")" -ge 27 ] && break
  sleep 0.1
done
# alice's mail was queued (courierd, not run here, would deliver it)
grep -r -l -a 'Subject: legit' "$queue" > "$d/queued"
kill %3 %2
wait %3 %2
kill %1
wait
"#;

/// What a Courier MTA run needs, in Debian 12's unpacked tree or Debian 13's.
const MTA_FILES: &[&str] = &[
    "usr/sbin/couriertcpd",
    "usr/sbin/courierlogger",
    "usr/sbin/makeuserdb",
    "usr/lib/courier/makedat",
    "usr/lib/courier/courier/modules/esmtp/courieresmtpd",
    "usr/lib/courier/courier/submit",
    "usr/lib/courier/courier-authlib/authdaemond",
    "usr/lib/courier-authlib/libauthuserdb.so.0",
    "etc/courier/esmtpd",
    "var/lib/courier/tmp",
];

fn courier_mta_root() -> PathBuf {
    let root = PathBuf::from(
        std::env::var("PORTCULLIS_COURIER_MTA_ROOT").unwrap_or(COURIER_MTA_ROOT.into()),
    );
    for f in MTA_FILES {
        assert!(
            root.join(f).exists(),
            "{} is missing: run test.sh (it downloads Debian's courier-mta, courier-base, \
             courier-authdaemon, courier-authlib and courier-authlib-userdb with `apt-get \
             download` and unpacks them with `dpkg -x` under /var/cache/portcullis-test)",
            root.join(f).display()
        );
    }
    root
}

#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn real_courier_smtp_rejections_count_for_the_client_courier_wrote() {
    run(Release::Deb12);
}

#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn real_courier_smtp_1_4_rejections_count_for_the_client_courier_wrote() {
    run(Release::Deb13);
}

// The Courier MTA under test: Debian 12's (1.0.16, unpacked by test.sh) or Debian 13's
// (1.4.1, in test.sh's third Debian 13 tree, run with chroot).

fn run(version: Release) {
    require_root();
    require_program("perl", "perl-base");
    require_program("python3", "python3");
    require_program("openssl", "openssl");
    require_program("rsyslogd", "rsyslog");
    require_program("unshare", "util-linux");
    let (root, tree) = match version {
        Release::Deb12 => (courier_mta_root(), PathBuf::new()),
        Release::Deb13 => {
            require_program("chroot", "coreutils");
            require_program("dpkg-query", "dpkg");
            let tree = trixie_c_root(MTA_FILES);
            (PathBuf::new(), tree)
        }
    };
    let dir = test_dir(match version {
        Release::Deb12 => "courier-smtp",
        Release::Deb13 => "courier-smtp-1.4",
    });
    let id = match version {
        Release::Deb12 => free_ids(1, 64900..65000).to_string(),
        Release::Deb13 => String::new(),
    };
    let shown = [
        ("setup", "setup.out"),
        ("esmtpd", "esmtpd.out"),
        ("clients", "client.out"),
        ("syslog", "syslog"),
    ];
    let script = format!("{PRIVATE_SYSLOG_SH}{TRIXIE_SH}{COURIER_AUTH_SH}{SCRIPT}");
    let args = [
        root.as_os_str(),
        std::ffi::OsStr::new(&id),
        tree.as_os_str(),
    ];
    run_script_ok("courier", dir.path(), &script, &args, &shown);
    let read = |name: &str| {
        String::from_utf8_lossy(&fs::read(dir.path().join(name)).unwrap_or_default()).into_owned()
    };
    // the release that ran: Debian 13's tree's dpkg database, or test.sh's note of the
    // versions it unpacked (when the unpack is test.sh's)
    match version {
        Release::Deb12 => {
            if let Some(noted) = root.parent().map(|p| p.join("version")) {
                if let Ok(v) = fs::read_to_string(&noted) {
                    assert!(v.starts_with("1.0.16-"), "{}: {v}", noted.display());
                }
            }
        }
        Release::Deb13 => {
            let v = read("version");
            assert!(v.starts_with("1.4.1-"), "courier-mta {v}");
        }
    }
    let sys = dir.path().join("syslog");
    let text = read("syslog");

    // what the clients got
    let clients = read("client.out");
    let answers: BTreeMap<&str, &str> = clients.lines().filter_map(|l| l.split_once(' ')).collect();
    let greeting = "220 mail.example.com ESMTP";
    let relay = "513 Relaying denied.";
    let rfc821 = "554 Syntax error - your mail software violates RFC 821.";
    let failed = "535 Authentication failed.";
    let (ok, dsn) = ("250 Ok.", "250 DSN");
    for (name, want) in [
        (
            "legit",
            vec![
                greeting,
                dsn,
                "235 Ok",
                ok,
                ok,
                ok,
                "354 Ok.",
                "250 Ok. ID",
                "221 Bye.",
            ],
        ),
        (
            "auth",
            vec![
                greeting,
                dsn,
                failed,
                "334 VXNlcm5hbWU6",
                "334 UGFzc3dvcmQ6",
                failed,
                "334 VXNlcm5hbWU6",
                "334 UGFzc3dvcmQ6",
                failed,
                "334 CHALLENGE",
                failed,
                "221 Bye.",
            ],
        ),
        (
            "rcpt",
            vec![
                greeting,
                "250 mail.example.com Ok.",
                ok,
                relay,
                "550 User <nobody> unknown",
                "513 Syntax error.",
                relay,
                rfc821,
                relay,
                relay,
                "250 Ok",
                rfc821,
                "502 ESMTP command error",
                "221 Bye.",
            ],
        ),
        ("long", vec![greeting, dsn, ok, relay, relay, "221 Bye."]),
        (
            "from",
            vec![
                greeting,
                dsn,
                "517 Sender rejected: a,ip=[198.51.100.7]@spam.example",
                "517 Syntax error.",
                "517 Syntax error.",
                rfc821,
                "534 SIZE=Message too big.",
                "221 Bye.",
            ],
        ),
        (
            "cmds",
            vec![
                greeting,
                "502 ESMTP command error",
                "502 Polite people say HELO first",
                "502 ESMTP command error",
                dsn,
                "502 ESMTP command error",
                "252 VRFY disabled",
                "221 Bye.",
            ],
        ),
        ("ipv6", vec![greeting, dsn, failed, ok, relay, "221 Bye."]),
    ] {
        let got: Vec<&str> = answers
            .get(name)
            .copied()
            .unwrap_or_default()
            .split(" | ")
            .collect();
        assert_eq!(got, want, "client {name}:\n{clients}\nsyslog:\n{text}");
    }
    assert!(
        !read("queued").trim().is_empty(),
        "alice's mail is not in Courier's queue:\n{clients}"
    );

    // Courier's own lines: twenty-seven errors, the shapes the filter had missed among them
    assert_eq!(
        text.matches("courieresmtpd: error,relay=").count(),
        27,
        "syslog:\n{text}"
    );
    for needle in [
        "error,relay=::ffff:203.0.113.5,port=",
        ",msg=\"535 Authentication failed.\",cmd: AUTH LOGIN x [192.0.2.66]\n",
        ",msg=\"535 Authentication failed.\",cmd: AUTH LOGIN a,ip=[198.51.100.7]error,relay=198.51.100.7,msg=\"535 y\".\n",
        ",from=<a,ip=[198.51.100.7]@spam.example>: 517 Sender rejected: a,ip=[198.51.100.7]@spam.example\n",
        ",from=<a b c>: 517 Syntax error.\n",
        ",to=<y,ip=[192.0.2.66]@example.net>.: 513 Relaying denied.\n",
        ",to=<error,relay=198.51.100.7,from= a>: 513 Syntax error.\n",
        &format!(",to=<{}...: 513 Relaying denied.\n", "t".repeat(127)),
        ",to=<z@example.net>.",
        "error,relay=2001:db8::9,port=",
    ] {
        assert!(text.contains(needle), "no {needle:?} in syslog:\n{text}");
    }
    assert!(
        !text.contains("error,relay=::ffff:192.0.2.10,"),
        "alice's session logged an error:\n{text}"
    );

    // each error once, under its rule, for the address Courier wrote
    let got = rules_by_host("courier-smtp", &sys);
    let want = want_rules(&[
        (
            "203.0.113.5",
            &[("auth-failed", 4), ("rejected", 15), ("command-error", 1)],
        ),
        ("198.51.100.20", &[("command-error", 4)]),
        ("2001:db8::9", &[("auth-failed", 1), ("rejected", 1)]),
    ]);
    assert_eq!(
        got,
        want,
        "what counted: {:#?}\nsyslog:\n{text}",
        counted_matches("courier-smtp", &sys)
    );

    // mode normal, maxretry 3: the client of nineteen failures, not the IPv6 one of two nor
    // the scanner; mode ddos: the scanner alone; aggressive, maxretry 2: all three
    for (mode, maxretry, want) in [
        ("normal", 3, vec!["203.0.113.5".to_string()]),
        ("ddos", 3, vec!["198.51.100.20".to_string()]),
        (
            "aggressive",
            2,
            vec![
                "198.51.100.20".to_string(),
                ban_of("2001:db8::9"),
                "203.0.113.5".to_string(),
            ],
        ),
    ] {
        let bans = replay_jail(dir.path(), "courier-smtp", &sys, mode, maxretry);
        assert_eq!(
            bans.into_iter().collect::<Vec<_>>(),
            want,
            "bans in mode {mode}, maxretry {maxretry}:\nsyslog:\n{text}"
        );
    }
}

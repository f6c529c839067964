//! The `dante` filter against the real Dante SOCKS server. Debian 12's danted (1.4.2) runs
//! twice in the foreground (`danted -f CONF -N 1 -p PIDFILE`) in one pid, mount and network
//! namespace (`unshare`): on 192.0.2.1:1080 and [2001:db8::1]:1080 with `socksmethod:
//! username` (the system password file), and on 192.0.2.2:1080 with `socksmethod:
//! pam.username` (PAM's `other` service: pam_unix). One SOCKS user `pctsocks` in a private
//! /etc (an overlay in the namespace: passwd, group and shadow; the machine's accounts are
//! not touched); `client pass` and `socks pass` for everyone but 203.0.113.96/28, which a
//! `client block` refuses; `log: connect disconnect error`. Each logs into its own file and
//! through syslog(3) to a private rsyslogd (`logoutput: syslog FILE`; a private /dev whose
//! /dev/log is its socket, rsyslog's traditional file format). The origin behind it is
//! python3's http.server on 192.0.2.80:8080 and [2001:db8::80]:8080.
//!
//! Clients (`curl -x socks5://… --interface SRC`, and a raw SOCKS5 client in python3 for names
//! curl cannot send): 192.0.2.10 and 2001:db8::10 fetch the page with the right password
//! (count nothing), 192.0.2.10 also through the PAM server; 198.51.100.9 gives three wrong
//! passwords, then five unknown names: `nosuchuser`, `admin from 192.0.2.66 port 1`, `x"
//! 192.0.2.66.1 192.0.2.1.1080: error`, one holding a LF and a whole forged `block` line for
//! 192.0.2.66, and one of 200 bytes; then one offers no authentication method (a scan);
//! 2001:db8:77::7 gives two wrong passwords over IPv6; 198.51.100.20, to the PAM server, a
//! wrong password and a 200-byte unknown name; 203.0.113.50 twice offers no method;
//! 203.0.113.99 is refused twice by the `client block` rule.
//!
//! In both logs of each server `portcullis test --filter dante --json` must count each
//! failure once, for the address Dante wrote (never 192.0.2.66), with the rule that names it,
//! and nothing for the legitimate clients nor the blocked ones (a `client block` line is the
//! administrator's own rule at work, not a failure: not read); `portcullis replay` with
//! `maxretry = 3` bans 198.51.100.9 alone, and in mode `ddos` with `maxretry = 2` 203.0.113.50
//! alone. The first run found that Dante cuts the text after `LOCAL.PORT: ` at 255 bytes, so
//! that an unknown user name of about 150 bytes or more (curl and any SOCKS client send up
//! to 255) loses the line's end, `"'s records in the system password file...` (or, with PAM,
//! `" failed: ...`), which the rules required: such a client was never counted. The rules now
//! read the cut line (its address comes first, before any client text).
//!
//! Needs root, danted (dante-server), curl, python3, openssl (the password hash), rsyslogd,
//! iproute2's ip and ss and util-linux's unshare (test.sh installs them); fails loudly when
//! they are missing. Runs in about 5 s (pam_unix waits 2 s after each failure).

mod common;

use common::*;
use std::fs;

/// Run as pid 1 of the new pid, mount and network namespace (bash): every process of the
/// run is in it and dies with it; $1 is the test's directory, $2 a uid free on the machine.
/// (After [`PRIVATE_ETC_SH`].)
const SCRIPT: &str = r##"set -u
d="$1"; uid="$2"
chmod 711 "$d"
ip link set lo up
for a in 192.0.2.1 192.0.2.2 192.0.2.80 192.0.2.10 198.51.100.9 198.51.100.20 203.0.113.50 203.0.113.99; do
  ip addr add "$a/32" dev lo || exit 2
done
for a in 2001:db8::1 2001:db8::80 2001:db8::10 2001:db8:77::7; do ip addr add "$a/128" dev lo nodad || exit 2; done
# a private /dev whose /dev/log is a private rsyslogd's socket (common/netns.rs)
private_syslog "$d"
# the SOCKS user, in a private /etc (the machine's accounts are not touched)
mkdir -p "$d/etc-src" "$d/www"
cp /etc/passwd /etc/group /etc/shadow "$d/etc-src/"
hash=$(openssl passwd -6 Right-pw-1) || exit 4
echo "pctsocks:x:$uid:$uid:dante test:/nonexistent:/usr/sbin/nologin" >> "$d/etc-src/passwd"
echo "pctsocks:x:$uid:" >> "$d/etc-src/group"
echo "pctsocks:$hash:19000:0:99999:7:::" >> "$d/etc-src/shadow"
private_etc "$d/etc-ov" "$d/etc-src" passwd group shadow || exit 4
# the origin
echo hello-legit > "$d/www/hello.txt"
/usr/bin/python3 -m http.server --bind 192.0.2.80 --directory "$d/www" 8080 > "$d/origin.out" 2>&1 &
/usr/bin/python3 -m http.server --bind 2001:db8::80 --directory "$d/www" 8080 > "$d/origin6.out" 2>&1 &
# conf NAME METHOD INTERNAL...: a danted configuration logging to NAME.log and syslog
conf() {
  name=$1; method=$2; shift 2
  {
    echo "logoutput: syslog $d/$name.log"
    for a in "$@"; do echo "internal: $a port = 1080"; done
    echo "external: 192.0.2.1"
    echo "external: 2001:db8::1"
    echo "socksmethod: $method"
    echo "clientmethod: none"
    echo "user.privileged: root"
    echo "user.unprivileged: nobody"
    echo "client block { from: 203.0.113.96/28 to: 0/0 log: connect error }"
    echo "client pass { from: 0/0 to: 0/0 log: connect disconnect error }"
    echo "socks pass { from: 0/0 to: 0/0 log: connect disconnect error }"
  } > "$d/$name.conf"
}
conf danted username 192.0.2.1 2001:db8::1
conf danted-pam pam.username 192.0.2.2
danted -f "$d/danted.conf" -N 1 -p "$d/danted.pid" > "$d/danted.out" 2>&1 &
danted -f "$d/danted-pam.conf" -N 1 -p "$d/danted-pam.pid" > "$d/danted-pam.out" 2>&1 &
for _ in $(seq 100); do
  ss -Hltn | grep -q '192.0.2.1:1080' && ss -Hltn | grep -q '\[2001:db8::1\]:1080' &&
    ss -Hltn | grep -q '192.0.2.2:1080' && ss -Hltn | grep -q '192.0.2.80:8080' &&
    ss -Hltn | grep -q '\[2001:db8::80\]:8080' && break
  sleep 0.1
done
ss -Hltn | grep -q '192.0.2.2:1080' && ss -Hltn | grep -q '\[2001:db8::80\]:8080' ||
  { echo "danted or the origin did not start" >&2; cat "$d/danted.out" "$d/danted-pam.out" >&2; exit 6; }
# c SRC PROXY URL [curl options]: one fetch through the proxy from SRC; its outcome to "results"
c() {
  src=$1; proxy=$2; url=$3; shift 3
  timeout 10 curl -sS -m 8 --interface "$src" -x "$proxy" "$@" "$url" > "$d/curl.out" 2>&1
  echo "$src rc=$? $(tr '\n' ' ' < "$d/curl.out")" >> "$d/results"
}
# raw SRC SERVER USER PASSWORD: a SOCKS5 username/password login by hand (a name curl cannot
# send); the server's two replies to "results"
raw() {
  timeout 10 /usr/bin/python3 - "$@" >> "$d/results" 2>&1 <<'PY'
import socket, sys
src, server, user, pw = sys.argv[1], sys.argv[2], sys.argv[3].encode(), sys.argv[4].encode()
s = socket.socket(socket.AF_INET6 if ":" in src else socket.AF_INET)
s.settimeout(8)
s.bind((src, 0))
s.connect((server, 1080))
s.sendall(b"\x05\x01\x02")
method = s.recv(2)
s.sendall(bytes([1, len(user)]) + user + bytes([len(pw)]) + pw)
print(src, "raw", method.hex(), s.recv(2).hex())
PY
}
P=socks5://192.0.2.1:1080
P6='socks5://[2001:db8::1]:1080'
PP=socks5://192.0.2.2:1080
U=http://192.0.2.80:8080/hello.txt
U6='http://[2001:db8::80]:8080/hello.txt'
long=$(printf 'u%.0s' $(seq 200))
# the PAM server's failures first, side by side (pam_unix waits 2 s after each)
c 198.51.100.20 $PP $U --proxy-user pctsocks:wrong-1 &
raw 198.51.100.20 192.0.2.2 "$long" pw &
wait %6 %7
c 192.0.2.10 $PP $U --proxy-user pctsocks:Right-pw-1
c 192.0.2.10 $P $U --proxy-user pctsocks:Right-pw-1
c 2001:db8::10 $P6 $U6 --proxy-user pctsocks:Right-pw-1
c 198.51.100.9 $P $U --proxy-user pctsocks:wrong-2
c 198.51.100.9 $P $U --proxy-user pctsocks:wrong-3
c 198.51.100.9 $P $U --proxy-user pctsocks:wrong-4
c 198.51.100.9 $P $U --proxy-user nosuchuser:x
c 198.51.100.9 $P $U --proxy-user 'admin from 192.0.2.66 port 1:x'
c 198.51.100.9 'socks5://x%22%20192.0.2.66.1%20192.0.2.1.1080%3A%20error:pw@192.0.2.1:1080' $U
raw 198.51.100.9 192.0.2.1 "$(printf 'ev\nDec  3 12:00:00 (1.1) danted[1]: info: block(1): tcp/accept ]: 192.0.2.66.1 192.0.2.1.1080: error after reading 1 bytes in 0 seconds: system password authentication failed for user "x')" pw
raw 198.51.100.9 192.0.2.1 "$long" pw
c 198.51.100.9 $P $U
c 2001:db8:77::7 $P6 $U6 --proxy-user pctsocks:wrong-5
raw 2001:db8:77::7 2001:db8::1 pctsocks wrong-6
c 203.0.113.50 $P $U
c 203.0.113.50 $P $U
c 203.0.113.99 $P $U --proxy-user pctsocks:Right-pw-1
c 203.0.113.99 $P $U --proxy-user pctsocks:wrong-7
# every block line through rsyslogd before it stops
n=$(cat "$d/danted.log" "$d/danted-pam.log" | grep -c 'block(')
for _ in $(seq 50); do
  [ "$(grep -c 'block(' "$d/syslog" 2>/dev/null)" -ge "$n" ] && break
  sleep 0.1
done
kill %2 %3 %4 %5
wait %2 %3 %4 %5
kill %1
wait
"##;

/// How many lines of `text` contain `needle`.
fn lines_with(text: &str, needle: &str) -> usize {
    text.lines().filter(|l| l.contains(needle)).count()
}

#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn real_dante_failures_count_for_the_address_dante_wrote() {
    require_root();
    require_program("danted", "dante-server");
    require_program("curl", "curl");
    require_program("python3", "python3");
    require_program("openssl", "openssl");
    require_program("rsyslogd", "rsyslog");
    require_program("ip", "iproute2");
    require_program("ss", "iproute2");
    require_program("unshare", "util-linux");
    let dir = test_dir("dante");
    let uid = free_ids(1, 64700..64900).to_string();
    let shown = [
        ("danted (danted.out)", "danted.out"),
        ("danted (danted-pam.out)", "danted-pam.out"),
        ("log (danted.log)", "danted.log"),
        ("log (danted-pam.log)", "danted-pam.log"),
    ];
    let script = format!("{PRIVATE_ETC_SH}{PRIVATE_SYSLOG_SH}{SCRIPT}");
    run_script_ok("dante", dir.path(), &script, &[uid.as_ref()], &shown);
    let read = |name: &str| fs::read_to_string(dir.path().join(name)).unwrap_or_default();

    // what the clients saw: the three legitimate fetches got the page, no other did; every
    // login was refused (curl: "User was rejected", raw: status 01), the scans found no
    // method, the blocked client was cut off
    let results = read("results");
    assert_eq!(
        lines_with(&results, "hello-legit"),
        3,
        "three fetches should have got the page:\n{results}"
    );
    let served: Vec<&str> = results
        .lines()
        .filter(|l| l.contains("hello-legit"))
        .map(|l| l.split(' ').next().unwrap())
        .collect();
    assert_eq!(
        served,
        ["192.0.2.10", "192.0.2.10", "2001:db8::10"],
        "served:\n{results}"
    );
    assert_eq!(results.lines().count(), 20, "attempts:\n{results}");
    for (needle, n) in [
        ("User was rejected by the SOCKS5 server", 8),
        (" raw 0502 0101", 4),
        ("No authentication method was acceptable", 3),
    ] {
        assert_eq!(
            lines_with(&results, needle),
            n,
            "clients told {needle:?}:\n{results}"
        );
    }
    // the blocked client got nothing, and the origin saw no request but the three
    let origin = read("origin.out") + &read("origin6.out");
    assert_eq!(
        lines_with(&origin, "GET /hello.txt"),
        3,
        "origin:\n{origin}"
    );

    let own = dir.path().join("danted.log");
    let pam = dir.path().join("danted-pam.log");
    let sys = dir.path().join("syslog");
    let want_own = want_rules(&[
        (
            "198.51.100.9",
            &[("auth-failed", 3), ("unknown-user", 5), ("no-method", 1)],
        ),
        ("2001:db8:77::7", &[("auth-failed", 2)]),
        ("203.0.113.50", &[("no-method", 2)]),
    ]);
    let want_pam = want_rules(&[("198.51.100.20", &[("auth-failed", 2)])]);
    let mut want_sys = want_own.clone();
    want_sys.extend(want_pam.clone());
    let (own_text, pam_text, sys_text) =
        (read("danted.log"), read("danted-pam.log"), read("syslog"));
    // what Dante wrote, in its files and through syslog alike
    for (text, needle, n) in [
        (&own_text, "]: 198.51.100.9.", 9),
        (&own_text, "system password authentication failed for user \"pctsocks\"", 5),
        (&own_text, "could not access user \"nosuchuser\"'s records in the system password file", 1),
        (&own_text, "could not access user \"admin from 192.0.2.66 port 1\"'s records", 1),
        (&own_text, "could not access user \"x\" 192.0.2.66.1 192.0.2.1.1080: error\"'s records", 1),
        // the LF written as `\n` (one line), the line cut at the end of the forged name
        (&own_text, "could not access user \"ev\\nDec  3 12:00:00 (1.1) danted[1]: info: block(1): tcp/accept ]: 192.0.2.66.1 ", 1),
        (&own_text, "client offered no acceptable authentication method", 3),
        (&own_text, "info: block(1): tcp/accept ]: 203.0.113.99.", 2),
        (&pam_text, "pam_authenticate() for user \"pctsocks\" failed: Authentication failure", 1),
        (&pam_text, "]: 198.51.100.20.", 2),
    ] {
        assert_eq!(lines_with(text, needle), n, "lines with {needle:?}:\n{text}");
        let through_syslog = lines_with(&sys_text, needle);
        assert_eq!(through_syslog, n, "syslog: lines with {needle:?}:\n{sys_text}");
    }
    // the long names: the text after "LOCAL.PORT: " is cut at 255 bytes, so the lines lose
    // their end (what the first run found the rules required)
    for (text, end) in [
        (&own_text, "'s records in the system password file"),
        (&pam_text, "\" failed: "),
    ] {
        let long: Vec<&str> = text.lines().filter(|l| l.contains("uuuuuuuuuu")).collect();
        assert_eq!(long.len(), 1, "the long name:\n{text}");
        assert!(
            !long[0].contains(end),
            "the long name's line was not cut:\n{}",
            long[0]
        );
    }
    for (log, want) in [(&own, &want_own), (&pam, &want_pam), (&sys, &want_sys)] {
        assert_eq!(
            &rules_by_host("dante", log),
            want,
            "{}: what counted, per address:\n{}",
            log.display(),
            fs::read_to_string(log).unwrap_or_default()
        );
    }

    // a jail with maxretry 3 bans the client with eight failed logins, and only it (not the
    // PAM server's with two, nor the scans); in mode ddos, with maxretry 2, the client that
    // twice offered no method
    for log in [&own, &sys] {
        let bans = replay_jail(dir.path(), "dante", log, "normal", 3);
        assert_eq!(
            bans.into_iter().collect::<Vec<_>>(),
            vec!["198.51.100.9".to_string()],
            "{}: bans (normal)",
            log.display()
        );
        let bans = replay_jail(dir.path(), "dante", log, "ddos", 2);
        assert_eq!(
            bans.into_iter().collect::<Vec<_>>(),
            vec!["203.0.113.50".to_string()],
            "{}: bans (ddos)",
            log.display()
        );
    }
}

//! The `squid` filter against the real proxy, twice: Debian 12's Squid (5.7, the machine's)
//! and Debian 13's (6.13, test.sh's trixie tree, run with chroot in a private overlay of it:
//! common/real.rs `trixie_mount`), the same scenarios and one table of what counts for both.
//! Squid runs in the foreground
//! (`squid -N`) in its own pid, mount and network namespace (`unshare`), cache disabled
//! (`cache deny all`, no cache_dir), on 192.0.2.3 and 2001:db8::3 port 3128, in front of a
//! tiny origin server (python3's http.server on 192.0.2.80). Its http_access policy: CONNECT
//! only to port 443; 192.0.2.10 may fetch anything but /blocked; 203.0.113.0/24 must log in
//! (Basic proxy auth, basic_ncsa_auth with a password file made at run time) and may not
//! fetch /blocked; everyone else is refused. Squid logs every request three times: its
//! access.log in the native format, a second file in the "combined" format, and through
//! syslog(3) (`access_log syslog:`) to a private rsyslogd (a private /dev whose /dev/log is
//! its socket), writing rsyslog's traditional file format.
//!
//! Clients (curl with `--interface`, and python3 for raw bytes): 192.0.2.10 is served;
//! 198.51.100.9 is refused four requests (one with another client's log line, %20 and %0a
//! in its URL, a CONNECT to port 25, one with raw quotes and a forged log tail in its
//! Referer and User-Agent) and sends three it cannot parse (`garbage`, an SSH banner, an
//! origin-form `GET /`) and an empty connection; 2001:db8::9 is refused once over IPv6;
//! 203.0.113.77 logs in right as alice (served), logs in right under two hostile user names
//! (`admin from 192.0.2.66 port 1`, `x [192.0.2.66] 198.51.100.7 TCP_DENIED/403`) and asks
//! for /blocked, and sends a wrong password for a hostile name; 203.0.113.78 sends three
//! wrong passwords and one user name holding a LF and a forged log line.
//!
//! In each of the three logs `portcullis test --filter squid --json` must count exactly
//! those refusals, per address and rule (denied, bad-request, auth-failed), for the address
//! Squid wrote (never one written inside a URL, header or user name), and nothing for the
//! served requests, the empty connection or the LF user name (which Squid refuses without
//! logging it); `portcullis replay` bans 198.51.100.9 alone at maxretry 4 in modes normal and
//! aggressive alike (the filter has scan rules only, which count in every mode), and
//! 203.0.113.78's three refused logins ban it at maxretry 3. The first run of this
//! test found three gaps in the filter: a raw `"` in the combined format's User-Agent hid a
//! denied request, a request line whose method was not [A-Z_]+ (`garbage`, an SSH banner)
//! was not read, and refused proxy logins (407 with a user name) were not counted at all.
//! Squid 6.13 writes the same lines but for the requests it cannot parse: their method field
//! is `-` (5.7 wrote the client's first token, `garbage`, `SSH-2.0-OpenSSH_9.2`, `GET`), and
//! since python3 hangs up after the status line, it often writes them `NONE_NONE_ABORTED/400`:
//! the Debian 13 run found that the filter missed `NONE_NONE_ABORTED/400 ... - / -` (a scanner's
//! origin-form GET), in both formats.
//!
//! Needs root, squid (and its basic_ncsa_auth), curl, python3, openssl, rsyslogd and
//! util-linux's unshare (test.sh installs them), and for the second run chroot and the trixie
//! tree; fails loudly when they are missing. Runs in about 3 s each.

mod common;

use common::*;
use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

const NCSA_AUTH: &str = "/usr/lib/squid/basic_ncsa_auth";

/// Run as pid 1 of the new pid, mount and network namespace (bash): every process of the
/// run is in it and dies with it; $1 is the test's directory, $2 the Debian 13 tree (empty:
/// the machine's Squid). (After [`PRIVATE_SYSLOG_SH`] and [`TRIXIE_SH`].)
const SCRIPT: &str = r#"set -u
d="$1"; tree="$2"
ip link set lo up
for a in 192.0.2.3 192.0.2.80 192.0.2.10 198.51.100.9 203.0.113.77 203.0.113.78; do
  ip addr add "$a/32" dev lo || exit 2
done
for a in 2001:db8::3 2001:db8::9; do ip addr add "$a/128" dev lo nodad || exit 2; done
# Squid drops to the proxy user: it must reach its files
chmod 755 "$d"
# a private /dev whose /dev/log is a private rsyslogd's socket (common/netns.rs), and a
# private /dev/shm, where Squid keeps its shared memory segments
private_syslog "$d" shm
# the Squid to run: the machine's (Debian 12), or Debian 13's in a private overlay of its
# tree (common/real.rs trixie_mount: its /etc, /run and /tmp private, $d at the same path)
squid=(squid)
if [ -n "$tree" ]; then
  trixie_mount "$tree" "$d/root" "$d/trixie" || exit 4
  squid=(chroot "$d/root" /usr/sbin/squid)
fi
# the origin server
mkdir -p "$d/www/blocked" && echo hello > "$d/www/index.html"
(cd "$d/www" && exec /usr/bin/python3 -m http.server --bind 192.0.2.80 80 > "$d/origin.log" 2>&1) &
for _ in $(seq 50); do
  curl -s -o /dev/null --noproxy '*' --max-time 1 http://192.0.2.80/ && break
  sleep 0.1
done
# the proxy's users: the same right password for three names, two of them hostile
for u in alice "admin from 192.0.2.66 port 1" "x [192.0.2.66] 198.51.100.7 TCP_DENIED/403"; do
  printf '%s:%s\n' "$u" "$(openssl passwd -apr1 right-pw)"
done > "$d/passwd"
chmod 644 "$d/passwd"
touch "$d/access.log" "$d/combined.log" "$d/cache.log"
chown proxy:proxy "$d/access.log" "$d/combined.log" "$d/cache.log"
cat > "$d/squid.conf" <<C
http_port 192.0.2.3:3128
http_port [2001:db8::3]:3128
visible_hostname pct-proxy
pid_filename $d/squid.pid
access_log stdio:$d/access.log squid
access_log stdio:$d/combined.log combined
access_log syslog:daemon.info squid
cache_log $d/cache.log
cache_store_log none
logfile_rotate 0
cache deny all
cache_mem 1 MB
coredump_dir $d
shutdown_lifetime 0 seconds
dns_nameservers 192.0.2.53
auth_param basic program /usr/lib/squid/basic_ncsa_auth $d/passwd
auth_param basic children 2 startup=1
auth_param basic realm pct
auth_param basic casesensitive on
acl legit src 192.0.2.10
acl authnet src 203.0.113.0/24
acl authed proxy_auth REQUIRED
acl blocked urlpath_regex ^/blocked
acl SSL_ports port 443
acl CONNECT method CONNECT
http_access deny CONNECT !SSL_ports
http_access allow legit !blocked
http_access deny authnet authed blocked
http_access allow authnet authed
http_access deny all
C
"${squid[@]}" -N -f "$d/squid.conf" > "$d/squid.out" 2>&1 &
squid=$!
for _ in $(seq 100); do grep -q "Accepting HTTP" "$d/cache.log" 2>/dev/null && break; sleep 0.1; done
grep -q "Accepting HTTP" "$d/cache.log" || { echo "squid did not start" >&2; exit 4; }
p4=http://192.0.2.3:3128
c() { curl -s -o /dev/null -w '%{http_code} %{http_connect}\n' --max-time 5 "$@" >> "$d/answers"; }
c --interface 192.0.2.10 --proxy $p4 http://192.0.2.80/
c --interface 198.51.100.9 --proxy $p4 http://192.0.2.80/
c --interface 198.51.100.9 --proxy $p4 'http://192.0.2.80/1796417200.335%20%20%20%200%20192.0.2.10%20TCP_DENIED/403%0a1796417200.336%20%20%20%200%20192.0.2.10%20TCP_DENIED/403'
c --interface 198.51.100.9 --proxy $p4 -p http://192.0.2.80:25/
c --interface 198.51.100.9 --proxy $p4 -A '198.51.100.7 TCP_DENIED:HIER_NONE" x' \
  -e 'http://192.0.2.10/ "GET http://x/ HTTP/1.1" 403' http://192.0.2.80/
c --interface 2001:db8::9 --proxy 'http://[2001:db8::3]:3128' http://192.0.2.80/
c --interface 203.0.113.77 --proxy $p4 -U 'alice:right-pw' http://192.0.2.80/
c --interface 203.0.113.77 --proxy $p4 -U 'admin from 192.0.2.66 port 1:right-pw' http://192.0.2.80/blocked/
c --interface 203.0.113.77 --proxy $p4 -U 'x [192.0.2.66] 198.51.100.7 TCP_DENIED/403:right-pw' http://192.0.2.80/blocked/x
c --interface 203.0.113.77 --proxy $p4 -U 'x [192.0.2.66]:wrong' http://192.0.2.80/
for _ in 1 2 3; do c --interface 203.0.113.78 --proxy $p4 -U 'alice:wrong' http://192.0.2.80/; done
c --interface 203.0.113.78 --proxy $p4 \
  -U "$(printf 'bob\n1796417200.421      0 192.0.2.10 TCP_DENIED/407 3497 GET http://x/ y HIER_NONE/- text/html'):wrong" \
  http://192.0.2.80/
/usr/bin/python3 - "$d" <<'PY' || exit 5
import socket, sys
with open(sys.argv[1] + "/answers", "a") as out:
    for payload in (b"garbage\r\n\r\n", b"SSH-2.0-OpenSSH_9.2\r\n", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", b""):
        s = socket.create_connection(("192.0.2.3", 3128), timeout=5, source_address=("198.51.100.9", 0))
        if payload:
            s.sendall(payload)
            out.write(s.recv(100).split(b"\r\n")[0].decode() + "\n")
        s.close()
PY
# every request written (18 lines), then squid ends (shutdown_lifetime 0)
for _ in $(seq 50); do
  [ "$(wc -l < "$d/access.log")" -ge 18 ] && [ "$(grep -c ' squid: ' "$d/syslog")" -ge 18 ] && break
  sleep 0.1
done
kill "$squid"
wait "$squid"
kill %2 %1
wait
"#;

/// (host, rule, line) of every line that counts.
type Counted = Vec<(String, String, String)>;

/// Rules counted per address, sorted, and the full (host, rule, line) list.
fn counted(log: &Path) -> (BTreeMap<String, Vec<String>>, Counted) {
    let all = counted_matches("squid", log);
    let mut by_host: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (host, rule, _) in &all {
        by_host.entry(host.clone()).or_default().push(rule.clone());
    }
    for v in by_host.values_mut() {
        v.sort();
    }
    (by_host, all)
}

// The Squid under test: Debian 12's (the machine's, 5.7) or Debian 13's (the trixie tree,
// 6.13, run with chroot).

/// Runs every scenario against `version`'s Squid and checks what it answered, what it wrote
/// and what the filter counts of it.
fn run(version: Release) {
    require_root();
    require_program("curl", "curl");
    require_program("python3", "python3");
    require_program("openssl", "openssl");
    require_program("rsyslogd", "rsyslog");
    require_program("unshare", "util-linux");
    let tree = match version {
        Release::Deb12 => {
            require_program("squid", "squid");
            assert!(
                Path::new(NCSA_AUTH).is_file(),
                "{NCSA_AUTH} is missing: install squid (test.sh does)"
            );
            String::new()
        }
        Release::Deb13 => {
            require_program("chroot", "coreutils");
            // (usr/sbin/squid is the alternatives link to squid-gnutls, absolute: it
            // resolves in the chroot only)
            let auth = NCSA_AUTH.trim_start_matches('/');
            trixie_root(&["usr/sbin/squid-gnutls", auth])
                .display()
                .to_string()
        }
    };
    let v6 = version == Release::Deb13;
    let dir = test_dir(if v6 { "squid-6" } else { "squid" });
    let shown = [("squid", "squid.out"), ("cache.log", "cache.log")];
    let script = format!("{PRIVATE_SYSLOG_SH}{TRIXIE_SH}{SCRIPT}");
    run_script_ok("squid", dir.path(), &script, &[tree.as_ref()], &shown);
    let read = |name: &str| fs::read_to_string(dir.path().join(name)).unwrap_or_default();
    let banner = if v6 {
        "Starting Squid Cache version 6.13 "
    } else {
        "Starting Squid Cache version 5.7 "
    };
    assert!(
        read("cache.log").contains(banner),
        "{version:?}: not {banner}"
    );

    // what the clients got: curl's status (and the CONNECT's), then the raw requests'
    let answers: Vec<String> = read("answers").lines().map(str::to_string).collect();
    let want_answers = [
        "200 000",
        "403 000",
        "403 000",
        "000 403",
        "403 000",
        "403 000",
        "200 000",
        "403 000",
        "403 000",
        "407 000",
        "407 000",
        "407 000",
        "407 000",
        "407 000",
        "HTTP/1.1 400 Bad Request",
        "HTTP/1.1 400 Bad Request",
        "HTTP/1.1 400 Bad Request",
    ];
    assert_eq!(answers, want_answers, "the clients' answers");

    let native = dir.path().join("access.log");
    let combined = dir.path().join("combined.log");
    let sys = dir.path().join("syslog");
    let want: BTreeMap<&str, Vec<&str>> = [
        (
            "198.51.100.9",
            vec![
                "bad-request",
                "bad-request",
                "bad-request",
                "denied",
                "denied",
                "denied",
                "denied",
            ],
        ),
        ("2001:db8::9", vec!["denied"]),
        ("203.0.113.77", vec!["auth-failed", "denied", "denied"]),
        (
            "203.0.113.78",
            vec!["auth-failed", "auth-failed", "auth-failed"],
        ),
    ]
    .into_iter()
    .collect();
    for log in [&native, &combined, &sys] {
        let text = fs::read_to_string(log).unwrap_or_default();
        // Squid's own view: 18 requests (the empty connection's too), the LF user name
        // refused without being written
        let requests = text
            .lines()
            .filter(|l| l.contains("HIER_") && !l.contains("rsyslogd"))
            .count();
        assert_eq!(requests, 18, "{}: Squid's lines:\n{text}", log.display());
        assert!(
            !text.contains("bob"),
            "{}: the LF user name was written:\n{text}",
            log.display()
        );
        assert!(
            text.contains("admin from 192.0.2.66 port 1")
                && text.contains("x %5b192.0.2.66%5d 198.51.100.7 TCP_DENIED/403")
                && text.contains("TCP_DENIED/403%0a1796417200.336"),
            "{}: the hostile names and URL are not in the log:\n{text}",
            log.display()
        );
        let (got, all) = counted(log);
        let got_ref: BTreeMap<&str, Vec<&str>> = got
            .iter()
            .map(|(h, v)| (h.as_str(), v.iter().map(String::as_str).collect()))
            .collect();
        assert_eq!(
            got_ref,
            want,
            "{}: what counted, per address: {all:#?}\nlog:\n{text}",
            log.display()
        );
    }
    // the requests Squid could not parse: 5.7 wrote the client's first token as the method,
    // 6.13 writes `-`
    let unparsed: &[&str] = if v6 {
        &[
            " - error:invalid-request - HIER_NONE/- ",
            " - / - HIER_NONE/- ",
        ]
    } else {
        &[
            " garbage error:invalid-request - ",
            " SSH-2.0-OpenSSH_9.2 error:invalid-request - ",
            " GET / - HIER_NONE/- ",
        ]
    };
    for needle in unparsed {
        assert!(
            read("access.log").contains(needle),
            "{version:?}: not in access.log: {needle}\n{}",
            read("access.log")
        );
    }
    // the combined format wrote the raw quotes of the Referer and User-Agent
    assert!(
        read("combined.log")
            .contains(r#""198.51.100.7 TCP_DENIED:HIER_NONE" x" TCP_DENIED:HIER_NONE"#),
        "combined.log:\n{}",
        read("combined.log")
    );

    // every rule of the filter is a scan rule, so a squid jail counts them all in every mode
    // (the default, normal, included): the same bans in both
    let normal = replay_jail(dir.path(), "squid", &native, "normal", 4);
    assert_eq!(
        normal.into_iter().collect::<Vec<_>>(),
        vec!["198.51.100.9".to_string()],
        "mode normal, log:\n{}",
        read("access.log")
    );
    let normal3 = replay_jail(dir.path(), "squid", &native, "normal", 3);
    assert!(
        normal3.contains("203.0.113.78"),
        "three refused logins, mode normal, maxretry 3: {normal3:?}"
    );
    let aggressive = replay_jail(dir.path(), "squid", &sys, "aggressive", 4);
    assert_eq!(
        aggressive.into_iter().collect::<Vec<_>>(),
        vec!["198.51.100.9".to_string()],
        "mode aggressive, log:\n{}",
        read("syslog")
    );
}

#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn real_squid_refusals_count_for_the_client_squid_wrote() {
    run(Release::Deb12);
}

#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn real_squid_6_refusals_count_for_the_client_squid_wrote() {
    run(Release::Deb13);
}

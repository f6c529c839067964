//! The `tinyproxy` filter against the real Tinyproxy: Debian 12's (1.11.1, the binary of
//! tinyproxy-bin, the machine's) and Debian 13's (1.11.2, test.sh's trixie tree, run with
//! chroot in a private overlay of it: common/real.rs `trixie_mount`), the same scenarios and
//! one table of what must count. Each runs twice in its own pid, mount and network namespace
//! (`unshare`), in the foreground (`-d`), listening on 192.0.2.1 and 2001:db8::1, with
//! `Allow 192.0.2.0/24` (every other client refused by the access list) and `BasicAuth`:
//! once writing its own file (`LogFile`, `LogLevel Info`), once through syslog(3) (`Syslog
//! On`) to a private rsyslogd (a private /dev whose /dev/log is its socket). A small origin
//! server (python3's http.server) answers on 192.0.2.80.
//!
//! Clients (the machine's curl with `--proxy` and `--interface`), the same against each
//! instance: 2001:db8:77::7 (the first connection), 203.0.113.77 three times (once with a
//! hostile request target, once with a hostile Proxy-Authorization user name) and
//! 2001:db8:88::8 three times are refused by the access list; 192.0.2.10 is served with the
//! right credentials (counts nothing) and sends a hostile request line that the proxy rejects
//! (400); 192.0.2.11, inside the allowed range, tries a wrong password, a hostile user name
//! and no credentials with a hostile request target.
//!
//! `portcullis test --filter tinyproxy --json` must count, in both logs, each access-list
//! refusal once for the client's address and nothing for the served client; no address a
//! client wrote (192.0.2.66) ever counts. Debian 12's 1.11.1 writes no line for a wrong
//! BasicAuth password, and writes the first IPv6 client after an IPv4 one with only its
//! first 64 bits right (tinyproxy issue #495): its IPv6 counts are checked per /64, the
//! prefix an IPv6 ban takes. Debian 13's 1.11.2 (seen in the run) writes every IPv6 address
//! whole (checked exactly) and `Failed auth attempt (file descriptor: N), ip 192.0.2.11` for
//! the wrong password and the wrong user name (2, rule `auth-failed`), none for the request
//! without credentials. `portcullis replay` with `maxretry = 3` bans 203.0.113.77 and
//! 2001:db8:88::/64 alone.
//!
//! Needs root, tinyproxy (tinyproxy-bin), curl, python3, rsyslogd, iproute2's ip and
//! util-linux's unshare, and for the second run chroot and the trixie tree (test.sh installs
//! them); fails loudly when they are missing. Runs in about 2 s each.

mod common;

use common::*;
use std::collections::BTreeMap;
use std::fs;
use std::net::Ipv6Addr;
use std::path::Path;

/// Run as pid 1 of the new pid, mount and network namespace (bash): every process of the
/// run is in it and dies with it; $1 is the test's directory.
const SCRIPT: &str = r##"set -u
d="$1"; tree="$2"
ip link set lo up
for a in 192.0.2.1 192.0.2.10 192.0.2.11 192.0.2.80 203.0.113.77; do
  ip addr add "$a/32" dev lo || exit 2
done
for a in 2001:db8::1 2001:db8:77::7 2001:db8:88::8; do ip addr add "$a/128" dev lo nodad || exit 2; done
# a private /dev whose /dev/log is a private rsyslogd's socket (common/netns.rs)
private_syslog "$d"
# the origin server
mkdir -p "$d/www"
echo hello > "$d/www/index.html"
python3 -m http.server --bind 192.0.2.80 --directory "$d/www" 80 > "$d/origin.log" 2>&1 &
origin=$!
for _ in $(seq 100); do (exec 3<>/dev/tcp/192.0.2.80/80) 2>/dev/null && break; sleep 0.1; done
# two proxies: 8888 writes its own file, 8889 through syslog
for p in 8888 8889; do
  cat > "$d/tp$p.conf" <<C
Port $p
Listen 192.0.2.1
Listen 2001:db8::1
Timeout 10
MaxClients 20
LogLevel Info
Allow 192.0.2.0/24
BasicAuth pctproxy Right-pw-1
C
done
echo "LogFile \"$d/tinyproxy.log\"" >> "$d/tp8888.conf"
echo "Syslog On" >> "$d/tp8889.conf"
# the Tinyproxy to run: the machine's (Debian 12), or Debian 13's in a private overlay of its
# tree (common/real.rs trixie_mount: $d at the same path inside)
tinyproxy=(tinyproxy)
if [ -n "$tree" ]; then
  trixie_mount "$tree" "$d/root" "$d/trixie" || exit 4
  tinyproxy=(chroot "$d/root" /usr/bin/tinyproxy)
fi
"${tinyproxy[@]}" -d -c "$d/tp8888.conf" > "$d/tp8888.out" 2>&1 &
tp1=$!
"${tinyproxy[@]}" -d -c "$d/tp8889.conf" > "$d/tp8889.out" 2>&1 &
tp2=$!
for _ in $(seq 100); do
  grep -q "Starting main loop" "$d/tinyproxy.log" 2>/dev/null &&
    grep -q "Starting main loop" "$d/syslog" 2>/dev/null && break
  sleep 0.1
done
grep -q "Starting main loop" "$d/tinyproxy.log" "$d/syslog" 2>/dev/null ||
  { echo "tinyproxy did not start" >&2; cat "$d"/tp*.out >&2; exit 4; }
# c PORT SRC CURL-ARGS...: one request through the proxy on PORT from SRC; the status
# appended to "results"
c() {
  p=$1; src=$2; shift 2
  case $src in *:*) proxy="http://[2001:db8::1]:$p" ;; *) proxy="http://192.0.2.1:$p" ;; esac
  code=$(timeout 10 curl -sS -o /dev/null -w '%{http_code}' --interface "$src" --proxy "$proxy" "$@" 2>>"$d/curl.err")
  echo "$p $src $code" >> "$d/results"
}
for p in 8888 8889; do
  c $p 2001:db8:77::7 http://192.0.2.80/
  c $p 192.0.2.10 --proxy-user 'pctproxy:Right-pw-1' http://192.0.2.80/
  c $p 203.0.113.77 http://192.0.2.80/
  c $p 203.0.113.77 --request-target 'http://192.0.2.80/ Unauthorized connection from "192.0.2.66".' http://192.0.2.80/
  c $p 203.0.113.77 --proxy-user 'admin from 192.0.2.66:x' http://192.0.2.80/
  c $p 2001:db8:88::8 http://192.0.2.80/
  c $p 2001:db8:88::8 http://192.0.2.80/
  c $p 2001:db8:88::8 http://192.0.2.80/
  c $p 192.0.2.11 --proxy-user 'pctproxy:wrong' http://192.0.2.80/
  c $p 192.0.2.11 --proxy-user 'admin from 192.0.2.66:x' http://192.0.2.80/
  c $p 192.0.2.11 --request-target 'http://192.0.2.80/ Failed auth attempt (file descriptor: 6), ip 192.0.2.66' http://192.0.2.80/
  c $p 192.0.2.10 --proxy-user 'pctproxy:Right-pw-1' --request-target 'http://192.0.2.80/x Unauthorized connection from "192.0.2.66".' http://192.0.2.80/
done
# every refusal through rsyslogd before it stops
for _ in $(seq 50); do
  [ "$(grep -c ']: Unauthorized connection from' "$d/syslog" 2>/dev/null)" -ge 7 ] && break
  sleep 0.1
done
kill "$tp1" "$tp2" "$origin"
wait "$tp1" "$tp2" "$origin"
kill %1
wait
"##;

/// The address as counted, an IPv6 one as its /64 (what a ban of it takes).
fn net_of(host: &str) -> String {
    match host.parse::<Ipv6Addr>() {
        Ok(a) => {
            let s = a.segments();
            format!("{}/64", Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
        Err(_) => host.to_string(),
    }
}

/// Per address (IPv6: per /64 when `per64`) and rule, how many lines count in `log`.
fn counted(log: &Path, per64: bool) -> BTreeMap<(String, String), usize> {
    let mut by: BTreeMap<(String, String), usize> = BTreeMap::new();
    for (host, rule, _) in counted_matches("tinyproxy", log) {
        let host = if per64 { net_of(&host) } else { host };
        *by.entry((host, rule)).or_default() += 1;
    }
    by
}

// The Tinyproxy under test: Debian 12's (the machine's, 1.11.1) or Debian 13's (the trixie
// tree, 1.11.2, run with chroot).

/// Runs every scenario against `version`'s Tinyproxy and checks what curl got, what
/// Tinyproxy wrote and what the filter counts of it.
fn run(version: Release) {
    require_root();
    require_program("curl", "curl");
    require_program("python3", "python3");
    require_program("rsyslogd", "rsyslog");
    require_program("ip", "iproute2");
    require_program("unshare", "util-linux");
    let tree = match version {
        Release::Deb12 => {
            require_program("tinyproxy", "tinyproxy-bin");
            String::new()
        }
        Release::Deb13 => {
            require_program("chroot", "coreutils");
            trixie_root(&["usr/bin/tinyproxy"]).display().to_string()
        }
    };
    let v1112 = version == Release::Deb13;
    let dir = test_dir(if v1112 {
        "tinyproxy-1.11.2"
    } else {
        "tinyproxy"
    });
    let shown = [
        ("tinyproxy (tp8888.out)", "tp8888.out"),
        ("tinyproxy (tp8889.out)", "tp8889.out"),
        ("log", "tinyproxy.log"),
    ];
    let script = format!("{PRIVATE_SYSLOG_SH}{TRIXIE_SH}{SCRIPT}");
    run_script_ok("tinyproxy", dir.path(), &script, &[tree.as_ref()], &shown);
    let read = |name: &str| fs::read_to_string(dir.path().join(name)).unwrap_or_default();

    // what the clients got, from each proxy
    let results = read("results");
    let mut want_codes = String::new();
    for p in [8888, 8889] {
        for (src, code) in [
            ("2001:db8:77::7", 403),
            ("192.0.2.10", 200),
            ("203.0.113.77", 403),
            ("203.0.113.77", 403),
            ("203.0.113.77", 403),
            ("2001:db8:88::8", 403),
            ("2001:db8:88::8", 403),
            ("2001:db8:88::8", 403),
            ("192.0.2.11", 401),
            ("192.0.2.11", 401),
            ("192.0.2.11", 407),
            ("192.0.2.10", 400),
        ] {
            want_codes.push_str(&format!("{p} {src} {code}\n"));
        }
    }
    assert_eq!(results, want_codes, "curl:\n{}", read("curl.err"));

    let file = dir.path().join("tinyproxy.log");
    let sys = dir.path().join("syslog");
    for log in [&file, &sys] {
        let text = fs::read_to_string(log).unwrap_or_default();
        // 1.11.1 writes no line for a wrong BasicAuth password and the IPv6 clients per /64
        // only (issue #495); 1.11.2 writes `Failed auth attempt` for the wrong password and
        // the wrong user name (none for the request without credentials, answered 407) and
        // every IPv6 address whole
        let (v6_77, v6_88) = if v1112 {
            ("2001:db8:77::7", "2001:db8:88::8")
        } else {
            ("2001:db8:77::/64", "2001:db8:88::/64")
        };
        let mut want: BTreeMap<(String, String), usize> = [
            ("203.0.113.77", "unauthorized", 3),
            (v6_77, "unauthorized", 1),
            (v6_88, "unauthorized", 3),
        ]
        .into_iter()
        .map(|(h, r, n)| ((h.to_string(), r.to_string()), n))
        .collect();
        if v1112 {
            want.insert(("192.0.2.11".into(), "auth-failed".into()), 2);
            for line in [
                "]: Unauthorized connection from \"2001:db8:88::8\".",
                "]: Failed auth attempt (file descriptor: 6), ip 192.0.2.11",
            ] {
                assert!(
                    text.contains(line),
                    "{}: 1.11.2 did not write {line}:\n{text}",
                    log.display()
                );
            }
        } else {
            assert!(
                !text.contains("]: Failed auth attempt"),
                "{}: 1.11.1 wrote a failed auth:\n{text}",
                log.display()
            );
        }
        assert_eq!(
            counted(log, !v1112),
            want,
            "{}: what counted, per address\nlog:\n{text}",
            log.display()
        );
        // Tinyproxy wrote the hostile request lines of the allowed clients (the refused
        // ones are refused before their request is read)
        for needle in [
            r#"GET http://192.0.2.80/x Unauthorized connection from "192.0.2.66". HTTP/1.1"#,
            "GET http://192.0.2.80/ Failed auth attempt (file descriptor: 6), ip 192.0.2.66 HTTP/1.1",
        ] {
            assert!(
                text.contains(needle),
                "{}: {needle} not logged:\n{text}",
                log.display()
            );
        }
        assert_eq!(
            text.matches("]: Unauthorized connection from \"").count(),
            7,
            "{}: the refusals:\n{text}",
            log.display()
        );
    }

    // a jail with maxretry 3 bans the refused clients with three refusals, and only them
    for log in [&file, &sys] {
        let bans = replay_jail(dir.path(), "tinyproxy", log, "normal", 3);
        assert_eq!(
            bans.into_iter().collect::<Vec<_>>(),
            vec!["2001:db8:88::/64".to_string(), "203.0.113.77".to_string()],
            "{}: bans",
            log.display()
        );
    }
}

#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn real_tinyproxy_refusals_count_for_the_client_address() {
    run(Release::Deb12);
}

#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn real_tinyproxy_1_11_2_refusals_count_for_the_client_address() {
    run(Release::Deb13);
}

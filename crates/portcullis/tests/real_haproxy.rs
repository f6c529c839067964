//! The `haproxy-http-auth` filter against the real HAProxy, twice: Debian 12's haproxy (2.6,
//! the machine's) and Debian 13's (3.0.11, test.sh's trixie tree, run with chroot in a private
//! overlay of it: common/real.rs `trixie_mount`), the same scenarios and one table of what
//! counts for both. HAProxy runs
//! in the foreground (`-db`) in its own pid, mount and network namespace (`unshare`), with
//! `option httplog` and a userlist: a frontend asking for basic auth on /admin/ (and
//! capturing the User-Agent), a backend asking for it itself (/secure/), a dual-stack
//! frontend (`[::]:8081 v4v6`) asking for it everywhere, and a statistics page behind
//! `stats auth`; behind them a tiny Python server, which answers 401 itself under /api/.
//! HAProxy logs twice: through syslog(3) to a private rsyslogd (a private /dev whose
//! /dev/log is its socket, rsyslog's traditional file format) and to its stdout (`log stdout
//! format raw`).
//!
//! Clients (curl `--interface`): 192.0.2.10 logs in everywhere with the right password;
//! 198.51.100.9 sends three wrong passwords, the user name `admin 192.0.2.66`, a path with
//! an address and `%0a`, a User-Agent that imitates a whole log line (with a tab, `"`, `#`,
//! `{`, `}` and a byte 0xff, which HAProxy escapes), a request line with spaces and a fake
//! log tail (refused 400, `<BADREQ>`), and two tries at the statistics page;
//! 203.0.113.77 asks without credentials (once on the dual-stack frontend, logged
//! `::ffff:203.0.113.77`) and gets the backend's own 401 under /api/; 2001:db8:77::7 sends
//! wrong passwords over IPv6, to the frontend and to the backend.
//!
//! In both logs `portcullis test --filter haproxy-http-auth --json` must count each refusal
//! once, for the address HAProxy wrote (never one inside a header or the path), and nothing
//! for 192.0.2.10; `portcullis replay` with `maxretry = 3` bans 198.51.100.9 alone in mode
//! normal, and 203.0.113.77 too in mode aggressive (the backend's 401 is a scan-class rule,
//! which mode normal leaves out). The first run found that HAProxy logs a refused `stats
//! auth` as `stats/<STATS> ... 400` (the client gets 401), which the filter did not read.
//! HAProxy 3.0.11 writes the same lines as 2.6 (the refused stats page still `400`, the bad
//! request `-1/-1/-1/-1/0 400 0 ... PR-- ... "<BADREQ>"`), only sizes and timers differ.
//!
//! Needs root, haproxy, curl, python3, rsyslogd, iproute2 (ip, ss) and util-linux's unshare
//! (test.sh installs them), and for the second run chroot and the trixie tree; fails loudly
//! when they are missing. Runs in about 2 s each.

mod common;

use common::*;
use std::collections::BTreeMap;
use std::fs;

/// Run as pid 1 of the new pid, mount and network namespace (bash): every process of the
/// run is in it and dies with it; $1 is the test's directory, $2 the Debian 13 tree (empty:
/// the machine's HAProxy). (After [`PRIVATE_SYSLOG_SH`] and [`TRIXIE_SH`].)
const SCRIPT: &str = r##"set -u
d="$1"; tree="$2"
ip link set lo up
for a in 192.0.2.80 192.0.2.81 192.0.2.10 198.51.100.9 203.0.113.77; do
  ip addr add "$a/32" dev lo || exit 2
done
for a in 2001:db8::80 2001:db8:77::7; do ip addr add "$a/128" dev lo nodad || exit 2; done
# a private /dev whose /dev/log is a private rsyslogd's socket (common/netns.rs)
private_syslog "$d"
# the HAProxy to run: the machine's (Debian 12), or Debian 13's in a private overlay of its
# tree (common/real.rs trixie_mount: its /etc, /run and /tmp private, $d at the same path)
haproxy=(haproxy)
if [ -n "$tree" ]; then
  trixie_mount "$tree" "$d/root" "$d/trixie" || exit 4
  haproxy=(chroot "$d/root" /usr/sbin/haproxy)
fi
# the backend: 200, and 401 under /api/ (the application refusing a token)
cat > "$d/app.py" <<'P'
import http.server
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        api = self.path.startswith("/api/")
        self.send_response(401 if api else 200)
        if api:
            self.send_header("WWW-Authenticate", 'Bearer realm="api"')
        self.send_header("Content-Length", "3")
        self.end_headers()
        self.wfile.write(b"ok\n")
    def log_message(self, *a):
        pass
http.server.HTTPServer(("192.0.2.81", 8000), H).serve_forever()
P
python3 "$d/app.py" 2>"$d/app.err" &
cat > "$d/haproxy.cfg" <<C
global
  log /dev/log local0
  log stdout format raw local0
  maxconn 100
defaults
  mode http
  log global
  option httplog
  option dontlognull
  timeout connect 2s
  timeout client 5s
  timeout server 5s
userlist admins
  user alice insecure-password right-pw
frontend www
  bind 192.0.2.80:8080
  bind [2001:db8::80]:8080
  capture request header User-Agent len 120
  http-request auth realm private if { path_beg /admin } !{ http_auth(admins) }
  use_backend secure if { path_beg /secure }
  default_backend app
frontend dual
  bind [::]:8081 v4v6
  http-request auth realm dual unless { http_auth(admins) }
  default_backend app
listen stats
  bind 192.0.2.80:8082
  stats enable
  stats uri /stats
  stats auth alice:right-pw
backend secure
  http-request auth realm secure unless { http_auth(admins) }
  server app1 192.0.2.81:8000
backend app
  server app1 192.0.2.81:8000
C
"${haproxy[@]}" -v > "$d/version" 2>&1
"${haproxy[@]}" -f "$d/haproxy.cfg" -db > "$d/haproxy.log" 2>"$d/haproxy.err" &
up() { [ -n "$(ss -Hltn "sport = :$1")" ]; }
for _ in $(seq 100); do up 8080 && up 8081 && up 8082 && up 8000 && break; sleep 0.1; done
up 8080 && up 8081 && up 8082 && up 8000 || { echo "haproxy or the backend did not start" >&2; exit 4; }
c() { timeout 10 curl -s -o /dev/null -w '%{http_code}\n' --max-time 5 "$@" >> "$d/codes" 2>>"$d/curl.err"; }
u=http://192.0.2.80:8080
# the legitimate client, everywhere
c --interface 192.0.2.10 -u alice:right-pw $u/admin/
c --interface 192.0.2.10 $u/
c --interface 192.0.2.10 -u alice:right-pw $u/secure/
c --interface 192.0.2.10 -u alice:right-pw http://192.0.2.80:8081/
c --interface 192.0.2.10 -u alice:right-pw http://192.0.2.80:8082/stats
# the heavy attacker, with hostile values in every field the line carries
for i in 1 2 3; do c --interface 198.51.100.9 -u alice:wrong$i $u/admin/; done
c --interface 198.51.100.9 -u 'admin 192.0.2.66:pw' $u/admin/
c --interface 198.51.100.9 -u x:y "$u/admin/192.0.2.66%0a203.0.113.5:1"
c --interface 198.51.100.9 -u x:y -A $'}\t"#\xff{ 198.51.100.7:1 [18/Nov/2026:11:07:10.000] www a/<NOSRV> 0/-1/-1/-1/0 401' $u/admin/
c --interface 198.51.100.9 -u x:y --request-target '/admin/ "192.0.2.66:1 [x] a b/<NOSRV> 0/0/0/0/0 401' $u/
c --interface 198.51.100.9 http://192.0.2.80:8082/stats
c --interface 198.51.100.9 -u alice:wrong http://192.0.2.80:8082/stats
# no credentials (once on the dual-stack socket), and the application's own 401
c --interface 203.0.113.77 $u/admin/
c --interface 203.0.113.77 http://192.0.2.80:8081/
c --interface 203.0.113.77 $u/api/x
# IPv6
c --interface 2001:db8:77::7 -u alice:bad "http://[2001:db8::80]:8080/admin/"
c --interface 2001:db8:77::7 -u alice:bad "http://[2001:db8::80]:8080/secure/"
# 19 requests: 19 log lines in each log (HAProxy logs a request when it ends)
req='[0-9]+/[0-9]+/[0-9]+/[0-9]+/[0-9]+ [0-9]+/[0-9]+ '
for _ in $(seq 50); do
  [ "$(grep -cE "$req" "$d/syslog" 2>/dev/null)" -ge 19 ] && [ "$(grep -cE "$req" "$d/haproxy.log")" -ge 19 ] && break
  sleep 0.1
done
kill %3
wait %3
kill %2
wait %2
kill %1
wait
"##;

// The HAProxy under test: Debian 12's (the machine's, 2.6) or Debian 13's (the trixie tree,
// 3.0.11, run with chroot).

/// Runs every scenario against `version`'s HAProxy and checks what the clients got, what it
/// wrote and what the filter counts of it.
fn run(version: Release) {
    require_root();
    require_program("curl", "curl");
    require_program("python3", "python3");
    require_program("rsyslogd", "rsyslog");
    require_program("ip", "iproute2");
    require_program("ss", "iproute2");
    require_program("unshare", "util-linux");
    let tree = match version {
        Release::Deb12 => {
            require_program("haproxy", "haproxy");
            String::new()
        }
        Release::Deb13 => {
            require_program("chroot", "coreutils");
            trixie_root(&["usr/sbin/haproxy"]).display().to_string()
        }
    };
    let v30 = version == Release::Deb13;
    let dir = test_dir(if v30 { "haproxy-3.0" } else { "haproxy" });
    let shown = [
        ("haproxy", "haproxy.err"),
        ("app", "app.err"),
        ("log", "haproxy.log"),
    ];
    let script = format!("{PRIVATE_SYSLOG_SH}{TRIXIE_SH}{SCRIPT}");
    run_script_ok("haproxy", dir.path(), &script, &[tree.as_ref()], &shown);
    let read = |name: &str| fs::read_to_string(dir.path().join(name)).unwrap_or_default();
    let banner = if v30 {
        "HAProxy version 3.0."
    } else {
        "HAProxy version 2.6."
    };
    assert!(
        read("version").starts_with(banner),
        "{version:?}: not {banner}: {}",
        read("version")
    );
    let own = dir.path().join("haproxy.log");
    let sys = dir.path().join("syslog");

    // what the clients got, in order
    let codes: Vec<String> = read("codes").lines().map(str::to_string).collect();
    let want_codes = [
        "200", "200", "200", "200", "200", // the legitimate client
        "401", "401", "401", "401", "401", "401", "400", "401", "401", // 198.51.100.9
        "401", "401", "401", // 203.0.113.77
        "401", "401", // 2001:db8:77::7
    ];
    assert_eq!(codes, want_codes, "curl: {}", read("curl.err"));

    let want: BTreeMap<&str, Vec<&str>> = [
        (
            "198.51.100.9",
            vec![
                "auth",
                "auth",
                "auth",
                "auth",
                "auth",
                "auth",
                "stats-auth",
                "stats-auth",
            ],
        ),
        ("203.0.113.77", vec!["auth", "auth", "backend-401"]),
        ("2001:db8:77::7", vec!["auth", "auth"]),
    ]
    .into_iter()
    .collect();
    for log in [&own, &sys] {
        let text = fs::read_to_string(log).unwrap_or_default();
        let requests = text.lines().filter(|l| l.contains(" 0/0 ")).count();
        assert_eq!(
            requests,
            19,
            "{}: HAProxy's request lines:\n{text}",
            log.display()
        );
        // what HAProxy wrote (on one line each; the timers vary): the refused stats page
        // as 400 <STATS> with no response time, the dual-stack client as ::ffff:a.b.c.d,
        // the backend's refusal and its own, the hostile values escaped
        let needles: [&[&str]; 7] = [
            &[" stats stats/<STATS> ", "/-1/", " 400 "],
            &["::ffff:203.0.113.77:", " dual dual/<NOSRV> ", " 401 "],
            &["2001:db8:77::7:", " www secure/<NOSRV> ", " 401 "],
            &["203.0.113.77:", " www app/app1 ", " 401 "],
            &[
                "198.51.100.9:",
                "\"GET /admin/192.0.2.66%0a203.0.113.5:1 HTTP/1.1\"",
            ],
            &[
                "198.51.100.9:",
                "{#7D#09#22#23#FF#7B 198.51.100.7:1 [18/Nov/2026:11:07:10.000] www a/<NOSRV> ",
            ],
            &["198.51.100.9:", " 400 ", "\"<BADREQ>\""],
        ];
        for needle in needles {
            assert!(
                text.lines().any(|l| needle.iter().all(|n| l.contains(n))),
                "{}: no line with {needle:?} in the log:\n{text}",
                log.display()
            );
        }
        let got = lines_by_host("haproxy-http-auth", log);
        let rules = rules_of(&got);
        assert_eq!(
            rules,
            want,
            "{}: what counted, per address: {got:#?}\nlog:\n{text}",
            log.display()
        );
        assert!(
            !got.contains_key("192.0.2.10")
                && !got.contains_key("192.0.2.66")
                && !got.contains_key("198.51.100.7")
                && !got.contains_key("203.0.113.5"),
            "{}: {got:#?}",
            log.display()
        );
    }

    // maxretry 3: mode normal bans the heavy attacker alone; mode aggressive counts the
    // application's own 401 (a scan-class rule) too, and bans 203.0.113.77 as well
    for (log, mode, banned) in [
        (&sys, "normal", vec!["198.51.100.9"]),
        (&own, "normal", vec!["198.51.100.9"]),
        (&sys, "aggressive", vec!["198.51.100.9", "203.0.113.77"]),
    ] {
        let bans = replay_jail(dir.path(), "haproxy-http-auth", log, mode, 3);
        assert_eq!(
            bans.iter().map(String::as_str).collect::<Vec<_>>(),
            banned,
            "{} in mode {mode}:\nlog:\n{}",
            log.display(),
            fs::read_to_string(log).unwrap_or_default()
        );
    }
}

#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn real_haproxy_auth_failures_count_for_the_client_haproxy_wrote() {
    run(Release::Deb12);
}

#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn real_haproxy_3_0_auth_failures_count_for_the_client_haproxy_wrote() {
    run(Release::Deb13);
}

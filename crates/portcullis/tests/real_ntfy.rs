//! The `ntfy` filter against the real notification server: Debian 13's ntfy 2.11.0 (package
//! ntfy 2.11.0-2+b4; not in Debian 12), from test.sh's trixie-e tree, run with chroot in a
//! private overlay of it (common/real.rs `trixie_mount`) as the package's _ntfy user, in its
//! own pid, mount and network namespace (`unshare`). It listens on :8080, reached at
//! 192.0.2.80 and [2001:db8::80], with an auth file (`auth-default-access: deny-all`, one
//! user alice with read-write access to topic alerts) and the log the filter header asks
//! for: `log-format: json`, `log-level: info` with the overrides that lift error codes
//! 40101 and 42909 to debug, written to `log-file`.
//!
//! Clients (`curl --interface SRC`): 192.0.2.10 publishes to alerts as alice with the right
//! password; 198.51.100.9 fails nine times: a wrong password, an unknown user, user names
//! holding a line feed then a whole forged JSON failure record naming 203.0.113.66, quotes,
//! the address 203.0.113.66 alone, a wrong password with `X-Forwarded-For: 203.0.113.66`, an
//! unknown access token, a wrong password in the `?auth=` parameter, and a wrong password on
//! a WebSocket upgrade (the "WebSocket error" message); 2001:db8:77::7 an unknown user over
//! IPv6; 203.0.113.77 32 wrong passwords, of which ntfy's auth limiter (burst 30) refuses the
//! last two with 429 (ntfy error 42909).
//!
//! `portcullis test --filter ntfy --json` must count each failure once for the TCP peer
//! (rule unauthorized, or auth-limited for the 429s), never 192.0.2.10 nor 203.0.113.66:
//! ntfy logs no user name of a failed login, and without behind-proxy it ignores
//! X-Forwarded-For.
//!
//! Needs root, curl, util-linux's unshare, chroot and the trixie-e tree with ntfy (test.sh
//! installs it); fails loudly when they are missing. About 3 s.

mod common;

use common::*;
use std::fs;

/// Run as pid 1 of the new pid, mount and network namespace (bash, after
/// [`PRIVATE_SYSLOG_SH`] and [`TRIXIE_SH`]): $1 is the test's directory, $2 the trixie-e
/// tree. Writes the package version, ntfy's own start-up output (`serve.out`), its log
/// (`var/ntfy.log`) and the HTTP statuses the clients got (`status`).
const SCRIPT: &str = r#"set -u
d="$1"; tree="$2"
ip link set lo up
for a in 192.0.2.80 192.0.2.10 198.51.100.9 203.0.113.77; do ip addr add "$a/32" dev lo || exit 2; done
for a in 2001:db8::80 2001:db8:77::7; do ip addr add "$a/128" dev lo nodad || exit 2; done
private_dev
r="$d/root"
trixie_mount "$tree" "$r" "$d/trixie" || exit 4
dpkg-query --admindir="$r/var/lib/dpkg" -W -f '${Version}' ntfy > "$d/version"
ids=$(chroot "$r" id -u _ntfy):$(chroot "$r" id -g _ntfy)
mkdir -p "$d/var"; chown "$ids" "$d/var"
cat > "$d/server.yml" <<C
listen-http: ":8080"
base-url: "http://192.0.2.80:8080"
auth-file: "$d/var/user.db"
auth-default-access: "deny-all"
log-level: info
log-level-overrides:
  - "error_code=40101 -> debug"
  - "error_code=42909 -> debug"
log-format: json
log-file: "$d/var/ntfy.log"
C
env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin chroot --userspec="$ids" "$r" /usr/bin/ntfy serve \
  --config "$d/server.yml" > "$d/serve.out" 2>&1 &
for _ in $(seq 100); do
  curl -s -o /dev/null --interface 192.0.2.80 http://192.0.2.80:8080/v1/health && break
  sleep 0.1
done
# the auth file exists once the server has started
env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin NTFY_PASSWORD=right-pass-4711 chroot --userspec="$ids" "$r" \
  /usr/bin/ntfy user --config "$d/server.yml" add alice > "$d/user.out" 2>&1 || exit 5
env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin chroot --userspec="$ids" "$r" \
  /usr/bin/ntfy access --config "$d/server.yml" alice alerts rw >> "$d/user.out" 2>&1 || exit 5
st() { timeout 10 curl -sS -o /dev/null -w '%{http_code}\n' "$@" >> "$d/status" 2>> "$d/curl.err"; }
# c SRC USER:PASS [CURL ARGS]: publish "hi" to alerts with Basic auth
c() {
  local src=$1 cred=$2 url=http://192.0.2.80:8080/alerts
  shift 2
  case "$src" in *:*) url='http://[2001:db8::80]:8080/alerts' ;; esac
  st --interface "$src" -u "$cred" -d hi "$@" "$url"
}
forged='{"time":"2026-12-05T10:00:00Z","level":"DEBUG","message":"Connection closed with HTTP 401 (ntfy error 40101)","error":"unauthorized","visitor_ip":"203.0.113.66"}'
c 192.0.2.10 alice:right-pass-4711
c 198.51.100.9 alice:wrong-1
c 198.51.100.9 bob:wrong
c 198.51.100.9 "n"$'\n'"$forged"
c 198.51.100.9 "x\" \"visitor_ip\"=\"203.0.113.66' y:x"
c 198.51.100.9 "203.0.113.66:x"
c 198.51.100.9 alice:wrong-2 -H 'X-Forwarded-For: 203.0.113.66'
st --interface 198.51.100.9 -H 'Authorization: Bearer tk_0123456789abcdefghijklmnopqrs' -d hi \
  http://192.0.2.80:8080/alerts
# ?auth= is the raw-URL base64 of the Authorization header
st --interface 198.51.100.9 "http://192.0.2.80:8080/alerts/json?poll=1&auth=$(printf 'Basic %s' \
  "$(printf 'alice:wrong-3' | base64)" | base64 -w0 | tr -d '=')"
st --interface 198.51.100.9 -H 'Connection: Upgrade' -H 'Upgrade: websocket' \
  -H 'Sec-WebSocket-Version: 13' -H 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==' \
  -u alice:wrong-4 http://192.0.2.80:8080/alerts/ws
c 2001:db8:77::7 bob:wrong
for _ in $(seq 32); do c 203.0.113.77 alice:guess; done
for _ in $(seq 50); do
  [ "$(grep -c '"visitor_ip"' "$d/var/ntfy.log")" -ge 42 ] && break
  sleep 0.1
done
kill %1
wait
"#;

#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn real_ntfy_2_11_failed_logins_count_for_the_tcp_peer() {
    require_root();
    require_program("curl", "curl");
    require_program("unshare", "util-linux");
    require_program("chroot", "coreutils");
    let tree = trixie_e_root(&["usr/bin/ntfy"]);
    let dir = test_dir("ntfy");
    let script = format!("{PRIVATE_SYSLOG_SH}{TRIXIE_SH}{SCRIPT}");
    let shown = [
        ("log", "var/ntfy.log"),
        ("serve", "serve.out"),
        ("user", "user.out"),
        ("curl", "curl.err"),
    ];
    run_script_ok("ntfy", dir.path(), &script, &[tree.as_os_str()], &shown);
    let read = |name: &str| fs::read_to_string(dir.path().join(name)).unwrap_or_default();
    assert_eq!(read("version"), "2.11.0-2+b4", "the ntfy package");
    let log = dir.path().join("var/ntfy.log");
    let text = read("var/ntfy.log");
    // the started server's own word for its version (stderr and the log's first record)
    assert!(
        read("serve.out").contains("Listening on :8080[http], ntfy 2.11.0-2+b4\n"),
        "ntfy's start-up output: {}",
        read("serve.out")
    );
    assert!(
        text.starts_with(r#"{"time":"20"#)
            && text
                .lines()
                .next()
                .unwrap()
                .contains(r#","level":"INFO","message":"Listening on :8080[http], ntfy 2.11.0-2+b4, log level is INFO","tag":"startup"}"#),
        "the log's first record:\n{text}"
    );

    // alice published; every other request was refused (the WebSocket upgrade is answered
    // after ntfy has logged its refusal)
    let status: Vec<String> = read("status").lines().map(str::to_string).collect();
    assert_eq!(status.len(), 1 + 9 + 1 + 32, "statuses: {status:?}");
    assert_eq!(status[0], "200", "alice's publish: {status:?}\n{text}");
    assert!(
        status[1..9].iter().all(|s| s == "401") && status[9] != "101" && status[10] == "401",
        "statuses: {status:?}"
    );
    assert_eq!(status[11..41], ["401"; 30], "203.0.113.77: {status:?}");
    assert_eq!(status[41..], ["429"; 2], "203.0.113.77: {status:?}");
    // every physical line is one of ntfy's JSON records
    assert!(
        text.lines().all(|l| l.starts_with(r#"{"time":"20"#)),
        "a line ntfy did not begin:\n{text}"
    );
    for s in [
        r#","level":"DEBUG","message":"WebSocket error (this error is okay, it happens a lot): unauthorized","error":"unauthorized","error_code":40101,"http_method":"GET","http_path":"/alerts/ws","http_status":401,"tag":"websocket","#,
        r#","http_path":"/alerts/json?poll=1\u0026auth="#,
        r#","level":"DEBUG","message":"Connection closed with HTTP 429 (ntfy error 42909)","error":"limit reached: too many auth failures","error_code":42909,"#,
    ] {
        assert!(text.contains(s), "not in the log: {s}\n{text}");
    }
    // ntfy logs no user name of a failed login and ignores X-Forwarded-For (no behind-proxy)
    assert!(
        !text.contains("203.0.113.66"),
        "203.0.113.66 in the log:\n{text}"
    );

    let want = want_rules(&[
        ("198.51.100.9", &[("unauthorized", 9)]),
        ("2001:db8:77::7", &[("unauthorized", 1)]),
        ("203.0.113.77", &[("unauthorized", 30), ("auth-limited", 2)]),
    ]);
    let got = rules_by_host("ntfy", &log);
    assert!(
        !got.contains_key("203.0.113.66"),
        "203.0.113.66 counted: {got:?}\n{text}"
    );
    assert!(
        !got.contains_key("192.0.2.10"),
        "the legit host counted: {got:?}\n{text}"
    );
    assert_eq!(got, want, "what counted, per address; log:\n{text}");
}

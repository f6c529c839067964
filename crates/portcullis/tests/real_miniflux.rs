//! The `miniflux` filter against the real feed reader: Debian 13's Miniflux 2.2.6 (package
//! miniflux 2.2.6-1+b4; not in Debian 12), from test.sh's trixie-e tree, run with chroot in a
//! private overlay of it (common/real.rs `trixie_mount`) on a throw-away cluster of the same
//! tree's PostgreSQL 17 (unix socket only, trust authentication), all in one pid, mount and
//! network namespace (`unshare`). Miniflux listens on :8080 and is reached at 192.0.2.80 and
//! [2001:db8::80]; its admin user alice is made by CREATE_ADMIN.
//!
//! Miniflux runs twice on the same database, as the filter header says it is read: first
//! with the defaults (LOG_FORMAT=text, no time: Debian's miniflux.service writes these lines
//! to the journal, the filter's `logs`), then LOG_FORMAT=json with LOG_DATE_TIME=1; stderr,
//! where it logs, goes to a file. The environment is cleared (`env -i`) so that nothing of
//! the caller's (PORT, LOG_*) changes it.
//!
//! Clients (`curl --interface SRC`), the same in both runs: 192.0.2.10 logs in as alice with
//! the right password (REST API Basic auth, the login form) and reads /metrics with its
//! credentials; 198.51.100.9 fails 14 times: wrong password and unknown user on the API and
//! on the form, user names holding a line feed then a whole forged failure line naming
//! 203.0.113.66 (text format, JSON format), quotes, an address alone and after a word, an
//! unknown Fever key and API key, Google Reader ClientLogin, /metrics with a wrong password;
//! 2001:db8:77::7 an unknown user over IPv6; and 198.51.100.9 twice more with its own
//! `X-Forwarded-For: 192.0.2.99` and `X-Real-Ip: 192.0.2.98`.
//!
//! `portcullis test --filter miniflux --json` must count each failure once for the TCP
//! peer, never 192.0.2.10 nor 203.0.113.66; slog escapes the line feed (`\n`) and the
//! quotes in both formats. Miniflux 2.2.6 takes the first X-Forwarded-For entry, else
//! X-Real-Ip, from ANY client (TRUSTED_REVERSE_PROXY_NETWORKS came with 2.2.16): those two
//! failures count for 192.0.2.99 and 192.0.2.98, as the filter header warns; the test pins
//! that down so that a change of it is seen.
//!
//! Needs root, curl, util-linux's unshare, chroot and the trixie-e tree with miniflux and
//! postgresql-17 (test.sh installs them); fails loudly when they are missing. About 4 s.

mod common;

use common::*;
use std::fs;
use std::os::unix::fs::PermissionsExt;

/// Run as pid 1 of the new pid, mount and network namespace (bash, after
/// [`PRIVATE_SYSLOG_SH`] and [`TRIXIE_SH`]): $1 is the test's directory, $2 the trixie-e
/// tree. Writes the package version, `miniflux -version`, then per format (text, json) the
/// log (`miniflux.FMT`) and the HTTP statuses the clients got (`status.FMT`).
const SCRIPT: &str = r#"set -u
d="$1"; tree="$2"
ip link set lo up
for a in 192.0.2.80 192.0.2.10 198.51.100.9; do ip addr add "$a/32" dev lo || exit 2; done
for a in 2001:db8::80 2001:db8:77::7; do ip addr add "$a/128" dev lo nodad || exit 2; done
private_dev
mkdir /dev/shm && mount -t tmpfs -o mode=1777 pct-shm /dev/shm
r="$d/root"
trixie_mount "$tree" "$r" "$d/trixie" || exit 4
dpkg-query --admindir="$r/var/lib/dpkg" -W -f '${Version}' miniflux > "$d/version"
chroot "$r" /usr/bin/miniflux -version > "$d/miniflux-version"
pg=$(chroot "$r" id -u postgres):$(chroot "$r" id -g postgres)
mf=$(chroot "$r" id -u miniflux):$(chroot "$r" id -g miniflux)
mkdir -p "$d/pg" "$d/sock"; chown "$pg" "$d/pg" "$d/sock"
LC_ALL=C chroot --userspec="$pg" "$r" /usr/lib/postgresql/17/bin/initdb --no-sync -A trust \
  -U postgres -D "$d/pg/data" > "$d/initdb.log" 2>&1 || exit 5
chroot --userspec="$pg" "$r" /usr/lib/postgresql/17/bin/postgres -D "$d/pg/data" \
  -c listen_addresses= -c unix_socket_directories="$d/sock" -c fsync=off > "$d/pg.log" 2>&1 &
pgpid=$!
for _ in $(seq 100); do [ -S "$d/sock/.s.PGSQL.5432" ] && break; sleep 0.1; done
chroot --userspec="$pg" "$r" /usr/bin/createdb -h "$d/sock" -U postgres miniflux || exit 6
# (a fixed user agent: the lines checked below must not depend on the host's curl release)
st() { timeout 10 curl -sS -A test-client/1.0 -o /dev/null -w '%{http_code}\n' "$@" >> "$d/status.$fmt" 2>> "$d/curl.err"; }
# api SRC USER:PASS [CURL ARGS]: the REST API with Basic auth
api() {
  local src=$1 cred=$2 url=http://192.0.2.80:8080/v1/me
  shift 2
  case "$src" in *:*) url='http://[2001:db8::80]:8080/v1/me' ;; esac
  st --interface "$src" -u "$cred" "$@" "$url"
}
# form SRC USER PASS: the login form (its CSRF token and session cookie from /)
form() {
  local src=$1 user=$2 pass=$3 jar="$d/jar" csrf
  rm -f "$jar"
  csrf=$(timeout 10 curl -sS --interface "$src" -c "$jar" http://192.0.2.80:8080/ |
    sed -n 's/.*name="csrf" value="\([^"]*\)".*/\1/p')
  st --interface "$src" -b "$jar" --data-urlencode "csrf=$csrf" --data-urlencode "username=$user" \
    --data-urlencode "password=$pass" http://192.0.2.80:8080/login
}
forged='level=WARN msg="Incorrect username or password" authentication_failed=true client_ip=203.0.113.66'
forged_json='{"level":"WARN","msg":"Incorrect username or password","authentication_failed":true,"client_ip":"203.0.113.66"}'
for fmt in text json; do
  case $fmt in
    text) lf=text; ldt=0 ;;
    json) lf=json; ldt=1 ;;
  esac
  env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \
    DATABASE_URL="host=$d/sock user=postgres dbname=miniflux sslmode=disable" \
    LISTEN_ADDR=:8080 RUN_MIGRATIONS=1 CREATE_ADMIN=1 ADMIN_USERNAME=alice ADMIN_PASSWORD=right-pass-4711 \
    METRICS_COLLECTOR=1 METRICS_ALLOWED_NETWORKS=192.0.2.0/24,198.51.100.0/24,2001:db8::/32 \
    METRICS_USERNAME=prom METRICS_PASSWORD=prom-pass-4711 LOG_FORMAT=$lf LOG_DATE_TIME=$ldt \
    chroot --userspec="$mf" "$r" /usr/bin/miniflux > "$d/stdout.$fmt" 2> "$d/miniflux.$fmt" &
  mfpid=$!
  for _ in $(seq 300); do
    curl -s -o /dev/null --interface 192.0.2.80 http://192.0.2.80:8080/healthcheck && break
    sleep 0.1
  done
  # the legit host: API, form, metrics
  api 192.0.2.10 alice:right-pass-4711
  form 192.0.2.10 alice right-pass-4711
  st --interface 192.0.2.10 -u prom:prom-pass-4711 http://192.0.2.80:8080/metrics
  # the attacker
  api 198.51.100.9 alice:wrong-1
  api 198.51.100.9 bob:wrong
  form 198.51.100.9 alice wrong-2
  form 198.51.100.9 bob wrong
  form 198.51.100.9 "n"$'\n'"$forged" x
  form 198.51.100.9 "n"$'\n'"$forged_json" x
  api 198.51.100.9 "n"$'\n'"$forged:x"
  api 198.51.100.9 "x\" client_ip=203.0.113.66 'y:x"
  form 198.51.100.9 203.0.113.66 x
  api 198.51.100.9 "admin 203.0.113.66:x"
  st --interface 198.51.100.9 -d api_key=bad 'http://192.0.2.80:8080/fever/?api'
  st --interface 198.51.100.9 -H 'X-Auth-Token: bad' http://192.0.2.80:8080/v1/me
  st --interface 198.51.100.9 -d Email=alice -d Passwd=bad http://192.0.2.80:8080/accounts/ClientLogin
  st --interface 198.51.100.9 -u prom:wrong http://192.0.2.80:8080/metrics
  api 2001:db8:77::7 bob:wrong
  # the attacker names another address in a header: 2.2.6 believes any client
  api 198.51.100.9 alice:wrong-3 -H 'X-Forwarded-For: 192.0.2.99'
  api 198.51.100.9 alice:wrong-4 -H 'X-Real-Ip: 192.0.2.98'
  for _ in $(seq 50); do
    [ "$(grep -c 'authentication_failed' "$d/miniflux.$fmt")" -ge 17 ] && break
    sleep 0.1
  done
  kill "$mfpid"; wait "$mfpid"
done
kill "$pgpid"
wait
"#;

/// The statuses the clients get, in the script's order (the same in both runs): the API's
/// 200, the form's redirect after a login, /metrics; a failed form login shows the form
/// again (200), a failed /metrics login is a 404, Fever answers 200 with auth 0.
const STATUSES: [&str; 20] = [
    "200", "302", "200", // 192.0.2.10
    "401", "401", "200", "200", "200", "200", "401", "401", "200", "401", // 198.51.100.9
    "200", "401", "401", "404", // Fever, API key, Google Reader, metrics
    "401", // 2001:db8:77::7
    "401", "401", // X-Forwarded-For, X-Real-Ip
];

#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn real_miniflux_2_2_failed_logins_count_for_the_tcp_peer() {
    require_root();
    require_program("curl", "curl");
    require_program("unshare", "util-linux");
    require_program("chroot", "coreutils");
    let tree = trixie_e_root(&[
        "usr/bin/miniflux",
        "usr/lib/postgresql/17/bin/postgres",
        "usr/lib/postgresql/17/bin/initdb",
        "usr/bin/createdb",
    ]);
    let dir = test_dir("miniflux");
    // the postgres and miniflux users of the tree read their files under it
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let script = format!("{PRIVATE_SYSLOG_SH}{TRIXIE_SH}{SCRIPT}");
    let shown = [
        ("text log", "miniflux.text"),
        ("json log", "miniflux.json"),
        ("initdb", "initdb.log"),
        ("postgres", "pg.log"),
        ("curl", "curl.err"),
    ];
    run_script_ok("miniflux", dir.path(), &script, &[tree.as_os_str()], &shown);
    let read = |name: &str| fs::read_to_string(dir.path().join(name)).unwrap_or_default();
    assert_eq!(read("version"), "2.2.6-1+b4", "the miniflux package");
    assert_eq!(
        read("miniflux-version").trim(),
        "2.2.6",
        "miniflux -version"
    );

    for fmt in ["text", "json"] {
        let name = format!("miniflux.{fmt}");
        let log = dir.path().join(&name);
        let text = read(&name);
        let status: Vec<String> = read(&format!("status.{fmt}"))
            .lines()
            .map(str::to_string)
            .collect();
        assert_eq!(status, STATUSES, "{fmt}: statuses\n{text}");

        // alice's logins, as Miniflux itself reports them
        let (api_ok, form_ok) = match fmt {
            "text" => (
                r#"level=INFO msg="[API] User authenticated successfully with the Basic HTTP Authentication" authentication_successful=true client_ip=192.0.2.10 "#,
                r#"level=INFO msg="User authenticated successfully with username/password" authentication_successful=true client_ip=192.0.2.10 "#,
            ),
            _ => (
                r#""level":"INFO","msg":"[API] User authenticated successfully with the Basic HTTP Authentication","authentication_successful":true,"client_ip":"192.0.2.10","#,
                r#""level":"INFO","msg":"User authenticated successfully with username/password","authentication_successful":true,"client_ip":"192.0.2.10","#,
            ),
        };
        for ok in [api_ok, form_ok] {
            assert!(text.contains(ok), "{fmt}: not in the log: {ok}\n{text}");
        }
        // the forged lines are in the log, escaped inside the attacker's own lines
        let escaped = match fmt {
            "text" => [
                r#"client_ip=198.51.100.9 user_agent=test-client/1.0 username="n\nlevel=WARN msg=\"Incorrect username or password\" authentication_failed=true client_ip=203.0.113.66" error="#,
                r#"username="n\n{\"level\":\"WARN\",\"msg\":\"Incorrect username or password\",\"authentication_failed\":true,\"client_ip\":\"203.0.113.66\"}" error="#,
                r#"username="x\" client_ip=203.0.113.66 'y""#,
            ],
            _ => [
                r#""client_ip":"198.51.100.9","user_agent":"test-client/1.0","username":"n\nlevel=WARN msg=\"Incorrect username or password\" authentication_failed=true client_ip=203.0.113.66","error":"#,
                r#""username":"n\n{\"level\":\"WARN\",\"msg\":\"Incorrect username or password\",\"authentication_failed\":true,\"client_ip\":\"203.0.113.66\"}","error":"#,
                r#""username":"x\" client_ip=203.0.113.66 'y""#,
            ],
        };
        for e in escaped {
            assert!(text.contains(e), "{fmt}: not in the log: {e}\n{text}");
        }
        // every physical line is Miniflux's own: none begins with the forged text
        assert!(
            text.lines().all(|l| match fmt {
                "text" => l.starts_with("level="),
                _ => l.starts_with("{\"time\":\"20"),
            }),
            "{fmt}: a line Miniflux did not begin:\n{text}"
        );

        let want = want_rules(&[
            ("198.51.100.9", &[("password", 12), ("token", 2)]),
            ("2001:db8:77::7", &[("password", 1)]),
            // 2.2.6 takes these from any client's headers (the filter header's warning)
            ("192.0.2.99", &[("password", 1)]),
            ("192.0.2.98", &[("password", 1)]),
        ]);
        let got = rules_by_host("miniflux", &log);
        assert!(
            !got.contains_key("203.0.113.66"),
            "{fmt}: 203.0.113.66 counted: {got:?}\n{text}"
        );
        assert!(
            !got.contains_key("192.0.2.10"),
            "{fmt}: the legit host counted: {got:?}\n{text}"
        );
        assert_eq!(got, want, "{fmt}: what counted, per address; log:\n{text}");
    }
}

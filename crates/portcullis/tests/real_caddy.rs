//! The `caddy` filter against the real Caddy. Debian 12's caddy (2.6.2) runs (`caddy run
//! --config Caddyfile --adapter caddyfile`) in its own pid, mount and network namespace
//! (`unshare`), plain HTTP on 192.0.2.1:80 and [2001:db8::1]:80, one site with `basicauth
//! /private/*` (one account, alice, its bcrypt hash made at run time by `caddy
//! hash-password`) and `log { output file ... }` in the default JSON encoding. A
//! global `log` with `include http.log.access.log0` writes the same entries on stdout,
//! piped into `logger -t caddy --id` to a private rsyslogd (a private /dev whose /dev/log is
//! its socket, rsyslog's traditional format): the `caddy[PID]: {...}` copy a journal gives.
//!
//! Clients (curl `--interface`): 192.0.2.10 logs in as alice twice and fetches a public page
//! (200s); 203.0.113.7 sends wrong passwords (two, then the first again), an unknown user
//! (`admin 192.0.2.66`), a request without credentials, and wrong passwords with hostile
//! fields: a request target holding `"remote_ip":"192.0.2.66","client_ip":...` (raw quotes,
//! and backslash-quote, which Caddy writes `\\\"`), X-Forwarded-For, X-Real-IP, Forwarded,
//! Client-IP, Client_ip and Remote_ip headers naming 192.0.2.66, a Host of 192.0.2.66, a
//! User-Agent closing the headers object and opening `"remote_ip":"192.0.2.66"`, a Referer
//! with a tab and escaped quotes, a User-Agent padded past 1 KiB; then the same hostile
//! headers without credentials, with an X-Authorization header and a header holding
//! `"Authorization":["x"]`; and a Host with a quote (Go's server answers 400, Caddy logs
//! nothing). 203.0.113.8 sends an unknown user and a request without credentials;
//! 2001:db8::77 a wrong password and an unknown user over IPv6, with X-Forwarded-For
//! 2001:db8::66 and Host [2001:db8::66].
//!
//! Caddy 2.6 has no `client_ip` key and no server `trusted_proxies` (both 2.7): `remote_ip`,
//! the TCP peer, is the only address it writes, and no header changes it. In both logs
//! `portcullis test --filter caddy --json` must count every 401 once, for that peer (never
//! 192.0.2.66 or 2001:db8::66): rule `failed` when the request carried an Authorization
//! header (Caddy 2.6 writes it `"Authorization":[]`, not `["REDACTED"]` as 2.7+ does),
//! `unauthorized` when it did not, and nothing for 192.0.2.10. The counts are checked
//! against the log read as JSON (remote_ip, status, headers). `portcullis replay` with
//! `maxretry = 3` bans 203.0.113.7 alone in mode normal, and with `maxretry = 2` in mode
//! aggressive (which counts `unauthorized`) 203.0.113.7, 203.0.113.8 and 2001:db8::/64.
//! The first run found that every entry of 768 bytes or more in the syslog copy went
//! uncounted: the filter let unbounded text stand before the address, so the transport-cut
//! check refused long lines (fixed: the fields before the address are bounded).
//!
//! Needs root, caddy, curl, logger (bsdutils), rsyslogd, iproute2's ip and ss, util-linux's
//! unshare (test.sh installs them); fails loudly when they are missing. Runs in about 5 s on
//! an idle machine: four distinct bcrypt checks (cost 14, `caddy hash-password`'s, about a
//! second of CPU each, cached after by basicauth) and the hashing itself; longer when busy.

mod common;

use common::*;
use serde_json::Value;
use std::collections::BTreeMap;
use std::fs;

/// Run as pid 1 of the new pid, mount and network namespace (bash): every process of the
/// run is in it and dies with it; $1 is the test's directory. (After [`PRIVATE_SYSLOG_SH`].)
const SCRIPT: &str = r#"set -u
d="$1"
ip link set lo up
for a in 192.0.2.1 192.0.2.10 203.0.113.7 203.0.113.8; do ip addr add "$a/32" dev lo || exit 2; done
for a in 2001:db8::1 2001:db8::77; do ip addr add "$a/128" dev lo nodad || exit 2; done
# a private /dev whose /dev/log is a private rsyslogd's socket (common/netns.rs)
private_syslog "$d"
export HOME="$d" XDG_CONFIG_HOME="$d/config" XDG_DATA_HOME="$d/data"
hash=$(caddy hash-password --plaintext right-pw) || exit 4
cat > "$d/Caddyfile" <<C
{
	admin off
	auto_https off
	storage file_system $d/storage
	log copy {
		output stdout
		include http.log.access.log0
	}
}
:80 {
	bind 192.0.2.1 2001:db8::1
	log {
		output file $d/access.log
	}
	basicauth /private/* {
		alice $hash
	}
	respond "ok"
}
C
caddy run --config "$d/Caddyfile" --adapter caddyfile 2>"$d/caddy.err" | logger -t caddy --id --size 16384 &
for _ in $(seq 100); do [ "$(ss -Hltn 'sport = :80' | wc -l)" -ge 2 ] && break; sleep 0.1; done
[ "$(ss -Hltn 'sport = :80' | wc -l)" -ge 2 ] || { echo "caddy did not start" >&2; exit 4; }
# c LABEL CURL-ARGS...: one request; "LABEL CODE" into codes
c() {
  local l=$1 r
  shift
  r=$(timeout 30 curl -s -o /dev/null -w '%{http_code}' --max-time 25 "$@" 2>>"$d/curl.err")
  echo "$l $r" >> "$d/codes"
}
u=http://192.0.2.1
u6='http://[2001:db8::1]'
# a User-Agent that makes the entry longer than 1 KiB (under rsyslog's 8 KiB)
pad=$(printf '%1000s' '' | tr ' ' x)
h=(-H 'X-Forwarded-For: 192.0.2.66' -H 'X-Real-IP: 192.0.2.66' -H 'Forwarded: for=192.0.2.66'
   -H 'Client-IP: 192.0.2.66' -H 'Client_ip: 192.0.2.66' -H 'Remote_ip: 192.0.2.66'
   -H 'Host: 192.0.2.66' -A '"}},"remote_ip":"192.0.2.66","x":{"y":["'
   -H $'Referer: a\tb\\"},"client_ip":"192.0.2.66","z":"')
# every distinct password costs a bcrypt check (cost 14: a second of CPU, more when the machine
# is busy): those first, all at once (in a subshell, whose wait waits for its own clients only)
(
  c legit-login --interface 192.0.2.10 -u alice:right-pw $u/private/ &
  c heavy-wrong1 --interface 203.0.113.7 -u alice:wrong-1 $u/private/ &
  c heavy-wrong2 --interface 203.0.113.7 -u alice:wrong-2 $u/private/ &
  c heavy-unknown --interface 203.0.113.7 -u 'admin 192.0.2.66:pw' $u/private/ &
  wait
)
# then the rest (the hash cache answers repeated passwords at once)
(
  c legit-again --interface 192.0.2.10 -u alice:right-pw $u/private/again &
  c legit-public --interface 192.0.2.10 $u/public &
  c heavy-wrong3 --interface 203.0.113.7 -u alice:wrong-1 $u/private/ &
  c heavy-none --interface 203.0.113.7 $u/private/ &
  c heavy-target --interface 203.0.113.7 -u alice:wrong-1 --request-target '/private/?"remote_ip":"192.0.2.66","client_ip":"192.0.2.66"' $u &
  c heavy-bslash --interface 203.0.113.7 -u alice:wrong-1 --request-target '/private/a\"},"remote_ip":"192.0.2.66","x":{"' $u &
  c heavy-headers --interface 203.0.113.7 -u alice:wrong-1 "${h[@]}" $u/private/ &
  c heavy-ua --interface 203.0.113.7 -u alice:wrong-2 -A $'a\tb\\"},{"remote_ip":"192.0.2.66 '"$pad" $u/private/ &
  c heavy-hostile-none --interface 203.0.113.7 "${h[@]}" -H 'X-Authorization: Basic eDp5' \
    -H 'X-Ua: "Authorization":["x"]' $u/private/ &
  c heavy-badhost --interface 203.0.113.7 -u alice:wrong-1 -H 'Host: x"},"remote_ip":"192.0.2.66' $u/private/ &
  c other-unknown --interface 203.0.113.8 -u 'root:pw' $u/private/ &
  c other-none --interface 203.0.113.8 $u/private/ &
  c v6-wrong --interface 2001:db8::77 -u alice:wrong-2 -H 'X-Forwarded-For: 2001:db8::66' $u6/private/ &
  c v6-unknown --interface 2001:db8::77 -u 'root:pw' -H 'Host: [2001:db8::66]' $u6/private/ &
  wait
)
# 17 requests logged, in the file and through syslog
for _ in $(seq 50); do
  [ "$(grep -c '"handled request"' "$d/access.log" 2>/dev/null)" -ge 17 ] \
    && [ "$(grep -c '"handled request"' "$d/syslog" 2>/dev/null)" -ge 17 ] && break
  sleep 0.1
done
kill %2
wait %2
kill %1
wait
"#;

/// The log read as JSON, independently of the filter: per remote_ip, the 401 answers to
/// requests with an Authorization header ("failed") and without ("unauthorized"); and the
/// number of access entries.
fn read_as_json(text: &str) -> (BTreeMap<String, Vec<String>>, usize) {
    let mut by_host: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut entries = 0;
    for line in text.lines() {
        let Some(at) = line.find('{') else { continue };
        let v: Value = serde_json::from_str(&line[at..]).expect("one JSON object per line");
        if v["msg"] != "handled request" {
            continue;
        }
        entries += 1;
        if v["status"] != 401 {
            continue;
        }
        let req = &v["request"];
        let rule = if req["headers"].get("Authorization").is_some() {
            "failed"
        } else {
            "unauthorized"
        };
        by_host
            .entry(req["remote_ip"].as_str().unwrap().to_string())
            .or_default()
            .push(rule.to_string());
    }
    for v in by_host.values_mut() {
        v.sort();
    }
    (by_host, entries)
}

#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn real_caddy_auth_failures_count_for_the_peer_caddy_wrote() {
    require_root();
    require_program("caddy", "caddy");
    require_program("curl", "curl");
    require_program("logger", "bsdutils");
    require_program("rsyslogd", "rsyslog");
    require_program("ip", "iproute2");
    require_program("ss", "iproute2");
    require_program("unshare", "util-linux");
    let dir = test_dir("caddy");
    let shown = [("caddy", "caddy.err"), ("log", "access.log")];
    let script = format!("{PRIVATE_SYSLOG_SH}{SCRIPT}");
    run_script_ok("caddy", dir.path(), &script, &[], &shown);
    let read = |name: &str| fs::read_to_string(dir.path().join(name)).unwrap_or_default();
    let own = dir.path().join("access.log");
    let sys = dir.path().join("syslog");

    // what the clients got
    let mut codes: Vec<String> = read("codes").lines().map(str::to_string).collect();
    codes.sort();
    let want_codes: Vec<String> = [
        ("heavy-badhost", "400"),
        ("heavy-bslash", "401"),
        ("heavy-headers", "401"),
        ("heavy-hostile-none", "401"),
        ("heavy-none", "401"),
        ("heavy-target", "401"),
        ("heavy-ua", "401"),
        ("heavy-unknown", "401"),
        ("heavy-wrong1", "401"),
        ("heavy-wrong2", "401"),
        ("heavy-wrong3", "401"),
        ("legit-again", "200"),
        ("legit-login", "200"),
        ("legit-public", "200"),
        ("other-none", "401"),
        ("other-unknown", "401"),
        ("v6-unknown", "401"),
        ("v6-wrong", "401"),
    ]
    .iter()
    .map(|(l, c)| format!("{l} {c}"))
    .collect();
    assert_eq!(
        codes,
        want_codes,
        "curl: {}\ncaddy: {}",
        read("curl.err"),
        read("caddy.err")
    );

    let want = want_rules(&[
        ("203.0.113.7", &[("failed", 8), ("unauthorized", 2)]),
        ("203.0.113.8", &[("failed", 1), ("unauthorized", 1)]),
        ("2001:db8::77", &[("failed", 2)]),
    ]);
    for log in [&own, &sys] {
        let text = fs::read_to_string(log).unwrap_or_default();
        // Caddy's own view: 17 entries, the 401s for the TCP peers only
        let (json, entries) = read_as_json(&text);
        assert_eq!(entries, 17, "{}: Caddy's entries:\n{text}", log.display());
        assert_eq!(
            json,
            want,
            "{}: the log read as JSON:\n{text}",
            log.display()
        );
        // the hostile values are in the log, escaped by Caddy, and took nothing
        for needle in [
            r#""host":"192.0.2.66""#,
            r#""X-Forwarded-For":["192.0.2.66"]"#,
            r#""Client_ip":["192.0.2.66"]"#,
            r#""Remote_ip":["192.0.2.66"]"#,
            r#""uri":"/private/?\"remote_ip\":\"192.0.2.66\",\"client_ip\":\"192.0.2.66\"""#,
            r#""uri":"/private/a\\\"},\"remote_ip\":\"192.0.2.66\",\"x\":{\"""#,
            r#""User-Agent":["\"}},\"remote_ip\":\"192.0.2.66\",\"x\":{\"y\":[\""]"#,
            r#""User-Agent":["a\tb\\\"},{\"remote_ip\":\"192.0.2.66 xxxxxxxxxx"#,
            r#""Referer":["a\tb\\\"},\"client_ip\":\"192.0.2.66\",\"z\":\""]"#,
            r#""X-Ua":["\"Authorization\":[\"x\"]"]"#,
            r#""host":"[2001:db8::66]""#,
            r#""Authorization":[]"#,
        ] {
            assert!(
                text.contains(needle),
                "{}: no {needle} in the log:\n{text}",
                log.display()
            );
        }
        // Caddy 2.6 writes no client_ip of its own (only the client's, escaped or as a header)
        assert!(
            !text.contains(r#""client_ip":""#),
            "{}: a client_ip key:\n{text}",
            log.display()
        );
        let got = lines_by_host("caddy", log);
        let rules = owned_rules_of(&got);
        assert_eq!(
            rules,
            want,
            "{}: what counted, per address: {got:#?}\nlog:\n{text}",
            log.display()
        );
        for other in ["192.0.2.10", "192.0.2.66", "2001:db8::66"] {
            assert!(!got.contains_key(other), "{}: {got:#?}", log.display());
        }

        // normal mode (failed only), maxretry 3: 203.0.113.7 alone
        let bans = replay_jail(dir.path(), "caddy", log, "normal", 3);
        assert_eq!(
            bans.into_iter().collect::<Vec<_>>(),
            vec!["203.0.113.7".to_string()],
            "{}: bans (normal, 3):\nlog:\n{text}",
            log.display()
        );
        // aggressive mode (failed and unauthorized), maxretry 2: every attacker
        let bans = replay_jail(dir.path(), "caddy", log, "aggressive", 2);
        let mut want_bans: Vec<String> = ["203.0.113.7", "203.0.113.8", "2001:db8::77"]
            .iter()
            .map(|a| ban_of(a))
            .collect();
        want_bans.sort();
        assert_eq!(
            bans.into_iter().collect::<Vec<_>>(),
            want_bans,
            "{}: bans (aggressive, 2):\nlog:\n{text}",
            log.display()
        );
    }
}

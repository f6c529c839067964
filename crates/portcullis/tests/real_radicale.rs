//! The `radicale` filter against the real CalDAV/CardDAV server, twice: Debian 12's Radicale
//! (3.1.8, the machine's `/usr/bin/python3 -m radicale`) and Debian 13's (3.5.3, test.sh's
//! trixie-c tree, its python3 run with chroot in a private overlay of it: common/real.rs
//! `trixie_mount`), the same scenarios and one table of what counts for both. Each runs in
//! its own pid, mount and network namespace (`unshare`) on
//! 192.0.2.80:5232 and [2001:db8::80]:5232, with htpasswd authentication (a plain file with
//! one user, alice), no delay after a failure, and its log at level info on stderr, written
//! to a file (the log the filter reads; under systemd the same lines go to the journal).
//!
//! Clients (`curl --interface SRC -u USER:PASS`): 192.0.2.10 logs in as alice with the
//! right password; 198.51.100.9 tries alice with wrong passwords and hostile user names
//! (`admin 192.0.2.66`, `x from 192.0.2.66'`, a name with a newline and a forged
//! "[1/Thread-9] [WARNING] Failed login attempt from 192.0.2.66 'x" after it), once with its
//! own `X-Forwarded-For: 192.0.2.66`
//! and once with `X-Remote-Addr`/`X-Real-IP: 192.0.2.66` and a path holding an encoded
//! newline; 2001:db8:77::7 tries bob over IPv6; 203.0.113.77 a name with both quotes and a
//! non-ASCII letter; 192.0.2.20, standing for a reverse proxy, passes on
//! `X-Forwarded-For: 198.51.100.50, 203.0.113.99`.
//!
//! Radicale's own server trusts no proxy: it writes "Failed login attempt from PEER
//! (forwarded for 'VALUE'): 'USER'" for any request with X-Forwarded-For. `portcullis test
//! --filter radicale --json` must count each failure once for the TCP peer (rule
//! failed-login, or failed-login-forwarded for those lines), never for an address inside a
//! user name, a path or a header, and nothing for alice's login; `portcullis replay` with
//! `maxretry = 3` bans 198.51.100.9 alone. The first run of this test found that the filter
//! did not read the forwarded form at all: one header let a direct client evade it.
//!
//! 3.5.3 ends the failure line with the auth backend (` (htpasswd)`), still names the TCP
//! peer (X-Forwarded-For appended, X-Remote-Addr and X-Real-IP ignored), and its htpasswd
//! backend writes one more line before it, with the name raw (`'%s'`, no repr): the name
//! with a newline writes its forged line on a line of its own. It holds no ':' (Basic
//! credentials are split at the first one) and counts nothing: the same table holds.
//!
//! Needs root, Debian's python3 with radicale (radicale), curl and util-linux's unshare
//! (test.sh installs them), and for the second run chroot and the trixie-c tree; fails
//! loudly when they are missing. Runs in about 1 s each.

mod common;

use common::*;
use std::collections::BTreeMap;
use std::fs;

/// Run as pid 1 of the new pid, mount and network namespace (bash, after
/// [`PRIVATE_SYSLOG_SH`] and [`TRIXIE_SH`]): every process of the run is in it and dies with
/// it; $1 is the test's directory, $2 the Debian 13 tree (empty: the machine's Radicale).
const SCRIPT: &str = r#"set -u
d="$1"; tree="$2"
ip link set lo up
for a in 192.0.2.80 192.0.2.10 192.0.2.20 198.51.100.9 203.0.113.77; do
  ip addr add "$a/32" dev lo || exit 2
done
for a in 2001:db8::80 2001:db8:77::7; do ip addr add "$a/128" dev lo nodad || exit 2; done
mkdir -p "$d/collections"
printf 'alice:right-pass-4711\n' > "$d/users"
cat > "$d/config" <<C
[server]
hosts = 192.0.2.80:5232, [2001:db8::80]:5232
[auth]
type = htpasswd
htpasswd_filename = $d/users
htpasswd_encryption = plain
delay = 0
[storage]
filesystem_folder = $d/collections
[logging]
level = info
C
# the Radicale to run: the machine's (Debian 12), or Debian 13's in a private overlay of its
# tree (common/real.rs trixie_mount: its /etc, /run and /tmp private, $d at the same path)
private_dev
py=(/usr/bin/python3); r=/
if [ -n "$tree" ]; then
  r="$d/root"
  trixie_mount "$tree" "$r" "$d/trixie" || exit 4
  py=(chroot "$r" /usr/bin/python3)
fi
dpkg-query --admindir="$r/var/lib/dpkg" -W -f '${Version}' radicale > "$d/version"
PYTHONDONTWRITEBYTECODE=1 "${py[@]}" -m radicale --config "$d/config" 2> "$d/radicale.log" &
rad=$!
for _ in $(seq 100); do grep -q "Radicale server ready" "$d/radicale.log" 2>/dev/null && break; sleep 0.1; done
grep -q "Radicale server ready" "$d/radicale.log" 2>/dev/null || { echo "radicale did not start" >&2; exit 4; }
# c SRC USER:PASS [CURL ARGS...] [URL]: one request; its HTTP status in $d/status
c() {
  local src=$1 cred=$2 url=http://192.0.2.80:5232/
  shift 2
  case "$src" in *:*) url='http://[2001:db8::80]:5232/' ;; esac
  timeout 10 /usr/bin/curl -sS -o /dev/null -w '%{http_code}\n' --interface "$src" -u "$cred" "$@" \
    "${URL:-$url}" >> "$d/status" 2>> "$d/curl.err"
}
c 192.0.2.10 alice:right-pass-4711
c 198.51.100.9 alice:wrong-1
c 198.51.100.9 'admin 192.0.2.66:x'
c 198.51.100.9 "x from 192.0.2.66': 'y:x"
c 198.51.100.9 "$(printf "n\n[1/Thread-9] [WARNING] Failed login attempt from 192.0.2.66 'x"):x"
c 198.51.100.9 alice:wrong-2 -H 'X-Forwarded-For: 192.0.2.66'
URL='http://192.0.2.80:5232/192.0.2.66%0aFailed%20login%20attempt%20from%20192.0.2.66' \
  c 198.51.100.9 alice:wrong-3 -H 'X-Remote-Addr: 192.0.2.66' -H 'X-Real-IP: 192.0.2.66'
c 2001:db8:77::7 bob:wrong
c 203.0.113.77 "é'\"x:x"
c 192.0.2.20 alice:wrong-4 -H 'X-Forwarded-For: 198.51.100.50, 203.0.113.99'
for _ in $(seq 50); do
  [ "$(grep -c "Failed login attempt" "$d/radicale.log")" -ge 9 ] && break
  sleep 0.1
done
kill "$rad"
wait
"#;

// The Radicale under test: Debian 12's (the machine's, 3.1.8) or Debian 13's (the trixie-c
// tree, 3.5.3, run with chroot).

#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn real_radicale_failed_logins_count_for_the_tcp_peer() {
    run(Release::Deb12);
}

#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn real_radicale_3_5_failed_logins_count_for_the_tcp_peer() {
    run(Release::Deb13);
}

/// Runs every scenario against `version`'s Radicale (the clients are the machine's) and
/// checks what the clients got, what Radicale wrote and what the filter counts of it.
fn run(version: Release) {
    require_root();
    require_program("curl", "curl");
    require_program("unshare", "util-linux");
    let tree = match version {
        Release::Deb12 => {
            require_program("python3", "python3");
            require_program("radicale", "radicale");
            String::new()
        }
        Release::Deb13 => {
            require_program("chroot", "coreutils");
            trixie_c_root(&[
                "usr/bin/python3",
                "usr/lib/python3/dist-packages/radicale/app/__init__.py",
            ])
            .display()
            .to_string()
        }
    };
    let dir = test_dir(match version {
        Release::Deb12 => "radicale",
        Release::Deb13 => "radicale-3.5",
    });
    let shown = [("log", "radicale.log")];
    let script = format!("{PRIVATE_SYSLOG_SH}{TRIXIE_SH}{SCRIPT}");
    run_script_ok("radicale", dir.path(), &script, &[tree.as_ref()], &shown);
    let read = |name: &str| fs::read_to_string(dir.path().join(name)).unwrap_or_default();
    let release = match version {
        Release::Deb12 => "3.1.",
        Release::Deb13 => "3.5.",
    };
    assert!(
        read("version").starts_with(release),
        "radicale {}",
        read("version")
    );
    let log = dir.path().join("radicale.log");
    let text = read("radicale.log");

    // Radicale let alice in and refused the nine others (curl's view and its own)
    let status: Vec<String> = read("status").lines().map(str::to_string).collect();
    assert_eq!(
        status.len(),
        10,
        "statuses: {status:?}\ncurl: {}",
        read("curl.err")
    );
    assert_ne!(status[0], "401", "alice's login was refused:\n{text}");
    assert!(
        status[1..].iter().all(|s| s == "401"),
        "statuses: {status:?}\n{text}"
    );
    assert!(
        text.contains("[INFO] Successful login: 'alice'"),
        "no successful login:\n{text}"
    );
    // Radicale's own failure lines (those it begins with its time stamp): nine
    let failures = text
        .lines()
        .filter(|l| l.starts_with("[20") && l.contains("] [WARNING] Failed login attempt from "))
        .count();
    assert_eq!(failures, 9, "Radicale's failures:\n{text}");
    // 3.5 ends the line with the auth backend, 3.1 with the login
    let suffix = match version {
        Release::Deb12 => "",
        Release::Deb13 => " (htpasswd)",
    };
    // the hostile values are in the line, escaped by repr(), and the forged headers with them
    for escaped in [
        format!(
            r#"] [WARNING] Failed login attempt from 198.51.100.9: "n\n[1/Thread-9] [WARNING] Failed login attempt from 192.0.2.66 'x"{suffix}"#
        ),
        format!("] [WARNING] Failed login attempt from 198.51.100.9 (forwarded for '192.0.2.66'): 'alice'{suffix}\n"),
        format!("] [WARNING] Failed login attempt from 192.0.2.20 (forwarded for '198.51.100.50, 203.0.113.99'): 'alice'{suffix}\n"),
        format!("] [WARNING] Failed login attempt from 203.0.113.77: 'é\\'\"x'{suffix}\n"),
        r"'/192.0.2.66\nFailed login attempt from 192.0.2.66'".to_string(),
    ] {
        assert!(text.contains(&escaped), "not in the log: {escaped}\n{text}");
    }
    // 3.5's htpasswd backend writes the name once more before that line, raw (`'%s'`): the
    // name with a newline writes a line of the client's own; it holds no ':' (Basic
    // credentials are split at the first one), so it reads as nothing
    let raw = "\n[1/Thread-9] [WARNING] Failed login attempt from 192.0.2.66 'x'\n";
    match version {
        Release::Deb12 => assert!(!text.contains(raw), "{text}"),
        Release::Deb13 => {
            assert!(text.contains(raw), "no forged line of its own:\n{text}");
            for s in [
                "] [WARNING] Login verification user not found (htpasswd): 'admin 192.0.2.66'\n",
                "] [WARNING] Login verification failed for user: 'alice' (htpasswd/plain/PLAIN)\n",
            ] {
                assert!(text.contains(s), "not in the log: {s}\n{text}");
            }
        }
    }

    let want: BTreeMap<String, Vec<String>> = [
        (
            "198.51.100.9",
            vec![
                "failed-login",
                "failed-login",
                "failed-login",
                "failed-login",
                "failed-login",
                "failed-login-forwarded",
            ],
        ),
        ("2001:db8:77::7", vec!["failed-login"]),
        ("203.0.113.77", vec!["failed-login"]),
        ("192.0.2.20", vec!["failed-login-forwarded"]),
    ]
    .into_iter()
    .map(|(h, r)| (h.to_string(), r.into_iter().map(str::to_string).collect()))
    .collect();
    assert_eq!(
        rules_by_host("radicale", &log),
        want,
        "what counted, per address; log:\n{text}"
    );

    // a jail with maxretry 3 bans the client with six failures, and only it
    let bans = replay_jail(dir.path(), "radicale", &log, "normal", 3);
    assert_eq!(
        bans.into_iter().collect::<Vec<_>>(),
        vec!["198.51.100.9".to_string()],
        "bans:\nlog:\n{text}"
    );
}

//! The `cockpit` filter against the real Cockpit: Debian 12's (287, the machine's) and Debian
//! 13's (337, test.sh's trixie tree, run with chroot in a private overlay of it:
//! common/real.rs `trixie_mount`; the accounts in the overlay's /etc), the same scenarios and
//! one table of what must count. cockpit-ws runs in its own
//! pid, mount and network namespace (`unshare`) without systemd, as root, twice: `cockpit-ws
//! --no-tls --port 9090 --address 192.0.2.1` and the same on 2001:db8::1. For each password
//! login it starts the real setuid cockpit-session, which runs PAM with Debian's
//! /etc/pam.d/cockpit (pam_unix through common-auth) and, after a right password, the real
//! cockpit-bridge as the user. The accounts exist only inside the namespace (a private /etc
//! overlay holding passwd, group and shadow with three more accounts: `pctcockpit`, and two
//! whose names are hostile, `admin rhost=192.0.2.66` and `x ruser= rhost=192.0.2.66  user=y`,
//! so that pam_unix writes those names into its failure line as it writes any existing
//! user's); /run and /var/log are empty tmpfs mounts in the namespace (cockpit-session
//! writes btmp, wtmp and lastlog there, and pam_systemd finds no system bus), and PAM logs
//! through syslog(3) to a private rsyslogd (a private /dev whose /dev/log is its socket).
//! Cockpit 337's cockpit-ws starts no cockpit-session: it connects to /run/cockpit/session,
//! where systemd's `cockpit-session.socket` (Accept=yes) starts a root cockpit-session per
//! connection (`cockpit-session@.service`); here systemd-socket-activate of the tree does so.
//!
//! Clients (`curl --interface SRC -H "Authorization: Basic ..."
//! http://ADDR:9090/cockpit/login`), all at once: 203.0.113.5 three wrong passwords for
//! `pctcockpit`; 203.0.113.6 an unknown user; 2001:db8::7 a wrong password over IPv6;
//! 203.0.113.8 and .9 wrong passwords for the two hostile accounts; 203.0.113.11 a wrong
//! password with `X-Forwarded-For: 192.0.2.66` (Cockpit trusts no proxy by default);
//! 203.0.113.12 an unknown user name holding a newline and a whole forged failure line for
//! 192.0.2.66. Then 192.0.2.10 logs in with the right password (HTTP 200, a session opened).
//!
//! `portcullis test --filter cockpit --json` must count each
//! `cockpit-session: pam_unix(cockpit:auth): authentication failure; ... rhost=A  user=U`
//! line once, for the address cockpit-session gave PAM (never 192.0.2.66), and nothing for
//! the right login; `portcullis replay` with `maxretry = 3` bans 203.0.113.5 alone. The first
//! run found the filter read every line as written (no change needed); cockpit-session
//! writes its lines without a pid (`cockpit-session: ...`), a shape now in the samples.
//! Cockpit 337 wrote every line as 287 did (same rhost=, same hostile names, no user= for an
//! unknown user); what differs is where: in systemd, its cockpit-session runs in its own
//! unit `cockpit-session@….service` (slice `system-cockpit\x2dsession.slice`), so the
//! filter's journal source now names that slice (and the wsinstance units, where 287's ran).
//!
//! Needs root, cockpit-ws and cockpit-session (cockpit-ws), cockpit-bridge, curl, openssl,
//! rsyslogd, iproute2's ip and ss, util-linux's unshare, and for the second run chroot and the
//! trixie tree (with cockpit-ws, cockpit-bridge and systemd); test.sh makes them all; fails
//! loudly when they are missing. Runs in about 4 s each (pam_unix delays each failure by 2 s, in
//! parallel).

mod common;

use common::*;
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// Run as pid 1 of the new pid, mount and network namespace (bash): every process of the
/// run is in it and dies with it; $1 is the test's directory, $2 the first of three uids
/// free on the machine, $3 the Debian 13 tree (empty: the machine's Cockpit). (After
/// [`PRIVATE_ETC_SH`], [`PRIVATE_SYSLOG_SH`] and [`TRIXIE_SH`].)
const SCRIPT: &str = r#"set -u
d="$1"; uid="$2"; tree="$3"
ip link set lo up
for a in 192.0.2.1 192.0.2.10 203.0.113.5 203.0.113.6 203.0.113.8 203.0.113.9 203.0.113.11 \
         203.0.113.12; do
  ip addr add "$a/32" dev lo || exit 2
done
for a in 2001:db8::1 2001:db8::7; do ip addr add "$a/128" dev lo nodad || exit 2; done
# a private /dev whose /dev/log is a private rsyslogd's socket (common/netns.rs)
private_syslog "$d"
# the Cockpit to run: the machine's (Debian 12), or Debian 13's in a private overlay of its
# tree (common/real.rs trixie_mount: its /etc, /run and /tmp private, $d at the same path)
r=""; ws=(/usr/lib/cockpit/cockpit-ws); sessions=
if [ -n "$tree" ]; then
  r="$d/root"
  trixie_mount "$tree" "$r" "$d/trixie" || exit 4
  ws=(chroot "$r" /usr/lib/cockpit/cockpit-ws)
else
  # the machine's /run (system bus, utmp) out of reach
  mount -t tmpfs -o mode=755 pct-run /run || exit 4
fi
# /var/log (btmp, wtmp, lastlog) out of reach
mount -t tmpfs -o mode=755 pct-log "$r/var/log" || exit 4
touch "$r/var/log/btmp" "$r/var/log/wtmp" "$r/var/log/lastlog"
# the accounts, in a private /etc only (the tree's overlay, or an overlay of the machine's)
mkdir -p "$d/etc-src" "$d/home"
chown "$uid:$uid" "$d/home"
cp "$r/etc/passwd" "$r/etc/group" "$r/etc/shadow" "$d/etc-src/"
hash=$(openssl passwd -6 Right-pw-1) || exit 4
i=0
for u in pctcockpit "admin rhost=192.0.2.66" "x ruser= rhost=192.0.2.66  user=y"; do
  echo "$u:x:$((uid + i)):$uid:cockpit test:$d/home:/bin/sh" >> "$d/etc-src/passwd"
  echo "$u:$hash:20000:0:99999:7:::" >> "$d/etc-src/shadow"
  i=$((i + 1))
done
echo "pctcockpit:x:$uid:" >> "$d/etc-src/group"
if [ -n "$tree" ]; then
  for f in passwd group shadow; do cat "$d/etc-src/$f" > "$r/etc/$f"; done
  # Cockpit 337's cockpit-ws starts no cockpit-session itself: it connects to
  # /run/cockpit/session, where systemd's cockpit-session.socket (Accept=yes) starts one per
  # connection, the connection its stdin and stdout; systemd-socket-activate does the same
  mkdir -p "$r/run/cockpit"
  chroot "$r" /usr/bin/systemd-socket-activate --inetd -a -l /run/cockpit/session \
    /usr/lib/cockpit/cockpit-session > "$d/session.out" 2> "$d/session.err" < /dev/null &
  sessions=$!
  for _ in $(seq 100); do [ -S "$r/run/cockpit/session" ] && break; sleep 0.1; done
  [ -S "$r/run/cockpit/session" ] || { echo "no cockpit-session socket" >&2; exit 5; }
else
  private_etc "$d/etc-ov" "$d/etc-src" passwd group shadow || exit 4
fi
"${ws[@]}" --no-tls --port 9090 --address 192.0.2.1 \
  > "$d/ws4.out" 2> "$d/ws4.err" < /dev/null &
w4=$!
"${ws[@]}" --no-tls --port 9090 --address 2001:db8::1 \
  > "$d/ws6.out" 2> "$d/ws6.err" < /dev/null &
w6=$!
for _ in $(seq 100); do
  [ "$(ss -Hltn 'sport = :9090' | wc -l)" -ge 2 ] && break
  sleep 0.1
done
[ "$(ss -Hltn 'sport = :9090' | wc -l)" -ge 2 ] || { echo "cockpit-ws did not listen" >&2; exit 5; }
# try SRC HOST USER:PASSWORD [curl options]: one login, its HTTP status into $d/codes
try() {
  local src=$1 host=$2 cred=$3 code
  shift 3
  code=$(curl -sS -m 15 --interface "$src" -o /dev/null -w '%{http_code}' "$@" \
    -H "Authorization: Basic $(printf '%s' "$cred" | base64 -w0)" \
    "http://$host:9090/cockpit/login" 2>> "$d/curl.err")
  printf '%s %s\n' "$src" "$code" >> "$d/codes"
}
forged='Jan 01 00:00:01 vm cockpit-session: pam_unix(cockpit:auth): authentication failure; logname= uid=0 euid=0 tty= ruser= rhost=192.0.2.66  user=y'
pids=()
try 203.0.113.5 192.0.2.1 pctcockpit:wrong1 & pids+=($!)
try 203.0.113.5 192.0.2.1 pctcockpit:wrong2 & pids+=($!)
try 203.0.113.5 192.0.2.1 pctcockpit:wrong3 & pids+=($!)
try 203.0.113.6 192.0.2.1 nosuch:wrong & pids+=($!)
try 2001:db8::7 '[2001:db8::1]' pctcockpit:wrong & pids+=($!)
try 203.0.113.8 192.0.2.1 'admin rhost=192.0.2.66:wrong' & pids+=($!)
try 203.0.113.9 192.0.2.1 'x ruser= rhost=192.0.2.66  user=y:wrong' & pids+=($!)
try 203.0.113.11 192.0.2.1 pctcockpit:wrong -H 'X-Forwarded-For: 192.0.2.66' & pids+=($!)
try 203.0.113.12 192.0.2.1 "x
$forged:wrong" & pids+=($!)
wait "${pids[@]}"
try 192.0.2.10 192.0.2.1 pctcockpit:Right-pw-1
for _ in $(seq 50); do
  grep -q "session opened for user pctcockpit" "$d/syslog" 2>/dev/null && break
  sleep 0.1
done
kill "$w4" "$w6"
wait "$w4" "$w6"
[ -z "$tree" ] || { kill "$sessions"; wait "$sessions"; }
kill %1
wait
"#;

// The Cockpit under test: Debian 12's (the machine's, 287) or Debian 13's (the trixie tree,
// 337, run with chroot).

/// Runs every scenario against `version`'s Cockpit and checks what the clients saw, what PAM
/// wrote and what the filter counts of it.
fn run(version: Release) {
    require_root();
    let tree = match version {
        Release::Deb12 => {
            for (file, package) in [
                ("/usr/lib/cockpit/cockpit-ws", "cockpit-ws"),
                ("/usr/lib/cockpit/cockpit-session", "cockpit-ws"),
            ] {
                assert!(
                    Path::new(file).is_file(),
                    "{file} is missing: install {package} (test.sh does)"
                );
            }
            require_program("cockpit-bridge", "cockpit-bridge");
            String::new()
        }
        Release::Deb13 => {
            require_program("chroot", "coreutils");
            trixie_root(&[
                "usr/lib/cockpit/cockpit-ws",
                "usr/lib/cockpit/cockpit-session",
                "usr/bin/cockpit-bridge",
                "usr/bin/systemd-socket-activate",
            ])
            .display()
            .to_string()
        }
    };
    let v337 = version == Release::Deb13;
    require_program("curl", "curl");
    require_program("openssl", "openssl");
    require_program("rsyslogd", "rsyslog");
    require_program("ip", "iproute2");
    require_program("ss", "iproute2");
    require_program("unshare", "util-linux");
    let dir = test_dir(if v337 { "cockpit-337" } else { "cockpit" });
    // the bridge runs as the test user, whose home is under it
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let uid = free_ids(3, 64700..64900).to_string();
    let shown = [
        ("cockpit-ws (ws4.err)", "ws4.err"),
        ("cockpit-ws (ws6.err)", "ws6.err"),
        ("cockpit-session", "session.err"),
        ("curl", "curl.err"),
        ("log", "syslog"),
    ];
    let script = format!("{PRIVATE_ETC_SH}{PRIVATE_SYSLOG_SH}{TRIXIE_SH}{SCRIPT}");
    run_script_ok(
        "cockpit",
        dir.path(),
        &script,
        &[uid.as_ref(), tree.as_ref()],
        &shown,
    );
    let read = |name: &str| fs::read_to_string(dir.path().join(name)).unwrap_or_default();
    let sys = dir.path().join("syslog");
    let text = read("syslog");

    // what the clients saw: nine refusals (401), one login (200)
    let mut codes: Vec<String> = read("codes").lines().map(String::from).collect();
    codes.sort();
    let mut want_codes: Vec<String> = [
        "2001:db8::7 401",
        "203.0.113.11 401",
        "203.0.113.12 401",
        "203.0.113.5 401",
        "203.0.113.5 401",
        "203.0.113.5 401",
        "203.0.113.6 401",
        "203.0.113.8 401",
        "203.0.113.9 401",
        "192.0.2.10 200",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    want_codes.sort();
    assert_eq!(
        codes,
        want_codes,
        "HTTP statuses; curl: {}\nlog:\n{text}",
        read("curl.err")
    );

    // Cockpit 337: every login ran a cockpit-session of the socket's (none of cockpit-ws's)
    if v337 {
        let spawned = read("session.err")
            .matches("Spawned /usr/lib/cockpit/cockpit-session ")
            .count();
        assert_eq!(
            spawned,
            10,
            "cockpit-session runs:\n{}",
            read("session.err")
        );
    }

    // what PAM wrote: one failure line per wrong login, the session of the right one, the
    // hostile names after rhost=, and no line of the client's making
    assert_eq!(
        text.matches("pam_unix(cockpit:auth): authentication failure;")
            .count(),
        9,
        "nine failures expected:\n{text}"
    );
    assert!(
        text.contains("pam_unix(cockpit:session): session opened for user pctcockpit("),
        "the right login's session is not in the log:\n{text}"
    );
    for hostile in [
        "ruser= rhost=203.0.113.8  user=admin rhost=192.0.2.66\n",
        "ruser= rhost=203.0.113.9  user=x ruser= rhost=192.0.2.66  user=y\n",
        "ruser= rhost=203.0.113.11  user=pctcockpit\n",
    ] {
        assert!(
            text.contains(hostile),
            "not in the log as expected ({hostile:?}):\n{text}"
        );
    }
    assert!(
        !text.lines().any(|l| l.starts_with("Jan 01 00:00:01")),
        "a client forged a whole line:\n{text}"
    );

    let mut got: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (host, rule, _line) in counted_matches("cockpit", &sys) {
        got.entry(host).or_default().push(rule);
    }
    let want: BTreeMap<String, Vec<String>> = [
        ("203.0.113.5", 3),
        ("203.0.113.6", 1),
        ("2001:db8::7", 1),
        ("203.0.113.8", 1),
        ("203.0.113.9", 1),
        ("203.0.113.11", 1),
        ("203.0.113.12", 1),
    ]
    .into_iter()
    .map(|(h, n)| (h.to_string(), vec!["pam-auth".to_string(); n]))
    .collect();
    assert_eq!(got, want, "what counted, per address; log:\n{text}");

    // the user names the filter read: the whole hostile names, never an address of theirs
    assert_counted_users(
        "cockpit",
        &sys,
        &[
            ("203.0.113.8", "admin rhost=192.0.2.66"),
            ("203.0.113.9", "x ruser= rhost=192.0.2.66  user=y"),
        ],
    );

    // a jail with maxretry 3 bans the client with three failures, and only it
    let bans = replay_jail(dir.path(), "cockpit", &sys, "normal", 3);
    assert_eq!(
        bans.into_iter().collect::<Vec<_>>(),
        vec!["203.0.113.5".to_string()],
        "bans; log:\n{text}"
    );
}

#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn real_cockpit_failures_count_for_the_address_cockpit_gave_pam() {
    run(Release::Deb12);
}

#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn real_cockpit_337_failures_count_for_the_address_cockpit_gave_pam() {
    run(Release::Deb13);
}

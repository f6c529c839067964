//! The `syncthing` filter against the real Syncthing: Debian 12's (1.19.2, the machine's) and
//! Debian 13's (1.29.5, test.sh's trixie tree, run with chroot in a private overlay of it with
//! a private /dev: common/real.rs `trixie_mount`), the same scenarios and one table of what
//! must count. Each runs
//! twice in its own pid, mount and network namespace (`unshare`), each with a config made by
//! `syncthing generate --gui-user --gui-password` (its bcrypt hash then swapped for one of
//! cost 4, quicker to check; discovery, relays, NAT, usage reports and upgrades off):
//! `syncthing serve --gui-address http://192.0.2.1:8384`
//! with the default `--logflags` (time only) and `--gui-address http://[2001:db8::1]:8384`
//! with `--logflags=7` (date, time and microseconds). Each logs to its stdout and to its
//! `--logfile`, the log the filter reads (1.x writes `[DEVID] TIME INFO: Wrong credentials
//! supplied during API authorization from ADDR:PORT`; 1.19 has no login form, only HTTP
//! basic auth, and logs neither the user name nor X-Forwarded-For).
//!
//! Clients (`curl --interface SRC -u USER:PASSWORD http://ADDR:8384/rest/system/status`):
//! 203.0.113.5 three wrong passwords; 203.0.113.6 an unknown user; 203.0.113.8 and .9 the
//! user names `admin from 192.0.2.66` and `x (address=192.0.2.66)`; 203.0.113.11 a wrong
//! password with `X-Forwarded-For: 192.0.2.66`; 203.0.113.12 no credentials at all (401,
//! logged nothing); 2001:db8::7 two wrong passwords over IPv6; 198.51.100.20 two wrong logins
//! at the GUI's login form (`POST /rest/noauth/auth/password`, 1.26 on), one as the user
//! `admin from 192.0.2.66`, both with `X-Forwarded-For: 192.0.2.66`; 192.0.2.10 the right
//! password (with an X-Forwarded-For too) on both instances, and at the form.
//!
//! In every log `portcullis test --filter syncthing --json` must count each wrong login
//! once, for the TCP peer (never 192.0.2.66), and nothing for 192.0.2.10 or the request
//! without credentials; `portcullis replay` with `maxretry = 3` bans 203.0.113.5 alone, and
//! with `maxretry = 2` on the IPv6 instance's log, 2001:db8::/64 alone. The first run found
//! that Syncthing up to 1.29.5 writes the peer with its port (`203.0.113.5:53684`,
//! `[2001:db8::7]:57478`) and by default a time without a date: the filter read none of it.
//! 1.29.5 writes the same line, for the form's failures too (1.19 has no form: its requests
//! are refused by basic auth and logged nothing), with the date by default, and answers 403
//! where 1.19 answered 401.
//!
//! Needs root, syncthing, curl, iproute2 (ip, ss) and util-linux's unshare, and for the second
//! run chroot and the trixie tree (test.sh makes them all); fails loudly when they are
//! missing. Runs in about 4 s each.

mod common;

use common::*;
use std::fs;

/// Run as pid 1 of the new pid, mount and network namespace (bash): every process of the
/// run is in it and dies with it; $1 is the test's directory, $2 the Debian 13 tree (empty:
/// the machine's Syncthing). (After [`PRIVATE_SYSLOG_SH`] and [`TRIXIE_SH`].)
const SCRIPT: &str = r#"set -u
d="$1"; tree="$2"
export HOME="$d"
# no start-up benchmark to choose a SHA-256 implementation
export STHASHING=minio
ip link set lo up
for a in 192.0.2.1 192.0.2.10 203.0.113.5 203.0.113.6 203.0.113.8 203.0.113.9 203.0.113.11 \
         203.0.113.12 198.51.100.20; do
  ip addr add "$a/32" dev lo || exit 2
done
for a in 2001:db8::1 2001:db8::7 2001:db8::10; do ip addr add "$a/128" dev lo nodad || exit 2; done
# the Syncthing to run: the machine's (Debian 12), or Debian 13's in a private overlay of its
# tree (common/real.rs trixie_mount, after a private /dev: its /etc, /run and /tmp private,
# $d at the same path)
syncthing=(syncthing)
if [ -n "$tree" ]; then
  private_dev
  trixie_mount "$tree" "$d/root" "$d/trixie" || exit 4
  syncthing=(chroot "$d/root" /usr/bin/syncthing)
fi
# bcrypt of Right-pw-1 at cost 4 (generate's cost 10 takes a second per wrong login on a
# loaded machine, twice: 1.19 compares the password again as ISO-8859-1)
fast='$2a$04$A8GEOfH5OaycjdDw0TKRR.ohqAzrkMnwCHbgWLJo2ZyTz9LUSAco6'
# conf NAME LISTEN: a home with a GUI user and a bcrypt password, nothing that reaches out
conf() {
  "${syncthing[@]}" generate --home "$d/$1" --gui-user pctadmin --gui-password Right-pw-1 \
    --no-default-folder > "$d/$1.gen" 2>&1 || exit 4
  sed -i -e 's|<globalAnnounceEnabled>true<|<globalAnnounceEnabled>false<|' \
    -e 's|<localAnnounceEnabled>true<|<localAnnounceEnabled>false<|' \
    -e 's|<relaysEnabled>true<|<relaysEnabled>false<|' \
    -e 's|<natEnabled>true<|<natEnabled>false<|' \
    -e 's|<urAccepted>0<|<urAccepted>-1<|' \
    -e 's|<autoUpgradeIntervalH>12<|<autoUpgradeIntervalH>0<|' \
    -e 's|<crashReportingEnabled>true<|<crashReportingEnabled>false<|' \
    -e 's|<startBrowser>true<|<startBrowser>false<|' \
    -e "s|<listenAddress>default<|<listenAddress>$2<|" \
    -e "s|<password>\\\$2a\\\$10\\\$[^<]*<|<password>$fast<|" "$d/$1/config.xml"
  grep -qF "<password>$fast<" "$d/$1/config.xml" || { echo "no bcrypt password" >&2; exit 4; }
}
conf h4 tcp://192.0.2.1:22000
conf h6 'tcp://[2001:db8::1]:22000'
"${syncthing[@]}" serve --no-browser --no-upgrade --home "$d/h4" --gui-address http://192.0.2.1:8384 \
  --logfile "$d/st4.log" > "$d/st4.out" 2>&1 < /dev/null &
"${syncthing[@]}" serve --no-browser --no-upgrade --home "$d/h6" --gui-address 'http://[2001:db8::1]:8384' \
  --logflags=7 --logfile "$d/st6.log" > "$d/st6.out" 2>&1 < /dev/null &
for _ in $(seq 150); do
  [ "$(ss -Hltn 'sport = :8384' | wc -l)" -ge 2 ] && break
  sleep 0.1
done
[ "$(ss -Hltn 'sport = :8384' | wc -l)" -ge 2 ] || { echo "syncthing did not listen" >&2; exit 5; }
# try SRC URL [curl options]: one request, its HTTP status into $d/codes
try() {
  local src=$1 url=$2 code
  shift 2
  code=$(curl -sS -m 10 --interface "$src" -o /dev/null -w '%{http_code}' "$@" "$url" \
    2>> "$d/curl.err")
  printf '%s %s\n' "$src" "$code" >> "$d/codes"
}
s4=http://192.0.2.1:8384/rest/system/status
s6='http://[2001:db8::1]:8384/rest/system/status'
pids=()
{ for p in wrong1 wrong2 wrong3; do try 203.0.113.5 "$s4" -u "pctadmin:$p"; done; } & pids+=($!)
try 203.0.113.6 "$s4" -u nosuch:wrong & pids+=($!)
try 203.0.113.8 "$s4" -u 'admin from 192.0.2.66:wrong' & pids+=($!)
try 203.0.113.9 "$s4" -u 'x (address=192.0.2.66):wrong' & pids+=($!)
try 203.0.113.11 "$s4" -u pctadmin:wrong -H 'X-Forwarded-For: 192.0.2.66' & pids+=($!)
try 203.0.113.12 "$s4" & pids+=($!)
{ for p in wrong1 wrong2; do try 2001:db8::7 "$s6" -u "pctadmin:$p"; done; } & pids+=($!)
# the GUI's login form (1.26 on; 1.19 has none): a wrong password and a hostile user name,
# each with an X-Forwarded-For
form() {
  try "$1" http://192.0.2.1:8384/rest/noauth/auth/password -H 'Content-Type: application/json' \
    -H 'X-Forwarded-For: 192.0.2.66' -d "{\"username\": \"$2\", \"password\": \"$3\"}"
}
{ form 198.51.100.20 pctadmin wrong; form 198.51.100.20 'admin from 192.0.2.66' wrong; } & pids+=($!)
wait "${pids[@]}"
try 192.0.2.10 http://192.0.2.1:8384/ -u pctadmin:Right-pw-1 -H 'X-Forwarded-For: 192.0.2.66'
try 192.0.2.10 "$s4" -u pctadmin:Right-pw-1
form 192.0.2.10 pctadmin Right-pw-1
try 2001:db8::10 'http://[2001:db8::1]:8384/' -u pctadmin:Right-pw-1
n4=7
[ -z "$tree" ] || n4=9
for _ in $(seq 50); do
  [ "$(grep -c "Wrong credentials" "$d/st4.log" 2>/dev/null)" -ge "$n4" ] &&
    [ "$(grep -c "Wrong credentials" "$d/st6.log" 2>/dev/null)" -ge 2 ] && break
  sleep 0.1
done
kill %1 %2
wait
"#;

// The Syncthing under test: Debian 12's (the machine's, 1.19) or Debian 13's (the trixie
// tree, 1.29, run with chroot).

/// Runs every scenario against `version`'s Syncthing and checks what the clients saw, what
/// it wrote and what the filter counts of it.
fn run(version: Release) {
    require_root();
    let tree = match version {
        Release::Deb12 => {
            require_program("syncthing", "syncthing");
            String::new()
        }
        Release::Deb13 => {
            require_program("chroot", "coreutils");
            trixie_root(&["usr/bin/syncthing"]).display().to_string()
        }
    };
    let v129 = version == Release::Deb13;
    require_program("curl", "curl");
    require_program("ip", "iproute2");
    require_program("ss", "iproute2");
    require_program("unshare", "util-linux");
    let dir = test_dir(if v129 { "syncthing-1.29" } else { "syncthing" });
    let shown = [
        ("curl", "curl.err"),
        ("syncthing (IPv4)", "st4.out"),
        ("syncthing (IPv6)", "st6.out"),
    ];
    let script = format!("{PRIVATE_SYSLOG_SH}{TRIXIE_SH}{SCRIPT}");
    run_script_ok("syncthing", dir.path(), &script, &[tree.as_ref()], &shown);
    let read = |name: &str| fs::read_to_string(dir.path().join(name)).unwrap_or_default();

    // what the clients saw: every wrong login and the bare request refused (1.19: 401;
    // 1.29: 403), the right one let in (200; 403 is the CSRF check of /rest/, after a
    // successful login); the login form (1.29: 204 for the right password, 403 for a wrong
    // one) is an unknown path behind HTTP basic auth in 1.19 (401 for all, nothing logged)
    let (refused, form_ok) = if v129 { ("403", "204") } else { ("401", "401") };
    let mut codes: Vec<String> = read("codes").lines().map(String::from).collect();
    codes.sort();
    let mut want_codes: Vec<String> = [
        ("203.0.113.5", refused),
        ("203.0.113.5", refused),
        ("203.0.113.5", refused),
        ("203.0.113.6", refused),
        ("203.0.113.8", refused),
        ("203.0.113.9", refused),
        ("203.0.113.11", refused),
        ("203.0.113.12", refused),
        ("2001:db8::7", refused),
        ("2001:db8::7", refused),
        ("198.51.100.20", refused),
        ("198.51.100.20", refused),
        ("192.0.2.10", "200"),
        ("192.0.2.10", "403"),
        ("192.0.2.10", form_ok),
        ("2001:db8::10", "200"),
    ]
    .into_iter()
    .map(|(src, code)| format!("{src} {code}"))
    .collect();
    want_codes.sort();
    assert_eq!(
        codes,
        want_codes,
        "HTTP statuses; curl: {}\nsyncthing:\n{}",
        read("curl.err"),
        read("st4.log")
    );

    let want4 = want_rules(&[
        ("203.0.113.5", &[("bad-credentials", 3)]),
        ("203.0.113.6", &[("bad-credentials", 1)]),
        ("203.0.113.8", &[("bad-credentials", 1)]),
        ("203.0.113.9", &[("bad-credentials", 1)]),
        ("203.0.113.11", &[("bad-credentials", 1)]),
    ]);
    // 1.29's login form: the wrong password and the hostile user name, for the TCP peer
    let mut want4 = want4;
    if v129 {
        want4.extend(want_rules(&[("198.51.100.20", &[("bad-credentials", 2)])]));
    }
    let want6 = want_rules(&[("2001:db8::7", &[("bad-credentials", 2)])]);
    let failures4 = if v129 { 9 } else { 7 };
    for (name, want, failures) in [
        ("st4.log", &want4, failures4),
        ("st4.out", &want4, failures4),
        ("st6.log", &want6, 2),
        ("st6.out", &want6, 2),
    ] {
        let log = dir.path().join(name);
        let text = read(name);
        // Syncthing wrote one line per wrong login, the TCP peer with its port
        assert_eq!(
            text.matches("INFO: Wrong credentials supplied during API authorization from ")
                .count(),
            failures,
            "{name}:\n{text}"
        );
        assert!(
            !text.contains("192.0.2.66") && !text.contains("proxied"),
            "{name}: Syncthing 1.19 now logs a forwarded address or a user name:\n{text}"
        );
        let got = rules_by_host("syncthing", &log);
        assert_eq!(
            &got, want,
            "{name}: what counted, per address; log:\n{text}"
        );
    }
    // the default --logflags: 1.19 the time alone, 1.29 the date and the time
    let st4_text = read("st4.log");
    let dated = st4_text
        .lines()
        .filter(|l| l.contains("Wrong credentials"))
        .filter(|l| l.split(' ').nth(1).is_some_and(|f| f.contains('/')))
        .count();
    assert_eq!(
        dated,
        if v129 { failures4 } else { 0 },
        "st4.log:\n{st4_text}"
    );
    // the IPv6 instance's log has the date and microseconds (--logflags=7)
    let v6 = read("st6.log");
    assert!(
        v6.lines().any(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            f.len() > 3 && f[1].contains('/') && f[2].contains('.') && l.contains("[2001:db8::7]:")
        }),
        "st6.log:\n{v6}"
    );

    // replay: maxretry 3 bans 203.0.113.5 alone; on the IPv6 log maxretry 2 bans its /64
    let st4 = dir.path().join("st4.log");
    let bans = replay_jail(dir.path(), "syncthing", &st4, "normal", 3);
    assert_eq!(
        bans.into_iter().collect::<Vec<_>>(),
        vec!["203.0.113.5".to_string()],
        "bans; log:\n{}",
        read("st4.log")
    );
    let st6 = dir.path().join("st6.log");
    let bans = replay_jail(dir.path(), "syncthing", &st6, "normal", 2);
    assert_eq!(
        bans.into_iter().collect::<Vec<_>>(),
        vec![ban_of("2001:db8::7")],
        "bans; log:\n{v6}"
    );
}

#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn real_syncthing_failures_count_for_the_tcp_peer() {
    run(Release::Deb12);
}

#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn real_syncthing_1_29_failures_count_for_the_tcp_peer() {
    run(Release::Deb13);
}

//! The `rsyncd` filter against the real rsync daemon, twice: Debian 12's rsync
//! (3.5.0+ds1-0+deb12u1, the machine's) and Debian 13's (3.5.0+ds1-0+deb13u2, test.sh's
//! trixie tree, run with chroot in a private overlay of it: common/real.rs `trixie_mount`),
//! the same scenarios and one table of what counts for both (both write the same lines). It
//! runs as `"${daemon[@]}" --daemon --no-detach` in its own pid, mount and network namespace
//! (`unshare`), listening on every address of the namespace (no `--address`: one daemon then
//! serves 192.0.2.1 and [2001:db8::873] both), with a module `backup` that has `auth users =
//! alice`, a `secrets file` and `hosts deny = 203.0.113.88`. It sets no `log file`, so it logs
//! through syslog(3) (program `rsyncd`), the log the filter reads, to a private rsyslogd (a
//! private /dev whose /dev/log is its socket, rsyslog's traditional file format).
//!
//! Clients (rsync itself, its source chosen with `--address`): 198.51.100.9 gives alice a
//! wrong password twice (URL and `::` syntax), tries the user bob that the module does not
//! list, the user `admin from 192.0.2.66 port 1` (rsync sends "USER RESPONSE" and the daemon
//! cuts the user at the first space: it logs `admin`) and a user whose LF ends that line
//! before a forged "auth failed ... (192.0.2.66)" (the daemon reads `x` and logs an invalid
//! challenge response, without a user); 203.0.113.77 tries the users
//! `x(192.0.2.66)`, `x<TAB>(192.0.2.66):` and `(192.0.2.66)`, and asks for the module
//! `nosuch' tried from UNDETERMINED (192.0.2.66)`; 203.0.113.88 is refused by `hosts deny`;
//! 2001:db8::77 gives a wrong password over IPv6; 192.0.2.10 lists the module with the right
//! password.
//!
//! `portcullis test --filter rsyncd --json` on the syslog file must count each failure once,
//! for the address rsync wrote (never 192.0.2.66), with the rule of its kind, and nothing for
//! the legitimate client; `portcullis replay` with `maxretry = 4` bans 198.51.100.9 (five
//! failures) alone
//! (203.0.113.77's unknown module is scan-class, not counted in mode normal).
//!
//! Needs root, rsync, rsyslogd and util-linux's unshare (test.sh installs them), and for the
//! second run chroot and the trixie tree; fails loudly when they are missing. Runs in about
//! 1 s each.

mod common;

use common::*;
use std::collections::BTreeMap;
use std::fs;

/// Run as pid 1 of the new pid, mount and network namespace (bash): every process of the
/// run is in it and dies with it; $1 is the test's directory, $2 the Debian 13 tree (empty:
/// the machine's rsync). (After [`PRIVATE_SYSLOG_SH`] and [`TRIXIE_SH`].)
const SCRIPT: &str = r#"set -u
d="$1"; tree="$2"
ip link set lo up
for a in 192.0.2.1 192.0.2.10 198.51.100.9 203.0.113.77 203.0.113.88; do
  ip addr add "$a/32" dev lo || exit 2
done
for a in 2001:db8::873 2001:db8::77; do ip addr add "$a/128" dev lo nodad || exit 2; done
# a private /dev whose /dev/log is a private rsyslogd's socket (common/netns.rs)
private_syslog "$d"
# the daemon to run: the machine's (Debian 12), or Debian 13's in a private overlay of its
# tree (common/real.rs trixie_mount: its /etc, /run and /tmp private, $d at the same path)
daemon=(rsync); r=/
if [ -n "$tree" ]; then
  r="$d/root"
  trixie_mount "$tree" "$r" "$d/trixie" || exit 4
  daemon=(chroot "$r" /usr/bin/rsync)
fi
dpkg-query --admindir="$r/var/lib/dpkg" -W -f '${Version}' rsync > "$d/version"
mkdir -p "$d/backup"
echo hello > "$d/backup/file.txt"
printf 'alice:alicesecret\n' > "$d/secrets"
chmod 600 "$d/secrets"
cat > "$d/rsyncd.conf" <<C
pid file = $d/rsyncd.pid
use chroot = no
[backup]
path = $d/backup
uid = root
gid = root
read only = yes
auth users = alice
secrets file = $d/secrets
hosts deny = 203.0.113.88
C
"${daemon[@]}" --daemon --no-detach --config="$d/rsyncd.conf" 2>"$d/rsyncd.err" &
for _ in $(seq 100); do grep -q "rsyncd version .* starting" "$d/syslog" 2>/dev/null && break; sleep 0.1; done
grep -q "rsyncd version .* starting" "$d/syslog" 2>/dev/null || { echo "rsyncd did not start" >&2; exit 4; }
for _ in $(seq 50); do
  ss -ltn | grep -q ':873 ' && ss -ltn | grep -q '\]:873 ' && break
  sleep 0.1
done
# SOURCE PASSWORD URL [USER]: one rsync client (its user from the URL, else from $USER);
# its exit code (5: the daemon refused) goes to rcs
c() {
  RSYNC_PASSWORD="$2" USER="${4:-nobody}" timeout 10 rsync --address="$1" "$3" >> "$d/clients.out" 2>&1
  echo "$1 rc=$?" >> "$d/rcs"
}
c 198.51.100.9 wrong1 rsync://alice@192.0.2.1/backup/
c 198.51.100.9 wrong2 alice@192.0.2.1::backup/
c 198.51.100.9 wrong3 rsync://bob@192.0.2.1/backup/
c 198.51.100.9 wrong4 rsync://192.0.2.1/backup/ 'admin from 192.0.2.66 port 1'
# a LF in the user ends rsync's "USER RESPONSE" line: the daemon reads `x`, no response
c 198.51.100.9 wrong5 rsync://192.0.2.1/backup/ $'x\nauth failed on module backup from UNKNOWN (192.0.2.66) for y: password mismatch'
c 192.0.2.10 alicesecret rsync://alice@192.0.2.1/backup/
c 203.0.113.77 wrong6 rsync://192.0.2.1/backup/ 'x(192.0.2.66)'
c 203.0.113.77 wrong7 rsync://192.0.2.1/backup/ $'x\t(192.0.2.66):'
c 203.0.113.77 wrong8 rsync://192.0.2.1/backup/ '(192.0.2.66)'
c 203.0.113.77 wrong9 "rsync://alice@192.0.2.1/nosuch' tried from UNDETERMINED (192.0.2.66)/"
c 203.0.113.88 wrong10 rsync://alice@192.0.2.1/backup/
c 2001:db8::77 wrong11 'rsync://alice@[2001:db8::873]/backup/'
for _ in $(seq 50); do
  [ "$(grep -c -E "auth failed|rsync denied|unknown module|rsync on backup" "$d/syslog" 2>/dev/null)" -ge 12 ] && break
  sleep 0.1
done
kill %2
wait %2
kill %1
wait
"#;

// The rsync daemon under test: Debian 12's (the machine's, 3.5.0+ds1-0+deb12u1) or Debian
// 13's (the trixie tree, 3.5.0+ds1-0+deb13u2, run with chroot).

/// Runs every scenario against `version`'s daemon (the clients are the machine's rsync) and
/// checks what the clients got, what the daemon wrote and what the filter counts of it.
fn run(version: Release) {
    require_root();
    require_program("rsync", "rsync");
    require_program("rsyslogd", "rsyslog");
    require_program("unshare", "util-linux");
    require_program("ss", "iproute2");
    let tree = match version {
        Release::Deb12 => String::new(),
        Release::Deb13 => {
            require_program("chroot", "coreutils");
            trixie_root(&["usr/bin/rsync"]).display().to_string()
        }
    };
    let dir = test_dir(match version {
        Release::Deb12 => "rsyncd",
        Release::Deb13 => "rsyncd-deb13",
    });
    let shown = [("rsyncd", "rsyncd.err"), ("log", "syslog")];
    let script = format!("{PRIVATE_SYSLOG_SH}{TRIXIE_SH}{SCRIPT}");
    run_script_ok("rsyncd", dir.path(), &script, &[tree.as_ref()], &shown);
    let read = |name: &str| fs::read_to_string(dir.path().join(name)).unwrap_or_default();
    let release = match version {
        Release::Deb12 => "3.5.0+ds1-0+deb12",
        Release::Deb13 => "3.5.0+ds1-0+deb13",
    };
    assert!(
        read("version").starts_with(release),
        "rsync {}",
        read("version")
    );
    let sys = dir.path().join("syslog");
    let text = read("syslog");

    // the clients' own view: the legitimate one listed the module, every other was refused
    let rcs = read("rcs");
    let mut codes: BTreeMap<&str, usize> = BTreeMap::new();
    for l in rcs.lines() {
        *codes.entry(l).or_default() += 1;
    }
    let want_codes: BTreeMap<&str, usize> = [
        ("198.51.100.9 rc=5", 5),
        ("203.0.113.77 rc=5", 4),
        ("203.0.113.88 rc=5", 1),
        ("2001:db8::77 rc=5", 1),
        ("192.0.2.10 rc=0", 1),
    ]
    .into_iter()
    .collect();
    assert_eq!(
        codes,
        want_codes,
        "the clients' results:\n{}\nlog:\n{text}",
        read("clients.out")
    );
    assert!(
        read("clients.out").contains("file.txt"),
        "the legitimate client did not list the module:\n{}",
        read("clients.out")
    );

    // what rsync wrote: the user is cut at its first space, a TAB escaped by rsyslog, the
    // module name whole
    for s in [
        "auth failed on module backup from UNKNOWN (198.51.100.9) for alice: password mismatch",
        "auth failed on module backup from UNKNOWN (198.51.100.9) for bob: no matching rule",
        "auth failed on module backup from UNKNOWN (198.51.100.9) for admin: no matching rule",
        "auth failed on module backup from UNKNOWN (203.0.113.77) for x(192.0.2.66): no matching rule",
        "auth failed on module backup from UNKNOWN (203.0.113.77) for x#011(192.0.2.66):: no matching rule",
        "auth failed on module backup from UNKNOWN (203.0.113.77) for (192.0.2.66): no matching rule",
        "unknown module 'nosuch' tried from UNDETERMINED (192.0.2.66)' tried from UNKNOWN (203.0.113.77)",
        "rsync denied on module backup from UNKNOWN (203.0.113.88)",
        "auth failed on module backup from UNKNOWN (2001:db8::77) for alice: password mismatch",
        "auth failed on module backup from UNKNOWN (198.51.100.9): invalid challenge response",
        "rsync on backup/ from alice@UNKNOWN (192.0.2.10)",
    ] {
        assert!(text.contains(s), "not in the syslog: {s}\n{text}");
    }

    // what the filter counted, per address and rule
    let mut got: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (host, rule, _) in counted_matches("rsyncd", &sys) {
        got.entry(host).or_default().push(rule);
    }
    for v in got.values_mut() {
        v.sort();
    }
    let want: BTreeMap<String, Vec<String>> = [
        ("198.51.100.9", vec!["auth-failed"; 5]),
        (
            "203.0.113.77",
            vec![
                "auth-failed",
                "auth-failed",
                "auth-failed",
                "unknown-module",
            ],
        ),
        ("203.0.113.88", vec!["denied"]),
        ("2001:db8::77", vec!["auth-failed"]),
    ]
    .into_iter()
    .map(|(h, v)| (h.to_string(), v.into_iter().map(String::from).collect()))
    .collect();
    assert_eq!(got, want, "counted per address:\nlog:\n{text}");

    // the user names the filter read: rsync's, cut at the first space
    let mut users: Vec<String> = test_json("rsyncd", &sys)
        .iter()
        .filter(|v| v["rule"] == "auth-failed")
        .map(|v| v["user"].as_str().unwrap_or("-").to_string())
        .collect();
    users.sort();
    assert_eq!(
        users,
        [
            "(192.0.2.66)",
            "-",
            "admin",
            "alice",
            "alice",
            "alice",
            "bob",
            "x#011(192.0.2.66):",
            "x(192.0.2.66)"
        ],
        "log:\n{text}"
    );

    // a jail with maxretry 4 bans the client with five failures, and only it (the unknown
    // module is scan-class: 203.0.113.77 has three in mode normal)
    let bans = replay_jail(dir.path(), "rsyncd", &sys, "normal", 4);
    assert_eq!(
        bans.into_iter().collect::<Vec<_>>(),
        vec!["198.51.100.9".to_string()],
        "bans:\nlog:\n{text}"
    );
}

#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn real_rsyncd_failures_count_for_the_address_rsync_wrote() {
    run(Release::Deb12);
}

#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn real_rsyncd_deb13_failures_count_for_the_address_rsync_wrote() {
    run(Release::Deb13);
}

//! The `rspamd` filter against the real Rspamd, twice: Debian 12's rspamd (3.4, the
//! machine's) and Debian 13's (3.12.1, test.sh's trixie-c tree, run with chroot in a private
//! overlay of it: common/real.rs `trixie_mount`), the same scenarios and one table of what
//! counts for both (3.12.1 writes the same lines). Each runs in its own
//! pid, mount and network namespace (`unshare`) with Debian's /etc/rspamd and a private
//! `LOCAL_CONFDIR` (`--var`): only the controller worker, on 192.0.2.1:11334 and
//! [2001:db8::1]:11334, with `password` and `enable_password` set to a hash made by
//! `rspamadm pw` at run time, logging to its own file (`type = "file"`, the layout the
//! filter's header shows); a three-entry TLD list and no hyperscan keep the start short.
//!
//! Clients (curl `--interface`, `GET /stat`): 198.51.100.7 sends a wrong password, a wrong
//! password with forged `X-Forwarded-For`/`X-Real-IP` headers naming 192.0.2.10, no password,
//! the default "q1", and a hostile password (`x; source ip: 192.0.2.10:1`);
//! [2001:db8::7] and 203.0.113.9 send one wrong password each; 192.0.2.10 sends the right one.
//!
//! `portcullis test --filter rspamd --json` on rspamd's log must count each refused request
//! once (the missing password through the "absent or incorrect" line rspamd writes after
//! the weight-0 "absent password" one), for the TCP peer rspamd wrote (never the forged
//! header's address), and nothing for the right password; `portcullis replay` with
//! `maxretry = 3` bans 198.51.100.7 alone.
//!
//! Needs root, rspamd and rspamadm (rspamd), curl and util-linux's unshare (test.sh installs
//! them), and for the second run chroot and the trixie-c tree; fails loudly when they are
//! missing. Runs in about 3 s each.

mod common;

use common::*;
use std::collections::BTreeMap;
use std::fs;

/// Run as pid 1 of the new pid, mount and network namespace (bash, after
/// [`PRIVATE_SYSLOG_SH`] and [`TRIXIE_SH`]): every process of the run is in it and dies with
/// it; $1 is the test's directory, $2 the Debian 13 tree (empty: the machine's rspamd).
const SCRIPT: &str = r#"set -u
d="$1"; tree="$2"
ip link set lo up
for a in 192.0.2.1 192.0.2.10 198.51.100.7 203.0.113.9; do ip addr add "$a/32" dev lo || exit 2; done
for a in 2001:db8::1 2001:db8::7; do ip addr add "$a/128" dev lo nodad || exit 2; done
mkdir -p "$d/local/local.d" "$d/db" "$d/run"
# the rspamd to run: the machine's (Debian 12), or Debian 13's in a private overlay of its
# tree (common/real.rs trixie_mount: its /etc, /run and /tmp private, $d at the same path)
private_dev
pre=(); r=/
if [ -n "$tree" ]; then
  r="$d/root"
  trixie_mount "$tree" "$r" "$d/trixie" || exit 4
  pre=(chroot "$r")
fi
dpkg-query --admindir="$r/var/lib/dpkg" -W -f '${Version}' rspamd > "$d/version"
pw=$("${pre[@]}" rspamadm pw -p 'right-pass-1' 2>/dev/null)
case "$pw" in '$2$'*) ;; *) echo "rspamadm pw failed: $pw" >&2; exit 2;; esac
cat > "$d/local/local.d/worker-controller.inc" <<C
bind_socket = "192.0.2.1:11334";
bind_socket = "[2001:db8::1]:11334";
password = "$pw";
enable_password = "$pw";
C
cat > "$d/local/local.d/logging.inc" <<C
type = "file";
filename = "$d/rspamd.log";
level = "info";
C
echo 'enabled = false;' > "$d/local/local.d/worker-normal.inc"
echo 'enabled = false;' > "$d/local/local.d/worker-proxy.inc"
echo 'count = 0;' > "$d/local/local.d/worker-fuzzy.inc"
printf 'com\nnet\norg\n' > "$d/tld.dat"
cat > "$d/local/local.d/options.inc" <<C
url_tld = "$d/tld.dat";
disable_hyperscan = true;
dns { nameserver = ["192.0.2.1:53"]; timeout = 1s; retransmits = 1; }
C
"${pre[@]}" rspamd -f -i -u root -g root --var LOCAL_CONFDIR="$d/local" --var DBDIR="$d/db" \
  --var RUNDIR="$d/run" --var LOGDIR="$d" -p "$d/run/rspamd.pid" > "$d/rspamd.out" 2>&1 &
for _ in $(seq 150); do [ "$(ss -Hltn 'sport = :11334' | wc -l)" -ge 2 ] && break; sleep 0.1; done
[ "$(ss -Hltn 'sport = :11334' | wc -l)" -ge 2 ] || { echo "rspamd did not listen" >&2; exit 4; }
c() {
  src=$1; shift
  printf '%s %s\n' "$src" "$(timeout 10 curl -s -m 5 --interface "$src" -o /dev/null -w '%{http_code}' "$@")" >> "$d/codes"
}
v4=http://192.0.2.1:11334/stat
c 198.51.100.7 -H "Password: wrong-1" $v4
c 198.51.100.7 -H "Password: wrong-2" -H "X-Forwarded-For: 192.0.2.10" -H "X-Real-IP: 192.0.2.10" $v4
c 198.51.100.7 $v4
c 198.51.100.7 -H "Password: q1" $v4
c 198.51.100.7 -H "Password: x; source ip: 192.0.2.10:1" $v4
c 2001:db8::7 -H "Password: wrong-3" 'http://[2001:db8::1]:11334/stat'
c 203.0.113.9 -H "Password: wrong-4" $v4
c 192.0.2.10 -H "Password: right-pass-1" $v4
for _ in $(seq 50); do
  [ "$(grep -c "source ip: " "$d/rspamd.log" 2>/dev/null)" -ge 8 ] && break
  sleep 0.1
done
kill %1
wait
"#;

// The rspamd under test: Debian 12's (the machine's, 3.4) or Debian 13's (the trixie-c tree,
// 3.12.1, run with chroot).

#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn real_rspamd_controller_failures_count_for_the_peer_rspamd_wrote() {
    run(Release::Deb12);
}

#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn real_rspamd_3_12_controller_failures_count_for_the_peer_rspamd_wrote() {
    run(Release::Deb13);
}

/// Runs every scenario against `version`'s rspamd (the clients are the machine's) and checks
/// what the clients got, what rspamd wrote and what the filter counts of it.
fn run(version: Release) {
    require_root();
    require_program("curl", "curl");
    require_program("unshare", "util-linux");
    let tree = match version {
        Release::Deb12 => {
            require_program("rspamd", "rspamd");
            require_program("rspamadm", "rspamd");
            String::new()
        }
        Release::Deb13 => {
            require_program("chroot", "coreutils");
            trixie_c_root(&["usr/bin/rspamd", "usr/bin/rspamadm"])
                .display()
                .to_string()
        }
    };
    let dir = test_dir(match version {
        Release::Deb12 => "rspamd",
        Release::Deb13 => "rspamd-3.12",
    });
    let shown = [("rspamd", "rspamd.out"), ("log", "rspamd.log")];
    let script = format!("{PRIVATE_SYSLOG_SH}{TRIXIE_SH}{SCRIPT}");
    run_script_ok("rspamd", dir.path(), &script, &[tree.as_ref()], &shown);
    let read = |name: &str| fs::read_to_string(dir.path().join(name)).unwrap_or_default();
    let release = match version {
        Release::Deb12 => "3.4",
        Release::Deb13 => "3.12.",
    };
    assert!(
        read("version").starts_with(release),
        "rspamd {}",
        read("version")
    );
    let log = dir.path().join("rspamd.log");

    // rspamd refused every request but the right password's (curl's own view)
    let codes = read("codes");
    assert_eq!(
        codes.lines().filter(|l| l.ends_with(" 401")).count(),
        7,
        "seven refused requests expected:\n{codes}"
    );
    assert!(
        codes.contains("192.0.2.10 200"),
        "the right password was refused:\n{codes}"
    );

    let text = read("rspamd.log");
    // the rspamd that started is the release's (its own banner)
    let banner = match version {
        Release::Deb12 => "; main; main: rspamd 3.4 is starting",
        Release::Deb13 => "; main; main: rspamd 3.12.1 is starting",
    };
    assert!(text.contains(banner), "no `{banner}`:\n{text}");
    let mut got: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (host, rule, line) in counted_matches("rspamd", &log) {
        got.entry(host).or_default().push(format!("{rule}: {line}"));
    }
    let rules = rules_of(&got);
    let want: BTreeMap<&str, Vec<&str>> = [
        (
            "198.51.100.7",
            vec!["default-password", "failed", "failed", "failed", "failed"],
        ),
        ("2001:db8::7", vec!["failed"]),
        ("203.0.113.9", vec!["failed"]),
    ]
    .into_iter()
    .collect();
    assert_eq!(
        rules, want,
        "what counted, per address: {got:#?}\nlog:\n{text}"
    );
    // the shapes rspamd 3.4 writes: IPv6 in brackets, the missing password twice
    assert!(
        text.contains("rspamd_controller_check_password: absent or incorrect password has been specified; source ip: [2001:db8::7]:"),
        "no bracketed IPv6 peer:\n{text}"
    );
    assert!(
        text.contains("; csession; rspamd_controller_check_password: absent password has been specified; source ip: 198.51.100.7:"),
        "no absent-password line:\n{text}"
    );
    assert!(
        text.contains("; csession; rspamd_controller_check_password: deny default password for remote access; source ip: 198.51.100.7:"),
        "no default-password line:\n{text}"
    );
    // the forged headers and the hostile password took nothing
    assert!(!got.contains_key("192.0.2.10"), "{got:#?}");
    assert!(!text.contains("source ip: 192.0.2.10"), "{text}");

    // a jail with maxretry 3 bans the client with five refusals, and only it
    let bans = replay_jail(dir.path(), "rspamd", &log, "normal", 3);
    assert_eq!(
        bans.into_iter().collect::<Vec<_>>(),
        vec!["198.51.100.7".to_string()],
        "bans:\nlog:\n{text}"
    );
}

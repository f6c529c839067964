//! The `nagios` filter (NRPE refusing hosts) against the real NRPE daemon, twice: Debian
//! 12's nrpe (nagios-nrpe-server 4.1.0, the machine's) and Debian 13's (4.1.3, test.sh's
//! trixie-c tree, run with chroot in a private overlay of it: common/real.rs
//! `trixie_mount`), the same scenarios and one table of what counts for both (4.1.3 writes
//! every line read as 4.1.0 does). Each runs in the foreground (`-f`) in its own pid, mount
//! and network namespace (`unshare`), listening on every address of the namespace (192.0.2.56 and
//! 2001:db8::56 among them) with `allowed_hosts=192.0.2.10,192.0.2.11`, `debug=1` (so that it
//! also logs the command names clients ask for) and one trivial command; it logs through
//! syslog(3) to a private rsyslogd (a private /dev whose /dev/log is its socket), writing
//! rsyslog's traditional file format, where the filter's header says it reads.
//!
//! Clients (`check_nrpe` from Debian's nagios-nrpe-plugin, `-b SRC` as source address):
//! 192.0.2.10 runs the command (allowed) and asks for two hostile command names (one naming
//! 198.51.100.7 in NRPE's own refusal words, which nrpe logs with debug, one with a newline,
//! which nrpe refuses as a metacharacter); 192.0.2.11, allowed but misconfigured, connects
//! without TLS (`-n`: a failed handshake, and check_nrpe tries again with a version 2
//! packet); 198.51.100.9 connects three times, 203.0.113.77 once with `-n` (two
//! connections) and 2001:db8:77::7 once over IPv6 (`-6`), all outside allowed_hosts.
//! check_nrpe logs its own errors to the same syslog, naming the server's address: they must
//! count nothing.
//!
//! `portcullis test --filter nagios --json` on the syslog must count each refused connection
//! once (`not-allowed`) for the address nrpe wrote, each failed handshake once (`ssl`) for
//! 192.0.2.11, and nothing for 192.0.2.10, for 198.51.100.7 (named only in a command name)
//! or for the server (named in check_nrpe's lines); `portcullis replay` with `maxretry = 3`
//! bans 198.51.100.9 alone.
//!
//! Needs root, nrpe (nagios-nrpe-server), check_nrpe (nagios-nrpe-plugin), rsyslogd and
//! util-linux's unshare (test.sh installs them), and for the second run chroot and the
//! trixie-c tree; fails loudly when they are missing. Runs in about 1 s each.

mod common;

use common::*;
use std::collections::BTreeMap;
use std::fs;

const CHECK_NRPE: &str = "/usr/lib/nagios/plugins/check_nrpe";

/// Run as pid 1 of the new pid, mount and network namespace (bash): every process of the
/// run is in it and dies with it; $1 is the test's directory, $2 the Debian 13 tree (empty:
/// the machine's nrpe). (After [`PRIVATE_SYSLOG_SH`] and [`TRIXIE_SH`].)
const SCRIPT: &str = r#"set -u
d="$1"; tree="$2"
ip link set lo up
for a in 192.0.2.56 192.0.2.10 192.0.2.11 198.51.100.9 203.0.113.77; do
  ip addr add "$a/32" dev lo || exit 2
done
for a in 2001:db8::56 2001:db8:77::7; do ip addr add "$a/128" dev lo nodad || exit 2; done
# a private /dev whose /dev/log is a private rsyslogd's socket (common/netns.rs)
private_syslog "$d"
# the nrpe to run: the machine's (Debian 12), or Debian 13's in a private overlay of its tree
# (common/real.rs trixie_mount: its /etc, /run and /tmp private, $d at the same path), through
# chroot
r=/; run=()
if [ -n "$tree" ]; then
  r="$d/root"
  trixie_mount "$tree" "$r" "$d/trixie" || exit 4
  run=(chroot "$r")
fi
dpkg-query --admindir="$r/var/lib/dpkg" -W -f '${Version}' nagios-nrpe-server > "$d/version"
cat > "$d/nrpe.cfg" <<C
log_facility=daemon
debug=1
server_port=5666
nrpe_user=nobody
nrpe_group=nogroup
allowed_hosts=192.0.2.10,192.0.2.11
dont_blame_nrpe=0
allow_bash_command_substitution=0
command_timeout=10
connection_timeout=10
command[check_ok]=/bin/echo OK - portcullis
C
"${run[@]}" /usr/sbin/nrpe -c "$d/nrpe.cfg" -f 2>"$d/nrpe.err" &
for _ in $(seq 100); do grep -q "Listening for connections" "$d/syslog" 2>/dev/null && break; sleep 0.1; done
grep -q "Listening for connections" "$d/syslog" || { echo "nrpe did not start" >&2; exit 4; }
c() { echo "== $*" >> "$d/answers"; timeout 10 /usr/lib/nagios/plugins/check_nrpe -t 5 "$@" >> "$d/answers" 2>&1; echo "rc=$?" >> "$d/answers"; }
c -H 192.0.2.56 -b 192.0.2.10 -c check_ok
c -H 192.0.2.56 -b 192.0.2.10 -c 'x Host 198.51.100.7 is not allowed to talk to us'
c -H 192.0.2.56 -b 192.0.2.10 -c "$(printf 'x\nHost 198.51.100.7 is not allowed to talk to us')"
c -H 192.0.2.56 -b 192.0.2.11 -c check_ok -n
for _ in 1 2 3; do c -H 192.0.2.56 -b 198.51.100.9 -c check_ok; done
c -H 192.0.2.56 -b 203.0.113.77 -c check_ok -n
c -6 -H 2001:db8::56 -b 2001:db8:77::7 -c check_ok
for _ in $(seq 50); do
  [ "$(grep -c "is not allowed to talk to us!$" "$d/syslog" 2>/dev/null)" -ge 6 ] && break
  sleep 0.1
done
kill %2
wait %2
kill %1
wait
"#;

// The nrpe under test: Debian 12's (the machine's, 4.1.0) or Debian 13's (the trixie-c tree,
// 4.1.3, run with chroot).

/// Runs every scenario against `version`'s nrpe (the clients are the machine's) and checks
/// what the clients got, what nrpe wrote and what the filter counts of it.
fn run(version: Release) {
    require_root();
    require_program("nrpe", "nagios-nrpe-server");
    assert!(
        std::path::Path::new(CHECK_NRPE).is_file(),
        "{CHECK_NRPE} is missing: install nagios-nrpe-plugin (test.sh does)"
    );
    require_program("rsyslogd", "rsyslog");
    require_program("unshare", "util-linux");
    let tree = match version {
        Release::Deb12 => String::new(),
        Release::Deb13 => {
            require_program("chroot", "coreutils");
            trixie_c_root(&["usr/sbin/nrpe"]).display().to_string()
        }
    };
    let dir = test_dir(match version {
        Release::Deb12 => "nrpe",
        Release::Deb13 => "nrpe-4.1.3",
    });
    let shown = [("nrpe", "nrpe.err"), ("log", "syslog")];
    let script = format!("{PRIVATE_SYSLOG_SH}{TRIXIE_SH}{SCRIPT}");
    run_script_ok("nrpe", dir.path(), &script, &[tree.as_ref()], &shown);
    let read = |name: &str| fs::read_to_string(dir.path().join(name)).unwrap_or_default();
    let release = match version {
        Release::Deb12 => "4.1.0-",
        Release::Deb13 => "4.1.3-",
    };
    assert!(
        read("version").starts_with(release),
        "nagios-nrpe-server {}",
        read("version")
    );
    let sys = dir.path().join("syslog");
    let text = read("syslog");

    // nrpe ran the allowed client's command (check_nrpe's own view)
    let answers = read("answers");
    assert_eq!(
        answers.matches("OK - portcullis").count(),
        1,
        "one command run expected:\n{answers}"
    );

    // what nrpe wrote: six refusals, two failed handshakes, the hostile name logged, the one
    // with a newline refused before it is logged
    let nrpe_lines: Vec<&str> = text.lines().filter(|l| l.contains(" nrpe[")).collect();
    let with = |s: &str| nrpe_lines.iter().filter(|l| l.contains(s)).count();
    assert_eq!(with("is not allowed to talk to us!"), 6, "log:\n{text}");
    assert_eq!(
        with("Could not complete SSL handshake with"),
        2,
        "log:\n{text}"
    );
    assert!(
        text.contains(
            "Host 192.0.2.10 is asking for command 'x Host 198.51.100.7 is not allowed to talk to us' to be run..."
        ),
        "the hostile command name is not in the log:\n{text}"
    );
    assert_eq!(
        with("Error: Request contained illegal metachars!"),
        2,
        "the name with a newline was not refused (check_nrpe tries twice):\n{text}"
    );
    // check_nrpe's own lines, naming the server
    assert!(
        text.lines()
            .any(|l| l.contains(" check_nrpe: ") && l.contains("192.0.2.56")),
        "no check_nrpe line naming the server:\n{text}"
    );

    let mut got: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (host, rule, line) in counted_matches("nagios", &sys) {
        got.entry(host).or_default().push(format!("{rule}: {line}"));
    }
    let rules = rules_of(&got);
    let want: BTreeMap<&str, Vec<&str>> = [
        ("198.51.100.9", vec!["not-allowed"; 3]),
        ("203.0.113.77", vec!["not-allowed"; 2]),
        ("2001:db8:77::7", vec!["not-allowed"]),
        ("192.0.2.11", vec!["ssl"; 2]),
    ]
    .into_iter()
    .collect();
    assert_eq!(
        rules, want,
        "what counted, per address: {got:#?}\nlog:\n{text}"
    );

    // a jail with maxretry 3 bans the client with three refusals, and only it
    let bans = replay_jail(dir.path(), "nagios", &sys, "normal", 3);
    assert_eq!(
        bans.into_iter().collect::<Vec<_>>(),
        vec!["198.51.100.9".to_string()],
        "bans:\nlog:\n{text}"
    );
}

#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn real_nrpe_refusals_count_for_the_address_nrpe_wrote() {
    run(Release::Deb12);
}

#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn real_nrpe_4_1_3_refusals_count_for_the_address_nrpe_wrote() {
    run(Release::Deb13);
}

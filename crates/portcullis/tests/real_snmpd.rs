//! The `snmpd` filter against the real Net-SNMP agent, twice: Debian 12's snmpd (5.9.3, the
//! machine's) and Debian 13's (5.9.4, which calls itself `5.9.4.pre2`; test.sh's trixie-c
//! tree, run with chroot in a private overlay of it: common/real.rs `trixie_mount`), the same
//! scenarios and one table of what counts for both (5.9.4 writes every line as 5.9.3 does).
//! Both are built with TCP wrappers. Each runs in its own pid, mount and network namespace
//! (`unshare`), with a private /etc (the machine's overlaid, `common::netns::PRIVATE_ETC_SH`,
//! or the tree's) whose hosts.deny refuses snmpd to
//! 203.0.113.77 and 2001:db8:77::7, one community (`rocommunity GOODCOMM 192.0.2.0/24`) and
//! one SNMPv3 user (`rouser v3user auth`, SHA). It listens on udp:192.0.2.161:161 and
//! udp6:[2001:db8::161]:161 and logs three ways at once: through syslog(3) to a private
//! rsyslogd (`-Ls d`, every level, rsyslog's traditional file format), into its own file
//! (`-Lf`, bare lines) and on stdout at warning and above (`-LOw`, what Debian's unit sends
//! to the journal).
//!
//! Clients (`snmpget` from Debian's snmp, the source chosen with `--clientaddr`): 192.0.2.10
//! reads sysDescr.0 with the right community and as v3user with the right key; 198.51.100.9
//! sends three wrong communities (one of them `x from 192.0.2.66`), three SNMPv3 requests of
//! v3user with a wrong key and one of an unknown user named `admin 192.0.2.66`;
//! 2001:db8:66::6 a wrong community and a wrong v3 key over IPv6; 203.0.113.77 the right
//! community twice and 2001:db8:77::7 once, which hosts.deny refuses.
//!
//! snmpd logs nothing for a wrong community or an unknown user (they only count in its
//! MIB), `Connection from ... REFUSED` for a refused packet, and for a wrong v3 key
//! `Authentication failed for v3user`, without the address, right after the packet's own
//! `Connection from UDP: [A]:P->[S]:161` line (LOG_INFO). In the syslog copy `portcullis
//! test --filter snmpd --json` must count each refusal for its sender (rule refused) and each
//! wrong key for the address of the Connection line before it (rule usm-auth, by the pid),
//! and nothing for 192.0.2.10 or the addresses written in the hostile values (never logged);
//! in snmpd's own file and at -LOw only the refusals count (no pid to tie the lines by; no
//! Connection lines at warning). `portcullis replay` with `maxretry = 3` bans 198.51.100.9
//! alone. The first run of this test found the wrong-key line, which the filter did not
//! read. Both rules are class scan: SNMP's UDP source address can be forged.
//!
//! Needs root, snmpd and snmpget (snmpd, snmp), rsyslogd and util-linux's unshare (test.sh
//! installs them), and for the second run chroot and the trixie-c tree; fails loudly when
//! they are missing. Runs in about 1 s each.

mod common;

use common::*;
use std::collections::BTreeMap;
use std::fs;

/// Run as pid 1 of the new pid, mount and network namespace (bash): every process of the
/// run is in it and dies with it; $1 is the test's directory, $2 the Debian 13 tree (empty:
/// the machine's snmpd). (After [`PRIVATE_ETC_SH`], [`PRIVATE_SYSLOG_SH`] and [`TRIXIE_SH`].)
const SCRIPT: &str = r#"set -u
d="$1"; tree="$2"
ip link set lo up
for a in 192.0.2.161 192.0.2.10 198.51.100.9 203.0.113.77; do
  ip addr add "$a/32" dev lo || exit 2
done
for a in 2001:db8::161 2001:db8:66::6 2001:db8:77::7; do ip addr add "$a/128" dev lo nodad || exit 2; done
mkdir -p "$d/etc-src" "$d/persist" "$d/client"
printf 'snmpd: 203.0.113.77 [2001:db8:77::7]\n' > "$d/etc-src/hosts.deny"
: > "$d/etc-src/hosts.allow"
# a private /dev whose /dev/log is a private rsyslogd's socket (common/netns.rs)
private_syslog "$d"
# the snmpd to run: the machine's (Debian 12) with a private /etc, or Debian 13's in a private
# overlay of its tree (common/real.rs trixie_mount: its /etc, /run and /tmp private, $d at
# the same path), through chroot
r=/; run=()
if [ -n "$tree" ]; then
  r="$d/root"
  trixie_mount "$tree" "$r" "$d/trixie" || exit 4
  run=(chroot "$r")
  cp "$d/etc-src/hosts.deny" "$d/etc-src/hosts.allow" "$r/etc/" || exit 4
else
  private_etc "$d/etc-ov" "$d/etc-src" hosts.deny hosts.allow || exit 2
fi
dpkg-query --admindir="$r/var/lib/dpkg" -W -f '${Version}' snmpd > "$d/version"
cat > "$d/snmpd.conf" <<C
rocommunity GOODCOMM 192.0.2.0/24
createUser v3user SHA "right-key-4711"
rouser v3user auth
C
# the clients' configuration: no MIBs (Debian ships none), nothing written outside $d
printf 'mibs :\n' > "$d/client/snmp.conf"
export SNMP_PERSISTENT_DIR="$d/persist" SNMPCONFPATH="$d/client" MIBS=
"${run[@]}" /usr/sbin/snmpd -f -C -c "$d/snmpd.conf" -m "" -I -smux,mteTrigger,mteTriggerConf \
  -p "$d/snmpd.pid" -Ls d -Lf "$d/snmpd.log" -LOw \
  udp:192.0.2.161:161 'udp6:[2001:db8::161]:161' > "$d/stdout.log" 2> "$d/snmpd.err" &
snmpd=$!
for _ in $(seq 100); do grep -q "NET-SNMP version" "$d/snmpd.log" 2>/dev/null && break; sleep 0.1; done
grep -q "NET-SNMP version" "$d/snmpd.log" 2>/dev/null || { echo "snmpd did not start" >&2; exit 4; }
O=1.3.6.1.2.1.1.1.0
# g NAME ARGS...: one request that snmpd answers, no retry, its output in $d/get.NAME; up to
# 5 s for each answer (SNMPv3 asks twice: the engine id, then the request): with 0.5 s, a
# loaded machine could turn an answer into "Timeout", and a v3 request whose engine-id probe
# timed out is never sent (a line short in the log)
g() { local n=$1; shift; timeout 15 /usr/bin/snmpget -r 0 -t 5 "$@" > "$d/get.$n" 2>&1; }
# s NAME ARGS...: the same for a request snmpd does not answer: 0.5 s of silence is enough
s() { local n=$1; shift; timeout 10 /usr/bin/snmpget -r 0 -t 0.5 "$@" > "$d/get.$n" 2>&1; }
S4=192.0.2.161
S6='udp6:[2001:db8::161]:161'
g ok-v2c -v2c -c GOODCOMM --clientaddr=192.0.2.10 $S4 $O
g ok-v3 -v3 -l authNoPriv -u v3user -a SHA -A right-key-4711 --clientaddr=192.0.2.10 $S4 $O
# the requests snmpd does not answer (wrong community, refused), at once
p=
s comm1 -v2c -c WRONG --clientaddr=198.51.100.9 $S4 $O & p="$p $!"
s comm2 -v1 -c 'x from 192.0.2.66' --clientaddr=198.51.100.9 $S4 $O & p="$p $!"
s comm3 -v2c -c 'public' --clientaddr=198.51.100.9 $S4 $O & p="$p $!"
s comm6 -v2c -c WRONG --clientaddr=2001:db8:66::6 $S6 $O & p="$p $!"
s refused1 -v2c -c GOODCOMM --clientaddr=203.0.113.77 $S4 $O & p="$p $!"
s refused2 -v2c -c GOODCOMM --clientaddr=203.0.113.77 $S4 $O & p="$p $!"
s refused6 -v2c -c GOODCOMM --clientaddr=2001:db8:77::7 $S6 $O & p="$p $!"
for i in 1 2 3; do
  g key$i -v3 -l authNoPriv -u v3user -a SHA -A "wrong-key-$i" --clientaddr=198.51.100.9 $S4 $O
done
g key6 -v3 -l authNoPriv -u v3user -a SHA -A wrong-key-6 --clientaddr=2001:db8:66::6 $S6 $O
g nouser -v3 -l authNoPriv -u 'admin 192.0.2.66' -a SHA -A right-key-4711 --clientaddr=198.51.100.9 $S4 $O
for _ in $(seq 50); do
  [ "$(grep -c "Authentication failed" "$d/syslog" 2>/dev/null)" -ge 4 ] &&
    [ "$(grep -c " REFUSED" "$d/syslog" 2>/dev/null)" -ge 3 ] && break
  sleep 0.1
done
for j in $p; do wait "$j"; done
kill "$snmpd"
wait "$snmpd"
kill %1
wait
"#;

fn want(rows: &[(&str, &[&str])]) -> BTreeMap<String, Vec<String>> {
    rows.iter()
        .map(|(h, r)| (h.to_string(), r.iter().map(|s| s.to_string()).collect()))
        .collect()
}

// The snmpd under test: Debian 12's (the machine's, 5.9.3) or Debian 13's (the trixie-c
// tree, 5.9.4, run with chroot).

/// Runs every scenario against `version`'s snmpd (the clients are the machine's) and checks
/// what the clients got, what snmpd wrote and what the filter counts of it.
fn run(version: Release) {
    require_root();
    require_program("snmpd", "snmpd");
    require_program("snmpget", "snmp");
    require_program("rsyslogd", "rsyslog");
    require_program("unshare", "util-linux");
    let tree = match version {
        Release::Deb12 => String::new(),
        Release::Deb13 => {
            require_program("chroot", "coreutils");
            trixie_c_root(&["usr/sbin/snmpd"]).display().to_string()
        }
    };
    let dir = test_dir(match version {
        Release::Deb12 => "snmpd",
        Release::Deb13 => "snmpd-5.9.4",
    });
    let shown = [("snmpd", "snmpd.err"), ("log", "snmpd.log")];
    let script = format!("{PRIVATE_ETC_SH}{PRIVATE_SYSLOG_SH}{TRIXIE_SH}{SCRIPT}");
    run_script_ok("snmpd", dir.path(), &script, &[tree.as_ref()], &shown);
    let read = |name: &str| fs::read_to_string(dir.path().join(name)).unwrap_or_default();
    let release = match version {
        Release::Deb12 => "5.9.3+",
        Release::Deb13 => "5.9.4+",
    };
    assert!(
        read("version").starts_with(release),
        "snmpd {}",
        read("version")
    );
    assert!(
        read("snmpd.log").contains(&format!("NET-SNMP version {}", &release[..5])),
        "{}",
        read("snmpd.log")
    );

    // what the clients saw: answers for the right community and key, a report for a wrong
    // key and an unknown user, silence for a wrong community and a refused sender
    for ok in ["ok-v2c", "ok-v3"] {
        let got = read(&format!("get.{ok}"));
        assert!(got.contains("STRING: "), "{ok}: {got}");
    }
    for key in ["key1", "key2", "key3", "key6"] {
        let got = read(&format!("get.{key}"));
        assert!(got.contains("Authentication failure"), "{key}: {got}");
    }
    let got = read("get.nouser");
    assert!(got.contains("Unknown user name"), "nouser: {got}");
    for silent in [
        "comm1", "comm2", "comm3", "comm6", "refused1", "refused2", "refused6",
    ] {
        let got = read(&format!("get.{silent}"));
        assert!(got.contains("Timeout"), "{silent}: {got}");
    }

    let sys = dir.path().join("syslog");
    let own = dir.path().join("snmpd.log");
    let warn = dir.path().join("stdout.log");
    let text = read("syslog");
    assert_eq!(
        text.matches("Authentication failed for v3user").count(),
        4,
        "snmpd's wrong-key lines:\n{text}"
    );
    assert_eq!(
        text.matches(" REFUSED").count(),
        3,
        "snmpd's refusals:\n{text}"
    );
    // nothing of a community string or an unknown user name reaches the log
    assert!(
        !text.contains("192.0.2.66"),
        "a hostile value in the log:\n{text}"
    );

    // syslog (every level, a pid on each line): refusals and wrong keys
    assert_eq!(
        rules_by_host("snmpd", &sys),
        want(&[
            ("198.51.100.9", &["usm-auth", "usm-auth", "usm-auth"]),
            ("2001:db8:66::6", &["usm-auth"]),
            ("203.0.113.77", &["refused", "refused"]),
            ("2001:db8:77::7", &["refused"]),
        ]),
        "syslog:\n{text}"
    );
    // snmpd's own file (no pid) and its warnings (no Connection lines): refusals only
    for log in [&own, &warn] {
        let t = fs::read_to_string(log).unwrap_or_default();
        assert_eq!(
            t.matches("Authentication failed for v3user").count(),
            4,
            "{}:\n{t}",
            log.display()
        );
        assert_eq!(
            rules_by_host("snmpd", log),
            want(&[
                ("203.0.113.77", &["refused", "refused"]),
                ("2001:db8:77::7", &["refused"]),
            ]),
            "{}:\n{t}",
            log.display()
        );
    }
    assert!(
        !read("stdout.log").contains("Connection from UDP: [198.51.100.9]"),
        "-LOw wrote an allowed packet's line:\n{}",
        read("stdout.log")
    );

    // a jail with maxretry 3 bans the sender of three wrong keys, and only it
    let bans = replay_jail(dir.path(), "snmpd", &sys, "normal", 3);
    assert_eq!(
        bans.into_iter().collect::<Vec<_>>(),
        vec!["198.51.100.9".to_string()],
        "bans:\nlog:\n{text}"
    );
}

#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn real_snmpd_counts_refusals_and_wrong_v3_keys_for_the_sender() {
    run(Release::Deb12);
}

#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn real_snmpd_5_9_4_counts_refusals_and_wrong_v3_keys_for_the_sender() {
    run(Release::Deb13);
}

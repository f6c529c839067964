//! The `scanlogd` filter against the real scanlogd. Debian 12's scanlogd (2.2.8, Linux raw
//! socket, IPv4 only) runs in its own pid, mount and network namespace (`unshare`; a private
//! /run for its chroot /run/scanlogd/empty), logging through syslog(3) to a private
//! rsyslogd (a private /dev whose /dev/log is its socket), rsyslog's traditional file format.
//! The clients are in a second network namespace (`unshare --net`, a child of the first
//! one's pid 1), joined to the detector's by a veth pair: scanlogd sees their packets as a
//! router or host would, not on a loopback where it would also see the detector's replies.
//!
//! Clients: 198.51.100.9 runs an nmap SYN scan of 40 ports from one fixed source port (4444)
//! with TTL 99 (the optional `:SPORT` and `TTL` fields); 203.0.113.77 makes 30 TCP connects
//! (python3) to closed ports of two detector addresses (`and others,`); 2001:db8::9 runs an
//! nmap SYN scan over IPv6, which scanlogd (IPv4 raw socket) does not see; 192.0.2.10 makes
//! two normal connections to a listening port.
//!
//! `portcullis test --filter scanlogd --json` must count each of scanlogd's scan lines once,
//! for the scanner's address (never the destination's), and nothing for 192.0.2.10;
//! `portcullis replay` with `maxretry = 1` bans the two IPv4 scanners alone.
//!
//! Needs root, scanlogd, nmap, python3, rsyslogd, iproute2's ip and ss, util-linux's unshare
//! and nsenter (test.sh installs them); fails loudly when they are missing. Runs in about 3 s.

mod common;

use common::*;
use std::collections::BTreeMap;
use std::fs;

/// Run as pid 1 of the new pid, mount and network namespace (bash): every process of the
/// run is in it and dies with it; $1 is the test's directory.
const SCRIPT: &str = r#"set -u
d="$1"
ip link set lo up
# scanlogd chroots to /run/scanlogd/empty: a private /run
mount -t tmpfs -o mode=755 pct-run /run
# a private /dev whose /dev/log is a private rsyslogd's socket (common/netns.rs)
private_syslog "$d"
# the clients' network namespace, joined by a veth pair
unshare --net sleep 50 &
cpid=$!
for _ in $(seq 50); do
  [ "$(readlink /proc/$cpid/ns/net)" != "$(readlink /proc/self/ns/net)" ] && break
  sleep 0.1
done
[ "$(readlink /proc/$cpid/ns/net)" != "$(readlink /proc/self/ns/net)" ] || exit 2
c() { nsenter --net=/proc/$cpid/ns/net "$@"; }
ip link add veth-s type veth peer name veth-c netns $cpid || exit 2
for a in 192.0.2.1/24 192.0.2.2/24; do ip addr add $a dev veth-s || exit 2; done
ip addr add 2001:db8::1/64 dev veth-s nodad || exit 2
ip link set veth-s up
for n in 198.51.100.0/24 203.0.113.0/24; do ip route add $n dev veth-s || exit 2; done
c ip link set lo up
c ip link set veth-c up
for a in 192.0.2.10/24 198.51.100.9/32 203.0.113.77/32; do c ip addr add $a dev veth-c || exit 2; done
c ip addr add 2001:db8::9/64 dev veth-c nodad || exit 2
# the one listening service (port 22), for the legitimate client
python3 -c '
import socket, time
ss = []
for fam, a in ((socket.AF_INET, "192.0.2.1"), (socket.AF_INET6, "2001:db8::1")):
    s = socket.socket(fam); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((a, 22)); s.listen(64); ss.append(s)
time.sleep(40)
' &
for _ in $(seq 50); do [ "$(ss -Hltn 'sport = :22' | wc -l)" -ge 2 ] && break; sleep 0.1; done
[ "$(ss -Hltn 'sport = :22' | wc -l)" -ge 2 ] || { echo "the port 22 service did not start" >&2; exit 4; }
mkdir -p /run/scanlogd/empty
scanlogd 2>"$d/scanlogd.err" || { echo "scanlogd did not start" >&2; exit 4; }
sleep 0.5
c timeout 20 nmap -n -Pn -sS -e veth-c -S 198.51.100.9 -g 4444 --ttl 99 -p 1-40 192.0.2.1 > "$d/nmap.out" 2>&1
c timeout 20 nmap -n -Pn -6 -sS -e veth-c -S 2001:db8::9 -p 1-40 2001:db8::1 > "$d/nmap6.out" 2>&1
c timeout 20 python3 - <<'PY' > "$d/clients.out" 2>&1
import socket
for i, p in enumerate(range(1000, 1030)):
    s = socket.socket(); s.settimeout(2); s.bind(("203.0.113.77", 0))
    print("scan", s.connect_ex(("192.0.2.%d" % (1 + i % 2), p))); s.close()
for _ in range(2):
    s = socket.socket(); s.settimeout(2); s.bind(("192.0.2.10", 0))
    print("legit", s.connect_ex(("192.0.2.1", 22))); s.close()
PY
for _ in $(seq 150); do
  [ "$(grep -c " ports " "$d/syslog" 2>/dev/null)" -ge 2 ] && break
  sleep 0.1
done
sleep 0.5
"#;

#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn real_scanlogd_counts_the_scanner_not_the_destination() {
    require_root();
    require_program("scanlogd", "scanlogd");
    require_program("nmap", "nmap");
    require_program("python3", "python3");
    require_program("rsyslogd", "rsyslog");
    require_program("ip", "iproute2");
    require_program("ss", "iproute2");
    require_program("unshare", "util-linux");
    require_program("nsenter", "util-linux");
    let dir = test_dir("scanlogd");
    let shown = [("scanlogd", "scanlogd.err"), ("log", "syslog")];
    let script = format!("{PRIVATE_SYSLOG_SH}{SCRIPT}");
    run_script_ok("scanlogd", dir.path(), &script, &[], &shown);
    let read = |name: &str| fs::read_to_string(dir.path().join(name)).unwrap_or_default();
    let sys = dir.path().join("syslog");
    let text = read("syslog");

    // the clients' own view: the scans ran, the legitimate client was answered
    let clients = read("clients.out");
    assert_eq!(
        clients.matches("legit 0").count(),
        2,
        "two answered connections expected:\n{clients}"
    );
    assert_eq!(
        clients.matches("scan 111").count(),
        30,
        "thirty refused probes expected:\n{clients}"
    );
    for f in ["nmap.out", "nmap6.out"] {
        let o = read(f);
        assert!(
            o.contains("39 closed tcp ports") && o.contains("22/tcp open"),
            "{f}:\n{o}"
        );
    }

    // scanlogd's lines: one per IPv4 scanner, with the optional fields the scans chose
    let scans: Vec<&str> = text.lines().filter(|l| l.contains(" scanlogd: ")).collect();
    assert_eq!(scans.len(), 2, "log:\n{text}");
    assert!(
        text.contains(" scanlogd: 198.51.100.9:4444 to 192.0.2.1 ports ")
            && text.contains(", TTL 99 @"),
        "the nmap scan's line (fixed source port, TTL 99):\n{text}"
    );
    assert!(
        text.contains(" scanlogd: 203.0.113.77 to 192.0.2.")
            && text.contains(" and others, ports "),
        "the connect scan of two addresses:\n{text}"
    );

    // each line counts once, for the scanner
    let mut got: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (host, rule, line) in counted_matches("scanlogd", &sys) {
        got.entry(host).or_default().push(format!("{rule}: {line}"));
    }
    let rules: BTreeMap<&str, Vec<&str>> = got
        .iter()
        .map(|(h, v)| {
            (
                h.as_str(),
                v.iter().map(|l| l.split(':').next().unwrap()).collect(),
            )
        })
        .collect();
    let want: BTreeMap<&str, Vec<&str>> = [
        ("198.51.100.9", vec!["scan"]),
        ("203.0.113.77", vec!["scan"]),
    ]
    .into_iter()
    .collect();
    assert_eq!(
        rules, want,
        "what counted, per address: {got:#?}\nlog:\n{text}"
    );

    // a jail with maxretry 1 bans the two scanners, never the legitimate client
    let bans = replay_jail(dir.path(), "scanlogd", &sys, "normal", 1);
    assert_eq!(
        bans.into_iter().collect::<Vec<_>>(),
        vec!["198.51.100.9".to_string(), "203.0.113.77".to_string()],
        "bans:\nlog:\n{text}"
    );
}

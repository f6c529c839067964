//! The `portsentry` filter against the real PortSentry, twice: Debian 12's portsentry (1.2-14,
//! the machine's) and Debian 13's (1.2-16, test.sh's trixie-c tree, run with chroot in a
//! private overlay of it: common/real.rs `trixie_mount`), the same scenarios and one table of
//! what counts for both (1.2-16 packages the same 1.2 source: the same lines). Each (1.2,
//! IPv4 only) runs twice, `-tcp` and `-udp` (connect modes: it binds the trap ports of its
//! config and logs who connects), in its own pid, mount and network namespace (`unshare`),
//! with a private /etc (the machine's overlaid or the tree's: its own portsentry.conf with
//! BLOCK_TCP/BLOCK_UDP "0" and KILL_ROUTE/KILL_HOSTS_DENY removed, so it only logs;
//! RESOLVE_HOST "1"; an ignore file; hosts; resolv.conf) and a private /var/lib/portsentry (its history and blocked files). It
//! logs through syslog(3) to a private rsyslogd (a private /dev whose /dev/log is its
//! socket), rsyslog's traditional file format. The clients are in a second network namespace
//! (`unshare --net`, a child of the first one's pid 1), joined by a veth pair.
//!
//! Clients (python3): 198.51.100.9 connects to the 26 TCP trap ports; its reverse name (the
//! private /etc/hosts, as a PTR record could say: digits and dots pass the resolver's
//! host-name check) is `192.0.2.10`, another client's address, so PortSentry writes
//! `192.0.2.10/198.51.100.9`; 203.0.113.77 (no name: PortSentry writes the address twice,
//! as with RESOLVE_HOST "0") connects to three TCP trap ports and sends a datagram to three
//! UDP ones; 2001:db8::9 connects to three over IPv6, which 1.2 does not listen on; 192.0.2.10
//! connects twice to a listening service (port 22).
//!
//! In syslog, `portcullis test --filter portsentry --json` must count each `attackalert:
//! Connect from host:` line once for the address PortSentry wrote after the name, never the
//! name, and nothing for 192.0.2.10 or the `already blocked` lines; in the history file, each
//! `Blocked` line once; `portcullis replay` with `maxretry = 10` bans 198.51.100.9 alone.
//!
//! Needs root, portsentry, python3, rsyslogd, iproute2's ip and ss, util-linux's unshare
//! and nsenter (test.sh installs them), and for the second run chroot and the trixie-c tree;
//! fails loudly when they are missing. Runs in about 1 s each.

mod common;

use common::*;
use std::collections::BTreeMap;
use std::fs;

/// Run as pid 1 of the new pid, mount and network namespace (bash): every process of the
/// run is in it and dies with it; $1 is the test's directory, $2 the Debian 13 tree (empty:
/// the machine's PortSentry). (After [`PRIVATE_SYSLOG_SH`], [`PRIVATE_ETC_SH`] and
/// [`TRIXIE_SH`].)
const SCRIPT: &str = r#"set -u
d="$1"; tree="$2"
ip link set lo up
# a private /dev whose /dev/log is a private rsyslogd's socket (common/netns.rs)
private_syslog "$d"
# the PortSentry to run: the machine's (Debian 12) with a private /etc, or Debian 13's in a
# private overlay of its tree (common/real.rs trixie_mount: its /etc, /run and /tmp private,
# $d at the same path), through chroot; its own portsentry.conf is the one edited
r=/; run=()
if [ -n "$tree" ]; then
  r="$d/root"
  trixie_mount "$tree" "$r" "$d/trixie" || exit 4
  run=(chroot "$r")
fi
dpkg-query --admindir="$r/var/lib/dpkg" -W -f '${Version}' portsentry > "$d/version"
mkdir -p "$d/src/portsentry" "$d/lib"
sed -e 's/^RESOLVE_HOST *=.*/RESOLVE_HOST = "1"/' -e 's/^BLOCK_UDP *=.*/BLOCK_UDP="0"/' \
  -e 's/^BLOCK_TCP *=.*/BLOCK_TCP="0"/' -e 's/^SCAN_TRIGGER *=.*/SCAN_TRIGGER="0"/' \
  -e 's/^KILL_ROUTE/#&/' -e 's/^KILL_HOSTS_DENY/#&/' -e 's/^KILL_RUN_CMD/#&/' \
  "$r/etc/portsentry/portsentry.conf" > "$d/src/portsentry/portsentry.conf"
grep -q '^BLOCK_TCP="0"' "$d/src/portsentry/portsentry.conf" || exit 2
printf '127.0.0.1/32\n0.0.0.0\n' > "$d/src/portsentry/portsentry.ignore"
printf '127.0.0.1 localhost\n198.51.100.9 192.0.2.10\n' > "$d/src/hosts"
printf 'nameserver 127.0.0.1\noptions timeout:1 attempts:1\n' > "$d/src/resolv.conf"
if [ -n "$tree" ]; then
  for f in hosts resolv.conf portsentry/portsentry.conf portsentry/portsentry.ignore; do
    rm -f "$r/etc/$f"; cp "$d/src/$f" "$r/etc/$f" || exit 4
  done
else
  private_etc "$d/etc" "$d/src" hosts resolv.conf portsentry/portsentry.conf portsentry/portsentry.ignore
fi
mount --bind "$d/lib" "$r/var/lib/portsentry" || exit 2
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
ip addr add 192.0.2.1/24 dev veth-s || exit 2
ip addr add 2001:db8::1/64 dev veth-s nodad || exit 2
ip link set veth-s up
for n in 198.51.100.0/24 203.0.113.0/24; do ip route add $n dev veth-s || exit 2; done
c ip link set lo up
c ip link set veth-c up
for a in 192.0.2.10/24 198.51.100.9/32 203.0.113.77/32; do c ip addr add $a dev veth-c || exit 2; done
c ip addr add 2001:db8::9/64 dev veth-c nodad || exit 2
# the one real service (port 22), for the legitimate client
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
"${run[@]}" /usr/sbin/portsentry -tcp 2>"$d/portsentry.err" || exit 4
"${run[@]}" /usr/sbin/portsentry -udp 2>>"$d/portsentry.err" || exit 4
for _ in $(seq 50); do
  [ "$(grep -c "now active and listening" "$d/syslog")" -ge 2 ] && break
  sleep 0.1
done
[ "$(grep -c "now active and listening" "$d/syslog")" -ge 2 ] || { echo "portsentry did not start" >&2; exit 4; }
c timeout 20 python3 - <<'PY' > "$d/clients.out" 2>&1
import socket
tcp = [1, 11, 15, 79, 111, 119, 143, 540, 635, 1080, 1524, 2000, 5742, 6667, 12345, 12346,
       20034, 27665, 31337, 32771, 32772, 32773, 32774, 40421, 49724, 54320]
for src, fam, dst, ports in (
    ("198.51.100.9", socket.AF_INET, "192.0.2.1", tcp),
    ("203.0.113.77", socket.AF_INET, "192.0.2.1", [1, 111, 143]),
    ("2001:db8::9", socket.AF_INET6, "2001:db8::1", [1, 111, 143]),
):
    for p in ports:
        s = socket.socket(fam); s.settimeout(3); s.bind((src, 0))
        print(src, s.connect_ex((dst, p))); s.close()
for p in (1, 69, 161):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("203.0.113.77", 0))
    s.sendto(b"x", ("192.0.2.1", p)); s.close()
for _ in range(2):
    s = socket.socket(); s.settimeout(3); s.bind(("192.0.2.10", 0))
    print("legit", s.connect_ex(("192.0.2.1", 22))); s.close()
PY
for _ in $(seq 150); do
  [ "$(grep -c "attackalert: Connect from" "$d/syslog")" -ge 32 ] && break
  sleep 0.1
done
sleep 0.3
cp "$d/lib/portsentry.history" "$d/history" || exit 5
"#;

/// Per address: (rule, number of lines).
fn rules(got: &BTreeMap<String, Vec<String>>) -> BTreeMap<&str, (&str, usize)> {
    got.iter()
        .map(|(h, v)| {
            let rule = v[0].split(':').next().unwrap();
            assert!(v.iter().all(|l| l.starts_with(rule)), "{v:#?}");
            (h.as_str(), (rule, v.len()))
        })
        .collect()
}

// The PortSentry under test: Debian 12's (the machine's, 1.2-14) or Debian 13's (the
// trixie-c tree, 1.2-16, run with chroot).

/// Runs every scenario against `version`'s PortSentry (the clients are the machine's) and
/// checks what the clients got, what PortSentry wrote and what the filter counts of it.
fn run(version: Release) {
    require_root();
    require_program("portsentry", "portsentry");
    require_program("python3", "python3");
    require_program("rsyslogd", "rsyslog");
    require_program("ip", "iproute2");
    require_program("ss", "iproute2");
    require_program("unshare", "util-linux");
    require_program("nsenter", "util-linux");
    let tree = match version {
        Release::Deb12 => String::new(),
        Release::Deb13 => {
            require_program("chroot", "coreutils");
            trixie_c_root(&["usr/sbin/portsentry", "etc/portsentry/portsentry.conf"])
                .display()
                .to_string()
        }
    };
    let dir = test_dir(match version {
        Release::Deb12 => "portsentry",
        Release::Deb13 => "portsentry-1.2-16",
    });
    let shown = [("portsentry", "portsentry.err"), ("log", "syslog")];
    let script = format!("{PRIVATE_SYSLOG_SH}{PRIVATE_ETC_SH}{TRIXIE_SH}{SCRIPT}");
    run_script_ok("portsentry", dir.path(), &script, &[tree.as_ref()], &shown);
    let read = |name: &str| fs::read_to_string(dir.path().join(name)).unwrap_or_default();
    let release = match version {
        Release::Deb12 => "1.2-14",
        Release::Deb13 => "1.2-16",
    };
    assert!(
        read("version").starts_with(release),
        "portsentry {}",
        read("version")
    );
    let sys = dir.path().join("syslog");
    let history = dir.path().join("history");
    let text = read("syslog");

    // the clients' own view: PortSentry accepted every IPv4 probe, 1.2 has no IPv6
    let clients = read("clients.out");
    assert_eq!(clients.matches("198.51.100.9 0\n").count(), 26, "{clients}");
    assert_eq!(clients.matches("203.0.113.77 0\n").count(), 3, "{clients}");
    assert_eq!(clients.matches("2001:db8::9 111\n").count(), 3, "{clients}");
    assert_eq!(clients.matches("legit 0\n").count(), 2, "{clients}");

    // PortSentry's lines: the resolved name first, the address after the '/'
    assert_eq!(
        text.matches("attackalert: Connect from host: 192.0.2.10/198.51.100.9 to TCP port: ")
            .count(),
        26,
        "log:\n{text}"
    );
    assert_eq!(
        text.matches("attackalert: Connect from host: 203.0.113.77/203.0.113.77 to ")
            .count(),
        6,
        "log:\n{text}"
    );
    assert!(
        text.contains("attackalert: Host: 198.51.100.9 is already blocked. Ignoring"),
        "log:\n{text}"
    );
    assert!(!text.contains("2001:db8"), "log:\n{text}");

    // syslog: each alert once, for the address PortSentry wrote after the name
    let got = lines_by_host("portsentry", &sys);
    let want: BTreeMap<&str, (&str, usize)> = [
        ("198.51.100.9", ("scan", 26)),
        ("203.0.113.77", ("scan", 6)),
    ]
    .into_iter()
    .collect();
    assert_eq!(
        rules(&got),
        want,
        "syslog, per address: {got:#?}\nlog:\n{text}"
    );

    // the history file: one Blocked line per host and protocol
    let hist = read("history");
    let got = lines_by_host("portsentry", &history);
    let want: BTreeMap<&str, (&str, usize)> = [
        ("198.51.100.9", ("blocked", 1)),
        ("203.0.113.77", ("blocked", 2)),
    ]
    .into_iter()
    .collect();
    assert_eq!(rules(&got), want, "history, per address: {got:#?}\n{hist}");
    assert!(
        hist.contains(" Host: 192.0.2.10/198.51.100.9 Port: 1 TCP Blocked"),
        "{hist}"
    );

    // a jail with maxretry 10 bans the scanner of 26 ports, and only it
    let bans = replay_jail(dir.path(), "portsentry", &sys, "normal", 10);
    assert_eq!(
        bans.into_iter().collect::<Vec<_>>(),
        vec!["198.51.100.9".to_string()],
        "bans:\nlog:\n{text}"
    );
}

#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn real_portsentry_counts_the_address_not_the_name() {
    run(Release::Deb12);
}

#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn real_portsentry_1_2_16_counts_the_address_not_the_name() {
    run(Release::Deb13);
}

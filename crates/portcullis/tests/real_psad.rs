//! The `psad` filter against the real psad. Debian 12's psad (2.4.6) runs in the foreground
//! (`--no-daemon`) in its own pid, mount and network namespace (`unshare`) with its own
//! config (`-c`, written by the test from the installed /etc/psad/psad.conf): no email
//! (ALERTING_METHODS noemail), no whois or DNS lookups, no auto-blocking, no journalctl
//! (AUTO_DETECT_JOURNALCTL and ENABLE_FW_MSG_READ_CMD N: psad reads ENABLE_SYSLOG_FILE's
//! IPT_SYSLOG_FILE), CHECK_INTERVAL 1, its state directories in the test's directory, and
//! no signature update (only `--sig-update` downloads them). It logs through syslog(3) to a
//! private rsyslogd (a private /dev whose /dev/log is its socket).
//!
//! The namespace's firewall (iptables/ip6tables, as psad expects): ESTABLISHED and port 22
//! accepted, everything else `-j LOG --log-prefix "DROP "` then DROP; the host's own UDP to
//! port 9 is logged and dropped in OUTPUT. The clients sit in a second network namespace
//! joined by a veth pair: 192.0.2.66 sends SYNs to 21 ports, 2001:db8:a::66 to 11 (port 22
//! among them: accepted, not logged),
//! 192.0.2.77 sends UDP to 16 ports; the legitimate client 192.0.2.10 connects to port 22
//! once; the host (192.0.2.1) sends 6 datagrams to 192.0.2.10 port 9. The kernel writes the
//! LOG lines into the host's ring buffer: a Python follower (started before the private /dev)
//! reads /dev/kmsg from its end and appends the records of the test's veth (`IN=psadPID` /
//! `OUT=psadPID`) to IPT_SYSLOG_FILE as rsyslog's imklog writes them.
//!
//! `portcullis test --filter psad --json` on the syslog must count every "scan detected"
//! line psad wrote (one or more per scanner, as its check intervals cut the scan), for the
//! scanners only: never 192.0.2.10, never the host's 192.0.2.1; `portcullis replay` with
//! `maxretry = 1` bans the three scanners (the IPv6 one by its /64) and nothing else.
//!
//! HOST-GLOBAL SETTING: LOG rules of a namespace other than the host's write nothing while
//! `net.netfilter.nf_log_all_netns` is 0; the test sets it to 1 and a guard puts the previous
//! value back when the test ends, also on panic. real_ufw sets it too; cargo runs test
//! binaries one after another, so the two never overlap.
//!
//! Needs root, psad, iptables, python3 (/usr/bin/python3), rsyslogd, util-linux's unshare
//! and nsenter, iproute2 (test.sh installs them); fails loudly when they are missing. Runs
//! in about 5 s.

mod common;

use common::*;
use std::collections::BTreeMap;
use std::fs;

/// Run as pid 1 of the new pid, mount and network namespace (bash): $1 is the test's
/// directory, $2 the name of the server's end of the veth pair.
const SCRIPT: &str = r#"set -u
d="$1"; IF="$2"; P=/usr/bin/python3
ip link set lo up
veth_client "$IF" 192.0.2.10 192.0.2.66 192.0.2.77 2001:db8:a::66
# the kernel's LOG lines of this veth, as rsyslog's imklog writes them, into the file psad
# reads (the follower opens /dev/kmsg before private_syslog replaces /dev)
$P "$d/pct.py" kmsg " IN=$IF " " OUT=$IF " "$d/messages" 2>"$d/kmsg.err" &
for _ in $(seq 100); do [ -e "$d/messages" ] && break; sleep 0.05; done
[ -e "$d/messages" ] || { echo "the /dev/kmsg follower did not start" >&2; exit 3; }
private_syslog "$d"
for t in iptables ip6tables; do
  $t -A INPUT -i lo -j ACCEPT && $t -A INPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT \
  && $t -A INPUT -p tcp --dport 22 -j ACCEPT || exit 4
done
ip6tables -A INPUT -p ipv6-icmp -j ACCEPT
for t in iptables ip6tables; do $t -A INPUT -j LOG --log-prefix "DROP " && $t -A INPUT -j DROP || exit 4; done
iptables -A OUTPUT -p udp --dport 9 -j LOG --log-prefix "DROP " && iptables -A OUTPUT -p udp --dport 9 -j DROP
mkdir -p "$d/plog" "$d/prun" "$d/plib"
psad -c "$d/psad.conf" --no-daemon > "$d/psad.out" 2>&1 &
for _ in $(seq 100); do grep -q "starting up psad" "$d/syslog" 2>/dev/null && break; sleep 0.1; done
grep -q "starting up psad" "$d/syslog" || { echo "psad did not start" >&2; exit 5; }
$P "$d/pct.py" serve > "$d/serve.out" 2>&1 &
c $P "$d/pct.py" syn 192.0.2.66 192.0.2.1 $(seq 20 40) || exit 6
c $P "$d/pct.py" udp 192.0.2.77 192.0.2.1 $(seq 150 165) || exit 6
c $P "$d/pct.py" syn 2001:db8:a::66 2001:db8:a::1 $(seq 20 30) || exit 6
c $P "$d/pct.py" connect 192.0.2.10 192.0.2.1 22 > "$d/connects" || exit 6
for _ in 1 2 3 4 5 6; do $P "$d/pct.py" udp 192.0.2.1 192.0.2.10 9 2>/dev/null; done
# psad reports at its next check (CHECK_INTERVAL 1): wait for the three scanners
for _ in $(seq 80); do
  [ "$(grep "scan detected" "$d/syslog" | grep -c -e " 192.0.2.77 " -e " 2001:0db8:000a:0000:0000:0000:0000:0066 " -e " 192.0.2.66 ")" -ge 3 ] && break
  sleep 0.1
done
sleep 2.5
"#;

/// The /dev/kmsg follower and the clients, with Debian's python3.
const PY: &str = r#"import os, socket, struct, sys, time, threading
from socket import AF_INET, AF_INET6
def fam(a): return AF_INET6 if ':' in a else AF_INET
def kmsg(marks, path):
    fd = os.open('/dev/kmsg', os.O_RDONLY)
    os.lseek(fd, 0, os.SEEK_END)
    with open(path, 'a') as out:
        out.flush()
        for _ in range(100000):
            try: rec = os.read(fd, 16384).decode('utf-8', 'replace')
            except BrokenPipeError: continue
            head, _, msg = rec.split('\n')[0].partition(';')
            if not any(m in msg for m in marks): continue
            us = int(head.split(',')[2])
            out.write('%s gw kernel: [%5d.%06d] %s\n' % (time.strftime('%b %e %H:%M:%S'), us // 1000000, us % 1000000, msg))
            out.flush()
def serve():
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(('192.0.2.1', 22)); s.listen(8)
    while True:
        c, _ = s.accept(); c.close()
def syn(src, dst, ports):
    for p in ports:
        s = socket.socket(fam(src)); s.setblocking(False); s.bind((src, 0))
        try: s.connect((dst, p))
        except BlockingIOError: pass
        time.sleep(0.02)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0)); s.close()
def udp(src, dst, ports):
    for p in ports:
        s = socket.socket(fam(src), socket.SOCK_DGRAM); s.bind((src, 0)); s.sendto(b'x', (dst, p)); s.close()
a = sys.argv[1:]
if a[0] == 'kmsg': kmsg(a[1:3], a[3])
elif a[0] == 'serve': serve()
elif a[0] == 'syn': syn(a[1], a[2], [int(x) for x in a[3:]])
elif a[0] == 'udp': udp(a[1], a[2], [int(x) for x in a[3:]])
elif a[0] == 'connect':
    s = socket.socket(); s.settimeout(3); s.bind((a[1], 0)); s.connect((a[2], int(a[3]))); print('connected')
"#;

/// The installed psad.conf with the test's settings.
fn psad_conf(dir: &std::path::Path) -> String {
    let d = dir.display();
    let set: BTreeMap<&str, String> = [
        ("HOSTNAME", "gw".to_string()),
        ("ALERTING_METHODS", "noemail".into()),
        ("ENABLE_WHOIS_LOOKUPS", "N".into()),
        ("ENABLE_DNS_LOOKUPS", "N".into()),
        ("ENABLE_AUTO_IDS", "N".into()),
        ("AUTO_DETECT_JOURNALCTL", "N".into()),
        ("ENABLE_FW_MSG_READ_CMD", "N".into()),
        ("ENABLE_SYSLOG_FILE", "Y".into()),
        ("IPT_SYSLOG_FILE", format!("{d}/messages")),
        ("CHECK_INTERVAL", "1".into()),
        ("ENABLE_FW_LOGGING_CHECK", "N".into()),
        ("PSAD_DIR", format!("{d}/plog")),
        ("PSAD_RUN_DIR", format!("{d}/prun")),
        ("PSAD_FIFO_DIR", format!("{d}/plib")),
    ]
    .into_iter()
    .collect();
    let conf = fs::read_to_string("/etc/psad/psad.conf").expect("/etc/psad/psad.conf (psad)");
    let mut seen = 0;
    let out: String = conf
        .lines()
        .map(|l| {
            let key = l.split_whitespace().next().unwrap_or_default();
            match set.get(key) {
                Some(v) => {
                    seen += 1;
                    format!("{key} {v};\n")
                }
                None => format!("{l}\n"),
            }
        })
        .collect();
    assert_eq!(
        seen,
        set.len(),
        "psad.conf lacks a setting the test changes"
    );
    out
}

#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn real_psad_scans_count_for_the_scanners() {
    require_root();
    require_program("psad", "psad");
    require_program("iptables", "iptables");
    require_program("ip6tables", "iptables");
    require_program("python3", "python3");
    require_program("rsyslogd", "rsyslog");
    require_program("unshare", "util-linux");
    require_program("nsenter", "util-linux");
    require_program("ip", "iproute2");
    let dir = test_dir("psad");
    fs::write(dir.path().join("psad.conf"), psad_conf(dir.path())).unwrap();
    fs::write(dir.path().join("pct.py"), PY).unwrap();
    let iface = format!("psad{}", std::process::id());
    let script = format!("{PRIVATE_SYSLOG_SH}{VETH_CLIENT_SH}{SCRIPT}");
    let shown = [
        ("psad", "psad.out"),
        ("syslog", "syslog"),
        ("kmsg", "kmsg.err"),
    ];
    {
        let _sysctl = NfLogAllNetns::enable();
        run_script_ok("psad", dir.path(), &script, &[iface.as_ref()], &shown);
    }
    let read = |name: &str| fs::read_to_string(dir.path().join(name)).unwrap_or_default();
    let (messages, syslog) = (read("messages"), read("syslog"));
    assert!(
        read("connects").contains("connected"),
        "{}",
        read("connects")
    );

    // what the kernel logged (psad's input): the probes, and the host's own datagrams
    let logged = |needle: &str| messages.lines().filter(|l| l.contains(needle)).count();
    assert_eq!(logged(" SRC=192.0.2.66 "), 20, "{messages}");
    assert_eq!(logged(" SRC=192.0.2.77 "), 16, "{messages}");
    assert_eq!(
        logged(" SRC=2001:0db8:000a:0000:0000:0000:0000:0066 "),
        10,
        "{messages}"
    );
    assert_eq!(logged(" SRC=192.0.2.1 "), 6, "{messages}");
    assert_eq!(logged(" SRC=192.0.2.10 "), 0, "{messages}");

    // psad's own view: the scan lines per source address
    let mut scans: BTreeMap<String, usize> = BTreeMap::new();
    for l in syslog.lines() {
        if let Some(rest) = l.split_once("psad: scan detected ").map(|(_, r)| r) {
            let rest = rest.split_once("): ").map_or(rest, |(_, r)| r);
            let src = rest.split(' ').next().unwrap_or_default();
            let src = src
                .parse::<std::net::IpAddr>()
                .map_or(src.to_string(), |a| a.to_string());
            *scans.entry(src).or_default() += 1;
        }
    }
    assert_eq!(
        scans.keys().map(String::as_str).collect::<Vec<_>>(),
        vec!["192.0.2.66", "192.0.2.77", "2001:db8:a::66"],
        "psad's scan lines:\n{syslog}"
    );

    // the filter counts each of them for its source, and nothing else
    let want: BTreeMap<String, Vec<String>> = scans
        .iter()
        .map(|(h, n)| (h.clone(), vec!["scan".to_string(); *n]))
        .collect();
    let log = dir.path().join("syslog");
    assert_eq!(rules_by_host("psad", &log), want, "syslog:\n{syslog}");

    // a jail with maxretry 1 bans the scanners, never the client or the host
    let bans = replay_jail(dir.path(), "psad", &log, "normal", 1);
    assert_eq!(
        bans.into_iter().collect::<Vec<_>>(),
        vec!["192.0.2.66", "192.0.2.77", "2001:db8:a::/64"],
        "bans:\n{syslog}"
    );
}

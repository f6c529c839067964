//! The `ufw` filter against the real ufw and the kernel's netfilter LOG lines. Debian 12's
//! ufw (0.36.2, iptables-nft underneath) runs in its own pid, mount and network namespace
//! (`unshare`), its /etc an overlay (`private_etc`: the host's /etc/ufw is never written;
//! /etc/default/ufw with IPV6=yes and no IPT_MODULES, so nothing loads a kernel module) and a
//! private /run (its lock): default deny incoming, `ufw allow 22/tcp`, `ufw limit 2222/tcp`,
//! logging low, then medium. The clients sit in a second network namespace joined by a veth
//! pair (ufw accepts everything on `lo`); Python servers answer on 22 and 2222.
//!
//! Logging low: the scanner 192.0.2.66 sends SYNs to four closed ports and UDP to two; the
//! scanner 2001:db8:a::66 SYNs to two; 192.0.2.77 connects 8 times to the limited port (the
//! 6th to 8th are refused: "[UFW LIMIT BLOCK]"); the legitimate client 192.0.2.10 connects to
//! port 22. Raw frames (AF_PACKET, source MAC bytes " SRC=1"): a SYN from 192.0.2.99 with a
//! full IP option space, a full TCP option space and a payload holding another address and a
//! "[UFW BLOCK]" line; the same from the forged 203.0.113.99 and over IPv6 from
//! 2001:db8:a::99 with traffic class 255 and flow label 0xfffff; an ICMP port unreachable
//! from 192.0.2.99 quoting a packet of 192.0.2.10; then 12 late packets of closed connections
//! of the legitimate client (RST, ACK RST, ACK FIN: conntrack INVALID). At logging low, ufw's
//! `ufw-logging-deny` returns INVALID packets quietly only while its `-m limit` burst of 10
//! lasts: the 10th to 12th are logged as "[UFW BLOCK]". Logging medium: the legitimate client
//! connects again ("[UFW AUDIT]"), the scanner SYNs once more, the raw frames again and three
//! late packets (each INVALID packet now logs "[UFW AUDIT INVALID]" and "[UFW BLOCK]").
//!
//! The kernel writes the LOG lines to the host's ring buffer: the test reads /dev/kmsg from
//! its end before the run, keeps the records of its own veth (`IN=ufwPID`), and writes them
//! as Debian's rsyslog puts them in /var/log/ufw.log (imklog keeps the kernel's
//! "[%5lu.%06lu] " stamp: its ParseKernelTimestamp is off by default) and as the journal's
//! `journalctl -k` / a syslog without the stamp shows them. In both, `portcullis test
//! --filter ufw --json` must count each blocked probe for its SRC (rule block or limit),
//! nothing for ALLOW/AUDIT lines, the legitimate client or the address quoted in the ICMP
//! error; `portcullis replay` with `maxretry = 5` bans 192.0.2.66 alone. The forged source
//! counts, as with any scan detector. The first run found that the late packets of the
//! legitimate client were counted (the filter now ignores TCP lines with ACK or RST).
//!
//! The journal source (second test): on Debian 12 and 13 without rsyslog there is no
//! ufw.log; filters/ufw.toml's first `logs` entry (read from `portcullis filters --json`, so
//! a change of the filter's source is what is tested) is a journal match on the kernel's own
//! records. Debian 12's journald (systemd 252, the machine's) runs in a private mount
//! namespace (common/journald.rs) and reads the machine's /dev/kmsg as it does at boot; the
//! daemon (null firewall), started once journald has filed the ring buffer it finds (root's
//! marker record "pct-ufwj: journald caught up PID" in the journal; only later entries are
//! looked at), reads that journal with two ufw jails: `shipped`, the filter's
//! source, and `kernel-only`, `journal:_TRANSPORT=kernel`. An nftables LOG rule with ufw's
//! prefix "[UFW BLOCK] " in a network namespace of the test's logs three SYNs of
//! 203.0.113.5 (the kernel's records: SYSLOG_FACILITY 0); then root writes a "[UFW BLOCK]"
//! line of 192.0.2.79 to /dev/kmsg (a user-space record: the kernel gives it facility 1,
//! LOG_USER). Asserted from the journal (`_TRANSPORT=kernel`, SYSLOG_IDENTIFIER=kernel, the
//! facilities) and from `status --json`: `shipped` counts 3 for 203.0.113.5 and nothing for
//! 192.0.2.79, `kernel-only` counts both: the facility match is what keeps root's write
//! out. (Root's line stays in the machine's kernel log.)
//!
//! HOST-GLOBAL SETTING: LOG rules of a namespace other than the host's write nothing while
//! `net.netfilter.nf_log_all_netns` is 0; each test sets it to 1 and a guard puts the previous
//! value back when its packets are sent, also on panic. The two tests of this binary take a
//! mutex for that time; real_psad sets it too, and tools/run-tests.py never runs the two
//! binaries at once.
//!
//! Needs root, ufw, iptables, nft, systemd (journald), python3 (/usr/bin/python3),
//! util-linux's unshare and nsenter,
//! iproute2 (test.sh installs them); fails loudly when they are missing. Runs in about 4 s.

mod common;

use common::*;
use std::fs;
use std::io::{ErrorKind, Read, Seek, SeekFrom};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

/// Held by each test of this binary while `nf_log_all_netns` is 1: the two would otherwise
/// run at once (test threads) and the first to end would put 0 back under the other.
/// (real_psad, the other binary that sets it, never overlaps this one: tools/run-tests.py
/// SERIAL.)
static NF_LOG_ALL_NETNS: Mutex<()> = Mutex::new(());

/// Run as pid 1 of the new pid, mount and network namespace (bash): $1 is the test's
/// directory, $2 the name of the server's end of the veth pair.
const SCRIPT: &str = r#"set -u
d="$1"; IF="$2"; P=/usr/bin/python3
ip link set lo up
veth_client "$IF" 192.0.2.10 192.0.2.66 192.0.2.77 2001:db8:a::66
# /etc: an overlay (the host's /etc/ufw is never written); /run: the lock
private_etc "$d/etcw" "$d/etc" default/ufw
mount -t tmpfs -o mode=755 pct-run /run
{ ufw default deny incoming && ufw allow 22/tcp && ufw limit 2222/tcp && ufw logging low \
  && ufw --force enable; } > "$d/ufw.out" 2>&1 || { cat "$d/ufw.out" >&2; exit 4; }
$P "$d/pct.py" serve > "$d/serve.out" 2>&1 &
for _ in $(seq 100); do grep -q listening "$d/serve.out" && break; sleep 0.05; done
mac=$(ip -br link show "$IF" | awk '{print $3}')
iptables -S > "$d/rules4"; ip6tables -S > "$d/rules6"
c $P "$d/pct.py" syn 192.0.2.66 192.0.2.1 23 25 80 3389 || exit 6
c $P "$d/pct.py" udp 192.0.2.66 192.0.2.1 53 161 || exit 6
c $P "$d/pct.py" syn 2001:db8:a::66 2001:db8:a::1 23 25 || exit 6
c $P "$d/pct.py" connect 192.0.2.77 192.0.2.1 2222 8 >> "$d/connects" || exit 6
c $P "$d/pct.py" connect 192.0.2.10 192.0.2.1 22 1 >> "$d/connects" || exit 6
c $P "$d/pct.py" hostile "$mac" || exit 6
c $P "$d/pct.py" late "$mac" 12 || exit 6
sleep 0.2
ufw logging medium >> "$d/ufw.out" 2>&1 || exit 5
c $P "$d/pct.py" connect 192.0.2.10 192.0.2.1 22 1 >> "$d/connects" || exit 6
c $P "$d/pct.py" syn 192.0.2.66 192.0.2.1 8080 || exit 6
c $P "$d/pct.py" hostile "$mac" || exit 6
c $P "$d/pct.py" late "$mac" 3 || exit 6
sleep 0.3
"#;

/// The clients (and the servers on 22 and 2222), with Debian's python3.
const PY: &str = r#"import socket, struct, sys, time, threading
from socket import inet_aton, inet_pton, AF_INET, AF_INET6
def fam(a): return AF_INET6 if ':' in a else AF_INET
def serve():
    def loop(s):
        while True:
            c, _ = s.accept(); c.close()
    for p in (22, 2222):
        for f, a in ((AF_INET, '0.0.0.0'), (AF_INET6, '::')):
            s = socket.socket(f)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if f == AF_INET6: s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            s.bind((a, p)); s.listen(64)
            threading.Thread(target=loop, args=(s,), daemon=True).start()
    print('listening', flush=True); time.sleep(45)
def syn(src, dst, ports):
    # one SYN per port: a non-blocking connect, closed before any retransmission
    for p in ports:
        s = socket.socket(fam(src)); s.setblocking(False); s.bind((src, 0))
        try: s.connect((dst, p))
        except BlockingIOError: pass
        time.sleep(0.03)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0)); s.close()
def udp(src, dst, ports):
    for p in ports:
        s = socket.socket(fam(src), socket.SOCK_DGRAM); s.bind((src, 0)); s.sendto(b'x', (dst, p)); s.close()
def connect(src, dst, port, n):
    res = []
    for _ in range(n):
        s = socket.socket(fam(src)); s.settimeout(3); s.bind((src, 0))
        try: s.connect((dst, port)); res.append('ok')
        except OSError as e: res.append(type(e).__name__)
        s.close()
    print(src, port, ' '.join(res))
def csum(b):
    if len(b) % 2: b += b'\0'
    s = sum(struct.unpack('!%dH' % (len(b) // 2), b)); s = (s >> 16) + (s & 0xffff); s += s >> 16
    return (~s) & 0xffff
def tcp(src, dst, sport, dport, flags, opts=b'', payload=b''):
    opts += b'\0' * ((-len(opts)) % 4)
    h = struct.pack('!HHIIBBHHH', sport, dport, 1, 0, ((20 + len(opts)) // 4) << 4, flags, 64240, 0, 0) + opts + payload
    if ':' in src: ph = inet_pton(AF_INET6, src) + inet_pton(AF_INET6, dst) + struct.pack('!I3xB', len(h), 6)
    else: ph = inet_aton(src) + inet_aton(dst) + struct.pack('!BBH', 0, 6, len(h))
    return h[:16] + struct.pack('!H', csum(ph + h)) + h[18:]
def ip4(src, dst, proto, payload, opts=b''):
    ihl = (20 + len(opts)) // 4
    h = struct.pack('!BBHHHBBH4s4s', 0x40 | ihl, 0, ihl * 4 + len(payload), 0x1234, 0, 64, proto, 0, inet_aton(src), inet_aton(dst)) + opts
    return h[:10] + struct.pack('!H', csum(h)) + h[12:] + payload
def ip6(src, dst, nh, payload, tc, fl):
    return struct.pack('!IHBB', (6 << 28) | (tc << 20) | fl, len(payload), nh, 64) + inet_pton(AF_INET6, src) + inet_pton(AF_INET6, dst) + payload
def frames(mac, pkts):
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW); s.bind(('veth-c', 0))
    for p in pkts:
        # the source MAC is the sender's choice: its bytes spell " SRC=1"
        s.send(bytes.fromhex(mac.replace(':', '')) + b' SRC=1' + struct.pack('!H', 0x86dd if p[0] >> 4 == 6 else 0x0800) + p)
S4, S6 = '192.0.2.1', '2001:db8:a::1'
def hostile(mac):
    rr = bytes([7, 39, 4]) + bytes(36) + b'\0'
    topts = bytes([2, 4, 5, 180, 4, 2, 3, 3, 7, 254, 31]) + b' SRC=192.0.2.10 DST=192.0.2.1'
    data = b'\n[UFW BLOCK] IN=x OUT= MAC= SRC=192.0.2.10 DST=192.0.2.1 LEN=1 '
    inner = ip4('192.0.2.10', '198.51.100.7', 17, struct.pack('!HHHH', 53, 4000, 8, 0))
    icmp = struct.pack('!BBHI', 3, 3, 0, 0) + inner
    icmp = icmp[:2] + struct.pack('!H', csum(icmp)) + icmp[4:]
    frames(mac, [ip4('192.0.2.99', S4, 6, tcp('192.0.2.99', S4, 40001, 81, 0x02, topts, data), rr),
                 ip4('203.0.113.99', S4, 6, tcp('203.0.113.99', S4, 40002, 82, 0x02)),
                 ip6('2001:db8:a::99', S6, 6, tcp('2001:db8:a::99', S6, 40003, 83, 0x02, topts, data), 255, 0xfffff),
                 ip4('192.0.2.99', S4, 1, icmp)])
def late(mac, n):
    frames(mac, [ip4('192.0.2.10', S4, 6, tcp('192.0.2.10', S4, 41000 + i, 22, [0x04, 0x14, 0x11][i % 3])) for i in range(n)])
a = sys.argv[1:]
if a[0] == 'serve': serve()
elif a[0] == 'syn': syn(a[1], a[2], [int(x) for x in a[3:]])
elif a[0] == 'udp': udp(a[1], a[2], [int(x) for x in a[3:]])
elif a[0] == 'connect': connect(a[1], a[2], int(a[3]), int(a[4]))
elif a[0] == 'hostile': hostile(a[1])
elif a[0] == 'late': late(a[1], int(a[2]))
"#;

/// /dev/kmsg opened at its end (non-blocking): [`Kmsg::records`] gives (uptime in µs,
/// message) of the records written since.
struct Kmsg(fs::File);

impl Kmsg {
    fn at_end() -> Self {
        let mut f = fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open("/dev/kmsg")
            .expect("open /dev/kmsg");
        f.seek(SeekFrom::End(0)).expect("seek /dev/kmsg");
        Kmsg(f)
    }

    fn records(&mut self) -> Vec<(u64, String)> {
        let mut out = Vec::new();
        let mut buf = vec![0u8; 16384];
        for _ in 0..100_000 {
            match self.0.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    // "PRI,SEQ,USEC,FLAGS;MESSAGE\n" then " KEY=VALUE" lines
                    let rec = String::from_utf8_lossy(&buf[..n]).into_owned();
                    let first = rec.lines().next().unwrap_or_default();
                    if let Some((head, msg)) = first.split_once(';') {
                        let usec = head.split(',').nth(2).and_then(|u| u.parse().ok());
                        out.push((usec.unwrap_or(0), msg.to_string()));
                    }
                }
                // a record overwritten before it was read
                Err(e) if e.raw_os_error() == Some(libc::EPIPE) => continue,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => panic!("read /dev/kmsg: {e}"),
            }
        }
        out
    }
}

/// Writes `records` as rsyslog's imklog writes them into /var/log/ufw.log (the kernel's
/// stamp kept) and as a syslog without it (`journalctl -k`): the two logs' paths.
fn write_logs(dir: &Path, records: &[(u64, String)]) -> [std::path::PathBuf; 2] {
    let ts = syslog_timestamp(SystemTime::now());
    let (mut klog, mut plain) = (String::new(), String::new());
    for (usec, msg) in records {
        let (s, us) = (usec / 1_000_000, usec % 1_000_000);
        klog.push_str(&format!("{ts} gw kernel: [{s:5}.{us:06}] {msg}\n"));
        plain.push_str(&format!("{ts} gw kernel: {msg}\n"));
    }
    let (k, p) = (dir.join("ufw.log"), dir.join("kern.log"));
    fs::write(&k, klog).unwrap();
    fs::write(&p, plain).unwrap();
    [k, p]
}

#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn real_ufw_blocked_probes_count_for_their_source() {
    require_root();
    for p in ["ufw", "iptables", "ip6tables"] {
        require_program(p, if p == "ufw" { "ufw" } else { "iptables" });
    }
    require_program("python3", "python3");
    require_program("unshare", "util-linux");
    require_program("nsenter", "util-linux");
    require_program("ip", "iproute2");
    let dir = test_dir("ufw");
    let etc = dir.path().join("etc/default");
    fs::create_dir_all(&etc).unwrap();
    let default = fs::read_to_string("/etc/default/ufw").expect("/etc/default/ufw (ufw)");
    let default: String = default
        .lines()
        .map(|l| match l {
            l if l.starts_with("IPV6=") => "IPV6=yes".to_string(),
            l if l.starts_with("IPT_MODULES=") => "IPT_MODULES=\"\"".to_string(),
            l => l.to_string(),
        })
        .map(|l| l + "\n")
        .collect();
    fs::write(etc.join("ufw"), default).unwrap();
    fs::write(dir.path().join("pct.py"), PY).unwrap();
    let iface = format!("ufw{}", std::process::id());
    let script = format!("{PRIVATE_ETC_SH}{VETH_CLIENT_SH}{SCRIPT}");
    let records = {
        let _serial = NF_LOG_ALL_NETNS.lock().unwrap_or_else(|e| e.into_inner());
        let _sysctl = NfLogAllNetns::enable();
        let mut kmsg = Kmsg::at_end();
        let shown = [("ufw", "ufw.out"), ("servers", "serve.out")];
        run_script_ok("ufw", dir.path(), &script, &[iface.as_ref()], &shown);
        kmsg.records()
    };
    let mine = format!(" IN={iface} ");
    let records: Vec<(u64, String)> = records
        .into_iter()
        .filter(|(_, m)| m.starts_with("[UFW ") && m.contains(&mine))
        .collect();
    let read = |name: &str| fs::read_to_string(dir.path().join(name)).unwrap_or_default();
    let kernel: String = records.iter().map(|(_, m)| format!("{m}\n")).collect();

    // the limited port refused the 6th to 8th connection; the allowed port answered
    let connects = read("connects");
    assert!(
        connects.contains("192.0.2.77 2222 ok ok ok ok ok ConnectionRefusedError ConnectionRefusedError ConnectionRefusedError")
            && connects.matches("192.0.2.10 22 ok").count() == 2,
        "connections:\n{connects}"
    );
    // what the kernel logged: the legitimate client's late packets as "[UFW BLOCK]" (the
    // 10th to 12th at low, the 3 at medium), the ICMP error quoting it, its SYNs audited
    let lines_of = |prefix: &str, src: &str| {
        records
            .iter()
            .filter(|(_, m)| m.starts_with(prefix) && m.contains(&format!(" SRC={src} ")))
            .count()
    };
    // (at low, how many of the 12 pass the burst depends on the other INVALID packets: 1 to 3)
    let late = lines_of("[UFW BLOCK] ", "192.0.2.10");
    assert!(
        (4..=6).contains(&late),
        "{late} late packets logged:\n{kernel}"
    );
    assert_eq!(
        lines_of("[UFW AUDIT INVALID] ", "192.0.2.10"),
        3,
        "{kernel}"
    );
    assert_eq!(lines_of("[UFW AUDIT] ", "192.0.2.10"), 1, "{kernel}");
    assert_eq!(
        lines_of("[UFW AUDIT INVALID] ", "192.0.2.99"),
        1,
        "{kernel}"
    );
    assert!(
        kernel.contains("FLOWLBL=1048575")
            && kernel.contains("TC=255")
            && kernel.contains("PROTO=ICMP TYPE=3 CODE=3 [SRC=192.0.2.10 "),
        "the hostile packets are not in the kernel's lines:\n{kernel}"
    );
    // the sender's MAC bytes (" SRC=1") are written as hex
    assert!(
        kernel.contains(":20:53:52:43:3d:31:08:00 SRC=192.0.2.99 "),
        "{kernel}"
    );

    let want = want_rules(&[
        ("192.0.2.66", &[("block", 7)]),
        ("2001:db8:a::66", &[("block", 2)]),
        ("192.0.2.77", &[("limit", 3)]),
        ("192.0.2.99", &[("block", 3)]),
        ("203.0.113.99", &[("block", 2)]),
        ("2001:db8:a::99", &[("block", 2)]),
    ]);
    for log in write_logs(dir.path(), &records) {
        let got = rules_by_host("ufw", &log);
        let text = fs::read_to_string(&log).unwrap();
        assert_eq!(
            got,
            want,
            "{}: what counted, per address:\n{text}",
            log.display()
        );
    }

    // a jail with maxretry 5 bans the scanner with 7 probes, and only it
    let log = dir.path().join("ufw.log");
    let bans = replay_jail(dir.path(), "ufw", &log, "normal", 5);
    assert_eq!(
        bans.into_iter().collect::<Vec<_>>(),
        vec!["192.0.2.66".to_string()],
        "bans:\n{kernel}"
    );
}

/// Run by bash in a network namespace of its own: an nftables LOG rule with ufw's prefix on
/// port 23 (then drop), and three SYNs from 203.0.113.5 to it, each connect given up before
/// the SYN is sent again.
const KERNEL_LINES_SH: &str = r#"set -eu
ip link set lo up
ip addr add 192.0.2.1/32 dev lo
ip addr add 203.0.113.5/32 dev lo
nft -f - <<'N'
table inet pctufwj {
  chain in {
    type filter hook input priority 0;
    tcp dport 23 log prefix "[UFW BLOCK] " drop
  }
}
N
/usr/bin/python3 -c '
import socket
for _ in range(3):
    s = socket.socket(); s.settimeout(0.3); s.bind(("203.0.113.5", 0))
    try: s.connect(("192.0.2.1", 23))
    except OSError: pass
    s.close()
'
"#;

/// Root's record written to /dev/kmsg: ufw's line with 192.0.2.79, priority 4 and facility 0
/// asked for (the kernel files a user-space record with facility 0 as LOG_USER).
const ROOT_KMSG: &str =
    "<4>kernel: [UFW BLOCK] IN=lo OUT= MAC=00:00:00:00:00:00:00:00:00:00:00:00:08:00 \
SRC=192.0.2.79 DST=192.0.2.1 LEN=60 TOS=0x00 PREC=0x00 TTL=64 ID=1 DF PROTO=TCP SPT=5 DPT=23 \
WINDOW=1 RES=0x00 SYN URGP=0 \n";

/// One record written to /dev/kmsg (root only).
fn write_kmsg(record: &str) {
    fs::OpenOptions::new()
        .write(true)
        .open("/dev/kmsg")
        .and_then(|mut f| std::io::Write::write_all(&mut f, record.as_bytes()))
        .expect("write /dev/kmsg");
}

#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn real_ufw_journal_source_reads_the_kernels_lines_not_roots_kmsg_writes() {
    require_root();
    require_program("nft", "nftables");
    require_program("python3", "python3");
    require_program("unshare", "util-linux");
    require_program("nsenter", "util-linux");
    require_program("ip", "iproute2");
    let shipped = shipped_journal_source("ufw");
    let dir = test_dir("ufwj");
    let path = |rel: &str| dir.path().join(rel);
    let read = |rel: &str| fs::read_to_string(path(rel)).unwrap_or_default();

    let journald = Journald::start_with("[Journal]\nStorage=volatile\nRateLimitBurst=0\n");
    journald.assert_release();
    // journald files the whole ring buffer when it starts (earlier runs' lines too): a
    // record of root's, once in the journal, says it has caught up; the daemon starts after
    // it, and only the entries after it are looked at
    let marker = format!("journald caught up {}", std::process::id());
    write_kmsg(&format!("<14>pct-ufwj: {marker}\n"));
    let mut cursor = String::new();
    let caught_up = wait_until(Duration::from_secs(20), || {
        journald
            .messages(&["SYSLOG_IDENTIFIER=pct-ufwj"])
            .into_iter()
            .find(|(m, _)| *m == marker)
            .map(|(_, v)| cursor = v["__CURSOR"].as_str().unwrap_or_default().to_string())
            .is_some()
    });
    assert!(
        caught_up && !cursor.is_empty(),
        "journald did not file root's /dev/kmsg record {marker:?}"
    );
    let after = format!("--after-cursor={cursor}");
    let mut text = null_config_head(dir.path());
    for (name, source) in [
        ("shipped", shipped.as_str()),
        ("kernel-only", "journal:_TRANSPORT=kernel"),
    ] {
        text.push_str(&format!(
            "[[jail]]\nname = \"{name}\"\nfilter = \"ufw\"\nlogs = [{source:?}]\n\
             maxretry = 100\nfindtime = \"1h\"\nbantime = \"1h\"\n"
        ));
    }
    let config: PathBuf = path("portcullis.toml");
    fs::write(&config, text).unwrap();
    let socket = path("portcullis.sock");
    let mut daemon = journald.daemon(&config, &path("state"), &path("daemon.log"));

    // the kernel's LOG lines: from a namespace of the test's, so nf_log_all_netns is 1 for
    // that time (put back by the guard, also on panic)
    let out = {
        let _serial = NF_LOG_ALL_NETNS.lock().unwrap_or_else(|e| e.into_inner());
        let _sysctl = NfLogAllNetns::enable();
        run_with_timeout(
            Command::new("unshare").args(["--net", "bash", "-c", KERNEL_LINES_SH]),
            None,
            Duration::from_secs(30),
        )
    };
    assert!(out.success(), "the LOG rule's run: {out:?}");
    // root's write, a user-space record
    write_kmsg(ROOT_KMSG);

    // what journald filed: the kernel's three lines with facility 0, root's with 1
    let of = |src: &str| -> Vec<serde_json::Value> {
        journald
            .messages(&[&after, "_TRANSPORT=kernel"])
            .into_iter()
            .filter(|(m, _)| m.starts_with("[UFW BLOCK] ") && m.contains(&format!(" SRC={src} ")))
            .map(|(_, v)| v)
            .collect()
    };
    let mut kernel = Vec::new();
    let mut root = Vec::new();
    let all_in = wait_until(Duration::from_secs(20), || {
        kernel = of("203.0.113.5");
        root = of("192.0.2.79");
        kernel.len() >= 3 && !root.is_empty()
    });
    assert!(
        all_in && kernel.len() == 3 && root.len() == 1,
        "the journal's [UFW BLOCK] entries: 203.0.113.5 {kernel:#?}\n192.0.2.79 {root:#?}"
    );
    for v in &kernel {
        assert_eq!(
            (
                v["SYSLOG_IDENTIFIER"].as_str(),
                v["SYSLOG_FACILITY"].as_str()
            ),
            (Some("kernel"), Some("0")),
            "the kernel's line: {v}"
        );
    }
    assert_eq!(
        (
            root[0]["SYSLOG_IDENTIFIER"].as_str(),
            root[0]["SYSLOG_FACILITY"].as_str()
        ),
        (Some("kernel"), Some("1")),
        "root's /dev/kmsg line: {}",
        root[0]
    );

    // what each jail counts (only these two addresses: the machine's kernel may log more)
    let mine = |m: Option<&std::collections::BTreeMap<String, u32>>| {
        m.into_iter()
            .flatten()
            .filter(|(a, _)| *a == "203.0.113.5" || *a == "192.0.2.79")
            .map(|(a, n)| (a.clone(), *n))
            .collect::<Vec<_>>()
    };
    let want_shipped = vec![("203.0.113.5".to_string(), 3)];
    let want_kernel = vec![
        ("192.0.2.79".to_string(), 1),
        ("203.0.113.5".to_string(), 3),
    ];
    let mut got = Default::default();
    let counted = wait_until(Duration::from_secs(20), || {
        got = failing(&socket);
        mine(got.get("shipped")) == want_shipped && mine(got.get("kernel-only")) == want_kernel
    });
    assert!(
        counted,
        "{shipped}: what each jail counts: {got:#?}\nwanted shipped {want_shipped:?}, \
         kernel-only {want_kernel:?}\ndaemon:\n{}",
        read("daemon.log")
    );
    // and it stays so: root's line is not counted late
    std::thread::sleep(Duration::from_millis(500));
    let again = failing(&socket);
    assert_eq!(mine(again.get("shipped")), want_shipped, "{again:#?}");
    assert!(daemon.try_wait().is_none(), "the daemon exited");
    daemon.kill();
}

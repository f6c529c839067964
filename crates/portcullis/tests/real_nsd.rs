//! The `nsd` filter against the real NSD, twice: Debian 12's nsd (4.6.1, the machine's) and
//! Debian 13's (4.12.0, test.sh's trixie tree, run with chroot in a private overlay of it:
//! common/real.rs `trixie_mount`), the same scenarios and one table of what counts for both
//! (4.12 differs in two lines that count nothing or the same: see below). It runs in its own
//! pid, mount and network namespace (`unshare`), `nsd -d` on 192.0.2.53 and [2001:db8::53] with
//! `verbosity: 2`, authoritative for example.net (`provide-xfr`, `allow-notify` and
//! `allow-query` open to 192.0.2.10 alone) and example.org (open, with a wildcard), and
//! response rate limiting at 20 queries a second (`rrl-ratelimit`). Without `logfile:` NSD
//! logs twice: through syslog(3) to a private rsyslogd (a private /dev whose /dev/log is its
//! socket, rsyslog's traditional file format), and on stderr with util.c's log_file(), the
//! writer and format of its own `logfile:` (`[YYYY-MM-DD HH:MM:SS.mmm] nsd[PID]: info: ...`).
//! This makes permanent the manual check of the filter's header.
//!
//! Clients (`dig` from Debian's bind9-dnsutils, `-b SRC`; python3 for the burst): 192.0.2.10
//! transfers the zone (AXFR), asks a question and sends a NOTIFY, all allowed; 198.51.100.9
//! asks for four transfers (AXFR, IXFR over TCP, and two AXFRs of hostile names: another
//! client's address written inside with spaces, and control bytes with a LF, `]` and `:`,
//! in presentation-format escapes, as dig sends them); 203.0.113.77 sends two NOTIFYs and a
//! query of a hostile name; 2001:db8:77::7 asks for a transfer and a question over IPv6;
//! 192.0.2.201 sends 300 ANY queries of a hostile name under the wildcard at once (RRL).
//!
//! In both logs `portcullis test --filter nsd --json` must count each refusal once for the
//! address NSD wrote (never one inside a name, nor the rate limit's target network), the
//! rate-limit block once for the burst's source, and nothing for the allowed client;
//! `portcullis replay` with `maxretry = 3` in mode normal bans 198.51.100.9 alone, and with
//! `maxretry = 1` in mode ddos (queries and rate limits, class scan) the three sources of
//! scan-class lines.
//! 4.12 writes a refused query without the acl spec after its reason (`refused, no acl
//! matches`; 4.6: `no acl matches .`) and the allowed transfer with its TLS state (`from
//! 192.0.2.10  not-verified`): both read as before.
//!
//! Needs root, nsd, dig (bind9-dnsutils), python3, rsyslogd and util-linux's unshare
//! (test.sh installs them), and for the second run chroot and the trixie tree; fails loudly
//! when they are missing. Runs in about 1 s each.

mod common;

use common::*;
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

/// Run as pid 1 of the new pid, mount and network namespace (bash, after
/// [`PRIVATE_SYSLOG_SH`]): every process of the run is in it and dies with it; $1 is the
/// test's directory, $2 the Debian 13 tree (empty: the machine's NSD; after [`TRIXIE_SH`]).
const SCRIPT: &str = r#"set -u
d="$1"; tree="$2"
ip link set lo up
for a in 192.0.2.53 192.0.2.10 192.0.2.201 198.51.100.9 203.0.113.77; do
  ip addr add "$a/32" dev lo || exit 2
done
for a in 2001:db8::53 2001:db8:77::7; do ip addr add "$a/128" dev lo nodad || exit 2; done
# a private /dev whose /dev/log is a private rsyslogd's socket (common/netns.rs)
private_syslog "$d"
# the NSD to run: the machine's (Debian 12), or Debian 13's in a private overlay of its tree
# (common/real.rs trixie_mount: its /etc, /run and /tmp private, $d at the same path)
nsd=(nsd); r=/
if [ -n "$tree" ]; then
  r="$d/root"
  trixie_mount "$tree" "$r" "$d/trixie" || exit 4
  nsd=(chroot "$r" /usr/sbin/nsd)
fi
dpkg-query --admindir="$r/var/lib/dpkg" -W -f '${Version}' nsd > "$d/version"
cat > "$d/example.net.zone" <<Z
\$TTL 300
@ IN SOA ns.example.net. hostmaster.example.net. 1 3600 600 86400 300
@ IN NS ns.example.net.
ns IN A 192.0.2.53
www IN A 192.0.2.80
Z
cat > "$d/example.org.zone" <<Z
\$TTL 300
@ IN SOA ns.example.org. hostmaster.example.org. 1 3600 600 86400 300
@ IN NS ns.example.org.
ns IN A 192.0.2.53
* IN A 192.0.2.80
Z
cat > "$d/nsd.conf" <<C
server:
  ip-address: 192.0.2.53
  ip-address: 2001:db8::53
  port: 53
  server-count: 1
  username: ""
  chroot: ""
  zonesdir: "$d"
  database: ""
  pidfile: "$d/nsd.pid"
  xfrdfile: "$d/xfrd.state"
  xfrdir: "$d"
  zonelistfile: "$d/zone.list"
  verbosity: 2
  rrl-ratelimit: 20
  rrl-whitelist-ratelimit: 20
remote-control:
  control-enable: no
zone:
  name: example.net
  zonefile: example.net.zone
  provide-xfr: 192.0.2.10 NOKEY
  allow-notify: 192.0.2.10 NOKEY
  allow-query: 192.0.2.10 NOKEY
zone:
  name: example.org
  zonefile: example.org.zone
C
# no logfile: NSD writes syslog and, with log_file(), the same lines on stderr
"${nsd[@]}" -d -c "$d/nsd.conf" 2>"$d/nsd.log" &
for _ in $(seq 100); do grep -q "nsd started" "$d/nsd.log" 2>/dev/null && break; sleep 0.1; done
grep -q "nsd started" "$d/nsd.log" 2>/dev/null || { echo "nsd did not start" >&2; exit 4; }
q() { timeout 10 dig +tries=1 +time=3 "$@" > "$d/dig.out" 2>&1; grep -h -E "status: |Transfer failed|XFR size" "$d/dig.out" >> "$d/answers"; }
q -b 192.0.2.10 @192.0.2.53 example.net AXFR
q -b 192.0.2.10 @192.0.2.53 www.example.net A
q -b 192.0.2.10 @192.0.2.53 +opcode=notify example.net SOA
q -b 198.51.100.9 @192.0.2.53 example.net AXFR
q -b 198.51.100.9 @192.0.2.53 +tcp example.net IXFR=1
q -b 198.51.100.9 @192.0.2.53 'a\032from\032192.0.2.10\032refused,\032x.example.net' AXFR
q -b 198.51.100.9 @192.0.2.53 'x\008\011\010\013\000]:\032from\032192.0.2.10' AXFR
q -b 203.0.113.77 @192.0.2.53 +opcode=notify example.net SOA
q -b 203.0.113.77 @192.0.2.53 +opcode=notify example.net SOA
q -b 203.0.113.77 @192.0.2.53 'a\032from\032192.0.2.10.example.net' A
q -b 2001:db8:77::7 @2001:db8::53 example.net AXFR
q -b 2001:db8:77::7 @2001:db8::53 www.example.net AAAA
# the burst: 300 ANY queries at once from one address, of a name the wildcard answers
python3 - <<'P' 2>"$d/python.err"
import socket, struct
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("192.0.2.201", 0))
labels = [b"x query 192.0.2.10 A\n", b"example", b"org"]
name = b"".join(bytes([len(l)]) + l for l in labels) + b"\0"
for i in range(300):
    s.sendto(struct.pack(">HHHHHH", i, 0, 1, 0, 0, 0) + name + struct.pack(">HH", 255, 1),
             ("192.0.2.53", 53))
P
for _ in $(seq 50); do
  grep -q "ratelimit block" "$d/syslog" 2>/dev/null && break
  sleep 0.1
done
sleep 0.3
kill %2
wait %2
kill %1
wait
"#;

/// The rules counted per address, sorted, and the counted lines.
fn counted(log: &Path) -> (BTreeMap<String, Vec<String>>, Vec<String>) {
    let mut by_host: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut lines = Vec::new();
    for (host, rule, line) in counted_matches("nsd", log) {
        by_host.entry(host).or_default().push(rule);
        lines.push(line);
    }
    for rules in by_host.values_mut() {
        rules.sort();
    }
    (by_host, lines)
}

// The NSD under test: Debian 12's (the machine's, 4.6.1) or Debian 13's (the trixie tree,
// 4.12.0, run with chroot).

/// Runs every scenario against `version`'s NSD (the clients are the machine's) and checks
/// what the clients got, what NSD wrote and what the filter counts of it.
fn run(version: Release) {
    require_root();
    require_program("nsd", "nsd");
    require_program("dig", "bind9-dnsutils");
    require_program("python3", "python3");
    require_program("rsyslogd", "rsyslog");
    require_program("unshare", "util-linux");
    let tree = match version {
        Release::Deb12 => String::new(),
        Release::Deb13 => {
            require_program("chroot", "coreutils");
            trixie_root(&["usr/sbin/nsd"]).display().to_string()
        }
    };
    let dir = test_dir(match version {
        Release::Deb12 => "nsd",
        Release::Deb13 => "nsd-4.12",
    });
    let shown = [("python", "python.err"), ("nsd", "nsd.log")];
    let script = format!("{PRIVATE_SYSLOG_SH}{TRIXIE_SH}{SCRIPT}");
    run_script_ok("nsd", dir.path(), &script, &[tree.as_ref()], &shown);
    let read = |name: &str| fs::read_to_string(dir.path().join(name)).unwrap_or_default();
    let release = match version {
        Release::Deb12 => "4.6.",
        Release::Deb13 => "4.12.",
    };
    assert!(
        read("version").starts_with(release),
        "nsd {}",
        read("version")
    );
    let own = dir.path().join("nsd.log");
    let sys = dir.path().join("syslog");

    // NSD answered the allowed client and refused the others (dig's own view)
    let answers = read("answers");
    assert_eq!(
        answers.matches("XFR size: 5 records").count(),
        1,
        "one allowed transfer expected:\n{answers}"
    );
    assert_eq!(
        answers.matches("Transfer failed").count(),
        5,
        "five refused transfers expected:\n{answers}"
    );
    assert_eq!(
        answers.matches("status: NOERROR").count(),
        2,
        "the allowed query and NOTIFY expected answered:\n{answers}"
    );
    assert_eq!(
        answers.matches("status: REFUSED").count(),
        4,
        "two NOTIFYs and two queries expected refused:\n{answers}"
    );

    let want: BTreeMap<String, Vec<String>> = [
        ("198.51.100.9", vec!["xfr-refused"; 4]),
        (
            "203.0.113.77",
            vec!["notify-refused", "notify-refused", "query-refused"],
        ),
        ("2001:db8:77::7", vec!["query-refused", "xfr-refused"]),
        ("192.0.2.201", vec!["ratelimit"]),
    ]
    .into_iter()
    .map(|(h, r)| (h.to_string(), r.into_iter().map(String::from).collect()))
    .collect();
    // where 4.12 writes differently: the allowed transfer ends with its TLS authentication
    // state after two spaces, and a refused query has no acl spec (4.6: " .") after
    // "no acl matches"; neither changes what counts
    let (allowed_xfr, refused_query) = match version {
        Release::Deb12 => (
            "axfr for example.net. from 192.0.2.10\n",
            "query a\\032from\\032192.0.2.10.example.net. from 203.0.113.77 refused, no acl matches .\n",
        ),
        Release::Deb13 => (
            "axfr for example.net. from 192.0.2.10  not-verified\n",
            "query a\\032from\\032192.0.2.10.example.net. from 203.0.113.77 refused, no acl matches\n",
        ),
    };
    for log in [&own, &sys] {
        let text = fs::read_to_string(log).unwrap_or_default();
        let name = log.display();
        // NSD's own lines: nine refusals and one rate-limit block; the allowed transfer
        // and NOTIFY are logged too
        let refusals = text.lines().filter(|l| l.contains(" refused")).count();
        assert_eq!(refusals, 9, "{name}: NSD's refusals:\n{text}");
        assert_eq!(
            text.matches("ratelimit block ").count(),
            1,
            "{name}: one rate-limit block expected:\n{text}"
        );
        for s in [
            allowed_xfr,
            "notify for example.net. from 192.0.2.10\n",
            refused_query,
            // the hostile names, escaped by NSD (dname.c): no space, no control byte
            r"axfr for a\032from\032192.0.2.10\032refused\044\032x.example.net. from 198.51.100.9 refused, no acl matches",
            r"axfr for x\008\011\010\013\000\093\058\032from\032192.0.2.10. from 198.51.100.9 refused",
            r"ratelimit block x\032query\032192\.0\.2\.10\032a\010.example.org. type any target 192.0.2.0/24 query 192.0.2.201 TYPE255",
        ] {
            assert!(text.contains(s), "{name}: not in the log: {s}\n{text}");
        }
        let (got, lines) = counted(log);
        assert_eq!(
            got, want,
            "{name}: what counted, per address: {lines:#?}\nlog:\n{text}"
        );
        // the allowed client and the addresses written inside names took nothing
        assert!(!got.contains_key("192.0.2.10"), "{name}: {lines:#?}");
        assert!(!got.contains_key("192.0.2.0"), "{name}: {lines:#?}");
    }

    // a jail with maxretry 3 bans the client with four refused transfers, and only it
    let bans = replay_jail(dir.path(), "nsd", &sys, "normal", 3);
    assert_eq!(
        bans.into_iter().collect::<Vec<_>>(),
        vec!["198.51.100.9".to_string()],
        "bans (normal, maxretry 3):\nlog:\n{}",
        read("syslog")
    );
    // mode ddos counts the scan-class lines alone: the refused queries and the rate limit
    let bans = replay_jail(dir.path(), "nsd", &own, "ddos", 1);
    let want_ddos: BTreeSet<String> = ["192.0.2.201", "203.0.113.77", "2001:db8:77::/64"]
        .into_iter()
        .map(String::from)
        .collect();
    assert_eq!(
        bans,
        want_ddos,
        "bans (ddos, maxretry 1):\nlog:\n{}",
        read("nsd.log")
    );
}

#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn real_nsd_refusals_and_rate_limits_count_for_the_client_nsd_wrote() {
    run(Release::Deb12);
}

#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn real_nsd_4_12_refusals_and_rate_limits_count_for_the_client_nsd_wrote() {
    run(Release::Deb13);
}

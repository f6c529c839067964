//! The `xinetd-fail` filter against the real xinetd, twice: Debian 12's xinetd (2.3.15.3, the
//! machine's) and Debian 13's (2.3.15.4, test.sh's trixie-c tree, run with chroot in a
//! private overlay of it: common/real.rs `trixie_mount`), the same scenarios and one table of
//! what counts for both (2.3.15.4 writes every line read as 2.3.15.3 does). Both are built
//! with libwrap. Each runs in its own pid, mount and network namespace (`unshare`),
//! `xinetd -dontfork` with `-syslog daemon`, a private /etc (the machine's overlaid,
//! `common::netns::PRIVATE_ETC_SH`, or the tree's) whose
//! hosts.deny refuses 203.0.113.77 and 2001:db8:77::/64 the libwrap name `pct-wrap`, and
//! `/bin/cat` services logging through syslog(3) to a private rsyslogd (a private /dev whose
//! /dev/log is its socket, rsyslog's traditional file format), as Debian's xinetd.conf
//! suggests (`log_type = SYSLOG daemon info`, `log_on_failure = HOST`, and `log_on_success =
//! HOST PID USERID`): pct-echo on 192.0.2.7 and pct-echo6 on [2001:db8::7] (`only_from` the
//! legitimate client), pct-dual on every address (`flags = IPv6`: IPv4 clients are logged as
//! `::ffff:A.B.C.D`), pct-wrap and pct-wrap6 (open but for libwrap; `per_source = 1`), and
//! pct-file, which logs into its own file (`log_type = FILE`).
//!
//! Clients (python3 sockets bound to a chosen source): 192.0.2.10 and 2001:db8::10 are
//! served (their data echoed); 192.0.2.10 also runs an identd (RFC 1413, what USERID asks)
//! whose answers hold a raw LF and a forged `FAIL: ... from=203.0.113.99` after it, one of
//! them not a valid answer (xinetd then logs it as "Bad line received"); 198.51.100.9 is
//! refused three times by only_from (once through pct-dual) and once by pct-file;
//! 203.0.113.77 and 2001:db8:77::7 each once by only_from and once by libwrap; 192.0.2.20
//! opens a second connection to pct-wrap while its first is held (per_source_limit).
//!
//! On the syslog file `portcullis test --filter xinetd-fail --json` must count every refusal
//! for the address xinetd wrote (the IPv4 one inside `::ffff:`), nothing for the served
//! clients, and nothing for the address after the identd's LF (rsyslog writes it `#012`).
//! `portcullis replay` with `maxretry = 3` bans 198.51.100.9 alone (a libwrap refusal's two
//! lines count once: 203.0.113.77 has two failures, not three), and in mode ddos with
//! `maxretry = 1` only 192.0.2.20 (per_source_limit, class scan). xinetd's own file
//! (log_type FILE) takes the identd's LF raw: the forged FAIL line is a whole line there.
//! The first run found that the filter counted it (for 203.0.113.99, never a client) while
//! it read none of xinetd's real lines there (`YY/M/D@HH:MM:SS: FAIL: ...`): its rules are
//! now `tagged_only`, and nothing of that file counts.
//!
//! Needs root, xinetd, python3, rsyslogd and util-linux's unshare (test.sh installs them),
//! and for the second run chroot and the trixie-c tree; fails loudly when they are missing.
//! Runs in about 1 s each.

mod common;

use common::*;
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

/// Run as pid 1 of the new pid, mount and network namespace (bash, after
/// [`PRIVATE_ETC_SH`] and [`PRIVATE_SYSLOG_SH`]): every process of the run is in it and dies
/// with it; $1 is the test's directory, $2 the Debian 13 tree (empty: the machine's xinetd;
/// after [`TRIXIE_SH`]).
const SCRIPT: &str = r#"set -u
d="$1"; tree="$2"
# a private /etc: libwrap refuses two clients the name pct-wrap
mkdir -p "$d/etc-src"
: > "$d/etc-src/hosts.allow"
echo 'pct-wrap: 203.0.113.77 [2001:db8:77::]/64' > "$d/etc-src/hosts.deny"
[ -n "$tree" ] || private_etc "$d/etc-ov" "$d/etc-src" hosts.allow hosts.deny || exit 2
ip link set lo up
for a in 192.0.2.7 192.0.2.10 192.0.2.20 198.51.100.9 203.0.113.77; do
  ip addr add "$a/32" dev lo || exit 2
done
for a in 2001:db8::7 2001:db8::10 2001:db8:77::7; do ip addr add "$a/128" dev lo nodad || exit 2; done
# a private /dev whose /dev/log is a private rsyslogd's socket (common/netns.rs)
private_syslog "$d"
# the xinetd to run: the machine's (Debian 12) with a private /etc, or Debian 13's in a
# private overlay of its tree (common/real.rs trixie_mount: its /etc, /run and /tmp private,
# $d at the same path), through chroot; its services (/bin/cat) are the tree's then
r=/; run=()
if [ -n "$tree" ]; then
  r="$d/root"
  trixie_mount "$tree" "$r" "$d/trixie" || exit 4
  run=(chroot "$r")
  cp "$d/etc-src/hosts.allow" "$d/etc-src/hosts.deny" "$r/etc/" || exit 4
fi
dpkg-query --admindir="$r/var/lib/dpkg" -W -f '${Version}' xinetd > "$d/version"
svc() { # NAME PORT FLAGS EXTRA...
  printf 'service %s\n{\n  type = UNLISTED\n  socket_type = stream\n  protocol = tcp\n' "$1"
  printf '  port = %s\n  wait = no\n  user = root\n  server = /bin/cat\n  flags = %s\n' "$2" "$3"
  shift 3
  for l in "$@"; do printf '  %s\n' "$l"; done
  printf '}\n'
}
{
  printf 'defaults\n{\n  log_type = SYSLOG daemon info\n  log_on_success = HOST PID USERID\n  log_on_failure = HOST\n}\n'
  svc pct-echo 7007 REUSE "bind = 192.0.2.7" "only_from = 192.0.2.10"
  svc pct-echo6 7007 "REUSE IPv6" "bind = 2001:db8::7" "only_from = 2001:db8::10"
  svc pct-dual 7009 "REUSE IPv6" "only_from = 192.0.2.10"
  svc pct-wrap 7010 REUSE "bind = 192.0.2.7" "libwrap = pct-wrap" "per_source = 1"
  svc pct-wrap6 7010 "REUSE IPv6" "bind = 2001:db8::7" "libwrap = pct-wrap"
  svc pct-file 7011 REUSE "bind = 192.0.2.7" "only_from = 192.0.2.10" "log_type = FILE $d/xinetd.log"
} > "$d/xinetd.conf"
"${run[@]}" /usr/sbin/xinetd -dontfork -f "$d/xinetd.conf" -syslog daemon -pidfile "$d/xinetd.pid" 2>"$d/xinetd.err" &
for _ in $(seq 100); do grep -q "Started working: 6 available" "$d/syslog" 2>/dev/null && break; sleep 0.1; done
grep -q "Started working: 6 available" "$d/syslog" || { echo "xinetd did not start" >&2; exit 4; }
# the legitimate client's identd: a raw LF in every answer, then a forged FAIL line
python3 - "$d" > "$d/identd.out" 2>&1 <<'P' &
import socket, sys
svc = {"7007": "pct-echo", "7009": "pct-dual", "7011": "pct-file"}
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("192.0.2.10", 113))
s.listen(8)
s.settimeout(10)
open(sys.argv[1] + "/identd.ready", "w").close()
for _ in range(3):
    c, _a = s.accept()
    c.settimeout(5)
    q = c.recv(200).decode().strip().replace(" ", "")
    lport = q.split(",")[1]
    forged = "FAIL: %s address from=203.0.113.99" % svc[lport]
    # pct-dual's answer names the wrong ports: xinetd logs it as a bad line
    head = "1,1" if lport == "7009" else q
    c.sendall(("%s:USERID:UNIX:x\n%s\r\n" % (head, forged)).encode())
    c.close()
    print("asked", q)
P
for _ in $(seq 50); do [ -e "$d/identd.ready" ] && break; sleep 0.1; done
python3 - > "$d/clients" 2>"$d/python.err" <<'P'
import socket, time
def conn(src, dst, port, hold=False):
    fam = socket.AF_INET6 if ":" in src else socket.AF_INET
    s = socket.socket(fam)
    s.bind((src, 0))
    s.settimeout(5)
    try:
        s.connect((dst, port))
        s.sendall(b"hello\n")
        got = "served" if s.recv(100) == b"hello\n" else "refused"
    except OSError:
        got = "refused"
    print(src, port, got, flush=True)
    if hold:
        return s
    s.close()
conn("192.0.2.10", "192.0.2.7", 7007)
conn("2001:db8::10", "2001:db8::7", 7007)
conn("192.0.2.10", "192.0.2.7", 7009)
conn("192.0.2.10", "192.0.2.7", 7011)
conn("198.51.100.9", "192.0.2.7", 7007)
conn("198.51.100.9", "192.0.2.7", 7007)
conn("198.51.100.9", "192.0.2.7", 7009)
conn("198.51.100.9", "192.0.2.7", 7011)
conn("203.0.113.77", "192.0.2.7", 7007)
conn("203.0.113.77", "192.0.2.7", 7010)
conn("2001:db8:77::7", "2001:db8::7", 7007)
conn("2001:db8:77::7", "2001:db8::7", 7010)
held = conn("192.0.2.20", "192.0.2.7", 7010, hold=True)
conn("192.0.2.20", "192.0.2.7", 7010)
held.close()
P
for _ in $(seq 50); do
  [ "$(grep -o "FAIL: " "$d/syslog" 2>/dev/null | wc -l)" -ge 10 ] &&
    [ "$(grep -c "FAIL: " "$d/xinetd.log" 2>/dev/null)" -ge 2 ] && break
  sleep 0.1
done
kill %2
wait %2
kill %3 2>/dev/null
kill %1
wait
"#;

/// The rules counted per address, sorted, and the counted lines.
fn counted(log: &Path) -> (BTreeMap<String, Vec<String>>, Vec<String>) {
    let mut by_host: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut lines = Vec::new();
    for (host, rule, line) in counted_matches("xinetd-fail", log) {
        by_host.entry(host).or_default().push(rule);
        lines.push(line);
    }
    for rules in by_host.values_mut() {
        rules.sort();
    }
    (by_host, lines)
}

// The xinetd under test: Debian 12's (the machine's, 2.3.15.3) or Debian 13's (the trixie-c
// tree, 2.3.15.4, run with chroot).

/// Runs every scenario against `version`'s xinetd (the clients are the machine's) and checks
/// what the clients got, what xinetd wrote and what the filter counts of it.
fn run(version: Release) {
    require_root();
    require_program("xinetd", "xinetd");
    require_program("python3", "python3");
    require_program("rsyslogd", "rsyslog");
    require_program("unshare", "util-linux");
    let tree = match version {
        Release::Deb12 => String::new(),
        Release::Deb13 => {
            require_program("chroot", "coreutils");
            trixie_c_root(&["usr/sbin/xinetd"]).display().to_string()
        }
    };
    let dir = test_dir(match version {
        Release::Deb12 => "xinetd",
        Release::Deb13 => "xinetd-2.3.15.4",
    });
    let shown = [
        ("xinetd", "xinetd.err"),
        ("clients (clients)", "clients"),
        ("clients (python.err)", "python.err"),
        ("identd", "identd.out"),
        ("syslog", "syslog"),
        ("file", "xinetd.log"),
    ];
    let script = format!("{PRIVATE_ETC_SH}{PRIVATE_SYSLOG_SH}{TRIXIE_SH}{SCRIPT}");
    run_script_ok("xinetd", dir.path(), &script, &[tree.as_ref()], &shown);
    let read = |name: &str| fs::read_to_string(dir.path().join(name)).unwrap_or_default();
    let release = match version {
        Release::Deb12 => "2.3.15.3",
        Release::Deb13 => "2.3.15.4",
    };
    assert!(
        read("version").starts_with(&format!("1:{release}-")),
        "xinetd {}",
        read("version")
    );
    let sys = dir.path().join("syslog");
    let own = dir.path().join("xinetd.log");
    let text = read("syslog");
    let file = read("xinetd.log");
    // the release that started (its first line), built with libwrap
    assert!(
        text.contains(&format!("]: {release} started with libwrap ")),
        "xinetd {release} expected:\n{text}"
    );

    // what the clients saw: the allowed ones served, every other connection refused
    let clients = read("clients");
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for l in clients.lines() {
        let w: Vec<&str> = l.split_whitespace().collect();
        *seen.entry(format!("{} {}", w[0], w[2])).or_default() += 1;
    }
    let want_seen: BTreeMap<String, usize> = [
        ("192.0.2.10 served", 3),
        ("2001:db8::10 served", 1),
        ("198.51.100.9 refused", 4),
        ("203.0.113.77 refused", 2),
        ("2001:db8:77::7 refused", 2),
        ("192.0.2.20 served", 1),
        ("192.0.2.20 refused", 1),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    assert_eq!(
        seen, want_seen,
        "the clients' view:\n{clients}\nsyslog:\n{text}"
    );
    assert_eq!(
        read("identd.out").matches("asked ").count(),
        3,
        "xinetd asked the identd once per served IPv4 connection:\n{}\nsyslog:\n{text}",
        read("identd.out")
    );

    // what xinetd wrote through syslog: the FAIL lines, the mapped address, the identd's LF
    // escaped by rsyslog in the USERID line and in the "Bad line" one
    for s in [
        "]: FAIL: pct-echo address from=198.51.100.9\n",
        "]: FAIL: pct-dual address from=::ffff:198.51.100.9\n",
        "]: FAIL: pct-echo6 address from=2001:db8:77::7\n",
        "]: libwrap refused connection to pct-wrap (libwrap=pct-wrap) from 203.0.113.77\n",
        "]: FAIL: pct-wrap6 libwrap from=2001:db8:77::7\n",
        "]: FAIL: pct-wrap per_source_limit from=192.0.2.20\n",
        "]: USERID: pct-echo UNIX:x#012FAIL: pct-echo address from=203.0.113.99\n",
        "]: Bad line received from identity server at ",
        "1,1:USERID:UNIX:x#012FAIL: pct-dual address from=203.0.113.99\n",
    ] {
        assert!(text.contains(s), "not in the syslog: {s}\n{text}");
    }
    assert_eq!(
        text.matches("FAIL: ").count(),
        8 + 2,
        "eight refusals and the two escaped forged lines expected:\n{text}"
    );

    let want: BTreeMap<String, Vec<String>> = [
        ("198.51.100.9", vec!["address", "address", "address"]),
        (
            "203.0.113.77",
            vec!["address", "libwrap", "libwrap-refused"],
        ),
        (
            "2001:db8:77::7",
            vec!["address", "libwrap", "libwrap-refused"],
        ),
        ("192.0.2.20", vec!["per-source"]),
    ]
    .into_iter()
    .map(|(h, r)| (h.to_string(), r.into_iter().map(String::from).collect()))
    .collect();
    let (got, lines) = counted(&sys);
    assert_eq!(
        got, want,
        "what counted, per address: {lines:#?}\nsyslog:\n{text}"
    );

    // xinetd's own file (log_type FILE): its real lines, and the identd's forged line whole
    for s in [
        ": FAIL: pct-file address from=198.51.100.9\n",
        ": USERID: pct-file UNIX:x\nFAIL: pct-file address from=203.0.113.99\n",
    ] {
        assert!(file.contains(s), "not in xinetd's file: {s:?}\n{file}");
    }
    let (got, lines) = counted(&own);
    assert!(
        got.is_empty(),
        "xinetd's own file must count nothing (a client writes whole lines there): {lines:#?}\nfile:\n{file}"
    );

    // a jail with maxretry 3 bans the client with three refusals, and only it: a libwrap
    // refusal's two lines count once
    let bans = replay_jail(dir.path(), "xinetd-fail", &sys, "normal", 3);
    assert_eq!(
        bans.into_iter().collect::<Vec<_>>(),
        vec!["198.51.100.9".to_string()],
        "bans (normal, maxretry 3):\nsyslog:\n{text}"
    );
    // mode ddos: the per-source limit alone (class scan)
    let bans = replay_jail(dir.path(), "xinetd-fail", &sys, "ddos", 1);
    assert_eq!(
        bans,
        BTreeSet::from(["192.0.2.20".to_string()]),
        "bans (ddos, maxretry 1):\nsyslog:\n{text}"
    );
    assert!(
        replay_jail(dir.path(), "xinetd-fail", &own, "aggressive", 1).is_empty(),
        "a ban from xinetd's own file:\n{file}"
    );
}

#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn real_xinetd_refusals_count_for_the_client_xinetd_wrote() {
    run(Release::Deb12);
}

#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn real_xinetd_2_3_15_4_refusals_count_for_the_client_xinetd_wrote() {
    run(Release::Deb13);
}

//! Issue 11, part 3: the log-line prefixes of the real syslog daemons and of journald, read by
//! the `sshd` filter. In its own pid, mount, network and UTS namespace (pid 1 re-executes
//! itself under `unshare --uts`; the host name is `198.51.100.7`, an address, and
//! `2001:db8::7` for syslog-ng), behind a private /dev whose /dev/log points in turn at:
//!
//! * rsyslogd 8.2302, traditional format (`private_syslog`, common/netns.rs):
//!   `Dec  4 23:38:44 198 sshd[4101]: Failed password for …` (rsyslog cuts the host at its
//!   first dot);
//! * a second rsyslogd with `preserveFQDN`: RSYSLOG_FileFormat
//!   `2026-12-04T23:38:44.634252+00:00 198.51.100.7 sshd[4101]: Failed …`,
//!   RSYSLOG_SyslogProtocol23Format `<38>1 2026-12-04T23:38:44.634252+00:00 198.51.100.7 sshd
//!   4101 - -  Failed …` (two spaces: the space after the tag stays in rsyslog's msg; until
//!   this test the parser kept one in the message, and not one line of such a file counted,
//!   without a word from `portcullis test`), and RSYSLOG_ForwardFormat as sent over UDP to a
//!   local imudp and written raw (`%rawmsg%`; omfile writes that template without a newline):
//!   `<38>2026-12-04T23:38:44.634252+00:00 198.51.100.7 sshd[4101]: Failed …`;
//! * BusyBox 1.35 syslogd (`-n -O FILE`): `Dec  4 23:38:44 198 auth.info sshd[4101]: Failed …`,
//!   and with `-S`: `Dec  4 23:38:44 sshd[4101]: Failed …`;
//! * syslog-ng 3.38 (unpacked), default file template
//!   `Dec  4 23:38:44 2001:db8::7 sshd[4101]: Failed …` and `ts_format(iso) frac_digits(6)`
//!   `2026-12-04T23:38:44.000000+00:00 2001:db8::7 sshd[4101]: Failed …`;
//! * inetutils-syslogd 2.4 (unpacked): `Dec  4 23:38:44 198 sshd[4101]: Failed …`;
//! * systemd-journald 252 (its own tmpfs /run/systemd, /run/log and /var/log/journal), exported
//!   by `journalctl -o short` `Dec 04 23:38:45 198.51.100.7 sshd[231]: Failed …`, `short-iso`
//!   `2026-12-04T23:38:45+0000 …`, `short-precise` `Dec 04 23:38:45.162479 …`, `short-full`
//!   `Fri 2026-12-04 23:38:45 UTC …`, `short-iso-precise` and `short-unix`
//!   `1796427525.162479 198.51.100.7 sshd[231]: Failed …`.
//!
//! Each daemon receives the same 24 messages from util-linux `logger -t sshd --id=PID -p
//! auth.info`, in three header forms: logger's local one (`<38>Mmm dd HH:MM:SS sshd[PID]: `,
//! what glibc's syslog(3), and so sshd, sends), `--rfc3164` (with the host name) and
//! `--rfc5424`. Per form: OpenSSH's failures for 203.0.113.5 (three, one with a user name
//! `admin from 192.0.2.66 port 1`) and 2001:db8::66 (three, user names `x from 192.0.2.67
//! port 22` and `198.51.100.7`), a login that succeeds (192.0.2.10) and the same failure text
//! under the tag CRON (192.0.2.99). `portcullis test --filter sshd --json` on each file and
//! export must count exactly the failures of the forms the daemon understood, for the address
//! sshd would have written: never the host name, nor an address typed in a user name, nor the
//! success or the CRON line; the text report must list as "prefix not recognised" exactly the
//! lines of the forms the daemon did not understand (and the daemon's own untagged lines), never
//! a line of the local form. `portcullis replay` with maxretry 3 bans 203.0.113.5 and
//! 2001:db8::/64 alone.
//!
//! What the daemons do with the other two forms (their own doing, reported, not read): none of
//! them parses RFC 5424 or a host name from its local socket. A `--rfc3164` message's host
//! becomes the tag (`… 198 198 sshd[4201]: …`: read when both host words are the same, the
//! UniFi form; not with rsyslog's preserveFQDN, syslog-ng's other host name or BusyBox's
//! `198 auth.info 198 sshd[…]`; journald files it as `logger[PID]: 198 sshd[4201]: …`), and an
//! RFC 5424 one is filed under the tag `1` (`… 198 1 2026-12-04T… 198.51.100.7 sshd 4301 - […]
//! Failed …`; journald: `logger[PID]: 1 2026-…`). sshd, which calls syslog(3), sends neither.
//!
//! Needs root, rsyslogd (rsyslog), logger and unshare (util-linux), busybox, journalctl and
//! systemd-journald (systemd), and syslog-ng and inetutils-syslogd unpacked by test.sh under
//! /var/cache/portcullis-test (PORTCULLIS_SYSLOG_NG_ROOT, PORTCULLIS_INETUTILS_SYSLOGD_ROOT
//! elsewhere); fails loudly when they are missing. Runs in about 2 s.

mod common;

use common::*;
use std::fs;
use std::path::{Path, PathBuf};

/// Run as pid 1 of the new pid, mount and network namespace (bash), after PRIVATE_SYSLOG_SH;
/// $1 the test's directory, $2 and $3 the unpacked syslog-ng and inetutils-syslogd, $4 journald.
const SCRIPT: &str = r#"set -u
# pid 1 runs itself again in a new UTS namespace (exec: still pid 1) before naming the host
if [ "${1:-}" != uts ]; then exec unshare --uts bash "$0" uts "$@"; fi
shift
d="$1" sng="$2" inet="$3" journald="$4"
ip link set lo up
printf 198.51.100.7 > /proc/sys/kernel/hostname
# a private /dev whose /dev/log is a private rsyslogd's socket, traditional format
private_syslog "$d"
# the messages, in one header form (logger's option, or none) and with pids from BASE+1
send() {
  local o=$1 p=$2
  logger $o -t sshd --id=$((p+1)) -p auth.info "Failed password for invalid user admin from 203.0.113.5 port 4242 ssh2"
  logger $o -t sshd --id=$((p+2)) -p auth.info "Failed password for root from 203.0.113.5 port 4243 ssh2"
  logger $o -t sshd --id=$((p+3)) -p auth.info "Invalid user x from 2001:db8::66 port 22"
  logger $o -t sshd --id=$((p+4)) -p auth.info "Failed password for invalid user admin from 192.0.2.66 port 1 from 203.0.113.5 port 4244 ssh2"
  logger $o -t sshd --id=$((p+5)) -p auth.info "Invalid user x from 192.0.2.67 port 22 from 2001:db8::66 port 23"
  logger $o -t sshd --id=$((p+6)) -p auth.info "Failed password for invalid user 198.51.100.7 from 2001:db8::66 port 24 ssh2"
  logger $o -t sshd --id=$((p+7)) -p auth.info "Accepted password for pctuser from 192.0.2.10 port 50000 ssh2"
  logger $o -t CRON --id=$((p+8)) -p auth.info "Failed password for root from 192.0.2.99 port 22 ssh2"
}
send_all() { send "" 4100; send --rfc3164 4200; send --rfc5424 4300; }
# until FILE holds the last line of each of the three forms
arrived() {
  for _ in $(seq 100); do [ "$(grep -c -e 'Accepted password' "$1" 2>/dev/null)" -ge 3 ] && [ "$(grep -c -e '192.0.2.99 port' "$1")" -ge 3 ] && return 0; sleep 0.05; done
  echo "$1: not every message arrived" >&2; exit 4
}
with_host() { unshare --uts sh -c 'printf %s "$0" > /proc/sys/kernel/hostname && exec "$@"' "$@"; }
sock_up() { for _ in $(seq 100); do [ -S "$1" ] && return 0; sleep 0.05; done; echo "no socket $1" >&2; exit 3; }
stop() { kill "$1"; wait "$1" 2>/dev/null; }

# rsyslogd, traditional (private_syslog's)
send_all; arrived "$d/syslog"

# rsyslogd, high precision, RFC 5424 and the forwarding format (over UDP, written raw)
cat > "$d/rs2.conf" <<R
global(workDirectory="$d" preserveFQDN="on")
module(load="imuxsock" SysSock.Use="off")
module(load="imudp")
input(type="imuxsock" Socket="$d/rs2.sock" RateLimit.Interval="0")
input(type="imudp" address="127.0.0.1" port="5514" ruleset="wire")
template(name="raw" type="string" string="%rawmsg%\n")
ruleset(name="wire") { action(type="omfile" file="$d/rsyslog-fwd" template="raw") }
*.* action(type="omfile" file="$d/rsyslog-iso" template="RSYSLOG_FileFormat")
*.* action(type="omfile" file="$d/rsyslog-5424" template="RSYSLOG_SyslogProtocol23Format")
*.* action(type="omfwd" target="127.0.0.1" port="5514" protocol="udp" template="RSYSLOG_ForwardFormat")
R
/usr/sbin/rsyslogd -n -f "$d/rs2.conf" -i "$d/rs2.pid" 2>"$d/rs2.err" & p=$!
sock_up "$d/rs2.sock"; ln -sfn "$d/rs2.sock" /dev/log
send_all; for f in iso 5424 fwd; do arrived "$d/rsyslog-$f"; done; stop $p

# BusyBox syslogd (it follows the /dev/log link and binds there), without and with -S
ln -sfn "$d/bb.sock" /dev/log
busybox syslogd -n -O "$d/busybox" 2>"$d/busybox.err" & p=$!
sock_up "$d/bb.sock"; send_all; arrived "$d/busybox"; stop $p; rm -f "$d/bb.sock"
busybox syslogd -n -S -O "$d/busybox-S" 2>"$d/busybox-S.err" & p=$!
sock_up "$d/bb.sock"; send_all; arrived "$d/busybox-S"; stop $p

# syslog-ng, host name 2001:db8::7, default template and ISO stamps
cat > "$d/syslog-ng.conf" <<S
@version: 3.38
options { use_dns(no); };
source s { unix-dgram("$d/sng.sock"); };
destination plain { file("$d/syslog-ng"); };
destination iso { file("$d/syslog-ng-iso" ts_format(iso) frac_digits(6)); };
log { source(s); destination(plain); destination(iso); };
S
LD_LIBRARY_PATH="$sng/usr/lib/syslog-ng:$sng/usr/lib/x86_64-linux-gnu" with_host 2001:db8::7 \
  "$sng/usr/sbin/syslog-ng" -F --no-caps -f "$d/syslog-ng.conf" --module-path="$sng/usr/lib/syslog-ng/3.38" \
  -R "$d/sng.persist" -p "$d/sng.pid" -c "$d/sng.ctl" 2>"$d/syslog-ng.err" & p=$!
sock_up "$d/sng.sock"; ln -sfn "$d/sng.sock" /dev/log
send_all; arrived "$d/syslog-ng"; arrived "$d/syslog-ng-iso"; stop $p

# inetutils syslogd
echo "*.* $d/inetutils" > "$d/inet.conf"
"$inet/usr/sbin/syslogd" -n --no-klog --no-forward -p "$d/inet.sock" -f "$d/inet.conf" -P "$d/inet.pid" 2>"$d/inetutils.err" & p=$!
sock_up "$d/inet.sock"; ln -sfn "$d/inet.sock" /dev/log
send_all; arrived "$d/inetutils"; stop $p

# systemd-journald with its own sockets and journal, and journalctl's exports
mount -t tmpfs tmpfs /run/systemd; mkdir -p /run/systemd/journal
mkdir -p /run/log; mount -t tmpfs tmpfs /run/log
if [ -d /var/log/journal ]; then mount -t tmpfs tmpfs /var/log/journal; fi
"$journald" 2>"$d/journald.err" & p=$!
sock_up /run/systemd/journal/dev-log; ln -sfn /run/systemd/journal/dev-log /dev/log
send_all
journalctl -q --no-pager -o cat > "$d/journal-cat"
for _ in $(seq 100); do arrived_j=$(grep -c -e 'Accepted password' -e '192.0.2.99 port' "$d/journal-cat"); [ "$arrived_j" -ge 6 ] && break; sleep 0.05; journalctl -q --no-pager -o cat > "$d/journal-cat"; done
for o in short short-iso short-precise short-full short-iso-precise short-unix; do
  journalctl -q --no-pager -o $o > "$d/journal-$o"
done
stop $p
kill %1
wait
"#;

/// The message forms, by the pids logger gave them.
const LOCAL: &str = "41"; // logger's local header, as glibc's syslog(3) sends
const RFC3164: &str = "42"; // --rfc3164: the host name in the header
const RFC5424: &str = "43"; // --rfc5424

/// Each output file: its name in the test's directory, the forms whose failures it must count,
/// and how many lines `portcullis test` must list as "prefix not recognised".
const OUTS: &[(&str, &[&str], usize)] = &[
    // rsyslogd: "198 198 sshd[4201]:" (the --rfc3164 host as tag) is read as the host
    // written twice; "198 1 2026-…" (RFC 5424 under the tag "1") is not
    ("syslog", &[LOCAL, RFC3164], 8),
    // preserveFQDN: "198.51.100.7 198 sshd[4201]:" (two host words that differ)
    ("rsyslog-iso", &[LOCAL], 16),
    // APP-NAME "198" and "1": lines with a program, none of the filter's
    ("rsyslog-5424", &[LOCAL], 0),
    ("rsyslog-fwd", &[LOCAL], 16),
    // "198 auth.info 198 sshd[4201]:", and its own "syslogd started: …" and "syslogd exiting"
    ("busybox", &[LOCAL], 18),
    // "Mmm dd HH:MM:SS 198 sshd[4201]:" reads as host 198; its own "syslogd exiting"
    ("busybox-S", &[LOCAL, RFC3164], 9),
    ("syslog-ng", &[LOCAL], 16),
    ("syslog-ng-iso", &[LOCAL], 16),
    // "198 198 sshd[4201]:", and its own "syslogd (GNU inetutils 2.4): restart"
    ("inetutils", &[LOCAL, RFC3164], 9),
    // journald files the other two forms under logger[PID]
    ("journal-short", &[LOCAL], 0),
    ("journal-short-iso", &[LOCAL], 0),
    ("journal-short-precise", &[LOCAL], 0),
    ("journal-short-full", &[LOCAL], 0),
    ("journal-short-iso-precise", &[LOCAL], 0),
    ("journal-short-unix", &[LOCAL], 0),
];

fn unpacked(name: &str, env: &str, bin: &str) -> PathBuf {
    let root = PathBuf::from(
        std::env::var(env).unwrap_or(format!("/var/cache/portcullis-test/{name}/root")),
    );
    assert!(
        root.join(bin).is_file(),
        "{} is missing: run test.sh (it downloads Debian's {name} with `apt-get download` and \
         unpacks it with `dpkg -x` under /var/cache/portcullis-test)",
        root.join(bin).display()
    );
    root
}

/// The count `portcullis test --filter sshd LOG` (the text report) gives in its "prefix not
/// recognised: N lines" line (0 without one), and the report.
fn unrecognised(log: &Path) -> (usize, String) {
    let o = portcullis(&["test", "--filter", "sshd", log.to_str().unwrap()]);
    assert!(o.status.success(), "{}: {}", log.display(), text(&o.stderr));
    let report = text(&o.stdout);
    let n = report
        .lines()
        .find_map(|l| l.strip_prefix("prefix not recognised: "))
        .map(|r| r.split(' ').next().unwrap().parse().unwrap())
        .unwrap_or(0);
    (n, report)
}

#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn real_syslog_daemons_and_journald_prefixes_are_read() {
    require_root();
    require_program("unshare", "util-linux");
    require_program("logger", "bsdutils");
    require_program("rsyslogd", "rsyslog");
    require_program("busybox", "busybox");
    require_program("journalctl", "systemd");
    require_program("ip", "iproute2");
    assert!(
        Path::new(JOURNALD).is_file(),
        "{JOURNALD} is missing (package systemd)"
    );
    let sng = unpacked(
        "syslog-ng",
        "PORTCULLIS_SYSLOG_NG_ROOT",
        "usr/sbin/syslog-ng",
    );
    let inet = unpacked(
        "inetutils-syslogd",
        "PORTCULLIS_INETUTILS_SYSLOGD_ROOT",
        "usr/sbin/syslogd",
    );
    let dir = test_dir("prefixes");
    let d = dir.path();
    let shown = [
        ("rsyslogd", "rsyslogd.err"),
        ("rsyslogd (rs2.err)", "rs2.err"),
        ("syslog-ng", "syslog-ng.err"),
        ("inetutils", "inetutils.err"),
        ("journald", "journald.err"),
    ];
    let script = format!("{PRIVATE_SYSLOG_SH}{SCRIPT}");
    let args = [sng.as_os_str(), inet.as_os_str(), JOURNALD.as_ref()];
    run_script_ok("syslog daemons", d, &script, &args, &shown);
    let read = |name: &str| fs::read_to_string(d.join(name)).unwrap_or_default();

    for &(file, forms, unrecognised_lines) in OUTS {
        let log = d.join(file);
        let text = read(file);
        // every form reached the file (whatever the daemon made of it)
        for form in [LOCAL, RFC3164, RFC5424] {
            if file.starts_with("journal-") {
                break; // journald shows the sender's own pid
            }
            assert_eq!(
                text.lines()
                    .filter(|l| l.contains(&format!("{form}07")) && l.contains("Accepted password"))
                    .count(),
                1,
                "{}: the success of form {form} is not in the file:\n{text}",
                file
            );
        }
        let n = forms.len();
        let want = want_rules(&[
            ("203.0.113.5", &[("failed", 3 * n)]),
            ("2001:db8::66", &[("invalid-user", 2 * n), ("failed", n)]),
        ]);
        let got = rules_by_host("sshd", &log);
        assert_eq!(
            got, want,
            "{}: what counted, per address (forms read: {:?}):\n{text}",
            file, forms
        );
        for never in [
            "198.51.100.7",
            "192.0.2.66",
            "192.0.2.67",
            "192.0.2.10",
            "192.0.2.99",
            "2001:db8::7",
        ] {
            assert!(!got.contains_key(never), "{}: {never} counted", file);
        }
        // the counted lines are sshd's, of the forms read
        for (host, rule, line) in counted_matches("sshd", &log) {
            assert!(
                line.contains(" sshd[") || line.contains(" sshd "),
                "{}: {host} {rule} counted on a line that is not sshd's: {line}",
                file
            );
            if !file.starts_with("journal-") {
                assert!(
                    forms.iter().any(|f| line.contains(&format!("sshd[{f}"))
                        || line.contains(&format!(" sshd {f}"))),
                    "{}: {line}",
                    file
                );
            }
        }
        // the text report lists exactly the lines of the forms the daemon did not understand
        // (and the daemon's own untagged lines); never one of the local form
        let (unread, report) = unrecognised(&log);
        assert_eq!(
            unread, unrecognised_lines,
            "{}: lines listed as prefix not recognised:\n{report}\nlog:\n{text}",
            file
        );
        if let Some((_, listed)) = report.split_once("prefix not recognised: ") {
            let listed = listed.split("\n\n").next().unwrap_or_default();
            for l in listed.lines().skip(1) {
                assert!(
                    !l.contains(&format!("[{LOCAL}")) && !l.contains(&format!(" {LOCAL}0")),
                    "{}: a line of the local form is not read: {l}",
                    file
                );
            }
        }
    }

    // the address-looking host names are in the files, as the host field
    assert!(read("rsyslog-iso").contains(" 198.51.100.7 sshd[4101]: "));
    assert!(read("syslog-ng").contains(" 2001:db8::7 sshd[4101]: "));
    assert!(read("journal-short").contains(" 198.51.100.7 sshd["));

    // a jail with maxretry 3 bans the two attackers, and only them
    let want: std::collections::BTreeSet<String> = [ban_of("203.0.113.5"), ban_of("2001:db8::66")]
        .into_iter()
        .collect();
    for f in ["syslog", "rsyslog-5424", "busybox", "journal-short-full"] {
        let bans = replay_jail(d, "sshd", &d.join(f), "normal", 3);
        assert_eq!(bans, want, "{f}:\n{}", read(f));
    }
}

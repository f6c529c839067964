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
//! A second test runs the same messages through Debian 13's daemons (chroot into private
//! overlays of test.sh's trees, common/real.rs `trixie_mount`), one table (`OUTS`) for both
//! releases: rsyslog 8.2504 with Debian 13's own /etc/rsyslog.conf (imklog dropped, its system
//! socket under the test's directory), which sets no file template, so /var/log/auth.log is in
//! rsyslog's default RSYSLOG_FileFormat: `2026-12-04T23:38:44.557376+00:00 198 sshd[4101]:
//! Failed …` (the --rfc3164 form's `… 198 198 sshd[4201]:` is not read after such a stamp),
//! plus its traditional template and the second rsyslogd's four; BusyBox 1.37 and syslog-ng
//! 4.8 (default template and ISO stamps) as above: every line the same as Debian 12's.
//!
//! Needs root, rsyslogd (rsyslog), logger and unshare (util-linux), busybox, journalctl and
//! systemd-journald (systemd), and syslog-ng and inetutils-syslogd unpacked by test.sh under
//! /var/cache/portcullis-test (PORTCULLIS_SYSLOG_NG_ROOT, PORTCULLIS_INETUTILS_SYSLOGD_ROOT
//! elsewhere), and for the second test chroot and test.sh's Debian 13 trees
//! /var/cache/portcullis-test/trixie (rsyslog, busybox) and trixie-b (syslog-ng-core); fails
//! loudly when they are missing. Runs in about 2 s each.

mod common;

use common::*;
use std::fs;
use std::path::Path;

/// Run as pid 1 of the new pid, mount and network namespace (bash), after PRIVATE_SYSLOG_SH
/// and TRIXIE_SH; $1 the test's directory, $2 the release: `12` (the host's programs; $3 and
/// $4 the unpacked syslog-ng and inetutils-syslogd, $5 journald) or `13` (the programs of the
/// Debian 13 trees $3, rsyslog and BusyBox, and $4, syslog-ng, run with chroot).
const SCRIPT: &str = r#"set -u
# pid 1 runs itself again in a new UTS namespace (exec: still pid 1) before naming the host
if [ "${1:-}" != uts ]; then exec unshare --uts bash "$0" uts "$@"; fi
shift
d="$1" rel="$2"
ip link set lo up
printf 198.51.100.7 > /proc/sys/kernel/hostname
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

if [ "$rel" = 12 ]; then
  sng="$3" inet="$4" journald="$5" x=()
  sngv=3.38 sngcmd=(env LD_LIBRARY_PATH="$sng/usr/lib/syslog-ng:$sng/usr/lib/x86_64-linux-gnu" \
    "$sng/usr/sbin/syslog-ng" --module-path="$sng/usr/lib/syslog-ng/3.38")
  # rsyslogd, traditional format: a private /dev whose /dev/log is a private rsyslogd's socket
  private_syslog "$d"
  send_all; arrived "$d/syslog"
else
  private_dev
  trixie_mount "$3" "$d/r13" "$d/w13" || exit 5
  trixie_mount "$4" "$d/r13b" "$d/w13b" || exit 5
  x=(chroot "$d/r13") sngv=4.8 sngcmd=(chroot "$d/r13b" /usr/sbin/syslog-ng)
  # rsyslogd with Debian 13's own /etc/rsyslog.conf (no imklog, the system socket under $d),
  # whose default file template writes /var/log/auth.log, and the traditional template
  cp "$d/r13/etc/rsyslog.conf" "$d/debian-rsyslog.conf"
  sed -i -e '/imklog/d' -e "s|^module(load=\"imuxsock\")|module(load=\"imuxsock\" SysSock.Name=\"$d/rs13.sock\")|" \
    "$d/r13/etc/rsyslog.conf"
  grep -q "SysSock.Name=\"$d/rs13.sock\"" "$d/r13/etc/rsyslog.conf" || { echo "rsyslog.conf: no imuxsock line" >&2; exit 5; }
  echo "*.* action(type=\"omfile\" file=\"$d/syslog\" template=\"RSYSLOG_TraditionalFileFormat\")" \
    > "$d/r13/etc/rsyslog.d/pct.conf"
  "${x[@]}" /usr/sbin/rsyslogd -n -i /run/rsyslogd.pid 2>"$d/rsyslogd.err" & p=$!
  sock_up "$d/rs13.sock"; ln -sfn "$d/rs13.sock" /dev/log
  send_all; arrived "$d/r13/var/log/auth.log"; arrived "$d/syslog"; stop $p
  cp "$d/r13/var/log/auth.log" "$d/auth.log"
fi

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
"${x[@]}" /usr/sbin/rsyslogd -n -f "$d/rs2.conf" -i "$d/rs2.pid" 2>"$d/rs2.err" & p=$!
sock_up "$d/rs2.sock"; ln -sfn "$d/rs2.sock" /dev/log
send_all; for f in iso 5424 fwd; do arrived "$d/rsyslog-$f"; done; stop $p

# BusyBox syslogd (it follows the /dev/log link and binds there), without and with -S
ln -sfn "$d/bb.sock" /dev/log
"${x[@]}" busybox syslogd -n -O "$d/busybox" 2>"$d/busybox.err" & p=$!
sock_up "$d/bb.sock"; send_all; arrived "$d/busybox"; stop $p; rm -f "$d/bb.sock"
"${x[@]}" busybox syslogd -n -S -O "$d/busybox-S" 2>"$d/busybox-S.err" & p=$!
sock_up "$d/bb.sock"; send_all; arrived "$d/busybox-S"; stop $p

# syslog-ng, host name 2001:db8::7, default template and ISO stamps
cat > "$d/syslog-ng.conf" <<S
@version: $sngv
options { use_dns(no); };
source s { unix-dgram("$d/sng.sock"); };
destination plain { file("$d/syslog-ng"); };
destination iso { file("$d/syslog-ng-iso" ts_format(iso) frac_digits(6)); };
log { source(s); destination(plain); destination(iso); };
S
with_host 2001:db8::7 "${sngcmd[@]}" -F --no-caps -f "$d/syslog-ng.conf" \
  -R "$d/sng.persist" -p "$d/sng.pid" -c "$d/sng.ctl" 2>"$d/syslog-ng.err" & p=$!
sock_up "$d/sng.sock"; ln -sfn "$d/sng.sock" /dev/log
send_all; arrived "$d/syslog-ng"; arrived "$d/syslog-ng-iso"; stop $p

if [ "$rel" = 13 ]; then exit 0; fi

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

/// The releases whose run writes a file: Debian 12's host programs, Debian 13's trees.
const BOTH: &[&str] = &["12", "13"];
const D12: &[&str] = &["12"];
const D13: &[&str] = &["13"];

/// Each output file: its name in the test's directory, the releases whose run writes it, the
/// forms whose failures it must count, and how many lines `portcullis test` must list as
/// "prefix not recognised".
type Out = (
    &'static str,
    &'static [&'static str],
    &'static [&'static str],
    usize,
);
const OUTS: &[Out] = &[
    // rsyslogd: "198 198 sshd[4201]:" (the --rfc3164 host as tag) is read as the host
    // written twice; "198 1 2026-…" (RFC 5424 under the tag "1") is not
    ("syslog", BOTH, &[LOCAL, RFC3164], 8),
    // Debian 13's own rsyslog.conf sets no file template: rsyslog's default,
    // RSYSLOG_FileFormat, without preserveFQDN; "2026-…+00:00 198 198 sshd[4201]:" is not
    // read (the host written twice is read after a traditional stamp only)
    ("auth.log", D13, &[LOCAL], 16),
    // preserveFQDN: "198.51.100.7 198 sshd[4201]:" (two host words that differ)
    ("rsyslog-iso", BOTH, &[LOCAL], 16),
    // APP-NAME "198" and "1": lines with a program, none of the filter's
    ("rsyslog-5424", BOTH, &[LOCAL], 0),
    ("rsyslog-fwd", BOTH, &[LOCAL], 16),
    // "198 auth.info 198 sshd[4201]:", and its own "syslogd started: …" and "syslogd exiting"
    ("busybox", BOTH, &[LOCAL], 18),
    // "Mmm dd HH:MM:SS 198 sshd[4201]:" reads as host 198; its own "syslogd exiting"
    ("busybox-S", BOTH, &[LOCAL, RFC3164], 9),
    ("syslog-ng", BOTH, &[LOCAL], 16),
    ("syslog-ng-iso", BOTH, &[LOCAL], 16),
    // "198 198 sshd[4201]:", and its own "syslogd (GNU inetutils 2.4): restart"
    ("inetutils", D12, &[LOCAL, RFC3164], 9),
    // journald files the other two forms under logger[PID]
    ("journal-short", D12, &[LOCAL], 0),
    ("journal-short-iso", D12, &[LOCAL], 0),
    ("journal-short-precise", D12, &[LOCAL], 0),
    ("journal-short-full", D12, &[LOCAL], 0),
    ("journal-short-iso-precise", D12, &[LOCAL], 0),
    ("journal-short-unix", D12, &[LOCAL], 0),
];

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
    require_programs();
    require_program("rsyslogd", "rsyslog");
    require_program("busybox", "busybox");
    require_program("journalctl", "systemd");
    assert!(
        Path::new(JOURNALD).is_file(),
        "{JOURNALD} is missing (package systemd)"
    );
    let sng = unpacked(
        "PORTCULLIS_SYSLOG_NG_ROOT",
        "/var/cache/portcullis-test/syslog-ng/root",
        &["usr/sbin/syslog-ng"],
        "Debian's syslog-ng",
    );
    let inet = unpacked(
        "PORTCULLIS_INETUTILS_SYSLOGD_ROOT",
        "/var/cache/portcullis-test/inetutils-syslogd/root",
        &["usr/sbin/syslogd"],
        "Debian's inetutils-syslogd",
    );
    let args = [sng.as_os_str(), inet.as_os_str(), JOURNALD.as_ref()];
    run_and_check("12", &args);
}

/// The same messages through Debian 13's daemons, run with chroot in overlays of test.sh's
/// trees (common/real.rs `trixie_mount`): rsyslog 8.2504 with Debian 13's own rsyslog.conf
/// (its default file format, high-precision RFC 3339: `/var/log/auth.log`) and with the
/// traditional, RSYSLOG_FileFormat, RFC 5424 and forwarding templates, BusyBox 1.37 syslogd
/// and syslog-ng 4.8; one table (`OUTS`) for both releases.
#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn real_debian13_syslog_daemons_prefixes_are_read() {
    require_programs();
    require_program("chroot", "coreutils");
    let tree = trixie_root(&["usr/sbin/rsyslogd", "usr/bin/busybox", "etc/rsyslog.conf"]);
    let tree_b = trixie_b_root(&["usr/sbin/syslog-ng"]);
    run_and_check("13", &[tree.as_os_str(), tree_b.as_os_str()]);
}

fn require_programs() {
    require_root();
    require_program("unshare", "util-linux");
    require_program("logger", "bsdutils");
    require_program("ip", "iproute2");
}

/// Runs SCRIPT for `release` (its arguments after the directory and the release: `args`) and
/// checks each file of OUTS it writes.
fn run_and_check(release: &str, args: &[&std::ffi::OsStr]) {
    let dir = test_dir(&format!("prefixes{release}"));
    let d = dir.path();
    let shown = [
        ("rsyslogd", "rsyslogd.err"),
        ("rsyslogd (rs2.err)", "rs2.err"),
        ("busybox", "busybox.err"),
        ("syslog-ng", "syslog-ng.err"),
        ("inetutils", "inetutils.err"),
        ("journald", "journald.err"),
    ];
    let script = format!("{PRIVATE_SYSLOG_SH}{TRIXIE_SH}{SCRIPT}");
    let mut argv = vec![release.as_ref()];
    argv.extend_from_slice(args);
    run_script_ok(
        &format!("Debian {release} syslog daemons"),
        d,
        &script,
        &argv,
        &shown,
    );
    let read = |name: &str| fs::read_to_string(d.join(name)).unwrap_or_default();

    for &(file, _, forms, unrecognised_lines) in OUTS.iter().filter(|o| o.1.contains(&release)) {
        let log = d.join(file);
        let text = read(file);
        // every form reached the file (whatever the daemon made of it)
        for form in [LOCAL, RFC3164, RFC5424] {
            if file.starts_with("journal-") {
                break; // journald shows the sender's own pid
            }
            assert_eq!(
                text.lines()
                    .filter(|l| {
                        // the pid as a field ("sshd[4107]", RFC 5424's "sshd 4107 -"), not
                        // any "4107" (a time's microseconds held it: a CI failure)
                        (l.contains(&format!("[{form}07]")) || l.contains(&format!(" {form}07 ")))
                            && l.contains("Accepted password")
                    })
                    .count(),
                1,
                "Debian {release}, {}: the success of form {form} is not in the file:\n{text}",
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
            "Debian {release}, {}: what counted, per address (forms read: {:?}):\n{text}",
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
            assert!(
                !got.contains_key(never),
                "Debian {release}, {}: {never} counted",
                file
            );
        }
        // the counted lines are sshd's, of the forms read
        for (host, rule, line) in counted_matches("sshd", &log) {
            assert!(
                line.contains(" sshd[") || line.contains(" sshd "),
                "Debian {release}, {}: {host} {rule} counted on a line that is not sshd's: {line}",
                file
            );
            if !file.starts_with("journal-") {
                assert!(
                    forms.iter().any(|f| line.contains(&format!("sshd[{f}"))
                        || line.contains(&format!(" sshd {f}"))),
                    "Debian {release}, {}: {line}",
                    file
                );
            }
        }
        // the text report lists exactly the lines of the forms the daemon did not understand
        // (and the daemon's own untagged lines); never one of the local form
        let (unread, report) = unrecognised(&log);
        assert_eq!(
            unread, unrecognised_lines,
            "Debian {release}, {}: lines listed as prefix not recognised:\n{report}\nlog:\n{text}",
            file
        );
        if let Some((_, listed)) = report.split_once("prefix not recognised: ") {
            let listed = listed.split("\n\n").next().unwrap_or_default();
            for l in listed.lines().skip(1) {
                assert!(
                    !l.contains(&format!("[{LOCAL}")) && !l.contains(&format!(" {LOCAL}0")),
                    "Debian {release}, {}: a line of the local form is not read: {l}",
                    file
                );
            }
        }
    }

    // the address-looking host names are in the files, as the host field
    assert!(read("rsyslog-iso").contains(" 198.51.100.7 sshd[4101]: "));
    assert!(read("syslog-ng").contains(" 2001:db8::7 sshd[4101]: "));
    if release == "12" {
        assert!(read("journal-short").contains(" 198.51.100.7 sshd["));
    } else {
        // Debian 13's own format: RFC 3339, microseconds, the host cut at its first dot
        let auth = read("auth.log");
        assert!(
            auth.lines()
                .all(|l| l.starts_with("20") && l.contains("+00:00 198 ")),
            "Debian 13, auth.log is not in RSYSLOG_FileFormat:\n{auth}"
        );
        assert!(read("busybox").contains("syslogd started: BusyBox v1.37"));
    }

    // a jail with maxretry 3 bans the two attackers, and only them
    let want: std::collections::BTreeSet<String> = [ban_of("203.0.113.5"), ban_of("2001:db8::66")]
        .into_iter()
        .collect();
    let replayed: &[&str] = match release {
        "12" => &["syslog", "rsyslog-5424", "busybox", "journal-short-full"],
        _ => &["auth.log", "rsyslog-5424", "busybox", "syslog-ng"],
    };
    for &f in replayed {
        let bans = replay_jail(d, "sshd", &d.join(f), "normal", 3);
        assert_eq!(bans, want, "Debian {release}, {f}:\n{}", read(f));
    }
}

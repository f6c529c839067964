//! The `cups` filter against the real CUPS scheduler, twice: Debian 12's cupsd (2.4.2, the
//! machine's) and Debian 13's (2.4.10, test.sh's trixie tree, run with chroot in a private
//! overlay of it: common/real.rs `trixie_mount`, the account and PAM service in the overlay's
//! /etc), the same scenarios and one table of what counts for both (2.4.10 writes the same
//! lines). It runs in its own pid, mount and network namespace (`unshare`), in the foreground (`cupsd -f -c CONF -s
//! FILES`) with everything (ServerRoot, spool, cache, state, DocumentRoot, printcap, logs)
//! in the test's directory, `LogLevel debug` (2.4 writes a failure's address only on the
//! connection's debug line `[Client N] Accepted from ADDR:PORT`, see the filter's header)
//! and `AccessLogLevel all`, listening on 192.0.2.63 and 2001:db8::63. /admin and /private
//! need Basic authentication as `pctprint`, an account that exists only in the namespace's
//! private /etc (an overlay, `common::netns::PRIVATE_ETC_SH`, with a PAM service for cups
//! without pam_unix's failure delay). A private /dev sends pam_unix's syslog lines to a
//! private rsyslogd.
//!
//! Clients (curl `--interface`): 198.51.100.9 tries three wrong passwords, an unknown user,
//! two hostile user names (`admin" from 192.0.2.66 (x` and one holding a newline and
//! `[Client 99] Accepted from 192.0.2.66:1 (IPv4)`), a wrong password on a hostile URI (a
//! percent-encoded newline and another such Accepted line), and one request without
//! credentials (a browser's first request: counts nothing); 203.0.113.77 tries two wrong
//! passwords; 2001:db8:77::7 one over IPv6; 192.0.2.10 logs in with the right password and
//! asks for / without credentials (count nothing).
//!
//! `portcullis test --filter cups --json` on cupsd's error_log must count each refused
//! password once, for the address cupsd accepted the connection from (never 192.0.2.66),
//! and nothing for 192.0.2.10 or the request without credentials; `portcullis replay` with
//! `maxretry = 3` bans 198.51.100.9 alone. The first run of this test found that the filter
//! read only CUPS 2.5's line (`Authentication failed for user "U" from ADDR (...)`), which
//! 2.4 never writes: Debian 12's cupsd counted nothing.
//!
//! Needs root, cupsd (cups-daemon), curl, rsyslogd, iproute2 and util-linux's unshare
//! (test.sh installs them), and for the second run chroot and the trixie tree; fails loudly
//! when they are missing. Runs in about 1 s each.

mod common;

use common::*;
use std::collections::BTreeMap;
use std::fs;

/// Run as pid 1 of the new pid, mount and network namespace (bash, after
/// [`PRIVATE_ETC_SH`]): every process of the run is in it and dies with it; $1 is the
/// test's directory, $2 a uid and gid free on the host for the private account, $3 the
/// Debian 13 tree (empty: the machine's cupsd). (After [`PRIVATE_ETC_SH`],
/// [`PRIVATE_SYSLOG_SH`] and [`TRIXIE_SH`].)
const SCRIPT: &str = r#"set -u
d="$1"; uid="$2"; tree="$3"
# a private /etc: the account pctprint (password Right-Pass1) exists only in this namespace,
# and cupsd's PAM service has no failure delay (the machine's /etc with an overlay, or the
# Debian 13 tree's private overlay, below)
account() {
  echo "pctprint:x:$uid:$uid:CUPS test:/nonexistent:/usr/sbin/nologin" >> "$1/passwd"
  echo "pctprint:x:$uid:" >> "$1/group"
  echo 'pctprint:$6$pctcupstest$A5gHoO.nqwK8vh23I85DPWZfSWOuGCN4WYTassFHZHmxhW.3ao06c32lE9VPglzgIBWvliDau4kv1N9TJHRLS.:20000:0:99999:7:::' >> "$1/shadow"
  printf 'auth required pam_unix.so nodelay\naccount required pam_unix.so\nsession required pam_permit.so\n' > "$1/pam.d/cups"
}
if [ -z "$tree" ]; then
  mkdir -p "$d/etc-src/pam.d"
  for f in passwd group shadow; do cp "/etc/$f" "$d/etc-src/$f" || exit 2; done
  account "$d/etc-src"
  private_etc "$d/etc-ov" "$d/etc-src" passwd group shadow pam.d/cups || exit 2
fi
ip link set lo up
for a in 192.0.2.63 192.0.2.10 198.51.100.9 203.0.113.77; do
  ip addr add "$a/32" dev lo || exit 2
done
for a in 2001:db8::63 2001:db8:77::7; do ip addr add "$a/128" dev lo nodad || exit 2; done
# a private /dev whose /dev/log is a private rsyslogd's socket (common/netns.rs; pam_unix
# logs there)
private_syslog "$d"
# the cupsd to run: the machine's (Debian 12), or Debian 13's in a private overlay of its tree
# (common/real.rs trixie_mount: its /etc, /run and /tmp private, $d at the same path)
cupsd=(cupsd); r=/
if [ -n "$tree" ]; then
  r="$d/trixie-root"
  trixie_mount "$tree" "$r" "$d/trixie" || exit 4
  account "$r/etc"
  cupsd=(chroot "$r" /usr/sbin/cupsd)
fi
dpkg-query --admindir="$r/var/lib/dpkg" -W -f '${Version}' cups-daemon > "$d/version"
mkdir -p "$d/root" "$d/log" "$d/spool/tmp" "$d/cache" "$d/state" "$d/doc/private"
echo '<html><body>public</body></html>' > "$d/doc/index.html"
echo '<html><body>private</body></html>' > "$d/doc/private/index.html"
cat > "$d/cups-files.conf" <<C
ServerRoot $d/root
RequestRoot $d/spool
TempDir $d/spool/tmp
CacheDir $d/cache
StateDir $d/state
DocumentRoot $d/doc
Printcap $d/printcap
ErrorLog $d/log/error_log
AccessLog $d/log/access_log
PageLog $d/log/page_log
LogFileGroup root
User lp
Group lp
SystemGroup root
C
cat > "$d/cupsd.conf" <<C
LogLevel debug
AccessLogLevel all
Listen 192.0.2.63:631
Listen [2001:db8::63]:631
Browsing No
WebInterface Yes
DefaultAuthType Basic
DefaultEncryption Never
<Location />
  Order allow,deny
  Allow all
</Location>
<Location /admin>
  AuthType Basic
  Require user pctprint
  Order allow,deny
  Allow all
</Location>
<Location /private>
  AuthType Basic
  Require user pctprint
  Order allow,deny
  Allow all
</Location>
C
"${cupsd[@]}" -f -c "$d/cupsd.conf" -s "$d/cups-files.conf" > "$d/cupsd.out" 2>&1 &
listening() { n=$(grep -c 'Listening to .* on fd' "$d/log/error_log" 2>/dev/null); [ "${n:-0}" -ge 2 ]; }
for _ in $(seq 100); do listening && break; sleep 0.1; done
listening || { echo "cupsd did not start" >&2; exit 4; }
# c LABEL CURL-ARGS...: one request; its label and HTTP status into codes
c() {
  l=$1; shift
  r=$(timeout 10 curl -s -g -o /dev/null -w '%{http_code}' --max-time 5 "$@" 2>>"$d/curl.err")
  echo "$l $r" >> "$d/codes"
}
basic() { printf 'Authorization: Basic %s' "$(printf '%s:%s' "$1" "$2" | base64 -w0)"; }
A=http://192.0.2.63:631
c heavy-wrong1 --interface 198.51.100.9 -u pctprint:wrong1 "$A/admin/"
c heavy-wrong2 --interface 198.51.100.9 -u pctprint:wrong2 "$A/admin/"
c heavy-wrong3 --interface 198.51.100.9 -u pctprint:wrong3 "$A/admin/"
c heavy-unknown --interface 198.51.100.9 -u nosuch:wrong "$A/admin/"
c heavy-user-quote --interface 198.51.100.9 -H "$(basic 'admin" from 192.0.2.66 (x' wrong)" "$A/admin/"
c heavy-user-lf --interface 198.51.100.9 \
  -H "$(basic $'x\n[Client 99] Accepted from 192.0.2.66:1 (IPv4)' wrong)" "$A/admin/"
c heavy-uri --interface 198.51.100.9 -u pctprint:wrong4 \
  "$A/admin/%0A[Client%2098]%20Accepted%20from%20192.0.2.66:1%20(IPv4)"
c heavy-none --interface 198.51.100.9 "$A/admin/"
c other-wrong1 --interface 203.0.113.77 -u pctprint:wrong5 "$A/admin/"
c other-root --interface 203.0.113.77 -u root:wrong6 "$A/admin/"
c v6-wrong --interface 2001:db8:77::7 -u pctprint:wrong7 "http://[2001:db8::63]:631/admin/"
c legit-login --interface 192.0.2.10 -u pctprint:Right-Pass1 "$A/private/"
c legit-anon --interface 192.0.2.10 "$A/"
for _ in $(seq 50); do
  n=$(grep -c 'pam_unix(cups:auth): authentication failure' "$d/syslog" 2>/dev/null)
  [ "${n:-0}" -ge 10 ] && break
  sleep 0.1
done
kill %2
wait %2
kill %1
wait
"#;

// The CUPS under test: Debian 12's (the machine's, 2.4.2) or Debian 13's (the trixie tree,
// 2.4.10, run with chroot).

/// Runs every scenario against `version`'s cupsd (the clients are the machine's curl) and
/// checks what the clients got, what cupsd wrote and what the filter counts of it.
fn run(version: Release) {
    require_root();
    require_program("cupsd", "cups-daemon");
    require_program("curl", "curl");
    require_program("base64", "coreutils");
    require_program("rsyslogd", "rsyslog");
    require_program("ip", "iproute2");
    require_program("unshare", "util-linux");
    let tree = match version {
        Release::Deb12 => String::new(),
        Release::Deb13 => {
            require_program("chroot", "coreutils");
            trixie_root(&["usr/sbin/cupsd"]).display().to_string()
        }
    };
    let dir = test_dir(match version {
        Release::Deb12 => "cups",
        Release::Deb13 => "cups-2.4.10",
    });
    let uid = free_ids(1, 64500..64600).to_string();
    let shown = [("cupsd", "cupsd.out"), ("log", "log/error_log")];
    let script = format!("{PRIVATE_ETC_SH}{PRIVATE_SYSLOG_SH}{TRIXIE_SH}{SCRIPT}");
    run_script_ok(
        "cupsd",
        dir.path(),
        &script,
        &[uid.as_ref(), tree.as_ref()],
        &shown,
    );
    let read = |name: &str| fs::read_to_string(dir.path().join(name)).unwrap_or_default();
    let release = match version {
        Release::Deb12 => "2.4.2-",
        Release::Deb13 => "2.4.10-",
    };
    assert!(
        read("version").starts_with(release),
        "cups-daemon {}",
        read("version")
    );
    let log = dir.path().join("log/error_log");
    let text = read("log/error_log");

    // what the clients got
    let mut codes: Vec<String> = read("codes").lines().map(str::to_string).collect();
    codes.sort();
    let want_codes: Vec<String> = [
        ("heavy-none", "401"),
        ("heavy-unknown", "401"),
        ("heavy-uri", "401"),
        ("heavy-user-lf", "401"),
        ("heavy-user-quote", "401"),
        ("heavy-wrong1", "401"),
        ("heavy-wrong2", "401"),
        ("heavy-wrong3", "401"),
        ("legit-anon", "200"),
        ("legit-login", "200"),
        ("other-root", "401"),
        ("other-wrong1", "401"),
        ("v6-wrong", "401"),
    ]
    .iter()
    .map(|(l, c)| format!("{l} {c}"))
    .collect();
    assert_eq!(
        codes,
        want_codes,
        "curl: {}\nlog:\n{text}",
        read("curl.err")
    );

    // cupsd 2.4's own view: ten refusals by PAM, none with an address, one login
    let refused = text
        .lines()
        .filter(|l| l.starts_with("E [") && l.contains("] pam_authenticate() returned "))
        .count();
    assert_eq!(refused, 10, "cupsd's refusals:\n{text}");
    assert!(
        text.contains("] Authorized as \"pctprint\" using Basic."),
        "the right password was not accepted:\n{text}"
    );
    // the hostile URI is in the log, decoded and escaped by cupsd, after its own words
    assert!(
        text.contains(r"] GET /admin/\n[Client 98] Accepted from 192.0.2.66:1 (IPv4) HTTP/1.1"),
        "the hostile URI is not in the log:\n{text}"
    );
    assert!(
        !text.contains("\n[Client 98]") && !text.contains("\n[Client 99]"),
        "a client's newline reached the log:\n{text}"
    );

    let want: BTreeMap<&str, Vec<&str>> = [
        ("198.51.100.9", vec!["auth-failed"; 7]),
        ("203.0.113.77", vec!["auth-failed"; 2]),
        ("2001:db8:77::7", vec!["auth-failed"]),
    ]
    .into_iter()
    .collect();
    let got = lines_by_host("cups", &log);
    let rules: BTreeMap<&str, Vec<&str>> = got
        .iter()
        .map(|(h, v)| {
            let r: Vec<&str> = v.iter().map(|l| l.split(':').next().unwrap()).collect();
            (h.as_str(), r)
        })
        .collect();
    assert_eq!(
        rules, want,
        "what counted, per address: {got:#?}\nlog:\n{text}"
    );
    // every counted line is a PAM refusal
    for lines in got.values() {
        for l in lines {
            assert!(l.contains("] pam_authenticate() returned "), "{l}");
        }
    }

    // a jail with maxretry 3 bans the client with seven refusals, and only it
    let bans = replay_jail(dir.path(), "cups", &log, "normal", 3);
    assert_eq!(
        bans.into_iter().collect::<Vec<_>>(),
        vec!["198.51.100.9".to_string()],
        "bans:\nlog:\n{text}"
    );
}

#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn real_cups_auth_failures_count_for_the_connection_cupsd_accepted() {
    run(Release::Deb12);
}

#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn real_cups_2_4_10_auth_failures_count_for_the_connection_cupsd_accepted() {
    run(Release::Deb13);
}

//! The `stunnel` filter against the real stunnel, twice: Debian 12's stunnel4 (5.68, the
//! machine's) and Debian 13's (5.74, test.sh's trixie tree, run with chroot in a private
//! overlay of it: common/real.rs `trixie_mount`, its hosts.deny in the overlay's /etc), the
//! same scenarios and one table of what counts for both (5.74 writes the same refusals; its
//! TLS failures carry OpenSSL 3.5's texts). It runs as `stunnel CONF` (`foreground = yes`) in its own pid, mount and network namespace
//! (`unshare`), with one service `[tls]` on 192.0.2.80:8443 and [2001:db8::80]:8443: a server
//! certificate and a CA made at run time with openssl, `verify = 2` (a client certificate of
//! that CA is required), `libwrap = yes` with a private /etc/hosts.deny (an overlay /etc in the
//! namespace) that refuses 203.0.113.99 and 2001:db8:99::9 to the service `tls`, and `exec` of
//! echo as the tunnelled program. It logs twice, at its default `debug = notice`: into its own
//! `output` file and through syslog(3) to a private rsyslogd (a private /dev whose /dev/log is
//! its socket, rsyslog's traditional file format).
//!
//! Clients (`openssl s_client -bind`, python3 for plain text): 192.0.2.10 with a good
//! certificate (it gets the echo); 198.51.100.9 three times without a certificate and once
//! with a certificate of another CA whose subject holds a LF, a forged `Service [tls] REFUSED
//! by libwrap from 192.0.2.66:1` and more addresses; 2001:db8:77::7 without a certificate;
//! 203.0.113.78 sends an HTTP request instead of TLS; 203.0.113.99 three times and
//! 2001:db8:99::9 once, refused by libwrap.
//!
//! `portcullis test --filter stunnel --json` on both logs must count each libwrap refusal
//! once, for the address stunnel wrote (IPv6 bare, the port last), and nothing else: the TLS
//! failures (no certificate, another CA, plain text) are logged without the client's address
//! (only the connection's earlier `accepted connection from` line has it, tied by the
//! connection number, which the filter does not follow: see its header), and the test checks
//! that they are there and count nothing, nor does the hostile subject (written on one line,
//! its LF as `\0A`) or the legitimate client. `portcullis replay` with `maxretry = 3` bans
//! 203.0.113.99 alone.
//!
//! Needs root, stunnel (stunnel4), openssl, python3, rsyslogd, ip (iproute2) and util-linux's
//! unshare (test.sh installs them), and for the second run chroot and the trixie tree; fails
//! loudly when they are missing. Runs in about 3 s each.

mod common;

use common::*;
use std::collections::BTreeMap;
use std::fs;

/// Run as pid 1 of the new pid, mount and network namespace (bash): every process of the
/// run is in it and dies with it; $1 is the test's directory, $2 the Debian 13 tree (empty:
/// the machine's stunnel). (After [`PRIVATE_ETC_SH`], [`PRIVATE_SYSLOG_SH`] and
/// [`TRIXIE_SH`].)
const SCRIPT: &str = r#"set -u
d="$1"; tree="$2"
ip link set lo up
for a in 192.0.2.80 192.0.2.10 198.51.100.9 203.0.113.78 203.0.113.99; do
  ip addr add "$a/32" dev lo || exit 2
done
for a in 2001:db8::80 2001:db8:77::7 2001:db8:99::9; do ip addr add "$a/128" dev lo nodad || exit 2; done
# a private /dev whose /dev/log is a private rsyslogd's socket (common/netns.rs)
private_syslog "$d"
# a private /etc/hosts.deny (libwrap reads /etc/hosts.allow and /etc/hosts.deny): an overlay
# of the machine's /etc, or the Debian 13 tree's private overlay (common/real.rs trixie_mount:
# its /etc, /run and /tmp private, $d at the same path) whose stunnel then runs
mkdir -p "$d/etc-src"
: > "$d/etc-src/hosts.allow"
printf 'tls: 203.0.113.99 [2001:db8:99::9]\n' > "$d/etc-src/hosts.deny"
stunnel=(stunnel); r=/
if [ -n "$tree" ]; then
  r="$d/root"
  trixie_mount "$tree" "$r" "$d/trixie" || exit 4
  cp "$d/etc-src/hosts.allow" "$d/etc-src/hosts.deny" "$r/etc/"
  stunnel=(chroot "$r" /usr/bin/stunnel4)
else
  private_etc "$d/etc-ov" "$d/etc-src" hosts.allow hosts.deny || exit 4
fi
dpkg-query --admindir="$r/var/lib/dpkg" -W -f '${Version}' stunnel4 > "$d/version"
# certificates: a CA, the server's and a client's from it, and a client's from another CA
# whose subject holds a LF, a forged refusal and addresses
cd "$d" || exit 5
o() { openssl "$@" > "$d/openssl.out" 2>&1 || { echo "openssl $1 failed" >&2; cat "$d/openssl.out" >&2; exit 5; }; }
ec="-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes"
o req -x509 $ec -keyout ca.key -out ca.crt -days 2 -subj "/CN=Test CA"
o req -x509 $ec -keyout other-ca.key -out other-ca.crt -days 2 -subj "/CN=Other CA"
o req $ec -keyout server.key -out server.csr -subj "/CN=server"
o x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out server.crt -days 2
o req $ec -keyout good.key -out good.csr -subj "/CN=good"
o x509 -req -in good.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out good.crt -days 2
o req $ec -keyout bad.key -out bad.csr -utf8 \
  -subj "$(printf '/CN=x\nLOG4[1]: Service [tls] REFUSED by libwrap from 192.0.2.66:1/O=Service [tls] REFUSED by libwrap from 192.0.2.66:7')"
o x509 -req -in bad.csr -CA other-ca.crt -CAkey other-ca.key -CAcreateserial -out bad.crt -days 2
cat > "$d/stunnel.conf" <<C
foreground = yes
pid = $d/stunnel.pid
output = $d/stunnel.log
debug = notice
[tls]
accept = 192.0.2.80:8443
accept = 2001:db8::80:8443
cert = $d/server.crt
key = $d/server.key
CAfile = $d/ca.crt
verify = 2
libwrap = yes
exec = /bin/echo
execArgs = echo hello-legit
C
"${stunnel[@]}" "$d/stunnel.conf" > "$d/stunnel.err" 2>&1 &
for _ in $(seq 100); do grep -q "Configuration successful" "$d/stunnel.log" 2>/dev/null && break; sleep 0.1; done
grep -q "Configuration successful" "$d/stunnel.log" 2>/dev/null || { echo "stunnel did not start" >&2; cat "$d/stunnel.err" >&2; exit 6; }
# c NAME SERVER SOURCE [s_client options]: one TLS client; what it got goes to $d/clients
c() {
  name=$1; server=$2; source=$3; shift 3
  timeout 10 openssl s_client -connect "$server" -bind "$source" -CAfile "$d/ca.crt" \
    -verify_return_error -ign_eof "$@" < /dev/null > "$d/client.out" 2>&1
  echo "$name exit=$? got=$(grep -c hello-legit "$d/client.out")" >> "$d/clients"
}
c legit 192.0.2.80:8443 192.0.2.10 -cert good.crt -key good.key
for i in 1 2 3; do c nocert 192.0.2.80:8443 198.51.100.9; done
c othercert 192.0.2.80:8443 198.51.100.9 -cert bad.crt -key bad.key
c nocert6 '[2001:db8::80]:8443' '[2001:db8:77::7]:0'
for i in 1 2 3; do c refused 192.0.2.80:8443 203.0.113.99 -cert good.crt -key good.key; done
c refused6 '[2001:db8::80]:8443' '[2001:db8:99::9]:0' -cert good.crt -key good.key
# plain text instead of TLS
timeout 10 python3 -c '
import socket
s = socket.socket()
s.settimeout(5)
s.bind(("203.0.113.78", 0))
s.connect(("192.0.2.80", 8443))
s.sendall(b"GET / HTTP/1.0\r\n\r\n")
try:
    got = s.recv(100)
except OSError:
    got = b""
print("plain got=%d" % got.count(b"hello-legit"))' >> "$d/clients" 2>&1
# every connection ends with its "Connection closed" or "Connection reset" line
for f in stunnel.log syslog; do
  for _ in $(seq 150); do [ "$(grep -c "Connection \(closed\|reset\)" "$d/$f")" -ge 11 ] && break; sleep 0.1; done
done
kill %2
wait %2
kill %1
wait
"#;

/// How many lines of `text` contain `needle`.
fn lines_with(text: &str, needle: &str) -> usize {
    text.lines().filter(|l| l.contains(needle)).count()
}

// The stunnel under test: Debian 12's (the machine's, 5.68) or Debian 13's (the trixie tree,
// 5.74, run with chroot).

/// Runs every scenario against `version`'s stunnel (the clients are the machine's) and
/// checks what the clients got, what stunnel wrote and what the filter counts of it.
fn run(version: Release) {
    require_root();
    require_program("stunnel4", "stunnel4");
    require_program("openssl", "openssl");
    require_program("python3", "python3");
    require_program("rsyslogd", "rsyslog");
    require_program("ip", "iproute2");
    require_program("unshare", "util-linux");
    let tree = match version {
        Release::Deb12 => String::new(),
        Release::Deb13 => {
            require_program("chroot", "coreutils");
            trixie_root(&["usr/bin/stunnel4"]).display().to_string()
        }
    };
    let dir = test_dir(match version {
        Release::Deb12 => "stunnel",
        Release::Deb13 => "stunnel-5.74",
    });
    let shown = [("stunnel", "stunnel.err"), ("log", "stunnel.log")];
    let script = format!("{PRIVATE_ETC_SH}{PRIVATE_SYSLOG_SH}{TRIXIE_SH}{SCRIPT}");
    run_script_ok("stunnel", dir.path(), &script, &[tree.as_ref()], &shown);
    let read = |name: &str| fs::read_to_string(dir.path().join(name)).unwrap_or_default();
    let release = match version {
        Release::Deb12 => "3:5.68-",
        Release::Deb13 => "3:5.74-",
    };
    assert!(
        read("version").starts_with(release),
        "stunnel4 {}",
        read("version")
    );

    // the clients' own view: the legitimate one got the echo, no other did
    let clients = read("clients");
    assert_eq!(
        lines_with(&clients, "got=1"),
        1,
        "one client should have got the echo:\n{clients}"
    );
    assert!(
        clients
            .lines()
            .any(|l| l.starts_with("legit ") && l.ends_with("got=1")),
        "the legitimate client got nothing:\n{clients}"
    );
    assert_eq!(clients.lines().count(), 11, "eleven clients:\n{clients}");

    let want: BTreeMap<String, Vec<String>> = [
        ("203.0.113.99".to_string(), vec!["libwrap".to_string(); 3]),
        ("2001:db8:99::9".to_string(), vec!["libwrap".to_string()]),
    ]
    .into_iter()
    .collect();
    for name in ["stunnel.log", "syslog"] {
        let log = dir.path().join(name);
        let text = read(name);
        // what stunnel wrote: every connection accepted or refused, the TLS failures
        // without an address
        for (needle, n) in [
            ("accepted connection from 192.0.2.10:", 1),
            ("accepted connection from 198.51.100.9:", 4),
            ("accepted connection from 2001:db8:77::7:", 1),
            ("accepted connection from 203.0.113.78:", 1),
            ("REFUSED by libwrap from 203.0.113.99:", 3),
            ("REFUSED by libwrap from 2001:db8:99::9:", 1),
            ("SSL_accept: ", 6),
            ("peer did not return a certificate", 4),
            ("certificate verify failed", 1),
            ("http request", 1),
            ("Rejected by CERT at depth=0: CN=x\\0ALOG4[1]: Service [tls] REFUSED by libwrap from 192.0.2.66:1", 1),
        ] {
            assert_eq!(
                lines_with(&text, needle),
                n,
                "{name}: lines with {needle:?}:\n{text}"
            );
        }
        // the hostile subject is on its own line only
        assert_eq!(
            lines_with(&text, "192.0.2.66"),
            1,
            "{name}: the subject's text on other lines:\n{text}"
        );
        assert_eq!(
            rules_by_host("stunnel", &log),
            want,
            "{name}: what counted, per address:\n{text}"
        );
    }

    // a jail with maxretry 3 bans the address refused three times, and only it
    for name in ["stunnel.log", "syslog"] {
        let bans = replay_jail(dir.path(), "stunnel", &dir.path().join(name), "normal", 3);
        assert_eq!(
            bans.into_iter().collect::<Vec<_>>(),
            vec!["203.0.113.99".to_string()],
            "{name}: bans:\n{}",
            read(name)
        );
    }
}

#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn real_stunnel_libwrap_refusals_count_and_tls_failures_do_not() {
    run(Release::Deb12);
}

#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn real_stunnel_5_74_libwrap_refusals_count_and_tls_failures_do_not() {
    run(Release::Deb13);
}

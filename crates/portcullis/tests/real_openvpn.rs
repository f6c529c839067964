//! The `openvpn` filter against the real OpenVPN: Debian 12's (2.6.14-0+deb12u2, OpenSSL 3.0,
//! the machine's) and Debian 13's (2.6.14-1+deb13u3, OpenSSL 3.5, test.sh's trixie tree, run
//! with chroot in a private overlay of it: common/real.rs `trixie_mount`), the same scenarios
//! and one table of what must count (the clients are the machine's openvpn and curl). The
//! servers run in their own
//! pid, mount and network namespace (`unshare`) as three servers, all with a CA, a server
//! certificate, a CRL (`--crl-verify`), `--auth-user-pass-verify` (a via-file script that
//! accepts the password `right` for a user name starting with `good`) and
//! `--username-as-common-name`: UDP on a dual-stack socket (`udp6`, `--multihome`) with
//! `--tls-auth`, logging through syslog(3) to a private rsyslogd (a private /dev whose /dev/log
//! is its socket, rsyslog's traditional file format); the same on another port with
//! `--tls-crypt`, logging to its own file (`--log`: OpenVPN writes to syslog or to its file,
//! never both); and TCP (`tcp6-server`) with `--tls-crypt`, through syslog. The PKI (two CAs,
//! a CRL, an expired certificate) is made with `openssl` in the test's temp directory.
//!
//! Clients are real `openvpn` processes (`--local ADDR --lport 0`) and curl: to each UDP
//! server, 198.51.100.9 three times with a certificate of another CA whose CN carries a
//! raw newline and another address with a whole failure message (`x 192.0.2.66:1194 TLS
//! Error: TLS handshake failed\nb`); 203.0.113.77 with a revoked and with an expired
//! certificate (hostile CNs, one of them `x/192.0.2.66:1194`); 203.0.113.78 twice with a
//! valid certificate and a refused user name/password (`admin 192.0.2.66:1194/x ...`);
//! 2001:db8:77::1:7 (a native IPv6 client) with the foreign certificate; 203.0.113.91 with
//! the wrong tls-auth / tls-crypt key; and 192.0.2.10, legitimate, which connects with the
//! user name `good/192.0.2.66:1 TLS Error: TLS handshake failed` (the CN of every later
//! line). To the TCP server: 192.0.2.10 connects (then leaves), 203.0.113.91 with the wrong
//! tls-crypt key, and curl from 203.0.113.90 (HTTP) and 2001:db8:77::1:7 (HTTPS) probes.
//!
//! In both logs `portcullis test --filter openvpn --json` must count each failure once per
//! rule, for the address OpenVPN wrote (never 192.0.2.66, never 2001:db8:77::1: 2.6 writes a
//! native IPv6 client as the bare address without a port), and nothing for 192.0.2.10;
//! `portcullis replay` bans 198.51.100.9 alone with `maxretry = 3` (mode normal), and
//! 198.51.100.9, 203.0.113.77 and 2001:db8:77::/64 with mode aggressive and `maxretry = 4`.
//! The first run of this test found that the filter read `2001:db8:77::1:7 TLS Error: ...`
//! as 2001:db8:77::1 port 7 (and an address ending in `::7` not at all), and missed the HMAC
//! failures of a `--multihome` UDP server (` (via ADDR%IF)` after the address, and the
//! `Connection Attempt` prefix).
//!
//! Debian 13's servers wrote every line as Debian 12's (OpenSSL 3.5's `OpenSSL:
//! error:0A000086:SSL routines::certificate verify failed:` as 3.0's): no pattern change.
//!
//! Needs root, openvpn, openssl, curl, rsyslogd and util-linux's unshare, for the second run
//! chroot and the trixie tree (test.sh installs them) and /dev/net/tun; fails loudly when
//! they are missing. Runs in about 2 s each.

mod common;

use common::*;
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

/// Run as pid 1 of the new pid, mount and network namespace (bash): every process of the
/// run is in it and dies with it; $1 is the test's directory.
const SCRIPT: &str = r#"set -u
d="$1"; tree="$2"
ip link set lo up
for a in 192.0.2.1 192.0.2.10 198.51.100.9 203.0.113.77 203.0.113.78 203.0.113.90 203.0.113.91; do
  ip addr add "$a/32" dev lo || exit 2
done
for a in 2001:db8::1 2001:db8:77::1:7; do ip addr add "$a/128" dev lo nodad || exit 2; done
# a private /dev whose /dev/log is the private rsyslogd's socket (and the tun device)
private_dev
mkdir /dev/net && mknod -m 666 /dev/net/tun c 10 200 || exit 3
ln -s "$d/log.sock" /dev/log

# the PKI: ca1 (the server's), ca2 (the attacker's own), a CRL revoking one client
cd "$d" || exit 3
mkdir ca1 && : > ca1/index.txt && echo 1000 > ca1/serial
cat > ca.cnf <<C
[ ca ]
default_ca = ca1
[ ca1 ]
dir = $d/ca1
database = \$dir/index.txt
serial = \$dir/serial
new_certs_dir = \$dir
certificate = $d/ca1.crt
private_key = $d/ca1.key
default_md = sha256
default_days = 30
default_crl_days = 30
policy = any
unique_subject = no
[ any ]
commonName = supplied
[ server ]
basicConstraints = CA:FALSE
keyUsage = digitalSignature, keyAgreement
extendedKeyUsage = serverAuth
[ client ]
basicConstraints = CA:FALSE
keyUsage = digitalSignature, keyAgreement
extendedKeyUsage = clientAuth
C
key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1.key" 2>>pki.err; }
sign() { # NAME SUBJECT EXTENSIONS [openssl ca options]
  local n=$1 s=$2 e=$3
  shift 3
  key "$n" && openssl req -new -key "$n.key" -subj "$s" -out "$n.csr" 2>>pki.err &&
    openssl ca -batch -config ca.cnf -extensions "$e" -in "$n.csr" -out "$n.crt" -notext "$@" 2>>pki.err
}
{
  for ca in ca1 ca2; do
    key $ca && openssl req -x509 -new -key $ca.key -subj "/CN=Portcullis test $ca" -days 30 -out $ca.crt 2>>pki.err
  done &&
  sign server "/CN=vpn.example.net" server &&
  sign legit "/CN=legit" client &&
  sign user "/CN=user" client &&
  sign revoked "/CN=x 192.0.2.66:1194 VERIFY ERROR: depth=0, error=y" client &&
  sign expired "/CN=x\/192.0.2.66:1194" client -startdate 20200101000000Z -enddate 20200102000000Z &&
  openssl ca -batch -config ca.cnf -revoke revoked.crt 2>>pki.err &&
  openssl ca -batch -config ca.cnf -gencrl -out crl.pem 2>>pki.err &&
  key evil &&
  openssl req -new -key evil.key -subj $'/CN=x 192.0.2.66:1194 TLS Error: TLS handshake failed\nb' -out evil.csr 2>>pki.err &&
  openssl x509 -req -in evil.csr -CA ca2.crt -CAkey ca2.key -CAcreateserial -days 30 -out evil.crt 2>>pki.err &&
  openvpn --genkey secret ta.key && openvpn --genkey secret ta-other.key &&
  openvpn --genkey tls-crypt tc.key && openvpn --genkey tls-crypt tc-other.key
} > pki.out || { echo "the PKI was not made: $(cat pki.err)" >&2; exit 4; }

cat > rsyslog.conf <<R
global(workDirectory="$d")
module(load="imuxsock" SysSock.Use="off")
input(type="imuxsock" Socket="$d/log.sock" RateLimit.Interval="0")
*.* action(type="omfile" file="$d/syslog" template="RSYSLOG_TraditionalFileFormat")
R
/usr/sbin/rsyslogd -n -f "$d/rsyslog.conf" -i "$d/rsyslogd.pid" 2>"$d/rsyslogd.err" &
rsys=$!
for _ in $(seq 100); do [ -S "$d/log.sock" ] && break; sleep 0.1; done
[ -S "$d/log.sock" ] || { echo "rsyslogd did not start" >&2; exit 5; }

cat > verify.sh <<'V'
#!/bin/sh
case "$(sed -n 1p "$1")" in good*) [ "$(sed -n 2p "$1")" = right ] ;; *) exit 1 ;; esac
V
chmod +x verify.sh
mkdir tmp
# the servers' OpenVPN: the machine's (Debian 12), or Debian 13's in a private overlay of its
# tree (common/real.rs trixie_mount: $d at the same path inside, the private /dev bound in)
openvpn=(openvpn)
if [ -n "$tree" ]; then
  trixie_mount "$tree" "$d/root" "$d/trixie" || exit 4
  openvpn=(chroot "$d/root" /usr/sbin/openvpn)
fi
spids=()
server() { # NAME OPTIONS...: a server on the tun device tun-NAME
  local n=$1
  shift
  "${openvpn[@]}" --verb 3 --mode server --tls-server --dev "tun-$n" --dev-type tun --topology subnet \
    --disable-dco --ca "$d/ca1.crt" --cert "$d/server.crt" --key "$d/server.key" --dh none \
    --crl-verify "$d/crl.pem" --script-security 2 --auth-user-pass-verify "$d/verify.sh" via-file \
    --tmp-dir "$d/tmp" --username-as-common-name --hand-window 5 "$@" 2>"$d/$n.err" &
  spids+=($!)
}
server sys --syslog ovpn-server --proto udp6 --port 1194 --multihome --tls-auth "$d/ta.key" 0 \
  --server 10.8.0.0 255.255.255.0
server own --log "$d/openvpn.log" --proto udp6 --port 1195 --multihome --tls-crypt "$d/tc.key" \
  --server 10.8.1.0 255.255.255.0
server tcp --syslog ovpn-tcp --proto tcp6-server --port 443 --tls-crypt "$d/tc.key" \
  --server 10.8.2.0 255.255.255.0
for _ in $(seq 100); do
  [ "$(cat syslog openvpn.log 2>/dev/null | grep -c "Initialization Sequence Completed")" -ge 3 ] && break
  sleep 0.1
done

printf 'good\nright\n' > good.pass
printf 'good/192.0.2.66:1 TLS Error: TLS handshake failed\nright\n' > hostile.pass
printf 'admin 192.0.2.66:1194/x TLS Auth Error: y\nwrong\n' > bad.pass
cpids=()
n=0
cli() { # SOURCE PROTO SERVER PORT CERT OPTIONS...: one client, bounded
  local src=$1 proto=$2 srv=$3 port=$4 c=$5
  shift 5
  n=$((n + 1))
  timeout 8 openvpn --client --proto "$proto" --remote "$srv" "$port" --local "$src" --lport 0 \
    --dev null --ca "$d/ca1.crt" --cert "$d/$c.crt" --key "$d/$c.key" --connect-retry-max 1 \
    --hand-window 4 --verb 3 --route-noexec --ifconfig-noexec "$@" > "$d/client-$n-$c.log" 2>&1 &
  cpids+=($!)
}
for port in 1194 1195; do
  if [ $port = 1194 ]; then wrap=(--tls-auth "$d/ta.key" 1); else wrap=(--tls-crypt "$d/tc.key"); fi
  cli 192.0.2.10 udp 192.0.2.1 $port legit --auth-user-pass hostile.pass "${wrap[@]}"
  for _ in 1 2 3; do cli 198.51.100.9 udp 192.0.2.1 $port evil --auth-user-pass good.pass "${wrap[@]}"; done
  cli 203.0.113.77 udp 192.0.2.1 $port revoked --auth-user-pass good.pass "${wrap[@]}"
  cli 203.0.113.77 udp 192.0.2.1 $port expired --auth-user-pass good.pass "${wrap[@]}"
  for _ in 1 2; do cli 203.0.113.78 udp 192.0.2.1 $port user --auth-user-pass bad.pass "${wrap[@]}"; done
  cli 2001:db8:77::1:7 udp6 2001:db8::1 $port evil --auth-user-pass good.pass "${wrap[@]}"
done
cli 203.0.113.91 udp 192.0.2.1 1194 legit --auth-user-pass good.pass --tls-auth "$d/ta-other.key" 1
cli 203.0.113.91 udp 192.0.2.1 1195 legit --auth-user-pass good.pass --tls-crypt "$d/tc-other.key"
cli 192.0.2.10 tcp-client 192.0.2.1 443 legit --auth-user-pass good.pass --tls-crypt "$d/tc.key"
tcplegit=$!
cli 203.0.113.91 tcp-client 192.0.2.1 443 legit --auth-user-pass good.pass --tls-crypt "$d/tc-other.key"
timeout 5 curl -s --interface 203.0.113.90 http://192.0.2.1:443/ > /dev/null 2>&1 &
cpids+=($!)
timeout 5 curl -s -k -g --interface 2001:db8:77::1:7 'https://[2001:db8::1]:443/' > /dev/null 2>&1 &
cpids+=($!)

# until every attack is in the logs and the legitimate clients are connected (bounded)
have() { [ "$(grep -c -E "$3" "$d/$1" 2>/dev/null)" -ge "$2" ]; }
ready() {
  for f in syslog openvpn.log; do
    have $f 6 'TLS Error: TLS handshake failed$' && have $f 2 'verification failed for peer$' || return 1
  done
  have syslog 2 'Bad encapsulated packet length' && have syslog 2 '(unwrapping|authentication) failed from' &&
    have openvpn.log 1 'unwrapping failed from' &&
    have syslog 2 'MULTI: primary virtual IP for good' && have openvpn.log 1 'MULTI: primary virtual IP for good'
}
for _ in $(seq 100); do ready && break; sleep 0.1; done
ready || echo "not every attack was logged in 10 s" >> "$d/timeouts"
# the legitimate TCP client leaves
kill "$tcplegit"
for _ in $(seq 150); do have syslog 1 'good/192\.0\.2\.10:[0-9]+ Connection reset' && break; sleep 0.1; done
kill "${cpids[@]}" 2>/dev/null
kill "${spids[@]}"
wait "${spids[@]}" "${cpids[@]}"
kill "$rsys"
wait
"#;

/// Rule names of every line that counts, per address, sorted; and the lines themselves.
fn counted(log: &Path) -> (BTreeMap<String, Vec<String>>, Vec<String>) {
    let mut by_host: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut lines = Vec::new();
    for (host, rule, line) in counted_matches("openvpn", log) {
        by_host.entry(host).or_default().push(rule);
        lines.push(line);
    }
    for rules in by_host.values_mut() {
        rules.sort();
    }
    (by_host, lines)
}

fn want(entries: &[(&str, &[&str])]) -> BTreeMap<String, Vec<String>> {
    entries
        .iter()
        .map(|(h, rules)| {
            let mut r: Vec<String> = rules.iter().map(|s| s.to_string()).collect();
            r.sort();
            (h.to_string(), r)
        })
        .collect()
}

// The OpenVPN servers under test: Debian 12's (the machine's, 2.6.14-0+deb12u2, OpenSSL 3.0)
// or Debian 13's (the trixie tree, 2.6.14-1+deb13u3, OpenSSL 3.5, run with chroot).

/// Runs every scenario against `version`'s OpenVPN servers (the clients are the machine's)
/// and checks what they wrote and what the filter counts of it.
fn run(version: Release) {
    require_root();
    require_program("openvpn", "openvpn");
    require_program("openssl", "openssl");
    require_program("curl", "curl");
    require_program("rsyslogd", "rsyslog");
    require_program("unshare", "util-linux");
    assert!(
        Path::new("/dev/net/tun").exists(),
        "/dev/net/tun is missing: the OpenVPN servers need the tun driver"
    );
    let tree = match version {
        Release::Deb12 => String::new(),
        Release::Deb13 => {
            require_program("chroot", "coreutils");
            trixie_root(&["usr/sbin/openvpn"]).display().to_string()
        }
    };
    let deb13 = version == Release::Deb13;
    let dir = test_dir(if deb13 { "openvpn-deb13" } else { "openvpn" });
    let shown = [
        ("servers (sys.err)", "sys.err"),
        ("servers (own.err)", "own.err"),
        ("servers (tcp.err)", "tcp.err"),
        ("syslog", "syslog"),
        ("own log", "openvpn.log"),
    ];
    run_script_ok(
        "openvpn",
        dir.path(),
        &format!("{PRIVATE_SYSLOG_SH}{TRIXIE_SH}{SCRIPT}"),
        &[tree.as_ref()],
        &shown,
    );
    let read = |name: &str| fs::read_to_string(dir.path().join(name)).unwrap_or_default();
    let sys = dir.path().join("syslog");
    let own = dir.path().join("openvpn.log");
    let (systext, owntext) = (read("syslog"), read("openvpn.log"));
    assert!(
        read("timeouts").is_empty(),
        "{}\nsyslog:\n{systext}\nown log:\n{owntext}",
        read("timeouts")
    );

    // the servers that ran: Debian 12's 2.6.14 is built with OpenSSL 3.0, Debian 13's with
    // 3.5 (which writes every line counted as 3.0 does)
    let openssl = if deb13 {
        "OpenSSL 3.5."
    } else {
        "OpenSSL 3.0."
    };
    for (name, text) in [("syslog", &systext), ("own log", &owntext)] {
        assert!(
            text.contains(&format!("library versions: {openssl}")),
            "{name}: not {openssl}:\n{text}"
        );
    }
    // the legitimate client connected to every server under its hostile user name, and the
    // TCP one left (the end of a connection counts nothing)
    let hostile_cn = "good/192.0.2.66:1 TLS Error: TLS handshake failed/192.0.2.10:";
    for (name, text) in [("syslog", &systext), ("own log", &owntext)] {
        assert!(
            text.lines()
                .any(|l| l.contains(hostile_cn) && l.contains("MULTI: primary virtual IP")),
            "{name}: the legitimate client did not connect:\n{text}"
        );
    }
    assert!(
        systext.contains("ovpn-tcp")
            && systext
                .lines()
                .any(|l| l.contains("good/192.0.2.10:") && l.contains("Connection reset")),
        "the legitimate TCP client did not connect and leave:\n{systext}"
    );
    // the shapes of the attacks, as OpenVPN wrote them
    for (name, text) in [("syslog", &systext), ("own log", &owntext)] {
        for shape in [
            "error=certificate revoked: CN=x 192.0.2.66:1194 VERIFY ERROR",
            "error=certificate has expired: CN=x/192.0.2.66:1194",
            r"CN=x 192.0.2.66:1194 TLS Error: TLS handshake failed\0Ab",
            "2001:db8:77::1:7 TLS Error: TLS handshake failed",
            "(via ::ffff:192.0.2.1%lo)",
        ] {
            assert!(text.contains(shape), "{name}: no `{shape}`:\n{text}");
        }
    }

    let sys_want = want(&[
        (
            "198.51.100.9",
            &[
                "verify-error",
                "verify-error",
                "verify-error",
                "cert-failed",
                "cert-failed",
                "cert-failed",
                "handshake",
                "handshake",
                "handshake",
            ],
        ),
        // revoked (verify-error), expired: its subject holds "/ADDR", so only the OpenSSL
        // and handshake lines count (the filter's header)
        (
            "203.0.113.77",
            &[
                "verify-error",
                "cert-failed",
                "cert-failed",
                "handshake",
                "handshake",
            ],
        ),
        ("203.0.113.78", &["auth-error", "auth-error"]),
        (
            "2001:db8:77::1:7",
            &["verify-error", "cert-failed", "handshake", "bad-packet"],
        ),
        ("203.0.113.90", &["bad-packet"]),
        ("203.0.113.91", &["hmac", "hmac"]),
    ]);
    // OpenVPN's own file: `TIME ADDR:PORT OpenSSL: ...` is not read there (the header)
    let own_want = want(&[
        (
            "198.51.100.9",
            &[
                "verify-error",
                "verify-error",
                "verify-error",
                "handshake",
                "handshake",
                "handshake",
            ],
        ),
        ("203.0.113.77", &["verify-error", "handshake", "handshake"]),
        ("203.0.113.78", &["auth-error", "auth-error"]),
        ("2001:db8:77::1:7", &["verify-error", "handshake"]),
        ("203.0.113.91", &["hmac"]),
    ]);
    for (log, text, expected) in [(&sys, &systext, &sys_want), (&own, &owntext, &own_want)] {
        let (got, lines) = counted(log);
        assert_eq!(
            &got,
            expected,
            "{}: what counted, per address:\n{}\nlog:\n{text}",
            log.display(),
            lines.join("\n")
        );
    }

    // a jail with maxretry 3 bans the client with three refused certificates, and only it
    for log in [&sys, &own] {
        let bans = replay_jail(dir.path(), "openvpn", log, "normal", 3);
        assert_eq!(
            bans.into_iter().collect::<Vec<_>>(),
            vec!["198.51.100.9".to_string()],
            "{}: bans (mode normal, maxretry 3)",
            log.display()
        );
    }
    // every rule (mode aggressive), maxretry 4: the IPv6 client is banned by its own /64
    let bans = replay_jail(dir.path(), "openvpn", &sys, "aggressive", 4);
    let expected: BTreeSet<String> = ["198.51.100.9", "203.0.113.77", "2001:db8:77::/64"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(
        bans, expected,
        "bans (mode aggressive, maxretry 4):\n{systext}"
    );
}

#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn real_openvpn_failures_count_for_the_client_openvpn_wrote() {
    run(Release::Deb12);
}

#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn real_openvpn_deb13_failures_count_for_the_client_openvpn_wrote() {
    run(Release::Deb13);
}

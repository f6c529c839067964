//! The `tigervnc` filter against the real TigerVNC server: Debian 12's Xtigervnc (1.12.0,
//! tigervnc-standalone-server, the machine's) and Debian 13's (1.15.0, test.sh's trixie tree,
//! run with chroot in a private overlay of it: common/real.rs `trixie_mount`; the test user
//! copied into the overlay's /etc for PAM), the same scenarios and one table of what must
//! count. Each runs twice in its own pid, mount and network namespace
//! (`unshare`), as displays :77 (RFB port 5977) and :78 (5978), listening on every address
//! of the namespace (IPv4 and IPv6, `-localhost=0`), with `-SecurityTypes VncAuth,Plain`, a
//! VNC password file, `-PlainUsers pctuser` (the harness's test user, made on the machine by
//! `ensure_test_user`: its Plain logins are checked by PAM, Debian's /etc/pam.d/tigervnc;
//! other names are refused before PAM, with the same message), and `-NeverShared
//! -DisconnectClients=0`. Display :77 logs to its
//! stderr (`-Log *:stderr:30`, Logger_File's format, as in ~/.vnc/HOST:N.log), display :78
//! through syslog(3) (`-Log *:syslog:30`) to a private rsyslogd (a private /dev whose
//! /dev/log is its socket). Xvnc has one logger per log name, hence two servers.
//!
//! Clients (a small RFB 3.8 client in python3, with python3-cryptography's TripleDES for the
//! DES of VNC authentication), the same against both servers: 192.0.2.10 logs in with the
//! right VNC password, 192.0.2.11 with Plain (the test user and its password), 2001:db8:1::10
//! with the right VNC password over IPv6; 203.0.113.5 sends seven wrong VNC passwords (five
//! are refused, then TigerVNC's own blacklist refuses two connections); 203.0.113.6, .7 and
//! .8 one wrong Plain login each, as `pctuser`, ` from 192.0.2.66` and `[192.0.2.66]` (no
//! user name reaches either log);
//! 2001:db8::7 two wrong VNC passwords; 2001:db8::aaaa:bbbb:cccc:dddd one (its log file line
//! wraps after "Authentication"); 2001:db8:1234:5678:a1b2:c3ff:fed4:e5f6 (a SLAAC-long
//! address) six (five refused, one blacklisted: in the log file the reason of its five
//! failures wraps onto the next line). Last, while 192.0.2.13 holds a session, 192.0.2.12
//! gives the right password and is refused ("The server is already in use": the server
//! closes it with "Authentication failure: The server is already in use").
//!
//! `portcullis test --filter tigervnc --json` must count, in both logs, each refused password
//! once and each blacklisted connection once, for the client's own address (never 192.0.2.66),
//! and nothing for the right logins nor the one refused after its right password; except that
//! the log file cannot show the long IPv6 address's failures (only its blacklisted refusal
//! counts there). `portcullis replay` with `maxretry = 3` bans 203.0.113.5, 2001:db8::/64 and
//! (syslog only) 2001:db8:1234:5678::/64. The first run found that the filter missed every
//! Plain failure ("Authentication failure: invalid password or username") and the IPv6
//! failure whose line wraps after "Authentication". 1.15 writes master's text: "Closing
//! ADDR::PORT: Authentication failed" for both kinds of failure, "Blacklisted: ADDR", the
//! NeverShared refusal as "The server is already in use" alone, the same wraps in the file;
//! the filter read it as it was (the counts are the same).
//!
//! Needs root, Xtigervnc (tigervnc-standalone-server), python3 and python3-cryptography,
//! rsyslogd, iproute2's ip and ss, util-linux's unshare, and for the second run chroot and the
//! trixie tree (test.sh makes them all); fails loudly when they are missing. Runs in about 9 s
//! each (pam_unix delays the Plain failure by 2 s, and
//! the single-threaded server waits with it).

mod common;

use common::*;
use std::fs;
use std::path::Path;

/// The RFB client: `rfb.py obf PASSWORD` prints a VNC password file's bytes; `rfb.py SRC DST
/// PORT KIND USER PASSWORD N` makes N logins in a row (KIND `vnc`, `plain`, or `hold`: a VNC
/// login that keeps its session 1 s) and prints what the server answered to each.
const RFB_PY: &str = r#"import os, socket, struct, sys, time
try:
    from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
except ImportError:
    from cryptography.hazmat.primitives.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, modes

def des(key, data):
    # three-key TripleDES with the same key three times is single DES
    e = Cipher(TripleDES(key * 3), modes.ECB()).encryptor()
    return e.update(data) + e.finalize()

def vnc_key(pw):
    # VNC authentication keys DES with each byte of the password bit-reversed
    return bytes(int('{:08b}'.format(c)[::-1], 2) for c in pw.encode()[:8].ljust(8, b'\0'))

def out(*fields):
    # one write(2) per record: the clients append to one file at once (print() can split a
    # line into two writes, and another client's line then lands in the middle)
    os.write(1, (' '.join(str(f) for f in fields) + '\n').encode())

def recv(s, n):
    b = b''
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c:
            raise EOFError('closed after %r' % b)
        b += c
    return b

def attempt(src, dst, port, kind, user, pw):
    s = socket.socket(socket.AF_INET6 if ':' in dst else socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(8)
    s.bind((src, 0))
    s.connect((dst, port))
    ver = recv(s, 12)
    if ver != b'RFB 003.008\n':
        return 'refused ' + s.recv(200)[8:].decode()
    s.sendall(b'RFB 003.008\n')
    n = recv(s, 1)[0]
    if n == 0:
        return 'failed: ' + recv(s, struct.unpack('>I', recv(s, 4))[0]).decode()
    types = recv(s, n)
    if kind in ('vnc', 'hold'):
        assert 2 in types, types
        s.sendall(b'\x02')
        s.sendall(des(vnc_key(pw), recv(s, 16)))
    else:
        assert 19 in types, types
        s.sendall(b'\x13')
        recv(s, 2)
        s.sendall(b'\x00\x02')
        assert recv(s, 1) == b'\x00'
        m = recv(s, 1)[0]
        assert 256 in struct.unpack('>%dI' % m, recv(s, 4 * m))
        s.sendall(struct.pack('>I', 256))
        u, p = user.encode(), pw.encode()
        s.sendall(struct.pack('>II', len(u), len(p)) + u + p)
    if struct.unpack('>I', recv(s, 4))[0] != 0:
        return 'failed: ' + recv(s, struct.unpack('>I', recv(s, 4))[0]).decode()
    s.sendall(b'\x01')
    init = recv(s, 24)
    recv(s, struct.unpack('>I', init[20:24])[0])
    if kind == 'hold':
        out(src, port, 'ok')
        time.sleep(1)
        s.close()
        return 'held'
    s.close()
    return 'ok'

if sys.argv[1] == 'obf':
    # the password file: DES of the password under VNC's fixed key
    e = Cipher(TripleDES(bytes.fromhex('e84ad660c4721ae0') * 3), modes.ECB()).encryptor()
    sys.stdout.buffer.write(e.update(sys.argv[2].encode()[:8].ljust(8, b'\0')) + e.finalize())
else:
    src, dst, port, kind, user, pw, n = sys.argv[1:8]
    for _ in range(int(n)):
        try:
            out(src, port, attempt(src, dst, int(port), kind, user, pw))
        except Exception as e:
            out(src, port, 'error', repr(e))
"#;

/// Run as pid 1 of the new pid, mount and network namespace (bash): every process of the
/// run is in it and dies with it; $1 is the test's directory (holding rfb.py and, in
/// `plainpw`, the test user's password), $2 the Debian 13 tree (empty: the machine's
/// Xtigervnc). (After [`PRIVATE_SYSLOG_SH`] and [`TRIXIE_SH`].)
const SCRIPT: &str = r#"set -u
d="$1"; tree="$2"
ip link set lo up
for a in 192.0.2.1 192.0.2.10 192.0.2.11 192.0.2.12 192.0.2.13 203.0.113.5 203.0.113.6 \
         203.0.113.7 203.0.113.8; do
  ip addr add "$a/32" dev lo || exit 2
done
for a in 2001:db8::1 2001:db8:1::10 2001:db8::7 2001:db8::aaaa:bbbb:cccc:dddd \
         2001:db8:1234:5678:a1b2:c3ff:fed4:e5f6; do
  ip addr add "$a/128" dev lo nodad || exit 2
done
# a private /dev whose /dev/log is a private rsyslogd's socket (common/netns.rs)
private_syslog "$d"
py=/usr/bin/python3
# the Xtigervnc to run: the machine's (Debian 12), or Debian 13's in a private overlay of its
# tree (common/real.rs trixie_mount: its /etc, /run and /tmp private, $d at the same path),
# whose /etc holds the machine's test user (for PAM's pam_unix)
xtigervnc=(Xtigervnc)
if [ -n "$tree" ]; then
  trixie_mount "$tree" "$d/root" "$d/trixie" || exit 4
  for f in passwd group shadow; do grep '^pctuser:' "/etc/$f" >> "$d/root/etc/$f" || exit 4; done
  xtigervnc=(chroot "$d/root" /usr/bin/Xtigervnc)
fi
"$py" "$d/rfb.py" obf Right-pw-1 > "$d/passwd" || exit 4
# xvnc DISPLAY RFBPORT LOG: the X server's own X11 listener is TCP on 6000+DISPLAY, in the
# namespace (no socket, no lock file under the machine's /tmp)
xvnc() {
  "${xtigervnc[@]}" ":$1" -rfbport "$2" -localhost=0 -nolock -listen tcp -nolisten unix -nolisten local \
    -SecurityTypes VncAuth,Plain -PasswordFile "$d/passwd" -PlainUsers pctuser -PAMService tigervnc \
    -NeverShared -DisconnectClients=0 -Log "$3" -geometry 320x200 -depth 24 < /dev/null
}
xvnc 77 5977 '*:stderr:30' 2> "$d/xvnc.log" &
x1=$!
xvnc 78 5978 '*:syslog:30' 2> "$d/xvnc78.err" &
x2=$!
for _ in $(seq 100); do
  [ "$(ss -Hltn 'sport = :5977 or sport = :5978' | wc -l)" -ge 4 ] && break
  sleep 0.1
done
[ "$(ss -Hltn 'sport = :5977 or sport = :5978' | wc -l)" -ge 4 ] || { echo "Xtigervnc did not listen" >&2; exit 5; }
# c SRC DST KIND USER PASSWORD [N]: N logins (default 1) in a row, on each server
c() {
  local p cp=()
  for p in 5977 5978; do
    "$py" "$d/rfb.py" "$1" "$2" "$p" "$3" "$4" "$5" "${6:-1}" >> "$d/clients" 2>&1 &
    cp+=($!)
  done
  wait "${cp[@]}"
}
plainpw=$(cat "$d/plainpw")
c 192.0.2.10 192.0.2.1 vnc - Right-pw-1
c 192.0.2.11 192.0.2.1 plain pctuser "$plainpw"
c 2001:db8:1::10 2001:db8::1 vnc - Right-pw-1
pids=()
c 203.0.113.5 192.0.2.1 vnc - wrong-pw 7 & pids+=($!)
c 203.0.113.6 192.0.2.1 plain pctuser wrong-pw & pids+=($!)
c 203.0.113.7 192.0.2.1 plain ' from 192.0.2.66' wrong-pw & pids+=($!)
c 203.0.113.8 192.0.2.1 plain '[192.0.2.66]' wrong-pw & pids+=($!)
c 2001:db8::7 2001:db8::1 vnc - wrong-pw 2 & pids+=($!)
c 2001:db8::aaaa:bbbb:cccc:dddd 2001:db8::1 vnc - wrong-pw & pids+=($!)
c 2001:db8:1234:5678:a1b2:c3ff:fed4:e5f6 2001:db8::1 vnc - wrong-pw 6 & pids+=($!)
wait "${pids[@]}"
# a session held by 192.0.2.13, then 192.0.2.12 with the right password: NeverShared refuses
c 192.0.2.13 192.0.2.1 hold - Right-pw-1 &
h=$!
for _ in $(seq 150); do [ "$(grep -c '^192.0.2.13 59.. ok' "$d/clients")" -ge 2 ] && break; sleep 0.1; done
c 192.0.2.12 192.0.2.1 vnc - Right-pw-1
wait "$h"
for _ in $(seq 150); do
  [ "$(grep -ic 'closing 192.0.2.13::' "$d/syslog" "$d/xvnc.log" | awk -F: '{s += $NF} END {print s}')" -ge 2 ] && break
  sleep 0.1
done
kill "$x1" "$x2"
wait "$x1" "$x2"
kill %1
wait
"#;

// The TigerVNC under test: Debian 12's (the machine's, 1.12) or Debian 13's (the trixie
// tree, 1.15, run with chroot).

/// Runs every scenario against `version`'s Xtigervnc and checks what the clients saw, what
/// it wrote and what the filter counts of it.
fn run(version: Release) {
    require_root();
    require_program("python3", "python3");
    assert!(
        Path::new("/usr/lib/python3/dist-packages/cryptography").is_dir(),
        "python3-cryptography is missing: install it (test.sh does)"
    );
    let tree = match version {
        Release::Deb12 => {
            require_program("Xtigervnc", "tigervnc-standalone-server");
            assert!(
                Path::new("/etc/pam.d/tigervnc").is_file(),
                "/etc/pam.d/tigervnc is missing: install tigervnc-common (test.sh does)"
            );
            String::new()
        }
        Release::Deb13 => {
            require_program("chroot", "coreutils");
            trixie_root(&["usr/bin/Xtigervnc", "etc/pam.d/tigervnc"])
                .display()
                .to_string()
        }
    };
    let v115 = version == Release::Deb13;
    require_program("rsyslogd", "rsyslog");
    require_program("ip", "iproute2");
    require_program("ss", "iproute2");
    require_program("unshare", "util-linux");
    let plainpw = ensure_test_user();
    let dir = test_dir(if v115 { "tigervnc-1.15" } else { "tigervnc" });
    fs::write(dir.path().join("rfb.py"), RFB_PY).unwrap();
    fs::write(dir.path().join("plainpw"), plainpw).unwrap();
    let shown = [
        ("clients", "clients"),
        ("Xtigervnc :78", "xvnc78.err"),
        ("log", "xvnc.log"),
    ];
    let script = format!("{PRIVATE_SYSLOG_SH}{TRIXIE_SH}{SCRIPT}");
    run_script_ok("Xtigervnc", dir.path(), &script, &[tree.as_ref()], &shown);
    let read = |name: &str| fs::read_to_string(dir.path().join(name)).unwrap_or_default();
    let own = dir.path().join("xvnc.log");
    let sys = dir.path().join("syslog");

    // the reasons: 1.12 writes "Authentication failure" (a Plain one goes on ": invalid
    // password or username", a right password refused by NeverShared is "Authentication
    // failure: The server is already in use", wrapped in the file); 1.15 "Authentication failed" for both
    // failures, and the refusal without "Authentication failure: "
    let (failed, plain_failed, in_use) = if v115 {
        (
            "Authentication failed",
            "Authentication failed",
            ": The server is already in use",
        )
    } else {
        (
            "Authentication failure",
            "Authentication failure: invalid password or username",
            ": Authentication failure: The server is",
        )
    };
    let failed_seen = format!("failed: {failed}");
    let failed_seen = failed_seen.as_str();
    // what the clients saw, per server
    let clients = read("clients");
    let mut seen: Vec<String> = clients.lines().map(String::from).collect();
    seen.sort();
    let mut want_seen: Vec<String> = Vec::new();
    for port in ["5977", "5978"] {
        let mut add = |src: &str, what: &str, n: usize| {
            want_seen.extend(std::iter::repeat_n(format!("{src} {port} {what}"), n))
        };
        add("192.0.2.10", "ok", 1);
        add("192.0.2.11", "ok", 1);
        add("2001:db8:1::10", "ok", 1);
        add("192.0.2.13", "ok", 1);
        add("192.0.2.13", "held", 1);
        add("192.0.2.12", "failed: The server is already in use", 1);
        add("203.0.113.5", failed_seen, 5);
        add("203.0.113.5", "refused Too many security failures", 2);
        for src in ["203.0.113.6", "203.0.113.7", "203.0.113.8"] {
            add(src, &format!("failed: {plain_failed}"), 1);
        }
        add("2001:db8::7", failed_seen, 2);
        add("2001:db8::aaaa:bbbb:cccc:dddd", failed_seen, 1);
        let long = "2001:db8:1234:5678:a1b2:c3ff:fed4:e5f6";
        add(long, failed_seen, 5);
        add(long, "refused Too many security failures", 1);
    }
    want_seen.sort();
    assert_eq!(
        seen,
        want_seen,
        "what the clients saw\nlog:\n{}",
        read("xvnc.log")
    );

    let long = "2001:db8:1234:5678:a1b2:c3ff:fed4:e5f6";
    let common: &[(&str, &[(&str, usize)])] = &[
        ("203.0.113.5", &[("auth-failed", 5), ("blacklisted", 2)]),
        ("203.0.113.6", &[("auth-failed", 1)]),
        ("203.0.113.7", &[("auth-failed", 1)]),
        ("203.0.113.8", &[("auth-failed", 1)]),
        ("2001:db8::7", &[("auth-failed", 2)]),
        ("2001:db8::aaaa:bbbb:cccc:dddd", &[("auth-failed", 1)]),
    ];
    // the log file: the long address's five failures wrap whole onto the next line
    let mut want_own = common.to_vec();
    want_own.push((long, &[("blacklisted", 1)]));
    let mut want_sys = common.to_vec();
    want_sys.push((long, &[("auth-failed", 5), ("blacklisted", 1)]));
    for (log, want) in [(&own, want_own), (&sys, want_sys)] {
        let text = fs::read_to_string(log).unwrap_or_default();
        let got = lines_by_host("tigervnc", log);
        let rules = owned_rules_of(&got);
        assert_eq!(
            rules,
            want_rules(&want),
            "{}: what counted, per address: {got:#?}\nlog:\n{text}",
            log.display()
        );
        // no Plain user name reached the log
        assert!(
            !text.contains("192.0.2.66"),
            "{}: a user name is in the log:\n{text}",
            log.display()
        );
        // the right password refused by NeverShared is in the log, and counted nothing
        assert!(
            text.to_lowercase().contains("closing 192.0.2.12::") && text.contains(in_use),
            "{}: no refusal of 192.0.2.12:\n{text}",
            log.display()
        );
        assert_eq!(
            text.matches("Clean disconnection").count(),
            4,
            "{}: four sessions expected:\n{text}",
            log.display()
        );
    }
    // in the file, the long address's failures wrap; through syslog, nothing does
    let own_text = read("xvnc.log");
    assert_eq!(
        own_text
            .to_lowercase()
            .matches(&format!("closing [{long}]::"))
            .count(),
        5,
        "{own_text}"
    );
    assert!(
        own_text.contains(&format!("\n              {failed}\n")),
        "no wrapped reason in the log file:\n{own_text}"
    );
    // PAM wrote its own lines (for both servers) through syslog: none counts for tigervnc
    let sys_text = read("syslog");
    assert!(
        sys_text.contains("pam_unix(tigervnc:auth): authentication failure;"),
        "no PAM failure in the syslog:\n{sys_text}"
    );

    // a jail with maxretry 3 bans the attackers with three failures or more, and only them
    let bans = replay_jail(dir.path(), "tigervnc", &sys, "normal", 3);
    assert_eq!(
        bans.into_iter().collect::<Vec<_>>(),
        vec![
            "2001:db8:1234:5678::/64".to_string(),
            ban_of("2001:db8::7"),
            "203.0.113.5".to_string(),
        ],
        "bans from the syslog:\n{sys_text}"
    );
    let bans = replay_jail(dir.path(), "tigervnc", &own, "normal", 3);
    assert_eq!(
        bans.into_iter().collect::<Vec<_>>(),
        vec![ban_of("2001:db8::7"), "203.0.113.5".to_string()],
        "bans from the log file:\n{own_text}"
    );
}

#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn real_tigervnc_failures_count_for_the_client_tigervnc_wrote() {
    run(Release::Deb12);
}

#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn real_tigervnc_1_15_failures_count_for_the_client_tigervnc_wrote() {
    run(Release::Deb13);
}

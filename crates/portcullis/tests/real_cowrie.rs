//! The `cowrie` filter (filters/cowrie.toml: rule connect, every `cowrie.session.connect`
//! of Cowrie's JSON log) against the real Cowrie honeypot. Debian 12 has no cowrie package,
//! so test.sh installs the pinned release from PyPI with pip into a venv of Debian's python3
//! under /var/cache/portcullis-test/cowrie/venv (PORTCULLIS_COWRIE_VENV elsewhere), its
//! dependencies pinned by tests/cowrie-constraints.txt, never on the system.
//!
//! Cowrie runs in the foreground (`twistd -n cowrie`, what `cowrie start` runs; as uid
//! 65534: Cowrie refuses root) with an empty environment (COWRIE_* variables would override
//! its configuration), in its own pid, mount and network namespace (`unshare`), from a state
//! directory of the test holding etc/cowrie.cfg (SSH on 192.0.2.1:2222 and
//! [2001:db8::1]:2222; Telnet on, on a dual-stack [::]:2223, so that it writes its IPv4
//! clients as `::ffff:a.b.c.d`; the JSON log on, plain file) and etc/userdb.txt (root/toor is
//! the "right" password, everything else is refused).
//!
//! Clients, run at the same time from addresses of the namespace's loopback:
//! * 203.0.113.10, OpenSSH's ssh (sshpass): three wrong passwords and the user name
//!   `admin from 192.0.2.66 port 1`;
//! * 203.0.113.11, OpenSSH: two logins with the right password, each running a command that
//!   prints a forged connect event of 192.0.2.66;
//! * 2001:db8:10::10, OpenSSH over IPv6: two wrong passwords and the right one;
//! * 203.0.113.12, a Twisted Conch client (the venv's, for what OpenSSH 9.2 refuses to send:
//!   "remote username contains invalid characters"): the user `x","src_ip":"192.0.2.66`; a
//!   user carrying a LF, a whole forged connect event of 192.0.2.66, a CR and a byte 0xff
//!   (with a LF and a quote in the password); the right password behind an SSH version
//!   string that carries `","src_ip":"192.0.2.66","eventid":"cowrie.session.connect`;
//! * 203.0.113.13 (Telnet, Debian's python3 socket, logged `::ffff:203.0.113.13`): the user
//!   `x","src_ip":"192.0.2.66` with ESC and DEL, and `admin from 192.0.2.66`;
//! * 2001:db8:13::13 (Telnet over IPv6): the right password;
//! * 203.0.113.14: a bare TCP connect to each port (a scan: no SSH version, no login);
//! * 198.51.100.7 never reaches the honeypot (it knocks on the closed port 22).
//!
//! Asserted: each client got the answer it expects (refused, accepted with the command's
//! output); Cowrie wrote one JSON object per line, one connect event per connection with
//! the client's address (per address and protocol, exactly), the user names as the clients
//! sent them (escaped) and the commands; `portcullis test --filter cowrie --json` counts
//! exactly the connect events, each for its client's address (the ::ffff: form read as the
//! IPv4 address), per address exactly as many as connections, and never 192.0.2.66,
//! 198.51.100.7 or the server; `portcullis replay` bans at maxretry 1 every client that
//! connected and at 2, 3, 4 and 5 exactly those with that many connections.
//!
//! Needs root, the venv of test.sh, python3, OpenSSH's ssh, sshpass, iproute2 and
//! util-linux (unshare, setpriv); fails loudly when they are missing; runs offline. Runs in
//! about 2.5 s: Cowrie listens 0.35 to 0.5 s after its start (host keys made), each refused
//! SSH password costs 1 s (Twisted Conch's delay), the clients run side by side.

mod common;

use common::*;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::PathBuf;
use std::time::Instant;

/// Where test.sh makes the venv (PORTCULLIS_COWRIE_VENV overrides it).
const COWRIE_VENV: &str = "/var/cache/portcullis-test/cowrie/venv";
const PYTHON: &str = "/usr/bin/python3";
const FILTER: &str = "cowrie";
const SERVER: &str = "192.0.2.1";
const SERVER_V6: &str = "2001:db8::1";
const SSH_PORT: u16 = 2222;
const TELNET_PORT: u16 = 2223;
/// The address the clients type into user names, passwords, commands and versions.
const INJECTED: &str = "192.0.2.66";
/// Never connects to the honeypot.
const BYSTANDER: &str = "198.51.100.7";

/// Run as pid 1 of the new pid, mount and network namespace (bash): every process of the
/// run is in it and dies with it. $1 is the test's directory, $2 the venv; $1/attacks.sh
/// (written by the test) runs the clients.
const SCRIPT: &str = r#"set -u
d="$1"
venv="$2"
ip link set lo up
for a in 192.0.2.1 203.0.113.10 203.0.113.11 203.0.113.12 203.0.113.13 203.0.113.14 198.51.100.7; do
  ip addr add "$a/32" dev lo || exit 2
done
for a in 2001:db8::1 2001:db8:10::10 2001:db8:13::13; do ip addr add "$a/128" dev lo nodad || exit 2; done
# a system-wide configuration of the machine, should there be one, is not the test's
if [ -e /etc/cowrie ]; then mkdir -p "$d/empty" && mount --bind "$d/empty" /etc/cowrie || exit 2; fi
chmod 755 "$d"
h="$d/cowrie"
mkdir -p "$h/etc" "$h/var/log/cowrie" "$h/var/lib/cowrie/downloads" "$h/var/lib/cowrie/tty"
cat > "$h/etc/cowrie.cfg" <<'C'
[honeypot]
hostname = hp1
sensor_name = hp1
log_path = var/log/cowrie
state_path = var/lib/cowrie
logtype = plain
timezone = UTC
[ssh]
enabled = true
listen_endpoints = tcp:2222:interface=192.0.2.1 tcp6:2222:interface=2001\:db8\:\:1
[telnet]
enabled = true
listen_endpoints = tcp6:2223:interface=\:\:
[output_jsonlog]
enabled = true
logfile = ${honeypot:log_path}/cowrie.json
C
printf 'root:x:!root\nroot:x:!123456\nroot:x:toor\n' > "$h/etc/userdb.txt"
chown -R 65534:65534 "$h"
cd "$h" || exit 2
start=$(date +%s%N)
setpriv --reuid 65534 --regid 65534 --clear-groups \
  env -i HOME="$h" PATH="$venv/bin:/usr/bin:/bin" TZ=UTC \
  "$venv/bin/twistd" -n --umask=0022 --pidfile= cowrie > "$d/cowrie.out" 2>&1 &
cowrie=$!
up=0
# up to 30 s: Cowrie makes its host keys at each start (a fresh state_path), 0.35 to 0.5 s on
# an idle machine, 4.4 to 4.7 s measured on a loaded one (load 9 on 2 cores): 7.5 s was
# too close; a Cowrie that died ends the wait at once
for _ in $(seq 600); do
  n=$(ss -Hltn '( sport = :2222 or sport = :2223 )' | wc -l)
  [ "$n" -ge 3 ] && { up=1; break; }
  kill -0 "$cowrie" 2>/dev/null || break
  sleep 0.05
done
[ "$up" = 1 ] || { echo "cowrie did not start" >&2; ss -ltn >&2; exit 4; }
echo "cowrie listening after $(( ($(date +%s%N) - start) / 1000000 )) ms" >&2
cd "$d" || exit 2
: > "$d/outcomes"
. "$d/attacks.sh"
wait_clients
# every connection closed (the refused SSH logins linger 1 s): then the log is whole
for _ in $(seq 100); do
  c=$(grep -c '"eventid":"cowrie.session.connect"' "$h/var/log/cowrie/cowrie.json")
  e=$(grep -c '"eventid":"cowrie.session.closed"' "$h/var/log/cowrie/cowrie.json")
  [ "$e" -ge "$c" ] && break
  sleep 0.05
done
kill -TERM "$cowrie"
wait "$cowrie"
exit 0
"#;

/// One SSH password login with Twisted Conch (the client half of the library Cowrie is built
/// on), run with the venv's python: argv SRC DST PORT USER PASSWORD [VERSION], user,
/// password and version in hex, sent as they are (what OpenSSH refuses to send included).
/// Exit 0 when the server accepted the password, 1 when it refused it, 2 on any other end.
const CONCH_PY: &str = r#"# SSH client of crates/portcullis/tests/real_cowrie.rs (Twisted Conch).
import sys

from twisted.conch.ssh import connection, transport, userauth
from twisted.internet import defer, protocol, reactor

src, dst, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
user, password = bytes.fromhex(sys.argv[4]), bytes.fromhex(sys.argv[5])
version = bytes.fromhex(sys.argv[6]) if len(sys.argv) > 6 else None
result = {"code": 2}


class Conn(connection.SSHConnection):
    def serviceStarted(self):
        result["code"] = 0
        self.transport.loseConnection()


class Auth(userauth.SSHUserAuthClient):
    tried = False

    def getPassword(self, prompt=None):
        if self.tried:
            result["code"] = 1
            return None
        self.tried = True
        return defer.succeed(password)

    def getPublicKey(self):
        return None


class Client(transport.SSHClientTransport):
    if version is not None:
        ourVersionString = version

    def verifyHostKey(self, pubKey, fingerprint):
        return defer.succeed(True)

    def connectionSecure(self):
        self.requestService(Auth(user, Conn()))


class Factory(protocol.ClientFactory):
    protocol = Client

    def clientConnectionLost(self, connector, reason):
        reactor.stop()

    def clientConnectionFailed(self, connector, reason):
        print("conch client: %s" % reason.getErrorMessage(), file=sys.stderr)
        reactor.stop()


reactor.connectTCP(dst, port, Factory(), timeout=5, bindAddress=(src, 0))
reactor.callLater(10, reactor.stop)
reactor.run()
sys.exit(result["code"])
"#;

/// One Telnet login with a socket (Debian's python3): argv SRC DST PORT USER PASSWORD (user
/// and password in hex, each sent followed by CR LF). Exit 0 when a shell prompt follows, 1
/// on "Login incorrect", 2 on any other end. With USER "-" it only connects and hangs up (a
/// scan).
const TELNET_PY: &str = r##"# Telnet and bare TCP client of crates/portcullis/tests/real_cowrie.rs.
import socket
import sys
import time

src, dst, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
s = socket.socket(socket.AF_INET6 if ":" in dst else socket.AF_INET, socket.SOCK_STREAM)
s.settimeout(5)
s.bind((src, 0))
s.connect((dst, port))
if sys.argv[4] == "-":
    s.close()
    sys.exit(0)
user, password = bytes.fromhex(sys.argv[4]), bytes.fromhex(sys.argv[5])


def until(*tokens):
    buf, end = b"", time.monotonic() + 5
    while time.monotonic() < end:
        if any(t in buf for t in tokens):
            return buf
        data = s.recv(4096)
        if not data:
            break
        buf += data
    return buf


until(b"login: ")
s.sendall(user + b"\r\n")
until(b"Password: ")
s.sendall(password + b"\r\n")
answer = until(b"Login incorrect", b"# ", b"$ ")
s.close()
sys.exit(1 if b"Login incorrect" in answer else 0 if b"# " in answer or b"$ " in answer else 2)
"##;

#[derive(Clone, Copy, PartialEq)]
enum Client {
    /// OpenSSH's ssh through sshpass (one password prompt).
    OpenSsh,
    /// Twisted Conch, with an SSH version string when given.
    Conch(Option<&'static str>),
    Telnet,
    /// A bare TCP connect to the port, no byte sent.
    Probe,
}

/// One connection to the honeypot.
struct Attempt {
    src: &'static str,
    client: Client,
    port: u16,
    user: &'static [u8],
    password: &'static [u8],
    /// The command an accepted OpenSSH login runs.
    command: Option<String>,
    /// Whether the password is the right one.
    accepted: bool,
    /// The "username" Cowrie writes (its escapes: \xNN for control and non-UTF-8 bytes,
    /// then JSON's).
    logged_user: &'static str,
}

impl Attempt {
    fn new(
        src: &'static str,
        client: Client,
        user: &'static [u8],
        password: &'static [u8],
    ) -> Self {
        let port = if client == Client::Telnet {
            TELNET_PORT
        } else {
            SSH_PORT
        };
        Attempt {
            src,
            client,
            port,
            user,
            password,
            command: None,
            accepted: password == b"toor",
            logged_user: std::str::from_utf8(user).unwrap_or_default(),
        }
    }

    fn logged(mut self, user: &'static str) -> Self {
        self.logged_user = user;
        self
    }

    fn probe(src: &'static str, port: u16) -> Self {
        Attempt {
            port,
            ..Attempt::new(src, Client::Probe, b"", b"")
        }
    }

    fn running(mut self, command: String) -> Self {
        self.command = Some(command);
        self
    }

    /// The src_ip Cowrie writes: the Telnet listener is dual-stack, its IPv4 clients are
    /// IPv4-mapped IPv6 addresses.
    fn logged_src(&self) -> String {
        if self.port == TELNET_PORT && !self.src.contains(':') {
            format!("::ffff:{}", self.src)
        } else {
            self.src.to_string()
        }
    }

    fn protocol(&self) -> &'static str {
        if self.port == TELNET_PORT {
            "telnet"
        } else {
            "ssh"
        }
    }

    fn server(&self) -> &'static str {
        if self.src.contains(':') {
            SERVER_V6
        } else {
            SERVER
        }
    }

    /// The exit status its client must give.
    fn want_status(&self) -> i32 {
        match (self.client, self.accepted) {
            (Client::Probe, _) | (_, true) => 0,
            (Client::OpenSsh, false) => 255,
            (_, false) => 1,
        }
    }

    /// The shell command of its client (run from the test's directory).
    fn shell(&self) -> String {
        let q = |s: &str| format!("'{}'", s.replace('\'', r"'\''"));
        let text = |b: &'static [u8]| std::str::from_utf8(b).expect("OpenSSH's values are text");
        let (src, dst, port) = (self.src, self.server(), self.port);
        match self.client {
            Client::OpenSsh => format!(
                "timeout 15 sshpass -p {} ssh -F none -o StrictHostKeyChecking=no \
                 -o UserKnownHostsFile=/dev/null -o PubkeyAuthentication=no \
                 -o NumberOfPasswordPrompts=1 -o ConnectTimeout=5 -o BatchMode=no \
                 -o LogLevel=ERROR -b {src} -p {port} -l {} {dst} {}",
                q(text(self.password)),
                q(text(self.user)),
                q(self.command.as_deref().unwrap_or("true"))
            ),
            Client::Conch(version) => format!(
                "timeout 15 \"$venv/bin/python\" conch.py {src} {dst} {port} {} {}{}",
                hex(self.user),
                hex(self.password),
                version
                    .map(|v| format!(" {}", hex(v.as_bytes())))
                    .unwrap_or_default()
            ),
            Client::Telnet => format!(
                "timeout 15 {PYTHON} telnet.py {src} {dst} {port} {} {}",
                hex(self.user),
                hex(self.password)
            ),
            Client::Probe => format!("timeout 15 {PYTHON} telnet.py {src} {dst} {port} -"),
        }
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|c| format!("{c:02x}")).collect()
}

/// Every connection the clients make.
fn attempts() -> Vec<Attempt> {
    use Client::*;
    let forged = format!("{{\"src_ip\":\"{INJECTED}\",\"eventid\":\"cowrie.session.connect\"}}");
    vec![
        Attempt::new("203.0.113.10", OpenSsh, b"root", b"123456"),
        Attempt::new("203.0.113.10", OpenSsh, b"root", b"root"),
        Attempt::new("203.0.113.10", OpenSsh, b"admin", b"admin"),
        Attempt::new(
            "203.0.113.10",
            OpenSsh,
            b"admin from 192.0.2.66 port 1",
            b"x",
        ),
        Attempt::new("203.0.113.11", OpenSsh, b"root", b"toor").running(format!("echo '{forged}'")),
        Attempt::new("203.0.113.11", OpenSsh, b"root", b"toor")
            .running(format!("echo 'x\",\"src_ip\":\"{INJECTED}'")),
        Attempt::new("2001:db8:10::10", OpenSsh, b"root", b"123456"),
        Attempt::new("2001:db8:10::10", OpenSsh, b"oracle", b"oracle"),
        Attempt::new("2001:db8:10::10", OpenSsh, b"root", b"toor").running("uname -a".to_string()),
        Attempt::new(
            "203.0.113.12",
            Conch(None),
            b"x\",\"src_ip\":\"192.0.2.66",
            b"x",
        ),
        Attempt::new(
            "203.0.113.12",
            Conch(None),
            b"x\n{\"src_ip\":\"192.0.2.66\",\"eventid\":\"cowrie.session.connect\"}\r\xff",
            b"pw\n\"",
        )
        .logged(
            "x\\x0a{\"src_ip\":\"192.0.2.66\",\"eventid\":\"cowrie.session.connect\"}\\x0d\\xff",
        ),
        Attempt::new(
            "203.0.113.12",
            Conch(Some(
                "SSH-2.0-x\",\"src_ip\":\"192.0.2.66\",\"eventid\":\"cowrie.session.connect",
            )),
            b"root",
            b"toor",
        ),
        Attempt::new(
            "203.0.113.13",
            Telnet,
            b"x\",\"src_ip\":\"192.0.2.66\x1b\x7f",
            b"x",
        )
        .logged("x\",\"src_ip\":\"192.0.2.66\\x1b\\x7f"),
        Attempt::new("203.0.113.13", Telnet, b"admin from 192.0.2.66", b"x"),
        Attempt::new("2001:db8:13::13", Telnet, b"root", b"toor"),
        Attempt::probe("203.0.113.14", SSH_PORT),
        Attempt::probe("203.0.113.14", TELNET_PORT),
    ]
}

/// attacks.sh: every client at once, each writing "INDEX STATUS" to outcomes (its output to
/// client-INDEX.out); 198.51.100.7 knocks on the closed port 22; `wait_clients` waits for
/// them all.
fn attacks_sh(attempts: &[Attempt]) -> String {
    let mut s = String::from("# clients of crates/portcullis/tests/real_cowrie.rs\npids=\n");
    for (i, a) in attempts.iter().enumerate() {
        s.push_str(&format!(
            "( {} > client-{i}.out 2>&1 < /dev/null; echo \"{i} $?\" >> outcomes ) &\npids=\"$pids $!\"\n",
            a.shell()
        ));
    }
    s.push_str(&format!(
        "( timeout 5 {PYTHON} telnet.py {BYSTANDER} {SERVER} 22 - > bystander.out 2>&1; \
         echo \"bystander $?\" >> outcomes ) &\npids=\"$pids $!\"\n"
    ));
    s.push_str("wait_clients() { wait $pids; }\n");
    s
}

/// The venv of test.sh; fails loudly when it is missing.
fn cowrie_venv() -> PathBuf {
    let venv = PathBuf::from(std::env::var("PORTCULLIS_COWRIE_VENV").unwrap_or(COWRIE_VENV.into()));
    for bin in ["bin/python", "bin/twistd"] {
        assert!(
            venv.join(bin).is_file(),
            "{} is missing: run test.sh (it installs cowrie from PyPI with pip into a venv at \
             {COWRIE_VENV})",
            venv.join(bin).display()
        );
    }
    venv
}

/// The address portcullis gives for a src_ip Cowrie wrote.
fn unmapped(src: &str) -> &str {
    src.strip_prefix("::ffff:").unwrap_or(src)
}

/// What a ban names: an IPv6 client by its /64 (the default prefix), an IPv4 one by itself.
fn ban_name(addr: &str) -> String {
    match addr.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V6(v6)) => {
            let s = v6.segments();
            let net = std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0);
            format!("{net}/64")
        }
        _ => addr.to_string(),
    }
}

#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn real_cowrie_every_connection_counts_for_its_client() {
    let started = Instant::now();
    require_root();
    require_program("unshare", "util-linux");
    require_program("setpriv", "util-linux");
    require_program("ip", "iproute2");
    require_program("ss", "iproute2");
    require_program("ssh", "openssh-client");
    require_program("sshpass", "sshpass");
    require_program("timeout", "coreutils");
    assert!(
        std::path::Path::new(PYTHON).is_file(),
        "{PYTHON} is missing: install python3 (test.sh does)"
    );
    let venv = cowrie_venv();
    let attempts = attempts();
    let dir = test_dir("cowrie");
    let d = dir.path();
    fs::write(d.join("conch.py"), CONCH_PY).unwrap();
    fs::write(d.join("telnet.py"), TELNET_PY).unwrap();
    fs::write(d.join("attacks.sh"), attacks_sh(&attempts)).unwrap();
    let out = run_script_ok(
        "Cowrie",
        d,
        SCRIPT,
        &[venv.as_os_str()],
        &[
            ("cowrie", "cowrie.out"),
            ("log", "cowrie/var/log/cowrie/cowrie.json"),
            ("outcomes", "outcomes"),
        ],
    );
    let log = d.join("cowrie/var/log/cowrie/cowrie.json");
    let text = String::from_utf8_lossy(&fs::read(&log).unwrap_or_default()).into_owned();
    let read = |name: &str| fs::read_to_string(d.join(name)).unwrap_or_default();
    let cowrie_out = read("cowrie.out");
    eprintln!(
        "real_cowrie: {}",
        out.stderr_str()
            .lines()
            .find(|l| l.contains("listening"))
            .unwrap_or("?")
    );
    let version = cowrie_out
        .lines()
        .find_map(|l| {
            l.split_once("Cowrie Version ")
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_default();
    eprintln!("real_cowrie: Cowrie {version}");
    assert!(
        !version.is_empty(),
        "Cowrie logged no version:\n{cowrie_out}"
    );
    // test.sh's stamp: the version, then a digest of the pinned dependencies
    if let Ok(stamp) = fs::read_to_string(venv.join("../version")) {
        assert_eq!(
            version,
            stamp.split_whitespace().next().unwrap_or_default(),
            "the venv holds another Cowrie than test.sh pinned"
        );
    }

    // ---- what the clients saw ----
    let outcomes: BTreeMap<String, i32> = read("outcomes")
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k.to_string(), v.parse().ok()?))
        })
        .collect();
    for (i, a) in attempts.iter().enumerate() {
        let client_out = read(&format!("client-{i}.out"));
        assert_eq!(
            outcomes.get(&i.to_string()).copied(),
            Some(a.want_status()),
            "client {i} ({} from {}): {client_out}\ncowrie:\n{cowrie_out}",
            a.shell(),
            a.src
        );
        if let Some(c) = &a.command {
            if let Some(printed) = c.strip_prefix("echo '").and_then(|c| c.strip_suffix('\'')) {
                assert!(
                    client_out.contains(printed),
                    "client {i}: the honeypot's shell did not print {printed:?}: {client_out}"
                );
            }
        }
    }
    // the closed port 22 refused the bystander (python's ConnectionRefusedError)
    assert_ne!(
        outcomes.get("bystander").copied(),
        Some(0),
        "{BYSTANDER} reached a port 22: {}",
        read("bystander.out")
    );

    // ---- what Cowrie wrote ----
    let lines: Vec<&str> = text.split_terminator('\n').collect();
    let events: Vec<Value> = lines
        .iter()
        .map(|l| {
            serde_json::from_str(l).unwrap_or_else(|e| {
                panic!("a line that is no JSON object ({e}): {l}\nlog:\n{text}")
            })
        })
        .collect();
    let eventid = |v: &Value| v["eventid"].as_str().unwrap_or_default().to_string();
    let connects: Vec<usize> = (0..events.len())
        .filter(|&i| eventid(&events[i]) == "cowrie.session.connect")
        .collect();
    let mut logged: BTreeMap<(String, String), usize> = BTreeMap::new();
    for &i in &connects {
        let e = &events[i];
        *logged
            .entry((
                e["src_ip"].as_str().unwrap_or("(none)").to_string(),
                e["protocol"].as_str().unwrap_or("(none)").to_string(),
            ))
            .or_default() += 1;
        assert!(
            lines[i].starts_with("{\"session\":\"")
                && e["dst_port"].as_u64().is_some()
                && e["timestamp"].as_str().is_some_and(|t| t.ends_with('Z')),
            "a connect event not in the shape the filter's header shows: {}",
            lines[i]
        );
    }
    let mut want_logged: BTreeMap<(String, String), usize> = BTreeMap::new();
    for a in &attempts {
        *want_logged
            .entry((a.logged_src(), a.protocol().to_string()))
            .or_default() += 1;
    }
    assert_eq!(
        logged, want_logged,
        "Cowrie's connect events per (src_ip, protocol) differ from the connections made\n\
         log:\n{text}"
    );
    // the user names as the clients sent them, for their own connection's address
    let mut logins: Vec<(String, String, bool)> = events
        .iter()
        .filter(|e| eventid(e).starts_with("cowrie.login."))
        .map(|e| {
            (
                e["src_ip"].as_str().unwrap_or_default().to_string(),
                e["username"].as_str().unwrap_or_default().to_string(),
                eventid(e) == "cowrie.login.success",
            )
        })
        .collect();
    let mut want_logins: Vec<(String, String, bool)> = attempts
        .iter()
        .filter(|a| a.client != Client::Probe)
        .map(|a| (a.logged_src(), a.logged_user.to_string(), a.accepted))
        .collect();
    logins.sort();
    want_logins.sort();
    assert_eq!(
        logins, want_logins,
        "Cowrie's login events (src_ip, username, success)\nlog:\n{text}"
    );
    for a in attempts.iter().filter(|a| a.command.is_some()) {
        let c = a.command.as_deref().unwrap();
        assert!(
            events.iter().any(|e| eventid(e) == "cowrie.command.input"
                && e["src_ip"] == a.src
                && e["input"] == c),
            "no cowrie.command.input {c:?} from {}\nlog:\n{text}",
            a.src
        );
    }
    assert!(
        events.iter().any(|e| eventid(e) == "cowrie.client.version"
            && e["version"].as_str().is_some_and(|v| v.contains(INJECTED))),
        "the forged SSH version is not in the log\nlog:\n{text}"
    );
    assert!(
        events
            .iter()
            .all(|e| e["src_ip"] != INJECTED && e["src_ip"] != BYSTANDER),
        "Cowrie wrote {INJECTED} or {BYSTANDER} as a src_ip\nlog:\n{text}"
    );

    // ---- portcullis test ----
    let counted = counted_matches(FILTER, &log);
    let shown: Vec<String> = counted
        .iter()
        .map(|(h, r, l)| format!("  {h} {r}: {l}"))
        .collect();
    let shown = shown.join("\n");
    let want_lines: Vec<(String, String, String)> = connects
        .iter()
        .map(|&i| {
            (
                unmapped(events[i]["src_ip"].as_str().unwrap_or_default()).to_string(),
                "connect".to_string(),
                lines[i].to_string(),
            )
        })
        .collect();
    assert_eq!(
        counted, want_lines,
        "the filter counted other lines (or addresses) than Cowrie's connect events\n\
         counted:\n{shown}\nlog:\n{text}"
    );
    let mut per_host: BTreeMap<&str, usize> = BTreeMap::new();
    for a in &attempts {
        *per_host.entry(a.src).or_default() += 1;
    }
    let want_counts: Vec<(&str, Vec<(&str, usize)>)> = per_host
        .iter()
        .map(|(h, n)| (*h, vec![("connect", *n)]))
        .collect();
    let want_counts: Vec<(&str, &[(&str, usize)])> = want_counts
        .iter()
        .map(|(h, v)| (*h, v.as_slice()))
        .collect();
    assert_eq!(
        rules_by_host(FILTER, &log),
        want_rules(&want_counts),
        "what counted, per address\ncounted:\n{shown}"
    );
    assert_eq!(
        per_host,
        [
            ("203.0.113.10", 4),
            ("203.0.113.11", 2),
            ("203.0.113.12", 3),
            ("203.0.113.13", 2),
            ("203.0.113.14", 2),
            ("2001:db8:10::10", 3),
            ("2001:db8:13::13", 1),
        ]
        .into_iter()
        .collect::<BTreeMap<&str, usize>>(),
        "the attempts (the replay below reads these counts)"
    );
    for never in [INJECTED, BYSTANDER, SERVER, SERVER_V6] {
        assert!(
            counted.iter().all(|(h, _, _)| h != never),
            "{never} counted\ncounted:\n{shown}"
        );
    }

    // ---- portcullis replay ----
    for maxretry in 1..=5 {
        let want: BTreeSet<String> = per_host
            .iter()
            .filter(|(_, n)| **n >= maxretry)
            .map(|(h, _)| ban_name(h))
            .collect();
        assert_eq!(
            replay_jail(d, FILTER, &log, "normal", maxretry as u32),
            want,
            "replay (maxretry {maxretry})\ncounted:\n{shown}"
        );
    }
    eprintln!("real_cowrie: done in {:?}", started.elapsed());
}

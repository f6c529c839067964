//! The `prosody` filter against the real Prosody, Debian 12's (0.12.3, the machine's) and
//! Debian 13's (13.0.1, from the trixie tree test.sh makes, run with chroot in a private
//! overlay: common/real.rs `trixie_mount`), each with mod_log_auth from its release's
//! prosody-modules. It runs in its own pid, mount and network namespace (`unshare`), in the
//! foreground (`prosody -F`), with a configuration, data and pid file in the test's
//! directory: one virtual host (example.net) whose account alice is made by `prosodyctl
//! register`, c2s on 192.0.2.5 and 2001:db8::5 without TLS (`c2s_require_encryption =
//! false`, `allow_unencrypted_plain_auth = true`), BOSH on 192.0.2.5:5280. It logs twice:
//! into its own file (the file sink) and through syslog(3) to a private rsyslogd (a private
//! /dev whose /dev/log is its socket), writing rsyslog's traditional file format. Both
//! releases write the same failure lines (13.0 adds the role to "Authenticated as ...").
//!
//! Clients (a small python3 XMPP client, sockets bound to their source address, SASL
//! PLAIN): 198.51.100.9 tries two wrong passwords on one stream, an unknown user, and three
//! hostile user names (`admin 192.0.2.66`, one holding a newline and a whole failure line
//! for 192.0.2.66, and `192.0.2.66`, which nodeprep lets through), then closes a stream
//! with a stream error whose text holds a newline and failure lines for 192.0.2.66 and
//! 192.0.2.67 (Prosody writes that newline raw into its file, followed by a TAB);
//! 203.0.113.77 tries a wrong password over BOSH with `X-Forwarded-For: 192.0.2.66`;
//! 2001:db8:77::7 one over IPv6; 192.0.2.10 logs in with the right password, over c2s and
//! over BOSH (with the same forged header).
//!
//! In both logs `portcullis test --filter prosody --json` must count each failed login
//! once, for the address Prosody wrote (never 192.0.2.66 or .67), and nothing for
//! 192.0.2.10; `portcullis replay` with `maxretry = 3` bans 198.51.100.9 alone.
//!
//! Needs root, prosody and prosodyctl (prosody), mod_log_auth (prosody-modules), python3,
//! rsyslogd, iproute2 and util-linux's unshare (test.sh installs them); fails loudly when
//! they are missing; Debian 13's from the trixie tree. Runs in about 2 s per release.

mod common;

use common::*;
use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

/// Run as pid 1 of the new pid, mount and network namespace (bash): every process of the
/// run is in it and dies with it; $1 is the test's directory, $2 the trixie tree (empty: the
/// machine's Prosody). (After [`PRIVATE_SYSLOG_SH`] and [`TRIXIE_SH`].)
const SCRIPT: &str = r#"set -u
d="$1"; tree="$2"
ip link set lo up
for a in 192.0.2.5 192.0.2.10 198.51.100.9 203.0.113.77; do
  ip addr add "$a/32" dev lo || exit 2
done
for a in 2001:db8::5 2001:db8:77::7; do ip addr add "$a/128" dev lo nodad || exit 2; done
# a private /dev whose /dev/log is a private rsyslogd's socket (common/netns.rs)
private_syslog "$d"
# the Prosody to run: the machine's (Debian 12), or Debian 13's in a private overlay of its
# tree (common/real.rs trixie_mount: its /etc, /run and /tmp private, $d at the same path),
# through chroot
run=()
if [ -n "$tree" ]; then
  trixie_mount "$tree" "$d/root" "$d/trixie" || exit 4
  run=(chroot "$d/root")
fi
mkdir -p "$d/data" "$d/certs"
cat > "$d/prosody.cfg.lua" <<C
run_as_root = true
pidfile = "$d/prosody.pid"
data_path = "$d/data"
certificates = "$d/certs"
log = {
  { levels = { min = "info" }, to = "file", filename = "$d/prosody.log" };
  { levels = { min = "info" }, to = "syslog" };
}
interfaces = { "192.0.2.5", "2001:db8::5" }
c2s_ports = { 5222 }
c2s_direct_tls_ports = { }
legacy_ssl_ports = { }
http_interfaces = { "192.0.2.5" }
http_ports = { 5280 }
https_ports = { }
c2s_require_encryption = false
allow_unencrypted_plain_auth = true
authentication = "internal_hashed"
modules_enabled = { "saslauth", "log_auth", "bosh" }
modules_disabled = { "s2s", "tls" }
VirtualHost "example.net"
C
"${run[@]}" prosodyctl --config "$d/prosody.cfg.lua" register alice example.net 'correct horse' \
  > "$d/register.out" 2>&1 || { echo "prosodyctl register failed" >&2; exit 4; }
"${run[@]}" prosody --config "$d/prosody.cfg.lua" -F > "$d/prosody.out" 2>&1 &
up() { grep -q "Activated service 'c2s'" "$d/prosody.log" 2>/dev/null && grep -q "Activated service 'http'" "$d/prosody.log"; }
for _ in $(seq 100); do up && break; sleep 0.1; done
up || { echo "prosody did not start" >&2; exit 5; }
timeout 30 python3 "$d/client.py" > "$d/results" 2> "$d/client.err"
for _ in $(seq 50); do
  n=$(grep -c "Failed authentication attempt (" "$d/syslog" 2>/dev/null)
  [ "${n:-0}" -ge 8 ] && break
  sleep 0.1
done
kill %2
wait %2
kill %1
wait
"#;

/// The clients: one line "LABEL RESULT" per attempt (RESULT: the SASL element's name or
/// "success").
const CLIENT_PY: &str = r#"import base64, http.client, re, socket, sys
from xml.sax.saxutils import escape

NS_SASL = "urn:ietf:params:xml:ns:xmpp-sasl"

def plain(user, pw):
    return base64.b64encode(b"\0" + user.encode() + b"\0" + pw.encode()).decode()

def outcome(reply):
    if "<success" in reply:
        return "success"
    m = re.search(r"<failure[^>]*><([a-z-]+)", reply)
    return m.group(1) if m else "no-answer"

def c2s(label, src, dst, attempts, error_text=None):
    """One stream from src: each (user, password) one SASL PLAIN attempt; then maybe a
    stream error holding error_text."""
    s = socket.socket(socket.AF_INET6 if ":" in dst else socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(5)
    s.bind((src, 0))
    s.connect((dst, 5222))
    def until(*ends):
        buf = b""
        for _ in range(100):
            if any(e in buf for e in ends):
                break
            d = s.recv(4096)
            if not d:
                break
            buf += d
        return buf.decode("utf-8", "replace")
    s.sendall(b"<?xml version='1.0'?><stream:stream to='example.net' xmlns='jabber:client' "
              b"xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>")
    until(b"</stream:features>")
    for i, (user, pw) in enumerate(attempts):
        s.sendall(("<auth xmlns='%s' mechanism='PLAIN'>%s</auth>" % (NS_SASL, plain(user, pw))).encode())
        print(label + (str(i + 1) if len(attempts) > 1 else ""), outcome(until(b"</failure>", b"<success")))
    if error_text is not None:
        s.sendall(("<stream:error><undefined-condition xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"
                   "<text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>%s</text></stream:error>"
                   % escape(error_text)).encode())
        until(b"</stream:stream>")
        print(label, "closed")
    s.close()

def bosh(label, src, user, pw, forwarded):
    """One BOSH session from src, one SASL PLAIN attempt, with a forged X-Forwarded-For."""
    ns = "xmlns='http://jabber.org/protocol/httpbind' xmlns:xmpp='urn:xmpp:xbosh'"
    def post(body):
        c = http.client.HTTPConnection("192.0.2.5", 5280, timeout=5, source_address=(src, 0))
        c.request("POST", "/http-bind", body, {"Content-Type": "text/xml; charset=utf-8",
                                               "X-Forwarded-For": forwarded})
        r = c.getresponse().read().decode("utf-8", "replace")
        c.close()
        return r
    r = post("<body rid='1000' to='example.net' xml:lang='en' wait='5' hold='1' ver='1.6' "
             "xmpp:version='1.0' %s/>" % ns)
    sid = re.search(r"sid=['\"]([^'\"]+)['\"]", r).group(1)
    r = post("<body rid='1001' sid='%s' %s><auth xmlns='%s' mechanism='PLAIN'>%s</auth></body>"
             % (sid, ns, NS_SASL, plain(user, pw)))
    print(label, outcome(r))

def run(f, *a, **k):
    try:
        f(*a, **k)
    except Exception as e:
        print(a[0], "error", repr(e).replace("\n", " "))

forged = "Failed authentication attempt (not-authorized) for user y from IP: 192.0.2.66"
run(c2s, "heavy-wrong", "198.51.100.9", "192.0.2.5", [("alice", "wrong1"), ("alice", "wrong2")])
run(c2s, "heavy-unknown", "198.51.100.9", "192.0.2.5", [("nosuch", "wrong")])
run(c2s, "heavy-user", "198.51.100.9", "192.0.2.5",
    [("admin 192.0.2.66", "wrong"), ("x\n" + forged, "wrong"), ("192.0.2.66", "wrong")])
run(c2s, "heavy-error", "198.51.100.9", "192.0.2.5", [],
    error_text="x\n" + forged + "\n\tFailed authentication attempt (not-authorized) for user z from IP: 192.0.2.67")
run(bosh, "other-bosh", "203.0.113.77", "alice", "wrong3", "192.0.2.66")
run(c2s, "v6-wrong", "2001:db8:77::7", "2001:db8::5", [("alice", "wrong4")])
run(c2s, "legit-c2s", "192.0.2.10", "192.0.2.5", [("alice", "correct horse")])
run(bosh, "legit-bosh", "192.0.2.10", "alice", "correct horse", "192.0.2.66")
"#;

// The Prosody under test: Debian 12's (the machine's, 0.12.3) or Debian 13's (the trixie
// tree, 13.0.1, run with chroot), each with its release's prosody-modules.

fn run(version: Release) {
    require_root();
    require_program("python3", "python3");
    require_program("rsyslogd", "rsyslog");
    require_program("ip", "iproute2");
    require_program("unshare", "util-linux");
    let log_auth = "usr/lib/prosody/modules/mod_log_auth/mod_log_auth.lua";
    let tree = match version {
        Release::Deb12 => {
            require_program("prosody", "prosody");
            require_program("prosodyctl", "prosody");
            assert!(
                Path::new("/").join(log_auth).is_file(),
                "mod_log_auth is missing: install prosody-modules (test.sh does)"
            );
            None
        }
        Release::Deb13 => Some(trixie_root(&[
            "usr/bin/prosody",
            "usr/bin/prosodyctl",
            log_auth,
        ])),
    };
    let tree_arg = tree.map(|t| t.into_os_string()).unwrap_or_default();
    let dir = test_dir("prosody");
    fs::write(dir.path().join("client.py"), CLIENT_PY).unwrap();
    let shown = [
        ("prosody (register.out)", "register.out"),
        ("prosody (prosody.out)", "prosody.out"),
        ("log", "prosody.log"),
    ];
    let script = format!("{PRIVATE_SYSLOG_SH}{TRIXIE_SH}{SCRIPT}");
    run_script_ok("prosody", dir.path(), &script, &[&tree_arg], &shown);
    let read = |name: &str| fs::read_to_string(dir.path().join(name)).unwrap_or_default();
    let own = dir.path().join("prosody.log");
    let sys = dir.path().join("syslog");

    // the release under test
    let release = match version {
        Release::Deb12 => "0.12.3",
        Release::Deb13 => "13.0.1",
    };
    assert!(
        read("prosody.log").contains(&format!("Hello and welcome to Prosody version {release}\n")),
        "{version:?}: not Prosody {release}:\n{}",
        read("prosody.log")
    );

    // what the clients got
    let mut results: Vec<String> = read("results").lines().map(str::to_string).collect();
    results.sort();
    let want_results: Vec<String> = [
        "heavy-error closed",
        "heavy-unknown not-authorized",
        "heavy-user1 malformed-request",
        "heavy-user2 malformed-request",
        "heavy-user3 not-authorized",
        "heavy-wrong1 not-authorized",
        "heavy-wrong2 not-authorized",
        "legit-bosh success",
        "legit-c2s success",
        "other-bosh not-authorized",
        "v6-wrong not-authorized",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    assert_eq!(
        results,
        want_results,
        "client: {}\nlog:\n{}",
        read("client.err"),
        read("prosody.log")
    );

    let want: BTreeMap<&str, Vec<&str>> = [
        ("198.51.100.9", vec!["auth-failed"; 6]),
        ("203.0.113.77", vec!["auth-failed"]),
        ("2001:db8:77::7", vec!["auth-failed"]),
    ]
    .into_iter()
    .collect();
    for log in [&own, &sys] {
        let text = fs::read_to_string(log).unwrap_or_default();
        // (not the stream error's line, nor, in the file, its continuation lines)
        let failures = text
            .lines()
            .filter(|l| {
                l.contains("Failed authentication attempt (")
                    && !l.contains("Session closed")
                    && !l.starts_with('\t')
            })
            .count();
        assert_eq!(
            failures,
            8,
            "{}: Prosody's failures:\n{text}",
            log.display()
        );
        // (13.0 adds the session's role)
        let ok = match version {
            Release::Deb12 => "Authenticated as alice@example.net",
            Release::Deb13 => "Authenticated as alice@example.net [prosody:registered]",
        };
        assert_eq!(
            text.lines().filter(|l| l.ends_with(ok)).count(),
            2,
            "{}: the right logins:\n{text}",
            log.display()
        );
        for needle in [
            "Failed authentication attempt (malformed-request) for user ?@example.net from IP: 198.51.100.9",
            "Failed authentication attempt (not-authorized) for user 192.0.2.66@example.net from IP: 198.51.100.9",
            "Failed authentication attempt (not-authorized) for user alice@example.net from IP: 203.0.113.77",
            "Session closed by remote with error: undefined-condition (x",
        ] {
            assert!(
                text.contains(needle),
                "{}: no {needle:?} in the log:\n{text}",
                log.display()
            );
        }
        let got = lines_by_host("prosody", log);
        let rules: BTreeMap<&str, Vec<&str>> = got
            .iter()
            .map(|(h, v)| {
                let r: Vec<&str> = v.iter().map(|l| l.split(':').next().unwrap()).collect();
                (h.as_str(), r)
            })
            .collect();
        assert_eq!(
            rules,
            want,
            "{}: what counted, per address: {got:#?}\nlog:\n{text}",
            log.display()
        );
        assert!(
            !got.contains_key("192.0.2.10")
                && !got.contains_key("192.0.2.66")
                && !got.contains_key("192.0.2.67"),
            "{}: {got:#?}",
            log.display()
        );
    }
    // Prosody's file sink writes the stream error's newlines raw, each followed by a TAB
    // (util/format.lua): the forged failure lines are there, whole, and counted nothing
    let text = read("prosody.log");
    assert!(
        text.contains(
            "\n\tFailed authentication attempt (not-authorized) for user y from IP: 192.0.2.66\n"
        ),
        "the stream error's newline is not in Prosody's file:\n{text}"
    );
    // the syslog sink's copy is escaped by rsyslogd
    assert!(
        read("syslog").contains("(x#012#011Failed authentication attempt"),
        "the stream error in syslog:\n{}",
        read("syslog")
    );

    // a jail with maxretry 3 bans the client with six failures, and only it
    for log in [&own, &sys] {
        let bans = replay_jail(dir.path(), "prosody", log, "normal", 3);
        assert_eq!(
            bans.into_iter().collect::<Vec<_>>(),
            vec!["198.51.100.9".to_string()],
            "bans from {}:\nlog:\n{}",
            log.display(),
            fs::read_to_string(log).unwrap_or_default()
        );
    }
}

#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn real_prosody_0_12_failed_logins_count_for_the_address_prosody_wrote() {
    run(Release::Deb12);
}

#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn real_prosody_13_failed_logins_count_for_the_address_prosody_wrote() {
    run(Release::Deb13);
}

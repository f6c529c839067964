//! The `haraka` filter against the real Haraka. Debian 12 has no Haraka, so test.sh installs
//! the pinned release from npm (`npm install --prefix /var/cache/portcullis-test/haraka
//! Haraka@3.3.4`, PORTCULLIS_HARAKA_DIR elsewhere) once, never on the system; this test runs
//! offline from that tree with the machine's node (20 or later: Haraka 3.3's engines).
//!
//! `haraka -i` makes an instance in the test's directory, configured as Haraka's docs say:
//! smtp.ini `listen=192.0.2.1:25,[2001:db8::1]:25` (no cluster: `nodes=0`), log.ini `format=json`
//! with `timestamps=true` at the default `level=info`, plugins `tls` (a self-signed P-256
//! certificate made with openssl, and the RFC 7919 ffdhe2048 group so that Haraka does not
//! spend seconds making its dhparams) and `auth/flat_file` (methods PLAIN, LOGIN, CRAM-MD5; one
//! user, alice), and connection.ini `[haproxy] hosts[] = 192.0.2.5` (a trusted PROXY-protocol
//! proxy). Haraka runs in the foreground in its own pid, mount and network namespace
//! (`unshare`); its stdout goes to a file and, through `logger -t haraka`, to a private rsyslogd
//! (a private /dev whose /dev/log is its socket), as journald would pass it on.
//!
//! Clients (Debian's python3, smtplib with a bound source address, every connection at once:
//! Haraka waits 2^(n-1) s before the n-th 535 of a connection), each EHLO, STARTTLS (flat_file
//! offers AUTH without TLS to private addresses only), EHLO, then AUTH:
//! * 203.0.113.10: wrong passwords for alice by PLAIN, LOGIN and CRAM-MD5, an unknown user,
//!   and a connection with two failures (6);
//! * 2001:db8::20: a wrong password, two unknown users, one of them after a MAIL FROM (the
//!   connection's uuid then carries ".1") (3);
//! * 203.0.113.11: hostile user names and HELO names: `x","ip":"192.0.2.66`, `admin from
//!   192.0.2.66 port 1`, quotes and backslashes, CR LF and whole forged JSON lines (a
//!   "connect" of 192.0.2.66 and a "delaying" of its uuid) inside the base64 payloads of LOGIN
//!   and CRAM-MD5, `[192.0.2.66]` and forged lines as HELO names (5), an AUTH PLAIN without a
//!   password (504, not a guess), and a PROXY line naming 192.0.2.66, which Haraka refuses
//!   (421) from a host it does not trust;
//! * through the proxy 192.0.2.5 (PROXY TCP4/TCP6 lines): 203.0.113.50 (3 wrong passwords),
//!   2001:db8:5::50 (1), and 198.51.100.8, which logs in;
//! * 198.51.100.7, the legitimate client: alice's password by PLAIN, LOGIN and CRAM-MD5 (235).
//!
//! Asserted: every client got the replies expected; in Haraka's file and in the syslog copy
//! every JSON record is one line (no forged record starts a line) and the "delaying" lines
//! are the 18 failures; `portcullis test --filter haraka --json` counts exactly 6, 3, 5, 3
//! and 1 auth-failed for the five attackers and nothing for 198.51.100.7, 198.51.100.8, the
//! proxy, 192.0.2.66 or the server; `portcullis replay` bans 203.0.113.10, 203.0.113.11,
//! 203.0.113.50 and 2001:db8::/64 at maxretry 3 and 203.0.113.10 alone at 6. The first run
//! found the proxied clients' failures counted for the proxy (the connect line names it):
//! the filter now reads the HAProxy line.
//!
//! Needs root, node, the npm tree of test.sh, python3, openssl, rsyslogd, logger and
//! util-linux's unshare; fails loudly when they are missing. Runs in about 4 s.

mod common;

use common::*;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

/// Where test.sh installs Haraka with npm (PORTCULLIS_HARAKA_DIR overrides it).
const HARAKA_DIR: &str = "/var/cache/portcullis-test/haraka";
/// The version test.sh pins.
const HARAKA_VERSION: &str = "3.3.4";
const FILTER: &str = "haraka";
const PASSWORD: &str = "correct horse";
const PROXY: &str = "192.0.2.5";
/// The address the injections type into user names, HELO names and a PROXY line.
const INJECTED: &str = "192.0.2.66";

/// Run as pid 1 of the new pid, mount and network namespace (bash): every process of the
/// run is in it and dies with it. $1 the test's directory, $2 the haraka script, $3 alice's
/// password.
const SCRIPT: &str = r#"set -u
d="$1"; haraka="$2"
ip link set lo up
for a in 192.0.2.1 192.0.2.5 203.0.113.10 203.0.113.11 198.51.100.7; do ip addr add "$a/32" dev lo || exit 2; done
for a in 2001:db8::1 2001:db8::20; do ip addr add "$a/128" dev lo nodad || exit 2; done
# a private /dev whose /dev/log is a private rsyslogd's socket (common/netns.rs)
private_syslog "$d"
"$haraka" -i "$d/haraka" > "$d/install.out" 2>&1 || { echo "haraka -i failed" >&2; exit 4; }
c="$d/haraka/config"
printf 'listen=192.0.2.1:25,[2001:db8::1]:25\npublic_ip=192.0.2.1\nnodes=0\n' > "$c/smtp.ini"
printf '[main]\nlevel=info\ntimestamps=true\nformat=json\n' > "$c/log.ini"
printf 'tls\nauth/flat_file\n' > "$c/plugins"
printf '[core]\nmethods=PLAIN,LOGIN,CRAM-MD5\n\n[users]\nalice=%s\n' "$3" > "$c/auth_flat_file.ini"
printf 'key=tls_key.pem\ncert=tls_cert.pem\ndhparam=dhparams.pem\n' > "$c/tls.ini"
echo mx.example.net > "$c/me"
sed -i 's/^hosts\[\] =$/hosts[] = 192.0.2.5/' "$c/connection.ini"
grep -qx 'hosts\[\] = 192.0.2.5' "$c/connection.ini" || { echo "no [haproxy] hosts[] in connection.ini" >&2; exit 4; }
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
  -subj /CN=mx.example.net -keyout "$c/tls_key.pem" -out "$c/tls_cert.pem" 2>"$d/openssl.err" || exit 5
openssl genpkey -genparam -algorithm DH -pkeyopt group:ffdhe2048 -out "$c/dhparams.pem" 2>>"$d/openssl.err" || exit 5
"$haraka" -c "$d/haraka" 2>"$d/haraka.err" | tee "$d/haraka.log" | logger -t haraka --size 8192 &
up() { grep -q 'Listening on \[2001:db8::1\]:25' "$d/haraka.log" 2>/dev/null && grep -q 'Listening on 192.0.2.1:25' "$d/haraka.log"; }
for _ in $(seq 100); do up && break; sleep 0.1; done
up || { echo "haraka did not start" >&2; exit 6; }
timeout 30 python3 "$d/client.py" 192.0.2.1 2001:db8::1 "$d/clients.json" "$d/clients.out" 2>"$d/client.err" || exit 7
# every connection's disconnect line, in both logs
n=$(grep -c '"message":"connect"' "$d/haraka.log")
for _ in $(seq 100); do
  [ "$(grep -c '"message":"disconnect"' "$d/syslog" 2>/dev/null)" -ge "$n" ] && break
  sleep 0.1
done
exit 0
"#;

/// The clients (python3): every connection of DIR/clients.json in a thread of its own, all at
/// once; DIR/clients.out gets, per connection, its source and the reply codes of its AUTH
/// commands (and the greeting after a PROXY line; the EHLO reply when it is not 250).
const CLIENT_PY: &str = r#"import base64, hashlib, hmac, json, smtplib, socket, ssl, sys, threading

SERVER_V4, SERVER_V6, IN, OUT = sys.argv[1:5]
CTX = ssl.create_default_context()
CTX.check_hostname = False
CTX.verify_mode = ssl.CERT_NONE


def b64(s):
    return base64.b64encode(s.encode()).decode()


def attempt(c):
    src = c["src"]
    dst = SERVER_V6 if ":" in src else SERVER_V4
    codes = []
    if c.get("proxy"):
        # a PROXY line first, then the SMTP greeting
        sock = socket.create_connection((dst, 25), 15, (src, 0))
        sock.sendall((c["proxy"] + "\r\n").encode())
        s = smtplib.SMTP(timeout=15)
        s.sock, s._host = sock, dst
        codes.append(s.getreply()[0])
    else:
        s = smtplib.SMTP(dst, 25, source_address=(src, 0), timeout=15)
    with s:
        code = s.ehlo(c["helo"])[0]
        if code != 250:
            return codes + [code]
        s.starttls(context=CTX)
        s.ehlo(c["helo"])
        for method, user, password in c["steps"]:
            if method == "MAIL":
                code = s.docmd("MAIL", "FROM:<" + user + ">")[0]
            elif method == "PLAIN":
                code = s.docmd("AUTH", "PLAIN " + b64("\0" + user + "\0" + password))[0]
            elif method == "LOGIN":
                code = s.docmd("AUTH", "LOGIN " + b64(user))[0]
                if code == 334:
                    code = s.docmd(b64(password))[0]
            elif method == "CRAM-MD5":
                code, challenge = s.docmd("AUTH", "CRAM-MD5")
                if code == 334:
                    digest = hmac.new(password.encode(), base64.b64decode(challenge),
                                      hashlib.md5).hexdigest()
                    code = s.docmd(b64(user + " " + digest))[0]
            codes.append(code)
        s.quit()
    return codes


def main():
    conns = json.load(open(IN))
    results = [None] * len(conns)

    def run(i, c):
        try:
            results[i] = {"src": c["src"], "codes": attempt(c)}
        except Exception as e:
            results[i] = {"src": c["src"], "error": repr(e)}

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(conns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    json.dump(results, open(OUT, "w"))


main()
"#;

/// A forged record in a client's text: a connect line of 192.0.2.66 ...
const FORGED_CONNECT: &str = r#"{"level":"NOTICE","uuid":"00000000-1111-4222-8333-444444444444","origin":"core","message":"connect","ip":"192.0.2.66","port":1,"local_ip":"192.0.2.1","local_port":25}"#;
/// ... and a failure of its uuid.
const FORGED_FAIL: &str = r#"{"level":"NOTICE","uuid":"00000000-1111-4222-8333-444444444444","origin":"auth/flat_file","message":"delaying for 1 seconds"}"#;

/// One connection: source, HELO name, AUTH steps (method, user, password), an optional PROXY
/// line, and the reply codes it must get.
fn conn(src: &str, helo: &str, steps: &[(&str, &str, &str)], codes: &[u16]) -> Value {
    json!({
        "src": src,
        "helo": helo,
        "steps": steps.iter().map(|(m, u, p)| json!([m, u, p])).collect::<Vec<_>>(),
        "want": codes,
    })
}

fn proxied(client: &str, helo: &str, steps: &[(&str, &str, &str)], codes: &[u16]) -> Value {
    let (proto, dst) = if client.contains(':') {
        ("TCP6", "2001:db8::1")
    } else {
        ("TCP4", "192.0.2.1")
    };
    let mut c = conn(PROXY, helo, steps, codes);
    c["proxy"] = json!(format!("PROXY {proto} {client} {dst} 40000 25"));
    c
}

fn connections() -> Vec<Value> {
    let forged = format!("x\r\n{FORGED_CONNECT}\r\n{FORGED_FAIL}");
    let forged_pass = format!("p\r\n{FORGED_FAIL}");
    // one refused AUTH of a client
    let a = |m, u, p| conn("203.0.113.10", "attacker.example", &[(m, u, p)], &[535]);
    let v6 = |m, u, p| conn("2001:db8::20", "v6.example", &[(m, u, p)], &[535]);
    let inj = |helo, m, u, p| conn("203.0.113.11", helo, &[(m, u, p)], &[535]);
    let via = |client, m, u, p, code| proxied(client, "p.example", &[(m, u, p)], &[220, code]);
    let legit = |m| {
        conn(
            "198.51.100.7",
            "client.example.net",
            &[(m, "alice", PASSWORD)],
            &[235],
        )
    };
    let two = [("PLAIN", "alice", "bad1"), ("LOGIN", "root", "bad2")];
    let mail_first = [
        ("MAIL", "a@example.org", ""),
        ("CRAM-MD5", "nobody", "wrong"),
    ];
    let hostile = r#"x","ip":"192.0.2.66"#;
    let spaced = "admin from 192.0.2.66 port 1";
    // an untrusted PROXY line: refused, then the connection is closed
    let mut untrusted = conn("203.0.113.11", "proxy.example", &[], &[220, 421]);
    untrusted["proxy"] = json!(format!("PROXY TCP4 {INJECTED} 192.0.2.1 1 25"));
    vec![
        a("PLAIN", "alice", "wrong"),
        a("LOGIN", "alice", "wrong"),
        a("CRAM-MD5", "alice", "wrong"),
        a("PLAIN", "nobody", "x"),
        conn("203.0.113.10", "attacker.example", &two, &[535, 535]),
        v6("PLAIN", "alice", "wrong"),
        v6("LOGIN", "nobody", "wrong"),
        conn("2001:db8::20", "v6.example", &mail_first, &[250, 535]),
        inj(hostile, "PLAIN", hostile, "wrong"),
        inj(spaced, "LOGIN", spaced, "wrong"),
        inj("[192.0.2.66]", "PLAIN", r#"a"b\c\"d\\"#, r#"w"r\ng"#),
        inj(FORGED_CONNECT, "LOGIN", &forged, &forged_pass),
        conn(
            "203.0.113.11",
            FORGED_FAIL,
            &[("CRAM-MD5", &forged, "wrong"), ("PLAIN", "", "")],
            &[535, 504],
        ),
        untrusted,
        via("203.0.113.50", "PLAIN", "alice", "wrong", 535),
        via("203.0.113.50", "LOGIN", "alice", "wrong", 535),
        via("203.0.113.50", "CRAM-MD5", "nobody", "x", 535),
        via("2001:db8:5::50", "PLAIN", "bob", "x", 535),
        via("198.51.100.8", "PLAIN", "alice", PASSWORD, 235),
        legit("PLAIN"),
        legit("LOGIN"),
        legit("CRAM-MD5"),
    ]
}

/// The npm tree of test.sh, with the pinned Haraka in it; panics (never skips) when missing.
fn haraka_tree() -> PathBuf {
    let root = PathBuf::from(std::env::var("PORTCULLIS_HARAKA_DIR").unwrap_or(HARAKA_DIR.into()));
    let bin = root.join("node_modules/.bin/haraka");
    let pkg = root.join("node_modules/Haraka/package.json");
    let version = fs::read_to_string(&pkg)
        .ok()
        .and_then(|t| serde_json::from_str::<Value>(&t).ok())
        .and_then(|v| v["version"].as_str().map(str::to_string));
    assert!(
        bin.is_file() && version.as_deref() == Some(HARAKA_VERSION),
        "Haraka {HARAKA_VERSION} is missing from {} (found {version:?}): run test.sh (it runs \
         `npm install --prefix {HARAKA_DIR} Haraka@{HARAKA_VERSION}` once)",
        root.display()
    );
    bin
}

/// The lines of a log that are Haraka's JSON records (after the syslog prefix and the
/// timestamp): each must be one whole JSON object.
fn records(log: &Path) -> Vec<Value> {
    let text = fs::read_to_string(log).unwrap_or_default();
    let mut out = Vec::new();
    for line in text.lines() {
        let Some(i) = line.find("Z {") else { continue };
        let rec = &line[i + 2..];
        let v: Value = serde_json::from_str(rec)
            .unwrap_or_else(|e| panic!("{}: not one JSON record ({e}): {line}", log.display()));
        out.push(v);
    }
    out
}

#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn real_haraka_failed_auth_counts_for_the_client() {
    require_root();
    require_program("node", "nodejs");
    require_program("python3", "python3");
    require_program("openssl", "openssl");
    require_program("rsyslogd", "rsyslog");
    require_program("logger", "bsdutils");
    require_program("unshare", "util-linux");
    require_program("ip", "iproute2");
    let haraka = haraka_tree();
    let dir = test_dir("haraka");
    let conns = connections();
    fs::write(dir.path().join("client.py"), CLIENT_PY).unwrap();
    fs::write(
        dir.path().join("clients.json"),
        serde_json::to_string(&conns).unwrap(),
    )
    .unwrap();
    run_script_ok(
        "Haraka",
        dir.path(),
        &format!("{PRIVATE_SYSLOG_SH}{SCRIPT}"),
        &[haraka.as_os_str(), PASSWORD.as_ref()],
        &[
            ("haraka stderr", "haraka.err"),
            ("clients", "client.err"),
            ("log", "haraka.log"),
        ],
    );
    let read = |name: &str| fs::read_to_string(dir.path().join(name)).unwrap_or_default();
    let own = dir.path().join("haraka.log");
    let sys = dir.path().join("syslog");

    // every client got the replies expected
    let got: Vec<Value> = serde_json::from_str(&read("clients.out"))
        .unwrap_or_else(|e| panic!("clients.out ({e}): {}", read("clients.out")));
    for (c, g) in conns.iter().zip(&got) {
        assert_eq!(
            g["codes"],
            c["want"],
            "{c}: {g}\nlog:\n{}",
            read("haraka.log")
        );
    }

    let want = want_rules(&[
        ("203.0.113.10", &[("auth-failed", 6)]),
        ("2001:db8::20", &[("auth-failed", 3)]),
        ("203.0.113.11", &[("auth-failed", 5)]),
        ("203.0.113.50", &[("auth-failed", 3)]),
        ("2001:db8:5::50", &[("auth-failed", 1)]),
    ]);
    for log in [&own, &sys] {
        let text = fs::read_to_string(log).unwrap_or_default();
        let recs = records(log);
        // one log call, one line: no record a client forged starts a line
        assert!(
            !recs
                .iter()
                .any(|r| r["uuid"] == "00000000-1111-4222-8333-444444444444"),
            "{}: a forged record stands as a line:\n{text}",
            log.display()
        );
        let failures = recs
            .iter()
            .filter(|r| {
                r["message"]
                    .as_str()
                    .is_some_and(|m| m.starts_with("delaying for "))
            })
            .count();
        assert_eq!(
            failures,
            18,
            "{}: Haraka's failure lines:\n{text}",
            log.display()
        );
        // the hostile names are there, in escaped JSON strings
        assert!(
            text.contains(r#""helo":"x\",\"ip\":\"192.0.2.66""#),
            "{}: the hostile HELO name is not in the log:\n{text}",
            log.display()
        );
        assert!(
            text.contains(r#""message":"HAProxy","proto":"TCP6","src_ip":"2001:db8:5::50:40000""#),
            "{}: no HAProxy line of the proxied IPv6 client:\n{text}",
            log.display()
        );
        // a failure after MAIL FROM carries the transaction's uuid (".1")
        assert!(
            recs.iter().any(|r| r["origin"] == "auth/flat_file"
                && r["uuid"].as_str().is_some_and(|u| u.ends_with(".1"))
                && r["message"] == "delaying for 1 seconds"),
            "{}: no failure with a transaction uuid:\n{text}",
            log.display()
        );
        let got = lines_by_host(FILTER, log);
        assert_eq!(
            owned_rules_of(&got),
            want,
            "{}: what counted, per address: {got:#?}\nlog:\n{text}",
            log.display()
        );
        for never in ["198.51.100.7", "198.51.100.8", PROXY, INJECTED, "192.0.2.1"] {
            assert!(
                !got.contains_key(never),
                "{}: {never}: {got:#?}",
                log.display()
            );
        }
    }

    // replay: maxretry 3 bans the four attackers of 3 and more (the IPv6 one by its /64), 6
    // the one of six
    let bans = |n: u32| -> BTreeSet<String> { replay_jail(dir.path(), FILTER, &sys, "normal", n) };
    let at3: BTreeSet<String> = [
        "203.0.113.10",
        "203.0.113.11",
        "203.0.113.50",
        "2001:db8::20",
    ]
    .iter()
    .map(|a| ban_of(a))
    .collect();
    assert_eq!(bans(3), at3, "bans at maxretry 3; log:\n{}", read("syslog"));
    assert_eq!(
        bans(6),
        BTreeSet::from(["203.0.113.10".to_string()]),
        "bans at maxretry 6"
    );
}

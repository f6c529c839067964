//! The `inspircd` filter against the real InspIRCd. Debian 12's inspircd (3.15) runs in the
//! foreground (`--nofork --runasroot`) in its own pid and network namespace (`unshare`),
//! with client listeners on 192.0.2.6 and 2001:db8::6, two oper accounts (admin from
//! anywhere; local only from 192.0.2.20) and its own log file (`<log method="file"
//! type="* -USERINPUT -USEROUTPUT" level="default">`, the filter's log). Host name lookups
//! are on (the default), against a private named on 127.0.0.1 that gives 203.0.113.77 a
//! forward-confirmed name (evil.example.net) and 198.51.100.9 a PTR of "192.0.2.66".
//!
//! Clients (python3 sockets speaking IRC, bound to their source address): 198.51.100.9
//! fails four /OPER logins — a wrong password, an account that does not exist named
//! `x!y@192.0.2.66`, a login `'192.0.2.66'`, and the right password of the account it may
//! not use from there — with an ident, real name and first nick holding 192.0.2.66 (the
//! nick is refused); 2001:db8:77::7 fails one over IPv6; 203.0.113.77, whose host name
//! resolves, fails one; 192.0.2.20 opers up with the right password.
//!
//! `portcullis test --filter inspircd --json` on InspIRCd's file must count each failure
//! whose real host is the address once, for that address (never 192.0.2.66), nothing for
//! the operator, and nothing for 203.0.113.77, logged by host name (a host name is never
//! banned: documented in the filter); `portcullis replay` with `maxretry = 3` bans
//! 198.51.100.9 alone. The first run of this test found that InspIRCd 3 (Debian 12) writes
//! "OPER: WARNING! Failed oper attempt by NICK!IDENT@HOST ...", which the filter (written
//! for InspIRCd 4) did not read: rule oper-failed-v3.
//!
//! Needs root, inspircd, named (bind9), python3 and util-linux's unshare (test.sh installs
//! them); fails loudly when they are missing. Runs in about 8 s.

mod common;

use common::*;
use std::collections::BTreeMap;
use std::fs;

/// Run as pid 1 of the new pid and network namespace (bash): every process of the run is
/// in it and dies with it; $1 is the test's directory.
const SCRIPT: &str = r#"set -u
d="$1"
ip link set lo up
for a in 192.0.2.6 192.0.2.20 198.51.100.9 203.0.113.77; do ip addr add "$a/32" dev lo || exit 2; done
for a in 2001:db8::6 2001:db8:77::7; do ip addr add "$a/128" dev lo nodad || exit 2; done
# the DNS InspIRCd asks: a name for 203.0.113.77 (PTR and A agree), an address-looking
# PTR for 198.51.100.9
cat > "$d/example.zone" <<Z
\$TTL 300
@ IN SOA ns.example.net. hostmaster.example.net. 1 3600 600 86400 300
@ IN NS ns.example.net.
ns IN A 127.0.0.1
evil IN A 203.0.113.77
Z
cat > "$d/rev203.zone" <<Z
\$TTL 300
@ IN SOA ns.example.net. hostmaster.example.net. 1 3600 600 86400 300
@ IN NS ns.example.net.
77 IN PTR evil.example.net.
Z
cat > "$d/rev198.zone" <<Z
\$TTL 300
@ IN SOA ns.example.net. hostmaster.example.net. 1 3600 600 86400 300
@ IN NS ns.example.net.
9 IN PTR 192.0.2.66.
Z
cat > "$d/named.conf" <<C
options {
  directory "$d";
  pid-file "$d/named.pid";
  session-keyfile "$d/session.key";
  listen-on port 53 { 127.0.0.1; };
  listen-on-v6 { none; };
  recursion no;
  dnssec-validation no;
};
controls { };
logging { channel own { file "$d/named.log"; severity info; }; category default { own; }; };
zone "example.net" { type primary; file "$d/example.zone"; };
zone "113.0.203.in-addr.arpa" { type primary; file "$d/rev203.zone"; };
zone "100.51.198.in-addr.arpa" { type primary; file "$d/rev198.zone"; };
C
named -f -u root -c "$d/named.conf" 2>"$d/named.err" &
for _ in $(seq 100); do grep -qx "running" "$d/named.log" 2>/dev/null && break; sleep 0.1; done
grep -qx "running" "$d/named.log" 2>/dev/null || { echo "named did not start" >&2; exit 4; }
cat > "$d/inspircd.conf" <<C
<server name="irc.example.net" description="test" network="Test">
<admin name="a" nick="a" email="a@example.net">
<bind address="192.0.2.6" port="6667" type="clients">
<bind address="2001:db8::6" port="6667" type="clients">
<connect allow="*" timeout="20" pingfreq="120" sendq="262144" recvq="8192" localmax="100" globalmax="100">
<class name="Shutdown" commands="DIE RESTART">
<type name="NetAdmin" classes="Shutdown">
<oper name="admin" password="right-pass-1" host="*@*" type="NetAdmin">
<oper name="local" password="right-pass-2" host="*@192.0.2.20" type="NetAdmin">
<dns server="127.0.0.1" timeout="2">
<log method="file" type="* -USERINPUT -USEROUTPUT" level="default" flush="1" target="$d/inspircd.log">
<pid file="$d/inspircd.pid">
C
inspircd --nofork --runasroot --config "$d/inspircd.conf" > "$d/inspircd.out" 2>&1 &
for _ in $(seq 100); do grep -q "Startup complete" "$d/inspircd.log" 2>/dev/null && break; sleep 0.1; done
grep -q "Startup complete" "$d/inspircd.log" 2>/dev/null || { echo "inspircd did not start" >&2; exit 5; }
timeout 40 python3 - "$d" > "$d/clients" 2>&1 <<'P'
import socket, sys, time

def irc(src, nicks, user, real, oper):
    """One client from src: registers (trying each nick), sends OPER, returns the answer."""
    v6 = ":" in src
    s = socket.create_connection(("2001:db8::6" if v6 else "192.0.2.6", 6667),
                                 timeout=8, source_address=(src, 0))
    buf = b""
    def until(codes):
        nonlocal buf
        end = time.time() + 8
        while time.time() < end:
            for c in codes:
                if (" %s " % c).encode() in buf:
                    return c
            d = s.recv(4096)
            if not d:
                break
            buf += d
        return None
    s.sendall(("USER %s 0 * :%s\r\n" % (user, real)).encode())
    for n in nicks:
        s.sendall(("NICK %s\r\n" % n).encode())
        if until(["001", "432"]) == "001":
            break
        buf = buf.replace(b" 432 ", b" 432-seen ")
    until(["376", "422"])
    s.sendall(("OPER %s\r\n" % oper).encode())
    got = until(["381", "491"])
    s.close()
    print(src, oper.split(" ")[0], got, flush=True)

irc("198.51.100.9", ["guess"], "y.192.0.2.66", "x!y@192.0.2.66 [192.0.2.66]", "admin wrong-1")
irc("198.51.100.9", ["x!y@192.0.2.66", "guess2"], "192.0.2.66", "192.0.2.66", "x!y@192.0.2.66 wrong-2")
irc("198.51.100.9", ["guess3"], "z", "z", "'192.0.2.66' :wrong 3 using login 'a'")
irc("198.51.100.9", ["guess4"], "w", "w", "local right-pass-2")
irc("2001:db8:77::7", ["six"], "six", "six", "admin wrong-5")
irc("203.0.113.77", ["named"], "named", "named", "admin wrong-6")
irc("192.0.2.20", ["good"], "good", "good", "admin right-pass-1")
P
for _ in $(seq 50); do
  [ "$(grep -c "OPER: " "$d/inspircd.log" 2>/dev/null)" -ge 7 ] && break
  sleep 0.1
done
kill %2
wait %2
kill %1
wait
"#;

#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn real_inspircd_oper_failures_count_for_the_client_address() {
    require_root();
    require_program("inspircd", "inspircd");
    require_program("named", "bind9");
    require_program("python3", "python3");
    require_program("unshare", "util-linux");
    let dir = test_dir("inspircd");
    let shown = [
        ("inspircd", "inspircd.out"),
        ("named", "named.err"),
        ("log", "inspircd.log"),
    ];
    run_script_ok("inspircd", dir.path(), SCRIPT, &[], &shown);
    let read = |name: &str| fs::read_to_string(dir.path().join(name)).unwrap_or_default();
    let log = dir.path().join("inspircd.log");
    let text = read("inspircd.log");

    // the clients' own view: six refusals (491), one operator (381)
    let clients = read("clients");
    assert_eq!(clients.matches(" 491").count(), 6, "clients:\n{clients}");
    assert_eq!(clients.matches(" 381").count(), 1, "clients:\n{clients}");

    // InspIRCd's view: six failures, the resolved client by its name, the others by address
    let failures: Vec<&str> = text
        .lines()
        .filter(|l| l.contains(" OPER: WARNING! Failed oper attempt by "))
        .collect();
    assert_eq!(failures.len(), 6, "InspIRCd's failures:\n{text}");
    assert!(
        text.contains("Failed oper attempt by named!named@evil.example.net using login 'admin'"),
        "the resolved client is not logged by its name:\n{text}"
    );
    assert!(
        text.contains("by guess2!192.0.2.66@198.51.100.9 using login 'x!y@192.0.2.66'"),
        "the hostile ident and login are not in the log as expected:\n{text}"
    );

    let mut got: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (host, rule, line) in counted_matches("inspircd", &log) {
        got.entry(host).or_default().push(format!("{rule}: {line}"));
    }
    let rules: BTreeMap<&str, Vec<&str>> = got
        .iter()
        .map(|(h, v)| {
            (
                h.as_str(),
                v.iter().map(|l| l.split(':').next().unwrap()).collect(),
            )
        })
        .collect();
    let want: BTreeMap<&str, Vec<&str>> = [
        ("198.51.100.9", vec!["oper-failed-v3"; 4]),
        ("2001:db8:77::7", vec!["oper-failed-v3"]),
    ]
    .into_iter()
    .collect();
    assert_eq!(
        rules, want,
        "what counted, per address: {got:#?}\nlog:\n{text}"
    );
    let users: Vec<String> = test_json("inspircd", &log)
        .iter()
        .filter(|v| v["matched"].as_bool() == Some(true))
        .map(|v| v["user"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(
        users,
        ["admin", "x!y@192.0.2.66", "'192.0.2.66'", "local", "admin"],
        "log:\n{text}"
    );

    // a jail with maxretry 3 bans the client with four failures, and only it
    let bans = replay_jail(dir.path(), "inspircd", &log, "normal", 3);
    assert_eq!(
        bans.into_iter().collect::<Vec<_>>(),
        vec![ban_of("198.51.100.9")],
        "bans:\nlog:\n{text}"
    );
}

//! The `inspircd` filter against the real InspIRCd, two releases with one table of
//! scenarios: Debian 12's inspircd (3.15, installed on this machine) and Debian 13's (4.7.0,
//! run with chroot in test.sh's Debian 13 tree, common/real.rs `trixie_root`, an overlay of it
//! mounted by `trixie_mount` on a private /dev). It runs in the foreground (`--nofork
//! --runasroot`) in its own pid, mount and network namespace (`unshare`), with client
//! listeners on 192.0.2.6 and 2001:db8::6, two oper accounts (admin from anywhere; local only
//! from 192.0.2.20) and its own log file (`<log method="file" type="* -USERINPUT
//! -USEROUTPUT" level="default">`, the filter's log). Host name lookups are on (the default),
//! against a private named (the machine's) on 127.0.0.1 that gives 203.0.113.77 a
//! forward-confirmed name (evil.example.net) and 198.51.100.9 a PTR of "192.0.2.66".
//!
//! Clients (the machine's python3, sockets speaking IRC, bound to their source address; the
//! table ATTEMPTS): 198.51.100.9 fails four /OPER logins — a wrong password, an account that
//! does not exist named `x!y@192.0.2.66`, a login `'192.0.2.66'`, and the right password of
//! the account it may not use from there — with an ident, real name and first nick holding
//! 192.0.2.66 (the nick is refused); 2001:db8:77::7 fails one over IPv6; 203.0.113.77, whose
//! host name resolves, fails one; 192.0.2.20 opers up with the right password.
//!
//! `portcullis test --filter inspircd --json` on InspIRCd's file must count each failure as
//! the table says, for the client's address (never 192.0.2.66), nothing for the operator;
//! InspIRCd 3 logs the resolved client by its host name alone (a host name is never banned:
//! documented in the filter: nothing counts), InspIRCd 4 writes its address too (it counts);
//! `portcullis replay` with `maxretry = 3` bans 198.51.100.9 alone. The first run of this test
//! found that InspIRCd 3 (Debian 12) writes "OPER: WARNING! Failed oper attempt by
//! NICK!IDENT@HOST ...", which the filter (written for InspIRCd 4) did not read: rule
//! oper-failed-v3. The first run against 4.7.0 showed its lines are the ones the filter was
//! written from (rule oper-failed).
//!
//! Needs root, inspircd (Debian 12) or the Debian 13 tree (test.sh), named (bind9), python3,
//! chroot and util-linux's unshare (test.sh installs them); fails loudly when they are
//! missing. Each release's run takes about 8 s.

mod common;

use common::*;
use std::collections::BTreeMap;
use std::fs;

/// Run as pid 1 of the new pid, mount and network namespace (bash): every process of the
/// run is in it and dies with it; $1 is the test's directory, $2 Debian 13's tree (empty:
/// Debian 12's inspircd, the machine's). (After [`PRIVATE_SYSLOG_SH`] and [`TRIXIE_SH`].)
const SCRIPT: &str = r#"set -u
d="$1"; tree="$2"
ip link set lo up
for a in 192.0.2.6 192.0.2.20 198.51.100.9 203.0.113.77; do ip addr add "$a/32" dev lo || exit 2; done
for a in 2001:db8::6 2001:db8:77::7; do ip addr add "$a/128" dev lo nodad || exit 2; done
# the inspircd to run: the machine's, or Debian 13's in a private overlay of its tree on a
# private /dev (common/real.rs trixie_mount: $d bound at the same path inside)
if [ -n "$tree" ]; then
  private_dev
  trixie_mount "$tree" "$d/root" "$d/trixie" || exit 4
  ircd=(chroot "$d/root" /usr/sbin/inspircd)
else
  ircd=(inspircd)
fi
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
"${ircd[@]}" --nofork --runasroot --config "$d/inspircd.conf" > "$d/inspircd.out" 2>&1 &
for _ in $(seq 100); do grep -q "Startup complete" "$d/inspircd.log" 2>/dev/null && break; sleep 0.1; done
grep -q "Startup complete" "$d/inspircd.log" 2>/dev/null || { echo "inspircd did not start" >&2; exit 5; }
timeout 40 python3 - "$d/attempts" > "$d/clients" 2>&1 <<'P'
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

# one attempt a line: source, nicks (space-separated), ident, real name, OPER's parameters
for line in open(sys.argv[1]):
    src, nicks, user, real, oper = line.rstrip("\n").split("\t")
    irc(src, nicks.split(" "), user, real, oper)
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

// The inspircd under test: Debian 12's (the machine's, 3.15) or Debian 13's (the trixie
// tree, 4.7.0, run with chroot).

/// One client's /OPER attempt and what it must count, on InspIRCd 3 and on 4 (None: nothing;
/// user: the account name the filter reads).
struct Attempt {
    src: &'static str,
    nicks: &'static str,
    ident: &'static str,
    real: &'static str,
    oper: &'static str,
    v3: Option<&'static str>,
    v4: Option<&'static str>,
    user: &'static str,
}

const V3: Option<&str> = Some("oper-failed-v3");
const V4: Option<&str> = Some("oper-failed");

/// Every attempt, in order (the last one succeeds).
const ATTEMPTS: &[Attempt] = &[
    // a wrong password; the ident and real name hold another address
    Attempt {
        src: "198.51.100.9",
        nicks: "guess",
        ident: "y.192.0.2.66",
        real: "x!y@192.0.2.66 [192.0.2.66]",
        oper: "admin wrong-1",
        v3: V3,
        v4: V4,
        user: "admin",
    },
    // an account that does not exist, named like a nick!ident@host (the nick is refused)
    Attempt {
        src: "198.51.100.9",
        nicks: "x!y@192.0.2.66 guess2",
        ident: "192.0.2.66",
        real: "192.0.2.66",
        oper: "x!y@192.0.2.66 wrong-2",
        v3: V3,
        v4: V4,
        user: "x!y@192.0.2.66",
    },
    // a quoted account name, a password that looks like the end of InspIRCd 3's line
    Attempt {
        src: "198.51.100.9",
        nicks: "guess3",
        ident: "z",
        real: "z",
        oper: "'192.0.2.66' :wrong 3 using login 'a'",
        v3: V3,
        v4: V4,
        user: "'192.0.2.66'",
    },
    // the right password of an account it may not use from there
    Attempt {
        src: "198.51.100.9",
        nicks: "guess4",
        ident: "w",
        real: "w",
        oper: "local right-pass-2",
        v3: V3,
        v4: V4,
        user: "local",
    },
    // IPv6
    Attempt {
        src: "2001:db8:77::7",
        nicks: "six",
        ident: "six",
        real: "six",
        oper: "admin wrong-5",
        v3: V3,
        v4: V4,
        user: "admin",
    },
    // a client whose host name resolves: InspIRCd 3 writes the name alone, 4 its address too
    Attempt {
        src: "203.0.113.77",
        nicks: "named",
        ident: "named",
        real: "named",
        oper: "admin wrong-6",
        v3: None,
        v4: V4,
        user: "admin",
    },
    // the operator
    Attempt {
        src: "192.0.2.20",
        nicks: "good",
        ident: "good",
        real: "good",
        oper: "admin right-pass-1",
        v3: None,
        v4: None,
        user: "",
    },
];

/// Runs every attempt against `version`'s InspIRCd and checks what it wrote and what the
/// filter counts of it.
fn run(version: Release) {
    require_root();
    require_program("named", "bind9");
    require_program("python3", "python3");
    require_program("unshare", "util-linux");
    let v4 = version == Release::Deb13;
    let tree = if v4 {
        require_program("chroot", "coreutils");
        trixie_root(&["usr/sbin/inspircd", "usr/lib/inspircd/modules/core_oper.so"])
            .display()
            .to_string()
    } else {
        require_program("inspircd", "inspircd");
        String::new()
    };
    let dir = test_dir(if v4 { "inspircd4" } else { "inspircd" });
    let attempts: String = ATTEMPTS
        .iter()
        .map(|a| {
            format!(
                "{}\t{}\t{}\t{}\t{}\n",
                a.src, a.nicks, a.ident, a.real, a.oper
            )
        })
        .collect();
    fs::write(dir.path().join("attempts"), attempts).unwrap();
    let shown = [
        ("inspircd", "inspircd.out"),
        ("named", "named.err"),
        ("clients", "clients"),
        ("log", "inspircd.log"),
    ];
    let script = format!("{PRIVATE_SYSLOG_SH}{TRIXIE_SH}{SCRIPT}");
    run_script_ok("inspircd", dir.path(), &script, &[tree.as_ref()], &shown);
    let read = |name: &str| fs::read_to_string(dir.path().join(name)).unwrap_or_default();
    let log = dir.path().join("inspircd.log");
    let text = read("inspircd.log");

    // the clients' own view: six refusals (491), one operator (381)
    let clients = read("clients");
    assert_eq!(clients.matches(" 491").count(), 6, "clients:\n{clients}");
    assert_eq!(clients.matches(" 381").count(), 1, "clients:\n{clients}");

    // InspIRCd's view: six failures, the resolved client by its name (3: alone), the hostile
    // ident and account name where the format puts them
    let (marker, named, hostile) = if v4 {
        (
            " oper account because ",
            "OPER: named (named@evil.example.net) [203.0.113.77] failed to log into the \
             \x02admin\x02 oper account because they specified the wrong password.",
            "OPER: guess2 (192.0.2.66@198.51.100.9) [198.51.100.9] failed to log into the \
             \x02x!y@192.0.2.66\x02 oper account because no account with that name exists.",
        )
    } else {
        (
            " OPER: WARNING! Failed oper attempt by ",
            "Failed oper attempt by named!named@evil.example.net using login 'admin'",
            "by guess2!192.0.2.66@198.51.100.9 using login 'x!y@192.0.2.66'",
        )
    };
    let failures = text.lines().filter(|l| l.contains(marker)).count();
    assert_eq!(failures, 6, "{version:?}: InspIRCd's failures:\n{text}");
    assert!(text.contains(named), "{version:?}: {named:?}:\n{text}");
    assert!(text.contains(hostile), "{version:?}: {hostile:?}:\n{text}");

    // what counts, per address and rule, and the account names read
    let expected = |a: &Attempt| if v4 { a.v4 } else { a.v3 };
    let mut want: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for a in ATTEMPTS {
        if let Some(rule) = expected(a) {
            want.entry(a.src.to_string())
                .or_default()
                .push(rule.to_string());
        }
    }
    let got = rules_by_host("inspircd", &log);
    assert_eq!(
        got, want,
        "{version:?}: what counted, per address\nlog:\n{text}"
    );
    let users: Vec<String> = test_json("inspircd", &log)
        .iter()
        .filter(|v| v["matched"].as_bool() == Some(true))
        .map(|v| v["user"].as_str().unwrap_or_default().to_string())
        .collect();
    let want_users: Vec<&str> = ATTEMPTS
        .iter()
        .filter(|a| expected(a).is_some())
        .map(|a| a.user)
        .collect();
    assert_eq!(users, want_users, "{version:?}: log:\n{text}");

    // a jail with maxretry 3 bans the client with four failures, and only it
    let bans = replay_jail(dir.path(), "inspircd", &log, "normal", 3);
    assert_eq!(
        bans.into_iter().collect::<Vec<_>>(),
        vec![ban_of("198.51.100.9")],
        "{version:?}: bans:\nlog:\n{text}"
    );
}

#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn real_inspircd_oper_failures_count_for_the_client_address() {
    run(Release::Deb12);
}

#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn real_inspircd4_oper_failures_count_for_the_client_address() {
    run(Release::Deb13);
}

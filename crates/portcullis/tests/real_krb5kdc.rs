//! The `krb5kdc` filter against the real MIT Kerberos KDC, twice: Debian 12's krb5kdc (1.20,
//! the machine's) and Debian 13's (1.21.3, test.sh's trixie tree, run with chroot in a private
//! overlay of it: common/real.rs `trixie_mount`; its database made by the machine's kdb5_util
//! and kadmin.local), the same scenarios and one table of what counts for both. It runs in
//! the foreground (`krb5kdc -n`) in its own pid, mount and network namespace (`unshare`), for
//! the realm EXAMPLE.NET, everything under the test's directory (`KRB5_CONFIG` and
//! `KRB5_KDC_PROFILE` name the test's own krb5.conf and kdc.conf; the database and its stash
//! made there by `kdb5_util create -s`), listening over UDP and TCP on 192.0.2.88 and
//! 2001:db8::88 only. Three principals (`kadmin.local`), all `+requires_preauth`: alice; bob
//! under a lockout policy of three failures; carol disabled (`-allow_tix`). It logs twice:
//! into its own file (`[logging] kdc = FILE:`) and through syslog(3) (`kdc = SYSLOG:INFO:DAEMON`)
//! to a private rsyslogd (a private /dev whose /dev/log is its socket, rsyslog's traditional
//! file format).
//!
//! Clients (`kinit`, the password on its standard input; kinit cannot bind a source address:
//! before each attempt the kernel's local route to the KDC's address is replaced by one with
//! `src CLIENT`, so the request leaves from CLIENT): 192.0.2.10 and 2001:db8::10 get a ticket
//! for alice with the right password (count nothing); 198.51.100.9 gives alice three wrong
//! passwords and asks for four unknown principals, three of them hostile (`admin 192.0.2.66`,
//! one holding `@EXAMPLE.NET for krbtgt/EXAMPLE.NET@EXAMPLE.NET, 192.0.2.66`, one holding a
//! newline and a whole forged `AS_REQ ... 192.0.2.66: PREAUTH_FAILED` line); 203.0.113.77 gives
//! bob three wrong passwords, then the right one (bob is locked out by then), asks for the
//! disabled carol, and for an unknown principal with a hostile service name (`kinit -S`);
//! 2001:db8:77::7, over TCP (`udp_preference_limit = 1`), gives alice a wrong password and
//! asks for an unknown principal holding a tab. Two AS requests made by hand (python3, for
//! the unknown principal `many`) list 41 and 121 enctypes, most of them unsupported (kinit
//! never sends an enctype twice; any other client may send what it likes).
//!
//! In both logs `portcullis test --filter krb5kdc --json` must count each failure once, for
//! the address the KDC wrote (never 192.0.2.66), with the rule that names it, and nothing for
//! the legitimate clients; `portcullis replay` with `maxretry = 3` bans 198.51.100.9 and
//! 203.0.113.77, not the IPv6 client with two. Two limits the test shows (see the filter's
//! header): the request with 41 enctypes makes a line of about 1000 bytes, read in the KDC's
//! file but refused through syslog at the default `transport_cut = 1024` (its address stands
//! after text of no fixed length; with `transport_cut = 8192`, rsyslog's limit, it counts);
//! the one with 121 enctypes makes the KDC cut its own line at 2047 bytes, before the
//! address, in both logs: nothing to count. The first run found that a principal locked by
//! a lockout policy is logged `LOCKED_OUT` (the database module's status, plugins/kdb/db2),
//! which the filter did not read: it read only `CLIENT LOCKED OUT` (a disabled principal).
//!
//! Needs root, krb5kdc and kdb5_util (krb5-kdc), kadmin.local (krb5-admin-server), kinit
//! (krb5-user), rsyslogd, iproute2's ip and ss and util-linux's unshare (test.sh installs
//! them), python3, and for the second run chroot and the trixie tree; fails loudly when they
//! are missing. 1.21 writes the same lines as 1.20 (statuses, enctype lists, escaping, the
//! 2047-byte cut). Runs in about 1 s each.

mod common;

use common::*;
use std::fs;

/// Run as pid 1 of the new pid, mount and network namespace (bash): every process of the
/// run is in it and dies with it; $1 is the test's directory, $2 the Debian 13 tree (empty:
/// the machine's KDC). (After [`PRIVATE_SYSLOG_SH`] and [`TRIXIE_SH`].)
const SCRIPT: &str = r#"set -u
d="$1"; tree="$2"
ip link set lo up
for a in 192.0.2.88 192.0.2.10 198.51.100.9 198.51.100.30 198.51.100.31 203.0.113.77; do
  ip addr add "$a/32" dev lo || exit 2
done
for a in 2001:db8::88 2001:db8::10 2001:db8:77::7; do ip addr add "$a/128" dev lo nodad || exit 2; done
# a private /dev whose /dev/log is a private rsyslogd's socket (common/netns.rs)
private_syslog "$d"
# the KDC to run: the machine's (Debian 12), or Debian 13's in a private overlay of its tree
# (common/real.rs trixie_mount: its /etc, /run and /tmp private, $d at the same path); the
# database is made by the machine's kdb5_util and kadmin.local (the tree has no
# krb5-admin-server; the db2 format is the same)
kdc=(krb5kdc); r=/
if [ -n "$tree" ]; then
  r="$d/root"
  trixie_mount "$tree" "$r" "$d/trixie" || exit 4
  kdc=(chroot "$r" /usr/sbin/krb5kdc)
fi
dpkg-query --admindir="$r/var/lib/dpkg" -W -f '${Version}' krb5-kdc > "$d/version"
mkdir -p "$d/db"
cat > "$d/kdc.conf" <<C
[kdcdefaults]
  kdc_listen = 192.0.2.88:88, [2001:db8::88]:88
  kdc_tcp_listen = 192.0.2.88:88, [2001:db8::88]:88
[realms]
  EXAMPLE.NET = {
    database_name = $d/db/principal
    key_stash_file = $d/db/stash
    acl_file = $d/db/kadm5.acl
  }
[logging]
  kdc = FILE:$d/krb5kdc.log
  kdc = SYSLOG:INFO:DAEMON
  admin_server = FILE:$d/kadmin.log
  default = FILE:$d/default.log
C
cat > "$d/krb5.conf" <<C
[libdefaults]
  default_realm = EXAMPLE.NET
  dns_lookup_kdc = false
  dns_lookup_realm = false
  rdns = false
[realms]
  EXAMPLE.NET = {
    kdc = 192.0.2.88
  }
C
# the IPv6 clients ask over TCP
sed 's/kdc = 192.0.2.88/kdc = [2001:db8::88]\n  udp_preference_limit = 1/' "$d/krb5.conf" > "$d/krb5-6.conf"
export KRB5_CONFIG="$d/krb5.conf" KRB5_KDC_PROFILE="$d/kdc.conf" KRB5CCNAME="FILE:$d/ccache"
{
  kdb5_util create -s -P Master-pw-1 -r EXAMPLE.NET &&
  kadmin.local -q "addpol -maxfailure 3 -failurecountinterval 0 -lockoutduration 0 lockpol" &&
  kadmin.local -q "addprinc -pw Alice-pw-1 +requires_preauth alice" &&
  kadmin.local -q "addprinc -pw Bob-pw-1 +requires_preauth -policy lockpol bob" &&
  kadmin.local -q "addprinc -pw Carol-pw-1 +requires_preauth -allow_tix carol"
} > "$d/kdb5.out" 2>&1 || { cat "$d/kdb5.out" >&2; exit 4; }
"${kdc[@]}" -n > "$d/krb5kdc.out" 2>&1 &
for _ in $(seq 100); do
  ss -Hlun | grep -q '192.0.2.88:88' && ss -Hltn | grep -q '\[2001:db8::88\]:88' && break
  sleep 0.1
done
ss -Hlun | grep -q '192.0.2.88:88' || { echo "krb5kdc did not start" >&2; cat "$d/krb5kdc.out" >&2; exit 5; }
# k SRC CONF PASSWORD KINIT-ARGS...: one kinit from SRC (the kernel's local route to the KDC's
# address replaced by one whose preferred source is SRC); its outcome appended to "results"
k() {
  src=$1; conf=$2; pw=$3; shift 3
  if [ "${src#*:}" != "$src" ]; then
    ip -6 route del local 2001:db8::88 dev lo table local metric 0 2>/dev/null
    ip -6 route replace local 2001:db8::88 dev lo table local src "$src" || exit 7
  else
    ip route replace local 192.0.2.88 dev lo table local src "$src" || exit 7
  fi
  rm -f "$d/ccache"
  printf '%s\n' "$pw" | KRB5_CONFIG="$d/$conf" timeout 10 kinit "$@" > "$d/kinit.out" 2>&1
  echo "$src rc=$? $(tr '\n' ' ' < "$d/kinit.out")" >> "$d/results"
}
k 192.0.2.10 krb5.conf Alice-pw-1 alice
k 2001:db8::10 krb5-6.conf Alice-pw-1 alice
k 198.51.100.9 krb5.conf wrong-1 alice
k 198.51.100.9 krb5.conf wrong-2 alice
k 198.51.100.9 krb5.conf wrong-3 alice@EXAMPLE.NET
k 198.51.100.9 krb5.conf x nosuchuser
k 198.51.100.9 krb5.conf x 'admin 192.0.2.66'
k 198.51.100.9 krb5.conf x 'x\@EXAMPLE.NET for krbtgt/EXAMPLE.NET\@EXAMPLE.NET, 192.0.2.66'
k 198.51.100.9 krb5.conf x "$(printf 'a\nDec  3 12:00:00 kdc krb5kdc[1](info): AS_REQ (1 etypes {aes256-cts-hmac-sha1-96(18)}) 192.0.2.66: PREAUTH_FAILED: y')"
k 203.0.113.77 krb5.conf wrong-4 bob
k 203.0.113.77 krb5.conf wrong-5 bob
k 203.0.113.77 krb5.conf wrong-6 bob
k 203.0.113.77 krb5.conf Bob-pw-1 bob
k 203.0.113.77 krb5.conf Carol-pw-1 carol
k 203.0.113.77 krb5.conf x -S 'a b 192.0.2.66: PREAUTH_FAILED: c' nosuch2
k 2001:db8:77::7 krb5-6.conf wrong-7 alice
k 2001:db8:77::7 krb5-6.conf x "$(printf 'tab\there')"
# hand-made AS-REQs (python3: kinit sends no enctype twice) from SRC for the unknown
# principal "many", listing aes256 and N unsupported enctypes; the reply's tag to "results"
asreq() {
  timeout 10 /usr/bin/python3 - "$@" >> "$d/results" 2>&1 <<'PY'
import os, socket, sys
def tlv(tag, v):
    n = len(v)
    ln = bytes([n]) if n < 128 else bytes([0x80 | ((n.bit_length() + 7) // 8)]) + n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([tag]) + ln + v
def num(n): return tlv(0x02, n.to_bytes(n.bit_length() // 8 + 1, "big"))
def ctx(n, v): return tlv(0xA0 + n, v)
def seq(*x): return tlv(0x30, b"".join(x))
def name(t, *parts): return seq(ctx(0, num(t)), ctx(1, seq(*[tlv(0x1B, p.encode()) for p in parts])))
src, n = sys.argv[1], int(sys.argv[2])
body = seq(ctx(0, tlv(0x03, b"\x00\x40\x00\x00\x10")), ctx(1, name(1, "many")), ctx(2, tlv(0x1B, b"EXAMPLE.NET")),
           ctx(3, name(2, "krbtgt", "EXAMPLE.NET")), ctx(5, tlv(0x18, b"20370913024805Z")),
           ctx(7, num(int.from_bytes(os.urandom(3), "big"))), ctx(8, seq(*[num(e) for e in [18] + list(range(1000, 1000 + n))])))
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(5)
s.bind((src, 0))
s.sendto(tlv(0x6A, seq(ctx(1, num(5)), ctx(2, num(10)), ctx(4, body))), ("192.0.2.88", 88))
print(src, "asreq reply", s.recv(4096)[:1].hex())
PY
}
asreq 198.51.100.30 40
asreq 198.51.100.31 120
# every request through rsyslogd before it stops
n=$(grep -c 'AS_REQ' "$d/krb5kdc.log")
for _ in $(seq 50); do
  [ "$(grep -c 'AS_REQ' "$d/syslog" 2>/dev/null)" -ge "$n" ] && break
  sleep 0.1
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

// The KDC under test: Debian 12's (the machine's, 1.20) or Debian 13's (the trixie tree,
// 1.21, run with chroot).

/// Runs every scenario against `version`'s krb5kdc and checks what the clients saw, what the
/// KDC wrote and what the filter counts of it.
fn run(version: Release) {
    require_root();
    require_program("krb5kdc", "krb5-kdc");
    require_program("kdb5_util", "krb5-kdc");
    require_program("kadmin.local", "krb5-admin-server");
    require_program("kinit", "krb5-user");
    require_program("python3", "python3");
    require_program("rsyslogd", "rsyslog");
    require_program("ip", "iproute2");
    require_program("ss", "iproute2");
    require_program("unshare", "util-linux");
    let tree = match version {
        Release::Deb12 => String::new(),
        Release::Deb13 => {
            require_program("chroot", "coreutils");
            trixie_root(&["usr/sbin/krb5kdc"]).display().to_string()
        }
    };
    let dir = test_dir(match version {
        Release::Deb12 => "krb5kdc",
        Release::Deb13 => "krb5kdc-1.21",
    });
    let shown = [("krb5kdc", "krb5kdc.out"), ("log", "krb5kdc.log")];
    let script = format!("{PRIVATE_SYSLOG_SH}{TRIXIE_SH}{SCRIPT}");
    run_script_ok("krb5kdc", dir.path(), &script, &[tree.as_ref()], &shown);
    let read = |name: &str| fs::read_to_string(dir.path().join(name)).unwrap_or_default();
    let release = match version {
        Release::Deb12 => "1.20.",
        Release::Deb13 => "1.21.",
    };
    assert!(
        read("version").starts_with(release),
        "krb5-kdc {}",
        read("version")
    );

    // what the clients saw: the two legitimate ones got a ticket, every other was refused
    let results = read("results");
    let served: Vec<&str> = results
        .lines()
        .filter(|l| l.contains(" rc=0 "))
        .map(|l| l.split(' ').next().unwrap())
        .collect();
    assert_eq!(
        served,
        ["192.0.2.10", "2001:db8::10"],
        "tickets:\n{results}"
    );
    assert_eq!(results.lines().count(), 19, "attempts:\n{results}");
    // (the hand-made requests got a KRB-ERROR, [APPLICATION 30])
    assert_eq!(lines_with(&results, " asreq reply 7e"), 2, "{results}");
    for (needle, n) in [
        ("Password incorrect", 7),
        ("not found in Kerberos database", 6),
        ("credentials have been revoked", 2),
    ] {
        assert_eq!(
            lines_with(&results, needle),
            n,
            "clients told {needle:?}:\n{results}"
        );
    }

    let want_sys = want_rules(&[
        (
            "198.51.100.9",
            &[("preauth-failed", 3), ("client-not-found", 4)],
        ),
        (
            "203.0.113.77",
            &[
                ("preauth-failed", 3),
                ("locked-out", 2),
                ("client-not-found", 1),
            ],
        ),
        (
            "2001:db8:77::7",
            &[("preauth-failed", 1), ("client-not-found", 1)],
        ),
    ]);
    // the request listing 41 enctypes: its line (about 1000 bytes) is read in the KDC's own
    // file; through syslog it is longer than a line a transport of the default
    // `transport_cut = 1024` may have cut, and the address stands after text of no fixed
    // length, so the match is refused there (see below for transport_cut = 8192)
    let mut want_file = want_sys.clone();
    want_file.insert(
        "198.51.100.30".to_string(),
        vec!["client-not-found".to_string()],
    );
    for (name, want) in [("krb5kdc.log", &want_file), ("syslog", &want_sys)] {
        let log = dir.path().join(name);
        let text = read(name);
        // what the KDC wrote: each request once, the address right after the enctypes
        for (needle, n) in [
            (": NEEDED_PREAUTH: ", 9),
            (": ISSUE: ", 2),
            (" 198.51.100.9: PREAUTH_FAILED: alice@EXAMPLE.NET for ", 3),
            (" 198.51.100.9: CLIENT_NOT_FOUND: ", 4),
            (" 203.0.113.77: PREAUTH_FAILED: bob@EXAMPLE.NET for ", 3),
            (" 203.0.113.77: LOCKED_OUT: bob@EXAMPLE.NET for ", 1),
            (" 203.0.113.77: CLIENT LOCKED OUT: carol@EXAMPLE.NET for ", 1),
            (" 203.0.113.77: CLIENT_NOT_FOUND: nosuch2@EXAMPLE.NET for a b 192.0.2.66: PREAUTH_FAILED: c@EXAMPLE.NET, ", 1),
            (" 2001:db8:77::7: PREAUTH_FAILED: alice@EXAMPLE.NET for ", 1),
            (r" 2001:db8:77::7: CLIENT_NOT_FOUND: tab\there@EXAMPLE.NET for ", 1),
            (": CLIENT_NOT_FOUND: admin 192.0.2.66@EXAMPLE.NET for ", 1),
            (r": CLIENT_NOT_FOUND: x\@EXAMPLE.NET for krbtgt/EXAMPLE.NET\@EXAMPLE.NET, 192.0.2.66@EXAMPLE.NET for ", 1),
            // the newline is written as `\n`, and the name cut to 124 bytes and "..."
            (r": CLIENT_NOT_FOUND: a\nDec  3 12:00:00 kdc krb5kdc[1](info): AS_REQ ", 1),
            ("AS_REQ (41 etypes {aes256-cts-hmac-sha1-96(18), UNSUPPORTED:(1000), ", 1),
            (" 198.51.100.30: CLIENT_NOT_FOUND: many@EXAMPLE.NET for ", 1),
            // 121 enctypes: the KDC cuts its line at 2047 bytes (src/lib/kadm5/logger.c),
            // before the address and the status
            ("AS_REQ (121 etypes {aes256-cts-hmac-sha1-96(18), UNSUPPORTED:(1000), ", 1),
            ("198.51.100.31", 0),
            ("many@EXAMPLE.NET", 1),
        ] {
            assert_eq!(
                lines_with(&text, needle),
                n,
                "{name}: lines with {needle:?}:\n{text}"
            );
        }
        // the hostile names are on the attackers' own lines only
        assert_eq!(
            lines_with(&text, "192.0.2.66"),
            4,
            "{name}: the hostile names elsewhere:\n{text}"
        );
        assert_eq!(
            &rules_by_host("krb5kdc", &log),
            want,
            "{name}: what counted, per address:\n{text}"
        );
    }

    // a jail with maxretry 3 bans the two clients with three failures or more, not the
    // IPv6 one with two, nor the legitimate clients
    for name in ["krb5kdc.log", "syslog"] {
        let bans = replay_jail(dir.path(), "krb5kdc", &dir.path().join(name), "normal", 3);
        assert_eq!(
            bans.into_iter().collect::<Vec<_>>(),
            vec!["198.51.100.9".to_string(), "203.0.113.77".to_string()],
            "{name}: bans:\n{}",
            read(name)
        );
    }

    // through syslog with rsyslog's own limit (transport_cut = 8192) the request listing 41
    // enctypes counts too: maxretry 1 bans it there and not with the default
    let sys = dir.path().join("syslog");
    let once = |cut: &str| {
        let cfg = dir.path().join(format!("replay-cut{cut}.toml"));
        fs::write(
            &cfg,
            format!("[[jail]]\nname = \"krb5kdc\"\nmode = \"normal\"\nmaxretry = 1\nfindtime = \"1h\"\n{cut}"),
        )
        .unwrap();
        replay_bans(&cfg, &sys)
            .into_iter()
            .map(|(_, h)| h)
            .collect::<std::collections::BTreeSet<String>>()
    };
    let (default_cut, rsyslog_cut) = (once(""), once("transport_cut = 8192\n"));
    assert!(
        !default_cut.contains("198.51.100.30"),
        "bans: {default_cut:?}"
    );
    let mut more = default_cut.clone();
    more.insert("198.51.100.30".to_string());
    assert_eq!(rsyslog_cut, more, "bans with transport_cut = 8192");
}

#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn real_krb5kdc_failures_count_for_the_address_the_kdc_wrote() {
    run(Release::Deb12);
}

#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn real_krb5kdc_1_21_failures_count_for_the_address_the_kdc_wrote() {
    run(Release::Deb13);
}

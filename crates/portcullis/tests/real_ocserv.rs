//! The `ocserv` filter against the real OpenConnect VPN server: Debian 12's (1.1.6, the
//! machine's) and Debian 13's (1.3.0, test.sh's trixie tree, run with chroot in a private
//! overlay of it: common/real.rs `trixie_mount`), the same scenarios and one table of what
//! must count. ocserv runs in the foreground (`-f`) in its own pid, mount and network namespace (`unshare`),
//! listening on 192.0.2.1 and 2001:db8::1 (port 4443), with `plain` authentication from a
//! password file holding one user (alice, a SHA-256 crypt hash from `openssl passwd`), a
//! certificate made at run time by openssl, no occtl and no worker isolation. It logs
//! through syslog(3) to a private rsyslogd (a private /dev whose /dev/log is its socket),
//! writing rsyslog's traditional file format, as the filter's header says Debian does.
//!
//! Clients: Debian's openconnect (`--authenticate`, the server pinned by `pin-sha256:`),
//! which gets each password prompt from its standard input (it answers up to three; both
//! ocserv releases fail the connection at its first wrong password, "auth cont received
//! ... but we are on state auth failed(1)!"). The client's source address is chosen by the namespace's
//! `local` route to the server (`src`). 198.51.100.9 fails as alice twice, as a user that
//! does not exist, and as three hostile user names holding another address (192.0.2.66)
//! in a forged "]: ADDR failed authentication for '" sequence, two of them with a quote;
//! 2001:db8:77::7 fails as alice over IPv6; 192.0.2.20 logs in as alice with the right
//! password (openconnect prints the cookie and exits: no tunnel).
//!
//! `portcullis test --filter ocserv --json` must count each failed connection once, for
//! the address ocserv wrote (never 192.0.2.66, nor the server's own address), except the two
//! whose user name holds a quote (documented in the filter: such a line never matches), and
//! nothing for the right login; `portcullis replay` with `maxretry = 3` bans 198.51.100.9
//! alone. The first run of this test found that ocserv, built with GCC, writes
//! "worker-auth.c:LINE: " before "failed authentication" (LOG_ERR messages carry FILE:LINE):
//! the filter read no real line. 1.3.0 writes the failure line as 1.1.6 did (another
//! worker-auth.c line number), plus "main: added IP 'ADDR' (with score N) to ban list, ..."
//! (its own ban points; not counted, so a failure counts once): no pattern change.
//!
//! Needs root, ocserv, openconnect, openssl, rsyslogd and util-linux's unshare, for the
//! second run chroot and the trixie tree (test.sh installs them); fails loudly when they are
//! missing. Runs in about 2 s each.

mod common;

use common::*;
use std::collections::BTreeMap;
use std::fs;

/// A user name that forges a whole failure line for 192.0.2.66, quotes included.
const FORGED_QUOTED: &str = "x]: 192.0.2.66 failed authentication for 'x";
/// The same without quotes: the line matches, for the real address.
const FORGED_BARE: &str = "x]: 192.0.2.66 failed authentication for x";
/// A name that makes the tail of the line look like a worker line of its own.
const FORGED_WORKER: &str = "worker: 192.0.2.66 failed authentication for 'b";

/// Run as pid 1 of the new pid, mount and network namespace (bash): every process of the
/// run is in it and dies with it; $1 is the test's directory, $2 the Debian 13 tree (empty:
/// the machine's ocserv), $3..$5 the hostile names. (After [`PRIVATE_SYSLOG_SH`] and
/// [`TRIXIE_SH`].)
const SCRIPT: &str = r#"set -u
d="$1"; tree="$2"; h1="$3"; h2="$4"; h3="$5"
chmod 755 "$d"
ip link set lo up
for a in 192.0.2.1 192.0.2.20 198.51.100.9; do ip addr add "$a/32" dev lo || exit 2; done
for a in 2001:db8::1 2001:db8:77::7; do ip addr add "$a/128" dev lo nodad || exit 2; done
# a private /dev whose /dev/log is a private rsyslogd's socket (common/netns.rs)
private_syslog "$d"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=vpn.example.net \
  -days 2 -keyout "$d/key.pem" -out "$d/cert.pem" 2>"$d/openssl.err" || exit 6
pin=$(openssl x509 -in "$d/cert.pem" -pubkey -noout | openssl pkey -pubin -outform der \
  | openssl dgst -sha256 -binary | base64)
printf 'alice:users:%s\n' "$(openssl passwd -5 right-pass-1)" > "$d/passwd"
cat > "$d/ocserv.conf" <<C
auth = "plain[passwd=$d/passwd]"
tcp-port = 4443
udp-port = 4443
run-as-user = nobody
run-as-group = nogroup
socket-file = $d/ocserv.sock
server-cert = $d/cert.pem
server-key = $d/key.pem
isolate-workers = false
use-occtl = false
pid-file = $d/ocserv.pid
device = vpns
ipv4-network = 10.99.0.0/24
max-clients = 16
max-same-clients = 0
C
# the ocserv to run: the machine's (Debian 12), or Debian 13's in a private overlay of its
# tree (common/real.rs trixie_mount: $d at the same path inside)
ocserv=(ocserv)
if [ -n "$tree" ]; then
  trixie_mount "$tree" "$d/root" "$d/trixie" || exit 4
  ocserv=(chroot "$d/root" /usr/sbin/ocserv)
fi
"${ocserv[@]}" -f -c "$d/ocserv.conf" > "$d/ocserv.out" 2>&1 &
for _ in $(seq 100); do grep -q "sec-mod initialized" "$d/syslog" 2>/dev/null && break; sleep 0.1; done
grep -q "sec-mod initialized" "$d/syslog" || { echo "ocserv did not start" >&2; exit 4; }
sleep 0.3
n=0
# oc SOURCE SERVER PASSWORD USER URL: one connection, from SOURCE (the local route to
# SERVER names it as source), answering each of ocserv's three password prompts
oc() {
  ip route del table local local "$2" dev lo 2>/dev/null
  ip route replace table local local "$2" dev lo src "$1" || exit 5
  n=$((n + 1))
  printf '%s\n%s\n%s\n' "$3" "$3" "$3" | timeout 10 openconnect --authenticate \
    --servercert "pin-sha256:$pin" -u "$4" "$5" > "$d/client.$n" 2>&1
  echo "$n $1 $4 rc=$?" >> "$d/clients"
}
v4=https://192.0.2.1:4443/
v6='https://[2001:db8::1]:4443/'
oc 198.51.100.9 192.0.2.1 wrong-1 alice "$v4"
oc 198.51.100.9 192.0.2.1 wrong-2 alice "$v4"
oc 198.51.100.9 192.0.2.1 wrong-3 nosuchuser "$v4"
oc 198.51.100.9 192.0.2.1 wrong-4 "$h1" "$v4"
oc 198.51.100.9 192.0.2.1 wrong-5 "$h2" "$v4"
oc 198.51.100.9 192.0.2.1 wrong-6 "$h3" "$v4"
oc 2001:db8:77::7 2001:db8::1 wrong-7 alice "$v6"
oc 192.0.2.20 192.0.2.1 right-pass-1 alice "$v4"
for _ in $(seq 50); do
  [ "$(grep -c "]: worker.* failed authentication for" "$d/syslog" 2>/dev/null)" -ge 7 ] && break
  sleep 0.1
done
kill %2
wait %2
kill %1
wait
"#;

// The ocserv under test: Debian 12's (the machine's, 1.1.6) or Debian 13's (the trixie
// tree, 1.3.0, run with chroot).

/// Runs every scenario against `version`'s ocserv (the client is the machine's openconnect)
/// and checks what it wrote and what the filter counts of it.
fn run(version: Release) {
    require_root();
    require_program("openconnect", "openconnect");
    require_program("openssl", "openssl");
    require_program("rsyslogd", "rsyslog");
    require_program("unshare", "util-linux");
    let tree = match version {
        Release::Deb12 => {
            require_program("ocserv", "ocserv");
            String::new()
        }
        Release::Deb13 => {
            require_program("chroot", "coreutils");
            trixie_root(&["usr/sbin/ocserv"]).display().to_string()
        }
    };
    let v13 = version == Release::Deb13;
    let dir = test_dir(if v13 { "ocserv-1.3" } else { "ocserv" });
    let shown = [("ocserv", "ocserv.out"), ("syslog", "syslog")];
    let script = format!("{PRIVATE_SYSLOG_SH}{TRIXIE_SH}{SCRIPT}");
    run_script_ok(
        "ocserv",
        dir.path(),
        &script,
        &[
            tree.as_ref(),
            FORGED_QUOTED.as_ref(),
            FORGED_BARE.as_ref(),
            FORGED_WORKER.as_ref(),
        ],
        &shown,
    );
    let read = |name: &str| fs::read_to_string(dir.path().join(name)).unwrap_or_default();
    let sys = dir.path().join("syslog");
    let text = read("syslog");

    // openconnect's own view: the right password got a cookie, no wrong one did
    let clients = read("clients");
    let client = |n: u32| read(&format!("client.{n}"));
    assert!(
        client(8).contains("COOKIE="),
        "the right login got no cookie: {clients}\n{}",
        client(8)
    );
    for n in 1..=7 {
        assert!(
            !client(n).contains("COOKIE="),
            "wrong login {n} got a cookie: {}",
            client(n)
        );
    }

    // the ocserv that ran: 1.3 names itself, writes "main: added IP 'ADDR' (with score N) to
    // ban list, ..." after a client's first failure (its own ban points, not counted: the
    // failure line counts) and "sec-mod: sec-mod-auth.c:LINE: auth cont received for USER
    // ..." where 1.1 wrote no FILE:LINE; both stop a connection at its first wrong password
    if v13 {
        for line in [
            "ocserv[",
            "]: main: initialized OpenConnect VPN Server 1.3.",
            "]: main: added IP '198.51.100.9' (with score ",
            "]: main: added IP '2001:db8:77::7' (with score ",
        ] {
            assert!(
                text.contains(line),
                "ocserv 1.3 did not write {line}:\n{text}"
            );
        }
    } else {
        assert!(
            !text.contains("OpenConnect VPN Server 1.3."),
            "not Debian 12's ocserv:\n{text}"
        );
    }
    // ocserv wrote one failure per failed connection, each with the client's real address,
    // and the hostile names raw
    let failures: Vec<&str> = text
        .lines()
        .filter(|l| {
            l.split_once("]: ")
                .is_some_and(|(_, m)| m.starts_with("worker"))
                && l.contains("failed authentication for")
        })
        .collect();
    assert_eq!(failures.len(), 7, "ocserv's failures:\n{text}");
    assert!(
        text.contains(&format!(
            "worker[{FORGED_BARE}]: 198.51.100.9 worker-auth.c:"
        )),
        "the hostile name is not in the log as expected:\n{text}"
    );

    let mut got: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (host, rule, line) in counted_matches("ocserv", &sys) {
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
        ("198.51.100.9", vec!["auth-failed"; 4]),
        ("2001:db8:77::7", vec!["auth-failed"]),
    ]
    .into_iter()
    .collect();
    assert_eq!(
        rules, want,
        "what counted, per address: {got:#?}\nlog:\n{text}"
    );
    // the user names read: alice, the unknown user, the quote-less forged name
    let users: Vec<String> = test_json("ocserv", &sys)
        .iter()
        .filter(|v| v["matched"].as_bool() == Some(true))
        .map(|v| v["user"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(
        users,
        ["alice", "alice", "nosuchuser", FORGED_BARE, "alice"],
        "log:\n{text}"
    );

    // a jail with maxretry 3 bans the client with four failures, and only it
    let bans = replay_jail(dir.path(), "ocserv", &sys, "normal", 3);
    assert_eq!(
        bans.into_iter().collect::<Vec<_>>(),
        vec![ban_of("198.51.100.9")],
        "bans:\nlog:\n{text}"
    );
}

#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn real_ocserv_failures_count_for_the_address_ocserv_wrote() {
    run(Release::Deb12);
}

#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn real_ocserv_1_3_failures_count_for_the_address_ocserv_wrote() {
    run(Release::Deb13);
}

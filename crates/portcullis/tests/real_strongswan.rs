//! The `strongswan` filter against the real strongSwan, twice: the IKEv2 responder is Debian
//! 12's charon 5.9.8 (strongswan-charon), then Debian 13's 6.0.1 (test.sh's trixie-b tree, run
//! with chroot in a private overlay of it: common/real.rs `trixie_mount`), the same scenarios
//! and one table of what counts for both. The responder runs in its own pid, mount and network
//! namespace (`unshare`, a private /run for its pid file and sockets, its own strongswan.conf
//! through STRONGSWAN_CONF and a vici socket in the test's directory, so nothing under /etc is
//! read for it; its connections loaded by its own version's swanctl), logging through
//! syslog(3) (`ike_name = yes`, as the filter needs) to a private rsyslogd (a private /dev
//! whose /dev/log is its socket), rsyslog's traditional file format. It offers three
//! connections: PSK on 192.0.2.1 and 2001:db8:a::1, EAP-MS-CHAPv2 on 192.0.2.2 and EAP-MD5 on
//! 192.0.2.3 (the server authenticates with a PSK on both).
//!
//! A second charon, Debian 12's 5.9.8 in both runs, driven by swanctl, is the initiator in
//! ANOTHER network and mount namespace joined by a veth pair, logging to its own file only,
//! offering ECP_256 (which 6.0.1 selects first: to 5.9.8's default, CURVE_25519 first, 6.0.1
//! answers INVALID_KE_PAYLOAD, one more IKE_SA per attempt): 192.0.2.10 logs in with the
//! right PSK (must count nothing); 203.0.113.7 sends three wrong PSKs, with the identities
//! `carol@example.net`, `x 192.0.2.66` and `CN=192.0.2.66`; 2001:db8:a::66 sends a wrong PSK
//! over IPv6; 198.51.100.9 uses an identity that has no key (`mallory@example.net`), a wrong
//! EAP-MS-CHAPv2 password (user bob), an unknown EAP-MS-CHAPv2 user `x 192.0.2.66` and a
//! wrong EAP-MD5 password with the IKE identity `z [192.0.2.66]`.
//!
//! `portcullis test --filter strongswan --json` must count each failure once, for the address
//! of the IKE_SA's `<N> ADDR is initiating an IKE_SA` line (never one inside an identity),
//! and for the legitimate client nothing but its `initiating` line (class scan, counted in
//! the ddos/aggressive modes only); `portcullis replay` with `maxretry = 3` bans 203.0.113.7
//! and 198.51.100.9 alone. The first run of this test found `no shared key found for 'ME' -
//! 'PEER'` (an identity without a key), which the filter did not read. The 6.0.1 run found
//! every failure line in 5.9.8's text (no filter change).
//!
//! Needs root, charon (strongswan-charon), swanctl (strongswan-swanctl), the EAP-MD5
//! (libcharon-extra-plugins) and EAP-MS-CHAPv2 (libcharon-extauth-plugins) plugins, rsyslogd,
//! util-linux's unshare and nsenter, iproute2 (test.sh installs them), and for the second
//! run chroot and the trixie-b tree with the same three packages and the two plugins; fails
//! loudly when they are missing. Runs in about 5 s each.

mod common;

use common::*;
use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

/// Run as pid 1 of the new pid, mount and network namespace (bash): every process of the
/// run is in it and dies with it; $1 is the test's directory, $2 the Debian 13 tree (empty:
/// the responder is Debian 12's charon too). (After [`PRIVATE_SYSLOG_SH`] and [`TRIXIE_SH`].)
const SCRIPT: &str = r#"set -u
d="$1"
tree="$2"
ip link set lo up
mount -t tmpfs -o mode=755 pct-run /run
# the initiator's network and mount namespaces (its own /run below), joined by a veth pair
unshare --net --mount --propagation private sleep 50 &
ipid=$!
for _ in $(seq 50); do [ "$(readlink /proc/$ipid/ns/net)" != "$(readlink /proc/self/ns/net)" ] && break; sleep 0.05; done
in_ini() { nsenter -t "$ipid" -n -m "$@"; }
ip link add veth-s type veth peer name veth-c netns "$ipid" || exit 2
for a in 192.0.2.1 192.0.2.2 192.0.2.3; do ip addr add $a/24 dev veth-s; done
ip addr add 2001:db8:a::1/64 dev veth-s nodad
ip link set veth-s up
ip route add 203.0.113.0/24 dev veth-s; ip route add 198.51.100.0/24 dev veth-s
in_ini ip link set lo up
for a in 192.0.2.10 203.0.113.7 198.51.100.9; do in_ini ip addr add $a/24 dev veth-c; done
in_ini ip addr add 2001:db8:a::66/64 dev veth-c nodad
in_ini ip link set veth-c up
in_ini mount -t tmpfs -o mode=755 pct-run2 /run
private_syslog "$d"
# the responder's programs: Debian 12's, or Debian 13's 6.0.1 in a private overlay of its tree
# (common/real.rs trixie_mount: its /etc, /run and /tmp private, $d at the same path); 6.0
# has no aes, sha1, sha2, hmac, gmp or kdf plugin (openssl does all of it)
charon=/usr/lib/ipsec/charon swan=swanctl
plugins="random nonce aes sha1 sha2 hmac pem pkcs1 x509 pubkey openssl gmp kdf"
if [ -n "$tree" ]; then
  trixie_mount "$tree" "$d/root" "$d/trixie" || exit 4
  charon="chroot $d/root /usr/lib/ipsec/charon" swan="chroot $d/root /usr/sbin/swanctl"
  plugins="random nonce pem pkcs1 x509 pubkey openssl"
fi
mkdir -p "$d/resp" "$d/ini"
cat > "$d/resp/strongswan.conf" <<C
charon {
  load = $plugins kernel-netlink socket-default vici eap-identity eap-md5 eap-mschapv2
  install_routes = no
  plugins { vici { socket = unix://$d/resp/charon.vici } }
  syslog {
    identifier = charon
    daemon {
      default = 1
      ike_name = yes
    }
  }
}
C
cat > "$d/ini/strongswan.conf" <<C
charon {
  load = random nonce aes sha1 sha2 hmac pem pkcs1 x509 pubkey openssl gmp kdf kernel-netlink socket-default vici eap-identity eap-md5 eap-mschapv2
  install_routes = no
  plugins { vici { socket = unix://$d/ini/charon.vici } }
  filelog {
    ini {
      path = $d/ini/charon.log
      default = 1
      ike_name = yes
    }
  }
}
swanctl {
  load = pem pkcs1 x509 openssl
}
C
STRONGSWAN_CONF="$d/resp/strongswan.conf" $charon 2>"$d/resp/charon.err" &
in_ini env STRONGSWAN_CONF="$d/ini/strongswan.conf" /usr/lib/ipsec/charon 2>"$d/ini/charon.err" &
for _ in $(seq 50); do [ -S "$d/resp/charon.vici" ] && in_ini test -S "$d/ini/charon.vici" && break; sleep 0.1; done
# the initiator's IKE proposal (its connections have REMOTE_ADDRS): ECP_256, which 6.0.1
# selects first; to the 5.9.8 initiator's default (CURVE_25519 first) 6.0.1 answers
# INVALID_KE_PAYLOAD, a first IKE_SA of each attempt that only says "is initiating" (and
# in those runs one IKE_SA_INIT response never reached the initiator: a 4 s retransmission)
ike=aes128-sha256-ecp256
conn() { # NAME LOCAL_ADDRS REMOTE_AUTH LOCAL_AUTH LOCAL_ID [REMOTE_ID] [EAP_ID]
  printf '  %s {\n    local_addrs = %s\n' "$1" "$2"
  [ -n "${8:-}" ] && printf '    remote_addrs = %s\n    proposals = %s\n' "$8" "$ike"
  printf '    local {\n      auth = %s\n      id = "%s"\n' "$4" "$5"
  [ -n "${7:-}" ] && printf '      eap_id = "%s"\n' "$7"
  printf '    }\n    remote {\n      auth = %s\n' "$3"
  [ -n "${6:-}" ] && printf '      id = "%s"\n' "$6"
  [ "$3" = eap-md5 ] || [ "$3" = eap-mschapv2 ] && printf '      eap_id = %%any\n'
  printf '    }\n  }\n'
}
secret() { # TYPE NAME SECRET ID...
  local t=$1 n=$2 k=$3 i=0; shift 3
  printf '  %s-%s {\n' "$t" "$n"
  for id in "$@"; do i=$((i+1)); printf '    id-%d = "%s"\n' "$i" "$id"; done
  printf '    secret = %s\n  }\n' "$k"
}
{
  echo 'connections {'
  conn psk "192.0.2.1, 2001:db8:a::1" psk psk vpn.example.net
  conn mschap 192.0.2.2 eap-mschapv2 psk eap.example.net
  conn md5 192.0.2.3 eap-md5 psk eap.example.net
  echo '}'
  echo 'secrets {'
  secret ike a right-key-1 vpn.example.net alice@example.net
  secret ike c carols-key vpn.example.net carol@example.net 'x 192.0.2.66' 'CN=192.0.2.66'
  secret ike e server-eap-key eap.example.net
  secret eap b bobs-pass bob
  echo '}'
} > "$d/resp/swanctl.conf"
STRONGSWAN_CONF="$d/resp/strongswan.conf" $swan --load-all --file "$d/resp/swanctl.conf" --uri "unix://$d/resp/charon.vici" > "$d/resp/load.out" 2>&1 || { cat "$d/resp/load.out" >&2; exit 5; }
# the initiator: one connection per attempt, each from its own source address
{
  echo 'connections {'
  conn legit 192.0.2.10 psk psk alice@example.net "" "" 192.0.2.1
  conn bad1 203.0.113.7 psk psk carol@example.net "" "" 192.0.2.1
  conn bad2 203.0.113.7 psk psk 'x 192.0.2.66' "" "" 192.0.2.1
  conn bad3 203.0.113.7 psk psk 'CN=192.0.2.66' "" "" 192.0.2.1
  conn v6 2001:db8:a::66 psk psk carol@example.net "" "" 2001:db8:a::1
  conn unk 198.51.100.9 psk psk mallory@example.net "" "" 192.0.2.1
  conn ms1 198.51.100.9 psk eap-mschapv2 client1 eap.example.net bob 192.0.2.2
  conn ms2 198.51.100.9 psk eap-mschapv2 client2 eap.example.net 'x 192.0.2.66' 192.0.2.2
  conn md5 198.51.100.9 psk eap-md5 'z [192.0.2.66]' eap.example.net bob 192.0.2.3
  echo '}'
  echo 'secrets {'
  secret ike l right-key-1 alice@example.net
  secret ike w wrong-guess carol@example.net 'x 192.0.2.66' 'CN=192.0.2.66'
  secret ike m a-guess mallory@example.net
  secret ike e server-eap-key eap.example.net
  secret eap b not-bobs-pass bob
  secret eap h whatever 'x 192.0.2.66'
  echo '}'
} > "$d/ini/swanctl.conf"
sw() { in_ini env STRONGSWAN_CONF="$d/ini/strongswan.conf" timeout 10 swanctl "$@" --uri "unix://$d/ini/charon.vici"; }
sw --load-all --file "$d/ini/swanctl.conf" > "$d/ini/load.out" 2>&1 || { cat "$d/ini/load.out" >&2; exit 6; }
for c in legit bad1 bad2 bad3 v6 unk ms1 ms2 md5; do
  { echo "== $c"; sw --initiate --ike "$c" --timeout 4; echo "rc=$?"; } >> "$d/ini/initiate.out" 2>&1
done
for _ in $(seq 50); do grep -q "EAP method EAP_MD5 failed" "$d/syslog" 2>/dev/null && break; sleep 0.1; done
kill %3 %4; wait %3
kill %2; wait %2
kill %1; wait
"#;

/// Rules per address of every line that counts, `initiating` (class scan) left out.
fn counted(log: &Path) -> BTreeMap<String, Vec<String>> {
    let mut by_host: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (host, rule, _) in counted_matches("strongswan", log) {
        if rule != "initiating" {
            by_host.entry(host).or_default().push(rule);
        }
    }
    for rules in by_host.values_mut() {
        rules.sort();
    }
    by_host
}

// The responder under test: Debian 12's charon 5.9.8 or Debian 13's 6.0.1 (the trixie-b
// tree, run with chroot). The initiator is Debian 12's charon and swanctl in both.

#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn real_strongswan_failures_count_for_the_initiating_address() {
    run(Release::Deb12);
}

#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn real_strongswan_6_failures_count_for_the_initiating_address() {
    run(Release::Deb13);
}

/// Runs every scenario against `version`'s responder and checks what it wrote and what the
/// filter counts of it.
fn run(version: Release) {
    require_root();
    require_program("swanctl", "strongswan-swanctl");
    require_program("rsyslogd", "rsyslog");
    require_program("unshare", "util-linux");
    require_program("nsenter", "util-linux");
    require_program("ip", "iproute2");
    for (file, package) in [
        ("/usr/lib/ipsec/charon", "strongswan-charon"),
        (
            "/usr/lib/ipsec/plugins/libstrongswan-eap-md5.so",
            "libcharon-extra-plugins",
        ),
        (
            "/usr/lib/ipsec/plugins/libstrongswan-eap-mschapv2.so",
            "libcharon-extauth-plugins",
        ),
    ] {
        assert!(
            Path::new(file).is_file(),
            "{file} is missing: install {package} (test.sh does)"
        );
    }
    let tree = match version {
        Release::Deb12 => String::new(),
        Release::Deb13 => {
            require_program("chroot", "coreutils");
            let files = [
                "usr/lib/ipsec/charon",
                "usr/sbin/swanctl",
                "usr/lib/ipsec/plugins/libstrongswan-eap-md5.so",
                "usr/lib/ipsec/plugins/libstrongswan-eap-mschapv2.so",
            ];
            trixie_b_root(&files).display().to_string()
        }
    };
    let deb13 = version == Release::Deb13;
    let dir = test_dir(if deb13 { "strongswan-6" } else { "strongswan" });
    let shown = [
        ("responder", "resp/charon.err"),
        ("initiator", "ini/charon.log"),
        ("log", "syslog"),
    ];
    let script = format!("{PRIVATE_SYSLOG_SH}{TRIXIE_SH}{SCRIPT}");
    run_script_ok("strongSwan", dir.path(), &script, &[tree.as_ref()], &shown);
    let read = |name: &str| fs::read_to_string(dir.path().join(name)).unwrap_or_default();
    let sys = dir.path().join("syslog");

    // the initiator's own view: the right PSK got in, every other attempt was refused
    let initiated = read("ini/initiate.out");
    let results: Vec<(String, String)> = initiated
        .split("== ")
        .skip(1)
        .map(|a| {
            let name = a.lines().next().unwrap_or("").to_string();
            let rc = a
                .lines()
                .rev()
                .find(|l| l.starts_with("rc="))
                .unwrap_or("")
                .to_string();
            (name, rc)
        })
        .collect();
    let want_rc: Vec<(String, String)> = [
        ("legit", "rc=0"),
        ("bad1", "rc=1"),
        ("bad2", "rc=1"),
        ("bad3", "rc=1"),
        ("v6", "rc=1"),
        ("unk", "rc=1"),
        ("ms1", "rc=1"),
        ("ms2", "rc=1"),
        ("md5", "rc=1"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(
        results,
        want_rc,
        "initiator:\n{initiated}\nlog:\n{}",
        read("syslog")
    );

    let text = read("syslog");
    assert!(
        text.contains(if deb13 {
            "charon: 00[DMN] Starting IKE charon daemon (strongSwan 6.0.1,"
        } else {
            "charon: 00[DMN] Starting IKE charon daemon (strongSwan 5.9.8,"
        }),
        "not the charon wanted:\n{text}"
    );
    // charon wrote each failure shape, with the hostile identities in them (the same text in
    // 5.9.8 and 6.0.1)
    for shape in [
        "192.0.2.10 is initiating an IKE_SA",
        "IKE_SA psk[1] established between 192.0.2.1[vpn.example.net]...192.0.2.10[alice@example.net]",
        "tried 1 shared key for '%any' - 'x 192.0.2.66', but MAC mismatched",
        "tried 1 shared key for '%any' - 'CN=192.0.2.66', but MAC mismatched",
        "no shared key found for '%any' - 'mallory@example.net'",
        "no EAP key found for hosts 'eap.example.net' - 'x 192.0.2.66'",
        "EAP-MS-CHAPv2 verification failed, retry (1)",
        "EAP method EAP_MD5 failed for peer z [192.0.2.66]",
    ] {
        assert!(text.contains(shape), "charon did not write {shape:?}:\n{text}");
    }
    assert_eq!(
        text.matches(" is initiating an IKE_SA").count(),
        9,
        "IKE_SAs:\n{text}"
    );

    // what counts, the same for 5.9.8 and 6.0.1 (6.0.1 writes every failure line as 5.9.8
    // does): bad1-bad3 (wrong PSK, hostile identities), v6 (wrong PSK over IPv6), unk
    // (identity without a key), ms1 and ms2 (wrong EAP-MS-CHAPv2 password, unknown EAP user:
    // the 5.9.8 client gives up after the first retry), md5 (wrong EAP-MD5 password);
    // legit (192.0.2.10) nothing
    let want: BTreeMap<String, Vec<String>> = [
        ("203.0.113.7", vec!["psk-mismatch"; 3]),
        ("2001:db8:a::66", vec!["psk-mismatch"]),
        (
            "198.51.100.9",
            vec![
                "eap-failed",
                "mschapv2-retry",
                "mschapv2-retry",
                "psk-unknown",
            ],
        ),
    ]
    .into_iter()
    .map(|(h, r)| (h.to_string(), r.into_iter().map(String::from).collect()))
    .collect();
    let got = counted(&sys);
    assert_eq!(got, want, "what counted, per address:\nlog:\n{text}");
    // every IKE_SA's start counts as class scan for its own address, the legitimate one's too
    let starts: Vec<String> = counted_matches("strongswan", &sys)
        .into_iter()
        .filter(|(_, r, _)| r == "initiating")
        .map(|(h, _, _)| h)
        .collect();
    assert_eq!(starts.len(), 9, "{starts:?}");
    assert_eq!(
        starts.iter().filter(|h| *h == "192.0.2.10").count(),
        1,
        "{starts:?}"
    );

    // a jail with maxretry 3 bans the two clients with three failures or more, and only them
    let bans = replay_jail(dir.path(), "strongswan", &sys, "normal", 3);
    assert_eq!(
        bans.into_iter().collect::<Vec<_>>(),
        vec!["198.51.100.9".to_string(), "203.0.113.7".to_string()],
        "bans:\nlog:\n{text}"
    );
}

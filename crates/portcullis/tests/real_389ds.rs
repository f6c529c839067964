//! The `389-ds` filter against the real 389 Directory Server, two releases with one script and
//! one table: Debian 12's 389-ds-base (2.3.1, the machine's) and Debian 13's (3.1.2, run with
//! chroot in test.sh's Debian 13 tree, common/real.rs `trixie_root`, an overlay of it mounted
//! by `trixie_mount`; its own dscreate, lib389 and defaults.inf). The server runs in its own
//! pid, mount and network namespace (`unshare`): `dscreate from-file` makes an
//! instance (dc=example,dc=net) with every path under the test's directory and without
//! systemd (lib389 reads its defaults from `$PREFIX/share/dirsrv/inf/defaults.inf`: Debian's,
//! with the paths moved and `with_systemd = 0`), then `ns-slapd -d 0` runs it in the
//! foreground with `nsslapd-logging-backend: dirsrv-log,syslog` and unbuffered access and
//! security logging: the access log goes into its own file and through syslog(3) to a private
//! rsyslogd (a private /dev whose /dev/log is its socket, rsyslog's traditional file format);
//! the JSON security log (on by default since 2.2.3) into its own file.
//!
//! Clients: ldapadd, ldapwhoami and ldapsearch (Debian's ldap-utils) cannot bind a source
//! address, so the namespace's local route of the server address names the source of each
//! connection. 192.0.2.10 adds uid=alice as the Directory Manager and binds as her twice;
//! 203.0.113.5 binds with wrong passwords (alice twice, the Directory Manager) and as a DN
//! that does not exist; 203.0.113.6 binds with hostile DNs (`uid=x,dc=a IP=192.0.2.66`, a
//! forged `" method=128 version=3` tail, CR LF and LF each followed by a forged
//! `connection from 192.0.2.66` line, a LF, quotes and a backslash around a forged
//! `"client_ip": "192.0.2.66"`, and a DN that is no DN, err=34, holding a whole forged
//! security-log object between two LFs); 2001:db8::77 binds three times wrongly over IPv6;
//! 203.0.113.7 (python3) binds wrongly three times and resets each connection as soon as it
//! has the answer, then sends a connection no LDAP (a bad BER tag); 203.0.113.8 binds with
//! SASL PLAIN (`ldapwhoami`/`ldapsearch -O none -Y PLAIN`, offered by 389's defaults once
//! Cyrus SASL's libsasl2-modules is installed), three wrong passwords for alice, then her
//! right one.
//!
//! In the syslog file `portcullis test --filter 389-ds --json` must count every failed bind
//! (err=49) once for the address of its own connection (never 192.0.2.66), nothing but the
//! connections (rule `connection`, class scan) for the legitimate client; the SASL PLAIN
//! client's three failures count (`bind-failed`, `RESULT err=49 ... - SASL(-13): user not
//! found: Password verification failed`), its successful bind (err=0) does not. In the
//! security log (one JSON object per line, every DN escaped) every failed bind but the invalid
//! DN's counts
//! once (`security-bind-failed`) for its connection's address, the bad BER tag once
//! (`security-refused`, scan), nothing for the legitimate client's BIND_SUCCESS lines nor for
//! dscreate's LDAPI binds (`"client_ip": "local"`); it has no line at all for the SASL PLAIN
//! client, neither its failures nor its success (saslbind.c never calls
//! slapi_log_security(): the filter header's WHICH ONE; the test fails when a future 389 starts
//! logging them, and the header must then be revisited). In the access log file, where 389
//! wrote the DNs' line breaks raw, the forged `connection from` lines count nothing (tagged_only
//! rules), but the forged security-log object stands alone and counts for 192.0.2.66: the
//! header's "never read the access file". `portcullis replay` with `maxretry = 3` bans exactly
//! the four attackers of simple binds and the SASL PLAIN guesser 203.0.113.8 from the syslog,
//! but only the four from the security log (the guesser is invisible there); with
//! `maxretry = 5` each source alone bans only 203.0.113.6 and both together ban the four
//! (each simple bind's failure counted twice: the header's one source per jail) but not
//! 203.0.113.8 (three failures, in the syslog only). The first run found that ns-slapd often
//! writes a connection's `Disconnect` before the RESULT of its last bind (another thread
//! writes it): the filter forgot the connection there, and those failures counted nothing.
//! The first run against 3.1.2 found the same lines as 2.3.1's in the syslog and in the
//! access file (3.x's access log is in this format unless `nsslapd-accesslog-log-format`
//! says json), the same Disconnect before a RESULT, and nothing to change. The security log
//! of 2.3.1 and 3.1.2 (the same lines) was read by no rule until the `security-*` rules were
//! written from this test's run.
//!
//! Needs root, ns-slapd and dscreate (389-ds-base) or the Debian 13 tree (test.sh), ldapadd,
//! ldapwhoami and ldapsearch (the machine's ldap-utils), Cyrus SASL's PLAIN plugin
//! (libsasl2-modules: the machine's for the client and Debian 12's server, the tree's for
//! Debian 13's; test.sh installs both), python3, rsyslogd, iproute2's ip and
//! ss, chroot and util-linux's unshare; fails loudly when they are missing. Each release's run
//! takes about 7 to 9 s (dscreate takes 4 to 6).

mod common;

use common::*;
use std::fs;

/// Run as pid 1 of the new pid, mount and network namespace (bash): every process of the
/// run is in it and dies with it; $1 is the test's directory, $2 Debian 13's tree (empty:
/// Debian 12's 389-ds-base, the machine's). (After [`PRIVATE_SYSLOG_SH`] and [`TRIXIE_SH`].)
const SCRIPT: &str = r#"set -u
d="$1"; tree="${2:-}"
ip link set lo up
for a in 192.0.2.1 192.0.2.10 203.0.113.5 203.0.113.6 203.0.113.7 203.0.113.8; do
  ip addr add "$a/32" dev lo || exit 2
done
for a in 2001:db8::1 2001:db8::77; do ip addr add "$a/128" dev lo nodad || exit 2; done
# ldap-utils cannot bind a source address: the local route of the server's address names the
# source of every connection to it (the kernel takes a local route's src as the source)
src() {
  case "$1" in
  *:*) ip -6 route del local 2001:db8::1 dev lo table local
      ip -6 route add local 2001:db8::1 dev lo table local src "$1" || exit 2 ;;
  *) ip route replace local 192.0.2.1 dev lo table local proto kernel scope host src "$1" || exit 2 ;;
  esac
}
# a private /dev (with /dev/shm) whose /dev/log is a private rsyslogd's socket (common/netns.rs)
private_syslog "$d" shm
# the 389-ds to run: the machine's, or Debian 13's in a private overlay of its tree
# (common/real.rs trixie_mount: $d bound at the same path inside); sys is its root
if [ -n "$tree" ]; then
  trixie_mount "$tree" "$d/sys" "$d/trixie" || exit 4
  sys="$d/sys"; run=(chroot "$sys")
else
  sys=""; run=()
fi
# dscreate (lib389), without systemd and with every path under $d: it reads its defaults
# from $PREFIX/share/dirsrv/inf/defaults.inf, here Debian's with the paths moved and
# with_systemd off (it then starts and stops ns-slapd itself). ns-slapd runs as root (the
# test's directory is private); it needs /dev/shm for its statistics semaphore.
r="$d/root"
mkdir -p "$r/share/dirsrv/inf" "$r/etc/dirsrv" "$r/run/dirsrv" "$r/run/lock/dirsrv" "$r/shm"
cp -r "$sys/etc/dirsrv/config" "$sys/etc/dirsrv/schema" "$r/etc/dirsrv/"
sed -e "s#= /etc#= $r/etc#; s#= /var#= $r/var#; s#= /run#= $r/run#; s#= /dev/shm#= $r/shm#; s#^tmp_dir = .*#tmp_dir = $d#" \
    -e 's#^with_systemd = .*#with_systemd = 0#' "$sys/usr/share/dirsrv/inf/defaults.inf" > "$r/share/dirsrv/inf/defaults.inf"
cat > "$d/ds.inf" <<I
[general]
full_machine_name = ds.example.net
start = False
selinux = False
[slapd]
instance_name = pct
port = 389
user = root
group = root
root_password = rootsecret1
self_sign_cert = False
[backend-userroot]
suffix = dc=example,dc=net
create_suffix_entry = True
I
PREFIX="$r" "${run[@]}" dscreate from-file "$d/ds.inf" > "$d/dscreate.out" 2>&1 || { cat "$d/dscreate.out" >&2; exit 4; }
conf="$r/etc/dirsrv/slapd-pct"
# the access log through syslog as well as into its file, unbuffered; ns-slapd in the
# foreground, listening on every address of the namespace (192.0.2.1, 2001:db8::1)
sed -i '/^dn: cn=config$/a nsslapd-logging-backend: dirsrv-log,syslog\nnsslapd-accesslog-logbuffering: off\nnsslapd-securitylog-logbuffering: off' "$conf/dse.ldif"
logs="$r/var/log/dirsrv/slapd-pct"
"${run[@]}" ns-slapd -d 0 -D "$conf" > "$d/slapd.out" 2>&1 &
for _ in $(seq 100); do [ -n "$(ss -Hltn 'sport = :389')" ] && break; sleep 0.1; done
[ -n "$(ss -Hltn 'sport = :389')" ] || { echo "ns-slapd did not start" >&2; exit 5; }
# SOURCE SERVER DN PASSWORD [search]: one simple bind with ldapwhoami (or ldapsearch); its
# exit code (49: invalid credentials) goes to rcs
b() {
  src "$1"
  if [ "${5:-}" = search ]; then
    timeout 10 ldapsearch -x -D "$3" -w "$4" -H "ldap://$2" -b dc=example,dc=net -s base dn >> "$d/clients.out" 2>&1
  else
    timeout 10 ldapwhoami -x -D "$3" -w "$4" -H "ldap://$2" >> "$d/clients.out" 2>&1
  fi
  echo "$1 rc=$?" >> "$d/rcs"
}
# the legitimate client adds alice as the Directory Manager, then binds as her twice
src 192.0.2.10
timeout 10 ldapadd -x -D "cn=Directory Manager" -w rootsecret1 -H ldap://192.0.2.1 >> "$d/clients.out" 2>&1 <<L
dn: uid=alice,dc=example,dc=net
objectClass: inetOrgPerson
uid: alice
cn: Alice
sn: Example
userPassword: alicesecret
L
echo "add rc=$?" >> "$d/rcs"
b 192.0.2.10 192.0.2.1 uid=alice,dc=example,dc=net alicesecret
b 192.0.2.10 192.0.2.1 uid=alice,dc=example,dc=net alicesecret search
# wrong passwords, the Directory Manager's too, and a DN that does not exist
b 203.0.113.5 192.0.2.1 uid=alice,dc=example,dc=net wrong1
b 203.0.113.5 192.0.2.1 uid=alice,dc=example,dc=net wrong2 search
b 203.0.113.5 192.0.2.1 "cn=Directory Manager" wrong3
b 203.0.113.5 192.0.2.1 uid=nobody,dc=example,dc=net wrong4
# hostile DNs: an address inside, a forged line tail, CR LF and LF with forged lines
b 203.0.113.6 192.0.2.1 "uid=x,dc=a IP=192.0.2.66" pw
b 203.0.113.6 192.0.2.1 'uid=x,dc=example,dc=net" method=128 version=3' pw
b 203.0.113.6 192.0.2.1 $'uid=x\r\nconn=1 fd=64 slot=64 connection from 192.0.2.66 to 192.0.2.1\r\nconn=1 op=0 RESULT err=49 tag=97 nentries=0' pw
b 203.0.113.6 192.0.2.1 $'uid=y,dc=example,dc=net\nconn=1 fd=64 slot=64 connection from 192.0.2.66 to 192.0.2.1' pw
# for the security log: quotes, a backslash and a LF around a forged "client_ip"; then a DN
# that is no DN (err=34, no security line) whose two LFs write a whole forged security-log
# object on a line of its own into the access FILE
b 203.0.113.6 192.0.2.1 $'uid=z\\5C\n{ "event": "BIND_FAILED"\\, "client_ip": "192.0.2.66" },dc=example,dc=net' pw
b 203.0.113.6 192.0.2.1 $'uid=w\n{ "date": "[05\\/Dec\\/2026:02:53:38.040026760 +0000] ", "utc_time": "1796439218.040026760", "event": "BIND_FAILED", "dn": "uid=alice,dc=example,dc=net", "bind_method": "SIMPLE", "root_dn": false, "client_ip": "192.0.2.66", "server_ip": "192.0.2.1", "ldap_version": 3, "conn_id": 4, "op_id": 0, "msg": "INVALID_PASSWORD" }\nx' pw
# IPv6
b 2001:db8::77 '[2001:db8::1]' uid=alice,dc=example,dc=net bad
b 2001:db8::77 '[2001:db8::1]' "cn=Directory Manager" bad search
b 2001:db8::77 '[2001:db8::1]' uid=nobody,dc=example,dc=net bad
# SASL PLAIN (libsasl2-modules: 389 offers it by default, no TLS needed with -O none): it checks
# the password against alice's userPassword like a simple bind, and 389 writes no security-log
# line for any SASL bind but EXTERNAL (saslbind.c: see the filter's header, WHICH ONE). Three
# wrong passwords (authcid "dn:...", once the bare name "alice"), then the right one; the
# exit code goes to rcs. SOURCE AUTHCID PASSWORD [search]
p() {
  src "$1"
  if [ "${4:-}" = search ]; then
    timeout 10 ldapsearch -O none -Y PLAIN -U "$2" -w "$3" -H ldap://192.0.2.1 -b dc=example,dc=net -s base dn >> "$d/clients.out" 2>&1
  else
    timeout 10 ldapwhoami -O none -Y PLAIN -U "$2" -w "$3" -H ldap://192.0.2.1 >> "$d/clients.out" 2>&1
  fi
  echo "$1 plain rc=$?" >> "$d/rcs"
}
p 203.0.113.8 dn:uid=alice,dc=example,dc=net guess1
p 203.0.113.8 dn:uid=alice,dc=example,dc=net guess2 search
p 203.0.113.8 alice guess3
p 203.0.113.8 dn:uid=alice,dc=example,dc=net alicesecret
# python3: a simple bind with a wrong password whose client closes (RST) as soon as the
# answer is in: ns-slapd often logs the connection's end, then the bind's RESULT
cat > "$d/quick.py" <<'P'
import socket, struct, sys
def tlv(t, v):
    return bytes([t, len(v)]) + v
op = tlv(0x02, b"\x03") + tlv(0x04, b"uid=alice,dc=example,dc=net") + tlv(0x80, b"guess")
for i in range(3):
    s = socket.socket()
    s.settimeout(5)
    s.bind((sys.argv[1], 0))
    s.connect(("192.0.2.1", 389))
    s.sendall(tlv(0x30, tlv(0x02, b"\x01") + tlv(0x60, op)))
    r = s.recv(4096)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()
    print(r.hex())
# then a connection that speaks no LDAP (a message that is not a SEQUENCE: a bad BER tag)
s = socket.socket()
s.settimeout(5)
s.bind((sys.argv[1], 0))
s.connect(("192.0.2.1", 389))
s.sendall(b"GET / HTTP/1.0\r\n\r\n")
s.shutdown(socket.SHUT_WR)
try:
    print("garbage:", s.recv(4096).hex())
except OSError as e:
    print("garbage:", e)
s.close()
P
python3 "$d/quick.py" 203.0.113.7 > "$d/quick.out" 2>&1
# 18 failed binds: as many RESULT err=49 lines in both access logs; BIND_FAILED lines in the
# security log (unbuffered) for the 15 simple ones, with python3's TCP_ERROR
for _ in $(seq 50); do
  [ "$(grep -c "RESULT err=49 tag=97 nentries=0 wtime=" "$d/syslog" 2>/dev/null)" -ge 18 ] \
    && [ "$(grep -c "RESULT err=49 tag=97 nentries=0 wtime=" "$logs/access")" -ge 18 ] \
    && [ "$(grep -c '"event": "BIND_FAILED"' "$logs/security")" -ge 15 ] \
    && grep -q '"event": "TCP_ERROR"' "$logs/security" && break
  sleep 0.1
done
# (its lines are written: no need for its slow clean shutdown)
kill -KILL %2
wait %2
kill %1
wait
"#;

// The 389 Directory Server under test: Debian 12's (the machine's, 2.3.1) or Debian 13's
// (the trixie tree, 3.1.2, run with chroot).

#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn real_389ds_failed_binds_count_for_their_connection() {
    failed_binds_count_for_their_connection(Release::Deb12);
}

#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn real_389ds3_failed_binds_count_for_their_connection() {
    failed_binds_count_for_their_connection(Release::Deb13);
}

/// Every scenario against `version`'s ns-slapd.
fn failed_binds_count_for_their_connection(version: Release) {
    require_root();
    let tree = if version == Release::Deb13 {
        require_program("chroot", "coreutils");
        trixie_root(&[
            "usr/sbin/ns-slapd",
            "usr/sbin/dscreate",
            "usr/share/dirsrv/inf/defaults.inf",
            "usr/lib/x86_64-linux-gnu/sasl2/libplain.so.2",
        ])
        .display()
        .to_string()
    } else {
        require_program("ns-slapd", "389-ds-base");
        require_program("dscreate", "389-ds-base");
        String::new()
    };
    require_program("ldapadd", "ldap-utils");
    require_program("ldapwhoami", "ldap-utils");
    require_program("ldapsearch", "ldap-utils");
    require_program("python3", "python3");
    // Cyrus SASL's PLAIN plugin, for the SASL PLAIN client (and Debian 12's server)
    assert!(
        fs::read_dir("/usr/lib")
            .into_iter()
            .flatten()
            .flatten()
            .any(|e| e.path().join("sasl2/libplain.so.2").is_file()),
        "no /usr/lib/*/sasl2/libplain.so.2: install libsasl2-modules"
    );
    require_program("rsyslogd", "rsyslog");
    require_program("ip", "iproute2");
    require_program("ss", "iproute2");
    require_program("unshare", "util-linux");
    let dir = test_dir(if tree.is_empty() { "389ds" } else { "389ds3" });
    let shown = [
        ("dscreate", "dscreate.out"),
        ("ns-slapd", "slapd.out"),
        ("errors", "root/var/log/dirsrv/slapd-pct/errors"),
    ];
    let script = format!("{PRIVATE_SYSLOG_SH}{TRIXIE_SH}{SCRIPT}");
    run_script_ok("389-ds", dir.path(), &script, &[tree.as_ref()], &shown);
    let read = |name: &str| fs::read_to_string(dir.path().join(name)).unwrap_or_default();
    let sys = dir.path().join("syslog");
    let own = dir.path().join("root/var/log/dirsrv/slapd-pct/access");
    let sec = dir.path().join("root/var/log/dirsrv/slapd-pct/security");

    // what the clients got: the add and the legitimate binds succeeded, every other bind 49
    // but the DN that is no DN (34, invalidDNSyntax)
    let rcs = read("rcs");
    let want_rcs = "add rc=0\n192.0.2.10 rc=0\n192.0.2.10 rc=0\n".to_string()
        + &"203.0.113.5 rc=49\n".repeat(4)
        + &"203.0.113.6 rc=49\n".repeat(5)
        + "203.0.113.6 rc=34\n"
        + &"2001:db8::77 rc=49\n".repeat(3)
        + &"203.0.113.8 plain rc=49\n".repeat(3)
        + "203.0.113.8 plain rc=0\n";
    assert_eq!(rcs, want_rcs, "clients:\n{}", read("clients.out"));
    // python3's three binds were answered invalidCredentials (resultCode 49 = 0x31)
    let quick = read("quick.out");
    assert_eq!(
        quick.lines().filter(|l| l.contains("0a0131")).count(),
        3,
        "python3: {quick}"
    );

    let text = fs::read_to_string(&sys).unwrap_or_default();
    let file = fs::read_to_string(&own).unwrap_or_default();
    for (log, t) in [(&sys, &text), (&own, &file)] {
        assert_eq!(
            t.matches("RESULT err=49 tag=97 nentries=0 wtime=").count(),
            18,
            "{}: ns-slapd's failed binds:\n{t}",
            log.display()
        );
    }
    // through syslog the DN's CR and LF are escaped by rsyslog; in the file the LF is raw and
    // the forged line stands alone (the header's reason for not reading the file)
    assert!(
        text.contains(r#"BIND dn="uid=y,dc=example,dc=net#012conn=1 fd=64 slot=64 connection from 192.0.2.66 to 192.0.2.1" method=128"#)
            && text.contains("BIND dn=\"uid=x#015conn=1 fd=64 slot=64 connection from 192.0.2.66"),
        "the hostile DNs are not in the syslog file:\n{text}"
    );
    assert!(
        text.contains(r#"BIND dn="uid=x,dc=a IP=192.0.2.66" method=128 version=3"#),
        "no bind with an address in its DN:\n{text}"
    );
    assert!(
        file.lines()
            .any(|l| l == "conn=1 fd=64 slot=64 connection from 192.0.2.66 to 192.0.2.1\" method=128 version=3"),
        "389 no longer writes a DN's LF raw into its access log file:\n{file}"
    );

    let want = want_rules(&[
        ("192.0.2.10", &[("connection", 3)]),
        ("203.0.113.5", &[("connection", 4), ("bind-failed", 4)]),
        ("203.0.113.6", &[("connection", 6), ("bind-failed", 5)]),
        ("203.0.113.7", &[("connection", 4), ("bind-failed", 3)]),
        ("2001:db8::77", &[("connection", 3), ("bind-failed", 3)]),
        ("203.0.113.8", &[("connection", 4), ("bind-failed", 3)]),
    ]);
    let got = lines_by_host("389-ds", &sys);
    let rules = owned_rules_of(&got);
    assert_eq!(
        rules, want,
        "what counted, per address: {got:#?}\nlog:\n{text}"
    );
    // SASL PLAIN through syslog: four SASL binds (only 203.0.113.8 binds with SASL), three
    // failures (the wrong passwords) that count, each an err=49 line, never the right one's
    // err=0 RESULT
    assert_eq!(
        text.matches(r#" BIND dn="" method=sasl version=3 mech=PLAIN"#)
            .count(),
        4,
        "the SASL PLAIN binds in the syslog:\n{text}"
    );
    let plain: Vec<&String> = got["203.0.113.8"]
        .iter()
        .filter(|l| l.starts_with("bind-failed: "))
        .collect();
    assert!(
        plain.len() == 3
            && plain
                .iter()
                .all(|l| l.contains(" RESULT err=49 tag=97 nentries=0 wtime=")),
        "SASL PLAIN: only the three wrong passwords' err=49 lines count: {plain:#?}\nlog:\n{text}"
    );
    // the access log FILE must never be read: its tagged_only rules refuse the forged
    // "connection from" lines, but the DN that is no DN wrote a whole security-log object on a
    // line of its own there, which the security log's (untagged) rules read as a failure of
    // 192.0.2.66 (the header's warning)
    assert!(
        file.lines().any(|l| l.starts_with(r#"{ "date": "[05\/Dec\/2026:02:53:38.040026760 +0000] ""#)
            && l.ends_with(r#""client_ip": "192.0.2.66", "server_ip": "192.0.2.1", "ldap_version": 3, "conn_id": 4, "op_id": 0, "msg": "INVALID_PASSWORD" }"#)),
        "389 no longer writes an invalid DN's LF raw into its access log file:\n{file}"
    );
    assert_eq!(
        rules_by_host("389-ds", &own),
        want_rules(&[("192.0.2.66", &[("security-bind-failed", 1)])]),
        "the access log file:\n{file}"
    );

    // the security log: one JSON object per line (a DN's CR, LF, quotes and backslashes
    // escaped); every failed bind but the invalid DN's, once, for its connection's address;
    // python3's connection that spoke no LDAP (TCP_ERROR); nothing for the legitimate client
    // (BIND_SUCCESS) nor for dscreate's own binds over LDAPI ("client_ip": "local")
    let security = fs::read_to_string(&sec).unwrap_or_default();
    // SASL PLAIN: no security-log line at all for 203.0.113.8's three failed binds and its
    // successful one (ids_sasl_check_bind() never calls slapi_log_security())
    assert!(
        !security.contains("203.0.113.8") && !security.contains("PLAIN"),
        "389-ds now writes SASL PLAIN binds to the security log: revisit the 389-ds filter's \
         header (WHICH ONE: a jail on the security file misses SASL password guessing) and \
         this test's expectations:\n{security}"
    );
    for l in security.lines() {
        let v: serde_json::Value = serde_json::from_str(l)
            .unwrap_or_else(|e| panic!("not one JSON object per line ({e}): {l}\n{security}"));
        assert!(v.is_object(), "{l}");
    }
    assert!(
        security.contains(r#""dn": "uid=z\\5c\n{ \"event\": \"bind_failed\"\\2c \"client_ip\": \"192.0.2.66\" },dc=example,dc=net", "bind_method": "SIMPLE", "root_dn": false, "client_ip": "203.0.113.6""#)
            && security.contains(r#""dn": "uid=y,dc=example,dc=net\nconn=1 fd=64 slot=64 connection from 192.0.2.66 to 192.0.2.1", "bind_method": "SIMPLE", "root_dn": false, "client_ip": "203.0.113.6""#),
        "the hostile DNs are not in the security log as expected:\n{security}"
    );
    assert_eq!(
        security
            .matches(r#""event": "BIND_SUCCESS", "dn": "#)
            .count(),
        5,
        "two binds of dscreate over LDAPI, three of the legitimate client:\n{security}"
    );
    let got = lines_by_host("389-ds", &sec);
    let secured = owned_rules_of(&got);
    assert_eq!(
        secured,
        want_rules(&[
            ("203.0.113.5", &[("security-bind-failed", 4)]),
            ("203.0.113.6", &[("security-bind-failed", 5)]),
            (
                "203.0.113.7",
                &[("security-bind-failed", 3), ("security-refused", 1)]
            ),
            ("2001:db8::77", &[("security-bind-failed", 3)]),
        ]),
        "what counted in the security log, per address: {got:#?}\nlog:\n{security}"
    );

    // maxretry 3: mode normal bans the four attackers of simple binds and the SASL PLAIN
    // guesser 203.0.113.8 (three failures; the legitimate client's connections are
    // scan-class); mode aggressive with maxretry 5 bans them and only them too (203.0.113.8:
    // four connections and three failures)
    let attackers = vec![
        "2001:db8::/64".to_string(),
        "203.0.113.5".to_string(),
        "203.0.113.6".to_string(),
        "203.0.113.7".to_string(),
    ];
    let with_plain: Vec<String> = attackers
        .iter()
        .cloned()
        .chain(["203.0.113.8".to_string()])
        .collect();
    assert_eq!(ban_of("2001:db8::77"), attackers[0]);
    for (mode, maxretry) in [("normal", 3), ("aggressive", 5)] {
        let bans = replay_jail(dir.path(), "389-ds", &sys, mode, maxretry);
        assert_eq!(
            bans.into_iter().collect::<Vec<_>>(),
            with_plain,
            "mode {mode}, maxretry {maxretry}:\nlog:\n{text}"
        );
    }
    // the security log bans the four attackers of simple binds but never the SASL PLAIN
    // guesser: it has no line for it (the header's WHICH ONE)
    let bans = replay_jail(dir.path(), "389-ds", &sec, "normal", 3);
    assert_eq!(
        bans.into_iter().collect::<Vec<_>>(),
        attackers,
        "the security log, maxretry 3 (203.0.113.8's SASL PLAIN failures are not in it):\n{security}"
    );
    // one jail reading both sources counts each failed simple bind twice (the header: one
    // source per jail): with maxretry 5 each source alone bans only 203.0.113.6 (5 failures),
    // both ban every attacker of simple binds (6 to 10 failures each) but not 203.0.113.8,
    // whose three SASL failures are in the syslog only (counted once, under 5)
    let config = dir.path().join("replay-both.toml");
    fs::write(
        &config,
        "[[jail]]\nname = \"389-ds\"\nmode = \"normal\"\nmaxretry = 5\nfindtime = \"1h\"\n",
    )
    .unwrap();
    let cfg = config.to_str().unwrap();
    let bans_of = |logs: &[&std::path::Path]| {
        let mut args = vec!["replay", "--config", cfg, "--json"];
        args.extend(logs.iter().map(|l| l.to_str().unwrap()));
        json_lines(&args)
            .into_iter()
            .filter(|v| v["action"] == "ban")
            .map(|v| v["host"].as_str().unwrap().to_string())
            .collect::<std::collections::BTreeSet<_>>()
    };
    let one = std::collections::BTreeSet::from(["203.0.113.6".to_string()]);
    assert_eq!(bans_of(&[&sys]), one, "the syslog alone, maxretry 5");
    assert_eq!(bans_of(&[&sec]), one, "the security log alone, maxretry 5");
    assert_eq!(
        bans_of(&[&sys, &sec]).into_iter().collect::<Vec<_>>(),
        attackers,
        "both sources, maxretry 5: every simple bind's failure counted twice, SASL's once"
    );
}

//! The `sshd` filter's message inventory against the real OpenSSH, two versions with one
//! table of scenarios: Debian 12's sshd (OpenSSH 9.2p1, the machine's) and Debian 13's
//! (OpenSSH 10.0p2: `sshd`, `sshd-session`, `sshd-auth`, run with chroot in a private overlay
//! of the Debian 13 tree test.sh makes, common/real.rs `trixie_mount`), each in its own pid,
//! mount and network namespace (`unshare`; the two tests run at the same time), three
//! instances with their own host key and configs in the test's directory, all logging through
//! syslog(3) to a private rsyslogd (a private /dev whose /dev/log is its socket), LogLevel INFO,
//! UsePAM yes with a private pam.d/sshd (pam_unix `nodelay`, the version's own PAM); the
//! accounts pctssh (the right one), pctout (not in AllowUsers), pctdeny (in DenyUsers), pctgrp
//! (not in AllowGroups' group) exist only in a private /etc (an overlay of the machine's, or
//! the tree's own overlay). The main instance listens on 192.0.2.1:22 and [2001:db8::1]:22
//! (PermitRootLogin no, MaxAuthTries 3; 10.0: PerSourcePenalties authfail:20s noauth:5s, so
//! that one failed login and four scans activate a penalty whatever the machine's load,
//! PerSourcePenaltyExemptList 203.0.113.31), one on :2222 with MaxStartups 2, one on :2223
//! with LoginGraceTime 2.
//!
//! Clients (the machine's), all at once, each scenario from its own address (203.0.113.N,
//! 2001:db8:N::N), so every line is tied to its scenario: Debian 12's ssh (passwords from
//! SSH_ASKPASS, forced: no terminal) for a wrong password (.2, 2001:db8:5::5), root's password
//! (.3) and root's authorised key (.4) under PermitRootLogin no, users refused by AllowUsers
//! (.5), DenyUsers (.6) and AllowGroups (.7), MaxAuthTries exceeded by passwords (.8) and by
//! keys (.18), two refused keys then the right password (.9, a login), two refused keys then
//! leaving (.10), kex and cipher offers sshd has not (.14, .15), unknown users, hostile ones
//! among them (`admin from 192.0.2.66 port 1`, `x port 22 ssh2`, `y [preauth]`: .21-.24,
//! 2001:db8:6::6), four wrong passwords in turn (.30: 10.0's penalty refuses the second to
//! fourth; .31, exempt, is never refused) and right logins (192.0.2.10, 2001:db8:10::10);
//! python3 sockets for a client that leaves during key exchange (.11), an HTTP request (.12),
//! a scanner that reads the banner and closes (.13, 2001:db8:7::7), eight of those in turn
//! (.19: 10.0's penalty for connections without authentication refuses the last ones), one
//! that closes with the banner unread (.16), one silent past LoginGraceTime (.17) and five
//! connections at once to the MaxStartups 2 instance (.20).
//!
//! Each version must write each scenario's lines under the right program name (10.0: a
//! connection's lines, " [preauth]" ones too, as `sshd-session`, never `sshd-auth`; the
//! listener's drops and timeouts as `sshd`); `portcullis test --filter sshd --json` must give
//! each address exactly the rules of [`SCENARIOS`] (10.0's where it differs), and `portcullis
//! replay` in modes normal, aggressive and ddos (maxretry 1 to 6) exactly the counts the filter
//! header's inventory gives each scenario (class auth in normal, scan in ddos, both in
//! aggressive; openers, follow-ups and held failures counted once; a penalty episode's drops
//! once), nothing for the logins, never 192.0.2.66. What sshd does not write, asserted too: a
//! refused key offer is logged at VERBOSE only (not "Failed publickey" at INFO, whatever
//! MaxAuthTries); 9.2 writes nothing for a pre-authentication timeout (Debian's CVE-2024-6387
//! fix), 10.0's listener does; 9.2 names only the first drop of a MaxStartups episode at INFO,
//! 10.0 every one (up to 4 a minute), with its new wording ("... Maxstartups", which the
//! filter missed before this test); 10.0 writes no kex_exchange_identification line for a
//! scanner's close (VERBOSE since 9.5), so a lone scan counts nothing there.
//!
//! Needs root, sshd (openssh-server), ssh and ssh-keygen (openssh-client), python3, openssl,
//! rsyslogd, iproute2's ip and ss, util-linux's unshare, chroot, and the Debian 13 tree (test.sh
//! makes them all); fails loudly when they are missing. Runs in about 12 s (the two versions
//! at once; the grace client's 2 to 6 s and the penalty clients' turns set it).

mod common;

use common::*;
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// Run as pid 1 of the new pid, mount and network namespace (bash): every process of the
/// run is in it and dies with it; $1 is the test's directory, $2 the first of five uids free
/// on the machine. (After [`PRIVATE_ETC_SH`] and [`PRIVATE_SYSLOG_SH`].)
const SCRIPT: &str = r#"set -u
d="$1"; uid="$2"; tree="$3"
ip link set lo up
ip addr add 192.0.2.1/32 dev lo || exit 2
ip addr add 192.0.2.10/32 dev lo || exit 2
for n in $(seq 2 24) 30 31; do ip addr add "203.0.113.$n/32" dev lo || exit 2; done
for a in 2001:db8::1 2001:db8:5::5 2001:db8:6::6 2001:db8:7::7 2001:db8:10::10; do ip addr add "$a/128" dev lo nodad || exit 2; done
# a private /dev whose /dev/log is a private rsyslogd's socket (common/netns.rs)
private_syslog "$d"
# the sshd to run: the machine's (Debian 12), or Debian 13's in a private overlay of its
# tree (common/real.rs trixie_mount: its /etc, /run and /tmp private, $d at the same path)
r=""
if [ -n "$tree" ]; then
  r="$d/root"
  trixie_mount "$tree" "$r" "$d/trixie" || exit 4
  sshd() { chroot "$r" /usr/sbin/sshd "$@"; }
else
  # sshd's privilege separation directory, on a private /run
  mount -t tmpfs -o mode=755 pct-run /run || exit 4
  sshd() { /usr/sbin/sshd "$@"; }
fi
mkdir -m 755 "$r/run/sshd" || exit 4
# the accounts, in a private /etc only (the machine's, or the tree's): pctssh (the right
# one), pctout (not in AllowUsers), pctdeny (in DenyUsers), pctgrp (in AllowUsers, not in the
# AllowGroups group pctusers); pam.d/sshd: pam_unix without its 2 s failure delay
mkdir -p "$d/etc-src/pam.d" "$d/home" "$d/client" "$d/keys"
chown "$uid:$uid" "$d/home"
cp "$r/etc/passwd" "$r/etc/group" "$r/etc/shadow" "$d/etc-src/"
hash=$(openssl passwd -6 Right-pw-1) || exit 4
i=0
for u in pctssh pctout pctdeny pctgrp; do
  echo "$u:x:$((uid + i)):$((uid + i)):sshd test:$d/home:/bin/sh" >> "$d/etc-src/passwd"
  echo "$u:$hash:20000:0:99999:7:::" >> "$d/etc-src/shadow"
  echo "$u:x:$((uid + i)):" >> "$d/etc-src/group"
  i=$((i + 1))
done
echo "pctusers:x:$((uid + i)):pctssh,pctout,pctdeny,root" >> "$d/etc-src/group"
cat > "$d/etc-src/pam.d/sshd" <<P
auth required pam_unix.so nodelay
account required pam_unix.so
session required pam_unix.so
password required pam_deny.so
P
if [ -n "$tree" ]; then
  for f in passwd group shadow pam.d/sshd; do cp "$d/etc-src/$f" "$r/etc/$f" || exit 4; done
else
  private_etc "$d/etc-ov" "$d/etc-src" passwd group shadow pam.d/sshd || exit 4
fi
ssh-keygen -q -t ed25519 -N '' -f "$d/host_ed25519" || exit 4
for k in k1 k2 k3 k4 kroot; do ssh-keygen -q -t ed25519 -N '' -f "$d/client/$k" || exit 4; done
cp "$d/client/kroot.pub" "$d/keys/root"
# conf NAME LISTEN... : sshd's config, the main one's settings and then the instance's
conf() {
  local name=$1; shift
  {
    for l in "$@"; do echo "ListenAddress $l"; done
    cat <<C
HostKey $d/host_ed25519
PidFile none
UsePAM yes
KbdInteractiveAuthentication no
PasswordAuthentication yes
PubkeyAuthentication yes
PermitRootLogin no
AllowUsers pctssh pctgrp root
DenyUsers pctdeny
AllowGroups pctusers
MaxAuthTries 3
AuthorizedKeysFile $d/keys/%u
StrictModes no
LogLevel INFO
SyslogFacility AUTH
PrintMotd no
PrintLastLog no
UseDNS no
C
  } > "$d/$name.conf"
}
# main: 192.0.2.1:22, [2001:db8::1]:22; startups: MaxStartups 2 on :2222; grace:
# LoginGraceTime 2 on :2223 (each on its own, so that neither limit touches the others)
conf main 192.0.2.1:22 '[2001:db8::1]:22'
echo "MaxStartups 100" >> "$d/main.conf"
# 10.x: PerSourcePenalties (on by default: authfail 5 s, noauth 1 s, active from 15 s) so
# that one failed login activates it, four scans do, whatever the machine's load; and
# 203.0.113.31 exempt from them
[ -n "$tree" ] && printf 'PerSourcePenalties authfail:20s noauth:5s\nPerSourcePenaltyExemptList 203.0.113.31\n' >> "$d/main.conf"
conf startups 192.0.2.1:2222
printf 'MaxStartups 2\nPerSourceMaxStartups none\n' >> "$d/startups.conf"
conf grace 192.0.2.1:2223
echo "LoginGraceTime 2" >> "$d/grace.conf"
for c in main startups grace; do
  sshd -D -f "$d/$c.conf" > "$d/sshd-$c.out" 2>&1 &
done
for _ in $(seq 100); do
  [ "$(ss -Hltn 'sport = :22 or sport = :2222 or sport = :2223' | wc -l)" -ge 4 ] && break
  sleep 0.1
done
[ "$(ss -Hltn 'sport = :22 or sport = :2222 or sport = :2223' | wc -l)" -ge 4 ] || { echo "sshd did not listen" >&2; exit 5; }

# raw MODE SRC DST PORT: a protocol-level client (python3 sockets)
cat > "$d/raw.py" <<'Y'
import socket, sys, time
mode, src, dst, port = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
fam = socket.AF_INET6 if ":" in dst else socket.AF_INET
def conn():
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.settimeout(10)
    s.bind((src, 0))
    s.connect((dst, port))
    return s
def line(s):
    b = b""
    while not b.endswith(b"\n"):
        c = s.recv(1)
        if not c:
            break
        b += c
    return b
def drain(s):             # reads until sshd closes; whether it did
    try:
        while s.recv(4096):
            pass
        return True
    except OSError:
        return False
if mode == "scan":       # reads the banner and closes: a port scanner
    s = conn(); line(s); s.close()
elif mode == "scans":    # eight scans in turn: 10.x's noauth penalty (5 s each here, active
    for _ in range(8):   # from 15 s) refuses the last ones ("Not allowed at this time")
        s = conn(); print("scans: " + line(s).decode(errors="replace").strip()); s.close()
        time.sleep(0.05)
elif mode == "reset":    # closes with the banner unread: a reset
    s = conn(); s.recv(1, socket.MSG_PEEK); s.close()
elif mode == "http":     # an HTTP request
    s = conn(); s.sendall(b"GET / HTTP/1.0\r\n\r\n"); drain(s)
elif mode == "preauth":  # exchanges banners, leaves during the key exchange
    s = conn(); line(s); s.sendall(b"SSH-2.0-pct\r\n"); s.recv(4096)
    s.shutdown(socket.SHUT_WR); drain(s); s.close()
elif mode == "grace":    # exchanges banners, then says nothing until sshd closes
    t = time.monotonic()
    s = conn(); line(s); s.sendall(b"SSH-2.0-pct\r\n")
    s.settimeout(30)     # (LoginGraceTime 2 s + up to 4 s of jitter; more on a loaded machine)
    if drain(s):
        print("grace: closed by sshd after %.1f s" % (time.monotonic() - t))
elif mode == "startups": # five connections at once, none sending a banner
    socks = []
    for _ in range(5):
        socks.append(conn()); time.sleep(0.1)
    time.sleep(0.5)
    for s in socks:
        line(s)
        s.close()
Y
raw() { timeout 35 python3 "$d/raw.py" "$@" >> "$d/raw.out" 2>&1; }
# the client's password prompts are answered by SSH_ASKPASS (forced: no terminal here)
printf '#!/bin/sh\nprintf "%%s\\n" "$PCT_PW"\n' > "$d/askpass"; chmod +x "$d/askpass"
export SSH_ASKPASS="$d/askpass" SSH_ASKPASS_REQUIRE=force
export HOME="$d/client"
unset SSH_AUTH_SOCK
O="-F /dev/null -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o GlobalKnownHostsFile=/dev/null -o LogLevel=ERROR -o ConnectTimeout=10 -T"
P="-o PubkeyAuthentication=no -o PreferredAuthentications=password -o NumberOfPasswordPrompts=1"
# s SRC PASSWORD USER [OPTION...]: one ssh login from SRC (OPTIONs first: ssh takes the
# first value it reads)
s() {
  local src=$1 pw=$2 user=$3 dst=192.0.2.1; shift 3
  case $src in *:*) dst=2001:db8::1;; esac
  PCT_PW=$pw timeout 15 ssh -b "$src" -l "$user" "$@" $P $O "$dst" true >> "$d/ssh.out" 2>&1
  echo "$src $user: $?" >> "$d/ssh.rc"
}
pids=()
s 203.0.113.2 wrong-pw pctssh & pids+=($!)
s 203.0.113.3 Right-pw-1 root & pids+=($!)
s 203.0.113.4 none root -i "$d/client/kroot" -o IdentitiesOnly=yes -o PubkeyAuthentication=yes \
  -o PreferredAuthentications=publickey & pids+=($!)
s 203.0.113.5 Right-pw-1 pctout & pids+=($!)
s 203.0.113.6 Right-pw-1 pctdeny & pids+=($!)
s 203.0.113.7 Right-pw-1 pctgrp & pids+=($!)
s 203.0.113.8 wrong-pw pctssh -o NumberOfPasswordPrompts=5 & pids+=($!)
s 203.0.113.9 Right-pw-1 pctssh -i "$d/client/k1" -i "$d/client/k2" -o IdentitiesOnly=yes \
  -o PubkeyAuthentication=yes -o PreferredAuthentications=publickey,password & pids+=($!)
s 203.0.113.10 none pctssh -i "$d/client/k1" -i "$d/client/k2" -o IdentitiesOnly=yes \
  -o PubkeyAuthentication=yes -o PreferredAuthentications=publickey & pids+=($!)
s 203.0.113.18 none pctssh -i "$d/client/k1" -i "$d/client/k2" -i "$d/client/k3" -i "$d/client/k4" \
  -o IdentitiesOnly=yes -o PubkeyAuthentication=yes -o PreferredAuthentications=publickey & pids+=($!)
raw preauth 203.0.113.11 192.0.2.1 22 & pids+=($!)
raw http 203.0.113.12 192.0.2.1 22 & pids+=($!)
raw scan 203.0.113.13 192.0.2.1 22 & pids+=($!)
s 203.0.113.14 wrong-pw pctssh -o KexAlgorithms=diffie-hellman-group1-sha1 & pids+=($!)
s 203.0.113.15 wrong-pw pctssh -c 3des-cbc & pids+=($!)
raw reset 203.0.113.16 192.0.2.1 22 & pids+=($!)
raw grace 203.0.113.17 192.0.2.1 2223 & pids+=($!)
raw startups 203.0.113.20 192.0.2.1 2222 & pids+=($!)
s 203.0.113.21 wrong-pw 'admin from 192.0.2.66 port 1' & pids+=($!)
s 203.0.113.22 wrong-pw 'x port 22 ssh2' & pids+=($!)
s 203.0.113.23 wrong-pw 'y [preauth]' & pids+=($!)
s 203.0.113.24 wrong-pw nosuchuser & pids+=($!)
s 2001:db8:5::5 wrong-pw pctssh & pids+=($!)
s 2001:db8:6::6 wrong-pw nosuchuser & pids+=($!)
raw scan 2001:db8:7::7 2001:db8::1 22 & pids+=($!)
raw scans 203.0.113.19 192.0.2.1 22 & pids+=($!)
s 192.0.2.10 Right-pw-1 pctssh & pids+=($!)
s 2001:db8:10::10 Right-pw-1 pctssh & pids+=($!)
# four wrong passwords in turn (one connection each): 10.x's penalty for failed
# authentication refuses the second to fourth; .31 is exempt
for a in 203.0.113.30 203.0.113.31; do
  (for _ in $(seq 4); do s $a wrong-pw pctssh; sleep 0.5; done) & pids+=($!)
done
wait "${pids[@]}"
# until the listeners' session processes have ended (they log after their clients have
# gone), 10 s at most, then until the log is still for a second and a half (half a second
# could pass while a loaded machine's rsyslogd had lines to write, review 34)
for _ in $(seq 100); do
  kids=0
  for p in $(jobs -p %2 %3 %4); do pgrep -P "$p" > /dev/null && kids=1; done
  [ "$kids" = 0 ] && break
  sleep 0.1
done
last=-1; still=0
for _ in $(seq 60); do
  now=$(wc -l < "$d/syslog")
  if [ "$now" = "$last" ]; then still=$((still + 1)); [ "$still" -ge 3 ] && break; else still=0; fi
  last=$now
  sleep 0.5
done
kill %2 %3 %4
sleep 0.3
kill %1
wait
"#;

/// Per address, what `portcullis replay` counts in `mode`: the largest maxretry (1 to 6) at
/// which a jail bans it (an IPv6 client as its /64).
fn replay_counts(dir: &Path, log: &Path, mode: &str) -> BTreeMap<String, u32> {
    let mut counts = BTreeMap::new();
    for maxretry in 1..=6 {
        for host in replay_jail(dir, "sshd", log, mode, maxretry) {
            counts.insert(host, maxretry);
        }
    }
    counts
}

// The sshd under test: Debian 12's (the machine's, OpenSSH 9.2p1) or Debian 13's (the
// trixie tree, OpenSSH 10.0p2, run with chroot).

/// In a rule table: as many as the log has lines of the rule for the address (the number of
/// penalty drops depends on the client's pace), at least one.
const AS_LOGGED: usize = usize::MAX;

/// Per rule, how many lines count.
type Rules = &'static [(&'static str, usize)];

/// One client's scenario: its address (`test` names it so; `replay` bans an IPv6 one as its
/// /64), what `test` counts per rule and what `replay` counts in modes normal, aggressive and
/// ddos (maxretry 1 to 6: 6 means at least 6), on 9.2, and on 10.0 where it differs.
struct Scenario {
    addr: &'static str,
    rules: Rules,
    counts: [u32; 3],
    v10: Option<(Rules, [u32; 3])>,
}

const fn sc(addr: &'static str, rules: Rules, counts: [u32; 3]) -> Scenario {
    Scenario {
        addr,
        rules,
        counts,
        v10: None,
    }
}

impl Scenario {
    /// What 10.0 counts instead.
    const fn v10(self, rules: Rules, counts: [u32; 3]) -> Scenario {
        Scenario {
            v10: Some((rules, counts)),
            ..self
        }
    }
}

/// Every scenario, as the inventory in filters/sshd.toml counts it. normal: one per failed
/// attempt; an opener ("Invalid user", "not allowed") and its "Failed" line are one; a
/// follow-up ("Connection closed by authenticating user", "maximum authentication attempts",
/// "Too many", the monitor's second "ROOT LOGIN REFUSED", a penalty drop) counts only when
/// nothing else of the connection (a drop: of the listener) did. ddos: a connection that ended
/// before authentication, once ("Connection closed by (invalid|authenticating) user ...
/// [preauth]" too, not "Disconnecting ..."), kex-ident held until the closing line. `test`
/// lists every line that counts (a held line, weight 0, not listed; `test` weighs each line
/// alone: the session's openers and follow-ups are merged by the tracker, as `replay` shows).
const SCENARIOS: &[Scenario] = &[
    // wrong password, IPv4 and IPv6
    sc("203.0.113.2", &[("failed", 1), ("closed", 1)], [1, 1, 1]),
    sc("2001:db8:5::5", &[("failed", 1), ("closed", 1)], [1, 1, 1]),
    // root's password and root's key, PermitRootLogin no
    sc("203.0.113.3", &[("failed", 1), ("closed", 1)], [1, 1, 1]),
    sc(
        "203.0.113.4",
        &[("root-refused", 2), ("closed", 1)],
        [1, 1, 1],
    ),
    // not in AllowUsers, in DenyUsers, not in AllowGroups
    sc(
        "203.0.113.5",
        &[("not-allowed", 1), ("failed", 1), ("closed", 1)],
        [1, 1, 1],
    ),
    sc(
        "203.0.113.6",
        &[("not-allowed", 1), ("failed", 1), ("closed", 1)],
        [1, 1, 1],
    ),
    sc(
        "203.0.113.7",
        &[("not-allowed", 1), ("failed", 1), ("closed", 1)],
        [1, 1, 1],
    ),
    // MaxAuthTries by passwords
    sc(
        "203.0.113.8",
        &[("failed", 3), ("max-attempts", 1), ("too-many", 1)],
        [3, 3, 0],
    ),
    // refused keys, then gone
    sc("203.0.113.10", &[("closed", 1)], [1, 1, 1]),
    // gone during key exchange; an HTTP request
    sc("203.0.113.11", &[("preauth-close", 1)], [0, 1, 1]),
    sc("203.0.113.12", &[("bad-banner", 1)], [0, 1, 1]),
    // banner read, closed: 10.0 writes "Connection closed by A port P" alone (kex.c logs
    // "kex_exchange_identification: Connection closed by remote host" at VERBOSE since 9.5),
    // the text of a logged-in client's close: not counted (the inventory's "-" line)
    sc("203.0.113.13", &[("kex-ident", 1)], [0, 1, 1]).v10(&[], [0, 0, 0]),
    sc("2001:db8:7::7", &[("kex-ident", 1)], [0, 1, 1]).v10(&[], [0, 0, 0]),
    // no common kex, no common cipher
    sc("203.0.113.14", &[("kex", 1)], [0, 1, 1]),
    sc("203.0.113.15", &[("kex", 1)], [0, 1, 1]),
    // closed, banner unread: reset
    sc("203.0.113.16", &[("kex-ident", 1)], [0, 1, 1]),
    // silent past LoginGraceTime: 9.2 writes nothing (Debian's CVE-2024-6387 fix), 10.0's
    // listener "Timeout before authentication for connection from A to L, pid = N"
    sc("203.0.113.17", &[], [0, 0, 0]).v10(&[("timeout", 1)], [0, 1, 1]),
    // MaxAuthTries by keys
    sc(
        "203.0.113.18",
        &[("max-attempts", 1), ("too-many", 1)],
        [1, 1, 0],
    ),
    // eight scans in turn: 9.2 the scanner pair eight times; 10.0 nothing for the admitted
    // ones (as .13) and, once the noauth penalty is active (from the fourth or fifth), drops
    // (counted once, with the scans)
    sc("203.0.113.19", &[("kex-ident", 8)], [0, 6, 6])
        .v10(&[("penalty-scan", AS_LOGGED)], [0, 1, 1]),
    // MaxStartups 2, five at once: 9.2 logs the first drop only (and "beginning MaxStartups
    // throttling"), the two admitted end as .13 does; 10.0 every drop ("... Maxstartups"),
    // the admitted ones not counted
    sc(
        "203.0.113.20",
        &[("maxstartups", 1), ("kex-ident", 2)],
        [0, 3, 3],
    )
    .v10(&[("maxstartups", 3)], [0, 3, 3]),
    // hostile user names, unknown users
    sc(
        "203.0.113.21",
        &[("invalid-user", 1), ("failed", 1), ("closed", 1)],
        [1, 1, 1],
    ),
    sc(
        "203.0.113.22",
        &[("invalid-user", 1), ("failed", 1), ("closed", 1)],
        [1, 1, 1],
    ),
    sc(
        "203.0.113.23",
        &[("invalid-user", 1), ("failed", 1), ("closed", 1)],
        [1, 1, 1],
    ),
    sc(
        "203.0.113.24",
        &[("invalid-user", 1), ("failed", 1), ("closed", 1)],
        [1, 1, 1],
    ),
    sc(
        "2001:db8:6::6",
        &[("invalid-user", 1), ("failed", 1), ("closed", 1)],
        [1, 1, 1],
    ),
    // four wrong passwords in turn: 10.0 refuses the second to fourth (penalty for failed
    // authentication), which count once more in normal mode (not once each), not in ddos
    sc("203.0.113.30", &[("failed", 4), ("closed", 4)], [4, 4, 4])
        .v10(&[("failed", 1), ("closed", 1), ("penalty", 3)], [2, 2, 1]),
    // the same from PerSourcePenaltyExemptList (10.0): never refused
    sc("203.0.113.31", &[("failed", 4), ("closed", 4)], [4, 4, 4]),
];

/// A scenario as one version counts it: address, rules, replay counts.
type Row = (&'static str, Vec<(&'static str, usize)>, [u32; 3]);

/// Where a line is written: by the listener, or by a connection's process (Debian 12: both
/// `sshd`; 10.0: `sshd` and `sshd-session`).
#[derive(Clone, Copy)]
enum By {
    Listener,
    Session,
}
use By::*;

/// Lines both versions write (one of each shape: ports vary), the logins and the hostile
/// names among them.
const LINES: &[(By, &str)] = &[
    (Session, "Failed password for pctssh from 203.0.113.2 port "),
    (Session, "Failed password for pctssh from 2001:db8:5::5 port "),
    (Session, "Failed password for root from 203.0.113.3 port "),
    (Session, "ROOT LOGIN REFUSED FROM 203.0.113.4 port "),
    (Session, "User pctout from 203.0.113.5 not allowed because not listed in AllowUsers"),
    (Session, "User pctdeny from 203.0.113.6 not allowed because listed in DenyUsers"),
    (Session, "User pctgrp from 203.0.113.7 not allowed because none of user's groups are listed in AllowGroups"),
    (Session, "Failed password for invalid user pctgrp from 203.0.113.7 port "),
    (Session, "error: maximum authentication attempts exceeded for pctssh from 203.0.113.8 port "),
    (Session, "Disconnecting authenticating user pctssh 203.0.113.8 port "),
    (Session, "PAM 2 more authentication failures; logname= uid=0 euid=0 tty=ssh ruser= rhost=203.0.113.8  user=pctssh"),
    (Session, "Accepted password for pctssh from 203.0.113.9 port "),
    (Session, "Connection closed by authenticating user pctssh 203.0.113.10 port "),
    (Session, "Connection closed by 203.0.113.11 port "),
    (Session, "banner exchange: Connection from 203.0.113.12 port "),
    (Session, "Connection closed by 203.0.113.13 port "),
    (Session, "Connection closed by 2001:db8:7::7 port "),
    (Session, "Unable to negotiate with 203.0.113.14 port "),
    (Session, "Unable to negotiate with 203.0.113.15 port "),
    (Session, "error: kex_exchange_identification: read: Connection reset by peer"),
    (Session, "Connection reset by 203.0.113.16 port "),
    (Session, "error: maximum authentication attempts exceeded for pctssh from 203.0.113.18 port "),
    (Session, "Connection closed by 203.0.113.19 port "),
    (Listener, "drop connection #2 from [203.0.113.20]:"),
    (Session, "Connection closed by 203.0.113.20 port "),
    (Session, "Invalid user admin from 192.0.2.66 port 1 from 203.0.113.21 port "),
    (Session, "Failed password for invalid user admin from 192.0.2.66 port 1 from 203.0.113.21 port "),
    (Session, "Connection closed by invalid user admin from 192.0.2.66 port 1 203.0.113.21 port "),
    (Session, "Failed password for invalid user x port 22 ssh2 from 203.0.113.22 port "),
    (Session, "Connection closed by invalid user y [preauth] 203.0.113.23 port "),
    (Session, "Invalid user nosuchuser from 203.0.113.24 port "),
    (Session, "Invalid user nosuchuser from 2001:db8:6::6 port "),
    (Session, "Failed password for pctssh from 203.0.113.30 port "),
    (Session, "Failed password for pctssh from 203.0.113.31 port "),
    (Session, "Accepted password for pctssh from 192.0.2.10 port "),
    (Session, "Accepted password for pctssh from 2001:db8:10::10 port "),
];

/// Runs every scenario against `version`'s sshd and checks what it wrote and what the filter
/// counts of it.
fn run(version: Release) {
    require_root();
    require_program("ssh", "openssh-client");
    require_program("ssh-keygen", "openssh-client");
    require_program("python3", "python3");
    require_program("openssl", "openssl");
    require_program("rsyslogd", "rsyslog");
    require_program("ip", "iproute2");
    require_program("ss", "iproute2");
    require_program("unshare", "util-linux");
    let tree = match version {
        Release::Deb12 => {
            require_program("sshd", "openssh-server");
            String::new()
        }
        Release::Deb13 => {
            require_program("chroot", "coreutils");
            trixie_root(&TRIXIE_SSHD).display().to_string()
        }
    };
    let v10 = version == Release::Deb13;
    let dir = test_dir(if v10 {
        "sshd-messages-10"
    } else {
        "sshd-messages"
    });
    // the logins run as the test user, whose home is under it
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let uid = free_ids(5, 64500..64900).to_string();
    let shown = [
        ("sshd", "sshd-main.out"),
        ("ssh", "ssh.out"),
        ("raw", "raw.out"),
        ("log", "syslog"),
    ];
    let script = format!("{PRIVATE_ETC_SH}{PRIVATE_SYSLOG_SH}{TRIXIE_SH}{SCRIPT}");
    run_script_ok(
        "sshd",
        dir.path(),
        &script,
        &[uid.as_ref(), tree.as_ref()],
        &shown,
    );
    let read = |name: &str| fs::read_to_string(dir.path().join(name)).unwrap_or_default();
    let sys = dir.path().join("syslog");
    let text = read("syslog");

    // what sshd wrote, and which program wrote it
    let (listener, session) = if v10 {
        (" sshd[", " sshd-session[")
    } else {
        (" sshd[", " sshd[")
    };
    let written = |by: By, line: &str| {
        let prog = match by {
            Listener => listener,
            Session => session,
        };
        text.lines()
            .any(|l| l.contains(prog) && l.contains(&format!("]: {line}")))
    };
    for &(by, line) in LINES {
        assert!(
            written(by, line),
            "{version:?}: not in the log: {line:?}\n{text}"
        );
    }
    // 9.2 only: the scanner pair's first line, the HTTP client's, MaxStartups' episode; 10.0
    // only: the listener's timeout (and below: every MaxStartups drop with its new wording,
    // the penalty drops)
    let only: &[(By, &str)] = &[
        (Session, "error: kex_exchange_identification: Connection closed by remote host"),
        (Session, "error: kex_exchange_identification: client sent invalid protocol identifier \"GET / HTTP/1.0\""),
        (Listener, "error: beginning MaxStartups throttling"),
    ];
    let only10: &[(By, &str)] = &[(
        Listener,
        "Timeout before authentication for connection from 203.0.113.17 to 192.0.2.1, pid = ",
    )];
    for &(by, line) in only {
        assert_eq!(written(by, line), !v10, "{version:?}: {line:?}\n{text}");
    }
    for &(by, line) in only10 {
        assert_eq!(written(by, line), v10, "{version:?}: {line:?}\n{text}");
    }
    let drops = |addr: &str, reason: &str| {
        text.lines()
            .filter(|l| l.contains(listener) && l.contains("]: drop connection #"))
            .filter(|l| l.contains(&format!(" from [{addr}]:")) && l.ends_with(reason))
            .count()
    };
    if v10 {
        assert_eq!(drops("203.0.113.20", "]:2222 Maxstartups"), 3, "{text}");
        assert_eq!(
            drops("203.0.113.30", " penalty: failed authentication"),
            3,
            "{text}"
        );
        let scans = " penalty: connections without attempting authentication";
        assert!(drops("203.0.113.19", scans) >= 1, "{text}");
        assert_eq!(
            text.matches(" Connection closed by 203.0.113.19 port ")
                .count()
                + drops("203.0.113.19", scans),
            8,
            "{text}"
        );
        // exempt: never refused
        assert!(!text.contains("[203.0.113.31]"), "{text}");
        // the pre-authentication process never writes itself: the monitor writes its
        // lines (" [preauth]"), as sshd-session
        assert!(!text.contains(" sshd-auth["), "{text}");
        assert!(
            text.contains(" sshd-session[") && text.contains("[preauth]"),
            "{text}"
        );
    } else {
        assert_eq!(text.matches("past MaxStartups").count(), 1, "{text}");
        assert!(!text.contains(" sshd-session["), "{text}");
        assert!(!text.contains("penalty"), "{text}");
    }
    // a refused key offer is not written at INFO; a pre-authentication timeout not by the
    // connection's process (though sshd closed the silent client)
    assert!(!text.contains("Failed publickey"), "{text}");
    assert!(
        !text
            .lines()
            .any(|l| l.contains(session) && l.contains("203.0.113.17")),
        "{text}"
    );
    assert!(
        read("raw.out").contains("grace: closed by sshd after "),
        "{}",
        read("raw.out")
    );

    // `test`: every line that counts, per address
    let got = rules_by_host("sshd", &sys);
    let table: Vec<Row> = SCENARIOS
        .iter()
        .map(|s| {
            let (rules, counts) = match (v10, s.v10) {
                (true, Some((r, c))) => (r, c),
                _ => (s.rules, s.counts),
            };
            let rules = rules
                .iter()
                .map(|&(r, n)| {
                    let n = if n == AS_LOGGED {
                        got.get(s.addr)
                            .map_or(0, |v| v.iter().filter(|x| *x == r).count())
                            .max(1)
                    } else {
                        n
                    };
                    (r, n)
                })
                .collect();
            (s.addr, rules, counts)
        })
        .collect();
    let rule_counts: Vec<(&str, &[(&str, usize)])> = table
        .iter()
        .filter(|(_, r, _)| !r.is_empty())
        .map(|(a, r, _)| (*a, r.as_slice()))
        .collect();
    assert_eq!(
        got,
        want_rules(&rule_counts),
        "{version:?}: what counted, per address; log:\n{text}"
    );

    // replays: per scenario, (address, normal, aggressive, ddos)
    for (i, mode) in ["normal", "aggressive", "ddos"].into_iter().enumerate() {
        let got = replay_counts(dir.path(), &sys, mode);
        let want: BTreeMap<String, u32> = table
            .iter()
            .map(|(a, _, c)| {
                let host = if a.contains(':') {
                    format!("{}::/64", a.rsplit_once("::").unwrap().0)
                } else {
                    a.to_string()
                };
                (host, c[i])
            })
            .filter(|(_, c)| *c > 0)
            .collect();
        assert_eq!(
            got, want,
            "{version:?}: replay counts in mode {mode}; log:\n{text}"
        );
    }
}

#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn real_sshd_messages_count_as_the_inventory_says() {
    run(Release::Deb12);
}

#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn real_sshd_10_messages_count_as_the_inventory_says() {
    run(Release::Deb13);
}

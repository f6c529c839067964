//! The `xrdp` filter against the real xrdp, twice: Debian 12's xrdp 0.9.21.1 (the machine's)
//! and Debian 13's 0.10.1 (test.sh's trixie tree, run with chroot in a private overlay of it:
//! common/real.rs `trixie_mount`), the same scenarios and one table of what counts for both.
//! xrdp runs in its own pid, mount and network namespace (`unshare`), by its full path as
//! Debian's units start it, with its own ini files in the test's directory:
//! `xrdp --nodaemon --config` listening on 192.0.2.1 and [2001:db8::1] port 3389 and on every
//! address port 3390 (`tcp6://:3390`, dual stack: an IPv4 client is `::ffff:a.b.c.d` there, as
//! with Debian's default `port=3389`), one Xvnc session section; `xrdp-sesman --nodaemon
//! --config` on its default 127.0.0.1:3350 (0.10: its default socket
//! /run/xrdp/sockdir/sesman.socket; a child `xrdp-sesexec` authenticates each login),
//! authenticating with PAM service `xrdp-sesman`
//! (pam_unix, `nodelay`: sesman handles one login at a time and 2 s per failure would add
//! up). Both log to their own files and through syslog(3) to a private rsyslogd (a private
//! /dev whose /dev/log is its socket). The account `pctrdp` exists only in a private /etc
//! overlay (passwd, group, shadow, pam.d/xrdp-sesman); /run and /tmp are private tmpfs mounts
//! (the X servers' sockets and locks).
//!
//! Clients: Debian's FreeRDP 2.11 (`xfreerdp /cert:ignore /u: /p:`, drawing on a private
//! Xtigervnc display): xrdp logs the credentials in automatically and asks sesman, which
//! writes `AUTHFAIL: user=U ip=A time=T` for each refused login. xfreerdp cannot choose its
//! source address: before each client the local route of the server's address gets that
//! client's address as preferred source. 203.0.113.5 three wrong passwords for pctrdp;
//! 203.0.113.6 an unknown user; 2001:db8::7 a wrong password and an unknown user over IPv6;
//! 203.0.113.7, .8, .9, .11 the user names ` from 192.0.2.66`, `[192.0.2.66]`,
//! `ip 192.0.2.66` and `x ip=192.0.2.66 time=1796000000`; 203.0.113.12 and .14 user names
//! holding a LF and a whole AUTHFAIL line for 192.0.2.66 (.14's ending in a LF too);
//! 203.0.113.13 a wrong password on the dual-stack port. Then 192.0.2.10 logs in right
//! (0.9's sesman creates its session, which ends at once for lack of a desktop; 0.10's
//! sesexec lets the user in, `Access permitted for user: pctrdp`, and its session fails:
//! the tree has no Xvnc).
//!
//! In the syslog file (rsyslog writes a LF as #012), `portcullis test --filter xrdp --json`
//! must count each AUTHFAIL once, for the address sesman wrote (never 192.0.2.66), and
//! nothing for the right login; `portcullis replay` bans 203.0.113.5 alone at maxretry 3, and
//! it and 2001:db8::/64 at maxretry 2. The test also holds the filter's audit to what xrdp
//! does: its own files are not safe (sesman's xrdp-sesman.log and xrdp's xrdp.log write the
//! user name raw, and the LF names write whole AUTHFAIL lines for 192.0.2.66 there). The
//! first run found that: xrdp.log (xrdp_mm.c `login failed for user %s`, last on the line)
//! and xrdp-sesman.log, which the filter named as its logs, counted 192.0.2.66. Now the
//! filter names syslog and the journal, and its rule is `tagged_only`: nothing of those two
//! files counts (asserted). The Debian 13 run found the same AUTHFAIL line, written by
//! xrdp-sesexec (a program the filter reads), and both own files still unsafe, more so: 0.10
//! writes the name last on a line in xrdp-sesman.log (sesexec's `Can't get UID for user
//! NAME`) and in xrdp.log (`Performing login request for NAME`), so a name with one LF writes
//! a whole forged AUTHFAIL line in each (asserted); no filter change was needed.
//!
//! Needs root, xrdp and xrdp-sesman (xrdp), xfreerdp (freerdp2-x11), Xtigervnc
//! (tigervnc-standalone-server), openssl, rsyslogd, iproute2's ip and ss, util-linux's
//! unshare (test.sh installs them), and for the second run chroot and the trixie tree; fails
//! loudly when they are missing. Runs in about 10 s each.

mod common;

use common::*;
use std::fs;
use std::os::unix::fs::PermissionsExt;

/// Run as pid 1 of the new pid, mount and network namespace (bash): every process of the
/// run is in it and dies with it; $1 is the test's directory, $2 a uid free on the machine,
/// $3 the Debian 13 tree (empty: the machine's xrdp). (After [`PRIVATE_ETC_SH`],
/// [`PRIVATE_SYSLOG_SH`] and [`TRIXIE_SH`].)
const SCRIPT: &str = r#"set -u
d="$1"; uid="$2"; tree="$3"
ip link set lo up
for a in 192.0.2.1 192.0.2.10 203.0.113.5 203.0.113.6 203.0.113.7 203.0.113.8 203.0.113.9 \
         203.0.113.11 203.0.113.12 203.0.113.13 203.0.113.14; do
  ip addr add "$a/32" dev lo || exit 2
done
for a in 2001:db8::1 2001:db8::7; do ip addr add "$a/128" dev lo nodad || exit 2; done
# a private /tmp (the X servers' sockets and locks), the test's directory kept in it
mount -t tmpfs -o mode=755 pct-run /run || exit 4
mkdir /run/pct-d && mount --bind "$d" /run/pct-d || exit 4
mount -t tmpfs -o mode=1777 pct-tmp /tmp || exit 4
mkdir -p "$d" && mount --bind /run/pct-d "$d" || exit 4
mkdir -p /run/xrdp/sockdir
# a private /dev whose /dev/log is a private rsyslogd's socket (common/netns.rs)
private_syslog "$d"
# the xrdp to run: the machine's (Debian 12), or Debian 13's in a private overlay of its tree
# (common/real.rs trixie_mount: its /etc, /run and /tmp private, $d at the same path), by
# its full path as Debian's units start it
r=""
run=()
if [ -n "$tree" ]; then
  r="$d/root"
  trixie_mount "$tree" "$r" "$d/trixie" || exit 4
  run=(chroot "$r")
fi
# the account, in a private /etc only; pam.d/xrdp-sesman: pam_unix without its 2 s delay
mkdir -p "$d/etc-src/pam.d" "$d/home" "$d/client"
chown "$uid:$uid" "$d/home"
cp "$r/etc/passwd" "$r/etc/group" "$r/etc/shadow" "$d/etc-src/"
hash=$(openssl passwd -6 Right-pw-1) || exit 4
echo "pctrdp:x:$uid:$uid:xrdp test:$d/home:/bin/sh" >> "$d/etc-src/passwd"
echo "pctrdp:$hash:20000:0:99999:7:::" >> "$d/etc-src/shadow"
echo "pctrdp:x:$uid:" >> "$d/etc-src/group"
cat > "$d/etc-src/pam.d/xrdp-sesman" <<P
auth [success=1 default=ignore] pam_unix.so nodelay
auth requisite pam_deny.so
auth required pam_permit.so
account required pam_unix.so
session required pam_unix.so
P
if [ -n "$tree" ]; then
  for f in passwd group shadow pam.d/xrdp-sesman; do cp "$d/etc-src/$f" "$r/etc/$f" || exit 4; done
  # 0.10's sesman listens on a socket in /run/xrdp, which xrdp finds there too
  listen=""
else
  private_etc "$d/etc-ov" "$d/etc-src" passwd group shadow pam.d/xrdp-sesman || exit 4
  listen="ListenAddress=127.0.0.1
ListenPort=3350"
fi
cat > "$d/xrdp.ini" <<I
[Globals]
ini_version=1
fork=true
port=tcp://192.0.2.1:3389 tcp6://{2001:db8::1}:3389 tcp6://:3390
security_layer=negotiate
crypt_level=high
certificate=
key_file=
ssl_protocols=TLSv1.2, TLSv1.3
allow_channels=true
[Logging]
LogFile=$d/xrdp.log
LogLevel=INFO
EnableSyslog=true
[Channels]
rdpdr=true
rdpsnd=true
drdynvc=true
cliprdr=true
rail=true
xrdpvr=true
tcutils=true
[Xvnc]
name=Xvnc
lib=libvnc.so
username=ask
password=ask
ip=127.0.0.1
port=-1
I
cat > "$d/sesman.ini" <<I
[Globals]
$listen
EnableUserWindowManager=true
UserWindowManager=startwm.sh
DefaultWindowManager=startwm.sh
ReconnectScript=reconnectwm.sh
[Security]
AllowRootLogin=false
MaxLoginRetry=4
AlwaysGroupCheck=false
[Sessions]
X11DisplayOffset=10
MaxSessions=50
[Logging]
LogFile=$d/xrdp-sesman.log
LogLevel=INFO
EnableSyslog=true
[Xvnc]
param=Xvnc
param=-bs
param=-nolisten
param=tcp
param=-localhost
I
"${run[@]}" /usr/sbin/xrdp-sesman --nodaemon --config "$d/sesman.ini" > "$d/sesman.out" 2>&1 &
"${run[@]}" /usr/sbin/xrdp --nodaemon --config "$d/xrdp.ini" > "$d/xrdp.out" 2>&1 &
sesman_up() {
  if [ -n "$tree" ]; then [ -S "$r/run/xrdp/sockdir/sesman.socket" ]; else [ "$(ss -Hltn 'sport = :3350' | wc -l)" -ge 1 ]; fi
}
# the display xfreerdp draws on
Xtigervnc :73 -nolisten tcp -rfbport -1 -SecurityTypes None > "$d/xvnc.out" 2>&1 &
for _ in $(seq 100); do
  [ "$(ss -Hltn 'sport = :3389 or sport = :3390' | wc -l)" -ge 3 ] && \
    sesman_up && [ -S /tmp/.X11-unix/X73 ] && break
  sleep 0.1
done
[ "$(ss -Hltn 'sport = :3389 or sport = :3390' | wc -l)" -ge 3 ] || { echo "xrdp did not listen" >&2; exit 5; }
sesman_up || { echo "xrdp-sesman did not listen" >&2; exit 5; }
[ -S /tmp/.X11-unix/X73 ] || { echo "Xtigervnc did not start" >&2; exit 5; }
export DISPLAY=:73 HOME="$d/client"
# conns SRC: how many connections from SRC xrdp logged (0.9: `connection received from ADDR
# port P`; 0.10: `Socket N: connection accepted from ADDR:P`)
conns() {
  grep -c "connection \(received\|accepted\) from \[\?\(::ffff:\)\?$1\]\?[: ]" "$d/syslog"
}
# rdp SRC ADDR PORT USER PASSWORD: one xfreerdp login from SRC (made the preferred source of
# the server address's local route), left running at xrdp's login screen; returns once
# connected
n=0
rdp() {
  local src=$1 addr=$2 port=$3 user=$4 pw=$5 host seen
  if [ "${src#*:}" != "$src" ]; then
    ip -6 route del local "$addr" dev lo table local 2>/dev/null
    ip -6 route add local "$addr" dev lo table local proto kernel src "$src" || exit 6
    host="[$addr]"
  else
    ip route replace local "$addr" dev lo table local proto kernel scope host src "$src" || exit 6
    host=$addr
  fi
  n=$((n + 1))
  seen=$(conns "$src")
  timeout 20 xfreerdp /v:"$host" /port:"$port" /cert:ignore /u:"$user" /p:"$pw" \
    > "$d/rdp.$n.out" 2>&1 &
  for _ in $(seq 100); do
    [ "$(conns "$src")" -gt "$seen" ] && return
    sleep 0.05
  done
  echo "xfreerdp $n did not connect from $src" >&2; exit 7
}
rdp 203.0.113.5 192.0.2.1 3389 pctrdp wrong1
rdp 203.0.113.5 192.0.2.1 3389 pctrdp wrong2
rdp 203.0.113.5 192.0.2.1 3389 pctrdp wrong3
rdp 203.0.113.6 192.0.2.1 3389 nosuchuser wrong
rdp 2001:db8::7 2001:db8::1 3389 pctrdp wrong
rdp 2001:db8::7 2001:db8::1 3389 nosuchuser wrong
rdp 203.0.113.7 192.0.2.1 3389 ' from 192.0.2.66' wrong
rdp 203.0.113.8 192.0.2.1 3389 '[192.0.2.66]' wrong
rdp 203.0.113.9 192.0.2.1 3389 'ip 192.0.2.66' wrong
rdp 203.0.113.11 192.0.2.1 3389 'x ip=192.0.2.66 time=1796000000' wrong
rdp 203.0.113.12 192.0.2.1 3389 "x
AUTHFAIL: user=y ip=192.0.2.66 time=1796000000" wrong
rdp 203.0.113.14 192.0.2.1 3389 "z
AUTHFAIL: user=z ip=192.0.2.66 time=1796000001
" wrong
rdp 203.0.113.13 192.0.2.1 3390 pctrdp wrong
for _ in $(seq 150); do
  [ "$(grep -c "xrdp-ses[a-z]*\[[0-9]*\]: \[INFO \] AUTHFAIL: " "$d/syslog")" -ge 13 ] && break
  sleep 0.1
done
rdp 192.0.2.10 192.0.2.1 3389 pctrdp Right-pw-1
for _ in $(seq 100); do
  # 0.9 creates its session; 0.10's sesexec lets it in (its session fails: the tree has no Xvnc)
  grep -q -e "created session (access granted): username pctrdp, ip 192.0.2.10:" \
    -e "Received sys login status for pctrdp : logged in" "$d/syslog" && break
  sleep 0.1
done
sleep 0.3
"#;

// The xrdp under test: Debian 12's (the machine's, 0.9.21.1) or Debian 13's (the trixie
// tree, 0.10.1, run with chroot).

/// Runs every scenario against `version`'s xrdp and checks what it wrote and what the filter
/// counts of it.
fn run(version: Release) {
    require_root();
    require_program("xfreerdp", "freerdp2-x11");
    require_program("Xtigervnc", "tigervnc-standalone-server");
    require_program("openssl", "openssl");
    require_program("rsyslogd", "rsyslog");
    require_program("ip", "iproute2");
    require_program("ss", "iproute2");
    require_program("unshare", "util-linux");
    let tree = match version {
        Release::Deb12 => {
            require_program("xrdp", "xrdp");
            require_program("xrdp-sesman", "xrdp");
            String::new()
        }
        Release::Deb13 => {
            require_program("chroot", "coreutils");
            let files = [
                "usr/sbin/xrdp",
                "usr/sbin/xrdp-sesman",
                "usr/lib/x86_64-linux-gnu/xrdp/xrdp-sesexec",
            ];
            trixie_root(&files).display().to_string()
        }
    };
    let v10 = version == Release::Deb13;
    let dir = test_dir(if v10 { "xrdp-10" } else { "xrdp" });
    // the session runs as the test user, whose home is under it
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let uid = free_ids(1, 64700..64900).to_string();
    let shown = [
        ("sesman", "sesman.out"),
        ("xrdp", "xrdp.out"),
        ("xrdp.log", "xrdp.log"),
        ("log", "syslog"),
    ];
    let script = format!("{PRIVATE_ETC_SH}{PRIVATE_SYSLOG_SH}{TRIXIE_SH}{SCRIPT}");
    run_script_ok(
        "xrdp",
        dir.path(),
        &script,
        &[uid.as_ref(), tree.as_ref()],
        &shown,
    );
    let read = |name: &str| fs::read_to_string(dir.path().join(name)).unwrap_or_default();
    let sys = dir.path().join("syslog");
    let text = read("syslog");

    // what sesman (0.9) or sesexec (0.10, sesman's child that authenticates) wrote: thirteen
    // refusals, the right login, the hostile names in the user field, the LFs as rsyslog's
    // #012
    let writer = if v10 { "xrdp-sesexec[" } else { "xrdp-sesman[" };
    let authfails: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("]: [INFO ] AUTHFAIL: user="))
        .collect();
    assert_eq!(
        authfails.len(),
        13,
        "thirteen AUTHFAIL lines expected:\n{text}"
    );
    assert!(
        authfails.iter().all(|l| l.contains(&format!(" {writer}"))),
        "{version:?}: AUTHFAIL written by {writer}:\n{text}"
    );
    let right: &[&str] = if v10 {
        &[
            "xrdp-sesman[",
            "]: [INFO ] Received system login request from xrdp for user: pctrdp IP: 192.0.2.10\n",
            "xrdp-sesexec[",
            "]: [INFO ] Access permitted for user: pctrdp\n",
        ]
    } else {
        &[
            "xrdp-sesman[",
            "]: [INFO ] ++ created session (access granted): username pctrdp, ip 192.0.2.10:",
        ]
    };
    for part in right {
        assert!(
            text.contains(part),
            "{version:?}: the right login is not in the log: {part:?}\n{text}"
        );
    }
    for line in [
        "AUTHFAIL: user= from 192.0.2.66 ip=203.0.113.7 time=",
        "AUTHFAIL: user=[192.0.2.66] ip=203.0.113.8 time=",
        "AUTHFAIL: user=ip 192.0.2.66 ip=203.0.113.9 time=",
        "AUTHFAIL: user=x ip=192.0.2.66 time=1796000000 ip=203.0.113.11 time=",
        "AUTHFAIL: user=x#012AUTHFAIL: user=y ip=192.0.2.66 time=1796000000 ip=203.0.113.12 time=",
        "AUTHFAIL: user=pctrdp ip=::ffff:203.0.113.13 time=",
        "AUTHFAIL: user=pctrdp ip=2001:db8::7 time=",
    ] {
        assert!(text.contains(line), "not in the log: {line:?}\n{text}");
    }

    let got = rules_by_host("xrdp", &sys);
    let want = want_rules(&[
        ("203.0.113.5", &[("authfail", 3)]),
        ("203.0.113.6", &[("authfail", 1)]),
        ("2001:db8::7", &[("authfail", 2)]),
        ("203.0.113.7", &[("authfail", 1)]),
        ("203.0.113.8", &[("authfail", 1)]),
        ("203.0.113.9", &[("authfail", 1)]),
        ("203.0.113.11", &[("authfail", 1)]),
        ("203.0.113.12", &[("authfail", 1)]),
        ("203.0.113.13", &[("authfail", 1)]),
        ("203.0.113.14", &[("authfail", 1)]),
    ]);
    assert_eq!(got, want, "what counted, per address; log:\n{text}");

    // the user names the filter read: the whole hostile names, never their address
    assert_counted_users(
        "xrdp",
        &sys,
        &[
            ("203.0.113.7", " from 192.0.2.66"),
            ("203.0.113.8", "[192.0.2.66]"),
            ("203.0.113.9", "ip 192.0.2.66"),
            ("203.0.113.11", "x ip=192.0.2.66 time=1796000000"),
            (
                "203.0.113.12",
                "x#012AUTHFAIL: user=y ip=192.0.2.66 time=1796000000",
            ),
        ],
    );

    // jails reading the syslog file ban exactly the attackers with enough failures
    let bans = replay_jail(dir.path(), "xrdp", &sys, "normal", 3);
    assert_eq!(
        bans.into_iter().collect::<Vec<_>>(),
        vec!["203.0.113.5".to_string()],
        "bans at maxretry 3; log:\n{text}"
    );
    let bans = replay_jail(dir.path(), "xrdp", &sys, "normal", 2);
    let mut want_bans = vec!["203.0.113.5".to_string(), ban_of("2001:db8::7")];
    want_bans.sort();
    assert_eq!(
        bans.into_iter().collect::<Vec<_>>(),
        want_bans,
        "bans at maxretry 2; log:\n{text}"
    );

    // the audit: xrdp's own files are NOT SAFE (the filter's header says never to read them,
    // and names neither as its log). A LF in the user name starts a line of the client's in
    // both; the rule is tagged_only, so nothing of those files counts, the forged AUTHFAIL
    // lines for 192.0.2.66 included.
    // 0.10 writes more names last on a line: sesexec's `Can't get UID for user NAME` in
    // xrdp-sesman.log, so a name with one LF is enough there; xrdp's `Performing login
    // request for NAME` in xrdp.log (0.9: `login failed for user NAME`)
    let forged_name = "x\nAUTHFAIL: user=y ip=192.0.2.66 time=1796000000\n";
    let (sesman_forged, xrdp_forged) = if v10 {
        (
            format!("[ERROR] Can't get UID for user {forged_name}"),
            format!("[INFO ] xrdp_wm_log_msg: Performing login request for {forged_name}"),
        )
    } else {
        (
            "\nAUTHFAIL: user=z ip=192.0.2.66 time=1796000001\n".to_string(),
            format!("login failed for user {forged_name}"),
        )
    };
    for (file, forged) in [
        ("xrdp-sesman.log", sesman_forged),
        ("xrdp.log", xrdp_forged),
    ] {
        let own = read(file);
        assert!(
            own.contains(forged.as_str()),
            "{file}: no forged line {forged:?}: has xrdp started escaping? Then correct the \
             audit in filters/xrdp.toml.\n{own}"
        );
        let counted = matched_users("xrdp", &dir.path().join(file));
        assert!(
            counted.is_empty(),
            "{file}: a line of xrdp's own file counted: {counted:?}"
        );
    }
}

#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn real_xrdp_authfail_counts_for_the_address_sesman_wrote() {
    run(Release::Deb12);
}

#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn real_xrdp_10_authfail_counts_for_the_address_sesexec_wrote() {
    run(Release::Deb13);
}

//! The `solid-pop3d` filter against the real Solid POP3 server. Debian 12's solid-pop3d (0.15,
//! unpacked by test.sh under /var/cache/portcullis-test/solid-pop3d, PORTCULLIS_SOLIDPOP3D_ROOT
//! elsewhere: it conflicts with dovecot-pop3d) runs in its own pid, mount and network
//! namespace (`unshare`) as the standalone daemon Debian builds (one dual-stack socket on port
//! 110, a process per session), with its own config file (`-f`: a mailbox under the test's
//! directory, APOP allowed, no bulletins) and Debian's /etc/pam.d/solid-pop3d (pam_unix). The
//! accounts exist only inside the namespace (a private /etc overlay: passwd, group, shadow
//! with `spop3d`, the user it drops to, `pctpop`, and `admin - 198.51.100.7`; hosts naming
//! 203.0.113.7 `198.51.100.7`). It logs through syslog(3) to a private rsyslogd (a private
//! /dev whose /dev/log is its socket, rsyslog's traditional file format).
//!
//! Clients (python3, the source address bound), all at once: 203.0.113.5 three wrong
//! passwords for `pctpop`; 203.0.113.6 and .7 the unknown users `x - 192.0.2.66` and
//! `y - a (198.51.100.7)`; 203.0.113.8 a wrong password for `admin - 198.51.100.7`;
//! 203.0.113.9 APOP for `pctpop` (who has no APOP secret) and for an unknown user;
//! 203.0.113.10 five unknown commands; 203.0.113.12 a user name holding a bare LF and a
//! forged `root login not allowed - 192.0.2.66`; 2001:db8::7 two wrong passwords over IPv6.
//! Then 192.0.2.10 logs in with the right password, asks STAT and quits.
//!
//! `portcullis test --filter solid-pop3d --json` must count each failure once, for the address
//! solid-pop3d wrote last on the line (never one inside a user name), the commands limit as
//! `bad-commands`, and nothing for 192.0.2.10; `portcullis replay` with `maxretry = 3` bans
//! 203.0.113.5 alone. The first run found that the filter read every line as written (no
//! pattern change); the name form `NAME (ADDR)` never appears in Debian's build (the reverse
//! lookup is given the wrong length and fails), and rsyslog wrote the bare LF as `#012`.
//!
//! Needs root, the unpacked solid-pop3d, python3, openssl, rsyslogd, iproute2 (ip, ss) and
//! util-linux's unshare (test.sh installs them); fails loudly when they are missing. Runs in
//! about 8 s (each failure waits 1 s, pam_unix's adds 2 s, in parallel).

mod common;

use common::*;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

const SOLIDPOP3D_ROOT: &str = "/var/cache/portcullis-test/solid-pop3d/root";

/// One POP3 session from a chosen source address; its replies are appended to NAME.out.
const CLIENT: &str = r#"import hashlib, socket, sys
# client.py SRC DST NAME LINE...: one POP3 session from SRC, a line "@APOP user secret" sends
# APOP with the digest of the greeting's timestamp; the replies go to NAME.out
src, dst, name = sys.argv[1], sys.argv[2], sys.argv[3]
fam = socket.AF_INET6 if ":" in dst else socket.AF_INET
s = socket.socket(fam, socket.SOCK_STREAM)
s.settimeout(10)
s.bind((src, 0))
s.connect((dst, 110))
f = s.makefile("rb")
out = [f.readline().decode("latin-1").rstrip()]
ts = out[0][out[0].find("<"):out[0].find(">") + 1]
for line in sys.argv[4:]:
    if line.startswith("@APOP "):
        _, user, secret = line.split(" ", 2)
        line = "APOP %s %s" % (user, hashlib.md5((ts + secret).encode()).hexdigest())
    s.sendall(line.encode("latin-1") + b"\r\n")
    r = f.readline().decode("latin-1").rstrip()
    out.append(r)
    if not r:
        break
with open(name + ".out", "a") as o:
    o.write("%s %s\n" % (src, " | ".join(out)))
"#;

/// Run as pid 1 of the new pid, mount and network namespace (bash): every process of the
/// run is in it and dies with it; $1 is the test's directory, $2 the first of three uids
/// free on the machine, $3 the unpacked package. (After [`PRIVATE_ETC_SH`] and
/// [`PRIVATE_SYSLOG_SH`].)
const SCRIPT: &str = r#"set -u
d="$1"; uid="$2"; root="$3"
ip link set lo up
for a in 192.0.2.1 192.0.2.10 203.0.113.5 203.0.113.6 203.0.113.7 203.0.113.8 203.0.113.9 \
         203.0.113.10 203.0.113.12; do
  ip addr add "$a/32" dev lo || exit 2
done
for a in 2001:db8::1 2001:db8::7; do ip addr add "$a/128" dev lo nodad || exit 2; done
private_syslog "$d"
mkdir -p "$d/etc-src/pam.d" "$d/home" "$d/mail"
chmod 1777 "$d/mail"
cp /etc/passwd /etc/group /etc/shadow /etc/hosts "$d/etc-src/"
cp "$root/etc/pam.d/solid-pop3d" "$d/etc-src/pam.d/"
hash=$(openssl passwd -6 Right-pw-1) || exit 4
echo "spop3d:x:$uid:$uid:solid-pop3d:/nonexistent:/usr/sbin/nologin" >> "$d/etc-src/passwd"
echo "spop3d:*:20000:0:99999:7:::" >> "$d/etc-src/shadow"
echo "spop3d:x:$uid:" >> "$d/etc-src/group"
i=1
for u in pctpop "admin - 198.51.100.7"; do
  echo "$u:x:$((uid + i)):$uid:pop test:$d/home:/bin/sh" >> "$d/etc-src/passwd"
  echo "$u:$hash:20000:0:99999:7:::" >> "$d/etc-src/shadow"
  i=$((i + 1))
done
printf '203.0.113.7 198.51.100.7\n2001:db8::7 x.198.51.100.7.example\n' >> "$d/etc-src/hosts"
private_etc "$d/etc-ov" "$d/etc-src" passwd group shadow hosts pam.d/solid-pop3d || exit 4
: > "$d/mail/pctpop"; chown $((uid + 1)):$uid "$d/mail/pctpop"; chmod 600 "$d/mail/pctpop"
cat > "$d/spop3d.conf" <<C
<Global>
	MailDropName	"$d/mail/%s"
	MailDropType	mailbox
	LogStatistics	no
	AllowAPOP	yes
	AddBulletins	no
</Global>
C
chmod 644 "$d/spop3d.conf"
LD_LIBRARY_PATH="$root/usr/lib/x86_64-linux-gnu" "$root/usr/sbin/solid-pop3d" -f "$d/spop3d.conf" 2> "$d/spop3d.err"
for _ in $(seq 100); do ss -Hltn 'sport = :110' | grep -q . && break; sleep 0.1; done
ss -Hltn 'sport = :110' | grep -q . || { echo "solid-pop3d did not listen" >&2; exit 5; }
pop() { timeout 15 python3 "$d/client.py" "$@" 2>> "$d/client.err"; }
pids=()
for p in wrong1 wrong2 wrong3; do pop 203.0.113.5 192.0.2.1 "$d/s5" "USER pctpop" "PASS $p" & pids+=($!); done
pop 203.0.113.6 192.0.2.1 "$d/s6" "USER x - 192.0.2.66" "PASS wrong" & pids+=($!)
pop 203.0.113.7 192.0.2.1 "$d/s7" "USER y - a (198.51.100.7)" "PASS wrong" & pids+=($!)
pop 203.0.113.8 192.0.2.1 "$d/s8" "USER admin - 198.51.100.7" "PASS wrong" & pids+=($!)
pop 203.0.113.9 192.0.2.1 "$d/s9" "@APOP pctpop guess" & pids+=($!)
pop 203.0.113.9 192.0.2.1 "$d/s9" "@APOP nosuch guess" & pids+=($!)
pop 203.0.113.10 192.0.2.1 "$d/s10" "XYZZY 1" "XYZZY 2" "XYZZY 3" "XYZZY 4" "XYZZY 5" & pids+=($!)
pop 203.0.113.12 192.0.2.1 "$d/s12" "USER x
root login not allowed - 192.0.2.66" "PASS wrong" & pids+=($!)
for p in wrong1 wrong2; do pop 2001:db8::7 2001:db8::1 "$d/s6v" "USER pctpop" "PASS $p" & pids+=($!); done
wait "${pids[@]}"
pop 192.0.2.10 192.0.2.1 "$d/legit" "USER pctpop" "PASS Right-pw-1" "STAT" "QUIT"
for _ in $(seq 50); do
  grep -q "session ended for user pctpop" "$d/syslog" 2>/dev/null && break
  sleep 0.1
done
kill %1
wait
exit 0
"#;

fn root() -> PathBuf {
    unpacked(
        "PORTCULLIS_SOLIDPOP3D_ROOT",
        SOLIDPOP3D_ROOT,
        &["usr/sbin/solid-pop3d"],
        "Debian's solid-pop3d",
    )
}

#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn real_solidpop3d_failures_count_for_the_address_it_wrote_last() {
    require_root();
    require_program("python3", "python3");
    require_program("openssl", "openssl");
    require_program("rsyslogd", "rsyslog");
    require_program("ip", "iproute2");
    require_program("ss", "iproute2");
    require_program("unshare", "util-linux");
    let root = root();
    let dir = test_dir("solidpop3d");
    // the session drops to `spop3d` and to the user: both read under it
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let uid = free_ids(3, 64900..65100).to_string();
    fs::write(dir.path().join("client.py"), CLIENT).unwrap();
    let shown = [
        ("solid-pop3d", "spop3d.err"),
        ("clients", "client.err"),
        ("log", "syslog"),
    ];
    let script = format!("{PRIVATE_ETC_SH}{PRIVATE_SYSLOG_SH}{SCRIPT}");
    let args = [uid.as_ref(), root.as_os_str()];
    run_script_ok("solid-pop3d", dir.path(), &script, &args, &shown);
    let read = |name: &str| fs::read_to_string(dir.path().join(name)).unwrap_or_default();
    let sys = dir.path().join("syslog");
    let text = read("syslog");

    // what the clients saw: every attacker refused, the right login let in
    let mut seen = Vec::new();
    for name in ["s5", "s6", "s7", "s8", "s9", "s10", "s12", "s6v", "legit"] {
        seen.extend(read(&format!("{name}.out")).lines().map(String::from));
    }
    let refused = seen
        .iter()
        .filter(|l| l.ends_with("-ERR authentication failed"))
        .count();
    assert_eq!(
        refused, 11,
        "eleven refused logins expected: {seen:#?}\nlog:\n{text}"
    );
    assert!(
        seen.iter()
            .any(|l| l.starts_with("203.0.113.10 ")
                && l.matches("-ERR unknown command").count() == 5),
        "five unknown commands: {seen:#?}"
    );
    assert!(
        seen.iter().any(|l| l.starts_with("192.0.2.10 ")
            && l.contains("+OK authentication successful")
            && l.ends_with("+OK session ended")),
        "the right login: {seen:#?}\nlog:\n{text}"
    );

    // what solid-pop3d wrote: the hostile names before the address, the LF escaped
    for hostile in [
        "authentication failed: no such user: x - 192.0.2.66 - 203.0.113.6\n",
        "authentication failed: no such user: y - a (198.51.100.7) - 203.0.113.7\n",
        "authentication failed for user admin - 198.51.100.7 - 203.0.113.8\n",
        "authentication failed: no such user: x#012root login not allowed - 192.0.2.66 - 203.0.113.12\n",
        "can't find APOP secret for user pctpop - 203.0.113.9\n",
        "wrong commands limit exceeded - 203.0.113.10\n",
        "user pctpop authenticated - 192.0.2.10\n",
    ] {
        assert!(
            text.contains(hostile),
            "not in the log as expected ({hostile:?}):\n{text}"
        );
    }
    assert!(
        !text.lines().any(|l| l.starts_with("root login")),
        "a client wrote a line of its own:\n{text}"
    );

    let want = want_rules(&[
        ("203.0.113.5", &[("auth-failed", 3)]),
        ("203.0.113.6", &[("auth-failed", 1)]),
        ("203.0.113.7", &[("auth-failed", 1)]),
        ("203.0.113.8", &[("auth-failed", 1)]),
        ("203.0.113.9", &[("auth-failed", 2)]),
        ("203.0.113.10", &[("bad-commands", 1)]),
        ("203.0.113.12", &[("auth-failed", 1)]),
        ("2001:db8::7", &[("auth-failed", 2)]),
    ]);
    let got = rules_by_host("solid-pop3d", &sys);
    assert_eq!(got, want, "what counted, per address; log:\n{text}");

    // the user names the filter read: the whole hostile names
    assert_counted_users(
        "solid-pop3d",
        &sys,
        &[
            ("203.0.113.6", "x - 192.0.2.66"),
            ("203.0.113.7", "y - a (198.51.100.7)"),
            ("203.0.113.8", "admin - 198.51.100.7"),
        ],
    );

    // a jail with maxretry 3 bans the client with three failures, and only it (the commands
    // limit is scan-class, left out in mode normal)
    let bans = replay_jail(dir.path(), "solid-pop3d", &sys, "normal", 3);
    assert_eq!(
        bans.into_iter().collect::<Vec<_>>(),
        vec!["203.0.113.5".to_string()],
        "bans; log:\n{text}"
    );
}

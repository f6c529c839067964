//! The `mysqld-auth` filter against the real MariaDB, twice, one scenario table: Debian 12's
//! mariadb-server 10.11 (the machine's `mariadbd`) and Debian 13's 11.8 (test.sh's trixie-e
//! tree, run with chroot in a private overlay of it: common/real.rs `trixie_mount`, with
//! journald's /run/systemd bound in), its audit plugin (server_audit) writing through
//! syslog(3) into a real systemd-journald (the machine's, systemd 252, for both, in a private
//! mount namespace: `common::journald`), and the daemon (this build, `Journald::daemon`, null
//! firewall) reading that journal with the filter. Both versions wrote the same records (11.8.9
//! adds no connection type after the status).
//!
//! `mariadbd --no-defaults` runs in journald's mount namespace, in a network and mount
//! namespace of its own (`unshare -n -m`) whose /dev is private (`private_dev`) with /dev/log
//! a link to journald's `/run/systemd/journal/dev-log`, as the user mysql (the tree's for
//! 11.8), on 192.0.2.10 and
//! [2001:db8::10]:3306, with a throwaway datadir (mariadb-install-db), `plugin_load_add =
//! server_audit`, `server_audit_logging = ON`, `server_audit_events = CONNECT`,
//! `server_audit_output_type = syslog` and `skip_name_resolve` (the filter's advice; the
//! namespace's /etc/hosts names 203.0.113.9 evil-host.example, which MariaDB would write
//! instead of the address without it). Its stderr (the error log: no `log_error`) goes to
//! journald's stdout transport with `systemd-cat -t mariadbd`, as under systemd. An account
//! alice@'%' (password "secret") and a database appdb exist.
//!
//! Clients (python3 in the same network namespace, raw MySQL handshakes with the
//! mysql_native_password scramble, each bound to its source address): 198.51.100.7 gives
//! alice three wrong passwords; 203.0.113.9 tries the unknown user nobody; 2001:db8::7 a wrong
//! password over IPv6; 203.0.113.20 seven hostile user names, each with a wrong password: one
//! with a LF followed by a whole forged audit record of 192.0.2.66, one
//! `a,192.0.2.66,7,0,FAILED_CONNECT,,,1045` (commas), quotes and a backslash, the non-UTF-8
//! bytes FF FE, `tail@192.0.2.66`, 116 three-byte characters then `,192.0.2.66` (359 bytes;
//! the record keeps the first 132 bytes and one stray byte, then the client's address) and
//! alice naming the database
//! `d,192.0.2.66,1,0,FAILED_CONNECT,x<LF>y`; the legitimate 198.51.100.50 logs in as alice
//! (a CONNECT record) and then names the database mysql it may not use (status 1044, the
//! right password); 198.51.100.51 opens a TCP connection and closes it (status 1158, no user).
//! Last, the local user nobody writes `logger -t mysql-server_auditing` a failure record of
//! 192.0.2.66.
//!
//! Asserted: what MariaDB sent each client (1045 for each failure, OK, 1044); from the
//! journal (`journalctl -o json`): every audit record is one entry with _TRANSPORT=syslog,
//! SYSLOG_IDENTIFIER mysql-server_auditing and the mysql user's _UID, the LF record included
//! (its MESSAGE holds the LF), while the error log's copy of that user name is split: the
//! forged record is a stdout entry of its own (why the filter never reads the error log or
//! the stdout transport). mariadbd runs in a hand-made `mariadb.service` cgroup (common
//! `UnitCgroup`), so journald files its entries under that unit as under systemd. Then the
//! daemon: a jail on the filter's shipped source (read from `portcullis filters --json`:
//! `_SYSTEMD_UNIT=mariadb.service _TRANSPORT=syslog`) and one on
//! `SYSLOG_IDENTIFIER=mysql-server_auditing _TRANSPORT=syslog _UID=<mysql>` each count exactly
//! 198.51.100.7 3, 203.0.113.9 1, 2001:db8::/64 1, 203.0.113.20 7 (every hostile name once,
//! for the client's address; never 192.0.2.66, never the legitimate clients); the latter
//! without the _UID match also counts nobody's forged record of 192.0.2.66; with maxretry 3
//! it bans 198.51.100.7 and 203.0.113.20 only.
//!
//! Needs root, mariadbd, mariadb-install-db and mariadb (mariadb-server, mariadb-client; for
//! the second run the trixie-e tree's, and chroot), python3, systemd-cat and journald
//! (systemd), logger (bsdutils), setpriv/unshare/nsenter (util-linux), ip (iproute2). Fails
//! loudly when they are missing. Runs in about 4 s each.

mod common;

use common::*;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

const PYTHON: &str = "/usr/bin/python3";
const IDENT: &str = "mysql-server_auditing";
/// The forged record a client's user name carries after its LF (and nobody's `logger` line).
const FORGED: &str = "20261205 14:00:00,vm,root,192.0.2.66,99,0,FAILED_CONNECT,,,1045";

/// A raw MySQL client: `hs.py SRC DST USER_HEX DB_HEX|- PASSWORD|-`. Connects from SRC to
/// DST:3306, answers the greeting with a HandshakeResponse41 (utf8, mysql_native_password,
/// the scramble of PASSWORD or 20 junk bytes), follows an auth switch, and prints `ERR CODE`
/// or `OK`.
const HS_PY: &str = r#"import hashlib, socket, struct, sys
src, dst, user = sys.argv[1], sys.argv[2], bytes.fromhex(sys.argv[3])
db = None if sys.argv[4] == '-' else bytes.fromhex(sys.argv[4])
pw = None if sys.argv[5] == '-' else sys.argv[5].encode()
s = socket.socket(socket.AF_INET6 if ':' in dst else socket.AF_INET)
s.settimeout(10)
s.bind((src, 0))
s.connect((dst, 3306))
def rd():
    h = b''
    while len(h) < 4:
        c = s.recv(4 - len(h))
        if not c:
            return None, None
        h += c
    n = h[0] | h[1] << 8 | h[2] << 16
    b = b''
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c:
            break
        b += c
    return h[3], b
def scramble(salt):
    if pw is None:
        return b'x' * 20
    a = hashlib.sha1(pw).digest()
    b = hashlib.sha1(salt + hashlib.sha1(a).digest()).digest()
    return bytes(x ^ y for x, y in zip(a, b))
seq, greet = rd()
i = greet.index(b'\0', 1) + 1 + 4
salt = greet[i:i + 8] + greet[i + 8 + 1 + 2 + 1 + 2 + 2 + 1 + 10:][:12]
caps = 1 | 0x200 | 0x8000 | 0x80000 | (8 if db is not None else 0)
body = struct.pack('<IIB', caps, 1 << 24, 33) + b'\0' * 23 + user + b'\0' + bytes([20]) + scramble(salt)
if db is not None:
    body += db + b'\0'
body += b'mysql_native_password\0'
s.sendall(struct.pack('<I', len(body))[:3] + bytes([seq + 1]) + body)
for _ in range(4):
    seq, r = rd()
    if r is None:
        print('closed')
        break
    if r[0] == 0xfe:
        salt = r[r.index(b'\0', 1) + 1:][:20]
        s.sendall(struct.pack('<I', 20)[:3] + bytes([seq + 1]) + scramble(salt))
        continue
    if r[0] == 0xff:
        print('ERR', struct.unpack('<H', r[1:3])[0])
    else:
        print('OK' if r[0] == 0 else 'OTHER')
    break
"#;

/// Run in journald's mount namespace under `unshare -n -m` (bash, after
/// [`PRIVATE_SYSLOG_SH`]): $1 the test's directory.
const SCRIPT: &str = r#"set -u
d="$1"; tree="$2"
ip link set lo up || exit 2
for a in 192.0.2.10 198.51.100.7 203.0.113.9 203.0.113.20 198.51.100.50 198.51.100.51; do
  ip addr add "$a/32" dev lo || exit 2
done
for a in 2001:db8::10 2001:db8::7; do ip addr add "$a/128" dev lo nodad || exit 2; done
private_dev
ln -s /run/systemd/journal/dev-log /dev/log
cp /etc/hosts "$d/hosts" && echo "203.0.113.9 evil-host.example" >> "$d/hosts"
mount --bind "$d/hosts" /etc/hosts || exit 2
chmod 755 "$d"
# the MariaDB to run: the machine's, or Debian 13's in a private overlay of its tree (common/
# real.rs trixie_mount: $d at the same path, the namespace's /dev with its /dev/log, and
# journald's /run/systemd bound in), as that tree's mysql user
run=
if [ -n "$tree" ]; then
  trixie_mount "$tree" "$d/root" "$d/trixie" || exit 2
  mkdir -p "$d/root/run/systemd" && mount --bind /run/systemd "$d/root/run/systemd" || exit 2
  run="chroot $d/root"
fi
mkdir -p "$d/run" && $run chown mysql:mysql "$d/run"
$run mariadb-install-db --no-defaults --datadir="$d/data" --user=mysql --skip-test-db \
  --auth-root-authentication-method=normal > "$d/install.out" 2>&1 \
  || { echo "mariadb-install-db failed" >&2; cat "$d/install.out" >&2; exit 3; }
# in a hand-made mariadb.service (common/journald.rs UnitCgroup): journald files its
# entries under that unit, as under Debian's mariadb.service
( in_unit; exec systemd-cat -t mariadbd $run /usr/sbin/mariadbd --no-defaults --datadir="$d/data" --user=mysql \
  --bind-address=192.0.2.10,2001:db8::10 --port=3306 --socket="$d/run/sock" \
  --pid-file="$d/run/pid" --skip-name-resolve --log-warnings=2 \
  --plugin-load-add=server_audit --server-audit-logging=ON --server-audit-events=CONNECT \
  --server-audit-output-type=syslog ) &
server=$!
for _ in $(seq 150); do [ -S "$d/run/sock" ] && break; sleep 0.2; done
[ -S "$d/run/sock" ] || { echo "mariadbd did not start" >&2; exit 4; }
$run mariadb -S "$d/run/sock" -u root -e "CREATE USER 'alice'@'%' IDENTIFIED BY 'secret'; CREATE DATABASE appdb;" \
  || exit 5
hx() { printf '%s' "$1" | od -v -An -tx1 | tr -d ' \n'; }
c() { echo "$1 $(python3 "$d/hs.py" "$@" 2>&1)" >> "$d/clients.out"; }
nl=$'\n'
for i in 1 2 3; do c 198.51.100.7 192.0.2.10 "$(hx alice)" - "wrong$i"; done
c 203.0.113.9 192.0.2.10 "$(hx nobody)" - wrong
c 2001:db8::7 2001:db8::10 "$(hx alice)" - wrong
c 203.0.113.20 192.0.2.10 "$(hx "x${nl}@FORGED@")" - wrong
c 203.0.113.20 192.0.2.10 "$(hx "a,192.0.2.66,7,0,FAILED_CONNECT,,,1045")" - wrong
c 203.0.113.20 192.0.2.10 "$(hx "o'brien\"q\\z")" - wrong
c 203.0.113.20 192.0.2.10 fffe41 - wrong
c 203.0.113.20 192.0.2.10 "$(hx tail@192.0.2.66)" - wrong
c 203.0.113.20 192.0.2.10 "$(hx "$(for _ in $(seq 116); do printf '\342\202\254'; done),192.0.2.66")" - wrong
c 203.0.113.20 192.0.2.10 "$(hx alice)" "$(hx "d,192.0.2.66,1,0,FAILED_CONNECT,x${nl}y")" wrong
c 198.51.100.50 192.0.2.10 "$(hx alice)" - secret
c 198.51.100.50 192.0.2.10 "$(hx alice)" "$(hx mysql)" secret
python3 -c "import socket; s=socket.socket(); s.bind(('198.51.100.51',0)); s.connect(('192.0.2.10',3306)); s.recv(200); s.close()"
setpriv --reuid=nobody --regid=nogroup --clear-groups logger -t mysql-server_auditing " vm,root,192.0.2.66,1,0,FAILED_CONNECT,,,1045"
$run mariadb -S "$d/run/sock" -u root -e "SHUTDOWN" || kill "$server"
wait "$server"
"#;

fn daemon_config(dir: &Path, uid: u32) -> PathBuf {
    let advised = format!("journal:SYSLOG_IDENTIFIER={IDENT} _TRANSPORT=syslog _UID={uid}");
    let no_uid = format!("journal:SYSLOG_IDENTIFIER={IDENT} _TRANSPORT=syslog");
    let shipped = shipped_journal_source("mysqld-auth");
    let mut text = null_config_head(dir);
    for (name, source, maxretry) in [
        ("count", &advised, 100),
        ("no-uid", &no_uid, 100),
        ("ban", &advised, 3),
        ("shipped", &shipped, 100),
    ] {
        text.push_str(&format!(
            "[[jail]]\nname = \"{name}\"\nfilter = \"mysqld-auth\"\nlogs = [{source:?}]\n\
             maxretry = {maxretry}\nfindtime = \"1h\"\nbantime = \"1h\"\n"
        ));
    }
    let path = dir.join("portcullis.toml");
    fs::write(&path, text).unwrap();
    path
}

/// An entry's MESSAGE: journalctl's JSON gives it as a string, or as an array of bytes when
/// it is not UTF-8 (read lossily).
fn message(e: &Value) -> String {
    match &e["MESSAGE"] {
        Value::String(s) => s.clone(),
        Value::Array(a) => {
            let b: Vec<u8> = a
                .iter()
                .filter_map(|x| x.as_u64())
                .map(|x| x as u8)
                .collect();
            String::from_utf8_lossy(&b).into_owned()
        }
        _ => String::new(),
    }
}

/// The OPERATION of an audit record `...,OPERATION,DB,,STATUS` (10.11: nothing after the
/// status), read from its end: a user name may hold commas.
fn operation(m: &str) -> &str {
    let f: Vec<&str> = m.trim_end().rsplitn(5, ',').collect();
    if f.len() == 5 && f[1].is_empty() {
        f[3]
    } else {
        ""
    }
}

/// The uid of the user mysql in the passwd file `passwd` (the machine's, or the tree's).
fn mysql_uid(passwd: &Path) -> u32 {
    fs::read_to_string(passwd)
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() > 2 && f[0] == "mysql").then(|| f[2].parse().ok())?
        })
        .unwrap_or_else(|| panic!("no user mysql in {}", passwd.display()))
}

#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn real_mariadb_audit_syslog_counts_failed_logins_for_the_client_address() {
    run(Release::Deb12);
}

#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn real_mariadb_11_8_audit_syslog_counts_failed_logins_for_the_client_address() {
    run(Release::Deb13);
}

fn run(release: Release) {
    require_root();
    let tree = match release {
        Release::Deb12 => {
            for (program, package) in [
                ("mariadbd", "mariadb-server"),
                ("mariadb-install-db", "mariadb-server"),
                ("mariadb", "mariadb-client"),
            ] {
                require_program(program, package);
            }
            None
        }
        Release::Deb13 => {
            require_program("chroot", "coreutils");
            Some(trixie_e_root(&[
                "usr/sbin/mariadbd",
                "usr/bin/mariadb-install-db",
                "usr/bin/mariadb",
                "usr/lib/mysql/plugin/server_audit.so",
            ]))
        }
    };
    for (program, package) in [
        ("systemd-cat", "systemd"),
        ("logger", "bsdutils"),
        ("setpriv", "util-linux"),
        ("unshare", "util-linux"),
        ("nsenter", "util-linux"),
        ("ip", "iproute2"),
        ("bash", "bash"),
    ] {
        require_program(program, package);
    }
    assert!(
        Path::new(PYTHON).is_file(),
        "{PYTHON} is missing: install python3 (test.sh does)"
    );
    let mysql = mysql_uid(&match &tree {
        Some(t) => t.join("etc/passwd"),
        None => PathBuf::from("/etc/passwd"),
    });
    let dir = test_dir(if tree.is_some() {
        "mariadb-11.8"
    } else {
        "mariadb"
    });
    let d = dir.path().to_str().expect("utf-8 path").to_string();
    let path = |rel: &str| dir.path().join(rel);
    let read = |rel: &str| fs::read_to_string(path(rel)).unwrap_or_default();

    let journald = Journald::start_with("[Journal]\nStorage=volatile\nRateLimitBurst=0\n");
    journald.assert_release();
    let config = daemon_config(dir.path(), mysql);
    // a slice of this run's own: the Debian 12 and 13 tests run at once in this binary
    let cgroup = UnitCgroup::private("mariadb", "mariadb.service");
    let socket = path("portcullis.sock");
    let daemon_log = path("daemon.log");
    let mut daemon = journald.daemon(&config, &path("state"), &daemon_log);

    fs::write(path("hs.py"), HS_PY).unwrap();
    fs::write(
        path("run.sh"),
        format!(
            "{PRIVATE_SYSLOG_SH}{TRIXIE_SH}{}{}",
            cgroup.shell_function("in_unit"),
            SCRIPT.replace("@FORGED@", FORGED)
        ),
    )
    .unwrap();
    let mut cmd = journald.command(&[
        "unshare".into(),
        "-n".into(),
        "-m".into(),
        "--propagation".into(),
        "private".into(),
        "bash".into(),
        path("run.sh").display().to_string(),
        d.clone(),
        tree.as_ref()
            .map(|t| t.display().to_string())
            .unwrap_or_default(),
    ]);
    let out = run_with_timeout(&mut cmd, None, Duration::from_secs(120));
    let journal_text = || {
        journald
            .messages(&[])
            .into_iter()
            .map(|(m, e)| format!("{} {:?}", e["_TRANSPORT"].as_str().unwrap_or(""), m))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert!(
        out.success(),
        "the MariaDB run failed (timed out: {}): {}\n{}\nclients:\n{}\njournal:\n{}",
        out.timed_out,
        out.stdout_str(),
        out.stderr_str(),
        read("clients.out"),
        journal_text()
    );

    // ---- what MariaDB answered ----
    let clients = read("clients.out");
    let answers: Vec<&str> = clients
        .lines()
        .map(|l| l.split_once(' ').map_or("", |(_, a)| a))
        .collect();
    let mut want = vec!["ERR 1045"; 12];
    want.extend(["OK", "ERR 1044"]);
    assert_eq!(answers, want, "the clients' answers:\n{clients}");

    // ---- what journald stored ----
    let version = journald
        .messages(&["SYSLOG_IDENTIFIER=mariadbd"])
        .into_iter()
        .find_map(|(m, _)| {
            m.split_once("Starting MariaDB ")
                .map(|(_, v)| v.split(' ').next().unwrap_or("").to_string())
        })
        .unwrap_or_default();
    let (want_version, deb) = match release {
        Release::Deb12 => ("10.11.", "deb12"),
        Release::Deb13 => ("11.8.", "deb13"),
    };
    assert!(
        version.starts_with(want_version) && version.contains(deb),
        "not {deb}'s MariaDB {want_version}: {version:?}\njournal:\n{}",
        journal_text()
    );
    eprintln!("real_mariadb: MariaDB {version}");
    // every audit record (MESSAGE as text, or as bytes when not UTF-8) and its operation
    let audit: Vec<(String, Value)> = journald
        .messages(&[&format!("SYSLOG_IDENTIFIER={IDENT}")])
        .into_iter()
        .map(|(_, e)| (message(&e), e))
        .collect();
    let failed: Vec<&(String, Value)> = audit
        .iter()
        .filter(|(m, _)| operation(m) == "FAILED_CONNECT")
        .collect();
    // 12 failures, the 1044, the 1158, and nobody's logger line
    assert_eq!(failed.len(), 15, "journal:\n{}", journal_text());
    for (m, e) in &audit {
        assert_eq!(e["_TRANSPORT"].as_str(), Some("syslog"), "{m:?}: {e}");
        if e["_UID"].as_str() != Some(mysql.to_string().as_str()) {
            assert_eq!(
                m.trim(),
                "vm,root,192.0.2.66,1,0,FAILED_CONNECT,,,1045",
                "an entry not of mysql: {e}"
            );
        }
    }
    // the LF record is one entry, the LF inside its MESSAGE
    assert!(
        failed
            .iter()
            .any(|(m, _)| m.contains(&format!(",x\n{FORGED},203.0.113.20,"))),
        "no single entry holds the LF record:\n{}",
        journal_text()
    );
    // the error log's copy of that user name: split by the stdout transport, the forged
    // record an entry of its own
    let stdout = journald.messages(&["_TRANSPORT=stdout"]);
    assert!(
        stdout
            .iter()
            .any(|(m, _)| m.starts_with(&format!("{FORGED}'@'203.0.113.20'"))),
        "the error log's forged line is not an entry of its own:\n{}",
        journal_text()
    );

    // ---- what the daemon counted ----
    let want_count: BTreeMap<String, u32> = [
        ("198.51.100.7", 3),
        ("203.0.113.9", 1),
        ("2001:db8::7", 1),
        ("203.0.113.20", 7),
    ]
    .into_iter()
    .map(|(a, n)| (ban_of(a), n))
    .collect();
    let mut want_no_uid = want_count.clone();
    want_no_uid.insert("192.0.2.66".into(), 1);
    let mut seen = BTreeMap::new();
    let settled = wait_until(Duration::from_secs(20), || {
        seen = failing(&socket);
        seen.get("count") == Some(&want_count)
            && seen.get("no-uid") == Some(&want_no_uid)
            && seen.get("shipped") == Some(&want_count)
    });
    assert!(
        settled,
        "failing addresses per jail: {seen:?}\njournal:\n{}\ndaemon:\n{}",
        journal_text(),
        fs::read_to_string(&daemon_log).unwrap_or_default()
    );
    let bans = bans_by_jail(&socket);
    let want_bans: BTreeSet<String> = ["198.51.100.7", "203.0.113.20"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(bans.get("ban"), Some(&want_bans), "bans: {bans:?}");
    assert!(
        daemon.try_wait().is_none(),
        "the daemon died:\n{}",
        fs::read_to_string(&daemon_log).unwrap_or_default()
    );
}

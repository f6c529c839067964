//! The `dropbear` filter against the real Dropbear, Debian 12's (2022.83, the machine's) and
//! Debian 13's (2025.89, from the trixie tree test.sh makes, run with chroot in a private
//! overlay: common/real.rs `trixie_mount`). Each runs in its own pid, mount and network
//! namespace (`unshare`), twice: `dropbear -F -E -w -T 3` on 192.0.2.1:22 and
//! [2001:db8::1]:22 writing its own stderr log ("[PID] date message"), and `dropbear -F -w
//! -T 3` on :2222 logging through syslog(3) to a private rsyslogd (a private /dev whose
//! /dev/log is its socket). The accounts pctdb (password, /bin/sh) and root (its password
//! known, refused by -w) are in a private /etc (the machine's overlaid, or the tree's).
//!
//! Clients (Debian 12's dbclient, which tries the password until the server gives up, each
//! scenario from its own address and against both servers): a wrong password until "Max auth
//! tries" (198.51.100.1), an unknown user (.2), root with its right password (.3), hostile
//! unknown user names `x from 192.0.2.66:1` (.4) and one holding a newline and a whole
//! "Bad password attempt ... from 192.0.2.66:1" line (.5), a wrong password over IPv6
//! (2001:db8:77::7), and a right login (192.0.2.10). Then, against the :22 server, two
//! connections of unknown users (198.51.100.19, then 203.0.113.77) whose Dropbear children
//! get the same pid (the namespace's `ns_last_pid` set before each), as a busy server's pids
//! come round again.
//!
//! What must hold, in both logs and for both releases: `portcullis test --filter dropbear
//! --json` counts for each address exactly the rules of its scenario (the table below; where
//! 2025.89 writes another line, the table says so), nothing for 192.0.2.10, never
//! 192.0.2.66; `portcullis replay` with maxretry 3 bans 198.51.100.1 and 2001:db8:77::/64
//! alone. 2022.83 writes "Login attempt for nonexistent user" without the address (2020.79
//! to 2024.85), which the connection's "Child connection" line gives; with the second reused-pid connection's
//! "Child connection" line removed (a line lost to rotation or a rate-limited journal), its
//! address-less line must not take the first connection's address, whose "Exit before auth"
//! line ended that session. 2025.89 writes the address on that line again ("... from A:P").
//!
//! Needs root, Debian's dropbear-bin (dropbear, dropbearkey, dbclient), openssl, rsyslogd,
//! iproute2, util-linux's unshare, and the trixie tree (test.sh makes them all); fails
//! loudly when they are missing. Runs in about 10 s per release.

mod common;

use common::*;
use std::ffi::OsStr;
use std::fs;
use std::path::Path;

const FIRST: &str = "198.51.100.19";
const SECOND: &str = "203.0.113.77";

/// Run as pid 1 of the new pid, mount and network namespace (bash): every process of the run
/// is in it and dies with it. $1 is the test's directory, $2 a uid (and gid) free on the
/// machine, $3 the trixie tree (empty: the machine's Dropbear). (After [`PRIVATE_SYSLOG_SH`],
/// [`PRIVATE_ETC_SH`] and [`TRIXIE_SH`].)
const SCRIPT: &str = r#"set -u
d="$1"; id="$2"; tree="$3"
ip link set lo up
for a in 192.0.2.1 192.0.2.10 198.51.100.1 198.51.100.2 198.51.100.3 198.51.100.4 \
  198.51.100.5 198.51.100.19 203.0.113.77; do
  ip addr add "$a/32" dev lo || exit 2
done
for a in 2001:db8::1 2001:db8:77::7; do ip addr add "$a/128" dev lo nodad || exit 2; done
# a private /dev whose /dev/log is a private rsyslogd's socket (common/netns.rs)
private_syslog "$d"
# the Dropbear to run: the machine's (Debian 12), or Debian 13's in a private overlay of its
# tree (common/real.rs trixie_mount: its /etc, /run and /tmp private, $d at the same path),
# through chroot
r=""; run=()
if [ -n "$tree" ]; then
  r="$d/root"
  trixie_mount "$tree" "$r" "$d/trixie" || exit 4
  run=(chroot "$r")
fi
# the accounts, in a private /etc only: pctdb, and root with a password known to the test
mkdir -p "$d/etc-src" "$d/home"
chown "$id:$id" "$d/home"
cp "$r/etc/passwd" "$r/etc/group" "$r/etc/shadow" "$d/etc-src/"
hash=$(openssl passwd -6 Right-pw-1) || exit 4
echo "pctdb:x:$id:$id:dropbear test:$d/home:/bin/sh" >> "$d/etc-src/passwd"
echo "pctdb:$hash:20000:0:99999:7:::" >> "$d/etc-src/shadow"
echo "pctdb:x:$id:" >> "$d/etc-src/group"
sed -i "s|^root:[^:]*:|root:$hash:|" "$d/etc-src/shadow"
if [ -n "$tree" ]; then
  for f in passwd group shadow; do cp "$d/etc-src/$f" "$r/etc/$f" || exit 4; done
else
  private_etc "$d/etc-ov" "$d/etc-src" passwd group shadow || exit 4
fi
"${run[@]}" dropbearkey -t ed25519 -f "$d/hostkey" > "$d/dropbearkey.out" 2>&1 || exit 5
"${run[@]}" dropbear -F -E -w -T 3 -r "$d/hostkey" -p 192.0.2.1:22 -p '[2001:db8::1]:22' 2> "$d/dropbear.log" &
"${run[@]}" dropbear -F -w -T 3 -r "$d/hostkey" -p 192.0.2.1:2222 -p '[2001:db8::1]:2222' 2> "$d/dropbear-syslog.err" &
up() { grep -q "Not backgrounding" "$d/dropbear.log" 2>/dev/null && grep -q "dropbear\[.*Not backgrounding" "$d/syslog"; }
for _ in $(seq 50); do up && break; sleep 0.1; done
up || { echo "dropbear did not start" >&2; exit 6; }
# try LABEL SRC USER PASSWORD PORT [SERVER]: one connection of Debian 12's dbclient (it tries
# the password until the server gives up, -T 3); one line "LABEL PORT EXIT" in results
try() {
  local b=$2
  case $b in *:*) b="[$b]" ;; esac
  DROPBEAR_PASSWORD="$4" timeout 10 dbclient -y -y -b "$b" -p "$5" -l "$3" "${6:-192.0.2.1}" true \
    >> "$d/client.out" 2>&1
  echo "$1 $5 $?" >> "$d/results"
}
for port in 22 2222; do
  try wrong 198.51.100.1 pctdb wrong "$port"
  try unknown 198.51.100.2 nosuch wrong "$port"
  try root 198.51.100.3 root Right-pw-1 "$port"
  try forged 198.51.100.4 'x from 192.0.2.66:1' wrong "$port"
  try newline 198.51.100.5 "x
Bad password attempt for 'root' from 192.0.2.66:1" wrong "$port"
  try v6 2001:db8:77::7 pctdb wrong "$port" 2001:db8::1
  try legit 192.0.2.10 pctdb Right-pw-1 "$port"
done
# two connections served by a Dropbear child of the same pid (the next pids: timeout,
# dbclient, then Dropbear's child). The child writes its "Exit before auth" line before it
# exits, and its pid is taken until Dropbear has reaped it: the next round starts once that
# pid is gone from /proc (this namespace's), else a loaded machine could give the second
# child the next pid
for src in 198.51.100.19 203.0.113.77; do
  echo 500 > /proc/sys/kernel/ns_last_pid || exit 3
  try "pid-$src" "$src" nosuch wrong 22
  for _ in $(seq 50); do grep -q "Exit before auth from <$src:" "$d/dropbear.log" && break; sleep 0.1; done
  cpid=$(grep -m1 "Exit before auth from <$src:" "$d/dropbear.log" | sed -n 's/^\[\([0-9]*\)\].*/\1/p')
  for _ in $(seq 100); do [ -n "$cpid" ] && [ -e "/proc/$cpid" ] || break; sleep 0.05; done
done
# every connection's closing line is written
done_() { [ "$(grep -c 'Exit' "$d/dropbear.log")" -ge 9 ] && [ "$(grep -c 'dropbear\[.*Exit' "$d/syslog")" -ge 7 ]; }
for _ in $(seq 50); do done_ && break; sleep 0.1; done
kill %2 %3
wait %2 %3
kill %1
wait
"#;

// The Dropbear under test: Debian 12's (the machine's, 2022.83) or Debian 13's (the trixie
// tree, 2025.89, run with chroot).

/// One client's scenario: its label (the script's `try`), its address, what `test` counts
/// per rule, and each of its connection's lines that a rule reads, on 2022.83 and on 2025.89
/// where it differs ("{A}" the client's address; a line without it ends there).
struct Scenario {
    label: &'static str,
    addr: &'static str,
    rules: &'static [(&'static str, usize)],
    lines: &'static [&'static str],
    v2025: Option<&'static [&'static str]>,
}

const fn sc(
    label: &'static str,
    addr: &'static str,
    rules: &'static [(&'static str, usize)],
    lines: &'static [&'static str],
) -> Scenario {
    Scenario {
        label,
        addr,
        rules,
        lines,
        v2025: None,
    }
}

impl Scenario {
    /// The lines 2025.89 writes instead.
    const fn v2025(self, lines: &'static [&'static str]) -> Scenario {
        Scenario {
            v2025: Some(lines),
            ..self
        }
    }

    fn lines(&self, v: Release) -> &'static [&'static str] {
        match (v, self.v2025) {
            (Release::Deb13, Some(l)) => l,
            _ => self.lines,
        }
    }
}

/// An unknown user's connection: 2022.83 writes the line without the address (the session's
/// "Child connection" line gives it), 2025.89 with it (svr-auth.c checkusername(), commit
/// 588072a2 in 2024.86). Dropbear never writes the name the client sent: the hostile ones
/// are unknown users like any other.
const UNKNOWN: &[&str] = &[
    "Login attempt for nonexistent user",
    "Exit before auth from <{A}:P>: Max auth tries reached - user 'is invalid'",
];
const UNKNOWN_2025: &[&str] = &[
    "Login attempt for nonexistent user from {A}:P",
    "Exit before auth from <{A}:P>: Max auth tries reached - user 'is invalid'",
];
const UNKNOWN_RULES: &[(&str, usize)] = &[("nonexistent", 1), ("max-tries", 1)];

/// Every scenario, as filters/dropbear.toml counts it (`test` lists every line that counts:
/// the follow-up "Max auth tries" too; `replay` counts it only when nothing else of the
/// connection did).
const SCENARIOS: &[Scenario] = &[
    // a wrong password until -T 3
    sc(
        "wrong",
        "198.51.100.1",
        &[("bad-password", 3), ("max-tries", 1)],
        &[
            "Bad password attempt for 'pctdb' from {A}:P",
            "Bad password attempt for 'pctdb' from {A}:P",
            "Bad password attempt for 'pctdb' from {A}:P",
            "Exit before auth from <{A}:P>: (user 'pctdb', 3 fails): Max auth tries reached - user 'pctdb'",
        ],
    ),
    sc("unknown", "198.51.100.2", UNKNOWN_RULES, UNKNOWN).v2025(UNKNOWN_2025),
    // root with its right password, -w: refused once per connection (a cached failure is not
    // logged again), the tries counted as fails
    sc(
        "root",
        "198.51.100.3",
        &[("refused-user", 1), ("max-tries", 1)],
        &[
            "root login rejected",
            "Exit before auth from <{A}:P>: (user 'root', 3 fails): Max auth tries reached - user 'root'",
        ],
    ),
    // hostile names: unknown users, the name not written
    sc("forged", "198.51.100.4", UNKNOWN_RULES, UNKNOWN).v2025(UNKNOWN_2025),
    sc("newline", "198.51.100.5", UNKNOWN_RULES, UNKNOWN).v2025(UNKNOWN_2025),
    // IPv6: the address unbracketed in both releases' lines
    sc(
        "v6",
        "2001:db8:77::7",
        &[("bad-password", 3), ("max-tries", 1)],
        &[
            "Bad password attempt for 'pctdb' from {A}:P",
            "Bad password attempt for 'pctdb' from {A}:P",
            "Bad password attempt for 'pctdb' from {A}:P",
            "Exit before auth from <{A}:P>: (user 'pctdb', 3 fails): Max auth tries reached - user 'pctdb'",
        ],
    ),
    // the right login: nothing
    sc(
        "legit",
        "192.0.2.10",
        &[],
        &[
            "Password auth succeeded for 'pctdb' from {A}:P",
            "Exit (pctdb) from <{A}:P>: Exited normally",
        ],
    ),
];

/// The lines of `log` (`-E`'s "[PID] date " or syslog's "... dropbear[PID]: " taken off) of
/// the connection from `addr` (its "Child connection from ADDR:" line's pid, up to its
/// "Exit"), with the port as "P".
fn connection_lines(log: &str, addr: &str) -> Vec<String> {
    let message = |l: &str| -> Option<(String, String)> {
        if let Some(rest) = l.strip_prefix('[') {
            let (pid, rest) = rest.split_once("] ")?;
            // "Dec 05 02:19:51 "
            Some((pid.to_string(), rest.get(16..)?.to_string()))
        } else {
            let (_, rest) = l.split_once(" dropbear[")?;
            let (pid, msg) = rest.split_once("]: ")?;
            Some((pid.to_string(), msg.to_string()))
        }
    };
    // "ADDR:PORT" as "{A}:P"
    let generic = |m: &str| -> String {
        let key = format!("{addr}:");
        let mut out = String::new();
        let mut rest = m;
        while let Some(i) = rest.find(&key) {
            let after = &rest[i + key.len()..];
            let digits = after.len() - after.trim_start_matches(|c: char| c.is_ascii_digit()).len();
            if digits == 0 {
                out.push_str(&rest[..i + key.len()]);
            } else {
                out.push_str(&rest[..i]);
                out.push_str("{A}:P");
            }
            rest = &after[digits..];
        }
        out.push_str(rest);
        out
    };
    let mut pid = None;
    let mut out = vec![];
    for l in log.lines() {
        let Some((p, msg)) = message(l) else { continue };
        if msg.starts_with(&format!("Child connection from {addr}:")) {
            pid = Some(p);
            continue;
        }
        if pid.as_deref() != Some(p.as_str()) {
            continue;
        }
        out.push(generic(&msg));
        if msg.starts_with("Exit") {
            break;
        }
    }
    out
}

fn run(version: Release) {
    require_root();
    require_program("dropbear", "dropbear-bin");
    require_program("dropbearkey", "dropbear-bin");
    require_program("dbclient", "dropbear-bin");
    require_program("openssl", "openssl");
    require_program("rsyslogd", "rsyslog");
    require_program("ip", "iproute2");
    require_program("unshare", "util-linux");
    let tree = match version {
        Release::Deb12 => None,
        Release::Deb13 => Some(trixie_root(&["usr/sbin/dropbear", "usr/bin/dropbearkey"])),
    };
    let dir = test_dir("dropbear");
    let id = free_ids(1, 63500..63600).to_string();
    let script = format!("{PRIVATE_SYSLOG_SH}{PRIVATE_ETC_SH}{TRIXIE_SH}{SCRIPT}");
    let tree_arg = tree
        .as_ref()
        .map_or(OsStr::new(""), |t| t.as_os_str())
        .to_os_string();
    run_script_ok(
        "dropbear",
        dir.path(),
        &script,
        &[OsStr::new(&id), &tree_arg],
        &[
            ("log", "dropbear.log"),
            ("syslog", "syslog"),
            ("clients", "client.out"),
        ],
    );
    let read = |name: &str| fs::read_to_string(dir.path().join(name)).unwrap_or_default();
    let own = dir.path().join("dropbear.log");
    let sys = dir.path().join("syslog");

    // what the clients got: only the right login succeeded
    let mut results: Vec<String> = read("results").lines().map(str::to_string).collect();
    results.sort();
    let mut want_results: Vec<String> = SCENARIOS
        .iter()
        .flat_map(|s| {
            let code = if s.label == "legit" { 0 } else { 1 };
            [22, 2222].map(|p| format!("{} {p} {code}", s.label))
        })
        .chain([FIRST, SECOND].map(|a| format!("pid-{a} 22 1")))
        .collect();
    want_results.sort();
    assert_eq!(
        results,
        want_results,
        "{version:?}: clients:\n{}\nlog:\n{}",
        read("client.out"),
        read("dropbear.log")
    );

    let want_table: Vec<(&str, &[(&str, usize)])> = SCENARIOS
        .iter()
        .filter(|s| !s.rules.is_empty())
        .map(|s| (s.addr, s.rules))
        .collect();
    for log in [&own, &sys] {
        let text = fs::read_to_string(log).unwrap_or_default();
        // the lines each scenario's connection wrote
        for s in SCENARIOS {
            let want: Vec<String> = s
                .lines(version)
                .iter()
                .map(|l| l.replace("{A}", s.addr))
                .collect();
            let got: Vec<String> = connection_lines(&text, s.addr)
                .into_iter()
                .map(|l| l.replace("{A}", s.addr))
                .collect();
            assert_eq!(
                got,
                want,
                "{version:?} {}: the lines of {} ({}):\n{text}",
                log.display(),
                s.addr,
                s.label
            );
        }
        assert!(
            !text.contains("192.0.2.66"),
            "{version:?}: a hostile name reached the log:\n{text}"
        );
        // what counts, per address (and the reused-pid pair in Dropbear's own log)
        let table: Vec<(&str, &[(&str, usize)])> = if log == &own {
            want_table
                .iter()
                .copied()
                .chain([FIRST, SECOND].map(|a| (a, UNKNOWN_RULES)))
                .collect()
        } else {
            want_table.clone()
        };
        let got = lines_by_host("dropbear", log);
        assert_eq!(
            owned_rules_of(&got),
            want_rules(&table),
            "{version:?} {}: what counted, per address: {got:#?}\nlog:\n{text}",
            log.display()
        );
        // a jail with maxretry 3 bans the clients with three failures (the IPv6 one by its
        // /64), and only them
        let bans = replay_jail(dir.path(), "dropbear", log, "normal", 3);
        assert_eq!(
            bans.into_iter().collect::<Vec<_>>(),
            vec!["198.51.100.1".to_string(), "2001:db8:77::/64".to_string()],
            "{version:?}: bans from {}:\nlog:\n{text}",
            log.display()
        );
    }
    reused_pid(version, dir.path(), &read("dropbear.log"));
}

/// The two unknown users' connections of one pid: each counted for its own address; with the
/// second "Child connection" line removed, the first connection's address (its session ended
/// by its "Exit before auth" line) is not given to the second's lines.
fn reused_pid(version: Release, dir: &Path, text: &str) {
    let child = |src: &str| -> String {
        let l = text
            .lines()
            .find(|l| l.contains(&format!("Child connection from {src}:")))
            .unwrap_or_else(|| panic!("{version:?}: no connection from {src}:\n{text}"));
        l.split(']').next().unwrap().to_string()
    };
    assert_eq!(
        child(FIRST),
        child(SECOND),
        "{version:?}: the two connections did not get the same pid:\n{text}"
    );
    let want = match version {
        Release::Deb12 => UNKNOWN,
        Release::Deb13 => UNKNOWN_2025,
    };
    for src in [FIRST, SECOND] {
        let want: Vec<String> = want.iter().map(|l| l.replace("{A}", src)).collect();
        let got: Vec<String> = connection_lines(text, src)
            .into_iter()
            .map(|l| l.replace("{A}", src))
            .collect();
        assert_eq!(got, want, "{version:?}: {src}'s lines:\n{text}");
    }

    // the second "Child connection" line lost
    let lost: String = text
        .lines()
        .filter(|l| !l.contains(&format!("Child connection from {SECOND}:")))
        .map(|l| format!("{l}\n"))
        .collect();
    let lost_log = dir.join("lost.log");
    fs::write(&lost_log, &lost).unwrap();
    let got = lines_by_host("dropbear", &lost_log);
    // 2025.89's line names its address; 2022.83's is held (not listed by `test`) until the
    // second's exit line gives it, which counts it
    let second: &[(&str, usize)] = match version {
        Release::Deb12 => &[("max-tries", 1)],
        Release::Deb13 => UNKNOWN_RULES,
    };
    let want = want_rules(&[(FIRST, UNKNOWN_RULES), (SECOND, second)]);
    let pair: std::collections::BTreeMap<String, Vec<String>> = owned_rules_of(&got)
        .into_iter()
        .filter(|(h, _)| h == FIRST || h == SECOND)
        .collect();
    assert_eq!(
        pair, want,
        "{version:?}: {FIRST} counted for a line of the later connection, or {SECOND} not \
         counted: {got:#?}"
    );
    // `replay`: one failure each (the first's "Max auth tries" a follow-up of its session;
    // the second's held line counted once, on its exit line's address)
    let once = replay_jail(dir, "dropbear", &lost_log, "normal", 1);
    let twice = replay_jail(dir, "dropbear", &lost_log, "normal", 2);
    for a in [FIRST, SECOND] {
        assert!(
            once.contains(a) && !twice.contains(a),
            "{version:?}: {a} not counted once: maxretry 1 bans {once:?}, 2 bans {twice:?}"
        );
    }
}

#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn real_dropbear_2022_83_counts_each_failure_for_its_client() {
    run(Release::Deb12);
}

#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn real_dropbear_2025_89_counts_each_failure_for_its_client() {
    run(Release::Deb13);
}

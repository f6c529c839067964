//! Dropbear's address-less lines and a reused pid, with the real program. Debian 12's
//! dropbear (2022.83, one of the releases that write "Login attempt for nonexistent user"
//! without the address) runs in its own pid and network namespace (`unshare`); before each
//! of two connections, from 198.51.100.9 and then 203.0.113.77, the namespace's
//! `ns_last_pid` is set so that Dropbear's child for both gets the same pid, as a busy
//! server's pids come round again. Each connection tries a user that does not exist.
//!
//! `portcullis test --filter dropbear --json` then reads Dropbear's own log (`-E`, "[PID]"
//! lines): each connection's address-less line is counted for its own address; and with
//! the second connection's "Child connection" line removed (a line lost to rotation or a
//! rate-limited journal), its address-less line must not take the first connection's
//! address, whose "Exit before auth" line ended that session (the old store kept the
//! session, and the innocent 198.51.100.9 was counted).
//!
//! Needs root, Debian's dropbear-bin, openssh-client, sshpass and util-linux's unshare
//! (test.sh installs them); fails loudly when they are missing. Runs in about 5 s.

mod common;

use common::*;
use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const FIRST: &str = "198.51.100.9";
const SECOND: &str = "203.0.113.77";

/// Run as pid 1 of the new pid namespace (bash): every process of the run is in it and dies
/// with it.
const SCRIPT: &str = r#"set -u
dir="$1"
ip link set lo up
ip addr add 198.51.100.9/32 dev lo
ip addr add 203.0.113.77/32 dev lo
dropbearkey -t ed25519 -f "$dir/hostkey" >/dev/null 2>&1 || exit 2
dropbear -F -E -r "$dir/hostkey" -p 0.0.0.0:2222 2>"$dir/dropbear.log" &
db=$!
for _ in $(seq 50); do
  grep -q "Not backgrounding" "$dir/dropbear.log" 2>/dev/null && break
  sleep 0.1
done
for src in 198.51.100.9 203.0.113.77; do
  # the next pids: timeout, sshpass, ssh, then Dropbear's child, the same both times
  echo 500 > /proc/sys/kernel/ns_last_pid || exit 3
  timeout 10 sshpass -p wrong ssh -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
    -o PreferredAuthentications=password -o NumberOfPasswordPrompts=1 -b "$src" -p 2222 \
    nosuch@127.0.0.1 true >/dev/null 2>&1
  for _ in $(seq 50); do
    grep -q "Exit before auth from <$src:" "$dir/dropbear.log" && break
    sleep 0.1
  done
done
kill "$db"
wait
"#;

/// (host, rule, weight) of each line, from `portcullis test --filter dropbear --json`.
fn read(log: &Path) -> Vec<(Option<String>, Option<String>, u64)> {
    let out = run_with_timeout(
        Command::new(env!("CARGO_BIN_EXE_portcullis"))
            .args(["test", "--filter", "dropbear", "--json"])
            .arg(log),
        None,
        Duration::from_secs(60),
    );
    assert!(out.success(), "portcullis test: {}", out.stderr_str());
    out.stdout_str()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("one JSON object a line");
            (
                v["host"].as_str().map(str::to_string),
                v["rule"].as_str().map(str::to_string),
                v["weight"].as_u64().unwrap_or(0),
            )
        })
        .collect()
}

#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn real_dropbear_reused_pid_takes_no_stale_address() {
    require_root();
    require_program("dropbear", "dropbear-bin");
    require_program("dropbearkey", "dropbear-bin");
    require_program("ssh", "openssh-client");
    require_program("sshpass", "sshpass");
    require_program("unshare", "util-linux");
    let dir = test_dir("dropbear");
    run_script_ok(
        "dropbear",
        dir.path(),
        SCRIPT,
        &[],
        &[("log", "dropbear.log")],
    );
    let log = dir.path().join("dropbear.log");
    let text = fs::read_to_string(&log).unwrap_or_default();

    // Both connections were served by a child of the same pid.
    let child = |src: &str| -> String {
        let l = text
            .lines()
            .find(|l| l.contains(&format!("Child connection from {src}:")))
            .unwrap_or_else(|| panic!("no connection from {src}:\n{text}"));
        l.split(']').next().unwrap().to_string()
    };
    assert_eq!(
        child(FIRST),
        child(SECOND),
        "the two connections did not get the same pid:\n{text}"
    );
    let lines: Vec<&str> = text.lines().collect();
    let nonexistent: Vec<usize> = (0..lines.len())
        .filter(|&i| lines[i].ends_with("Login attempt for nonexistent user"))
        .collect();
    assert_eq!(
        nonexistent.len(),
        2,
        "two address-less lines expected:\n{text}"
    );

    // The whole log: each address-less line is its connection's.
    let got = read(&log);
    assert_eq!(got.len(), lines.len(), "one JSON object per log line");
    for (&i, want) in nonexistent.iter().zip([FIRST, SECOND]) {
        assert_eq!(
            (got[i].0.as_deref(), got[i].1.as_deref(), got[i].2),
            (Some(want), Some("nonexistent"), 1),
            "line {}: {}",
            i + 1,
            lines[i]
        );
    }

    // The second "Child connection" line lost: its address-less line takes nothing of the
    // first connection (ended by its exit line); the second connection's own exit line
    // counts it, on its address.
    let lost: String = lines
        .iter()
        .filter(|l| !l.contains(&format!("Child connection from {SECOND}:")))
        .map(|l| format!("{l}\n"))
        .collect();
    let lost_log = dir.path().join("lost.log");
    fs::write(&lost_log, &lost).unwrap();
    let got = read(&lost_log);
    let kept: Vec<&str> = lost.lines().collect();
    let counted: Vec<(String, &str)> = got
        .iter()
        .zip(&kept)
        .filter(|(g, _)| g.2 > 0)
        .map(|(g, l)| (g.0.clone().unwrap_or_default(), *l))
        .collect();
    let first = counted.iter().filter(|(h, _)| h == FIRST).count();
    // (its own "nonexistent" and "Exit before auth" lines, as `test` counts every mode)
    assert_eq!(
        first, 2,
        "{FIRST} counted for a line of the later connection: {counted:#?}"
    );
    assert!(
        counted
            .iter()
            .any(|(h, l)| h == SECOND && l.contains(SECOND)),
        "{SECOND}'s exit line did not count: {counted:#?}"
    );
}

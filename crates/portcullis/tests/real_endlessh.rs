//! The `endlessh` filter against the real tarpit. Debian 12's endlessh (1.1, unpacked by
//! test.sh under /var/cache/portcullis-test/endlessh, PORTCULLIS_ENDLESSH_ROOT elsewhere:
//! installed, its service would start a tarpit on the machine) runs with `-v` (LogLevel 1:
//! endlessh logs nothing by default) in its own pid and network namespace (`unshare`), on
//! its dual-stack socket. Clients connect from 198.51.100.9 (three times), 2001:db8::9
//! (twice) and 203.0.113.77 (once), read the first line of the endless banner and hang up;
//! SIGTERM then ends the tarpit, which writes a CLOSE line per connection and its TOTALS.
//!
//! `portcullis test --filter endlessh --json` must count each ACCEPT line once for its
//! client (the IPv4 clients written `::ffff:a.b.c.d` by endlessh, read as a.b.c.d) and
//! nothing else; `portcullis replay` with `maxretry = 3` bans 198.51.100.9 alone.
//!
//! Needs root, python3 and util-linux's unshare; fails loudly when they are missing. Runs in
//! about 2 s.

mod common;

use common::*;
use std::fs;
use std::path::PathBuf;

const ENDLESSH_ROOT: &str = "/var/cache/portcullis-test/endlessh/root";

/// Run as pid 1 of the new pid and network namespace (bash): every process of the run is
/// in it and dies with it.
const SCRIPT: &str = r#"set -u
dir="$1"
bin="$2"
ip link set lo up
ip addr add 198.51.100.9/32 dev lo
ip addr add 203.0.113.77/32 dev lo
ip -6 addr add 2001:db8::9/128 dev lo nodad
"$bin" -v -d 100 -p 2222 > "$dir/endlessh.log" 2>&1 &
tarpit=$!
for _ in $(seq 50); do
  grep -q "MaxClients" "$dir/endlessh.log" 2>/dev/null && break
  sleep 0.1
done
python3 - <<'PY' || exit 2
import socket
for src, dst, family, n in [
    ("198.51.100.9", "127.0.0.1", socket.AF_INET, 3),
    ("2001:db8::9", "::1", socket.AF_INET6, 2),
    ("203.0.113.77", "127.0.0.1", socket.AF_INET, 1),
]:
    for _ in range(n):
        s = socket.socket(family, socket.SOCK_STREAM)
        s.settimeout(5)
        s.bind((src, 0))
        s.connect((dst, 2222))
        assert s.recv(256), "no banner line"
        s.close()
PY
for _ in $(seq 50); do
  [ "$(grep -c ' ACCEPT ' "$dir/endlessh.log")" -ge 6 ] && break
  sleep 0.1
done
kill -TERM "$tarpit"
wait "$tarpit"
"#;

fn endlessh() -> PathBuf {
    const BIN: &str = "usr/bin/endlessh";
    unpacked(
        "PORTCULLIS_ENDLESSH_ROOT",
        ENDLESSH_ROOT,
        &[BIN],
        "Debian's endlessh",
    )
    .join(BIN)
}

#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn real_endlessh_counts_each_connection_once() {
    require_root();
    require_program("python3", "python3");
    require_program("unshare", "util-linux");
    let bin = endlessh();
    let dir = test_dir("endlessh");
    let shown = [("log", "endlessh.log")];
    run_script_ok("endlessh", dir.path(), SCRIPT, &[bin.as_os_str()], &shown);
    let log = dir.path().join("endlessh.log");
    let text = fs::read_to_string(&log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    // the program's own lines: six connections, each accepted and closed, and the totals
    let accepts = lines.iter().filter(|l| l.contains(" ACCEPT host=")).count();
    let closes = lines.iter().filter(|l| l.contains(" CLOSE host=")).count();
    assert_eq!((accepts, closes), (6, 6), "log:\n{text}");
    assert!(
        lines
            .iter()
            .any(|l| l.contains("ACCEPT host=::ffff:198.51.100.9 ")),
        "an IPv4 client on the dual-stack socket is written ::ffff:a.b.c.d:\n{text}"
    );
    assert!(lines.iter().any(|l| l.contains(" TOTALS ")), "log:\n{text}");

    // every ACCEPT counts once for its client, nothing else counts
    let got = test_json("endlessh", &log);
    assert_eq!(got.len(), lines.len(), "one JSON object per log line");
    let mut counted: Vec<(String, &str)> = got
        .iter()
        .zip(&lines)
        .filter(|(v, _)| v["weight"].as_u64().unwrap_or(0) > 0)
        .map(|(v, l)| (v["host"].as_str().unwrap_or_default().to_string(), *l))
        .collect();
    assert!(
        counted.iter().all(|(_, l)| l.contains(" ACCEPT host=")),
        "a line other than ACCEPT counted: {counted:#?}"
    );
    counted.sort();
    let hosts: Vec<&str> = counted.iter().map(|(h, _)| h.as_str()).collect();
    assert_eq!(
        hosts,
        [
            "198.51.100.9",
            "198.51.100.9",
            "198.51.100.9",
            "2001:db8::9",
            "2001:db8::9",
            "203.0.113.77"
        ],
        "log:\n{text}"
    );

    // a jail: three connections in ten minutes ban
    let cfg = dir.path().join("portcullis.toml");
    fs::write(
        &cfg,
        format!(
            "state_dir = {:?}\n[firewall]\nbackend = \"null\"\n[[jail]]\nname = \"tarpit\"\n\
             filter = \"endlessh\"\nlogs = [{:?}]\nmaxretry = 3\n",
            dir.path().join("state").display().to_string(),
            log.display().to_string()
        ),
    )
    .unwrap();
    assert_eq!(
        replay_bans(&cfg, &log),
        [("tarpit".to_string(), "198.51.100.9".to_string())]
    );
}

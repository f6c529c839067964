//! Issue 9, finding 5: long log lines. The daemon's follower used to drop every line over
//! 16 KiB, so one request with a 4,200-byte User-Agent (16,886 bytes once nginx escaped it)
//! was never counted, while `replay` on the same file banned.
//!
//! The daemon (`portcullis run`, null firewall) follows one log per filter: access logs
//! (apache-badbots, nginx-bad-request) and JSON logs (nextcloud, traefik-auth), with failures
//! on lines of 17 KiB, 100 KiB, and over the 1 MiB limit (matched on their head and tail).
//! The bans it makes must be the ones `replay` makes on the same files, and the expected ones.
//!
//! Needs nothing but the binary: no root, no namespace (the firewall is `null`).

mod common;

use common::*;
use serde_json::Value;
use std::collections::BTreeSet;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const KIB: usize = 1024;
const MAX_LINE: usize = 1 << 20;

/// `03/Dec/2026:09:28:36 +0000`
fn clf_time() -> String {
    clf_timestamp(SystemTime::now())
}

/// `2026-12-03T09:28:36+00:00`
fn iso_time() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    portcullis_core::time::rfc3339(secs * 1000).replace('Z', "+00:00")
}

/// `unit` repeated until `len` bytes (cut at a whole unit).
fn pad(unit: &str, len: usize) -> String {
    unit.repeat(len / unit.len())
}

/// The line sizes each filter is tried with: the report's 16,886-byte line, 17 KiB,
/// 100 KiB, and 1.5 MiB (over the limit: matched on its first and last 512 KiB).
const SIZES: [usize; 4] = [16_886, 17 * KIB, 100 * KIB, 1536 * KIB];

/// One failure line of `filter` for `addr`, of about `size` bytes (at least the size).
fn line(filter: &str, addr: &str, size: usize) -> String {
    let l = match filter {
        // nginx escapes the bytes of a User-Agent it does not print as \xHH: the report's
        // 4,200 bytes became 16,886
        "apache-badbots" => {
            let ua = pad("\\xC3", size.saturating_sub(100));
            format!(
                "{addr} - - [{}] \"GET / HTTP/1.1\" 404 196 \"-\" \"Mozilla/5.0 {ua} sqlmap/1.7.2#stable\"",
                clf_time()
            )
        }
        // a request line of garbage, answered 400
        "nginx-bad-request" => {
            let req = pad("\\x16\\x03\\x01", size.saturating_sub(80));
            format!("{addr} - - [{}] \"{req}\" 400 157 \"-\" \"-\"", clf_time())
        }
        // a long User-Agent after the message (json_encode escapes / and non-ASCII)
        "nextcloud" => {
            let ua = pad("Mozilla\\/5.0 \\u00e9", size.saturating_sub(300));
            format!(
                "{{\"reqId\":\"Zzsx8AoAAQcAAAcUYBkAAAAA\",\"level\":2,\"time\":\"{}\",\"remoteAddr\":\"{addr}\",\"user\":\"--\",\"app\":\"core\",\"method\":\"POST\",\"url\":\"/login\",\"message\":\"Login failed: 'bob' (Remote IP: '{addr}')\",\"userAgent\":\"{ua}\",\"version\":\"28.0.4.1\",\"data\":{{\"app\":\"core\"}}}}",
                iso_time()
            )
        }
        // a long request path, after ClientHost and DownstreamStatus (keys in order)
        "traefik-auth" => {
            let path = pad("/a\\u0026b", size.saturating_sub(400));
            format!(
                "{{\"ClientAddr\":\"{addr}:54321\",\"ClientHost\":\"{addr}\",\"ClientPort\":\"54321\",\"ClientUsername\":\"dave\",\"DownstreamContentSize\":17,\"DownstreamStatus\":401,\"Duration\":182331,\"RequestMethod\":\"GET\",\"RequestPath\":\"{path}\",\"RequestProtocol\":\"HTTP/2.0\",\"RouterName\":\"private@docker\",\"level\":\"info\",\"msg\":\"\",\"time\":\"{}\"}}",
                iso_time().replace("+00:00", "Z")
            )
        }
        _ => unreachable!(),
    };
    assert!(l.len() + 200 >= size, "{filter}: {} < {size}", l.len());
    l
}

const FILTERS: [&str; 4] = [
    "apache-badbots",
    "nginx-bad-request",
    "nextcloud",
    "traefik-auth",
];

/// The jail of a filter: the filter's name less its dashes (jail names are short).
fn jail(filter: &str) -> String {
    filter.replace('-', "")
}

fn append(path: &Path, text: &str) {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
}

/// The addresses banned per jail, from `bans --json` of the daemon.
fn daemon_bans(socket: &Path) -> BTreeSet<(String, String)> {
    let mut c = Command::new(BIN);
    c.args(["bans", "--json", "--socket"]).arg(socket);
    let out = run_with_timeout(&mut c, None, Duration::from_secs(30)).check();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v["bans"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|b| {
            (
                b["jail"].as_str().unwrap().to_string(),
                b["host"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn long_lines_ban_the_same_in_the_daemon_and_in_replay() {
    let work = tempfile::Builder::new()
        .prefix("pct-longlines-")
        .tempdir()
        .unwrap();
    let dir = work.path();
    let socket = dir.join("portcullis.sock");
    let mut cfg = format!(
        "socket = {:?}\nstate_dir = {:?}\n[firewall]\nbackend = \"null\"\n",
        socket.display().to_string(),
        dir.join("state").display().to_string()
    );
    for f in FILTERS {
        cfg += &format!(
            "[[jail]]\nname = {:?}\nfilter = {f:?}\nlogs = [{:?}]\nmaxretry = 3\nfindtime = \"1h\"\nbantime = \"1h\"\nports = [80, 443]\n",
            jail(f),
            dir.join(format!("{f}.log")).display().to_string()
        );
    }
    let config = dir.join("portcullis.toml");
    fs::write(&config, cfg).unwrap();

    // the daemon first: the logs do not exist yet, so they are read from their start
    let daemon_log = dir.join("daemon.log");
    let mut daemon = Daemon::start(&config, &daemon_log);
    let log = || fs::read_to_string(&daemon_log).unwrap_or_default();

    // per filter and size, three failures of one address; then a barrier address on short
    // lines, banned once everything before it in the file has been processed
    let mut expected = BTreeSet::new();
    for f in FILTERS {
        let path = dir.join(format!("{f}.log"));
        for (i, size) in SIZES.into_iter().enumerate() {
            let addr = format!("203.0.113.{}", 10 + i);
            for _ in 0..3 {
                append(&path, &(line(f, &addr, size) + "\n"));
            }
            expected.insert((jail(f), addr));
        }
        for _ in 0..3 {
            append(&path, &(line(f, "192.0.2.200", 200) + "\n"));
        }
        expected.insert((jail(f), "192.0.2.200".to_string()));
    }
    wait_for(
        "the daemon to ban every barrier address",
        Duration::from_secs(120),
        || {
            let b = daemon_bans(&socket);
            FILTERS
                .iter()
                .all(|f| b.contains(&(jail(f), "192.0.2.200".to_string())))
        },
    );
    let by_daemon = daemon_bans(&socket);

    // replay: each jail on its own log
    let mut by_replay = BTreeSet::new();
    let mut replay_err = String::new();
    for f in FILTERS {
        let mut c = Command::new(BIN);
        c.args(["replay", "--config"])
            .arg(&config)
            .args(["--jail", &jail(f), "--json"])
            .arg(dir.join(format!("{f}.log")));
        let out = run_with_timeout(&mut c, None, Duration::from_secs(120)).check();
        replay_err += &out.stderr_str();
        for l in out.stdout_str().lines() {
            let v: Value = serde_json::from_str(l).unwrap();
            if v["action"] == "ban" {
                by_replay.insert((
                    v["jail"].as_str().unwrap().to_string(),
                    v["host"].as_str().unwrap().to_string(),
                ));
            }
        }
    }
    daemon.kill();

    assert_eq!(by_daemon, by_replay, "the daemon and replay disagree");
    assert_eq!(by_daemon, expected, "daemon log:\n{}", log());
    // the cut lines were counted and reported, by both
    let note = format!("longer than {MAX_LINE} bytes");
    for f in FILTERS {
        let name = format!("{f}.log");
        assert!(
            log()
                .lines()
                .any(|l| l.contains(&note) && l.contains(&name)),
            "no note about the cut lines of {name}:\n{}",
            log()
        );
    }
    assert_eq!(
        replay_err.matches(&format!("3 lines {note}")).count(),
        FILTERS.len(),
        "{replay_err}"
    );
}

/// A hole without a newline (a crash leaves blocks of NULs in a log; its owner can make one
/// of any size with `truncate`, at no cost in disk) is read at once, not 4 MiB a second:
/// failures written after a 1 GB hole are counted in seconds, where it took 256 s (a review
/// found). The bound below is four times under the old reading time.
#[test]
fn failures_after_a_gigabyte_without_newlines_are_counted_at_once() {
    let t = tempfile::Builder::new()
        .prefix("pct-hole-")
        .tempdir()
        .unwrap();
    let dir = t.path();
    let log = dir.join("auth.log");
    fs::write(&log, "").unwrap();
    let cfg = dir.join("portcullis.toml");
    fs::write(
        &cfg,
        format!(
            "{}[[jail]]\nname = \"sshd\"\nfilter = \"sshd\"\nlogs = [{:?}]\nmaxretry = 3\n",
            null_config_head(dir),
            log.display().to_string()
        ),
    )
    .unwrap();
    let d = Daemon::start(&cfg, &dir.join("daemon.log"));
    std::thread::sleep(Duration::from_millis(1500));
    let f = OpenOptions::new().append(true).open(&log).unwrap();
    f.set_len(1 << 30).unwrap();
    drop(f);
    let mut f = OpenOptions::new().append(true).open(&log).unwrap();
    writeln!(f).unwrap();
    for i in 0..3 {
        writeln!(
            f,
            "Failed password for root from 203.0.113.77 port {} ssh2",
            50000 + i
        )
        .unwrap();
    }
    drop(f);
    let socket = dir.join("portcullis.sock");
    wait_for("the ban after the hole", Duration::from_secs(60), || {
        banned_hosts(&socket).contains(&"203.0.113.77".to_string())
    });
    drop(d);
}

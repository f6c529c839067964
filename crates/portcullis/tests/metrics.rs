//! Prometheus metrics against the real counterparts (issue 14): the real daemon
//! (`portcullis run`, null firewall, no namespace needed) follows a log file the test
//! writes, bans from it, takes a manual ban and unban over its socket, and is scraped over
//! loopback; the scrape is checked number by number and by Prometheus' own `promtool check
//! metrics` (Debian's `prometheus` package: the test fails, it does not skip, without it).
//! The listener answers 404 beside `/metrics`, refuses an oversized request, and is not
//! held by clients that send nothing; `check-config` refuses a bad `listen`.
//!
//! Run: `cargo test -p portcullis --test metrics`.

mod common;

use common::*;
use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

fn config(dir: &Path, port: u16) -> PathBuf {
    let state = dir.join("state");
    fs::create_dir_all(&state).unwrap();
    let log = dir.join("auth.log");
    fs::write(&log, "").unwrap();
    let path = dir.join("portcullis.toml");
    let text = format!(
        "socket = {:?}\nstate_dir = {:?}\n[firewall]\nbackend = \"null\"\n\
         [metrics]\nlisten = \"127.0.0.1:{port}\"\n\
         [[jail]]\nname = \"sshd\"\nfilter = \"sshd\"\nlogs = [{:?}]\nmaxretry = 3\n",
        dir.join("portcullis.sock").display().to_string(),
        state.display().to_string(),
        log.display().to_string(),
    );
    fs::write(&path, text).unwrap();
    path
}

/// One request on a new connection: (status line, body).
fn request(port: u16, raw: &[u8]) -> (String, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(raw).unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    let out = String::from_utf8(out).unwrap();
    let (head, body) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
    (
        head.lines().next().unwrap_or_default().to_string(),
        body.to_string(),
    )
}

fn scrape(port: u16) -> String {
    let (status, body) = request(port, b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    assert_eq!(status, "HTTP/1.1 200 OK", "{body}");
    body
}

/// The samples of a scrape: `name{labels}` to value.
fn samples(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (k, v) = l.rsplit_once(' ').unwrap();
            (k.to_string(), v.parse().unwrap())
        })
        .collect()
}

fn cli(cfg: &Path, args: &[&str]) -> CmdOutput {
    let mut cmd = Command::new(BIN);
    cmd.args(args).arg("-c").arg(cfg);
    run_with_timeout(&mut cmd, None, Duration::from_secs(30))
}

#[test]
fn a_running_daemon_is_scraped_and_promtool_accepts_the_text() {
    let promtool = ["/usr/bin/promtool", "/usr/local/bin/promtool"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("promtool is missing: install Debian's `prometheus` package (see test.sh)");
    let t = tempfile::Builder::new()
        .prefix("pct-metrics-")
        .tempdir()
        .unwrap();
    let dir = t.path();
    let port = free_port();
    let cfg = config(dir, port);
    let log = dir.join("auth.log");
    let d = Daemon::start(&cfg, &dir.join("daemon.log"));

    // two attackers, three failures each (two bans), and a line that is no failure
    let mut lines = Vec::new();
    for (addr, user) in [("203.0.113.10", "oracle"), ("2001:db8::12", "admin")] {
        for i in 0..3 {
            lines.push(format!(
                "Failed password for invalid user {user} from {addr} port {} ssh2",
                40000 + i
            ));
        }
    }
    lines.push("Accepted publickey for alice from 192.0.2.1 port 5000 ssh2".into());
    let mut f = fs::OpenOptions::new().append(true).open(&log).unwrap();
    for l in &lines {
        writeln!(f, "{l}").unwrap();
    }
    drop(f);
    wait_for("two bans", Duration::from_secs(20), || {
        d.log().lines().filter(|l| l.starts_with("ban ")).count() >= 2
    });
    // a manual ban, and a manual unban of one of the automatic ones
    let o = cli(&cfg, &["ban", "198.51.100.9"]);
    assert!(o.success(), "{o:?}");
    let o = cli(&cfg, &["unban", "203.0.113.10"]);
    assert!(o.success(), "{o:?}");

    let source = log.display().to_string();
    let want = |s: &BTreeMap<String, f64>| -> Vec<(String, f64)> {
        [
            format!("portcullis_lines_total{{source=\"{source}\"}}"),
            "portcullis_failures_total{jail=\"sshd\",rule=\"failed\"}".into(),
            "portcullis_bans_total{jail=\"sshd\",reason=\"failures\"}".into(),
            "portcullis_bans_total{jail=\"sshd\",reason=\"manual\"}".into(),
            "portcullis_unbans_total{jail=\"sshd\"}".into(),
            "portcullis_bans_active{jail=\"sshd\"}".into(),
            "portcullis_tracked_addresses{jail=\"sshd\"}".into(),
            "portcullis_evictions_total{jail=\"sshd\"}".into(),
            "portcullis_notify_queue{kind=\"mail\"}".into(),
            "portcullis_notify_failures_total{kind=\"webhook\"}".into(),
        ]
        .into_iter()
        .map(|k| {
            let v = s.get(&k).copied().unwrap_or(-1.0);
            (k, v)
        })
        .collect()
    };
    let expected: Vec<f64> = vec![7.0, 6.0, 2.0, 1.0, 1.0, 2.0, 0.0, 0.0, 0.0, 0.0];
    // the gauges follow the engine's loop turn after the unban: allow it a moment
    let mut text = String::new();
    let ok = wait_until(Duration::from_secs(10), || {
        text = scrape(port);
        let got: Vec<f64> = want(&samples(&text)).into_iter().map(|(_, v)| v).collect();
        got == expected
    });
    assert!(
        ok,
        "unexpected numbers: {:#?}\n{text}\n{}",
        want(&samples(&text)),
        d.log()
    );
    let s = samples(&text);
    // start (restore) and at least one batch of bans, one manual ban and one unban
    assert!(
        s["portcullis_firewall_seconds_count"] >= 3.0,
        "firewall batches: {text}"
    );
    assert_eq!(
        s["portcullis_firewall_seconds_bucket{le=\"+Inf\"}"],
        s["portcullis_firewall_seconds_count"]
    );

    // Prometheus' own checker: format and naming conventions
    let scraped = dir.join("scrape.prom");
    fs::write(&scraped, &text).unwrap();
    let mut cmd = Command::new(promtool);
    cmd.args(["check", "metrics"]);
    let o = run_with_timeout(&mut cmd, Some(text.as_bytes()), Duration::from_secs(60));
    assert!(
        o.success() && o.stdout_str().trim().is_empty() && o.stderr_str().trim().is_empty(),
        "promtool check metrics: {o:?}\n{text}"
    );

    // nothing beside /metrics; an oversized request is refused
    let (status, _) = request(port, b"GET / HTTP/1.1\r\n\r\n");
    assert_eq!(status, "HTTP/1.1 404 Not Found");
    let (status, _) = request(port, b"DELETE /metrics HTTP/1.1\r\n\r\n");
    assert_eq!(status, "HTTP/1.1 405 Method Not Allowed");
    let mut big = b"GET /metrics HTTP/1.1\r\n".to_vec();
    big.extend(std::iter::repeat_n(b'a', 20_000));
    let (status, _) = request(port, &big);
    assert_eq!(status, "HTTP/1.1 431 Request Header Fields Too Large");

    // clients that connect and say nothing do not hold the listener: a scrape beside a few
    // of them is served at once, and they are all closed after the request deadline (5 s
    // in the kernel, TCP_DEFER_ACCEPT, rounded up to its SYN-ACK retransmissions, about 7 s;
    // then 5 s more once handed over), however many there are
    let t0 = Instant::now();
    let mut idle: Vec<TcpStream> = (0..3)
        .map(|_| TcpStream::connect(("127.0.0.1", port)).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let started = Instant::now();
    assert!(scrape(port).contains("portcullis_bans_active"));
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "a scrape waited {:?} behind idle clients",
        started.elapsed()
    );
    idle.extend((0..10).map(|_| TcpStream::connect(("127.0.0.1", port)).unwrap()));
    for s in &mut idle {
        s.set_read_timeout(Some(Duration::from_secs(25))).unwrap();
        let mut out = Vec::new();
        // closed by the server: a 408 at its deadline, or at once when over the limit
        let _ = s.read_to_end(&mut out);
    }
    assert!(
        t0.elapsed() < Duration::from_secs(20),
        "idle clients kept for {:?}",
        t0.elapsed()
    );
    assert!(scrape(port).contains("portcullis_bans_active"));

    // a loop of idle connects beside a scraper: every scrape is served (a review saw half
    // fail: the scraper's connection, whose head its thread had not read yet, was evicted
    // as the oldest idle one)
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flood = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut open = std::collections::VecDeque::new();
            for _ in 0..20_000 {
                if stop.load(std::sync::atomic::Ordering::Relaxed) {
                    break;
                }
                if let Ok(c) = TcpStream::connect(("127.0.0.1", port)) {
                    open.push_back(c);
                }
                if open.len() > 64 {
                    open.pop_front();
                }
            }
        })
    };
    let mut failed = Vec::new();
    for _ in 0..30 {
        let got = std::panic::catch_unwind(|| {
            request(port, b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").0
        });
        match got {
            Ok(status) if status == "HTTP/1.1 200 OK" => {}
            other => failed.push(format!("{other:?}")),
        }
        std::thread::sleep(Duration::from_millis(30));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    flood.join().unwrap();
    assert!(
        failed.is_empty(),
        "{} of 30 scrapes failed: {failed:?}",
        failed.len()
    );

    let out = d.stop();
    assert!(out.contains("metrics on http://127.0.0.1:"), "{out}");
}

#[test]
fn check_config_refuses_a_bad_listen_address() {
    let t = tempfile::Builder::new()
        .prefix("pct-metrics-cfg-")
        .tempdir()
        .unwrap();
    let cfg = t.path().join("p.toml");
    fs::write(
        &cfg,
        "[firewall]\nbackend = \"null\"\n[metrics]\nlisten = \"metrics.example.org:9617\"\n",
    )
    .unwrap();
    let o = cli(&cfg, &["check-config"]);
    assert!(!o.success(), "{o:?}");
    assert!(
        o.stderr_str().contains(":4: `metrics.listen`"),
        "{}",
        o.stderr_str()
    );
    fs::write(
        &cfg,
        "[firewall]\nbackend = \"null\"\n[metrics]\nlisten = \"127.0.0.1:9617\"\n",
    )
    .unwrap();
    let o = cli(&cfg, &["check-config"]);
    assert!(o.success(), "{o:?}");
}

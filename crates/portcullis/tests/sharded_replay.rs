//! `replay` with a filter that ties lines together by session (sshd): each worker takes the
//! lines of its own connections, and the decisions are those of one worker reading
//! every line in order (`taskset -c 0`: one core, one worker), on a log of many chunks whose
//! connections are interleaved.

mod common;

use common::{portcullis_on, same_on_one_core_and_all, text};

/// Connections of two hosts interleaved at random, pids used again once a connection ended
/// (at most 2 x 450 connections: fewer than the 1024 the sshd filter remembers).
fn interleaved(lines: usize) -> String {
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    let mut rand = |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    let users = ["root", "git", "admin", "deploy"];
    // (host, pid, address, user, step)
    let mut open: Vec<(u64, u64, String, &str, u32)> = Vec::new();
    let mut log = String::new();
    let mut n = 0;
    while n < lines {
        // (a year and a zone: year-less stamps are given a year by today's date, and on 19
        // November the two runs, seconds apart, put some lines in different years, review 37)
        let t = format!(
            "2026-11-21T1{}:{:02}:{:02}+00:00",
            n / 3600 % 10,
            n / 60 % 60,
            n % 60
        );
        if open.len() < 60 && rand(3) == 0 {
            let (host, pid) = (rand(2), 1000 + rand(450));
            if !open.iter().any(|o| o.0 == host && o.1 == pid) {
                let addr = format!("203.0.113.{}", rand(60));
                open.push((host, pid, addr, users[rand(4) as usize], 0));
            }
            continue;
        }
        if open.is_empty() {
            continue;
        }
        let i = rand(open.len() as u64) as usize;
        let (host, pid, addr, user, step) = open[i].clone();
        let pre = format!("{t} web{host} sshd[{pid}]:");
        let line = match rand(9) {
            0..=3 if step < 6 => format!("{pre} Failed publickey for {user} from {addr} port 50000 ssh2: RSA SHA256:4bD3y9nB1qWcR3xN0vE6m8p5lQk7tZsYuA2hJfGiKo{step}"),
            4 => format!("{pre} pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost={addr}  user={user}"),
            5 => format!("{pre} Accepted publickey for {user} from {addr} port 50000 ssh2: ED25519 SHA256:Jg7Xk2l0q5m9ZbVqW1e3R4t6Y8u0I2o4P6a8S0d2F4g"),
            6 => format!("{pre} Disconnecting: Too many authentication failures for {user} [preauth]"),
            7 => format!("{pre} Connection closed by {addr} port 50000 [preauth]"),
            8 => format!("{pre} Received disconnect from {addr} port 50000:11: Bye Bye [preauth]"),
            _ => format!("{pre} Failed password for {user} from {addr} port 50000 ssh2"),
        };
        log.push_str(&line);
        log.push('\n');
        n += 1;
        if line.contains("Connection closed") || line.contains("Received disconnect") {
            open.swap_remove(i);
        } else {
            open[i].4 += 1;
        }
    }
    log
}

#[test]
fn replay_by_connection_decides_as_one_worker_in_order() {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    assert!(
        cores >= 2,
        "this test compares several workers with one: it needs 2 cores, has {cores}"
    );
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::write(
        &cfg,
        "[[jail]]\nname = \"sshd\"\nfilter = \"sshd\"\nlogs = [\"/dev/null\"]\nmaxretry = 5\nfindtime = \"10m\"\nbantime = \"2m\"\n",
    )
    .unwrap();
    let log = interleaved(40_000);
    assert!(log.len() > 3 << 20, "{} bytes: several chunks", log.len());
    let path = dir.path().join("auth.log");
    std::fs::write(&path, &log).unwrap();
    let (cfg, path) = (cfg.to_str().unwrap(), path.to_str().unwrap());
    let args = ["replay", "--config", cfg, "--json", path];
    let (one, many) = (portcullis_on(true, &args), portcullis_on(false, &args));
    for o in [&one, &many] {
        assert!(o.status.success(), "{}", text(&o.stderr));
    }
    // the decisions depend on the sessions: bans and unbans, many of them
    let out = text(&one.stdout);
    let bans = out
        .lines()
        .filter(|l| l.contains("\"action\":\"ban\""))
        .count();
    let unbans = out
        .lines()
        .filter(|l| l.contains("\"action\":\"unban\""))
        .count();
    assert!(bans > 50 && unbans > 50, "{bans} bans, {unbans} unbans");
    assert!(out == text(&many.stdout), "the decisions differ");
    assert_eq!(text(&one.stderr), text(&many.stderr));
}

/// `test`'s summary reads a large file with one reader thread handing its chunks to a
/// matching thread per share of the connections: its counts are those of one thread
/// reading every line in order.
#[test]
fn test_summary_by_connection_counts_as_one_thread() {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    assert!(cores >= 2, "this test needs 2 cores, has {cores}");
    let dir = tempfile::tempdir().unwrap();
    let log = interleaved(40_000);
    // more than the 4 MiB that make `test` use more than one thread
    let log = log.repeat(2);
    let path = dir.path().join("auth.log");
    std::fs::write(&path, &log).unwrap();
    let one = same_on_one_core_and_all(&["test", "--filter", "sshd", path.to_str().unwrap()]);
    // sessions decide some counts: a publickey failure followed by an accepted login is
    // not one, the address of a "Too many authentication failures" line is its session's
    let rule = |name: &str| -> u64 {
        let l = one
            .lines()
            .find(|l| {
                l.trim_start().split_once(' ').is_some_and(|(_, r)| {
                    r.trim_start()
                        .starts_with(&format!("{name} (Auth, weight 1"))
                })
            })
            .unwrap_or_else(|| panic!("no rule {name} in {one}"));
        l.split_whitespace().next().unwrap().parse().unwrap()
    };
    assert!(rule("publickey") > 100 && rule("too-many") > 100, "{one}");
    // and the summary says which rules are held in their session (their lines count 0 in
    // --json until the session decides)
    assert!(
        one.contains("publickey (Auth, weight 1, pending: counts only when the session ends without a login)"),
        "{one}"
    );
}

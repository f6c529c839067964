//! sshd's sessions end to end, through `replay` and `test` as a user runs them: failed public
//! keys of an existing user count only when the connection ends without a login, and the
//! lines of one connection are tied together however far apart they are in the file (the
//! readers split the work by connection, not by file position).

mod common;

use common::{portcullis, text};

/// About `n` lines of other connections' successful logins (pids 30000+): they match no rule.
fn filler(log: &mut String, n: usize, minute: u32) {
    for i in 0..n {
        log.push_str(&format!(
            "Nov 21 10:{minute:02}:00 web1 sshd[{}]: Accepted publickey for deploy from 198.51.100.{} port {} ssh2: ED25519 SHA256:Jg7Xk2l0q5m9ZbVqW1e3R4t6Y8u0I2o4P6a8S0d2F4g\n",
            30000 + i,
            i % 200,
            40000 + i % 20000
        ));
    }
}

/// Three keys of `user` refused on connection `pid` from `addr`, at minute `m`.
fn keys(log: &mut String, pid: u32, addr: &str, user: &str, m: u32) {
    for k in 0..3 {
        log.push_str(&format!(
            "Nov 21 10:{m:02}:0{k} web1 sshd[{pid}]: Failed publickey for {user} from {addr} port 50000 ssh2: RSA SHA256:4bD3y9nB1qWcR3xN0vE6m8p5lQk7tZsYuA2hJfGiKo{k}\n"
        ));
    }
}

#[test]
fn failed_keys_then_a_login_never_ban_and_failed_keys_then_a_disconnect_do() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::write(
        &cfg,
        "[[jail]]\nname = \"sshd\"\nfilter = \"sshd\"\nlogs = [\"/dev/null\"]\nmaxretry = 3\nfindtime = \"1h\"\n",
    )
    .unwrap();
    let mut log = String::new();
    // 40 users whose agents offer three wrong keys before the right one; the lines of each
    // connection are megabytes apart (more than one chunk of `replay`, one piece of `test`)
    for c in 0..40 {
        keys(
            &mut log,
            1000 + c,
            &format!("203.0.113.{}", 10 + c),
            "git",
            1,
        );
    }
    // and a client whose three keys all fail, in connections from one address
    keys(&mut log, 2000, "192.0.2.200", "git", 1);
    keys(&mut log, 2001, "192.0.2.200", "root", 1);
    filler(&mut log, 16_000, 2);
    for c in 0..40 {
        log.push_str(&format!(
            "Nov 21 10:03:00 web1 sshd[{}]: Accepted publickey for git from 203.0.113.{} port 50000 ssh2: ED25519 SHA256:Jg7Xk2l0q5m9ZbVqW1e3R4t6Y8u0I2o4P6a8S0d2F4g\n",
            1000 + c,
            10 + c
        ));
    }
    log.push_str("Nov 21 10:03:01 web1 sshd[2000]: Connection closed by authenticating user git 192.0.2.200 port 50000 [preauth]\n");
    filler(&mut log, 16_000, 4);
    // (the other connection ends in the 6.x way: no address on its own line)
    log.push_str(
        "Nov 21 10:05:00 web1 sshd[2001]: Disconnecting: Too many authentication failures for root [preauth]\n",
    );
    filler(&mut log, 2_000, 5);
    log.push_str("Nov 21 10:05:30 web1 sshd[2001]: Connection closed by 192.0.2.200 [preauth]\n");
    assert!(log.len() > 5 << 20, "{} bytes", log.len());
    let path = dir.path().join("auth.log");
    std::fs::write(&path, &log).unwrap();

    let o = portcullis(&[
        "replay",
        "--config",
        cfg.to_str().unwrap(),
        "--json",
        path.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let bans: Vec<(String, u64)> = text(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["action"] == "ban")
        .map(|v| {
            (
                v["host"].as_str().unwrap().to_string(),
                v["failures"].as_u64().unwrap(),
            )
        })
        .collect();
    // the first connection's three keys ban at its close; the second connection's never
    // reach the tracker of a banned address
    assert_eq!(bans, [("192.0.2.200".to_string(), 3)]);

    // `test` (threads split by connection) sees the same: every refused key matched, held
    let o = portcullis(&["test", "--filter", "sshd", path.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    let count = |rule: &str| {
        out.lines()
            .find(|l| l.split_whitespace().nth(1) == Some(rule))
            .and_then(|l| l.split_whitespace().next())
            .map(str::to_string)
    };
    assert_eq!(count("publickey").as_deref(), Some("126"), "{out}");
    assert_eq!(count("closed").as_deref(), Some("1"), "{out}");
    // the 6.x connection: the address-less line and its close count as one connection
    assert_eq!(count("too-many").as_deref(), Some("1"), "{out}");
}

#[test]
fn test_json_shows_what_each_line_counts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("auth.log");
    let mut log = String::new();
    keys(&mut log, 300, "203.0.113.60", "git", 1);
    log.push_str("Nov 21 10:01:05 web1 sshd[300]: Accepted publickey for git from 203.0.113.60 port 50000 ssh2: ED25519 SHA256:Jg7Xk2l0q5m9ZbVqW1e3R4t6Y8u0I2o4P6a8S0d2F4g\n");
    keys(&mut log, 301, "203.0.113.61", "git", 1);
    log.push_str("Nov 21 10:01:05 web1 sshd[301]: Connection closed by authenticating user git 203.0.113.61 port 50000 [preauth]\n");
    std::fs::write(&path, &log).unwrap();
    let o = portcullis(&["test", "--filter", "sshd", "--json", path.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let got: Vec<(bool, u64)> = text(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .map(|v| {
            (
                v["matched"].as_bool().unwrap(),
                v["weight"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (true, 0),
            (true, 0),
            (true, 0),
            (false, 0),
            (true, 0),
            (true, 0),
            (true, 0),
            (true, 3),
        ]
    );
}

//! A BSD syslogd (and sysklogd, macOS syslogd) writes a message repeated in the same file
//! once, then `last message repeated N times` in place of the copies: an sshd bot making six
//! password attempts on one connection leaves one `Failed password` line and then
//! `last message repeated 5 times`. `replay`, `test --json` and `test`'s summary count that
//! line with the failure just before it in the file, and nothing after any other line.

mod common;

use common::{same_on_one_core_and_all, test_json};

/// A BSD auth.log: `bots` connections, each one `Failed password` line folded with
/// `last message repeated 5 times` (six attempts), with noise between connections and,
/// every 7th connection, a line of another program between the failure and the repeat
/// line (which then repeats that line: nothing counts). OpenBSD's form, FreeBSD 13+'s
/// (`syslogd: last message repeated`) and NetBSD's (`syslogd[pid]: …`) take turns.
fn bsd_log(bots: usize) -> (String, Vec<(String, String)>) {
    let mut log = String::new();
    let mut counted = Vec::new();
    for i in 0..bots {
        let s = i * 7;
        let t = |k: usize| {
            let s = s + k;
            format!(
                "Dec {:2} {:02}:{:02}:{:02}",
                1 + s / 86_400,
                s / 3600 % 24,
                s / 60 % 60,
                s % 60
            )
        };
        // (each in its own /64: IPv6 addresses are banned by /64)
        let addr = format!("2001:db8:{:x}::1", i + 1);
        let pid = 20_000 + i;
        log.push_str(&format!(
            "{} bsd1 sshd[{pid}]: Failed password for root from {addr} port {} ssh2\n",
            t(0),
            40_000 + i
        ));
        if i % 7 == 3 {
            log.push_str(&format!("{} bsd1 cron[77]: (root) CMD (newsyslog)\n", t(1)));
        } else {
            // (the address and the repeat line's time)
            counted.push((format!("2001:db8:{:x}::/64", i + 1), t(2)[7..].to_string()));
        }
        // (OpenBSD, FreeBSD 13+, NetBSD 5+)
        let tag = ["", "syslogd: ", "syslogd[412]: "][i % 3];
        log.push_str(&format!(
            "{} bsd1 {tag}last message repeated 5 times\n",
            t(2)
        ));
        log.push_str(&format!(
            "{} bsd1 sshd[{}]: Accepted publickey for deploy from 198.51.100.7 port 50000 ssh2: ED25519 SHA256:Jg7Xk2l0q5m9ZbVqW1e3R4t6Y8u0I2o4P6a8S0d2F4g\n",
            t(3),
            pid + 1
        ));
    }
    (log, counted)
}

/// `replay` bans each bot at its repeat line, with the six failures, and never the bots
/// whose repeat line followed another program's line; one worker reading every line in
/// order and several workers sharing the connections decide the same; a repeat line that
/// starts the second file does not repeat the first file's last line.
#[test]
fn replay_counts_the_repeated_failure_n_more_times() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::write(
        &cfg,
        "[[jail]]\nname = \"sshd\"\nfilter = \"sshd\"\nlogs = [\"/dev/null\"]\nmaxretry = 6\nfindtime = \"10m\"\nbantime = \"1h\"\n",
    )
    .unwrap();
    // (several 1 MiB chunks: repeat lines fall at chunk starts)
    let (log, counted) = bsd_log(12_000);
    assert!(log.len() > 3 << 20, "{} bytes", log.len());
    let path = dir.path().join("auth.log");
    std::fs::write(&path, &log).unwrap();
    // a second file: its first line is a repeat line, after the first file's last failure
    let second = dir.path().join("auth.log.0");
    std::fs::write(
        &second,
        "Dec 10 23:00:00 bsd1 sshd[9]: Failed password for root from 198.51.100.99 port 1 ssh2\n",
    )
    .unwrap();
    let third = dir.path().join("auth.log.1");
    std::fs::write(
        &third,
        "Dec 10 23:00:01 bsd1 last message repeated 9 times\n",
    )
    .unwrap();
    let (cfg, path, second, third) = (
        cfg.to_str().unwrap(),
        path.to_str().unwrap(),
        second.to_str().unwrap(),
        third.to_str().unwrap(),
    );
    let args = ["replay", "--config", cfg, "--json", path, second, third];
    let out = same_on_one_core_and_all(&args);
    let d: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let bans: Vec<&serde_json::Value> = d.iter().filter(|v| v["action"] == "ban").collect();
    let banned: Vec<&str> = bans.iter().map(|b| b["host"].as_str().unwrap()).collect();
    let want: Vec<&String> = counted.iter().map(|a| &a.0).collect();
    assert_eq!(banned.len(), want.len(), "{:?}", &bans[..bans.len().min(5)]);
    assert!(banned.iter().zip(&want).all(|(b, w)| b == w), "{banned:?}");
    for (b, (_, at)) in bans.iter().zip(&counted) {
        // six failures, at the repeat line's time
        assert_eq!(b["failures"], 6, "{b}");
        assert_eq!(&b["time"].as_str().unwrap()[11..19], at, "{b}");
    }
}

/// `test --json`: the repeat line shows as matched with the failure's host, user and rule,
/// weight N and its own time; after another line, or a held one, it matches nothing.
#[test]
fn test_json_shows_the_repeat_line_with_the_previous_failure() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("auth.log");
    std::fs::write(
        &path,
        "Dec 10 07:13:50 bsd1 sshd[1]: Failed password for root from 203.0.113.9 port 4 ssh2\n\
         Dec 10 07:13:56 bsd1 last message repeated 5 times\n\
         Dec 10 07:14:26 bsd1 syslogd: last message repeated 2 times\n\
         Dec 10 07:14:30 bsd1 cron[7]: (root) CMD (true)\n\
         Dec 10 07:14:31 bsd1 last message repeated 3 times\n\
         Dec 10 07:14:32 bsd1 sshd[2]: Failed publickey for bob from 203.0.113.10 port 5 ssh2: ED25519 SHA256:abc\n\
         Dec 10 07:14:33 bsd1 last message repeated 3 times\n\
         Dec 10 07:14:34 mac1 sshd[3]: Invalid user zz from 203.0.113.11 port 6\n\
         Dec 10 07:14:35 --- last message repeated 1 time ---\n",
    )
    .unwrap();
    let v = test_json("sshd", &path);
    assert_eq!(v.len(), 9);
    let show = |v: &serde_json::Value| {
        format!(
            "{} {} {} {} {}",
            v["matched"], v["host"], v["rule"], v["weight"], v["time"]
        )
    };
    let got: Vec<String> = v.iter().map(show).collect();
    let y = "2025-12-10T07";
    let year = &v[0]["time"].as_str().unwrap()[..4];
    let want = [
        format!("true \"203.0.113.9\" \"failed\" 1 \"{y}:13:50Z\""),
        format!("true \"203.0.113.9\" \"failed\" 5 \"{y}:13:56Z\""),
        format!("true \"203.0.113.9\" \"failed\" 2 \"{y}:14:26Z\""),
        "false null null 0 null".to_string(),
        "false null null 0 null".to_string(),
        format!("true \"203.0.113.10\" \"publickey\" 0 \"{y}:14:32Z\""),
        "false null null 0 null".to_string(),
        format!("true \"203.0.113.11\" \"invalid-user\" 1 \"{y}:14:34Z\""),
        format!("true \"203.0.113.11\" \"invalid-user\" 1 \"{y}:14:35Z\""),
    ]
    .map(|w| w.replace("2025", year));
    assert_eq!(got, want);
    assert_eq!(v[1]["user"], "root");
    // what each adds to the count: the same line of the same process is one connection's
    // opener, which the tracker counts once (review 40)
    let adds: Vec<u64> = v.iter().map(|l| l["adds"].as_u64().unwrap()).collect();
    assert_eq!(adds, [1, 5, 2, 0, 0, 0, 0, 1, 0]);
}

/// `test`'s summary counts a repeat line as one more matched line of the failure before it
/// (its rule, host and user), whichever reader matched that failure: the counts of several
/// readers sharing the connections are those of one reader reading every line in order.
#[test]
fn test_summary_counts_the_repeat_line_with_the_previous_failure() {
    let dir = tempfile::tempdir().unwrap();
    // (more than the 4 MiB that make `test` use more than one reader)
    let (log, counted) = bsd_log(30_000);
    assert!(log.len() > 5 << 20, "{} bytes", log.len());
    let path = dir.path().join("auth.log");
    std::fs::write(&path, &log).unwrap();
    let args = [
        "test",
        "--filter",
        "sshd",
        "--top",
        "3",
        path.to_str().unwrap(),
    ];
    let out = same_on_one_core_and_all(&args);
    // every failure, and every repeat line just after one
    let matched = 30_000 + counted.len();
    assert!(
        out.contains(&format!("lines matched: {matched}\n")),
        "{matched}: {out}"
    );
    assert!(out.contains(&format!("{:>12}  root\n", matched)), "{out}");
}

/// The same for a filter without sessions (vsftpd through syslog), whose summary splits the
/// file into pieces read by any thread: lines of one length, so that pieces start on a
/// repeat line whose failure ends the piece before.
#[test]
fn test_summary_joins_a_repeat_line_to_the_piece_before() {
    const PIECE: usize = 2 << 20;
    let line = |i: usize, user: &str| {
        let s = i * 3;
        let t = format!(
            "Dec {:2} {:02}:{:02}:{:02}",
            1 + s / 86_400,
            s / 3600 % 24,
            s / 60 % 60,
            s % 60
        );
        format!(
            "{t} bsd1 vsftpd[{:05}]: [pid {:05}] [{user}] FAIL LOGIN: Client \"2001:db8:{:04x}::1\"",
            10_000 + i % 50_000,
            10_001 + i % 50_000,
            i % 0x10000
        )
    };
    // a user name for which a piece (about 2 MiB, cut at the next line start) holds an odd
    // number of lines: the second piece starts with a repeat line
    let user = (3..40)
        .map(|n| "u".repeat(n))
        .find(|u| PIECE.div_ceil(line(0, u).len() + 1) % 2 == 1)
        .unwrap();
    let len = line(0, &user).len();
    let mut log = String::new();
    let pairs = (9 << 20) / (2 * (len + 1));
    for i in 0..pairs {
        let fail = line(i, &user);
        assert_eq!(fail.len(), len);
        log.push_str(&fail);
        log.push('\n');
        // (the host padded to the failure line's length)
        let rep = format!("{} h last message repeated 5 times", &fail[..15]);
        let pad = "x".repeat(len - rep.len());
        log.push_str(&format!(
            "{} h{pad} last message repeated 5 times\n",
            &fail[..15]
        ));
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vsftpd.log");
    std::fs::write(&path, &log).unwrap();
    let args = [
        "test",
        "--filter",
        "vsftpd",
        "--top",
        "1",
        path.to_str().unwrap(),
    ];
    let out = same_on_one_core_and_all(&args);
    assert!(
        out.contains(&format!("lines matched: {}\n", 2 * pairs)),
        "{}: {out}",
        2 * pairs
    );
    assert!(
        out.contains(&format!("{:>12}  {user}\n", 2 * pairs)),
        "{out}"
    );
}

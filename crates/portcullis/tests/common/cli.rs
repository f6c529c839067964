//! Running the built `portcullis` binary and reading its JSON output.

use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output, Stdio};

/// `portcullis ARGS` with no input; its output.
pub fn portcullis(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .expect("run portcullis")
}

/// `portcullis ARGS` pinned to one core (`taskset -c 0`: one reader, one worker) or free
/// to use every core; its output.
pub fn portcullis_on(one_core: bool, args: &[&str]) -> Output {
    let bin = env!("CARGO_BIN_EXE_portcullis");
    let mut c = Command::new(if one_core { "taskset" } else { bin });
    if one_core {
        c.args(["-c", "0", bin]);
    }
    c.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .expect("run portcullis (and taskset, from util-linux)")
}

/// `portcullis ARGS` on one core and on every core: both succeed and print the same (the
/// readers that share the work decide as one reading every line in order); that output.
pub fn same_on_one_core_and_all(args: &[&str]) -> String {
    let (one, many) = (portcullis_on(true, args), portcullis_on(false, args));
    for o in [&one, &many] {
        assert!(
            o.status.success(),
            "portcullis {args:?}: {}",
            text(&o.stderr)
        );
    }
    let out = text(&one.stdout);
    assert!(
        out == text(&many.stdout),
        "portcullis {args:?}: the outputs differ"
    );
    out
}

/// Bytes as text (lossy).
pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The JSON objects of a command's output, one per line; the command must succeed.
pub fn json_lines(args: &[&str]) -> Vec<Value> {
    let o = portcullis(args);
    assert!(
        o.status.success(),
        "portcullis {args:?} failed: {}",
        text(&o.stderr)
    );
    text(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect()
}

/// `portcullis test --filter FILTER --json LOG`: one object per line of the log.
pub fn test_json(filter: &str, log: &Path) -> Vec<Value> {
    json_lines(&["test", "--filter", filter, "--json", log.to_str().unwrap()])
}

/// `portcullis replay --config CFG --json LOG`: the bans, as (jail, host).
pub fn replay_bans(cfg: &Path, log: &Path) -> Vec<(String, String)> {
    json_lines(&[
        "replay",
        "--config",
        cfg.to_str().unwrap(),
        "--json",
        log.to_str().unwrap(),
    ])
    .into_iter()
    .filter(|v| v["action"] == "ban")
    .map(|v| {
        (
            v["jail"].as_str().unwrap().to_string(),
            v["host"].as_str().unwrap().to_string(),
        )
    })
    .collect()
}

/// `portcullis test --filter FILTER --json` on a snapshot of `log` (a server may still
/// append to it, so the lines and the JSON objects are read from the same text): (host,
/// rule, line) of every line that counts (a matched line of weight 0, such as Postfix's
/// "connect from", counts nothing).
pub fn counted_matches(filter: &str, log: &Path) -> Vec<(String, String, String)> {
    counted_weights(filter, log)
        .into_iter()
        .map(|(host, rule, _, line)| (host, rule, line))
        .collect()
}

/// As [`counted_matches`], with what each line counts (a line that releases held failures
/// counts them all: Sendmail's transaction summary).
pub fn counted_weights(filter: &str, log: &Path) -> Vec<(String, String, u64, String)> {
    let bytes = std::fs::read(log).unwrap_or_else(|e| panic!("{}: {e}", log.display()));
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let snapshot = log.with_extension(format!("{filter}.snapshot"));
    std::fs::write(&snapshot, &bytes).expect("write log snapshot");
    let results = test_json(filter, &snapshot);
    let lines: Vec<&str> = text.split_terminator('\n').collect();
    assert_eq!(
        results.len(),
        lines.len(),
        "{}: one JSON object per log line",
        log.display()
    );
    results
        .iter()
        .zip(lines)
        .filter(|(v, _)| v["matched"].as_bool() == Some(true) && v["weight"].as_u64() != Some(0))
        .map(|(v, l)| {
            (
                v["host"].as_str().unwrap_or_default().to_string(),
                v["rule"].as_str().unwrap_or_default().to_string(),
                v["weight"].as_u64().unwrap_or_default(),
                l.to_string(),
            )
        })
        .collect()
}

/// `portcullis replay` of one jail (`[[jail]] name = FILTER`, a built-in filter's name) with
/// `mode`, `maxretry` and a findtime of 1h, on a snapshot of `log` (a server may still append
/// to it): the banned addresses and prefixes. The config and the snapshot are written into
/// `dir`.
pub fn replay_jail(
    dir: &Path,
    filter: &str,
    log: &Path,
    mode: &str,
    maxretry: u32,
) -> std::collections::BTreeSet<String> {
    let config = dir.join(format!("replay-{filter}-{mode}-{maxretry}.toml"));
    std::fs::write(
        &config,
        format!("[[jail]]\nname = \"{filter}\"\nmode = \"{mode}\"\nmaxretry = {maxretry}\nfindtime = \"1h\"\n"),
    )
    .unwrap();
    let snapshot = dir.join(format!("replay-{filter}-{mode}-{maxretry}.log"));
    std::fs::copy(log, &snapshot).expect("log snapshot");
    replay_bans(&config, &snapshot)
        .into_iter()
        .map(|(_, h)| h)
        .collect()
}

/// What a ban of `addr` names: an IPv6 client of the tests (2001:db8::N) is banned by its /64,
/// the default prefix; an IPv4 client by its address.
pub fn ban_of(addr: &str) -> String {
    if addr.contains(':') {
        "2001:db8::/64".to_string()
    } else {
        addr.to_string()
    }
}

/// [`counted_matches`] per address: the sorted rules of the lines that count in `log`.
pub fn rules_by_host(filter: &str, log: &Path) -> std::collections::BTreeMap<String, Vec<String>> {
    let mut by_host: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for (host, rule, _) in counted_matches(filter, log) {
        by_host.entry(host).or_default().push(rule);
    }
    for v in by_host.values_mut() {
        v.sort();
    }
    by_host
}

/// Per address, (rule, count) pairs: what [`want_rules`] reads.
pub type RuleCounts<'a> = [(&'a str, &'a [(&'a str, usize)])];

/// What [`rules_by_host`] should give: per address, each rule as many times as its count.
pub fn want_rules(want: &RuleCounts) -> std::collections::BTreeMap<String, Vec<String>> {
    want.iter()
        .map(|(h, rs)| {
            let mut v: Vec<String> = rs
                .iter()
                .flat_map(|(r, n)| std::iter::repeat_n(r.to_string(), *n))
                .collect();
            v.sort();
            (h.to_string(), v)
        })
        .collect()
}

/// From "RULE: LINE" entries per address (what a test counted, with the lines to show when it
/// fails): the sorted rules per address, to compare with what the test expects.
pub fn rules_of(
    got: &std::collections::BTreeMap<String, Vec<String>>,
) -> std::collections::BTreeMap<&str, Vec<&str>> {
    got.iter()
        .map(|(h, v)| {
            let mut r: Vec<&str> = v.iter().map(|l| l.split(':').next().unwrap()).collect();
            r.sort();
            (h.as_str(), r)
        })
        .collect()
}

/// [`rules_of`] with owned strings, to compare with [`want_rules`].
pub fn owned_rules_of(
    got: &std::collections::BTreeMap<String, Vec<String>>,
) -> std::collections::BTreeMap<String, Vec<String>> {
    rules_of(got)
        .into_iter()
        .map(|(h, r)| (h.to_string(), r.into_iter().map(str::to_string).collect()))
        .collect()
}

/// [`counted_matches`] per address, as "RULE: LINE" entries in log order (for
/// [`rules_of`], with the lines to show when a test fails).
pub fn lines_by_host(filter: &str, log: &Path) -> std::collections::BTreeMap<String, Vec<String>> {
    let mut by_host: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for (host, rule, line) in counted_matches(filter, log) {
        by_host
            .entry(host)
            .or_default()
            .push(format!("{rule}: {line}"));
    }
    by_host
}

/// The (host, user) of every line of `log` that `filter` matches (a line without a user
/// reads as "-").
pub fn matched_users(filter: &str, log: &Path) -> Vec<(String, String)> {
    test_json(filter, log)
        .into_iter()
        .filter(|v| v["matched"] == true)
        .map(|v| {
            (
                v["host"].as_str().unwrap_or_default().to_string(),
                v["user"].as_str().unwrap_or("-").to_string(),
            )
        })
        .collect()
}

/// Panics unless each (host, user) of `want` is among [`matched_users`].
pub fn assert_counted_users(filter: &str, log: &Path, want: &[(&str, &str)]) {
    let users = matched_users(filter, log);
    for (host, user) in want {
        assert!(
            users.contains(&(host.to_string(), user.to_string())),
            "{host} should count with user {user:?}: {users:?}"
        );
    }
}

/// `portcullis check-config -c PATH`: (success, stdout + stderr).
pub fn check_config(path: &Path) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(["check-config", "-c"])
        .arg(path)
        .output()
        .expect("run portcullis check-config");
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), all)
}

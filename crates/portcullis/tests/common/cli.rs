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

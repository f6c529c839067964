//! A line journald's stdout transport cut must never let a client choose the banned address.
//!
//! journald (journald-stream.c, `stdout_stream_scan`) ends a stdout entry at a newline, at a
//! NUL byte (`_LINE_BREAK=nul`) or after `LineMax` bytes (`_LINE_BREAK=line-max`); what
//! follows starts the next entry of the same stream. A service that logs a client's text on
//! stdout (`Login failed for user USER from ADDR`) thus lets the client:
//!
//! * pad USER so that the cut falls right after " from 192.0.2.66" it typed: the cut entry
//!   ends on the typed address, and the real one goes into the next entry;
//! * put a NUL in USER followed by a whole line of its own ("Denied from 192.0.2.77 for
//!   user y"): the text after the NUL is an entry of its own.
//!
//! Runs the real `systemd-journald` (LineMax=1K) in a private mount namespace, the service
//! being `systemd-cat -t cutdemo python3 …`, and the daemon reading the journal with a
//! filter of the test's (two rules, one with the address last, one with it first), maxretry
//! 1, the null firewall. The journal holds the cut entries (checked), the filter does match
//! their text (checked with `portcullis test`: an old reader bans 192.0.2.66 and
//! 192.0.2.77), and the daemon bans only the whole line's 198.51.100.30.
//!
//! Needs root; fails (does not skip) otherwise.

mod common;

use common::*;
use serde_json::Value;
use std::fs;
use std::process::{Command, Stdio};
use std::time::Duration;

const FILTER: &str = r#"
name = "cutdemo"
description = "the test's service: a failed login, the address last or first"
programs = ["cutdemo"]

[[rule]]
id = "tail"
pattern = '''Login failed for user .* from {HOST}'''

[[rule]]
id = "head"
pattern = '''Denied from {HOST} for user .*'''
"#;

/// journald's LineMax here.
const LINE_MAX: usize = 1024;

/// What the service writes: two lines `Login failed for user USER from 203.0.113.5` with a
/// client's USER, raw (a NUL stays a NUL), then a plain failure of another client.
fn service_output() -> Vec<u8> {
    let line = |user: &[u8]| {
        let mut l = b"Login failed for user ".to_vec();
        l.extend_from_slice(user);
        l.extend_from_slice(b" from 203.0.113.5\n");
        l
    };
    // the padding puts the cut right after the typed address
    let head = "Login failed for user ".len();
    let typed = " from 192.0.2.66";
    let mut user = vec![b'u'; LINE_MAX - head - typed.len()];
    user.extend_from_slice(typed.as_bytes());
    let mut out = line(&user);
    assert_eq!(&out[LINE_MAX - typed.len()..LINE_MAX], typed.as_bytes());
    out.extend(line(b"x\0Denied from 192.0.2.77 for user y"));
    out.extend_from_slice(b"Login failed for user alice from 198.51.100.30\n");
    out
}

#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn lines_journald_cut_ban_no_address_a_client_typed() {
    require_root();
    let work = tempfile::Builder::new()
        .prefix("pct-jcut-")
        .tempdir()
        .unwrap();
    let dir = work.path();
    let journald =
        Journald::start_with("[Journal]\nStorage=volatile\nLineMax=1K\nRateLimitBurst=0\n");

    let filter = dir.join("cutdemo.toml");
    fs::write(&filter, FILTER).unwrap();
    let config = dir.join("portcullis.toml");
    let socket = dir.join("portcullis.sock");
    fs::write(
        &config,
        format!(
            "socket = {:?}\nstate_dir = {:?}\n[firewall]\nbackend = \"null\"\n\
             [[jail]]\nname = \"cutdemo\"\nfilter = {:?}\nlogs = [\"journal:SYSLOG_IDENTIFIER=cutdemo\"]\n\
             maxretry = 1\nfindtime = \"1h\"\nbantime = \"1h\"\n",
            socket.display().to_string(),
            dir.join("state").display().to_string(),
            filter.display().to_string(),
        ),
    )
    .unwrap();
    let daemon_log = dir.join("daemon.log");
    let mut cmd = journald.command(&[
        BIN.to_string(),
        "run".into(),
        "-c".into(),
        config.display().to_string(),
    ]);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(fs::File::create(&daemon_log).unwrap());
    let mut daemon = ProcessGuard::spawn(cmd, "portcullis run");
    let log = || fs::read_to_string(&daemon_log).unwrap_or_default();
    let cursor_saved = || {
        fs::read_dir(dir.join("state")).is_ok_and(|d| {
            d.filter_map(Result::ok)
                .any(|e| e.file_name().to_string_lossy().ends_with(".cursor"))
        })
    };
    // up, reading the journal (its reader saves the journal's newest entry at once)
    let up = wait_until(Duration::from_secs(20), || {
        daemon.try_wait().is_some() || (log().contains("started jails=cutdemo") && cursor_saved())
    });
    assert!(
        up && daemon.try_wait().is_none(),
        "the daemon did not come up reading the journal; its stderr:\n{}",
        log()
    );

    // the service: its stdout is a stream to journald
    let out_file = dir.join("service-output");
    fs::write(&out_file, service_output()).unwrap();
    let out = journald.run(&[
        "systemd-cat".into(),
        "-t".into(),
        "cutdemo".into(),
        "python3".into(),
        "-c".into(),
        "import sys; sys.stdout.buffer.write(open(sys.argv[1], 'rb').read())".into(),
        out_file.display().to_string(),
    ]);
    assert!(out.success(), "systemd-cat: {out:?}");

    let cli = |args: &[&str]| {
        let mut c = Command::new(BIN);
        c.args(args).arg("--socket").arg(&socket);
        run_with_timeout(&mut c, None, Duration::from_secs(30)).check()
    };
    let banned = || -> Vec<String> {
        let v: Value = serde_json::from_slice(&cli(&["bans", "--json"]).stdout).unwrap();
        v["bans"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|b| b["host"].as_str().map(String::from))
            .collect()
    };
    // the whole line, written last, is banned: everything before it was read
    wait_for(
        "198.51.100.30 (the whole line) to be banned",
        Duration::from_secs(20),
        || banned().iter().any(|h| h == "198.51.100.30"),
    );
    let entries = journald.messages(&["SYSLOG_IDENTIFIER=cutdemo"]);
    assert_eq!(
        banned(),
        ["198.51.100.30"],
        "only the whole line's address; entries: {entries:#?}\nstderr:\n{}",
        log()
    );
    assert!(
        log().contains("were not matched: journald cut the program's line"),
        "the note about the cut entries:\n{}",
        log()
    );

    // the journal holds what the test says: the cut entry ending on the typed address, its
    // continuation, the NUL's two entries, the whole line
    let shown: Vec<(&str, Option<&str>)> = entries
        .iter()
        .map(|(m, v)| (m.as_str(), v["_LINE_BREAK"].as_str()))
        .collect();
    assert_eq!(shown.len(), 5, "{shown:#?}");
    assert!(shown[0].0.ends_with(" from 192.0.2.66"), "{shown:#?}");
    assert_eq!(shown[0].0.len(), LINE_MAX);
    assert_eq!(shown[0].1, Some("line-max"));
    assert_eq!(shown[1], (" from 203.0.113.5", None));
    assert_eq!(shown[2], ("Login failed for user x", Some("nul")));
    assert_eq!(
        shown[3],
        ("Denied from 192.0.2.77 for user y from 203.0.113.5", None)
    );
    assert_eq!(
        shown[4],
        ("Login failed for user alice from 198.51.100.30", None)
    );
    let streams: Vec<&str> = entries
        .iter()
        .map(|(_, v)| v["_STREAM_ID"].as_str().unwrap())
        .collect();
    assert!(streams.iter().all(|s| *s == streams[0]), "one stream");

    // and their text does match the filter: a reader that did not withhold them would have
    // banned the addresses the client typed
    let plain = dir.join("entries.log");
    let text: String = entries
        .iter()
        .map(|(m, _)| format!("2026-12-04T05:00:00+00:00 vm cutdemo[1]: {m}\n"))
        .collect();
    fs::write(&plain, text).unwrap();
    let hosts: Vec<String> = test_json(filter.to_str().unwrap(), &plain)
        .iter()
        .filter_map(|v| v["host"].as_str().map(String::from))
        .collect();
    assert_eq!(
        hosts,
        ["192.0.2.66", "192.0.2.77", "198.51.100.30"],
        "the entries as plain lines"
    );

    daemon.kill();
    drop(journald);
}

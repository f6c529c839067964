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
//!   user y"): the text after the NUL is an entry of its own;
//! * have its line cut where another process writes to the same stream (`pid-change`: a
//!   forked child sharing stdout), or where the stream ends (`eof`);
//! * through the syslog socket, with a program that writes its datagram itself and lets a
//!   client's NUL into it: journald ends MESSAGE at the NUL (journald-syslog.c stores it as a
//!   C string) without a `_LINE_BREAK`, keeping the datagram in `SYSLOG_RAW` (systemd 240+).
//!
//! Runs a real `systemd-journald` (LineMax=1K) in a private mount namespace, Debian 12's
//! systemd 252 and Debian 13's systemd 257 (the trixie tree's, with chroot, its journalctl
//! too; the same entries, cuts and `_LINE_BREAK` values under both), the service
//! being `systemd-cat -t cutdemo python3 …`, and the daemon reading the journal with a
//! filter of the test's (two rules, one with the address last, one with it first), maxretry
//! 1, the null firewall. The journal holds the cut entries (checked), the filter does match
//! their text (checked with `portcullis replay`: an old reader bans 192.0.2.55, .66, .77, .88
//! and .99), and the daemon bans only the whole line's 198.51.100.30.
//!
//! Needs root; fails (does not skip) otherwise.

mod common;

use common::*;
use std::fs;
use std::time::Duration;

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
    out
}

/// A service whose stdout a child shares: the parent's line is cut where the child writes
/// (`pid-change`: the parent's unfinished text is an entry of its own, here ending on an
/// address the client typed), and its rest is an entry of the parent's again; then the
/// service ends mid-line (`eof`).
const FORKING: &str = r#"
import os
os.write(1, b"Login failed for user u from 192.0.2.88")
pid = os.fork()
if pid == 0:
    os.write(1, b"child: hello\n")
    os._exit(0)
os.waitpid(pid, 0)
os.write(1, b" from 203.0.113.5\nLogin failed for user z from 192.0.2.99")
"#;

/// One syslog datagram to journald's /dev/log socket: `Login failed for user USER from
/// 203.0.113.5` with the client's USER `x from 192.0.2.55<NUL>`.
const SYSLOG_NUL: &str = r#"
import socket
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.connect("/run/systemd/journal/dev-log")
s.send(b"<13>cutdemo[77]: Login failed for user x from 192.0.2.55\0 from 203.0.113.5")
"#;

#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn lines_journald_cut_ban_no_address_a_client_typed() {
    run(Release::Deb12);
}

#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn lines_journald_257_cut_ban_no_address_a_client_typed() {
    run(Release::Deb13);
}

fn run(release: Release) {
    require_root();
    let work = tempfile::Builder::new()
        .prefix("pct-jcut-")
        .tempdir()
        .unwrap();
    let dir = work.path();
    let journald = Journald::start_on(
        release,
        Some("[Journal]\nStorage=volatile\nLineMax=1K\nRateLimitBurst=0\n"),
    );
    journald.assert_release();

    let filter = dir.join("cutdemo.toml");
    fs::write(&filter, CUTDEMO_FILTER).unwrap();
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
    let mut daemon = journald.daemon(&config, &dir.join("state"), &daemon_log);
    let log = || fs::read_to_string(&daemon_log).unwrap_or_default();

    // the service: its stdout is a stream to journald
    let out_file = dir.join("service-output");
    fs::write(&out_file, service_output()).unwrap();
    let service = |args: &[&str]| {
        let mut argv: Vec<String> = ["systemd-cat", "-t", "cutdemo", "python3", "-c"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        argv.extend(args.iter().map(|s| s.to_string()));
        let out = journald.run(&argv);
        assert!(out.success(), "systemd-cat: {out:?}");
    };
    service(&[
        "import sys; sys.stdout.buffer.write(open(sys.argv[1], 'rb').read())",
        out_file.to_str().unwrap(),
    ]);
    service(&[FORKING]);
    // a program that writes its syslog datagram itself (Perl's Sys::Syslog, Python's
    // SysLogHandler) with a client's NUL in it: journald ends MESSAGE at the NUL, with no
    // _LINE_BREAK (journald-syslog.c), and keeps the datagram in SYSLOG_RAW
    let out = journald.run(&[
        "python3".to_string(),
        "-c".to_string(),
        SYSLOG_NUL.to_string(),
    ]);
    assert!(out.success(), "the syslog datagram: {out:?}");
    // a plain failure, last: once it is banned, everything before it was read
    service(&["print('Login failed for user alice from 198.51.100.30')"]);

    let banned = || banned_hosts(&socket);
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
    // continuation, the NUL's two entries; the parent's line cut by its child's, the
    // child's, the parent's rest, the line the end of the stream cut; the whole line
    let shown: Vec<(&str, Option<&str>)> = entries
        .iter()
        .map(|(m, v)| (m.as_str(), v["_LINE_BREAK"].as_str()))
        .collect();
    assert_eq!(shown.len(), 10, "{shown:#?}");
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
        (
            "Login failed for user u from 192.0.2.88",
            Some("pid-change")
        )
    );
    assert_eq!(shown[5], ("child: hello", None));
    assert_eq!(shown[6], (" from 203.0.113.5", None));
    assert_eq!(
        shown[7],
        ("Login failed for user z from 192.0.2.99", Some("eof"))
    );
    assert_eq!(shown[8], ("Login failed for user x from 192.0.2.55", None));
    assert!(
        entries[8].1["SYSLOG_RAW"].is_array(),
        "journald kept the whole datagram: {:?}",
        entries[8].1
    );
    assert_eq!(
        shown[9],
        ("Login failed for user alice from 198.51.100.30", None)
    );
    let field = |i: usize, f: &str| entries[i].1[f].as_str().unwrap().to_string();
    assert!((1..4).all(|i| field(i, "_STREAM_ID") == field(0, "_STREAM_ID")));
    assert!((5..8).all(|i| field(i, "_STREAM_ID") == field(4, "_STREAM_ID")));
    assert_ne!(field(0, "_STREAM_ID"), field(4, "_STREAM_ID"));
    // the parent's rest comes under its own pid, after the child's line
    assert_eq!(field(6, "_PID"), field(4, "_PID"));
    assert_ne!(field(5, "_PID"), field(4, "_PID"));

    // and their text does match the filter: a reader that did not withhold them would have
    // banned the addresses the client typed (replayed as lines of a file, without the guard
    // against syslog cuts, which would refuse the 1 KiB line too)
    let plain = dir.join("entries.log");
    let text: String = entries
        .iter()
        .map(|(m, _)| format!("2026-12-04T05:00:00+00:00 vm cutdemo[1]: {m}\n"))
        .collect();
    fs::write(&plain, text).unwrap();
    let replay_cfg = dir.join("replay.toml");
    fs::write(
        &replay_cfg,
        format!(
            "[firewall]\nbackend = \"null\"\n[[jail]]\nname = \"cutdemo\"\nfilter = {:?}\nlogs = [{:?}]\n\
             maxretry = 1\nfindtime = \"1h\"\nbantime = \"1h\"\ntransport_cut = 0\n",
            filter.display().to_string(),
            plain.display().to_string(),
        ),
    )
    .unwrap();
    let hosts: Vec<String> = replay_bans(&replay_cfg, &plain)
        .into_iter()
        .map(|(_, h)| h)
        .collect();
    assert_eq!(
        hosts,
        [
            "192.0.2.66",
            "192.0.2.77",
            "192.0.2.88",
            "192.0.2.99",
            "192.0.2.55",
            "198.51.100.30"
        ],
        "the entries as plain lines"
    );

    daemon.kill();
    drop(journald);
}

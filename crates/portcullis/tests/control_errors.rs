//! The control commands' errors, as a user meets them (review of 2026-12-05, 2.x and 1.8):
//! a wrong `--socket` is not an empty state, a state directory this user may not read is not
//! a missing one, an address inside a banned prefix lifts it with the daemon stopped too,
//! `ban` words its refusals for what it was given, and the help and usage lines hold.
//! Real daemon, null firewall; the permission test runs the client as `nobody`.

mod common;

use common::*;
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

fn run(args: &[&str]) -> CmdOutput {
    let mut c = Command::new(BIN);
    c.args(args);
    run_with_timeout(&mut c, None, Duration::from_secs(30))
}

/// `portcullis ARGS --config CONFIG`.
fn cli(args: &[&str], config: &Path) -> CmdOutput {
    let mut c = Command::new(BIN);
    c.args(args).arg("--config").arg(config);
    run_with_timeout(&mut c, None, Duration::from_secs(30))
}

/// A work directory with a configuration (null firewall, socket and state inside it, jails
/// `sshd` and `web`); returns it and the configuration's path.
fn setup(prefix: &str) -> (tempfile::TempDir, PathBuf) {
    let work = tempfile::Builder::new().prefix(prefix).tempdir().unwrap();
    let config = two_jail_null_config(work.path());
    (work, config)
}

fn hosts(o: &CmdOutput) -> Vec<String> {
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    v["bans"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["host"].as_str().unwrap().to_string())
        .collect()
}

/// 2.1: `bans`/`unban --socket WRONG` (no --config) while the daemon runs elsewhere said
/// "no active bans" (rc 0) of /var/lib/portcullis. Now: an error naming the way out, exit 3.
/// With --config, the state worked on is that configuration's.
#[test]
fn a_socket_where_no_daemon_answers_is_not_an_empty_state() {
    let (work, config) = setup("pct-sock-");
    let dir = work.path();
    let typo = dir.join("typo.sock");
    let d = Daemon::start(&config, &dir.join("run.log"));
    assert!(cli(&["ban", "203.0.113.71", "--jail", "sshd"], &config).success());
    for args in [
        vec!["bans"],
        vec!["bans", "--json"],
        vec!["unban", "203.0.113.71"],
        vec!["unban", "--all"],
    ] {
        let mut c = Command::new(BIN);
        c.args(&args).arg("--socket").arg(&typo);
        let o = run_with_timeout(&mut c, None, Duration::from_secs(30));
        let err = o.stderr_str();
        assert_eq!(o.code(), Some(3), "{args:?}: {err}");
        assert!(
            err.contains("no portcullis daemon is answering on")
                && err.contains("typo.sock")
                && err.contains("--config"),
            "{args:?}: {err}"
        );
        assert!(
            !o.stdout_str().contains("no active bans") && !err.contains("/var/lib/portcullis"),
            "{args:?}: {}{err}",
            o.stdout_str()
        );
    }
    // the daemon's socket named by hand works as before
    let mut c = Command::new(BIN);
    c.args(["bans", "--json", "--socket"])
        .arg(dir.join("p.sock"));
    let o = run_with_timeout(&mut c, None, Duration::from_secs(30)).check();
    assert_eq!(hosts(&o), ["203.0.113.71"]);
    d.stop();

    // stopped, with its configuration: that configuration's state (whatever --socket says)
    let mut c = Command::new(BIN);
    c.args(["bans", "--json", "--socket"])
        .arg(&typo)
        .arg("--config")
        .arg(&config);
    let o = run_with_timeout(&mut c, None, Duration::from_secs(30)).check();
    assert_eq!(hosts(&o), ["203.0.113.71"]);
    let err = o.stderr_str();
    assert!(
        err.contains("no daemon is running")
            && err.contains(&dir.join("state").display().to_string())
            && err.contains(&config.display().to_string()),
        "{err}"
    );
    // an unban of nothing banned is an error (as online), and says which state it read
    let o = cli(&["unban", "198.51.100.1"], &config);
    assert_eq!(o.code(), Some(1), "{}", o.stderr_str());
    assert!(o.stderr_str().contains("198.51.100.1 is not banned"));
}

/// 2.1: the default case keeps its offline mode: `--socket` naming the default
/// configuration's socket (no daemon there) works on the default state directory. Run in a
/// private mount namespace whose /run and /var/lib are empty tmpfs (and /etc/portcullis, if
/// the host has one), so that it always runs and the host's state is never touched.
#[test]
fn the_default_socket_still_works_offline_on_the_default_state() {
    let pristine = |args: &str| -> CmdOutput {
        let script = format!(
            "set -e; mount --make-rprivate /; mount -t tmpfs none /run; mount -t tmpfs none /var/lib; \
             if [ -d /etc/portcullis ]; then mount -t tmpfs none /etc/portcullis; fi; \
             {BIN} {args}; test ! -e /var/lib/portcullis || {{ echo created >&2; exit 9; }}"
        );
        let mut c = Command::new("unshare");
        c.args(["-m", "sh", "-c", &script]);
        run_with_timeout(&mut c, None, Duration::from_secs(30))
    };
    let o = pristine("bans --socket /run/portcullis/portcullis.sock").check();
    assert!(
        o.stdout_str().contains("no active bans"),
        "{}",
        o.stdout_str()
    );
    assert!(
        o.stderr_str()
            .contains("working on the state in /var/lib/portcullis"),
        "{}",
        o.stderr_str()
    );
    // `--permanent` says what it looked for (review 40: "no active bans", while there were)
    let o = pristine("bans --permanent --socket /run/portcullis/portcullis.sock").check();
    assert!(
        o.stdout_str().contains("no permanent bans"),
        "{}",
        o.stdout_str()
    );
    // written differently, the same socket
    let o = pristine("bans --socket /run/portcullis/../portcullis/portcullis.sock");
    assert!(o.success(), "{}", o.stderr_str());
    // another socket alone: the state is unknown (exit 3), in the same pristine namespace
    let o = pristine("bans --socket /run/elsewhere.sock");
    assert_eq!(o.code(), Some(3), "{}", o.stderr_str());
}

/// 2.2: a user who may not read the state directory (0700, root's) is told so, not that
/// there is nothing there.
#[test]
fn an_unreadable_state_is_a_permission_error() {
    let (work, config) = setup("pct-perm-");
    let dir = work.path();
    let state = dir.join("state");
    fs::create_dir(&state).unwrap();
    fs::write(state.join("stats.db"), "").unwrap();
    fs::write(state.join("portcullis.db"), "").unwrap();
    fs::set_permissions(&state, fs::Permissions::from_mode(0o700)).unwrap();
    // nobody may read the work directory and the configuration, not the state
    fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).unwrap();
    fs::set_permissions(&config, fs::Permissions::from_mode(0o644)).unwrap();
    let as_nobody = |args: &[&str]| {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=nobody", "--regid=nogroup", "--clear-groups", BIN])
            .args(args)
            .arg("--config")
            .arg(&config);
        run_with_timeout(&mut c, None, Duration::from_secs(30))
    };
    for (args, file) in [
        (&["report"][..], "stats.db"),
        (&["bans"][..], "portcullis.db"),
        (&["unban", "203.0.113.5"][..], "portcullis.db"),
        (&["unban", "--all"][..], "portcullis.db"),
    ] {
        let o = as_nobody(args);
        let err = o.stderr_str();
        assert!(!o.success(), "{args:?}: {err}");
        let want = format!(
            "cannot read {}: permission denied (run as root?)",
            state.join(file).display()
        );
        assert!(err.contains(&want), "{args:?}: {err}");
        assert!(
            !err.contains("does not exist") && !o.stdout_str().contains("no active bans"),
            "{args:?}: {err}"
        );
    }
}

/// 2.4: with the daemon stopped, `unban ADDR` lifts the banned prefix that holds ADDR, as the
/// daemon's unban does.
#[test]
fn an_address_inside_a_banned_prefix_lifts_it_offline() {
    let (work, config) = setup("pct-prefix-");
    let dir = work.path();
    let d = Daemon::start(&config, &dir.join("run1.log"));
    for (a, j) in [
        ("2001:db8:5::/48", "sshd"),
        ("2001:db8:5:1::/64", "web"),
        ("2001:db8:6::/48", "sshd"),
    ] {
        let o = cli(&["ban", a, "--jail", j, "--for", "forever"], &config);
        assert!(o.success(), "{}", o.stderr_str());
    }
    d.stop();
    let o = cli(&["unban", "2001:db8:7::1"], &config);
    assert_eq!(o.code(), Some(1), "no prefix holds it: {}", o.stderr_str());
    let o = cli(&["unban", "2001:db8:5:1::1"], &config);
    assert!(o.success(), "{}", o.stderr_str());
    let out = o.stdout_str();
    assert!(
        out.contains("unbanned 2 in the state file")
            && out.contains("2001:db8:5::/48 (sshd)")
            && out.contains("2001:db8:5:1::/64 (web)"),
        "{out}"
    );
    let o = cli(&["bans", "--json"], &config).check();
    assert_eq!(hosts(&o), ["2001:db8:6::/48"]);
    // and the next start does not put them back
    let d = Daemon::start(&config, &dir.join("run2.log"));
    let run = d.stop();
    assert!(
        run.contains("restore 2001:db8:6::/48") && !run.contains("restore 2001:db8:5:"),
        "{run}"
    );
}

/// The commands reach the running daemon while its configuration file has an error (an
/// admin editing it) and name no host to resolve; `unban ADDR --all` is refused; a reload
/// that moves the socket says it waits for a restart. (A review found `status`, `bans`,
/// `ban` and `unban` refused with the parse error, and `unban 203.0.113.99 --all` lifting
/// every ban.)
#[test]
fn commands_reach_the_daemon_while_its_configuration_is_being_edited() {
    let (work, config) = setup("pct-edit-");
    let dir = work.path();
    let d = Daemon::start(&config, &dir.join("run.log"));
    assert!(cli(&["ban", "203.0.113.81", "--jail", "sshd"], &config).success());
    assert!(cli(&["ban", "203.0.113.82", "--jail", "sshd"], &config).success());
    let o = cli(&["unban", "203.0.113.99", "--all"], &config);
    assert_eq!(o.code(), Some(2), "{}", o.stderr_str());
    assert!(
        o.stderr_str().contains("cannot be used with"),
        "{}",
        o.stderr_str()
    );
    let text = fs::read_to_string(&config).unwrap();
    fs::write(&config, format!("{text}\nbogus_key = 1\n")).unwrap();
    for args in [vec!["status"], vec!["bans", "--json"]] {
        let o = cli(&args, &config);
        assert!(o.success(), "{args:?}: {}", o.stderr_str());
    }
    assert_eq!(
        hosts(&cli(&["bans", "--json"], &config)),
        ["203.0.113.81", "203.0.113.82"]
    );
    assert!(cli(&["unban", "203.0.113.82"], &config).success());
    // a file half-typed (no TOML at all), and an editor's lock beside a drop-in (a dangling
    // link named .#NAME.toml): still reached
    fs::write(&config, format!("{text}\nignore = [\"192.0.2.0/24\n")).unwrap();
    let dropins = dir.join("portcullis.d");
    fs::create_dir_all(&dropins).unwrap();
    std::os::unix::fs::symlink("root@host.1234", dropins.join(".#10-local.toml")).unwrap();
    let o = cli(&["status"], &config);
    assert!(o.success(), "{}", o.stderr_str());
    fs::write(&config, &text).unwrap();
    let (ok, out) = common::check_config(&config);
    assert!(ok, "the lock is not read: {out}");
    // the daemon refuses the broken file's reload: 1, as documented
    fs::write(&config, format!("{text}\nbogus_key = 1\n")).unwrap();
    let o = cli(&["reload"], &config);
    assert_eq!(o.code(), Some(1), "{}", o.stderr_str());
    // a reload that moves the socket is taken, with a warning
    let moved = text.replace("p.sock", "new.sock");
    assert_ne!(moved, text, "the test configuration names p.sock");
    fs::write(&config, &moved).unwrap();
    let o = cli(
        &["reload", "--socket", dir.join("p.sock").to_str().unwrap()],
        &config,
    );
    assert!(o.success(), "{}", o.stderr_str());
    let run = d.stop();
    assert!(
        run.contains("`socket` changed to") && run.contains("until it restarts"),
        "{run}"
    );
}

/// Offline commands run side by side wait for each other's moment with the state file
/// (review: 14 of 15 failed with "the daemon is running").
#[test]
fn offline_commands_side_by_side_all_work() {
    let (work, config) = setup("pct-side-");
    let dir = work.path();
    let d = Daemon::start(&config, &dir.join("run.log"));
    assert!(cli(&["ban", "203.0.113.91", "--jail", "sshd"], &config).success());
    d.stop();
    let children: Vec<_> = (0..10)
        .map(|_| {
            Command::new(BIN)
                .args(["bans", "--json", "--config"])
                .arg(&config)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains("203.0.113.91"));
    }
}

/// Sends one raw request line to the daemon (as another client would, without this
/// client's checks) and returns the answer.
fn raw_request(socket: &Path, line: &str) -> serde_json::Value {
    let mut s = std::os::unix::net::UnixStream::connect(socket).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(format!("{line}\n").as_bytes()).unwrap();
    let mut answer = String::new();
    BufReader::new(s).read_line(&mut answer).unwrap();
    serde_json::from_str(&answer).unwrap()
}

/// 2.5 and 2.6: `ban 0.0.0.0/0` is refused for holding loopback (it is not loopback), and a
/// prefix with host bits set is refused naming both likely meanings, daemon or not.
#[test]
fn ban_refusals_say_what_is_wrong_with_the_prefix() {
    let (work, config) = setup("pct-refuse-");
    let dir = work.path();
    let d = Daemon::start(&config, &dir.join("run.log"));
    for (addr, want) in [
        (
            "0.0.0.0/0",
            "it is the whole IPv4 address space, which holds loopback",
        ),
        (
            "::/0",
            "it is the whole IPv6 address space, which holds loopback",
        ),
        ("127.0.0.0/9", "it holds loopback"),
        ("127.0.0.1", "it is a loopback address"),
    ] {
        let o = cli(&["ban", addr], &config);
        let err = o.stderr_str();
        assert_eq!(o.code(), Some(1), "{addr}: {err}");
        assert!(err.contains(want), "{addr}: {err}");
        if addr.contains('/') {
            assert!(!err.contains("it is a loopback address"), "{addr}: {err}");
        }
    }
    let typo = "203.0.113.0/8 has host bits set: a /8 holds 16777216 addresses and starts at \
                203.0.0.0. Did you mean 203.0.113.0/24, or 203.0.0.0/8?";
    let one = "198.51.100.1/24 has host bits set: a /24 holds 256 addresses and starts at \
               198.51.100.0. Did you mean the single address 198.51.100.1, or 198.51.100.0/24?";
    let six = "Did you mean 2001:db8:5:6::/64, or 2001:db8::/32?";
    for (addr, want) in [
        ("203.0.113.0/8", typo),
        ("198.51.100.1/24", one),
        ("2001:db8:5:6::/32", six),
    ] {
        let o = cli(&["ban", addr], &config);
        assert_eq!(o.code(), Some(1), "{addr}: {}", o.stderr_str());
        assert!(o.stderr_str().contains(want), "{addr}: {}", o.stderr_str());
    }
    // the daemon refuses it too, from a client that does not check
    let v = raw_request(
        &dir.join("p.sock"),
        r#"{"cmd":"ban","addr":"203.0.113.0/8","jail":null,"duration":null}"#,
    );
    assert_eq!(v["ok"], false, "{v}");
    assert!(v["error"].as_str().unwrap().contains(typo), "{v}");
    let v = raw_request(
        &dir.join("p.sock"),
        r#"{"cmd":"ban","addr":"::/0","jail":null,"duration":null}"#,
    );
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("whole IPv6 address space"),
        "{v}"
    );
    // a prefix written at its start is banned as before
    assert!(cli(&["ban", "203.0.113.0/24"], &config).success());
    let o = cli(&["bans", "--json"], &config).check();
    assert_eq!(hosts(&o), ["203.0.113.0/24"]);
    // an unban of one address with `all` beside it is refused, not every ban lifted; a
    // request not UTF-8 is answered (review 65: `all` won; closed unanswered)
    let v = raw_request(
        &dir.join("p.sock"),
        r#"{"cmd":"unban","addr":"203.0.113.50","jail":null,"all":true}"#,
    );
    assert_eq!(v["ok"], false, "{v}");
    assert!(v["error"].as_str().unwrap().contains("not both"), "{v}");
    let mut s = std::os::unix::net::UnixStream::connect(dir.join("p.sock")).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(b"\x00\xff\xfe garbage\n").unwrap();
    let mut answer = String::new();
    BufReader::new(s).read_line(&mut answer).unwrap();
    assert!(answer.contains("bad request"), "{answer:?}");
    let o = cli(&["bans", "--json"], &config).check();
    assert_eq!(hosts(&o), ["203.0.113.0/24"]);
    // unban: the same words (online)
    let o = cli(&["unban", "203.0.113.0/8"], &config);
    assert_eq!(o.code(), Some(1));
    assert!(o.stderr_str().contains(typo), "{}", o.stderr_str());
    d.stop();
    // and with the daemon stopped
    for args in [["ban", "203.0.113.0/8"], ["unban", "203.0.113.0/8"]] {
        let o = cli(&args, &config);
        assert_eq!(o.code(), Some(1), "{args:?}: {}", o.stderr_str());
        assert!(
            o.stderr_str().contains(typo),
            "{args:?}: {}",
            o.stderr_str()
        );
    }
    let o = cli(&["bans", "--json"], &config).check();
    assert_eq!(
        hosts(&o),
        ["203.0.113.0/24"],
        "nothing else was banned or lifted"
    );
}

/// 1.8: `help --help` works, `help SUB` is `SUB --help`, and the usage of `test` without
/// --filter shows FILE as optional, as --help does.
#[test]
fn help_and_usage_lines() {
    let o = run(&["help", "--help"]).check();
    assert!(o
        .stdout_str()
        .contains("Usage: portcullis help [SUBCOMMAND]"));
    let o = run(&["help", "bans"]).check();
    assert_eq!(o.stdout, run(&["bans", "--help"]).check().stdout);
    let o = run(&["help"]).check();
    assert_eq!(o.stdout, run(&["--help"]).check().stdout);
    let o = run(&["help", "nosuch"]);
    assert_eq!(o.code(), Some(2));
    assert!(o.stderr_str().contains("nosuch"), "{}", o.stderr_str());
    let usage = "Usage: portcullis test [OPTIONS] --filter <FILTER> [FILE]";
    assert!(run(&["test", "--help"])
        .check()
        .stdout_str()
        .contains(usage));
    let o = run(&["test", "auth.log"]);
    assert_eq!(o.code(), Some(2));
    assert!(o.stderr_str().contains(usage), "{}", o.stderr_str());
    // 1.1: replay's --config default is what the code does
    let o = run(&["replay", "--help"]).check();
    assert!(
        o.stdout_str()
            .contains("[default: /etc/portcullis/portcullis.toml, else built-in defaults]"),
        "{}",
        o.stdout_str()
    );
}

/// 1.8: replay's last line counts in the singular for one.
#[test]
fn replay_says_one_ban() {
    let work = tempfile::tempdir().unwrap();
    let config = work.path().join("c.toml");
    fs::write(
        &config,
        "[firewall]\nbackend = \"null\"\n[[jail]]\nname = \"sshd\"\nlogs = [\"/dev/null\"]\nmaxretry = 2\n",
    )
    .unwrap();
    let log = "\
Nov 21 10:00:01 web1 sshd[100]: Failed password for root from 203.0.113.5 port 5000 ssh2
Nov 21 10:00:02 web1 sshd[101]: Failed password for root from 203.0.113.5 port 5001 ssh2
";
    let mut c = Command::new(BIN);
    c.args(["replay", "--config"]).arg(&config);
    let o = run_with_timeout(&mut c, Some(log.as_bytes()), Duration::from_secs(30)).check();
    assert!(
        o.stderr_str().contains("replay: 2 lines, 1 ban, "),
        "{}",
        o.stderr_str()
    );
}

/// 4.7: `test --missed[=N]` lists the first N lines no rule matched, after their total.
#[test]
fn test_lists_the_missed_lines() {
    let log = "\
Nov 21 10:00:01 web1 sshd[100]: Failed password for root from 203.0.113.5 port 5000 ssh2
Nov 21 10:00:02 web1 CRON[5]: pam_unix(cron:session): session opened for user root
not a log line at all
Nov 21 10:00:03 web1 sshd[101]: Invalid user admin from 2001:db8::7 port 5001
Nov 21 10:00:04 web1 sshd[102]: Connection closed by 198.51.100.9 port 22 [preauth] \u{1b}[31m
";
    let test = |args: &[&str]| {
        let mut c = Command::new(BIN);
        c.args(["test", "--filter", "sshd"]).args(args);
        run_with_timeout(&mut c, Some(log.as_bytes()), Duration::from_secs(30))
    };
    let o = test(&["--missed=2"]).check();
    let out = o.stdout_str();
    let want = "\nlines not matched: 3, the first 2 (without syslog's repeat lines):\n  \
                Nov 21 10:00:02 web1 CRON[5]: pam_unix(cron:session): session opened for user root\n  \
                not a log line at all\n";
    assert!(out.ends_with(want), "{out}");
    // default 20: all three, the attacker's text escaped
    let out = test(&["--missed"]).check().stdout_str();
    assert!(
        out.contains("lines not matched: 3, the first 3 ")
            && out.contains("[preauth] \\u{1b}[31m\n"),
        "{out}"
    );
    // without it, no list
    let out = test(&[]).check().stdout_str();
    assert!(!out.contains("the first"), "{out}");
    // a file read by several threads lists the file's first lines, in order
    let big = work_file(log, 60_000);
    let mut c = Command::new(BIN);
    c.args(["test", "--filter", "sshd", "--missed=4"])
        .arg(big.path());
    let out = run_with_timeout(&mut c, None, Duration::from_secs(120))
        .check()
        .stdout_str();
    assert!(
        out.contains("lines not matched: 180000, the first 4 ")
            && out.ends_with(
                "  Nov 21 10:00:02 web1 CRON[5]: pam_unix(cron:session): session opened for user root\n  \
                 not a log line at all\n  \
                 Nov 21 10:00:04 web1 sshd[102]: Connection closed by 198.51.100.9 port 22 [preauth] \\u{1b}[31m\n  \
                 Nov 21 10:00:02 web1 CRON[5]: pam_unix(cron:session): session opened for user root\n"
            ),
        "{}",
        &out[out.len().saturating_sub(600)..]
    );
    let o = test(&["--missed", "--json"]);
    assert_eq!(o.code(), Some(2), "--missed has no meaning with --json");
}

/// `text` repeated `n` times in a temporary file.
fn work_file(text: &str, n: usize) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    for _ in 0..n {
        f.write_all(text.as_bytes()).unwrap();
    }
    f.flush().unwrap();
    f
}

/// A control socket removed by hand (`rm`, a clean-up of /run) left the daemon running out
/// of reach of every command, `reload` among them, until a restart. It is bound again within
/// seconds, with its mode; and at the stop it is removed.
#[test]
fn a_control_socket_removed_by_hand_is_bound_again() {
    use std::os::unix::fs::FileTypeExt;
    let (work, config) = setup("pct-rm-sock-");
    let dir = work.path();
    let socket = dir.join("p.sock");
    let d = Daemon::start(&config, &dir.join("run.log"));
    assert!(cli(&["ban", "203.0.113.83", "--jail", "sshd"], &config).success());
    fs::remove_file(&socket).unwrap();
    // out of reach until the keeper's next look (every 5 s): unless that look came between
    // the removal and this command (review 34), then it is already back
    let o = cli(&["reload"], &config);
    assert!(
        !o.success() || d.log().contains("bound again"),
        "reached with no socket file: {}\n{}",
        o.stdout_str(),
        d.log()
    );
    assert!(
        wait_until(Duration::from_secs(30), || socket.exists()),
        "the socket was not bound again:\n{}",
        d.log()
    );
    let m = fs::symlink_metadata(&socket).unwrap();
    assert!(m.file_type().is_socket());
    assert_eq!(m.permissions().mode() & 0o777, 0o600);
    assert!(cli(&["reload"], &config).success(), "{}", d.log());
    assert_eq!(hosts(&cli(&["bans", "--json"], &config)), ["203.0.113.83"]);
    let run = d.stop();
    assert!(
        run.contains(&format!(
            "control socket {} was removed: bound again",
            socket.display()
        )),
        "{run}"
    );
    assert!(!socket.exists(), "the socket stayed after the stop");
}

/// Review 28: lines written to a log that a reload adds, right after the reload answered,
/// were skipped (the follower took the new path a moment later and started at its end as it
/// was then). They count.
#[test]
fn lines_written_right_after_a_reload_that_adds_their_log_count() {
    let work = tempfile::Builder::new()
        .prefix("pct-reload-new-")
        .tempdir()
        .unwrap();
    let dir = work.path();
    let (config, _) = sshd_null_config(dir, 3);
    let web = dir.join("web.log");
    fs::write(&web, "").unwrap();
    let d = Daemon::start(&config, &dir.join("run.log"));
    let text = fs::read_to_string(&config).unwrap();
    fs::write(
        &config,
        format!(
            "{text}[[jail]]\nname = \"web\"\nfilter = \"sshd\"\nlogs = [{:?}]\nmaxretry = 3\n",
            web.display().to_string()
        ),
    )
    .unwrap();
    let o = cli(&["reload"], &config);
    assert!(o.success(), "{}", o.stderr_str());
    let mut n = 0;
    append_sshd_failures(&web, "203.0.113.84", 3, &mut n);
    let socket = dir.join("portcullis.sock");
    assert!(
        wait_until(Duration::from_secs(20), || banned_hosts(&socket)
            == ["203.0.113.84"]),
        "{}",
        d.log()
    );
    d.stop();
}

/// Review 27: `log_level = "debug"` printed nothing more than `note` (sshblack's CHATTY has
/// no equivalent without it). Each line a jail counts, or matches and sets aside, is said.
#[test]
fn the_debug_level_says_each_failure_counted_or_set_aside() {
    let work = tempfile::Builder::new()
        .prefix("pct-debug-")
        .tempdir()
        .unwrap();
    let dir = work.path();
    let (config, log) = sshd_null_config(dir, 5);
    let text = fs::read_to_string(&config).unwrap();
    fs::write(&config, format!("ignore = [\"198.51.100.7\"]\n{text}")).unwrap();
    fs::write(&log, "").unwrap();
    let mut cmd = Command::new(BIN);
    cmd.args(["run", "--log-level", "debug", "-c"]).arg(&config);
    let d = Daemon::start_command(cmd, &dir.join("run.log"));
    let mut n = 0;
    append_sshd_failures(&log, "203.0.113.85", 1, &mut n);
    append_sshd_failures(&log, "198.51.100.7", 1, &mut n);
    assert!(
        wait_until(Duration::from_secs(20), || d
            .log()
            .contains("debug not counted 198.51.100.7 jail=sshd")),
        "{}",
        d.log()
    );
    let said = d.stop();
    assert!(
        said.contains("debug failure 203.0.113.85 jail=sshd rule=") && said.contains("weight=1"),
        "{said}"
    );
    // and not at the default level
    let mut cmd = Command::new(BIN);
    cmd.args(["run", "-c"]).arg(&config);
    let d = Daemon::start_command(cmd, &dir.join("run2.log"));
    append_sshd_failures(&log, "203.0.113.86", 1, &mut n);
    let socket = dir.join("portcullis.sock");
    assert!(wait_until(Duration::from_secs(20), || {
        failing(&socket)
            .get("sshd")
            .is_some_and(|m| m.contains_key("203.0.113.86"))
    }));
    assert!(!d.stop().contains("debug "));
}

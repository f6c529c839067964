//! The offline commands, run as a user runs them: test, replay, check-config, filters.

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn portcullis(args: &[&str], stdin: Option<&str>) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run portcullis");
    {
        let mut i = c.stdin.take().unwrap();
        if let Some(s) = stdin {
            i.write_all(s.as_bytes()).unwrap();
        }
    }
    c.wait_with_output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

const LOG: &str = "\
Nov 21 10:00:01 web1 sshd[100]: Failed password for root from 203.0.113.5 port 5000 ssh2
Nov 21 10:00:02 web1 CRON[5]: pam_unix(cron:session): session opened for user root
Nov 21 10:00:03 web1 sshd[101]: Invalid user admin from 2001:db8::7 port 5001
not a log line at all
Nov 21 10:00:04 web1 sudo: alice : COMMAND=/usr/bin/grep Failed password for root from 198.51.100.9 port 22 ssh2
Nov 21 10:00:05 web1 sshd[102]: Failed password for invalid user root from 198.51.100.7 from 203.0.113.6 port 22 ssh2
";

/// `adds`: what each line adds to its address's count as a jail counts it, so that the
/// `adds` of a log add up to the daemon's count: a lost connection and the summary of a
/// Postfix connection whose SASL failures counted add nothing, those of one with no other
/// failure count once (review 40: each line's `weight` added up to 4 for 2 counted).
#[test]
fn test_json_adds_up_to_what_a_jail_counts() {
    let log = "\
Dec  5 10:00:00 mail postfix/smtpd[2211]: connect from unknown[203.0.113.20]
Dec  5 10:00:01 mail postfix/smtpd[2211]: warning: unknown[203.0.113.20]: SASL LOGIN authentication failed: UGFzc3dvcmQ6
Dec  5 10:00:02 mail postfix/smtpd[2211]: warning: unknown[203.0.113.20]: SASL LOGIN authentication failed: UGFzc3dvcmQ6
Dec  5 10:00:03 mail postfix/smtpd[2211]: lost connection after AUTH from unknown[203.0.113.20]
Dec  5 10:00:03 mail postfix/smtpd[2211]: disconnect from unknown[203.0.113.20] ehlo=1 auth=0/3 quit=0 commands=1/4
Dec  5 10:00:05 mail postfix/smtpd[2211]: connect from unknown[203.0.113.21]
Dec  5 10:00:06 mail postfix/smtpd[2211]: lost connection after AUTH from unknown[203.0.113.21]
Dec  5 10:00:06 mail postfix/smtpd[2211]: disconnect from unknown[203.0.113.21] ehlo=1 auth=0/1 quit=0 commands=1/4
";
    let o = portcullis(&["test", "--filter", "postfix", "--json"], Some(log));
    assert!(o.status.success(), "{}", text(&o.stderr));
    let adds: Vec<u64> = text(&o.stdout)
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["adds"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(adds, [0, 1, 1, 0, 0, 0, 1, 0]);
}

#[test]
fn test_json_gives_one_object_per_line_in_order() {
    let o = portcullis(&["test", "--filter", "sshd", "--json"], Some(LOG));
    assert!(o.status.success(), "{}", text(&o.stderr));
    let lines: Vec<serde_json::Value> = text(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), LOG.lines().count());
    let matched: Vec<bool> = lines
        .iter()
        .map(|v| v["matched"].as_bool().unwrap())
        .collect();
    assert_eq!(matched, vec![true, false, true, false, false, true]);
    assert_eq!(lines[0]["host"], "203.0.113.5");
    assert_eq!(lines[0]["user"], "root");
    assert_eq!(lines[0]["rule"], "failed");
    assert!(lines[0]["time"]
        .as_str()
        .unwrap()
        .contains("-11-21T10:00:01"));
    assert_eq!(lines[2]["host"], "2001:db8::7");
    assert_eq!(
        lines[5]["host"], "203.0.113.6",
        "the address inside the user name must not be taken"
    );
    for k in ["host", "user", "time", "rule"] {
        assert!(
            lines[1][k].is_null(),
            "{k} must be null on a non-matching line"
        );
    }
}

#[test]
fn test_summary_counts_rules_hosts_users() {
    let o = portcullis(&["test", "--filter", "sshd"], Some(LOG));
    let out = text(&o.stdout);
    assert!(o.status.success());
    assert!(
        out.contains("lines read: 6") && out.contains("lines matched: 3"),
        "{out}"
    );
    assert!(
        out.contains("203.0.113.5") && out.contains("admin"),
        "{out}"
    );
}

/// Review 27: scan lines counted as "matched" with no word that the default mode `normal`
/// never counts them; the summary says how many and which modes do.
#[test]
fn test_says_which_matches_are_scans_the_default_mode_does_not_count() {
    let log = "\
Dec  6 10:00:00 h sshd[1]: Did not receive identification string from 198.51.100.9 port 4
Dec  6 10:00:01 h sshd[2]: Failed password for root from 198.51.100.10 port 22 ssh2
";
    let out = text(&portcullis(&["test", "--filter", "sshd"], Some(log)).stdout);
    assert!(
        out.contains("lines matched: 2")
            && out.contains(
                "scans: 1 (class Scan: counted by a jail in mode \"ddos\" or \"aggressive\""
            ),
        "{out}"
    );
    let out = text(
        &portcullis(
            &["test", "--filter", "sshd"],
            Some(&log[log.find('\n').unwrap() + 1..]),
        )
        .stdout,
    );
    assert!(!out.contains("scans:"), "{out}");
}

/// A `tagged_only` rule (Samba's hosts allow/deny refusal) reads the syslog line, not the
/// same message in the program's own file, and `test` says how many it left out.
#[test]
fn test_says_what_a_syslog_only_rule_left_out() {
    let log = "\
Dec  3 12:00:20 fs1 smbd[2002]: Denied connection from unknown (203.0.113.20)
  Denied connection from unknown (203.0.113.22)
  Denied connection from  (203.0.113.23)
";
    let o = portcullis(&["test", "--filter", "samba"], Some(log));
    let out = text(&o.stdout);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(
        out.contains("lines read: 3") && out.contains("lines matched: 1"),
        "{out}"
    );
    assert!(
        out.contains("lines without a program name that a syslog-only rule matches: 2 "),
        "{out}"
    );
}

/// A line long enough to be a piece of a message its program split (the filter's
/// `split_at`: courierlogger's 511-byte pieces) is not matched, and `test` says so.
#[test]
fn test_says_what_a_split_message_left_out() {
    let piece = format!(
        "LOGIN FAILED, user=x{}, ip=[198.51.100.7]",
        "y".repeat(511 - "LOGIN FAILED, user=x, ip=[198.51.100.7]".len())
    );
    let log = format!(
        "Dec  6 10:00:00 mail imapd: {piece}\n\
         Dec  6 10:00:01 mail imapd: LOGIN FAILED, user=bob, ip=[203.0.113.8]\n"
    );
    let o = portcullis(&["test", "--filter", "courier-auth"], Some(&log));
    let out = text(&o.stdout);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(out.contains("lines matched: 1"), "{out}");
    assert!(
        out.contains("lines that may be pieces of a longer message their program split: 1 "),
        "{out}"
    );
}

#[test]
fn unknown_filter_lists_the_known_ones() {
    let o = portcullis(&["test", "--filter", "nosuchfilter"], Some(""));
    assert!(!o.status.success());
    let e = text(&o.stderr);
    assert!(e.contains("nosuchfilter") && e.contains("sshd"), "{e}");
}

/// A filter withdrawn for security is refused with its reason, not as a typo; so is one
/// never shipped for that reason (gitea), and a misspelt name gets the one it means.
#[test]
fn a_withdrawn_filter_is_refused_with_its_reason() {
    let o = portcullis(&["test", "--filter", "znc-adminlog"], Some(""));
    assert!(!o.status.success());
    let e = text(&o.stderr);
    assert!(
        e.contains("\"znc-adminlog\" is not built in") && e.contains("NUL"),
        "{e}"
    );
    let o = portcullis(&["test", "--filter", "gitea"], Some(""));
    let e = text(&o.stderr);
    assert!(
        !o.status.success() && e.contains("\"gitea\" is not built in") && e.contains("raw"),
        "{e}"
    );
    let o = portcullis(&["test", "--filter", "sshdd"], Some(""));
    let e = text(&o.stderr);
    assert!(
        !o.status.success() && e.contains("did you mean \"sshd\"?"),
        "{e}"
    );
}

/// A jail with no `filter` whose name is no filter's is told that the filter defaults to
/// the jail's name, with the service's filters (fail2ban users name a jail `nginx`), the
/// reason a filter is not shipped, or the name it probably means (it said "has no
/// `filter`", a review found).
#[test]
fn a_jail_named_after_no_filter_is_told_what_its_filter_defaults_to() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("p.toml");
    for (name, want) in [
        (
            "nginx",
            "the built-in filters of nginx are nginx-bad-request",
        ),
        ("gitea", "\"gitea\" is not built in: Gitea logs"),
        ("dovecott", "did you mean \"dovecot\"?"),
    ] {
        std::fs::write(
            &p,
            format!("[[jail]]\nname = \"{name}\"\nlogs = [\"/var/log/x.log\"]\n"),
        )
        .unwrap();
        let o = portcullis(&["check-config", "-c", p.to_str().unwrap()], None);
        let e = text(&o.stderr);
        assert!(!o.status.success(), "{name}: {e}");
        assert!(
            e.contains(&format!(
                "no filter is named \"{name}\", the name a jail's filter defaults to"
            )) && e.contains(want),
            "{name}: {e}"
        );
    }
}

#[test]
fn filter_from_a_file_path() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("app.toml");
    std::fs::write(&p, "name = \"app\"\ndescription = \"x\"\n[[rule]]\nid = \"bad\"\npattern = 'login failed for {USER} from {HOST}'\n").unwrap();
    let o = portcullis(
        &["test", "--filter", p.to_str().unwrap(), "--json"],
        Some("login failed for bob from 192.0.2.4\n"),
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(text(&o.stdout).contains("\"host\":\"192.0.2.4\""));
}

#[test]
fn replay_bans_each_address_once_and_unbans_after_bantime() {
    // 3 addresses x 6 failures, one minute apart: the default jail (5 in 10m, 1h) bans each once.
    // (Stamps with a year and a zone: year-less ones are given the year by today's date, and
    // run on 19 November they fell in two years, review 34.)
    let mut log = String::new();
    for i in 0..6 {
        for a in ["203.0.113.1", "203.0.113.2", "2001:db8::3"] {
            log.push_str(&format!(
                "2026-11-21T10:0{i}:00+00:00 h sshd[{i}]: Failed password for root from {a} port 22 ssh2\n"
            ));
        }
    }
    // two hours later one more line moves the clock past the bans' end
    log.push_str(
        "2026-11-21T12:10:00+00:00 h sshd[9]: Failed password for root from 198.51.100.1 port 22 ssh2\n",
    );
    let o = portcullis(&["replay", "--json"], Some(&log));
    assert!(o.status.success(), "{}", text(&o.stderr));
    let d: Vec<serde_json::Value> = text(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let bans: Vec<&serde_json::Value> = d.iter().filter(|v| v["action"] == "ban").collect();
    let unbans: Vec<&serde_json::Value> = d.iter().filter(|v| v["action"] == "unban").collect();
    assert_eq!(bans.len(), 3, "{d:?}");
    assert_eq!(unbans.len(), 3, "{d:?}");
    for b in &bans {
        assert_eq!(b["failures"], 5);
        assert_eq!(b["jail"], "sshd");
        assert!(b["time"].as_str().unwrap().contains("T10:04:00"));
    }
}

#[test]
fn replay_ignores_listed_addresses() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::write(
        &cfg,
        "ignore = [\"203.0.113.0/24\"]\n[[jail]]\nname = \"sshd\"\nmaxretry = 2\n",
    )
    .unwrap();
    let mut log = String::new();
    for i in 0..100 {
        log.push_str(&format!("Nov 21 10:00:{:02} h sshd[{i}]: Failed password for root from 203.0.113.9 port 22 ssh2\n", i % 60));
    }
    let o = portcullis(
        &["replay", "--config", cfg.to_str().unwrap(), "--json"],
        Some(&log),
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(text(&o.stdout).trim(), "");
}

#[test]
fn check_config_reports_file_line_key() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::write(
        &cfg,
        "[[jail]]\nname = \"sshd\"\nfindtime = \"ten minutes\"\n",
    )
    .unwrap();
    let o = portcullis(&["check-config", "--config", cfg.to_str().unwrap()], None);
    assert!(!o.status.success());
    let e = text(&o.stderr);
    assert!(
        e.contains("c.toml:3") && e.contains("findtime") && e.contains("10m"),
        "{e}"
    );
    std::fs::write(
        &cfg,
        "[[jail]]\nname = \"sshd\"\nlogs = [\"/var/log/auth.log\"]\n",
    )
    .unwrap();
    let o = portcullis(&["check-config", "--config", cfg.to_str().unwrap()], None);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(text(&o.stdout).contains("jail sshd"));
}

/// Regression: a drop-in naming the sshd jail replaced it (check-config said `logs: none`).
#[test]
fn check_config_dropin_overrides_only_its_keys() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("portcullis.toml");
    // the shipped example (its sshd jail leaves `logs` to the built-in default), with the
    // sshd jail reading a file of our own
    let dist = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../dist/portcullis.toml"
    ))
    .unwrap();
    let name_line = "\n[[jail]]\nname = \"sshd\"\n";
    assert!(dist.contains(name_line) && !dist.lines().any(|l| l.starts_with("logs = ")));
    std::fs::write(
        &cfg,
        dist.replacen(
            name_line,
            "\n[[jail]]\nname = \"sshd\"\nlogs = [\"/var/log/portcullis-test-auth.log\"]\n",
            1,
        ),
    )
    .unwrap();
    std::fs::create_dir(dir.path().join("portcullis.d")).unwrap();
    std::fs::write(
        dir.path().join("portcullis.d/50-local.toml"),
        "[[jail]]\nname = \"sshd\"\nbantime = \"1d\"\n",
    )
    .unwrap();
    let o = portcullis(&["check-config", "--config", cfg.to_str().unwrap()], None);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    let sshd = out
        .lines()
        .find(|l| l.starts_with("jail sshd"))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        sshd.contains("ban 1d")
            && sshd.contains("logs: /var/log/portcullis-test-auth.log")
            && sshd.contains("on 22"),
        "{sshd}"
    );
}

#[test]
fn filters_lists_name_group_description_and_log() {
    let o = portcullis(&["filters"], None);
    assert!(o.status.success());
    let out = text(&o.stdout);
    let mut lines = out.lines().skip_while(|l| !l.starts_with("sshd "));
    let sshd = lines.next().expect("sshd listed");
    assert!(sshd.contains(" ssh ") && sshd.contains("OpenSSH"), "{sshd}");
    let log = lines.next().unwrap();
    // the journal source the built-in sshd jail reads when journald runs, then the file
    assert_eq!(
        log.trim_start(),
        "log: journal:_SYSTEMD_UNIT=ssh.service _SYSTEMD_UNIT=sshd.service _UID=0 + \
         _SYSTEMD_SLICE=system-ssh.slice _SYSTEMD_SLICE=system-sshd.slice _UID=0 + \
         SYSLOG_IDENTIFIER=sshd SYSLOG_IDENTIFIER=sshd-session _UID=0 _TRANSPORT=syslog | \
         /var/log/auth.log",
        "{log}"
    );
    let o = portcullis(&["filters", "--json"], None);
    for l in text(&o.stdout).lines() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        assert!(v["name"].is_string() && v["description"].is_string());
        assert!(v["group"].is_string() && !v["logs"].as_array().unwrap().is_empty());
    }
    // --group keeps one kind of service
    let o = portcullis(&["filters", "--group", "mail", "--json"], None);
    let names: Vec<String> = text(&o.stdout)
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["name"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert!(
        names.iter().any(|n| n == "postfix") && !names.iter().any(|n| n == "sshd"),
        "{names:?}"
    );
    let o = portcullis(&["filters", "--group", "nosuch"], None);
    assert!(!o.status.success());
    assert!(
        text(&o.stderr).contains("unknown group"),
        "{}",
        text(&o.stderr)
    );
}

#[test]
fn filters_shows_one_filter_file_and_its_sample() {
    // the file as built in: header (the audit a packaged install has no other copy of) and
    // patterns, byte for byte
    let o = portcullis(&["filters", "ntfy"], None);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let src = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../filters/ntfy.toml"
    ))
    .unwrap();
    assert_eq!(text(&o.stdout), src);
    let o = portcullis(&["filters", "ntfy", "--sample"], None);
    assert!(o.status.success());
    let sample = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../filters/ntfy.log"
    ))
    .unwrap();
    assert_eq!(text(&o.stdout), sample);
    // a former name still shows the filter it became
    let o = portcullis(&["filters", "danted"], None);
    assert!(text(&o.stdout).starts_with("# ") && text(&o.stdout).contains("name = \"dante\""));
    // a typo gets the closest name, a withdrawn filter the reason, both fail
    let o = portcullis(&["filters", "ntfi"], None);
    assert!(!o.status.success());
    assert!(
        text(&o.stderr).contains("did you mean `ntfy`"),
        "{}",
        text(&o.stderr)
    );
    let o = portcullis(&["filters", "roundcube-auth"], None);
    assert!(!o.status.success());
    assert!(
        text(&o.stderr).contains("is not built in"),
        "{}",
        text(&o.stderr)
    );
    // NAME is not a filter of the list
    let o = portcullis(&["filters", "sshd", "--json"], None);
    assert!(!o.status.success());
}

#[test]
fn client_without_daemon_says_so_with_the_socket() {
    let o = portcullis(
        &["status", "--socket", "/nonexistent/portcullis.sock"],
        None,
    );
    assert!(!o.status.success());
    let e = text(&o.stderr);
    assert!(
        e.contains("no portcullis daemon") && e.contains("/nonexistent/portcullis.sock"),
        "{e}"
    );
}

#[test]
fn readme_lists_every_builtin_filter() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let o = portcullis(&["filters"], None);
    let names: Vec<String> = text(&o.stdout)
        .lines()
        .filter(|l| !l.starts_with(' '))
        .map(|l| l.split_whitespace().next().unwrap().to_string())
        .collect();
    assert!(names.len() >= 60, "only {} built-in filters", names.len());
    for n in names {
        assert!(
            readme.contains(&format!("`{n}`")),
            "README's filter table misses {n}"
        );
    }
}

/// slapd's bind failures get their address from the connection's ACCEPT line, which may be
/// megabytes earlier in the file: `replay` and `test` must see the lines in order (with
/// several threads each reading its own part, the failures' part would lack the ACCEPTs).
#[test]
fn correlated_lines_far_apart_are_tied_in_replay_and_test() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::write(
        &cfg,
        "[[jail]]\nname = \"ldap\"\nfilter = \"slapd\"\nlogs = [\"/dev/null\"]\nmaxretry = 3\n",
    )
    .unwrap();
    let filler = |log: &mut String, n: usize| {
        for i in 0..n {
            log.push_str(&format!("Nov 21 10:00:10 ldap1 slapd[7]: conn=9{i} op=1 SRCH base=\"dc=example,dc=com\" scope=2 deref=0 filter=\"(uid=x)\"\n"));
        }
    };
    let failures = |log: &mut String, m: usize| {
        for op in 0..4 {
            for c in 0..3 {
                log.push_str(&format!("Nov 21 10:0{m}:0{op} ldap1 slapd[7]: conn={c} op={op} RESULT tag=97 err=49 text=\n"));
            }
        }
    };
    let mut log = String::new();
    for c in 0..3 {
        log.push_str(&format!("Nov 21 10:00:0{c} ldap1 slapd[7]: conn={c} fd=12 ACCEPT from IP=203.0.113.{c}:4000 (IP=0.0.0.0:389)\n"));
    }
    // the failures after 1.2 MiB (replay's second chunk) and after 3.3 MiB (the second
    // piece of `test`), in about 6 MiB of other slapd lines
    filler(&mut log, 12_000);
    failures(&mut log, 1);
    filler(&mut log, 20_000);
    failures(&mut log, 2);
    filler(&mut log, 28_000);
    let path = dir.path().join("slapd.log");
    std::fs::write(&path, &log).unwrap();
    let o = portcullis(
        &[
            "replay",
            "--config",
            cfg.to_str().unwrap(),
            "--json",
            path.to_str().unwrap(),
        ],
        None,
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    let mut banned: Vec<String> = text(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["action"] == "ban")
        .map(|v| v["host"].as_str().unwrap().to_string())
        .collect();
    banned.sort();
    assert_eq!(banned, ["203.0.113.0", "203.0.113.1", "203.0.113.2"]);
    let o = portcullis(&["test", "--filter", "slapd", path.to_str().unwrap()], None);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    let line = out.lines().find(|l| l.contains("bind-failed")).unwrap();
    assert_eq!(line.split_whitespace().next(), Some("24"), "{out}");
}

/// Regression: a client without the right to reach the socket was told "no portcullis daemon
/// is answering". Needs root (runs the client as `nobody`).
#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn client_without_permission_is_told_permission_denied() {
    assert!(
        unsafe { libc::geteuid() } == 0,
        "this test needs root (it runs the client as nobody); run: sudo ./test.sh"
    );
    let dir = tempfile::tempdir().unwrap(); // 0700, root's: nobody cannot search it
    let sock = dir.path().join("portcullis.sock");
    let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let o = Command::new("runuser")
        .args(["-u", "nobody", "--", env!("CARGO_BIN_EXE_portcullis")])
        .args(["status", "--socket", sock.to_str().unwrap()])
        .output()
        .expect("run runuser");
    let e = text(&o.stderr);
    assert_eq!(o.status.code(), Some(3), "{e}");
    assert!(
        e.contains("permission denied") && !e.contains("no portcullis daemon"),
        "{e}"
    );
}

/// Regression: a rotated `auth.log.2.gz` was read as text and gave 0 bans with exit 0.
#[test]
fn replay_and_test_read_gzip_logs_and_refuse_binary_files() {
    use std::io::Write as _;
    let dir = tempfile::tempdir().unwrap();
    let mut log = String::new();
    for i in 0..6 {
        log.push_str(&format!(
            "Nov 21 10:0{i}:00 h sshd[{i}]: Failed password for root from 203.0.113.1 port 22 ssh2\n"
        ));
    }
    let gz = dir.path().join("auth.log.2.gz");
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(log.as_bytes()).unwrap();
    std::fs::write(&gz, e.finish().unwrap()).unwrap();
    let gz = gz.to_str().unwrap();

    let o = portcullis(&["replay", "--json", gz], None);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let bans = text(&o.stdout)
        .lines()
        .filter(|l| l.contains("\"ban\"") && l.contains("203.0.113.1"))
        .count();
    assert_eq!(bans, 1, "{}", text(&o.stdout));

    let o = portcullis(&["test", "--filter", "sshd", gz], None);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(
        text(&o.stdout).contains("203.0.113.1"),
        "{}",
        text(&o.stdout)
    );

    let bin = dir.path().join("system.journal");
    std::fs::write(&bin, b"LPKSHHRH\x00\x00\x00\x00\x01\x02").unwrap();
    for cmd in [
        &["replay", bin.to_str().unwrap()][..],
        &["test", "--filter", "sshd", bin.to_str().unwrap()][..],
    ] {
        let o = portcullis(cmd, None);
        assert!(!o.status.success(), "{cmd:?} accepted a binary file");
        assert!(
            text(&o.stderr).contains("binary file"),
            "{}",
            text(&o.stderr)
        );
    }
}

/// `test` and `replay` on a terminal show a progress bar for a large input (bytes, lines
/// per second, time left), and nothing when the output is piped or JSON. The terminal is a
/// real pseudo-terminal made by util-linux's `script`.
#[test]
fn progress_bar_only_on_a_terminal_and_never_with_json() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("big.log");
    {
        // 40 MiB of sshd lines (the bar starts at 32 MiB)
        let line = "Nov 21 10:00:01 web1 sshd[100]: Failed password for root from 203.0.113.5 port 5000 ssh2\n";
        let block = line.repeat(1 << 12);
        let mut f = std::io::BufWriter::new(std::fs::File::create(&log).unwrap());
        while f.get_ref().metadata().unwrap().len() < 40 << 20 {
            f.write_all(block.as_bytes()).unwrap();
            f.flush().unwrap();
        }
    }
    let bin = env!("CARGO_BIN_EXE_portcullis");
    let on_tty = |args: &str| -> String {
        let o = Command::new("script")
            .args(["-qec", &format!("{bin} {args}"), "/dev/null"])
            .stdin(Stdio::null())
            .output()
            .expect("script (util-linux)");
        assert!(o.status.success(), "{}", text(&o.stderr));
        text(&o.stdout)
    };
    let log = log.display();
    let shown = on_tty(&format!("test --filter sshd {log}"));
    assert!(
        shown.contains("lines/s") && shown.contains("MiB"),
        "{shown}"
    );
    let shown = on_tty(&format!("replay {log}"));
    assert!(shown.contains("lines/s"), "{shown}");
    // JSON on a terminal: no bar
    let json = on_tty(&format!("replay --json {log}"));
    assert!(!json.contains("lines/s"), "{json}");
    // piped: no bar
    let o = portcullis(&["test", "--filter", "sshd", &log.to_string()], None);
    assert!(o.status.success());
    assert!(!text(&o.stderr).contains("lines/s") && !text(&o.stdout).contains("lines/s"));
}

/// `test --json` reads a container runtime's partial record, and the record of its stream
/// that ends its line, as a jail does: neither matched (they were shown matched, a review
/// found); the other stream's record between is read.
#[test]
fn test_json_does_not_read_a_partial_container_record_or_its_rest() {
    let rec = |msg: &str, stream: &str, end: &str| {
        format!("{{\"log\":\"{msg}{end}\",\"stream\":\"{stream}\",\"time\":\"2026-11-21T10:00:02Z\"}}\n")
    };
    let fail = |a: &str| format!("Invalid user x from {a} port 22");
    let log = rec(&fail("198.51.100.98"), "stdout", "")
        + &rec(&fail("203.0.113.22"), "stderr", "\\n")
        + &rec(&fail("198.51.100.99"), "stdout", "\\n")
        + &rec(&fail("203.0.113.23"), "stdout", "\\n");
    let o = portcullis(&["test", "--filter", "sshd", "--json"], Some(&log));
    assert!(o.status.success(), "{}", text(&o.stderr));
    let hosts: Vec<serde_json::Value> = text(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["host"].clone())
        .collect();
    assert_eq!(
        hosts,
        [
            serde_json::Value::Null,
            "203.0.113.22".into(),
            serde_json::Value::Null,
            "203.0.113.23".into()
        ]
    );
}

/// `test`'s summary leaves a container runtime's partial record and the record that ends
/// its line unread too, from stdin and from a file long enough to be read in parallel
/// pieces (a cut between the two records read the second, which starts wherever the
/// runtime's cut fell, as a line of its own).
#[test]
fn test_summary_does_not_read_a_partial_container_record_or_its_rest() {
    let rec = |msg: &str, stream: &str, end: &str| {
        format!("{{\"log\":\"{msg}{end}\",\"stream\":\"{stream}\",\"time\":\"2026-11-21T10:00:02Z\"}}\n")
    };
    let fail = |a: &str| format!("Invalid user x from {a} port 22");
    let short = rec(&fail("198.51.100.98"), "stdout", "")
        + &rec(&fail("203.0.113.22"), "stderr", "\\n")
        + &rec(&fail("198.51.100.99"), "stdout", "\\n")
        + &rec(&fail("203.0.113.23"), "stdout", "\\n");
    let o = portcullis(&["test", "--filter", "sshd"], Some(&short));
    let out = text(&o.stdout);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(out.contains("lines read: 4\nlines matched: 2\n"), "{out}");
    assert!(
        out.contains("container runtime's records not read: 2 "),
        "{out}"
    );
    assert!(!out.contains("198.51.100.9"), "{out}");
    // about 6 MiB: each pair a long partial record (the cut between pieces most often
    // falls just after it) and the short record that ends its line
    let pad = "p".repeat(1200);
    let pair = rec(&format!("{pad} {}", fail("198.51.100.98")), "stdout", "")
        + &rec(&fail("198.51.100.99"), "stdout", "\\n");
    let n = (6 << 20) / pair.len();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("container.log");
    std::fs::write(
        &p,
        pair.repeat(n) + &rec(&fail("203.0.113.24"), "stdout", "\\n"),
    )
    .unwrap();
    let o = portcullis(&["test", "--filter", "sshd", p.to_str().unwrap()], None);
    let out = text(&o.stdout);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(
        out.contains(&format!("lines read: {}\nlines matched: 1\n", 2 * n + 1)),
        "{out}"
    );
    assert!(
        out.contains(&format!("container runtime's records not read: {} ", 2 * n)),
        "{out}"
    );
    assert!(
        !out.contains("198.51.100.9") && out.contains("203.0.113.24"),
        "{out}"
    );
}

/// check-config says that a `deny` entry holding one of this host's own addresses is
/// banned cut around it, as the daemon says at start (it listed it uncut, a review found).
#[test]
fn check_config_shows_a_deny_entry_cut_around_an_own_address() {
    let o = std::process::Command::new("ip")
        .args(["-o", "-4", "addr", "show", "scope", "global"])
        .output()
        .expect("ip (iproute2) runs");
    let own = text(&o.stdout)
        .split_whitespace()
        .skip_while(|w| *w != "inet")
        .nth(1)
        .map(|a| a.split('/').next().unwrap().to_string())
        .expect("this test needs a host with a global IPv4 address");
    let a: std::net::Ipv4Addr = own.parse().unwrap();
    let net = std::net::Ipv4Addr::from(u32::from(a) & !15);
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("p.toml");
    std::fs::write(&p, format!("deny = [\"{net}/28\"]\n")).unwrap();
    let o = portcullis(&["check-config", "-c", p.to_str().unwrap()], None);
    let e = text(&o.stderr);
    assert!(o.status.success(), "{e}");
    assert!(
        e.contains(&format!(
            "{net}/28 is banned around what it must not hold (it holds {a}, one of this host's own addresses)"
        )),
        "{e}"
    );
}

/// Review 61: BlockHosts' `--dry-run` habit is told what Portcullis has instead.
#[test]
fn run_dry_run_says_what_to_use() {
    let o = portcullis(&["run", "--dry-run"], None);
    assert_eq!(o.status.code(), Some(2));
    let e = text(&o.stderr);
    assert!(
        e.contains("backend = \"null\"") && e.contains("portcullis replay"),
        "{e}"
    );
}

/// Review 61: a filter of one's own written for a tool that searches (stopping at the
/// address, or starting with the program's `sshd[PID]:`) matches nothing; `test` says why.
/// A built-in filter that matches nothing gives no such hint.
#[test]
fn test_says_why_an_own_filter_matches_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("mine.toml");
    std::fs::write(
        &f,
        "name = \"mine\"\nprograms = [\"sshd\"]\n[[rule]]\nid = \"stops\"\npattern = 'Failed password for (?P<user>\\S+) from {HOST}'\n\
         [[rule]]\nid = \"prefixed\"\npattern = 'sshd\\[[0-9]+\\]: Failed password for (?P<user>\\S+) from {HOST} port [0-9]+ ssh2'\n",
    )
    .unwrap();
    let log = "Nov 21 10:00:01 web1 sshd[100]: Failed password for root from 203.0.113.5 port 5000 ssh2\n";
    let o = portcullis(&["test", "--filter", f.to_str().unwrap()], Some(log));
    let out = text(&o.stdout);
    assert!(out.contains("lines matched: 0"), "{out}");
    for id in ["stops", "prefixed"] {
        assert!(
            out.contains(&format!(
                "hint: rule {id:?} finds its text in 1 of the first 1 lines"
            )),
            "{out}"
        );
    }
    let o = portcullis(&["test", "--filter", "dovecot"], Some(log));
    assert!(!text(&o.stdout).contains("hint:"), "{}", text(&o.stdout));
}

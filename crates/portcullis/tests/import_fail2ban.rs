//! `portcullis import-fail2ban`, run as a user runs it, on a filter.d directory written here
//! (in fail2ban's documented format; no fail2ban file is copied).

use std::path::Path;
use std::process::{Command, Output};

fn portcullis(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(args)
        .output()
        .expect("run portcullis")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `portcullis test --filter FILTER --json LOG`: one JSON object per line of the log.
fn test_json(filter: &std::path::Path, log: &std::path::Path) -> Vec<serde_json::Value> {
    let o = portcullis(&[
        "test",
        "--filter",
        filter.to_str().unwrap(),
        "--json",
        log.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    text(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

const COMMON: &str = r"# shared pieces (test fixture)
[INCLUDES]
after = common.local

[DEFAULT]
_daemon = \S*
__pid_re = (?:\[\d+\])
__prefix_line = \s*(?:\S+\s+)?(?:%(_daemon)s%(__pid_re)s?:\s+)?
";

const GUARD: &str = r"# a filter for the guard daemon (test fixture)
[INCLUDES]
before = common.conf

[DEFAULT]
_daemon = (?:guardd|guardd-worker)

[Definition]
failregex = ^%(__prefix_line)sFailed password for <F-USER>\S+</F-USER> from <HOST> port \d+$
            ^%(__prefix_line)sUnknown user <F-USER>.*</F-USER> from <HOST>$
            ^%(__prefix_line)sRejected <F-USER>(?!admin)\S+</F-USER> from <HOST>$
ignoreregex = ^%(__prefix_line)sFailed password for \S+ from 192\.0\.2\.1 port \d+$
";

fn write_filters(dir: &Path, guard: &str) -> std::path::PathBuf {
    let fd = dir.join("filter.d");
    std::fs::create_dir_all(&fd).unwrap();
    std::fs::write(fd.join("common.conf"), COMMON).unwrap();
    std::fs::write(fd.join("guard.conf"), guard).unwrap();
    fd.join("guard.conf")
}

#[test]
fn imports_to_a_file_exits_0_and_reports_what_was_left_out() {
    let dir = tempfile::tempdir().unwrap();
    let conf = write_filters(dir.path(), GUARD);
    let out = dir.path().join("guard.toml");
    let o = portcullis(&[
        "import-fail2ban",
        conf.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    let err = text(&o.stderr);
    // a usable filter was written: exit code 0, the pattern left out is listed
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(
        err.contains("translated 2 of 3 failregex and 1 of 1 ignoreregex"),
        "{err}"
    );
    assert!(
        err.contains(
            "guard.conf:11 (failregex): look-ahead (?!…) is not supported by the linear-time engine"
        ),
        "{err}"
    );
    assert!(o.stdout.is_empty());

    // the written filter works with `portcullis test`
    let toml = std::fs::read_to_string(&out).unwrap();
    assert!(
        toml.contains("#   guard.conf:11 (failregex): look-ahead (?!…)"),
        "{toml}"
    );
    assert!(
        toml.contains("programs = [\"guardd\", \"guardd-worker\"]"),
        "{toml}"
    );
    let log = dir.path().join("guard.log");
    std::fs::write(
        &log,
        "Nov 21 10:00:01 h guardd[1]: Failed password for root from 203.0.113.5 port 22\n\
         Nov 21 10:00:02 h guardd[1]: Failed password for root from 192.0.2.1 port 22\n\
         Nov 21 10:00:03 h other[1]: Unknown user bob from 203.0.113.6\n",
    )
    .unwrap();
    let lines = test_json(&out, &log);
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0]["matched"], true);
    assert_eq!(lines[0]["host"], "203.0.113.5");
    assert_eq!(lines[0]["user"], "root");
    assert_eq!(lines[1]["matched"], false, "ignoreregex");
    assert_eq!(lines[2]["matched"], false, "program not read");
}

#[test]
fn complete_import_to_stdout_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let guard = GUARD.replace("(?!admin)", "");
    let conf = write_filters(dir.path(), &guard);
    let o = portcullis(&["import-fail2ban", conf.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let toml = text(&o.stdout);
    assert!(
        toml.starts_with("# Imported from fail2ban filter guard"),
        "{toml}"
    );
    assert!(toml.contains("name = \"guard\""), "{toml}");
    assert!(toml.contains("description = \"imported from fail2ban filter guard\""));
}

#[test]
fn unreadable_or_not_a_filter_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let o = portcullis(&[
        "import-fail2ban",
        dir.path().join("nope.conf").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("cannot read"));
    let conf = write_filters(dir.path(), GUARD);
    let common = conf.with_file_name("common.conf");
    let o = portcullis(&["import-fail2ban", common.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("no failregex"));
}

/// Runs portcullis with its standard output a pipe whose reading end is already closed
/// (what `portcullis … | head -1` leads to once `head` has exited).
fn into_closed_pipe(args: &[&str]) -> Output {
    use std::os::fd::{FromRawFd, OwnedFd};
    let mut fds = [0; 2];
    // SAFETY: pipe(2) fills both descriptors on success; each is then owned exactly once.
    let (read, write) = unsafe {
        assert_eq!(libc::pipe(fds.as_mut_ptr()), 0, "pipe");
        (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1]))
    };
    drop(read);
    Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(args)
        .stdout(std::process::Stdio::from(write))
        .output()
        .expect("run portcullis")
}

#[test]
fn a_closed_pipe_ends_the_command_quietly() {
    use std::os::unix::process::ExitStatusExt;
    let dir = tempfile::tempdir().unwrap();
    let guard = GUARD.replace("(?!admin)", "");
    let conf = write_filters(dir.path(), &guard);
    for args in [
        vec!["import-fail2ban", conf.to_str().unwrap()],
        vec!["filters"],
    ] {
        let o = into_closed_pipe(&args);
        let err = text(&o.stderr);
        // ended by SIGPIPE like `cat` or `grep`: no abort (134), no error message
        assert_eq!(
            o.status.signal(),
            Some(libc::SIGPIPE),
            "{args:?}: {:?} {err}",
            o.status
        );
        for bad in ["panicked", "Broken pipe", "cannot write"] {
            assert!(!err.contains(bad), "{args:?}: {err}");
        }
    }
}

#[test]
fn stock_sshd_failed_rule_is_imported_and_exits_0() {
    // fail2ban's sshd.conf, trimmed to its `^Failed …` rule (crates/fail2ban/tests/data)
    let stock = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../fail2ban/tests/data/sshd.conf"
    ))
    .expect("crates/fail2ban/tests/data/sshd.conf");
    let dir = tempfile::tempdir().unwrap();
    let fd = dir.path().join("filter.d");
    std::fs::create_dir(&fd).unwrap();
    std::fs::write(fd.join("common.conf"), COMMON).unwrap();
    std::fs::write(fd.join("sshd.conf"), stock).unwrap();
    let out = dir.path().join("sshd.toml");
    let o = portcullis(&[
        "import-fail2ban",
        fd.join("sshd.conf").to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(err.contains("translated 2 of 2 failregex"), "{err}");
    let log = dir.path().join("auth.log");
    std::fs::write(
        &log,
        "Nov 21 10:00:01 web1 sshd[4529]: Failed password for invalid user sato from 203.0.113.5 port 54177 ssh2\n\
         Nov 21 10:00:02 web1 sshd[4529]: Failed publickey for git from 198.51.100.8 port 40022 ssh2: RSA SHA256:4bD3y9nB1qWcR3xN0vE6m8p5lQk7tZsYuA2hJfGiKoM\n",
    )
    .unwrap();
    let lines = test_json(&out, &log);
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(lines[0]["host"], "203.0.113.5", "{lines:?}");
    assert_eq!(lines[0]["user"], "sato", "{lines:?}");
    assert_eq!(lines[1]["host"], "198.51.100.8", "{lines:?}");
}

/// A failregex without `^` and `$` (fail2ban searches it) imports with text of any kind on
/// both sides of the address: the import warns of it, and of an ignoreregex a client can
/// trigger, and so does `test` on the imported file; the anchored GUARD filter gets no such
/// warning. The warned filter does what the warning says: a user name typed as
/// "Invalid request from 198.51.100.88" gets that address counted.
#[test]
fn an_unanchored_failregex_is_warned_of() {
    let dir = tempfile::tempdir().unwrap();
    let guard = write_filters(dir.path(), GUARD);
    let fd = guard.parent().unwrap();
    std::fs::write(
        fd.join("loose.conf"),
        "[Definition]\nfailregex = Invalid request from <HOST>\nignoreregex = .*trusted\n",
    )
    .unwrap();
    let out = dir.path().join("loose.toml");
    let o = portcullis(&[
        "import-fail2ban",
        fd.join("loose.conf").to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    let e = text(&o.stderr);
    assert!(o.status.success(), "{e}");
    assert!(
        e.contains("WARNING: filter \"loose\", rule \"line-2\": a client can choose the address"),
        "{e}"
    );
    assert!(
        e.contains("WARNING: filter \"loose\", ignore[0]: it finds its words anywhere in a line"),
        "{e}"
    );
    let log = dir.path().join("app.log");
    std::fs::write(
        &log,
        "user \"Invalid request from 198.51.100.88\" not found, client 203.0.113.12\n",
    )
    .unwrap();
    let o = portcullis(&[
        "test",
        "--filter",
        out.to_str().unwrap(),
        "--json",
        log.to_str().unwrap(),
    ]);
    assert!(text(&o.stderr).contains("warning: filter \"loose\", rule \"line-2\""));
    let v: serde_json::Value = serde_json::from_str(text(&o.stdout).trim()).unwrap();
    assert_eq!(v["host"], "198.51.100.88");
    let o = portcullis(&[
        "import-fail2ban",
        guard.to_str().unwrap(),
        "-o",
        dir.path().join("guard.toml").to_str().unwrap(),
    ]);
    assert!(o.status.success());
    assert!(
        !text(&o.stderr).contains("a client can choose"),
        "{}",
        text(&o.stderr)
    );
}

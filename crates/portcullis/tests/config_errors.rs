//! `portcullis check-config` on the mistakes a newcomer (often from fail2ban) makes: each is
//! an error naming the file, the line and the key and saying what is valid, or a warning;
//! and check-config refuses a state directory as `run` does. No root needed for most; the
//! state_dir test compares with `run`, which refuses before it touches anything.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_portcullis");

/// Runs check-config on `path`; returns (success, stdout + stderr).
fn check_file(path: &Path) -> (bool, String) {
    common::check_config(path)
}

/// Writes `text` as `dir/portcullis.toml` and checks it.
fn check(dir: &Path, text: &str) -> (bool, String) {
    let path = dir.join("portcullis.toml");
    std::fs::write(&path, text).unwrap();
    check_file(&path)
}

/// A configuration that touches nothing on the host.
fn base(dir: &Path) -> String {
    format!(
        "state_dir = \"{}/state\"\nsocket = \"{}/p.sock\"\n[firewall]\nbackend = \"null\"\n",
        dir.display(),
        dir.display()
    )
}

#[test]
fn structural_mistakes_name_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let file = d.join("portcullis.toml").display().to_string();
    let b = base(d); // 4 lines
    let cases = [
        (
            format!("{b}[jail]\nname = \"sshd\"\n"),
            format!("{file}:5: `jail`: [jail] is a single table"),
            "write [[jail]] (two brackets)",
        ),
        (
            format!("ignore = \"192.0.2.1\"\n{b}"),
            format!("{file}:1: `ignore`: must be a list"),
            "a list, e.g. [\"192.0.2.1\"]",
        ),
        (
            format!("bantime = \"1h\"\n{b}"),
            format!("{file}:1: `bantime`"),
            "is a [[jail]] key, not a top-level key",
        ),
        (
            format!("{b}bakend = \"null\"\n"),
            format!("{file}:5: `firewall.bakend`"),
            "did you mean `backend`?",
        ),
        (
            format!("{b}[[jail]]\nname = \"sshd\"\nlogpath = \"/var/log/auth.log\"\nfoo = 1\n"),
            format!("{file}:7: `logpath`"),
            "is `logs` in Portcullis, a list",
        ),
        (
            format!("{b}[[jail]]\nname = \"sshd\"\nbackend = \"systemd\"\n"),
            format!("{file}:7: `backend`"),
            "to read the journal use logs = [\"journal:...\"]",
        ),
        // fail2ban's dotted keys, as written in jail.local (review of the migration path:
        // serde's own words came out)
        (
            format!("{b}[[jail]]\nname = \"sshd\"\nbantime.increment = true\n"),
            format!("{file}:7: `bantime.increment`"),
            "bantime_increment = { factor = 2.0",
        ),
        (
            format!("{b}[[jail]]\nname = \"sshd\"\nfoo.bar = 1\n"),
            format!("{file}:7: `foo.bar`"),
            "write the key without a dot",
        ),
        (
            format!("{b}[[jail]]\nname = \"sshd\"\nfilter = \"sshd[mode=aggressive]\"\n"),
            format!("{file}:7: `filter`"),
            "write filter = \"sshd\" and mode = \"aggressive\" as keys of the jail",
        ),
        // several parameters, each a key of its own (review 55: the mode was read as
        // "aggressive, port=2222")
        (
            format!("{b}[[jail]]\nname = \"sshd\"\nfilter = \"sshd[mode=aggressive, port=2222]\"\n"),
            format!("{file}:7: `filter`"),
            "write filter = \"sshd\" and mode = \"aggressive\", ports = [2222] as keys of the jail",
        ),
        // fail2ban's logpath forms: an interpolation, two paths in one string (review 55:
        // warnings only, "no such file")
        (
            format!("{b}[[jail]]\nname = \"sshd\"\nlogs = [\"%(sshd_log)s\"]\n"),
            format!("{file}:7: `logs`"),
            "is fail2ban's %(name)s interpolation",
        ),
        (
            format!("{b}[[jail]]\nname = \"sshd\"\nlogs = [\"/var/log/nosuch-a.log /var/log/nosuch-b.log\"]\n"),
            format!("{file}:7: `logs`"),
            "holds 2 paths in one string (fail2ban's logpath is split at spaces and new lines): write each as an entry of the list, logs = [\"/var/log/nosuch-a.log\", \"/var/log/nosuch-b.log\"]",
        ),
        // fail2ban's banaction names, and `all` as an entry (review 55)
        (
            format!("{b}[[jail]]\nname = \"sshd\"\nbackend = \"nftables-allports\"\n"),
            format!("{file}:7: `backend`"),
            "\"nftables-allports\" is fail2ban's banaction; in Portcullis it is backend = \"nftables\"",
        ),
        (
            format!("{b}[[jail]]\nname = \"sshd\"\nports = [\"all\"]\n"),
            format!("{file}:7: `ports`"),
            "\"all\" is the value of `ports` itself, not an entry of its list: ports = \"all\"",
        ),
        (
            format!("{b}[[jail]]\nname = \"sshd\"\nfailregex = \"x\"\n"),
            format!("{file}:7: `failregex`"),
            "fail2ban's `failregex` belongs to a filter, not a jail",
        ),
        // fail2ban's postfix[mode=auth] is a filter of its own here (review 40: both
        // messages led to a dead end)
        (
            format!("{b}[[jail]]\nname = \"postfix\"\nfilter = \"postfix[mode=auth]\"\n"),
            format!("{file}:7: `filter`"),
            "is the built-in filter \"postfix-sasl\" here (filter = \"postfix-sasl\")",
        ),
        (
            format!("{b}[[jail]]\nname = \"postfix\"\nmode = \"auth\"\n"),
            format!("{file}:7: `mode`"),
            "is the built-in filter postfix-sasl here",
        ),
        // found by check-config (ExecStartPre), not first by `run`
        (
            format!("{b}table = \"my table\"\n"),
            format!("{file}:5: `firewall.table`"),
            "bad nftables table name \"my table\"",
        ),
    ];
    for (text, at, says) in cases {
        let (ok, out) = check(d, &text);
        assert!(
            !ok && out.contains(&at) && out.contains(says),
            "{text}\n=> {out}"
        );
    }
    // the second unknown key is named too, on its own line after the first
    let (_, out) = check(
        d,
        &format!("{b}[[jail]]\nname = \"sshd\"\nlogpath = \"/x\"\nfoo = 1\n"),
    );
    let first = out.find(&format!("{file}:7: `logpath`")).expect(&out);
    let second = out.find(&format!("{file}:8: `foo`")).expect(&out);
    assert!(first < second, "{out}");
}

/// From a review of the migration path: what a literal copy of fail2ban's settings gets
/// wrong is said, with file and line where the key has them.
#[test]
fn fail2ban_habits_that_pass_but_mislead_are_warnings() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let file = d.join("portcullis.toml").display().to_string();
    let b = base(d);
    let (ok, out) = check(
        d,
        &format!("{b}[[jail]]\nname = \"sshd\"\nignore = [\"203.0.113.7/24\"]\nbantime_increment = {{ factor = 1.0 }}\nlogs = [\"journal:SYSLOG_IDENTIFIER=sshd\"]\n"),
    );
    assert!(ok, "{out}");
    for want in [
        format!("{file}:7: `ignore` of jail \"sshd\": 203.0.113.7/24 has host bits set"),
        "also never banned here: 203.0.113.0/24".to_string(),
        "bantime_increment with factor 1 never lengthens a ban".to_string(),
        "`SYSLOG_IDENTIFIER=sshd` names no field journald sets".to_string(),
    ] {
        assert!(out.contains(&want), "{want}\n=> {out}");
    }
}

#[test]
fn fail2ban_durations_and_a_relative_list_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let b = base(d);
    let (ok, out) = check(
        d,
        &format!("{b}[[jail]]\nname = \"sshd\"\nfindtime = 600\nbantime = \"1 hour\"\n"),
    );
    assert!(ok, "{out}");
    assert!(out.contains("5 failures in 10m -> ban 1h"), "{out}");
    let (ok, out) = check(d, &format!("{b}[[jail]]\nname = \"sshd\"\nbantime = -1\n"));
    assert!(!ok && out.contains("bantime = \"forever\""), "{out}");
    let (ok, out) = check(d, &format!("ignore = [\"office.txt\"]\n{b}"));
    assert!(
        !ok && out.contains(":1: `ignore`") && out.contains("list files need an absolute path"),
        "{out}"
    );
}

#[test]
fn dropins_that_are_not_toml_and_no_enabled_jail_are_warnings() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let main = d.join("portcullis.toml");
    std::fs::write(
        &main,
        format!("{}[[jail]]\nname = \"sshd\"\nenabled = false\n", base(d)),
    )
    .unwrap();
    std::fs::create_dir(d.join("portcullis.d")).unwrap();
    std::fs::write(
        d.join("portcullis.d/50-local.conf"),
        "[[jail]]\nname = \"sshd\"\nenabled = true\n",
    )
    .unwrap();
    let (ok, out) = check_file(&main);
    assert!(ok, "{out}");
    assert!(
        out.contains(&format!(
            "warning: not read: {}/portcullis.d/50-local.conf (only portcullis.d/*.toml files are read",
            d.display()
        )),
        "{out}"
    );
    assert!(
        out.contains("warning: no jail is enabled: nothing is protected"),
        "{out}"
    );
    // named .toml, it is read: the jail is on, no warning
    std::fs::rename(
        d.join("portcullis.d/50-local.conf"),
        d.join("portcullis.d/50-local.toml"),
    )
    .unwrap();
    let (ok, out) = check_file(&main);
    assert!(ok && out.contains("jail sshd:"), "{out}");
    assert!(
        !out.contains("not read") && !out.contains("no jail is enabled"),
        "{out}"
    );
}

/// fail2ban's keys and values that have no Portcullis twin say what becomes of them, and a
/// window longer than the ban history is kept is a warning (review of the migration).
#[test]
fn fail2ban_keys_without_a_twin_say_so() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let b = base(d);
    for (jail, want) in [
        ("usedns = \"warn\"", "is never resolved or banned"),
        ("maxmatches = 5", "as its evidence"),
        ("ignorecommand = \"/bin/true\"", "the top-level `ignore`"),
        ("ignoreself = true", "top-level `ignore_self`"),
        ("bantime.rndtime = 600", "`bantime_jitter`"),
        ("bantime.multipliers = \"1 2 4\"", "no Portcullis form"),
        ("action = \"%(action_mwl)s\"", "[notify.mail]"),
        ("mode = \"more\"", "each a part of these"),
        (
            "ignore = [\"192.0.2.0/24 198.51.100.0/24\"]",
            "one entry per string, [\"192.0.2.0/24\", \"198.51.100.0/24\"]",
        ),
        (
            "ignore = [\"office.example.com\"]",
            "host names and files go in the top-level `ignore`",
        ),
    ] {
        let (ok, out) = check(d, &format!("{b}[[jail]]\nname = \"sshd\"\n{jail}\n"));
        assert!(!ok && out.contains(want), "{jail}: {want}\n=> {out}");
    }
    let (ok, out) = check(
        d,
        &format!("ignore = [\"192.0.2.0/24 198.51.100.0/24\"]\n{b}[[jail]]\nname = \"sshd\"\n"),
    );
    assert!(!ok && out.contains("one entry per string"), "{out}");
    let (ok, out) = check(
        d,
        &format!("{b}[[jail]]\nname = \"sshd\"\nbantime_increment = {{ window = \"365d\" }}\n"),
    );
    assert!(ok, "{out}");
    assert!(
        out.contains("bantime_increment.window = 365d reaches back further than the ban history is kept (90 days)"),
        "{out}"
    );
    // fail2ban's recidive jail, key for key: its log is not ours
    let (ok, out) = check(
        d,
        &format!("{b}[[jail]]\nname = \"recidive\"\nlogs = [\"/var/log/fail2ban.log\"]\n"),
    );
    assert!(ok, "{out}");
    assert!(
        out.contains("/var/log/fail2ban.log is fail2ban's log, but the recidive filter reads Portcullis' own `ban` lines"),
        "{out}"
    );
}

/// A socket in a directory other users can write is a warning: one of them can bind the
/// name first and answer root's commands (review).
#[test]
fn a_socket_in_a_directory_others_can_write_is_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let public = d.join("pub");
    std::fs::create_dir(&public).unwrap();
    std::fs::set_permissions(&public, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let text = base(d).replace(
        &format!("socket = \"{}/p.sock\"", d.display()),
        &format!("socket = \"{}/p.sock\"", public.display()),
    );
    assert!(text.contains("pub/p.sock"), "{text}");
    let (ok, out) = check(d, &format!("{text}[[jail]]\nname = \"sshd\"\n"));
    assert!(ok, "{out}");
    assert!(out.contains("is writable by other users"), "{out}");
    let (ok, out) = check(d, &format!("{}[[jail]]\nname = \"sshd\"\n", base(d)));
    assert!(ok && !out.contains("writable by other users"), "{out}");
}

/// Mail with a login over `smtp://` (STARTTLS only when offered) and a password file
/// others can read are warnings (review: the password went in the clear to a server that
/// offered no STARTTLS, and check-config said nothing).
#[test]
fn mail_credentials_that_may_go_in_the_clear_are_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let pass = d.join("smtp.pass");
    std::fs::write(&pass, "hunter2\n").unwrap();
    std::fs::set_permissions(&pass, std::fs::Permissions::from_mode(0o644)).unwrap();
    let mail = |url: &str| {
        format!(
            "[notify.mail]\nsmtp = \"{url}\"\nfrom = \"p@example.org\"\nto = [\"a@example.org\"]\nuser = \"p\"\npassword_file = {:?}\n",
            pass
        )
    };
    let (ok, out) = check(
        d,
        &format!(
            "{}{}[[jail]]\nname = \"sshd\"\n",
            base(d),
            mail("smtp://mail.example.org")
        ),
    );
    assert!(ok, "{out}");
    assert!(out.contains("sends them in the clear"), "{out}");
    assert!(
        out.contains("holds a secret but others may read it"),
        "{out}"
    );
    std::fs::set_permissions(&pass, std::fs::Permissions::from_mode(0o600)).unwrap();
    for url in [
        "smtp+starttls://mail.example.org",
        "smtps://mail.example.org",
        "smtp://127.0.0.1:25",
    ] {
        let (ok, out) = check(
            d,
            &format!("{}{}[[jail]]\nname = \"sshd\"\n", base(d), mail(url)),
        );
        assert!(
            ok && !out.contains("in the clear") && !out.contains("holds a secret"),
            "{url}: {out}"
        );
    }
}

/// One jail naming one file under two names (a symlink, a path through `..`) reads it once,
/// with a warning: each line was counted twice, its `maxretry` halved (a review found).
#[test]
fn one_file_under_two_names_in_a_jail_is_read_once() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir(d.join("logs")).unwrap();
    let log = d.join("logs/auth.log");
    std::fs::write(&log, "").unwrap();
    std::os::unix::fs::symlink(&log, d.join("logs/secure")).unwrap();
    let text = format!(
        "{}[[jail]]\nname = \"sshd\"\nlogs = [{:?}, {:?}, {:?}]\n",
        base(d),
        log,
        d.join("logs/../logs/auth.log"),
        d.join("logs/secure")
    );
    let (ok, out) = check(d, &text);
    assert!(ok, "{out}");
    for other in ["logs/../logs/auth.log", "logs/secure"] {
        assert!(
            out.contains(&format!(
                "warning: jail sshd: logs \"{}\" and {:?} name the same file",
                d.join(other).display(),
                log
            )),
            "{out}"
        );
    }
}

/// Runs `portcullis run -c path` for at most 20 seconds; returns its stderr (it must end
/// by itself: it refuses the state directory before it starts anything).
fn run_refuses(path: &Path) -> String {
    let mut child = Command::new(BIN)
        .args(["run", "-c"])
        .arg(path)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > Duration::from_secs(20) {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("`run` did not refuse the state directory: it started");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert!(!status.success(), "{err}");
    err
}

#[test]
fn check_config_refuses_a_state_dir_others_can_write_as_run_does() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let state = d.join("state");
    std::fs::create_dir(&state).unwrap();
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o777)).unwrap();
    let path = d.join("portcullis.toml");
    std::fs::write(&path, base(d)).unwrap();
    let (ok, out) = check_file(&path);
    let says = format!(
        "state_dir {} has mode 0777: it is writable by other users",
        state.display()
    );
    assert!(!ok && out.contains(&says), "{out}");
    let run = run_refuses(&path);
    assert!(run.contains(&says), "{run}");
    // the same line, word for word
    let line = |t: &str| {
        t.lines()
            .find(|l| l.contains(&says))
            .map(|l| l[l.find("state_dir").unwrap()..].to_string())
    };
    assert_eq!(line(&out), line(&run));

    // a missing state directory under a directory others can write: refused too, and
    // check-config creates nothing
    let open = d.join("open");
    std::fs::create_dir(&open).unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
    std::fs::write(
        &path,
        base(d).replace(
            &format!("{}/state", d.display()),
            &format!("{}/open/sub/state", d.display()),
        ),
    )
    .unwrap();
    let (ok, out) = check_file(&path);
    assert!(
        !ok && out.contains(&format!(
            "the directory {} above it has mode 0777",
            open.display()
        )),
        "{out}"
    );
    assert!(!open.join("sub").exists());

    // private: fine, and still nothing created
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o755)).unwrap();
    let (ok, out) = check_file(&path);
    assert!(ok, "{out}");
    assert!(!open.join("sub").exists());
    std::fs::write(&path, base(d)).unwrap();
    let (ok, out) = check_file(&path);
    assert!(ok, "{out}");
}

/// check-config run by another user than root (linting a production configuration in CI)
/// on a state directory of root's, private: it checks for a daemon run as root and passes,
/// rather than telling that user to take the directory. And a "directory" above the state
/// directory that is a file is refused (run would fail on it). Needs root (setpriv).
#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn check_config_as_another_user_checks_for_a_root_daemon() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // nobody must reach the configuration: the temporary directory is 0700
    std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
    let state = d.join("state");
    std::fs::create_dir(&state).unwrap();
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o700)).unwrap();
    let path = d.join("portcullis.toml");
    std::fs::write(&path, base(d)).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let as_nobody = |path: &Path| {
        let out = Command::new("setpriv")
            .args([
                "--reuid=nobody",
                "--regid=nogroup",
                "--clear-groups",
                BIN,
                "check-config",
                "-c",
            ])
            .arg(path)
            .output()
            .expect("setpriv (util-linux)");
        (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    };
    let (ok, out) = as_nobody(&path);
    assert!(ok && out.contains("configuration OK"), "{out}");
    // a world-writable one is still refused, whoever checks
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o777)).unwrap();
    let (ok, out) = as_nobody(&path);
    assert!(!ok && out.contains("has mode 0777"), "{out}");

    // a file where a directory above the state directory should be
    std::fs::write(d.join("afile"), "").unwrap();
    std::fs::write(
        &path,
        base(d).replace(
            &format!("{}/state", d.display()),
            &format!("{}/afile/state", d.display()),
        ),
    )
    .unwrap();
    let (ok, out) = check_file(&path);
    assert!(!ok && out.contains("above it is not a directory"), "{out}");
}

/// A jail that can read nothing is said at check-config (and at start), not only by
/// `status` (docs review): here its only log is missing.
#[test]
fn a_jail_that_reads_nothing_is_a_loud_warning() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let text = format!(
        "{}[[jail]]\nname = \"blind\"\nfilter = \"sshd\"\nlogs = [\"{}/none.log\"]\n",
        base(d),
        d.display()
    );
    let (ok, out) = check(d, &text);
    assert!(ok, "{out}");
    assert!(
        out.contains("warning: jail blind: NO READABLE LOG SOURCE"),
        "{out}"
    );
    // a readable log: no such warning
    std::fs::write(d.join("none.log"), "").unwrap();
    let (ok, out) = check(d, &text);
    assert!(ok && !out.contains("NO READABLE"), "{out}");
}

/// A state directory on a read-only file system: `run` cannot start, and check-config says
/// so (review 41: "configuration OK", then `run` exited 2). The read-only mount is made in a
/// private mount namespace (`unshare -m`) over the test's own directory.
#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn a_read_only_state_dir_is_said() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let state = d.join("state");
    std::fs::create_dir(&state).unwrap();
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o700)).unwrap();
    let path = d.join("portcullis.toml");
    std::fs::write(&path, base(d)).unwrap();
    let run = |ro: bool| {
        let mount = if ro {
            format!("mount --bind -o ro {s} {s}; ", s = state.display())
        } else {
            String::new()
        };
        let out = Command::new("unshare")
            .args(["-m", "--propagation", "private", "sh", "-c"])
            .arg(format!("{mount}{BIN} check-config -c {}", path.display()))
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, err) = run(true);
    assert!(
        ok && err.contains("is on a read-only file system: `portcullis run` cannot start"),
        "{err}"
    );
    let (ok, err) = run(false);
    assert!(ok && !err.contains("read-only"), "{err}");
}

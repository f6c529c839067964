//! Issue 9, finding 2: a PostgreSQL client forges log lines through its user and database
//! names, which PostgreSQL writes raw into the log_line_prefix of its stderr log.
//!
//! The real attack against the real server (PostgreSQL 15 from Debian, run from a temporary
//! cluster on 127.0.0.1): connection requests whose user name holds a newline and a forged
//! line naming 198.51.100.7, in several shapes (Debian's default prefix, a prefix with %h,
//! the syslog chunk marker, a pg_hba refusal, a JSON record), each sent several times, plus
//! real failed password logins and a refused replication connection. The server logs both
//! its stderr format (Debian's default prefix) and jsonlog. Then `portcullis test --filter
//! postgresql --json` runs on both files: 198.51.100.7 must never be reported, and every
//! real failure must be, with the client's real address 127.0.0.1.
//!
//! Needs root (the server runs as the `postgres` user) and Debian's postgresql (15 or
//! later, for jsonlog); fails loudly when they are missing.

mod common;

use common::*;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

const FORGED: &str = "198.51.100.7";
/// PostgreSQL keeps the first NAMEDATALEN - 1 bytes of a user or database name.
const NAME_MAX: usize = 63;

/// The newest PostgreSQL server installed the Debian way (/usr/lib/postgresql/N/bin);
/// jsonlog needs 15 or later.
fn bin_dir() -> PathBuf {
    let newest = fs::read_dir("/usr/lib/postgresql")
        .ok()
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|v| Path::new(&format!("/usr/lib/postgresql/{v}/bin/postgres")).is_file())
        .max();
    let v = newest.expect(
        "no PostgreSQL server under /usr/lib/postgresql/N/bin: install postgresql (test.sh does)",
    );
    assert!(
        v >= 15,
        "PostgreSQL {v} has no jsonlog; this test needs 15 or later"
    );
    PathBuf::from(format!("/usr/lib/postgresql/{v}/bin"))
}

/// A throw-away cluster and its running server; stopped (fast shutdown, then the process
/// group killed) and deleted on drop, on every path.
struct Pg {
    server: Option<ProcessGuard>,
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
}

impl Drop for Pg {
    fn drop(&mut self) {
        if let Some(mut server) = self.server.take() {
            // SIGINT is PostgreSQL's fast shutdown: no client waits, shared memory is removed.
            // SAFETY: plain syscall on our own child.
            unsafe {
                libc::kill(server.pid() as i32, libc::SIGINT);
            }
            wait_until(Duration::from_secs(15), || server.try_wait().is_some());
            server.kill();
        }
    }
}

fn user_ids(name: &str) -> (u32, u32) {
    let id = |flag: &str| -> u32 {
        let o = host_cmd("id", &[flag, name], Duration::from_secs(10)).check();
        o.stdout_str().trim().parse().expect("numeric id")
    };
    (id("-u"), id("-g"))
}

fn chown(path: &Path, (uid, gid): (u32, u32)) {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: valid NUL-terminated path.
    let rc = unsafe { libc::chown(c.as_ptr(), uid, gid) };
    assert_eq!(rc, 0, "chown {}", path.display());
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().unwrap().port()
}

impl Pg {
    fn start() -> Pg {
        require_root();
        let bin = bin_dir();
        for b in ["initdb", "postgres", "psql"] {
            assert!(
                bin.join(b).is_file(),
                "{}/{b} is missing: install postgresql (test.sh does)",
                bin.display()
            );
        }
        let ids = user_ids("postgres");
        let dir = tempfile::Builder::new()
            .prefix("pct-pg-")
            .tempdir()
            .expect("temp dir");
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        chown(dir.path(), ids);
        let pw = dir.path().join("pw");
        fs::write(&pw, "secret-not-guessed\n").unwrap();
        chown(&pw, ids);
        let logs = dir.path().join("log");
        fs::create_dir(&logs).unwrap();
        chown(&logs, ids);
        let data = dir.path().join("data");
        let init = bin.join("initdb");
        let out = run_with_timeout(
            Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .arg(&init)
                .args(["--no-sync", "-A", "scram-sha-256"])
                .arg(format!("--pwfile={}", pw.display()))
                .args(["-U", "postgres", "-D"])
                .arg(&data)
                .current_dir(dir.path()),
            None,
            Duration::from_secs(180),
        );
        assert!(out.success(), "initdb failed: {}", out.stderr_str());
        // Password logins from 127.0.0.1; no line for replication connections, so that one
        // gives a pg_hba refusal.
        fs::write(
            data.join("pg_hba.conf"),
            "local all all scram-sha-256\nhost all all 127.0.0.1/32 scram-sha-256\n",
        )
        .unwrap();

        let port = free_port();
        let mut cmd = Command::new(bin.join("postgres"));
        cmd.arg("-D").arg(&data);
        for setting in [
            "listen_addresses=127.0.0.1".to_string(),
            format!("port={port}"),
            format!("unix_socket_directories={}", dir.path().display()),
            // Debian's default prefix (postgresql-common's createcluster.conf)
            "log_line_prefix=%m [%p] %q%u@%d ".to_string(),
            "logging_collector=on".to_string(),
            "log_destination=stderr,jsonlog".to_string(),
            format!("log_directory={}", logs.display()),
            "log_filename=pg.log".to_string(),
            "lc_messages=C".to_string(),
            "log_hostname=off".to_string(),
            "fsync=off".to_string(),
        ] {
            cmd.arg("-c").arg(setting);
        }
        cmd.uid(ids.0)
            .gid(ids.1)
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(dir.path().join("server.err")).unwrap());
        let pg = Pg {
            server: Some(ProcessGuard::spawn(cmd, "postgres")),
            bin,
            dir,
            port,
        };
        let json = pg.json_path();
        wait_for(
            "postgres to accept connections",
            Duration::from_secs(60),
            || {
                fs::read_to_string(&json)
                    .map(|s| s.contains("database system is ready to accept connections"))
                    .unwrap_or(false)
            },
        );
        pg
    }

    fn json_path(&self) -> PathBuf {
        self.dir.path().join("log/pg.json")
    }

    fn stderr_path(&self) -> PathBuf {
        self.dir.path().join("log/pg.log")
    }

    /// One connection request as `user` to `db` with a wrong password; it must fail.
    fn attempt(&self, user: &str, db: &str, extra: &str) {
        assert!(
            user.len() <= NAME_MAX && db.len() <= NAME_MAX,
            "names are cut at {NAME_MAX} bytes: {user:?} / {db:?}"
        );
        let conninfo = format!("host=127.0.0.1 port={} {extra}", self.port);
        let out = run_with_timeout(
            Command::new(self.bin.join("psql"))
                .args(["-w", "-X", "-d", &conninfo, "-c", "select 1"])
                .env("PGUSER", user)
                .env("PGDATABASE", db)
                .env("PGPASSWORD", "wrong")
                .env("PGCONNECT_TIMEOUT", "10")
                .env("PGSSLMODE", "disable"),
            None,
            Duration::from_secs(30),
        );
        assert!(
            !out.success() && out.stderr_str().contains("FATAL"),
            "the login must fail at authentication: {}",
            out.stderr_str()
        );
    }
}

/// `portcullis test --filter postgresql --json` on `file`: (host, rule) of every match.
fn matches(file: &Path) -> Vec<(String, String)> {
    let out = run_with_timeout(
        Command::new(env!("CARGO_BIN_EXE_portcullis"))
            .args(["test", "--filter", "postgresql", "--json"])
            .arg(file),
        None,
        Duration::from_secs(60),
    );
    assert!(out.success(), "portcullis test: {}", out.stderr_str());
    out.stdout_str()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("one JSON object a line"))
        .filter(|v| v["matched"].as_bool() == Some(true))
        .map(|v| {
            (
                v["host"].as_str().unwrap_or_default().to_string(),
                v["rule"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn forged_user_and_database_names_never_get_an_address_banned() {
    let pg = Pg::start();
    const TRIES: usize = 3;
    // (user, database): the forged physical line is the user name after its newline, `@`,
    // and the database name before its newline.
    let issue_db = "b FATAL:  password authentication failed for user \"c\"\n";
    let forgeries: [(&str, &str); 5] = [
        // the attack of the issue: `198.51.100.7 a@b FATAL:  password authentication ...`
        ("x\n198.51.100.7 a", issue_db),
        // the same with a whole Debian prefix and an %h field
        (
            "x\n2026-12-03 09:20:00.000 UTC [4242] 198.51.100.7 a",
            issue_db,
        ),
        // a syslog first chunk
        ("x\n[5-1] 198.51.100.7 a", issue_db),
        // a pg_hba refusal
        (
            "x\na",
            " FATAL:  no pg_hba.conf entry for host \"198.51.100.7\", user \"\"\n",
        ),
        // a JSON record, as short as the names allow
        (
            "x\n{\"timestamp\":\"2026-12-03 09:20:00 UTC\",\"user\":\"a",
            "b\",\"remote_host\":\"198.51.100.7\",\"error_severity\":\"FATAL\"}\n",
        ),
    ];
    for _ in 0..TRIES {
        for (user, db) in forgeries {
            pg.attempt(user, db, "");
        }
    }
    const REAL: usize = 4;
    for _ in 0..REAL {
        pg.attempt("postgres", "postgres", "");
    }
    // a replication connection no pg_hba.conf line allows
    pg.attempt("postgres", "postgres", "replication=true");

    let attempts = TRIES * forgeries.len() + REAL + 1;
    let json = pg.json_path();
    wait_for(
        "every failure in the JSON log",
        Duration::from_secs(30),
        || {
            fs::read_to_string(&json)
                .map(|s| s.matches("\"error_severity\":\"FATAL\"").count() >= attempts)
                .unwrap_or(false)
        },
    );
    let stderr_log = fs::read_to_string(pg.stderr_path()).expect("stderr log");
    // The attack really forged lines in the stderr log (that is what made the old filter ban).
    assert!(
        stderr_log
            .lines()
            .any(|l| l == "198.51.100.7 a@b FATAL:  password authentication failed for user \"c\""),
        "the forged line is not in the stderr log; did PostgreSQL change?\n{stderr_log}"
    );
    assert!(stderr_log
        .lines()
        .any(|l| l.starts_with("[5-1] 198.51.100.7 a@b FATAL:  ")));

    // The stderr log is not a source this filter reads: nothing in it matches, forged or not.
    let got = matches(&pg.stderr_path());
    assert!(
        got.iter().all(|(h, _)| h != FORGED),
        "{FORGED} reported from the stderr log: {got:?}"
    );
    assert!(
        got.is_empty(),
        "the stderr log must give no match (it is forgeable): {got:?}"
    );

    // The JSON log: every failure counted once, all from the real client address.
    let got = matches(&json);
    assert!(
        got.iter().all(|(h, _)| h != FORGED),
        "{FORGED} reported from the JSON log: {got:?}"
    );
    let auth: Vec<_> = got.iter().filter(|(_, r)| r == "auth-failed").collect();
    let hba: Vec<_> = got.iter().filter(|(_, r)| r == "no-hba").collect();
    assert_eq!(auth.len(), attempts - 1, "password failures: {got:?}");
    assert_eq!(hba.len(), 1, "pg_hba refusals: {got:?}");
    assert!(
        got.iter().all(|(h, _)| h == "127.0.0.1"),
        "every failure comes from 127.0.0.1: {got:?}"
    );
}

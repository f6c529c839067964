//! Issue 9, finding 2: a PostgreSQL client forges log lines through its user and database
//! names, which PostgreSQL writes raw into the log_line_prefix of its stderr log.
//!
//! The real attack against the real server, run from a temporary cluster on 127.0.0.1:
//! connection requests whose user name holds a newline and a forged line naming
//! 198.51.100.7, in several shapes (Debian's default prefix, a prefix with %h, the syslog
//! chunk marker, a pg_hba refusal, a JSON record), each sent several times, plus real failed
//! password logins (some with an application_name holding a forged JSON key and, after a
//! newline, a forged stderr line) and a refused replication connection. The server logs
//! both its stderr format (Debian's default prefix) and jsonlog. Then `portcullis test
//! --filter postgresql --json` runs on both files: 198.51.100.7 must never be reported, and
//! every real failure must be, with the client's real address 127.0.0.1.
//!
//! The same scenarios and counts run against Debian 12's PostgreSQL 15 (the machine's) and
//! Debian 13's 17 (`postgresql_17_…`: test.sh's trixie-e tree, its initdb and postgres run
//! with chroot in a private overlay of it, common/real.rs `trixie_mount`, in their own pid
//! and mount namespace but on the host's loopback; the client is always Debian 12's psql).
//! 17.12 writes the user and database names raw into the stderr log's prefix as 15 did (the
//! same forged lines), and the same JSON records but for two fields no rule reads: "detail"
//! names the hba file (`Connection matched file "…" line 2: …`; 15: `Connection matched
//! pg_hba.conf line 2: …`) and "vxid" counts per backend (`19/1`). Neither release writes
//! the application_name of a connection that fails to authenticate (it is set after
//! authentication).
//!
//! Needs root (the server runs as the `postgres` user) and Debian's postgresql (15 or
//! later, for jsonlog), and for the second test util-linux's unshare, chroot and the
//! trixie-e tree; fails loudly when they are missing.

mod common;

use common::*;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

const FORGED: &str = "198.51.100.7";
/// An application_name of the client's choosing (at most 63 bytes are kept): a JSON key and,
/// after a line feed, a forged stderr-log line.
const APP: &str = "a\",\"remote_host\":\"198.51.100.7\",\"x\":\"\n198.51.100.7 a@b FATAL:  x";
/// PostgreSQL keeps the first NAMEDATALEN - 1 bytes of a user or database name.
const NAME_MAX: usize = 63;
/// Debian 13's server in the trixie-e tree.
const BIN_17: &str = "usr/lib/postgresql/17/bin";

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

/// Run by bash as pid 1 of a new pid and mount namespace on the host's network (after
/// [`PRIVATE_SYSLOG_SH`] and [`TRIXIE_SH`]): $1 is the test's directory, $2 the Debian 13
/// tree, $3 the tree's `postgres` uid:gid, then the server's `-c` settings. It writes the
/// package's version and `postgres -V` into $1, makes the cluster $1/data with the tree's
/// initdb (as Debian 12's run does) and becomes the tree's postgres in the foreground.
const TRIXIE_PG_SH: &str = r#"set -u
d="$1"; tree="$2"; ids="$3"; shift 3
private_dev
mkdir /dev/shm && mount -t tmpfs -o mode=1777 pct-shm /dev/shm
trixie_mount "$tree" "$d/root" "$d/trixie" || exit 4
r="$d/root"
dpkg-query --admindir="$r/var/lib/dpkg" -W -f '${Version}' postgresql-17 > "$d/version"
chroot "$r" /usr/lib/postgresql/17/bin/postgres -V > "$d/postgres-V"
LC_ALL=C chroot --userspec="$ids" "$r" /usr/lib/postgresql/17/bin/initdb --no-sync \
  -A scram-sha-256 --pwfile="$d/pw" -U postgres -D "$d/data" > "$d/initdb.log" 2>&1 || exit 5
args=()
for s in "$@"; do args+=(-c "$s"); done
exec chroot --userspec="$ids" "$r" /usr/lib/postgresql/17/bin/postgres -D "$d/data" "${args[@]}"
"#;

/// A throw-away cluster and its running server; stopped (fast shutdown, then the process
/// group killed) and deleted on drop, on every path.
struct Pg {
    server: Option<ProcessGuard>,
    /// Where the client (psql, always Debian 12's) is.
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    version: Release,
}

impl Drop for Pg {
    fn drop(&mut self) {
        if let Some(mut server) = self.server.take() {
            // SIGINT is PostgreSQL's fast shutdown: no client waits, shared memory is removed.
            // Debian 13's postmaster is the child of unshare (which blocks SIGINT).
            let pid = match self.version {
                Release::Deb12 => server.pid(),
                Release::Deb13 => {
                    let p = server.pid();
                    fs::read_to_string(format!("/proc/{p}/task/{p}/children"))
                        .ok()
                        .and_then(|c| c.split_whitespace().next()?.parse().ok())
                        .unwrap_or(p)
                }
            };
            // SAFETY: plain syscall on our own child (or its child).
            unsafe {
                libc::kill(pid as i32, libc::SIGINT);
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

/// The uid and gid of `name` in the passwd file of the tree at `root`.
fn tree_user_ids(root: &Path, name: &str) -> (u32, u32) {
    let passwd = fs::read_to_string(root.join("etc/passwd")).expect("the tree's passwd");
    let f: Vec<&str> = passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f[0] == name && f.len() > 3)
        .unwrap_or_else(|| panic!("no {name} in {}/etc/passwd", root.display()));
    (f[2].parse().unwrap(), f[3].parse().unwrap())
}

fn chown(path: &Path, (uid, gid): (u32, u32)) {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: valid NUL-terminated path.
    let rc = unsafe { libc::chown(c.as_ptr(), uid, gid) };
    assert_eq!(rc, 0, "chown {}", path.display());
}

impl Pg {
    /// Starts `version`'s server: Debian 12's (the machine's) directly as `postgres`, Debian
    /// 13's with chroot in a private overlay of the trixie-e tree ([`TRIXIE_SH`]), in its
    /// own pid and mount namespace but on the host's network, so the client reaches either
    /// on 127.0.0.1. Both get the same cluster settings.
    fn start(version: Release) -> Pg {
        require_root();
        let bin = bin_dir();
        for b in ["initdb", "postgres", "psql"] {
            assert!(
                bin.join(b).is_file(),
                "{}/{b} is missing: install postgresql (test.sh does)",
                bin.display()
            );
        }
        let tree = match version {
            Release::Deb12 => None,
            Release::Deb13 => {
                require_program("unshare", "util-linux");
                require_program("chroot", "coreutils");
                Some(trixie_e_root(&[
                    &format!("{BIN_17}/postgres"),
                    &format!("{BIN_17}/initdb"),
                ]))
            }
        };
        let ids = match &tree {
            None => user_ids("postgres"),
            Some(t) => tree_user_ids(t, "postgres"),
        };
        let dir = tempfile::Builder::new()
            .prefix(match version {
                Release::Deb12 => "pct-pg-",
                Release::Deb13 => "pct-pg17-",
            })
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
        // Password logins from 127.0.0.1; no line for replication connections, so that one
        // gives a pg_hba refusal.
        let hba = dir.path().join("pg_hba.conf");
        fs::write(
            &hba,
            "local all all scram-sha-256\nhost all all 127.0.0.1/32 scram-sha-256\n",
        )
        .unwrap();

        let port = free_port();
        let settings = [
            format!("hba_file={}", hba.display()),
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
        ];
        let server_err = fs::File::create(dir.path().join("server.err")).unwrap();
        let cmd = match &tree {
            None => {
                let out = run_with_timeout(
                    Command::new("runuser")
                        .args(["-u", "postgres", "--"])
                        .arg(bin.join("initdb"))
                        .args(["--no-sync", "-A", "scram-sha-256"])
                        .arg(format!("--pwfile={}", pw.display()))
                        .args(["-U", "postgres", "-D"])
                        .arg(&data)
                        .current_dir(dir.path()),
                    None,
                    Duration::from_secs(180),
                );
                assert!(out.success(), "initdb failed: {}", out.stderr_str());
                let mut cmd = Command::new(bin.join("postgres"));
                cmd.arg("-D").arg(&data);
                for setting in &settings {
                    cmd.arg("-c").arg(setting);
                }
                cmd.uid(ids.0).gid(ids.1).current_dir(dir.path());
                cmd
            }
            Some(tree) => {
                let script = format!("{PRIVATE_SYSLOG_SH}{TRIXIE_SH}{TRIXIE_PG_SH}");
                let mut cmd = Command::new("unshare");
                cmd.args(["--pid", "--fork", "--kill-child", "--mount-proc"])
                    .args(["bash", "-c", &script, "postgres"])
                    .arg(dir.path())
                    .arg(tree)
                    .arg(format!("{}:{}", ids.0, ids.1))
                    .args(&settings);
                cmd
            }
        };
        let mut cmd = cmd;
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(server_err);
        let mut pg = Pg {
            server: Some(ProcessGuard::spawn(cmd, "postgres")),
            bin,
            dir,
            port,
            version,
        };
        let json = pg.json_path();
        let ready = wait_until(Duration::from_secs(180), || {
            fs::read_to_string(&json)
                .map(|s| s.contains("database system is ready to accept connections"))
                .unwrap_or(false)
                || pg.server.as_mut().is_some_and(|s| s.try_wait().is_some())
        }) && fs::read_to_string(&json)
            .map(|s| s.contains("database system is ready to accept connections"))
            .unwrap_or(false);
        assert!(
            ready,
            "postgres did not accept connections: {}\n{}",
            pg.read("server.err"),
            pg.read("initdb.log")
        );
        pg
    }

    fn read(&self, name: &str) -> String {
        fs::read_to_string(self.dir.path().join(name)).unwrap_or_default()
    }

    /// The server's `postgres -V`.
    fn server_version(&self) -> String {
        match self.version {
            Release::Deb12 => host_cmd(
                self.bin.join("postgres").to_str().unwrap(),
                &["-V"],
                Duration::from_secs(10),
            )
            .check()
            .stdout_str(),
            Release::Deb13 => self.read("postgres-V"),
        }
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
    run(Release::Deb12);
}

#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn postgresql_17_forged_user_and_database_names_never_get_an_address_banned() {
    run(Release::Deb13);
}

/// Every scenario against `version`'s server, and what the filter counts of its two logs.
fn run(version: Release) {
    let pg = Pg::start(version);
    let server = match version {
        Release::Deb12 => "postgres (PostgreSQL) 15.",
        Release::Deb13 => {
            // the package of the tree's dpkg database
            let package = pg.read("version");
            assert!(package.starts_with("17."), "postgresql-17 {package}");
            "postgres (PostgreSQL) 17."
        }
    };
    let v = pg.server_version();
    assert!(v.starts_with(server), "{v}");
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
    // application_name is client text too: a forged JSON key and a forged stderr line in it
    // (PostgreSQL cleans it to printable ASCII before it logs it: 15 writes `?` for the LF,
    // 17 `\x0a`), sent with real failures of user postgres
    for _ in 0..TRIES {
        pg.attempt("postgres", "postgres", &format!("application_name='{APP}'"));
    }

    let attempts = TRIES * forgeries.len() + REAL + 1 + TRIES;
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
    // The application_name of a connection that fails to authenticate is in neither log
    // (PostgreSQL sets it after authentication), raw or cleaned.
    let json_log = fs::read_to_string(&json).expect("JSON log");
    for (name, text) in [("stderr", &stderr_log), ("JSON", &json_log)] {
        for s in [
            "application_name",
            "198.51.100.7 a@b FATAL:  x",
            "a\",\"remote_host",
        ] {
            assert!(!text.contains(s), "{s:?} in the {name} log:\n{text}");
        }
    }

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

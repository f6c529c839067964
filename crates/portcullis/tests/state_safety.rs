//! The state directory and the control socket path against another local user (finding 8 of
//! issue 9): `portcullis run` (null firewall, no namespace) is started on state that user
//! could have written, and must refuse it, say why, and write nothing through their links.
//!
//! * `world_writable_state_dir_is_refused` — `nobody` plants a link at the cursor temporary
//!   and a state file banning an address for 36,499 days in a world-writable state directory;
//!   the daemon refuses to start, names the directory and the fix, and the link's target is
//!   untouched. A state directory owned by another user, or under a directory others may
//!   write, is refused too.
//! * `planted_state_file_is_refused` — a `portcullis.db` (or its `-wal`) that belongs to another
//!   user, or is a link, is not restored: the daemon refuses to start and says why.
//! * `control_socket_path_is_never_deleted_or_followed` — a file or a link at the socket path
//!   is left alone and refused; a stale socket is replaced; the socket is 0600.
//!
//! Needs root (chown, runuser); fails, does not skip, otherwise.
//! Run: `cargo test -p portcullis --test state_safety`

mod common;

use common::*;
use std::fs;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_portcullis");
/// `nobody` on Debian.
const OTHER_UID: u32 = 65534;
const PLANTED: &str = "198.51.100.7";

fn chmod(p: &Path, mode: u32) {
    fs::set_permissions(p, fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", p.display()));
}

fn chown(p: &Path, uid: u32) {
    std::os::unix::fs::lchown(p, Some(uid), Some(uid))
        .unwrap_or_else(|e| panic!("chown {}: {e}", p.display()));
}

/// A work directory (0755, so `nobody` can reach what it may write).
fn work_dir() -> tempfile::TempDir {
    let t = tempfile::Builder::new()
        .prefix("pct-state-")
        .tempdir()
        .expect("temp dir");
    chmod(t.path(), 0o755);
    t
}

/// A configuration with the null firewall, the state in `state`, the socket in `dir`.
fn config(dir: &Path, state: &Path, socket: &Path) -> PathBuf {
    let path = dir.join("portcullis.toml");
    let text = format!(
        "socket = {:?}\nstate_dir = {:?}\n[firewall]\nbackend = \"null\"\n\
         [[jail]]\nname = \"sshd\"\nfilter = \"sshd\"\nlogs = [{:?}]\n",
        socket.display().to_string(),
        state.display().to_string(),
        dir.join("auth.log").display().to_string(),
    );
    fs::write(&path, text).expect("write config");
    path
}

/// `portcullis run` that must refuse to start: its output once it has exited (bounded; a
/// daemon that starts instead is killed at the timeout and the caller's assertion fails).
fn run_refused(config: &Path) -> CmdOutput {
    let mut cmd = Command::new(BIN);
    cmd.args(["run", "-c"]).arg(config);
    let out = run_with_timeout(&mut cmd, None, Duration::from_secs(10));
    assert!(
        !out.timed_out && out.code() == Some(2),
        "the daemon should have refused to start, exit 2: status {:?}, timed out: {}\nstderr: {}",
        out.status,
        out.timed_out,
        out.stderr_str()
    );
    out
}

/// A running daemon (killed on drop) and its stderr file.
struct Daemon {
    proc: ProcessGuard,
    stderr: PathBuf,
    socket: PathBuf,
}

impl Daemon {
    fn start(dir: &Path, config: &Path, socket: &Path) -> Daemon {
        let stderr = dir.join("daemon.log");
        let err = fs::File::create(&stderr).expect("stderr file");
        let mut cmd = Command::new(BIN);
        cmd.args(["run", "-c"])
            .arg(config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(err);
        let mut d = Daemon {
            proc: ProcessGuard::spawn(cmd, "portcullis run"),
            stderr,
            socket: socket.to_path_buf(),
        };
        let ok = wait_until(Duration::from_secs(20), || {
            d.proc.try_wait().is_some() || d.cli(&["status"]).success()
        });
        assert!(
            ok && d.proc.try_wait().is_none(),
            "the daemon did not come up; its stderr:\n{}",
            d.log()
        );
        d
    }

    fn log(&self) -> String {
        fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    fn cli(&self, args: &[&str]) -> CmdOutput {
        let mut cmd = Command::new(BIN);
        cmd.args(args).arg("--socket").arg(&self.socket);
        run_with_timeout(&mut cmd, None, Duration::from_secs(10))
    }

    /// SIGTERM, and waits for the exit.
    fn stop(mut self) -> String {
        self.proc.kill();
        self.log()
    }
}

/// A Portcullis state file banning [`PLANTED`] for 36,499 days, as an attacker would make
/// one: by running portcullis as themselves. Returned path is world-readable.
fn attacker_state_file(work: &Path) -> PathBuf {
    let own = work.join("attacker");
    fs::create_dir(&own).unwrap();
    chmod(&own, 0o700);
    let socket = own.join("a.sock");
    let cfg = config(&own, &own.join("state"), &socket);
    let d = Daemon::start(&own, &cfg, &socket);
    d.cli(&["ban", PLANTED, "--for", "36499d"]).check();
    d.stop();
    let db = own.join("state/portcullis.db");
    assert!(db.is_file(), "no state file made");
    chmod(&own, 0o755);
    chmod(&own.join("state"), 0o755);
    chmod(&db, 0o644);
    db
}

/// Runs `args` as `nobody`.
fn as_other(args: &[&str]) {
    host_cmd(
        "runuser",
        &[&["-u", "nobody", "--"], args].concat(),
        DEFAULT_CMD_TIMEOUT,
    )
    .check();
}

#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn world_writable_state_dir_is_refused() {
    require_root();
    let t = work_dir();
    let dir = t.path();
    let db = attacker_state_file(dir);
    let state = dir.join("state");
    fs::create_dir(&state).unwrap();
    chmod(&state, 0o1777);
    let socket = dir.join("p.sock");
    let cfg = config(dir, &state, &socket);

    // what another user can do in such a directory: a link where root writes a cursor, and
    // a state file of their own
    let victim = dir.join("root-only");
    fs::write(&victim, "root:secret\n").unwrap();
    chmod(&victim, 0o600);
    let tmp = state.join("journal-_SYSTEMD_UNIT_ssh_service.cursor.tmp");
    as_other(&["ln", "-s", victim.to_str().unwrap(), tmp.to_str().unwrap()]);
    as_other(&[
        "cp",
        db.to_str().unwrap(),
        state.join("portcullis.db").to_str().unwrap(),
    ]);

    let out = run_refused(&cfg);
    let err = out.stderr_str();
    println!("[state] refused: {}", err.trim());
    assert!(
        err.contains(&state.display().to_string())
            && err.contains("writable by other users")
            && err.contains("chmod 0700"),
        "the refusal should name the directory, the reason and the fix: {err}"
    );
    assert!(!err.contains(&format!("restore {PLANTED}")), "{err}");
    assert!(!socket.exists(), "the refused daemon made its socket");
    assert_eq!(fs::read_to_string(&victim).unwrap(), "root:secret\n");
    assert_eq!(fs::metadata(&victim).unwrap().mode() & 0o777, 0o600);

    // group-writable: refused as well
    chmod(&state, 0o770);
    assert!(run_refused(&cfg)
        .stderr_str()
        .contains("writable by other users"));

    // a state directory that belongs to another user
    chmod(&state, 0o700);
    chown(&state, OTHER_UID);
    let err = run_refused(&cfg).stderr_str();
    assert!(
        err.contains(&format!("belongs to uid {OTHER_UID}")) && err.contains("chown"),
        "{err}"
    );

    // a private state directory under a directory other users may write (no sticky bit):
    // they could rename it away and put their own in its place
    let open = dir.join("open");
    fs::create_dir(&open).unwrap();
    chmod(&open, 0o777);
    let cfg = config(dir, &open.join("state"), &socket);
    let err = run_refused(&cfg).stderr_str();
    assert!(
        err.contains(&format!("{} above it", open.display())) && err.contains("0777"),
        "{err}"
    );

    // a missing state directory is created 0700, and the daemon runs
    let fresh = dir.join("fresh/state");
    let cfg = config(dir, &fresh, &socket);
    let d = Daemon::start(dir, &cfg, &socket);
    assert_eq!(fs::metadata(&fresh).unwrap().mode() & 0o7777, 0o700);
    let db = fresh.join("portcullis.db");
    assert_eq!(fs::metadata(&db).unwrap().mode() & 0o777, 0o600);
    d.stop();
}

#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn planted_state_file_is_refused() {
    require_root();
    let t = work_dir();
    let dir = t.path();
    let planted = attacker_state_file(dir);
    let state = dir.join("state");
    fs::create_dir(&state).unwrap();
    chmod(&state, 0o700);
    let socket = dir.join("p.sock");
    let cfg = config(dir, &state, &socket);
    let db = state.join("portcullis.db");

    // left there by another user (say, while the directory was open to them)
    fs::copy(&planted, &db).unwrap();
    chown(&db, OTHER_UID);
    let err = run_refused(&cfg).stderr_str();
    println!("[state] refused: {}", err.trim());
    assert!(
        err.contains(&db.display().to_string())
            && err.contains(&format!("belongs to uid {OTHER_UID}"))
            && err.contains("planted"),
        "{err}"
    );
    assert!(!err.contains(&format!("restore {PLANTED}")), "{err}");

    // a link to a state file elsewhere
    fs::remove_file(&db).unwrap();
    symlink(&planted, &db).unwrap();
    let err = run_refused(&cfg).stderr_str();
    assert!(err.contains("symbolic link"), "{err}");
    fs::remove_file(&db).unwrap();

    // a -wal of another user beside a good file (SQLite would replay it)
    fs::copy(&planted, &db).unwrap();
    chmod(&db, 0o600);
    let wal = state.join("portcullis.db-wal");
    fs::write(&wal, b"").unwrap();
    chown(&wal, OTHER_UID);
    let err = run_refused(&cfg).stderr_str();
    assert!(err.contains("portcullis.db-wal"), "{err}");
    fs::remove_file(&wal).unwrap();

    // the same file, ours and private: trusted, and its ban restored
    let d = Daemon::start(dir, &cfg, &socket);
    let out = d.cli(&["bans"]).check().stdout_str();
    assert!(out.contains(PLANTED), "{out}");
    assert!(d.stop().contains(&format!("restore {PLANTED} jail=sshd")));
}

#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn control_socket_path_is_never_deleted_or_followed() {
    require_root();
    let t = work_dir();
    let dir = t.path();
    let state = dir.join("state");
    let socket = dir.join("p.sock");
    let cfg = config(dir, &state, &socket);

    // a regular file at the socket path: kept, and the daemon says so
    fs::write(&socket, "precious\n").unwrap();
    let err = run_refused(&cfg).stderr_str();
    println!("[socket] refused: {}", err.trim());
    assert!(
        err.contains("is a regular file, not a socket") && err.contains("does not delete"),
        "{err}"
    );
    assert_eq!(fs::read_to_string(&socket).unwrap(), "precious\n");
    fs::remove_file(&socket).unwrap();

    // a link at the socket path (to a root-only file): neither followed nor removed
    let victim = dir.join("root-only");
    fs::write(&victim, "root:secret\n").unwrap();
    chmod(&victim, 0o600);
    symlink(&victim, &socket).unwrap();
    let err = run_refused(&cfg).stderr_str();
    assert!(err.contains("symbolic link"), "{err}");
    assert!(fs::symlink_metadata(&socket)
        .unwrap()
        .file_type()
        .is_symlink());
    let m = fs::metadata(&victim).unwrap();
    assert_eq!((m.mode() & 0o777, m.uid()), (0o600, 0));
    fs::remove_file(&socket).unwrap();

    // a stale socket (nobody listening) is replaced; ours is 0600 and no helper dir is left
    drop(UnixListener::bind(&socket).unwrap());
    let d = Daemon::start(dir, &cfg, &socket);
    let m = fs::symlink_metadata(&socket).unwrap();
    assert_eq!(m.mode() & 0o777, 0o600);
    let left: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".portcullis-"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    // a second daemon on the same socket is refused and leaves it working
    let err = run_refused(&cfg).stderr_str();
    assert!(err.contains("already"), "{err}");
    assert!(d.cli(&["status"]).success());
    d.stop();
    assert!(!socket.exists(), "the socket is removed at stop");

    // with `socket_group`: 0660 and that group
    let text = fs::read_to_string(&cfg).unwrap();
    fs::write(&cfg, format!("socket_group = \"nogroup\"\n{text}")).unwrap();
    let d = Daemon::start(dir, &cfg, &socket);
    let m = fs::symlink_metadata(&socket).unwrap();
    assert_eq!((m.mode() & 0o777, m.gid()), (0o660, OTHER_UID));
    d.stop();
}

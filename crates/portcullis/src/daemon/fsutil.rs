//! The state directory and the files in it (the SQLite store, journal cursors), kept so that
//! no other user can plant a file there or make the daemon write through a link.
//!
//! **The rule** (OpenSSH's `StrictModes`, applied to the whole path):
//!
//! * the state directory is owned by the user the daemon runs as and writable by nobody else;
//! * every directory above it belongs to root or to that user and is writable by nobody else,
//!   unless its sticky bit is set (as on `/tmp`: others cannot rename or delete what is not
//!   theirs there);
//! * a symbolic link on the way belongs to root or to that user.
//!
//! Anything else is refused at start with the reason and the fix. A missing state directory
//! is created 0700. The daemon goes on with the resolved path, so a link on the configured
//! path that changes later leads nowhere new.
//!
//! Files are created 0600 with `O_NOFOLLOW`, temporary files with `O_EXCL` as well, so a link
//! or a file planted at their name is never written through. These flags are a second line:
//! with the directory checked, nobody else can plant anything there in the first place.

use std::fs::{self, File, Metadata, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// The user id the daemon runs as.
pub fn euid() -> u32 {
    rustix::process::geteuid().as_raw()
}

/// Takes the lock of the state directory `dir` (a checked directory): the file
/// `portcullis.lock`, held by a running daemon for as long as it runs. A second daemon, or
/// `bans`/`unban` working on the state file while a daemon runs, is refused with a message.
///
/// Waits up to `wait` for a holder that lets go: an offline `bans` or
/// `unban` holds the lock for the moment it works on the state file, and ten of them at once
/// (or a daemon starting beside one) failed with "another daemon is running" (a review
/// found). A daemon holds it for as long as it runs.
pub fn lock_state_within(dir: &Path, wait: std::time::Duration) -> Result<File> {
    let deadline = std::time::Instant::now() + wait;
    loop {
        match lock_once(dir) {
            Err(e) if LockHeld::is(&e) && std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            r => return r,
        }
    }
}

/// The lock file of state directory `dir`.
pub fn lock_path(dir: &Path) -> PathBuf {
    dir.join("portcullis.lock")
}

fn lock_once(dir: &Path) -> Result<File> {
    let path = lock_path(dir);
    match try_lock(&path) {
        Ok(Some(f)) => Ok(f),
        Ok(None) => Err(LockHeld {
            dir: dir.to_path_buf(),
            path,
        }
        .into()),
        Err(e) => Err(e),
    }
}

/// Opens (creating it 0600, never through a link) and `flock`s the lock file `path` without
/// waiting: `None` when another process holds it. (Only EWOULDBLOCK says another process
/// holds it; any other error, ENOLCK on a network file system say, is said as it is.)
pub fn try_lock(path: &Path) -> Result<Option<File>> {
    let f = match OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
    {
        // (a file system remounted read-only: the lock file of an earlier run is locked as
        // it is, read-only, which `flock` allows; the daemon must start all the same,
        // review 60)
        Err(e) if e.raw_os_error() == Some(libc::EROFS) => OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(path)
            .map_err(|_| e),
        r => r,
    }
    .with_context(|| format!("cannot open the lock file {}", path.display()))?;
    match rustix::fs::flock(&f, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(Some(f)),
        Err(rustix::io::Errno::WOULDBLOCK) => Ok(None),
        Err(e) => Err(anyhow::Error::new(io::Error::from(e)))
            .with_context(|| format!("cannot lock {}", path.display())),
    }
}

/// The state directory's lock is held by another process: a running (or starting) daemon,
/// or an offline command working on the state file. Told from other lock errors by its
/// type, not its text.
#[derive(Debug)]
pub struct LockHeld {
    dir: PathBuf,
    path: PathBuf,
}

impl LockHeld {
    /// Whether `e` (or an error it wraps) is this one.
    pub fn is(e: &anyhow::Error) -> bool {
        e.chain().any(|c| c.is::<LockHeld>())
    }
}

impl std::fmt::Display for LockHeld {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "another portcullis daemon is already running with the state directory {} (it holds {})",
            self.dir.display(),
            self.path.display()
        )
    }
}

impl std::error::Error for LockHeld {}

/// Creates the state directory (0700, with any missing parent) if it is missing, checks it and
/// every directory and link above it (see the module header), and returns its resolved path.
pub fn prepare_state_dir(dir: &Path) -> Result<PathBuf> {
    if !dir.is_absolute() {
        bail!("state_dir {} is not an absolute path", dir.display());
    }
    match fs::symlink_metadata(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("cannot create state_dir {}", dir.display()))?,
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", dir.display())),
        Ok(_) => {}
    }
    verify_state_dir(dir, dir, euid())
}

/// The checks of [`prepare_state_dir`] without creating anything, for `check-config`: the
/// same errors for a state directory that exists; for a missing one (which the daemon
/// creates 0700), the directories above it that exist. Run by a user other than root on a
/// state directory of root's (linting a production configuration), it checks for a daemon
/// run as root, as the unit runs it.
pub fn check_state_dir(dir: &Path) -> Result<()> {
    if !dir.is_absolute() {
        bail!("state_dir {} is not an absolute path", dir.display());
    }
    let existing = dir
        .ancestors()
        .find(|p| fs::symlink_metadata(p).is_ok())
        .unwrap_or(Path::new("/"));
    let uid = if fs::metadata(existing).is_ok_and(|m| m.uid() == 0) {
        0
    } else {
        euid()
    };
    verify_state_dir(dir, existing, uid).map(drop)
}

/// Checks `upto`, the state directory `dir` or the nearest existing directory above it,
/// as written (its links) and as resolved; returns its resolved path.
fn verify_state_dir(dir: &Path, upto: &Path, uid: u32) -> Result<PathBuf> {
    // the path as written (its links), then the directories the links lead to
    let itself = upto == dir;
    check_path(dir, upto, itself, uid)?;
    let real = fs::canonicalize(upto)
        .with_context(|| format!("cannot resolve state_dir {}", upto.display()))?;
    check_path(dir, &real, itself, uid)?;
    Ok(real)
}

/// Checks every component of `path` (the state directory `dir`, written or resolved, or
/// the nearest existing directory above a missing `dir`: then every one is a parent), for
/// a daemon run as `uid`.
fn check_path(dir: &Path, path: &Path, itself: bool, uid: u32) -> Result<()> {
    let mut parts: Vec<&Path> = path.ancestors().collect();
    parts.reverse();
    for p in parts {
        let last = p == path;
        let m = fs::symlink_metadata(p).with_context(|| format!("cannot read {}", p.display()))?;
        if m.file_type().is_symlink() {
            if m.uid() != 0 && m.uid() != uid {
                bail!(
                    "state_dir {}: the symbolic link {} on its path belongs to uid {}, neither \
                     root nor uid {uid} that runs portcullis, so that user could point it \
                     elsewhere; use a path without it",
                    dir.display(),
                    p.display(),
                    m.uid()
                );
            }
            continue;
        }
        if last && itself {
            check_dir_itself(dir, &m, uid)?;
        } else {
            check_parent(dir, p, &m, uid)?;
        }
    }
    Ok(())
}

/// The state directory itself: a directory, ours, writable by nobody else.
fn check_dir_itself(dir: &Path, m: &Metadata, uid: u32) -> Result<()> {
    let d = dir.display();
    if !m.is_dir() {
        bail!("state_dir {d} is not a directory");
    }
    if m.uid() != uid {
        bail!(
            "state_dir {d} belongs to uid {}, not to uid {uid} that runs portcullis: its \
             owner could plant a state file in it (bans restored at start) or a link that \
             makes portcullis overwrite another file. Refusing to start; give it to uid {uid} \
             (chown {uid} {d}; chmod 0700 {d}) or choose another state_dir",
            m.uid()
        );
    }
    if m.mode() & 0o022 != 0 {
        bail!(
            "state_dir {d} has mode {:04o}: it is writable by other users, who could plant a \
             state file in it (bans restored at start) or a link that makes portcullis \
             overwrite another file. Refusing to start; make it private (chmod 0700 {d})",
            m.mode() & 0o7777
        );
    }
    Ok(())
}

/// A directory above the state directory: root's or ours, writable by nobody else unless
/// sticky.
fn check_parent(dir: &Path, p: &Path, m: &Metadata, uid: u32) -> Result<()> {
    let (d, pd) = (dir.display(), p.display());
    if !m.is_dir() {
        bail!("state_dir {d}: {pd} above it is not a directory; choose another state_dir");
    }
    if m.uid() != 0 && m.uid() != uid {
        bail!(
            "state_dir {d}: the directory {pd} above it belongs to uid {}, neither root nor \
             uid {uid} that runs portcullis, so that user could replace the state directory. \
             Refusing to start; choose a state_dir whose parents belong to root",
            m.uid()
        );
    }
    if m.mode() & 0o022 != 0 && m.mode() & 0o1000 == 0 {
        bail!(
            "state_dir {d}: the directory {pd} above it has mode {:04o}: it is writable by \
             other users (without the sticky bit), who could replace the state directory. \
             Refusing to start; make {pd} writable by its owner only (chmod go-w {pd}) or \
             choose another state_dir",
            m.mode() & 0o7777
        );
    }
    Ok(())
}

/// Checks a file portcullis takes as configuration (the configuration file and its
/// drop-ins, filter files, `ignore` and `deny` list files, the notifications' password and
/// header files, the fleet's key and CA), a program it runs (a `command` backend's, and an
/// interpreter's script it names), or the file it rewrites (hosts.deny): the rule of the
/// state directory (the module header), applied to `path` walked one name at a time, each
/// link followed where it stands ([`untrusted_on`]). The file, every directory above it
/// and every link on the way belong to root or to the user that runs portcullis;
/// none is writable by other users (the `root` group is trusted), but for a directory above
/// with the sticky bit (`/tmp`) when `sticky_parent` allows it. Whoever can change such a
/// file runs commands as the daemon's user, chooses who is never banned or always banned,
/// or has the daemon rewrite another file through a link (review 65: all accepted without
/// a word). A path missing from some point on is checked up to there (its read fails on
/// its own, or the daemon creates it). `what` names it in the error.
pub fn check_trusted(path: &Path, what: &str, sticky_parent: bool) -> Result<()> {
    let abs = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .context("cannot read the current directory")?
            .join(path)
    };
    let uid = euid();
    match untrusted_on(&abs, uid, sticky_parent) {
        Some(why) => bail!(
            "{what} {} is not trusted: {why}; another user could change what portcullis, \
             run as uid {uid}, reads or runs there (every file, directory and link on its \
             way must be root's and writable by root only)",
            path.display()
        ),
        None => Ok(()),
    }
}

/// The name of group `gid` in /etc/group, else the number (review 68: "group 4" said
/// little).
fn group_name(gid: u32) -> String {
    fs::read_to_string("/etc/group")
        .ok()
        .and_then(|t| {
            t.lines().find_map(|l| {
                let mut f = l.split(':');
                let name = f.next()?;
                (f.nth(1)?.parse::<u32>().ok()? == gid).then(|| format!("{name} ({gid})"))
            })
        })
        .unwrap_or_else(|| gid.to_string())
}

/// Whether `p` (not followed) has a POSIX access ACL.
fn has_acl(p: &Path) -> bool {
    let Ok(c) = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()) else {
        return true;
    };
    // SAFETY: valid C strings; a null buffer of size 0 asks only the value's size.
    let n = unsafe {
        libc::lgetxattr(
            c.as_ptr(),
            c"system.posix_acl_access".as_ptr(),
            std::ptr::null_mut(),
            0,
        )
    };
    n >= 0
}

/// What makes `path` (absolute) untrusted for a daemon run as `uid` ([`check_trusted`]).
/// The path is walked one name at a time from `/`, each link followed where it stands
/// (its target's names put in front of those left), so that every directory, every link
/// of a chain and the file reached are looked at: checking the path as written and as
/// resolved missed the links between, and a root link into another user's directory let
/// that user's own link there lead anywhere (review 67 H1). Nobody else can then change
/// what the path leads to. A name missing from some point on ends the walk.
fn untrusted_on(path: &Path, uid: u32, sticky_parent: bool) -> Option<String> {
    use std::collections::VecDeque;
    use std::path::Component;
    let names = |p: &Path| -> Vec<std::ffi::OsString> {
        p.components()
            .filter_map(|c| match c {
                Component::Normal(n) => Some(n.to_os_string()),
                Component::ParentDir => Some("..".into()),
                _ => None,
            })
            .collect()
    };
    let mut todo: VecDeque<std::ffi::OsString> = names(path).into();
    let mut cur = PathBuf::from("/");
    if let Some(why) = untrusted_entry(&cur, uid, false) {
        return Some(why);
    }
    let mut links = 0;
    while let Some(name) = todo.pop_front() {
        if name == ".." {
            cur.pop();
            continue;
        }
        let next = cur.join(&name);
        let Ok(m) = fs::symlink_metadata(&next) else {
            // missing from here on: where another user may make it (a directory others can
            // write, sticky or not: /tmp), they could make it between this check and the
            // read, or after it (review 68: a script named in /tmp, made later, was run)
            return untrusted_entry(&cur, uid, false).map(|why| {
                format!(
                    "{} does not exist, and {why}, so it may be made there by another user",
                    next.display()
                )
            });
        };
        if m.file_type().is_symlink() {
            if let Some(why) = untrusted_entry(&next, uid, false) {
                return Some(why);
            }
            links += 1;
            let target = fs::read_link(&next).ok()?;
            if links > 40 {
                return Some(format!(
                    "{} leads through more than 40 links (a loop?), which are not followed",
                    path.display()
                ));
            }
            if target.is_absolute() {
                cur = PathBuf::from("/");
            }
            for n in names(&target).into_iter().rev() {
                todo.push_front(n);
            }
            continue;
        }
        // (a sticky directory above, as /tmp: others cannot rename or remove what is not
        // theirs in it; not for the file or directory checked itself)
        let sticky_ok = sticky_parent && !todo.is_empty();
        if let Some(why) = untrusted_entry(&next, uid, sticky_ok) {
            return Some(why);
        }
        cur = next;
    }
    None
}

/// What makes one file, directory or link `p` untrusted: another owner than root or `uid`,
/// or a write others may make (a directory with the sticky bit excepted when `sticky_ok`;
/// the `root` group's write is trusted).
fn untrusted_entry(p: &Path, uid: u32, sticky_ok: bool) -> Option<String> {
    let m = fs::symlink_metadata(p).ok()?;
    let pd = p.display();
    let kind = if m.file_type().is_symlink() {
        "the symbolic link"
    } else if m.is_dir() {
        "the directory"
    } else {
        "the file"
    };
    // (each with the fix for that one: the path checked is often not the culprit)
    if m.uid() != 0 && m.uid() != uid {
        let h = if m.file_type().is_symlink() {
            "-h "
        } else {
            ""
        };
        return Some(format!(
            "{kind} {pd} belongs to uid {} (chown {h}root {pd})",
            m.uid()
        ));
    }
    if m.file_type().is_symlink() {
        return None;
    }
    let mode = m.mode() & 0o7777;
    let others = if m.mode() & 0o002 != 0 {
        Some(format!(
            "{kind} {pd} has mode {mode:04o}: other users can write it (chmod go-w {pd})"
        ))
    } else if m.mode() & 0o020 != 0 && m.gid() != 0 {
        Some(format!(
            "{kind} {pd} has mode {mode:04o}: group {} can write it (chmod g-w {pd})",
            group_name(m.gid())
        ))
    } else if m.mode() & 0o020 != 0 && has_acl(p) {
        // (the group bits of a file with an access ACL are its mask)
        Some(format!(
            "{kind} {pd} has an access ACL that lets another user or group write it (getfacl {pd}; setfacl -b {pd})"
        ))
    } else {
        None
    };
    let sticky = sticky_ok && m.is_dir() && m.mode() & 0o1000 != 0;
    others.filter(|_| !sticky)
}

/// Checks a file of the state before it is read: not a symbolic link, owned by the daemon's
/// user, writable by nobody else. A missing file is fine; other kinds (a directory) are left
/// to the caller. `what` names the file in the error.
pub fn check_state_file(path: &Path, what: &str) -> Result<()> {
    let m = match fs::symlink_metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        r => r.with_context(|| format!("cannot read {}", path.display()))?,
    };
    let (p, uid) = (path.display(), euid());
    let why = if m.file_type().is_symlink() {
        "it is a symbolic link".to_string()
    } else if m.uid() != uid {
        format!(
            "it belongs to uid {}, not to uid {uid} that runs portcullis",
            m.uid()
        )
    } else if m.mode() & 0o022 != 0 {
        format!(
            "it has mode {:04o}, writable by other users",
            m.mode() & 0o7777
        )
    } else {
        return Ok(());
    };
    bail!(
        "{what} {p} is not trusted: {why}, so someone else may have planted it. Portcullis \
         does not read it. Look at it, then remove it (or give it to uid {uid}, mode 0600) \
         and start again"
    )
}

/// Creates `path` empty with mode 0600 and opens it for writing. Fails if anything exists
/// at that name, a symbolic link included (`O_CREAT | O_EXCL | O_NOFOLLOW`).
pub fn create_private(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
}

/// Writes `data` to `path` through a temporary file `<path>.tmp` in the same directory, so
/// the file is always either the old content or the new one, whole. The temporary file is
/// created afresh (mode 0600, `O_EXCL | O_NOFOLLOW`): whatever is found at its name (the
/// leftover of a crash, or a planted link) is unlinked, never written through. The rename
/// replaces a link at `path` itself, not its target.
pub fn write_atomically(path: &Path, data: &[u8]) -> io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut f = match create_private(&tmp) {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            fs::remove_file(&tmp)?;
            create_private(&tmp)?
        }
        r => r?,
    };
    let r = (|| {
        f.write_all(data)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if r.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    r
}

/// Opens (creating it 0600 first, never through a link) a side SQLite file of the state
/// directory (notify.db, stats.db) in WAL mode with `synchronous = NORMAL`; on a full file
/// system in SQLite's exclusive mode (see below), for a file this process opens once.
pub fn open_private_db(
    path: &Path,
    busy: std::time::Duration,
) -> anyhow::Result<rusqlite::Connection> {
    open_private_db_with(path, busy, true)
}

/// [`open_private_db`]; `exclusive_fallback` false for a file the process opens more than
/// once (fleet.db: its threads' connections), where an exclusive connection would lock the
/// others out for the whole run (a review found the fleet off after a start on a full disk).
pub fn open_private_db_with(
    path: &Path,
    busy: std::time::Duration,
    exclusive_fallback: bool,
) -> anyhow::Result<rusqlite::Connection> {
    use rusqlite::{Connection, OpenFlags};
    if !path.exists() {
        create_private(path).with_context(|| format!("cannot create {}", path.display()))?;
    }
    let open = |exclusive: bool| -> anyhow::Result<Connection> {
        let c = Connection::open_with_flags(
            path,
            OpenFlags::default() | OpenFlags::SQLITE_OPEN_NOFOLLOW,
        )
        .with_context(|| format!("cannot open {}", path.display()))?;
        c.busy_timeout(busy)?;
        if exclusive {
            c.pragma_update(None, "locking_mode", "EXCLUSIVE")?;
        }
        c.query_row("PRAGMA journal_mode = WAL", [], |r| r.get::<_, String>(0))?;
        c.execute_batch("PRAGMA synchronous = NORMAL;")?;
        Ok(c)
    };
    match open(false) {
        // a full file system: no room for the WAL index (`-shm`); in exclusive mode SQLite
        // keeps it in memory (as for the state file, crate::store), so the daemon starts
        Err(e) if exclusive_fallback && path.parent().and_then(free_bytes) == Some(0) => {
            match open(true) {
                Ok(c) => {
                    tracing::warn!(
                    "the file system of {} is full: opened in exclusive mode (no other program can read it until a restart; writes fail until there is room)",
                    path.display()
                );
                    Ok(c)
                }
                Err(_) => Err(e),
            }
        }
        r => r,
    }
}

/// Whether `e` says a SQLite file is not a database or is damaged (not a full disk, not a
/// lock: no reason to put a file aside).
pub fn is_corrupt_db(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<rusqlite::Error>()
            .and_then(|e| e.sqlite_error_code())
            .is_some_and(|c| {
                matches!(
                    c,
                    rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase
                )
            })
    })
}

/// The bytes an unprivileged user may still write on the file system of `dir`.
pub fn free_bytes(dir: &Path) -> Option<u64> {
    statvfs(dir).map(|st| st.f_bavail * st.f_frsize)
}

/// The file system facts of `dir` (`statvfs(3)`).
fn statvfs(dir: &Path) -> Option<libc::statvfs> {
    let c = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()).ok()?;
    // SAFETY: a valid C string and a zeroed statvfs for the call to fill.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    (unsafe { libc::statvfs(c.as_ptr(), &mut st) } == 0).then_some(st)
}

/// Whether the file system of `dir` is mounted read-only (an ext4 remounted so after an
/// error, `errors=remount-ro`, Debian's default).
pub fn read_only(dir: &Path) -> bool {
    statvfs(dir).is_some_and(|st| st.f_flag & libc::ST_RDONLY != 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{symlink, PermissionsExt};

    fn chmod(p: &Path, mode: u32) {
        fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap();
    }

    fn mode(p: &Path) -> u32 {
        fs::symlink_metadata(p).unwrap().mode() & 0o7777
    }

    /// Review 65: a file taken as configuration, or a program run, that another user can
    /// change is refused: writable by others, in a directory others can write (a sticky one
    /// above is fine, not as the file's own directory where that is asked), or behind
    /// another user's link; the `root` group's write is trusted.
    #[test]
    fn a_file_others_can_change_is_not_trusted() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path();
        let f = d.join("portcullis.toml");
        fs::write(&f, "").unwrap();
        chmod(&f, 0o644);
        check_trusted(&f, "configuration file", true).unwrap();
        chmod(&f, 0o666);
        let e = format!(
            "{:#}",
            check_trusted(&f, "configuration file", true).unwrap_err()
        );
        assert!(
            e.contains("has mode 0666") && e.contains("chmod go-w"),
            "{e}"
        );
        chmod(&f, 0o644);
        let sub = d.join("open");
        fs::create_dir(&sub).unwrap();
        let g = sub.join("f.toml");
        fs::write(&g, "").unwrap();
        chmod(&sub, 0o777);
        assert!(check_trusted(&g, "filter file", true).is_err());
        chmod(&sub, 0o1777);
        check_trusted(&g, "filter file", true).unwrap();
        // a file not made yet where another user may make it first (review 68)
        let e = format!(
            "{:#}",
            check_trusted(&sub.join("later.sh"), "program", true).unwrap_err()
        );
        assert!(e.contains("does not exist, and the directory"), "{e}");
        // the sticky directory itself, as a file's directory (hosts.deny's): not trusted
        assert!(check_trusted(&sub, "the directory", true).is_err());
        assert!(check_trusted(&g, "filter file", false).is_err());
        // through a link: the file it leads to
        let link = d.join("link.toml");
        symlink(&g, &link).unwrap();
        check_trusted(&link, "filter file", true).unwrap();
        chmod(&g, 0o646);
        assert!(check_trusted(&link, "filter file", true).is_err());
        // a chain of links: root's link into a directory others can write, whose own link
        // there leads to a file of root's (review 67 H1: the link between was not looked at)
        chmod(&g, 0o644);
        let open = d.join("open2");
        fs::create_dir(&open).unwrap();
        chmod(&open, 0o777);
        symlink(&f, open.join("inner")).unwrap();
        let outer = d.join("outer.toml");
        symlink(open.join("inner"), &outer).unwrap();
        let e = format!(
            "{:#}",
            check_trusted(&outer, "filter file", true).unwrap_err()
        );
        assert!(
            e.contains(&format!("the directory {}", open.display())),
            "{e}"
        );
        // relative links and `..` are walked where they stand
        let rel = d.join("rel.toml");
        symlink("open/../portcullis.toml", &rel).unwrap();
        check_trusted(&rel, "filter file", true).unwrap();
        // a relative path, and one missing from some point on
        check_trusted(Path::new("Cargo.toml"), "configuration file", true).unwrap();
        check_trusted(&d.join("none/x.toml"), "list file", true).unwrap();
    }

    /// The same for a file, a directory and a link of another user (chown needs root).
    #[test]
    #[ignore = "needs root: chown to another user"]
    fn a_file_or_link_of_another_user_is_not_trusted() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path();
        let f = d.join("deny.txt");
        fs::write(&f, "").unwrap();
        std::os::unix::fs::chown(&f, Some(65534), None).unwrap();
        let e = format!("{:#}", check_trusted(&f, "list file", true).unwrap_err());
        assert!(
            e.contains("the file") && e.contains("belongs to uid 65534"),
            "{e}"
        );
        let g = d.join("ok.txt");
        fs::write(&g, "").unwrap();
        let link = d.join("link.txt");
        symlink(&g, &link).unwrap();
        std::os::unix::fs::lchown(&link, Some(65534), None).unwrap();
        let e = format!("{:#}", check_trusted(&link, "list file", true).unwrap_err());
        assert!(e.contains("the symbolic link"), "{e}");
        // the second link of a chain, another user's, in a directory of theirs
        let theirs = d.join("theirs");
        fs::create_dir(&theirs).unwrap();
        std::os::unix::fs::chown(&theirs, Some(65534), None).unwrap();
        symlink(&g, theirs.join("l")).unwrap();
        std::os::unix::fs::lchown(theirs.join("l"), Some(65534), None).unwrap();
        let root_link = d.join("hook");
        symlink(theirs.join("l"), &root_link).unwrap();
        let e = format!(
            "{:#}",
            check_trusted(&root_link, "program", true).unwrap_err()
        );
        assert!(e.contains("belongs to uid 65534"), "{e}");
        // the `root` group's write is trusted, another group's not, nor a named user's
        chmod(&g, 0o664);
        check_trusted(&g, "list file", true).unwrap();
        let acl = std::process::Command::new("setfacl")
            .args(["-m", "u:65534:rw"])
            .arg(&g)
            .status()
            .expect("setfacl (Debian: acl)");
        assert!(acl.success());
        let e = format!("{:#}", check_trusted(&g, "list file", true).unwrap_err());
        assert!(e.contains("an access ACL that lets another user"), "{e}");
        std::process::Command::new("setfacl")
            .arg("-b")
            .arg(&g)
            .status()
            .unwrap();
        chmod(&g, 0o664);
        check_trusted(&g, "list file", true).unwrap();
        std::os::unix::fs::chown(&g, None, Some(65534)).unwrap();
        let e = format!("{:#}", check_trusted(&g, "list file", true).unwrap_err());
        assert!(e.contains("group nogroup (65534) can write it"), "{e}");
    }

    #[test]
    fn a_held_lock_is_told_by_its_type_and_waited_for() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path();
        let held = lock_state_within(dir, std::time::Duration::ZERO).unwrap();
        let t0 = std::time::Instant::now();
        let e = lock_state_within(dir, std::time::Duration::from_millis(300)).unwrap_err();
        assert!(t0.elapsed() >= std::time::Duration::from_millis(300));
        assert!(LockHeld::is(&e), "{e:#}");
        // through a context too, as the offline commands see it
        assert!(LockHeld::is(&e.context("opening the state")));
        assert!(format!("{:#}", lock_once(dir).unwrap_err()).contains("another portcullis daemon"));
        drop(held);
        // let go while the other waits: it gets the lock
        let held = lock_state_within(dir, std::time::Duration::ZERO).unwrap();
        let waiter = std::thread::spawn({
            let dir = dir.to_path_buf();
            move || lock_state_within(&dir, std::time::Duration::from_secs(5)).is_ok()
        });
        std::thread::sleep(std::time::Duration::from_millis(200));
        drop(held);
        assert!(waiter.join().unwrap());
        // another error is not a held lock
        let e = lock_state_within(&dir.join("missing"), std::time::Duration::ZERO).unwrap_err();
        assert!(!LockHeld::is(&e), "{e:#}");
    }

    #[test]
    fn a_missing_state_dir_is_created_private() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join("a/state");
        let real = prepare_state_dir(&dir).unwrap();
        assert_eq!(real, fs::canonicalize(&dir).unwrap());
        assert_eq!(mode(&dir), 0o700);
        // an existing private (or only readable) directory is accepted as it is
        chmod(&dir, 0o755);
        prepare_state_dir(&dir).unwrap();
        assert_eq!(mode(&dir), 0o755);
    }

    #[test]
    fn a_state_dir_writable_by_others_is_refused_with_the_reason() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join("state");
        fs::create_dir(&dir).unwrap();
        for m in [0o777, 0o1777, 0o770, 0o720] {
            chmod(&dir, m);
            let e = format!("{:#}", prepare_state_dir(&dir).unwrap_err());
            assert!(
                e.contains(&dir.display().to_string())
                    && e.contains("writable by other users")
                    && e.contains("chmod 0700"),
                "{m:o}: {e}"
            );
        }
        // a parent writable by others, without the sticky bit, is refused; with it, not
        chmod(&dir, 0o700);
        chmod(t.path(), 0o777);
        let e = format!("{:#}", prepare_state_dir(&dir).unwrap_err());
        assert!(
            e.contains("above it") && e.contains("0777") && e.contains("writable"),
            "{e}"
        );
        chmod(t.path(), 0o1777);
        prepare_state_dir(&dir).unwrap();
        chmod(t.path(), 0o700);
        // not a directory
        let file = t.path().join("file");
        fs::write(&file, "").unwrap();
        let e = format!("{:#}", prepare_state_dir(&file).unwrap_err());
        assert!(e.contains("not a directory"), "{e}");
    }

    #[test]
    fn a_link_to_the_state_dir_is_resolved_once() {
        let t = tempfile::tempdir().unwrap();
        let real = t.path().join("real");
        fs::create_dir(&real).unwrap();
        chmod(&real, 0o700);
        let link = t.path().join("link");
        symlink(&real, &link).unwrap();
        assert_eq!(
            prepare_state_dir(&link).unwrap(),
            fs::canonicalize(&real).unwrap()
        );
        // the link leads to a directory writable by others: refused
        chmod(&real, 0o777);
        let e = format!("{:#}", prepare_state_dir(&link).unwrap_err());
        assert!(e.contains("writable by other users"), "{e}");
    }

    #[test]
    fn a_planted_link_at_the_temporary_name_is_not_written_through() {
        let t = tempfile::tempdir().unwrap();
        let victim = t.path().join("victim");
        fs::write(&victim, "secret\n").unwrap();
        chmod(&victim, 0o600);
        let path = t.path().join("journal-x.cursor");
        symlink(&victim, t.path().join("journal-x.cursor.tmp")).unwrap();
        write_atomically(&path, b"cursor-1\n").unwrap();
        assert_eq!(fs::read_to_string(&victim).unwrap(), "secret\n");
        assert_eq!(fs::read_to_string(&path).unwrap(), "cursor-1\n");
        assert!(!fs::symlink_metadata(&path)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(mode(&path), 0o600);
        assert!(!t.path().join("journal-x.cursor.tmp").exists());
        // a link at the file's own name is replaced, its target untouched
        fs::remove_file(&path).unwrap();
        symlink(&victim, &path).unwrap();
        write_atomically(&path, b"cursor-2\n").unwrap();
        assert_eq!(fs::read_to_string(&victim).unwrap(), "secret\n");
        assert_eq!(fs::read_to_string(&path).unwrap(), "cursor-2\n");
        // a regular leftover of a crash at the temporary name does not block writing
        fs::write(t.path().join("journal-x.cursor.tmp"), "half").unwrap();
        write_atomically(&path, b"cursor-3\n").unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "cursor-3\n");
    }

    #[test]
    fn state_files_must_be_ours_and_private() {
        let t = tempfile::tempdir().unwrap();
        let f = t.path().join("portcullis.db");
        check_state_file(&f, "state file").unwrap(); // missing: fine
        fs::write(&f, "").unwrap();
        chmod(&f, 0o644);
        check_state_file(&f, "state file").unwrap();
        chmod(&f, 0o666);
        let e = format!("{:#}", check_state_file(&f, "state file").unwrap_err());
        assert!(e.contains("0666") && e.contains("planted"), "{e}");
        fs::remove_file(&f).unwrap();
        symlink(t.path().join("elsewhere"), &f).unwrap();
        let e = format!("{:#}", check_state_file(&f, "state file").unwrap_err());
        assert!(e.contains("symbolic link"), "{e}");
        let e = create_private(&f).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);
        assert!(!t.path().join("elsewhere").exists());
    }
}

//! The control socket: the server side (a thread per connection, requests forwarded to the
//! engine) and the client side used by `status`, `bans`, `ban`, `unban`, `reload`.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{Context, Result};

use super::protocol::{Request, Response};
use super::{EngineTx, Msg};

/// The bound control socket. Its path is removed at stop only while it is still this socket.
pub struct ControlSocket {
    pub listener: UnixListener,
    path: PathBuf,
    /// (device, inode) of the socket file, as bound.
    id: (u64, u64),
}

impl Drop for ControlSocket {
    /// (a start that fails after the bind leaves no socket file behind)
    fn drop(&mut self) {
        self.remove();
    }
}

impl ControlSocket {
    /// Removes the socket file, unless something else has taken its name since.
    pub fn remove(&self) {
        if let Ok(m) = std::fs::symlink_metadata(&self.path) {
            if (m.dev(), m.ino()) == self.id {
                let _ = std::fs::remove_file(&self.path);
            }
        }
    }
}

/// Binds the socket (mode 0600, the daemon's user only; 0660 for `group`), replacing a stale
/// socket. Anything else at the path (a file, a link, a directory) is refused, never deleted.
///
/// The socket is bound, given its mode and group, in a private directory (0700) made next to
/// the path, then renamed into place: nobody else can swap it for a link (or a hard link to
/// another file) between the bind and the chmod/chown, whoever may write to the socket's
/// directory, and the rename replaces a stale socket in one step.
pub fn bind(path: &Path, group: Option<&str>) -> Result<ControlSocket> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => anyhow::bail!(
            "the control socket path {} has no directory",
            path.display()
        ),
    };
    // missing directories are made 0755 whatever the umask (with umask 000 they were
    // world-writable: anyone could swap the socket root's commands talk to, a review found)
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
    }
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_socket() => {
            if UnixStream::connect(path).is_ok() {
                anyhow::bail!(
                    "another portcullis daemon is already listening on {}",
                    path.display()
                );
            }
            // a stale socket: the rename below replaces it
        }
        Ok(m) => anyhow::bail!(
            "{} exists and is {}, not a socket: portcullis does not delete it. Remove it \
             yourself if nothing needs it, or set `socket` to another path",
            path.display(),
            kind(&m)
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
    let gid = match group {
        None => None,
        Some(g) => Some(
            crate::config::group_id(g)
                .with_context(|| format!("socket_group {g:?} is not a group of this host"))?,
        ),
    };
    let private = private_dir(dir)?;
    let tmp = private.join("s");
    let r = (|| -> Result<UnixListener> {
        let l = UnixListener::bind(&tmp)
            .with_context(|| format!("cannot bind control socket {}", path.display()))?;
        // nobody but us can enter `private`: `tmp` is the socket we just bound
        let mode = match gid {
            None => 0o600,
            Some(gid) => {
                std::os::unix::fs::lchown(&tmp, None, Some(gid))
                    .with_context(|| format!("cannot give {} to group {gid}", path.display()))?;
                0o660
            }
        };
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode))?;
        std::fs::rename(&tmp, path)
            .with_context(|| format!("cannot put the control socket at {}", path.display()))?;
        Ok(l)
    })();
    let _ = std::fs::remove_file(&tmp);
    let _ = std::fs::remove_dir(&private);
    let listener = r?;
    let m = std::fs::symlink_metadata(path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    Ok(ControlSocket {
        listener,
        path: path.to_path_buf(),
        id: (m.dev(), m.ino()),
    })
}

/// How often [`keep`] looks at the socket's path.
const KEEP_EVERY: Duration = Duration::from_secs(5);

/// The control socket while the daemon runs; `None` once it stops (then nothing binds it
/// again).
pub type Kept = std::sync::Arc<std::sync::Mutex<Option<ControlSocket>>>;

/// Starts a thread that keeps the control socket at its path: a socket file removed by hand
/// (`rm`, a clean-up of /run) left the daemon running but out of reach of every command,
/// `portcullis reload` (the unit's ExecReload) among them, until a restart. Every few
/// seconds the path is looked at; when nothing is there any more, the socket is bound again
/// (the same mode and group) and served. Something else at the path (another daemon's
/// socket, a file) is left alone, said once.
pub fn keep(kept: Kept, group: Option<String>, engine: EngineTx) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("control-keeper".into())
        .spawn(move || {
            let mut said = false;
            loop {
                std::thread::sleep(KEEP_EVERY);
                let mut g = kept.lock().expect("control socket lock");
                let Some(cur) = g.as_ref() else { return };
                let path = cur.path.clone();
                let note = match std::fs::symlink_metadata(&path) {
                    Ok(m) if (m.dev(), m.ino()) == cur.id => {
                        said = false;
                        continue;
                    }
                    Ok(_) if said => continue,
                    Ok(_) => {
                        said = true;
                        format!(
                            "control socket {}: something else took its place; the daemon \
                             is out of reach of portcullis commands until it restarts",
                            path.display()
                        )
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        match bind(&path, group.as_deref()) {
                            Ok(new) => {
                                let served = new.listener.try_clone().map(|l| {
                                    let tx = engine.clone();
                                    std::thread::spawn(move || serve(l, tx))
                                });
                                // (the old one's name is gone: dropped, it removes nothing)
                                *g = Some(new);
                                said = false;
                                match served {
                                    Ok(_) => format!(
                                        "control socket {} was removed: bound again",
                                        path.display()
                                    ),
                                    Err(e) => format!(
                                        "control socket {} was removed and bound again, but \
                                         cannot be served ({e})",
                                        path.display()
                                    ),
                                }
                            }
                            Err(_) if said => continue,
                            Err(e) => {
                                said = true;
                                format!(
                                    "control socket {} was removed and cannot be bound again \
                                     ({e:#}); tried again every few seconds",
                                    path.display()
                                )
                            }
                        }
                    }
                    Err(_) => continue,
                };
                drop(g);
                if engine.send(Msg::Note(note)).is_err() {
                    return;
                }
            }
        })?;
    Ok(())
}

/// What a file is, for an error message.
fn kind(m: &std::fs::Metadata) -> &'static str {
    let t = m.file_type();
    if t.is_symlink() {
        "a symbolic link"
    } else if t.is_dir() {
        "a directory"
    } else if t.is_file() {
        "a regular file"
    } else {
        "a special file"
    }
}

/// A fresh directory (mode 0700) in `dir`, for binding the socket before it is moved into
/// place. The name is new: an existing entry (of anyone) is never reused.
fn private_dir(dir: &Path) -> Result<PathBuf> {
    use std::os::unix::fs::DirBuilderExt;
    let mut last = None;
    for n in 0..100u32 {
        let p = dir.join(format!(".portcullis-{}-{n}", std::process::id()));
        match std::fs::DirBuilder::new().mode(0o700).create(&p) {
            Ok(()) => return Ok(p),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => {
                return Err(e)
                    .with_context(|| format!("cannot create a directory in {}", dir.display()))
            }
        }
    }
    Err(last.expect("tried"))
        .with_context(|| format!("cannot create a directory in {}", dir.display()))
}

/// Requests served at once; more connections are closed at once. (Each is a thread: without
/// a bound, a client of the socket that opened hundreds of idle connections made thread
/// creation fail, which aborted the daemon, a security review found.)
pub const MAX_CLIENTS: usize = 32;

/// The time a client has to send its request, and then to take the answer.
const REQUEST_DEADLINE: Duration = Duration::from_secs(10);

/// Accepts connections forever, forwarding each request to the engine.
pub fn serve(listener: UnixListener, engine: EngineTx) {
    serve_within(listener, engine, REQUEST_DEADLINE)
}

fn serve_within(listener: UnixListener, engine: EngineTx, deadline: Duration) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    let busy = Arc::new(AtomicUsize::new(0));
    for conn in listener.incoming() {
        let conn = match conn {
            Ok(c) => c,
            Err(_) => {
                // out of file descriptors and the like: do not spin
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        if busy.fetch_add(1, Ordering::AcqRel) >= MAX_CLIENTS {
            busy.fetch_sub(1, Ordering::AcqRel);
            continue; // closed
        }
        let engine = engine.clone();
        let b = busy.clone();
        let spawned = std::thread::Builder::new()
            .name("control-client".into())
            .spawn(move || {
                let _ = handle(conn, &engine, deadline);
                b.fetch_sub(1, Ordering::AcqRel);
            });
        if spawned.is_err() {
            busy.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

/// A connection's reading side with one deadline for the whole request: a client that
/// sends a byte every few seconds must not hold a place for ever (only 32 are served).
struct Deadline {
    conn: UnixStream,
    end: std::time::Instant,
}

impl std::io::Read for Deadline {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let left = self
            .end
            .saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return Err(std::io::ErrorKind::TimedOut.into());
        }
        self.conn.set_read_timeout(Some(left))?;
        self.conn.read(buf)
    }
}

fn handle(conn: UnixStream, engine: &EngineTx, within: Duration) -> Result<()> {
    // the answer too is written within a time: a client that never reads it frees its place
    conn.set_write_timeout(Some(within))?;
    let deadline = Deadline {
        conn: conn.try_clone()?,
        end: std::time::Instant::now() + within,
    };
    let mut reader = BufReader::new(std::io::Read::take(deadline, 64 * 1024));
    // (as bytes: a request not UTF-8 was closed unanswered, and the client said the daemon
    // was busy, review 65)
    let mut line = Vec::new();
    reader.read_until(b'\n', &mut line)?;
    let resp = match serde_json::from_slice::<Request>(&line) {
        Err(e) => Response::err(format!("bad request: {e}")),
        Ok(req) => {
            let wait = answer_within(&req);
            let (tx, rx) = mpsc::channel();
            if engine.send(Msg::Control(req, tx)).is_err() {
                Response::err("the daemon is stopping")
            } else {
                rx.recv_timeout(wait)
                    .unwrap_or_else(|_| Response::err("the daemon did not answer in time"))
            }
        }
    };
    // one buffer, one write: a reply with 100,000 bans must not become a syscall per token
    let mut buf = serde_json::to_vec(&resp)?;
    buf.push(b'\n');
    let mut w = conn;
    w.write_all(&buf)?;
    if buf.len() > 1 << 20 {
        drop(buf);
        // a big listing (100,000 bans) would otherwise stay in the resident size
        crate::sys::trim_heap();
    }
    Ok(())
}

/// What a failed connect means, in words: a permission problem is not a missing daemon.
fn connect_error(socket: &Path, e: &std::io::Error) -> anyhow::Error {
    if e.kind() == std::io::ErrorKind::PermissionDenied {
        anyhow::anyhow!("permission denied on {} ({e}): the control socket is for root, or for the members of the configuration's `socket_group` (and its directory must be searchable); run as root or join that group", socket.display())
    } else {
        anyhow::anyhow!("no portcullis daemon is answering on {} ({e}); is `portcullis run` running, and is this the socket of its configuration?", socket.display())
    }
}

/// How long the engine's answer to `req` is waited for. A reload may run a `command`
/// backend's programs for every ban whose ports changed: its answer is waited for long
/// enough (said "did not answer in time" after 30 s, while the new configuration then took
/// effect, so `systemctl reload` reported a refusal that was none, a review found).
pub fn answer_within(req: &Request) -> Duration {
    match req {
        Request::Reload => Duration::from_secs(600),
        _ => Duration::from_secs(30),
    }
}

/// Sends one request to the daemon at `socket` and returns its response.
pub fn request(socket: &Path, req: &Request) -> Result<Response> {
    let mut s = UnixStream::connect(socket).map_err(|e| connect_error(socket, &e))?;
    let within = answer_within(req) + Duration::from_secs(30);
    s.set_read_timeout(Some(within))?;
    let mut buf = serde_json::to_vec(req)?;
    buf.push(b'\n');
    // (said in words: "Connection reset by peer" alone was all a saturated daemon's
    // client printed, and "Resource temporarily unavailable" a stopped one's, a review found)
    let unanswered = |e: std::io::Error| {
        let why = match e.kind() {
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
                format!(
                    "it did not answer within {} s (stopped, or stuck: see its log)",
                    within.as_secs()
                )
            }
            // (a daemon that is gone was said to be busy, a review found: it is asked again)
            _ if UnixStream::connect(socket).is_err() => {
                "it stopped while answering (killed, or crashed: see its log; what it answered \
                 before stopping, if anything, may have been done)"
                    .to_string()
            }
            _ => format!(
                "it closed the connection (it serves {MAX_CLIENTS} clients at a time: try again)"
            ),
        };
        anyhow::anyhow!(
            "the daemon on {} did not answer: {why} ({e})",
            socket.display()
        )
    };
    s.write_all(&buf).map_err(unanswered)?;
    let mut line = String::new();
    BufReader::new(s).read_line(&mut line).map_err(unanswered)?;
    if line.is_empty() {
        return Err(unanswered(std::io::ErrorKind::UnexpectedEof.into()));
    }
    serde_json::from_str(&line).with_context(|| format!("bad answer from the daemon: {line:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    /// A daemon that closes the connection unanswered (all its places taken) is said in
    /// words, with the socket (review: "Connection reset by peer" alone).
    #[test]
    fn a_connection_closed_unanswered_is_said_in_words() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sock");
        let listener = UnixListener::bind(&path).unwrap();
        let (done, wait) = std::sync::mpsc::channel::<()>();
        let t = std::thread::spawn(move || {
            let (c, _) = listener.accept().unwrap();
            drop(c);
            // (still listening: a daemon that is there, all its places taken)
            let _ = wait.recv();
        });
        let e = request(&path, &Request::Status { jail: None })
            .unwrap_err()
            .to_string();
        done.send(()).unwrap();
        t.join().unwrap();
        assert!(
            e.contains(&format!("the daemon on {} did not answer", path.display()))
                && e.contains("closed the connection"),
            "{e}"
        );
    }

    /// A daemon killed while it answers is not said to be busy (review 60: "it serves 32
    /// clients at a time: try again" after a `kill -9`).
    #[test]
    fn a_daemon_gone_while_answering_is_said_gone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sock");
        let listener = UnixListener::bind(&path).unwrap();
        let t = std::thread::spawn(move || {
            let (mut c, _) = listener.accept().unwrap();
            let mut b = [0u8; 64];
            let _ = c.read(&mut b);
            drop(listener);
            drop(c);
        });
        let e = request(&path, &Request::Status { jail: None })
            .unwrap_err()
            .to_string();
        t.join().unwrap();
        assert!(e.contains("it stopped while answering"), "{e}");
    }

    /// Found by a security review: 300 idle connections made thread creation fail, and the
    /// daemon aborted. Past [`MAX_CLIENTS`] a connection is closed at once; the daemon goes on.
    #[test]
    fn idle_connections_past_the_limit_are_closed_not_served() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sock");
        let listener = UnixListener::bind(&path).unwrap();
        let (tx, _rx) = crate::daemon::engine_channel();
        std::thread::spawn(move || serve(listener, tx));
        // closed within `wait` (a closed one is seen at once; `wait` only bounds how long a
        // loaded machine may take to run the accepting thread, review 32)
        let closed_within = |s: &mut UnixStream, wait: u64| {
            s.set_read_timeout(Some(Duration::from_millis(wait)))
                .unwrap();
            matches!(s.read(&mut [0u8; 1]), Ok(0))
        };
        let mut held: Vec<UnixStream> = (0..MAX_CLIENTS)
            .map(|_| UnixStream::connect(&path).unwrap())
            .collect();
        std::thread::sleep(Duration::from_millis(200));
        for _ in 0..3 * MAX_CLIENTS {
            let mut s = UnixStream::connect(&path).unwrap();
            assert!(closed_within(&mut s, 3000));
        }
        // the places held are still served (not closed), and freed they serve again (once
        // their threads have seen the ends: a few tries)
        assert!(!closed_within(&mut held[0], 300));
        held.clear();
        let served_again = (0..20).any(|_| {
            std::thread::sleep(Duration::from_millis(200));
            let mut s = UnixStream::connect(&path).unwrap();
            !closed_within(&mut s, 300)
        });
        assert!(served_again);
    }

    /// A client that sends a byte now and then, never a whole request, loses its place at
    /// the deadline (a read timeout alone would wait for ever): with every place held so,
    /// a new client is served again once the deadline has passed.
    #[test]
    fn a_trickling_client_is_closed_at_the_deadline() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sock");
        let listener = UnixListener::bind(&path).unwrap();
        let (tx, rx) = crate::daemon::engine_channel();
        std::thread::spawn(move || serve_within(listener, tx, Duration::from_millis(1500)));
        // the engine: answers every request
        std::thread::spawn(move || {
            while let Ok(m) = rx.recv() {
                if let Msg::Control(_, reply) = m {
                    let _ = reply.send(Response::err("engine stand-in"));
                }
            }
        });
        let start = std::time::Instant::now();
        let mut held: Vec<UnixStream> = (0..MAX_CLIENTS)
            .map(|_| UnixStream::connect(&path).unwrap())
            .collect();
        std::thread::sleep(Duration::from_millis(200));
        // all places held: a newcomer is closed at once
        let mut s = UnixStream::connect(&path).unwrap();
        s.set_read_timeout(Some(Duration::from_millis(3000)))
            .unwrap();
        assert!(matches!(s.read(&mut [0u8; 1]), Ok(0)));
        // each holder trickles a byte every 250 ms (no newline) until the server closes it
        let mut closed_at = vec![None; held.len()];
        for round in 0..40 {
            for (i, c) in held.iter_mut().enumerate() {
                if closed_at[i].is_none() && c.write_all(b"{").is_err() {
                    closed_at[i] = Some(start.elapsed());
                }
            }
            if closed_at.iter().all(Option::is_some) {
                break;
            }
            assert!(round < 39, "trickling clients still held after 10 s");
            std::thread::sleep(Duration::from_millis(250));
        }
        for t in closed_at.iter().flatten() {
            assert!(
                *t >= Duration::from_millis(1400),
                "closed before the deadline: {t:?}"
            );
        }
        // the places are free: a client with a whole request gets its answer (once the
        // closed clients' threads have ended: a few tries)
        let resp = (0..25)
            .find_map(|_| {
                std::thread::sleep(Duration::from_millis(200));
                request(&path, &Request::Reload).ok()
            })
            .expect("no answer within 5 s of the places freed");
        assert_eq!(resp.error.as_deref(), Some("engine stand-in"));
    }
}

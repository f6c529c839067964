//! The control socket: the server side (a thread per connection, requests forwarded to the
//! engine) and the client side used by `status`, `bans`, `ban`, `unban`, `reload`.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::mpsc::{self, Sender};
use std::time::Duration;

use anyhow::{Context, Result};

use super::protocol::{Request, Response};
use super::Msg;

/// Binds the socket (mode 0600, root only; 0660 for `group`), replacing a stale one.
pub fn bind(path: &Path, group: Option<&str>) -> Result<UnixListener> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    if path.exists() {
        if UnixStream::connect(path).is_ok() {
            anyhow::bail!(
                "another portcullis daemon is already listening on {}",
                path.display()
            );
        }
        std::fs::remove_file(path)
            .with_context(|| format!("cannot remove stale socket {}", path.display()))?;
    }
    let l = UnixListener::bind(path)
        .with_context(|| format!("cannot bind control socket {}", path.display()))?;
    match group.and_then(crate::config::group_id) {
        None => std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?,
        Some(gid) => {
            std::os::unix::fs::chown(path, Some(0), Some(gid))
                .with_context(|| format!("cannot give {} to group {gid}", path.display()))?;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))?;
        }
    }
    Ok(l)
}

/// Accepts connections forever, forwarding each request to the engine.
pub fn serve(listener: UnixListener, engine: Sender<Msg>) {
    for conn in listener.incoming() {
        let Ok(conn) = conn else { continue };
        let engine = engine.clone();
        std::thread::spawn(move || {
            let _ = handle(conn, &engine);
        });
    }
}

fn handle(conn: UnixStream, engine: &Sender<Msg>) -> Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(std::io::Read::take(conn.try_clone()?, 64 * 1024));
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let resp = match serde_json::from_str::<Request>(&line) {
        Err(e) => Response::err(format!("bad request: {e}")),
        Ok(req) => {
            let (tx, rx) = mpsc::channel();
            if engine.send(Msg::Control(req, tx)).is_err() {
                Response::err("the daemon is stopping")
            } else {
                rx.recv_timeout(Duration::from_secs(30))
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
        // SAFETY: only returns freed heap pages to the kernel; a big listing (100,000 bans)
        // would otherwise stay in the resident size of an idle daemon.
        unsafe {
            libc::malloc_trim(0);
        }
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

/// Sends one request to the daemon at `socket` and returns its response.
pub fn request(socket: &Path, req: &Request) -> Result<Response> {
    let mut s = UnixStream::connect(socket).map_err(|e| connect_error(socket, &e))?;
    s.set_read_timeout(Some(Duration::from_secs(60)))?;
    let mut buf = serde_json::to_vec(req)?;
    buf.push(b'\n');
    s.write_all(&buf)?;
    let mut line = String::new();
    BufReader::new(s).read_line(&mut line)?;
    serde_json::from_str(&line).with_context(|| format!("bad answer from the daemon: {line:?}"))
}

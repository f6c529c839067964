//! The control socket: the server side (a thread per connection, requests forwarded to the
//! engine) and the client side used by `status`, `bans`, `ban`, `unban`, `reload`.

use std::io::{BufRead, BufReader, Write};
use std::net::IpAddr;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{Context, Result};
use portcullis_core::ignore::{Cidr, Reason};

use super::protocol::{Request, Response};
use super::{EngineTx, Msg};

/// The bound control socket. Its path is removed at stop only while it is still this socket.
pub struct ControlSocket {
    pub listener: UnixListener,
    path: PathBuf,
    /// (device, inode) of the socket file, as bound.
    id: (u64, u64),
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
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
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

/// Accepts connections forever, forwarding each request to the engine.
pub fn serve(listener: UnixListener, engine: EngineTx) {
    for conn in listener.incoming() {
        let Ok(conn) = conn else { continue };
        let engine = engine.clone();
        std::thread::spawn(move || {
            let _ = handle(conn, &engine);
        });
    }
}

fn handle(conn: UnixStream, engine: &EngineTx) -> Result<()> {
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

/// `text` as the address or prefix of a `ban` or `unban`. A prefix written with host bits
/// set (`203.0.113.0/8`) is refused, naming its two likely meanings: taken as it reads, a
/// typo for `/24` would ban 16 million addresses (`Cidr::parse` clears the bits silently,
/// as an `ignore` entry may).
pub fn parse_target(text: &str) -> std::result::Result<Cidr, String> {
    let not = || {
        format!(
            "{text:?} is not an IP address or CIDR prefix (e.g. 203.0.113.7, 2001:db8:5:6::/64)"
        )
    };
    let c = Cidr::parse(text).map_err(|_| not())?;
    let Some((a, _)) = text.trim().split_once('/') else {
        return Ok(c);
    };
    let Some(ip) = portcullis_core::addr::parse(a.as_bytes()) else {
        return Err(not());
    };
    if ip == c.addr {
        return Ok(c);
    }
    // the other meaning: the prefix that starts at the address as written, to the next
    // octet (IPv4) or group (IPv6) boundary its trailing zero bits allow
    let (bits, zeros, step) = match ip {
        IpAddr::V4(v) => (32u32, u32::from(v).trailing_zeros(), 8),
        IpAddr::V6(v) => (128u32, u128::from(v).trailing_zeros(), 16),
    };
    let len = (bits - zeros).div_ceil(step) * step;
    let narrow = Cidr::new(ip, len as u8).expect("not longer than the address");
    let first = if narrow.is_host() {
        format!("the single address {ip}")
    } else {
        narrow.to_string()
    };
    let host_bits = bits - u32::from(c.len);
    let size = if host_bits <= 32 {
        (1u64 << host_bits).to_string()
    } else {
        format!("2^{host_bits}")
    };
    Err(format!(
        "{} has host bits set: a /{} holds {size} addresses and starts at {}. Did you mean \
         {first}, or {c}? Write the one you mean",
        text.trim(),
        c.len,
        c.addr
    ))
}

/// Why `portcullis ban` refuses `target`, in words that fit it: a prefix is not "a loopback
/// address", it holds one (and `0.0.0.0/0` is the whole address space).
pub fn refusal(target: Cidr, why: Reason) -> String {
    let whole = target.len == 0;
    let space = if target.addr.is_ipv4() {
        "IPv4"
    } else {
        "IPv6"
    };
    let reason = match why {
        _ if target.is_host() => why.to_string(),
        Reason::Loopback if whole => format!(
            "it is the whole {space} address space, which holds loopback ({}) and every \
             address of this host",
            if target.addr.is_ipv4() {
                "127.0.0.0/8"
            } else {
                "::1"
            }
        ),
        Reason::Loopback => format!(
            "it holds loopback or the unspecified address ({})",
            if target.addr.is_ipv4() {
                "127.0.0.0/8, 0.0.0.0"
            } else {
                "::1, ::"
            }
        ),
        Reason::Own => "it holds one of this host's own addresses".to_string(),
        Reason::Listed(c) => format!("it overlaps {c} of the ignore list"),
    };
    format!("refused to ban {target}: {reason}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Cidr {
        Cidr::parse(s).unwrap()
    }

    #[test]
    fn a_prefix_with_host_bits_is_refused_with_both_meanings() {
        assert_eq!(parse_target("203.0.113.0/24"), Ok(p("203.0.113.0/24")));
        assert_eq!(parse_target(" 192.0.2.7 "), Ok(p("192.0.2.7")));
        assert_eq!(parse_target("2001:db8::/32"), Ok(p("2001:db8::/32")));
        assert_eq!(
            parse_target("203.0.113.0/8").unwrap_err(),
            "203.0.113.0/8 has host bits set: a /8 holds 16777216 addresses and starts at \
             203.0.0.0. Did you mean 203.0.113.0/24, or 203.0.0.0/8? Write the one you mean"
        );
        let e = parse_target("198.51.100.1/24").unwrap_err();
        assert!(
            e.contains("Did you mean the single address 198.51.100.1, or 198.51.100.0/24?"),
            "{e}"
        );
        let e = parse_target("2001:db8:5::/32").unwrap_err();
        assert!(
            e.contains("a /32 holds 2^96 addresses")
                && e.contains("Did you mean 2001:db8:5::/48, or 2001:db8::/32?"),
            "{e}"
        );
        let e = parse_target("10.1.128.0/8").unwrap_err();
        assert!(
            e.contains("Did you mean 10.1.128.0/24, or 10.0.0.0/8?"),
            "{e}"
        );
        for bad in ["example.com", "192.0.2.0/33", "192.0.2.0/x"] {
            let e = parse_target(bad).unwrap_err();
            assert!(e.contains("is not an IP address or CIDR prefix"), "{e}");
        }
    }

    #[test]
    fn refusals_say_a_prefix_holds_loopback() {
        let ig = portcullis_core::ignore::IgnoreList::new(vec![p("192.0.2.0/24")], vec![]);
        let r = |s: &str| refusal(p(s), ig.check_prefix(p(s)).unwrap());
        assert_eq!(
            r("0.0.0.0/0"),
            "refused to ban 0.0.0.0/0: it is the whole IPv4 address space, which holds \
             loopback (127.0.0.0/8) and every address of this host"
        );
        assert!(r("::/0").contains("the whole IPv6 address space, which holds loopback (::1)"));
        assert_eq!(
            r("127.0.0.0/9"),
            "refused to ban 127.0.0.0/9: it holds loopback or the unspecified address \
             (127.0.0.0/8, 0.0.0.0)"
        );
        assert_eq!(
            r("127.0.0.1"),
            "refused to ban 127.0.0.1: it is a loopback address"
        );
        assert_eq!(
            r("192.0.0.0/16"),
            "refused to ban 192.0.0.0/16: it overlaps 192.0.2.0/24 of the ignore list"
        );
        assert_eq!(
            r("192.0.2.9"),
            "refused to ban 192.0.2.9: it is in the ignore list (192.0.2.0/24)"
        );
        assert!(refusal(p("198.51.100.0/24"), Reason::Own)
            .ends_with("it holds one of this host's own addresses"));
    }
}

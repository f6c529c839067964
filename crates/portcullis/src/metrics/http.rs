//! A minimal HTTP/1.1 responder for the metrics on a std `TcpListener`, written here rather
//! than pulling an HTTP server (and an async runtime) into the daemon for one read-only
//! page. It answers `GET` and `HEAD` of `/metrics` (a query string is ignored), 404 for
//! any other path, 405 for any other method, one request per connection
//! (`Connection: close`; Prometheus reconnects at each scrape).
//!
//! A slow or hostile client cannot hold it: the request head must arrive whole within
//! [`DEADLINE`] and [`MAX_HEAD`] bytes (a body is never read), writes time out too, and at
//! most [`MAX_CLIENTS`] connections are served at once. When all are taken, a new one takes
//! the place of the oldest that has not sent its head yet (closed): idle connections, which
//! any local user can open, never keep a scraper out (a security review held all 8 places
//! by reconnecting every 4.5 s); only when every place is answering is the new one closed.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use prometheus_client::encoding::prometheus_text::CONTENT_TYPE;
use tracing::warn;

/// Longest request head read (request line and headers).
pub const MAX_HEAD: usize = 8192;

/// Time a client has to send its request head, and each write of the answer.
pub const DEADLINE: Duration = Duration::from_secs(5);

/// Connections served at once.
pub const MAX_CLIENTS: usize = 8;

/// A connection still reading its head: it can be closed to make room.
struct Waiting {
    id: u64,
    stream: TcpStream,
}

type Queue = Arc<std::sync::Mutex<std::collections::VecDeque<Waiting>>>;

/// Serves `listener` forever; `page` renders the metrics.
pub fn serve(listener: TcpListener, page: impl Fn() -> String + Send + Sync + 'static) {
    let page = Arc::new(page);
    let busy = Arc::new(AtomicUsize::new(0));
    let waiting: Queue = Default::default();
    let mut next_id = 0u64;
    for conn in listener.incoming() {
        let stream = match conn {
            Ok(s) => s,
            Err(e) => {
                // out of file descriptors and the like: do not spin
                warn!("metrics: accept: {e}");
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        if busy.load(Ordering::Acquire) >= MAX_CLIENTS {
            // the oldest connection that has not sent its head gives its place (its thread
            // sees the end and frees it); places freed that way are bounded by 8 x MAX_CLIENTS (evicted threads take a moment to end: at 2 x, a loop of connects kept a scraper out)
            // (one that has sent bytes is not idle: a scraper's, whose head its thread has
            // not read yet; evicted, a loop of idle connects failed half the scrapes, a
            // review found)
            let evicted = waiting
                .lock()
                .ok()
                .and_then(|mut q| {
                    let i = q.iter().position(|w| !has_data(&w.stream))?;
                    q.remove(i)
                })
                .map(|w| w.stream.shutdown(std::net::Shutdown::Both));
            if evicted.is_none() || busy.load(Ordering::Acquire) >= 8 * MAX_CLIENTS {
                continue; // dropped: closed
            }
        }
        busy.fetch_add(1, Ordering::AcqRel);
        let slot = Slot(busy.clone());
        let page = page.clone();
        next_id += 1;
        let id = next_id;
        if let (Ok(clone), Ok(mut q)) = (stream.try_clone(), waiting.lock()) {
            q.push_back(Waiting { id, stream: clone });
        }
        let queue = waiting.clone();
        let spawned = std::thread::Builder::new()
            .name("metrics-client".into())
            .spawn(move || {
                let _slot = slot;
                handle(stream, &*page, &|| {
                    if let Ok(mut q) = queue.lock() {
                        q.retain(|w| w.id != id);
                    }
                });
            });
        if let Err(e) = spawned {
            warn!("metrics: cannot start a thread: {e}");
            if let Ok(mut q) = waiting.lock() {
                q.retain(|w| w.id != id);
            }
        }
    }
}

/// Whether bytes from the client wait to be read (a peek that never blocks).
fn has_data(s: &TcpStream) -> bool {
    use std::os::fd::AsRawFd;
    let mut b = 0u8;
    // SAFETY: a one-byte peek into a local buffer on a socket we hold open.
    let n = unsafe {
        libc::recv(
            s.as_raw_fd(),
            (&mut b as *mut u8).cast(),
            1,
            libc::MSG_PEEK | libc::MSG_DONTWAIT,
        )
    };
    n > 0
}

/// A connection being served; frees its place when dropped.
struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Serves one connection; `headed` is called once its head is read (or it is gone), when it
/// can no longer be evicted.
fn handle(mut s: TcpStream, page: &dyn Fn() -> String, headed: &dyn Fn()) {
    let head = read_head(&mut s, Instant::now() + DEADLINE);
    headed();
    let answer = match head {
        Ok(head) => respond(&head, page),
        Err(Some(status)) => plain(status, ""),
        Err(None) => return, // gone or too slow: nothing to say
    };
    let _ = s.set_write_timeout(Some(DEADLINE));
    let _ = s.write_all(&answer);
    let _ = s.shutdown(std::net::Shutdown::Both);
}

/// Reads up to the end of the request head. `Err(Some(status))`: answer with that status;
/// `Err(None)`: the client is gone or too slow.
fn read_head(s: &mut TcpStream, deadline: Instant) -> Result<Vec<u8>, Option<&'static str>> {
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Some("408 Request Timeout"));
        }
        s.set_read_timeout(Some(left)).map_err(|_| None)?;
        let n = match s.read(&mut buf) {
            Ok(0) => return Err(None),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return Err(Some("408 Request Timeout"))
            }
            Err(_) => return Err(None),
        };
        // the end may straddle two reads
        let from = head.len().saturating_sub(3);
        head.extend_from_slice(&buf[..n]);
        if let Some(end) = find(&head[from..], b"\r\n\r\n").or_else(|| find(&head[from..], b"\n\n"))
        {
            head.truncate(from + end);
            return Ok(head);
        }
        if head.len() > MAX_HEAD {
            return Err(Some("431 Request Header Fields Too Large"));
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The whole answer to a request head.
pub fn respond(head: &[u8], page: &dyn Fn() -> String) -> Vec<u8> {
    let line = head.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut parts = line.trim_end_matches('\r').split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return plain("400 Bad Request", "");
    };
    if !version.starts_with("HTTP/1.") {
        return plain("400 Bad Request", "");
    }
    let path = target.split('?').next().unwrap_or_default();
    if path != "/metrics" {
        return plain("404 Not Found", "");
    }
    match method {
        "GET" => answer("200 OK", CONTENT_TYPE, &[], page().as_bytes(), true),
        "HEAD" => answer("200 OK", CONTENT_TYPE, &[], page().as_bytes(), false),
        _ => answer(
            "405 Method Not Allowed",
            "text/plain; charset=utf-8",
            &["Allow: GET, HEAD"],
            b"method not allowed\n",
            true,
        ),
    }
}

/// A short text/plain answer; the body is the status when `body` is empty.
fn plain(status: &str, body: &str) -> Vec<u8> {
    let body = if body.is_empty() {
        format!("{status}\n")
    } else {
        body.to_string()
    };
    answer(
        status,
        "text/plain; charset=utf-8",
        &[],
        body.as_bytes(),
        true,
    )
}

fn answer(status: &str, ctype: &str, extra: &[&str], body: &[u8], with_body: bool) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for h in extra {
        out.push_str(h);
        out.push_str("\r\n");
    }
    out.push_str("\r\n");
    let mut out = out.into_bytes();
    if with_body {
        out.extend_from_slice(body);
    }
    out
}

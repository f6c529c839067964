//! A minimal HTTP/1.1 responder for the metrics on one thread, written here rather than
//! pulling an HTTP server (and an async runtime) into the daemon for one read-only page. It
//! answers `GET` and `HEAD` of `/metrics` (a query string is ignored), 404 for any other
//! path, 405 for any other method, one request per connection (`Connection: close`;
//! Prometheus reconnects at each scrape).
//!
//! One thread serves every connection from a `mio` poll loop (non-blocking sockets): a
//! scraper's request is read the moment it arrives, whatever else is connected, and no
//! connection costs a thread. (It was a thread per connection and 8 places: under CPU load
//! the threads of evicted connections were slow to end and a scraper's connection, not yet
//! read, was taken for an idle one, so a loop of idle connects failed 5 of 30 scrapes, and
//! a CI run failed on it.)
//!
//! A slow or hostile client cannot hold it: the request head must arrive whole within
//! [`DEADLINE`] and [`MAX_HEAD`] bytes (a body is never read), the answer must be taken
//! within [`DEADLINE`] too, and at most [`MAX_CONNS`] connections are open at once. When
//! all are taken, a new one takes the place of the oldest still sending its head (closed,
//! after what has come on it is read): a scraper's head comes whole and is answered at
//! once, so idle or trickling connections, which any local user can open, never keep a
//! scraper out (a security review held all places by reconnecting every 4.5 s). A
//! connection accepted in the same turn of the loop is never taken (its head not looked at
//! yet); when no place can be freed, the new one is closed. An answered connection is read
//! for [`LINGER`] more (what the client still sends dropped, its place free to take), so
//! that its close never resets the answer.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use prometheus_client::encoding::prometheus_text::CONTENT_TYPE;
use tracing::warn;

/// Longest request head read (request line and headers).
pub const MAX_HEAD: usize = 8192;

/// Time a client has to send its request head, and to take the answer.
pub const DEADLINE: Duration = Duration::from_secs(5);

/// Connections open at once.
pub const MAX_CONNS: usize = 128;

const LISTENER: Token = Token(usize::MAX);

/// One connection: its head as read so far, then its answer as written so far.
struct Conn {
    stream: TcpStream,
    opened: Instant,
    deadline: Instant,
    head: Vec<u8>,
    /// The answer and how much of it is written; `None` while the head is read.
    out: Option<(Vec<u8>, usize)>,
    /// The answer is written whole and the sending side shut: what the client still sends
    /// is read and dropped until it closes, or for [`LINGER`]. (Closed with bytes unread,
    /// the socket sends a reset, which drops what of the answer the kernel still holds: a
    /// client that sent a body, or a second request, got 1.7 MB of a 4 MB page.)
    lingering: bool,
}

/// How long an answered connection is read (and its bytes dropped) before it is closed.
pub const LINGER: Duration = Duration::from_secs(2);

/// Serves `listener` forever; `page` renders the metrics. Returns only if the poll itself
/// fails (said in the log).
pub fn serve(listener: TcpListener, page: impl Fn() -> String) {
    if let Err(e) = run(listener, &page) {
        warn!("metrics: {e}: the listener serves no more scrapes");
    }
}

fn run(listener: TcpListener, page: &dyn Fn() -> String) -> std::io::Result<()> {
    listener.set_nonblocking(true)?;
    defer_accept(&listener);
    let mut listener = mio::net::TcpListener::from_std(listener);
    let mut poll = Poll::new()?;
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)?;
    let mut events = Events::with_capacity(256);
    let mut conns: HashMap<usize, Conn> = HashMap::new();
    let mut next_id = 0usize;
    // when to accept again without a new event: at once (a turn's share taken, more
    // waiting), or in a moment (an accept failed, out of file descriptors: not spun on);
    // `None`: at the listener's next event
    let mut accept_again: Option<Duration> = None;
    // when a failed accept was last said, and how many failed since
    let mut accept_log: (Option<Instant>, u64) = (None, 0);
    loop {
        let now = Instant::now();
        let mut timeout = conns
            .values()
            .map(|c| c.deadline.saturating_duration_since(now))
            .min();
        if let Some(a) = accept_again {
            timeout = Some(timeout.map_or(a, |t| t.min(a)));
        }
        if let Err(e) = poll.poll(&mut events, timeout) {
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        let mut accept = accept_again.is_some();
        for ev in events.iter() {
            if ev.token() == LISTENER {
                accept = true;
                continue;
            }
            let id = ev.token().0;
            if let Some(c) = conns.get_mut(&id) {
                if !progress(c, page) {
                    close(&poll, conns.remove(&id));
                }
            }
        }
        if accept {
            accept_again = accept_all(
                &listener,
                &poll,
                &mut conns,
                &mut next_id,
                page,
                &mut accept_log,
            );
        }
        // past their deadline: a head not come whole is answered 408 (if the socket takes
        // it at once), an answer not taken is dropped, an answered one closed
        let now = Instant::now();
        let late: Vec<usize> = conns
            .iter()
            .filter(|(_, c)| c.deadline <= now)
            .map(|(&id, _)| id)
            .collect();
        for id in late {
            if let Some(mut c) = conns.remove(&id) {
                if c.out.is_none() {
                    let _ = c.stream.write(&plain("408 Request Timeout", ""));
                }
                close(&poll, Some(c));
            }
        }
    }
}

/// Asks the kernel to hand over a connection only once its first bytes have come (Linux's
/// `TCP_DEFER_ACCEPT`, for [`DEADLINE`]): a scraper's connection is accepted with its
/// request there, read and answered in the same turn, and never taken for an idle one;
/// connections that send nothing wait in the kernel, not in the places here, and come only
/// after that time (rounded up to the kernel's SYN-ACK retransmissions: about 7 s), to be
/// given their own deadline then, as the oldest to give their places. Without it
/// (refused), the places alone protect the scrapers: said, not fatal. (Written with libc:
/// rustix has no call for this option.)
fn defer_accept(listener: &TcpListener) {
    use std::os::fd::AsRawFd;
    let secs: libc::c_int = DEADLINE.as_secs() as libc::c_int;
    // SAFETY: setsockopt on a socket we own, with a pointer to a local int and its size.
    let r = unsafe {
        libc::setsockopt(
            listener.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_DEFER_ACCEPT,
            (&secs as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r != 0 {
        warn!(
            "metrics: TCP_DEFER_ACCEPT refused ({}): idle connections take places",
            std::io::Error::last_os_error()
        );
    }
}

/// How long after a failed accept it is tried again.
const RETRY: Duration = Duration::from_millis(100);

/// Accepts the pending connections, [`MAX_CONNS`] at most in one turn (the heads of those
/// already accepted are read between turns); returns when to accept again without a new
/// event (see `accept_again`).
fn accept_all(
    listener: &mio::net::TcpListener,
    poll: &Poll,
    conns: &mut HashMap<usize, Conn>,
    next_id: &mut usize,
    page: &dyn Fn() -> String,
    log: &mut (Option<Instant>, u64),
) -> Option<Duration> {
    let batch = Instant::now();
    for _ in 0..MAX_CONNS {
        let mut stream = match listener.accept() {
            Ok((s, _)) => s,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return None,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                // (tried again every RETRY: said once a minute, with how many failed)
                let now = Instant::now();
                log.1 += 1;
                if log
                    .0
                    .is_none_or(|t| now.duration_since(t) >= Duration::from_secs(60))
                {
                    warn!(
                        "metrics: accept: {e} ({} failed accept(s) since the last such line)",
                        log.1
                    );
                    *log = (Some(now), 0);
                }
                return Some(RETRY);
            }
        };
        if conns.len() >= MAX_CONNS && !make_room(poll, conns, batch, page) {
            continue; // every place is being answered or came in this turn: closed
        }
        *next_id = next_id.wrapping_add(1) % (usize::MAX - 1);
        let id = *next_id;
        if poll
            .registry()
            .register(
                &mut stream,
                Token(id),
                Interest::READABLE | Interest::WRITABLE,
            )
            .is_err()
        {
            continue;
        }
        let now = Instant::now();
        let mut c = Conn {
            stream,
            opened: now,
            deadline: now + DEADLINE,
            head: Vec::with_capacity(512),
            out: None,
            lingering: false,
        };
        // its head may be here already: read it now (the poll also says so)
        // (one handed over with nothing sent is not closed at once for it: past the SYN
        // backlog, syncookies hand connections over at once, scrapers' too)
        if progress(&mut c, page) {
            conns.insert(id, c);
        } else {
            close(poll, Some(c));
        }
    }
    Some(Duration::ZERO)
}

/// Frees a place for a new connection: the oldest connection still sending its head is
/// closed, once what has come on it is read (a scraper whose head has arrived is answered,
/// not closed). Connections accepted in this turn (since `batch`) are never taken: their
/// heads have not been looked at yet, and a fast flood of connects, all in one turn, closed
/// a scraper's unread (review 33). False when no place can be freed.
fn make_room(
    poll: &Poll,
    conns: &mut HashMap<usize, Conn>,
    batch: Instant,
    page: &dyn Fn() -> String,
) -> bool {
    let mut candidates: Vec<(Instant, usize)> = conns
        .iter()
        .filter(|(_, c)| (c.out.is_none() || c.lingering) && c.opened < batch)
        .map(|(&id, c)| (c.opened, id))
        .collect();
    candidates.sort_unstable();
    for (_, id) in candidates {
        let Some(c) = conns.get_mut(&id) else {
            continue;
        };
        // (answered: only the client's leftovers are read still)
        if c.lingering || !progress(c, page) {
            close(poll, conns.remove(&id)); // done or gone: its place is free
            return true;
        }
        if c.out.is_none() {
            close(poll, conns.remove(&id));
            return true;
        }
    }
    false
}

/// Reads what has come and writes what the socket takes; false when the connection is done
/// (answered, gone, or failed) and must be closed.
fn progress(c: &mut Conn, page: &dyn Fn() -> String) -> bool {
    if c.lingering {
        let mut buf = [0u8; 4096];
        // (a bounded share per turn: a client that sends without end waits for its turn)
        for _ in 0..16 {
            match c.stream.read(&mut buf) {
                Ok(0) => return false,
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return true,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        }
        return true;
    }
    if c.out.is_none() {
        let mut buf = [0u8; 1024];
        loop {
            let n = match c.stream.read(&mut buf) {
                Ok(0) => return false,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return true,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => return false,
            };
            match take(&mut c.head, &buf[..n]) {
                Head::More => continue,
                Head::Whole => {
                    c.out = Some((respond(&c.head, page), 0));
                }
                Head::TooLong => {
                    c.out = Some((plain("431 Request Header Fields Too Large", ""), 0));
                }
            }
            c.deadline = Instant::now() + DEADLINE;
            break;
        }
    }
    let Some((out, written)) = c.out.as_mut() else {
        return true;
    };
    while *written < out.len() {
        match c.stream.write(&out[*written..]) {
            Ok(0) => return false,
            Ok(n) => *written += n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return false,
        }
    }
    let _ = c.stream.shutdown(std::net::Shutdown::Write);
    c.lingering = true;
    c.deadline = Instant::now() + LINGER;
    progress(c, page)
}

/// Closes a connection (its socket leaves the poll and is dropped).
fn close(poll: &Poll, c: Option<Conn>) {
    if let Some(mut c) = c {
        let _ = poll.registry().deregister(&mut c.stream);
    }
}

enum Head {
    More,
    Whole,
    TooLong,
}

/// Adds `bytes` to the head read so far; cut at its end when it is whole.
fn take(head: &mut Vec<u8>, bytes: &[u8]) -> Head {
    // the end may straddle two reads
    let from = head.len().saturating_sub(3);
    head.extend_from_slice(bytes);
    if let Some(end) = find(&head[from..], b"\r\n\r\n").or_else(|| find(&head[from..], b"\n\n")) {
        head.truncate(from + end);
        return Head::Whole;
    }
    if head.len() > MAX_HEAD {
        return Head::TooLong;
    }
    Head::More
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

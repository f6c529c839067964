//! The system calls the binary makes through libc, in one place: each wrapper is safe to
//! call and says why its `unsafe` block is sound. Where a well-kept crate covers a call
//! (rustix for files, sockets and credentials; the `inotify` crate for the follower's
//! wake-ups), that crate is used instead; what is left here has no such cover: C library
//! services (`getgrnam`, `getifaddrs`, `localtime_r`, `malloc_trim`) and signals.

use std::net::IpAddr;
use std::os::fd::RawFd;
use std::time::Duration;

/// The numeric id of a group name (through NSS, as `chgrp` resolves it).
pub fn group_id(name: &str) -> Option<u32> {
    id_by_name(name, libc::getgrnam_r, |g| g.gr_gid)
}

/// The numeric id of a user name (through NSS, as `id -u` resolves it).
pub fn user_id(name: &str) -> Option<u32> {
    id_by_name(name, libc::getpwnam_r, |p| p.pw_uid)
}

/// The id `id` reads from the entry `call` (getpwnam_r or getgrnam_r: reentrant, since
/// journal readers look names up on threads of their own) finds for `name`, with a buffer
/// that grows while the entry does not fit (ERANGE, up to 4 MiB). T is `passwd` or `group`.
fn id_by_name<T>(
    name: &str,
    call: unsafe extern "C" fn(
        *const libc::c_char,
        *mut T,
        *mut libc::c_char,
        libc::size_t,
        *mut *mut T,
    ) -> libc::c_int,
    id: fn(&T) -> u32,
) -> Option<u32> {
    let c = std::ffi::CString::new(name).ok()?;
    let mut size = 16 * 1024;
    loop {
        let mut buf = vec![0 as libc::c_char; size];
        // SAFETY: T is `passwd` or `group`, for which all-zero bytes are a valid value (null
        // pointers, zero ids); `call` only fills it.
        let mut entry: T = unsafe { std::mem::zeroed() };
        let mut out: *mut T = std::ptr::null_mut();
        // SAFETY: `call` writes only into `entry` and into `buf`, whose length it is given,
        // and sets `out` to `&entry` or null.
        let rc = unsafe {
            call(
                c.as_ptr(),
                &mut entry,
                buf.as_mut_ptr(),
                buf.len(),
                &mut out,
            )
        };
        if rc == libc::ERANGE && size < 1 << 22 {
            size *= 4;
            continue;
        }
        // the id is read only when the entry was found
        return if rc == 0 && !out.is_null() {
            Some(id(&entry))
        } else {
            None
        };
    }
}

/// The host's own addresses (never banned), from `getifaddrs`. An error when it fails (out
/// of descriptors or memory): an empty list taken for the host's addresses let them be
/// banned, a review found.
pub fn own_addresses() -> std::io::Result<Vec<IpAddr>> {
    let mut out = Vec::new();
    // SAFETY: getifaddrs fills a linked list we free with freeifaddrs; we only read it.
    unsafe {
        let mut ifa: *mut libc::ifaddrs = std::ptr::null_mut();
        if libc::getifaddrs(&mut ifa) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let mut cur = ifa;
        while !cur.is_null() {
            let a = (*cur).ifa_addr;
            if !a.is_null() {
                match i32::from((*a).sa_family) {
                    libc::AF_INET => {
                        let sin = &*(a as *const libc::sockaddr_in);
                        out.push(IpAddr::from(
                            u32::from_be(sin.sin_addr.s_addr).to_be_bytes(),
                        ));
                    }
                    libc::AF_INET6 => {
                        let sin6 = &*(a as *const libc::sockaddr_in6);
                        out.push(IpAddr::from(sin6.sin6_addr.s6_addr));
                    }
                    _ => {}
                }
            }
            cur = (*cur).ifa_next;
        }
        libc::freeifaddrs(ifa);
    }
    Ok(out)
}

/// Local UTC offset in seconds at `secs` (from the C library's time zone rules).
pub fn local_offset(secs: i64) -> i32 {
    // SAFETY: localtime_r writes into the tm we pass; no shared state is kept.
    unsafe {
        let t = secs as libc::time_t;
        let mut tm: libc::tm = std::mem::zeroed();
        if libc::localtime_r(&t, &mut tm).is_null() {
            return 0;
        }
        tm.tm_gmtoff as i32
    }
}

/// The local zone's changes of UTC offset between `from` and `to` (seconds since the
/// epoch), from the C library's rules: looked at once every three days, each change found
/// to the second by bisection (a zone changes its offset a few times a year; two changes
/// within three days would be missed).
pub fn zone_changes(from: i64, to: i64) -> portcullis_core::time::ZoneChanges {
    const STEP: i64 = 3 * 86_400;
    let before = local_offset(from);
    let mut changes = Vec::new();
    let (mut t, mut off) = (from, before);
    while t < to {
        let next = (t + STEP).min(to);
        let o = local_offset(next);
        if o != off {
            // the first second with the new offset, in (t, next]
            let (mut lo, mut hi) = (t, next);
            while hi - lo > 1 {
                let mid = lo + (hi - lo) / 2;
                if local_offset(mid) == off {
                    lo = mid;
                } else {
                    hi = mid;
                }
            }
            changes.push((hi * 1000, o));
            off = o;
        }
        t = next;
    }
    portcullis_core::time::ZoneChanges { before, changes }
}

/// The time now, Unix milliseconds (0 before 1970).
pub fn now_ms() -> portcullis_core::decision::Millis {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Restores the default action of SIGPIPE (end the process quietly), as `cat` has it.
/// Call before any thread starts.
pub fn default_sigpipe() {
    // SAFETY: restoring the default disposition of one signal, before any thread starts;
    // no handler of this program is replaced.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// Raises the soft limit of open files to the hard one (systemd gives a service 1024 and
/// allows 524288): the daemon holds a descriptor per followed file, and a wildcard over a
/// directory a service user owns may match many (a security review filled 1024 with empty
/// files, and every jail went blind). Returns the limit now.
pub fn raise_open_files() -> u64 {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit with a valid pointer to a struct we own.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) != 0 {
            return 0;
        }
        if r.rlim_cur < r.rlim_max {
            let want = libc::rlimit {
                rlim_cur: r.rlim_max,
                rlim_max: r.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &want) == 0 {
                return want.rlim_cur;
            }
        }
    }
    r.rlim_cur
}

/// Returns freed heap pages to the kernel (glibc keeps them otherwise: a restore of 100,000
/// bans or a large listing would stay in the resident size of an idle daemon). Does nothing
/// with another C library.
pub fn trim_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free memory of the allocator.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// True when `fd` has something to read (or an error to report) within `timeout`.
pub fn readable(fd: RawFd, timeout: Duration) -> bool {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    let ms = timeout.as_nanos().div_ceil(1_000_000).min(i32::MAX as u128) as libc::c_int;
    // SAFETY: one valid pollfd, for the duration of the call.
    let n = unsafe { libc::poll(&mut p, 1, ms) };
    n > 0
}

/// Sends `sig` to process `pid` (a child of ours not reaped yet: the caller makes sure).
pub fn kill(pid: u32, sig: libc::c_int) {
    // SAFETY: a plain system call; the caller guarantees the pid still names its child.
    unsafe {
        libc::kill(pid as libc::pid_t, sig);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_among_our_addresses_and_root_is_a_group() {
        let own = own_addresses().unwrap();
        assert!(own.iter().any(|a| a.is_loopback()), "{own:?}");
        assert_eq!(group_id("root"), Some(0));
        assert_eq!(group_id("no-such-group-here"), None);
    }

    #[test]
    fn readable_waits_at_most_its_timeout() {
        let (r, _w) = std::os::unix::net::UnixStream::pair().unwrap();
        use std::os::fd::AsRawFd;
        let t = std::time::Instant::now();
        assert!(!readable(r.as_raw_fd(), Duration::from_millis(50)));
        assert!(t.elapsed() >= Duration::from_millis(40));
    }
}

/// Tells systemd the service's state (`READY=1`, `STOPPING=1`, `STATUS=…`) through the
/// datagram socket named by `$NOTIFY_SOCKET` (a path, or `@name` in the abstract namespace),
/// as `Type=notify` expects; nothing happens when the variable is absent (not started by
/// systemd). Written by hand: the protocol is one datagram, and the sd-notify crates add
/// nothing to that.
pub fn sd_notify(state: &str) -> std::io::Result<()> {
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::net::{SocketAddr, UnixDatagram};
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return Ok(());
    };
    let bytes = std::os::unix::ffi::OsStrExt::as_bytes(path.as_os_str());
    let addr = match bytes.strip_prefix(b"@") {
        Some(name) => SocketAddr::from_abstract_name(name)?,
        None => SocketAddr::from_pathname(std::path::Path::new(&path))?,
    };
    let sock = UnixDatagram::unbound()?;
    sock.send_to_addr(state.as_bytes(), &addr)?;
    Ok(())
}

#[cfg(test)]
mod notify_tests {
    #[test]
    fn sd_notify_sends_one_datagram_to_the_socket() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("notify");
        let server = std::os::unix::net::UnixDatagram::bind(&p).unwrap();
        // (the variable is read by this process only: set for the call and removed)
        // SAFETY: no other thread of this test reads or writes NOTIFY_SOCKET
        unsafe { std::env::set_var("NOTIFY_SOCKET", &p) };
        super::sd_notify("READY=1\nSTATUS=ok").unwrap();
        unsafe { std::env::remove_var("NOTIFY_SOCKET") };
        let mut buf = [0u8; 64];
        let n = server.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1\nSTATUS=ok");
        // without the variable: nothing, no error
        super::sd_notify("READY=1").unwrap();
    }
}

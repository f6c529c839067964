//! The system calls the binary makes through libc, in one place: each wrapper is safe to
//! call and says why its `unsafe` block is sound. Where a well-kept crate covers a call
//! (rustix for files, sockets and credentials; the `inotify` crate for the follower's
//! wake-ups), that crate is used instead; what is left here has no such cover: C library
//! services (`getgrnam`, `getifaddrs`, `localtime_r`, `malloc_trim`) and signals.

use std::net::IpAddr;
use std::os::fd::RawFd;
use std::time::Duration;

/// The numeric id of a group name (through NSS, as `chgrp` resolves it). Reentrant
/// (getgrnam_r): journal readers resolve names on threads of their own.
pub fn group_id(name: &str) -> Option<u32> {
    let c = std::ffi::CString::new(name).ok()?;
    let mut size = 16 * 1024;
    loop {
        let mut buf = vec![0 as libc::c_char; size];
        // SAFETY: all-zero bytes are a valid `group` (null pointers, zero ids); getgrnam_r
        // only fills it.
        let mut g: libc::group = unsafe { std::mem::zeroed() };
        let mut out: *mut libc::group = std::ptr::null_mut();
        // SAFETY: getgrnam_r writes only into `g` and into `buf`, whose length it is given,
        // and sets `out` to `&g` or null; `gr_gid` is read only when it found the group.
        let rc =
            unsafe { libc::getgrnam_r(c.as_ptr(), &mut g, buf.as_mut_ptr(), buf.len(), &mut out) };
        if rc == libc::ERANGE && size < 1 << 22 {
            size *= 4;
            continue;
        }
        // (gr_gid is read only when the group was found)
        return if rc == 0 && !out.is_null() {
            Some(g.gr_gid)
        } else {
            None
        };
    }
}

/// The numeric id of a user name (through NSS, as `id -u` resolves it). Reentrant
/// (getpwnam_r).
pub fn user_id(name: &str) -> Option<u32> {
    let c = std::ffi::CString::new(name).ok()?;
    let mut size = 16 * 1024;
    loop {
        let mut buf = vec![0 as libc::c_char; size];
        // SAFETY: all-zero bytes are a valid `passwd` (null pointers, zero ids); getpwnam_r
        // only fills it.
        let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
        let mut out: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: getpwnam_r writes only into `pw` and into `buf`, whose length it is given,
        // and sets `out` to `&pw` or null; `pw_uid` is read only when it found the user.
        let rc =
            unsafe { libc::getpwnam_r(c.as_ptr(), &mut pw, buf.as_mut_ptr(), buf.len(), &mut out) };
        if rc == libc::ERANGE && size < 1 << 22 {
            size *= 4;
            continue;
        }
        return if rc == 0 && !out.is_null() {
            Some(pw.pw_uid)
        } else {
            None
        };
    }
}

/// The host's own addresses (never banned), from `getifaddrs`.
pub fn own_addresses() -> Vec<IpAddr> {
    let mut out = Vec::new();
    // SAFETY: getifaddrs fills a linked list we free with freeifaddrs; we only read it.
    unsafe {
        let mut ifa: *mut libc::ifaddrs = std::ptr::null_mut();
        if libc::getifaddrs(&mut ifa) != 0 {
            return out;
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
    out
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

/// Restores the default action of SIGPIPE (end the process quietly), as `cat` has it.
/// Call before any thread starts.
pub fn default_sigpipe() {
    // SAFETY: restoring the default disposition of one signal, before any thread starts;
    // no handler of this program is replaced.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
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
        let own = own_addresses();
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

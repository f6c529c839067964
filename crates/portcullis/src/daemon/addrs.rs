//! The host's own addresses, which are never banned: read at start, then again on every
//! address change the kernel announces (rtnetlink `RTMGRP_IPV4_IFADDR` and
//! `RTMGRP_IPV6_IFADDR`), on every reload and at least once a minute (the engine's tick, in
//! case the announcement is lost or the watcher could not start).
//!
//! The watcher does not parse the announcements: any of them makes the engine read the whole
//! list again (`getifaddrs`), which is cheap and always right.

use std::net::IpAddr;
use std::time::Duration;

use rustix::io::Errno;
use rustix::net::netlink::SocketAddrNetlink;
use rustix::net::{AddressFamily, RecvFlags, SocketFlags, SocketType};

use super::{EngineTx, Msg};

/// `RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR` (linux/rtnetlink.h).
const GROUPS: u32 = 0x10 | 0x100;

/// How long the watcher gathers a burst of announcements (an interface coming up brings
/// several) before it tells the engine once.
const SETTLE: Duration = Duration::from_millis(100);

/// The host's own addresses, sorted, without duplicates (IPv4-mapped ones as IPv4); an
/// error when they cannot be read (never an empty list in their place).
pub fn own() -> anyhow::Result<Vec<IpAddr>> {
    let mut v: Vec<IpAddr> = crate::config::own_addresses()
        .map_err(|e| anyhow::anyhow!("cannot read the host's own addresses (getifaddrs): {e}"))?
        .into_iter()
        .map(portcullis_core::addr::normalise)
        .collect();
    v.sort();
    v.dedup();
    Ok(v)
}

/// Starts a thread that sends [`Msg::Addresses`] to the engine after every address change.
/// Fails if the kernel refuses the netlink socket (the minute refresh still runs then).
pub fn watch(engine: EngineTx) -> std::io::Result<()> {
    let fd = rustix::net::socket_with(
        AddressFamily::NETLINK,
        SocketType::RAW,
        SocketFlags::CLOEXEC,
        None, // NETLINK_ROUTE
    )?;
    rustix::net::bind(&fd, &SocketAddrNetlink::new(0, GROUPS))?;
    std::thread::Builder::new()
        .name("addresses".into())
        .spawn(move || {
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                match rustix::net::recv(&fd, &mut buf[..], RecvFlags::empty()) {
                    // ENOBUFS: announcements were lost, so something changed
                    Ok(_) | Err(Errno::NOBUFS) => {}
                    Err(Errno::INTR) => continue,
                    Err(e) => {
                        let _ = engine.send(Msg::Note(format!(
                            "address watcher stopped ({e}); own addresses are read again \
                             each minute and at reload"
                        )));
                        return;
                    }
                }
                std::thread::sleep(SETTLE);
                for _ in 0..1000 {
                    if rustix::net::recv(&fd, &mut buf[..], RecvFlags::DONTWAIT).is_err() {
                        break;
                    }
                }
                if engine.send(Msg::Addresses).is_err() {
                    return;
                }
            }
        })?;
    Ok(())
}

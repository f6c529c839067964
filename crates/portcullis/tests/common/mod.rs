//! Shared helpers for the integration tests. Use with `mod common;` in a test file.
#![allow(dead_code, unused_imports)]

pub mod cli;
pub mod daemon;
pub mod journald;
pub mod netns;
pub mod php_web;
pub mod real;
pub mod server;
pub mod smtp;

pub use cli::*;
pub use daemon::*;
pub use journald::*;
pub use netns::*;
pub use php_web::*;
pub use real::*;
pub use server::*;
pub use smtp::*;

/// A TCP port on 127.0.0.1 that nothing listens on now, for a server a test starts. Taken
/// below the kernel's ephemeral range (`ip_local_port_range`, 32768-60999 by default): a
/// port from `bind(0)` is in that range, and a connection any other test opens meanwhile
/// can take it before the server binds it (a metrics test failed once under load that
/// way, it seems). A random start, probed upwards, so that tests running at once rarely
/// pick the same one.
pub fn free_port() -> u16 {
    use std::hash::{BuildHasher, Hasher};
    const LOW: u32 = 20_000;
    const SPAN: u32 = 12_000;
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    let start = (h.finish() % u64::from(SPAN)) as u32;
    for i in 0..SPAN {
        let port = (LOW + (start + i) % SPAN) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free TCP port on 127.0.0.1 in {LOW}..{}", LOW + SPAN);
}

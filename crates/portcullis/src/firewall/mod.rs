//! Firewall backends behind one small trait.
//!
//! A backend owns its own corner of the firewall (for nftables, one table) and holds one set of
//! banned addresses per jail, with a timeout per element so the kernel lifts a ban by itself
//! even if the daemon is gone. The engine calls [`Firewall::setup`] once at start (and at
//! reload), then [`Firewall::apply`] with batches of [`FwOp`]s; at start it reconciles the
//! store with [`Firewall::list`].
//!
//! Backends build their command input with pure functions, so the exact text sent to the
//! firewall is unit-tested without root.

pub mod nftables;
pub mod null;

use std::net::IpAddr;

use anyhow::{bail, Result};
use portcullis_core::ignore::Cidr;

/// What happens to a packet from a banned address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Silently discard it.
    Drop,
    /// Refuse it: a TCP reset for TCP, an ICMP port-unreachable otherwise.
    Reject,
}

/// Which transport protocols a jail's ports are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    Tcp,
    Udp,
    Both,
}

/// The firewall side of one jail: what to block for its banned addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JailRules {
    /// Jail name: 1 to 64 of `[A-Za-z0-9_-]`.
    pub name: String,
    /// Destination port ranges (inclusive; `(22, 22)` is port 22), or `None` for all ports.
    /// With `None` and [`Proto::Both`], all traffic from a banned address is blocked.
    pub ports: Option<Vec<(u16, u16)>>,
    pub proto: Proto,
    pub action: Action,
}

impl JailRules {
    /// Checks the name and the port ranges.
    pub fn check(&self) -> Result<()> {
        check_jail_name(&self.name)?;
        if let Some(ports) = &self.ports {
            if ports.is_empty() {
                bail!(
                    "jail {}: empty port list (leave ports out to block all ports)",
                    self.name
                );
            }
            if let Some((lo, hi)) = ports.iter().find(|(lo, hi)| lo > hi) {
                bail!("jail {}: port range {lo}-{hi} is backwards", self.name);
            }
        }
        Ok(())
    }
}

/// Checks that `name` can be a jail name: 1 to 64 characters of `[A-Za-z0-9_-]`.
pub fn check_jail_name(name: &str) -> Result<()> {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    if name.is_empty() || name.len() > 64 || !name.chars().all(ok_char) {
        bail!("bad jail name {name:?}: use 1 to 64 letters, digits, '_' or '-'");
    }
    Ok(())
}

/// One change to the banned sets.
///
/// `addr` is an address (/32, /128) or a prefix (`v4_prefix`, `v6_prefix`, `subnet_ban`,
/// CIDR `deny` entries and manual bans): every backend bans the whole prefix in its own
/// syntax (nftables: sets with `flags interval`). The engine never sends overlapping
/// elements of one jail: a wider ban comes with the `Del` of the narrower ones it covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FwOp {
    /// Ban `addr` in `jail` for `timeout_ms` from now; if it is already banned, its timeout is
    /// replaced. A timeout of zero or less removes it instead (the ban is already over).
    /// [`PERMANENT`] means no timeout at all: only an unban lifts it.
    Add {
        jail: String,
        addr: Cidr,
        timeout_ms: i64,
    },
    /// Lift the ban of `addr` in `jail`; nothing happens if it is not banned.
    Del { jail: String, addr: Cidr },
}

/// The `timeout_ms` of a permanent ban (no timeout in the firewall).
pub const PERMANENT: i64 = portcullis_core::decision::FOREVER;

/// True for prefixes that are never banned whatever the caller says: those holding a
/// loopback or the unspecified address (see [`never_ban`]).
pub fn never_ban_prefix(c: Cidr) -> bool {
    if c.is_host() {
        return never_ban(c.addr);
    }
    portcullis_core::ignore::IgnoreList::default()
        .check_prefix(c)
        .is_some()
}

/// A firewall backend.
pub trait Firewall: Send {
    /// Creates or repairs our rules and sets for `jails`. Idempotent; keeps the banned
    /// addresses of jails that are still configured and drops the sets of the others.
    fn setup(&mut self, jails: &[JailRules]) -> Result<()>;
    /// Applies a batch in one transaction: all of it or nothing. Later ops on the same
    /// (jail, address) win.
    fn apply(&mut self, ops: &[FwOp]) -> Result<()>;
    /// Lists what is banned now: jail, address, remaining milliseconds (`None`: no timeout).
    /// Only the tests read the kernel's state back; the daemon's truth is its store.
    #[cfg(test)]
    fn list(&mut self) -> Result<Vec<(String, IpAddr, Option<i64>)>>;
    /// Removes everything of ours from the firewall.
    fn teardown(&mut self) -> Result<()>;
}

/// The form in which an address goes to the firewall: an IPv4-mapped IPv6 address
/// (`::ffff:192.0.2.1`) becomes the IPv4 address, since that is what the packets carry.
pub fn canonical(addr: IpAddr) -> IpAddr {
    addr.to_canonical()
}

/// True for addresses that are never banned whatever the caller says (principle 6, checked
/// again at the firewall boundary): loopback and the unspecified address.
pub fn never_ban(addr: IpAddr) -> bool {
    let addr = canonical(addr);
    addr.is_loopback() || addr.is_unspecified()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jail(name: &str, ports: Option<Vec<(u16, u16)>>) -> JailRules {
        JailRules {
            name: name.into(),
            ports,
            proto: Proto::Tcp,
            action: Action::Drop,
        }
    }

    #[test]
    fn jail_checks() {
        assert!(jail("sshd", Some(vec![(22, 22)])).check().is_ok());
        assert!(jail("0-mail_2", None).check().is_ok());
        assert!(jail("", None).check().is_err());
        assert!(jail("ssh d", None).check().is_err());
        assert!(jail("ssh;drop", None).check().is_err());
        assert!(jail(&"x".repeat(65), None).check().is_err());
        assert!(jail("sshd", Some(vec![])).check().is_err());
        assert!(jail("sshd", Some(vec![(30, 20)])).check().is_err());
    }

    #[test]
    fn never_ban_covers_loopback_in_every_form() {
        for a in [
            "127.0.0.1",
            "127.1.2.3",
            "::1",
            "0.0.0.0",
            "::",
            "::ffff:127.0.0.1",
        ] {
            assert!(never_ban(a.parse().unwrap()), "{a}");
        }
        for a in ["192.0.2.1", "2001:db8::1", "::ffff:192.0.2.1"] {
            assert!(!never_ban(a.parse().unwrap()), "{a}");
        }
    }
}

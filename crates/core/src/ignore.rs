//! Never-ban lists: addresses and CIDR prefixes, plus loopback and the host's own addresses.

use std::net::IpAddr;

/// An address or a CIDR prefix. Ordered by network address, then length (so the prefixes
/// inside another one follow it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    /// Network address (host bits cleared).
    pub addr: IpAddr,
    /// Prefix length.
    pub len: u8,
}

impl Cidr {
    /// The order's key: the family (IPv4 first, as `IpAddr` orders), the address as a
    /// number (as `Ipv4Addr` and `Ipv6Addr` order: their bytes in turn), the length.
    #[inline]
    fn order_key(&self) -> (bool, u128, u8) {
        match self.addr {
            IpAddr::V4(a) => (false, u128::from(u32::from(a)), self.len),
            IpAddr::V6(a) => (true, u128::from(a), self.len),
        }
    }
}

/// The order the derived one gave (address, then length), compared as numbers: a
/// tracker's ban table is searched by it for every failure (the derived order compared the
/// addresses a byte at a time).
impl Ord for Cidr {
    fn cmp(&self, other: &Cidr) -> std::cmp::Ordering {
        self.order_key().cmp(&other.order_key())
    }
}

impl PartialOrd for Cidr {
    fn partial_cmp(&self, other: &Cidr) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// Why a never-ban entry cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CidrError {
    /// Neither an address nor a CIDR.
    #[error("{0:?} is not an IP address or CIDR (e.g. \"192.0.2.7\", \"198.51.100.0/24\", \"2001:db8::/32\"); host names are not accepted")]
    NotAnAddress(String),
    /// A prefix length beyond the address's bits.
    #[error("{text:?}: prefix length must be 0..={max}")]
    PrefixLength {
        /// The entry.
        text: String,
        /// 32 or 128.
        max: u8,
    },
}

impl Cidr {
    /// Parses `203.0.113.0/24`, `2001:db8::/32` or a single address.
    pub fn parse(text: &str) -> Result<Cidr, CidrError> {
        let t = text.trim();
        let (a, l) = match t.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (t, None),
        };
        let addr = crate::addr::parse(a.as_bytes())
            .ok_or_else(|| CidrError::NotAnAddress(text.to_string()))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        // an IPv4-mapped IPv6 prefix (`::ffff:198.51.100.0/120`) is the IPv4 prefix: its
        // length counts 128 bits, of which the first 96 are the mapping
        let mapped = addr.is_ipv4() && a.contains(':');
        let bad = || CidrError::PrefixLength {
            text: text.to_string(),
            max: if mapped { 128 } else { max },
        };
        let len = match l {
            None => max,
            Some(l) if mapped => l
                .parse::<u8>()
                .ok()
                .filter(|&n| (96..=128).contains(&n))
                .map(|n| n - 96)
                .ok_or_else(bad)?,
            Some(l) => l.parse::<u8>().ok().filter(|&n| n <= max).ok_or_else(bad)?,
        };
        Ok(Cidr {
            addr: mask(addr, len),
            len,
        })
    }

    /// The prefix `ip/len` with its host bits cleared, or `None` when `len` is longer than
    /// the address. An IPv4-mapped IPv6 prefix of /96 or longer becomes the IPv4 prefix.
    pub fn new(ip: IpAddr, len: u8) -> Option<Cidr> {
        let (ip, len) = match ip {
            IpAddr::V6(v6) if len >= 96 && v6.to_ipv4_mapped().is_some() => {
                (crate::addr::normalise(ip), len - 96)
            }
            _ => (ip, len),
        };
        let max = if ip.is_ipv4() { 32 } else { 128 };
        (len <= max).then(|| Cidr {
            addr: mask(ip, len),
            len,
        })
    }

    /// The prefix that holds `ip` alone (/32 or /128).
    pub fn host(ip: IpAddr) -> Cidr {
        let ip = crate::addr::normalise(ip);
        Cidr {
            addr: ip,
            len: if ip.is_ipv4() { 32 } else { 128 },
        }
    }

    /// Whether this is a single address (/32 or /128).
    pub fn is_host(&self) -> bool {
        self.len == if self.addr.is_ipv4() { 32 } else { 128 }
    }

    /// The last address of the prefix.
    pub fn last(&self) -> IpAddr {
        match self.addr {
            IpAddr::V4(v) => {
                let host = u32::MAX.checked_shr(u32::from(self.len)).unwrap_or(0);
                IpAddr::V4((u32::from(v) | host).into())
            }
            IpAddr::V6(v) => {
                let host = u128::MAX.checked_shr(u32::from(self.len)).unwrap_or(0);
                IpAddr::V6((u128::from(v) | host).into())
            }
        }
    }

    /// True when `other` lies wholly inside this prefix (or is it).
    pub fn covers(&self, other: &Cidr) -> bool {
        self.len <= other.len && self.overlaps(other)
    }

    /// True when `ip` is inside this prefix.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = crate::addr::normalise(ip);
        ip.is_ipv4() == self.addr.is_ipv4() && mask(ip, self.len) == self.addr
    }

    /// True when the two prefixes share at least one address (one holds the other).
    pub fn overlaps(&self, other: &Cidr) -> bool {
        let len = self.len.min(other.len);
        self.addr.is_ipv4() == other.addr.is_ipv4() && mask(self.addr, len) == mask(other.addr, len)
    }
}

/// Loopback and the unspecified addresses, as prefixes.
const LOOPBACK: [Cidr; 4] = [
    Cidr {
        addr: IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 0)),
        len: 8,
    },
    Cidr {
        addr: IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
        len: 32,
    },
    Cidr {
        addr: IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
        len: 128,
    },
    Cidr {
        addr: IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
        len: 128,
    },
];

/// `ip` with all but its first `len` bits cleared (a shift by the full width gives 0).
fn mask(ip: IpAddr, len: u8) -> IpAddr {
    let len = u32::from(len);
    match ip {
        IpAddr::V4(v) => {
            let m = u32::MAX.checked_shl(32 - len).unwrap_or(0);
            IpAddr::V4((u32::from(v) & m).into())
        }
        IpAddr::V6(v) => {
            let m = u128::MAX.checked_shl(128 - len).unwrap_or(0);
            IpAddr::V6((u128::from(v) & m).into())
        }
    }
}

/// A single address is written without its length (`192.0.2.7`), a prefix in CIDR form
/// (`2001:db8:5:6::/64`).
impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.is_host() {
            write!(f, "{}", self.addr)
        } else {
            write!(f, "{}/{}", self.addr, self.len)
        }
    }
}

/// Why an address must not be banned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// 127.0.0.0/8, ::1, or unspecified.
    Loopback,
    /// One of the host's own addresses.
    Own,
    /// Listed in an `ignore` setting.
    Listed(Cidr),
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reason::Loopback => write!(f, "it is a loopback address"),
            Reason::Own => write!(f, "it is one of this host's own addresses"),
            Reason::Listed(c) => write!(f, "it is in the ignore list ({c})"),
        }
    }
}

/// A never-ban list.
#[derive(Debug, Clone, Default)]
pub struct IgnoreList {
    cidrs: Vec<Cidr>,
    own: Vec<IpAddr>,
    /// [`IgnoreList::check`] passes own addresses (`ignore_self = false`: their failures
    /// count); [`IgnoreList::check_prefix`] still refuses prefixes holding them.
    count_own: bool,
}

impl IgnoreList {
    /// A list of the given prefixes and own addresses (loopback is always included).
    pub fn new(cidrs: Vec<Cidr>, own: Vec<IpAddr>) -> Self {
        IgnoreList {
            cidrs,
            own: own.into_iter().map(crate::addr::normalise).collect(),
            count_own: false,
        }
    }

    /// The same list, but the failures of own addresses count ([`IgnoreList::check`] lets
    /// them through): `ignore_self = false`. A ban never holds them either way, and a prefix
    /// ban is still narrowed around them ([`IgnoreList::check_prefix`]). (Left out of the
    /// list instead, a subnet ban over an own address was dropped whole, after the bans it
    /// replaced had been lifted, a review found.)
    pub fn counting_own(mut self) -> Self {
        self.count_own = true;
        self
    }

    /// Adds prefixes (e.g. a jail's own `ignore` on top of the global one).
    pub fn extended(&self, more: &[Cidr]) -> Self {
        let mut l = self.clone();
        l.cidrs.extend_from_slice(more);
        l
    }

    /// Why a failure of `ip` must not count, or `None` when it may.
    pub fn check(&self, ip: IpAddr) -> Option<Reason> {
        let ip = crate::addr::normalise(ip);
        if ip.is_loopback() || ip.is_unspecified() {
            return Some(Reason::Loopback);
        }
        if !self.count_own && self.own.contains(&ip) {
            return Some(Reason::Own);
        }
        self.cidrs
            .iter()
            .find(|c| c.contains(ip))
            .map(|c| Reason::Listed(*c))
    }

    /// Every prefix [`IgnoreList::check_prefix`] refuses to overlap: loopback and the
    /// unspecified addresses, the own addresses, the listed prefixes.
    pub fn regions(&self) -> Vec<Cidr> {
        LOOPBACK
            .iter()
            .copied()
            .chain(self.own.iter().map(|&a| Cidr::host(a)))
            .chain(self.cidrs.iter().copied())
            .collect()
    }

    /// Why a ban of the whole `prefix` must not stand, or `None` when it may: it holds a
    /// loopback or unspecified address, one of the host's own addresses, or an address of a
    /// listed prefix. For a single address (`Cidr::host`) this is [`IgnoreList::check`].
    pub fn check_prefix(&self, prefix: Cidr) -> Option<Reason> {
        if LOOPBACK.iter().any(|l| l.overlaps(&prefix)) {
            return Some(Reason::Loopback);
        }
        if self.own.iter().any(|&o| prefix.contains(o)) {
            return Some(Reason::Own);
        }
        self.cidrs
            .iter()
            .find(|c| c.overlaps(&prefix))
            .map(|c| Reason::Listed(*c))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn cidrs() {
        let c = Cidr::parse("198.51.100.77/24").unwrap();
        assert_eq!(c.to_string(), "198.51.100.0/24");
        assert!(c.contains(ip("198.51.100.1")));
        assert!(c.contains(ip("::ffff:198.51.100.1")));
        assert!(!c.contains(ip("198.51.101.1")));
        assert!(!c.contains(ip("2001:db8::1")));
        let c6 = Cidr::parse("2001:db8::/32").unwrap();
        assert!(c6.contains(ip("2001:db8:1::5")));
        let e = Cidr::parse("example.com").unwrap_err();
        assert!(matches!(e, CidrError::NotAnAddress(_)) && e.to_string().contains("host names"));
        assert!(matches!(
            Cidr::parse("192.0.2.0/33").unwrap_err(),
            CidrError::PrefixLength { max: 32, .. }
        ));
        assert!(Cidr::parse("1.2.3.4/33").is_err());
    }

    #[test]
    fn a_mapped_prefix_is_the_ipv4_prefix() {
        let p = |s: &str| Cidr::parse(s).unwrap();
        assert_eq!(p("::ffff:198.51.100.0/120"), p("198.51.100.0/24"));
        assert_eq!(p("::FFFF:203.0.113.7"), p("203.0.113.7"));
        assert_eq!(p("::ffff:0:0/96"), p("0.0.0.0/0"));
        assert_eq!(p("::ffff:cb00:7100/120"), p("203.0.113.0/24"));
        assert!(matches!(
            Cidr::parse("::ffff:198.51.100.0/95"),
            Err(CidrError::PrefixLength { max: 128, .. })
        ));
        assert!(Cidr::parse("::ffff:198.51.100.0/129").is_err());
    }

    #[test]
    fn loopback_own_and_listed() {
        let l = IgnoreList::new(
            vec![Cidr::parse("192.0.2.0/24").unwrap()],
            vec![ip("203.0.113.1")],
        );
        assert_eq!(l.check(ip("127.0.0.5")), Some(Reason::Loopback));
        assert_eq!(l.check(ip("::1")), Some(Reason::Loopback));
        assert_eq!(l.check(ip("203.0.113.1")), Some(Reason::Own));
        assert!(matches!(l.check(ip("192.0.2.9")), Some(Reason::Listed(_))));
        assert_eq!(l.check(ip("198.51.100.9")), None);
    }

    /// `ignore_self = false`: an own address's failures count, but a prefix holding it is
    /// still refused (so a subnet ban is narrowed around it, not dropped).
    #[test]
    fn counting_own_lets_failures_count_but_never_a_prefix_over_them() {
        let l = IgnoreList::new(vec![], vec![ip("203.0.113.1")]).counting_own();
        assert_eq!(l.check(ip("203.0.113.1")), None);
        assert_eq!(l.check(ip("127.0.0.1")), Some(Reason::Loopback));
        let p = |s: &str| Cidr::parse(s).unwrap();
        assert_eq!(l.check_prefix(p("203.0.113.0/24")), Some(Reason::Own));
        assert_eq!(l.extended(&[]).check(ip("203.0.113.1")), None);
    }

    #[test]
    fn a_prefix_that_holds_a_never_ban_address_is_refused() {
        let l = IgnoreList::new(
            vec![Cidr::parse("192.0.2.128/25").unwrap()],
            vec![ip("203.0.113.1"), ip("2001:db8:1::5")],
        );
        let p = |s: &str| Cidr::parse(s).unwrap();
        // a /24 that holds an ignored /25, and a /26 inside it
        assert_eq!(
            l.check_prefix(p("192.0.2.0/24")),
            Some(Reason::Listed(p("192.0.2.128/25")))
        );
        assert!(l.check_prefix(p("192.0.2.192/26")).is_some());
        assert_eq!(l.check_prefix(p("192.0.2.0/25")), None);
        // own addresses inside a v4 /24 and a v6 /64
        assert_eq!(l.check_prefix(p("203.0.113.0/24")), Some(Reason::Own));
        assert_eq!(l.check_prefix(p("2001:db8:1::/64")), Some(Reason::Own));
        assert_eq!(l.check_prefix(p("2001:db8:2::/64")), None);
        // loopback and unspecified, also inside wide prefixes and in mapped form
        assert_eq!(l.check_prefix(p("127.1.0.0/16")), Some(Reason::Loopback));
        assert_eq!(l.check_prefix(p("0.0.0.0/0")), Some(Reason::Loopback));
        assert_eq!(l.check_prefix(p("::/64")), Some(Reason::Loopback));
        let mapped = Cidr::new(ip("::ffff:127.0.0.1"), 120).unwrap();
        assert_eq!(mapped, p("127.0.0.0/24"));
        assert_eq!(l.check_prefix(mapped), Some(Reason::Loopback));
        // a single address: the same answer as `check`
        for a in [
            "192.0.2.200",
            "192.0.2.7",
            "203.0.113.1",
            "::1",
            "::ffff:192.0.2.130",
        ] {
            assert_eq!(l.check_prefix(Cidr::host(ip(a))), l.check(ip(a)), "{a}");
        }
        assert_eq!(Cidr::new(ip("192.0.2.1"), 33), None);
    }

    proptest::proptest! {
        /// The numeric order is the order derived from the fields (address, then length).
        #[test]
        fn cidrs_order_as_their_fields_do(
            a in proptest::prelude::any::<(bool, u128, u8)>(),
            b in proptest::prelude::any::<(bool, u128, u8)>(),
            same_addr in proptest::prelude::any::<bool>(),
        ) {
            let cidr = |(v6, n, len): (bool, u128, u8)| Cidr {
                addr: if v6 {
                    IpAddr::V6(n.into())
                } else {
                    IpAddr::V4((n as u32).into())
                },
                len,
            };
            let (x, mut y) = (cidr(a), cidr(b));
            if same_addr {
                y.addr = x.addr;
            }
            let want = x.addr.cmp(&y.addr).then(x.len.cmp(&y.len));
            proptest::prop_assert_eq!(x.cmp(&y), want);
            proptest::prop_assert_eq!(x.partial_cmp(&y), Some(want));
        }
    }
}

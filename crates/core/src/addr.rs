//! Address parsing for ban targets: only real IPv4/IPv6 addresses, normalised.
//!
//! `::ffff:a.b.c.d` becomes `a.b.c.d`, a `%scope` suffix is removed, brackets around an
//! IPv6 address are accepted. A host name or anything else is never an address.

use std::net::{IpAddr, Ipv4Addr};

/// Parses `text` as an IP address to ban, normalising it. Returns `None` for anything that
/// is not a literal address.
pub fn parse(text: &[u8]) -> Option<IpAddr> {
    let mut t = text;
    if let [b'[', inner @ .., b']'] = t {
        t = inner;
    }
    // (most addresses are dotted quads, which hold no '%': read before looking for one)
    if t.len() <= 15 {
        if let Some(v4) = parse_v4(t) {
            return Some(IpAddr::V4(v4));
        }
    }
    // (a plain loop: addresses are short, and a vector search's setup costs more)
    if let Some(i) = crate::bytes::find(b'%', t) {
        t = &t[..i];
    }
    if t.is_empty() || t.len() > 45 {
        return None;
    }
    if let Some(v4) = parse_v4(t) {
        return Some(IpAddr::V4(v4));
    }
    let s = std::str::from_utf8(t).ok()?;
    let ip: IpAddr = s.parse().ok()?;
    Some(normalise(ip))
}

/// Whether `ip` is link-local (fe80::/10, 169.254.0.0/16): the same prefix on every link.
pub fn is_link_local(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => a.is_link_local(),
        IpAddr::V6(a) => a.segments()[0] & 0xffc0 == 0xfe80,
    }
}

/// Maps IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`) to IPv4; other addresses unchanged.
pub fn normalise(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    }
}

/// Fast dotted-quad parser (no leading zeros beyond a single `0`, each part 0..=255).
fn parse_v4(t: &[u8]) -> Option<Ipv4Addr> {
    let digit = |i: usize| match t.get(i) {
        Some(&d @ b'0'..=b'9') => Some(u32::from(d - b'0')),
        _ => None,
    };
    let mut parts = [0u8; 4];
    let mut i = 0;
    for (k, part) in parts.iter_mut().enumerate() {
        if k > 0 {
            if t.get(i) != Some(&b'.') {
                return None;
            }
            i += 1;
        }
        let mut v = digit(i)?;
        i += 1;
        if let Some(d) = digit(i) {
            if v == 0 {
                return None; // leading zero: ambiguous (octal in some parsers)
            }
            v = v * 10 + d;
            i += 1;
            if let Some(d) = digit(i) {
                v = v * 10 + d;
                i += 1;
                if v > 255 {
                    return None;
                }
            }
        }
        *part = v as u8;
    }
    (i == t.len()).then(|| Ipv4Addr::from(parts))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Option<String> {
        parse(s.as_bytes()).map(|a| a.to_string())
    }

    #[test]
    fn ipv4_plain_and_invalid() {
        assert_eq!(p("203.0.113.5").as_deref(), Some("203.0.113.5"));
        assert_eq!(p("0.0.0.0").as_deref(), Some("0.0.0.0"));
        assert_eq!(p("256.1.1.1"), None);
        assert_eq!(p("1.2.3"), None);
        assert_eq!(p("1.2.3.4.5"), None);
        assert_eq!(p("01.2.3.4"), None);
        assert_eq!(p("1..3.4"), None);
        assert_eq!(p(""), None);
        // each length a dotted quad can have (7 to 15 bytes), and its ends
        assert_eq!(p("1.2.3.4").as_deref(), Some("1.2.3.4"));
        assert_eq!(p("10.2.3.4").as_deref(), Some("10.2.3.4"));
        assert_eq!(p("1.2.3.40").as_deref(), Some("1.2.3.40"));
        assert_eq!(p("10.35.146.217").as_deref(), Some("10.35.146.217"));
        assert_eq!(p("255.255.255.255").as_deref(), Some("255.255.255.255"));
        assert_eq!(p("255.255.255.256"), None);
        assert_eq!(p("1.2.3.04"), None);
        assert_eq!(p("1.2.3."), None);
        assert_eq!(p(".1.2.3"), None);
        assert_eq!(p("1.2.3.4."), None);
        assert_eq!(p("1.2.3:4"), None);
        assert_eq!(p("1.2.3.4/"), None);
    }

    #[test]
    fn ipv6_mapped_scoped_bracketed() {
        assert_eq!(p("::ffff:198.51.100.7").as_deref(), Some("198.51.100.7"));
        assert_eq!(p("2001:db8::1").as_deref(), Some("2001:db8::1"));
        assert_eq!(p("fe80::1%eth0").as_deref(), Some("fe80::1"));
        assert_eq!(p("[2001:db8::2]").as_deref(), Some("2001:db8::2"));
        assert_eq!(p("2001:DB8::A").as_deref(), Some("2001:db8::a"));
    }

    #[test]
    fn hostnames_are_never_addresses() {
        assert_eq!(p("example.com"), None);
        assert_eq!(p("host-1.2.3.4.example"), None);
        assert_eq!(p("localhost"), None);
        assert_eq!(p("1.2.3.4 "), None);
        assert_eq!(p("gggg::1"), None);
    }

    /// Every byte value in every place of a few quads, and appended to them, against the
    /// standard library: exhaustive next to real addresses (a digit range one byte too wide
    /// takes `1.2.3.4:` for an address).
    #[test]
    fn every_byte_in_every_place_of_a_quad() {
        let std = |t: &[u8]| {
            std::str::from_utf8(t)
                .ok()
                .and_then(|s| s.parse::<Ipv4Addr>().ok())
        };
        for quad in [
            "1.2.3.4",
            "12.34.56.78",
            "10.35.146.217",
            "255.255.255.255",
            "0.0.0.0",
        ] {
            for i in 0..=quad.len() {
                for b in 0..=255u8 {
                    let mut t = quad.as_bytes().to_vec();
                    match t.get_mut(i) {
                        Some(c) => *c = b,
                        None => t.push(b),
                    }
                    assert_eq!(parse_v4(&t), std(&t), "{t:?}");
                }
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn dotted_quads_parse_as_the_standard_library_parses_them(
            t in "[0-9]{0,4}(\\.[0-9]{0,4}){0,5}[.a]?"
        ) {
            // (the standard parser also refuses leading zeros)
            let want = t.parse::<Ipv4Addr>().ok();
            proptest::prop_assert_eq!(parse_v4(t.as_bytes()), want, "{}", t);
        }
    }
}

//! One fleet entry: a ban or unban one node publishes, signed with HMAC-SHA256 under the
//! fleet's shared key over a canonical encoding, and checked by every reader.
//!
//! On the wire (a stream entry's one field `e`, and the values of the current-state hash)
//! an entry is a JSON object; the signature covers the canonical encoding
//! ([`Entry::canonical`]): a version tag, the key prefix (so an entry cannot be moved to
//! another fleet sharing the key), then each field as a 4-byte big-endian length and its
//! bytes. Nothing in the JSON is trusted before the signature checks.
//!
//! Versions: an entry of one address is version 1 (`"addr": "192.0.2.7"`, the format of
//! the first fleet release, so that nodes of both releases share address bans); an entry
//! of a prefix is version 2 (`"addr": "2001:db8:5:6::/64"`, always with its length). The
//! version is the first thing signed (`portcullis-fleet-v1` / `-v2`), and the address text
//! must be canonical: the network address with its host bits cleared, as Rust writes it
//! (no IPv4-mapped IPv6, no leading zeros), so that one ban has exactly one signed form.

use std::net::IpAddr;

use portcullis_core::ignore::Cidr;

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use portcullis_core::decision::Millis;

use super::config::valid_name;

type HmacSha256 = Hmac<Sha256>;

/// Ban or unban.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A ban until `until`.
    Ban,
    /// The origin lifted its ban.
    Unban,
}

/// A fleet entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Format version: 1 for an address, 2 for a prefix ([`version`]).
    pub v: u32,
    /// Ban or unban.
    pub kind: Kind,
    /// The address (/32, /128) or prefix.
    #[serde(with = "cidr_text")]
    pub addr: Cidr,
    /// The jail.
    pub jail: String,
    /// End of the ban, ms since the epoch (0 for an unban).
    pub until: Millis,
    /// Why (free text, at most 200 bytes).
    pub reason: String,
    /// Weighted failures that led to it.
    pub failures: u32,
    /// The publishing node.
    pub node: String,
    /// When the entry was made, ms since the epoch.
    pub time: Millis,
    /// HMAC-SHA256 of the canonical encoding, hex.
    #[serde(default)]
    pub sig: String,
}

/// Why an entry read from Redis was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bad {
    /// Not JSON, or fields out of range.
    Malformed,
    /// No signature.
    Unsigned,
    /// The signature does not check (another key, or changed fields).
    Forged,
}

/// The entry version for a ban of `addr`: 1 for one address, 2 for a prefix.
pub fn version(addr: &Cidr) -> u32 {
    if addr.is_host() {
        1
    } else {
        2
    }
}

/// Strict parsing of an entry's address: `ADDR` (one address) or `NET/LEN` (a prefix),
/// in canonical text only.
pub fn parse_addr(text: &str) -> Option<Cidr> {
    let (a, len) = match text.split_once('/') {
        None => (text, None),
        Some((a, l)) => {
            // digits only: no sign, no spaces, no leading zero
            if l.is_empty() || l.len() > 3 || !l.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            if l.len() > 1 && l.starts_with('0') {
                return None;
            }
            (a, Some(l.parse::<u8>().ok()?))
        }
    };
    let ip: IpAddr = a.parse().ok()?;
    if ip.to_string() != a {
        return None;
    }
    if let IpAddr::V6(v6) = ip {
        if v6.to_ipv4_mapped().is_some() {
            return None; // an IPv4 address is written as one
        }
    }
    let max = if ip.is_ipv4() { 32 } else { 128 };
    if len == Some(max) {
        return None; // one address is written alone
    }
    let c = Cidr::new(ip, len.unwrap_or(max))?;
    // the network address itself, host bits cleared
    (c.addr == ip).then_some(c)
}

/// `addr` as text: what [`Cidr`]'s `Display` writes (an address alone, a prefix with its
/// length), read back with [`parse_addr`].
mod cidr_text {
    use portcullis_core::ignore::Cidr;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(c: &Cidr, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(c)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Cidr, D::Error> {
        let t = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        super::parse_addr(&t).ok_or_else(|| serde::de::Error::custom("not a canonical address"))
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

impl Entry {
    /// The bytes the signature covers.
    pub fn canonical(&self, prefix: &str) -> Vec<u8> {
        let mut out = format!("portcullis-fleet-v{}", self.v).into_bytes();
        let kind = match self.kind {
            Kind::Ban => "ban",
            Kind::Unban => "unban",
        };
        for f in [
            prefix.to_string(),
            kind.to_string(),
            self.addr.to_string(),
            self.jail.clone(),
            self.until.to_string(),
            self.reason.clone(),
            self.failures.to_string(),
            self.node.clone(),
            self.time.to_string(),
        ] {
            out.extend_from_slice(&(f.len() as u32).to_be_bytes());
            out.extend_from_slice(f.as_bytes());
        }
        out
    }

    fn mac(&self, key: &[u8], prefix: &str) -> HmacSha256 {
        let mut m = HmacSha256::new_from_slice(key).expect("HMAC takes any key length");
        m.update(&self.canonical(prefix));
        m
    }

    /// Signs the entry in place.
    pub fn sign(&mut self, key: &[u8], prefix: &str) {
        self.sig = hex(&self.mac(key, prefix).finalize().into_bytes());
    }

    /// The JSON text.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("an entry always encodes")
    }

    /// The current-state hash field of this entry: `node|jail|addr`.
    pub fn field(&self) -> String {
        format!("{}|{}|{}", self.node, self.jail, self.addr)
    }

    /// Parses and checks an entry read from Redis: shape, then signature (in constant time).
    pub fn verify(text: &str, key: &[u8], prefix: &str) -> Result<Entry, Bad> {
        let e: Entry = serde_json::from_str(text).map_err(|_| Bad::Malformed)?;
        if e.v != version(&e.addr)
            || !valid_name(&e.node)
            || !valid_name(&e.jail)
            || e.reason.len() > 200
            || e.time <= 0
            || (e.kind == Kind::Ban && e.until <= 0)
        {
            return Err(Bad::Malformed);
        }
        if e.sig.is_empty() {
            return Err(Bad::Unsigned);
        }
        let sig = unhex(&e.sig).ok_or(Bad::Forged)?;
        e.mac(key, prefix)
            .verify_slice(&sig)
            .map_err(|_| Bad::Forged)?;
        Ok(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> Entry {
        Entry {
            v: 1,
            kind: Kind::Ban,
            addr: Cidr::parse("192.0.2.7").unwrap(),
            jail: "sshd".into(),
            until: 2_000_000,
            reason: "brute force".into(),
            failures: 5,
            node: "web1".into(),
            time: 1_000_000,
            sig: String::new(),
        }
    }

    const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";

    #[test]
    fn signed_entries_check_and_changed_ones_do_not() {
        let mut e = entry();
        e.sign(KEY, "p");
        assert_eq!(Entry::verify(&e.to_json(), KEY, "p"), Ok(e.clone()));
        // another key, another fleet prefix
        assert_eq!(
            Entry::verify(&e.to_json(), b"another key another key another k", "p"),
            Err(Bad::Forged)
        );
        assert_eq!(Entry::verify(&e.to_json(), KEY, "q"), Err(Bad::Forged));
        // each field is covered
        for change in [
            |e: &mut Entry| e.addr = Cidr::parse("192.0.2.8").unwrap(),
            |e: &mut Entry| e.jail = "web".into(),
            |e: &mut Entry| e.until += 1,
            |e: &mut Entry| e.reason.push('x'),
            |e: &mut Entry| e.failures += 1,
            |e: &mut Entry| e.node = "web2".into(),
            |e: &mut Entry| e.time += 1,
            |e: &mut Entry| e.kind = Kind::Unban,
        ] {
            let mut f = e.clone();
            change(&mut f);
            assert_eq!(Entry::verify(&f.to_json(), KEY, "p"), Err(Bad::Forged));
        }
        let mut u = e.clone();
        u.sig.clear();
        assert_eq!(Entry::verify(&u.to_json(), KEY, "p"), Err(Bad::Unsigned));
        assert_eq!(Entry::verify("{", KEY, "p"), Err(Bad::Malformed));
        let mut bad = e.clone();
        bad.node = "a|b".into();
        bad.sign(KEY, "p");
        assert_eq!(Entry::verify(&bad.to_json(), KEY, "p"), Err(Bad::Malformed));
    }

    #[test]
    fn prefixes_are_version_2_and_canonical() {
        let mut e = entry();
        e.addr = Cidr::parse("2001:db8:5:6::/64").unwrap();
        e.v = version(&e.addr);
        e.sign(KEY, "p");
        let json = e.to_json();
        assert!(json.contains(r#""v":2"#) && json.contains(r#""addr":"2001:db8:5:6::/64""#));
        assert_eq!(Entry::verify(&json, KEY, "p"), Ok(e.clone()));
        // the length is signed: the same entry widened does not check
        let wider = json.replace("::/64", "::/63");
        assert_eq!(Entry::verify(&wider, KEY, "p"), Err(Bad::Forged));
        // a v1 entry is one address; a version that does not fit its address is malformed
        let as_v1 = json.replace(r#""v":2"#, r#""v":1"#);
        assert_eq!(Entry::verify(&as_v1, KEY, "p"), Err(Bad::Malformed));
        let mut host = entry();
        host.v = 2;
        host.sign(KEY, "p");
        assert_eq!(
            Entry::verify(&host.to_json(), KEY, "p"),
            Err(Bad::Malformed)
        );
        // old single-address entries still read (the first release's exact form)
        let mut old = entry();
        old.sign(KEY, "p");
        assert!(old
            .to_json()
            .contains(r#""v":1,"kind":"ban","addr":"192.0.2.7","#));
        assert!(old.canonical("p").starts_with(b"portcullis-fleet-v1"));
        assert_eq!(Entry::verify(&old.to_json(), KEY, "p"), Ok(old));
        // non-canonical address texts are refused
        for (text, ok) in [
            ("2001:db8:5:6::/64", true),
            ("198.51.100.0/24", true),
            ("192.0.2.7", true),
            ("2001:db8::1", true),
            ("198.51.100.1/24", false), // host bits set
            ("2001:db8:5:6::1/64", false),
            ("2001:DB8:5:6::/64", false), // not as written canonically
            ("2001:0db8:5:6::/64", false),
            ("198.51.100.0/024", false),
            ("198.51.100.0/+24", false),
            ("198.51.100.0/", false),
            ("198.51.100.0/33", false),
            ("2001:db8::/129", false),
            ("::ffff:192.0.2.7", false), // IPv4-mapped
            ("::ffff:192.0.2.0/120", false),
            (" 192.0.2.7", false),
            ("192.0.2.07", false),
            ("192.0.2.0/24/1", false),
        ] {
            assert_eq!(parse_addr(text).is_some(), ok, "{text}");
        }
        // /32 and /128 written with their length: not the canonical (v1) form of an address
        assert_eq!(parse_addr("192.0.2.7/32"), None);
        assert_eq!(parse_addr("2001:db8::1/128"), None);
    }

    #[test]
    fn the_widest_prefixes_a_signed_entry_may_name_are_refused() {
        // a compromised node signs what it likes: the reader's bound (min_prefix_v4/v6,
        // default /16 and /32, see the config tests) and the engine's never-ban check (for
        // an admin who set the bound to 0) stop the widest
        for (text, never) in [
            ("0.0.0.0/0", true),
            ("::/0", true),
            ("0.0.0.0/1", true),    // holds 127.0.0.0/8
            ("::/96", true),        // holds ::1
            ("128.0.0.0/1", false), // only the bound stops it
        ] {
            let c = parse_addr(text).unwrap_or_else(|| panic!("{text}"));
            assert_eq!(crate::firewall::never_ban_prefix(c), never, "{text}");
        }
        // IPv4 in IPv6 clothes, in any spelling, is not an entry's address
        for text in [
            "::ffff:127.0.0.1",
            "::ffff:127.0.0.0/104",
            "::ffff:0.0.0.0/96",
            "::ffff:7f00:1",
            "::127.0.0.1",
            "0:0:0:0:0:ffff:7f00:1",
        ] {
            assert_eq!(parse_addr(text), None, "{text}");
        }
    }

    #[test]
    fn the_encoding_is_unambiguous() {
        // moving bytes between fields changes the signed bytes
        let mut a = entry();
        a.reason = "ab".into();
        a.node = "c".into();
        let mut b = entry();
        b.reason = "a".into();
        b.node = "bc".into();
        assert_ne!(a.canonical("p"), b.canonical("p"));
    }
}

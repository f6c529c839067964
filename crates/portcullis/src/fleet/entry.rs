//! One fleet entry: a ban or unban one node publishes, signed with HMAC-SHA256 under the
//! fleet's shared key over a canonical encoding, and checked by every reader.
//!
//! On the wire (a stream entry's one field `e`, and the values of the current-state hash)
//! an entry is a JSON object; the signature covers the canonical encoding
//! ([`Entry::canonical`]): a version tag, the key prefix (so an entry cannot be moved to
//! another fleet sharing the key), then each field as a 4-byte big-endian length and its
//! bytes. Nothing in the JSON is trusted before the signature checks.

use std::net::IpAddr;

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
    /// Format version (1).
    pub v: u32,
    /// Ban or unban.
    pub kind: Kind,
    /// The address.
    pub addr: IpAddr,
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
        let mut out = b"portcullis-fleet-v1".to_vec();
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
        if e.v != 1
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
            addr: "192.0.2.7".parse().unwrap(),
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
            |e: &mut Entry| e.addr = "192.0.2.8".parse().unwrap(),
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

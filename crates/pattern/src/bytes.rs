//! Small byte-string helpers: compare and search for the hot path (the strings compared and
//! searched there are short: literals, program names, fields of a prefix, where a call into
//! `memcmp` or a vector search costs more than the work), and the one FNV-1a hash.

/// `a == b`, eight bytes at a time for short slices (a plain loop beats `memcmp` there).
#[inline(always)]
pub fn eq(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    let word = |s: &[u8], i: usize| u64::from_le_bytes(s[i..i + 8].try_into().unwrap());
    if n >= 8 {
        if n > 32 {
            return a == b;
        }
        let mut i = 0;
        while i + 8 <= n {
            if word(a, i) != word(b, i) {
                return false;
            }
            i += 8;
        }
        // the last 8 bytes (overlapping the words already compared)
        word(a, n - 8) == word(b, n - 8)
    } else {
        let mut i = 0;
        while i < n {
            if a[i] != b[i] {
                return false;
            }
            i += 1;
        }
        true
    }
}

/// `memchr`, with a plain loop for short haystacks.
#[inline(always)]
pub fn find(b: u8, hay: &[u8]) -> Option<usize> {
    if hay.len() <= 24 {
        hay.iter().position(|&c| c == b)
    } else {
        memchr::memchr(b, hay)
    }
}

/// `memrchr`, with a plain loop for short haystacks.
#[inline(always)]
pub fn rfind(b: u8, hay: &[u8]) -> Option<usize> {
    if hay.len() <= 24 {
        hay.iter().rposition(|&c| c == b)
    } else {
        memchr::memrchr(b, hay)
    }
}

/// FNV-1a (64 bit): a fixed hash, the same in every process and build (stored checkpoint
/// fingerprints, the fingerprints of generated code), and quick for short keys.
#[derive(Debug, Clone, Copy)]
pub struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl std::hash::Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
}

/// [`Fnv`] of `bytes`.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    use std::hash::Hasher;
    let mut h = Fnv::default();
    h.write(bytes);
    h.finish()
}

/// The bytes of `tail` (at most 8: the rest of a key hashed 8 bytes at a time) as a
/// little-endian integer, the missing high bytes zero. Read from the slice itself, as two
/// loads that overlap (its first and last 4 bytes, or 2, or the one byte) ORed in place: the
/// bytes both loads hold are the same bytes, in the same place. Copying them into an 8-byte
/// buffer and loading that stalls the load until the copy's stores retire (about 15 cycles
/// on every hashed key); a loop over the bytes costs 7 instructions a byte.
#[inline]
pub fn le_tail(tail: &[u8]) -> u64 {
    debug_assert!(tail.len() <= 8);
    let tail = &tail[..tail.len().min(8)];
    let n = tail.len();
    if n >= 4 {
        let first = u32::from_le_bytes(tail[..4].try_into().expect("4 bytes"));
        let last = u32::from_le_bytes(tail[n - 4..].try_into().expect("4 bytes"));
        u64::from(first) | (u64::from(last) << (8 * (n - 4)))
    } else if n >= 2 {
        let first = u16::from_le_bytes(tail[..2].try_into().expect("2 bytes"));
        let last = u16::from_le_bytes(tail[n - 2..].try_into().expect("2 bytes"));
        u64::from(first) | (u64::from(last) << (8 * (n - 2)))
    } else {
        tail.first().map_or(0, |&b| u64::from(b))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn le_tail_is_the_zero_padded_little_endian_value() {
        for n in 0..=8 {
            let b: Vec<u8> = (1..=n as u8).map(|i| i * 17).collect();
            let mut buf = [0u8; 8];
            buf[..n].copy_from_slice(&b);
            assert_eq!(le_tail(&b), u64::from_le_bytes(buf), "{n}");
            // (and every byte value in every place)
            for i in 0..n {
                for v in 0..=255u8 {
                    let mut c = b.clone();
                    c[i] = v;
                    buf[i] = v;
                    assert_eq!(le_tail(&c), u64::from_le_bytes(buf), "{n} {i} {v}");
                    buf[i] = b[i];
                }
            }
        }
    }

    #[test]
    fn fnv1a_is_the_standard_one() {
        // the published test vectors of 64-bit FNV-1a
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn eq_agrees_with_slice_equality() {
        let text = b"abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz";
        for n in 0..text.len() {
            for i in 0..n {
                let mut other = text[..n].to_vec();
                assert!(eq(&text[..n], &other));
                other[i] ^= 1;
                assert!(!eq(&text[..n], &other), "{n} {i}");
            }
            assert!(!eq(&text[..n], &text[..n.saturating_sub(1)]) || n == 0);
        }
    }

    #[test]
    fn find_and_rfind_agree_with_memchr() {
        let hay = b"a b  c d e f g h i j k l m n o p q r s t u v w x y z";
        for n in 0..hay.len() {
            for b in [b' ', b'a', b'z', b'!'] {
                assert_eq!(find(b, &hay[..n]), memchr::memchr(b, &hay[..n]));
                assert_eq!(rfind(b, &hay[..n]), memchr::memrchr(b, &hay[..n]));
            }
        }
    }
}

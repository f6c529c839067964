//! Small byte-string helpers for the hot path: the strings compared and searched there are
//! short (literals, program names, fields of a prefix), where a call into `memcmp` or a
//! vector search costs more than the work.

/// `a == b`, eight bytes at a time for short slices.
#[inline(always)]
pub(crate) fn eq(a: &[u8], b: &[u8]) -> bool {
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
pub(crate) fn find(b: u8, hay: &[u8]) -> Option<usize> {
    if hay.len() <= 24 {
        hay.iter().position(|&c| c == b)
    } else {
        memchr::memchr(b, hay)
    }
}

/// `memrchr`, with a plain loop for short haystacks.
#[inline(always)]
pub(crate) fn rfind(b: u8, hay: &[u8]) -> Option<usize> {
    if hay.len() <= 24 {
        hay.iter().rposition(|&c| c == b)
    } else {
        memchr::memrchr(b, hay)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

//! What a "line" is, the same for every reader: the daemon's file follower and journal
//! readers, and `replay` / `test`.
//!
//! A line is the bytes before a `\n`, less one `\r` just before it. A line longer than the
//! limit (`max_line`, [`DEFAULT_MAX_LINE`] unless configured) is neither dropped nor matched
//! whole: it is matched on its first [`head_len`] bytes followed by its last
//! `max_line - head_len` bytes ([`cut`]), and every such line is counted and reported. So an
//! attacker who pads a request to make its log line long is still counted (the address and
//! the request are at the start of the line, the status and the user agent at its end), and
//! every reader holds at most `max_line` bytes of a line, however long it is.
//!
//! Joining the head and the tail can only remove text from the middle of a line: what a
//! pattern finds in the cut line is text the program wrote, at the place it wrote it
//! relative to the start (head) or to the end (tail) of its line.

use std::borrow::Cow;

/// Default longest line matched whole, in bytes. A request line of 8 KiB and 32 KiB of
/// headers (nginx's default buffers; Apache's limits are alike) make an access-log line of up
/// to 160 KiB once escaped (`\xHH`), and a JSON log escapes a byte into up to 6; Go servers
/// (Traefik) take 1 MiB of headers. Lines that long are matched whole under this limit; each
/// followed file holds at most about this much of a line, and only while one is that long.
pub const DEFAULT_MAX_LINE: usize = 1 << 20;

/// Smallest limit accepted: a line prefix (time, host, program) and some message.
pub const MIN_MAX_LINE: usize = 1024;

/// Largest limit accepted (each followed file may hold that much of a line).
pub const MAX_MAX_LINE: usize = 64 << 20;

/// How many leading bytes of a long line are kept: half the limit (the rest is its tail).
pub fn head_len(max_line: usize) -> usize {
    max_line / 2
}

/// `line` without one trailing `\r`.
pub fn strip_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// The bytes of `line` that are matched: the line itself when it has at most `max_line`
/// bytes, else its first [`head_len`] bytes followed by its last `max_line - head_len`.
/// `line` is taken after [`strip_cr`].
pub fn cut(line: &[u8], max_line: usize) -> Cow<'_, [u8]> {
    if line.len() <= max_line {
        return Cow::Borrowed(line);
    }
    let head = head_len(max_line);
    let tail = max_line - head;
    let mut v = Vec::with_capacity(max_line);
    v.extend_from_slice(&line[..head]);
    v.extend_from_slice(&line[line.len() - tail..]);
    Cow::Owned(v)
}

/// A line as every reader prepares it for matching: [`strip_cr`], its leading NUL bytes
/// left out, then [`cut`]. The flag says whether it was cut.
///
/// (NULs before a line: a writer that does not append (`prog > file.log`) writes on at its
/// old offset after `copytruncate` emptied the file, and the hole it leaves reads as NULs,
/// with no line end before its first line: that line was read with them and never matched,
/// review 59. No program writes a line that starts with NULs, and no client writes the start
/// of a line.)
pub fn prepare(line: &[u8], max_line: usize) -> (Cow<'_, [u8]>, bool) {
    let line = strip_cr(line);
    let line = &line[line.iter().position(|&b| b != 0).unwrap_or(line.len())..];
    (cut(line, max_line), line.len() > max_line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_lines_are_kept_long_ones_keep_head_and_tail() {
        assert_eq!(&*cut(b"0123456789", 10), b"0123456789");
        assert!(matches!(cut(b"0123456789", 10), Cow::Borrowed(_)));
        assert_eq!(&*cut(b"0123456789A", 10), b"012346789A");
        assert_eq!(&*cut(b"abcdefghijklmnopqrstuvwxyz", 7), b"abcwxyz");
        assert_eq!(cut(&[b'x'; 100_000], 1000).len(), 1000);
    }

    #[test]
    fn prepare_leaves_out_the_nuls_of_a_hole_before_a_line() {
        let mut l = vec![0u8; 5000];
        l.extend_from_slice(
            b"Dec  7 07:00:01 h sshd[9]: Failed password for root from 203.0.113.5 port 22 ssh2\r",
        );
        let (p, was_cut) = prepare(&l, 1024);
        assert!(!was_cut);
        assert!(p.starts_with(b"Dec  7 07:00:01 h sshd[9]: "), "{p:?}");
        assert_eq!(prepare(&[0, 0, 0], 1024).0.as_ref(), b"");
        // NULs inside a line are the line's
        assert_eq!(prepare(b"a\0b", 1024).0.as_ref(), b"a\0b");
    }

    #[test]
    fn prepare_strips_one_cr_before_cutting() {
        assert_eq!(prepare(b"abc\r", 3), (Cow::Borrowed(&b"abc"[..]), false));
        assert_eq!(prepare(b"ab\r\r", 3).0.as_ref(), b"ab\r");
        assert_eq!(
            prepare(b"abcdefgh\r", 4),
            (Cow::Owned(b"abgh".to_vec()), true)
        );
    }
}

//! Reading lines from files or stdin in large buffers, without an allocation per line.

use std::io::{self, Read};

/// Calls `f` for every line of `r` (without the newline). Reads 1 MiB at a time; a final
/// line without a newline is delivered too.
pub fn for_each_line(mut r: impl Read, mut f: impl FnMut(&[u8])) -> io::Result<u64> {
    let mut buf = vec![0u8; 1 << 20];
    let mut filled = 0;
    let mut lines = 0;
    loop {
        if filled == buf.len() {
            // a line longer than the buffer: grow (bounded by the input itself)
            buf.resize(buf.len() * 2, 0);
        }
        let n = match r.read(&mut buf[filled..]) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if n == 0 {
            if filled > 0 {
                f(&buf[..filled]);
                lines += 1;
            }
            return Ok(lines);
        }
        filled += n;
        let mut start = 0;
        for end in memchr::memchr_iter(b'\n', &buf[..filled]) {
            f(&buf[start..end]);
            lines += 1;
            start = end + 1;
        }
        buf.copy_within(start..filled, 0);
        filled -= start;
    }
}

/// Opens `path`, or stdin for `-` / `None`.
pub fn open(path: Option<&std::path::Path>) -> anyhow::Result<Box<dyn Read>> {
    use anyhow::Context;
    match path {
        None => Ok(Box::new(io::stdin().lock())),
        Some(p) if p.as_os_str() == "-" => Ok(Box::new(io::stdin().lock())),
        Some(p) => Ok(Box::new(
            std::fs::File::open(p).with_context(|| format!("cannot open {}", p.display()))?,
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_lines_across_reads() {
        let data = b"a\nbb\n\nccc";
        let mut got = Vec::new();
        let n = for_each_line(&data[..], |l| got.push(l.to_vec())).unwrap();
        assert_eq!(n, 4);
        assert_eq!(
            got,
            vec![b"a".to_vec(), b"bb".to_vec(), b"".to_vec(), b"ccc".to_vec()]
        );
    }
}

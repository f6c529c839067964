//! Reading lines from files or stdin in large buffers, without an allocation per line.

use std::io::{self, Read};

use portcullis_core::prefix::Parsed;

/// Calls `f` for every line of `r` (without the newline). Reads 1 MiB at a time; a final
/// line without a newline is delivered too.
pub fn for_each_line(mut r: impl Read, f: impl FnMut(&[u8])) -> io::Result<u64> {
    split_lines(1 << 20, |buf| r.read(buf), f)
}

/// Calls `f` for every line of the byte range `start..end` of `file` (without the newline),
/// reading 128 KiB at a time at explicit offsets (a buffer that stays in the core's cache
/// while its lines are matched), so that several threads can each read their own range of
/// one file. `start` and `end` should be line starts (or the end of the file);
/// a last line of the range without a newline is delivered too.
pub fn for_each_line_in_range(
    file: &std::fs::File,
    start: u64,
    end: u64,
    f: impl FnMut(&[u8]),
) -> io::Result<u64> {
    use std::os::unix::fs::FileExt;
    let mut off = start;
    let size = (1usize << 17).min((end.saturating_sub(start) as usize).max(1));
    let read = |buf: &mut [u8]| -> io::Result<usize> {
        let want = ((end - off) as usize).min(buf.len());
        if want == 0 {
            return Ok(0);
        }
        let n = file.read_at(&mut buf[..want], off)?;
        off += n as u64;
        if super::progress::active() {
            super::progress::add_bytes(n as u64);
        }
        Ok(n)
    };
    split_lines(size, read, f)
}

/// Reads `r` in chunks of about `size` bytes that end at a line end (a line longer than
/// `size` makes a longer chunk) and hands each to `f`, which returns false to stop.
pub fn for_each_chunk(
    mut r: impl Read,
    size: usize,
    mut f: impl FnMut(Vec<u8>) -> bool,
) -> io::Result<()> {
    let mut carry: Vec<u8> = Vec::new();
    loop {
        let mut chunk = std::mem::take(&mut carry);
        let start = chunk.len();
        chunk.resize(start + size, 0);
        let mut filled = start;
        while filled < chunk.len() {
            match r.read(&mut chunk[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        chunk.truncate(filled);
        if super::progress::active() {
            super::progress::add_lines(memchr::memchr_iter(b'\n', &chunk[start..]).count() as u64);
        }
        if filled == start {
            // end of input: what is left is a last line without a newline
            if !chunk.is_empty() {
                f(chunk);
            }
            return Ok(());
        }
        if let Some(nl) = memchr::memrchr(b'\n', &chunk) {
            carry = chunk[nl + 1..].to_vec();
            chunk.truncate(nl + 1);
            if !f(chunk) {
                return Ok(());
            }
        } else {
            carry = chunk; // no line end yet: read more into the same line
        }
    }
}

/// The shared loop: fill a buffer with `read` (0 = end), hand out complete lines, keep the
/// partial last line for the next read, grow the buffer for a line longer than it.
fn split_lines(
    size: usize,
    mut read: impl FnMut(&mut [u8]) -> io::Result<usize>,
    mut f: impl FnMut(&[u8]),
) -> io::Result<u64> {
    let mut buf = vec![0u8; size];
    let mut filled = 0;
    let mut lines = 0;
    loop {
        if filled == buf.len() {
            // a line longer than the buffer: grow (bounded by the input itself)
            buf.resize(buf.len() * 2, 0);
        }
        let n = match read(&mut buf[filled..]) {
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
        let before = lines;
        for end in memchr::memchr_iter(b'\n', &buf[..filled]) {
            f(&buf[start..end]);
            lines += 1;
            start = end + 1;
        }
        if super::progress::active() {
            super::progress::add_lines(lines - before);
        }
        buf.copy_within(start..filled, 0);
        filled -= start;
    }
}

/// The start of the first line that begins at or after `at` in `file` (`len` if none).
pub fn next_line_start(file: &std::fs::File, at: u64, len: u64) -> io::Result<u64> {
    use std::os::unix::fs::FileExt;
    if at == 0 {
        return Ok(0);
    }
    // the line containing byte at-1 ends at the first newline from at-1 on
    let mut pos = at - 1;
    let mut buf = [0u8; 4096];
    while pos < len {
        let n = match file.read_at(&mut buf[..((len - pos) as usize).min(4096)], pos) {
            Ok(0) => return Ok(len),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if let Some(i) = memchr::memchr(b'\n', &buf[..n]) {
            return Ok(pos + i as u64 + 1);
        }
        pos += n as u64;
    }
    Ok(len)
}

/// Opens `path`, or stdin for `-` / `None`, as text: a gzip stream (a rotated
/// `auth.log.2.gz`) is decompressed, other compressed or binary input is refused with a
/// message that says what to do.
pub fn open(path: Option<&std::path::Path>) -> anyhow::Result<Box<dyn Read>> {
    use anyhow::Context;
    let (name, raw): (String, Box<dyn Read>) = match path {
        None => ("standard input".into(), Box::new(io::stdin().lock())),
        Some(p) if p.as_os_str() == "-" => ("standard input".into(), Box::new(io::stdin().lock())),
        Some(p) => (
            p.display().to_string(),
            Box::new(Counted(
                std::fs::File::open(p).with_context(|| format!("cannot open {}", p.display()))?,
            )),
        ),
    };
    let mut r = io::BufReader::with_capacity(1 << 16, raw);
    let head = io::BufRead::fill_buf(&mut r).with_context(|| format!("cannot read {name}"))?;
    match content_kind(head) {
        Content::Text => Ok(Box::new(r)),
        Content::Gzip => Ok(Box::new(GzipText {
            inner: flate2::bufread::MultiGzDecoder::new(r),
            name,
        })),
        other => Err(refusal(&name, &other)),
    }
}

/// A file whose reads are counted for the progress bar (compressed bytes for `.gz`: the
/// bar's total is the files' sizes).
struct Counted(std::fs::File);

impl Read for Counted {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.0.read(buf)?;
        if super::progress::active() {
            super::progress::add_bytes(n as u64);
        }
        Ok(n)
    }
}

/// Whether the log file `path` is gzip-compressed (and must then be read in order through
/// [`open`], not at offsets); binary and other compressed files are refused as by [`open`].
pub fn is_gzip(path: &std::path::Path) -> anyhow::Result<bool> {
    use anyhow::Context;
    let mut head = [0u8; 8192];
    let mut f =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut n = 0;
    while n < head.len() {
        match f.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    }
    match content_kind(&head[..n]) {
        Content::Text => Ok(false),
        Content::Gzip => Ok(true),
        other => Err(refusal(&path.display().to_string(), &other)),
    }
}

/// The error for input that is not a text log.
fn refusal(name: &str, what: &Content) -> anyhow::Error {
    match what {
        Content::Compressed(tool) => anyhow::anyhow!(
            "{name} is compressed with {tool}; decompress it first, e.g. `{tool} -dc FILE | portcullis ... -`"
        ),
        _ => anyhow::anyhow!(
            "{name} is a binary file, not a text log (journald's own files are read with `journalctl`, e.g. `journalctl -u ssh --output=short-iso | portcullis ... -`)"
        ),
    }
}

/// What the first bytes of an input say it is.
#[derive(Debug, PartialEq, Eq)]
enum Content {
    Text,
    Gzip,
    /// Compressed with a tool we do not decompress (its command name).
    Compressed(&'static str),
    Binary,
}

fn content_kind(head: &[u8]) -> Content {
    const MAGIC: &[(&[u8], &str)] = &[
        (b"\xfd7zXZ\x00", "xz"),
        (b"BZh", "bzip2"),
        (b"\x28\xb5\x2f\xfd", "zstd"),
        (b"\x04\x22\x4d\x18", "lz4"),
    ];
    if head.starts_with(&[0x1f, 0x8b]) {
        return Content::Gzip;
    }
    if let Some((_, tool)) = MAGIC.iter().find(|(m, _)| head.starts_with(m)) {
        return Content::Compressed(tool);
    }
    // a NUL in the first block: no log writes those (journal files, databases, images do)
    let probe = &head[..head.len().min(8192)];
    if memchr::memchr(0, probe).is_some() {
        return Content::Binary;
    }
    Content::Text
}

/// A gzip stream whose decoding errors name the file.
struct GzipText<R> {
    inner: R,
    name: String,
}

impl<R: Read> Read for GzipText<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("{}: not a valid gzip stream: {e}", self.name),
            )
        })
    }
}

/// A chunk of lines (from [`for_each_chunk`]) prepared once by the reader for the threads
/// that match lines by session ([`portcullis_core::filter::session_shard`]): each line is cut
/// as the daemon cuts it, its prefix parsed once, and listed for the thread of its shard, so
/// that no thread reads, splits or parses the lines of the others' sessions.
pub struct Sorted {
    /// The chunk, then the cut copies of its lines longer than the limit.
    buf: Vec<u8>,
    /// Per shard, its lines in input order.
    shards: Vec<Vec<SortedLine>>,
    /// How many lines the chunk holds.
    pub lines: u32,
}

#[derive(Clone, Copy)]
struct SortedLine {
    at: u32,
    start: usize,
    end: usize,
    cut: bool,
    /// `None` for a partial record (CRI `P`, an unfinished Docker record), when asked to
    /// tell them; else the prefix as offsets, `None` inside when a field lay outside the line
    /// (then the line is parsed again where it is matched).
    parsed: Option<Option<ParsedAt>>,
}

/// One line of a [`Sorted`] chunk, as its shard's thread gets it.
pub struct ShardLine<'a> {
    /// The line's number in its chunk (from 0).
    pub at: u32,
    /// The line as prepared ([`crate::sources::line::prepare`]: cut when too long).
    pub line: &'a [u8],
    /// Whether it was cut.
    pub cut: bool,
    /// Its prefix; `None` for a partial record.
    pub parsed: Option<Parsed<'a>>,
}

impl Sorted {
    /// Splits `chunk` into lines (a last line without a newline too), prepares each with
    /// `max_line`, parses its prefix and lists it for its shard of `shards`. With
    /// `partial_records`, partial records are not parsed and go to shard 0.
    pub fn new(chunk: Vec<u8>, max_line: usize, shards: usize, partial_records: bool) -> Sorted {
        use portcullis_core::filter::session_shard;
        let shards_n = shards.max(1);
        let mut per: Vec<Vec<SortedLine>> = (0..shards_n)
            .map(|_| Vec::with_capacity(chunk.len() / 96 / shards_n + 16))
            .collect();
        let mut extra: Vec<u8> = Vec::new();
        let mut n = 0u32;
        let mut start = 0;
        let last = (chunk.last() != Some(&b'\n') && !chunk.is_empty()).then_some(chunk.len());
        let len = chunk.len();
        for end in memchr::memchr_iter(b'\n', &chunk).chain(last) {
            let at = n;
            n += 1;
            let raw = &chunk[start..end];
            let (line, cut) = crate::sources::line::prepare(raw, max_line);
            // where the prepared line lies: in the chunk, or (cut) in `extra`
            let (ls, le) = match &line {
                std::borrow::Cow::Borrowed(b) => {
                    let s = b.as_ptr() as usize - chunk.as_ptr() as usize;
                    (s, s + b.len())
                }
                std::borrow::Cow::Owned(o) => {
                    let s = len + extra.len();
                    extra.extend_from_slice(o);
                    (s, s + o.len())
                }
            };
            start = end + 1;
            if partial_records && portcullis_core::prefix::is_partial_record(&line) {
                per[0].push(SortedLine {
                    at,
                    start: ls,
                    end: le,
                    cut,
                    parsed: None,
                });
                continue;
            }
            let parsed = portcullis_core::prefix::parse(&line);
            let shard = session_shard(&parsed, shards_n);
            per[shard].push(SortedLine {
                at,
                start: ls,
                end: le,
                cut,
                parsed: Some(ParsedAt::of(&line, &parsed)),
            });
        }
        let mut buf = chunk;
        buf.extend_from_slice(&extra);
        Sorted {
            buf,
            shards: per,
            lines: n,
        }
    }

    /// The lines of `shard`, in input order.
    pub fn lines_of(&self, shard: usize) -> impl Iterator<Item = ShardLine<'_>> {
        self.shards.get(shard).into_iter().flatten().map(|l| {
            let line = &self.buf[l.start..l.end];
            ShardLine {
                at: l.at,
                line,
                cut: l.cut,
                parsed: l.parsed.map(|p| match p {
                    Some(p) => p.get(line),
                    None => portcullis_core::prefix::parse(line),
                }),
            }
        })
    }
}

/// A line's prefix fields ([`Parsed`]) as offsets into the line, so that one thread parses
/// the prefix and another matches the line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct ParsedAt {
    stamp: Option<portcullis_core::time::Stamp>,
    host: Option<(u32, u32)>,
    program: Option<(u32, u32)>,
    pid: u32,
    message: (u32, u32),
}

impl ParsedAt {
    /// `None` when a field is not a part of `line` (then the line must be parsed again).
    fn of(line: &[u8], p: &Parsed<'_>) -> Option<ParsedAt> {
        fn span(line: &[u8], s: &[u8]) -> Option<(u32, u32)> {
            let off = (s.as_ptr() as usize).checked_sub(line.as_ptr() as usize)?;
            let end = off.checked_add(s.len())?;
            if end > line.len() {
                return None;
            }
            Some((u32::try_from(off).ok()?, u32::try_from(end).ok()?))
        }
        let opt = |f: Option<&[u8]>| match f {
            None => Some(None),
            Some(s) => span(line, s).map(Some),
        };
        Some(ParsedAt {
            stamp: p.stamp,
            host: opt(p.host)?,
            program: opt(p.program)?,
            pid: p.pid,
            message: span(line, p.message)?,
        })
    }

    /// The fields again, borrowing `line` (the line they were taken from).
    fn get<'a>(&self, line: &'a [u8]) -> Parsed<'a> {
        let at = |(s, e): (u32, u32)| &line[s as usize..e as usize];
        Parsed {
            stamp: self.stamp,
            host: self.host.map(at),
            program: self.program.map(at),
            pid: self.pid,
            message: at(self.message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_end_at_line_ends_and_keep_every_byte() {
        let mut data = Vec::new();
        for i in 0..1000 {
            data.extend_from_slice(format!("line {i} {}\n", "x".repeat(i % 37)).as_bytes());
        }
        data.extend_from_slice(&[b'y'; 300]); // a long last line without a newline
        for size in [1, 7, 64, 1000, 1 << 20] {
            let mut got = Vec::new();
            for_each_chunk(&data[..], size, |c| {
                assert!(
                    c.ends_with(b"\n") || c.ends_with(b"y"),
                    "chunk ends inside a line"
                );
                got.extend_from_slice(&c);
                true
            })
            .unwrap();
            assert_eq!(got, data, "size {size}");
        }
    }

    #[test]
    fn content_is_told_by_its_first_bytes() {
        assert_eq!(
            content_kind(b"Nov 21 10:00:01 h sshd[1]: x\n"),
            Content::Text
        );
        assert_eq!(content_kind(b""), Content::Text);
        assert_eq!(content_kind(&[0x1f, 0x8b, 8, 0]), Content::Gzip);
        assert_eq!(content_kind(b"\xfd7zXZ\x00\x00"), Content::Compressed("xz"));
        assert_eq!(content_kind(b"BZh91AY"), Content::Compressed("bzip2"));
        assert_eq!(content_kind(b"LPKSHHRH\x00\x00\x00"), Content::Binary);
    }

    #[test]
    fn gzip_logs_are_read_as_text_and_binary_files_refused() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let text = "line one\nline two\n".repeat(1000);
        let gz = dir.path().join("auth.log.2.gz");
        // two members, as `cat a.gz b.gz` makes: both are read
        let mut data = Vec::new();
        for part in [&text[..text.len() / 2], &text[text.len() / 2..]] {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(part.as_bytes()).unwrap();
            data.extend(e.finish().unwrap());
        }
        std::fs::write(&gz, &data).unwrap();
        assert!(is_gzip(&gz).unwrap());
        let mut got = String::new();
        open(Some(&gz)).unwrap().read_to_string(&mut got).unwrap();
        assert_eq!(got, text);
        let bin = dir.path().join("system.journal");
        std::fs::write(&bin, b"LPKSHHRH\x00\x00\x00\x00more").unwrap();
        let e = format!("{:#}", open(Some(&bin)).err().unwrap());
        assert!(
            e.contains("binary file") && e.contains("system.journal"),
            "{e}"
        );
        let plain = dir.path().join("auth.log");
        std::fs::write(&plain, &text).unwrap();
        assert!(!is_gzip(&plain).unwrap());
        let e = format!("{:#}", is_gzip(&bin).unwrap_err());
        assert!(e.contains("binary file"), "{e}");
    }

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

    /// Every prefix form of the samples gives back the same fields from its offsets.
    #[test]
    fn parsed_offsets_give_back_the_parse() {
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../filters");
        let mut lines: Vec<Vec<u8>> = vec![
            b"".to_vec(),
            b"   ".to_vec(),
            b"no prefix at all".to_vec(),
            b"Nov 21 10:00:01 web1 sshd[1]: Failed password for root from 203.0.113.5 port 22 ssh2  ".to_vec(),
            b"<38>1 2026-11-21T10:00:01.123Z web1 sshd 42 - - Failed password".to_vec(),
            b"2026-11-21T10:00:01.123456+01:00 stderr F Nov 21 10:00:01 web1 sshd[7]: x".to_vec(),
            b"{\"log\":\"Failed password\\n\",\"stream\":\"stderr\",\"time\":\"2026-11-21T10:00:01Z\"}".to_vec(),
            b"@400000006a1b2c3d0000000a sshd[1]: x".to_vec(),
        ];
        let mut n = 0;
        for e in std::fs::read_dir(root).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "log") {
                let text = std::fs::read(&p).unwrap();
                lines.extend(text.split(|&b| b == b'\n').map(<[u8]>::to_vec));
                n += 1;
            }
        }
        assert!(n > 100, "{n} sample files");
        let mut outside = 0;
        for l in &lines {
            let p = portcullis_core::prefix::parse(l);
            match ParsedAt::of(l, &p) {
                Some(at) => assert_eq!(at.get(l), p, "{}", String::from_utf8_lossy(l)),
                None => outside += 1,
            }
        }
        assert!(outside * 100 < lines.len(), "{outside} of {}", lines.len());
    }

    /// A sorted chunk holds every line once, prepared and parsed as one reader would, each
    /// with its shard's thread, in order; partial records go to the first.
    #[test]
    fn sorted_chunks_list_every_line_for_its_shard() {
        use crate::sources::line;
        let mut data = Vec::new();
        for i in 0..500u32 {
            let l = match i % 5 {
                0 => format!("Nov 21 10:00:01 web{} sshd[{}]: line {i}\n", i % 3, i % 17),
                1 => format!("bare line {i}\r\n"),
                2 => format!(
                    "Nov 21 10:00:01 web1 sshd: no pid {i} {}\n",
                    "x".repeat(i as usize)
                ),
                3 => {
                    "2026-11-21T10:00:01.1Z stdout P Nov 21 10:00:01 h sshd[3]: part\n".to_string()
                }
                _ => "\n".to_string(),
            };
            data.extend_from_slice(l.as_bytes());
        }
        data.extend_from_slice(b"Nov 21 10:00:01 h sshd[9]: last, no newline");
        let mut want = Vec::new();
        for_each_line(&data[..], |l| want.push(l.to_vec())).unwrap();
        for (shards, partial) in [(1, false), (3, true), (4, false)] {
            let max = 300;
            let s = Sorted::new(data.clone(), max, shards, partial);
            assert_eq!(s.lines as usize, want.len());
            let mut seen = vec![false; want.len()];
            for w in 0..shards {
                let mut last = None;
                for l in s.lines_of(w) {
                    assert!(last < Some(l.at), "in order");
                    last = Some(l.at);
                    let raw = &want[l.at as usize];
                    let (prepared, cut) = line::prepare(raw, max);
                    assert_eq!((l.line, l.cut), (&prepared[..], cut));
                    if partial && portcullis_core::prefix::is_partial_record(&prepared) {
                        assert!(l.parsed.is_none());
                        assert_eq!(w, 0);
                    } else {
                        let p = portcullis_core::prefix::parse(&prepared);
                        assert_eq!(l.parsed, Some(p));
                        assert_eq!(portcullis_core::filter::session_shard(&p, shards), w);
                    }
                    seen[l.at as usize] = true;
                }
            }
            assert!(seen.iter().all(|&b| b), "every line once");
        }
    }
}

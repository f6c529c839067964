//! Reading lines from files or stdin in large buffers, without an allocation per line.

use std::io::{self, Read};

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

/// The streams of one log whose last container runtime's record was a partial record
/// ([`portcullis_core::prefix::container_record`]): that record, and the next record of
/// its stream, which ends its line (it starts wherever the runtime's cut fell, maybe in
/// client text), are read by no jail, as in the daemon's jails; the other stream's records
/// between are read. Kept in order by whoever reads the log's lines in order.
#[derive(Debug, Default)]
pub struct Held([bool; 4]);

impl Held {
    /// Whether the line whose record `c` is (`container_record`'s answer) is left unread;
    /// follows the log's state.
    pub fn unread(&mut self, c: Option<(u8, bool)>) -> bool {
        match c {
            Some((s, true)) => {
                self.0[usize::from(s) & 3] = true;
                true
            }
            Some((s, false)) => std::mem::take(&mut self.0[usize::from(s) & 3]),
            None => false,
        }
    }
}

/// Whether `chunk` may hold a container runtime's record (a cheap look, two passes over
/// the chunk, for what each holds before a line is split: CRI's ` stdout `/` stderr `,
/// Docker's `{"log":`).
pub fn may_hold_container_records(chunk: &[u8]) -> bool {
    memchr::memmem::find(chunk, b" std").is_some()
        || memchr::memmem::find(chunk, br#"{"log":"#).is_some()
}

/// What one thread works out of a line once, for the threads that share a log by session
/// (`test` and `replay` with a filter that ties lines together): which thread matches the
/// line, and its prefix split, which that thread then takes in place of splitting it again.
#[derive(Debug, Clone, Copy)]
pub struct LineNote {
    /// The thread (of `threads`) whose sessions the line is of ([`session_shard`]).
    ///
    /// [`session_shard`]: portcullis_core::filter::session_shard
    pub shard: u32,
    /// A container runtime's record ([`portcullis_core::prefix::container_record`]: its
    /// stream, whether it is partial), when asked for.
    pub container: Option<(u8, bool)>,
    /// The split of the line as [`crate::sources::line::prepare`] leaves it; `None` when it
    /// cut the line (the matching thread splits its copy).
    spans: Option<portcullis_core::prefix::Spans>,
}

impl LineNote {
    /// The note of line `l` (without its newline) for `threads` threads, lines cut at
    /// `max_line` bytes; `partial` tells whether to look for a partial record (`replay`
    /// skips them as the daemon does; `test` reads every line).
    pub fn of(l: &[u8], max_line: usize, threads: usize, partial: bool) -> LineNote {
        let (line, _) = crate::sources::line::prepare(l, max_line);
        let parsed = portcullis_core::prefix::parse(&line);
        LineNote {
            shard: portcullis_core::filter::session_shard(&parsed, threads) as u32,
            container: if partial {
                portcullis_core::prefix::container_record(&line)
            } else {
                None
            },
            spans: match line {
                std::borrow::Cow::Borrowed(b) => portcullis_core::prefix::Spans::of(b, &parsed),
                std::borrow::Cow::Owned(_) => None,
            },
        }
    }

    /// The split of `line`: the line this note is of, as `prepare` (with the same limit)
    /// gave it.
    pub fn parsed<'a>(&self, line: &'a [u8]) -> portcullis_core::prefix::Parsed<'a> {
        match self.spans {
            Some(spans) => spans.parsed(line),
            None => portcullis_core::prefix::parse(line),
        }
    }
}

/// One file read once by several threads that each need every chunk of it, in order (the
/// readers of a filter that ties lines together by session, each matching its share of the
/// sessions). There is no reader thread: the first thread that needs a chunk nobody has
/// read yet reads it (outside the lock, so the others meanwhile take the chunks already
/// read), and a chunk is dropped when the last thread has taken it. At most [`Self::AHEAD`]
/// chunks wait for a slower thread, so the memory held is bounded whatever the file's size.
/// (Each thread reading the file itself cost a second kernel copy of it; a separate reader
/// thread left the two matching threads idle whenever it was not scheduled on the two cores,
/// bench/README.md.) A chunk's buffer given back by the last thread ([`Self::recycle`]) is
/// read into again: a new buffer for every chunk was zeroed before each read and its pages
/// faulted in anew (bench/README.md, fifth session).
///
/// The thread that reads a chunk also works out a note of each of its lines, once
/// ([`Self::with_notes`]; `portcullis test`: the line's prefix split and which thread
/// matches it), which every thread then reads in place of doing that work itself.
pub struct SharedChunks<'f, N> {
    file: &'f std::fs::File,
    threads: usize,
    chunk: usize,
    note: &'f (dyn Fn(&[u8]) -> N + Sync),
    state: std::sync::Mutex<ChunkState<N>>,
    more: std::sync::Condvar,
}

/// One chunk of a [`SharedChunks`] file: whole lines, `buf[..len]`.
pub struct Chunk<N> {
    /// (all of it initialised: a reused buffer is read into without zeroing it again)
    buf: Vec<u8>,
    len: usize,
    /// Where its newlines are: found once by the thread that read it, not again by each
    /// thread that splits it.
    ends: Vec<usize>,
    /// The note of each line, in order (see [`SharedChunks::with_notes`]).
    notes: Vec<N>,
}

impl<N> Chunk<N> {
    /// Calls `f` for each line, without the newline (as [`split_chunk`]), and its note.
    pub fn for_each_noted(&self, mut f: impl FnMut(&[u8], &N)) {
        split_at_ends(&self.buf[..self.len], &self.ends, |k, l| {
            f(l, &self.notes[k])
        });
    }
}

impl<N> std::ops::Deref for Chunk<N> {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

/// The buffers of a chunk, lent to a later one.
type Spare<N> = (Vec<u8>, Vec<usize>, Vec<N>);

struct ChunkState<N> {
    /// Index of `queue[0]`.
    base: u64,
    /// Chunks read and the number of threads that have not taken them yet.
    queue: std::collections::VecDeque<(std::sync::Arc<Chunk<N>>, usize)>,
    /// Buffers of chunks every thread is done with, to read the next chunks into.
    spare: Vec<Spare<N>>,
    /// Where the next chunk starts, and the partial line read after the last chunk's end.
    off: u64,
    carry: Vec<u8>,
    /// A thread is reading the next chunk.
    reading: bool,
    done: bool,
    failed: Option<io::ErrorKind>,
}

impl<'f, N: Send + Sync> SharedChunks<'f, N> {
    /// Chunks read ahead of the slowest thread, at most.
    pub const AHEAD: usize = 16;

    /// `file` read from its start by `threads` threads, in chunks of about `chunk` bytes that
    /// end at a line end (a longer line makes a longer chunk). The thread that reads a chunk
    /// calls `note` on each of its lines (without the newline): [`Chunk::for_each_noted`]
    /// hands every thread the lines and their notes.
    pub fn with_notes(
        file: &'f std::fs::File,
        threads: usize,
        chunk: usize,
        note: &'f (dyn Fn(&[u8]) -> N + Sync),
    ) -> SharedChunks<'f, N> {
        SharedChunks {
            file,
            threads: threads.max(1),
            chunk: chunk.max(1),
            note,
            state: std::sync::Mutex::new(ChunkState {
                base: 0,
                queue: Default::default(),
                spare: Vec::new(),
                off: 0,
                carry: Vec::new(),
                reading: false,
                done: false,
                failed: None,
            }),
            more: std::sync::Condvar::new(),
        }
    }

    /// Chunk number `i` (each thread asks for 0, 1, 2, ... in turn), `None` after the last.
    /// The thread that takes the newest chunk read reads the next one first, so that the
    /// others seldom wait for a read.
    pub fn get(&self, i: u64) -> io::Result<Option<std::sync::Arc<Chunk<N>>>> {
        let mut st = self.state.lock().expect("chunk state");
        loop {
            if let Some(k) = i
                .checked_sub(st.base)
                .filter(|&k| k < st.queue.len() as u64)
            {
                let (chunk, left) = &mut st.queue[k as usize];
                let chunk = chunk.clone();
                *left -= 1;
                let mut freed = false;
                while st.queue.front().is_some_and(|c| c.1 == 0) {
                    st.queue.pop_front();
                    st.base += 1;
                    freed = true;
                }
                if freed {
                    self.more.notify_all();
                }
                let newest = st.base + st.queue.len() as u64 <= i + 1;
                if newest && !st.reading && !st.done && st.failed.is_none() {
                    let (_st, read) = self.read_next(st);
                    read?;
                }
                return Ok(Some(chunk));
            }
            if let Some(kind) = st.failed {
                return Err(io::Error::new(kind, "reading the file failed"));
            }
            if st.done {
                return Ok(None);
            }
            if st.reading || st.queue.len() >= Self::AHEAD {
                st = self.more.wait(st).expect("chunk state");
                continue;
            }
            let read;
            (st, read) = self.read_next(st);
            read?;
        }
    }

    /// Gives back a chunk a thread is done with: the last one to give it back lends its
    /// buffer to a later chunk.
    pub fn recycle(&self, chunk: std::sync::Arc<Chunk<N>>) {
        if let Ok(c) = std::sync::Arc::try_unwrap(chunk) {
            let mut st = self.state.lock().expect("chunk state");
            if st.spare.len() < Self::AHEAD {
                st.spare.push((c.buf, c.ends, c.notes));
            }
        }
    }

    /// Reads the next chunk (outside the lock) into the queue, unless `AHEAD` chunks wait.
    fn read_next<'s>(
        &'s self,
        mut st: std::sync::MutexGuard<'s, ChunkState<N>>,
    ) -> (std::sync::MutexGuard<'s, ChunkState<N>>, io::Result<()>) {
        if st.queue.len() >= Self::AHEAD {
            return (st, Ok(()));
        }
        st.reading = true;
        let (off, carry) = (st.off, std::mem::take(&mut st.carry));
        let spare = st.spare.pop().unwrap_or_default();
        drop(st);
        let read = self.read_chunk(off, &carry, spare);
        let mut st = self.state.lock().expect("chunk state");
        st.reading = false;
        let r = match read {
            Ok((chunk, next, carry)) => {
                st.off = next;
                st.carry = carry;
                match chunk {
                    Some(c) => st.queue.push_back((std::sync::Arc::new(c), self.threads)),
                    None => st.done = true,
                }
                Ok(())
            }
            Err(e) => {
                st.failed = Some(e.kind());
                Err(e)
            }
        };
        self.more.notify_all();
        (st, r)
    }

    /// The chunk that starts with `carry` and continues at `off`, read into `buf` (a
    /// buffer of an earlier chunk, or a new one): (the chunk, or `None` at the end of the
    /// file; where reading goes on; the partial line after the chunk's end).
    #[allow(clippy::type_complexity)]
    fn read_chunk(
        &self,
        mut off: u64,
        carry: &[u8],
        (mut buf, ends, notes): Spare<N>,
    ) -> io::Result<(Option<Chunk<N>>, u64, Vec<u8>)> {
        use std::os::unix::fs::FileExt;
        // (`buf` is initialised up to its length: only growing it writes zeros)
        let mut len = carry.len();
        if buf.len() < len {
            buf.resize(len, 0);
        }
        buf[..len].copy_from_slice(carry);
        loop {
            let start = len;
            if buf.len() < start + self.chunk {
                buf.resize(start + self.chunk, 0);
            }
            let n = loop {
                match self.file.read_at(&mut buf[start..start + self.chunk], off) {
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    r => break r?,
                }
            };
            len += n;
            off += n as u64;
            if super::progress::active() {
                super::progress::add_bytes(n as u64);
            }
            let chunk = |buf: Vec<u8>, len: usize, mut ends: Vec<usize>, mut notes: Vec<N>| {
                ends.clear();
                ends.extend(memchr::memchr_iter(b'\n', &buf[..len]));
                notes.clear();
                split_at_ends(&buf[..len], &ends, |_, l| notes.push((self.note)(l)));
                Chunk {
                    buf,
                    len,
                    ends,
                    notes,
                }
            };
            if n == 0 {
                // end of file: what is left is a last line without a newline
                return Ok((
                    (len > 0).then(|| chunk(buf, len, ends, notes)),
                    off,
                    Vec::new(),
                ));
            }
            if let Some(nl) = memchr::memrchr(b'\n', &buf[start..len]) {
                let carry = buf[start + nl + 1..len].to_vec();
                return Ok((Some(chunk(buf, start + nl + 1, ends, notes)), off, carry));
            }
            // no line end yet: a longer line, read on into the same chunk
        }
    }
}

/// Hands each line of `chunk` (one of [`for_each_chunk`]'s: whole lines, the last one
/// without its newline only at the end of the input) to `f`, without the newline.
pub fn split_chunk(chunk: &[u8], mut f: impl FnMut(&[u8])) {
    let mut start = 0;
    for end in memchr::memchr_iter(b'\n', chunk) {
        f(&chunk[start..end]);
        start = end + 1;
    }
    if start < chunk.len() {
        f(&chunk[start..]);
    }
}

/// [`split_chunk`] with the newlines already found (`ends`, all of `chunk`'s, in order):
/// hands `f` each line's number in the chunk and the line.
pub fn split_at_ends(chunk: &[u8], ends: &[usize], mut f: impl FnMut(usize, &[u8])) {
    let mut start = 0;
    for (k, &end) in ends.iter().enumerate() {
        f(k, &chunk[start..end]);
        start = end + 1;
    }
    if start < chunk.len() {
        f(ends.len(), &chunk[start..]);
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
    // journal files and SQLite databases by their magic; else NULs in the first block that
    // a log does not hold: more than one byte in 32, or any in a block without a line end
    // (binary files are full of them). A log line may hold a NUL a client sent, and one
    // such line refused the whole file, a review found.
    if head.starts_with(b"LPKSHHRH") || head.starts_with(b"SQLite format 3\0") {
        return Content::Binary;
    }
    let probe = &head[..head.len().min(8192)];
    let nuls = memchr::memchr_iter(0, probe).count();
    if nuls > 0 && (nuls * 32 > probe.len() || memchr::memchr(b'\n', probe).is_none()) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_chunks_give_every_thread_every_line_in_order() {
        // short lines, one far longer than a chunk, and a last line without a newline
        let mut text = Vec::new();
        for i in 0..3000 {
            text.extend_from_slice(format!("line {i} {}\n", "x".repeat(i % 37)).as_bytes());
            if i == 1234 {
                text.extend_from_slice(&[b'L'; 5000]);
                text.push(b'\n');
            }
        }
        text.extend_from_slice(b"last line without a newline");
        let mut f = tempfile::tempfile().unwrap();
        std::io::Write::write_all(&mut f, &text).unwrap();
        for threads in [1, 3] {
            // chunks of 64 bytes: many more than AHEAD, so the fast threads wait for the slow
            // (each line's note is the line: worked out once, by the thread that read it)
            let note = |l: &[u8]| l.to_vec();
            let chunks = SharedChunks::with_notes(&f, threads, 64, &note);
            let got: Vec<Vec<u8>> = std::thread::scope(|sc| {
                let hs: Vec<_> = (0..threads)
                    .map(|t| {
                        let chunks = &chunks;
                        sc.spawn(move || {
                            let mut all = Vec::new();
                            let mut i = 0;
                            while let Some(c) = chunks.get(i).unwrap() {
                                assert!(c.ends_with(b"\n") || c.ends_with(b"newline"));
                                let (mut a, mut b) = (Vec::new(), Vec::new());
                                c.for_each_noted(|l, n| {
                                    assert_eq!(n, l, "the line's note");
                                    a.push(l.to_vec());
                                });
                                split_chunk(&c, |l| b.push(l.to_vec()));
                                assert_eq!(a, b, "the chunk's lines");
                                all.extend_from_slice(&c);
                                chunks.recycle(c);
                                i += 1;
                                if t == 0 && i % 50 == 0 {
                                    std::thread::sleep(std::time::Duration::from_millis(1));
                                }
                            }
                            // after the end, the end again
                            assert!(chunks.get(i).unwrap().is_none());
                            all
                        })
                    })
                    .collect();
                hs.into_iter().map(|h| h.join().unwrap()).collect()
            });
            for g in got {
                assert!(
                    g == text,
                    "{threads} threads: a thread's chunks differ from the file"
                );
            }
        }
    }

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
        assert_eq!(content_kind(b"SQLite format 3\x00\x10"), Content::Binary);
        assert_eq!(
            content_kind(b"\x7fELF\x02\x01\x01\x00\x00"),
            Content::Binary
        );
        // a log line holding a client's NUL is still a log
        let mut log = b"Nov 21 10:00:01 h vsftpd[1]: user a\x00b failed\n".to_vec();
        for _ in 0..6 {
            log.extend_from_slice(b"Nov 21 10:00:02 h sshd[1]: Failed password for root from 203.0.113.5 port 22 ssh2\n");
        }
        assert_eq!(content_kind(&log), Content::Text);
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
}

//! What sources hand to the engine: batches of lines (bounded in size), the journal position
//! a batch reaches, and the count of cut lines each source reports.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::file::Checkpoint;
use super::lock;

/// What each followed path reads: its name, the (device, inode) of each file it reads (the
/// one it names first, when open, then those rotated away from it), and whether it has the
/// file it names open.
pub type Reading = Vec<(String, Vec<(u64, u64)>, bool)>;

/// A batch of lines from one source: the bytes of all lines back to back, with ends.
#[derive(Debug, Default)]
pub struct Batch {
    /// Source name: a file path, or `journal:…`.
    pub sources: Vec<String>,
    /// (device, inode) of the file of each source entry (one name read from two files, a
    /// rotated one and its successor, is two entries); (0, 0) for the journal.
    pub files: Vec<(u64, u64)>,
    /// (source index, end offset in `data`) per line.
    pub lines: Vec<(u32, usize)>,
    /// Line bytes.
    pub data: Vec<u8>,
    /// Read positions to persist once these lines are processed.
    pub checkpoints: Vec<Checkpoint>,
    /// Paths whose read positions are to be forgotten (wildcard matches that are gone).
    pub forgotten: Vec<String>,
    /// When they changed: every wildcard match read under another name now, with its file
    /// (`Follower::aliases`).
    pub aliases: Option<Vec<(String, (u64, u64))>>,
    /// When it changed: what each followed path reads now (`Follower::reading`).
    pub reading: Option<Reading>,
    /// Names that read a file from its start although another name had read it to a place
    /// before the stop (`Follower::take_lent`): (the name, the other name, the file). A
    /// jail of both counts the file from the other name.
    pub lent: Vec<(String, String, (u64, u64))>,
    /// Notes to log (rotations, long lines, errors).
    pub notes: Vec<String>,
    /// The journal position these lines reach, to [`JournalPosition::commit`] once they are
    /// processed.
    pub journal: Option<JournalPosition>,
}

/// The cursor of the last journal entry the engine has processed, shared by a journal reader
/// (which saves it) and the engine (which sets it).
pub(crate) type CursorSlot = Arc<Mutex<Option<String>>>;

/// Where a batch of a journal reader leaves the journal. The engine commits it once it has
/// processed the batch; only committed positions are saved, so entries the engine never got
/// to (it stopped with them still queued) are read again after a restart.
#[derive(Debug)]
pub struct JournalPosition {
    pub(crate) slot: CursorSlot,
    pub(crate) cursor: String,
}

impl JournalPosition {
    /// Marks the batch processed: its reader may save this position.
    pub fn commit(self) {
        *lock(&self.slot) = Some(self.cursor);
    }
}

impl Batch {
    fn source_index(&mut self, s: &str, file: (u64, u64)) -> u32 {
        match (0..self.sources.len()).find(|&i| self.files[i] == file && self.sources[i] == s) {
            Some(i) => i as u32,
            None => {
                self.sources.push(s.to_string());
                self.files.push(file);
                (self.sources.len() - 1) as u32
            }
        }
    }

    pub(crate) fn push(&mut self, source: &str, line: &[u8]) {
        self.push_from(source, (0, 0), line);
    }

    /// [`Batch::push`] of a line of the file (device, inode) `file`.
    pub(crate) fn push_from(&mut self, source: &str, file: (u64, u64), line: &[u8]) {
        let i = self.source_index(source, file);
        self.data.extend_from_slice(line);
        self.lines.push((i, self.data.len()));
    }

    /// Whether the batch is as large as a batch gets ([`BATCH_BYTES`], [`BATCH_LINES`]).
    pub fn full(&self) -> bool {
        self.data.len() >= BATCH_BYTES || self.lines.len() >= BATCH_LINES
    }

    /// Iterates (source, line).
    #[cfg(test)]
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.iter_from().map(|(s, _, l)| (s, l))
    }

    /// Iterates (source, file, line): each line with its source and the (device, inode) of
    /// its file ((0, 0) for the journal).
    pub fn iter_from(&self) -> impl Iterator<Item = (&str, (u64, u64), &[u8])> {
        let mut start = 0usize;
        self.lines.iter().map(move |&(s, end)| {
            let l = &self.data[start..end];
            start = end;
            let s = s as usize;
            (self.sources[s].as_str(), self.files[s], l)
        })
    }
}

/// Most line bytes in one batch (one more line may go over it); with the engine's queue of
/// [`crate::daemon::ENGINE_QUEUE`] batches this bounds what waits for the engine.
pub const BATCH_BYTES: usize = 4 << 20;
/// Most lines in one batch.
pub const BATCH_LINES: usize = 16_384;

/// How often, at most, the cut lines of one source are reported (with their count).
const LONG_LINE_NOTE_EVERY: Duration = Duration::from_secs(60);

/// Counts the lines of each source that were cut for being too long, and says so in a note
/// at most every [`LONG_LINE_NOTE_EVERY`] per source (the first one at once): a flood of long
/// lines cannot flood the log, and none goes unreported.
#[derive(Default)]
pub struct LongLines {
    /// Per source: lines cut since the last note, the longest of them, when that note was.
    per_source: BTreeMap<String, (u64, usize, Option<Instant>)>,
    /// Lines cut since the start, all sources.
    pub total: u64,
}

impl LongLines {
    /// Counts one cut line of `len` bytes; returns the note to log now, if one is due.
    pub fn count(
        &mut self,
        source: &str,
        len: usize,
        max_line: usize,
        now: Instant,
    ) -> Option<String> {
        self.total += 1;
        let e = self
            .per_source
            .entry(source.to_string())
            .or_insert((0, 0, None));
        e.0 += 1;
        e.1 = e.1.max(len);
        self.due(source, max_line, now)
    }

    /// The note for `source` if one is due (and lines were cut since the last one).
    fn due(&mut self, source: &str, max_line: usize, now: Instant) -> Option<String> {
        let e = self.per_source.get_mut(source)?;
        if e.0 == 0
            || e.2
                .is_some_and(|t| now.duration_since(t) < LONG_LINE_NOTE_EVERY)
        {
            return None;
        }
        let head = crate::sources::line::head_len(max_line);
        let note = format!(
            "{} line(s) longer than {max_line} bytes (the longest {} bytes) matched on their first {head} and last {} bytes in {source} ({} cut in all since the start)",
            e.0,
            e.1,
            max_line - head,
            self.total
        );
        *e = (0, 0, Some(now));
        Some(note)
    }

    /// Notes due now for sources whose cut lines were not reported yet.
    pub fn flush(&mut self, max_line: usize, now: Instant) -> Vec<String> {
        let sources: Vec<String> = self.per_source.keys().cloned().collect();
        sources
            .iter()
            .filter_map(|s| self.due(s, max_line, now))
            .collect()
    }
}

//! Rotation-safe log file follower: `tail -F` with checkpoints.
//!
//! A [`Follower`] follows a set of paths. It is synchronous: the daemon runs it in a thread of
//! its own, calling [`Follower::poll`], then [`Follower::wait`] and `poll` again in a loop, and
//! sends the lines on over a channel (persisting [`Follower::checkpoints`] now and then). inotify only says *when* to look; every poll re-checks every path, so a lost
//! or overflowed event costs at most one `wait` timeout, never a line.
//!
//! # How a file is recognised
//!
//! A followed *path* names a sequence of files over time. A file is identified by the device
//! and inode of the open descriptor. An inode cannot be reused while we hold it open, so within
//! one run that identity is exact. The *fingerprint* (FNV-1a of the first `min(offset, 256)`
//! bytes) only checks that the bytes already consumed are still there: across a restart (the
//! inode may have been freed and reused) and while running (a copytruncate that regrew past our
//! offset between two polls). It is not the identity because the first bytes of a young log
//! change while it grows, and many logs begin with the same banner.
//!
//! # Where reading starts
//!
//! * A checkpoint for the path whose dev+ino, fingerprint and size (`>= offset`) all match:
//!   resume at its offset.
//! * A checkpoint for the same inode whose fingerprint differs or that is now shorter than the
//!   offset: it was truncated or reused while we were down; emit `Truncated`, read from 0.
//! * A checkpoint for another file: the old one was rotated away while we were down; read the
//!   new file from its beginning. The rest of the old one (what was written to it after the
//!   checkpoint) is read first when logrotate's name for it holds it: uncompressed (`NAME.1`,
//!   `NAME.2`, `NAME-YYYYMMDD`, …: `delaycompress`, the default rename without compression),
//!   or gzip-compressed (`NAME.1.gz`, `NAME.2.gz`, …, found by its first bytes). Rotated more
//!   than once, the later rotations (`NAME.1` when the old file is `NAME.2`, a later date)
//!   are read whole after it, oldest first: every line in them was written after the stop.
//!   Gone (deleted, compressed another way), its rest is lost (and that is said). A log
//!   empty at the stop (nothing read tells its compressed file): every rotation modified
//!   since the checkpoint was taken ([`Checkpoint::saved_ms`]) is read whole.
//! * No checkpoint, and the file was at the path when the follower started (or when
//!   [`Follower::set_paths`] added the path): start at its end, so an old log never bans anyone
//!   by surprise. Precisely: after its last newline, so a line being written just then is read
//!   whole.
//! * Any other file (appeared later, or replaced one we followed): read from its beginning,
//!   unless it replaced the file we read with a copy of it (`sed -i`, an editor's save: its
//!   first bytes are those we read, see [`copy_offset`]): read on from where we were.
//!   A wildcard's match with no checkpoint is such a file when the wildcard was followed in
//!   the last run too (a marker checkpoint says so, [`glob_marker`]) or earlier in this one.
//!
//! # Rotation
//!
//! When the path stops naming the file we read (renamed, deleted, replaced), we emit `Rotated`,
//! keep the old descriptor open and go on reading it — a writer may append to it until it is told
//! to reopen — until it has given no data for a few seconds; then it is closed, and an unfinished
//! last line in it is delivered as it is, since nobody will finish it. A file shrinking below
//! our offset, or whose first bytes changed, was truncated (plain or copytruncate): emit
//! `Truncated`, read again from 0. Lines appended between the copy and the truncation of a
//! copytruncate, or between our last read and any truncation, are lost; no follower can see
//! them. Where the reading of a file rotated away stands while it is still read is saved too
//! ([`drain_key`]): a stop then (its writer not yet told to reopen its log) would lose what
//! the writer adds after the stop; the next start reads that from the file's rotated name
//! (`NAME.1`, ... as above).
//!
//! # Lines
//!
//! Only complete lines are delivered, without their `\n` (and one `\r` before it); bytes need not
//! be UTF-8. A line longer than `max_line` bytes (counted before the `\n`, less the `\r`) is
//! delivered cut to its first and last bytes, exactly as `replay` and `test` cut it
//! ([`super::line::cut`]), followed by `LongLine` with its whole length, so that it is counted
//! and reported: never dropped. Memory per file is bounded by about `max_line`.

use crate::sys::now_ms;
use inotify::{Inotify, WatchDescriptor, WatchMask};
use std::os::fd::AsFd;
use std::sync::{Arc, Mutex};

use super::batch::{Batch, LongLines};
use super::glob::Rotation;
use crate::daemon::{EngineTx, Msg};
use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, UNIX_EPOCH};

use super::line;

/// Size of the one read buffer shared by all files.
const READ_BUF_LEN: usize = 64 * 1024;
/// How many leading bytes the fingerprint covers.
const HEAD_LEN: usize = 256;
/// A rotated-away file is closed once it has given no data for this long.
const DRAIN_IDLE: Duration = Duration::from_secs(5);
/// At most this many rotated-away files are kept open per path (the oldest is closed first),
/// once read to their end.
const MAX_DRAINING: usize = 4;
/// A file rotated away that is still written this long after, while the path's new file
/// stays empty, is said: its writer was not told to reopen its log ([`Event::StillWritten`]).
const STILL_WRITTEN: Duration = Duration::from_secs(60);
/// How far a file's time may fall behind the clock a [`Checkpoint`] is taken with: the
/// kernel stamps files with a coarse clock, and some file systems keep whole seconds.
const MTIME_GRAIN: Duration = Duration::from_secs(1);
/// At most this many later rotations are read at a start after a log rotated more than once
/// while the daemon was down ([`Event::RotatedAgainWhileDown`]): the newest. Also how many
/// rotated files with data not read yet may be kept open over [`MAX_DRAINING`].
const MAX_LATER: usize = 16;

/// At most this many names of a directory are looked at for a file moved while the daemon
/// was down ([`Watched::moved_while_down`]).
const MOVED_SCAN: usize = 100_000;
/// A later rotation may have been last written this long before the file read before the
/// stop (its writer went on in that one a while after the rotation); one older is a leftover.
const LATER_SLACK: Duration = Duration::from_secs(600);

const FILE_MASK: WatchMask = WatchMask::MODIFY
    .union(WatchMask::ATTRIB)
    .union(WatchMask::MOVE_SELF);
const DIR_MASK: WatchMask = WatchMask::CREATE
    .union(WatchMask::MOVED_TO)
    .union(WatchMask::MOVED_FROM)
    .union(WatchMask::DELETE)
    .union(WatchMask::DELETE_SELF)
    .union(WatchMask::MOVE_SELF)
    .union(WatchMask::ONLYDIR);

/// FNV-1a (64 bit) of `bytes`: the fingerprint stored in a [`Checkpoint`]. Stable across runs.
pub fn fingerprint(bytes: &[u8]) -> u64 {
    portcullis_core::bytes::fnv1a(bytes)
}

/// A read position to persist, and to hand back to [`Follower::new`] after a restart.
///
/// `ino == 0` (no real inode has that number) means "the path had no file": whatever file is
/// found there at the next start is read from its beginning.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Checkpoint {
    /// The followed path, as configured.
    pub path: String,
    /// Device of the file being read.
    pub dev: u64,
    /// Inode of the file being read.
    pub ino: u64,
    /// [`fingerprint`] of the file's first `min(offset, 256)` bytes.
    pub fingerprint: u64,
    /// End of the last complete line consumed.
    pub offset: u64,
    /// When it was taken from the file being read (Unix milliseconds); 0: unknown (a state
    /// file of an older version, a marker). A file modified since holds lines not read:
    /// the one thing that tells the rotations of a log that was empty at a stop
    /// ([`Watched::rotated_backlog`]).
    pub saved_ms: i64,
}

/// What [`Follower::poll`] reports. Borrowed: copy out what you keep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event<'a> {
    /// One complete line, without its line ending.
    Line {
        path: &'a str,
        /// (device, inode) of the file it was read from: one file may be read under two
        /// names (a link and its target), and must be counted once per jail.
        file: (u64, u64),
        line: &'a [u8],
    },
    /// The file shrank or its beginning changed; reading starts again at 0.
    Truncated { path: &'a str },
    /// The path no longer names the file being read; it is read to its end all the same.
    Rotated { path: &'a str },
    /// At start: the file read before the stop was rotated away meanwhile; the rest of it is
    /// read from `from` (its new name), then the path's new file from its beginning.
    RotatedWhileDown { path: &'a str, from: String },
    /// At start: the file read before the stop is found under a name that is no rotation of
    /// the path's (a link moved along numbered files while the daemon was down, or the file
    /// renamed): the rest of it is read from `from`, then the path's new file from its
    /// beginning.
    MovedWhileDown {
        path: &'a str,
        from: String,
        /// The files of `from`'s series made after it and before the path's file now,
        /// read whole, oldest first (the files a link named in between).
        between: Vec<String>,
    },
    /// The file read when the daemon last stopped had been rotated away just before (it was
    /// still being read to its end under its old name): what its writer added to it after
    /// the stop is read from `from`, its rotated name.
    RotatedAtStop { path: &'a str, from: String },
    /// That file (read up to `offset` when the daemon stopped) is not found under a rotated
    /// name, plain or `.gz` (deleted, or compressed another way, while the daemon was down):
    /// what it got after the stop, if anything, was not read.
    LostAtStop { path: &'a str, offset: u64 },
    /// At start, after [`Event::RotatedWhileDown`] or [`Event::RotatedAtStop`]: the log was
    /// rotated again while the daemon was down; the files of those later rotations (`from`,
    /// oldest first: all their lines were written after the stop) are read whole, before the
    /// path's file. `unread`: those left unread, and why.
    RotatedAgainWhileDown {
        path: &'a str,
        from: Vec<String>,
        unread: Unread,
    },
    /// At start: the file read before the stop (up to `offset`) is neither at the path nor
    /// under a name logrotate gives a rotated log, plain or gzip-compressed (deleted, or
    /// compressed another way, while the daemon was down): what it got after the stop was
    /// not read.
    LostWhileDown { path: &'a str, offset: u64 },
    /// The file rotated away from the path `after` seconds ago is still written, while the
    /// path's new file stays empty: its writer was not told to reopen its log (logrotate's
    /// `create` without a `postrotate` that signals it; `copytruncate` is the option for a
    /// program that cannot reopen). It is read on as long as the new file is empty.
    StillWritten { path: &'a str, after: u64 },
    /// The path names again a file read before in this run (moved away and back, a symlink
    /// pointed at it again, a backup restored by `mv`): read on from `offset`, where it was
    /// left, not again from its beginning.
    Resumed { path: &'a str, offset: u64 },
    /// The path's new file is a copy of the one read (`sed -i`, an editor's save): it is read
    /// on from `offset`, not again from its beginning; `exact`: the bytes before it are the
    /// same (else edited: a line around the edit may be missed or read again).
    Copy {
        path: &'a str,
        offset: u64,
        exact: bool,
    },
    /// The line just delivered was longer than the limit and was cut (see
    /// [`line::cut`]); `len` is its whole length in bytes.
    LongLine { path: &'a str, len: usize },
    /// The path cannot be read; reported once until the error changes.
    Error { path: &'a str, message: String },
}

/// Most bytes all followed files may hold for their unfinished lines together. One file
/// holds up to about twice `max_line` (the head and the tail of a long line, as `replay`
/// cuts it); a directory's owner who makes many files of one unfinished line each (sparse
/// files cost nothing) could make that a few GiB, a security review found. Past this
/// budget the biggest unfinished lines are delivered as they are (cut) and the rest of each,
/// up to its newline, is skipped.
const PARTIAL_BUDGET: usize = 64 << 20;

/// An unfinished line smaller than this is never cut for the budget.
const PARTIAL_KEEP: usize = 64 << 10;

/// Most bytes one [`Follower::poll`] reads, over all files: a file with a huge backlog (or
/// a flood) is read over several polls, and what one poll read goes on to the engine before
/// the next, whose bounded queue then slows reading down.
pub const POLL_BYTES: u64 = 4 << 20;

/// Follows log files across rotations. See the module documentation.
pub struct Follower {
    files: Vec<Watched>,
    /// Which file a poll starts with (turns).
    turn: usize,
    /// dev+ino of every file read in this run, with the position reached in it (see
    /// [`Follower::add_appeared`]).
    seen: HashMap<(u64, u64), (u64, u64)>,
    /// Checkpoints for paths not followed now, applied if they are added back.
    parked: HashMap<String, Checkpoint>,
    /// Every checkpoint given at start: a file rotated while the daemon was down is found
    /// by them under its new name (see [`Follower::add_appeared`]).
    restored: Vec<Checkpoint>,
    /// The wildcard patterns followed ([`Follower::set_globs`]).
    globs: Vec<String>,
    /// Patterns whose matches are known: followed in this run, or in the last one (a
    /// marker checkpoint, see [`glob_marker`]); a file that matches one of them later is new.
    known_globs: std::collections::HashSet<String>,
    /// Patterns found matching more than [`crate::sources::glob::MAX_MATCHES`] files (said
    /// once each).
    capped: std::collections::HashSet<String>,
    /// Wildcard matches no more followed (gone), whose saved positions are to be deleted:
    /// taken by [`Follower::take_forgotten`].
    forgotten: Vec<String>,
    /// Notes for the daemon's log, taken by [`Follower::take_notes`].
    notes: Vec<String>,
    /// Wildcard matches not followed because they name a file read under another name (a
    /// log an application rotated itself to a name the pattern matches, `app.2026-01-10.log`
    /// for `*.log`): their position is saved under that name too, so that the next run,
    /// which takes the pattern's unknown matches for new files, does not read them again.
    aliases: BTreeMap<PathBuf, (u64, u64)>,
    /// Files an alias named before the file it names now (a rotation of the file behind it),
    /// still read to their end under another name: their lines still go to the alias's
    /// jails (review 17: lines the writer added to the old file after the rename were lost
    /// to them).
    /// With when the alias left it: a file still read under a name of its own is kept
    /// [`DRAIN_IDLE`] from then.
    alias_old: Vec<(PathBuf, (u64, u64), Instant)>,
    /// The jails of each configured path or pattern ([`Follower::set_readers`]); empty:
    /// not known (every name taken to have the same jails).
    readers: HashMap<String, Vec<String>>,
    /// Names read from a file's start where another name's place in it was not taken
    /// ([`Follower::take_lent`]).
    lent: Vec<(String, String, (u64, u64))>,
    buf: Vec<u8>,
    max_line: usize,
    drain_idle: Duration,
    watches: Watches,
}

impl Follower {
    /// Follows `paths`, resuming from `checkpoints` where they apply. Lines longer than
    /// `max_line` bytes are cut ([`line::DEFAULT_MAX_LINE`] is a good value).
    #[cfg(test)]
    pub fn new(
        paths: Vec<PathBuf>,
        checkpoints: Vec<Checkpoint>,
        max_line: usize,
    ) -> anyhow::Result<Self> {
        Follower::with_globs(paths, Vec::new(), checkpoints, max_line)
    }

    /// [`Follower::new`] with wildcard patterns too (`paths` holds their matches now): the
    /// matches of a pattern followed in the last run that have no checkpoint appeared while
    /// the daemon was down, and are read from their beginning (see [`Follower::set_globs`]).
    #[cfg(test)]
    pub fn with_globs(
        paths: Vec<PathBuf>,
        globs: Vec<String>,
        checkpoints: Vec<Checkpoint>,
        max_line: usize,
    ) -> anyhow::Result<Self> {
        Follower::with_readers(paths, globs, HashMap::new(), checkpoints, max_line)
    }

    /// [`Follower::with_globs`], knowing the jails of each path and pattern
    /// ([`Follower::set_readers`]).
    pub fn with_readers(
        paths: Vec<PathBuf>,
        globs: Vec<String>,
        readers: HashMap<String, Vec<String>>,
        checkpoints: Vec<Checkpoint>,
        max_line: usize,
    ) -> anyhow::Result<Self> {
        anyhow::ensure!(max_line > 0, "max_line must be at least 1");
        let mut follower = Follower {
            turn: 0,
            seen: HashMap::new(),
            files: Vec::new(),
            restored: checkpoints.iter().filter(|c| c.ino != 0).cloned().collect(),
            parked: checkpoints
                .into_iter()
                .map(|c| (c.path.clone(), c))
                .collect(),
            globs: Vec::new(),
            known_globs: Default::default(),
            capped: Default::default(),
            notes: Vec::new(),
            forgotten: Vec::new(),
            aliases: BTreeMap::new(),
            alias_old: Vec::new(),
            readers,
            lent: Vec::new(),
            buf: vec![0; READ_BUF_LEN],
            max_line,
            drain_idle: DRAIN_IDLE,
            watches: Watches::new(),
        };
        follower.set_globs(globs);
        follower.set_paths(paths);
        Ok(follower)
    }

    /// The jails that read each configured path or wildcard pattern (as configured), at
    /// start and at each reload: a place saved under one name is taken for another name
    /// of the same file only when every jail of that name counted the lines it passed, as
    /// a jail of the first (review 67: a wildcard's jail took the place a link's jail had
    /// read to in a new file, and lost every line before it; the link's jail lost what the
    /// old file got after a stop, taken as the wildcard's to read).
    pub fn set_readers(&mut self, readers: HashMap<String, Vec<String>>) {
        self.readers = readers;
    }

    /// The jails of followed name `name` (a drain key stands for its path), or `None` when
    /// they are not known.
    fn jails_of(&self, name: &str) -> Option<std::collections::BTreeSet<&str>> {
        if self.readers.is_empty() {
            return None;
        }
        let name = name.strip_prefix("rotated-from:").unwrap_or(name);
        let glob = crate::sources::glob::is_glob;
        Some(
            (self.readers.iter())
                .filter(|(l, _)| {
                    l.as_str() == name || (glob(l) && crate::sources::glob::matches(l, name))
                })
                .flat_map(|(_, js)| js.iter().map(String::as_str))
                .collect(),
        )
    }

    /// Whether the jails of `name` counted what `lender` read of a file: each is a jail of
    /// `lender` too (true when the jails are not known).
    fn counted_by(&self, lender: &str, name: &str) -> bool {
        match (self.jails_of(lender), self.jails_of(name)) {
            (Some(l), Some(n)) => n.is_subset(&l),
            _ => true,
        }
    }

    /// The names read from a file's start although another name had read it to a place
    /// before the stop, whose jails are not all that name's ([`Follower::counted_by`]):
    /// (the name, the other name, the file). The engine has the jails of both count the
    /// file from the other name, so that they do not count its first lines twice (review
    /// 69: a jail reading a link and a wildcard over its files did).
    pub fn take_lent(&mut self) -> Vec<(String, String, (u64, u64))> {
        std::mem::take(&mut self.lent)
    }

    /// The limit beyond which lines are cut.
    pub fn max_line(&self) -> usize {
        self.max_line
    }

    /// How long a rotated-away file may stay silent before it is closed (default 5 s).
    #[cfg(test)]
    pub fn set_drain_idle(&mut self, idle: Duration) {
        self.drain_idle = idle;
    }

    /// Reads everything new from every followed file, calling `f` for each event; returns the
    /// number of bytes read. Never waits for data. Errors on one file are reported as
    /// [`Event::Error`] and do not stop the others, so this currently always returns `Ok`.
    pub fn poll(&mut self, f: &mut dyn FnMut(Event)) -> io::Result<u64> {
        let mut cx = Ctx {
            budget: POLL_BYTES,
            buf: &mut self.buf,
            max_line: self.max_line,
            drain_idle: self.drain_idle,
            watches: &mut self.watches,
            now: Instant::now(),
        };
        let mut total = 0;
        // a different file first each time: under a flood in one file the others still get
        // their share of the budget
        let n = self.files.len();
        let first = if n > 0 { self.turn % n } else { 0 };
        self.turn = self.turn.wrapping_add(1);
        for i in (first..n).chain(0..first) {
            let w = &mut self.files[i];
            total += w.poll(&mut cx, f);
            if !w.draining.is_empty() {
                w.drain_saved = true;
            } else if std::mem::take(&mut w.drain_saved) {
                self.forgotten.push(drain_key(&w.name));
            }
            // (hashed again only when the position moved: this runs at every poll)
            for t in w.cur.iter_mut().chain(w.draining.iter_mut()) {
                if t.seen_at != Some(t.line_end) {
                    t.seen_at = Some(t.line_end);
                    self.seen.insert(t.id(), t.consumed());
                }
            }
        }
        self.keep_to_budget(f);
        self.adopt_aliases();
        Ok(total)
    }

    /// The wildcard matches whose file is read under another name now ([`Follower::add_appeared`]),
    /// with that file's (device, inode), in the matches' order. The engine gives the lines
    /// of that file to the jails of the match too: a jail that reads the file only under the
    /// new name got none of them (a link to `auth.log` made where another jail's wildcard
    /// matches).
    pub fn aliases(&self) -> Vec<(String, (u64, u64))> {
        self.aliases
            .iter()
            .chain(self.alias_old.iter().map(|(p, id, _)| (p, id)))
            .map(|(p, id)| (p.to_string_lossy().into_owned(), *id))
            .collect()
    }

    /// What is read now: each path with the (device, inode) of each file it reads (the one
    /// it names, then those rotated away from it, still read to their end), and whether the
    /// first is the file it names. One file may be read under two names (a link and its
    /// target, both followed): the engine counts its lines once per jail. A path whose file
    /// is open is read on through the descriptor even when the file can no longer be opened
    /// (its mode changed under a daemon that is not root), which `status` must not call
    /// unreadable.
    pub fn reading(&self) -> super::batch::Reading {
        self.files
            .iter()
            .map(|w| {
                let ids = w.cur.iter().chain(&w.draining).map(Tail::id).collect();
                (w.name.clone(), ids, w.cur.is_some())
            })
            .collect()
    }

    /// Follows, under its own name, a wildcard match that names a file read under another
    /// name ([`Follower::aliases`]) once that other reading ended (the file went quiet after
    /// a rotation): read on from where it was left. (`mv a.log a-old.log` under `*.log`:
    /// what was written to a-old.log after the old name's reading ended was never read
    /// until a restart, a review found.)
    fn adopt_aliases(&mut self) {
        if self.aliases.is_empty() && self.alias_old.is_empty() {
            return;
        }
        let named: std::collections::HashSet<(u64, u64)> = self
            .files
            .iter()
            .flat_map(|w| w.cur.iter().map(Tail::id))
            .collect();
        let drained: std::collections::HashSet<(u64, u64)> = self
            .files
            .iter()
            .flat_map(|w| w.draining.iter().map(Tail::id))
            .collect();
        // a file rotated away between the poll's look at its path and now: its path names
        // another file (or none), but the poll has not moved it among the draining files
        // yet. Its aliases stay as they are until the next poll does: judged now, the link
        // naming a file nobody reads (or nothing) lost its alias, and its jails the lines
        // the old file got after that (the globs test lost two lines under load)
        let aliased: std::collections::HashSet<(u64, u64)> =
            self.aliases.values().copied().collect();
        let rotating: std::collections::HashSet<(u64, u64)> = self
            .files
            .iter()
            .filter_map(|w| w.cur.as_ref().map(|t| (&w.path, t.id())))
            .filter(|(_, id)| aliased.contains(id))
            .filter(|(path, id)| {
                fs::metadata(path)
                    .ok()
                    .is_none_or(|m| (m.dev(), m.ino()) != *id)
            })
            .map(|(_, id)| id)
            .collect();
        // a file still read under a name of its own (`app-1.log` under `app-*.log`) that a
        // link pointed elsewhere (`current.log` to the new `app-2.log`) named before: an
        // alias still for the drain time after the move, while its writer finishes it
        // (review 59: the lines written to it after the link moved were lost to the link's
        // jails); not for good, as the writer of a live log never stops (review 15: a link
        // moved off `auth.log` got its lines for ever)
        let now = Instant::now();
        let mut old = Vec::new();
        // links moved to a file nobody reads yet: followed at once under their own name,
        // from the start of that file (waiting for the wildcard's next look, once a second,
        // the files such a link passed meanwhile reached its jails under no name, review 64)
        let mut moved_off = Vec::new();
        // a match that names another file now: when another name reads that one (the file
        // behind it was rotated, a new one took its place), it is an alias of it, and of the
        // old one while that is read to its end; else (a link pointed at a file nobody
        // reads, or removed once its file's reading ended) it is no longer an alias (review
        // 15: its jails got the old file's lines for good, and its stale position was saved
        // over its own)
        self.aliases.retain(|p, id| {
            if rotating.contains(id) {
                return true;
            }
            let was = *id;
            let still = drained.contains(&was) || named.contains(&was);
            let now = fs::metadata(p).ok().map(|m| (m.dev(), m.ino()));
            match now {
                Some(n) if n == was => true,
                Some(n) if named.contains(&n) => {
                    if still {
                        old.push((p.clone(), was));
                    }
                    *id = n;
                    true
                }
                // nothing there for now (between a rotation's rename and the new file): an
                // alias still while its file is read to its end
                None => drained.contains(&was) && !named.contains(&was),
                Some(_) => {
                    if still {
                        old.push((p.clone(), was));
                    }
                    if fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_symlink()) {
                        moved_off.push(p.clone());
                    }
                    false
                }
            }
        });
        let idle = self.drain_idle;
        self.alias_old.retain(|(p, id, since)| {
            fs::symlink_metadata(p).is_ok()
                && ((drained.contains(id) && !named.contains(id))
                    || (named.contains(id) && now.duration_since(*since) < idle))
        });
        for (p, id) in old {
            if !self.alias_old.iter().any(|(q, i, _)| *q == p && *i == id) {
                self.alias_old.push((p, id, now));
            }
        }
        let held: std::collections::HashSet<(u64, u64)> = named.union(&drained).copied().collect();
        let orphans: Vec<(PathBuf, (u64, u64))> = self
            .aliases
            .iter()
            .filter(|(_, id)| !held.contains(id))
            .map(|(p, id)| (p.clone(), *id))
            .collect();
        for (path, id) in orphans {
            self.aliases.remove(&path);
            if self.files.iter().any(|w| w.path == path) {
                continue;
            }
            // (where its reading ended: the place kept at its close, newer than `seen`,
            // which a poll updates only for the files it still holds)
            let left = self
                .files
                .iter()
                .flat_map(|w| w.left.iter())
                .rev()
                .find(|(i, _)| *i == id)
                .map(|(_, at)| *at);
            let (Some((fingerprint, offset)), Ok(m)) = (
                left.or_else(|| self.seen.get(&id).copied()),
                fs::metadata(&path),
            ) else {
                continue;
            };
            if (m.dev(), m.ino()) != id {
                continue;
            }
            let name = path.to_string_lossy().into_owned();
            let cp = Checkpoint {
                path: name.clone(),
                dev: id.0,
                ino: id.1,
                fingerprint,
                offset,
                ..Default::default()
            };
            let mut w = Watched::new(path, name, Some(cp));
            w.initial = None;
            w.ensure_dir_watch(&mut self.watches);
            self.files.push(w);
        }
        for path in moved_off {
            let shown = path.display().to_string();
            if self.add_appeared(path) {
                self.notes.push(format!(
                    "reading {shown} from its start (a link moved to a new file)"
                ));
            }
        }
    }

    /// Cuts the biggest unfinished lines while all of them hold more than
    /// [`PARTIAL_BUDGET`].
    fn keep_to_budget(&mut self, f: &mut dyn FnMut(Event)) {
        let held = |t: &Tail| t.split.held();
        let mut total: usize = self
            .files
            .iter()
            .flat_map(|w| w.cur.iter().chain(&w.draining))
            .map(held)
            .sum();
        if total <= PARTIAL_BUDGET {
            return;
        }
        let mut big: Vec<(usize, usize, usize)> = Vec::new(); // (held, file, tail)
        for (i, w) in self.files.iter().enumerate() {
            for (k, t) in w.cur.iter().chain(&w.draining).enumerate() {
                if held(t) > PARTIAL_KEEP {
                    big.push((held(t), i, k));
                }
            }
        }
        big.sort_unstable_by(|a, b| b.cmp(a));
        for (h, i, k) in big {
            if total <= PARTIAL_BUDGET / 2 {
                break;
            }
            let w = &mut self.files[i];
            let t = if k == 0 && w.cur.is_some() {
                w.cur.as_mut()
            } else {
                let k = k - usize::from(w.cur.is_some());
                w.draining.get_mut(k)
            };
            if let Some(t) = t {
                t.split.cut_now(self.max_line, &w.name, f);
            }
            total = total.saturating_sub(h);
        }
    }

    /// Blocks until inotify says something may have changed, or `timeout` passes. Returns true
    /// when woken by inotify. Without inotify (no instance could be made) it just sleeps.
    pub fn wait(&mut self, timeout: Duration) -> bool {
        self.watches.wait(timeout)
    }

    /// Read positions to persist, one per followed path (none for a path whose file existed at
    /// start but could not be opened yet: it will start at its end, as on a first run), and a
    /// marker per wildcard pattern followed ([`glob_marker`]).
    pub fn checkpoints(&self) -> Vec<Checkpoint> {
        let mut v: Vec<Checkpoint> = self.files.iter().filter_map(Watched::checkpoint).collect();
        v.extend(self.files.iter().filter_map(Watched::drain_checkpoint));
        v.extend(self.globs.iter().map(|g| glob_marker(g)));
        for (path, id) in &self.aliases {
            if self.files.iter().any(|w| &w.path == path) {
                continue;
            }
            if let Some(&(fingerprint, offset)) = self.seen.get(id) {
                v.push(Checkpoint {
                    path: path.to_string_lossy().into_owned(),
                    dev: id.0,
                    ino: id.1,
                    fingerprint,
                    offset,
                    saved_ms: now_ms(),
                });
            }
        }
        v
    }

    /// Follows a file that appeared after following began (a new match of a wildcard
    /// path): read from its beginning. Returns false when the path is already followed, or
    /// names a file this follower reads or has read under another name (a rotated log that a
    /// wildcard also matches, e.g. `access.log.1` for `*`), which must not be read twice: the
    /// same inode whose bytes read so far are still there (an inode freed and given to a new
    /// file is a new file). A file that a checkpoint of the last run names by its inode (a
    /// log rotated while the daemon was down, to a name the wildcard matches) is read on
    /// from that checkpoint.
    pub fn add_appeared(&mut self, path: PathBuf) -> bool {
        if self.files.iter().any(|w| w.path == path) {
            return false;
        }
        let Ok(m) = fs::metadata(&path) else {
            return false;
        };
        let id = (m.dev(), m.ino());
        // read under another name: as an alias, its lines from now on; but a file new in
        // this run, read from its start by the name that names it (`app-2.log` that a link
        // `current.log` another jail reads was pointed at, before this pattern's turn came),
        // is followed under this name too, from its start: as an alias, this pattern's jails
        // lost what was written to it before (review 59: most of each new file, under a
        // flood). The engine counts each line once per jail ([`Follower::reading`]).
        // (and still named by it: a file renamed into the pattern, its old name's reading
        // not yet told, is an alias)
        // (or one a link read whole and has moved on from, before this pattern's turn came:
        // under a flood the link passed whole files, review 63; not a file renamed into the
        // pattern, which its own name read before: that is an alias)
        let names = |p: &Path| fs::metadata(p).is_ok_and(|m| (m.dev(), m.ino()) == id);
        let link = |p: &Path| fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_symlink());
        let known = self
            .files
            .iter()
            .find_map(|w| match w.cur.as_ref().filter(|t| t.id() == id) {
                Some(t) => Some(t.whole && names(&w.path)),
                None => w
                    .draining
                    .iter()
                    .find(|t| t.id() == id)
                    .map(|t| t.whole && link(&w.path)),
            });
        if known == Some(false) {
            self.aliases.insert(path, id);
            return false;
        }
        if let Some(&(fp, offset)) = self.seen.get(&id).filter(|_| known.is_none()) {
            if same_file(&path, fp, offset) {
                self.aliases.insert(path, id);
                return false;
            }
            self.seen.remove(&id);
        }
        let name = path.to_string_lossy().into_owned();
        // the places other names saved in this file (its first bytes unchanged), looked at
        // once (each look opens the file)
        let lenders: Vec<&Checkpoint> = (self.restored.iter())
            .filter(|c| {
                (c.dev, c.ino) == id && c.path != name && same_file(&path, c.fingerprint, c.offset)
            })
            .collect();
        // (a name with a place of its own reads on from it)
        let own = self.parked.contains_key(&name);
        if let Some(c) = lenders
            .first()
            .filter(|c| !own && !self.counted_by(&c.path, &name))
        {
            let other = c.path.strip_prefix("rotated-from:").unwrap_or(&c.path);
            self.lent.push((name.clone(), other.to_string(), id));
        }
        let borrowed = lenders
            .iter()
            .find(|c| self.counted_by(&c.path, &name))
            .map(|c| Checkpoint {
                path: name.clone(),
                ..(*c).clone()
            });
        let checkpoint = self.parked.remove(&name).or(borrowed);
        let mut w = Watched::new(path, name, checkpoint);
        w.initial = None; // not there at start: from its beginning
        self.resume_drained(&mut w);
        w.ensure_dir_watch(&mut self.watches);
        self.files.push(w);
        true
    }

    /// For a path just followed: the file rotated away from it just before the last stop,
    /// under its rotated name, whose place was saved under [`drain_key`]: what its writer
    /// added after that stop is read (once: the saved place is forgotten here, and saved
    /// again while it is read), and the later rotations, those the path's own checkpoint
    /// does not read already (that one is applied first, [`Watched::settle_checkpoint`]: a
    /// file read by both was counted twice, review 18).
    fn resume_drained(&mut self, w: &mut Watched) {
        let drained = self.parked.remove(&drain_key(&w.name));
        // a file a path of its own reads on from its own checkpoint (a wildcard's match the
        // log was renamed to)
        let valid = drained.as_ref().is_some_and(|cp| {
            let own = self.restored.iter().any(|c| {
                (c.dev, c.ino) == (cp.dev, cp.ino)
                    && c.path != cp.path
                    && c.path != w.name
                    && self.counted_by(&c.path, &w.name)
            });
            cp.ino != 0 && cp.offset > 0 && !own
        });
        // that file first, which the path's own checkpoint leaves out of its backlog (a log
        // empty at the stop reads every rotation modified since: that file too, whose rest
        // was then read twice, review 19)
        let found = match &drained {
            Some(cp) if valid => w.rotated_while_down(cp, &mut self.watches, false),
            _ => None,
        };
        w.leave_out = found.as_ref().map(|(t, name, _)| (t.id(), name.clone()));
        if std::mem::take(&mut w.opens_now) {
            w.cur = w.open(&mut self.buf, &mut self.watches);
        }
        w.settle_checkpoint(&mut self.watches);
        w.leave_out = None;
        let Some(cp) = drained else {
            return;
        };
        self.forgotten.push(cp.path.clone());
        let reading = w.cur.as_ref().map(Tail::id);
        if !valid || reading == Some((cp.dev, cp.ino)) {
            if let Some((t, _, _)) = found {
                t.close(&mut self.watches);
            }
            return;
        }
        let held = |id: Option<(u64, u64)>, name: &str| {
            (w.cur.iter().chain(&w.draining))
                .any(|d| Some(d.id()) == id || d.rotated.as_deref() == Some(name))
        };
        let Some(backlog) = w.backlog_from(found, &cp, &mut self.watches, false, &held) else {
            w.notices.push(Notice::LostAtStop(cp.offset));
            return;
        };
        // older than what the path's checkpoint reads: read first
        let mut front = Vec::new();
        if let Some((t, from)) = backlog.rest {
            if t.len_now() > cp.offset {
                w.notices.push(Notice::RotatedAtStop(from));
                front.push(t);
            } else if !w.writer_moved() {
                // its writer may still write it (not told to reopen)
                front.push(t);
            } else {
                t.close(&mut self.watches);
            }
        }
        front.extend(w.later_notice(backlog.later, backlog.unread));
        w.drain_saved |= !front.is_empty();
        w.draining.splice(0..0, front);
    }

    /// The paths whose saved positions are to be deleted (wildcard matches gone).
    pub fn take_forgotten(&mut self) -> Vec<String> {
        std::mem::take(&mut self.forgotten)
    }

    /// What the follower has to say (a pattern that matches too many files).
    pub fn take_notes(&mut self) -> Vec<String> {
        std::mem::take(&mut self.notes)
    }

    /// Follows the wildcard patterns `globs` (at start, at a reload, and again every second):
    /// each file a pattern matches now that is not followed yet is added. For a pattern
    /// followed before (in this run, or in the last one), such a file is new and read from its
    /// beginning ([`Follower::add_appeared`]); a pattern new to the configuration is only
    /// recorded, and [`Follower::set_paths`] then starts its files as on a first run (at their
    /// end). Returns the files added from their beginning, each with its pattern.
    pub fn set_globs(&mut self, globs: Vec<String>) -> Vec<(PathBuf, String)> {
        let mut added = Vec::new();
        // (an alias gone from the directory, or of a pattern no more followed, is forgotten;
        // a link whose file is gone for now, between a rotation's rename and the new file,
        // is left to `adopt_aliases`)
        self.aliases.retain(|p, _| {
            globs
                .iter()
                .any(|g| crate::sources::glob::matches(g, &p.to_string_lossy()))
                && fs::symlink_metadata(p).is_ok()
        });
        for g in &globs {
            let marker = glob_marker(g).path;
            let known = self.parked.remove(&marker).is_some() || self.known_globs.contains(g);
            if known {
                let followed: std::collections::HashSet<&Path> = self
                    .files
                    .iter()
                    .map(|w| w.path.as_path())
                    .chain(self.parked.keys().map(|k| Path::new(k.as_str())))
                    .collect();
                let paths = crate::sources::glob::expand_preferring(g, &|p| followed.contains(p));
                if paths.len() >= crate::sources::glob::MAX_MATCHES && self.capped.insert(g.clone())
                {
                    self.notes.push(format!(
                        "WARNING: {g} matches {} files or more: only {0} are followed (those followed before, then those holding the most data); the others are not read",
                        crate::sources::glob::MAX_MATCHES
                    ));
                }
                for path in paths {
                    if self.add_appeared(path.clone()) {
                        added.push((path, g.clone()));
                    }
                }
            }
            self.known_globs.insert(g.clone());
        }
        // a match that is gone, and whose file is read no more, is forgotten, with its saved
        // position: a directory of short-lived logs grew the followed list and the state
        // file's positions without bound, every batch saving them all (a review found). Back,
        // it is a new match, read from its start.
        let mut i = 0;
        while i < self.files.len() {
            let w = &self.files[i];
            let gone = w.cur.is_none()
                && w.draining.is_empty()
                && w.notices.is_empty()
                && globs
                    .iter()
                    .any(|g| crate::sources::glob::matches(g, &w.name))
                && matches!(fs::symlink_metadata(&w.path), Err(e) if is_missing(&e));
            if gone {
                let w = self.files.swap_remove(i);
                self.forgotten.push(w.name.clone());
                self.forgotten.push(drain_key(&w.name));
                w.close(&mut self.watches);
            } else {
                i += 1;
            }
        }
        self.globs = globs;
        added
    }

    /// Follows `paths` from now on (on config reload). Paths already followed keep their state;
    /// a removed path's position is remembered in case it comes back; a new path starts as on
    /// a first run (at the end of an existing file), unless a checkpoint was given for it.
    pub fn set_paths(&mut self, paths: Vec<PathBuf>) {
        self.set_paths_seen(paths, &[]);
    }

    /// [`Follower::set_paths`], a new path without checkpoint started where `seen` says its
    /// file ended when the paths were made (when it is still that file).
    pub fn set_paths_seen(&mut self, paths: Vec<PathBuf>, seen: &[(PathBuf, (u64, u64, u64))]) {
        let mut old = std::mem::take(&mut self.files);
        for path in paths {
            if self.files.iter().any(|w| w.path == path) {
                continue;
            }
            if let Some(i) = old.iter().position(|w| w.path == path) {
                self.files.push(old.swap_remove(i));
                continue;
            }
            let name = path.to_string_lossy().into_owned();
            let checkpoint = self.parked.remove(&name);
            let mut w = Watched::new(path, name, checkpoint);
            if let (Some((dev, ino, _)), Some((_, then))) =
                (w.initial, seen.iter().find(|(p, _)| *p == w.path))
            {
                if (then.0, then.1) == (dev, ino) {
                    w.initial = Some(*then);
                }
            }
            if w.initial.is_some() {
                w.opens_now = true;
            }
            self.resume_drained(&mut w);
            w.ensure_dir_watch(&mut self.watches);
            self.files.push(w);
        }
        for w in old {
            if let Some(cp) = w.checkpoint() {
                self.parked.insert(cp.path.clone(), cp);
            }
            w.close(&mut self.watches);
        }
    }
}

/// What one poll shares between files.
struct Ctx<'b> {
    buf: &'b mut [u8],
    /// Bytes this poll may still read, over all files.
    budget: u64,
    max_line: usize,
    drain_idle: Duration,
    watches: &'b mut Watches,
    now: Instant,
}

enum Notice {
    Truncated,
    /// The rest of the file read when the last run stopped, rotated away just before: now
    /// under this name.
    RotatedAtStop(String),
    /// That file, read up to this offset, is not found under a rotated name.
    LostAtStop(u64),
    /// The rest of the file read before, rotated away while the daemon was down, is read
    /// from this name.
    RotatedWhileDown(String),
    /// The same, found under a name that is no rotation of the path's (see
    /// [`Event::MovedWhileDown`]).
    MovedWhileDown(String, Vec<String>),
    /// See [`Event::RotatedAgainWhileDown`].
    RotatedAgainWhileDown(Vec<String>, Unread),
    /// See [`Event::LostWhileDown`].
    LostWhileDown(u64),
    /// See [`Event::StillWritten`].
    StillWritten(u64),
    /// The new file at the path is a copy of the one read (see [`copy_offset`]): read on from
    /// this offset; exactly the same bytes before it?
    Copy(u64, bool),
    /// See [`Event::Resumed`].
    Resumed(u64),
    Error(String),
}

/// What a start reads of a log rotated while the daemon was down
/// ([`Watched::rotated_backlog`]), each file with its name.
struct Backlog {
    /// The file read before the stop, at the place read to (none for a log that was empty
    /// then, whose file is not found).
    rest: Option<(Tail, String)>,
    /// The later rotations, from their start, oldest first.
    later: Vec<(Tail, String)>,
    unread: Unread,
}

/// Later rotations of a backlog not read ([`Watched::rotated_backlog`]).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Unread {
    /// The oldest, over [`MAX_LATER`].
    pub skipped: usize,
    /// Those that could not be read (a `.gz` over the budget of decompressed bytes, a file
    /// that cannot be opened), by name.
    pub failed: Vec<String>,
}

/// Says whether a file, by its (device, inode) when known, or by its name, is read already
/// ([`Watched::rotated_backlog`]).
type Held<'a> = &'a dyn Fn(Option<(u64, u64)>, &str) -> bool;

/// One followed path.
struct Watched {
    path: PathBuf,
    name: String,
    /// The file the path named when last looked at.
    cur: Option<Tail>,
    /// Files rotated away from the path, still read until they go quiet. Oldest first.
    draining: Vec<Tail>,
    /// A checkpoint not applied yet (the path had no readable file so far).
    checkpoint: Option<Checkpoint>,
    /// dev+ino of the file at the path when following began, and its size then, until a
    /// file is first opened: that file is read from its last newline before that size.
    initial: Option<(u64, u64, u64)>,
    notices: Vec<Notice>,
    last_error: Option<String>,
    dir_watch: Option<DirWatch>,
    /// Files this path named and whose reading ended (rotated away, gone quiet), with where
    /// it was left (fingerprint, offset): one that comes back is read on from there. This
    /// path's own positions (another path to the same file reads on its own). At most
    /// [`LEFT_KEPT`], the newest last.
    left: Vec<((u64, u64), (u64, u64))>,
    /// A place of a rotated file's reading may be saved ([`Watched::drain_checkpoint`]): to
    /// be forgotten when that reading ends.
    drain_saved: bool,
    /// At a start: the file a rotation just before the last stop saved its place in (read
    /// from there), which the backlog of the path's own checkpoint leaves out.
    leave_out: Option<((u64, u64), String)>,
    /// At a start: the path's file is opened once that place is known
    /// ([`Follower::resume_drained`]).
    opens_now: bool,
}

/// How many closed files a path remembers where it left ([`Watched::left`]).
const LEFT_KEPT: usize = 8;

/// The directory watched for a path: its parent, or the nearest ancestor that exists.
struct DirWatch {
    wd: Option<WatchDescriptor>,
    dev: u64,
    ino: u64,
}

impl Watched {
    fn new(path: PathBuf, name: String, checkpoint: Option<Checkpoint>) -> Self {
        let initial = fs::metadata(&path)
            .ok()
            .map(|m| (m.dev(), m.ino(), m.len()));
        Watched {
            path,
            name,
            cur: None,
            draining: Vec::new(),
            checkpoint,
            initial,
            notices: Vec::new(),
            last_error: None,
            dir_watch: None,
            left: Vec::new(),
            drain_saved: false,
            leave_out: None,
            opens_now: false,
        }
    }

    fn poll(&mut self, cx: &mut Ctx, f: &mut dyn FnMut(Event)) -> u64 {
        self.flush_notices(f);
        let mut total = 0;

        // Files rotated away: a writer may still be finishing them.
        let mut errors = Vec::new();
        // (a stat only when there is something rotated away: this runs at every poll)
        let moved = self.draining.is_empty() || self.writer_moved();
        for t in &mut self.draining {
            let (n, err) = t.read(cx, &self.name, f);
            total += n;
            errors.extend(err);
            // still written well after its rotation, while the path's new file stays empty:
            // its writer did not reopen its log (said once per file)
            let late = t
                .rotated_at
                .is_some_and(|at| cx.now.duration_since(at) >= STILL_WRITTEN);
            if n > 0 && late && !moved && !t.still_said {
                t.still_said = true;
                self.notices.push(Notice::StillWritten(
                    cx.now
                        .duration_since(t.rotated_at.unwrap_or(cx.now))
                        .as_secs(),
                ));
            }
        }

        // The file we know as the path's: truncated? then read it to its end.
        if let Some(t) = &mut self.cur {
            if t.truncated() {
                match t.seek_to(0) {
                    Ok(()) => f(Event::Truncated { path: &self.name }),
                    Err(e) => errors.push(e),
                }
            }
            let (n, err) = t.read(cx, &self.name, f);
            total += n;
            errors.extend(err);
        }
        for e in errors.drain(..) {
            self.error(format!("read: {e}"));
        }

        // Does the path still name that file?
        match fs::metadata(&self.path) {
            Ok(m) => {
                let id = (m.dev(), m.ino());
                if self.cur.as_ref().map(Tail::id) != Some(id) {
                    self.rotate_away(cx.now, f);
                    if let Some(i) = self.draining.iter().position(|t| t.id() == id) {
                        // Renamed back: we already hold it.
                        self.cur = Some(self.draining.remove(i));
                    } else {
                        // the file just rotated away may have been replaced by a copy of
                        // itself (`sed -i`, an editor, a restore): read on where we were
                        let copy_of = self
                            .draining
                            .last()
                            .and_then(|old| copy_offset(old, &self.path));
                        let draining = self.draining.len();
                        self.cur = self.open(cx.buf, cx.watches);
                        if let (Some((off, exact)), Some(t)) = (copy_of, &mut self.cur) {
                            if t.pos == 0 && t.seek_to(off).is_ok() {
                                self.notices.push(Notice::Copy(off, exact));
                            }
                        }
                        // a file read before in this run, back at the path (moved away and
                        // back, a symlink pointed at it again): read on where it was left.
                        // (Read again from its start, its failures of the last two days
                        // were counted at the time they were read, and banned: a review
                        // found.)
                        if let Some(t) = &mut self.cur {
                            let back = self.left.iter().position(|&(id, (fp, off))| {
                                id == t.id()
                                    && off > 0
                                    && t.file.metadata().is_ok_and(|m| m.len() >= off)
                                    && head_fingerprint(&t.file, off) == Some(fp)
                            });
                            if let Some(i) = back {
                                let (_, (_, off)) = self.left.remove(i);
                                if t.pos == 0 && t.seek_to(off).is_ok() {
                                    self.notices.push(Notice::Resumed(off));
                                }
                            }
                        }
                        self.flush_notices(f);
                        // the rest of a file rotated while the daemon was down, first
                        for t in &mut self.draining[draining..] {
                            let (n, err) = t.read(cx, &self.name, f);
                            total += n;
                            if let Some(e) = err {
                                errors.push(e);
                            }
                        }
                        if let Some(t) = &mut self.cur {
                            let (n, err) = t.read(cx, &self.name, f);
                            total += n;
                            if let Some(e) = err {
                                self.error(format!("read: {e}"));
                            }
                        }
                    }
                }
            }
            Err(e) if is_missing(&e) => {
                self.last_error = None;
                self.rotate_away(cx.now, f);
            }
            Err(e) => self.error(format!("stat: {e}")),
        }
        for e in errors {
            self.error(format!("read: {e}"));
        }

        // Close rotated-away files that went quiet once their writer writes the path's new
        // file (or they are deleted), or the oldest beyond the limit. A writer that was not
        // told to reopen its log (logrotate's `create` without a `postrotate`) goes on in the
        // old file, however long it is quiet: it is read as long as the new file is empty
        // ([`Watched::writer_moved`]).
        let held = self.held_for_writer();
        let mut i = 0;
        while i < self.draining.len() {
            let t = &self.draining[i];
            let is_held = Some(t.id()) == held;
            let idle = cx.now.duration_since(t.last_data) >= cx.drain_idle;
            let quiet = idle && (!is_held || t.deleted());
            // over the limit: the oldest read to its end and idle (a backlog of rotations read
            // after a start is not closed unread; a file just rotated away may get its
            // writer's last lines yet), not the file rotated last, nor the one held for its
            // writer
            let over = self.draining.len() > MAX_DRAINING
                && (self.draining.len() > MAX_DRAINING + MAX_LATER
                    || (i + 1 < self.draining.len() && !is_held && idle && t.pos >= t.len_now()));
            if quiet || over {
                let mut t = self.draining.remove(i);
                t.split.flush(cx.max_line, &self.name, f);
                self.left.retain(|(id, _)| *id != t.id());
                if self.left.len() >= LEFT_KEPT {
                    self.left.remove(0);
                }
                self.left.push((t.id(), t.consumed()));
                t.close(cx.watches);
            } else {
                i += 1;
            }
        }

        self.ensure_dir_watch(cx.watches);
        self.flush_notices(f);
        total
    }

    /// Whether the path's own backlog at a start leaves out this file ([`Watched::leave_out`]).
    fn left_out(&self, id: Option<(u64, u64)>, name: &str) -> bool {
        (self.leave_out.as_ref()).is_some_and(|(fid, fname)| Some(*fid) == id || fname == name)
    }

    /// Whether the files rotated away are done with once they are quiet: the path's file
    /// holds data (its writer reopened its log), or there is none (a log moved away, a
    /// wildcard's match gone: kept open, such files would pile up). Not while the path names
    /// an empty file, as logrotate's `create` leaves it: a writer not told to reopen its log
    /// goes on in the old file.
    fn writer_moved(&self) -> bool {
        self.cur.as_ref().is_none_or(|c| c.len_now() > 0)
    }

    /// The rotated file a writer not told to reopen its log may still write, kept open
    /// however long it is quiet: while the path's file is empty ([`Watched::writer_moved`]),
    /// the newest rotated file that holds data. Only that one (review 19: the empty files of
    /// later rotations were kept too, five descriptors a path, and over the limit the one
    /// still written was closed instead of them).
    fn held_for_writer(&self) -> Option<(u64, u64)> {
        if self.draining.is_empty() || self.writer_moved() {
            return None;
        }
        (self.draining.iter().rev())
            .find(|t| t.len_now() > 0)
            .map(Tail::id)
    }

    /// The path no longer names `cur`: keep reading it among the draining files.
    fn rotate_away(&mut self, now: Instant, f: &mut dyn FnMut(Event)) {
        if let Some(mut t) = self.cur.take() {
            t.last_data = now;
            t.rotated_at = Some(now);
            self.draining.push(t);
            f(Event::Rotated { path: &self.name });
        }
    }

    /// Opens the file at the path and places it where reading starts (see the module doc).
    fn open(&mut self, buf: &mut [u8], watches: &mut Watches) -> Option<Tail> {
        let file = match open_regular(&self.path) {
            Ok(file) => file,
            Err(e) if is_missing(&e) => return None,
            Err(e) if e.kind() == io::ErrorKind::InvalidInput => {
                self.error(e.to_string());
                return None;
            }
            Err(e) => {
                self.error(format!("open: {e}"));
                return None;
            }
        };
        let meta = match file.metadata() {
            Ok(m) if m.is_file() => m,
            Ok(_) => {
                self.error("not a regular file".to_string());
                return None;
            }
            Err(e) => {
                self.error(format!("stat: {e}"));
                return None;
            }
        };
        let (dev, ino, len) = (meta.dev(), meta.ino(), meta.len());
        let mut at_start_of_run = false;
        let start = match self.checkpoint.take() {
            Some(cp) if (cp.dev, cp.ino) == (dev, ino) && !born_after(&meta, &cp) => {
                if len >= cp.offset && head_fingerprint(&file, cp.offset) == Some(cp.fingerprint) {
                    cp.offset
                } else {
                    // truncated while the daemon was down: by logrotate's `copytruncate`,
                    // whose copy, under logrotate's name for it, holds the rest
                    let left_out = |id, name: &str| self.left_out(id, name);
                    if let Some(backlog) = self.rotated_backlog(&cp, watches, true, &left_out) {
                        self.take_backlog(backlog, watches);
                    }
                    self.notices.push(Notice::Truncated);
                    0
                }
            }
            Some(cp) => {
                // the file read before was rotated away while the daemon was down: if
                // logrotate's name for it holds it (uncompressed: delaycompress; or gzip),
                // its rest is read too
                let left_out = |id, name: &str| self.left_out(id, name);
                if let Some(backlog) = self.rotated_backlog(&cp, watches, false, &left_out) {
                    self.take_backlog(backlog, watches);
                } else if cp.ino != 0 && cp.offset > 0 {
                    // (said: lines may be lost, a review found none said)
                    self.notices.push(Notice::LostWhileDown(cp.offset));
                }
                0
            }
            // (the size then: what was written since, as the daemon started following the
            // path, is read; a file shorter now was truncated: its end)
            None if self.initial.is_some_and(|(d, i, _)| (d, i) == (dev, ino)) => {
                let at = self.initial.map_or(len, |(_, _, then)| then.min(len));
                at_start_of_run = true;
                after_last_newline(&file, at, buf)
            }
            None => 0,
        };
        self.initial = None;
        self.last_error = None;
        let mut tail = Tail::new(file, dev, ino);
        if let Err(e) = tail.seek_to(start) {
            self.error(format!("seek: {e}"));
            return None;
        }
        // (a file there when following began is read from its end, not whole, even empty)
        tail.whole &= !at_start_of_run;
        let proc_path = format!("/proc/self/fd/{}", tail.file.as_raw_fd());
        tail.wd = watches
            .add(Path::new(&proc_path), FILE_MASK)
            .or_else(|| watches.add(&self.path, FILE_MASK));
        Some(tail)
    }

    /// The file `cp` was taken of, found under a name logrotate gives a rotated log (`NAME.1`,
    /// `NAME.2`, `NAME.0`, `NAME-YYYYMMDD[HH]`, `NAME.old`) with its bytes read so far
    /// unchanged: opened at the checkpoint's offset, with its name and the rotation that
    /// name says. `copied`: the file was truncated in place (`copytruncate`), so its rest is
    /// in a copy, another inode with the same first bytes.
    fn rotated_while_down(
        &self,
        cp: &Checkpoint,
        watches: &mut Watches,
        copied: bool,
    ) -> Option<(Tail, String, Rotation)> {
        for (p, rotation) in self.rotated_names("")? {
            let Ok(file) = open_regular(&p) else {
                continue;
            };
            let Ok(m) = file.metadata() else { continue };
            if ((m.dev(), m.ino()) == (cp.dev, cp.ino) && !born_after(&m, cp)) == copied
                || m.len() < cp.offset
                || head_fingerprint(&file, cp.offset) != Some(cp.fingerprint)
            {
                continue;
            }
            let t = watched_tail(file, &m, cp.offset, &p, watches)?;
            return Some((t, p.display().to_string(), rotation));
        }
        let gz = self.gz_rotation(cp);
        if copied || gz.is_some() {
            return gz;
        }
        self.moved_while_down(cp, watches)
    }

    /// The file `cp` was taken of, found by its (device, inode) under a name that is no
    /// rotation of the path's, in the path's directory or the one the path's link names now:
    /// a link moved along numbered files (`current.log` -> `app-N.log`) while the daemon was
    /// down, or a log renamed by a scheme logrotate does not use. Its bytes read so far must
    /// be unchanged, as under a rotated name. (Review 64 M2: such a file was looked for only
    /// under rotated names, and the rest of it was lost.) At most [`MOVED_SCAN`] names of
    /// each directory are looked at, by the inode their entry gives (no file is opened but
    /// the one found).
    fn moved_while_down(
        &self,
        cp: &Checkpoint,
        watches: &mut Watches,
    ) -> Option<(Tail, String, Rotation)> {
        if cp.ino == 0 {
            return None;
        }
        let mut dirs: Vec<PathBuf> = self
            .path
            .parent()
            .map(Path::to_path_buf)
            .into_iter()
            .collect();
        if let Some(d) = fs::canonicalize(&self.path)
            .ok()
            .and_then(|t| t.parent().map(Path::to_path_buf))
        {
            if !dirs.contains(&d) {
                dirs.push(d);
            }
        }
        for dir in dirs {
            let Ok(entries) = fs::read_dir(&dir) else {
                continue;
            };
            for e in entries.take(MOVED_SCAN).flatten() {
                if std::os::unix::fs::DirEntryExt::ino(&e) != cp.ino {
                    continue;
                }
                let p = e.path();
                let Ok(file) = open_regular(&p) else {
                    continue;
                };
                let Ok(m) = file.metadata() else { continue };
                if (m.dev(), m.ino()) != (cp.dev, cp.ino)
                    || born_after(&m, cp)
                    || m.len() < cp.offset
                    || head_fingerprint(&file, cp.offset) != Some(cp.fingerprint)
                {
                    continue;
                }
                let t = watched_tail(file, &m, cp.offset, &p, watches)?;
                let name = p.display().to_string();
                // (no rotation of the path's: no later one is looked for after it)
                return Some((t, name, Rotation::Old));
            }
        }
        None
    }

    /// Whether `name` is one logrotate gives the path's file at a rotation, plain or `.gz`.
    fn is_rotated_name(&self, name: &str) -> bool {
        let (Some(dir), Some(base)) = (self.path.parent(), self.path.file_name()) else {
            return false;
        };
        let p = Path::new(name);
        let rest = (p.parent() == Some(dir))
            .then(|| p.file_name()?.to_str()?.strip_prefix(base.to_str()?))
            .flatten();
        rest.is_some_and(|r| {
            crate::sources::glob::rotation_of(r.strip_suffix(".gz").unwrap_or(r)).is_some()
        })
    }

    /// [`Watched::rotated_while_down`], then the rotations of the path's log made after that
    /// one (the log rotated more than once while the daemon was down: every line in them was
    /// written after the stop), opened to be read whole, oldest first, plain or
    /// gzip-compressed. Those `held` says are read already (by their (device, inode), when
    /// known, or their name) are left out. At most [`MAX_LATER`] later rotations, the
    /// newest; what is left unread is said in [`Backlog::unread`].
    ///
    /// A log empty when its place was taken (offset 0), whose file is not found (compressed:
    /// nothing read tells it by its first bytes): every rotation modified since that place
    /// was taken holds only lines written after it, and is read whole, oldest first (review
    /// 18: all lost, and nothing said).
    fn rotated_backlog(
        &self,
        cp: &Checkpoint,
        watches: &mut Watches,
        copied: bool,
        held: Held,
    ) -> Option<Backlog> {
        let found = self.rotated_while_down(cp, watches, copied);
        self.backlog_from(found, cp, watches, copied, held)
    }

    /// [`Watched::rotated_backlog`] from what [`Watched::rotated_while_down`] found.
    fn backlog_from(
        &self,
        found: Option<(Tail, String, Rotation)>,
        cp: &Checkpoint,
        watches: &mut Watches,
        copied: bool,
        held: Held,
    ) -> Option<Backlog> {
        let mtime = |p: &Path| fs::metadata(p).and_then(|m| m.modified()).ok();
        let since_empty = (found.is_none() && cp.offset == 0 && cp.saved_ms > 0 && !copied)
            .then(|| UNIX_EPOCH + Duration::from_millis(cp.saved_ms as u64));
        if found.is_none() && since_empty.is_none() {
            return None;
        }
        // a later rotation was last written after that file (logrotate keeps a file's time
        // when it compresses it): a file under such a name last written long before is a
        // leftover, not read (its old lines would count as new)
        let saved = found
            .as_ref()
            .and_then(|(_, name, _)| mtime(Path::new(name)));
        let wanted = |p: &Path, r: &Rotation| match (&found, since_empty) {
            (Some((_, _, rotation)), _) => {
                r.later_than(rotation)
                    && match (saved, mtime(p)) {
                        (Some(s), Some(m)) => m + LATER_SLACK >= s,
                        _ => true,
                    }
            }
            (None, Some(t)) => mtime(p).is_some_and(|m| m + MTIME_GRAIN >= t),
            (None, None) => false,
        };
        let mut later: Vec<(PathBuf, Rotation, bool)> = Vec::new();
        for gz in [false, true] {
            for (p, r) in self.rotated_names(if gz { ".gz" } else { "" })? {
                // a rotation both plain and compressed (logrotate compressing it just now):
                // the plain file
                if wanted(&p, &r) && !later.iter().any(|(_, l, _)| *l == r) {
                    later.push((p, r, gz));
                }
            }
        }
        let order = |a: &Rotation, b: &Rotation| {
            if a.later_than(b) {
                std::cmp::Ordering::Greater
            } else if b.later_than(a) {
                std::cmp::Ordering::Less
            } else {
                std::cmp::Ordering::Equal
            }
        };
        if found.is_some() {
            later.sort_by(|(_, a, _), (_, b, _)| order(a, b));
        } else {
            // by time (logrotate keeps a file's time when it compresses it), then by name
            let mut timed: Vec<_> = later.into_iter().map(|l| (mtime(&l.0), l)).collect();
            timed.sort_by(|(ta, (_, a, _)), (tb, (_, b, _))| ta.cmp(tb).then(order(a, b)));
            later = timed.into_iter().map(|(_, l)| l).collect();
        }
        let mut unread = Unread {
            skipped: later.len().saturating_sub(MAX_LATER),
            failed: Vec::new(),
        };
        let mut out = Vec::new();
        for (p, _, gz) in later.into_iter().skip(unread.skipped) {
            let name = p.display().to_string();
            // (by its name before a compressed one is decompressed, which costs the budget)
            if held(None, &name) {
                continue;
            }
            let opened = open_regular(&p).ok().and_then(|file| {
                let (file, kept) = if gz {
                    gunzip_from(file, None)?
                } else {
                    (file, 0)
                };
                let m = file.metadata().ok()?;
                let mut t = Tail::new(file, m.dev(), m.ino());
                t.gz_kept = kept;
                Some(t)
            });
            let Some(mut t) = opened else {
                unread.failed.push(name);
                continue;
            };
            if held(Some(t.id()), &name) {
                continue;
            }
            if t.seek_to(0).is_err() {
                unread.failed.push(name);
                continue;
            }
            t.rotated = Some(name.clone());
            if !gz {
                let proc_path = format!("/proc/self/fd/{}", t.file.as_raw_fd());
                t.wd = watches.add(Path::new(&proc_path), FILE_MASK);
            }
            out.push((t, name));
        }
        let rest = found.map(|(t, name, _)| (t, name));
        if rest.is_none() && out.is_empty() && unread.failed.is_empty() && unread.skipped == 0 {
            return None;
        }
        Some(Backlog {
            rest,
            later: out,
            unread,
        })
    }

    /// Reads what [`Watched::rotated_backlog`] found after what is read already: the rest of
    /// the file read before the stop, then the later rotations whole.
    fn take_backlog(&mut self, backlog: Backlog, watches: &mut Watches) {
        if let Some((t, from)) = backlog.rest {
            if self.is_rotated_name(&from) {
                self.notices.push(Notice::RotatedWhileDown(from));
                self.draining.push(t);
            } else {
                let (between, unknown) = self.moved_between(Path::new(&from), t.id(), watches);
                let (tails, mut names): (Vec<Tail>, Vec<String>) = between.into_iter().unzip();
                // (said: a file the link named in between may be lost, review 69)
                if let Some(why) = unknown {
                    names.push(why);
                }
                self.notices.push(Notice::MovedWhileDown(from, names));
                self.draining.push(t);
                self.draining.extend(tails);
            }
        }
        let later = self.later_notice(backlog.later, backlog.unread);
        self.draining.extend(later);
    }

    /// For a link (the path) that named `found` when the daemon stopped and names another
    /// file now: the files it named in between, as far as they can be told, opened to be
    /// read whole, oldest first. Those of `found`'s directory named in the same series
    /// (the same name but for its numbers: `app-3.log` after `app-2.log`), made after
    /// `found` and before the file the link names now. At most [`MAX_LATER`], the newest.
    /// (Review 67 L1: a link moved twice while the daemon was down lost the middle file.)
    /// With what to say when the files in between cannot be told (their birth times cannot
    /// be read) or were more than [`MAX_LATER`].
    fn moved_between(
        &self,
        found: &Path,
        found_id: (u64, u64),
        watches: &mut Watches,
    ) -> (Vec<(Tail, String)>, Option<String>) {
        if !fs::symlink_metadata(&self.path).is_ok_and(|m| m.file_type().is_symlink()) {
            return (Vec::new(), None);
        }
        let born = |m: &fs::Metadata| m.created().ok();
        let (Some(dir), Some(series)) = (
            found.parent(),
            found.file_name().map(|n| series_of(&n.to_string_lossy())),
        ) else {
            return (Vec::new(), None);
        };
        let now_meta = fs::metadata(&self.path).ok();
        let (Some(from), Some(now)) = (
            fs::metadata(found).ok().and_then(|m| born(&m)),
            now_meta.as_ref().and_then(born),
        ) else {
            let why = "(files' birth times cannot be read here: a file the link named in between, if any, is not read)";
            return (Vec::new(), Some(why.to_string()));
        };
        let now_id = now_meta.map(|m| (m.dev(), m.ino()));
        let Ok(entries) = fs::read_dir(dir) else {
            return (Vec::new(), None);
        };
        let mut found_files: Vec<(std::time::SystemTime, PathBuf)> = entries
            .take(MOVED_SCAN)
            .flatten()
            .filter(|e| series_of(&e.file_name().to_string_lossy()) == series)
            .filter_map(|e| {
                let m = e.metadata().ok().filter(fs::Metadata::is_file)?;
                let id = (m.dev(), m.ino());
                let b = born(&m)?;
                (id != found_id && Some(id) != now_id && b > from && b < now).then(|| (b, e.path()))
            })
            .collect();
        found_files.sort();
        let skip = found_files.len().saturating_sub(MAX_LATER);
        let unknown = (skip > 0)
            .then(|| format!("({skip} older file(s) of the series not read: at most {MAX_LATER})"));
        let mut out = Vec::new();
        for (_, p) in found_files.into_iter().skip(skip) {
            let Ok(file) = open_regular(&p) else { continue };
            let Ok(m) = file.metadata() else { continue };
            let Some(t) = watched_tail(file, &m, 0, &p, watches) else {
                continue;
            };
            out.push((t, p.display().to_string()));
        }
        (out, unknown)
    }

    /// The later rotations of a backlog, said ([`Event::RotatedAgainWhileDown`]).
    fn later_notice(&mut self, tails: Vec<(Tail, String)>, unread: Unread) -> Vec<Tail> {
        let (later, names): (Vec<Tail>, Vec<String>) = tails.into_iter().unzip();
        if !names.is_empty() || unread.skipped > 0 || !unread.failed.is_empty() {
            self.notices
                .push(Notice::RotatedAgainWhileDown(names, unread));
        }
        later
    }

    /// At a start, for a path whose file is not opened yet (missing now, or a wildcard's
    /// match opened at the first poll): when the path's own checkpoint names a file that is
    /// no longer at the path, its backlog (the rest of that file under its rotated name, the
    /// later rotations) is taken now, and the new file at the path, whenever it comes, read
    /// from its start. A file not found under a rotated name keeps the checkpoint (the path
    /// may name it again).
    fn settle_checkpoint(&mut self, watches: &mut Watches) {
        let Some(cp) = self.checkpoint.take() else {
            return;
        };
        let at_path = fs::metadata(&self.path).ok().map(|m| (m.dev(), m.ino()));
        if self.cur.is_some() || cp.ino == 0 || at_path == Some((cp.dev, cp.ino)) {
            self.checkpoint = Some(cp);
            return;
        }
        match self.rotated_backlog(&cp, watches, false, &|id, name| self.left_out(id, name)) {
            Some(backlog) => self.take_backlog(backlog, watches),
            None => self.checkpoint = Some(cp),
        }
    }

    /// The files of the path's directory named as logrotate names the path's file at a
    /// rotation (`NAME.1`, `NAME-YYYYMMDD`, ...: [`crate::sources::glob::rotation_of`]),
    /// followed by `ext` (`""` or `".gz"`), with the rotation each name says; `None` when the
    /// directory cannot be read.
    fn rotated_names(&self, ext: &str) -> Option<Vec<(PathBuf, Rotation)>> {
        let dir = self.path.parent()?;
        let base = self.path.file_name()?.to_str()?;
        let names = fs::read_dir(dir).ok()?.filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            let rest = name.strip_prefix(base)?.strip_suffix(ext)?;
            let rotation = crate::sources::glob::rotation_of(rest)?;
            Some((dir.join(name), rotation))
        });
        Some(names.collect())
    }

    /// [`Watched::rotated_while_down`] for a rotation compressed at once (logrotate's
    /// `compress` without `delaycompress`): `NAME.1.gz`, `NAME.0.gz`, `NAME.old.gz`,
    /// `NAME-YYYYMMDD[HH].gz`, found by its first bytes (a compressed copy has an inode of its
    /// own). Decompressed into memory where reading needs it: its first bytes and what
    /// follows the checkpoint's offset, the bytes between left a hole. At most
    /// [`GZ_SCAN`] bytes are decompressed, and at most [`GZ_REST`] kept after the offsets,
    /// all such files together; over either, it is not read (and the loss is said as before).
    fn gz_rotation(&self, cp: &Checkpoint) -> Option<(Tail, String, Rotation)> {
        if cp.offset == 0 {
            return None;
        }
        let mut names = self.rotated_names(".gz")?;
        // the newest first: the file rotated last is the one read before the stop (an older
        // rotation of a log with a fixed header may begin with the same bytes)
        names.sort_by_cached_key(|(p, _)| {
            std::cmp::Reverse(fs::metadata(p).and_then(|m| m.modified()).ok())
        });
        for (p, rotation) in names {
            let Ok(gz) = open_regular(&p) else {
                continue;
            };
            if let Some((file, kept)) = gunzip_from(gz, Some(cp)) {
                let Ok(m) = file.metadata() else { continue };
                let mut t = Tail::new(file, m.dev(), m.ino());
                t.gz_kept = kept;
                if t.seek_to(cp.offset).is_err() {
                    continue;
                }
                t.rotated = Some(p.display().to_string());
                return Some((t, p.display().to_string(), rotation));
            }
        }
        None
    }

    /// Watches the nearest existing ancestor directory, moving the watch when that changes.
    fn ensure_dir_watch(&mut self, watches: &mut Watches) {
        let mut dir = match self.path.parent() {
            Some(p) if p.as_os_str().is_empty() => Path::new("."),
            Some(p) => p,
            None => return,
        };
        let meta = loop {
            match fs::metadata(dir) {
                Ok(m) if m.is_dir() => break m,
                _ => match dir.parent() {
                    Some(p) if !p.as_os_str().is_empty() => dir = p,
                    _ => return,
                },
            }
        };
        if let Some(d) = &self.dir_watch {
            if (d.dev, d.ino) == (meta.dev(), meta.ino()) {
                return;
            }
        }
        if let Some(wd) = self.dir_watch.take().and_then(|d| d.wd) {
            watches.remove(wd);
        }
        self.dir_watch = Some(DirWatch {
            wd: watches.add(dir, DIR_MASK),
            dev: meta.dev(),
            ino: meta.ino(),
        });
    }

    fn checkpoint(&self) -> Option<Checkpoint> {
        if let Some(t) = &self.cur {
            return Some(t.checkpoint(&self.name));
        }
        if let Some(cp) = &self.checkpoint {
            return Some(cp.clone());
        }
        if self.initial.is_some() {
            return None;
        }
        Some(Checkpoint {
            path: self.name.clone(),
            ..Default::default()
        })
    }

    /// Where reading of the newest file rotated away from the path and still read to its end
    /// stands. Saved under [`drain_key`] while there is one (forgotten when its reading ends,
    /// see [`Follower::poll`]), so that a stop just after a rotation does not lose what the
    /// writer adds to the old file before it reopens its log (read at the next start, when
    /// the file is under a rotated name). A reading that ended (quiet for [`DRAIN_IDLE`]) is
    /// not saved: what comes after is not read while the daemon runs either, and a saved
    /// place would be tried at every start (review 17: an unfinished last line counted again
    /// at each, a whole `.gz` decompressed at each).
    /// With several files read to their end (a backlog of rotations read after a start), the
    /// oldest not read to its end yet: the next start reads its rest and the later ones.
    /// (One not begun yet after one read to its end: that one, at its end, whose later
    /// rotations the next start reads; a place at offset 0 says nothing and is not taken,
    /// review 18.)
    /// All read to their end: the one held for a writer not told to reopen its log, if any
    /// (review 19: the newest, an empty later rotation, was saved at offset 0, and the
    /// file still written was lost at the next start).
    fn drain_checkpoint(&self) -> Option<Checkpoint> {
        let held = self.held_for_writer();
        let t = match self.draining.iter().position(|t| t.pos < t.len_now()) {
            Some(i) if i > 0 && self.draining[i].line_end == 0 => &self.draining[i - 1],
            Some(i) => &self.draining[i],
            None => match self.draining.iter().find(|t| Some(t.id()) == held) {
                Some(t) => t,
                None => self.draining.last()?,
            },
        };
        Some(t.checkpoint(&drain_key(&self.name)))
    }

    fn error(&mut self, message: String) {
        if self.last_error.as_deref() != Some(message.as_str()) {
            self.last_error = Some(message.clone());
            self.notices.push(Notice::Error(message));
        }
    }

    fn flush_notices(&mut self, f: &mut dyn FnMut(Event)) {
        for notice in self.notices.drain(..) {
            match notice {
                Notice::Truncated => f(Event::Truncated { path: &self.name }),
                Notice::RotatedAtStop(from) => f(Event::RotatedAtStop {
                    path: &self.name,
                    from,
                }),
                Notice::LostAtStop(offset) => f(Event::LostAtStop {
                    path: &self.name,
                    offset,
                }),
                Notice::RotatedWhileDown(from) => f(Event::RotatedWhileDown {
                    path: &self.name,
                    from,
                }),
                Notice::MovedWhileDown(from, between) => f(Event::MovedWhileDown {
                    path: &self.name,
                    from,
                    between,
                }),
                Notice::RotatedAgainWhileDown(from, unread) => f(Event::RotatedAgainWhileDown {
                    path: &self.name,
                    from,
                    unread,
                }),
                Notice::StillWritten(after) => f(Event::StillWritten {
                    path: &self.name,
                    after,
                }),
                Notice::LostWhileDown(offset) => f(Event::LostWhileDown {
                    path: &self.name,
                    offset,
                }),
                Notice::Resumed(offset) => f(Event::Resumed {
                    path: &self.name,
                    offset,
                }),
                Notice::Copy(offset, exact) => f(Event::Copy {
                    path: &self.name,
                    offset,
                    exact,
                }),
                Notice::Error(message) => f(Event::Error {
                    path: &self.name,
                    message,
                }),
            }
        }
    }

    fn close(self, watches: &mut Watches) {
        for t in self.cur.into_iter().chain(self.draining) {
            t.close(watches);
        }
        if let Some(wd) = self.dir_watch.and_then(|d| d.wd) {
            watches.remove(wd);
        }
    }
}

/// One open file and how far it has been read.
struct Tail {
    file: File,
    dev: u64,
    ino: u64,
    /// Bytes consumed from the file (its read position).
    pos: u64,
    /// End of the last complete line consumed: the checkpoint offset.
    line_end: u64,
    /// The file's first `head_len = min(pos, HEAD_LEN)` bytes, as we read them.
    head: [u8; HEAD_LEN],
    head_len: usize,
    split: Splitter,
    wd: Option<WatchDescriptor>,
    last_data: Instant,
    /// The `line_end` last recorded in [`Follower`]'s `seen`.
    seen_at: Option<u64>,
    /// The rotated name it was opened under at start (its rest, or the whole of a later
    /// rotation, read as a backlog): a decompressed copy has an inode of its own.
    rotated: Option<String>,
    /// When the path stopped naming it (rotated away while the daemon ran).
    rotated_at: Option<Instant>,
    /// [`Notice::StillWritten`] was given for it.
    still_said: bool,
    /// Bytes of a decompressed rotation it holds, counted in [`GZ_KEPT`] until it is closed.
    gz_kept: u64,
    /// Read from its first byte in this run (a file new since the start, or truncated).
    whole: bool,
}

impl Tail {
    fn new(file: File, dev: u64, ino: u64) -> Self {
        Tail {
            file,
            dev,
            ino,
            pos: 0,
            line_end: 0,
            head: [0; HEAD_LEN],
            head_len: 0,
            split: Splitter {
                file: (dev, ino),
                ..Splitter::default()
            },
            wd: None,
            last_data: Instant::now(),
            seen_at: None,
            rotated: None,
            rotated_at: None,
            still_said: false,
            gz_kept: 0,
            whole: false,
        }
    }

    /// The file's size now (0 when it cannot be read).
    fn len_now(&self) -> u64 {
        self.file.metadata().map_or(0, |m| m.len())
    }

    fn id(&self) -> (u64, u64) {
        (self.dev, self.ino)
    }

    /// Whether its last name is gone (deleted: no writer can open it again; kept open, its
    /// room on the disk is not freed).
    fn deleted(&self) -> bool {
        self.file.metadata().map_or(true, |m| m.nlink() == 0)
    }

    /// Starts reading at `start`, which must be within the file. Starting inside a line skips
    /// the rest of it silently: we never deliver a fragment.
    fn seek_to(&mut self, start: u64) -> io::Result<()> {
        self.file.seek(SeekFrom::Start(start))?;
        self.head_len = start.min(HEAD_LEN as u64) as usize;
        self.file
            .read_exact_at(&mut self.head[..self.head_len], 0)?;
        let prev = match start {
            0 => b'\n',
            s if s <= HEAD_LEN as u64 => self.head[s as usize - 1],
            s => {
                let mut byte = [0u8];
                self.file.read_exact_at(&mut byte, s - 1)?;
                byte[0]
            }
        };
        self.pos = start;
        self.line_end = start;
        self.whole = start == 0;
        self.seen_at = None;
        self.split.reset();
        self.split.skipping = prev != b'\n';
        Ok(())
    }

    /// True when the file shrank below our position or its first bytes changed.
    fn truncated(&self) -> bool {
        let len = match self.file.metadata() {
            Ok(m) => m.len(),
            Err(_) => return false,
        };
        if len < self.pos {
            return true;
        }
        let n = self.head_len;
        if n == 0 {
            return false;
        }
        let mut now = [0u8; HEAD_LEN];
        match self.file.read_exact_at(&mut now[..n], 0) {
            Ok(()) => now[..n] != self.head[..n],
            Err(e) => e.kind() == io::ErrorKind::UnexpectedEof,
        }
    }

    /// Reads to the end of the file, delivering complete lines.
    fn read(
        &mut self,
        cx: &mut Ctx,
        name: &str,
        f: &mut dyn FnMut(Event),
    ) -> (u64, Option<io::Error>) {
        let mut total = 0;
        let mut error = None;
        loop {
            // at most the poll's budget: a huge backlog is read over several polls, each
            // handed on before the next (see `POLL_BYTES`)
            let want = (cx.budget.min(cx.buf.len() as u64)) as usize;
            if want == 0 {
                // not idle, only out of budget: a rotated file must not be closed for it
                self.last_data = cx.now;
                break;
            }
            let n = match self.file.read(&mut cx.buf[..want]) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    error = Some(e);
                    break;
                }
            };
            let chunk = &cx.buf[..n];
            if self.head_len < HEAD_LEN && self.pos == self.head_len as u64 {
                let take = (HEAD_LEN - self.head_len).min(n);
                self.head[self.head_len..self.head_len + take].copy_from_slice(&chunk[..take]);
                self.head_len += take;
            }
            if let Some(end) = self.split.feed(chunk, cx.max_line, name, f) {
                self.line_end = self.pos + end as u64;
            }
            self.pos += n as u64;
            total += n as u64;
            cx.budget -= n as u64;
        }
        if total > 0 {
            self.last_data = cx.now;
        }
        (total, error)
    }

    /// (fingerprint, offset) of what has been consumed: see [`Checkpoint`].
    fn consumed(&self) -> (u64, u64) {
        let n = self.line_end.min(HEAD_LEN as u64) as usize;
        (fingerprint(&self.head[..n]), self.line_end)
    }

    fn checkpoint(&self, name: &str) -> Checkpoint {
        let (fingerprint, offset) = self.consumed();
        Checkpoint {
            path: name.to_string(),
            dev: self.dev,
            ino: self.ino,
            fingerprint,
            offset,
            saved_ms: now_ms(),
        }
    }

    fn close(mut self, watches: &mut Watches) {
        if let Some(wd) = self.wd.take() {
            watches.remove(wd);
        }
    }
}

impl Drop for Tail {
    /// A decompressed rotation's bytes are given back to [`GZ_KEPT`].
    fn drop(&mut self) {
        if self.gz_kept > 0 {
            GZ_KEPT.fetch_sub(self.gz_kept, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

/// Cuts a byte stream into lines; holds at most about `max_line` bytes of an unfinished one.
#[derive(Default)]
struct Splitter {
    /// The line so far; once it is longer than the limit, only its head.
    partial: Vec<u8>,
    /// A line longer than the limit: its last bytes (`max_line - head_len + 1`, the one
    /// more for a `\r` that may end it, kept in a buffer of up to twice that).
    tail: Vec<u8>,
    /// The length so far of a line longer than the limit.
    long: Option<usize>,
    /// Skip silently up to the next newline (we started inside a line).
    skipping: bool,
    /// (device, inode) of the file the lines come from, given with each.
    file: (u64, u64),
}

impl Splitter {
    /// Delivers the lines `chunk` completes; returns the index just past its last newline.
    fn feed(
        &mut self,
        chunk: &[u8],
        max_line: usize,
        path: &str,
        f: &mut dyn FnMut(Event),
    ) -> Option<usize> {
        let mut start = 0;
        for nl in memchr::memchr_iter(b'\n', chunk) {
            if self.skipping {
                self.skipping = false;
            } else {
                self.add(&chunk[start..nl], max_line);
                self.end_line(max_line, path, f);
            }
            start = nl + 1;
        }
        let rest = &chunk[start..];
        if !rest.is_empty() && !self.skipping {
            self.add(rest, max_line);
        }
        (start > 0).then_some(start)
    }

    /// Appends bytes of the current line, keeping only the head and the tail of a long one.
    fn add(&mut self, bytes: &[u8], max_line: usize) {
        let keep_tail = max_line - line::head_len(max_line) + 1;
        match &mut self.long {
            Some(len) => {
                *len += bytes.len();
                self.tail.extend_from_slice(bytes);
                if self.tail.len() > 2 * keep_tail {
                    self.tail.drain(..self.tail.len() - keep_tail);
                }
            }
            None if self.partial.len() + bytes.len() > max_line + 1 => {
                // too long even without a `\r` at its end: from now on head and tail only
                self.partial.extend_from_slice(bytes);
                let len = self.partial.len();
                self.tail.clear();
                self.tail
                    .extend_from_slice(&self.partial[len - keep_tail.min(len)..]);
                self.partial.truncate(line::head_len(max_line));
                self.long = Some(len);
            }
            None => self.partial.extend_from_slice(bytes),
        }
    }

    /// The current line is complete: deliver it (cut, and reported, when too long).
    fn end_line(&mut self, max_line: usize, path: &str, f: &mut dyn FnMut(Event)) {
        match self.long.take() {
            None => {
                let (l, cut) = line::prepare(&self.partial, max_line);
                f(Event::Line {
                    path,
                    file: self.file,
                    line: &l,
                });
                if cut {
                    f(Event::LongLine {
                        path,
                        len: line::strip_cr(&self.partial).len(),
                    });
                }
            }
            Some(mut len) => {
                if self.tail.last() == Some(&b'\r') {
                    self.tail.pop();
                    len -= 1;
                }
                let keep = max_line - line::head_len(max_line);
                self.partial
                    .extend_from_slice(&self.tail[self.tail.len() - keep..]);
                // (the NULs of a hole before it left out, as `line::prepare` does)
                let first = self.partial.iter().position(|&b| b != 0);
                f(Event::Line {
                    path,
                    file: self.file,
                    line: &self.partial[first.unwrap_or(self.partial.len())..],
                });
                f(Event::LongLine { path, len });
            }
        }
        self.partial.clear();
        self.tail.clear();
        // a long line's buffers are given back, not kept for every file
        if self.partial.capacity() > PARTIAL_KEEP {
            self.partial.shrink_to(PARTIAL_KEEP);
        }
        if self.tail.capacity() > PARTIAL_KEEP {
            self.tail.shrink_to(PARTIAL_KEEP);
        }
    }

    /// The file is closed for good: deliver what is left of its last line.
    fn flush(&mut self, max_line: usize, path: &str, f: &mut dyn FnMut(Event)) {
        if !self.skipping && (self.long.is_some() || !self.partial.is_empty()) {
            self.end_line(max_line, path, f);
        }
        self.reset();
    }

    fn reset(&mut self) {
        self.partial.clear();
        self.tail.clear();
        self.long = None;
        self.skipping = false;
    }

    /// Bytes of the unfinished line held.
    fn held(&self) -> usize {
        self.partial.len() + self.tail.len()
    }

    /// Delivers the unfinished line now, as it is (cut when long), gives its memory back, and
    /// skips the rest of it up to the next newline (see [`PARTIAL_BUDGET`]).
    fn cut_now(&mut self, max_line: usize, path: &str, f: &mut dyn FnMut(Event)) {
        let skip = !self.skipping && (self.long.is_some() || !self.partial.is_empty());
        self.flush(max_line, path, f);
        self.partial = Vec::new();
        self.tail = Vec::new();
        self.skipping = skip;
    }
}

fn is_missing(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(libc::ENOTDIR)
}

/// Where to read on in the file at `path` when it replaced `old`, if it is a copy of it (a
/// log is replaced by a copy of itself, edited or not, by `sed -i`, an editor's save or a
/// restore: reading it from its beginning would count every line again): its first bytes
/// are `old`'s (at least 128 of them, or all `old`'s consumed ones). Then `old`'s offset
/// when the bytes before it are the same too (an exact copy); else, edited, the same offset
/// or the copy's end if shorter (a line around the edit may be missed or read again).
/// A rotation's new file is empty or begins otherwise (its first line's time stamp).
fn copy_offset(old: &Tail, path: &Path) -> Option<(u64, bool)> {
    const HEAD: u64 = 64 << 10;
    const BEFORE: u64 = 4 << 10;
    const AT_LEAST: u64 = 128;
    let off = old.line_end;
    // (fewer bytes read say too little: a rotation's new file may begin with the same first
    // line; such a small log is read again from its beginning)
    if off < AT_LEAST {
        return None;
    }
    let new = open_regular(path).ok()?;
    let len = new.metadata().ok()?.len();
    let same = |from: u64, to: u64| -> bool {
        let n = (to - from) as usize;
        let (mut a, mut b) = (vec![0u8; n], vec![0u8; n]);
        old.file.read_exact_at(&mut a, from).is_ok()
            && new.read_exact_at(&mut b, from).is_ok()
            && a == b
    };
    // the bytes the two have in common from the start
    let n = off.min(len).min(HEAD) as usize;
    let (mut a, mut b) = (vec![0u8; n], vec![0u8; n]);
    if old.file.read_exact_at(&mut a, 0).is_err() || new.read_exact_at(&mut b, 0).is_err() {
        return None;
    }
    let common = a.iter().zip(&b).take_while(|(x, y)| x == y).count() as u64;
    if common < AT_LEAST {
        return None;
    }
    let head = off.min(HEAD);
    if len >= off && common >= head && same(off.saturating_sub(BEFORE).max(head), off) {
        Some((off, true))
    } else {
        Some((off.min(len), false))
    }
}

/// Opens `path` for reading only if it names a regular file, without ever opening anything
/// else: the path is first opened with `O_PATH` (which opens no device, FIFO or terminal),
/// checked on that descriptor, and then the same file is opened through it. A log's owner
/// (www-data for /var/log/nginx) can put a symlink in a log's place: to a pty, whose
/// `open` would make it the root daemon's controlling terminal (a ^C written there stopped
/// the daemon, a security review found), or to a device whose `open` acts (a watchdog, a
/// tape). `O_NOCTTY` besides, and `O_NONBLOCK` (a FIFO or a lock must not block the thread).
pub fn open_regular(path: &Path) -> io::Result<File> {
    let pathfd = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH)
        .open(path)?;
    if !pathfd.metadata()?.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOCTTY | libc::O_NONBLOCK)
        .open(format!("/proc/self/fd/{}", pathfd.as_raw_fd()))
}

/// What was read during a poll: `before` it and `after` it, by path: the files of both, and
/// whether the path had its own file open after it. A name's lines of a file are routed
/// with this state (see `daemon::names`): a file closed by the poll was still read by it.
fn reading_during(
    before: super::batch::Reading,
    after: super::batch::Reading,
) -> super::batch::Reading {
    let mut before: HashMap<String, Vec<(u64, u64)>> =
        before.into_iter().map(|(n, ids, _)| (n, ids)).collect();
    after
        .into_iter()
        .map(|(name, mut ids, open)| {
            for id in before.remove(&name).unwrap_or_default() {
                if !ids.contains(&id) {
                    ids.push(id);
                }
            }
            (name, ids, open)
        })
        .collect()
}

/// Whether the file was made after `cp` was taken (its inode number is the old file's, given
/// again after that one was deleted: with nothing read, offset 0, nothing else tells them).
/// False where the file system keeps no birth time.
fn born_after(m: &fs::Metadata, cp: &Checkpoint) -> bool {
    let taken = UNIX_EPOCH + Duration::from_millis(cp.saved_ms.max(0) as u64);
    cp.saved_ms > 0 && m.created().is_ok_and(|born| born > taken + MTIME_GRAIN)
}

/// `file` (of metadata `m`), found at `p`, as a tail at `offset` under that name, watched
/// through its descriptor: a rotated or moved file read on for the path.
fn watched_tail(
    file: File,
    m: &fs::Metadata,
    offset: u64,
    p: &Path,
    watches: &mut Watches,
) -> Option<Tail> {
    let mut t = Tail::new(file, m.dev(), m.ino());
    t.seek_to(offset).ok()?;
    let proc_path = format!("/proc/self/fd/{}", t.file.as_raw_fd());
    t.wd = watches.add(Path::new(&proc_path), FILE_MASK);
    t.rotated = Some(p.display().to_string());
    Some(t)
}

/// A file name with each run of digits as `N`: the files of one numbered or dated series
/// (`app-7.log`, `auth.log-20261207`) have one.
pub(crate) fn series_of(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut digits = false;
    for c in name.chars() {
        if c.is_ascii_digit() {
            if !digits {
                out.push('N');
            }
            digits = true;
        } else {
            out.push(c);
            digits = false;
        }
    }
    out
}

/// The key of [`Watched::drain_checkpoint`] for path `name` (no log path starts so).
pub fn drain_key(name: &str) -> String {
    format!("rotated-from:{name}")
}

/// The checkpoint that says a wildcard pattern was followed (no file has inode 0): saved with
/// the others, so that the next run knows its matches without a checkpoint are new.
pub fn glob_marker(glob: &str) -> Checkpoint {
    Checkpoint {
        path: glob.to_string(),
        ..Default::default()
    }
}

/// Most bytes compressed rotations are decompressed to find the checkpoints' places
/// ([`Watched::gz_rotation`]), all of them together over the daemon's life: many logs rotated
/// while it was down, or a gzip bomb under a rotated name, cost a start at most this.
const GZ_SCAN: u64 = 4 << 30;
/// Most bytes kept in memory of compressed rotations after the checkpoints' places (and of
/// later rotations, whole), all of them together at once: given back as each is closed.
const GZ_REST: u64 = 256 << 20;
/// What [`gunzip_from`] has decompressed and kept so far (see [`GZ_SCAN`], [`GZ_REST`]).
static GZ_SCANNED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
static GZ_KEPT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// The gzip file `gz` decompressed into an anonymous file in memory when it is the file `cp`
/// was taken of (as long, the same first bytes), else `None`. Only its first [`HEAD_LEN`]
/// bytes and those from `cp.offset - 1` on are written (the byte before the offset tells
/// whether reading starts at a line's start); the rest is a hole, which takes no memory.
/// With no `cp`, the whole file (a rotation to read from its start).
/// A hand-written loop over flate2's decoder: no crate decompresses into a sparse file.
/// Returned with it: the bytes it keeps, counted in [`GZ_KEPT`] until given back
/// ([`Tail::gz_kept`]).
fn gunzip_from(gz: File, cp: Option<&Checkpoint>) -> Option<(File, u64)> {
    use std::sync::atomic::Ordering::Relaxed;
    let (mut scanned, mut kept) = (0, 0);
    let out = gunzip_counted(gz, cp, &mut scanned, &mut kept);
    GZ_SCANNED.fetch_add(scanned, Relaxed);
    let out = out?;
    GZ_KEPT.fetch_add(kept, Relaxed);
    Some((out, kept))
}

/// [`gunzip_from`], adding what it decompresses to `scanned` and what it keeps to `kept`.
fn gunzip_counted(
    gz: File,
    cp: Option<&Checkpoint>,
    scanned: &mut u64,
    kept: &mut u64,
) -> Option<File> {
    use std::io::BufReader;
    use std::sync::atomic::Ordering::Relaxed;
    let (scan_left, keep_left) = (
        GZ_SCAN.saturating_sub(GZ_SCANNED.load(Relaxed)),
        GZ_REST.saturating_sub(GZ_KEPT.load(Relaxed)),
    );
    let mut dec = flate2::read::MultiGzDecoder::new(BufReader::new(gz));
    let fd =
        rustix::fs::memfd_create("portcullis-rotated", rustix::fs::MemfdFlags::CLOEXEC).ok()?;
    let out = File::from(fd);
    let offset = cp.map_or(0, |cp| cp.offset);
    let keep_from = offset.saturating_sub(1);
    let mut head = Vec::with_capacity(HEAD_LEN);
    let mut buf = vec![0u8; 64 * 1024];
    let mut pos: u64 = 0;
    loop {
        let n = match dec.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return None,
        };
        let chunk = &buf[..n];
        let end = pos + n as u64;
        if head.len() < HEAD_LEN {
            let take = (HEAD_LEN - head.len()).min(n);
            head.extend_from_slice(&chunk[..take]);
            out.write_all_at(&chunk[..take], pos).ok()?;
            if let Some(cp) = cp {
                let n_fp = cp.offset.min(HEAD_LEN as u64) as usize;
                if head.len() >= n_fp && fingerprint(&head[..n_fp]) != cp.fingerprint {
                    return None;
                }
            }
        }
        if end > keep_from {
            let from = keep_from.saturating_sub(pos) as usize;
            out.write_all_at(&chunk[from..], pos + from as u64).ok()?;
        }
        pos = end;
        *scanned = pos;
        *kept = pos.saturating_sub(offset);
        if pos > scan_left || *kept > keep_left {
            return None;
        }
    }
    // shorter than the place read to: another file
    (pos >= offset && head.len() >= offset.min(HEAD_LEN as u64) as usize).then_some(out)
}

/// Is the file at `path` the one read up to `offset`, whose first bytes had `fingerprint`:
/// at least as long, with the same first bytes? Having consumed nothing (offset 0) says
/// nothing (and reading such a file from its beginning cannot read anything twice).
fn same_file(path: &Path, fingerprint: u64, offset: u64) -> bool {
    offset > 0
        && open_regular(path).is_ok_and(|f| {
            f.metadata().is_ok_and(|m| m.len() >= offset)
                && head_fingerprint(&f, offset) == Some(fingerprint)
        })
}

/// Fingerprint of the file's first `min(offset, HEAD_LEN)` bytes.
fn head_fingerprint(file: &File, offset: u64) -> Option<u64> {
    let mut head = [0u8; HEAD_LEN];
    let n = offset.min(HEAD_LEN as u64) as usize;
    file.read_exact_at(&mut head[..n], 0).ok()?;
    Some(fingerprint(&head[..n]))
}

/// Where "start at the end" begins: just after the last newline within the last `buf.len()`
/// bytes; 0 for a short file with no newline; the end when the last line is longer than that
/// (the rest of it is then skipped).
fn after_last_newline(file: &File, len: u64, buf: &mut [u8]) -> u64 {
    let window = len.min(buf.len() as u64) as usize;
    let from = len - window as u64;
    if window == 0 || file.read_exact_at(&mut buf[..window], from).is_err() {
        return len;
    }
    match memchr::memrchr(b'\n', &buf[..window]) {
        Some(i) => from + i as u64 + 1,
        None if from == 0 => 0,
        None => len,
    }
}

/// The inotify instance (the `inotify` crate) and a count of users per watch descriptor (the
/// kernel hands out one descriptor per inode, so two paths may share one).
struct Watches {
    ino: Option<Inotify>,
    refs: HashMap<WatchDescriptor, usize>,
}

impl Watches {
    fn new() -> Self {
        Watches {
            // without inotify (no instance could be made) polls just sleep
            ino: Inotify::init().ok(),
            refs: HashMap::new(),
        }
    }

    fn add(&mut self, path: &Path, mask: WatchMask) -> Option<WatchDescriptor> {
        // Out of watches, or the path went away: the periodic re-check still covers it.
        let wd = self.ino.as_mut()?.watches().add(path, mask).ok()?;
        *self.refs.entry(wd.clone()).or_insert(0) += 1;
        Some(wd)
    }

    fn remove(&mut self, wd: WatchDescriptor) {
        let Some(ino) = &mut self.ino else { return };
        let Some(n) = self.refs.get_mut(&wd) else {
            return;
        };
        *n -= 1;
        if *n == 0 {
            self.refs.remove(&wd);
            // a stale descriptor (the file is gone) only yields an error
            let _ = ino.watches().remove(wd);
        }
    }

    /// Waits for any event, then discards all queued events: they are only hints.
    fn wait(&mut self, timeout: Duration) -> bool {
        let Some(ino) = &mut self.ino else {
            std::thread::sleep(timeout);
            return false;
        };
        if !crate::sys::readable(ino.as_fd().as_raw_fd(), timeout) {
            return false;
        }
        let mut events = [0u8; 4096];
        for _ in 0..64 {
            let got = ino
                .read_events(&mut events)
                .is_ok_and(|mut ev| ev.next().is_some());
            if !got {
                break;
            }
        }
        true
    }
}

// ---------------------------------------------------------------------------------------
// The follower's thread: follows the files of the jails and sends batches to the engine.

/// Paths the follower should follow; replaced on reload.
pub type SharedPaths = Arc<Mutex<Option<FileSources>>>;

/// The files the jails read: paths (wildcards expanded now) and the wildcard patterns,
/// expanded again while running so that a file that appears later is read from its start.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileSources {
    /// Paths to follow now.
    pub paths: Vec<PathBuf>,
    /// Wildcard patterns among the sources.
    pub globs: Vec<String>,
    /// (dev, ino, size) of paths as [`FileSources::stat_now`] found them: a path new to the
    /// follower starts there, not at its end when the follower gets to it (a reload that
    /// adds a log answered before the follower took it, and the lines written in between
    /// were skipped, a review found).
    pub seen: Vec<(PathBuf, (u64, u64, u64))>,
    /// The jails of each path and pattern, as configured ([`Follower::set_readers`]).
    pub readers: HashMap<String, Vec<String>>,
}

impl FileSources {
    /// Records where each path's file ends now (see [`FileSources::seen`]).
    pub fn stat_now(mut self) -> Self {
        self.seen = self
            .paths
            .iter()
            .filter_map(|p| {
                fs::metadata(p)
                    .ok()
                    .filter(|m| m.is_file())
                    .map(|m| (p.clone(), (m.dev(), m.ino(), m.len())))
            })
            .collect();
        self
    }
}

/// How often wildcard patterns are expanded again.
const GLOB_EVERY: Duration = Duration::from_secs(1);

/// Opens the followed files now (a first-seen file starts at its end, so this must happen
/// before the daemon says it is running, or lines written in between would be skipped).
/// Lines longer than `max_line` are cut as `replay` cuts them ([`crate::sources::line`]).
pub fn open_files(
    files: &FileSources,
    checkpoints: Vec<Checkpoint>,
    max_line: usize,
) -> anyhow::Result<Follower> {
    Follower::with_readers(
        files.paths.clone(),
        files.globs.clone(),
        files.readers.clone(),
        checkpoints,
        max_line,
    )
}

/// Runs the file follower until the engine goes away.
pub fn follow_files(
    mut f: Follower,
    mut globs: Vec<String>,
    new_paths: SharedPaths,
    engine: EngineTx,
) {
    // the first batch carries the positions at once: a run shorter than the checkpoint
    // interval must still leave them (and the wildcard markers) for the next one
    let mut last_checkpoint = Instant::now()
        .checked_sub(Duration::from_secs(60))
        .unwrap_or_else(Instant::now);
    let mut last_glob = Instant::now();
    let mut long = LongLines::default();
    let max_line = f.max_line();
    let (mut aliases, mut reading) = (Vec::new(), Vec::new());
    loop {
        let mut batch = Batch::default();
        let mut appeared = Vec::new();
        if let Some(p) = new_paths.lock().ok().and_then(|mut g| g.take()) {
            // the patterns first: a file that a pattern already followed matches now is
            // new (from its start); set_paths then keeps it
            f.set_readers(p.readers.clone());
            appeared = f.set_globs(p.globs.clone());
            f.set_paths_seen(p.paths, &p.seen);
            globs = p.globs;
        }
        if !globs.is_empty() && last_glob.elapsed() >= GLOB_EVERY {
            last_glob = Instant::now();
            appeared.extend(f.set_globs(globs.clone()));
        }
        for (path, g) in appeared {
            batch.notes.push(format!(
                "reading {} from its start (new match of {g})",
                path.display()
            ));
        }
        batch.notes.extend(f.take_notes());
        batch.forgotten = f.take_forgotten();
        let now = Instant::now();
        // what is read before the poll: a file the poll reads, then closes (a fifth rotated
        // file over MAX_DRAINING), was read by its name during the poll (review 16)
        let reading_before = f.reading();
        let read = f.poll(&mut |ev| match ev {
            Event::Line { path, file, line } => batch.push_from(path, file, line),
            Event::Truncated { path } => batch
                .notes
                .push(format!("log truncated, reading from its start: {path}")),
            Event::Rotated { path } => batch.notes.push(format!("log rotated: {path}")),
            Event::Resumed { path, offset } => batch.notes.push(format!(
                "{path} names a file read before again (moved back, a symlink pointed at it again): reading on from byte {offset}, where it was left, nothing twice"
            )),
            Event::Copy {
                path,
                offset,
                exact,
            } => batch.notes.push(if exact {
                format!("{path} was replaced by a copy of itself (sed -i, an editor): reading on from byte {offset}, nothing twice")
            } else {
                format!("{path} was replaced by an edited copy of itself (sed -i, an editor): reading on from byte {offset}, not again from its start (a line around the edit may be missed or read twice)")
            }),
            Event::RotatedAtStop { path, from } => batch.notes.push(format!(
                "{path} was rotated just before the daemon last stopped: reading what the old file, now {from}, got after the stop"
            )),
            Event::LostAtStop { path, offset } => batch.notes.push(format!(
                "{path} was rotated just before the daemon last stopped, and the old file (read up to byte {offset}) is not found under a rotated name, plain or .gz (deleted, or compressed otherwise, while down?): what it got after the stop, if anything, was not read"
            )),
            Event::RotatedWhileDown { path, from } => batch.notes.push(format!(
                "{path} was rotated while the daemon was down: reading the rest of the old file, now {from}, then the new one from its start"
            )),
            Event::MovedWhileDown {
                path,
                from,
                between,
            } => {
                // (what cannot be told is in parentheses)
                let (caveats, files): (Vec<&String>, Vec<&String>) =
                    between.iter().partition(|b| b.starts_with('('));
                let files: Vec<&str> = files.iter().map(|f| f.as_str()).collect();
                let caveats: Vec<&str> = caveats.iter().map(|f| f.as_str()).collect();
                batch.notes.push(format!(
                    "{path} names another file since the daemon last ran (a link moved on, or the file renamed): reading the rest of the file read before, now {from}, {}then the new one from its start{}",
                    if files.is_empty() {
                        String::new()
                    } else {
                        format!(
                            "the files made in between in its series whole ({}), ",
                            files.join(", ")
                        )
                    },
                    if caveats.is_empty() {
                        String::new()
                    } else {
                        format!(" {}", caveats.join(" "))
                    }
                ))
            }
            Event::RotatedAgainWhileDown { path, from, unread } => {
                let mut note = format!(
                    "{path} was rotated again while the daemon was down: reading the later rotations whole, oldest first: {}",
                    if from.is_empty() { "none".to_string() } else { from.join(", ") }
                );
                if unread.skipped > 0 {
                    note += &format!(
                        "; {} older ones, written after the stop too, are not read (at most {MAX_LATER} are)",
                        unread.skipped
                    );
                }
                if !unread.failed.is_empty() {
                    note += &format!(
                        "; not read, though written after the stop (a .gz over the {} MiB kept decompressed at once, or unreadable): {}",
                        GZ_REST >> 20,
                        unread.failed.join(", ")
                    );
                }
                batch.notes.push(note)
            }
            Event::StillWritten { path, after } => batch.notes.push(format!(
                "{path} was rotated {after} s ago, but its writer still writes the old file, not the new one (not told to reopen its log: logrotate's postrotate, or copytruncate for a program that cannot reopen): the old file is read on while the new one stays empty"
            )),
            Event::LostWhileDown { path, offset } => batch.notes.push(format!(
                "{path} was rotated while the daemon was down, and the file read before (up to byte {offset}) is not found under a rotated name, plain or .gz (deleted, or compressed otherwise, while down?): what it got after the stop, if anything, was not read; reading the new one from its start"
            )),
            Event::LongLine { path, len } => {
                batch.notes.extend(long.count(path, len, max_line, now));
            }
            Event::Error { path, message } => {
                batch.notes.push(format!("cannot read {path}: {message}"))
            }
        });
        batch.notes.extend(long.flush(max_line, now));
        let now_aliases = f.aliases();
        if now_aliases != aliases {
            aliases = now_aliases;
            batch.aliases = Some(aliases.clone());
        }
        let now_reading = reading_during(reading_before, f.reading());
        if now_reading != reading {
            reading = now_reading;
            batch.reading = Some(reading.clone());
        }
        batch.lent = f.take_lent();
        let had_lines = !batch.lines.is_empty();
        if had_lines
            || !batch.lent.is_empty()
            || batch.aliases.is_some()
            || batch.reading.is_some()
            || !batch.notes.is_empty()
            || !batch.forgotten.is_empty()
            || last_checkpoint.elapsed() > Duration::from_secs(5)
        {
            batch.checkpoints = f.checkpoints();
            last_checkpoint = Instant::now();
            // what waits in the engine's queue holds its lines, not the room the vectors
            // doubled to (up to twice POLL_BYTES: a review measured 240 MB of batches in a
            // flood)
            batch.data.shrink_to_fit();
            batch.lines.shrink_to_fit();
            if engine.send(Msg::Lines(batch)).is_err() {
                return;
            }
        }
        // out of budget (4 MiB read with no whole line: a hole of NULs after a crash, a
        // line too long), the rest is read at once: waiting a second per 4 MiB held a
        // failure written after a 1 GB hole 256 s (a review found)
        if !had_lines && read.unwrap_or(0) < POLL_BYTES {
            f.wait(Duration::from_millis(1000));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::line::DEFAULT_MAX_LINE;
    use proptest::prelude::*;
    use std::io::Write;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;

    /// An owned copy of an [`Event`], without the path.
    #[derive(Debug, Clone, PartialEq, Eq)]
    enum Ev {
        Line(String),
        Truncated,
        Rotated,
        RotatedWhileDown(String),
        MovedWhileDown(String),
        /// (read, how many skipped, those not read)
        RotatedAgain(Vec<String>, usize, Vec<String>),
        RotatedAtStop(String),
        LostAtStop(u64),
        Lost(u64),
        StillWritten,
        Copy(u64, bool),
        Resumed(u64),
        Long(usize),
        Error(String),
    }

    /// Everything there is to read now: polls until a poll reads nothing (one poll reads at
    /// most `POLL_BYTES`).
    fn poll(fl: &mut Follower) -> Vec<Ev> {
        let mut out = Vec::new();
        loop {
            let n = fl
                .poll(&mut |e| {
                    out.push(match e {
                        Event::Line { line, .. } => {
                            Ev::Line(String::from_utf8_lossy(line).into_owned())
                        }
                        Event::Truncated { .. } => Ev::Truncated,
                        Event::Rotated { .. } => Ev::Rotated,
                        Event::RotatedWhileDown { from, .. } => Ev::RotatedWhileDown(from),
                        Event::MovedWhileDown { from, .. } => Ev::MovedWhileDown(from),
                        Event::RotatedAtStop { from, .. } => Ev::RotatedAtStop(from),
                        Event::RotatedAgainWhileDown { from, unread, .. } => {
                            Ev::RotatedAgain(from, unread.skipped, unread.failed)
                        }
                        Event::LostAtStop { offset, .. } => Ev::LostAtStop(offset),
                        Event::LostWhileDown { offset, .. } => Ev::Lost(offset),
                        Event::StillWritten { .. } => Ev::StillWritten,
                        Event::Copy { offset, exact, .. } => Ev::Copy(offset, exact),
                        Event::Resumed { offset, .. } => Ev::Resumed(offset),
                        Event::LongLine { len, .. } => Ev::Long(len),
                        Event::Error { message, .. } => Ev::Error(message),
                    })
                })
                .unwrap();
            if n == 0 {
                return out;
            }
        }
    }

    fn lines(events: &[Ev]) -> Vec<String> {
        events
            .iter()
            .filter_map(|e| match e {
                Ev::Line(l) => Some(l.clone()),
                _ => None,
            })
            .collect()
    }

    /// Points the link `link` at `to` as a program moves it: a new link renamed over it.
    fn point_link(link: &Path, to: &str) {
        let tmp = link.with_extension("tmp-link");
        std::os::unix::fs::symlink(to, &tmp).unwrap();
        fs::rename(&tmp, link).unwrap();
    }

    fn append(path: &Path, text: &str) {
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap();
        f.write_all(text.as_bytes()).unwrap();
    }

    fn truncate(path: &Path) {
        File::options()
            .write(true)
            .open(path)
            .unwrap()
            .set_len(0)
            .unwrap();
    }

    fn follower(path: &Path) -> Follower {
        Follower::new(vec![path.to_path_buf()], vec![], DEFAULT_MAX_LINE).unwrap()
    }

    /// Found by a security review: a log path made a symlink to a pty became the root
    /// daemon's controlling terminal (the follower opened it, then saw it was no file).
    #[test]
    fn only_regular_files_are_ever_opened() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        // a pty of our own
        // SAFETY: posix_openpt/grantpt/unlockpt/ptsname_r on a descriptor we own
        let master = unsafe { libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY) };
        assert!(master >= 0);
        let mut name = [0 as libc::c_char; 128];
        unsafe {
            assert_eq!(libc::grantpt(master), 0);
            assert_eq!(libc::unlockpt(master), 0);
            assert_eq!(libc::ptsname_r(master, name.as_mut_ptr(), name.len()), 0);
        }
        let pts = unsafe { std::ffi::CStr::from_ptr(name.as_ptr()) }
            .to_string_lossy()
            .into_owned();
        let fifo = d.join("fifo");
        let c = std::ffi::CString::new(fifo.display().to_string()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        for (name, target) in [
            ("tty.log", Path::new(&pts)),
            ("fifo.log", fifo.as_path()),
            ("null.log", Path::new("/dev/null")),
        ] {
            let link = d.join(name);
            std::os::unix::fs::symlink(target, &link).unwrap();
            let e = open_regular(&link).unwrap_err();
            assert_eq!(e.to_string(), "not a regular file", "{name}");
            let mut fl = follower(&link);
            let ev = poll(&mut fl);
            assert_eq!(ev, [Ev::Error("not a regular file".into())], "{name}");
        }
        unsafe { libc::close(master) };
        // a symlink to a file is followed
        append(&d.join("real.log"), "");
        std::os::unix::fs::symlink(d.join("real.log"), d.join("link.log")).unwrap();
        let mut fl = follower(&d.join("link.log"));
        append(&d.join("real.log"), "x\n");
        assert_eq!(lines(&poll(&mut fl)), ["x"]);
    }

    /// Found by a security review: 600 sparse files of one unfinished line each took the
    /// daemon's memory past 1.2 GB. All unfinished lines together stay under the budget.
    #[test]
    fn unfinished_lines_of_many_files_stay_under_the_budget() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let (g, _) = glob_of(d, "*.log");
        let mut fl =
            Follower::with_globs(vec![], vec![g.clone()], vec![], DEFAULT_MAX_LINE).unwrap();
        let n = 2 * PARTIAL_BUDGET / (600 << 10) + 10;
        for i in 0..n {
            // 600 KiB without a newline, costing no disk
            let f = File::create(d.join(format!("f{i:03}.log"))).unwrap();
            f.set_len(600 << 10).unwrap();
        }
        assert_eq!(fl.set_globs(vec![g]).len(), n);
        let ev = poll(&mut fl);
        let held: usize = fl
            .files
            .iter()
            .flat_map(|w| w.cur.iter().chain(&w.draining))
            .map(|t| t.split.held())
            .sum();
        assert!(held <= PARTIAL_BUDGET, "{held} bytes held");
        let cut = ev.iter().filter(|e| matches!(e, Ev::Line(_))).count();
        assert!(cut > 0 && cut < n, "{cut} of {n} lines cut");
        // a cut line's rest is skipped up to its newline; the next line is read
        let first = d.join("f000.log");
        append(&first, "rest\nnext\n");
        let after = lines(&poll(&mut fl));
        assert!(
            after.contains(&"next".to_string()),
            "{:?}",
            &after[..after.len().min(3)]
        );
    }

    #[test]
    fn preexisting_file_starts_at_end() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("auth.log");
        append(&log, "old 1\nold 2\n");
        let mut fl = follower(&log);
        assert_eq!(poll(&mut fl), vec![]);
        append(&log, "new 1\n");
        assert_eq!(poll(&mut fl), vec![Ev::Line("new 1".into())]);
    }

    #[test]
    fn line_in_flight_at_start_is_read_whole() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("auth.log");
        append(&log, "old\nhalf");
        let mut fl = follower(&log);
        append(&log, " done\n");
        assert_eq!(lines(&poll(&mut fl)), ["half done"]);
    }

    #[test]
    fn rename_and_create_reads_old_file_to_its_end() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("auth.log");
        append(&log, "");
        let mut fl = follower(&log);
        append(&log, "a\n");
        assert_eq!(lines(&poll(&mut fl)), ["a"]);
        let mut old = OpenOptions::new().append(true).open(&log).unwrap();
        fs::rename(&log, dir.path().join("auth.log.1")).unwrap();
        old.write_all(b"b\n").unwrap(); // the writer has not reopened yet
        append(&log, "c\n");
        assert_eq!(
            poll(&mut fl),
            [Ev::Line("b".into()), Ev::Rotated, Ev::Line("c".into())]
        );
        old.write_all(b"d\n").unwrap(); // still read: the old file is kept open a while
        append(&log, "e\n");
        assert_eq!(lines(&poll(&mut fl)), ["d", "e"]);
    }

    #[test]
    fn copytruncate_starts_again_at_zero() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("auth.log");
        append(&log, "");
        let mut fl = follower(&log);
        append(&log, "a\nb\n");
        assert_eq!(lines(&poll(&mut fl)), ["a", "b"]);
        fs::copy(&log, dir.path().join("auth.log.1")).unwrap();
        truncate(&log);
        append(&log, "c\n");
        assert_eq!(poll(&mut fl), [Ev::Truncated, Ev::Line("c".into())]);
    }

    /// `copytruncate` under a writer that does not append (`prog > file.log`): it writes on
    /// at its old offset, over a hole that reads as NULs with no line end before its first
    /// line; that line is read without them (review 59: it was lost). The same with a hole
    /// longer than a line may be.
    #[test]
    fn copytruncate_under_a_writer_that_does_not_append_keeps_its_next_line() {
        use std::os::unix::fs::FileExt;
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("auth.log");
        append(&log, "");
        let mut fl = Follower::new(vec![log.clone()], vec![], 1024).unwrap();
        let w = OpenOptions::new().write(true).open(&log).unwrap();
        w.write_all_at(b"a\nb\n", 0).unwrap();
        assert_eq!(lines(&poll(&mut fl)), ["a", "b"]);
        truncate(&log);
        w.write_all_at(b"c\n", 4).unwrap();
        assert_eq!(poll(&mut fl), [Ev::Truncated, Ev::Line("c".into())]);
        truncate(&log);
        w.write_all_at(b"d\n", 6 + 10 * 1024).unwrap();
        let evs = poll(&mut fl);
        assert_eq!(lines(&evs), ["d"], "{evs:?}");
    }

    #[test]
    fn truncation_noticed_even_after_regrowing_past_the_offset() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("auth.log");
        append(&log, "");
        let mut fl = follower(&log);
        append(&log, "one\n");
        assert_eq!(lines(&poll(&mut fl)), ["one"]);
        truncate(&log);
        append(&log, "two is longer\n");
        assert_eq!(
            poll(&mut fl),
            [Ev::Truncated, Ev::Line("two is longer".into())]
        );
        truncate(&log);
        assert_eq!(poll(&mut fl), [Ev::Truncated]);
        append(&log, "x\n");
        assert_eq!(poll(&mut fl), [Ev::Line("x".into())]);
    }

    #[test]
    fn delete_and_recreate() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("auth.log");
        append(&log, "");
        let mut fl = follower(&log);
        append(&log, "a\n");
        fs::remove_file(&log).unwrap();
        assert_eq!(poll(&mut fl), [Ev::Line("a".into()), Ev::Rotated]);
        assert_eq!(poll(&mut fl), []);
        append(&log, "b\n");
        assert_eq!(poll(&mut fl), [Ev::Line("b".into())]);
    }

    #[test]
    fn missing_file_is_read_from_its_beginning_once_created() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("auth.log");
        let mut fl = follower(&log);
        assert_eq!(poll(&mut fl), []);
        append(&log, "first\n");
        assert!(fl.wait(Duration::from_secs(5)), "inotify saw the creation");
        assert_eq!(poll(&mut fl), [Ev::Line("first".into())]);
    }

    #[test]
    fn missing_directory_then_created() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("a/b/auth.log");
        let mut fl = follower(&log);
        assert_eq!(poll(&mut fl), []);
        fs::create_dir(dir.path().join("a")).unwrap();
        assert!(fl.wait(Duration::from_secs(5)));
        assert_eq!(poll(&mut fl), []);
        fs::create_dir(dir.path().join("a/b")).unwrap();
        assert!(fl.wait(Duration::from_secs(5)));
        assert_eq!(poll(&mut fl), []);
        append(&log, "hello\n");
        assert!(fl.wait(Duration::from_secs(5)));
        assert_eq!(poll(&mut fl), [Ev::Line("hello".into())]);
    }

    #[test]
    fn wait_wakes_on_append_and_times_out_otherwise() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("auth.log");
        append(&log, "");
        let mut fl = follower(&log);
        assert!(!fl.wait(Duration::from_millis(20)));
        append(&log, "x\n");
        assert!(fl.wait(Duration::from_secs(5)));
        assert_eq!(poll(&mut fl), [Ev::Line("x".into())]);
    }

    #[test]
    fn restart_from_checkpoint_neither_rereads_nor_skips() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("auth.log");
        append(&log, "");
        let mut fl = follower(&log);
        append(&log, "a\nb\npart");
        assert_eq!(lines(&poll(&mut fl)), ["a", "b"]);
        let cps = fl.checkpoints();
        assert_eq!(cps.len(), 1);
        assert_eq!(cps[0].offset, 4, "end of the last complete line");
        drop(fl);
        append(&log, "ial\nc\n");
        let mut fl = Follower::new(vec![log.clone()], cps, DEFAULT_MAX_LINE).unwrap();
        assert_eq!(lines(&poll(&mut fl)), ["partial", "c"]);
    }

    /// A log moved away and, once closed, back (or a symlink pointed at another file and
    /// back): read on where it was left. (A review found it read again from its start, and
    /// its failures of the last two days banned at the time they were read.)
    #[test]
    fn a_file_back_at_its_path_is_read_on_where_it_was_left() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("auth.log");
        append(&log, "");
        let mut fl = follower(&log);
        fl.set_drain_idle(Duration::ZERO);
        append(&log, "a\nb\n");
        assert_eq!(lines(&poll(&mut fl)), ["a", "b"]);
        let away = dir.path().join("auth.log.tmp");
        fs::rename(&log, &away).unwrap();
        append(&log, "x\n");
        assert_eq!(poll(&mut fl), [Ev::Rotated, Ev::Line("x".into())]);
        poll(&mut fl); // closed: quiet for the (zero) drain time, its writer moved
        assert!(fl.files[0].draining.is_empty());
        append(&away, "c\n"); // written while away: not read (as for any rotated file)
        fs::rename(&away, &log).unwrap();
        append(&log, "d\n");
        assert_eq!(
            poll(&mut fl),
            [
                Ev::Rotated,
                Ev::Resumed(4),
                Ev::Line("c".into()),
                Ev::Line("d".into())
            ]
        );
        // a symlink pointed elsewhere and back
        let (a, b) = (dir.path().join("a.log"), dir.path().join("b.log"));
        append(&a, "a1\n");
        append(&b, "b1\n");
        let link = dir.path().join("link.log");
        std::os::unix::fs::symlink(&a, &link).unwrap();
        let mut fl = follower(&link);
        fl.set_drain_idle(Duration::ZERO);
        append(&a, "a2\n");
        assert_eq!(lines(&poll(&mut fl)), ["a2"]);
        let swap = |to: &Path| {
            let tmp = dir.path().join("link.tmp");
            std::os::unix::fs::symlink(to, &tmp).unwrap();
            fs::rename(&tmp, &link).unwrap();
        };
        swap(&b);
        assert_eq!(poll(&mut fl), [Ev::Rotated, Ev::Line("b1".into())]);
        poll(&mut fl);
        swap(&a);
        append(&a, "a3\n");
        let evs = poll(&mut fl);
        assert_eq!(lines(&evs), ["a3"], "{evs:?}");
        // a new file that reuses the inode number is new: its bytes differ
        let id = fl.files[0].cur.as_ref().unwrap().id();
        swap(&b);
        poll(&mut fl);
        poll(&mut fl);
        let left = &mut fl.files[0].left;
        let at = left
            .iter()
            .position(|(i, _)| *i == id)
            .expect("a's place kept");
        left[at].1 = (fingerprint(b"zz\n"), 3);
        swap(&a);
        assert_eq!(lines(&poll(&mut fl)), ["a1", "a2", "a3"]);
        // another path to the same file keeps its own place: a.log read by a second
        // follower path is not resumed at this path's position
        let other = dir.path().join("other.log");
        std::os::unix::fs::symlink(&b, &other).unwrap();
        let mut fl2 = follower(&other);
        fl2.set_drain_idle(Duration::ZERO);
        append(&a, "a4\n");
        let tmp = dir.path().join("other.tmp");
        std::os::unix::fs::symlink(&a, &tmp).unwrap();
        fs::rename(&tmp, &other).unwrap();
        // a.log is new to this path: read from its start
        assert_eq!(lines(&poll(&mut fl2)), ["a1", "a2", "a3", "a4"]);
    }

    /// A writer not told to reopen its log at a rotation (logrotate's `create` without a
    /// `postrotate`) goes on in the old file, however long it is quiet between lines: the
    /// old file is read as long as the path's new file stays empty (it was closed after 5
    /// s of quiet, and every later line lost), said once when it is still written a minute
    /// after the rotation, also after a restart; closed once the writer writes the new
    /// file, or once the old one is deleted.
    #[test]
    fn a_writer_that_did_not_reopen_its_log_is_read_on_in_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let (log, old, mut fl) = rotated_after_a(dir.path());
        fl.set_drain_idle(Duration::ZERO);
        assert_eq!(poll(&mut fl), [Ev::Rotated]);
        poll(&mut fl);
        append(&old, "b\n");
        assert_eq!(lines(&poll(&mut fl)), ["b"]);
        // a minute after the rotation: said, once
        fl.files[0].draining[0].rotated_at = Some(Instant::now() - STILL_WRITTEN);
        append(&old, "c\n");
        assert_eq!(poll(&mut fl), [Ev::Line("c".into()), Ev::StillWritten]);
        append(&old, "d\n");
        assert_eq!(poll(&mut fl), [Ev::Line("d".into())]);
        // a restart meanwhile: read on in the old file, under its rotated name
        let cps = fl.checkpoints();
        drop(fl);
        let mut fl = Follower::new(vec![log.clone()], cps.clone(), DEFAULT_MAX_LINE).unwrap();
        fl.set_drain_idle(Duration::ZERO);
        assert_eq!(poll(&mut fl), []);
        append(&old, "e\n");
        assert_eq!(lines(&poll(&mut fl)), ["e"]);
        poll(&mut fl);
        append(&old, "f\n");
        assert_eq!(
            lines(&poll(&mut fl)),
            ["f"],
            "kept open though it had been quiet"
        );
        // the writer moves to the new file: the old one is closed once quiet
        append(&log, "n\n");
        assert_eq!(lines(&poll(&mut fl)), ["n"]);
        poll(&mut fl);
        assert!(fl.files[0].draining.is_empty());
        // deleted: closed too (its room on the disk freed), with no new file written
        let (log, old, mut fl) = rotated_after_a(&{
            let d = dir.path().join("deleted");
            fs::create_dir(&d).unwrap();
            d
        });
        fl.set_drain_idle(Duration::ZERO);
        poll(&mut fl);
        poll(&mut fl);
        assert_eq!(fl.files[0].draining.len(), 1);
        fs::remove_file(&old).unwrap();
        poll(&mut fl);
        assert!(fl.files[0].draining.is_empty(), "{log:?}");
    }

    /// Review 19: a writer not told to reopen its log, and the log rotated again and again
    /// while it stays empty (logrotate's `ifempty`): the file still written is the one kept
    /// open (the empty later rotations are closed once quiet: they were kept, and over the
    /// limit the written file was closed instead), and its place is the one saved (the
    /// newest, empty rotation was saved at offset 0, and the written file lost at the next
    /// start).
    #[test]
    fn the_file_a_writer_still_writes_is_kept_through_rotations_of_the_empty_log() {
        let dir = tempfile::tempdir().unwrap();
        let (log, _, mut fl) = rotated_after_a(dir.path());
        fl.set_drain_idle(Duration::ZERO);
        let at = |n: usize| dir.path().join(format!("auth.log.{n}"));
        for k in 0..6 {
            // the writer's file (the first rotated) is now auth.log.(k + 1)
            append(&at(k + 1), &format!("w{k}\n"));
            assert_eq!(lines(&poll(&mut fl)), [format!("w{k}")]);
            poll(&mut fl);
            assert_eq!(fl.files[0].draining.len(), 1, "only the written file kept");
            rotate_numbered(&log, "");
        }
        append(&at(7), "x\n");
        assert_eq!(lines(&poll(&mut fl)), ["x"]);
        // a restart: read on in it
        let cps = fl.checkpoints();
        drop(fl);
        append(&at(7), "y\n");
        let mut fl = Follower::new(vec![log.clone()], cps, DEFAULT_MAX_LINE).unwrap();
        assert_eq!(lines(&poll(&mut fl)), ["y"]);
        append(&at(7), "z\n");
        assert_eq!(lines(&poll(&mut fl)), ["z"]);
    }

    /// Review 19: a stop within seconds of a rotation of the still empty log saved the place
    /// of that empty rotation (the newest rotated file, at offset 0), not of the file the
    /// writer still writes: what it wrote after the stop was lost.
    #[test]
    fn a_stop_just_after_a_rotation_of_the_empty_log_keeps_the_written_file() {
        let dir = tempfile::tempdir().unwrap();
        let (log, old, mut fl) = rotated_after_a(dir.path());
        assert_eq!(poll(&mut fl), [Ev::Rotated]);
        append(&old, "b\n");
        assert_eq!(lines(&poll(&mut fl)), ["b"]);
        rotate_numbered(&log, "");
        assert_eq!(poll(&mut fl), [Ev::Rotated]);
        assert_eq!(
            fl.files[0].draining.len(),
            2,
            "the empty rotation not closed yet"
        );
        let cps = fl.checkpoints();
        drop(fl);
        let written = dir.path().join("auth.log.2");
        append(&written, "c\n");
        let mut fl = Follower::new(vec![log.clone()], cps, DEFAULT_MAX_LINE).unwrap();
        assert_eq!(lines(&poll(&mut fl)), ["c"]);
    }

    /// Review 19: the place of a rotation just before the stop, and the path's own place at
    /// offset 0 (its new file empty), then rotations compressed while down: the old file,
    /// modified after the stop, was read whole as one of the rotations modified since the
    /// empty log's place, then its rest again from its own place (counted twice).
    #[test]
    fn an_empty_log_and_a_file_rotated_at_the_stop_read_each_line_once() {
        let dir = tempfile::tempdir().unwrap();
        let (log, old, mut fl) = rotated_after_a(dir.path());
        append(&old, "b\n");
        assert_eq!(lines(&poll(&mut fl)), ["b"]);
        let mut cps = fl.checkpoints();
        for c in &mut cps {
            c.saved_ms -= 10_000; // (the rotations come well after the stop)
        }
        assert!(cps
            .iter()
            .any(|c| c.path == drain_key(&log.display().to_string())));
        drop(fl);
        append(&old, "c\n");
        rotate_numbered(&log, "");
        rotate_numbered(&log, "");
        let at = |n: usize| dir.path().join(format!("auth.log.{n}"));
        gzip(&at(3));
        gzip(&at(2));
        append(&log, "n\n");
        let mut fl = Follower::new(vec![log.clone()], cps, DEFAULT_MAX_LINE).unwrap();
        let got = poll(&mut fl);
        assert_eq!(lines(&got), ["c", "n"], "{got:?}");
    }

    /// A follower of `DIR/auth.log` that read its line "a", after which logrotate renamed the
    /// file to `auth.log.1` and made a new, empty `auth.log`: (log, old, follower).
    fn rotated_after_a(dir: &Path) -> (PathBuf, PathBuf, Follower) {
        let log = dir.join("auth.log");
        let old = dir.join("auth.log.1");
        append(&log, "");
        let mut fl = follower(&log);
        append(&log, "a\n");
        assert_eq!(lines(&poll(&mut fl)), ["a"]);
        fs::rename(&log, &old).unwrap();
        append(&log, "");
        (log, old, fl)
    }

    /// A stop just after a rotation, while the old file was still read to its end (its
    /// writer had not reopened its log yet): what the writer added to the old file after the
    /// stop was lost. Now it is read at the next start, under the rotated name, once; and a
    /// drain that had ended is resumed where it ended, nothing read twice.
    #[test]
    fn a_rotation_just_before_a_stop_loses_nothing() {
        let dir = tempfile::tempdir().unwrap();
        // the writer goes on in the old file
        let (log, old, mut fl) = rotated_after_a(dir.path());
        append(&log, "n1\n");
        append(&old, "b\n");
        assert_eq!(lines(&poll(&mut fl)), ["b", "n1"]);
        let cps = fl.checkpoints();
        assert!(
            cps.iter()
                .any(|c| c.path == drain_key(&log.display().to_string())),
            "{cps:?}"
        );
        drop(fl);
        // after the stop: the writer finishes the old file, then reopens its log
        append(&old, "c\nd\n");
        append(&log, "n2\n");
        let mut fl = Follower::new(vec![log.clone()], cps.clone(), DEFAULT_MAX_LINE).unwrap();
        fl.set_drain_idle(Duration::ZERO);
        let got = poll(&mut fl);
        assert!(
            got.contains(&Ev::RotatedAtStop(old.display().to_string())),
            "{got:?}"
        );
        let mut l = lines(&got);
        l.sort();
        assert_eq!(l, ["c", "d", "n2"], "{got:?}");
        // the reading ended (closed): its place is forgotten, as what comes after is not
        // read while the daemon runs either (review 17: a place kept was tried at every
        // start, an unfinished last line counted again at each)
        assert!(poll(&mut fl).is_empty());
        let key = drain_key(&log.display().to_string());
        assert!(fl.take_forgotten().contains(&key));
        let cps = fl.checkpoints();
        assert!(!cps.iter().any(|c| c.path == key), "{cps:?}");
        drop(fl);
        append(&old, "e\n");
        let mut fl = Follower::new(vec![log.clone()], cps.clone(), DEFAULT_MAX_LINE).unwrap();
        assert_eq!(poll(&mut fl), []);
    }

    /// Review 17: a rotated file whose last line is unfinished when its reading ends gives
    /// that line once (as it is), and a restart does not give it again.
    #[test]
    fn an_unfinished_last_line_of_a_rotated_file_is_given_once() {
        let dir = tempfile::tempdir().unwrap();
        let (log, old, mut fl) = rotated_after_a(dir.path());
        fl.set_drain_idle(Duration::ZERO);
        append(&old, "unfinished");
        append(&log, "n\n");
        assert_eq!(lines(&poll(&mut fl)), ["n", "unfinished"]);
        let cps = fl.checkpoints();
        drop(fl);
        let mut fl = Follower::new(vec![log.clone()], cps, DEFAULT_MAX_LINE).unwrap();
        assert_eq!(poll(&mut fl), []);
    }

    /// A file rotated just before the stop and gone while the daemon was down (deleted at a
    /// later rotation): what it got after the stop is said lost (review 17: nothing was
    /// said), once.
    #[test]
    fn a_rotation_at_stop_not_found_is_said_lost_once() {
        let dir = tempfile::tempdir().unwrap();
        let (log, old, mut fl) = rotated_after_a(dir.path());
        append(&log, "n\n");
        poll(&mut fl);
        let cps = fl.checkpoints();
        drop(fl);
        append(&old, "lost\n");
        fs::remove_file(&old).unwrap();
        let mut fl = Follower::new(vec![log.clone()], cps, DEFAULT_MAX_LINE).unwrap();
        let got = poll(&mut fl);
        assert!(got.contains(&Ev::LostAtStop(2)), "{got:?}");
        assert!(fl
            .take_forgotten()
            .contains(&drain_key(&log.display().to_string())));
    }

    /// logrotate's numbered rotation of `log`: `.N` to `.N+1` (`.gz` too), then the log to
    /// `.1` and a new log holding `new`.
    fn rotate_numbered(log: &Path, new: &str) {
        let name = log.file_name().unwrap().to_str().unwrap().to_string();
        for n in (1..30).rev() {
            for ext in ["", ".gz"] {
                let from = log.with_file_name(format!("{name}.{n}{ext}"));
                if from.exists() {
                    let to = log.with_file_name(format!("{name}.{}{ext}", n + 1));
                    fs::rename(from, to).unwrap();
                }
            }
        }
        fs::rename(log, log.with_file_name(format!("{name}.1"))).unwrap();
        append(log, new);
    }

    /// `path` gzip-compressed to `path.gz`, and removed (logrotate's `compress`, which
    /// keeps the file's time).
    fn gzip(path: &Path) -> PathBuf {
        use flate2::write::GzEncoder;
        let gz = PathBuf::from(format!("{}.gz", path.display()));
        let mut enc = GzEncoder::new(fs::File::create(&gz).unwrap(), Default::default());
        enc.write_all(&fs::read(path).unwrap()).unwrap();
        let modified = fs::metadata(path).unwrap().modified().unwrap();
        enc.finish().unwrap().set_modified(modified).unwrap();
        fs::remove_file(path).unwrap();
        gz
    }

    /// A follower of `DIR/auth.log` that read its line "a" and stopped: (log, its
    /// checkpoints).
    fn stopped_after_a(dir: &Path) -> (PathBuf, Vec<Checkpoint>) {
        let log = dir.join("auth.log");
        append(&log, "");
        let mut fl = follower(&log);
        append(&log, "a\n");
        assert_eq!(lines(&poll(&mut fl)), ["a"]);
        (log, fl.checkpoints())
    }

    /// Review 64 M2: a link moved along numbered files (`current.log` -> `app-N.log`) while
    /// the daemon was down. The rest of the file it named at the stop is read (found by its
    /// inode under its own name, which is no rotation of the link's), then the file it names
    /// now from its start; and when it had moved just before the stop (the old file still
    /// read to its end), that file's rest too. Both were lost: the file was looked for under
    /// rotated names only. Nothing is read twice at the next start.
    #[test]
    fn a_link_moved_on_while_down_loses_no_line_of_the_file_it_named() {
        for moved_at_stop in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            let d = dir.path();
            let link = d.join("current.log");
            append(&d.join("app-1.log"), "");
            std::os::unix::fs::symlink("app-1.log", &link).unwrap();
            let mut fl = follower(&link);
            append(&d.join("app-1.log"), "a\n");
            assert_eq!(lines(&poll(&mut fl)), ["a"]);
            if moved_at_stop {
                append(&d.join("app-2.log"), "b\n");
                point_link(&link, "app-2.log");
                assert_eq!(lines(&poll(&mut fl)), ["b"]);
            }
            let cps = fl.checkpoints();
            drop(fl);
            // while down: the files named go on, the link moves on, twice when it moved
            // just before the stop (review 67 L1: the file between was lost), with files
            // made a moment apart, as a program makes them
            let (late, named) = if moved_at_stop {
                append(&d.join("app-1.log"), "a-late\n");
                (vec!["a-late", "b-late"], d.join("app-2.log"))
            } else {
                (vec!["a-late"], d.join("app-1.log"))
            };
            append(&named, &format!("{}\n", late.last().unwrap()));
            let apart = || std::thread::sleep(Duration::from_millis(20));
            apart();
            append(&d.join("app-3.log"), "c\n");
            point_link(&link, "app-3.log");
            if moved_at_stop {
                apart();
                append(&d.join("app-4.log"), "d\n");
                point_link(&link, "app-4.log");
            }
            let mut fl = Follower::new(vec![link.clone()], cps, DEFAULT_MAX_LINE).unwrap();
            fl.set_drain_idle(Duration::ZERO);
            let got = poll(&mut fl);
            let then: &[&str] = if moved_at_stop { &["c", "d"] } else { &["c"] };
            let want: Vec<&str> = late.iter().copied().chain(then.iter().copied()).collect();
            assert_eq!(lines(&got), want, "moved at stop: {moved_at_stop}");
            let named = named.display().to_string();
            assert!(
                got.contains(&Ev::MovedWhileDown(named.clone())),
                "said: {got:?}"
            );
            let cps = fl.checkpoints();
            drop(fl);
            let mut fl = Follower::new(vec![link.clone()], cps, DEFAULT_MAX_LINE).unwrap();
            assert_eq!(lines(&poll(&mut fl)), Vec::<String>::new());
        }
    }

    /// Review 67 M1, M2: jail `a` reads a link moved along numbered files, jail `b` a
    /// wildcard over the files, and the daemon stops soon after a move. A new file the
    /// link read before the wildcard's look is read whole for `b` at the next start (it
    /// took the link's place in it, and `b` lost every line before); and what the old file
    /// got after the stop reaches `a` (taken as the wildcard's own to read, it was lost to
    /// `a`). With jails not known, as before.
    #[test]
    fn a_stop_soon_after_a_link_move_loses_no_line_to_either_jail() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        append(&d.join("app-1.log"), "");
        let link = d.join("current.log");
        std::os::unix::fs::symlink("app-1.log", &link).unwrap();
        let g = d.join("app-*.log").display().to_string();
        let readers = HashMap::from([
            (link.display().to_string(), vec!["a".to_string()]),
            (g.clone(), vec!["b".to_string()]),
        ]);
        // (restarted: drains end at once; the first run keeps the link's old file open)
        let start = |cps: Vec<Checkpoint>| {
            let restart = !cps.is_empty();
            let mut paths = crate::sources::glob::expand(&g);
            paths.push(link.clone());
            let mut fl = Follower::with_readers(
                paths,
                vec![g.clone()],
                readers.clone(),
                cps,
                DEFAULT_MAX_LINE,
            )
            .unwrap();
            if restart {
                fl.set_drain_idle(Duration::ZERO);
            }
            fl
        };
        // (name, line) of every line there is to read now
        let read = |fl: &mut Follower| {
            let mut got = Vec::new();
            for _ in 0..4 {
                fl.poll(&mut |e| {
                    if let Event::Line { path, line, .. } = e {
                        let name = Path::new(path).file_name().unwrap().to_string_lossy();
                        got.push(format!("{name} {}", String::from_utf8_lossy(line)));
                    }
                })
                .unwrap();
            }
            got.sort();
            got
        };
        let mut fl = start(vec![]);
        append(&d.join("app-1.log"), "a\n");
        assert_eq!(read(&mut fl), ["app-1.log a", "current.log a"]);
        // the link moves on; the wildcard has not looked yet
        append(&d.join("app-2.log"), "b\n");
        point_link(&link, "app-2.log");
        assert_eq!(read(&mut fl), ["current.log b"]);
        let cps = fl.checkpoints();
        drop(fl);
        // while down: the old file's writer goes on
        append(&d.join("app-1.log"), "a-late\n");
        let mut fl = start(cps);
        // (told: a jail of both names counts the file from the link's, review 69)
        let lent: Vec<(String, String)> = (fl.take_lent().into_iter())
            .map(|(n, o, _)| (n, o))
            .collect();
        let name = |f: &str| d.join(f).display().to_string();
        assert_eq!(lent, [(name("app-2.log"), name("current.log"))]);
        assert_eq!(
            read(&mut fl),
            ["app-1.log a-late", "app-2.log b", "current.log a-late"]
        );
        let cps = fl.checkpoints();
        drop(fl);
        let mut fl = start(cps);
        assert_eq!(read(&mut fl), Vec::<String>::new(), "nothing twice");
    }

    /// `n` distinct lines of 32 bytes with their newlines, appended to `log`.
    fn append_numbered_lines(log: &Path, n: u64) -> Vec<String> {
        let lines: Vec<String> = (0..n).map(|i| format!("{i:031}")).collect();
        append(log, &(lines.join("\n") + "\n"));
        lines
    }

    /// A log rotated twice or more while the daemon was down: the rest of the file read
    /// before the stop, then every later rotation whole, oldest first, then the log. (The
    /// later rotations were not read, nor the first file's rest: all lost, and said lost.)
    /// Numbered (plain, `delaycompress`, `compress`) and dated names; an older rotation and
    /// a file of another dated format are not read.
    #[test]
    fn a_log_rotated_twice_or_more_while_down_is_read_through_every_rotation() {
        for scheme in ["plain", "delaycompress", "compress", "dateext"] {
            let dir = tempfile::tempdir().unwrap();
            let at = |s: &str| dir.path().join(format!("auth.log{s}"));
            // an older rotation, read in an earlier run
            append(
                &at(if scheme == "dateext" {
                    "-20261130"
                } else {
                    ".1"
                }),
                "old\n",
            );
            // a leftover under a later rotation's name, last written long before the stop
            let leftover = at(if scheme == "dateext" {
                "-20261231"
            } else {
                ".0"
            });
            append(&leftover, "leftover\n");
            let long_ago = std::time::SystemTime::now() - Duration::from_secs(86_400);
            File::options()
                .write(true)
                .open(&leftover)
                .unwrap()
                .set_modified(long_ago)
                .unwrap();
            let (log, cps) = stopped_after_a(dir.path());
            append(&log, "b\n");
            let (saved, later) = if scheme == "dateext" {
                fs::rename(&log, at("-20261201")).unwrap();
                append(&log, "c\n");
                fs::rename(&log, at("-20261202")).unwrap();
                append(&log, "c2\n");
                fs::rename(&log, at("-20261203")).unwrap();
                append(&log, "d\n");
                append(&at("-2026120301"), "another format\n");
                (at("-20261201"), vec![at("-20261202"), at("-20261203")])
            } else {
                rotate_numbered(&log, "c\n");
                rotate_numbered(&log, "c2\n");
                rotate_numbered(&log, "d\n");
                match scheme {
                    "plain" => (at(".3"), vec![at(".2"), at(".1")]),
                    "delaycompress" => (gzip(&at(".3")), vec![gzip(&at(".2")), at(".1")]),
                    _ => (gzip(&at(".3")), vec![gzip(&at(".2")), gzip(&at(".1"))]),
                }
            };
            let name = |p: &PathBuf| p.display().to_string();
            let mut fl = Follower::new(vec![log.clone()], cps, DEFAULT_MAX_LINE).unwrap();
            fl.set_drain_idle(Duration::ZERO);
            assert_eq!(
                poll(&mut fl),
                [
                    Ev::RotatedWhileDown(name(&saved)),
                    Ev::RotatedAgain(later.iter().map(name).collect(), 0, vec![]),
                    Ev::Line("b".into()),
                    Ev::Line("c".into()),
                    Ev::Line("c2".into()),
                    Ev::Line("d".into())
                ],
                "{scheme}"
            );
            // nothing twice after a restart
            let cps = fl.checkpoints();
            drop(fl);
            let mut fl = Follower::new(vec![log.clone()], cps, DEFAULT_MAX_LINE).unwrap();
            assert_eq!(poll(&mut fl), [], "{scheme}");
        }
    }

    /// Over [`MAX_LATER`] later rotations: the newest are read, and the older ones left are
    /// said. More files than [`MAX_DRAINING`] are kept open until read, even when the first
    /// takes more than one poll.
    #[test]
    fn later_rotations_over_the_limit_are_said() {
        let dir = tempfile::tempdir().unwrap();
        let (log, cps) = stopped_after_a(dir.path());
        let big = append_numbered_lines(&log, POLL_BYTES / 32 + 10);
        let n = MAX_LATER + 2;
        for i in 0..=n {
            rotate_numbered(&log, &format!("r{i}\n"));
        }
        let mut fl = Follower::new(vec![log.clone()], cps, DEFAULT_MAX_LINE).unwrap();
        let got = poll(&mut fl);
        assert!(
            matches!(&got[1], Ev::RotatedAgain(names, 2, f) if names.len() == MAX_LATER && f.is_empty()),
            "{got:?}"
        );
        let want: Vec<String> = (big.into_iter())
            .chain((2..=n).map(|i| format!("r{i}")))
            .collect();
        assert!(lines(&got) == want, "not each line once, in order");
    }

    /// A stop just after a rotation, then two more rotations while down: the old file's
    /// rest (found by the place saved for it), then the rest of the file the path named at
    /// the stop, then the rotation after it whole, then the log: each line once, in order.
    /// Also with the older two compressed (`compress`, `delaycompress`): the file the path's
    /// own place is read from is not read again whole as a later rotation of the first.
    #[test]
    fn a_rotation_at_stop_then_more_while_down_reads_each_line_once() {
        for compressed in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            let (log, old, mut fl) = rotated_after_a(dir.path());
            append(&old, "b\n");
            append(&log, "n1\n");
            assert_eq!(lines(&poll(&mut fl)), ["b", "n1"]);
            let cps = fl.checkpoints();
            drop(fl);
            append(&old, "c\n");
            append(&log, "n1b\n");
            rotate_numbered(&log, "n2\n");
            rotate_numbered(&log, "n3\n");
            let at = |s: &str| dir.path().join(format!("auth.log{s}"));
            let (third, second) = if compressed {
                (gzip(&at(".3")), gzip(&at(".2")))
            } else {
                (at(".3"), at(".2"))
            };
            let name = |p: &PathBuf| p.display().to_string();
            let mut fl = Follower::new(vec![log.clone()], cps, DEFAULT_MAX_LINE).unwrap();
            fl.set_drain_idle(Duration::ZERO);
            let got = poll(&mut fl);
            assert_eq!(lines(&got), ["c", "n1b", "n2", "n3"], "{got:?}");
            assert!(got.contains(&Ev::RotatedAtStop(name(&third))), "{got:?}");
            assert!(
                got.contains(&Ev::RotatedWhileDown(name(&second))),
                "{got:?}"
            );
            assert!(
                got.contains(&Ev::RotatedAgain(vec![name(&at(".1"))], 0, vec![])),
                "{got:?}"
            );
        }
    }

    /// Review 18: a stop just after a rotation, then a rotation while down with `nocreate`
    /// (no file at the path at the start): the file the path's own checkpoint names was
    /// read whole as a later rotation of the first, then again from that checkpoint when
    /// the log came back. Each line once now.
    #[test]
    fn a_rotation_at_stop_with_no_log_at_the_start_reads_each_line_once() {
        let dir = tempfile::tempdir().unwrap();
        let (log, old, mut fl) = rotated_after_a(dir.path());
        append(&old, "b\n");
        append(&log, "n1\n");
        assert_eq!(lines(&poll(&mut fl)), ["b", "n1"]);
        let cps = fl.checkpoints();
        drop(fl);
        append(&log, "n2\n");
        fs::rename(&old, dir.path().join("auth.log.2")).unwrap();
        fs::rename(&log, &old).unwrap();
        let mut fl = Follower::new(vec![log.clone()], cps, DEFAULT_MAX_LINE).unwrap();
        fl.set_drain_idle(Duration::ZERO);
        let got = poll(&mut fl);
        assert_eq!(lines(&got), ["n2"], "{got:?}");
        append(&log, "n3\n");
        assert_eq!(lines(&poll(&mut fl)), ["n3"]);
    }

    /// Review 18: the place of a rotation just before the stop was not taken for a
    /// wildcard's match (only for a path named as it is): what the writer added to the old
    /// file after the stop was lost.
    #[test]
    fn a_rotation_at_stop_of_a_wildcards_match_loses_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        append(&d.join("app.log"), "");
        let (g, mut fl) = glob_follower(d, "*.log");
        append(&d.join("app.log"), "a\n");
        assert_eq!(lines(&poll(&mut fl)), ["a"]);
        fs::rename(d.join("app.log"), d.join("app.log.1")).unwrap();
        append(&d.join("app.log"), "n\n");
        append(&d.join("app.log.1"), "b\n");
        assert_eq!(lines(&poll(&mut fl)), ["b", "n"]);
        let cps = fl.checkpoints();
        drop(fl);
        append(&d.join("app.log.1"), "c\n");
        let (_, paths) = glob_of(d, "*.log");
        let mut fl = Follower::with_globs(paths, vec![g], cps, DEFAULT_MAX_LINE).unwrap();
        let got = poll(&mut fl);
        assert_eq!(lines(&got), ["c"], "{got:?}");
    }

    /// Review 18: a later rotation that cannot be read (here a `.gz` that is none; also one
    /// over the budget of decompressed bytes) is said by its name, not skipped in silence.
    #[test]
    fn a_later_rotation_that_cannot_be_read_is_said() {
        let dir = tempfile::tempdir().unwrap();
        let (log, cps) = stopped_after_a(dir.path());
        append(&log, "b\n");
        rotate_numbered(&log, "c\n");
        rotate_numbered(&log, "d\n");
        let bad = dir.path().join("auth.log.1.gz");
        fs::write(&bad, "not gzip at all\n").unwrap();
        fs::remove_file(dir.path().join("auth.log.1")).unwrap();
        let mut fl = Follower::new(vec![log.clone()], cps, DEFAULT_MAX_LINE).unwrap();
        let got = poll(&mut fl);
        assert!(
            got.contains(&Ev::RotatedAgain(
                vec![],
                0,
                vec![bad.display().to_string()]
            )),
            "{got:?}"
        );
        assert_eq!(lines(&got), ["b", "d"]);
    }

    /// Review 18: a poll's budget that ends exactly at the end of the first file of a
    /// backlog saved the next one's place at offset 0, which says nothing and was not taken:
    /// the rest of the backlog was lost. The place is that first file's end now.
    #[test]
    fn a_stop_between_two_files_of_a_backlog_loses_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let (log, cps) = stopped_after_a(dir.path());
        let big = append_numbered_lines(&log, POLL_BYTES / 32);
        rotate_numbered(&log, "r1\n");
        rotate_numbered(&log, "now\n");
        let mut fl = Follower::new(vec![log.clone()], cps, DEFAULT_MAX_LINE).unwrap();
        let mut first = Vec::new();
        fl.poll(&mut |e| {
            if let Event::Line { line, .. } = e {
                first.push(String::from_utf8_lossy(line).into_owned());
            }
        })
        .unwrap();
        assert_eq!(
            first.len(),
            big.len(),
            "the first file read to its end exactly"
        );
        let cps = fl.checkpoints();
        drop(fl);
        let mut fl = Follower::new(vec![log.clone()], cps, DEFAULT_MAX_LINE).unwrap();
        assert_eq!(lines(&poll(&mut fl)), ["r1", "now"]);
    }

    /// Review 18: a log empty at the stop (its place at offset 0), rotated and compressed
    /// while the daemon was down (`compress`, or `delaycompress` rotated twice): nothing read
    /// tells the compressed file by its first bytes, and all it got was lost without a word.
    /// Every rotation modified since the place was taken is read whole now, oldest first;
    /// one modified before is not.
    #[test]
    fn a_log_empty_at_the_stop_and_compressed_while_down_loses_nothing() {
        for (delaycompress, keeps_time) in [(false, true), (true, true), (false, false)] {
            let dir = tempfile::tempdir().unwrap();
            let log = dir.path().join("auth.log");
            let at = |s: &str| dir.path().join(format!("auth.log{s}"));
            append(&at(".1"), "old\n");
            let long_ago = std::time::SystemTime::now() - Duration::from_secs(3600);
            File::options()
                .write(true)
                .open(at(".1"))
                .unwrap()
                .set_modified(long_ago)
                .unwrap();
            append(&log, "");
            let mut fl = follower(&log);
            assert_eq!(poll(&mut fl), []);
            let mut cps = fl.checkpoints();
            assert!(cps[0].offset == 0 && cps[0].saved_ms > 0, "{cps:?}");
            // the stop a while ago, the rotations well after it; or a place taken by a
            // version that kept no time (0): lost as before
            cps[0].saved_ms = if keeps_time {
                cps[0].saved_ms - 10_000
            } else {
                0
            };
            drop(fl);
            append(&log, "b\n");
            rotate_numbered(&log, "c\n");
            if !delaycompress {
                gzip(&at(".1"));
            }
            rotate_numbered(&log, "d\n");
            gzip(&at(if delaycompress { ".2" } else { ".1" }));
            let mut fl = Follower::new(vec![log.clone()], cps, DEFAULT_MAX_LINE).unwrap();
            let got = poll(&mut fl);
            let want: &[&str] = if keeps_time { &["b", "c", "d"] } else { &["d"] };
            assert_eq!(lines(&got), want, "{delaycompress} {keeps_time}: {got:?}");
        }
    }

    /// A stop while a backlog of rotations is read (one poll reads at most [`POLL_BYTES`]):
    /// the place saved is in the oldest file not read to its end, and the next start reads
    /// on from it through the later rotations, each line once.
    #[test]
    fn a_stop_in_the_middle_of_a_backlog_of_rotations_loses_and_repeats_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let (log, cps) = stopped_after_a(dir.path());
        let big = append_numbered_lines(&log, POLL_BYTES / 32 + 1000);
        rotate_numbered(&log, "r1\n");
        rotate_numbered(&log, "now\n");
        let mut fl = Follower::new(vec![log.clone()], cps, DEFAULT_MAX_LINE).unwrap();
        let mut first = Vec::new();
        fl.poll(&mut |e| {
            if let Event::Line { line, .. } = e {
                first.push(String::from_utf8_lossy(line).into_owned());
            }
        })
        .unwrap();
        assert!(!first.is_empty() && first.len() < big.len());
        let cps = fl.checkpoints();
        drop(fl);
        let mut fl = Follower::new(vec![log.clone()], cps, DEFAULT_MAX_LINE).unwrap();
        fl.set_drain_idle(Duration::ZERO);
        let got = poll(&mut fl);
        let mut all = first;
        all.extend(lines(&got));
        let want: Vec<String> = big
            .iter()
            .cloned()
            .chain(["r1".into(), "now".into()])
            .collect();
        assert_eq!(all.len(), want.len(), "{:?}", &got[..3]);
        assert!(all == want, "not each line once, in order");
    }

    /// Rotated and compressed at once while the daemon was down (logrotate's `compress`
    /// without `delaycompress`): what the old file got after the stop is read from
    /// `NAME.1.gz`, found by its first bytes. It was lost, with a note.
    #[test]
    fn a_rotation_compressed_while_down_is_read_from_the_gz() {
        use flate2::write::GzEncoder;
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("auth.log");
        append(&log, "");
        let mut fl = follower(&log);
        // more than the fingerprint's bytes before the stop, so the hole is used
        let before: Vec<String> = (0..40)
            .map(|i| format!("line {i:02} before the stop"))
            .collect();
        append(&log, &(before.join("\n") + "\n"));
        assert_eq!(lines(&poll(&mut fl)), before);
        let cps = fl.checkpoints();
        drop(fl);
        append(&log, "after 1\nafter 2\n");
        // logrotate: rename, a new file, then the old one compressed (and removed)
        let old = dir.path().join("auth.log.1");
        fs::rename(&log, &old).unwrap();
        append(&log, "new\n");
        let gz = dir.path().join("auth.log.1.gz");
        let mut enc = GzEncoder::new(
            fs::File::create(&gz).unwrap(),
            flate2::Compression::default(),
        );
        enc.write_all(&fs::read(&old).unwrap()).unwrap();
        enc.finish().unwrap();
        fs::remove_file(&old).unwrap();
        // a gz of another file with the same name pattern is not taken
        let mut enc = GzEncoder::new(
            fs::File::create(dir.path().join("auth.log-20261201.gz")).unwrap(),
            flate2::Compression::default(),
        );
        enc.write_all(b"someone else's lines\nmore of them\n")
            .unwrap();
        enc.finish().unwrap();
        let mut fl = Follower::new(vec![log.clone()], cps.clone(), DEFAULT_MAX_LINE).unwrap();
        fl.set_drain_idle(Duration::ZERO);
        let got = poll(&mut fl);
        assert_eq!(
            got,
            [
                Ev::RotatedWhileDown(gz.display().to_string()),
                Ev::Line("after 1".into()),
                Ev::Line("after 2".into()),
                Ev::Line("new".into())
            ]
        );
        // a gz cut short (shorter than the place read to) is not taken: the loss is said
        drop(fl);
        let full = fs::read(&gz).unwrap();
        fs::write(&gz, &full[..full.len() / 3]).unwrap();
        let mut fl = Follower::new(vec![log.clone()], cps, DEFAULT_MAX_LINE).unwrap();
        let got = poll(&mut fl);
        assert!(matches!(got[0], Ev::Lost(_)), "{got:?}");
        assert_eq!(lines(&got), ["new"]);
    }

    /// `copytruncate` while the daemon was down: the copy, under logrotate's name, holds
    /// what was written after the stop. (A review found it lost, with only "truncated".)
    #[test]
    fn copytruncate_while_down_reads_the_rest_from_the_copy() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("auth.log");
        append(&log, "");
        let mut fl = follower(&log);
        append(&log, "a\n");
        poll(&mut fl);
        let cps = fl.checkpoints();
        drop(fl);
        append(&log, "b\nc\n");
        let copy = dir.path().join("auth.log.1");
        fs::copy(&log, &copy).unwrap();
        truncate(&log);
        append(&log, "d\n");
        let mut fl = Follower::new(vec![log.clone()], cps.clone(), DEFAULT_MAX_LINE).unwrap();
        assert_eq!(
            poll(&mut fl),
            [
                Ev::RotatedWhileDown(copy.display().to_string()),
                Ev::Truncated,
                Ev::Line("b".into()),
                Ev::Line("c".into()),
                Ev::Line("d".into())
            ]
        );
        // no copy there (compressed): the new lines only, as before
        drop(fl);
        fs::remove_file(&copy).unwrap();
        let mut fl = Follower::new(vec![log.clone()], cps, DEFAULT_MAX_LINE).unwrap();
        assert_eq!(poll(&mut fl), [Ev::Truncated, Ev::Line("d".into())]);
    }

    #[test]
    fn checkpoint_for_a_rotated_file_reads_the_new_one_from_the_start() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("auth.log");
        append(&log, "");
        let mut fl = follower(&log);
        append(&log, "a\n");
        poll(&mut fl);
        let cps = fl.checkpoints();
        drop(fl);
        // while down: a line more in the old file, rotated by rename (logrotate's NAME.1,
        // delaycompress), a new file
        append(&log, "a2\n");
        let old = dir.path().join("auth.log.1");
        fs::rename(&log, &old).unwrap();
        append(&log, "b\n");
        let mut fl = Follower::new(vec![log.clone()], cps.clone(), DEFAULT_MAX_LINE).unwrap();
        // the old file's rest first (review: it was lost without a word), then the new one
        assert_eq!(
            poll(&mut fl),
            [
                Ev::RotatedWhileDown(old.display().to_string()),
                Ev::Line("a2".into()),
                Ev::Line("b".into())
            ]
        );
        // compressed meanwhile (or gone): only the new file, and a word that the old one's
        // rest (after byte 2) was not read
        drop(fl);
        fs::remove_file(&old).unwrap();
        let mut fl = Follower::new(vec![log.clone()], cps.clone(), DEFAULT_MAX_LINE).unwrap();
        assert_eq!(poll(&mut fl), [Ev::Lost(2), Ev::Line("b".into())]);
        // a file of that name that is another one (its first bytes differ): not read
        drop(fl);
        append(&old, "x\nother\n");
        let mut fl = Follower::new(vec![log.clone()], cps, DEFAULT_MAX_LINE).unwrap();
        assert_eq!(poll(&mut fl), [Ev::Lost(2), Ev::Line("b".into())]);
    }

    fn glob_of(dir: &Path, pat: &str) -> (String, Vec<PathBuf>) {
        let g = dir.join(pat).display().to_string();
        let paths = crate::sources::glob::expand(&g);
        (g, paths)
    }

    /// A follower of the wildcard `pat` in `d` and its matches now, as a first run.
    fn glob_follower(d: &Path, pat: &str) -> (String, Follower) {
        let (g, paths) = glob_of(d, pat);
        let fl = Follower::with_globs(paths, vec![g.clone()], vec![], DEFAULT_MAX_LINE).unwrap();
        (g, fl)
    }

    fn sorted_lines(events: &[Ev]) -> Vec<String> {
        let mut v = lines(events);
        v.sort();
        v
    }

    /// Found by a review: a wildcard's new match created while the daemon was down was read
    /// from its end (every line in it lost).
    #[test]
    fn a_wildcard_match_that_appeared_while_down_is_read_from_its_start() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        append(&d.join("a.log"), "old\n");
        let (g, mut fl) = glob_follower(d, "*.log");
        assert_eq!(poll(&mut fl), []);
        append(&d.join("a.log"), "a1\n");
        assert_eq!(lines(&poll(&mut fl)), ["a1"]);
        let cps = fl.checkpoints();
        assert!(cps.contains(&glob_marker(&g)), "{cps:?}");
        drop(fl);
        // while down: a new match, and a line more in the old one
        append(&d.join("b.log"), "b1\n");
        append(&d.join("a.log"), "a2\n");
        let (_, paths) = glob_of(d, "*.log");
        let mut fl = Follower::with_globs(
            paths.clone(),
            vec![g.clone()],
            cps.clone(),
            DEFAULT_MAX_LINE,
        )
        .unwrap();
        assert_eq!(sorted_lines(&poll(&mut fl)), ["a2", "b1"]);
        // a pattern the last run did not follow (no marker): its files start at their end
        drop(fl);
        let unmarked: Vec<Checkpoint> = cps.into_iter().filter(|c| c.ino != 0).collect();
        let mut fl = Follower::with_globs(paths, vec![g], unmarked, DEFAULT_MAX_LINE).unwrap();
        assert_eq!(lines(&poll(&mut fl)), ["a2"]);
    }

    /// Found by a review of this change: a log the application rotated itself to a name the
    /// wildcard matches (`app.2026-01-10.log` for `*.log`) had no position of its own, and
    /// the next run, which reads the pattern's unknown matches from their start, read it all
    /// again.
    #[test]
    fn a_log_an_application_rotated_into_the_pattern_is_not_read_again_after_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        append(&d.join("app.log"), "old\n");
        let (g, mut fl) = glob_follower(d, "*.log");
        assert_eq!(poll(&mut fl), []);
        append(&d.join("app.log"), "a1\n");
        assert_eq!(lines(&poll(&mut fl)), ["a1"]);
        fs::rename(d.join("app.log"), d.join("app.2026-01-10.log")).unwrap();
        append(&d.join("app.log"), "b1\n");
        assert_eq!(lines(&poll(&mut fl)), ["b1"]);
        // the second's expansion: the renamed file is the one read, not a new one
        assert!(fl.set_globs(vec![g.clone()]).is_empty());
        let cps = fl.checkpoints();
        assert!(
            cps.iter()
                .any(|c| c.path.ends_with("app.2026-01-10.log") && c.offset == 7),
            "{cps:?}"
        );
        drop(fl);
        let (_, paths) = glob_of(d, "*.log");
        let mut fl = Follower::with_globs(paths, vec![g], cps, DEFAULT_MAX_LINE).unwrap();
        assert_eq!(poll(&mut fl), []);
    }

    /// A link a wildcard matches names a file read under another name (an alias), and the
    /// file is rotated (renamed, a new one made) between a poll's look at its path and the
    /// aliases' check that ends the poll: the alias of the old file stays, and follows the
    /// new file once the next poll has seen the rotation. (Judged at once, the link naming a
    /// file nobody read yet lost its alias, and the alias's jails the old file's last lines:
    /// the daemon's globs test failed so under load.)
    #[test]
    fn an_alias_survives_a_rotation_seen_by_its_link_before_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for sub in ["a", "b"] {
            fs::create_dir(d.join(sub)).unwrap();
        }
        let auth = d.join("a/auth.log");
        append(&auth, "");
        let g = d.join("b/*.log").display().to_string();
        let mut fl = Follower::with_globs(
            vec![auth.clone()],
            vec![g.clone()],
            vec![],
            DEFAULT_MAX_LINE,
        )
        .unwrap();
        assert_eq!(poll(&mut fl), []);
        std::os::unix::fs::symlink("../a/auth.log", d.join("b/x.log")).unwrap();
        assert!(fl.set_globs(vec![g.clone()]).is_empty());
        let id = |p: &Path| {
            let m = fs::metadata(p).unwrap();
            (m.dev(), m.ino())
        };
        let old = id(&auth);
        let link = d.join("b/x.log").display().to_string();
        assert_eq!(fl.aliases(), [(link.clone(), old)]);
        append(&auth, "l1\n");
        assert_eq!(lines(&poll(&mut fl)), ["l1"]);
        // the rotation, right after the poll looked at the path
        fs::rename(&auth, d.join("a/auth.log.1")).unwrap();
        append(&auth, "");
        let new = id(&auth);
        fl.adopt_aliases();
        assert_eq!(fl.aliases(), [(link.clone(), old)]);
        // the same with nothing at the path yet
        fs::rename(&auth, d.join("a/auth.log.2")).unwrap();
        fl.adopt_aliases();
        assert_eq!(fl.aliases(), [(link.clone(), old)]);
        fs::rename(d.join("a/auth.log.2"), &auth).unwrap();
        // the poll sees the rotation: the link is an alias of the new file, and of the old
        // one while it is read to its end
        append(&d.join("a/auth.log.1"), "l2\n");
        assert_eq!(lines(&poll(&mut fl)), ["l2"]);
        let mut got = fl.aliases();
        got.sort();
        let mut want = vec![(link.clone(), old), (link, new)];
        want.sort();
        assert_eq!(got, want);
    }

    /// A link that a wildcard matches (made after the start: an alias of the file another
    /// wildcard reads) moved to a new file: it stays an alias of the old one while its
    /// writer finishes it, and the new file, read from its start by the other wildcard, is
    /// followed under the link's name from its start too (review 59 H2 and H1).
    #[test]
    fn a_link_moved_to_a_new_file_keeps_the_old_one_while_it_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        append(&d.join("app-1.log"), "");
        let g1 = d.join("app-*.log").display().to_string();
        let g2 = d.join("cur*.log").display().to_string();
        let paths = crate::sources::glob::expand(&g1);
        let mut fl = Follower::with_globs(
            paths,
            vec![g1.clone(), g2.clone()],
            vec![],
            DEFAULT_MAX_LINE,
        )
        .unwrap();
        let globs = vec![g1.clone(), g2.clone()];
        assert_eq!(poll(&mut fl), []);
        std::os::unix::fs::symlink("app-1.log", d.join("current.log")).unwrap();
        assert!(fl.set_globs(globs.clone()).is_empty());
        let id = |p: &Path| {
            let m = fs::metadata(p).unwrap();
            (m.dev(), m.ino())
        };
        let (old, link) = (id(&d.join("app-1.log")), d.join("current.log"));
        let name = link.display().to_string();
        assert_eq!(fl.aliases(), [(name.clone(), old)]);
        append(&d.join("app-1.log"), "a1\n");
        assert_eq!(lines(&poll(&mut fl)), ["a1"]);
        // moved to a new file nobody reads yet
        append(&d.join("app-2.log"), "b1\n");
        point_link(&link, "app-2.log");
        // the link is followed at once, from the start of its new file, read at the next
        // poll (review 64: not at the wildcard's next look, by when it may have passed more
        // files)
        assert_eq!(poll(&mut fl), []);
        let evs = poll(&mut fl);
        assert_eq!(lines(&evs), ["b1"], "{evs:?}");
        assert!(fl
            .take_notes()
            .iter()
            .any(|n| n.contains("current.log from its start (a link moved to a new file)")),);
        assert_eq!(
            fl.aliases(),
            [(name.clone(), old)],
            "kept: the old file is written"
        );
        // the other wildcard's turn: app-2.log from its start
        let added = fl.set_globs(globs.clone());
        assert_eq!(added, [(d.join("app-2.log"), g1.clone())]);
        let evs = poll(&mut fl);
        assert_eq!(lines(&evs), ["b1"], "{evs:?}");
        append(&d.join("app-1.log"), "a2\n");
        assert_eq!(lines(&poll(&mut fl)), ["a2"]);
        assert!(
            fl.aliases().contains(&(name.clone(), old)),
            "{:?}",
            fl.aliases()
        );
        // quiet for the drain time: no longer an alias of it
        fl.set_drain_idle(Duration::ZERO);
        poll(&mut fl);
        assert!(!fl.aliases().contains(&(name, old)), "{:?}", fl.aliases());
    }

    /// A link moved along new numbered files faster than a wildcard over them looks (once a
    /// second): a file the link read whole and has moved on from is followed under the
    /// wildcard's name from its start too, not as an alias from then on (review 63: whole
    /// files were lost to the wildcard's jail under a flood).
    #[test]
    fn a_file_a_link_passed_before_the_wildcards_turn_is_read_whole() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        append(&d.join("app-1.log"), "");
        std::os::unix::fs::symlink("app-1.log", d.join("current.log")).unwrap();
        let g = d.join("app-*.log").display().to_string();
        let mut paths = crate::sources::glob::expand(&g);
        paths.push(d.join("current.log"));
        let mut fl =
            Follower::with_globs(paths, vec![g.clone()], vec![], DEFAULT_MAX_LINE).unwrap();
        assert_eq!(poll(&mut fl), []);
        let move_to = |n: u32| {
            append(&d.join(format!("app-{n}.log")), &format!("l{n}\n"));
            point_link(&d.join("current.log"), &format!("app-{n}.log"));
        };
        move_to(2);
        assert_eq!(lines(&poll(&mut fl)), ["l2"]);
        move_to(3);
        assert_eq!(lines(&poll(&mut fl)), ["l3"]);
        let mut added: Vec<PathBuf> = fl.set_globs(vec![g]).into_iter().map(|(p, _)| p).collect();
        added.sort();
        assert_eq!(added, [d.join("app-2.log"), d.join("app-3.log")]);
        assert_eq!(sorted_lines(&poll(&mut fl)), ["l2", "l3"]);
    }

    /// A link that is a wildcard's match made after the start (an alias) moved along new
    /// files faster than the wildcards look: once moved, it is followed under its own name,
    /// and each file it passes reaches it (review 64 M3: the files it passed between two
    /// looks reached its jails under no name).
    #[test]
    fn a_link_alias_passing_files_between_the_wildcards_looks_loses_none() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        append(&d.join("app-1.log"), "");
        let g1 = d.join("app-*.log").display().to_string();
        let g2 = d.join("cur*.log").display().to_string();
        let paths = crate::sources::glob::expand(&g1);
        let globs = vec![g1.clone(), g2.clone()];
        let mut fl = Follower::with_globs(paths, globs.clone(), vec![], DEFAULT_MAX_LINE).unwrap();
        assert_eq!(poll(&mut fl), []);
        let link = d.join("current.log");
        std::os::unix::fs::symlink("app-1.log", &link).unwrap();
        assert!(fl.set_globs(globs.clone()).is_empty());
        let mut under_link = Vec::new();
        let mut read = |fl: &mut Follower| {
            for _ in 0..3 {
                fl.poll(&mut |e| {
                    if let Event::Line { path, line, .. } = e {
                        if path.ends_with("current.log") {
                            under_link.push(String::from_utf8_lossy(line).into_owned());
                        }
                    }
                })
                .unwrap();
            }
        };
        for n in 2..=4 {
            append(&d.join(format!("app-{n}.log")), &format!("l{n}\n"));
            point_link(&link, &format!("app-{n}.log"));
            read(&mut fl);
        }
        assert_eq!(under_link, ["l2", "l3", "l4"]);
    }

    /// Matches of a wildcard that are gone are forgotten, with their saved positions (review:
    /// 40 deleted logs stayed followed and saved in every batch); back, one is new.
    #[test]
    fn gone_matches_of_a_wildcard_are_forgotten() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for i in 0..5 {
            append(&d.join(format!("s{i}.log")), "x\n");
        }
        append(&d.join("keep.log"), "");
        let (g, mut fl) = glob_follower(d, "*.log");
        fl.set_drain_idle(Duration::ZERO);
        poll(&mut fl);
        assert_eq!(
            fl.checkpoints().len(),
            7,
            "six files and the pattern's marker"
        );
        // deleted, or moved out of the pattern with no new file in their place (kept open
        // as a writer may go on in them, such files piled up)
        for i in 0..3 {
            fs::remove_file(d.join(format!("s{i}.log"))).unwrap();
        }
        fs::rename(d.join("s3.log"), d.join("s3.log.1")).unwrap();
        fs::rename(d.join("s4.log"), d.join("archived-s4")).unwrap();
        poll(&mut fl);
        poll(&mut fl);
        assert!(fl.set_globs(vec![g.clone()]).is_empty());
        let mut gone = fl.take_forgotten();
        gone.sort();
        // each with the place of its file's reading that ended (deleted: read to its end)
        assert_eq!(gone.len(), 10, "{gone:?}");
        assert!(gone[0].ends_with("s0.log"));
        assert_eq!(gone[5], drain_key(&gone[0]));
        let cps = fl.checkpoints();
        assert_eq!(cps.len(), 2, "{cps:?}");
        // back: a new match, read from its start
        append(&d.join("s0.log"), "y\n");
        let added = fl.set_globs(vec![g]);
        assert_eq!(added.len(), 1);
        assert_eq!(lines(&poll(&mut fl)), ["y"]);
    }

    /// A wildcard match renamed to another name the pattern matches is read on under that
    /// name once its reading under the old one ended (review: what was written to it after
    /// that was read only after a restart).
    #[test]
    fn a_match_renamed_within_the_pattern_is_read_on_under_its_new_name() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        append(&d.join("a.log"), "");
        let (g, mut fl) = glob_follower(d, "*.log");
        fl.set_drain_idle(Duration::ZERO);
        append(&d.join("a.log"), "a1\n");
        assert_eq!(lines(&poll(&mut fl)), ["a1"]);
        fs::rename(d.join("a.log"), d.join("a-old.log")).unwrap();
        assert!(
            fl.set_globs(vec![g.clone()]).is_empty(),
            "not new: a.log's file"
        );
        append(&d.join("a-old.log"), "a2\n");
        let evs = poll(&mut fl);
        assert_eq!(lines(&evs), ["a2"], "{evs:?}");
        poll(&mut fl); // a.log's reading ends (quiet): a-old.log is followed
        append(&d.join("a-old.log"), "a3\n");
        let mut got = lines(&poll(&mut fl));
        append(&d.join("a-old.log"), "a4\n");
        got.extend(lines(&poll(&mut fl)));
        got.extend(lines(&poll(&mut fl)));
        assert_eq!(got, ["a3", "a4"]);
    }

    /// Found by the same review: a match created just before a reload was read from its end.
    #[test]
    fn a_reload_reads_a_new_match_of_a_wildcard_it_followed_from_its_start() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        append(&d.join("a.log"), "old\n");
        let (g, mut fl) = glob_follower(d, "*.log");
        assert_eq!(poll(&mut fl), []);
        append(&d.join("n1.log"), "n1\n");
        append(&d.join("c.txt"), "c1\n");
        // the reload: the patterns, then the paths the daemon expanded
        let (g2, txt) = glob_of(d, "*.txt");
        let added = fl.set_globs(vec![g.clone(), g2.clone()]);
        assert_eq!(added, [(d.join("n1.log"), g.clone())]);
        let (_, mut paths) = glob_of(d, "*.log");
        paths.extend(txt);
        fl.set_paths(paths);
        // n1.log from its start; c.txt, of a pattern new at this reload, at its end
        assert_eq!(lines(&poll(&mut fl)), ["n1"]);
        append(&d.join("c.txt"), "c2\n");
        assert_eq!(lines(&poll(&mut fl)), ["c2"]);
    }

    /// Found by a review on a small ext4: a new match that got the inode number of a file
    /// read and closed before was never followed. The same inode is the same file only if
    /// the bytes read from it are still its first.
    #[test]
    fn an_inode_number_used_again_is_a_new_file() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let (g, mut fl) = glob_follower(d, "*.log");
        let b = d.join("b.log");
        append(&b, "b1\n");
        let m = fs::metadata(&b).unwrap();
        // as if a closed file with b.log's inode had been read (other first bytes)
        fl.seen
            .insert((m.dev(), m.ino()), (fingerprint(b"a1\n"), 3));
        assert_eq!(fl.set_globs(vec![g.clone()]).len(), 1);
        assert_eq!(lines(&poll(&mut fl)), ["b1"]);
        // the same file under another name (its first bytes read): not again
        let c = d.join("c.log");
        append(&c, "c1\nc2\n");
        let m = fs::metadata(&c).unwrap();
        fl.seen
            .insert((m.dev(), m.ino()), (fingerprint(b"c1\n"), 3));
        assert!(fl.set_globs(vec![g]).is_empty());
        assert_eq!(poll(&mut fl), []);
    }

    /// Found by a review: `sed -i` on a followed log (a new inode holding the same lines)
    /// read it again from byte 0: three failures counted six times, and a ban.
    #[test]
    fn a_log_replaced_by_a_copy_of_itself_is_not_read_again() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("auth.log");
        append(&log, "");
        let mut fl = follower(&log);
        let first = format!("{}\n", "h".repeat(130));
        append(&log, &format!("{first}a1\na2\nsecret\n"));
        assert_eq!(lines(&poll(&mut fl)).len(), 4);
        // sed -i '/nothing/d': a copy renamed over the path
        let tmp = dir.path().join("sedXYZ");
        fs::copy(&log, &tmp).unwrap();
        fs::rename(&tmp, &log).unwrap();
        let ev = poll(&mut fl);
        assert_eq!(lines(&ev), Vec::<String>::new(), "{ev:?}");
        assert!(ev.contains(&Ev::Copy(144, true)), "{ev:?}");
        append(&log, "a3\n");
        assert_eq!(lines(&poll(&mut fl)), ["a3"]);
        // sed -i '/secret/d' on a log of more than 128 bytes: an edited copy, read on from
        // its end (shorter now), nothing again
        let filler = format!("{}\n", "f".repeat(150));
        append(&log, &format!("{filler}secret2\n{filler}"));
        assert_eq!(lines(&poll(&mut fl)).len(), 3);
        let text = fs::read_to_string(&log).unwrap().replace("secret2\n", "");
        fs::write(&tmp, &text).unwrap();
        fs::rename(&tmp, &log).unwrap();
        let ev = poll(&mut fl);
        assert_eq!(lines(&ev), Vec::<String>::new(), "{ev:?}");
        assert!(ev.contains(&Ev::Copy(text.len() as u64, false)), "{ev:?}");
        append(&log, "a4\n");
        assert_eq!(lines(&poll(&mut fl)), ["a4"]);
        // a log of fewer than 128 bytes read says too little: read again (review)
        let small = dir.path().join("small.log");
        append(&small, "");
        let mut fs_small = follower(&small);
        append(&small, "s1\n");
        assert_eq!(lines(&poll(&mut fs_small)), ["s1"]);
        fs::copy(&small, &tmp).unwrap();
        fs::rename(&tmp, &small).unwrap();
        assert_eq!(lines(&poll(&mut fs_small)), ["s1"]);
        // a rotation's new file (other bytes) is read from its beginning as before
        fs::rename(&log, dir.path().join("auth.log.1")).unwrap();
        append(&log, "b1\n");
        assert_eq!(lines(&poll(&mut fl)), ["b1"]);
    }

    #[test]
    fn checkpoint_for_a_truncated_file() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("auth.log");
        append(&log, "");
        let mut fl = follower(&log);
        append(&log, "aaaa\nbbbb\n");
        poll(&mut fl);
        let cps = fl.checkpoints();
        drop(fl);
        truncate(&log);
        append(&log, "c\n");
        let mut fl = Follower::new(vec![log.clone()], cps.clone(), DEFAULT_MAX_LINE).unwrap();
        assert_eq!(poll(&mut fl), [Ev::Truncated, Ev::Line("c".into())]);
        // Same inode, regrown past the offset with other bytes: the fingerprint tells.
        truncate(&log);
        append(&log, "xxxxxxxxxxxxxxx\n");
        let mut fl = Follower::new(vec![log.clone()], cps, DEFAULT_MAX_LINE).unwrap();
        assert_eq!(
            poll(&mut fl),
            [Ev::Truncated, Ev::Line("xxxxxxxxxxxxxxx".into())]
        );
    }

    #[test]
    fn checkpoint_of_a_missing_path_reads_its_next_file_whole() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("auth.log");
        let fl = follower(&log);
        let cps = fl.checkpoints();
        assert_eq!(cps[0].ino, 0);
        drop(fl);
        append(&log, "appeared while down\n");
        let mut fl = Follower::new(vec![log.clone()], cps, DEFAULT_MAX_LINE).unwrap();
        assert_eq!(lines(&poll(&mut fl)), ["appeared while down"]);
    }

    /// Events for `text` appended to a new followed file in pieces of `piece` bytes, each
    /// piece followed by a poll, with the limit `max`.
    fn follow_in_pieces(text: &[u8], piece: usize, max: usize) -> Vec<Ev> {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("access.log");
        append(&log, "");
        let mut fl = Follower::new(vec![log.clone()], vec![], max).unwrap();
        let mut out = Vec::new();
        let mut f = OpenOptions::new().append(true).open(&log).unwrap();
        for p in text.chunks(piece.max(1)) {
            f.write_all(p).unwrap();
            out.extend(poll(&mut fl));
        }
        out
    }

    #[test]
    fn long_line_is_cut_to_head_and_tail_and_reported() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("auth.log");
        append(&log, "");
        let mut fl = Follower::new(vec![log.clone()], vec![], 10).unwrap();
        append(
            &log,
            "0123456789\n0123456789A\nok\n0123456789\r\n0123456789A\r\n",
        );
        assert_eq!(
            poll(&mut fl),
            [
                Ev::Line("0123456789".into()),
                Ev::Line("012346789A".into()),
                Ev::Long(11),
                Ev::Line("ok".into()),
                Ev::Line("0123456789".into()),
                Ev::Line("012346789A".into()),
                Ev::Long(11),
            ]
        );
        // Growing across polls: only the head and the tail are kept.
        append(&log, "0123456");
        assert_eq!(poll(&mut fl), []);
        append(&log, "789abcdef");
        assert_eq!(poll(&mut fl), []);
        append(&log, "xyz\r");
        assert_eq!(poll(&mut fl), []);
        append(&log, "\nnext\n");
        assert_eq!(
            poll(&mut fl),
            [
                Ev::Line("01234efxyz".into()),
                Ev::Long(19),
                Ev::Line("next".into())
            ]
        );
        assert!(fl.files[0].cur.as_ref().unwrap().split.partial.capacity() < 64 * 1024 + 32);
    }

    #[test]
    fn long_lines_are_cut_as_replay_cuts_them_and_counted() {
        // 17 KiB to 3 MiB lines, CRLF or not, whatever the pieces they are
        // written in: the same bytes as `line::prepare`, and one LongLine each.
        let mut text = Vec::new();
        let mut want = Vec::new();
        for (i, n) in [17 * 1024, 100 * 1024, 1 << 20, 300, (1 << 20) + 1, 3 << 20]
            .into_iter()
            .enumerate()
        {
            let mut l: Vec<u8> = format!("203.0.113.{i} - - \"GET /").into_bytes();
            while l.len() < n - 10 {
                l.push(b'a' + (l.len() % 26) as u8);
            }
            l.extend_from_slice(b"\" 404 0 UA");
            l.truncate(n);
            let (c, was_cut) = line::prepare(&l, DEFAULT_MAX_LINE);
            want.push(Ev::Line(String::from_utf8(c.into_owned()).unwrap()));
            if was_cut {
                want.push(Ev::Long(n));
            }
            text.extend_from_slice(&l);
            text.extend_from_slice(if i % 2 == 0 { b"\n" } else { b"\r\n" });
        }
        for piece in [text.len(), 65536, 4099] {
            assert_eq!(
                follow_in_pieces(&text, piece, DEFAULT_MAX_LINE),
                want,
                "pieces of {piece}"
            );
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn any_line_is_delivered_as_line_prepare_makes_it(
            lines in proptest::collection::vec(
                proptest::collection::vec(prop_oneof![Just(b'a'), Just(b'b'), Just(b'\r')], 0..40),
                1..6,
            ),
            max in 1usize..24,
            piece in 1usize..17,
        ) {
            let mut text = Vec::new();
            let mut want = Vec::new();
            for l in &lines {
                text.extend_from_slice(l);
                text.push(b'\n');
                let (c, was_cut) = line::prepare(l, max);
                want.push(Ev::Line(String::from_utf8(c.into_owned()).unwrap()));
                if was_cut {
                    want.push(Ev::Long(line::strip_cr(l).len()));
                }
            }
            prop_assert_eq!(follow_in_pieces(&text, piece, max), want);
        }
    }

    #[test]
    fn one_poll_reads_at_most_its_budget_and_the_next_goes_on() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("big.log");
        std::fs::write(&p, "").unwrap();
        let mut fl = Follower::new(vec![p.clone()], vec![], DEFAULT_MAX_LINE).unwrap();
        let line = "x".repeat(1023) + "\n";
        std::fs::write(&p, line.repeat(10 * 1024)).unwrap(); // 10 MiB
        let mut lines = 0;
        let first = fl
            .poll(&mut |e| {
                if let Event::Line { .. } = e {
                    lines += 1
                }
            })
            .unwrap();
        assert_eq!(
            first, POLL_BYTES,
            "one poll reads its budget, not the whole file"
        );
        assert_eq!(lines, POLL_BYTES as usize / 1024);
        let rest: usize = poll(&mut fl)
            .iter()
            .filter(|e| matches!(e, Ev::Line(_)))
            .count();
        assert_eq!(lines + rest, 10 * 1024, "nothing lost across polls");
    }

    #[test]
    fn partial_line_is_completed_later() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("auth.log");
        append(&log, "");
        let mut fl = follower(&log);
        append(&log, "Failed password for ro");
        assert_eq!(poll(&mut fl), []);
        append(&log, "ot from 192.0.2.1\r\nnext\n");
        assert_eq!(
            lines(&poll(&mut fl)),
            ["Failed password for root from 192.0.2.1", "next"]
        );
    }

    #[test]
    fn bytes_need_not_be_utf8() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("auth.log");
        append(&log, "");
        let mut fl = follower(&log);
        let mut f = OpenOptions::new().append(true).open(&log).unwrap();
        f.write_all(b"\xff\xfe user\n").unwrap();
        let mut got = Vec::new();
        fl.poll(&mut |e| {
            if let Event::Line { line, .. } = e {
                got.push(line.to_vec());
            }
        })
        .unwrap();
        assert_eq!(got, [b"\xff\xfe user".to_vec()]);
    }

    #[test]
    fn unfinished_line_of_a_rotated_file_is_flushed_when_it_is_closed() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("auth.log");
        append(&log, "");
        let mut fl = follower(&log);
        fl.set_drain_idle(Duration::ZERO);
        append(&log, "a\nunfinished");
        fs::rename(&log, dir.path().join("auth.log.1")).unwrap();
        append(&log, "n\n");
        assert_eq!(
            poll(&mut fl),
            [
                Ev::Line("a".into()),
                Ev::Rotated,
                Ev::Line("n".into()),
                Ev::Line("unfinished".into())
            ]
        );
    }

    #[test]
    fn set_paths_keeps_state_of_paths_still_present() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a.log"), dir.path().join("b.log"));
        append(&a, "");
        append(&b, "old b\n");
        let mut fl = follower(&a);
        append(&a, "a1\n");
        fl.set_paths(vec![b.clone(), a.clone()]);
        append(&b, "b1\n");
        let mut got = Vec::new();
        fl.poll(&mut |e| {
            if let Event::Line { path, line, .. } = e {
                got.push(format!("{path}: {}", String::from_utf8_lossy(line)));
            }
        })
        .unwrap();
        let (a_name, b_name) = (a.display(), b.display());
        assert_eq!(got, [format!("{b_name}: b1"), format!("{a_name}: a1")]);
        fl.set_paths(vec![b.clone()]);
        assert_eq!(fl.checkpoints().len(), 1);
        append(&a, "a2\n");
        fl.set_paths(vec![a.clone(), b.clone()]);
        assert_eq!(lines(&poll(&mut fl)), ["a2"], "resumed where it was left");
    }

    /// Review 28: a reload that adds a log answered before the follower took the new path,
    /// which then started at the file's end as it was then: lines written in between were
    /// skipped. It starts where the file ended when the paths were made (at the reload).
    #[test]
    fn a_path_added_at_a_reload_starts_where_its_file_ended_then() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b, c) = (
            dir.path().join("a.log"),
            dir.path().join("b.log"),
            dir.path().join("c.log"),
        );
        append(&a, "");
        append(&b, "old b\n");
        append(&c, "old c\n");
        let mut fl = follower(&a);
        // the reload: paths made, each file's end then recorded
        let made = FileSources {
            paths: vec![a.clone(), b.clone(), c.clone()],
            ..Default::default()
        }
        .stat_now();
        assert_eq!(made.seen.len(), 3);
        // written after the reload answered, before the follower took the paths
        append(&b, "b1\n");
        append(&c, "c1\n");
        fl.set_paths_seen(vec![a.clone(), b.clone()], &made.seen);
        assert_eq!(lines(&poll(&mut fl)), ["b1"]);
        // without a record (and so at a start): from the end when taken
        fl.set_paths_seen(vec![a.clone(), b.clone(), c.clone()], &[]);
        append(&c, "c2\n");
        assert_eq!(lines(&poll(&mut fl)), ["c2"]);
        // a record of another file at the path (replaced since): not used
        let d = dir.path().join("d.log");
        append(&d, "old d\n");
        let then = FileSources {
            paths: vec![d.clone()],
            ..Default::default()
        }
        .stat_now();
        // (held open: its inode is not reused for the new file)
        let _held = fs::File::open(&d).unwrap();
        fs::remove_file(&d).unwrap();
        append(&d, "other old d\n");
        fl.set_paths_seen(vec![a.clone(), b.clone(), c.clone(), d.clone()], &then.seen);
        append(&d, "d1\n");
        assert_eq!(lines(&poll(&mut fl)), ["d1"]);
    }

    #[test]
    fn unreadable_path_reports_one_error() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("auth.log");
        fs::create_dir(&log).unwrap();
        let mut fl = follower(&log);
        assert_eq!(poll(&mut fl), [Ev::Error("not a regular file".into())]);
        assert_eq!(poll(&mut fl), []);
    }

    /// File operations of the model test. Appends open the path with O_CREAT, like a logger.
    #[derive(Debug, Clone)]
    enum Op {
        Append(usize),
        Rename,
        CopyTruncate,
        Delete,
        Truncate,
        Poll,
        Restart,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (1usize..5).prop_map(Op::Append),
            1 => Just(Op::Rename),
            1 => Just(Op::CopyTruncate),
            1 => Just(Op::Delete),
            1 => Just(Op::Truncate),
            3 => Just(Op::Poll),
            1 => Just(Op::Restart),
        ]
    }

    /// One file that was at the path, as the model sees it.
    struct Gen {
        /// A poll happened while it was at the path, so the follower holds it open.
        seen: bool,
        /// Lines appended since the last poll.
        unread: Vec<u64>,
    }

    fn run_model(ops: Vec<Op>) -> Result<(), TestCaseError> {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("app.log");
        let rotated = dir.path().join("app.log.1");
        append(&log, "before start 1\nbefore start 2\n");
        let mut fl = follower(&log);
        let mut cur = Some(Gen {
            seen: true,
            unread: vec![],
        });
        let mut gone: Vec<Gen> = Vec::new();
        let mut next = 0u64;
        let mut copies = 0;
        let poll_and_check = |fl: &mut Follower, cur: &mut Option<Gen>, gone: &mut Vec<Gen>| {
            let mut expected = Vec::new();
            for g in gone.drain(..).filter(|g| g.seen) {
                expected.extend(g.unread);
            }
            if let Some(g) = cur {
                expected.append(&mut g.unread);
                g.seen = true;
            }
            let got: Vec<u64> = lines(&poll(fl))
                .iter()
                .map(|l| l[..8].parse().unwrap())
                .collect();
            prop_assert_eq!(got, expected);
            Ok(())
        };
        for op in ops {
            match op {
                Op::Append(k) => {
                    let g = cur.get_or_insert_with(|| Gen {
                        seen: false,
                        unread: vec![],
                    });
                    let mut text = String::new();
                    for _ in 0..k {
                        text.push_str(&format!("{next:08} line of the model\n"));
                        g.unread.push(next);
                        next += 1;
                    }
                    append(&log, &text);
                }
                Op::Rename | Op::Delete => {
                    if let Some(g) = cur.take() {
                        gone.push(g);
                        if matches!(op, Op::Rename) {
                            fs::rename(&log, &rotated).unwrap();
                        } else {
                            fs::remove_file(&log).unwrap();
                        }
                    }
                }
                Op::CopyTruncate | Op::Truncate => {
                    if let Some(g) = &mut cur {
                        if matches!(op, Op::CopyTruncate) {
                            // A fresh name: copying onto a rotated file still held would
                            // rewrite that file in place.
                            copies += 1;
                            fs::copy(&log, dir.path().join(format!("copy.{copies}"))).unwrap();
                        }
                        truncate(&log);
                        g.unread.clear(); // never read: lost, as with any follower
                    }
                }
                Op::Poll => poll_and_check(&mut fl, &mut cur, &mut gone)?,
                Op::Restart => {
                    poll_and_check(&mut fl, &mut cur, &mut gone)?;
                    let cps = fl.checkpoints();
                    drop(fl);
                    fl = Follower::new(vec![log.clone()], cps, DEFAULT_MAX_LINE).unwrap();
                }
            }
        }
        poll_and_check(&mut fl, &mut cur, &mut gone)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]
        #[test]
        fn every_line_delivered_once_in_order(ops in proptest::collection::vec(op(), 1..40)) {
            run_model(ops)?;
        }
    }

    #[test]
    fn stress_concurrent_writer_rotating_by_rename() {
        const FILES: u64 = 20;
        const PER_FILE: u64 = 1000;
        const AFTER_RENAME: u64 = 10; // written to the old descriptor after the rename
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("stress.log");
        let max_seen = Arc::new(AtomicU64::new(0)); // highest line number read, plus one
        let mut fl = follower(&log);

        let writer = {
            let (log, dir, max_seen) = (log.clone(), dir.path().to_path_buf(), max_seen.clone());
            std::thread::spawn(move || {
                for r in 0..FILES {
                    let first = r * PER_FILE;
                    let file = OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(&log)
                        .unwrap();
                    // A small buffer, so lines are often split between two writes.
                    let mut w = io::BufWriter::with_capacity(1000, file);
                    for n in first..first + PER_FILE - AFTER_RENAME {
                        writeln!(w, "{n:08} stress line").unwrap();
                    }
                    w.flush().unwrap();
                    // A file that comes and goes between two looks is never seen by any
                    // follower; rotate only once this one has been read from.
                    let deadline = Instant::now() + Duration::from_secs(20);
                    while max_seen.load(Ordering::SeqCst) <= first && Instant::now() < deadline {
                        std::thread::sleep(Duration::from_millis(1));
                    }
                    fs::rename(&log, dir.join(format!("stress.log.{r}"))).unwrap();
                    for n in first + PER_FILE - AFTER_RENAME..first + PER_FILE {
                        writeln!(w, "{n:08} stress line").unwrap();
                    }
                    w.flush().unwrap();
                }
            })
        };

        let total = FILES * PER_FILE;
        let mut got = Vec::with_capacity(total as usize);
        let deadline = Instant::now() + Duration::from_secs(30);
        while (got.len() as u64) < total && Instant::now() < deadline {
            fl.wait(Duration::from_millis(50));
            fl.poll(&mut |e| {
                if let Event::Line { line, .. } = e {
                    let n: u64 = std::str::from_utf8(&line[..8]).unwrap().parse().unwrap();
                    got.push(n);
                    max_seen.fetch_max(n + 1, Ordering::SeqCst);
                }
            })
            .unwrap();
        }
        writer.join().unwrap();
        fl.poll(&mut |e| {
            if let Event::Line { line, .. } = e {
                got.push(std::str::from_utf8(&line[..8]).unwrap().parse().unwrap());
            }
        })
        .unwrap();
        assert_eq!(got.len() as u64, total, "no line lost or repeated");
        got.sort_unstable();
        assert!(got.iter().copied().eq(0..total), "each line exactly once");
    }
}

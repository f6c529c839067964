//! The notifiers' queues: the mail queue on disk (its own SQLite file, `notify.db` in the
//! state directory: a restart loses nothing), and a bounded in-memory queue for webhooks
//! that drops the oldest entries and counts them.

use std::collections::VecDeque;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use rusqlite::{params, Connection};

use super::Note;
use crate::daemon::fsutil;
use crate::store::{take_rewrite, KeptFile};

/// The queue file, for the log.
const WHAT: &str = "mail queue";

/// Mail events kept at most; past it the oldest are dropped (and counted in the next mail).
pub const MAIL_QUEUE_MAX: i64 = 20_000;

/// The persistent queue of one sink.
pub struct Queue {
    conn: Connection,
    /// The file in its place ([`Queue::keep_in_place`]).
    place: KeptFile,
    /// Failures of [`Queue::keep_in_place`], said at most once a minute.
    failed: crate::logging::Throttled,
}

impl Queue {
    /// Opens (or creates, 0600) the queue file. A file that is not a usable queue is moved
    /// aside (`.bad-<time>`) and a fresh one created: notifications must never stop the
    /// daemon.
    pub fn open(path: &Path) -> Result<Queue> {
        fsutil::check_state_file(path, "notification queue")?;
        if let Some(done) = take_rewrite(path, WHAT)? {
            tracing::error!("notify: {done}");
        }
        let conn = Self::open_and_set_aside(path)?;
        Ok(Queue {
            conn,
            place: KeptFile::new(path, WHAT, "no queued mail lost")?,
            failed: Default::default(),
        })
    }

    /// Writes the queue file again when it was deleted or replaced while the daemon runs
    /// (see [`KeptFile::keep`]), said in the log: unseen, the mail waiting was gone at the
    /// next start. At most every few seconds unless `now`.
    pub fn keep_in_place(&mut self, now: bool) {
        if !self.place.due() && !now {
            return;
        }
        let kept = self.place.keep(&mut self.conn, &mut |p| {
            Ok((Self::open_conn(p)?, String::new()))
        });
        match kept {
            Ok(None) => {}
            Ok(Some(done)) => tracing::error!("notify: {done}"),
            Err(e) => {
                if let Some(n) = self.failed.hit() {
                    tracing::error!("notify: {e:#} ({n} failed checks since the last said)");
                }
            }
        }
    }

    fn open_and_set_aside(path: &Path) -> Result<Connection> {
        match Self::open_conn(path) {
            Ok(q) => Ok(q),
            // (only a file that is not a database or is damaged: a full disk or a lock is
            // no reason to put the waiting mail aside)
            Err(e) if path.exists() && fsutil::is_corrupt_db(&e) => {
                let aside = path.with_extension(format!(
                    "db.bad-{}",
                    std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map(|d| d.as_secs())
                        .unwrap_or(0)
                ));
                tracing::error!(
                    "notify: queue {} unusable ({e:#}); moved to {} and started empty",
                    path.display(),
                    aside.display()
                );
                std::fs::rename(path, &aside)?;
                for s in ["-wal", "-shm"] {
                    let mut p = path.as_os_str().to_owned();
                    p.push(s);
                    let _ = std::fs::remove_file(p);
                }
                Self::open_conn(path)
            }
            Err(e) => Err(e),
        }
    }

    fn open_conn(path: &Path) -> Result<Connection> {
        Self::open_conn_inner(path).with_context(|| format!("cannot open {}", path.display()))
    }

    fn open_conn_inner(path: &Path) -> Result<Connection> {
        let conn = fsutil::open_private_db(path, Duration::from_secs(5))?;
        conn.execute_batch(
            "             CREATE TABLE IF NOT EXISTS pending (
                 id INTEGER PRIMARY KEY AUTOINCREMENT,
                 sink TEXT NOT NULL,
                 at INTEGER NOT NULL,
                 note TEXT NOT NULL
             );
             CREATE INDEX IF NOT EXISTS pending_sink ON pending (sink, id);
             CREATE TABLE IF NOT EXISTS dropped (
                 sink TEXT PRIMARY KEY,
                 n INTEGER NOT NULL
             );",
        )?;
        Ok(conn)
    }

    /// Appends notes (one transaction); past [`MAIL_QUEUE_MAX`] the oldest are dropped and
    /// counted.
    pub fn push(&mut self, sink: &str, notes: &[Note]) -> Result<()> {
        let tx = self.conn.transaction()?;
        {
            let mut ins =
                tx.prepare_cached("INSERT INTO pending (sink, at, note) VALUES (?1, ?2, ?3)")?;
            for n in notes {
                ins.execute(params![sink, n.time, serde_json::to_string(n)?])?;
            }
        }
        let count: i64 = tx.query_row(
            "SELECT count(*) FROM pending WHERE sink = ?1",
            [sink],
            |r| r.get(0),
        )?;
        if count > MAIL_QUEUE_MAX {
            let excess = count - MAIL_QUEUE_MAX;
            tx.execute(
                "DELETE FROM pending WHERE id IN (SELECT id FROM pending WHERE sink = ?1 ORDER BY id LIMIT ?2)",
                params![sink, excess],
            )?;
            tx.execute(
                "INSERT INTO dropped (sink, n) VALUES (?1, ?2) ON CONFLICT(sink) DO UPDATE SET n = n + ?2",
                params![sink, excess],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Counts `n` events of `sink` lost before they reached the queue (told in the next
    /// mail with the ones the queue dropped).
    pub fn add_dropped(&mut self, sink: &str, n: u64) -> Result<()> {
        self.conn.execute(
            "INSERT INTO dropped (sink, n) VALUES (?1, ?2) ON CONFLICT(sink) DO UPDATE SET n = n + ?2",
            params![sink, n as i64],
        )?;
        Ok(())
    }

    /// The time of the oldest waiting note.
    pub fn oldest(&self, sink: &str) -> Result<Option<i64>> {
        Ok(self
            .conn
            .query_row("SELECT min(at) FROM pending WHERE sink = ?1", [sink], |r| {
                r.get(0)
            })?)
    }

    /// Notes waiting.
    pub fn len(&self, sink: &str) -> Result<i64> {
        Ok(self.conn.query_row(
            "SELECT count(*) FROM pending WHERE sink = ?1",
            [sink],
            |r| r.get(0),
        )?)
    }

    /// All waiting notes, oldest first, with their ids; and how many were dropped.
    pub fn load(&self, sink: &str) -> Result<(Vec<(i64, Note)>, i64)> {
        let mut st = self
            .conn
            .prepare("SELECT id, note FROM pending WHERE sink = ?1 ORDER BY id")?;
        let rows = st.query_map([sink], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
        })?;
        let mut out = Vec::new();
        for r in rows {
            let (id, text) = r?;
            // a row that does not parse (a newer version's?) is sent as its text
            let note = serde_json::from_str(&text).unwrap_or_else(|_| {
                Note::plain("unknown", 0, super::escape_line(text.as_bytes(), 2000))
            });
            out.push((id, note));
        }
        let dropped = self
            .conn
            .query_row("SELECT n FROM dropped WHERE sink = ?1", [sink], |r| {
                r.get(0)
            })
            .unwrap_or(0);
        Ok((out, dropped))
    }

    /// Removes sent notes (up to `last_id`) and resets the drop count.
    pub fn remove_through(&mut self, sink: &str, last_id: i64) -> Result<()> {
        let tx = self.conn.transaction()?;
        tx.execute(
            "DELETE FROM pending WHERE sink = ?1 AND id <= ?2",
            params![sink, last_id],
        )?;
        tx.execute("DELETE FROM dropped WHERE sink = ?1", [sink])?;
        tx.commit()?;
        Ok(())
    }
}

/// A bounded FIFO: pushing onto a full one drops the oldest entry, and counts it.
#[derive(Debug)]
pub struct Bounded<T> {
    items: VecDeque<T>,
    cap: usize,
    dropped: u64,
}

impl<T> Bounded<T> {
    /// An empty queue holding at most `cap` (at least 1) entries.
    pub fn new(cap: usize) -> Bounded<T> {
        Bounded {
            items: VecDeque::new(),
            cap: cap.max(1),
            dropped: 0,
        }
    }

    /// Appends; returns whether an older entry was dropped for it.
    pub fn push(&mut self, t: T) -> bool {
        let drop = self.items.len() >= self.cap;
        if drop {
            self.items.pop_front();
            self.dropped += 1;
        }
        self.items.push_back(t);
        drop
    }

    /// The oldest entry.
    pub fn front(&self) -> Option<&T> {
        self.items.front()
    }

    /// Removes the oldest entry.
    pub fn pop(&mut self) -> Option<T> {
        self.items.pop_front()
    }

    /// Entries waiting.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Entries dropped so far.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn note(i: i64) -> Note {
        Note {
            event: "ban".into(),
            time: i,
            text: format!("ban {i}"),
            addr: None,
            jail: None,
            failures: None,
            duration: None,
            reason: None,
            evidence: vec![],
        }
    }

    #[test]
    fn bounded_drops_the_oldest_and_counts() {
        let mut q = Bounded::new(2);
        assert!(!q.push(1) && !q.push(2));
        assert!(q.push(3));
        assert!(q.push(4));
        assert_eq!((q.len(), q.dropped(), q.front()), (2, 2, Some(&3)));
    }

    /// The queue file deleted (with its side files) while the daemon runs: written again
    /// from the open connection, so the mail waiting is not lost at the next start (it was:
    /// an empty queue). A crash in the middle leaves a copy that the next start takes.
    #[test]
    fn a_deleted_queue_file_is_written_again() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("notify.db");
        let mut q = Queue::open(&p).unwrap();
        q.push("mail", &[note(1), note(2)]).unwrap();
        q.keep_in_place(true);
        for s in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{s}", p.display()));
        }
        q.push("mail", &[note(3)]).unwrap();
        q.keep_in_place(true);
        assert!(p.exists());
        q.push("mail", &[note(4)]).unwrap();
        drop(q);
        let q = Queue::open(&p).unwrap();
        let ids: Vec<i64> = q.load("mail").unwrap().0.iter().map(|n| n.1.time).collect();
        assert_eq!(ids, [1, 2, 3, 4]);
        drop(q);
        // the copy of a rewrite cut short by a crash is taken at the next start
        std::fs::rename(&p, format!("{}.rewrite", p.display())).unwrap();
        let q = Queue::open(&p).unwrap();
        assert_eq!(q.len("mail").unwrap(), 4);
    }

    #[test]
    fn only_a_damaged_queue_is_put_aside() {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("notify.db");
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&p)
            .unwrap()
            .write_all(&[b'x'; 4096])
            .unwrap();
        let mut q = Queue::open(&p).unwrap();
        q.push("mail", &[note(1)]).unwrap();
        let aside: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().contains(".bad-"))
            .collect();
        assert_eq!(aside.len(), 1, "{aside:?}");
        drop(q);
        // a file that is in use (another connection holds it in exclusive mode, as a daemon
        // started on a full disk does) is not put aside: the open fails after its busy
        // timeout and says so
        let other = rusqlite::Connection::open(&p).unwrap();
        other
            .execute_batch(
                "PRAGMA locking_mode = EXCLUSIVE; BEGIN IMMEDIATE; DELETE FROM dropped; COMMIT;",
            )
            .unwrap();
        let e = Queue::open(&p)
            .err()
            .expect("the open fails while the file is locked");
        assert!(!fsutil::is_corrupt_db(&e), "{e:#}");
        drop(other);
        let n = std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().contains(".bad-"))
            .count();
        assert_eq!(n, 1, "put aside while in use ({e:#})");
        let q = Queue::open(&p).unwrap();
        assert_eq!(q.load("mail").unwrap().0.len(), 1);
    }

    #[test]
    fn the_queue_survives_reopening_and_removes_what_was_sent() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("notify.db");
        {
            let mut q = Queue::open(&p).unwrap();
            q.push("mail", &[note(1), note(2)]).unwrap();
        }
        let mut q = Queue::open(&p).unwrap();
        let (items, dropped) = q.load("mail").unwrap();
        assert_eq!(dropped, 0);
        assert_eq!(
            items.iter().map(|(_, n)| n.time).collect::<Vec<_>>(),
            [1, 2]
        );
        assert_eq!(q.oldest("mail").unwrap(), Some(1));
        q.push("mail", &[note(3)]).unwrap();
        q.remove_through("mail", items[1].0).unwrap();
        let (items, _) = q.load("mail").unwrap();
        assert_eq!(items.iter().map(|(_, n)| n.time).collect::<Vec<_>>(), [3]);
        // events lost before they were queued are counted for the next mail, and kept
        q.add_dropped("mail", 7).unwrap();
        drop(q);
        let q = Queue::open(&p).unwrap();
        assert_eq!(q.load("mail").unwrap().1, 7);
        // a file that is not a database is moved aside
        drop(q);
        std::fs::write(&p, b"garbage garbage garbage garbage garbage garbage").unwrap();
        let q = Queue::open(&p).unwrap();
        assert_eq!(q.len("mail").unwrap(), 0);
    }
}

//! Source threads: the file follower and journald (through `journalctl --follow`), sending
//! batches of lines to the engine.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::sources::follow::{Checkpoint, Event, Follower, DEFAULT_MAX_LINE};

use super::Msg;

/// A batch of lines from one source: the bytes of all lines back to back, with ends.
#[derive(Debug, Default)]
pub struct Batch {
    /// Source name: a file path, or `journal:…`.
    pub sources: Vec<String>,
    /// (source index, end offset in `data`) per line.
    pub lines: Vec<(u32, u32)>,
    /// Line bytes.
    pub data: Vec<u8>,
    /// Read positions to persist once these lines are processed.
    pub checkpoints: Vec<Checkpoint>,
    /// Notes to log (rotations, long lines, errors).
    pub notes: Vec<String>,
}

impl Batch {
    fn source_index(&mut self, s: &str) -> u32 {
        match self.sources.iter().position(|x| x == s) {
            Some(i) => i as u32,
            None => {
                self.sources.push(s.to_string());
                (self.sources.len() - 1) as u32
            }
        }
    }

    fn push(&mut self, source: &str, line: &[u8]) {
        let i = self.source_index(source);
        self.data.extend_from_slice(line);
        self.lines.push((i, self.data.len() as u32));
    }

    /// Iterates (source, line).
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[u8])> {
        let mut start = 0usize;
        self.lines.iter().map(move |&(s, end)| {
            let l = &self.data[start..end as usize];
            start = end as usize;
            (self.sources[s as usize].as_str(), l)
        })
    }
}

/// Paths the follower should follow; replaced on reload.
pub type SharedPaths = Arc<Mutex<Option<Vec<PathBuf>>>>;

/// Opens the followed files now (a first-seen file starts at its end, so this must happen
/// before the daemon says it is running, or lines written in between would be skipped).
pub fn open_files(paths: Vec<PathBuf>, checkpoints: Vec<Checkpoint>) -> anyhow::Result<Follower> {
    Follower::new(paths, checkpoints, DEFAULT_MAX_LINE)
}

/// Runs the file follower until the engine goes away.
pub fn follow_files(mut f: Follower, new_paths: SharedPaths, engine: Sender<Msg>) {
    let mut last_checkpoint = std::time::Instant::now();
    loop {
        if let Some(p) = new_paths.lock().ok().and_then(|mut g| g.take()) {
            f.set_paths(p);
        }
        let mut batch = Batch::default();
        let _ = f.poll(&mut |ev| match ev {
            Event::Line { path, line } => batch.push(path, line),
            Event::Truncated { path } => batch
                .notes
                .push(format!("log truncated, reading from its start: {path}")),
            Event::Rotated { path } => batch.notes.push(format!("log rotated: {path}")),
            Event::LongLine { path, dropped } => batch.notes.push(format!(
                "line of {dropped} bytes longer than the limit skipped in {path}"
            )),
            Event::Error { path, message } => {
                batch.notes.push(format!("cannot read {path}: {message}"))
            }
        });
        let had_lines = !batch.lines.is_empty();
        if had_lines
            || !batch.notes.is_empty()
            || last_checkpoint.elapsed() > Duration::from_secs(5)
        {
            batch.checkpoints = f.checkpoints();
            last_checkpoint = std::time::Instant::now();
            if engine.send(Msg::Lines(batch)).is_err() {
                return;
            }
        }
        if !had_lines {
            f.wait(Duration::from_millis(1000));
        }
    }
}

/// Follows the systemd journal for one match (e.g. `_COMM=sshd`) with `journalctl`,
/// keeping its position in a cursor file so a restart neither re-reads nor skips.
pub fn follow_journal(source: String, cursor_file: PathBuf, engine: Sender<Msg>) {
    let spec = source.trim_start_matches("journal:").to_string();
    loop {
        let child = Command::new("journalctl")
            .args([
                "--follow",
                "--no-pager",
                "--output=short-iso",
                "--lines=0",
                "--quiet",
            ])
            .arg(format!("--cursor-file={}", cursor_file.display()))
            .args(spec.split_whitespace())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn();
        let mut child: Child = match child {
            Ok(c) => c,
            Err(e) => {
                let _ = engine.send(Msg::Note(format!(
                    "cannot run journalctl for {source}: {e}; retrying in 10s"
                )));
                std::thread::sleep(Duration::from_secs(10));
                continue;
            }
        };
        let out = child.stdout.take().expect("piped stdout");
        let mut r = BufReader::with_capacity(1 << 16, out);
        let mut line = Vec::new();
        loop {
            line.clear();
            match r.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let l = line.strip_suffix(b"\n").unwrap_or(&line);
                    let mut b = Batch::default();
                    b.push(&source, l);
                    if engine.send(Msg::Lines(b)).is_err() {
                        let _ = child.kill();
                        return;
                    }
                }
            }
        }
        let _ = child.kill();
        let _ = child.wait();
        std::thread::sleep(Duration::from_secs(2));
    }
}

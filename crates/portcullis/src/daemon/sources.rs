//! Source threads: the file follower and journald (through `journalctl --follow`), sending
//! batches of lines to the engine.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

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

/// How a journal reader runs `journalctl`: the program and the arguments that come before
/// the reader's own (`--follow …`, `--cursor-file=…`, the match). Tests put a script here.
#[derive(Debug, Clone)]
pub struct JournalCommand {
    pub program: OsString,
    pub args: Vec<OsString>,
}

impl Default for JournalCommand {
    fn default() -> Self {
        JournalCommand {
            program: "journalctl".into(),
            args: Vec::new(),
        }
    }
}

/// The cursor file of a journal source in `state_dir`, named after the source itself so a
/// reader started again (after a restart or a reload) finds its own position.
pub fn cursor_file(state_dir: &Path, source: &str) -> PathBuf {
    state_dir.join(format!(
        "journal-{}.cursor",
        source
            .trim_start_matches("journal:")
            .replace(|c: char| !c.is_ascii_alphanumeric() && c != '-', "_")
    ))
}

/// What to do to go from the running journal sources to the wanted ones:
/// (sources to start, sources to stop), both sorted and without duplicates.
pub fn journal_changes<'a>(
    running: impl IntoIterator<Item = &'a str>,
    wanted: &[String],
) -> (Vec<String>, Vec<String>) {
    let running: std::collections::BTreeSet<&str> = running.into_iter().collect();
    let wanted: std::collections::BTreeSet<&str> = wanted.iter().map(String::as_str).collect();
    (
        wanted.difference(&running).map(|s| s.to_string()).collect(),
        running.difference(&wanted).map(|s| s.to_string()).collect(),
    )
}

/// How long a stopped `journalctl` gets to exit on SIGTERM (and write its cursor file, which
/// journalctl ≥ 254 does in `--follow` mode) before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(2);

/// What the engine and one reader thread share.
#[derive(Default)]
struct ReaderCtl {
    /// Set once, when the reader is stopped.
    stopping: Mutex<bool>,
    wake: Condvar,
    /// The running `journalctl`, while it has not been reaped. It is only signalled and only
    /// reaped under this lock, so its pid cannot have been reused when it is signalled.
    child: Mutex<Option<Child>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl ReaderCtl {
    fn stopping(&self) -> bool {
        *lock(&self.stopping)
    }

    /// Sleeps for `d` unless stopped first; true when stopped.
    fn sleep(&self, d: Duration) -> bool {
        let g = lock(&self.stopping);
        let (g, _) = self
            .wake
            .wait_timeout_while(g, d, |stopping| !*stopping)
            .unwrap_or_else(|e| e.into_inner());
        *g
    }

    /// Sends `sig` to the child if it has not been reaped yet.
    fn signal(&self, sig: libc::c_int) {
        if let Some(c) = lock(&self.child).as_ref() {
            // SAFETY: plain syscall on our own child, not reaped (we hold the lock reaping
            // takes), so its pid still names it.
            unsafe {
                libc::kill(c.id() as libc::pid_t, sig);
            }
        }
    }
}

/// Reaps a `journalctl` whose output has ended: it gets [`STOP_GRACE`] to exit by itself (it
/// may be writing its cursor file after a SIGTERM), then it is killed.
fn reap(mut child: Child) {
    let deadline = Instant::now() + STOP_GRACE;
    while Instant::now() < deadline {
        match child.try_wait() {
            Ok(Some(_)) | Err(_) => break,
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Follows the systemd journal for one match (e.g. `_COMM=sshd`) with `journalctl`,
/// keeping its position in a cursor file so a restart neither re-reads nor skips. Runs until
/// stopped or until the engine goes away; `journalctl` is started again when it ends.
fn follow_journal(
    cmd: JournalCommand,
    source: String,
    cursor_file: PathBuf,
    engine: Sender<Msg>,
    ctl: Arc<ReaderCtl>,
) {
    let spec = source.trim_start_matches("journal:").to_string();
    while !ctl.stopping() {
        let child = Command::new(&cmd.program)
            .args(&cmd.args)
            .args([
                "--follow",
                "--no-pager",
                "--output=short-iso",
                "--lines=0",
                "--quiet",
            ])
            .arg(format!("--cursor-file={}", cursor_file.display()))
            .args(spec.split_whitespace())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn();
        let mut child: Child = match child {
            Ok(c) => c,
            Err(e) => {
                let _ = engine.send(Msg::Note(format!(
                    "cannot run journalctl for {source}: {e}; retrying in 10s"
                )));
                ctl.sleep(Duration::from_secs(10));
                continue;
            }
        };
        let out = child.stdout.take().expect("piped stdout");
        {
            let mut slot = lock(&ctl.child);
            // checked under the child lock: a stop either sees this child or is seen here
            if ctl.stopping() {
                drop(slot);
                let _ = child.kill();
                let _ = child.wait();
                return;
            }
            *slot = Some(child);
        }
        let mut r = BufReader::with_capacity(1 << 16, out);
        let mut line = Vec::new();
        let mut engine_gone = false;
        loop {
            line.clear();
            match r.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let l = line.strip_suffix(b"\n").unwrap_or(&line);
                    let mut b = Batch::default();
                    b.push(&source, l);
                    if engine.send(Msg::Lines(b)).is_err() {
                        engine_gone = true;
                        break;
                    }
                }
            }
        }
        drop(r);
        if engine_gone {
            ctl.signal(libc::SIGTERM); // ends it cleanly, so it writes its cursor file
        }
        if let Some(c) = lock(&ctl.child).take() {
            reap(c);
        }
        if engine_gone || ctl.sleep(Duration::from_secs(2)) {
            return;
        }
    }
}

/// One running journal reader: its thread and what it shares with it.
struct JournalReader {
    ctl: Arc<ReaderCtl>,
    thread: JoinHandle<()>,
}

/// The journal readers of the daemon, one per `journal:` source; [`JournalReaders::reconcile`]
/// starts and stops them to match a (re)loaded configuration.
pub struct JournalReaders {
    cmd: JournalCommand,
    state_dir: PathBuf,
    engine: Sender<Msg>,
    running: BTreeMap<String, JournalReader>,
}

impl JournalReaders {
    /// No reader runs until [`JournalReaders::reconcile`]; cursor files go in `state_dir`.
    pub fn new(cmd: JournalCommand, state_dir: PathBuf, engine: Sender<Msg>) -> Self {
        JournalReaders {
            cmd,
            state_dir,
            engine,
            running: BTreeMap::new(),
        }
    }

    /// The sources being read, sorted.
    #[cfg(test)]
    pub fn sources(&self) -> Vec<&str> {
        self.running.keys().map(String::as_str).collect()
    }

    /// Starts readers for the `wanted` sources not read yet and stops those of the sources
    /// no longer wanted (their `journalctl` is terminated and reaped before this returns).
    /// Returns (started, stopped).
    pub fn reconcile(&mut self, wanted: &[String]) -> (Vec<String>, Vec<String>) {
        let (start, stop) = journal_changes(self.running.keys().map(String::as_str), wanted);
        self.stop(&stop);
        for src in &start {
            let ctl = Arc::new(ReaderCtl::default());
            let thread = {
                let (cmd, src, ctl) = (self.cmd.clone(), src.clone(), ctl.clone());
                let cursor = cursor_file(&self.state_dir, &src);
                let tx = self.engine.clone();
                std::thread::spawn(move || follow_journal(cmd, src, cursor, tx, ctl))
            };
            self.running
                .insert(src.clone(), JournalReader { ctl, thread });
        }
        (start, stop)
    }

    /// Stops every reader (at daemon stop, so `journalctl` can write its cursor file).
    pub fn stop_all(&mut self) {
        let all: Vec<String> = self.running.keys().cloned().collect();
        self.stop(&all);
    }

    /// Stops the readers of `sources`, all at once: SIGTERM, then SIGKILL for a
    /// `journalctl` still there after [`STOP_GRACE`]; each child is reaped by its thread,
    /// which is joined.
    fn stop(&mut self, sources: &[String]) {
        let readers: Vec<(String, JournalReader)> = sources
            .iter()
            .filter_map(|s| self.running.remove_entry(s))
            .collect();
        for (_, r) in &readers {
            *lock(&r.ctl.stopping) = true;
            r.ctl.wake.notify_all();
            r.ctl.signal(libc::SIGTERM);
        }
        let all_done = |deadline: Instant| loop {
            if readers.iter().all(|(_, r)| r.thread.is_finished()) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        // the grace, plus the thread's own grace in `reap` after the output ends
        if !all_done(Instant::now() + STOP_GRACE * 2) {
            for (_, r) in &readers {
                r.ctl.signal(libc::SIGKILL);
            }
            all_done(Instant::now() + STOP_GRACE * 2);
        }
        for (src, r) in readers {
            if r.thread.is_finished() {
                let _ = r.thread.join();
            } else {
                // a killed journalctl whose output is still held open by something else: the
                // thread reaps it and ends when that goes; nothing more can be done here
                let _ = self.engine.send(Msg::Note(format!(
                    "the journal reader of {src} did not stop in time; it ends when its output closes"
                )));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc::{self, Receiver};

    fn sh(script: &str) -> JournalCommand {
        JournalCommand {
            program: "sh".into(),
            args: vec!["-c".into(), script.into(), "fake-journalctl".into()],
        }
    }

    fn first_line(rx: &Receiver<Msg>) -> String {
        match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(Msg::Lines(b)) => String::from_utf8_lossy(b.iter().next().unwrap().1).into_owned(),
            Ok(Msg::Note(n)) => panic!("note instead of a line: {n}"),
            _ => panic!("no line"),
        }
    }

    #[test]
    fn a_journalctl_ignoring_sigterm_is_killed_and_reaped() {
        let dir = tempfile::tempdir().unwrap();
        let (tx, rx) = mpsc::channel();
        // ignored signals stay ignored across exec: the sleep shrugs SIGTERM off
        let mut r = JournalReaders::new(
            sh("trap '' TERM; echo $$; exec sleep 600"),
            dir.path().into(),
            tx,
        );
        let src = "journal:_COMM=stubborn".to_string();
        r.reconcile(std::slice::from_ref(&src));
        let pid: u32 = first_line(&rx).parse().unwrap();
        let t = Instant::now();
        assert_eq!(r.reconcile(&[]), (vec![], vec![src]));
        assert!(t.elapsed() < STOP_GRACE * 3, "{:?}", t.elapsed());
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "journalctl {pid} survived or was not reaped"
        );
    }

    #[test]
    fn a_reader_waiting_to_retry_stops_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let (tx, rx) = mpsc::channel();
        let cmd = JournalCommand {
            program: dir.path().join("no-such-journalctl").into(),
            args: vec![],
        };
        let mut r = JournalReaders::new(cmd, dir.path().into(), tx);
        r.reconcile(&["journal:_COMM=x".into()]);
        match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(Msg::Note(n)) => assert!(n.contains("cannot run journalctl"), "{n}"),
            _ => panic!("no note about the failed start"),
        }
        let t = Instant::now();
        r.stop_all();
        assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
    }
}

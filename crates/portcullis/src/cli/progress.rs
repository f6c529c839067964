//! A progress bar for `test` and `replay` on large inputs (issue 14, "Progress and terminal
//! output"): bytes and lines per second and the time left, on standard error, only when both
//! standard output and standard error are terminals and the output is not JSON. Piped output
//! and `--json` show nothing.
//!
//! The readers count what they read into two global counters ([`add_bytes`], [`add_lines`],
//! once per buffer, never per line); a drawing thread reads them a few times a second. Bytes
//! are counted as read from the files (compressed bytes for `.gz`), so the total is the sum
//! of the file sizes.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

static BYTES: AtomicU64 = AtomicU64::new(0);
static LINES: AtomicU64 = AtomicU64::new(0);
/// A bar is drawn: the readers count (else they skip even that).
static ACTIVE: AtomicBool = AtomicBool::new(false);

/// Whether the readers should count.
#[inline]
pub fn active() -> bool {
    ACTIVE.load(Ordering::Relaxed)
}

/// Inputs smaller than this finish before a bar is worth drawing.
const MIN_TOTAL: u64 = 32 << 20;

/// Counts bytes read from an input file.
#[inline]
pub fn add_bytes(n: u64) {
    BYTES.fetch_add(n, Ordering::Relaxed);
}

/// Counts lines handed to the matcher.
#[inline]
pub fn add_lines(n: u64) {
    LINES.fetch_add(n, Ordering::Relaxed);
}

/// Whether a bar would be drawn for `total` bytes with JSON output or not.
pub fn wanted(total: u64, json: bool) -> bool {
    !json
        && total >= MIN_TOTAL
        && std::io::stdout().is_terminal()
        && std::io::stderr().is_terminal()
        && std::env::var_os("PORTCULLIS_NO_PROGRESS").is_none()
}

/// The drawing thread; dropping it clears the bar.
pub struct Bar {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Bar {
    /// Starts a bar for `total` bytes when [`wanted`]; `None` otherwise.
    pub fn start(total: u64, json: bool) -> Option<Bar> {
        if !wanted(total, json) {
            return None;
        }
        BYTES.store(0, Ordering::Relaxed);
        LINES.store(0, Ordering::Relaxed);
        ACTIVE.store(true, Ordering::Relaxed);
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let thread = std::thread::spawn(move || {
            let pb = indicatif::ProgressBar::with_draw_target(
                Some(total),
                indicatif::ProgressDrawTarget::stderr_with_hz(4),
            );
            pb.set_style(
                indicatif::ProgressStyle::with_template(
                    "{bar:30} {bytes}/{total_bytes} {bytes_per_sec} {msg} eta {eta}",
                )
                .expect("valid template"),
            );
            let started = std::time::Instant::now();
            while !s.load(Ordering::Relaxed) {
                let lines = LINES.load(Ordering::Relaxed);
                let secs = started.elapsed().as_secs_f64().max(1e-3);
                pb.set_position(BYTES.load(Ordering::Relaxed).min(total));
                pb.set_message(format!("{} lines/s", (lines as f64 / secs) as u64));
                std::thread::sleep(Duration::from_millis(100));
            }
            pb.finish_and_clear();
        });
        Some(Bar {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        ACTIVE.store(false, Ordering::Relaxed);
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The total size of the input files (0 for standard input: no bar).
pub fn total_size<'a>(paths: impl IntoIterator<Item = &'a std::path::Path>) -> u64 {
    paths
        .into_iter()
        .filter(|p| p.as_os_str() != "-")
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum()
}

//! Log sources: log files ([`file`]: the rotation-safe follower and its thread, with
//! wildcard paths from [`glob`]), the systemd journal ([`journal`]: `journal:` sources and
//! their reader threads), what a line is for every reader ([`line`]) and the batches they
//! send to the engine ([`batch`]).

pub mod batch;
pub mod file;
pub mod glob;
pub mod journal;
pub mod line;

/// Locks `m`, also after a thread panicked while holding it (the data stays usable).
pub(crate) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

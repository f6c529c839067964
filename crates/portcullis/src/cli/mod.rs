//! Subcommands that work without a daemon: test, replay, check-config, filters, import, and
//! `bans`/`unban` on the state file while the daemon is stopped.

pub mod assets;
pub mod check_config;
pub mod client;
pub mod filters;
pub mod import_fail2ban;
pub mod input;
pub mod offline;
pub mod replay;
pub mod test;

use std::time::{SystemTime, UNIX_EPOCH};

use portcullis_core::time::TimeContext;

/// The current time and local UTC offset: the only clock read of the offline commands.
pub fn time_context() -> TimeContext {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    TimeContext {
        now,
        local_offset: local_offset(now / 1000),
    }
}

/// How many threads may match lines at once: the cores (at most `max`), or one when a
/// filter ties lines together (`correlate`): its lines must be read in order by one reader,
/// or the part holding a failure could lack the line naming its session.
pub fn match_threads(correlates: bool, max: usize) -> usize {
    if correlates {
        return 1;
    }
    std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, max.max(1))
}

pub use crate::sys::local_offset;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn correlating_filters_are_matched_on_one_thread() {
        assert_eq!(match_threads(true, 8), 1);
        let n = std::thread::available_parallelism().map_or(1, |n| n.get());
        assert_eq!(match_threads(false, 8), n.clamp(1, 8));
        assert_eq!(match_threads(false, 1), 1);
    }
}

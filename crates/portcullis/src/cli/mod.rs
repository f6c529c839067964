//! Subcommands that work without a daemon: test, replay, check-config, filters, import, and
//! `bans`/`unban` on the state file while the daemon is stopped.

pub mod assets;
pub mod check_config;
pub mod client;
pub mod filters;
pub mod import_fail2ban;
pub mod input;
pub mod offline;
pub mod progress;
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
        zone: None,
    }
}

/// How many threads may match lines at once: the cores, at most `max`. (A filter that ties
/// lines together by session is matched by session shards, see
/// [`portcullis_core::filter::session_shard`].)
pub fn match_threads(max: usize) -> usize {
    std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, max.max(1))
}

pub use crate::sys::local_offset;

/// [`time_context`] for reading logs after the fact (`test`, `replay`): a stamp without a
/// zone takes the local offset in force at its own time (the zone's changes over the last
/// ten years; a summer line read in winter was an hour off), not now's; an older stamp
/// takes the offset of ten years ago.
pub fn time_context_for_logs() -> TimeContext {
    let ctx = time_context();
    let now = ctx.now / 1000;
    let zone = crate::sys::zone_changes(now - 3653 * 86_400, now + 2 * 86_400);
    TimeContext {
        // (once per command: leaked, so that the context stays `Copy`)
        zone: (!zone.changes.is_empty()).then(|| &*Box::leak(Box::new(zone))),
        ..ctx
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn match_threads_is_the_cores_at_most_max() {
        let n = std::thread::available_parallelism().map_or(1, |n| n.get());
        assert_eq!(match_threads(8), n.clamp(1, 8));
        assert_eq!(match_threads(1), 1);
        assert_eq!(match_threads(0), 1);
    }
}

//! Subcommands that work without a daemon: test, replay, check-config, filters, import.

pub mod check_config;
pub mod client;
pub mod filters;
pub mod import_fail2ban;
pub mod input;
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

/// Local UTC offset in seconds at `secs` (from the C library's time zone rules).
pub fn local_offset(secs: i64) -> i32 {
    // SAFETY: localtime_r writes into the tm we pass; no shared state is kept.
    unsafe {
        let t = secs as libc::time_t;
        let mut tm: libc::tm = std::mem::zeroed();
        if libc::localtime_r(&t, &mut tm).is_null() {
            return 0;
        }
        tm.tm_gmtoff as i32
    }
}

//! The values that flow from filters to trackers to effects.

use std::net::IpAddr;

pub use crate::filter::Kind;

/// Milliseconds since the Unix epoch, UTC. All times in the core use this unit.
pub type Millis = i64;

/// One failure recognised by a filter in one log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The offending address, already validated and normalised
    /// (`::ffff:a.b.c.d` becomes IPv4, `%scope` removed).
    pub addr: IpAddr,
    /// When the event happened (from the log line, or the time it was read).
    pub time: Millis,
    /// Index of the filter (in its jail's set) whose rule matched.
    pub filter: usize,
    /// Index of the rule in its filter that matched.
    pub rule: usize,
    /// How much this failure counts towards `maxretry` (0 = seen but not counted).
    pub weight: u32,
    /// How the line relates to the other lines of its session (see [`Kind`]).
    pub kind: Kind,
    /// Session key of the line (the process id of the logging process), 0 when unknown.
    pub session: u32,
}

/// What a tracker decides. Effects carry decisions out; they never decide anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Ban `addr` from `at` until `until`.
    Ban {
        /// Address to ban.
        addr: IpAddr,
        /// When the ban starts.
        at: Millis,
        /// When the ban ends.
        until: Millis,
        /// Failures counted (sum of weights) that led to the ban.
        failures: u32,
    },
    /// Lift the ban of `addr` at `at` (its time ran out).
    Unban {
        /// Address to unban.
        addr: IpAddr,
        /// When the ban ended.
        at: Millis,
    },
}

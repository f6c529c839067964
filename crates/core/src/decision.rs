//! The values that flow from filters to trackers to effects.

use std::net::IpAddr;

pub use crate::filter::Kind;
use crate::ignore::Cidr;

/// Milliseconds since the Unix epoch, UTC. All times in the core use this unit.
pub type Millis = i64;

/// The end of a permanent ban: it never runs out (only a manual unban lifts it).
pub const FOREVER: Millis = Millis::MAX;

/// Why a ban was made (shown by `replay --json`, `bans --json` and kept in the store).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum BanReason {
    /// `maxretry` failures within `findtime`, a first offence (or no escalation configured).
    Failures,
    /// A repeat offence: lengthened by `bantime_increment`, or made permanent by
    /// `permanent_after`.
    Increment,
    /// `subnet_ban`: several bans inside one wider prefix.
    Subnet,
    /// Listed in `deny`.
    Deny,
    /// Banned by hand (`portcullis ban`).
    Manual,
    /// A fleet peer's ban, applied here: no offence here (its origin counts it), so neither
    /// escalation, subnet bans nor the `recidive` filter count it.
    Fleet,
    /// Taken back from the firewall at a start that found the state file lost or unusable:
    /// its cause, failures and earlier bans are not known.
    Restored,
}

impl BanReason {
    /// The word used in JSON output and in the store.
    pub fn as_str(self) -> &'static str {
        match self {
            BanReason::Failures => "failures",
            BanReason::Increment => "increment",
            BanReason::Subnet => "subnet",
            BanReason::Deny => "deny",
            BanReason::Manual => "manual",
            BanReason::Fleet => "fleet",
            BanReason::Restored => "restored",
        }
    }

    /// The reason named by [`BanReason::as_str`].
    pub fn parse(s: &str) -> Option<BanReason> {
        [
            BanReason::Failures,
            BanReason::Increment,
            BanReason::Subnet,
            BanReason::Deny,
            BanReason::Manual,
            BanReason::Fleet,
            BanReason::Restored,
        ]
        .into_iter()
        .find(|r| r.as_str() == s)
    }
}

impl std::fmt::Display for BanReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

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
    /// Ban `addr` from `at` until `until` ([`FOREVER`]: a permanent ban).
    Ban {
        /// Address or prefix to ban (a single address is a /32 or /128).
        addr: Cidr,
        /// When the ban starts.
        at: Millis,
        /// When the ban ends; [`FOREVER`] for a permanent ban.
        until: Millis,
        /// Failures counted (sum of weights) that led to the ban.
        failures: u32,
        /// Why.
        reason: BanReason,
    },
    /// Lift the ban of `addr` at `at` (its time ran out).
    Unban {
        /// Address or prefix to unban.
        addr: Cidr,
        /// When the ban ended.
        at: Millis,
    },
}

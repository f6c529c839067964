//! A jail: filters + never-ban list + tracker, fed one line at a time.
//!
//! This is the whole decision path, shared by `replay` and the daemon, so that a replay
//! decides exactly as the daemon will. It is pure: the caller passes the time.

use std::net::IpAddr;
use std::sync::Arc;

use crate::decision::{Decision, Failure, Millis};
use crate::filter::{Filter, MatchSet, Mode, Scratch};
use crate::ignore::{IgnoreList, Reason};
use crate::time::TimeContext;
use crate::track::{Tracker, TrackerConfig};

/// Everything a jail needs besides its filters.
#[derive(Debug, Clone)]
pub struct JailSettings {
    /// Jail name.
    pub name: String,
    /// Tracker thresholds.
    pub tracker: TrackerConfig,
    /// Which rule classes count.
    pub mode: Mode,
    /// Weights by user name (e.g. `root = 5`: one root attempt counts as five).
    pub user_weights: Vec<(Vec<u8>, u32)>,
    /// Weights by rule id of the jail's filters (e.g. `root-login = 5`), replacing the
    /// rule's own weight (0 turns a rule off); see [`crate::policy::weight`].
    pub rule_weights: Vec<(String, u32)>,
    /// Never-ban list (global + the jail's own + host addresses).
    pub ignore: IgnoreList,
    /// Ban lengths, escalation, subnet bans (see [`crate::policy`]).
    pub policy: crate::policy::JailPolicy,
}

/// What one line did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// The line matched no rule.
    NoMatch,
    /// The line matched, but the address must never be banned.
    Ignored {
        /// The address.
        addr: IpAddr,
        /// Why.
        reason: Reason,
    },
    /// A failure was recorded (possibly with weight 0), maybe leading to a ban.
    Failure {
        /// The failure as counted.
        failure: Failure,
        /// The ban it caused, if any.
        decision: Option<Decision>,
    },
}

/// A running jail.
#[derive(Debug)]
pub struct Jail {
    settings: JailSettings,
    set: Arc<MatchSet>,
    scratch: Scratch,
    tracker: Tracker,
    /// The last line committed was a container runtime's partial record.
    after_partial: bool,
}

impl Jail {
    /// Builds a jail from compiled filters.
    pub fn new(settings: JailSettings, filters: Vec<Filter>) -> Jail {
        let set = Arc::new(MatchSet::new(filters, settings.mode));
        let scratch = set.scratch();
        let tracker = Tracker::new(settings.tracker.clone());
        Jail {
            settings,
            set,
            scratch,
            tracker,
            after_partial: false,
        }
    }

    /// Replaces settings and filters, keeping windows and bans (configuration reload).
    pub fn reconfigure(&mut self, settings: JailSettings, filters: Vec<Filter>) {
        self.set = Arc::new(MatchSet::new(filters, settings.mode));
        self.scratch = self.set.scratch();
        self.tracker.set_config(settings.tracker.clone());
        self.settings = settings;
    }

    /// The jail's name.
    pub fn name(&self) -> &str {
        &self.settings.name
    }

    /// The jail's settings.
    pub fn settings(&self) -> &JailSettings {
        &self.settings
    }

    /// The jail's match set.
    pub fn match_set(&self) -> &MatchSet {
        &self.set
    }

    /// The tracker (bans, windows).
    pub fn tracker(&self) -> &Tracker {
        &self.tracker
    }

    /// The tracker, mutable (expiry, manual bans, restore).
    pub fn tracker_mut(&mut self) -> &mut Tracker {
        &mut self.tracker
    }

    /// Feeds one line. `now` is the clock for the ban start; `None` uses the line's own
    /// time (replay). A line without a time of its own takes `fallback`.
    pub fn process(
        &mut self,
        line: &[u8],
        ctx: &TimeContext,
        now: Option<Millis>,
        fallback: Millis,
    ) -> Step {
        let p = prepare(&self.set, &self.settings, line, ctx, &mut self.scratch);
        self.commit(p, now, fallback)
    }

    /// The matching half, shareable with other threads: [`prepare`] needs only these (and a
    /// scratch of its own from [`MatchSet::scratch`]), so lines can be matched in parallel and
    /// committed in order.
    pub fn shared(&self) -> (Arc<MatchSet>, JailSettings) {
        (self.set.clone(), self.settings.clone())
    }

    /// The counting half: records a prepared line in the tracker.
    pub fn commit(&mut self, p: Prepared, now: Option<Millis>, fallback: Millis) -> Step {
        if matches!(p, Prepared::PartialRecord) {
            self.after_partial = true;
            return Step::NoMatch;
        }
        if std::mem::take(&mut self.after_partial) {
            // the last part of a line a container runtime cut: never a line of its own
            return Step::NoMatch;
        }
        match p {
            Prepared::NoMatch | Prepared::PartialRecord => Step::NoMatch,
            Prepared::Ignored { addr, reason } => Step::Ignored { addr, reason },
            Prepared::Failure { failure, time } => {
                // The line's own time drives the window; in the daemon (`now` given) a line
                // whose clock is off by more than findtime (wrong zone, old line) counts at `now`.
                let time = match (time, now) {
                    (Some(t), Some(n)) if (t - n).abs() > self.settings.tracker.findtime => n,
                    (Some(t), _) => t,
                    (None, _) => fallback,
                };
                let failure = Failure { time, ..failure };
                let decision = self.tracker.record(&failure, now.unwrap_or(failure.time));
                Step::Failure { failure, decision }
            }
        }
    }
}

/// A line matched but not yet counted (see [`Jail::commit`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Prepared {
    /// No rule matched.
    NoMatch,
    /// A container runtime's record of part of a longer line (see
    /// [`crate::prefix::is_partial_record`]): not read, and the record that ends that line
    /// is not read either (it starts wherever the runtime's cut fell, maybe in client text).
    PartialRecord,
    /// Matched, but the address is never banned.
    Ignored {
        /// The address.
        addr: IpAddr,
        /// Why.
        reason: Reason,
    },
    /// A failure; its `time` is filled in by [`Jail::commit`].
    Failure {
        /// The failure (its `time` field is a placeholder).
        failure: Failure,
        /// The line's own time, if it has one.
        time: Option<Millis>,
    },
}

/// Matches one line against a jail's filters and settings: everything of [`Jail::process`]
/// that does not touch the tracker. Pure; `scratch` is per reader.
pub fn prepare(
    set: &MatchSet,
    settings: &JailSettings,
    line: &[u8],
    ctx: &TimeContext,
    scratch: &mut Scratch,
) -> Prepared {
    if crate::prefix::is_partial_record(line) {
        return Prepared::PartialRecord;
    }
    let Some(hit) = set.match_line(line, ctx, scratch) else {
        return Prepared::NoMatch;
    };
    if let Some(reason) = settings.ignore.check(hit.addr) {
        return Prepared::Ignored {
            addr: hit.addr,
            reason,
        };
    }
    let rule = &set.filters()[hit.filter].rules()[hit.rule];
    let weight = crate::policy::weight(
        rule.weight,
        &rule.id,
        hit.user,
        &settings.rule_weights,
        &settings.user_weights,
    );
    Prepared::Failure {
        failure: Failure {
            addr: hit.addr,
            time: 0,
            rule: hit.rule,
            weight,
            kind: rule.kind,
            session: hit.pid,
        },
        time: hit.time,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filter::builtin;

    fn sshd_jail(maxretry: u32, weights: Vec<(Vec<u8>, u32)>) -> Jail {
        let f = Filter::from_toml(builtin::get("sshd").unwrap().source, "sshd").unwrap();
        let settings = JailSettings {
            name: "sshd".into(),
            tracker: TrackerConfig {
                maxretry,
                findtime: 600_000,
                bantime: 600_000,
                max_tracked: 1000,
                ..TrackerConfig::default()
            },
            mode: Mode::Normal,
            user_weights: weights,
            rule_weights: vec![],
            ignore: IgnoreList::new(
                vec![crate::ignore::Cidr::parse("192.0.2.0/24").unwrap()],
                vec![],
            ),
            policy: Default::default(),
        };
        Jail::new(settings, vec![f])
    }

    const CTX: TimeContext = TimeContext {
        now: 1_795_000_000_000,
        local_offset: 0,
    };

    fn bans(j: &mut Jail, lines: &[&str]) -> Vec<String> {
        let mut out = Vec::new();
        for l in lines {
            if let Step::Failure {
                decision: Some(Decision::Ban { addr, failures, .. }),
                ..
            } = j.process(l.as_bytes(), &CTX, None, 0)
            {
                out.push(format!("{addr} {failures}"));
            }
        }
        out
    }

    #[test]
    fn one_wrong_password_logged_twice_counts_once() {
        let mut j = sshd_jail(2, vec![]);
        let b = bans(
            &mut j,
            &[
                "Nov 21 10:00:01 h sshd[10]: Failed password for alice from 203.0.113.5 port 5000 ssh2",
                "Nov 21 10:00:01 h sshd[10]: Connection closed by authenticating user alice 203.0.113.5 port 5000 [preauth]",
            ],
        );
        assert!(b.is_empty(), "{b:?}");
        let b = bans(&mut j, &["Nov 21 10:00:05 h sshd[11]: Failed password for alice from 203.0.113.5 port 5001 ssh2"]);
        assert_eq!(b, vec!["203.0.113.5 2"]);
    }

    #[test]
    fn invalid_user_and_its_failure_count_once() {
        let mut j = sshd_jail(2, vec![]);
        let b = bans(
            &mut j,
            &[
                "Nov 21 10:00:01 h sshd[10]: Invalid user bob from 203.0.113.6 port 5000",
                "Nov 21 10:00:01 h sshd[10]: Failed password for invalid user bob from 203.0.113.6 port 5000 ssh2",
                "Nov 21 10:00:02 h sshd[10]: Connection closed by invalid user bob 203.0.113.6 port 5000 [preauth]",
            ],
        );
        assert!(b.is_empty(), "{b:?}");
    }

    #[test]
    fn root_weight_bans_at_once_and_ignore_list_holds() {
        let mut j = sshd_jail(5, vec![(b"root".to_vec(), 5)]);
        let b = bans(&mut j, &["Nov 21 10:00:01 h sshd[10]: Failed password for root from 203.0.113.7 port 5000 ssh2"]);
        assert_eq!(b, vec!["203.0.113.7 5"]);
        for i in 0..100 {
            let l = format!("Nov 21 10:00:01 h sshd[{i}]: Failed password for root from 192.0.2.9 port 5000 ssh2");
            assert!(matches!(
                j.process(l.as_bytes(), &CTX, None, 0),
                Step::Ignored { .. }
            ));
        }
        assert!(!j.tracker().is_banned("192.0.2.9".parse().unwrap()));
    }

    #[test]
    fn scans_do_not_count_in_normal_mode() {
        let mut j = sshd_jail(1, vec![]);
        let l = "Nov 21 10:00:01 h sshd[10]: Did not receive identification string from 203.0.113.8 port 5000";
        assert_eq!(j.process(l.as_bytes(), &CTX, None, 0), Step::NoMatch);
    }

    /// A line a container runtime cut (16 KiB) continues in the next record, which starts
    /// wherever the cut fell, maybe inside a client's text: that record must not be read as
    /// a line of its own (it could carry a forged prefix and message).
    #[test]
    fn the_rest_of_a_cut_container_line_is_never_read_as_a_line() {
        let mut j = sshd_jail(1, vec![]);
        let ctx = TimeContext {
            now: 1_795_000_000_000,
            local_offset: 0,
        };
        let forged = "Failed password for root from 198.51.100.7 port 22 ssh2";
        let lines = [
            // a CRI partial record, then the record that ends the line
            "2026-11-21T10:00:01.000000000Z stderr P x".to_string(),
            format!("2026-11-21T10:00:01.000000001Z stderr F {forged}"),
            // Docker json-file: no closing \n, then the rest
            r#"{"log":"x","stream":"stderr","time":"2026-11-21T10:00:02Z"}"#.to_string(),
            format!(r#"{{"log":"{forged}\n","stream":"stderr","time":"2026-11-21T10:00:02Z"}}"#),
        ];
        for l in &lines {
            let step = j.process(l.as_bytes(), &ctx, None, 0);
            assert!(matches!(step, Step::NoMatch), "{l}: {step:?}");
        }
        // a whole record is read
        let whole = format!("2026-11-21T10:00:03Z stderr F {forged}");
        assert!(matches!(
            j.process(whole.as_bytes(), &ctx, None, 0),
            Step::Failure { .. }
        ));
    }
}

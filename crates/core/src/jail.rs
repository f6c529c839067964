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
    /// The longest message of the logs' syslog transport, in bytes (0: none); see
    /// [`crate::filter::cut`].
    pub transport_cut: usize,
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
    /// The line is a failure, but in the daemon its own time is older than any clock or
    /// zone error explains ([`STALE_AFTER`] plus findtime before `now`): an old file that
    /// appeared, a backlog read after a long stop. Not counted.
    Stale {
        /// The address.
        addr: IpAddr,
        /// The line's own time.
        time: Millis,
    },
    /// A failure was recorded (possibly with weight 0), maybe leading to a ban.
    Failure {
        /// The failure as counted.
        failure: Failure,
        /// The ban it caused, if any.
        decision: Option<Decision>,
        /// Which filter matched and the user name it captured (for statistics).
        hit: HitInfo,
    },
}

/// What a failure's line carried besides the address: which filter of the jail matched
/// (its rule is [`Failure::rule`]) and the user name, if the rule captures one.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HitInfo {
    /// Index of the filter in the jail's match set.
    pub filter: usize,
    /// The user name tried (raw bytes from the log: attacker-controlled).
    pub user: Option<UserName>,
}

/// A user name from a log line: the usual short name inline, so that a matched line
/// allocates nothing (`replay` and `test` match in one thread and count in another, and a
/// heap name cost an allocation there and a free here, for every failure).
pub type UserName = smallvec::SmallVec<[u8; 16]>;

/// How much older than `now` (beyond findtime) a line's own time may be and still count in
/// the daemon: two days, more than any zone error (UTC-12 to UTC+14) and any syslog
/// year-less stamp's ambiguity explain. An older failure is [`Step::Stale`].
pub const STALE_AFTER: Millis = 2 * 86_400_000;

/// A running jail.
#[derive(Debug)]
pub struct Jail {
    settings: JailSettings,
    set: Arc<MatchSet>,
    scratch: Scratch,
    tracker: Tracker,
    /// The (source, stream) whose last record committed was a container runtime's
    /// partial record: the next record of that stream continues its line. (One flag for the
    /// jail dropped the next line of any file or stream, and let the continuation be read
    /// as a line of its own, a review found.)
    after_partial: Vec<(u64, u8)>,
    /// Per source ([`LineAt::source`]): the last line committed and the failure it counted,
    /// which a syslog daemon's `last message repeated N times` after it counts again.
    tails: Tails,
}

/// [`Jail::tails`]: looked up twice for every committed line, by a number the caller
/// chose (never a remote party), so hashed with FNV rather than the keyed SipHash (that
/// was about a seventh of `replay`'s committing thread on the stress file).
type Tails = std::collections::HashMap<u64, Tail, std::hash::BuildHasherDefault<crate::bytes::Fnv>>;

/// Where a line sits: its source (a log file; any number the caller keeps per file) and
/// its number there. Consecutive numbers of one source are consecutive lines of that file,
/// whether or not the lines between were committed (a caller that commits only the lines
/// that matched passes their numbers: a gap is a line that matched nothing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineAt {
    /// The source.
    pub source: u64,
    /// The line's number in it.
    pub seq: u64,
    /// The stream of a container runtime's record ([`crate::prefix::container_record`]:
    /// `STDOUT`, `STDERR`, `UNSAID`), 0 for any other line.
    pub stream: u8,
}

/// The last line committed from a source.
#[derive(Debug)]
struct Tail {
    seq: u64,
    /// The failure it counted (weight > 0), and its filter and user.
    failure: Option<(Failure, HitInfo)>,
}

impl Jail {
    /// Builds a jail from compiled filters.
    pub fn new(settings: JailSettings, filters: Vec<Filter>) -> Jail {
        let set = Arc::new(
            MatchSet::new(filters, settings.mode).with_transport_cut(settings.transport_cut),
        );
        let scratch = set.scratch();
        let tracker = Tracker::new(settings.tracker.clone());
        Jail {
            settings,
            set,
            scratch,
            tracker,
            after_partial: Vec::new(),
            tails: Tails::default(),
        }
    }

    /// Replaces settings and filters, keeping windows and bans (configuration reload).
    /// Returns the windows dropped by a longer prefix ([`Tracker::set_config`]).
    pub fn reconfigure(&mut self, settings: JailSettings, filters: Vec<Filter>) -> usize {
        self.set = Arc::new(
            MatchSet::new(filters, settings.mode).with_transport_cut(settings.transport_cut),
        );
        self.scratch = self.set.scratch();
        let dropped = self.tracker.set_config(settings.tracker.clone());
        self.settings = settings;
        dropped
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

    /// Matches refused so far on syslog lines long enough to have been cut (see
    /// [`crate::filter::cut`]), since the jail was built or last reconfigured.
    pub fn cut_refused(&self) -> u64 {
        self.scratch.cut_refused()
    }

    /// Matches refused so far on lines that may be pieces of a message their program split
    /// (a filter's `split_at`), since the jail was built or last reconfigured.
    pub fn split_refused(&self) -> u64 {
        self.scratch.split_refused()
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
    /// time (replay). A line without a time of its own takes `fallback`. The lines fed so are
    /// the lines of one source, in order (see [`Jail::process_from`]).
    pub fn process(
        &mut self,
        line: &[u8],
        ctx: &TimeContext,
        now: Option<Millis>,
        fallback: Millis,
    ) -> Step {
        self.process_from(0, line, ctx, now, fallback)
    }

    /// [`Jail::process`] for the next line of `source` (a number the caller keeps per log
    /// file): a syslog daemon's `last message repeated N times` counts the line before it
    /// in the same file.
    pub fn process_from(
        &mut self,
        source: u64,
        line: &[u8],
        ctx: &TimeContext,
        now: Option<Millis>,
        fallback: Millis,
    ) -> Step {
        let record = crate::prefix::container_record(line);
        let p = if record.is_some_and(|(_, partial)| partial) {
            Prepared::PartialRecord
        } else {
            prepare_parsed(
                &self.set,
                &self.settings,
                &crate::prefix::parse(line),
                ctx,
                &mut self.scratch,
            )
        };
        let mut at = self.next_line(source);
        at.stream = record.map_or(0, |(stream, _)| stream);
        self.commit_at(at, p, now, fallback)
    }

    /// The place of the next line of `source` after the last one committed.
    fn next_line(&self, source: u64) -> LineAt {
        LineAt {
            source,
            seq: self.tails.get(&source).map_or(0, |t| t.seq.wrapping_add(1)),
            stream: 0,
        }
    }

    /// The matching half, shareable with other threads: [`prepare`] needs only these (and a
    /// scratch of its own from [`MatchSet::scratch`]), so lines can be matched in parallel and
    /// committed in order.
    pub fn shared(&self) -> (Arc<MatchSet>, JailSettings) {
        (self.set.clone(), self.settings.clone())
    }

    /// The counting half: records a prepared line in the tracker, as the next line of
    /// source 0 (see [`Jail::commit_at`]).
    pub fn commit(&mut self, p: Prepared, now: Option<Millis>, fallback: Millis) -> Step {
        let at = self.next_line(0);
        self.commit_at(at, p, now, fallback)
    }

    /// The counting half for the line `at`: records a prepared line in the tracker. A
    /// [`Prepared::Repeat`] counts the failure of the line just before it in its source
    /// (`at.seq - 1`) again, N times its weight at its own time, when that line was a
    /// failure the jail counted; after any other line (no match, an ignored address, a
    /// held line, a line never committed) it counts nothing.
    pub fn commit_at(
        &mut self,
        at: LineAt,
        p: Prepared,
        now: Option<Millis>,
        fallback: Millis,
    ) -> Step {
        let tail = self.tails.entry(at.source).or_insert(Tail {
            seq: u64::MAX,
            failure: None,
        });
        let prev = if tail.seq.wrapping_add(1) == at.seq {
            tail.failure.take()
        } else {
            None
        };
        tail.seq = at.seq;
        // a container runtime's partial record, and the record of its stream that ends the
        // line it began: neither is read (the latter starts wherever the runtime's cut fell,
        // maybe in client text)
        let p = if at.stream == 0 {
            p
        } else {
            let key = (at.source, at.stream);
            let held = self.after_partial.iter().position(|k| *k == key);
            match (&p, held) {
                (Prepared::PartialRecord, None) => {
                    self.after_partial.push(key);
                    p
                }
                (Prepared::PartialRecord, Some(_)) => p,
                (_, Some(i)) => {
                    self.after_partial.swap_remove(i);
                    Prepared::PartialRecord
                }
                (_, None) => p,
            }
        };
        let (step, counted) = self.commit_line(p, prev, now, fallback);
        if let Some(t) = self.tails.get_mut(&at.source) {
            t.failure = counted;
        }
        step
    }

    /// [`Jail::commit_at`] without the source's bookkeeping: the step, and the failure a
    /// repeat line after this one would count again.
    fn commit_line(
        &mut self,
        p: Prepared,
        prev: Option<(Failure, HitInfo)>,
        now: Option<Millis>,
        fallback: Millis,
    ) -> (Step, Option<(Failure, HitInfo)>) {
        if matches!(p, Prepared::PartialRecord) {
            return (Step::NoMatch, None);
        }
        // The line's own time drives the window; in the daemon (`now` given) a line whose
        // clock is off by more than findtime (wrong zone, late delivery) counts at `now`, and
        // one older than any such error (STALE_AFTER more) is not counted at all.
        let findtime = self.settings.tracker.findtime;
        // the line's own time, when it is stale
        let stale = |time: Option<Millis>| {
            let n = now?;
            time.filter(|&t| n.saturating_sub(t) > STALE_AFTER.saturating_add(findtime))
        };
        let when = |time: Option<Millis>| match (time, now) {
            (Some(t), Some(n)) if (t - n).abs() > findtime => n,
            (Some(t), _) => t,
            (None, _) => fallback,
        };
        match p {
            Prepared::NoMatch | Prepared::PartialRecord => (Step::NoMatch, None),
            Prepared::Ignored { addr, reason } => (Step::Ignored { addr, reason }, None),
            Prepared::Failure { failure, time, hit } => {
                if let Some(time) = stale(time) {
                    let addr = failure.addr;
                    return (Step::Stale { addr, time }, None);
                }
                let failure = Failure {
                    time: when(time),
                    ..failure
                };
                let decision = self.tracker.record(&failure, now.unwrap_or(failure.time));
                let counted = (failure.weight > 0).then(|| (failure.clone(), hit.clone()));
                (
                    Step::Failure {
                        failure,
                        decision,
                        hit,
                    },
                    counted,
                )
            }
            Prepared::Repeat { n, time } => {
                let Some((f, hit)) = prev else {
                    return (Step::NoMatch, None);
                };
                if let Some(time) = stale(time) {
                    let addr = f.addr;
                    return (Step::Stale { addr, time }, Some((f, hit)));
                }
                let failure = Failure {
                    time: when(time),
                    weight: f.weight.saturating_mul(n),
                    ..f
                };
                let decision = self.tracker.record(&failure, now.unwrap_or(failure.time));
                // (a further repeat line counts the same line again)
                let step = Step::Failure {
                    failure,
                    decision,
                    hit: hit.clone(),
                };
                (step, Some((f, hit)))
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
    /// A syslog daemon's `last message repeated N times` ([`crate::prefix::syslogd_repeat`]):
    /// the line before it in the same file occurred `n` more times ([`Jail::commit_at`]).
    Repeat {
        /// How many more times.
        n: u32,
        /// The line's own time, if it has one.
        time: Option<Millis>,
    },
    /// A failure; its `time` is filled in by [`Jail::commit`].
    Failure {
        /// The failure (its `time` field is a placeholder).
        failure: Failure,
        /// The line's own time, if it has one.
        time: Option<Millis>,
        /// Filter and user name (see [`HitInfo`]).
        hit: HitInfo,
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
    prepare_parsed(set, settings, &crate::prefix::parse(line), ctx, scratch)
}

/// [`prepare`] for a line already split by [`crate::prefix::parse`] (and known not to be a
/// container runtime's partial record): one split serves every jail.
pub fn prepare_parsed(
    set: &MatchSet,
    settings: &JailSettings,
    parsed: &crate::prefix::Parsed<'_>,
    ctx: &TimeContext,
    scratch: &mut Scratch,
) -> Prepared {
    let Some(hit) = set.match_parsed(parsed, ctx, scratch) else {
        return repeat(parsed, ctx);
    };
    if let Some(reason) = settings.ignore.check(hit.addr) {
        return Prepared::Ignored {
            addr: hit.addr,
            reason,
        };
    }
    let rule = &set.filters()[hit.filter].rules()[hit.rule];
    let (weight, kind) = hit_weight(&hit, rule, &settings.rule_weights, &settings.user_weights);
    Prepared::Failure {
        failure: Failure {
            addr: hit.addr,
            time: 0,
            filter: hit.filter,
            rule: hit.rule,
            weight,
            kind,
            session: hit.pid,
        },
        time: hit.time,
        hit: HitInfo {
            filter: hit.filter,
            user: hit.user.map(UserName::from_slice),
        },
    }
}

/// A line that matched no rule: a syslog daemon's `last message repeated N times`
/// ([`Prepared::Repeat`]), or nothing.
#[inline]
fn repeat(parsed: &crate::prefix::Parsed<'_>, ctx: &TimeContext) -> Prepared {
    // (a program's own line is never one, and the usual line stops at this test)
    if parsed.program.is_some_and(|g| g != b"syslogd") {
        return Prepared::NoMatch;
    }
    match crate::prefix::syslogd_repeat(parsed) {
        Some(r) => Prepared::Repeat {
            n: r.n,
            time: r.stamp.map(|s| s.to_millis(ctx)),
        },
        None => Prepared::NoMatch,
    }
}

/// How much a hit counts, and as what kind: a held line (`pending`, `prelude`) counts 0;
/// a line that releases its session's held failures counts them (a follow-up's own count is
/// what it summarises, so it is replaced by them), as an attempt, which the tracker never
/// takes for a repeat of its session (as a follow-up when they are follow-ups themselves).
pub fn hit_weight(
    hit: &crate::filter::Hit<'_>,
    rule: &crate::filter::Rule,
    rule_weights: &[(String, u32)],
    user_weights: &[(Vec<u8>, u32)],
) -> (u32, crate::filter::Kind) {
    use crate::filter::Kind;
    if hit.pending || rule.kind == Kind::Connect {
        return (0, rule.kind);
    }
    // the rule's weight (`rule_weights` over the filter's), and the larger of it and the
    // user's (`user_weights`)
    let weight = crate::policy::weight(rule.weight, &rule.id, hit.user, rule_weights, user_weights)
        .saturating_mul(hit.repeat);
    if hit.released == 0 {
        return (if hit.own { weight } else { 0 }, rule.kind);
    }
    let own = if hit.own && rule.kind != Kind::Followup {
        weight
    } else {
        0
    };
    // (follow-ups that waited for the connection's address stay follow-ups)
    let kind = if hit.summary {
        Kind::Followup
    } else {
        Kind::Attempt
    };
    (own.saturating_add(hit.released), kind)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filter::builtin;

    fn sshd_jail(maxretry: u32, weights: Vec<(Vec<u8>, u32)>) -> Jail {
        builtin_jail("sshd", Mode::Normal, maxretry, weights)
    }

    fn builtin_jail(name: &str, mode: Mode, maxretry: u32, weights: Vec<(Vec<u8>, u32)>) -> Jail {
        let f = Filter::from_toml(builtin::get(name).unwrap().source, name).unwrap();
        let settings = JailSettings {
            name: name.into(),
            tracker: TrackerConfig {
                maxretry,
                findtime: 600_000,
                bantime: 600_000,
                max_tracked: 1000,
                ..TrackerConfig::default()
            },
            mode,
            transport_cut: crate::filter::cut::DEFAULT_TRANSPORT_CUT,
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
        zone: None,
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

    /// In the daemon (`now` given), a failure whose own time is more than findtime off counts
    /// at `now` (a wrong zone, a late line); one older than STALE_AFTER + findtime (an old
    /// file that appeared, a backlog after a long stop) is not counted at all, nor a syslog
    /// repeat of it. `replay` (no `now`) counts every line at its own time.
    #[test]
    fn daemon_counts_late_lines_at_now_and_not_stale_ones() {
        // CTX.now is 2026-11-18T11:06:40Z; STALE_AFTER + findtime before it: 2026-11-16T10:56:40Z
        let line = |stamp: &str, pid: u32| {
            format!(
                "{stamp} h sshd[{pid}]: Failed password for alice from 203.0.113.5 port 5000 ssh2"
            )
        };
        let step = |j: &mut Jail, l: &str| j.process(l.as_bytes(), &CTX, Some(CTX.now), 0);
        let mut j = sshd_jail(2, vec![]);
        let stale = line("2026-11-16T10:56:39Z", 10);
        assert!(
            matches!(step(&mut j, &stale), Step::Stale { time, .. } if time == CTX.now - STALE_AFTER - 600_000 - 1_000),
            "{stale}"
        );
        let repeat = "2026-11-16T10:56:39Z h sshd[10]: message repeated 3 times: [ Failed password for alice from 203.0.113.5 port 5000 ssh2]";
        assert!(
            !matches!(step(&mut j, repeat), Step::Failure { .. }),
            "{repeat}"
        );
        // nothing was counted: the next failure is the first
        let late = line("2026-11-16T10:56:41Z", 11);
        match step(&mut j, &late) {
            Step::Failure {
                failure, decision, ..
            } => {
                assert_eq!(failure.time, CTX.now, "a late line counts at now");
                assert_eq!(decision, None, "{late}: the stale lines counted");
            }
            other => panic!("{late}: {other:?}"),
        }
        let fresh = line("2026-11-18T11:06:00Z", 12);
        assert!(
            matches!(
                step(&mut j, &fresh),
                Step::Failure {
                    decision: Some(_),
                    ..
                }
            ),
            "{fresh}"
        );
        // a year-less stamp 26 hours ahead (written at UTC+14, read at UTC-12) is a zone
        // error, not last year's line: it counts at now, never stale
        let ahead = line("Nov 19 13:06:00", 13);
        let mut z = sshd_jail(2, vec![]);
        match step(&mut z, &ahead) {
            Step::Failure { failure, .. } => assert_eq!(failure.time, CTX.now, "{ahead}"),
            other => panic!("{ahead}: {other:?}"),
        }
        // replay: the stale line counts at its own time
        let mut r = sshd_jail(2, vec![]);
        match r.process(stale.as_bytes(), &CTX, None, 0) {
            Step::Failure { failure, .. } => {
                assert_eq!(failure.time, CTX.now - STALE_AFTER - 601_000)
            }
            other => panic!("replay {stale}: {other:?}"),
        }
        // (the repeat line is read as one: in replay it counts the line before it again)
        match r.process(repeat.as_bytes(), &CTX, None, 0) {
            Step::Failure { failure, .. } => assert_eq!(failure.weight, 3, "{repeat}"),
            other => panic!("replay {repeat}: {other:?}"),
        }
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

    /// rsyslog's `message repeated N times: [ MSG]` stands for N more failures: each counts
    /// (Ubuntu's rsyslog folds a bot's identical retries of one connection so), and the pid's
    /// session still knows the address for the old "Too many authentication failures" line.
    /// LemonLDAP::NG (a FastCGI worker serves logins one after another): under Combination
    /// a wrong password writes the LDAP bind's "Bad password" and then "All schemes failed"
    /// (rule all-schemes, kind closing, keyed by the user): one login counts once, and
    /// every later login through the same worker counts again.
    #[test]
    fn lemonldap_combination_counts_each_failed_login_once() {
        // (index of the line that banned, what it said)
        let ban_at = |maxretry: u32, lines: &[&str]| -> Vec<(usize, String)> {
            let mut j = builtin_jail("lemonldap-ng", Mode::Normal, maxretry, vec![]);
            let mut out = Vec::new();
            for (i, l) in lines.iter().enumerate() {
                if let Step::Failure {
                    decision: Some(Decision::Ban { addr, failures, .. }),
                    ..
                } = j.process(l.as_bytes(), &CTX, None, 0)
                {
                    out.push((i, format!("{addr} {failures}")));
                }
            }
            out
        };
        let lines = [
            // Combination: a wrong password twice through worker 203 (1, 2)
            "Dec  4 23:31:41 vm LLNG[203]: [warn] Bad password for dwho (203.0.113.6)",
            "Dec  4 23:31:41 vm LLNG[203]: [notice] Combination (Lemonldap::NG::Portal::Auth::Demo): Bad password for dwho",
            "Dec  4 23:31:41 vm LLNG[203]: [warn] All schemes failed for user dwho (203.0.113.6)",
            "Dec  4 23:31:42 vm LLNG[203]: [warn] Bad password for dwho (203.0.113.6)",
            "Dec  4 23:31:42 vm LLNG[203]: [notice] Combination (Lemonldap::NG::Portal::Auth::Demo): Bad password for dwho",
            "Dec  4 23:31:42 vm LLNG[203]: [warn] All schemes failed for user dwho (203.0.113.6)",
            // an unknown user twice (3, 4)
            "Dec  4 23:31:43 vm LLNG[203]: [notice] Combination (Lemonldap::NG::Portal::Lib::LDAP): nobody was not found in LDAP directory (203.0.113.6)",
            "Dec  4 23:31:43 vm LLNG[203]: [warn] All schemes failed for user nobody (203.0.113.6)",
            "Dec  4 23:31:44 vm LLNG[203]: [warn] All schemes failed for user nobody (203.0.113.6)",
            // the same user's wrong password again, after the unknown ones (5)
            "Dec  4 23:31:45 vm LLNG[203]: [warn] Bad password for dwho (203.0.113.6)",
            "Dec  4 23:31:45 vm LLNG[203]: [warn] All schemes failed for user dwho (203.0.113.6)",
            // plain LDAP (no closing line): each wrong password counts (6, 7)
            "Dec  4 23:31:46 vm LLNG[60]: [warn] Bad password for msmith (203.0.113.6)",
            "Dec  4 23:31:47 vm LLNG[60]: [warn] Bad password for msmith (203.0.113.6)",
            // a closing line of another worker or of another user: another login (8, 9)
            "Dec  4 23:31:48 vm LLNG[204]: [warn] All schemes failed for user msmith (203.0.113.6)",
            "Dec  4 23:31:48 vm LLNG[60]: [warn] All schemes failed for user rtyler (203.0.113.6)",
            // lines without a pid: the session is the user alone (10, then 11)
            "Dec  4 23:31:49 vm LLNG: [warn] Bad password for dwho (203.0.113.6)",
            "Dec  4 23:31:49 vm LLNG: [warn] All schemes failed for user dwho (203.0.113.6)",
            "Dec  4 23:31:50 vm LLNG: [warn] All schemes failed for user dwho (203.0.113.6)",
        ];
        let last = lines.len() - 1;
        assert_eq!(
            ban_at(11, &lines),
            vec![(last, "203.0.113.6 11".to_string())]
        );
        assert_eq!(
            ban_at(10, &lines),
            vec![(last - 2, "203.0.113.6 10".to_string())]
        );
        // a closing line never counts for another address than its own
        assert_eq!(
            ban_at(
                2,
                &[
                    "Dec  4 23:31:41 vm LLNG[203]: [warn] Bad password for dwho (203.0.113.7)",
                    "Dec  4 23:31:41 vm LLNG[203]: [warn] All schemes failed for user dwho (203.0.113.8)",
                    "Dec  4 23:31:42 vm LLNG[203]: [warn] All schemes failed for user dwho (203.0.113.7)",
                    "Dec  4 23:31:42 vm LLNG[203]: [warn] All schemes failed for user dwho (203.0.113.7)",
                ],
            ),
            vec![(3, "203.0.113.7 2".to_string())]
        );
    }

    #[test]
    fn rsyslog_repeated_failures_count_n_times() {
        let mut j = sshd_jail(6, vec![]);
        let b = bans(
            &mut j,
            &[
                "Dec 10 07:13:50 h sshd[24227]: Failed password for root from 203.0.113.9 port 42393 ssh2",
                "Dec 10 07:13:56 h sshd[24227]: message repeated 4 times: [ Failed password for root from 203.0.113.9 port 42393 ssh2]",
            ],
        );
        assert!(b.is_empty(), "5 failures, maxretry 6: {b:?}");
        let b = bans(
            &mut j,
            &["Dec 10 07:14:56 h sshd[24230]: message repeated 2 times: [ Failed password for root from 203.0.113.9 port 42400 ssh2]"],
        );
        assert_eq!(b, vec!["203.0.113.9 7"]);
        // held lines hold N: two publickey failures folded into one line, then the session
        // ends without success
        let w = weights(
            &mut sshd_jail(100, vec![]),
            &[
                "Dec 10 08:00:00 h sshd[30]: message repeated 2 times: [ Failed publickey for bob from 203.0.113.10 port 4000 ssh2: ED25519 SHA256:abc]",
                "Dec 10 08:00:01 h sshd[30]: Connection closed by authenticating user bob 203.0.113.10 port 4000 [preauth]",
            ],
        );
        assert_eq!(w, vec![0, 2]);
    }

    /// A BSD syslogd's `last message repeated N times` counts the line before it N more
    /// times: a bot's six password attempts on one connection, written once and then
    /// folded, count six and ban at maxretry 6.
    #[test]
    fn syslogd_repeated_line_counts_the_previous_failure() {
        let fail = "Dec 10 07:13:50 bsd1 sshd[24227]: Failed password for root from 203.0.113.9 port 42393 ssh2";
        let mut j = sshd_jail(6, vec![]);
        let b = bans(
            &mut j,
            &[fail, "Dec 10 07:13:56 bsd1 last message repeated 4 times"],
        );
        assert!(b.is_empty(), "5 failures, maxretry 6: {b:?}");
        let mut j = sshd_jail(6, vec![]);
        let b = bans(
            &mut j,
            &[fail, "Dec 10 07:13:56 bsd1 last message repeated 5 times"],
        );
        assert_eq!(b, vec!["203.0.113.9 6"]);
        // the weight is N times the line's, at the repeat line's time; a second repeat
        // line (syslogd flushes the count every 30 s, 2 min, 10 min) counts the same line
        let mut j = sshd_jail(100, vec![]);
        let steps: Vec<Step> = [
            fail,
            "Dec 10 07:14:20 bsd1 syslogd: last message repeated 3 times",
            "Dec 10 07:16:20 bsd1 syslogd: last message repeated 2 times",
        ]
        .iter()
        .map(|l| j.process(l.as_bytes(), &CTX, None, 0))
        .collect();
        let Step::Failure { failure, hit, .. } = &steps[1] else {
            panic!("{steps:?}")
        };
        assert_eq!(failure.addr.to_string(), "203.0.113.9");
        assert_eq!(failure.weight, 3);
        assert_eq!(hit.user.as_deref(), Some(&b"root"[..]));
        let Step::Failure { failure: f2, .. } = &steps[2] else {
            panic!("{steps:?}")
        };
        assert_eq!((f2.weight, f2.time - failure.time), (2, 120_000));
        // user weights apply to each occurrence
        let mut j = sshd_jail(100, vec![(b"root".to_vec(), 5)]);
        let w: Vec<u32> = [fail, "Dec 10 07:13:56 bsd1 last message repeated 2 times"]
            .iter()
            .map(|l| match j.process(l.as_bytes(), &CTX, None, 0) {
                Step::Failure { failure, .. } => failure.weight,
                _ => 0,
            })
            .collect();
        assert_eq!(w, vec![5, 10]);
    }

    /// A repeat line counts only a failure the jail counted on the line just before it.
    #[test]
    fn syslogd_repeated_line_after_anything_else_counts_nothing() {
        let fail = "Dec 10 07:13:50 bsd1 sshd[24227]: Failed password for root from 203.0.113.9 port 42393 ssh2";
        for before in [
            // a line matching nothing between the failure and the repeat line
            vec![fail, "Dec 10 07:13:51 bsd1 cron[7]: (root) CMD (true)"],
            // an address never banned (192.0.2.0/24 is ignored here)
            vec!["Dec 10 07:13:50 bsd1 sshd[24227]: Failed password for root from 192.0.2.7 port 42393 ssh2"],
            // a held line: a publickey failure waits for the end of its session
            vec!["Dec 10 07:13:50 bsd1 sshd[30]: Failed publickey for bob from 203.0.113.10 port 4000 ssh2: ED25519 SHA256:abc"],
            // nothing at all
            vec![],
        ] {
            let mut lines = before.clone();
            lines.push("Dec 10 07:13:56 bsd1 last message repeated 50 times");
            let mut j = sshd_jail(3, vec![]);
            let steps: Vec<Step> = lines
                .iter()
                .map(|l| j.process(l.as_bytes(), &CTX, None, 0))
                .collect();
            assert_eq!(steps.last(), Some(&Step::NoMatch), "{before:?}");
        }
        // lines of another source between them do not separate them; a gap in the line
        // numbers (a line never committed) does
        let mut j = sshd_jail(100, vec![]);
        j.process_from(1, fail.as_bytes(), &CTX, None, 0);
        j.process_from(
            2,
            b"Dec 10 07:13:51 other cron[7]: (root) CMD (true)",
            &CTX,
            None,
            0,
        );
        let s = j.process_from(
            1,
            b"Dec 10 07:13:56 bsd1 last message repeated 2 times",
            &CTX,
            None,
            0,
        );
        assert!(
            matches!(s, Step::Failure { ref failure, .. } if failure.weight == 2),
            "{s:?}"
        );
        let (set, settings) = j.shared();
        let mut scratch = set.scratch();
        let prep = |l: &str, sc: &mut Scratch| prepare(&set, &settings, l.as_bytes(), &CTX, sc);
        let f = prep(fail, &mut scratch);
        let r = prep(
            "Dec 10 07:13:56 bsd1 last message repeated 2 times",
            &mut scratch,
        );
        assert!(
            matches!(
                r,
                Prepared::Repeat {
                    n: 2,
                    time: Some(_)
                }
            ),
            "{r:?}"
        );
        let at = |seq| LineAt {
            source: 9,
            seq,
            stream: 0,
        };
        assert!(matches!(
            j.commit_at(at(10), f.clone(), None, 0),
            Step::Failure { .. }
        ));
        assert_eq!(j.commit_at(at(12), r.clone(), None, 0), Step::NoMatch);
        assert!(matches!(
            j.commit_at(at(20), f, None, 0),
            Step::Failure { .. }
        ));
        assert!(matches!(
            j.commit_at(at(21), r, None, 0),
            Step::Failure { .. }
        ));
    }

    /// Postfix serves up to max_use connections with one smtpd process: a follow-up of each
    /// new connection ("connect from" between them) counts, in every mode, while the lines of
    /// one connection still count once (seen with Postfix 3.7 in tests/real_mail.rs).
    #[test]
    fn postfix_connections_of_one_smtpd_process_count_each() {
        for mode in [Mode::Ddos, Mode::Aggressive] {
            let mut j = builtin_jail("postfix", mode, 3, vec![]);
            let mut lines = Vec::new();
            for i in 0..3 {
                lines.push(format!(
                    "Dec  3 10:00:0{i} mx postfix/smtpd[5641]: connect from unknown[203.0.113.9]"
                ));
                lines.push(format!("Dec  3 10:00:0{i} mx postfix/smtpd[5641]: lost connection after CONNECT from unknown[203.0.113.9]"));
                lines.push(format!("Dec  3 10:00:0{i} mx postfix/smtpd[5641]: disconnect from unknown[203.0.113.9] commands=0/0"));
            }
            let l: Vec<&str> = lines.iter().map(String::as_str).collect();
            assert_eq!(bans(&mut j, &l), vec!["203.0.113.9 3"], "{mode:?}");
        }
        // one connection's failed AUTH and its summary still count once (postfix-sasl)
        let mut j = builtin_jail("postfix-sasl", Mode::Normal, 2, vec![]);
        let b = bans(
            &mut j,
            &[
                "Dec  3 10:00:00 mx postfix/smtpd[77]: connect from unknown[203.0.113.10]",
                "Dec  3 10:00:01 mx postfix/smtpd[77]: warning: unknown[203.0.113.10]: SASL LOGIN authentication failed: UGFzc3dvcmQ6",
                "Dec  3 10:00:02 mx postfix/smtpd[77]: lost connection after AUTH from unknown[203.0.113.10]",
                "Dec  3 10:00:02 mx postfix/smtpd[77]: disconnect from unknown[203.0.113.10] ehlo=1 auth=0/1 commands=1/2",
            ],
        );
        assert!(b.is_empty(), "{b:?}");
        // the connect line itself counts nothing
        let w = weights(
            &mut builtin_jail("postfix", Mode::Aggressive, 1, vec![]),
            &["Dec  3 10:00:00 mx postfix/smtpd[9]: connect from unknown[203.0.113.11]"],
        );
        assert_eq!(w, vec![0]);
    }

    /// A pipelining bot's connection (Postfix 3.7 in tests/real_mail.rs): the pipelining
    /// line, then its reject (relay denied, or reject_unauth_pipelining's DATA reject) or
    /// "too many errors", is one abusive connection in normal mode; each connection of the
    /// same smtpd process counts.
    #[test]
    fn postfix_pipelining_connection_counts_once() {
        let conn = |pid: u32, s: u32, a: &str, tail: &[&str]| {
            let mut v = vec![
                format!("Dec  3 10:00:{s:02} mx postfix/smtpd[{pid}]: connect from unknown[{a}]"),
                format!("Dec  3 10:00:{s:02} mx postfix/smtpd[{pid}]: improper command pipelining after HELO from unknown[{a}]: MAIL FROM:<a@example.org>\\r\\n"),
            ];
            v.extend(
                tail.iter()
                    .map(|t| format!("Dec  3 10:00:{s:02} mx postfix/smtpd[{pid}]: {t}")),
            );
            v.push(format!("Dec  3 10:00:{s:02} mx postfix/smtpd[{pid}]: disconnect from unknown[{a}] helo=1 mail=1 rcpt=0/1 quit=1 commands=3/4"));
            v
        };
        let relay = "NOQUEUE: reject: RCPT from unknown[203.0.113.47]: 554 5.7.1 <v@example.com>: Relay access denied; from=<a@example.org> to=<v@example.com> proto=SMTP helo=<x>";
        let data = "0BD5398C771: reject: DATA from unknown[203.0.113.47]: 503 5.5.0 <DATA>: Data command rejected: Improper use of SMTP command pipelining; from=<a@example.org> to=<v@example.com> proto=SMTP helo=<x>";
        let errors = "too many errors after UNKNOWN from unknown[203.0.113.47]";
        for mode in [Mode::Normal, Mode::Aggressive] {
            for tail in [&[relay][..], &[data], &[errors], &[relay, data, errors]] {
                // one connection: not banned at maxretry 2
                let mut j = builtin_jail("postfix", mode, 2, vec![]);
                let lines = conn(300, 1, "203.0.113.47", tail);
                let l: Vec<&str> = lines.iter().map(String::as_str).collect();
                assert!(bans(&mut j, &l).is_empty(), "{mode:?} {tail:?}");
                // a second connection of the same smtpd process counts
                let lines = conn(300, 2, "203.0.113.47", tail);
                let l: Vec<&str> = lines.iter().map(String::as_str).collect();
                assert_eq!(
                    bans(&mut j, &l),
                    vec!["203.0.113.47 2"],
                    "{mode:?} {tail:?}"
                );
            }
        }
        // a client without pipelining still counts each relay attempt
        let mut j = builtin_jail("postfix", Mode::Normal, 2, vec![]);
        let b = bans(
            &mut j,
            &[
                "Dec  3 10:00:00 mx postfix/smtpd[301]: connect from unknown[203.0.113.47]",
                &format!("Dec  3 10:00:01 mx postfix/smtpd[301]: {relay}"),
                &format!("Dec  3 10:00:02 mx postfix/smtpd[301]: {relay}"),
            ],
        );
        assert_eq!(b, vec!["203.0.113.47 2"]);
    }

    /// postscreen is one process for every client: the client's port ties a failed test's
    /// line to the reject of the same connection ("550 5.5.1 Protocol error" after COMMAND
    /// PIPELINING, seen with Postfix 3.7 in tests/real_mail.rs), which then counts once in
    /// aggressive mode; each connection counts, and in normal mode (where the test's line is
    /// not read) the reject counts alone, once per connection.
    #[test]
    fn postscreen_connection_counts_once() {
        let conn = |port: u32, s: u32| {
            let a = "203.0.113.43";
            [
                format!("Dec  3 10:00:{s:02} mx postfix/postscreen[700]: CONNECT from [{a}]:{port} to [192.0.2.1]:25"),
                format!("Dec  3 10:00:{s:02} mx postfix/postscreen[700]: COMMAND PIPELINING from [{a}]:{port} after EHLO: MAIL FROM:<a@example.org>\\r\\n"),
                format!("Dec  3 10:00:{s:02} mx postfix/postscreen[700]: NOQUEUE: reject: RCPT from [{a}]:{port}: 550 5.5.1 Protocol error; from=<a@example.org>, to=<b@example.com>, proto=ESMTP, helo=<x>"),
                format!("Dec  3 10:00:{s:02} mx postfix/postscreen[700]: NOQUEUE: reject: RCPT from [{a}]:{port}: 550 5.5.1 Protocol error; from=<a@example.org>, to=<c@example.com>, proto=ESMTP, helo=<x>"),
                format!("Dec  3 10:00:{s:02} mx postfix/postscreen[700]: DISCONNECT [{a}]:{port}"),
            ]
        };
        for mode in [Mode::Normal, Mode::Aggressive] {
            // one connection: not banned at maxretry 2
            let mut j = builtin_jail("postfix", mode, 2, vec![]);
            let lines = conn(40001, 1);
            let l: Vec<&str> = lines.iter().map(String::as_str).collect();
            assert!(bans(&mut j, &l).is_empty(), "{mode:?}");
            // the next connection (another port) of the same process counts again
            let lines = conn(40002, 2);
            let l: Vec<&str> = lines.iter().map(String::as_str).collect();
            assert_eq!(bans(&mut j, &l), vec!["203.0.113.43 2"], "{mode:?}");
            // two connections at once, their lines interleaved: each counts once
            let mut j = builtin_jail("postfix", mode, 3, vec![]);
            let (a, b) = (conn(40003, 3), conn(40004, 3));
            let l: Vec<&str> = a
                .iter()
                .zip(&b)
                .flat_map(|(x, y)| [x.as_str(), y.as_str()])
                .collect();
            assert!(bans(&mut j, &l).is_empty(), "{mode:?}");
            // they counted two: a third connection bans
            let lines = conn(40005, 4);
            let l: Vec<&str> = lines.iter().map(String::as_str).collect();
            assert_eq!(bans(&mut j, &l), vec!["203.0.113.43 3"], "{mode:?}");
        }
    }

    /// What each line counts for whom: "ADDR WEIGHT" per counted line.
    fn counted(j: &mut Jail, lines: &[&str]) -> Vec<String> {
        let mut out = Vec::new();
        for l in lines {
            if let Step::Failure { failure, .. } = j.process(l.as_bytes(), &CTX, None, 0) {
                if failure.weight > 0 {
                    out.push(format!("{} {}", failure.addr, failure.weight));
                }
            }
        }
        out
    }

    /// Dropbear 2020.79 .. 2024.85 write "Login attempt for nonexistent user" and the
    /// refusals without an address: the session (pid) gives the one of its "Child
    /// connection" line. A later connection on the same pid whose "Child connection" line
    /// was lost must not take the earlier connection's address (an innocent host): the
    /// session is over AUTH_TIMEOUT (+10 s) after its first line.
    #[test]
    fn dropbear_address_less_line_of_a_reused_pid_takes_no_stale_address() {
        for mode in [Mode::Normal, Mode::Aggressive] {
            let mut j = builtin_jail("dropbear", mode, 5, vec![]);
            // the normal case: the connection's lines, within AUTH_TIMEOUT
            let c = counted(
                &mut j,
                &[
                    "Dec  3 10:00:00 gw dropbear[2001]: Child connection from 198.51.100.9:50000",
                    "Dec  3 10:00:01 gw dropbear[2001]: Login attempt for nonexistent user",
                    "Dec  3 10:04:59 gw dropbear[2001]: root login rejected",
                    "Dec  3 10:05:00 gw dropbear[2001]: Exit before auth from <198.51.100.9:50000>: Exited normally",
                ],
            );
            let want: Vec<String> = if mode == Mode::Normal {
                // (the refusal after the nonexistent user: an opener, another count)
                vec!["198.51.100.9 1".into(), "198.51.100.9 1".into()]
            } else {
                vec![
                    "198.51.100.9 1".into(),
                    "198.51.100.9 1".into(),
                    "198.51.100.9 1".into(),
                ]
            };
            assert_eq!(c, want, "{mode:?}");
            // the pid again, two hours later, its "Child connection" line lost: nothing
            // for 198.51.100.9; the connection's own exit line counts it on its address
            let c = counted(
                &mut j,
                &[
                    "Dec  3 12:00:01 gw dropbear[2001]: Login attempt for nonexistent user",
                    "Dec  3 12:00:03 gw dropbear[2001]: Exit before auth from <203.0.113.77:41000>: Max auth tries reached - user 'is invalid'",
                ],
            );
            assert_eq!(c, vec!["203.0.113.77 1"], "{mode:?}");
            // the connection's exit line was read: its session is over at once, even for
            // a reused pid within AUTH_TIMEOUT (max-tries: a rule; "Exited normally": an
            // `end` line only, in normal mode)
            for exit in [
                "Max auth tries reached - user 'is invalid'",
                "Exited normally",
            ] {
                let c = counted(
                    &mut j,
                    &[
                        "Dec  3 13:00:00 gw dropbear[2003]: Child connection from 198.51.100.11:50002",
                        &format!("Dec  3 13:00:01 gw dropbear[2003]: Exit before auth from <198.51.100.11:50002>: {exit}"),
                        "Dec  3 13:01:00 gw dropbear[2003]: Login attempt for nonexistent user",
                    ],
                );
                assert!(
                    !c.iter().skip(1).any(|x| x.starts_with("198.51.100.11")),
                    "{mode:?} {exit}: {c:?}"
                );
            }
            // `dropbear -E`'s own file: the "[PID]" and the time in the message
            let c = counted(
                &mut j,
                &[
                    "[2002] Dec 03 12:10:00 Child connection from 198.51.100.10:50001",
                    "[2002] Dec 03 12:10:01 Login attempt for nonexistent user",
                    "[2002] Dec 03 12:30:00 Login attempt for nonexistent user",
                ],
            );
            assert_eq!(c, vec!["198.51.100.10 1"], "{mode:?}");
        }
    }

    /// sshd at LogLevel INFO writes no "Connection from": a scanner's address-less
    /// "kex_exchange_identification" line on a pid that an earlier client's session used
    /// (its "Failed publickey" kept the session and its address) took that client's
    /// address. A session is over 10 minutes after its first line.
    #[test]
    fn sshd_address_less_line_of_a_reused_pid_takes_no_stale_address() {
        let mut j = builtin_jail("sshd", Mode::Aggressive, 5, vec![]);
        let c = counted(
            &mut j,
            &[
                "Dec  3 10:00:00 h sshd[3001]: Failed publickey for alice from 198.51.100.9 port 50000 ssh2: ED25519 SHA256:abc",
                "Dec  3 10:00:01 h sshd[3001]: Connection closed by authenticating user alice 198.51.100.9 port 50000 [preauth]",
                "Dec  3 18:00:01 h sshd[3001]: error: kex_exchange_identification: Connection closed by remote host",
                "Dec  3 18:00:01 h sshd[3001]: Connection closed by 203.0.113.5 port 41000",
            ],
        );
        assert_eq!(c, vec!["198.51.100.9 1", "203.0.113.5 1"]);
        // within the session's time the line still takes its address
        let c = counted(
            &mut j,
            &[
                "Dec  3 19:00:00 h sshd[3002]: Connection from 203.0.113.6 port 41001 on 192.0.2.1 port 22",
                "Dec  3 19:01:59 h sshd[3002]: error: kex_exchange_identification: Connection closed by remote host",
            ],
        );
        assert_eq!(c, vec!["203.0.113.6 1"]);
        // the session's end line was read: over at once
        let c = counted(
            &mut j,
            &[
                "Dec  3 19:10:00 h sshd[3003]: Connection from 198.51.100.12 port 41002 on 192.0.2.1 port 22",
                "Dec  3 19:10:01 h sshd[3003]: Failed publickey for alice from 198.51.100.12 port 41002 ssh2: ED25519 SHA256:abc",
                "Dec  3 19:10:02 h sshd[3003]: Received disconnect from 198.51.100.12 port 41002:11: Bye Bye [preauth]",
                "Dec  3 19:11:00 h sshd[3003]: error: kex_exchange_identification: Connection closed by remote host",
                "Dec  3 19:11:00 h sshd[3003]: Connection closed by 203.0.113.7 port 41003",
            ],
        );
        assert_eq!(c, vec!["198.51.100.12 1", "203.0.113.7 1"]);
        // a client that failed a key and left ("Connection closed by authenticating user":
        // the rule `closed`, and an end line): bob's login on the same pid a minute later
        // is another connection, not "one session failing for alice, logging in as bob"
        for mode in [Mode::Normal, Mode::Aggressive, Mode::Ddos] {
            let mut j = builtin_jail("sshd", mode, 5, vec![]);
            let c = counted(
                &mut j,
                &[
                    "Dec  3 20:00:00 h sshd[3004]: Failed publickey for alice from 198.51.100.13 port 41004 ssh2: ED25519 SHA256:abc",
                    "Dec  3 20:00:01 h sshd[3004]: Connection closed by authenticating user alice 198.51.100.13 port 41004 [preauth]",
                    "Dec  3 20:01:00 h sshd[3004]: Accepted password for bob from 203.0.113.8 port 41005 ssh2",
                ],
            );
            assert!(
                !c.iter().any(|x| x.starts_with("203.0.113.8")),
                "{mode:?}: {c:?}"
            );
        }
    }

    /// A connection that ended in "Disconnecting ...: Too many authentication failures" (a
    /// follow-up, not an `end` line: the session stays) and, within the session's time, a
    /// login on the same pid from another client: the login counted nothing, but the
    /// earlier session's held lines (the 6.x address-less "Disconnecting:" line, or the
    /// failed user alone) were counted on the login's address, with the login itself as
    /// one more (found by a blind check on Elastic's RHEL 7 secure log, with the pid of its
    /// last line changed: a legitimate key login was banned at maxretry 2).
    #[test]
    fn a_login_on_a_reused_pid_is_never_counted() {
        let conns: [&[&str]; 4] = [
            // OpenSSH 6.x: the "Disconnecting:" line has no address
            &[
                "Feb 22 16:59:32 h sshd[3064]: Failed password for root from 198.51.100.46 port 43257 ssh2",
                "Feb 22 16:59:35 h sshd[3064]: Failed password for root from 198.51.100.46 port 43257 ssh2",
                "Feb 22 16:59:35 h sshd[3064]: Disconnecting: Too many authentication failures for root [preauth]",
                "Feb 22 16:59:35 h sshd[3064]: PAM 5 more authentication failures; logname= uid=0 euid=0 tty=ssh ruser= rhost=198.51.100.46  user=root",
                "Feb 22 17:05:00 h sshd[3064]: Accepted publickey for drewr from 203.0.113.97 port 42136 ssh2: RSA 01:67:32:d9:b3:20:5d:2d:5f:b4:35:c5:a5:8b:0a:5e",
            ],
            // Debian's pam_unix line before each password (a prelude) and 9.x's endings
            &[
                "Mar  1 10:00:00 h sshd[600]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=198.51.100.7  user=root",
                "Mar  1 10:00:01 h sshd[600]: Failed password for root from 198.51.100.7 port 40000 ssh2",
                "Mar  1 10:00:03 h sshd[600]: Failed password for root from 198.51.100.7 port 40000 ssh2",
                "Mar  1 10:00:05 h sshd[600]: error: maximum authentication attempts exceeded for root from 198.51.100.7 port 40000 ssh2 [preauth]",
                "Mar  1 10:00:05 h sshd[600]: Disconnecting authenticating user root 198.51.100.7 port 40000: Too many authentication failures [preauth]",
                "Mar  1 10:05:00 h sshd[600]: Accepted publickey for alice from 203.0.113.20 port 50000 ssh2: ED25519 SHA256:k1kjhwoH/H3w31MbGOIGd7qxrkSQJnoAN0eYJVHDmmI",
            ],
            // an address-less refusal (held until a line names the address), its connection's
            // address-less end (6.x), then another client's preauth close on the pid: in
            // normal mode that close is only an `end` line, and released the first
            // connection's refusal on the second client's address
            &[
                "Mar  1 09:00:01 h sshd[599]: User root not allowed because account is locked",
                "Mar  1 09:00:05 h sshd[599]: fatal: Read from socket failed: Connection reset by peer [preauth]",
                "Mar  1 09:05:02 h sshd[599]: Connection closed by 203.0.113.19 port 50000 [preauth]",
            ],
            // a key the agent offered in vain (held), the connection's end lost, then another
            // client's failures and end on the same pid: nothing of the first on the second
            &[
                "Mar  1 11:00:00 h sshd[601]: Failed publickey for carol from 198.51.100.8 port 40000 ssh2: ED25519 SHA256:k1kjhwoH/H3w31MbGOIGd7qxrkSQJnoAN0eYJVHDmmI",
                "Mar  1 11:05:00 h sshd[601]: Connection closed by 203.0.113.21 port 50001 [preauth]",
            ],
        ];
        for mode in [Mode::Normal, Mode::Aggressive] {
            for (i, lines) in conns.into_iter().enumerate() {
                let mut j = builtin_jail("sshd", mode, 2, vec![]);
                let c = counted(&mut j, lines);
                let second: Vec<&String> =
                    c.iter().filter(|x| x.starts_with("203.0.113.")).collect();
                // (the last client's own preauth close counts as a scan in aggressive mode)
                let want: Vec<&str> = match (i, mode) {
                    // (the second client's own preauth close, a scan)
                    (2, Mode::Aggressive) => vec!["203.0.113.19 1"],
                    (3, Mode::Aggressive) => vec!["203.0.113.21 1"],
                    _ => vec![],
                };
                assert_eq!(second, want, "{mode:?} {i}: {c:?}");
            }
        }
        // the same address logging in under another name on the pid: its held failures
        // count on it, the login does not
        let mut j = builtin_jail("sshd", Mode::Normal, 5, vec![]);
        let c = counted(
            &mut j,
            &[
                "Mar  1 12:00:00 h sshd[602]: Failed publickey for root from 198.51.100.9 port 40000 ssh2: ED25519 SHA256:k1kjhwoH/H3w31MbGOIGd7qxrkSQJnoAN0eYJVHDmmI",
                "Mar  1 12:01:00 h sshd[602]: Accepted password for dave from 198.51.100.9 port 40002 ssh2",
            ],
        );
        assert_eq!(c, vec!["198.51.100.9 1"]);
    }

    /// slapd 2.5 may log a connection's binds, and its close, before its ACCEPT (found by
    /// tests/real_slapd.rs): the late ACCEPT counts them, one attempt each, on its address;
    /// the late ACCEPT of another connection takes nothing of it.
    #[test]
    fn a_late_accept_counts_what_its_connection_held() {
        let mut j = builtin_jail("slapd", Mode::Normal, 10, vec![]);
        let c = counted(
            &mut j,
            &[
                "Dec  4 20:56:14 l slapd[43]: conn=1006 op=0 BIND dn=\"uid=alice,dc=example,dc=net\" method=128",
                "Dec  4 20:56:14 l slapd[43]: conn=1006 op=0 RESULT tag=97 err=49 qtime=0.000050 etime=0.002006 text=",
                "Dec  4 20:56:14 l slapd[43]: conn=1006 op=1 BIND dn=\"uid=bob,dc=example,dc=net\" method=128",
                "Dec  4 20:56:14 l slapd[43]: conn=1006 op=1 RESULT tag=97 err=49 qtime=0.000050 etime=0.002006 text=",
                "Dec  4 20:56:14 l slapd[43]: conn=1006 fd=21 closed (connection lost)",
                "Dec  4 20:56:14 l slapd[43]: conn=1007 fd=22 ACCEPT from IP=203.0.113.5:38606 (IP=192.0.2.1:389)",
                "Dec  4 20:56:14 l slapd[43]: conn=1006 fd=21 ACCEPT from IP=198.51.100.9:38605 (IP=192.0.2.1:389)",
                // in order: counted at once, nothing held
                "Dec  4 20:56:15 l slapd[43]: conn=1008 fd=23 ACCEPT from IP=198.51.100.9:38607 (IP=192.0.2.1:389)",
                "Dec  4 20:56:15 l slapd[43]: conn=1008 op=0 BIND dn=\"uid=alice,dc=example,dc=net\" method=128",
                "Dec  4 20:56:15 l slapd[43]: conn=1008 op=0 RESULT tag=97 err=49 qtime=0.000050 etime=0.002006 text=",
                "Dec  4 20:56:15 l slapd[43]: conn=1008 fd=23 closed (connection lost)",
                // an address-less failure whose address comes more than 10 s later is
                // another connection's leftover (a key counted again after a restart)
                "Dec  4 20:56:16 l slapd[43]: conn=1009 op=0 RESULT tag=97 err=49 qtime=0.000050 etime=0.002006 text=",
                "Dec  4 20:58:00 l slapd[43]: conn=1009 fd=24 ACCEPT from IP=203.0.113.9:38608 (IP=192.0.2.1:389)",
            ],
        );
        assert_eq!(c, vec!["198.51.100.9 2", "198.51.100.9 1"]);
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
    /// What each line counts (tracker aside), as `test` shows it.
    fn weights(j: &mut Jail, lines: &[&str]) -> Vec<u32> {
        lines
            .iter()
            .map(
                |l| match prepare(&j.set, &j.settings, l.as_bytes(), &CTX, &mut j.scratch) {
                    Prepared::Failure { failure, .. } => failure.weight,
                    _ => 0,
                },
            )
            .collect()
    }

    #[test]
    fn failed_publickeys_then_accepted_count_nothing() {
        let mut j = sshd_jail(1, vec![]);
        let b = bans(
            &mut j,
            &[
                "Nov 21 10:00:01 h sshd[20]: Failed publickey for git from 203.0.113.20 port 5000 ssh2: ECDSA SHA256:aaaa",
                "Nov 21 10:00:01 h sshd[20]: Failed publickey for git from 203.0.113.20 port 5000 ssh2: RSA SHA256:bbbb",
                "Nov 21 10:00:01 h sshd[20]: Accepted publickey for git from 203.0.113.20 port 5000 ssh2: ED25519 SHA256:cccc",
                "Nov 21 10:00:09 h sshd[20]: Disconnected from user git 203.0.113.20 port 5000",
            ],
        );
        assert!(b.is_empty(), "{b:?}");
    }

    #[test]
    fn failed_publickeys_count_when_the_connection_ends_without_success() {
        let mut j = sshd_jail(3, vec![]);
        let lines = [
            "Nov 21 10:00:01 h sshd[21]: Failed publickey for git from 203.0.113.21 port 5000 ssh2: ECDSA SHA256:aaaa",
            "Nov 21 10:00:01 h sshd[21]: Failed publickey for git from 203.0.113.21 port 5000 ssh2: RSA SHA256:bbbb",
            "Nov 21 10:00:01 h sshd[21]: Failed publickey for git from 203.0.113.21 port 5000 ssh2: RSA SHA256:cccc",
            "Nov 21 10:00:02 h sshd[21]: Connection closed by authenticating user git 203.0.113.21 port 5000 [preauth]",
        ];
        assert_eq!(weights(&mut sshd_jail(3, vec![]), &lines), [0, 0, 0, 3]);
        assert_eq!(bans(&mut j, &lines), vec!["203.0.113.21 3"]);
        // a session of another process is another connection: nothing of it is released
        let mut j = sshd_jail(1, vec![]);
        let b = bans(
            &mut j,
            &[
                "Nov 21 10:00:01 h sshd[22]: Failed publickey for git from 203.0.113.22 port 5000 ssh2: RSA SHA256:bbbb",
                "Nov 21 10:00:01 other sshd[22]: Connection closed by 203.0.113.22 port 5000 [preauth]",
                "Nov 21 10:00:01 h sshd[23]: Connection closed by 203.0.113.22 port 5001 [preauth]",
            ],
        );
        assert!(b.is_empty(), "{b:?}");
    }

    #[test]
    fn a_line_without_an_address_counts_through_its_session() {
        // 6.x: the address only on the line that ends the connection
        let mut j = sshd_jail(1, vec![]);
        let lines = [
            "Nov 21 10:00:01 h sshd[30]: Disconnecting: Too many authentication failures for root [preauth]",
            "Nov 21 10:00:02 h sshd[30]: Connection closed by 203.0.113.30 [preauth]",
        ];
        assert_eq!(weights(&mut sshd_jail(1, vec![]), &lines), [0, 1]);
        assert_eq!(bans(&mut j, &lines), vec!["203.0.113.30 1"]);
        // ... after the connection's counted failures it is their summary: not counted again
        let mut j = sshd_jail(3, vec![]);
        let b = bans(
            &mut j,
            &[
                "Nov 21 10:00:01 h sshd[34]: Failed password for root from 203.0.113.34 port 5000 ssh2",
                "Nov 21 10:00:02 h sshd[34]: Failed password for root from 203.0.113.34 port 5000 ssh2",
                "Nov 21 10:00:03 h sshd[34]: Disconnecting: Too many authentication failures for root [preauth]",
                "Nov 21 10:00:03 h sshd[34]: Connection closed by 203.0.113.34 [preauth]",
            ],
        );
        assert!(b.is_empty(), "{b:?}");
        // the address from the connection's first line (LogLevel VERBOSE)
        let lines = [
            "Nov 21 10:00:01 h sshd[31]: Connection from 203.0.113.31 port 51353 on 198.51.100.1 port 22",
            "Nov 21 10:00:03 h sshd[31]: Disconnecting: Too many authentication failures [preauth]",
        ];
        assert_eq!(weights(&mut sshd_jail(1, vec![]), &lines), [0, 1]);
        // an account sshd refuses (no address), then the attempt's own line: one attempt
        let mut j = sshd_jail(2, vec![]);
        let lines = [
            "Nov 21 10:00:01 h sshd[32]: User root not allowed because account is locked",
            "Nov 21 10:00:01 h sshd[32]: Failed password for invalid user root from 203.0.113.32 port 5000 ssh2",
            "Nov 21 10:00:02 h sshd[32]: Connection closed by invalid user root 203.0.113.32 port 5000 [preauth]",
        ];
        assert!(bans(&mut j, &lines).is_empty());
        // ... or the connection ends before it: the refusal counts, once
        let lines = [
            "Nov 21 10:00:01 h sshd[33]: User root not allowed because account is locked",
            "Nov 21 10:00:01 h sshd[33]: Received disconnect from 203.0.113.33 port 5000:11: Bye Bye [preauth]",
        ];
        assert_eq!(weights(&mut sshd_jail(1, vec![]), &lines), [0, 1]);
    }

    #[test]
    fn pam_lines_count_once_per_attempt() {
        // pam_unix's line announces sshd's own Failed line: one attempt
        let mut j = sshd_jail(2, vec![]);
        let b = bans(
            &mut j,
            &[
                "Nov 21 10:00:01 h sshd[40]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=203.0.113.40  user=root",
                "Nov 21 10:00:03 h sshd[40]: Failed password for root from 203.0.113.40 port 5000 ssh2",
                "Nov 21 10:00:04 h sshd[40]: Connection closed by authenticating user root 203.0.113.40 port 5000 [preauth]",
            ],
        );
        assert!(b.is_empty(), "{b:?}");
        // a client that leaves during PAM's delay: the pam_unix line counts
        let lines = [
            "Nov 21 10:00:01 h sshd[41]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=203.0.113.41  user=root",
            "Nov 21 10:00:02 h sshd[41]: Connection closed by authenticating user root 203.0.113.41 port 5000 [preauth]",
        ];
        assert_eq!(weights(&mut sshd_jail(1, vec![]), &lines), [0, 1]);
        // keyboard-interactive: "error: PAM: ..." counts, the Failed line after it does not
        let mut j = sshd_jail(3, vec![]);
        let b = bans(
            &mut j,
            &[
                "Nov 21 10:00:01 h sshd[42]: error: PAM: Authentication failure for root from 203.0.113.42",
                "Nov 21 10:00:01 h sshd[42]: Failed keyboard-interactive/pam for root from 203.0.113.42 port 5000 ssh2",
                "Nov 21 10:00:03 h sshd[42]: error: PAM: Authentication failure for root from 203.0.113.42",
                "Nov 21 10:00:03 h sshd[42]: Failed keyboard-interactive/pam for root from 203.0.113.42 port 5000 ssh2",
            ],
        );
        assert!(b.is_empty(), "{b:?}");
        let b = bans(&mut j, &["Nov 21 10:00:05 h sshd[43]: Failed password for root from 203.0.113.42 port 5001 ssh2"]);
        assert_eq!(b, vec!["203.0.113.42 3"]);
    }

    #[test]
    fn a_success_forgives_only_its_own_users_failures() {
        // the same user: a PAM stack that tried one module before another
        let lines = [
            "Nov 21 10:00:01 h sshd[50]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=203.0.113.50  user=rda",
            "Nov 21 10:00:01 h sshd[50]: Accepted password for rda from 203.0.113.50 port 5000 ssh2",
            "Nov 21 10:00:09 h sshd[50]: Connection closed by 203.0.113.50 port 5000",
        ];
        assert_eq!(weights(&mut sshd_jail(1, vec![]), &lines), [0, 0, 0]);
        // failures for root, then a login as another user (never one sshd connection: a
        // later one of the pid, from the same address): the failures count, the login not
        let lines = [
            "Nov 21 10:00:01 h sshd[51]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=203.0.113.51  user=root",
            "Nov 21 10:00:01 h sshd[51]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=203.0.113.51  user=root",
            "Nov 21 10:00:02 h sshd[51]: Accepted password for guest from 203.0.113.51 port 5000 ssh2",
        ];
        assert_eq!(weights(&mut sshd_jail(1, vec![]), &lines), [0, 0, 2]);
        // failures for a second user name in one session count at once
        let lines = [
            "Nov 21 10:00:01 h sshd[52]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=203.0.113.52  user=root",
            "Nov 21 10:00:01 h sshd[52]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=203.0.113.52  user=admin",
        ];
        assert_eq!(weights(&mut sshd_jail(1, vec![]), &lines), [0, 2]);
    }

    #[test]
    fn the_rest_of_a_cut_container_line_is_never_read_as_a_line() {
        let mut j = sshd_jail(1, vec![]);
        let ctx = TimeContext {
            now: 1_795_000_000_000,
            local_offset: 0,
            zone: None,
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

    /// A partial record holds back the next record of its own stream in its own source
    /// only: another file's line, or the other stream's record between, is read (one flag
    /// for the jail dropped it, and let the real continuation through as a line of its own,
    /// a review found).
    #[test]
    fn a_partial_record_holds_back_its_own_stream_only() {
        let ctx = TimeContext {
            now: 1_795_000_000_000,
            local_offset: 0,
            zone: None,
        };
        let real = |a: &str| format!("Invalid user x from {a} port 22");
        let docker = |msg: &str, stream: &str, end: &str| {
            format!(r#"{{"log":"{msg}{end}","stream":"{stream}","time":"2026-11-21T10:00:02Z"}}"#)
        };
        let counted = |j: &mut Jail, source: u64, l: &str| match j.process_from(
            source,
            l.as_bytes(),
            &ctx,
            None,
            0,
        ) {
            Step::Failure { failure, .. } => Some(failure.addr.to_string()),
            _ => None,
        };
        for (other_source, other_stream) in [(2, "stdout"), (1, "stderr")] {
            let mut j = sshd_jail(1, vec![]);
            // a partial stdout record of source 1
            assert_eq!(
                counted(&mut j, 1, &docker("Invalid user aaaa", "stdout", "")),
                None
            );
            // a real failure in another file, or on the other stream: read
            let line = docker(&real("203.0.113.22"), other_stream, "\\n");
            assert_eq!(
                counted(&mut j, other_source, &line).as_deref(),
                Some("203.0.113.22"),
                "{other_source} {other_stream}"
            );
            // the continuation of the partial record: not read
            let rest = docker(&real("198.51.100.99"), "stdout", "\\n");
            assert_eq!(counted(&mut j, 1, &rest), None, "{other_stream}");
            // then the stream's records are read again
            let next = docker(&real("203.0.113.23"), "stdout", "\\n");
            assert_eq!(counted(&mut j, 1, &next).as_deref(), Some("203.0.113.23"));
        }
        // CRI: the same, by the record's stream
        let mut j = sshd_jail(1, vec![]);
        assert_eq!(
            counted(&mut j, 1, "2026-11-21T10:00:01Z stdout P aaaa"),
            None
        );
        let l = format!("2026-11-21T10:00:01Z stderr F {}", real("203.0.113.26"));
        assert_eq!(counted(&mut j, 1, &l).as_deref(), Some("203.0.113.26"));
        let l = format!("2026-11-21T10:00:01Z stdout F {}", real("198.51.100.99"));
        assert_eq!(counted(&mut j, 1, &l), None);
    }
}

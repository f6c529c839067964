//! Ban policy: what a ban costs once the tracker has decided there is one.
//!
//! * [`weight`]: how much a matched line counts (`rule_weights`, `user_weights`).
//! * [`BanPolicy::terms`]: how long the n-th ban of an offender lasts (`bantime`,
//!   `bantime_increment`, `permanent_after`, `bantime_jitter`).
//! * [`History`]: the bans (and manual unbans) of every offender, the memory behind
//!   escalation; the daemon loads it from its store, so a restart forgets nothing.
//! * [`SubnetBan::target`]: when several bans inside one wider prefix widen the ban
//!   (`subnet_ban`), never over an ignored, own or loopback address.
//! * [`sentence`]: the whole path from a tracker's ban to the decisions to carry out, shared
//!   by `replay` and the daemon.
//!
//! Everything is pure: the caller passes the time and any randomness (the jitter).

use std::collections::BTreeMap;

use crate::decision::{BanReason, Decision, Millis, FOREVER};
use crate::ignore::{Cidr, IgnoreList, Reason};
use crate::jail::Jail;

/// The weight of one matched line: `rule_weights[rule_id]` if set, else the rule's own
/// weight; a counted line (weight above 0) then takes the user's weight from
/// `user_weights` if that is larger. A rule weight of 0 turns the rule off.
pub fn weight(
    rule_default: u32,
    rule_id: &str,
    user: Option<&[u8]>,
    rule_weights: &[(String, u32)],
    user_weights: &[(Vec<u8>, u32)],
) -> u32 {
    let mut w = rule_weights
        .iter()
        .find(|(id, _)| id == rule_id)
        .map_or(rule_default, |(_, w)| *w);
    if w > 0 {
        if let Some(u) = user {
            if let Some((_, uw)) = user_weights.iter().find(|(name, _)| name == u) {
                w = w.max(*uw);
            }
        }
    }
    w
}

/// Default `bantime_increment.window` and the window of `permanent_after` alone: 30 days.
pub const DEFAULT_WINDOW: Millis = 30 * 86_400_000;
/// Default `bantime_increment.max`: 4 weeks.
pub const DEFAULT_MAX: Millis = 28 * 86_400_000;

/// `bantime_increment`: the n-th ban within `window` lasts `bantime × factor^(n-1)`,
/// capped at `max`.
#[derive(Debug, Clone, PartialEq)]
pub struct Increment {
    /// Growth per repeat offence (at least 1).
    pub factor: f64,
    /// Longest ban it makes.
    pub max: Millis,
    /// How far back earlier bans count.
    pub window: Millis,
    /// Count the offender's bans of every jail, not only this one's.
    pub across_jails: bool,
}

/// How long a jail's bans last.
#[derive(Debug, Clone, PartialEq)]
pub struct BanPolicy {
    /// First ban length; `None` for `bantime = "forever"`.
    pub bantime: Option<Millis>,
    /// Escalation of repeat offenders.
    pub increment: Option<Increment>,
    /// Random extra length, in percent of the ban (0 = none).
    pub jitter_percent: u32,
    /// The n-th ban within the window is permanent.
    pub permanent_after: Option<u32>,
}

impl Default for BanPolicy {
    fn default() -> Self {
        BanPolicy {
            bantime: Some(crate::track::DEFAULT_BANTIME),
            increment: None,
            jitter_percent: 0,
            permanent_after: None,
        }
    }
}

/// The length and reason of one ban, from [`BanPolicy::terms`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Terms {
    /// When it ends; [`FOREVER`] when permanent.
    pub until: Millis,
    /// Which ban of the offender this is within the window (1 = first).
    pub count: u32,
    /// Why it is this long.
    pub reason: BanReason,
}

impl Terms {
    /// Whether the ban never runs out.
    pub fn permanent(&self) -> bool {
        self.until == FOREVER
    }
}

impl BanPolicy {
    /// How far back earlier bans count (for escalation and `permanent_after`).
    pub fn window(&self) -> Millis {
        self.increment.as_ref().map_or(DEFAULT_WINDOW, |i| i.window)
    }

    /// Whether bans of other jails count.
    pub fn across_jails(&self) -> bool {
        self.increment.as_ref().is_some_and(|i| i.across_jails)
    }

    /// The terms of a ban starting at `now` when the offender had `prior` bans within the
    /// window. `jitter` is a random number (any `u64`); the jitter adds
    /// `length × jitter_percent/100 × (jitter mod 10001)/10000`, after the cap. `reason` is the
    /// reason of a first offence (`failures`, `subnet`, `manual`); a lengthened or permanent
    /// repeat offence says `increment`.
    pub fn terms(&self, prior: u32, now: Millis, jitter: u64, reason: BanReason) -> Terms {
        let count = prior.saturating_add(1);
        let repeat = if prior > 0 && (self.increment.is_some() || self.permanent_after.is_some()) {
            BanReason::Increment
        } else {
            reason
        };
        let Some(base) = self.bantime else {
            return Terms {
                until: FOREVER,
                count,
                reason,
            };
        };
        if self.permanent_after.is_some_and(|k| count >= k.max(1)) {
            return Terms {
                until: FOREVER,
                count,
                reason: repeat,
            };
        }
        let mut len = base.max(1);
        let mut why = reason;
        if let Some(inc) = &self.increment {
            let f = inc
                .factor
                .max(1.0)
                .powi(i32::try_from(prior).unwrap_or(i32::MAX));
            let grown = (base as f64 * f).min(inc.max.max(base) as f64);
            len = if grown.is_finite() {
                grown as Millis
            } else {
                inc.max
            };
            len = len.clamp(1, inc.max.max(base));
            if prior > 0 {
                why = repeat;
            }
        }
        if self.jitter_percent > 0 {
            let frac = (jitter % 10_001) as f64 / 10_000.0;
            let extra = len as f64 * f64::from(self.jitter_percent.min(100)) / 100.0 * frac;
            len = len.saturating_add(extra as Millis);
        }
        Terms {
            until: now.saturating_add(len).min(FOREVER - 1),
            count,
            reason: why,
        }
    }
}

/// `subnet_ban`: `after` bans inside one /`v4` (or /`v6`) prefix within `within` ban that
/// prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubnetBan {
    /// Prefix length for IPv4.
    pub v4: u8,
    /// Prefix length for IPv6.
    pub v6: u8,
    /// Bans inside the prefix that widen the ban (at least 1).
    pub after: u32,
    /// How far back those bans count.
    pub within: Millis,
}

/// What [`SubnetBan::target`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubnetOutcome {
    /// Not (yet) enough bans inside the prefix.
    None,
    /// Ban this prefix.
    Ban(Cidr),
    /// The configured prefix holds a never-ban address: this narrower one does not, and
    /// holds the offender.
    Shrunk {
        /// The configured prefix.
        wanted: Cidr,
        /// What is banned instead.
        to: Cidr,
        /// Why the wanted one may not be banned.
        why: Reason,
    },
    /// Every prefix wider than the offender's holds a never-ban address: no subnet ban.
    Skipped {
        /// The configured prefix.
        wanted: Cidr,
        /// Why.
        why: Reason,
    },
}

impl SubnetBan {
    /// Whether the ban of `banned` (just recorded in `history`) makes a subnet ban. Counts the
    /// distinct offenders banned inside the wider prefix since `now - within` (in `jail`, or
    /// in every jail when `jail` is `None`). The prefix never covers what `ignore` protects:
    /// it is shrunk towards the offender until it does not, or skipped. `key_len` is the
    /// length of an offender's prefix in `banned`'s family (see [`History::offenders_within`]).
    pub fn target(
        &self,
        history: &History,
        jail: Option<&str>,
        banned: Cidr,
        now: Millis,
        ignore: &IgnoreList,
        key_len: u8,
    ) -> SubnetOutcome {
        let len = if banned.addr.is_ipv4() {
            self.v4
        } else {
            self.v6
        };
        // (no subnet of a link-local offender: the prefix is on every link)
        if crate::addr::is_link_local(banned.addr) {
            return SubnetOutcome::None;
        }
        let Some(wanted) = Cidr::new(banned.addr, len) else {
            return SubnetOutcome::None;
        };
        if wanted.len >= banned.len {
            return SubnetOutcome::None;
        }
        let n = history.offenders_within(wanted, jail, now.saturating_sub(self.within), key_len);
        if n < self.after.max(1) as usize {
            return SubnetOutcome::None;
        }
        let Some(why) = ignore.check_prefix(wanted) else {
            return SubnetOutcome::Ban(wanted);
        };
        for l in wanted.len + 1..banned.len {
            let c = Cidr::new(banned.addr, l).expect("shorter than the banned prefix");
            if ignore.check_prefix(c).is_none() {
                return SubnetOutcome::Shrunk { wanted, to: c, why };
            }
        }
        SubnetOutcome::Skipped { wanted, why }
    }
}

/// One remembered event of an offender.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    jail: String,
    at: Millis,
    /// A manual unban: earlier bans no longer count.
    reset: bool,
    /// When it was recorded, among all entries: the order of the events of one millisecond.
    seq: u64,
}

/// The bans and manual unbans of every offender (address or prefix), across jails.
#[derive(Debug, Clone, Default)]
pub struct History {
    entries: BTreeMap<Cidr, Vec<Entry>>,
    /// The next entry's `seq`.
    next: u64,
}

impl History {
    /// An empty history.
    pub fn new() -> History {
        History::default()
    }

    /// Records a ban of `target` in `jail` starting at `at`.
    pub fn record_ban(&mut self, target: Cidr, jail: &str, at: Millis) {
        self.push(target, jail, at, false);
    }

    /// Records a manual unban of `target` in `jail` at `at`: its earlier bans in that jail
    /// no longer count (across jails: that jail's part).
    pub fn record_reset(&mut self, target: Cidr, jail: &str, at: Millis) {
        self.push(target, jail, at, true);
    }

    fn push(&mut self, target: Cidr, jail: &str, at: Millis, reset: bool) {
        let v = self.entries.entry(target).or_default();
        if v.iter()
            .any(|x| x.at == at && x.reset == reset && x.jail == jail)
        {
            return;
        }
        let e = Entry {
            jail: jail.to_string(),
            at,
            reset,
            seq: self.next,
        };
        self.next += 1;
        let i = v.partition_point(|x| x.at <= at);
        v.insert(i, e);
    }

    /// When `target`, or a prefix that holds it, was last banned or manually unbanned in
    /// `jail`: either cleared the failures counted for it before then.
    pub fn last_touched(&self, target: Cidr, jail: &str) -> Option<Millis> {
        self.holders(target, 0)
            .chain(self.entries.get(&target).map(|v| (target, v)))
            .flat_map(|(_, v)| v)
            .filter(|e| e.jail == jail)
            .map(|e| e.at)
            .max()
    }

    /// When a manual unban (or pardon) of `target` or of a prefix inside it was last
    /// recorded in `jail`: the failures the offender `target` had counted before it are
    /// forgiven ([`crate::track::Tracker::forgive`]).
    pub fn last_reset_within(&self, target: Cidr, jail: &str) -> Option<Millis> {
        self.within(target)
            .flat_map(|(_, v)| v)
            .filter(|e| e.reset && e.jail == jail)
            .map(|e| e.at)
            .max()
    }

    /// Bans of the offender `target` after `since` and after its last manual unban, in
    /// `jail` (or in any jail when `jail` is `None`). The events of narrower prefixes inside
    /// it are the offender's too: a ban of a /64 narrowed around an ignored address is
    /// recorded as the narrower prefix that was banned, which depends on the address that
    /// failed; counted under that key alone, each return of the offender was a first ban
    /// (review 28). Events of one moment count once.
    ///
    /// Across jails (`jail` `None`), a manual unban in one jail forgets that jail's bans
    /// only: `unban ADDR --jail sshd` wiped the bans of every jail from an `across_jails`
    /// count (review 35).
    pub fn count(&self, target: Cidr, jail: Option<&str>, since: Millis) -> u32 {
        self.count_of(target, jail, since, 129)
    }

    /// The bans of the subnet `target` as [`History::count`] counts them, but only its own
    /// and those of the prefixes inside it wider than `key_len` (the offenders' prefix
    /// length: its pieces when it was narrowed), not the offenders' bans inside it: a first
    /// subnet ban counted the bans of the offenders that made it, and came out escalated,
    /// or permanent with a small `permanent_after` (review 35).
    pub fn count_subnet(
        &self,
        target: Cidr,
        jail: Option<&str>,
        since: Millis,
        key_len: u8,
    ) -> u32 {
        self.count_of(target, jail, since, u16::from(key_len))
    }

    /// [`History::count`] over the entries of prefixes shorter than `below` bits.
    fn count_of(&self, target: Cidr, jail: Option<&str>, since: Millis, below: u16) -> u32 {
        let mut events: Vec<(&str, Millis, u64, bool)> = self
            .within(target)
            .filter(|(c, _)| u16::from(c.len) < below)
            .flat_map(|(_, v)| v.iter())
            .filter(|e| jail.is_none_or(|j| j == e.jail) && e.at > since)
            .map(|e| (e.jail.as_str(), e.at, e.seq, e.reset))
            .collect();
        // the events of one millisecond in the order they were recorded, whatever prefixes
        // they are under: a manual unban in the millisecond of the ban it lifts cancels it,
        // and a ban in the millisecond of an unban before it counts (a reset sorted first of
        // its millisecond left the ban it lifted counted, a CI failure twice; bans sorted
        // first cancelled a ban just after an unban, review 39). After a restart the
        // history is recorded bans first, then resets: a tie of one millisecond read back
        // cancels the ban. The same moment under two prefixes (a ban's pieces) counts once.
        events.sort_by_key(|&(j, at, seq, _)| (j, at, seq));
        events.dedup_by(|a, b| a.0 == b.0 && a.1 == b.1 && a.3 == b.3);
        let mut total = 0u32;
        let mut n = 0u32;
        for (i, &(j, _, _, reset)) in events.iter().enumerate() {
            if i > 0 && events[i - 1].0 != j {
                total = total.saturating_add(n);
                n = 0;
            }
            if reset {
                n = 0;
            } else {
                n = n.saturating_add(1);
            }
        }
        // a reset before `since` still cancels nothing after it: handled by the filter
        total.saturating_add(n)
    }

    /// A pardon of `target` in `jail` at `at` (a manual unban of an offender not banned
    /// now): its earlier bans in that jail no longer count toward escalation. Counted in
    /// `jail` after `since`, under `target` and under the prefixes that hold it from
    /// `key_len` bits on (the jail's `v4_prefix`/`v6_prefix`: a /64 banned as the offender
    /// of its addresses is the offender; a wider subnet ban is other offenders' too, and
    /// the pardon of one host must not forget theirs, review 35). Returns how many counted,
    /// and the prefixes the reset is recorded under: `target`, whose reset the keys that
    /// hold it see, and each prefix inside it with bans of its own, which does not.
    /// Nothing is recorded when nothing counted.
    ///
    /// With `inside` false, a `target` wider than `key_len` (a subnet) forgets its own bans
    /// and its pieces' only, not those of the offenders inside it (`unban --all` lifting a
    /// subnet ban pardoned every offender in it, review 38).
    pub fn forget(
        &mut self,
        target: Cidr,
        jail: &str,
        key_len: u8,
        since: Millis,
        at: Millis,
        inside: bool,
    ) -> (u32, Vec<Cidr>) {
        let subnet_only = !inside && target.len < key_len;
        let holders: Vec<Cidr> = self.holders(target, key_len).map(|(c, _)| c).collect();
        let own = if subnet_only {
            self.count_subnet(target, Some(jail), since, key_len)
        } else {
            self.count(target, Some(jail), since)
        };
        let n = holders
            .into_iter()
            .map(|h| self.count(h, Some(jail), since))
            .chain([own])
            .max()
            .unwrap_or(0);
        if n == 0 {
            return (0, Vec::new());
        }
        let mut at_keys: Vec<Cidr> = self
            .within(target)
            .filter(|(c, v)| {
                **c != target
                    && (!subnet_only || c.len < key_len)
                    && v.iter().any(|e| !e.reset && e.jail == jail)
            })
            .map(|(c, _)| *c)
            .collect();
        at_keys.insert(0, target);
        for &c in &at_keys {
            self.record_reset(c, jail, at);
        }
        (n, at_keys)
    }

    /// The jails with bans of `target`, of the prefixes inside it or of those that hold it
    /// (sorted): a jail no longer configured among them, whose bans still count across
    /// jails until their window ends.
    pub fn jails_of(&self, target: Cidr) -> Vec<String> {
        let mut v: Vec<String> = self
            .within(target)
            .map(|(_, v)| v)
            .chain(self.holders(target, 0).map(|(_, v)| v))
            .flatten()
            .filter(|e| !e.reset)
            .map(|e| e.jail.clone())
            .collect();
        v.sort();
        v.dedup();
        v
    }

    /// The entries of the prefixes that hold `target`, from `from` bits up to (not
    /// including) its own length.
    fn holders(&self, target: Cidr, from: u8) -> impl Iterator<Item = (Cidr, &Vec<Entry>)> {
        (from.min(target.len)..target.len)
            .filter_map(move |len| Cidr::new(target.addr, len))
            .filter_map(|c| self.entries.get(&c).map(|v| (c, v)))
    }

    /// The entries of `target` and of the prefixes inside it.
    fn within(&self, target: Cidr) -> impl Iterator<Item = (&Cidr, &Vec<Entry>)> {
        let hi = Cidr {
            addr: target.last(),
            len: 128,
        };
        self.entries
            .range(target..=hi)
            .filter(move |(c, _)| target.covers(c))
    }

    /// Distinct offenders strictly inside `wide` banned after `since` (in `jail`, or any). An
    /// offender is a prefix of `key_len` bits (the jail's `v4_prefix` or `v6_prefix`): the
    /// narrower prefixes banned inside one (a ban narrowed around an ignored address, its
    /// pieces) are that one offender, not several (review 28: 64 pieces of one /64 made a
    /// subnet ban of the /48 at the next offender).
    pub fn offenders_within(
        &self,
        wide: Cidr,
        jail: Option<&str>,
        since: Millis,
        key_len: u8,
    ) -> usize {
        // (an offender pardoned since, by a manual unban, is none: it counted toward the
        // subnet ban, review 38)
        let mut keys: Vec<Cidr> = self
            .within(wide)
            .filter(|(c, v)| {
                c.len > wide.len
                    && v.iter()
                        .any(|e| !e.reset && e.at > since && jail.is_none_or(|j| j == e.jail))
                    && self.count(**c, jail, since) > 0
            })
            .map(|(c, _)| {
                if c.len > key_len && key_len > wide.len {
                    Cidr::new(c.addr, key_len).unwrap_or(*c)
                } else {
                    *c
                }
            })
            .collect();
        keys.sort();
        keys.dedup();
        keys.len()
    }

    /// Forgets events at or before `before`.
    pub fn prune(&mut self, before: Millis) {
        self.entries.retain(|_, v| {
            v.retain(|e| e.at > before);
            !v.is_empty()
        });
    }

    /// Number of offenders remembered.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// Everything the ban policy needs of a jail.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct JailPolicy {
    /// Ban lengths.
    pub ban: BanPolicy,
    /// Widening to a subnet.
    pub subnet: Option<SubnetBan>,
}

/// A ban as carried out, with what was needed to decide it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sentence {
    /// The ban (final length and reason), or an unban of a narrower ban that a subnet ban
    /// now covers.
    pub decisions: Vec<Decision>,
    /// The n-th ban of the offender within the window, per ban decision in `decisions`.
    pub counts: Vec<u32>,
    /// Why a subnet ban was narrowed or skipped, for the log.
    pub notes: Vec<String>,
}

/// The end of a ban of `p` that replaces the `covered` bans inside it: `until`, or the
/// latest end among them when one outlasts it (a replaced ban, a permanent one say, must
/// not be lifted early when the prefix ends), with a note.
pub fn outlast(
    notes: &mut Vec<String>,
    p: Cidr,
    until: Millis,
    covered: &[(Cidr, Millis)],
) -> Millis {
    match covered.iter().max_by_key(|(_, u)| *u) {
        Some(&(c, u)) if u > until => {
            notes.push(format!(
                "ban of {p} lengthened to the end of the longer ban of {c} it replaces"
            ));
            u
        }
        _ => until,
    }
}

/// Turns a tracker's `Ban` decision of `jail` into the bans to carry out: its length from the
/// jail's policy and the offender's `history` (which records it), and maybe a subnet ban
/// (the narrower bans of the jail it covers are lifted, as `Unban` decisions). Updates the
/// jail's tracker to match. `trigger` is the address whose failure made the ban: when the
/// offender's prefix (`v4_prefix`, `v6_prefix`) holds a never-ban address (an own address in
/// the same /64, an ignored one), the ban shrinks to the widest prefix around `trigger` that
/// holds none. `jitter` is a random number. Any other decision is returned as is.
pub fn sentence(
    jail: &mut Jail,
    history: &mut History,
    d: Decision,
    trigger: std::net::IpAddr,
    jitter: u64,
) -> Sentence {
    let Decision::Ban {
        addr,
        at,
        failures,
        reason,
        ..
    } = d
    else {
        return Sentence {
            decisions: vec![d],
            counts: vec![],
            notes: vec![],
        };
    };
    let name = jail.name().to_string();
    let policy = jail.settings().policy.clone();
    let mut notes = Vec::new();
    // the offender, before any narrowing: its bans are counted under it
    let key = addr;
    let addr = match jail.settings().ignore.check_prefix(addr) {
        Some(why) if !addr.is_host() => {
            jail.tracker_mut().unban(addr);
            let to = shrink(&jail.settings().ignore, addr, trigger);
            // (the address that failed may itself be one never banned: an own address with
            // `ignore_self = false` counts but is not banned, and the note said the ban was
            // narrowed to it, a review found)
            if let Some(own) = jail.settings().ignore.check_prefix(to) {
                // no ban: none recorded in the history either (an escalation counted the
                // ban that was never made, a review found)
                notes.push(format!(
                    "ban of {addr} not made: {addr} holds an address never banned ({why}), and so is {trigger}, whose failure made it ({own})"
                ));
                return Sentence {
                    decisions: vec![],
                    counts: vec![],
                    notes,
                };
            }
            notes.push(format!(
                "ban of {addr} narrowed to {to}: {addr} holds an address never banned ({why})"
            ));
            to
        }
        _ => addr,
    };
    let scope = (!policy.ban.across_jails()).then_some(name.as_str());
    let since = at.saturating_sub(policy.ban.window());
    let prior = history.count(key, scope, since);
    let t = policy.ban.terms(prior, at, jitter, reason);
    history.record_ban(addr, &name, at);
    // a prefix (v4_prefix/v6_prefix) replaces the narrower bans inside it (a manual or
    // fleet ban of one address): interval sets refuse overlapping elements. It lasts at
    // least as long as each of them: a replaced ban never ends early
    let covered = if addr.is_host() {
        Vec::new()
    } else {
        jail.tracker_mut().take_covered_until(addr)
    };
    let until = outlast(&mut notes, addr, t.until, &covered);
    let first = jail.tracker_mut().ban(addr, at, until, failures);
    let first = match first {
        Decision::Ban {
            addr,
            at,
            until,
            failures,
            ..
        } => Decision::Ban {
            addr,
            at,
            until,
            failures,
            reason: t.reason,
        },
        other => other,
    };
    let mut decisions: Vec<Decision> = covered
        .into_iter()
        .map(|(c, _)| Decision::Unban { addr: c, at })
        .collect();
    decisions.push(first);
    let mut out = Sentence {
        decisions,
        counts: vec![t.count],
        notes,
    };
    let Some(sb) = &policy.subnet else {
        return out;
    };
    let subnet_scope = (!policy.ban.across_jails()).then_some(name.as_str());
    let key_len = jail.settings().tracker.key_len(addr.addr.is_ipv4());
    let target = match sb.target(
        history,
        subnet_scope,
        addr,
        at,
        &jail.settings().ignore,
        key_len,
    ) {
        SubnetOutcome::None => return out,
        SubnetOutcome::Ban(c) => c,
        SubnetOutcome::Shrunk { wanted, to, why } => {
            out.notes.push(format!(
                "subnet ban of {wanted} narrowed to {to}: {wanted} holds an address never banned ({why})"
            ));
            to
        }
        SubnetOutcome::Skipped { wanted, why } => {
            out.notes.push(format!(
                "subnet ban of {wanted} skipped: it holds an address never banned ({why}), and so does every narrower prefix above {addr}"
            ));
            return out;
        }
    };
    if jail
        .tracker()
        .covering_ban(target)
        .is_some_and(|c| c != target)
    {
        return out; // a wider ban already stands
    }
    let covered = jail.tracker_mut().take_covered_until(target);
    for &(c, _) in &covered {
        out.decisions.push(Decision::Unban { addr: c, at });
    }
    let prior = history.count_subnet(target, scope, since, key_len);
    let t = policy.ban.terms(prior, at, jitter, BanReason::Subnet);
    history.record_ban(target, &name, at);
    let until = outlast(&mut out.notes, target, t.until, &covered);
    let d = jail.tracker_mut().ban(target, at, until, failures);
    if let Decision::Ban {
        addr,
        at,
        until,
        failures,
        ..
    } = d
    {
        out.decisions.push(Decision::Ban {
            addr,
            at,
            until,
            failures,
            reason: if t.reason == BanReason::Increment {
                BanReason::Increment
            } else {
                BanReason::Subnet
            },
        });
        out.counts.push(t.count);
    }
    out
}

/// The widest prefix inside `wide` that holds `ip` and nothing `ignore` protects (at worst
/// `ip` alone).
pub fn shrink(ignore: &IgnoreList, wide: Cidr, ip: std::net::IpAddr) -> Cidr {
    let host = Cidr::host(ip);
    (wide.len..host.len)
        .filter_map(|l| Cidr::new(host.addr, l))
        .find(|c| ignore.check_prefix(*c).is_none())
        .unwrap_or(host)
}

/// How much of a prefix must not be banned, for [`split_around`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// None of it.
    Free,
    /// Some of it.
    Mixed,
    /// All of it.
    Protected,
}

impl Part {
    /// `p` against the protected prefixes `regions`.
    pub fn against(p: Cidr, regions: &[Cidr]) -> Part {
        if regions.iter().any(|r| r.covers(&p)) {
            Part::Protected
        } else if regions.iter().any(|r| r.overlaps(&p)) {
            Part::Mixed
        } else {
            Part::Free
        }
    }
}

/// The widest prefixes inside `wide` that `part` says are free, covering the rest of it:
/// `wide` cut around what must never be banned (a ban made before an `ignore` entry or an
/// own address inside it appeared; a `deny` entry). A prefix all protected is left out at
/// once: cut down to its addresses, an ignored /64 inside a /48 took 2^64 steps. `None`
/// when that takes more than `max` prefixes (many protected addresses scattered inside a
/// wide prefix); empty when all of it is protected.
pub fn split_around(wide: Cidr, part: impl Fn(Cidr) -> Part, max: usize) -> Option<Vec<Cidr>> {
    let mut out = Vec::new();
    let mut todo = vec![wide];
    while let Some(p) = todo.pop() {
        let here = part(p);
        if here == Part::Free {
            out.push(p);
            if out.len() > max {
                return None;
            }
        } else if here == Part::Mixed && !p.is_host() {
            // the two halves; the upper one: the lower one's address with the next bit set
            let len = p.len + 1;
            let lower = Cidr::new(p.addr, len).expect("shorter than a host");
            let upper = Cidr::new(p.last(), len).expect("shorter than a host");
            todo.push(upper);
            todo.push(lower);
        }
    }
    out.sort();
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const H: Millis = 3_600_000;
    const D: Millis = 24 * H;

    fn inc(factor: f64, max: Millis, window: Millis) -> BanPolicy {
        BanPolicy {
            bantime: Some(H),
            increment: Some(Increment {
                factor,
                max,
                window,
                across_jails: false,
            }),
            jitter_percent: 0,
            permanent_after: None,
        }
    }

    fn len(p: &BanPolicy, prior: u32) -> Millis {
        p.terms(prior, 1000, 0, BanReason::Failures).until - 1000
    }

    #[test]
    fn split_around_leaves_out_what_is_protected_and_covers_the_rest() {
        let ignored = c("203.0.113.5");
        let around = |r: Cidr| move |p: Cidr| Part::against(p, &[r]);
        let parts = split_around(c("203.0.113.0/24"), around(ignored), 64).unwrap();
        assert_eq!(parts.len(), 8, "{parts:?}");
        assert!(parts.contains(&c("203.0.113.128/25")) && parts.contains(&c("203.0.113.4/32")));
        assert!(parts.iter().all(|p| !p.overlaps(&ignored)));
        // every other address of the /24 is still covered, once
        for n in 0..=255u8 {
            let a: std::net::IpAddr = format!("203.0.113.{n}").parse().unwrap();
            let k = parts.iter().filter(|p| p.contains(a)).count();
            assert_eq!(k, usize::from(n != 5), "{a}");
        }
        // an IPv6 /64 around one address: 64 prefixes; more than `max`: None
        let one = c("2001:db8:1:2::7");
        let v6 = split_around(c("2001:db8:1:2::/64"), around(one), 64).unwrap();
        assert_eq!(v6.len(), 64);
        assert_eq!(split_around(c("2001:db8:1:2::/64"), around(one), 63), None);
        // an ignored /64 inside a /48: 16 prefixes, at once (it was cut down to its 2^64
        // addresses, one by one)
        let net = c("2001:db8:1:2::/64");
        let parts = split_around(c("2001:db8:1::/48"), around(net), 256).unwrap();
        assert_eq!(parts.len(), 16, "{parts:?}");
        assert!(parts.iter().all(|p| !p.overlaps(&net)));
        // all of it protected: nothing; nothing protected: itself
        assert_eq!(
            split_around(c("203.0.113.0/24"), |_| Part::Protected, 64),
            Some(vec![])
        );
        assert_eq!(
            split_around(c("203.0.113.0/24"), |_| Part::Free, 64),
            Some(vec![c("203.0.113.0/24")])
        );
    }

    #[test]
    fn weights_take_the_rule_weight_then_the_larger_user_weight() {
        let rw = vec![("root-login".to_string(), 5), ("scan".to_string(), 0)];
        let uw = vec![(b"admin".to_vec(), 3), (b"root".to_vec(), 2)];
        assert_eq!(weight(1, "root-login", None, &rw, &uw), 5);
        assert_eq!(weight(1, "root-login", Some(b"root"), &rw, &uw), 5);
        assert_eq!(weight(1, "other", Some(b"admin"), &rw, &uw), 3);
        assert_eq!(weight(1, "other", Some(b"bob"), &rw, &uw), 1);
        // 0 turns a rule off, also for weighty users
        assert_eq!(weight(1, "scan", Some(b"admin"), &rw, &uw), 0);
        assert_eq!(weight(0, "other", Some(b"admin"), &rw, &uw), 0);
        // a rule the filter does not count can be made to count
        assert_eq!(weight(0, "root-login", None, &rw, &uw), 5);
    }

    #[test]
    fn escalation_doubles_up_to_the_cap() {
        let p = inc(2.0, 4 * H + 30 * 60_000, 30 * D);
        let got: Vec<Millis> = (0..6).map(|n| len(&p, n)).collect();
        assert_eq!(
            got,
            vec![
                H,
                2 * H,
                4 * H,
                4 * H + 1_800_000,
                4 * H + 1_800_000,
                4 * H + 1_800_000
            ]
        );
        let t = p.terms(0, 0, 0, BanReason::Failures);
        assert_eq!((t.count, t.reason), (1, BanReason::Failures));
        let t = p.terms(2, 0, 0, BanReason::Failures);
        assert_eq!((t.count, t.reason), (3, BanReason::Increment));
        // huge counts do not overflow
        assert_eq!(len(&p, u32::MAX), 4 * H + 1_800_000);
    }

    #[test]
    fn forever_and_permanent_after() {
        let p = BanPolicy {
            bantime: None,
            ..BanPolicy::default()
        };
        let t = p.terms(0, 5, 0, BanReason::Failures);
        assert!(t.permanent() && t.reason == BanReason::Failures);
        let p = BanPolicy {
            permanent_after: Some(3),
            ..inc(2.0, 30 * D, 30 * D)
        };
        assert_eq!(len(&p, 0), H);
        assert_eq!(len(&p, 1), 2 * H);
        let t = p.terms(2, 5, 0, BanReason::Failures);
        assert!(t.permanent() && t.count == 3 && t.reason == BanReason::Increment);
        assert!(p.terms(7, 5, 0, BanReason::Failures).permanent());
    }

    #[test]
    fn jitter_adds_at_most_its_percentage() {
        let p = BanPolicy {
            jitter_percent: 10,
            ..BanPolicy::default()
        };
        assert_eq!(p.terms(0, 0, 0, BanReason::Failures).until, H);
        assert_eq!(p.terms(0, 0, 10_000, BanReason::Failures).until, H + H / 10);
        assert_eq!(p.terms(0, 0, 5_000, BanReason::Failures).until, H + H / 20);
    }

    fn c(s: &str) -> Cidr {
        Cidr::parse(s).unwrap()
    }

    #[test]
    fn forget_pardons_the_offender_its_holders_and_the_prefixes_inside_it() {
        let mut h = History::new();
        // nothing banned: nothing to forget, nothing recorded
        assert_eq!(
            h.forget(c("192.0.2.7"), "sshd", 32, 0, 50, true),
            (0, vec![])
        );
        assert_eq!(h.count(c("192.0.2.7"), None, 0), 0);
        h.record_ban(c("192.0.2.7"), "sshd", 10);
        h.record_ban(c("192.0.2.7"), "sshd", 20);
        h.record_ban(c("192.0.2.7"), "web", 25);
        assert_eq!(h.count(c("192.0.2.7"), None, 0), 3);
        // in the jail alone: its two bans; across jails, web's one still counts
        assert_eq!(
            h.forget(c("192.0.2.7"), "sshd", 32, 0, 30, true),
            (2, vec![c("192.0.2.7")])
        );
        assert_eq!(h.count(c("192.0.2.7"), Some("sshd"), 0), 0);
        assert_eq!(h.count(c("192.0.2.7"), Some("web"), 0), 1);
        assert_eq!(h.count(c("192.0.2.7"), None, 0), 1);
        // the next ban is the first again
        h.record_ban(c("192.0.2.7"), "sshd", 40);
        assert_eq!(h.count(c("192.0.2.7"), Some("sshd"), 0), 1);
        assert_eq!(h.count(c("192.0.2.7"), None, 0), 2);
        // outside the window: nothing counted, nothing recorded
        assert_eq!(h.forget(c("192.0.2.7"), "sshd", 32, 45, 50, true).0, 0);
        // an address of a /64 that was banned as the offender (v6_prefix 64): the /64's
        let net = c("2001:db8:5:6::/64");
        h.record_ban(net, "sshd", 100);
        h.record_ban(net, "sshd", 200);
        let addr = c("2001:db8:5:6::9");
        assert_eq!(h.forget(addr, "sshd", 64, 0, 300, true), (2, vec![addr]));
        assert_eq!(h.count(net, Some("sshd"), 0), 0);
        // a /48 over bans of prefixes inside it: each keeps a reset of its own
        let inner = c("2001:db8:7:1::/64");
        h.record_ban(inner, "sshd", 400);
        let wide = c("2001:db8:7::/48");
        assert_eq!(
            h.forget(wide, "sshd", 64, 0, 500, true),
            (1, vec![wide, inner])
        );
        assert_eq!(h.count(inner, Some("sshd"), 0), 0);
        // a host of a subnet ban, never banned itself: the subnet is other offenders', not
        // its to forget
        let sub = c("203.0.113.0/24");
        h.record_ban(c("203.0.113.1"), "sshd", 600);
        h.record_ban(sub, "sshd", 700);
        assert_eq!(
            h.forget(c("203.0.113.9"), "sshd", 32, 0, 800, true),
            (0, vec![])
        );
        assert_eq!(h.count(sub, Some("sshd"), 0), 2);
        // a subnet's own bans alone (`unban --all` lifting it): its offenders keep theirs
        let host = c("203.0.113.1");
        assert_eq!(h.count(host, Some("sshd"), 0), 1);
        assert_eq!(h.forget(sub, "sshd", 32, 0, 850, false), (1, vec![sub]));
        assert_eq!(h.count(host, Some("sshd"), 0), 1);
        assert_eq!(h.count_subnet(sub, Some("sshd"), 0, 32), 0);
        // the jails with bans of it, inside it or around it
        h.record_ban(c("203.0.113.9"), "mail", 900);
        assert_eq!(h.jails_of(c("203.0.113.9")), ["mail", "sshd"]);
        assert_eq!(h.jails_of(c("192.0.2.7")), ["sshd", "web"]);
    }

    /// The events of one millisecond count in the order they were recorded: a manual unban
    /// in the millisecond of the ban it lifts cancels it (a reset sorted first left the ban
    /// counted: a CI failure, twice), also when the ban is recorded under another prefix (a
    /// subnet ban and the host that made it, review 38), and a ban in the millisecond of an
    /// unban before it counts (review 39).
    #[test]
    fn the_events_of_one_millisecond_count_in_their_order() {
        let a = c("203.0.113.5");
        let mut h = History::new();
        h.record_ban(a, "sshd", 50);
        h.record_reset(a, "sshd", 50);
        assert_eq!(h.count(a, Some("sshd"), 0), 0);
        let sub = c("198.51.100.0/24");
        h.record_ban(c("198.51.100.9"), "sshd", 100);
        h.record_ban(sub, "sshd", 100);
        h.record_reset(sub, "sshd", 100);
        assert_eq!(h.count(sub, Some("sshd"), 0), 0);
        // a ban in the millisecond of an unban before it counts
        h.record_reset(a, "sshd", 60);
        h.record_ban(a, "sshd", 60);
        assert_eq!(h.count(a, Some("sshd"), 0), 1);
    }

    /// A pardoned offender no longer counts toward a subnet ban (review 38).
    #[test]
    fn a_pardoned_offender_is_no_subnet_offender() {
        let mut h = History::new();
        let sub = c("198.51.100.0/24");
        h.record_ban(c("198.51.100.1"), "sshd", 10);
        h.record_ban(c("198.51.100.2"), "sshd", 20);
        assert_eq!(h.offenders_within(sub, Some("sshd"), 0, 32), 2);
        assert_eq!(h.forget(c("198.51.100.2"), "sshd", 32, 0, 30, true).0, 1);
        assert_eq!(h.offenders_within(sub, Some("sshd"), 0, 32), 1);
        // banned again after: an offender again
        h.record_ban(c("198.51.100.2"), "sshd", 40);
        assert_eq!(h.offenders_within(sub, Some("sshd"), 0, 32), 2);
        // v6: a pardon of an address of an offender's /64
        let wide = c("2001:db8:9::/48");
        h.record_ban(c("2001:db8:9:1::/64"), "sshd", 50);
        assert_eq!(h.offenders_within(wide, Some("sshd"), 0, 64), 1);
        h.forget(c("2001:db8:9:1::5"), "sshd", 64, 0, 60, true);
        assert_eq!(h.offenders_within(wide, Some("sshd"), 0, 64), 0);
    }

    #[test]
    fn a_subnet_counts_its_own_bans_and_pieces_not_its_offenders() {
        let mut h = History::new();
        let sub = c("198.51.100.0/24");
        h.record_ban(c("198.51.100.1"), "sshd", 10);
        h.record_ban(c("198.51.100.2"), "sshd", 20);
        h.record_ban(c("198.51.100.2"), "sshd", 30);
        // the offenders that make the first subnet ban are not its earlier bans
        assert_eq!(h.count_subnet(sub, Some("sshd"), 0, 32), 0);
        assert_eq!(h.count(sub, Some("sshd"), 0), 3);
        h.record_ban(sub, "sshd", 40);
        // a second one, narrowed around an ignored address (a piece of it recorded)
        h.record_ban(c("198.51.100.128/25"), "sshd", 50);
        assert_eq!(h.count_subnet(sub, Some("sshd"), 0, 32), 2);
        // v6: offenders of /64 inside a /48
        let wide = c("2001:db8:9::/48");
        h.record_ban(c("2001:db8:9:1::/64"), "sshd", 60);
        h.record_ban(c("2001:db8:9:2::5"), "sshd", 70);
        assert_eq!(h.count_subnet(wide, Some("sshd"), 0, 64), 0);
    }

    #[test]
    fn history_counts_within_the_window_per_jail_and_resets() {
        let mut h = History::new();
        let a = c("203.0.113.5");
        h.record_ban(a, "sshd", 10);
        h.record_ban(a, "sshd", 20);
        h.record_ban(a, "web", 25);
        assert_eq!(h.count(a, Some("sshd"), 0), 2);
        assert_eq!(h.count(a, None, 0), 3);
        assert_eq!(h.count(a, Some("sshd"), 10), 1, "window");
        // the same ban recorded twice (a restart replaying it) counts once
        h.record_ban(a, "sshd", 20);
        assert_eq!(h.count(a, Some("sshd"), 0), 2);
        h.record_reset(a, "sshd", 30);
        assert_eq!(h.count(a, Some("sshd"), 0), 0);
        assert_eq!(
            h.count(a, Some("web"), 0),
            1,
            "a reset in sshd leaves web alone"
        );
        assert_eq!(
            h.count(a, None, 0),
            1,
            "across jails, a reset in sshd forgets sshd's bans only"
        );
        h.record_ban(a, "sshd", 40);
        assert_eq!(h.count(a, Some("sshd"), 0), 1);
        assert_eq!(h.count(a, None, 0), 2);
        h.prune(35);
        assert_eq!(h.count(a, None, 0), 1);
    }

    #[test]
    fn last_touched_sees_the_address_and_the_prefixes_holding_it_in_one_jail() {
        let mut h = History::new();
        let a = c("203.0.113.5");
        assert_eq!(h.last_touched(a, "sshd"), None);
        h.record_ban(a, "sshd", 10);
        h.record_ban(c("203.0.113.0/24"), "sshd", 30);
        h.record_reset(a, "web", 50);
        h.record_ban(c("203.0.114.0/24"), "sshd", 60);
        assert_eq!(h.last_touched(a, "sshd"), Some(30));
        assert_eq!(h.last_touched(a, "web"), Some(50));
        assert_eq!(h.last_touched(c("203.0.113.6"), "sshd"), Some(30));
        assert_eq!(h.last_touched(c("203.0.112.6"), "sshd"), None);
        let v6 = c("2001:db8:5:6::/64");
        h.record_ban(c("2001:db8:5::/48"), "sshd", 70);
        assert_eq!(h.last_touched(v6, "sshd"), Some(70));
        assert_eq!(h.last_touched(c("2001:db8:6::1"), "sshd"), None);
    }

    #[test]
    fn subnet_ban_counts_distinct_offenders_and_never_covers_ignored() {
        let sb = SubnetBan {
            v4: 24,
            v6: 48,
            after: 3,
            within: D,
        };
        let mut h = History::new();
        let none = IgnoreList::new(vec![], vec![]);
        for (i, a) in ["198.51.100.1", "198.51.100.1", "198.51.100.2"]
            .iter()
            .enumerate()
        {
            h.record_ban(c(a), "sshd", i as Millis);
        }
        assert_eq!(
            sb.target(&h, Some("sshd"), c("198.51.100.2"), 10, &none, 32),
            SubnetOutcome::None
        );
        h.record_ban(c("198.51.100.9"), "sshd", 5);
        assert_eq!(
            sb.target(&h, Some("sshd"), c("198.51.100.9"), 10, &none, 32),
            SubnetOutcome::Ban(c("198.51.100.0/24"))
        );
        // out of `within`
        assert_eq!(
            sb.target(&h, Some("sshd"), c("198.51.100.9"), D + 3, &none, 32),
            SubnetOutcome::None
        );
        // other jail
        assert_eq!(
            sb.target(&h, Some("web"), c("198.51.100.9"), 10, &none, 32),
            SubnetOutcome::None
        );
        // an ignored address in the upper half: shrunk to the lower /25
        let ig = IgnoreList::new(vec![c("198.51.100.200")], vec![]);
        assert!(matches!(
            sb.target(&h, Some("sshd"), c("198.51.100.9"), 10, &ig, 32),
            SubnetOutcome::Shrunk { to, .. } if to == c("198.51.100.0/25")
        ));
        // an own address right next to the offender: skipped
        let own = IgnoreList::new(vec![], vec!["198.51.100.8".parse().unwrap()]);
        assert!(matches!(
            sb.target(&h, Some("sshd"), c("198.51.100.9"), 10, &own, 32),
            SubnetOutcome::Skipped { .. }
        ));
        // v6 /64 offenders inside a /48
        let mut h = History::new();
        for i in 1..=3u16 {
            h.record_ban(
                Cidr::new(format!("2001:db8:5:{i}::1").parse().unwrap(), 64).unwrap(),
                "sshd",
                1,
            );
        }
        let last = Cidr::new("2001:db8:5:3::".parse().unwrap(), 64).unwrap();
        assert_eq!(
            sb.target(&h, None, last, 2, &none, 64),
            SubnetOutcome::Ban(c("2001:db8:5::/48"))
        );
        // review 28: one /64 cut into pieces (around an ignored address) is one offender,
        // and so is a ban narrowed inside it; v6_prefix = 128 counts each address
        let mut h = History::new();
        h.record_ban(c("2001:db8:6:1::/64"), "sshd", 1);
        for p in [
            "2001:db8:6:1::/65",
            "2001:db8:6:1:8000::/66",
            "2001:db8:6:1:c000::/67",
        ] {
            h.record_ban(c(p), "sshd", 2);
        }
        h.record_ban(c("2001:db8:6:2::/66"), "sshd", 3);
        assert_eq!(h.offenders_within(c("2001:db8:6::/48"), None, 0, 64), 2);
        assert_eq!(
            sb.target(&h, None, c("2001:db8:6:2::/66"), 4, &none, 64),
            SubnetOutcome::None
        );
        assert_eq!(h.offenders_within(c("2001:db8:6::/48"), None, 0, 128), 5);
    }

    /// Review 28: an offender whose /64 holds an ignored address is banned as a narrower
    /// prefix, which depends on the address that failed; its bans are counted under the
    /// /64 all the same (each return was a first ban). A reset of a prefix inside it (a
    /// manual unban of its pieces) resets it.
    #[test]
    fn bans_narrowed_inside_an_offender_count_as_its_own() {
        let mut h = History::new();
        let key = c("2001:db8:5:6::/64");
        h.record_ban(c("2001:db8:5:6:8000::/65"), "sshd", 10);
        h.record_ban(c("2001:db8:5:6:4000::/66"), "sshd", 20);
        assert_eq!(h.count(key, Some("sshd"), 0), 2);
        // pieces of one moment count once
        h.record_ban(c("2001:db8:5:6:2000::/67"), "sshd", 30);
        h.record_ban(c("2001:db8:5:6:1000::/68"), "sshd", 30);
        assert_eq!(h.count(key, Some("sshd"), 0), 3);
        // a narrower key does not see the wider events
        assert_eq!(h.count(c("2001:db8:5:6:8000::/65"), Some("sshd"), 0), 1);
        h.record_reset(c("2001:db8:5:6:8000::/65"), "sshd", 40);
        assert_eq!(h.count(key, Some("sshd"), 0), 0);
        h.record_ban(c("2001:db8:5:6:8000::/65"), "sshd", 50);
        assert_eq!(h.count(key, Some("sshd"), 0), 1);
    }

    #[test]
    fn an_offender_prefix_holding_an_own_address_shrinks_around_the_trigger() {
        let own = IgnoreList::new(vec![], vec!["2001:db8:a::1".parse().unwrap()]);
        let p64 = c("2001:db8:a::/64");
        let t = "2001:db8:a::12".parse().unwrap();
        assert_eq!(shrink(&own, p64, t), c("2001:db8:a::10/124"));
        let none = IgnoreList::new(vec![], vec![]);
        assert_eq!(shrink(&none, p64, t), p64);
        // next to the own address: the address alone
        let t = "2001:db8:a::0".parse().unwrap();
        assert_eq!(shrink(&own, p64, t), Cidr::host(t));
    }

    /// An sshd jail's settings that ban at one failure for 2 h.
    fn one_failure_settings(ignore: IgnoreList, policy: JailPolicy) -> crate::jail::JailSettings {
        crate::jail::JailSettings {
            name: "sshd".into(),
            tracker: crate::track::TrackerConfig {
                maxretry: 1,
                findtime: H,
                bantime: 2 * H,
                max_tracked: 100,
                ..Default::default()
            },
            mode: crate::filter::Mode::Normal,
            transport_cut: crate::filter::cut::DEFAULT_TRANSPORT_CUT,
            user_weights: vec![],
            rule_weights: vec![],
            ignore,
            policy,
        }
    }

    /// A prefix ban over an own address whose failures count (`ignore_self = false`),
    /// made by that address's own failure: the note says it is not made (it said "narrowed
    /// to" the own address, a review found).
    #[test]
    fn a_prefix_ban_made_by_an_own_address_says_it_is_not_made() {
        let ignore = IgnoreList::new(vec![], vec!["192.0.2.1".parse().unwrap()]).counting_own();
        let mut j = Jail::new(one_failure_settings(ignore, JailPolicy::default()), vec![]);
        let mut notes = |at: Millis, trigger: &str| {
            let d = Decision::Ban {
                addr: c("192.0.2.0/24"),
                at,
                until: at + 2 * H,
                failures: 1,
                reason: BanReason::Failures,
            };
            let t = trigger.parse().unwrap();
            let s = sentence(&mut j, &mut History::default(), d, t, 0);
            (s.decisions.is_empty(), s.notes)
        };
        let (none, n) = notes(1000, "192.0.2.1");
        assert!(none, "a ban was made");
        assert_eq!(n.len(), 1, "{n:?}");
        assert!(
            n[0].starts_with("ban of 192.0.2.0/24 not made:")
                && n[0].contains("and so is 192.0.2.1"),
            "{n:?}"
        );
        // made by another address, it is narrowed around the own one
        let (none, n) = notes(2000, "192.0.2.200");
        assert!(!none);
        assert!(
            n[0].starts_with("ban of 192.0.2.0/24 narrowed to 192.0.2.128/25"),
            "{n:?}"
        );
    }

    #[test]
    fn a_prefix_ban_never_ends_a_replaced_ban_early() {
        // a /64 (v6_prefix) over a permanent manual ban and a long ban of one address inside
        // it: they are replaced (interval sets), but the /64 lasts as long as the longest,
        // else the permanent ban would end with the /64
        for (inner, want) in [(FOREVER, FOREVER), (50 * H, 50 * H), (H / 2, 2 * H)] {
            let policy = JailPolicy {
                ban: BanPolicy {
                    bantime: Some(2 * H),
                    ..Default::default()
                },
                subnet: None,
            };
            let settings = one_failure_settings(IgnoreList::new(vec![], vec![]), policy);
            let mut j = Jail::new(settings, vec![]);
            let one = c("2001:db8:a::7");
            j.tracker_mut().ban(one, 0, inner, 0);
            let mut h = History::default();
            let p64 = c("2001:db8:a::/64");
            let d = Decision::Ban {
                addr: p64,
                at: 1000,
                until: 1000 + 2 * H,
                failures: 1,
                reason: BanReason::Failures,
            };
            let s = sentence(&mut j, &mut h, d, "2001:db8:a::9".parse().unwrap(), 0);
            let end = if want == 2 * H { 1000 + 2 * H } else { want };
            assert_eq!(
                s.decisions,
                vec![
                    Decision::Unban {
                        addr: one,
                        at: 1000
                    },
                    Decision::Ban {
                        addr: p64,
                        at: 1000,
                        until: end,
                        failures: 1,
                        reason: BanReason::Failures,
                    }
                ],
                "inner ban until {inner}"
            );
            assert_eq!(j.tracker().ban_until_of(p64), Some(end));
            assert_eq!(j.tracker().ban_until_of(one), None);
            // the address stays banned as long as its own ban said
            assert!(j.tracker().ban_until(one.addr).is_some_and(|u| u >= inner));
        }
    }

    proptest! {
        /// Escalation never shortens a ban as offences repeat, never passes the cap, and
        /// the first ban is the base length.
        #[test]
        fn prop_escalation_is_monotone_and_capped(
            factor in 1.0f64..5.0,
            base in 1i64..10_000_000,
            max_mul in 1i64..100,
            n in 0u32..200,
            after in proptest::option::of(1u32..10),
        ) {
            let max = base * max_mul;
            let p = BanPolicy {
                bantime: Some(base),
                increment: Some(Increment { factor, max, window: D, across_jails: false }),
                jitter_percent: 0,
                permanent_after: after,
            };
            let a = p.terms(n, 0, 0, BanReason::Failures);
            let b = p.terms(n + 1, 0, 0, BanReason::Failures);
            prop_assert!(b.until >= a.until);
            if !a.permanent() {
                prop_assert!(a.until <= max && a.until >= base);
                prop_assert!(after.is_none_or(|k| n + 1 < k));
            } else {
                prop_assert!(after.is_some_and(|k| n + 1 >= k));
            }
            if n == 0 && after != Some(1) {
                prop_assert_eq!(a.until, base);
            }
        }

        /// A subnet ban never covers an ignored, own or loopback address, whatever the
        /// offenders and the lists.
        #[test]
        fn prop_subnet_ban_never_covers_a_never_ban_address(
            offenders in proptest::collection::vec(any::<u32>(), 1..20),
            ignored in proptest::collection::vec((any::<u32>(), 16u8..=32), 0..5),
            own in proptest::collection::vec(any::<u32>(), 0..3),
            v4 in 8u8..32,
            prefix in 24u8..=32,
        ) {
            let sb = SubnetBan { v4, v6: 48, after: 2, within: D };
            let ig = IgnoreList::new(
                ignored.iter().map(|&(a, l)| Cidr::new(std::net::Ipv4Addr::from(a).into(), l).unwrap()).collect(),
                own.iter().map(|&a| std::net::Ipv4Addr::from(a).into()).collect(),
            );
            let mut h = History::new();
            let base = offenders[0] & 0xffff_0000;
            for (i, o) in offenders.iter().enumerate() {
                let ip = std::net::Ipv4Addr::from(base | (o & 0xffff)).into();
                let off = Cidr::new(ip, prefix).unwrap();
                h.record_ban(off, "j", i as Millis);
                match sb.target(&h, Some("j"), off, i as Millis, &ig, prefix) {
                    SubnetOutcome::Ban(t) | SubnetOutcome::Shrunk { to: t, .. } => {
                        prop_assert!(ig.check_prefix(t).is_none(), "{} covers a never-ban address", t);
                        prop_assert!(t.covers(&off) && t.len < off.len);
                    }
                    _ => {}
                }
            }
        }
    }
}

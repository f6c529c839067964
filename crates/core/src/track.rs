//! Per-jail failure tracking: a sliding window of weighted failures per address, and the
//! table of active bans.
//!
//! A [`Tracker`] turns the [`Failure`]s of one jail into [`Decision`]s. For each address
//! that failed recently it keeps the failures of the last `findtime`, sorted by event
//! time (so lines that arrive a little out of order still count), and bans the address
//! when their weights add up to `maxretry`. Bans live in a separate table ordered by
//! their end, so [`Tracker::expire`] and [`Tracker::next_expiry`] stay cheap with
//! hundreds of thousands of bans.
//!
//! # The window
//!
//! For an address whose newest failure happened at `t`, the window is the half-open
//! interval `(t - findtime, t]`: a failure exactly `findtime` older than the newest one
//! no longer counts. A failure that arrives late but still falls inside the window is
//! counted; one that falls before it is dropped. The window is always evaluated on the
//! failures' own times, never on `now`; `now` is only when a ban starts.
//!
//! # Memory
//!
//! An address's window never holds more than `maxretry - 1` failures (each weighs at
//! least 1, and reaching `maxretry` bans and clears it), kept inline for small
//! `maxretry`. The number of tracked addresses is capped by `max_tracked`; see
//! [`Tracker::record`] for how room is made. Bans are not capped.
//!
//! # Floods (DOSBAIL)
//!
//! When the cap is reached the tracker keeps the heavy hitters, not the newest: it evicts
//! the windows of least weight (then the oldest), and what it evicts goes into a
//! [`Sketch`](crate::sketch::Sketch), a Count-Min sketch with conservative update. An
//! address's count is its exact window plus the sketch's estimate of its evicted failures,
//! which is never too low: an address with `maxretry` failures within `findtime` is banned
//! however large the flood and in whatever order the lines come (see
//! [`crate::sketch`] for the bound on counting too much). Evicted failures count for
//! between `findtime` and twice `findtime`. Memory stays bounded: `max_tracked` windows plus
//! the sketch (`2 × 4 × width` bytes, 32 MiB at most, allocated at the first eviction).
//!
//! Time is always an argument: the tracker reads no clock, does no I/O and uses no
//! randomness. Its maps are ordered, so every result is a function of its inputs, and an
//! attacker cannot choose addresses that collide in a hash table.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use smallvec::SmallVec;

use crate::decision::{BanReason, Decision, Failure, Kind, Millis};
use crate::ignore::Cidr;
use crate::sketch::Sketch;

/// Failures kept inline per address before spilling to the heap: enough for
/// `maxretry <= 5`, the usual setting.
const INLINE_EVENTS: usize = 4;

/// The settings of one jail's tracker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackerConfig {
    /// Weighted failures within `findtime` that ban an address. 0 behaves like 1.
    pub maxretry: u32,
    /// Length of the sliding window, in milliseconds. Values below 1 behave like 1.
    pub findtime: Millis,
    /// How long a ban made by [`Tracker::record`] lasts, in milliseconds.
    pub bantime: Millis,
    /// Most addresses with an open window kept at once. 0 behaves like 1.
    pub max_tracked: usize,
    /// Failures of IPv4 addresses count per prefix of this length, and the ban covers it
    /// (32: per address).
    pub v4_prefix: u8,
    /// The same for IPv6 (default 64: a host rotating through its /64 is one offender).
    pub v6_prefix: u8,
}

/// Default failures that ban. fail2ban uses 5 failures in 10 minutes and a 10-minute ban;
/// we keep its threshold (people know it, and a user who mistypes a password 4 times is not
/// banned) but ban for 1 hour: password-guessing bots retry after 10 minutes, and the owner
/// cannot be locked out (own addresses, loopback and `ignore` are never banned). These
/// constants are the one source of the defaults: the configuration uses them too.
pub const DEFAULT_MAXRETRY: u32 = 5;
/// Default window, see [`DEFAULT_MAXRETRY`]: 10 minutes.
pub const DEFAULT_FINDTIME: Millis = 10 * 60_000;
/// Default ban length, see [`DEFAULT_MAXRETRY`]: 1 hour.
pub const DEFAULT_BANTIME: Millis = 60 * 60_000;
/// Default cap on addresses with an open window, per jail.
pub const DEFAULT_MAX_TRACKED: usize = 200_000;
/// Default `v4_prefix`: each IPv4 address is its own offender.
pub const DEFAULT_V4_PREFIX: u8 = 32;
/// Default `v6_prefix`: a /64, the smallest subnet a site is given.
pub const DEFAULT_V6_PREFIX: u8 = 64;

impl Default for TrackerConfig {
    /// [`DEFAULT_MAXRETRY`] failures in [`DEFAULT_FINDTIME`] ban for [`DEFAULT_BANTIME`];
    /// up to [`DEFAULT_MAX_TRACKED`] tracked addresses.
    fn default() -> Self {
        TrackerConfig {
            maxretry: DEFAULT_MAXRETRY,
            findtime: DEFAULT_FINDTIME,
            bantime: DEFAULT_BANTIME,
            max_tracked: DEFAULT_MAX_TRACKED,
            v4_prefix: DEFAULT_V4_PREFIX,
            v6_prefix: DEFAULT_V6_PREFIX,
        }
    }
}

impl TrackerConfig {
    fn findtime(&self) -> Millis {
        self.findtime.max(1)
    }

    fn cap(&self) -> usize {
        self.max_tracked.max(1)
    }

    /// The offender `ip` counts as: its prefix of `v4_prefix` or `v6_prefix` bits. A
    /// link-local address (fe80::/10, 169.254.0.0/16) counts alone: the same prefix is on
    /// every link, so `fe80::1%wg0` and `fe80::2%docker0` were one offender, and its /64 ban
    /// dropped the neighbours of every interface (review 28).
    pub fn key(&self, ip: IpAddr) -> Cidr {
        let ip = crate::addr::normalise(ip);
        let len = if crate::addr::is_link_local(ip) {
            if ip.is_ipv4() {
                32
            } else {
                128
            }
        } else {
            self.key_len(ip.is_ipv4())
        };
        Cidr::new(ip, len).expect("length within the family")
    }

    /// The length of the offenders' keys of one family (`v4_prefix` or `v6_prefix`, at
    /// most the family's width): a prefix banned shorter than it is a subnet ban, whose
    /// count is its own bans, not its offenders'.
    pub fn key_len(&self, v4: bool) -> u8 {
        key_len(v4, self.v4_prefix, self.v6_prefix)
    }
}

/// [`TrackerConfig::key_len`] of a jail's `v4_prefix` and `v6_prefix` (the configuration
/// keeps them apart from its tracker).
pub fn key_len(v4: bool, v4_prefix: u8, v6_prefix: u8) -> u8 {
    if v4 {
        v4_prefix.min(32)
    } else {
        v6_prefix.min(128)
    }
}

/// Counters describing a tracker, for status output and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TrackerStats {
    /// Addresses with an open window.
    pub tracked: usize,
    /// Addresses currently banned.
    pub banned: usize,
    /// Windows dropped, since the tracker was made, to keep within `max_tracked` while
    /// they could still have counted (stale windows dropped are not counted here).
    pub evicted: u64,
    /// Failures of banned addresses that were not counted.
    pub ignored_while_banned: u64,
    /// Failures counted (each [`Tracker::record`] that added to a window or banned), since
    /// the tracker was made: a caller tells a line that counted from one that did not (a
    /// repeat of its session, one too old) by this growing.
    pub counted: u64,
}

/// One counted failure in a window, with the session that wrote it.
///
/// 16 bytes, as before sessions were kept per failure: the session fills what was padding,
/// and the opener's credit (below) is the top bit of the weight, so a failure's weight
/// counts at most [`MAX_WEIGHT`] (more than any `maxretry` worth setting).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Event {
    time: Millis,
    /// The weight, and [`CREDIT`]: this failure was an `opener` whose `attempt` has not
    /// been seen yet (that attempt is the same event and is not counted again).
    bits: u32,
    /// Session of the failure, 0 when unknown.
    session: u32,
}

/// The credit bit of [`Event::bits`].
const CREDIT: u32 = 1 << 31;

/// The largest weight one failure counts for.
pub const MAX_WEIGHT: u32 = CREDIT - 1;

impl Event {
    fn new(time: Millis, weight: u32, kind: Kind, session: u32) -> Self {
        let credit = if kind == Kind::Opener { CREDIT } else { 0 };
        Event {
            time,
            bits: weight.min(MAX_WEIGHT) | credit,
            // (a closing line ends its attempt: nothing later is a repeat of it)
            session: if kind == Kind::Closing { 0 } else { session },
        }
    }

    fn weight(&self) -> u32 {
        self.bits & MAX_WEIGHT
    }
}

/// The open window of one address.
#[derive(Debug, Clone)]
struct Window {
    /// Counted failures, sorted by time (ties in arrival order). Never empty.
    events: SmallVec<[Event; INLINE_EVENTS]>,
}

/// Unties `events` from their session (a connect line, or a closing line ending its attempt):
/// no later line is a repeat of them, and none keeps an opener's credit. Whether there were any.
fn detach<'a>(events: impl Iterator<Item = &'a mut Event>) -> bool {
    let mut any = false;
    for e in events {
        e.session = 0;
        e.bits &= !CREDIT;
        any = true;
    }
    any
}

/// Whether a failure of `kind` in `session` repeats what the window already counted for
/// that session, among its failures after `cutoff`; takes the opener's credit when it
/// does.
///
/// Every failure in the window is remembered with its session, not only the last one: the
/// connections of one address interleave (a bot opens several at once), and a follow-up
/// of the first is still a repeat when the second counted in between.
fn repeats_session(w: &mut Window, kind: Kind, session: u32, cutoff: Millis) -> bool {
    if session == 0 {
        return false;
    }
    let mut same = w
        .events
        .iter_mut()
        .filter(|e| e.time > cutoff && e.session == session);
    match kind {
        // (held kinds reach the tracker only when released, as attempts; see jail::prepare)
        Kind::Attempt | Kind::Pending | Kind::Prelude => {
            match same.find(|e| e.bits & CREDIT != 0) {
                Some(e) => {
                    e.bits &= !CREDIT;
                    true
                }
                None => false,
            }
        }
        Kind::Opener | Kind::Followup => same.next().is_some(),
        // the end of an attempt whose own line counted: not counted again, and the
        // session's next lines are another attempt's (as after a connect line)
        Kind::Closing => detach(same),
        // (never recorded: `record` handles it first)
        Kind::Connect => false,
    }
}

impl Window {
    /// A window holding `event` alone.
    fn of(event: Event) -> Self {
        let mut events = SmallVec::new();
        events.push(event);
        Window { events }
    }

    fn newest(&self) -> Millis {
        self.events.last().map_or(Millis::MIN, |e| e.time)
    }

    fn insert(&mut self, event: Event) {
        let at = self.events.partition_point(|e| e.time <= event.time);
        self.events.insert(at, event);
    }

    /// Forget the failures at or before `cutoff`.
    fn drop_until(&mut self, cutoff: Millis) {
        let n = self.events.partition_point(|e| e.time <= cutoff);
        if n > 0 {
            self.events.drain(..n);
        }
    }

    /// Sum of the weights of failures in `(after, upto]`.
    fn weight_in(&self, after: Millis, upto: Millis) -> u64 {
        self.events
            .iter()
            .filter(|e| e.time > after && e.time <= upto)
            .map(|e| u64::from(e.weight()))
            .sum()
    }
}

fn saturate(sum: u64) -> u32 {
    u32::try_from(sum).unwrap_or(u32::MAX)
}

/// The failure windows and active bans of one jail.
#[derive(Debug, Clone)]
pub struct Tracker {
    cfg: TrackerConfig,
    windows: BTreeMap<Cidr, Window>,
    /// Active bans: address or prefix to end of ban.
    bans: BTreeMap<Cidr, Millis>,
    /// The same bans ordered by end, then address.
    by_until: BTreeSet<(Millis, Cidr)>,
    /// How many bans there are of each (is IPv6, prefix length): where to look for a ban
    /// that covers an address.
    lens: BTreeMap<(bool, u8), usize>,
    /// Newest failure time seen; with `now`, tells which windows are stale.
    latest: Millis,
    evicted: u64,
    ignored_while_banned: u64,
    /// See [`TrackerStats::counted`].
    counted: u64,
    /// Evicted failures, approximately (allocated at the first eviction).
    sketch: Option<Box<Sketch>>,
    /// Seed of the sketch's hashes.
    seed: u64,
    /// Per banned key: the sketch weight its ban consumed, the sketch epoch then (so a key
    /// is not banned again at once on old evicted failures), and the debt's number in the
    /// order they were made ([`Tracker::next_debt`]).
    debts: BTreeMap<Cidr, (u32, i64, u64)>,
    /// The number of the next debt.
    next_debt: u64,
}

impl Tracker {
    /// An empty tracker.
    pub fn new(cfg: TrackerConfig) -> Self {
        Tracker {
            cfg,
            windows: BTreeMap::new(),
            bans: BTreeMap::new(),
            by_until: BTreeSet::new(),
            lens: BTreeMap::new(),
            latest: Millis::MIN,
            evicted: 0,
            ignored_while_banned: 0,
            counted: 0,
            sketch: None,
            seed: 0x5043_4c53,
            debts: BTreeMap::new(),
            next_debt: 0,
        }
    }

    /// Sets the seed of the flood sketch's hashes (the daemon picks a random one, so nobody
    /// can aim hash collisions; replay keeps the fixed default, to be reproducible).
    pub fn set_seed(&mut self, seed: u64) {
        self.seed = seed;
        if let Some(s) = &mut self.sketch {
            **s = Sketch::new(
                crate::sketch::width_for(self.cfg.cap()),
                self.cfg.findtime(),
                seed,
            );
        }
    }

    /// The weight of `key`'s evicted failures around `time`, less what a ban already used.
    fn evicted_weight(&self, key: &Cidr, time: Millis) -> u64 {
        let Some(s) = &self.sketch else {
            return 0;
        };
        let est = s.estimate(key, time);
        let debt = match self.debts.get(key) {
            Some(&(d, e, _)) if s.holds(e) => d,
            _ => 0,
        };
        u64::from(est.saturating_sub(debt))
    }

    /// The settings in force.
    pub fn config(&self) -> &TrackerConfig {
        &self.cfg
    }

    /// Replace the settings (on reload). Open windows and bans are kept; existing bans
    /// keep their end. A smaller `findtime` or `max_tracked` takes effect as failures
    /// arrive; a lower `maxretry` bans an address at its next counted failure.
    ///
    /// A new `v4_prefix` or `v6_prefix` moves each window to the key its address now counts
    /// as: a shorter prefix gathers the windows inside it into one (the offender's next
    /// failure counts them all), a longer one cannot tell which address inside the old key
    /// failed, so that window is dropped. Returns how many were dropped. (Left under its old
    /// key, a window never grew and was still listed as failing: 2 failures of an address
    /// and 1 more after `v4_prefix = 24`, at `maxretry = 3`, banned nobody, a review found.)
    pub fn set_config(&mut self, cfg: TrackerConfig) -> usize {
        let rekey = cfg.v4_prefix != self.cfg.v4_prefix || cfg.v6_prefix != self.cfg.v6_prefix;
        self.cfg = cfg;
        if !rekey {
            return 0;
        }
        let mut dropped = 0;
        for (key, w) in std::mem::take(&mut self.windows) {
            let to = self.cfg.key(key.addr);
            if to.len > key.len {
                dropped += 1;
                continue;
            }
            match self.windows.entry(to) {
                std::collections::btree_map::Entry::Vacant(v) => {
                    v.insert(w);
                }
                std::collections::btree_map::Entry::Occupied(mut o) => {
                    for e in w.events {
                        o.get_mut().insert(e);
                    }
                }
            }
        }
        dropped
    }

    /// Count one failure; `now` is the current time (ban start). The window is evaluated
    /// on `f.time`.
    ///
    /// Returns a ban when the weights of the address's failures in its window reach
    /// `maxretry`; the window is then cleared. A failure is not counted when its weight
    /// is 0, when its address is banned (see [`TrackerStats::ignored_while_banned`]),
    /// when it falls before the address's window, or when it is a follow-up (or a second
    /// opener) of a session that already counted a failure in the window, or the attempt
    /// of a session whose opener counted it already, or a closing line of a session that
    /// counted a failure in the window since its last closing line (which then starts
    /// afresh); session 0 means unknown and always counts. A failure kept in a window
    /// counts at most [`MAX_WEIGHT`].
    ///
    /// When a new address would exceed `max_tracked`, windows whose newest failure is
    /// `findtime` or more older than the reference time are dropped first; the
    /// reference is the newest failure time seen, or `now` if earlier, so replaying an
    /// old log does not drop live windows. If more than 90% of the cap is still in use,
    /// the windows with the oldest newest failure are evicted until 90% is reached.
    /// Each such sweep is linear but frees a tenth of the cap, so the cost per failure
    /// stays constant on average.
    pub fn record(&mut self, f: &Failure, now: Millis) -> Option<Decision> {
        if f.kind == Kind::Connect {
            // a new connection of the session's process: what follows is not a repeat of
            // what the last one counted
            let key = self.cfg.key(f.addr);
            if let (Some(w), true) = (self.windows.get_mut(&key), f.session != 0) {
                detach(w.events.iter_mut().filter(|e| e.session == f.session));
            }
            return None;
        }
        if f.weight == 0 {
            return None;
        }
        self.latest = self.latest.max(f.time);
        let key = self.cfg.key(f.addr);
        // the address's own ban counts too: a prefix ban narrowed around an address never
        // banned (an own address in the offender's /64) covers the offender, not its key,
        // and the offender's next failures banned it again, escalated (a review found)
        if self.covering_ban(key).is_some()
            || (!key.is_host() && self.covering_ban(Cidr::host(f.addr)).is_some())
        {
            self.ignored_while_banned += 1;
            return None;
        }
        let maxretry = u64::from(self.cfg.maxretry);
        let event = Event::new(f.time, f.weight, f.kind, f.session);
        let total = match self.windows.get_mut(&key) {
            Some(w) => {
                // the window ends at its newest failure, which a late line does not move;
                // the evicted failures are read around that same end, so exact and evicted
                // failures together never span twice findtime or more
                let end = w.newest().max(f.time);
                let cutoff = end.saturating_sub(self.cfg.findtime());
                if f.time <= cutoff {
                    return None;
                }
                if repeats_session(w, f.kind, f.session, cutoff) {
                    return None;
                }
                self.counted += 1;
                w.insert(event);
                w.drop_until(cutoff);
                let exact = w.weight_in(cutoff, Millis::MAX);
                let extra = self.evicted_weight(&key, end);
                let total = exact + extra;
                if total < maxretry {
                    return None;
                }
                self.windows.remove(&key);
                self.note_debt(key, extra, end);
                total
            }
            None => {
                self.counted += 1;
                let extra = self.evicted_weight(&key, f.time);
                let total = u64::from(f.weight) + extra;
                if total >= maxretry {
                    self.note_debt(key, extra, f.time);
                }
                if total < maxretry {
                    if self.windows.len() >= self.cfg.cap() {
                        self.make_room(now);
                    }
                    self.windows.insert(key, Window::of(event));
                    return None;
                }
                total
            }
        };
        let until = now.saturating_add(self.cfg.bantime);
        Some(self.insert_ban(key, now, until, saturate(total)))
    }

    fn note_debt(&mut self, key: Cidr, extra: u64, time: Millis) {
        if extra == 0 {
            return;
        }
        let Some(s) = &self.sketch else { return };
        let e = s.epoch_of(time);
        let prev = self
            .debts
            .get(&key)
            .filter(|d| s.holds(d.1))
            .map_or(0, |d| d.0);
        self.next_debt += 1;
        self.debts.insert(
            key,
            (prev.saturating_add(saturate(extra)), e, self.next_debt),
        );
        if self.debts.len() > self.cfg.cap() {
            let sk = self.sketch.as_ref().expect("sketch");
            self.debts.retain(|_, d| sk.holds(d.1));
            // More sketch-assisted bans than the cap within the sketch's two generations (a
            // flood of them, on purpose or from the sketch's over-counting) freed nothing
            // here, and every later ban walked them all again: the engine stalled for
            // minutes, deaf to its socket and to SIGTERM (review 66 H1). The newest half
            // is kept, so the next clean-up comes after half the cap of bans: a constant
            // cost per ban on average, and a bound. A key whose debt is dropped may be
            // banned again a little sooner, on evicted failures its ban already used.
            // (newest by the order the debts were made: the epoch alone, one per findtime,
            // kept the highest addresses of a generation, review 69)
            let keep = self.cfg.cap() / 2;
            if self.debts.len() > keep {
                let mut newest: Vec<(u64, Cidr)> =
                    self.debts.iter().map(|(k, d)| (d.2, *k)).collect();
                newest.sort_unstable_by(|a, b| b.cmp(a));
                for (_, k) in newest.into_iter().skip(keep) {
                    self.debts.remove(&k);
                }
            }
        }
    }

    /// Bytes held by the flood sketch (0 before the first eviction).
    pub fn sketch_bytes(&self) -> usize {
        self.sketch.as_ref().map_or(0, |s| s.bytes())
    }

    /// The active ban that covers `c` (`c` itself, or a wider prefix), if any.
    pub fn covering_ban(&self, c: Cidr) -> Option<Cidr> {
        let v6 = c.addr.is_ipv6();
        self.lens
            .keys()
            .filter(|&&(f, l)| f == v6 && l <= c.len)
            .filter_map(|&(_, l)| Cidr::new(c.addr, l))
            .find(|p| self.bans.contains_key(p))
    }

    /// The bans strictly inside `p` (narrower than it), without lifting them.
    pub fn covered(&self, p: Cidr) -> impl Iterator<Item = Cidr> + '_ {
        self.bans
            .range(
                p..=Cidr {
                    addr: p.last(),
                    len: 128,
                },
            )
            .map(|(c, _)| *c)
            .filter(move |c| *c != p && p.covers(c))
    }

    /// Lifts the bans strictly inside `p` (narrower than it) and returns them: a ban of `p`
    /// replaces them (firewalls with interval sets refuse overlapping elements).
    pub fn take_covered(&mut self, p: Cidr) -> Vec<Cidr> {
        self.take_covered_until(p)
            .into_iter()
            .map(|(c, _)| c)
            .collect()
    }

    /// [`Tracker::take_covered`], with the end of each ban lifted (a ban replacing them
    /// must not end before them).
    pub fn take_covered_until(&mut self, p: Cidr) -> Vec<(Cidr, Millis)> {
        let inside: Vec<Cidr> = self.covered(p).collect();
        inside
            .into_iter()
            .filter_map(|c| self.remove_ban(c).map(|u| (c, u)))
            .collect()
    }

    fn remove_ban(&mut self, c: Cidr) -> Option<Millis> {
        let until = self.bans.remove(&c)?;
        self.by_until.remove(&(until, c));
        let k = (c.addr.is_ipv6(), c.len);
        if let Some(n) = self.lens.get_mut(&k) {
            *n -= 1;
            if *n == 0 {
                self.lens.remove(&k);
            }
        }
        Some(until)
    }

    /// The bans due now under the settings in force (after a reload lowered `maxretry`,
    /// raised `findtime`, or gathered windows under a shorter prefix): each open window whose
    /// failures within `findtime` of its newest one, plus its evicted ones, reach `maxretry`
    /// now, ended by `now` no more than `findtime` ago, is banned from `now` as [`record`]
    /// would have banned it at its next failure (an offender who stopped there was never
    /// banned, a review found), in address order.
    ///
    /// [`record`]: Tracker::record
    /// Windows whose key `skip` says are left as they are.
    pub fn due(&mut self, now: Millis, skip: impl Fn(Cidr) -> bool) -> Vec<Decision> {
        let findtime = self.cfg.findtime();
        let maxretry = u64::from(self.cfg.maxretry);
        let ready: Vec<(Cidr, Millis, u64)> = self
            .windows
            .iter()
            .filter(|(k, w)| w.newest() > now.saturating_sub(findtime) && !skip(**k))
            .filter_map(|(k, w)| {
                let end = w.newest();
                let extra = self.evicted_weight(k, end);
                let total = w.weight_in(end.saturating_sub(findtime), Millis::MAX) + extra;
                (total >= maxretry).then_some((*k, end, extra))
            })
            .collect();
        let mut out = Vec::new();
        for (key, end, extra) in ready {
            if self.covering_ban(key).is_some() {
                continue;
            }
            let total = self.windows.remove(&key).map_or(0, |w| {
                w.weight_in(end.saturating_sub(findtime), Millis::MAX)
            }) + extra;
            self.note_debt(key, extra, end);
            let until = now.saturating_add(self.cfg.bantime);
            out.push(self.insert_ban(key, now, until, saturate(total)));
        }
        out
    }

    /// Forgets the open windows whose key `drop` says, and returns how many (an address the
    /// ignore list came to cover at a reload: listed as failing, its count came back when it
    /// was taken out again, a review found).
    pub fn forget_windows(&mut self, drop: impl Fn(Cidr) -> bool) -> usize {
        let before = self.windows.len();
        self.windows.retain(|k, _| !drop(*k));
        before - self.windows.len()
    }

    /// Forgets the windows of `p` and of every prefix inside it.
    fn clear_windows(&mut self, p: Cidr) -> Vec<Cidr> {
        let inside: Vec<Cidr> = self
            .windows
            .range(
                p..=Cidr {
                    addr: p.last(),
                    len: 128,
                },
            )
            .map(|(c, _)| *c)
            .filter(|c| p.covers(c))
            .collect();
        for c in &inside {
            self.windows.remove(c);
        }
        inside
    }

    /// Unban decisions for every ban whose `until <= now`, in order of `until` (then of
    /// address); removes them. Each decision's `at` is the ban's `until`.
    pub fn expire(&mut self, now: Millis) -> Vec<Decision> {
        let mut out = Vec::new();
        while let Some(&(until, addr)) = self.by_until.first() {
            if until > now {
                break;
            }
            self.remove_ban(addr);
            out.push(Decision::Unban { addr, at: until });
        }
        out
    }

    /// The earliest end of an active ban: when [`Tracker::expire`] next has work.
    pub fn next_expiry(&self) -> Option<Millis> {
        self.by_until.first().map(|&(until, _)| until)
    }

    /// Whether `addr` is banned, alone or as part of a prefix (until [`Tracker::expire`] or
    /// an unban removes it).
    pub fn is_banned(&self, addr: IpAddr) -> bool {
        self.covering_ban(Cidr::host(addr)).is_some()
    }

    /// When the ban that covers `addr` ends, if it is banned.
    pub fn ban_until(&self, addr: IpAddr) -> Option<Millis> {
        let c = self.covering_ban(Cidr::host(addr))?;
        self.bans.get(&c).copied()
    }

    /// When the ban of exactly `c` ends, if there is one.
    pub fn ban_until_of(&self, c: Cidr) -> Option<Millis> {
        self.bans.get(&c).copied()
    }

    /// Manual ban, escalation or restore: bans `addr` (an address or prefix) from `now` to
    /// `until` (replacing any ban it has) and clears the windows inside it. Returns the
    /// `Decision::Ban` to carry out. Narrower bans inside it stay (see
    /// [`Tracker::take_covered`]).
    pub fn ban(&mut self, addr: Cidr, now: Millis, until: Millis, failures: u32) -> Decision {
        self.clear_windows(addr);
        self.insert_ban(addr, now, until, failures)
    }

    /// Manual unban of `c`: lifts the ban of exactly `c`, else the ban that covers it, and
    /// returns what was lifted ([`ban_lifted_by`] over [`Tracker::bans`], through the
    /// index). Also clears the windows inside `c`.
    pub fn unban(&mut self, c: Cidr) -> Option<Cidr> {
        self.clear_windows(c);
        let banned = if self.bans.contains_key(&c) {
            c
        } else {
            self.covering_ban(c)?
        };
        self.remove_ban(banned).map(|_| banned)
    }

    /// A pardon of `c` (a manual unban): the windows inside it, and the window of the
    /// offender that holds it when `c` is narrower (an address of a /64 counted as one
    /// offender: its failures were kept, where an IPv4 offender's were forgotten, review 35).
    /// Returns the keys of the windows dropped.
    pub fn forgive(&mut self, c: Cidr) -> Vec<Cidr> {
        let mut keys = self.clear_windows(c);
        let key = self.cfg.key(c.addr);
        if key.len < c.len && self.windows.remove(&key).is_some() {
            keys.push(key);
        }
        keys
    }

    /// Lift every ban; returns the addresses that were banned, in address order.
    pub fn unban_all(&mut self) -> Vec<Cidr> {
        self.by_until.clear();
        self.lens.clear();
        std::mem::take(&mut self.bans).into_keys().collect()
    }

    /// The active bans as `(address or prefix, until)`, in order of `until` (then of address).
    pub fn bans(&self) -> impl Iterator<Item = (Cidr, Millis)> + '_ {
        self.by_until.iter().map(|&(until, addr)| (addr, until))
    }

    /// The weight counted in the open window of `key` (its every failure): `test --json`
    /// gives each line what it added.
    pub fn counted(&self, key: Cidr) -> u64 {
        self.windows
            .get(&key)
            .map_or(0, |w| w.weight_in(Millis::MIN, Millis::MAX))
    }

    /// The key `ip` is counted under (its address, or its prefix: `v4_prefix`, `v6_prefix`)
    /// and the failures of that key's open window (time, weight), oldest first; none when
    /// it has no window.
    pub fn key_failures(&self, ip: IpAddr) -> (Cidr, Vec<(Millis, u32)>) {
        let key = self.cfg.key(ip);
        let failures = self
            .windows
            .get(&key)
            .map(|w| w.events.iter().map(|e| (e.time, e.weight())).collect())
            .unwrap_or_default();
        (key, failures)
    }

    /// Every failure of the open windows, as `(address or prefix, time, weight)`, in address
    /// order: what the daemon saves when it stops, and [`Tracker::restore_failure`] puts back.
    pub fn window_failures(&self) -> impl Iterator<Item = (Cidr, Millis, u32)> + '_ {
        self.windows
            .iter()
            .flat_map(|(&k, w)| w.events.iter().map(move |e| (k, e.time, e.weight())))
    }

    /// Puts a failure of [`Tracker::window_failures`] (saved by an earlier run) back into
    /// the window of `key`; returns whether it did. It decides nothing: a window that
    /// reaches `maxretry` so (a lower `maxretry` since) bans at its next failure, as after
    /// [`Tracker::set_config`]. Not put back: a failure of weight 0, one `findtime` or more
    /// before `now`, one of a banned key, one whose key is a wider prefix than this
    /// tracker's (`v4_prefix` or `v6_prefix` made longer: the address inside it is not
    /// known; one saved under a longer prefix is put back under the wider key), and
    /// one that would open a window beyond `max_tracked`. Its session is not known: a
    /// follow-up of its connection counts again.
    pub fn restore_failure(&mut self, key: Cidr, time: Millis, weight: u32, now: Millis) -> bool {
        // (saved by a clock that was ahead: at now, or its window would hold every later
        // failure before its cutoff, a review found)
        let time = time.min(now);
        // (saved under a longer prefix: put back under the one holding it now)
        let to = self.cfg.key(key.addr);
        if weight == 0
            || time <= now.saturating_sub(self.cfg.findtime())
            || to.len > key.len
            || self.covering_ban(to).is_some()
        {
            return false;
        }
        let key = to;
        let event = Event::new(time, weight, Kind::Attempt, 0);
        let room = self.windows.len() < self.cfg.cap();
        match self.windows.get_mut(&key) {
            Some(w) => w.insert(event),
            None if room => {
                self.windows.insert(key, Window::of(event));
            }
            None => return false,
        }
        self.latest = self.latest.max(time);
        true
    }

    /// The clock went back to `now`: failures stamped later are put at `now`. (Left in the
    /// future, a window's newest failure put every new one at or before its cutoff, so an
    /// offender was never counted again until the clock caught up: a review found.)
    pub fn clock_went_back(&mut self, now: Millis) {
        for w in self.windows.values_mut() {
            for e in w.events.iter_mut().filter(|e| e.time > now) {
                e.time = now;
            }
        }
        self.latest = self.latest.min(now);
    }

    /// Addresses with failures after `now - findtime` and their weighted count, in address
    /// order. Failures stamped after `now` count (a clock a little ahead: they count toward
    /// a ban; `status` hid them while one more failure banned, review 41).
    pub fn failing(&self, now: Millis) -> Vec<(Cidr, u32)> {
        let after = now.saturating_sub(self.cfg.findtime());
        self.windows
            .iter()
            .filter_map(|(&addr, w)| {
                let sum = w.weight_in(after, Millis::MAX);
                (sum > 0).then(|| (addr, saturate(sum)))
            })
            .collect()
    }

    /// Drop the windows that can no longer lead to a ban (newest failure `findtime` or
    /// more before the reference time described in [`Tracker::record`]); returns how
    /// many. Optional: [`Tracker::record`] does this itself when the cap is reached.
    pub fn prune(&mut self, now: Millis) -> usize {
        let cutoff = now.min(self.latest).saturating_sub(self.cfg.findtime());
        let before = self.windows.len();
        self.windows.retain(|_, w| w.newest() > cutoff);
        before - self.windows.len()
    }

    /// [`TrackerStats::counted`], alone (read around each line).
    pub fn counted_total(&self) -> u64 {
        self.counted
    }

    /// Counters for status output and metrics.
    pub fn stats(&self) -> TrackerStats {
        TrackerStats {
            tracked: self.windows.len(),
            banned: self.bans.len(),
            evicted: self.evicted,
            ignored_while_banned: self.ignored_while_banned,
            counted: self.counted,
        }
    }

    fn insert_ban(&mut self, addr: Cidr, at: Millis, until: Millis, failures: u32) -> Decision {
        match self.bans.insert(addr, until) {
            Some(old) => {
                self.by_until.remove(&(old, addr));
            }
            None => {
                *self
                    .lens
                    .entry((addr.addr.is_ipv6(), addr.len))
                    .or_default() += 1
            }
        }
        self.by_until.insert((until, addr));
        Decision::Ban {
            addr,
            at,
            until,
            failures,
            reason: BanReason::Failures,
        }
    }

    /// Bring the number of windows to at most 90% of the cap (and below the cap): stale
    /// windows first, then the lightest (least weight in the window), the oldest first
    /// among equals (ties by address). The evicted failures go into the sketch.
    fn make_room(&mut self, now: Millis) {
        self.prune(now);
        let cap = self.cfg.cap();
        let target = cap - cap.div_ceil(10);
        let excess = self.windows.len().saturating_sub(target);
        if excess == 0 {
            return;
        }
        let mut order: Vec<(u64, Millis, Cidr)> = self
            .windows
            .iter()
            .map(|(&addr, w)| (w.weight_in(Millis::MIN, Millis::MAX), w.newest(), addr))
            .collect();
        let (_, &mut last_out, _) = order.select_nth_unstable(excess - 1);
        drop(order);
        let (seed, findtime) = (self.seed, self.cfg.findtime());
        let sketch = self.sketch.get_or_insert_with(|| {
            Box::new(Sketch::new(crate::sketch::width_for(cap), findtime, seed))
        });
        self.windows.retain(|&addr, w| {
            let keep = (w.weight_in(Millis::MIN, Millis::MAX), w.newest(), addr) > last_out;
            if !keep {
                for e in &w.events {
                    sketch.add(&addr, e.weight(), e.time);
                }
            }
            keep
        });
        self.evicted += excess as u64;
    }
}

/// Which of one jail's `bans` an unban of `addr` lifts: the ban of exactly `addr`, else the
/// widest ban that covers it (a jail's bans do not nest, see [`Tracker::take_covered`], so
/// that is the one covering ban). The rule of [`Tracker::unban`], for a list of bans read
/// from the state file while the daemon is stopped (`portcullis unban` offline).
pub fn ban_lifted_by(addr: Cidr, bans: impl IntoIterator<Item = Cidr>) -> Option<Cidr> {
    let mut widest: Option<Cidr> = None;
    for b in bans {
        if b == addr {
            return Some(b);
        }
        if b.covers(&addr) && widest.is_none_or(|w| b.len < w.len) {
            widest = Some(b);
        }
    }
    widest
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;
    use std::net::{Ipv4Addr, Ipv6Addr};

    const SEC: Millis = 1000;

    fn cfg(maxretry: u32, findtime: Millis) -> TrackerConfig {
        TrackerConfig {
            maxretry,
            findtime,
            bantime: 600 * SEC,
            max_tracked: 1_000_000,
            v4_prefix: 32,
            v6_prefix: 128,
        }
    }

    fn ip(n: u32) -> IpAddr {
        IpAddr::V4(Ipv4Addr::from(n))
    }

    fn c(n: u32) -> Cidr {
        Cidr::host(ip(n))
    }

    fn fail(addr: IpAddr, time: Millis) -> Failure {
        Failure {
            addr,
            time,
            filter: 0,
            rule: 0,
            weight: 1,
            kind: Kind::Attempt,
            session: 0,
        }
    }

    fn weighted(addr: IpAddr, time: Millis, weight: u32) -> Failure {
        Failure {
            weight,
            ..fail(addr, time)
        }
    }

    fn kinded(addr: IpAddr, time: Millis, session: u32, kind: Kind) -> Failure {
        Failure {
            session,
            kind,
            ..fail(addr, time)
        }
    }

    fn session(addr: IpAddr, time: Millis, session: u32, followup: bool) -> Failure {
        let kind = if followup {
            Kind::Followup
        } else {
            Kind::Attempt
        };
        kinded(addr, time, session, kind)
    }

    fn is_ban(d: &Option<Decision>) -> bool {
        matches!(d, Some(Decision::Ban { .. }))
    }

    #[test]
    fn a_clock_gone_back_counts_again() {
        let day = 86_400 * SEC;
        let findtime = 600 * SEC;
        // a failure at day 10, then the clock is set back a day
        let mut t = Tracker::new(cfg(3, findtime));
        t.record(&fail(ip(1), 10 * day), 10 * day);
        let back = 9 * day;
        t.clock_went_back(back);
        let d: Vec<_> = (1..=2)
            .map(|i| t.record(&fail(ip(1), back + i * SEC), back + i * SEC))
            .collect();
        assert!(is_ban(&d[1]), "{d:?}");
        // without it, the window's newest failure (day 10) cuts off every new one
        let mut t = Tracker::new(cfg(3, findtime));
        t.record(&fail(ip(1), 10 * day), 10 * day);
        let d: Vec<_> = (1..=5)
            .map(|i| t.record(&fail(ip(1), back + i * SEC), back + i * SEC))
            .collect();
        assert!(d.iter().all(Option::is_none), "{d:?}");
        // a failure saved by a clock that was ahead is restored at now
        let mut t = Tracker::new(cfg(3, findtime));
        assert!(t.restore_failure(c(2), 10 * day, 1, back));
        let d: Vec<_> = (1..=2)
            .map(|i| t.record(&fail(ip(2), back + i * SEC), back + i * SEC))
            .collect();
        assert!(is_ban(&d[1]), "{d:?}");
    }

    #[test]
    fn below_threshold_does_not_ban() {
        let mut t = Tracker::new(cfg(5, 60 * SEC));
        for i in 0..4 {
            assert_eq!(t.record(&fail(ip(1), i * SEC), i * SEC), None);
        }
        assert!(!t.is_banned(ip(1)));
        assert_eq!(t.stats().tracked, 1);
    }

    #[test]
    fn threshold_bans_with_now_as_start() {
        let mut t = Tracker::new(cfg(5, 60 * SEC));
        for i in 0..4 {
            t.record(&fail(ip(1), i * SEC), 100 * SEC);
        }
        let d = t.record(&fail(ip(1), 4 * SEC), 100 * SEC);
        assert_eq!(
            d,
            Some(Decision::Ban {
                addr: c(1),
                at: 100 * SEC,
                until: 700 * SEC,
                failures: 5,
                reason: BanReason::Failures,
            })
        );
        assert!(t.is_banned(ip(1)));
        assert_eq!(t.ban_until(ip(1)), Some(700 * SEC));
        assert_eq!(t.stats().tracked, 0, "window cleared on ban");
    }

    #[test]
    fn failures_spread_wider_than_findtime_never_ban() {
        let mut t = Tracker::new(cfg(3, 10 * SEC));
        // Two failures every 10 s: any window of 10 s holds at most 2.
        for i in 0..1000 {
            let base = i * 10 * SEC;
            assert!(!is_ban(&t.record(&fail(ip(1), base), base)));
            assert!(!is_ban(&t.record(&fail(ip(1), base + 1), base + 1)));
        }
    }

    #[test]
    fn window_is_open_at_its_old_end() {
        let mut t = Tracker::new(cfg(2, 10 * SEC));
        t.record(&fail(ip(1), 0), 0);
        // Exactly findtime later: the first failure is out of (t - findtime, t].
        assert_eq!(t.record(&fail(ip(1), 10 * SEC), 10 * SEC), None);
        // One ms short of findtime after the second: both count.
        assert!(is_ban(&t.record(&fail(ip(1), 20 * SEC - 1), 20 * SEC)));
    }

    #[test]
    fn evicted_failures_are_read_around_the_windows_end() {
        // a cap of one window: each new address evicts the other into the sketch
        let small = |maxretry| TrackerConfig {
            max_tracked: 1,
            ..cfg(maxretry, 100)
        };
        let mut t = Tracker::new(small(3));
        assert_eq!(t.record(&fail(ip(1), 100), 0), None);
        assert_eq!(t.record(&fail(ip(2), 0), 1), None); // evicts ip(1)'s failure at 100
                                                        // (this evicts ip(2))
        assert_eq!(t.record(&fail(ip(1), 300), 2), None);
        // A late line at 201: the window ends at 300, so the evicted failure at 100 is 200
        // old, twice findtime; read around 201 it counted, and banned 1 ms out of bounds.
        assert_eq!(t.record(&fail(ip(1), 201), 3), None);
        // The same with the evicted failure at 150: within twice findtime of 300, counted.
        let mut t = Tracker::new(small(3));
        assert_eq!(t.record(&fail(ip(1), 150), 0), None);
        assert_eq!(t.record(&fail(ip(2), 0), 1), None);
        assert_eq!(t.record(&fail(ip(1), 299), 2), None);
        assert!(is_ban(&t.record(&fail(ip(1), 201), 3)));
    }

    #[test]
    fn findtime_zero_counts_only_simultaneous_failures() {
        let mut t = Tracker::new(cfg(2, 0));
        assert_eq!(t.record(&fail(ip(1), 5), 5), None);
        assert_eq!(t.record(&fail(ip(1), 6), 6), None);
        assert!(is_ban(&t.record(&fail(ip(1), 6), 6)));
    }

    #[test]
    fn weights_add_up() {
        let mut t = Tracker::new(cfg(5, 60 * SEC));
        assert_eq!(t.record(&weighted(ip(1), 0, 2), 0), None);
        assert_eq!(t.record(&weighted(ip(1), 1, 2), 1), None);
        match t.record(&weighted(ip(1), 2, 3), 2) {
            Some(Decision::Ban { failures, .. }) => assert_eq!(failures, 7),
            other => panic!("expected ban, got {other:?}"),
        }
    }

    #[test]
    fn weight_zero_is_ignored_entirely() {
        let mut t = Tracker::new(cfg(1, 60 * SEC));
        for i in 0..100 {
            assert_eq!(t.record(&weighted(ip(1), i, 0), i), None);
        }
        assert_eq!(t.stats(), TrackerStats::default());
    }

    #[test]
    fn heavy_weight_bans_at_once_without_a_window() {
        let mut t = Tracker::new(cfg(5, 60 * SEC));
        let d = t.record(&weighted(ip(1), 0, 5), 0);
        assert!(matches!(d, Some(Decision::Ban { failures: 5, .. })));
        let d = t.record(&weighted(ip(2), 0, u32::MAX), 0);
        assert!(matches!(
            d,
            Some(Decision::Ban {
                failures: u32::MAX,
                ..
            })
        ));
        assert_eq!(t.stats().tracked, 0);
    }

    #[test]
    fn maxretry_zero_behaves_like_one() {
        let mut t = Tracker::new(cfg(0, 60 * SEC));
        assert!(is_ban(&t.record(&fail(ip(1), 0), 0)));
    }

    /// Failures stamped a little ahead of now are listed (they count toward a ban).
    #[test]
    fn failures_stamped_ahead_of_now_are_failing() {
        let mut t = Tracker::new(cfg(3, 600 * SEC));
        t.record(&fail(ip(1), 480 * SEC), 0);
        t.record(&fail(ip(1), 490 * SEC), 0);
        assert_eq!(t.failing(0), vec![(c(1), 2)]);
    }

    #[test]
    fn opener_then_attempt_of_same_session_counts_once() {
        // maxretry 3: Invalid user (opener) + its Failed password (attempt) = 1,
        // a second Failed password = 2, the closing followup = still 2, one more attempt bans.
        let mut t = Tracker::new(TrackerConfig {
            maxretry: 3,
            ..TrackerConfig::default()
        });
        assert_eq!(t.record(&kinded(ip(1), 0, 42, Kind::Opener), 0), None);
        assert_eq!(t.record(&kinded(ip(1), 1, 42, Kind::Attempt), 1), None);
        assert_eq!(t.record(&kinded(ip(1), 2, 42, Kind::Attempt), 2), None);
        assert_eq!(t.record(&kinded(ip(1), 3, 42, Kind::Followup), 3), None);
        assert_eq!(t.failing(3), vec![(c(1), 2)]);
        assert!(is_ban(&t.record(&kinded(ip(1), 4, 43, Kind::Attempt), 4)));
    }

    #[test]
    fn second_opener_of_a_session_is_not_counted() {
        let mut t = Tracker::new(TrackerConfig {
            maxretry: 2,
            ..TrackerConfig::default()
        });
        assert_eq!(t.record(&kinded(ip(1), 0, 7, Kind::Opener), 0), None);
        assert_eq!(t.record(&kinded(ip(1), 1, 7, Kind::Opener), 1), None);
        assert!(is_ban(&t.record(&kinded(ip(1), 2, 8, Kind::Opener), 2)));
    }

    #[test]
    fn connect_starts_a_new_connection_of_the_session() {
        let mut t = Tracker::new(cfg(2, 60 * SEC));
        let connect = kinded(ip(1), 0, 42, Kind::Connect);
        assert_eq!(t.record(&connect, 0), None);
        assert_eq!(t.record(&session(ip(1), 1, 42, true), 1), None);
        // the same process's next connection: its follow-up counts
        assert_eq!(t.record(&connect, 2), None);
        assert!(is_ban(&t.record(&session(ip(1), 3, 42, true), 3)));
        // a connect counts nothing, whatever its weight
        let mut t = Tracker::new(cfg(1, 60 * SEC));
        assert_eq!(t.record(&connect, 0), None);
        assert!(t.failing(0).is_empty());
    }

    /// A worker that serves attempts one after another (LemonLDAP::NG): an attempt's own
    /// line and its closing line count once; a closing line alone counts; every attempt
    /// of the same session counts again, however many the worker serves.
    #[test]
    fn closing_line_ends_its_attempt_and_counts_only_alone() {
        let mut t = Tracker::new(cfg(100, 60 * SEC));
        let attempt = |at| kinded(ip(1), at, 42, Kind::Attempt);
        let closing = |at| kinded(ip(1), at, 42, Kind::Closing);
        // wrong password twice (each: the bind's line, then the closing line)
        for at in [0, 2] {
            assert_eq!(t.record(&attempt(at), at), None);
            assert_eq!(t.record(&closing(at + 1), at + 1), None);
        }
        assert_eq!(t.failing(3), vec![(c(1), 2)]);
        // an unknown user three times: the closing line alone, each counts
        for at in [4, 5, 6] {
            assert_eq!(t.record(&closing(at), at), None);
        }
        assert_eq!(t.failing(6), vec![(c(1), 5)]);
        // plain attempts without a closing line (another configuration): each counts
        for at in [7, 8] {
            assert_eq!(t.record(&attempt(at), at), None);
        }
        assert_eq!(t.failing(8), vec![(c(1), 7)]);
        // the closing line after them ends both: not counted, and the next one counts
        assert_eq!(t.record(&closing(9), 9), None);
        assert_eq!(t.record(&closing(10), 10), None);
        assert_eq!(t.failing(10), vec![(c(1), 8)]);
        // another session's attempt, an unknown session (0) or another address: not tied
        assert_eq!(t.record(&kinded(ip(1), 11, 43, Kind::Attempt), 11), None);
        assert_eq!(t.record(&closing(12), 12), None);
        assert_eq!(t.record(&kinded(ip(1), 13, 0, Kind::Attempt), 13), None);
        assert_eq!(t.record(&kinded(ip(1), 14, 0, Kind::Closing), 14), None);
        assert_eq!(t.record(&kinded(ip(2), 15, 42, Kind::Attempt), 15), None);
        assert_eq!(t.record(&closing(16), 16), None);
        assert_eq!(t.failing(16), vec![(c(1), 13), (c(2), 1)]);
        // an attempt older than the window ties nothing
        let mut t = Tracker::new(cfg(100, 60 * SEC));
        assert_eq!(t.record(&attempt(0), 0), None);
        assert_eq!(t.record(&closing(61 * SEC), 61 * SEC), None);
        assert_eq!(t.failing(61 * SEC), vec![(c(1), 1)]);
        // it bans as any failure does: maxretry 2, two closing lines alone
        let mut t = Tracker::new(cfg(2, 60 * SEC));
        assert_eq!(t.record(&closing(0), 0), None);
        assert!(is_ban(&t.record(&closing(1), 1)));
    }

    #[test]
    fn followup_of_same_session_is_not_counted() {
        let mut t = Tracker::new(cfg(2, 60 * SEC));
        // "Failed password" then "Connection closed ... [preauth]" from the same pid.
        assert_eq!(t.record(&session(ip(1), 0, 42, false), 0), None);
        assert_eq!(t.record(&session(ip(1), 1, 42, true), 1), None);
        assert_eq!(t.record(&session(ip(1), 2, 42, true), 2), None);
        assert_eq!(t.failing(2), vec![(c(1), 1)]);
        // (what the daemon's evidence goes by: one line counted)
        assert_eq!(t.counted_total(), 1);
    }

    #[test]
    fn followup_of_other_session_counts() {
        let mut t = Tracker::new(cfg(2, 60 * SEC));
        t.record(&session(ip(1), 0, 42, false), 0);
        assert!(is_ban(&t.record(&session(ip(1), 1, 43, true), 1)));
        assert_eq!(t.stats().counted, 2);
    }

    #[test]
    fn lone_followup_counts() {
        let mut t = Tracker::new(cfg(2, 60 * SEC));
        assert_eq!(t.record(&session(ip(1), 0, 7, true), 0), None);
        assert_eq!(t.failing(0), vec![(c(1), 1)]);
        // Its session is now one that counted.
        assert_eq!(t.record(&session(ip(1), 1, 7, true), 1), None);
        assert!(is_ban(&t.record(&session(ip(1), 2, 8, true), 2)));
    }

    #[test]
    fn interleaved_connections_each_count_once() {
        // a bot's two connections at once: the opener of 7, the opener of 8, then 7's
        // follow-up and both attempts, each already counted by its opener
        let mut t = Tracker::new(cfg(3, 60 * SEC));
        assert_eq!(t.record(&kinded(ip(1), 0, 7, Kind::Opener), 0), None);
        assert_eq!(t.record(&kinded(ip(1), 1, 8, Kind::Opener), 1), None);
        assert_eq!(t.record(&session(ip(1), 2, 7, true), 2), None);
        assert_eq!(t.record(&kinded(ip(1), 3, 7, Kind::Attempt), 3), None);
        assert_eq!(t.record(&kinded(ip(1), 4, 8, Kind::Attempt), 4), None);
        assert_eq!(t.record(&session(ip(1), 5, 8, true), 5), None);
        assert_eq!(t.failing(5), vec![(c(1), 2)]);
        // a second attempt of 7 is a failure of its own
        assert!(is_ban(&t.record(&kinded(ip(1), 6, 7, Kind::Attempt), 6)));
    }

    #[test]
    fn a_session_is_remembered_while_its_failure_is_in_the_window() {
        let mut t = Tracker::new(cfg(3, 10 * SEC));
        t.record(&session(ip(1), 0, 7, false), 0);
        t.record(&session(ip(1), 9 * SEC, 8, false), 9 * SEC);
        // 7's failure left the window: its follow-up is no longer known as a repeat
        assert_eq!(t.record(&session(ip(1), 11 * SEC, 7, true), 11 * SEC), None);
        assert_eq!(t.failing(11 * SEC), vec![(c(1), 2)]);
    }

    #[test]
    fn windows_saved_and_put_back_count_on() {
        let c3 = TrackerConfig {
            maxretry: 3,
            findtime: 60 * SEC,
            v6_prefix: 64,
            ..TrackerConfig::default()
        };
        let mut t = Tracker::new(c3.clone());
        let v6: IpAddr = "2001:db8:1:2::7".parse().unwrap();
        t.record(&fail(ip(1), 10 * SEC), 10 * SEC);
        t.record(&weighted(ip(1), 20 * SEC, 1), 20 * SEC);
        t.record(&fail(ip(2), SEC), SEC);
        t.record(&fail(v6, 30 * SEC), 30 * SEC);
        t.record(&fail(ip(3), 30 * SEC), 30 * SEC);
        t.ban(c(3), 30 * SEC, 90 * SEC, 1);
        let saved: Vec<_> = t.window_failures().collect();
        assert_eq!(saved.len(), 4, "{saved:?}");

        // the next run, at 65 s: ip(2)'s failure is out of its window
        let now = 65 * SEC;
        let mut u = Tracker::new(c3.clone());
        u.ban(c(3), 30 * SEC, 90 * SEC, 1);
        let back: Vec<bool> = saved
            .iter()
            .map(|&(k, time, w)| u.restore_failure(k, time, w, now))
            .collect();
        assert_eq!(back.iter().filter(|&&b| b).count(), 3);
        assert_eq!(u.failing(now).len(), 2);
        // the third failure bans
        assert!(is_ban(&u.record(&fail(ip(1), now), now)));
        assert!(is_ban(&u.record(&weighted(v6, now, 2), now)));
        // nothing for a banned key, and nothing when the prefix length changed
        let mut b = Tracker::new(c3.clone());
        b.ban(c(1), 0, 90 * SEC, 1);
        assert!(!b.restore_failure(c(1), 60 * SEC, 1, now));
        let mut p = Tracker::new(TrackerConfig {
            v6_prefix: 128,
            ..c3
        });
        let k = saved.iter().find(|s| s.0.addr.is_ipv6()).unwrap();
        assert!(!p.restore_failure(k.0, k.1, k.2, now));
        assert!(p.failing(now).is_empty());
    }

    #[test]
    fn followup_with_unknown_session_counts() {
        let mut t = Tracker::new(cfg(3, 60 * SEC));
        t.record(&session(ip(1), 0, 0, false), 0);
        t.record(&session(ip(1), 1, 0, true), 1);
        assert_eq!(t.failing(1), vec![(c(1), 2)]);
        // Previous session unknown: a follow-up with a known session counts too.
        assert!(is_ban(&t.record(&session(ip(1), 2, 9, true), 2)));
    }

    #[test]
    fn repeated_failures_of_one_session_all_count() {
        let mut t = Tracker::new(cfg(3, 60 * SEC));
        t.record(&session(ip(1), 0, 5, false), 0);
        t.record(&session(ip(1), 1, 5, false), 1);
        assert!(is_ban(&t.record(&session(ip(1), 2, 5, false), 2)));
    }

    #[test]
    fn late_failure_inside_the_window_counts() {
        let mut t = Tracker::new(cfg(3, 10 * SEC));
        t.record(&fail(ip(1), 20 * SEC), 20 * SEC);
        t.record(&fail(ip(1), 25 * SEC), 25 * SEC);
        // Logged 3 s before the newest, read after it.
        assert!(is_ban(&t.record(&fail(ip(1), 22 * SEC), 25 * SEC)));
    }

    #[test]
    fn late_failure_before_the_window_is_dropped() {
        let mut t = Tracker::new(cfg(2, 10 * SEC));
        t.record(&fail(ip(1), 100 * SEC), 100 * SEC);
        assert_eq!(t.record(&fail(ip(1), 90 * SEC), 100 * SEC), None);
        assert_eq!(t.record(&fail(ip(1), 50 * SEC), 100 * SEC), None);
        assert_eq!(t.failing(100 * SEC), vec![(c(1), 1)]);
    }

    #[test]
    fn late_failure_keeps_events_sorted_and_window_slides_on_newest() {
        let mut t = Tracker::new(cfg(4, 10 * SEC));
        t.record(&fail(ip(1), 10 * SEC), 0);
        t.record(&fail(ip(1), 5 * SEC), 0);
        t.record(&fail(ip(1), 8 * SEC), 0);
        let w = &t.windows[&c(1)];
        let times: Vec<_> = w.events.iter().map(|e| e.time).collect();
        assert_eq!(times, vec![5 * SEC, 8 * SEC, 10 * SEC]);
        // 16 s: window (6 s, 16 s] keeps 8 s and 10 s only.
        assert_eq!(t.record(&fail(ip(1), 16 * SEC), 0), None);
        assert_eq!(t.failing(16 * SEC), vec![(c(1), 3)]);
    }

    #[test]
    fn banned_address_is_ignored_and_starts_afresh() {
        let mut t = Tracker::new(cfg(2, 60 * SEC));
        t.record(&fail(ip(1), 0), 0);
        assert!(is_ban(&t.record(&fail(ip(1), 1), 1)));
        for i in 2..12 {
            assert_eq!(t.record(&fail(ip(1), i), i), None);
        }
        assert_eq!(t.stats().ignored_while_banned, 10);
        assert_eq!(t.stats().tracked, 0);
        let until = t.ban_until(ip(1)).unwrap();
        assert_eq!(t.expire(until).len(), 1);
        assert_eq!(t.record(&fail(ip(1), until), until), None);
        assert!(is_ban(&t.record(&fail(ip(1), until + 1), until + 1)));
    }

    #[test]
    fn expire_in_order_of_until_and_next_expiry() {
        let mut t = Tracker::new(cfg(1, 60 * SEC));
        assert_eq!(t.next_expiry(), None);
        t.ban(c(3), 0, 300, 1);
        t.ban(c(1), 0, 100, 1);
        t.ban(c(2), 0, 200, 1);
        t.ban(c(4), 0, 100, 1);
        assert_eq!(t.next_expiry(), Some(100));
        assert_eq!(t.expire(99), vec![]);
        assert_eq!(
            t.expire(200),
            vec![
                Decision::Unban {
                    addr: c(1),
                    at: 100
                },
                Decision::Unban {
                    addr: c(4),
                    at: 100
                },
                Decision::Unban {
                    addr: c(2),
                    at: 200
                },
            ]
        );
        assert_eq!(t.next_expiry(), Some(300));
        assert!(t.is_banned(ip(3)) && !t.is_banned(ip(1)));
        assert_eq!(t.expire(1000).len(), 1);
        assert_eq!(t.next_expiry(), None);
        assert_eq!(t.expire(1000), vec![]);
    }

    #[test]
    fn manual_ban_clears_window_and_replaces_old_ban() {
        let mut t = Tracker::new(cfg(3, 60 * SEC));
        t.record(&fail(ip(1), 0), 0);
        t.record(&fail(ip(1), 1), 1);
        let d = t.ban(c(1), 10, 1000, 7);
        assert_eq!(
            d,
            Decision::Ban {
                addr: c(1),
                at: 10,
                until: 1000,
                failures: 7,
                reason: BanReason::Failures,
            }
        );
        assert_eq!(t.stats().tracked, 0);
        t.ban(c(1), 20, 500, 0);
        assert_eq!(t.bans().collect::<Vec<_>>(), vec![(c(1), 500)]);
        assert_eq!(t.expire(999).len(), 1);
        assert_eq!(t.expire(1000), vec![]);
    }

    #[test]
    fn restored_ban_in_the_past_expires_at_once() {
        let mut t = Tracker::new(cfg(3, 60 * SEC));
        t.ban(c(1), 1000, 500, 3);
        assert_eq!(t.next_expiry(), Some(500));
        assert_eq!(
            t.expire(1000),
            vec![Decision::Unban {
                addr: c(1),
                at: 500
            }]
        );
    }

    #[test]
    fn manual_unban_clears_ban_and_window() {
        let mut t = Tracker::new(cfg(2, 60 * SEC));
        t.ban(c(1), 0, 100, 1);
        assert!(t.unban(c(1)).is_some());
        assert!(t.unban(c(1)).is_none());
        assert_eq!(t.next_expiry(), None);
        assert_eq!(t.expire(Millis::MAX), vec![]);
        t.record(&fail(ip(2), 0), 0);
        assert!(t.unban(c(2)).is_none());
        assert_eq!(t.record(&fail(ip(2), 1), 1), None, "window was cleared");
    }

    #[test]
    fn unban_all_lifts_everything() {
        let mut t = Tracker::new(cfg(2, 60 * SEC));
        t.ban(c(2), 0, 100, 1);
        t.ban(c(1), 0, 200, 1);
        assert_eq!(t.unban_all(), vec![c(1), c(2)]);
        assert_eq!(t.stats().banned, 0);
        assert_eq!(t.next_expiry(), None);
        assert_eq!(t.bans().count(), 0);
    }

    #[test]
    fn bans_lists_by_until() {
        let mut t = Tracker::new(cfg(2, 60 * SEC));
        t.ban(c(1), 0, 300, 1);
        t.ban(c(2), 0, 100, 1);
        assert_eq!(t.bans().collect::<Vec<_>>(), vec![(c(2), 100), (c(1), 300)]);
    }

    #[test]
    fn many_bans_stay_cheap() {
        let mut t = Tracker::new(cfg(1, 60 * SEC));
        for i in 0..200_000u32 {
            t.record(&fail(ip(i), 0), Millis::from(i % 1000));
        }
        assert_eq!(t.stats().banned, 200_000);
        assert_eq!(t.next_expiry(), Some(600 * SEC));
        let out = t.expire(600 * SEC + 499);
        assert_eq!(out.len(), 100_000);
        assert!(out.windows(2).all(|p| match (&p[0], &p[1]) {
            (Decision::Unban { at: a, .. }, Decision::Unban { at: b, .. }) => a <= b,
            _ => false,
        }));
        assert_eq!(t.stats().banned, 100_000);
    }

    #[test]
    fn failing_reports_the_window_at_now() {
        let mut t = Tracker::new(cfg(10, 10 * SEC));
        let v6 = IpAddr::V6(Ipv6Addr::LOCALHOST);
        t.record(&weighted(ip(2), 0, 2), 0);
        t.record(&weighted(ip(2), 5 * SEC, 3), 5 * SEC);
        t.record(&fail(ip(1), 8 * SEC), 8 * SEC);
        t.record(&fail(v6, 8 * SEC), 8 * SEC);
        assert_eq!(
            t.failing(9 * SEC),
            vec![(c(1), 1), (c(2), 5), (Cidr::host(v6), 1)]
        );
        assert_eq!(
            t.failing(12 * SEC),
            vec![(c(1), 1), (c(2), 3), (Cidr::host(v6), 1)]
        );
        assert_eq!(t.failing(30 * SEC), vec![]);
    }

    #[test]
    fn set_config_keeps_windows_and_bans() {
        let mut t = Tracker::new(cfg(5, 60 * SEC));
        t.record(&fail(ip(1), 0), 0);
        t.record(&fail(ip(1), 1), 1);
        t.ban(c(9), 0, 100, 1);
        let new = TrackerConfig {
            bantime: 5 * SEC,
            ..cfg(2, 60 * SEC)
        };
        t.set_config(new.clone());
        assert_eq!(t.config(), &new);
        assert_eq!(t.ban_until(ip(9)), Some(100));
        // The window already holds 2; the next failure bans with the new bantime.
        assert_eq!(
            t.record(&fail(ip(1), 2), 2),
            Some(Decision::Ban {
                addr: c(1),
                at: 2,
                until: 5 * SEC + 2,
                failures: 3,
                reason: BanReason::Failures,
            })
        );
    }

    /// A shorter prefix gathers the windows inside it (the next failure counts them all); a
    /// longer one drops the windows it cannot split; failures saved under a longer prefix
    /// are put back under the shorter one.
    #[test]
    fn a_new_prefix_length_moves_the_windows() {
        let a: IpAddr = "203.0.113.40".parse().unwrap();
        let b: IpAddr = "203.0.113.41".parse().unwrap();
        let net = Cidr::new("203.0.113.0".parse().unwrap(), 24).unwrap();
        let mut t = Tracker::new(cfg(4, 60 * SEC));
        t.record(&fail(a, 0), 0);
        t.record(&fail(a, 1), 1);
        t.record(&fail(b, 2), 2);
        let saved: Vec<_> = t.window_failures().collect();
        let v24 = TrackerConfig {
            v4_prefix: 24,
            ..cfg(4, 60 * SEC)
        };
        assert_eq!(t.set_config(v24.clone()), 0);
        assert_eq!(t.failing(3), vec![(net, 3)]);
        assert!(matches!(
            t.record(&fail(a, 3), 3),
            Some(Decision::Ban { addr, failures: 4, .. }) if addr == net
        ));
        // back to /32: a /24 window cannot be split
        t.unban(net);
        t.record(&fail(a, 4), 4);
        assert_eq!(t.set_config(cfg(4, 60 * SEC)), 1);
        assert_eq!(t.failing(5), vec![]);
        // saved under /32, put back under /24
        let mut t = Tracker::new(v24);
        for (key, time, weight) in saved {
            assert!(t.restore_failure(key, time, weight, 10));
        }
        assert_eq!(t.failing(10), vec![(net, 3)]);
        // saved under /24, not put back under /32
        let mut t = Tracker::new(cfg(4, 60 * SEC));
        assert!(!t.restore_failure(net, 5, 1, 10));
    }

    /// A lower `maxretry` bans at once the windows already over it (not at their next
    /// failure), a window whose newest failure is over `findtime` old is not banned, and a
    /// window still under the threshold stays.
    #[test]
    fn due_bans_the_windows_over_a_lowered_maxretry() {
        let mut t = Tracker::new(cfg(5, 60 * SEC));
        for i in 0..4 {
            t.record(&fail(ip(1), i), i);
        }
        for i in 0..3 {
            t.record(&fail(ip(2), i), i);
        }
        t.record(&fail(ip(3), 0), 0);
        assert!(t.due(10 * SEC, |_| false).is_empty());
        t.set_config(cfg(3, 60 * SEC));
        // long quiet: nothing is due
        assert!(t.clone().due(61 * SEC, |_| false).is_empty());
        // a key `skip` names is left alone
        assert_eq!(t.clone().due(10 * SEC, |k| k == c(1)).len(), 1);
        let d = t.due(10 * SEC, |_| false);
        let banned: Vec<Cidr> = d
            .iter()
            .map(|d| match d {
                Decision::Ban {
                    addr, at, failures, ..
                } => {
                    assert_eq!(*at, 10 * SEC);
                    assert!(*failures >= 3);
                    *addr
                }
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(banned, [c(1), c(2)]);
        assert!(t.is_banned(ip(1)) && t.is_banned(ip(2)) && !t.is_banned(ip(3)));
        assert_eq!(t.failing(10 * SEC), vec![(c(3), 1)]);
        assert!(t.due(10 * SEC, |_| false).is_empty());
    }

    #[test]
    fn ban_end_saturates() {
        let mut t = Tracker::new(TrackerConfig {
            bantime: Millis::MAX,
            ..cfg(1, 60 * SEC)
        });
        assert_eq!(
            t.record(&fail(ip(1), 5), 5),
            Some(Decision::Ban {
                addr: c(1),
                at: 5,
                until: Millis::MAX,
                failures: 1,
                reason: BanReason::Failures,
            })
        );
    }

    #[test]
    fn window_holds_fewer_than_maxretry_events_inline() {
        let mut t = Tracker::new(cfg(5, 1000 * SEC));
        let mut bans = 0;
        for i in 0..1000 {
            if is_ban(&t.record(&fail(ip(1), i), i)) {
                bans += 1;
                t.unban(c(1));
            }
            if let Some(w) = t.windows.get(&c(1)) {
                assert!(w.events.len() <= 4);
                assert!(!w.events.spilled());
            }
        }
        assert_eq!(bans, 200);
    }

    #[test]
    fn cap_holds_with_a_million_addresses() {
        let mut t = Tracker::new(TrackerConfig {
            max_tracked: 10_000,
            ..cfg(3, 600 * SEC)
        });
        for i in 0..1_000_000u32 {
            let now = Millis::from(i);
            assert_eq!(t.record(&fail(ip(i), now), now), None);
            assert!(t.stats().tracked <= 10_000);
        }
        let s = t.stats();
        assert_eq!(s.evicted, 1_000_000 - s.tracked as u64);
        // The newest addresses survive and keep counting.
        t.record(&fail(ip(999_999), 1_000_000), 1_000_000);
        assert!(is_ban(&t.record(&fail(ip(999_999), 1_000_001), 1_000_001)));
    }

    #[test]
    fn eviction_sweeps_to_ninety_percent_then_waits() {
        let mut t = Tracker::new(TrackerConfig {
            max_tracked: 100,
            ..cfg(3, 600 * SEC)
        });
        for i in 0..100u32 {
            t.record(&fail(ip(i), Millis::from(i)), Millis::from(i));
        }
        assert_eq!(t.stats().tracked, 100);
        t.record(&fail(ip(100), 100), 100);
        assert_eq!(t.stats().tracked, 91);
        assert_eq!(t.stats().evicted, 10);
        // The ten oldest went.
        assert!(!t.windows.contains_key(&c(9)) && t.windows.contains_key(&c(10)));
        // No sweep until the cap is reached again.
        for i in 101..110u32 {
            t.record(&fail(ip(i), Millis::from(i)), Millis::from(i));
        }
        assert_eq!(t.stats().tracked, 100);
        assert_eq!(t.stats().evicted, 10);
    }

    #[test]
    fn eviction_drops_stale_windows_first_without_counting_them() {
        let mut t = Tracker::new(TrackerConfig {
            max_tracked: 10,
            ..cfg(3, 10 * SEC)
        });
        for i in 0..5u32 {
            t.record(&fail(ip(i), 0), 0);
        }
        for i in 5..10u32 {
            t.record(&fail(ip(i), 20 * SEC), 20 * SEC);
        }
        t.record(&fail(ip(10), 21 * SEC), 21 * SEC);
        assert_eq!(t.stats().tracked, 6);
        assert_eq!(t.stats().evicted, 0);
        assert!((5..=10).all(|i| t.windows.contains_key(&c(i))));
    }

    #[test]
    fn replaying_an_old_log_keeps_live_windows() {
        // Failures from an hour ago, read now: eviction judges staleness by the
        // failures' times, not by `now`.
        let now = 3600 * SEC;
        let mut t = Tracker::new(TrackerConfig {
            max_tracked: 10,
            ..cfg(3, 60 * SEC)
        });
        for i in 0..10u32 {
            t.record(&fail(ip(i), Millis::from(i)), now);
        }
        t.record(&fail(ip(10), 10), now);
        assert_eq!(t.stats().tracked, 9 + 1);
        assert_eq!(t.stats().evicted, 1);
        t.record(&fail(ip(5), 11), now);
        assert!(is_ban(&t.record(&fail(ip(5), 12), now)));
    }

    #[test]
    fn prune_forgets_stale_windows() {
        let mut t = Tracker::new(cfg(3, 10 * SEC));
        t.record(&fail(ip(1), 5 * SEC), 5 * SEC);
        t.record(&fail(ip(2), 14 * SEC), 14 * SEC);
        assert_eq!(t.prune(14 * SEC), 0);
        assert_eq!(t.prune(15 * SEC), 0, "reference is the newest failure seen");
        t.record(&fail(ip(3), 15 * SEC), 15 * SEC);
        assert_eq!(t.prune(15 * SEC), 1, "newest exactly findtime old is stale");
        assert_eq!(t.stats().tracked, 2);
        assert!(!t.windows.contains_key(&c(1)));
    }

    fn v6(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn failures_count_per_prefix_and_the_ban_covers_it() {
        let mut t = Tracker::new(TrackerConfig {
            v6_prefix: 64,
            v4_prefix: 24,
            ..cfg(3, 60 * SEC)
        });
        // a host rotating through its /64: one offender
        for (i, a) in ["2001:db8:5:6::1", "2001:db8:5:6::2"].iter().enumerate() {
            assert_eq!(t.record(&fail(v6(a), i as Millis), 0), None);
        }
        let d = t.record(&fail(v6("2001:db8:5:6:ffff::9"), 2), 0);
        let p64 = Cidr::parse("2001:db8:5:6::/64").unwrap();
        assert!(
            matches!(d, Some(Decision::Ban { addr, .. }) if addr == p64),
            "{d:?}"
        );
        assert!(t.is_banned(v6("2001:db8:5:6::abcd")));
        assert!(!t.is_banned(v6("2001:db8:5:7::1")), "another /64 is not");
        // the same for IPv4 per /24
        for i in 0..3u32 {
            t.record(&fail(ip(0xc000_0200 + i), 10 + Millis::from(i)), 10);
        }
        assert!(t.is_banned(ip(0xc000_02ff)));
        // unbanning an address inside lifts the prefix
        assert_eq!(t.unban(Cidr::host(v6("2001:db8:5:6::77"))), Some(p64));
        assert!(!t.is_banned(v6("2001:db8:5:6::1")));
    }

    /// A ban narrower than the offender's key (a /64 ban narrowed to a /122 around an
    /// own address of the server's /64) stops the counting of the addresses it covers: the
    /// same offender was banned again and again, escalated, by a review. The rest of the
    /// /64 still counts.
    #[test]
    fn a_ban_narrower_than_the_key_stops_its_addresses_counting() {
        let mut t = Tracker::new(TrackerConfig {
            v6_prefix: 64,
            ..cfg(3, 60 * SEC)
        });
        let narrowed = Cidr::parse("2001:db8:1:2::40/122").unwrap();
        t.ban(narrowed, 0, 3_600 * SEC, 3);
        for i in 0..6 {
            assert_eq!(t.record(&fail(v6("2001:db8:1:2::50"), i), i), None);
        }
        assert_eq!(t.stats().ignored_while_banned, 6);
        // another address of the /64, outside the narrowed ban, counts
        for i in 0..2 {
            assert_eq!(t.record(&fail(v6("2001:db8:1:2::99"), 10 + i), 10), None);
        }
        assert!(t.record(&fail(v6("2001:db8:1:2::99"), 12), 12).is_some());
    }

    #[test]
    fn a_wider_ban_covers_and_takes_the_narrower_ones() {
        let mut t = Tracker::new(cfg(1, 60 * SEC));
        for i in 1..=3u32 {
            t.record(&fail(ip(0xc633_6400 + i), 0), 0);
        }
        t.record(&fail(ip(0xc633_6500), 0), 0); // another /24
        let p24 = Cidr::parse("198.51.100.0/24").unwrap();
        let covered = t.take_covered(p24);
        assert_eq!(covered.len(), 3);
        t.ban(p24, 0, 100, 3);
        assert_eq!(t.covering_ban(Cidr::host(ip(0xc633_6409))), Some(p24));
        assert_eq!(t.stats().banned, 2);
        // failures inside the banned prefix are ignored while it stands
        assert_eq!(t.record(&fail(ip(0xc633_6477), 1), 1), None);
        assert_eq!(t.stats().ignored_while_banned, 1);
        assert_eq!(
            t.expire(100).len(),
            1,
            "the /24 ends at 100, the other ban later"
        );
        assert!(!t.is_banned(ip(0xc633_6409)));
    }

    /// The flood, scaled down tenfold for a debug build: 200,000 one-shot
    /// addresses, each in its own /64, and an attacker with 5 failures spread evenly among
    /// them, all within findtime; the cap (20,000) is a tenth of the one-shots. The
    /// attacker is banned at its 5th failure; memory stays bounded. (bench/flood.sh runs the
    /// full 2,000,000 against the release binary.)
    #[test]
    fn an_attacker_inside_a_flood_of_one_shot_addresses_is_banned() {
        let mut t = Tracker::new(TrackerConfig {
            max_tracked: 20_000,
            v6_prefix: 64,
            ..cfg(5, 600 * SEC)
        });
        let attacker = v6("2001:db8:ffff:1::66");
        let n = 200_000u64;
        let mut banned_at = None;
        for i in 0..n {
            let now = (i * 420 * SEC as u64 / n) as Millis; // 7 minutes in all
            let a = IpAddr::V6(Ipv6Addr::from(
                (0x2001_0db8u128 << 96) | (u128::from(i) << 64) | 1,
            ));
            assert_eq!(t.record(&fail(a, now), now), None, "a one-shot banned");
            if i % (n / 5) == n / 10 {
                if let Some(Decision::Ban { addr, failures, .. }) =
                    t.record(&fail(attacker, now), now)
                {
                    assert_eq!(addr, t.config().key(attacker));
                    assert_eq!(failures, 5);
                    banned_at = Some(i);
                }
            }
            assert!(t.stats().tracked <= 20_000);
        }
        assert!(
            banned_at.is_some(),
            "the attacker was not banned: {:?}",
            t.stats()
        );
        assert!(t.stats().evicted > 150_000);
        assert!(t.sketch_bytes() <= 2 * 4 * crate::sketch::MAX_WIDTH);
    }

    /// Review 66 H1: more offenders than the cap, each failing `maxretry` times round-robin,
    /// so that each one's first failures are evicted to the sketch before its last: every
    /// ban is sketch-assisted, within one generation. The debts those bans leave stay
    /// bounded by the cap (they grew without bound, and each ban walked them all: quadratic,
    /// minutes of a stalled engine at 400,000 offenders), and every offender is banned.
    #[test]
    fn sketch_assisted_bans_past_the_cap_keep_their_debts_bounded() {
        let cap = 2_000;
        let n = 5 * cap as u32;
        // (addresses walked upwards and downwards: the debts kept are the newest, not the
        // highest addresses, review 69)
        for down in [false, true] {
            let mut t = Tracker::new(TrackerConfig {
                max_tracked: cap,
                ..cfg(5, 600 * SEC)
            });
            let mut bans = 0;
            let mut most = 0;
            let mut without = 0;
            for round in 0..5u32 {
                for i in 0..n {
                    let now = Millis::from(round * n + i) / 1000;
                    let a = ip(0x0a00_0000 + if down { n - 1 - i } else { i });
                    if t.record(&fail(a, now), now).is_some() {
                        bans += 1;
                        // the debt a ban just made is kept (the newest)
                        if !t.debts.contains_key(&t.config().key(a)) {
                            without += 1;
                        }
                    }
                    most = most.max(t.debts.len());
                }
            }
            assert!(t.stats().evicted > 0);
            assert!(most <= cap + 1, "debts grew to {most}");
            assert!(
                bans >= n - 2 * cap as u32,
                "{bans} of {n} offenders banned: {:?}",
                t.stats()
            );
            assert_eq!(
                without, 0,
                "down: {down}: bans whose debt was dropped at once"
            );
        }
    }

    // ---- property tests -------------------------------------------------------------

    /// One input to a tracker in a generated run.
    #[derive(Debug, Clone)]
    enum Op {
        /// A failure of address `addr` (index in a small pool), `time` relative to the
        /// run's clock (negative: logged before it was read).
        Fail {
            addr: u8,
            dt: i64,
            weight: u32,
            kind: Kind,
            session: u32,
        },
        /// Advance the clock by `step` and expire.
        Expire { step: i64 },
        /// Manual ban of `addr` for `len`.
        Ban { addr: u8, len: i64 },
        /// Manual unban.
        Unban { addr: u8 },
    }

    fn op(addrs: u8) -> impl Strategy<Value = Op> {
        prop_oneof![
            8 => (0..addrs, -30i64..5, 0u32..4, 0u8..5, 0u32..3).prop_map(
                |(addr, dt, weight, kind, session)| Op::Fail {
                    addr,
                    dt,
                    weight,
                    kind: [
                        Kind::Attempt,
                        Kind::Opener,
                        Kind::Followup,
                        Kind::Connect,
                        Kind::Closing,
                    ][kind as usize],
                    session
                }
            ),
            2 => (0i64..40).prop_map(|step| Op::Expire { step }),
            1 => (0..addrs, 0i64..100).prop_map(|(addr, len)| Op::Ban { addr, len }),
            1 => (0..addrs).prop_map(|addr| Op::Unban { addr }),
        ]
    }

    /// A plain model of the documented semantics: every counted failure since the
    /// address's window was last cleared, scanned in full each time.
    #[derive(Default)]
    struct Model {
        /// Per address: time, weight, session, opener credit.
        events: HashMap<IpAddr, Vec<(Millis, u32, u32, bool)>>,
        bans: HashMap<IpAddr, Millis>,
    }

    impl Model {
        fn record(&mut self, cfg: &TrackerConfig, f: &Failure, now: Millis) -> Option<Decision> {
            if f.kind == Kind::Connect {
                if f.session != 0 {
                    for e in self.events.entry(f.addr).or_default() {
                        if e.2 == f.session {
                            e.2 = 0;
                            e.3 = false;
                        }
                    }
                }
                return None;
            }
            if f.weight == 0 {
                return None;
            }
            if self.bans.contains_key(&f.addr) {
                return None;
            }
            let findtime = cfg.findtime.max(1);
            let evs = self.events.entry(f.addr).or_default();
            let newest = evs
                .iter()
                .map(|e| e.0)
                .max()
                .unwrap_or(Millis::MIN)
                .max(f.time);
            let cutoff = newest - findtime;
            if f.time <= cutoff {
                return None;
            }
            if f.session != 0 {
                let mut same = evs.iter_mut().filter(|e| e.0 > cutoff && e.2 == f.session);
                match f.kind {
                    Kind::Attempt => {
                        if let Some(e) = same.find(|e| e.3) {
                            e.3 = false;
                            return None;
                        }
                    }
                    Kind::Opener | Kind::Followup if same.next().is_some() => return None,
                    Kind::Closing => {
                        let mut any = false;
                        for e in same {
                            e.2 = 0;
                            e.3 = false;
                            any = true;
                        }
                        if any {
                            return None;
                        }
                    }
                    _ => {}
                }
            }
            let session = if f.kind == Kind::Closing {
                0
            } else {
                f.session
            };
            evs.push((f.time, f.weight, session, f.kind == Kind::Opener));
            let sum: u64 = evs
                .iter()
                .filter(|e| e.0 > newest - findtime)
                .map(|e| u64::from(e.1))
                .sum();
            if sum < u64::from(cfg.maxretry.max(1)) {
                return None;
            }
            self.events.remove(&f.addr);
            let until = now + cfg.bantime;
            self.bans.insert(f.addr, until);
            Some(Decision::Ban {
                addr: Cidr::host(f.addr),
                at: now,
                until,
                failures: sum as u32,
                reason: BanReason::Failures,
            })
        }

        fn expire(&mut self, now: Millis) -> Vec<Decision> {
            let mut due: Vec<(Millis, IpAddr)> = self
                .bans
                .iter()
                .filter(|(_, &u)| u <= now)
                .map(|(&a, &u)| (u, a))
                .collect();
            due.sort();
            for (_, a) in &due {
                self.bans.remove(a);
            }
            due.into_iter()
                .map(|(at, addr)| Decision::Unban {
                    addr: Cidr::host(addr),
                    at,
                })
                .collect()
        }
    }

    fn cp(i: u8) -> Cidr {
        Cidr::host(pool(i))
    }

    fn pool(i: u8) -> IpAddr {
        if i & 1 == 0 {
            ip(u32::from(i))
        } else {
            IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, u16::from(i)))
        }
    }

    fn failure_of(addr: u8, time: Millis, weight: u32, kind: Kind, session: u32) -> Failure {
        Failure {
            addr: pool(addr),
            time,
            filter: 0,
            rule: 0,
            weight,
            kind,
            session,
        }
    }

    proptest! {
        /// [`ban_lifted_by`] over the tracker's bans names what [`Tracker::unban`] lifts,
        /// whatever bans (of addresses and nested prefixes) came before.
        #[test]
        fn prop_unban_lifts_what_ban_lifted_by_names(
            bans in proptest::collection::vec((0u8..4, 0u8..4, prop_oneof![Just(32u8), Just(31), Just(30), Just(24)]), 0..12),
            target in (0u8..4, 0u8..4, prop_oneof![Just(32u8), Just(30), Just(24)]),
        ) {
            let prefix = |(a, b, len): (u8, u8, u8)| {
                Cidr::new(std::net::IpAddr::from([203, 0, 113, a * 4 + b]), len).unwrap()
            };
            let mut t = Tracker::new(cfg(5, 60 * SEC));
            for &b in &bans {
                t.ban(prefix(b), 0, 1_000 * SEC, 1);
            }
            let before: Vec<Cidr> = t.bans().map(|(c, _)| c).collect();
            let addr = prefix(target);
            prop_assert_eq!(ban_lifted_by(addr, before.iter().copied()), t.unban(addr));
        }

        /// The tracker decides exactly what the plain model decides, whatever the order
        /// of failures, follow-ups, manual bans and expiries.
        #[test]
        fn prop_matches_model(
            maxretry in 1u32..6,
            findtime in 1i64..60,
            ops in proptest::collection::vec(op(4), 0..300),
        ) {
            let c = TrackerConfig { maxretry, findtime, bantime: 50, max_tracked: 1000, v4_prefix: 32, v6_prefix: 128 };
            let mut t = Tracker::new(c.clone());
            let mut m = Model::default();
            let mut now: Millis = 0;
            for o in &ops {
                match *o {
                    Op::Fail { addr, dt, weight, kind, session } => {
                        let f = failure_of(addr, now + dt, weight, kind, session);
                        prop_assert_eq!(t.record(&f, now), m.record(&c, &f, now));
                        now += 1;
                    }
                    Op::Expire { step } => {
                        now += step;
                        prop_assert_eq!(t.expire(now), m.expire(now));
                    }
                    Op::Ban { addr, len } => {
                        let a = pool(addr);
                        t.ban(Cidr::host(a), now, now + len, 1);
                        m.events.remove(&a);
                        m.bans.insert(a, now + len);
                    }
                    Op::Unban { addr } => {
                        let a = pool(addr);
                        m.events.remove(&a);
                        prop_assert_eq!(t.unban(Cidr::host(a)).is_some(), m.bans.remove(&a).is_some());
                    }
                }
                prop_assert_eq!(t.stats().banned, m.bans.len());
                prop_assert_eq!(t.next_expiry(), m.bans.values().min().copied());
            }
        }

        /// (1) An address is banned only if, among its failures so far, some window of
        /// `findtime` holds weights adding up to `maxretry` -- also with a tiny cap, where
        /// evicted failures count for up to twice `findtime` (see "Floods").
        #[test]
        fn prop_never_bans_below_threshold(
            maxretry in 1u32..6,
            findtime in 1i64..100,
            max_tracked in 1usize..6,
            fails in proptest::collection::vec(
                (0u8..8, 0i64..400, 0u32..4, any::<bool>(), 0u32..3), 0..300),
        ) {
            let c = TrackerConfig { maxretry, findtime, bantime: 1000, max_tracked, v4_prefix: 32, v6_prefix: 128 };
            let mut t = Tracker::new(c);
            let mut seen: HashMap<IpAddr, Vec<(Millis, u32)>> = HashMap::new();
            for (i, &(addr, time, weight, followup, session)) in fails.iter().enumerate() {
                let kind = if followup { Kind::Followup } else { Kind::Attempt };
                let f = failure_of(addr, time, weight, kind, session);
                seen.entry(f.addr).or_default().push((time, weight));
                let d = t.record(&f, i as Millis);
                prop_assert!(t.stats().tracked <= max_tracked);
                if let Some(Decision::Ban { addr, .. }) = d {
                    let evs = &seen[&addr.addr];
                    // once windows were evicted, their failures count for up to twice
                    // findtime (the sketch's generations)
                    let span = if t.stats().evicted > 0 { 2 * findtime } else { findtime };
                    let worst = evs
                        .iter()
                        .map(|&(s, _)| {
                            evs.iter()
                                .filter(|e| e.0 > s - span && e.0 <= s)
                                .map(|e| u64::from(e.1))
                                .sum::<u64>()
                        })
                        .max()
                        .unwrap_or(0);
                    prop_assert!(worst >= u64::from(maxretry), "banned {} below threshold", addr);
                }
            }
        }

        /// (4) Heavy hitters survive adversarial orders: whatever the interleaving of a
        /// flood of one-shot addresses (many times the cap) and of an attacker's `maxretry`
        /// failures within findtime, the attacker is banned by its last failure.
        #[test]
        fn prop_an_attacker_is_banned_in_any_flood_order(
            maxretry in 2u32..6,
            cap in 1usize..40,
            flood in 0usize..3000,
            positions in proptest::collection::vec(0.0f64..1.0, 6),
            weights in proptest::collection::vec(1u32..3, 6),
            findtime in 1000i64..100_000,
        ) {
            let mut t = Tracker::new(TrackerConfig { max_tracked: cap, ..cfg(maxretry, findtime) });
            let mut at: Vec<usize> = positions.iter().map(|p| (p * flood as f64) as usize).collect();
            at.truncate(maxretry as usize);
            at.sort();
            let attacker = ip(0xcb00_7107);
            let span = findtime - 1;
            let (mut k, mut sum, mut banned) = (0usize, 0u32, false);
            for i in 0..=flood {
                let now = (i as i64 * span) / flood.max(1) as i64;
                while k < at.len() && at[k] == i {
                    let w = weights[k].min(maxretry - sum.min(maxretry - 1));
                    sum += w;
                    if is_ban(&t.record(&weighted(attacker, now, w), now)) {
                        banned = true;
                    }
                    k += 1;
                }
                if i < flood {
                    t.record(&fail(ip(0x0a00_0000 + i as u32), now), now);
                    prop_assert!(t.stats().tracked <= cap);
                }
            }
            prop_assert!(sum < maxretry || banned, "attacker with {} of {} not banned", sum, maxretry);
        }

        /// (2) maxretry N and N failures of one address within findtime, in any order and
        /// followed by more failures: exactly one ban, on the Nth failure.
        #[test]
        fn prop_n_failures_within_findtime_ban_once(
            n in 1u32..10,
            findtime in 1i64..10_000,
            base in -1_000_000i64..1_000_000,
            offsets in proptest::collection::vec(0.0f64..1.0, 10),
            extra in 0usize..20,
        ) {
            let mut t = Tracker::new(cfg(n, findtime));
            let mut bans = 0;
            for (i, off) in offsets.iter().take(n as usize).enumerate() {
                let time = base + (off * findtime as f64) as i64;
                let time = time.min(base + findtime - 1);
                let d = t.record(&fail(ip(7), time), base + findtime);
                if is_ban(&d) {
                    bans += 1;
                    prop_assert_eq!(i + 1, n as usize);
                }
            }
            for i in 0..extra {
                if is_ban(&t.record(&fail(ip(7), base + i as i64), base + findtime)) {
                    bans += 1;
                }
            }
            prop_assert_eq!(bans, 1);
            prop_assert_eq!(t.stats().ignored_while_banned, extra as u64);
        }

        /// (3) expire returns each ban exactly once, in order of its end, and only once
        /// it is due.
        #[test]
        fn prop_expire_returns_each_ban_once(
            ops in proptest::collection::vec(op(50), 0..400),
        ) {
            let mut t = Tracker::new(TrackerConfig { maxretry: 2, findtime: 20, bantime: 30, max_tracked: 10, v4_prefix: 32, v6_prefix: 128 });
            let mut live: HashMap<Cidr, Millis> = HashMap::new();
            let mut now: Millis = 0;
            let check = |out: &[Decision], live: &mut HashMap<Cidr, Millis>, now: Millis| {
                let mut last = (Millis::MIN, cp(0));
                for d in out {
                    let Decision::Unban { addr, at } = *d else { return false };
                    if live.remove(&addr) != Some(at) || at > now || (at, addr) < last {
                        return false;
                    }
                    last = (at, addr);
                }
                live.values().all(|&u| u > now)
            };
            for o in &ops {
                match *o {
                    Op::Fail { addr, dt, weight, kind, session } => {
                        let f = failure_of(addr, now + dt, weight, kind, session);
                        if let Some(Decision::Ban { addr, until, .. }) = t.record(&f, now) {
                            prop_assert!(live.insert(addr, until).is_none());
                        }
                    }
                    Op::Expire { step } => {
                        now += step;
                        let out = t.expire(now);
                        prop_assert!(check(&out, &mut live, now));
                    }
                    Op::Ban { addr, len } => {
                        t.ban(cp(addr), now, now + len, 1);
                        live.insert(cp(addr), now + len);
                    }
                    Op::Unban { addr } => {
                        prop_assert_eq!(t.unban(cp(addr)).is_some(), live.remove(&cp(addr)).is_some());
                    }
                }
            }
            let out = t.expire(Millis::MAX);
            prop_assert!(check(&out, &mut live, Millis::MAX));
            prop_assert!(live.is_empty());
            prop_assert_eq!(t.next_expiry(), None);
            prop_assert_eq!(t.expire(Millis::MAX), vec![]);
        }
    }
}

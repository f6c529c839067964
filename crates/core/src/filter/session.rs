//! Sessions of a filter with a `[correlate]` section: what the lines of one connection said
//! (its address, its user) and the failures it holds back (rules of kind `pending` and
//! `prelude`) until it ends (they count) or succeeds (they are forgotten).
//!
//! A session is the sending host and process id of the syslog prefix, with the text of the
//! pattern's `key` capture when it has one (slapd's `conn=N`). Looked up by hash: every
//! line of a correlated program may look its session up, so the cost must not grow with
//! the number of sessions remembered, and a new session allocates nothing (a flood of
//! connections makes one per line). A session is known by a 64-bit hash of its key, keyed
//! at random per reader (two sessions sharing one among the few thousand remembered: about
//! one chance in 10^12). At most `capacity` sessions are kept; the one written longest ago
//! is forgotten first.
//!
//! A session ends with its `end` line (a rule's line that is one too): the connection is
//! over, whatever comes later under its key belongs to another. It also ends by age, with
//! `[correlate] max_age`, for the connections whose end line was lost: a process id is used again by a
//! later connection, and when the later connection's first line is lost (log rotation, a
//! rate-limited journal, a restart between lines) or never written (sshd at LogLevel INFO
//! writes no "Connection from"), its address-less lines would take the address of the
//! earlier one, an innocent host, and release failures the earlier one held. A session
//! whose start lies more than `max_age` before a line (the line's own time: the store reads
//! no clock) is over for that line: looked up, it is not there; written, it starts afresh.

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};
use std::net::IpAddr;

use smallvec::SmallVec;

use crate::decision::Millis;

/// A user name as remembered: short names inline (an entry stays small: the table of a
/// busy server's sessions should stay in the cache).
pub(crate) type User = SmallVec<[u8; 16]>;

/// The keys are hashes already (random-keyed SipHash): used as they are.
#[derive(Default)]
struct Identity(u64);

impl Hasher for Identity {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, _: &[u8]) {
        unreachable!("only u64 keys")
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// Remembered user names are cut to this many bytes.
pub(crate) const MAX_REMEMBERED_USER: usize = 256;

/// The session of a line (borrowing the line).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Session<'m> {
    pub(crate) host: &'m [u8],
    pub(crate) pid: u32,
    pub(crate) text: Option<&'m [u8]>,
}

impl Session<'_> {
    /// A session can be told apart only with a pid or a key.
    pub(crate) fn known(&self) -> bool {
        self.pid != 0 || self.text.is_some()
    }
}

/// Failures a session holds back.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Held {
    /// How many (weight 1 each).
    pub(crate) n: u32,
    /// How many of them are `prelude` lines (the session's next attempt replaces one).
    pub(crate) prelude: u32,
    /// The rule of the latest one (reported when they count).
    pub(crate) rule: usize,
    /// One of them is a failure of its own (not only a follow-up waiting for an address).
    pub(crate) real: bool,
}

/// What is remembered of one session.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    /// Write order, for forgetting the oldest.
    generation: u64,
    /// Time of the session's first line that had one (its start, for `max_age`).
    since: Option<Millis>,
    /// An `end` line of the session was read: the connection is over, and a later line
    /// of the same key (a reused pid) belongs to another one. Kept until then (the line
    /// that closed it may still show the user).
    pub(crate) closed: bool,
    pub(crate) user: Option<User>,
    pub(crate) addr: Option<IpAddr>,
    pub(crate) held: Held,
    /// The user name of the session's failures (held or counted), to tell a success of the
    /// same user (which forgives) from one of another user (which does not).
    pub(crate) failed_user: Option<User>,
}

/// The sessions of one filter, for one reader.
#[derive(Debug)]
pub(crate) struct Sessions {
    map: HashMap<u64, Entry, BuildHasherDefault<Identity>>,
    /// (hash, generation) in write order; entries whose generation changed since are stale.
    order: VecDeque<(u64, u64)>,
    generation: u64,
    capacity: usize,
    /// A session is over for a line this long after its start (`None`: only eviction and
    /// the lines that end it forget it).
    max_age: Option<Millis>,
    /// Random per reader.
    seed: u64,
}

impl Sessions {
    pub(crate) fn new(capacity: usize, max_age: Option<Millis>) -> Sessions {
        Sessions {
            map: HashMap::default(),
            order: VecDeque::new(),
            generation: 0,
            capacity: capacity.max(1),
            max_age,
            seed: RandomState::new().hash_one(0x5e55_1011_u64),
        }
    }

    /// The session's key as a hash: 8 bytes at a time through a 64-bit mixer, from a random
    /// seed. Not a defence against chosen keys, which it needs none against: the host and
    /// pid come from the syslog prefix (the logging side), the key text from the program's
    /// own counter (slapd's `conn=N`).
    fn hash(&self, s: Session<'_>) -> u64 {
        let mut h = fold(self.seed, s.host);
        if let Some(t) = s.text {
            h = fold(h, t);
        }
        mix(h ^ u64::from(s.pid) ^ (u64::from(s.text.is_some()) << 40))
    }

    /// Whether `e` is over for a line of time `now`: closed by an `end` line, or started
    /// more than `max_age` before (unknown when either time is; a line older than the start
    /// does not end it).
    fn expired(&self, e: &Entry, now: Option<Millis>) -> bool {
        if e.closed {
            return true;
        }
        match (self.max_age, e.since, now) {
            (Some(max), Some(since), Some(now)) => now.saturating_sub(since) > max,
            _ => false,
        }
    }

    /// The session's entry for a line of time `now`, if remembered and not over.
    pub(crate) fn get(&self, s: Session<'_>, now: Option<Millis>) -> Option<&Entry> {
        if !s.known() {
            return None;
        }
        self.map
            .get(&self.hash(s))
            .filter(|e| !self.expired(e, now))
    }

    /// The session's entry as it is, over or not (what the line being read just wrote).
    pub(crate) fn peek(&self, s: Session<'_>) -> Option<&Entry> {
        if !s.known() {
            return None;
        }
        self.map.get(&self.hash(s))
    }

    /// The session's entry, even one an `end` line closed, when it holds failures without an
    /// address and started at most `window` before `now` (both times known): what a late
    /// address line may still give its address to. Older ones are another connection's
    /// leftovers (a key counted again from 1 after a restart).
    pub(crate) fn waiting_mut(
        &mut self,
        s: Session<'_>,
        now: Option<Millis>,
        window: Millis,
    ) -> Option<&mut Entry> {
        if !s.known() {
            return None;
        }
        let h = self.hash(s);
        self.map.get_mut(&h).filter(|e| {
            e.addr.is_none()
                && e.held.n > 0
                && matches!((e.since, now), (Some(since), Some(now)) if now.saturating_sub(since) <= window)
        })
    }

    /// The session's entry for a line of time `now`, if remembered (not refreshed: reading
    /// is not writing); one that is over is forgotten.
    pub(crate) fn get_mut(&mut self, s: Session<'_>, now: Option<Millis>) -> Option<&mut Entry> {
        if !s.known() {
            return None;
        }
        let h = self.hash(s);
        // (an unknown session, the usual case, is looked up once)
        if self.expired(self.map.get(&h)?, now) {
            self.map.remove(&h);
            return None;
        }
        self.map.get_mut(&h)
    }

    /// Forgets the session.
    pub(crate) fn remove(&mut self, s: Session<'_>) {
        if !s.known() {
            return;
        }
        let h = self.hash(s);
        self.map.remove(&h);
    }

    /// The session's entry for a line of time `now`, created empty when new (or when
    /// `fresh`: a line that starts the session anew, or when the one remembered is over);
    /// made the newest. `None` for a line without a session.
    pub(crate) fn write(
        &mut self,
        s: Session<'_>,
        fresh: bool,
        now: Option<Millis>,
    ) -> Option<&mut Entry> {
        if !s.known() {
            return None;
        }
        let h = self.hash(s);
        self.generation += 1;
        let generation = self.generation;
        // (one lookup tells whether the session is there, and whether it is over)
        let present = match self.map.get(&h).map(|e| fresh || self.expired(e, now)) {
            Some(true) => {
                self.map.remove(&h);
                false
            }
            Some(false) => true,
            None => false,
        };
        if !present {
            while self.map.len() >= self.capacity {
                self.evict_oldest();
            }
        }
        self.order.push_back((h, generation));
        if self.order.len() > 2 * self.capacity + 64 {
            self.compact();
        }
        let e = self.map.entry(h).or_insert_with(|| Entry {
            generation,
            since: now,
            closed: false,
            user: None,
            addr: None,
            held: Held::default(),
            failed_user: None,
        });
        e.generation = generation;
        if e.since.is_none() {
            e.since = now;
        }
        Some(e)
    }

    fn evict_oldest(&mut self) {
        while let Some((h, g)) = self.order.pop_front() {
            if self.map.get(&h).is_some_and(|e| e.generation == g) {
                self.map.remove(&h);
                return;
            }
        }
        // (the order list always holds every live entry's latest write)
        self.map.clear();
    }

    /// Drops the stale entries of the order list.
    fn compact(&mut self) {
        let map = &self.map;
        self.order
            .retain(|(h, g)| map.get(h).is_some_and(|e| e.generation == *g));
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }
}

/// The tracker's session of a line (`Hit::pid`): its process id, or, when the rule
/// captured a `key` (one connection of a process that serves many: postscreen's client
/// port, slapd's `conn=N`, OpenSMTPD's session id), the pid and the key together. A fixed
/// hash (every reader and every run computes the same), never 0 (0 is "unknown").
pub(crate) fn conn_id(pid: u32, key: Option<&[u8]>) -> u32 {
    let Some(k) = key else {
        return pid;
    };
    ((fold(mix(u64::from(pid)), k) >> 32) as u32).max(1)
}

/// `h` with the bytes `b` mixed in, 8 at a time, and their length.
fn fold(mut h: u64, b: &[u8]) -> u64 {
    let mut chunks = b.chunks_exact(8);
    for c in &mut chunks {
        h = mix(h ^ u64::from_le_bytes(c.try_into().expect("8 bytes")));
    }
    mix(h ^ crate::bytes::le_tail(chunks.remainder()) ^ ((b.len() as u64) << 56))
}

/// splitmix64's finaliser: every input bit changes about half of the output bits.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// A user name as remembered (cut).
pub(crate) fn keep_user(u: &[u8]) -> User {
    SmallVec::from_slice(&u[..u.len().min(MAX_REMEMBERED_USER)])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(pid: u32) -> Session<'static> {
        Session {
            host: b"h",
            pid,
            text: None,
        }
    }

    #[test]
    fn oldest_written_is_forgotten_first_and_lookups_stay_exact() {
        let mut m = Sessions::new(3, None);
        for pid in 1..=3 {
            m.write(s(pid), false, None).unwrap().addr = Some([192, 0, 2, pid as u8].into());
        }
        // writing 1 again makes it the newest: 2 is the oldest now
        m.write(s(1), false, None).unwrap();
        m.write(s(4), false, None).unwrap();
        assert_eq!(m.len(), 3);
        assert!(m.get(s(2), None).is_none());
        assert_eq!(m.get(s(1), None).unwrap().addr, Some([192, 0, 2, 1].into()));
        // a fresh write starts the session anew
        assert!(m.write(s(1), true, None).unwrap().addr.is_none());
        // another host, same pid: another session
        let other = Session {
            host: b"g",
            pid: 4,
            text: None,
        };
        assert!(m.get(other, None).is_none());
        // no pid and no key: no session
        assert!(m.write(s(0), false, None).is_none());
        for i in 0..10_000u32 {
            m.write(s(10 + i % 7), false, None).unwrap();
        }
        assert!(m.len() <= 3 && m.order.len() <= 2 * 3 + 64 + 1);
    }

    const MIN: Millis = 60_000;

    /// A session remembered with a `max_age` ends for a line more than that after its
    /// start: an address-less line of a new connection on a reused pid does not take the
    /// old connection's address. Time comes from the lines only.
    #[test]
    fn a_session_older_than_max_age_is_over() {
        let a: IpAddr = [198, 51, 100, 9].into();
        let mut m = Sessions::new(16, Some(5 * MIN));
        // the connection's first line, at 10:00 (minute 600)
        m.write(s(7), true, Some(600 * MIN)).unwrap().addr = Some(a);
        // its own lines, within five minutes: the address
        assert_eq!(m.get(s(7), Some(604 * MIN)).unwrap().addr, Some(a));
        assert_eq!(m.get(s(7), Some(605 * MIN)).unwrap().addr, Some(a));
        assert_eq!(m.get_mut(s(7), Some(605 * MIN)).unwrap().addr, Some(a));
        // a line written later does not make the session younger
        m.write(s(7), false, Some(604 * MIN)).unwrap();
        // the same pid two hours later: another connection, nothing of the old one
        assert!(m.get(s(7), Some(720 * MIN)).is_none());
        // (a line older than the start, written out of order, does not end it)
        assert_eq!(m.get(s(7), Some(590 * MIN)).unwrap().addr, Some(a));
        // writing for the later line starts it afresh, from that line's time
        let e = m.write(s(7), false, Some(720 * MIN)).unwrap();
        assert!(e.addr.is_none() && e.held == Held::default() && e.user.is_none());
        e.held.n = 1;
        assert_eq!(m.get(s(7), Some(724 * MIN)).unwrap().held.n, 1);
        // get_mut forgets one that is over
        assert!(m.get_mut(s(7), Some(800 * MIN)).is_none());
        assert_eq!(m.len(), 0);
        // a line without a time, or a store without max_age: as before, no age
        m.write(s(8), true, None).unwrap().addr = Some(a);
        assert_eq!(m.get(s(8), Some(9_999 * MIN)).unwrap().addr, Some(a));
        let mut m = Sessions::new(16, None);
        m.write(s(8), true, Some(0)).unwrap().addr = Some(a);
        assert_eq!(m.get(s(8), Some(9_999 * MIN)).unwrap().addr, Some(a));
        assert_eq!(m.get(s(8), None).unwrap().addr, Some(a));
        // a session whose first line had no time takes its start from the first that has
        let mut m = Sessions::new(16, Some(5 * MIN));
        m.write(s(9), true, None).unwrap().addr = Some(a);
        m.write(s(9), false, Some(10 * MIN)).unwrap();
        assert!(m.get(s(9), Some(14 * MIN)).is_some());
        assert!(m.get(s(9), Some(16 * MIN)).is_none());
        // a session closed by an `end` line is over at once, for any line
        let mut m = Sessions::new(16, None);
        m.write(s(10), true, Some(0)).unwrap().addr = Some(a);
        m.get_mut(s(10), Some(0)).unwrap().closed = true;
        assert!(m.get(s(10), Some(1)).is_none());
        assert!(m.get(s(10), None).is_none());
        assert!(m.peek(s(10)).is_some_and(|e| e.closed));
        let e = m.write(s(10), false, Some(2)).unwrap();
        assert!(!e.closed && e.addr.is_none());
    }
}

//! A windowed Count-Min sketch: bounded memory that remembers, approximately but never
//! too little, how much every key weighed recently.
//!
//! The tracker keeps exact windows for at most `max_tracked` offenders. In a flood (DOSBAIL:
//! millions of one-shot addresses) it must forget some; what it forgets goes into this
//! sketch, so an attacker hidden in the flood still reaches `maxretry`.
//!
//! # Algorithm and guarantee
//!
//! Count-Min (Cormode and Muthukrishnan, 2005) with conservative update (Estan and Varghese,
//! 2002): `ROWS` rows of `width` saturating 8-bit counters, one keyed hash per row. Adding
//! `w` to key `k` raises each of its counters to at least `estimate(k) + w`; the estimate is
//! the smallest of its counters. So:
//!
//! * **never too little:** the estimate of a key is at least the weight added for it (up to
//!   255, the counters' ceiling: more than any sane `maxretry`);
//! * **too much only on collisions:** with `N` weight added, the excess of a key is at least
//!   `m` only if each of its `ROWS` counters took `m` from other keys; for one row that has
//!   probability at most `N / (width × m)` (Markov), so at most `(N / (width × m))^ROWS` for
//!   the key. With the tracker's sizing (`width` = 2^22 for any real `max_tracked`) a
//!   flood of 2,000,000 one-shot addresses gives `N / width` ≈ 0.5, and the chance that a
//!   one-time failure looks like 5 is below (0.5/4)^4 ≈ 2·10⁻⁴ by Markov, ≈ 10⁻¹¹ by the
//!   actual (Poisson) counts. The hashes are keyed with a seed the daemon picks at random,
//!   so an attacker cannot aim collisions at someone else's address.
//!
//! Time: two generations, each `span` (the jail's `findtime`) long, chosen by the event's own
//! time; the estimate at time `t` adds the generations of `t`'s span and the one before. An
//! event added counts for at least `span` and at most `2 × span` after it happened:
//! forgotten failures are judged with a window up to twice `findtime`.
//!
//! Memory: `2 × ROWS × width` bytes (32 MiB at the largest width), allocated at the first
//! eviction only.

use crate::decision::Millis;
use crate::ignore::Cidr;

/// Rows (independent hashes) per generation.
pub const ROWS: usize = 4;
/// The largest width (counters per row): 2^22.
pub const MAX_WIDTH: usize = 1 << 22;
/// The smallest width.
pub const MIN_WIDTH: usize = 1 << 10;

/// The width used for a tracker of `max_tracked` windows: [`MAX_WIDTH`] from 10,000
/// windows on (every real setting: the default is 200,000); below that (tests) 16 counters
/// per window, a power of two, at least [`MIN_WIDTH`].
pub fn width_for(max_tracked: usize) -> usize {
    if max_tracked >= 10_000 {
        return MAX_WIDTH;
    }
    max_tracked
        .saturating_mul(16)
        .next_power_of_two()
        .clamp(MIN_WIDTH, MAX_WIDTH)
}

#[derive(Debug, Clone)]
struct Generation {
    epoch: i64,
    counts: Vec<u8>,
}

/// See the module documentation.
#[derive(Debug, Clone)]
pub struct Sketch {
    width: usize,
    span: Millis,
    seed: u64,
    /// `[0]` is the newest generation, `[1]` the one before.
    gens: [Generation; 2],
}

fn mix(mut z: u64) -> u64 {
    // splitmix64's finaliser
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl Sketch {
    /// An empty sketch of `width` counters per row (a power of two), generations of `span`.
    pub fn new(width: usize, span: Millis, seed: u64) -> Sketch {
        let width = width.next_power_of_two().max(2);
        let gen = |epoch| Generation {
            epoch,
            counts: vec![0; ROWS * width],
        };
        Sketch {
            width,
            span: span.max(1),
            seed,
            gens: [gen(i64::MIN + 1), gen(i64::MIN)],
        }
    }

    /// Bytes of counters held.
    pub fn bytes(&self) -> usize {
        2 * ROWS * self.width
    }

    fn epoch(&self, t: Millis) -> i64 {
        t.div_euclid(self.span)
    }

    fn slots(&self, key: &Cidr) -> [usize; ROWS] {
        let (hi, lo) = match key.addr {
            std::net::IpAddr::V4(v) => (0u64, u64::from(u32::from(v))),
            std::net::IpAddr::V6(v) => {
                let b = u128::from(v);
                ((b >> 64) as u64 | 1 << 63, b as u64)
            }
        };
        let base = mix(self.seed ^ mix(hi ^ mix(lo ^ u64::from(key.len))));
        let mut out = [0; ROWS];
        for (r, o) in out.iter_mut().enumerate() {
            let h = mix(base.wrapping_add((r as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15)));
            *o = r * self.width + (h as usize & (self.width - 1));
        }
        out
    }

    /// Adds `weight` for `key`, for an event at `time`. Events older than the previous
    /// generation are dropped (they are out of every window by now).
    pub fn add(&mut self, key: &Cidr, weight: u32, time: Millis) {
        let e = self.epoch(time);
        if e > self.gens[0].epoch {
            if e == self.gens[0].epoch + 1 {
                self.gens.swap(0, 1);
            } else {
                self.gens[1].counts.fill(0);
                self.gens[1].epoch = e - 1;
            }
            self.gens[0].counts.fill(0);
            self.gens[0].epoch = e;
        }
        let Some(g) = self.gens.iter().position(|g| g.epoch == e) else {
            return;
        };
        let slots = self.slots(key);
        let counts = &mut self.gens[g].counts;
        let est = slots.iter().map(|&i| counts[i]).min().unwrap_or(0);
        let want = u32::from(est).saturating_add(weight).min(255) as u8;
        for &i in &slots {
            counts[i] = counts[i].max(want);
        }
    }

    /// The weight of `key` in the generations of `time` and the one before: at least what
    /// was added for it at those times.
    pub fn estimate(&self, key: &Cidr, time: Millis) -> u32 {
        let e = self.epoch(time);
        let slots = self.slots(key);
        self.gens
            .iter()
            .filter(|g| g.epoch == e || g.epoch == e - 1)
            .map(|g| u32::from(slots.iter().map(|&i| g.counts[i]).min().unwrap_or(0)))
            .sum()
    }

    /// The generation of `time` is still held (for forgetting a debt).
    pub fn holds(&self, epoch: i64) -> bool {
        self.gens.iter().any(|g| g.epoch == epoch)
    }

    /// The epoch (generation number) of `time`.
    pub fn epoch_of(&self, time: Millis) -> i64 {
        self.epoch(time)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn key(i: u32) -> Cidr {
        Cidr::host(std::net::Ipv4Addr::from(i).into())
    }

    #[test]
    fn counts_and_forgets_by_generation() {
        let mut s = Sketch::new(1024, 100, 7);
        s.add(&key(1), 1, 10);
        s.add(&key(1), 2, 150);
        assert_eq!(s.estimate(&key(1), 150), 3);
        assert_eq!(s.estimate(&key(2), 150), 0);
        // two spans later the first generation is gone
        s.add(&key(3), 1, 250);
        assert_eq!(s.estimate(&key(1), 250), 2);
        s.add(&key(3), 1, 999);
        assert_eq!(s.estimate(&key(1), 999), 0);
        // an event older than both generations is dropped
        s.add(&key(4), 1, 0);
        assert_eq!(s.estimate(&key(4), 999), 0);
        assert_eq!(width_for(200_000), MAX_WIDTH);
        assert_eq!(width_for(3), MIN_WIDTH);
    }

    proptest! {
        /// Never less than what was added in the two generations, whatever else was added.
        #[test]
        fn prop_never_underestimates(
            adds in proptest::collection::vec((0u32..5000, 1u32..4, 0i64..300), 1..2000),
            seed in any::<u64>(),
        ) {
            let mut s = Sketch::new(1024, 100, seed);
            let mut truth: std::collections::HashMap<(u32, i64), u32> = Default::default();
            let mut t = 0;
            for &(k, w, dt) in &adds {
                t += dt / 50; // mostly forward in time
                s.add(&key(k), w, t);
                *truth.entry((k, t.div_euclid(100))).or_default() += w;
            }
            let e = t.div_euclid(100);
            for &(k, _, _) in &adds {
                let want: u32 = truth.get(&(k, e)).copied().unwrap_or(0)
                    + truth.get(&(k, e - 1)).copied().unwrap_or(0);
                prop_assert!(s.estimate(&key(k), t) >= want.min(255));
            }
        }
    }
}

//! Exact leftmost-first ("Perl") captures for the anchored patterns of a filter, in two
//! linear passes and without backtracking.
//!
//! * Pass 1 runs a lazily built reverse DFA from the end of the message to its start.
//!   Its state at position `i` is the set of NFA states from which the NFA can consume
//!   `message[i..]` and reach its match state (the states *live* at `i`). The message
//!   matches iff the NFA's anchored start state is live at 0.
//! * Pass 2 walks the NFA forward from the start along a single path. At an alternation
//!   it takes the first alternative, in priority order, that is live at the current
//!   position, and it records capture positions on the way.
//!
//! Pass 2 follows exactly the path that the regex crate's backtracker commits to: the
//! backtracker explores alternatives depth-first in priority order and stops at the
//! first path that reaches the match state, and an alternative leads to a match iff it
//! is live. (Its visited set only prunes (state, position) pairs that were already
//! explored without success, which changes nothing, provided the NFA has no cycle of
//! empty transitions: such patterns are not compiled here.) The regex crate's other
//! engines give the same captures as the backtracker by contract. Patterns using
//! look-around other than `^`/`$` are not compiled here either; for them, and when the
//! DFA cache overflows, the caller uses the regex crate.
//!
//! Known prefix: when the caller knows that the message starts with one of the rule's
//! prefix literals, everything before the end of that literal depends only on the
//! literal and on the DFA state at its end. Pass 1 then stops there, and the outcome of
//! the rest of pass 1 and of pass 2 up to that point (whether the start is live, where
//! the path crosses the end of the literal, the captures on the way) is remembered per
//! (literal, DFA state).

use std::collections::HashMap;

use regex_automata::nfa::thompson::{self, State};
use regex_automata::util::look::Look;
use regex_automata::util::primitives::PatternID;

/// Larger NFAs are left to the regex crate.
const MAX_NFA_STATES: usize = 20_000;
/// Memory a [`Cache`] may use before it is cleared (at the start of a search).
const CACHE_BUDGET: usize = 2 << 20;

const NONE: u32 = u32::MAX;
const UNKNOWN: u32 = u32::MAX;
const DEAD: u32 = 0;
const T_UNKNOWN: u16 = u16::MAX;

// NFA state kinds
const CONSUME: u8 = 0; // one byte, one target (`next`)
const CONSUME_N: u8 = 1; // one byte, target depends on the byte (`delta` row `arg`)
const UNION: u8 = 2; // alternatives `alts[next..next + arg]`, in priority order
const CAPTURE: u8 = 3; // record the position in compact slot `arg`, go to `next`
const PASS: u8 = 4; // empty transition to `next`, maybe conditional on `look`
const MATCH: u8 = 5;
const FAIL: u8 = 6;
// pass 2 only
const STOP: u8 = 7; // no capture we want can follow
const STAR: u8 = 8; // a UNION whose first alternative is one byte and back (greedy loop)

const LOOK_NONE: u8 = 0;
const LOOK_START: u8 = 1;
const LOOK_END: u8 = 2;

/// Result of [`Prog::run`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The pattern does not match the whole haystack.
    NoMatch,
    /// It matches; [`Cache::group`] gives the captures.
    Match,
    /// The cache limit was hit: ask the regex crate.
    GaveUp,
}

/// One pattern, compiled for the two passes (immutable, shared between threads).
#[derive(Debug)]
pub(crate) struct Prog {
    classes: [u8; 256],
    nclasses: usize,
    shift: u32,
    words: usize,
    start: u32,
    kind: Vec<u8>,
    walk: Vec<u8>,
    look: Vec<u8>,
    next: Vec<u32>,
    arg: Vec<u32>,
    alts: Vec<u32>,
    delta: Vec<u32>,
    consuming: Vec<(u32, u32)>,
    eps_order: Vec<u32>,
    matches: Vec<u32>,
    /// The match state can be reached only through `$`: it is live at the end only.
    match_at_end: bool,
    /// For `CONSUME`/`PASS` states: where their run of such states ends, and how many
    /// bytes the run consumes.
    jump: Vec<(u32, u32)>,
    /// For each entry of `alts`: the alternative, or where its run of `CONSUME`/`PASS`
    /// states ends, with the bytes consumed on the way.
    alt_to: Vec<(u32, u32)>,
    nslots: usize,
    max_states: usize,
}

/// What pass 1 and pass 2 did before the end of a known prefix (see the module doc).
#[derive(Debug, Clone)]
struct Memo {
    prefix: u32,
    /// Next memo of the same DFA state, or `NONE`.
    chain: u32,
    live: bool,
    state: u32,
    pos: u32,
    slots: Box<[(u32, u32)]>,
}

/// Per-reader state of one [`Prog`]: the lazily built reverse DFA and the buffers.
#[derive(Debug, Default)]
pub(crate) struct Cache {
    ready: bool,
    /// Transitions of the reverse DFA, by state + byte class (`T_UNKNOWN`: not
    /// computed yet).
    trans: Vec<u16>,
    /// The same at position 0 (where `^` holds).
    trans0: Vec<u16>,
    /// The NFA state set of each DFA state.
    sets: Vec<u64>,
    /// First memo of each DFA state (by state index), or `NONE`.
    memo_head: Vec<u32>,
    memos: Vec<Memo>,
    map: HashMap<Box<[u64]>, u32>,
    init: [u32; 2],
    rbuf: Vec<u32>,
    tmp: Vec<u64>,
    slots: Vec<usize>,
}

#[inline]
fn bit(set: &[u64], i: u32) -> bool {
    set[(i >> 6) as usize] & (1u64 << (i & 63)) != 0
}

impl Prog {
    /// Compiles `nfa` (of a whole anchored pattern) for the capture groups `groups`
    /// (group indexes, as the regex crate numbers them); `None` when this engine does not
    /// handle the pattern.
    pub(crate) fn build(nfa: &thompson::NFA, groups: &[Option<usize>]) -> Option<Prog> {
        let states = nfa.states();
        let n = states.len();
        if n == 0 || n > MAX_NFA_STATES || nfa.pattern_len() != 1 {
            return None;
        }
        // compact slots: 2*j and 2*j+1 for groups[j]
        let gi = nfa.group_info();
        let mut slot_map: HashMap<usize, u32> = HashMap::new();
        for (j, g) in groups.iter().enumerate() {
            if let Some(g) = *g {
                let s = gi.slot(PatternID::ZERO, g)?;
                slot_map.insert(s, 2 * j as u32);
                slot_map.insert(s + 1, 2 * j as u32 + 1);
            }
        }
        // byte classes: bytes no transition tells apart share a class
        let mut bounds = [false; 257];
        bounds[0] = true;
        fn mark(bounds: &mut [bool; 257], lo: u8, hi: u8) {
            bounds[lo as usize] = true;
            bounds[hi as usize + 1] = true;
        }
        for st in states {
            match st {
                State::ByteRange { trans } => mark(&mut bounds, trans.start, trans.end),
                State::Sparse(sp) => {
                    for t in sp.transitions.iter() {
                        mark(&mut bounds, t.start, t.end);
                    }
                }
                State::Dense(d) => {
                    for (b, w) in d.transitions.windows(2).enumerate() {
                        if w[0] != w[1] {
                            bounds[b + 1] = true;
                        }
                    }
                }
                _ => {}
            }
        }
        let mut classes = [0u8; 256];
        let mut reps = vec![0u8];
        for b in 1..256 {
            if bounds[b] {
                reps.push(b as u8);
            }
            classes[b] = (reps.len() - 1) as u8;
        }
        let nclasses = reps.len();
        let stride = nclasses.next_power_of_two();
        let target = |st: &State, b: u8| -> Option<u32> {
            match st {
                State::ByteRange { trans } => trans.matches_byte(b).then(|| trans.next.as_u32()),
                State::Sparse(sp) => sp.matches_byte(b).map(|t| t.as_u32()),
                State::Dense(d) => d.matches_byte(b).map(|t| t.as_u32()),
                _ => None,
            }
        };
        let mut kind = vec![FAIL; n];
        let mut look = vec![LOOK_NONE; n];
        let mut next = vec![NONE; n];
        let mut arg = vec![0u32; n];
        let mut alts = Vec::new();
        let mut delta = Vec::new();
        let mut consuming = Vec::new();
        for (i, st) in states.iter().enumerate() {
            match st {
                State::ByteRange { .. } | State::Sparse(_) | State::Dense(_) => {
                    let row = (delta.len() / nclasses) as u32;
                    delta.extend(reps.iter().map(|&b| target(st, b).unwrap_or(NONE)));
                    let targets: Vec<u32> = delta[delta.len() - nclasses..]
                        .iter()
                        .copied()
                        .filter(|&t| t != NONE)
                        .collect();
                    if targets.is_empty() {
                        kind[i] = FAIL;
                        continue;
                    }
                    consuming.push((i as u32, row));
                    arg[i] = row;
                    if targets.iter().all(|&t| t == targets[0]) {
                        kind[i] = CONSUME;
                        next[i] = targets[0];
                    } else {
                        kind[i] = CONSUME_N;
                    }
                }
                State::Look { look: l, next: nx } => {
                    kind[i] = PASS;
                    next[i] = nx.as_u32();
                    look[i] = match l {
                        Look::Start => LOOK_START,
                        Look::End => LOOK_END,
                        _ => return None,
                    };
                }
                State::Union { alternates } => {
                    kind[i] = UNION;
                    next[i] = alts.len() as u32;
                    arg[i] = alternates.len() as u32;
                    alts.extend(alternates.iter().map(|a| a.as_u32()));
                }
                State::BinaryUnion { alt1, alt2 } => {
                    kind[i] = UNION;
                    next[i] = alts.len() as u32;
                    arg[i] = 2;
                    alts.push(alt1.as_u32());
                    alts.push(alt2.as_u32());
                }
                State::Capture { next: nx, slot, .. } => {
                    next[i] = nx.as_u32();
                    match slot_map.get(&slot.as_usize()) {
                        Some(&c) => {
                            kind[i] = CAPTURE;
                            arg[i] = c;
                        }
                        None => kind[i] = PASS,
                    }
                }
                State::Fail => kind[i] = FAIL,
                State::Match { .. } => kind[i] = MATCH,
            }
        }
        let succ = |i: usize| -> Vec<u32> {
            match kind[i] {
                UNION => alts[next[i] as usize..(next[i] + arg[i]) as usize].to_vec(),
                CAPTURE | PASS => vec![next[i]],
                CONSUME | CONSUME_N => {
                    let row = arg[i] as usize * nclasses;
                    let mut ts: Vec<u32> = delta[row..row + nclasses]
                        .iter()
                        .copied()
                        .filter(|&t| t != NONE)
                        .collect();
                    ts.sort_unstable();
                    ts.dedup();
                    ts
                }
                _ => Vec::new(),
            }
        };
        let is_eps = |i: usize| matches!(kind[i], UNION | CAPTURE | PASS);
        // empty-transition states, successors first; a cycle of them is not supported
        let mut color = vec![0u8; n];
        let mut eps_order = Vec::new();
        for root in 0..n {
            if color[root] != 0 || !is_eps(root) {
                continue;
            }
            let mut stack = vec![(root, succ(root), 0usize)];
            color[root] = 1;
            while let Some((v, ss, k)) = stack.last_mut() {
                if *k < ss.len() {
                    let w = ss[*k] as usize;
                    *k += 1;
                    if !is_eps(w) {
                        continue;
                    }
                    match color[w] {
                        0 => {
                            color[w] = 1;
                            stack.push((w, succ(w), 0));
                        }
                        1 => return None,
                        _ => {}
                    }
                } else {
                    color[*v] = 2;
                    eps_order.push(*v as u32);
                    stack.pop();
                }
            }
        }
        let succs: Vec<Vec<u32>> = (0..n).map(succ).collect();
        // Is the match state reachable from the start other than through `$`?
        let start = nfa.start_anchored().as_usize();
        let mut seen = vec![false; n];
        let mut todo = vec![start];
        seen[start] = true;
        let mut match_early = false;
        while let Some(v) = todo.pop() {
            if kind[v] == MATCH {
                match_early = true;
                break;
            }
            if kind[v] == PASS && look[v] == LOOK_END {
                continue;
            }
            for &w in &succs[v] {
                if !seen[w as usize] {
                    seen[w as usize] = true;
                    todo.push(w as usize);
                }
            }
        }
        // states from which a wanted capture can still be reached
        let mut preds: Vec<Vec<u32>> = vec![Vec::new(); n];
        for (i, ss) in succs.iter().enumerate() {
            for &t in ss {
                preds[t as usize].push(i as u32);
            }
        }
        let mut reach = vec![false; n];
        let mut todo: Vec<usize> = (0..n).filter(|&i| kind[i] == CAPTURE).collect();
        for &i in &todo {
            reach[i] = true;
        }
        while let Some(v) = todo.pop() {
            for &p in &preds[v] {
                if !reach[p as usize] {
                    reach[p as usize] = true;
                    todo.push(p as usize);
                }
            }
        }
        let mut walk: Vec<u8> = (0..n)
            .map(|i| {
                if reach[i] || kind[i] == MATCH {
                    kind[i]
                } else {
                    STOP
                }
            })
            .collect();
        // runs of CONSUME/PASS states (memoised, in reverse discovery order)
        let mut jump: Vec<(u32, u32)> = vec![(NONE, 0); n];
        for i in 0..n {
            let mut path = Vec::new();
            let mut t = i;
            while matches!(walk[t], CONSUME | PASS) && jump[t].0 == NONE && path.len() <= n {
                path.push(t);
                t = next[t] as usize;
            }
            let (mut end, mut k) = if matches!(walk[t], CONSUME | PASS) && jump[t].0 != NONE {
                jump[t]
            } else {
                (t as u32, 0)
            };
            while let Some(p) = path.pop() {
                if walk[p] == CONSUME {
                    k += 1;
                }
                if jump[p].0 == NONE {
                    jump[p] = (end, k);
                } else {
                    (end, k) = jump[p];
                }
            }
        }
        for i in 0..n {
            if walk[i] == UNION {
                let x = alts[next[i] as usize] as usize;
                if walk[x] == CONSUME && jump[x] == (i as u32, 1) {
                    walk[i] = STAR;
                }
            }
        }
        let alt_to = alts
            .iter()
            .map(|&x| match walk[x as usize] {
                CONSUME | PASS => jump[x as usize],
                _ => (x, 0),
            })
            .collect();
        let matches = (0..n as u32)
            .filter(|&i| kind[i as usize] == MATCH)
            .collect();
        let words = n.div_ceil(64);
        let per_state = 16 * words + 4 * stride + 96;
        Some(Prog {
            classes,
            nclasses,
            shift: stride.trailing_zeros(),
            words,
            start: start as u32,
            kind,
            walk,
            look,
            next,
            arg,
            alts,
            delta,
            consuming,
            eps_order,
            matches,
            match_at_end: !match_early,
            jump,
            alt_to,
            nslots: 2 * groups.len(),
            // A cache is cleared at `max_states` and gives up at twice that (+ 64): the
            // state ids (index << shift) must stay below `T_UNKNOWN` in a u16, which
            // keeps the transition table small (in the first-level cache) too.
            max_states: (CACHE_BUDGET / per_state)
                .clamp(64, 16_000)
                .min(((usize::from(T_UNKNOWN) >> stride.trailing_zeros()) - 64) / 2),
        })
    }

    /// The same with another cache limit (tests).
    pub(crate) fn with_max_states(mut self, n: usize) -> Prog {
        self.max_states = n;
        self
    }

    /// The live set of a position into `out`: from the live set `after` of the next
    /// position and the class of the byte here (`None` at the end of the haystack).
    fn closure(
        &self,
        after: Option<(&[u64], usize)>,
        at_start: bool,
        at_end: bool,
        out: &mut Vec<u64>,
    ) {
        out.clear();
        out.resize(self.words, 0);
        if at_end || !self.match_at_end {
            for &m in &self.matches {
                out[(m >> 6) as usize] |= 1u64 << (m & 63);
            }
        }
        if let Some((nx, class)) = after {
            for &(s, row) in &self.consuming {
                let t = self.delta[row as usize * self.nclasses + class];
                if t != NONE && bit(nx, t) {
                    out[(s >> 6) as usize] |= 1u64 << (s & 63);
                }
            }
        }
        for &e in &self.eps_order {
            let i = e as usize;
            let live = match self.kind[i] {
                UNION => {
                    let a = self.next[i] as usize;
                    self.alts[a..a + self.arg[i] as usize]
                        .iter()
                        .any(|&x| bit(out, x))
                }
                CAPTURE | PASS => {
                    (match self.look[i] {
                        LOOK_START => at_start,
                        LOOK_END => at_end,
                        _ => true,
                    }) && bit(out, self.next[i])
                }
                _ => false,
            };
            if live {
                out[(e >> 6) as usize] |= 1u64 << (e & 63);
            }
        }
    }

    /// Matches the whole `hay`; on [`Outcome::Match`], [`Cache::group`] gives the
    /// captures. `prefix`, when given, is `(id, len)` of a prefix literal of this rule
    /// that `hay` starts with (the same id must always mean the same literal).
    pub(crate) fn run(
        &self,
        cache: &mut Cache,
        hay: &[u8],
        prefix: Option<(u32, usize)>,
    ) -> Outcome {
        if !cache.ready || cache.states(self) >= self.max_states {
            cache.reset(self);
        }
        if cache.rbuf.capacity() > 1 << 16 && hay.len() < 1 << 12 {
            // do not keep the buffer of a huge line
            cache.rbuf = Vec::new();
        }
        let (pid, plen) = match prefix {
            Some((id, l)) if l > 0 && l <= hay.len() => (id, l),
            _ => (NONE, 0),
        };
        let r = match self.live_sets(cache, hay, plen) {
            Ok(r) => r,
            Err(o) => return o,
        };
        cache.slots.clear();
        cache.slots.resize(self.nslots, usize::MAX);
        if pid != NONE {
            let ri = (r >> self.shift) as usize;
            let mut m = cache.memo_head[ri];
            while m != NONE {
                let e = &cache.memos[m as usize];
                if e.prefix == pid {
                    if !e.live {
                        return Outcome::NoMatch;
                    }
                    for &(sl, p) in e.slots.iter() {
                        cache.slots[sl as usize] = p as usize;
                    }
                    let (s, p) = (e.state as usize, e.pos as usize);
                    return self.walk(cache, hay, s, p, usize::MAX).0;
                }
                m = e.chain;
            }
            // not seen yet: finish pass 1, then walk and remember
            let r0 = match self.live_sets_to(cache, hay, plen, 0, r) {
                Ok(r0) => r0,
                Err(o) => return o,
            };
            let live = bit(cache.set(self, r0), self.start);
            let mut memo = Memo {
                prefix: pid,
                chain: cache.memo_head[ri],
                live,
                state: NONE,
                pos: 0,
                slots: Box::new([]),
            };
            if !live {
                cache.memo_head[ri] = cache.memos.len() as u32;
                cache.memos.push(memo);
                return Outcome::NoMatch;
            }
            let (o, at) = self.walk(cache, hay, self.start as usize, 0, plen);
            if let Some((s, p, slots)) = at {
                memo.state = s;
                memo.pos = p;
                memo.slots = slots;
                cache.memo_head[ri] = cache.memos.len() as u32;
                cache.memos.push(memo);
            }
            return o;
        }
        if !bit(cache.set(self, r), self.start) {
            return Outcome::NoMatch;
        }
        self.walk(cache, hay, self.start as usize, 0, usize::MAX).0
    }

    /// Pass 1 from the end down to `stop`: the DFA states into `cache.rbuf[stop..]`;
    /// returns the state at `stop`.
    fn live_sets(&self, cache: &mut Cache, hay: &[u8], stop: usize) -> Result<u32, Outcome> {
        let len = hay.len();
        let ii = usize::from(len == 0);
        let mut r = cache.init[ii];
        if r == UNKNOWN {
            self.closure(None, len == 0, true, &mut cache.tmp);
            r = cache.add(self);
            cache.init[ii] = r;
        }
        // (positions below where pass 1 stops are never read)
        if cache.rbuf.len() <= len {
            cache.rbuf.resize(len + 1, DEAD);
        }
        if r == DEAD {
            return Err(Outcome::NoMatch);
        }
        cache.rbuf[len] = r;
        self.live_sets_to(cache, hay, len, stop, r)
    }

    /// Pass 1 from `from` (whose state is `r`) down to `stop`.
    #[inline(never)]
    fn live_sets_to(
        &self,
        cache: &mut Cache,
        hay: &[u8],
        from: usize,
        stop: usize,
        mut r: u32,
    ) -> Result<u32, Outcome> {
        let mut pos = from;
        let low = stop.max(1);
        while pos > low {
            // the hot loop, on local slices; it leaves for a transition not computed yet
            let (trans, rbuf) = (&cache.trans[..], &mut cache.rbuf[..]);
            let mut nr = r;
            while pos > low {
                let c = self.classes[hay[pos - 1] as usize] as usize;
                nr = u32::from(trans[r as usize + c]);
                if nr == u32::from(T_UNKNOWN) || nr == DEAD {
                    break;
                }
                pos -= 1;
                rbuf[pos] = nr;
                r = nr;
            }
            if pos <= low {
                break;
            }
            if nr == u32::from(T_UNKNOWN) {
                let c = u32::from(self.classes[hay[pos - 1] as usize]);
                nr = self.slow_step(cache, r, c, false).ok_or(Outcome::GaveUp)?;
            }
            if nr == DEAD {
                return Err(Outcome::NoMatch);
            }
            pos -= 1;
            cache.rbuf[pos] = nr;
            r = nr;
        }
        if stop == 0 && pos > 0 {
            let c = u32::from(self.classes[hay[0] as usize]);
            let mut nr = u32::from(cache.trans0[r as usize + c as usize]);
            if nr == u32::from(T_UNKNOWN) {
                nr = self.slow_step(cache, r, c, true).ok_or(Outcome::GaveUp)?;
            }
            if nr == DEAD {
                return Err(Outcome::NoMatch);
            }
            cache.rbuf[0] = nr;
            r = nr;
        }
        Ok(r)
    }

    /// A transition not computed yet; `None` when the cache is over its hard limit.
    #[cold]
    fn slow_step(&self, cache: &mut Cache, r: u32, c: u32, at_start: bool) -> Option<u32> {
        if cache.states(self) >= 2 * self.max_states + 64 {
            return None;
        }
        let from = cache.set(self, r).to_vec();
        self.closure(Some((&from, c as usize)), at_start, false, &mut cache.tmp);
        let nr = cache.add(self);
        let idx = r as usize + c as usize;
        // (ids fit: see `max_states`)
        if at_start {
            cache.trans0[idx] = nr as u16;
        } else {
            cache.trans[idx] = nr as u16;
        }
        Some(nr)
    }

    /// The index of the first alternative of union `s` (alternatives at `alts[a..]`)
    /// live at `pos`.
    #[inline(always)]
    fn choose(&self, cache: &Cache, s: usize, pos: usize, a: usize) -> Option<usize> {
        let al = &self.alts[a..a + self.arg[s] as usize];
        let set = cache.set(self, *cache.rbuf.get(pos)?);
        al.iter().position(|&x| bit(set, x))
    }

    /// The captures recorded so far, as (slot, position) pairs.
    fn recorded(&self, cache: &Cache) -> Box<[(u32, u32)]> {
        (0..self.nslots)
            .filter(|&i| cache.slots[i] != usize::MAX)
            .map(|i| (i as u32, cache.slots[i] as u32))
            .collect()
    }

    /// Pass 2: the priority path through the NFA from state `s` at `pos`, guided by the
    /// live sets. When the path first reaches `record` or beyond, it also returns the
    /// state and position there, with the wanted captures recorded so far.
    #[inline(never)]
    #[allow(clippy::type_complexity)]
    fn walk(
        &self,
        cache: &mut Cache,
        hay: &[u8],
        mut s: usize,
        mut pos: usize,
        mut record: usize,
    ) -> (Outcome, Option<(u32, u32, Box<[(u32, u32)]>)>) {
        let mut rec = None;
        // without empty cycles a path makes at most n steps per position
        let mut budget = (hay.len() + 1).saturating_mul(self.kind.len() + 1);
        loop {
            if pos >= record {
                rec = Some((s as u32, pos as u32, self.recorded(cache)));
                record = usize::MAX;
            }
            if budget == 0 {
                return (Outcome::GaveUp, None);
            }
            budget -= 1;
            match self.walk[s] {
                CONSUME | PASS => {
                    // a run of states without choices or wanted captures
                    let (t, k) = self.jump[s];
                    s = t as usize;
                    pos += k as usize;
                }
                CONSUME_N => {
                    let Some(&b) = hay.get(pos) else {
                        return (Outcome::GaveUp, None);
                    };
                    let c = self.classes[b as usize] as usize;
                    let t = self.delta[self.arg[s] as usize * self.nclasses + c];
                    if t == NONE {
                        return (Outcome::GaveUp, None);
                    }
                    s = t as usize;
                    pos += 1;
                }
                UNION => {
                    let a = self.next[s] as usize;
                    let Some(j) = self.choose(cache, s, pos, a) else {
                        return (Outcome::GaveUp, None);
                    };
                    // the alternative, and the run of plain states it starts
                    let (t, k) = self.alt_to[a + j];
                    s = t as usize;
                    pos += k as usize;
                }
                STAR => {
                    // greedy loop over one byte: go on while another round is live
                    let a = self.next[s] as usize;
                    let x = self.alts[a];
                    let stop = record.min(hay.len());
                    while pos < stop && bit(cache.set(self, cache.rbuf[pos]), x) {
                        pos += 1;
                    }
                    if pos >= record {
                        continue;
                    }
                    let Some(j) = self.choose(cache, s, pos, a) else {
                        return (Outcome::GaveUp, None);
                    };
                    let (t, k) = self.alt_to[a + j];
                    s = t as usize;
                    pos += k as usize;
                }
                CAPTURE => {
                    cache.slots[self.arg[s] as usize] = pos;
                    s = self.next[s] as usize;
                }
                MATCH | STOP => {
                    if record != usize::MAX {
                        // the path ended before the prefix did: resume here
                        rec = Some((s as u32, pos as u32, self.recorded(cache)));
                    }
                    return (Outcome::Match, rec);
                }
                _ => return (Outcome::GaveUp, None),
            }
        }
    }
}

impl Cache {
    fn states(&self, p: &Prog) -> usize {
        self.sets.len() / p.words
    }

    /// The live set of DFA state `r`.
    #[inline]
    fn set(&self, p: &Prog, r: u32) -> &[u64] {
        let i = (r >> p.shift) as usize * p.words;
        &self.sets[i..i + p.words]
    }

    fn reset(&mut self, p: &Prog) {
        self.ready = true;
        self.trans.clear();
        self.trans0.clear();
        self.sets.clear();
        self.memo_head.clear();
        self.memos.clear();
        self.map.clear();
        self.init = [UNKNOWN; 2];
        // state 0: the dead state (empty set), which only leads to itself
        self.tmp.clear();
        self.tmp.resize(p.words, 0);
        let d = self.add(p);
        debug_assert_eq!(d, DEAD);
        let stride = 1usize << p.shift;
        self.trans[..stride].fill(DEAD as u16);
        self.trans0[..stride].fill(DEAD as u16);
    }

    /// Interns the set in `tmp` as a DFA state; returns its id. A state's id is its
    /// index times the row length (`1 << shift`), where its row of `trans` starts: a
    /// step of pass 1 is then one addition and one load.
    fn add(&mut self, p: &Prog) -> u32 {
        if let Some(&id) = self.map.get(self.tmp.as_slice()) {
            return id;
        }
        let id = (self.states(p) as u32) << p.shift;
        self.sets.extend_from_slice(&self.tmp);
        self.memo_head.push(NONE);
        let stride = 1usize << p.shift;
        self.trans.resize(self.trans.len() + stride, T_UNKNOWN);
        self.trans0.resize(self.trans0.len() + stride, T_UNKNOWN);
        self.map.insert(self.tmp.clone().into_boxed_slice(), id);
        id
    }

    /// Start and end of compact capture `j` (0 host, 1 user, 2 time) after a match.
    #[inline]
    pub(crate) fn group(&self, j: usize) -> Option<(usize, usize)> {
        let s = *self.slots.get(2 * j)?;
        let e = *self.slots.get(2 * j + 1)?;
        (s != usize::MAX && e != usize::MAX).then_some((s, e))
    }
}

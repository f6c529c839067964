//! [`MatchSet`]: the filters of one jail behind one shared prefilter.
//!
//! Hot path per line: parse the prefix (no allocation), reject lines of programs no filter
//! reads, run one Aho-Corasick pass over the message for the literals the rules require, and
//! run the anchored regex (with captures) only for rules whose literal was found.

use std::collections::{HashSet, VecDeque};
use std::net::IpAddr;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use regex::bytes::CaptureLocations;
use smallvec::SmallVec;

use super::compile::Filter;
use super::def::Class;
use crate::decision::Millis;
use crate::prefix::{self, Parsed};
use crate::time::TimeContext;

/// Which classes of rules a jail uses (fail2ban users know these names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Authentication failures only.
    #[default]
    Normal,
    /// Scans and protocol abuse only.
    Ddos,
    /// Both.
    Aggressive,
}

impl Mode {
    /// Parses `normal`, `ddos` or `aggressive`.
    pub fn parse(s: &str) -> Option<Mode> {
        match s {
            "normal" => Some(Mode::Normal),
            "ddos" => Some(Mode::Ddos),
            "aggressive" => Some(Mode::Aggressive),
            _ => None,
        }
    }

    fn takes(self, c: Class) -> bool {
        matches!(
            (self, c),
            (Mode::Aggressive, _) | (Mode::Normal, Class::Auth) | (Mode::Ddos, Class::Scan)
        )
    }
}

/// A matched line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit<'a> {
    /// Index of the filter in the set.
    pub filter: usize,
    /// Index of the rule in its filter.
    pub rule: usize,
    /// The validated, normalised address.
    pub addr: IpAddr,
    /// The user name, when the rule captures one (or correlation found it).
    pub user: Option<&'a [u8]>,
    /// Event time from the line, when it has one.
    pub time: Option<Millis>,
    /// Process id from the prefix (0 when unknown): the session key.
    pub pid: u32,
}

#[derive(Debug, Clone, Copy)]
struct RuleRef {
    filter: u32,
    rule: u32,
}

/// Mutable per-reader state: capture buffers and multi-line correlation memory.
#[derive(Debug)]
pub struct Scratch {
    locs: Vec<CaptureLocations>,
    /// Per filter: remembered (pid, user) pairs, oldest first; bounded.
    remembered: Vec<VecDeque<(u32, Vec<u8>)>>,
    cands: SmallVec<[u32; 16]>,
}

/// The compiled filters of one jail and their shared prefilter.
#[derive(Debug)]
pub struct MatchSet {
    filters: Vec<Filter>,
    refs: Vec<RuleRef>,
    /// For each literal of the automaton, the rules (indexes into `refs`) that need it.
    lit_rules: Vec<Vec<u32>>,
    ac: Option<AhoCorasick>,
    /// Rules without a usable literal: always candidates.
    always: Vec<u32>,
    any_program: bool,
    programs: HashSet<Vec<u8>>,
}

impl MatchSet {
    /// Combines `filters`, keeping the rules that `mode` selects.
    pub fn new(filters: Vec<Filter>, mode: Mode) -> MatchSet {
        let mut refs = Vec::new();
        let mut lits: Vec<Vec<u8>> = Vec::new();
        let mut lit_rules: Vec<Vec<u32>> = Vec::new();
        let mut always = Vec::new();
        for (fi, f) in filters.iter().enumerate() {
            for (ri, r) in f.rules.iter().enumerate() {
                if !mode.takes(r.class) {
                    continue;
                }
                let id = refs.len() as u32;
                refs.push(RuleRef {
                    filter: fi as u32,
                    rule: ri as u32,
                });
                match &r.literal {
                    Some(l) => match lits.iter().position(|x| x == l) {
                        Some(p) => lit_rules[p].push(id),
                        None => {
                            lits.push(l.clone());
                            lit_rules.push(vec![id]);
                        }
                    },
                    None => always.push(id),
                }
            }
        }
        let ac = (!lits.is_empty()).then(|| {
            AhoCorasickBuilder::new()
                .match_kind(MatchKind::Standard)
                .build(&lits)
                .expect("literal automaton")
        });
        let any_program = filters.iter().any(|f| f.programs.is_empty());
        let programs = filters
            .iter()
            .flat_map(|f| f.programs.iter().cloned())
            .collect();
        MatchSet {
            filters,
            refs,
            lit_rules,
            ac,
            always,
            any_program,
            programs,
        }
    }

    /// The filters of the set.
    pub fn filters(&self) -> &[Filter] {
        &self.filters
    }

    /// Fresh scratch state for one reader of this set.
    pub fn scratch(&self) -> Scratch {
        Scratch {
            locs: self
                .filters
                .iter()
                .flat_map(|f| f.rules.iter().map(|r| r.regex.capture_locations()))
                .collect(),
            remembered: self.filters.iter().map(|_| VecDeque::new()).collect(),
            cands: SmallVec::new(),
        }
    }

    /// Matches one raw line (prefix included).
    pub fn match_line<'a>(
        &self,
        line: &'a [u8],
        ctx: &TimeContext,
        scratch: &'a mut Scratch,
    ) -> Option<Hit<'a>> {
        let parsed = prefix::parse(line);
        self.match_parsed(&parsed, ctx, scratch)
    }

    /// True when some filter of the set reads lines of this program (or of no program).
    #[inline]
    pub fn reads(&self, program: Option<&[u8]>) -> bool {
        match program {
            None => true,
            Some(p) => self.any_program || self.programs.contains(p),
        }
    }

    /// Matches a line already split by [`prefix::parse`].
    pub fn match_parsed<'a>(
        &self,
        p: &Parsed<'a>,
        ctx: &TimeContext,
        scratch: &'a mut Scratch,
    ) -> Option<Hit<'a>> {
        if !self.reads(p.program) {
            return None;
        }
        let msg = p.message;
        scratch.cands.clear();
        if let Some(ac) = &self.ac {
            for m in ac.find_overlapping_iter(msg) {
                scratch
                    .cands
                    .extend_from_slice(&self.lit_rules[m.pattern().as_usize()]);
            }
        }
        scratch.cands.extend_from_slice(&self.always);
        if scratch.cands.is_empty() {
            if self.filters.iter().any(|f| !f.correlate.is_empty()) {
                self.remember(p, scratch);
            }
            return None;
        }
        scratch.cands.sort_unstable();
        scratch.cands.dedup();
        let mut found = None;
        for i in 0..scratch.cands.len() {
            let id = scratch.cands[i] as usize;
            let RuleRef { filter, rule } = self.refs[id];
            let f = &self.filters[filter as usize];
            if let Some(prog) = p.program {
                if !f.accepts_program(prog) {
                    continue;
                }
            }
            let r = &f.rules[rule as usize];
            let li = self.loc_index(filter as usize, rule as usize);
            let locs = &mut scratch.locs[li];
            if r.regex.captures_read(locs, msg).is_none() {
                continue;
            }
            let Some((hs, he)) = locs.get(r.host) else {
                continue;
            };
            let Some(addr) = crate::addr::parse(&msg[hs..he]) else {
                continue;
            };
            if f.ignore.iter().any(|ig| ig.is_match(msg)) {
                return None;
            }
            let user = r.user.and_then(|u| locs.get(u));
            let time = match (r.time, &f.time_format) {
                (Some(t), Some(fmt)) => locs
                    .get(t)
                    .and_then(|(s, e)| crate::time::parse_with_format(fmt, &msg[s..e]))
                    .map(|st| st.to_millis(ctx)),
                _ => None,
            }
            .or_else(|| p.stamp.map(|s| s.to_millis(ctx)));
            found = Some((filter as usize, rule as usize, addr, user, time));
            break;
        }
        let Some((filter, rule, addr, user, time)) = found else {
            if self.filters.iter().any(|f| !f.correlate.is_empty()) {
                self.remember(p, scratch);
            }
            return None;
        };
        let user: Option<&'a [u8]> = match user {
            Some((s, e)) => Some(&msg[s..e]),
            None if p.pid != 0 && !self.filters[filter].correlate.is_empty() => scratch.remembered
                [filter]
                .iter()
                .rev()
                .find(|(pid, _)| *pid == p.pid)
                .map(|(_, u)| u.as_slice()),
            None => None,
        };
        Some(Hit {
            filter,
            rule,
            addr,
            user,
            time,
            pid: p.pid,
        })
    }

    fn loc_index(&self, filter: usize, rule: usize) -> usize {
        self.filters[..filter]
            .iter()
            .map(|f| f.rules.len())
            .sum::<usize>()
            + rule
    }

    /// Multi-line correlation: remember the user a line names, keyed by pid.
    fn remember(&self, p: &Parsed<'_>, scratch: &mut Scratch) {
        if p.pid == 0 {
            return;
        }
        for (fi, f) in self.filters.iter().enumerate() {
            if f.correlate.is_empty() || p.program.is_some_and(|prog| !f.accepts_program(prog)) {
                continue;
            }
            for re in &f.correlate {
                if let Some(c) = re.captures(p.message) {
                    if let Some(u) = c.name("user") {
                        let q = &mut scratch.remembered[fi];
                        q.retain(|(pid, _)| *pid != p.pid);
                        if q.len() >= f.correlate_capacity {
                            q.pop_front();
                        }
                        q.push_back((p.pid, u.as_bytes().to_vec()));
                    }
                    break;
                }
            }
        }
    }
}

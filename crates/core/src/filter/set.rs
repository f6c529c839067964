//! [`MatchSet`]: the filters of one jail behind one shared prefilter.
//!
//! Hot path per line: parse the prefix (no allocation), reject lines of programs no filter
//! reads, pick the candidate rules (by the literal prefixes their matches start with, or by a
//! literal they contain, found in one Aho-Corasick pass), and run the anchored pattern with
//! captures only for those, through its [`portcullis_pattern::Pattern`] (which decides
//! which of its engines answers; all give the regex crate's exact captures).

use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::net::IpAddr;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use smallvec::SmallVec;

use super::compile::{Filter, HOST, KEY, TIME, USER};
use super::def::{Class, Kind};
use super::session::{keep_user, Held, Session, Sessions};
use crate::decision::Millis;
use crate::prefix::{self, Parsed};
use crate::time::{Stamp, TimeContext};

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

    /// The name `parse` takes (`normal`, `ddos`, `aggressive`).
    pub fn name(self) -> &'static str {
        match self {
            Mode::Normal => "normal",
            Mode::Ddos => "ddos",
            Mode::Aggressive => "aggressive",
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
    /// The session the tracker ties failures of one connection by: the process id from the
    /// prefix, or with a `key` capture that and the key ([`super::session::conn_id`]); 0
    /// when unknown.
    pub pid: u32,
    /// The line is held back in its session (a rule of kind `pending` or `prelude`): it
    /// counts nothing now.
    pub pending: bool,
    /// Failures its session held back that count with this line (the session ended without
    /// success, or failed for a second user name).
    pub released: u32,
    /// The line matched `rule` itself; false for a `[correlate]` success or end line that
    /// only releases its session's held failures (then `rule` is the rule of those).
    pub own: bool,
    /// The released failures are only follow-ups of the connection (summary lines that
    /// waited for an address): the tracker counts them as a follow-up.
    pub summary: bool,
    /// The line stands for this many occurrences of its message (rsyslog's `message
    /// repeated N times: [...]`, [`prefix::Parsed::repeat`]): its own weight counts N times.
    pub repeat: u32,
}

#[derive(Debug, Clone, Copy)]
struct RuleRef {
    filter: u32,
    rule: u32,
    /// Index of the rule in the flat per-rule arrays of [`Scratch`].
    flat: u32,
}

/// Mutable per-reader state: capture buffers, DFA caches and multi-line correlation memory.
#[derive(Debug)]
pub struct Scratch {
    /// The search state of each rule's pattern.
    caches: Vec<portcullis_pattern::Cache>,
    /// Per filter: what `correlate` lines said per session, and held failures; bounded.
    sessions: Vec<Sessions>,
    /// Candidate rules: (rule, prefix literal id or `u32::MAX`, prefix length).
    cands: SmallVec<[(u32, u32, u32); 16]>,
    /// The last prefix stamp converted, with its context and result.
    stamp: Option<(Stamp, TimeContext, Millis)>,
    /// Matches refused because the line may have been cut by its transport (see
    /// [`super::cut`]).
    cut_refused: u64,
    /// Matches of `tagged_only` rules refused because the line names no program.
    untagged_refused: u64,
    /// Matches refused because the line may be a piece of a message the program split
    /// (`split_at`).
    split_refused: u64,
    /// Failures a keyed session held without an address, released by the line that gave
    /// it late (see [`MatchSet::remember`]): counted with the line being matched.
    late: Option<Late>,
}

/// How long after a keyed session's first line a `remember` line may still give its held
/// failures their address ([`Late`]).
const LATE_WINDOW: Millis = 10_000;

/// Held failures released by a `remember` line that gave their session its address late.
#[derive(Debug, Clone, Copy)]
struct Late {
    filter: usize,
    rule: usize,
    addr: IpAddr,
    n: u32,
    time: Option<Millis>,
    conn: u32,
    summary: bool,
}

impl Scratch {
    /// How many matches of `tagged_only` rules were refused because their line names no
    /// program (a line of a program's own file).
    pub fn untagged_refused(&self) -> u64 {
        self.untagged_refused
    }

    /// How many matches were refused because their line may be a piece of a longer message
    /// the program split itself (a filter's `split_at`).
    pub fn split_refused(&self) -> u64 {
        self.split_refused
    }

    /// How many matches were refused because their line may have been cut by its transport
    /// (see [`super::cut`]).
    pub fn cut_refused(&self) -> u64 {
        self.cut_refused
    }
}

/// The compiled filters of one jail and their shared prefilter.
#[derive(Debug)]
pub struct MatchSet {
    filters: Vec<Filter>,
    refs: Vec<RuleRef>,
    /// The prefilter for lines without a program name (every filter reads them).
    /// (built when the first such line comes: most logs have none)
    all: std::sync::OnceLock<Prefilter>,
    /// A filter of the set has a `[correlate]` section.
    correlates: bool,
    /// Program name → the prefilter of exactly the rules of the filters reading it.
    programs: ProgramIndex,
    /// The prefilters `programs` points at (one per distinct group of filters).
    groups: Vec<Group>,
    /// The prefilter for programs no filter names: the filters reading any program.
    others: Option<Prefilter>,
    /// For a program no filter names but a filter's pattern (`postfix-*/smtpd`) accepts:
    /// the patterns, and the prefilter of the filters with patterns and those reading any
    /// program, whose candidates are checked against the program name.
    /// The patterns come once each, and a bitmap of their first bytes rejects most program
    /// names without trying one (the lines of programs no filter reads are most lines).
    wild: Option<Wild>,
    /// The message length from which a line may have been cut by its transport
    /// ([`super::cut::cut_threshold`]; `usize::MAX`: never).
    cut_at: usize,
}

/// The program-name patterns of a set and their prefilter (see `MatchSet::wild`).
#[derive(Debug)]
struct Wild {
    patterns: Vec<Box<[u8]>>,
    /// The first bytes of the patterns, as a bitmap of 256 bits.
    first: [u64; 4],
    pre: Prefilter,
}

impl Wild {
    /// True when one of the patterns accepts `program`.
    #[inline]
    fn accepts(&self, program: &[u8]) -> bool {
        program
            .first()
            .is_some_and(|&b| self.first[usize::from(b >> 6)] & (1 << (b & 63)) != 0)
            && self
                .patterns
                .iter()
                .any(|w| super::compile::program_matches(w, program))
    }
}

/// The filters reading some program names, and their prefilter once a line of one came.
#[derive(Debug)]
struct Group {
    filters: Vec<usize>,
    pre: std::sync::OnceLock<Prefilter>,
}

/// The prefilter of the rules in `refs` of the filters that `reads` selects.
fn build_prefilter(
    filters: &[Filter],
    refs: &[RuleRef],
    reads: &dyn Fn(usize) -> bool,
) -> Prefilter {
    let correlate: Vec<u32> = (0..filters.len())
        .filter(|&fi| reads(fi) && filters[fi].has_sessions())
        .map(|fi| fi as u32)
        .collect();
    let rules = refs.iter().enumerate().filter_map(|(id, rr)| {
        let f = &filters[rr.filter as usize];
        reads(rr.filter as usize).then(|| (id as u32, &f.rules[rr.rule as usize]))
    });
    let sessions_end = correlate.iter().any(|&fi: &u32| {
        let f = &filters[fi as usize];
        !f.success.is_empty() || !f.end.is_empty()
    });
    Prefilter {
        sessions_end,
        ..Prefilter::new(rules, correlate)
    }
}

/// The candidate rules of one group of filters: built once per distinct group, so that a
/// line is checked only against the rules of the filters that read its program, however
/// many other filters the jail has.
#[derive(Debug)]
struct Prefilter {
    /// The prefix literals of the rules whose matches all start with one of a finite set of
    /// literals.
    prefixes: PrefixTrie,
    /// Required literals of the other rules, in one Aho-Corasick automaton.
    lits: LitIndex,
    /// Rules without a usable literal: always candidates.
    always: Vec<u32>,
    /// The filters of the group that remember user names across lines (`correlate`).
    correlate: Vec<u32>,
    /// A filter of `correlate` has `success` or `end` lines (tried when no rule matched).
    sessions_end: bool,
    /// Candidates must be checked against the line's program (the `wild` prefilter).
    check_program: bool,
}

impl Prefilter {
    fn new<'a>(
        rules: impl Iterator<Item = (u32, &'a super::compile::Rule)>,
        correlate: Vec<u32>,
    ) -> Prefilter {
        let mut prefixes = PrefixTrie::default();
        let mut lits = LitBuilder::default();
        let mut always = Vec::new();
        for (id, r) in rules {
            if let Some(pre) = r.pattern.prefix_literals() {
                for (li, l) in pre.iter().enumerate() {
                    prefixes.insert(l, (id, li as u32));
                }
            } else if let Some(l) = &r.literal {
                lits.add(l.needle(), id);
            } else {
                always.push(id);
            }
        }
        prefixes.finish();
        Prefilter {
            sessions_end: false,
            check_program: false,
            prefixes,
            lits: lits.build(),
            always,
            correlate,
        }
    }

    /// The rules that can match `msg`, in rule order, into `cands`, each with the longest of
    /// its prefix literals that `msg` starts with.
    fn candidates(&self, msg: &[u8], cands: &mut SmallVec<[(u32, u32, u32); 16]>) {
        cands.clear();
        self.prefixes.find(msg, cands);
        self.lits.find(msg, cands);
        cands.extend(self.always.iter().map(|&id| (id, u32::MAX, 0)));
        if cands.len() > 1 {
            cands.sort_unstable_by(|a, b| a.0.cmp(&b.0).then(b.2.cmp(&a.2)));
            cands.dedup_by_key(|c| c.0);
        }
    }
}

impl MatchSet {
    /// Combines `filters`, keeping the rules that `mode` selects.
    pub fn new(filters: Vec<Filter>, mode: Mode) -> MatchSet {
        let mut refs = Vec::new();
        let mut flat = 0u32;
        for (fi, f) in filters.iter().enumerate() {
            // A filter made only of scan rules (bad bots, probes) is about scans: it counts
            // in every mode, or a jail of it would see nothing in the default mode.
            let scan_only = f
                .rules
                .iter()
                .all(|r| r.class == Class::Scan || r.kind == Kind::Connect);
            for (ri, r) in f.rules.iter().enumerate() {
                let this = flat;
                flat += 1;
                // (a connect line marks connections for the rules of every mode)
                if !mode.takes(r.class) && !scan_only && r.kind != Kind::Connect {
                    continue;
                }
                refs.push(RuleRef {
                    filter: fi as u32,
                    rule: ri as u32,
                    flat: this,
                });
            }
        }
        let build = |reads: &dyn Fn(usize) -> bool| build_prefilter(&filters, &refs, reads);
        let correlates = filters.iter().any(Filter::has_sessions);
        let any: Vec<usize> = (0..filters.len())
            .filter(|&fi| filters[fi].reads_any_program())
            .collect();
        let others = (!any.is_empty()).then(|| build(&|fi| any.contains(&fi)));
        // program → the filters reading it (those naming it, and those reading any program)
        let mut readers: Vec<(Box<[u8]>, Vec<usize>)> = Vec::new();
        for (fi, f) in filters.iter().enumerate() {
            // (patterns with a `*` are not names: lines of programs no name lists go
            // through `wild` below)
            for p in f.programs.iter().filter(|p| !p.contains(&b'*')) {
                if !readers.iter().any(|(q, _)| **q == **p) {
                    let fs: Vec<usize> = (0..filters.len())
                        .filter(|&g| filters[g].accepts_program(p))
                        .collect();
                    debug_assert!(fs.contains(&fi));
                    readers.push((p.as_slice().into(), fs));
                }
            }
        }
        // one prefilter per distinct group of filters (sshd and sshd-session share one)
        // (built when a line of one of its programs first comes: a jail of many filters
        // names many programs, and a log holds the lines of few)
        let mut groups: Vec<Group> = Vec::new();
        let mut index = Vec::new();
        for (p, fs) in readers {
            let g = match groups.iter().position(|k| k.filters == fs) {
                Some(g) => g,
                None => {
                    groups.push(Group {
                        filters: fs,
                        pre: std::sync::OnceLock::new(),
                    });
                    groups.len() - 1
                }
            };
            index.push((p, g as u32));
        }
        let mut patterns: Vec<Box<[u8]>> = filters
            .iter()
            .flat_map(|f| f.programs.iter().filter(|p| p.contains(&b'*')))
            .map(|p| p.as_slice().into())
            .collect();
        patterns.sort_unstable();
        patterns.dedup();
        let mut first = [0u64; 4];
        for p in &patterns {
            match p.first() {
                Some(b'*') | None => first = [u64::MAX; 4],
                Some(&b) => first[usize::from(b >> 6)] |= 1 << (b & 63),
            }
        }
        let wild = (!patterns.is_empty()).then(|| {
            let mut pre =
                build(&|fi| filters[fi].reads_any_program() || filters[fi].has_program_pattern());
            pre.check_program = true;
            Wild {
                patterns,
                first,
                pre,
            }
        });
        MatchSet {
            filters,
            refs,
            all: std::sync::OnceLock::new(),
            correlates,
            programs: ProgramIndex::new(index),
            groups,
            others,
            cut_at: super::cut::cut_threshold(super::cut::DEFAULT_TRANSPORT_CUT),
            wild,
        }
    }

    /// True when a filter of the set ties lines together (`correlate`): the lines of one
    /// session must be matched in order by one reader (see [`session_shard`]).
    pub fn correlates(&self) -> bool {
        self.correlates
    }

    /// The filters of the set.
    pub fn filters(&self) -> &[Filter] {
        &self.filters
    }

    /// Fresh scratch state for one reader of this set.
    pub fn scratch(&self) -> Scratch {
        let rules = self.filters.iter().flat_map(|f| f.rules.iter());
        Scratch {
            caches: rules
                .map(|_| portcullis_pattern::Cache::default())
                .collect(),
            sessions: self
                .filters
                .iter()
                .map(|f| Sessions::new(f.correlate_capacity, f.correlate_max_age))
                .collect(),
            cands: SmallVec::new(),
            stamp: None,
            cut_refused: 0,
            untagged_refused: 0,
            split_refused: 0,
            late: None,
        }
    }

    /// The transport limit of the logs this set reads, in bytes (0: no transport cuts
    /// them); default [`super::cut::DEFAULT_TRANSPORT_CUT`]. See [`super::cut`].
    pub fn with_transport_cut(mut self, limit: usize) -> MatchSet {
        self.cut_at = super::cut::cut_threshold(limit);
        self
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
        self.prefilter(program).is_some()
    }

    /// The prefilter of the filters that read lines of this program; `None` when none does.
    /// A tag that is a path (`/usr/sbin/kamailio[46]:`: programs that pass their argv[0] to
    /// openlog(3), started by the full path as their systemd units do) is the program its
    /// last component names, when the whole tag names none.
    #[inline]
    fn prefilter(&self, program: Option<&[u8]>) -> Option<&Prefilter> {
        match program {
            None => Some(
                self.all
                    .get_or_init(|| build_prefilter(&self.filters, &self.refs, &|_| true)),
            ),
            Some(p) => self
                .named_prefilter(p)
                .or_else(|| self.named_prefilter(super::compile::program_base(p)?))
                .or(self.others.as_ref()),
        }
    }

    /// The prefilter of the filters that name this program (or a pattern accepting it).
    #[inline]
    fn named_prefilter(&self, p: &[u8]) -> Option<&Prefilter> {
        match self.programs.get(p) {
            Some(g) => {
                let g = &self.groups[g as usize];
                Some(g.pre.get_or_init(|| {
                    build_prefilter(&self.filters, &self.refs, &|fi| g.filters.contains(&fi))
                }))
            }
            None => match &self.wild {
                Some(w) if w.accepts(p) => Some(&w.pre),
                _ => None,
            },
        }
    }

    /// Matches a line already split by [`prefix::parse`].
    pub fn match_parsed<'a>(
        &self,
        p: &Parsed<'a>,
        ctx: &TimeContext,
        scratch: &'a mut Scratch,
    ) -> Option<Hit<'a>> {
        self.match_parsed_with(p, ctx, scratch, false)
    }

    /// [`MatchSet::match_parsed`]; with `plain`, without prefilter and with the regex crate
    /// only (the reference semantics, for tests).
    #[inline(always)]
    fn match_parsed_with<'a>(
        &self,
        p: &Parsed<'a>,
        ctx: &TimeContext,
        scratch: &'a mut Scratch,
        plain: bool,
    ) -> Option<Hit<'a>> {
        let pre = self.prefilter(p.program)?;
        let msg = p.message;
        if !pre.correlate.is_empty() {
            // (before matching: a line may both open a session and count)
            self.remember(p, &pre.correlate, ctx, scratch);
        }
        // (what a late address released: this line counts it, and no later line)
        let late = scratch.late.take();
        if plain {
            scratch.cands.clear();
            scratch
                .cands
                .extend((0..self.refs.len() as u32).map(|id| (id, u32::MAX, 0)));
        } else {
            pre.candidates(msg, &mut scratch.cands);
        }
        let mut found = None;
        for i in 0..scratch.cands.len() {
            let (id, pid, plen) = scratch.cands[i];
            let RuleRef { filter, rule, flat } = self.refs[id as usize];
            let f = &self.filters[filter as usize];
            // (the prefilter holds only the rules of filters reading the program)
            if (plain || pre.check_program)
                && p.program.is_some_and(|prog| !f.accepts_program(prog))
            {
                continue;
            }
            let r = &f.rules[rule as usize];
            // A rule picked by a short prefix ("pam_") that also requires a longer literal
            // elsewhere: look for that literal before running the engine.
            if let Some(l) = &r.literal {
                if !plain
                    && pid != u32::MAX
                    && l.needle().len() > plen as usize
                    && l.find(msg).is_none()
                {
                    continue;
                }
            }
            let flat = flat as usize;
            let c = &mut scratch.caches[flat];
            let matched = if plain {
                r.pattern.captures_reference(msg, c)
            } else {
                let prefix = (pid != u32::MAX).then_some((pid, plen as usize));
                r.pattern.captures_with_prefix(msg, c, prefix)
            };
            if !matched {
                continue;
            }
            // (after the match, so that `test` can say what such a rule left out)
            if r.tagged_only && p.program.is_none() {
                scratch.untagged_refused += 1;
                continue;
            }
            if msg.len() >= f.split_at {
                scratch.split_refused += 1;
                continue;
            }
            let (host, user, time, key) =
                (c.group(HOST), c.group(USER), c.group(TIME), c.group(KEY));
            let session = Session {
                host: p.host.unwrap_or_default(),
                pid: p.pid,
                text: key.map(|(s, e)| &msg[s..e]),
            };
            let addr = match host {
                // a line its syslog transport may have cut (a line of a program's own file
                // has no tag), whose address may come after client text of any length: the
                // client may have placed the cut (see `cut`). (A filter's untagged lines
                // may have come through syslog too: a router's over UDP, which
                // routeros-auth reads; they were not refused, a review found.)
                Some(_)
                    if msg.len() >= self.cut_at
                        && (p.program.is_some() || f.untagged_syslog)
                        && r.host_end_max() >= self.cut_at =>
                {
                    scratch.cut_refused += 1;
                    continue;
                }
                Some((hs, he)) => match crate::addr::parse(&msg[hs..he]) {
                    Some(a) => Some(a),
                    None => continue,
                },
                None => None,
            };
            // (a line without an address counts only through its session)
            if addr.is_none() && !f.has_sessions() {
                continue;
            }
            if f.ignore.iter().any(|ig| ig.is_match(msg)) {
                return None;
            }
            let time = time
                .and_then(|(s, e)| {
                    f.time_format
                        .iter()
                        .find_map(|fmt| crate::time::parse_with_format(fmt, &msg[s..e]))
                })
                .map(|st| st.to_millis(ctx))
                .or_else(|| p.stamp.map(|s| stamp_millis(&mut scratch.stamp, s, ctx)));
            // the address a correlate line of the same session gave (a session over by
            // `max_age` at this line's time gives none)
            let addr = addr.or_else(|| {
                scratch.sessions[filter as usize]
                    .get(session, time)
                    .and_then(|e| e.addr)
            });
            found = Some((filter as usize, rule as usize, addr, user, time, session));
            break;
        }
        let Some((filter, rule, addr, user, time, session)) = found else {
            if let Some(l) = late {
                // no rule reads the line that gave the address: it counts the held failures
                return Some(Hit {
                    filter: l.filter,
                    rule: l.rule,
                    addr: l.addr,
                    user: None,
                    time: l.time,
                    pid: l.conn,
                    pending: false,
                    released: l.n,
                    own: false,
                    summary: l.summary,
                    repeat: 1,
                });
            }
            if pre.sessions_end {
                return self.finish(p, pre, ctx, scratch);
            }
            return None;
        };
        // (a rule reads that line too: its hit carries them, when it is of the same filter)
        let extra = late.filter(|l| l.filter == filter && Some(l.addr) == addr);
        let extra_n = extra.map_or(0, |l| l.n);
        let conn = super::session::conn_id(p.pid, session.text);
        let user: Option<&'a [u8]> = user.map(|(s, e)| &msg[s..e]);
        // a failure that counts at once, on its own line's address
        let at_once = |addr: Option<IpAddr>| {
            Some(Hit {
                filter,
                rule,
                addr: addr?,
                user,
                time,
                pid: conn,
                pending: false,
                released: extra_n,
                own: true,
                summary: extra.is_some_and(|l| l.summary),
                repeat: p.repeat,
            })
        };
        if !self.filters[filter].has_sessions() {
            return at_once(addr);
        }
        let r = &self.filters[filter].rules[rule];
        // A line that is held needs its session; any other line only updates one that exists
        // (a plain failure with its address needs no memory: most lines of a flood are such)
        let sessions = &mut scratch.sessions[filter];
        let e = if addr.is_none() || matches!(r.kind, Kind::Pending | Kind::Prelude) {
            sessions.write(session, false, time)
        } else {
            sessions.get_mut(session, time)
        };
        let Some(e) = e else {
            // no session to hold it in: it counts at once
            return at_once(addr);
        };
        let settled = settle(&mut *e, r.kind, rule, addr, user, p.repeat);
        // a settled line that is also one of the filter's `end` lines (Dropbear's "Exit
        // before auth from <A:P>") ends the session: a later line of its pid is another's
        let f = &self.filters[filter];
        if !f.end.is_empty()
            && (settled.is_some() || e.addr.is_none())
            && f.end_heads.may_start(msg)
            && f.end.iter().any(|s| s.captures(msg).is_some())
        {
            if settled.is_none() && session.text.is_none() {
                // an address-less end ("Read from socket failed") of a connection no line
                // of which named its address: what it held never will be counted; a later
                // line of the pid is another connection's and must not give it an address
                e.held = Held {
                    rule: e.held.rule,
                    ..Held::default()
                };
            }
            e.closed = true;
        }
        let e: &'a super::session::Entry = e;
        settled.map(|s| Hit {
            filter,
            rule,
            addr: s.addr,
            user: user.or(e.user.as_deref()),
            time,
            pid: conn,
            pending: s.pending,
            released: s.released + extra_n,
            own: true,
            summary: s.summary && extra.is_none_or(|l| l.summary),
            repeat: p.repeat,
        })
    }

    /// A line no rule matched, in a group with sessions: a `success` line forgets (or, for
    /// another user, counts) its session's held failures, an `end` line counts them.
    #[inline(never)]
    fn finish<'a>(
        &self,
        p: &Parsed<'a>,
        pre: &Prefilter,
        ctx: &TimeContext,
        scratch: &'a mut Scratch,
    ) -> Option<Hit<'a>> {
        let msg = p.message;
        for &fi in &pre.correlate {
            let fi = fi as usize;
            let f = &self.filters[fi];
            if !f.end_keyed {
                // most lines have no session that holds anything: no pattern to run
                let quick = Session {
                    host: p.host.unwrap_or_default(),
                    pid: p.pid,
                    text: None,
                };
                // (whether one is over is told below, with the line's time)
                match scratch.sessions[fi].get(quick, None) {
                    Some(e) if e.held.n > 0 || e.failed_user.is_some() => {}
                    _ => continue,
                }
            }
            // a piece of a message the program split (`split_at`): neither a success (which
            // would forget held failures) nor an end line (which would count them, with its
            // address) is read
            if msg.len() >= f.split_at {
                scratch.split_refused += 1;
                continue;
            }
            let (c, success, host_end) = match f
                .success
                .iter()
                .find_map(|s| Some((s.captures(msg)?, s.host_end)))
            {
                Some((c, h)) => (c, true, h),
                None => match f
                    .end
                    .iter()
                    .find_map(|s| Some((s.captures(msg)?, s.host_end)))
                {
                    Some((c, h)) => (c, false, h),
                    None => continue,
                },
            };
            let session = Session {
                host: p.host.unwrap_or_default(),
                pid: p.pid,
                text: c.name("key").map(|k| k.as_bytes()),
            };
            let time = side_time(f, &c, ctx)
                .or_else(|| p.stamp.map(|s| stamp_millis(&mut scratch.stamp, s, ctx)));
            let Some(e) = scratch.sessions[fi].get_mut(session, time) else {
                continue;
            };
            let line_addr = match c.name("host") {
                // an end line its syslog transport may have cut after client text of any
                // length (Sendmail's summary: the sender's path before the client): not read,
                // as a rule's line is not (see `cut`); the held failures stay held. (A
                // success line is read as before: it forgets held failures, and refusing a
                // long one, sshd's "Accepted" with a long certificate tail, would count them.)
                Some(_)
                    if !success
                        && msg.len() >= self.cut_at
                        && (p.program.is_some() || f.untagged_syslog)
                        && host_end >= self.cut_at =>
                {
                    scratch.cut_refused += 1;
                    continue;
                }
                Some(h) => crate::addr::parse(h.as_bytes()),
                None => None,
            };
            if let (Some(new), Some(old)) = (line_addr, e.addr) {
                if new != old {
                    // a later connection of a reused pid: it held nothing
                    another_connection(e);
                    e.addr = Some(new);
                    e.closed = !success;
                    return None;
                }
            }
            // an end line ends the session (once it gave its held failures an address)
            let close = !success;
            let released = if success {
                let user = c
                    .name("user")
                    .map(|u| u.as_bytes())
                    .filter(|u| !u.is_empty());
                let other =
                    matches!((user, e.failed_user.as_deref()), (Some(u), Some(f)) if u != f);
                if !other {
                    // a login of the same user: its held failures were the way in
                    e.held = Held {
                        rule: e.held.rule,
                        ..Held::default()
                    };
                    return None;
                }
                // a login under another name than the session's failures: never one
                // connection of sshd (which refuses a change of user name), so a later
                // connection of the pid, from the same address (another address was
                // handled above). The failures it held count, on that address; the login
                // itself is not a failure.
                e.held.n
            } else {
                e.held.n
            };
            if released == 0 {
                e.closed |= close;
                return None;
            }
            let Some(addr) = line_addr.or(e.addr) else {
                // (a keyed session, slapd's conn=N, keeps them: its address may come later,
                // and its key is never another connection's)
                if close && session.text.is_none() {
                    // the connection ended ("Read from socket failed") and no line of it
                    // named its address: what it held never will; a later line of the pid
                    // is another connection's and must not give it one
                    e.held = Held {
                        rule: e.held.rule,
                        ..Held::default()
                    };
                    e.closed = true;
                }
                return None; // (a success line: held until a line gives the address)
            };
            e.addr = Some(addr);
            e.closed |= close;
            let summary = !success && !e.held.real;
            e.held = Held {
                rule: e.held.rule,
                ..Held::default()
            };
            let scratch: &'a Scratch = scratch;
            let e = scratch.sessions[fi].peek(session)?;
            return Some(Hit {
                filter: fi,
                rule: e.held.rule,
                addr,
                user: e.failed_user.as_deref(),
                time,
                pid: super::session::conn_id(p.pid, session.text),
                pending: false,
                released,
                own: false,
                summary,
                repeat: 1,
            });
        }
        None
    }

    /// Multi-line correlation: remember what a `correlate` line says (a user, an address)
    /// for its session: the `key` capture (e.g. slapd's `conn=N`), else the process id.
    fn remember(&self, p: &Parsed<'_>, filters: &[u32], ctx: &TimeContext, scratch: &mut Scratch) {
        for &fi in filters {
            let (fi, f) = (fi as usize, &self.filters[fi as usize]);
            if p.message
                .first()
                .is_some_and(|&b| !super::compile::Side::may_start(&f.correlate_first, b))
            {
                continue; // (no pattern of `correlate` starts so)
            }
            if p.message.len() >= f.split_at {
                continue; // a piece of a message the program split (`split_at`)
            }
            for side in &f.correlate {
                let Some(c) = side.captures(p.message) else {
                    continue;
                };
                let session = Session {
                    host: p.host.unwrap_or_default(),
                    pid: p.pid,
                    text: c.name("key").map(|k| k.as_bytes()),
                };
                if !session.known() {
                    break; // no session to tie it to
                }
                let sessions = &mut scratch.sessions[fi];
                // (the client's text, kept short: it is only shown)
                let user = c.name("user").map(|u| keep_user(u.as_bytes()));
                let addr = match c.name("host") {
                    Some(h) => match crate::addr::parse(h.as_bytes()) {
                        Some(a) => Some(a),
                        None => {
                            // not an address: the session is forgotten
                            sessions.remove(session);
                            break;
                        }
                    },
                    None => None,
                };
                if addr.is_none() && user.is_none() {
                    // neither a user nor an address: the session ends (a connection closed)
                    sessions.remove(session);
                    break;
                }
                // (the line's time: a `time` capture, else the prefix's)
                let time = side_time(f, &c, ctx)
                    .or_else(|| p.stamp.map(|s| stamp_millis(&mut scratch.stamp, s, ctx)));
                let sessions = &mut scratch.sessions[fi];
                // The late address of a keyed session (slapd's conn=N, unique in its process)
                // whose failures came first: slapd 2.5 can log a connection's BIND results,
                // even its close, before its ACCEPT (connection_init() hands the socket to the
                // event loop before it logs). Those failures are this connection's, each an
                // attempt of its own: they count now, with this line.
                // (only within LATE_WINDOW of the session's first line: slapd's lines are
                // out of order by milliseconds, and an older address-less session is another
                // connection's leftover, CUPS' "[Client 1]" counted again after a restart)
                let mut late = None;
                if let (Some(a), true) = (addr, session.text.is_some()) {
                    if let Some(e) = sessions.waiting_mut(session, time, LATE_WINDOW) {
                        late = Some(Late {
                            filter: fi,
                            rule: e.held.rule,
                            addr: a,
                            n: e.held.n,
                            time,
                            conn: super::session::conn_id(p.pid, session.text),
                            summary: !e.held.real,
                        });
                        e.held = Held {
                            rule: e.held.rule,
                            ..Held::default()
                        };
                    }
                }
                // a line with an address starts the session afresh
                if let Some(e) = sessions.write(session, addr.is_some(), time) {
                    if addr.is_some() {
                        e.addr = addr;
                    }
                    if user.is_some() {
                        e.user = user;
                    }
                }
                if late.is_some() {
                    scratch.late = late;
                }
                break;
            }
        }
    }
}

/// A line of the session names another address than its earlier lines: it is a later
/// connection of a reused pid (at LogLevel INFO sshd writes no line that starts one), and the
/// earlier connection's end was not read. What that connection held is not this one's and is
/// dropped (whether it ended in a login is unknown, and counting it on this line's address
/// would blame another client); its user is forgotten.
fn another_connection(e: &mut super::session::Entry) {
    e.held = Held {
        rule: e.held.rule,
        ..Held::default()
    };
    e.failed_user = None;
    e.user = None;
    e.closed = false;
}

/// What [`settle`] reports of a rule's line.
struct Settled {
    addr: IpAddr,
    pending: bool,
    released: u32,
    summary: bool,
}

/// What a rule's line does to its session; `None` when the line is only remembered (no
/// address yet: it counts when a line of the session gives one).
fn settle(
    e: &mut super::session::Entry,
    kind: Kind,
    rule: usize,
    addr: Option<IpAddr>,
    user: Option<&[u8]>,
    times: u32,
) -> Option<Settled> {
    if let (Some(new), Some(old)) = (addr, e.addr) {
        if new != old {
            another_connection(e);
        }
    }
    if addr.is_some() {
        e.addr = addr;
    }
    let addr = e.addr;
    let who = user.or(e.user.as_deref()).filter(|u| !u.is_empty());
    let other = matches!((who, e.failed_user.as_deref()), (Some(u), Some(f)) if u != f);
    if let Some(u) = who {
        if other || e.failed_user.is_none() {
            e.failed_user = Some(keep_user(u));
        }
    }
    let release = |e: &mut super::session::Entry| {
        let (n, real) = (e.held.n, e.held.real);
        e.held = Held {
            rule: e.held.rule,
            ..Held::default()
        };
        (n, real)
    };
    // (a held line rsyslog wrote once for N copies holds N failures; a prelude announces
    // one attempt, whatever its repeat count)
    let hold = |e: &mut super::session::Entry, prelude: bool, real: bool| {
        e.held.n = e.held.n.saturating_add(if prelude { 1 } else { times });
        e.held.prelude += u32::from(prelude);
        e.held.real |= real;
        e.held.rule = rule;
    };
    let done = |addr: Option<IpAddr>, (released, real): (u32, bool)| {
        Some(Settled {
            addr: addr?,
            pending: false,
            released,
            summary: !real,
        })
    };
    match kind {
        Kind::Pending | Kind::Prelude => {
            if other && addr.is_some() {
                // failures for a second user name in one session: nothing forgives them
                let n = release(e);
                return done(addr, n);
            }
            hold(e, kind == Kind::Prelude, true);
            Some(Settled {
                addr: addr?,
                pending: true,
                released: 0,
                summary: false,
            })
        }
        // a new connection holds nothing and releases nothing
        Kind::Connect => Some(Settled {
            addr: addr?,
            pending: false,
            released: 0,
            summary: false,
        }),
        // (a closing rule is refused in a filter with sessions: never here)
        Kind::Attempt | Kind::Opener | Kind::Closing => {
            if addr.is_none() {
                // held until a line gives the address; the session's next attempt that names
                // it is the same event (another without one is another attempt: slapd's
                // RESULT lines logged before their connection's ACCEPT)
                hold(e, true, true);
                return None;
            }
            if e.held.prelude > 0 {
                // the attempt a prelude line announced (or one without an address)
                e.held.prelude -= 1;
                e.held.n -= 1;
            }
            done(addr, (0, true))
        }
        Kind::Followup => {
            if addr.is_none() {
                // counts with the session's held failures once an address is known
                hold(e, false, false);
                return None;
            }
            let n = release(e);
            done(addr, n)
        }
    }
}

/// Which of `n` readers matches a line, for sets that tie lines together by session
/// ([`MatchSet::correlates`]): a session is the host and pid of the prefix, so every line of
/// one session goes to the same reader, in order, and sessions are spread evenly. Lines
/// without a pid (sessions keyed by the message alone, or none) all go to reader 0.
pub fn session_shard(p: &Parsed<'_>, n: usize) -> usize {
    if n <= 1 || p.pid == 0 {
        return 0;
    }
    // a fixed hash (every reader computes the same) of the host, 8 bytes at a time, and
    // the pid; the range is cut by a multiply rather than a division (this runs on every
    // line of every reader)
    const K: u64 = 0x9e37_79b9_7f4a_7c15;
    let host = p.host.unwrap_or_default();
    let mut h = K ^ u64::from(p.pid);
    let mut chunks = host.chunks_exact(8);
    for c in &mut chunks {
        h = (h ^ u64::from_le_bytes(c.try_into().expect("8 bytes")))
            .wrapping_mul(K)
            .rotate_left(31);
    }
    h = (h ^ crate::bytes::le_tail(chunks.remainder()) ^ ((host.len() as u64) << 56))
        .wrapping_mul(K);
    h ^= h >> 32;
    h = h.wrapping_mul(K);
    h ^= h >> 29;
    (((h >> 32) * n as u64) >> 32) as usize
}

/// Program names and their prefilters (index into `MatchSet::groups`); a short list is
/// searched in order.
#[derive(Debug)]
enum ProgramIndex {
    Few(Vec<(Box<[u8]>, u32)>),
    /// (FNV: short keys, and a table only our configuration fills; a line's program name
    /// is only looked up, so it cannot crowd a bucket)
    Many(HashMap<Box<[u8]>, u32, BuildHasherDefault<crate::bytes::Fnv>>),
}

impl ProgramIndex {
    fn new(v: Vec<(Box<[u8]>, u32)>) -> ProgramIndex {
        if v.len() <= 8 {
            ProgramIndex::Few(v)
        } else {
            ProgramIndex::Many(v.into_iter().collect())
        }
    }

    #[inline]
    fn get(&self, p: &[u8]) -> Option<u32> {
        match self {
            ProgramIndex::Few(v) => v
                .iter()
                .find(|(q, _)| crate::bytes::eq(q, p))
                .map(|(_, g)| *g),
            ProgramIndex::Many(m) => m.get(p).copied(),
        }
    }
}

/// Literals in a radix tree; finds all those a message starts with.
#[derive(Debug)]
struct PrefixTrie {
    nodes: Vec<TrieNode>,
    /// The child of the root by first byte (0: none).
    root: Box<[u32; 256]>,
}

#[derive(Debug, Default)]
struct TrieNode {
    /// The bytes of the edge into this node.
    label: Box<[u8]>,
    /// Its first (up to) eight bytes as a little-endian word, and the mask of those bytes.
    head: u64,
    mask: u64,
    /// Children, by the first byte of their label.
    children: Vec<(u8, u32)>,
    /// (rule, literal id) of the literals ending here.
    ends: Vec<(u32, u32)>,
}

impl Default for PrefixTrie {
    fn default() -> PrefixTrie {
        PrefixTrie {
            nodes: vec![TrieNode::default()],
            root: Box::new([0; 256]),
        }
    }
}

impl PrefixTrie {
    fn child(&self, n: usize, b: u8) -> Option<usize> {
        if n == 0 {
            let c = self.root[b as usize];
            return (c != 0).then_some(c as usize);
        }
        self.nodes[n]
            .children
            .iter()
            .find(|(f, _)| *f == b)
            .map(|&(_, c)| c as usize)
    }

    fn set_child(&mut self, n: usize, b: u8, c: usize) {
        if n == 0 {
            self.root[b as usize] = c as u32;
            return;
        }
        let ch = &mut self.nodes[n].children;
        match ch.iter_mut().find(|(f, _)| *f == b) {
            Some(e) => e.1 = c as u32,
            None => ch.push((b, c as u32)),
        }
    }

    fn insert(&mut self, lit: &[u8], val: (u32, u32)) {
        let (mut n, mut rest) = (0usize, lit);
        loop {
            let Some(&b) = rest.first() else {
                self.nodes[n].ends.push(val);
                return;
            };
            let Some(c) = self.child(n, b) else {
                self.nodes.push(TrieNode {
                    label: rest.into(),
                    ends: vec![val],
                    ..TrieNode::default()
                });
                let id = self.nodes.len() - 1;
                self.set_child(n, b, id);
                return;
            };
            let label = &self.nodes[c].label;
            let common = label.iter().zip(rest).take_while(|(x, y)| x == y).count();
            if common < label.len() {
                // split the edge
                let (head, tail) = (label[..common].into(), label[common..].into());
                self.nodes[c].label = tail;
                let t0 = self.nodes[c].label[0];
                self.nodes.push(TrieNode {
                    label: head,
                    children: vec![(t0, c as u32)],
                    ..TrieNode::default()
                });
                let m = self.nodes.len() - 1;
                self.set_child(n, b, m);
                n = m;
            } else {
                n = c;
            }
            rest = &rest[common..];
        }
    }

    /// Computes the label words; call after the last `insert`.
    fn finish(&mut self) {
        for n in &mut self.nodes {
            let k = n.label.len().min(8);
            let mut w = [0u8; 8];
            w[..k].copy_from_slice(&n.label[..k]);
            n.head = u64::from_le_bytes(w);
            n.mask = if k == 8 {
                u64::MAX
            } else {
                (1u64 << (8 * k)) - 1
            };
        }
    }

    /// Pushes (rule, literal id, length) for every literal `msg` starts with, shortest first.
    #[inline]
    fn find(&self, msg: &[u8], out: &mut SmallVec<[(u32, u32, u32); 16]>) {
        let (mut n, mut pos) = (0usize, 0usize);
        loop {
            for &(id, li) in &self.nodes[n].ends {
                out.push((id, li, pos as u32));
            }
            let Some(c) = msg.get(pos).and_then(|&b| self.child(n, b)) else {
                return;
            };
            let node = &self.nodes[c];
            let rest = &msg[pos..];
            let ok = match rest.get(..8) {
                Some(w) => {
                    let w = u64::from_le_bytes(w.try_into().unwrap_or([0; 8]));
                    (w ^ node.head) & node.mask == 0
                        && (node.label.len() <= 8 || starts_with(&rest[8..], &node.label[8..]))
                }
                None => starts_with(rest, &node.label),
            };
            if !ok {
                return;
            }
            pos += node.label.len();
            n = c;
        }
    }
}

/// `hay.starts_with(lit)`, eight bytes at a time (the literals are short; no call).
#[inline]
fn starts_with(hay: &[u8], lit: &[u8]) -> bool {
    if hay.len() < lit.len() {
        return false;
    }
    let (mut a, mut b) = (&hay[..lit.len()], lit);
    while a.len() >= 8 {
        let (x, ra) = a.split_at(8);
        let (y, rb) = b.split_at(8);
        if u64::from_ne_bytes(x.try_into().unwrap()) != u64::from_ne_bytes(y.try_into().unwrap()) {
            return false;
        }
        (a, b) = (ra, rb);
    }
    a.iter().zip(b).all(|(x, y)| x == y)
}

/// `stamp.to_millis(ctx)`, remembering the last conversion (consecutive lines mostly carry
/// the same stamp).
#[inline]
/// The time a `[correlate]` line's `time` capture gives, read with the filter's formats.
fn side_time(f: &Filter, c: &regex::bytes::Captures<'_>, ctx: &TimeContext) -> Option<Millis> {
    let t = c.name("time")?.as_bytes();
    f.time_format
        .iter()
        .find_map(|fmt| crate::time::parse_with_format(fmt, t))
        .map(|st| st.to_millis(ctx))
}

fn stamp_millis(
    memo: &mut Option<(Stamp, TimeContext, Millis)>,
    st: Stamp,
    ctx: &TimeContext,
) -> Millis {
    if let Some((s, c, m)) = memo {
        if *s == st && c == ctx {
            return *m;
        }
    }
    let m = st.to_millis(ctx);
    *memo = Some((st, *ctx, m));
    m
}

/// Collects required literals and the rules that need them.
#[derive(Default)]
struct LitBuilder {
    lits: Vec<Vec<u8>>,
    rules: Vec<Vec<u32>>,
}

impl LitBuilder {
    fn add(&mut self, lit: &[u8], rule: u32) {
        // A part of a required literal is required too: without the spaces and punctuation
        // at its ends (" [SMTP Error] 535 " -> "SMTP Error] 535"), whose bytes are in almost
        // every line, the automaton's first-byte skip still skips (kept when too short).
        let trimmed = {
            let edge = |b: &u8| b.is_ascii_whitespace() || b.is_ascii_punctuation();
            let start = lit.iter().position(|b| !edge(b)).unwrap_or(lit.len());
            let end = lit.iter().rposition(|b| !edge(b)).map_or(start, |e| e + 1);
            &lit[start..end.max(start)]
        };
        let lit = if trimmed.len() >= 4 { trimmed } else { lit };
        match self.lits.iter().position(|x| x == lit) {
            Some(p) => self.rules[p].push(rule),
            None => {
                self.lits.push(lit.to_vec());
                self.rules.push(vec![rule]);
            }
        }
    }

    fn build(self) -> LitIndex {
        // Leftmost-longest semantics let the automaton skip ahead with its packed (SIMD)
        // prefilter, which the overlapping search cannot use; [`LitIndex::find`] restarts
        // one byte after each match, so every occurrence is still seen: at one position,
        // the longest literal found stands for the shorter ones that are its prefixes.
        let mut rules = self.rules.clone();
        for (i, l) in self.lits.iter().enumerate() {
            for (j, m) in self.lits.iter().enumerate() {
                if i != j && l.starts_with(m) {
                    rules[i].extend_from_slice(&self.rules[j]);
                }
            }
        }
        let ac = (!self.lits.is_empty()).then(|| {
            AhoCorasickBuilder::new()
                .match_kind(MatchKind::LeftmostLongest)
                .build(&self.lits)
                .expect("literal automaton")
        });
        LitIndex { ac, rules }
    }
}

/// An Aho-Corasick automaton over required literals, with the rules of each literal.
#[derive(Debug)]
struct LitIndex {
    ac: Option<AhoCorasick>,
    rules: Vec<Vec<u32>>,
}

impl LitIndex {
    /// Adds the rules whose literal occurs in `msg` to `cands`.
    fn find(&self, msg: &[u8], cands: &mut SmallVec<[(u32, u32, u32); 16]>) {
        let Some(ac) = &self.ac else {
            return;
        };
        let mut at = 0;
        // (each search starts one byte after the last match: bounded by the line's length)
        while at < msg.len() {
            let Some(m) = ac.find(aho_corasick::Input::new(msg).span(at..msg.len())) else {
                break;
            };
            cands.extend(
                self.rules[m.pattern().as_usize()]
                    .iter()
                    .map(|&id| (id, u32::MAX, 0)),
            );
            at = m.start() + 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_shard_keeps_a_session_together_and_spreads_sessions_evenly() {
        for n in [2usize, 3, 4, 8] {
            for host in ["web1", "a-much-longer-host-name.example", ""] {
                let mut per = vec![0usize; n];
                for pid in 1..=20_000u32 {
                    let line = if host.is_empty() {
                        format!("Nov 21 10:00:00 sshd[{pid}]: x")
                    } else {
                        format!("Nov 21 10:00:00 {host} sshd[{pid}]: x")
                    };
                    let p = crate::prefix::parse(line.as_bytes());
                    assert_eq!(p.pid, pid);
                    let s = session_shard(&p, n);
                    // the same host and pid on another line, with another time and message
                    let again = line.replace("10:00:00", "23:59:59").replace(": x", ": y z");
                    assert_eq!(session_shard(&crate::prefix::parse(again.as_bytes()), n), s);
                    per[s] += 1;
                }
                let even = 20_000 / n;
                assert!(
                    per.iter().all(|&c| c.abs_diff(even) < even / 20),
                    "{n} {host:?}: {per:?}"
                );
            }
        }
        // no pid: reader 0; one reader: reader 0
        let p = crate::prefix::parse(b"Nov 21 10:00:00 web1 sshd: x");
        assert_eq!(session_shard(&p, 4), 0);
        let p = crate::prefix::parse(b"Nov 21 10:00:00 web1 sshd[7]: x");
        assert_eq!(session_shard(&p, 1), 0);
    }
    use crate::filter::{builtin, sample};
    use proptest::prelude::*;

    const CTX: TimeContext = TimeContext {
        now: 1_795_000_000_000,
        local_offset: 0,
        zone: None,
    };

    type Out = Option<(usize, usize, IpAddr, Option<Vec<u8>>, Option<Millis>, u32)>;

    fn own(h: Option<Hit<'_>>) -> Out {
        h.map(|h| {
            (
                h.filter,
                h.rule,
                h.addr,
                h.user.map(<[u8]>::to_vec),
                h.time,
                h.pid,
            )
        })
    }

    #[test]
    fn program_patterns_read_postfix_multi_instance_names() {
        let f = |name: &str, programs: &str| {
            Filter::from_toml(
                &format!(
                    "name = \"{name}\"\nprograms = [{programs}]\n[[rule]]\nid = \"r\"\npattern = 'lost connection after AUTH from [^ ]*\\[{{HOST}}\\]'\n"
                ),
                name,
            )
            .unwrap()
        };
        let any = Filter::from_toml(
            "name = \"any\"\n[[rule]]\nid = \"r\"\npattern = 'bad thing from {HOST}'\n",
            "any",
        )
        .unwrap();
        let set = MatchSet::new(
            vec![
                f("postfix", "\"postfix/smtpd\", \"postfix-*/smtpd\""),
                f("exact", "\"other\""),
                any,
            ],
            Mode::Normal,
        );
        let mut sc = set.scratch();
        let hit = |line: &str, sc: &mut Scratch| {
            set.match_line(line.as_bytes(), &CTX, sc)
                .map(|h| (h.filter, h.addr.to_string()))
        };
        let msg = "lost connection after AUTH from unknown[192.0.2.9]";
        for (prog, want) in [
            ("postfix/smtpd", Some((0, "192.0.2.9".to_string()))),
            ("postfix-out/smtpd", Some((0, "192.0.2.9".to_string()))),
            ("postfix-a-b/smtpd", Some((0, "192.0.2.9".to_string()))),
            // the `*` stands for one or more bytes, no `/`
            ("postfix-/smtpd", None),
            ("postfix-x/y/smtpd", None),
            ("postfix-out/cleanup", None),
            ("cron", None),
            // (the other filter reads its own program's lines)
            ("other", Some((1, "192.0.2.9".to_string()))),
        ] {
            let line = format!("Nov 21 10:00:01 mx {prog}[7]: {msg}");
            assert_eq!(hit(&line, &mut sc), want, "{prog}");
        }
        // the filter reading any program still reads a pattern-matched program's lines
        let line = "Nov 21 10:00:01 mx postfix-out/smtpd[7]: bad thing from 198.51.100.4";
        assert_eq!(hit(line, &mut sc), Some((2, "198.51.100.4".to_string())));
        // a pattern starting with `*` or with two is refused
        for bad in ["\"*/smtpd\"", "\"a*b*c\""] {
            let t = format!(
                "name = \"x\"\nprograms = [{bad}]\n[[rule]]\nid = \"r\"\npattern = 'x {{HOST}}'\n"
            );
            assert!(Filter::from_toml(&t, "x").is_err(), "{bad}");
        }
    }

    #[test]
    fn a_program_tag_that_is_an_absolute_path_is_its_last_component() {
        let f = |name: &str, programs: &str| {
            Filter::from_toml(
                &format!(
                    "name = \"{name}\"\nprograms = [{programs}]\n[[rule]]\nid = \"r\"\npattern = 'bad thing from {{HOST}}'\n"
                ),
                name,
            )
            .unwrap()
        };
        let set = MatchSet::new(
            vec![f("kamailio", "\"kamailio\""), f("smtpd", "\"smtpd\"")],
            Mode::Normal,
        );
        let mut sc = set.scratch();
        for (prog, want) in [
            ("kamailio", Some(0)),
            // Kamailio's argv[0] when its systemd unit starts it
            ("/usr/sbin/kamailio", Some(0)),
            ("/kamailio", Some(0)),
            ("/usr/sbin/smtpd", Some(1)),
            // only an absolute path: Postfix's service names are not OpenSMTPD's smtpd
            ("postfix/smtpd", None),
            ("usr/sbin/kamailio", None),
            ("/usr/sbin/", None),
            ("/usr/sbin/kamailio2", None),
        ] {
            let line = format!("Nov 21 10:00:01 sip {prog}[7]: bad thing from 192.0.2.9");
            let got = set
                .match_line(line.as_bytes(), &CTX, &mut sc)
                .map(|h| h.filter);
            assert_eq!(got, want, "{prog}");
        }
    }

    #[test]
    fn empty_program_name_reads_only_lines_without_a_program() {
        let own = Filter::from_toml(
            "name = \"own\"\nprograms = [\"\"]\n[[rule]]\nid = \"r\"\npattern = 'bad thing from {HOST}'\n",
            "own",
        )
        .unwrap();
        assert!(own.untagged && own.programs.is_empty());
        assert!(!own.accepts_program(b"sshd") && !own.reads_any_program());
        let any = Filter::from_toml(
            "name = \"any\"\n[[rule]]\nid = \"r\"\npattern = 'other thing from {HOST}'\n",
            "any",
        )
        .unwrap();
        assert!(!any.untagged && any.reads_any_program());
        // "" next to names adds nothing: named filters read untagged lines anyway
        let named = Filter::from_toml(
            "name = \"n\"\nprograms = [\"\", \"app\"]\n[[rule]]\nid = \"r\"\npattern = 'x {HOST}'\n",
            "n",
        )
        .unwrap();
        assert!(!named.untagged && named.programs == vec![b"app".to_vec()]);
        for with_any in [false, true] {
            let mut fs = vec![own.clone()];
            if with_any {
                fs.push(any.clone());
            }
            let set = MatchSet::new(fs, Mode::Normal);
            let mut sc = set.scratch();
            let mut hit = |line: &str| {
                set.match_line(line.as_bytes(), &CTX, &mut sc)
                    .map(|h| (h.filter, h.addr.to_string()))
            };
            let own_hit = Some((0, "192.0.2.7".to_string()));
            // the program's own file
            assert_eq!(hit("bad thing from 192.0.2.7"), own_hit);
            // a named program's line never reaches it
            assert_eq!(
                hit("Nov 21 10:00:01 mx app[7]: bad thing from 192.0.2.7"),
                None
            );
            assert_eq!(
                hit("Nov 21 10:00:01 mx sshd: bad thing from 192.0.2.7"),
                None
            );
            // the filter reading any program still reads them
            let other = hit("Nov 21 10:00:01 mx app[7]: other thing from 198.51.100.4");
            assert_eq!(other, with_any.then(|| (1, "198.51.100.4".to_string())));
        }
    }

    #[test]
    fn literal_index_finds_overlapping_and_nested_literals() {
        let mut b = LitBuilder::default();
        for (i, l) in ["abcd", "abcdefgh", "cdefg", "fghij", "zzzz"]
            .iter()
            .enumerate()
        {
            b.add(l.as_bytes(), i as u32);
        }
        let idx = b.build();
        let found = |msg: &str| {
            let mut c = SmallVec::new();
            idx.find(msg.as_bytes(), &mut c);
            let mut ids: Vec<u32> = c.iter().map(|c| c.0).collect();
            ids.sort_unstable();
            ids.dedup();
            ids
        };
        assert_eq!(found("xx abcdefghij yy"), vec![0, 1, 2, 3]);
        assert_eq!(found("abcd abcdefg"), vec![0, 2]);
        assert_eq!(found("zzzzzzz"), vec![4]);
        assert_eq!(
            found("nothing here at all, long enough for the packed searcher"),
            Vec::<u32>::new()
        );
        let long = format!("{}abcdefghij{}", "q".repeat(100), "r".repeat(100));
        assert_eq!(found(&long), vec![0, 1, 2, 3]);
    }

    /// The set under test and the reference (no prefilter, regex crate only), each with
    /// its own scratch, fed the same lines.
    struct Pair {
        set: MatchSet,
        fast: Scratch,
        plain: Scratch,
    }

    impl Pair {
        fn new(filters: Vec<Filter>) -> Pair {
            let set = MatchSet::new(filters, Mode::Aggressive);
            let fast = set.scratch();
            let plain = set.scratch();
            Pair { set, fast, plain }
        }

        fn check(&mut self, line: &[u8]) -> Result<(), String> {
            let p = prefix::parse(line);
            let got = own(self.set.match_parsed_with(&p, &CTX, &mut self.fast, false));
            let want = own(self.set.match_parsed_with(&p, &CTX, &mut self.plain, true));
            // the message alone, as journald gives it
            let m = Parsed {
                stamp: None,
                host: None,
                program: None,
                pid: 0,
                message: p.message,
                repeat: 1,
            };
            let got_m = own(self.set.match_parsed_with(&m, &CTX, &mut self.fast, false));
            let want_m = own(self.set.match_parsed_with(&m, &CTX, &mut self.plain, true));
            if got == want && got_m == want_m {
                Ok(())
            } else {
                Err(format!(
                    "{:?}\n  fast  {got:?} / {got_m:?}\n  plain {want:?} / {want_m:?}",
                    String::from_utf8_lossy(line)
                ))
            }
        }
    }

    /// The built-in filters that compile, with their sample lines (compiled once).
    fn builtin_filters() -> &'static [(Filter, Vec<String>)] {
        static ALL: std::sync::OnceLock<Vec<(Filter, Vec<String>)>> = std::sync::OnceLock::new();
        ALL.get_or_init(|| {
            builtin::all()
                .iter()
                .filter_map(|b| {
                    let f = Filter::from_toml(b.source, b.name).ok()?;
                    // build the engines now, so that clones share them
                    f.rules.iter().for_each(|r| {
                        r.pattern.has_twopass();
                    });
                    let lines = sample::parse(b.sample)
                        .ok()?
                        .into_iter()
                        .map(|c| c.line)
                        .collect();
                    Some((f, lines))
                })
                .collect()
        })
    }

    fn sshd() -> &'static (Filter, Vec<String>) {
        builtin_filters()
            .iter()
            .find(|(f, _)| f.name == "sshd")
            .expect("sshd filter")
    }

    /// Attacker-chosen pieces: addresses, separators and the words the patterns anchor on.
    const TOKENS: &[&str] = &[
        " from ",
        "from",
        " port ",
        "port",
        " ",
        "  ",
        "1.2.3.4",
        "203.0.113.5",
        "::1",
        "2001:db8::1",
        "::ffff:10.0.0.1",
        "fe80::1%eth0",
        " ssh2",
        "ssh2",
        ": ",
        "invalid user ",
        "illegal user ",
        "authenticating user ",
        " [preauth]",
        "root",
        "x",
        ":",
        "%",
        "[",
        "]",
        "\t",
        "é",
        "\u{0}",
        " port 22",
        " from 10.9.8.7 port 1 ssh2",
        " 10.9.8.7 port 1",
        "for ",
        "user ",
        "(",
        ")",
        "'",
        "\"",
        "#",
        "1",
        "999",
        "255.255.255.255",
        "\n",
        "\r",
    ];

    fn piece() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            4 => prop::sample::select(TOKENS).prop_map(|t| t.as_bytes().to_vec()),
            1 => prop::collection::vec(any::<u8>(), 0..4),
        ]
    }

    fn user() -> impl Strategy<Value = Vec<u8>> {
        prop::collection::vec(piece(), 0..6).prop_map(|v| v.concat())
    }

    /// Replaces the span of capture `name` (as the regex crate finds it) of the first rule
    /// matching `line` with `with`, if there is one.
    fn splice_capture(f: &Filter, line: &[u8], name: &str, with: &[u8]) -> Option<Vec<u8>> {
        let p = prefix::parse(line);
        let off = p.message.as_ptr() as usize - line.as_ptr() as usize;
        for r in &f.rules {
            if let Some(c) = r.regex().expect("compiles").captures(p.message) {
                let m = c.name(name)?;
                let mut out = line[..off + m.start()].to_vec();
                out.extend_from_slice(with);
                out.extend_from_slice(&line[off + m.end()..]);
                return Some(out);
            }
        }
        None
    }

    #[test]
    fn every_sample_and_its_truncations_match_as_the_regex_crate_does() {
        let all = builtin_filters();
        let mut pair = Pair::new(all.iter().map(|(f, _)| f.clone()).collect());
        let mut errors = Vec::new();
        for (f, lines) in all {
            let mut own = Pair::new(vec![f.clone()]);
            let every = f.name == "sshd";
            for l in lines {
                errors.extend(pair.check(l.as_bytes()).err());
                let b = l.as_bytes();
                let step = if every { 1 } else { 7 };
                for cut in (0..=b.len()).step_by(step) {
                    for line in [&b[..cut], &b[cut..]] {
                        errors.extend(own.check(line).err());
                    }
                }
                for t in TOKENS {
                    for name in ["user", "host"] {
                        if let Some(line) = splice_capture(f, b, name, t.as_bytes()) {
                            errors.extend(own.check(&line).err());
                        }
                    }
                }
            }
        }
        assert!(
            errors.is_empty(),
            "{} differences:\n{}",
            errors.len(),
            errors[..errors.len().min(20)].join("\n")
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]

        /// sshd sample lines with attacker-chosen user names (addresses, spaces, `from`,
        /// `port` inside): the same rule, address and user as the regex crate.
        #[test]
        fn sshd_user_injection_matches_as_the_regex_crate_does(
            i in any::<prop::sample::Index>(),
            u in user(),
            extra in prop::collection::vec((any::<prop::sample::Index>(), piece()), 0..3),
        ) {
            let (f, lines) = sshd();
            let line = lines[i.index(lines.len())].as_bytes();
            let mut line = splice_capture(f, line, "user", &u).unwrap_or_else(|| line.to_vec());
            let mut pair = Pair::new(vec![f.clone()]);
            pair.check(&line).map_err(TestCaseError::fail)?;
            for (at, p) in extra {
                let at = at.index(line.len() + 1);
                line.splice(at..at, p);
                pair.check(&line).map_err(TestCaseError::fail)?;
            }
        }

    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        /// The same for the sample lines of every built-in filter, in one set.
        #[test]
        fn all_filters_mutated_lines_match_as_the_regex_crate_does(
            i in any::<prop::sample::Index>(),
            edits in prop::collection::vec((any::<prop::sample::Index>(), 0..3usize, piece()), 1..4),
        ) {
            let all = builtin_filters();
            let lines: Vec<&String> = all.iter().flat_map(|(_, l)| l.iter()).collect();

            let mut pair = Pair::new(all.iter().map(|(f, _)| f.clone()).collect());
            let mut line = lines[i.index(lines.len())].as_bytes().to_vec();
            for (at, op, p) in edits {
                let at = at.index(line.len() + 1);
                match op {
                    0 => { line.splice(at..at, p); }
                    1 => { line.truncate(at); }
                    _ => { if at < line.len() { line.remove(at); } }
                }
                pair.check(&line).map_err(TestCaseError::fail)?;
            }
        }
    }
}

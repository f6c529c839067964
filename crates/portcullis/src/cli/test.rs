//! `portcullis test --filter NAME [--json] [FILE]`: try a filter on a log, like
//! blacklist.py's test mode and fail2ban-regex.
//!
//! Summary mode counts lines, matches per rule, top hosts and top users. It splits a file
//! across threads at line starts (each thread reads its own part, with its own scratch)
//! because matching is independent per line; for a filter that ties the lines of a session
//! together (`correlate`) every thread reads the whole file and matches the lines of its
//! share of the sessions. JSON mode prints exactly one object per input line, in input
//! order, with what the line counts (`weight`: 0 for a line held back in its session) and
//! what it adds to its address's count in a jail's tracker (`adds`: 0 too for a follow-up
//! of a connection that counted already).

use std::io::Write;
use std::net::IpAddr;
use std::path::Path;

use anyhow::Result;
use portcullis_core::filter::{Filter, MatchSet, Mode};
use portcullis_core::time::{rfc3339, TimeContext};

use super::input;
use crate::sources::line::{self, DEFAULT_MAX_LINE};

/// Hash maps keyed by what attackers write (addresses, user names): foldhash is seeded
/// at random per process like the standard hasher, and several times faster.
type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

/// Counts gathered over (part of) the input.
#[derive(Default)]
struct Stats {
    lines: u64,
    /// Lines longer than the daemon's default limit, matched cut as the daemon cuts them.
    cut: u64,
    /// Lines not matched because a syslog transport may have cut them where a client chose
    /// (see `portcullis_core::filter::cut`).
    transport_cut: u64,
    /// Matches refused: the line may be a piece of a message its program split.
    split: u64,
    /// Lines without a program name that a `tagged_only` rule matched (not counted).
    untagged: u64,
    /// The streams of a container runtime's log whose last record was partial, when the
    /// input may hold such records (`None`: not looked for); read in order by one reader.
    held: Option<input::Held>,
    /// Lines left unread for it: a partial record and the record that ends its line.
    held_records: u64,
    matched: u64,
    /// Lines not matched whose prefix gave no program, for a filter that names its
    /// programs (a prefix Portcullis does not read, or a file of bare messages).
    unrecognised: u64,
    /// The first few of them (by file position).
    unrecognised_first: Vec<(u64, Box<[u8]>)>,
    /// How many of the lines no rule matched to keep (`--missed`; 0: none).
    missed_keep: usize,
    /// The first `missed_keep` of them (by file position), but a syslog daemon's repeat line.
    missed_first: Vec<(u64, Box<[u8]>)>,
    per_rule: Vec<u64>,
    /// Per address ([`host_key`]).
    hosts: HashMap<u128, u64>,
    /// Per IPv4 address, until [`Stats::flush`] moves them into `hosts`: a bucket of 16
    /// bytes, half of a `hosts` one. A flood's addresses (5,000 in the stress file) are
    /// counted in no order, and the bucket's load missed the cache on a third of
    /// `count_parsed`'s perf samples.
    hosts4: HashMap<u32, u64>,
    users: HashMap<Box<[u8]>, u64>,
    /// Per user name of up to 16 bytes (most are), until [`Stats::flush`] moves them into
    /// `users`: a fixed key is hashed and compared inline, where a boxed name's lookup
    /// compared through a call to libc's `memcmp` (5 % of the stress file's time, in perf).
    short_users: HashMap<ShortName, u64>,
    /// The host of the latest matches and how many there were, not yet in `hosts`
    /// (attack lines come in runs from one address).
    run_host: Option<(u128, u64)>,
    /// The same for the user (a buffer reused, so that a new run allocates nothing);
    /// a count of 0 means no run.
    run_user: (Vec<u8>, u64),
    /// The number (`at`) plus one of the last line this reader counted as a failure (its
    /// host and user are the runs'), which a syslog daemon's `last message repeated N times`
    /// just after it counts again; 0 for none.
    last_next: u64,
    /// That line's rule and whether it captured a user: `rule << 1 | user`.
    last_rule: u32,
    /// Repeat lines at the start of a piece, whose line before is the previous piece's
    /// last: (piece, how many).
    lead: Vec<(u64, u64)>,
    /// The failures that end a piece.
    tails: Vec<PieceTail>,
}

/// The failure that ends a piece: (piece, rule, host, user).
type PieceTail = (u64, usize, u128, Option<Box<[u8]>>);

/// The bits of a line number (`at`) that number the line in its piece.
const IN_PIECE: u64 = (1 << 40) - 1;

impl Stats {
    /// Empty counts that keep the first `missed` lines no rule matched.
    fn new(missed: usize) -> Stats {
        Stats {
            missed_keep: missed,
            ..Default::default()
        }
    }

    /// [`Stats::new`] for a reader of the whole input in order that may meet a container
    /// runtime's records: a partial record and the one that ends its line are not read,
    /// as in a jail (`test --json` shows them unmatched).
    fn in_order(missed: usize, container: bool) -> Stats {
        Stats {
            held: container.then(input::Held::default),
            ..Stats::new(missed)
        }
    }

    /// Keeps line `at` as a missed one, while it is among the first `missed_keep`.
    fn missed(&mut self, line: &[u8], at: u64) {
        if self.missed_first.len() < self.missed_keep {
            self.missed_first.push((at, line.into()));
        }
    }

    fn count_host(&mut self, h: IpAddr) {
        let h = host_key(h);
        match &mut self.run_host {
            Some((last, n)) if *last == h => *n += 1,
            run => {
                if let Some((last, n)) = run.replace((h, 1)) {
                    add_host(&mut self.hosts4, &mut self.hosts, last, n);
                }
            }
        }
    }

    fn count_user(&mut self, u: &[u8]) {
        let (last, n) = &mut self.run_user;
        // (inline comparison: the slices' `==` is a call to libc's `memcmp`)
        if *n > 0 && portcullis_core::bytes::eq(last, u) {
            *n += 1;
            return;
        }
        if *n > 0 {
            add_user(&mut self.short_users, &mut self.users, last, *n);
        }
        last.clear();
        last.extend_from_slice(u);
        *n = 1;
    }

    /// Moves the pending runs into the maps.
    fn flush(&mut self) {
        if let Some((h, n)) = self.run_host.take() {
            add_host(&mut self.hosts4, &mut self.hosts, h, n);
        }
        for (a, n) in self.hosts4.drain() {
            *self.hosts.entry(V4_MAPPED | u128::from(a)).or_default() += n;
        }
        let (u, n) = &mut self.run_user;
        if *n > 0 {
            add_user(&mut self.short_users, &mut self.users, u, *n);
            *n = 0;
        }
        for (k, n) in self.short_users.drain() {
            *self.users.entry(k.bytes().into()).or_default() += n;
        }
    }

    /// A syslog daemon's `last message repeated N times` (line `at`): counted as one more
    /// matched line of the failure just before it, when this reader counted that one;
    /// false when the line is not one.
    #[inline(never)]
    fn repeat(&mut self, p: &portcullis_core::prefix::Parsed<'_>, at: u64) -> bool {
        if p.program.is_some_and(|g| g != b"syslogd")
            || portcullis_core::prefix::syslogd_repeat(p).is_none()
        {
            return false;
        }
        match self.last_next {
            n if n == at && n != 0 => {
                self.matched += 1;
                self.per_rule[(self.last_rule >> 1) as usize] += 1;
                if let Some((_, n)) = &mut self.run_host {
                    *n += 1;
                }
                if self.last_rule & 1 != 0 {
                    self.run_user.1 += 1;
                }
                self.last_next = at + 1;
            }
            // (at the start of a piece: the line before is the previous piece's last)
            _ => {
                let (piece, k) = (at >> 40, at & IN_PIECE);
                match self.lead.last_mut() {
                    Some((p, n)) if *p == piece && *n == k => *n += 1,
                    _ if k == 0 => self.lead.push((piece, 1)),
                    _ => {}
                }
            }
        }
        true
    }

    /// Notes the failure that ends piece `piece` (`end`: the number after its last line).
    fn end_piece(&mut self, piece: u64, end: u64) {
        if self.last_next == end && end != 0 {
            let host = self.run_host.map_or(0, |(h, _)| h);
            let user = (self.last_rule & 1 != 0).then(|| self.run_user.0.as_slice().into());
            self.tails
                .push((piece, (self.last_rule >> 1) as usize, host, user));
        }
    }

    /// Counts the repeat lines that start a piece with the failure that ends the piece
    /// before (after every piece was merged).
    fn join_pieces(&mut self) {
        self.flush();
        for (piece, k) in std::mem::take(&mut self.lead) {
            let Some((_, rule, host, user)) = self.tails.iter().find(|t| t.0 + 1 == piece) else {
                continue;
            };
            self.matched += k;
            self.per_rule[*rule] += k;
            *self.hosts.entry(*host).or_default() += k;
            if let Some(u) = user {
                add_user(&mut self.short_users, &mut self.users, u, k);
            }
        }
    }

    fn merge(&mut self, mut o: Stats) {
        self.flush();
        o.flush();
        self.lead.extend(o.lead);
        self.tails.extend(o.tails);
        self.lines += o.lines;
        self.cut += o.cut;
        self.transport_cut += o.transport_cut;
        self.split += o.split;
        self.untagged += o.untagged;
        self.held_records += o.held_records;
        self.matched += o.matched;
        self.unrecognised += o.unrecognised;
        self.unrecognised_first.extend(o.unrecognised_first);
        self.unrecognised_first.sort_by_key(|(at, _)| *at);
        self.unrecognised_first.truncate(UNRECOGNISED_SHOWN);
        self.missed_first.extend(o.missed_first);
        self.missed_first.sort_by_key(|(at, _)| *at);
        self.missed_first.truncate(self.missed_keep);
        if self.per_rule.len() < o.per_rule.len() {
            self.per_rule.resize(o.per_rule.len(), 0);
        }
        for (a, b) in self.per_rule.iter_mut().zip(o.per_rule) {
            *a += b;
        }
        for (h, n) in o.hosts {
            *self.hosts.entry(h).or_default() += n;
        }
        for (u, n) in o.users {
            *self.users.entry(u).or_default() += n;
        }
    }
}

/// How many of the lines whose prefix was not recognised the summary shows.
const UNRECOGNISED_SHOWN: usize = 5;

/// An address as one number (hashed and compared in one go): IPv4 as its IPv4-mapped IPv6
/// form, which no IPv6 address reaching here has (the address parser turns those into IPv4).
fn host_key(h: IpAddr) -> u128 {
    match h {
        IpAddr::V4(v4) => u128::from(v4.to_ipv6_mapped()),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

/// The [`host_key`] of IPv4 address 0.0.0.0 (`::ffff:0.0.0.0`): an IPv4 address's key
/// is this with the address in the low 32 bits.
const V4_MAPPED: u128 = 0xffff << 32;

/// Adds `n` to the count of host `k` (a [`host_key`]): in `h4` when it is an IPv4
/// address, else in `hosts`.
#[inline]
fn add_host(h4: &mut HashMap<u32, u64>, hosts: &mut HashMap<u128, u64>, k: u128, n: u64) {
    if k >> 32 == V4_MAPPED >> 32 {
        *h4.entry(k as u32).or_default() += n;
    } else {
        *hosts.entry(k).or_default() += n;
    }
}

/// The address of a [`host_key`].
fn host_of(k: u128) -> IpAddr {
    let v6 = std::net::Ipv6Addr::from(k);
    match v6.to_ipv4_mapped() {
        Some(v4) => IpAddr::V4(v4),
        None => IpAddr::V6(v6),
    }
}

/// A user name of at most 16 bytes as a fixed-size key: its first 8 bytes and its last 8
/// (overlapping when shorter than 16; zero-padded up to 8 bytes) and its length, which
/// together give back every byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct ShortName {
    lo: u64,
    hi: u64,
    len: u8,
}

impl ShortName {
    /// The key of `u`; `None` when it is longer than 16 bytes.
    #[inline]
    fn of(u: &[u8]) -> Option<ShortName> {
        let n = u.len();
        let word = |i: usize| u64::from_le_bytes(u[i..i + 8].try_into().unwrap());
        let (lo, hi) = match n {
            0..=8 => (portcullis_core::bytes::le_tail(u), 0),
            9..=16 => (word(0), word(n - 8)),
            _ => return None,
        };
        Some(ShortName {
            lo,
            hi,
            len: n as u8,
        })
    }

    /// The name again.
    fn bytes(self) -> Vec<u8> {
        let n = usize::from(self.len);
        let mut b = vec![0; n];
        if n <= 8 {
            b.copy_from_slice(&self.lo.to_le_bytes()[..n]);
        } else {
            b[..8].copy_from_slice(&self.lo.to_le_bytes());
            b[n - 8..].copy_from_slice(&self.hi.to_le_bytes());
        }
        b
    }
}

/// Adds `n` to user `u`'s count: in `short` when it has at most 16 bytes, else in `users`.
fn add_user(
    short: &mut HashMap<ShortName, u64>,
    users: &mut HashMap<Box<[u8]>, u64>,
    u: &[u8],
    n: u64,
) {
    if let Some(k) = ShortName::of(u) {
        *short.entry(k).or_default() += n;
        return;
    }
    match users.get_mut(u) {
        Some(c) => *c += n,
        None => {
            users.insert(u.into(), n);
        }
    }
}

/// Runs the test command; returns the exit code.
/// `missed`: how many of the lines no rule matched to list (`--missed`).
pub fn run(
    filter: &str,
    json: bool,
    file: Option<&Path>,
    top: usize,
    missed: Option<usize>,
) -> Result<i32> {
    let f = match crate::config::resolve_filter(filter, &[]) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("portcullis: {e}");
            return Ok(2);
        }
    };
    // a filter of the admin's own: what its patterns let a client do
    let own = portcullis_core::filter::builtin::get(filter).is_none();
    if own {
        for w in portcullis_core::filter::lint::warnings(&f) {
            eprintln!("portcullis: warning: {w}");
        }
    }
    let ctx = super::time_context_for_logs();
    let set = MatchSet::new(vec![f.clone()], Mode::Aggressive);
    if json {
        let stdout = std::io::stdout();
        let mut out = std::io::BufWriter::with_capacity(1 << 16, stdout.lock());
        let mut scratch = set.scratch();
        let mut res = Ok(());
        let mut last = None;
        // each line's weight is what it adds to its address's count in a jail's tracker
        // (one that never bans and forgets nothing): a follow-up line of a session that
        // counted already adds nothing there (review 40: shown with the rule's weight)
        let mut jail = counting_jail(f);
        let mut seen: std::collections::HashMap<portcullis_core::ignore::Cidr, u64> =
            Default::default();
        // the streams whose last record was a container runtime's partial record: that
        // record and the one of its stream that ends its line are not read, as in a jail
        // (they were shown matched, a review found)
        let mut held = input::Held::default();
        input::for_each_line(input::open(file)?, |line| {
            if res.is_ok() {
                let (l, _) = line::prepare(line, DEFAULT_MAX_LINE);
                let unread = held.unread(portcullis_core::prefix::container_record(&l));
                let added = match jail.process(&l, &ctx, None, ctx.now) {
                    portcullis_core::jail::Step::Failure { failure, .. } => {
                        let key = jail.settings().tracker.key(failure.addr);
                        let now = jail.tracker().counted(key);
                        let before = seen.insert(key, now).unwrap_or(0);
                        Some(saturate(now.saturating_sub(before)))
                    }
                    _ => None,
                };
                res = if unread {
                    last = None;
                    out.write_all(UNMATCHED).map_err(Into::into)
                } else {
                    write_json(&mut out, &set, &mut scratch, line, &ctx, &mut last, added)
                };
            }
        })?;
        res?;
        out.flush()?;
        return Ok(0);
    }
    // a progress bar on a terminal for a large file (nothing when piped or --json)
    let bar = super::progress::Bar::start(super::progress::total_size(file), false);
    // (a filter of the admin's own that matches nothing: the first lines are kept to say
    // why, see `print_summary`)
    let keep = missed.unwrap_or(0).max(if own { HINT_LINES } else { 0 });
    let mut stats = match file {
        Some(p) if p.as_os_str() != "-" => summarise_file(&set, p, &ctx, keep)?,
        _ => {
            let mut s = Stats::in_order(keep, true);
            let mut scratch = set.scratch();
            input::for_each_line(input::open(None)?, |l| {
                let at = s.lines;
                count(&set, &mut scratch, &mut s, l, at, &ctx)
            })?;
            s
        }
    };
    drop(bar);
    stats.flush();
    print_summary(&set, &stats, top, missed.is_some(), own);
    Ok(0)
}

/// The lines not matched kept for [`nothing_matched_hints`].
const HINT_LINES: usize = 50;

/// Why a filter of the admin's own matched none of the lines, when a rule finds its text in
/// some of them once it is searched anywhere in the line (review 61: a pattern written for a
/// tool that searches, such as blacklist.py's, which stops at the address, or BlockHosts',
/// which starts with `sshd[PID]:`, matched nothing, and nothing said why).
fn nothing_matched_hints(f: &Filter, s: &Stats) -> Vec<String> {
    let mut out = Vec::new();
    let mut seen: Vec<&str> = Vec::new();
    for r in f.rules() {
        let Some(body) = portcullis_core::filter::macros::unanchored(r.pattern().as_str()) else {
            continue;
        };
        if seen.contains(&body) {
            continue;
        }
        seen.push(body);
        let Ok(re) = regex::bytes::Regex::new(&format!("(?s-u)(?:{body})")) else {
            continue;
        };
        let n = s
            .missed_first
            .iter()
            .filter(|(_, l)| re.is_match(l))
            .count();
        if n > 0 {
            out.push(format!(
                "rule {:?} finds its text in {n} of the first {} lines not matched when searched anywhere in the line: a pattern must cover the whole message, from just after `program[pid]: ` (the time, host and program are read before it: leave them out) to the end of the line (write the program's own text after the address, or end with ` .*` only where the program writes nothing a client sends)",
                r.id,
                s.missed_first.len()
            ));
        }
    }
    out
}

/// Counts a line not matched and without a program, when the filter names its programs: the line may be of a format Portcullis does not read (`at`: the line's byte
/// position, to show the first ones in file order).
fn not_recognised(set: &MatchSet, s: &mut Stats, line: &[u8], at: u64) {
    let f = &set.filters()[0];
    if f.programs.is_empty() || line.iter().all(u8::is_ascii_whitespace) {
        return;
    }
    s.unrecognised += 1;
    if s.unrecognised_first.len() < UNRECOGNISED_SHOWN {
        s.unrecognised_first.push((at, line.into()));
    }
}

fn count(
    set: &MatchSet,
    scratch: &mut portcullis_core::filter::Scratch,
    s: &mut Stats,
    line: &[u8],
    at: u64,
    ctx: &TimeContext,
) {
    let (line, cut) = line::prepare(line, DEFAULT_MAX_LINE);
    if let Some(held) = &mut s.held {
        if held.unread(portcullis_core::prefix::container_record(&line)) {
            s.lines += 1;
            s.held_records += 1;
            s.missed(&line, at);
            (s.last_next, s.last_rule) = (0, 0);
            return;
        }
    }
    // (split here rather than in match_line: its program tells an unread prefix)
    let parsed = portcullis_core::prefix::parse(&line);
    count_parsed(set, scratch, s, &line, cut, &parsed, at, ctx);
}

/// Whether a line may be a syslog daemon's repeat line (no pid, or the program
/// `syslogd`): the test the usual line stops at.
#[inline(always)]
fn may_repeat(p: &portcullis_core::prefix::Parsed<'_>) -> bool {
    p.pid == 0 || p.program == Some(&b"syslogd"[..])
}

/// [`count`] for the reader `me` of a file shared by session ([`summarise_sharded`]): only
/// the lines of its sessions, from the note the chunk's reading thread made of each line
/// (the split is not done again). A syslog daemon's repeat line counts in the reader that
/// counted the line before it.
#[allow(clippy::too_many_arguments)]
fn count_noted(
    set: &MatchSet,
    scratch: &mut portcullis_core::filter::Scratch,
    s: &mut Stats,
    line: &[u8],
    note: &input::LineNote,
    at: u64,
    ctx: &TimeContext,
    me: u32,
) {
    // (most lines are another thread's: nothing to do but the repeat test)
    if note.shard != me && s.last_next != at {
        return;
    }
    let (line, cut) = line::prepare(line, DEFAULT_MAX_LINE);
    let parsed = note.parsed(&line);
    if note.shard != me {
        if may_repeat(&parsed) {
            s.repeat(&parsed, at);
        }
        return;
    }
    count_parsed(set, scratch, s, &line, cut, &parsed, at, ctx);
}

/// The line's own count, once its reader knows the line is its to count.
#[allow(clippy::too_many_arguments)]
fn count_parsed(
    set: &MatchSet,
    scratch: &mut portcullis_core::filter::Scratch,
    s: &mut Stats,
    line: &[u8],
    cut: bool,
    parsed: &portcullis_core::prefix::Parsed<'_>,
    at: u64,
    ctx: &TimeContext,
) {
    let parsed = *parsed;
    s.lines += 1;
    s.cut += u64::from(cut);
    let refused = scratch.cut_refused();
    let split = scratch.split_refused();
    let untagged = scratch.untagged_refused();
    let Some(h) = set.match_parsed(&parsed, ctx, scratch) else {
        s.transport_cut += u64::from(scratch.cut_refused() > refused);
        s.split += u64::from(scratch.split_refused() > split);
        s.untagged += u64::from(scratch.untagged_refused() > untagged);
        if !(may_repeat(&parsed) && s.repeat(&parsed, at)) {
            if parsed.program.is_none() {
                not_recognised(set, s, line, at);
            }
            s.missed(line, at);
        }
        return;
    };
    if set.filters()[h.filter].rules()[h.rule].kind == portcullis_core::filter::Kind::Connect {
        // a connection's start: bookkeeping for the tracker, not a matched line
        (s.last_next, s.last_rule) = (0, 0);
        return;
    }
    {
        s.matched += 1;
        if s.per_rule.len() <= h.rule {
            s.per_rule.resize(h.rule + 1, 0);
        }
        s.per_rule[h.rule] += 1;
        s.count_host(h.addr);
        if let Some(u) = h.user {
            s.count_user(u);
        }
        // (a held line counts nothing, nor does a repeat of it)
        (s.last_next, s.last_rule) = if !h.pending && h.own {
            (at + 1, (h.rule as u32) << 1 | u32::from(h.user.is_some()))
        } else {
            (0, 0)
        };
    }
}

/// Splits a regular file at line starts across the available cores; each thread reads its
/// own pieces (128 KiB at a time, so that what was read is matched while it is still in
/// the core's cache).
fn summarise_file(set: &MatchSet, path: &Path, ctx: &TimeContext, keep: usize) -> Result<Stats> {
    use anyhow::Context;
    let cannot = || format!("cannot read {}", path.display());
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let meta = file.metadata().with_context(cannot)?;
    if !meta.is_file() || input::is_gzip(path)? {
        // a pipe, a device or a compressed log: one reader, in order (through `open`,
        // which decompresses)
        let mut s = Stats::in_order(keep, true);
        let mut scratch = set.scratch();
        let r = input::open(Some(path))?;
        input::for_each_line(r, |l| {
            let at = s.lines;
            count(set, &mut scratch, &mut s, l, at, ctx)
        })
        .with_context(cannot)?;
        return Ok(s);
    }
    let len = meta.len();
    // Pieces of about 2 MiB, cut at line starts, taken in turn by the threads (so that a
    // thread that gets less CPU does less of the work); one thread for a small file.
    const PIECE: u64 = 2 << 20;
    // A container runtime's log (CRI, Docker json-file: a file of its records only, so its
    // first lines tell) is read by one thread in order: a record the runtime cut and the
    // record that ends its line may fall in two pieces.
    let container = {
        use std::os::unix::fs::FileExt;
        let mut head = vec![0u8; (len.min(64 << 10)) as usize];
        let mut got = 0;
        while got < head.len() {
            match file.read_at(&mut head[got..], got as u64) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e).with_context(cannot),
            }
        }
        head[..got]
            .split(|&b| b == b'\n')
            .take(64)
            .any(|l| portcullis_core::prefix::container_record(l).is_some())
    };
    let threads = if container {
        1
    } else {
        len.div_ceil(2 * PIECE)
            .clamp(1, super::match_threads(8) as u64) as usize
    };
    if set.correlates() && threads > 1 {
        return summarise_sharded(set, &file, threads, ctx, keep).with_context(cannot);
    }
    let mut bounds = vec![0u64];
    let mut at = PIECE;
    while at < len {
        let cut = input::next_line_start(&file, at, len).with_context(cannot)?;
        if cut >= len {
            break;
        }
        if cut > *bounds.last().unwrap() {
            bounds.push(cut);
        }
        at = cut.max(at) + PIECE;
    }
    bounds.push(len);
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results: Vec<std::io::Result<Stats>> = std::thread::scope(|sc| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let (bounds, next, file) = (&bounds, &next, &file);
                sc.spawn(move || {
                    // (with `container`, the one thread reads every piece in order)
                    let mut s = Stats::in_order(keep, container);
                    let mut scratch = set.scratch();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        if i + 1 >= bounds.len() {
                            return Ok(s);
                        }
                        // (ordered by piece, then line: the first lines shown are the
                        // file's first)
                        let mut at = (i as u64) << 40;
                        input::for_each_line_in_range(file, bounds[i], bounds[i + 1], |l| {
                            count(set, &mut scratch, &mut s, l, at, ctx);
                            at += 1;
                        })?;
                        s.end_piece(i as u64, at);
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("worker thread"))
            .collect()
    });
    let mut total = Stats::new(keep);
    for r in results {
        total.merge(r.with_context(cannot)?);
    }
    total.join_pieces();
    Ok(total)
}

/// [`summarise_file`] for a filter that ties lines together by session: each session's
/// lines must be matched in order by one thread. Every thread takes every chunk of the file,
/// read once ([`input::SharedChunks`]), and matches the lines of its share of the sessions
/// (`session_shard`).
fn summarise_sharded(
    set: &MatchSet,
    file: &std::fs::File,
    threads: usize,
    ctx: &TimeContext,
    keep: usize,
) -> std::io::Result<Stats> {
    // small enough to be matched while it is still in the caches
    const CHUNK: usize = 128 << 10;
    let note = |l: &[u8]| input::LineNote::of(l, DEFAULT_MAX_LINE, threads, false);
    let chunks = input::SharedChunks::with_notes(file, threads, CHUNK, &note);
    std::thread::scope(|sc| {
        let workers: Vec<_> = (0..threads)
            .map(|w| {
                let chunks = &chunks;
                sc.spawn(move || -> std::io::Result<Stats> {
                    let mut s = Stats::new(keep);
                    let mut scratch = set.scratch();
                    let mut i = 0u64;
                    // (the line's number in the file: consecutive across chunks, so that
                    // a syslog daemon's repeat line finds the line before it)
                    let mut at = 0u64;
                    while let Some(chunk) = chunks.get(i)? {
                        chunk.for_each_noted(|l, n| {
                            count_noted(set, &mut scratch, &mut s, l, n, at, ctx, w as u32);
                            at += 1;
                        });
                        chunks.recycle(chunk);
                        i += 1;
                    }
                    Ok(s)
                })
            })
            .collect();
        let mut total = Stats::new(keep);
        for h in workers {
            total.merge(h.join().expect("worker thread")?);
        }
        Ok(total)
    })
}

/// Writes the object of one line. `last` is the failure the line before counted (its
/// weight and its object), which a syslog daemon's `last message repeated N times` counts
/// again: that line shows as matched with its host, user and rule, and N times its weight.
/// A jail of `f` alone that counts every line and never bans nor forgets (for
/// `test --json`'s weights).
fn counting_jail(f: Filter) -> portcullis_core::jail::Jail {
    use portcullis_core::jail::{Jail, JailSettings};
    use portcullis_core::track::TrackerConfig;
    Jail::new(
        JailSettings {
            name: "test".into(),
            tracker: TrackerConfig {
                maxretry: u32::MAX,
                findtime: portcullis_core::decision::Millis::MAX / 4,
                bantime: 1,
                max_tracked: usize::MAX,
                v4_prefix: 32,
                v6_prefix: 128,
            },
            mode: Mode::Aggressive,
            transport_cut: 0,
            user_weights: Vec::new(),
            rule_weights: Vec::new(),
            ignore: portcullis_core::ignore::IgnoreList::new(Vec::new(), Vec::new()),
            policy: Default::default(),
        },
        vec![f],
    )
}

fn saturate(n: u64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// `test --json`'s object of a line no rule matched (or not read), its keys in the order
/// of a matched line's (serde_json's, sorted).
const UNMATCHED: &[u8] =
    b"{\"adds\":0,\"host\":null,\"matched\":false,\"rule\":null,\"time\":null,\"user\":null,\"weight\":0}\n";

/// `added`: what the line added to its address's count in [`counting_jail`], when it was a
/// failure there (its `weight`).
fn write_json(
    out: &mut impl Write,
    set: &MatchSet,
    scratch: &mut portcullis_core::filter::Scratch,
    line: &[u8],
    ctx: &TimeContext,
    last: &mut Option<(u32, serde_json::Value)>,
    added: Option<u32>,
) -> Result<()> {
    let (line, _) = line::prepare(line, DEFAULT_MAX_LINE);
    match set.match_line(&line, ctx, scratch) {
        None => {
            let p = portcullis_core::prefix::parse(&line);
            let rep = p
                .program
                .is_none_or(|g| g == b"syslogd")
                .then(|| portcullis_core::prefix::syslogd_repeat(&p))
                .flatten();
            match (rep, last.as_ref()) {
                (Some(r), Some((w, v))) => {
                    let mut v = v.clone();
                    let weight = w.saturating_mul(r.n);
                    v["weight"] = weight.into();
                    v["adds"] = added.unwrap_or(weight).into();
                    v["time"] = r.stamp.map(|s| rfc3339(s.to_millis(ctx))).into();
                    serde_json::to_writer(&mut *out, &v)?;
                    out.write_all(b"\n")?;
                }
                _ => {
                    *last = None;
                    out.write_all(UNMATCHED)?
                }
            }
        }
        Some(h) => {
            let r = &set.filters()[h.filter].rules()[h.rule];
            let rule = &r.id;
            // what the line counts: 0 for a line held in its session, the held failures
            // for a line that releases them (no user weights here: no jail)
            let (weight, _) = portcullis_core::jail::hit_weight(&h, r, &[], &[]);
            let user = h.user.map(|u| String::from_utf8_lossy(u).into_owned());
            let v = serde_json::json!({
                "matched": true,
                "weight": weight,
                // (a loopback address, which a jail never counts: its weight)
                "adds": added.unwrap_or(weight),
                "host": h.addr.to_string(),
                "user": user,
                "time": h.time.map(rfc3339),
                "rule": rule,
            });
            serde_json::to_writer(&mut *out, &v)?;
            out.write_all(b"\n")?;
            *last = (weight > 0).then_some((weight, v));
        }
    }
    Ok(())
}

fn top_n<K: Clone, F: Fn(&K) -> String>(
    m: &HashMap<K, u64>,
    n: usize,
    show: F,
) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = m.iter().map(|(k, c)| (show(k), *c)).collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    v.truncate(n);
    v
}

/// A line of the log as the summary shows it, at most 200 characters: as it is in the file
/// (to be copied into a filter's samples), but for the characters that would act on the
/// terminal (it is the attacker's text): control characters and the bidirectional
/// overrides, written `\u{1b}`. (Every `"` and `\` came out escaped too, which made the
/// web logs' missed lines unlike the file's, review 40.)
fn shown(l: &[u8]) -> String {
    let chars = String::from_utf8_lossy(l);
    let acts = |c: char| {
        c.is_control()
            || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    };
    let mut t = String::new();
    for c in chars.chars().take(200) {
        if acts(c) {
            t.extend(c.escape_unicode());
        } else {
            t.push(c);
        }
    }
    if chars.chars().nth(200).is_some() {
        t.push_str(" ...");
    }
    t
}

/// `missed`: list the first lines no rule matched (`--missed`).
/// `own`: the filter is the admin's own (not built in): when it matched nothing, what a
/// search of its patterns anywhere in the lines finds is said ([`nothing_matched_hints`]).
fn print_summary(set: &MatchSet, s: &Stats, top: usize, missed: bool, own: bool) {
    let f: &Filter = &set.filters()[0];
    let mut o = String::new();
    o.push_str(&format!("filter {}: {}\n", f.name, f.description));
    o.push_str(&format!(
        "lines read: {}\nlines matched: {}\nlines not matched: {}\n",
        s.lines,
        s.matched,
        s.lines - s.matched
    ));
    if s.unrecognised > 0 {
        let programs: Vec<String> = f
            .programs
            .iter()
            .map(|p| String::from_utf8_lossy(p).into_owned())
            .collect();
        o.push_str(&format!(
            "prefix not recognised: {} lines not matched and without a prefix naming a program (the filter reads lines of {}; a line of a program's own log file, such as an access log, is read whole and is counted here when it does not match), first {}:\n",
            s.unrecognised,
            programs.join(", "),
            s.unrecognised_first.len()
        ));
        for (_, l) in &s.unrecognised_first {
            o.push_str(&format!("  {}\n", shown(l)));
        }
    }
    if s.cut > 0 {
        let head = line::head_len(DEFAULT_MAX_LINE);
        o.push_str(&format!(
            "lines longer than {DEFAULT_MAX_LINE} bytes: {} (matched on their first {head} and last {} bytes, as the daemon does)\n",
            s.cut,
            DEFAULT_MAX_LINE - head
        ));
    }
    if s.transport_cut > 0 {
        o.push_str(&format!(
            "lines a syslog transport may have cut: {} (not matched: long enough to have been cut at the transport's limit, {} bytes by default, with the address after client text; a client can pad its text so the cut falls after an address it typed. A jail's `transport_cut` sets the limit)\n",
            s.transport_cut,
            portcullis_core::filter::cut::DEFAULT_TRANSPORT_CUT
        ));
    }
    if s.split > 0 {
        o.push_str(&format!(
            "lines that may be pieces of a longer message their program split: {} (not matched: the program writes each piece as a line of its own, under its own prefix, so a piece may start with client text; the filter's `split_at` gives the length)\n",
            s.split
        ));
    }
    if s.untagged > 0 {
        o.push_str(&format!(
            "lines without a program name that a syslog-only rule matches: {} (not matched: a rule with `tagged_only` reads syslog and journal lines only, since the program's own file holds client text raw; see the filter's header)\n",
            s.untagged
        ));
    }
    if s.held_records > 0 {
        o.push_str(&format!(
            "container runtime's records not read: {} (a partial record, which the runtime cut at its limit, and the record of its stream that ends its line: the continuation starts wherever the cut fell, maybe in client text, so a jail reads neither)\n",
            s.held_records
        ));
    }
    // (review 27: scan lines were "matched" with no word that the default mode never counts
    // them)
    {
        use portcullis_core::filter::Class;
        let scans: u64 = f
            .rules()
            .iter()
            .enumerate()
            .filter(|(_, r)| r.class == Class::Scan)
            .map(|(k, _)| s.per_rule.get(k).copied().unwrap_or(0))
            .sum();
        if scans > 0 {
            o.push_str(&format!(
                "of the lines matched, scans: {scans} (class Scan: counted by a jail in mode \"ddos\" or \"aggressive\"; the default mode \"normal\" counts Auth lines only)\n"
            ));
        }
    }
    o.push_str("\nmatches per rule (weight: what a line of the rule counts on its own; a rule held in its session shows its kind: it counts only as that kind says, and `--json` gives each line's weight, 0 while held; Auth rules count in modes normal and aggressive, Scan rules in ddos and aggressive):\n");
    // a rule with several patterns is compiled to one entry per pattern: one line per rule id
    let rules = f.rules();
    for (i, r) in rules.iter().enumerate() {
        if rules[..i].iter().any(|p| p.id == r.id) {
            continue;
        }
        let n: u64 = (i..rules.len())
            .filter(|&k| rules[k].id == r.id)
            .map(|k| s.per_rule.get(k).copied().unwrap_or(0))
            .sum();
        use portcullis_core::filter::def::Kind;
        let held = match r.kind {
            Kind::Prelude => {
                ", prelude: counts only when the session ends before the attempt's own line"
            }
            Kind::Pending => ", pending: counts only when the session ends without a login",
            Kind::Followup => ", follow-up: counts only when nothing else of the session did",
            Kind::Opener => ", opener: once per session",
            _ => "",
        };
        o.push_str(&format!(
            "  {n:>10}  {} ({:?}, weight {}{held})\n",
            r.id, r.class, r.weight
        ));
    }
    o.push_str(&format!(
        "\ndistinct hosts: {}, top {top}:\n",
        s.hosts.len()
    ));
    for (h, n) in top_n(&s.hosts, top, |h| host_of(*h).to_string()) {
        o.push_str(&format!("  {n:>10}  {h}\n"));
    }
    o.push_str(&format!(
        "\ndistinct users: {}, top {top}:\n",
        s.users.len()
    ));
    for (u, n) in top_n(&s.users, top, |u| String::from_utf8_lossy(u).into_owned()) {
        o.push_str(&format!("  {n:>10}  {u}\n"));
    }
    if missed {
        o.push_str(&format!(
            "\nlines not matched: {}, the first {} (without syslog's repeat lines):\n",
            s.lines - s.matched,
            s.missed_first.len()
        ));
        for (_, l) in &s.missed_first {
            o.push_str(&format!("  {}\n", shown(l)));
        }
    }
    if own && s.matched == 0 && s.lines > 0 {
        for h in nothing_matched_hints(f, s) {
            o.push_str(&format!("\nhint: {h}\n"));
        }
    }
    print!("{o}");
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A missed line is shown as it is in the file, but for what would act on the terminal.
    #[test]
    fn a_shown_line_escapes_only_what_acts_on_the_terminal() {
        assert_eq!(
            shown(b"198.51.100.4 - - \"GET /a\\b HTTP/1.1\" 404 \x1b[31m\xe2\x80\xaeX\x7f"),
            "198.51.100.4 - - \"GET /a\\b HTTP/1.1\" 404 \\u{1b}[31m\\u{202e}X\\u{7f}"
        );
    }

    #[test]
    fn ipv4_hosts_are_counted_apart_and_flushed_under_their_key() {
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "2001:db8::1".parse().unwrap();
        assert_eq!(host_key(a), V4_MAPPED | 0xc000_0201);
        let mut s = Stats::new(0);
        for h in [a, a, b, a, b] {
            s.count_host(h);
        }
        s.flush();
        assert!(s.hosts4.is_empty());
        assert_eq!(s.hosts[&host_key(a)], 3);
        assert_eq!(s.hosts[&host_key(b)], 2);
        assert_eq!(host_of(host_key(a)), a);
    }

    #[test]
    fn a_short_name_key_gives_the_name_back_and_differs_for_each_name() {
        let text = b"abcdefghijklmnopq\0\0";
        let mut keys = std::collections::HashMap::new();
        for start in 0..3 {
            for end in start..=text.len() {
                let u = &text[start..end];
                match ShortName::of(u) {
                    Some(k) => {
                        assert_eq!(k.bytes(), u);
                        // one key per name, one name per key
                        assert_eq!(*keys.entry(k).or_insert(u), u);
                    }
                    None => assert!(u.len() > 16),
                }
            }
        }
        // (a name with trailing NULs is not the shorter name)
        assert_ne!(ShortName::of(b"ab"), ShortName::of(b"ab\0"));
        assert_ne!(ShortName::of(b"abcdefghi"), ShortName::of(b"abcdefghi\0"));
    }

    /// The built-in sshd filter as `test` reads it, and a fixed clock.
    fn sshd_set() -> (MatchSet, TimeContext) {
        let b = portcullis_core::filter::builtin::get("sshd").unwrap();
        let set = MatchSet::new(
            vec![Filter::from_toml(b.source, b.name).unwrap()],
            Mode::Aggressive,
        );
        let ctx = TimeContext {
            now: 1_795_255_201_000,
            local_offset: 0,
            zone: None,
        };
        (set, ctx)
    }

    /// A line whose prefix gave no program is counted (and the first few kept) when the
    /// filter names its programs; a line it matched, or one with a program, is not.
    #[test]
    fn lines_without_a_readable_prefix_are_reported() {
        let (set, ctx) = sshd_set();
        let mut scratch = set.scratch();
        let mut s = Stats::new(2);
        let lines: [&[u8]; 5] = [
            b"Nov 21 10:00:01 web1 sshd[1]: Failed password for root from 203.0.113.5 port 22 ssh2",
            b"Nov 21 10:00:01 web1 sshd[1]: Server listening on 0.0.0.0 port 22.",
            b"21/11 10:00 sshd: Failed password for root from 203.0.113.6 port 22 ssh2",
            b"",
            b"no prefix at all",
        ];
        for (i, l) in lines.iter().enumerate() {
            count(&set, &mut scratch, &mut s, l, i as u64, &ctx);
        }
        assert_eq!((s.lines, s.matched, s.unrecognised), (5, 1, 2));
        let shown: Vec<(u64, &[u8])> = s
            .unrecognised_first
            .iter()
            .map(|(at, l)| (*at, &l[..]))
            .collect();
        assert_eq!(shown, [(2, lines[2]), (4, lines[4])]);
        // `--missed=2`: the first two lines no rule matched, whatever their prefix
        let missed: Vec<(u64, &[u8])> =
            s.missed_first.iter().map(|(at, l)| (*at, &l[..])).collect();
        assert_eq!(missed, [(1, lines[1]), (2, lines[2])]);
    }

    /// A file shared by session between threads (each line split once, by the thread that
    /// read its chunk) gives the same counts as one reader: sessions whose lines interleave
    /// (held public keys released by the close, PAM's prelude), syslogd's repeat lines, rsyslog's
    /// repeated messages, a line cut for its length, lines without a prefix.
    #[test]
    fn sharded_counts_are_one_readers_counts() {
        let (set, ctx) = sshd_set();
        let mut text = String::new();
        for i in 0..6000u32 {
            let (pid, a) = (1000 + i % 97, format!("203.0.113.{}", i % 61));
            let t = format!("Nov 21 10:{:02}:{:02}", (i / 60) % 60, i % 60);
            let line = match i % 9 {
                0 => format!("{t} web1 sshd[{pid}]: Failed publickey for git from {a} port 22 ssh2: ED25519 SHA256:x"),
                1 => format!("{t} web1 sshd[{pid}]: Connection closed by authenticating user git {a} port 22 [preauth]"),
                2 => format!("{t} web1 sshd[{pid}]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost={a}  user=root"),
                3 => format!("{t} web1 sshd[{pid}]: Failed password for root from {a} port 22 ssh2"),
                4 => format!("{t} web1 syslogd: last message repeated 3 times"),
                5 => format!("{t} web1 sshd[{pid}]: message repeated 2 times: [ Failed password for invalid user x{i} from {a} port 22 ssh2]"),
                6 => format!("{t} web2 sshd[{pid}]: Invalid user u{i} from {a} port 22"),
                7 => "no prefix at all".to_string(),
                _ => format!("{t} web1 sshd[{pid}]: Disconnecting: Too many authentication failures [preauth]"),
            };
            text.push_str(&line);
            text.push('\n');
            if i == 3000 {
                // longer than the limit: matched cut, by whichever reader
                text.push_str(&format!("{t} web1 sshd[7]: Failed password for invalid user {} from 192.0.2.9 port 22 ssh2\n", "y".repeat(DEFAULT_MAX_LINE)));
            }
        }
        let mut f = tempfile::tempfile().unwrap();
        std::io::Write::write_all(&mut f, text.as_bytes()).unwrap();
        let mut one = Stats::new(50);
        let mut scratch = set.scratch();
        for (i, l) in text.lines().enumerate() {
            count(&set, &mut scratch, &mut one, l.as_bytes(), i as u64, &ctx);
        }
        one.join_pieces();
        let key = |s: &Stats| {
            let mut hosts: Vec<_> = s.hosts.iter().map(|(k, v)| (*k, *v)).collect();
            let mut users: Vec<_> = s.users.iter().map(|(k, v)| (k.to_vec(), *v)).collect();
            hosts.sort();
            users.sort();
            let per_rule: Vec<u64> = s.per_rule.iter().copied().filter(|&n| n > 0).collect();
            (
                s.lines,
                s.matched,
                s.cut,
                s.unrecognised,
                per_rule,
                hosts,
                users,
            )
        };
        assert!(one.matched > 4000 && one.cut == 1, "{:?}", key(&one).1);
        // the missed lines: the file's first, without the repeat lines
        assert_eq!(one.missed_first.len(), 50);
        assert!(one
            .missed_first
            .iter()
            .all(|(_, l)| !l.windows(16).any(|w| w == b"message repeated")));
        assert_eq!(one.missed_first[0].1[..], *b"no prefix at all");
        for threads in [2, 3] {
            let mut shared = summarise_sharded(&set, &f, threads, &ctx, 50).unwrap();
            shared.join_pieces();
            assert_eq!(key(&shared), key(&one), "{threads} threads");
            assert_eq!(shared.missed_first, one.missed_first, "{threads} threads");
        }
    }

    #[test]
    fn host_keys_give_back_their_address_and_never_collide() {
        let hosts = [
            "203.0.113.5",
            "0.0.0.0",
            "2001:db8::1",
            "::1",
            "::",
            "2001:db8::cb00:7105",
        ];
        let addrs: Vec<IpAddr> = hosts.iter().map(|h| h.parse().unwrap()).collect();
        let keys: std::collections::HashSet<u128> = addrs.iter().map(|&a| host_key(a)).collect();
        assert_eq!(keys.len(), addrs.len());
        for a in addrs {
            assert_eq!(host_of(host_key(a)), a);
        }
    }
}

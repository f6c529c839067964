//! Capture engines behind one [`Pattern`] type.
//!
//! A [`Pattern`] answers "does this regular expression match the whole haystack, and where
//! are its wanted groups?" with exactly the captures of the regex crate
//! (`regex::bytes::Regex::captures`, leftmost-first), in time linear in the haystack's
//! length. Three engines do the work, and the order in which they are asked is decided in
//! one place, [`Pattern::captures_with_prefix`]:
//!
//! 1. [`backtrack`]: a backtracker over coarse instructions (literals compared in one go,
//!    class runs scanned in a loop, guarded alternatives) with a work budget linear in the
//!    haystack. It answers nearly every search of the anchored patterns it is made for.
//!    A program may also come with machine code made for it ([`NativeFn`]).
//! 2. `twopass`: a reverse lazy DFA marks where the rest of the pattern can still match,
//!    and a forward walk follows the regex crate's priority order. Asked when the
//!    backtracker gave up (budget) or cannot run the pattern.
//! 3. The regex crate itself, when the DFA cache overflows or the pattern uses what the
//!    two others do not model.
//!
//! The crate knows nothing of logs, filters or addresses: it takes a pattern and the
//! names of up to [`GROUPS`] capture groups the caller wants.
#![deny(missing_docs)]

use std::sync::{Arc, OnceLock};

use regex::bytes::{CaptureLocations, Regex};
use regex_automata::nfa::thompson::{self, WhichCaptures};
use regex_syntax::hir::literal::{ExtractKind, Extractor};
use regex_syntax::hir::{Hir, HirKind};

#[doc(hidden)]
#[allow(missing_docs)]
pub mod backtrack;
pub mod bytes;
pub mod template;
mod twopass;

pub use backtrack::NativeFn;

/// Most capture groups a caller can ask for.
pub const GROUPS: usize = backtrack::SLOTS / 2;

/// Size limit of a pattern's NFA (ours and the regex crate's).
pub const NFA_SIZE_LIMIT: usize = 8 << 20;

/// Finds machine code for a backtracker program by its fingerprint (see
/// [`native_source`]).
pub type NativeLookup = fn(u64) -> Option<NativeFn>;

/// Why a pattern cannot be used, and what would work instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// `(?=…)`, `(?!…)`, `(?<=…)`, `(?<!…)`.
    #[error("look-around ((?=…), (?!…), (?<=…), (?<!…)) is not supported: patterns must run in time linear in the line's length. Rewrite it: match the text positively (e.g. `(?!root)\\S+` → a separate rule or an `ignore` pattern for the excluded case), or anchor the parts you need")]
    LookAround,
    /// `\1`, `\k<name>`.
    #[error("back-references (\\1, \\k<name>) are not supported: patterns must run in time linear in the line's length. Rewrite it without referring back to an earlier group (match both places with their own pattern)")]
    Backreference,
    /// `(?>…)`, `a*+`.
    #[error("atomic groups and possessive quantifiers are not supported (the matchers bound their work themselves); write the group plainly")]
    Atomic,
    /// Any other syntax error.
    #[error("invalid pattern: {0}")]
    Syntax(String),
    /// The compiled pattern would be larger than [`NFA_SIZE_LIMIT`].
    #[error("invalid pattern: {0}")]
    TooLarge(String),
    /// More group names than [`GROUPS`].
    #[error("at most {GROUPS} capture groups can be asked for")]
    TooManyGroups,
}

impl Error {
    /// The error of a failed parse: regex-syntax's own error kinds tell look-around and
    /// back-references from other mistakes.
    fn from_parse(pattern: &str, e: &regex_syntax::Error) -> Error {
        use regex_syntax::ast::ErrorKind as K;
        if let regex_syntax::Error::Parse(ast) = e {
            match ast.kind() {
                K::UnsupportedLookAround => return Error::LookAround,
                K::UnsupportedBackreference => return Error::Backreference,
                _ => {}
            }
        }
        // (?> and *+ are no syntax of the regex crate at all: say what they were meant as
        if pattern.contains("(?>") || pattern.contains("*+") || pattern.contains("++") {
            return Error::Atomic;
        }
        Error::Syntax(last_line(&e.to_string()))
    }
}

fn last_line(msg: &str) -> String {
    msg.lines().last().unwrap_or(msg).trim().to_string()
}

/// One compiled pattern with its engines; immutable, shared between threads. Each thread
/// searches with its own [`Cache`] per pattern.
#[derive(Debug, Clone)]
pub struct Pattern {
    source: Arc<str>,
    /// Group numbers of the wanted names, in the caller's order.
    groups: [Option<usize>; GROUPS],
    bt: Option<Arc<backtrack::Prog>>,
    /// Built when compiling (which checks its size), or on first use for a pattern with
    /// machine code (whose NFA its build already checked).
    nfa: Arc<OnceLock<Option<thompson::NFA>>>,
    two: Arc<OnceLock<Option<Arc<twopass::Prog>>>>,
    regex: Arc<OnceLock<Option<Regex>>>,
    prefixes: Option<Vec<Vec<u8>>>,
    required: Option<Vec<u8>>,
    anchored: bool,
}

/// Per-thread search state of one [`Pattern`], reused across searches.
#[derive(Debug, Default)]
pub struct Cache {
    bt: backtrack::Scratch,
    two: twopass::Cache,
    locs: Option<CaptureLocations>,
    found: [Option<(usize, usize)>; GROUPS],
}

impl Cache {
    /// Start and end of wanted group `i` (in the order the names were given) of the last
    /// successful search.
    #[inline]
    pub fn group(&self, i: usize) -> Option<(usize, usize)> {
        self.found.get(i).copied().flatten()
    }
}

/// What one engine said (see [`Pattern::run_engine`]).
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// The backtracker (machine code when the program has some).
    Backtrack,
    /// The backtracker's interpreter, even when the program has machine code.
    Interpret,
    /// The two-pass engine, with an optional prefix hint.
    TwoPass(Option<(u32, usize)>),
    /// The regex crate.
    Regex,
}

impl Pattern {
    /// Compiles `pattern` (the regex crate's syntax, matched against the whole haystack
    /// only if the pattern says so with `^…$`), with the groups called `groups` wanted.
    /// `native` finds machine code for the backtracker's program, if the build made some.
    pub fn new(
        pattern: &str,
        groups: &[&str],
        native: Option<NativeLookup>,
    ) -> Result<Pattern, Error> {
        if groups.len() > GROUPS {
            return Err(Error::TooManyGroups);
        }
        let hir = parse(pattern)?;
        let mut wanted = [None; GROUPS];
        for (w, name) in wanted.iter_mut().zip(groups) {
            *w = backtrack::group_index(&hir, name);
        }
        let bt = backtrack::Prog::build(&hir, &wanted).map(|p| {
            // (only short programs have machine code: no need to hash the others)
            let code = native
                .filter(|_| p.len() <= backtrack::NATIVE_MAX_INSTS)
                .and_then(|lookup| lookup(p.fingerprint()));
            Arc::new(p.with_native(code))
        });
        let (nfa, regex) = (OnceLock::new(), OnceLock::new());
        // A pattern with machine code was checked when the code was made: its NFA waits
        // until a search needs it. Any other is built now, so that errors show at load.
        if !bt.as_ref().is_some_and(|b| b.has_native()) {
            let built = build_nfa(&hir)?;
            // The regex crate builds more than this NFA (a reverse one too, under the same
            // limit, and several times larger for Unicode classes): a large pattern is
            // compiled now, so that an error shows at load time and never on a line.
            if built.memory_usage() > NFA_SIZE_LIMIT / 32 {
                let re = regex_builder(pattern)
                    .build()
                    .map_err(|e| Error::TooLarge(last_line(&e.to_string())))?;
                let _ = regex.set(Some(re));
            }
            let _ = nfa.set(Some(built));
        }
        Ok(Pattern {
            source: pattern.into(),
            groups: wanted,
            bt,
            nfa: Arc::new(nfa),
            two: Arc::new(OnceLock::new()),
            regex: Arc::new(regex),
            prefixes: prefix_literals(&hir),
            required: required_literal(&hir),
            anchored: is_anchored(&hir),
        })
    }

    /// The pattern as given.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Whether wanted group `i` exists in the pattern.
    pub fn has_group(&self, i: usize) -> bool {
        self.groups.get(i).is_some_and(Option::is_some)
    }

    /// Whether the whole pattern is `^(?:…)$`-anchored at both ends (a `)` that closes a
    /// group early, as in `a)|(?:b`, leaves a branch unanchored).
    pub fn is_anchored(&self) -> bool {
        self.anchored
    }

    /// A finite set of non-empty literals one of which every match starts with, if known.
    pub fn prefix_literals(&self) -> Option<&[Vec<u8>]> {
        self.prefixes.as_deref()
    }

    /// The longest literal every match contains, if there is one.
    pub fn required_literal(&self) -> Option<&[u8]> {
        self.required.as_deref()
    }

    /// The regex crate's version of the pattern (the reference semantics, and the last
    /// engine), compiled on first use: most patterns of a large set never need it.
    pub fn regex(&self) -> Option<&Regex> {
        self.regex
            .get_or_init(|| regex_builder(&self.source).build().ok())
            .as_ref()
    }

    /// Whether the pattern matches `hay`; on a match [`Cache::group`] gives the groups.
    #[inline]
    pub fn captures(&self, hay: &[u8], cache: &mut Cache) -> bool {
        self.captures_with_prefix(hay, cache, None)
    }

    /// [`Pattern::captures`] with a hint: `prefix` is `(id, len)` of the prefix literal
    /// number `id` of [`Pattern::prefix_literals`] that `hay` is known to start with.
    ///
    /// The one place that decides which engine answers: the backtracker first, the
    /// two-pass engine when it gave up, the regex crate when that one gave up too.
    #[inline]
    pub fn captures_with_prefix(
        &self,
        hay: &[u8],
        cache: &mut Cache,
        prefix: Option<(u32, usize)>,
    ) -> bool {
        if let Some(bt) = &self.bt {
            if cache.bt.stack.capacity() > 1 << 16 && hay.len() < 1 << 12 {
                // do not keep the backtracking stack of a huge line (one Cache per pattern)
                cache.bt.stack = Vec::new();
            }
            match bt.run(hay, &mut cache.bt) {
                backtrack::Outcome::NoMatch => return false,
                backtrack::Outcome::Match => {
                    for (i, f) in cache.found.iter_mut().enumerate() {
                        *f = cache.bt.group(i);
                    }
                    return true;
                }
                backtrack::Outcome::GaveUp => {}
            }
        }
        if let Some(two) = self.twopass() {
            match two.run(&mut cache.two, hay, prefix) {
                twopass::Outcome::NoMatch => return false,
                twopass::Outcome::Match => {
                    for (i, f) in cache.found.iter_mut().enumerate() {
                        *f = cache.two.group(i);
                    }
                    return true;
                }
                twopass::Outcome::GaveUp => {}
            }
        }
        self.captures_reference(hay, cache)
    }

    /// The regex crate's answer alone (the reference the other engines are tested against).
    pub fn captures_reference(&self, hay: &[u8], cache: &mut Cache) -> bool {
        let Some(re) = self.regex() else {
            // cannot happen (the pattern compiled at load); if it did, it matches nothing
            return false;
        };
        let locs = cache.locs.get_or_insert_with(|| re.capture_locations());
        if re.captures_read(locs, hay).is_none() {
            return false;
        }
        for (f, g) in cache.found.iter_mut().zip(self.groups) {
            *f = g.and_then(|g| locs.get(g));
        }
        true
    }

    /// The two-pass engine, built on first use (`None`: the regex crate does its work).
    fn twopass(&self) -> Option<&twopass::Prog> {
        self.two
            .get_or_init(|| twopass::Prog::build(self.nfa()?, &self.groups).map(Arc::new))
            .as_deref()
    }

    fn nfa(&self) -> Option<&thompson::NFA> {
        self.nfa
            .get_or_init(|| build_nfa(&parse(&self.source).ok()?).ok())
            .as_ref()
    }

    /// One engine's answer, for tests: `None` when it gave up or cannot run the pattern.
    #[doc(hidden)]
    pub fn run_engine(&self, engine: Engine, hay: &[u8], cache: &mut Cache) -> Option<bool> {
        let (bt, two) = match engine {
            Engine::Backtrack | Engine::Interpret => {
                let bt = self.bt.as_deref()?;
                let out = if engine == Engine::Interpret {
                    bt.interpret(hay, &mut cache.bt)
                } else {
                    bt.run(hay, &mut cache.bt)
                };
                (Some(out), None)
            }
            Engine::TwoPass(prefix) => {
                (None, Some(self.twopass()?.run(&mut cache.two, hay, prefix)))
            }
            Engine::Regex => return Some(self.captures_reference(hay, cache)),
        };
        let matched = match (bt, two) {
            (Some(backtrack::Outcome::GaveUp), _) | (_, Some(twopass::Outcome::GaveUp)) => {
                return None
            }
            (Some(o), _) => o == backtrack::Outcome::Match,
            (_, Some(o)) => o == twopass::Outcome::Match,
            _ => unreachable!(),
        };
        for (i, f) in cache.found.iter_mut().enumerate() {
            *f = match engine {
                Engine::TwoPass(_) => cache.two.group(i),
                _ => cache.bt.group(i),
            }
            .filter(|_| matched);
        }
        Some(matched)
    }

    /// A copy whose two-pass engine keeps at most `n` DFA states (tests: a cache that
    /// overflows all the time must stay exact).
    #[doc(hidden)]
    pub fn with_twopass_max_states(&self, n: usize) -> Option<Pattern> {
        let small = twopass::Prog::build(self.nfa()?, &self.groups)?.with_max_states(n);
        let mut p = self.clone();
        p.two = Arc::new(OnceLock::from(Some(Arc::new(small))));
        Some(p)
    }

    /// Whether the backtracker runs this pattern, and whether as machine code.
    #[doc(hidden)]
    pub fn backtracker(&self) -> Option<(usize, bool)> {
        self.bt.as_ref().map(|b| (b.len(), b.has_native()))
    }

    /// Whether the two-pass engine can run this pattern.
    #[doc(hidden)]
    pub fn has_twopass(&self) -> bool {
        self.twopass().is_some()
    }
}

/// Rust source of machine code for the backtracker programs of `patterns` (each with the
/// wanted `groups`), and a `static NATIVE: &[(u64, NativeFn)]` table of their
/// fingerprints, for a build script. Patterns that do not parse or have no short program
/// are left out (they are interpreted).
#[doc(hidden)]
pub fn native_source<'a>(patterns: impl IntoIterator<Item = &'a str>, groups: &[&str]) -> String {
    let mut progs: Vec<(u64, backtrack::Prog)> = Vec::new();
    for p in patterns {
        let Ok(hir) = parse(p) else {
            continue;
        };
        let mut wanted = [None; GROUPS];
        for (w, name) in wanted.iter_mut().zip(groups) {
            *w = backtrack::group_index(&hir, name);
        }
        let Some(prog) = backtrack::Prog::build(&hir, &wanted) else {
            continue;
        };
        if prog.len() > backtrack::NATIVE_MAX_INSTS {
            continue;
        }
        let fp = prog.fingerprint();
        if !progs.iter().any(|(f, _)| *f == fp) {
            progs.push((fp, prog));
        }
    }
    progs.sort_by_key(|(f, _)| *f);
    let mut out = String::from("// Generated by a build script: do not edit.\n\n");
    let mut table = String::from("static NATIVE: &[(u64, NativeFn)] = &[\n");
    for (i, (fp, prog)) in progs.iter().enumerate() {
        out.push_str(&prog.emit_rust(&format!("native_{i}")));
        out.push('\n');
        table.push_str(&format!("    ({fp:#018x}, native_{i}),\n"));
    }
    table.push_str("];\n");
    out.push_str(&table);
    out
}

fn parse(pattern: &str) -> Result<Hir, Error> {
    regex_syntax::ParserBuilder::new()
        .utf8(false)
        .build()
        .parse(pattern)
        .map_err(|e| Error::from_parse(pattern, &e))
}

fn build_nfa(hir: &Hir) -> Result<thompson::NFA, Error> {
    thompson::Compiler::new()
        .configure(
            thompson::Config::new()
                .which_captures(WhichCaptures::All)
                .nfa_size_limit(Some(NFA_SIZE_LIMIT)),
        )
        .build_from_hir(hir)
        .map_err(|e| Error::TooLarge(last_line(&e.to_string())))
}

fn regex_builder(full: &str) -> regex::bytes::RegexBuilder {
    let mut b = regex::bytes::RegexBuilder::new(full);
    b.size_limit(NFA_SIZE_LIMIT);
    b
}

/// True when the parsed pattern is `^…$` as a whole.
fn is_anchored(hir: &Hir) -> bool {
    use regex_syntax::hir::Look;
    match hir.kind() {
        HirKind::Concat(v) => {
            matches!(v.first().map(Hir::kind), Some(HirKind::Look(Look::Start)))
                && matches!(v.last().map(Hir::kind), Some(HirKind::Look(Look::End)))
        }
        _ => false,
    }
}

/// A finite set of non-empty literals such that every match of `hir` starts with one of them.
fn prefix_literals(hir: &Hir) -> Option<Vec<Vec<u8>>> {
    let mut ex = Extractor::new();
    ex.kind(ExtractKind::Prefix)
        .limit_class(16)
        .limit_repeat(4)
        .limit_literal_len(64)
        .limit_total(64);
    let mut seq = ex.extract(hir);
    seq.dedup();
    let lits = seq.literals()?;
    if lits.is_empty() || lits.iter().any(|l| l.as_bytes().is_empty()) {
        return None;
    }
    Some(lits.iter().map(|l| l.as_bytes().to_vec()).collect())
}

/// The longest literal that every match of `hir` must contain.
fn required_literal(hir: &Hir) -> Option<Vec<u8>> {
    match hir.kind() {
        HirKind::Literal(l) => Some(l.0.to_vec()),
        HirKind::Capture(c) => required_literal(&c.sub),
        HirKind::Repetition(r) if r.min >= 1 => required_literal(&r.sub),
        HirKind::Concat(subs) => {
            let mut best: Option<Vec<u8>> = None;
            let mut run: Vec<u8> = Vec::new();
            let consider = |cand: Vec<u8>, best: &mut Option<Vec<u8>>| {
                if best.as_ref().is_none_or(|b| cand.len() > b.len()) {
                    *best = Some(cand);
                }
            };
            for s in subs {
                if let HirKind::Literal(l) = s.kind() {
                    run.extend_from_slice(&l.0);
                    continue;
                }
                if !run.is_empty() {
                    consider(std::mem::take(&mut run), &mut best);
                }
                if let Some(inner) = required_literal(s) {
                    consider(inner, &mut best);
                }
            }
            if !run.is_empty() {
                consider(run, &mut best);
            }
            best
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn anchored(p: &str) -> String {
        format!("(?s-u)^(?:{p})$")
    }

    #[test]
    fn literal_extraction() {
        let p = Pattern::new(
            &anchored("Failed (?:password|publickey) for (.*) from (x)"),
            &[],
            None,
        )
        .unwrap();
        assert_eq!(
            p.prefix_literals().unwrap(),
            [
                b"Failed password for ".to_vec(),
                b"Failed publickey for ".to_vec()
            ]
        );
        // the longest of the literals every match contains
        assert_eq!(p.required_literal().unwrap(), b"Failed ");
        assert!(p.is_anchored());
        assert!(!Pattern::new("a$|^b", &[], None).unwrap().is_anchored());
    }

    #[test]
    fn look_around_and_back_references_are_told_by_their_error_kind() {
        assert_eq!(
            Pattern::new("(?!root)x", &[], None).unwrap_err(),
            Error::LookAround
        );
        assert_eq!(
            Pattern::new("a(?<=b)", &[], None).unwrap_err(),
            Error::LookAround
        );
        assert_eq!(
            Pattern::new(r"(a)\1", &[], None).unwrap_err(),
            Error::Backreference
        );
        // the same text where it is no syntax (escaped, in a class) is no error
        assert!(Pattern::new(r"\(\?!x\)", &[], None).is_ok());
        assert!(Pattern::new(r"[\\1]", &[], None).is_ok());
        assert_eq!(Pattern::new("(?>a)", &[], None).unwrap_err(), Error::Atomic);
        assert!(matches!(
            Pattern::new("a(", &[], None).unwrap_err(),
            Error::Syntax(_)
        ));
    }

    #[test]
    fn a_pattern_over_the_size_limit_is_refused() {
        // about 16 KB of NFA per repetition
        let e =
            Pattern::new(&anchored(r"x(?: [0-9A-Za-z:.]{1,200}){1000}"), &[], None).unwrap_err();
        assert!(matches!(e, Error::TooLarge(_)), "{e}");
    }

    #[test]
    fn every_engine_gives_the_regex_crates_captures() {
        let p = Pattern::new(
            &anchored(r"Failed password for (?P<user>.*) from (?P<host>\S+) port [0-9]+"),
            &["host", "user"],
            None,
        )
        .unwrap();
        let hay = b"Failed password for root from x from 192.0.2.1 port 22";
        let mut c = Cache::default();
        for e in [
            Engine::Backtrack,
            Engine::Interpret,
            Engine::TwoPass(None),
            Engine::Regex,
        ] {
            assert_eq!(p.run_engine(e, hay, &mut c), Some(true), "{e:?}");
            assert_eq!(c.group(0), Some((37, 46)), "{e:?}");
            assert_eq!(c.group(1), Some((20, 31)), "{e:?}");
            assert_eq!(
                p.run_engine(e, b"Failed password", &mut c),
                Some(false),
                "{e:?}"
            );
        }
        assert!(p.captures(hay, &mut c));
        assert_eq!(
            (c.group(0), c.group(1), c.group(2)),
            (Some((37, 46)), Some((20, 31)), None)
        );
        assert!(!p.captures(b"nothing", &mut c));
    }

    #[test]
    fn a_long_search_gives_up_to_the_next_engine_and_stays_exact() {
        // `.* .*` over many spaces exhausts the backtracker's budget
        let p = Pattern::new(&anchored(r"(?P<a>.*) (?P<b>.*) x"), &["a", "b"], None).unwrap();
        let hay = [b' '; 4000];
        let mut c = Cache::default();
        assert_eq!(
            p.run_engine(Engine::Backtrack, &hay, &mut c),
            None,
            "gave up"
        );
        assert!(!p.captures(&hay, &mut c));
        let mut hay = hay.to_vec();
        hay.extend_from_slice(b" x");
        assert!(p.captures(&hay, &mut c));
        // a greedy `a` leaves the space before `b` (empty) and " x"
        assert_eq!(
            (c.group(0), c.group(1)),
            (Some((0, 3999)), Some((4000, 4000)))
        );
    }
}

//! Compiling a [`FilterDef`] into a [`Filter`]: macros, anchoring, the checks a filter's
//! patterns must pass, and their [`Pattern`]s (the capture engines live in the
//! `portcullis-pattern` crate).

use std::fmt;

use portcullis_pattern::Pattern;
use regex::bytes::Regex;

use super::def::{Class, FilterDef};
use super::macros;

/// The groups a rule's [`Pattern`] is asked for, in this order: index 0 is the address.
pub(crate) const GROUPS: [&str; 4] = ["host", "user", "time", "key"];
pub(crate) const HOST: usize = 0;
pub(crate) const USER: usize = 1;
pub(crate) const TIME: usize = 2;
pub(crate) const KEY: usize = 3;

/// Why a filter could not be compiled: which pattern, and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompileError {
    /// Filter name.
    pub filter: String,
    /// Rule id (or `ignore[N]`).
    pub rule: String,
    /// The pattern as written.
    pub pattern: String,
    /// What is wrong and what would work.
    pub message: String,
}

impl fmt::Display for CompileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "filter {:?}, rule {:?}: {}\n  pattern: {}",
            self.filter, self.rule, self.message, self.pattern
        )
    }
}

impl std::error::Error for CompileError {}

/// Why a filter file cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FilterFileError {
    /// Not a filter file: TOML syntax, unknown or missing keys.
    #[error("{origin}: {message}")]
    Toml {
        /// The file (or a description of where the text came from).
        origin: String,
        /// What the TOML reader said.
        message: String,
    },
    /// A pattern or setting of the filter cannot be compiled.
    #[error("{origin}: {error}")]
    Compile {
        /// The file.
        origin: String,
        /// What is wrong.
        error: CompileError,
    },
}

/// One compiled pattern of a rule.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Rule id from the filter file.
    pub id: String,
    /// Auth failure or scan.
    pub class: Class,
    /// Weight of one match.
    pub weight: u32,
    /// How the line relates to the rest of its session.
    pub kind: super::def::Kind,
    /// Only lines whose prefix names a program (see [`super::def::RuleDef::tagged_only`]).
    pub(crate) tagged_only: bool,
    /// The anchored pattern, asked for the groups of [`GROUPS`].
    pub(crate) pattern: Pattern,
    /// A literal every match contains (for the prefilter), if one of 3+ bytes exists.
    pub(crate) literal: Option<memchr::memmem::Finder<'static>>,
    /// How far into the message the address capture can end ([`super::cut::host_end_max`]):
    /// a line a transport may have cut is refused when this reaches the cut. Worked out when
    /// a line long enough first matches (start-up compiles every rule; few see such lines).
    pub(crate) host_end: std::sync::OnceLock<usize>,
}

impl Rule {
    /// The regex crate's version of the pattern (the reference semantics).
    #[cfg(test)]
    pub(crate) fn regex(&self) -> Option<&Regex> {
        self.pattern.regex()
    }

    /// The rule's pattern.
    pub fn pattern(&self) -> &Pattern {
        &self.pattern
    }

    /// How far into the message the address capture can end at most (see
    /// [`super::cut::host_end_max`]).
    pub fn host_end_max(&self) -> usize {
        *self
            .host_end
            .get_or_init(|| super::cut::host_end_max(self.pattern.as_str()))
    }

    /// Whether the pattern captures the address itself (else a correlate line gives it).
    #[cfg(test)]
    pub(crate) fn has_host(&self) -> bool {
        self.pattern.has_group(HOST)
    }
}

/// A compiled filter.
#[derive(Debug, Clone)]
pub struct Filter {
    /// Name, e.g. `sshd`.
    pub name: String,
    /// One-line description.
    pub description: String,
    /// Program names whose lines are read (empty = any, unless `untagged`).
    pub programs: Vec<Vec<u8>>,
    /// `programs = [""]`: only lines without a program name are read (a program writing
    /// its own log file); lines of named programs never reach the filter.
    pub untagged: bool,
    /// `untagged_syslog`: its untagged lines came through syslog, and may have been cut.
    pub(crate) untagged_syslog: bool,
    /// `split_at`: a message at least this long may be a piece of a longer one the program
    /// split; `usize::MAX` when it splits none.
    pub(crate) split_at: usize,
    /// `ports`: the service's default ports as inclusive ranges; `None`: all ports.
    pub(crate) ports: Option<Vec<(u16, u16)>>,
    pub(crate) rules: Vec<Rule>,
    pub(crate) ignore: Vec<Regex>,
    pub(crate) time_format: Vec<String>,
    pub(crate) correlate: Vec<Side>,
    /// The first bytes a line that `correlate` may match starts with, as a bitmap of 256
    /// bits (every byte when a pattern has no finite set of prefixes): every line of the
    /// filter's programs is looked at, and most start with none of them.
    pub(crate) correlate_first: [u64; 4],
    pub(crate) correlate_capacity: usize,
    /// `[correlate] max_age`: a session is over for a line this long after its start.
    pub(crate) correlate_max_age: Option<crate::decision::Millis>,
    /// `[correlate] success` lines (a login that forgets held failures).
    pub(crate) success: Vec<Side>,
    /// `[correlate] end` lines (a session that ends: held failures count).
    pub(crate) end: Vec<Side>,
    /// The heads of the `end` patterns' prefixes: most lines a rule matched start none of
    /// them, and are not run through each `end` pattern.
    pub(crate) end_heads: Heads,
    /// A `success` or `end` pattern has a `key` capture (else their session is the
    /// prefix's host and pid, known before the pattern runs).
    pub(crate) end_keyed: bool,
}

/// A pattern of the `[correlate]` section: run by the regex crate (named captures), behind a
/// cheap literal test (every sshd line meets these patterns, few match).
#[derive(Debug, Clone)]
pub(crate) struct Side {
    pub(crate) re: Regex,
    /// The literals every match starts with, when finitely many.
    prefixes: Option<Vec<Vec<u8>>>,
    /// A literal every match contains (3+ bytes).
    literal: Option<memchr::memmem::Finder<'static>>,
    /// How far into the message its address capture can end ([`super::cut::host_end_max`]):
    /// an `end` line's address is refused, as a rule's is, on a line a transport may have
    /// cut there. (Worked out at compile time: correlate patterns are few.)
    pub(crate) host_end: usize,
}

/// The first (up to) eight bytes of every prefix literal of some [`Side`]s, each as a
/// little-endian word and the mask of its bytes: a line whose first bytes match none of them
/// starts no match of those sides. `None`: a side has no finite set of prefixes (any line
/// may match).
#[derive(Debug, Clone)]
pub(crate) struct Heads(Option<Vec<(u64, u64)>>);

impl Heads {
    fn of(sides: &[Side]) -> Heads {
        let mut heads = Vec::new();
        for s in sides {
            let Some(pre) = &s.prefixes else {
                return Heads(None);
            };
            for p in pre {
                let n = p.len().min(8);
                let mask = if n == 8 {
                    u64::MAX
                } else {
                    (1u64 << (8 * n)) - 1
                };
                heads.push((crate::bytes::le_tail(&p[..n]), mask));
            }
        }
        Heads(Some(heads))
    }

    /// False when `msg` cannot start a match of the sides (a line that starts with a prefix
    /// has its first bytes, and at least as many bytes as it).
    #[inline]
    pub(crate) fn may_start(&self, msg: &[u8]) -> bool {
        let Some(heads) = &self.0 else {
            return true;
        };
        let w = match msg.get(..8) {
            Some(w) => u64::from_le_bytes(w.try_into().unwrap()),
            None => crate::bytes::le_tail(msg),
        };
        heads.iter().any(|&(h, m)| (w ^ h) & m == 0)
    }
}

/// The bitmap of [`Filter::correlate_first`].
fn first_bytes(sides: &[Side]) -> [u64; 4] {
    let mut first = [0u64; 4];
    for s in sides {
        match &s.prefixes {
            // (an empty prefix passes `Side::captures` only for an empty line, which the
            // bitmap never turns away)
            Some(pre) => {
                for &b in pre.iter().filter_map(|p| p.first()) {
                    first[usize::from(b >> 6)] |= 1 << (b & 63);
                }
            }
            None => return [u64::MAX; 4],
        }
    }
    first
}

impl Side {
    /// True when `Side::captures` may match a line starting with `b`, for every side of
    /// `first` ([`first_bytes`]).
    #[inline]
    pub(crate) fn may_start(first: &[u64; 4], b: u8) -> bool {
        first[usize::from(b >> 6)] & (1 << (b & 63)) != 0
    }

    fn new(pattern: &str) -> Result<Side, String> {
        let p = rule_pattern(pattern)?;
        let re = p
            .regex()
            .cloned()
            .ok_or_else(|| "invalid pattern: the regex crate cannot compile it".to_string())?;
        Ok(Side {
            re,
            host_end: super::cut::host_end_max(p.as_str()),
            prefixes: p.prefix_literals().map(<[Vec<u8>]>::to_vec),
            literal: p
                .required_literal()
                .filter(|l| l.len() >= 3)
                .map(|l| memchr::memmem::Finder::new(l).into_owned()),
        })
    }

    /// The captures of `msg`, if it matches (the literal tests first).
    #[inline]
    pub(crate) fn captures<'m>(&self, msg: &'m [u8]) -> Option<regex::bytes::Captures<'m>> {
        if let Some(pre) = &self.prefixes {
            // (the first byte before the comparison: most lines differ there)
            if !pre
                .iter()
                .any(|p| p.first() == msg.first() && msg.starts_with(p))
            {
                return None;
            }
        } else if let Some(l) = &self.literal {
            l.find(msg)?;
        }
        self.re.captures(msg)
    }

    fn has(&self, name: &str) -> bool {
        self.re.capture_names().any(|x| x == Some(name))
    }
}

impl Filter {
    /// Compiles a filter definition; every pattern is checked.
    pub fn compile(def: &FilterDef) -> Result<Filter, CompileError> {
        let err = |rule: &str, pattern: &str, message: String| CompileError {
            filter: def.name.clone(),
            rule: rule.to_string(),
            pattern: pattern.to_string(),
            message,
        };
        if def.rules.is_empty() {
            return Err(err("-", "", "the filter has no [[rule]]".into()));
        }
        for p in &def.programs {
            let stars = p.matches('*').count();
            if stars > 1 || (stars == 1 && p.starts_with('*')) {
                return Err(err(
                    "programs",
                    p,
                    "a program pattern has one `*`, after some fixed text (e.g. \"postfix-*/smtpd\")".into(),
                ));
            }
        }
        for tf in def.time_format.iter().flat_map(|t| t.formats()) {
            crate::time::check_format(tf).map_err(|m| err("time_format", tf, m.to_string()))?;
        }
        // Correlation first: whether it gives addresses decides which rules may lack one.
        let mut correlate = Vec::new();
        let mut correlate_capacity = 0;
        let mut correlate_max_age = None;
        let mut correlate_hosts = false;
        let (mut success, mut end) = (Vec::new(), Vec::new());
        if let Some(c) = &def.correlate {
            for (i, p) in c.remember.iter().enumerate() {
                let re = Side::new(p).map_err(|m| err(&format!("correlate[{i}]"), p, m))?;
                let has = |n: &str| re.has(n);
                if !has("user") && !has("host") && !has("key") {
                    return Err(err(
                        &format!("correlate[{i}]"),
                        p,
                        "a correlate pattern needs what it remembers, a {USER} (or (?P<user>…)) or {HOST} capture, or a (?P<key>…) capture alone (a line that ends that session)".into(),
                    ));
                }
                correlate_hosts |= has("host");
                correlate.push(re);
            }
            correlate_capacity = c.capacity.clamp(1, 1 << 20);
            if let Some(a) = &c.max_age {
                let ms = crate::duration::parse(a)
                    .map_err(|e| err("correlate.max_age", a, e.to_string()))?;
                if ms <= 0 {
                    return Err(err(
                        "correlate.max_age",
                        a,
                        "max_age must be longer than 0".into(),
                    ));
                }
                correlate_max_age = Some(ms);
            }
            for (i, p) in c.success.iter().enumerate() {
                success.push(Side::new(p).map_err(|m| err(&format!("success[{i}]"), p, m))?);
            }
            for (i, p) in c.end.iter().enumerate() {
                let re = Side::new(p).map_err(|m| err(&format!("end[{i}]"), p, m))?;
                // an end line with an address gives it to the failures its session held
                // (Sendmail's transaction summary after its address-less refusals)
                correlate_hosts |= re.has("host");
                end.push(re);
            }
        }
        let mut rules = Vec::new();
        for r in &def.rules {
            let pats: Vec<&str> = r.all_patterns().collect();
            if pats.is_empty() {
                return Err(err(
                    &r.id,
                    "",
                    "the rule has neither `pattern` nor `patterns`".into(),
                ));
            }
            if matches!(
                r.kind,
                super::def::Kind::Pending | super::def::Kind::Prelude
            ) && def.correlate.is_none()
            {
                return Err(err(
                    &r.id,
                    "",
                    "a rule of kind pending or prelude is held in its session: the filter needs a [correlate] section".into(),
                ));
            }
            if r.kind == super::def::Kind::Closing && def.correlate.is_some() {
                // (held failures released by it would reach the tracker as attempts)
                return Err(err(
                    &r.id,
                    "",
                    "a rule of kind closing cannot be used in a filter with a [correlate] section"
                        .into(),
                ));
            }
            for p in pats {
                let pattern = rule_pattern(p).map_err(|m| err(&r.id, p, m))?;
                if !pattern.has_group(HOST) && !correlate_hosts {
                    return Err(err(&r.id, p, "the pattern has no address capture; use {HOST} (or (?P<host>…)) where the program writes the address (or give the address with a `correlate` pattern)".into()));
                }
                if pattern.has_group(TIME) && def.time_format.is_none() {
                    return Err(err(
                        &r.id,
                        p,
                        "a (?P<time>…) capture needs `time_format` in the filter".into(),
                    ));
                }
                rules.push(Rule {
                    id: r.id.clone(),
                    class: r.class,
                    weight: r.weight,
                    kind: r.kind,
                    tagged_only: r.tagged_only,
                    literal: pattern
                        .required_literal()
                        .filter(|l| l.len() >= 3)
                        .map(|l| memchr::memmem::Finder::new(l).into_owned()),
                    pattern,
                    host_end: std::sync::OnceLock::new(),
                });
            }
        }
        let mut ignore = Vec::new();
        for (i, p) in def.ignore.iter().enumerate() {
            let re = compile_pattern(p).map_err(|m| err(&format!("ignore[{i}]"), p, m))?;
            ignore.push(re);
        }
        // (a `FilterDef` built in code, not read from TOML, is checked here)
        if let Some(p) = &def.ports {
            if p.ranges().is_empty() || p.ranges().iter().any(|&(a, b)| a == 0 || b < a) {
                return Err(err(
                    "-",
                    "",
                    format!("bad ports {:?}: 1-65535, each range low-high", p.ranges()),
                ));
            }
        }
        if def.split_at.is_some_and(|n| n < 64) {
            return Err(err(
                "-",
                "",
                "split_at is the length from which a line may be a piece of a message the program split: at least 64 bytes (Dovecot's is 4000)".to_string(),
            ));
        }
        Ok(Filter {
            name: def.name.clone(),
            description: def.description.clone(),
            // ("" names the lines without a program, which every filter reads)
            programs: def
                .programs
                .iter()
                .filter(|p| !p.is_empty())
                .map(|p| p.as_bytes().to_vec())
                .collect(),
            untagged: !def.programs.is_empty() && def.programs.iter().all(String::is_empty),
            untagged_syslog: def.untagged_syslog,
            split_at: def.split_at.unwrap_or(usize::MAX),
            ports: def.ports.as_ref().map(|p| p.ranges().to_vec()),
            rules,
            ignore,
            time_format: def
                .time_format
                .as_ref()
                .map(|t| t.formats().to_vec())
                .unwrap_or_default(),
            correlate_first: first_bytes(&correlate),
            correlate,
            correlate_capacity,
            correlate_max_age,
            end_keyed: success.iter().chain(&end).any(|s| s.has("key")),
            success,
            end_heads: Heads::of(&end),
            end,
        })
    }

    /// Parses and compiles a filter from TOML text; `origin` names the file in errors.
    pub fn from_toml(text: &str, origin: &str) -> Result<Filter, FilterFileError> {
        let def: FilterDef = toml::from_str(text).map_err(|e| FilterFileError::Toml {
            origin: origin.to_string(),
            message: e.to_string(),
        })?;
        Filter::compile(&def).map_err(|e| FilterFileError::Compile {
            origin: origin.to_string(),
            error: e,
        })
    }

    /// The ports the filter's service listens on by default (`ports` of the filter file), as
    /// inclusive ranges; `None` when the filter does not know (all ports).
    pub fn ports(&self) -> Option<&[(u16, u16)]> {
        self.ports.as_deref()
    }

    /// The compiled rules, in order (one entry per pattern).
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// True when the filter has a `[correlate]` section: its lines are tied by session.
    pub fn has_sessions(&self) -> bool {
        self.correlate_capacity > 0
    }

    /// True when the filter reads lines of `program` (or of any program): a name of
    /// `programs` equal to it, or a pattern with one `*` (`postfix-*/smtpd`: Postfix's
    /// multi-instance names) whose text before and after the `*` frame it.
    pub fn accepts_program(&self, program: &[u8]) -> bool {
        self.reads_any_program()
            || self.programs.iter().any(|p| program_matches(p, program))
            || program_base(program)
                .is_some_and(|b| self.programs.iter().any(|p| program_matches(p, b)))
    }

    /// True when the filter reads the lines of every program (`programs` empty, not `[""]`).
    pub fn reads_any_program(&self) -> bool {
        self.programs.is_empty() && !self.untagged
    }

    /// True when one of `programs` is a pattern with a `*`.
    pub fn has_program_pattern(&self) -> bool {
        self.programs.iter().any(|p| p.contains(&b'*'))
    }
}

/// The last component of a program tag that is an absolute path (`/usr/sbin/kamailio` is
/// `kamailio`: programs that pass their argv[0] to openlog(3), started by their full path as
/// systemd units start them); `None` for any other tag (Postfix's `postfix/smtpd` is not
/// OpenSMTPD's `smtpd`) and for one ending in `/`.
pub(crate) fn program_base(program: &[u8]) -> Option<&[u8]> {
    if program.first() != Some(&b'/') {
        return None;
    }
    let slash = memchr::memrchr(b'/', program)?;
    Some(&program[slash + 1..]).filter(|b| !b.is_empty())
}

/// Whether a `programs` entry (a name, or a pattern with one `*` standing for one or more
/// bytes other than `/` and space) accepts the program name `name`.
pub fn program_matches(entry: &[u8], name: &[u8]) -> bool {
    match entry.iter().position(|&b| b == b'*') {
        None => entry == name,
        Some(i) => {
            let (pre, post) = (&entry[..i], &entry[i + 1..]);
            name.len() > pre.len() + post.len()
                && name.starts_with(pre)
                && name.ends_with(post)
                && !name[pre.len()..name.len() - post.len()]
                    .iter()
                    .any(|&b| b == b'/' || b == b' ')
        }
    }
}

/// Expands macros, anchors and compiles a rule's pattern (with machine code for a
/// built-in one); a pattern that escapes its anchors is refused.
fn rule_pattern(pattern: &str) -> Result<Pattern, String> {
    // (BlockHosts' `{LOG_PREFIX{sshd}}`: a regex error about repetition said nothing of it,
    // review 63)
    if pattern.contains("{LOG_PREFIX{") {
        return Err("BlockHosts' {LOG_PREFIX{...}} has no place here: the log prefix (time, host, program[pid]) is read before the pattern, which starts after `program[pid]: `; leave it out and name the program in the filter's `programs`".into());
    }
    let full = macros::anchored(pattern).map_err(|e| {
        // (other tools' names for the same things, review 61)
        let hint = match e.name.as_str() {
            "HOST_IP" | "IP" | "HOSTADDR" | "ADDRESS" | "CLIENT_IP" | "SRC" => {
                "; the client's address is {HOST} (IPv4 or IPv6; a host name is never read)"
            }
            "LOG_PREFIX" | "PREFIX" | "PREFIX_LINE" | "DATE" | "TIME" | "TIMESTAMP" => {
                "; the log prefix (time, host, program[pid]) is read before the pattern, which starts after `program[pid]: ` (the filter's `programs` names the programs)"
            }
            _ => "",
        };
        format!("{e}{hint}")
    })?;
    let p = Pattern::new(&full, &GROUPS, Some(super::native::lookup)).map_err(|e| e.to_string())?;
    if !p.is_anchored() {
        return Err("invalid pattern: an unbalanced `)` would end the pattern early (the rest would not be anchored to the line); escape a literal parenthesis as `\\)`".into());
    }
    Ok(p)
}

/// Expands macros, anchors and compiles with the regex crate (correlate and ignore
/// patterns, which the regex crate runs).
fn compile_pattern(pattern: &str) -> Result<Regex, String> {
    rule_pattern(pattern)?
        .regex()
        .cloned()
        .ok_or_else(|| "invalid pattern: the regex crate cannot compile it".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def(pattern: &str) -> FilterDef {
        toml::from_str(&format!(
            "name = \"t\"\n[[rule]]\nid = \"r\"\npattern = '''{pattern}'''\n"
        ))
        .unwrap()
    }

    #[test]
    fn a_line_turned_away_by_the_end_heads_matches_no_end_pattern() {
        let b = crate::filter::builtin::get("sshd").unwrap();
        let f = Filter::from_toml(b.source, b.name).unwrap();
        assert!(f.end_heads.0.is_some(), "sshd's end patterns have prefixes");
        let lines: &[&[u8]] = &[
            b"Connection closed by 192.0.2.1 port 22 [preauth]",
            b"Connection reset by authenticating user root 192.0.2.1 port 22",
            b"error: Received disconnect from 192.0.2.1 port 22:11: bye",
            b"Received disconnect from 192.0.2.1 port 22:11: bye",
            b"Disconnected from user x 192.0.2.1 port 22",
            b"fatal: Timeout before authentication for 192.0.2.1 port 22",
            b"Timeout before authentication for 192.0.2.1",
            b"fatal: Read from socket failed: Connection reset by peer",
            b"error: PAM: Authentication failure for x from 192.0.2.1",
            b"Failed password for x from 192.0.2.1 port 22 ssh2",
            b"Conn",
            b"",
            b"fatal",
        ];
        for &l in lines {
            let any = f.end.iter().any(|s| s.captures(l).is_some());
            assert!(
                f.end_heads.may_start(l) || !any,
                "{}",
                String::from_utf8_lossy(l)
            );
        }
        // (the first eight lines end a session; the heads turn the next ones away)
        for &l in &lines[..8] {
            assert!(f.end_heads.may_start(l), "{}", String::from_utf8_lossy(l));
        }
        for &l in &lines[8..] {
            assert!(!f.end_heads.may_start(l), "{}", String::from_utf8_lossy(l));
        }
    }

    #[test]
    fn literal_extraction() {
        let p = rule_pattern("Failed (?:password|none) for {USER} from {HOST} port {PORT} ssh2")
            .unwrap();
        assert_eq!(p.required_literal().unwrap(), b"Failed ");
        let p = rule_pattern("Invalid user {USER} from {HOST}").unwrap();
        assert_eq!(p.required_literal().unwrap(), b"Invalid user ");
    }

    #[test]
    fn a_pattern_over_the_size_limit_is_refused_at_load() {
        // about 16 KB of NFA per repetition
        let big = |k: usize| def(&format!("{{HOST}}(?: [0-9A-Za-z:.]{{1,200}}){{{k}}}"));
        let e = Filter::compile(&big(1000)).unwrap_err();
        assert!(e.message.contains("exceeded"), "{e}");
        // near the limit: compiles (with the regex crate's version built at load time)
        Filter::compile(&big(300)).unwrap();
        // a pattern whose reverse NFA (Unicode classes) is far larger than its forward one
        let e =
            Filter::compile(&def("x {HOST} (?u:\\p{Changes_When_Lowercased}){342}")).unwrap_err();
        assert!(e.message.contains("exceeds size limit"), "{e}");
    }

    #[test]
    fn missing_host_is_an_error() {
        let e = Filter::compile(&def("Failed for {USER}")).unwrap_err();
        assert!(e.message.contains("{HOST}"), "{e}");
    }

    #[test]
    fn a_rule_may_take_its_address_only_from_correlation_that_gives_one() {
        let with = |remember: &str| {
            let text = format!(
                "name = \"t\"\n[correlate]\nremember = ['''{remember}''']\n\
                 [[rule]]\nid = \"r\"\npattern = '''conn=(?P<key>[0-9]+) failed'''\n"
            );
            Filter::compile(&toml::from_str(&text).unwrap())
        };
        // the address from an earlier line of the same connection: accepted
        let f = with("conn=(?P<key>[0-9]+) from {HOST}").unwrap();
        assert!(!f.rules[0].has_host());
        assert!(f.rules[0].pattern.has_group(KEY));
        // correlation that remembers only a user cannot give the address
        let e = with("conn=(?P<key>[0-9]+) user {USER}").unwrap_err();
        assert!(e.message.contains("{HOST}"), "{e}");
        // a correlate pattern that remembers nothing
        let e = with("hello [0-9]+").unwrap_err();
        assert_eq!(e.rule, "correlate[0]");
        assert!(
            e.message.contains("{USER}") && e.message.contains("{HOST}"),
            "{e}"
        );
    }

    #[test]
    fn a_closing_rule_is_refused_with_correlate() {
        let with = |correlate: &str| {
            let text = format!(
                "name = \"t\"\n{correlate}[[rule]]\nid = \"r\"\nkind = \"closing\"\n\
                 pattern = '''fail (?P<key>\\w+) \\({{HOST}}\\)'''\n"
            );
            Filter::compile(&toml::from_str(&text).unwrap())
        };
        let f = with("").unwrap();
        assert_eq!(f.rules[0].kind, crate::filter::Kind::Closing);
        let e = with("[correlate]\nremember = ['''from {HOST}''']\n").unwrap_err();
        assert!(e.message.contains("closing"), "{e}");
    }

    #[test]
    fn lookaround_and_backrefs_are_explained() {
        let e = Filter::compile(&def("(?!root)x from {HOST}")).unwrap_err();
        assert!(
            e.message.contains("look-around") && e.message.contains("Rewrite"),
            "{e}"
        );
        let e = Filter::compile(&def(r"(a)\1 from {HOST}")).unwrap_err();
        assert!(e.message.contains("back-references"), "{e}");
        // the same characters as literal text are no look-around
        Filter::compile(&def(r"\(\?!x\) from {HOST}")).unwrap();
        let e = Filter::compile(&def("x from {HOST} (")).unwrap_err();
        assert!(e.message.contains("invalid pattern"), "{e}");
        assert!(e.to_string().contains("x from {HOST} ("), "{e}");
    }

    #[test]
    fn split_at_is_a_length_a_piece_can_have() {
        let mut d = def("Login failed from {HOST}");
        d.split_at = Some(0);
        let e = Filter::compile(&d)
            .expect_err("split_at 0 refused")
            .to_string();
        assert!(e.contains("split_at"), "{e}");
        d.split_at = Some(4000);
        assert!(Filter::compile(&d).is_ok());
    }

    #[test]
    fn a_pattern_cannot_escape_its_anchors() {
        // `^(?:x from {HOST})|(?:y)$` would match any line ending in "y"
        let e = Filter::compile(&def("x from {HOST})|(?:y")).unwrap_err();
        assert!(e.message.starts_with("invalid pattern"), "{e}");
    }

    #[test]
    fn unknown_macro_is_reported_with_the_rule() {
        let e = Filter::compile(&def("from {HOTS}")).unwrap_err();
        assert_eq!(e.rule, "r");
        assert!(e.message.contains("unknown macro"), "{e}");
        // (review 61: BlockHosts' and others' names say what to write)
        let e = rule_pattern("Failed for .* from {HOST_IP}").unwrap_err();
        assert!(e.contains("the client's address is {HOST}"), "{e}");
        let e = rule_pattern("{LOG_PREFIX}Failed for .* from {HOST}").unwrap_err();
        assert!(e.contains("read before the pattern"), "{e}");
        let e = rule_pattern("{LOG_PREFIX{sshd}}Failed for .* from {HOST}").unwrap_err();
        assert!(e.contains("BlockHosts' {LOG_PREFIX{...}}"), "{e}");
    }
}

/// The engines of every built-in rule, one by one, against the regex crate on the samples.
#[cfg(test)]
mod engine_tests {
    use super::*;
    use crate::filter::{builtin, sample};
    use portcullis_pattern::{Cache, Engine};

    type Groups = [Option<(usize, usize)>; 4];

    fn answer(p: &Pattern, e: Engine, hay: &[u8], c: &mut Cache) -> Option<Option<Groups>> {
        let m = p.run_engine(e, hay, c)?;
        Some(m.then(|| [0, 1, 2, 3].map(|i| c.group(i))))
    }

    fn rules() -> Vec<(&'static str, Rule, Vec<Vec<u8>>)> {
        let mut out = Vec::new();
        for b in builtin::all() {
            let f = Filter::from_toml(b.source, b.name).unwrap();
            let hays = sample::haystacks(b.sample, true);
            for r in f.rules {
                out.push((b.name, r, hays.clone()));
            }
        }
        out
    }

    /// Runs `engine`'s searches on every built-in rule's sample haystacks; at most
    /// `max_gave_up_permille` of them may give up (an engine that always gave up would pass
    /// every comparison). With `long_may_give_up`, a haystack of [`LONG`] bytes or more may
    /// give up beside those (counted apart, at most one in ten of them).
    fn check(
        engine: impl Fn(&Rule, &[u8]) -> Vec<Engine>,
        small_cache: bool,
        max_gave_up_permille: usize,
        long_may_give_up: bool,
    ) {
        let mut errors = Vec::new();
        let (mut gave_up, mut searches) = (0, 0);
        let (mut long_gave_up, mut long_searches) = (0usize, 0usize);
        for (i, (name, r, hays)) in rules().into_iter().enumerate() {
            // with a small cache every search rebuilds its DFA states: fewer rules then
            if small_cache && name != "sshd" && i % 8 != 0 {
                continue;
            }
            let p = if small_cache {
                match r.pattern.with_twopass_max_states(2) {
                    Some(p) => p,
                    None => continue,
                }
            } else {
                r.pattern.clone()
            };
            let mut c = Cache::default();
            for h in &hays {
                let want = answer(&p, Engine::Regex, h, &mut c).expect("the regex crate answers");
                for e in engine(&r, h) {
                    searches += 1;
                    let long = long_may_give_up && h.len() >= LONG;
                    long_searches += usize::from(long);
                    match answer(&p, e, h, &mut c) {
                        None if long => long_gave_up += 1,
                        None => gave_up += 1,
                        Some(got) if got == want => {}
                        Some(got) => errors.push(format!(
                            "{name} {} {e:?}: {:?}\n  regex  {want:?}\n  engine {got:?}",
                            r.id,
                            String::from_utf8_lossy(h)
                        )),
                    }
                }
            }
        }
        assert!(
            errors.is_empty(),
            "{} differences:\n{}",
            errors.len(),
            errors[..errors.len().min(10)].join("\n")
        );
        assert!(searches > 1000, "{searches}");
        assert!(
            long_gave_up * 10 <= long_searches,
            "{long_gave_up} of {long_searches} searches of long lines gave up"
        );
        // a small cache must make some searches give up (to the regex crate)
        if small_cache {
            assert!(gave_up > 0, "{gave_up} of {searches} gave up");
        } else {
            assert!(
                gave_up <= searches * max_gave_up_permille / 1000,
                "{gave_up} of {searches} gave up"
            );
        }
    }

    /// The two-pass engine without and with each prefix hint that applies.
    fn twopass_tries(r: &Rule, h: &[u8]) -> Vec<Engine> {
        let mut tries = vec![Engine::TwoPass(None)];
        for (li, l) in r
            .pattern
            .prefix_literals()
            .into_iter()
            .flatten()
            .enumerate()
        {
            if h.starts_with(l) {
                tries.push(Engine::TwoPass(Some((li as u32, l.len()))));
            }
        }
        tries
    }

    /// The length from which a line is long for [`check`]: sshd writes at most 500 bytes of
    /// a message, and sshd's samples hold lines of that length with a 400-byte user name of
    /// control bytes (each written `\ooo`), on which the two-pass engine's reverse automaton
    /// for a counted repetition (`\S{0,400}`) outgrows its cache: it gives up, and the regex
    /// crate answers (exactly). The backtracker, asked first, answers such lines itself.
    const LONG: usize = 400;

    #[test]
    fn twopass_captures_what_the_regex_crate_captures() {
        // the two-pass engine's cache never overflows on the short lines
        check(twopass_tries, false, 0, true);
    }

    #[test]
    fn a_twopass_cache_over_its_limit_is_cleared_and_stays_exact() {
        check(twopass_tries, true, 0, false);
    }

    #[test]
    fn the_backtracker_and_its_machine_code_capture_what_the_regex_crate_captures() {
        // its budget is linear in the line: a few ambiguous searches give up (to the
        // two-pass engine), about 1 in 800 of these haystacks
        check(
            |_, _| vec![Engine::Backtrack, Engine::Interpret],
            false,
            5,
            false,
        );
    }

    #[test]
    fn every_builtin_rule_runs_on_the_backtracker_and_short_ones_as_machine_code() {
        let mut without = Vec::new();
        let mut interpreted = Vec::new();
        let mut native = 0;
        let hot = super::super::native::NATIVE_FILTERS;
        for (name, r, _) in rules() {
            match r.pattern.backtracker() {
                None => without.push(format!("{name} {}", r.id)),
                Some((_, true)) => {
                    assert!(hot.contains(&name), "{name} {} has machine code", r.id);
                    native += 1
                }
                // build.rs makes code for programs of up to 400 instructions: a shorter one
                // without code means build.rs built a different program
                Some((len, false))
                    if hot.contains(&name)
                        && len <= portcullis_pattern::backtrack::NATIVE_MAX_INSTS =>
                {
                    interpreted.push(format!("{name} {}", r.id))
                }
                Some(_) => {}
            }
        }
        assert!(without.is_empty(), "{without:?}");
        if cfg!(feature = "native") {
            assert!(interpreted.is_empty(), "{interpreted:?}");
            assert!(native > 20, "{native}");
        } else {
            assert_eq!(native, 0);
        }
    }

    #[test]
    fn a_changed_pattern_is_interpreted() {
        let sshd = builtin::get("sshd").unwrap();
        let changed = sshd.source.replace("'Failed ", "'Fai1ed ");
        let f = Filter::from_toml(&changed, "sshd").unwrap();
        let native = |id: &str| -> Vec<bool> {
            f.rules()
                .iter()
                .filter(|r| r.id == id)
                .map(|r| r.pattern.backtracker().unwrap().1)
                .collect()
        };
        // every pattern of the changed rule is interpreted, the others keep their code
        assert!(
            native("failed").iter().all(|n| !n),
            "{:?}",
            native("failed")
        );
        assert!(native("invalid-user")
            .iter()
            .all(|&n| n == cfg!(feature = "native")));
    }

    #[test]
    fn empty_loops_and_other_look_around_are_left_to_the_regex_crate() {
        for p in [
            r"(?:a*)*x from {HOST}",
            r"\bx from {HOST}",
            r"(?m)x$ from {HOST}",
        ] {
            let p = rule_pattern(p).unwrap();
            assert!(!p.has_twopass() && p.backtracker().is_none(), "{p:?}");
            // the regex crate answers them
            let mut c = Cache::default();
            let matched = p.captures(b"x from 192.0.2.1", &mut c);
            assert_eq!(matched, !p.as_str().contains("(?m)"), "{p:?}");
            if matched {
                assert_eq!(c.group(HOST), Some((7, 16)));
            }
        }
        assert!(rule_pattern("x from {HOST}").unwrap().has_twopass());
    }
}

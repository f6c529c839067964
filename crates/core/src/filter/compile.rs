//! Compiling a [`FilterDef`] into a [`Filter`]: macros, anchoring, checks, literals.

use std::fmt;

use regex::bytes::Regex;
use regex_syntax::hir::{Hir, HirKind};

use super::def::{Class, FilterDef};
use super::macros;

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
    pub(crate) regex: Regex,
    pub(crate) host: usize,
    pub(crate) user: Option<usize>,
    pub(crate) time: Option<usize>,
    /// A literal every match contains (for the prefilter), if one of 3+ bytes exists.
    pub(crate) literal: Option<Vec<u8>>,
}

/// A compiled filter.
#[derive(Debug, Clone)]
pub struct Filter {
    /// Name, e.g. `sshd`.
    pub name: String,
    /// One-line description.
    pub description: String,
    /// Program names whose lines are read (empty = any).
    pub programs: Vec<Vec<u8>>,
    pub(crate) rules: Vec<Rule>,
    pub(crate) ignore: Vec<Regex>,
    pub(crate) time_format: Option<String>,
    pub(crate) correlate: Vec<Regex>,
    pub(crate) correlate_capacity: usize,
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
        if let Some(tf) = &def.time_format {
            crate::time::check_format(tf).map_err(|m| err("time_format", tf, m))?;
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
            for p in pats {
                let (regex, hir) = compile_pattern(p).map_err(|m| err(&r.id, p, m))?;
                let host = index_of(&regex, "host").ok_or_else(|| {
                    err(&r.id, p, "the pattern has no address capture; use {HOST} (or (?P<host>…)) where the program writes the address".into())
                })?;
                let time = index_of(&regex, "time");
                if time.is_some() && def.time_format.is_none() {
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
                    host,
                    user: index_of(&regex, "user"),
                    time,
                    literal: required_literal(&hir).filter(|l| l.len() >= 3),
                    regex,
                });
            }
        }
        let mut ignore = Vec::new();
        for (i, p) in def.ignore.iter().enumerate() {
            let (re, _) = compile_pattern(p).map_err(|m| err(&format!("ignore[{i}]"), p, m))?;
            ignore.push(re);
        }
        let mut correlate = Vec::new();
        let mut correlate_capacity = 0;
        if let Some(c) = &def.correlate {
            for (i, p) in c.remember.iter().enumerate() {
                let (re, _) =
                    compile_pattern(p).map_err(|m| err(&format!("correlate[{i}]"), p, m))?;
                if index_of(&re, "user").is_none() {
                    return Err(err(
                        &format!("correlate[{i}]"),
                        p,
                        "a correlate pattern needs a (?P<user>…) or {USER} capture".into(),
                    ));
                }
                correlate.push(re);
            }
            correlate_capacity = c.capacity.clamp(1, 1 << 20);
        }
        Ok(Filter {
            name: def.name.clone(),
            description: def.description.clone(),
            programs: def.programs.iter().map(|p| p.as_bytes().to_vec()).collect(),
            rules,
            ignore,
            time_format: def.time_format.clone(),
            correlate,
            correlate_capacity,
        })
    }

    /// Parses and compiles a filter from TOML text; `origin` names the file in errors.
    pub fn from_toml(text: &str, origin: &str) -> Result<Filter, String> {
        let def: FilterDef = toml::from_str(text).map_err(|e| format!("{origin}: {e}"))?;
        Filter::compile(&def).map_err(|e| format!("{origin}: {e}"))
    }

    /// The compiled rules, in order (one entry per pattern).
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// True when the filter reads lines of `program` (or of any program).
    pub fn accepts_program(&self, program: &[u8]) -> bool {
        self.programs.is_empty() || self.programs.iter().any(|p| p == program)
    }
}

fn index_of(re: &Regex, name: &str) -> Option<usize> {
    re.capture_names().position(|n| n == Some(name))
}

/// Expands macros, anchors, compiles; explains unsupported syntax.
fn compile_pattern(pattern: &str) -> Result<(Regex, Hir), String> {
    let expanded = macros::expand(pattern)?;
    let body = expanded.strip_prefix('^').unwrap_or(&expanded);
    let body = if body.ends_with('$') && !body.ends_with("\\$") {
        &body[..body.len() - 1]
    } else {
        body
    };
    let full = format!("(?s-u)^(?:{body})$");
    let hir = regex_syntax::ParserBuilder::new()
        .utf8(false)
        .build()
        .parse(&full)
        .map_err(|e| explain(pattern, &e.to_string()))?;
    let re = regex::bytes::RegexBuilder::new(&full)
        .size_limit(8 << 20)
        .build()
        .map_err(|e| explain(pattern, &e.to_string()))?;
    Ok((re, hir))
}

fn explain(pattern: &str, err: &str) -> String {
    if pattern.contains("(?=")
        || pattern.contains("(?!")
        || pattern.contains("(?<=")
        || pattern.contains("(?<!")
    {
        return "look-around ((?=…), (?!…), (?<=…), (?<!…)) is not supported: patterns run on a linear-time engine without backtracking. Rewrite it: match the text positively (e.g. `(?!root)\\S+` → a separate rule or an `ignore` pattern for the excluded case), or anchor the parts you need".into();
    }
    if regex_backref(pattern) {
        return "back-references (\\1, \\k<name>) are not supported: patterns run on a linear-time engine without backtracking. Rewrite it without referring back to an earlier group (match both places with their own pattern)".into();
    }
    if pattern.contains("(?>") || pattern.contains("*+") || pattern.contains("++") {
        return "atomic groups and possessive quantifiers are not supported (there is no backtracking to limit); write the group plainly".into();
    }
    format!(
        "invalid pattern: {}",
        err.lines().last().unwrap_or(err).trim()
    )
}

fn regex_backref(p: &str) -> bool {
    let b = p.as_bytes();
    b.windows(2).enumerate().any(|(i, w)| {
        w[0] == b'\\'
            && (w[1].is_ascii_digit() && w[1] != b'0' || w[1] == b'k')
            && (i == 0 || b[i - 1] != b'\\')
    })
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

    fn def(pattern: &str) -> FilterDef {
        toml::from_str(&format!(
            "name = \"t\"\n[[rule]]\nid = \"r\"\npattern = '''{pattern}'''\n"
        ))
        .unwrap()
    }

    #[test]
    fn literal_extraction() {
        let (_, hir) =
            compile_pattern("Failed (?:password|none) for {USER} from {HOST} port {PORT} ssh2")
                .unwrap();
        assert_eq!(required_literal(&hir).unwrap(), b"Failed ");
        let (_, hir) = compile_pattern("Invalid user {USER} from {HOST}").unwrap();
        assert_eq!(required_literal(&hir).unwrap(), b"Invalid user ");
    }

    #[test]
    fn missing_host_is_an_error() {
        let e = Filter::compile(&def("Failed for {USER}")).unwrap_err();
        assert!(e.message.contains("{HOST}"), "{e}");
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
        let e = Filter::compile(&def("x from {HOST} (")).unwrap_err();
        assert!(e.message.contains("invalid pattern"), "{e}");
        assert!(e.to_string().contains("x from {HOST} ("), "{e}");
    }

    #[test]
    fn unknown_macro_is_reported_with_the_rule() {
        let e = Filter::compile(&def("from {HOTS}")).unwrap_err();
        assert_eq!(e.rule, "r");
        assert!(e.message.contains("unknown macro"), "{e}");
    }
}

//! Stage 3: one interpolated fail2ban pattern into Portcullis patterns.
//!
//! The steps, each in its own module:
//!
//! 1. [`assemble`]: anchors, the syslog prefix line, the prefregex around the pattern;
//! 2. [`conditional`]: conditional groups `(?(name)…|…)` rewritten as alternatives;
//!    [`addresses`]: address tags in two branches of an alternative, split apart;
//! 3. [`weight`]: `<F-NOFAIL>` branches split off as rules that do not count;
//! 4. [`syntax`]: Python syntax and fail2ban tags into Portcullis syntax ([`tempered`]
//!    writes `(?:(?!LIT).)*` without look-ahead; [`escape`] the one-to-one pieces);
//! 5. Portcullis' compiler checks the result.
//!
//! [`datepattern`] and [`programs`] translate the filter-wide settings.

mod addresses;
mod assemble;
mod conditional;
pub(crate) mod datepattern;
mod escape;
mod groups;
pub(crate) mod programs;
mod syntax;
mod tempered;
mod weight;

use std::collections::BTreeSet;

use portcullis_core::filter::{Class, Filter, FilterDef, Kind, RuleDef};

pub(crate) use assemble::{prefregex, Pref};
pub(crate) use datepattern::DateOutcome;

use crate::error::Unsupported;
use crate::ini::Ini;
use crate::resolve::Resolver;
use crate::token::Expr;
use syntax::Tr;

/// What every pattern of a filter shares.
pub(crate) struct Env {
    /// The prefregex, if it is used.
    pub(crate) pref: Option<Pref>,
    /// The translated datepattern.
    pub(crate) date: DateOutcome,
    /// `maxlines`.
    pub(crate) maxlines: usize,
}

/// What the translation of the patterns of one filter noticed, reported once.
#[derive(Debug, Default)]
pub(crate) struct Seen {
    /// Notes (approximations made).
    pub(crate) notes: BTreeSet<String>,
    /// A syslog prefix line was removed from the start of a pattern.
    pub(crate) any_prefix_stripped: bool,
    /// A syslog prefix line elsewhere was kept as a regex.
    pub(crate) prefix_kept: bool,
    /// The datepattern was not put in front of a pattern that starts with the prefix line.
    pub(crate) date_skipped_for_prefix: bool,
}

/// Translates one pattern (`fail`: a failregex, else an ignoreregex) into its alternatives,
/// in the order they are to be tried, each with its weight (0: matched but not counted).
pub(crate) fn pattern(
    py: &Expr,
    env: &Env,
    ini: &Ini,
    name: &str,
    fail: bool,
    seen: &mut Seen,
) -> Result<Vec<(String, u32)>, Unsupported> {
    let shown = py.to_string();
    if shown.contains("<SKIPLINES>") {
        return Err(Unsupported::MultiLine(
            "<SKIPLINES> (multi-line matching) is not supported".into(),
        ));
    }
    if env.maxlines > 1 && has_newline_escape(&shown) {
        return Err(Unsupported::MultiLine(format!(
            "multi-line pattern (maxlines = {}) is not translated",
            env.maxlines
        )));
    }
    let (whole, stripped) = assemble::assemble(py, env.pref.as_ref());
    // a prefix reference left anywhere: put the real regex back
    let kept = whole.has_prefix();
    let plain = Resolver::plain(ini);
    let whole = whole.render(|n| match plain.option(n) {
        Ok(v) => Ok(v.map(|e| e.to_string()).unwrap_or_default()),
        Err(source) => Err(Unsupported::PrefixLine {
            name: n.to_string(),
            source,
        }),
    })?;
    let mut out = Vec::new();
    for variant in conditional::expand(&whole)? {
        let weighted = if fail {
            let mut w = Vec::new();
            for v in addresses::split(&variant) {
                w.extend(weight::weights(&v)?);
            }
            w
        } else {
            vec![(variant, 1)]
        };
        for (v, w) in weighted {
            out.push((one(py, &v, env, name, fail, stripped, seen)?, w));
        }
    }
    seen.prefix_kept |= kept;
    seen.any_prefix_stripped |= stripped;
    Ok(out)
}

/// Translates one alternative `v` (whole-message Python syntax) of pattern `py`.
fn one(
    py: &Expr,
    v: &str,
    env: &Env,
    name: &str,
    fail: bool,
    stripped: bool,
    seen: &mut Seen,
) -> Result<String, Unsupported> {
    let mut tr = Tr::default();
    let mut out = match tr.run(v) {
        Ok(o) => o,
        Err(e) if env.pref.is_some() && alone_translates(py) => {
            return Err(Unsupported::Prefregex(Box::new(e)))
        }
        Err(e) => return Err(e),
    };
    if fail && !tr.host_done && !v.contains("(?P<host>") {
        return Err(Unsupported::NoAddress);
    }
    seen.notes.extend(tr.notes.iter().cloned());
    if tr.multiline_tags {
        seen.notes.insert(
            "multi-line session tags (<F-MLFID>, <F-MLFFORGET>, <F-MLFGAINED>) were dropped; each line is matched on its own".into(),
        );
    }
    let mut tf = None;
    if env.date == DateOutcome::Default && !stripped {
        // fail2ban first cuts the line's date out, wherever it is; here the common leading
        // forms are allowed before the pattern (the time is the time the line is read)
        out = format!("{LEADING_DATE}{out}");
    }
    if let DateOutcome::Prefix { regex, time_format } = &env.date {
        if stripped {
            seen.date_skipped_for_prefix = true;
        } else if fail {
            out = format!("{regex}{out}");
            tf = time_format.clone();
        } else {
            out = format!("{}{out}", regex.replacen("(?P<time>", "(?:", 1));
        }
    }
    // the compiler decides
    let (rules, ignore) = if fail {
        (vec![rule("check", vec![out.clone()], 1)], Vec::new())
    } else {
        (
            vec![rule("check", vec!["{HOST}".into()], 1)],
            vec![out.clone()],
        )
    };
    let check = FilterDef {
        name: name.to_string(),
        description: String::new(),
        programs: Vec::new(),
        untagged_syslog: false,
        split_at: None,
        group: None,
        logs: Vec::new(),
        ports: None,
        ignore,
        time_format: tf.map(Into::into),
        correlate: None,
        rules,
    };
    Filter::compile(&check).map_err(|e| Unsupported::Compile(e.message))?;
    Ok(out)
}

/// An optional time stamp at the start of a line, put before the patterns of a filter with
/// fail2ban's default date detection and no syslog prefix (a program's own log): ISO 8601
/// and `YYYY-MM-DD hh:mm:ss,mmm` (Python's logging), `YYYY/MM/DD hh:mm:ss` (nginx),
/// `Day Mon DD hh:mm:ss[.us] YYYY` (Apache, ctime), `Mon DD hh:mm:ss` (syslog without a
/// host) and `DD/Mon/YYYY:hh:mm:ss ±zzzz` (the common log format's), each perhaps in
/// brackets, and one space after it.
pub const LEADING_DATE: &str = concat!(
    r"(?:\[?(?:",
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}:[0-9]{2}(?:[.,][0-9]{1,9})?(?: ?(?:Z|[+-][0-9]{2}:?[0-9]{2}))?",
    r"|[0-9]{4}/[0-9]{2}/[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}",
    r"|[A-Z][a-z]{2} [A-Z][a-z]{2} [ 0-9][0-9] [0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,9})? [0-9]{4}",
    r"|[A-Z][a-z]{2} [ 0-9]?[0-9] [0-9]{2}:[0-9]{2}:[0-9]{2}",
    r"|[0-9]{2}/[A-Z][a-z]{2}/[0-9]{4}:[0-9]{2}:[0-9]{2}:[0-9]{2}(?: [+-][0-9]{4})?",
    r")\]? ?)?"
);

/// Does the pattern translate without the prefregex? (To blame the prefregex otherwise.)
fn alone_translates(py: &Expr) -> bool {
    let (alone, _) = assemble::assemble(py, None);
    let alone = alone.to_string();
    conditional::expand(&alone).is_ok_and(|vs| vs.iter().all(|v| Tr::default().run(v).is_ok()))
}

/// A rule of class `auth` and kind `attempt`.
pub(crate) fn rule(id: &str, mut patterns: Vec<String>, weight: u32) -> RuleDef {
    let (pattern, patterns) = if patterns.len() == 1 {
        (patterns.pop(), Vec::new())
    } else {
        (None, patterns)
    };
    RuleDef {
        id: id.into(),
        pattern,
        patterns,
        class: Class::Auth,
        weight,
        kind: Kind::Attempt,
        tagged_only: false,
    }
}

/// `\n` in a Python pattern (an escaped `n` after an odd number of backslashes).
fn has_newline_escape(py: &str) -> bool {
    let b = py.as_bytes();
    (1..b.len()).any(|i| {
        b[i] == b'n' && {
            let n = b[..i].iter().rev().take_while(|&&c| c == b'\\').count();
            n % 2 == 1
        }
    })
}

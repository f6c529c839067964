//! What an import produced: the filter, where each rule comes from, and the [`Report`] of
//! what was translated and what was left out (with file, line and reason).

use std::fmt::Write as _;

use portcullis_core::filter::FilterDef;

use crate::error::Unsupported;

/// Where a pattern comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pos {
    /// File name (without directory).
    pub file: String,
    /// 1-based line number.
    pub line: usize,
}

impl std::fmt::Display for Pos {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

/// A pattern that was not translated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// `failregex` or `ignoreregex`.
    pub option: &'static str,
    /// Where the pattern is written.
    pub pos: Pos,
    /// The pattern after interpolation (the syslog prefix shown as `%(__prefix_line)s`).
    pub pattern: String,
    /// Why it was not translated.
    pub reason: Unsupported,
}

/// Counts of one option's patterns.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Patterns translated.
    pub translated: usize,
    /// Patterns found.
    pub total: usize,
}

/// What an import did and did not translate.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Filter name (file stem).
    pub name: String,
    /// `failregex` patterns.
    pub failregex: Counts,
    /// `ignoreregex` patterns.
    pub ignoreregex: Counts,
    /// Patterns not translated, with reasons.
    pub skipped: Vec<Skipped>,
    /// Everything else worth knowing (settings not translated, approximations).
    pub notes: Vec<String>,
}

impl Report {
    /// True when every pattern was translated (an incomplete import can still have written
    /// a usable filter: see [`Imported::def`]).
    pub fn complete(&self) -> bool {
        self.skipped.is_empty()
    }

    /// Human-readable report (several lines, ends with a newline).
    pub fn render(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{}: translated {} of {} failregex and {} of {} ignoreregex patterns",
            self.name,
            self.failregex.translated,
            self.failregex.total,
            self.ignoreregex.translated,
            self.ignoreregex.total
        );
        if !self.skipped.is_empty() {
            let _ = writeln!(s, "not translated:");
            for k in &self.skipped {
                let _ = writeln!(s, "  {} ({}): {}", k.pos, k.option, k.reason);
                let _ = writeln!(s, "    {}", k.pattern);
            }
        }
        if !self.notes.is_empty() {
            let _ = writeln!(s, "notes:");
            for n in &self.notes {
                let _ = writeln!(s, "  - {n}");
            }
        }
        s
    }
}

/// The result of an import.
#[derive(Debug, Clone)]
pub struct Imported {
    /// The filter; `None` when no failregex could be translated.
    pub def: Option<FilterDef>,
    /// `def` as TOML, with a header comment that lists what was not translated.
    pub toml: Option<String>,
    /// Source location of each rule of `def`, in order.
    pub origins: Vec<Pos>,
    /// What was translated and what was not.
    pub report: Report,
}

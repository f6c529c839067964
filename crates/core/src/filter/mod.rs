//! Filters: anchored patterns over the message of one program, compiled once, matched fast.
//!
//! * [`def`] is the file format, [`macros`] the `{HOST}`-style pieces.
//! * [`Filter`] is one compiled filter; [`MatchSet`] combines the filters of a jail behind one
//!   shared prefilter (a prefix tree of the literal prefixes of the rules, and an Aho-Corasick
//!   automaton over a required literal for rules without a finite prefix set), so a line is
//!   matched only against rules that can match it.
//! * Captures come from a two-pass engine in `compile` (a reverse lazy DFA marks where the
//!   rest of the pattern can still match, a forward walk follows the regex crate's priority
//!   order): the same captures as `regex::bytes::Regex::captures`, proven by property tests
//!   against it, without backtracking. Patterns it does not handle fall back to the regex crate.
//! * [`builtin`] embeds the library in `filters/`; [`sample`] checks a filter against its
//!   sample log.

mod backtrack;
pub mod builtin;
mod compile;
pub mod def;
pub mod macros;
mod native;
pub mod sample;
mod set;

pub use compile::{CompileError, Filter, Rule};
pub use def::{Class, FilterDef, Kind, RuleDef};
pub use set::{Hit, MatchSet, Mode, Scratch};

//! Filters: anchored patterns over the message of one program, compiled once, matched fast.
//!
//! * [`def`] is the file format, [`macros`] the `{HOST}`-style pieces.
//! * [`Filter`] is one compiled filter; [`MatchSet`] combines the filters of a jail behind one
//!   shared prefilter (a prefix tree of the literal prefixes of the rules, and an Aho-Corasick
//!   automaton over a required literal for rules without a finite prefix set), so a line is
//!   matched only against rules that can match it.
//! * Captures come first from `backtrack`: a backtracker over coarse instructions (literals,
//!   class runs, guarded alternatives) with a work budget linear in the line's length; the
//!   built-in filters' programs are compiled to machine code by `build.rs` (`native`). A
//!   search over budget goes to the two-pass engine in `compile` (a reverse lazy DFA marks
//!   where the rest of the pattern can still match, a forward walk follows the regex crate's
//!   priority order), and a pattern neither handles to the regex crate. All give the same
//!   captures as `regex::bytes::Regex::captures`, checked by property tests against it.
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

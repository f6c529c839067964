//! Filters: anchored patterns over the message of one program, compiled once, matched fast.
//!
//! * [`def`] is the file format, [`macros`] the `{HOST}`-style pieces.
//! * [`Filter`] is one compiled filter; [`MatchSet`] combines the filters of a jail behind one
//!   shared prefilter (a prefix tree of the literal prefixes of the rules, and an Aho-Corasick
//!   automaton over a required literal for rules without a finite prefix set), so a line is
//!   matched only against rules that can match it.
//! * Each rule's pattern is a [`portcullis_pattern::Pattern`]: its engines (a budgeted
//!   backtracker, a two-pass DFA engine, the regex crate) give the same captures as
//!   `regex::bytes::Regex::captures`, checked by property tests against it. With the
//!   `native` feature, `build.rs` compiles the built-in filters' backtracker programs to
//!   machine code (`native`).
//! * [`cut`] refuses a match a syslog transport's cut may have made up.
//! * [`lint`] warns of what a pattern written outside the project lets a client do.
//! * [`builtin`] embeds the library in `filters/`; [`sample`] checks a filter against its
//!   sample log.

pub mod builtin;
mod compile;
pub mod cut;
pub mod def;
pub mod lint;
pub mod macros;
mod native;
pub mod sample;
mod session;
mod set;

pub use compile::{CompileError, Filter, FilterFileError, Rule};
pub use def::{Class, FilterDef, Kind, Ports, RuleDef, TimeFormat};
pub use set::{session_shard, Hit, MatchSet, Mode, Scratch};

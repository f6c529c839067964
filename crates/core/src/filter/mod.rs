//! Filters: anchored patterns over the message of one program, compiled once, matched fast.
//!
//! * [`def`] is the file format, [`macros`] the `{HOST}`-style pieces.
//! * [`Filter`] is one compiled filter; [`MatchSet`] combines the filters of a jail behind one
//!   shared prefilter (an Aho-Corasick automaton over a literal every rule requires), so a
//!   line runs a regex only when it can match.
//! * [`builtin`] embeds the library in `filters/`; [`sample`] checks a filter against its
//!   sample log.

pub mod builtin;
mod compile;
pub mod def;
pub mod macros;
pub mod sample;
mod set;

pub use compile::{CompileError, Filter, Rule};
pub use def::{Class, FilterDef, Kind, RuleDef};
pub use set::{Hit, MatchSet, Mode, Scratch};

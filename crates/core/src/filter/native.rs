//! Machine code for the backtracker programs of the built-in filters' patterns (feature
//! `native`, off by default).
//!
//! `build.rs` compiles every pattern of `filters/*.toml` with the pattern crate's own
//! compiler and writes, for each distinct program, a function that does what the
//! interpreter does for that program, with the instructions' operands as constants and
//! constant jumps between them, and a table of the programs' fingerprints. At run time a
//! program uses a function only when its fingerprint is the same: a filter file that
//! differs from the built-in one (or a pattern compiled differently) is interpreted.

#![allow(
    unused_variables,
    unused_assignments,
    unused_mut,
    unused_imports,
    clippy::all
)]

use portcullis_pattern::backtrack::{Frame, Guard, NativeFn, Need, Outcome, Prog, Scratch};

include!(concat!(env!("OUT_DIR"), "/native_backtrack.rs"));

/// The function for the program with fingerprint `fp`, if the build made one.
pub(crate) fn lookup(fp: u64) -> Option<NativeFn> {
    NATIVE
        .binary_search_by_key(&fp, |e| e.0)
        .ok()
        .map(|i| NATIVE[i].1)
}

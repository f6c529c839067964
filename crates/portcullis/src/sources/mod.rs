//! Log sources: the rotation-safe file follower, wildcard paths, `journal:` sources, and what
//! a line is for every reader.

pub mod follow;
pub mod glob;
pub mod journal;
pub mod line;

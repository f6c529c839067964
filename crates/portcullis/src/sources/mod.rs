//! Log sources: the rotation-safe file follower, `journal:` sources, and what a line is for
//! every reader.

pub mod follow;
pub mod journal;
pub mod line;

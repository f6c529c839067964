//! Log sources: the rotation-safe file follower, and what a line is for every reader.

pub mod follow;
pub mod line;

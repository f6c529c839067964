//! Log sources: the rotation-safe file follower.

pub mod follow;

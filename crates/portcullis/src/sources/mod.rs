//! Log sources: the rotation-safe file follower.

//! Shared helpers for the integration tests. Use with `mod common;` in a test file.
#![allow(dead_code, unused_imports)]

pub mod netns;

pub use netns::*;

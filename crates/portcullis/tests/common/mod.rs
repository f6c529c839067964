//! Shared helpers for the integration tests. Use with `mod common;` in a test file.
#![allow(dead_code, unused_imports)]

pub mod cli;
pub mod daemon;
pub mod journald;
pub mod netns;
pub mod php_web;
pub mod real;
pub mod server;
pub mod smtp;

pub use cli::*;
pub use daemon::*;
pub use journald::*;
pub use netns::*;
pub use php_web::*;
pub use real::*;
pub use server::*;
pub use smtp::*;

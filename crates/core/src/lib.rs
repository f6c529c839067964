//! Pure logic of Portcullis: no I/O, no clock reads, no threads.
//!
//! * [`prefix`] splits a log line into its syslog-style prefix (time, host, program, pid)
//!   and the message of the program.
//! * [`filter`] turns a line into an optional [`Failure`]: which rule matched, the
//!   address, the user, the event time.
//! * [`track`] turns failures of one jail into [`Decision`]s, with `now` as an argument.
//! * [`ignore`] holds never-ban lists.
#![deny(missing_docs)]

pub mod addr;
/// Byte-string helpers (shared with the pattern engines).
pub use portcullis_pattern::bytes;
pub mod decision;
pub mod duration;
pub mod filter;
pub mod ignore;
pub mod jail;
pub mod policy;
pub mod prefix;
pub mod sketch;
pub mod time;
pub mod track;

pub use decision::{BanReason, Decision, Failure};

//! Importing fail2ban filters (`filter.d/*.conf`) into Portcullis filters.
//!
//! The translation is pure: files are read through a [`Loader`] callback, so includes
//! (`[INCLUDES] before = common.conf`) are resolved by the caller's file system (or by a
//! test's map of texts). It runs in stages, one module each:
//!
//! 1. `ini`: fail2ban's INI syntax (sections, `key = value` / `key: value`,
//!    continued values, comments, case-insensitive option names), `[INCLUDES]`
//!    `before` / `after` (each with its `.local`), `NAME.d/*.conf`, `NAME.local` and
//!    `NAME.d/*.local` after `NAME.conf`;
//! 2. `resolve`: `%(name)s` (`%%` is a `%`), `%(known/name)s`, `<name>`
//!    tags that name options, `[Init]` over `[Definition]` over `[DEFAULT]`; references to
//!    the syslog prefix line stay tokens (`token`);
//! 3. `translate`: each `failregex` / `ignoreregex` into Portcullis
//!    syntax, with `prefregex`, `datepattern`, `maxlines`, `mode` (patterns of the other
//!    modes become rules of class `scan`) and `_daemon` (programs); the syslog prefix is
//!    removed (Portcullis matches the message after it); Python syntax the linear-time engine
//!    lacks is rewritten where an exact equivalent exists (conditional groups, `(?:(?!LIT).)*`)
//!    and reported per pattern, with its file and line, where not;
//! 4. `render`: the [`FilterDef`](portcullis_core::filter::FilterDef) and
//!    its TOML, whose header lists what was left out.
//!
//! [`import`] runs them; [`Imported::report`] says what was translated.
#![deny(missing_docs)]

mod error;
mod import;
mod ini;
mod render;
mod report;
mod resolve;
mod token;
mod translate;

pub use error::{Error, ResolveError, Unsupported};
pub use import::{import, import_with};
pub use report::{Counts, Imported, Pos, Report, Skipped};
pub use translate::LEADING_DATE;

/// Reads a file by name (as given, or an include joined to its directory); `None` if absent.
pub type Loader<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The names of the files in a directory (empty if absent): for a filter's `NAME.d/`.
pub type Lister<'a> = &'a dyn Fn(&str) -> Vec<String>;

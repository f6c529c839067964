//! The errors of an import: [`Error`] ends the import, [`Unsupported`] says why one pattern
//! was left out (the import goes on and lists it), [`ResolveError`] why a value could not be
//! interpolated.

use thiserror::Error;

/// Why an import failed as a whole.
#[derive(Debug, Error)]
pub enum Error {
    /// The filter file (given by the caller) could not be read.
    #[error("cannot read {0}")]
    Read(String),
    /// `[INCLUDES]` nested deeper than the limit.
    #[error("includes nested too deeply at {0}")]
    IncludeDepth(String),
    /// The file has no `failregex`: not a fail2ban filter.
    #[error("{0}: no failregex in [Definition] (is this a fail2ban filter.d file?)")]
    NotAFilter(String),
    /// The translated filter did not compile (a bug of the importer).
    #[error("internal error: the imported filter does not compile: {0}")]
    Compile(String),
    /// The filter could not be written as TOML.
    #[error("cannot write TOML: {0}")]
    Toml(#[from] toml::ser::Error),
}

/// Why a value could not be interpolated.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ResolveError {
    /// References of references nested deeper than the limit.
    #[error("interpolation nested too deeply (a reference loop?)")]
    TooDeep,
    /// `<tag>` substitution did not end.
    #[error("tag substitution nested too deeply (a reference loop?)")]
    TagsTooDeep,
    /// The value grew beyond the limit.
    #[error("interpolated value too large (a reference loop?)")]
    TooLarge,
    /// `%(` without `)s`.
    #[error("unterminated %(…)s reference")]
    Unterminated,
    /// `%(name)s` names no option.
    #[error("unknown reference %({0})s")]
    Unknown(String),
}

/// Why a pattern was not translated.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Unsupported {
    /// The pattern could not be interpolated.
    #[error(transparent)]
    Resolve(#[from] ResolveError),
    /// The syslog prefix line, kept inside a pattern, could not be interpolated.
    #[error("syslog prefix {name}: {source}")]
    PrefixLine {
        /// The option's name.
        name: String,
        /// Why.
        source: ResolveError,
    },
    /// Malformed Python regex syntax.
    #[error("{0}")]
    Syntax(String),
    /// Look-ahead or look-behind (the construct, e.g. `look-ahead (?!…)`).
    #[error("{0} is not supported by the linear-time engine")]
    LookAround(&'static str),
    /// A back-reference (as written).
    #[error("back-reference {0} is not supported by the linear-time engine")]
    BackReference(String),
    /// A conditional group that could not be expanded into alternatives (why).
    #[error("conditional group (?(name)…|…) is not supported by the linear-time engine: {0}")]
    Conditional(String),
    /// `(?>…)`.
    #[error(
        "atomic group (?>…) is not supported (Portcullis' matchers bound their work themselves)"
    )]
    Atomic,
    /// `*+`, `++`, `?+`.
    #[error("possessive quantifier (`*+`, `++`, `?+`) is not supported (Portcullis' matchers bound their work themselves)")]
    Possessive,
    /// A tag Portcullis has no equivalent for (the tag and why).
    #[error("{tag} {why}")]
    Tag {
        /// The tag, e.g. `<F-DNS>`.
        tag: &'static str,
        /// Why it cannot be translated.
        why: &'static str,
    },
    /// `<SKIPLINES>` or `\n` with `maxlines` > 1.
    #[error("{0}: Portcullis matches one line at a time")]
    MultiLine(String),
    /// `<F-NOFAIL>` / `<F-MLFGAINED>` where it cannot be split into rules of their own.
    #[error("<F-{0}> inside a group or alternative: whether the line counts depends on the branch that matched, which Portcullis cannot express")]
    BranchWeight(&'static str),
    /// A failregex without an address.
    #[error("no address (<HOST>) in the pattern: fail2ban takes it from another line of the same session (multi-line); not translated")]
    NoAddress,
    /// The prefregex (combined with the pattern) is what fails.
    #[error("prefregex (combined with every pattern): {0}")]
    Prefregex(Box<Unsupported>),
    /// Portcullis' compiler refused the translation.
    #[error("{0}")]
    Compile(String),
}

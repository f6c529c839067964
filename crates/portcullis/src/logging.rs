//! The daemon's own messages (notes, warnings, errors) through `tracing`, written to stderr
//! as `note …`, `warning …`, `error …` (journald adds time and program; on a terminal each
//! line starts with the UTC time, see [`terminal_stamp`]), filtered by
//! `--log-level` or `log_level`. Events (bans and the like) are not filtered: see
//! [`crate::events`].

use std::fmt;
use std::time::{Duration, Instant};

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::{FormatEvent, FormatFields, Writer};
use tracing_subscriber::fmt::FmtContext;
use tracing_subscriber::registry::LookupSpan;

/// A note about something that may happen again and again (a journal entry with a null
/// MESSAGE or too long to read, a failed write of the statistics), given at most once a minute
/// with the count since the last one.
#[derive(Default)]
pub(crate) struct Throttled {
    count: u64,
    last: Option<Instant>,
}

impl Throttled {
    /// Counts one occurrence; returns the count to report, when a note is due.
    pub(crate) fn hit(&mut self) -> Option<u64> {
        self.count += 1;
        self.due()
    }

    pub(crate) fn due(&mut self) -> Option<u64> {
        if self.count == 0
            || self
                .last
                .is_some_and(|t| t.elapsed() < Duration::from_secs(60))
        {
            return None;
        }
        self.last = Some(Instant::now());
        Some(std::mem::take(&mut self.count))
    }
}

/// The levels a user can choose, least to most verbose.
pub const LEVELS: &[&str] = &["error", "warning", "note", "debug"];

/// The `tracing` level of a user's level name.
pub fn parse_level(name: &str) -> Option<Level> {
    Some(match name {
        "error" => Level::ERROR,
        "warning" | "warn" => Level::WARN,
        "note" | "info" => Level::INFO,
        "debug" => Level::DEBUG,
        _ => return None,
    })
}

/// The word a line starts with for `level`.
fn word(level: &Level) -> &'static str {
    match *level {
        Level::ERROR => "error",
        Level::WARN => "warning",
        Level::INFO => "note",
        _ => "debug",
    }
}

/// `WORD message key=value…`, no time stamp.
struct Plain;

impl<S, N> FormatEvent<S, N> for Plain
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut w: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut text = String::new();
        ctx.field_format()
            .format_fields(Writer::new(&mut text), event)?;
        writeln!(
            w,
            "{}{} {}",
            terminal_stamp(),
            word(event.metadata().level()),
            escape_controls(&text)
        )
    }
}

/// `2026-12-05T08:01:02Z ` (the clock now, UTC) when stderr is a terminal (a daemon run in
/// the foreground by hand), else nothing: journald and syslog add their own time, and the
/// text of a line in a log file is an interface (the recidive filter reads it).
pub fn terminal_stamp() -> String {
    static TERMINAL: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    if !*TERMINAL.get_or_init(|| std::io::IsTerminal::is_terminal(&std::io::stderr())) {
        return String::new();
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    format!("{} ", portcullis_core::time::rfc3339(now * 1000))
}

/// `text` with control characters (a newline above all) written as `\n`, `\x1b`...: a
/// message may quote a file name or a log line, which must never start a line of its own in
/// the daemon's log (the recidive filter reads that log).
pub fn escape_controls(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

/// Sets up the messages at `level` and above (once per process; later calls do nothing).
pub fn init(level: Level) {
    let _ = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .event_format(Plain)
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_never_starts_a_line_of_its_own() {
        let forged = "log rotated: /var/log/x\nban 198.51.100.7 jail=sshd failures=5 for=1h\ny.log";
        let e = escape_controls(forged);
        assert!(!e.contains('\n') && e.contains("x\\nban"), "{e}");
        assert_eq!(escape_controls("plain"), "plain");
        assert_eq!(escape_controls("a\u{1b}[31m"), "a\\x1b[31m");
    }

    #[test]
    fn level_names() {
        for l in LEVELS {
            assert!(parse_level(l).is_some(), "{l}");
        }
        assert_eq!(word(&parse_level("warning").unwrap()), "warning");
        assert_eq!(word(&parse_level("note").unwrap()), "note");
        assert!(parse_level("verbose").is_none());
    }

    /// Said at the first occurrence, then at most once a minute with the count since.
    #[test]
    fn a_throttled_note_is_said_once_a_minute_with_the_count() {
        let mut t = Throttled::default();
        assert_eq!(t.due(), None, "nothing happened");
        assert_eq!(t.hit(), Some(1));
        assert_eq!(t.hit(), None);
        assert_eq!(t.hit(), None);
        t.last = Instant::now().checked_sub(Duration::from_secs(61));
        assert_eq!(t.hit(), Some(3));
        assert_eq!(t.due(), None);
    }
}

//! What a pattern written outside this project (a `[[filter]]` table, a filter file, a
//! fail2ban filter brought in by `import-fail2ban`) lets a client do: checks for warnings,
//! not for refusals. The built-in filters are audited rule by rule against their programs'
//! real output (filters/*.toml headers); a filter of the admin's own is not, and a fail2ban
//! `failregex` without `^` and `$` becomes a pattern with text of any kind on both sides.
//!
//! * **The address can be the client's choice** ([`address_between_free_text`]): text of
//!   any length and kind (`.*`: see [`free`]) stands both before the `{HOST}` capture and
//!   after it.
//!   A client that writes ` from 198.51.100.5 ` (or whatever stands before the address) into
//!   a field of its own before the real address gets that address read: the text after it
//!   takes in the rest of the line. With fixed text after the address (` port \d+$`), or no
//!   such text before it, the real address is the only one that fits, wherever the client's
//!   field stands (a pattern is anchored at both ends).
//! * **An ignore pattern a client can trigger** ([`ignore_found_anywhere`]): one that starts
//!   with text of any length and kind (`.*trusted`): any line holding its text
//!   anywhere, a user name or a URL a client sent, never counts.

use regex_syntax::hir::{Class, Hir, HirKind};

/// Whether the anchored pattern `full` (in the regex crate's syntax, as
/// [`super::macros::anchored`] gives it) lets text of any length and kind stand both
/// before and after its address capture (see the module header). False when
/// it has no address capture or does not parse.
pub fn address_between_free_text(full: &str) -> bool {
    parse(full)
        .and_then(|h| around_host(&h))
        .is_some_and(|(before, after)| before && after)
}

/// Whether the anchored pattern `full` starts (after its anchors) with text of any length
/// and kind, so that it finds its text anywhere in a line (see the module
/// header).
pub fn ignore_found_anywhere(full: &str) -> bool {
    parse(full).is_some_and(|h| starts_free(&h))
}

/// The warnings for filter `f` (one written outside this project: the built-in filters give
/// none, a test checks), one sentence each: its rules and `[correlate]` patterns whose
/// address a client may choose, its ignore patterns a client may trigger.
pub fn warnings(f: &super::Filter) -> Vec<String> {
    let mut out = Vec::new();
    let mut seen: Vec<&str> = Vec::new();
    for r in f.rules() {
        if !seen.contains(&r.id.as_str()) && address_between_free_text(r.pattern().as_str()) {
            seen.push(&r.id);
            out.push(format!(
                "filter {:?}, rule {:?}: text of any kind (such as `.*`) stands both before and after the address ({{HOST}}), so a client that writes \"from 198.51.100.5\" (whatever stands before the address) into a field of its own, a user name or a URL, before the real address can get that address banned: tie the text after the address to the program's own words up to the end of its message (` port [0-9]+$`), or match each client field with `\\S+` or a class that stops at the field's delimiter",
                f.name, r.id
            ));
        }
    }
    for (i, c) in f.correlate.iter().enumerate() {
        if address_between_free_text(c.re.as_str()) {
            out.push(format!(
                "filter {:?}, [correlate] pattern {}: text of any kind (such as `.*`) stands both before and after the address ({{HOST}}), so a client can write the address a session is tied to into a field of its own: tie the text after the address to the program's own words",
                f.name,
                i + 1
            ));
        }
    }
    for (i, re) in f.ignore.iter().enumerate() {
        if ignore_found_anywhere(re.as_str()) {
            out.push(format!(
                "filter {:?}, ignore[{i}]: it starts with text of any kind (such as `.*`), so a line that holds its text anywhere never counts, and a client that writes that text into a field of its own (a user name, a URL) hides its failures: start it with the program's own words at the start of the message",
                f.name
            ));
        }
    }
    out
}

fn parse(full: &str) -> Option<Hir> {
    regex_syntax::ParserBuilder::new()
        .utf8(false)
        .build()
        .parse(full)
        .ok()
}

/// For a `h` that holds the address capture: whether text without bound that may hold a
/// space can stand before it, and after it, within `h`. None when `h` holds none.
fn around_host(h: &Hir) -> Option<(bool, bool)> {
    match h.kind() {
        HirKind::Capture(c) if c.name.as_deref() == Some("host") => Some((false, false)),
        HirKind::Capture(c) => around_host(&c.sub),
        HirKind::Concat(v) => {
            let i = v.iter().position(|x| around_host(x).is_some())?;
            let (b, a) = around_host(&v[i])?;
            Some((
                b || v[..i].iter().any(free),
                a || v[i + 1..].iter().any(free),
            ))
        }
        HirKind::Alternation(v) => {
            let all: Vec<(bool, bool)> = v.iter().filter_map(around_host).collect();
            if all.is_empty() {
                return None;
            }
            Some(
                all.iter()
                    .fold((false, false), |(b, a), (x, y)| (b || *x, a || *y)),
            )
        }
        HirKind::Repetition(r) => {
            if r.max == Some(0) {
                return None;
            }
            let (b, a) = around_host(&r.sub)?;
            // (other rounds stand before and after the round that is read)
            let other = (r.max.is_none() && any_text(&r.sub)) || (r.max != Some(1) && free(&r.sub));
            Some((b || other, a || other))
        }
        _ => None,
    }
}

/// Whether `h` holds text of any length and kind: a repetition without upper bound of
/// something that can start with any printable byte (`.*`, `.+?`, `[\s\S]*`). A
/// repetition of a class that leaves out a delimiter (`[^"]*`, `\S+`) is the author's
/// choice of a field's end, and is not this (a program that escapes the delimiter keeps a
/// client inside its field; see the built-in JSON filters).
fn free(h: &Hir) -> bool {
    match h.kind() {
        HirKind::Repetition(r) => (r.max.is_none() && any_text(&r.sub)) || free(&r.sub),
        HirKind::Capture(c) => free(&c.sub),
        HirKind::Concat(v) | HirKind::Alternation(v) => v.iter().any(free),
        _ => false,
    }
}

/// Whether `h` can start with every printable ASCII byte (space to `~`).
fn any_text(h: &Hir) -> bool {
    let mut first = [false; 128];
    first_bytes(h, &mut first);
    first[0x20..0x7f].iter().all(|b| *b)
}

/// Marks in `set` the ASCII bytes `h` can start with (an over-approximation where a
/// piece that can be empty lets the next one start).
fn first_bytes(h: &Hir, set: &mut [bool; 128]) {
    match h.kind() {
        HirKind::Literal(l) => {
            if let Some(&b) = l.0.first() {
                if b < 128 {
                    set[usize::from(b)] = true;
                }
            }
        }
        HirKind::Class(Class::Unicode(c)) => {
            for r in c.ranges() {
                for x in (r.start() as u32)..=(r.end() as u32).min(127) {
                    set[x as usize] = true;
                }
            }
        }
        HirKind::Class(Class::Bytes(c)) => {
            for r in c.ranges() {
                for x in r.start()..=r.end().min(127) {
                    set[usize::from(x)] = true;
                }
            }
        }
        HirKind::Repetition(r) if r.max != Some(0) => first_bytes(&r.sub, set),
        HirKind::Capture(c) => first_bytes(&c.sub, set),
        HirKind::Alternation(v) => v.iter().for_each(|x| first_bytes(x, set)),
        HirKind::Concat(v) => {
            for x in v {
                first_bytes(x, set);
                if x.properties().minimum_len().unwrap_or(0) > 0 {
                    break;
                }
            }
        }
        _ => {}
    }
}

/// Whether `h`'s first text (after anchors and empty pieces) is free text ([`free`]).
fn starts_free(h: &Hir) -> bool {
    match h.kind() {
        HirKind::Concat(v) => {
            // (past anchors and pieces that may be empty, such as an optional time stamp)
            for x in v {
                if starts_free(x) {
                    return true;
                }
                if x.properties().minimum_len().unwrap_or(0) > 0 {
                    return false;
                }
            }
            false
        }
        HirKind::Capture(c) => starts_free(&c.sub),
        HirKind::Alternation(v) => v.iter().any(starts_free),
        HirKind::Repetition(r) => (r.max.is_none() && any_text(&r.sub)) || starts_free(&r.sub),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filter::macros::anchored;

    fn between(p: &str) -> bool {
        address_between_free_text(&anchored(p).unwrap())
    }

    fn anywhere(p: &str) -> bool {
        ignore_found_anywhere(&anchored(p).unwrap())
    }

    #[test]
    fn free_text_on_both_sides_of_the_address_is_found() {
        // fail2ban's unanchored failregex as the importer leaves it
        assert!(between(".*?Invalid request from {HOST}.*"));
        assert!(between("Login failed for user .* from {HOST}.*"));
        assert!(between("Login failed for user {USER} from {HOST} agent=.*"));
        assert!(between(r"(?:[\s\S])+ from {HOST} ([^x]|x)+"));
        assert!(between("(?:.* )?from {HOST}(?: .*)?"));
        assert!(between("(?:a .* {HOST} b.*|c)"));
        assert!(between("(?:x .* {HOST} )+y"));
    }

    #[test]
    fn fixed_text_on_one_side_keeps_the_address_the_programs() {
        // the built-in shapes: client text before, the program's own text after, or the
        // address first
        assert!(!between(
            "Failed password for {USER} from {HOST} port {PORT} ssh2"
        ));
        assert!(!between("Login failed for user .* from {HOST}"));
        assert!(!between("{HOST} - - .*"));
        assert!(!between(r"Denied from {HOST} for user .*"));
        assert!(!between(r"user \S+ from {HOST} agent=\S+"));
        assert!(!between(r"user [a-z]{1,32} from {HOST} .*"));
        assert!(!between(r"x{0,3000} {HOST} .*"));
        // fields that end at a delimiter the program escapes (the built-in JSON filters)
        assert!(!between(
            r#"\{"user":"(?:[^"\\]|\\.)*","ip":"{HOST}","agent":"(?:[^"\\]|\\.)*"\}"#
        ));
        assert!(!between(r#"user "[^"]*" from {HOST} \((?:\w+ )*\w+\)"#));
        // no address capture
        assert!(!between("Disconnecting: .* too many .*"));
    }

    #[test]
    fn an_ignore_pattern_that_finds_its_text_anywhere_is_found() {
        assert!(anywhere(".*trusted"));
        assert!(anywhere("^.*trusted.*$"));
        assert!(anywhere("(?:.* )?ok from {HOST}"));
        assert!(anywhere("(?s).*x"));
        assert!(anywhere("(?:[0-9]{4} )?.*?trusted"));
        assert!(!anywhere("(?:[0-9]{4} )?trusted .*"));
        assert!(!anywhere("^Accepted "));
        assert!(!anywhere(r"Accepted \S+ for .* from {HOST}"));
        assert!(!anywhere(r"\S+ trusted .*"));
    }

    /// A filter of the admin's own with fail2ban's unanchored shapes: one warning for the
    /// rule (its two patterns), one for the ignore pattern.
    #[test]
    fn an_own_filter_is_warned_of_once_per_rule() {
        let f = crate::filter::Filter::from_toml(
            r#"
name = "myapp"
ignore = ['.*trusted']
[[rule]]
id = "login"
patterns = ['.*?Login failed for user .* from {HOST}.*', 'Invalid request from {HOST}.*']
[[rule]]
id = "safe"
pattern = 'Denied for user .* from {HOST} port [0-9]+'
"#,
            "myapp",
        )
        .unwrap();
        let w = warnings(&f);
        assert_eq!(w.len(), 2, "{w:#?}");
        assert!(
            w[0].starts_with("filter \"myapp\", rule \"login\": "),
            "{}",
            w[0]
        );
        assert!(
            w[1].starts_with("filter \"myapp\", ignore[0]: "),
            "{}",
            w[1]
        );
    }

    /// The built-in filters, each audited against its program's output, give no warning:
    /// their free text stands on one side of the address only, and their quoted fields end
    /// at a delimiter (a warning there would teach admins to ignore it).
    #[test]
    fn no_built_in_filter_is_warned_of() {
        for b in crate::filter::builtin::all() {
            let f = crate::filter::Filter::from_toml(b.source, b.name).unwrap();
            for i in &f.ignore {
                assert!(
                    !ignore_found_anywhere(i.as_str()),
                    "{}: {}",
                    b.name,
                    i.as_str()
                );
            }
            for r in f.rules() {
                let p = r.pattern().as_str();
                assert!(!address_between_free_text(p), "{} {}: {p}", b.name, r.id);
            }
        }
    }
}

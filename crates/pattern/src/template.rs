//! `{NAME}` templates: named pieces of pattern text expanded before compiling, and the
//! anchoring of a pattern to the whole haystack.
//!
//! Only `{NAME}` with an upper-case name (letters, digits, `_`) is a template; `{1,3}` stays
//! a regex repetition and `\{NAME}` a literal. The caller supplies the table.

/// A `{NAME}` the table does not have.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown macro {{{name}}}; known macros: {known}")]
pub struct UnknownName {
    /// The name used.
    pub name: String,
    /// The names of the table, as `{NAME}, {OTHER}, …`.
    pub known: String,
}

/// Expands the `{NAME}`s of `pattern` from `table`; an unknown name is an error that lists
/// the known ones.
pub fn expand(pattern: &str, table: &[(String, String)]) -> Result<String, UnknownName> {
    let mut out = String::with_capacity(pattern.len() * 2);
    let mut rest = pattern;
    while let Some(open) = rest.find('{') {
        // a literal "\{" (an odd run of backslashes before it) is not a template, nor the
        // braces of a Unicode class such as \p{L}
        let before = &rest[..open];
        let slashes = before.len() - before.trim_end_matches('\\').len();
        let escaped = slashes % 2 == 1 || before.ends_with("\\p") || before.ends_with("\\P");
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let name = after.find('}').map(|c| &after[..c]);
        match name {
            Some(n)
                if !escaped
                    && !n.is_empty()
                    && n.bytes()
                        .all(|b| b.is_ascii_uppercase() || b == b'_' || b.is_ascii_digit())
                    && n.as_bytes()[0].is_ascii_uppercase() =>
            {
                let Some((_, exp)) = table.iter().find(|(k, _)| k == n) else {
                    let known: Vec<String> =
                        table.iter().map(|(k, _)| format!("{{{k}}}")).collect();
                    return Err(UnknownName {
                        name: n.to_string(),
                        known: known.join(", "),
                    });
                };
                out.push_str(exp);
                rest = &after[n.len() + 1..];
            }
            _ => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// Anchors `pattern` at both ends, with Unicode off (patterns run on bytes) and `.`
/// matching any byte: `(?s-u)^(?:…)[ \t]*$`. A leading `^` and trailing `$` are dropped
/// first. Spaces and tabs may follow the pattern's end: programs that end a line with a
/// field that is often empty leave one (Linux-PAM's `rhost=%s %s%s` for an unknown user;
/// Apache 2.4's AH01631 `authorization failure for "URI": ` in fail2ban's corpus). The blanks
/// come after the pattern's end, so they cannot move where it takes the address.
/// (A pattern with an unbalanced `)`, `a)|(?:b`, closes the group early and leaves a branch
/// unanchored: check [`crate::Pattern::is_anchored`].)
pub fn anchored(pattern: &str) -> String {
    let body = pattern.strip_prefix('^').unwrap_or(pattern);
    let body = if body.ends_with('$') && !body.ends_with("\\$") {
        &body[..body.len() - 1]
    } else {
        body
    };
    format!("(?s-u)^(?:{body})[ \\t]*$")
}

/// The pattern [`anchored`] made `full` of, without its anchors (for a search anywhere in
/// a line); `None` when `full` is not of its making.
pub fn unanchored(full: &str) -> Option<&str> {
    full.strip_prefix("(?s-u)^(?:")?.strip_suffix(")[ \\t]*$")
}

/// Parses a table of `NAME = 'text'` lines (TOML with string values only).
pub fn parse_table(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (k, v) = line
            .split_once('=')
            .ok_or_else(|| format!("line {}: expected NAME = '...'", i + 1))?;
        let v = v.trim();
        let v = v
            .strip_prefix('\'')
            .and_then(|v| v.strip_suffix('\''))
            .ok_or_else(|| format!("line {}: the value must be a '...' literal string", i + 1))?;
        out.push((k.trim().to_string(), v.to_string()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unanchored_gives_back_what_anchored_wrapped() {
        for p in ["a.*b", "^x (y)$", "(?:p|q)"] {
            let full = anchored(p);
            let body = unanchored(&full).unwrap();
            assert_eq!(anchored(body), full, "{p}");
        }
        assert_eq!(unanchored("a.*b"), None);
    }

    fn table() -> Vec<(String, String)> {
        parse_table("# c\nHOST = '(?P<host>[0-9.]+)'\nPORT = '[0-9]{1,5}'\n").unwrap()
    }

    #[test]
    fn expands_known_and_keeps_repetitions_and_escapes() {
        let e = expand(r"from {HOST} port {PORT} x{1,3}", &table()).unwrap();
        assert_eq!(e, r"from (?P<host>[0-9.]+) port [0-9]{1,5} x{1,3}");
        assert!(expand(r"a\{HOST}", &table()).unwrap().contains(r"\{HOST}"));
        // a literal backslash, then the template; a Unicode class is no template
        assert!(expand(r"a\\{HOST}", &table())
            .unwrap()
            .contains("(?P<host>"));
        assert!(expand(r"a\\\{HOST}", &table())
            .unwrap()
            .ends_with(r"\{HOST}"));
        assert_eq!(
            expand(r"(?u:\p{L})+ \P{N}", &table()).unwrap(),
            r"(?u:\p{L})+ \P{N}"
        );
    }

    #[test]
    fn unknown_names_list_the_known() {
        let e = expand("from {HOTS}", &table()).unwrap_err();
        assert_eq!(e.name, "HOTS");
        let e = e.to_string();
        assert!(e.contains("{HOTS}") && e.contains("{HOST}"), "{e}");
    }

    #[test]
    fn anchors_once() {
        assert_eq!(anchored("^a|b$"), r"(?s-u)^(?:a|b)[ \t]*$");
        assert_eq!(anchored(r"a\$"), r"(?s-u)^(?:a\$)[ \t]*$");
    }

    /// Spaces and tabs may end the line after the pattern, nothing else.
    #[test]
    fn trailing_blanks_are_allowed_nothing_else() {
        let p = crate::Pattern::new(&anchored(r"from (?P<host>[0-9.]+)"), &["host"], None).unwrap();
        let mut c = crate::Cache::default();
        for l in ["from 192.0.2.1", "from 192.0.2.1 ", "from 192.0.2.1 \t "] {
            assert!(p.captures(l.as_bytes(), &mut c), "{l:?}");
            assert_eq!(c.group(0), Some((5, 14)), "{l:?}");
        }
        for l in ["from 192.0.2.1 x", "from 192.0.2.1\n", " from 192.0.2.1"] {
            assert!(!p.captures(l.as_bytes(), &mut c), "{l:?}");
        }
    }

    #[test]
    fn table_lines_must_be_literal_strings() {
        assert!(parse_table("HOST = \"x\"\n").is_err());
        assert!(parse_table("HOST\n").is_err());
    }
}

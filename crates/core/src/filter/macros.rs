//! Pattern macros: `{HOST}`, `{PORT}`, `{USER}`, … expanded before compiling.
//!
//! Only `{NAME}` with an upper-case name is a macro; `{1,3}` stays a regex repetition.

// an IPv4 address; an IPv6 address with an optional %scope (both validated after matching)
macro_rules! ipv4 {
    () => {
        r"[0-9]{1,3}(?:\.[0-9]{1,3}){3}"
    };
}
macro_rules! ipv6 {
    () => {
        r"[0-9A-Fa-f]{0,4}:[0-9A-Fa-f:.]{1,44}(?:%[0-9A-Za-z_.\-]{1,32})?"
    };
}

/// The macros and what they expand to.
pub const MACROS: &[(&str, &str)] = &[
    // an IPv4 or IPv6 address (`ADDR` is another name for it)
    ("HOST", concat!("(?P<host>", ipv4!(), "|", ipv6!(), ")")),
    ("ADDR", concat!("(?P<host>", ipv4!(), "|", ipv6!(), ")")),
    ("IPV4", concat!("(?P<host>", ipv4!(), ")")),
    ("IPV6", concat!("(?P<host>", ipv6!(), ")")),
    ("PORT", r"[0-9]{1,5}"),
    ("PID", r"[0-9]+"),
    // a user name: anything (greedy; the anchored rest of the pattern decides where it ends)
    ("USER", r"(?P<user>.*)"),
    // a user name without spaces
    ("USERWORD", r"(?P<user>\S*)"),
    // rest of the line, when a program appends free text we do not need
    ("ANY", r".*"),
];

/// Expands the macros in `pattern`. An unknown `{UPPER}` name is an error listing the known.
pub fn expand(pattern: &str) -> Result<String, String> {
    let mut out = String::with_capacity(pattern.len() * 2);
    let mut rest = pattern;
    while let Some(open) = rest.find('{') {
        // a literal "\{" is not a macro
        let escaped = rest[..open].ends_with('\\') && !rest[..open].ends_with("\\\\");
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let close = after.find('}');
        let name = close.map(|c| &after[..c]);
        match name {
            Some(n)
                if !escaped
                    && !n.is_empty()
                    && n.bytes()
                        .all(|b| b.is_ascii_uppercase() || b == b'_' || b.is_ascii_digit())
                    && n.as_bytes()[0].is_ascii_uppercase() =>
            {
                let Some((_, exp)) = MACROS.iter().find(|(k, _)| *k == n) else {
                    let known: Vec<String> =
                        MACROS.iter().map(|(k, _)| format!("{{{k}}}")).collect();
                    return Err(format!(
                        "unknown macro {{{n}}}; known macros: {}",
                        known.join(", ")
                    ));
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

/// Expands macros and anchors the pattern at both ends, in the regex crate's syntax with
/// Unicode off (patterns run on bytes) and `.` matching any byte. (A pattern with an
/// unbalanced `)`, `a)|(?:b`, would close the anchoring group early and leave a branch
/// unanchored: the compiler checks the parsed result, see `compile::is_anchored`.)
pub fn anchored(pattern: &str) -> Result<String, String> {
    let expanded = expand(pattern)?;
    let body = expanded.strip_prefix('^').unwrap_or(&expanded);
    let body = if body.ends_with('$') && !body.ends_with("\\$") {
        &body[..body.len() - 1]
    } else {
        body
    };
    Ok(format!("(?s-u)^(?:{body})$"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_known_and_keeps_repetitions() {
        let e = expand(r"from {HOST} port {PORT} x{1,3}").unwrap();
        assert!(e.contains("(?P<host>"));
        assert!(e.ends_with("x{1,3}"));
        assert!(expand(r"a\{HOST}").unwrap().contains(r"\{HOST}"));
    }

    #[test]
    fn unknown_macro_lists_known() {
        let e = expand("from {HOTS}").unwrap_err();
        assert!(e.contains("{HOTS}") && e.contains("{HOST}"), "{e}");
    }
}

//! Python regex pieces that map one to one onto Rust regex syntax: escapes, character
//! classes, counted repetitions; and the checks for constructs without a Rust equivalent.

use std::fmt::Write as _;

use crate::error::Unsupported;

/// A character of a fail2ban `<F-NAME>` tag name.
pub(crate) fn is_fname_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

/// The index of the first `want` at or after `from`.
pub(crate) fn find_char(c: &[char], from: usize, want: char) -> Option<usize> {
    (from..c.len()).find(|&k| c[k] == want)
}

/// A possessive quantifier (`*+`, `++`, `?+`, `{m,n}+`) at `c[i]`?
pub(crate) fn possessive(c: &[char], i: usize) -> Result<(), Unsupported> {
    if c.get(i) == Some(&'+') {
        return Err(Unsupported::Possessive);
    }
    Ok(())
}

/// A Python counted repetition at `c[i] == '{'`: the Rust form and the next index.
pub(crate) fn quantifier(c: &[char], i: usize) -> Option<(String, usize)> {
    let mut j = i + 1;
    let lo_start = j;
    while j < c.len() && c[j].is_ascii_digit() {
        j += 1;
    }
    let lo: String = c[lo_start..j].iter().collect();
    let mut hi: Option<String> = None;
    if c.get(j) == Some(&',') {
        j += 1;
        let hs = j;
        while j < c.len() && c[j].is_ascii_digit() {
            j += 1;
        }
        hi = Some(c[hs..j].iter().collect());
    }
    if c.get(j) != Some(&'}') || (lo.is_empty() && hi.is_none()) {
        return None;
    }
    let lo = if lo.is_empty() { "0".to_string() } else { lo };
    let q = match hi {
        None => format!("{{{lo}}}"),
        Some(h) => format!("{{{lo},{h}}}"),
    };
    Some((q, j + 1))
}

/// One escape `\e` (outside or inside a class), in Rust syntax.
pub(crate) fn escape(e: char, in_class: bool, out: &mut String) -> Result<(), Unsupported> {
    match e {
        '1'..='9' => return Err(Unsupported::BackReference(format!("\\{e}"))),
        '0' => out.push_str("\\x00"),
        'Z' if !in_class => out.push_str("\\z"),
        'b' if in_class => out.push_str("\\x08"),
        'N' => {
            return Err(Unsupported::Syntax(
                "named Unicode escape \\N{…} is not supported".into(),
            ))
        }
        c if c.is_ascii_alphanumeric() => {
            out.push('\\');
            out.push(c);
        }
        c if c.is_whitespace() => {
            let _ = write!(out, "\\x{{{:x}}}", c as u32);
        }
        c if regex_syntax::is_meta_character(c) => {
            out.push('\\');
            out.push(c);
        }
        c => out.push(c),
    }
    Ok(())
}

/// A character class starting at `c[i] == '['`; returns the index after it.
pub(crate) fn class(c: &[char], i: usize, out: &mut String) -> Result<usize, Unsupported> {
    let mut j = i + 1;
    out.push('[');
    if c.get(j) == Some(&'^') {
        out.push('^');
        j += 1;
    }
    if c.get(j) == Some(&']') {
        out.push_str("\\]");
        j += 1;
    }
    while j < c.len() {
        match c[j] {
            ']' => {
                out.push(']');
                return Ok(j + 1);
            }
            '\\' => {
                let Some(&e) = c.get(j + 1) else { break };
                escape(e, true, out)?;
                j += 2;
            }
            '[' | '&' | '~' => {
                out.push('\\');
                out.push(c[j]);
                j += 1;
            }
            '-' if c.get(j + 1) == Some(&'-') => {
                out.push_str("\\-");
                j += 1;
            }
            ch => {
                out.push(ch);
                j += 1;
            }
        }
    }
    Err(Unsupported::Syntax(
        "unterminated character class `[`".into(),
    ))
}

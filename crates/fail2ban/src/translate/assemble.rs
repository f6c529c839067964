//! Gluing one failregex into a whole-message pattern: anchors (`^`, `$`, `\A`, `\Z`), the
//! syslog prefix line (removed at the start: Portcullis strips the prefix itself), and the
//! prefregex around it (`<F-CONTENT>` is where the failregex goes).

use std::fmt::Write as _;

use crate::token::{Expr, Piece};

/// A pattern split into its leading inline flags, anchors and body.
#[derive(Debug, Clone)]
struct Parts {
    flags: String,
    start: bool,
    end: bool,
    body: Expr,
}

fn split_anchors(e: &Expr) -> Parts {
    let mut pieces = e.pieces().to_vec();
    let (mut flags, mut start, mut end) = (String::new(), false, false);
    if let Some(Piece::Text(t)) = pieces.first_mut() {
        let (f, s, rest) = split_start(t);
        (flags, start) = (f, s);
        *t = rest.to_string();
    }
    if let Some(Piece::Text(t)) = pieces.last_mut() {
        let (e, rest) = split_end(t);
        end = e;
        *t = rest.to_string();
    }
    Parts {
        flags,
        start,
        end,
        body: Expr::from_pieces(pieces),
    }
}

/// Leading inline flags (`(?i)`) and `^` / `\A`.
pub(crate) fn split_start(py: &str) -> (String, bool, &str) {
    let mut s = py;
    let mut flags = String::new();
    if let Some(tail) = s.strip_prefix("(?") {
        let n = tail
            .find(|ch: char| !"aiLmsux".contains(ch))
            .unwrap_or(tail.len());
        if n > 0 && tail[n..].starts_with(')') {
            flags = s[..n + 3].to_string();
            s = &s[n + 3..];
        }
    }
    if let Some(r) = s.strip_prefix('^') {
        (flags, true, r)
    } else if let Some(r) = s.strip_prefix("\\A") {
        (flags, true, r)
    } else {
        (flags, false, s)
    }
}

/// Trailing `$` / `\Z` (not escaped).
pub(crate) fn split_end(s: &str) -> (bool, &str) {
    let bs = |t: &str| t.chars().rev().take_while(|&c| c == '\\').count();
    if let Some(r) = s.strip_suffix('$').filter(|r| bs(r) % 2 == 0) {
        (true, r)
    } else if let Some(r) = s.strip_suffix("\\Z").filter(|r| bs(r) % 2 == 0) {
        (true, r)
    } else {
        (false, s)
    }
}

/// Unwraps `<F-MLFID>` around a prefix-line reference and removes a leading one (after
/// optional `\s*`). Returns the body and whether a reference was removed.
pub(crate) fn strip_prefix_line(body: &Expr) -> (Expr, bool) {
    let mut pieces = body.pieces().to_vec();
    for k in 1..pieces.len().saturating_sub(1) {
        if !matches!(pieces[k], Piece::Prefix(_)) {
            continue;
        }
        let before = matches!(&pieces[k - 1], Piece::Text(t) if t.ends_with("<F-MLFID>"));
        let after = matches!(&pieces[k + 1], Piece::Text(t) if t.starts_with("</F-MLFID>"));
        if before && after {
            if let Piece::Text(t) = &mut pieces[k - 1] {
                t.truncate(t.len() - "<F-MLFID>".len());
            }
            if let Piece::Text(t) = &mut pieces[k + 1] {
                t.replace_range(.."</F-MLFID>".len(), "");
            }
        }
    }
    let mut e = Expr::from_pieces(pieces);
    let lead = match e.pieces() {
        [Piece::Prefix(_), ..] => 1,
        [Piece::Text(t), Piece::Prefix(_), ..] if t == "\\s*" => 2,
        _ => 0,
    };
    if lead > 0 {
        e = Expr::from_pieces(e.pieces()[lead..].iter().cloned());
    }
    (e, lead > 0)
}

/// The prefregex, split around its `<F-CONTENT>…</F-CONTENT>`.
#[derive(Debug, Clone)]
pub(crate) struct Pref {
    /// Pattern before the content (leading anchor and prefix line removed).
    pub(crate) pre: Expr,
    /// Pattern after the content (trailing anchor removed).
    pub(crate) post: Expr,
    /// Leading inline flags.
    pub(crate) flags: String,
    /// Anchored at the start.
    pub(crate) start: bool,
    /// Anchored at the end.
    pub(crate) end: bool,
    /// A prefix line was removed from its start.
    pub(crate) prefix_stripped: bool,
}

/// Glues a pattern into one whole-message pattern (still Python syntax with tags).
/// Returns the pattern and whether the syslog prefix line was removed.
pub(crate) fn assemble(pattern: &Expr, pref: Option<&Pref>) -> (Expr, bool) {
    let p = split_anchors(pattern);
    let (body, stripped) = strip_prefix_line(&p.body);
    let mut inner = Expr::text(&p.flags);
    if !p.start {
        inner.push_str(".*?");
    }
    inner.push_expr(body);
    if !p.end {
        inner.push_str(".*");
    }
    match pref {
        None => (inner, stripped),
        Some(pr) => {
            let mut s = Expr::text(&pr.flags);
            if !pr.start {
                s.push_str(".*?");
            }
            s.push_expr(pr.pre.clone());
            s.push_str("(?:");
            s.push_expr(inner);
            s.push_str(")");
            s.push_expr(pr.post.clone());
            if !pr.end {
                s.push_str(".*");
            }
            (s, stripped || pr.prefix_stripped)
        }
    }
}

/// Splits a prefregex around `<F-CONTENT>…</F-CONTENT>`; `None` (with a note saying why)
/// when it cannot be used.
pub(crate) fn prefregex(p: &Expr, notes: &mut Vec<String>) -> Option<Pref> {
    let pieces = p.pieces();
    // the content markers are in one text piece each
    let find = |tag: &str| {
        pieces
            .iter()
            .enumerate()
            .find_map(|(k, piece)| match piece {
                Piece::Text(t) => t.find(tag).map(|at| (k, at)),
                Piece::Prefix(_) => None,
            })
    };
    let Some((ko, ao)) = find("<F-CONTENT>") else {
        notes.push(
            "prefregex without <F-CONTENT> only pre-selects lines in fail2ban; not translated"
                .into(),
        );
        return None;
    };
    let Some((kc, ac)) = find("</F-CONTENT>") else {
        notes.push("prefregex has <F-CONTENT> without </F-CONTENT>; not used".into());
        return None;
    };
    let text = |k: usize| match &pieces[k] {
        Piece::Text(t) => t.as_str(),
        Piece::Prefix(_) => "",
    };
    if ko != kc {
        notes.push("prefregex has a syslog prefix inside <F-CONTENT>; not used".into());
        return None;
    }
    let content = &text(ko)[ao + "<F-CONTENT>".len()..ac];
    if !matches!(content, ".+" | ".*" | ".+?" | ".*?") {
        let mut n = String::new();
        let _ = write!(
            n,
            "prefregex content <F-CONTENT>{content}</F-CONTENT> is not checked (the failregex describes the content)"
        );
        notes.push(n);
    }
    let mut before: Vec<Piece> = pieces[..ko].to_vec();
    before.push(Piece::Text(text(ko)[..ao].to_string()));
    let mut after = vec![Piece::Text(
        text(kc)[ac + "</F-CONTENT>".len()..].to_string(),
    )];
    after.extend(pieces[kc + 1..].iter().cloned());
    let before = split_anchors(&Expr::from_pieces(before));
    let after = split_anchors(&Expr::from_pieces(after));
    let (pre, prefix_stripped) = strip_prefix_line(&before.body);
    // (a `^` in the middle would be a Python pattern error; only its start and end count)
    let mut post = after.body;
    if after.start {
        let mut t = Expr::text("^");
        t.push_expr(post);
        post = t;
    }
    Some(Pref {
        pre,
        post,
        flags: before.flags,
        start: before.start,
        end: after.end,
        prefix_stripped,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prefixed(before: &str, after: &str) -> Expr {
        let mut e = Expr::text(before);
        e.push_expr(Expr::prefix("__prefix_line"));
        e.push_str(after);
        e
    }

    #[test]
    fn prefix_line_is_removed_at_the_start_only() {
        let (e, stripped) = assemble(&prefixed("^", "Failed <HOST>$"), None);
        assert!(stripped);
        assert_eq!(e.to_string(), "Failed <HOST>");
        let (e, stripped) = assemble(&prefixed("^relay: ", "x$"), None);
        assert!(!stripped);
        assert_eq!(e.to_string(), "relay: %(__prefix_line)sx");
        let (e, _) = assemble(&Expr::text("x <HOST>"), None);
        assert_eq!(e.to_string(), ".*?x <HOST>.*");
    }

    #[test]
    fn prefregex_wraps_the_pattern() {
        let mut notes = Vec::new();
        let p = prefixed(
            "^<F-MLFID>",
            "</F-MLFID>(?:error: )?<F-CONTENT>.+</F-CONTENT>$",
        );
        let pref = prefregex(&p, &mut notes).unwrap();
        assert!(notes.is_empty() && pref.prefix_stripped && pref.start && pref.end);
        let (e, stripped) = assemble(&Expr::text("^bad <HOST>$"), Some(&pref));
        assert!(stripped);
        assert_eq!(e.to_string(), "(?:error: )?(?:bad <HOST>)");
        assert!(prefregex(&Expr::text("^x"), &mut notes).is_none());
        assert_eq!(notes.len(), 1);
    }
}

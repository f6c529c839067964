//! The value of an option after interpolation: text, with the references to the syslog
//! prefix line (`%(__prefix_line)s` and its variants) kept as tokens of their own.
//!
//! Portcullis removes the syslog prefix itself, so a pattern that starts with a prefix-line
//! reference loses it; one that uses it elsewhere gets its regex back. Keeping the reference
//! as a [`Piece::Prefix`] (instead of a marker character inside the text) means no character
//! of a filter can be mistaken for it.

use std::fmt;

/// One piece of an interpolated value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Piece {
    /// Text as written (Python regex syntax with fail2ban's tags).
    Text(String),
    /// A reference to a syslog prefix-line option, by its (normalised) name.
    Prefix(String),
}

/// An interpolated value: a sequence of pieces, adjacent texts merged, no empty text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Expr {
    pieces: Vec<Piece>,
}

impl Expr {
    /// A value of text only.
    pub(crate) fn text(s: &str) -> Expr {
        let mut e = Expr::default();
        e.push_str(s);
        e
    }

    /// A value that is one prefix-line reference.
    pub(crate) fn prefix(name: &str) -> Expr {
        Expr {
            pieces: vec![Piece::Prefix(name.to_string())],
        }
    }

    /// Builds a value from pieces (merging adjacent texts, dropping empty ones).
    pub(crate) fn from_pieces(pieces: impl IntoIterator<Item = Piece>) -> Expr {
        let mut e = Expr::default();
        for p in pieces {
            e.push_piece(p);
        }
        e
    }

    /// The pieces, in order.
    pub(crate) fn pieces(&self) -> &[Piece] {
        &self.pieces
    }

    /// Appends text.
    pub(crate) fn push_str(&mut self, s: &str) {
        if s.is_empty() {
            return;
        }
        match self.pieces.last_mut() {
            Some(Piece::Text(t)) => t.push_str(s),
            _ => self.pieces.push(Piece::Text(s.to_string())),
        }
    }

    /// Appends one piece.
    pub(crate) fn push_piece(&mut self, p: Piece) {
        match p {
            Piece::Text(t) => self.push_str(&t),
            Piece::Prefix(n) => self.pieces.push(Piece::Prefix(n)),
        }
    }

    /// Appends another value.
    pub(crate) fn push_expr(&mut self, e: Expr) {
        for p in e.pieces {
            self.push_piece(p);
        }
    }

    /// Size in bytes (texts and reference names), to bound interpolation.
    pub(crate) fn len(&self) -> usize {
        self.pieces
            .iter()
            .map(|p| match p {
                Piece::Text(t) | Piece::Prefix(t) => t.len(),
            })
            .sum()
    }

    /// True when a prefix-line reference is left.
    pub(crate) fn has_prefix(&self) -> bool {
        self.pieces.iter().any(|p| matches!(p, Piece::Prefix(_)))
    }

    /// The value without leading and trailing whitespace.
    pub(crate) fn trim(&self) -> Expr {
        let mut pieces = self.pieces.clone();
        if let Some(Piece::Text(t)) = pieces.first_mut() {
            *t = t.trim_start().to_string();
        }
        if let Some(Piece::Text(t)) = pieces.last_mut() {
            *t = t.trim_end().to_string();
        }
        Expr::from_pieces(pieces)
    }

    /// The value cut at newlines (in its texts), each line trimmed, empty lines left out.
    pub(crate) fn lines(&self) -> Vec<Expr> {
        let mut out = Vec::new();
        let mut cur = Expr::default();
        for p in &self.pieces {
            match p {
                Piece::Prefix(_) => cur.push_piece(p.clone()),
                Piece::Text(t) => {
                    let mut parts = t.split('\n');
                    if let Some(first) = parts.next() {
                        cur.push_str(first);
                    }
                    for part in parts {
                        out.push(std::mem::take(&mut cur));
                        cur.push_str(part);
                    }
                }
            }
        }
        out.push(cur);
        out.iter()
            .map(Expr::trim)
            .filter(|e| !e.pieces.is_empty())
            .collect()
    }

    /// The text, each prefix-line reference replaced by what `f` gives for its name.
    pub(crate) fn render<E>(
        &self,
        mut f: impl FnMut(&str) -> Result<String, E>,
    ) -> Result<String, E> {
        let mut s = String::with_capacity(self.len());
        for p in &self.pieces {
            match p {
                Piece::Text(t) => s.push_str(t),
                Piece::Prefix(n) => s.push_str(&f(n)?),
            }
        }
        Ok(s)
    }
}

/// The value as a user reads it: prefix-line references written as `%(name)s`.
impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for p in &self.pieces {
            match p {
                Piece::Text(t) => f.write_str(t)?,
                Piece::Prefix(n) => write!(f, "%({n})s")?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_merge_and_lines_split_around_references() {
        let mut e = Expr::text("  ^a\n");
        e.push_expr(Expr::prefix("__prefix_line"));
        e.push_str("b");
        e.push_str("c \n\n d ");
        assert_eq!(e.pieces().len(), 3);
        assert_eq!(e.to_string(), "  ^a\n%(__prefix_line)sbc \n\n d ");
        let lines: Vec<String> = e.lines().iter().map(Expr::to_string).collect();
        assert_eq!(lines, vec!["^a", "%(__prefix_line)sbc", "d"]);
        let plain = e.render(|_| Ok::<_, ()>("P".into())).unwrap();
        assert_eq!(plain, "  ^a\nPbc \n\n d ");
        assert!(e.has_prefix() && !Expr::text("x").has_prefix());
        // a private-use character is text like any other
        assert!(!Expr::text("\u{E000}").has_prefix());
    }
}

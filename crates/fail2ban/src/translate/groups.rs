//! The group structure of a Python pattern: parenthesised groups and fail2ban's
//! `<F-NAME>…</F-NAME>` tags (which fail2ban turns into named groups), with their
//! alternatives (`|`) and quantifiers. Used to rewrite a pattern into alternatives
//! (conditional groups, branches that count differently).

/// One group of a pattern; indices are into the pattern's characters.
#[derive(Debug, Clone)]
pub(crate) struct Group {
    /// Index of `(` or of the `<` of `<F-NAME>`.
    pub(crate) open: usize,
    /// Index of the first character of the body.
    pub(crate) body: usize,
    /// Index of `)` or of the `<` of `</F-NAME>`.
    pub(crate) close: usize,
    /// Index after the group (where a quantifier would be).
    pub(crate) end: usize,
    /// `|` at the top level of the body.
    pub(crate) bars: Vec<usize>,
    /// The enclosing group (`None`: the top level).
    pub(crate) parent: Option<usize>,
    /// The name of an `<F-NAME>` tag (`None`: a parenthesised group).
    pub(crate) tag: Option<String>,
}

/// The groups of a pattern, in order of their openings.
#[derive(Debug, Clone)]
pub(crate) struct Groups {
    /// The pattern's characters.
    pub(crate) c: Vec<char>,
    /// The groups.
    pub(crate) list: Vec<Group>,
    /// `|` at the top level of the pattern.
    pub(crate) top_bars: Vec<usize>,
}

impl Groups {
    /// Scans `py`; `None` when its groups are not balanced.
    pub(crate) fn parse(py: &str) -> Option<Groups> {
        let c: Vec<char> = py.chars().collect();
        let mut list: Vec<Group> = Vec::new();
        let mut top_bars = Vec::new();
        let mut stack: Vec<usize> = Vec::new();
        let mut i = 0;
        while i < c.len() {
            match c[i] {
                '\\' => i += 1,
                '[' => i = class_end(&c, i),
                '(' => {
                    let body = body_start(&c, i);
                    stack.push(list.len());
                    list.push(Group {
                        open: i,
                        body,
                        close: 0,
                        end: 0,
                        bars: Vec::new(),
                        parent: None,
                        tag: None,
                    });
                    i = body - 1;
                }
                ')' => {
                    let g = stack.pop()?;
                    if list[g].tag.is_some() {
                        return None;
                    }
                    list[g].close = i;
                    list[g].end = i + 1;
                }
                '|' => match stack.last() {
                    Some(&g) => list[g].bars.push(i),
                    None => top_bars.push(i),
                },
                '<' => {
                    if let Some((name, closing, end)) = tag_at(&c, i) {
                        if closing {
                            let g = stack.pop()?;
                            if list[g].tag.as_deref() != Some(name.as_str()) {
                                return None;
                            }
                            list[g].close = i;
                            list[g].end = end;
                        } else {
                            stack.push(list.len());
                            list.push(Group {
                                open: i,
                                body: end,
                                close: 0,
                                end: 0,
                                bars: Vec::new(),
                                parent: None,
                                tag: Some(name),
                            });
                        }
                        i = end - 1;
                    }
                }
                _ => {}
            }
            i += 1;
        }
        if !stack.is_empty() {
            return None;
        }
        // parents: the innermost group that encloses the opening
        for g in 0..list.len() {
            list[g].parent = (0..g)
                .rev()
                .find(|&p| list[p].open < list[g].open && list[g].end <= list[p].end);
        }
        Some(Groups { c, list, top_bars })
    }

    /// The text of `c[a..b]`.
    pub(crate) fn text(&self, a: usize, b: usize) -> String {
        self.c[a..b].iter().collect()
    }

    /// The quantifier after group `g`, if any (`?`, `*`, `+`, `{`).
    pub(crate) fn quantifier(&self, g: usize) -> Option<char> {
        self.c
            .get(self.list[g].end)
            .copied()
            .filter(|q| "?*+{".contains(*q))
    }

    /// The alternatives (`|`) of the body of `parent` (`None`: the top level), as ranges.
    pub(crate) fn branches(&self, parent: Option<usize>) -> Vec<(usize, usize)> {
        let (start, stop, bars) = match parent {
            Some(p) => (self.list[p].body, self.list[p].close, &self.list[p].bars),
            None => (0, self.c.len(), &self.top_bars),
        };
        let mut out = Vec::new();
        let mut a = start;
        for &b in bars {
            out.push((a, b));
            a = b + 1;
        }
        out.push((a, stop));
        out
    }

    /// The pattern with the body of `parent` (or the whole pattern) replaced by the given
    /// branches (joined with `|`).
    pub(crate) fn keep_branches(&self, parent: Option<usize>, keep: &[(usize, usize)]) -> String {
        let (start, stop) = match parent {
            Some(p) => (self.list[p].body, self.list[p].close),
            None => (0, self.c.len()),
        };
        let body: Vec<String> = keep.iter().map(|&(a, b)| self.text(a, b)).collect();
        format!(
            "{}{}{}",
            self.text(0, start),
            body.join("|"),
            self.text(stop, self.c.len())
        )
    }
}

/// The index after a character class starting at `c[i] == '['`, minus one (the scanner's
/// loop steps over the `]`).
pub(crate) fn class_end(c: &[char], i: usize) -> usize {
    let mut j = i + 1;
    if c.get(j) == Some(&'^') {
        j += 1;
    }
    if c.get(j) == Some(&']') {
        j += 1;
    }
    while j < c.len() && c[j] != ']' {
        if c[j] == '\\' {
            j += 1;
        }
        j += 1;
    }
    j
}

/// Where the body of a group opening at `c[i] == '('` starts.
fn body_start(c: &[char], i: usize) -> usize {
    if c.get(i + 1) != Some(&'?') {
        return i + 1;
    }
    let find = |from: usize, want: char| (from..c.len()).find(|&k| c[k] == want);
    match c.get(i + 2) {
        Some('P') if c.get(i + 3) == Some(&'<') => find(i + 4, '>').map_or(i + 1, |k| k + 1),
        Some('(') => find(i + 3, ')').map_or(i + 1, |k| k + 1),
        Some(':') => i + 3,
        Some('=' | '!' | '>') => i + 3,
        Some('<') if matches!(c.get(i + 3), Some('=' | '!')) => i + 4,
        _ => {
            // inline flags `(?i:…)`, `(?-i:…)`
            let mut k = i + 2;
            while k < c.len() && "aiLmsux-".contains(c[k]) {
                k += 1;
            }
            if c.get(k) == Some(&':') {
                k + 1
            } else {
                i + 1
            }
        }
    }
}

/// An `<F-NAME>` or `</F-NAME>` tag at `c[i] == '<'`: (NAME, closing, index after it).
fn tag_at(c: &[char], i: usize) -> Option<(String, bool, usize)> {
    let closing = c.get(i + 1) == Some(&'/');
    let from = if closing { i + 2 } else { i + 1 };
    if c.get(from) != Some(&'F') || c.get(from + 1) != Some(&'-') {
        return None;
    }
    let close = (from + 2..c.len()).find(|&k| c[k] == '>')?;
    let name: String = c[from + 2..close].iter().collect();
    let ok = !name.is_empty()
        && name
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == '-');
    ok.then_some((name, closing, close + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_tags_and_branches() {
        let g = Groups::parse(r"^a(?:<F-X>b|c</F-X>)?(?P<n>d)[(|]\(|e").unwrap();
        assert_eq!(g.top_bars.len(), 1);
        assert_eq!(g.list.len(), 3);
        assert_eq!(g.list[1].tag.as_deref(), Some("X"));
        assert_eq!(g.list[1].parent, Some(0));
        assert_eq!(g.quantifier(0), Some('?'));
        assert_eq!(g.quantifier(2), None);
        let br = g.branches(Some(1));
        assert_eq!(g.text(br[0].0, br[0].1), "b");
        assert_eq!(g.text(br[1].0, br[1].1), "c");
        assert_eq!(
            g.keep_branches(Some(1), &br[1..]),
            r"^a(?:<F-X>c</F-X>)?(?P<n>d)[(|]\(|e"
        );
        assert_eq!(g.text(g.list[2].body, g.list[2].close), "d");
        assert!(Groups::parse("(a").is_none());
        assert!(Groups::parse("<F-A>(</F-A>)").is_none());
    }
}

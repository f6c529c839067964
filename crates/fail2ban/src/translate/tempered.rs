//! The "tempered" repetition `(?:(?!LIT).)*`: a run of characters in which the literal `LIT`
//! does not start. fail2ban's stock filters use it to keep a client-controlled field (an
//! sshd user name) from holding text such as ` from `, so that a later `<HOST>` cannot be
//! forged. The linear-time engine has no look-ahead, but for a literal the same language is
//! regular: this module writes it without look-around, from the automaton that searches for
//! `LIT` (Knuth–Morris–Pratt), by state elimination.
//!
//! Python's look-ahead may see past the end of the run. Two cases are translated exactly or
//! more strictly, never more loosely:
//!
//! * the run is followed by the end of the pattern (or `$`): nothing follows, the run may
//!   end with a part of `LIT` (exact);
//! * otherwise the run may not end with a non-empty beginning of `LIT` either (stricter than
//!   Python only for runs that end with such a piece: they do not match).

/// A tempered repetition at `c[i] == '('`: its Rust translation and the index after it.
pub(crate) fn at(c: &[char], i: usize) -> Option<(String, usize)> {
    const OPEN: &str = "(?:(?!";
    const CLOSE: &str = ").)*";
    let open: Vec<char> = OPEN.chars().collect();
    if !c[i..].starts_with(&open) {
        return None;
    }
    let mut j = i + open.len();
    let mut lit = Vec::new();
    while j < c.len() && c[j] != ')' {
        match c[j] {
            '\\' => {
                let e = *c.get(j + 1)?;
                if e.is_ascii_alphanumeric() || e == '\n' {
                    return None;
                }
                lit.push(e);
                j += 2;
            }
            ch if ".^$*+?{}[]|(<\n".contains(ch) => return None,
            ch => {
                lit.push(ch);
                j += 1;
            }
        }
    }
    let close: Vec<char> = CLOSE.chars().collect();
    if lit.is_empty() || !c[j..].starts_with(&close) {
        return None;
    }
    j += close.len();
    if c.get(j) == Some(&'?') {
        j += 1; // lazy: the same language (the caller's context picks the split)
    }
    if c.get(j) == Some(&'+') {
        return None; // possessive: refused by the caller
    }
    let mut k = j;
    while c.get(k) == Some(&')') {
        k += 1;
    }
    let at_end = k == c.len() || c.get(k) == Some(&'$') || c[k..].starts_with(&['\\', 'Z']);
    Some((format!("(?:{})", without(&lit, at_end)), j))
}

/// A Rust regex for the strings in which `lit` does not start; with `may_end_inside`, a
/// string may end with a beginning of `lit`, else not.
pub(crate) fn without(lit: &[char], may_end_inside: bool) -> String {
    let n = lit.len();
    // failure function of the literal
    let mut fail = vec![0usize; n];
    let mut k = 0;
    for q in 1..n {
        while k > 0 && lit[q] != lit[k] {
            k = fail[k - 1];
        }
        if lit[q] == lit[k] {
            k += 1;
        }
        fail[q] = k;
    }
    let step = |mut q: usize, ch: char| {
        while q > 0 && lit[q] != ch {
            q = fail[q - 1];
        }
        if lit[q] == ch {
            q + 1
        } else {
            0
        }
    };
    let mut chars: Vec<char> = lit.to_vec();
    chars.sort_unstable();
    chars.dedup();
    let other = format!(
        "[^{}\\n]",
        chars.iter().map(|&ch| hex(ch)).collect::<String>()
    );

    // states 0..n (n: `lit` seen, left out), a start and a final state
    let (start, end) = (n, n + 1);
    let mut edge: Vec<Vec<Option<String>>> = vec![vec![None; n + 2]; n + 2];
    let add = |edge: &mut Vec<Vec<Option<String>>>, a: usize, b: usize, r: String| {
        edge[a][b] = Some(match edge[a][b].take() {
            None => r,
            Some(e) if e == r => e,
            Some(e) => format!("(?:{e}|{r})"),
        });
    };
    add(&mut edge, start, 0, String::new());
    for q in 0..n {
        for &ch in &chars {
            let t = step(q, ch);
            if t < n {
                add(&mut edge, q, t, hex(ch));
            }
        }
        add(&mut edge, q, 0, other.clone());
        if may_end_inside || q == 0 {
            add(&mut edge, q, end, String::new());
        }
    }
    for k in (0..n).rev() {
        let star = edge[k][k]
            .take()
            .map(|l| format!("(?:{l})*"))
            .unwrap_or_default();
        let ins: Vec<(usize, String)> = (0..n + 2)
            .filter_map(|a| edge[a][k].take().map(|r| (a, r)))
            .collect();
        let outs: Vec<(usize, String)> = (0..n + 2)
            .filter_map(|b| edge[k][b].take().map(|r| (b, r)))
            .collect();
        for (a, ra) in &ins {
            for (b, rb) in &outs {
                add(&mut edge, *a, *b, format!("{ra}{star}{rb}"));
            }
        }
    }
    edge[start][end].take().unwrap_or_default()
}

/// A character as a Rust regex escape, valid inside and outside a class.
fn hex(ch: char) -> String {
    if ch.is_ascii_alphanumeric() {
        ch.to_string()
    } else {
        format!("\\x{{{:x}}}", ch as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every string over `alphabet` up to `len` characters.
    fn strings(alphabet: &[char], len: usize) -> Vec<String> {
        let mut all = vec![String::new()];
        let mut last = vec![String::new()];
        for _ in 0..len {
            let mut next = Vec::new();
            for s in &last {
                for &a in alphabet {
                    next.push(format!("{s}{a}"));
                }
            }
            all.extend(next.iter().cloned());
            last = next;
        }
        all
    }

    fn check(lit: &str, alphabet: &[char], len: usize) {
        let l: Vec<char> = lit.chars().collect();
        let exact = regex::Regex::new(&format!("^(?:{})$", without(&l, true))).unwrap();
        let strict = regex::Regex::new(&format!("^(?:{})$", without(&l, false))).unwrap();
        for s in strings(alphabet, len) {
            let contains = s.contains(lit);
            assert_eq!(exact.is_match(&s), !contains, "{lit:?} exact on {s:?}");
            // strict: also no ending that begins the literal
            let ends_inside = (1..l.len()).any(|k| s.ends_with(&lit[..k]));
            assert_eq!(
                strict.is_match(&s),
                !contains && !ends_inside,
                "{lit:?} strict on {s:?}"
            );
        }
    }

    #[test]
    fn language_is_exact() {
        check(" from ", &[' ', 'f', 'r', 'o', 'm', 'x'], 7);
        check("aab", &['a', 'b', 'c'], 9);
        check("abab", &['a', 'b'], 11);
        check("x", &['x', 'y'], 6);
        check("a.b]", &['a', '.', 'b', ']', '\\'], 7);
    }

    #[test]
    fn recognised_forms_and_context() {
        let c = |s: &str| s.chars().collect::<Vec<char>>();
        let p = c(r"(?:(?! from ).)*? from x");
        let (re, next) = at(&p, 0).unwrap();
        assert_eq!(next, 17);
        assert_eq!(re, format!("(?:{})", without(&c(" from "), false)));
        let p = c(r"(?:(?:(?! from ).)*)$");
        let (re, _) = at(&p, 3).unwrap();
        assert_eq!(re, format!("(?:{})", without(&c(" from "), true)));
        let p = c(r"(?:(?!\:\ x).)*");
        assert_eq!(at(&p, 0).unwrap().1, p.len());
        // not a literal, or not the tempered form: left to the caller (refused there)
        assert!(at(&c(r"(?:(?!found\b)\w)*"), 0).is_none());
        assert!(at(&c(r"(?:(?!a|b).)*"), 0).is_none());
        assert!(at(&c(r"(?:(?!a).)"), 0).is_none());
        assert!(at(&c(r"(?:(?!a).)*+"), 0).is_none());
    }
}

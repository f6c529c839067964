//! Conditional groups `(?(name)YES|NO)` rewritten as alternatives without conditions.
//!
//! For each group name a condition refers to, the pattern is split in two: one copy in
//! which the group `(?P<name>…)` takes part (it becomes required, the conditions take their
//! YES branch) and one in which it does not (it is removed, the conditions take NO). That is
//! exact when the group is optional (`(…)?`) or one branch of an alternative, the forms
//! fail2ban's filters use (sshd's `^Failed …` rule uses both); other forms are refused.
//! The copies are returned in the order Python tries them, so that the first one matching
//! gives the same captures.

use super::groups::Groups;
use crate::error::Unsupported;

/// At most this many copies of one pattern.
const MAX_VARIANTS: usize = 16;

/// The pattern as alternatives without conditional groups (just `py` when it has none).
pub(crate) fn expand(py: &str) -> Result<Vec<String>, Unsupported> {
    let mut out = Vec::new();
    expand_into(py, &mut out)?;
    Ok(out)
}

fn refuse(why: &str) -> Unsupported {
    Unsupported::Conditional(why.to_string())
}

fn expand_into(py: &str, out: &mut Vec<String>) -> Result<(), Unsupported> {
    let Some(name) = first_condition(py) else {
        out.push(py.to_string());
        return Ok(());
    };
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        || name.starts_with(|c: char| c.is_ascii_digit())
    {
        return Err(refuse("only conditions on named groups are translated"));
    }
    for set in [true, false] {
        let decided = decide_conditions(py, &name, set)?;
        if let Some(v) = edit_group(&decided, &name, set)? {
            if out.len() >= MAX_VARIANTS {
                return Err(refuse("too many alternatives"));
            }
            expand_into(&v, out)?;
        }
    }
    Ok(())
}

/// The name in the first `(?(name)` of `py`.
fn first_condition(py: &str) -> Option<String> {
    let g = Groups::parse(py)?;
    g.list.iter().find_map(|gr| {
        let t = g.text(gr.open, gr.body);
        t.strip_prefix("(?(")?.strip_suffix(')').map(str::to_string)
    })
}

/// Every `(?(name)YES|NO)` replaced by `(?:YES)` (`set`) or `(?:NO)`.
fn decide_conditions(py: &str, name: &str, set: bool) -> Result<String, Unsupported> {
    let head = format!("(?({name})");
    let mut s = py.to_string();
    loop {
        let g = Groups::parse(&s).ok_or_else(|| refuse("unbalanced groups"))?;
        let Some(cond) = g.list.iter().find(|gr| g.text(gr.open, gr.body) == head) else {
            return Ok(s);
        };
        let (yes, no) = match cond.bars.as_slice() {
            [] => (g.text(cond.body, cond.close), String::new()),
            [bar] => (g.text(cond.body, *bar), g.text(bar + 1, cond.close)),
            _ => return Err(refuse("a condition with more than two branches")),
        };
        s = format!(
            "{}(?:{}){}",
            g.text(0, cond.open),
            if set { yes } else { no },
            g.text(cond.end, g.c.len())
        );
    }
}

/// The pattern in which group `name` takes part (`set`) or not; `None` when that cannot
/// happen (a required group that is left out).
fn edit_group(py: &str, name: &str, set: bool) -> Result<Option<String>, Unsupported> {
    let g = Groups::parse(py).ok_or_else(|| refuse("unbalanced groups"))?;
    let head = format!("(?P<{name}>");
    let d = g
        .list
        .iter()
        .position(|gr| g.text(gr.open, gr.body) == head)
        .ok_or_else(|| refuse("the condition names no group of the pattern"))?;
    let group = &g.list[d];
    // one branch of an alternative: it takes part when that branch is taken
    let branch_of =
        (g.quantifier(d).is_none() && has_bars(&g, group.parent)).then_some(group.parent);
    // the groups around it (around the alternative) must take part whenever it does
    let mut up = match branch_of {
        Some(Some(p)) if g.quantifier(p).is_some() => {
            return Err(refuse("the group is a branch of an optional part"));
        }
        Some(Some(p)) => g.list[p].parent,
        Some(None) => None,
        None => group.parent,
    };
    while let Some(a) = up {
        if g.quantifier(a).is_some() || !g.list[a].bars.is_empty() {
            return Err(refuse(
                "the group is inside an optional part or an alternative",
            ));
        }
        up = g.list[a].parent;
    }
    if branch_of != Some(None) && !g.top_bars.is_empty() {
        return Err(refuse("the group is inside an alternative"));
    }
    // the group itself, as a plain group
    let plain = format!(
        "{}(?:{}",
        g.text(0, group.open),
        g.text(group.body, g.c.len())
    );
    let p = Groups::parse(&plain).ok_or_else(|| refuse("unbalanced groups"))?;
    let group = &p.list[d];
    if let Some(parent) = branch_of {
        let branches = p.branches(parent);
        let k = branches
            .iter()
            .position(|&(a, b)| a <= group.open && group.end <= b)
            .ok_or_else(|| refuse("unbalanced groups"))?;
        let keep: Vec<(usize, usize)> = if set {
            vec![branches[k]]
        } else {
            branches
                .iter()
                .enumerate()
                .filter(|&(i, _)| i != k)
                .map(|(_, &r)| r)
                .collect()
        };
        return Ok(Some(p.keep_branches(parent, &keep)));
    }
    match (p.quantifier(d), set) {
        (Some('?'), true) => {
            // `(…)?` or `(…)??`: required
            let mut q = group.end + 1;
            if p.c.get(q) == Some(&'?') {
                q += 1;
            }
            Ok(Some(format!(
                "{}{}",
                p.text(0, group.end),
                p.text(q, p.c.len())
            )))
        }
        (Some('?'), false) => {
            let mut q = group.end + 1;
            if p.c.get(q) == Some(&'?') {
                q += 1;
            }
            Ok(Some(format!(
                "{}{}",
                p.text(0, group.open),
                p.text(q, p.c.len())
            )))
        }
        (None, true) => Ok(Some(plain)),
        (None, false) => Ok(None),
        _ => Err(refuse("the group is repeated")),
    }
}

/// Does the body of `parent` (or the top level) have alternatives?
fn has_bars(g: &Groups, parent: Option<usize>) -> bool {
    match parent {
        Some(p) => !g.list[p].bars.is_empty(),
        None => !g.top_bars.is_empty(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn optional_group_and_branch_conditions() {
        assert_eq!(expand("a(b)?").unwrap(), vec!["a(b)?"]);
        assert_eq!(
            expand("(?P<x>a )?b(?(x)c|d)").unwrap(),
            vec!["(?:a )b(?:c)", "b(?:d)"]
        );
        assert_eq!(
            expand("<F-U>(?P<y>\\S+)|.*?</F-U> (?(y): |$)").unwrap(),
            vec!["<F-U>(?:\\S+)</F-U> (?:: )", "<F-U>.*?</F-U> (?:$)"]
        );
        // two conditions: four copies, Python's order
        let v = expand("(?P<i>i )?<F-U>(?P<u>u)|(?(i)x|y)</F-U>(?(u)1|2)").unwrap();
        assert_eq!(
            v,
            vec![
                "(?:i )<F-U>(?:u)</F-U>(?:1)",
                "(?:i )<F-U>(?:x)</F-U>(?:2)",
                "<F-U>(?:u)</F-U>(?:1)",
                "<F-U>(?:y)</F-U>(?:2)",
            ]
        );
        // a required group: only the YES branch can happen
        assert_eq!(expand("(?P<r>a)(?(r)b|c)").unwrap(), vec!["(?:a)(?:b)"]);
    }

    #[test]
    fn other_forms_are_refused() {
        let why = |p: &str| expand(p).unwrap_err().to_string();
        assert!(
            why("(a)?(?(1)b|c)").contains("named groups"),
            "{}",
            why("(a)?(?(1)b|c)")
        );
        assert!(why("(?(z)b|c)").contains("names no group"));
        assert!(why("(?P<x>a)*(?(x)b)").contains("repeated"));
        assert!(why("(?:(?P<x>a)|b)?(?(x)c)").contains("optional part"));
        assert!(why("(?(x)a|b|c)(?P<x>d)").contains("more than two"));
    }
}

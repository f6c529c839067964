//! Whether a failregex match counts as a failure: `<F-NOFAIL>` and `<F-MLFGAINED>` mark a
//! line that fail2ban notes without counting it (a rule of weight 0 in Portcullis). When the
//! tag sits in one branch of an alternative, the pattern is split into one copy per branch
//! (in Python's order), each with its own weight; stock sshd's `Failed <cmnfailed> for …`
//! (publickey: not counted; other methods: counted) is such a pattern.

use super::escape::find_char;
use super::groups::Groups;
use crate::error::Unsupported;

/// The tags that make a line not count.
const NOT_COUNTED: [&str; 2] = ["NOFAIL", "MLFGAINED"];

/// The copies of a failregex and their weights (1: a failure, 0: noted, not counted).
pub(crate) fn weights(py: &str) -> Result<Vec<(String, u32)>, Unsupported> {
    let mut out = Vec::new();
    split(py, 0, &mut out)?;
    Ok(out)
}

fn split(py: &str, depth: usize, out: &mut Vec<(String, u32)>) -> Result<(), Unsupported> {
    for tag in NOT_COUNTED {
        if !py.contains(&format!("<F-{tag}>")) || tag_is_unconditional(py, tag) {
            continue;
        }
        let refuse = Unsupported::BranchWeight(tag);
        if depth >= 4 {
            return Err(refuse);
        }
        let g = Groups::parse(py).ok_or(refuse.clone())?;
        let t = g
            .list
            .iter()
            .position(|gr| gr.tag.as_deref() == Some(tag))
            .ok_or(refuse.clone())?;
        // the nearest alternative around the tag
        let mut cur = t;
        let parent = loop {
            let p = g.list[cur].parent;
            let bars = match p {
                Some(p) => !g.list[p].bars.is_empty(),
                None => !g.top_bars.is_empty(),
            };
            match p {
                _ if bars => break p,
                Some(p) => cur = p,
                None => return Err(refuse),
            }
        };
        for b in g.branches(parent) {
            split(&g.keep_branches(parent, &[b]), depth + 1, out)?;
        }
        return Ok(());
    }
    let counted = !NOT_COUNTED.iter().any(|t| py.contains(&format!("<F-{t}>")));
    out.push((py.to_string(), u32::from(counted)));
    Ok(())
}

/// Does the part of a Python pattern inside `<F-{tag}>` take part in every match? True when
/// the tag is present and neither it nor any group around it is optional or has
/// alternatives.
pub(crate) fn tag_is_unconditional(py: &str, tag: &str) -> bool {
    struct G {
        target: bool,
        alt: bool,
        holds_target: bool,
    }
    let c: Vec<char> = py.chars().collect();
    let open: Vec<char> = format!("<F-{tag}>").chars().collect();
    let optional_after = |k: usize| {
        matches!(c.get(k), Some('?') | Some('*'))
            || (c.get(k) == Some(&'{') && matches!(c.get(k + 1), Some('0') | Some(',')))
    };
    let mut stack: Vec<G> = Vec::new();
    let (mut found, mut ok, mut top_alt) = (false, true, false);
    let mut i = 0;
    while i < c.len() {
        match c[i] {
            '\\' => i += 1,
            '[' => {
                i = super::groups::class_end(&c, i);
            }
            '(' => stack.push(G {
                target: false,
                alt: false,
                holds_target: false,
            }),
            ')' => {
                if let Some(g) = stack.pop() {
                    if g.holds_target && (g.alt || optional_after(i + 1)) {
                        ok = false;
                    }
                }
            }
            '|' => match stack.last_mut() {
                Some(g) => g.alt = true,
                None => top_alt = true,
            },
            '<' if c.get(i + 1) == Some(&'F') && c.get(i + 2) == Some(&'-') => {
                let target = c[i..].starts_with(&open);
                if target {
                    found = true;
                    for g in stack.iter_mut() {
                        g.holds_target = true;
                    }
                }
                stack.push(G {
                    target,
                    alt: false,
                    holds_target: false,
                });
                i = find_char(&c, i, '>').unwrap_or(c.len());
            }
            '<' if c.get(i + 1) == Some(&'/') && c.get(i + 2) == Some(&'F') => {
                let end = find_char(&c, i, '>').unwrap_or(c.len());
                if let Some(g) = stack.pop() {
                    if (g.holds_target && g.alt)
                        || ((g.target || g.holds_target) && optional_after(end + 1))
                    {
                        ok = false;
                    }
                }
                i = end;
            }
            _ => {}
        }
        i += 1;
    }
    found && ok && !top_alt
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_conditions() {
        assert!(tag_is_unconditional("^<F-NOFAIL>a</F-NOFAIL> b", "NOFAIL"));
        assert!(tag_is_unconditional(
            "^<F-X><F-NOFAIL>a</F-NOFAIL></F-X> <F-USER>a|b</F-USER>",
            "NOFAIL"
        ));
        assert!(!tag_is_unconditional(
            "^(?:<F-NOFAIL>a</F-NOFAIL>|b)",
            "NOFAIL"
        ));
        assert!(!tag_is_unconditional("^<F-NOFAIL>a</F-NOFAIL>?", "NOFAIL"));
        assert!(!tag_is_unconditional("^<F-NOFAIL>a</F-NOFAIL>|b", "NOFAIL"));
        assert!(!tag_is_unconditional(
            "^<F-X>a|<F-NOFAIL>b</F-NOFAIL></F-X>",
            "NOFAIL"
        ));
    }

    #[test]
    fn branches_get_their_own_weight() {
        let w = weights("^F (?:a|<F-NOFAIL>pk</F-NOFAIL>|\\S+) for x").unwrap();
        assert_eq!(
            w,
            vec![
                ("^F (?:a) for x".to_string(), 1),
                ("^F (?:<F-NOFAIL>pk</F-NOFAIL>) for x".to_string(), 0),
                ("^F (?:\\S+) for x".to_string(), 1),
            ]
        );
        assert_eq!(weights("^<F-NOFAIL>a</F-NOFAIL>").unwrap()[0].1, 0);
        assert_eq!(weights("^a").unwrap(), vec![("^a".to_string(), 1)]);
        // optional: whether it counts depends on the optional part
        assert_eq!(
            weights("^x(?:<F-NOFAIL>a</F-NOFAIL>)?").unwrap_err(),
            Unsupported::BranchWeight("NOFAIL")
        );
    }
}

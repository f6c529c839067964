//! Address tags in different branches of one alternative, such as stock sendmail's
//! `(?:IPv6:<IP6>|<IP4>)`: a Portcullis pattern may capture the address once (the regex
//! crate allows a group name once, even in two branches), so a single translation would
//! capture only the first tag and the other branch's lines would match without an address,
//! counting nothing. The pattern is split into one copy per branch that holds an address
//! tag, in Python's order; a branch without one could not give an address in fail2ban
//! either, and is dropped. Two tags one after the other (both in every match) are left to
//! the translation, which captures the first.

use super::groups::Groups;

/// The tags that capture an address.
const TAGS: [&str; 5] = ["<HOST>", "<ADDR>", "<IP4>", "<IP6>", "<SUBNET>"];

fn tags(s: &str) -> usize {
    TAGS.iter().map(|t| s.matches(t).count()).sum()
}

/// The copies of a failregex (Python syntax) in which no alternative holds address tags in
/// two branches.
pub(crate) fn split(py: &str) -> Vec<String> {
    let mut out = Vec::new();
    go(py, 0, &mut out);
    out
}

fn go(py: &str, depth: usize, out: &mut Vec<String>) {
    if depth < 6 && tags(py) >= 2 {
        if let Some(g) = Groups::parse(py) {
            // the outermost alternative first (groups are listed in order of opening)
            let parents = [None].into_iter().chain((0..g.list.len()).map(Some));
            for p in parents {
                let branches = g.branches(p);
                let with: Vec<(usize, usize)> = branches
                    .iter()
                    .copied()
                    .filter(|&(a, b)| tags(&g.text(a, b)) > 0)
                    .collect();
                if with.len() >= 2 {
                    for b in with {
                        go(&g.keep_branches(p, &[b]), depth + 1, out);
                    }
                    return;
                }
            }
        }
    }
    out.push(py.to_string());
}

#[cfg(test)]
mod tests {
    use super::split;

    #[test]
    fn address_tags_in_two_branches_become_two_patterns() {
        assert_eq!(
            split(r"^bad client \[(?:IPv6:<IP6>|<IP4>)\]$"),
            [
                r"^bad client \[(?:IPv6:<IP6>)\]$",
                r"^bad client \[(?:<IP4>)\]$"
            ]
        );
        // a branch without an address is dropped; the top level is an alternative too
        assert_eq!(
            split(r"from (?:<IP4>|unknown|\[<IP6>\])|to <HOST>"),
            [r"from (?:<IP4>)", r"from (?:\[<IP6>\])", r"to <HOST>"]
        );
        // one tag, or two in a row: as it is
        for p in [r"from (?:<HOST>|x)", r"<HOST> relayed for <IP4>"] {
            assert_eq!(split(p), [p]);
        }
    }
}

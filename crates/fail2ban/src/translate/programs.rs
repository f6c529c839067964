//! `_daemon` → `programs`: the program names a filter's `_daemon` regex stands for, when it
//! is a small finite set of names (`sshd`, `(?:sshd|sshd-session)`, `sshd(?:-session)?`).

use regex_syntax::hir::{Hir, HirKind};

/// The program names a `_daemon` regex stands for, when it is a small finite set of names.
pub(crate) fn daemon_programs(daemon: &str) -> Option<Vec<String>> {
    let hir = regex_syntax::Parser::new().parse(daemon.trim()).ok()?;
    let set = finite(&hir, 16)?;
    let ok = |s: &String| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.-@/+".contains(c))
    };
    (set.iter().all(ok) && !set.is_empty()).then_some(set)
}

fn finite(hir: &Hir, limit: usize) -> Option<Vec<String>> {
    Some(match hir.kind() {
        HirKind::Empty => vec![String::new()],
        HirKind::Literal(l) => vec![String::from_utf8(l.0.to_vec()).ok()?],
        HirKind::Class(regex_syntax::hir::Class::Unicode(cls)) => {
            let mut v = Vec::new();
            for r in cls.iter() {
                for ch in r.start()..=r.end() {
                    v.push(ch.to_string());
                    if v.len() > limit {
                        return None;
                    }
                }
            }
            v
        }
        HirKind::Capture(c) => finite(&c.sub, limit)?,
        HirKind::Repetition(r) if r.max == Some(1) => {
            let mut v = finite(&r.sub, limit)?;
            if r.min == 0 {
                v.insert(0, String::new());
            }
            v
        }
        HirKind::Concat(xs) => {
            let mut acc = vec![String::new()];
            for x in xs {
                let part = finite(x, limit)?;
                let mut next = Vec::new();
                for a in &acc {
                    for p in &part {
                        next.push(format!("{a}{p}"));
                        if next.len() > limit {
                            return None;
                        }
                    }
                }
                acc = next;
            }
            acc
        }
        HirKind::Alternation(xs) => {
            let mut v = Vec::new();
            for x in xs {
                v.extend(finite(x, limit)?);
                if v.len() > limit {
                    return None;
                }
            }
            v
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn daemon_names() {
        assert_eq!(daemon_programs("sshd").unwrap(), vec!["sshd"]);
        assert_eq!(
            daemon_programs("(?:sshd|sshd-session)").unwrap(),
            vec!["sshd", "sshd-session"]
        );
        assert_eq!(
            daemon_programs("sshd(?:-session)?").unwrap(),
            vec!["sshd", "sshd-session"]
        );
        assert!(daemon_programs(r"\S*").is_none());
        assert!(daemon_programs(r"postfix(-\w+)?/\w+").is_none());
    }
}

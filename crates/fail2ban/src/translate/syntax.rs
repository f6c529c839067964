//! Python regex syntax (with fail2ban's tags) into Portcullis' pattern syntax: `<HOST>` and
//! its kin become `{HOST}` and friends, `<F-USER>` the `user` capture, Python-only syntax its
//! Rust form; constructs the linear-time engine lacks are refused with the reason.

use std::collections::HashMap;
use std::fmt::Write as _;

use portcullis_core::filter::macros;

use super::escape::{class, escape, find_char, is_fname_char, possessive, quantifier};
use super::tempered;
use crate::error::Unsupported;
use crate::resolve::is_tag_name;

fn syntax(what: &str) -> Unsupported {
    Unsupported::Syntax(what.to_string())
}

/// Per-pattern translation state.
#[derive(Default)]
pub(crate) struct Tr {
    /// Date patterns: named groups become plain groups, `(?P=name)` repeats the group.
    date_mode: bool,
    has_fuser: bool,
    user_done: bool,
    /// An address capture was written.
    pub(crate) host_done: bool,
    /// Notes about this pattern (approximations).
    pub(crate) notes: Vec<String>,
    /// The pattern used `<F-MLF…>` tags.
    pub(crate) multiline_tags: bool,
}

/// The `{HOST}` macro without its capture name, for a second address in one pattern.
fn anonymous_host() -> String {
    macros::get("HOST")
        .map(|v| v.replacen("(?P<host>", "(?:", 1))
        .unwrap_or_else(|| "\\S+".into())
}

impl Tr {
    /// A translator for date patterns.
    pub(crate) fn for_dates() -> Tr {
        Tr {
            date_mode: true,
            ..Tr::default()
        }
    }

    /// Translates one Python pattern (with fail2ban's tags) into Portcullis' syntax.
    pub(crate) fn run(&mut self, py: &str) -> Result<String, Unsupported> {
        let c: Vec<char> = py.chars().collect();
        self.has_fuser = py.contains("<F-USER>");
        let mut out = String::with_capacity(py.len() * 2);
        // open groups: Some((name, start of body in `out`)) for named groups in date mode
        let mut groups: Vec<Option<(String, usize)>> = Vec::new();
        let mut named_bodies: HashMap<String, String> = HashMap::new();
        let mut ftags: Vec<String> = Vec::new();
        let mut i = 0;
        while i < c.len() {
            let ch = c[i];
            match ch {
                '\\' => {
                    let Some(&e) = c.get(i + 1) else {
                        return Err(Unsupported::Syntax(
                            "the pattern ends with a lone backslash".into(),
                        ));
                    };
                    escape(e, false, &mut out)?;
                    i += 2;
                }
                '[' => {
                    i = class(&c, i, &mut out)?;
                }
                '(' => {
                    if c.get(i + 1) != Some(&'?') {
                        out.push('(');
                        groups.push(None);
                        i += 1;
                        continue;
                    }
                    if let Some((re, next)) = tempered::at(&c, i) {
                        out.push_str(&re);
                        i = next;
                        continue;
                    }
                    let rest: String = c[i + 2..].iter().take(3).collect();
                    if rest.starts_with("P<") {
                        let close = find_char(&c, i + 4, '>')
                            .ok_or_else(|| syntax("unterminated group name (?P<…"))?;
                        let name: String = c[i + 4..close].iter().collect();
                        if self.date_mode {
                            out.push_str("(?:");
                            groups.push(Some((name, out.len())));
                        } else {
                            let _ = write!(out, "(?P<{name}>");
                            groups.push(None);
                        }
                        i = close + 1;
                    } else if rest.starts_with("P=") {
                        let close = find_char(&c, i + 4, ')')
                            .ok_or_else(|| syntax("unterminated back-reference (?P=…"))?;
                        let name: String = c[i + 4..close].iter().collect();
                        match named_bodies.get(&name) {
                            Some(body) if self.date_mode => {
                                let _ = write!(out, "(?:{body})");
                            }
                            _ => return Err(Unsupported::BackReference(format!("(?P={name})"))),
                        }
                        i = close + 1;
                    } else if rest.starts_with('#') {
                        i = find_char(&c, i, ')')
                            .ok_or_else(|| syntax("unterminated comment (?#…"))?
                            + 1;
                    } else if rest.starts_with('=') {
                        return Err(Unsupported::LookAround("look-ahead (?=…)"));
                    } else if rest.starts_with('!') {
                        return Err(Unsupported::LookAround("look-ahead (?!…)"));
                    } else if rest.starts_with("<=") {
                        return Err(Unsupported::LookAround("look-behind (?<=…)"));
                    } else if rest.starts_with("<!") {
                        return Err(Unsupported::LookAround("look-behind (?<!…)"));
                    } else if rest.starts_with('(') {
                        return Err(Unsupported::Conditional(
                            "it could not be expanded into alternatives".into(),
                        ));
                    } else if rest.starts_with('>') {
                        return Err(Unsupported::Atomic);
                    } else if rest.starts_with(':') {
                        out.push_str("(?:");
                        groups.push(None);
                        i += 3;
                    } else {
                        // inline flags: (?aiLmsux) or (?flags-flags:…)
                        let mut j = i + 2;
                        let mut flags = String::new();
                        while j < c.len() && "aiLmsux-".contains(c[j]) {
                            if "imsx-".contains(c[j]) {
                                flags.push(c[j]);
                            }
                            j += 1;
                        }
                        // Python-only flags (a, L, u) are dropped; `(?-i:…)` stays
                        let flags = flags.trim_end_matches('-').to_string();
                        match c.get(j) {
                            Some(')') => {
                                if !flags.is_empty() {
                                    let _ = write!(out, "(?{flags})");
                                }
                                i = j + 1;
                            }
                            Some(':') => {
                                let _ = write!(out, "(?{flags}:");
                                groups.push(None);
                                i = j + 1;
                            }
                            _ => {
                                return Err(syntax(&format!(
                                    "unknown group syntax (?{}",
                                    c[i + 2..].iter().take(4).collect::<String>()
                                )));
                            }
                        }
                    }
                }
                ')' => {
                    match groups.pop() {
                        Some(Some((name, start))) => {
                            named_bodies.insert(name, out[start..].to_string());
                        }
                        Some(None) => {}
                        None => return Err(syntax("unbalanced parenthesis")),
                    }
                    out.push(')');
                    i += 1;
                }
                '{' => match quantifier(&c, i) {
                    Some((q, next)) => {
                        out.push_str(&q);
                        i = next;
                        possessive(&c, i)?;
                    }
                    None => {
                        out.push_str("\\{");
                        i += 1;
                    }
                },
                '}' => {
                    out.push_str("\\}");
                    i += 1;
                }
                '*' | '+' | '?' => {
                    out.push(ch);
                    i += 1;
                    possessive(&c, i)?;
                }
                '<' => {
                    i = self.tag(&c, i, &mut out, &mut ftags)?;
                }
                _ => {
                    out.push(ch);
                    i += 1;
                }
            }
        }
        if !groups.is_empty() {
            return Err(syntax("unbalanced parenthesis (missing `)`)"));
        }
        if let Some(t) = ftags.last() {
            return Err(syntax(&format!("<F-{t}> is not closed")));
        }
        Ok(out)
    }

    /// A fail2ban tag at `c[i] == '<'`; returns the next index.
    fn tag(
        &mut self,
        c: &[char],
        i: usize,
        out: &mut String,
        ftags: &mut Vec<String>,
    ) -> Result<usize, Unsupported> {
        let Some(close) = find_char(c, i + 1, '>') else {
            out.push('<');
            return Ok(i + 1);
        };
        let inner: String = c[i + 1..close].iter().collect();
        let next = close + 1;
        if let Some(name) = inner.strip_prefix("/F-") {
            if !name.is_empty() && name.chars().all(is_fname_char) {
                match ftags.pop() {
                    Some(open) if open == name => {
                        out.push(')');
                        return Ok(next);
                    }
                    _ => return Err(syntax(&format!("unbalanced </F-{name}> tag"))),
                }
            }
        }
        if let Some(name) = inner.strip_prefix("F-") {
            if !name.is_empty() && name.chars().all(is_fname_char) {
                let open = match name {
                    "USER" if !self.user_done => {
                        self.user_done = true;
                        "(?P<user>"
                    }
                    n if n.starts_with("ALT_USER") && !self.has_fuser && !self.user_done => {
                        self.user_done = true;
                        "(?P<user>"
                    }
                    "IP4" | "IP6" | "ADDR" | "HOST" if !self.host_done => {
                        self.host_done = true;
                        "(?P<host>"
                    }
                    "DNS" => {
                        return Err(Unsupported::Tag {
                            tag: "<F-DNS>",
                            why: "captures a host name: Portcullis bans addresses and does not resolve names",
                        })
                    }
                    "ID" => {
                        return Err(Unsupported::Tag {
                            tag: "<F-ID>",
                            why: "(a ban identifier other than the address) is not supported",
                        })
                    }
                    "MLFID" | "MLFFORGET" | "MLFGAINED" => {
                        self.multiline_tags = true;
                        "(?:"
                    }
                    _ => "(?:",
                };
                out.push_str(open);
                ftags.push(name.to_string());
                return Ok(next);
            }
        }
        match inner.as_str() {
            "HOST" | "ADDR" => {
                out.push_str("\\[?");
                self.host(out);
                out.push_str("\\]?");
            }
            "IP4" => {
                if self.host_done {
                    out.push_str("[0-9]{1,3}(?:\\.[0-9]{1,3}){3}");
                    self.notes
                        .push("the address appears twice; only the first is captured".into());
                } else {
                    self.host_done = true;
                    out.push_str("{IPV4}");
                }
            }
            "IP6" => {
                if self.host_done {
                    out.push_str("[0-9A-Fa-f]{0,4}:[0-9A-Fa-f:.]{1,44}");
                    self.notes
                        .push("the address appears twice; only the first is captured".into());
                } else {
                    self.host_done = true;
                    out.push_str("{IPV6}");
                }
            }
            "SUBNET" => {
                out.push_str("\\[?");
                self.host(out);
                out.push_str("(?:/[0-9]{1,3})?\\]?");
                self.notes.push(
                    "<SUBNET>: the /CIDR suffix is matched but only the address is banned".into(),
                );
            }
            "CIDR" => {
                out.push_str("[0-9]{1,3}");
                self.notes.push(
                    "<CIDR>: the prefix length is matched but only the address is banned (fail2ban bans the subnet)".into(),
                );
            }
            "DNS" => {
                return Err(Unsupported::Tag {
                    tag: "<DNS>",
                    why: "matches host names: Portcullis bans addresses and does not resolve names",
                })
            }
            "SKIPLINES" => {
                return Err(Unsupported::MultiLine(
                    "<SKIPLINES> (multi-line matching) is not supported".into(),
                ))
            }
            _ => {
                if is_tag_name(&inner) {
                    self.notes.push(format!(
                        "<{inner}> is neither an option of the filter nor a fail2ban tag: kept as literal text"
                    ));
                }
                out.push('<');
                return Ok(i + 1);
            }
        }
        Ok(next)
    }

    fn host(&mut self, out: &mut String) {
        if self.host_done {
            out.push_str(&anonymous_host());
            self.notes
                .push("the address appears twice; only the first is captured".into());
        } else {
            self.host_done = true;
            out.push_str("{HOST}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_syntax_is_translated() {
        let tr = |s: &str| Tr::default().run(s);
        assert_eq!(tr(r"a{,3}b{2,}c{1}").unwrap(), "a{0,3}b{2,}c{1}");
        assert_eq!(tr(r"x{y}").unwrap(), r"x\{y\}");
        assert_eq!(tr(r"end\Z").unwrap(), r"end\z");
        assert_eq!(tr(r"\<tag\>").unwrap(), "<tag>");
        assert_eq!(tr(r"[[(]x[^]a]").unwrap(), r"[\[(]x[^\]a]");
        assert_eq!(tr(r"(?iu)abc(?#note)").unwrap(), "(?i)abc");
        assert_eq!(tr(r"(?u)abc").unwrap(), "abc");
        assert_eq!(tr(r"(?-i:a)(?au:b)").unwrap(), "(?-i:a)(?:b)");
        assert_eq!(tr(r"a\ b").unwrap(), r"a\x{20}b");
        assert!(tr(r"(a)\1")
            .unwrap_err()
            .to_string()
            .contains("back-reference \\1"));
        assert!(tr(r"(?=x)")
            .unwrap_err()
            .to_string()
            .contains("look-ahead (?=…)"));
        assert!(tr(r"(?<!x)")
            .unwrap_err()
            .to_string()
            .contains("look-behind (?<!…)"));
        assert!(tr(r"(?(1)a|b)")
            .unwrap_err()
            .to_string()
            .contains("conditional"));
        assert!(tr(r"(?>a)").unwrap_err().to_string().contains("atomic"));
        assert!(tr(r"a*+").unwrap_err().to_string().contains("possessive"));
        assert!(tr(r"<F-USER>x")
            .unwrap_err()
            .to_string()
            .contains("not closed"));
        assert!(tr(r"<DNS>").unwrap_err().to_string().contains("host names"));
        // escaped parentheses and classes are not look-arounds
        assert_eq!(tr(r"\(?!x[(?!]").unwrap(), r"\(?!x[(?!]");
        // a second address is matched without a capture
        let two = tr("<HOST> or <HOST>").unwrap();
        assert_eq!(two.matches("{HOST}").count(), 1);
    }
}

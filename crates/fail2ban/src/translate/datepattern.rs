//! `datepattern`: simple strftime forms become `time_format` plus a `(?P<time>…)` capture
//! in front of every pattern; regex forms are matched (the time then comes from the line's
//! prefix or the time it is read); fail2ban's default detection needs nothing.

use std::fmt::Write as _;

use super::syntax::Tr;

/// What a `datepattern` becomes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DateOutcome {
    /// fail2ban's default detection (or none): nothing to add.
    Default,
    /// Put this (Rust syntax) in front of every pattern.
    Prefix {
        regex: String,
        time_format: Option<String>,
    },
    /// Cannot translate; the reason.
    Unsupported(String),
}

/// Regex of a strftime directive (also valid Python).
fn directive_regex(d: char) -> Option<&'static str> {
    Some(match d {
        'Y' => "[0-9]{4}",
        'y' => "[0-9]{2}",
        'm' => "[0-9]{1,2}",
        'd' | 'e' => "[ 0-9]?[0-9]",
        'H' => "[0-9]{1,2}",
        'M' | 'S' => "[0-9]{2}",
        'T' => "[0-9]{1,2}:[0-9]{2}:[0-9]{2}",
        'b' => "[A-Za-z]{3}",
        'f' => "[0-9]{1,9}",
        'z' => "(?:Z|[+-][0-9]{2}:?[0-9]{2})",
        's' => "[0-9]{9,11}(?:\\.[0-9]+)?",
        _ => return None,
    })
}

/// Regex of directives Portcullis cannot parse (the time is then not taken from the line).
fn other_directive_regex(d: char) -> Option<&'static str> {
    Some(match d {
        'a' => "[A-Za-z]{3}",
        'A' | 'B' => "[A-Za-z]+",
        'I' => "[0-9]{1,2}",
        'p' => "(?:AM|PM|am|pm)",
        'j' => "[0-9]{1,3}",
        'Z' => "[A-Za-z]{1,5}",
        'k' | 'l' => "[ 0-9]?[0-9]",
        _ => return None,
    })
}

/// Translates the value of `datepattern`.
pub(crate) fn translate_datepattern(value: &str) -> DateOutcome {
    let lines: Vec<&str> = value
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    if lines.is_empty() {
        return DateOutcome::Default;
    }
    if lines.len() > 1 {
        return DateOutcome::Unsupported(format!(
            "datepattern has {} alternatives; Portcullis takes one time format",
            lines.len()
        ));
    }
    let mut dp = lines[0];
    if let Some(r) = dp.strip_prefix("{UNB}") {
        dp = r;
    }
    if matches!(
        dp,
        "{^LN-BEG}" | "{DEFAULT}" | "{^LN-BEG}{DEFAULT}" | "{NONE}"
    ) {
        return DateOutcome::Default;
    }
    let (anchored, dp) = if let Some(r) = dp.strip_prefix("{^LN-BEG}") {
        (true, r)
    } else if let Some(r) = dp.strip_prefix('^') {
        (true, r)
    } else {
        (false, dp)
    };
    if dp == "{DATE}" || dp == "{DEFAULT}" {
        return DateOutcome::Default;
    }
    if dp.contains("{DATE}") || dp.contains("{DEFAULT}") {
        return DateOutcome::Unsupported(
            "datepattern uses fail2ban's default date patterns ({DATE})".into(),
        );
    }
    if !anchored {
        return DateOutcome::Unsupported(
            "datepattern is not anchored at the start of the line (fail2ban cuts the date out of the middle of the line; Portcullis patterns see the whole line)".into(),
        );
    }
    if dp.eq_ignore_ascii_case("epoch") {
        return DateOutcome::Prefix {
            regex: format!("(?P<time>{})", directive_regex('s').unwrap_or_default()),
            time_format: Some("%s".into()),
        };
    }
    if dp.eq_ignore_ascii_case("tai64n") || dp.eq_ignore_ascii_case("iso8601") {
        return DateOutcome::Unsupported(format!("datepattern {dp} is not supported"));
    }
    if let Some((re, fmt)) = simple_date(dp) {
        return DateOutcome::Prefix {
            regex: format!("(?P<time>{re})"),
            time_format: Some(fmt),
        };
    }
    // regex syntax: match it (the time then comes from the prefix or the read time)
    let mut py = String::new();
    let c: Vec<char> = dp.chars().collect();
    let mut i = 0;
    while i < c.len() {
        if c[i] == '\\' && i + 1 < c.len() {
            py.push(c[i]);
            py.push(c[i + 1]);
            i += 2;
            continue;
        }
        if c[i] == '%' && i + 1 < c.len() {
            let (d, n) = if c[i + 1] == 'E' && c.get(i + 2) == Some(&'x') && i + 3 < c.len() {
                (c[i + 3], 4)
            } else {
                (c[i + 1], 2)
            };
            if d == '%' {
                py.push('%');
            } else if let Some(r) = directive_regex(d).or_else(|| other_directive_regex(d)) {
                let _ = write!(py, "(?:{r})");
            } else {
                return DateOutcome::Unsupported(format!(
                    "datepattern directive %{d} is not supported"
                ));
            }
            i += n;
            continue;
        }
        py.push(c[i]);
        i += 1;
    }
    let mut tr = Tr::for_dates();
    match tr.run(&py) {
        Ok(re) => DateOutcome::Prefix {
            regex: format!("(?:{re})"),
            time_format: None,
        },
        Err(e) => DateOutcome::Unsupported(format!("datepattern: {e}")),
    }
}

/// A datepattern made of directives and literal characters only: (regex, time format).
fn simple_date(dp: &str) -> Option<(String, String)> {
    let c: Vec<char> = dp.chars().collect();
    let (mut re, mut fmt) = (String::new(), String::new());
    let mut i = 0;
    while i < c.len() {
        match c[i] {
            '%' => {
                let (d, n) = if c.get(i + 1) == Some(&'E') && c.get(i + 2) == Some(&'x') {
                    (*c.get(i + 3)?, 4)
                } else {
                    (*c.get(i + 1)?, 2)
                };
                if d == '%' {
                    re.push('%');
                    fmt.push_str("%%");
                } else {
                    re.push_str(directive_regex(d)?);
                    fmt.push('%');
                    fmt.push(d);
                }
                i += n;
            }
            '\\' => {
                let e = *c.get(i + 1)?;
                if e.is_ascii_alphanumeric() || e.is_whitespace() {
                    return None;
                }
                re.push_str(&regex_syntax::escape(&e.to_string()));
                fmt.push(e);
                i += 2;
            }
            '.' => {
                re.push_str("\\.");
                fmt.push('.');
                i += 1;
            }
            ch if "^$*+?()[]{}|".contains(ch) => return None,
            ch => {
                re.push_str(&regex_syntax::escape(&ch.to_string()));
                fmt.push(ch);
                i += 1;
            }
        }
    }
    portcullis_core::time::check_format(&fmt).ok()?;
    Some((re, fmt))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datepattern_forms() {
        let p = |s: &str| translate_datepattern(s);
        assert_eq!(p("{^LN-BEG}"), DateOutcome::Default);
        assert_eq!(p("^{DATE}"), DateOutcome::Default);
        assert!(
            matches!(p("{^LN-BEG}Epoch"), DateOutcome::Prefix { time_format: Some(f), .. } if f == "%s")
        );
        assert!(matches!(
            p(r"^\[%d/%b/%Y %H:%M:%S\]"),
            DateOutcome::Prefix { time_format: Some(f), .. } if f == "[%d/%b/%Y %H:%M:%S]"
        ));
        // regex syntax: matched, but no time format
        match p("^(?:%Y-)?%m-%d[ T]%H:%M:%S(?:\\.%f)?") {
            DateOutcome::Prefix { regex, time_format } => {
                assert!(time_format.is_none());
                assert!(regex::Regex::new(&regex).is_ok(), "{regex}");
            }
            o => panic!("{o:?}"),
        }
        // a back-reference inside a date pattern repeats the group
        assert!(matches!(
            p("{^LN-BEG}%ExY(?P<_sep>[-/.])%m(?P=_sep)%d[T ]%H:%M:%S"),
            DateOutcome::Prefix {
                time_format: None,
                ..
            }
        ));
        assert!(
            matches!(p("%d/%b[^/]*/%Y:%H:%M:%S %z"), DateOutcome::Unsupported(w) if w.contains("not anchored"))
        );
        assert!(matches!(
            p("^[^\\[]*\\[({DATE})"),
            DateOutcome::Unsupported(_)
        ));
        assert!(
            matches!(p("^%b %d, %ExY %I:%M:%S %p\n^WARNING:"), DateOutcome::Unsupported(w) if w.contains("2 alternatives"))
        );
    }
}

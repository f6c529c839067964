//! Sample logs with expectations, kept beside each filter (`filters/NAME.log`).
//!
//! Every log line is preceded by one expectation line:
//!
//! ```text
//! # free comment
//! #= host=203.0.113.5 user=root rule=password
//! Nov 21 10:00:01 web1 sshd[123]: Failed password for root from 203.0.113.5 port 22 ssh2
//! #= none
//! Nov 21 10:00:02 web1 sshd[123]: Accepted password for alice from 203.0.113.9 port 22 ssh2
//! ```
//!
//! `host` is required for a match; `user`, `rule` and `weight` are checked when given
//! (`user=-` means "no user captured"; `weight` is what the line counts: 0 for a line held
//! back in its session, the held failures for a line that releases them); values with spaces
//! are written in double quotes. Lines are matched in order with every rule of the filter
//! (mode `aggressive`), so lines of one process (`sshd[PID]`) are one session.

use super::{Filter, MatchSet, Mode};
use crate::time::TimeContext;

/// One expectation for the next line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expect {
    /// The line must not match.
    None,
    /// The line must match with these values.
    Match {
        /// Expected address (as printed by `IpAddr`'s `Display`).
        host: String,
        /// Expected user; `Some("-")` means no user.
        user: Option<String>,
        /// Expected rule id.
        rule: Option<String>,
        /// Expected weight (what the line counts).
        weight: Option<u32>,
    },
}

/// A sample line with its expectation and its line number in the sample file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Case {
    /// 1-based line number of the log line.
    pub lineno: usize,
    /// The log line.
    pub line: String,
    /// What it must give.
    pub expect: Expect,
}

/// A sample file that does not follow the format above: where, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct SampleError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

/// Parses a sample file into cases.
pub fn parse(text: &str) -> Result<Vec<Case>, SampleError> {
    let err = |line: usize, message: &str| SampleError {
        line,
        message: message.to_string(),
    };
    let mut cases = Vec::new();
    let mut pending: Option<(usize, Expect)> = None;
    for (i, l) in text.lines().enumerate() {
        let n = i + 1;
        if let Some(spec) = l.strip_prefix("#=") {
            if pending.is_some() {
                return Err(err(n, "two expectations in a row"));
            }
            pending = Some((n, parse_expect(spec.trim()).map_err(|e| err(n, &e))?));
        } else if l.starts_with('#') || l.trim().is_empty() {
            continue;
        } else {
            let Some((_, expect)) = pending.take() else {
                return Err(err(n, "log line without a `#=` expectation before it"));
            };
            cases.push(Case {
                lineno: n,
                line: l.to_string(),
                expect,
            });
        }
    }
    if let Some((n, _)) = pending {
        return Err(err(n, "expectation without a log line after it"));
    }
    Ok(cases)
}

fn parse_expect(spec: &str) -> Result<Expect, String> {
    if spec == "none" {
        return Ok(Expect::None);
    }
    let (mut host, mut user, mut rule, mut weight) = (None, None, None, None);
    let mut rest = spec;
    while !rest.is_empty() {
        let eq = rest
            .find('=')
            .ok_or_else(|| format!("expected key=value in {spec:?}"))?;
        let key = rest[..eq].trim();
        let after = &rest[eq + 1..];
        let (value, tail) = if let Some(q) = after.strip_prefix('"') {
            let end = q.find('"').ok_or("unterminated quote")?;
            (&q[..end], &q[end + 1..])
        } else {
            let end = after.find(' ').unwrap_or(after.len());
            (&after[..end], &after[end..])
        };
        match key {
            "host" => host = Some(value.to_string()),
            "user" => user = Some(value.to_string()),
            "rule" => rule = Some(value.to_string()),
            "weight" => {
                weight = Some(
                    value
                        .parse()
                        .map_err(|_| format!("weight={value:?} is not a number"))?,
                )
            }
            k => {
                return Err(format!(
                    "unknown key {k:?}; use host=, user=, rule=, weight= or `none`"
                ))
            }
        }
        rest = tail.trim_start();
    }
    let host = host.ok_or("a match expectation needs host=ADDRESS (or write `none`)")?;
    Ok(Expect::Match {
        host,
        user,
        rule,
        weight,
    })
}

/// Runs every case through `filter`; returns the number of cases, or one message per failure.
pub fn check(filter: &Filter, text: &str, ctx: &TimeContext) -> Result<usize, Vec<String>> {
    let cases = parse(text).map_err(|e| vec![e.to_string()])?;
    let set = MatchSet::new(vec![filter.clone()], Mode::Aggressive);
    let mut scratch = set.scratch();
    let mut errors = Vec::new();
    for c in &cases {
        let hit = set.match_line(c.line.as_bytes(), ctx, &mut scratch);
        let got = hit.map(|h| {
            let r = &set.filters()[h.filter].rules()[h.rule];
            (
                h.addr.to_string(),
                h.user.map(|u| String::from_utf8_lossy(u).into_owned()),
                r.id.clone(),
                crate::jail::hit_weight(&h, r, &[], &[]).0,
            )
        });
        let ok = match (&c.expect, &got) {
            (Expect::None, None) => true,
            (
                Expect::Match {
                    host,
                    user,
                    rule,
                    weight,
                },
                Some((gh, gu, gr, gw)),
            ) => {
                host == gh
                    && rule.as_ref().is_none_or(|r| r == gr)
                    && weight.is_none_or(|w| w == *gw)
                    && match user.as_deref() {
                        None => true,
                        Some("-") => gu.is_none(),
                        Some(u) => gu.as_deref() == Some(u),
                    }
            }
            _ => false,
        };
        if !ok {
            errors.push(format!(
                "line {}: expected {:?}, got {}\n  {}",
                c.lineno,
                c.expect,
                match got {
                    None => "no match".to_string(),
                    Some((h, u, r, w)) => format!("host={h} user={u:?} rule={r} weight={w}"),
                },
                c.line
            ));
        }
    }
    if errors.is_empty() {
        Ok(cases.len())
    } else {
        Err(errors)
    }
}

/// For tests of the matchers: every line of a sample log (as a message and as a whole
/// line), pieces of it, and with `mutate` copies with a byte changed.
#[cfg(test)]
pub(crate) fn haystacks(sample: &str, mutate: bool) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for c in parse(sample).unwrap_or_default() {
        let line = c.line.as_bytes();
        let msg = crate::prefix::parse(line).message;
        for h in [msg, line] {
            out.push(h.to_vec());
            for cut in [h.len() / 3, h.len() / 2, h.len().saturating_sub(3)] {
                out.push(h[..cut].to_vec());
                out.push(h[cut..].to_vec());
            }
            if !mutate {
                continue;
            }
            for (i, with) in [
                (h.len() / 4, b' '),
                (h.len() / 2, b'1'),
                (h.len() * 3 / 4, b':'),
            ] {
                let mut m = h.to_vec();
                if i < m.len() {
                    m[i] = with;
                    out.push(m);
                }
            }
        }
    }
    out
}

//! Human durations in configuration: `90s`, `10m`, `1h`, `3d`, `1w`, combinations like
//! `1h30m`, and a bare number of seconds.

use crate::decision::Millis;

/// Why a duration cannot be read; the message says what would be valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DurationError {
    /// Nothing but white space.
    #[error("empty duration; use e.g. \"90s\", \"10m\", \"1h\", \"3d\"")]
    Empty,
    /// Not a number with a unit.
    #[error("invalid duration {0:?}; use a number with a unit: ms, s, m, h, d, w (e.g. \"90s\", \"10m\", \"1h30m\", \"3d\")")]
    Invalid(String),
    /// Over 100 years.
    #[error("duration {0:?} is too long (at most 100 years)")]
    TooLong(String),
}

/// Parses a human duration into milliseconds. Errors say what would be valid.
pub fn parse(text: &str) -> Result<Millis, DurationError> {
    let t = text.trim();
    if t.is_empty() {
        return Err(DurationError::Empty);
    }
    if let Ok(secs) = t.parse::<u64>() {
        return checked(secs, 1000, text);
    }
    let mut total: Millis = 0;
    let mut num = String::new();
    let mut chars = t.chars().peekable();
    let mut any = false;
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        if c.is_whitespace() {
            continue;
        }
        let mut unit = String::from(c);
        while let Some(&n) = chars.peek() {
            if n.is_ascii_alphabetic() {
                unit.push(n);
                chars.next();
            } else {
                break;
            }
        }
        if num.is_empty() {
            return Err(bad(text));
        }
        let n: u64 = num.parse().map_err(|_| bad(text))?;
        let ms: u64 = match unit.as_str() {
            "ms" => 1,
            "s" | "sec" | "secs" | "second" | "seconds" => 1000,
            "m" | "min" | "mins" | "minute" | "minutes" => 60_000,
            "h" | "hour" | "hours" => 3_600_000,
            "d" | "day" | "days" => 86_400_000,
            "w" | "week" | "weeks" => 7 * 86_400_000,
            _ => return Err(bad(text)),
        };
        total = total
            .checked_add(checked(n, ms, text)?)
            .ok_or_else(|| bad(text))?;
        num.clear();
        any = true;
    }
    if !num.is_empty() || !any {
        return Err(bad(text));
    }
    // (the limit holds for the sum too: "36500d36500d" was 200 years, a review found)
    if total > MAX_MS {
        return Err(DurationError::TooLong(text.to_string()));
    }
    Ok(total)
}

/// The longest duration read: 100 years.
const MAX_MS: Millis = 100 * 365 * 86_400_000;

fn checked(n: u64, unit: u64, text: &str) -> Result<Millis, DurationError> {
    n.checked_mul(unit)
        .and_then(|v| Millis::try_from(v).ok())
        .filter(|v| *v <= MAX_MS)
        .ok_or_else(|| DurationError::TooLong(text.to_string()))
}

fn bad(text: &str) -> DurationError {
    DurationError::Invalid(text.to_string())
}

/// Formats milliseconds as a compact human duration (`1h30m`, `45s`).
pub fn format(ms: Millis) -> String {
    if ms <= 0 {
        return "0s".into();
    }
    let mut s = ms / 1000;
    if s == 0 {
        return format!("{ms}ms");
    }
    let mut out = String::new();
    for (unit, len) in [("d", 86_400), ("h", 3600), ("m", 60), ("s", 1)] {
        if s >= len {
            out.push_str(&format!("{}{unit}", s / len));
            s %= len;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units() {
        assert_eq!(parse("90s"), Ok(90_000));
        assert_eq!(parse("10m"), Ok(600_000));
        assert_eq!(parse("1h"), Ok(3_600_000));
        assert_eq!(parse("3d"), Ok(3 * 86_400_000));
        assert_eq!(parse("1h30m"), Ok(5_400_000));
        assert_eq!(parse("600"), Ok(600_000));
        assert_eq!(parse("250ms"), Ok(250));
    }

    #[test]
    fn rejects_garbage() {
        for t in ["", "10x", "m", "1.5h", "-3s", "10m5"] {
            let e = parse(t).unwrap_err();
            assert!(e.to_string().contains("duration"), "{t}: {e}");
        }
    }

    #[test]
    fn at_most_a_hundred_years_in_all() {
        assert_eq!(parse("36500d"), Ok(MAX_MS));
        for t in ["36500d1s", "36500d36500d", "36501d", "5300w"] {
            assert_eq!(parse(t), Err(DurationError::TooLong(t.into())), "{t}");
        }
    }

    #[test]
    fn formats() {
        assert_eq!(format(5_400_000), "1h30m");
        assert_eq!(format(90_000), "1m30s");
        assert_eq!(format(0), "0s");
    }
}

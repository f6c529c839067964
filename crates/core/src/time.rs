//! Calendar arithmetic for log timestamps, without a clock and without a time-zone database.
//!
//! A [`Stamp`] is what a log line says; [`TimeContext`] supplies what the line does not
//! (the year for classic syslog, the local UTC offset), so conversion stays pure.

use crate::decision::Millis;

/// A timestamp as written in a log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stamp {
    /// Year, when the line gives one.
    pub year: Option<i32>,
    /// Month 1..=12.
    pub month: u8,
    /// Day 1..=31.
    pub day: u8,
    /// Hour 0..=23.
    pub hour: u8,
    /// Minute 0..=59.
    pub minute: u8,
    /// Second 0..=60.
    pub second: u8,
    /// Milliseconds 0..=999.
    pub millis: u16,
    /// Offset from UTC in seconds, when the line gives one.
    pub offset: Option<i32>,
}

/// What a line's timestamp leaves out: the current time and the local UTC offset.
#[derive(Debug, Clone, Copy)]
pub struct TimeContext {
    /// The current time (used to infer a missing year).
    pub now: Millis,
    /// Local offset from UTC in seconds, for stamps without a zone: the one in force now.
    pub local_offset: i32,
    /// The local zone's changes of offset (daylight saving time) over the time a log read
    /// after the fact may cover (`test`, `replay`): a stamp without a zone takes the offset
    /// in force at its own time, not now's. `None`: `local_offset` for every stamp (the
    /// daemon, whose lines are of now).
    pub zone: Option<&'static ZoneChanges>,
}

impl PartialEq for TimeContext {
    fn eq(&self, o: &Self) -> bool {
        // (the zone by identity: one per process, and this is asked on every line)
        self.now == o.now
            && self.local_offset == o.local_offset
            && match (self.zone, o.zone) {
                (None, None) => true,
                (Some(a), Some(b)) => std::ptr::eq(a, b),
                _ => false,
            }
    }
}

impl Eq for TimeContext {}

/// The local zone's offsets over a span of time: `before` until the first change, then
/// each change's offset from its instant on. Built by the shell from the system's zone
/// (the core reads neither a clock nor a zone file).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ZoneChanges {
    /// The offset (seconds east of UTC) before the first change.
    pub before: i32,
    /// (instant of the change in UTC milliseconds, offset from then on), oldest first.
    pub changes: Vec<(Millis, i32)>,
}

impl ZoneChanges {
    /// The offset in force at the local wall-clock time `local` (milliseconds since the
    /// epoch as if the wall clock were UTC). In the hour repeated when clocks go back, the
    /// earlier of the two; in the hour skipped when they go forward (no such local time),
    /// the offset before the change.
    pub fn offset_at_local(&self, local: Millis) -> i32 {
        let mut prev = self.before;
        let mut from = Millis::MIN;
        for &(at, off) in &self.changes {
            // the period [from, at) with offset `prev`
            let utc = local - i64::from(prev) * 1000;
            if utc >= from && utc < at {
                return prev;
            }
            // the skipped hour: before the change by `prev`, after it by `off`
            if utc >= at && local - i64::from(off) * 1000 < at {
                return prev;
            }
            (prev, from) = (off, at);
        }
        prev
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
pub fn days_from_civil(y: i32, m: u8, d: u8) -> i64 {
    let y = i64::from(y) - i64::from(m <= 2);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Calendar date (year, month, day) of a day number since 1970-01-01.
pub fn civil_from_days(z: i64) -> (i32, u8, u8) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u8;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
    ((y + i64::from(m <= 2)) as i32, m, d)
}

impl Stamp {
    fn to_millis_in(self, year: i32, offset: i32) -> Millis {
        let days = days_from_civil(year, self.month, self.day);
        let secs = days * 86_400
            + i64::from(self.hour) * 3600
            + i64::from(self.minute) * 60
            + i64::from(self.second)
            - i64::from(offset);
        secs * 1000 + i64::from(self.millis)
    }

    /// Converts to milliseconds since the epoch. A year-less stamp takes the year of
    /// `ctx.now`; if that puts it more than two days in the future, it belongs to the
    /// previous year (a December line read in January). Up to two days ahead is a clock or
    /// zone error (UTC+14 written, UTC-12 read: 26 hours), not last year's line: the daemon
    /// counts such a line at now, and never takes it for a stale one (`jail::STALE_AFTER`).
    /// The same holds across New Year: a January line read on December 31 up to two days
    /// before it is of the next year (a sender ahead of the reader), not of last January.
    pub fn to_millis(self, ctx: &TimeContext) -> Millis {
        let t = self.to_millis_at(ctx, self.offset.unwrap_or(ctx.local_offset));
        match (self.offset, ctx.zone) {
            // no zone on the line: the offset in force at the line's own time
            (None, Some(z)) => {
                let o = z.offset_at_local(t + i64::from(ctx.local_offset) * 1000);
                t + i64::from(ctx.local_offset - o) * 1000
            }
            _ => t,
        }
    }

    /// [`Stamp::to_millis`] with `offset` for a stamp without a zone of its own.
    fn to_millis_at(self, ctx: &TimeContext, offset: i32) -> Millis {
        match self.year {
            Some(y) => self.to_millis_in(y, offset),
            None => {
                let (now_year, _, _) =
                    civil_from_days((ctx.now + i64::from(offset) * 1000).div_euclid(86_400_000));
                let ahead = ctx.now + 2 * 86_400_000;
                let t = self.to_millis_in(now_year, offset);
                let next = self.to_millis_in(now_year + 1, offset);
                if t > ahead {
                    self.to_millis_in(now_year - 1, offset)
                } else if next <= ahead {
                    next
                } else {
                    t
                }
            }
        }
    }

    /// True when the fields are in range (month 1..=12, day 1..=31, …).
    pub fn is_valid(&self) -> bool {
        (1..=12).contains(&self.month)
            && (1..=31).contains(&self.day)
            && self.hour < 24
            && self.minute < 60
            && self.second <= 60
    }
}

/// Formats milliseconds since the epoch as RFC 3339 in UTC (`2026-11-21T10:00:01Z`, with
/// `.mmm` when there are milliseconds).
pub fn rfc3339(ms: Millis) -> String {
    let secs = ms.div_euclid(1000);
    let frac = ms.rem_euclid(1000);
    let (y, mo, d) = civil_from_days(secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400);
    let (h, mi, s) = (sod / 3600, (sod / 60) % 60, sod % 60);
    if (0..=9999).contains(&y) {
        // (written digit by digit: `replay` and `test --json` write one or two per line
        // out, and the formatting machinery cost several times the rest of a ban's output)
        let mut out = [0u8; 24];
        let digits = |out: &mut [u8], v: i64| {
            let mut v = v;
            for b in out.iter_mut().rev() {
                *b = b'0' + (v % 10) as u8;
                v /= 10;
            }
        };
        digits(&mut out[0..4], i64::from(y));
        out[4] = b'-';
        digits(&mut out[5..7], i64::from(mo));
        out[7] = b'-';
        digits(&mut out[8..10], i64::from(d));
        out[10] = b'T';
        digits(&mut out[11..13], h);
        out[13] = b':';
        digits(&mut out[14..16], mi);
        out[16] = b':';
        digits(&mut out[17..19], s);
        let end = if frac == 0 {
            19
        } else {
            out[19] = b'.';
            digits(&mut out[20..23], frac);
            23
        };
        out[end] = b'Z';
        return String::from_utf8_lossy(&out[..=end]).into_owned();
    }
    if frac == 0 {
        format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
    } else {
        format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{frac:03}Z")
    }
}

/// Reads the digits of a fraction of a second that start at `from`: returns their value in
/// milliseconds (`5` → 500, `123456` → 123) and where they end.
pub(crate) fn fraction(b: &[u8], from: usize) -> (u16, usize) {
    let digits = b.get(from..).unwrap_or_default();
    let n = digits.iter().take_while(|d| d.is_ascii_digit()).count();
    let ms = (0..3).fold(0u16, |ms, k| {
        ms * 10 + digits[..n].get(k).map_or(0, |d| u16::from(d - b'0'))
    });
    (ms, from + n)
}

/// Month number of a three-letter English abbreviation (`Jan` → 1).
pub fn month_from_abbrev(m: &[u8]) -> Option<u8> {
    // Lower-cased and packed into one word. `| 0x20` lower-cases a letter and turns no
    // other byte into one (only upper- and lower-case letters end up in `a..=z`).
    const fn key(m: &[u8; 3]) -> u32 {
        u32::from_le_bytes([m[0] | 0x20, m[1] | 0x20, m[2] | 0x20, 0])
    }
    const JAN: u32 = key(b"jan");
    const FEB: u32 = key(b"feb");
    const MAR: u32 = key(b"mar");
    const APR: u32 = key(b"apr");
    const MAY: u32 = key(b"may");
    const JUN: u32 = key(b"jun");
    const JUL: u32 = key(b"jul");
    const AUG: u32 = key(b"aug");
    const SEP: u32 = key(b"sep");
    const OCT: u32 = key(b"oct");
    const NOV: u32 = key(b"nov");
    const DEC: u32 = key(b"dec");
    let m: &[u8; 3] = m.try_into().ok()?;
    let k = key(m);
    // (every classic stamp is looked up: a search tree of the packed keys, not a scan)
    Some(match k {
        JAN => 1,
        FEB => 2,
        MAR => 3,
        APR => 4,
        MAY => 5,
        JUN => 6,
        JUL => 7,
        AUG => 8,
        SEP => 9,
        OCT => 10,
        NOV => 11,
        DEC => 12,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_round_trip() {
        for z in [-1000, 0, 1, 365, 19_000, 20_413, 50_000] {
            let (y, m, d) = civil_from_days(z);
            assert_eq!(days_from_civil(y, m, d), z);
        }
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2026, 11, 21), 20_778);
    }

    #[test]
    fn yearless_stamp_in_future_goes_to_previous_year() {
        // now = 2026-01-02T00:00:00Z
        let now = days_from_civil(2026, 1, 2) * 86_400_000;
        let ctx = TimeContext {
            now,
            local_offset: 0,
            zone: None,
        };
        let dec = Stamp {
            month: 12,
            day: 31,
            hour: 23,
            ..Default::default()
        };
        assert_eq!(rfc3339(dec.to_millis(&ctx)), "2025-12-31T23:00:00Z");
        let jan = Stamp {
            month: 1,
            day: 2,
            hour: 12,
            ..Default::default()
        };
        assert_eq!(rfc3339(jan.to_millis(&ctx)), "2026-01-02T12:00:00Z");
        // 26 hours ahead (written at UTC+14, read at UTC-12): this year's, not last year's
        let ahead = Stamp {
            month: 1,
            day: 3,
            hour: 2,
            ..Default::default()
        };
        assert_eq!(rfc3339(ahead.to_millis(&ctx)), "2026-01-03T02:00:00Z");
    }

    /// Found by a review (libfaketime): read at 2026-12-31T23:30, a line stamped `Jan  1
    /// 00:30` was taken for 2026-01-01 and thrown away as a year old.
    #[test]
    fn yearless_stamp_just_after_new_year_read_before_it_is_next_years() {
        let ctx = TimeContext {
            now: days_from_civil(2026, 12, 31) * 86_400_000 + (23 * 60 + 30) * 60_000,
            local_offset: 0,
            zone: None,
        };
        let at = |month, day, hour| {
            let s = Stamp {
                month,
                day,
                hour,
                minute: 30,
                ..Default::default()
            };
            rfc3339(s.to_millis(&ctx))
        };
        assert_eq!(at(1, 1, 0), "2027-01-01T00:30:00Z");
        // up to two days ahead
        assert_eq!(at(1, 2, 23), "2027-01-02T23:30:00Z");
        // further: last January's
        assert_eq!(at(1, 3, 0), "2026-01-03T00:30:00Z");
        assert_eq!(at(12, 31, 22), "2026-12-31T22:30:00Z");
    }

    /// Europe/Berlin in 2026: +1, +2 from 2026-03-29T01:00Z, +1 from 2026-10-25T01:00Z.
    fn berlin() -> &'static ZoneChanges {
        let at = |m, d| days_from_civil(2026, m, d) * 86_400_000 + 3_600_000;
        Box::leak(Box::new(ZoneChanges {
            before: 3600,
            changes: vec![(at(3, 29), 7200), (at(10, 25), 3600)],
        }))
    }

    #[test]
    fn a_stamp_without_zone_takes_the_offset_of_its_own_time() {
        let z = berlin();
        // read in December (+1 now)
        let ctx = TimeContext {
            now: days_from_civil(2026, 12, 6) * 86_400_000,
            local_offset: 3600,
            zone: Some(z),
        };
        let at = |month, day, hour, minute| {
            let s = Stamp {
                month,
                day,
                hour,
                minute,
                ..Default::default()
            };
            rfc3339(s.to_millis(&ctx))
        };
        assert_eq!(at(7, 10, 12, 0), "2026-07-10T10:00:00Z", "summer: +2");
        assert_eq!(at(1, 10, 12, 0), "2026-01-10T11:00:00Z", "winter: +1");
        assert_eq!(at(11, 21, 10, 0), "2026-11-21T09:00:00Z");
        // the spring change: 01:59 is +1, 03:00 is +2, and 02:30 (no such time) +1
        assert_eq!(at(3, 29, 1, 59), "2026-03-29T00:59:00Z");
        assert_eq!(at(3, 29, 3, 0), "2026-03-29T01:00:00Z");
        assert_eq!(at(3, 29, 2, 30), "2026-03-29T01:30:00Z");
        // the autumn change: 02:30 comes twice; the first (+2) is taken; 03:00 is +1
        assert_eq!(at(10, 25, 1, 59), "2026-10-24T23:59:00Z");
        assert_eq!(at(10, 25, 2, 30), "2026-10-25T00:30:00Z");
        assert_eq!(at(10, 25, 3, 0), "2026-10-25T02:00:00Z");
        // a stamp with its own zone keeps it
        let own = Stamp {
            year: Some(2026),
            month: 7,
            day: 10,
            hour: 12,
            offset: Some(0),
            ..Default::default()
        };
        assert_eq!(rfc3339(own.to_millis(&ctx)), "2026-07-10T12:00:00Z");
        // no zone: now's offset for every stamp, as before
        let flat = TimeContext { zone: None, ..ctx };
        let july = Stamp {
            month: 7,
            day: 10,
            hour: 12,
            ..Default::default()
        };
        assert_eq!(rfc3339(july.to_millis(&flat)), "2026-07-10T11:00:00Z");
        // contexts with the same zone are equal (by identity: one per process)
        assert_eq!(ctx, TimeContext { ..ctx });
        assert_ne!(ctx, flat);
    }

    #[test]
    fn offsets_apply() {
        let ctx = TimeContext {
            now: 0,
            local_offset: 3600,
            zone: None,
        };
        let s = Stamp {
            year: Some(2026),
            month: 11,
            day: 21,
            hour: 10,
            offset: Some(3600),
            millis: 123,
            ..Default::default()
        };
        assert_eq!(rfc3339(s.to_millis(&ctx)), "2026-11-21T09:00:00.123Z");
        let local = Stamp { offset: None, ..s };
        assert_eq!(local.to_millis(&ctx), s.to_millis(&ctx));
    }
}

/// Parses `text` with a strftime-like `format` (subset: `%Y %y %m %d %e %H %M %S %b %f %z
/// %s %T %%`; any other character must match itself). Used for programs that write their
/// own log files (`2026/11/21 10:00:01`, `21/Nov/2026:10:00:01 +0000`, …).
pub fn parse_with_format(format: &str, text: &[u8]) -> Option<Stamp> {
    let f = format.as_bytes();
    let mut st = Stamp {
        month: 1,
        day: 1,
        ..Default::default()
    };
    let (mut i, mut j) = (0, 0);
    let num = |t: &[u8], j: &mut usize, max: usize| -> Option<u32> {
        if t.get(*j) == Some(&b' ') {
            *j += 1;
        }
        let s = *j;
        while *j < t.len() && *j - s < max && t[*j].is_ascii_digit() {
            *j += 1;
        }
        (s != *j).then(|| {
            t[s..*j]
                .iter()
                .fold(0u32, |a, d| a * 10 + u32::from(d - b'0'))
        })
    };
    while i < f.len() {
        if f[i] != b'%' {
            if text.get(j) != Some(&f[i]) {
                return None;
            }
            i += 1;
            j += 1;
            continue;
        }
        let c = *f.get(i + 1)?;
        i += 2;
        match c {
            b'Y' => st.year = Some(num(text, &mut j, 4)? as i32),
            b'y' => st.year = Some(2000 + num(text, &mut j, 2)? as i32),
            b'm' => st.month = num(text, &mut j, 2)? as u8,
            b'd' | b'e' => st.day = num(text, &mut j, 2)? as u8,
            b'H' => st.hour = num(text, &mut j, 2)? as u8,
            b'M' => st.minute = num(text, &mut j, 2)? as u8,
            b'S' => st.second = num(text, &mut j, 2)? as u8,
            b'T' => {
                st.hour = num(text, &mut j, 2)? as u8;
                (text.get(j) == Some(&b':')).then_some(())?;
                j += 1;
                st.minute = num(text, &mut j, 2)? as u8;
                (text.get(j) == Some(&b':')).then_some(())?;
                j += 1;
                st.second = num(text, &mut j, 2)? as u8;
            }
            b'b' => {
                st.month = month_from_abbrev(text.get(j..j + 3)?)?;
                j += 3;
            }
            b'f' => (st.millis, j) = fraction(text, j),
            b'z' => {
                if text.get(j) == Some(&b'Z') {
                    st.offset = Some(0);
                    j += 1;
                } else {
                    let sign = match text.get(j)? {
                        b'+' => 1,
                        b'-' => -1,
                        _ => return None,
                    };
                    j += 1;
                    let h = num(text, &mut j, 2)? as i32;
                    if text.get(j) == Some(&b':') {
                        j += 1;
                    }
                    let m = num(text, &mut j, 2)? as i32;
                    // (real offsets are -12:00 to +14:00; +99:99 is no stamp)
                    if h > 14 || m > 59 {
                        return None;
                    }
                    st.offset = Some(sign * (h * 3600 + m * 60));
                }
            }
            b's' => {
                let s = j;
                while j < text.len() && text[j].is_ascii_digit() {
                    j += 1;
                }
                let secs: i64 = std::str::from_utf8(&text[s..j]).ok()?.parse().ok()?;
                let days = secs.div_euclid(86_400);
                let (y, mo, d) = civil_from_days(days);
                let sod = secs.rem_euclid(86_400);
                st = Stamp {
                    year: Some(y),
                    month: mo,
                    day: d,
                    hour: (sod / 3600) as u8,
                    minute: ((sod / 60) % 60) as u8,
                    second: (sod % 60) as u8,
                    millis: 0,
                    offset: Some(0),
                };
            }
            b'%' => {
                (text.get(j) == Some(&b'%')).then_some(())?;
                j += 1;
            }
            _ => return None,
        }
    }
    st.is_valid().then_some(st)
}

/// A time format with a directive this parser does not support.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unsupported directive %{directive} in time format {format:?}; supported: %Y %y %m %d %e %H %M %S %T %b %f %z %s %%")]
pub struct TimeFormatError {
    /// The character after `%` (a space at the end of the format).
    pub directive: char,
    /// The format.
    pub format: String,
}

/// Checks a time format for unsupported directives; the error names the bad one.
pub fn check_format(format: &str) -> Result<(), TimeFormatError> {
    let f = format.as_bytes();
    let mut i = 0;
    while i < f.len() {
        if f[i] == b'%' {
            match f.get(i + 1) {
                Some(
                    b'Y' | b'y' | b'm' | b'd' | b'e' | b'H' | b'M' | b'S' | b'T' | b'b' | b'f'
                    | b'z' | b's' | b'%',
                ) => {}
                other => {
                    return Err(TimeFormatError {
                        directive: other.map(|&b| b as char).unwrap_or(' '),
                        format: format.to_string(),
                    })
                }
            }
            i += 2;
        } else {
            i += 1;
        }
    }
    Ok(())
}

#[cfg(test)]
mod format_tests {
    use super::*;

    #[test]
    fn common_formats() {
        let ctx = TimeContext {
            now: 0,
            local_offset: 0,
            zone: None,
        };
        let s = parse_with_format("%d/%b/%Y:%H:%M:%S %z", b"21/Nov/2026:10:00:01 +0100").unwrap();
        assert_eq!(rfc3339(s.to_millis(&ctx)), "2026-11-21T09:00:01Z");
        let s = parse_with_format("%Y/%m/%d %H:%M:%S", b"2026/11/21 10:00:01").unwrap();
        assert_eq!(rfc3339(s.to_millis(&ctx)), "2026-11-21T10:00:01Z");
        let s = parse_with_format("%Y-%m-%d %T.%f", b"2026-11-21 10:00:01.250").unwrap();
        assert_eq!(rfc3339(s.to_millis(&ctx)), "2026-11-21T10:00:01.250Z");
        let s = parse_with_format("%s", b"1795000000").unwrap();
        assert_eq!(s.to_millis(&ctx), 1_795_000_000_000);
        assert!(parse_with_format("%Y-%m-%d", b"2026-13-01").is_none());
        assert!(check_format("%Q").is_err());
    }

    /// What the formatting machinery writes for `ms`.
    fn formatted(ms: Millis) -> String {
        let secs = ms.div_euclid(1000);
        let frac = ms.rem_euclid(1000);
        let (y, mo, d) = civil_from_days(secs.div_euclid(86_400));
        let sod = secs.rem_euclid(86_400);
        let (h, mi, s) = (sod / 3600, (sod / 60) % 60, sod % 60);
        if frac == 0 {
            format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
        } else {
            format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{frac:03}Z")
        }
    }

    proptest::proptest! {
        /// The digit-by-digit writing gives what the formatting machinery gives: years
        /// 0 to 9999 (written digit by digit), and any time at all (years outside that
        /// range take the formatting path).
        #[test]
        fn rfc3339_of_four_digit_years(ms in -62_167_219_200_000i64..253_402_300_800_000) {
            proptest::prop_assert_eq!(rfc3339(ms), formatted(ms));
        }

        #[test]
        fn rfc3339_of_any_time(ms in i64::MIN / 1000..i64::MAX / 1000) {
            proptest::prop_assert_eq!(rfc3339(ms), formatted(ms));
        }
    }
}

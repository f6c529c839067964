//! Splits a log line into its prefix (time, host, program, pid) and the program's message.
//!
//! Recognised prefixes:
//! * classic syslog (RFC 3164 as written by rsyslog/syslog-ng): `Nov 21 10:00:01 host sshd[123]: msg`
//! * ISO-8601 / RFC 3339 (rsyslog high precision, `journalctl -o short-iso`):
//!   `2026-11-21T10:00:01.123456+01:00 host sshd[123]: msg`
//! * RFC 5424: `<34>1 2026-11-21T10:00:01.003Z host sshd 123 - - msg`
//! * bare messages (journald's MESSAGE field, `sshd -E` files, a program's own log file):
//!   the whole line is the message and there is no program.
//!
//! A `<PRI>` in front of the classic and ISO forms is skipped. Parsing never allocates.

use crate::time::{fraction, month_from_abbrev, Stamp};

/// A line split into prefix fields and message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parsed<'a> {
    /// The timestamp of the prefix, if any.
    pub stamp: Option<Stamp>,
    /// The host name field of the prefix.
    pub host: Option<&'a [u8]>,
    /// The program (syslog tag / APP-NAME) without the pid.
    pub program: Option<&'a [u8]>,
    /// The process id from `prog[pid]`, 0 when absent.
    pub pid: u32,
    /// The program's message: everything after the prefix (the whole line when bare).
    pub message: &'a [u8],
}

/// Parses one line (without its trailing newline).
pub fn parse(line: &[u8]) -> Parsed<'_> {
    let line = trim_end(line);
    let body = skip_pri(line);
    if let Some(p) = classic(body) {
        return p;
    }
    if let Some(p) = rfc5424(line) {
        return p;
    }
    if let Some(p) = iso(body) {
        return p;
    }
    Parsed {
        stamp: None,
        host: None,
        program: None,
        pid: 0,
        message: line,
    }
}

fn trim_end(mut l: &[u8]) -> &[u8] {
    while let [rest @ .., b'\r' | b'\n'] = l {
        l = rest;
    }
    l
}

fn skip_pri(l: &[u8]) -> &[u8] {
    if l.first() == Some(&b'<') {
        if let Some(end) = l.iter().take(5).position(|&b| b == b'>') {
            if end > 1 && l[1..end].iter().all(u8::is_ascii_digit) {
                return &l[end + 1..];
            }
        }
    }
    l
}

fn digits(b: &[u8]) -> Option<u32> {
    if b.is_empty() || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(b.iter().fold(0u32, |a, &d| {
        a.wrapping_mul(10).wrapping_add(u32::from(d - b'0'))
    }))
}

/// `HH:MM:SS` at the start of `b` (one 8-byte word: its colons and six digits checked at
/// once).
fn hms(b: &[u8]) -> Option<(u8, u8, u8)> {
    const COLONS: u64 = 0x0000_ff00_00ff_0000; // bytes 2 and 5
    const HIGH: u64 = 0xf0f0_00f0_f000_f0f0; // high nibbles of the digit bytes
    const ZEROS: u64 = 0x3030_0030_3000_3030; // '0' in each digit byte
    const SIXES: u64 = 0x0606_0006_0600_0606;
    let w = u64::from_le_bytes(b.get(..8)?.try_into().ok()?);
    let x = w & !COLONS;
    // ':' at 2 and 5; each digit byte 0x30..=0x39 (adding 6 to 0x3a..=0x3f would carry
    // into the high nibble)
    if w & COLONS != 0x0000_3a00_003a_0000 || x & HIGH != ZEROS || (x + SIXES) & HIGH != ZEROS {
        return None;
    }
    let d = (x - ZEROS).to_le_bytes();
    Some((d[0] * 10 + d[1], d[3] * 10 + d[4], d[6] * 10 + d[7]))
}

/// Classic `Mmm dd HH:MM:SS host tag: msg` (day may be space padded).
fn classic(l: &[u8]) -> Option<Parsed<'_>> {
    if l.len() < 16 || l[3] != b' ' {
        return None;
    }
    let month = month_from_abbrev(&l[0..3])?;
    let mut i = 4;
    if l[i] == b' ' {
        i += 1;
    }
    let dstart = i;
    while i < l.len() && l[i].is_ascii_digit() && i - dstart < 2 {
        i += 1;
    }
    let day = digits(&l[dstart..i])? as u8;
    if l.get(i) != Some(&b' ') {
        return None;
    }
    i += 1;
    let (hour, minute, second) = hms(l.get(i..)?)?;
    i += 8;
    let mut millis = 0;
    if l.get(i) == Some(&b'.') {
        // some syslog daemons add fractional seconds to the classic stamp
        (millis, i) = fraction(l, i + 1);
    }
    if l.get(i) != Some(&b' ') {
        return None;
    }
    let stamp = Stamp {
        year: None,
        month,
        day,
        hour,
        minute,
        second,
        millis,
        offset: None,
    };
    if !stamp.is_valid() {
        return None;
    }
    host_and_tag(stamp, &l[i + 1..])
}

/// `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)` at the start of `l`; returns the stamp and its length.
fn iso_stamp(l: &[u8]) -> Option<(Stamp, usize)> {
    if l.len() < 19 || l[4] != b'-' || l[7] != b'-' || (l[10] != b'T' && l[10] != b' ') {
        return None;
    }
    let year = digits(&l[0..4])? as i32;
    let month = digits(&l[5..7])? as u8;
    let day = digits(&l[8..10])? as u8;
    let (hour, minute, second) = hms(&l[11..])?;
    let mut i = 19;
    let mut millis = 0;
    if l.get(i) == Some(&b'.') || l.get(i) == Some(&b',') {
        (millis, i) = fraction(l, i + 1);
    }
    let offset = match l.get(i) {
        Some(b'Z') | Some(b'z') => {
            i += 1;
            Some(0)
        }
        Some(&sign @ (b'+' | b'-')) if l.len() >= i + 5 => {
            // +HH:MM or +HHMM
            let colon = usize::from(l[i + 3] == b':');
            if l.len() < i + 5 + colon {
                return None;
            }
            let h = digits(&l[i + 1..i + 3])? as i32;
            let m = digits(&l[i + 3 + colon..i + 5 + colon])? as i32;
            i += 5 + colon;
            let o = h * 3600 + m * 60;
            Some(if sign == b'-' { -o } else { o })
        }
        _ => None,
    };
    let stamp = Stamp {
        year: Some(year),
        month,
        day,
        hour,
        minute,
        second,
        millis,
        offset,
    };
    stamp.is_valid().then_some((stamp, i))
}

fn iso(l: &[u8]) -> Option<Parsed<'_>> {
    let (stamp, n) = iso_stamp(l)?;
    if l.get(n) != Some(&b' ') {
        return None;
    }
    host_and_tag(stamp, &l[n + 1..])
}

/// `host tag: msg` where tag is `prog[pid]` or `prog`.
fn host_and_tag(stamp: Stamp, rest: &[u8]) -> Option<Parsed<'_>> {
    // (plain loops: the fields are short, and a vector search's setup costs more)
    let sp = rest.iter().position(|&b| b == b' ')?;
    let host = &rest[..sp];
    let rest = &rest[sp + 1..];
    // The tag ends at the first ": " (or ':' at end); it has no spaces and at most 64 bytes.
    let mut colon = None;
    let mut open = None;
    for (i, &b) in rest.iter().enumerate().take(65) {
        match b {
            b':' => {
                colon = Some(i);
                break;
            }
            b' ' => return None,
            b'[' if open.is_none() => open = Some(i),
            _ => {}
        }
    }
    let colon = colon?;
    let tag = &rest[..colon];
    if tag.is_empty() {
        return None;
    }
    let message = match rest.get(colon + 1) {
        Some(b' ') => &rest[colon + 2..],
        None => &rest[colon + 1..],
        Some(_) => return None,
    };
    let (program, pid) = match open {
        Some(b) if tag.last() == Some(&b']') => (&tag[..b], digits(&tag[b + 1..tag.len() - 1])?),
        Some(_) => return None,
        None => (tag, 0),
    };
    Some(Parsed {
        stamp: Some(stamp),
        host: Some(host),
        program: Some(program),
        pid,
        message,
    })
}

/// RFC 5424: `<PRI>1 TIMESTAMP HOST APP PROCID MSGID SD MSG`.
fn rfc5424(l: &[u8]) -> Option<Parsed<'_>> {
    let after_pri = skip_pri(l);
    if after_pri.len() == l.len() {
        return None; // RFC 5424 always has PRI
    }
    let rest = after_pri.strip_prefix(b"1 ")?;
    let mut fields = rest.splitn(6, |&b| b == b' ');
    let ts = fields.next()?;
    let host = fields.next()?;
    let app = fields.next()?;
    let procid = fields.next()?;
    let _msgid = fields.next()?;
    let tail = fields.next().unwrap_or(b"");
    let stamp = if ts == b"-" {
        None
    } else {
        Some(iso_stamp(ts)?.0)
    };
    // structured data: "-" or one or more [..] elements (with quoted values)
    let message = if let Some(m) = tail.strip_prefix(b"-") {
        m
    } else if tail.first() == Some(&b'[') {
        skip_sd(tail)?
    } else {
        return None;
    };
    let message = message.strip_prefix(b" ").unwrap_or(message);
    let message = message
        .strip_prefix("\u{feff}".as_bytes())
        .unwrap_or(message);
    let nil = |f: &'_ [u8]| -> bool { f == b"-" };
    Some(Parsed {
        stamp,
        host: (!nil(host)).then_some(host),
        program: (!nil(app)).then_some(app),
        pid: digits(procid).unwrap_or(0),
        message,
    })
}

fn skip_sd(mut t: &[u8]) -> Option<&[u8]> {
    while t.first() == Some(&b'[') {
        let mut i = 1;
        let mut in_quote = false;
        loop {
            let b = *t.get(i)?;
            match b {
                b'\\' if in_quote => i += 1,
                b'"' => in_quote = !in_quote,
                b']' if !in_quote => break,
                _ => {}
            }
            i += 1;
        }
        t = &t[i + 1..];
    }
    Some(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(b: Option<&[u8]>) -> Option<&str> {
        b.map(|x| std::str::from_utf8(x).unwrap())
    }

    #[test]
    fn classic_syslog() {
        let p = parse(b"Nov 21 10:00:01 web1 sshd[123]: Failed password for root from 203.0.113.5 port 22 ssh2");
        assert_eq!(s(p.program), Some("sshd"));
        assert_eq!(s(p.host), Some("web1"));
        assert_eq!(p.pid, 123);
        assert!(p.message.starts_with(b"Failed password"));
        let st = p.stamp.unwrap();
        assert_eq!(
            (st.month, st.day, st.hour, st.minute, st.second),
            (11, 21, 10, 0, 1)
        );
        assert_eq!(st.year, None);
    }

    #[test]
    fn classic_padded_and_single_digit_day() {
        let p =
            parse(b"Mar  7 02:37:29 blinkeye sshd[8559]: User root from 61.178.20.170 not allowed");
        assert_eq!(p.stamp.unwrap().day, 7);
        assert_eq!(p.pid, 8559);
        let p = parse(b"Mar 7 02:37:29 blinkeye sshd[8559]: x");
        assert_eq!(p.stamp.unwrap().day, 7);
        assert_eq!(p.message, b"x");
    }

    #[test]
    fn classic_without_pid_and_with_pri() {
        let p = parse(b"<38>Nov 21 10:00:01 host CRON: hello");
        assert_eq!(s(p.program), Some("CRON"));
        assert_eq!(p.pid, 0);
        assert_eq!(p.message, b"hello");
    }

    #[test]
    fn iso_high_precision() {
        let p = parse(b"2026-11-21T10:00:01.123456+01:00 host sshd-session[42]: Invalid user x from 2001:db8::1 port 5\r");
        let st = p.stamp.unwrap();
        assert_eq!(st.year, Some(2026));
        assert_eq!(st.millis, 123);
        assert_eq!(st.offset, Some(3600));
        assert_eq!(s(p.program), Some("sshd-session"));
        assert_eq!(p.message, b"Invalid user x from 2001:db8::1 port 5");
    }

    #[test]
    fn rfc5424_with_and_without_sd() {
        let p = parse(b"<34>1 2026-11-21T10:00:01.003Z mymachine sshd 4321 - - Failed password for x from 192.0.2.1 port 2 ssh2");
        assert_eq!(s(p.program), Some("sshd"));
        assert_eq!(p.pid, 4321);
        assert_eq!(p.stamp.unwrap().offset, Some(0));
        assert!(p.message.starts_with(b"Failed"));
        let p = parse(br#"<165>1 2026-11-21T10:00:01Z h app - ID47 [exampleSDID@32473 iut="3" eventSource="App]x"] msg here"#);
        assert_eq!(p.message, b"msg here");
        assert_eq!(s(p.program), Some("app"));
    }

    #[test]
    fn iso_offsets_with_and_without_colon() {
        for (l, off) in [
            (&b"2026-11-21T10:00:01+0130 h p[1]: m"[..], 5400),
            (b"2026-11-21T10:00:01-05:00 h p[1]: m", -18000),
            (b"2026-11-21T10:00:01Z h p[1]: m", 0),
        ] {
            assert_eq!(parse(l).stamp.unwrap().offset, Some(off));
        }
        assert_eq!(parse(b"2026-11-21T10:00:01+01 h p[1]: m").program, None);
    }

    #[test]
    fn bare_message() {
        let p = parse(b"Failed password for root from 203.0.113.5 port 22 ssh2\r");
        assert_eq!(p.program, None);
        assert_eq!(p.stamp, None);
        assert_eq!(
            p.message,
            b"Failed password for root from 203.0.113.5 port 22 ssh2"
        );
    }

    #[test]
    fn garbage_is_bare() {
        for l in [
            &b"Nov 99 10:00:01 h p: m"[..],
            b"Foo 21 10:00:01 h p: m",
            b"Nov 21 10:00 h p: m",
            b"",
        ] {
            let p = parse(l);
            assert_eq!(p.program, None, "{:?}", String::from_utf8_lossy(l));
        }
    }

    proptest::proptest! {
        #[test]
        fn hms_reads_what_a_plain_parser_reads(t in "[0-9:/ a]{0,3}[0-9]{0,2}[:;][0-9/]{0,2}[:9][0-9]{0,3}") {
            let b = t.as_bytes();
            let plain = (|| {
                let b = b.get(..8)?;
                if b[2] != b':' || b[5] != b':' {
                    return None;
                }
                let two = |i: usize| {
                    (b[i].is_ascii_digit() && b[i + 1].is_ascii_digit())
                        .then(|| (b[i] - b'0') * 10 + (b[i + 1] - b'0'))
                };
                Some((two(0)?, two(3)?, two(6)?))
            })();
            proptest::prop_assert_eq!(hms(b), plain, "{}", t);
        }
    }
}

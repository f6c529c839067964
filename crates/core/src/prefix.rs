//! Splits a log line into its prefix (time, host, program, pid) and the program's message.
//!
//! Recognised prefixes (README, "Log prefixes read", shows one line of each):
//! * classic syslog (RFC 3164 as rsyslog, syslog-ng, sysklogd and BusyBox write it), with
//!   or without `<PRI>`, with or without the host, padded or unpadded day, optional
//!   fraction of a second (`journalctl -o short-precise`):
//!   `Nov 21 10:00:01 host sshd[123]: msg`, `Nov  1 10:00:01 sshd[123]: msg`;
//! * the tag as `prog[pid]:`, `prog:` or rsyslog's `prog[pid]` without the colon;
//!   Solaris' `[ID 800047 auth.info]` message id after the tag is skipped;
//! * BusyBox syslogd's `facility.level` (or `<PRI>`) between the host and the tag
//!   (`timestamp_and_log` in busybox `sysklogd/syslogd.c`), FreeBSD syslogd `-v`/`-vv`'s
//!   `<4.6>`/`<auth.info>` before the host (`fprintlog` in `usr.sbin/syslogd`);
//! * ISO-8601 / RFC 3339 stamps of any precision with `Z`, `±hh:mm` or `±hhmm` (rsyslog
//!   high precision, syslog-ng `ts_format(iso)`, `journalctl -o short-iso`):
//!   `2026-11-21T10:00:01.123456+01:00 host sshd[123]: msg`;
//! * RFC 5424, with or without `<PRI>` (sysklogd files: neither `<PRI>` nor the version),
//!   with structured data:
//!   `<34>1 2026-11-21T10:00:01.003Z host sshd 123 - - msg`;
//! * syslog-ng `ts_format(unix)` and `journalctl -o short-unix` (seconds since the epoch):
//!   `1796322113.544 host sshd[123]: msg`;
//! * `journalctl -o short-full` (weekday, date, time, zone name):
//!   `Sat 2026-11-21 10:00:01 CET host sshd[123]: msg`;
//! * svlogd's `-t` TAI64N label (`@4000…`) and `-tt`/`-ttt` stamps, s6-log's `T` stamp and
//!   the local stamp `tai64nlocal` puts in place of a label, and socklog's
//!   `facility.level: ` in front of the syslog line it received;
//! * macOS `log show` (default, `--style syslog` and `--style compact`);
//! * container runtimes: CRI (`<RFC3339Nano> stdout|stderr F|P <line>`) and Docker's
//!   json-file driver (`{"log":"<line>\n","stream":"stderr","time":"…"}`), whose inner line
//!   is read again for a syslog prefix;
//! * bare messages (journald's MESSAGE field, `sshd -E` files, a program's own log file):
//!   the whole line is the message and there is no program.
//!
//! The host field is only ever the host: the address a filter reports always comes from
//! the message, so a host written as an address is never taken for the client.
//!
//! Docker's `log` field is handed on as JSON text, escapes and all: a `\n` or `\u001b`
//! inside stays two or six characters and never splits the line (the only escape removed
//! is the newline that ends the record). Parsing never allocates.

use crate::time::{civil_from_days, fraction, month_from_abbrev, Stamp};

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
    /// How many occurrences of `message` the line stands for: N for rsyslog's repeated-message
    /// reduction (`message repeated N times: [ MSG]`, whose MSG is then `message`), else 1.
    pub repeat: u32,
}

/// A [`Parsed`] as positions in its line, without the borrow: a line split by one thread
/// and matched by another (`portcullis test` splits each chunk of a file once, in the
/// thread that read it, and each session's thread matches its lines from these).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spans {
    stamp: Option<Stamp>,
    host: Option<(u32, u32)>,
    program: Option<(u32, u32)>,
    pid: u32,
    message: (u32, u32),
    repeat: u32,
}

impl Spans {
    /// The positions of `p`'s fields in `line`, the line `p` was parsed from; `None` when a
    /// field is not a part of `line` (or `line` has 4 GiB or more).
    pub fn of(line: &[u8], p: &Parsed<'_>) -> Option<Spans> {
        u32::try_from(line.len()).ok()?;
        let span = |f: &[u8]| {
            // (the distance of two addresses: no pointer arithmetic across objects)
            let start = (f.as_ptr() as usize).wrapping_sub(line.as_ptr() as usize);
            (start <= line.len() && f.len() <= line.len() - start)
                .then(|| (start as u32, (start + f.len()) as u32))
        };
        let field = |f: Option<&[u8]>| match f {
            Some(f) => span(f).map(Some),
            None => Some(None),
        };
        Some(Spans {
            stamp: p.stamp,
            host: field(p.host)?,
            program: field(p.program)?,
            pid: p.pid,
            message: span(p.message)?,
            repeat: p.repeat,
        })
    }

    /// The [`Parsed`] of `line`, which must be the line these spans were taken of.
    pub fn parsed<'a>(&self, line: &'a [u8]) -> Parsed<'a> {
        let at = |(s, e): (u32, u32)| &line[s as usize..e as usize];
        Parsed {
            stamp: self.stamp,
            host: self.host.map(at),
            program: self.program.map(at),
            pid: self.pid,
            message: at(self.message),
            repeat: self.repeat,
        }
    }
}

/// Parses one line (without its trailing newline).
pub fn parse(line: &[u8]) -> Parsed<'_> {
    let mut p = forms(line);
    // (`repeated` takes the message alone: a `&mut p` kept the whole record in memory and
    // made the caller copy it out again, a stall on every line)
    if p.message.first() == Some(&b'm') && p.program.is_some() {
        if let Some((message, n)) = repeated(p.message) {
            (p.message, p.repeat) = (message, n);
        }
    }
    p
}

/// rsyslog's repeated-message reduction (`$RepeatedMsgReduction on`, Ubuntu's default):
/// when one program writes the same message again, rsyslog counts the copies and then writes
/// `message repeated N times: [MSG]` in place of the message (runtime/ratelimit.c
/// `ratelimitGenRepMsg`: `" message repeated %d times: [%.800s]"`, MSG with its leading
/// space, under the original tag): the line stands for N occurrences of MSG, all after the
/// first, which was written on its own. Only the program writes the start of its message, so
/// a client cannot make a line start so; the `]` rsyslog adds is the last byte.
///
/// A message longer than 800 bytes is cut there (`%.800s`) and its end is lost, the program's
/// address with it: a client that writes a long text before the address (a user name of
/// vsftpd's "[USER] FAIL LOGIN: Client "A"", which has no length limit) can make the cut fall
/// right after an address it typed itself, and the cut copy would read as a whole line with
/// that address. So a bracketed text of 800 bytes or more, which may have been cut, is not
/// unwrapped: the line stays `message repeated ...` and no filter reads it.
/// How much of the message rsyslog keeps in its repeated-message line (`%.800s`).
const REPEAT_CUT: usize = 800;

/// The inner message and the count of a repeated-message line's `message`.
#[inline(never)]
fn repeated(message: &[u8]) -> Option<(&[u8], u32)> {
    let rest = message.strip_prefix(b"message repeated ")?;
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    if !(1..=9).contains(&digits) {
        return None;
    }
    let inner = rest[digits..]
        .strip_prefix(b" times: [")
        .and_then(|r| r.strip_suffix(b"]"))?;
    // (`%.800s` of MSG, its leading space included: 800 bytes may be a cut message)
    if inner.len() >= REPEAT_CUT {
        return None;
    }
    let n = rest[..digits]
        .iter()
        .fold(0u32, |n, d| n * 10 + u32::from(d - b'0'));
    if n == 0 {
        return None;
    }
    Some((inner.strip_prefix(b" ").unwrap_or(inner), n))
}

/// A syslog daemon's own line saying that the line before it in the same file occurred N
/// more times ([`syslogd_repeat`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyslogdRepeat {
    /// The line's own stamp (the time of the last occurrence), if it has one.
    pub stamp: Option<Stamp>,
    /// How many more times the previous line occurred.
    pub n: u32,
}

/// Recognises the line a syslog daemon writes in place of a message repeated in the same
/// output file, which carries no message of its own: the previous line of that file (its
/// `f_prevline`, kept per output file) occurred N more times. Forms, from the daemons' source:
/// * FreeBSD 13+ `fprintlog_successive()` (usr.sbin/syslogd/syslogd.c): `"last message
///   repeated %d times"` logged as program `syslogd` under the local host name (N ≥ 1):
///   `Dec 10 07:13:56 host syslogd: last message repeated 5 times` (RFC 5424 output:
///   `<46>1 … host syslogd - - - last message repeated 5 times`);
/// * NetBSD 5+ `fprintlog()`: the same text as program `syslogd` with its own pid
///   (`include_pid`, N ≥ 2): `Dec 10 07:13:56 host syslogd[412]: last message repeated 5
///   times` (`-o rfc5424`: `… host syslogd 412 - - last message …`);
/// * OpenBSD, FreeBSD up to 12, NetBSD before 5 and sysklogd 1.x `fprintlog()`: the same
///   text right after the previous line's host, no program (N ≥ 2: a single repeat writes
///   the line again): `Dec 10 07:13:56 host last message repeated 5 times`, with FreeBSD
///   `-v`'s `<4.6> ` before the host;
/// * sysklogd 2.x (troglobit/sysklogd `fprintlog_successive()`): `"last message buffered
///   %zu times"` after the previous line's host, no program, in its BSD or RFC 5424 file
///   format (`2026-12-10T07:13:56.000000+01:00 host - - - - last message buffered 5 times`);
/// * macOS syslogd (asl_action.c `_send_repeat_msg`, ctime's `Mmm dd HH:MM:SS`, no host):
///   `Dec 10 07:13:56 --- last message repeated 1 time ---`, and the older bsd_out.c's
///   `Dec 10 07:13:56: --- last message repeated 5 times ---`.
///
/// Only the daemon writes these lines: the text stands where a program's tag stands (or is
/// the message of the tag `syslogd`), and a remote client's text only ever appears inside a
/// program's message, after its tag. (A local process that sends an untagged message to the
/// log socket can write one, as it can write any line with `logger`.) The whole line must be
/// the form: nothing before the host but a stamp, nothing after the count.
pub fn syslogd_repeat(p: &Parsed<'_>) -> Option<SyslogdRepeat> {
    // (every form ends in "times", "time ---" or "times ---": a bare line of another kind
    // stops here)
    if !matches!(p.message.last(), Some(b's' | b'-')) {
        return None;
    }
    match p.program {
        // FreeBSD 13+ (no pid), NetBSD 5+ (syslogd's pid)
        Some(b"syslogd") if p.stamp.is_some() => {
            let n = repeat_text(p.message, b"last message repeated ")?;
            Some(SyslogdRepeat { stamp: p.stamp, n })
        }
        Some(_) => None,
        // sysklogd's RFC 5424 file line: no APP-NAME, the message read
        None if p.stamp.is_some() => {
            let n = repeat_text(p.message, b"last message buffered ")
                .or_else(|| repeat_text(p.message, b"last message repeated "))?;
            Some(SyslogdRepeat { stamp: p.stamp, n })
        }
        // the classic forms: no tag after the host, so the prefix parser left the whole
        // line as the message
        None => bare_repeat(skip_pri(p.message)),
    }
}

/// `PREFIX<count> times` (or `1 time`), the whole of `m`; the count.
fn repeat_text(m: &[u8], prefix: &[u8]) -> Option<u32> {
    let rest = m.strip_prefix(prefix)?;
    let d = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    if !(1..=9).contains(&d) {
        return None;
    }
    let n = digits(&rest[..d])?;
    let unit: &[u8] = if n == 1 { b" time" } else { b" times" };
    // (FreeBSD writes "1 times")
    if !(rest[d..] == *unit || (n == 1 && rest[d..] == *b" times")) || n == 0 {
        return None;
    }
    Some(n)
}

/// The repeat lines a prefix parse leaves whole (see [`syslogd_repeat`]): a classic or ISO
/// stamp, then `[<fac.pri> ]host last message repeated|buffered N times` or macOS'
/// `[:] --- last message repeated N time[s] ---`.
#[inline(never)]
fn bare_repeat(l: &[u8]) -> Option<SyslogdRepeat> {
    // macOS' older `Mmm dd HH:MM:SS: ---` (bsd_out.c): the stamp read with a space in
    // place of its colon
    let (stamp, rest, colon) = if l.get(15) == Some(&b':') && l.get(16) == Some(&b' ') {
        let mut buf = [0u8; 16];
        buf.copy_from_slice(&l[..16]);
        buf[15] = b' ';
        (classic_stamp(&buf)?.0, &l[17..], true)
    } else if let Some((st, rest)) = classic_stamp(l) {
        (st, rest, false)
    } else {
        let (st, n) = iso_stamp(l)?;
        (st, l.get(n + 1..).filter(|_| l[n] == b' ')?, false)
    };
    let done = |n| {
        Some(SyslogdRepeat {
            stamp: Some(stamp),
            n,
        })
    };
    if let Some(mac) = rest.strip_prefix(b"--- ") {
        let m = mac.strip_suffix(b" ---")?;
        return done(repeat_text(m, b"last message repeated ")?);
    }
    if colon {
        return None;
    }
    // FreeBSD -v: `<4.6> ` before the host
    let rest = angle_token(rest).unwrap_or(rest);
    let sp = rest.iter().take(256).position(|&b| b == b' ')?;
    if sp == 0 {
        return None;
    }
    let m = &rest[sp + 1..];
    done(
        repeat_text(m, b"last message repeated ")
            .or_else(|| repeat_text(m, b"last message buffered "))?,
    )
}

/// The prefix forms (everything of [`parse`] but the repeated-message wrapper).
#[inline(always)]
fn forms(line: &[u8]) -> Parsed<'_> {
    let line = trim_end(line);
    match line.first() {
        Some(b'{') => {
            if let Some(p) = docker(line) {
                return p;
            }
        }
        Some(b'@') => {
            if let Some(p) = tai64n(line) {
                return p;
            }
        }
        _ => {}
    }
    syslog(line, true)
}

/// The syslog forms; `outer` is false for the line inside a container, svlogd or socklog
/// record (read once, never as another such record: the depth stays bounded whatever
/// the line).
#[inline(always)]
fn syslog(line: &[u8], outer: bool) -> Parsed<'_> {
    let body = skip_pri(line);
    if let Some(p) = classic(body) {
        return p;
    }
    if let Some(p) = rfc5424(body) {
        return p;
    }
    if let Some(p) = iso(body, outer) {
        return p;
    }
    rare(line, body, outer)
}

/// The forms after the classic, RFC 5424 and ISO ones (out of line: the usual line's
/// `parse` stays as small as it was).
#[inline(never)]
fn rare<'a>(line: &'a [u8], body: &'a [u8], outer: bool) -> Parsed<'a> {
    if body.get(3) == Some(&b' ') {
        if let Some(p) = doubled_host(body) {
            return p;
        }
        if let Some(p) = openwrt(body) {
            return p;
        }
    }
    if let Some(p) = full_date(body) {
        return p;
    }
    if body.get(3) == Some(&b' ') && body.get(8) == Some(&b'-') {
        if let Some(p) = short_full(body) {
            return p;
        }
    }
    if body.first().is_some_and(u8::is_ascii_digit) {
        if let Some(p) = unix_seconds(body) {
            return p;
        }
    }
    if outer {
        if let Some(p) = socklog(body, None) {
            return p;
        }
    }
    bare(None, line)
}

fn bare(stamp: Option<Stamp>, message: &[u8]) -> Parsed<'_> {
    Parsed {
        stamp,
        host: None,
        program: None,
        pid: 0,
        message,
        repeat: 1,
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

/// The decimal number `b` (wrapping on overflow); `None` unless `b` is only digits.
/// (one pass: this reads the pid of every line)
fn digits(b: &[u8]) -> Option<u32> {
    if b.is_empty() {
        return None;
    }
    let mut n = 0u32;
    for &c in b {
        let d = c.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        n = n.wrapping_mul(10).wrapping_add(u32::from(d));
    }
    Some(n)
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
#[inline(always)]
fn classic(l: &[u8]) -> Option<Parsed<'_>> {
    let (stamp, rest) = classic_stamp(l)?;
    // a bracketed program without host and pid (`[sshd]: msg`, `[sshd] msg`; only after a
    // classic stamp: programs writing their own files put `[LEVEL]` after an ISO one)
    if rest.first() == Some(&b'[') {
        if let Some((program, message)) = bracketed(rest) {
            return Some(Parsed {
                stamp: Some(stamp),
                host: None,
                program: Some(program),
                pid: 0,
                message,
                repeat: 1,
            });
        }
    }
    host_and_tag(stamp, rest)
}

/// The classic stamp `Mmm dd HH:MM:SS ` and what follows it.
#[inline(always)]
fn classic_stamp(l: &[u8]) -> Option<(Stamp, &[u8])> {
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
    Some((stamp, &l[i + 1..]))
}

/// UniFi OS (Dream Machine) forwards its lines with the host name written twice,
/// `Jun 27 09:02:22 UDM-Pro UDM-Pro sshd[454008]: msg` (the CrowdSec hub's
/// `.tests/unifi-logs`): read only when the second word is the first exactly and a tag
/// follows it (in [`rare`]: the usual line pays for none of it).
#[inline(never)]
fn doubled_host(l: &[u8]) -> Option<Parsed<'_>> {
    let (stamp, rest) = classic_stamp(l)?;
    let sp = rest.iter().take(256).position(|&b| b == b' ')?;
    let host = &rest[..sp];
    if host.is_empty() {
        return None;
    }
    let after = rest[sp + 1..].strip_prefix(host)?.strip_prefix(b" ")?;
    let (program, pid, message) = tag(after)?;
    Some(Parsed {
        stamp: Some(stamp),
        host: Some(host),
        program: Some(program),
        pid,
        message,
        repeat: 1,
    })
}

/// OpenWrt's `logread` (and its `-F` log file, ubox `log/logread.c` `log_notify()`):
/// `ctime()` without its newline (weekday, classic date with a space-padded day, time,
/// year), `-t`'s `[SECONDS.MILLIS] ` if asked for, `facility.level`, then the message as
/// the program sent it, tag first; no host: `Sat Jan 10 18:00:21 2026 authpriv.warn
/// dropbear[832]: Bad password attempt for 'root' from 192.0.2.7:52482` (the kernel's:
/// `kern.info kernel: …`). logd (`log/syslog.c` `log_add()`) writes each newline of a
/// message as a space, and takes at most 1023 bytes of a datagram (`LOG_LINE_SIZE`).
#[inline(never)]
fn openwrt(l: &[u8]) -> Option<Parsed<'_>> {
    if !l[..3].iter().all(u8::is_ascii_alphabetic) {
        return None;
    }
    let (stamp, rest) = classic_stamp(&l[4..])?;
    if stamp.millis != 0 || rest.get(4) != Some(&b' ') {
        return None;
    }
    let year = digits(&rest[..4])? as i32;
    let mut rest = &rest[5..];
    // `-t`: `[1768068021.123] `
    if rest.first() == Some(&b'[') {
        let e = rest.iter().take(24).position(|&b| b == b']')?;
        let inner = &rest[1..e];
        if !inner.iter().all(|&b| b.is_ascii_digit() || b == b'.') || rest.get(e + 1) != Some(&b' ')
        {
            return None;
        }
        rest = &rest[e + 2..];
    }
    let sp = rest.iter().take(24).position(|&b| b == b' ')?;
    if !fac_level(&rest[..sp]) {
        return None;
    }
    let (program, pid, message) = tag(&rest[sp + 1..])?;
    Some(Parsed {
        stamp: Some(Stamp {
            year: Some(year),
            ..stamp
        }),
        host: None,
        program: Some(program),
        pid,
        message,
        repeat: 1,
    })
}

/// syslog-ng's `ts_format(full)`: the classic line with the year in front,
/// `2026 Nov 21 10:00:01[.frac] host tag: msg` (`TS_FMT_FULL` in syslog-ng's
/// `lib/timeutils/format.c`, written by a file destination without a template,
/// `lib/logwriter.c`).
#[inline(never)]
fn full_date(l: &[u8]) -> Option<Parsed<'_>> {
    if l.len() < 21 || l[4] != b' ' {
        return None;
    }
    let year = digits(&l[..4])? as i32;
    let mut p = classic(&l[5..])?;
    if let Some(st) = &mut p.stamp {
        st.year = Some(year);
    }
    Some(p)
}

/// `journalctl -o short-full` (and `-o with-unit`, the same stamp before the unit's name):
/// the weekday, the date and time and the zone's abbreviation (`TIMESTAMP_PRETTY` of
/// systemd's `format_timestamp_style()`, `"%a %Y-%m-%d %H:%M:%S"` then `" %Z"`; `UTC` with
/// `--utc`), then `host tag: msg`: `Fri 2026-11-21 10:00:01 CET web1 sshd[123]: msg`.
/// `UTC`/`GMT` and a numeric zone (`+05`, `-0330`) give the offset; any other abbreviation
/// is the machine's local zone, as a classic stamp's time is (journalctl writes the zone of
/// the machine it runs on, and an abbreviation such as `CST` names several).
#[inline(never)]
fn short_full(l: &[u8]) -> Option<Parsed<'_>> {
    if !l[..3].iter().all(u8::is_ascii_alphabetic) || l.get(14) != Some(&b' ') {
        return None;
    }
    let (stamp, n) = iso_stamp(&l[4..])?;
    if n != 19 || l.get(23) != Some(&b' ') {
        return None;
    }
    let zone_len = l[24..].iter().take_while(|&&b| b != b' ').count();
    let zone = &l[24..24 + zone_len];
    if !(1..=6).contains(&zone_len) || l.get(24 + zone_len) != Some(&b' ') {
        return None;
    }
    let offset = match zone {
        b"UTC" | b"GMT" => Some(0),
        [sign @ (b'+' | b'-'), hm @ ..] if matches!(hm.len(), 2 | 4) => {
            let h = digits(&hm[..2])? as i32;
            let m = if hm.len() == 4 {
                digits(&hm[2..])? as i32
            } else {
                0
            };
            let o = h * 3600 + m * 60;
            Some(if *sign == b'-' { -o } else { o })
        }
        z if z.iter().all(u8::is_ascii_alphabetic) => None,
        _ => return None,
    };
    host_and_tag(Stamp { offset, ..stamp }, &l[25 + zone_len..])
}

/// syslog-ng's `ts_format(unix)` and `journalctl -o short-unix`: seconds since the epoch
/// (ten digits), the fraction syslog-ng writes with `frac_digits(N)` (up to six digits,
/// `append_format_unix_time` in `lib/timeutils/format.c`) or journalctl always writes
/// (`"%10"PRI_TIME".%06"PRIu64`, `output_timestamp_realtime` in systemd
/// `src/shared/logs-show.c`), then `host tag: msg` (syslog-ng's file template
/// `${DATE} ${HOST} ${MSGHDR}${MSG}`; journalctl `--no-hostname` leaves the host out):
/// `1796322113.544 web1 sshd[123]: msg`. Taken only when a host and tag follow, so a
/// program's own epoch-stamped file (squid's `1796322113.544    150 192.0.2.1 …`,
/// portsentry's history `1796322113 - 11/21/2026 …`) stays bare.
#[inline(never)]
fn unix_seconds(l: &[u8]) -> Option<Parsed<'_>> {
    let secs = l.get(..10)?;
    if !secs.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let unix = secs.iter().fold(0i64, |a, &d| a * 10 + i64::from(d - b'0'));
    let (mut millis, mut i) = (0, 10);
    if l.get(i) == Some(&b'.') {
        (millis, i) = fraction(l, i + 1);
        if !(12..=17).contains(&i) {
            return None;
        }
    }
    if l.get(i) != Some(&b' ') {
        return None;
    }
    host_and_tag(utc_stamp(unix, millis), &l[i + 1..])
}

/// The UTC stamp of `unix` seconds since the epoch.
fn utc_stamp(unix: i64, millis: u16) -> Stamp {
    let (year, month, day) = civil_from_days(unix.div_euclid(86_400));
    let sod = unix.rem_euclid(86_400);
    Stamp {
        year: Some(year),
        month,
        day,
        hour: (sod / 3600) as u8,
        minute: (sod / 60 % 60) as u8,
        second: (sod % 60) as u8,
        millis,
        offset: Some(0),
    }
}

/// `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM|±HHMM)` at the start of `l` (`T`, a space or
/// svlogd's `_` between date and time); returns the stamp and its length.
fn iso_stamp(l: &[u8]) -> Option<(Stamp, usize)> {
    if l.len() < 19 || l[4] != b'-' || l[7] != b'-' || !matches!(l[10], b'T' | b' ' | b'_') {
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
            // (real offsets are -12:00 to +14:00: `+99:99` was read as four days)
            if h > 14 || m > 59 {
                return None;
            }
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

#[inline(always)]
fn iso(l: &[u8], outer: bool) -> Option<Parsed<'_>> {
    let (stamp, n) = iso_stamp(l)?;
    if l.get(n) != Some(&b' ') {
        return None;
    }
    let rest = &l[n + 1..];
    // a log stamper's own stamp: svlogd -tt (`2026-11-21_10:00:01.25000 `) and -ttt
    // (`2026-11-21T10:00:01.25000 `: five digits, no zone; both UTC, runit's svlogd.8 and
    // a run of svlogd 2.1.2); s6-log `T` (`2026-11-21 10:00:01.123456789  `, nine digits
    // and two spaces, `script_run` in s6 `src/daemontools-extras/s6-log.c`) and the same
    // stamp with one space, as s6-tai64nlocal and daemontools' tai64nlocal turn a
    // multilog, s6-log or svlogd `t` label into local time
    if outer && stamp.offset.is_none() && (n == 25 || n == 29 || l[10] == b'_') {
        if let Some(p) = stamper(stamp, l[10], n, rest) {
            return Some(p);
        }
    }
    // (each rare form behind a one-byte test, out of line: the usual line pays for none)
    if outer && rest.first() == Some(&b's') {
        if let Some(p) = cri(stamp, rest) {
            return Some(p);
        }
    }
    if rest.first() == Some(&b'0') {
        if let Some(p) = mac_default(stamp, rest) {
            return Some(p);
        }
    }
    if rest.get(2) == Some(&b' ') {
        if let Some(p) = mac_compact(stamp, rest) {
            return Some(p);
        }
    }
    // another ISO stamp without a zone (UTC, as svlogd's) in front of a socklog line
    if outer && stamp.offset.is_none() {
        let utc = Stamp {
            offset: Some(0),
            ..stamp
        };
        if let Some(p) = socklog(rest, Some(utc)) {
            return Some(p);
        }
    }
    // (`log show --style syslog` puts two spaces before the host)
    let rest = rest.strip_prefix(b" ").unwrap_or(rest);
    // a program's own log line (Python's logging, many Java and Go loggers): `2026-01-10
    // 10:00:02,123 WARNING myapp.auth: text`. No host is named like a log level: the line is
    // read whole, as an own log file's line is
    if level_word(rest) {
        return None;
    }
    match host_and_tag(stamp, rest) {
        // (a tag read with a colon or a pid is a syslog tag; otherwise sysklogd's RFC
        // 5424 file line may be what it is)
        Some(p)
            if p.pid != 0
                || !p
                    .message
                    .first()
                    .is_some_and(|b| b.is_ascii_digit() || *b == b'-') =>
        {
            Some(p)
        }
        other => rfc5424_file(stamp, rest).or(other),
    }
}

/// Does `rest` begin with a log level as a word of its own, in capitals as loggers write
/// it (`WARNING `; `[ERROR] ` is not one: only the bare word, which is where a syslog line
/// has its host)? Lower case is a host's name (`alert`, `info` and `notice` are names
/// some hosts have).
fn level_word(rest: &[u8]) -> bool {
    const LEVELS: [&[u8]; 14] = [
        b"TRACE",
        b"DEBUG",
        b"INFO",
        b"NOTICE",
        b"WARN",
        b"WARNING",
        b"ERROR",
        b"ERR",
        b"CRIT",
        b"CRITICAL",
        b"FATAL",
        b"ALERT",
        b"EMERG",
        b"SEVERE",
    ];
    let word = rest.split(|&b| b == b' ').next().unwrap_or_default();
    rest.len() > word.len() && LEVELS.contains(&word)
}

/// The line after a log stamper's ISO stamp (see [`iso`]; `sep` is the byte between date and
/// time, `n` the stamp's length), if it is one.
#[inline(never)]
fn stamper(stamp: Stamp, sep: u8, n: usize, rest: &[u8]) -> Option<Parsed<'_>> {
    let utc = Stamp {
        offset: Some(0),
        ..stamp
    };
    match sep {
        b'_' => Some(stamped_stream(utc, rest)),
        // (19 bytes, the point, five digits)
        b'T' if n == 25 => Some(stamped_stream(utc, rest)),
        b' ' if n == 29 => Some(stamped_stream(
            stamp,
            rest.strip_prefix(b" ").unwrap_or(rest),
        )),
        _ => None,
    }
}

/// Skips `n` space-separated fields of `b` whose bytes satisfy `ok` (and the spaces after
/// them).
fn skip_field(b: &[u8], ok: impl Fn(u8) -> bool) -> Option<&[u8]> {
    let n = b.iter().take_while(|&&c| c != b' ').count();
    if n == 0 || !b[..n].iter().all(|&c| ok(c)) {
        return None;
    }
    let b = &b[n..];
    let sp = b.iter().take_while(|&&c| c == b' ').count();
    (sp > 0).then(|| &b[sp..])
}

/// macOS `log show` default style, after the stamp:
/// `0x2f0a     Default     0x0                  123    0    sshd: msg`
/// (thread, type, activity, pid, TTL, process).
#[inline(never)]
fn mac_default(stamp: Stamp, rest: &[u8]) -> Option<Parsed<'_>> {
    let hex = |c: u8| c.is_ascii_hexdigit() || c == b'x';
    let rest = skip_field(rest, hex)?;
    let rest = skip_field(rest, |c| c.is_ascii_alphabetic())?;
    let rest = skip_field(rest, hex)?;
    let pid_len = rest.iter().take_while(|c| c.is_ascii_digit()).count();
    let pid = digits(&rest[..pid_len])?;
    let rest = skip_field(rest, |c| c.is_ascii_digit())?;
    let rest = skip_field(rest, |c| c.is_ascii_digit())?;
    let (program, _, message) = tag(rest)?;
    Some(Parsed {
        stamp: Some(stamp),
        host: None,
        program: Some(program),
        pid,
        message: skip_sender(message),
        repeat: 1,
    })
}

/// macOS `log show --style compact`: `Df sshd[123:2f0a] msg` after the stamp.
#[inline(never)]
fn mac_compact(stamp: Stamp, rest: &[u8]) -> Option<Parsed<'_>> {
    if rest.len() < 4 || rest[2] != b' ' || !rest[..2].iter().all(u8::is_ascii_alphabetic) {
        return None;
    }
    let rest = &rest[3..];
    let open = rest.iter().take(64).position(|&b| b == b'[')?;
    let close = open + rest[open..].iter().take(32).position(|&b| b == b']')?;
    let (pid, thread) =
        rest[open + 1..close].split_at(rest[open + 1..close].iter().position(|&b| b == b':')?);
    if !thread[1..].iter().all(u8::is_ascii_hexdigit) || rest.get(close + 1) != Some(&b' ') {
        return None;
    }
    let program = &rest[..open];
    if program.is_empty() || program.contains(&b' ') {
        return None;
    }
    Some(Parsed {
        stamp: Some(stamp),
        host: None,
        program: Some(program),
        pid: digits(pid)?,
        message: skip_sender(&rest[close + 2..]),
        repeat: 1,
    })
}

/// macOS names the image that logged (`(libpam.2.dylib) `) before the message.
fn skip_sender(m: &[u8]) -> &[u8] {
    if m.first() == Some(&b'(') {
        if let Some(e) = m.iter().take(128).position(|&b| b == b')') {
            if m.get(e + 1) == Some(&b' ') && !m[1..e].contains(&b' ') {
                return &m[e + 2..];
            }
        }
    }
    m
}

/// CRI (containerd, CRI-O, `kubectl logs` files): `stdout|stderr F|P <line>` after the
/// RFC 3339 stamp. `P` is a part of a longer line (the rest follows in the next record).
#[inline(never)]
fn cri(stamp: Stamp, rest: &[u8]) -> Option<Parsed<'_>> {
    let rest = rest
        .strip_prefix(b"stdout ")
        .or_else(|| rest.strip_prefix(b"stderr "))?;
    let inner = rest
        .strip_prefix(b"F ")
        .or_else(|| rest.strip_prefix(b"P "))
        .or_else(|| (rest == b"F" || rest == b"P").then_some(&b""[..]))?;
    Some(inner_line(stamp, inner))
}

/// The line inside a container record: its own syslog prefix if it has one, else a bare
/// message stamped by the runtime.
fn inner_line(stamp: Stamp, inner: &[u8]) -> Parsed<'_> {
    let mut p = syslog(inner, false);
    if p.stamp.is_none() {
        p.stamp = Some(stamp);
    }
    p
}

/// Docker json-file: `{"log":"<line>\n","stream":"stderr","time":"<RFC3339Nano>"}`
/// (`daemon/logger/jsonfilelog/jsonlog`, keys in that order, `attrs` before `time` when
/// labels are logged).
#[inline(never)]
fn docker(l: &[u8]) -> Option<Parsed<'_>> {
    let (stamp, log, _, _) = docker_record(l)?;
    Some(inner_line(stamp, log))
}

/// The stamp, the `log` field (JSON text, without the record's closing newline), whether
/// that newline was there, and the stream ([`STDOUT`], [`STDERR`], [`UNSAID`]) of a
/// Docker json-file record.
fn docker_record(l: &[u8]) -> Option<(Stamp, &[u8], bool, u8)> {
    let rest = l.strip_prefix(br#"{"log":""#)?;
    // the string ends at the first quote not escaped by a backslash
    let mut i = 0;
    loop {
        match *rest.get(i)? {
            b'\\' => i += 2,
            b'"' => break,
            _ => i += 1,
        }
    }
    let mut log = &rest[..i];
    let mut complete = false;
    // the newline that ended the record (a partial record, cut at 16 KiB, has none)
    for end in [&br"\r\n"[..], br"\n"] {
        if let Some(s) = log.strip_suffix(end) {
            if !ends_escaped(s) {
                log = s;
                complete = true;
                break;
            }
        }
    }
    // (after the `log` string: text of the runtime's, never the program's)
    let tail = &rest[i + 1..];
    let stream = if memfind(tail, br#""stream":"stdout""#).is_some() {
        STDOUT
    } else if memfind(tail, br#""stream":"stderr""#).is_some() {
        STDERR
    } else {
        UNSAID
    };
    let t = memfind(tail, br#""time":""#)? + 8;
    let (stamp, _) = iso_stamp(&tail[t..])?;
    Some((stamp, log, complete, stream))
}

/// The stream of a container runtime's record that is standard output.
pub const STDOUT: u8 = 1;
/// The stream of a container runtime's record that is standard error.
pub const STDERR: u8 = 2;
/// The stream of a Docker record that does not say which (one stream of its own: a partial
/// record without `"stream"` held nothing back when this was 0, a review found).
pub const UNSAID: u8 = 3;

/// A container runtime's record (CRI, Docker json-file): its stream ([`STDOUT`],
/// [`STDERR`], [`UNSAID`] when the record does not say) and whether it is a record of a part of a
/// longer line (CRI `P`, a Docker json-file record without its closing `\n`). The next
/// record of the same stream continues that line and starts wherever the runtime's 16 KiB
/// cut fell, possibly inside a client's text: a reader must join it to this one (or drop
/// it), never read it as a line of its own; the other stream's records between are lines of
/// their own. [`parse`] reads one record and cannot know. `None`: not such a record.
pub fn container_record(line: &[u8]) -> Option<(u8, bool)> {
    let line = trim_end(line);
    if line.first() == Some(&b'{') {
        return docker_record(line).map(|(_, _, complete, stream)| (stream, !complete));
    }
    let (_, n) = iso_stamp(line)?;
    let rest = line.get(n..).unwrap_or_default();
    let stream = if rest.starts_with(b" stdout ") {
        STDOUT
    } else if rest.starts_with(b" stderr ") {
        STDERR
    } else {
        return None;
    };
    let tag = rest.get(8..10);
    let whole = rest.get(8..);
    let partial = tag == Some(b"P ") || whole == Some(b"P");
    (partial || tag == Some(b"F ") || whole == Some(b"F")).then_some((stream, partial))
}

/// True when `line` is a container runtime's record of a part of a longer line (see
/// [`container_record`]).
pub fn is_partial_record(line: &[u8]) -> bool {
    container_record(line).is_some_and(|(_, partial)| partial)
}

/// True when `s` ends in an odd number of backslashes (its last one escapes what follows).
fn ends_escaped(s: &[u8]) -> bool {
    s.iter().rev().take_while(|&&b| b == b'\\').count() % 2 == 1
}

fn memfind(h: &[u8], n: &[u8]) -> Option<usize> {
    h.windows(n.len()).position(|w| w == n)
}

/// svlogd `-t`: `@` and a TAI64N label (24 hex digits) before the line.
#[inline(never)]
fn tai64n(l: &[u8]) -> Option<Parsed<'_>> {
    let hex = l.get(1..25)?;
    if l.get(25) != Some(&b' ') {
        return None;
    }
    let mut v: u128 = 0;
    for &c in hex {
        v = v << 4 | u128::from((c as char).to_digit(16)?);
    }
    let (secs, nanos) = ((v >> 32) as u64, (v & 0xffff_ffff) as u32);
    // TAI64: 2^62 + seconds since 1970 TAI; TAI runs 10 s ahead of the label's UTC origin
    // (libtai, as `tai64nlocal` converts)
    let unix = i64::try_from(secs.checked_sub(1 << 62)?).ok()? - 10;
    let stamp = utc_stamp(unix, (nanos / 1_000_000).min(999) as u16);
    Some(stamped_stream(stamp, &l[26..]))
}

/// The line after a log stamper's own stamp (multilog, s6-log and svlogd `t`, svlogd `-tt`,
/// s6-log `T`): socklog's `facility.level: ` line, a dated syslog line, the `ident[pid]: ` or
/// `ident: ` that syslog(3) writes to stderr with `LOG_PERROR` (glibc `misc/syslog.c`, musl
/// `src/misc/syslog.c`: the line without its `<PRI>` and stamp), or a bare message.
/// (Out of line: `parse` keeps the size it had for the usual line.)
#[inline(never)]
fn stamped_stream(stamp: Stamp, rest: &[u8]) -> Parsed<'_> {
    if let Some(p) = socklog(rest, Some(stamp)) {
        return p;
    }
    let p = inner_line(stamp, rest);
    if p.program.is_some() {
        return p;
    }
    stderr_tag(stamp, rest).unwrap_or(p)
}

/// `ident[pid]: msg` or `ident: msg` at the start of a stamped stream's line. The ident
/// starts with a letter and holds letters, digits, `-`, `_`, `.` and `/` (a JSON record's
/// `{"key": ` is none). Without a pid the first word is read as a program only when it is
/// in lower case (`FAIL: `, `Auth: ` are messages), is not a log level (`error: …`, as
/// sshd -e and many programs write) and the message does not start with one (Dovecot's own
/// `imap-login: Info: …`, `src/lib/failures.c`): those lines stay bare, as they were.
#[inline(never)]
fn stderr_tag(stamp: Stamp, rest: &[u8]) -> Option<Parsed<'_>> {
    let sp = rest.iter().take(66).position(|&b| b == b' ')?;
    if sp < 2 || rest[sp - 1] != b':' {
        return None;
    }
    let (program, pid, message) = tag(rest)?;
    let ident = |c: &u8| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.' | b'/');
    if !program[0].is_ascii_alphabetic() || !program.iter().all(ident) {
        return None;
    }
    if pid == 0
        && (program.iter().any(u8::is_ascii_uppercase)
            || is_level(program)
            || level_prefix(message))
    {
        return None;
    }
    Some(Parsed {
        stamp: Some(stamp),
        host: None,
        program: Some(program),
        pid,
        message,
        repeat: 1,
    })
}

/// A log level as programs write it in front of their messages (any case).
fn is_level(w: &[u8]) -> bool {
    const LEVELS: &[&[u8]] = &[
        b"debug",
        b"debug1",
        b"debug2",
        b"debug3",
        b"trace",
        b"verbose",
        b"info",
        b"notice",
        b"warn",
        b"warning",
        b"err",
        b"error",
        b"crit",
        b"critical",
        b"alert",
        b"emerg",
        b"fatal",
        b"panic",
    ];
    LEVELS.iter().any(|l| l.eq_ignore_ascii_case(w))
}

/// True when `m` starts with `Level: `.
fn level_prefix(m: &[u8]) -> bool {
    m.iter()
        .take(10)
        .position(|&b| b == b':')
        .is_some_and(|c| m.get(c + 1) == Some(&b' ') && is_level(&m[..c]))
}

/// socklog: `facility.level: ` before the syslog line as the client sent it (without
/// `<PRI>`, usually without the host).
#[inline(never)]
fn socklog(l: &[u8], stamp: Option<Stamp>) -> Option<Parsed<'_>> {
    let colon = l.iter().take(24).position(|&b| b == b':')?;
    if l.get(colon + 1) != Some(&b' ') || !fac_level(&l[..colon]) {
        return None;
    }
    let inner = &l[colon + 2..];
    let mut p = syslog(inner, false);
    // a client that sent its tag without a stamp (`auth.info: sshd[123]: msg`): the tag
    // is read only with a pid, as after a log stamper's stamp
    if p.program.is_none() {
        if let Some((program, pid, message)) = tag(inner).filter(|t| t.1 != 0) {
            p = Parsed {
                stamp: None,
                host: None,
                program: Some(program),
                pid,
                message,
                repeat: 1,
            };
        }
    }
    if p.stamp.is_none() {
        p.stamp = stamp;
    }
    Some(p)
}

/// `auth.info`, `local7.notice`: a syslog facility and level by name (BusyBox, socklog).
fn fac_level(t: &[u8]) -> bool {
    let Some(dot) = t.iter().position(|&b| b == b'.') else {
        return false;
    };
    let (f, l) = (&t[..dot], &t[dot + 1..]);
    !f.is_empty()
        && !l.is_empty()
        && f.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && l.iter().all(u8::is_ascii_lowercase)
}

/// AIX syslogd's facility and level (`auth|security:info`, `mail:err`): the names of the
/// facilities the priority matched, `|` between them, then `:` and the level.
fn aix_fac_level(t: &[u8]) -> bool {
    let Some(colon) = t.iter().position(|&b| b == b':') else {
        return false;
    };
    let (f, l) = (&t[..colon], &t[colon + 1..]);
    f.first().is_some_and(u8::is_ascii_lowercase)
        && f.last().is_some_and(u8::is_ascii_lowercase)
        && !l.is_empty()
        && f.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'|')
        && l.iter().all(u8::is_ascii_lowercase)
}

/// `<4.6>`, `<auth.info>` (FreeBSD syslogd -v/-vv) or `<38>` (BusyBox, unnamed facility),
/// followed by a space; returns the rest.
fn angle_token(b: &[u8]) -> Option<&[u8]> {
    let inner = b.strip_prefix(b"<")?;
    let e = inner.iter().take(24).position(|&c| c == b'>')?;
    let t = &inner[..e];
    let ok = !t.is_empty()
        && t.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'.');
    (ok && inner.get(e + 1) == Some(&b' ')).then(|| &inner[e + 2..])
}

/// `[host] tag: msg` where tag is `prog[pid]` or `prog`.
#[inline(always)]
fn host_and_tag(stamp: Stamp, rest: &[u8]) -> Option<Parsed<'_>> {
    let done = |host, (program, pid, message)| {
        Some(Parsed {
            stamp: Some(stamp),
            host,
            program: Some(program),
            pid,
            message,
            repeat: 1,
        })
    };
    // FreeBSD syslogd -v: `<4.6> host`
    let rest = angle_token(rest).unwrap_or(rest);
    // (plain loops: the fields are short, and a vector search's setup costs more)
    let sp = rest.iter().position(|&b| b == b' ')?;
    // Without a host (BusyBox -S, socklog's inner line) the first field is the tag; a host
    // name never ends in ':' or ']'. Only with a pid: a program writing its own file with a
    // syslog-like stamp (dovecot's `Nov 21 10:00:07 imap-login: Info: …`) stays bare.
    if sp > 0 && matches!(rest[sp - 1], b':' | b']') {
        if let Some(t) = tag(rest) {
            if t.1 != 0 {
                return done(None, t);
            }
        }
        // Dovecot 2.4's own log file writes an event's log prefix first
        // (`auth(USER,ADDR,sasl:MECH)<SESSION>: Info: …`: src/lib/failures.c
        // log_prefix_add(), auth-request.c get_log_prefix()); a host name holds no '(', so
        // such a first word starts the message (the filter reads what it holds)
        if rest[sp - 1] == b':' && rest[..sp].contains(&b'(') {
            return Some(bare(Some(stamp), rest));
        }
    }
    let host = Some(&rest[..sp]);
    let rest = &rest[sp + 1..];
    if let Some(t) = tag(rest) {
        return done(host, t);
    }
    // BusyBox: `host auth.info tag: msg`
    let sp = rest.iter().take(24).position(|&b| b == b' ')?;
    let f = &rest[..sp];
    if fac_level(f) || aix_fac_level(f) || (angle_token(&rest[..sp + 1]).is_some()) {
        return done(host, tag(&rest[sp + 1..])?);
    }
    None
}

/// `[prog]: msg` or `[prog] msg` (a syslog daemon that brackets the program and writes no
/// host or pid): the name starts with a letter and has at most 64 bytes of letters, digits,
/// `-`, `_`, `.` and `/` (exim's own `[pid]` after its stamp is not one).
#[inline(never)]
fn bracketed(rest: &[u8]) -> Option<(&[u8], &[u8])> {
    let e = rest.iter().take(66).position(|&b| b == b']')?;
    let program = &rest[1..e];
    if !program.first().is_some_and(u8::is_ascii_alphabetic)
        || !program
            .iter()
            .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.' | b'/'))
    {
        return None;
    }
    let after = &rest[e + 1..];
    let message = after
        .strip_prefix(b": ")
        .or_else(|| after.strip_prefix(b" "))
        .or_else(|| (after == b":").then(|| &after[1..]))?;
    Some((program, solaris_id(message)))
}

/// `prog[pid]: msg`, `prog: msg` or `prog[pid] msg` (rsyslog without the colon) at the
/// start of `rest`: the tag has no spaces and at most 64 bytes.
#[inline(always)]
fn tag(rest: &[u8]) -> Option<(&[u8], u32, &[u8])> {
    // the tag ends at its first ':' or ' ' (a space only after `[pid]`)
    let e = colon_or_space(rest, 65)?;
    let colon = rest[e] == b':';
    let open = rest[..e].iter().position(|&b| b == b'[');
    if !(colon || open.is_some() && rest[e - 1] == b']') {
        return None;
    }
    let tag = &rest[..e];
    if tag.is_empty() {
        return None;
    }
    let message = if colon {
        match rest.get(e + 1) {
            Some(b' ') => &rest[e + 2..],
            None => &rest[e + 1..],
            Some(_) => return None,
        }
    } else {
        &rest[e + 1..]
    };
    let (program, pid) = match open {
        Some(b) if tag.last() == Some(&b']') && b > 0 => {
            (&tag[..b], pid_digits(&tag[b + 1..tag.len() - 1])?)
        }
        Some(_) => return None,
        None => (tag, 0),
    };
    Some((program, pid, solaris_id(message)))
}

/// [`digits`] for the tag's pid, out of line: inlined into `parse`, the running value was
/// kept in memory (a store and a load per digit, a quarter of `parse`'s perf samples).
#[inline(never)]
fn pid_digits(b: &[u8]) -> Option<u32> {
    digits(b)
}

/// The position of the first ':' or ' ' among the first `limit` bytes of `b`, eight bytes
/// at a time (every line's tag is scanned so; a byte loop tested each byte three times).
#[inline(always)]
fn colon_or_space(b: &[u8], limit: usize) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let n = b.len().min(limit);
    let mut i = 0;
    while i + 8 <= n {
        let w = u64::from_le_bytes(b[i..i + 8].try_into().expect("8 bytes"));
        let (c, s) = (w ^ (ONES * u64::from(b':')), w ^ (ONES * u64::from(b' ')));
        // the high bit of each zero byte of `c` or `s`; exact up to the first one (a borrow
        // only marks bytes above a zero byte), which is all that is read
        let z = ((c.wrapping_sub(ONES) & !c) | (s.wrapping_sub(ONES) & !s)) & HIGH;
        if z != 0 {
            return Some(i + (z.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    b[i..n]
        .iter()
        .position(|&c| c == b':' || c == b' ')
        .map(|k| i + k)
}

/// Solaris' message id after the tag: `[ID 800047 auth.info] `.
#[inline(always)]
fn solaris_id(m: &[u8]) -> &[u8] {
    if let Some(r) = m.strip_prefix(b"[ID ") {
        let n = r.iter().take_while(|c| c.is_ascii_digit()).count();
        if n > 0 && r.get(n) == Some(&b' ') {
            let r = &r[n + 1..];
            if let Some(e) = r.iter().take(24).position(|&b| b == b']') {
                if fac_level(&r[..e]) && r.get(e + 1) == Some(&b' ') {
                    return &r[e + 2..];
                }
            }
        }
    }
    m
}

/// RFC 5424: `[<PRI>]1 TIMESTAMP HOST APP PROCID MSGID SD MSG` (`l` after the PRI; files
/// written by sysklogd and rsyslog's RSYSLOG_SyslogProtocol23Format may omit it).
#[inline(always)]
fn rfc5424(l: &[u8]) -> Option<Parsed<'_>> {
    let rest = l.strip_prefix(b"1 ")?;
    rfc5424_fields(rest)
}

/// sysklogd's RFC 5424 file lines: `TIMESTAMP HOST APP PROCID MSGID SD MSG`, without
/// `<PRI>1 ` (its `fprintlog_write()` writes a file line from the iovec after the one
/// holding `<PRI>1 `: troglobit/sysklogd `src/syslogd.c`). `rest` follows the stamp and
/// its space. Taken only when PROCID is digits or `-` and SD is `-` or `[`, and APP does
/// not end as a syslog tag does (`sshd[1]:`), so an ISO-stamped rsyslog line is never
/// read this way.
#[inline(never)]
fn rfc5424_file(stamp: Stamp, rest: &[u8]) -> Option<Parsed<'_>> {
    let mut f = rest.splitn(5, |&b| b == b' ');
    let (host, app, procid, msgid) = (f.next()?, f.next()?, f.next()?, f.next()?);
    let ok = |t: &[u8]| !t.is_empty() && t.len() <= 64;
    if !(ok(host) && ok(app) && ok(msgid))
        || matches!(app.last(), Some(b':' | b']'))
        || !(procid == b"-" || (ok(procid) && procid.iter().all(u8::is_ascii_digit)))
    {
        return None;
    }
    let tail = f.next().unwrap_or(b"");
    if !(tail == b"-" || tail.starts_with(b"- ") || tail.starts_with(b"[")) {
        return None;
    }
    let mut p = rfc5424_body(tail, host, app, procid)?;
    p.stamp = Some(stamp);
    Some(p)
}

/// The fields of an RFC 5424 line after its version.
#[inline(always)]
fn rfc5424_fields(rest: &[u8]) -> Option<Parsed<'_>> {
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
        let (st, n) = iso_stamp(ts)?;
        if n != ts.len() {
            return None;
        }
        Some(st)
    };
    let mut p = rfc5424_body(tail, host, app, procid)?;
    p.stamp = stamp;
    Some(p)
}

/// Structured data and message of an RFC 5424 line (`tail` after MSGID); no stamp yet.
#[inline(always)]
fn rfc5424_body<'a>(
    tail: &'a [u8],
    host: &'a [u8],
    app: &'a [u8],
    procid: &[u8],
) -> Option<Parsed<'a>> {
    // structured data: "-" or one or more [..] elements (with quoted values)
    let message = if let Some(m) = tail.strip_prefix(b"-") {
        m
    } else if tail.first() == Some(&b'[') {
        skip_sd(tail)?
    } else {
        return None;
    };
    let message = message.strip_prefix(b" ").unwrap_or(message);
    // rsyslog's RSYSLOG_SyslogProtocol23Format writes `%STRUCTURED-DATA% %msg%`, and the msg
    // of a line it received on its local socket keeps the space that followed the tag
    // (`sshd[1]: msg`): two spaces before the message (a real rsyslogd 8.2302's file,
    // tests/real_prefixes.rs); the program wrote that space, no client
    let message = message.strip_prefix(b" ").unwrap_or(message);
    let message = message
        .strip_prefix("\u{feff}".as_bytes())
        .unwrap_or(message);
    let nil = |f: &'_ [u8]| -> bool { f == b"-" };
    Some(Parsed {
        stamp: None,
        host: (!nil(host)).then_some(host),
        program: (!nil(app)).then_some(app),
        pid: digits(procid).unwrap_or(0),
        message,
        repeat: 1,
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

    /// The spans of a split give the same split back, for each form of prefix; a field
    /// that is not a part of the line has none.
    #[test]
    fn spans_give_back_the_same_split() {
        let lines: &[&[u8]] = &[
            b"Nov 21 10:00:01 host sshd[123]: Failed password for root from 192.0.2.1 port 22 ssh2",
            b"Nov  1 10:00:01 sshd[123]: msg",
            b"<34>1 2026-11-21T10:00:01.003Z host sshd 123 - - msg",
            b"2026-11-21T10:00:01.123456+01:00 host sshd[123]: msg\r\n",
            b"Nov 21 10:00:01 host sshd[9]: message repeated 3 times: [ Failed password for x from 192.0.2.1 port 22 ssh2]",
            br#"{"log":"Nov 21 10:00:01 host sshd[1]: msg\n","stream":"stderr","time":"2026-11-21T10:00:01.5Z"}"#,
            b"2026-11-21T10:00:01.000000000Z stderr F Nov 21 10:00:01 host sshd[2]: msg",
            b"Nov 21 10:00:01 host [sshd]: msg",
            b"just a message",
            b"",
        ];
        for &l in lines {
            let p = parse(l);
            let s = Spans::of(l, &p).expect("fields of the line");
            assert_eq!(s.parsed(l), p, "{}", String::from_utf8_lossy(l));
        }
        // a field elsewhere than in the line has no span
        let l = b"Nov 21 10:00:01 host sshd[123]: msg";
        let mut p = parse(l);
        p.message = b"other";
        assert_eq!(Spans::of(l, &p), None);
    }

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

    /// The syslog daemons' own "the previous line occurred N more times" lines, as each
    /// daemon's source writes them (see `syslogd_repeat`); anything else is not one.
    #[test]
    fn syslogd_last_message_repeated() {
        let rep =
            |l: &[u8]| syslogd_repeat(&parse(l)).map(|r| (r.n, r.stamp.map(|s| (s.day, s.second))));
        for (l, n, day, sec) in [
            // OpenBSD, NetBSD, FreeBSD <= 12, sysklogd 1.x: after the previous line's host
            (&b"Dec 10 07:13:56 bsd1 last message repeated 5 times"[..], 5, 10, 56),
            (b"Dec  3 07:13:56 bsd1 last message repeated 2 times\n", 2, 3, 56),
            // FreeBSD -v / -vv
            (b"Dec 10 07:13:56 <4.6> bsd1 last message repeated 3 times", 3, 10, 56),
            (b"Dec 10 07:13:56 <auth.info> bsd1 last message repeated 3 times", 3, 10, 56),
            // FreeBSD 13+: program syslogd, N >= 1 ("1 times")
            (b"Dec 10 07:13:57 bsd1 syslogd: last message repeated 1 times", 1, 10, 57),
            (b"Dec 10 07:13:57 bsd1 syslogd: last message repeated 6 times", 6, 10, 57),
            (b"<46>1 2026-12-10T07:13:58.123456+01:00 bsd1 syslogd - - - last message repeated 4 times", 4, 10, 58),
            // NetBSD 5+: program syslogd with its pid
            (b"Dec 10 07:13:54 nbsd1 syslogd[412]: last message repeated 8 times", 8, 10, 54),
            (b"<46>1 2026-12-10T07:13:53.000000+01:00 nbsd1 syslogd 412 - - last message repeated 2 times", 2, 10, 53),
            // sysklogd 2.x, BSD and RFC 5424 file formats
            (b"Dec 10 07:13:59 lin1 last message buffered 7 times", 7, 10, 59),
            (b"2026-12-10T07:13:59.000000+01:00 lin1 - - - - last message buffered 1 times", 1, 10, 59),
            // an ISO stamp (OpenBSD -Z style) before the host
            (b"2026-12-10T07:13:55.000Z bsd1 last message repeated 2 times", 2, 10, 55),
            // macOS asl_action.c and the older bsd_out.c
            (b"Dec 10 07:13:56 --- last message repeated 1 time ---", 1, 10, 56),
            (b"Dec 10 07:13:56 --- last message repeated 12 times ---", 12, 10, 56),
            (b"Dec  9 07:13:56: --- last message repeated 3 times ---", 3, 9, 56),
        ] {
            assert_eq!(rep(l), Some((n, Some((day, sec)))), "{}", String::from_utf8_lossy(l));
        }
        for l in [
            // a program's message (client text can only be there)
            &b"Dec 10 07:13:56 bsd1 sshd[5]: last message repeated 5 times"[..],
            b"Dec 10 07:13:56 bsd1 sshd: last message repeated 5 times",
            b"Dec 10 07:13:56 bsd1 syslogd[12]: last message repeated 5 times x",
            b"Dec 10 07:13:56 bsd1 sshd[5]: Invalid user last message repeated 5 times",
            // no stamp, or more or less than the form
            b"last message repeated 5 times",
            b"bsd1 last message repeated 5 times",
            b"Dec 10 07:13:56 bsd1 x last message repeated 5 times",
            b"Dec 10 07:13:56 bsd1 last message repeated 5 times x",
            b"Dec 10 07:13:56 bsd1 last message repeated 0 times",
            b"Dec 10 07:13:56 bsd1 last message repeated  times",
            b"Dec 10 07:13:56 bsd1 last message repeated 1234567890 times",
            b"Dec 10 07:13:56 bsd1 last message repeated 5 time",
            b"Dec 10 07:13:56 bsd1  last message repeated 5 times",
            b"Dec 10 07:13:56 --- last message repeated 5 times",
            b"Dec 10 07:13:56: bsd1 last message repeated 5 times",
            b"Dec 10 07:13:56 bsd1 message repeated 5 times",
            // rsyslog's own form is another thing (unwrapped by `parse`)
            b"Dec 10 07:13:56 web1 sshd[1]: message repeated 5 times: [ Failed password for root from 203.0.113.5 port 1 ssh2]",
        ] {
            assert_eq!(rep(l), None, "{}", String::from_utf8_lossy(l));
        }
    }

    /// rsyslog's repeated-message reduction, as runtime/ratelimit.c writes it: the message in
    /// brackets is the program's, counted N times; anything else is left as it is.
    #[test]
    fn rsyslog_message_repeated() {
        let p = parse(b"Dec 10 07:13:56 web1 sshd[24227]: message repeated 5 times: [ Failed password for root from 203.0.113.5 port 42393 ssh2]");
        assert_eq!(s(p.program), Some("sshd"));
        assert_eq!(p.pid, 24227);
        assert_eq!(p.repeat, 5);
        assert_eq!(
            p.message,
            b"Failed password for root from 203.0.113.5 port 42393 ssh2"
        );
        let p = parse(b"2026-12-03T10:00:01.5+01:00 web1 sshd[7]: message repeated 2 times: [Invalid user x from 203.0.113.5 port 1]");
        assert_eq!(
            (p.repeat, p.message),
            (2, &b"Invalid user x from 203.0.113.5 port 1"[..])
        );
        // a message of 799 bytes is whole; one of 800 may have been cut (and its address with
        // its end): the cut copy of a vsftpd line whose long user name holds a forged
        // `] FAIL LOGIN: Client "A"` right where the cut falls stays wrapped
        let (head, tail) = (" Failed password for ", " from 203.0.113.5 port 1 ssh2");
        let whole = format!("{head}{}{tail}", "u".repeat(799 - head.len() - tail.len()));
        assert_eq!(whole.len(), 799);
        let l = format!("Dec 10 07:13:56 web1 sshd[1]: message repeated 2 times: [{whole}]");
        assert_eq!(parse(l.as_bytes()).repeat, 2);
        let forged = "] FAIL LOGIN: Client \"192.0.2.222\"";
        let msg = format!(
            " [{}{forged}{}] FAIL LOGIN: Client \"203.0.113.5\"",
            "p".repeat(800 - 2 - forged.len()),
            "q".repeat(50)
        );
        let l = format!(
            "Dec 10 07:13:56 ftp vsftpd[4242]: message repeated 2 times: [{}]",
            &msg[..800]
        );
        let p = parse(l.as_bytes());
        assert_eq!(p.repeat, 1);
        assert!(p.message.starts_with(b"message repeated 2 times: ["));
        // a plain line, and shapes rsyslog never writes, stay as they are
        for l in [
            &b"Dec 10 07:13:56 web1 sshd[1]: Failed password for root from 203.0.113.5 port 1 ssh2"
                [..],
            b"Dec 10 07:13:56 web1 sshd[1]: message repeated 5 times: [ cut at 800 bytes",
            b"Dec 10 07:13:56 web1 sshd[1]: message repeated times: [ x]",
            b"Dec 10 07:13:56 web1 sshd[1]: message repeated 0 times: [ x]",
            b"Dec 10 07:13:56 web1 sshd[1]: message repeated 1234567890 times: [ x]",
            b"Dec 10 07:13:56 web1 sshd[1]: message repeated 5 times [ x]",
            // no program: a bare message (a program's own file) is never unwrapped
            b"message repeated 5 times: [ x]",
        ] {
            let p = parse(l);
            assert_eq!(p.repeat, 1, "{}", String::from_utf8_lossy(l));
            assert!(l.ends_with(p.message));
        }
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
    fn dovecot_24_event_prefix_in_its_own_file() {
        // Dovecot 2.4 (log_path): the auth request's event prefix replaces the process name
        // and the level follows it (failures.c log_prefix_add() with log_prefix_type_pos)
        let m = "auth(alice,2001:db8::5,sasl:plain)<S1>: Info: sql: Password mismatch";
        let l = format!("Dec  3 10:00:01 {m}");
        let p = parse(l.as_bytes());
        assert_eq!((p.host, p.program, p.pid), (None, None, 0));
        assert_eq!(p.message, m.as_bytes());
        assert_eq!(p.stamp.unwrap().day, 3);
        let m = "auth-worker(bob,192.0.2.5)<77><S2>: request [3]: Info: pam(bob,192.0.2.5): x";
        let l = format!("Dec  3 10:00:01 {m}");
        let p = parse(l.as_bytes());
        assert_eq!((p.host, p.program, p.message), (None, None, m.as_bytes()));
        // 2.3's own file and a host with a program keep their reading
        let p = parse(b"Dec  3 10:00:01 imap-login: Info: Disconnected");
        assert_eq!(
            (s(p.host), s(p.program)),
            (Some("imap-login:"), Some("Info"))
        );
        let p = parse(b"Dec  3 10:00:01 mx dovecot: auth(a,192.0.2.5)<S>: sql: unknown user");
        assert_eq!((s(p.host), s(p.program)), (Some("mx"), Some("dovecot")));
        let p = parse(b"Dec  3 10:00:01 sshd(pam_unix)[42]: x");
        assert_eq!((s(p.program), p.pid), (Some("sshd(pam_unix)"), 42));
    }

    #[test]
    fn classic_without_pid_and_with_pri() {
        let p = parse(b"<38>Nov 21 10:00:01 host CRON: hello");
        assert_eq!(s(p.program), Some("CRON"));
        assert_eq!(p.pid, 0);
        assert_eq!(p.message, b"hello");
    }

    /// Found by a review of the migration path: Python logging's default-ish line was read
    /// as a syslog line with host `WARNING` and program `myapp.auth`, so a pattern for the
    /// whole line (an imported filter's datepattern) never matched it.
    #[test]
    fn an_own_log_line_with_a_level_is_not_a_syslog_line() {
        for line in [
            &b"2026-01-10 10:00:02,123 WARNING myapp.auth: rejected client 203.0.113.8"[..],
            b"2026-01-10T10:00:02Z ERROR app[7]: rejected client 203.0.113.8",
            b"2026-01-10 10:00:02 INFO auth: rejected client 203.0.113.8",
        ] {
            let p = parse(line);
            assert_eq!(
                (p.program, p.host),
                (None, None),
                "{}",
                String::from_utf8_lossy(line)
            );
            assert_eq!(p.message, line);
        }
        // a host that merely begins like one is a host, and so is one named like a level in
        // lower case
        for host in ["infra1", "alert", "info"] {
            let l = format!("2026-01-10T10:00:02Z {host} sshd[7]: Failed password for x from 192.0.2.1 port 2 ssh2");
            let p = parse(l.as_bytes());
            assert_eq!((s(p.host), s(p.program)), (Some(host), Some("sshd")));
        }
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
    fn rsyslog_protocol23_file_of_a_local_message() {
        // RSYSLOG_SyslogProtocol23Format of what sshd sent to /dev/log: the space after the
        // tag stays in rsyslog's msg, so two spaces follow the structured data
        let l = format!("<38>1 2026-12-04T23:38:44.634252+00:00 198.51.100.7 sshd 4101 - -  {MSG}");
        assert_eq!(
            split(l.as_bytes()),
            (Some("198.51.100.7"), Some("sshd"), 4101, MSG)
        );
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

    fn split(l: &[u8]) -> (Option<&str>, Option<&str>, u32, &str) {
        let p = parse(l);
        (
            s(p.host),
            s(p.program),
            p.pid,
            std::str::from_utf8(p.message).unwrap(),
        )
    }

    const MSG: &str = "Failed password for root from 203.0.113.5 port 22 ssh2";

    #[test]
    fn bracketed_program_without_host() {
        for (line, msg) in [
            (
                "Mar  3 00:17:22 [sshd]: User root from 192.0.2.1 not allowed",
                "User root from 192.0.2.1 not allowed",
            ),
            (
                "Jun 25 23:53:34 [sshd] User root from 192.0.2.1 not allowed",
                "User root from 192.0.2.1 not allowed",
            ),
        ] {
            let p = parse(line.as_bytes());
            assert_eq!(p.program, Some(&b"sshd"[..]), "{line}");
            assert_eq!((p.host, p.pid), (None, 0));
            assert_eq!(p.message, msg.as_bytes());
            assert!(p.stamp.is_some());
        }
        // not a program name: the line stays as it was read before (host `[a` ...)
        let p = parse(b"Mar  3 00:17:22 [a b]: msg");
        assert_ne!(p.program, Some(&b"a b"[..]));
    }

    #[test]
    fn classic_without_host() {
        // BusyBox syslogd -S, socklog's inner line: `%s %s` (stamp, message)
        for l in [
            format!("Nov 21 10:00:01 sshd[123]: {MSG}"),
            format!("Nov  1 10:00:01 sshd[123]: {MSG}"),
            format!("<38>Nov 1 10:00:01 sshd[123]: {MSG}"),
        ] {
            assert_eq!(split(l.as_bytes()), (None, Some("sshd"), 123, MSG), "{l}");
        }
    }

    #[test]
    fn host_written_as_an_address_stays_the_host() {
        for (l, h) in [
            (
                format!("Nov 21 10:00:01 192.0.2.7 sshd[9]: {MSG}"),
                "192.0.2.7",
            ),
            (
                format!("Nov 21 10:00:01 2001:db8::7 sshd[9]: {MSG}"),
                "2001:db8::7",
            ),
            (
                format!("2026-11-21T10:00:01Z 198.51.100.3 sshd[9]: {MSG}"),
                "198.51.100.3",
            ),
            (
                format!("<34>1 2026-11-21T10:00:01Z 192.0.2.7 sshd 9 - - {MSG}"),
                "192.0.2.7",
            ),
        ] {
            assert_eq!(split(l.as_bytes()), (Some(h), Some("sshd"), 9, MSG), "{l}");
        }
    }

    #[test]
    fn rsyslog_tag_without_colon() {
        let l = format!("Nov 21 10:00:01 web1 sshd[123] {MSG}");
        assert_eq!(split(l.as_bytes()), (Some("web1"), Some("sshd"), 123, MSG));
        // without a pid there is nothing to tell the tag from the message
        assert_eq!(parse(b"Nov 21 10:00:01 web1 sshd hello").program, None);
    }

    #[test]
    fn unifi_host_written_twice() {
        // UniFi OS: `Mmm dd hh:mm:ss HOST HOST prog[pid]: msg` (CrowdSec hub .tests/unifi-logs)
        let l = format!("Jun 27 09:02:22 Dream-Machine-Pro Dream-Machine-Pro sshd[454008]: {MSG}");
        assert_eq!(
            split(l.as_bytes()),
            (Some("Dream-Machine-Pro"), Some("sshd"), 454008, MSG)
        );
        let l = format!("<38>Nov  1 10:00:01 udm udm sshd[7]: {MSG}");
        assert_eq!(split(l.as_bytes()), (Some("udm"), Some("sshd"), 7, MSG));
        // the second word must be the host exactly: anything else stays a bare line
        for l in [
            format!("Jun 27 09:02:22 udm udm2 sshd[7]: {MSG}"),
            format!("Jun 27 09:02:22 udm Udm sshd[7]: {MSG}"),
            format!("Jun 27 09:02:22 udm udmx sshd[7]: {MSG}"),
            format!("Jun 27 09:02:22 udm  udm sshd[7]: {MSG}"),
            format!("Jun 27 09:02:22 udm udm {MSG}"),
            // UniFi's firewall lines (no tag after the host) stay bare too
            "Jun 13 23:29:15 udm udm [WAN_LOCAL-D-2147483647] DESCR=\"x\" SRC=192.0.2.1".into(),
        ] {
            let p = parse(l.as_bytes());
            assert_eq!((p.host, p.program), (None, None), "{l}");
            assert_eq!(p.message, l.as_bytes());
        }
    }

    #[test]
    fn openwrt_logread() {
        // ubox log/logread.c: "%s %s%s.%s%s %s\n" (ctime without its newline, `-t`'s
        // "[SECONDS.MILLIS] ", facility, level, " kernel:" for the kernel's, the message)
        let l = format!("Sat Jan 10 18:00:21 2026 authpriv.warn dropbear[832]: {MSG}");
        assert_eq!(split(l.as_bytes()), (None, Some("dropbear"), 832, MSG));
        let st = parse(l.as_bytes()).stamp.unwrap();
        assert_eq!(
            (st.year, st.month, st.day, st.hour, st.minute, st.second, st.offset),
            (Some(2026), 1, 10, 18, 0, 21, None)
        );
        // ctime pads the day with a space; `-t`
        let l = format!("Thu Jan  1 00:00:09 1970 [9.120] auth.info sshd[7]: {MSG}");
        assert_eq!(split(l.as_bytes()), (None, Some("sshd"), 7, MSG));
        assert_eq!(parse(l.as_bytes()).stamp.unwrap().day, 1);
        let l = "Sat Jan 10 18:00:21 2026 kern.info kernel: [   12.345] usb 1-1: new device";
        let p = parse(l.as_bytes());
        assert_eq!((s(p.program), p.pid), (Some("kernel"), 0));
        // not the form: no facility.level, no year, a fraction in the time, a weekday of
        // other bytes; they stay bare
        for l in [
            format!("Sat Jan 10 18:00:21 2026 dropbear[832]: {MSG}"),
            format!("Sat Jan 10 18:00:21 authpriv.warn dropbear[832]: {MSG}"),
            format!("Sat Jan 10 18:00:21.5 2026 authpriv.warn dropbear[832]: {MSG}"),
            format!("S1t Jan 10 18:00:21 2026 authpriv.warn dropbear[832]: {MSG}"),
            format!("Sat Jan 10 18:00:21 2026 [x] authpriv.warn dropbear[832]: {MSG}"),
            format!("Sat Jan 10 18:00:21 2026 AUTH.warn dropbear[832]: {MSG}"),
        ] {
            let p = parse(l.as_bytes());
            assert_eq!((p.host, p.program), (None, None), "{l}");
        }
    }

    #[test]
    fn busybox_facility_level() {
        // busybox sysklogd/syslogd.c: "%s %.64s %s %s\n" (stamp, host, fac.prio, msg)
        let l = format!("Nov 21 10:00:01 router auth.info sshd[123]: {MSG}");
        assert_eq!(
            split(l.as_bytes()),
            (Some("router"), Some("sshd"), 123, MSG)
        );
        let l = format!("Nov 21 10:00:01 router <38> dropbear[5]: {MSG}");
        assert_eq!(
            split(l.as_bytes()),
            (Some("router"), Some("dropbear"), 5, MSG)
        );
        // AIX syslogd: the facilities the priority matched, then the level
        let l = format!("Apr 12 15:19:47 lpar1 auth|security:info sshd[368754]: {MSG}");
        assert_eq!(
            split(l.as_bytes()),
            (Some("lpar1"), Some("sshd"), 368754, MSG)
        );
        let l = format!("Apr 12 15:19:47 lpar1 mail:err sendmail[1]: {MSG}");
        assert_eq!(
            split(l.as_bytes()),
            (Some("lpar1"), Some("sendmail"), 1, MSG)
        );
        for l in [
            format!("Apr 12 15:19:47 lpar1 |auth:info sshd[1]: {MSG}"),
            format!("Apr 12 15:19:47 lpar1 Auth:info sshd[1]: {MSG}"),
        ] {
            let p = parse(l.as_bytes());
            assert_eq!((p.host, p.program), (None, None), "{l}");
        }
    }

    #[test]
    fn freebsd_verbose() {
        // syslogd -v: "<fac.pri>" numbers, -vv: names, before the host
        for l in [
            format!("Nov 21 10:00:01 <4.6> bsd sshd[77]: {MSG}"),
            format!("Nov 21 10:00:01 <auth.info> bsd sshd[77]: {MSG}"),
        ] {
            assert_eq!(
                split(l.as_bytes()),
                (Some("bsd"), Some("sshd"), 77, MSG),
                "{l}"
            );
        }
    }

    #[test]
    fn solaris_message_id() {
        let l = format!("Nov 21 10:00:01 sol sshd[1234]: [ID 800047 auth.info] {MSG}");
        assert_eq!(split(l.as_bytes()), (Some("sol"), Some("sshd"), 1234, MSG));
        // not an id: left in the message
        let l = b"Nov 21 10:00:01 sol sshd[1]: [ID x auth.info] m";
        assert_eq!(parse(l).message, b"[ID x auth.info] m");
    }

    #[test]
    fn socklog_and_svlogd() {
        // socklog: "auth.info: " + the line as sent (no PRI, no host)
        let l = format!("auth.info: Nov 21 10:00:01 sshd[123]: {MSG}");
        assert_eq!(split(l.as_bytes()), (None, Some("sshd"), 123, MSG));
        // svlogd -t: TAI64N label; 0x4000000000000000 + 10 + unix time
        let unix: u64 = 1_795_255_201; // 2026-11-21T10:00:01Z
        let l = format!(
            "@{:016x}{:08x} auth.info: Nov 21 10:00:01 sshd[123]: {MSG}",
            (1u64 << 62) + 10 + unix,
            250_000_000
        );
        let p = parse(l.as_bytes());
        assert_eq!(
            (s(p.program), p.pid, p.message),
            (Some("sshd"), 123, MSG.as_bytes())
        );
        // the inner line's own stamp wins; a bare inner line takes the label's
        let l = format!(
            "@{:016x}{:08x} {MSG}",
            (1u64 << 62) + 10 + unix,
            250_000_000
        );
        let st = parse(l.as_bytes()).stamp.unwrap();
        assert_eq!(
            (st.year, st.month, st.day, st.hour, st.minute, st.second, st.millis, st.offset),
            (Some(2026), 11, 21, 10, 0, 1, 250, Some(0))
        );
        assert_eq!(parse(l.as_bytes()).message, MSG.as_bytes());
        // svlogd -tt
        let l = format!("2026-11-21_10:00:01.25000 auth.info: Nov 21 10:00:01 sshd[1]: {MSG}");
        assert_eq!(split(l.as_bytes()), (None, Some("sshd"), 1, MSG));
        // a client that sent no stamp: the tag with its pid; svlogd -ttt's stamp (UTC)
        let l = format!("2026-11-21T10:00:01.25000 auth.info: sshd[30993]: {MSG}");
        assert_eq!(split(l.as_bytes()), (None, Some("sshd"), 30993, MSG));
        assert_eq!(parse(l.as_bytes()).stamp.unwrap().offset, Some(0));
        let l = format!("auth.info: sshd[30993]: {MSG}");
        assert_eq!(split(l.as_bytes()), (None, Some("sshd"), 30993, MSG));
        // without a pid the inner line stays a message
        let l = format!("auth.info: sshd: {MSG}");
        assert_eq!(split(l.as_bytes()).1, None);
    }

    #[test]
    fn stamped_streams_with_a_stderr_tag() {
        // glibc/musl syslog(3) with LOG_PERROR writes `ident[pid]: msg` or `ident: msg` to
        // stderr; multilog/s6-log/svlogd `t` put a TAI64N label before it (shown with
        // multilog t, s6-log t and runit's svlogd -t)
        let label = "@400000006b1187ce0524d754";
        let l = format!("{label} sshd[11348]: {MSG}");
        assert_eq!(split(l.as_bytes()), (None, Some("sshd"), 11348, MSG));
        let l = format!(
            "{label} dovecot-auth: pam_unix(dovecot:auth): authentication failure; rhost=192.0.2.9"
        );
        let p = parse(l.as_bytes());
        assert_eq!(
            (s(p.program), p.pid, p.message),
            (
                Some("dovecot-auth"),
                0,
                &b"pam_unix(dovecot:auth): authentication failure; rhost=192.0.2.9"[..]
            )
        );
        assert_eq!(p.stamp.unwrap().year, Some(2026));
        // a level is not a program, nor is a service before Dovecot's own `Info: `
        for m in [
            format!("error: {MSG}"),
            format!("Warning: {MSG}"),
            format!("imap-login: Info: {MSG}"),
            MSG.to_string(),
            format!("no tag here: {MSG}"),
            format!("FAIL: {MSG}"),
            r#"{"action": "login_failed", "client_ip": "192.0.2.1"}"#.to_string(),
        ] {
            let l = format!("{label} {m}");
            let p = parse(l.as_bytes());
            assert_eq!((p.program, p.message), (None, m.as_bytes()), "{l}");
            assert!(p.stamp.is_some());
        }
        // runit's svlogd -tt (UTC): bare messages, tags and socklog lines
        let l = format!("2026-12-03_15:17:23.56451 {MSG}");
        let p = parse(l.as_bytes());
        assert_eq!((p.program, p.message), (None, MSG.as_bytes()));
        let st = p.stamp.unwrap();
        assert_eq!((st.year, st.hour, st.offset), (Some(2026), 15, Some(0)));
        let l = format!("2026-12-03_15:17:23.56448 sshd[13275]: {MSG}");
        assert_eq!(split(l.as_bytes()), (None, Some("sshd"), 13275, MSG));
        let l = format!("2026-12-03_15:17:23.56448 rblsmtpd: {MSG}");
        assert_eq!(split(l.as_bytes()), (None, Some("rblsmtpd"), 0, MSG));
        // s6-log T: local time, nine digits, two spaces
        let l = format!("2026-12-03 15:16:20.098463624  {MSG}");
        let p = parse(l.as_bytes());
        assert_eq!((p.program, p.message), (None, MSG.as_bytes()));
        assert_eq!(p.stamp.unwrap().offset, None);
        let l = format!("2026-12-03 15:16:20.098463624  dovecot-auth: {MSG}");
        assert_eq!(split(l.as_bytes()), (None, Some("dovecot-auth"), 0, MSG));
        let l = format!("2026-12-03 15:16:20.098463624  auth.info: Dec  3 15:15:10 sshd[9]: {MSG}");
        assert_eq!(split(l.as_bytes()), (None, Some("sshd"), 9, MSG));
        // a program's own ISO stamp without zone stays part of its message
        let l = format!("2026-12-03 15:16:20 {MSG}");
        assert_eq!(parse(l.as_bytes()).message, l.as_bytes());
    }

    #[test]
    fn svlogd_ttt_and_tai64nlocal() {
        // runit 2.1.2's svlogd -ttt (a real run): UTC, `T`, five digits, no zone
        let l = format!("2026-12-03T18:20:29.17344 {MSG}");
        let p = parse(l.as_bytes());
        assert_eq!((p.host, p.program, p.message), (None, None, MSG.as_bytes()));
        let st = p.stamp.unwrap();
        assert_eq!(
            (st.year, st.month, st.day, st.hour, st.minute, st.second, st.millis, st.offset),
            (Some(2026), 12, 3, 18, 20, 29, 173, Some(0))
        );
        let l = format!("2026-12-03T18:20:29.17348 sshd[42]: {MSG}");
        assert_eq!(split(l.as_bytes()), (None, Some("sshd"), 42, MSG));
        let l = format!("2026-12-03T18:20:29.17348 auth.info: Dec  3 18:20:29 sshd[42]: {MSG}");
        assert_eq!(split(l.as_bytes()), (None, Some("sshd"), 42, MSG));
        // s6-tai64nlocal (and daemontools' tai64nlocal) over an `s6-log t` file (a real
        // run): local time, nine digits, one space
        let l = format!("2026-12-03 18:21:07.182904191 {MSG}");
        let p = parse(l.as_bytes());
        assert_eq!((p.program, p.message), (None, MSG.as_bytes()));
        let st = p.stamp.unwrap();
        assert_eq!(
            (st.hour, st.minute, st.second, st.offset),
            (18, 21, 7, None)
        );
        let l = format!("2026-12-03 18:21:07.182906759 sshd[42]: {MSG}");
        assert_eq!(split(l.as_bytes()), (None, Some("sshd"), 42, MSG));
        // a zone or other precision is not a stamper's: rsyslog's ISO line stays one
        let l = format!("2026-12-03T18:20:29.173440+00:00 web1 sshd[42]: {MSG}");
        assert_eq!(split(l.as_bytes()), (Some("web1"), Some("sshd"), 42, MSG));
    }

    #[test]
    fn syslog_ng_unix_stamp_and_journalctl_short_unix() {
        // syslog-ng 3.38 file destinations with ts_format(unix) and frac_digits(0/3/6) (a
        // real run, template `${DATE} ${HOST} ${MSGHDR}${MSG}`)
        for (l, millis) in [
            (format!("1796322113 vm sshd[30634]: {MSG}"), 0),
            (format!("1796322113.544 vm sshd[30634]: {MSG}"), 544),
            (format!("1796322113.544629 vm sshd[30634]: {MSG}"), 544),
        ] {
            assert_eq!(
                split(l.as_bytes()),
                (Some("vm"), Some("sshd"), 30634, MSG),
                "{l}"
            );
            let st = parse(l.as_bytes()).stamp.unwrap();
            assert_eq!(
                (st.year, st.month, st.day, st.hour, st.minute, st.second, st.millis, st.offset),
                (Some(2026), 12, 3, 18, 21, 53, millis, Some(0))
            );
        }
        let l = "1796322113.544 vm sshd: Invalid user x from 198.51.100.3 port 5";
        assert_eq!(
            split(l.as_bytes()),
            (
                Some("vm"),
                Some("sshd"),
                0,
                "Invalid user x from 198.51.100.3 port 5"
            )
        );
        // journalctl -o short-unix ("%10"PRI_TIME".%06"PRIu64, systemd logs-show.c), with
        // and without the host (--no-hostname)
        let l = format!("1796322113.544629 web1 sshd[123]: {MSG}");
        assert_eq!(split(l.as_bytes()), (Some("web1"), Some("sshd"), 123, MSG));
        let l = format!("1796322113.544629 sshd[123]: {MSG}");
        assert_eq!(split(l.as_bytes()), (None, Some("sshd"), 123, MSG));
        // a host written as an address stays the host
        let l = format!("1796322113.544 192.0.2.7 sshd[9]: {MSG}");
        assert_eq!(
            split(l.as_bytes()),
            (Some("192.0.2.7"), Some("sshd"), 9, MSG)
        );
        // a program's own epoch-stamped file stays bare (squid's access.log, portsentry's
        // history), as do other digit runs
        for l in [
            "1796322113.544    150 192.0.2.1 TCP_DENIED/403 3948 CONNECT 198.51.100.7:25 - HIER_NONE/- text/html",
            "1796322113.544 123456 192.0.2.1 TCP_DENIED/403 3948 CONNECT 198.51.100.7:25 - HIER_NONE/- text/html",
            "1796322113 - 12/03/2026 18:21:53 Host: 192.0.2.1/192.0.2.1 Port: 143 TCP Blocked",
            "179632211 vm sshd[1]: m",
            "1796322113.1234567 vm sshd[1]: m",
            "1796322113. vm sshd[1]: m",
            "17963221139 vm sshd[1]: m",
        ] {
            let p = parse(l.as_bytes());
            assert_eq!((p.program, p.message), (None, l.as_bytes()), "{l}");
        }
    }

    #[test]
    fn syslog_ng_full_stamp() {
        // ts_format(full): "2005 Oct 14 20:47:37.123" (syslog-ng lib/tests/test_zone.c)
        for l in [
            format!("2026 Nov 21 10:00:01 web1 sshd[123]: {MSG}"),
            format!("2026 Nov  1 10:00:01.123 web1 sshd[123]: {MSG}"),
        ] {
            assert_eq!(
                split(l.as_bytes()),
                (Some("web1"), Some("sshd"), 123, MSG),
                "{l}"
            );
            assert_eq!(parse(l.as_bytes()).stamp.unwrap().year, Some(2026));
        }
        let l = format!("<38>2026 Nov 21 10:00:01 192.0.2.7 sshd[9]: {MSG}");
        assert_eq!(
            split(l.as_bytes()),
            (Some("192.0.2.7"), Some("sshd"), 9, MSG)
        );
        // not a year
        assert_eq!(parse(b"20x6 Nov 21 10:00:01 h p[1]: m").program, None);
    }

    #[test]
    fn journalctl_short_iso_and_precise() {
        let l = format!("2026-11-21T10:00:01+0100 web1 sshd[123]: {MSG}");
        assert_eq!(parse(l.as_bytes()).stamp.unwrap().offset, Some(3600));
        assert_eq!(split(l.as_bytes()), (Some("web1"), Some("sshd"), 123, MSG));
        let l = format!("2026-11-21T10:00:01.123456+01:00 web1 sshd[123]: {MSG}");
        assert_eq!(split(l.as_bytes()), (Some("web1"), Some("sshd"), 123, MSG));
        let l = format!("Nov 21 10:00:01.123456 web1 sshd[123]: {MSG}");
        assert_eq!(parse(l.as_bytes()).stamp.unwrap().millis, 123);
        assert_eq!(split(l.as_bytes()), (Some("web1"), Some("sshd"), 123, MSG));
    }

    #[test]
    fn journalctl_short_full() {
        // `Fri 2026-11-21 10:00:01 CET`: systemd's TIMESTAMP_PRETTY, a local zone's name
        let l = format!("Sat 2026-11-21 10:00:01 CET web1 sshd[123]: {MSG}");
        assert_eq!(split(l.as_bytes()), (Some("web1"), Some("sshd"), 123, MSG));
        let st = parse(l.as_bytes()).stamp.unwrap();
        assert_eq!((st.year, st.hour, st.offset), (Some(2026), 10, None));
        // `--utc`, and a zone without a name (tzdata writes the offset)
        let l = format!("Sat 2026-11-21 09:00:01 UTC web1 sshd[123]: {MSG}");
        assert_eq!(parse(l.as_bytes()).stamp.unwrap().offset, Some(0));
        let l = format!("Sat 2026-11-21 14:30:01 +0530 web1 sshd[123]: {MSG}");
        assert_eq!(parse(l.as_bytes()).stamp.unwrap().offset, Some(19_800));
        let l = format!("Sat 2026-11-21 07:00:01 -03 web1 sshd[123]: {MSG}");
        assert_eq!(parse(l.as_bytes()).stamp.unwrap().offset, Some(-10_800));
        // `--no-hostname`
        let l = format!("Sat 2026-11-21 10:00:01 CET sshd[123]: {MSG}");
        assert_eq!(split(l.as_bytes()), (None, Some("sshd"), 123, MSG));
        // not this form: a zone of other bytes, no zone, a weekday that is not letters
        for l in [
            "Sat 2026-11-21 10:00:01 C/T web1 sshd[123]: m",
            "Sat 2026-11-21 10:00:01 web1 sshd[123]: m",
            "S4t 2026-11-21 10:00:01 CET web1 sshd[123]: m",
        ] {
            assert_eq!(parse(l.as_bytes()).program, None, "{l}");
        }
    }

    #[test]
    fn rfc5424_without_pri() {
        let l = format!("1 2026-11-21T10:00:01.123456+01:00 web1 sshd 123 - [meta x=\"]\"] {MSG}");
        assert_eq!(split(l.as_bytes()), (Some("web1"), Some("sshd"), 123, MSG));
        // sysklogd's file lines: neither `<PRI>` nor the version (fprintlog_write)
        let l = format!("2026-11-21T10:00:01.123456+00:00 web1 dropbear 6052 - - {MSG}");
        assert_eq!(
            split(l.as_bytes()),
            (Some("web1"), Some("dropbear"), 6052, MSG)
        );
        let st = parse(l.as_bytes()).stamp.unwrap();
        assert_eq!((st.hour, st.offset), (10, Some(0)));
        let l = format!("2026-11-21T10:00:01.123456+00:00 web1 sshd - - [x a=\"1\"] {MSG}");
        assert_eq!(split(l.as_bytes()), (Some("web1"), Some("sshd"), 0, MSG));
        // an rsyslog line stays one, whatever its message
        let l = "2026-11-21T10:00:01.123456+00:00 web1 sshd[7]: 6052 - - x";
        assert_eq!(
            split(l.as_bytes()),
            (Some("web1"), Some("sshd"), 7, "6052 - - x")
        );
        let l = "2026-11-21T10:00:01.123456+00:00 web1 sshd: 6052 - - x";
        assert_eq!(
            split(l.as_bytes()),
            (Some("web1"), Some("sshd"), 0, "6052 - - x")
        );
    }

    #[test]
    fn macos_log_show() {
        let l = format!("2026-11-21 10:00:01.123456+0100 0x2f0a     Default     0x0                  123    0    sshd: {MSG}");
        assert_eq!(split(l.as_bytes()), (None, Some("sshd"), 123, MSG));
        let l = format!("2026-11-21 10:00:01.123456+0100 0x2f0a     Error       0x1c3                123    0    sshd: (libpam.2.dylib) {MSG}");
        assert_eq!(split(l.as_bytes()), (None, Some("sshd"), 123, MSG));
        let l =
            format!("2026-11-21 10:00:01.123456+0100  localhost sshd[123]: (libpam.2.dylib) {MSG}");
        assert_eq!(split(l.as_bytes()).1, Some("sshd"));
        let l = format!("2026-11-21 10:00:01.123 Df sshd[123:2f0a] {MSG}");
        assert_eq!(split(l.as_bytes()), (None, Some("sshd"), 123, MSG));
        assert_eq!(parse(l.as_bytes()).stamp.unwrap().offset, None);
    }

    #[test]
    fn cri_lines() {
        let l =
            format!("2026-11-21T10:00:01.123456789Z stderr F Nov 21 10:00:01 pod sshd[7]: {MSG}");
        assert_eq!(split(l.as_bytes()), (Some("pod"), Some("sshd"), 7, MSG));
        let l = format!("2026-11-21T10:00:01.123456789+01:00 stdout F {MSG}");
        let p = parse(l.as_bytes());
        assert_eq!((p.program, p.message), (None, MSG.as_bytes()));
        assert_eq!(p.stamp.unwrap().offset, Some(3600));
        let l = format!("2026-11-21T10:00:01.1Z stdout P {MSG}");
        assert_eq!(parse(l.as_bytes()).message, MSG.as_bytes());
    }

    #[test]
    fn partial_container_records() {
        assert!(is_partial_record(b"2026-11-21T10:00:01.1Z stdout P aaaa"));
        assert!(!is_partial_record(b"2026-11-21T10:00:01.1Z stdout F aaaa"));
        assert!(is_partial_record(
            br#"{"log":"aaaa","stream":"stdout","time":"2026-11-21T10:00:01Z"}"#
        ));
        assert!(!is_partial_record(
            br#"{"log":"aaaa\n","stream":"stdout","time":"2026-11-21T10:00:01Z"}"#
        ));
        // an escaped backslash before the n: no closing newline
        assert!(is_partial_record(
            br#"{"log":"aaaa\\n","stream":"stdout","time":"2026-11-21T10:00:01Z"}"#
        ));
        assert!(!is_partial_record(b"Nov 21 10:00:01 h sshd[1]: P x"));
    }

    /// Each container record's stream, whole or partial; other lines are none.
    #[test]
    fn container_records_and_their_streams() {
        type Case<'a> = (&'a [u8], Option<(u8, bool)>);
        let cases: [Case; 8] = [
            (b"2026-11-21T10:00:01.1Z stdout P aaaa", Some((STDOUT, true))),
            (b"2026-11-21T10:00:01.1Z stderr F aaaa", Some((STDERR, false))),
            (b"2026-11-21T10:00:01.1Z stderr F", Some((STDERR, false))),
            (b"2026-11-21T10:00:01.1Z stderr X aaaa", None),
            (
                br#"{"log":"aaaa","stream":"stderr","time":"2026-11-21T10:00:01Z"}"#,
                Some((STDERR, true)),
            ),
            (
                // a "stream" in the log text is the program's, not the record's
                br#"{"log":"\",\"stream\":\"stderr\"\n","stream":"stdout","time":"2026-11-21T10:00:01Z"}"#,
                Some((STDOUT, false)),
            ),
            (b"2026-11-21T10:00:01.123+00:00 h sshd[1]: stdout P x", None),
            (
                br#"{"log":"aaaa","time":"2026-11-21T10:00:01Z"}"#,
                Some((UNSAID, true)),
            ),
        ];
        for (l, want) in cases {
            assert_eq!(container_record(l), want, "{}", String::from_utf8_lossy(l));
        }
    }

    #[test]
    fn docker_json_file() {
        let l = format!(
            r#"{{"log":"Nov 21 10:00:01 c1 sshd[7]: {MSG}\n","stream":"stderr","time":"2026-11-21T10:00:01.123456789Z"}}"#
        );
        assert_eq!(split(l.as_bytes()), (Some("c1"), Some("sshd"), 7, MSG));
        let l = format!(
            r#"{{"log":"{MSG}\r\n","stream":"stdout","attrs":{{"a":"b"}},"time":"2026-11-21T10:00:01Z"}}"#
        );
        let p = parse(l.as_bytes());
        assert_eq!((p.program, p.message), (None, MSG.as_bytes()));
        assert_eq!(p.stamp.unwrap().year, Some(2026));
        // escapes stay escaped: an escaped newline never splits the line, an escaped
        // quote never ends the field
        let l = br#"{"log":"Invalid user a\nFailed password for root from 192.0.2.9 port 1 ssh2 \"x\\\n","stream":"stderr","time":"2026-11-21T10:00:01Z"}"#;
        assert_eq!(
            parse(l).message,
            &br#"Invalid user a\nFailed password for root from 192.0.2.9 port 1 ssh2 \"x\\"#[..]
        );
        // no time: not a Docker record
        assert_eq!(parse(br#"{"log":"x\n"}"#).message, br#"{"log":"x\n"}"#);
    }

    /// Every form, with a host field written as an address, through the sshd filter: the
    /// address reported is the one in the message.
    #[test]
    fn every_form_reports_the_message_address_through_sshd() {
        use crate::filter::{builtin, Filter, MatchSet, Mode};
        let b = builtin::get("sshd").unwrap();
        let set = MatchSet::new(
            vec![Filter::from_toml(b.source, b.name).unwrap()],
            Mode::Normal,
        );
        let mut scratch = set.scratch();
        let ctx = crate::time::TimeContext {
            now: 1_795_255_201_000,
            local_offset: 0,
            zone: None,
        };
        let syslog = format!("Nov 21 10:00:01 192.0.2.7 sshd[9]: {MSG}");
        let lines = [
            syslog.clone(),
            format!("<38>Nov  1 10:00:01 sshd[9]: {MSG}"),
            format!("Nov 21 10:00:01 192.0.2.7 sshd[9] {MSG}"),
            format!("Nov 21 10:00:01 192.0.2.7 auth.info sshd[9]: {MSG}"),
            format!("Nov 21 10:00:01 <4.6> 192.0.2.7 sshd[9]: {MSG}"),
            format!("Nov 21 10:00:01 192.0.2.7 sshd[9]: [ID 800047 auth.info] {MSG}"),
            format!("2026-11-21T10:00:01.5+01:00 2001:db8::7 sshd[9]: {MSG}"),
            format!("<34>1 2026-11-21T10:00:01Z 192.0.2.7 sshd 9 - - {MSG}"),
            format!("1 2026-11-21T10:00:01Z 192.0.2.7 sshd 9 - [a b=\"c\"] {MSG}"),
            format!("auth.info: Nov 21 10:00:01 sshd[9]: {MSG}"),
            format!("@400000006b016bab0ee6b280 auth.info: Nov 21 10:00:01 sshd[9]: {MSG}"),
            format!("@400000006b016bab0ee6b280 sshd[9]: {MSG}"),
            format!("@400000006b016bab0ee6b280 {MSG}"),
            format!("2026-11-21_10:00:01.25000 {MSG}"),
            format!("2026-11-21 10:00:01.123456789  sshd[9]: {MSG}"),
            format!("2026 Nov 21 10:00:01 192.0.2.7 sshd[9]: {MSG}"),
            format!("1795255201.123 192.0.2.7 sshd[9]: {MSG}"),
            format!("1795255201.123456 sshd[9]: {MSG}"),
            format!("2026-11-21T10:00:01.25000 {MSG}"),
            format!("2026-11-21 10:00:01.123456789 {MSG}"),
            format!("2026-11-21 10:00:01.1+0100 0x2f0a  Default  0x0  9  0  sshd: {MSG}"),
            format!("2026-11-21 10:00:01.1 Df sshd[9:2f0a] {MSG}"),
            format!("2026-11-21T10:00:01.1Z stderr F {syslog}"),
            format!(r#"{{"log":"{syslog}\n","stream":"stderr","time":"2026-11-21T10:00:01Z"}}"#),
        ];
        for l in &lines {
            let h = set
                .match_line(l.as_bytes(), &ctx, &mut scratch)
                .unwrap_or_else(|| panic!("no match: {l}"));
            assert_eq!(h.addr.to_string(), "203.0.113.5", "{l}");
        }
    }

    #[test]
    fn nested_records_are_read_once() {
        // socklog inside socklog: the inner one is a bare message
        let l = "auth.info: auth.info: ".repeat(4000);
        assert_eq!(parse(l.as_bytes()).program, None);
        let l = format!("auth.info: auth.info: Nov 21 10:00:01 sshd[1]: {MSG}");
        assert_eq!(parse(l.as_bytes()).program, None);
        // a CRI record inside a CRI record is the inner line, bare
        let l = "2026-11-21T10:00:01Z stdout F 2026-11-21T10:00:01Z stdout F x";
        assert_eq!(
            parse(l.as_bytes()).message,
            b"2026-11-21T10:00:01Z stdout F x"
        );
    }

    proptest::proptest! {
        #[test]
        fn never_panics(l in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200)) {
            let p = parse(&l);
            // the message is always a part of the line
            let r = l.as_ptr_range();
            proptest::prop_assert!(p.message.is_empty() || (r.start <= p.message.as_ptr() && p.message.as_ptr_range().end <= r.end));
            // and every field is: the spans give the same split back
            let spans = Spans::of(&l, &p);
            proptest::prop_assert!(spans.is_some());
            proptest::prop_assert_eq!(spans.unwrap().parsed(&l), p);
        }

        #[test]
        fn prefixes_with_fuzzed_tails(
            head in proptest::sample::select(vec!["{\"log\":\"", "1796322113.544 ", "2026-11-21T10:00:01.25000 ", "2026-11-21 10:00:01.123456789 ", "@4000000065", "2026-11-21T10:00:01Z stdout F ", "Nov 21 10:00:01 h ", "auth.info: ", "<4.6> ", "1 2026-11-21T10:00:01Z ", "2026-11-21 10:00:01.1+0100 0x1 D 0x0 "]),
            tail in "[ -~]{0,60}",
        ) {
            let l = format!("{head}{tail}");
            let p = parse(l.as_bytes());
            let spans = Spans::of(l.as_bytes(), &p);
            proptest::prop_assert!(spans.is_some());
            proptest::prop_assert_eq!(spans.unwrap().parsed(l.as_bytes()), p);
        }
    }

    proptest::proptest! {
        #[test]
        fn colon_or_space_finds_what_a_byte_loop_finds(
            b in proptest::collection::vec(
                proptest::sample::select(vec![b':', b' ', b'[', b']', b'a', b'9', 0, 0x7f, 0x80, 0xba, 0xff]),
                0..90,
            ),
            limit in 0usize..100,
        ) {
            let want = b.iter().take(limit).position(|&c| c == b':' || c == b' ');
            proptest::prop_assert_eq!(colon_or_space(&b, limit), want);
        }

        #[test]
        fn digits_reads_what_a_plain_parser_reads(t in "[0-9/a]{0,11}") {
            let want = (!t.is_empty() && t.bytes().all(|c| c.is_ascii_digit()))
                .then(|| t.bytes().fold(0u32, |a, d| a.wrapping_mul(10).wrapping_add(u32::from(d - b'0'))));
            proptest::prop_assert_eq!(digits(t.as_bytes()), want);
        }

        #[test]
        fn months_are_read_in_any_case(m in "[A-Za-z]{3}") {
            const NAMES: [&str; 12] = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];
            let want = NAMES.iter().position(|n| n.eq_ignore_ascii_case(&m)).map(|i| i as u8 + 1);
            proptest::prop_assert_eq!(crate::time::month_from_abbrev(m.as_bytes()), want);
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

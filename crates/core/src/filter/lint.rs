//! What a pattern written outside this project (a `[[filter]]` table, a filter file, a
//! fail2ban filter brought in by `import-fail2ban`) lets a client do: checks for warnings,
//! not for refusals. The built-in filters are audited rule by rule against their programs'
//! real output (filters/*.toml headers), and none is warned of (a test checks); a filter of
//! the admin's own is not audited, and a fail2ban `failregex` without `^` and `$` becomes a
//! pattern with text of any kind on both sides.
//!
//! * **The address can be the client's choice** ([`address_forgeable`]): the attack is
//!   made. For each field of the pattern (a repetition of long text), a line is built from
//!   the pattern itself with the real address, the field holding a payload built from the
//!   same pattern with a forged address (what follows the field, or what follows the last
//!   field before the address); when the pattern reads the forged address from such a line
//!   (and the field can hold the payload at all), it is warned of. `Login failed for user
//!   .* from {HOST}.*` is; with fixed text after the address (` port [0-9]+$`) it is not:
//!   the real address is the only one that fits, wherever the client's field stands (a
//!   pattern is anchored at both ends). It tries a few payloads, not every one: silence is
//!   no proof.
//! * **An ignore pattern a client can trigger** ([`ignore_found_anywhere`]): one whose
//!   first fixed words come after text of any length and kind (`.*trusted`,
//!   `\S+ .*trusted`): any line holding them anywhere, a user name or a URL a client sent,
//!   never counts.

use regex_syntax::hir::{Class, Hir, HirKind};

/// Whether a client's field can make the anchored pattern `full` (in the regex crate's
/// syntax, as [`super::macros::anchored`] gives it) read an address of the client's choice
/// (see the module header and [`forged`]). False when it has no address capture or does
/// not parse.
pub fn address_forgeable(full: &str) -> bool {
    forgeable(full, false, &ADDRS)
}

/// [`address_forgeable`] for a client of the other family than the pattern reads: a
/// pattern that reads IPv4 addresses only finds none where the program writes an IPv6
/// client's, and may read an IPv4 address the client typed into a field instead (review
/// 61: blacklist.py's SSH_REGEX with a `.*` after the address got a client at 2001:db8::7
/// 198.51.100.5 banned, with no warning).
pub fn address_forgeable_other_family(full: &str) -> bool {
    forgeable(full, false, &CROSS)
}

/// [`address_forgeable`] if the program writes a client's spaces raw into a field that
/// stops at blanks (`\S+`, `[\w.@-]+`): the pattern then ends the field at the first one
/// and reads the rest as the program's (review 58). Many programs never do (a HELO name, an
/// IRC nick, a Kerberos principal are one word), which the built-in filters' audits check;
/// a filter of the admin's own is warned of this apart.
pub fn address_forgeable_with_spaces(full: &str) -> bool {
    forgeable(full, true, &ADDRS)
}

fn forgeable(full: &str, spaces: bool, pairs: &[(&[u8], &[u8])]) -> bool {
    let Some(h) = parse(full) else {
        return false;
    };
    if !contains_host(&h) {
        return false;
    }
    let Ok(re) = regex::bytes::Regex::new(full) else {
        return false;
    };
    forged(&h, &re, spaces, pairs)
}

/// The real and the forged address of the lines built (IPv4, else IPv6 for a pattern
/// that reads only those).
const ADDRS: [(&[u8], &[u8]); 2] = [
    (b"203.0.113.9", b"198.51.100.5"),
    (b"2001:db8::9", b"2001:db8::5"),
];
/// The real address of one family and the forged one of the other: tried on a pattern that
/// reads the forged one's family only ([`address_forgeable_other_family`]).
const CROSS: [(&[u8], &[u8]); 2] = [
    (b"2001:db8::9", b"198.51.100.5"),
    (b"203.0.113.9", b"2001:db8::5"),
];
const MARK: &[u8] = b"\x01";

/// The fields tried in one pattern at most (a pattern of hundreds of `.*` took a minute,
/// review 58); the rest are not tried.
const MAX_FIELDS: usize = 48;

/// Whether a client that writes into one of the pattern's fields can have the pattern
/// read an address of its choice: the attack is made and matched. Each field (a repetition
/// of text that can hold ` from ` and an address: [`fields`]) is given, in a line built
/// from the pattern itself with the real address, a payload built from the same pattern
/// with the forged address: the text that follows the field, or the text that follows the
/// last field before the address (for a field after it, against a pattern that reads the
/// last such address); with a word before and after it, or not. What the field holds:
///
/// * the payload as it is, when the field's own pattern can hold it;
/// * else the payload with its quotes and backslashes escaped, when the field can hold
///   that (a JSON or logfmt string: the program escapes them, as its pattern says);
/// * else, for a field that stops only at blanks (`\S+`, `[\w.@-]+`), the payload as it
///   is: a program that logs a name with spaces writes them, and the pattern then ends
///   the field at the first one (review 58);
/// * else, for a field after the address, the payload up to the first byte the field
///   cannot hold (`\([^)]*\)`: the program's own `)` ends it, review 58);
/// * else nothing (`[^\[\]]*` before `\[client `: a field that cannot hold the
///   program's words).
///
/// The pattern reads the forged address from one of these lines: warned of.
fn forged(h: &Hir, re: &regex::bytes::Regex, spaces: bool, pairs: &[(&[u8], &[u8])]) -> bool {
    // (the forged address must be one the pattern reads; a real one of the other family,
    // which it does not read, is the point of [`CROSS`])
    let reads = |a: &[u8]| re.is_match(&render(h, None, a));
    let Some(&(real_addr, fake_addr)) = pairs
        .iter()
        .find(|(r, f)| reads(f) && (pairs == ADDRS.as_slice()) == reads(r))
    else {
        return false;
    };
    let leaves: Vec<&Hir> = fields_of(h).into_iter().take(MAX_FIELDS).collect();
    let before_host = last_field_before_host(h, &leaves, real_addr);
    for &l in &leaves {
        let real = render(h, Some(l), real_addr);
        let (Some(at), Some(host_at)) = (find(&real, MARK), find(&real, real_addr)) else {
            continue;
        };
        let before = at < host_at;
        let (pre, post_real) = (&real[..at], &real[at + MARK.len()..]);
        // a field between quotes is a JSON or logfmt string: its program escapes a quote
        // written in it (`"user":".*"` held for every line a JSON encoder wrote, review 58)
        let quoted = pre.last() == Some(&b'"') && post_real.first() == Some(&b'"');
        let mut payloads = Vec::new();
        let fake = render(h, Some(l), fake_addr);
        if let Some(f) = find(&fake, MARK) {
            payloads.push(fake[f + MARK.len()..].to_vec());
        }
        if let Some(b) = before_host {
            let fake = render(h, Some(b), fake_addr);
            if let Some(f) = find(&fake, MARK) {
                payloads.push(fake[f + MARK.len()..].to_vec());
            }
        }
        let Ok(field) = regex::bytes::Regex::new(&format!("(?s-u)^(?:{l})$")) else {
            continue;
        };
        let mut body = [false; 128];
        body_bytes(l, &mut body);
        for p in &payloads {
            for (a, z) in [
                ("", ""),
                ("x ", ""),
                ("x", ""),
                ("", " "),
                ("x ", " "),
                ("", " x"),
                ("x ", " x"),
            ] {
                let mut text = a.as_bytes().to_vec();
                text.extend_from_slice(p);
                text.extend_from_slice(z.as_bytes());
                let text = if quoted { escape(&text) } else { text };
                let Some(text) = written(&field, &body, text, before, spaces) else {
                    continue;
                };
                let mut line = pre.to_vec();
                line.extend_from_slice(&text);
                line.extend_from_slice(post_real);
                if re
                    .captures(&line)
                    .and_then(|c| c.name("host").map(|m| m.as_bytes() == fake_addr))
                    == Some(true)
                {
                    return true;
                }
            }
        }
    }
    false
}

/// `text` with a backslash before each quote and backslash, as a JSON or logfmt writer
/// puts it in a string.
fn escape(text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() + 8);
    for &c in text {
        if c == b'"' || c == b'\\' || c == b'\'' {
            out.push(b'\\');
        }
        out.push(c);
    }
    out
}

/// What a program writes into a field whose pattern is `field` (its bytes `body`) when a
/// client sends `text` (see [`forged`]); None when the field cannot hold the program's
/// words.
fn written(
    field: &regex::bytes::Regex,
    body: &[bool; 128],
    text: Vec<u8>,
    before: bool,
    spaces: bool,
) -> Option<Vec<u8>> {
    if field.is_match(&text) {
        return Some(text);
    }
    let escaped = escape(&text);
    if field.is_match(&escaped) {
        return Some(escaped);
    }
    // (a field that cannot hold a space but holds the text's first word)
    let word: Vec<u8> = text.iter().copied().take_while(|c| *c != b' ').collect();
    if before && spaces && !word.is_empty() && !field.is_match(b" ") && field.is_match(&word) {
        return Some(text);
    }
    if !before {
        let cut = text
            .iter()
            .position(|&c| c < 128 && !body[usize::from(c)])
            .unwrap_or(text.len());
        if cut > 0 && field.is_match(&text[..cut]) {
            return Some(text[..cut].to_vec());
        }
    }
    None
}

fn find(h: &[u8], n: &[u8]) -> Option<usize> {
    h.windows(n.len()).position(|w| w == n)
}

fn contains_host(h: &Hir) -> bool {
    match h.kind() {
        HirKind::Capture(c) => c.name.as_deref() == Some("host") || contains_host(&c.sub),
        HirKind::Repetition(r) => contains_host(&r.sub),
        HirKind::Concat(v) | HirKind::Alternation(v) => v.iter().any(contains_host),
        _ => false,
    }
}

/// The repetitions of long text in `h` outside the address capture: the fields a client
/// may write (a structure of the program's, JSON's `,"k":"v"` rounds, cannot hold the
/// payloads, which [`forged`] checks).
fn fields_of(h: &Hir) -> Vec<&Hir> {
    fields(h)
        .into_iter()
        .filter(|r| !contains_host(r))
        .collect()
}

/// The last of `leaves` that the pattern's shortest text puts before the address.
fn last_field_before_host<'a>(h: &Hir, leaves: &[&'a Hir], real: &[u8]) -> Option<&'a Hir> {
    let mut best: Option<(usize, &Hir)> = None;
    for &l in leaves {
        let line = render(h, Some(l), real);
        if let (Some(m), Some(a)) = (find(&line, MARK), find(&line, real)) {
            if m < a && best.is_none_or(|(b, _)| m > b) {
                best = Some((m, l));
            }
        }
    }
    best.map(|(_, l)| l)
}

/// The shortest text of `h` (see [`sample`]), with `addr` for the address capture and
/// [`MARK`] for the field `target`; a repetition or an alternative that holds either is
/// taken (once) rather than left out.
fn render(h: &Hir, target: Option<&Hir>, addr: &[u8]) -> Vec<u8> {
    if target.is_some_and(|t| std::ptr::eq(t, h)) {
        return MARK.to_vec();
    }
    let holds = |x: &Hir| contains_host(x) || target.is_some_and(|t| contains(x, t));
    match h.kind() {
        HirKind::Capture(c) if c.name.as_deref() == Some("host") => addr.to_vec(),
        HirKind::Capture(c) => render(&c.sub, target, addr),
        HirKind::Concat(v) => v.iter().flat_map(|x| render(x, target, addr)).collect(),
        HirKind::Alternation(v) => {
            let pick = v.iter().find(|x| holds(x)).or(v.first());
            pick.map(|x| render(x, target, addr)).unwrap_or_default()
        }
        HirKind::Repetition(r) => {
            let n = if holds(&r.sub) { r.min.max(1) } else { r.min };
            render(&r.sub, target, addr).repeat(n as usize)
        }
        _ => sample(h),
    }
}

fn contains(h: &Hir, t: &Hir) -> bool {
    if std::ptr::eq(h, t) {
        return true;
    }
    match h.kind() {
        HirKind::Capture(c) => contains(&c.sub, t),
        HirKind::Repetition(r) => contains(&r.sub, t),
        HirKind::Concat(v) | HirKind::Alternation(v) => v.iter().any(|x| contains(x, t)),
        _ => false,
    }
}

/// Whether the anchored pattern `full` finds its text anywhere in a line: text of any
/// length and kind ([`free`]) stands before its first fixed words (a literal of two bytes
/// or more: `.*trusted`, `\S+ .*trusted`, an optional stamp then `.*?trusted`); see the
/// module header.
pub fn ignore_found_anywhere(full: &str) -> bool {
    let Some(h) = parse(full) else {
        return false;
    };
    let mut seq = Vec::new();
    flatten(&h, &mut seq);
    for (k, x) in seq.iter().enumerate() {
        if let HirKind::Literal(l) = x.kind() {
            if l.0.len() >= 2 {
                return false;
            }
        }
        if free(x, seq.get(k + 1).copied()) {
            return true;
        }
    }
    false
}

/// The pieces of `h` in order, through concatenations and groups that are always there.
fn flatten<'a>(h: &'a Hir, out: &mut Vec<&'a Hir>) {
    match h.kind() {
        HirKind::Concat(v) => v.iter().for_each(|x| flatten(x, out)),
        HirKind::Capture(c) => flatten(&c.sub, out),
        HirKind::Look(_) | HirKind::Empty => {}
        _ => out.push(h),
    }
}

/// The warnings for filter `f` (one written outside this project: the built-in filters give
/// none, a test checks), one sentence each: its rules and `[correlate]` patterns whose
/// address a client may choose, its ignore patterns a client may trigger.
pub fn warnings(f: &super::Filter) -> Vec<String> {
    let mut out = Vec::new();
    let mut seen: Vec<&str> = Vec::new();
    for r in f.rules() {
        if seen.contains(&r.id.as_str()) {
            continue;
        }
        let p = r.pattern().as_str();
        let why = if address_forgeable(p) {
            "a line built from the pattern, a client's field holding the program's words around the address with 198.51.100.5, is read as 198.51.100.5 and not the real address after it"
        } else if address_forgeable_other_family(p) && !both_families(f, &r.id) {
            "it reads addresses of one family only (IPv4, or IPv6), so for a client of the other family it finds no address where the program writes the client's, and reads one the client typed into a field: a line built from the pattern for a client at 2001:db8::9, a field holding the program's words with 198.51.100.5, is read as 198.51.100.5 (read both families with {HOST})"
        } else if address_forgeable_with_spaces(p) {
            "if the program writes a client's spaces raw into a field of the pattern that stops at blanks (`\\S+`, a word class), a line built from the pattern with the program's words and 198.51.100.5 written after the field's first word is read as 198.51.100.5 (sshd and many web applications write a user name with spaces as it is)"
        } else {
            continue;
        };
        seen.push(&r.id);
        out.push(format!(
            "filter {:?}, rule {:?}: a client can choose the address it reads: {why}: tie the text after the address to the program's own words up to the end of its message (` port [0-9]+$`) rather than `.*`, and match a quoted field with its escapes (`\"(?:[^\"\\\\]|\\\\.)*\"`)",
            f.name, r.id
        ));
    }
    for (i, c) in f.correlate.iter().enumerate() {
        if address_forgeable(c.re.as_str()) {
            out.push(format!(
                "filter {:?}, [correlate] pattern {}: a client can choose the address a session is tied to (a line built from the pattern, a client's field holding the program's words with another address, is read as that address): tie the text after the address to the program's own words",
                f.name,
                i + 1
            ));
        } else if ignore_found_anywhere(c.re.as_str()) {
            out.push(format!(
                "filter {:?}, [correlate] pattern {}: it finds its words anywhere in a line (text of any kind, such as `.*`, before them), so a client that writes them into a field of its own can end or clear a session (a `success` line forgives its failures): start it with the program's own words",
                f.name,
                i + 1
            ));
        }
    }
    for (i, re) in f.ignore.iter().enumerate() {
        if ignore_found_anywhere(re.as_str()) {
            out.push(format!(
                "filter {:?}, ignore[{i}]: it finds its words anywhere in a line (text of any kind, such as `.*`, before them), so a line that holds them never counts, and a client that writes them into a field of its own (a user name, a URL) hides its failures: start it with the program's own words at the start of the message",
                f.name
            ));
        }
    }
    out
}

/// Whether the patterns of rule `id` of `f` read addresses of both families between them
/// (one pattern for IPv4, another for IPv6, as fail2ban filters often have): a client of
/// either family has its own address read then, by the first pattern that holds it.
fn both_families(f: &super::Filter, id: &str) -> bool {
    let (mut v4, mut v6) = (false, false);
    for r in f.rules().iter().filter(|r| r.id == id) {
        let p = r.pattern().as_str();
        let (Some(h), Ok(re)) = (parse(p), regex::bytes::Regex::new(p)) else {
            continue;
        };
        v4 |= re.is_match(&render(&h, None, ADDRS[0].0));
        v6 |= re.is_match(&render(&h, None, ADDRS[1].0));
    }
    v4 && v6
}

fn parse(full: &str) -> Option<Hir> {
    regex_syntax::ParserBuilder::new()
        .utf8(false)
        .build()
        .parse(full)
        .ok()
}

/// The shortest text `h` matches, as a program would write it (the first of alternatives,
/// a letter or digit of a class where the class has one): what a client must write to pose
/// as that piece of the line.
fn sample(h: &Hir) -> Vec<u8> {
    match h.kind() {
        HirKind::Literal(l) => l.0.to_vec(),
        HirKind::Class(_) => {
            let mut set = [false; 128];
            first_bytes(h, &mut set);
            let pick = (b'a'..=b'z')
                .chain(b'0'..=b'9')
                .chain(0x20..0x7f)
                .find(|&c| set[usize::from(c)]);
            pick.map(|c| vec![c]).unwrap_or_default()
        }
        HirKind::Repetition(r) => {
            let one = sample(&r.sub);
            one.repeat(r.min as usize)
        }
        HirKind::Capture(c) => sample(&c.sub),
        HirKind::Concat(v) => v.iter().flat_map(sample).collect(),
        HirKind::Alternation(v) => v.first().map(sample).unwrap_or_default(),
        _ => Vec::new(),
    }
}

/// The repetitions in `h` (itself included) that can hold ` from ` and an address: of no
/// bound, or of 16 bytes or more.
fn fields(h: &Hir) -> Vec<&Hir> {
    let mut out = Vec::new();
    let mut stack = vec![h];
    while let Some(x) = stack.pop() {
        match x.kind() {
            HirKind::Repetition(r) => {
                // (long enough for ` from ` and an address: `.{1,30}` is, review 58; a
                // repetition of fixed words, `(?:::ffff:)*`, holds no client's text, and taken
                // for the field before the address it hid the one that is, review 61)
                if x.properties().maximum_len().is_none_or(|m| m >= 16) && !fixed_text(&r.sub) {
                    out.push(x);
                }
                stack.push(&r.sub);
            }
            HirKind::Capture(c) => stack.push(&c.sub),
            HirKind::Concat(v) | HirKind::Alternation(v) => stack.extend(v.iter()),
            _ => {}
        }
    }
    out
}

/// Whether `h` matches fixed words only: literals, in groups, sequences or alternatives.
fn fixed_text(h: &Hir) -> bool {
    match h.kind() {
        HirKind::Literal(_) | HirKind::Empty => true,
        HirKind::Capture(c) => fixed_text(&c.sub),
        HirKind::Concat(v) | HirKind::Alternation(v) => v.iter().all(fixed_text),
        _ => false,
    }
}

/// Whether the pieces `v` (followed by `next`, when known) hold free text ([`free`]).
fn free_seq(v: &[Hir], next: Option<&Hir>) -> bool {
    (0..v.len()).any(|k| free(&v[k], v.get(k + 1).or(next)))
}

/// Whether `h` (followed by `next`, when known) holds text of any length and kind: a
/// repetition without upper bound, or of 32 rounds or more, of something that can hold a
/// space and nearly every printable byte (`.*`, `.{0,200}`, `(?:\S+ )*`, `[^;]*`) and that
/// does not end at a delimiter: the piece after it starts only with bytes no round of it
/// can start with (`[^"]*"`, `"(?:[^"\\]|\\.)*"`: a program that escapes the delimiter keeps
/// a client inside its field; see the built-in JSON filters). At the end of a pattern such
/// a class is the rest of the line.
fn free(h: &Hir, next: Option<&Hir>) -> bool {
    match h.kind() {
        HirKind::Repetition(r) => (wide(r) && !delimited(r, next)) || free(&r.sub, None),
        HirKind::Capture(c) => free(&c.sub, next),
        HirKind::Concat(v) => free_seq(v, next),
        HirKind::Alternation(v) => v.iter().any(|x| free(x, next)),
        _ => false,
    }
}

/// Whether the rounds of `r` can be long and hold words and spaces (see [`free`]).
fn wide(r: &regex_syntax::hir::Repetition) -> bool {
    if r.max.is_some_and(|m| m < 32) {
        return false;
    }
    let mut body = [false; 128];
    body_bytes(&r.sub, &mut body);
    body[usize::from(b' ')] && body[0x20..0x7f].iter().filter(|b| **b).count() >= 90
}

/// Whether `next` starts only with bytes that no round of `r` starts with, and cannot be
/// empty: the delimiter that ends `r`'s field.
fn delimited(r: &regex_syntax::hir::Repetition, next: Option<&Hir>) -> bool {
    let Some(next) = next else {
        return false;
    };
    if next.properties().minimum_len().unwrap_or(0) == 0 {
        return false;
    }
    let (mut own, mut after) = ([false; 128], [false; 128]);
    first_bytes(&r.sub, &mut own);
    first_bytes(next, &mut after);
    after.iter().any(|b| *b) && !own.iter().zip(&after).any(|(a, b)| *a && *b)
}

/// Marks in `set` every ASCII byte `h` can match anywhere.
fn body_bytes(h: &Hir, set: &mut [bool; 128]) {
    match h.kind() {
        HirKind::Literal(l) => {
            for &b in l.0.iter() {
                if b < 128 {
                    set[usize::from(b)] = true;
                }
            }
        }
        HirKind::Class(_) => first_bytes(h, set),
        HirKind::Repetition(r) if r.max != Some(0) => body_bytes(&r.sub, set),
        HirKind::Capture(c) => body_bytes(&c.sub, set),
        HirKind::Concat(v) | HirKind::Alternation(v) => v.iter().for_each(|x| body_bytes(x, set)),
        _ => {}
    }
}

/// Marks in `set` the ASCII bytes `h` can start with (an over-approximation where a
/// piece that can be empty lets the next one start).
fn first_bytes(h: &Hir, set: &mut [bool; 128]) {
    match h.kind() {
        HirKind::Literal(l) => {
            if let Some(&b) = l.0.first() {
                if b < 128 {
                    set[usize::from(b)] = true;
                }
            }
        }
        HirKind::Class(Class::Unicode(c)) => {
            for r in c.ranges() {
                for x in (r.start() as u32)..=(r.end() as u32).min(127) {
                    set[x as usize] = true;
                }
            }
        }
        HirKind::Class(Class::Bytes(c)) => {
            for r in c.ranges() {
                for x in r.start()..=r.end().min(127) {
                    set[usize::from(x)] = true;
                }
            }
        }
        HirKind::Repetition(r) if r.max != Some(0) => first_bytes(&r.sub, set),
        HirKind::Capture(c) => first_bytes(&c.sub, set),
        HirKind::Alternation(v) => v.iter().for_each(|x| first_bytes(x, set)),
        HirKind::Concat(v) => {
            for x in v {
                first_bytes(x, set);
                if x.properties().minimum_len().unwrap_or(0) > 0 {
                    break;
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filter::macros::anchored;

    fn between(p: &str) -> bool {
        address_forgeable(&anchored(p).unwrap())
    }

    fn anywhere(p: &str) -> bool {
        ignore_found_anywhere(&anchored(p).unwrap())
    }

    #[test]
    fn free_text_on_both_sides_of_the_address_is_found() {
        // fail2ban's unanchored failregex as the importer leaves it
        assert!(between(".*?Invalid request from {HOST}.*"));
        assert!(between("Login failed for user .* from {HOST}.*"));
        assert!(between("Login failed for user {USER} from {HOST} agent=.*"));
        assert!(between(r"(?:[\s\S])+ from {HOST} ([^x]|x)+"));
        assert!(between("(?:.* )?from {HOST}(?: .*)?"));
        assert!(between("(?:a .* {HOST} b.*|c)"));
        // review 58's: a field that stops at blanks before free text (a program that logs a
        // name with spaces writes them), a field after the address closed by the program's
        // own delimiter, a short bounded field, an IPv6-only pattern
        for p in [
            r"Login failed for user \S+ from {HOST}.*",
            r"Login failed for user {USERWORD} from {HOST} agent=.*",
            r"Login failed for user (?P<user>[\w.@-]+) from {HOST} \(.*\)",
        ] {
            assert!(
                address_forgeable_with_spaces(&anchored(p).unwrap()) && !between(p),
                "{p}"
            );
        }
        for p in [
            r"Authentication failure for {USER} from {HOST} \([^)]*\)",
            r"Login failed for user {USER} from {HOST} \[[^\]]*\]",
            r"Login failed for user {USER} from {HOST} <[^>]*>",
            r"Login failed for user .{1,30} from {HOST} agent=.*",
            r"Login failed for user .* from {IPV6}.*",
        ] {
            assert!(between(p), "{p}");
        }
        // the shapes review 57 found the first lint silent on, each of which reads the
        // forged address from `Login failed for user bob from 198.51.100.5 x from
        // 203.0.113.9`
        for p in [
            r"Login failed for user .*? from {HOST}(?: \S+)*",
            r"Login failed for user .*? from {HOST}(?:\s+\S+)*",
            r"Login failed for user (?:\S+ )*?from {HOST}.*",
            r"Login failed for user .{0,200}? from {HOST}.{0,200}",
            r#"Login failed for user .*? from {HOST}[^"]*"#,
            r"Login failed for user .*? from {HOST}[^;]*",
            r"Login failed for user (?:\S+ )*from {HOST}.*",
            r"Login failed for user .* from {HOST}(?: \S+)*",
        ] {
            assert!(between(p), "{p}");
            let re = regex::bytes::Regex::new(&anchored(p).unwrap()).unwrap();
            let line = b"Login failed for user bob from 198.51.100.5 x from 203.0.113.9";
            let host = re
                .captures(line)
                .and_then(|c| c.name("host"))
                .map(|m| m.as_bytes());
            let greedy_after = p.contains(".* from {HOST}(") || p.contains(")*from");
            if !greedy_after {
                assert_eq!(host, Some(&b"198.51.100.5"[..]), "{p}");
            }
        }
    }

    /// Review 61: blacklist.py's SSH_REGEX with a `.*` after the address. A repetition of
    /// fixed words before the address (`(?:::ffff:)*`) hid the user field; and a client at
    /// an IPv6 address, which the pattern does not read, has it read an IPv4 address typed
    /// into the user name.
    #[test]
    fn a_pattern_of_one_family_is_attacked_from_the_other() {
        let v4 = r"\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}";
        let p = format!(
            r"Failed (?:none|password) for (?:invalid user )*(?P<user>.*) from (?:::ffff:)*(?P<host>{v4}).*"
        );
        let full = anchored(&p).unwrap();
        assert!(address_forgeable(&full), "{p}");
        let p = format!(r"Failed password for (?P<user>.*) from (?P<host>{v4}) port \d+.*");
        let full = anchored(&p).unwrap();
        assert!(address_forgeable_other_family(&full));
        let re = regex::bytes::Regex::new(&full).unwrap();
        let line = b"Failed password for x from 198.51.100.5 port 1 from 2001:db8::7 port 2 ssh2";
        let host = re
            .captures(line)
            .and_then(|c| c.name("host"))
            .map(|m| m.as_bytes());
        assert_eq!(host, Some(&b"198.51.100.5"[..]));
        // fixed words to the end, or both families read: no such attack
        for p in [
            format!(r"Failed password for (?P<user>.*) from (?P<host>{v4}) port \d+ ssh2"),
            r"Failed password for (?P<user>.*) from {HOST} port \d+.*".to_string(),
        ] {
            assert!(
                !address_forgeable_other_family(&anchored(&p).unwrap()),
                "{p}"
            );
        }
    }

    #[test]
    fn fixed_text_on_one_side_keeps_the_address_the_programs() {
        // the built-in shapes: client text before, the program's own text after, or the
        // address first
        assert!(!between(
            "Failed password for {USER} from {HOST} port {PORT} ssh2"
        ));
        assert!(!between("Login failed for user .* from {HOST}"));
        assert!(!between("{HOST} - - .*"));
        assert!(!between(r"Denied from {HOST} for user .*"));
        assert!(!between(r"user \S+ from {HOST} agent=\S+"));
        assert!(!between(r"user [a-z]{1,32} from {HOST} .*"));
        assert!(!between(r"x{0,3000} {HOST} .*"));
        // JSON and logfmt strings, whose writer escapes a quote (review 58: 25 lines of
        // Python's json.dumps and 16 of Go's quoting all read the real address)
        assert!(!between(
            r#"\{"event":"login_failed","user":".*","ip":"{HOST}","ua":".*"\}"#
        ));
        assert!(!between(r#"user=".*" ip={HOST} ua=".*""#));
        // fields that end at a delimiter the program escapes (the built-in JSON filters)
        assert!(!between(
            r#"\{"user":"(?:[^"\\]|\\.)*","ip":"{HOST}","agent":"(?:[^"\\]|\\.)*"\}"#
        ));
        assert!(!between(r#"user "[^"]*" from {HOST} \((?:\w+ )*\w+\)"#));
        // no address capture
        assert!(!between("Disconnecting: .* too many .*"));
    }

    #[test]
    fn an_ignore_pattern_that_finds_its_text_anywhere_is_found() {
        assert!(anywhere(".*trusted"));
        assert!(anywhere("^.*trusted.*$"));
        assert!(anywhere("(?:.* )?ok from {HOST}"));
        assert!(anywhere("(?s).*x"));
        // (review 57: silent on these)
        assert!(anywhere(r"\S+ .*trusted.*"));
        assert!(anywhere("(?:[0-9]{4} )?.*?trusted"));
        assert!(!anywhere("(?:[0-9]{4} )?trusted .*"));
        assert!(!anywhere("^Accepted "));
        assert!(!anywhere(r"Accepted \S+ for .* from {HOST}"));
        assert!(!anywhere(r"\S+ trusted .*"));
    }

    /// A filter of the admin's own with fail2ban's unanchored shapes: one warning for the
    /// rule (its two patterns), one for the ignore pattern.
    #[test]
    fn an_own_filter_is_warned_of_once_per_rule() {
        let f = crate::filter::Filter::from_toml(
            r#"
name = "myapp"
ignore = ['.*trusted']
[[rule]]
id = "login"
patterns = ['.*?Login failed for user .* from {HOST}.*', 'Invalid request from {HOST}.*']
[[rule]]
id = "safe"
pattern = 'Denied for user .* from {HOST} port [0-9]+'
"#,
            "myapp",
        )
        .unwrap();
        let w = warnings(&f);
        assert_eq!(w.len(), 2, "{w:#?}");
        assert!(
            w[0].starts_with(
                "filter \"myapp\", rule \"login\": a client can choose the address it reads"
            ),
            "{}",
            w[0]
        );
        assert!(
            w[1].starts_with("filter \"myapp\", ignore[0]: "),
            "{}",
            w[1]
        );
    }

    /// A rule read by an IPv4-only pattern is forged by IPv6 clients; one whose other
    /// pattern reads IPv6 (fail2ban's habit of a pattern per family) is not warned of so.
    #[test]
    fn a_rule_of_one_family_is_warned_of_unless_another_pattern_reads_the_other() {
        let v4 = r"\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}";
        let toml = |patterns: &str| {
            format!("name = \"x\"\n[[rule]]\nid = \"r\"\npatterns = [{patterns}]\n")
        };
        let one = format!("'Failed for (?P<user>.*) from (?P<host>{v4}) port [0-9]+.*'");
        let f = crate::filter::Filter::from_toml(&toml(&one), "x").unwrap();
        assert!(address_forgeable_other_family(
            f.rules()[0].pattern().as_str()
        ));
        assert!(!both_families(&f, "r"));
        let both = format!("'Failed for (?P<user>.*) from {{IPV6}} port [0-9]+.*', {one}");
        let f = crate::filter::Filter::from_toml(&toml(&both), "x").unwrap();
        assert!(both_families(&f, "r"));
    }

    /// The built-in filters, each audited against its program's output, give no warning of
    /// the first kind: no field of theirs can hold the program's words with another
    /// address, or none after it takes in the rest of the line. (The second kind, spaces
    /// written raw into a field that stops at blanks, is said of some of them: their
    /// audits show those programs write one word there, a HELO name, a nick, a principal.)
    #[test]
    fn no_built_in_filter_is_warned_of() {
        for b in crate::filter::builtin::all() {
            let f = crate::filter::Filter::from_toml(b.source, b.name).unwrap();
            for i in &f.ignore {
                assert!(
                    !ignore_found_anywhere(i.as_str()),
                    "{}: {}",
                    b.name,
                    i.as_str()
                );
            }
            for r in f.rules() {
                let p = r.pattern().as_str();
                assert!(!address_forgeable(p), "{} {}: {p}", b.name, r.id);
                assert!(
                    !address_forgeable_other_family(p),
                    "{} {}: {p}",
                    b.name,
                    r.id
                );
            }
            for c in &f.correlate {
                let p = c.re.as_str();
                assert!(!address_forgeable(p), "{} correlate: {p}", b.name);
            }
        }
    }
}

//! What the evasion tests share (crates/core/tests/evasion_*.rs): a built-in filter's
//! verdict on a line, with the default transport cut or another, checked never to be the
//! address the client typed ([`FORGED`]); the syslog prefix and rsyslog's escaping the lines
//! come through; the real senders; and the check that a filter's program-written text before
//! the address is bounded (so a long line through syslog is not refused by the transport-cut
//! guard, crates/core/src/filter/cut.rs). Each test file uses what it needs.
#![allow(dead_code)]

use portcullis_core::filter::cut::{cut_threshold, DEFAULT_TRANSPORT_CUT};
use portcullis_core::filter::{builtin, Filter, MatchSet, Mode};
use portcullis_core::time::TimeContext;
use proptest::prelude::*;

pub mod by_mode;

/// The address a client writes into its own text: never the one reported.
pub const FORGED: &str = "198.51.100.7";

pub fn compile(name: &str, transport_cut: Option<usize>) -> MatchSet {
    let b = builtin::get(name).unwrap_or_else(|| panic!("built-in {name} filter"));
    let f = Filter::from_toml(b.source, b.name).unwrap_or_else(|e| panic!("{name}: {e}"));
    let set = MatchSet::new(vec![f], Mode::Aggressive);
    match transport_cut {
        Some(l) => set.with_transport_cut(l),
        None => set,
    }
}

pub type Sets = std::collections::HashMap<(&'static str, Option<usize>), MatchSet>;

thread_local! {
    static SETS: std::cell::RefCell<Sets> = std::cell::RefCell::new(Sets::new());
}

/// (address, rule id, weight) the built-in filter reports for `line`, with the default
/// transport limit or `cut`; the client's own address must never be it.
pub fn report_cut(
    name: &'static str,
    cut: Option<usize>,
    line: &[u8],
) -> Option<(String, String, u32)> {
    let got = SETS.with(|sets| {
        let mut sets = sets.borrow_mut();
        let set = sets
            .entry((name, cut))
            .or_insert_with(|| compile(name, cut));
        let ctx = TimeContext {
            now: 1_795_000_000_000,
            local_offset: 0,
            zone: None,
        };
        let mut scratch = set.scratch();
        set.match_line(line, &ctx, &mut scratch).map(|h| {
            let rule = &set.filters()[h.filter].rules()[h.rule];
            (canon(&h.addr.to_string()), rule.id.clone(), rule.weight)
        })
    });
    if let Some((host, _, _)) = &got {
        assert_ne!(
            host,
            FORGED,
            "{name}: the client's text chose the address: {}",
            String::from_utf8_lossy(line)
        );
    }
    got
}

pub fn canon(a: &str) -> String {
    a.parse::<std::net::IpAddr>()
        .map(|a| a.to_string())
        .unwrap_or_else(|_| a.to_string())
}

/// `line` is counted by `filter` (rule `rule`, weight > 0) for `addr`.
#[track_caller]
pub fn counted_cut(filter: &'static str, cut: Option<usize>, line: &[u8], addr: &str, rule: &str) {
    let text = String::from_utf8_lossy(line);
    match report_cut(filter, cut, line) {
        Some((a, r, w)) => {
            assert!(w > 0, "{filter}: weight 0 rule {r}: {text}");
            assert_eq!((a, r.as_str()), (canon(addr), rule), "{filter}: {text}");
        }
        None => panic!("{filter}: not counted: {text}"),
    }
}

#[track_caller]
pub fn counted(filter: &'static str, line: &[u8], addr: &str, rule: &str) {
    counted_cut(filter, None, line, addr, rule)
}

/// `line` is counted by `filter` (any rule of weight > 0) for `addr`.
#[track_caller]
pub fn counted_by_any(filter: &'static str, line: &[u8], addr: &str) {
    let text = String::from_utf8_lossy(line);
    match report_cut(filter, None, line) {
        Some((a, r, w)) => {
            assert_eq!(
                a,
                canon(addr),
                "{filter}: wrong address (rule {r}) for {text}"
            );
            assert!(w > 0, "{filter}: only rule {r} (weight 0) read {text}");
        }
        None => panic!("{filter}: not counted: {text}"),
    }
}

/// A long line (>= 800 bytes, the transport-cut threshold passed) is counted.
#[track_caller]
pub fn counted_long(filter: &'static str, line: &[u8], addr: &str, rule: &str) {
    assert!(line.len() >= 800, "{}", line.len());
    counted(filter, line, addr, rule)
}

/// The documented trade-off: a tagged line of 768 bytes or more whose address comes after
/// the client's text of no bound is refused at the default transport cut, and counted
/// when the configuration names a larger one.
#[track_caller]
pub fn refused_then_counted_with_larger_cut(
    filter: &'static str,
    line: &[u8],
    addr: &str,
    rule: &str,
) {
    assert!(line.len() >= 800);
    assert_eq!(
        report_cut(filter, None, line),
        None,
        "{filter}: {}",
        String::from_utf8_lossy(line)
    );
    counted_cut(filter, Some(65536), line, addr, rule);
}

/// A syslog line as rsyslog writes it to a file (RFC 3164 stamp, host, tag).
pub fn syslog(tag: &str, msg: &[u8]) -> Vec<u8> {
    let mut l = format!("Nov 21 10:00:01 srv {tag}: ").into_bytes();
    l.extend_from_slice(msg);
    l
}

/// rsyslog's default escaping of control characters on receive ($EscapeControlCharacters-
/// OnReceive on, runtime/parser.c), which Portcullis' journal reader copies: a byte below
/// 0x20 (or 0x7f) becomes '#' and three octal digits; other bytes, UTF-8 included, are kept.
pub fn rsyslog_escape(s: &[u8]) -> Vec<u8> {
    let mut o = Vec::new();
    for &b in s {
        if b < 0x20 || b == 0x7f {
            o.extend_from_slice(format!("#{b:03o}").as_bytes());
        } else {
            o.push(b);
        }
    }
    o
}

/// server/util.c ap_escape_errorlog_item(): `\` doubled, `"` kept, \b \n \r \t \v as C
/// escapes, any other control or non-ASCII byte as \xHH.
pub fn apache_errorlog_escape(raw: &[u8]) -> String {
    let mut s = String::new();
    for &c in raw {
        match c {
            b'\\' => s.push_str("\\\\"),
            b'"' => s.push('"'),
            0x08 => s.push_str("\\b"),
            b'\n' => s.push_str("\\n"),
            b'\r' => s.push_str("\\r"),
            b'\t' => s.push_str("\\t"),
            0x0b => s.push_str("\\v"),
            0x20..=0x7e => s.push(c as char),
            _ => s.push_str(&format!("\\x{:02x}", c)),
        }
    }
    s
}

/// The real sender: IPv4 or IPv6 of the documentation ranges.
pub fn sender() -> impl Strategy<Value = String> {
    prop_oneof![
        (1u8..255).prop_map(|h| format!("203.0.113.{h}")),
        (1u16..0xffff).prop_map(|h| format!("2001:db8::{h:x}")),
    ]
}

/// Every rule (pattern) of `filter` whose address may come after text of no bound (at the
/// default threshold or beyond) is one `allowed` accepts: the documented ones where that
/// text is the client's.
#[track_caller]
pub fn bounded_except(filter: &str, allowed: impl Fn(&str, &str) -> bool) {
    let at = cut_threshold(DEFAULT_TRANSPORT_CUT);
    let b = builtin::get(filter).unwrap();
    let f = Filter::from_toml(b.source, b.name).unwrap();
    for r in f.rules() {
        if allowed(&r.id, r.pattern().as_str()) {
            continue;
        }
        assert!(
            r.host_end_max() < at,
            "{filter} rule {}: the address may end {} bytes in",
            r.id,
            r.host_end_max()
        );
    }
}

/// A string quoted as the JSON-style encoders below write it: `"` and `\` escaped, `\n`,
/// `\r` and `\t` as such; then what `special` returns for a character the encoder escapes
/// beyond those (None: not special); any other character below U+0020 as `\u00XX`; the
/// rest as it is.
pub fn quoted(s: &str, special: impl Fn(char) -> Option<String>) -> String {
    let mut o = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            '\r' => o.push_str("\\r"),
            '\t' => o.push_str("\\t"),
            c => match special(c) {
                Some(e) => o.push_str(&e),
                None if (c as u32) < 0x20 => o.push_str(&format!("\\u{:04x}", c as u32)),
                None => o.push(c),
            },
        }
    }
    o.push('"');
    o
}

/// `c` as JSON's UTF-16 escapes (`\uXXXX`, a surrogate pair beyond the BMP).
pub fn utf16_escaped(c: char) -> String {
    let mut b = [0u16; 2];
    c.encode_utf16(&mut b)
        .iter()
        .map(|u| format!("\\u{u:04x}"))
        .collect()
}

/// Go's encoding/json string encoding (HTML-safe, as json.Marshal writes it).
pub fn go_json(s: &str) -> String {
    quoted(s, |c| {
        matches!(c, '<' | '>' | '&' | '\u{2028}' | '\u{2029}')
            .then(|| format!("\\u{:04x}", c as u32))
    })
}

/// A JSON string as jansson (json_dumps, JSON_COMPACT), Go's encoding/json for these values
/// and Parsson (jakarta.json, Quarkus' JSON log formatter) write it: also `\b` and `\f`, all
/// other characters (UTF-8 included) as they are.
pub fn json_str(s: &str) -> String {
    quoted(s, |c| match c {
        '\u{8}' => Some("\\b".into()),
        '\u{c}' => Some("\\f".into()),
        _ => None,
    })
}

/// JSON string as a minimal encoder writes it (Jackson, log4j's %enc{JSON}, zap, zerolog,
/// MongoDB's escapeForJSON): `"`, `\` and control characters escaped, the rest as is.
pub fn json_min(s: &str) -> String {
    quoted(s, |_| None)
}

/// Python's json.dumps (ensure_ascii): DEL and non-ASCII as \uXXXX (surrogate pairs beyond
/// the BMP).
pub fn py_json(s: &str) -> String {
    quoted(s, |c| ((c as u32) > 0x7e).then(|| utf16_escaped(c)))
}

/// Go's strconv.Quote (fmt %q): logrus's text formatter quotes a value with it.
pub fn go_quote(s: &str) -> String {
    quoted(s, |c| {
        ((c as u32) < 0x20 || c == '\u{7f}').then(|| format!("\\x{:02x}", c as u32))
    })
}

/// PHP's json_encode() of a string (ext/json/json_encoder.c php_json_escape_string), with
/// or without JSON_UNESCAPED_SLASHES / JSON_UNESCAPED_UNICODE.
pub fn php_json(s: &str, slashes: bool, unicode: bool) -> String {
    quoted(s, |c| match c {
        '/' if !slashes => Some("\\/".into()),
        '\u{8}' => Some("\\b".into()),
        '\u{c}' => Some("\\f".into()),
        c if (c as u32) >= 0x80 && !unicode => Some(utf16_escaped(c)),
        _ => None,
    })
}

//! Lines a syslog transport may have cut: which matches they must not give.
//!
//! Every syslog transport has a longest message, and cuts a longer one there without a mark
//! (read in their sources):
//!
//! * rsyslog: `$MaxMessageSize` / `global(maxMessageSize=)`, default 8 KiB (runtime/glbl.c).
//!   imuxsock (`/dev/log`) and imudp read a datagram into a buffer of that size and drop the
//!   rest (`recvmsg` with `iov_len = iMaxLine`, plugins/imuxsock/imuxsock.c `readSocket`);
//!   imtcp submits the first part and makes the rest a new message ("split", unless
//!   `discardTruncatedMsg="on"`: runtime/tcps_sess.c `processDataRcvd`).
//! * syslog-ng: `log-msg-size()`, default 64 KiB (lib/cfg.c); a stream source yields the
//!   buffer as a message when it fills without a newline and goes on with the rest
//!   (lib/logproto/logproto-text-server.c `_fetch_msg_from_buffer`), a datagram source reads
//!   that much of a datagram.
//! * sysklogd: `MAXLINE` 2048 (src/syslogd.h): `recv` / `recvfrom` into a buffer of that
//!   size (src/syslogd.c `unix_cb`, `inet_cb`).
//! * BusyBox syslogd: its read buffer, `CONFIG_FEATURE_SYSLOGD_READ_BUFFER_SIZE`, 256 bytes
//!   unless built otherwise.
//! * musl's `syslog(3)` formats into 1024 bytes; RFC 3164 relays send at most 1024, RFC 5424
//!   receivers need take no more than 480 (2048 recommended).
//!
//! A line cut there has lost its end. When the rule's address capture may come after text a
//! client wrote without bound (`Failed password for invalid user .* from {HOST} port …`),
//! the client pads its field so that the cut falls right after an address it typed, followed
//! by whatever the pattern wants after it, and the cut line reads as a whole line with that
//! address. So a match is refused when all of:
//!
//! * the line came through a syslog transport: its prefix names a program (a tag). A line
//!   of a program's own file (an access log, a JSON record) went through none;
//! * the message is long enough to have been cut: at least the transport's limit less the
//!   header the transport counted in it and the log line does not hold (`<PRI>`, time, host,
//!   tag: [`HEADER_SLACK`], at most half the limit). A single limit covers every longer one
//!   (a line cut at 8 KiB is longer than 1 KiB);
//! * the address capture can end that far into the message: the longest text the pattern
//!   lets stand before the end of its `{HOST}` capture ([`host_end_max`], from the pattern
//!   itself) reaches that length. A pattern whose address comes first, or after fields of
//!   bounded length only, is never refused; nor is a short line.
//!
//! The check costs a length compare on the lines that match, and nothing per line otherwise.
//! A line that is refused is not counted: the client who made it that long may go unbanned
//! by that rule, but no address it typed is.
//!
//! What this does not cover: the *rest* of a message imtcp or syslog-ng split off is a new
//! message whose text begins with the client's, header and all. Nothing in the log tells it
//! from a line of the program's; set imtcp's `discardTruncatedMsg="on"` (rsyslog), or read
//! the program's log where no stream transport splits it.

use regex_syntax::hir::{Hir, HirKind};

/// The transport limit assumed for a log file when the configuration names none: 1 KiB,
/// the smallest common one but BusyBox's (musl's `syslog(3)`, RFC 3164 relays), which also
/// covers rsyslog's 8 KiB, sysklogd's 2 KiB and syslog-ng's 64 KiB.
pub const DEFAULT_TRANSPORT_CUT: usize = 1024;

/// The most header bytes a transport counts in its limit that the log line does not hold:
/// `<PRI>`, an RFC 5424 version, time stamp (32 bytes with microseconds and offset), host
/// name, application, process id and message id. (At most half the limit: see
/// [`cut_threshold`].)
pub const HEADER_SLACK: usize = 256;

/// The message length (after the prefix) from which a line may have been cut by a
/// transport whose limit is `limit` bytes (0: no transport cuts this log; never).
pub fn cut_threshold(limit: usize) -> usize {
    if limit == 0 {
        return usize::MAX;
    }
    limit - HEADER_SLACK.min(limit / 2)
}

/// How far into the message the address capture (`host`) of the anchored pattern `full` can
/// end at most: the longest text before it and its own longest text (`usize::MAX` when a
/// repetition without bound comes first, 0 when there is no address capture). `full` is
/// in the regex crate's syntax, as the pattern crate reads it.
pub fn host_end_max(full: &str) -> usize {
    let Ok(hir) = regex_syntax::ParserBuilder::new()
        .utf8(false)
        .build()
        .parse(full)
    else {
        // (the pattern compiled: the regex crate reads it; refuse long lines if not)
        return usize::MAX;
    };
    match end_of_host(&hir) {
        None => 0,
        Some(n) => n.unwrap_or(usize::MAX),
    }
}

/// None when `h` holds no address capture; else the longest text up to the end of the
/// capture (None within: without bound).
fn end_of_host(h: &Hir) -> Option<Option<usize>> {
    let add = |a: Option<usize>, b: Option<usize>| a?.checked_add(b?);
    match h.kind() {
        HirKind::Capture(c) if c.name.as_deref() == Some("host") => {
            Some(h.properties().maximum_len())
        }
        HirKind::Capture(c) => end_of_host(&c.sub),
        HirKind::Concat(v) => {
            let mut before = Some(0);
            for x in v {
                if let Some(e) = end_of_host(x) {
                    return Some(add(before, e));
                }
                before = add(before, x.properties().maximum_len());
            }
            None
        }
        HirKind::Alternation(v) => {
            let ends: Vec<Option<usize>> = v.iter().filter_map(end_of_host).collect();
            if ends.is_empty() {
                return None;
            }
            Some(ends.into_iter().try_fold(0, |m, e| Some(m.max(e?))))
        }
        HirKind::Repetition(r) => {
            let e = end_of_host(&r.sub)?;
            match r.max {
                Some(0) => None,
                Some(1) => Some(e),
                // the address in a later round: after the earlier rounds, whole
                Some(n) => Some(add(
                    r.sub
                        .properties()
                        .maximum_len()
                        .and_then(|l| l.checked_mul(n as usize - 1)),
                    e,
                )),
                None => Some(None),
            }
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filter::macros::anchored;

    fn end(p: &str) -> usize {
        host_end_max(&anchored(p).unwrap())
    }

    #[test]
    fn the_address_end_is_bounded_only_after_bounded_text() {
        // client text without bound before the address
        assert_eq!(
            end("Failed password for invalid user .* from {HOST} port {PORT} ssh2"),
            usize::MAX
        );
        assert_eq!(end("Login failed for user {USER} from {HOST}"), usize::MAX);
        assert_eq!(end(r"user \S+ from {HOST}"), usize::MAX);
        assert_eq!(end("(?:a|b.*) {HOST}"), usize::MAX);
        assert_eq!(end("(?:x.* )?{HOST}"), usize::MAX);
        assert_eq!(end("(?:{HOST} .*)+"), usize::MAX);
        // the address first, or after bounded text: never far into a long line
        let first = end("{HOST} - - .*");
        assert!((7..=100).contains(&first), "{first}");
        let bounded = end(r"Denied from {HOST} for user .*");
        assert!(bounded < 120, "{bounded}");
        let after = end(r"(?:a|bb) [a-z]{1,20} {HOST}");
        assert!(after < 120, "{after}");
        assert!(end(r"x{0,3000} {HOST}") > 3000);
        // no address capture: nothing to refuse
        assert_eq!(end("Disconnecting: Too many authentication failures"), 0);
    }

    #[test]
    fn thresholds() {
        assert_eq!(cut_threshold(0), usize::MAX);
        assert_eq!(cut_threshold(1024), 768);
        assert_eq!(cut_threshold(8192), 8192 - 256);
        assert_eq!(cut_threshold(256), 128);
        assert_eq!(cut_threshold(1), 1);
    }

    /// The filter of the real test (crates/portcullis/tests/syslog_cut.rs): the address
    /// last after a user name of any length, or first.
    fn set(limit: Option<usize>) -> crate::filter::MatchSet {
        let f = crate::filter::Filter::from_toml(
            r#"
name = "cutdemo"
programs = ["cutdemo"]
[[rule]]
id = "tail"
pattern = '''Login failed for user .* from {HOST}'''
[[rule]]
id = "head"
pattern = '''Denied from {HOST} for user .*'''
"#,
            "cutdemo",
        )
        .unwrap();
        let s = crate::filter::MatchSet::new(vec![f], crate::filter::Mode::Normal);
        match limit {
            Some(l) => s.with_transport_cut(l),
            None => s,
        }
    }

    fn ctx() -> crate::time::TimeContext {
        crate::time::TimeContext {
            now: 1_795_000_000_000,
            local_offset: 0,
            zone: None,
        }
    }

    /// The address `set` reports for `msg` on a syslog line (`tagged`) or a bare one.
    fn host(set: &crate::filter::MatchSet, tagged: bool, msg: &str) -> Option<String> {
        let line = if tagged {
            format!("2026-12-04T05:00:00+00:00 vm cutdemo[7]: {msg}")
        } else {
            msg.to_string()
        };
        let mut scratch = set.scratch();
        set.match_line(line.as_bytes(), &ctx(), &mut scratch)
            .map(|h| h.addr.to_string())
    }

    /// `Login failed for user PAD from 192.0.2.66` of `len` bytes: what a transport whose
    /// cut fell right after the typed address leaves of the client's padded line.
    fn cut_line(len: usize) -> String {
        let head = "Login failed for user ";
        let typed = " from 192.0.2.66";
        format!(
            "{head}{}{typed}",
            "u".repeat(len - head.len() - typed.len())
        )
    }

    #[test]
    fn a_line_long_enough_to_be_cut_gives_no_address_after_client_text() {
        let default = set(None);
        let typed = Some("192.0.2.66".to_string());
        // 1 KiB (musl, RFC 3164 relays) less the header: refused from 768 bytes on
        assert_eq!(host(&default, true, &cut_line(767)), typed);
        assert_eq!(host(&default, true, &cut_line(768)), None);
        assert_eq!(host(&default, true, &cut_line(1000)), None);
        assert_eq!(
            host(&default, true, &cut_line(8000)),
            None,
            "rsyslog's 8 KiB cut"
        );
        // the address first: a cut only takes the client's text after it
        let head = format!("Denied from 198.51.100.4 for user {}", "x".repeat(9000));
        assert_eq!(host(&default, true, &head).as_deref(), Some("198.51.100.4"));
        // a program's own file went through no syslog transport
        assert_eq!(host(&default, false, &cut_line(1000)), typed);
        // BusyBox' 256 bytes; none
        assert_eq!(host(&set(Some(256)), true, &cut_line(127)), typed);
        assert_eq!(host(&set(Some(256)), true, &cut_line(128)), None);
        assert_eq!(host(&set(Some(0)), true, &cut_line(8000)), typed);
        // counted
        let mut scratch = default.scratch();
        let line = format!("2026-12-04T05:00:00+00:00 vm cutdemo[7]: {}", cut_line(900));
        assert!(default
            .match_line(line.as_bytes(), &ctx(), &mut scratch)
            .is_none());
        assert_eq!(scratch.cut_refused(), 1);
    }

    /// An `end` line that gives held failures their address (Sendmail's transaction
    /// summary, the client after the sender's path) is refused like a rule's line: the held
    /// failures stay held, and no address typed in the path is taken.
    #[test]
    fn an_end_line_long_enough_to_be_cut_releases_nothing() {
        let f = crate::filter::Filter::from_toml(
            crate::filter::builtin::get("sendmail-reject")
                .unwrap()
                .source,
            "sendmail-reject",
        )
        .unwrap();
        let held =
            "Nov 21 10:01:00 mx sm-mta[7]: wALA40xx000007: <nosuch@example.com>... User unknown";
        // what a 256-byte transport leaves of a summary whose path the client padded so
        // that the cut falls right after its own relay=[ADDR]
        let pad = "a".repeat(60);
        let cut = format!(
            "Nov 21 10:01:01 mx sm-mta[7]: wALA40xx000007: from=<{pad}>, size=0, class=0, nrcpts=0, relay=[192.0.2.66]>, size=0, class=0, nrcpts=0, relay=[192.0.2.66]"
        );
        let whole = "Nov 21 10:01:02 mx sm-mta[8]: wALA41xx000008: from=<b@example.org>, size=0, class=0, nrcpts=0, proto=ESMTP, daemon=MTA, relay=[203.0.113.40]";
        let held2 =
            "Nov 21 10:01:01 mx sm-mta[8]: wALA41xx000008: <nosuch@example.com>... User unknown";
        for (limit, want_cut) in [(None, Some("192.0.2.66")), (Some(256), None)] {
            let s = crate::filter::MatchSet::new(vec![f.clone()], crate::filter::Mode::Normal);
            let s = match limit {
                Some(l) => s.with_transport_cut(l),
                None => s,
            };
            let mut scratch = s.scratch();
            assert!(s
                .match_line(held.as_bytes(), &ctx(), &mut scratch)
                .is_none());
            let got = s
                .match_line(cut.as_bytes(), &ctx(), &mut scratch)
                .map(|h| h.addr.to_string());
            assert_eq!(got.as_deref(), want_cut, "limit {limit:?}");
            // a short summary is read at either limit
            assert!(s
                .match_line(held2.as_bytes(), &ctx(), &mut scratch)
                .is_none());
            let got = s
                .match_line(whole.as_bytes(), &ctx(), &mut scratch)
                .map(|h| (h.addr.to_string(), h.released));
            assert_eq!(
                got,
                Some(("203.0.113.40".to_string(), 1)),
                "limit {limit:?}"
            );
        }
    }

    /// A success line is read whatever its length: sshd's "Accepted publickey" with a long
    /// certificate tail still forgets the keys its session tried before (refused as an end
    /// line would be, the held failures would count when the connection closes).
    #[test]
    fn a_long_success_line_still_forgets_held_failures() {
        let f = crate::filter::Filter::from_toml(
            crate::filter::builtin::get("sshd").unwrap().source,
            "sshd",
        )
        .unwrap();
        let s = crate::filter::MatchSet::new(vec![f], crate::filter::Mode::Normal);
        let mut scratch = s.scratch();
        let pre = "Nov 21 10:00:01 web1 sshd[4551]: ";
        let failed = format!("{pre}Failed publickey for alice from 198.51.100.44 port 50000 ssh2: ED25519 SHA256:Jg7Xk2l0q5m9ZbVqW1e3R4t6Y8u0I2o4P6a8S0d2F4g");
        let key_id = "k".repeat(800);
        let accepted = format!("{pre}Accepted publickey for alice from 198.51.100.44 port 50000 ssh2: ED25519-CERT SHA256:Jg7Xk2l0q5m9ZbVqW1e3R4t6Y8u0I2o4P6a8S0d2F4g ID {key_id} (serial 1) CA ED25519 SHA256:4bD3y9nB1qWcR3xN0vE6m8p5lQk7tZsYuA2hJfGiKoM");
        let closed = format!("{pre}Connection closed by 198.51.100.44 port 50000");
        let mut hits = Vec::new();
        for line in [&failed, &accepted, &closed] {
            let hit = s.match_line(line.as_bytes(), &ctx(), &mut scratch);
            hits.push(hit.map(|h| (h.pending, h.released)));
        }
        assert!(accepted.len() > 800);
        assert_eq!(hits[0], Some((true, 0)), "the failed key is held");
        assert!(
            hits[1..]
                .iter()
                .all(|h| h.is_none_or(|(_, released)| released == 0)),
            "the login forgot the held key; nothing counts when the connection closes: {hits:?}"
        );
        assert_eq!(scratch.cut_refused(), 0);
    }

    /// Every built-in rule's pattern is read (none falls back to "anywhere"); sshd's
    /// invalid-user rule (a user name of any text before the address) has no bound.
    #[test]
    fn every_builtin_pattern_is_read() {
        let mut unbounded = 0;
        for b in crate::filter::builtin::all() {
            let f = crate::filter::Filter::from_toml(b.source, b.name).unwrap();
            for r in f.rules() {
                let full = r.pattern().as_str();
                assert!(
                    regex_syntax::ParserBuilder::new()
                        .utf8(false)
                        .build()
                        .parse(full)
                        .is_ok(),
                    "{}/{}",
                    b.name,
                    r.id
                );
                if r.host_end_max() == usize::MAX {
                    unbounded += 1;
                }
            }
        }
        assert!(unbounded > 0);
        let sshd = crate::filter::Filter::from_toml(
            crate::filter::builtin::get("sshd").unwrap().source,
            "sshd",
        )
        .unwrap();
        let failed = sshd
            .rules()
            .iter()
            .find(|r| r.id == "invalid-user")
            .unwrap();
        assert_eq!(failed.host_end_max(), usize::MAX);
    }

    /// Dovecot 2.2/2.3 split a message longer than PIPE_BUF into lines of their own, each
    /// only under the process' prefix (filters/dovecot.toml, "split lines"): with
    /// `imap_id_log` a client's IMAP ID list places the cut. A whole piece (the middle
    /// ones) is refused by `split_at` even where no transport cut applies (a journal-only
    /// jail), and the last piece, which ends with Dovecot's own suffix, is read by no rule
    /// for the forged address (review 10: both counted for the forged address).
    #[test]
    fn a_piece_of_a_message_dovecot_split_gives_no_address() {
        let b = crate::filter::builtin::get("dovecot").unwrap();
        let f = crate::filter::Filter::from_toml(b.source, b.name).unwrap();
        let set = crate::filter::MatchSet::new(vec![f], crate::filter::Mode::Normal)
            .with_transport_cut(0);
        let ask = |msg: &str| {
            let line = format!("2026-12-04T05:00:00+00:00 mail dovecot: imap-login: Info: {msg}");
            let mut scratch = set.scratch();
            let h = set
                .match_line(line.as_bytes(), &ctx(), &mut scratch)
                .map(|h| h.addr.to_string());
            (h, scratch.split_refused())
        };
        // Dovecot's own line counts
        let real = "Disconnected (auth failed, 1 attempts in 2 secs): user=<bob>, method=PLAIN, rip=203.0.113.9, lip=192.0.2.1, TLS, session=<abc>";
        assert_eq!(ask(real), (Some("203.0.113.9".into()), 0));
        // a middle piece: the ID list's pairs, the cut placed right after a forged address
        let mut pairs = String::new();
        let mut k = 0;
        while pairs.len() < 3980 {
            pairs.push_str(&format!("K{k:03}={}, ", "V".repeat(60)));
            k += 1;
        }
        let forged = " (auth failed): rip=198.51.100.9, lip=203.0.113.1";
        let middle = format!("{}{forged}", pairs.trim_end_matches(", "));
        assert!((4000..4100).contains(&(middle.len() + "imap-login: Info: ".len())));
        assert_eq!(ask(&middle), (None, 1), "a middle piece");
        // a shorter line of the same text would be read (what split_at alone refuses)
        let short = format!("K000=V, K001=V{forged}");
        assert_eq!(ask(&short).0.as_deref(), Some("198.51.100.9"));
        // the last piece: the forged text, then Dovecot's suffix for the ID message
        for tail in [
            format!("VVVV{forged}, K054=x: user=<>, rip=127.0.0.1, lip=127.0.0.1, session=<abc>"),
            format!("VVVV{forged}, TLS: x, K054=x: user=<>, rip=127.0.0.1, lip=127.0.0.1, session=<abc>"),
            // a login_log_format_elements without '<' and '>'
            format!("VVVV{forged}, K054: rip=127.0.0.1, lip=127.0.0.1"),
            format!("VVVV{forged}, TLS: K054: rip=127.0.0.1"),
        ] {
            let (h, _) = ask(&tail);
            assert_ne!(h.as_deref(), Some("198.51.100.9"), "{tail}");
        }
    }
}

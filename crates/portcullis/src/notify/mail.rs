//! `[notify.mail]`: one mail per interval with every event of it, through SMTP (lettre).
//!
//! The events wait in the persistent queue; the mail goes once the oldest has waited
//! `interval`. A failed send is tried again after a growing delay, with whatever came in
//! meanwhile.
//!
//! The SMTP conversation runs on a thread of its own, so the sink's thread is always free
//! to write new events to the queue (and, at a stop, those still in its channel): a slow
//! server held them in memory before, and a stop lost them. lettre's `timeout` bounds each
//! read, not the conversation, so a server that dribbles a line of a multi-line answer now
//! and then held the sink for hours (a review found): a send that takes longer than
//! [`DEADLINE_FACTOR`] × `timeout` is given up as failed and tried again later. Its thread
//! cannot be stopped from outside (lettre owns the socket), so it is left to end by itself;
//! at most [`MAX_ABANDONED`] are left at a time: past that, the send under way is waited for
//! (said once) and no new one starts until one ends (at most three conversations at once). The headers hold only the configuration's text and counts; attacker text
//! (the evidence lines) is only in the text/plain body, its control characters escaped,
//! and lettre encodes the body (quoted-printable or base64) so no line of it can end the
//! headers or the part.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{self, Receiver, TryRecvError};
use std::time::Duration;

use anyhow::{Context, Result};
use lettre::message::{header::ContentType, Mailbox, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{Message, SmtpTransport, Transport};
use portcullis_core::decision::Millis;
use portcullis_core::time::rfc3339;
use tracing::{info, warn};

use super::queue::Queue;
use super::{backoff, Note, STATS};
use crate::config::{MailConfig, SmtpTls};

const SINK: &str = "mail";

/// Events listed with their evidence in one mail; the others get one line each.
pub const DETAILED: usize = 500;

/// The body's size past which the evidence stops, then the one-line listing (bytes of
/// text; quoted-printable can make a multi-byte character three times as long): a flood of
/// bans with long user names made a mail of 4 MB, which relays refuse (a review found).
pub const BODY_BUDGET: usize = 512 * 1024;

/// Events a short mail lists, one line each (see [`MailSink::short`]).
pub const SHORT_LISTED: usize = 100;

/// A send that takes longer than this many `timeout`s is given up (tried again later).
pub const DEADLINE_FACTOR: i64 = 5;

/// Sends given up and still running, at most; past this no new send starts.
pub const MAX_ABANDONED: usize = 2;

/// How often the sink's thread looks whether a send has ended (milliseconds).
const POLL: Millis = 200;

/// A send under way on its own thread.
struct Send {
    /// When it started (the sink's clock).
    started: Millis,
    /// The last queue row it carries.
    last_id: i64,
    /// Events it carries.
    events: usize,
    /// Whether it is a short mail (no evidence).
    short: bool,
    /// Its result, when it ends.
    done: Receiver<Result<()>>,
    /// Its deadline passed while it could not be given up (said once).
    overdue_said: bool,
}

/// The mail notifier.
pub struct MailSink {
    cfg: MailConfig,
    queue: Queue,
    /// Failed tries in a row.
    failures: u32,
    /// No try before this.
    retry_at: Millis,
    /// The oldest waiting event (cached from the queue).
    oldest: Option<Millis>,
    /// The send under way.
    sending: Option<Send>,
    /// Sends given up at their deadline whose threads have not ended yet.
    abandoned: Vec<Send>,
    /// A send was due while [`MAX_ABANDONED`] conversations were still open (said once).
    blocked_said: bool,
    /// When the last tick ran (the next poll is [`POLL`] after it while a send runs).
    last_tick: Millis,
    /// The server refused the last mail for good (a 5xx answer; its answer here): the next
    /// one is short (no
    /// evidence, [`SHORT_LISTED`] events listed); if that one is refused for good too, its
    /// events are dropped. (The same mail was sent again every 5 minutes for ever, and
    /// every later event waited behind it, a review found.)
    short: Option<String>,
    /// When the last mail delivered had started (an abandoned mail's late refusal before it
    /// says nothing of the mails after it).
    delivered: Millis,
}

impl MailSink {
    /// The sink for `cfg`, its queue opened.
    pub fn new(cfg: MailConfig, queue: Queue) -> Result<MailSink> {
        let oldest = queue.oldest(SINK)?;
        let n = queue.len(SINK)?;
        if n > 0 {
            info!("notify: {n} mail event(s) waiting from before the restart");
        }
        STATS.mail_queue.store(n as u64, Ordering::Relaxed);
        Ok(MailSink {
            cfg,
            queue,
            failures: 0,
            retry_at: 0,
            oldest,
            sending: None,
            abandoned: Vec::new(),
            blocked_said: false,
            last_tick: 0,
            short: None,
            delivered: 0,
        })
    }
}

impl super::Sink for MailSink {
    /// When the next send is due.
    fn next_due(&self) -> Option<Millis> {
        if self.sending.is_some() || !self.abandoned.is_empty() {
            return Some(self.last_tick + POLL);
        }
        self.oldest
            .map(|t| (t + self.cfg.interval).max(self.retry_at))
    }

    /// Queues the notes the mail asks for.
    fn enqueue(&mut self, notes: &[Note]) {
        let wanted: Vec<Note> = notes
            .iter()
            .filter(|n| self.cfg.events.iter().any(|k| k.name() == n.event))
            .cloned()
            .collect();
        if wanted.is_empty() {
            return;
        }
        match self.queue.push(SINK, &wanted) {
            Ok(()) => {
                let first = wanted.iter().map(|n| n.time).min().unwrap_or(0);
                self.oldest = Some(self.oldest.map_or(first, |o| o.min(first)));
                STATS
                    .mail_queue
                    .fetch_add(wanted.len() as u64, Ordering::Relaxed);
            }
            Err(e) => warn!(
                "notify: cannot write {} event(s) to the mail queue: {e:#}",
                wanted.len()
            ),
        }
    }

    fn lost(&mut self, n: u64) {
        if let Err(e) = self.queue.add_dropped(SINK, n) {
            warn!("notify: cannot count {n} lost event(s) in the mail queue: {e:#}");
        }
    }

    fn keep_in_place(&mut self, now: bool) {
        self.queue.keep_in_place(now);
    }

    /// Looks after the send under way; starts one if it is due.
    fn tick(&mut self, now: Millis, host: &str) {
        self.last_tick = now;
        self.poll_abandoned();
        if let Some(s) = &mut self.sending {
            match s.done.try_recv() {
                Ok(r) => {
                    let s = self.sending.take().expect("a send");
                    self.ended(now, &s, r);
                }
                Err(TryRecvError::Disconnected) => {
                    let s = self.sending.take().expect("a send");
                    self.ended(
                        now,
                        &s,
                        Err(anyhow::anyhow!("the send's thread ended without a result")),
                    );
                }
                Err(TryRecvError::Empty) => {
                    let deadline = self.cfg.timeout.saturating_mul(DEADLINE_FACTOR);
                    let overdue = now - s.started >= deadline;
                    if overdue && self.abandoned.len() < MAX_ABANDONED {
                        let s = self.sending.take().expect("a send");
                        self.failed(
                            now,
                            s.events,
                            &format!(
                                "no end after {} ({DEADLINE_FACTOR} x timeout): the server answers too slowly, the conversation is left to end by itself",
                                portcullis_core::duration::format(deadline)
                            ),
                        );
                        self.abandoned.push(s);
                    } else if overdue && !s.overdue_said {
                        s.overdue_said = true;
                        STATS.mail_failures.fetch_add(1, Ordering::Relaxed);
                        warn!(
                            "notify: mail of {} event(s) through {}: no end after {} ({DEADLINE_FACTOR} x timeout), and {} conversations given up earlier are still open: waiting for one of them to end",
                            s.events,
                            self.cfg.url,
                            portcullis_core::duration::format(deadline),
                            self.abandoned.len()
                        );
                    }
                }
            }
            if self.sending.is_some() {
                return;
            }
        }
        if self
            .oldest
            .is_none_or(|t| now < (t + self.cfg.interval).max(self.retry_at))
        {
            return;
        }
        if self.abandoned.len() >= MAX_ABANDONED {
            if !self.blocked_said {
                self.blocked_said = true;
                warn!(
                    "notify: mail due through {}, but {} conversations given up earlier are still open: no new one until one of them ends",
                    self.cfg.url,
                    self.abandoned.len()
                );
            }
            return;
        }
        self.blocked_said = false;
        let (items, dropped) = match self.queue.load(SINK) {
            Ok(x) => x,
            Err(e) => {
                warn!("notify: cannot read the mail queue: {e:#}");
                self.retry_at = now + 60_000;
                return;
            }
        };
        let Some(&(last_id, _)) = items.last() else {
            self.oldest = None;
            return;
        };
        let notes: Vec<Note> = items.into_iter().map(|(_, n)| n).collect();
        let events = notes.len();
        let short = self.short.is_some();
        let msg = match compose(&self.cfg, &notes, dropped, host, self.short.as_deref()) {
            Ok(m) => m,
            Err(e) => {
                self.failed(now, events, &format!("{e:#}"));
                return;
            }
        };
        let cfg = self.cfg.clone();
        let (tx, done) = mpsc::channel();
        let spawned = std::thread::Builder::new()
            .name("notify-smtp".into())
            .spawn(move || {
                let r = transport(&cfg).and_then(|t| t.send(&msg).context("SMTP").map(|_| ()));
                let _ = tx.send(r);
            });
        match spawned {
            Ok(_) => {
                self.sending = Some(Send {
                    started: now,
                    last_id,
                    events,
                    short,
                    done,
                    overdue_said: false,
                })
            }
            Err(e) => self.failed(now, events, &format!("cannot start a thread: {e}")),
        }
    }
}

impl MailSink {
    /// A send given up earlier may still end: if it was delivered after all, its events
    /// leave the queue (a later mail may have listed them too).
    fn poll_abandoned(&mut self) {
        let mut i = 0;
        while i < self.abandoned.len() {
            let r = match self.abandoned[i].done.try_recv() {
                Err(TryRecvError::Empty) => {
                    i += 1;
                    continue;
                }
                Ok(r) => r,
                Err(TryRecvError::Disconnected) => Err(anyhow::anyhow!("no result")),
            };
            let s = self.abandoned.remove(i);
            match r {
                Ok(()) => {
                    info!(
                        "notify: a mail given up earlier was delivered after all: {} event(s)",
                        s.events
                    );
                    if s.short {
                        self.short = None;
                    }
                    self.delivered = self.delivered.max(s.started);
                    self.cleared(s.last_id);
                }
                Err(e) => {
                    // (refused for good: the next try is the short mail, as if it had
                    // ended in time, unless a mail begun after it was delivered since)
                    if !s.short && s.started >= self.delivered {
                        if let Some(a) = refusal(&e) {
                            self.short = Some(a);
                        }
                    }
                    info!("notify: a mail given up earlier ended: {e:#}")
                }
            }
        }
    }

    /// The send `s` ended with `r`.
    fn ended(&mut self, now: Millis, s: &Send, r: Result<()>) {
        match r {
            Ok(()) => {
                if self.failures > 0 {
                    info!(
                        "notify: mail sent after {} failed tr{}: {} event(s)",
                        self.failures,
                        if self.failures == 1 { "y" } else { "ies" },
                        s.events
                    );
                } else {
                    info!("notify: mail sent: {} event(s)", s.events);
                }
                self.failures = 0;
                self.retry_at = 0;
                self.short = None;
                self.delivered = self.delivered.max(s.started);
                self.cleared(s.last_id);
            }
            Err(e) if s.short && refused_message(&e) => {
                // refused for good even short: dropped, said; the next events go on
                tracing::error!(
                    "notify: the mail server refused even a short mail of {} event(s) for good: they are dropped from the mail queue (`portcullis bans` and this log have them): {e:#}",
                    s.events
                );
                STATS.mail_failures.fetch_add(1, Ordering::Relaxed);
                self.failures = 0;
                self.retry_at = 0;
                self.short = None;
                // (the next mail says how many were dropped)
                if let Err(e) = self.queue.add_dropped(SINK, s.events as u64) {
                    warn!("notify: cannot count the dropped mail events: {e:#}");
                }
                self.cleared(s.last_id);
            }
            // any refusal for good of the whole mail (its size, a content filter that the
            // attacker's text in the evidence set off, or a setting): the short one next,
            // at once; it carries no client text, and a refusal of it that is not about
            // the message (a setting) keeps the events waiting
            Err(e) if !s.short && permanent(&e) => {
                self.short = refusal(&e);
                self.failures += 1;
                STATS.mail_failures.fetch_add(1, Ordering::Relaxed);
                self.retry_at = now;
                warn!(
                    "notify: mail of {} event(s) through {} refused for good: {e:#}; a short mail without evidence follows",
                    s.events, self.cfg.url
                );
            }
            // (any other refusal, for good or not, is the setting's or the server's: the
            // mail waits, and goes once it is fixed; whole again after a short one was
            // refused so, or the evidence of a login's outage was lost, a review found)
            Err(e) => {
                if s.short {
                    self.short = None;
                }
                self.failed(now, s.events, &format!("{e:#}"))
            }
        }
    }

    /// The queue's rows through `last_id` were delivered.
    fn cleared(&mut self, last_id: i64) {
        if let Err(e) = self.queue.remove_through(SINK, last_id) {
            warn!("notify: mail sent but the queue could not be cleared (it may be sent again): {e:#}");
        }
        self.oldest = self.queue.oldest(SINK).ok().flatten();
        let n = self.queue.len(SINK).unwrap_or(0);
        STATS.mail_queue.store(n as u64, Ordering::Relaxed);
    }

    /// A try failed: the next one waits a growing delay.
    fn failed(&mut self, now: Millis, events: usize, why: &str) {
        self.failures += 1;
        STATS.mail_failures.fetch_add(1, Ordering::Relaxed);
        let delay = backoff(self.failures);
        self.retry_at = now + delay;
        warn!(
            "notify: mail of {events} event(s) through {} failed (try {}), next try in {}: {why}",
            self.cfg.url,
            self.failures,
            portcullis_core::duration::format(delay)
        );
    }
}

/// Whether `e` is the SMTP server's refusal for good (a 5xx answer).
fn permanent(e: &anyhow::Error) -> bool {
    smtp_error(e).is_some_and(lettre::transport::smtp::Error::is_permanent)
}

/// The answer of the SMTP server's refusal for good `e` (for the short mail's text).
fn refusal(e: &anyhow::Error) -> Option<String> {
    smtp_error(e)
        .filter(|s| s.is_permanent())
        .map(|s| super::escape_line(s.to_string().as_bytes(), 300))
}

/// Whether `e` is the SMTP server's refusal for good of this message itself (too large, or
/// malformed: the enhanced status 5.2.3, 5.3.4 or 5.6.x), which sending it again cannot
/// change; not a refusal of the login, the relay, the sender or a recipient (535, 530, 550,
/// 553, 554 5.7.1, 552 5.2.2 or 5.5.3), nor a bare 552 (most often a full mailbox).
fn refused_message(e: &anyhow::Error) -> bool {
    smtp_error(e).is_some_and(|s| s.is_permanent() && message_status(&s.to_string()))
}

fn smtp_error(e: &anyhow::Error) -> Option<&lettre::transport::smtp::Error> {
    e.chain()
        .find_map(|c| c.downcast_ref::<lettre::transport::smtp::Error>())
}

/// [`refused_message`] by the answer's text (lettre's: `permanent error (552):
/// 5.3.4 Message size exceeds fixed limit`). The enhanced status is read only where RFC
/// 3463 puts it, first in a line of the answer: anywhere in the text, the client address of
/// a blocklist refusal (`[85.6.10.20]`) read as 5.6 (a review found).
fn message_status(text: &str) -> bool {
    let answer = text.split_once("): ").map_or(text, |(_, a)| a);
    let enhanced = answer.lines().find_map(|l| {
        // (a continued answer's lines may repeat the code: "552-5.2.3 ...")
        let l = l.trim_start();
        let l = match l.get(..4) {
            Some(c)
                if c.as_bytes()[..3].iter().all(u8::is_ascii_digit)
                    && matches!(c.as_bytes()[3], b' ' | b'-') =>
            {
                &l[4..]
            }
            _ => l,
        };
        let word = l.split_whitespace().next()?;
        let mut parts = word.split('.');
        let ok = parts.clone().count() == 3
            && parts
                .all(|p| !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()));
        ok.then_some(word)
    });
    enhanced.is_some_and(|s| s == "5.2.3" || s == "5.3.4" || s.starts_with("5.6."))
}

/// Sends `notes` as one mail now, waiting for the server's answer (`check-config
/// --notify-test`).
pub fn send_now(cfg: &MailConfig, notes: &[Note], host: &str) -> Result<()> {
    let msg = compose(cfg, notes, 0, host, None)?;
    transport(cfg)?
        .send(&msg)
        .map(|_| ())
        .map_err(|e| anyhow::anyhow!("{e}"))
}

/// The SMTP transport of `cfg`.
fn transport(cfg: &MailConfig) -> Result<SmtpTransport> {
    let params = || TlsParameters::new(cfg.host.clone()).context("TLS parameters");
    let tls = match cfg.tls {
        SmtpTls::Opportunistic => Tls::Opportunistic(params()?),
        SmtpTls::Required => Tls::Required(params()?),
        SmtpTls::Wrapper => Tls::Wrapper(params()?),
    };
    let mut b = SmtpTransport::builder_dangerous(cfg.host.as_str())
        .port(cfg.port)
        .tls(tls)
        .timeout(Some(Duration::from_millis(cfg.timeout as u64)));
    if let Some((user, pass)) = &cfg.credentials {
        b = b.credentials(Credentials::new(user.clone(), pass.0.clone()));
    }
    Ok(b.build())
}

/// Counts per event kind, for the subject: `3 bans, 1 flood`.
fn summary(notes: &[Note]) -> String {
    let mut counts: Vec<(&str, usize)> = Vec::new();
    for n in notes {
        match counts.iter_mut().find(|(k, _)| *k == n.event) {
            Some((_, c)) => *c += 1,
            None => counts.push((n.event.as_str(), 1)),
        }
    }
    counts
        .iter()
        .map(|(k, c)| {
            let k = match *k {
                "ban" | "unban" | "restore" | "flood" | "start" | "reload" | "stop" | "test" => *k,
                _ => "other",
            };
            format!("{c} {k}{}", if *c == 1 { "" } else { "s" })
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The mail for `notes`. Only the configuration's text, counts and the host name go in
/// the headers.
/// `short`: the short mail sent after the server refused the whole one for good (no
/// evidence, the first [`SHORT_LISTED`] events one line each).
pub fn compose(
    cfg: &MailConfig,
    notes: &[Note],
    dropped: i64,
    host: &str,
    short: Option<&str>,
) -> Result<Message> {
    let from: Mailbox = cfg.from.parse().context("from")?;
    let mut b = Message::builder()
        .from(from)
        .subject(format!("[portcullis] {host}: {}", summary(notes)))
        .date_now()
        .message_id(None);
    for t in &cfg.to {
        b = b.to(t.parse().context("to")?);
    }
    let body = body(notes, dropped, host, short);
    Ok(b.singlepart(
        SinglePart::builder()
            .header(ContentType::TEXT_PLAIN)
            .body(body),
    )?)
}

/// The text/plain body. Every attacker-shaped string in it (evidence) was escaped when it
/// was recorded; it is escaped again here in case the queue held older rows. The evidence
/// stops at [`DETAILED`] events or [`BODY_BUDGET`] bytes, the one-line listing at twice the
/// budget; `short` (see [`compose`]) lists [`SHORT_LISTED`] events without evidence.
pub fn body(notes: &[Note], dropped: i64, host: &str, short: Option<&str>) -> String {
    let safe = |s: &str| super::escape_again(s.as_bytes(), 4 * super::EVIDENCE_LINE_BYTES);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Portcullis on {host}: {} ({} event(s)).\n",
        summary(notes),
        notes.len()
    );
    if dropped > 0 {
        let _ = writeln!(
            out,
            "{dropped} older event(s) were dropped: a queue was full (mail could not be sent, or events came faster than they could be queued), or the mail server refused even a short mail of them.\n"
        );
    }
    if let Some(answer) = short {
        let _ = writeln!(
            out,
            "The mail server refused the whole report of these events for good ({answer}), so this short one lists the first {SHORT_LISTED} without evidence; `portcullis bans` and the daemon's log have them all.\n"
        );
    }
    let (detailed, listed) = if short.is_some() {
        (0, SHORT_LISTED)
    } else {
        (DETAILED, usize::MAX)
    };
    let mut brief = false;
    for (i, n) in notes.iter().enumerate() {
        if i >= listed || out.len() >= 2 * BODY_BUDGET {
            let _ = writeln!(
                out,
                "\n{} more event(s) not listed here (`portcullis bans` and the daemon's log have them).",
                notes.len() - i
            );
            break;
        }
        if !brief && (i >= detailed || out.len() >= BODY_BUDGET) {
            brief = true;
            let _ = writeln!(out, "More events, without evidence:\n");
        }
        if brief {
            let _ = writeln!(out, "  {}  {}", rfc3339(n.time), safe(&n.text));
            continue;
        }
        let _ = writeln!(
            out,
            "{}  {}",
            rfc3339(n.time),
            safe(&n.event).to_uppercase()
        );
        let mut field = |name: &str, v: &Option<String>| {
            if let Some(v) = v {
                let _ = writeln!(out, "  {name:<9} {}", safe(v));
            }
        };
        field("address:", &n.addr);
        field("jail:", &n.jail);
        field("failures:", &n.failures.map(|f| f.to_string()));
        field("duration:", &n.duration);
        field("reason:", &n.reason);
        if n.addr.is_none() {
            field("event:", &Some(n.text.clone()));
        }
        if !n.evidence.is_empty() {
            let _ = writeln!(out, "  evidence (last log lines that counted):");
            for l in &n.evidence {
                let _ = writeln!(out, "    | {}", safe(l));
            }
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;
    use crate::notify::EventKind;

    fn cfg() -> MailConfig {
        MailConfig {
            url: "smtp://127.0.0.1:25".into(),
            tls: SmtpTls::Opportunistic,
            host: "127.0.0.1".into(),
            port: 25,
            from: "portcullis@host.example.org".into(),
            to: vec!["admin@example.org".into()],
            interval: 600_000,
            credentials: Some(("u".into(), Secret("p".into()))),
            events: vec![EventKind::Ban],
            timeout: 1000,
            secret_files: vec![],
        }
    }

    /// Only a refusal of the message itself sends the short mail (and drops what even
    /// the short one cannot carry): not a refused login, relay, sender or recipient.
    #[test]
    fn a_refusal_of_the_message_is_told_from_one_of_the_setting() {
        assert!(message_status("552 5.3.4 Message size exceeds fixed limit"));
        // a bare 552 is most often a full mailbox: not the message's
        assert!(!message_status(
            "552 Message size exceeds maximum permitted"
        ));
        assert!(message_status("554 5.6.0 Malformed message"));
        assert!(message_status(
            "552-5.2.3 Your message exceeded the size limit"
        ));
        assert!(!message_status("552 5.2.2 Mailbox full"));
        assert!(!message_status(
            "535 5.7.8 Authentication credentials invalid"
        ));
        assert!(!message_status("554 5.7.1 Relay access denied"));
        assert!(!message_status("550 5.1.1 User unknown"));
        // as lettre writes them; an address in the text is not an enhanced status
        assert!(message_status(
            "permanent error (552): 5.3.4 Message size exceeds fixed limit"
        ));
        assert!(!message_status("permanent error (554): 5.7.1 Service unavailable; Client host [85.6.10.20] blocked using zen.spamhaus.org"
        ));
        assert!(!message_status(
            "permanent error (554): Client host [45.2.3.10] blocked"
        ));
        assert!(!message_status(
            "permanent error (552): 5.5.3 Too many recipients"
        ));
    }

    #[test]
    fn the_subject_counts_each_kind() {
        let n = |k: &str| Note::plain(k, 0, String::new());
        assert_eq!(
            summary(&[n("ban"), n("ban"), n("test"), n("weird")]),
            "2 bans, 1 test, 1 other"
        );
    }

    /// A flood of bans with long evidence makes a body of a bounded size: the evidence
    /// stops at the budget, the listing at twice it, and the rest is counted.
    #[test]
    fn the_body_stays_within_its_budget() {
        let n = |i: usize| Note {
            event: "ban".into(),
            time: 0,
            text: format!(
                "ban 2001:db8:{i:x}::/64 jail=sshd failures=5 for=1h {}",
                "x".repeat(400)
            ),
            addr: Some(format!("2001:db8:{i:x}::/64")),
            jail: Some("sshd".into()),
            failures: Some(5),
            duration: Some("1h".into()),
            reason: Some("failures".into()),
            evidence: vec!["\u{1f600}".repeat(118); 5],
        };
        let notes: Vec<Note> = (0..20_000).map(n).collect();
        let b = body(&notes, 0, "gw", None);
        assert!(b.len() < 2 * BODY_BUDGET + 4096, "{}", b.len());
        assert!(b.contains("More events, without evidence:"));
        assert!(b.contains("more event(s) not listed here"));
        let short = body(
            &notes,
            0,
            "gw",
            Some("permanent error (552): 5.3.4 too big"),
        );
        assert!(short.len() < 64 * 1024, "{}", short.len());
        assert!(!short.contains("evidence (last log lines"));
        assert!(short.contains("19900 more event(s) not listed here"));
    }

    #[test]
    fn attacker_text_stays_in_the_encoded_body() {
        let n = Note {
            event: "ban".into(),
            time: 0,
            text: "ban 203.0.113.5 jail=sshd failures=5 for=1h".into(),
            addr: Some("203.0.113.5".into()),
            jail: Some("sshd".into()),
            failures: Some(5),
            duration: Some("1h".into()),
            reason: Some("failures".into()),
            // as if an old row held it unescaped
            evidence: vec![
                "Invalid user x\r\nBcc: victim@example.org\r\n\r\n<b>hi</b> from 203.0.113.5"
                    .into(),
            ],
        };
        let m = compose(&cfg(), &[n], 0, "gw", None).unwrap();
        let raw = String::from_utf8(m.formatted()).unwrap();
        let (head, _) = raw.split_once("\r\n\r\n").unwrap();
        // no header line named Bcc (a substring test failed once on a random Message-ID that
        // held "BCC")
        assert!(
            !head
                .split("\r\n")
                .any(|l| l.to_ascii_lowercase().starts_with("bcc")),
            "{head}"
        );
        assert!(!raw.contains("\r\nBcc:"), "{raw}");
        assert!(head.contains("Subject: [portcullis] gw: 1 ban"), "{head}");
    }
}

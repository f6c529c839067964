//! Notifications: `[notify.mail]` (one mail per interval, evidence included) and
//! `[[notify.webhook]]` (one POST per event, in a chat service's format, at most
//! `webhook::CHAT_PER_MINUTE` a minute for the chat formats).
//!
//! Nothing here may delay a ban. The notifier subscribes to the daemon's events
//! ([`crate::events::subscribe`]); on the engine's thread the subscriber only turns an
//! event into a [`Note`] (with the evidence of a ban) and hands it to a bounded channel
//! without waiting (a full channel drops the event and counts it). Each sink (the mail,
//! each webhook) has a thread of its own that does its I/O, so a slow server delays only
//! its own sink: the mail's thread writes mail events to its own SQLite queue (`notify.db` in the
//! state directory, so a restart loses nothing), sends the mail when its interval is up,
//! and posts webhooks from a bounded in-memory queue per hook (the oldest dropped first,
//! counted). Failed sends are retried with a growing delay.

pub mod mail;
pub mod queue;
pub mod webhook;

use crate::sys::now_ms;
use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Result;
use portcullis_core::decision::Millis;
use portcullis_core::duration;
use portcullis_core::ignore::Cidr;
use serde::{Deserialize, Serialize};
use tracing::{error, info, warn};

use crate::config::NotifyConfig;
use crate::events::{self, Event, UnbanReason};

/// The events a notifier can be asked for (`events = [...]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// An address banned (automatically or by `portcullis ban`).
    Ban,
    /// A ban ended.
    Unban,
    /// Bans put back at start.
    Restore,
    /// A jail's tracking cap was reached.
    Flood,
    /// The daemon started.
    Start,
    /// The configuration was reloaded.
    Reload,
    /// The daemon stopped.
    Stop,
}

impl EventKind {
    /// The names, as written in `events`.
    pub const NAMES: &'static [&'static str] = &[
        "ban", "unban", "restore", "flood", "start", "reload", "stop",
    ];

    /// The kind named `s`.
    pub fn parse(s: &str) -> Option<EventKind> {
        Some(match s {
            "ban" => EventKind::Ban,
            "unban" => EventKind::Unban,
            "restore" => EventKind::Restore,
            "flood" => EventKind::Flood,
            "start" => EventKind::Start,
            "reload" => EventKind::Reload,
            "stop" => EventKind::Stop,
            _ => return None,
        })
    }

    /// Its name.
    pub fn name(self) -> &'static str {
        match self {
            EventKind::Ban => "ban",
            EventKind::Unban => "unban",
            EventKind::Restore => "restore",
            EventKind::Flood => "flood",
            EventKind::Start => "start",
            EventKind::Reload => "reload",
            EventKind::Stop => "stop",
        }
    }

    /// The kind of an event.
    pub fn of(e: &Event) -> EventKind {
        match e {
            Event::Ban { .. } => EventKind::Ban,
            Event::Unban { .. } => EventKind::Unban,
            Event::Restore { .. } | Event::Restored(_) => EventKind::Restore,
            Event::Flood { .. } => EventKind::Flood,
            Event::Started { .. } => EventKind::Start,
            Event::Reloaded { .. } => EventKind::Reload,
            Event::Stopped(_) => EventKind::Stop,
        }
    }
}

/// One event as the notifiers send it (and as the `json` webhook format and the mail
/// queue hold it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Note {
    /// [`EventKind::name`].
    pub event: String,
    /// When the daemon saw it (Unix milliseconds).
    pub time: Millis,
    /// The daemon's own line for it (as on stderr).
    pub text: String,
    /// The address, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub addr: Option<String>,
    /// The jail, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jail: Option<String>,
    /// Weighted failures that led to a ban.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failures: Option<u32>,
    /// Length of a ban, or time left of a restored one (`1h30m`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,
    /// Why: `failures`, `manual`, `expired`, `ignore:…`, `tracking cap`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The last log lines that counted toward a ban (attacker-controlled text: control
    /// characters are escaped, and each line is cut at [`EVIDENCE_LINE_BYTES`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub evidence: Vec<String>,
}

impl Note {
    /// A note of `event` with its text alone.
    pub fn plain(event: &str, time: Millis, text: String) -> Note {
        Note {
            event: event.to_string(),
            time,
            text,
            addr: None,
            jail: None,
            failures: None,
            duration: None,
            reason: None,
            evidence: Vec::new(),
        }
    }

    /// The note of an event; `evidence` for a ban.
    pub fn new(e: &Event, time: Millis, evidence: Vec<String>) -> Note {
        let mut n = Note::plain(EventKind::of(e).name(), time, e.to_string());
        n.evidence = evidence;
        match e {
            Event::Ban {
                addr,
                jail,
                failures,
                length,
                reason,
                ..
            } => {
                n.addr = Some(addr.to_string());
                n.jail = Some(jail.clone());
                n.failures = Some(*failures);
                n.duration = Some(forever_or(*length));
                n.reason = Some(reason.as_str().into());
            }
            Event::Unban { addr, jail, reason } => {
                n.addr = Some(addr.to_string());
                n.jail = Some(jail.clone());
                n.reason = Some(match reason {
                    UnbanReason::Expired => "expired".into(),
                    UnbanReason::Manual => "manual".into(),
                    UnbanReason::Lifted(r) => r.clone(),
                });
            }
            Event::Restore {
                addr,
                jail,
                remaining,
            } => {
                n.addr = Some(addr.to_string());
                n.jail = Some(jail.clone());
                n.duration = Some(forever_or(*remaining));
            }
            Event::Flood { jail, cause, .. } => {
                n.jail = Some(jail.clone());
                n.reason = Some(cause.clone());
            }
            _ => {}
        }
        n
    }
}

/// A ban's length as text: `forever` for a permanent one.
fn forever_or(ms: Millis) -> String {
    if ms >= portcullis_core::decision::FOREVER / 2 {
        "forever".into()
    } else {
        duration::format(ms)
    }
}

/// Evidence lines kept per tracked offender (the last ones).
pub const EVIDENCE_LINES: usize = 5;
/// Longest evidence line kept, in bytes (longer ones are cut, marked with `…`).
pub const EVIDENCE_LINE_BYTES: usize = 500;
/// Offenders whose evidence is kept at most; past it the oldest go first.
pub const EVIDENCE_OFFENDERS: usize = 10_000;

/// Unicode characters that are invisible or change how the text around them shows: the
/// format characters (category Cf: bidirectional marks, embeddings, overrides and
/// isolates, zero-width characters, the byte-order mark, soft hyphen, prepended number
/// signs, Egyptian and shorthand format controls, musical formatting, tags), the Hangul
/// fillers, the combining grapheme joiner and the variation selectors (a review found
/// some of them shown raw).
fn is_invisible_format(c: char) -> bool {
    matches!(c,
        '\u{ad}' | '\u{34f}' | '\u{600}'..='\u{605}' | '\u{61c}' | '\u{6dd}' | '\u{70f}'
        | '\u{890}'..='\u{891}' | '\u{8e2}' | '\u{115f}'..='\u{1160}' | '\u{17b4}'..='\u{17b5}'
        | '\u{180b}'..='\u{180f}' | '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}'
        | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{206f}' | '\u{3164}' | '\u{fe00}'..='\u{fe0f}'
        | '\u{feff}' | '\u{ffa0}' | '\u{fff9}'..='\u{fffb}' | '\u{110bd}' | '\u{110cd}'
        | '\u{13430}'..='\u{1343f}' | '\u{1bca0}'..='\u{1bca3}' | '\u{1d173}'..='\u{1d17a}'
        | '\u{e0000}'..='\u{e007f}' | '\u{e0100}'..='\u{e01ef}')
}

/// Text from a log line made safe to show anywhere: control characters (CR, LF, ESC, …)
/// the Unicode line and paragraph separators and the invisible format characters
/// (bidi overrides, zero-width) become `\xNN` / `\u{NNNN}`, a backslash `\\` (a user
/// name typed as `\x0d` looked like an escaped CR, a review found), and the text is cut at
/// `max` bytes.
pub fn escape_line(raw: &[u8], max: usize) -> String {
    escape(raw, max, true)
}

/// [`escape_line`] for text escaped once already (a queue's rows, the daemon's own lines):
/// its backslashes are left as they are, so escaping again changes nothing.
pub fn escape_again(raw: &[u8], max: usize) -> String {
    escape(raw, max, false)
}

fn escape(raw: &[u8], max: usize, backslash: bool) -> String {
    let s = String::from_utf8_lossy(raw);
    let mut out = String::with_capacity(s.len().min(max) + 8);
    for c in s.chars() {
        if out.len() >= max {
            out.push('…');
            break;
        }
        match c {
            '\\' if backslash => out.push_str("\\\\"),
            c if (c as u32) < 0x80 && c.is_control() => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            // controls, line separators, and the invisible format characters that reorder
            // or hide text in a mail client (bidi overrides and isolates, zero-width
            // characters: a user name with U+202E showed reversed, a review found)
            c if c.is_control()
                || matches!(c, '\u{2028}' | '\u{2029}' | '\u{85}')
                || is_invisible_format(c) =>
            {
                out.push_str(&format!("\\u{{{:04x}}}", c as u32));
            }
            c => out.push(c),
        }
    }
    out
}

#[derive(Debug, Default)]
struct Offender {
    /// (time, escaped line), oldest first.
    lines: VecDeque<(Millis, String)>,
    /// Failures older than this no longer count (time of the last line + findtime).
    until: Millis,
}

/// The last matched lines per (jail, address), bounded in lines, bytes and offenders.
#[derive(Debug, Default)]
pub struct Evidence {
    map: HashMap<(String, IpAddr), Offender>,
}

impl Evidence {
    /// Keeps `line`, a failure of `addr` in `jail` counted at `now` (window `findtime`).
    pub fn record(&mut self, jail: &str, addr: IpAddr, line: &[u8], now: Millis, findtime: Millis) {
        if self.map.len() >= EVIDENCE_OFFENDERS && !self.map.contains_key(&(jail.to_string(), addr))
        {
            self.make_room(now);
        }
        let o = self.map.entry((jail.to_string(), addr)).or_default();
        if o.lines.len() >= EVIDENCE_LINES {
            o.lines.pop_front();
        }
        o.lines
            .push_back((now, escape_line(line, EVIDENCE_LINE_BYTES)));
        o.until = now + findtime;
    }

    /// Drops offenders whose failures no longer count, then, if still full, the older half.
    fn make_room(&mut self, now: Millis) {
        self.map.retain(|_, o| o.until > now);
        if self.map.len() >= EVIDENCE_OFFENDERS {
            let mut untils: Vec<Millis> = self.map.values().map(|o| o.until).collect();
            untils.sort_unstable();
            let cut = untils[untils.len() / 2];
            self.map.retain(|_, o| o.until > cut);
        }
    }

    /// The lines that counted toward a ban of `addr` in `jail` (those within `findtime`
    /// of `now`), removed. A prefix ban (`v6_prefix`, `subnet_ban`) takes the lines of
    /// every address inside it, the last [`EVIDENCE_LINES`] by time.
    pub fn take(&mut self, jail: &str, addr: Cidr, now: Millis, findtime: Millis) -> Vec<String> {
        let mut lines: Vec<(Millis, String)> = if addr.is_host() {
            self.map
                .remove(&(jail.to_string(), addr.addr))
                .map(|o| o.lines.into_iter().collect())
                .unwrap_or_default()
        } else {
            let keys: Vec<(String, IpAddr)> = self
                .map
                .keys()
                .filter(|(j, a)| j == jail && addr.contains(*a))
                .cloned()
                .collect();
            keys.iter()
                .filter_map(|k| self.map.remove(k))
                .flat_map(|o| o.lines)
                .collect()
        };
        lines.retain(|(t, _)| *t >= now - findtime);
        lines.sort_by_key(|(t, _)| *t);
        let skip = lines.len().saturating_sub(EVIDENCE_LINES);
        lines.into_iter().skip(skip).map(|(_, l)| l).collect()
    }

    /// Offenders tracked.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.map.len()
    }
}

/// The engine's side: where it records failures (evidence) with the window of each jail.
#[derive(Clone)]
pub struct EvidenceHook {
    inner: Arc<Mutex<(Evidence, HashMap<String, Millis>)>>,
}

impl EvidenceHook {
    /// Records a counted failure's line.
    pub fn record(&self, jail: &str, addr: IpAddr, line: &[u8], now: Millis, findtime: Millis) {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        g.0.record(jail, addr, line, now, findtime);
        if g.1.get(jail) != Some(&findtime) {
            g.1.insert(jail.to_string(), findtime);
        }
    }
}

/// Counters for status and metrics.
pub struct Stats {
    /// Mail events waiting (persisted).
    pub mail_queue: AtomicU64,
    /// Webhook events waiting (all hooks).
    pub webhook_queue: AtomicU64,
    /// Failed mail sends.
    pub mail_failures: AtomicU64,
    /// Failed webhook posts.
    pub webhook_failures: AtomicU64,
    /// Webhook events dropped because a hook's queue was full (the oldest first).
    pub webhook_dropped: AtomicU64,
    /// Events dropped because the notifier thread was behind (its channel full).
    pub channel_dropped: AtomicU64,
}

/// The process' counters.
pub static STATS: Stats = Stats {
    mail_queue: AtomicU64::new(0),
    webhook_queue: AtomicU64::new(0),
    mail_failures: AtomicU64::new(0),
    webhook_failures: AtomicU64::new(0),
    webhook_dropped: AtomicU64::new(0),
    channel_dropped: AtomicU64::new(0),
};

/// Events that may wait for the notifier thread; past this they are dropped, never waited on.
pub const CHANNEL: usize = 4096;

enum Msg {
    Note(Note),
    Shutdown(mpsc::Sender<()>),
}

/// What a notifier thread drives: the mail, or one webhook.
pub trait Sink: Send {
    /// Takes new notes (those it does not want are ignored).
    fn enqueue(&mut self, notes: &[Note]);
    /// Sends what is due.
    fn tick(&mut self, now: Millis, host: &str);
    /// When something is due next (`None`: nothing waits).
    fn next_due(&self) -> Option<Millis>;
    /// Notes waiting in memory (for the webhook queue gauge; 0 for the persisted mail).
    fn in_memory(&self) -> usize {
        0
    }
    /// `n` events for this sink were lost before it took them (its channel was full): the
    /// mail counts them with the ones its queue dropped, so its next mail says so.
    fn lost(&mut self, _n: u64) {}
    /// Keeps the sink's file in its place (the mail queue, [`queue::Queue::keep_in_place`]):
    /// at most every few seconds unless `now` (a stop).
    fn keep_in_place(&mut self, _now: bool) {}
}

/// One sink's thread (detached: it ends at shutdown, or with the process) and channel.
struct Worker {
    tx: SyncSender<Msg>,
    wants: Vec<EventKind>,
    /// Events lost because `tx` was full, not yet told to the sink.
    lost: Arc<AtomicU64>,
}

/// A running notifier: one thread per sink (the mail, each webhook), so a slow server
/// delays only its own sink.
pub struct Notifier {
    workers: Arc<Vec<Worker>>,
    evidence: EvidenceHook,
}

/// The first delay after a failed send; it doubles up to [`MAX_BACKOFF`].
pub const FIRST_BACKOFF: Millis = 2_000;
/// The longest delay between two tries.
pub const MAX_BACKOFF: Millis = 300_000;

/// The delay after `failures` failed tries in a row (at least 1).
pub fn backoff(failures: u32) -> Millis {
    FIRST_BACKOFF
        .saturating_mul(1 << failures.saturating_sub(1).min(20))
        .min(MAX_BACKOFF)
}

/// `check-config --notify-test`: one test message through each channel of `cfg`, sent now
/// (the daemon's queue and retries are not involved); per channel, its name and what came
/// of it. A mail server or webhook that refuses shows here, not at the first ban.
pub fn send_test(cfg: &NotifyConfig) -> Vec<(String, Result<()>)> {
    let host = hostname();
    let note = Note::plain(
        "test",
        now_ms(),
        "test notification (portcullis check-config --notify-test): the daemon's bans and unbans come this way".into(),
    );
    let mut out = Vec::new();
    if let Some(m) = &cfg.mail {
        out.push((
            format!("mail via {} to {}", m.url, m.to.join(", ")),
            mail::send_now(m, std::slice::from_ref(&note), &host),
        ));
    }
    for w in &cfg.webhooks {
        out.push((
            format!("webhook {}", w.label),
            webhook::Hook::new(w.clone()).post(&note, &host),
        ));
    }
    out
}

/// This host's name, for subjects and messages.
pub fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is ours and its length is passed.
    let r = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if r != 0 {
        return "localhost".into();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    let h = String::from_utf8_lossy(&buf[..end]).into_owned();
    if h.is_empty() {
        "localhost".into()
    } else {
        escape_line(h.as_bytes(), 253)
    }
}

impl Notifier {
    /// Starts the notifier for `cfg` (nothing when it is empty), its queue in `state_dir`,
    /// and subscribes it to the daemon's events.
    pub fn start(cfg: &NotifyConfig, state_dir: &Path) -> Result<Option<Notifier>> {
        if cfg.is_empty() {
            return Ok(None);
        }
        let mut sinks: Vec<(String, Vec<EventKind>, Box<dyn Sink>)> = Vec::new();
        if let Some(m) = &cfg.mail {
            let sink =
                mail::MailSink::new(m.clone(), queue::Queue::open(&state_dir.join("notify.db"))?)?;
            sinks.push(("notify-mail".into(), m.events.clone(), Box::new(sink)));
        }
        for (i, w) in cfg.webhooks.iter().enumerate() {
            sinks.push((
                format!("notify-hook{i}"),
                w.events.clone(),
                Box::new(webhook::Hook::new(w.clone())),
            ));
        }
        let mut workers = Vec::new();
        for (name, wants, sink) in sinks {
            let (tx, rx) = mpsc::sync_channel(CHANNEL);
            let lost = Arc::new(AtomicU64::new(0));
            let seen = lost.clone();
            let label = name.clone();
            std::thread::Builder::new()
                .name(name)
                .spawn(move || run(rx, sink, seen, label))?;
            workers.push(Worker { tx, wants, lost });
        }
        let workers = Arc::new(workers);
        let evidence = EvidenceHook {
            inner: Arc::new(Mutex::new((Evidence::default(), HashMap::new()))),
        };
        {
            let workers = workers.clone();
            let ev = evidence.clone();
            events::subscribe(Box::new(move |e| {
                let kind = EventKind::of(e);
                let now = now_ms();
                let mut g = ev.inner.lock().unwrap_or_else(|p| p.into_inner());
                let evidence = match e {
                    Event::Ban {
                        addr,
                        jail,
                        manual: false,
                        ..
                    } => {
                        let findtime = g.1.get(jail).copied().unwrap_or(Millis::MAX / 4);
                        g.0.take(jail, *addr, now, findtime)
                    }
                    _ => Vec::new(),
                };
                drop(g);
                let mut note = None;
                for w in workers.iter().filter(|w| w.wants.contains(&kind)) {
                    let n = note
                        .get_or_insert_with(|| Note::new(e, now, evidence.clone()))
                        .clone();
                    match w.tx.try_send(Msg::Note(n)) {
                        Ok(()) => {}
                        Err(TrySendError::Full(_)) => {
                            STATS.channel_dropped.fetch_add(1, Ordering::Relaxed);
                            w.lost.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(TrySendError::Disconnected(_)) => {}
                    }
                }
            }));
        }
        Ok(Some(Notifier { workers, evidence }))
    }

    /// Where the engine records the evidence of failures.
    pub fn evidence(&self) -> EvidenceHook {
        self.evidence.clone()
    }

    /// At daemon stop: each sink stops; the mail's events still in its channel are written
    /// to its queue (sent at the next start: the mail's SMTP conversation has its own
    /// thread, so its sink is always free to take them). Waits at most `wait` in all (a
    /// webhook in the middle of a post is left to the process' exit).
    pub fn shutdown(self, wait: Duration) {
        let deadline = std::time::Instant::now() + wait;
        let mut acks = Vec::new();
        for w in self.workers.iter() {
            let (ack_tx, ack_rx) = mpsc::channel();
            let mut msg = Msg::Shutdown(ack_tx);
            loop {
                match w.tx.try_send(msg) {
                    Ok(()) => {
                        acks.push(ack_rx);
                        break;
                    }
                    Err(TrySendError::Full(m)) if std::time::Instant::now() < deadline => {
                        msg = m;
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    Err(_) => break,
                }
            }
        }
        for a in acks {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let _ = a.recv_timeout(left);
        }
    }
}

/// A sink's thread: takes notes from its channel, sends what is due.
fn run(rx: Receiver<Msg>, mut sink: Box<dyn Sink>, lost: Arc<AtomicU64>, name: String) {
    let mut in_memory = 0usize;
    let host = hostname();
    loop {
        let now = now_ms();
        let next = sink.next_due().unwrap_or(now + 60_000);
        let wait = Duration::from_millis((next - now).clamp(5, 60_000) as u64);
        let mut batch = Vec::new();
        let mut shutdown = None;
        match rx.recv_timeout(wait) {
            Ok(Msg::Note(n)) => batch.push(n),
            Ok(Msg::Shutdown(ack)) => shutdown = Some(ack),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
        for m in rx.try_iter() {
            match m {
                Msg::Note(n) => batch.push(n),
                Msg::Shutdown(ack) => shutdown = Some(ack),
            }
        }
        if !batch.is_empty() {
            sink.enqueue(&batch);
        }
        // (said per sink, and counted where the mail keeps its dropped events: the global
        // count was said once per sink, naming none, and never reached the mail, a review
        // found)
        let n = lost.swap(0, Ordering::Relaxed);
        if n > 0 {
            warn!("{name}: {n} events lost: this notifier was behind (its queue of {CHANNEL} was full)");
            sink.lost(n);
        }
        if let Some(ack) = shutdown {
            // what was in the channel is queued (the mail's on disk); nothing more is sent
            sink.keep_in_place(true);
            let _ = ack.send(());
            return;
        }
        sink.keep_in_place(false);
        sink.tick(now_ms(), &host);
        let n = sink.in_memory();
        if n >= in_memory {
            STATS
                .webhook_queue
                .fetch_add((n - in_memory) as u64, Ordering::Relaxed);
        } else {
            STATS
                .webhook_queue
                .fetch_sub((in_memory - n) as u64, Ordering::Relaxed);
        }
        in_memory = n;
    }
}

/// Warns when a secret file can be read by others than its owner.
fn check_secret_file(p: &Path) {
    use std::os::unix::fs::MetadataExt;
    if let Ok(m) = std::fs::metadata(p) {
        if m.mode() & 0o077 != 0 {
            warn!(
                "notify: {} holds a secret but others may read it (mode {:04o}); chmod 600 it",
                p.display(),
                m.mode() & 0o7777
            );
        }
    }
}

/// Logs a notifier's start (what it sends where, without secrets).
pub fn describe(cfg: &NotifyConfig) {
    for p in cfg
        .mail
        .iter()
        .flat_map(|m| &m.secret_files)
        .chain(cfg.webhooks.iter().flat_map(|w| &w.secret_files))
    {
        check_secret_file(p);
    }
    if let Some(m) = &cfg.mail {
        info!(
            "notify: mail to {} recipient(s) through {} every {} ({})",
            m.to.len(),
            m.url,
            duration::format(m.interval),
            m.events
                .iter()
                .map(|e| e.name())
                .collect::<Vec<_>>()
                .join(",")
        );
    }
    for w in &cfg.webhooks {
        let format = match w.format {
            crate::config::WebhookFormat::Slack => "slack",
            crate::config::WebhookFormat::Discord => "discord",
            crate::config::WebhookFormat::Matrix => "matrix",
            crate::config::WebhookFormat::Ntfy => "ntfy",
            crate::config::WebhookFormat::Json => "json",
        };
        info!(
            "notify: webhook {} ({format}, {})",
            w.label,
            w.events
                .iter()
                .map(|e| e.name())
                .collect::<Vec<_>>()
                .join(",")
        );
    }
}

/// Starts the notifier of the daemon; an error is logged, and the daemon runs without it.
pub fn start_logged(cfg: &NotifyConfig, state_dir: &Path) -> Option<Notifier> {
    match Notifier::start(cfg, state_dir) {
        Ok(n) => {
            if n.is_some() {
                describe(cfg);
            }
            n
        }
        Err(e) => {
            error!("notify: cannot start, no notification will be sent: {e:#}");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_line_neutralises_control_characters_and_cuts() {
        assert_eq!(
            escape_line(b"user x\r\nBcc: v@example.org\x1b[31m", 100),
            "user x\\x0d\\x0aBcc: v@example.org\\x1b[31m"
        );
        assert_eq!(escape_line("a\u{2028}b".as_bytes(), 100), "a\\u{2028}b");
        assert_eq!(
            escape_line(
                "user \u{202e}nimda\u{202c} z\u{200b}w \u{2067}x".as_bytes(),
                100
            ),
            "user \\u{202e}nimda\\u{202c} z\\u{200b}w \\u{2067}x"
        );
        assert_eq!(
            escape_line("Zugang für Büro".as_bytes(), 100),
            "Zugang für Büro"
        );
        assert_eq!(
            escape_line("a\u{3164}b\u{34f}c\u{fe0f}d\u{1d173}".as_bytes(), 100),
            "a\\u{3164}b\\u{034f}c\\u{fe0f}d\\u{1d173}"
        );
        // a backslash typed by the client is told from an escape, and escaping again
        // changes nothing
        let once = escape_line(b"literal\\x0d\r", 100);
        assert_eq!(once, "literal\\\\x0d\\x0d");
        assert_eq!(escape_again(once.as_bytes(), 100), once);
        let long = escape_line(&[b'a'; 2000], EVIDENCE_LINE_BYTES);
        assert!(long.len() <= EVIDENCE_LINE_BYTES + 4 && long.ends_with('…'));
    }

    #[test]
    fn evidence_keeps_the_last_lines_within_the_window_and_is_bounded() {
        let a: IpAddr = "203.0.113.5".parse().unwrap();
        let mut e = Evidence::default();
        for i in 0..8 {
            e.record("sshd", a, format!("line {i}").as_bytes(), 1000 + i, 600_000);
        }
        // another jail's lines are its own
        e.record("web", a, b"other", 1000, 600_000);
        let got = e.take("sshd", Cidr::host(a), 2000, 600_000);
        assert_eq!(got, ["line 3", "line 4", "line 5", "line 6", "line 7"]);
        assert!(
            e.take("sshd", Cidr::host(a), 2000, 600_000).is_empty(),
            "taken once"
        );
        // lines older than findtime did not count
        e.record("sshd", a, b"old", 0, 1000);
        e.record("sshd", a, b"new", 5000, 1000);
        assert_eq!(e.take("sshd", Cidr::host(a), 5500, 1000), ["new"]);
        // a prefix ban takes the lines of every address inside it, the last ones by time
        for (i, h) in ["2001:db8:5:6::1", "2001:db8:5:6::2", "2001:db8:5:7::1"]
            .iter()
            .enumerate()
        {
            for k in 0..3 {
                let t = 1000 + 10 * k + i as i64;
                e.record(
                    "sshd",
                    h.parse().unwrap(),
                    format!("{h} {k}").as_bytes(),
                    t,
                    600_000,
                );
            }
        }
        let p = Cidr::parse("2001:db8:5:6::/64").unwrap();
        assert_eq!(
            e.take("sshd", p, 2000, 600_000),
            [
                "2001:db8:5:6::2 0",
                "2001:db8:5:6::1 1",
                "2001:db8:5:6::2 1",
                "2001:db8:5:6::1 2",
                "2001:db8:5:6::2 2"
            ]
        );
        assert!(e.take("sshd", p, 2000, 600_000).is_empty());
        assert_eq!(
            e.take(
                "sshd",
                Cidr::parse("2001:db8:5:7::1").unwrap(),
                2000,
                600_000
            )
            .len(),
            3
        );
        // bounded in offenders
        for i in 0..(EVIDENCE_OFFENDERS as u32 + 50) {
            let ip = IpAddr::from(std::net::Ipv4Addr::from(0xc000_0200 + i));
            e.record("sshd", ip, b"x", 10_000 + i as i64, 600_000);
        }
        assert!(e.len() <= EVIDENCE_OFFENDERS, "{}", e.len());
    }

    fn load(text: &str) -> anyhow::Result<crate::config::Config> {
        crate::config::Config::from_texts(&[("test.toml".into(), text.into())], vec![])
    }

    fn err(text: &str) -> String {
        format!("{:#}", load(text).unwrap_err())
    }

    const MAIL: &str =
        "[notify.mail]\nfrom = \"p@host.example.org\"\nto = [\"admin@example.org\"]\n";

    #[test]
    fn config_reads_mail_and_webhooks() {
        let dir = tempfile::tempdir().unwrap();
        let pass = dir.path().join("smtp.pass");
        std::fs::write(&pass, "hunter2\n").unwrap();
        let hdr = dir.path().join("hook.headers");
        std::fs::write(&hdr, "# c\nAuthorization: Bearer t\n").unwrap();
        let c = load(&format!(
            "{MAIL}smtp = \"smtps://mail.example.org\"\ninterval = \"5m\"\nuser = \"u\"\n\
             password_file = {pass:?}\n\
             [[notify.webhook]]\nurl = \"https://hooks.example.org/T0/B0\"\nformat = \"slack\"\n\
             [[notify.webhook]]\nurl = \"https://ntfy.example.org/alerts\"\nformat = \"ntfy\"\n\
             events = [\"ban\", \"unban\", \"stop\"]\nheader_file = {hdr:?}\n"
        ))
        .unwrap();
        let m = c.notify.mail.unwrap();
        assert_eq!(
            (m.tls, m.host.as_str(), m.port),
            (crate::config::SmtpTls::Wrapper, "mail.example.org", 465)
        );
        assert_eq!(m.interval, 300_000);
        assert_eq!(m.events, [EventKind::Ban, EventKind::Flood]);
        let (u, p) = m.credentials.unwrap();
        assert_eq!((u.as_str(), p.0.as_str()), ("u", "hunter2"));
        assert!(!format!("{p:?}").contains("hunter2"));
        assert_eq!(c.notify.webhooks.len(), 2);
        let w = &c.notify.webhooks[1];
        assert_eq!(
            w.events,
            [EventKind::Ban, EventKind::Unban, EventKind::Stop]
        );
        assert_eq!(w.headers[0].0, "Authorization");
        assert_eq!(w.label, "#2 https://ntfy.example.org");
        // two hooks to one host are told apart in the log by their number
        let c = load(
            "[[notify.webhook]]\nurl = \"https://hooks.example.org/T0/B0\"\nformat = \"slack\"\n\
             [[notify.webhook]]\nurl = \"https://hooks.example.org/T1/B1\"\nformat = \"slack\"\n",
        )
        .unwrap();
        let labels: Vec<&str> = c.notify.webhooks.iter().map(|w| w.label.as_str()).collect();
        assert_eq!(
            labels,
            [
                "#1 https://hooks.example.org",
                "#2 https://hooks.example.org"
            ]
        );
        for (url, tls, port) in [
            (
                "smtp://127.0.0.1:2525",
                crate::config::SmtpTls::Opportunistic,
                2525,
            ),
            (
                "smtp+starttls://[2001:db8::1]",
                crate::config::SmtpTls::Required,
                587,
            ),
        ] {
            let c = load(&format!("{MAIL}smtp = {url:?}\n")).unwrap();
            let m = c.notify.mail.unwrap();
            assert_eq!((m.tls, m.port), (tls, port));
        }
    }

    #[test]
    fn config_errors_name_the_key_and_what_is_valid() {
        let e = err(&format!("{MAIL}smtp = \"http://mail.example.org\"\n"));
        assert!(
            e.contains("`notify.mail.smtp`") && e.contains("smtps://"),
            "{e}"
        );
        let e = err(&format!("{MAIL}smtp = \"smtp://u:pw@mail.example.org\"\n"));
        assert!(e.contains("password_file"), "{e}");
        let e = err(&format!(
            "{MAIL}smtp = \"smtp://m.example.org\"\nuser = \"u\"\npassword_file = \"/nonexistent/pass\"\n"
        ));
        assert!(
            e.contains("test.toml:6: `notify.mail.password_file`: cannot read /nonexistent/pass"),
            "{e}"
        );
        let e = err(&format!(
            "{MAIL}smtp = \"smtp://m.example.org\"\nuser = \"u\"\n"
        ));
        assert!(e.contains("needs `password_file`"), "{e}");
        let e = err(&format!(
            "{MAIL}smtp = \"smtp://m.example.org\"\nevents = [\"ban\", \"bans\"]\n"
        ));
        assert!(
            e.contains("`notify.mail.events`: \"bans\" is not an event; use some of: ban, unban"),
            "{e}"
        );
        let e = err(
            "[notify.mail]\nsmtp = \"smtp://m.example.org\"\nfrom = \"not an address\"\nto = []\n",
        );
        assert!(e.contains("`notify.mail.from`"), "{e}");
        // a bare local user (review 27): the way out is named
        let e = err("[notify.mail]\nsmtp = \"smtp://127.0.0.1\"\nfrom = \"p@h.example.org\"\nto = [\"root\"]\n");
        assert!(
            e.contains("`notify.mail.to`") && e.contains("\"root@localhost\""),
            "{e}"
        );
        let e = err("[[notify.webhook]]\nurl = \"https://h.example.org/x\"\nformat = \"teams\"\n");
        assert!(e.contains("test.toml:3: `notify.webhook.format`: \"teams\" is not a format; use one of: slack, discord, matrix, ntfy, json"), "{e}");
        let e = err("[[notify.webhook]]\nurl = \"ftp://h.example.org/secret\"\n");
        assert!(
            e.contains("`notify.webhook.url`") && e.contains("https://"),
            "{e}"
        );
        assert!(!e.contains("secret"), "the URL may hold a secret: {e}");
        let e = err("[[notify.webhook]]\nurl = \"https://ntfy.example.org/\"\nformat = \"ntfy\"\n");
        assert!(e.contains("topic"), "{e}");
        let e = err("[[notify.webhook]]\nurl = \"https://h.example.org/x\"\nevents = [\"flod\"]\n");
        assert!(e.contains("\"flod\" is not an event"), "{e}");
        let e = err("[[notify.webhook]]\nurl = \"https://h.example.org/x\"\nheader_file = \"/nonexistent/h\"\n");
        assert!(
            e.contains("`notify.webhook.header_file`: cannot read /nonexistent/h"),
            "{e}"
        );
        let dir = tempfile::tempdir().unwrap();
        let hdr = dir.path().join("h");
        std::fs::write(&hdr, "Authorization: ok\nX-Evil: a\rb\n").unwrap();
        let e = err(&format!(
            "[[notify.webhook]]\nurl = \"https://h.example.org/x\"\nheader_file = {hdr:?}\n"
        ));
        assert!(e.contains("line 2 is not `Name: value`"), "{e}");
        let e = err("[notify]\nmial = 1\n");
        assert!(e.contains("mial"), "{e}");
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        assert_eq!(backoff(1), 2_000);
        assert_eq!(backoff(2), 4_000);
        assert_eq!(backoff(3), 8_000);
        assert_eq!(backoff(40), MAX_BACKOFF);
    }
}

//! `[[notify.webhook]]`: one POST per event, its JSON body in a chat service's format
//! (ureq with rustls); a chat format posts at most [`CHAT_PER_MINUTE`] a minute and sums
//! up the rest. Each hook has a bounded queue that drops the oldest event when
//! full (counted, and said in the log); a failed POST is retried after a growing delay,
//! and given up after [`MAX_TRIES`].
//!
//! Only the daemon's own text (the event line: address, jail, counts) goes into the chat
//! formats, with the markup characters of each escaped; evidence lines (attacker text)
//! go only into the `json` format, as JSON strings.

use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{bail, Result};
use portcullis_core::decision::Millis;
use serde_json::{json, Value};
use tracing::{info, warn};

use super::queue::Bounded;
use super::{backoff, Note, STATS};
use crate::config::{WebhookConfig, WebhookFormat};

/// Tries of one event before it is given up.
pub const MAX_TRIES: u32 = 8;

/// Messages a chat hook (slack, discord, matrix, ntfy) posts in a minute; past that, the
/// minute's other events go in one summary message at its end (a flood of 20,000 bans
/// posted about 2,000 messages a minute to each chat, a review found). The `json` format
/// posts every event (a program reads it).
pub const CHAT_PER_MINUTE: u32 = 20;

/// The minute of a chat hook's rate, and the events it summed up.
#[derive(Debug, Default)]
struct Minute {
    start: Millis,
    posted: u32,
    /// Events past the rate: how many of each kind, the first's and the last's text.
    kinds: Vec<(String, u64)>,
    first: Option<String>,
    last: Option<String>,
    /// Failed tries of the summary (its own: not the events' [`MAX_TRIES`]).
    failures: u32,
}

impl Minute {
    fn held(&self) -> u64 {
        self.kinds.iter().map(|(_, n)| n).sum()
    }

    fn hold(&mut self, n: Note) {
        match self.kinds.iter_mut().find(|(k, _)| *k == n.event) {
            Some((_, c)) => *c += 1,
            None => self.kinds.push((n.event, 1)),
        }
        if self.first.is_none() {
            self.first = Some(n.text);
        } else {
            self.last = Some(n.text);
        }
    }

    /// The summary note of the events held.
    fn summary(&self) -> Note {
        let kinds: Vec<String> = self
            .kinds
            .iter()
            .map(|(k, n)| format!("{n} {k}{}", if *n == 1 { "" } else { "s" }))
            .collect();
        let mut text = format!(
            "{} more event(s) since {} ({}), past {CHAT_PER_MINUTE} messages a minute",
            self.held(),
            portcullis_core::time::rfc3339(self.start),
            kinds.join(", ")
        );
        if let Some(f) = &self.first {
            text += &format!("; first: {f}");
        }
        if let Some(l) = &self.last {
            text += &format!("; last: {l}");
        }
        Note::plain("summary", self.start, text)
    }
}

/// One webhook.
pub struct Hook {
    cfg: WebhookConfig,
    agent: ureq::Agent,
    queue: Bounded<Note>,
    /// Failed tries of the event at the front.
    failures: u32,
    retry_at: Millis,
    /// Drops already reported.
    dropped_reported: u64,
    /// A chat hook's rate ([`CHAT_PER_MINUTE`]).
    minute: Minute,
}

impl Hook {
    /// The hook for `cfg`.
    pub fn new(cfg: WebhookConfig) -> Hook {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_millis(cfg.timeout as u64)))
            .http_status_as_error(true)
            .max_redirects(0)
            .user_agent(concat!("portcullis/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        Hook {
            queue: Bounded::new(cfg.queue),
            cfg,
            agent,
            failures: 0,
            retry_at: 0,
            dropped_reported: 0,
            minute: Minute::default(),
        }
    }
}

impl super::Sink for Hook {
    fn in_memory(&self) -> usize {
        self.queue.len()
    }

    /// When the next POST is due (`None`: nothing waits).
    fn next_due(&self) -> Option<Millis> {
        match self.queue.front() {
            Some(_) => Some(self.retry_at),
            // (the summary of the events past the rate, at the minute's end)
            None if self.minute.held() > 0 => Some((self.minute.start + 60_000).max(self.retry_at)),
            None => None,
        }
    }

    /// Queues the notes this hook asks for; a full queue drops its oldest.
    fn enqueue(&mut self, notes: &[Note]) {
        for n in notes {
            if self.cfg.events.iter().any(|k| k.name() == n.event) && self.queue.push(n.clone()) {
                STATS.webhook_dropped.fetch_add(1, Ordering::Relaxed);
                if self.queue.front().is_some() {
                    // the front changed: its tries start again
                    self.failures = 0;
                }
            }
        }
        let d = self.queue.dropped();
        if d > self.dropped_reported {
            warn!(
                "notify: webhook {} queue full ({} events): dropped {} oldest event(s) so far",
                self.cfg.label, self.cfg.queue, d
            );
            self.dropped_reported = d;
        }
    }

    /// Posts what is due, until a failure or an empty queue.
    fn tick(&mut self, now: Millis, host: &str) {
        let chat = !matches!(self.cfg.format, WebhookFormat::Json);
        if chat && now >= self.minute.start + 60_000 {
            // a new minute: first the summary of the last one's events past the rate
            if self.minute.held() > 0 {
                if now < self.retry_at {
                    return;
                }
                let n = self.minute.summary();
                if let Err(e) = self.post(&n, host) {
                    let tries = self.minute.failures + 1;
                    self.minute.failures = tries;
                    STATS.webhook_failures.fetch_add(1, Ordering::Relaxed);
                    if tries < MAX_TRIES {
                        self.retry_at = now + backoff(tries);
                        warn!(
                            "notify: webhook {} summary failed (try {tries}): {e:#}",
                            self.cfg.label
                        );
                        return;
                    }
                    warn!(
                        "notify: webhook {} summary failed {tries} times, given up: {e:#}",
                        self.cfg.label
                    );
                }
                self.retry_at = 0;
            }
            self.minute = Minute {
                start: now,
                ..Minute::default()
            };
        }
        // bounded: at most the queue's length in one tick
        for _ in 0..self.queue.len() {
            if now < self.retry_at {
                return;
            }
            if chat && self.minute.posted >= CHAT_PER_MINUTE {
                // past the rate: summed up at the minute's end
                if let Some(n) = self.queue.pop() {
                    self.minute.hold(n);
                }
                continue;
            }
            let Some(n) = self.queue.front() else { return };
            match self.post(n, host) {
                Ok(()) => {
                    if self.failures > 0 {
                        info!(
                            "notify: webhook {} delivered after {} failed tr{}",
                            self.cfg.label,
                            self.failures,
                            if self.failures == 1 { "y" } else { "ies" }
                        );
                    }
                    self.queue.pop();
                    self.failures = 0;
                    self.retry_at = 0;
                    self.minute.posted += 1;
                }
                Err(e) => {
                    self.failures += 1;
                    STATS.webhook_failures.fetch_add(1, Ordering::Relaxed);
                    if self.failures >= MAX_TRIES {
                        warn!(
                            "notify: webhook {} failed {} times, event given up: {e:#}",
                            self.cfg.label, self.failures
                        );
                        self.queue.pop();
                        self.failures = 0;
                        self.retry_at = now + backoff(1);
                    } else {
                        let delay = backoff(self.failures);
                        self.retry_at = now + delay;
                        warn!(
                            "notify: webhook {} failed (try {}), next try in {}: {e:#}",
                            self.cfg.label,
                            self.failures,
                            portcullis_core::duration::format(delay)
                        );
                    }
                    return;
                }
            }
        }
    }
}

impl Hook {
    /// Posts `n` now, waiting for the answer (also `check-config --notify-test`).
    pub fn post(&self, n: &Note, host: &str) -> Result<()> {
        let (url, body) = request(&self.cfg, n, host);
        let mut req = self
            .agent
            .post(&url)
            .header("Content-Type", "application/json");
        for (k, v) in &self.cfg.headers {
            req = req.header(k.as_str(), v.0.as_str());
        }
        match req.send(serde_json::to_vec(&body)?.as_slice()) {
            Ok(_) => Ok(()),
            // the error text of ureq names the URL, which may hold a secret: only the kind
            Err(ureq::Error::StatusCode(c)) => bail!("HTTP status {c}"),
            Err(ureq::Error::Timeout(t)) => bail!("timeout ({t})"),
            Err(ureq::Error::Io(e)) => bail!("{}", e.kind()),
            Err(e) => bail!("{}", redact(&e.to_string(), &self.cfg.url.0)),
        }
    }
}

fn redact(text: &str, url: &str) -> String {
    text.replace(url, "<url>")
}

/// The text of a note for chat formats: the daemon's own line, prefixed with the host.
fn line(n: &Note, host: &str) -> String {
    format!(
        "portcullis@{host}: {}",
        super::escape_again(n.text.as_bytes(), 1000)
    )
}

/// Slack mrkdwn control characters.
fn slack_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Discord markdown: every markup character backslashed.
fn discord_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if "\\*_~`|>#[]()@<".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The URL to POST to and the body of `n`.
pub fn request(cfg: &WebhookConfig, n: &Note, host: &str) -> (String, Value) {
    let url = cfg.url.0.clone();
    match cfg.format {
        WebhookFormat::Slack => (url, json!({ "text": slack_escape(&line(n, host)) })),
        WebhookFormat::Discord => (
            url,
            json!({
                "content": discord_escape(&line(n, host)),
                "allowed_mentions": { "parse": [] },
            }),
        ),
        WebhookFormat::Matrix => (url, json!({ "msgtype": "m.text", "body": line(n, host) })),
        WebhookFormat::Ntfy => {
            // ntfy's JSON publishing: POST to the server root, the topic in the body
            let trimmed = url.trim_end_matches('/');
            let (base, topic) = trimmed.rsplit_once('/').unwrap_or((trimmed, ""));
            let tags = match n.event.as_str() {
                "ban" | "flood" => vec!["no_entry"],
                _ => vec![],
            };
            (
                format!("{base}/"),
                json!({
                    "topic": topic,
                    "title": format!("portcullis@{host}: {}", n.event),
                    "message": super::escape_again(n.text.as_bytes(), 1000),
                    "tags": tags,
                }),
            )
        }
        WebhookFormat::Json => {
            let mut v = serde_json::to_value(n).unwrap_or(Value::Null);
            if let Value::Object(m) = &mut v {
                m.insert("host".into(), Value::String(host.to_string()));
            }
            (url, v)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A chat hook posts [`CHAT_PER_MINUTE`] events a minute and one summary of the rest
    /// at the minute's end; a `json` hook posts every event.
    #[test]
    fn a_chat_hook_posts_a_minute_s_rate_then_a_summary() {
        use super::super::Sink;
        use std::io::{BufRead, BufReader, Read, Write};
        let server = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = server.local_addr().unwrap().port();
        let bodies = std::sync::Arc::new(std::sync::Mutex::new(Vec::<(String, String)>::new()));
        let got = bodies.clone();
        std::thread::spawn(move || {
            for c in server.incoming() {
                let Ok(mut c) = c else { return };
                let mut r = BufReader::new(c.try_clone().unwrap());
                let mut first = String::new();
                let _ = r.read_line(&mut first);
                let mut len = 0;
                loop {
                    let mut l = String::new();
                    if r.read_line(&mut l).unwrap_or(0) == 0 || l == "\r\n" {
                        break;
                    }
                    if let Some(v) = l.to_ascii_lowercase().strip_prefix("content-length:") {
                        len = v.trim().parse().unwrap_or(0);
                    }
                }
                let mut body = vec![0; len];
                let _ = r.read_exact(&mut body);
                let path = first.split(' ').nth(1).unwrap_or("").to_string();
                got.lock()
                    .unwrap()
                    .push((path, String::from_utf8_lossy(&body).into_owned()));
                let _ = c.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                );
            }
        });
        let hook = |format: WebhookFormat, path: &str| {
            Hook::new(WebhookConfig {
                url: crate::config::Secret(format!("http://127.0.0.1:{port}/{path}")),
                label: path.into(),
                format,
                events: vec![super::super::EventKind::Ban],
                headers: vec![],
                timeout: 5000,
                queue: 1000,
                secret_files: vec![],
            })
        };
        let notes: Vec<Note> = (0..50)
            .map(|i| {
                Note::plain(
                    "ban",
                    0,
                    format!("ban 2001:db8:{i:x}::/64 jail=sshd failures=5 for=1h"),
                )
            })
            .collect();
        let t0 = 1_795_000_000_000;
        for (format, path) in [
            (WebhookFormat::Slack, "slack"),
            (WebhookFormat::Json, "json"),
        ] {
            let mut h = hook(format, path);
            h.enqueue(&notes);
            h.tick(t0, "gw");
            // (nothing waits in the queue; the summary is due at the minute's end)
            assert!(h.queue.len() == 0, "{path}");
            h.tick(t0 + 60_000, "gw");
        }
        let b = bodies.lock().unwrap();
        let slack: Vec<&String> = b
            .iter()
            .filter(|(p, _)| p == "/slack")
            .map(|(_, b)| b)
            .collect();
        let json = b.iter().filter(|(p, _)| p == "/json").count();
        assert_eq!(json, 50);
        assert_eq!(slack.len(), CHAT_PER_MINUTE as usize + 1, "{slack:?}");
        let last = slack.last().unwrap();
        assert!(
            last.contains("30 more event(s) since")
                && last.contains("30 bans")
                && last.contains("first: ban 2001:db8:14::/64")
                && last.contains("last: ban 2001:db8:31::/64"),
            "{last}"
        );
    }

    #[test]
    fn chat_formats_escape_their_markup() {
        assert_eq!(slack_escape("<!channel> a&b"), "&lt;!channel&gt; a&amp;b");
        assert_eq!(discord_escape("@everyone *x*"), "\\@everyone \\*x\\*");
    }
}

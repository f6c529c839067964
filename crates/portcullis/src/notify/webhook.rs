//! `[[notify.webhook]]`: one POST per event, its JSON body in a chat service's format
//! (ureq with rustls). Each hook has a bounded queue that drops the oldest event when
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
        }
    }
}

impl super::Sink for Hook {
    fn in_memory(&self) -> usize {
        self.queue.len()
    }

    /// When the next POST is due (`None`: nothing waits).
    fn next_due(&self) -> Option<Millis> {
        self.queue.front().map(|_| self.retry_at)
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
        // bounded: at most the queue's length in one tick
        for _ in 0..self.queue.len() {
            if now < self.retry_at {
                return;
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
        super::escape_line(n.text.as_bytes(), 1000)
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
                    "message": super::escape_line(n.text.as_bytes(), 1000),
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

    #[test]
    fn chat_formats_escape_their_markup() {
        assert_eq!(slack_escape("<!channel> a&b"), "&lt;!channel&gt; a&amp;b");
        assert_eq!(discord_escape("@everyone *x*"), "\\@everyone \\*x\\*");
    }
}

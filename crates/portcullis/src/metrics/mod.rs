//! `[metrics]`: Prometheus metrics of the running daemon, in the Prometheus text format on
//! `GET /metrics` (issue 14). The names are an interface (dashboards and alerts use them):
//!
//! | name | type | labels |
//! | --- | --- | --- |
//! | `portcullis_lines_total` | counter | `source` (a file path or `journal:…`) |
//! | `portcullis_failures_total` | counter | `jail`, `rule` (the rule's `id`) |
//! | `portcullis_bans_total` | counter | `jail`, `reason` (`failures`, `increment`, `subnet`, `manual`, `deny`) |
//! | `portcullis_unbans_total` | counter | `jail` |
//! | `portcullis_bans_active` | gauge | `jail` |
//! | `portcullis_tracked_addresses` | gauge | `jail` |
//! | `portcullis_evictions_total` | counter | `jail` |
//! | `portcullis_firewall_seconds` | histogram | (one firewall batch) |
//! | `portcullis_notify_queue` | gauge | `kind` (`mail`, `webhook`) |
//! | `portcullis_notify_failures_total` | counter | `kind` |
//! | `portcullis_fleet_*` | | with `[fleet]`: see [`fleet`] |
//!
//! Nothing here may slow a ban or the line loop: the engine counts lines and failures in
//! the batch it handles and adds them to the shared counters once per batch; bans and
//! unbans come from the daemon's events ([`crate::events::subscribe`]); the per-jail
//! gauges are a snapshot the engine refreshes once per loop turn (a lock and three numbers
//! per jail); the notifier's counters are read at scrape time. The HTTP side runs on its
//! own thread ([`http`]).

pub mod fleet;
pub mod http;

use std::fmt;
use std::net::{SocketAddr, TcpListener};
use std::ops::Range;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use anyhow::{Context, Result};
use portcullis_core::decision::Failure;
use portcullis_core::jail::Jail;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use serde::Deserialize;
use toml::Spanned;
use tracing::{error, info};

use crate::events::{self, Event};
use crate::firewall::{Firewall, FwOp};
use crate::sources::batch::Batch;

/// Where the metrics are served when `[metrics]` names no `listen`: loopback only.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9617";

/// Upper bounds (seconds) of the firewall histogram: one nft or ipset call takes about a
/// millisecond; seconds mean a firewall in trouble.
const FIREWALL_BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

/// `[metrics]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMetrics {
    /// Address and port to serve on (default [`DEFAULT_LISTEN`]).
    listen: Option<Spanned<String>>,
}

/// `[metrics]`, checked. Read at start (a reload does not move the listener).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsConfig {
    /// Address and port of the HTTP listener.
    pub listen: SocketAddr,
}

impl RawMetrics {
    /// Checks the table; `err` places an error at its line.
    pub fn validate(
        self,
        err: &dyn Fn(Range<usize>, &str, String) -> anyhow::Error,
    ) -> Result<MetricsConfig> {
        let listen = match self.listen {
            None => DEFAULT_LISTEN.parse().expect("the default address parses"),
            Some(l) => parse_listen(l.get_ref()).map_err(|m| err(l.span(), "metrics.listen", m))?,
        };
        Ok(MetricsConfig { listen })
    }
}

/// An `address:port` to listen on: an IP address (IPv6 in brackets), no host name, a port
/// other than 0.
pub fn parse_listen(s: &str) -> std::result::Result<SocketAddr, String> {
    let a: SocketAddr = s.parse().map_err(|_| {
        format!(
            "{s:?} is not valid; use an address and a port such as \"127.0.0.1:9617\" or \
             \"[::1]:9617\" (no host names)"
        )
    })?;
    if a.port() == 0 {
        return Err(format!("{s:?}: the port must not be 0"));
    }
    Ok(a)
}

/// The configuration warning for `[metrics]`: a listener beyond loopback shows the jails
/// and their counts to anyone who can reach it.
pub fn warning(m: &MetricsConfig) -> Option<String> {
    (!m.listen.ip().is_loopback()).then(|| {
        format!(
            "[metrics] listen = \"{}\" is not a loopback address: anyone who can reach it reads \
             the jails and their counts; firewall the port or use 127.0.0.1",
            m.listen
        )
    })
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SourceLabels {
    source: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RuleLabels {
    jail: String,
    rule: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BanLabels {
    jail: String,
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct JailLabels {
    jail: String,
}

/// The counters fed by the daemon's events (on the engine thread: an increment each).
#[derive(Clone, Default)]
struct EventCounters {
    bans: Family<BanLabels, Counter>,
    unbans: Family<JailLabels, Counter>,
}

impl EventCounters {
    fn on_event(&self, e: &Event) {
        match e {
            Event::Ban { jail, reason, .. } => {
                // the ban policy's reason: failures, increment, subnet, deny or manual
                let reason = reason.as_str();
                self.bans
                    .get_or_create(&BanLabels {
                        jail: jail.clone(),
                        reason: reason.into(),
                    })
                    .inc();
            }
            Event::Unban { jail, .. } => {
                self.unbans
                    .get_or_create(&JailLabels { jail: jail.clone() })
                    .inc();
            }
            _ => {}
        }
    }
}

/// One jail's numbers as the engine saw them last.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct JailState {
    name: String,
    banned: u64,
    tracked: u64,
    evicted: u64,
}

type Snapshot = Arc<Mutex<Vec<JailState>>>;

/// The per-jail gauges and the eviction counter, from the engine's last snapshot; jails a
/// reload removed are gone from it.
#[derive(Debug)]
struct JailCollector(Snapshot);

/// The notifier's queues and failures ([`crate::notify::STATS`]), read at scrape time.
#[derive(Debug)]
struct NotifyCollector;

/// Writes one metric family whose samples carry one label.
fn family<'a>(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    ty: MetricType,
    label: &str,
    rows: impl Iterator<Item = (&'a str, u64)>,
) -> fmt::Result {
    let mut m = enc.encode_descriptor(name, help, None, ty)?;
    for (value, n) in rows {
        let labels = [(label, value)];
        let e = m.encode_family(&labels)?;
        if ty == MetricType::Counter {
            ConstCounter::new(n).encode(e)?;
        } else {
            ConstGauge::new(i64::try_from(n).unwrap_or(i64::MAX)).encode(e)?;
        }
    }
    Ok(())
}

impl Collector for JailCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> fmt::Result {
        let snap = self
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let rows = |f: fn(&JailState) -> u64| snap.iter().map(move |s| (s.name.as_str(), f(s)));
        family(
            &mut enc,
            "portcullis_bans_active",
            "Addresses banned now.",
            MetricType::Gauge,
            "jail",
            rows(|s| s.banned),
        )?;
        family(
            &mut enc,
            "portcullis_tracked_addresses",
            "Addresses with failures in the jail's window (bounded by max_tracked).",
            MetricType::Gauge,
            "jail",
            rows(|s| s.tracked),
        )?;
        family(
            &mut enc,
            "portcullis_evictions",
            "Addresses dropped from tracking at the max_tracked cap while they could still count (a flood from very many addresses).",
            MetricType::Counter,
            "jail",
            rows(|s| s.evicted),
        )
    }
}

impl Collector for NotifyCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> fmt::Result {
        let s = &crate::notify::STATS;
        let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
        family(
            &mut enc,
            "portcullis_notify_queue",
            "Notification events waiting to be sent.",
            MetricType::Gauge,
            "kind",
            [
                ("mail", load(&s.mail_queue)),
                ("webhook", load(&s.webhook_queue)),
            ]
            .into_iter(),
        )?;
        family(
            &mut enc,
            "portcullis_notify_failures",
            "Failed sends (each is retried with backoff).",
            MetricType::Counter,
            "kind",
            [
                ("mail", load(&s.mail_failures)),
                ("webhook", load(&s.webhook_failures)),
            ]
            .into_iter(),
        )
    }
}

/// Failures counted in one batch: (jail index, filter index, rule index, count). A few
/// distinct rules per batch: a list beats a map.
#[derive(Debug, Default)]
pub struct Tally(Vec<(usize, usize, usize, u64)>);

impl Tally {
    /// Counts a failure of jail `jail` (those of weight 0, seen but not counted towards a
    /// ban, are left out).
    pub fn failure(&mut self, jail: usize, f: &Failure) {
        if f.weight == 0 {
            return;
        }
        match self
            .0
            .iter_mut()
            .find(|t| t.0 == jail && t.1 == f.filter && t.2 == f.rule)
        {
            Some(t) => t.3 += 1,
            None => self.0.push((jail, f.filter, f.rule, 1)),
        }
    }
}

/// The engine's side of the metrics.
pub struct Metrics {
    lines: Family<SourceLabels, Counter>,
    failures: Family<RuleLabels, Counter>,
    firewall: Histogram,
    jails: Snapshot,
    events: EventCounters,
    fleet: fleet::Slot,
}

impl Metrics {
    /// New metrics, and the registry that renders them.
    fn new() -> (Metrics, Registry) {
        let m = Metrics {
            lines: Family::default(),
            failures: Family::default(),
            firewall: Histogram::new(FIREWALL_BUCKETS),
            jails: Snapshot::default(),
            events: EventCounters::default(),
            fleet: fleet::Slot::default(),
        };
        let mut r = Registry::default();
        r.register(
            "portcullis_lines",
            "Log lines read, per source",
            m.lines.clone(),
        );
        r.register(
            "portcullis_failures",
            "Failures counted towards a ban, per jail and rule",
            m.failures.clone(),
        );
        r.register(
            "portcullis_bans",
            "Bans made by this process, per jail and reason (failures or manual)",
            m.events.bans.clone(),
        );
        r.register(
            "portcullis_unbans",
            "Bans lifted (expired, manual, or covered by the ignore list), per jail",
            m.events.unbans.clone(),
        );
        r.register_collector(Box::new(JailCollector(m.jails.clone())));
        r.register(
            "portcullis_firewall_seconds",
            "Time of one batch of firewall changes",
            m.firewall.clone(),
        );
        r.register_collector(Box::new(NotifyCollector));
        r.register_collector(Box::new(fleet::FleetCollector(m.fleet.clone())));
        (m, r)
    }

    /// Counts the lines of a batch per source; the series of files the follower forgot (a
    /// wildcard's matches that are gone) go (a directory of short-lived logs grew them
    /// without bound, a review found).
    pub fn lines(&self, b: &Batch) {
        for source in &b.forgotten {
            self.lines.remove(&SourceLabels {
                source: source.clone(),
            });
        }
        let mut n = vec![0u64; b.sources.len()];
        for &(s, _) in &b.lines {
            if let Some(c) = n.get_mut(s as usize) {
                *c += 1;
            }
        }
        for (source, n) in b.sources.iter().zip(n) {
            if n > 0 {
                self.lines
                    .get_or_create(&SourceLabels {
                        source: source.clone(),
                    })
                    .inc_by(n);
            }
        }
    }

    /// Adds a batch's failures; `jails` are those the indices of `t` refer to.
    pub fn failures(&self, t: &Tally, jails: &[Jail]) {
        for &(ji, fi, ri, n) in &t.0 {
            let Some(j) = jails.get(ji) else { continue };
            let rule = j
                .match_set()
                .filters()
                .get(fi)
                .and_then(|f| f.rules().get(ri))
                .map_or_else(|| format!("#{ri}"), |r| r.id.clone());
            self.failures
                .get_or_create(&RuleLabels {
                    jail: j.name().to_string(),
                    rule,
                })
                .inc_by(n);
        }
    }

    /// Takes the jails' numbers for the gauges.
    pub fn jails(&self, jails: &[Jail]) {
        let mut s = self.jails.lock().unwrap_or_else(PoisonError::into_inner);
        if s.len() != jails.len() || s.iter().zip(jails).any(|(a, j)| a.name != j.name()) {
            // every jail's ban and unban series from 0, so that rate() sees the first one
            for j in jails {
                let jail = j.name().to_string();
                let _ = self.events.bans.get_or_create(&BanLabels {
                    jail: jail.clone(),
                    reason: "failures".into(),
                });
                let _ = self.events.unbans.get_or_create(&JailLabels { jail });
            }
            *s = jails
                .iter()
                .map(|j| JailState {
                    name: j.name().to_string(),
                    ..JailState::default()
                })
                .collect();
        }
        for (a, j) in s.iter_mut().zip(jails) {
            let st = j.tracker().stats();
            a.banned = st.banned as u64;
            a.tracked = st.tracked as u64;
            a.evicted = st.evicted;
        }
    }

    /// The fleet, once started: its counters are read at each scrape.
    pub fn set_fleet(&self, f: Arc<crate::fleet::Shared>) {
        let _ = self.fleet.set(f);
    }

    /// `fw`, its batches timed into `portcullis_firewall_seconds`.
    pub fn timed(&self, fw: Box<dyn Firewall>) -> Box<dyn Firewall> {
        Box::new(Timed {
            inner: fw,
            hist: self.firewall.clone(),
        })
    }
}

/// A firewall whose batches ([`Firewall::apply`], [`Firewall::restore`]) are timed. Every
/// method of the trait is passed on (a new one must be added here too).
struct Timed {
    inner: Box<dyn Firewall>,
    hist: Histogram,
}

impl Timed {
    fn time<T>(&mut self, f: impl FnOnce(&mut dyn Firewall) -> T) -> T {
        let t = Instant::now();
        let r = f(self.inner.as_mut());
        self.hist.observe(t.elapsed().as_secs_f64());
        r
    }
}

impl Firewall for Timed {
    fn setup(&mut self, jails: &[crate::firewall::JailRules]) -> Result<()> {
        self.inner.setup(jails)
    }
    fn apply(&mut self, ops: &[FwOp]) -> Result<()> {
        self.time(|f| f.apply(ops))
    }
    fn apply_each(&mut self, ops: &[FwOp]) -> Result<Vec<FwOp>> {
        self.time(|f| f.apply_each(ops))
    }
    #[cfg(test)]
    fn list(&mut self) -> Result<Vec<(String, std::net::IpAddr, Option<i64>)>> {
        self.inner.list()
    }
    fn teardown(&mut self) -> Result<()> {
        self.inner.teardown()
    }
    fn kernel_bans(&mut self) -> Result<Vec<(String, portcullis_core::ignore::Cidr, Option<i64>)>> {
        self.inner.kernel_bans()
    }
    fn restore(&mut self, ops: &[FwOp]) -> Result<()> {
        self.time(|f| f.restore(ops))
    }
    fn restore_expiring(&mut self, ops: &[FwOp]) -> Result<()> {
        self.time(|f| f.restore_expiring(ops))
    }
    fn intact(&mut self) -> Result<bool> {
        self.inner.intact()
    }
    fn expires_itself(&self) -> bool {
        self.inner.expires_itself()
    }
    fn set_ratelimits(&mut self, rl: &crate::firewall::ratelimit::RateLimits) -> Result<()> {
        self.inner.set_ratelimits(rl)
    }
    fn report(&mut self) -> Vec<String> {
        self.inner.report()
    }
}

/// The registry in the Prometheus text format (version 0.0.4).
fn render(r: &Registry) -> String {
    let mut s = String::new();
    if let Err(e) = prometheus_client::encoding::prometheus_text::encode(&mut s, r) {
        error!("metrics: cannot encode: {e}");
    }
    s
}

/// Starts the metrics: binds `cfg.listen`, subscribes to the daemon's events, and serves
/// `/metrics` from a thread of its own.
pub fn start(cfg: &MetricsConfig) -> Result<Metrics> {
    let listener = TcpListener::bind(cfg.listen)
        .with_context(|| format!("[metrics] cannot listen on {}", cfg.listen))?;
    let (m, registry) = Metrics::new();
    let ev = m.events.clone();
    events::subscribe(Box::new(move |e| ev.on_event(e)));
    std::thread::Builder::new()
        .name("metrics".into())
        .spawn(move || http::serve(listener, move || render(&registry)))
        .context("[metrics] cannot start its thread")?;
    info!("metrics on http://{}/metrics", cfg.listen);
    Ok(m)
}

/// [`start`] when `[metrics]` is configured; a failure is logged and the daemon runs
/// without metrics (protection first).
pub fn start_logged(cfg: Option<&MetricsConfig>) -> Option<Metrics> {
    match start(cfg?) {
        Ok(m) => Some(m),
        Err(e) => {
            error!("{e:#}; running without metrics");
            None
        }
    }
}

#[cfg(test)]
mod tests;

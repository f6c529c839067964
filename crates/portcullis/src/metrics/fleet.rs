//! The fleet's metrics (`[fleet]`, issue 15), read at scrape time from the fleet's own
//! counters ([`crate::fleet::Shared::status`]): nothing is added to the engine's path.
//!
//! | name | type | labels |
//! | --- | --- | --- |
//! | `portcullis_fleet_published_total` | counter | (entries sent to Redis) |
//! | `portcullis_fleet_lost_total` | counter | (entries dropped before the outbox: publisher behind, outbox unwritable) |
//! | `portcullis_fleet_received_total` | counter | (other nodes' signed entries read) |
//! | `portcullis_fleet_applied_total` | counter | (fleet bans applied) |
//! | `portcullis_fleet_lifted_total` | counter | (fleet bans lifted by their origin) |
//! | `portcullis_fleet_refused_total` | counter | `cause`: `ignore`, `cap`, `rate`, `distrust`, `wide` |
//! | `portcullis_fleet_dropped_total` | counter | `cause`: `unsigned`, `forged`, `malformed`, `expired`, `replayed` |
//! | `portcullis_fleet_reseeded_total` | counter | (own bans published again into an emptied Redis) |
//! | `portcullis_fleet_outbox` | gauge | (entries waiting for Redis) |
//! | `portcullis_fleet_bans_active` | gauge | (fleet bans held) |
//! | `portcullis_fleet_connected` | gauge | `link`: `publish`, `read` (1 connected, 0 not) |

use std::fmt;
use std::sync::{Arc, OnceLock};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;

use crate::fleet::{FleetStatus, Shared};

/// The fleet, once it has started (nothing is written before).
pub(super) type Slot = Arc<OnceLock<Arc<Shared>>>;

/// Writes the fleet's families.
pub(super) struct FleetCollector(pub(super) Slot);

impl fmt::Debug for FleetCollector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FleetCollector")
    }
}

/// (metric label value, `status` counter name)
const REFUSED: [(&str, &str); 5] = [
    ("ignore", "refused_ignored"),
    ("cap", "refused_cap"),
    ("rate", "refused_rate"),
    ("distrust", "dropped_distrusted"),
    ("wide", "refused_wide"),
];
const DROPPED: [(&str, &str); 6] = [
    ("unsigned", "dropped_unsigned"),
    ("forged", "dropped_forged"),
    ("malformed", "dropped_malformed"),
    ("future", "dropped_future"),
    ("expired", "dropped_expired"),
    ("replayed", "dropped_replayed"),
];

fn one(enc: &mut DescriptorEncoder, name: &str, help: &str, ty: MetricType, n: u64) -> fmt::Result {
    let m = enc.encode_descriptor(name, help, None, ty)?;
    if ty == MetricType::Counter {
        ConstCounter::new(n).encode(m)
    } else {
        ConstGauge::new(i64::try_from(n).unwrap_or(i64::MAX)).encode(m)
    }
}

/// The families of one status report.
pub(super) fn encode(s: &FleetStatus, enc: &mut DescriptorEncoder) -> fmt::Result {
    let c = |k: &str| s.counters.get(k).copied().unwrap_or(0);
    for (name, key, help) in [
        (
            "portcullis_fleet_published",
            "published",
            "Fleet entries (bans, unbans) this node sent to Redis.",
        ),
        (
            "portcullis_fleet_lost",
            "lost",
            "Fleet entries dropped before the outbox (publisher behind, outbox unwritable).",
        ),
        (
            "portcullis_fleet_received",
            "received",
            "Signed fleet entries of other nodes read from Redis.",
        ),
        (
            "portcullis_fleet_applied",
            "applied",
            "Fleet bans applied on this node.",
        ),
        (
            "portcullis_fleet_lifted",
            "lifted",
            "Fleet bans lifted by their origin's unban.",
        ),
        (
            "portcullis_fleet_reseeded",
            "reseeded",
            "Own active bans published again into a Redis that came back empty.",
        ),
    ] {
        one(enc, name, help, MetricType::Counter, c(key))?;
    }
    for (name, help, rows) in [
        (
            "portcullis_fleet_refused",
            "Fleet entries refused by cause: ignore (local ignore, own address or loopback), cap (max_bans), rate (accept_rate), distrust, wide (min_prefix_v4/v6).",
            &REFUSED[..],
        ),
        (
            "portcullis_fleet_dropped",
            "Fleet entries dropped by cause: unsigned, forged, malformed, future (stamped more than max_skew ahead), expired, replayed.",
            &DROPPED[..],
        ),
    ] {
        let mut m = enc.encode_descriptor(name, help, None, MetricType::Counter)?;
        for (cause, key) in rows {
            let labels = [("cause", *cause)];
            ConstCounter::new(c(key)).encode(m.encode_family(&labels)?)?;
        }
    }
    one(
        enc,
        "portcullis_fleet_outbox",
        "Fleet entries waiting in the outbox for Redis.",
        MetricType::Gauge,
        u64::try_from(s.outbox).unwrap_or(0),
    )?;
    one(
        enc,
        "portcullis_fleet_bans_active",
        "Fleet bans (other nodes' bans) held now.",
        MetricType::Gauge,
        s.fleet_bans as u64,
    )?;
    let mut m = enc.encode_descriptor(
        "portcullis_fleet_connected",
        "1 when the fleet's connection to Redis is up: publish (the publisher), read (the reader; 0 with accept = false).",
        None,
        MetricType::Gauge,
    )?;
    for (link, up) in [("publish", s.connected), ("read", s.reading)] {
        let labels = [("link", link)];
        ConstGauge::new(i64::from(up)).encode(m.encode_family(&labels)?)?;
    }
    Ok(())
}

impl Collector for FleetCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> fmt::Result {
        match self.0.get() {
            Some(f) => encode(&f.status(), &mut enc),
            None => Ok(()),
        }
    }
}

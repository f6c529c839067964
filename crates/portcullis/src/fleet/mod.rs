//! Fleet: bans shared through Redis (`[fleet]`, issue 15).
//!
//! - **Publish.** A subscriber to the daemon's events ([`crate::events::subscribe`]) hands
//!   each ban and manual/lifted unban of a shared jail to the outbox thread over a bounded
//!   channel. That thread signs each entry ([`entry`]) and only writes the outbox in
//!   `fleet.db` ([`db`]), everything waiting in one transaction, and never talks to Redis: when its
//!   channel is full the engine waits for it (as for its own store) and no ban is dropped.
//!   The sender thread sends the outbox, oldest first, to Redis when it can, 500 entries a
//!   pipeline: `XADD PREFIX MAXLEN ~ N * e JSON` plus `HSET/HDEL PREFIX:active
//!   node|jail|addr` (the current state a late joiner reads), and deletes what was sent.
//!   On each connect it checks `PREFIX:epoch`: a Redis that came back empty lacks it, and
//!   the node then publishes its active shared bans again (re-seeding).
//! - **Read.** The reader thread, on its own connection, reads the stream with blocking
//!   XREAD from the position saved in `fleet.db` (a node without one reads the current-
//!   state hash first), checks each entry (signature, distrust, replay, age), hands the
//!   good ones to the engine ([`crate::daemon::Msg::Fleet`]) and saves the new position
//!   only once the engine has applied them: a `kill -9` loses nothing.
//! - **Apply** (in the engine, `daemon/fleet_apply.rs`): local ignore, own addresses and
//!   loopback always win (a prefix that holds any of them is refused whole); caps on how
//!   many fleet bans are held, how fast they come (per origin node: the bans over the
//!   rate wait in the reader, [`retry_waiting`]), and how wide a prefix may be.
//!
//! An entry carries one address or one prefix ([`entry`]: version 1 and 2): a local ban of
//! a prefix (IPv6 `/64` by `v6_prefix`, `subnet_ban`, a CIDR ban) is shared as that prefix.

pub mod config;
pub mod db;
pub mod entry;

use crate::sys::now_ms;
use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use anyhow::Result;
use portcullis_core::decision::Millis;
use portcullis_core::ignore::Cidr;
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

pub use config::FleetConfig;
use db::Db;
pub use entry::{Entry, Kind};

use crate::daemon::{EngineTx, Msg};
use crate::events::{Event, UnbanReason};

/// Origin nodes with a token bucket of their own ([`Shared::take_token`]); the names past
/// them share one.
const MAX_BUCKETS: usize = 64;

/// How long a blocking read of the stream waits while ban entries wait for the accept rate
/// (they are tried again after each read).
const WAITING_BLOCK_MS: usize = 250;

/// Events waiting for the outbox thread at most; when full, the engine waits for it.
const CHANNEL: usize = 8192;
/// Outbox entries sent per Redis round trip.
const BATCH: usize = 500;
/// Longest wait between reconnection tries.
const MAX_BACKOFF: Duration = Duration::from_secs(8);
/// How long one blocking XREAD waits (ms).
const BLOCK_MS: usize = 2000;

/// What the engine did with one entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Banned until then.
    Applied(Millis),
    /// The origin's unban lifted our fleet ban.
    Lifted,
    /// Nothing to do (no such jail here, not banned, a local ban already stands).
    Nothing,
    /// The fleet ban here goes on as `node`'s, to `until` (another holder's end, after an
    /// unban): recorded so, a restart still knows it for a fleet ban. (Recorded with the old
    /// end, it was taken at the next start for a local ban and published again under this
    /// node's name, and the real holder's unban lifted it nowhere, a review found.)
    Reended { node: String, until: Millis },
    /// Refused: the local ignore list, an own address or loopback covers it.
    Ignored,
    /// Refused: the cap on fleet bans is reached.
    Capped,
    /// Refused: accepted too fast.
    RateLimited,
    /// Refused: a prefix wider than `min_prefix_v4/v6`.
    TooWide,
    /// Already over.
    Expired,
}

/// Counters, shown in `status`.
#[derive(Default)]
pub struct Stats {
    connected: AtomicBool,
    reading: AtomicBool,
    outbox: AtomicI64,
    published: AtomicU64,
    lost: AtomicU64,
    received: AtomicU64,
    applied: AtomicU64,
    lifted: AtomicU64,
    ignored: AtomicU64,
    capped: AtomicU64,
    rate_limited: AtomicU64,
    delayed: AtomicU64,
    too_wide: AtomicU64,
    expired: AtomicU64,
    replayed: AtomicU64,
    distrusted: AtomicU64,
    malformed: AtomicU64,
    future: AtomicU64,
    unsigned: AtomicU64,
    forged: AtomicU64,
    reseeded: AtomicU64,
}

/// The fleet part of `status`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct FleetStatus {
    /// This node.
    pub node: String,
    /// The key prefix.
    pub stream: String,
    /// The publisher is connected to Redis.
    pub connected: bool,
    /// The reader is connected (false when `accept = false`).
    pub reading: bool,
    /// Entries waiting in the outbox.
    pub outbox: i64,
    /// Fleet bans held now.
    pub fleet_bans: usize,
    /// Counters: published, lost (publisher behind), received, applied, lifted, and
    /// dropped or refused by cause.
    pub counters: std::collections::BTreeMap<String, u64>,
}

/// State shared by the engine, the subscriber and the fleet threads.
pub struct Shared {
    /// The configuration at start: the connection (`redis`, `ca_file`), `node`, `key_file`,
    /// `stream` and `maxlen` are read from here and change only with a restart.
    pub cfg: FleetConfig,
    /// The configuration as last (re)loaded: what is shared and accepted (`share`,
    /// `accept`, `distrust`, `max_bans`, `accept_rate`, `min_prefix_v4/v6`, `max_skew`,
    /// `max_bantime`) is read from here, so that a reload changes it.
    live: RwLock<Arc<FleetConfig>>,
    /// Fleet bans held here: (address or prefix, jail) -> origin node.
    pub origins: Mutex<HashMap<(Cidr, String), String>>,
    /// Other nodes that ban a fleet ban held here too, with the end of theirs: the ban runs
    /// to the latest end, and the origin's unban hands it to the one that ends last, to its
    /// end (a review found the last entry won: a shorter ban cut a longer one short, and a
    /// second node's unban lifted what the first still held).
    pub co: Mutex<HashMap<(Cidr, String), HashMap<String, Millis>>>,
    /// Counters.
    pub stats: Stats,
    /// The token buckets of the accept rate, one per origin node (tokens, last refill), so
    /// that one node's flood (a thief's, or an honest burst of thousands of bans) never
    /// holds back another's bans (one bucket for all did, review 54). At most
    /// [`MAX_BUCKETS`]: the names past them (a thief signs under any name) share one.
    buckets: Mutex<HashMap<String, (f64, Millis)>>,
    /// Ban entries the accept rate held back, in order, tried again as their origin's
    /// tokens come ([`retry_waiting`]; they were dropped, review 54); at most `max_bans`.
    /// Kept in memory: a restart drops them (the position read is past them).
    waiting: Mutex<VecDeque<Entry>>,
    /// Set while the reader catches up from the `:active` hash (the current state, not new
    /// bans arriving): `accept_rate` does not apply then, `max_bans` does. (A review found
    /// that a node catching up applied 50 of 200 active bans and never retried the rest.)
    pub catching_up: AtomicBool,
    /// The addresses of the Redis server (`redis`'s host, resolved at each connection of the
    /// reader): a fleet ban that holds one is refused. With the key, a fleet ban of the
    /// server in a jail that bans every port cut a node off from the fleet, and the unban
    /// could then never reach it (a review found).
    pub endpoint: Mutex<Vec<std::net::IpAddr>>,
}

/// The addresses `redis`'s host stands for (none for a Unix socket, or when it does not
/// resolve).
pub fn endpoint_addrs(redis: &str) -> Vec<std::net::IpAddr> {
    use redis::IntoConnectionInfo;
    use std::net::ToSocketAddrs;
    let Ok(info) = redis.into_connection_info() else {
        return Vec::new();
    };
    let (host, port) = match info.addr() {
        redis::ConnectionAddr::Tcp(h, p) => (h.clone(), *p),
        redis::ConnectionAddr::TcpTls { host, port, .. } => (host.clone(), *port),
        _ => return Vec::new(),
    };
    (host.as_str(), port)
        .to_socket_addrs()
        .map(|a| a.map(|s| s.ip()).collect())
        .unwrap_or_default()
}

impl Shared {
    /// The origin of a ban held here, `fleet:NODE`, if it came from the fleet.
    pub fn origin(&self, addr: Cidr, jail: &str) -> Option<String> {
        self.origins
            .lock()
            .expect("fleet origins")
            .get(&(addr, jail.to_string()))
            .map(|n| format!("fleet:{n}"))
    }

    /// The configuration as last (re)loaded (see [`Shared::cfg`] for what it is used for).
    pub fn live(&self) -> Arc<FleetConfig> {
        self.live.read().expect("fleet live config").clone()
    }

    /// A reload's `[fleet]`: what is shared and accepted takes effect now; returns a
    /// warning for each setting that waits for a restart.
    pub fn reconfigure(&self, new: FleetConfig) -> Vec<String> {
        let old = &self.cfg;
        let mut later = Vec::new();
        for (name, changed) in [
            ("redis", old.redis != new.redis),
            ("node", old.node != new.node),
            ("key_file", old.key.0 != new.key.0),
            ("stream", old.stream != new.stream),
            ("maxlen", old.maxlen != new.maxlen),
            ("ca_file", old.ca != new.ca),
        ] {
            if changed {
                later.push(format!(
                    "fleet.{name} changed: it takes effect at the next restart"
                ));
            }
        }
        *self.live.write().expect("fleet live config") = Arc::new(new);
        later
    }

    /// Drops the ban entries waiting for the accept rate that a manual unban of `target`
    /// (every address for `None`) in `jail` (every jail for `None`) pardons: applied after
    /// it, they banned again what the admin had just lifted (review 57 L4). Returns how
    /// many were dropped. (An entry the reader has taken from the queue and is handing to
    /// the engine at this moment is applied all the same.)
    pub fn drop_waiting(&self, target: Option<Cidr>, jail: Option<&str>) -> usize {
        let mut w = self.waiting.lock().expect("fleet waiting");
        let before = w.len();
        w.retain(|e| {
            !(jail.is_none_or(|j| j == e.jail) && target.is_none_or(|t| t.overlaps(&e.addr)))
        });
        before - w.len()
    }

    /// Takes one token of node `node`'s accept rate; false when none is left.
    pub fn take_token(&self, node: &str, now: Millis) -> bool {
        if self.catching_up.load(Relaxed) {
            return true;
        }
        let rate = f64::from(self.live().accept_rate);
        let refill = |b: &mut (f64, Millis)| {
            let elapsed = (now - b.1).max(0) as f64 / 1000.0;
            b.0 = (b.0 + elapsed * rate).min(rate);
            b.1 = now;
        };
        let mut m = self.buckets.lock().expect("fleet buckets");
        if !m.contains_key(node) && m.len() >= MAX_BUCKETS {
            // (the full buckets hold nothing a new one would not)
            m.retain(|k, b| {
                refill(b);
                k.is_empty() || b.0 < rate
            });
        }
        let key = if m.contains_key(node) || m.len() < MAX_BUCKETS {
            node
        } else {
            ""
        };
        let b = m.entry(key.to_string()).or_insert((rate, now));
        refill(b);
        if b.0 >= 1.0 {
            b.0 -= 1.0;
            true
        } else {
            false
        }
    }

    /// Counts an engine outcome.
    pub fn count(&self, o: &Outcome) {
        let s = &self.stats;
        match o {
            Outcome::Applied(_) => &s.applied,
            Outcome::Lifted => &s.lifted,
            Outcome::Nothing | Outcome::Reended { .. } => return,
            Outcome::Ignored => &s.ignored,
            Outcome::Capped => &s.capped,
            Outcome::RateLimited => &s.rate_limited,
            Outcome::TooWide => &s.too_wide,
            Outcome::Expired => &s.expired,
        }
        .fetch_add(1, Relaxed);
    }

    /// The `status` report.
    pub fn status(&self) -> FleetStatus {
        let s = &self.stats;
        let counters = [
            ("published", &s.published),
            ("lost", &s.lost),
            ("received", &s.received),
            ("applied", &s.applied),
            ("lifted", &s.lifted),
            ("refused_ignored", &s.ignored),
            ("refused_cap", &s.capped),
            ("refused_rate", &s.rate_limited),
            ("delayed_rate", &s.delayed),
            ("refused_wide", &s.too_wide),
            ("dropped_expired", &s.expired),
            ("dropped_replayed", &s.replayed),
            ("dropped_distrusted", &s.distrusted),
            ("dropped_malformed", &s.malformed),
            ("dropped_future", &s.future),
            ("dropped_unsigned", &s.unsigned),
            ("dropped_forged", &s.forged),
            ("reseeded", &s.reseeded),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.load(Relaxed)))
        .collect();
        FleetStatus {
            node: self.cfg.node.clone(),
            stream: self.cfg.stream.clone(),
            connected: s.connected.load(Relaxed),
            reading: s.reading.load(Relaxed),
            outbox: s.outbox.load(Relaxed),
            fleet_bans: self.origins.lock().expect("fleet origins").len(),
            counters,
        }
    }
}

/// What the subscriber hands the publisher.
enum Out {
    Entry(Entry),
    /// A shared ban of ours expired: forget it (no entry: every node expires it itself).
    Forget(String),
}

/// Starts the fleet: opens `fleet.db`, subscribes to the events, starts the publisher
/// and (with `accept`) the reader. Returns the state the engine consults. `active` are
/// the bans the engine holds now (address or prefix, jail, failures, end, whether the
/// state file has it as a fleet peer's): fleet bans of `fleet.db` it no longer holds are
/// forgotten, and those of shared jails that are neither fleet bans (by `fleet.db` or by
/// the state file) nor known to the outbox (the fleet was just enabled, or the daemon died
/// before an event reached the outbox) are published now. A fleet ban of the state file
/// that `fleet.db` has no origin for is never published as this node's: the engine gives it
/// back its origin when the origin's entry is read again.
pub fn start(
    cfg: FleetConfig,
    state_dir: &Path,
    tx: EngineTx,
    active: &[(Cidr, String, u32, Millis, bool)],
) -> Result<Arc<Shared>> {
    let path = state_dir.join("fleet.db");
    let mut db = Db::open(&path)?;
    let held: HashMap<(Cidr, &str), Millis> = active
        .iter()
        .map(|(a, j, _, until, _)| ((*a, j.as_str()), *until))
        .collect();
    // (a fleet ban the engine no longer holds: replaced by a wider ban, lifted offline; or
    // holds with another end: a local ban of the address took its place, as the offline
    // `bans` tells them apart)
    let now = now_ms();
    db.applied(now)?; // (prunes the ended ones)
    let origins: HashMap<(Cidr, String), String> = db
        .origins(now)?
        .into_iter()
        .filter(|((a, j), (_, until))| held.get(&(*a, j.as_str())) == Some(until))
        .map(|(k, (n, _))| (k, n))
        .collect();
    let known = db.own_fields()?;
    let now = now_ms();
    let missing: Vec<(String, Option<Millis>, String)> = active
        .iter()
        .filter(|(a, j, _, until, fleet)| {
            *until > now
                && !fleet
                && cfg.shares(j)
                && !origins.contains_key(&(*a, j.clone()))
                && !known.contains(&format!("{}|{j}|{a}", cfg.node))
        })
        .map(|(a, j, failures, until, _)| {
            let mut e = Entry {
                v: entry::version(a),
                kind: Kind::Ban,
                addr: *a,
                jail: j.clone(),
                until: *until,
                reason: "failures".into(),
                failures: *failures,
                node: cfg.node.clone(),
                time: now,
                sig: String::new(),
            };
            e.sign(&cfg.key.0, &cfg.stream);
            (e.field(), Some(e.until), e.to_json())
        })
        .collect();
    if !missing.is_empty() {
        db.push(&missing)?;
        info!(
            "fleet: {} active ban(s) of shared jails not published yet: queued",
            missing.len()
        );
    }
    let shared = Arc::new(Shared {
        buckets: Mutex::new(HashMap::new()),
        waiting: Mutex::new(VecDeque::new()),
        catching_up: AtomicBool::new(false),
        live: RwLock::new(Arc::new(cfg.clone())),
        cfg,
        origins: Mutex::new(origins),
        co: Mutex::new(HashMap::new()),
        stats: Stats::default(),
        endpoint: Mutex::new(Vec::new()),
    });
    shared.stats.outbox.store(db.outbox_len()?, Relaxed);
    let (out_tx, out_rx) = mpsc::sync_channel::<Out>(CHANNEL);
    subscribe(shared.clone(), out_tx);
    // the outbox thread wakes the sender after each commit (one wake pending is enough)
    let (wake_tx, wake_rx) = mpsc::sync_channel::<()>(1);
    let forgets = Arc::new(Mutex::new(Vec::new()));
    {
        let shared = shared.clone();
        let forgets = forgets.clone();
        std::thread::Builder::new()
            .name("fleet-outbox".into())
            .spawn(move || outbox(shared, db, out_rx, wake_tx, forgets))?;
    }
    {
        let db = Db::open(&path)?;
        let shared = shared.clone();
        std::thread::Builder::new()
            .name("fleet-publish".into())
            .spawn(move || publisher(shared, db, wake_rx, forgets))?;
    }
    {
        // also with `accept = false`: it waits, unconnected, until a reload sets it
        let db = Db::open(&path)?;
        let shared = shared.clone();
        std::thread::Builder::new()
            .name("fleet-read".into())
            .spawn(move || reader(shared, db, tx))?;
    }
    info!(
        "fleet: node {} on {} (stream {}, {})",
        shared.cfg.node,
        redacted(&shared.cfg.redis),
        shared.cfg.stream,
        if shared.cfg.accept {
            "publishing and accepting"
        } else {
            "publishing only"
        }
    );
    Ok(shared)
}

/// The URL without its credentials, for messages: `user:pass@` and the query's `pass`,
/// `password` (and `user`) values (`redis+unix:///run/redis.sock?user=u&pass=p`, the README's
/// form, put the password in the log, a review found).
fn redacted(url: &str) -> String {
    let url = match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}<credentials>{}", &url[..s + 3], &url[at..]),
        _ => url.to_string(),
    };
    match url.split_once('?') {
        None => url,
        Some((base, query)) => {
            let q: Vec<String> = query
                .split('&')
                .map(|kv| match kv.split_once('=') {
                    Some((k, _)) if matches!(k, "pass" | "password" | "user") => {
                        format!("{k}=<credentials>")
                    }
                    _ => kv.to_string(),
                })
                .collect();
            format!("{base}?{}", q.join("&"))
        }
    }
}

fn subscribe(shared: Arc<Shared>, out: SyncSender<Out>) {
    let warned = AtomicBool::new(false);
    crate::events::subscribe(Box::new(move |e| {
        let cfg = &shared.cfg;
        let msg = match e {
            Event::Ban {
                addr,
                jail,
                failures,
                length,
                manual,
                ..
            } => {
                // an address or a prefix (v6 /64, subnet_ban, a CIDR ban) alike
                if shared.origin(*addr, jail).is_some() {
                    return; // a fleet ban (never published again)
                }
                if !addr.is_host() {
                    // a local prefix ban replaced the fleet bans inside it (a manual ban
                    // closes them without an event of their own)
                    shared
                        .origins
                        .lock()
                        .expect("fleet origins")
                        .retain(|(c, j), _| j != jail || c == addr || !addr.covers(c));
                }
                // (a link-local address is a neighbour on one of this node's links: on
                // another node's links it is someone else)
                if !shared.live().shares(jail) || portcullis_core::addr::is_link_local(addr.addr) {
                    return;
                }
                let now = now_ms();
                let en = Entry {
                    v: entry::version(addr),
                    kind: Kind::Ban,
                    addr: *addr,
                    jail: jail.clone(),
                    until: now.saturating_add(*length),
                    reason: if *manual { "manual" } else { "failures" }.into(),
                    failures: *failures,
                    node: cfg.node.clone(),
                    time: now,
                    sig: String::new(),
                };
                Out::Entry(en)
            }
            Event::Unban { addr, jail, reason } => {
                let was_fleet = shared
                    .origins
                    .lock()
                    .expect("fleet origins")
                    .remove(&(*addr, jail.clone()))
                    .is_some();
                if was_fleet || !shared.live().shares(jail) {
                    return;
                }
                let field = format!("{}|{jail}|{addr}", cfg.node);
                match reason {
                    UnbanReason::Expired => Out::Forget(field),
                    UnbanReason::Manual | UnbanReason::Lifted(_) => {
                        let en = Entry {
                            v: entry::version(addr),
                            kind: Kind::Unban,
                            addr: *addr,
                            jail: jail.clone(),
                            until: 0,
                            reason: match reason {
                                UnbanReason::Lifted(r) => r.clone(),
                                _ => "manual".into(),
                            },
                            failures: 0,
                            node: cfg.node.clone(),
                            time: now_ms(),
                            sig: String::new(),
                        };
                        Out::Entry(en)
                    }
                }
            }
            _ => return,
        };
        match out.try_send(msg) {
            Ok(()) => {}
            Err(TrySendError::Full(msg)) => {
                // the outbox thread only writes fleet.db (never waits for Redis): the
                // engine waits for it rather than drop an entry
                if !warned.swap(true, Relaxed) {
                    warn!("fleet: the outbox is behind (its queue of {CHANNEL} is full); banning waits for it");
                }
                let _ = out.send(msg);
            }
            Err(TrySendError::Disconnected(_)) => {}
        }
    }));
}

fn connect(cfg: &FleetConfig, read_timeout: Duration) -> redis::RedisResult<redis::Connection> {
    let client = match &cfg.ca {
        None => redis::Client::open(cfg.redis.as_str())?,
        Some(pem) => redis::Client::build_with_tls(
            cfg.redis.as_str(),
            redis::TlsCertificates {
                client_tls: None,
                root_cert: Some(pem.clone()),
            },
        )?,
    };
    let con = client.get_connection_with_timeout(Duration::from_secs(3))?;
    con.set_read_timeout(Some(read_timeout))?;
    con.set_write_timeout(Some(Duration::from_secs(5)))?;
    Ok(con)
}

fn active_key(cfg: &FleetConfig) -> String {
    format!("{}:active", cfg.stream)
}

/// Sends entries (JSON) to Redis in one pipeline: XADD, and HSET/HDEL of the current state.
fn send(con: &mut redis::Connection, cfg: &FleetConfig, entries: &[&str]) -> Result<()> {
    let mut p = redis::pipe();
    for json in entries {
        p.cmd("XADD")
            .arg(&cfg.stream)
            .arg("MAXLEN")
            .arg("~")
            .arg(cfg.maxlen)
            .arg("*")
            .arg("e")
            .arg(*json)
            .ignore();
        // our own entries: the JSON always parses
        if let Ok(e) = serde_json::from_str::<Entry>(json) {
            match e.kind {
                Kind::Ban => p
                    .cmd("HSET")
                    .arg(active_key(cfg))
                    .arg(e.field())
                    .arg(*json)
                    .ignore(),
                Kind::Unban => p.cmd("HDEL").arg(active_key(cfg)).arg(e.field()).ignore(),
            };
        }
    }
    p.query::<()>(con)?;
    Ok(())
}

/// After a connect: re-seeds an emptied Redis (its epoch marker is gone or another).
fn check_epoch(con: &mut redis::Connection, shared: &Shared, db: &mut Db) -> Result<()> {
    let cfg = &shared.cfg;
    let key = format!("{}:epoch", cfg.stream);
    let fresh = format!("{}-{}-{}", now_ms(), cfg.node, std::process::id());
    let _: Option<String> = redis::cmd("SET")
        .arg(&key)
        .arg(&fresh)
        .arg("NX")
        .query(con)?;
    let epoch: String = redis::cmd("GET").arg(&key).query(con)?;
    if db.meta("epoch")?.as_deref() == Some(epoch.as_str()) {
        return Ok(());
    }
    let own = db.own_active(now_ms())?;
    for chunk in own.chunks(BATCH) {
        let refs: Vec<&str> = chunk.iter().map(String::as_str).collect();
        send(con, cfg, &refs)?;
    }
    if !own.is_empty() {
        info!(
            "fleet: Redis epoch {epoch} is new to this node: published its {} active shared ban(s) again",
            own.len()
        );
        shared.stats.reseeded.fetch_add(own.len() as u64, Relaxed);
    }
    db.set_meta("epoch", &epoch)?;
    Ok(())
}

/// The outbox thread: everything the subscriber hands on goes to the outbox in one
/// transaction, then the sender is woken. It never talks to Redis.
fn outbox(
    shared: Arc<Shared>,
    mut db: Db,
    rx: Receiver<Out>,
    wake: SyncSender<()>,
    forgets: Arc<Mutex<Vec<String>>>,
) {
    let push = |db: &mut Db, batch: &mut Vec<(String, Option<Millis>, String)>| {
        if batch.is_empty() {
            return;
        }
        match db.push(batch) {
            Ok(()) => {
                shared.stats.outbox.fetch_add(batch.len() as i64, Relaxed);
            }
            Err(e) => {
                warn!(
                    "fleet: cannot write the outbox, {} entries lost: {e:#}",
                    batch.len()
                );
                shared.stats.lost.fetch_add(batch.len() as u64, Relaxed);
            }
        }
        batch.clear();
    };
    while let Ok(first) = rx.recv() {
        let mut batch: Vec<(String, Option<Millis>, String)> = Vec::new();
        // (the stamps given in this round, not yet in `fleet.db`)
        let mut stamped: HashMap<String, Millis> = HashMap::new();
        for m in std::iter::once(first)
            .chain(std::iter::from_fn(|| rx.try_recv().ok()))
            .take(10 * BATCH)
        {
            match m {
                Out::Entry(mut e) => {
                    // after the field's last entry, though the clock stepped back since
                    // (the last may still be in this batch); then signed, off the engine's
                    // thread
                    let f = e.field();
                    e.time = match stamped.get(&f) {
                        Some(&t) => e.time.max(t + 1),
                        None => db.stamp_after(&f, e.time).unwrap_or(e.time),
                    };
                    stamped.insert(f, e.time);
                    e.sign(&shared.cfg.key.0, &shared.cfg.stream);
                    // a removal still waiting (Redis away) must not delete this newer ban
                    // from the current state once it is published
                    if e.kind == Kind::Ban {
                        let f = e.field();
                        forgets.lock().expect("fleet forgets").retain(|g| *g != f);
                    }
                    batch.push((
                        e.field(),
                        (e.kind == Kind::Ban).then_some(e.until),
                        e.to_json(),
                    ))
                }
                Out::Forget(f) => {
                    // in order: what came before is written first (the publisher removes
                    // it from own_active once Redis has it out)
                    push(&mut db, &mut batch);
                    forgets.lock().expect("fleet forgets").push(f);
                }
            }
        }
        push(&mut db, &mut batch);
        let _ = wake.try_send(());
    }
}

/// The sender thread: sends the outbox to Redis when woken (or each second), connecting
/// again with backoff.
fn publisher(
    shared: Arc<Shared>,
    mut db: Db,
    wake: Receiver<()>,
    forgets: Arc<Mutex<Vec<String>>>,
) {
    let cfg = &shared.cfg;
    let mut con: Option<redis::Connection> = None;
    let mut backoff = Duration::from_millis(250);
    let mut next_try = Instant::now();
    let mut failed_before = false;
    // when fleet.db's ended own bans were last looked for (`None`: at the next connection)
    let mut last_sweep: Option<Instant> = None;
    loop {
        let wait = if con.is_none() && shared.stats.outbox.load(Relaxed) > 0 {
            next_try.saturating_duration_since(Instant::now())
        } else {
            Duration::from_millis(1000)
        };
        match wake.recv_timeout(wait.max(Duration::from_millis(10))) {
            Ok(()) | Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
        // ended own bans leave the current state (no entry: every node expires them). The
        // daemon's expiries come through `forgets`; fleet.db's own_active is gone through
        // too at each connection and each minute, for the bans that ended while Redis was
        // away (only MAX_FORGETS wait in memory) or while the daemon was stopped (a review
        // found the hash keeping them for ever). A ban published again since is kept.
        if let Some(c) = con.as_mut() {
            let now = now_ms();
            let mut gone = std::mem::take(&mut *forgets.lock().expect("fleet forgets"));
            if last_sweep.is_none_or(|t: Instant| t.elapsed() >= Duration::from_secs(60)) {
                last_sweep = Some(Instant::now());
                gone.extend(db.ended_own(now).unwrap_or_default());
                gone.sort_unstable();
                gone.dedup();
            }
            // (the daemon ends a ban a little before its entry's end, stamped later)
            gone.retain(|f| db.may_forget(f, now + 2000).unwrap_or(true));
            if !gone.is_empty() {
                let mut p = redis::pipe();
                for f in &gone {
                    p.cmd("HDEL").arg(active_key(cfg)).arg(f).ignore();
                }
                if p.query::<()>(c).is_ok() {
                    if let Err(e) = db.forgot(&gone, now + 2000) {
                        warn!("fleet: cannot write its state: {e:#}");
                    }
                } else {
                    // a lost connection is found by the flush below; they wait in memory
                    let mut f = forgets.lock().expect("fleet forgets");
                    gone.append(&mut f);
                    let over = gone.len().saturating_sub(MAX_FORGETS);
                    gone.drain(..over);
                    *f = gone;
                }
            }
        } else {
            let mut f = forgets.lock().expect("fleet forgets");
            let over = f.len().saturating_sub(MAX_FORGETS);
            f.drain(..over);
        }
        if con.is_none() && Instant::now() >= next_try {
            match connect(cfg, Duration::from_secs(10))
                .map_err(anyhow::Error::from)
                .and_then(|mut c| {
                    check_epoch(&mut c, &shared, &mut db)?;
                    Ok(c)
                }) {
                Ok(c) => {
                    if failed_before {
                        info!("fleet: publisher connected to Redis again");
                    }
                    failed_before = false;
                    con = Some(c);
                    last_sweep = None;
                    backoff = Duration::from_millis(250);
                    shared.stats.connected.store(true, Relaxed);
                }
                Err(e) => {
                    if !failed_before {
                        warn!("fleet: cannot reach Redis at {} ({e:#}); bans wait in the outbox, retrying with backoff", redacted(&cfg.redis));
                    }
                    failed_before = true;
                    next_try = Instant::now() + backoff;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
        if let Some(c) = con.as_mut() {
            if let Err(e) = flush(c, &shared, &mut db) {
                warn!("fleet: lost Redis while publishing ({e:#}); entries wait in the outbox");
                con = None;
                failed_before = true;
                shared.stats.connected.store(false, Relaxed);
                next_try = Instant::now() + backoff;
            }
        }
        if let Ok(n) = db.outbox_len() {
            shared.stats.outbox.store(n, Relaxed);
        }
    }
}

/// How long the idle publisher's PING waits for Redis' answer.
const PING_WAIT: Duration = Duration::from_secs(3);

fn flush(con: &mut redis::Connection, shared: &Shared, db: &mut Db) -> Result<()> {
    let mut idle = true;
    loop {
        let rows = db.outbox(BATCH)?;
        let Some(&(last, _)) = rows.last() else {
            // a ping now and then finds a Redis that went away while idle
            if idle {
                // (answered within PING_WAIT: with the connection's 10 s, `status` said
                // connected for 20 to 30 s into a partition, a review found)
                con.set_read_timeout(Some(PING_WAIT))?;
                let r: redis::RedisResult<String> = redis::cmd("PING").query(con);
                con.set_read_timeout(Some(Duration::from_secs(10)))?;
                r?;
            }
            return Ok(());
        };
        idle = false;
        let refs: Vec<&str> = rows.iter().map(|(_, j)| j.as_str()).collect();
        send(con, &shared.cfg, &refs)?;
        db.sent(last)?;
        shared.stats.published.fetch_add(rows.len() as u64, Relaxed);
    }
}

/// Checks one entry read from Redis; `None` when dropped (counted) or our own. `live` is
/// the configuration as last (re)loaded.
fn check(shared: &Shared, live: &FleetConfig, db: &Db, text: &str, now: Millis) -> Option<Entry> {
    let cfg = &shared.cfg;
    let s = &shared.stats;
    let e = match Entry::verify(text, &cfg.key.0, &cfg.stream) {
        Ok(e) => e,
        Err(b) => {
            match b {
                entry::Bad::Malformed => &s.malformed,
                entry::Bad::Unsigned => &s.unsigned,
                entry::Bad::Forged => &s.forged,
            }
            .fetch_add(1, Relaxed);
            return None;
        }
    };
    if e.node == cfg.node {
        return None;
    }
    s.received.fetch_add(1, Relaxed);
    if live.distrust.contains(&e.node) {
        s.distrusted.fetch_add(1, Relaxed);
        return None;
    }
    if e.time > now + live.max_skew {
        s.future.fetch_add(1, Relaxed); // stamped too far ahead
        return None;
    }
    if e.time < now - live.max_bantime - live.max_skew
        || db
            .seen(&e.field())
            .ok()
            .flatten()
            .is_some_and(|t| t >= e.time)
    {
        s.replayed.fetch_add(1, Relaxed);
        return None;
    }
    if e.kind == Kind::Ban && e.until <= now {
        s.expired.fetch_add(1, Relaxed);
        return None;
    }
    if e.kind == Kind::Ban && !live.narrow_enough(&e.addr) {
        s.too_wide.fetch_add(1, Relaxed);
        return None;
    }
    Some(e)
}

/// Checks and applies a batch of entries (JSON), then saves the position `pos`.
/// Err when the engine is gone.
fn process(
    shared: &Shared,
    db: &mut Db,
    tx: &EngineTx,
    texts: &[String],
    pos: Option<&str>,
) -> std::result::Result<(), ()> {
    let now = now_ms();
    let live = shared.live();
    let mut good: Vec<Entry> = Vec::new();
    for t in texts {
        if let Some(e) = check(shared, &live, db, t, now) {
            // a later entry of the same batch for the same ban wins in order
            good.push(e);
        }
    }
    let mut seen = Vec::new();
    let mut applied = Vec::new();
    if !good.is_empty() {
        // a newer entry of a ban waiting for the rate (its unban, its renewal) takes its
        // place: the waiting one, applied after, would undo it
        shared.waiting.lock().expect("fleet waiting").retain(|w| {
            !good
                .iter()
                .any(|g| g.addr == w.addr && g.jail == w.jail && g.node == w.node)
        });
        let outcomes = apply(tx, &good)?;
        let mut held = Vec::new();
        for (k, (e, o)) in good.iter().zip(&outcomes).enumerate() {
            seen.push((e.field(), e.time));
            if matches!(o, Outcome::RateLimited) {
                // (a later entry of the batch for the same ban, its unban, was applied
                // already: this one, applied after, would undo it, review 57)
                let superseded = good[k + 1..]
                    .iter()
                    .any(|g| g.addr == e.addr && g.jail == e.jail && g.node == e.node);
                if !superseded {
                    held.push(e.clone());
                }
                continue;
            }
            shared.count(o);
            applied_of(e, o, &mut applied);
        }
        wait_for_rate(shared, held, false);
    }
    if let Err(e) = db.record(&seen, &applied, pos) {
        warn!("fleet: cannot save the read position: {e:#}");
    }
    Ok(())
}

/// Hands `entries` to the engine; its outcome of each, in order. Err when the engine is
/// gone.
fn apply(tx: &EngineTx, entries: &[Entry]) -> std::result::Result<Vec<Outcome>, ()> {
    let (rtx, rrx) = mpsc::channel();
    tx.send(Msg::Fleet(entries.to_vec(), rtx)).map_err(|_| ())?;
    rrx.recv().map_err(|_| ())
}

/// What `fleet.db` keeps of entry `e` applied with outcome `o` (the origin of a ban held
/// here, or its lifting).
fn applied_of(e: &Entry, o: &Outcome, applied: &mut Vec<(Cidr, String, String, Option<Millis>)>) {
    match o {
        Outcome::Applied(u) => applied.push((e.addr, e.jail.clone(), e.node.clone(), Some(*u))),
        Outcome::Lifted => applied.push((e.addr, e.jail.clone(), e.node.clone(), None)),
        Outcome::Reended { node, until } => {
            applied.push((e.addr, e.jail.clone(), node.clone(), Some(*until)))
        }
        _ => {}
    }
}

/// Puts ban entries the accept rate held back in the waiting queue (`again`: taken from its
/// front, and put back there in order), as far as `max_bans` allows; the rest are refused
/// for good and counted so.
fn wait_for_rate(shared: &Shared, held: Vec<Entry>, again: bool) {
    if held.is_empty() {
        return;
    }
    let cap = shared.live().max_bans;
    let mut w = shared.waiting.lock().expect("fleet waiting");
    let s = &shared.stats;
    if again {
        for e in held.into_iter().rev() {
            w.push_front(e);
        }
        return;
    }
    for e in held {
        if w.len() < cap {
            w.push_back(e);
            s.delayed.fetch_add(1, Relaxed);
        } else {
            s.rate_limited.fetch_add(1, Relaxed);
        }
    }
}

/// Tries the ban entries waiting for the accept rate again: from the front, about half a
/// second's tokens of each origin node (the engine takes the tokens; what it holds back
/// again goes back to the front). Err when the engine is gone.
fn retry_waiting(shared: &Shared, db: &mut Db, tx: &EngineTx) -> std::result::Result<(), ()> {
    let per = (shared.live().accept_rate as usize).div_ceil(2).max(1);
    let batch: Vec<Entry> = {
        let mut w = shared.waiting.lock().expect("fleet waiting");
        if w.is_empty() {
            return Ok(());
        }
        let mut taken: HashMap<&str, usize> = HashMap::new();
        let mut pick = Vec::with_capacity(w.len());
        for e in w.iter() {
            let n = taken.entry(e.node.as_str()).or_default();
            pick.push(*n < per);
            *n += 1;
        }
        let mut keep = VecDeque::with_capacity(w.len());
        let mut batch = Vec::new();
        for (e, take) in w.drain(..).zip(pick) {
            if take {
                batch.push(e);
            } else {
                keep.push_back(e);
            }
        }
        *w = keep;
        batch
    };
    let outcomes = apply(tx, &batch)?;
    let mut applied = Vec::new();
    let mut held = Vec::new();
    for (e, o) in batch.into_iter().zip(&outcomes) {
        if matches!(o, Outcome::RateLimited) {
            held.push(e);
            continue;
        }
        shared.count(o);
        applied_of(&e, o, &mut applied);
    }
    wait_for_rate(shared, held, true);
    if !applied.is_empty() {
        if let Err(e) = db.record(&[], &applied, None) {
            warn!("fleet: cannot save the bans applied: {e:#}");
        }
    }
    Ok(())
}

/// (field names and values as bytes: one entry that is not UTF-8, which anyone with the
/// stream's Redis credentials can write, failed the whole reply, and the reader took it for
/// a lost connection, again and again, so no node read any later entry, a review found)
type XReadReply = Option<Vec<(String, Vec<(String, Vec<Vec<u8>>)>)>>;

/// The longest entry read: a signed entry is under 1 KiB. A longer one (or one that is not
/// UTF-8) is read as empty, which [`process`] counts as malformed.
const MAX_ENTRY: usize = 16 * 1024;

/// An entry's text: empty when it is too long or not UTF-8 (counted as malformed).
fn entry_text(raw: &[u8]) -> String {
    if raw.len() > MAX_ENTRY {
        return String::new();
    }
    String::from_utf8(raw.to_vec()).unwrap_or_default()
}

/// Expired own bans kept, while Redis cannot be reached, for their removal from the
/// current state.
const MAX_FORGETS: usize = 100_000;

/// Whether entries after `pos` may have been trimmed from `stream` (by `maxlen` while this
/// node was away): the stream holds entries, but none at or before `pos`. (Trimming takes
/// the oldest first, so an entry at or before `pos` that is still there means that nothing
/// after it went. When `pos`'s own entry went and nothing after it, this says yes too: the
/// catch-up that follows is then only extra work.) Only XREVRANGE is used: the README's ACL
/// allows no XINFO, and `XINFO STREAM`'s `max-deleted-entry-id`, used before, was refused
/// under it, so a trim was never noticed.
fn trimmed_past(con: &mut redis::Connection, stream: &str, pos: &str) -> Result<bool> {
    if last_id(con, stream, pos)?.is_some() {
        return Ok(false);
    }
    // an empty stream lost nothing this node can get back (a Redis that lost its data is
    // found by the epoch)
    Ok(last_id(con, stream, "+")?.is_some_and(|newest| stream_id(&newest) > stream_id(pos)))
}

/// The id of the newest entry of `stream` at or before `end` (`+`: the newest of all).
/// (The entries' fields are read as bytes: one that is not UTF-8 failed the reply.)
fn last_id(con: &mut redis::Connection, stream: &str, end: &str) -> Result<Option<String>> {
    let v: Vec<(String, Vec<Vec<u8>>)> = redis::cmd("XREVRANGE")
        .arg(stream)
        .arg(end)
        .arg("-")
        .arg("COUNT")
        .arg(1)
        .query(con)?;
    Ok(v.into_iter().next().map(|(id, _)| id))
}

/// Whether a saved position is past anything the stream can give: after its newest entry,
/// or (the stream emptied) more than a day after now. Redis' ids only grow, so a node there
/// waited for ever: one `XADD` with the largest id, deleted after by an admin, had every
/// node read nothing more while `status` said all was well (a review found).
fn position_ahead(
    con: &mut redis::Connection,
    stream: &str,
    pos: &str,
    now: Millis,
) -> Result<bool> {
    Ok(match last_id(con, stream, "+")? {
        Some(newest) => stream_id(pos) > stream_id(&newest),
        // (only when the stream is empty: ids go on from a far-future one once it was
        // written, and every node caught up again every 10 s for ever, a review found)
        None => stream_id(pos).0 > u64::try_from(now.saturating_add(86_400_000)).unwrap_or(0),
    })
}

/// A stream entry id (`MS-SEQ`) as numbers, to compare; an unreadable one is the smallest.
fn stream_id(id: &str) -> (u64, u64) {
    let (ms, seq) = id.split_once('-').unwrap_or((id, "0"));
    (ms.parse().unwrap_or(0), seq.parse().unwrap_or(0))
}

fn reader(shared: Arc<Shared>, mut db: Db, tx: EngineTx) {
    let cfg = &shared.cfg;
    let mut backoff = Duration::from_millis(250);
    let mut warned = false;
    {
        let live = shared.live();
        let _ = db.prune_seen(now_ms() - live.max_bantime - live.max_skew);
    }
    loop {
        if !shared.live().accept {
            // `accept = false` (at start or by a reload): no connection, the position kept
            shared.stats.reading.store(false, Relaxed);
            std::thread::sleep(Duration::from_secs(1));
            continue;
        }
        let r = (|| -> Result<std::result::Result<(), ()>> {
            let mut con = connect(cfg, Duration::from_millis(BLOCK_MS as u64 + 5000))?;
            let endpoint = endpoint_addrs(&cfg.redis);
            if !endpoint.is_empty() {
                *shared.endpoint.lock().expect("fleet endpoint") = endpoint;
            }
            shared.stats.reading.store(true, Relaxed);
            // (the warning and the backoff are reset once a read succeeds, not at the
            // connection: an error after every connection, one entry that could not be read,
            // logged two lines four times a second for as long as it stayed, a review found)
            // a saved position the stream no longer holds (trimmed past it by `maxlen` while
            // this node was away): what was trimmed is lost from the stream, but the bans
            // still active are in the hash, so the node catches up from there as a new one
            // (entries it already has are dropped as replayed)
            let mut resume = None;
            let saved = match db.meta("pos")? {
                Some(p) if position_ahead(&mut con, &cfg.stream, &p, now_ms())? => {
                    warn!("fleet: this node's position in the stream ({p}) is past its newest entry: catching up from the current state, then reading on from its newest entry");
                    None
                }
                Some(p) if trimmed_past(&mut con, &cfg.stream, &p)? => {
                    warn!("fleet: the stream was trimmed past this node's position ({p}; its oldest entry is newer): catching up from the current state, then reading on from there (the unbans still in the stream)");
                    resume = Some(p);
                    None
                }
                Some(p) => Some(p),
                None => None,
            };
            let mut pos = match saved {
                Some(p) => p,
                None => {
                    // a node without a position: the current state, then what follows it
                    let pos = last_id(&mut con, &cfg.stream, "+")?.unwrap_or_else(|| "0-0".into());
                    let started = Instant::now();
                    shared.catching_up.store(true, Relaxed);
                    struct Done<'a>(&'a AtomicBool);
                    impl Drop for Done<'_> {
                        fn drop(&mut self) {
                            self.0.store(false, Relaxed);
                        }
                    }
                    let _done = Done(&shared.catching_up);
                    let before = shared.stats.applied.load(Relaxed);
                    let mut cursor: u64 = 0;
                    loop {
                        let (next, kv): (u64, Vec<Vec<u8>>) = redis::cmd("HSCAN")
                            .arg(active_key(cfg))
                            .arg(cursor)
                            .arg("COUNT")
                            .arg(1000)
                            .query(&mut con)?;
                        let texts: Vec<String> = kv
                            .chunks(2)
                            .filter_map(|c| c.get(1))
                            .map(|v| entry_text(v))
                            .collect();
                        if process(&shared, &mut db, &tx, &texts, None).is_err() {
                            return Ok(Err(()));
                        }
                        cursor = next;
                        if cursor == 0 {
                            break;
                        }
                    }
                    // (after a trim: on from the old position, whose entries that are left
                    // hold unbans the hash does not; its bans come again as replayed)
                    let pos = resume.take().unwrap_or(pos);
                    db.set_meta("pos", &pos)?;
                    info!(
                        "fleet: caught up from the current state: {} ban(s) applied in {} ms",
                        shared.stats.applied.load(Relaxed) - before,
                        started.elapsed().as_millis()
                    );
                    pos
                }
            };
            let mut checked = Instant::now();
            loop {
                // (the bans the accept rate held back, as their nodes' tokens come)
                if retry_waiting(&shared, &mut db, &tx).is_err() {
                    return Ok(Err(()));
                }
                let waiting = !shared.waiting.lock().expect("fleet waiting").is_empty();
                let reply: XReadReply = redis::cmd("XREAD")
                    .arg("COUNT")
                    .arg(BATCH)
                    .arg("BLOCK")
                    .arg(if waiting { WAITING_BLOCK_MS } else { BLOCK_MS })
                    .arg("STREAMS")
                    .arg(&cfg.stream)
                    .arg(&pos)
                    .query(&mut con)?;
                if warned {
                    info!("fleet: reader connected to Redis again");
                    warned = false;
                }
                backoff = Duration::from_millis(250);
                if !shared.live().accept {
                    // a reload stopped accepting: this batch waits at the saved position
                    return Ok(Ok(()));
                }
                let Some(streams) = reply else {
                    // quiet: still a position the stream can reach? (an XREVRANGE, at most
                    // every 10 s)
                    if checked.elapsed() >= Duration::from_secs(10) {
                        checked = Instant::now();
                        if position_ahead(&mut con, &cfg.stream, &pos, now_ms())? {
                            // (connected again, the check at the top catches up)
                            return Ok(Ok(()));
                        }
                    }
                    continue;
                };
                for (_, ids) in streams {
                    let Some((last, _)) = ids.last() else {
                        continue;
                    };
                    let last = last.clone();
                    let texts: Vec<String> = ids
                        .into_iter()
                        .map(|(_, kv)| {
                            kv.chunks(2)
                                .find(|c| c[0] == b"e")
                                .and_then(|c| c.get(1))
                                .map(|v| entry_text(v))
                                .unwrap_or_default()
                        })
                        .collect();
                    if process(&shared, &mut db, &tx, &texts, Some(&last)).is_err() {
                        return Ok(Err(()));
                    }
                    pos = last;
                }
            }
        })();
        shared.stats.reading.store(false, Relaxed);
        match r {
            Ok(Err(())) => return, // the engine stopped
            Ok(Ok(())) => {}
            Err(e) => {
                if !warned {
                    warn!("fleet: reader lost Redis ({e:#}); retrying with backoff");
                    warned = true;
                }
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{redacted, stream_id};

    /// Found by a review: the README's `redis+unix://…?user=…&pass=…` put the password in
    /// the start-up note and in every "cannot reach Redis" warning.
    #[test]
    fn credentials_never_reach_a_message() {
        assert_eq!(
            redacted("redis+unix:///run/redis/redis.sock?user=pc-node1&pass=s3cret&db=2"),
            "redis+unix:///run/redis/redis.sock?user=<credentials>&pass=<credentials>&db=2"
        );
        assert_eq!(
            redacted("rediss://pc:s3cret@redis.example:6380/0"),
            "rediss://<credentials>@redis.example:6380/0"
        );
        assert_eq!(redacted("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
    }

    #[test]
    fn stream_ids_compare_as_numbers() {
        assert!(stream_id("1700000000000-10") > stream_id("1700000000000-9"));
        assert!(stream_id("1700000000001-0") > stream_id("1700000000000-99"));
        assert_eq!(stream_id("0-0"), (0, 0));
    }
}

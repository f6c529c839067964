//! `portcullis run`: the daemon. One engine thread owns all state (jails, trackers, store,
//! firewall); sources, the control socket and signals talk to it over a channel.

pub(crate) mod addrs;
pub mod control;
mod fleet_apply;
pub mod fsutil;
mod names;
pub mod protocol;
mod resolver;

use crate::sys::now_ms;
use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use portcullis_core::decision::{BanReason, Decision, Millis, FOREVER};
use portcullis_core::duration;
use portcullis_core::ignore::{Cidr, IgnoreList, Reason};
use portcullis_core::jail::{Jail, Step};
use portcullis_core::policy::{self, History};
use portcullis_core::track::{self, DEFAULT_V4_PREFIX, DEFAULT_V6_PREFIX};
use tracing::{error, info, warn};

use crate::config::{self, Config, OnCorrupt};
use crate::events::{self, Event, StopKind, UnbanReason};

#[cfg(test)]
use crate::firewall::null::Null;
use crate::firewall::{Action, Firewall, FwOp, JailRules, Proto, PERMANENT};
use crate::jails;
use crate::sources::batch::Batch;
use crate::sources::file::{self as file_source, FileSources, SharedPaths};
use crate::sources::glob;
use crate::sources::journal::reader::{JournalCommand, JournalReaders};
use crate::store::{BanRecord, CorruptPolicy, Store, StoreOp};
use protocol::{BanInfo, JailStatus, Request, Response};

/// How long the ban history of an address is kept (for repeat offenders).
pub(crate) const HISTORY_DAYS: i64 = 90;

/// How often, at least, the host's own addresses are read again (milliseconds).
const OWN_REFRESH_MS: i64 = 60_000;

/// The most offenders whose open windows a batch saves with its read positions
/// ([`StoreOp::Window`]); a batch of more (a flood of distinct addresses) leaves them to the
/// minute's checkpoint ([`Engine::checkpoint_windows`]), as before.
const WINDOW_KEYS: usize = 256;

/// The most failures (rows) of those windows a batch saves with its read positions; past
/// them, as past [`WINDOW_KEYS`], the minute's checkpoint saves them.
const WINDOW_ROWS: usize = 4096;

/// How often the open windows are saved while the daemon runs ([`Engine::checkpoint_windows`]).
const CHECKPOINT_EVERY_MS: i64 = 60_000;
/// A step back of the wall clock this large or more is handled ([`Engine::clock`]); NTP
/// slews smaller errors.
const CLOCK_STEP_MS: i64 = 5_000;
/// At most this many failures of open windows are saved each minute (not under a flood).
const CHECKPOINT_MAX: usize = 20_000;

/// The most prefixes a ban is cut into around what must not be banned, when an `ignore`
/// entry or an own address inside it appears (one address inside an IPv6 /48: 80); more
/// (many such addresses scattered in it) lift the ban whole.
const MAX_NARROWED: usize = 256;

/// How many messages (batches of lines, requests) may wait for the engine: a source that
/// reads faster than the engine matches waits on a full channel, so a flood slows reading
/// and never grows memory (a batch holds at most [`crate::sources::batch::BATCH_BYTES`] of lines).
pub const ENGINE_QUEUE: usize = 16;

/// What a step of the engine changes: firewall changes to make first (the narrower elements
/// a subnet ban replaces), then the others, and the state file's.
#[derive(Default)]
struct Changes {
    fw_first: Vec<FwOp>,
    fw: Vec<FwOp>,
    store: Vec<StoreOp>,
}

/// The most line bytes the engine takes from its queue at once (batches that waited behind
/// one are processed together: one firewall change, one store transaction).
const TAKE_BYTES: usize = 16 << 20;

/// The engine's inbox, bounded ([`ENGINE_QUEUE`]).
pub type EngineTx = mpsc::SyncSender<Msg>;

/// A new bounded engine channel.
pub fn engine_channel() -> (EngineTx, Receiver<Msg>) {
    mpsc::sync_channel(ENGINE_QUEUE)
}

/// Messages to the engine.
pub enum Msg {
    /// Lines from a source.
    Lines(Batch),
    /// A control request and where to answer.
    Control(Request, Sender<Response>),
    /// SIGHUP.
    Reload,
    /// SIGTERM / SIGINT.
    Stop,
    /// A message to log.
    Note(String),
    /// journald's rate limit threw away `n` messages of `unit`, which the journal source
    /// `source` names (its "Suppressed N messages" note): logged, and shown by `status`
    /// under each jail that reads the source.
    Suppressed {
        source: String,
        unit: String,
        n: u64,
    },
    /// The host's addresses changed (an rtnetlink announcement).
    Addresses,
    /// What the host names of `ignore` resolve to now (empty: the lookup gave nothing), for
    /// the [`resolver::Names`] generation given.
    Resolved(u64, Vec<(String, Vec<IpAddr>)>),
    /// Checked entries from the fleet reader, and where to say what became of each.
    Fleet(Vec<crate::fleet::Entry>, Sender<Vec<crate::fleet::Outcome>>),
}

struct Engine {
    config_path: Option<PathBuf>,
    cfg: Config,
    jails: Vec<Jail>,
    /// Which jails read which source: made at a source's first line since the last load
    /// ([`route_of`]), kept.
    routes: HashMap<String, Vec<usize>>,
    /// One file under several names (a link and its target; a wildcard match read under
    /// another name): each line counted once per jail (see [`names`]).
    names: names::FileNames,
    /// The host's own addresses (sorted), never banned.
    own: Vec<IpAddr>,
    /// When `own` was last read.
    own_read: Millis,
    /// The host names of `ignore` the resolver thread looks up again, and how often.
    resolver: resolver::Names,
    fw: Box<dyn Firewall>,
    store: Store,
    new_paths: SharedPaths,
    /// One reader per `journal:` source, matched to the configuration at start and reload.
    journals: JournalReaders,
    /// When the ban history was last pruned.
    last_prune: Millis,
    /// When the firewall was last checked to be intact ([`Engine::check_firewall`]).
    fw_checked: Millis,
    /// The state directory's lock, held while the daemon runs (`None` in unit tests).
    state_lock: Option<std::fs::File>,
    /// When a failure of the main loop's work (the state file's writes) was last logged, and
    /// how many were not logged since: at most one line a minute.
    trouble: HashMap<&'static str, (Millis, u64)>,
    /// When the open windows were last saved ([`Engine::checkpoint_windows`]).
    windows_saved: Millis,
    /// The time at the main loop's last turn, to see the clock set back ([`Engine::clock`]).
    last_turn: Millis,
    /// The bans are still to be given again after the clock was set back ([`Engine::rearm`]).
    rearm_pending: bool,
    /// Evictions already reported per jail (DOSBAIL-style floods are reported, not fatal).
    evicted_reported: HashMap<String, u64>,
    /// Every offender's bans and manual unbans (escalation), loaded from the store at start.
    history: History,
    /// Reason and count (n-th ban) of each active ban, by (jail, target).
    meta: HashMap<(String, Cidr), (BanReason, u32)>,
    /// The `deny` entries in the firewall now (jail [`config::DENY_JAIL`]).
    denied: Vec<Cidr>,
    /// Random state for the ban jitter.
    rng: u64,
    /// Per jail: failure rate and the last `flood` event.
    floods: HashMap<String, FloodState>,
    /// Per jail and kind of refusal (false: a line its transport may have cut; true: a piece
    /// of a message its program split): the matches refused already reported, and when.
    cuts_reported: HashMap<(String, bool), (u64, Millis)>,
    /// Per journal source and unit: the messages journald's rate limit suppressed since
    /// start, and when it last said so ([`Msg::Suppressed`]).
    suppressed: HashMap<(String, String), (u64, Millis)>,
    /// Matched lines too old to count (`Step::Stale`) not yet reported: how many, the first
    /// (jail, address, its time); and when the last report was made.
    stale: (u64, Option<(String, IpAddr, Millis)>, Millis),
    /// Where counted failures' lines are kept for notifications (when any is configured).
    evidence: Option<crate::notify::EvidenceHook>,
    /// Prometheus metrics (`[metrics]`), when configured.
    metrics: Option<crate::metrics::Metrics>,
    /// Failure counts for `portcullis report` (stats.db, written by its own thread).
    stats: Option<crate::report::Stats>,
    /// Shared bans (`[fleet]`), when configured and started.
    fleet: Option<Arc<crate::fleet::Shared>>,
}

/// What the engine knows of a jail's flood (DOSBAIL) state.
#[derive(Debug, Clone, Copy, Default)]
struct FloodState {
    /// Start of the current interval.
    since: Millis,
    /// Failures counted in it.
    count: u64,
    /// Failures counted in the interval before.
    prev: u64,
    /// When the last `flood` event was emitted.
    last_event: Option<Millis>,
    /// When the flood began: the first `flood` event after two quiet intervals.
    started: Option<Millis>,
}

/// A matched-line rate this many times the last interval's is a flood...
const FLOOD_RATE_JUMP: u64 = 10;
/// ... if it is at least this many failures per interval.
const FLOOD_RATE_FLOOR: u64 = 10_000;

/// How long one `flood` event per jail covers: at most one per interval.
const FLOOD_INTERVAL_MS: Millis = 60_000;

/// A firewall timeout for a ban that ends at `until`.
fn fw_timeout(until: Millis, now: Millis) -> i64 {
    if until == FOREVER {
        PERMANENT
    } else {
        until - now
    }
}

/// The `deny` list to ban: entries covered by another entry are dropped (interval sets
/// refuse overlaps), and an entry that holds one of the host's own addresses, or overlaps
/// the `ignore` list, is cut around them (as a ban is), each with a warning in the second
/// list: the host's addresses change (DHCP, a new interface) and a host name of `ignore` can
/// come to resolve into an entry, so this is not a configuration error that stops the
/// daemon, but the own and ignored addresses win. (Dropped whole, one A record lifted a
/// whole deny prefix, review 29.) An entry that would take more than [`MAX_NARROWED`]
/// pieces is not banned.
pub(crate) fn deny_targets(cfg: &Config, own: &[IpAddr]) -> (Vec<Cidr>, Vec<String>) {
    let mut skipped = Vec::new();
    let mut v: Vec<Cidr> = Vec::new();
    for &c in &cfg.deny.cidrs {
        let why = if let Some(a) = own.iter().find(|a| c.contains(**a)) {
            format!("it holds {a}, one of this host's own addresses")
        } else if let Some(i) = cfg.ignore.iter().find(|i| c.overlaps(i)) {
            // (an entry over an ignored address is an error at load; a host name of
            // `ignore` can come to resolve into one while the daemon runs)
            format!("it overlaps {i} of the `ignore` list")
        } else {
            v.push(c);
            continue;
        };
        // what is left out: the ignore list's entries and the host's own addresses, an IPv6
        // one with its /64 (the host's privacy addresses come and go there: cut around each,
        // four of them in a /48 took more than MAX_NARROWED pieces and the whole /48 went
        // unbanned, review 30)
        // (the /64 only for an entry wider than it: a narrower one, a neighbour's range in
        // the host's own /64, is cut around the address alone, review 31)
        let regions: Vec<Cidr> = own
            .iter()
            .map(|&a| {
                let a = portcullis_core::addr::normalise(a);
                let len = if a.is_ipv4() {
                    32
                } else if c.len < 64 {
                    64
                } else {
                    128
                };
                Cidr::new(a, len).expect("a valid length")
            })
            .chain(cfg.ignore.iter().copied())
            .collect();
        match policy::split_around(c, |p| policy::Part::against(p, &regions), MAX_NARROWED) {
            Some(parts) if !parts.is_empty() => {
                skipped.push(format!(
                    "`deny`: {c} is banned around what it must not hold ({why}): {}",
                    parts
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
                v.extend(parts);
            }
            Some(_) => skipped.push(format!("`deny`: {c} is not banned: {why}")),
            None => skipped.push(format!(
                "`deny`: {c} is not banned: {why}, and cut around all it must not hold it would take more than {MAX_NARROWED} prefixes"
            )),
        }
    }
    v.sort_by_key(|c| c.len);
    let mut out: Vec<Cidr> = Vec::new();
    for c in v {
        if !out.iter().any(|o| o.covers(&c)) {
            out.push(c);
        }
    }
    out.sort();
    (out, skipped)
}

impl Engine {
    /// The engine for `cfg`, its jails built, no source read yet.
    fn new(
        config_path: Option<&Path>,
        cfg: Config,
        own: Vec<IpAddr>,
        fw: Box<dyn Firewall>,
        store: Store,
        journal: JournalCommand,
        tx: EngineTx,
    ) -> Engine {
        let mut own = own;
        own.sort();
        own.dedup();
        let mut e = Engine {
            config_path: config_path.map(Path::to_path_buf),
            jails: cfg
                .jails
                .iter()
                .map(|j| jails::build_jail(&cfg, j, &own))
                .collect(),
            routes: HashMap::new(),
            names: names::FileNames::default(),
            journals: JournalReaders::new(journal, cfg.state_dir.clone(), tx)
                .max_line(cfg.max_line),
            own,
            own_read: now_ms(),
            resolver: resolver::Names::default(),
            fw,
            store,
            new_paths: Arc::new(Mutex::new(None)),
            evicted_reported: HashMap::new(),
            history: History::new(),
            meta: HashMap::new(),
            denied: Vec::new(),
            rng: {
                use std::hash::{BuildHasher, Hasher};
                let mut h = std::collections::hash_map::RandomState::new().build_hasher();
                h.write_u64(now_ms() as u64);
                h.finish() | 1
            },
            floods: HashMap::new(),
            cuts_reported: HashMap::new(),
            suppressed: HashMap::new(),
            stale: (0, None, 0),
            evidence: None,
            metrics: None,
            stats: None,
            fleet: None,
            last_prune: i64::MIN / 2,
            fw_checked: 0,
            state_lock: None,
            trouble: HashMap::new(),
            windows_saved: now_ms(),
            last_turn: now_ms(),
            rearm_pending: false,
            cfg,
        };
        // random hash seeds for the flood sketches: nobody can aim collisions
        for i in 0..e.jails.len() {
            let seed = e.jitter();
            e.jails[i].tracker_mut().set_seed(seed);
        }
        e
    }
}

/// Why a ban of `ban` must not stand: `ignore` (the jail's list: global and jail `ignore`,
/// loopback, and the host's addresses when `ignore_self`) or one of the host's addresses
/// `own`, which are never banned whatever `ignore_self` says. `None` when it may stand.
/// The word goes in the `unban` line: `loopback`, `own-address` or `ignore:<prefix>`.
fn lift_reason(ignore: &IgnoreList, own: &[IpAddr], ban: Cidr) -> Option<String> {
    match ignore.check_prefix(ban) {
        Some(Reason::Loopback) => Some("loopback".into()),
        Some(Reason::Own) => Some("own-address".into()),
        Some(Reason::Listed(c)) => Some(format!("ignore:{}/{}", c.addr, c.len)),
        None if own.iter().any(|&a| ban.contains(a)) => Some("own-address".into()),
        None => None,
    }
}

/// What keeps banning the rest of a prefix ban that `lift_reason` lifts, said in the log:
/// the widest prefixes inside it that hold nothing protected, as a ban made now would be
/// narrowed. Lifted whole, an `ignore` entry for one address freed every offender of the
/// /24 (a review found). Nothing for a single address, for a prefix all protected, and for
/// one that would take more than [`MAX_NARROWED`] prefixes (said too).
fn narrowed(ignore: &IgnoreList, own: &[IpAddr], ban: Cidr, reason: &str, jail: &str) -> Vec<Cidr> {
    if ban.is_host() {
        return Vec::new();
    }
    // (what `lift_reason` refuses to overlap)
    let mut regions = ignore.regions();
    regions.extend(own.iter().map(|&a| Cidr::host(a)));
    match policy::split_around(ban, |p| policy::Part::against(p, &regions), MAX_NARROWED) {
        Some(parts) if !parts.is_empty() => {
            info!(
                "ban {ban} jail={jail} narrowed around {reason}: {} go on banning the rest of it until it ends",
                parts
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            parts
        }
        Some(_) => Vec::new(),
        None => {
            warn!("ban {ban} jail={jail} lifted whole: what it holds that must not be banned ({reason} and more) would cut it into more than {MAX_NARROWED} prefixes");
            Vec::new()
        }
    }
}

fn jail_rules(cfg: &Config) -> Vec<JailRules> {
    // the `deny` list: every port, every protocol
    let deny = JailRules {
        name: config::DENY_JAIL.into(),
        ports: None,
        proto: Proto::Both,
        action: Action::Drop,
        // the default backends (`[firewall] backend`)
        backends: Vec::new(),
    };
    cfg.jails
        .iter()
        .map(|j| JailRules {
            name: j.name.clone(),
            ports: j.ports.clone(),
            proto: match j.protocol.as_str() {
                "udp" => Proto::Udp,
                "both" => Proto::Both,
                _ => Proto::Tcp,
            },
            action: if j.action == "reject" {
                Action::Reject
            } else {
                Action::Drop
            },
            backends: j.backends.clone(),
        })
        .chain(std::iter::once(deny))
        .collect()
}

/// The kernel rate limits of `cfg`, exempting loopback, the host's own addresses and the
/// global `ignore` list.
fn ratelimits(cfg: &Config, own: &[IpAddr]) -> crate::firewall::ratelimit::RateLimits {
    let mut exempt: Vec<(IpAddr, u8)> = vec![
        (IpAddr::from([127, 0, 0, 0]), 8),
        (IpAddr::from(std::net::Ipv6Addr::LOCALHOST), 128),
    ];
    exempt.extend(own.iter().map(|a| {
        (
            a.to_canonical(),
            if a.to_canonical().is_ipv4() { 32 } else { 128 },
        )
    }));
    exempt.extend(cfg.ignore.iter().map(|c| (c.addr, c.len)));
    exempt.sort();
    exempt.dedup();
    crate::firewall::ratelimit::RateLimits {
        limits: cfg.ratelimits.clone(),
        exempt,
    }
}

/// The log sources of the jails, sorted, without duplicates: those read through journald
/// (`journal:` sources), else files.
fn log_sources(cfg: &Config, journal: bool) -> Vec<String> {
    let mut v: Vec<String> = cfg
        .jails
        .iter()
        .flat_map(|j| j.logs.iter())
        .filter(|l| l.starts_with("journal:") == journal)
        .cloned()
        .collect();
    v.sort();
    v.dedup();
    v
}

fn journal_sources(cfg: &Config) -> Vec<String> {
    log_sources(cfg, true)
}

/// The files to follow: plain paths, and the files wildcard paths match now (over the cap,
/// the files of `followed`, the paths with read positions, first).
fn file_paths(cfg: &Config, followed: &std::collections::HashSet<PathBuf>) -> FileSources {
    let mut out = FileSources::default();
    for l in log_sources(cfg, false) {
        if glob::is_glob(&l) {
            out.paths
                .extend(glob::expand_preferring(&l, &|p| followed.contains(p)));
            out.globs.push(l);
        } else {
            out.paths.push(PathBuf::from(l));
        }
    }
    out.paths.sort();
    out.paths.dedup();
    for j in &cfg.jails {
        for l in j.logs.iter().filter(|l| !l.starts_with("journal:")) {
            out.readers
                .entry(l.clone())
                .or_default()
                .push(j.name.clone());
        }
    }
    out
}

/// The files a jail's file sources name now (wildcards expanded), each with whether this
/// process can read it: open it, or reads it through a descriptor held (`held`).
fn jail_files(
    j: &crate::config::JailConfig,
    held: &std::collections::HashSet<String>,
) -> Vec<(String, bool)> {
    let mut out = Vec::new();
    for l in j.logs.iter().filter(|l| !l.starts_with("journal:")) {
        let paths = if glob::is_glob(l) {
            glob::expand(l)
        } else {
            vec![PathBuf::from(l)]
        };
        for p in paths {
            // a regular file, opened as the follower opens it: nothing else is ever opened
            // (a FIFO must not stop the engine thread, which this runs on for `status`; a
            // pty must not become the daemon's terminal)
            let name = p.display().to_string();
            let readable = held.contains(&name) || file_source::open_regular(&p).is_ok();
            out.push((name, readable));
        }
    }
    out
}

/// What `status` must say loudly about a jail's sources: a jail with no readable source
/// (no readable file, and no journal or no journald to serve it) sees nothing, and protects
/// nothing.
pub(crate) fn source_warnings(
    j: &crate::config::JailConfig,
    held: &std::collections::HashSet<String>,
) -> Vec<String> {
    let journald = Path::new(crate::sources::journal::JOURNALD_SOCKET).exists();
    let files = jail_files(j, held);
    let mut w = source_warnings_with(j, &files, journald);
    // (read through the descriptor held, but a restart would not open it)
    for (f, _) in files.iter().filter(|(f, _)| held.contains(f)) {
        if file_source::open_regular(Path::new(f)).is_err() {
            w.push(format!(
                "{f} can no longer be opened (its mode or owner changed?): read on through the descriptor open since before, but a restart will not read it"
            ));
        }
    }
    w
}

/// The loud one of [`source_warnings`] for each jail that can read nothing now, as
/// `jail NAME: ...` (said at start and by check-config, not only by `status`).
pub(crate) fn blind_jails(cfg: &Config) -> Vec<String> {
    cfg.jails
        .iter()
        .filter_map(|j| {
            let w = source_warnings(j, &std::collections::HashSet::new());
            w.first()
                .is_some_and(|x| x.starts_with("NO READABLE LOG SOURCE"))
                .then(|| format!("jail {}: {}", j.name, w.join("; ")))
        })
        .collect()
}

/// [`source_warnings`] for these files (path, readable) and whether journald runs.
fn source_warnings_with(
    j: &crate::config::JailConfig,
    files: &[(String, bool)],
    journald: bool,
) -> Vec<String> {
    let journals = j.logs.iter().any(|l| l.starts_with("journal:"));
    let mut w: Vec<String> = files
        .iter()
        .filter(|(_, ok)| !ok)
        .map(|(f, _)| match std::fs::metadata(f) {
            Ok(m) if !m.is_file() => format!("cannot read {f}: not a regular file"),
            _ => format!("cannot read {f} (missing or no permission)"),
        })
        .collect();
    if journals && !journald {
        w.push(format!(
            "journald is not running ({} is missing): the journal sources give nothing until it starts",
            crate::sources::journal::JOURNALD_SOCKET
        ));
    }
    let journal_read = journals && journald;
    let file_read = files.iter().any(|(_, ok)| *ok);
    if !journal_read && !file_read {
        w.insert(
            0,
            "NO READABLE LOG SOURCE: this jail sees nothing and bans nobody".to_string(),
        );
    }
    w
}

/// The jails that read source `src`: those that name it, and those whose wildcard matches it.
fn route_of(cfg: &Config, src: &str) -> Vec<usize> {
    cfg.jails
        .iter()
        .enumerate()
        .filter(|(_, j)| {
            j.logs
                .iter()
                .any(|l| l == src || (glob::is_glob(l) && glob::matches(l, src)))
        })
        .map(|(i, _)| i)
        .collect()
}

/// Whether two paths name the same place (the state directory is kept resolved).
fn same_dir_path(a: &Path, b: &Path) -> bool {
    a == b
        || match (a.canonicalize(), b.canonicalize()) {
            (Ok(x), Ok(y)) => x == y,
            _ => false,
        }
}

/// Runs the daemon in the foreground until SIGTERM.
pub fn run(config_path: Option<&Path>, log_level: Option<&str>) -> Result<i32> {
    let mut cfg = Config::load(config_path)?;
    let level = log_level.unwrap_or(&cfg.log_level);
    crate::logging::init(crate::logging::parse_level(level).unwrap_or(tracing::Level::INFO));
    for w in config::warnings(&cfg).into_iter().chain(blind_jails(&cfg)) {
        warn!("{w}");
    }
    crate::sys::raise_open_files();
    // refused unless only this user can write there (see fsutil); the resolved path from here on
    cfg.state_dir = fsutil::prepare_state_dir(&cfg.state_dir)?;
    // held until the daemon ends: no second daemon, no offline unban beside it
    let state_lock = fsutil::lock_state_within(&cfg.state_dir, Duration::from_secs(5))?;
    let policy = match cfg.on_corrupt_state {
        OnCorrupt::Refuse => CorruptPolicy::Refuse,
        OnCorrupt::MoveAside => CorruptPolicy::MoveAside,
    };
    let store = Store::open(&cfg.state_dir.join("portcullis.db"), policy)?;
    for n in store.notes() {
        error!("{n}");
    }
    // the socket and the firewall are claimed before the firewall is touched: a second
    // daemon (another configuration, the same socket or the same nftables table) is refused
    // before its setup could drop the running daemon's sets (a review found it did)
    let socket = control::bind(&cfg.socket, cfg.socket_group.as_deref())?;
    let _table_claim = claim_table(&cfg)?;
    let fw = crate::firewall::router::build(&cfg)?;
    // metrics: subscribed before the restore; their own thread; the firewall's batches timed
    let metrics = crate::metrics::start_logged(cfg.metrics.as_ref());
    let fw = match &metrics {
        Some(m) => m.timed(fw),
        None => fw,
    };
    // notifications: their own thread and queue file; never in the way of a ban
    let notifier = crate::notify::start_logged(&cfg.notify, &cfg.state_dir);
    let (tx, rx) = engine_channel();
    let mut eng = Engine::new(
        config_path,
        cfg,
        // (an error stops the start: without them, the host's own addresses could be banned)
        addrs::own()?,
        fw,
        store,
        JournalCommand::default(),
        tx.clone(),
    );
    eng.state_lock = Some(state_lock);
    eng.evidence = notifier.as_ref().map(crate::notify::Notifier::evidence);
    eng.metrics = metrics;
    // statistics for `portcullis report`: their own file and thread; never in the way of a ban
    eng.stats = crate::report::Stats::start(&eng.cfg.state_dir, eng.cfg.stats_retention)
        .map_err(|e| error!("statistics off (portcullis report): {e:#}"))
        .ok();
    let positions = eng.store.positions()?;
    let followed = positions.iter().map(|c| PathBuf::from(&c.path)).collect();
    let files = file_paths(&eng.cfg, &followed);
    let follower = file_source::open_files(&files, positions, eng.cfg.max_line)
        .context("cannot start the file follower")?;
    eng.fw
        .set_ratelimits(&ratelimits(&eng.cfg, &eng.own))
        .context("[[ratelimit]]")?;
    // (before the setup, which drops the sets of jails no longer configured: their bans are
    // kept in the state file as such, review 63)
    eng.adopt_kernel_bans(now_ms());
    eng.fw
        .setup(&jail_rules(&eng.cfg))
        .context("cannot set up the firewall")?;
    // (the deny list too)
    eng.restore()?;
    for t in leftover_tables(&eng.cfg)
        .into_iter()
        .chain(leftover_backends(&eng.cfg))
    {
        warn!("{t}");
    }
    // shared bans: their own threads, connections and state file; Redis down never stops
    // local banning, and a fleet that cannot start is logged, not fatal
    if let Some(fc) = eng.cfg.fleet.clone() {
        // (with whether each is a fleet peer's, as the state file says: never published as
        // this node's own, review 54)
        let meta = &eng.meta;
        let active: Vec<(Cidr, String, u32, Millis, bool)> = eng
            .jails
            .iter()
            .flat_map(|j| {
                j.tracker().bans().map(|(a, until)| {
                    let fleet = matches!(
                        meta.get(&(j.name().to_string(), a)),
                        Some((BanReason::Fleet, _))
                    );
                    (a, j.name().to_string(), 0, until, fleet)
                })
            })
            .collect();
        match crate::fleet::start(fc, &eng.cfg.state_dir, tx.clone(), &active) {
            Ok(f) => {
                if let Some(m) = &eng.metrics {
                    m.set_fleet(f.clone());
                }
                eng.fleet = Some(f);
            }
            Err(e) => error!("fleet: cannot start, bans are not shared: {e:#}"),
        }
    }
    // the restore's temporary vectors and nft script are gone; without this RSS keeps
    // their peak
    crate::sys::trim_heap();

    {
        let tx = tx.clone();
        let listener = socket.listener.try_clone()?;
        std::thread::spawn(move || control::serve(listener, tx));
    }
    let socket: control::Kept = Arc::new(Mutex::new(Some(socket)));
    if let Err(e) = control::keep(socket.clone(), eng.cfg.socket_group.clone(), tx.clone()) {
        warn!("cannot watch the control socket ({e}); a socket file removed by hand stays gone until a restart");
    }
    let stop_asked = Arc::new(AtomicBool::new(false));
    spawn_signals(tx.clone(), stop_asked.clone())?;
    if let Err(e) = addrs::watch(tx.clone()) {
        warn!(
            "cannot watch address changes ({e}); own addresses are read again each minute and \
             at reload"
        );
    }
    eng.resolver
        .set(eng.cfg.ignore_list.names(), eng.cfg.ignore_refresh);
    if let Err(e) = resolver::start(eng.resolver.clone(), tx.clone()) {
        warn!("cannot start the resolver thread ({e}); the host names of `ignore` are looked up at reload only");
    }
    {
        let tx = tx.clone();
        let np = eng.new_paths.clone();
        let globs = files.globs;
        std::thread::spawn(move || file_source::follow_files(follower, globs, np, tx));
    }
    eng.journals.reconcile(&journal_sources(&eng.cfg));
    events::emit(&Event::Started {
        jails: eng.jail_names(),
        socket: eng.cfg.socket.clone(),
        // (every backend in use, the jails' own too: the `[firewall]` one alone was named)
        firewall: crate::firewall::router::used(&eng.cfg).join(","),
    });
    // Type=notify: ready once the firewall is set up and the bans are restored
    if let Err(e) = crate::sys::sd_notify("READY=1") {
        warn!("cannot tell systemd that the daemon is ready: {e}");
    }
    let code = eng.main_loop(&rx, &stop_asked);
    let _ = crate::sys::sd_notify("STOPPING=1");
    if let Some(s) = eng.stats.take() {
        s.shutdown(Duration::from_secs(2));
    }
    if let Some(n) = notifier {
        n.shutdown(Duration::from_secs(2));
    }
    if let Some(s) = socket.lock().expect("control socket lock").take() {
        s.remove();
    }
    // each journal reader saves the cursor of the last entry the engine processed
    eng.journals.stop_all();
    code
}

/// Claims what the firewall backends of `cfg` own in this network namespace for this
/// daemon: the nftables table, the iptables chain (ipset's rules are in it too), the route
/// protocol number, the hosts.deny file. Each claim is an abstract Unix socket named after
/// it (abstract names belong to the network namespace, as tables, chains and routes do, and
/// go away with the process). Two daemons with different configurations on one table
/// rebuilt each other's sets; on one chain, one route protocol or one hosts.deny file, the
/// second's start wiped the first's bans (review 56: they came back only with the first's
/// minute check, or not at all). A hosts.deny file is one file whatever the namespace: its
/// lock is taken across namespaces, by the file's directory and name ([`hosts_deny_id`];
/// stop 46 left it per namespace).
fn claim_table(cfg: &Config) -> Result<Vec<Claim>> {
    let used = crate::firewall::router::used(cfg);
    let b = &cfg.firewall.backends;
    let mut claims = Vec::new();
    for (backends, name, what, fix) in [
        (
            &["nftables"][..],
            format!("portcullis/nftables/inet/{}", cfg.firewall.table),
            format!("the nftables table inet {}", cfg.firewall.table),
            "set [firewall] table to another name to run a second one",
        ),
        (
            // (ipset's rules are in the chain too: one claim for both)
            &["iptables", "ipset"][..],
            format!("portcullis/iptables/{}", b.iptables.chain),
            format!("the iptables chain {}", b.iptables.chain),
            "set [firewall.iptables] chain to another name to run a second one",
        ),
        (
            &["route"][..],
            format!("portcullis/route/{}", b.route.proto),
            format!("the route protocol {}", b.route.proto),
            "set [firewall.route] proto to another number to run a second one",
        ),
        (
            &["hosts-deny"][..],
            format!("{HOSTS_DENY_CLAIM}{}", hosts_deny_id(&b.hosts_deny.path)),
            format!("the file {}", b.hosts_deny.path.display()),
            "set [firewall.hosts_deny] path to another file to run a second one",
        ),
    ] {
        if used.iter().any(|u| backends.contains(&u.as_str())) {
            if let Some(l) = claim(&name, &what, fix)? {
                claims.push(l);
            }
        }
    }
    Ok(claims)
}

/// What names a hosts.deny file in its claim, the same from every namespace: its
/// directory's (device, inode) and its name, resolved. (Not its path: a copy of /etc
/// bind-mounted over /etc in a mount namespace of its own is another file of the same
/// path; nor its inode, which each rewrite changes.)
fn hosts_deny_id(path: &Path) -> String {
    use std::os::unix::fs::MetadataExt;
    let resolved = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let name = resolved
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    match resolved.parent().and_then(|d| std::fs::metadata(d).ok()) {
        Some(m) => format!("{}:{}/{name}", m.dev(), m.ino()),
        None => resolved.display().to_string(),
    }
}

/// Takes the abstract socket `name` (see [`claim_table`]): None when a process that is not
/// a daemon of this user holds it (going on without it, with a warning); an error when a
/// daemon of this user does.
fn claim(name: &str, what: &str, fix: &str) -> Result<Option<Claim>> {
    use std::os::linux::net::SocketAddrExt;
    let lock = lock_claim(name).map_err(|()| {
        let place = if name.starts_with(HOSTS_DENY_CLAIM) {
            "(from this network namespace or another)"
        } else {
            "in this network namespace"
        };
        anyhow::anyhow!("another portcullis daemon already uses {what} {place} ({fix})")
    })?;
    // (an abstract name is at most 107 bytes: a long hosts.deny path is cut, its end kept)
    let bytes = name.as_bytes();
    let bytes = &bytes[bytes.len().saturating_sub(100)..];
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(bytes)?;
    match std::os::unix::net::UnixListener::bind_addr(&addr) {
        Ok(l) => {
            drain_claim(&l);
            Ok(Some(Claim(Some(l), lock)))
        }
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
            // abstract names have no permissions: anyone may take the name first. Only a
            // holder running as this daemon's user (root) is another daemon; a squatter
            // must not keep the daemon from starting (a review found that it could)
            let holder = match probe_claim(bytes) {
                Probe::Held(uid) => uid,
                Probe::Free => None,
            };
            // SAFETY: geteuid has no preconditions.
            let me = unsafe { libc::geteuid() };
            if holder == Some(me) {
                anyhow::bail!(
                    "another portcullis daemon already uses {what} in this network namespace ({fix})"
                );
            }
            warn!(
                "the claim of {what} is held by {}, not by a portcullis daemon: going on without it{}",
                holder.map_or("an unknown process".to_string(), |u| format!("uid {u}")),
                if lock.is_some() {
                    " (a second daemon is still refused: the lock under /run/portcullis/claims is this daemon's)"
                } else {
                    ""
                }
            );
            Ok(lock.map(|f| Claim(None, Some(f))))
        }
        Err(e) => Err(e).with_context(|| format!("cannot claim {what}")),
    }
}

/// The nftables tables Portcullis made in this network namespace that this daemon does not
/// use and no running daemon holds ([`claim_table`]), each as a warning: a `[firewall]
/// table` renamed, a backend changed (a dry run with `null` too) while the old table was
/// kept at the stop (`keep_bans_on_stop`), or a second daemon that is stopped. Their bans
/// still block, and nothing of this daemon lifts them (a review found an old table dropping
/// an address after the deny list no longer named it). Read with `nft -t list chains`,
/// which reads no set element; nothing when nft cannot be run.
fn leftover_tables(cfg: &Config) -> Vec<String> {
    let ours = crate::firewall::router::used(cfg)
        .iter()
        .any(|b| b == "nftables")
        .then_some(cfg.firewall.table.as_str());
    let Ok(out) = std::process::Command::new("nft")
        .args(["-t", "list", "chains", "inet"])
        .env("LC_ALL", "C")
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
    else {
        return Vec::new();
    };
    let text = String::from_utf8_lossy(&out.stdout);
    crate::firewall::nftables::marked_tables(&text)
        .into_iter()
        .filter(|t| Some(t.as_str()) != ours)
        .filter(|t| {
            let name = format!("portcullis/nftables/inet/{t}");
            !held_by_a_daemon(name.as_bytes())
        })
        .map(|t| {
            format!(
                "the nftables table inet {t}, made by Portcullis, is still in the kernel and no running daemon uses it (a `[firewall] table` renamed or a backend changed while it was kept at the stop, or another daemon that is stopped): its bans still block, and this daemon does not lift them; `nft delete table inet {t}` removes it"
            )
        })
        .collect()
}

/// What the other backends made that this daemon does not use now and no running daemon
/// holds ([`claim_table`]), each as a warning with the commands that remove it: the
/// iptables chain (iptables, ipset), the routes of the route protocol, the hosts.deny
/// block, as the configuration names them. Their bans block for good (no kernel timeout),
/// and an `unban` here no longer reaches them (review 56: a backend changed from route to
/// nftables left a blackhole route of the gateway, and `unban` answered "unbanned").
fn leftover_backends(cfg: &Config) -> Vec<String> {
    let used = crate::firewall::router::used(cfg);
    let uses = |b: &str| used.iter().any(|u| u == b);
    let held = |name: String| {
        let bytes = name.as_bytes();
        let bytes = &bytes[bytes.len().saturating_sub(100)..];
        held_by_a_daemon(bytes)
    };
    let run = |program: &str, args: &[&str]| -> Option<String> {
        let out = std::process::Command::new(program)
            .args(args)
            .env("LC_ALL", "C")
            .stdin(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let b = &cfg.firewall.backends;
    let mut w = Vec::new();
    let chain = b.iptables.chain.as_str();
    if !uses("iptables") && !uses("ipset") && !held(format!("portcullis/iptables/{chain}")) {
        for tool in ["iptables", "ip6tables"] {
            let Some(rules) = run(tool, &["-w", "-S", chain]) else {
                continue;
            };
            let n = rules
                .lines()
                .filter(|l| l.starts_with(&format!("-A {chain} ")))
                .count();
            if n > 0 {
                w.push(format!(
                    "the {tool} chain {chain}, made by Portcullis, still holds {n} rule(s) and no running daemon uses it (the backend changed while it was kept at the stop): its bans still block, for good, and this daemon does not lift them; `{tool} -F {chain}` empties it (then remove its jumps and `{tool} -X {chain}`)"
                ));
            }
        }
    }
    let proto = b.route.proto.to_string();
    if !uses("route") && !held(format!("portcullis/route/{proto}")) {
        let n: usize = [["-4"], ["-6"]]
            .iter()
            .filter_map(|v| {
                run(
                    "ip",
                    &[v[0], "route", "show", "table", "all", "proto", &proto],
                )
            })
            .map(|t| t.lines().filter(|l| !l.trim().is_empty()).count())
            .sum();
        if n > 0 {
            w.push(format!(
                "{n} route(s) of protocol {proto}, made by Portcullis, are still in the kernel and no running daemon uses them (the route backend was left while they were kept at the stop): they still drop their addresses, for good, and this daemon does not lift them; `ip route flush proto {proto}` and `ip -6 route flush proto {proto}` remove them"
            ));
        }
    }
    let path = &b.hosts_deny.path;
    if !uses("hosts-deny") && !held(format!("portcullis/hosts-deny/{}", path.display())) {
        if let Ok(text) = std::fs::read_to_string(path) {
            let inside = text
                .lines()
                .skip_while(|l| l.trim_end() != crate::firewall::hosts_deny::BEGIN)
                .skip(1)
                .take_while(|l| l.trim_end() != crate::firewall::hosts_deny::END)
                .filter(|l| !l.trim().is_empty())
                .count();
            if inside > 0 {
                w.push(format!(
                    "{} still holds Portcullis' block of {inside} line(s) and no daemon in this network namespace uses it (the hosts-deny backend was left while it was kept at the stop; or a daemon in another namespace or container that shares the file uses it): those clients are still refused, for good, and this daemon does not lift them; delete the lines from \"{}\" to \"{}\"",
                    path.display(),
                    crate::firewall::hosts_deny::BEGIN,
                    crate::firewall::hosts_deny::END
                ));
            }
        }
    }
    w
}

/// What a daemon holds of a claim for as long as it runs: the abstract socket (which other
/// daemons probe) and the lock file (which no other user can take).
struct Claim(
    #[allow(dead_code)] Option<std::os::unix::net::UnixListener>,
    #[allow(dead_code)] Option<std::fs::File>,
);

/// The directory of the claims' lock files: root's, writable by root only, so that no
/// other user can take a claim first (an abstract socket name can be: a squatter turned off
/// the refusal of a second daemon, review 58).
const CLAIMS_DIR: &str = "/run/portcullis/claims";

/// The start of the claim of a hosts.deny file, whose lock is the same in every network
/// namespace.
const HOSTS_DENY_CLAIM: &str = "portcullis/hosts-deny/";

/// Takes the lock of claim `name` in this network namespace (a file under [`CLAIMS_DIR`]
/// named after the namespace's inode and the claim, `flock`ed). Err(()) when another
/// process holds it: a daemon (only root writes there). Ok(None) when the directory cannot
/// be made or is not root's alone (a daemon that is not root; the abstract socket alone
/// claims then).
fn lock_claim(name: &str) -> std::result::Result<Option<std::fs::File>, ()> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt};
    let Ok(ns) = std::fs::metadata("/proc/self/ns/net").map(|m| m.ino()) else {
        return Ok(None);
    };
    let _ = std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(CLAIMS_DIR);
    match std::fs::symlink_metadata(CLAIMS_DIR) {
        Ok(m) if m.is_dir() && m.uid() == 0 && m.mode() & 0o022 == 0 => {}
        _ => return Ok(None),
    }
    let file: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let file = &file[file.len().saturating_sub(180)..];
    let scope = if name.starts_with(HOSTS_DENY_CLAIM) {
        "file".to_string()
    } else {
        ns.to_string()
    };
    let path = std::path::Path::new(CLAIMS_DIR).join(format!("{scope}-{file}"));
    match fsutil::try_lock(&path) {
        Ok(Some(f)) => Ok(Some(f)),
        Ok(None) => Err(()),
        // (no lock to be had there: the abstract name alone claims)
        Err(_) => Ok(None),
    }
}

/// Whether a claim's abstract name is bound, and the user of the process that holds it when
/// that can be read.
enum Probe {
    Free,
    Held(Option<u32>),
}

/// Looks at the claim `name` (an abstract Unix socket name) without ever waiting: the
/// connect is non-blocking, so a holder whose queue is full (a squatter's `listen(0)`, or
/// probes nobody accepted) answers "held" at once; a blocking connect hung the start for
/// ever there (review 57).
fn probe_claim(name: &[u8]) -> Probe {
    use rustix::net::{AddressFamily, SocketAddrUnix, SocketFlags, SocketType};
    let Ok(addr) = SocketAddrUnix::new_abstract_name(name) else {
        return Probe::Free;
    };
    let Ok(fd) = rustix::net::socket_with(
        AddressFamily::UNIX,
        SocketType::STREAM,
        SocketFlags::NONBLOCK | SocketFlags::CLOEXEC,
        None,
    ) else {
        return Probe::Free;
    };
    match rustix::net::connect(&fd, &addr) {
        Ok(()) => Probe::Held(peer_uid(&std::os::unix::net::UnixStream::from(fd))),
        Err(rustix::io::Errno::AGAIN) | Err(rustix::io::Errno::INPROGRESS) => Probe::Held(None),
        Err(_) => Probe::Free,
    }
}

/// Whether the claim `name` is held by a process of this daemon's user: another daemon (a
/// squatter of another user hid the leftovers a claim stands for, review 58).
fn held_by_a_daemon(name: &[u8]) -> bool {
    // SAFETY: geteuid has no preconditions.
    let me = unsafe { libc::geteuid() };
    matches!(probe_claim(name), Probe::Held(Some(u)) if u == me)
}

/// Accepts and drops what connects to a claim (another daemon's or a start's look at it),
/// on a thread of its own, so that such looks never fill its queue (they did: the starts
/// after some 4,096 of them hung, review 57).
fn drain_claim(l: &std::os::unix::net::UnixListener) {
    let Ok(l) = l.try_clone() else { return };
    let _ = std::thread::Builder::new()
        .name("claim".into())
        .spawn(move || {
            for c in l.incoming() {
                drop(c);
            }
        });
}

/// The user id of the process at the other end of a Unix socket (SO_PEERCRED).
fn peer_uid(s: &std::os::unix::net::UnixStream) -> Option<u32> {
    use std::os::fd::AsRawFd;
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: a valid socket descriptor, and a buffer of the size given.
    let r = unsafe {
        libc::getsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    (r == 0).then_some(cred.uid)
}

/// SIGHUP reloads, SIGTERM and SIGINT stop. A stop is also said through `stop_asked`,
/// which the engine looks at at every turn: [`Msg::Stop`] waits in the engine's bounded
/// queue behind the batches of lines, and a backlog read at a start kept it there for
/// minutes (review 18; systemd kills a unit that takes over 90 s to stop).
fn spawn_signals(tx: EngineTx, stop_asked: Arc<AtomicBool>) -> Result<()> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGHUP, SIGINT, SIGTERM])?;
    std::thread::spawn(move || {
        for s in signals.forever() {
            let m = if s == SIGHUP {
                Msg::Reload
            } else {
                stop_asked.store(true, Ordering::SeqCst);
                Msg::Stop
            };
            if tx.send(m).is_err() {
                return;
            }
        }
    });
    Ok(())
}

impl Engine {
    /// The engine's loop, until a stop: [`Msg::Stop`], or `stop_asked` set (looked at at
    /// every turn, before what waits in the queue: see [`spawn_signals`]).
    fn main_loop(&mut self, rx: &Receiver<Msg>, stop_asked: &AtomicBool) -> Result<i32> {
        // a message taken from the queue while gathering batches of lines
        let mut queued: Option<Msg> = None;
        loop {
            if stop_asked.load(Ordering::SeqCst) {
                return self.stop();
            }
            if let Some(m) = &self.metrics {
                m.jails(&self.jails);
            }
            let now = now_ms();
            self.clock(now);
            let next = self
                .jails
                .iter()
                .filter_map(|j| j.tracker().next_expiry())
                .min();
            let next = next.map_or(self.own_read + OWN_REFRESH_MS, |t| {
                t.min(self.own_read + OWN_REFRESH_MS)
            });
            let wait = Duration::from_millis((next - now).clamp(0, 60_000) as u64);
            let msg = match queued.take() {
                Some(m) => Ok(m),
                None => rx.recv_timeout(wait),
            };
            match msg {
                Ok(Msg::Lines(b)) => {
                    // the batches that waited behind it (the engine was busy) are taken
                    // as one: one firewall change and one store transaction for all
                    // (at most TAKE_BYTES of lines at once: all 16 taken while 16 more
                    // waited held twice the queue's worth in a flood, a review measured)
                    let mut bytes = b.data.len();
                    let mut bs = vec![b];
                    while bs.len() < ENGINE_QUEUE && bytes < TAKE_BYTES {
                        match rx.try_recv() {
                            Ok(Msg::Lines(b)) => {
                                bytes += b.data.len();
                                bs.push(b)
                            }
                            Ok(m) => {
                                queued = Some(m);
                                break;
                            }
                            Err(_) => break,
                        }
                    }
                    if let Err(e) = self.on_batches(bs) {
                        self.trouble("the lines read", &e);
                    }
                }
                Ok(Msg::Control(req, reply)) => {
                    let resp = self.on_control(req);
                    let _ = reply.send(resp);
                }
                Ok(Msg::Reload) => {
                    if let Err(e) = self.reload() {
                        error!("reload refused, old configuration kept: {e:#}");
                    }
                }
                Ok(Msg::Note(n)) => info!("{n}"),
                Ok(Msg::Suppressed { source, unit, n }) => {
                    self.on_suppressed(source, unit, n, now_ms())
                }
                Ok(Msg::Addresses) => self.refresh_own_logged(now_ms()),
                Ok(Msg::Resolved(generation, got)) => {
                    if let Err(e) = self.on_resolved(generation, &got, now_ms()) {
                        error!("ignore: {e:#}");
                    }
                }
                Ok(Msg::Fleet(entries, reply)) => {
                    let _ = reply.send(self.fleet_apply(entries, now_ms()));
                }
                Ok(Msg::Stop) | Err(RecvTimeoutError::Disconnected) => return self.stop(),
                Err(RecvTimeoutError::Timeout) => {}
            }
            // a state file that cannot be written (a full disk, a lock held by hand) stops
            // nothing: the bans go on in the firewall, and the changes not written are kept
            // and written with the next write that succeeds (`Store::apply`; the daemon
            // stopped here, and with the disk still full could not start again, a review
            // found)
            if let Err(e) = self.expire(now_ms()) {
                self.trouble("the bans that ended", &e);
            }
            if let Err(e) = self.prune_history(now_ms()) {
                self.trouble("the ban history's pruning", &e);
            }
            // (a `stat`, at most every few seconds: the loop turns at least once a minute, and
            // at a stop)
            if self.store.check_due() {
                self.keep_state_in_place();
            }
            self.checkpoint_windows(now_ms());
            // the bans of commands, expiries and the fleet go to the statistics too (those
            // of lines go with their batch)
            if let Some(st) = &mut self.stats {
                st.flush(&self.jails);
            }
            if now_ms() - self.own_read >= OWN_REFRESH_MS {
                self.refresh_own_logged(now_ms());
            }
            // (a timestamp of its own: address changes, which refresh the addresses at
            // once, must not put it off)
            if now_ms() - self.fw_checked >= OWN_REFRESH_MS {
                self.fw_checked = now_ms();
                self.check_firewall();
                if self.rearm_pending {
                    self.rearm();
                }
            }
        }
    }

    /// Sees the wall clock set back (an NTP step of a clock that ran fast, a virtual
    /// machine's snapshot restored): the kernel's ban timeouts run on, while the bans' ends
    /// are wall-clock times. Unseen, a ban lived on here after the kernel dropped it, the
    /// offender's failures ignored as "while banned", an open window kept every new failure
    /// before its cutoff, and the minute's work (own addresses, firewall check) waited for
    /// the clock to catch up (a review found). Now the failures stamped in the future are
    /// put at now, every active ban is given again, with the time left by the clock (it
    /// lasts the step longer), to the backends whose bans expire by themselves
    /// ([`Engine::rearm`]), and the minute's work is done at once.
    fn clock(&mut self, now: Millis) {
        let back = self.last_turn - now;
        self.last_turn = now;
        if back < CLOCK_STEP_MS {
            return;
        }
        warn!(
            "clock: the system time went back by {}: the active bans are given to the firewall again with the time left by the new time",
            portcullis_core::duration::format(back)
        );
        for j in &mut self.jails {
            j.tracker_mut().clock_went_back(now);
        }
        self.own_read = i64::MIN / 2;
        self.fw_checked = i64::MIN / 2;
        self.trouble.clear();
        self.windows_saved = now;
        self.rearm();
    }

    /// The jails that count a line of source `src` read from `file`: those that name `src` or
    /// read it through a wildcard (kept from its first line since the last load), and for a
    /// file read under two names or aliased, as [`names`] decides.
    fn jails_for(&mut self, src: &str, file: names::FileId) -> Vec<usize> {
        if !self.routes.contains_key(src) {
            self.routes
                .insert(src.to_string(), route_of(&self.cfg, src));
        }
        let js = &self.routes[src];
        if !self.names.special(file) {
            return js.clone();
        }
        let (jails, routes) = (&self.jails, &self.routes);
        self.names.route(src, file, js, |ji, first, second| {
            // said once per jail and pair of names (the files of a series as one), to a jail
            // that reads both names itself, not through an alias of the file (review 16 found
            // other jails' names said)
            let reads = |n: &str| routes.get(n).is_some_and(|r| r.contains(&ji));
            if reads(first) && reads(second) {
                warn!(
                    "jail {}: {second:?} and {first:?} name one file (a link and its target, or another path to it): each line counted once, from {first:?} while it reads the file",
                    jails[ji].name()
                );
            }
        })
    }

    /// Writes the state file again when it was deleted or replaced under the daemon (see
    /// [`Store::keep_in_place`]): an error in the log either way, for someone removed it.
    /// The lock file too: deleted, it no longer kept a second daemon (or an offline
    /// `unban`) from the state directory; it is made and taken again.
    fn keep_state_in_place(&mut self) {
        match self.store.keep_in_place() {
            Ok(None) => {}
            Ok(Some(done)) => error!("{done}"),
            Err(e) => self.trouble("the state file, gone from its place", &e),
        }
        let Some(held) = &self.state_lock else {
            return;
        };
        let path = fsutil::lock_path(&self.cfg.state_dir);
        let in_place = {
            use std::os::unix::fs::MetadataExt;
            match (std::fs::symlink_metadata(&path), held.metadata()) {
                (Ok(a), Ok(b)) => (a.dev(), a.ino()) == (b.dev(), b.ino()),
                _ => false,
            }
        };
        if in_place {
            return;
        }
        match fsutil::lock_state_within(&self.cfg.state_dir, Duration::ZERO) {
            Ok(f) => {
                self.state_lock = Some(f);
                error!(
                    "lock file {} was deleted or replaced while the daemon ran: made and taken again",
                    path.display()
                );
            }
            Err(e) => self.trouble("the state lock, gone from its place", &e),
        }
    }

    /// Logs a failure of the main loop's work on `what`, at most once a minute (with the
    /// number not logged since).
    fn trouble(&mut self, what: &'static str, e: &anyhow::Error) {
        let now = now_ms();
        // (per kind of work: the lines' failures every turn hid that the state file was
        // gone, review 43)
        let t = self.trouble.entry(what).or_insert((i64::MIN / 2, 0));
        let (last, quiet) = *t;
        if now - last < 60_000 {
            t.1 += 1;
            return;
        }
        let more = if quiet > 0 {
            format!(" ({quiet} more failures in the last minute)")
        } else {
            String::new()
        };
        error!("{e:#}; while handling {what}: protection goes on{more}");
        *t = (now, 0);
    }

    /// [`Engine::refresh_own`]; a failure is logged, and tried again at the next refresh.
    fn refresh_own_logged(&mut self, now: Millis) {
        if let Err(e) = self.refresh_own(now) {
            error!("own addresses: {e:#}");
        }
    }

    /// Reads the host's addresses again; when they changed, the jails' ignore lists follow
    /// and bans that now cover one of them are lifted.
    /// When they cannot be read, the last ones stay (an empty list in their place let the
    /// host's addresses be banned, a review found), and the error is returned.
    fn refresh_own(&mut self, now: Millis) -> Result<()> {
        self.take_own_read(addrs::own(), now)
    }

    /// [`Engine::refresh_own`] with what the read gave.
    fn take_own_read(&mut self, read: Result<Vec<IpAddr>>, now: Millis) -> Result<()> {
        self.own_read = now;
        let own = read.context("the last addresses read stay protected")?;
        self.set_own(own, now)
    }

    /// Takes `own` (sorted) as the host's addresses; see [`Engine::refresh_own`].
    fn set_own(&mut self, own: Vec<IpAddr>, now: Millis) -> Result<()> {
        if own == self.own {
            return Ok(());
        }
        let list = |v: Vec<&IpAddr>| {
            v.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(",")
        };
        info!(
            "own addresses changed: added={} removed={}",
            list(own.iter().filter(|a| !self.own.contains(a)).collect()),
            list(self.own.iter().filter(|a| !own.contains(a)).collect()),
        );
        self.own = own;
        self.never_ban_changed(now)
    }

    /// Takes what the host names of `ignore` resolve to now (the resolver thread's lookups);
    /// when that changes the list, the jails, the deny list and the rate limits follow, and
    /// bans the list now covers are lifted. A name whose lookup gave nothing keeps its last
    /// addresses.
    fn on_resolved(
        &mut self,
        generation: u64,
        got: &[(String, Vec<IpAddr>)],
        now: Millis,
    ) -> Result<()> {
        // (answers looked up before the last reload are stale: the reload's own are newer)
        if generation != self.resolver.generation() {
            return Ok(());
        }
        let new = self.cfg.ignore_list.with_resolved(got);
        if new.cidrs == self.cfg.ignore {
            return Ok(());
        }
        for c in self.cfg.ignore_list.changed_names(&new) {
            info!("ignore: host name {c}");
        }
        self.cfg.ignore = new.cidrs.clone();
        self.cfg.ignore_list = new;
        self.never_ban_changed(now)
    }

    /// What is never banned changed while the daemon runs (the host's addresses, or what a
    /// host name of `ignore` resolves to): the kernel rate limits' exemptions, the deny list,
    /// the jails' ignore lists and the active bans follow.
    fn never_ban_changed(&mut self, now: Millis) -> Result<()> {
        // the kernel rate limits exempt the host's own addresses and the ignore list: set up
        // again with the new ones (only a start and a reload did, a review found)
        if !self.cfg.ratelimits.is_empty() {
            let r = self
                .fw
                .set_ratelimits(&ratelimits(&self.cfg, &self.own))
                .and_then(|()| self.fw.setup(&jail_rules(&self.cfg)));
            if let Err(e) = r {
                error!("[[ratelimit]]: cannot exempt the new never-banned addresses: {e:#}");
            }
        }
        // a `deny` entry that holds a new own or ignored address is cut around it (they win)
        if let Err(e) = self.sync_deny() {
            error!("deny list: {e:#}");
        }
        // (with ignore_self = false too: prefixes are narrowed around own addresses either
        // way, only the counting differs; see IgnoreList::counting_own)
        // (the same prefix lengths: no window is moved)
        for (j, jc) in self.jails.iter_mut().zip(&self.cfg.jails) {
            j.reconfigure(
                jails::jail_settings(&self.cfg, jc, &self.own),
                jc.filters.clone(),
            );
        }
        self.lift_ignored(now)?;
        Ok(())
    }

    /// Lifts every active ban that the ignore lists, loopback or the host's own addresses
    /// now cover (after a reload or an address change), in the firewall, the store and the
    /// trackers, with an `unban … reason=…` line each. Returns how many.
    fn lift_ignored(&mut self, now: Millis) -> Result<usize> {
        let mut fw_ops = Vec::new();
        let mut st_ops = Vec::new();
        let mut n = 0;
        for j in &mut self.jails {
            // the counts of what may not be banned go too: a single address, or a prefix an
            // ignore entry covers whole (a prefix holding one ignored address still counts
            // its other addresses, and is narrowed when banned)
            let ignore = j.settings().ignore.clone();
            let own = &self.own;
            j.tracker_mut()
                .forget_windows(|k| match ignore.check_prefix(k) {
                    Some(Reason::Listed(c)) if c.covers(&k) => true,
                    _ => k.is_host() && lift_reason(&ignore, own, k).is_some(),
                });
            let lift: Vec<(Cidr, Millis, String)> = j
                .tracker()
                .bans()
                .filter_map(|(a, until)| {
                    lift_reason(&j.settings().ignore, &self.own, a).map(|r| (a, until, r))
                })
                .collect();
            let jail = j.name().to_string();
            for (addr, until, reason) in lift {
                n += 1;
                let parts = narrowed(&j.settings().ignore, &self.own, addr, &reason, &jail);
                j.tracker_mut().unban(addr);
                events::emit(&Event::Unban {
                    addr,
                    jail: jail.clone(),
                    reason: UnbanReason::Lifted(reason.clone()),
                });
                fw_ops.push(FwOp::Del {
                    jail: jail.clone(),
                    addr,
                });
                st_ops.push(StoreOp::Unban {
                    addr,
                    jail: jail.clone(),
                    at: now,
                });
                let (why, count) = self
                    .meta
                    .remove(&(jail.clone(), addr))
                    .unwrap_or((BanReason::Failures, 1));
                for p in parts {
                    j.tracker_mut().ban(p, now, until, 0);
                    self.meta.insert((jail.clone(), p), (why, count));
                    fw_ops.push(FwOp::Add {
                        jail: jail.clone(),
                        addr: p,
                        timeout_ms: fw_timeout(until, now),
                    });
                    st_ops.push(StoreOp::Held(BanRecord {
                        addr: p,
                        jail: jail.clone(),
                        start: now,
                        end: until,
                        failures: 0,
                        reason: why,
                        count,
                    }));
                }
            }
        }
        if !fw_ops.is_empty() {
            // the lifted bans first, then the pieces that stay: nft checks an interval set's
            // overlaps against the set as it was, so a prefix and its pieces in one batch were
            // refused; the retry failed the same way, and the state file kept the prefix (a
            // review found). A refusal repairs from the trackers, which hold the truth, and
            // the state follows them either way
            let (lifted, pieces): (Vec<FwOp>, Vec<FwOp>) = fw_ops
                .into_iter()
                .partition(|op| matches!(op, FwOp::Del { .. }));
            for batch in [lifted, pieces] {
                if batch.is_empty() {
                    continue;
                }
                if let Err(e) = self.fw.apply(&batch) {
                    error!("firewall: {e:#}; setting it up again from the bans");
                    if let Err(e) = self.repair() {
                        error!("firewall: cannot set it up again: {e:#}; tried again in a minute");
                    }
                    break;
                }
            }
            self.store.apply(&st_ops)?;
        }
        Ok(n)
    }

    /// Drops ban history older than [`HISTORY_DAYS`], at start and then once a day, so the
    /// state file does not grow without limit.
    fn prune_history(&mut self, now: Millis) -> Result<()> {
        if now - self.last_prune < 86_400_000 {
            return Ok(());
        }
        self.last_prune = now;
        self.history.prune(now - HISTORY_DAYS * 86_400_000);
        let n = self.store.prune_history(now - HISTORY_DAYS * 86_400_000)?;
        if n > 0 {
            info!("pruned {n} ban history rows older than {HISTORY_DAYS} days");
        }
        Ok(())
    }

    fn jail_names(&self) -> Vec<String> {
        self.jails.iter().map(|j| j.name().to_string()).collect()
    }

    fn stop(&mut self) -> Result<i32> {
        self.keep_state_in_place();
        // (a failure to save loses the counts, as a crash does: the bans go on)
        if let Err(e) = self.save_windows(now_ms(), true) {
            error!("{e:#}");
        }
        if self.store.unsaved() > 0 {
            error!(
                "{} change(s) of bans, unbans and read positions could not be written to the state file (full or failing since): lost; at the next start the bans made since then are missing (those made by failures come back as their lines are read again) and the bans lifted since then are back",
                self.store.unsaved()
            );
        }
        // (said after the teardown: "table removed" came before a teardown that failed, and
        // the bans stayed, a review found)
        let mut kind = stop_kind(
            &self.cfg.firewall.backend,
            self.cfg.firewall.keep_bans_on_stop,
        );
        let mut torn = Ok(());
        if !self.cfg.firewall.keep_bans_on_stop {
            torn = self.fw.teardown();
            if torn.is_err() {
                kind = StopKind::TeardownFailed;
            }
        }
        events::emit(&Event::Stopped(kind));
        torn?;
        Ok(0)
    }

    /// Loads the ban history of the last [`HISTORY_DAYS`] (escalation survives restarts).
    fn load_history(&mut self, now: Millis) -> Result<()> {
        self.history = self
            .store
            .escalation_history(now - HISTORY_DAYS * 86_400_000)?;
        Ok(())
    }

    /// Puts the `deny` list of the configuration into the firewall (permanent bans of jail
    /// `deny`) and lifts entries no longer listed. At start and reload.
    fn sync_deny(&mut self) -> Result<()> {
        let targets = deny_targets(&self.cfg, &self.own);
        self.sync_deny_with(targets, true)
    }

    /// [`Engine::sync_deny`]; with `apply` false the firewall already holds the list (the
    /// start's restore carried it), and only the engine's view and the events follow.
    fn sync_deny_with(&mut self, targets: (Vec<Cidr>, Vec<String>), apply: bool) -> Result<()> {
        let (want, skipped) = targets;
        for w in skipped {
            warn!("{w}");
        }
        let jail = config::DENY_JAIL.to_string();
        let mut ops: Vec<FwOp> = self
            .denied
            .iter()
            .filter(|c| !want.contains(c))
            .map(|&addr| FwOp::Del {
                jail: jail.clone(),
                addr,
            })
            .collect();
        let added: Vec<Cidr> = want
            .iter()
            .filter(|c| !self.denied.contains(c))
            .copied()
            .collect();
        ops.extend(added.iter().map(|&addr| FwOp::Add {
            jail: jail.clone(),
            addr,
            timeout_ms: PERMANENT,
        }));
        if ops.is_empty() {
            return Ok(());
        }
        if apply {
            // the entries that go first, then those that come: nft checks an interval set's
            // overlaps against the set as it was, so an entry and its pieces (cut around an
            // own or ignored address) in one batch were refused
            let (gone, come): (Vec<FwOp>, Vec<FwOp>) = ops
                .into_iter()
                .partition(|op| matches!(op, FwOp::Del { .. }));
            for batch in [gone, come] {
                if !batch.is_empty() {
                    self.fw
                        .apply(&batch)
                        .context("cannot put the deny list into the firewall")?;
                }
            }
        }
        for &addr in &added {
            events::emit(&Event::Ban {
                addr,
                jail: jail.clone(),
                failures: 0,
                length: FOREVER,
                manual: false,
                reason: BanReason::Deny,
            });
        }
        for addr in self.denied.iter().filter(|c| !want.contains(c)) {
            events::emit(&Event::Unban {
                addr: *addr,
                jail: jail.clone(),
                reason: UnbanReason::Lifted("deny-list".into()),
            });
        }
        self.denied = want;
        Ok(())
    }

    /// A random number for the jitter (xorshift; seeded at start).
    fn jitter(&mut self) -> u64 {
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = x;
        x
    }

    /// The active bans of the state file for the jails `only` (all configured jails when
    /// None) put back in their trackers: the firewall operations that give them to the kernel
    /// again, the state changes of those that ended or that the ignore list, loopback or an
    /// own address covers now (lifted, with their unban lines), and how many are put back.
    /// Bans of jails not configured stay in the state file as they are, with a warning per
    /// jail: they come back with the jail, at a restart or a reload.
    fn restore_bans(
        &mut self,
        only: Option<&[String]>,
        now: Millis,
    ) -> Result<(Vec<FwOp>, Vec<StoreOp>, usize)> {
        let mut ops = Vec::new();
        let mut lifted = Vec::new();
        let mut n = 0;
        let mut dormant: std::collections::BTreeMap<String, usize> = Default::default();
        // every row still marked active, also those that ended while the daemon was down
        // (a crash): those are lifted, so that a backend without kernel timeouts (command)
        // undoes them
        for b in self.store.active_bans(i64::MIN)? {
            if only.is_some_and(|o| !o.contains(&b.jail)) {
                continue;
            }
            let Some(j) = self.jails.iter_mut().find(|j| j.name() == b.jail) else {
                if b.end > now && b.jail != config::DENY_JAIL {
                    *dormant.entry(b.jail).or_default() += 1;
                }
                continue;
            };
            if b.end <= now {
                events::emit(&Event::Unban {
                    addr: b.addr,
                    jail: b.jail.clone(),
                    reason: UnbanReason::Expired,
                });
                ops.push(FwOp::Del {
                    jail: b.jail.clone(),
                    addr: b.addr,
                });
                lifted.push(StoreOp::Unban {
                    addr: b.addr,
                    jail: b.jail,
                    at: b.end,
                });
                continue;
            }
            // a ban never runs longer from now than it was long: a start stamped ahead of now
            // is a clock that was ahead when the ban was made, or is behind now (before NTP
            // set it at boot); counted from the wall clock alone, a 20 s ban came back with
            // years left in the kernel (a review found)
            let end = if b.end == FOREVER || b.start <= now {
                b.end
            } else {
                now.saturating_add(b.end - b.start)
            };
            // not put back if the ignore list, loopback or an own address covers it now
            // (the kernel may still hold it: deleted); a prefix is put back cut around them
            if let Some(reason) = lift_reason(&j.settings().ignore, &self.own, b.addr) {
                events::emit(&Event::Unban {
                    addr: b.addr,
                    jail: b.jail.clone(),
                    reason: UnbanReason::Lifted(reason.clone()),
                });
                ops.push(FwOp::Del {
                    jail: b.jail.clone(),
                    addr: b.addr,
                });
                lifted.push(StoreOp::Unban {
                    addr: b.addr,
                    jail: b.jail.clone(),
                    at: now,
                });
                for p in narrowed(&j.settings().ignore, &self.own, b.addr, &reason, &b.jail) {
                    j.tracker_mut().ban(p, now, end, 0);
                    self.meta.insert((b.jail.clone(), p), (b.reason, b.count));
                    ops.push(FwOp::Add {
                        jail: b.jail.clone(),
                        addr: p,
                        timeout_ms: fw_timeout(end, now),
                    });
                    lifted.push(StoreOp::Held(BanRecord {
                        addr: p,
                        jail: b.jail.clone(),
                        start: now,
                        end,
                        failures: 0,
                        reason: b.reason,
                        count: b.count,
                    }));
                }
                continue;
            }
            j.tracker_mut()
                .ban(b.addr, b.start.min(now), end, b.failures);
            self.meta
                .insert((b.jail.clone(), b.addr), (b.reason, b.count));
            ops.push(FwOp::Add {
                jail: b.jail.clone(),
                addr: b.addr,
                timeout_ms: fw_timeout(end, now),
            });
            n += 1;
            if n <= 100 {
                events::emit(&Event::Restore {
                    addr: b.addr,
                    jail: b.jail.clone(),
                    remaining: end - now,
                });
            }
        }
        for (jail, k) in dormant {
            warn!("{k} ban(s) of jail {jail}, which is not configured, are kept in the state file but not enforced: they come back if the jail does, before they end, or go to the jail that gives renamed_from = [\"{jail}\"] (portcullis unban --jail {jail} --all forgets them)");
        }
        Ok((ops, lifted, n))
    }

    /// A state file that holds no ban of an earlier run (created now: deleted, a wrong
    /// `state_dir`; or unusable and moved aside: a power cut, a disk error): the bans the
    /// kernel still holds of ours (nftables sets, read back with their time left) are taken
    /// into the state, so that the start keeps them instead of wiping them, permanent ones
    /// too (review 60: every ban went, with one line said or none). Their failures and
    /// history are not known: each is kept as a ban in force, not as an offence. Read before
    /// the firewall's setup (which drops the sets of jails no longer configured: their bans
    /// are kept in the state file, enforced again if the jail comes back). What the start
    /// does with any ban (lifts an ignored address's) it does with them.
    fn adopt_kernel_bans(&mut self, now: Millis) {
        let Some(why) = self.store.fresh().map(str::to_string) else {
            return;
        };
        let found = match self.fw.kernel_bans() {
            Ok(v) => v,
            Err(e) => {
                error!("the state file {why}, and the bans the firewall still holds cannot be read back ({e:#}): the start lifts them");
                return;
            }
        };
        // the fleet bans among them: by `fleet.db`'s origins, with the end it has (so that
        // the fleet's start ties each to its origin again, whose unban lifts it); one of a
        // shared jail whose origin is not known is taken for a fleet ban too, never
        // published as this node's own (review 62: every adopted ban was, and its origin's
        // unban no longer reached it)
        let fleet = self.cfg.fleet.as_ref();
        let origins = fleet
            .map(|_| self.cfg.state_dir.join("fleet.db"))
            .filter(|p| p.exists())
            .and_then(|p| crate::fleet::db::Db::open(&p).ok())
            .and_then(|db| db.origins(now).ok())
            .unwrap_or_default();
        let mut ops = Vec::new();
        let mut other = 0;
        for (jail, addr, left) in found {
            // (the `deny` list is the configuration's; a jail no longer configured keeps its
            // bans in the state file, enforced again if it comes back, as ever)
            if jail == config::DENY_JAIL {
                other += 1;
                continue;
            }
            let end = left.map_or(FOREVER, |l| now.saturating_add(l.max(1)));
            let (reason, end) = match origins.get(&(addr, jail.clone())) {
                Some((_, until)) => (BanReason::Fleet, *until),
                None if fleet.is_some_and(|f| f.shares(&jail)) => (BanReason::Fleet, end),
                // (not `failures #1`, which it may not be: a manual ban, an escalated one,
                // review 63 L2)
                None => (BanReason::Restored, end),
            };
            ops.push(StoreOp::Held(crate::store::BanRecord {
                addr,
                jail,
                start: now,
                end,
                failures: 0,
                reason,
                count: 1,
            }));
        }
        if ops.is_empty() {
            if other > 0 {
                info!("the state file {why}; the firewall holds no ban but the `deny` list's");
            }
            return;
        }
        let n = ops.len();
        match self.store.apply(&ops) {
            Ok(()) => warn!("the state file {why}: {n} ban(s) the firewall still holds were taken back into it, with the time each had left (their cause, failures and earlier bans are not known); `portcullis bans` lists them as `restored`"),
            Err(e) => error!("the state file {why}, and the {n} ban(s) the firewall still holds cannot be written into it ({e:#}): the start lifts them"),
        }
    }

    /// What the state holds under each jail's former names (`renamed_from`) becomes the
    /// jail's own, said per name: at start and at a reload, before the bans are put back.
    /// (Review 60 L3: a renamed jail left its bans in the state, not enforced, until they
    /// ended; an admin moving from fail2ban's names opened the firewall to every offender.)
    /// Returns whether anything moved.
    fn take_renamed(store: &mut Store, jails: &[crate::config::JailConfig]) -> bool {
        let mut any = false;
        let renames = jails
            .iter()
            .flat_map(|j| j.renamed_from.iter().map(move |o| (o, &j.name)));
        for (old, new) in renames {
            match store.rename_jail(old, new) {
                Ok(0) => {}
                Ok(n) => {
                    any = true;
                    info!("jail {new}: {n} ban(s) of jail {old}, its former name (`renamed_from`), are now its own, with their history");
                }
                Err(e) => error!("{e:#}"),
            }
        }
        any
    }

    fn restore(&mut self) -> Result<()> {
        let now = now_ms();
        Engine::take_renamed(&mut self.store, &self.cfg.jails);
        self.load_history(now)?;
        let (mut ops, lifted, n) = self.restore_bans(None, now)?;
        // the `deny` list in the same whole truth: the firewall drops what is not in it (an
        // entry taken out of the list while the daemon was stopped), and puts the rest back
        // in the same transaction, with no moment unblocked
        let deny = deny_targets(&self.cfg, &self.own);
        ops.extend(deny.0.iter().map(|&addr| FwOp::Add {
            jail: config::DENY_JAIL.to_string(),
            addr,
            timeout_ms: PERMANENT,
        }));
        // always, also with nothing to restore: the backends drop what is not in the state
        // (a crash's leftovers, a permanent element nothing holds any more). A refusal does
        // not keep the daemon from starting (a `command` program that fails for one ban
        // did: nothing was protected, and systemd restarted it into the same failure); the
        // bans stay in the state and the tracker, and the next start tries them again
        let restored = match self.fw.restore(&ops) {
            Ok(()) => true,
            Err(e) => {
                error!("firewall: cannot restore every ban: {e:#}; starting all the same");
                false
            }
        };
        // (the deny list's bans said, and tried again one by one when the restore failed)
        self.sync_deny_with(deny, !restored)?;
        // (a state file that cannot be written, on a full disk, keeps no one from being
        // protected: the bans that ended while the daemon was down are lifted again from
        // the state at the next start)
        if !lifted.is_empty() {
            if let Err(e) = self.store.apply(&lifted) {
                error!("{e:#}; starting all the same");
            }
        }
        if n > 100 {
            events::emit(&Event::Restored(n));
        }
        // (counts that cannot be read back are lost, as after a crash: never a reason not to
        // start)
        if let Err(e) = self.restore_windows(now) {
            error!("{e:#}");
        }
        Ok(())
    }

    /// Puts back the failures of the windows open when the daemon last stopped (saved by
    /// [`Engine::save_windows`]), so that a restart gives no offender a fresh count. Not put
    /// back: those of a jail that is gone, of a key that is banned or that the ignore list or
    /// an own address now covers, of a key banned or unbanned by hand since (a checkpoint's
    /// failures, after a crash), and of a window that ended while the daemon was down (see
    /// `Tracker::restore_failure`).
    fn restore_windows(&mut self, now: Millis) -> Result<()> {
        let mut back = 0usize;
        let (jails, own, history) = (&mut self.jails, &self.own, &self.history);
        let rows = self.store.take_windows_each(|jail, key, time, weight| {
            let Some(j) = jails.iter_mut().find(|j| j.name() == jail) else {
                return;
            };
            if lift_reason(&j.settings().ignore, own, key).is_some() {
                return;
            }
            // (saved by a checkpoint before a ban or a manual unban that cleared it, then
            // a crash: not counted again)
            // (a pardon of an address inside the key: the key's failures are forgiven)
            if history
                .last_touched(key, jail)
                .max(history.last_reset_within(key, jail))
                .is_some_and(|at| at >= time)
            {
                return;
            }
            if j.tracker_mut().restore_failure(key, time, weight, now) {
                back += 1;
            }
        })?;
        if rows > 0 {
            info!(
                "{back} of {rows} saved failures of open windows put back (the others: their window ended, or their jail or address is gone)"
            );
        }
        // saved again at once: taken from the state file, they were in memory only until
        // the first checkpoint, a minute on, and a crash before it lost them (a review found)
        if back > 0 {
            self.save_windows(now, false)?;
        }
        Ok(())
    }

    /// Saves the failures of the open windows once a minute while they are few (at most
    /// [`CHECKPOINT_MAX`]): after a crash the next start puts back those of the last
    /// checkpoint. Each batch of lines saves its read positions, so the lines read since the
    /// checkpoint are not read again: their failures are lost, never counted twice. Under a
    /// flood the windows are many and approximate anyway (see the tracker's sketch), and
    /// saving them all each minute would stall the reading: no checkpoint then, only the
    /// save at stop.
    fn checkpoint_windows(&mut self, now: Millis) {
        if now - self.windows_saved < CHECKPOINT_EVERY_MS {
            return;
        }
        self.windows_saved = now;
        // the changes a failed write kept: tried again once a minute at least (the windows'
        // save below writes them first too, but is skipped for a flood's windows)
        if self.store.unsaved() > 0 {
            if let Err(e) = self.store.apply(&[]) {
                self.trouble("the changes kept since a write failed", &e);
            }
        }
        let n: usize = self
            .jails
            .iter()
            .map(|j| {
                j.tracker()
                    .window_failures()
                    .take(CHECKPOINT_MAX + 1)
                    .count()
            })
            .sum();
        if n > CHECKPOINT_MAX {
            return;
        }
        if let Err(e) = self.save_windows(now, false) {
            error!("{e:#}");
        }
    }

    /// Saves the failures of the open windows, for the next start ([`Engine::restore_windows`]).
    /// The read positions of the lines they came from are saved already (each batch saves
    /// its own), so the next start reads on after them.
    fn save_windows(&mut self, now: Millis, say: bool) -> Result<()> {
        let rows = self.jails.iter().flat_map(|j| {
            let after = now.saturating_sub(j.settings().tracker.findtime);
            j.tracker()
                .window_failures()
                .filter(move |f| f.1 > after)
                .map(|(k, t, w)| (j.name(), k, t, w))
        });
        let n = self.store.save_windows(rows)?;
        if say && n > 0 {
            info!("saved {n} failures of open windows for the next start");
        }
        Ok(())
    }

    #[cfg(test)]
    fn on_lines(&mut self, b: Batch) -> Result<()> {
        self.on_batches(vec![b])
    }

    /// Batches of lines, in order, as one: one firewall change and one store transaction.
    fn on_batches(&mut self, bs: Vec<Batch>) -> Result<()> {
        for n in bs.iter().flat_map(|b| &b.notes) {
            info!("{n}");
        }
        let now = now_ms();
        let ctx = portcullis_core::time::TimeContext {
            now,
            local_offset: crate::cli::local_offset(now / 1000),
            zone: None,
        };
        if let Some(m) = &self.metrics {
            for b in &bs {
                m.lines(b);
            }
        }
        let mut tally = self
            .metrics
            .as_ref()
            .map(|_| crate::metrics::Tally::default());
        let mut c = Changes::default();
        // the offenders whose windows these lines changed: saved with the lines' positions
        // (past WINDOW_KEYS, a flood's, at the minute's checkpoint only)
        let mut touched: std::collections::HashSet<(usize, IpAddr)> = Default::default();
        // batch by batch: what the follower read when it read a batch's lines (its state
        // after that poll) decides who counts them, not the state of a later batch
        for b in &bs {
            if let Some(r) = &b.reading {
                let cfg = &self.cfg;
                self.names.set_reading(r, |p| route_of(cfg, p));
            }
            for (name, other, file) in &b.lent {
                let of_other = route_of(&self.cfg, other);
                let both: Vec<usize> = route_of(&self.cfg, name)
                    .into_iter()
                    .filter(|j| of_other.contains(j))
                    .collect();
                self.names.prefer(*file, other, &both);
            }
            if let Some(a) = &b.aliases {
                let cfg = &self.cfg;
                for n in self.names.set_aliases(a, |p| route_of(cfg, p)) {
                    info!("{n}");
                }
            }
            for (src, file, line) in b.iter_from() {
                let js = self.jails_for(src, file);
                // (each file's lines in order: a syslog daemon's `last message repeated N times`
                // counts the line before it in the same file)
                let source = source_key(src);
                for &ji in &js {
                    let counted_before = self.jails[ji].tracker().counted_total();
                    let step = self.jails[ji].process_from(source, line, &ctx, Some(now), now);
                    if let Step::Stale { addr, time } = step {
                        self.stale.0 += 1;
                        if self.stale.1.is_none() {
                            self.stale.1 = Some((self.jails[ji].name().to_string(), addr, time));
                        }
                    }
                    if let (Some(t), Step::Failure { failure, .. }) = (&mut tally, &step) {
                        t.failure(ji, failure);
                    }
                    if let (
                        Some(st),
                        Step::Failure {
                            failure,
                            hit,
                            decision,
                        },
                    ) = (&mut self.stats, &step)
                    {
                        st.failure(ji, failure, hit);
                        if let Some(Decision::Ban { addr, .. }) = decision {
                            st.ban_rule(ji, *addr, failure, hit);
                        }
                    }
                    // `log_level = "debug"`: each line a jail counts or sets aside (sshblack's
                    // CHATTY; the level printed nothing, a review found)
                    if tracing::enabled!(tracing::Level::DEBUG) {
                        debug_step(&self.jails[ji], &step);
                    }
                    let Step::Failure {
                        decision, failure, ..
                    } = step
                    else {
                        continue;
                    };
                    touched.insert((ji, failure.addr));
                    if let Some(ev) = &self.evidence {
                        // (a line that counted: a repeat of its session, weight 1 but not
                        // counted again, was evidence too, a review found)
                        if self.jails[ji].tracker().counted_total() > counted_before {
                            ev.record(
                                self.jails[ji].name(),
                                failure.addr,
                                line,
                                now,
                                self.cfg.jails[ji].findtime,
                            );
                        }
                    }
                    self.floods
                        .entry(self.jails[ji].name().to_string())
                        .or_insert(FloodState {
                            since: now,
                            ..FloodState::default()
                        })
                        .count += 1;
                    let Some(d) = decision else {
                        continue;
                    };
                    self.carry_out(ji, d, failure.addr, now, &mut c);
                }
                // a flood of distinct keys: the statistics go to their writer early
                if let Some(st) = self.stats.as_mut().filter(|s| s.full()) {
                    st.flush(&self.jails);
                }
            }
        }
        self.report_stale(now);
        self.report_floods(now);
        self.report_cuts(now);
        if let (Some(m), Some(t)) = (&self.metrics, &tally) {
            m.failures(t, &self.jails);
        }
        self.enforce(&mut c);
        // after the firewall: the bans first
        if let Some(st) = &mut self.stats {
            st.flush(&self.jails);
        }
        let mut journal = Vec::new();
        // (before the positions: one transaction holds both)
        // (the windows still open only: an offender banned by the batch has none, and the
        // next start skips the saved failures of a banned key; in a flood of offenders
        // whose lines come together, few windows stay open across batches, review 63)
        // (every offender of the batch is looked at: a cap on them turned the saving off in
        // a flood of 10,000 offenders of which one window stayed open, review 64)
        {
            let mut seen = std::collections::HashSet::new();
            let (mut ops, mut rows) = (Vec::new(), 0);
            for (ji, addr) in touched {
                let j = &self.jails[ji];
                let (key, failures) = j.tracker().key_failures(addr);
                if !failures.is_empty() && seen.insert((ji, key)) {
                    rows += failures.len();
                    ops.push(StoreOp::Window {
                        jail: j.name().to_string(),
                        key,
                        failures,
                    });
                    // (windows of a high `maxretry`, or many left open: left to the
                    // minute's checkpoint, rather than write thousands of rows a batch)
                    if ops.len() > WINDOW_KEYS || rows > WINDOW_ROWS {
                        break;
                    }
                }
            }
            if ops.len() <= WINDOW_KEYS && rows <= WINDOW_ROWS {
                c.store.extend(ops);
            }
        }
        for b in bs {
            c.store
                .extend(b.forgotten.into_iter().map(StoreOp::ForgetPosition));
            c.store
                .extend(b.checkpoints.into_iter().map(StoreOp::Position));
            journal.extend(b.journal);
        }
        if !c.store.is_empty() {
            self.store.apply(&c.store)?;
        }
        // processed (and the bans stored, or kept to be): the journal readers may save their
        // positions, unless the state file lost changes (their lines are read again at the
        // next start, as the files' are: review 43)
        // (nor while changes wait in memory: a cursor saved past bans not written lost them
        // at a stop, review 44; the next batch's commit covers these entries)
        if !self.store.positions_frozen() && self.store.unsaved() == 0 {
            for p in journal {
                p.commit();
            }
        }
        Ok(())
    }

    /// Carries out a ban decision of jail `ji` for the failure of `offender`: the ban policy
    /// (escalation, subnet bans, narrowing), the events, and the changes for the firewall
    /// and the state, in `c`.
    fn carry_out(
        &mut self,
        ji: usize,
        d: Decision,
        offender: IpAddr,
        now: Millis,
        c: &mut Changes,
    ) {
        let jitter = self.jitter();
        let j = &mut self.jails[ji];
        let s = policy::sentence(j, &mut self.history, d, offender, jitter);
        for n in &s.notes {
            info!(jail = j.name(), "{n}");
        }
        let mut counts = s.counts.iter();
        let jail = j.name().to_string();
        for d in s.decisions {
            match d {
                Decision::Ban {
                    addr,
                    at,
                    until,
                    failures,
                    reason,
                } => {
                    let count = counts.next().copied().unwrap_or(1);
                    // (also the ignore list: a prefix narrowed around an address that is
                    // itself ignored came out as that address, a review found)
                    if crate::firewall::never_ban_prefix(addr)
                        || self.own.iter().any(|&o| addr.contains(o))
                        || lift_reason(&j.settings().ignore, &self.own, addr).is_some()
                    {
                        j.tracker_mut().unban(addr);
                        continue;
                    }
                    if let Some(e) = Event::of_ban(&jail, &d) {
                        events::emit(&e);
                    }
                    self.meta.insert((jail.clone(), addr), (reason, count));
                    c.fw.push(FwOp::Add {
                        jail: jail.clone(),
                        addr,
                        timeout_ms: fw_timeout(until, now),
                    });
                    c.store.push(StoreOp::Ban(BanRecord {
                        addr,
                        jail: jail.clone(),
                        start: at,
                        end: until,
                        failures,
                        reason,
                        count,
                    }));
                }
                Decision::Unban { addr, at } => {
                    events::emit(&Event::Unban {
                        addr,
                        jail: jail.clone(),
                        reason: UnbanReason::Lifted("subnet-ban".into()),
                    });
                    self.meta.remove(&(jail.clone(), addr));
                    // a ban of this batch, not in the kernel yet (the offender's own
                    // ban that its subnet ban replaces at once, or an earlier line's):
                    // it is not added at all. (Added with the prefix in one
                    // transaction, nft refused both as overlapping, and the daemon
                    // stopped, a review found.)
                    let pending = c.fw.iter().position(|op| {
                        matches!(op, FwOp::Add { jail: j, addr: a, .. }
                            if *j == jail && *a == addr)
                    });
                    if let Some(i) = pending {
                        c.fw.remove(i);
                    }
                    // nft checks overlaps against the set as it is before the
                    // transaction: the narrower elements go in a batch of their
                    // own (also for a pending one: an element of an earlier ban of
                    // the address may still be in the kernel)
                    c.fw_first.push(FwOp::Del {
                        jail: jail.clone(),
                        addr,
                    });
                    c.store.push(StoreOp::Unban {
                        addr,
                        jail: jail.clone(),
                        at,
                    });
                }
            }
        }
    }

    /// The bans due under settings just changed (a lower `maxretry`, a longer `findtime`,
    /// windows gathered under a shorter prefix), carried out now: an offender already over
    /// the new threshold was banned only at a next failure, and never if he stopped there (a
    /// review found). Returns how many decisions were carried out.
    fn ban_due(&mut self, now: Millis) -> Result<usize> {
        let mut c = Changes::default();
        let mut n = 0;
        for ji in 0..self.jails.len() {
            // a prefix key holding what may not be banned waits for its next failure, whose
            // address the ban is narrowed around (here only the prefix is known: narrowed
            // around its first address, the offenders went free, a review found)
            let ignore = self.jails[ji].settings().ignore.clone();
            let own = self.own.clone();
            let skip = |k: Cidr| !k.is_host() && lift_reason(&ignore, &own, k).is_some();
            for d in self.jails[ji].tracker_mut().due(now, skip) {
                let Decision::Ban { addr, .. } = d else {
                    continue;
                };
                n += 1;
                self.carry_out(ji, d, addr.addr, now, &mut c);
                if let Some(st) = &mut self.stats {
                    st.ban_named(self.jails[ji].name(), addr, "reload");
                }
            }
        }
        self.enforce(&mut c);
        if !c.store.is_empty() {
            self.store.apply(&c.store)?;
        }
        Ok(n)
    }

    /// A line per jail that is not configured but has active bans in the state file: kept
    /// there, not enforced, back with the jail (neither `bans` nor `status` showed them, a
    /// review found).
    fn dormant_status(&self, now: Millis) -> Vec<String> {
        match dormant_notes(&self.store, &self.cfg, now) {
            Ok(v) => v.into_iter().map(|(_, note)| note).collect(),
            Err(e) => vec![format!("cannot read the state file: {e:#}")],
        }
    }

    /// Puts `c`'s firewall changes in place (the narrower elements a subnet ban replaces
    /// first); a ban the firewall refused is lifted again, its unban added to `c.store`.
    fn enforce(&mut self, c: &mut Changes) {
        self.apply_repairing(&std::mem::take(&mut c.fw_first));
        // a ban the firewall refused is not one: lifted here too (listed active while
        // nothing blocked, its failures no longer counted, a review found); its next
        // failures count again, and the ban is tried again at maxretry
        for op in self.apply_repairing(&std::mem::take(&mut c.fw)) {
            let FwOp::Add { jail, addr, .. } = op else {
                continue;
            };
            let Some(j) = self.jails.iter_mut().find(|j| j.name() == jail) else {
                continue;
            };
            if j.tracker().ban_until_of(addr).is_none() {
                continue;
            }
            j.tracker_mut().unban(addr);
            self.meta.remove(&(jail.clone(), addr));
            events::emit(&Event::Unban {
                addr,
                jail: jail.clone(),
                reason: UnbanReason::Lifted("firewall-refused".into()),
            });
            c.store.push(StoreOp::Unban {
                addr,
                jail,
                at: now_ms(),
            });
        }
    }

    /// Sets the firewall up again and gives it every active ban (the jails', the fleet's
    /// and the `deny` list's) as the whole truth. Set up alone, it held only the bans made
    /// after: a `flush ruleset` (an nftables restart) lost every earlier one, permanent bans
    /// and the deny list too, while `bans` still listed them (a review found).
    fn repair(&mut self) -> Result<()> {
        self.fw.setup(&jail_rules(&self.cfg))?;
        let ops = self.active_ops(now_ms());
        self.fw.restore(&ops)?;
        info!("firewall: set up again with {} active bans", ops.len());
        Ok(())
    }

    /// Every active ban (the jails', the fleet's and the `deny` list's) as firewall
    /// changes, with timeouts counted from `now`.
    fn active_ops(&self, now: Millis) -> Vec<FwOp> {
        let mut ops = Vec::new();
        for j in &self.jails {
            for (addr, until) in j.tracker().bans() {
                if until > now {
                    ops.push(FwOp::Add {
                        jail: j.name().to_string(),
                        addr,
                        timeout_ms: fw_timeout(until, now),
                    });
                }
            }
        }
        ops.extend(self.denied.iter().map(|&addr| FwOp::Add {
            jail: config::DENY_JAIL.to_string(),
            addr,
            timeout_ms: PERMANENT,
        }));
        ops
    }

    /// After the clock was set back: the backends whose bans expire by themselves get every
    /// active ban again, timed from now ([`Firewall::restore_expiring`]); until that
    /// succeeds it is tried again each minute (`rearm_pending`).
    fn rearm(&mut self) {
        let ops = self.active_ops(now_ms());
        match self.fw.restore_expiring(&ops) {
            Ok(()) => {
                self.rearm_pending = false;
                info!(
                    "firewall: {} active bans given again with the time the clock leaves them",
                    ops.len()
                );
            }
            Err(e) => {
                self.rearm_pending = true;
                error!("firewall: cannot give it the bans again: {e:#}; tried again in a minute");
            }
        }
    }

    /// Checks, once a minute, that the firewall still holds what it was given, and repairs
    /// it when it does not.
    fn check_firewall(&mut self) {
        match self.fw.intact() {
            Ok(true) => {}
            Ok(false) => {
                warn!("firewall: what Portcullis set up is gone or changed (an nftables restart, `nft flush ruleset`, `iptables -F`?): setting it up again");
                if let Err(e) = self.repair() {
                    error!("firewall: cannot set it up again: {e:#}; tried again in a minute");
                }
            }
            Err(e) => error!("firewall: {e:#}"),
        }
    }

    /// Carries out a batch's firewall changes, and returns the bans (`Add`s) the firewall
    /// refused. Refused, the changes are tried again after a repair: when our table is gone
    /// (an nftables restart), the firewall is set up again with every active ban
    /// ([`Engine::repair`]); else it is only set up again (restoring every ban after any
    /// refusal ran a `command` backend's program once per active ban, the engine waiting).
    /// Refused again, the batch is split in halves until the changes refused are found,
    /// each logged: one element the kernel will not take costs neither the batch's other
    /// bans nor the daemon (which stopped, and read the same lines again at its restart).
    fn apply_repairing(&mut self, ops: &[FwOp]) -> Vec<FwOp> {
        if ops.is_empty() {
            return Vec::new();
        }
        let e = match self.fw.apply_each(ops) {
            // (changes refused alone, the others carried out: a program that failed for
            // them, which no repair mends; logged by the backend)
            Ok(refused) => {
                return refused
                    .into_iter()
                    .filter(|op| matches!(op, FwOp::Add { .. }))
                    .collect()
            }
            Err(e) => e,
        };
        error!("firewall: {e:#}; repairing and retrying");
        let fixed = match self.fw.intact() {
            Ok(false) => self.repair(),
            _ => self.fw.setup(&jail_rules(&self.cfg)),
        };
        if let Err(e) = fixed {
            // (a backend's file an admin made unreadable, a command that fails: the other
            // jails and backends go on; the changes are tried again below)
            error!("firewall: cannot repair: {e:#}");
        }
        let mut refused = Vec::new();
        if let Err(e) = self.fw.apply(ops) {
            error!("firewall: {e:#}; looking for the changes it refuses");
            self.apply_halves(ops, &mut refused);
        }
        refused
            .into_iter()
            .filter(|op| matches!(op, FwOp::Add { .. }))
            .collect()
    }

    /// Applies `ops` (one change of a command); refused because our table or chain is gone
    /// (an nftables restart, `iptables -F`), sets the firewall up again with every active
    /// ban and applies them again, as the bans of lines do ([`Engine::apply_repairing`]); a
    /// `portcullis ban` then was refused and not made, review 56. The first error when
    /// the repair does not help.
    fn apply_or_repair(&mut self, ops: &[FwOp]) -> Result<()> {
        let Err(e) = self.fw.apply(ops) else {
            return Ok(());
        };
        if !matches!(self.fw.intact(), Ok(false)) {
            return Err(e);
        }
        error!("firewall: {e:#}; our rules are gone: setting them up again");
        if let Err(r) = self.repair() {
            error!("firewall: cannot repair: {r:#}");
            return Err(e);
        }
        self.fw.apply(ops).map_err(|_| e)
    }

    /// Applies `ops`, split in halves where refused, down to the changes refused alone
    /// (logged, and added to `refused`): one refused change among n costs about 2 log2 n
    /// runs, not n.
    fn apply_halves(&mut self, ops: &[FwOp], refused: &mut Vec<FwOp>) {
        if ops.len() > 1 {
            let (a, b) = ops.split_at(ops.len() / 2);
            for half in [a, b] {
                if self.fw.apply(half).is_err() {
                    self.apply_halves(half, refused);
                }
            }
            return;
        }
        let Some(op) = ops.first() else { return };
        if let Err(e) = self.fw.apply(ops) {
            let (FwOp::Add { jail, addr, .. } | FwOp::Del { jail, addr }) = op;
            let what = if matches!(op, FwOp::Add { .. }) {
                "ban"
            } else {
                "unban"
            };
            error!("firewall: the {what} of {addr} in jail {jail} was refused: {e:#}");
            refused.push(op.clone());
        }
    }

    /// Emits a `flood` event for each jail whose tracking cap evicted windows since the last
    /// one, or whose failure rate jumped ([`FLOOD_RATE_JUMP`] times the last interval's, at
    /// least [`FLOOD_RATE_FLOOR`]): at most once per [`FLOOD_INTERVAL_MS`] per jail.
    /// Protection goes on either way.
    fn report_floods(&mut self, now: Millis) {
        for j in &self.jails {
            let st = j.tracker().stats();
            let name = j.name().to_string();
            let seen = self.evicted_reported.entry(name.clone()).or_default();
            let f = self.floods.entry(name.clone()).or_insert(FloodState {
                since: now,
                ..FloodState::default()
            });
            if now - f.since >= FLOOD_INTERVAL_MS {
                f.prev = f.count;
                f.count = 0;
                f.since = now;
            }
            let cap = st.evicted > *seen;
            let rate = f.count >= FLOOD_RATE_FLOOR.max(FLOOD_RATE_JUMP * f.prev);
            let due = f.last_event.is_none_or(|t| now - t >= FLOOD_INTERVAL_MS);
            if (cap || rate) && due {
                events::emit(&Event::Flood {
                    jail: name,
                    tracked: st.tracked,
                    evicted: st.evicted,
                    failures: f.count,
                    cause: if cap {
                        "tracking cap reached"
                    } else {
                        "failure rate jumped"
                    }
                    .into(),
                });
                *seen = st.evicted;
                if f.last_event
                    .is_none_or(|t| now - t >= 2 * FLOOD_INTERVAL_MS)
                {
                    f.started = Some(now);
                }
                f.last_event = Some(now);
            }
        }
    }

    /// Says, at most once per [`FLOOD_INTERVAL_MS`] per jail, how many matches were refused
    /// since the last note because the syslog line was long enough to have been cut by its
    /// transport (the jail's `transport_cut`): the address there may be one a client typed.
    /// Reports the matched lines too old to count (`Step::Stale`) seen since the last report,
    /// at most once per [`FLOOD_INTERVAL_MS`] (an old file of a million lines is one warning a
    /// minute, not one per batch).
    fn report_stale(&mut self, now: Millis) {
        let (n, first, at) = &mut self.stale;
        if *n == 0 || (*at != 0 && now - *at < FLOOD_INTERVAL_MS) {
            return;
        }
        if let Some((jail, addr, time)) = first.take() {
            warn!(
                "not counted: {n} matched line(s) stamped more than {} days (plus findtime) before now, older than any clock or zone error explains (an old log that appeared, a backlog after a long stop); the first: jail {jail}, {addr}, stamped {}",
                portcullis_core::jail::STALE_AFTER / 86_400_000,
                portcullis_core::time::rfc3339(time),
            );
        }
        *n = 0;
        *at = now;
    }

    fn report_cuts(&mut self, now: Millis) {
        for (j, c) in self.jails.iter().zip(&self.cfg.jails) {
            let mut news = |split: bool, n: u64| {
                let (seen, at) = self
                    .cuts_reported
                    .entry((j.name().to_string(), split))
                    .or_default();
                if n < *seen {
                    // the jail was rebuilt (reload): its count started again
                    *seen = 0;
                }
                (n > *seen && (*at == 0 || now - *at >= FLOOD_INTERVAL_MS)).then(|| {
                    let new = n - *seen;
                    (*seen, *at) = (n, now);
                    new
                })
            };
            if let Some(n) = news(false, j.cut_refused()) {
                warn!(
                    jail = j.name(),
                    "{n} matching line(s) not counted: each was a syslog line long enough to have been cut by its transport (transport_cut = {}, less 256 bytes of header), and the rule lets client text of any length stand before the address, so a client may have placed the cut right after an address it typed (README, \"Lines a transport cut\")",
                    c.transport_cut
                );
            }
            if let Some(n) = news(true, j.split_refused()) {
                warn!(
                    jail = j.name(),
                    "{n} matching line(s) not counted: each was long enough to be a piece of a longer message that its program split into lines of their own (the filter's split_at), so it may start with client text"
                );
            }
        }
    }

    /// journald's note that its rate limit suppressed `n` messages of `unit` (0: it did not
    /// say how many), seen by the reader of `source`: logged, and kept for `status`.
    fn on_suppressed(&mut self, source: String, unit: String, n: u64, now: Millis) {
        let count = if n > 0 { n.to_string() } else { "some".into() };
        info!(
            "journald suppressed {count} message(s) of {unit} (its rate limit: RateLimitIntervalSec and RateLimitBurst in journald.conf, or LogRateLimitIntervalSec= and LogRateLimitBurst= in the unit): failures among them were never seen by {source}; raise the limit for this unit"
        );
        let e = self.suppressed.entry((source, unit)).or_insert((0, now));
        e.0 += n;
        e.1 = now;
    }

    /// For `status`: what journald's rate limit threw away of the journal sources jail
    /// `c` reads, since start.
    fn suppressed_status(&self, c: &crate::config::JailConfig) -> Vec<String> {
        let mut w: Vec<String> = self
            .suppressed
            .iter()
            .filter(|((source, _), _)| c.logs.contains(source))
            .map(|((_, unit), (n, at))| {
                format!(
                    "journald suppressed {n} message(s) of {unit} since the daemon started (the last at {}): failures among them were never counted; raise journald's rate limit for this unit (README, \"Journal sources\")",
                    portcullis_core::time::rfc3339(*at)
                )
            })
            .collect();
        w.sort();
        w
    }

    /// For `status`: the flood a jail is under, if a `flood` event was emitted in the last
    /// two intervals.
    fn flood_status(&self, jail: &str, now: Millis) -> Option<String> {
        let f = self.floods.get(jail)?;
        let at = f.last_event?;
        // the tracker's own count, as the `tracking cap reached` line above it says (the
        // count at the last event said 0 beside 1,620,000 evicted, a review found)
        let evicted = self
            .jails
            .iter()
            .find(|j| j.name() == jail)
            .map_or(0, |j| j.tracker().stats().evicted);
        (now - at < 2 * FLOOD_INTERVAL_MS).then(|| {
            format!("under a flood since {}: {} failures this interval, {evicted} windows evicted so far; the heaviest offenders are kept and still banned", portcullis_core::time::rfc3339(f.started.unwrap_or(at)), f.count)
        })
    }

    fn expire(&mut self, now: Millis) -> Result<()> {
        let mut st_ops = Vec::new();
        let mut fw_ops = Vec::new();
        let lift = !self.fw.expires_itself();
        for j in &mut self.jails {
            if j.tracker().next_expiry().is_some_and(|t| t <= now) {
                for d in j.tracker_mut().expire(now) {
                    if let Decision::Unban { addr, at } = d {
                        self.meta.remove(&(j.name().to_string(), addr));
                        events::emit(&Event::Unban {
                            addr,
                            jail: j.name().to_string(),
                            reason: UnbanReason::Expired,
                        });
                        st_ops.push(StoreOp::Unban {
                            addr,
                            jail: j.name().to_string(),
                            at,
                        });
                        if lift {
                            fw_ops.push(FwOp::Del {
                                jail: j.name().to_string(),
                                addr,
                            });
                        }
                    }
                }
            }
        }
        // backends without kernel timeouts (iptables, route, hosts-deny, command) are told;
        // a failure is logged, and the next start rewrites them from the store
        if !fw_ops.is_empty() {
            if let Err(e) = self.fw.apply(&fw_ops) {
                error!("firewall: cannot lift {} expired bans: {e:#}", fw_ops.len());
            }
        }
        if !st_ops.is_empty() {
            self.store.apply(&st_ops)?;
        }
        Ok(())
    }

    fn reload(&mut self) -> Result<String> {
        let mut cfg = Config::load(self.config_path.as_deref())?;
        // the backends are built at start: another set of them needs a restart
        let (was, now) = (
            crate::firewall::router::used(&self.cfg),
            crate::firewall::router::used(&cfg),
        );
        if was != now {
            anyhow::bail!(
                "the firewall backends changed ({} -> {}): restart the daemon to switch",
                was.join("+"),
                now.join("+")
            );
        }
        if cfg.firewall != self.cfg.firewall {
            warn!("[firewall] settings changed: they take effect at the next restart");
            // (kept until then: the stop after such a reload already used the new
            // `keep_bans_on_stop`, a review found)
            cfg.firewall = self.cfg.firewall.clone();
        }
        // (the daemon keeps its socket and state; the commands that read the new file look
        // elsewhere: "no daemon is running", a review found)
        for (key, old, new) in [
            ("socket", &self.cfg.socket, &cfg.socket),
            ("state_dir", &self.cfg.state_dir, &cfg.state_dir),
        ] {
            if !same_dir_path(old, new) {
                warn!(
                    "`{key}` changed to {}: the daemon keeps {} until it restarts (restart it now: the commands that read the configuration look for the new one)",
                    new.display(),
                    old.display()
                );
            }
        }
        // a table flushed away (an nftables restart) is made again with every ban first: a
        // reload is what an admin runs then
        self.check_firewall();
        // (the last ones stay when they cannot be read now)
        match addrs::own() {
            Ok(own) => self.own = own,
            Err(e) => error!("{e:#}; the last addresses read stay protected"),
        }
        self.own_read = now_ms();
        // a host name of `ignore` that does not resolve now keeps the addresses it last
        // resolved to (a DNS outage at a reload must not end the owner's protection)
        cfg.ignore_list = cfg.ignore_list.keep_known(&self.cfg.ignore_list);
        cfg.ignore = cfg.ignore_list.cidrs.clone();
        self.resolver
            .set(cfg.ignore_list.names(), cfg.ignore_refresh);
        for w in config::warnings(&cfg) {
            warn!("{w}");
        }
        self.fw
            .set_ratelimits(&ratelimits(&cfg, &self.own))
            .context("[[ratelimit]]")?;
        // the bans of jails no longer configured (removed, or `enabled = false`) are taken
        // out of the firewall while their jails are still set up there (a backend without
        // kernel timeouts, `command`, would keep them for ever); they stay in the state file
        // and come back with the jail
        let gone: Vec<(String, Vec<Cidr>)> = self
            .jails
            .iter()
            .filter(|j| !cfg.jails.iter().any(|c| c.name == j.name()))
            .map(|j| {
                let bans = j.tracker().bans().map(|(a, _)| a).collect();
                (j.name().to_string(), bans)
            })
            .collect();
        let lift_gone: Vec<FwOp> = gone
            .iter()
            .flat_map(|(jail, bans)| {
                bans.iter().map(|&addr| FwOp::Del {
                    jail: jail.clone(),
                    addr,
                })
            })
            .collect();
        if !lift_gone.is_empty() {
            self.fw
                .apply(&lift_gone)
                .context("the firewall refused to lift the bans of the jails removed")?;
        }
        if let Err(e) = self.fw.setup(&jail_rules(&cfg)) {
            // the old jails stand: their bans go back (best effort: the next start puts them
            // back from the state file in any case)
            if !lift_gone.is_empty() {
                let now = now_ms();
                let back: Vec<FwOp> = gone
                    .iter()
                    .filter_map(|(jail, _)| self.jails.iter().find(|j| j.name() == jail))
                    .flat_map(|j| {
                        j.tracker().bans().map(|(addr, until)| FwOp::Add {
                            jail: j.name().to_string(),
                            addr,
                            timeout_ms: fw_timeout(until, now),
                        })
                    })
                    .collect();
                if let Err(e) = self.fw.apply(&back) {
                    error!("cannot put back the bans of the jails kept: {e:#}");
                }
            }
            return Err(e.context("the firewall refused the new jails"));
        }
        for (jail, bans) in &gone {
            // (renamed: said as the new name takes them, below)
            let renamed = cfg.jails.iter().any(|j| j.renamed_from.contains(jail));
            if !bans.is_empty() && !renamed {
                warn!("jail {jail} is no longer configured: its {} ban(s) are lifted from the firewall and kept in the state file; they come back if the jail does, before they end, or go to the jail that gives renamed_from = [\"{jail}\"] (portcullis unban --jail {jail} --all forgets them)", bans.len());
            }
            self.meta.retain(|(j, _), _| j != jail);
        }
        let mut jails = Vec::new();
        let mut added = Vec::new();
        let old_names: Vec<String> = self.jails.iter().map(|j| j.name().to_string()).collect();
        let mut old: Vec<Jail> = std::mem::take(&mut self.jails);
        for jc in &cfg.jails {
            let settings = jails::jail_settings(&cfg, jc, &self.own);
            match old.iter().position(|j| j.name() == jc.name) {
                Some(i) => {
                    let mut j = old.swap_remove(i);
                    let dropped = j.reconfigure(settings, jc.filters.clone());
                    if dropped > 0 {
                        warn!("jail {}: a longer v4_prefix or v6_prefix cannot tell which address of a wider key failed: the counts of {dropped} address(es) or prefix(es) start again", jc.name);
                    }
                    jails.push(j);
                }
                None => {
                    let mut j = jails::build_jail(&cfg, jc, &self.own);
                    j.tracker_mut().set_seed(self.jitter());
                    jails.push(j);
                    added.push(jc.name.clone());
                }
            }
        }
        self.jails = jails;
        // a jail added (or back): its bans still active in the state file are put back, as
        // at a start
        // (past `self.jails = jails` nothing returns early: a reload stopped half way ran
        // the new jails with the old configuration, review 43)
        // a jail renamed: the old name's bans (lifted above, kept in the state) are the
        // new name's, put back below with the jails added
        if Engine::take_renamed(&mut self.store, &cfg.jails) {
            if let Err(e) = self.load_history(now_ms()) {
                error!("{e:#}");
            }
        }
        if !added.is_empty() {
            let now = now_ms();
            match self.restore_bans(Some(&added), now) {
                Ok((ops, lifted, n)) => {
                    if let Err(e) = self.fw.apply(&ops) {
                        error!("cannot put back {n} ban(s) of the jails added: {e:#}");
                    }
                    if let Err(e) = self.store.apply(&lifted) {
                        error!("{e:#}");
                    }
                }
                Err(e) => error!("cannot put back the bans of the jails added: {e:#}"),
            }
        }
        self.routes.clear();
        let jails = &self.jails;
        self.names.reload(
            |p| route_of(&cfg, p),
            |i| {
                let name = old_names.get(i)?;
                jails.iter().position(|j| j.name() == name)
            },
        );
        let followed = self
            .store
            .positions()
            .map(|v| v.into_iter().map(|c| PathBuf::from(c.path)).collect())
            .unwrap_or_default();
        *self.new_paths.lock().expect("paths lock") = Some(file_paths(&cfg, &followed).stat_now());
        // journal sources are matched the same way: new ones get a reader, readers of
        // sources no jail reads any more are stopped
        let (started, stopped) = self.journals.reconcile(&journal_sources(&cfg));
        for s in &started {
            info!("reading {s}");
        }
        for s in &stopped {
            info!("stopped reading {s}");
        }
        let old_cfg = std::mem::replace(&mut self.cfg, cfg);
        self.fleet_reload(now_ms());
        if let Err(e) = self.sync_deny() {
            // the deny list of the new configuration is refused: keep the old one
            self.cfg.deny = old_cfg.deny;
            error!("deny list not changed: {e:#}");
        }
        // bans the new ignore lists (or the host's addresses as read now) cover are lifted;
        // the new configuration stands even if that fails
        let lifted = match self.lift_ignored(now_ms()) {
            Ok(n) => n,
            Err(e) => {
                error!("cannot lift ignored bans: {e:#}");
                0
            }
        };
        match self.ban_due(now_ms()) {
            Ok(0) => {}
            Ok(n) => info!("{n} offender(s) already over the new settings banned now"),
            Err(e) => error!("cannot save the bans the new settings made: {e:#}"),
        }
        let e = Event::Reloaded {
            jails: self.jail_names(),
            lifted,
        };
        events::emit(&e);
        Ok(e.to_string())
    }

    fn on_control(&mut self, req: Request) -> Response {
        let now = now_ms();
        match req {
            Request::Reload => match self.reload() {
                Ok(m) => Response::ok(m),
                Err(e) => {
                    error!("reload refused, old configuration kept: {e:#}");
                    Response::err(format!(
                        "reload refused, the old configuration keeps running: {e:#}"
                    ))
                }
            },
            Request::Bans { jail, permanent } => {
                if let Some(n) = &jail {
                    if n != config::DENY_JAIL && !self.jails.iter().any(|j| j.name() == n) {
                        // (a jail removed whose bans the state keeps: said so)
                        if let Ok(notes) = dormant_notes(&self.store, &self.cfg, now) {
                            if let Some((_, note)) = notes.into_iter().find(|(j, _)| j == n) {
                                return Response::err(note);
                            }
                        }
                        return self.no_jail(n);
                    }
                }
                let mut bans = self.bans(now, jail.as_deref());
                if permanent {
                    bans.retain(|b| b.permanent);
                }
                Response {
                    ok: true,
                    bans,
                    ..Default::default()
                }
            }
            Request::Status { jail } => {
                if let Some(n) = &jail {
                    if !self.jails.iter().any(|j| j.name() == n) {
                        return self.no_jail(n);
                    }
                }
                let jails = self
                    .jails
                    .iter()
                    .zip(&self.cfg.jails)
                    .filter(|(j, _)| jail.as_ref().is_none_or(|n| n == j.name()))
                    .map(|(j, c)| JailStatus {
                        name: j.name().to_string(),
                        filters: c.filter_names.clone(),
                        logs: c.logs.clone(),
                        files: jail_files(c, self.names.held())
                            .into_iter()
                            .map(|(f, _)| f)
                            .collect(),
                        warnings: [
                            source_warnings(c, self.names.held()),
                            self.suppressed_status(c),
                        ]
                        .concat(),
                        maxretry: c.maxretry,
                        findtime: duration::format(c.findtime),
                        bantime: if c.bantime == FOREVER {
                            "forever".into()
                        } else {
                            duration::format(c.bantime)
                        },
                        failing: j
                            .tracker()
                            .failing(now)
                            .into_iter()
                            .map(|(a, n)| (a.to_string(), n))
                            .collect(),
                        banned: j.tracker().stats().banned,
                        evicted: j.tracker().stats().evicted,
                        flood: self.flood_status(j.name(), now),
                    })
                    .collect();
                // the firewall's own lines: rate-limit counters, size warnings
                let mut fw = self.fw.report();
                if jail.is_none() {
                    fw.extend(self.dormant_status(now));
                    fw.extend(self.store.trouble_status());
                }
                Response {
                    ok: true,
                    jails,
                    bans: self.bans(now, jail.as_deref()),
                    message: (!fw.is_empty()).then(|| fw.join("\n")),
                    fleet: self.fleet.as_ref().map(|f| f.status()),
                    ..Default::default()
                }
            }
            Request::Ban {
                addr,
                jail,
                duration: dur,
            } => {
                let r = self.manual_ban(&addr, jail.as_deref(), dur.as_deref(), now);
                self.noted(r)
            }
            Request::Unban { addr, jail, all } => {
                let r = self.manual_unban(addr.as_deref(), jail.as_deref(), all, now);
                self.noted(r)
            }
        }
    }

    fn bans(&self, now: Millis, only: Option<&str>) -> Vec<BanInfo> {
        let mut v = Vec::new();
        for j in self
            .jails
            .iter()
            .filter(|j| only.is_none_or(|n| n == j.name()))
        {
            for (addr, until) in j.tracker().bans() {
                let (reason, count) = self
                    .meta
                    .get(&(j.name().to_string(), addr))
                    .copied()
                    .unwrap_or((BanReason::Failures, 1));
                let mut b = BanInfo::new(addr, j.name(), until, now, reason, count);
                if let Some(o) = self.fleet.as_ref().and_then(|f| f.origin(addr, j.name())) {
                    b.origin = o;
                }
                v.push(b);
            }
        }
        if only.is_none_or(|n| n == config::DENY_JAIL) {
            for &addr in &self.denied {
                v.push(BanInfo::new(
                    addr,
                    config::DENY_JAIL,
                    FOREVER,
                    now,
                    BanReason::Deny,
                    1,
                ));
            }
        }
        v
    }

    /// The answer to a jail name that names none: with the jails there are.
    fn no_jail(&self, name: &str) -> Response {
        let names: Vec<&str> = self.jails.iter().map(|j| j.name()).collect();
        Response::err(if names.is_empty() {
            format!("no jail named {name:?}; no jail is configured")
        } else {
            format!(
                "no jail named {name:?}; the jails are: {}",
                names.join(", ")
            )
        })
    }

    fn manual_ban(
        &mut self,
        addr: &str,
        jail: Option<&str>,
        dur: Option<&str>,
        now: Millis,
    ) -> Response {
        let target = match crate::lists::parse_target(addr) {
            Ok(t) => t,
            Err(e) => return Response::err(e),
        };
        let ji = match jail {
            Some(n) => match self.jails.iter().position(|j| j.name() == n) {
                Some(i) => i,
                None => return self.no_jail(n),
            },
            None if self.jails.is_empty() => return Response::err("there is no jail to ban in"),
            None => 0,
        };
        if let Some(reason) = self.jails[ji].settings().ignore.check_prefix(target) {
            return Response::err(crate::lists::refusal(target, reason));
        }
        // the addresses the host has this instant too: one added in the last 100 ms (the
        // watcher's settle time) was banned by hand, then lifted, a review found
        let fresh = addrs::own().unwrap_or_default();
        if self.own.iter().chain(&fresh).any(|&o| target.contains(o)) {
            return Response::err(crate::lists::refusal(target, Reason::Own));
        }
        if crate::firewall::never_ban_prefix(target) {
            return Response::err(crate::lists::refusal(target, Reason::Loopback));
        }
        let len = match dur {
            None => self.cfg.jails[ji].bantime,
            Some("forever") => FOREVER,
            Some(d) => match duration::parse(d) {
                Ok(l) if l > 0 => l,
                Ok(_) => return Response::err("the duration must be longer than 0"),
                Err(e) => return Response::err(format!("{e} (or \"forever\")")),
            },
        };
        let mut until = if len == FOREVER {
            FOREVER
        } else {
            now.saturating_add(len)
        };
        let jail = self.jails[ji].name().to_string();
        if let Some(wider) = self.jails[ji].tracker().covering_ban(target) {
            if wider != target {
                // (one element per address in the kernel's sets: a ban of it alone cannot
                // sit inside the prefix's; said what to do, stop 46)
                let ends = self.jails[ji].tracker().ban_until_of(wider);
                let when = |t: Millis| {
                    if t == FOREVER {
                        "for good".to_string()
                    } else {
                        format!("until {}", portcullis_core::time::rfc3339(t))
                    }
                };
                // (to the minute: the same duration asked a while later is no longer,
                // review 67 L2)
                return match ends {
                    Some(t) if t.saturating_add(60_000) >= until => Response::ok(format!(
                        "{target} is already banned in jail {jail} as part of {wider}, {}: nothing changed (it stays banned as part of it: an unban of {wider}, or of an address inside it, frees it too)",
                        when(t)
                    )),
                    Some(t) => Response::err(format!(
                        "{target} is already banned in jail {jail} as part of {wider}, {}: a longer ban of {target} alone cannot sit inside that prefix's; ban {wider} longer (portcullis ban {wider} --jail {jail} --for ...), or unban {wider} first",
                        when(t)
                    )),
                    None => Response::err(format!(
                        "{target} is already banned in jail {jail} as part of {wider}"
                    )),
                };
            }
        }
        let mut ops = Vec::new();
        let before = self.jails[ji].tracker().ban_until_of(target);
        // a fleet peer's ban of it becomes this node's own: a new ban here, an offence (the
        // fleet's was none here: `StoreOp::Held`), not a new end of the same ban
        let from_fleet = self.fleet.as_ref().is_some_and(|f| {
            f.origins
                .lock()
                .expect("fleet origins")
                .contains_key(&(target, jail.clone()))
        });
        if before.is_some() {
            // a new duration for an active ban: the kernel element is replaced
            ops.push(FwOp::Del {
                jail: jail.clone(),
                addr: target,
            });
        }
        let covered: Vec<(Cidr, Millis)> = self.jails[ji]
            .tracker()
            .bans()
            .filter(|(c, _)| *c != target && target.covers(c))
            .collect();
        // the bans it replaces end no sooner than they would have (as a subnet ban's do): a
        // short ban of a net must not free a permanent ban inside it when it ends
        let mut notes = Vec::new();
        until = portcullis_core::policy::outlast(&mut notes, target, until, &covered);
        let first: Vec<FwOp> = covered
            .iter()
            .map(|&(addr, _)| FwOp::Del {
                jail: jail.clone(),
                addr,
            })
            .collect();
        // nft checks overlaps against the set before the transaction: narrower ones first
        if !first.is_empty() {
            if let Err(e) = self.apply_or_repair(&first) {
                return Response::err(format!("the firewall refused: {e:#}"));
            }
        }
        ops.push(FwOp::Add {
            jail: jail.clone(),
            addr: target,
            timeout_ms: fw_timeout(until, now),
        });
        // the kernel first: a refused ban must not leave the tracker saying "banned"
        if let Err(e) = self.apply_or_repair(&ops) {
            return Response::err(format!("the firewall refused: {e:#}"));
        }
        self.jails[ji].tracker_mut().take_covered(target);
        self.jails[ji].tracker_mut().ban(target, now, until, 0);
        let scope = (!self.cfg.jails[ji].policy.ban.across_jails()).then_some(jail.as_str());
        let since = now.saturating_sub(self.cfg.jails[ji].policy.ban.window());
        // a new duration for an active ban is the same ban: not one more offence toward
        // escalation and `permanent_after` (a ban script run again pushed a host toward a
        // permanent ban with no failure at all, a review found)
        let count = match before.filter(|_| !from_fleet) {
            Some(_) => self
                .meta
                .get(&(jail.clone(), target))
                .map_or(1, |&(_, n)| n),
            None => {
                self.history.record_ban(target, &jail, now);
                // a prefix wider than the offenders' counts its own bans, not theirs
                let key_len = self.cfg.jails[ji].key_len(target.addr.is_ipv4());
                if target.len < key_len {
                    self.history.count_subnet(target, scope, since, key_len)
                } else {
                    self.history.count(target, scope, since)
                }
            }
        };
        self.meta
            .insert((jail.clone(), target), (BanReason::Manual, count));
        let mut st_ops: Vec<StoreOp> = Vec::new();
        for &(addr, _) in &covered {
            events::emit(&Event::Unban {
                addr,
                jail: jail.clone(),
                // as a subnet ban's: not a pardon (a fleet peer keeps its copy until the
                // prefix replaces it there too)
                reason: UnbanReason::Lifted("subnet-ban".into()),
            });
            self.meta.remove(&(jail.clone(), addr));
            st_ops.push(StoreOp::Unban {
                addr,
                jail: jail.clone(),
                at: now,
            });
        }
        let record = BanRecord {
            addr: target,
            jail: jail.clone(),
            start: now,
            end: until,
            failures: 0,
            reason: BanReason::Manual,
            count,
        };
        st_ops.push(match before.filter(|_| !from_fleet) {
            Some(_) => StoreOp::Reend(record),
            None => StoreOp::Ban(record),
        });
        // (a loss is said at the end: the ban is in force, its event and the fleet's
        // bookkeeping go on, review 44)
        let saved = self.store.apply(&st_ops);
        // a manual ban of a fleet ban's address makes it this node's own: the origin's
        // unban or a distrust no longer lifts it, and it is published as ours
        if let Some(f) = &self.fleet {
            f.origins
                .lock()
                .expect("fleet origins")
                .remove(&(target, jail.clone()));
            // nor does another holder's unban give it another holder's end (review 39)
            f.co.lock()
                .expect("fleet co-holders")
                .remove(&(target, jail.clone()));
        }
        let len = if until == FOREVER {
            FOREVER
        } else {
            until - now
        };
        events::emit(&Event::Ban {
            addr: target,
            jail: jail.clone(),
            failures: 0,
            length: len,
            manual: true,
            reason: BanReason::Manual,
        });
        let mut answer = format!(
            "banned {target} in jail {jail} for {}",
            if len == FOREVER {
                "ever".to_string()
            } else {
                duration::format(len)
            }
        );
        if !covered.is_empty() {
            answer += &format!(
                " (it replaces {} narrower ban(s) of the jail{})",
                covered.len(),
                notes.first().map_or(String::new(), |n| format!(": {n}"))
            );
        }
        // (said when it shortens: `ban` sets the duration given, also below what was left)
        if let Some(b) = before.filter(|&b| b > until) {
            answer += &format!(
                " (it was banned {}: the ban now ends sooner)",
                if b == FOREVER {
                    "for ever".to_string()
                } else {
                    format!("for {} more", duration::format(b - now))
                }
            );
        }
        if let Err(e) = saved {
            return Response::err(format!("{answer}, but the state could not be saved: {e:#}"));
        }
        Response::ok(answer)
    }

    /// A `ban` or `unban` answer that changed something, with what it adds while the state
    /// file cannot be written: the change is kept in memory (see [`Store::apply`]).
    fn noted(&self, mut r: Response) -> Response {
        if let (true, Some(m)) = (r.ok, r.message.as_mut()) {
            m.push_str(&self.unsaved_note());
        }
        r
    }

    /// What an answer adds while the state file cannot be written: the change is kept in
    /// memory (see [`Store::apply`]).
    fn unsaved_note(&self) -> String {
        match self.store.unsaved() {
            0 => String::new(),
            n => format!(
                " (the state file cannot be written now: kept in memory with {} other change(s), written when it can, lost if the daemon stops before)",
                n.saturating_sub(1)
            ),
        }
    }

    fn manual_unban(
        &mut self,
        addr: Option<&str>,
        jail: Option<&str>,
        all: bool,
        now: Millis,
    ) -> Response {
        let target = match (addr, all) {
            // (`all` won, and lifted every ban: review 65)
            (Some(_), true) => return Response::err("give an address or `all`, not both"),
            (None, true) => None,
            (Some(a), false) => match crate::lists::parse_target(a) {
                Ok(c) => Some(c),
                Err(e) => return Response::err(e),
            },
            (None, false) => return Response::err("give an address, or --all"),
        };
        if let Some(t) = target {
            // (covered by a deny entry: a wider prefix that holds one lifts the bans inside
            // it, not the deny entry; it was refused whole, a review found)
            if jail.is_none_or(|j| j == config::DENY_JAIL)
                && self.denied.iter().any(|d| d.covers(&t))
            {
                return Response::err(format!(
                    "{t} is in the `deny` list: remove it from there and reload"
                ));
            }
        }
        if let Some(n) =
            jail.filter(|n| *n != config::DENY_JAIL && !self.jails.iter().any(|j| j.name() == *n))
        {
            return self.unban_dormant(n, target, now);
        }
        // (read before any jail lets a ban go: a failure to read changes nothing, review
        // 42)
        // the bans of jails no longer configured, kept in the state file (they come back with
        // the jail): lifted there too without `--jail`, as the offline `unban` does; said
        // where with `--jail` (review 38: they were pardoned but left banned)
        // (the whole table only when a jail not configured has bans: one count per jail
        // first, an `unban` beside 100,000 bans read them all)
        let rows = match dormant_notes(&self.store, &self.cfg, now) {
            Ok(d) if d.is_empty() => Ok(Vec::new()),
            Ok(_) => self.store.active_bans(now),
            Err(e) => Err(e),
        };
        let dormant: Vec<(Cidr, String)> = match rows {
            Ok(rows) => lifted_by(
                target,
                rows.into_iter()
                    .filter(|b| {
                        b.jail != config::DENY_JAIL
                            && !self.jails.iter().any(|j| j.name() == b.jail)
                    })
                    .map(|b| (b.addr, b.jail))
                    .collect(),
            ),
            Err(e) => return Response::err(format!("cannot read the state: {e:#}")),
        };
        // fleet bans waiting for the accept rate that this unban pardons (of the address,
        // or of a prefix that holds it or that it holds): dropped, or they were applied after
        // it (review 57 L4); once the unban is sure to go on (review 62)
        let waiting = self
            .fleet
            .as_ref()
            .map_or(0, |f| f.drop_waiting(target, jail));
        let waiting_said = match waiting {
            0 => String::new(),
            n => format!("; {n} fleet ban(s) of it waiting for fleet.accept_rate dropped"),
        };
        let mut fw_ops = Vec::new();
        let mut st_ops = Vec::new();
        // the jails whose open failures of it were forgiven, and their windows' keys
        let mut forgiven: Vec<(String, Vec<Cidr>)> = Vec::new();
        for j in self
            .jails
            .iter_mut()
            .filter(|j| jail.is_none_or(|n| n == j.name()))
        {
            let name = j.name().to_string();
            let addrs: Vec<Cidr> = match target {
                // a prefix that is not banned itself lifts the bans inside it (the pieces of
                // a ban cut around an ignored address: `unban` of the prefix said "not
                // banned", a review found)
                Some(t) => {
                    // a pardon: the offender's open failures too, a /64's for one of its
                    // addresses (a reset is recorded for them below: a crash must not
                    // bring them back, review 45)
                    let keys = j.tracker_mut().forgive(t);
                    if !keys.is_empty() {
                        forgiven.push((name.clone(), keys));
                    }
                    match j.tracker_mut().unban(t) {
                        Some(c) => vec![c],
                        None if !t.is_host() => j.tracker_mut().take_covered(t),
                        None => Vec::new(),
                    }
                }
                None => j.tracker_mut().unban_all(),
            };
            for a in addrs {
                events::emit(&Event::Unban {
                    addr: a,
                    jail: name.clone(),
                    reason: UnbanReason::Manual,
                });
                self.meta.remove(&(name.clone(), a));
                // a manual unban forgets the offender's earlier bans (escalation restarts)
                self.history.record_reset(a, &name, now);
                fw_ops.push(FwOp::Del {
                    jail: name.clone(),
                    addr: a,
                });
                st_ops.push(StoreOp::Unban {
                    addr: a,
                    jail: name.clone(),
                    at: now,
                });
                st_ops.push(StoreOp::Reset {
                    addr: a,
                    jail: name.clone(),
                    at: now,
                });
            }
        }
        let mut dormant_lifted = 0;
        if jail.is_none() {
            for (a, j) in &dormant {
                self.lift_dormant(*a, j.clone(), now, &mut st_ops);
                dormant_lifted += 1;
            }
        }
        if fw_ops.is_empty() && dormant_lifted == 0 {
            // banned in other jails: say where (`--jail` chose one), and forget nothing
            let elsewhere: Vec<String> = match (target, jail) {
                (Some(t), Some(n)) => self
                    .jails
                    .iter()
                    .filter(|j| j.name() != n)
                    .filter(|j| {
                        j.tracker().ban_until_of(t).is_some()
                            || j.tracker().covering_ban(t).is_some()
                    })
                    .map(|j| j.name())
                    .chain(dormant.iter().map(|(_, j)| j.as_str()).filter(|j| *j != n))
                    .map(str::to_string)
                    .collect(),
                _ => Vec::new(),
            };
            if let (Some(t), Some(n), false) = (target, jail, elsewhere.is_empty()) {
                // (its open failures in that jail forgotten all the same: said, and kept
                // across a crash, review 46)
                let ops = self.reset_forgiven(&forgiven, now);
                let forgot = match self.store.apply(&ops) {
                    _ if ops.is_empty() => String::new(),
                    Ok(()) => format!("; its open failures in jail {n} are forgotten"),
                    Err(e) => format!("; its open failures in jail {n} are forgotten until a restart, the state could not be saved: {e:#}"),
                };
                return Response::err(format!(
                    "{t} is not banned in jail {n} (it is in jail {}; leave out --jail to lift it everywhere){forgot}",
                    elsewhere.join(", ")
                ));
            }
            // not banned now, but banned before: a pardon, its escalation starts again
            if let Some(t) = target {
                if let Some(mut r) = self.forget(t, jail, now, &forgiven) {
                    if let Some(m) = r.message.as_mut().or(r.error.as_mut()) {
                        m.push_str(&waiting_said);
                    }
                    return r;
                }
            }
            if waiting > 0 {
                return Response::ok(format!("no ban was running{waiting_said}"));
            }
            return Response::err(match (target, jail) {
                (Some(t), Some(n)) => format!("{t} is not banned in jail {n}"),
                (Some(t), None) => format!("{t} is not banned"),
                (None, _) => "nothing is banned".into(),
            });
        }
        // the jails where it is not banned now forget its earlier bans too: an `unban` is a
        // pardon, whether or not a ban happened to be running somewhere (review 35)
        // (`--all`: each address lifted, in the other jails too)
        let lifted: Vec<Cidr> = fw_ops
            .iter()
            .filter_map(|op| match op {
                FwOp::Del { addr, .. } => Some(*addr),
                FwOp::Add { .. } => None,
            })
            .chain(dormant.iter().take(dormant_lifted).map(|(a, _)| *a))
            .collect();
        let (said, ops) = pardon_lifted(&mut self.history, &self.cfg, target, &lifted, jail, now);
        st_ops.extend(ops);
        st_ops.extend(self.reset_forgiven(&forgiven, now));
        // the ban is lifted here whatever the firewall says (the tracker has let it go): the
        // state file follows, so that the next start does not put it back (it did, while
        // `bans` no longer listed it and a second `unban` said "not banned": review)
        // (both said when both failed: the firewall's refusal was hidden by the state's,
        // review 43)
        let fw = self.fw.apply(&fw_ops);
        let st = self.store.apply(&st_ops);
        let mut trouble = Vec::new();
        if let Err(e) = fw {
            trouble.push(format!(
                "the firewall refused to lift it, so it may still block: {e:#}"
            ));
        }
        if let Err(e) = st {
            trouble.push(format!("the state could not be saved: {e:#}"));
        }
        if !trouble.is_empty() {
            return Response::err(format!(
                "unbanned in Portcullis, but {}",
                trouble.join("; and ")
            ));
        }
        let mut answer = format!("unbanned {} ban(s)", fw_ops.len() + dormant_lifted);
        // each ban lifted, by name: an address inside a banned prefix lifts the prefix,
        // which the answer did not say (a permanent /24 went with "unbanned 1 ban(s)", a
        // review found); the first ten (`unban --all` may lift thousands)
        let named: Vec<String> = fw_ops
            .iter()
            .filter_map(|op| match op {
                FwOp::Del { jail, addr } => Some(match target {
                    Some(t) if *addr != t && addr.covers(&t) => {
                        format!("{addr} ({jail}), which holds {t}")
                    }
                    // (the prefix asked for holds the ban lifted: it read "which holds"
                    // the other way round, review 56)
                    Some(t) if *addr != t => format!("{addr} ({jail}), inside {t}"),
                    _ => format!("{addr} ({jail})"),
                }),
                FwOp::Add { .. } => None,
            })
            .collect();
        if !named.is_empty() {
            answer += ": ";
            answer += &named[..named.len().min(10)].join(", ");
            if named.len() > 10 {
                answer += &format!(" and {} more", named.len() - 10);
            }
        }
        if dormant_lifted > 0 {
            // (the first ten: an `unban --all` may lift thousands)
            let mut shown: Vec<String> = dormant
                .iter()
                .take(10)
                .map(|(a, j)| format!("{a} ({j})"))
                .collect();
            if dormant_lifted > 10 {
                shown.push(format!("and {} more", dormant_lifted - 10));
            }
            answer += &format!(
                " ({dormant_lifted} of jails not configured, from the state file: {})",
                shown.join(", ")
            );
        }
        if !said.is_empty() {
            answer += &format!("; earlier bans forgotten too ({said})");
        }
        // `--all` leaves the `deny` list's bans: configuration, not offences (said: "every
        // active ban" left seven standing without a word, a review found)
        if target.is_none() && jail.is_none() && !self.denied.is_empty() {
            answer += &format!(
                "; the {} ban(s) of the `deny` list stay (remove them from `deny` and reload)",
                self.denied.len()
            );
        }
        answer += &waiting_said;
        Response::ok(answer)
    }

    /// `unban` of `t`, which is not banned (in `jail`, or in any jail): its earlier bans are
    /// forgotten ([`pardon`]). `None` when no jail counts any (then `unban` says "not
    /// banned", as before).
    /// `forgiven`: the jails whose open failures of it were forgiven (said, and a reset
    /// recorded, which the restore of saved windows sees).
    fn forget(
        &mut self,
        t: Cidr,
        jail: Option<&str>,
        now: Millis,
        forgiven: &[(String, Vec<Cidr>)],
    ) -> Option<Response> {
        let (said, mut st_ops) = pardon(&mut self.history, &self.cfg, t, jail, now, true);
        if said.is_empty() && forgiven.is_empty() {
            return None;
        }
        st_ops.extend(self.reset_forgiven(forgiven, now));
        let what = if said.is_empty() {
            "open failures"
        } else {
            "earlier bans"
        };
        if let Err(e) = self.store.apply(&st_ops) {
            return Some(Response::err(format!(
                "{t} is not banned; its {what} are forgotten until a restart, the state could not be saved: {e:#}"
            )));
        }
        let answer = if said.is_empty() {
            // (it said "not banned", exit 1, while the failures were gone, review 45)
            let jails: Vec<&str> = forgiven.iter().map(|(j, _)| j.as_str()).collect();
            format!(
                "{t} is not banned; its open failures are forgotten (in jail {})",
                jails.join(", ")
            )
        } else {
            info!("{t} pardoned: its earlier bans are forgotten ({said})");
            pardoned(t, jail, &said)
        };
        Some(Response::ok(answer))
    }

    /// The resets that record the forgiving of open failures (per jail, the keys of the
    /// windows dropped), in the history and for the state: a restart after a crash does not
    /// put them back. At the offenders' keys, not at the address or prefix unbanned: a
    /// reset at a prefix between a subnet ban's and the offenders' length cancelled the
    /// subnet's earlier bans in its count (review 46).
    fn reset_forgiven(&mut self, forgiven: &[(String, Vec<Cidr>)], now: Millis) -> Vec<StoreOp> {
        let mut ops = Vec::new();
        for (j, keys) in forgiven {
            for &k in keys {
                self.history.record_reset(k, j, now);
                ops.push(StoreOp::Reset {
                    addr: k,
                    jail: j.clone(),
                    at: now,
                });
            }
        }
        ops
    }
}

impl Engine {
    /// Lifts the stored ban of `addr` in `jail`, a jail not configured (nothing of it is in
    /// the firewall): its history reset, the event, the state's lift and reset.
    fn lift_dormant(&mut self, addr: Cidr, jail: String, now: Millis, st_ops: &mut Vec<StoreOp>) {
        self.history.record_reset(addr, &jail, now);
        events::emit(&Event::Unban {
            addr,
            jail: jail.clone(),
            reason: UnbanReason::Manual,
        });
        st_ops.push(StoreOp::Unban {
            addr,
            jail: jail.clone(),
            at: now,
        });
        st_ops.push(StoreOp::Reset {
            addr,
            jail,
            at: now,
        });
    }

    /// `unban [ADDR | --all] --jail NAME` of a jail not configured: the bans the state file
    /// keeps for it (see [`Engine::restore_bans`]; nothing of them is in the firewall) are
    /// lifted there, so that they do not come back with the jail.
    fn unban_dormant(&mut self, jail: &str, target: Option<Cidr>, now: Millis) -> Response {
        let rows = match self.store.active_bans(now) {
            Ok(r) => r,
            Err(e) => return Response::err(format!("cannot read the state: {e:#}")),
        };
        if !rows.iter().any(|b| b.jail == jail) {
            return self.no_jail(jail);
        }
        let mut st_ops = Vec::new();
        let of_jail = rows
            .into_iter()
            .filter(|b| b.jail == jail)
            .map(|b| (b.addr, b.jail))
            .collect();
        for (addr, j) in lifted_by(target, of_jail) {
            self.lift_dormant(addr, j, now, &mut st_ops);
        }
        if st_ops.is_empty() {
            let t = target.map_or(String::new(), |t| t.to_string());
            return Response::err(format!(
                "{t} is not banned in jail {jail} (which is not configured)"
            ));
        }
        if let Err(e) = self.store.apply(&st_ops) {
            return Response::err(format!("cannot save the state: {e:#}"));
        }
        Response::ok(format!(
            "lifted {} ban(s) of jail {jail}, which is not configured, from the state file (the firewall held none of them)",
            st_ops.len() / 2
        ))
    }
}

/// Each jail not configured with active bans in the state file, and what to say of it:
/// its bans are kept there, not enforced, back with the jail. `status`, and `bans` of the
/// daemon and offline (which listed them as bans in force, review 41).
pub(crate) fn dormant_notes(
    store: &Store,
    cfg: &Config,
    now: Millis,
) -> Result<Vec<(String, String)>> {
    Ok(store
        .active_per_jail(now)?
        .into_iter()
        .filter(|(jail, _)| jail != config::DENY_JAIL && !cfg.jails.iter().any(|j| j.name == *jail))
        .map(|(jail, n)| {
            let note = format!("jail {jail} is not configured: {n} ban(s) of it kept in the state file, not enforced; they come back with the jail before they end, or go to the jail that gives renamed_from = [\"{jail}\"] (portcullis unban --jail {jail} --all forgets them)");
            (jail, note)
        })
        .collect())
}

/// The stored bans (address, jail) that an `unban` of `target` lifts, every one for
/// `--all` (`None`): per jail, as [`portcullis_core::track::Tracker::unban`] does for a
/// configured jail, the ban of `target` itself, else the widest that covers it, else (a
/// prefix) the bans inside it. The daemon's rule for the bans of jails not configured, and
/// the offline `unban`'s (each had its own, and the three differed).
pub(crate) fn lifted_by(target: Option<Cidr>, bans: Vec<(Cidr, String)>) -> Vec<(Cidr, String)> {
    let Some(t) = target else {
        return bans;
    };
    let mut jails: Vec<&String> = bans.iter().map(|(_, j)| j).collect();
    jails.sort();
    jails.dedup();
    jails
        .into_iter()
        .flat_map(|j| {
            let of_jail = bans.iter().filter(|(_, bj)| bj == j).map(|(c, _)| *c);
            match track::ban_lifted_by(t, of_jail.clone()) {
                Some(c) => vec![(c, j.clone())],
                None if !t.is_host() => of_jail
                    .filter(|c| t.covers(c) && *c != t)
                    .map(|c| (c, j.clone()))
                    .collect(),
                None => Vec::new(),
            }
        })
        .collect()
}

/// Forgets the earlier bans of `t` (not banned now) in `jail`, or in every jail, each
/// jail's own (in an `across_jails` count too, each jail's part is its own:
/// [`History::count`]) ([`History::forget`]). Every jail: the configured ones, and those no
/// longer configured whose bans of it are in the history (they still count across jails
/// for their window, and nothing else could forget them, review 36; all their history
/// counts, with the default prefix lengths). Returns what was forgotten ("2 in jail sshd",
/// empty when nothing) and the resets to store. The daemon's `unban` and the offline one.
pub(crate) fn pardon(
    history: &mut History,
    cfg: &Config,
    t: Cidr,
    jail: Option<&str>,
    now: Millis,
    inside: bool,
) -> (String, Vec<StoreOp>) {
    let v4 = t.addr.is_ipv4();
    // only the jails with bans of it (an `unban --all` of 100,000 bans asks once per address)
    let touched = history.jails_of(t);
    let mut scope: Vec<(String, Millis, u8)> = cfg
        .jails
        .iter()
        .filter(|j| jail.is_none_or(|n| n == j.name) && touched.contains(&j.name))
        .map(|j| {
            let key_len = j.key_len(v4);
            // every earlier ban (the history held: 90 days), not only the jail's own
            // window: a jail counting across jails with a longer window still counted this
            // jail's older bans (review 39)
            (j.name.clone(), 0, key_len)
        })
        .collect();
    if jail.is_none() {
        for name in touched {
            if !scope.iter().any(|(n, _, _)| *n == name) {
                scope.push((
                    name,
                    0,
                    track::key_len(v4, DEFAULT_V4_PREFIX, DEFAULT_V6_PREFIX),
                ));
            }
        }
    }
    let mut said = Vec::new();
    let mut ops = Vec::new();
    for (name, since, key_len) in scope {
        let (n, keys) = history.forget(t, &name, key_len, since, now, inside);
        if n == 0 {
            continue;
        }
        said.push(format!("{n} in jail {name}"));
        ops.extend(keys.into_iter().map(|addr| StoreOp::Reset {
            addr,
            jail: name.clone(),
            at: now,
        }));
    }
    (said.join(", "), ops)
}

/// After an `unban` lifted bans: [`pardon`] of `target` (or, for `--all`, of each address
/// `lifted`) in the jails where it was not banned. Returns what to add to the answer (the
/// jails' counts for one target, "their bans in other jails" for `--all`; empty when
/// nothing) and the resets to store. The daemon's `unban` and the offline one.
pub(crate) fn pardon_lifted(
    history: &mut History,
    cfg: &Config,
    target: Option<Cidr>,
    lifted: &[Cidr],
    jail: Option<&str>,
    now: Millis,
) -> (String, Vec<StoreOp>) {
    let mut of: Vec<Cidr> = target.map_or_else(|| lifted.to_vec(), |t| vec![t]);
    of.sort();
    of.dedup();
    let mut said = String::new();
    let mut ops = Vec::new();
    for t in of {
        // (`--all`: a lifted subnet forgets its own bans, not its offenders')
        let (s, more) = pardon(history, cfg, t, jail, now, target.is_some());
        if !s.is_empty() && target.is_some() {
            said = s;
        } else if !s.is_empty() && said.is_empty() {
            said = "their bans in other jails".into();
        }
        ops.extend(more);
    }
    (said, ops)
}

/// The answer to an `unban` that pardoned (see [`pardon`]), of `jail` if one was given.
/// (Not "its next ban is a first one": across jails, the other jails' part still counts.)
pub(crate) fn pardoned(t: Cidr, jail: Option<&str>, said: &str) -> String {
    let banned = jail.map_or("banned".to_string(), |j| format!("banned in jail {j}"));
    format!("{t} is not {banned}; its earlier bans are forgotten ({said})")
}

/// Where the bans are left when the daemon stops.
fn stop_kind(backend: &str, keep_bans: bool) -> StopKind {
    match (backend, keep_bans) {
        ("null", _) => StopKind::NullBackend,
        (_, true) => StopKind::KeepBans,
        (_, false) => StopKind::TableRemoved,
    }
}

/// The debug line of a line a jail counted, or matched and set aside.
fn debug_step(j: &Jail, step: &Step) {
    match step {
        Step::Failure { failure, .. } => {
            let rule = j
                .match_set()
                .filters()
                .get(failure.filter)
                .and_then(|f| f.rules().get(failure.rule))
                .map_or("?", |r| r.id.as_str());
            tracing::debug!(
                "failure {} jail={} rule={rule} weight={}",
                failure.addr,
                j.name(),
                failure.weight
            );
        }
        Step::Ignored { addr, reason } => {
            tracing::debug!("not counted {addr} jail={} ({reason})", j.name());
        }
        Step::Stale { addr, .. } => {
            tracing::debug!("not counted {addr} jail={} (the line is too old)", j.name());
        }
        _ => {}
    }
}

/// A number for a log source (FNV-1a of its name), for [`Jail::process_from`].
fn source_key(src: &str) -> u64 {
    src.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::journal::reader::{cursor_file, journal_changes};

    /// Stands in for `journalctl --output=json`. Asked for the newest entry (no `--follow`),
    /// prints one with the cursor `tail`. Following, records "start PID MATCH CURSOR" in the
    /// file given as `$1` (CURSOR from `--cursor=`), prints the entry of that cursor again
    /// (as journalctl does) unless it is `tail`, and one entry (cursor `cursor-PID`) whose
    /// message names its match and the cursor it resumed from, then waits until SIGTERM.
    const FAKE_JOURNALCTL: &str = r#"
trap 'kill "$p" 2>/dev/null; exit 0' TERM
log=$1; shift
case " $* " in *" --follow "*) ;; *) echo '{"__CURSOR":"tail"}'; exit 0;; esac
sleep 600 >/dev/null 2>&1 &
p=$!
cur=none
for a; do case $a in --cursor=*) cur=${a#--cursor=};; esac; last=$a; done
echo "start $$ $last $cur" >> "$log"
if [ "$cur" != tail ]; then printf '{"__CURSOR":"%s","MESSAGE":"read again"}\n' "$cur"; fi
printf '{"__CURSOR":"cursor-%s","__REALTIME_TIMESTAMP":"1735689600000000","_HOSTNAME":"host","SYSLOG_IDENTIFIER":"prog","_PID":"1","MESSAGE":"from %s after %s"}\n' $$ "$last" "$cur"
wait "$p"
"#;

    /// `status` says loudly when a jail reads only the journal and journald is not running
    /// (the default sshd jail on a machine with neither journald nor auth.log), as it does
    /// for a jail whose files are all unreadable.
    #[test]
    fn status_warns_of_a_journal_source_without_journald() {
        let dir = tempfile::tempdir().unwrap();
        let text = config(
            dir.path(),
            &[
                ("j", &["journal:_SYSTEMD_UNIT=ssh.service"]),
                ("both", &["journal:_COMM=sshd", "/x/auth.log"]),
            ],
        );
        let cfg = Config::from_texts(&[("c.toml".into(), text)], vec![]).unwrap();
        let (j, both) = (&cfg.jails[0], &cfg.jails[1]);
        let loud = |w: &[String]| w.iter().any(|w| w.starts_with("NO READABLE LOG SOURCE"));
        let down = |w: &[String]| w.iter().any(|w| w.starts_with("journald is not running"));
        let w = source_warnings_with(j, &[], false);
        assert!(loud(&w) && down(&w), "{w:?}");
        let w = source_warnings_with(j, &[], true);
        assert!(w.is_empty(), "{w:?}");
        let readable = [("/x/auth.log".to_string(), true)];
        let w = source_warnings_with(both, &readable, false);
        assert!(!loud(&w) && down(&w), "{w:?}");
        let unreadable = [("/x/auth.log".to_string(), false)];
        let w = source_warnings_with(both, &unreadable, false);
        assert!(loud(&w) && down(&w), "{w:?}");
        let w = source_warnings_with(both, &unreadable, true);
        assert!(!loud(&w) && !down(&w) && w.len() == 1, "{w:?}");
    }

    fn config(dir: &Path, jails: &[(&str, &[&str])]) -> String {
        let mut t = format!(
            "state_dir = {:?}\nsocket = {:?}\n[firewall]\nbackend = \"null\"\n",
            dir.display().to_string(),
            dir.join("p.sock").display().to_string()
        );
        for (name, logs) in jails {
            t += &format!("[[jail]]\nname = {name:?}\nfilter = \"sshd\"\nlogs = {logs:?}\n");
        }
        t
    }

    fn engine(dir: &Path, config_path: &Path, tx: EngineTx) -> Engine {
        let cfg = Config::load(Some(config_path)).unwrap();
        let cmd = JournalCommand {
            program: "sh".into(),
            args: vec![
                "-c".into(),
                FAKE_JOURNALCTL.into(),
                "fake-journalctl".into(),
                dir.join("starts.log").into(),
            ],
            ..Default::default()
        };
        let mut eng = Engine::new(
            Some(config_path),
            cfg,
            Vec::new(),
            Box::new(Null::default()),
            Store::open(&dir.join("p.db"), CorruptPolicy::Refuse).unwrap(),
            cmd,
            tx,
        );
        eng.last_prune = 0;
        eng
    }

    /// The next line a source sent, as (source, text), once the engine has processed it.
    fn next_line(eng: &mut Engine, rx: &Receiver<Msg>) -> (String, String) {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match rx.recv_timeout(left) {
                Ok(Msg::Lines(b)) => {
                    let first = b
                        .iter()
                        .next()
                        .map(|(s, l)| (s.to_string(), String::from_utf8_lossy(l).into_owned()));
                    eng.on_lines(b).unwrap();
                    if let Some(first) = first {
                        return first;
                    }
                }
                Ok(Msg::Note(n)) => panic!("unexpected note: {n}"),
                Ok(_) => {}
                Err(e) => panic!("no line from any journal reader: {e}"),
            }
        }
    }

    /// (pid, match, cursor) of every fake journalctl started so far, in order.
    fn starts(dir: &Path) -> Vec<(u32, String, String)> {
        std::fs::read_to_string(dir.join("starts.log"))
            .unwrap_or_default()
            .lines()
            .map(|l| {
                let f: Vec<&str> = l.split(' ').collect();
                (f[1].parse().unwrap(), f[2].to_string(), f[3].to_string())
            })
            .collect()
    }

    fn gone(pid: u32) -> bool {
        // a zombie keeps its /proc entry until it is reaped
        !Path::new(&format!("/proc/{pid}")).exists()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// The active bans of the engine: (address, jail), in the trackers, the store and the
    /// firewall, each sorted.
    type Seen = Vec<(IpAddr, String)>;
    fn active(eng: &mut Engine) -> (Seen, Seen, Seen) {
        let mut tracker: Seen = eng
            .jails
            .iter()
            .flat_map(|j| {
                j.tracker()
                    .bans()
                    .map(|(a, _)| (a.addr, j.name().to_string()))
            })
            .collect();
        let mut store: Seen = eng
            .store
            .active_bans(now_ms())
            .unwrap()
            .into_iter()
            .map(|b| (b.addr.addr, b.jail))
            .collect();
        let mut fw: Seen = eng
            .fw
            .list()
            .unwrap()
            .into_iter()
            .map(|(j, a, _)| (a, j))
            .filter(|(_, j)| j != config::DENY_JAIL)
            .collect();
        for v in [&mut tracker, &mut store, &mut fw] {
            v.sort();
        }
        (tracker, store, fw)
    }

    fn stored_ban(addr: &str, jail: &str) -> StoreOp {
        StoreOp::Ban(BanRecord {
            addr: Cidr::host(ip(addr)),
            jail: jail.into(),
            start: now_ms(),
            end: now_ms() + 36_499 * 86_400_000,
            failures: 5,
            reason: BanReason::Failures,
            count: 1,
        })
    }

    /// A ban stamped ahead of now (the clock was ahead when it was made, or is behind now)
    /// comes back for its length at most, in the kernel and in the tracker: counted from the
    /// wall clock alone, a 20 s ban made "three years ahead" had three years left.
    #[test]
    fn a_ban_from_the_future_comes_back_for_its_length_at_most() {
        let dir = tempfile::tempdir().unwrap();
        let dir = dir.path();
        let path = dir.join("portcullis.toml");
        std::fs::write(&path, config(dir, &[("sshd", &[])])).unwrap();
        let year = 365 * 86_400_000;
        let ban = |addr: &str, start: Millis, len: Millis| {
            StoreOp::Ban(BanRecord {
                addr: Cidr::host(ip(addr)),
                jail: "sshd".into(),
                start,
                end: start + len,
                failures: 5,
                reason: BanReason::Failures,
                count: 1,
            })
        };
        let now = now_ms();
        {
            let mut st = Store::open(&dir.join("p.db"), CorruptPolicy::Refuse).unwrap();
            st.apply(&[
                ban("203.0.113.1", now + 3 * year, 20_000),
                ban("203.0.113.2", now - 1000, 3_600_000),
            ])
            .unwrap();
        }
        let (tx, _rx) = engine_channel();
        let mut eng = engine(dir, &path, tx);
        eng.restore().unwrap();
        let left = |eng: &mut Engine, a: &str| -> (i64, i64) {
            let fw = eng
                .fw
                .list()
                .unwrap()
                .into_iter()
                .find(|(_, x, _)| *x == ip(a))
                .and_then(|(_, _, t)| t)
                .unwrap();
            let until = eng.jails[0].tracker().ban_until(ip(a)).unwrap();
            (fw, until - now)
        };
        let (fw, tr) = left(&mut eng, "203.0.113.1");
        assert!(fw <= 21_000 && tr <= 21_000, "{fw} {tr}");
        // a ban made before now keeps its end
        let (fw, tr) = left(&mut eng, "203.0.113.2");
        assert!(
            fw > 3_500_000 && fw <= 3_600_000 && tr > 3_500_000,
            "{fw} {tr}"
        );
    }

    #[test]
    fn restore_and_reload_lift_bans_the_ignore_list_now_covers() {
        let dir = tempfile::tempdir().unwrap();
        let dir = dir.path();
        let path = dir.join("portcullis.toml");
        let write = |ignore: &str| {
            let text = format!("ignore = [{ignore}]\n{}", config(dir, &[("sshd", &[])]));
            std::fs::write(&path, text).unwrap()
        };
        // the state holds three bans; one address is ignored already, one in a range of a
        // jail that is gone (left alone), and one stays
        write("\"198.51.100.0/24\"");
        {
            let mut st = Store::open(&dir.join("p.db"), CorruptPolicy::Refuse).unwrap();
            st.apply(&[
                stored_ban("198.51.100.7", "sshd"),
                stored_ban("203.0.113.9", "sshd"),
                stored_ban("192.0.2.4", "sshd"),
                stored_ban("198.51.100.8", "gone"),
            ])
            .unwrap();
        }
        let (tx, _rx) = engine_channel();
        let mut eng = engine(dir, &path, tx);
        eng.restore().unwrap();
        let sshd = |a: &str| (ip(a), "sshd".to_string());
        let (tracker, store, fw) = active(&mut eng);
        assert_eq!(tracker, [sshd("192.0.2.4"), sshd("203.0.113.9")]);
        assert_eq!(fw, tracker);
        let gone = (ip("198.51.100.8"), "gone".to_string());
        assert_eq!(
            store,
            [sshd("192.0.2.4"), gone.clone(), sshd("203.0.113.9")]
        );

        // the owner adds their address (and a prefix) to `ignore` and reloads
        write("\"198.51.100.0/24\", \"203.0.113.9\", \"192.0.2.4/30\"");
        let msg = eng.reload().unwrap();
        assert!(msg.ends_with("lifted=2"), "{msg}");
        let (tracker, store, fw) = active(&mut eng);
        assert!(tracker.is_empty() && fw.is_empty(), "{tracker:?} {fw:?}");
        assert_eq!(store, [gone]);
        // history keeps the lifted bans, ended now
        let h = eng.store.history(ip("203.0.113.9")).unwrap();
        assert!(h.len() == 1 && h[0].end <= now_ms(), "{h:?}");
        // and a restart does not bring them back
        drop(eng);
        let (tx, _rx) = engine_channel();
        let mut eng = engine(dir, &path, tx);
        eng.restore().unwrap();
        let (tracker, _, fw) = active(&mut eng);
        assert!(tracker.is_empty() && fw.is_empty(), "{tracker:?} {fw:?}");
    }

    /// An `ignore` entry inside a banned prefix cuts the ban around it, at a reload and at a
    /// start, as a ban made then would be: lifted whole, one ignored address freed every
    /// offender of the /24 (a review found).
    #[test]
    fn an_ignored_address_inside_a_prefix_ban_narrows_it() {
        let dir = tempfile::tempdir().unwrap();
        let dir = dir.path();
        let path = dir.join("portcullis.toml");
        let write = |ignore: &str| {
            let text = format!("ignore = [{ignore}]\n{}", config(dir, &[("sshd", &[])]));
            std::fs::write(&path, text).unwrap()
        };
        write("");
        let (tx, _rx) = engine_channel();
        let mut eng = engine(dir, &path, tx);
        eng.restore().unwrap();
        let now = now_ms();
        assert!(eng.manual_ban("203.0.113.0/24", None, Some("1h"), now).ok);
        let until = eng.jails[0]
            .tracker()
            .ban_until_of(Cidr::parse("203.0.113.0/24").unwrap())
            .unwrap();
        let bans = |eng: &Engine| -> (Vec<Cidr>, Vec<Cidr>) {
            let mut t: Vec<Cidr> = eng.jails[0].tracker().bans().map(|(a, _)| a).collect();
            let mut s: Vec<Cidr> = eng
                .store
                .active_bans(now_ms())
                .unwrap()
                .into_iter()
                .map(|b| b.addr)
                .collect();
            t.sort();
            s.sort();
            (t, s)
        };
        let ignored = ip("203.0.113.5");
        let check = |eng: &mut Engine| {
            let (t, s) = bans(eng);
            assert_eq!(t.len(), 8, "{t:?}");
            assert_eq!(t, s);
            assert!(t.iter().all(|c| !c.contains(ignored)), "{t:?}");
            for n in [0u8, 4, 6, 7, 100, 255] {
                let a = ip(&format!("203.0.113.{n}"));
                assert!(eng.jails[0].tracker().is_banned(a), "{a}");
            }
            assert!(!eng.jails[0].tracker().is_banned(ignored));
            // the same end
            assert!(eng.jails[0].tracker().bans().all(|(_, u)| u == until));
            let fw: Vec<IpAddr> = eng
                .fw
                .list()
                .unwrap()
                .into_iter()
                .map(|(_, a, _)| a)
                .collect();
            assert_eq!(fw.len(), 8, "{fw:?}");
            // the pieces are the prefix's ban, not bans of their own: the history holds the
            // prefix alone (review 28: each piece came back at a start as an offender, and
            // made subnet bans)
            let h: Vec<Cidr> = eng
                .store
                .history_since(0)
                .unwrap()
                .into_iter()
                .map(|b| b.addr)
                .collect();
            assert_eq!(h, [Cidr::parse("203.0.113.0/24").unwrap()]);
        };
        write("\"203.0.113.5\"");
        let msg = eng.reload().unwrap();
        assert!(msg.ends_with("lifted=1"), "{msg}");
        check(&mut eng);
        // a restart keeps them
        drop(eng);
        let (tx, _rx) = engine_channel();
        let mut eng = engine(dir, &path, tx);
        eng.restore().unwrap();
        check(&mut eng);
        // at a start: a prefix ban the ignore list came to cover while the daemon was down
        drop(eng);
        let dir2 = tempfile::tempdir().unwrap();
        let dir2 = dir2.path();
        let path2 = dir2.join("portcullis.toml");
        std::fs::write(
            &path2,
            format!(
                "ignore = [\"203.0.113.5\"]\n{}",
                config(dir2, &[("sshd", &[])])
            ),
        )
        .unwrap();
        {
            let mut st = Store::open(&dir2.join("p.db"), CorruptPolicy::Refuse).unwrap();
            st.apply(&[StoreOp::Ban(BanRecord {
                addr: Cidr::parse("203.0.113.0/24").unwrap(),
                jail: "sshd".into(),
                start: now,
                end: until,
                failures: 5,
                reason: BanReason::Subnet,
                count: 1,
            })])
            .unwrap();
        }
        let (tx, _rx) = engine_channel();
        let mut eng = engine(dir2, &path2, tx);
        eng.restore().unwrap();
        check(&mut eng);
        // `unban` of the prefix lifts its pieces
        let r = eng.manual_unban(Some("203.0.113.0/24"), None, false, now_ms());
        assert!(r.ok, "{r:?}");
        assert_eq!(bans(&eng), (vec![], vec![]));
    }

    #[test]
    fn a_new_own_address_lifts_its_ban() {
        let dir = tempfile::tempdir().unwrap();
        let mut eng = sshd_engine(dir.path());
        let now = now_ms();
        for a in ["203.0.113.9", "2001:db8:1::5"] {
            let r = eng.manual_ban(a, None, Some("1h"), now);
            assert!(r.ok, "{r:?}");
        }
        // the host gets 203.0.113.9 on an interface: lifted, the other ban stays
        eng.set_own(vec![ip("127.0.0.1"), ip("203.0.113.9")], now)
            .unwrap();
        let (tracker, store, fw) = active(&mut eng);
        let left = vec![(ip("2001:db8:1::5"), "sshd".to_string())];
        assert_eq!((&tracker, &store, &fw), (&left, &left, &left));
        // and it cannot be banned again
        assert!(!eng.manual_ban("203.0.113.9", None, None, now).ok);
        // with `ignore_self = false` too: own addresses are never banned
        eng.cfg.ignore_self = false;
        eng.set_own(vec![ip("2001:db8:1::5")], now).unwrap();
        let (tracker, store, fw) = active(&mut eng);
        assert!(tracker.is_empty() && store.is_empty() && fw.is_empty());
    }

    #[test]
    fn a_link_planted_at_the_cursor_temporary_is_not_written_through() {
        let dir = tempfile::tempdir().unwrap();
        let dir = dir.path();
        let path = dir.join("portcullis.toml");
        let a = "journal:_COMM=alpha";
        std::fs::write(&path, config(dir, &[("a", &[a])])).unwrap();
        // a root-only file elsewhere, and a link to it where the cursor is written first
        let victim = dir.join("victim");
        std::fs::write(&victim, "root:secret\n").unwrap();
        let mut tmp = cursor_file(dir, a).into_os_string();
        tmp.push(".tmp");
        std::os::unix::fs::symlink(&victim, &tmp).unwrap();
        let (tx, rx) = engine_channel();
        let mut eng = engine(dir, &path, tx);
        eng.journals.reconcile(&journal_sources(&eng.cfg));
        let (src, _) = next_line(&mut eng, &rx);
        assert_eq!(src, a);
        eng.journals.stop_all(); // saves the cursor of the processed entry
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "root:secret\n");
        let cursor = cursor_file(dir, a);
        let m = std::fs::symlink_metadata(&cursor).unwrap();
        assert!(m.is_file(), "the cursor file must be a file of its own");
        assert!(std::fs::read_to_string(&cursor)
            .unwrap()
            .starts_with("cursor-"));
    }

    #[test]
    fn journal_changes_start_new_and_stop_unused_sources() {
        let running = ["journal:_COMM=a", "journal:_COMM=b"];
        let wanted = vec![
            "journal:_COMM=c".to_string(),
            "journal:_COMM=b".to_string(),
            "journal:_COMM=c".to_string(),
        ];
        assert_eq!(
            journal_changes(running, &wanted),
            (
                vec!["journal:_COMM=c".into()],
                vec!["journal:_COMM=a".into()]
            )
        );
        assert_eq!(journal_changes([], &[]), (vec![], vec![]));
    }

    #[test]
    fn reload_starts_new_journal_readers_and_stops_unused_ones() {
        let dir = tempfile::tempdir().unwrap();
        let dir = dir.path();
        let path = dir.join("portcullis.toml");
        let (a, b) = ("journal:_COMM=alpha", "journal:_COMM=beta");
        let write = |jails: &[(&str, &[&str])]| std::fs::write(&path, config(dir, jails)).unwrap();

        // start: one journal jail (and a file jail, which must not get a reader)
        write(&[("a", &[a]), ("f", &["/nonexistent/auth.log"])]);
        let (tx, rx) = engine_channel();
        let mut eng = engine(dir, &path, tx);
        eng.journals.reconcile(&journal_sources(&eng.cfg));
        assert_eq!(
            next_line(&mut eng, &rx),
            (
                a.into(),
                "2025-01-01T00:00:00.000000+00:00 host prog[1]: from _COMM=alpha after tail".into()
            )
        );

        // reload adding a jail on a new journal source: it is read, alpha keeps its reader
        write(&[("a", &[a]), ("b", &[b, a])]);
        eng.reload().unwrap();
        assert_eq!(eng.journals.sources(), [a, b]);
        let (src, line) = next_line(&mut eng, &rx);
        assert_eq!(src, b, "{line}");
        assert!(line.ends_with("from _COMM=beta after tail"), "{line}");
        let s = starts(dir);
        assert_eq!(s.len(), 2, "{s:?}");
        let (alpha_pid, beta_pid) = (s[0].0, s[1].0);

        // reload dropping alpha: its journalctl is ended and reaped before reload returns,
        // and the reader has saved the cursor of the entry the engine processed
        write(&[("b", &[b])]);
        eng.reload().unwrap();
        assert_eq!(eng.journals.sources(), [b]);
        assert!(
            gone(alpha_pid),
            "the stopped journalctl {alpha_pid} was not reaped"
        );
        assert!(!gone(beta_pid), "beta's journalctl must keep running");
        let cursor = cursor_file(dir, a);
        assert_eq!(
            std::fs::read_to_string(&cursor).unwrap().trim(),
            format!("cursor-{alpha_pid}")
        );

        // alpha again: a new journalctl resumes after the cursor the stopped reader saved
        write(&[("b", &[b]), ("a", &[a])]);
        eng.reload().unwrap();
        assert_eq!(eng.journals.sources(), [a, b]);
        let (src, line) = next_line(&mut eng, &rx);
        assert_eq!(src, a, "{line}");
        assert!(
            line.ends_with(&format!("from _COMM=alpha after cursor-{alpha_pid}")),
            "{line}"
        );
        let s = starts(dir);
        assert_eq!(s.len(), 3, "{s:?}");
        assert_eq!(
            (s[2].1.as_str(), s[2].2.clone()),
            ("_COMM=alpha", format!("cursor-{alpha_pid}"))
        );

        // a reload that changes nothing starts and stops nothing
        eng.reload().unwrap();
        assert_eq!(starts(dir).len(), 3);
        assert!(!gone(beta_pid) && !gone(s[2].0));

        eng.journals.stop_all();
        assert!(eng.journals.sources().is_empty());
        for (pid, _, _) in starts(dir) {
            assert!(gone(pid), "journalctl {pid} left running or unreaped");
        }
    }

    /// A firewall that refuses every change (a missing nft, a full set).
    struct Refusing;

    impl Firewall for Refusing {
        fn setup(&mut self, _: &[crate::firewall::JailRules]) -> anyhow::Result<()> {
            Ok(())
        }
        fn apply(&mut self, _: &[FwOp]) -> anyhow::Result<()> {
            anyhow::bail!("nft: Operation not permitted")
        }
        fn list(&mut self) -> anyhow::Result<Vec<(String, IpAddr, Option<i64>)>> {
            Ok(Vec::new())
        }
        fn teardown(&mut self) -> anyhow::Result<()> {
            Ok(())
        }
    }

    /// A firewall that counts what it is given, its bans expiring by themselves or not; a
    /// restore fails while `fail` is set.
    struct Counting {
        expires: bool,
        restored: std::sync::Arc<std::sync::atomic::AtomicUsize>,
        fail: std::sync::Arc<std::sync::atomic::AtomicBool>,
    }

    impl Firewall for Counting {
        fn setup(&mut self, _: &[crate::firewall::JailRules]) -> anyhow::Result<()> {
            Ok(())
        }
        fn apply(&mut self, _: &[FwOp]) -> anyhow::Result<()> {
            Ok(())
        }
        fn restore(&mut self, ops: &[FwOp]) -> anyhow::Result<()> {
            use std::sync::atomic::Ordering;
            if self.fail.load(Ordering::SeqCst) {
                anyhow::bail!("nft: refused");
            }
            self.restored.fetch_add(ops.len(), Ordering::SeqCst);
            Ok(())
        }
        fn expires_itself(&self) -> bool {
            self.expires
        }
        fn list(&mut self) -> anyhow::Result<Vec<(String, IpAddr, Option<i64>)>> {
            Ok(Vec::new())
        }
        fn teardown(&mut self) -> anyhow::Result<()> {
            Ok(())
        }
    }

    /// The clock set back: the bans go again to a backend whose bans expire by themselves,
    /// not to one the engine unbans itself (a `command` backend ran its `ban` program again
    /// per ban at every step, a review found); a refused restore is tried again each minute.
    #[test]
    fn a_clock_set_back_rearms_only_the_backends_that_expire_bans() {
        use std::sync::atomic::Ordering;
        for expires in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            let (mut eng, _rx) = two_jail_engine(dir.path());
            assert!(ban(&mut eng, "203.0.113.5", "a").ok);
            assert!(ban(&mut eng, "203.0.113.6", "b").ok);
            let restored = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
            let fail = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(expires));
            eng.fw = Box::new(Counting {
                expires,
                restored: restored.clone(),
                fail: fail.clone(),
            });
            let now = now_ms();
            eng.clock(now);
            assert_eq!(restored.load(Ordering::SeqCst), 0, "no step yet");
            eng.last_turn = now + 3_600_000;
            eng.clock(now);
            assert_eq!(restored.load(Ordering::SeqCst), 0);
            assert_eq!(eng.rearm_pending, expires, "refused: tried again");
            if expires {
                fail.store(false, Ordering::SeqCst);
                eng.rearm();
                assert_eq!(restored.load(Ordering::SeqCst), 2);
                assert!(!eng.rearm_pending);
            }
            // small steps (NTP's) are not steps
            eng.last_turn = now_ms() + 1_000;
            eng.clock(now_ms());
            assert_eq!(restored.load(Ordering::SeqCst), if expires { 2 } else { 0 });
        }
    }

    fn two_jail_engine(dir: &Path) -> (Engine, Receiver<Msg>) {
        let cfg_path = dir.join("p.toml");
        std::fs::write(&cfg_path, config(dir, &[("a", &[]), ("b", &[])])).unwrap();
        let (tx, rx) = engine_channel();
        (engine(dir, &cfg_path, tx), rx)
    }

    fn ban(eng: &mut Engine, addr: &str, jail: &str) -> Response {
        eng.on_control(Request::Ban {
            addr: addr.into(),
            jail: Some(jail.into()),
            duration: None,
        })
    }

    /// The configuration of jails `jails` (sshd's filter, no logs) written as `DIR/p.toml`.
    fn set_jails(d: &Path, jails: &[&str]) {
        let js: Vec<(&str, &[&str])> = jails.iter().map(|j| (*j, &[][..])).collect();
        std::fs::write(d.join("p.toml"), config(d, &js)).unwrap();
    }

    /// The active bans of the state file, "JAIL ADDRESS", sorted.
    fn stored_bans(eng: &Engine) -> Vec<String> {
        let mut v: Vec<String> = eng
            .store
            .active_bans(now_ms())
            .unwrap()
            .into_iter()
            .map(|b| format!("{} {}", b.jail, b.addr))
            .collect();
        v.sort();
        v
    }

    fn unban(eng: &mut Engine, addr: &str, jail: Option<&str>) -> Response {
        eng.on_control(Request::Unban {
            addr: Some(addr.into()),
            jail: jail.map(str::to_string),
            all: false,
        })
    }

    #[test]
    fn the_null_backend_does_not_claim_bans_stay_in_a_firewall() {
        let says = |b, k| Event::Stopped(stop_kind(b, k)).to_string();
        assert!(!says("null", true).contains("stay"));
        assert!(says("nftables", true).contains("stay in the firewall"));
        assert!(says("nftables", false).contains("removed"));
    }

    #[test]
    fn bans_lists_one_jail_when_asked() {
        let dir = tempfile::tempdir().unwrap();
        let (mut eng, _rx) = two_jail_engine(dir.path());
        assert!(ban(&mut eng, "203.0.113.5", "a").ok);
        assert!(ban(&mut eng, "203.0.113.6", "b").ok);
        let hosts = |r: Response| -> Vec<(String, String)> {
            r.bans.into_iter().map(|b| (b.host, b.jail)).collect()
        };
        let all = hosts(eng.on_control(Request::Bans {
            jail: None,
            permanent: false,
        }));
        assert_eq!(all.len(), 2, "{all:?}");
        let only_b = hosts(eng.on_control(Request::Bans {
            jail: Some("b".into()),
            permanent: false,
        }));
        assert_eq!(only_b, [("203.0.113.6".to_string(), "b".to_string())]);
        let r = eng.on_control(Request::Bans {
            jail: Some("nosuch".into()),
            permanent: false,
        });
        assert!(!r.ok && r.error.unwrap().contains("nosuch"));
        // unban --jail lifts only that jail's ban
        let r = eng.on_control(Request::Unban {
            addr: None,
            jail: Some("a".into()),
            all: true,
        });
        assert!(r.ok, "{r:?}");
        let left = hosts(eng.on_control(Request::Bans {
            jail: None,
            permanent: false,
        }));
        assert_eq!(left, [("203.0.113.6".to_string(), "b".to_string())]);
    }

    /// `ban` of an address banned already sets its new duration: the same ban, not one more
    /// offence toward escalation, and it says when it ends sooner (review: a ban script run
    /// again counted #2, #3, ... and shortened a permanent ban without a word).
    #[test]
    fn a_manual_ban_given_again_is_the_same_ban() {
        let dir = tempfile::tempdir().unwrap();
        let (mut eng, _rx) = two_jail_engine(dir.path());
        let ban_for = |eng: &mut Engine, d: &str| {
            eng.on_control(Request::Ban {
                addr: "203.0.113.53".into(),
                jail: Some("a".into()),
                duration: Some(d.into()),
            })
        };
        assert!(ban_for(&mut eng, "forever").ok);
        for _ in 0..3 {
            let r = ban_for(&mut eng, "1h");
            assert!(r.ok, "{r:?}");
        }
        let r = ban_for(&mut eng, "1h");
        assert!(
            !r.message.as_deref().unwrap_or("").contains("ends sooner"),
            "{r:?}"
        );
        let r = ban_for(&mut eng, "30m");
        assert!(
            r.message
                .as_deref()
                .unwrap_or("")
                .contains("more: the ban now ends sooner"),
            "{r:?}"
        );
        let target = Cidr::host("203.0.113.53".parse().unwrap());
        assert_eq!(
            eng.meta.get(&("a".to_string(), target)).map(|m| m.1),
            Some(1)
        );
    }

    #[test]
    fn manual_ban_refused_by_the_firewall_leaves_no_ban_behind() {
        let dir = tempfile::tempdir().unwrap();
        let (mut eng, _rx) = two_jail_engine(dir.path());
        eng.fw = Box::new(Refusing);
        let r = ban(&mut eng, "203.0.113.5", "a");
        assert!(
            !r.ok && r.error.as_deref().unwrap_or("").contains("refused"),
            "{r:?}"
        );
        let ip: IpAddr = "203.0.113.5".parse().unwrap();
        assert!(
            !eng.jails[0].tracker().is_banned(ip),
            "the tracker says banned, the kernel does not"
        );
        assert!(eng
            .on_control(Request::Bans {
                jail: None,
                permanent: false,
            })
            .bans
            .is_empty());
    }

    /// Found by a stranger review: `ban 203.0.113.40 --for forever`, then `ban
    /// 203.0.113.0/24 --for 5s`, and five seconds later nothing was banned, with no unban said.
    #[test]
    fn a_manual_prefix_ban_lasts_as_long_as_the_bans_it_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let (mut eng, _rx) = two_jail_engine(dir.path());
        let ban_for = |eng: &mut Engine, addr: &str, d: &str| {
            eng.on_control(Request::Ban {
                addr: addr.into(),
                jail: Some("a".into()),
                duration: Some(d.into()),
            })
        };
        assert!(ban_for(&mut eng, "203.0.113.40", "forever").ok);
        assert!(ban_for(&mut eng, "203.0.113.41", "1d").ok);
        let r = ban_for(&mut eng, "203.0.113.0/24", "5s");
        let said = r.message.clone().unwrap_or_default();
        assert!(
            r.ok && said.contains("for ever")
                && said.contains("replaces 2 narrower ban(s)")
                && said.contains("lengthened to the end of the longer ban of 203.0.113.40"),
            "{r:?}"
        );
        let bans = bans_of(&mut eng, false);
        assert_eq!(bans.len(), 1, "{bans:?}");
        assert!(
            bans[0].host == "203.0.113.0/24" && bans[0].permanent,
            "{bans:?}"
        );
        // a shorter ban inside a day's: a day
        assert!(
            eng.on_control(Request::Unban {
                addr: Some("203.0.113.0/24".into()),
                jail: None,
                all: false,
            })
            .ok
        );
        assert!(ban_for(&mut eng, "203.0.113.41", "1d").ok);
        let r = ban_for(&mut eng, "203.0.113.0/24", "5s");
        assert!(r.ok, "{r:?}");
        let bans = bans_of(&mut eng, false);
        assert!(
            bans.len() == 1 && bans[0].remaining_secs > 86_000,
            "{bans:?}"
        );
        // the state file agrees: the narrower bans are over there, the prefix stands
        let active = eng.store.active_bans(now_ms()).unwrap();
        let active: Vec<String> = active.iter().map(|b| b.addr.to_string()).collect();
        assert_eq!(active, ["203.0.113.0/24"]);
    }

    /// A reload on a full state disk applies whole (review 43: with changes kept, it said
    /// "refused" after the new jails had taken over, ran them with the old configuration,
    /// and a later `ban --jail` panicked on the old configuration's index).
    #[test]
    fn a_reload_on_a_full_state_disk_applies_whole() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let (mut eng, _rx) = two_jail_engine(d);
        let r = eng.on_control(Request::Ban {
            addr: "203.0.113.61".into(),
            jail: Some("b".into()),
            duration: Some("1s".into()),
        });
        assert!(r.ok, "{r:?}");
        set_jails(d, &["a"]);
        assert!(eng.on_control(Request::Reload).ok);
        // b's ban ends while b is gone: the reload that adds b back lifts it in the state
        std::thread::sleep(Duration::from_millis(1100));
        eng.store.set_full(true);
        assert!(ban(&mut eng, "203.0.113.62", "a").ok);
        assert!(eng.store.unsaved() > 0);
        // `status` says so (review 44: only the log did)
        let st = eng.on_control(Request::Status { jail: None });
        let msg = st.message.unwrap_or_default();
        assert!(msg.contains("change(s) kept in memory"), "{msg}");
        set_jails(d, &["b", "a"]);
        let r = eng.on_control(Request::Reload);
        assert!(r.ok, "{r:?}");
        let names: Vec<&str> = eng.jails.iter().map(|j| j.name()).collect();
        let cfg: Vec<&str> = eng.cfg.jails.iter().map(|j| j.name.as_str()).collect();
        assert_eq!((names, cfg), (vec!["b", "a"], vec!["b", "a"]));
        let r = ban(&mut eng, "203.0.113.63", "a");
        assert!(
            r.ok && r
                .message
                .as_deref()
                .is_some_and(|m| m.contains("kept in memory")),
            "{r:?}"
        );
        eng.store.set_full(false);
        assert!(ban(&mut eng, "203.0.113.64", "b").ok);
        assert_eq!(eng.store.unsaved(), 0);
        assert_eq!(
            stored_bans(&eng),
            ["a 203.0.113.62", "a 203.0.113.63", "b 203.0.113.64"]
        );
    }

    /// Review 60 L3: a jail renamed with `renamed_from` takes over its former name's bans,
    /// at a reload and at a start (they stayed in the state under the old name, not
    /// enforced, until they ended); escalation goes on with their history.
    #[test]
    fn a_renamed_jail_takes_over_its_former_names_bans() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let path = d.join("portcullis.toml");
        let write = |name: &str, extra: &str| {
            let text = config(d, &[(name, &[])]) + extra;
            std::fs::write(&path, text).unwrap();
        };
        write("sshd", "");
        let (tx, _rx) = engine_channel();
        let mut eng = engine(d, &path, tx.clone());
        eng.restore().unwrap();
        assert!(ban(&mut eng, "203.0.113.71", "sshd").ok);
        // at a reload
        write("ssh", "renamed_from = [\"sshd\"]\n");
        let r = eng.on_control(Request::Reload);
        assert!(r.ok, "{r:?}");
        let hosts = |eng: &mut Engine| -> Vec<(String, String)> {
            bans_of(eng, false)
                .into_iter()
                .map(|b| (b.jail, b.host))
                .collect()
        };
        let want = vec![("ssh".to_string(), "203.0.113.71".to_string())];
        assert_eq!(hosts(&mut eng), want);
        assert_eq!(stored_bans(&eng), ["ssh 203.0.113.71"]);
        // at a start
        assert!(ban(&mut eng, "203.0.113.72", "ssh").ok);
        drop(eng);
        write("ssh2", "renamed_from = [\"ssh\", \"sshd\"]\n");
        let mut eng = engine(d, &path, tx.clone());
        eng.restore().unwrap();
        let mut got = hosts(&mut eng);
        got.sort();
        assert_eq!(
            got,
            [
                ("ssh2".to_string(), "203.0.113.71".to_string()),
                ("ssh2".to_string(), "203.0.113.72".to_string())
            ]
        );
        // the history came along, whole
        let history: Vec<String> = (eng.store.history_since(0).unwrap().iter())
            .map(|b| format!("{} {}", b.jail, b.addr))
            .collect();
        assert_eq!(history, ["ssh2 203.0.113.71", "ssh2 203.0.113.72"]);
        // a former name that is a jail of the configuration is refused
        std::fs::write(
            &path,
            config(d, &[("a", &[]), ("b", &[])])
                .replace("name = \"b\"\n", "name = \"b\"\nrenamed_from = [\"a\"]\n"),
        )
        .unwrap();
        let e = format!("{:#}", Config::load(Some(&path)).unwrap_err());
        assert!(e.contains("which is a jail of this configuration"), "{e}");
    }

    /// Found by a stranger review: a jail removed at a reload lost its bans from the firewall
    /// without a word while the state file kept them active; the running daemon could neither
    /// list nor unban them, and they came back only at a restart with the jail.
    #[test]
    fn the_bans_of_a_jail_removed_at_a_reload_come_back_with_it() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let (mut eng, _rx) = two_jail_engine(d);
        let r = eng.on_control(Request::Ban {
            addr: "203.0.113.60".into(),
            jail: Some("b".into()),
            duration: Some("forever".into()),
        });
        assert!(r.ok, "{r:?}");
        let kernel = |eng: &mut Engine| -> Vec<(String, String)> {
            let mut v: Vec<(String, String)> = eng
                .fw
                .list()
                .unwrap()
                .into_iter()
                .map(|(j, a, _)| (j, a.to_string()))
                .collect();
            v.sort();
            v
        };
        let b_ban = vec![("b".to_string(), "203.0.113.60".to_string())];
        let unban_b = |eng: &mut Engine, jail: &str| {
            eng.on_control(Request::Unban {
                addr: None,
                jail: Some(jail.into()),
                all: true,
            })
        };
        assert_eq!(kernel(&mut eng), b_ban);

        // b removed: its ban leaves the firewall, the state file keeps it
        set_jails(d, &["a"]);
        assert!(eng.on_control(Request::Reload).ok);
        assert!(bans_of(&mut eng, false).is_empty());
        assert!(kernel(&mut eng).is_empty());
        assert_eq!(stored_bans(&eng), ["b 203.0.113.60"]);
        // `status` says so
        let st = eng.on_control(Request::Status { jail: None });
        let msg = st.message.unwrap_or_default();
        assert!(
            msg.contains("jail b is not configured: 1 ban(s) of it kept in the state file"),
            "{msg}"
        );
        // and so does `bans --jail b` (review 41: "no jail named")
        let r = eng.on_control(Request::Bans {
            jail: Some("b".into()),
            permanent: false,
        });
        assert!(
            !r.ok
                && r.error
                    .as_deref()
                    .is_some_and(|e| e.contains("jail b is not configured: 1 ban(s)")),
            "{r:?}"
        );
        // b back: the ban is put back
        set_jails(d, &["a", "b"]);
        assert!(eng.on_control(Request::Reload).ok);
        let bans = bans_of(&mut eng, false);
        assert!(
            bans.len() == 1 && bans[0].jail == "b" && bans[0].permanent,
            "{bans:?}"
        );
        assert_eq!(kernel(&mut eng), b_ban);

        // removed again, the ban can be forgotten: it does not come back
        set_jails(d, &["a"]);
        assert!(eng.on_control(Request::Reload).ok);
        let r = unban_b(&mut eng, "nosuch");
        assert!(
            !r.ok
                && r.error
                    .as_deref()
                    .is_some_and(|e| e.starts_with("no jail named \"nosuch\"; the jails are: ")),
            "{r:?}"
        );
        let r = unban_b(&mut eng, "b");
        assert!(
            r.ok && r
                .message
                .as_deref()
                .unwrap_or("")
                .contains("lifted 1 ban(s) of jail b"),
            "{r:?}"
        );
        assert!(stored_bans(&eng).is_empty());
        set_jails(d, &["a", "b"]);
        assert!(eng.on_control(Request::Reload).ok);
        assert!(bans_of(&mut eng, false).is_empty());
        assert!(kernel(&mut eng).is_empty());
    }

    /// An engine of one jail `sshd` on the built-in filter, its configuration and state in
    /// `dir`.
    fn sshd_engine(dir: &Path) -> Engine {
        let path = dir.join("portcullis.toml");
        std::fs::write(&path, config(dir, &[("sshd", &[])])).unwrap();
        let (tx, _rx) = engine_channel();
        engine(dir, &path, tx)
    }

    /// A ban of an address inside a prefix banned already: as long or shorter, nothing to
    /// change (done); longer, refused with what to do (stop 46: a bare refusal either way).
    #[test]
    fn a_manual_ban_inside_a_banned_prefix_says_what_it_changes() {
        let dir = tempfile::tempdir().unwrap();
        let mut eng = sshd_engine(dir.path());
        let now = now_ms();
        assert!(eng.manual_ban("203.0.113.0/24", None, Some("1h"), now).ok);
        let r = eng.manual_ban("203.0.113.7", None, Some("10m"), now);
        assert!(
            r.ok && r
                .message
                .as_deref()
                .is_some_and(|m| m.contains("as part of 203.0.113.0/24, until ")
                    && m.contains("nothing changed")),
            "{r:?}"
        );
        let r = eng.manual_ban("203.0.113.7", None, Some("forever"), now);
        assert!(
            !r.ok
                && r.error
                    .as_deref()
                    .is_some_and(|m| m.contains("portcullis ban 203.0.113.0/24 --jail sshd --for")),
            "{r:?}"
        );
        let bans: Vec<Cidr> = eng.jails[0].tracker().bans().map(|(a, _)| a).collect();
        assert_eq!(bans, [Cidr::parse("203.0.113.0/24").unwrap()]);
    }

    #[test]
    fn manual_ban_refuses_loopback_and_ignored_addresses() {
        let dir = tempfile::tempdir().unwrap();
        let (mut eng, _rx) = two_jail_engine(dir.path());
        for a in ["127.0.0.1", "::1", "not-an-address"] {
            let r = ban(&mut eng, a, "a");
            assert!(!r.ok, "{a}: {r:?}");
        }
        assert!(eng
            .on_control(Request::Bans {
                jail: None,
                permanent: false,
            })
            .bans
            .is_empty());
    }

    fn bans_of(eng: &mut Engine, permanent: bool) -> Vec<BanInfo> {
        eng.on_control(Request::Bans {
            jail: None,
            permanent,
        })
        .bans
    }

    /// A BSD syslogd's `last message repeated N times` counts the failure just before it in
    /// the same file, whatever lines of other files the engine took between them; after
    /// another line of its file it counts nothing.
    #[test]
    fn a_syslogd_repeat_line_counts_the_failure_before_it_in_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let cfg_path = dir.path().join("p.toml");
        let (a, b) = (dir.path().join("a.log"), dir.path().join("b.log"));
        let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());
        std::fs::write(&cfg_path, config(dir.path(), &[("a", &[a, b])])).unwrap();
        let (tx, _rx) = engine_channel();
        let mut eng = engine(dir.path(), &cfg_path, tx);
        let mut batch = Batch {
            sources: vec![a.to_string(), b.to_string()],
            files: vec![(0, 0), (0, 0)],
            lines: Vec::new(),
            data: Vec::new(),
            checkpoints: Vec::new(),
            forgotten: Vec::new(),
            aliases: None,
            reading: None,
            lent: Vec::new(),
            notes: Vec::new(),
            journal: None,
        };
        for (s, l) in [
            (
                1,
                "bsd2 sshd[2]: Failed password for root from 203.0.113.8 port 4 ssh2",
            ),
            (
                0,
                "bsd1 sshd[1]: Failed password for root from 203.0.113.9 port 4 ssh2",
            ),
            (1, "bsd2 cron[7]: (root) CMD (true)"),
            (0, "bsd1 last message repeated 4 times"),
            (1, "bsd2 last message repeated 9 times"),
        ] {
            let l = format!("{} {l}", stamp(0));
            batch.data.extend_from_slice(l.as_bytes());
            batch.lines.push((s, batch.data.len()));
        }
        eng.on_lines(batch).unwrap();
        // (maxretry 5: the failure and its four repeats)
        let bans = bans_of(&mut eng, false);
        let hosts: Vec<&str> = bans.iter().map(|b| b.host.as_str()).collect();
        assert_eq!(hosts, ["203.0.113.9"]);
    }

    /// A classic syslog stamp ("Dec  5 07:52:00") of the clock now plus `secs`, in UTC: the
    /// daemon does not count a failure stamped days ago (jail::STALE_AFTER), so the lines fed
    /// here carry today's date (a zone error counts at now).
    fn stamp(secs: i64) -> String {
        let iso = portcullis_core::time::rfc3339(now_ms() + secs * 1000);
        let month = [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ][iso[5..7].parse::<usize>().unwrap() - 1];
        let day: u32 = iso[8..10].parse().unwrap();
        format!("{month} {day:>2} {}", &iso[11..19])
    }

    /// Feeds `lines` of the log file `log` to the engine, as one batch.
    fn feed(eng: &mut Engine, log: &str, lines: &[String]) {
        let mut batch = Batch {
            sources: vec![log.to_string()],
            files: vec![(0, 0)],
            lines: Vec::new(),
            data: Vec::new(),
            checkpoints: Vec::new(),
            forgotten: Vec::new(),
            aliases: None,
            reading: None,
            lent: Vec::new(),
            notes: Vec::new(),
            journal: None,
        };
        for l in lines {
            batch.data.extend_from_slice(l.as_bytes());
            batch.lines.push((0, batch.data.len()));
        }
        eng.on_lines(batch).unwrap();
    }

    /// sshd's password failures from `addr`, one per pid.
    fn failures(addr: &str, pids: std::ops::Range<u32>) -> Vec<String> {
        pids.map(|pid| {
            format!(
                "{} h sshd[{pid}]: Failed password for root from {addr} port 4 ssh2",
                stamp(0)
            )
        })
        .collect()
    }

    /// The first jail's open windows: (address, failures).
    fn failing(eng: &Engine) -> Vec<(String, u32)> {
        eng.jails[0]
            .tracker()
            .failing(now_ms())
            .into_iter()
            .map(|(c, n)| (c.to_string(), n))
            .collect()
    }

    /// An engine of one sshd jail following `DIR/auth.log` (state in DIR), started (its
    /// saved state restored), and the log's path.
    fn started(dir: &Path) -> (Engine, String) {
        started_with(dir, "")
    }

    /// [`started`] with the top-level keys `top` in the configuration.
    fn started_with(dir: &Path, top: &str) -> (Engine, String) {
        let cfg_path = dir.join("p.toml");
        let log = dir.join("auth.log").to_str().unwrap().to_string();
        let text = format!("{top}{}", config(dir, &[("sshd", &[log.as_str()])]));
        std::fs::write(&cfg_path, text).unwrap();
        let (tx, _rx) = engine_channel();
        let mut eng = engine(dir, &cfg_path, tx);
        eng.restore().unwrap();
        (eng, log)
    }

    /// Review 18: a SIGTERM while a backlog of lines filled the engine's queue waited for
    /// minutes behind it (its [`Msg::Stop`] could not even be queued). The flag the signal
    /// sets is looked at first.
    #[test]
    fn a_stop_is_not_queued_behind_the_lines() {
        let dir = tempfile::tempdir().unwrap();
        let cfg_path = dir.path().join("p.toml");
        std::fs::write(&cfg_path, config(dir.path(), &[("sshd", &["/l/auth.log"])])).unwrap();
        let (tx, rx) = engine_channel();
        let mut eng = engine(dir.path(), &cfg_path, tx.clone());
        eng.restore().unwrap();
        // a full queue of lines (a backlog read at a start), the stop asked meanwhile
        for line in failures("203.0.113.9", 1..ENGINE_QUEUE as u32 + 1) {
            let mut b = Batch::default();
            b.push_from("/l/auth.log", (7, 70), line.as_bytes());
            tx.try_send(Msg::Lines(b)).unwrap();
        }
        let stop = AtomicBool::new(true);
        assert_eq!(eng.main_loop(&rx, &stop).unwrap(), 0);
        assert_eq!(
            rx.try_iter().count(),
            ENGINE_QUEUE,
            "stopped before the lines"
        );
        assert!(failing(&eng).is_empty());
    }

    /// Batches the engine takes together (it was busy) are counted each with what the
    /// follower read when it read them: a file under two names of one jail (a link and its
    /// target) whose first name stopped reading it in the later batch (the link removed,
    /// its drain closed). Applied to both batches, that state let the second name take the
    /// first batch's line over, and the line was counted twice.
    #[test]
    fn merged_batches_count_each_line_of_a_two_name_file_once() {
        let dir = tempfile::tempdir().unwrap();
        let cfg_path = dir.path().join("p.toml");
        let (link, real) = ("/l/secure", "/l/auth.log");
        std::fs::write(&cfg_path, config(dir.path(), &[("sshd", &[link, real])])).unwrap();
        let (tx, _rx) = engine_channel();
        let mut eng = engine(dir.path(), &cfg_path, tx);
        eng.restore().unwrap();
        let f = (7, 70);
        let batch = |lines: &[(&str, String)], reading: Vec<&str>| {
            let mut b = Batch {
                reading: Some(
                    reading
                        .iter()
                        .map(|n| (n.to_string(), vec![f], true))
                        .collect(),
                ),
                ..Batch::default()
            };
            for (src, l) in lines {
                b.push_from(src, f, l.as_bytes());
            }
            b
        };
        let x = failures("203.0.113.9", 1..2).remove(0);
        let y = failures("203.0.113.9", 2..3).remove(0);
        // the first poll: both names read the new line; the second: the link reads no more
        let first = batch(&[(link, x.clone()), (real, x)], vec![link, real]);
        let second = batch(&[(real, y)], vec![real]);
        eng.on_batches(vec![first, second]).unwrap();
        assert_eq!(failing(&eng), [("203.0.113.9".to_string(), 2)]);
    }

    /// `status` under a flood gives the windows evicted so far, as the tracker counts them,
    /// not the count when the last `flood` line was written (0 beside 1,620,000, a review
    /// found), and the time the flood began.
    #[test]
    fn the_flood_status_counts_every_eviction() {
        let dir = tempfile::tempdir().unwrap();
        let (mut eng, log) = started_with(dir.path(), "max_tracked = 100\n");
        let wave = |eng: &mut Engine, from: u32| {
            let lines: Vec<String> = (from..from + 250)
                .flat_map(|n| failures(&format!("198.51.{}.{}", 100 + n / 250, n % 250), n..n + 1))
                .collect();
            feed(eng, &log, &lines);
        };
        wave(&mut eng, 0);
        let t0 = now_ms();
        eng.report_floods(t0);
        let first = eng.jails[0].tracker().stats().evicted;
        assert!(first > 0);
        wave(&mut eng, 250);
        let now = eng.jails[0].tracker().stats().evicted;
        assert!(now > first);
        let s = eng.flood_status("sshd", t0 + 1000).unwrap();
        assert!(s.contains(&format!(" {now} windows evicted so far")), "{s}");
        let began = portcullis_core::time::rfc3339(t0);
        assert!(
            s.contains(&format!("since {}", &began[..19])),
            "{s} {began}"
        );
    }

    /// A reload that lowers `maxretry` bans at once the offenders already over it (they
    /// were banned only at a next failure, never if they stopped, a review found).
    #[test]
    fn a_lower_maxretry_bans_at_the_reload() {
        let dir = tempfile::tempdir().unwrap();
        let (mut eng, log) = started(dir.path());
        let (a, b) = ("203.0.113.9", "198.51.100.4");
        let mut lines = failures(a, 1..5);
        lines.extend(failures(b, 5..7));
        feed(&mut eng, &log, &lines);
        assert!(bans_of(&mut eng, false).is_empty());
        let cfg = dir.path().join("p.toml");
        let text = std::fs::read_to_string(&cfg).unwrap();
        std::fs::write(&cfg, format!("{text}maxretry = 3\n")).unwrap();
        eng.reload().unwrap();
        let bans = bans_of(&mut eng, false);
        let hosts: Vec<&str> = bans.iter().map(|b| b.host.as_str()).collect();
        assert_eq!(hosts, [a]);
        // in the state file and the firewall too
        let (tracker, store, fw) = active(&mut eng);
        assert_eq!((tracker.len(), store.len(), fw.len()), (1, 1, 1));
        assert_eq!(failing(&eng), [(b.to_string(), 2)]);
    }

    /// `report` files a ban a reload made under the rule `reload` (no failure of that
    /// moment names a filter's rule: it was `unknown`).
    #[test]
    fn a_reload_ban_is_filed_under_the_rule_reload() {
        let dir = tempfile::tempdir().unwrap();
        let (mut eng, log) = started(dir.path());
        eng.stats = Some(crate::report::Stats::start(dir.path(), 86_400_000).unwrap());
        let a = "203.0.113.119";
        feed(&mut eng, &log, &failures(a, 1..5));
        let cfg = dir.path().join("p.toml");
        let text = std::fs::read_to_string(&cfg).unwrap();
        std::fs::write(&cfg, format!("{text}maxretry = 3\n")).unwrap();
        eng.reload().unwrap();
        assert_eq!(bans_of(&mut eng, false).len(), 1);
        let mut st = eng.stats.take().unwrap();
        st.flush(&eng.jails);
        st.shutdown(std::time::Duration::from_secs(10));
        let c = rusqlite::Connection::open(dir.path().join("stats.db")).unwrap();
        let rules: Vec<Option<String>> = c
            .prepare("SELECT rule FROM bans WHERE jail = 'sshd' AND addr = ?1")
            .unwrap()
            .query_map([a], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(rules, [Some("reload".to_string())]);
    }

    /// A prefix key over a lowered `maxretry` that holds an ignored address is not banned at
    /// the reload (only its first address was known to narrow around: the offenders went
    /// free, or an ignored address was banned, a review found); its next failure bans, cut
    /// around the ignored address.
    #[test]
    fn a_due_prefix_holding_an_ignored_address_waits_for_its_next_failure() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let cfg = d.join("p.toml");
        let log = d.join("auth.log").to_str().unwrap().to_string();
        let write = |maxretry: u32| {
            let text = format!(
                "ignore = [\"203.0.113.0/28\"]\n{}v4_prefix = 24\nmaxretry = {maxretry}\n",
                config(d, &[("sshd", &[log.as_str()])])
            );
            std::fs::write(&cfg, text).unwrap();
        };
        write(6);
        let (tx, _rx) = engine_channel();
        let mut eng = engine(d, &cfg, tx);
        eng.restore().unwrap();
        let mut lines = failures("203.0.113.40", 1..4);
        lines.extend(failures("203.0.113.41", 4..6));
        feed(&mut eng, &log, &lines);
        write(4);
        eng.reload().unwrap();
        assert!(bans_of(&mut eng, false).is_empty());
        assert_eq!(failing(&eng), [("203.0.113.0/24".to_string(), 5)]);
        feed(&mut eng, &log, &failures("203.0.113.40", 6..7));
        let bans = bans_of(&mut eng, false);
        assert_eq!(bans.len(), 1, "{bans:?}");
        let c = Cidr::parse(&bans[0].host).unwrap();
        assert!(
            c.contains(ip("203.0.113.40")) && !c.contains(ip("203.0.113.5")),
            "{c}"
        );
    }

    /// `unban` of a prefix that holds a `deny` entry lifts the bans inside it and leaves the
    /// deny entry (it was refused whole as "in the deny list", a review found); an address
    /// the deny list covers is still refused.
    #[test]
    fn unban_of_a_prefix_holding_a_deny_entry_lifts_the_bans_inside() {
        let dir = tempfile::tempdir().unwrap();
        let (mut eng, _) = started_with(dir.path(), "deny = [\"198.51.100.128/27\"]\n");
        let now = now_ms();
        for a in ["198.51.100.192/26", "198.51.100.33"] {
            assert!(eng.manual_ban(a, None, Some("1h"), now).ok);
        }
        let r = eng.manual_unban(Some("198.51.100.130"), None, false, now);
        assert!(!r.ok && r.error.unwrap().contains("`deny` list"));
        let r = eng.manual_unban(Some("198.51.100.0/24"), None, false, now);
        assert!(r.ok, "{r:?}");
        assert!(eng.jails[0].tracker().bans().next().is_none());
        assert_eq!(eng.denied.len(), 1);
    }

    /// The host's addresses that cannot be read (out of descriptors) leave the last ones
    /// protected: they were replaced by an empty list and banned (a review did so with
    /// prlimit); a read that works again takes effect.
    #[test]
    fn own_addresses_that_cannot_be_read_stay_protected() {
        let dir = tempfile::tempdir().unwrap();
        let (mut eng, log) = started(dir.path());
        let own = ip("203.0.113.77");
        eng.set_own(vec![own], now_ms()).unwrap();
        let e = eng
            .take_own_read(Err(anyhow::anyhow!("Too many open files")), now_ms())
            .unwrap_err();
        assert!(format!("{e:#}").contains("stay protected"), "{e:#}");
        assert_eq!(eng.own, [own]);
        feed(&mut eng, &log, &failures("203.0.113.77", 1..8));
        assert!(bans_of(&mut eng, false).is_empty());
        eng.take_own_read(Ok(vec![ip("203.0.113.78")]), now_ms())
            .unwrap();
        assert_eq!(eng.own, [ip("203.0.113.78")]);
    }

    /// `unban` names each ban it lifted: an address inside a banned prefix lifts the prefix
    /// (a permanent /24 went with "unbanned 1 ban(s)", a review found); `--all` says that
    /// the `deny` list's bans stay.
    #[test]
    fn unban_names_what_it_lifted() {
        let dir = tempfile::tempdir().unwrap();
        let (mut eng, _) = started_with(dir.path(), "deny = [\"198.51.100.128/27\"]\n");
        let now = now_ms();
        assert!(eng.manual_ban("203.0.113.0/24", None, None, now).ok);
        let r = eng.manual_unban(Some("203.0.113.99"), None, false, now);
        assert_eq!(
            r.message.as_deref(),
            Some("unbanned 1 ban(s): 203.0.113.0/24 (sshd), which holds 203.0.113.99"),
            "{r:?}"
        );
        assert!(eng.manual_ban("203.0.113.7", None, None, now).ok);
        let r = eng.manual_unban(None, None, true, now);
        assert_eq!(
            r.message.as_deref(),
            Some("unbanned 1 ban(s): 203.0.113.7 (sshd); the 1 ban(s) of the `deny` list stay (remove them from `deny` and reload)"),
            "{r:?}"
        );
    }

    /// A host name of `ignore` that comes to resolve elsewhere (dynamic DNS) takes effect
    /// without a reload: the ban of its new address is lifted, its counts forgotten, a deny
    /// entry over it cut around it; a lookup that gives nothing keeps the last addresses; and
    /// when the name moves on, the old address is banned again like any other.
    #[test]
    fn a_host_name_of_ignore_that_resolves_elsewhere_is_followed() {
        let dir = tempfile::tempdir().unwrap();
        // (`localhost` resolves from /etc/hosts on any host; its addresses are then replaced
        // by what the resolver thread would send)
        let (mut eng, log) = started_with(
            dir.path(),
            "ignore = [\"localhost\"]\ndeny = [\"198.51.100.0/28\"]\n",
        );
        assert_eq!(eng.denied.len(), 1);
        let (home, other) = ("203.0.113.9", "203.0.113.10");
        feed(&mut eng, &log, &failures(home, 1..6));
        feed(&mut eng, &log, &failures(other, 10..13));
        assert!(eng.jails[0].tracker().is_banned(ip(home)));
        let now = now_ms();
        let moved = |v: &[&str]| vec![("localhost".to_string(), v.iter().map(|a| ip(a)).collect())];
        let g = eng.resolver.generation();
        // a lookup made before the last reload (another generation) is not taken
        eng.on_resolved(g.wrapping_add(1), &moved(&[home]), now)
            .unwrap();
        assert!(eng.jails[0].tracker().is_banned(ip(home)));
        eng.on_resolved(g, &moved(&[home, other, "198.51.100.3"]), now)
            .unwrap();
        assert!(!eng.jails[0].tracker().is_banned(ip(home)));
        let (tracker, store, _) = active(&mut eng);
        assert!(
            tracker.is_empty() && store.is_empty(),
            "{tracker:?} {store:?}"
        );
        assert!(failing(&eng).is_empty(), "{:?}", failing(&eng));
        // (the deny entry cut around the address the name resolves to: review 29)
        assert_eq!(eng.denied.len(), 4, "{:?}", eng.denied);
        assert!(
            eng.denied.iter().all(|c| !c.contains(ip("198.51.100.3"))),
            "{:?}",
            eng.denied
        );
        feed(&mut eng, &log, &failures(home, 20..30));
        assert!(!eng.jails[0].tracker().is_banned(ip(home)));
        assert!(failing(&eng).is_empty());
        // the resolver down: the name keeps its addresses
        eng.on_resolved(g, &moved(&[]), now).unwrap();
        assert_eq!(eng.cfg.ignore.len(), 3, "{:?}", eng.cfg.ignore);
        feed(&mut eng, &log, &failures(home, 30..40));
        assert!(!eng.jails[0].tracker().is_banned(ip(home)));
        // the name moves on: the old addresses count again, the deny entry is back
        eng.on_resolved(g, &moved(&["127.0.0.1"]), now).unwrap();
        assert_eq!(eng.denied.len(), 1);
        feed(&mut eng, &log, &failures(home, 40..45));
        assert!(eng.jails[0].tracker().is_banned(ip(home)));
    }

    /// An ignored /64 that comes inside a banned /48 at a reload: the ban is cut into the 16
    /// prefixes around it at once (the cutting went down to the /64's 2^64 addresses one by
    /// one, and the reload never ended).
    #[test]
    fn an_ignored_64_inside_a_banned_48_is_cut_around_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let (mut eng, _) = started(dir.path());
        assert!(
            eng.manual_ban("2001:db8:1::/48", None, Some("1h"), now_ms())
                .ok
        );
        let cfg = dir.path().join("p.toml");
        let text = std::fs::read_to_string(&cfg).unwrap();
        std::fs::write(&cfg, format!("ignore = [\"2001:db8:1:2::/64\"]\n{text}")).unwrap();
        eng.reload().unwrap();
        let bans: Vec<Cidr> = eng.jails[0].tracker().bans().map(|(a, _)| a).collect();
        assert_eq!(bans.len(), 16, "{bans:?}");
        let net = Cidr::parse("2001:db8:1:2::/64").unwrap();
        assert!(bans.iter().all(|b| !b.overlaps(&net)), "{bans:?}");
    }

    /// Review 30: a deny /48 holding four of the host's IPv6 addresses (privacy addresses in
    /// its /64) took more than MAX_NARROWED pieces cut around each, and went unbanned whole.
    /// The host's /64 is left out: 16 pieces.
    #[test]
    fn a_deny_prefix_is_cut_around_the_hosts_own_64() {
        let dir = tempfile::tempdir().unwrap();
        let (eng, _) = started_with(dir.path(), "deny = [\"2001:db8:31::/48\"]\n");
        let own: Vec<IpAddr> = [
            "2001:db8:31::5",
            "2001:db8:31::a:1",
            "2001:db8:31::b:2",
            "2001:db8:31::c:3",
        ]
        .iter()
        .map(|a| ip(a))
        .collect();
        let (want, said) = deny_targets(&eng.cfg, &own);
        assert_eq!(want.len(), 16, "{want:?}");
        assert!(want
            .iter()
            .all(|c| !c.overlaps(&Cidr::parse("2001:db8:31::/64").unwrap())));
        assert!(
            want.contains(&Cidr::parse("2001:db8:31:8000::/49").unwrap()),
            "{want:?}"
        );
        assert_eq!(said.len(), 1, "{said:?}");
        // review 31: an entry inside the host's /64 is cut around the address alone
        let mut cfg = eng.cfg.clone();
        cfg.deny.cidrs = vec![Cidr::parse("2001:db8:31::/120").unwrap()];
        let (want, _) = deny_targets(&cfg, &own);
        assert_eq!(want.len(), 8, "{want:?}");
        assert!(want.iter().all(|c| !c.contains(ip("2001:db8:31::5"))));
        assert!(want.iter().any(|c| c.contains(ip("2001:db8:31::99"))));
    }

    /// An address the ignore list comes to cover at a reload is no longer counted: its open
    /// window goes (it was still listed as failing, and its count came back when it was
    /// taken out of the list again, a review found).
    #[test]
    fn a_reload_forgets_the_counts_of_newly_ignored_addresses() {
        let dir = tempfile::tempdir().unwrap();
        let (mut eng, log) = started(dir.path());
        let (a, b) = ("203.0.113.9", "198.51.100.4");
        let mut lines = failures(a, 1..4);
        lines.extend(failures(b, 4..5));
        feed(&mut eng, &log, &lines);
        assert_eq!(failing(&eng), [(b.to_string(), 1), (a.to_string(), 3)]);
        let cfg = dir.path().join("p.toml");
        let text = std::fs::read_to_string(&cfg).unwrap();
        std::fs::write(&cfg, format!("ignore = [\"{a}\"]\n{text}")).unwrap();
        eng.reload().unwrap();
        assert_eq!(failing(&eng), [(b.to_string(), 1)]);
        // out of the list again: counted from nothing
        std::fs::write(&cfg, &text).unwrap();
        eng.reload().unwrap();
        feed(&mut eng, &log, &failures(a, 5..6));
        assert_eq!(failing(&eng), [(b.to_string(), 1), (a.to_string(), 1)]);
    }

    /// A restart gives no offender a fresh count: the failures of the open windows are
    /// saved in the state file at stop and put back at start, and saved again at once (a
    /// crash in the first minute keeps them; a ban since clears them).
    #[test]
    fn a_restart_keeps_the_failures_of_open_windows() {
        let dir = tempfile::tempdir().unwrap();
        let (mut eng, log) = started(dir.path());
        let log = log.as_str();
        let (a, b) = ("203.0.113.9", "198.51.100.4");
        let mut lines = failures(a, 1..3);
        lines.extend(failures(b, 3..4));
        lines.extend(failures(a, 4..5));
        feed(&mut eng, log, &lines);
        let before = failing(&eng);
        assert_eq!(before, [(b.to_string(), 1), (a.to_string(), 3)]);
        eng.stop().unwrap();
        drop(eng);

        // the next start: the same counts; two more failures (maxretry 5) ban
        let (mut eng, _) = started(dir.path());
        assert_eq!(failing(&eng), before);
        feed(&mut eng, log, &failures(a, 5..7));
        let bans = bans_of(&mut eng, false);
        let hosts: Vec<&str> = bans.iter().map(|b| b.host.as_str()).collect();
        assert_eq!(hosts, [a]);
        drop(eng);

        // that run ended without a stop (a crash) and before a checkpoint: what was put back
        // at its start was saved again at once, so `b`'s failure (its window still open) is
        // kept; `a`'s were cleared by its ban, and are not counted a second time
        let (eng, _) = started(dir.path());
        assert_eq!(failing(&eng), [(b.to_string(), 1)]);
    }

    /// An `unban` of an address forgives the failures of the offender that holds it, a /64
    /// for an IPv6 address as a /32 for an IPv4 one, live and after a crash (an IPv6
    /// offender's were kept: stop 43's left-over, review 35).
    #[test]
    fn an_unban_forgives_the_failures_of_the_offender_holding_the_address() {
        let dir = tempfile::tempdir().unwrap();
        let (mut eng, log) = started(dir.path());
        let log = log.as_str();
        feed(&mut eng, log, &failures("2001:db8::1", 1..3));
        assert_eq!(failing(&eng), [("2001:db8::/64".to_string(), 2)]);
        let r = unban(&mut eng, "2001:db8::1", None);
        // nothing banned before: said so, and what it did (review 45: "not banned", exit 1)
        assert_eq!(
            r.message.as_deref(),
            Some("2001:db8::1 is not banned; its open failures are forgotten (in jail sshd)"),
            "{r:?}"
        );
        assert!(failing(&eng).is_empty(), "{:?}", failing(&eng));
        // and a crash does not bring them back (a reset is recorded)
        feed(&mut eng, log, &failures("2001:db8::2", 5..7));
        eng.save_windows(now_ms(), false).unwrap();
        std::thread::sleep(Duration::from_millis(2));
        assert!(unban(&mut eng, "2001:db8::2", None).ok);
        drop(eng);
        let (mut eng, _) = started(dir.path());
        assert!(failing(&eng).is_empty(), "{:?}", failing(&eng));
        // saved by a checkpoint, then pardoned (a ban and its unban), then a crash: the
        // next start does not put them back
        feed(&mut eng, log, &failures("2001:db8::1", 3..5));
        eng.save_windows(now_ms(), false).unwrap();
        std::thread::sleep(Duration::from_millis(2));
        assert!(ban(&mut eng, "2001:db8::7", "sshd").ok);
        assert!(unban(&mut eng, "2001:db8::7", None).ok);
        drop(eng);
        let (eng, _) = started(dir.path());
        assert!(failing(&eng).is_empty(), "{:?}", failing(&eng));
    }

    /// The forgiving of open failures is recorded at the offenders' keys, not at the prefix
    /// unbanned (a reset there cancelled a wider subnet ban's earlier bans in its count,
    /// review 46); and an `unban --jail` of an address banned in another jail says that its
    /// open failures in the jail named are forgotten (it said nothing, review 46).
    #[test]
    fn forgiven_failures_are_reset_at_their_keys_and_said() {
        let dir = tempfile::tempdir().unwrap();
        let (mut eng, log) = started(dir.path());
        feed(&mut eng, &log, &failures("203.0.113.5", 1..3));
        let r = unban(&mut eng, "203.0.113.0/24", None);
        assert_eq!(
            r.message.as_deref(),
            Some("203.0.113.0/24 is not banned; its open failures are forgotten (in jail sshd)"),
            "{r:?}"
        );
        let net = Cidr::parse("203.0.113.0/24").unwrap();
        assert_eq!(eng.history.last_touched(net, "sshd"), None);
        assert!(eng
            .history
            .last_touched(Cidr::parse("203.0.113.5").unwrap(), "sshd")
            .is_some());
        // banned in another jail: the failures in the jail named are forgotten, and said
        let dir2 = tempfile::tempdir().unwrap();
        let (mut eng, _rx) = two_jail_engine(dir2.path());
        assert!(ban(&mut eng, "198.51.100.8", "b").ok);
        let at = now_ms();
        let f = portcullis_core::decision::Failure {
            addr: "198.51.100.8".parse().unwrap(),
            time: at,
            filter: 0,
            rule: 0,
            weight: 1,
            kind: portcullis_core::filter::Kind::Attempt,
            session: 0,
        };
        eng.jails[0].tracker_mut().record(&f, at);
        let r = unban(&mut eng, "198.51.100.8", Some("a"));
        let e = r.error.unwrap_or_default();
        assert!(
            e.contains("(it is in jail b;")
                && e.contains("its open failures in jail a are forgotten"),
            "{e}"
        );
    }

    /// A failure stamped days ago (an old log that appeared, a backlog after a long stop)
    /// is not counted; one a few hours off (a wrong zone, a late delivery) counts at now.
    #[test]
    fn a_failure_stamped_days_ago_is_not_counted() {
        let dir = tempfile::tempdir().unwrap();
        let (mut eng, log) = started(dir.path());
        let line = |at: i64, pid: u32, addr: &str| {
            format!(
                "{} h sshd[{pid}]: Failed password for root from {addr} port 4 ssh2",
                stamp(at)
            )
        };
        let (old, late) = ("203.0.113.9", "198.51.100.4");
        let three_days = 3 * 86_400;
        let lines: Vec<String> = (1..8)
            .map(|pid| line(-three_days, pid, old))
            .chain((8..10).map(|pid| line(-5 * 3600, pid, late)))
            .collect();
        feed(&mut eng, &log, &lines);
        assert_eq!(failing(&eng), [(late.to_string(), 2)]);
        assert!(bans_of(&mut eng, false).is_empty());
    }

    /// Saved counts that cannot be read back are lost, as after a crash, and the daemon
    /// starts anyway (bans and all).
    #[test]
    fn unreadable_saved_windows_do_not_stop_the_start() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (mut eng, log) = started(dir.path());
            feed(&mut eng, &log, &failures("203.0.113.9", 1..3));
            eng.on_control(Request::Ban {
                addr: "198.51.100.4".into(),
                jail: None,
                duration: None,
            });
            eng.stop().unwrap();
        }
        // a table of another shape (a hand edit, a downgrade and upgrade)
        let c = rusqlite::Connection::open(dir.path().join("p.db")).unwrap();
        c.execute_batch("DROP TABLE windows; CREATE TABLE windows (x);")
            .unwrap();
        drop(c);
        let (mut eng, _) = started(dir.path());
        assert!(failing(&eng).is_empty());
        let bans = bans_of(&mut eng, false);
        let hosts: Vec<&str> = bans.iter().map(|b| b.host.as_str()).collect();
        assert_eq!(hosts, ["198.51.100.4"]);
    }

    /// While the daemon runs, the open windows are saved with each batch (and each minute):
    /// after a crash the next start puts back every failure counted, except those a ban or
    /// a manual unban cleared since. (Saved each minute only, the failure after the last
    /// checkpoint was lost, review 60.)
    #[test]
    fn a_crash_keeps_the_failures_counted() {
        let dir = tempfile::tempdir().unwrap();
        let (mut eng, log) = started(dir.path());
        let log = log.as_str();
        let (a, b) = ("203.0.113.9", "198.51.100.4");
        let mut lines = failures(a, 1..3);
        lines.extend(failures(b, 3..4));
        feed(&mut eng, log, &lines);
        eng.checkpoint_windows(now_ms() + CHECKPOINT_EVERY_MS);
        // then `a` is banned (5 failures) and unbanned by hand, and `b` fails once more
        feed(&mut eng, log, &failures(a, 4..7));
        assert_eq!(bans_of(&mut eng, false).len(), 1);
        let r = eng.on_control(Request::Unban {
            addr: Some(a.into()),
            jail: None,
            all: false,
        });
        assert!(r.ok, "{r:?}");
        feed(&mut eng, log, &failures(b, 7..8));
        assert_eq!(failing(&eng), [(b.to_string(), 2)]);
        // a crash
        drop(eng);

        let (eng, _) = started(dir.path());
        // both of `b`'s failures, the one after the checkpoint too; `a`'s were cleared by
        // its ban after the checkpoint
        assert_eq!(failing(&eng), [(b.to_string(), 2)]);
        // a second crash before the first checkpoint of that run keeps them too
        drop(eng);
        let (eng, _) = started(dir.path());
        assert_eq!(failing(&eng), [(b.to_string(), 2)]);
    }

    #[test]
    fn the_deny_list_is_banned_at_start_and_follows_its_file_at_reload() {
        let dir = tempfile::tempdir().unwrap();
        let deny = dir.path().join("deny.txt");
        std::fs::write(
            &deny,
            "198.51.100.66\n203.0.113.0/24\n203.0.113.9 # inside the /24\n",
        )
        .unwrap();
        let cfg_path = dir.path().join("p.toml");
        let text = format!(
            "deny = [{:?}]\n{}",
            deny.display().to_string(),
            config(dir.path(), &[("a", &[])])
        );
        std::fs::write(&cfg_path, text).unwrap();
        let (tx, _rx) = engine_channel();
        let mut eng = engine(dir.path(), &cfg_path, tx);
        eng.sync_deny().unwrap();
        let denied = |eng: &mut Engine| -> Vec<(String, bool, String)> {
            bans_of(eng, true)
                .into_iter()
                .map(|b| (b.host, b.permanent, b.reason))
                .collect()
        };
        // the address inside the /24 is not a second (overlapping) element
        assert_eq!(
            denied(&mut eng),
            [
                ("198.51.100.66".to_string(), true, "deny".to_string()),
                ("203.0.113.0/24".to_string(), true, "deny".to_string())
            ]
        );
        let in_fw = |eng: &mut Engine| -> usize {
            eng.fw
                .list()
                .unwrap()
                .iter()
                .filter(|(j, _, _)| j == "deny")
                .count()
        };
        assert_eq!(in_fw(&mut eng), 2);
        // `unban` does not lift a deny entry
        let r = eng.on_control(Request::Unban {
            addr: Some("198.51.100.66".into()),
            jail: None,
            all: false,
        });
        assert!(!r.ok && r.error.unwrap().contains("deny"));
        // the file changes, the daemon reloads: one entry goes, one comes
        std::fs::write(&deny, "198.51.100.66\n203.0.113.128/28\n").unwrap();
        eng.reload().unwrap();
        assert_eq!(
            denied(&mut eng)
                .into_iter()
                .map(|d| d.0)
                .collect::<Vec<_>>(),
            ["198.51.100.66", "203.0.113.128/28"]
        );
        assert_eq!(in_fw(&mut eng), 2);
        // an entry that covers an own address is cut around it, with a warning (at start,
        // at reload, and when the host gets such an address: the own address wins)
        let (want, skipped) = deny_targets(&eng.cfg, &[ip("203.0.113.130")]);
        assert_eq!(
            want.iter().map(|c| c.to_string()).collect::<Vec<_>>(),
            [
                "198.51.100.66",
                "203.0.113.128/31",
                "203.0.113.131",
                "203.0.113.132/30",
                "203.0.113.136/29"
            ]
        );
        assert!(
            skipped.len() == 1
                && skipped[0].contains("203.0.113.128/28 is banned around what it must not hold (it holds 203.0.113.130"),
            "{skipped:?}"
        );
        eng.own = vec![ip("203.0.113.130")];
        eng.sync_deny().unwrap();
        assert_eq!(in_fw(&mut eng), 5);
    }

    #[test]
    fn manual_cidr_bans_escalate_across_a_restart_and_unban_resets() {
        let dir = tempfile::tempdir().unwrap();
        let cfg_path = dir.path().join("p.toml");
        std::fs::write(
            &cfg_path,
            config(dir.path(), &[("a", &[])])
                + "bantime_increment = { factor = 2.0, max = \"1d\", window = \"30d\" }\n",
        )
        .unwrap();
        let (tx, _rx) = engine_channel();
        let mut eng = engine(dir.path(), &cfg_path, tx.clone());
        eng.restore().unwrap();
        let net = "2001:db8:5::/48";
        let r = eng.on_control(Request::Ban {
            addr: net.into(),
            jail: Some("a".into()),
            duration: Some("50ms".into()),
        });
        assert!(r.ok, "{r:?}");
        // ended, then banned again: the second ban
        std::thread::sleep(Duration::from_millis(100));
        eng.expire(now_ms()).unwrap();
        assert!(bans_of(&mut eng, false).is_empty());
        assert!(ban(&mut eng, net, "a").ok);
        let b = bans_of(&mut eng, false);
        assert_eq!(
            (b[0].host.as_str(), b[0].count, b[0].reason.as_str()),
            (net, 2, "manual")
        );
        // an address inside the banned prefix is banned; a narrower ban, no longer, changes
        // nothing
        assert!(eng.jails[0].tracker().is_banned(ip("2001:db8:5:1::7")));
        let r = ban(&mut eng, "2001:db8:5:1::/64", "a");
        assert!(
            r.message
                .as_deref()
                .is_some_and(|m| m.contains("nothing changed")),
            "{r:?}"
        );
        assert_eq!(bans_of(&mut eng, false).len(), 1);
        drop(eng);
        // a start again: the ban and its count come back from the store
        let mut eng = engine(dir.path(), &cfg_path, tx.clone());
        eng.restore().unwrap();
        let b = bans_of(&mut eng, false);
        assert_eq!((b[0].host.as_str(), b[0].count), (net, 2));
        // a new duration for the active ban is the same ban, not the third: also in the
        // history the next start counts (a row of its own made it the third then)
        assert!(ban(&mut eng, net, "a").ok);
        assert_eq!(bans_of(&mut eng, false)[0].count, 2);
        assert_eq!(eng.store.history_since(0).unwrap().len(), 2);
        // unbanning an address inside lifts the prefix, and resets the count (also after a
        // restart)
        let r = eng.on_control(Request::Unban {
            addr: Some("2001:db8:5:1::7".into()),
            jail: None,
            all: false,
        });
        assert!(r.ok, "{r:?}");
        assert!(bans_of(&mut eng, false).is_empty());
        drop(eng);
        let mut eng = engine(dir.path(), &cfg_path, tx);
        eng.restore().unwrap();
        assert!(ban(&mut eng, net, "a").ok);
        assert_eq!(bans_of(&mut eng, false)[0].count, 1);
        // forever: permanent, listed by --permanent
        let r = eng.on_control(Request::Ban {
            addr: "192.0.2.44".into(),
            jail: Some("a".into()),
            duration: Some("forever".into()),
        });
        assert!(r.ok, "{r:?}");
        let p = bans_of(&mut eng, true);
        assert_eq!(p.len(), 1);
        assert_eq!(
            (p[0].host.as_str(), p[0].until.as_str(), p[0].remaining_secs),
            ("192.0.2.44", "forever", -1)
        );
    }

    /// `unban` of an offender not banned now (its last ban ended) forgets its earlier bans:
    /// its next ban is a first one again, also after a restart, and `unban` of an address
    /// never banned still says "not banned" (review 28: nothing could reset the escalation
    /// of an offender between bans).
    #[test]
    fn unban_of_an_offender_between_bans_pardons_it() {
        let dir = tempfile::tempdir().unwrap();
        let cfg_path = dir.path().join("p.toml");
        std::fs::write(
            &cfg_path,
            config(dir.path(), &[("a", &[]), ("b", &[])])
                + "bantime_increment = { factor = 2.0, max = \"1d\", window = \"30d\" }\n",
        )
        .unwrap();
        let (tx, _rx) = engine_channel();
        let mut eng = engine(dir.path(), &cfg_path, tx.clone());
        eng.restore().unwrap();
        let short = |eng: &mut Engine, jail: &str| {
            let r = eng.on_control(Request::Ban {
                addr: "203.0.113.70".into(),
                jail: Some(jail.into()),
                duration: Some("20ms".into()),
            });
            assert!(r.ok, "{r:?}");
            std::thread::sleep(Duration::from_millis(40));
            eng.expire(now_ms()).unwrap();
        };
        short(&mut eng, "a");
        short(&mut eng, "a");
        short(&mut eng, "b");
        assert!(bans_of(&mut eng, false).is_empty());
        // never banned: as before
        let r = unban(&mut eng, "203.0.113.71", None);
        assert!(
            !r.ok && r.error.as_deref() == Some("203.0.113.71 is not banned"),
            "{r:?}"
        );
        // in jail b only: a keeps its count
        std::thread::sleep(Duration::from_millis(2));
        let r = unban(&mut eng, "203.0.113.70", Some("b"));
        assert_eq!(
            r.message.as_deref(),
            Some("203.0.113.70 is not banned in jail b; its earlier bans are forgotten (1 in jail b)"),
            "{r:?}"
        );
        // nothing left to forget in b: "not banned" again
        assert!(!unban(&mut eng, "203.0.113.70", Some("b")).ok);
        assert!(ban(&mut eng, "203.0.113.70", "b").ok);
        assert_eq!(bans_of(&mut eng, false)[0].count, 1);
        // banned in b: `unban --jail a` says where, and forgets nothing
        let r = unban(&mut eng, "203.0.113.70", Some("a"));
        assert!(
            !r.ok
                && r.error
                    .as_deref()
                    .is_some_and(|e| e.contains("(it is in jail b;")),
            "{r:?}"
        );
        // `unban` lifts b's ban and forgets a's ended ones too
        std::thread::sleep(Duration::from_millis(2));
        let r = unban(&mut eng, "203.0.113.70", None);
        assert_eq!(
            r.message.as_deref(),
            Some("unbanned 1 ban(s): 203.0.113.70 (b); earlier bans forgotten too (2 in jail a)"),
            "{r:?}"
        );
        drop(eng);
        let mut eng = engine(dir.path(), &cfg_path, tx);
        eng.restore().unwrap();
        assert!(ban(&mut eng, "203.0.113.70", "a").ok);
        assert!(ban(&mut eng, "203.0.113.70", "b").ok);
        let mut counts: Vec<(String, u32)> = bans_of(&mut eng, false)
            .into_iter()
            .map(|b| (b.jail, b.count))
            .collect();
        counts.sort();
        assert_eq!(counts, [("a".to_string(), 1), ("b".to_string(), 1)]);
        // `unban --all` forgets each lifted address's bans in the other jails too, and a
        // jail no longer configured is among them (its bans count across jails for their
        // window: review 36)
        let r = eng.on_control(Request::Unban {
            addr: None,
            jail: None,
            all: true,
        });
        assert!(r.ok, "{r:?}");
        let x = ip("203.0.113.70");
        assert_eq!(
            (
                eng.history.count(Cidr::host(x), Some("a"), 0),
                eng.history.count(Cidr::host(x), Some("b"), 0)
            ),
            (0, 0)
        );
        eng.history
            .record_ban(Cidr::host(x), "gone", now_ms() - 1000);
        let r = unban(&mut eng, "203.0.113.70", None);
        assert_eq!(
            r.message.as_deref(),
            Some("203.0.113.70 is not banned; its earlier bans are forgotten (1 in jail gone)"),
            "{r:?}"
        );
        assert_eq!(eng.history.count(Cidr::host(x), None, 0), 0);
        // a ban of a jail no longer configured, kept in the state file: `--jail a` says where
        // it is, and `unban` lifts it there, as the offline command does (review 38)
        let y = Cidr::host(ip("203.0.113.72"));
        eng.store
            .apply(&[StoreOp::Ban(BanRecord {
                addr: y,
                jail: "g".into(),
                start: now_ms(),
                end: now_ms() + 3_600_000,
                failures: 3,
                reason: BanReason::Failures,
                count: 1,
            })])
            .unwrap();
        let r = unban(&mut eng, "203.0.113.72", Some("a"));
        assert!(
            !r.ok
                && r.error
                    .as_deref()
                    .is_some_and(|e| e.contains("(it is in jail g;")),
            "{r:?}"
        );
        let r = unban(&mut eng, "203.0.113.72", None);
        assert_eq!(
            r.message.as_deref(),
            Some("unbanned 1 ban(s) (1 of jails not configured, from the state file: 203.0.113.72 (g))"),
            "{r:?}"
        );
        assert!(eng
            .store
            .active_bans(now_ms())
            .unwrap()
            .iter()
            .all(|b| b.addr != y));
        // the bans of a jail not configured are lifted by the rule of the configured ones
        // (the ban itself, else the widest that covers it, else those inside a prefix), with
        // or without `--jail`, and by `unban --all` (which left them: stop 43's left-over)
        let store_ban = |eng: &mut Engine, c: &str| {
            eng.store
                .apply(&[StoreOp::Ban(BanRecord {
                    addr: Cidr::parse(c).unwrap(),
                    jail: "g".into(),
                    start: now_ms(),
                    end: now_ms() + 3_600_000,
                    failures: 3,
                    reason: BanReason::Failures,
                    count: 1,
                })])
                .unwrap();
        };
        store_ban(&mut eng, "198.51.100.0/24");
        store_ban(&mut eng, "198.51.100.128/25");
        store_ban(&mut eng, "203.0.113.3");
        store_ban(&mut eng, "203.0.113.9");
        let r = unban(&mut eng, "198.51.100.200", Some("g"));
        assert!(r.ok, "{r:?}");
        assert_eq!(
            stored_bans(&eng),
            ["g 198.51.100.128/25", "g 203.0.113.3", "g 203.0.113.9"]
        );
        let r = unban(&mut eng, "203.0.113.0/28", None);
        assert_eq!(
            r.message.as_deref(),
            Some("unbanned 2 ban(s) (2 of jails not configured, from the state file: 203.0.113.3 (g), 203.0.113.9 (g))"),
            "{r:?}"
        );
        assert!(ban(&mut eng, "203.0.113.40", "a").ok);
        let r = eng.on_control(Request::Unban {
            addr: None,
            jail: None,
            all: true,
        });
        assert_eq!(
            r.message.as_deref(),
            Some("unbanned 2 ban(s): 203.0.113.40 (a) (1 of jails not configured, from the state file: 198.51.100.128/25 (g))"),
            "{r:?}"
        );
        assert!(stored_bans(&eng).is_empty(), "{:?}", stored_bans(&eng));
    }

    #[test]
    fn a_flood_is_reported_once_per_interval_and_shown_by_status() {
        let dir = tempfile::tempdir().unwrap();
        let cfg_path = dir.path().join("p.toml");
        std::fs::write(
            &cfg_path,
            format!("max_tracked = 100\n{}", config(dir.path(), &[("a", &[])])),
        )
        .unwrap();
        let (tx, _rx) = engine_channel();
        let mut eng = engine(dir.path(), &cfg_path, tx);
        let ctx = portcullis_core::time::TimeContext {
            now: now_ms(),
            local_offset: 0,
            zone: None,
        };
        let status = |eng: &mut Engine| -> Option<String> {
            eng.on_control(Request::Status { jail: None }).jails[0]
                .flood
                .clone()
        };
        let t0 = now_ms();
        eng.report_floods(t0);
        assert_eq!(status(&mut eng), None);
        // 300 one-shot addresses: the cap (100) is reached, windows are evicted
        for i in 0..300u32 {
            let line = format!(
                "{} h sshd[{i}]: Failed password for root from 198.51.{}.{} port 22 ssh2",
                stamp(0),
                i / 250,
                i % 250 + 1
            );
            eng.jails[0].process(line.as_bytes(), &ctx, Some(t0), t0);
        }
        assert!(eng.jails[0].tracker().stats().evicted > 0);
        eng.report_floods(t0);
        let f = eng.floods["a"];
        assert_eq!(f.last_event, Some(t0));
        assert!(status(&mut eng).is_some_and(|s| s.contains("flood")));
        // more evictions within the interval: no second event
        for i in 0..300u32 {
            let line = format!(
                "{} h sshd[{i}]: Failed password for root from 203.0.{}.{} port 22 ssh2",
                stamp(1),
                i / 250,
                i % 250 + 1
            );
            eng.jails[0].process(line.as_bytes(), &ctx, Some(t0), t0);
        }
        eng.report_floods(t0 + 1000);
        assert_eq!(eng.floods["a"].last_event, Some(t0));
        eng.report_floods(t0 + FLOOD_INTERVAL_MS);
        assert_eq!(eng.floods["a"].last_event, Some(t0 + FLOOD_INTERVAL_MS));
        // the rate trigger: ten times the last interval's failures, at least the floor
        let later = t0 + 10 * FLOOD_INTERVAL_MS;
        eng.floods.insert(
            "a".into(),
            FloodState {
                since: later - 1,
                count: FLOOD_RATE_FLOOR,
                prev: 100,
                last_event: None,
                started: None,
            },
        );
        eng.report_floods(later);
        assert_eq!(eng.floods["a"].last_event, Some(later));
        // quiet for two intervals: status no longer says flood
        assert_eq!(eng.flood_status("a", later + 2 * FLOOD_INTERVAL_MS), None);
    }
}

//! `portcullis run`: the daemon. One engine thread owns all state (jails, trackers, store,
//! firewall); sources, the control socket and signals talk to it over a channel.

mod addrs;
pub mod control;
mod fleet_apply;
pub mod fsutil;
pub mod protocol;

use std::collections::HashMap;
use std::net::IpAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use portcullis_core::decision::{Decision, Millis};
use portcullis_core::duration;
use portcullis_core::ignore::{Cidr, IgnoreList, Reason};
use portcullis_core::jail::{Jail, Step};
use portcullis_core::time::rfc3339;
use tracing::{error, info, warn};

use crate::config::{self, Config, OnCorrupt};
use crate::events::{self, Event, StopKind, UnbanReason};
#[cfg(test)]
use crate::firewall::null::Null;
use crate::firewall::{Action, Firewall, FwOp, JailRules, Proto};
use crate::jails;
use crate::sources::batch::Batch;
use crate::sources::file::{self as file_source, FileSources, SharedPaths};
use crate::sources::glob;
use crate::sources::journal::reader::{JournalCommand, JournalReaders};
use crate::store::{BanRecord, CorruptPolicy, Store, StoreOp};
use protocol::{BanInfo, JailStatus, Request, Response};

/// How long the ban history of an address is kept (for repeat offenders).
const HISTORY_DAYS: i64 = 90;

/// How often, at least, the host's own addresses are read again (milliseconds).
const OWN_REFRESH_MS: i64 = 60_000;

/// How many messages (batches of lines, requests) may wait for the engine: a source that
/// reads faster than the engine matches waits on a full channel, so a flood slows reading
/// and never grows memory (a batch holds at most [`crate::sources::batch::BATCH_BYTES`] of lines).
pub const ENGINE_QUEUE: usize = 16;

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
    /// The host's addresses changed (an rtnetlink announcement).
    Addresses,
    /// Checked entries from the fleet reader, and where to say what became of each.
    Fleet(Vec<crate::fleet::Entry>, Sender<Vec<crate::fleet::Outcome>>),
}

fn now_ms() -> Millis {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

struct Engine {
    config_path: Option<PathBuf>,
    cfg: Config,
    jails: Vec<Jail>,
    /// Which jails read which source.
    routes: HashMap<String, Vec<usize>>,
    /// Sources whose wildcard routes were added to `routes` (since the last load).
    glob_routed: std::collections::HashSet<String>,
    /// The host's own addresses (sorted), never banned.
    own: Vec<IpAddr>,
    /// When `own` was last read.
    own_read: Millis,
    fw: Box<dyn Firewall>,
    store: Store,
    new_paths: SharedPaths,
    /// One reader per `journal:` source, matched to the configuration at start and reload.
    journals: JournalReaders,
    /// When the ban history was last pruned.
    last_prune: Millis,
    /// Evictions already reported per jail (DOSBAIL-style floods are reported, not fatal).
    evicted_reported: HashMap<String, u64>,
    /// Where counted failures' lines are kept for notifications (when any is configured).
    evidence: Option<crate::notify::EvidenceHook>,
    /// Shared bans (`[fleet]`), when configured and started.
    fleet: Option<Arc<crate::fleet::Shared>>,
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
        Engine {
            config_path: config_path.map(Path::to_path_buf),
            jails: cfg
                .jails
                .iter()
                .map(|j| jails::build_jail(&cfg, j, &own))
                .collect(),
            routes: routes(&cfg),
            glob_routed: std::collections::HashSet::new(),
            journals: JournalReaders::new(journal, cfg.state_dir.clone(), tx)
                .max_line(cfg.max_line),
            own,
            own_read: now_ms(),
            fw,
            store,
            new_paths: Arc::new(Mutex::new(None)),
            evicted_reported: HashMap::new(),
            evidence: None,
            fleet: None,
            last_prune: i64::MIN / 2,
            cfg,
        }
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
        Some(Reason::Listed(c)) => Some(format!("ignore:{c}")),
        None if own.iter().any(|&a| ban.contains(a)) => Some("own-address".into()),
        None => None,
    }
}

fn jail_rules(cfg: &Config) -> Vec<JailRules> {
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

fn routes(cfg: &Config) -> HashMap<String, Vec<usize>> {
    let mut r: HashMap<String, Vec<usize>> = HashMap::new();
    for (i, j) in cfg.jails.iter().enumerate() {
        for l in &j.logs {
            r.entry(l.clone()).or_default().push(i);
        }
    }
    r
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

/// The files to follow: plain paths, and the files wildcard paths match now.
fn file_paths(cfg: &Config) -> FileSources {
    let mut out = FileSources::default();
    for l in log_sources(cfg, false) {
        if glob::is_glob(&l) {
            out.paths.extend(glob::expand(&l));
            out.globs.push(l);
        } else {
            out.paths.push(PathBuf::from(l));
        }
    }
    out.paths.sort();
    out.paths.dedup();
    out
}

/// The files a jail's file sources name now (wildcards expanded), each with whether this
/// process can read it.
fn jail_files(j: &crate::config::JailConfig) -> Vec<(String, bool)> {
    let mut out = Vec::new();
    for l in j.logs.iter().filter(|l| !l.starts_with("journal:")) {
        let paths = if glob::is_glob(l) {
            glob::expand(l)
        } else {
            vec![PathBuf::from(l)]
        };
        for p in paths {
            // a regular file, opened without blocking: a FIFO put in a log's place must
            // not stop the engine thread (this runs on it, for `status`)
            let readable = std::fs::metadata(&p).is_ok_and(|m| m.is_file())
                && std::fs::OpenOptions::new()
                    .read(true)
                    .custom_flags(libc::O_NONBLOCK)
                    .open(&p)
                    .is_ok();
            out.push((p.display().to_string(), readable));
        }
    }
    out
}

/// What `status` must say loudly about a jail's sources: a jail with no readable source
/// sees nothing, and protects nothing.
fn source_warnings(j: &crate::config::JailConfig) -> Vec<String> {
    let journals = j.logs.iter().any(|l| l.starts_with("journal:"));
    let files = jail_files(j);
    let mut w: Vec<String> = files
        .iter()
        .filter(|(_, ok)| !ok)
        .map(|(f, _)| format!("cannot read {f} (missing or no permission)"))
        .collect();
    if !journals && !files.iter().any(|(_, ok)| *ok) {
        w.insert(
            0,
            "NO READABLE LOG SOURCE: this jail sees nothing and bans nobody".to_string(),
        );
    }
    w
}

/// The jails that read `path` through a wildcard source (none: an empty list).
fn glob_route(cfg: &Config, path: &str) -> Vec<usize> {
    cfg.jails
        .iter()
        .enumerate()
        .filter(|(_, j)| {
            j.logs
                .iter()
                .any(|l| glob::is_glob(l) && glob::matches(l, path))
        })
        .map(|(i, _)| i)
        .collect()
}

/// Runs the daemon in the foreground until SIGTERM.
pub fn run(config_path: Option<&Path>, log_level: Option<&str>) -> Result<i32> {
    let mut cfg = Config::load(config_path)?;
    let level = log_level.unwrap_or(&cfg.log_level);
    crate::logging::init(crate::logging::parse_level(level).unwrap_or(tracing::Level::INFO));
    for w in config::warnings(&cfg) {
        warn!("{w}");
    }
    // refused unless only this user can write there (see fsutil); the resolved path from here on
    cfg.state_dir = fsutil::prepare_state_dir(&cfg.state_dir)?;
    // held until the daemon ends: no second daemon, no offline unban beside it
    let _state_lock = fsutil::lock_state(&cfg.state_dir)?;
    let policy = match cfg.on_corrupt_state {
        OnCorrupt::Refuse => CorruptPolicy::Refuse,
        OnCorrupt::MoveAside => CorruptPolicy::MoveAside,
    };
    let store = Store::open(&cfg.state_dir.join("portcullis.db"), policy)?;
    for n in store.notes() {
        error!("state {n}");
    }
    let fw = crate::firewall::router::build(&cfg)?;
    // notifications: their own thread and queue file; never in the way of a ban
    let notifier = crate::notify::start_logged(&cfg.notify, &cfg.state_dir);
    let (tx, rx) = engine_channel();
    let mut eng = Engine::new(
        config_path,
        cfg,
        addrs::own(),
        fw,
        store,
        JournalCommand::default(),
        tx.clone(),
    );
    eng.evidence = notifier.as_ref().map(crate::notify::Notifier::evidence);
    let files = file_paths(&eng.cfg);
    let follower = file_source::open_files(files.paths, eng.store.positions()?, eng.cfg.max_line)
        .context("cannot start the file follower")?;
    eng.fw
        .set_ratelimits(&ratelimits(&eng.cfg, &eng.own))
        .context("[[ratelimit]]")?;
    eng.fw
        .setup(&jail_rules(&eng.cfg))
        .context("cannot set up the firewall")?;
    eng.restore()?;
    // shared bans: their own threads, connections and state file; Redis down never stops
    // local banning, and a fleet that cannot start is logged, not fatal
    if let Some(fc) = eng.cfg.fleet.clone() {
        let active: Vec<(IpAddr, String, u32, Millis)> = eng
            .jails
            .iter()
            .flat_map(|j| {
                j.tracker()
                    .bans()
                    .map(|(a, until)| (a, j.name().to_string(), 0, until))
            })
            .collect();
        match crate::fleet::start(fc, &eng.cfg.state_dir, tx.clone(), &active) {
            Ok(f) => eng.fleet = Some(f),
            Err(e) => error!("fleet: cannot start, bans are not shared: {e:#}"),
        }
    }
    // the restore's temporary vectors and nft script are gone; without this RSS keeps
    // their peak
    crate::sys::trim_heap();

    let socket = control::bind(&eng.cfg.socket, eng.cfg.socket_group.as_deref())?;
    {
        let tx = tx.clone();
        let listener = socket.listener.try_clone()?;
        std::thread::spawn(move || control::serve(listener, tx));
    }
    spawn_signals(tx.clone())?;
    if let Err(e) = addrs::watch(tx.clone()) {
        warn!(
            "cannot watch address changes ({e}); own addresses are read again each minute and \
             at reload"
        );
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
        firewall: eng.cfg.firewall.backend.clone(),
    });
    // Type=notify: ready once the firewall is set up and the bans are restored
    if let Err(e) = crate::sys::sd_notify("READY=1") {
        warn!("cannot tell systemd that the daemon is ready: {e}");
    }
    let code = eng.main_loop(&rx);
    let _ = crate::sys::sd_notify("STOPPING=1");
    if let Some(n) = notifier {
        n.shutdown(Duration::from_secs(2));
    }
    socket.remove();
    // each journal reader saves the cursor of the last entry the engine processed
    eng.journals.stop_all();
    code
}

fn spawn_signals(tx: EngineTx) -> Result<()> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGHUP, SIGINT, SIGTERM])?;
    std::thread::spawn(move || {
        for s in signals.forever() {
            let m = if s == SIGHUP { Msg::Reload } else { Msg::Stop };
            if tx.send(m).is_err() {
                return;
            }
        }
    });
    Ok(())
}

impl Engine {
    fn main_loop(&mut self, rx: &Receiver<Msg>) -> Result<i32> {
        loop {
            let now = now_ms();
            let next = self
                .jails
                .iter()
                .filter_map(|j| j.tracker().next_expiry())
                .min();
            let next = next.map_or(self.own_read + OWN_REFRESH_MS, |t| {
                t.min(self.own_read + OWN_REFRESH_MS)
            });
            let wait = Duration::from_millis((next - now).clamp(0, 60_000) as u64);
            match rx.recv_timeout(wait) {
                Ok(Msg::Lines(b)) => self.on_lines(b)?,
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
                Ok(Msg::Addresses) => self.refresh_own_logged(now_ms()),
                Ok(Msg::Fleet(entries, reply)) => {
                    let _ = reply.send(self.fleet_apply(entries, now_ms()));
                }
                Ok(Msg::Stop) | Err(RecvTimeoutError::Disconnected) => return self.stop(),
                Err(RecvTimeoutError::Timeout) => {}
            }
            self.expire(now_ms())?;
            self.prune_history(now_ms())?;
            if now_ms() - self.own_read >= OWN_REFRESH_MS {
                self.refresh_own_logged(now_ms());
            }
        }
    }

    /// [`Engine::refresh_own`]; a failure is logged, and tried again at the next refresh.
    fn refresh_own_logged(&mut self, now: Millis) {
        if let Err(e) = self.refresh_own(now) {
            error!("own addresses: {e:#}");
        }
    }

    /// Reads the host's addresses again; when they changed, the jails' ignore lists follow
    /// and bans that now cover one of them are lifted.
    fn refresh_own(&mut self, now: Millis) -> Result<()> {
        self.own_read = now;
        self.set_own(addrs::own(), now)
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
        if self.cfg.ignore_self {
            for (j, jc) in self.jails.iter_mut().zip(&self.cfg.jails) {
                j.reconfigure(
                    jails::jail_settings(&self.cfg, jc, &self.own),
                    jc.filters.clone(),
                );
            }
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
        for j in &mut self.jails {
            let lift: Vec<(IpAddr, String)> = j
                .tracker()
                .bans()
                .filter_map(|(a, _)| {
                    lift_reason(&j.settings().ignore, &self.own, Cidr::host(a)).map(|r| (a, r))
                })
                .collect();
            let jail = j.name().to_string();
            for (addr, reason) in lift {
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
            }
        }
        if !fw_ops.is_empty() {
            if let Err(e) = self.fw.apply(&fw_ops) {
                error!("firewall: {e:#}; repairing the table and retrying");
                self.fw.setup(&jail_rules(&self.cfg))?;
                self.fw.apply(&fw_ops)?;
            }
            self.store.apply(&st_ops)?;
        }
        Ok(fw_ops.len())
    }

    /// Drops ban history older than [`HISTORY_DAYS`], at start and then once a day, so the
    /// state file does not grow without limit.
    fn prune_history(&mut self, now: Millis) -> Result<()> {
        if now - self.last_prune < 86_400_000 {
            return Ok(());
        }
        self.last_prune = now;
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
        events::emit(&Event::Stopped(stop_kind(
            &self.cfg.firewall.backend,
            self.cfg.firewall.keep_bans_on_stop,
        )));
        if !self.cfg.firewall.keep_bans_on_stop {
            self.fw.teardown()?;
        }
        Ok(0)
    }

    fn restore(&mut self) -> Result<()> {
        let now = now_ms();
        let mut ops = Vec::new();
        let mut lifted = Vec::new();
        let mut n = 0;
        // every row still marked active, also those that ended while the daemon was down
        // (a crash): those are lifted, so that a backend without kernel timeouts (command)
        // undoes them
        for b in self.store.active_bans(i64::MIN)? {
            let Some(j) = self.jails.iter_mut().find(|j| j.name() == b.jail) else {
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
            // not put back if the ignore list, loopback or an own address covers it now
            // (the kernel may still hold it: deleted)
            if let Some(reason) = lift_reason(&j.settings().ignore, &self.own, Cidr::host(b.addr)) {
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
                    jail: b.jail,
                    at: now,
                });
                continue;
            }
            j.tracker_mut().ban(b.addr, b.start, b.end, b.failures);
            ops.push(FwOp::Add {
                jail: b.jail.clone(),
                addr: b.addr,
                timeout_ms: b.end - now,
            });
            n += 1;
            if n <= 100 {
                events::emit(&Event::Restore {
                    addr: b.addr,
                    jail: b.jail.clone(),
                    remaining: b.end - now,
                });
            }
        }
        // always, also with nothing to restore: backends without kernel timeouts drop
        // what a crash left behind
        self.fw
            .restore(&ops)
            .context("cannot restore bans into the firewall")?;
        if !lifted.is_empty() {
            self.store.apply(&lifted)?;
        }
        if n > 100 {
            events::emit(&Event::Restored(n));
        }
        Ok(())
    }

    fn on_lines(&mut self, b: Batch) -> Result<()> {
        for n in &b.notes {
            info!("{n}");
        }
        let now = now_ms();
        let ctx = portcullis_core::time::TimeContext {
            now,
            local_offset: crate::cli::local_offset(now / 1000),
        };
        let mut fw_ops = Vec::new();
        let mut st_ops = Vec::new();
        for (src, line) in b.iter() {
            if !self.glob_routed.contains(src) {
                self.glob_routed.insert(src.to_string());
                // first line of this file since the configuration was loaded: add the jails
                // that read it through a wildcard to those that name it (cached)
                let mut js = self.routes.remove(src).unwrap_or_default();
                js.extend(glob_route(&self.cfg, src));
                js.sort_unstable();
                js.dedup();
                self.routes.insert(src.to_string(), js);
            }
            let Some(js) = self.routes.get(src) else {
                continue;
            };
            for &ji in js {
                let j = &mut self.jails[ji];
                let step = j.process(line, &ctx, Some(now), now);
                if let (Some(ev), Step::Failure { failure, .. }) = (&self.evidence, &step) {
                    if failure.weight > 0 {
                        ev.record(
                            j.name(),
                            failure.addr,
                            line,
                            now,
                            self.cfg.jails[ji].findtime,
                        );
                    }
                }
                if let Step::Failure {
                    decision:
                        Some(Decision::Ban {
                            addr,
                            at,
                            until,
                            failures,
                        }),
                    ..
                } = step
                {
                    if crate::firewall::never_ban(addr) || self.own.contains(&addr) {
                        j.tracker_mut().unban(addr);
                        continue;
                    }
                    let jail = j.name().to_string();
                    events::emit(&Event::Ban {
                        addr,
                        jail: jail.clone(),
                        failures,
                        length: until - at,
                        manual: false,
                    });
                    fw_ops.push(FwOp::Add {
                        jail: jail.clone(),
                        addr,
                        timeout_ms: until - now,
                    });
                    st_ops.push(StoreOp::Ban(BanRecord {
                        addr,
                        jail,
                        start: at,
                        end: until,
                        failures,
                    }));
                }
            }
        }
        for j in &self.jails {
            let ev = j.tracker().stats().evicted;
            let seen = self
                .evicted_reported
                .entry(j.name().to_string())
                .or_default();
            if ev >= *seen + 10_000 || (*seen == 0 && ev > 0) {
                events::emit(&Event::Flood {
                    jail: j.name().to_string(),
                    evicted: ev,
                });
                *seen = ev;
            }
        }
        if !fw_ops.is_empty() {
            if let Err(e) = self.fw.apply(&fw_ops) {
                error!("firewall: {e:#}; repairing the table and retrying");
                self.fw.setup(&jail_rules(&self.cfg))?;
                self.fw.apply(&fw_ops)?;
            }
        }
        st_ops.extend(b.checkpoints.into_iter().map(StoreOp::Position));
        if !st_ops.is_empty() {
            self.store.apply(&st_ops)?;
        }
        // processed (and the bans stored): the journal reader may save its position
        if let Some(p) = b.journal {
            p.commit();
        }
        Ok(())
    }

    fn expire(&mut self, now: Millis) -> Result<()> {
        let mut st_ops = Vec::new();
        let mut fw_ops = Vec::new();
        let lift = !self.fw.expires_itself();
        for j in &mut self.jails {
            if j.tracker().next_expiry().is_some_and(|t| t <= now) {
                for d in j.tracker_mut().expire(now) {
                    if let Decision::Unban { addr, at } = d {
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
        let cfg = Config::load(self.config_path.as_deref())?;
        self.own = addrs::own();
        self.own_read = now_ms();
        self.fw
            .set_ratelimits(&ratelimits(&cfg, &self.own))
            .context("[[ratelimit]]")?;
        self.fw
            .setup(&jail_rules(&cfg))
            .context("the firewall refused the new jails")?;
        let mut jails = Vec::new();
        let mut old: Vec<Jail> = std::mem::take(&mut self.jails);
        for jc in &cfg.jails {
            let settings = jails::jail_settings(&cfg, jc, &self.own);
            match old.iter().position(|j| j.name() == jc.name) {
                Some(i) => {
                    let mut j = old.swap_remove(i);
                    j.reconfigure(settings, jc.filters.clone());
                    jails.push(j);
                }
                None => jails.push(jails::build_jail(&cfg, jc, &self.own)),
            }
        }
        self.jails = jails;
        self.routes = routes(&cfg);
        self.glob_routed.clear();
        *self.new_paths.lock().expect("paths lock") = Some(file_paths(&cfg));
        // journal sources are matched the same way: new ones get a reader, readers of
        // sources no jail reads any more are stopped
        let (started, stopped) = self.journals.reconcile(&journal_sources(&cfg));
        for s in &started {
            info!("reading {s}");
        }
        for s in &stopped {
            info!("stopped reading {s}");
        }
        self.cfg = cfg;
        // bans the new ignore lists (or the host's addresses as read now) cover are lifted;
        // the new configuration stands even if that fails
        let lifted = match self.lift_ignored(now_ms()) {
            Ok(n) => n,
            Err(e) => {
                error!("cannot lift ignored bans: {e:#}");
                0
            }
        };
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
            Request::Bans { jail } => {
                if let Some(n) = &jail {
                    if !self.jails.iter().any(|j| j.name() == n) {
                        return Response::err(format!("no jail named {n:?}"));
                    }
                }
                Response {
                    ok: true,
                    bans: self.bans(now, jail.as_deref()),
                    ..Default::default()
                }
            }
            Request::Status { jail } => {
                if let Some(n) = &jail {
                    if !self.jails.iter().any(|j| j.name() == n) {
                        return Response::err(format!("no jail named {n:?}"));
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
                        files: jail_files(c).into_iter().map(|(f, _)| f).collect(),
                        warnings: source_warnings(c),
                        maxretry: c.maxretry,
                        findtime: duration::format(c.findtime),
                        bantime: duration::format(c.bantime),
                        failing: j
                            .tracker()
                            .failing(now)
                            .into_iter()
                            .map(|(a, n)| (a.to_string(), n))
                            .collect(),
                        banned: j.tracker().stats().banned,
                        evicted: j.tracker().stats().evicted,
                    })
                    .collect();
                // the firewall's own lines: rate-limit counters, size warnings
                let fw = self.fw.report();
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
            } => self.manual_ban(&addr, jail.as_deref(), dur.as_deref(), now),
            Request::Unban { addr, jail, all } => {
                self.manual_unban(addr.as_deref(), jail.as_deref(), all, now)
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
                v.push(BanInfo {
                    host: addr.to_string(),
                    jail: j.name().to_string(),
                    until: rfc3339(until),
                    remaining_secs: (until - now).max(0) / 1000,
                    origin: self
                        .fleet
                        .as_ref()
                        .and_then(|f| f.origin(addr, j.name()))
                        .unwrap_or_else(|| "local".into()),
                });
            }
        }
        v
    }

    fn manual_ban(
        &mut self,
        addr: &str,
        jail: Option<&str>,
        dur: Option<&str>,
        now: Millis,
    ) -> Response {
        let Some(ip) = portcullis_core::addr::parse(addr.as_bytes()) else {
            return Response::err(format!("{addr:?} is not an IP address"));
        };
        let ji = match jail {
            Some(n) => match self.jails.iter().position(|j| j.name() == n) {
                Some(i) => i,
                None => return Response::err(format!("no jail named {n:?}")),
            },
            None if self.jails.is_empty() => return Response::err("there is no jail to ban in"),
            None => 0,
        };
        if let Some(reason) = self.jails[ji].settings().ignore.check(ip) {
            return Response::err(format!("refused to ban {ip}: {reason}"));
        }
        if crate::firewall::never_ban(ip) || self.own.contains(&ip) {
            return Response::err(format!(
                "refused to ban {ip}: it is loopback or one of this host's own addresses"
            ));
        }
        let len = match dur {
            None => self.cfg.jails[ji].bantime,
            Some(d) => match duration::parse(d) {
                Ok(l) if l > 0 => l,
                Ok(_) => return Response::err("the duration must be longer than 0"),
                Err(e) => return Response::err(e.to_string()),
            },
        };
        let jail = self.jails[ji].name().to_string();
        let mut ops = Vec::new();
        if self.jails[ji].tracker().is_banned(ip) {
            // a new duration for an active ban: the kernel element is replaced
            ops.push(FwOp::Del {
                jail: jail.clone(),
                addr: ip,
            });
        }
        ops.push(FwOp::Add {
            jail: jail.clone(),
            addr: ip,
            timeout_ms: len,
        });
        // the kernel first: a refused ban must not leave the tracker saying "banned"
        if let Err(e) = self.fw.apply(&ops) {
            return Response::err(format!("the firewall refused: {e:#}"));
        }
        self.jails[ji].tracker_mut().ban(ip, now, now + len, 0);
        if let Err(e) = self.store.apply(&[StoreOp::Ban(BanRecord {
            addr: ip,
            jail: jail.clone(),
            start: now,
            end: now + len,
            failures: 0,
        })]) {
            return Response::err(format!("banned, but the state could not be saved: {e:#}"));
        }
        events::emit(&Event::Ban {
            addr: ip,
            jail: jail.clone(),
            failures: 0,
            length: len,
            manual: true,
        });
        Response::ok(format!(
            "banned {ip} in jail {jail} for {}",
            duration::format(len)
        ))
    }

    fn manual_unban(
        &mut self,
        addr: Option<&str>,
        jail: Option<&str>,
        all: bool,
        now: Millis,
    ) -> Response {
        let ip = match (addr, all) {
            (_, true) => None,
            (Some(a), false) => match portcullis_core::addr::parse(a.as_bytes()) {
                Some(ip) => Some(ip),
                None => return Response::err(format!("{a:?} is not an IP address")),
            },
            (None, false) => return Response::err("give an address, or --all"),
        };
        let mut fw_ops = Vec::new();
        let mut st_ops = Vec::new();
        for j in self
            .jails
            .iter_mut()
            .filter(|j| jail.is_none_or(|n| n == j.name()))
        {
            let name = j.name().to_string();
            let addrs: Vec<IpAddr> = match ip {
                Some(ip) => {
                    if j.tracker_mut().unban(ip) {
                        vec![ip]
                    } else {
                        vec![]
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
                fw_ops.push(FwOp::Del {
                    jail: name.clone(),
                    addr: a,
                });
                st_ops.push(StoreOp::Unban {
                    addr: a,
                    jail: name.clone(),
                    at: now,
                });
            }
        }
        if fw_ops.is_empty() {
            return Response::err(match ip {
                Some(ip) => format!("{ip} is not banned"),
                None => "nothing is banned".into(),
            });
        }
        if let Err(e) = self.fw.apply(&fw_ops) {
            return Response::err(format!("the firewall refused: {e:#}"));
        }
        if let Err(e) = self.store.apply(&st_ops) {
            return Response::err(format!("unbanned, but the state could not be saved: {e:#}"));
        }
        Response::ok(format!("unbanned {} ban(s)", fw_ops.len()))
    }
}

/// Where the bans are left when the daemon stops.
fn stop_kind(backend: &str, keep_bans: bool) -> StopKind {
    match (backend, keep_bans) {
        ("null", _) => StopKind::NullBackend,
        (_, true) => StopKind::KeepBans,
        (_, false) => StopKind::TableRemoved,
    }
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
            .flat_map(|j| j.tracker().bans().map(|(a, _)| (a, j.name().to_string())))
            .collect();
        let mut store: Seen = eng
            .store
            .active_bans(now_ms())
            .unwrap()
            .into_iter()
            .map(|b| (b.addr, b.jail))
            .collect();
        let mut fw: Seen = eng
            .fw
            .list()
            .unwrap()
            .into_iter()
            .map(|(j, a, _)| (a, j))
            .collect();
        for v in [&mut tracker, &mut store, &mut fw] {
            v.sort();
        }
        (tracker, store, fw)
    }

    fn stored_ban(addr: &str, jail: &str) -> StoreOp {
        StoreOp::Ban(BanRecord {
            addr: ip(addr),
            jail: jail.into(),
            start: now_ms(),
            end: now_ms() + 36_499 * 86_400_000,
            failures: 5,
        })
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

    #[test]
    fn a_new_own_address_lifts_its_ban() {
        let dir = tempfile::tempdir().unwrap();
        let dir = dir.path();
        let path = dir.join("portcullis.toml");
        std::fs::write(&path, config(dir, &[("sshd", &[])])).unwrap();
        let (tx, _rx) = engine_channel();
        let mut eng = engine(dir, &path, tx);
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
        let all = hosts(eng.on_control(Request::Bans { jail: None }));
        assert_eq!(all.len(), 2, "{all:?}");
        let only_b = hosts(eng.on_control(Request::Bans {
            jail: Some("b".into()),
        }));
        assert_eq!(only_b, [("203.0.113.6".to_string(), "b".to_string())]);
        let r = eng.on_control(Request::Bans {
            jail: Some("nosuch".into()),
        });
        assert!(!r.ok && r.error.unwrap().contains("nosuch"));
        // unban --jail lifts only that jail's ban
        let r = eng.on_control(Request::Unban {
            addr: None,
            jail: Some("a".into()),
            all: true,
        });
        assert!(r.ok, "{r:?}");
        let left = hosts(eng.on_control(Request::Bans { jail: None }));
        assert_eq!(left, [("203.0.113.6".to_string(), "b".to_string())]);
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
        assert!(eng.on_control(Request::Bans { jail: None }).bans.is_empty());
    }

    #[test]
    fn manual_ban_refuses_loopback_and_ignored_addresses() {
        let dir = tempfile::tempdir().unwrap();
        let (mut eng, _rx) = two_jail_engine(dir.path());
        for a in ["127.0.0.1", "::1", "not-an-address"] {
            let r = ban(&mut eng, a, "a");
            assert!(!r.ok, "{a}: {r:?}");
        }
        assert!(eng.on_control(Request::Bans { jail: None }).bans.is_empty());
    }
}

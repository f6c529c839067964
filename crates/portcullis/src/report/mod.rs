//! Statistics for `portcullis report`: what the daemon keeps (`stats.db` in the state
//! directory, a SQLite file of its own) and the report read from it.
//!
//! The daemon's side ([`Stats`]) never delays a ban. On the engine thread it only adds each
//! counted failure to an in-memory map for the current batch of lines (per hour, jail, rule,
//! address and user name); at the end of the batch the map goes to a bounded channel without
//! waiting (a full channel drops it and counts the drop), and bans come from the daemon's
//! events ([`crate::events::subscribe`]) the same way. A thread of its own writes them to
//! `stats.db`, one transaction per message, and prunes rows older than `stats_retention`
//! (default 90 days) and past [`MAX_FAILURE_ROWS`] / [`MAX_BAN_ROWS`].
//!
//! `portcullis report` opens the file read-only (WAL: the daemon may be writing) and
//! renders [`query::Report`] as text, JSON or a self-contained HTML page ([`render`]).

pub mod query;
pub mod render;

use crate::sys::now_ms;
use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::time::Duration;

use anyhow::{Context, Result};
use portcullis_core::decision::{Failure, Millis};
use portcullis_core::jail::{HitInfo, Jail};
use rusqlite::{params, Connection};
use tracing::{error, info, warn};

use crate::events::{self, Event};

/// Default of `stats_retention`: how long failures and bans are kept.
pub const DEFAULT_RETENTION: Millis = 90 * 86_400_000;
/// Most (hour, jail, rule, address, user) rows kept; past it the oldest hours go first.
pub const MAX_FAILURE_ROWS: i64 = 2_000_000;
/// Most ban rows kept; past it the oldest go first.
pub const MAX_BAN_ROWS: i64 = 1_000_000;
/// Messages that may wait for the writer; past this they are dropped, never waited on.
pub const CHANNEL: usize = 1024;
/// Longest user name kept, in bytes (longer ones are cut, marked with `…`).
pub const USER_BYTES: usize = 64;
/// Distinct keys one batch aggregates at most (a flood of distinct addresses and user
/// names): past it the batch is sent early.
const BATCH_KEYS: usize = 50_000;
/// The file's name in the state directory.
pub const FILE: &str = "stats.db";
/// The file, for the log.
const WHAT: &str = "statistics file";

/// Messages dropped because the writer was behind.
pub static DROPPED: AtomicU64 = AtomicU64::new(0);

/// Rows waiting for the writer, at most [`MAX_QUEUED_ROWS`]: the channel bounds messages,
/// and one message holds up to [`BATCH_KEYS`] rows, so a flood of distinct addresses queued
/// gigabytes while the writer caught up (a review measured 1.2 GB).
static QUEUED_ROWS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
const MAX_QUEUED_ROWS: usize = 200_000;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS failures (
    hour  INTEGER NOT NULL, -- Unix time / 3600
    jail  TEXT NOT NULL,
    rule  TEXT NOT NULL,
    addr  TEXT NOT NULL,
    user  TEXT NOT NULL,    -- '' when the rule captures none; control characters escaped
    count INTEGER NOT NULL,
    PRIMARY KEY (hour, jail, rule, addr, user)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS bans (
    id       INTEGER PRIMARY KEY,
    time     INTEGER NOT NULL, -- Unix milliseconds
    jail     TEXT NOT NULL,
    addr     TEXT NOT NULL,
    rule     TEXT,             -- the rule of the failure that triggered it; 'manual', 'fleet'
    failures INTEGER NOT NULL,
    length   INTEGER NOT NULL, -- milliseconds
    manual   INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS bans_time ON bans (time);
-- the rule of a ban is set by (jail, addr): without it each ban scans the table
CREATE INDEX IF NOT EXISTS bans_addr ON bans (jail, addr);
";

/// One aggregated row: failures of an address (and user) under a rule in an hour.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailureRow {
    /// Unix time / 3600.
    pub hour: i64,
    /// The jail.
    pub jail: String,
    /// The rule id.
    pub rule: String,
    /// The address.
    pub addr: String,
    /// The user name tried ('' when none), control characters escaped.
    pub user: String,
    /// How many.
    pub count: u64,
}

/// One ban.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BanRow {
    /// When (Unix milliseconds).
    pub time: Millis,
    /// The jail.
    pub jail: String,
    /// The address (or prefix).
    pub addr: String,
    /// Weighted failures that led to it.
    pub failures: u32,
    /// Its length.
    pub length: Millis,
    /// `portcullis ban`.
    pub manual: bool,
    /// A ban another node of the fleet shared (no rule of this node made it).
    pub fleet: bool,
}

enum Msg {
    Failures {
        /// The bans since the last batch, written first.
        bans: Vec<BanRow>,
        rows: Vec<FailureRow>,
        /// (jail, address, rule) of the bans this batch triggered.
        ban_rules: Vec<(String, String, String)>,
    },
    Shutdown(mpsc::Sender<()>),
}

/// Key of the engine's per-batch map: hour, jail index, filter, rule, address, user.
type Key = (i64, usize, usize, usize, IpAddr, Option<Box<[u8]>>);

/// The engine's side: aggregates a batch's failures, then hands them to the writer.
pub struct Stats {
    tx: SyncSender<Msg>,
    batch: HashMap<Key, u64>,
    ban_rules: Vec<(usize, usize, usize, String)>,
    /// Bans whose rule is a name of the engine's, not a filter's (jail, target, name).
    named_rules: Vec<(String, String, &'static str)>,
    /// The bans since the last [`Stats::flush`], sent with it: one message per ban filled
    /// the writer's channel in a flood, and a third of a 30,000-ban flood's bans, and the
    /// batches queued behind them, were dropped (a review found).
    bans: std::sync::Arc<std::sync::Mutex<Vec<BanRow>>>,
}

/// Opens (creates, 0600, never through a link) the stats file read-write with its schema.
/// A file that is not a database or is damaged is moved aside (`stats.db.bad-TIME`):
/// statistics are not worth refusing to start (a full disk or a lock is not a reason: the
/// file is kept, and the error said).
pub fn open_rw(path: &Path) -> Result<Connection> {
    use crate::daemon::fsutil;
    fsutil::check_state_file(path, "statistics file")?;
    if let Some(done) = crate::store::take_rewrite(path, WHAT)? {
        error!("stats: {done}");
    }
    let open = || -> Result<Connection> {
        let c = fsutil::open_private_db(path, Duration::from_secs(5))?;
        c.execute_batch(SCHEMA)?;
        Ok(c)
    };
    match open() {
        Ok(c) => Ok(c),
        Err(e) if path.exists() && fsutil::is_corrupt_db(&e) => {
            let aside = path.with_extension(format!("db.bad-{}", now_ms() / 1000));
            error!(
                "stats: {} unusable ({e:#}); moved to {} and started empty",
                path.display(),
                aside.display()
            );
            std::fs::rename(path, &aside)?;
            for sfx in ["-wal", "-shm"] {
                let mut p = path.as_os_str().to_owned();
                p.push(sfx);
                let _ = std::fs::remove_file(p);
            }
            open()
        }
        Err(e) => Err(e),
    }
}

impl Stats {
    /// Opens `stats.db` in `state_dir`, starts the writer thread and subscribes it to the
    /// bans. `retention`: rows older than this are pruned.
    pub fn start(state_dir: &Path, retention: Millis) -> Result<Stats> {
        let path = state_dir.join(FILE);
        let conn = open_rw(&path)?;
        let place = crate::store::KeptFile::new(&path, WHAT, "no statistics lost")?;
        let (tx, rx) = mpsc::sync_channel(CHANNEL);
        std::thread::Builder::new()
            .name("stats".into())
            .spawn(move || writer(conn, place, rx, retention))?;
        let bans: std::sync::Arc<std::sync::Mutex<Vec<BanRow>>> = Default::default();
        let pending = bans.clone();
        events::subscribe(Box::new(move |e| {
            if let Event::Ban {
                addr,
                jail,
                failures,
                length,
                manual,
                reason,
                ..
            } = e
            {
                // the `deny` list is configuration, put in place at every start: not an
                // offence (each start counted its entries as new bans, a review found)
                if jail == crate::config::DENY_JAIL {
                    return;
                }
                if let Ok(mut v) = pending.lock() {
                    v.push(BanRow {
                        time: now_ms(),
                        jail: jail.clone(),
                        addr: addr.to_string(),
                        failures: *failures,
                        length: *length,
                        manual: *manual,
                        fleet: *reason == portcullis_core::decision::BanReason::Fleet,
                    });
                }
            }
        }));
        Ok(Stats {
            tx,
            batch: HashMap::new(),
            ban_rules: Vec::new(),
            named_rules: Vec::new(),
            bans,
        })
    }

    /// Counts a failure of jail `ji` (weight 0 lines are not counted).
    pub fn failure(&mut self, ji: usize, f: &Failure, hit: &HitInfo) {
        if f.weight == 0 {
            return;
        }
        let key = (
            f.time.div_euclid(3_600_000),
            ji,
            hit.filter,
            f.rule,
            f.addr,
            hit.user.as_deref().map(Box::from),
        );
        *self.batch.entry(key).or_default() += 1;
    }

    /// Notes the rule of the failure that made jail `ji` ban `target` (the tracker's key:
    /// an IPv6 offender's /64 by default, which the ban row holds; the failure's own
    /// address matched no ban row, and every IPv6 ban's rule was "unknown", a review found).
    pub fn ban_rule(
        &mut self,
        ji: usize,
        target: portcullis_core::ignore::Cidr,
        f: &Failure,
        hit: &HitInfo,
    ) {
        self.ban_rules
            .push((ji, hit.filter, f.rule, target.to_string()));
    }

    /// Notes `name` as the rule of jail `jail`'s ban of `target` when no failure made it:
    /// `reload` for a ban a reload's lower threshold made (its windows keep no rule; it was
    /// filed under `unknown`, a left-over of review 36).
    pub fn ban_named(
        &mut self,
        jail: &str,
        target: portcullis_core::ignore::Cidr,
        name: &'static str,
    ) {
        self.named_rules
            .push((jail.to_string(), target.to_string(), name));
    }

    /// Whether the batch is so large it should be sent now.
    pub fn full(&self) -> bool {
        self.batch.len() >= BATCH_KEYS
    }

    /// Sends the batch to the writer (names resolved with `jails`, as they are now).
    pub fn flush(&mut self, jails: &[Jail]) {
        let bans = self
            .bans
            .lock()
            .map(|mut v| std::mem::take(&mut *v))
            .unwrap_or_default();
        if self.batch.is_empty()
            && self.ban_rules.is_empty()
            && self.named_rules.is_empty()
            && bans.is_empty()
        {
            return;
        }
        let rule_id = |ji: usize, fi: usize, ri: usize| -> Option<(String, String)> {
            let j = jails.get(ji)?;
            let r = j.match_set().filters().get(fi)?.rules().get(ri)?;
            Some((j.name().to_string(), r.id.clone()))
        };
        let mut rows = Vec::with_capacity(self.batch.len());
        for ((hour, ji, fi, ri, addr, user), count) in self.batch.drain() {
            let Some((jail, rule)) = rule_id(ji, fi, ri) else {
                continue;
            };
            rows.push(FailureRow {
                hour,
                jail,
                rule,
                addr: addr.to_string(),
                user: user
                    .map(|u| crate::notify::escape_line(&u, USER_BYTES))
                    .unwrap_or_default(),
                count,
            });
        }
        let ban_rules = self
            .ban_rules
            .drain(..)
            .filter_map(|(ji, fi, ri, target)| rule_id(ji, fi, ri).map(|(j, r)| (j, target, r)))
            .chain(
                self.named_rules
                    .drain(..)
                    .map(|(j, target, r)| (j, target, r.to_string())),
            )
            .collect();
        send(
            &self.tx,
            Msg::Failures {
                bans,
                rows,
                ban_rules,
            },
        );
    }

    /// At daemon stop: the writer writes what it holds; waits at most `wait`.
    pub fn shutdown(self, wait: Duration) {
        let (ack_tx, ack_rx) = mpsc::channel();
        let deadline = std::time::Instant::now() + wait;
        let mut msg = Msg::Shutdown(ack_tx);
        loop {
            match self.tx.try_send(msg) {
                Ok(()) => break,
                Err(TrySendError::Full(m)) if std::time::Instant::now() < deadline => {
                    msg = m;
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(_) => return,
            }
        }
        let _ = ack_rx.recv_timeout(deadline.saturating_duration_since(std::time::Instant::now()));
    }
}

/// The rows a message holds.
fn rows_of(m: &Msg) -> usize {
    match m {
        Msg::Failures {
            bans,
            rows,
            ban_rules,
        } => bans.len() + rows.len() + ban_rules.len(),
        Msg::Shutdown(_) => 0,
    }
}

fn send(tx: &SyncSender<Msg>, m: Msg) {
    if !send_counted(tx, m, &QUEUED_ROWS, MAX_QUEUED_ROWS) {
        DROPPED.fetch_add(1, Ordering::Relaxed);
    }
}

/// Sends `m` unless the rows waiting (`queued`) would pass `max` (a ban always goes: one
/// row, and the report's ban counts must be right) or the channel is full; whether it went.
fn send_counted(
    tx: &SyncSender<Msg>,
    m: Msg,
    queued: &std::sync::atomic::AtomicUsize,
    max: usize,
) -> bool {
    let n = rows_of(&m);
    let has_bans = match &m {
        Msg::Failures { bans, .. } => !bans.is_empty(),
        Msg::Shutdown(_) => false,
    };
    if !has_bans && queued.load(Ordering::Relaxed).saturating_add(n) > max {
        return false;
    }
    queued.fetch_add(n, Ordering::Relaxed);
    if let Err(TrySendError::Full(_)) = tx.try_send(m) {
        queued.fetch_sub(n, Ordering::Relaxed);
        return false;
    }
    true
}

/// The writer thread. `place`: the file, written again in its place when it is deleted or
/// replaced while the daemon runs ([`crate::store::KeptFile::keep`]; unseen, the statistics
/// were gone at the next start), checked at most every few seconds and at a stop.
fn writer(
    mut conn: Connection,
    mut place: crate::store::KeptFile,
    rx: Receiver<Msg>,
    retention: Millis,
) {
    let mut last_prune = i64::MIN / 2;
    let mut dropped_seen = 0;
    // failure rows written since the last pruning: a flood prunes sooner than each hour
    // (9 million rows were written in 3 minutes past the cap of 2 million, a review found)
    let mut written = 0usize;
    // write failures (a full disk: one per batch of lines) are said at most once a minute,
    // with how many were not said (review 14: 33 lines in a few seconds)
    let mut failed = crate::logging::Throttled::default();
    let mut misplaced = crate::logging::Throttled::default();
    let mut keep = |conn: &mut Connection, now: bool| {
        if !place.due() && !now {
            return;
        }
        match place.keep(conn, &mut |p| Ok((open_rw(p)?, String::new()))) {
            Ok(None) => {}
            Ok(Some(done)) => error!("stats: {done}"),
            Err(e) => {
                if let Some(n) = misplaced.hit() {
                    error!("stats: {e:#} ({n} failed checks since the last said)");
                }
            }
        }
    };
    loop {
        keep(&mut conn, false);
        let now = now_ms();
        if now - last_prune >= 3_600_000 || written as i64 >= MAX_FAILURE_ROWS / 4 {
            last_prune = now;
            written = 0;
            match prune(&conn, now - retention, MAX_FAILURE_ROWS, MAX_BAN_ROWS) {
                Ok(0) => {}
                Ok(n) => info!("stats: pruned {n} rows"),
                Err(e) => error!("stats: cannot prune: {e:#}"),
            }
        }
        // failures not said yet, when they stopped within the minute (review 17)
        if let Some(n) = failed.due() {
            error!("stats: {n} more writes of {FILE} failed since the last said; the report undercounts");
        }
        let d = DROPPED.load(Ordering::Relaxed);
        if d > dropped_seen {
            warn!(
                "stats: {} batches dropped (the writer was behind); the report undercounts",
                d - dropped_seen
            );
            dropped_seen = d;
        }
        let first = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(m) => m,
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => return,
        };
        let mut msgs = vec![first];
        msgs.extend(rx.try_iter().take(CHANNEL));
        let mut ack = None;
        let ms: Vec<Msg> = msgs
            .into_iter()
            .filter_map(|m| match m {
                Msg::Shutdown(a) => {
                    ack = Some(a);
                    None
                }
                m => Some(m),
            })
            .collect();
        let n: usize = ms.iter().map(rows_of).sum();
        written += n;
        let r = write(&mut conn, &ms);
        // counted out once written and freed, not when taken: the rows being written are in
        // memory too, and counted out before, 200,000 more were queued beside them (a review
        // measured 222 MB held by the statistics in a flood)
        drop(ms);
        QUEUED_ROWS.fetch_sub(
            n.min(QUEUED_ROWS.load(Ordering::Relaxed)),
            Ordering::Relaxed,
        );
        if let Err(e) = r {
            if let Some(n) = failed.hit() {
                let more = match n {
                    1 => String::new(),
                    n => format!(" ({} more failures since the last said)", n - 1),
                };
                error!(
                    "stats: cannot write {}: {e:#}; the report undercounts{more}",
                    FILE
                );
            }
        }
        if let Some(a) = ack {
            keep(&mut conn, true);
            let _ = a.send(());
            return;
        }
    }
}

fn write(conn: &mut Connection, msgs: &[Msg]) -> Result<()> {
    let t = conn.transaction()?;
    {
        let mut fail = t.prepare_cached(
            "INSERT INTO failures (hour, jail, rule, addr, user, count) VALUES (?1,?2,?3,?4,?5,?6)
             ON CONFLICT (hour, jail, rule, addr, user) DO UPDATE SET count = count + excluded.count",
        )?;
        let mut ban = t.prepare_cached(
            "INSERT INTO bans (time, jail, addr, rule, failures, length, manual)
             VALUES (?1,?2,?3,?4,?5,?6,?7)",
        )?;
        let mut rule = t.prepare_cached(
            "UPDATE bans SET rule = ?3 WHERE id = (SELECT max(id) FROM bans
             WHERE jail = ?1 AND addr = ?2 AND rule IS NULL)",
        )?;
        for m in msgs {
            match m {
                Msg::Failures {
                    bans,
                    rows,
                    ban_rules,
                } => {
                    for b in bans {
                        ban.execute(params![
                            b.time,
                            b.jail,
                            b.addr,
                            // (the rule of a failure of this node is set by `ban_rules`)
                            if b.manual {
                                Some("manual")
                            } else if b.fleet {
                                Some("fleet")
                            } else {
                                None
                            },
                            b.failures,
                            b.length,
                            b.manual
                        ])?;
                    }
                    for r in rows {
                        fail.execute(params![
                            r.hour,
                            r.jail,
                            r.rule,
                            r.addr,
                            r.user,
                            r.count as i64
                        ])?;
                    }
                    for (j, a, r) in ban_rules {
                        rule.execute(params![j, a, r])?;
                    }
                }
                Msg::Shutdown(_) => {}
            }
        }
    }
    t.commit()?;
    Ok(())
}

/// Deletes rows older than `cutoff` (Unix ms), then the oldest past the caps. Returns how
/// many rows went.
pub fn prune(conn: &Connection, cutoff: Millis, max_failures: i64, max_bans: i64) -> Result<usize> {
    let mut n = conn.execute(
        "DELETE FROM failures WHERE hour < ?1",
        params![cutoff.div_euclid(3_600_000)],
    )?;
    n += conn.execute("DELETE FROM bans WHERE time < ?1", params![cutoff])?;
    let rows: i64 = conn.query_row("SELECT count(*) FROM failures", [], |r| r.get(0))?;
    if rows > max_failures {
        // whole hours, oldest first, before the hour of the cap's row; then, if still over
        // (one hour alone holds more than the cap: a flood), that hour's rows of the fewest
        // failures (a flood's one-shot addresses), the heaviest offenders kept. (Deleting
        // whole hours up to and with that one emptied the table, the flood's hour and the
        // real attackers' history with it, a review found.)
        n += conn.execute(
            "DELETE FROM failures WHERE hour < (SELECT hour FROM failures ORDER BY hour DESC
             LIMIT 1 OFFSET ?1)",
            params![max_failures],
        )?;
        let rows: i64 = conn.query_row("SELECT count(*) FROM failures", [], |r| r.get(0))?;
        if rows > max_failures {
            n += conn.execute(
                "DELETE FROM failures WHERE (hour, jail, rule, addr, user) IN (
                     SELECT hour, jail, rule, addr, user FROM failures
                     ORDER BY hour, count LIMIT ?1)",
                params![rows - max_failures],
            )?;
        }
    }
    let rows: i64 = conn.query_row("SELECT count(*) FROM bans", [], |r| r.get(0))?;
    if rows > max_bans {
        n += conn.execute(
            "DELETE FROM bans WHERE id <= (SELECT id FROM bans ORDER BY id DESC LIMIT 1 OFFSET ?1)",
            params![max_bans],
        )?;
    }
    Ok(n)
}

/// `portcullis report`: reads `stats.db` of the configuration's state directory and
/// writes the report for the last `since` (`7d`), one jail or all, as `format`.
pub fn run(
    config: Option<&Path>,
    since: &str,
    jail: Option<&str>,
    format: &str,
    output: Option<&Path>,
    top: usize,
) -> Result<i32> {
    let cfg = crate::config::Config::load(config)?;
    let span = portcullis_core::duration::parse(since)
        .map_err(|e| anyhow::anyhow!("--since {since:?}: {e}"))?;
    let path = cfg.state_dir.join(FILE);
    // (a state directory this user may not read is not "no statistics yet")
    if !crate::cli::offline::probe(&path)? {
        anyhow::bail!(
            "no statistics yet: {} does not exist (the daemon writes it once it runs)",
            path.display()
        );
    }
    if let Err(e) = std::fs::File::open(&path) {
        if e.kind() == std::io::ErrorKind::PermissionDenied {
            anyhow::bail!(
                "cannot read {}: permission denied (run as root?)",
                path.display()
            );
        }
    }
    let conn = query::open_ro(&path)?;
    if let Some(j) = jail.filter(|j| !cfg.jails.iter().any(|c| c.name == *j)) {
        // (a jail removed since still has its statistics)
        let known: bool = conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM failures WHERE jail = ?1)
                 OR EXISTS (SELECT 1 FROM bans WHERE jail = ?1)",
            params![j],
            |r| r.get(0),
        )?;
        if !known {
            anyhow::bail!("no jail named {j:?}, in the configuration or the statistics");
        }
    }
    let now = now_ms() / 1000 * 1000;
    let r = query::Report::build(&conn, now - span, now, jail, top)?;
    let out = match format {
        "json" => render::json(&r),
        "html" => render::html(&r),
        _ => render::text(&r),
    };
    match output {
        Some(p) => {
            std::fs::write(p, out).with_context(|| format!("cannot write {}", p.display()))?
        }
        None => {
            use std::io::Write;
            std::io::stdout().write_all(out.as_bytes())?;
        }
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(hour: i64, addr: &str, user: &str, count: u64) -> FailureRow {
        FailureRow {
            hour,
            jail: "sshd".into(),
            rule: "failed".into(),
            addr: addr.into(),
            user: user.into(),
            count,
        }
    }

    /// A message of one ban, as a flush with one ban and nothing else sends it.
    fn ban_msg(b: BanRow) -> Msg {
        Msg::Failures {
            bans: vec![b],
            rows: Vec::new(),
            ban_rules: Vec::new(),
        }
    }

    /// The engine's side: one batch of sshd lines becomes one message of rows added up per
    /// (hour, jail, rule, address, user), user names escaped, and the ban's rule.
    #[test]
    fn the_engine_side_aggregates_a_batch() {
        let text = "[[jail]]\nname = \"sshd\"\nlogs = [\"/nonexistent\"]\nmaxretry = 3\n";
        let cfg = crate::config::Config::from_texts(&[("t".into(), text.into())], vec![]).unwrap();
        let mut jails = vec![crate::jails::build_jail(&cfg, &cfg.jails[0], &[])];
        let (tx, rx) = mpsc::sync_channel(4);
        let mut st = Stats {
            tx,
            batch: HashMap::new(),
            ban_rules: Vec::new(),
            named_rules: Vec::new(),
            bans: Default::default(),
        };
        // a ban the hook noted goes with the batch
        st.bans.lock().unwrap().push(BanRow {
            time: 1,
            jail: "sshd".into(),
            addr: "198.51.100.9".into(),
            failures: 0,
            length: 1000,
            manual: true,
            fleet: false,
        });
        let ctx = portcullis_core::time::TimeContext {
            now: 1_795_000_000_000,
            local_offset: 0,
            zone: None,
        };
        let lines = [
            "Failed password for root from 203.0.113.5 port 1 ssh2",
            "Failed password for root from 203.0.113.5 port 2 ssh2",
            "Invalid user a\x1b[31mb from 203.0.113.5 port 3",
            "Failed password for root from 2001:db8::1 port 4 ssh2",
            "Connection closed by 203.0.113.5 port 5",
            // the /64 is the IPv6 offender's key: its third failure bans the /64
            "Failed password for root from 2001:db8::2 port 6 ssh2",
            "Failed password for root from 2001:db8::3 port 7 ssh2",
        ];
        for l in lines {
            let step = jails[0].process(l.as_bytes(), &ctx, Some(ctx.now), ctx.now);
            if let portcullis_core::jail::Step::Failure {
                failure,
                decision,
                hit,
            } = &step
            {
                st.failure(0, failure, hit);
                if let Some(portcullis_core::decision::Decision::Ban { addr, .. }) = decision {
                    st.ban_rule(0, *addr, failure, hit);
                }
            }
        }
        st.flush(&jails);
        st.flush(&jails); // nothing new: nothing sent
        let Ok(Msg::Failures {
            bans,
            mut rows,
            ban_rules,
        }) = rx.try_recv()
        else {
            panic!("no batch sent");
        };
        assert!(rx.try_recv().is_err(), "an empty batch was sent");
        assert_eq!(bans.len(), 1, "{bans:?}");
        rows.sort_by(|a, b| (&a.addr, &a.rule).cmp(&(&b.addr, &b.rule)));
        let got: Vec<(&str, &str, &str, u64)> = rows
            .iter()
            .map(|r| (r.addr.as_str(), r.rule.as_str(), r.user.as_str(), r.count))
            .collect();
        assert_eq!(
            got,
            [
                ("2001:db8::1", "failed", "root", 1),
                ("2001:db8::2", "failed", "root", 1),
                ("2001:db8::3", "failed", "root", 1),
                ("203.0.113.5", "failed", "root", 2),
                ("203.0.113.5", "invalid-user", "a\\x1b[31mb", 1),
            ]
        );
        assert!(rows
            .iter()
            .all(|r| r.jail == "sshd" && r.hour == ctx.now / 3_600_000));
        // each ban's rule under the ban's own target (a review found every IPv6 ban's rule
        // "unknown": it was noted under the failure's address, which no ban row holds)
        assert_eq!(
            ban_rules,
            [
                ("sshd".into(), "203.0.113.5".into(), "invalid-user".into()),
                ("sshd".into(), "2001:db8::/64".into(), "failed".into())
            ]
        );
        jails.clear();
    }

    /// A writer that is behind never makes the engine wait: the batch is dropped, counted.
    #[test]
    fn a_full_channel_drops_and_counts() {
        let (tx, _rx) = mpsc::sync_channel(1);
        tx.send(ban_msg(BanRow {
            time: 0,
            jail: "sshd".into(),
            addr: "192.0.2.1".into(),
            failures: 1,
            length: 1,
            manual: false,
            fleet: false,
        }))
        .unwrap();
        let before = DROPPED.load(Ordering::Relaxed);
        let t = std::time::Instant::now();
        send(
            &tx,
            Msg::Failures {
                bans: vec![],
                rows: vec![],
                ban_rules: vec![],
            },
        );
        // not blocked (a blocking send would never end here: the receiver is kept); the
        // bound leaves a loaded machine room (100 ms did not, review 37)
        assert!(t.elapsed() < Duration::from_secs(5));
        assert!(DROPPED.load(Ordering::Relaxed) > before);
    }

    #[test]
    fn a_corrupt_file_is_moved_aside_and_a_link_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(FILE);
        std::fs::write(&p, vec![b'x'; 8192]).unwrap();
        open_rw(&p).unwrap();
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(
            names.iter().any(|n| n.starts_with("stats.db.bad-")),
            "{names:?}"
        );
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&p).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let link = dir.path().join("link.db");
        std::os::unix::fs::symlink(&p, &link).unwrap();
        assert!(open_rw(&link).is_err());
    }

    /// `stats.db` deleted while the daemon runs: the writer writes it again from its open
    /// connection (at its next check, and at the stop), so the statistics are not lost at
    /// the next start (they were: an empty file).
    #[test]
    fn a_deleted_stats_file_is_written_again() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(FILE);
        let st = Stats::start(dir.path(), DEFAULT_RETENTION).unwrap();
        let ban = |addr: &str| BanRow {
            time: now_ms(),
            jail: "sshd".into(),
            addr: addr.into(),
            failures: 3,
            length: 1000,
            manual: false,
            fleet: false,
        };
        send(&st.tx, ban_msg(ban("203.0.113.1")));
        let written =
            || query::open_ro(&p).is_ok_and(|c| count(&c, "SELECT count(*) FROM bans") == 1);
        let t = std::time::Instant::now();
        while !written() && t.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(written(), "the first ban was not written");
        for s in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{s}", p.display()));
        }
        send(&st.tx, ban_msg(ban("203.0.113.2")));
        st.shutdown(Duration::from_secs(10));
        let c = open_rw(&p).unwrap();
        assert_eq!(count(&c, "SELECT count(*) FROM bans"), 2);
    }

    #[test]
    fn batches_add_up_and_bans_get_their_rule() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = open_rw(&dir.path().join(FILE)).unwrap();
        let ban = BanRow {
            time: 3_600_000 * 10,
            jail: "sshd".into(),
            addr: "203.0.113.5".into(),
            failures: 5,
            length: 600_000,
            manual: false,
            fleet: false,
        };
        write(
            &mut c,
            &[
                Msg::Failures {
                    bans: vec![],
                    rows: vec![row(10, "203.0.113.5", "root", 3)],
                    ban_rules: vec![],
                },
                ban_msg(ban.clone()),
                Msg::Failures {
                    bans: vec![],
                    rows: vec![
                        row(10, "203.0.113.5", "root", 2),
                        row(10, "203.0.113.5", "", 1),
                    ],
                    ban_rules: vec![("sshd".into(), "203.0.113.5".into(), "failed".into())],
                },
            ],
        )
        .unwrap();
        let n: i64 = c
            .query_row("SELECT count FROM failures WHERE user = 'root'", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(n, 5);
        let rule: String = c
            .query_row("SELECT rule FROM bans", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rule, "failed");
        // a ban another node shared has the rule "fleet", a manual one "manual" (a fleet
        // ban's was "unknown": no failure of this node sets it, review 36)
        let other = |addr: &str, manual: bool, fleet: bool| BanRow {
            addr: addr.into(),
            manual,
            fleet,
            ..ban.clone()
        };
        write(
            &mut c,
            &[Msg::Failures {
                bans: vec![
                    other("203.0.113.6", false, true),
                    other("203.0.113.7", true, false),
                ],
                rows: vec![],
                ban_rules: vec![],
            }],
        )
        .unwrap();
        let rules: Vec<(String, String)> = c
            .prepare("SELECT addr, rule FROM bans WHERE addr != '203.0.113.5' ORDER BY addr")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(
            rules,
            [
                ("203.0.113.6".to_string(), "fleet".to_string()),
                ("203.0.113.7".to_string(), "manual".to_string())
            ]
        );
    }

    /// The rows waiting for the writer are bounded, not only the messages (each may hold
    /// 50,000 rows): past the bound a batch is dropped (counted), a ban still goes.
    #[test]
    fn the_rows_waiting_for_the_writer_are_bounded() {
        let (tx, rx) = mpsc::sync_channel(CHANNEL);
        let queued = std::sync::atomic::AtomicUsize::new(0);
        let batch = |n: usize| Msg::Failures {
            bans: vec![],
            rows: (0..n)
                .map(|i| row(1, &format!("10.0.{}.{}", i / 256, i % 256), "u", 1))
                .collect(),
            ban_rules: vec![],
        };
        let ban = || {
            ban_msg(BanRow {
                time: 0,
                jail: "sshd".into(),
                addr: "192.0.2.1".into(),
                failures: 5,
                length: 1,
                manual: false,
                fleet: false,
            })
        };
        assert!(send_counted(&tx, batch(600), &queued, 1000));
        assert!(
            !send_counted(&tx, batch(600), &queued, 1000),
            "past the bound"
        );
        assert!(send_counted(&tx, batch(400), &queued, 1000));
        assert!(send_counted(&tx, ban(), &queued, 1000), "a ban always goes");
        assert_eq!(queued.load(Ordering::Relaxed), 1001);
        assert_eq!(rx.try_iter().count(), 3);
    }

    fn write_rows(c: &mut Connection, rows: Vec<FailureRow>) {
        write(
            c,
            &[Msg::Failures {
                bans: vec![],
                rows,
                ban_rules: vec![],
            }],
        )
        .unwrap();
    }

    fn count(c: &Connection, query: &str) -> i64 {
        c.query_row(query, [], |r| r.get(0)).unwrap()
    }

    #[test]
    fn prune_drops_old_rows_and_keeps_the_caps() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = open_rw(&dir.path().join(FILE)).unwrap();
        let rows: Vec<FailureRow> = (0..10)
            .map(|h| row(h, "192.0.2.1", "u", 1))
            .chain((0..10).map(|h| row(h, "192.0.2.2", "u", 1)))
            .collect();
        let bans: Vec<Msg> = (0..10)
            .map(|i| {
                ban_msg(BanRow {
                    time: i * 3_600_000,
                    jail: "sshd".into(),
                    addr: "192.0.2.1".into(),
                    failures: 5,
                    length: 1,
                    manual: false,
                    fleet: false,
                })
            })
            .collect();
        write_rows(&mut c, rows);
        write(&mut c, &bans).unwrap();
        // older than hour 2: 4 failure rows and 2 bans go
        assert_eq!(prune(&c, 2 * 3_600_000, 100, 100).unwrap(), 6);
        // caps: 16 failure rows (8 hours × 2) to at most 5 → whole hours: hours 7..9 stay (6 rows)
        prune(&c, 0, 6, 3).unwrap();
        let (n, min): (i64, i64) = c
            .query_row("SELECT count(*), min(hour) FROM failures", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap();
        assert_eq!((n, min), (6, 7));
        assert_eq!(count(&c, "SELECT count(*) FROM bans"), 3);

        // a flood: one hour holds more than the cap; its one-shot rows go, the heavy stay
        let dir = tempfile::tempdir().unwrap();
        let mut c = open_rw(&dir.path().join(FILE)).unwrap();
        let mut rows: Vec<FailureRow> = (0..10)
            .map(|i| row(40, &format!("198.51.100.{i}"), "u", 1))
            .collect();
        rows.push(row(40, "203.0.113.1", "root", 50));
        rows.push(row(40, "203.0.113.2", "root", 60));
        write_rows(&mut c, rows);
        prune(&c, 0, 5, 3).unwrap();
        assert_eq!(count(&c, "SELECT count(*) FROM failures"), 5);
        assert_eq!(
            count(&c, "SELECT count(*) FROM failures WHERE count >= 50"),
            2
        );
    }
}

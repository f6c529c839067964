//! `fleet.db` in the state directory, the fleet's own SQLite file: the outbox (entries not
//! yet in Redis), this node's active shared bans (to re-seed an emptied Redis), the fleet
//! bans applied here (their origin), the newest entry time seen per origin, address and
//! jail (replays of older entries are dropped), and the stream read position. Addresses
//! and prefixes are written as `Cidr` writes them (`192.0.2.7`, `2001:db8:5:6::/64`).

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use rusqlite::{params, Connection, OptionalExtension};

use crate::daemon::fsutil;
use portcullis_core::decision::Millis;
use portcullis_core::ignore::Cidr;

/// One connection to fleet.db (each thread opens its own).
pub struct Db {
    conn: Connection,
}

impl Db {
    /// Opens (or creates, 0600) the file.
    pub fn open(path: &Path) -> Result<Db> {
        fsutil::check_state_file(path, "fleet state")?;
        let conn = fsutil::open_private_db_with(path, Duration::from_secs(10), false)?;
        conn.execute_batch(
            "             CREATE TABLE IF NOT EXISTS outbox (
                 id INTEGER PRIMARY KEY AUTOINCREMENT,
                 entry TEXT NOT NULL
             );
             CREATE TABLE IF NOT EXISTS own_active (
                 field TEXT PRIMARY KEY,
                 until INTEGER NOT NULL,
                 entry TEXT NOT NULL
             );
             CREATE TABLE IF NOT EXISTS applied (
                 addr TEXT NOT NULL,
                 jail TEXT NOT NULL,
                 node TEXT NOT NULL,
                 until INTEGER NOT NULL,
                 PRIMARY KEY (addr, jail)
             );
             CREATE TABLE IF NOT EXISTS seen (
                 field TEXT PRIMARY KEY,
                 time INTEGER NOT NULL
             );
             CREATE TABLE IF NOT EXISTS meta (
                 k TEXT PRIMARY KEY,
                 v TEXT NOT NULL
             );
             CREATE TABLE IF NOT EXISTS stamps (
                 field TEXT PRIMARY KEY,
                 time INTEGER NOT NULL
             );",
        )
        .with_context(|| format!("{} is not a fleet state file", path.display()))?;
        Ok(Db { conn })
    }

    /// Adds entries (hash field, `Some(until)` for a ban, JSON) to the outbox in one
    /// transaction; a ban also goes to this node's active bans, an unban removes it.
    pub fn push(&mut self, entries: &[(String, Option<Millis>, String)]) -> Result<()> {
        let tx = self.conn.transaction()?;
        {
            let mut out = tx.prepare_cached("INSERT INTO outbox (entry) VALUES (?1)")?;
            let mut own = tx.prepare_cached(
                "INSERT OR REPLACE INTO own_active (field, until, entry) VALUES (?1, ?2, ?3)",
            )?;
            let mut not_own = tx.prepare_cached("DELETE FROM own_active WHERE field = ?1")?;
            let mut stamp = tx.prepare_cached(
                "INSERT INTO stamps (field, time) VALUES (?1, ?2)
                     ON CONFLICT (field) DO UPDATE SET time = max(time, excluded.time)",
            )?;
            for (field, ban_until, entry) in entries {
                out.execute(params![entry])?;
                if let Some(t) = serde_json::from_str::<serde_json::Value>(entry)
                    .ok()
                    .and_then(|v| v["time"].as_i64())
                {
                    stamp.execute(params![field, t])?;
                }
                match ban_until {
                    Some(u) => own.execute(params![field, u, entry])?,
                    None => not_own.execute(params![field])?,
                };
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// This node's shared bans that ended by `now` and may still be in Redis's current
    /// state (their removal from it is done when [`Db::forgot`] is told). Kept here, not
    /// only in memory: a ban that ends while Redis is away, or while the daemon is stopped,
    /// is removed at the next connection (a review found the hash keeping them for ever).
    pub fn ended_own(&self, now: Millis) -> Result<Vec<String>> {
        let mut st = self
            .conn
            .prepare_cached("SELECT field FROM own_active WHERE until <= ?1")?;
        let rows = st.query_map(params![now], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Whether `field` may leave Redis's current state at `now`: it is not (or no longer)
    /// one of this node's active bans, or it ends by `now` (a ban published again, with a
    /// later end, keeps its place).
    pub fn may_forget(&self, field: &str, now: Millis) -> Result<bool> {
        let until: Option<Millis> = self
            .conn
            .prepare_cached("SELECT until FROM own_active WHERE field = ?1")?
            .query_row(params![field], |r| r.get(0))
            .optional()?;
        Ok(until.is_none_or(|u| u <= now))
    }

    /// The bans `fields` left Redis's current state: those that ended by `now` are no longer
    /// this node's.
    pub fn forgot(&mut self, fields: &[String], now: Millis) -> Result<()> {
        let tx = self.conn.transaction()?;
        {
            let mut st =
                tx.prepare_cached("DELETE FROM own_active WHERE field = ?1 AND until <= ?2")?;
            for f in fields {
                st.execute(params![f, now])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// The oldest `n` outbox entries (id, JSON).
    pub fn outbox(&self, n: usize) -> Result<Vec<(i64, String)>> {
        let mut st = self
            .conn
            .prepare_cached("SELECT id, entry FROM outbox ORDER BY id LIMIT ?1")?;
        let rows = st.query_map(params![n as i64], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Entries waiting.
    pub fn outbox_len(&self) -> Result<i64> {
        Ok(self
            .conn
            .prepare_cached("SELECT count(*) FROM outbox")?
            .query_row([], |r| r.get(0))?)
    }

    /// Removes sent entries up to `id`.
    pub fn sent(&mut self, id: i64) -> Result<()> {
        self.conn
            .prepare_cached("DELETE FROM outbox WHERE id <= ?1")?
            .execute(params![id])?;
        Ok(())
    }

    /// This node's active shared bans (JSON), expired ones pruned, but for those still
    /// waiting in the outbox (they are sent from there: a re-seed must not send them twice,
    /// or other nodes count the second copy as a replay).
    pub fn own_active(&mut self, now: Millis) -> Result<Vec<String>> {
        self.conn
            .execute("DELETE FROM own_active WHERE until <= ?1", params![now])?;
        let mut st = self.conn.prepare(
            "SELECT entry FROM own_active WHERE entry NOT IN (SELECT entry FROM outbox)",
        )?;
        let rows = st.query_map([], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The time to stamp this node's entry for `field` made at `time` with: after its last
    /// entry of the field (a ban or an unban), so that the other nodes, which drop an entry no newer
    /// than the last they saw of the field as a replay, do not drop the unban or renewal
    /// of a ban stamped before the clock stepped back (NTP: the unban was dropped, and the
    /// ban held to its end everywhere else). Only the field's own entries count: a clock
    /// that was far ahead once holds back no other ban.
    pub fn stamp_after(&self, field: &str, time: Millis) -> Result<Millis> {
        // (every entry's stamp, bans' and unbans': a ban made again after an unban, the
        // clock stepped back since the first, was dropped as a replay, review 62)
        let last: Option<Millis> = self
            .conn
            .prepare_cached("SELECT time FROM stamps WHERE field = ?1")?
            .query_row(params![field], |r| r.get(0))
            .optional()?;
        Ok(match last {
            Some(t) if t >= time => t + 1,
            _ => time,
        })
    }

    /// The hash fields (node|jail|addr) of this node's active shared bans.
    pub fn own_fields(&self) -> Result<std::collections::HashSet<String>> {
        let mut st = self.conn.prepare("SELECT field FROM own_active")?;
        let rows = st.query_map([], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// A meta value.
    pub fn meta(&self, k: &str) -> Result<Option<String>> {
        Ok(self
            .conn
            .query_row("SELECT v FROM meta WHERE k = ?1", params![k], |r| r.get(0))
            .optional()?)
    }

    /// Sets a meta value.
    pub fn set_meta(&mut self, k: &str, v: &str) -> Result<()> {
        self.conn.execute(
            "INSERT OR REPLACE INTO meta (k, v) VALUES (?1, ?2)",
            params![k, v],
        )?;
        Ok(())
    }

    /// The newest entry time seen for `field` (node|jail|addr).
    pub fn seen(&self, field: &str) -> Result<Option<Millis>> {
        Ok(self
            .conn
            .prepare_cached("SELECT time FROM seen WHERE field = ?1")?
            .query_row(params![field], |r| r.get(0))
            .optional()?)
    }

    /// Records what a batch did, in one transaction: entry times seen, fleet bans applied
    /// (`Some(until)`) or lifted (`None`), and the new read position.
    pub fn record(
        &mut self,
        seen: &[(String, Millis)],
        applied: &[(Cidr, String, String, Option<Millis>)],
        pos: Option<&str>,
    ) -> Result<()> {
        let tx = self.conn.transaction()?;
        {
            let mut mark = tx.prepare_cached(
                "INSERT INTO seen (field, time) VALUES (?1, ?2)
                 ON CONFLICT (field) DO UPDATE SET time = max(time, excluded.time)",
            )?;
            for (f, t) in seen {
                mark.execute(params![f, t])?;
            }
            let mut hold = tx.prepare_cached(
                "INSERT OR REPLACE INTO applied (addr, jail, node, until) VALUES (?1, ?2, ?3, ?4)",
            )?;
            let mut lift =
                tx.prepare_cached("DELETE FROM applied WHERE addr = ?1 AND jail = ?2")?;
            for (addr, jail, node, until) in applied {
                match until {
                    Some(u) => hold.execute(params![addr.to_string(), jail, node, u])?,
                    None => lift.execute(params![addr.to_string(), jail])?,
                };
            }
            if let Some(p) = pos {
                tx.prepare_cached("INSERT OR REPLACE INTO meta (k, v) VALUES ('pos', ?1)")?
                    .execute(params![p])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// The fleet bans applied here that have not ended: (address or prefix, jail, node).
    pub fn applied(&mut self, now: Millis) -> Result<Vec<(Cidr, String, String)>> {
        self.conn
            .execute("DELETE FROM applied WHERE until <= ?1", params![now])?;
        let mut st = self.conn.prepare("SELECT addr, jail, node FROM applied")?;
        let rows = st.query_map([], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get(2)?))
        })?;
        let mut out = Vec::new();
        for r in rows {
            let (a, j, n) = r?;
            if let Ok(a) = Cidr::parse(&a) {
                out.push((a, j, n));
            }
        }
        Ok(out)
    }

    /// The fleet bans applied here that have not ended, without pruning (for the offline
    /// `bans`): (address or prefix, jail) -> (node, until).
    pub fn origins(
        &self,
        now: Millis,
    ) -> Result<std::collections::HashMap<(Cidr, String), (String, Millis)>> {
        let mut st = self
            .conn
            .prepare("SELECT addr, jail, node, until FROM applied WHERE until > ?1")?;
        let rows = st.query_map(params![now], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, Millis>(3)?,
            ))
        })?;
        let mut out = std::collections::HashMap::new();
        for r in rows {
            let (a, j, n, u) = r?;
            if let Ok(a) = Cidr::parse(&a) {
                out.insert((a, j), (n, u));
            }
        }
        Ok(out)
    }

    /// Forgets fleet bans lifted while the daemon was stopped (the offline `unban`).
    pub fn forget_applied(&mut self, lifted: &[(Cidr, String)]) -> Result<()> {
        let tx = self.conn.transaction()?;
        for (a, j) in lifted {
            tx.execute(
                "DELETE FROM applied WHERE addr = ?1 AND jail = ?2",
                params![a.to_string(), j],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Drops replay marks older than `before` (entries that old are refused anyway).
    pub fn prune_seen(&mut self, before: Millis) -> Result<()> {
        self.conn
            .execute("DELETE FROM seen WHERE time < ?1", params![before])?;
        // (our own stamps that old: an entry stamped before them is refused anyway)
        self.conn
            .execute("DELETE FROM stamps WHERE time < ?1", params![before])?;
        Ok(())
    }
}

//! `bans` and `unban` while the daemon is stopped: they work on the state file, so that a ban
//! lifted now is not put back into the firewall at the next start (a hand-made
//! `nft delete element` would be).

use std::net::IpAddr;
use std::path::Path;

use anyhow::{Context, Result};
use portcullis_core::time::rfc3339;

use crate::config::Config;
use crate::daemon::fsutil;
use crate::daemon::protocol::{BanInfo, Response};
use crate::firewall::nftables::{NftOptions, Nftables};
use crate::firewall::{Firewall, FwOp};
use crate::store::{CorruptPolicy, Store, StoreOp};

/// Whether a daemon answers at `socket`: a missing socket or a refused connection means it
/// is stopped (any other error, such as no permission, is the caller's to report).
pub fn daemon_stopped(socket: &Path) -> bool {
    match std::os::unix::net::UnixStream::connect(socket) {
        Ok(_) => false,
        Err(e) => matches!(
            e.kind(),
            std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
        ),
    }
}

/// Opens the configuration's state file, if there is one, checked as the daemon checks it.
fn open(cfg: &Config) -> Result<Option<(Store, std::fs::File)>> {
    if !cfg.state_dir.exists() {
        return Ok(None);
    }
    let dir = fsutil::prepare_state_dir(&cfg.state_dir)?;
    // a daemon that is starting (no socket yet) or listening elsewhere holds this lock: its
    // state is not ours to change
    let lock = fsutil::lock_state(&dir).context(
        "the daemon is running: use its control socket (--socket, or the configuration's `socket`)",
    )?;
    let db = dir.join("portcullis.db");
    if !db.exists() {
        return Ok(None);
    }
    Store::open(&db, CorruptPolicy::Refuse)
        .map(|store| Some((store, lock)))
        .with_context(|| format!("cannot open the state file {}", db.display()))
}

fn note(cfg: &Config) {
    eprintln!(
        "portcullis: no daemon is running; working on the state in {}",
        cfg.state_dir.display()
    );
}

/// The active bans of the state file, as the daemon would list them.
pub fn bans(cfg: &Config, jail: Option<&str>, now: i64) -> Result<Response> {
    note(cfg);
    let mut r = Response {
        ok: true,
        ..Default::default()
    };
    if let Some((store, _lock)) = open(cfg)? {
        r.bans = store
            .active_bans(now)?
            .into_iter()
            .filter(|b| jail.is_none_or(|j| j == b.jail))
            .map(|b| BanInfo {
                host: b.addr.to_string(),
                jail: b.jail,
                until: rfc3339(b.end),
                remaining_secs: (b.end - now).max(0) / 1000,
                origin: "local".into(),
            })
            .collect();
    }
    Ok(r)
}

/// Lifts bans in the state file (and, with nftables, in the kernel too).
pub fn unban(cfg: &Config, addr: Option<IpAddr>, jail: Option<&str>, now: i64) -> Result<Response> {
    note(cfg);
    let Some((mut store, _lock)) = open(cfg)? else {
        return Ok(Response::ok("no state file: nothing is banned".to_string()));
    };
    let lift: Vec<(IpAddr, String)> = store
        .active_bans(now)?
        .into_iter()
        .filter(|b| jail.is_none_or(|j| j == b.jail) && addr.is_none_or(|a| a == b.addr))
        .map(|b| (b.addr, b.jail))
        .collect();
    if lift.is_empty() {
        return Ok(Response::err("no such active ban in the state file"));
    }
    let ops: Vec<StoreOp> = lift
        .iter()
        .map(|(a, j)| StoreOp::Unban {
            addr: *a,
            jail: j.clone(),
            at: now,
        })
        .collect();
    store.apply(&ops)?;
    let mut msg = format!(
        "unbanned {} in the state file: {}",
        lift.len(),
        lift.iter()
            .map(|(a, j)| format!("{a} ({j})"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    if cfg.firewall.backend == "nftables" {
        let mut nft = Nftables::new(NftOptions {
            table: cfg.firewall.table.clone(),
            priority: cfg.firewall.priority,
            forward: cfg.firewall.forward,
            command: vec!["nft".into()],
        });
        let del: Vec<FwOp> = lift
            .iter()
            .map(|(a, j)| FwOp::Del {
                jail: j.clone(),
                addr: *a,
            })
            .collect();
        match nft.apply(&del) {
            Ok(()) => msg += "; removed from nftables",
            Err(e) => msg += &format!("; not in nftables ({e:#}): nothing to remove there"),
        }
    }
    Ok(Response::ok(msg))
}

//! `bans` and `unban` while the daemon is stopped: they work on the state file, so that a ban
//! lifted now is not put back into the firewall at the next start (a hand-made
//! `nft delete element` would be).

use portcullis_core::ignore::Cidr;
use std::path::Path;

use anyhow::{Context, Result};

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

/// Whether `path` exists: `false` when it does not, an error that says so when this user may
/// not look (a state directory is 0700, root's: "does not exist" would be false).
pub fn probe(path: &Path) -> Result<bool> {
    match std::fs::symlink_metadata(path) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            anyhow::bail!(
                "cannot read {}: permission denied (run as root?)",
                path.display()
            )
        }
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// Whether `e` comes from a refused permission.
fn permission_denied(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::PermissionDenied)
    })
}

/// Opens the configuration's state file, if there is one, checked as the daemon checks it.
fn open(cfg: &Config) -> Result<Option<(Store, std::fs::File)>> {
    if !probe(&cfg.state_dir)? || !probe(&cfg.state_dir.join("portcullis.db"))? {
        return Ok(None);
    }
    let dir = fsutil::prepare_state_dir(&cfg.state_dir)?;
    // a daemon that is starting (no socket yet) or listening elsewhere holds this lock: its
    // state is not ours to change
    let lock = match fsutil::lock_state_within(&dir, std::time::Duration::from_secs(5)) {
        Ok(l) => l,
        Err(e) if permission_denied(&e) => anyhow::bail!(
            "cannot write the lock file in {}: permission denied (run as root?)",
            dir.display()
        ),
        // (only a lock another process holds means a daemon: a lock file that cannot be
        // opened, a read-only file system say, is said as it is)
        Err(e) if fsutil::LockHeld::is(&e) => return Err(e.context(
            "the daemon is running (or starting, or another `portcullis` command has been working on its state for 5 s): use its control socket (--socket, or the configuration's `socket`)",
        )),
        Err(e) => return Err(e),
    };
    let db = dir.join("portcullis.db");
    Store::open(&db, CorruptPolicy::Refuse)
        .map(|store| Some((store, lock)))
        .with_context(|| format!("cannot open the state file {}", db.display()))
}

/// The fleet's state file (`fleet.db`) when there is one: the origins of fleet bans.
fn fleet_db(cfg: &Config) -> Result<Option<crate::fleet::db::Db>> {
    let path = cfg.state_dir.join("fleet.db");
    if !probe(&path)? {
        return Ok(None);
    }
    crate::fleet::db::Db::open(&path).map(Some)
}

/// The active bans of the state file, as the daemon would list them: a ban another node
/// shared shows its origin (`fleet:NODE`, from `fleet.db`).
pub fn bans(cfg: &Config, jail: Option<&str>, now: i64) -> Result<Response> {
    // as the daemon answers: an unknown jail is an error, not "no active bans"
    let unknown = jail
        .filter(|&j| j != crate::config::DENY_JAIL)
        .and_then(|j| crate::config::check_jail_names(cfg, &[j.to_string()]).err());
    let mut r = Response {
        ok: true,
        ..Default::default()
    };
    let Some((store, _lock)) = open(cfg)? else {
        if let Some(e) = unknown {
            return Ok(Response::err(format!("{e:#}")));
        }
        return Ok(with_deny(r, cfg, jail, now));
    };
    // the bans of a jail no longer configured are kept, not in force: said, not listed,
    // as the daemon does (review 41: listed as bans in force)
    let dormant = crate::daemon::dormant_notes(&store, cfg, now)?;
    if let Some(e) = unknown {
        let n = jail.unwrap_or_default();
        return Ok(Response::err(
            match dormant.into_iter().find(|(j, _)| j == n) {
                Some((_, note)) => note,
                None => format!("{e:#}"),
            },
        ));
    }
    for (_, note) in &dormant {
        eprintln!("portcullis: {note}");
    }
    {
        let origins = match fleet_db(cfg) {
            Ok(Some(db)) => db.origins(now)?,
            Ok(None) => Default::default(),
            Err(e) => {
                eprintln!("portcullis: the origins of fleet bans are unknown: {e:#}");
                Default::default()
            }
        };
        r.bans = store
            .active_bans(now)?
            .into_iter()
            .filter(|b| jail.is_none_or(|j| j == b.jail))
            .filter(|b| !dormant.iter().any(|(j, _)| *j == b.jail))
            .map(|b| {
                let mut i = BanInfo::new(b.addr, &b.jail, b.end, now, b.reason, b.count);
                // the fleet ban itself (same end), not a later local ban of the address
                if let Some((node, _)) = origins
                    .get(&(b.addr, b.jail.clone()))
                    .filter(|(_, until)| *until == b.end)
                {
                    i.origin = format!("fleet:{node}");
                }
                i
            })
            .collect();
    }
    Ok(with_deny(r, cfg, jail, now))
}

/// `r` with the `deny` list's bans (all jails, or `jail` `deny`): the configuration's, as
/// the daemon puts it in at start, without the entries that hold one of the host's own
/// addresses (it skips them with a warning).
fn with_deny(mut r: Response, cfg: &Config, jail: Option<&str>, now: i64) -> Response {
    if jail.is_none_or(|j| j == crate::config::DENY_JAIL) {
        use portcullis_core::decision::{BanReason, FOREVER};
        let deny = crate::config::DENY_JAIL;
        // (the entries holding an own address are cut around it, as the daemon does; when
        // they cannot be read, the entries are listed as written)
        let own = crate::daemon::addrs::own().unwrap_or_default();
        let (targets, _) = crate::daemon::deny_targets(cfg, &own);
        r.bans.extend(
            targets
                .into_iter()
                .map(|c| BanInfo::new(c, deny, FOREVER, now, BanReason::Deny, 1)),
        );
    }
    r
}

/// The open failures of `t` saved at the daemon's stop (its windows' keys inside `t`, and
/// the offender's key that holds it), in `jail` or every jail, are forgiven as the daemon's
/// `unban` forgives them: a reset at each key (`ops`), which the next start's restore of
/// the windows sees. Returns the jails with some.
fn forgive_saved(
    store: &Store,
    cfg: &Config,
    t: Cidr,
    jail: Option<&str>,
    now: i64,
    ops: &mut Vec<StoreOp>,
) -> Result<Vec<String>> {
    let mut jails = Vec::new();
    for (j, key) in store.saved_window_keys()? {
        let Some(jc) = cfg.jails.iter().find(|c| c.name == j) else {
            continue;
        };
        if jail.is_some_and(|n| n != j) {
            continue;
        }
        // (as `Tracker::forgive`: the windows inside it, and its offender's key)
        let offender = portcullis_core::track::TrackerConfig {
            v4_prefix: jc.v4_prefix,
            v6_prefix: jc.v6_prefix,
            ..Default::default()
        }
        .key(t.addr);
        if !(t.covers(&key) || (key == offender && key.len < t.len)) {
            continue;
        }
        ops.push(StoreOp::Reset {
            addr: key,
            jail: j.clone(),
            at: now,
        });
        if !jails.contains(&j) {
            jails.push(j);
        }
    }
    Ok(jails)
}

/// Lifts bans in the state file (and, with nftables, in the kernel too). As the daemon's
/// `unban`: an address inside a banned prefix lifts the prefix (per jail, the ban of `addr`
/// itself, else the widest ban that covers it), and the `deny` list is not lifted here.
pub fn unban(cfg: &Config, addr: Option<Cidr>, jail: Option<&str>, now: i64) -> Result<Response> {
    if let Some(t) = addr {
        if jail.is_none_or(|j| j == crate::config::DENY_JAIL)
            && cfg.deny.cidrs.iter().any(|d| d.covers(&t))
        {
            return Ok(Response::err(format!(
                "{t} is in the `deny` list of the configuration: remove it from there"
            )));
        }
    }
    let Some((mut store, _lock)) = open(cfg)? else {
        return Ok(Response::err(format!(
            "no state file in {}: nothing is banned",
            cfg.state_dir.display()
        )));
    };
    let active: Vec<(Cidr, String)> = store
        .active_bans(now)?
        .into_iter()
        .filter(|b| jail.is_none_or(|j| j == b.jail))
        .map(|b| (b.addr, b.jail))
        .collect();
    let lift = crate::daemon::lifted_by(addr, active);
    if lift.is_empty() {
        // banned in another jail than `--jail`'s: said, nothing forgotten, as the daemon
        // does (review 36: the offline path pardoned)
        if let (Some(t), Some(n)) = (addr, jail) {
            let mut elsewhere: Vec<String> = store
                .active_bans(now)?
                .into_iter()
                .filter(|b| b.jail != n && (b.addr == t || b.addr.covers(&t)))
                .map(|b| b.jail)
                .collect();
            elsewhere.sort();
            elsewhere.dedup();
            if !elsewhere.is_empty() {
                return Ok(Response::err(format!(
                    "{t} is not banned in jail {n} (it is in jail {}; leave out --jail to lift it everywhere)",
                    elsewhere.join(", ")
                )));
            }
        }
        // not banned, but banned before: a pardon, as the daemon's `unban` gives; its open
        // failures saved at the stop are forgiven too, as the daemon forgives them
        if let Some(t) = addr {
            let since = now - crate::daemon::HISTORY_DAYS * 86_400_000;
            let mut history = store.escalation_history(since)?;
            let (said, mut ops) = crate::daemon::pardon(&mut history, cfg, t, jail, now, true);
            let forgiven = forgive_saved(&store, cfg, t, jail, now, &mut ops)?;
            if !said.is_empty() {
                store.apply(&ops)?;
                return Ok(Response::ok(crate::daemon::pardoned(t, jail, &said)));
            }
            if !forgiven.is_empty() {
                store.apply(&ops)?;
                return Ok(Response::ok(format!(
                    "{t} is not banned; its open failures are forgotten (in jail {})",
                    forgiven.join(", ")
                )));
            }
        }
        return Ok(Response::err(match addr {
            Some(a) => format!("{a} is not banned (no such active ban in the state file)"),
            None => "nothing is banned (no active ban in the state file)".into(),
        }));
    }
    let ops: Vec<StoreOp> = lift
        .iter()
        .flat_map(|(a, j)| {
            [
                StoreOp::Unban {
                    addr: *a,
                    jail: j.clone(),
                    at: now,
                },
                StoreOp::Reset {
                    addr: *a,
                    jail: j.clone(),
                    at: now,
                },
            ]
        })
        .collect();
    // the jails where it was not banned forget its earlier bans too, as the daemon's
    // `unban` does (the lifted ones' resets recorded first, as the daemon records them, so
    // that they count none); `--all`: each address lifted. One transaction with the lift:
    // a failure between two left the bans lifted in the file and in nothing else (review 39)
    let since = now - crate::daemon::HISTORY_DAYS * 86_400_000;
    let mut history = store.escalation_history(since)?;
    for (a, j) in &lift {
        history.record_reset(*a, j, now);
    }
    let lifted: Vec<Cidr> = lift.iter().map(|(a, _)| *a).collect();
    let (forgotten, more) =
        crate::daemon::pardon_lifted(&mut history, cfg, addr, &lifted, jail, now);
    let mut ops = ops;
    ops.extend(more);
    if let Some(t) = addr {
        forgive_saved(&store, cfg, t, jail, now, &mut ops)?;
    }
    store.apply(&ops)?;
    // a lifted fleet ban is no more a fleet ban; a ban this node shared is unbanned in the
    // fleet too, from the outbox the daemon sends at its next start (the other nodes, and
    // Redis' current state, kept it to its end, a review found)
    match fleet_db(cfg) {
        Ok(Some(mut db)) => {
            db.forget_applied(&lift)?;
            if let Some(fc) = &cfg.fleet {
                let own = db.own_fields()?;
                let mut out = Vec::new();
                for (a, j) in &lift {
                    let mut e = crate::fleet::entry::Entry {
                        v: crate::fleet::entry::version(a),
                        kind: crate::fleet::entry::Kind::Unban,
                        addr: *a,
                        jail: j.clone(),
                        until: 0,
                        reason: "manual".into(),
                        failures: 0,
                        node: fc.node.clone(),
                        time: now,
                        sig: String::new(),
                    };
                    if own.contains(&e.field()) {
                        // (after the ban's entry, though the clock stepped back since)
                        e.time = db.stamp_after(&e.field(), e.time)?;
                        e.sign(&fc.key.0, &fc.stream);
                        out.push((e.field(), None, e.to_json()));
                    }
                }
                if !out.is_empty() {
                    db.push(&out)?;
                }
            }
        }
        Ok(None) => {}
        Err(e) => eprintln!("portcullis: {e:#}"),
    }
    let mut msg = format!(
        "unbanned {} in the state file: {}",
        lift.len(),
        lift.iter()
            .map(|(a, j)| format!("{a} ({j})"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    if !forgotten.is_empty() {
        msg += &format!("; earlier bans forgotten too ({forgotten})");
    }
    if cfg.firewall.backend == "nftables" {
        let mut nft = Nftables::new(NftOptions {
            table: cfg.firewall.table.clone(),
            priority: cfg.firewall.priority,
            forward: cfg.firewall.forward,
            keep_established: cfg.firewall.keep_established,
            command: vec!["nft".into()],
        });
        // only elements of sets that exist: one missing set (a jail no longer configured,
        // whose sets went at the reload; a table of an older layout until the next start)
        // failed the whole transaction, and nothing was removed (a review found)
        match nft.set_names() {
            Err(e) => {
                msg += &format!("; nftables could not be read ({e:#}): nothing removed there")
            }
            Ok(sets) => {
                let (del, missing): (Vec<FwOp>, Vec<FwOp>) = lift
                    .iter()
                    .map(|(a, j)| FwOp::Del {
                        jail: j.clone(),
                        addr: *a,
                    })
                    .partition(|op| {
                        let (FwOp::Del { jail, addr } | FwOp::Add { jail, addr, .. }) = op;
                        sets.contains(&crate::firewall::nftables::set_of(jail, *addr))
                    });
                if !del.is_empty() {
                    match nft.apply(&del) {
                        Ok(()) => msg += &format!("; {} removed from nftables", del.len()),
                        Err(e) => {
                            msg += &format!(
                                "; nft failed to remove them ({e:#}): they may still block"
                            )
                        }
                    }
                }
                if !missing.is_empty() {
                    msg += &format!(
                        "; {} not in nftables (no set of theirs there: a jail not configured, or a table the next start makes again)",
                        missing.len()
                    );
                }
            }
        }
    }
    // the other backends are not changed offline: the next start rewrites them from the
    // state file (the answer said nothing of it, and the iptables rule stayed, review 56)
    let others: Vec<String> = crate::firewall::router::used(cfg)
        .into_iter()
        .filter(|b| b != "nftables" && b != "null")
        .collect();
    if !others.is_empty() && !lift.is_empty() {
        msg += &format!(
            "; {} still hold(s) them until the daemon starts again, which rewrites it from the state file",
            others.join(", ")
        );
    }
    Ok(Response::ok(msg))
}

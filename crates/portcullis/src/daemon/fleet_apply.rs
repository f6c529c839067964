//! The engine's side of the fleet: applying other nodes' checked entries (see
//! [`crate::fleet`]). A fleet ban goes the way of a manual ban (kernel first, then tracker,
//! store and event) with the origin's `until`; the local ignore list, the host's own
//! addresses and loopback always win, and the count and rate of fleet bans are capped.

use portcullis_core::decision::Millis;

use super::{Engine, StoreOp};
use crate::events::{self, Event, UnbanReason};
use crate::firewall::FwOp;
use crate::fleet::{Entry, Kind, Outcome};
use crate::store::BanRecord;

impl Engine {
    /// Applies fleet entries in order; one outcome each.
    pub(super) fn fleet_apply(&mut self, entries: Vec<Entry>, now: Millis) -> Vec<Outcome> {
        entries
            .into_iter()
            .map(|e| match e.kind {
                Kind::Ban => self.fleet_ban(&e, now),
                Kind::Unban => self.fleet_unban(&e, now),
            })
            .collect()
    }

    fn fleet_ban(&mut self, e: &Entry, now: Millis) -> Outcome {
        let Some(shared) = self.fleet.clone() else {
            return Outcome::Nothing;
        };
        let Some(ji) = self.jails.iter().position(|j| j.name() == e.jail) else {
            return Outcome::Nothing;
        };
        let ip = e.addr.to_canonical();
        // local ignore always wins (the same checks as `portcullis ban`)
        if self.jails[ji].settings().ignore.check(ip).is_some()
            || crate::firewall::never_ban(ip)
            || self.own.contains(&ip)
        {
            return Outcome::Ignored;
        }
        let cfg = &shared.cfg;
        // the origin's end, never more than max_bantime after the entry was made
        let until = e.until.min(e.time + cfg.max_bantime);
        if until <= now {
            return Outcome::Expired;
        }
        let jail = e.jail.clone();
        let key = (ip, jail.clone());
        let held = shared
            .origins
            .lock()
            .expect("fleet origins")
            .contains_key(&key);
        if self.jails[ji].tracker().is_banned(ip) && !held {
            return Outcome::Nothing; // a local ban stands
        }
        if !held && shared.origins.lock().expect("fleet origins").len() >= cfg.max_bans {
            return Outcome::Capped;
        }
        if !shared.take_token(now) {
            return Outcome::RateLimited;
        }
        let mut ops = Vec::new();
        if held {
            ops.push(FwOp::Del {
                jail: jail.clone(),
                addr: ip,
            });
        }
        ops.push(FwOp::Add {
            jail: jail.clone(),
            addr: ip,
            timeout_ms: until - now,
        });
        if let Err(err) = self.fw.apply(&ops) {
            tracing::error!(
                "fleet: the firewall refused the ban of {ip} from {}: {err:#}",
                e.node
            );
            return Outcome::Nothing;
        }
        self.jails[ji].tracker_mut().ban(ip, now, until, e.failures);
        if let Err(err) = self.store.apply(&[StoreOp::Ban(BanRecord {
            addr: ip,
            jail: jail.clone(),
            start: now,
            end: until,
            failures: e.failures,
        })]) {
            tracing::error!("fleet: banned {ip}, but the state could not be saved: {err:#}");
        }
        // the origin is known before the event: the publisher never sends it back
        shared
            .origins
            .lock()
            .expect("fleet origins")
            .insert(key, e.node.clone());
        events::emit(&Event::Ban {
            addr: ip,
            jail,
            failures: e.failures,
            length: until - now,
            manual: false,
        });
        Outcome::Applied(until)
    }

    fn fleet_unban(&mut self, e: &Entry, now: Millis) -> Outcome {
        let Some(shared) = self.fleet.clone() else {
            return Outcome::Nothing;
        };
        let ip = e.addr.to_canonical();
        let key = (ip, e.jail.clone());
        // only the node whose ban it is lifts it
        if shared.origins.lock().expect("fleet origins").get(&key) != Some(&e.node) {
            return Outcome::Nothing;
        }
        let Some(ji) = self.jails.iter().position(|j| j.name() == e.jail) else {
            shared.origins.lock().expect("fleet origins").remove(&key);
            return Outcome::Lifted;
        };
        self.jails[ji].tracker_mut().unban(ip);
        if let Err(err) = self.fw.apply(&[FwOp::Del {
            jail: e.jail.clone(),
            addr: ip,
        }]) {
            tracing::error!("fleet: the firewall refused to lift {ip}: {err:#}");
        }
        if let Err(err) = self.store.apply(&[StoreOp::Unban {
            addr: ip,
            jail: e.jail.clone(),
            at: now,
        }]) {
            tracing::error!("fleet: lifted {ip}, but the state could not be saved: {err:#}");
        }
        // the subscriber drops the origin when it sees this event
        events::emit(&Event::Unban {
            addr: ip,
            jail: e.jail.clone(),
            reason: UnbanReason::Lifted(format!("fleet:{}", e.node)),
        });
        Outcome::Lifted
    }
}

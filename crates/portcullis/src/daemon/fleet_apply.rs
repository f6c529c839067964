//! The engine's side of the fleet: applying other nodes' checked entries (see
//! [`crate::fleet`]). A fleet ban goes the way of a manual ban (kernel, tracker, store,
//! event) with the origin's `until`; the local ignore list, the host's own addresses and
//! loopback always win, and the count and rate of fleet bans are capped. A batch of
//! entries makes one firewall change and one store transaction (a catch-up of 100,000
//! bans must not run `nft` 100,000 times); an entry for an address already touched in the
//! batch first flushes what came before, so that the events keep their order.

use portcullis_core::decision::BanReason;
use portcullis_core::ignore::Cidr;
use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::Arc;

use portcullis_core::decision::Millis;

use super::{Engine, StoreOp};
use crate::events::{self, Event, UnbanReason};
use crate::firewall::FwOp;
use crate::fleet::{Entry, Kind, Outcome, Shared};
use crate::store::BanRecord;

/// What a batch will change: firewall, store, then the events.
#[derive(Default)]
struct Pending {
    fw: Vec<FwOp>,
    store: Vec<StoreOp>,
    events: Vec<Event>,
    touched: HashSet<(IpAddr, String)>,
}

impl Engine {
    /// Applies fleet entries in order; one outcome each.
    pub(super) fn fleet_apply(&mut self, entries: Vec<Entry>, now: Millis) -> Vec<Outcome> {
        let Some(shared) = self.fleet.clone() else {
            return vec![Outcome::Nothing; entries.len()];
        };
        let mut p = Pending::default();
        let mut out = Vec::with_capacity(entries.len());
        for e in &entries {
            let key = (e.addr.to_canonical(), e.jail.clone());
            if p.touched.contains(&key) {
                self.fleet_flush(&mut p);
            }
            let o = match e.kind {
                Kind::Ban => self.fleet_ban(&shared, e, now, &mut p),
                Kind::Unban => self.fleet_unban(&shared, e, now, &mut p),
            };
            if matches!(o, Outcome::Applied(_) | Outcome::Lifted) {
                p.touched.insert(key);
            }
            out.push(o);
        }
        self.fleet_flush(&mut p);
        out
    }

    /// Kernel, store, then events (the origins are already set: the publisher never sends
    /// a fleet ban back). A refused kernel change is logged; the next start rewrites the
    /// kernel from the store, as after a failed expiry.
    fn fleet_flush(&mut self, p: &mut Pending) {
        if !p.fw.is_empty() {
            if let Err(err) = self.fw.apply(&p.fw) {
                tracing::error!(
                    "fleet: the firewall refused {} change(s): {err:#}",
                    p.fw.len()
                );
            }
        }
        if !p.store.is_empty() {
            if let Err(err) = self.store.apply(&p.store) {
                tracing::error!("fleet: the state could not be saved: {err:#}");
            }
        }
        for e in p.events.drain(..) {
            events::emit(&e);
        }
        p.fw.clear();
        p.store.clear();
        p.touched.clear();
    }

    fn fleet_ban(
        &mut self,
        shared: &Arc<Shared>,
        e: &Entry,
        now: Millis,
        p: &mut Pending,
    ) -> Outcome {
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
        let until = e.until.min(e.time.saturating_add(cfg.max_bantime));
        if until <= now {
            return Outcome::Expired;
        }
        let jail = e.jail.clone();
        let key = (ip, jail.clone());
        let mut origins = shared.origins.lock().expect("fleet origins");
        let held = origins.contains_key(&key);
        if self.jails[ji].tracker().is_banned(ip) && !held {
            return Outcome::Nothing; // a local ban stands
        }
        if !held && origins.len() >= cfg.max_bans {
            return Outcome::Capped;
        }
        if !shared.take_token(now) {
            return Outcome::RateLimited;
        }
        origins.insert(key, e.node.clone());
        drop(origins);
        // (the fleet shares single addresses: the ban is the address's host prefix)
        let target = Cidr::host(ip);
        if held {
            p.fw.push(FwOp::Del {
                jail: jail.clone(),
                addr: target,
            });
        }
        p.fw.push(FwOp::Add {
            jail: jail.clone(),
            addr: target,
            timeout_ms: until - now,
        });
        self.jails[ji]
            .tracker_mut()
            .ban(target, now, until, e.failures);
        p.store.push(StoreOp::Ban(BanRecord {
            addr: target,
            jail: jail.clone(),
            start: now,
            end: until,
            failures: e.failures,
            reason: BanReason::Failures,
            count: 1,
        }));
        p.events.push(Event::Ban {
            addr: target,
            jail,
            failures: e.failures,
            length: until - now,
            manual: false,
            reason: BanReason::Failures,
        });
        Outcome::Applied(until)
    }

    fn fleet_unban(
        &mut self,
        shared: &Arc<Shared>,
        e: &Entry,
        now: Millis,
        p: &mut Pending,
    ) -> Outcome {
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
        let target = Cidr::host(ip);
        self.jails[ji].tracker_mut().unban(target);
        p.fw.push(FwOp::Del {
            jail: e.jail.clone(),
            addr: target,
        });
        p.store.push(StoreOp::Unban {
            addr: target,
            jail: e.jail.clone(),
            at: now,
        });
        // the subscriber drops the origin when it sees this event
        p.events.push(Event::Unban {
            addr: target,
            jail: e.jail.clone(),
            reason: UnbanReason::Lifted(format!("fleet:{}", e.node)),
        });
        Outcome::Lifted
    }
}

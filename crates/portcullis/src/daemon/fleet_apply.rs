//! The engine's side of the fleet: applying other nodes' checked entries (see
//! [`crate::fleet`]). A fleet ban goes the way of a manual ban (kernel, tracker, store,
//! event) with the origin's `until`; the local ignore list, the host's own addresses and
//! loopback always win, and the count and rate of fleet bans are capped.
//!
//! An entry is an address or a prefix (see [`crate::fleet::entry`]). A prefix is refused
//! whole when it holds any address the local ignore lists, own addresses or loopback cover,
//! or overlaps an ignored prefix in any way (the check of a manual `portcullis ban` of a
//! prefix). A ban already in force that covers it (a local one, or a wider one) stands; a
//! fleet prefix replaces the narrower fleet bans inside it, as a manual prefix ban does
//! (interval sets refuse overlapping elements): their kernel elements go first, in a
//! firewall change of their own, and their store rows are closed. A prefix that holds a
//! local ban is not applied: the local ban stands to its own end (else the origin's
//! unban, the prefix's earlier end or a distrust would lift it early). A batch of
//! entries makes one firewall change and one store transaction (a catch-up of 100,000
//! bans must not run `nft` 100,000 times); an entry for an address already touched in the
//! batch first flushes what came before, so that the events keep their order.

use portcullis_core::decision::BanReason;
use portcullis_core::ignore::Cidr;
use std::collections::HashSet;
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
    /// Deletions of narrower elements, applied before `fw` (nft checks overlaps against
    /// the set as it is before a transaction).
    fw_first: Vec<FwOp>,
    fw: Vec<FwOp>,
    store: Vec<StoreOp>,
    events: Vec<Event>,
    touched: HashSet<(Cidr, String)>,
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
            let key = (e.addr, e.jail.clone());
            if p.touched.contains(&key) {
                self.fleet_flush(&mut p);
            }
            let o = match e.kind {
                Kind::Ban => self.fleet_ban(&shared, e, now, &mut p),
                Kind::Unban => self.fleet_unban(&shared, e, now, &mut p),
            };
            if matches!(
                o,
                Outcome::Applied(_) | Outcome::Lifted | Outcome::Reended { .. }
            ) {
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
        if !p.fw_first.is_empty() {
            if let Err(err) = self.fw.apply(&p.fw_first) {
                tracing::error!(
                    "fleet: the firewall refused {} change(s): {err:#}",
                    p.fw_first.len()
                );
            }
        }
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
        p.fw_first.clear();
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
        let target = e.addr;
        // local ignore always wins (the same checks as `portcullis ban`): for a prefix, any
        // overlap with an ignored prefix, and any own or loopback address inside it
        if self.jails[ji]
            .settings()
            .ignore
            .check_prefix(target)
            .is_some()
            || crate::firewall::never_ban_prefix(target)
            // (the origin's link-local neighbour is not on this node's links)
            || portcullis_core::addr::is_link_local(target.addr)
            || self.own.iter().any(|&o| target.contains(o))
            || shared
                .endpoint
                .lock()
                .expect("fleet endpoint")
                .iter()
                .any(|&a| target.contains(a))
        {
            return Outcome::Ignored;
        }
        let cfg = shared.live();
        // checked by the reader too, but a reload may have distrusted the node since (its
        // held bans were lifted then: none may come back after)
        if cfg.distrust.contains(&e.node) {
            return Outcome::Nothing;
        }
        if !cfg.narrow_enough(&target) {
            return Outcome::TooWide; // (the reader refuses these already)
        }
        // the origin's end, never more than max_bantime after the entry was made
        let until = e.until.min(e.time.saturating_add(cfg.max_bantime));
        if until <= now {
            return Outcome::Expired;
        }
        let jail = e.jail.clone();
        let key = (target, jail.clone());
        let mut origins = shared.origins.lock().expect("fleet origins");
        // a fleet ban held here whose origin this node lost (fleet.db behind the state file:
        // a `kill -9` between the two, a write fleet.db refused, the file deleted): the
        // entry of it, read again, gives it back its origin (it was taken for a local ban
        // and never lifted by its origin nor by a `distrust`, review 54)
        let adopted = !origins.contains_key(&key) && self.orphan(ji, &jail, target);
        if adopted {
            origins.insert(key.clone(), e.node.clone());
        }
        let held = origins.contains_key(&key);
        let mut until = until;
        // (the node that takes it back may be another holder than its origin: it never
        // shortens it, review 57)
        if adopted {
            if let Some(cur) = self.jails[ji].tracker().ban_until_of(target) {
                until = until.max(cur);
            }
        }
        let mut keep_origin = false;
        match self.jails[ji].tracker().covering_ban(target) {
            // another node bans it too: its end is kept beside the origin's, and the ban
            // runs to the later of them (the origin stays the origin)
            Some(c) if c == target && held && origins.get(&key) != Some(&e.node) => {
                let cur = self.jails[ji].tracker().ban_until_of(target).unwrap_or(now);
                let mut co = shared.co.lock().expect("fleet co-holders");
                let m = co.entry(key.clone()).or_default();
                m.retain(|_, u| *u > now);
                // (the origin's own end too, so that the others' unbans give it back)
                if let Some(o) = origins.get(&key) {
                    m.entry(o.clone()).or_insert(cur);
                }
                m.insert(e.node.clone(), until);
                if until <= cur {
                    return Outcome::Nothing;
                }
                keep_origin = true;
            }
            // ours to renew
            Some(c) if c == target && held => {
                // (the origin's renewal never ends it before another holder's end)
                if let Some(m) = shared.co.lock().expect("fleet co-holders").get_mut(&key) {
                    m.retain(|_, u| *u > now);
                    until = m.values().copied().fold(until, Millis::max);
                }
            }
            // a local ban of it, or a wider ban (local or fleet), stands
            Some(_) => return Outcome::Nothing,
            None => {}
        }
        // a local ban inside a fleet prefix stands, and so the prefix is not applied: it
        // would replace the local ban (interval sets refuse overlaps), and its origin's
        // unban, its end or a distrust would then lift the local ban before its own end
        if !target.is_host()
            && self.jails[ji]
                .tracker()
                .covered(target)
                .any(|c| !origins.contains_key(&(c, jail.clone())))
        {
            return Outcome::Nothing;
        }
        if !held && origins.len() >= cfg.max_bans {
            return Outcome::Capped;
        }
        if !shared.take_token(&e.node, now) {
            return Outcome::RateLimited;
        }
        if !keep_origin {
            origins.insert(key, e.node.clone());
        }
        // the narrower fleet bans inside a prefix give way to it (and are forgotten)
        let covered = if target.is_host() {
            Vec::new()
        } else {
            self.jails[ji].tracker_mut().take_covered(target)
        };
        for c in &covered {
            origins.remove(&(*c, jail.clone()));
        }
        drop(origins);
        if !covered.is_empty() {
            // the kernel elements of earlier entries of this batch must exist before
            // their deletion below
            self.fleet_flush(p);
            for &c in &covered {
                self.meta.remove(&(jail.clone(), c));
                p.fw_first.push(FwOp::Del {
                    jail: jail.clone(),
                    addr: c,
                });
                p.store.push(StoreOp::Unban {
                    addr: c,
                    jail: jail.clone(),
                    at: now,
                });
            }
            tracing::info!(
                jail = jail.as_str(),
                "fleet: {target} from {} replaces {} narrower ban(s) inside it",
                e.node,
                covered.len()
            );
        }
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
        let record = BanRecord {
            addr: target,
            jail: jail.clone(),
            start: now,
            end: until,
            failures: e.failures,
            reason: BanReason::Fleet,
            count: 1,
        };
        // no offence here, applied or renewed: its origin counts it (`StoreOp::Held`)
        p.store.push(StoreOp::Held(record));
        self.meta
            .insert((jail.clone(), target), (BanReason::Fleet, 1));
        if held {
            // a new end of the ban held here is no new ban: no `ban` line (the recidive
            // filter, the report and the metrics counted each renewal as one, review 35)
            tracing::info!(
                jail = jail.as_str(),
                "fleet: {target} held to {} more ({})",
                portcullis_core::duration::format(until - now),
                e.node
            );
        } else {
            p.events.push(Event::Ban {
                addr: target,
                jail,
                failures: e.failures,
                length: until - now,
                manual: false,
                reason: BanReason::Fleet,
            });
        }
        Outcome::Applied(until)
    }

    fn fleet_unban(
        &mut self,
        shared: &Arc<Shared>,
        e: &Entry,
        now: Millis,
        p: &mut Pending,
    ) -> Outcome {
        let key = (e.addr, e.jail.clone());
        // a manual ban of the address since is the admin's: no fleet entry changes it (a
        // co-holder's unban gave it another holder's end, review 39)
        if matches!(
            self.meta.get(&(e.jail.clone(), e.addr)),
            Some((BanReason::Manual, _))
        ) {
            shared.co.lock().expect("fleet co-holders").remove(&key);
            return Outcome::Nothing;
        }
        // a fleet ban whose origin this node lost (see `fleet_ban`): the first unban of it
        // from a trusted node lifts it (the origin cannot be told from a co-holder then)
        if let Some(ji) = self.jails.iter().position(|j| j.name() == e.jail) {
            let mut origins = shared.origins.lock().expect("fleet origins");
            if !origins.contains_key(&key) && self.orphan(ji, &e.jail, e.addr) {
                origins.insert(key.clone(), e.node.clone());
            }
        }
        // only the node whose ban it is lifts it; another that banned it too no longer does
        if shared.origins.lock().expect("fleet origins").get(&key) != Some(&e.node) {
            // its part goes: the ban runs to the latest end of the others (the origin's
            // included), which may be sooner than the one it had
            let left = {
                let mut co = shared.co.lock().expect("fleet co-holders");
                let Some(m) = co.get_mut(&key) else {
                    return Outcome::Nothing;
                };
                if m.remove(&e.node).is_none() {
                    return Outcome::Nothing;
                }
                m.values().copied().max()
            };
            let ji = self.jails.iter().position(|j| j.name() == e.jail);
            let Some(ji) = ji else {
                return Outcome::Nothing;
            };
            let Some(cur) = self.jails[ji].tracker().ban_until_of(e.addr) else {
                return Outcome::Nothing;
            };
            match left {
                Some(u) if u <= now => {
                    return self.fleet_lift(shared, e, format!("fleet:{}", e.node), now, p)
                }
                Some(u) if u < cur => {
                    self.fleet_reend(ji, e, u, now, p);
                    let origin = shared
                        .origins
                        .lock()
                        .expect("fleet origins")
                        .get(&key)
                        .cloned();
                    if let Some(node) = origin {
                        return Outcome::Reended { node, until: u };
                    }
                }
                _ => {}
            }
            return Outcome::Nothing;
        }
        // the origin's own prefix ban replaced its ban of the address (its `v4_prefix`,
        // `v6_prefix` or `subnet_ban`): not a pardon. The prefix follows in the stream and
        // replaces the ban here too; a node that refuses the prefix (too wide, an ignored or
        // locally banned address inside, the caps) keeps the address banned to its end
        if e.reason == "subnet-ban" {
            return Outcome::Nothing;
        }
        // another node bans it too: it goes on, as that node's, to that node's end
        let next = {
            let mut co = shared.co.lock().expect("fleet co-holders");
            let next = co.get_mut(&key).and_then(|m| {
                m.remove(&e.node);
                m.retain(|_, u| *u > now);
                let (n, u) = m
                    .iter()
                    .max_by_key(|(_, u)| **u)
                    .map(|(n, u)| (n.clone(), *u))?;
                m.remove(&n);
                Some((n, u))
            });
            if co.get(&key).is_some_and(|m| m.is_empty()) {
                co.remove(&key);
            }
            next
        };
        if let Some((node, until)) = next {
            if let Some(ji) = self
                .jails
                .iter()
                .position(|j| j.name() == e.jail)
                .filter(|&i| self.jails[i].tracker().ban_until_of(e.addr).is_some())
            {
                shared
                    .origins
                    .lock()
                    .expect("fleet origins")
                    .insert(key, node.clone());
                self.fleet_reend(ji, e, until, now, p);
                tracing::info!(
                    jail = e.jail.as_str(),
                    "fleet: {} lifted by {}, held on as {node}'s ban to its end",
                    e.addr,
                    e.node
                );
                return Outcome::Reended { node, until };
            }
        }
        self.fleet_lift(shared, e, format!("fleet:{}", e.node), now, p)
    }

    /// Whether jail `ji` bans exactly `target` with a fleet ban (its reason in the state
    /// file), which the caller found no origin for.
    fn orphan(&self, ji: usize, jail: &str, target: Cidr) -> bool {
        self.jails[ji].tracker().ban_until_of(target).is_some()
            && matches!(
                self.meta.get(&(jail.to_string(), target)),
                Some((BanReason::Fleet, _))
            )
    }

    /// Gives the fleet ban of `e.addr` in jail `ji` the end `until` (another holder's), in
    /// the kernel, the tracker and the store.
    fn fleet_reend(&mut self, ji: usize, e: &Entry, until: Millis, now: Millis, p: &mut Pending) {
        self.fleet_flush(p);
        p.fw.push(FwOp::Del {
            jail: e.jail.clone(),
            addr: e.addr,
        });
        p.fw.push(FwOp::Add {
            jail: e.jail.clone(),
            addr: e.addr,
            timeout_ms: until - now,
        });
        self.jails[ji].tracker_mut().ban(e.addr, now, until, 0);
        p.store.push(StoreOp::Held(BanRecord {
            addr: e.addr,
            jail: e.jail.clone(),
            start: now,
            end: until,
            failures: 0,
            reason: BanReason::Fleet,
            count: 1,
        }));
    }

    /// Lifts the fleet ban of `e.addr` in `e.jail` (the caller checked it is one).
    fn fleet_lift(
        &mut self,
        shared: &Arc<Shared>,
        e: &Entry,
        reason: String,
        now: Millis,
        p: &mut Pending,
    ) -> Outcome {
        let target = e.addr;
        let key = (target, e.jail.clone());
        shared.co.lock().expect("fleet co-holders").remove(&key);
        let ji = self.jails.iter().position(|j| j.name() == e.jail);
        // exactly the fleet ban: never a wider (local) ban that covers it
        let Some(ji) = ji.filter(|&i| self.jails[i].tracker().ban_until_of(target).is_some())
        else {
            shared.origins.lock().expect("fleet origins").remove(&key);
            return Outcome::Lifted;
        };
        // a manual ban of the address since (the admin's, also after a restart, when
        // fleet.db still names the node) is no more the fleet's to lift
        if matches!(
            self.meta.get(&(e.jail.clone(), target)),
            Some((BanReason::Manual, _))
        ) {
            shared.origins.lock().expect("fleet origins").remove(&key);
            return Outcome::Nothing;
        }
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
            reason: UnbanReason::Lifted(reason),
        });
        Outcome::Lifted
    }

    /// After a reload: the new `[fleet]` settings of what is shared and accepted take
    /// effect (the others wait for a restart, with a warning), and the fleet bans of nodes
    /// now in `distrust` are lifted (reason `distrust:NODE`). Fleet bans already held stay
    /// when `accept`, `max_bans` or `min_prefix_v4/v6` change: they run to their end.
    pub(super) fn fleet_reload(&mut self, now: Millis) {
        let Some(shared) = self.fleet.clone() else {
            if self.cfg.fleet.is_some() {
                tracing::warn!("[fleet] was added: the fleet starts at the next restart");
            }
            return;
        };
        let Some(new) = self.cfg.fleet.clone() else {
            tracing::warn!(
                "[fleet] was removed: the fleet runs on with its settings until the next restart"
            );
            return;
        };
        for w in shared.reconfigure(new) {
            tracing::warn!("{w}");
        }
        let live = shared.live();
        // a distrusted node's part of a ban another node holds goes with it (it is not
        // handed back later)
        for m in shared.co.lock().expect("fleet co-holders").values_mut() {
            m.retain(|n, _| !live.distrust.contains(n));
        }
        let mut gone: Vec<Entry> = shared
            .origins
            .lock()
            .expect("fleet origins")
            .iter()
            .filter(|(_, n)| live.distrust.contains(n))
            .map(|((addr, jail), node)| Entry {
                v: crate::fleet::entry::version(addr),
                kind: Kind::Unban,
                addr: *addr,
                jail: jail.clone(),
                until: 0,
                reason: "distrust".into(),
                failures: 0,
                node: node.clone(),
                time: now,
                sig: String::new(),
            })
            .collect();
        if gone.is_empty() {
            return;
        }
        gone.sort_by(|a, b| (&a.jail, a.addr).cmp(&(&b.jail, b.addr)));
        let mut p = Pending::default();
        for e in &gone {
            self.fleet_lift(&shared, e, format!("distrust:{}", e.node), now, &mut p);
        }
        self.fleet_flush(&mut p);
        tracing::info!("fleet: {} ban(s) of distrusted node(s) lifted", gone.len());
    }
}

//! Builds the backends a configuration names, and routes each jail's ops to its backends
//! when jails use different ones (`[[jail]] backend = ["nftables", "hosts-deny"]`).

use std::time::Duration;

use anyhow::{bail, Context, Result};

use super::command::{CommandBackend, CommandOptions};
use super::hosts_deny::{HostsDeny, HostsDenyOptions};
use super::ipset::Ipset;
use super::iptables::{IptOptions, Iptables};
use super::nftables::{NftOptions, Nftables};
use super::null::Null;
use super::route::{Route, RouteOptions};
use super::settings::{self, BackendsConfig};
use super::{Firewall, FwOp, JailRules};
use crate::config::Config;
use portcullis_core::ignore::Cidr;

/// One backend by name.
pub fn backend(name: &str, cfg: &Config) -> Result<Box<dyn Firewall>> {
    let fw = &cfg.firewall;
    let b: &BackendsConfig = &fw.backends;
    let ipt = || IptOptions {
        chain: b.iptables.chain.clone(),
        hooks: b.iptables.hooks.clone(),
        variant: b.iptables.variant.clone(),
        prefix: Vec::new(),
        keep_established: fw.keep_established,
    };
    Ok(match name {
        "null" => Box::new(Null::default()),
        "nftables" => Box::new(Nftables::new(NftOptions {
            table: fw.table.clone(),
            priority: fw.priority,
            forward: fw.forward,
            keep_established: fw.keep_established,
            command: vec!["nft".into()],
        })),
        "iptables" => Box::new(Iptables::new(ipt())),
        "ipset" => Box::new(Ipset::new(ipt())),
        "route" => Box::new(Route::new(RouteOptions {
            kind: b.route.kind.clone(),
            proto: b.route.proto,
            prefix: Vec::new(),
        })),
        "hosts-deny" => Box::new(HostsDeny::new(HostsDenyOptions {
            path: b.hosts_deny.path.clone(),
            daemons: b.hosts_deny.daemons.clone(),
        })),
        "command" => {
            let c = &b.command;
            Box::new(CommandBackend::new(CommandOptions {
                ban: c
                    .ban
                    .clone()
                    .context("backend \"command\" needs [firewall.command] ban = [...]")?,
                unban: c.unban.clone(),
                check: c.check.clone(),
                timeout: Duration::from_millis(c.timeout_ms as u64),
                retries: c.retries,
                backoff: Duration::from_millis(200),
            }))
        }
        other => bail!("unknown firewall backend {other:?}"),
    })
}

/// The backends `cfg` uses: the `[firewall] backend` and every jail's own.
pub fn used(cfg: &Config) -> Vec<String> {
    settings::used_backends(
        &cfg.firewall.backend,
        cfg.jails.iter().map(|j| j.backends.as_slice()),
    )
}

/// What `cfg` needs before its firewall can run (programs, templates, a writable
/// hosts.deny directory, a backend that can rate-limit); `check-config` and the start say so.
pub fn preflight(cfg: &Config) -> Result<()> {
    let names = used(cfg);
    if names.iter().any(|n| n == "iptables") && names.iter().any(|n| n == "ipset") {
        bail!(
            "backends \"iptables\" and \"ipset\" cannot both be used: both keep their rules in the chain {} ([firewall.iptables] chain) and each rewrites it whole, dropping the other's; use \"ipset\" for every such jail (iptables rules over sets)",
            cfg.firewall.backends.iptables.chain
        );
    }
    settings::preflight(&names, &cfg.firewall.backends)?;
    if !cfg.ratelimits.is_empty()
        && !["nftables", "iptables", "ipset", "null"].contains(&cfg.firewall.backend.as_str())
    {
        bail!(
            "[[ratelimit]] needs [firewall] backend = \"nftables\", \"iptables\" or \"ipset\" (not {:?}): the limits are kernel rules",
            cfg.firewall.backend
        );
    }
    Ok(())
}

/// The firewall of a configuration: its one backend, or a [`Router`] over several.
pub fn build(cfg: &Config) -> Result<Box<dyn Firewall>> {
    preflight(cfg)?;
    let names = used(cfg);
    if names.len() == 1 {
        return backend(&names[0], cfg);
    }
    let mut backends = Vec::new();
    for n in names {
        let b = backend(&n, cfg)?;
        backends.push((n, b));
    }
    Ok(Box::new(Router {
        default: cfg.firewall.backend.clone(),
        backends,
        map: Vec::new(),
    }))
}

/// Several backends, each jail's ops going to the backends it names.
pub struct Router {
    default: String,
    backends: Vec<(String, Box<dyn Firewall>)>,
    /// jail -> indexes into `backends` (from the last setup).
    map: Vec<(String, Vec<usize>)>,
}

impl Router {
    fn split(&self, ops: &[FwOp]) -> Result<Vec<Vec<FwOp>>> {
        let mut per: Vec<Vec<FwOp>> = vec![Vec::new(); self.backends.len()];
        for op in ops {
            let (FwOp::Add { jail, addr, .. } | FwOp::Del { jail, addr }) = op;
            let Some((_, idx)) = self.map.iter().find(|(j, _)| j == jail) else {
                bail!("cannot ban or unban {addr}: jail {jail:?} is not set up");
            };
            for &i in idx {
                per[i].push(op.clone());
            }
        }
        Ok(per)
    }

    fn each(&mut self, ops: &[FwOp], restore: bool) -> Result<()> {
        let per = self.split(ops)?;
        let mut first_err = None;
        for ((name, b), ops) in self.backends.iter_mut().zip(per) {
            if ops.is_empty() && !restore {
                continue;
            }
            let r = if restore {
                b.restore(&ops)
            } else {
                b.apply(&ops)
            };
            if let Err(e) = r {
                // one backend failing does not keep the others from blocking
                tracing::error!("firewall backend {name}: {e:#}");
                first_err.get_or_insert(e.context(format!("backend {name}")));
            }
        }
        first_err.map_or(Ok(()), Err)
    }
}

impl Firewall for Router {
    fn setup(&mut self, jails: &[JailRules]) -> Result<()> {
        let mut map = Vec::new();
        for j in jails {
            let names: Vec<&str> = if j.backends.is_empty() {
                vec![self.default.as_str()]
            } else {
                j.backends.iter().map(String::as_str).collect()
            };
            let mut idx = Vec::new();
            for n in names {
                match self.backends.iter().position(|(b, _)| b == n) {
                    Some(i) => idx.push(i),
                    None => bail!("jail {}: backend {n:?} was not running at start; restart the daemon to use it", j.name),
                }
            }
            map.push((j.name.clone(), idx));
        }
        for (i, (name, b)) in self.backends.iter_mut().enumerate() {
            let mine: Vec<JailRules> = jails
                .iter()
                .zip(&map)
                .filter(|(_, (_, idx))| idx.contains(&i))
                .map(|(j, _)| j.clone())
                .collect();
            b.setup(&mine)
                .with_context(|| format!("firewall backend {name}"))?;
        }
        self.map = map;
        Ok(())
    }

    fn apply(&mut self, ops: &[FwOp]) -> Result<()> {
        self.each(ops, false)
    }

    fn apply_each(&mut self, ops: &[FwOp]) -> Result<Vec<FwOp>> {
        let per = self.split(ops)?;
        let mut refused = Vec::new();
        let mut first_err = None;
        for ((name, b), ops) in self.backends.iter_mut().zip(per) {
            if ops.is_empty() {
                continue;
            }
            match b.apply_each(&ops) {
                Ok(r) => refused.extend(r),
                Err(e) => {
                    tracing::error!("firewall backend {name}: {e:#}");
                    first_err.get_or_insert(e.context(format!("backend {name}")));
                }
            }
        }
        first_err.map_or(Ok(refused), Err)
    }

    fn restore(&mut self, ops: &[FwOp]) -> Result<()> {
        self.each(ops, true)
    }

    fn restore_expiring(&mut self, ops: &[FwOp]) -> Result<()> {
        let per = self.split(ops)?;
        let mut first_err = None;
        for ((name, b), ops) in self.backends.iter_mut().zip(per) {
            if ops.is_empty() || !b.expires_itself() {
                continue;
            }
            if let Err(e) = b.restore(&ops) {
                tracing::error!("firewall backend {name}: {e:#}");
                first_err.get_or_insert(e.context(format!("backend {name}")));
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    fn set_ratelimits(&mut self, rl: &super::ratelimit::RateLimits) -> Result<()> {
        // the `[firewall] backend` holds them; the others get none
        for (name, b) in &mut self.backends {
            if *name == self.default {
                b.set_ratelimits(rl)?;
            } else {
                b.set_ratelimits(&Default::default())?;
            }
        }
        Ok(())
    }

    fn expires_itself(&self) -> bool {
        self.backends.iter().all(|(_, b)| b.expires_itself())
    }

    fn intact(&mut self) -> Result<bool> {
        for (_, b) in &mut self.backends {
            if !b.intact()? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    fn report(&mut self) -> Vec<String> {
        self.backends
            .iter_mut()
            .flat_map(|(_, b)| b.report())
            .collect()
    }

    #[cfg(test)]
    fn list(&mut self) -> Result<Vec<(String, std::net::IpAddr, Option<i64>)>> {
        let mut v = Vec::new();
        for (_, b) in &mut self.backends {
            v.extend(b.list()?);
        }
        Ok(v)
    }

    fn kernel_bans(&mut self) -> Result<Vec<(String, Cidr, Option<i64>)>> {
        let mut v = Vec::new();
        for (_, b) in &mut self.backends {
            for x in b.kernel_bans()? {
                if !v.contains(&x) {
                    v.push(x);
                }
            }
        }
        Ok(v)
    }

    fn teardown(&mut self) -> Result<()> {
        for (name, b) in &mut self.backends {
            b.teardown()
                .with_context(|| format!("firewall backend {name}"))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::firewall::{Action, Proto};

    #[test]
    fn jails_reach_their_backends_only() {
        let mut r = Router {
            default: "a".into(),
            backends: vec![
                ("a".into(), Box::new(Null::default())),
                ("b".into(), Box::new(Null::default())),
            ],
            map: Vec::new(),
        };
        let j = |name: &str, backends: &[&str]| JailRules {
            name: name.into(),
            ports: None,
            proto: Proto::Tcp,
            action: Action::Drop,
            backends: backends.iter().map(|s| s.to_string()).collect(),
        };
        r.setup(&[j("one", &[]), j("two", &["a", "b"]), j("three", &["b"])])
            .unwrap();
        let add = |jail: &str| FwOp::Add {
            jail: jail.into(),
            addr: crate::firewall::cidr("192.0.2.1"),
            timeout_ms: 1000,
        };
        r.apply(&[add("one"), add("two"), add("three")]).unwrap();
        let mut listed: Vec<String> = r.list().unwrap().into_iter().map(|(j, _, _)| j).collect();
        listed.sort();
        assert_eq!(listed, ["one", "three", "two", "two"]);
        assert!(r.apply(&[add("four")]).is_err());
        assert!(r.setup(&[j("x", &["c"])]).is_err());
    }
}

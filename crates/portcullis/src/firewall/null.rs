//! A backend that touches nothing and records what it was asked to do: for tests and dry runs.

use std::collections::VecDeque;

use anyhow::Result;

use super::{Firewall, FwOp, JailRules};

/// How many operations [`Null`] keeps: a dry-run daemon runs for months, so the log is a
/// window of the latest operations, not a history.
pub const LOG_CAP: usize = 10_000;

/// Records the last [`LOG_CAP`] ops in `log`, oldest first. [`Firewall::list`] replays the
/// log (timeouts as given, never counting down); [`Firewall::teardown`] clears it, as deleting
/// the real table would.
#[derive(Debug)]
pub struct Null {
    pub log: VecDeque<FwOp>,
    cap: usize,
}

impl Default for Null {
    fn default() -> Self {
        Null::with_cap(LOG_CAP)
    }
}

impl Null {
    /// A backend that keeps the last `cap` operations (at least one).
    pub fn with_cap(cap: usize) -> Self {
        let cap = cap.max(1);
        Null {
            log: VecDeque::with_capacity(cap.min(1024)),
            cap,
        }
    }
}

impl Firewall for Null {
    fn setup(&mut self, jails: &[JailRules]) -> Result<()> {
        jails.iter().try_for_each(JailRules::check)
    }

    /// A dry run's rate limits are taken and not put anywhere (`check-config` warns).
    fn set_ratelimits(&mut self, _rl: &super::ratelimit::RateLimits) -> Result<()> {
        Ok(())
    }

    fn apply(&mut self, ops: &[FwOp]) -> Result<()> {
        // only the tail of a batch larger than the whole log can be kept
        let ops = &ops[ops.len().saturating_sub(self.cap)..];
        let overflow = (self.log.len() + ops.len()).saturating_sub(self.cap);
        self.log.drain(..overflow);
        self.log.extend(ops.iter().cloned());
        Ok(())
    }

    #[cfg(test)]
    fn list(&mut self) -> Result<Vec<(String, std::net::IpAddr, Option<i64>)>> {
        let mut banned = std::collections::BTreeMap::new();
        for op in &self.log {
            match op {
                FwOp::Add {
                    jail,
                    addr,
                    timeout_ms,
                } if *timeout_ms > 0 => {
                    banned.insert((jail.clone(), addr.addr), *timeout_ms);
                }
                FwOp::Add { jail, addr, .. } | FwOp::Del { jail, addr } => {
                    banned.remove(&(jail.clone(), addr.addr));
                }
            }
        }
        Ok(banned
            .into_iter()
            .map(|((jail, addr), ms)| (jail, addr, Some(ms)))
            .collect())
    }

    fn teardown(&mut self) -> Result<()> {
        self.log.clear();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::IpAddr;

    #[test]
    fn records_ops_and_lists_their_outcome() {
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "2001:db8::1".parse().unwrap();
        let add = |addr: IpAddr, timeout_ms| FwOp::Add {
            jail: "sshd".into(),
            addr: portcullis_core::ignore::Cidr::host(addr),
            timeout_ms,
        };
        let mut fw = Null::default();
        let ops = [
            add(a, 1000),
            add(b, 5),
            add(a, 2000),
            FwOp::Del {
                jail: "sshd".into(),
                addr: portcullis_core::ignore::Cidr::host(b),
            },
        ];
        fw.apply(&ops).unwrap();
        assert_eq!(fw.log, ops);
        assert_eq!(fw.list().unwrap(), vec![("sshd".into(), a, Some(2000))]);
        fw.teardown().unwrap();
        assert!(fw.list().unwrap().is_empty());
    }

    #[test]
    fn log_is_bounded_and_keeps_the_newest() {
        let add = |i: u32| FwOp::Add {
            jail: "sshd".into(),
            addr: portcullis_core::ignore::Cidr::host(IpAddr::from(std::net::Ipv4Addr::from(
                0x0a00_0000 + i,
            ))),
            timeout_ms: 1000,
        };
        let mut fw = Null::default();
        let n = LOG_CAP as u32 + 2_500;
        // one op at a time, then batches that straddle the cap
        for i in 0..n {
            fw.apply(&[add(i)]).unwrap();
            assert!(fw.log.len() <= LOG_CAP);
        }
        assert_eq!(fw.log.len(), LOG_CAP);
        assert_eq!(fw.log.front(), Some(&add(n - LOG_CAP as u32)));
        assert_eq!(fw.log.back(), Some(&add(n - 1)));
        let batch: Vec<FwOp> = (n..n + 700).map(add).collect();
        fw.apply(&batch).unwrap();
        assert_eq!(fw.log.len(), LOG_CAP);
        assert!(fw.log.iter().eq((n + 700 - LOG_CAP as u32..n + 700)
            .map(add)
            .collect::<Vec<_>>()
            .iter()));

        // a single batch larger than the cap keeps its own tail
        let mut fw = Null::with_cap(3);
        fw.apply(&[add(1)]).unwrap();
        fw.apply(&(10..20).map(add).collect::<Vec<_>>()).unwrap();
        assert_eq!(fw.log, [add(17), add(18), add(19)]);
        fw.apply(&[add(20), add(21)]).unwrap();
        assert_eq!(fw.log, [add(19), add(20), add(21)]);
    }
}

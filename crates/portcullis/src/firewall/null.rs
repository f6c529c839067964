//! A backend that touches nothing and records what it was asked to do: for tests and dry runs.

use anyhow::Result;

use super::{Firewall, FwOp, JailRules};

/// Records every op in `log`. [`Firewall::list`] replays the log (timeouts as given, never
/// counting down); [`Firewall::teardown`] clears it, as deleting the real table would.
#[derive(Debug, Default)]
pub struct Null {
    pub log: Vec<FwOp>,
}

impl Firewall for Null {
    fn setup(&mut self, jails: &[JailRules]) -> Result<()> {
        jails.iter().try_for_each(JailRules::check)
    }

    fn apply(&mut self, ops: &[FwOp]) -> Result<()> {
        self.log.extend_from_slice(ops);
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
                    banned.insert((jail.clone(), *addr), *timeout_ms);
                }
                FwOp::Add { jail, addr, .. } | FwOp::Del { jail, addr } => {
                    banned.remove(&(jail.clone(), *addr));
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
        let add = |addr, timeout_ms| FwOp::Add {
            jail: "sshd".into(),
            addr,
            timeout_ms,
        };
        let mut fw = Null::default();
        let ops = [
            add(a, 1000),
            add(b, 5),
            add(a, 2000),
            FwOp::Del {
                jail: "sshd".into(),
                addr: b,
            },
        ];
        fw.apply(&ops).unwrap();
        assert_eq!(fw.log, ops);
        assert_eq!(fw.list().unwrap(), vec![("sshd".into(), a, Some(2000))]);
        fw.teardown().unwrap();
        assert!(fw.list().unwrap().is_empty());
    }
}

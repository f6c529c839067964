//! The ipset backend: the fast path for iptables users. One `hash:net` set per jail and
//! family (`pc4_<jail>`, `pc6_<jail>`) with kernel timeouts, and one iptables rule per set
//! (and port group) in our chain, laid out as the iptables backend does
//! (`[firewall.iptables]` chain and hooks):
//!
//! ```text
//! -A PORTCULLIS -m set --match-set pc4_sshd src -p tcp -m multiport --dports 22 -m comment --comment sshd -j DROP
//! ```
//!
//! Every batch is one `ipset -exist restore` process, whatever its size; an `add` of an
//! address already there replaces its timeout. The kernel lifts a ban at its timeout even
//! when the daemon is gone; timeouts past ipset's maximum (2147483 s, about 24 days) are
//! given as 0 (no timeout) and the engine lifts those itself. A permanent ban is an element
//! with timeout 0 (none), which only an unban removes. At start the sets are flushed and
//! refilled from the store in the same single process.
//!
//! `hash:net`, not `hash:ip`: a ban may be a prefix (`v4_prefix`/`v6_prefix`, `subnet_ban`,
//! CIDR `deny` entries), which `hash:ip` cannot hold (it stores every address of a prefix
//! added to it, and refuses IPv6 prefixes). A single address is a /32 or /128 element,
//! written as the plain address. Sets left as `hash:ip` by an older version are replaced
//! at setup (their bans come back from the store at start).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use anyhow::{bail, Result};
use tracing::error;

use super::iptables::{rule_specs, IptOptions, Iptables};
use super::{fold, never_ban_prefix, run_checked, timeout_secs, Firewall, FwOp, JailRules};

/// The type of our sets.
pub const SET_TYPE: &str = "hash:net";

/// ipset's largest timeout, in seconds.
pub const MAX_TIMEOUT_S: i64 = 2_147_483;

/// The set of a jail and family.
pub fn set_name(jail: &str, v6: bool) -> String {
    format!("{}_{jail}", if v6 { "pc6" } else { "pc4" })
}

/// `create` lines for the sets of `jails` (no-ops for sets that exist).
pub fn create_script(jails: &[JailRules]) -> String {
    let mut s = String::new();
    for j in jails {
        for (v6, fam) in [(false, "inet"), (true, "inet6")] {
            let _ = writeln!(
                s,
                "create {} {SET_TYPE} family {fam} timeout 0 maxelem 1048576",
                set_name(&j.name, v6)
            );
        }
    }
    s
}

/// The `ipset restore` text of a batch: the folded ops as `add`/`del` lines.
pub fn batch_script(ops: &[FwOp]) -> String {
    let mut s = String::new();
    for ((jail, addr), timeout) in fold(ops) {
        let set = set_name(&jail, addr.addr.is_ipv6());
        // (Cidr's Display: a plain address for a /32 or /128, NET/LEN for a prefix)
        match timeout {
            Some(_) if never_ban_prefix(addr) => {}
            Some(ms) => {
                // 0: no timeout (permanent, or longer than ipset can count)
                let secs = timeout_secs(ms)
                    .filter(|&s| s <= MAX_TIMEOUT_S)
                    .unwrap_or(0);
                let _ = writeln!(s, "add {set} {addr} timeout {secs}");
            }
            None => {
                let _ = writeln!(s, "del {set} {addr}");
            }
        }
    }
    s
}

/// Our sets (`pc4_*`, `pc6_*`) and their types, from `ipset list -t`.
pub fn parse_types(text: &str) -> Vec<(String, String)> {
    let mut v = Vec::new();
    let mut name: Option<&str> = None;
    for l in text.lines() {
        if let Some(n) = l.strip_prefix("Name: ") {
            name = Some(n.trim());
        } else if let (Some(t), Some(n)) = (l.strip_prefix("Type: "), name.take()) {
            if n.starts_with("pc4_") || n.starts_with("pc6_") {
                v.push((n.to_string(), t.trim().to_string()));
            }
        }
    }
    v
}

/// The members of a set as `ipset list` prints them: address (the network address of a
/// prefix) and seconds left.
#[cfg(test)]
pub fn parse_list(text: &str) -> Vec<(std::net::IpAddr, Option<i64>)> {
    let mut members = false;
    let mut v = Vec::new();
    for l in text.lines() {
        if l.starts_with("Members:") {
            members = true;
            continue;
        }
        if !members || l.trim().is_empty() {
            continue;
        }
        let mut t = l.split_whitespace();
        let Some(Ok(a)) = t
            .next()
            .and_then(|a| a.split('/').next())
            .map(str::parse::<std::net::IpAddr>)
        else {
            continue;
        };
        let left = match (t.next(), t.next()) {
            (Some("timeout"), Some(n)) => n.parse::<i64>().ok().map(|s| s * 1000),
            _ => None,
        };
        v.push((a, left));
    }
    v
}

/// The ipset backend; see the module documentation.
pub struct Ipset {
    chain: Iptables,
    opts: IptOptions,
    jails: BTreeMap<String, JailRules>,
}

impl Ipset {
    pub fn new(opts: IptOptions) -> Self {
        Ipset {
            chain: Iptables::new(opts.clone()),
            opts,
            jails: BTreeMap::new(),
        }
    }

    fn ipset(&self, args: &[&str], input: Option<&str>, what: &str) -> Result<String> {
        let mut argv = self.opts.prefix.clone();
        argv.push("ipset".into());
        argv.extend(args.iter().map(|s| s.to_string()));
        let out = run_checked(&argv, input.map(str::as_bytes), what)?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Our sets that exist now.
    fn our_sets(&self) -> Result<BTreeSet<String>> {
        Ok(self
            .ipset(&["list", "-n"], None, "list the sets")?
            .lines()
            .filter(|l| l.starts_with("pc4_") || l.starts_with("pc6_"))
            .map(str::to_string)
            .collect())
    }

    /// The match rules of our chain: one per set and port group.
    fn match_rules(&self) -> [Vec<String>; 2] {
        let mut r = [Vec::new(), Vec::new()];
        for j in self.jails.values() {
            for v6 in [false, true] {
                let src = format!("-m set --match-set {} src", set_name(&j.name, v6));
                r[usize::from(v6)].extend(rule_specs(j, &src));
            }
        }
        r
    }
}

impl Firewall for Ipset {
    fn setup(&mut self, jails: &[JailRules]) -> Result<()> {
        for j in jails {
            j.check()?;
        }
        self.jails = jails.iter().map(|j| (j.name.clone(), j.clone())).collect();
        // sets of another type (hash:ip of an older version) cannot hold prefixes: unhook
        // them from our chain and destroy them, to be created again below
        let stale: String = parse_types(&self.ipset(&["list", "-t"], None, "list the sets")?)
            .into_iter()
            .filter(|(_, t)| t != SET_TYPE)
            .map(|(n, _)| format!("destroy {n}\n"))
            .collect();
        if !stale.is_empty() {
            self.chain.setup(&[])?;
            self.ipset(
                &["-exist", "restore"],
                Some(&stale),
                "replace the sets that cannot hold prefixes",
            )?;
        }
        self.ipset(
            &["-exist", "restore"],
            Some(&create_script(jails)),
            "create the sets",
        )?;
        // the chain matches the sets; no per-address rules in it
        let head = self.chain.head.clone();
        let rules = self.match_rules();
        self.chain.head = [
            head[0].iter().chain(&rules[0]).cloned().collect(),
            head[1].iter().chain(&rules[1]).cloned().collect(),
        ];
        let r = self.chain.setup(&[]);
        self.chain.head = head;
        r?;
        // sets of jails that are gone, now that no rule uses them
        let wanted: BTreeSet<String> = jails
            .iter()
            .flat_map(|j| [set_name(&j.name, false), set_name(&j.name, true)])
            .collect();
        let gone: String = self
            .our_sets()?
            .difference(&wanted)
            .map(|s| format!("destroy {s}\n"))
            .collect();
        if !gone.is_empty() {
            self.ipset(
                &["-exist", "restore"],
                Some(&gone),
                "remove the sets of old jails",
            )?;
        }
        Ok(())
    }

    fn apply(&mut self, ops: &[FwOp]) -> Result<()> {
        for op in ops {
            let (FwOp::Add { jail, addr, .. } | FwOp::Del { jail, addr }) = op;
            if !self.jails.contains_key(jail) {
                bail!("cannot ban or unban {addr}: jail {jail:?} is not set up in ipset");
            }
            if matches!(op, FwOp::Add { .. }) && super::never_ban_prefix(*addr) {
                error!("refusing to ban {addr} (jail {jail}): loopback/unspecified");
            }
        }
        let script = batch_script(ops);
        if script.is_empty() {
            return Ok(());
        }
        self.ipset(
            &["-exist", "restore"],
            Some(&script),
            &format!("apply {} changes", ops.len()),
        )?;
        Ok(())
    }

    fn restore(&mut self, ops: &[FwOp]) -> Result<()> {
        let mut script: String = self
            .jails
            .keys()
            .flat_map(|j| [set_name(j, false), set_name(j, true)])
            .map(|s| format!("flush {s}\n"))
            .collect();
        let ours: Vec<FwOp> = ops
            .iter()
            .filter(|op| {
                let (FwOp::Add { jail, .. } | FwOp::Del { jail, .. }) = op;
                self.jails.contains_key(jail)
            })
            .cloned()
            .collect();
        script.push_str(&batch_script(&ours));
        self.ipset(&["-exist", "restore"], Some(&script), "restore the bans")?;
        Ok(())
    }

    fn set_ratelimits(&mut self, rl: &super::ratelimit::RateLimits) -> Result<()> {
        self.chain.set_ratelimits(rl)
    }

    /// Our chain with its jumps and the sets of every jail: checked once a minute, repaired
    /// from the state when not (a set destroyed or the chain flushed went unseen, a review
    /// found). A set emptied by hand (`ipset flush`) is not seen.
    fn intact(&mut self) -> Result<bool> {
        if self.jails.is_empty() {
            return Ok(true); // not set up (yet)
        }
        let sets = self.our_sets()?;
        let rules = self.match_rules();
        for v6 in [false, true] {
            let saved = self.chain.saved(v6)?;
            if !self.chain.hooked(&saved) || saved.rules.len() < rules[usize::from(v6)].len() {
                return Ok(false);
            }
        }
        Ok(self
            .jails
            .keys()
            .all(|j| sets.contains(&set_name(j, false)) && sets.contains(&set_name(j, true))))
    }

    fn report(&mut self) -> Vec<String> {
        self.chain.ratelimit_report()
    }

    fn expires_itself(&self) -> bool {
        // the kernel does for bans under 24 days; the engine's unban covers the rest
        false
    }

    #[cfg(test)]
    fn list(&mut self) -> Result<Vec<(String, std::net::IpAddr, Option<i64>)>> {
        let mut v = Vec::new();
        for j in self.jails.keys() {
            for v6 in [false, true] {
                let text = self.ipset(&["list", &set_name(j, v6)], None, "list a set")?;
                v.extend(
                    parse_list(&text)
                        .into_iter()
                        .map(|(a, t)| (j.clone(), a, t)),
                );
            }
        }
        Ok(v)
    }

    fn teardown(&mut self) -> Result<()> {
        self.chain.teardown()?;
        let gone: String = self
            .our_sets()?
            .iter()
            .map(|s| format!("destroy {s}\n"))
            .collect();
        if !gone.is_empty() {
            self.ipset(&["-exist", "restore"], Some(&gone), "remove our sets")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::firewall::{cidr, Action, Proto, PERMANENT};

    #[test]
    fn scripts() {
        let j = JailRules {
            name: "sshd".into(),
            ports: Some(vec![(22, 22)]),
            proto: Proto::Tcp,
            action: Action::Drop,
            backends: vec![],
        };
        assert_eq!(
            create_script(&[j]),
            "create pc4_sshd hash:net family inet timeout 0 maxelem 1048576\ncreate pc6_sshd hash:net family inet6 timeout 0 maxelem 1048576\n"
        );
        let add = |a: &str, ms| FwOp::Add {
            jail: "sshd".into(),
            addr: cidr(a),
            timeout_ms: ms,
        };
        let s = batch_script(&[
            add("192.0.2.1", 1500),
            add("2001:db8::1", 40 * 86_400_000),
            add("127.0.0.1", 1000),
            add("127.0.0.0/8", 1000),
            add("0.0.0.0/0", 1000),
            add("::/0", 1000),
            FwOp::Del {
                jail: "sshd".into(),
                addr: cidr("192.0.2.9"),
            },
            add("198.51.100.0/24", 60_000),
            add("2001:db8:5:6::/64", PERMANENT),
            add("203.0.113.0/25", PERMANENT),
            FwOp::Del {
                jail: "sshd".into(),
                addr: cidr("2001:db8:7::/48"),
            },
        ]);
        assert_eq!(
            s,
            "add pc4_sshd 192.0.2.1 timeout 2\nadd pc6_sshd 2001:db8::1 timeout 0\ndel pc4_sshd 192.0.2.9\n\
             add pc4_sshd 198.51.100.0/24 timeout 60\nadd pc6_sshd 2001:db8:5:6::/64 timeout 0\n\
             add pc4_sshd 203.0.113.0/25 timeout 0\ndel pc6_sshd 2001:db8:7::/48\n"
        );
        // as ipset 7.17 lists a hash:net set
        let text = "Name: pc4_sshd\nType: hash:net\nRevision: 7\nHeader: family inet hashsize 1024 maxelem 1048576 timeout 0 bucketsize 12 initval 0x770cc666\nMembers:\n192.0.2.0/24 timeout 100\n192.0.2.2 timeout 0\n";
        assert_eq!(
            parse_list(text),
            vec![
                ("192.0.2.0".parse().unwrap(), Some(100_000)),
                ("192.0.2.2".parse().unwrap(), Some(0))
            ]
        );
        let terse = "Name: pc4_sshd\nType: hash:ip\nRevision: 6\n\nName: other\nType: hash:ip\n\nName: pc6_sshd\nType: hash:net\n";
        assert_eq!(
            parse_types(terse),
            [
                ("pc4_sshd".to_string(), "hash:ip".to_string()),
                ("pc6_sshd".to_string(), "hash:net".to_string())
            ]
        );
    }

    /// Runs `argv` (with stdin `input`) and returns its stdout; panics on failure.
    fn sh(argv: &[&str], input: Option<&str>) -> String {
        let argv: Vec<String> = argv.iter().map(|s| s.to_string()).collect();
        let out =
            crate::firewall::run_checked(&argv, input.map(str::as_bytes), "run a test command")
                .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A network namespace of the test's own; deleted on drop.
    struct Ns(String);

    impl Drop for Ns {
        fn drop(&mut self) {
            let _ = std::process::Command::new("ip")
                .args(["netns", "delete", &self.0])
                .status();
        }
    }

    #[test]
    #[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
    fn old_hash_ip_sets_are_replaced_and_prefixes_match() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let ns = Ns(format!("pc-ipset-{}-{nanos:x}", std::process::id()));
        sh(&["ip", "netns", "add", &ns.0], None);
        let x = |argv: &[&str], input: Option<&str>| {
            let mut all = vec!["ip", "netns", "exec", &ns.0];
            all.extend_from_slice(argv);
            sh(&all, input)
        };
        // an older version's layout: hash:ip sets, matched by our chain
        x(
            &["ipset", "-exist", "restore"],
            Some("create pc4_sshd hash:ip family inet timeout 0\ncreate pc6_sshd hash:ip family inet6 timeout 0\nadd pc4_sshd 192.0.2.9\n"),
        );
        x(
            &["iptables-restore", "--noflush"],
            Some("*filter\n:PORTCULLIS - [0:0]\n-I INPUT 1 -j PORTCULLIS\n-A PORTCULLIS -m set --match-set pc4_sshd src -j DROP\nCOMMIT\n"),
        );
        let j = JailRules {
            name: "sshd".into(),
            ports: Some(vec![(22, 22)]),
            proto: Proto::Tcp,
            action: Action::Drop,
            backends: vec![],
        };
        let mut fw = Ipset::new(IptOptions {
            prefix: ["ip", "netns", "exec", &ns.0].map(String::from).to_vec(),
            ..IptOptions::default()
        });
        fw.setup(std::slice::from_ref(&j)).unwrap();
        let types = parse_types(&x(&["ipset", "list", "-t"], None));
        assert_eq!(
            types,
            [
                ("pc4_sshd".to_string(), SET_TYPE.to_string()),
                ("pc6_sshd".to_string(), SET_TYPE.to_string())
            ]
        );
        // setup again (a restart): kept as they are
        fw.setup(std::slice::from_ref(&j)).unwrap();
        let add = |a: &str, ms| FwOp::Add {
            jail: "sshd".into(),
            addr: cidr(a),
            timeout_ms: ms,
        };
        fw.apply(&[
            add("198.51.100.0/24", PERMANENT),
            add("2001:db8:5:6::/64", 60_000),
            add("192.0.2.1", 60_000),
        ])
        .unwrap();
        let v4 = x(&["ipset", "list", "pc4_sshd"], None);
        assert!(v4.contains("\n198.51.100.0/24 timeout 0\n"), "{v4}");
        assert!(v4.contains("\n192.0.2.1 timeout "), "{v4}");
        let v6 = x(&["ipset", "list", "pc6_sshd"], None);
        assert!(v6.contains("\n2001:db8:5:6::/64 timeout "), "{v6}");
        // the kernel matches the whole prefix, and only it
        let member = |set: &str, a: &str| {
            std::process::Command::new("ip")
                .args(["netns", "exec", &ns.0, "ipset", "test", set, a])
                .output()
                .unwrap()
                .status
                .success()
        };
        assert!(member("pc4_sshd", "198.51.100.77"));
        assert!(!member("pc4_sshd", "198.51.101.1"));
        assert!(member("pc6_sshd", "2001:db8:5:6:ffff::1"));
        assert!(!member("pc6_sshd", "2001:db8:5:7::1"));
        // the chain matches the new set
        let rules = x(&["iptables-save", "-t", "filter"], None);
        assert!(
            rules.lines().any(|l| l.starts_with("-A PORTCULLIS ")
                && l.contains("--match-set pc4_sshd src")
                && l.contains("--dports 22")),
            "{rules}"
        );
        fw.apply(&[FwOp::Del {
            jail: "sshd".into(),
            addr: cidr("198.51.100.0/24"),
        }])
        .unwrap();
        assert!(!member("pc4_sshd", "198.51.100.77"));
        fw.teardown().unwrap();
        assert!(!x(&["ipset", "list", "-n"], None).contains("pc4_"));
    }
}

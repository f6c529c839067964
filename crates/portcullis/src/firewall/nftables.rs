//! The nftables backend.
//!
//! Portcullis owns one table, `inet <table>`, and nothing outside it. Per jail it holds eight
//! sets with `flags timeout`, so the kernel expires bans by itself: `v4_<jail>` and
//! `v6_<jail>` for single addresses, `v4c_` (/24), `v6k_` (/48), `v6m_` (/56) and `v6n_`
//! (/64) for the usual prefix lengths (matched on the source masked to that length), and
//! `v4p_<jail>`/`v6p_<jail>` (also `interval`) for other prefixes (see [`SET_KINDS`] for
//! why). (The prefix makes every jail name a valid nft identifier,
//! which must start with a letter and must not be a keyword such as `ip`.) A base chain per
//! hook (`input`, and `forward` if asked) at the configured priority holds, per jail and
//! family, a rule like
//!
//! ```text
//! ip saddr @v4_sshd tcp dport { 22 } counter drop
//! ```
//!
//! The table is marked as ours with a comment ([`OWNER_MARK`]) when it is created, and setup
//! and teardown touch an existing table only if it carries the mark, is empty (made again
//! with it), or is named `portcullis` (the default, which only Portcullis uses: tables of
//! versions before the mark, and kernels before 5.10, which drop a table's comment):
//! `table = "filter"` must not flush the host's own `inet filter` ruleset ([`ownership`]).
//!
//! Every change is one `nft -f -` process reading one script from stdin, which nft applies as
//! one transaction: all of it or nothing. The scripts are built by pure functions
//! ([`setup_script`], [`batch_script`]) and the text of `nft list table` is read by another
//! ([`parse_list`]), all tested without root. The tests that run nft do so in a network
//! namespace of their own.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::io::Write as _;
use std::net::IpAddr;
use std::process::{Command, Output, Stdio};

use anyhow::{bail, Context, Result};

use portcullis_core::ignore::Cidr;

use super::{
    check_jail_name, never_ban_prefix, Action, Firewall, FwOp, JailRules, Proto, PERMANENT,
};

/// The longest ban the kernel is given (3650 days). Longer ones are cut to this; nft refuses
/// timeouts past about 292 years, and a restart re-applies bans from the store anyway.
pub const MAX_TIMEOUT_MS: i64 = 3650 * 86_400_000;

/// How to reach nftables and what to create there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NftOptions {
    /// Name of our table in family `inet` (default `portcullis`). Letters, digits, `_`, `-`,
    /// starting with a letter.
    pub table: String,
    /// Hook priority of our chains (default -10: before the usual `filter` chains at 0).
    pub priority: i32,
    /// Also block forwarded traffic (to containers or hosts behind this one).
    pub forward: bool,
    /// Let packets of TCP connections already open through (`meta l4proto tcp ct state
    /// established accept` first in our chains): a ban then stops new ones only.
    pub keep_established: bool,
    /// The command to run, before `-f -` (default `["nft"]`). Tests use
    /// `["ip", "netns", "exec", NS, "nft"]`.
    pub command: Vec<String>,
}

impl Default for NftOptions {
    fn default() -> Self {
        NftOptions {
            table: "portcullis".into(),
            priority: -10,
            forward: false,
            keep_established: false,
            command: vec!["nft".into()],
        }
    }
}

/// The nftables backend; see the module documentation.
pub struct Nftables {
    opts: NftOptions,
    /// Kernel rate limits, added by each setup.
    rl: super::ratelimit::RateLimits,
    /// Jails of the last successful setup, to refuse ops for others with a clear error.
    jails: Option<BTreeSet<String>>,
}

impl Nftables {
    pub fn new(opts: NftOptions) -> Self {
        Nftables {
            opts,
            jails: None,
            rl: Default::default(),
        }
    }

    /// Runs nft with `args`, feeding it `input` on stdin.
    fn run(&self, args: &[&str], input: Option<&str>) -> Result<Output> {
        let (program, pre) = self
            .opts
            .command
            .split_first()
            .context("empty nft command")?;
        let shown = || format!("{} {}", self.opts.command.join(" "), args.join(" "));
        let mut child = Command::new(program)
            .args(pre)
            .args(args)
            .env("LC_ALL", "C")
            .stdin(if input.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot run `{}`", shown()))?;
        let stdin = child.stdin.take();
        // Feed stdin from another thread so that a chatty nft cannot deadlock us.
        let output = std::thread::scope(|s| {
            if let (Some(mut stdin), Some(text)) = (stdin, input) {
                s.spawn(move || stdin.write_all(text.as_bytes()));
            }
            child.wait_with_output()
        })
        .with_context(|| format!("cannot run `{}`", shown()))?;
        Ok(output)
    }

    /// Refuses ops for a jail the last setup did not make sets for (with a clear error, not
    /// nft's), and says so for each ban of loopback or the unspecified address, which the
    /// scripts leave out.
    fn check_ops(&self, ops: &[FwOp]) -> Result<()> {
        for op in ops {
            let (FwOp::Add { jail, addr, .. } | FwOp::Del { jail, addr }) = op;
            if let Some(known) = &self.jails {
                if !known.contains(jail) {
                    bail!("cannot ban or unban {addr}: jail {jail:?} is not set up in nftables");
                }
            }
            if matches!(op, FwOp::Add { .. }) && never_ban_prefix(*addr) {
                eprintln!("portcullis: refusing to ban {addr} (jail {jail}): loopback/unspecified");
            }
        }
        Ok(())
    }

    /// The names of the sets our table holds now (none when it does not exist). Terse: no
    /// element is listed.
    pub fn set_names(&self) -> Result<Vec<String>> {
        let json = self.listing(&["-j", "-t", "list", "sets", "inet"])?;
        Ok(parse_existing(&self.opts.table, &json)?
            .sets
            .into_iter()
            .map(|(name, _)| name)
            .collect())
    }

    /// The output of an nft command that lists, or an error.
    fn listing(&self, args: &[&str]) -> Result<String> {
        let out = self.run(args, None)?;
        if !out.status.success() {
            bail!(
                "nft cannot {} ({}): {}",
                args.join(" "),
                out.status,
                stderr_excerpt(&out)
            );
        }
        String::from_utf8(out.stdout).context("nft printed non-UTF-8")
    }

    /// Our table's chains, each with whether it carries [`OWNER_MARK`]; `None` when the
    /// table has no chain or does not exist. `nft list chains` reads no set element: a few
    /// milliseconds with 300,000 bans, where `nft list table` (even terse) and `nft list
    /// tables` read them all in nft 1.0.6 (3 s).
    fn chains(&self) -> Result<Option<Vec<(String, bool)>>> {
        let text = self.listing(&["-t", "list", "chains", "inet"])?;
        Ok(parse_chains(&self.opts.table, &text))
    }

    /// Whose the table is; `None` if it does not exist. Cheap when our chains carry the mark
    /// (every setup since they do); else read from the whole table ([`ownership`]).
    fn owner(&self) -> Result<Option<Owner>> {
        if let Some(chains) = self.chains()? {
            if self.opts.table == "portcullis" || chains.iter().any(|(_, marked)| *marked) {
                return Ok(Some(Owner::Ours));
            }
        }
        Ok(self
            .list_table(&["-t"])?
            .map(|text| ownership(&self.opts.table, &text)))
    }

    /// What our table holds now, from the chain and set listings (cheap: no element).
    fn existing(&self) -> Result<Existing> {
        let t = &self.opts.table;
        let chains = parse_existing(t, &self.listing(&["-j", "list", "chains", "inet"])?)?;
        let sets = parse_existing(t, &self.listing(&["-j", "-t", "list", "sets", "inet"])?)?;
        Ok(Existing {
            chains: chains.chains,
            sets: sets.sets,
        })
    }

    /// Runs a script as one transaction.
    fn run_script(&self, script: &str, what: &str) -> Result<()> {
        let out = self.run(&["-f", "-"], Some(script))?;
        if !out.status.success() {
            bail!(
                "nft failed to {what} ({}): {}",
                out.status,
                stderr_excerpt(&out)
            );
        }
        Ok(())
    }

    /// `nft list table` with extra flags; `None` if the table does not exist.
    fn list_table(&self, flags: &[&str]) -> Result<Option<String>> {
        let table = self.opts.table.as_str();
        let args: Vec<&str> = flags
            .iter()
            .copied()
            .chain(["list", "table", "inet", table])
            .collect();
        let out = self.run(&args, None)?;
        if out.status.success() {
            return String::from_utf8(out.stdout)
                .map(Some)
                .context("nft printed non-UTF-8");
        }
        let err = String::from_utf8_lossy(&out.stderr);
        if err.contains("No such file or directory") {
            return Ok(None);
        }
        bail!(
            "nft cannot list table inet {table} ({}): {}",
            out.status,
            stderr_excerpt(&out)
        )
    }
}

impl Firewall for Nftables {
    fn setup(&mut self, jails: &[JailRules]) -> Result<()> {
        check_table_name(&self.opts.table)?;
        let t = &self.opts.table;
        let (existing, remake) = match self.owner()? {
            None => (Existing::default(), false),
            Some(Owner::Remake) => (Existing::default(), true),
            Some(Owner::Foreign(what)) => return Err(foreign_table(t, &what)),
            Some(Owner::Ours) => (self.existing()?, false),
        };
        let mut script = String::new();
        if remake {
            // (its bans are given to the kernel again after setup, from the state file)
            let _ = writeln!(script, "add table inet {t}\ndelete table inet {t}");
        }
        script.push_str(&setup_script(&self.opts, jails, &existing)?);
        script.push_str(&super::ratelimit::nft_script(
            &format!("inet {}", self.opts.table),
            &self.rl,
        ));
        self.run_script(&script, &format!("set up table inet {}", self.opts.table))?;
        self.jails = Some(jails.iter().map(|j| j.name.clone()).collect());
        Ok(())
    }

    fn apply(&mut self, ops: &[FwOp]) -> Result<()> {
        self.check_ops(ops)?;
        let script = batch_script(&self.opts, ops)?;
        if script.is_empty() {
            return Ok(());
        }
        self.run_script(&script, &format!("apply {} changes", ops.len()))
    }

    /// `ops` is the whole truth (at start, after a repair, after the clock was set back):
    /// every set of the jails set up is emptied and given `ops` in the same transaction, so
    /// no ban is lifted even for a moment. Given `ops` on top of what the sets held, an
    /// element no ban of the state holds stayed for good (an element without a timeout never
    /// expires): a `deny` entry removed while the daemon was stopped, a permanent ban lifted
    /// while another backend ran; neither `bans` nor `unban` could see it, and only a hand-made
    /// `nft delete element` lifted it (a review found). It also gives elements that were
    /// there their new timeout, which an `add` leaves as it was.
    fn restore(&mut self, ops: &[FwOp]) -> Result<()> {
        let Some(jails) = self.jails.clone() else {
            return self.apply(ops);
        };
        self.check_ops(ops)?;
        let script = restore_script(&self.opts, &jails, ops)?;
        self.run_script(&script, &format!("restore {} bans", ops.len()))
    }

    /// Our table is still there with its base chains (`nft list chains`: no element is
    /// read, so it stays cheap with 300,000 bans; `nft list tables` reads them all).
    fn intact(&mut self) -> Result<bool> {
        if self.jails.is_none() {
            return Ok(true); // not set up (yet)
        }
        let chains = self.chains()?.unwrap_or_default();
        let hooks: &[&str] = if self.opts.forward {
            &["input", "forward"]
        } else {
            &["input"]
        };
        Ok(hooks.iter().all(|h| chains.iter().any(|(c, _)| c == h)))
    }

    fn set_ratelimits(&mut self, rl: &super::ratelimit::RateLimits) -> Result<()> {
        self.rl = rl.clone();
        Ok(())
    }

    fn report(&mut self) -> Vec<String> {
        let mut v = Vec::new();
        for l in &self.rl.limits {
            let chain = format!("rl_{}", l.name);
            let args = [
                "list",
                "chain",
                "inet",
                self.opts.table.as_str(),
                chain.as_str(),
            ];
            match self.run(&args, None) {
                Ok(out) if out.status.success() => {
                    let n = super::ratelimit::nft_counter(&String::from_utf8_lossy(&out.stdout));
                    v.push(format!(
                        "ratelimit {}: {n} packets over the limit dropped",
                        l.name
                    ));
                }
                _ => v.push(format!("ratelimit {}: cannot read its counters", l.name)),
            }
        }
        v
    }

    #[cfg(test)]
    fn list(&mut self) -> Result<Vec<(String, IpAddr, Option<i64>)>> {
        check_table_name(&self.opts.table)?;
        match self.list_table(&[])? {
            Some(text) => parse_list(&text),
            None => Ok(Vec::new()),
        }
    }

    fn kernel_bans(&mut self) -> Result<Vec<(String, Cidr, Option<i64>)>> {
        check_table_name(&self.opts.table)?;
        let Some(text) = self.list_table(&[])? else {
            return Ok(Vec::new());
        };
        // (one element it cannot read, a range added by hand, lost them all: review 63)
        let (bans, unread) = parse_bans(&text);
        if !unread.is_empty() {
            tracing::warn!(
                "nftables: {} element(s) of table inet {} are not addresses or prefixes Portcullis reads (a range added by hand?), not taken back: the start removes them from the kernel, as anything of its table the state does not hold: {}",
                unread.len(),
                self.opts.table,
                unread.iter().take(5).map(|e| format!("{e:?}")).collect::<Vec<_>>().join(", ")
            );
        }
        Ok(bans)
    }

    fn teardown(&mut self) -> Result<()> {
        check_table_name(&self.opts.table)?;
        if let Some(Owner::Foreign(what)) = self.owner()? {
            return Err(foreign_table(&self.opts.table, &what));
        }
        // `add` first so that `delete` cannot fail on a missing table (nft 1.0.6 has no
        // `destroy`).
        let t = &self.opts.table;
        self.run_script(
            &format!("add table inet {t}\ndelete table inet {t}\n"),
            "delete our table",
        )?;
        self.jails = None;
        Ok(())
    }
}

/// The comment Portcullis gives its table, by which it knows the table is its own.
pub const OWNER_MARK: &str = "portcullis: made and rebuilt by the daemon; edits are lost";

/// Whose an existing table is, from `nft -t list table` ([`ownership`]).
#[derive(Debug, PartialEq, Eq)]
pub enum Owner {
    /// It carries [`OWNER_MARK`].
    Ours,
    /// Unmarked but empty: safe to make again (deleted and created with the mark).
    Remake,
    /// Someone else's: what it holds (its first chains, sets and other objects).
    Foreign(Vec<String>),
}

/// Whose the table `name` is, from the text of `nft -t list table inet <name>`.
pub fn ownership(name: &str, text: &str) -> Owner {
    let mut objects = Vec::new();
    let mut marked = false;
    for line in text.lines() {
        // the table's own attributes and its objects are indented by one tab; an object's
        // contents by more
        let Some(l) = line.strip_prefix('\t') else {
            continue;
        };
        if l.starts_with(['\t', '}']) || l.is_empty() {
            continue;
        }
        if l == format!("comment \"{OWNER_MARK}\"") {
            marked = true;
        } else if !l.starts_with("comment ") && !l.starts_with("flags ") {
            objects.push(l.trim_end_matches(['{', ' ']).to_string());
        }
    }
    // the default name: nothing but Portcullis gives a table that name (an older one made
    // it without the mark, and a kernel before 5.10 drops a table's comment: made again at
    // each setup, it would lose its bans each time)
    if marked || name == "portcullis" {
        Owner::Ours
    } else if objects.is_empty() {
        Owner::Remake
    } else {
        objects.truncate(5);
        Owner::Foreign(objects)
    }
}

/// Table `name`'s chains in the text of `nft -t list chains inet`, each with whether it
/// carries [`OWNER_MARK`]; `None` if the table is not there (a table without chains is not
/// listed).
pub fn parse_chains(name: &str, text: &str) -> Option<Vec<(String, bool)>> {
    let head = format!("table inet {name} {{");
    let mut lines = text.lines().skip_while(|l| *l != head).skip(1);
    let mut chains: Vec<(String, bool)> = Vec::new();
    for line in lines.by_ref() {
        if line == "}" {
            break;
        }
        if let Some(chain) = line.strip_prefix("\tchain ") {
            chains.push((chain.trim_end_matches(['{', ' ']).to_string(), false));
        } else if line.trim() == format!("comment \"{OWNER_MARK}\"") {
            if let Some(last) = chains.last_mut() {
                last.1 = true;
            }
        }
    }
    (!chains.is_empty()).then_some(chains)
}

/// The tables of family inet in the text of `nft -t list chains inet` that Portcullis made:
/// a chain of theirs carries [`OWNER_MARK`], or the table has the default name (see
/// [`ownership`]).
pub fn marked_tables(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut table: Option<&str> = None;
    for line in text.lines() {
        if let Some(t) = line
            .strip_prefix("table inet ")
            .and_then(|t| t.strip_suffix(" {"))
        {
            table = Some(t);
            if t == "portcullis" {
                out.push(t.to_string());
            }
        } else if line == "}" {
            table = None;
        } else if line.trim() == format!("comment \"{OWNER_MARK}\"") {
            if let Some(t) = table {
                if !out.iter().any(|o| o == t) {
                    out.push(t.to_string());
                }
            }
        }
    }
    out
}

/// The error for a table that is not ours.
fn foreign_table(name: &str, what: &[String]) -> anyhow::Error {
    anyhow::anyhow!(
        "table inet {name} exists and was not made by Portcullis (it holds {}): Portcullis rebuilds its table from scratch, so it never takes over another: set [firewall] table to a name of its own (default \"portcullis\")",
        what.join(", ")
    )
}

/// The last lines of nft's complaint (it quotes the offending script line).
fn stderr_excerpt(out: &Output) -> String {
    let err = String::from_utf8_lossy(&out.stderr);
    let err = err.trim();
    match err.char_indices().rev().nth(2000) {
        Some((i, _)) => format!("...{}", &err[i..]),
        None => err.to_string(),
    }
}

/// Table names: an nft identifier we can be sure of.
pub fn check_table_name(name: &str) -> Result<()> {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    if !name.starts_with(|c: char| c.is_ascii_alphabetic())
        || name.len() > 64
        || !name.chars().all(ok_char)
    {
        bail!("bad nftables table name {name:?}: use a letter, then letters, digits, '_' or '-'");
    }
    Ok(())
}

/// One kind of set a jail has.
struct SetKind {
    /// Of the set's name (`v4c_` + jail).
    prefix: &'static str,
    v6: bool,
    /// The one prefix length its elements stand for (a plain set, matched on the source
    /// masked to that length: its elements are network addresses); `None`: any other
    /// length (an interval set of prefixes).
    len: Option<u8>,
    /// The rule's lookup.
    lookup: &'static str,
}

impl SetKind {
    fn nft_type(&self) -> &'static str {
        if self.v6 {
            "ipv6_addr"
        } else {
            "ipv4_addr"
        }
    }

    fn flags(&self) -> &'static str {
        if self.len.is_some() {
            "timeout"
        } else {
            "interval, timeout"
        }
    }
}

/// The kinds of set a jail has, per family: single addresses (`v4_`, `v6_`), the usual
/// prefix lengths in plain sets matched on the source address masked to that length (IPv4
/// /24s, IPv6 /48s, /56s and /64s), and every other prefix (`v4p_`, `v6p_`, interval sets).
/// nft 1.0.6 reads every element of every interval set of the network namespace before it
/// changes any set (to check overlaps): with 300,000 bans in one, a single ban took 13 s,
/// against 4 ms with plain sets only, and the engine waited; a `deny` file of 100,000 /56s
/// still cost 0.5 s per ban, a review measured. So bans of an address or of one of the
/// usual lengths (`v6_prefix` 64 by default, `v4_prefix` 24, `subnet_ban` widening, most
/// deny CIDRs) go to plain sets, and only other lengths (a ban narrowed around an own
/// address, odd CIDRs) to interval sets.
const SET_KINDS: [SetKind; 8] = {
    const fn k(prefix: &'static str, v6: bool, len: Option<u8>, lookup: &'static str) -> SetKind {
        SetKind {
            prefix,
            v6,
            len,
            lookup,
        }
    }
    [
        k("v4_", false, Some(32), "ip saddr"),
        k("v4c_", false, Some(24), "ip saddr & 255.255.255.0"),
        k("v4p_", false, None, "ip saddr"),
        k("v6_", true, Some(128), "ip6 saddr"),
        k("v6k_", true, Some(48), "ip6 saddr & ffff:ffff:ffff::"),
        k("v6m_", true, Some(56), "ip6 saddr & ffff:ffff:ffff:ff00::"),
        k("v6n_", true, Some(64), "ip6 saddr & ffff:ffff:ffff:ffff::"),
        k("v6p_", true, None, "ip6 saddr"),
    ]
};

/// The set of a jail that holds `addr`, and the element for it: the plain set of its
/// length, with its network address, else the interval set of its family, with the prefix.
fn set_and_element(jail: &str, addr: Cidr) -> (String, String) {
    let v6 = addr.addr.is_ipv6();
    let of_family = || SET_KINDS.iter().filter(move |k| k.v6 == v6);
    match of_family().find(|k| k.len == Some(addr.len)) {
        Some(k) => (format!("{}{jail}", k.prefix), addr.addr.to_string()),
        None => {
            let k = of_family()
                .find(|k| k.len.is_none())
                .expect("an interval set");
            (format!("{}{jail}", k.prefix), addr.to_string())
        }
    }
}

/// The name of the set of `jail` that holds `addr` (see [`SET_KINDS`]).
pub fn set_of(jail: &str, addr: Cidr) -> String {
    set_and_element(jail, addr).0
}

/// The kind of one of our set names, and its jail.
fn kind_of_set(set: &str) -> Option<(&'static SetKind, &str)> {
    SET_KINDS
        .iter()
        .find_map(|k| set.strip_prefix(k.prefix).map(|jail| (k, jail)))
}

/// What our table holds now, as far as setup cares.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Existing {
    pub chains: Vec<String>,
    /// Set name, and whether it is one of ours with the type and flags we create (see
    /// [`SET_KINDS`]).
    pub sets: Vec<(String, bool)>,
}

/// Reads the chains and sets of table `inet <table>` out of the output of `nft -j list
/// chains inet`, `nft -j -t list sets inet` or `nft -j -t list table inet <table>`.
pub fn parse_existing(table: &str, json: &str) -> Result<Existing> {
    let value: serde_json::Value =
        serde_json::from_str(json).context("cannot parse the JSON output of nft")?;
    let items = value["nftables"]
        .as_array()
        .context("nft JSON output has no `nftables` list")?;
    let mut existing = Existing::default();
    let ours = |v: &serde_json::Value| v["family"] == "inet" && v["table"] == table;
    for item in items {
        if !ours(&item["chain"]) && !ours(&item["set"]) {
            continue;
        }
        if let Some(name) = item["chain"]["name"].as_str() {
            existing.chains.push(name.to_string());
        }
        let set = &item["set"];
        if let Some(name) = set["name"].as_str() {
            let flags: Vec<&str> = set["flags"]
                .as_array()
                .map(|f| f.iter().filter_map(|f| f.as_str()).collect())
                .unwrap_or_default();
            // (sets of an older layout, `v4_` as an interval set, are made again)
            let ok = kind_of_set(name).is_some_and(|(k, _)| {
                set["type"].as_str() == Some(k.nft_type()) && flags.join(", ") == k.flags()
            });
            existing.sets.push((name.to_string(), ok));
        }
    }
    Ok(existing)
}

/// The script that creates or repairs our table for `jails`, given what it holds now.
///
/// Chains are rebuilt from scratch (so old rules and a changed priority go away); the sets of
/// configured jails are created only if missing, so they keep their elements; other sets are
/// deleted, after the rules that used them.
pub fn setup_script(opts: &NftOptions, jails: &[JailRules], existing: &Existing) -> Result<String> {
    check_table_name(&opts.table)?;
    let mut names = BTreeSet::new();
    for jail in jails {
        jail.check()?;
        if !names.insert(jail.name.as_str()) {
            bail!("jail {} is given twice", jail.name);
        }
    }
    let t = format!("inet {}", opts.table);
    let hooks: &[&str] = if opts.forward {
        &["input", "forward"]
    } else {
        &["input"]
    };
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# portcullis: set up table {t} for {} jails",
        jails.len()
    );
    // (the comment is given only when the table is created: `add` leaves an existing one as
    // it is)
    let _ = writeln!(s, "add table {t} {{ comment \"{OWNER_MARK}\"; }}");
    // `add` (a no-op if it exists, even as a base chain) so that flush and delete cannot fail;
    // all flushed before any is deleted, in case one jumps to another.
    let old_chains: BTreeSet<&str> = hooks
        .iter()
        .copied()
        .chain(existing.chains.iter().map(String::as_str))
        .collect();
    for verb in ["add", "flush", "delete"] {
        for chain in &old_chains {
            let _ = writeln!(s, "{verb} chain {t} {chain}");
        }
    }
    let wanted: BTreeMap<String, &SetKind> = jails
        .iter()
        .flat_map(|j| {
            SET_KINDS
                .iter()
                .map(|k| (format!("{}{}", k.prefix, j.name), k))
        })
        .collect();
    for (set, ok) in &existing.sets {
        if !ok || !wanted.contains_key(set) {
            let _ = writeln!(s, "delete set {t} {set}");
        }
    }
    for (set, k) in &wanted {
        let _ = writeln!(
            s,
            "add set {t} {set} {{ type {}; flags {}; }}",
            k.nft_type(),
            k.flags()
        );
    }
    for hook in hooks {
        let _ = writeln!(
            s,
            "add chain {t} {hook} {{ type filter hook {hook} priority {}; policy accept; comment \"{OWNER_MARK}\"; }}",
            opts.priority
        );
        if opts.keep_established {
            // (TCP only: a UDP "connection" or an ICMP echo of a banned address went on as
            // long as it kept sending, a SIP jail's offender with it, review 30)
            let _ = writeln!(
                s,
                "add rule {t} {hook} meta l4proto tcp ct state established accept"
            );
        }
        for jail in jails {
            let j = &jail.name;
            let lookups = SET_KINDS
                .iter()
                .map(|k| (k.lookup, format!("{}{j}", k.prefix)));
            for (lookup, set) in lookups {
                for (matches, verdict) in rule_matches(jail) {
                    let _ = writeln!(
                        s,
                        "add rule {t} {hook} {lookup} @{set} {matches}counter {verdict}"
                    );
                }
            }
        }
    }
    Ok(s)
}

/// The protocol/port matches (each empty or ending in a space) and verdicts of a jail's rules.
fn rule_matches(jail: &JailRules) -> Vec<(String, &'static str)> {
    let ports = jail.ports.as_ref().map(|ports| {
        let list: Vec<String> = ports
            .iter()
            .map(|&(lo, hi)| {
                if lo == hi {
                    lo.to_string()
                } else {
                    format!("{lo}-{hi}")
                }
            })
            .collect();
        format!("{{ {} }}", list.join(", "))
    });
    let l4 = |proto| match (proto, &ports) {
        (Proto::Tcp, Some(p)) => format!("tcp dport {p} "),
        (Proto::Udp, Some(p)) => format!("udp dport {p} "),
        (Proto::Both, Some(p)) => format!("meta l4proto {{ tcp, udp }} th dport {p} "),
        (Proto::Tcp, None) => "meta l4proto tcp ".to_string(),
        (Proto::Udp, None) => "meta l4proto udp ".to_string(),
        (Proto::Both, None) => String::new(),
    };
    match (jail.action, jail.proto) {
        (Action::Drop, proto) => vec![(l4(proto), "drop")],
        (Action::Reject, Proto::Tcp) => vec![(l4(Proto::Tcp), "reject with tcp reset")],
        (Action::Reject, Proto::Udp) => vec![(l4(Proto::Udp), "reject")],
        // TCP gets a reset; the rest (UDP, or with all ports anything) an ICMP unreachable.
        (Action::Reject, Proto::Both) => {
            vec![
                (l4(Proto::Tcp), "reject with tcp reset"),
                (l4(Proto::Both), "reject"),
            ]
        }
    }
}

/// The script that applies `ops` (empty if there is nothing to do).
///
/// Within one transaction only the final state matters, so the ops are first folded into
/// "banned with this timeout" or "not banned" per (set, address), later ops winning. Then per
/// set: add every touched address (so the delete cannot fail on a missing one: nft 1.0.6
/// errors on that), delete them all (an add does not update the timeout of an existing
/// element), and add the banned ones back with their timeout. Three statements per set,
/// however many addresses. Loopback and unspecified addresses are never added.
pub fn batch_script(opts: &NftOptions, ops: &[FwOp]) -> Result<String> {
    check_table_name(&opts.table)?;
    // Per set: address -> (final timeout, or None for unbanned; whether the batch deletes it).
    // (a timeout of PERMANENT: an element without timeout)
    let mut sets: BTreeMap<String, BTreeMap<Cidr, (Option<i64>, bool)>> = BTreeMap::new();
    for op in ops {
        let (jail, addr, timeout) = match op {
            FwOp::Add {
                jail,
                addr,
                timeout_ms,
            } => (jail, addr, Some(*timeout_ms).filter(|&t| t > 0)),
            FwOp::Del { jail, addr } => (jail, addr, None),
        };
        check_jail_name(jail)?;
        let addr = Cidr::new(addr.addr, addr.len).unwrap_or(*addr);
        if timeout.is_some() && never_ban_prefix(addr) {
            continue;
        }
        let (set, _) = set_and_element(jail, addr);
        let e = sets
            .entry(set)
            .or_default()
            .entry(addr)
            .or_insert((None, false));
        e.0 = timeout.map(|t| {
            if t == PERMANENT {
                t
            } else {
                t.min(MAX_TIMEOUT_MS)
            }
        });
        e.1 |= timeout.is_none();
    }
    let t = format!("inet {}", opts.table);
    let mut s = String::new();
    for (set, addrs) in &sets {
        // Only addresses the batch deletes (an unban, or a ban replaced with a new timeout)
        // take the add+delete path: adding first makes deleting a missing element harmless.
        // A plain new ban is a single `add`, which is faster for nft and the kernel (a delete
        // makes nft's exit wait for the kernel's set garbage collection).
        let element = |a: &Cidr| set_and_element("x", *a).1;
        let deleted: Vec<String> = addrs
            .iter()
            .filter(|(_, (_, del))| *del)
            .map(|(a, _)| element(a))
            .collect();
        let banned: Vec<String> = addrs
            .iter()
            .filter_map(|(addr, (timeout, _))| {
                timeout.map(|ms| match ms {
                    PERMANENT => element(addr),
                    _ => format!("{} timeout {}", element(addr), nft_duration(ms)),
                })
            })
            .collect();
        if !deleted.is_empty() {
            element_block(&mut s, "add", &t, set, &deleted);
            element_block(&mut s, "delete", &t, set, &deleted);
        }
        if !banned.is_empty() {
            element_block(&mut s, "add", &t, set, &banned);
        }
    }
    Ok(s)
}

/// [`Firewall::restore`]'s script: every set of `jails` flushed, then `ops` added, in one
/// transaction.
pub fn restore_script(opts: &NftOptions, jails: &BTreeSet<String>, ops: &[FwOp]) -> Result<String> {
    check_table_name(&opts.table)?;
    let mut s = String::new();
    for jail in jails {
        check_jail_name(jail)?;
        for k in &SET_KINDS {
            let _ = writeln!(s, "flush set inet {} {}{jail}", opts.table, k.prefix);
        }
    }
    // the removals are done by the flush: given as add+delete after it, an element the
    // interval set held failed the whole transaction (nft checks against the set as it was),
    // and the start's restore left everything as it was, a review found
    let adds: Vec<FwOp> = ops
        .iter()
        .filter(|op| matches!(op, FwOp::Add { .. }))
        .cloned()
        .collect();
    s.push_str(&batch_script(opts, &adds)?);
    Ok(s)
}

/// One element per line, so that an nft error quotes just the offending element.
fn element_block(s: &mut String, verb: &str, table: &str, set: &str, elements: &[String]) {
    let _ = writeln!(
        s,
        "{verb} element {table} {set} {{\n\t{}\n}}",
        elements.join(",\n\t")
    );
}

/// The units of nft's durations and their length in milliseconds, largest first.
const DURATION_UNITS: [(&str, i64); 5] = [
    ("d", 86_400_000),
    ("h", 3_600_000),
    ("m", 60_000),
    ("s", 1000),
    ("ms", 1),
];

/// Milliseconds in nft's notation (`1d2h3m4s5ms`): nft refuses single numbers over 2^32.
fn nft_duration(ms: i64) -> String {
    let mut s = String::new();
    let mut rest = ms.max(1);
    for (unit, size) in DURATION_UNITS {
        if rest >= size {
            let _ = write!(s, "{}{unit}", rest / size);
            rest %= size;
        }
    }
    s
}

/// Reads a duration as nft prints it (`1d2h3m4s5ms`, any part left out).
fn parse_nft_duration(text: &str) -> Option<i64> {
    let mut total: i64 = 0;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let number: i64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        let (_, size) = DURATION_UNITS.into_iter().find(|&(u, _)| u == unit)?;
        rest = &rest[unit_len..];
        total = total.checked_add(number.checked_mul(size)?)?;
    }
    Some(total)
}

/// A ban read back from the kernel: jail, address or prefix, remaining milliseconds (`None`:
/// permanent).
pub type KernelBan = (String, Cidr, Option<i64>);

/// Reads the banned addresses out of the text of `nft list table inet <table>`: jail,
/// address or prefix, remaining milliseconds (`expires`, to the millisecond; the JSON output
/// only gives seconds; `None`: no timeout, a permanent ban). A plain set's element stands for
/// its set's prefix length (`v4c_`: /24), an interval set's says its own.
/// The elements it cannot read (a range added by hand) are returned apart, as printed.
pub fn parse_bans(text: &str) -> (Vec<KernelBan>, Vec<String>) {
    let mut out = Vec::new();
    let mut unread = Vec::new();
    let mut set: Option<(&'static SetKind, &str)> = None; // inside one of our sets
    let mut elements: Option<String> = None; // inside its `elements = { ... }`
    for line in text.lines() {
        let line = line.trim();
        let last = if let Some(buf) = &mut elements {
            buf.push_str(line);
            buf.push(' ');
            line.contains('}')
        } else if let Some(name) = line.strip_prefix("set ").and_then(|l| l.strip_suffix(" {")) {
            set = kind_of_set(name);
            false
        } else if line == "}" {
            set = None;
            false
        } else if let (Some(rest), Some(_)) = (line.strip_prefix("elements = {"), set) {
            elements = Some(format!("{rest} "));
            rest.contains('}')
        } else {
            false
        };
        if !last {
            continue;
        }
        let (Some((kind, name)), Some(buf)) = (set, elements.take()) else {
            continue;
        };
        let end = buf.find('}').unwrap_or(buf.len());
        for element in buf[..end]
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
        {
            let Some((addr, len, remaining)) = parse_element(element) else {
                unread.push(element.to_string());
                continue;
            };
            let full = if addr.is_ipv4() { 32 } else { 128 };
            let len = kind.len.or(len).unwrap_or(full);
            if addr.is_ipv6() != kind.v6 || len > full {
                unread.push(element.to_string());
                continue;
            }
            out.push((name.to_string(), Cidr { addr, len }, remaining));
        }
    }
    (out, unread)
}

/// [`parse_bans`] by address, as the tests compare; an element it cannot read is an error.
#[cfg(test)]
pub fn parse_list(text: &str) -> Result<Vec<(String, IpAddr, Option<i64>)>> {
    let (bans, unread) = parse_bans(text);
    if let Some(e) = unread.first() {
        bail!("cannot read set element {e:?} in the output of nft");
    }
    Ok(bans.into_iter().map(|(j, c, r)| (j, c.addr, r)).collect())
}

/// `192.0.2.1 timeout 1h expires 59m58s120ms` into the address, its prefix length when it
/// gives one (`198.51.100.0/24`), and the remaining time.
fn parse_element(element: &str) -> Option<(IpAddr, Option<u8>, Option<i64>)> {
    let mut words = element.split_whitespace();
    let mut first = words.next()?.split('/');
    let addr = first.next()?.parse().ok()?;
    let len = match first.next() {
        Some(l) => Some(l.parse().ok()?),
        None => None,
    };
    let (mut timeout, mut expires) = (None, None);
    while let Some(word) = words.next() {
        match word {
            "timeout" => timeout = Some(parse_nft_duration(words.next()?)?),
            "expires" => expires = Some(parse_nft_duration(words.next()?)?),
            _ => {}
        }
    }
    Some((addr, len, expires.or(timeout)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::{Duration, Instant};

    fn jail(name: &str, ports: Option<Vec<(u16, u16)>>, proto: Proto, action: Action) -> JailRules {
        JailRules {
            name: name.into(),
            ports,
            proto,
            action,
            backends: vec![],
        }
    }

    fn sshd() -> JailRules {
        jail("sshd", Some(vec![(22, 22)]), Proto::Tcp, Action::Drop)
    }

    fn all_ports() -> JailRules {
        jail("0-all", None, Proto::Both, Action::Reject)
    }

    fn add(jail: &str, addr: &str, timeout_ms: i64) -> FwOp {
        FwOp::Add {
            jail: jail.into(),
            addr: Cidr::parse(addr).unwrap(),
            timeout_ms,
        }
    }

    fn del(jail: &str, addr: &str) -> FwOp {
        FwOp::Del {
            jail: jail.into(),
            addr: Cidr::parse(addr).unwrap(),
        }
    }

    #[test]
    fn setup_script_on_an_empty_table() {
        let mail = jail(
            "mail",
            Some(vec![(25, 25), (587, 587), (993, 995)]),
            Proto::Both,
            Action::Drop,
        );
        let script = setup_script(
            &NftOptions::default(),
            &[sshd(), mail],
            &Existing::default(),
        )
        .unwrap();
        let expected = "\
# portcullis: set up table inet portcullis for 2 jails
add table inet portcullis { comment \"portcullis: made and rebuilt by the daemon; edits are lost\"; }
add chain inet portcullis input
flush chain inet portcullis input
delete chain inet portcullis input
add set inet portcullis v4_mail { type ipv4_addr; flags timeout; }
add set inet portcullis v4_sshd { type ipv4_addr; flags timeout; }
add set inet portcullis v4c_mail { type ipv4_addr; flags timeout; }
add set inet portcullis v4c_sshd { type ipv4_addr; flags timeout; }
add set inet portcullis v4p_mail { type ipv4_addr; flags interval, timeout; }
add set inet portcullis v4p_sshd { type ipv4_addr; flags interval, timeout; }
add set inet portcullis v6_mail { type ipv6_addr; flags timeout; }
add set inet portcullis v6_sshd { type ipv6_addr; flags timeout; }
add set inet portcullis v6k_mail { type ipv6_addr; flags timeout; }
add set inet portcullis v6k_sshd { type ipv6_addr; flags timeout; }
add set inet portcullis v6m_mail { type ipv6_addr; flags timeout; }
add set inet portcullis v6m_sshd { type ipv6_addr; flags timeout; }
add set inet portcullis v6n_mail { type ipv6_addr; flags timeout; }
add set inet portcullis v6n_sshd { type ipv6_addr; flags timeout; }
add set inet portcullis v6p_mail { type ipv6_addr; flags interval, timeout; }
add set inet portcullis v6p_sshd { type ipv6_addr; flags interval, timeout; }
add chain inet portcullis input { type filter hook input priority -10; policy accept; comment \"portcullis: made and rebuilt by the daemon; edits are lost\"; }
add rule inet portcullis input ip saddr @v4_sshd tcp dport { 22 } counter drop
add rule inet portcullis input ip saddr & 255.255.255.0 @v4c_sshd tcp dport { 22 } counter drop
add rule inet portcullis input ip saddr @v4p_sshd tcp dport { 22 } counter drop
add rule inet portcullis input ip6 saddr @v6_sshd tcp dport { 22 } counter drop
add rule inet portcullis input ip6 saddr & ffff:ffff:ffff:: @v6k_sshd tcp dport { 22 } counter drop
add rule inet portcullis input ip6 saddr & ffff:ffff:ffff:ff00:: @v6m_sshd tcp dport { 22 } counter drop
add rule inet portcullis input ip6 saddr & ffff:ffff:ffff:ffff:: @v6n_sshd tcp dport { 22 } counter drop
add rule inet portcullis input ip6 saddr @v6p_sshd tcp dport { 22 } counter drop
add rule inet portcullis input ip saddr @v4_mail meta l4proto { tcp, udp } th dport { 25, 587, 993-995 } counter drop
add rule inet portcullis input ip saddr & 255.255.255.0 @v4c_mail meta l4proto { tcp, udp } th dport { 25, 587, 993-995 } counter drop
add rule inet portcullis input ip saddr @v4p_mail meta l4proto { tcp, udp } th dport { 25, 587, 993-995 } counter drop
add rule inet portcullis input ip6 saddr @v6_mail meta l4proto { tcp, udp } th dport { 25, 587, 993-995 } counter drop
add rule inet portcullis input ip6 saddr & ffff:ffff:ffff:: @v6k_mail meta l4proto { tcp, udp } th dport { 25, 587, 993-995 } counter drop
add rule inet portcullis input ip6 saddr & ffff:ffff:ffff:ff00:: @v6m_mail meta l4proto { tcp, udp } th dport { 25, 587, 993-995 } counter drop
add rule inet portcullis input ip6 saddr & ffff:ffff:ffff:ffff:: @v6n_mail meta l4proto { tcp, udp } th dport { 25, 587, 993-995 } counter drop
add rule inet portcullis input ip6 saddr @v6p_mail meta l4proto { tcp, udp } th dport { 25, 587, 993-995 } counter drop
";
        assert_eq!(script, expected);
    }

    /// Debian's /etc/nftables.conf with an admin's set and rules, as `nft -t list` prints it.
    const HOST_FILTER: &str = "table inet filter {
\tset admins {
\t\ttype ipv4_addr
\t\telements = { 198.51.100.1 }
\t}

\tchain input {
\t\ttype filter hook input priority filter; policy drop;
\t\tiif \"lo\" accept
\t\tip saddr @admins tcp dport 22 accept
\t}

\tchain forward {
\t\ttype filter hook forward priority filter; policy drop;
\t}
}
";

    #[test]
    fn only_a_table_marked_as_ours_is_rebuilt() {
        assert_eq!(
            ownership("filter", HOST_FILTER),
            Owner::Foreign(vec![
                "set admins".into(),
                "chain input".into(),
                "chain forward".into()
            ])
        );
        // the same, under the default name: only Portcullis makes a table so named
        assert_eq!(ownership("portcullis", HOST_FILTER), Owner::Ours);
        // nothing in it: nothing to lose
        assert_eq!(ownership("pc", "table inet pc {\n}\n"), Owner::Remake);
        assert_eq!(
            ownership("pc", "table inet pc {\n\tflags dormant\n}\n"),
            Owner::Remake
        );
        // marked (another comment is not the mark)
        let ours =
            format!("table inet pc {{\n\tcomment \"{OWNER_MARK}\"\n\tchain input {{\n\t}}\n}}\n");
        assert_eq!(ownership("pc", &ours), Owner::Ours);
        let other = ours.replace(OWNER_MARK, "portcullis");
        assert_eq!(
            ownership("pc", &other),
            Owner::Foreign(vec!["chain input".into()])
        );
        // what nft itself prints is read by the test that runs it (a_table_not_made_by_us_…)
    }

    #[test]
    fn setup_script_keeps_sets_of_configured_jails_and_drops_the_rest() {
        let existing = Existing {
            chains: vec!["input".into(), "forward".into()],
            sets: vec![
                ("v4_sshd".into(), true),
                ("v6_sshd".into(), false), // wrong type or flags: recreated
                ("v4_gone".into(), true),
                ("v6_gone".into(), true),
            ],
        };
        let opts = NftOptions {
            table: "pc".into(),
            priority: -5,
            ..NftOptions::default()
        };
        let script = setup_script(&opts, &[sshd()], &existing).unwrap();
        let lines: Vec<&str> = script.lines().collect();
        // The old forward chain goes, before the sets its rules may use.
        let delete_forward = lines
            .iter()
            .position(|l| *l == "delete chain inet pc forward")
            .unwrap();
        let delete_gone = lines
            .iter()
            .position(|l| *l == "delete set inet pc v4_gone")
            .unwrap();
        assert!(delete_forward < delete_gone);
        assert!(lines.contains(&"delete set inet pc v6_gone"));
        assert!(lines.contains(&"delete set inet pc v6_sshd"));
        assert!(!lines.contains(&"delete set inet pc v4_sshd"));
        assert!(lines.contains(&"add set inet pc v4_sshd { type ipv4_addr; flags timeout; }"));
        assert!(lines
            .contains(&"add set inet pc v4p_sshd { type ipv4_addr; flags interval, timeout; }"));
        assert!(lines.contains(
            &format!("add chain inet pc input {{ type filter hook input priority -5; policy accept; comment \"{OWNER_MARK}\"; }}").as_str()
        ));
        assert!(!script.contains("hook forward"));
    }

    #[test]
    fn rules_for_reject_and_forward() {
        let opts = NftOptions {
            forward: true,
            ..NftOptions::default()
        };
        let udp = jail("dns", Some(vec![(53, 53)]), Proto::Udp, Action::Reject);
        let tcp_all = jail("web", None, Proto::Tcp, Action::Reject);
        let script =
            setup_script(&opts, &[all_ports(), udp, tcp_all], &Existing::default()).unwrap();
        let rules: Vec<&str> = script
            .lines()
            .filter_map(|l| l.strip_prefix("add rule inet portcullis "))
            .filter(|l| l.starts_with("input ip "))
            .collect();
        assert_eq!(
            rules,
            [
                "input ip saddr @v4_0-all meta l4proto tcp counter reject with tcp reset",
                "input ip saddr @v4_0-all counter reject",
                "input ip saddr & 255.255.255.0 @v4c_0-all meta l4proto tcp counter reject with tcp reset",
                "input ip saddr & 255.255.255.0 @v4c_0-all counter reject",
                "input ip saddr @v4p_0-all meta l4proto tcp counter reject with tcp reset",
                "input ip saddr @v4p_0-all counter reject",
                "input ip saddr @v4_dns udp dport { 53 } counter reject",
                "input ip saddr & 255.255.255.0 @v4c_dns udp dport { 53 } counter reject",
                "input ip saddr @v4p_dns udp dport { 53 } counter reject",
                "input ip saddr @v4_web meta l4proto tcp counter reject with tcp reset",
                "input ip saddr & 255.255.255.0 @v4c_web meta l4proto tcp counter reject with tcp reset",
                "input ip saddr @v4p_web meta l4proto tcp counter reject with tcp reset",
            ]
        );
        assert!(script.contains(&format!(
            "add chain inet portcullis forward {{ type filter hook forward priority -10; policy accept; comment \"{OWNER_MARK}\"; }}"
        )));
        assert!(script.contains(
            "add rule inet portcullis forward ip6 saddr @v6_dns udp dport { 53 } counter reject"
        ));
    }

    /// A restore empties every set of every jail set up, then adds, in one script.
    #[test]
    fn restore_script_empties_every_set_first() {
        let jails: BTreeSet<String> = ["deny".to_string(), "sshd".to_string()].into();
        let ops = [FwOp::Add {
            jail: "sshd".into(),
            addr: Cidr::new("203.0.113.5".parse().unwrap(), 32).unwrap(),
            timeout_ms: 60_000,
        }];
        let s = restore_script(&NftOptions::default(), &jails, &ops).unwrap();
        let flushes: Vec<&str> = s.lines().filter(|l| l.starts_with("flush set ")).collect();
        assert_eq!(flushes.len(), 16, "{s}");
        for set in ["v4_sshd", "v6p_sshd", "v4_deny", "v6n_deny"] {
            assert!(
                flushes.contains(&format!("flush set inet portcullis {set}").as_str()),
                "{s}"
            );
        }
        let add = s
            .find("add element inet portcullis v4_sshd")
            .expect("the ban");
        assert!(s[add..].contains("203.0.113.5 timeout 1m"), "{s}");
        assert!(!s[add..].contains("flush"), "flushed after the add:\n{s}");
        // a removal is the flush's: no add+delete after it
        let mut with_del = ops.to_vec();
        with_del.push(FwOp::Del {
            jail: "sshd".into(),
            addr: Cidr::new("198.51.100.64".parse().unwrap(), 26).unwrap(),
        });
        let s2 = restore_script(&NftOptions::default(), &jails, &with_del).unwrap();
        assert_eq!(s, s2);
        assert!(restore_script(
            &NftOptions::default(),
            &["bad name".to_string()].into(),
            &[]
        )
        .is_err());
    }

    #[test]
    fn setup_script_refuses_bad_input() {
        let existing = Existing::default();
        let opts = NftOptions::default();
        assert!(setup_script(&opts, &[sshd(), sshd()], &existing).is_err());
        let bad = jail("ssh d", None, Proto::Tcp, Action::Drop);
        assert!(setup_script(&opts, &[bad], &existing).is_err());
        for table in ["", "1x", "ip table", "t;flush ruleset"] {
            let opts = NftOptions {
                table: table.into(),
                ..NftOptions::default()
            };
            assert!(
                setup_script(&opts, &[sshd()], &existing).is_err(),
                "{table}"
            );
        }
    }

    #[test]
    fn batch_script_folds_ops_per_address() {
        let ops = [
            add("sshd", "192.0.2.1", 3_600_000),
            add("sshd", "2001:db8::1", 90_061_001),
            del("sshd", "192.0.2.2"),
            add("sshd", "192.0.2.3", 1000),
            del("sshd", "192.0.2.3"), // later op wins: not banned
            add("sshd", "::ffff:192.0.2.4", 1500), // IPv4-mapped goes to the IPv4 set
            add("sshd", "127.0.0.1", 1000), // never banned
            add("sshd", "192.0.2.5", 0), // already over: removed
        ];
        let script = batch_script(&NftOptions::default(), &ops).unwrap();
        let expected = "\
add element inet portcullis v4_sshd {
\t192.0.2.2,
\t192.0.2.3,
\t192.0.2.5
}
delete element inet portcullis v4_sshd {
\t192.0.2.2,
\t192.0.2.3,
\t192.0.2.5
}
add element inet portcullis v4_sshd {
\t192.0.2.1 timeout 1h,
\t192.0.2.4 timeout 1s500ms
}
add element inet portcullis v6_sshd {
\t2001:db8::1 timeout 1d1h1m1s1ms
}
";
        assert_eq!(script, expected);
        // a /64 goes to the plain /64 set (its network address), other prefixes to the
        // interval sets
        let script = batch_script(
            &NftOptions::default(),
            &[
                add("sshd", "2001:db8:5:6::/64", 1000),
                add("sshd", "198.51.100.0/24", PERMANENT),
                add("sshd", "2001:db8:7::/48", 1000),
                add("sshd", "2001:db8:8::/47", 1000),
            ],
        )
        .unwrap();
        assert_eq!(
            script,
            "\
add element inet portcullis v4c_sshd {
\t198.51.100.0
}
add element inet portcullis v6k_sshd {
\t2001:db8:7:: timeout 1s
}
add element inet portcullis v6n_sshd {
\t2001:db8:5:6:: timeout 1s
}
add element inet portcullis v6p_sshd {
\t2001:db8:8::/47 timeout 1s
}
"
        );
        assert_eq!(batch_script(&NftOptions::default(), &[]).unwrap(), "");
        assert!(batch_script(&NftOptions::default(), &[add("a b", "192.0.2.1", 1)]).is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(nft_duration(1), "1ms");
        assert_eq!(nft_duration(0), "1ms");
        assert_eq!(nft_duration(60_000), "1m");
        assert_eq!(nft_duration(MAX_TIMEOUT_MS), "3650d");
        for ms in [1, 999, 1000, 61_001, 86_400_000, 90_061_001, MAX_TIMEOUT_MS] {
            assert_eq!(parse_nft_duration(&nft_duration(ms)), Some(ms));
        }
        assert_eq!(parse_nft_duration("49d17h2m46s996ms"), Some(4_294_966_996));
        assert_eq!(parse_nft_duration("5x"), None);
        assert_eq!(parse_nft_duration("ms"), None);
    }

    #[test]
    fn parse_list_reads_our_sets_only() {
        let text = "\
table inet portcullis {
\tset v4_sshd {
\t\ttype ipv4_addr
\t\tflags timeout
\t\telements = { 192.0.2.1 timeout 1h expires 59m57s320ms,
\t\t\t     192.0.2.2 timeout 2s expires 1s996ms }
\t}

\tset v6_0-all {
\t\ttype ipv6_addr
\t\tflags timeout
\t\telements = { 2001:db8::1 timeout 10d expires 9d23h59m51s632ms }
\t}

\tset v6_empty {
\t\ttype ipv6_addr
\t\tflags timeout
\t}

\tset other {
\t\ttype ipv4_addr
\t\telements = { 198.51.100.1 }
\t}

\tchain input {
\t\ttype filter hook input priority -10; policy accept;
\t\tip saddr @v4_sshd tcp dport 22 counter packets 0 bytes 0 drop
\t}
}
";
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(
            parse_list(text).unwrap(),
            vec![
                ("sshd".into(), ip("192.0.2.1"), Some(3_597_320)),
                ("sshd".into(), ip("192.0.2.2"), Some(1996)),
                ("0-all".into(), ip("2001:db8::1"), Some(863_991_632)),
            ]
        );
        assert!(
            parse_list("table inet portcullis {\n\tset v4_x {\n\t\telements = { nonsense }\n")
                .is_err()
        );
    }

    #[test]
    fn parse_existing_reads_chains_and_set_types() {
        let json = r#"{"nftables": [{"metainfo": {"version": "1.0.6"}},
            {"table": {"family": "inet", "name": "portcullis", "handle": 23}},
            {"set": {"family": "inet", "name": "v4_ssh", "table": "portcullis", "type": "ipv4_addr", "handle": 2, "flags": ["timeout"]}},
            {"set": {"family": "inet", "name": "v6_ssh", "table": "portcullis", "type": "ipv4_addr", "handle": 3, "flags": ["timeout"]}},
            {"set": {"family": "inet", "name": "v4p_ssh", "table": "portcullis", "type": "ipv4_addr", "handle": 7, "flags": ["interval", "timeout"]}},
            {"set": {"family": "inet", "name": "v6_old", "table": "portcullis", "type": "ipv6_addr", "handle": 8, "flags": ["interval", "timeout"]}},
            {"set": {"family": "inet", "name": "v4_x", "table": "portcullis", "type": "ipv4_addr", "handle": 4}},
            {"set": {"family": "inet", "name": "misc", "table": "portcullis", "type": "ipv4_addr", "handle": 5, "flags": ["timeout"]}},
            {"chain": {"family": "inet", "table": "portcullis", "name": "input", "handle": 1, "type": "filter", "hook": "input", "prio": -10, "policy": "accept"}},
            {"rule": {"family": "inet", "table": "portcullis", "chain": "input", "handle": 6, "expr": []}},
            {"set": {"family": "inet", "name": "v4_ssh2", "table": "other", "type": "ipv4_addr", "handle": 2, "flags": ["timeout"]}},
            {"chain": {"family": "inet", "table": "other", "name": "output", "handle": 1}},
            {"chain": {"family": "ip", "table": "portcullis", "name": "output", "handle": 1}}]}"#;
        let existing = parse_existing("portcullis", json).unwrap();
        assert_eq!(existing.chains, ["input"]);
        assert_eq!(
            existing.sets,
            [
                ("v4_ssh".into(), true),
                ("v6_ssh".into(), false),
                ("v4p_ssh".into(), true),
                // the layout before plain sets: made again
                ("v6_old".into(), false),
                ("v4_x".into(), false),
                ("misc".into(), false)
            ]
        );
    }

    #[test]
    fn parse_chains_reads_one_table_and_its_marks() {
        let text = format!(
            "table inet filter {{\n\tchain input {{\n\t\tcomment \"{OWNER_MARK}\"\n\t\ttype filter hook input priority filter; policy accept;\n\t}}\n}}\n\
             table inet portcullis {{\n\tchain input {{\n\t\tcomment \"{OWNER_MARK}\"\n\t\ttype filter hook input priority filter - 10; policy accept;\n\t}}\n\
             \tchain rl_ssh {{\n\t}}\n}}\ntable inet spare {{\n\tchain forward {{\n\t\tcomment \"other\"\n\t}}\n}}\n"
        );
        assert_eq!(
            parse_chains("portcullis", &text),
            Some(vec![("input".into(), true), ("rl_ssh".into(), false)])
        );
        assert_eq!(
            parse_chains("spare", &text),
            Some(vec![("forward".into(), false)])
        );
        assert_eq!(parse_chains("port", &text), None);
        assert_eq!(parse_chains("portcullis", ""), None);
    }

    #[test]
    fn marked_tables_are_those_with_the_mark_or_the_default_name() {
        let text = format!(
            "table inet filter {{\n\tchain input {{\n\t\ttype filter hook input priority filter; policy accept;\n\t}}\n}}\n\
             table inet pc2 {{\n\tchain input {{\n\t\tcomment \"{OWNER_MARK}\"\n\t}}\n\tchain forward {{\n\t\tcomment \"{OWNER_MARK}\"\n\t}}\n}}\n\
             table inet portcullis {{\n\tchain input {{\n\t}}\n}}\ntable inet spare {{\n\tchain x {{\n\t\tcomment \"other\"\n\t}}\n}}\n"
        );
        assert_eq!(marked_tables(&text), ["pc2", "portcullis"]);
        assert!(marked_tables("").is_empty());
    }

    // ---- Tests that run nft, each in network namespaces of its own. ----

    /// A network namespace, deleted on drop (also when the test fails).
    struct NetNs(String);

    impl NetNs {
        /// A new namespace; fails the test loudly unless we are root (as the README says:
        /// these tests are not skipped).
        fn new() -> NetNs {
            // SAFETY: geteuid has no preconditions.
            assert!(
                unsafe { libc::geteuid() } == 0,
                "this test needs root (network namespaces and nftables): run ./test.sh as root"
            );
            static COUNT: AtomicU32 = AtomicU32::new(0);
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .subsec_nanos();
            let name = format!(
                "pc-test-{}-{}-{nanos:x}",
                std::process::id(),
                COUNT.fetch_add(1, Ordering::Relaxed)
            );
            sh(&["ip", "netns", "add", &name]);
            NetNs(name)
        }

        fn nft_command(&self) -> Vec<String> {
            ["ip", "netns", "exec", &self.0, "nft"]
                .map(String::from)
                .to_vec()
        }

        fn nftables(&self) -> Nftables {
            Nftables::new(NftOptions {
                command: self.nft_command(),
                ..NftOptions::default()
            })
        }

        /// Runs `nft args` in the namespace and returns its stdout.
        fn nft(&self, args: &[&str]) -> String {
            let mut all = vec!["ip", "netns", "exec", &self.0, "nft"];
            all.extend_from_slice(args);
            sh(&all)
        }
    }

    impl Drop for NetNs {
        fn drop(&mut self) {
            let _ = Command::new("ip")
                .args(["netns", "delete", &self.0])
                .status();
        }
    }

    fn sh(args: &[&str]) -> String {
        let out = Command::new(args[0]).args(&args[1..]).output().unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn sorted(mut v: Vec<(String, IpAddr, Option<i64>)>) -> Vec<(String, IpAddr, Option<i64>)> {
        v.sort();
        v
    }

    /// Drops the remaining times, after checking each is within 10 s below `expect_ms`.
    fn without_times(
        v: Vec<(String, IpAddr, Option<i64>)>,
        expect_ms: i64,
    ) -> Vec<(String, IpAddr)> {
        for (jail, addr, left) in &v {
            let left = left.unwrap_or_else(|| panic!("{jail} {addr} has no timeout"));
            assert!(
                left <= expect_ms && left > expect_ms - 10_000,
                "{jail} {addr}: {left} ms left"
            );
        }
        sorted(v).into_iter().map(|(j, a, _)| (j, a)).collect()
    }

    #[test]
    #[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
    fn lifecycle_in_a_netns() {
        let ns = NetNs::new();
        let mut fw = ns.nftables();
        fw.setup(&[sshd(), all_ports()]).unwrap();
        let hour = 3_600_000;
        fw.apply(&[
            add("sshd", "192.0.2.1", hour),
            add("sshd", "2001:db8::1", hour),
            add("0-all", "198.51.100.1", hour),
            add("0-all", "2001:db8::2", hour),
            del("sshd", "203.0.113.1"), // not there: no error
        ])
        .unwrap();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let all = vec![
            ("0-all".to_string(), ip("198.51.100.1")),
            ("0-all".to_string(), ip("2001:db8::2")),
            ("sshd".to_string(), ip("192.0.2.1")),
            ("sshd".to_string(), ip("2001:db8::1")),
        ];
        assert_eq!(without_times(fw.list().unwrap(), hour), all);

        fw.apply(&[del("sshd", "192.0.2.1"), del("sshd", "192.0.2.1")])
            .unwrap();
        let expected: Vec<_> = all
            .iter()
            .filter(|(_, a)| *a != ip("192.0.2.1"))
            .cloned()
            .collect();
        assert_eq!(without_times(fw.list().unwrap(), hour), expected);

        // Setup again (a restart): elements stay. Then without 0-all and at another priority:
        // its sets go, sshd keeps its bans.
        let mut fw = ns.nftables();
        fw.setup(&[sshd(), all_ports()]).unwrap();
        assert_eq!(without_times(fw.list().unwrap(), hour), expected);
        let mut fw = Nftables::new(NftOptions {
            command: ns.nft_command(),
            priority: -50,
            forward: true,
            ..NftOptions::default()
        });
        fw.setup(&[sshd()]).unwrap();
        assert_eq!(
            without_times(fw.list().unwrap(), hour),
            vec![("sshd".to_string(), ip("2001:db8::1"))]
        );
        let text = ns.nft(&["list", "table", "inet", "portcullis"]);
        assert!(
            text.contains("type filter hook input priority -50; policy accept;"),
            "{text}"
        );
        assert!(text.contains("hook forward"), "{text}");
        assert!(!text.contains("0-all"), "{text}");
        assert!(
            fw.apply(&[add("0-all", "192.0.2.9", hour)]).is_err(),
            "jail no longer set up"
        );

        // intact while our base chains are there; a chain deleted by hand is seen
        assert!(fw.intact().unwrap());
        ns.nft(&["delete", "chain", "inet", "portcullis", "forward"]);
        assert!(!fw.intact().unwrap());
        fw.setup(&[sshd()]).unwrap();
        assert!(fw.intact().unwrap());

        fw.teardown().unwrap();
        assert!(!ns.nft(&["list", "tables"]).contains("portcullis"));
        fw.teardown().unwrap(); // nothing left to delete: still fine
        assert!(fw.list().unwrap().is_empty());
    }

    #[test]
    #[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
    fn a_table_not_made_by_us_is_never_taken_over() {
        let ns = NetNs::new();
        let with_table = |table: &str| {
            Nftables::new(NftOptions {
                command: ns.nft_command(),
                table: table.into(),
                ..NftOptions::default()
            })
        };
        let load = |script: &str| {
            let out = Command::new("ip")
                .args(["netns", "exec", &ns.0, "nft", "-f", "-"])
                .stdin(Stdio::piped())
                .spawn()
                .and_then(|mut c| {
                    c.stdin.take().unwrap().write_all(script.as_bytes())?;
                    c.wait()
                })
                .unwrap();
            assert!(out.success(), "{script}");
        };
        // the host's own ruleset: Portcullis configured with `table = "filter"` must leave it
        // as it is, at setup and at teardown
        load(HOST_FILTER);
        let before = ns.nft(&["list", "ruleset"]);
        assert_eq!(
            ownership(
                "filter",
                &ns.nft(&["-t", "list", "table", "inet", "filter"])
            ),
            Owner::Foreign(vec![
                "set admins".into(),
                "chain input".into(),
                "chain forward".into()
            ])
        );
        let mut fw = with_table("filter");
        let e = format!("{:#}", fw.setup(&[sshd()]).unwrap_err());
        assert!(
            e.contains("table inet filter exists and was not made by Portcullis")
                && e.contains("set admins, chain input, chain forward"),
            "{e}"
        );
        let e = format!("{:#}", fw.teardown().unwrap_err());
        assert!(e.contains("not made by Portcullis"), "{e}");
        assert_eq!(ns.nft(&["list", "ruleset"]), before);

        // an empty table of that name is made again, marked, and then is ours
        load("table inet spare {\n}\n");
        let mut fw = with_table("spare");
        fw.setup(&[sshd()]).unwrap();
        let text = ns.nft(&["list", "table", "inet", "spare"]);
        assert!(
            text.contains(&format!("comment \"{OWNER_MARK}\"")),
            "{text}"
        );
        fw.apply(&[add("sshd", "203.0.113.9", 3_600_000)]).unwrap();
        let mut fw = with_table("spare");
        fw.setup(&[sshd()]).unwrap();
        assert_eq!(
            fw.list().unwrap().len(),
            1,
            "a restart keeps the bans in its sets"
        );
        fw.teardown().unwrap();
        assert!(!ns.nft(&["list", "tables"]).contains("spare"));

        // a table of a version that marked the table only, not its chains: still ours (read
        // whole), its bans kept, and its chains marked from then on
        load(&format!(
            "table inet older {{\n\tcomment \"{OWNER_MARK}\"\n\tset v4_sshd {{\n\t\ttype ipv4_addr\n\t\tflags timeout\n\t\telements = {{ 203.0.113.5 timeout 1h }}\n\t}}\n\tchain input {{\n\t\ttype filter hook input priority -10; policy accept;\n\t}}\n}}\n"
        ));
        let mut fw = with_table("older");
        fw.setup(&[sshd()]).unwrap();
        assert_eq!(fw.list().unwrap().len(), 1, "its ban is kept");
        let chains = ns.nft(&["-t", "list", "chains", "inet"]);
        assert_eq!(
            parse_chains("older", &chains),
            Some(vec![("input".into(), true)]),
            "{chains}"
        );
        fw.teardown().unwrap();

        // `inet portcullis` of a version before the mark: taken as ours, rebuilt
        load(&HOST_FILTER.replace("table inet filter", "table inet portcullis"));
        let mut fw = ns.nftables();
        fw.setup(&[sshd()]).unwrap();
        let text = ns.nft(&["list", "table", "inet", "portcullis"]);
        assert!(
            !text.contains("admins") && !text.contains("policy drop"),
            "{text}"
        );
        // the host's table never changed
        assert!(ns.nft(&["list", "ruleset"]).contains(&before));
        fw.teardown().unwrap();
    }

    #[test]
    #[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
    fn timeouts_expire_in_the_kernel_and_re_adding_replaces_them() {
        let ns = NetNs::new();
        let mut fw = ns.nftables();
        fw.setup(&[sshd()]).unwrap();
        fw.apply(&[
            add("sshd", "192.0.2.7", 2000),
            add("sshd", "2001:db8::7", 3_600_000),
        ])
        .unwrap();
        // Adding what is there sets its new timeout, here a shorter one.
        fw.apply(&[add("sshd", "2001:db8::7", 2000)]).unwrap();
        let listed = fw.list().unwrap();
        assert_eq!(listed.len(), 2, "{listed:?}");
        assert!(
            listed
                .iter()
                .all(|(_, _, left)| left.is_some_and(|ms| ms <= 2000)),
            "{listed:?}"
        );
        std::thread::sleep(Duration::from_millis(3000));
        assert_eq!(fw.list().unwrap(), vec![]);
    }

    #[test]
    fn ten_thousand_mixed_addresses_in_one_batch() {
        let ns = NetNs::new();
        let mut fw = ns.nftables();
        fw.setup(&[sshd()]).unwrap();
        let ops = many_addresses(10_000).map(|addr| FwOp::Add {
            jail: "sshd".into(),
            addr: Cidr::host(addr),
            timeout_ms: 600_000,
        });
        let ops: Vec<FwOp> = ops.collect();
        fw.apply(&ops).unwrap();
        assert_eq!(fw.list().unwrap().len(), 10_000);
        // Half of them again (timeouts renewed) plus deleting the other half, in one batch.
        let mut again: Vec<FwOp> = ops[..5000].to_vec();
        again.extend(ops[5000..].iter().map(|op| match op {
            FwOp::Add { jail, addr, .. } => FwOp::Del {
                jail: jail.clone(),
                addr: *addr,
            },
            del => del.clone(),
        }));
        fw.apply(&again).unwrap();
        assert_eq!(fw.list().unwrap().len(), 5000);
    }

    /// The 768 IPv4 documentation addresses, then IPv6 ones from 2001:db8::/32.
    fn many_addresses(n: u32) -> impl Iterator<Item = IpAddr> {
        let v4 = ["192.0.2", "198.51.100", "203.0.113"]
            .into_iter()
            .flat_map(|net| (0..256).map(move |i| format!("{net}.{i}").parse::<IpAddr>().unwrap()));
        let v6 = (0u32..).map(|i| {
            format!("2001:db8::{:x}:{:x}", i >> 16, i & 0xffff)
                .parse()
                .unwrap()
        });
        v4.chain(v6).take(n as usize)
    }

    #[test]
    fn hundred_thousand_adds_in_one_transaction() {
        let ns = NetNs::new();
        let mut fw = ns.nftables();
        fw.setup(&[sshd()]).unwrap();
        let ops: Vec<FwOp> = many_addresses(100_000)
            .map(|addr| FwOp::Add {
                jail: "sshd".into(),
                addr: Cidr::host(addr),
                timeout_ms: 600_000,
            })
            .collect();
        let t = Instant::now();
        let script = batch_script(&fw.opts, &ops).unwrap();
        let build = t.elapsed();
        let t = Instant::now();
        fw.run_script(&script, "add 100000").unwrap();
        let nft = t.elapsed();
        let t = Instant::now();
        let listed = fw.list().unwrap();
        let list = t.elapsed();
        assert_eq!(listed.len(), 100_000);
        eprintln!(
            "100000 adds: script {build:?} ({} bytes), nft -f {nft:?}; list {list:?}",
            script.len()
        );
    }

    /// Two namespaces joined by a veth pair: a client bans-to-be at 192.0.2.1 / 2001:db8::1,
    /// a server with Portcullis at .2 / ::2. Nothing listens, so an allowed connection is
    /// refused at once and a dropped one times out.
    #[test]
    fn bans_block_packets_between_namespaces() {
        let (server, client) = (NetNs::new(), NetNs::new());
        sh(&[
            "ip", "-n", &server.0, "link", "add", "pc0", "type", "veth", "peer", "name", "pc1",
            "netns", &client.0,
        ]);
        for (ns, dev, last) in [(&server, "pc0", 2), (&client, "pc1", 1)] {
            sh(&[
                "ip",
                "-n",
                &ns.0,
                "addr",
                "add",
                &format!("192.0.2.{last}/24"),
                "dev",
                dev,
            ]);
            sh(&[
                "ip",
                "-n",
                &ns.0,
                "addr",
                "add",
                &format!("2001:db8::{last}/64"),
                "dev",
                dev,
                "nodad",
            ]);
            sh(&["ip", "-n", &ns.0, "link", "set", dev, "up"]);
        }
        // Exit status of a connection attempt from the client: 1 refused, 124 timed out.
        let connect = |host: &str, port: u16| {
            let script = format!("exec 3<>/dev/tcp/{host}/{port}");
            Command::new("ip")
                .args([
                    "netns", "exec", &client.0, "timeout", "1", "bash", "-c", &script,
                ])
                .stderr(std::process::Stdio::null())
                .status()
                .unwrap()
                .code()
        };
        let mut fw = server.nftables();
        fw.setup(&[sshd()]).unwrap();
        assert_eq!(connect("192.0.2.2", 22), Some(1));
        assert_eq!(connect("2001:db8::2", 22), Some(1));
        fw.apply(&[
            add("sshd", "192.0.2.1", 60_000),
            add("sshd", "2001:db8::1", 60_000),
        ])
        .unwrap();
        assert_eq!(connect("192.0.2.2", 22), Some(124), "banned: dropped");
        assert_eq!(connect("2001:db8::2", 22), Some(124), "banned: dropped");
        assert_eq!(connect("192.0.2.2", 23), Some(1), "other ports stay open");
        fw.apply(&[del("sshd", "192.0.2.1")]).unwrap();
        assert_eq!(connect("192.0.2.2", 22), Some(1), "unbanned");
        // An all-ports reject jail answers with a reset: refused at once, on any port.
        fw.setup(&[sshd(), all_ports()]).unwrap();
        fw.apply(&[add("0-all", "192.0.2.1", 60_000)]).unwrap();
        assert_eq!(connect("192.0.2.2", 23), Some(1));
        let text = server.nft(&["list", "chain", "inet", "portcullis", "input"]);
        let hits = text
            .lines()
            .find(|l| l.contains("@v4_0-all meta l4proto tcp"))
            .unwrap();
        assert!(!hits.contains("packets 0 "), "{hits}");
    }
}

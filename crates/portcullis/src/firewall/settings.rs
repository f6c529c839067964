//! The configuration of the backends other than nftables: the `[firewall.iptables]`,
//! `[firewall.route]`, `[firewall.hosts_deny]` and `[firewall.command]` tables, and the
//! backend names of `[firewall] backend` and `[[jail]] backend`. Raw (as written, with
//! places for errors) and validated forms; config.rs only merges them file by file.

use std::ops::Range;
use std::path::PathBuf;

use anyhow::Result;
use serde::Deserialize;
use toml::Spanned;

use super::command::{Template, Var};

/// Every backend, as named in the configuration.
pub const BACKENDS: &[&str] = &[
    "nftables",
    "iptables",
    "ipset",
    "route",
    "hosts-deny",
    "command",
    "null",
];

/// What each backend is for, for the unknown-backend error.
pub const BACKENDS_HELP: &str = "use one of: \"nftables\" (default), \"iptables\", \"ipset\", \
     \"route\", \"hosts-deny\", \"command\", \"null\" (dry run: decide and record, block nothing)";

/// Builds an error naming the file, line and key: `(span, key, message)`.
pub type ErrAt<'a> = &'a dyn Fn(Range<usize>, &str, String) -> anyhow::Error;

/// Checks one backend name.
pub fn check_backend(name: &str) -> std::result::Result<(), String> {
    if BACKENDS.contains(&name) {
        return Ok(());
    }
    // fail2ban's banaction names (review 55: "not a known backend" alone)
    let ours = match name {
        n if n.starts_with("nftables") => Some("nftables"),
        n if n.starts_with("iptables-ipset") => Some("ipset"),
        n if n.starts_with("iptables") => Some("iptables"),
        "hostsdeny" => Some("hosts-deny"),
        "route" => Some("route"),
        _ => None,
    };
    if let Some(b) = ours {
        return Err(format!(
            "{name:?} is fail2ban's banaction; in Portcullis it is backend = {b:?} (every ban is of the jail's `ports`, or all ports with ports = \"all\"); {BACKENDS_HELP}"
        ));
    }
    if name == "ufw" || name.starts_with("firewallcmd") || name.starts_with("shorewall") {
        return Err(format!(
            "{name:?} is fail2ban's banaction for a firewall manager Portcullis does not drive; backend = \"nftables\" works beside it (a table of its own, which the manager's rules do not touch); {BACKENDS_HELP}"
        ));
    }
    Err(format!("{name:?} is not a known backend; {BACKENDS_HELP}"))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawIptables {
    chain: Option<Spanned<String>>,
    hooks: Option<Spanned<Vec<String>>>,
    /// `auto` (default: `iptables-restore`, whatever Debian's alternatives point to), `nft`
    /// or `legacy`.
    variant: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRoute {
    #[serde(rename = "type")]
    kind: Option<Spanned<String>>,
    /// The routing protocol number that marks our routes (default 211).
    proto: Option<Spanned<i64>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHostsDeny {
    path: Option<Spanned<String>>,
    daemons: Option<Spanned<Vec<String>>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCommand {
    ban: Option<Spanned<Vec<String>>>,
    unban: Option<Spanned<Vec<String>>>,
    check: Option<Spanned<Vec<String>>>,
    timeout: Option<Spanned<String>>,
    retries: Option<Spanned<i64>>,
}

/// `[firewall.iptables]` (also the match rules of ipset).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IptablesConfig {
    pub chain: String,
    pub hooks: Vec<String>,
    pub variant: String,
}

impl Default for IptablesConfig {
    fn default() -> Self {
        IptablesConfig {
            chain: "PORTCULLIS".into(),
            hooks: vec!["INPUT".into()],
            variant: "auto".into(),
        }
    }
}

/// `[firewall.route]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteConfig {
    /// `blackhole`, `unreachable` or `prohibit`.
    pub kind: String,
    /// Our routing protocol number (`proto` of `ip route`).
    pub proto: u8,
}

impl Default for RouteConfig {
    fn default() -> Self {
        RouteConfig {
            kind: "blackhole".into(),
            proto: super::route::DEFAULT_PROTO,
        }
    }
}

/// `[firewall.hosts_deny]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostsDenyConfig {
    pub path: PathBuf,
    pub daemons: Vec<String>,
}

impl Default for HostsDenyConfig {
    fn default() -> Self {
        HostsDenyConfig {
            path: PathBuf::from("/etc/hosts.deny"),
            daemons: vec!["sshd".into()],
        }
    }
}

/// `[firewall.command]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandConfig {
    pub ban: Option<Template>,
    pub unban: Option<Template>,
    pub check: Option<Template>,
    /// Per run, milliseconds.
    pub timeout_ms: i64,
    /// Runs after a failed one (with backoff), 0 to 5.
    pub retries: u32,
}

impl Default for CommandConfig {
    fn default() -> Self {
        CommandConfig {
            ban: None,
            unban: None,
            check: None,
            timeout_ms: 10_000,
            retries: 2,
        }
    }
}

/// All backend settings but nftables' (those stay in config.rs's `FirewallConfig`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BackendsConfig {
    pub iptables: IptablesConfig,
    pub route: RouteConfig,
    pub hosts_deny: HostsDenyConfig,
    pub command: CommandConfig,
}

/// An iptables chain name we create: letters, digits, `_`, `-`, at most 28 characters,
/// not a built-in target.
pub fn check_chain(name: &str) -> std::result::Result<(), String> {
    let ok = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    let reserved = [
        "INPUT",
        "OUTPUT",
        "FORWARD",
        "PREROUTING",
        "POSTROUTING",
        "ACCEPT",
        "DROP",
        "REJECT",
        "RETURN",
        "DOCKER-USER",
        "DOCKER",
    ];
    if name.is_empty()
        || name.len() > 28
        || !name.chars().all(ok)
        || !name.starts_with(|c: char| c.is_ascii_alphabetic())
        || reserved.contains(&name)
    {
        return Err(format!("{name:?} is not a chain of our own; use up to 28 letters, digits, '_' or '-', starting with a letter, not a built-in chain or target (default \"PORTCULLIS\")"));
    }
    Ok(())
}

/// A tcp_wrappers daemon name: `ALL`, or a process name such as `sshd`, `in.ftpd`,
/// `vsftpd@192.0.2.1`.
fn check_daemon(name: &str) -> bool {
    let ok = |c: char| c.is_ascii_alphanumeric() || "._-@".contains(c);
    !name.is_empty() && name.len() <= 64 && name.chars().all(ok)
}

impl BackendsConfig {
    /// Takes the keys one file sets (later files win, key by key).
    pub fn merge(
        &mut self,
        err: ErrAt,
        ipt: Option<RawIptables>,
        route: Option<RawRoute>,
        hd: Option<RawHostsDeny>,
        cmd: Option<RawCommand>,
    ) -> Result<()> {
        if let Some(r) = ipt {
            if let Some(c) = r.chain {
                check_chain(c.get_ref())
                    .map_err(|e| err(c.span(), "firewall.iptables.chain", e))?;
                self.iptables.chain = c.into_inner();
            }
            if let Some(h) = r.hooks {
                let allowed = ["INPUT", "FORWARD", "DOCKER-USER"];
                if h.get_ref().is_empty() {
                    return Err(err(
                        h.span(),
                        "firewall.iptables.hooks",
                        "give at least one hook, e.g. [\"INPUT\"]".into(),
                    ));
                }
                if let Some(bad) = h.get_ref().iter().find(|x| !allowed.contains(&x.as_str())) {
                    return Err(err(h.span(), "firewall.iptables.hooks", format!("{bad:?} is not a hook we jump from; use \"INPUT\" (this host), \"FORWARD\" (routed traffic, VMs) or \"DOCKER-USER\" (Docker containers)")));
                }
                self.iptables.hooks = h.into_inner();
            }
            if let Some(v) = r.variant {
                if !["auto", "nft", "legacy"].contains(&v.get_ref().as_str()) {
                    return Err(err(v.span(), "firewall.iptables.variant", format!("{:?} is not valid; use \"auto\" (iptables-restore as installed), \"nft\" (iptables-nft) or \"legacy\" (iptables-legacy)", v.get_ref())));
                }
                self.iptables.variant = v.into_inner();
            }
        }
        if let Some(r) = route {
            if let Some(k) = r.kind {
                if !["blackhole", "unreachable", "prohibit"].contains(&k.get_ref().as_str()) {
                    return Err(err(k.span(), "firewall.route.type", format!("{:?} is not valid; use \"blackhole\" (drop silently), \"unreachable\" or \"prohibit\" (answer with ICMP)", k.get_ref())));
                }
                self.route.kind = k.into_inner();
            }
            if let Some(p) = r.proto {
                match u8::try_from(*p.get_ref()) {
                    Ok(n) if (5..=252).contains(&n) => self.route.proto = n,
                    _ => return Err(err(p.span(), "firewall.route.proto", format!("{} is not valid; use a routing protocol number from 5 to 252 that nothing else on this host uses (default {})", p.get_ref(), super::route::DEFAULT_PROTO))),
                }
            }
        }
        if let Some(r) = hd {
            if let Some(p) = r.path {
                let path = PathBuf::from(p.get_ref());
                if !path.is_absolute() || path.file_name().is_none() {
                    return Err(err(
                        p.span(),
                        "firewall.hosts_deny.path",
                        format!(
                            "{:?} must be an absolute file path such as \"/etc/hosts.deny\"",
                            p.get_ref()
                        ),
                    ));
                }
                self.hosts_deny.path = path;
            }
            if let Some(d) = r.daemons {
                if d.get_ref().is_empty() {
                    return Err(err(
                        d.span(),
                        "firewall.hosts_deny.daemons",
                        "give at least one daemon, e.g. [\"sshd\"] or [\"ALL\"]".into(),
                    ));
                }
                if let Some(bad) = d.get_ref().iter().find(|x| !check_daemon(x)) {
                    return Err(err(d.span(), "firewall.hosts_deny.daemons", format!("{bad:?} is not a tcp_wrappers daemon name; use process names such as \"sshd\", \"vsftpd\", \"in.ftpd\", or \"ALL\"")));
                }
                self.hosts_deny.daemons = d.into_inner();
            }
        }
        if let Some(r) = cmd {
            for (key, raw, slot) in [
                ("firewall.command.ban", r.ban, &mut self.command.ban),
                ("firewall.command.unban", r.unban, &mut self.command.unban),
                ("firewall.command.check", r.check, &mut self.command.check),
            ] {
                if let Some(t) = raw {
                    let parsed = Template::parse(t.get_ref()).map_err(|e| err(t.span(), key, e))?;
                    // the address reaches the program in its arguments only: without it
                    // every run got the same words, and sshblack's `ipaddress` (or fail2ban's
                    // `<ip>`) copied over reached iptables literally, blocking nobody while
                    // the daemon said banned (review 61)
                    if !parsed.uses(Var::Addr) && !parsed.uses(Var::Cidr) {
                        let stand_in = t
                            .get_ref()
                            .iter()
                            .skip(1)
                            .flat_map(|a| {
                                ["ipaddress", "<ip>", "<ADDR>", "$IP", "%ip"]
                                    .into_iter()
                                    .filter(move |w| a.contains(w))
                            })
                            .next();
                        let hint = match stand_in {
                            Some(w) => format!(" (`{w}` is another tool's stand-in for the address, passed here as the word itself)"),
                            None => String::new(),
                        };
                        return Err(err(
                            t.span(),
                            key,
                            format!("the template never gives the address{hint}: put `{{cidr}}` (203.0.113.5/32, 2001:db8:5:6::/64) or `{{addr}}/{{prefix}}` where the program takes it, e.g. [\"/sbin/iptables\", \"-I\", \"BLACKLIST\", \"-s\", \"{{cidr}}\", \"-j\", \"DROP\"]"),
                        ));
                    }
                    *slot = Some(parsed);
                }
            }
            if let Some(t) = r.timeout {
                match portcullis_core::duration::parse(t.get_ref()) {
                    Ok(ms) if (100..=600_000).contains(&ms) => self.command.timeout_ms = ms,
                    _ => return Err(err(t.span(), "firewall.command.timeout", format!("{:?} is not valid; use a duration from \"100ms\" to \"10m\" (default \"10s\")", t.get_ref()))),
                }
            }
            if let Some(n) = r.retries {
                match u32::try_from(*n.get_ref()) {
                    Ok(n) if n <= 5 => self.command.retries = n,
                    _ => {
                        return Err(err(
                            n.span(),
                            "firewall.command.retries",
                            format!("{} is not valid; use 0 to 5 (default 2)", n.get_ref()),
                        ))
                    }
                }
            }
        }
        Ok(())
    }
}

/// The backends `jails` use (each jail's own list, or `default`), sorted, deduplicated.
pub fn used_backends<'a>(
    default: &'a str,
    jails: impl Iterator<Item = &'a [String]>,
) -> Vec<String> {
    let mut v: Vec<String> = vec![default.to_string()];
    for b in jails {
        v.extend(b.iter().cloned());
    }
    v.sort();
    v.dedup();
    v
}

/// What a configuration needs before it can run: the programs of its backends, a
/// `ban` template for `command`, a writable directory for hosts-deny. Run by
/// `check-config` and at start; the messages say what to install or change.
pub fn preflight(backends: &[String], cfg: &BackendsConfig) -> Result<()> {
    let need = |prog: &str, pkg: &str, backend: &str| -> Result<()> {
        if super::find_program(prog).is_none() {
            anyhow::bail!("firewall backend {backend:?} needs `{prog}`, which is not installed (Debian: apt install {pkg})");
        }
        Ok(())
    };
    for b in backends {
        match b.as_str() {
            "nftables" => need("nft", "nftables", b)?,
            "iptables" | "ipset" => {
                for (p, _) in super::iptables::programs(&cfg.iptables.variant) {
                    need(&p, "iptables", b)?;
                }
                if b == "ipset" {
                    need("ipset", "ipset", b)?;
                }
            }
            "route" => need("ip", "iproute2", b)?,
            "hosts-deny" => super::hosts_deny::check_writable(&cfg.hosts_deny.path)?,
            "command" => {
                let c = &cfg.command;
                let Some(ban) = &c.ban else {
                    anyhow::bail!("firewall backend \"command\" needs [firewall.command] ban = [\"/path/to/program\", \"{{addr}}\", ...]");
                };
                for t in [Some(ban), c.unban.as_ref(), c.check.as_ref()]
                    .into_iter()
                    .flatten()
                {
                    t.check_program()?;
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// Warnings about a configuration's backends (sizes where a backend degrades).
pub fn warnings(backends: &[String]) -> Vec<String> {
    let mut w = Vec::new();
    if backends.iter().any(|b| b == "route") {
        w.push("backend \"route\" blocks all traffic with a banned address (routes know no ports), whatever the jail's `ports`".to_string());
    }
    w
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_names() {
        assert!(check_chain("PORTCULLIS").is_ok());
        assert!(check_chain("pc-1_x").is_ok());
        for bad in ["", "INPUT", "DROP", "a b", "1abc", &"x".repeat(29), "a;b"] {
            assert!(check_chain(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn daemon_names() {
        for ok in ["sshd", "ALL", "in.ftpd", "vsftpd@192.0.2.1"] {
            assert!(check_daemon(ok), "{ok}");
        }
        for bad in ["", "sshd:", "a b", "sshd,x", "x\ny"] {
            assert!(!check_daemon(bad), "{bad}");
        }
    }
}

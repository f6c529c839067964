//! Kernel rate limits (`[[ratelimit]]`, seed 004's `recent` script): more than `hits` new
//! connections from one source within `seconds` are dropped (or rejected) by the kernel,
//! no log involved. IPv6 sources are counted per /64 (one host usually holds a whole /64).
//! Loopback, the host's own addresses and the `ignore` list are exempt: a rule returning
//! them comes first.
//!
//! * nftables: a dynamic set per limit and family, `update @rl4_NAME { ip saddr limit rate
//!   over H/UNIT burst H packets } counter drop`, in a chain `rl_NAME` jumped to for new
//!   connections to the ports ([`nft_script`]).
//! * iptables / ipset: a `hashlimit` rule at the head of our chain, after `RETURN` rules
//!   for the exempt sources ([`ipt_rules`]).
//!
//! `status` shows how many packets each limit dropped.

use std::fmt::Write as _;
use std::net::IpAddr;

use anyhow::Result;
use serde::Deserialize;
use toml::Spanned;

use super::settings::ErrAt;
use super::{Action, Proto};

/// One validated `[[ratelimit]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimit {
    /// `[A-Za-z0-9_-]`, at most 20 characters.
    pub name: String,
    pub ports: Vec<(u16, u16)>,
    pub proto: Proto,
    pub hits: u32,
    pub seconds: u32,
    pub action: Action,
}

/// The limits and the sources exempt from them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RateLimits {
    pub limits: Vec<RateLimit>,
    /// Address and prefix length: loopback, own addresses, `ignore`.
    pub exempt: Vec<(IpAddr, u8)>,
}

/// Parses one entry of a `ports` list, as jails do.
pub type PortParser<'a> = &'a dyn Fn(&toml::Value) -> std::result::Result<(u16, u16), String>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRatelimit {
    name: Spanned<String>,
    ports: Spanned<Vec<toml::Value>>,
    protocol: Option<Spanned<String>>,
    hits: Spanned<i64>,
    seconds: Spanned<i64>,
    action: Option<Spanned<String>>,
}

impl RawRatelimit {
    /// The name as written (later files replace a limit of the same name).
    pub fn name(&self) -> &str {
        self.name.get_ref()
    }

    /// Validates; `port` parses one port entry as jails do.
    pub fn validate(self, err: ErrAt, port: PortParser) -> Result<RateLimit> {
        let n = self.name.get_ref();
        let ok = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
        if n.is_empty() || n.len() > 20 || !n.chars().all(ok) {
            return Err(err(
                self.name.span(),
                "ratelimit.name",
                format!("{n:?} is not valid; use 1-20 letters, digits, '-' or '_'"),
            ));
        }
        let mut ports = Vec::new();
        for p in self.ports.get_ref() {
            ports.push(port(p).map_err(|e| err(self.ports.span(), "ratelimit.ports", e))?);
        }
        if ports.is_empty() {
            return Err(err(
                self.ports.span(),
                "ratelimit.ports",
                "give the ports to limit, e.g. [22]".into(),
            ));
        }
        let proto = match self.protocol.as_ref().map(|p| p.get_ref().as_str()) {
            None | Some("tcp") => Proto::Tcp,
            Some("udp") => Proto::Udp,
            Some("both") => Proto::Both,
            Some(o) => {
                return Err(err(
                    self.protocol.as_ref().map_or(0..0, |p| p.span()),
                    "ratelimit.protocol",
                    format!("{o:?} is not valid; use tcp, udp or both"),
                ))
            }
        };
        let hits = match u32::try_from(*self.hits.get_ref()) {
            Ok(h) if (1..=10_000).contains(&h) => h,
            _ => {
                return Err(err(
                    self.hits.span(),
                    "ratelimit.hits",
                    format!(
                        "{} is not valid; use 1 to 10000 new connections",
                        self.hits.get_ref()
                    ),
                ))
            }
        };
        let seconds = match u32::try_from(*self.seconds.get_ref()) {
            Ok(s) if (1..=86_400).contains(&s) => s,
            _ => {
                return Err(err(
                    self.seconds.span(),
                    "ratelimit.seconds",
                    format!(
                        "{} is not valid; use 1 to 86400 seconds",
                        self.seconds.get_ref()
                    ),
                ))
            }
        };
        let action = match self.action.as_ref().map(|a| a.get_ref().as_str()) {
            None | Some("drop") => Action::Drop,
            Some("reject") => Action::Reject,
            Some(o) => {
                return Err(err(
                    self.action.as_ref().map_or(0..0, |a| a.span()),
                    "ratelimit.action",
                    format!("{o:?} is not valid; use drop or reject"),
                ))
            }
        };
        Ok(RateLimit {
            name: n.clone(),
            ports,
            proto,
            hits,
            seconds,
            action,
        })
    }
}

/// `hits` per `seconds` as an integer rate and a unit both nft and hashlimit know: the
/// smallest unit in which it is a whole number (rounded up in days).
pub fn rate(hits: u32, seconds: u32) -> (u64, &'static str) {
    for (unit_s, unit) in [(1u64, "second"), (60, "minute"), (3600, "hour")] {
        let r = u64::from(hits) * unit_s;
        if r % u64::from(seconds) == 0 {
            return (r / u64::from(seconds), unit);
        }
    }
    let r = (u64::from(hits) * 86_400).div_ceil(u64::from(seconds));
    (r, "day")
}

/// A port list as text: `22, 8000-8080` (`sep` ", ", `range` "-"), `22,8000:8080` for
/// iptables; also what `check-config` and `portcullis filters` print (",", "-").
pub fn ports_text(ports: &[(u16, u16)], sep: &str, range: &str) -> String {
    ports
        .iter()
        .map(|&(lo, hi)| {
            if lo == hi {
                lo.to_string()
            } else {
                format!("{lo}{range}{hi}")
            }
        })
        .collect::<Vec<_>>()
        .join(sep)
}

/// The nft statements (for `table`, e.g. `inet portcullis`) of the limits, appended to our
/// setup script after the input chain is created.
pub fn nft_script(t: &str, rl: &RateLimits) -> String {
    let mut s = String::new();
    let cidr = |(a, len): &(IpAddr, u8)| format!("{a}/{len}");
    let v4: Vec<String> = rl
        .exempt
        .iter()
        .filter(|(a, _)| a.is_ipv4())
        .map(cidr)
        .collect();
    let v6: Vec<String> = rl
        .exempt
        .iter()
        .filter(|(a, _)| a.is_ipv6())
        .map(cidr)
        .collect();
    for l in &rl.limits {
        let n = &l.name;
        let (r, unit) = rate(l.hits, l.seconds);
        let _ = writeln!(
            s,
            "add set {t} rl4_{n} {{ type ipv4_addr; flags dynamic,timeout; timeout {}s; }}",
            l.seconds
        );
        let _ = writeln!(
            s,
            "add set {t} rl6_{n} {{ type ipv6_addr; flags dynamic,timeout; timeout {}s; }}",
            l.seconds
        );
        let _ = writeln!(s, "add chain {t} rl_{n}");
        let l4 = match l.proto {
            Proto::Tcp => "meta l4proto tcp",
            Proto::Udp => "meta l4proto udp",
            Proto::Both => "meta l4proto { tcp, udp }",
        };
        let _ = writeln!(
            s,
            "add rule {t} input {l4} th dport {{ {} }} ct state new jump rl_{n}",
            ports_text(&l.ports, ", ", "-")
        );
        let _ = writeln!(s, "add rule {t} rl_{n} iif lo return");
        if !v4.is_empty() {
            let _ = writeln!(
                s,
                "add rule {t} rl_{n} ip saddr {{ {} }} return",
                v4.join(", ")
            );
        }
        if !v6.is_empty() {
            let _ = writeln!(
                s,
                "add rule {t} rl_{n} ip6 saddr {{ {} }} return",
                v6.join(", ")
            );
        }
        let verdict = match l.action {
            Action::Drop => "drop",
            Action::Reject => "reject",
        };
        let lim = format!("limit rate over {r}/{unit} burst {} packets", l.hits);
        let _ = writeln!(
            s,
            "add rule {t} rl_{n} update @rl4_{n} {{ ip saddr {lim} }} counter {verdict}"
        );
        let _ = writeln!(s, "add rule {t} rl_{n} update @rl6_{n} {{ ip6 saddr & ffff:ffff:ffff:ffff:: {lim} }} counter {verdict}");
    }
    s
}

/// The rules (after `-A CHAIN `) at the head of our iptables chain for one family: `RETURN`
/// for the exempt sources, then one `hashlimit` rule per limit and protocol.
pub fn ipt_rules(rl: &RateLimits, v6: bool) -> Vec<String> {
    if rl.limits.is_empty() {
        return Vec::new();
    }
    let mut out = vec!["-i lo -j RETURN".to_string()];
    for (a, len) in rl.exempt.iter().filter(|(a, _)| a.is_ipv6() == v6) {
        out.push(format!("-s {a}/{len} -j RETURN"));
    }
    for (i, l) in rl.limits.iter().enumerate() {
        let (r, unit) = rate(l.hits, l.seconds);
        let unit = match unit {
            "second" => "sec",
            "minute" => "min",
            u => u,
        };
        let protos: &[&str] = match l.proto {
            Proto::Tcp => &["tcp"],
            Proto::Udp => &["udp"],
            Proto::Both => &["tcp", "udp"],
        };
        for p in protos {
            let verdict = match (l.action, *p) {
                (Action::Drop, _) => "-j DROP",
                (Action::Reject, "tcp") => "-j REJECT --reject-with tcp-reset",
                (Action::Reject, _) => "-j REJECT",
            };
            out.push(format!(
                "-p {p} -m multiport --dports {} -m conntrack --ctstate NEW -m hashlimit --hashlimit-above {r}/{unit} --hashlimit-burst {} --hashlimit-mode srcip --hashlimit-srcmask {} --hashlimit-name pc{}rl{} --hashlimit-htable-expire {} -m comment --comment ratelimit:{} {verdict}",
                ports_text(&l.ports, ",", ":"),
                l.hits,
                if v6 { 64 } else { 32 },
                if v6 { 6 } else { 4 },
                i,
                u64::from(l.seconds) * 1000,
                l.name,
            ));
        }
    }
    out
}

/// Dropped packets per limit from `nft list chain ... rl_NAME` texts or `iptables-save -c`
/// lines: sums the `counter packets N` (nft) or `[N:bytes]` (iptables) of our rules.
pub fn nft_counter(text: &str) -> u64 {
    text.lines()
        .filter_map(|l| {
            let i = l.find("counter packets ")?;
            l[i + 16..].split_whitespace().next()?.parse::<u64>().ok()
        })
        .sum()
}

/// Dropped packets of limit `name` in `iptables-save -c` output.
pub fn ipt_counter(text: &str, name: &str) -> u64 {
    // iptables-save quotes the comment (it holds a colon)
    let tags = [
        format!("--comment ratelimit:{name} "),
        format!("--comment \"ratelimit:{name}\" "),
    ];
    text.lines()
        .filter(|l| tags.iter().any(|t| l.contains(t.as_str())))
        .filter_map(|l| {
            let c = l.strip_prefix('[')?;
            c.split(':').next()?.parse::<u64>().ok()
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> RateLimits {
        RateLimits {
            limits: vec![RateLimit {
                name: "ssh".into(),
                ports: vec![(22, 22), (2222, 2223)],
                proto: Proto::Tcp,
                hits: 5,
                seconds: 60,
                action: Action::Drop,
            }],
            exempt: vec![
                ("127.0.0.0".parse().unwrap(), 8),
                ("::1".parse().unwrap(), 128),
                ("198.51.100.0".parse().unwrap(), 24),
            ],
        }
    }

    #[test]
    fn rates() {
        assert_eq!(rate(5, 60), (5, "minute"));
        assert_eq!(rate(10, 1), (10, "second"));
        assert_eq!(rate(5, 30), (10, "minute"));
        assert_eq!(rate(1, 7), (12_343, "day")); // 1 per 7 s, rounded up per day
        assert_eq!(rate(3, 7200), (36, "day"));
    }

    #[test]
    fn nft_rules() {
        let s = nft_script("inet portcullis", &limits());
        assert_eq!(
            s,
            "add set inet portcullis rl4_ssh { type ipv4_addr; flags dynamic,timeout; timeout 60s; }
add set inet portcullis rl6_ssh { type ipv6_addr; flags dynamic,timeout; timeout 60s; }
add chain inet portcullis rl_ssh
add rule inet portcullis input meta l4proto tcp th dport { 22, 2222-2223 } ct state new jump rl_ssh
add rule inet portcullis rl_ssh iif lo return
add rule inet portcullis rl_ssh ip saddr { 127.0.0.0/8, 198.51.100.0/24 } return
add rule inet portcullis rl_ssh ip6 saddr { ::1/128 } return
add rule inet portcullis rl_ssh update @rl4_ssh { ip saddr limit rate over 5/minute burst 5 packets } counter drop
add rule inet portcullis rl_ssh update @rl6_ssh { ip6 saddr & ffff:ffff:ffff:ffff:: limit rate over 5/minute burst 5 packets } counter drop
"
        );
        assert_eq!(nft_counter("\t\tupdate @rl4_ssh { ip saddr limit rate over 5/minute } counter packets 7 bytes 420 drop\n\t\tx counter packets 2 bytes 1 drop\n"), 9);
    }

    #[test]
    fn iptables_rules() {
        let r = ipt_rules(&limits(), true);
        assert_eq!(r[0], "-i lo -j RETURN");
        assert_eq!(r[1], "-s ::1/128 -j RETURN");
        assert_eq!(
            r[2],
            "-p tcp -m multiport --dports 22,2222:2223 -m conntrack --ctstate NEW -m hashlimit --hashlimit-above 5/min --hashlimit-burst 5 --hashlimit-mode srcip --hashlimit-srcmask 64 --hashlimit-name pc6rl0 --hashlimit-htable-expire 60000 -m comment --comment ratelimit:ssh -j DROP"
        );
        assert_eq!(ipt_rules(&limits(), false).len(), 4);
        assert!(ipt_rules(&RateLimits::default(), false).is_empty());
        let save = "[3:180] -A PORTCULLIS -p tcp -m multiport --dports 22 -m comment --comment \"ratelimit:ssh\" -j DROP\n[2:120] -A PORTCULLIS -p udp -m comment --comment ratelimit:ssh -j DROP\n[1:60] -A PORTCULLIS -s 192.0.2.1/32 -j DROP\n";
        assert_eq!(ipt_counter(save, "ssh"), 5);
    }
}

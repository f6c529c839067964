//! The `ignore` and `deny` lists as written: addresses, CIDRs, files (one entry per line,
//! `#` comments) and, for `ignore`, host names resolved when the configuration is loaded.
//!
//! Files and names are read again at each load (start and reload, SIGHUP), so editing a list
//! file and reloading is enough. The daemon also looks the names up again every
//! `ignore_refresh` (a minute by default: a home address behind dynamic DNS changes without a
//! reload), and a name that stops resolving keeps the addresses it last resolved to
//! ([`Loaded::with_resolved`], [`Loaded::keep_known`]): a DNS outage must not take the
//! owner's address off the never-ban list.

use std::net::{IpAddr, ToSocketAddrs};

use portcullis_core::ignore::{Cidr, Reason};

/// What one entry of a list turned into.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// An address or CIDR written in the configuration.
    Literal(Cidr),
    /// A file and the prefixes read from it.
    File(String, Vec<Cidr>),
    /// A host name and what it resolved to (empty: did not resolve, a warning).
    Host(String, Vec<IpAddr>),
}

/// A list as loaded: its entries, and the flat list of prefixes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Loaded {
    /// Each entry of the setting, in order.
    pub sources: Vec<Source>,
    /// Every prefix, in order.
    pub cidrs: Vec<Cidr>,
    /// Problems that are not errors (a name that did not resolve).
    pub warnings: Vec<String>,
}

impl Loaded {
    /// The host names among the entries, in order, without duplicates.
    pub fn names(&self) -> Vec<String> {
        let mut v: Vec<String> = Vec::new();
        for s in &self.sources {
            if let Source::Host(n, _) = s {
                if !v.contains(n) {
                    v.push(n.clone());
                }
            }
        }
        v
    }

    /// The list with its host names resolved as in `got` (name -> addresses, sorted). A name
    /// that `got` leaves out or gives no address keeps what it held: a lookup that failed
    /// (the resolver down, a timeout) says nothing of where the name points now.
    pub fn with_resolved(&self, got: &[(String, Vec<IpAddr>)]) -> Loaded {
        let sources: Vec<Source> = self
            .sources
            .iter()
            .map(|s| match s {
                Source::Host(n, old) => {
                    let new = got
                        .iter()
                        .find(|(g, v)| g == n && !v.is_empty())
                        .map_or(old, |(_, v)| v);
                    Source::Host(n.clone(), new.clone())
                }
                other => other.clone(),
            })
            .collect();
        let mut l = Loaded {
            sources,
            cidrs: Vec::new(),
            warnings: self.warnings.clone(),
        };
        l.cidrs = l.prefixes(true);
        l
    }

    /// The prefixes of the entries in order; with `names`, what the host names resolved
    /// to too (`cidrs`), else those written (literally or in files) alone.
    pub fn prefixes(&self, names: bool) -> Vec<Cidr> {
        self.sources
            .iter()
            .flat_map(|s| match s {
                Source::Literal(c) => vec![*c],
                Source::File(_, v) => v.clone(),
                Source::Host(_, v) if names => v.iter().map(|&a| Cidr::host(a)).collect(),
                Source::Host(..) => Vec::new(),
            })
            .collect()
    }

    /// The list loaded again (a reload), its names that did not resolve now given what
    /// they resolved to in `old`, the list in force: see [`Loaded::with_resolved`].
    pub fn keep_known(&self, old: &Loaded) -> Loaded {
        let known: Vec<(String, Vec<IpAddr>)> = old
            .sources
            .iter()
            .filter_map(|s| match s {
                Source::Host(n, v) => Some((n.clone(), v.clone())),
                _ => None,
            })
            .collect();
        self.with_resolved(&known)
    }

    /// For the log: each name whose addresses differ in `new`, with the old and new ones.
    pub fn changed_names(&self, new: &Loaded) -> Vec<String> {
        let show = |v: &[IpAddr]| {
            if v.is_empty() {
                "nothing".to_string()
            } else {
                v.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(",")
            }
        };
        self.sources
            .iter()
            .zip(&new.sources)
            .filter_map(|(a, b)| match (a, b) {
                (Source::Host(n, va), Source::Host(_, vb)) if va != vb => {
                    Some(format!("{n} -> {} (was {})", show(vb), show(va)))
                }
                _ => None,
            })
            .collect()
    }
}

/// Whether `s` could be a host name (letters, digits, '-', '.', with a letter somewhere).
fn is_host_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        && s.bytes().any(|b| b.is_ascii_alphabetic())
        && !s.starts_with('-')
        && !s.starts_with('.')
}

/// Whether an entry that is neither absolute nor an address means a file: it holds a `/`
/// (not a CIDR) or ends in a list file's suffix, which no host name has.
fn looks_like_file(e: &str) -> bool {
    e.contains('/')
        || [".txt", ".list", ".lst", ".conf", ".cfg"]
            .iter()
            .any(|x| e.to_ascii_lowercase().ends_with(x))
}

/// Reads a list file: one address or CIDR per line, `#` starts a comment, blank lines are
/// skipped. Errors name the file and line; so do the prefixes written with host bits set
/// (see [`literal`]: an error when `strict`, else a warning pushed to `warnings`).
pub fn read_file(
    path: &str,
    strict: bool,
    warnings: &mut Vec<String>,
) -> Result<Vec<Cidr>, String> {
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("cannot read list file {path}: {e}"))?;
    parse_file(path, &text, strict, warnings)
}

/// [`read_file`] on a text.
pub fn parse_file(
    path: &str,
    text: &str,
    strict: bool,
    warnings: &mut Vec<String>,
) -> Result<Vec<Cidr>, String> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let entry = line.split('#').next().unwrap_or("").trim();
        if entry.is_empty() {
            continue;
        }
        let at = |e: String| format!("{path}:{}: {e}", i + 1);
        let c = Cidr::parse(entry).map_err(|e| at(e.to_string()))?;
        if let Some(msg) = host_bits(entry) {
            if strict {
                return Err(at(msg));
            }
            warnings.push(at(format!("{msg} (until then {c} is ignored)")));
        }
        out.push(c);
    }
    Ok(out)
}

/// Why `entry` (a CIDR that parses) is suspect: a prefix written with host bits set
/// (`203.0.113.0/8`), which [`Cidr::parse`] reads as the wider net; in words naming both
/// likely meanings (the wording of `portcullis ban`'s refusal).
pub(crate) fn host_bits(entry: &str) -> Option<String> {
    parse_target(entry).err()
}

/// Resolves `name` to its addresses (A and AAAA), sorted.
pub fn resolve(name: &str) -> Vec<IpAddr> {
    let mut v: Vec<IpAddr> = (name, 0)
        .to_socket_addrs()
        .map(|it| {
            it.map(|a| portcullis_core::addr::normalise(a.ip()))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v.dedup();
    v
}

/// Loads the entries of `key`. `names` allows host names (for `ignore`; `deny` takes only
/// addresses, CIDRs and files: banning what a name resolves to would let whoever controls
/// its DNS choose what is banned).
pub fn load(key: &str, entries: &[String], names: bool) -> Result<Loaded, String> {
    let mut l = Loaded::default();
    for e in entries {
        let e = e.trim();
        if e.starts_with('/') {
            // (whoever can write it chooses who is never banned, or always: review 65)
            crate::daemon::fsutil::check_trusted(std::path::Path::new(e), "list file", true)
                .map_err(|e| format!("{e:#}"))?;
            let mut w = Vec::new();
            let v = read_file(e, !names, &mut w)?;
            l.warnings
                .extend(w.into_iter().map(|w| format!("`{key}`: {w}")));
            l.sources.push(Source::File(e.to_string(), v));
        } else if let Ok(c) = Cidr::parse(e) {
            if let Some(msg) = host_bits(e) {
                // a typo for a longer prefix must not widen the list unseen: a deny entry
                // would ban the wider net (an error, as `portcullis ban` refuses it), an
                // ignore entry would never ban it (a warning)
                // (which one is taken said: the warning asked, and 16M addresses went
                // unbanned meanwhile, a review found)
                if names {
                    l.warnings
                        .push(format!("`{key}`: {msg} (until then {c} is ignored)"));
                } else {
                    return Err(msg);
                }
            }
            // `::198.51.100.9` (IPv4-compatible, deprecated) is an IPv6 address no IPv4
            // client has: taken as written, without a word, it protected nobody (a review)
            if let std::net::IpAddr::V6(v6) = c.addr {
                let seg = v6.segments();
                if seg[..6].iter().all(|&x| x == 0) && u128::from(v6) > 1 && c.len >= 96 {
                    let v4 = std::net::Ipv4Addr::from((u128::from(v6) as u32).to_be_bytes());
                    let v4 = if c.len == 128 {
                        v4.to_string()
                    } else {
                        format!("{v4}/{}", c.len - 96)
                    };
                    l.warnings.push(format!(
                        "`{key}`: {e} is an IPv4-compatible IPv6 address, which no IPv4 client has; for the IPv4 address write {v4}"
                    ));
                }
            }
            l.sources.push(Source::Literal(c));
        } else if let Some(err) = bad_prefix(e) {
            return Err(err);
        } else if looks_like_file(e) {
            return Err(format!(
                "{e:?} looks like a list file, but list files need an absolute path (e.g. \"/etc/portcullis/{}\"); a relative name is not read",
                e.rsplit('/').next().unwrap_or(e)
            ));
        } else if ["ALL", "LOCAL", "KNOWN", "UNKNOWN", "PARANOID"].contains(&e) {
            // (hosts.allow's wildcards, taken for host names that do not resolve, review 63)
            return Err(format!(
                "{e:?} is a hosts.allow wildcard, not an address: list addresses and CIDRs (0.0.0.0/0 and ::/0 for every address, which no list of the owner's should hold)"
            ));
        } else if names && is_host_name(e) {
            let v = resolve(e);
            if v.is_empty() {
                l.warnings.push(format!(
                    "`{key}`: host name {e:?} does not resolve (yet): nothing of it is ignored until it does (the daemon looks it up again every `ignore_refresh`, and keeps what it last resolved to while it fails)"
                ));
            }
            l.sources.push(Source::Host(e.to_string(), v));
        } else {
            let what = if names {
                "an address, a CIDR, an absolute file path or a host name"
            } else {
                "an address, a CIDR or an absolute file path (host names are not accepted here)"
            };
            return Err(format!("{e:?} is not {what}{}", other_tools_form(e)));
        }
    }
    l.cidrs = l.prefixes(true);
    Ok(l)
}

/// What an entry written as another tool writes it means here (review 61): a leading part
/// of an address (`10.`, `192.168.`: hosts.allow's, BlockHosts') is a CIDR; a regex
/// (sshblack's LOCALNET, BlockHosts' whitelist) is not read at all.
fn other_tools_form(e: &str) -> String {
    let parts: Vec<&str> = e
        .strip_suffix('.')
        .map(|p| p.split('.').collect())
        .unwrap_or_default();
    if (1..=3).contains(&parts.len()) && parts.iter().all(|p| p.parse::<u8>().is_ok()) {
        let mut octets: Vec<&str> = parts.clone();
        octets.resize(4, "0");
        return format!(
            " (a leading part of an address, as hosts.allow writes it, is a CIDR here: \"{}/{}\")",
            octets.join("."),
            8 * parts.len()
        );
    }
    if e.contains(['^', '\\', '*', '(', '|', '$', '[']) {
        return " (patterns are not read here, as sshblack's LOCALNET and BlockHosts' whitelist were: list the networks as CIDRs, such as \"10.0.0.0/8\" or \"192.168.0.0/16\")".into();
    }
    String::new()
}

/// The error of an entry that is meant as a CIDR but is not one (`192.0.2.0/33`,
/// `10.0.0/8`, `192.0.2.1 /24`): an address before the `/`, or only digits after it. Such an
/// entry is not a file name.
pub(crate) fn bad_prefix(e: &str) -> Option<String> {
    // fail2ban's space-separated `ignoreip` in one string
    let words: Vec<&str> = e.split_whitespace().collect();
    if words.len() > 1 && words.iter().all(|w| Cidr::parse(w).is_ok()) {
        let list: Vec<String> = words.iter().map(|w| format!("{w:?}")).collect();
        return Some(format!(
            "{e:?} holds {} entries: one entry per string, [{}]",
            words.len(),
            list.join(", ")
        ));
    }
    let (a, l) = e.split_once('/')?;
    // hosts.allow's net/mask (`10.0.0.0/255.0.0.0`): the CIDR it stands for (review 63)
    if let (Ok(net), Ok(mask)) = (
        a.trim().parse::<std::net::Ipv4Addr>(),
        l.trim().parse::<std::net::Ipv4Addr>(),
    ) {
        let m = u32::from(mask);
        if m.leading_ones() + m.trailing_zeros() == 32 {
            return Some(format!(
                "{e:?} is a net/mask, as hosts.allow writes it: write it as a CIDR, \"{net}/{}\"",
                m.leading_ones()
            ));
        }
    }
    let digits = !l.trim().is_empty() && l.trim().bytes().all(|b| b.is_ascii_digit());
    let addr = portcullis_core::addr::parse(a.trim().as_bytes()).is_some();
    (addr || digits).then(|| match Cidr::parse(e) {
        Err(err) => err.to_string(),
        Ok(_) => format!("{e:?} is not a CIDR prefix"),
    })
}

/// For `check-config`: one line per entry saying what it holds.
pub fn describe(key: &str, l: &Loaded) -> Vec<String> {
    l.sources
        .iter()
        .map(|s| match s {
            Source::Literal(c) => format!("{key}: {c}"),
            Source::File(p, v) => format!("{key}: file {p}: {} entries", v.len()),
            Source::Host(n, v) if v.is_empty() => format!("{key}: {n} -> (does not resolve)"),
            Source::Host(n, v) => format!(
                "{key}: {n} -> {}",
                v.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        })
        .collect()
}

/// `text` as the address or prefix of a `ban` or `unban`. A prefix written with host bits
/// set (`203.0.113.0/8`) is refused, naming its two likely meanings: taken as it reads, a
/// typo for `/24` would ban 16 million addresses (`Cidr::parse` clears the bits silently,
/// as an `ignore` entry may).
pub fn parse_target(text: &str) -> std::result::Result<Cidr, String> {
    let not = || {
        format!(
            "{text:?} is not an IP address or CIDR prefix (e.g. 203.0.113.7, 2001:db8:5:6::/64)"
        )
    };
    let c = Cidr::parse(text).map_err(|_| not())?;
    let Some((a, _)) = text.trim().split_once('/') else {
        return Ok(c);
    };
    let Some(ip) = portcullis_core::addr::parse(a.as_bytes()) else {
        return Err(not());
    };
    if ip == c.addr {
        return Ok(c);
    }
    // the other meaning: the prefix that starts at the address as written, to the next
    // octet (IPv4) or group (IPv6) boundary its trailing zero bits allow
    let (bits, zeros, step) = match ip {
        IpAddr::V4(v) => (32u32, u32::from(v).trailing_zeros(), 8),
        IpAddr::V6(v) => (128u32, u128::from(v).trailing_zeros(), 16),
    };
    let len = (bits - zeros).div_ceil(step) * step;
    let narrow = Cidr::new(ip, len as u8).expect("not longer than the address");
    let first = if narrow.is_host() {
        format!("the single address {ip}")
    } else {
        narrow.to_string()
    };
    let host_bits = bits - u32::from(c.len);
    let size = if host_bits <= 32 {
        (1u64 << host_bits).to_string()
    } else {
        format!("2^{host_bits}")
    };
    Err(format!(
        "{} has host bits set: a /{} holds {size} addresses and starts at {}. Did you mean \
         {first}, or {c}? Write the one you mean",
        text.trim(),
        c.len,
        c.addr
    ))
}

/// Why `portcullis ban` refuses `target`, in words that fit it: a prefix is not "a loopback
/// address", it holds one (and `0.0.0.0/0` is the whole address space).
pub fn refusal(target: Cidr, why: Reason) -> String {
    let whole = target.len == 0;
    let space = if target.addr.is_ipv4() {
        "IPv4"
    } else {
        "IPv6"
    };
    let reason = match why {
        Reason::Loopback if target.is_host() && target.addr.is_unspecified() => {
            "it is the unspecified address (no host has it)".to_string()
        }
        _ if target.is_host() => why.to_string(),
        Reason::Loopback if whole => format!(
            "it is the whole {space} address space, which holds loopback ({}) and every \
             address of this host",
            if target.addr.is_ipv4() {
                "127.0.0.0/8"
            } else {
                "::1"
            }
        ),
        Reason::Loopback => format!(
            "it holds loopback or the unspecified address ({})",
            if target.addr.is_ipv4() {
                "127.0.0.0/8, 0.0.0.0"
            } else {
                "::1, ::"
            }
        ),
        Reason::Own => "it holds one of this host's own addresses".to_string(),
        Reason::Listed(c) => format!("it overlaps {c} of the ignore list"),
    };
    format!("refused to ban {target}: {reason}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A name looked up again takes its new addresses; a lookup that gave nothing keeps the
    /// last ones (a DNS outage must not end the owner's protection); literals and files stay.
    #[test]
    fn names_resolved_again_take_new_addresses_and_keep_the_last_on_failure() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let lit = Cidr::parse("198.51.100.0/24").unwrap();
        let l = Loaded {
            sources: vec![
                Source::Host("home.example.test".into(), vec![ip("203.0.113.5")]),
                Source::Literal(lit),
                Source::Host("office.example.test".into(), vec![ip("203.0.113.9")]),
                Source::Host("home.example.test".into(), vec![ip("203.0.113.5")]),
            ],
            cidrs: vec![],
            warnings: vec![],
        };
        assert_eq!(l.names(), ["home.example.test", "office.example.test"]);
        let got = vec![
            ("home.example.test".to_string(), vec![ip("203.0.113.6")]),
            ("office.example.test".to_string(), vec![]),
        ];
        let n = l.with_resolved(&got);
        assert_eq!(
            n.cidrs,
            [
                Cidr::host(ip("203.0.113.6")),
                lit,
                Cidr::host(ip("203.0.113.9")),
                Cidr::host(ip("203.0.113.6")),
            ]
        );
        let said = l.changed_names(&n);
        assert_eq!(said.len(), 2, "{said:?}");
        assert_eq!(
            said[0],
            "home.example.test -> 203.0.113.6 (was 203.0.113.5)"
        );
        // a reload whose lookup failed keeps what the list in force held
        let reloaded = Loaded {
            sources: vec![Source::Host("office.example.test".into(), vec![])],
            cidrs: vec![],
            warnings: vec![],
        };
        assert_eq!(
            reloaded.keep_known(&n).cidrs,
            [Cidr::host(ip("203.0.113.9"))]
        );
        // a name never resolved stays empty
        let never = Loaded {
            sources: vec![Source::Host("new.example.test".into(), vec![])],
            ..Default::default()
        };
        assert!(never.keep_known(&n).cidrs.is_empty());
    }

    #[test]
    fn an_ipv4_compatible_address_is_a_warning() {
        let l = load(
            "ignore",
            &[
                "::198.51.100.9".into(),
                "::1".into(),
                "::c633:6400/120".into(),
            ],
            true,
        )
        .unwrap();
        assert_eq!(l.warnings.len(), 2, "{:?}", l.warnings);
        assert!(
            l.warnings[0].ends_with("write 198.51.100.9"),
            "{:?}",
            l.warnings
        );
        assert!(
            l.warnings[1].ends_with("write 198.51.100.0/24"),
            "{:?}",
            l.warnings
        );
    }

    /// A prefix written with host bits is a warning in `ignore` (the net is ignored, as
    /// written) and an error in `deny` (a typo would ban a wider net).
    #[test]
    fn host_bits_warn_in_ignore_and_refuse_in_deny() {
        let l = load(
            "ignore",
            &["198.51.100.1/24".into(), "203.0.113.0/24".into()],
            true,
        )
        .unwrap();
        assert_eq!(
            l.cidrs,
            [
                Cidr::parse("198.51.100.0/24").unwrap(),
                Cidr::parse("203.0.113.0/24").unwrap()
            ]
        );
        assert_eq!(l.warnings.len(), 1, "{:?}", l.warnings);
        assert!(
            l.warnings[0].contains("host bits")
                && l.warnings[0].ends_with("(until then 198.51.100.0/24 is ignored)"),
            "{:?}",
            l.warnings
        );
        let e = load("deny", &["203.0.113.0/8".into()], false).unwrap_err();
        assert!(
            e.contains("host bits") && e.contains("203.0.0.0/8") && e.contains("203.0.113.0"),
            "{e}"
        );
        assert!(load(
            "deny",
            &[
                "203.0.0.0/8".into(),
                "2001:db8::/32".into(),
                "192.0.2.7".into()
            ],
            false
        )
        .is_ok());
        assert!(load("deny", &["2001:db8::1/64".into()], false).is_err());
        // the same in a list file: an error naming file and line in deny, a warning in ignore
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("list.txt");
        std::fs::write(&f, "192.0.2.7\n203.0.113.1/8  # typo\n").unwrap();
        let f = f.to_str().unwrap().to_string();
        let e = load("deny", std::slice::from_ref(&f), false).unwrap_err();
        assert!(
            e.starts_with(&format!("{f}:2: ")) && e.contains("host bits"),
            "{e}"
        );
        let l = load("ignore", std::slice::from_ref(&f), true).unwrap();
        assert_eq!(l.cidrs.len(), 2);
        assert!(
            l.warnings.len() == 1 && l.warnings[0].contains(&format!("{f}:2: ")),
            "{:?}",
            l.warnings
        );
    }

    /// An entry meant as a CIDR that is not one is told so, not taken for a file name.
    #[test]
    fn a_bad_prefix_is_not_a_file_name() {
        for bad in ["192.0.2.0/33", "2001:db8::/129", "10.0.0/8", "192.0.2.1 /x"] {
            let e = load("deny", &[bad.into()], false).unwrap_err();
            assert!(!e.contains("list file"), "{bad}: {e}");
        }
        let e = load("ignore", &["192.0.2.0/33".into()], true).unwrap_err();
        assert!(e.contains("prefix length"), "{e}");
        let e = load("ignore", &["lists/office.txt".into()], true).unwrap_err();
        assert!(e.contains("absolute path"), "{e}");
    }

    /// Review 61: hosts.allow's leading parts and the seed tools' regexes say what to write.
    #[test]
    fn other_tools_forms_say_what_to_write() {
        for (e, says) in [
            ("10.", "\"10.0.0.0/8\""),
            ("10.0.0.0/255.0.0.0", "\"10.0.0.0/8\""),
            ("ALL", "hosts.allow wildcard"),
            ("192.168.", "\"192.168.0.0/16\""),
            ("198.51.100.", "\"198.51.100.0/24\""),
            (r"^(127\.0\.0\.1|10\.)", "patterns are not read here"),
            (r"10\..*", "patterns are not read here"),
        ] {
            let err = load("ignore", &[e.into()], true).unwrap_err();
            assert!(err.contains(says), "{e}: {err}");
        }
    }

    #[test]
    fn files_hosts_and_errors() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("deny.txt");
        std::fs::write(
            &f,
            "# bad ones\n198.51.100.66\n\n203.0.113.0/24  # a whole net\n",
        )
        .unwrap();
        let f = f.to_str().unwrap().to_string();
        let l = load(
            "ignore",
            &[
                f.clone(),
                "192.0.2.1".into(),
                "localhost".into(),
                "no-such-host.invalid".into(),
            ],
            true,
        )
        .unwrap();
        assert_eq!(
            l.cidrs[..3],
            [
                Cidr::parse("198.51.100.66").unwrap(),
                Cidr::parse("203.0.113.0/24").unwrap(),
                Cidr::parse("192.0.2.1").unwrap()
            ]
        );
        assert!(l.cidrs[3..].iter().any(|c| c.addr.is_loopback()), "{l:?}");
        assert_eq!(l.warnings.len(), 1, "{l:?}");
        assert!(l.warnings[0].contains("no-such-host.invalid"));
        let d = describe("ignore", &l);
        assert!(
            d[0].contains("2 entries") && d[2].starts_with("ignore: localhost -> "),
            "{d:?}"
        );
        assert!(d[3].contains("does not resolve"));
        // deny takes no names
        let e = load("deny", &["example.org".into()], false).unwrap_err();
        assert!(e.contains("host names are not accepted"), "{e}");
        let e = parse_file("/x", "192.0.2.1\nnot-an-address\n", true, &mut Vec::new()).unwrap_err();
        assert!(e.starts_with("/x:2:"), "{e}");
        assert!(load("deny", &["/nonexistent/deny.txt".into()], false).is_err());
    }

    #[test]
    fn a_relative_list_file_is_an_error_asking_for_an_absolute_path() {
        for (key, names) in [("ignore", true), ("deny", false)] {
            for e in ["relative.txt", "lists/office", "office.list", "ignore.conf"] {
                let err = load(key, &[e.into()], names).unwrap_err();
                assert!(
                    err.contains("list files need an absolute path") && err.contains(e),
                    "{key} {e}: {err}"
                );
            }
        }
        // host names and CIDRs are still what they were
        assert!(load("ignore", &["localhost".into(), "192.0.2.0/24".into()], true).is_ok());
    }

    fn p(s: &str) -> Cidr {
        Cidr::parse(s).unwrap()
    }

    #[test]
    fn a_prefix_with_host_bits_is_refused_with_both_meanings() {
        assert_eq!(parse_target("203.0.113.0/24"), Ok(p("203.0.113.0/24")));
        assert_eq!(parse_target(" 192.0.2.7 "), Ok(p("192.0.2.7")));
        assert_eq!(parse_target("2001:db8::/32"), Ok(p("2001:db8::/32")));
        assert_eq!(
            parse_target("203.0.113.0/8").unwrap_err(),
            "203.0.113.0/8 has host bits set: a /8 holds 16777216 addresses and starts at \
             203.0.0.0. Did you mean 203.0.113.0/24, or 203.0.0.0/8? Write the one you mean"
        );
        let e = parse_target("198.51.100.1/24").unwrap_err();
        assert!(
            e.contains("Did you mean the single address 198.51.100.1, or 198.51.100.0/24?"),
            "{e}"
        );
        let e = parse_target("2001:db8:5::/32").unwrap_err();
        assert!(
            e.contains("a /32 holds 2^96 addresses")
                && e.contains("Did you mean 2001:db8:5::/48, or 2001:db8::/32?"),
            "{e}"
        );
        let e = parse_target("10.1.128.0/8").unwrap_err();
        assert!(
            e.contains("Did you mean 10.1.128.0/24, or 10.0.0.0/8?"),
            "{e}"
        );
        for bad in ["example.com", "192.0.2.0/33", "192.0.2.0/x"] {
            let e = parse_target(bad).unwrap_err();
            assert!(e.contains("is not an IP address or CIDR prefix"), "{e}");
        }
    }

    #[test]
    fn refusals_say_a_prefix_holds_loopback() {
        let ig = portcullis_core::ignore::IgnoreList::new(vec![p("192.0.2.0/24")], vec![]);
        let r = |s: &str| refusal(p(s), ig.check_prefix(p(s)).unwrap());
        assert_eq!(
            r("0.0.0.0"),
            "refused to ban 0.0.0.0: it is the unspecified address (no host has it)"
        );
        assert!(r("::").ends_with("it is the unspecified address (no host has it)"));
        assert!(r("127.0.0.1").ends_with("it is a loopback address"));
        assert_eq!(
            r("0.0.0.0/0"),
            "refused to ban 0.0.0.0/0: it is the whole IPv4 address space, which holds \
             loopback (127.0.0.0/8) and every address of this host"
        );
        assert!(r("::/0").contains("the whole IPv6 address space, which holds loopback (::1)"));
        assert_eq!(
            r("127.0.0.0/9"),
            "refused to ban 127.0.0.0/9: it holds loopback or the unspecified address \
             (127.0.0.0/8, 0.0.0.0)"
        );
        assert_eq!(
            r("127.0.0.1"),
            "refused to ban 127.0.0.1: it is a loopback address"
        );
        assert_eq!(
            r("192.0.0.0/16"),
            "refused to ban 192.0.0.0/16: it overlaps 192.0.2.0/24 of the ignore list"
        );
        assert_eq!(
            r("192.0.2.9"),
            "refused to ban 192.0.2.9: it is in the ignore list (192.0.2.0/24)"
        );
        assert!(refusal(p("198.51.100.0/24"), Reason::Own)
            .ends_with("it holds one of this host's own addresses"));
    }
}

//! The built-in filter library: the files of `filters/`, embedded at build time.

include!(concat!(env!("OUT_DIR"), "/builtin_filters.rs"));

/// A built-in filter: its name, its TOML source and its sample log.
#[derive(Debug, Clone, Copy)]
pub struct Builtin {
    /// File stem, which is also the filter's name.
    pub name: &'static str,
    /// The TOML source.
    pub source: &'static str,
    /// The sample log with expectations (see [`super::sample`]).
    pub sample: &'static str,
}

/// All built-in filters, sorted by name.
pub fn all() -> &'static [Builtin] {
    BUILTIN
}

/// Former names of built-in filters, renamed to the names fail2ban gives them (issue 11),
/// with the name each now has: a config that names the old one keeps working.
pub const ALIASES: &[(&str, &str)] = &[("danted", "dante")];

/// Filters once built in and withdrawn because a client can write a whole line of their
/// log, or end it right after an address it typed (README, security model), with the
/// reason: a configuration that names one is refused with it, and `import-fail2ban` warns
/// with it.
pub const WITHDRAWN: &[(&str, &str)] = &[
    ("drupal-auth", "Drupal's syslog module hands PHP's syslog() messages with client text raw (a `_format` query parameter in a 406 error message: RequestFormatRouteFilter), and PHP sends each line of a message as a record of its own (syslog.filter=no-ctrl, PHP 7.3+): a %0A there writes a whole forged record under the drupal tag"),
    ("murmur", "the Mumble server writes the client's user name before the address and hands each line to Qt's qWarning(\"%s\") (syslog and its own file alike): a U+0000 in the name, which its protobuf strings keep, ends the line right after an address the client typed"),
    ("pfsense-gui", "OPNsense, and pfSense before its fix of 2025-11-11 (cleanup_invalid_username), log the typed user name raw before the address through PHP's syslog(), which sends each line of a message as a record of its own (syslog.filter=no-ctrl, PHP 7.3+): a name with %0A writes a whole forged record, and no line tells the fixed releases apart"),
    ("phpmyadmin-syslog", "phpMyAdmin logs the typed user name raw before the address (Logging::logUser; only a NUL is cut): PHP's syslog() sends each line of a message as a record of its own (PHP 7.3+), and its own file takes a line feed raw, so a name with %0A writes a whole forged record"),
    ("rsyncd", "the rsync daemon logs a client's own protocol messages (MSG_ERROR / MSG_INFO, which any client of any module may send, an anonymous read-only one included) as whole lines through syslog(3) or its log file, under its own pid: one message writes a whole 'auth failed on module M from H (ADDR) for U: password mismatch' line with an address of the client's choice (shown with a real rsync 3.5.0 daemon, 2026-12-05)"),
    ("roundcube-auth", "Roundcube logs the typed user name raw before the address (only trimmed and strip_tags'ed): its file driver writes a line feed raw, and PHP's syslog() sends each line of a message as a record of its own (PHP 7.3+), so a name with %0A writes a whole forged line"),
    ("snappymail", "SnappyMail logs the typed login raw (trim() only) in its syslog line 'Admin Auth failed: ip=… user=…' (LoggerAuthHelper), and PHP's syslog() sends each line of a message as a record of its own (PHP 7.3+): a login with %0A writes a whole forged 'Auth failed: ip=192.0.2.66' record"),
    ("squirrelmail", "the Squirrel Logger plugin's source could not be read: its file may take the user name raw before the address, and a name with a line feed would then write a whole forged line"),
    ("znc-adminlog", "ZNC's adminlog hands syslog(3) the whole line with \"%s\" (modules/adminlog.cpp Log()): a NUL in the user name (an IRC PASS, a web login's %00, a Basic-auth name) ends it right after an address the client typed"),
];

/// Filters never built in for the same reason, under the names a user is likely to try
/// (fail2ban's, or the service's): said as for [`WITHDRAWN`] (the README's security model
/// names them).
pub const NOT_SHIPPED: &[(&str, &str)] = &[
    ("gitea", "Gitea logs the sign-in name as typed, raw, before the address, so a name with a line feed writes a whole forged line"),
    ("forgejo", "Forgejo logs the sign-in name as typed, raw, before the address (as Gitea), so a name with a line feed writes a whole forged line"),
    ("mssql-auth", "SQL Server is closed source: whether it escapes a line feed in the login name cannot be checked, and its journal copy splits at line feeds"),
];

/// Why the filter `name` was withdrawn (see [`WITHDRAWN`]) or never shipped ([`NOT_SHIPPED`]).
pub fn withdrawn(name: &str) -> Option<&'static str> {
    WITHDRAWN
        .iter()
        .chain(NOT_SHIPPED)
        .find(|(n, _)| *n == name)
        .map(|(_, r)| *r)
}

/// The built-in filter called `name` (or formerly called so, see [`ALIASES`]).
pub fn get(name: &str) -> Option<&'static Builtin> {
    let name = ALIASES
        .iter()
        .find(|(old, _)| *old == name)
        .map_or(name, |(_, new)| new);
    BUILTIN.iter().find(|b| b.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filter::Filter;

    #[test]
    fn a_withdrawn_filter_is_no_longer_built_in() {
        for (name, why) in WITHDRAWN.iter().chain(NOT_SHIPPED) {
            assert!(get(name).is_none(), "{name} is both withdrawn and built in");
            assert!(!why.is_empty());
        }
        assert!(withdrawn("znc-adminlog").is_some());
        assert!(withdrawn("sshd").is_none());
    }

    #[test]
    fn a_former_name_finds_the_renamed_filter() {
        let b = get("danted").expect("the former name danted still resolves");
        assert_eq!(b.name, "dante");
        assert!(std::ptr::eq(b, get("dante").unwrap()));
        for (old, new) in ALIASES {
            assert!(
                all().iter().all(|b| b.name != *old),
                "{old}: an alias must not shadow a filter of that name"
            );
            assert_eq!(get(old).map(|b| b.name), Some(*new));
        }
        assert!(get("dantedx").is_none());
    }

    #[test]
    fn every_builtin_compiles_and_is_named_after_its_file() {
        assert!(!all().is_empty());
        for b in all() {
            let f = Filter::from_toml(b.source, b.name).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(f.name, b.name, "filter name must equal its file name");
            assert!(!f.description.is_empty(), "{}: description missing", b.name);
        }
    }

    /// Every filter file says, in its header, which fields a remote party controls, whether
    /// the program (or transport) escapes line breaks in them, and why the address capture
    /// cannot be moved (issue 9): the block a reviewer looks for.
    #[test]
    fn every_builtin_carries_its_attacker_control_audit() {
        let mut missing = Vec::new();
        for b in all() {
            let header: Vec<&str> = b
                .source
                .lines()
                .take_while(|l| !l.starts_with("name = "))
                .collect();
            let at = header
                .iter()
                .position(|l| *l == "# Attacker control (audit):");
            let keys = [
                "#   remote fields: ",
                "#   newlines:      ",
                "#   address:       ",
            ];
            let ok = at.is_some_and(|i| {
                keys.iter().all(|k| {
                    header[i..]
                        .iter()
                        .any(|l| l.starts_with(k) && l.len() > k.len() + 3)
                })
            });
            if !ok {
                missing.push(b.name);
            }
        }
        assert!(
            missing.is_empty(),
            "no complete audit block in: {missing:?}"
        );
    }

    #[test]
    fn every_builtin_names_its_group_and_log() {
        let mut bad = Vec::new();
        for b in all() {
            let def: crate::filter::FilterDef = toml::from_str(b.source).unwrap();
            let group_ok = def
                .group
                .as_deref()
                .is_some_and(|g| crate::filter::def::GROUPS.contains(&g));
            if !group_ok || def.logs.is_empty() {
                bad.push(format!(
                    "{} (group {:?}, logs {:?})",
                    b.name, def.group, def.logs
                ));
            }
        }
        assert!(
            bad.is_empty(),
            "filters without a known `group` or without `logs`: {bad:?}"
        );
    }

    #[test]
    fn every_builtin_names_its_ports_or_says_why_not() {
        // A jail without `ports` bans the filter's ports; a filter without them (all ports)
        // says why in its header.
        let mut bad = Vec::new();
        for b in all() {
            let f = Filter::from_toml(b.source, b.name).unwrap();
            let why = b
                .source
                .lines()
                .take_while(|l| !l.starts_with("name = "))
                .any(|l| l.starts_with("# No `ports`: "));
            if f.ports().is_some() == why {
                bad.push(b.name);
            }
        }
        assert!(
            bad.is_empty(),
            "filters with neither `ports` nor a \"# No `ports`: \" header line, or both: {bad:?}"
        );
        // scan detectors and logs of many services ban every port
        for name in [
            "portsentry",
            "psad",
            "scanlogd",
            "ufw",
            "recidive",
            "pam-generic",
            "tcpwrappers",
            "xinetd-fail",
            "endlessh",
            "cowrie",
        ] {
            let b = all().iter().find(|b| b.name == name).unwrap();
            let f = Filter::from_toml(b.source, b.name).unwrap();
            assert_eq!(f.ports(), None, "{name}");
        }
        let ports = |name: &str| {
            let b = all().iter().find(|b| b.name == name).unwrap();
            Filter::from_toml(b.source, b.name)
                .unwrap()
                .ports()
                .unwrap()
                .to_vec()
        };
        assert_eq!(ports("sshd"), [(22, 22)]);
        assert_eq!(ports("nginx-http-auth"), [(80, 80), (443, 443)]);
        assert_eq!(ports("tigervnc"), [(5900, 5999)]);
    }

    #[test]
    fn every_builtin_passes_its_samples() {
        let ctx = crate::time::TimeContext {
            now: 1_795_000_000_000,
            local_offset: 0,
            zone: None,
        };
        let mut failures = Vec::new();
        for b in all() {
            let f = Filter::from_toml(b.source, b.name).unwrap();
            assert!(
                !b.sample.is_empty(),
                "{}: no sample log filters/{}.log",
                b.name,
                b.name
            );
            let cases = crate::filter::sample::parse(b.sample).unwrap();
            assert!(
                cases
                    .iter()
                    .any(|c| c.expect == crate::filter::sample::Expect::None),
                "{}: samples need lines that must not match",
                b.name
            );
            if let Err(e) = crate::filter::sample::check(&f, b.sample, &ctx) {
                failures.push(format!("{}:\n{}", b.name, e.join("\n")));
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    }
}

//! `journal:` log sources: which entries of the systemd journal a jail reads.
//!
//! A source is `journal:` followed by matches separated by spaces, handed to `journalctl` as
//! they are: `FIELD=VALUE` terms, and `+`. As journalctl combines them, terms of different
//! fields must all hold, terms of the same field are alternatives, and `+` separates
//! alternative groups. `journal:_SYSTEMD_UNIT=ssh.service _UID=0` is the entries of
//! ssh.service logged by root.
//!
//! # Fields a local user cannot forge
//!
//! Any local user can log an entry with any `SYSLOG_IDENTIFIER`, and with any `_COMM` by
//! running a copy of a program under another name (`cp /usr/bin/logger /tmp/sshd`). journald
//! sets the fields that begin with `_` itself, from what the kernel says about the sender, but
//! `_COMM` is only the sender's own process name. `_UID` comes from the socket's credentials
//! and `_SYSTEMD_UNIT` / `_SYSTEMD_SLICE` from the sender's control group, which only root
//! can choose. So a source that bans on what a daemon writes must name its unit (or slice)
//! and its user, as [`DEFAULT_SSHD`] does.
//!
//! journald reads the control group (and `_COMM`) from `/proc` when it takes a message, not
//! when it was sent: the entry of a process that logged and exited before that has no
//! `_SYSTEMD_UNIT` or `_SYSTEMD_SLICE`, only `_PID`, `_UID`, `_GID` (the kernel's) and what
//! the sender wrote (systemd issue 2913). A daemon that runs as root can be matched by its
//! identifier and `_UID=0` as well: only root sends as uid 0. Root runs other programs too,
//! some of which relay others' text (Docker's syslog log driver, a `logger` pipe), so the
//! reader lets such a group (one without a unit, in a source that names units) read only
//! entries without a unit, of a unit the source names, or of a login session's scope
//! ([`reader::UnitGuard`]).

pub mod reader;

use std::path::{Path, PathBuf};

/// What begins a journal source.
pub const PREFIX: &str = "journal:";

/// sshd's entries, as only sshd can write them: logged by root (`_UID=0`) from the unit
/// `ssh.service` (Debian, Ubuntu) or `sshd.service` (Fedora, Arch, SUSE), or from an instance
/// of `ssh@.service` / `sshd@.service` (socket activation with `Accept=yes`, whose instances
/// run in the slice `system-ssh.slice` / `system-sshd.slice`). OpenSSH 9.8's
/// `sshd-session` runs in the same unit, and its monitor, which logs, runs as root.
/// Each connection's processes end with it, often before journald has read their control
/// group (under load a third of such entries came without `_SYSTEMD_UNIT`: tests/
/// journal_exited_sender.rs), so root's syslog entries with sshd's identifiers (`sshd`;
/// `sshd-session` from OpenSSH 9.8) count too. A user's `logger -t sshd` has the user's
/// `_UID`; root's processes are trusted anyway.
pub const DEFAULT_SSHD: &str = "journal:_SYSTEMD_UNIT=ssh.service _SYSTEMD_UNIT=sshd.service _UID=0 + _SYSTEMD_SLICE=system-ssh.slice _SYSTEMD_SLICE=system-sshd.slice _UID=0 + SYSLOG_IDENTIFIER=sshd SYSLOG_IDENTIFIER=sshd-session _UID=0 _TRANSPORT=syslog";

/// The first alternative group of a journal source that names no field the sender cannot
/// choose (see the module documentation), as written: any local user can write entries it
/// selects. None when every group names `_UID`, `_GID`, `_SYSTEMD_UNIT`, `_SYSTEMD_SLICE`
/// or `_SYSTEMD_CGROUP`, or `_TRANSPORT=kernel` / `_TRANSPORT=audit` (only the kernel
/// writes those).
pub fn forgeable_group(source: &str) -> Option<String> {
    let spec = source.strip_prefix(PREFIX).unwrap_or(source);
    spec.split('+')
        .map(|g| g.split_ascii_whitespace().collect::<Vec<&str>>())
        .find(|terms| {
            !terms.is_empty()
                && !terms.iter().any(|t| {
                    let field = t.split_once('=').map_or(*t, |(f, _)| f);
                    matches!(
                        field,
                        "_UID" | "_GID" | "_SYSTEMD_UNIT" | "_SYSTEMD_SLICE" | "_SYSTEMD_CGROUP"
                    ) || matches!(*t, "_TRANSPORT=kernel" | "_TRANSPORT=audit")
                })
        })
        .map(|terms| terms.join(" "))
}

/// The socket journald listens on for native entries: it exists while journald runs.
pub const JOURNALD_SOCKET: &str = "/run/systemd/journal/socket";

/// The matches of a journal source (without [`PREFIX`]), checked: `FIELD=VALUE` terms (a field
/// name of capital letters, digits and `_`, not starting with a digit, at most 64 bytes; a
/// value of at least one byte) and `+` between two groups.
pub fn matches(source: &str) -> Result<Vec<&str>, String> {
    let spec = source.strip_prefix(PREFIX).unwrap_or(source);
    let terms: Vec<&str> = spec.split_ascii_whitespace().collect();
    if terms.is_empty() {
        return Err(format!(
            "{source:?} has no match; write e.g. \"journal:_SYSTEMD_UNIT=ssh.service _UID=0\""
        ));
    }
    let mut after_plus = true;
    for t in &terms {
        if *t == "+" {
            if after_plus {
                return Err(format!(
                    "{source:?}: `+` must stand between two groups of FIELD=VALUE matches"
                ));
            }
            after_plus = true;
            continue;
        }
        after_plus = false;
        let ok = t.split_once('=').is_some_and(|(f, v)| {
            !f.is_empty()
                && f.len() <= 64
                && !f.starts_with(|c: char| c.is_ascii_digit())
                && f.bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
                && !v.is_empty()
        });
        if !ok {
            return Err(format!(
                "{source:?}: {t:?} is not a journal match; use FIELD=VALUE (a field name of capital letters, digits and _, e.g. _SYSTEMD_UNIT=ssh.service), several separated by spaces, or + between alternatives"
            ));
        }
    }
    if after_plus {
        return Err(format!(
            "{source:?}: `+` must stand between two groups of FIELD=VALUE matches"
        ));
    }
    Ok(terms)
}

/// A source's terms with each `_UID=NAME` and `_GID=NAME` given the number of that user or
/// group, from `lookup(field, name)` (the system's, through NSS: [`crate::sys::user_id`],
/// [`crate::sys::group_id`]): journald records numbers, and a daemon's dedicated user
/// (ocserv's `run-as-user`, Postfix's mail owner) has no number that is the same on every
/// system. A value of digits is a number already (as systemd takes it). A name not found
/// stays as it is, so that alternative matches nothing (no entry has such a value); it is
/// returned in the second list as the term itself.
pub fn resolve_ids(
    terms: &[String],
    lookup: impl Fn(&str, &str) -> Option<u32>,
) -> (Vec<String>, Vec<String>) {
    let mut unknown = Vec::new();
    let resolved = terms
        .iter()
        .map(|t| match id_name(t) {
            Some((field, value)) => match lookup(field, value) {
                Some(id) => format!("{field}={id}"),
                None => {
                    unknown.push(t.clone());
                    t.clone()
                }
            },
            None => t.clone(),
        })
        .collect();
    (resolved, unknown)
}

/// The field and the name of a `_UID=NAME` or `_GID=NAME` term (a value of digits is a
/// number, not a name).
pub fn id_name(term: &str) -> Option<(&str, &str)> {
    match term.split_once('=') {
        Some((field @ ("_UID" | "_GID"), value)) if !value.bytes().all(|b| b.is_ascii_digit()) => {
            Some((field, value))
        }
        _ => None,
    }
}

/// The system's number for the name in a `_UID=` or `_GID=` term (`field`), through NSS: the
/// lookup [`resolve_ids`] is given outside tests.
pub fn system_id(field: &str, name: &str) -> Option<u32> {
    match field {
        "_UID" => crate::sys::user_id(name),
        _ => crate::sys::group_id(name),
    }
}

/// The cursor file of a journal source in `state_dir`, named after the source itself so a
/// reader started again (after a restart or a reload) finds its own position. A source of
/// one match keeps the name it always had (`journal-_COMM_sshd.cursor` for
/// `journal:_COMM=sshd`); one of several gets a hash of the whole source too, so that two
/// sources never share a file and the name stays short.
pub fn cursor_file(state_dir: &Path, source: &str) -> PathBuf {
    let spec = source.strip_prefix(PREFIX).unwrap_or(source);
    let clean = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    };
    let name = if spec.split_ascii_whitespace().count() <= 1 {
        clean(spec)
    } else {
        let mut c = clean(spec);
        c.truncate(96);
        format!(
            "{c}-{:016x}",
            portcullis_core::bytes::fnv1a(spec.as_bytes())
        )
    };
    state_dir.join(format!("journal-{name}.cursor"))
}

/// The default log sources of the sshd jail, for [`default_sshd_logs`]: the journal by its
/// trusted fields when journald runs, even when `/var/log/auth.log` exists (any local user
/// can write a line into auth.log that looks like sshd's: `logger -t sshd`); else auth.log or
/// /var/log/secure (rsyslog without journald); else the journal.
pub fn sshd_logs(journald_runs: bool, exists: impl Fn(&str) -> bool) -> Vec<String> {
    if journald_runs {
        return vec![DEFAULT_SSHD.to_string()];
    }
    for f in ["/var/log/auth.log", "/var/log/secure"] {
        if exists(f) {
            return vec![f.to_string()];
        }
    }
    vec![DEFAULT_SSHD.to_string()]
}

/// [`sshd_logs`] for this machine: journald runs when its socket ([`JOURNALD_SOCKET`])
/// exists.
pub fn default_sshd_logs() -> Vec<String> {
    sshd_logs(Path::new(JOURNALD_SOCKET).exists(), |f| {
        Path::new(f).exists()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_are_checked() {
        assert_eq!(matches("journal:_COMM=sshd").unwrap(), ["_COMM=sshd"]);
        assert_eq!(
            matches("journal:_SYSTEMD_UNIT=ssh.service  _UID=0").unwrap(),
            ["_SYSTEMD_UNIT=ssh.service", "_UID=0"]
        );
        assert_eq!(matches(DEFAULT_SSHD).unwrap().len(), 12);
        for bad in [
            "journal:",
            "journal:  ",
            "journal:_comm=sshd",
            "journal:sshd",
            "journal:/usr/sbin/sshd",
            "journal:--file=/tmp/x",
            "journal:-o=cat",
            "journal:_COMM=",
            "journal:=x",
            "journal:1X=y",
            "journal:+ _COMM=a",
            "journal:_COMM=a +",
            "journal:_COMM=a + + _COMM=b",
        ] {
            assert!(matches(bad).is_err(), "{bad}");
        }
        let long = format!("journal:{}=x", "A".repeat(65));
        assert!(matches(&long).is_err());
    }

    /// The journal sources the built-in filters suggest (`logs`, which `portcullis filters`
    /// shows) are valid sources: vaultwarden's two terms are of different fields, which
    /// journalctl requires both of (its syslog-transport entries only, not the stdout copy).
    #[test]
    fn every_builtin_journal_log_is_a_valid_source() {
        let mut n = 0;
        for b in portcullis_core::filter::builtin::all() {
            let def: portcullis_core::filter::FilterDef = toml::from_str(b.source).unwrap();
            for l in def.logs.iter().filter(|l| l.starts_with(PREFIX)) {
                n += 1;
                assert!(matches(l).is_ok(), "{}: {l}", b.name);
            }
        }
        assert!(n > 0);
        assert_eq!(
            matches("journal:SYSLOG_IDENTIFIER=vaultwarden _TRANSPORT=syslog").unwrap(),
            ["SYSLOG_IDENTIFIER=vaultwarden", "_TRANSPORT=syslog"]
        );
    }

    #[test]
    fn user_and_group_names_become_their_numbers() {
        let lookup = |field: &str, name: &str| match (field, name) {
            ("_UID", "ocserv") => Some(115),
            ("_UID", "postfix") => Some(106),
            ("_GID", "ocserv") => Some(122),
            _ => None,
        };
        let terms: Vec<String> = [
            "SYSLOG_IDENTIFIER=ocserv",
            "_UID=0",
            "_UID=ocserv",
            "_GID=ocserv",
            "_UID=nosuch",
            "_GID=postfix",
            "_UID=0115",
            "+",
            "_SYSTEMD_UNIT=ocserv.service",
            "_COMM=ocserv",
            "_UID=postfix",
        ]
        .iter()
        .map(|t| t.to_string())
        .collect();
        let (got, unknown) = resolve_ids(&terms, lookup);
        assert_eq!(
            got,
            [
                "SYSLOG_IDENTIFIER=ocserv",
                "_UID=0",
                "_UID=115",
                "_GID=122",
                "_UID=nosuch",
                "_GID=postfix",
                "_UID=0115",
                "+",
                "_SYSTEMD_UNIT=ocserv.service",
                "_COMM=ocserv",
                "_UID=106",
            ]
        );
        // a user name is not a group name, and digits are never looked up
        assert_eq!(unknown, ["_UID=nosuch", "_GID=postfix"]);
    }

    /// The system's own lookups: root is 0 on every system.
    #[test]
    fn the_systems_root_is_found() {
        assert_eq!(crate::sys::user_id("root"), Some(0));
        assert_eq!(crate::sys::group_id("root"), Some(0));
        assert_eq!(crate::sys::user_id("pct-no-such-user-x"), None);
        let (got, unknown) = resolve_ids(&["_UID=root".to_string()], system_id);
        assert_eq!((got, unknown.len()), (vec!["_UID=0".to_string()], 0));
    }

    #[test]
    fn cursor_files_keep_their_old_name_for_one_match_and_differ_for_several() {
        let d = Path::new("/s");
        assert_eq!(
            cursor_file(d, "journal:_COMM=sshd"),
            Path::new("/s/journal-_COMM_sshd.cursor")
        );
        assert_eq!(
            cursor_file(d, "journal:_COMM=sshd-session"),
            Path::new("/s/journal-_COMM_sshd-session.cursor")
        );
        let a = cursor_file(d, "journal:_SYSTEMD_UNIT=ssh.service _UID=0");
        let b = cursor_file(d, "journal:_SYSTEMD_UNIT=ssh_service _UID=0");
        assert_ne!(a, b);
        assert!(a
            .to_str()
            .unwrap()
            .starts_with("/s/journal-_SYSTEMD_UNIT_ssh_service__UID_0-"));
        let name = cursor_file(d, DEFAULT_SSHD);
        assert!(name.file_name().unwrap().len() < 140, "{name:?}");
        assert_eq!(name, cursor_file(d, DEFAULT_SSHD), "stable");
    }

    #[test]
    fn the_journal_is_preferred_when_journald_runs() {
        let all = |_: &str| true;
        let none = |_: &str| false;
        assert_eq!(sshd_logs(true, all), [DEFAULT_SSHD]);
        assert_eq!(sshd_logs(false, all), ["/var/log/auth.log"]);
        assert_eq!(
            sshd_logs(false, |f: &str| f == "/var/log/secure"),
            ["/var/log/secure"]
        );
        assert_eq!(sshd_logs(false, none), [DEFAULT_SSHD]);
        for s in sshd_logs(true, none) {
            assert!(!s.contains("_COMM"), "{s}");
            assert!(s.contains("_UID=0"), "{s}");
        }
    }
}

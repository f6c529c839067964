//! `portcullis import-fail2ban PATH [-o OUT]`: translates a fail2ban `filter.d/*.conf` into a
//! Portcullis filter (TOML).
//!
//! The translation is [`portcullis_fail2ban::import_with`]; this file reads the files (the
//! filter, its includes, the drop-ins and `.local` files fail2ban reads with them), writes
//! the result and the report.
//!
//! * The filter goes to `OUT` (or standard output), with a header comment listing what was
//!   not translated.
//! * The report (translated N of M, each skipped pattern with its file, line and reason) goes
//!   to standard error.
//! * Exit code: 0 when a usable filter was written (patterns left out are listed in the
//!   report and in the filter's header), 1 when no pattern could be translated (nothing is
//!   written), 2 on errors (unreadable file, not a filter).

use std::io::Write;
use std::path::Path;

use anyhow::{anyhow, Context};

/// Runs the import; returns the exit code (errors are exit code 2 in `main`).
pub fn run(path: &Path, out: Option<&Path>) -> anyhow::Result<i32> {
    // a clear error for the file itself; includes are optional and reported by the importer
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let name = path
        .to_str()
        .ok_or_else(|| anyhow!("{}: the path is not valid UTF-8", path.display()))?;
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
    if let Some(why) = not_a_filter(path, stem, &text) {
        anyhow::bail!("{name}: {why}");
    }
    let load = |p: &str| std::fs::read_to_string(p).ok();
    let list = |dir: &str| -> Vec<String> {
        std::fs::read_dir(dir)
            .map(|d| {
                d.filter_map(Result::ok)
                    .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
                    .filter_map(|e| e.file_name().into_string().ok())
                    .collect()
            })
            .unwrap_or_default()
    };
    let imported = portcullis_fail2ban::import_with(name, &load, &list)?;
    eprint!("{}", imported.report.render());
    if portcullis_core::filter::builtin::get(stem).is_some() {
        eprintln!(
            "note: Portcullis has a built-in filter {stem:?}: use the built-in `{stem}` (filter = \"{stem}\" in a [[jail]]; `portcullis filters` says which log it reads); import only what it lacks"
        );
    }
    if let Some(why) = unsafe_source(stem) {
        eprintln!("WARNING: {stem}: {why}");
    }
    // what the translated patterns let a client do (fail2ban's failregex is searched, not
    // anchored, so a pattern without `^`/`$` has text of any kind on both sides)
    if let Some(toml) = &imported.toml {
        if let Ok(f) = portcullis_core::filter::Filter::from_toml(toml, stem) {
            for w in portcullis_core::filter::lint::warnings(&f) {
                eprintln!("WARNING: {w}");
            }
        }
    }
    let ign = &imported.report.ignoreregex;
    if imported.toml.is_some() && ign.translated < ign.total {
        eprintln!(
            "WARNING: {stem}: {} of {} ignoreregex pattern(s) not translated: this filter counts lines that fail2ban's ignores (see the list above; write them by hand as `ignore` patterns)",
            ign.total - ign.translated,
            ign.total
        );
    }
    match &imported.toml {
        Some(toml) => match out {
            Some(o) => {
                std::fs::write(o, toml).with_context(|| format!("cannot write {}", o.display()))?;
                eprintln!("wrote {}", o.display());
            }
            None => {
                let mut stdout = std::io::stdout().lock();
                stdout
                    .write_all(toml.as_bytes())
                    .and_then(|()| stdout.flush())
                    .context("cannot write to standard output")?;
            }
        },
        None => eprintln!("no filter written"),
    }
    Ok(if imported.toml.is_some() { 0 } else { 1 })
}

/// Why `path` is a fail2ban file this command does not import (a jail file, a helper that
/// filters include), or `None` for what may be a filter.
fn not_a_filter(path: &Path, stem: &str, text: &str) -> Option<String> {
    let lines: Vec<String> = text
        .lines()
        .map(|l| l.trim().to_ascii_lowercase())
        .filter(|l| !l.starts_with('#') && !l.starts_with(';'))
        .collect();
    let key = |k: &str| {
        lines.iter().any(|l| {
            l.strip_prefix(k)
                .is_some_and(|r| r.trim_start().starts_with(['=', ':']))
        })
    };
    let in_jail_d = path
        .parent()
        .and_then(Path::file_name)
        .is_some_and(|d| d == "jail.d");
    let jail_keys = [
        "enabled", "logpath", "port", "maxretry", "bantime", "findtime",
    ];
    if stem == "jail"
        || in_jail_d
        || (!lines.iter().any(|l| l == "[definition]") && jail_keys.iter().any(|k| key(k)))
    {
        return Some(
            "this is a fail2ban jail file (jail.conf, jail.local, jail.d/): jails are not imported, \
             only filter.d files are. Write each jail as a [[jail]] table in \
             /etc/portcullis/portcullis.toml or a portcullis.d/*.toml drop-in: [sshd] becomes \
             [[jail]] with name = \"sshd\"; logpath -> logs (a list), port -> ports (a list), \
             ignoreip -> ignore (a list, top level or per jail), maxretry, findtime and bantime \
             stay (bantime = -1 -> \"forever\"), backend = \"systemd\" -> logs = [\"journal:...\"]; \
             see \"Coming from fail2ban\" in the README (/usr/share/doc/portcullis/README.md) \
             for the key map and its Configuration section for every key (`portcullis \
             check-config` names what it does not know)"
                .into(),
        );
    }
    if stem.starts_with("paths-") {
        return Some(format!(
            "{stem}.conf holds the log paths jail.conf includes; it is not a filter. Name the logs in each [[jail]]'s `logs`"
        ));
    }
    if (stem == "common" || stem.ends_with("-common")) && !key("failregex") {
        return Some(format!(
            "no failregex: {stem}.conf is a helper that other filters include ([INCLUDES] before = {stem}.conf); it is not imported on its own: import the filters that include it (it is read from beside them)"
        ));
    }
    None
}

/// fail2ban filters whose log Portcullis does not ship a filter for, or reads only in
/// another form, because a remote party can write a whole forged line there (see the
/// README's security model): the import still translates them, with this warning.
fn unsafe_source(stem: &str) -> Option<&'static str> {
    Some(match stem {
        "mysqld-auth" => "MySQL/MariaDB write the client's user name raw into their error log: a name with a newline forges a whole line with any address. Use Portcullis' built-in mysqld-auth filter, which reads MariaDB's server_audit records from the journal (its header says how to turn them on)",
        "gitea" => "Gitea logs the sign-in name raw: a name with a newline forges a whole line with any address",
        "mssql-auth" => "whether SQL Server escapes a newline in the login name cannot be checked; the journal copy splits at newlines",
        "nginx-http-auth" | "nginx-limit-req" | "nginx-botsearch" => "nginx writes the decoded request path and the user name raw into error.log: a %0a in a URL forges a whole line. Use Portcullis' built-in filter of the same name, which reads the escaped access log",
        "postgresql" => "PostgreSQL's text log writes user and database names raw: a name with a newline forges a whole line. Use Portcullis' built-in postgresql filter on the jsonlog",
        "traefik-auth" => "Traefik's common log format writes the Basic-auth user raw: use Portcullis' built-in traefik-auth filter on the JSON access log",
        _ => return portcullis_core::filter::builtin::withdrawn(stem),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use portcullis_core::filter::Filter;

    const COMMON: &str = "[DEFAULT]\n_daemon = \\S*\n__prefix_line = \\s*(?:\\S+\\s+)?(?:%(_daemon)s(?:\\[\\d+\\])?:\\s+)?\n";

    #[test]
    fn filters_of_forgeable_logs_are_named() {
        for f in [
            "mysqld-auth",
            "gitea",
            "nginx-http-auth",
            "postgresql",
            "murmur",
        ] {
            assert!(unsafe_source(f).is_some(), "{f}");
        }
        assert!(unsafe_source("sshd").is_none());
    }

    #[test]
    fn writes_the_filter_and_reports() {
        let dir = tempfile::tempdir().unwrap();
        let fd = dir.path().join("filter.d");
        std::fs::create_dir(&fd).unwrap();
        std::fs::write(fd.join("common.conf"), COMMON).unwrap();
        std::fs::write(
            fd.join("demo.conf"),
            "[INCLUDES]\nbefore = common.conf\n[DEFAULT]\n_daemon = demod\n[Definition]\nfailregex = ^%(__prefix_line)sbad login for <F-USER>\\S+</F-USER> from <HOST>$\n",
        )
        .unwrap();
        let out = dir.path().join("demo.toml");
        assert_eq!(run(&fd.join("demo.conf"), Some(&out)).unwrap(), 0);
        let text = std::fs::read_to_string(&out).unwrap();
        let f = Filter::from_toml(&text, "demo.toml").unwrap();
        assert_eq!(f.name, "demo");
        assert_eq!(f.programs, vec![b"demod".to_vec()]);

        // a .local beside the filter adds a pattern that cannot be translated: still a
        // usable filter (exit code 0), the pattern left out is listed in its header
        std::fs::write(
            fd.join("demo.local"),
            "[Definition]\nfailregex = %(known/failregex)s\n            ^x(?=y) <HOST>\n",
        )
        .unwrap();
        assert_eq!(run(&fd.join("demo.conf"), Some(&out)).unwrap(), 0);
        let text = std::fs::read_to_string(&out).unwrap();
        assert!(
            text.contains("demo.local:3 (failregex): look-ahead"),
            "{text}"
        );

        // nothing translatable: no filter, exit code 1
        std::fs::write(
            fd.join("none.conf"),
            "[Definition]\nfailregex = ^x(?=y) <HOST>\n",
        )
        .unwrap();
        let none = dir.path().join("none.toml");
        assert_eq!(run(&fd.join("none.conf"), Some(&none)).unwrap(), 1);
        assert!(!none.exists());

        // errors
        assert!(run(&fd.join("missing.conf"), Some(&out)).is_err());
        let e = format!(
            "{:#}",
            run(&fd.join("common.conf"), Some(&out)).unwrap_err()
        );
        assert!(
            e.contains("is a helper that other filters include")
                && e.contains("not imported on its own"),
            "{e}"
        );
    }

    #[test]
    fn jail_files_and_helpers_say_what_they_are() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let jail = "[DEFAULT]\nbantime = 1h\n\n[sshd]\nenabled = true\nport = ssh\nlogpath = %(sshd_log)s\n";
        std::fs::create_dir(d.join("jail.d")).unwrap();
        for p in [
            "jail.local",
            "jail.conf",
            "jail.d/defaults-debian.conf",
            "mine.conf",
        ] {
            std::fs::write(d.join(p), jail).unwrap();
            let e = format!("{:#}", run(&d.join(p), None).unwrap_err());
            assert!(
                e.contains("jails are not imported, only filter.d files")
                    && e.contains("\"Coming from fail2ban\" in the README")
                    && e.contains("logpath -> logs"),
                "{p}: {e}"
            );
        }
        std::fs::write(
            d.join("apache-common.conf"),
            "[DEFAULT]\n_apache_error_client = x\n",
        )
        .unwrap();
        let e = format!(
            "{:#}",
            run(&d.join("apache-common.conf"), None).unwrap_err()
        );
        assert!(e.contains("apache-common.conf is a helper"), "{e}");
        std::fs::write(
            d.join("paths-debian.conf"),
            "[DEFAULT]\nsshd_log = /var/log/auth.log\n",
        )
        .unwrap();
        let e = format!("{:#}", run(&d.join("paths-debian.conf"), None).unwrap_err());
        assert!(e.contains("not a filter"), "{e}");
    }
}

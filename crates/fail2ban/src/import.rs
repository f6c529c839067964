//! The import as a whole: reads the files ([`crate::ini`]), finds the filter's settings and
//! patterns ([`crate::resolve`], once per fail2ban `mode`), translates each pattern
//! ([`crate::translate`]) and hands the result to [`crate::render`].

use portcullis_core::filter::Class;

use crate::error::{Error, Unsupported};
use crate::ini::{file_stem, Ini};
use crate::render::{self, Done};
use crate::report::{Imported, Pos, Report, Skipped};
use crate::resolve::{Line, Resolver};
use crate::translate::{
    self, datepattern::translate_datepattern, prefregex, programs::daemon_programs,
};
use crate::translate::{DateOutcome, Env, Seen};
use crate::{Lister, Loader};

/// `mode` values of fail2ban's stock filters, tried when a filter has a `mode` parameter.
const MODES: &[&str] = &["normal", "ddos", "extra", "aggressive"];

/// Translates the fail2ban filter file `path` (read with `load`, as are its includes and
/// the `NAME.local` beside it), without the drop-in directory `NAME.d/` (see
/// [`import_with`]).
///
/// Errors (unreadable file, no `failregex`, …) end the import; patterns that cannot be
/// translated are listed in the report instead.
pub fn import(path: &str, load: Loader<'_>) -> Result<Imported, Error> {
    import_with(path, load, &|_: &str| Vec::new())
}

/// [`import`], reading the files fail2ban reads for a filter, in its order: `NAME.conf`,
/// `NAME.d/*.conf`, `NAME.local`, `NAME.d/*.local` (each in name order; `list` gives the
/// names of the files in a directory), and the `.local` beside every file included.
pub fn import_with(path: &str, load: Loader<'_>, list: Lister<'_>) -> Result<Imported, Error> {
    // `NAME.local` named with its `NAME.conf` beside it: fail2ban reads the .conf first and
    // the .local over it (imported alone, its `%(known/...)s` lost the stock rules and its
    // `NAME.d/` was not read, a review found)
    if let Some(stem) = path.strip_suffix(".local") {
        let conf = format!("{stem}.conf");
        if load(&conf).is_some() {
            let mut im = import_with(&conf, load, list)?;
            im.report.notes.insert(
                0,
                format!(
                    "{} is read over {}, as fail2ban reads them: the filter is the two together",
                    crate::ini::file_name(path),
                    crate::ini::file_name(&conf)
                ),
            );
            return Ok(im);
        }
    }
    let mut ini = Ini::default();
    ini.read(path, load, 0, &mut Vec::new(), true)?;
    if let Some(stem) = path.strip_suffix(".conf") {
        let dir = format!("{stem}.d");
        let mut names = list(&dir);
        names.sort();
        let dropins = |ext: &str| -> Vec<String> {
            names
                .iter()
                .filter(|n| n.ends_with(ext))
                .map(|n| format!("{dir}/{n}"))
                .collect()
        };
        let mut read_also = Vec::new();
        for f in dropins(".conf")
            .into_iter()
            .chain([format!("{stem}.local")])
            .chain(dropins(".local"))
        {
            if load(&f).is_some() {
                read_also.push(crate::ini::file_name(&f).to_string());
                ini.read(&f, load, 0, &mut Vec::new(), false)?;
            }
        }
        if !read_also.is_empty() {
            ini.notes.push(format!(
                "read also, as fail2ban does: {}",
                read_also.join(", ")
            ));
        }
    }
    let name = file_stem(path);
    Importer::new(&ini, name).run()
}

struct Importer<'a> {
    ini: &'a Ini,
    name: String,
    report: Report,
    seen: Seen,
}

impl<'a> Importer<'a> {
    fn new(ini: &'a Ini, name: String) -> Importer<'a> {
        Importer {
            ini,
            report: Report {
                name: name.clone(),
                ..Report::default()
            },
            name,
            seen: Seen::default(),
        }
    }

    fn run(mut self) -> Result<Imported, Error> {
        let ini = self.ini;
        let base = Resolver::new(ini);
        if base.lookup_tag("failregex").is_none() {
            return Err(Error::NotAFilter(self.name.clone()));
        }
        let maxlines = match base.option("maxlines") {
            Ok(Some(v)) => match v.to_string().trim().parse::<usize>() {
                Ok(n) => n,
                Err(_) => {
                    self.seen.notes.insert(format!(
                        "maxlines = {} is not a number; taken as 1",
                        v.to_string().trim()
                    ));
                    1
                }
            },
            _ => 1,
        };
        if maxlines > 1 {
            self.seen.notes.insert(format!(
                "maxlines = {maxlines}: multi-line matching is not translated (patterns that span lines are skipped)"
            ));
        }

        // which `mode` values to import
        let mode_default = base.option("mode").ok().flatten().map(|m| m.to_string());
        let mut modes: Vec<Option<String>> = vec![None];
        if let Some(m) = &mode_default {
            let m = m.trim().to_string();
            let valid = |v: &str| {
                ini.sections.values().any(|s| {
                    s.keys()
                        .any(|k| k.ends_with(&format!("-{v}")) || k.contains(&format!("-{v}-")))
                })
            };
            let base_mode = m.clone();
            modes = vec![Some(base_mode.clone())];
            for v in MODES {
                if *v != base_mode && valid(v) {
                    modes.push(Some(v.to_string()));
                }
            }
        }

        let resolver_for = |mode: &Option<String>| {
            let mut r = Resolver::new(ini);
            if let Some(m) = mode {
                r.overrides.insert("mode".into(), m.clone());
            }
            r
        };

        // failregex per mode
        let mut fail_lines: Vec<(Line, Class)> = Vec::new();
        let mut seen: Vec<String> = Vec::new();
        let mut mode_matters = false;
        let mut first = true;
        let mut resolvers = Vec::new();
        for mode in &modes {
            let r = resolver_for(mode);
            let lines = r.option_lines("failregex");
            if first {
                mode_matters = r.used.borrow().contains("mode");
            }
            let class = if first { Class::Auth } else { Class::Scan };
            // a pattern of another mode that the first mode has too is not added again
            let before = seen.len();
            for l in lines {
                let key = match &l.1 {
                    Ok(p) => p.to_string(),
                    Err((raw, _)) => format!("{}\u{0}{raw}", l.0),
                };
                if seen[..before].contains(&key) {
                    continue;
                }
                seen.push(key);
                fail_lines.push((l, class));
            }
            resolvers.push(r);
            first = false;
            if !mode_matters {
                break;
            }
        }
        if mode_default.is_some() && mode_matters {
            let others: Vec<&str> = modes[1..].iter().filter_map(|m| m.as_deref()).collect();
            let base_mode = modes[0].clone().unwrap_or_default();
            self.seen.notes.insert(format!(
                "fail2ban `mode` parameter: the patterns of mode {base_mode} (the filter's default) are rules of class \"auth\"; the patterns only in mode {} are rules of class \"scan\" (a jail with mode = \"aggressive\" uses both)",
                others.join("/")
            ));
        }
        let r0 = &resolvers[0];

        // prefregex
        let pref = match r0.option("prefregex") {
            Ok(Some(p)) if !p.trim().pieces().is_empty() => {
                let mut notes = Vec::new();
                let pref = prefregex(&p.trim(), &mut notes);
                self.seen.notes.extend(notes);
                pref
            }
            Ok(_) => None,
            Err(e) => {
                self.seen
                    .notes
                    .insert(format!("prefregex could not be read ({e}); not used"));
                None
            }
        };

        // datepattern
        let date = match r0.option("datepattern") {
            Ok(Some(v)) => translate_datepattern(&v.to_string()),
            Ok(None) => DateOutcome::Default,
            Err(e) => DateOutcome::Unsupported(e.to_string()),
        };
        let mut time_format = None;
        match &date {
            DateOutcome::Default => {}
            DateOutcome::Prefix {
                time_format: tf, ..
            } => time_format = tf.clone(),
            DateOutcome::Unsupported(why) => {
                self.seen.notes.insert(format!(
                    "datepattern not translated: {why}; the time of a line comes from its syslog prefix or the time it is read"
                ));
            }
        }
        if let DateOutcome::Prefix {
            time_format: None, ..
        } = &date
        {
            self.seen.notes.insert(
                "datepattern has regex syntax: the date is matched, but the time of a line comes from its syslog prefix or the time it is read".into(),
            );
        }
        let env = Env {
            pref,
            date,
            maxlines,
        };

        // translate
        let mut done: Vec<Done> = Vec::new();
        for ((pos, res), class) in fail_lines {
            self.report.failregex.total += 1;
            let py = match res {
                Ok(p) => p,
                Err((raw, e)) => {
                    self.skip("failregex", pos, raw, e.into());
                    continue;
                }
            };
            if let Some(head) = names_the_program(&py.to_string()) {
                self.seen.notes.insert(format!(
                    "the pattern at {pos} begins with `{head}`, what a syslog line has before its message: Portcullis matches only the message after `program[pid]: `, so as written it matches nothing there; remove that part (and list the program in `programs`)"
                ));
            }
            match translate::pattern(&py, &env, ini, &self.name, true, &mut self.seen) {
                Ok(alternatives) => {
                    self.report.failregex.translated += 1;
                    done.push(Done {
                        pos,
                        alternatives,
                        class,
                    });
                }
                Err(reason) => self.skip("failregex", pos, py.to_string(), reason),
            }
        }
        let mut ignore = Vec::new();
        for (pos, res) in r0.option_lines("ignoreregex") {
            self.report.ignoreregex.total += 1;
            let py = match res {
                Ok(p) => p,
                Err((raw, e)) => {
                    self.skip("ignoreregex", pos, raw, e.into());
                    continue;
                }
            };
            match translate::pattern(&py, &env, ini, &self.name, false, &mut self.seen) {
                Ok(alternatives) => {
                    self.report.ignoreregex.translated += 1;
                    ignore.extend(alternatives.into_iter().map(|(p, _)| p));
                }
                Err(reason) => self.skip("ignoreregex", pos, py.to_string(), reason),
            }
        }

        // [Init] parameters that the patterns used
        if let Some(init) = ini.sections.get("Init") {
            let used = r0.used.borrow().clone();
            let mut keys: Vec<&String> = init.keys().filter(|k| used.contains(*k)).collect();
            keys.sort();
            for k in keys {
                if matches!(
                    k.as_str(),
                    "failregex" | "ignoreregex" | "prefregex" | "datepattern" | "maxlines" | "mode"
                ) {
                    continue;
                }
                if let Ok(Some(v)) = r0.option(k) {
                    self.seen.notes.insert(format!(
                        "[Init] parameter {k} = {} was applied (fail2ban jails can override it; edit the patterns to change it)",
                        v.to_string().trim()
                    ));
                }
            }
        }

        // programs
        let mut programs = Vec::new();
        if self.seen.any_prefix_stripped {
            let daemon = r0
                .option("_daemon")
                .ok()
                .flatten()
                .map(|d| d.to_string())
                .unwrap_or_default();
            match daemon_programs(&daemon) {
                Some(p) => programs = p,
                None => {
                    self.seen.notes.insert(format!(
                        "_daemon = {} is not a plain list of program names: the filter reads the lines of every program (set `programs` by hand)",
                        daemon.trim()
                    ));
                }
            }
            self.seen.notes.insert(
                "the syslog prefix (%(__prefix_line)s) was removed: Portcullis matches the message after `program[pid]: `".into(),
            );
        }
        if self.seen.prefix_kept {
            self.seen.notes.insert(
                "a syslog prefix reference that is not at the start of its pattern was kept as a regex; it now has to match inside the message".into(),
            );
        }
        if self.seen.date_skipped_for_prefix {
            self.seen.notes.insert(
                "datepattern not used for patterns that start with the syslog prefix: Portcullis takes their time from the prefix".into(),
            );
        }
        if !r0.saw_prefix.get() && matches!(env.date, DateOutcome::Default) {
            self.seen.notes.insert(
                "no syslog prefix and fail2ban's default date detection: each pattern accepts an optional time stamp at the start of the line (ISO 8601, YYYY-MM-DD hh:mm:ss,mmm, YYYY/MM/DD hh:mm:ss, Apache's [Day Mon DD hh:mm:ss YYYY], syslog's Mon DD hh:mm:ss, DD/Mon/YYYY:hh:mm:ss +zzzz), and the time of a line is the time it is read; a date elsewhere in the line (a web access log's) is not cut out as fail2ban does: where the pattern has an empty \\[\\] for it, write the date's regex there, and check the filter with `portcullis test`".into(),
            );
        }

        if let Ok(Some(jm)) = r0.option("journalmatch") {
            let jm = jm
                .to_string()
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ");
            if !jm.is_empty() {
                self.report.notes.push(format!(
                    "journalmatch = {jm} is not part of a Portcullis filter: a jail reads the journal with logs = [\"journal:...\"]; name the daemon's unit and user there (_SYSTEMD_UNIT=NAME.service _UID=...), since _COMM and SYSLOG_IDENTIFIER are whatever the sender says (check-config warns about such a source)"
                ));
            }
        }
        self.report.notes.extend(ini.notes.iter().cloned());
        self.report.notes.extend(self.seen.notes.iter().cloned());
        render::filter(
            ini,
            self.name,
            programs,
            ignore,
            time_format,
            done,
            self.report,
        )
    }

    fn skip(&mut self, option: &'static str, pos: Pos, pattern: String, reason: Unsupported) {
        self.report.skipped.push(Skipped {
            option,
            pos,
            pattern,
            reason,
        });
    }
}

/// The start of a failregex (Python syntax) that names a program as a syslog line does
/// before its message (`myapp\[\d+\]:`, `\S+ webapp:`, the Proxmox wiki's `pvedaemon\[.*`),
/// if it does: fail2ban matches a pattern without `%(__prefix_line)s` against the whole line
/// after its date, Portcullis against the message alone.
fn names_the_program(py: &str) -> Option<String> {
    let mut t = py.strip_prefix('^').unwrap_or(py);
    for lead in ["\\s*", "\\s+"] {
        t = t.strip_prefix(lead).unwrap_or(t);
    }
    // a host first: `\S+ ` or `\S+\s+`
    let mut host_first = false;
    for host in ["\\S+\\s+", "\\S+\\s*", "\\S+ "] {
        if let Some(r) = t.strip_prefix(host) {
            t = r;
            host_first = true;
            break;
        }
    }
    let name_len = t
        .find(|c: char| !(c.is_ascii_alphanumeric() || "_-.".contains(c)))
        .unwrap_or(t.len());
    if name_len == 0 || !t.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return None;
    }
    let rest = &t[name_len..];
    let after = if rest.starts_with("\\[") {
        // up to the `:` that ends the tag (`\[\d+\]:`, `\[.*`)
        let end = rest.find(':').map_or(rest.len().min(12), |i| i + 1);
        &rest[..end]
    } else if rest.starts_with(':') && host_first {
        // (without a host before it, `warning:` may well begin the message)
        ":"
    } else {
        return None;
    };
    let shown = &py[..py.len() - t.len() + name_len + after.len()];
    Some(shown.to_string())
}

#[cfg(test)]
mod tests {
    use super::names_the_program;

    #[test]
    fn a_pattern_that_names_the_program_is_seen() {
        assert_eq!(
            names_the_program(r"myapp\[\d+\]: Login failed for user \S+ from <HOST>").as_deref(),
            Some(r"myapp\[\d+\]:")
        );
        assert_eq!(
            names_the_program(r"^\s*\S+ webapp: bad token from <HOST>$").as_deref(),
            Some(r"^\s*\S+ webapp:")
        );
        assert!(names_the_program(r"pvedaemon\[.*authentication failure; rhost=<HOST>").is_some());
        for p in [
            r"^Login failed for \S+ from <HOST>$",
            r"^authentication failure for <HOST>",
            r"^\[client <HOST>\] denied",
            r"^User \S+ from <HOST> not allowed",
            r"^warning: \S+\[<HOST>\]: SASL",
        ] {
            assert_eq!(names_the_program(p), None, "{p}");
        }
    }
}

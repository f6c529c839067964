//! Stage 4: the translated patterns into a Portcullis [`FilterDef`] (rule ids after the
//! lines they come from) and its TOML text, whose header comment lists what was left out.

use std::fmt::Write as _;

use portcullis_core::filter::{Class, Filter, FilterDef};

use crate::error::Error;
use crate::ini::{file_stem, Ini};
use crate::report::{Imported, Pos, Report};
use crate::translate::rule;

/// One translated failregex.
pub(crate) struct Done {
    /// Where it is written.
    pub(crate) pos: Pos,
    /// Its alternatives in order, with their weights.
    pub(crate) alternatives: Vec<(String, u32)>,
    /// `auth`, or `scan` for the patterns of other fail2ban modes.
    pub(crate) class: Class,
}

/// Builds the filter and its TOML (no filter when no failregex was translated).
pub(crate) fn filter(
    ini: &Ini,
    name: String,
    programs: Vec<String>,
    ignore: Vec<String>,
    time_format: Option<String>,
    done: Vec<Done>,
    mut report: Report,
) -> Result<Imported, Error> {
    let uses_time = done
        .iter()
        .flat_map(|d| &d.alternatives)
        .any(|(p, _)| p.contains("(?P<time>"));
    let mut rules = Vec::new();
    let mut origins = Vec::new();
    let mut ids: Vec<String> = Vec::new();
    let main_file = ini.files.last().cloned().unwrap_or_default();
    for d in &done {
        let base = if d.pos.file == main_file || ini.files.len() == 1 {
            format!("line-{}", d.pos.line)
        } else {
            format!("{}-line-{}", file_stem(&d.pos.file), d.pos.line)
        };
        // consecutive alternatives of one weight share a rule
        let mut groups: Vec<(u32, Vec<String>)> = Vec::new();
        for (p, w) in &d.alternatives {
            match groups.last_mut() {
                Some((lw, ps)) if lw == w => ps.push(p.clone()),
                _ => groups.push((*w, vec![p.clone()])),
            }
        }
        for (weight, patterns) in groups {
            let mut id = base.clone();
            if ids.contains(&id) {
                let mut k = 2;
                while ids.contains(&format!("{id}-{k}")) {
                    k += 1;
                }
                id = format!("{id}-{k}");
            }
            ids.push(id.clone());
            let mut r = rule(&id, patterns, weight);
            r.class = d.class;
            rules.push(r);
            origins.push(d.pos.clone());
        }
    }
    if rules.is_empty() {
        report
            .notes
            .push("no failregex could be translated: no filter written".into());
        return Ok(Imported {
            def: None,
            toml: None,
            origins,
            report,
        });
    }
    let def = FilterDef {
        description: format!("imported from fail2ban filter {name}"),
        name,
        programs,
        untagged_syslog: false,
        split_at: None,
        group: None,
        logs: Vec::new(),
        ports: None,
        ignore,
        time_format: if uses_time {
            time_format.map(Into::into)
        } else {
            None
        },
        correlate: None,
        rules,
    };
    Filter::compile(&def).map_err(|e| Error::Compile(e.message))?;
    let toml = render_toml(&def, &origins, &report)?;
    Ok(Imported {
        def: Some(def),
        toml: Some(toml),
        origins,
        report,
    })
}

/// `def` as TOML, with a header comment that says what was translated and what was not, and
/// the origin of each rule.
fn render_toml(def: &FilterDef, origins: &[Pos], report: &Report) -> Result<String, Error> {
    let body = toml::to_string(def)?;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# Imported from fail2ban filter {} by `portcullis import-fail2ban`.",
        report.name
    );
    let _ = writeln!(
        s,
        "# Translated {} of {} failregex and {} of {} ignoreregex patterns.",
        report.failregex.translated,
        report.failregex.total,
        report.ignoreregex.translated,
        report.ignoreregex.total
    );
    if !report.skipped.is_empty() {
        let _ = writeln!(s, "#\n# Not translated:");
        for k in &report.skipped {
            let _ = writeln!(s, "#   {} ({}): {}", k.pos, k.option, k.reason);
            let _ = writeln!(s, "#     {}", one_line(&k.pattern));
        }
    }
    if !report.notes.is_empty() {
        let _ = writeln!(s, "#\n# Notes:");
        for n in &report.notes {
            let _ = writeln!(s, "#   - {}", one_line(n));
        }
    }
    s.push('\n');
    let headers = body.lines().filter(|l| *l == "[[rule]]").count();
    let mut k = 0;
    for line in body.lines() {
        // empty lists are the defaults: leave them out
        if matches!(line, "patterns = []" | "ignore = []" | "programs = []") {
            continue;
        }
        if line == "[[rule]]" && headers == origins.len() {
            let _ = writeln!(s, "# from {}", origins[k]);
            k += 1;
        }
        s.push_str(line);
        s.push('\n');
    }
    Ok(s)
}

fn one_line(s: &str) -> String {
    s.replace(['\n', '\r'], " ")
}

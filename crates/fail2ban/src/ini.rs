//! Stage 1: reading fail2ban's INI files the way fail2ban does (Python's configparser with
//! fail2ban's settings), following `[INCLUDES]` and the `NAME.local` beside a filter.
//!
//! The result is an [`Ini`]: for every section and option, its definitions in read order
//! (later files override earlier ones; `%(known/x)s` asks for the one before).

use std::collections::HashMap;

use crate::error::Error;
use crate::Loader;

/// Limit on include nesting.
const MAX_INCLUDE_DEPTH: usize = 12;

/// One definition of an option: its file (read order), and its value lines with numbers.
#[derive(Debug, Clone)]
pub(crate) struct Def {
    /// Index into [`Ini::files`].
    pub(crate) file: usize,
    /// `(line number, text)` of the value's lines.
    pub(crate) lines: Vec<(usize, String)>,
}

impl Def {
    /// The value: its lines joined with newlines.
    pub(crate) fn joined(&self) -> String {
        let v: Vec<&str> = self.lines.iter().map(|(_, l)| l.as_str()).collect();
        v.join("\n")
    }
}

/// The options of a filter and of the files it includes.
#[derive(Debug, Default)]
pub(crate) struct Ini {
    /// Display names of the files read, by read order.
    pub(crate) files: Vec<String>,
    /// section → option → definitions in read order.
    pub(crate) sections: HashMap<String, HashMap<String, Vec<Def>>>,
    /// What the reader noticed (lines ignored, includes missing or looping).
    pub(crate) notes: Vec<String>,
}

struct ParsedFile {
    options: Vec<(String, String, Def)>,
    before: Vec<String>,
    after: Vec<String>,
}

impl Ini {
    /// Reads file `name` and its includes (`required`: a missing file is an error).
    pub(crate) fn read(
        &mut self,
        name: &str,
        load: Loader<'_>,
        depth: usize,
        stack: &mut Vec<String>,
        required: bool,
    ) -> Result<(), Error> {
        if stack.iter().any(|s| s == name) {
            self.notes.push(format!(
                "include loop at {}: not read again",
                file_name(name)
            ));
            return Ok(());
        }
        if depth > MAX_INCLUDE_DEPTH {
            return Err(Error::IncludeDepth(name.to_string()));
        }
        let Some(text) = load(name) else {
            if required {
                return Err(Error::Read(name.to_string()));
            }
            if !name.ends_with(".local") {
                self.notes.push(format!(
                    "included file {} not found: its settings are missing",
                    file_name(name)
                ));
            }
            return Ok(());
        };
        let display = file_name(name).to_string();
        let parsed = parse_ini(&text, &display, &mut self.notes);
        let dir = dir_name(name);
        stack.push(name.to_string());
        for b in &parsed.before {
            self.include(&join_path(dir, b), load, depth + 1, stack)?;
        }
        let id = self.files.len();
        self.files.push(display);
        for (section, key, mut def) in parsed.options {
            def.file = id;
            self.sections
                .entry(section)
                .or_default()
                .entry(key)
                .or_default()
                .push(def);
        }
        for a in &parsed.after {
            self.include(&join_path(dir, a), load, depth + 1, stack)?;
        }
        stack.pop();
        Ok(())
    }

    /// An included file, then the `.local` beside it (as fail2ban reads them).
    fn include(
        &mut self,
        name: &str,
        load: Loader<'_>,
        depth: usize,
        stack: &mut Vec<String>,
    ) -> Result<(), Error> {
        self.read(name, load, depth, stack, false)?;
        if let Some(stem) = name.strip_suffix(".conf") {
            let local = format!("{stem}.local");
            // (unless the file includes it itself, as fail2ban's common.conf does)
            if !self.files.iter().any(|f| f == file_name(&local)) && load(&local).is_some() {
                self.notes.push(format!(
                    "read also, as fail2ban does: {}",
                    file_name(&local)
                ));
                self.read(&local, load, depth, stack, false)?;
            }
        }
        Ok(())
    }

    /// The latest definition of `key` in `section`, or the latest one read before file
    /// `before` (for `%(known/key)s`).
    pub(crate) fn get(&self, section: &str, key: &str, before: Option<usize>) -> Option<&Def> {
        let hist = self.sections.get(section)?.get(key)?;
        match before {
            None => hist.last(),
            Some(f) => hist.iter().rev().find(|d| d.file < f),
        }
    }
}

/// Parses one INI text the way Python's configparser does with fail2ban's settings.
fn parse_ini(text: &str, display: &str, notes: &mut Vec<String>) -> ParsedFile {
    struct Cur {
        section: String,
        key: String,
        indent: usize,
        def: Def,
    }
    let mut out = ParsedFile {
        options: Vec::new(),
        before: Vec::new(),
        after: Vec::new(),
    };
    let finish = |cur: Option<Cur>, out: &mut ParsedFile| {
        if let Some(mut c) = cur {
            while c.def.lines.len() > 1 && c.def.lines.last().is_some_and(|(_, l)| l.is_empty()) {
                c.def.lines.pop();
            }
            if c.section == "INCLUDES" {
                let list: Vec<String> = c
                    .def
                    .lines
                    .iter()
                    .flat_map(|(_, l)| l.split_whitespace().map(str::to_string))
                    .collect();
                match c.key.as_str() {
                    "before" => out.before.extend(list),
                    "after" => out.after.extend(list),
                    _ => {}
                }
            } else {
                out.options.push((c.section, c.key, c.def));
            }
        }
    };
    let mut section: Option<String> = None;
    let mut cur: Option<Cur> = None;
    for (idx, raw) in text.lines().enumerate() {
        let lineno = idx + 1;
        let line = raw.trim_end_matches('\r');
        let trimmed = line.trim_start();
        let full_comment = trimmed.starts_with('#') || trimmed.starts_with(';');
        let inline = inline_comment(line);
        let value = if full_comment {
            ""
        } else {
            line[..inline.unwrap_or(line.len())].trim()
        };
        if value.is_empty() {
            if !full_comment && inline.is_none() {
                if let Some(c) = cur.as_mut() {
                    c.def.lines.push((lineno, String::new()));
                }
            }
            continue;
        }
        let indent = line.len() - trimmed.len();
        if let Some(c) = cur.as_mut() {
            if indent > c.indent {
                c.def.lines.push((lineno, value.to_string()));
                continue;
            }
        }
        finish(cur.take(), &mut out);
        if value.starts_with('[') {
            if let Some(end) = value.rfind(']') {
                section = Some(value[1..end].to_string());
                continue;
            }
        }
        let Some(p) = value.find(['=', ':']) else {
            notes.push(format!(
                "{display}:{lineno}: not an option (`key = value`), ignored"
            ));
            continue;
        };
        let Some(sec) = section.clone() else {
            notes.push(format!(
                "{display}:{lineno}: option outside of any [section], ignored"
            ));
            continue;
        };
        cur = Some(Cur {
            section: sec,
            key: value[..p].trim().to_lowercase(),
            indent,
            def: Def {
                file: 0,
                lines: vec![(lineno, value[p + 1..].trim().to_string())],
            },
        });
    }
    finish(cur.take(), &mut out);
    out
}

/// Position of a `;` inline comment (at the start or after whitespace).
fn inline_comment(line: &str) -> Option<usize> {
    let b = line.as_bytes();
    (0..b.len()).find(|&i| b[i] == b';' && (i == 0 || b[i - 1].is_ascii_whitespace()))
}

/// The last component of a `/`-separated path.
pub(crate) fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// The file name without `.conf` / `.local`: the filter's name.
pub(crate) fn file_stem(path: &str) -> String {
    let f = file_name(path);
    f.strip_suffix(".conf")
        .or_else(|| f.strip_suffix(".local"))
        .unwrap_or(f)
        .to_string()
}

fn dir_name(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) => "/",
        Some(i) => &path[..i],
        None => "",
    }
}

fn join_path(dir: &str, name: &str) -> String {
    if name.starts_with('/') || dir.is_empty() {
        name.to_string()
    } else if dir.ends_with('/') {
        format!("{dir}{name}")
    } else {
        format!("{dir}/{name}")
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use crate::{import, Imported, Pos};

    fn import_files(list: &[(&str, &str)], path: &str) -> Imported {
        let map: HashMap<String, String> = list
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        import(path, &|n: &str| map.get(n).cloned()).expect("import")
    }

    #[test]
    fn ini_details() {
        let conf = "; comment\n[Definition]\nfailregex: ^one <HOST> ; inline comment\n\n  ^two <HOST>\n# comment inside\n  ^three;not a comment <HOST>\nFailRegex2 = x\n";
        let im = import_files(&[("d/i.conf", conf)], "d/i.conf");
        let lines: Vec<String> = im.origins.iter().map(Pos::to_string).collect();
        assert_eq!(lines, vec!["i.conf:3", "i.conf:5", "i.conf:7"]);
        let def = im.def.unwrap();
        // (no syslog prefix: an optional leading date before each)
        let date = crate::translate::LEADING_DATE;
        assert_eq!(
            def.rules[2].pattern,
            Some(format!(r"{date}three;not a comment \[?{{HOST}}\]?.*"))
        );
        assert_eq!(
            def.rules[0].pattern,
            Some(format!(r"{date}one \[?{{HOST}}\]?.*"))
        );
    }

    #[test]
    fn includes_missing_and_loops() {
        let a =
            "[INCLUDES]\nbefore = b.conf\nafter = gone.conf\n[Definition]\nfailregex = ^a <HOST>$\n";
        let b = "[INCLUDES]\nbefore = a.conf\n[Definition]\nx = 1\n";
        let im = import_files(&[("a.conf", a), ("b.conf", b)], "a.conf");
        assert!(im.def.is_some());
        assert!(im
            .report
            .notes
            .iter()
            .any(|n| n.contains("gone.conf not found")));
        assert!(im.report.notes.iter().any(|n| n.contains("include loop")));
    }
}

//! Importing fail2ban filters (`filter.d/*.conf`) into Portcullis [`FilterDef`]s.
//!
//! The translation is pure: files are read through a loader callback, so includes
//! (`[INCLUDES] before = common.conf`) are resolved by the caller's file system (or by a
//! test's map of texts).
//!
//! What is understood, following fail2ban's documented filter format (`man jail.conf`):
//!
//! * INI syntax as fail2ban reads it: sections, `key = value` / `key: value`, values continued
//!   on indented lines, `#`/`;` comment lines, `;` inline comments after whitespace, option
//!   names case-insensitive.
//! * `[INCLUDES]` `before` / `after` (relative to the including file), and `NAME.local`
//!   beside `NAME.conf`; later files override earlier ones, `%(known/x)s` is the value before.
//! * `%(name)s` interpolation (`%%` is a `%`), `<name>` tags that name options (`<mode>`,
//!   `<mdre-<mode>>`, `<section/option>`), recursively with a depth limit. `[Init]` values
//!   override `[Definition]` values, which override `[DEFAULT]` ones.
//! * `failregex`, `ignoreregex` (one pattern a line), `prefregex` with
//!   `<F-CONTENT>…</F-CONTENT>` (combined with every failregex and ignoreregex), `datepattern`
//!   (simple strftime forms become `time_format` plus a `(?P<time>…)` capture), `maxlines`,
//!   `mode` (patterns of the other modes become rules of class `scan`), `_daemon` (programs).
//! * The syslog prefix (`%(__prefix_line)s` and its variants, found by name) is removed:
//!   Portcullis matches the message after the prefix.
//! * Python regex syntax that the linear-time engine lacks (look-around, back-references,
//!   conditionals, atomic groups) is reported per pattern with its file and line.

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};
use std::fmt::Write as _;

use regex_syntax::hir::{Hir, HirKind};

use crate::filter::{macros, Class, Filter, FilterDef, Kind, RuleDef};

/// Reads a file by name (as given, or an include joined to its directory); `None` if absent.
pub type Loader<'a> = &'a dyn Fn(&str) -> Option<String>;

/// First private-use character; the prefix-line references of one import get consecutive ones.
const SENTINEL_BASE: u32 = 0xE000;
/// Interpolation depth limit (references of references …).
const MAX_DEPTH: usize = 24;
/// Limit on the size of an interpolated value (guards against exponential references).
const MAX_LEN: usize = 1 << 20;
/// Limit on include nesting.
const MAX_INCLUDE_DEPTH: usize = 12;
/// `mode` values of fail2ban's stock filters, tried when a filter has a `mode` parameter.
const MODES: &[&str] = &["normal", "ddos", "extra", "aggressive"];

/// Where a pattern comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pos {
    /// File name (without directory).
    pub file: String,
    /// 1-based line number.
    pub line: usize,
}

impl std::fmt::Display for Pos {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

/// A pattern that was not translated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// `failregex` or `ignoreregex`.
    pub option: &'static str,
    /// Where the pattern is written.
    pub pos: Pos,
    /// The pattern after interpolation (the syslog prefix shown as `%(__prefix_line)s`).
    pub pattern: String,
    /// Why it was not translated.
    pub reason: String,
}

/// Counts of one option's patterns.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Patterns translated.
    pub translated: usize,
    /// Patterns found.
    pub total: usize,
}

/// What an import did and did not translate.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Filter name (file stem).
    pub name: String,
    /// `failregex` patterns.
    pub failregex: Counts,
    /// `ignoreregex` patterns.
    pub ignoreregex: Counts,
    /// Patterns not translated, with reasons.
    pub skipped: Vec<Skipped>,
    /// Everything else worth knowing (settings not translated, approximations).
    pub notes: Vec<String>,
}

impl Report {
    /// True when every pattern was translated.
    pub fn complete(&self) -> bool {
        self.skipped.is_empty()
    }

    /// Human-readable report (several lines, ends with a newline).
    pub fn render(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{}: translated {} of {} failregex and {} of {} ignoreregex patterns",
            self.name,
            self.failregex.translated,
            self.failregex.total,
            self.ignoreregex.translated,
            self.ignoreregex.total
        );
        if !self.skipped.is_empty() {
            let _ = writeln!(s, "not translated:");
            for k in &self.skipped {
                let _ = writeln!(s, "  {} ({}): {}", k.pos, k.option, k.reason);
                let _ = writeln!(s, "    {}", k.pattern);
            }
        }
        if !self.notes.is_empty() {
            let _ = writeln!(s, "notes:");
            for n in &self.notes {
                let _ = writeln!(s, "  - {n}");
            }
        }
        s
    }
}

/// The result of an import.
#[derive(Debug, Clone)]
pub struct Imported {
    /// The filter; `None` when no failregex could be translated.
    pub def: Option<FilterDef>,
    /// `def` as TOML, with a header comment that lists what was not translated.
    pub toml: Option<String>,
    /// Source location of each rule of `def`, in order.
    pub origins: Vec<Pos>,
    /// What was translated and what was not.
    pub report: Report,
}

/// Translates the fail2ban filter file `path` (read with `load`, as are its includes).
///
/// Errors (unreadable file, no `failregex`, …) are returned as messages; patterns that
/// cannot be translated are listed in the report instead.
pub fn import(path: &str, load: Loader<'_>) -> Result<Imported, String> {
    let mut ini = Ini::default();
    ini.read(path, load, 0, &mut Vec::new(), true)?;
    if let Some(stem) = path.strip_suffix(".conf") {
        ini.read(&format!("{stem}.local"), load, 0, &mut Vec::new(), false)?;
    }
    let name = file_stem(path);
    Importer::new(&ini, name).run()
}

// ---------------------------------------------------------------------------------------
// INI reading
// ---------------------------------------------------------------------------------------

/// One definition of an option: its file (read order), and its value lines with numbers.
#[derive(Debug, Clone)]
struct Def {
    file: usize,
    lines: Vec<(usize, String)>,
}

impl Def {
    fn joined(&self) -> String {
        let v: Vec<&str> = self.lines.iter().map(|(_, l)| l.as_str()).collect();
        v.join("\n")
    }
}

#[derive(Debug, Default)]
struct Ini {
    /// Display names of the files read, by read order.
    files: Vec<String>,
    /// section → option → definitions in read order.
    sections: HashMap<String, HashMap<String, Vec<Def>>>,
    notes: Vec<String>,
}

struct ParsedFile {
    options: Vec<(String, String, Def)>,
    before: Vec<String>,
    after: Vec<String>,
}

impl Ini {
    fn read(
        &mut self,
        name: &str,
        load: Loader<'_>,
        depth: usize,
        stack: &mut Vec<String>,
        required: bool,
    ) -> Result<(), String> {
        if stack.iter().any(|s| s == name) {
            self.notes.push(format!(
                "include loop at {}: not read again",
                file_name(name)
            ));
            return Ok(());
        }
        if depth > MAX_INCLUDE_DEPTH {
            return Err(format!("includes nested too deeply at {name}"));
        }
        let Some(text) = load(name) else {
            if required {
                return Err(format!("cannot read {name}"));
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
            self.read(&join_path(dir, b), load, depth + 1, stack, false)?;
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
            self.read(&join_path(dir, a), load, depth + 1, stack, false)?;
        }
        stack.pop();
        Ok(())
    }

    /// The latest definition of `key` in `section`, or the latest one read before file
    /// `before` (for `%(known/key)s`).
    fn get(&self, section: &str, key: &str, before: Option<usize>) -> Option<&Def> {
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

fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

fn file_stem(path: &str) -> String {
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

// ---------------------------------------------------------------------------------------
// Interpolation
// ---------------------------------------------------------------------------------------

/// Context of an interpolation: the section whose options unqualified names refer to, and
/// the file of the value (for `known/`).
#[derive(Debug, Clone)]
struct Ctx {
    section: String,
    file: Option<usize>,
}

/// One pattern line after interpolation, or (the line as written, why it could not be
/// interpolated).
type Line = (Pos, Result<String, (String, String)>);

struct Resolver<'a> {
    ini: &'a Ini,
    overrides: HashMap<String, String>,
    /// Replace references to the syslog prefix line by sentinels.
    sentinels: bool,
    /// Names looked up (to know whether `mode` matters).
    used: RefCell<BTreeSet<String>>,
    /// Prefix-line reference names, by sentinel index.
    prefix_names: RefCell<Vec<String>>,
}

/// Option names are case-insensitive, section names are not: `Sec/Key` → `Sec/key`.
fn norm_name(name: &str) -> String {
    match name.rsplit_once('/') {
        Some((sec, key)) => format!("{sec}/{}", key.to_lowercase()),
        None => name.to_lowercase(),
    }
}

fn is_prefix_name(name: &str) -> bool {
    name.rsplit('/')
        .next()
        .unwrap_or(name)
        .contains("prefix_line")
}

impl<'a> Resolver<'a> {
    fn new(ini: &'a Ini) -> Resolver<'a> {
        Resolver {
            ini,
            overrides: HashMap::new(),
            sentinels: true,
            used: RefCell::new(BTreeSet::new()),
            prefix_names: RefCell::new(Vec::new()),
        }
    }

    fn sentinel(&self, name: &str) -> String {
        let mut names = self.prefix_names.borrow_mut();
        let i = match names.iter().position(|n| n == name) {
            Some(i) => i,
            None => {
                names.push(name.to_string());
                names.len() - 1
            }
        };
        char::from_u32(SENTINEL_BASE + i as u32)
            .unwrap_or('\u{E000}')
            .to_string()
    }

    /// The sentinel characters of this resolver and the names they stand for.
    fn sentinel_names(&self) -> Vec<(char, String)> {
        self.prefix_names
            .borrow()
            .iter()
            .enumerate()
            .filter_map(|(i, n)| Some((char::from_u32(SENTINEL_BASE + i as u32)?, n.clone())))
            .collect()
    }

    fn note_use(&self, name: &str) {
        let base = name.rsplit('/').next().unwrap_or(name);
        self.used.borrow_mut().insert(base.to_string());
    }

    /// `%(name)s`: the definition and the context its value is interpolated in.
    fn lookup_percent(&self, name: &str, ctx: &Ctx) -> Option<(&'a Def, Ctx)> {
        let ini = self.ini;
        if let Some(key) = name.strip_prefix("known/") {
            let before = ctx.file.unwrap_or(usize::MAX);
            let d = ini
                .get(&ctx.section, key, Some(before))
                .or_else(|| ini.get("DEFAULT", key, Some(before)))?;
            return Some((
                d,
                Ctx {
                    section: ctx.section.clone(),
                    file: Some(d.file),
                },
            ));
        }
        if let Some((sec, key)) = name.split_once('/') {
            let d = ini
                .get(sec, key, None)
                .or_else(|| ini.get("DEFAULT", key, None))?;
            return Some((
                d,
                Ctx {
                    section: sec.to_string(),
                    file: Some(d.file),
                },
            ));
        }
        let d = ini
            .get(&ctx.section, name, None)
            .or_else(|| ini.get("DEFAULT", name, None))?;
        Some((
            d,
            Ctx {
                section: ctx.section.clone(),
                file: Some(d.file),
            },
        ))
    }

    /// `<name>` (and the top-level options): `[Init]`, then `[Definition]`, then `[DEFAULT]`.
    fn lookup_tag(&self, name: &str) -> Option<(&'a Def, Ctx)> {
        let ini = self.ini;
        if let Some((sec, key)) = name.split_once('/') {
            if sec == "known" {
                return None;
            }
            let d = ini
                .get(sec, key, None)
                .or_else(|| ini.get("DEFAULT", key, None))?;
            return Some((
                d,
                Ctx {
                    section: sec.to_string(),
                    file: Some(d.file),
                },
            ));
        }
        for sec in ["Init", "Definition"] {
            if let Some(d) = ini.get(sec, name, None) {
                return Some((
                    d,
                    Ctx {
                        section: sec.to_string(),
                        file: Some(d.file),
                    },
                ));
            }
        }
        let d = ini.get("DEFAULT", name, None)?;
        Some((
            d,
            Ctx {
                section: "Definition".into(),
                file: Some(d.file),
            },
        ))
    }

    /// `%`-interpolation of one raw value (`%%`, `%(name)s`).
    fn interp(&self, text: &str, ctx: &Ctx, depth: usize) -> Result<String, String> {
        if depth > MAX_DEPTH {
            return Err("interpolation nested too deeply (a reference loop?)".into());
        }
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(p) = rest.find('%') {
            out.push_str(&rest[..p]);
            let after = &rest[p + 1..];
            if let Some(r) = after.strip_prefix('%') {
                out.push('%');
                rest = r;
            } else if let Some(r) = after.strip_prefix('(') {
                let Some(close) = r.find(")s") else {
                    return Err("unterminated %(…)s reference".into());
                };
                let name = norm_name(&r[..close]);
                out.push_str(&self.percent_ref(&name, ctx, depth + 1)?);
                rest = &r[close + 2..];
            } else {
                out.push('%');
                rest = after;
            }
            if out.len() > MAX_LEN {
                return Err("interpolated value too large (a reference loop?)".into());
            }
        }
        out.push_str(rest);
        Ok(out)
    }

    fn percent_ref(&self, name: &str, ctx: &Ctx, depth: usize) -> Result<String, String> {
        if self.sentinels && is_prefix_name(name) {
            self.note_use(name);
            return Ok(self.sentinel(name));
        }
        self.note_use(name);
        if let Some(v) = self.overrides.get(name) {
            return Ok(v.clone());
        }
        let (def, c) = self
            .lookup_percent(name, ctx)
            .ok_or_else(|| format!("unknown reference %({name})s"))?;
        self.interp(&def.joined(), &c, depth)
    }

    /// The value a `<name>` tag stands for, if `name` is an option.
    fn tag_value(&self, name: &str, depth: usize) -> Result<Option<String>, String> {
        if self.sentinels && is_prefix_name(name) {
            self.note_use(name);
            return Ok(Some(self.sentinel(name)));
        }
        if let Some(v) = self.overrides.get(name) {
            self.note_use(name);
            return Ok(Some(v.clone()));
        }
        let Some((def, c)) = self.lookup_tag(name) else {
            return Ok(None);
        };
        self.note_use(name);
        self.interp(&def.joined(), &c, depth).map(Some)
    }

    /// Substitutes `<name>` tags that name options, innermost first, until none is left.
    fn tags(&self, mut text: String, depth: usize) -> Result<String, String> {
        for _ in 0..64 {
            let mut changed = false;
            let mut out = String::with_capacity(text.len());
            let mut i = 0;
            let b = text.as_bytes();
            while i < b.len() {
                if b[i] == b'<' {
                    if let Some(len) = b[i + 1..].iter().position(|&c| c == b'>' || c == b'<') {
                        let end = i + 1 + len;
                        let name = &text[i + 1..end];
                        let after_group = text[..i].ends_with("?P") || text[..i].ends_with('?');
                        if b[end] == b'>' && !after_group && is_tag_name(name) {
                            // exact name: option names are stored lower-case, so `<HOST>`
                            // never names an option `host` (as in fail2ban)
                            if let Some(v) = self.tag_value(name, depth + 1)? {
                                out.push_str(&v);
                                i = end + 1;
                                changed = true;
                                continue;
                            }
                        }
                    }
                }
                let ch = text[i..].chars().next().unwrap_or('\0');
                out.push(ch);
                i += ch.len_utf8().max(1);
            }
            if out.len() > MAX_LEN {
                return Err("interpolated value too large (a reference loop?)".into());
            }
            text = out;
            if !changed {
                return Ok(text);
            }
        }
        Err("tag substitution nested too deeply (a reference loop?)".into())
    }

    fn expand(&self, text: &str, ctx: &Ctx) -> Result<String, String> {
        let v = self.interp(text, ctx, 0)?;
        self.tags(v, 0)
    }

    /// A whole option (top-level lookup order), fully expanded.
    fn option(&self, key: &str) -> Result<Option<String>, String> {
        if let Some(v) = self.overrides.get(key) {
            return Ok(Some(v.clone()));
        }
        let Some((def, ctx)) = self.lookup_tag(key) else {
            return Ok(None);
        };
        self.note_use(key);
        self.expand(&def.joined(), &ctx).map(Some)
    }

    /// The pattern lines of a list option (`failregex`, `ignoreregex`), each with the place
    /// it is written; a line that is only a reference is followed to the referenced lines.
    fn option_lines(&self, key: &str) -> Vec<Line> {
        let mut out = Vec::new();
        if let Some((def, ctx)) = self.lookup_tag(key) {
            self.note_use(key);
            self.def_lines(def, &ctx, 0, &mut out);
        }
        out
    }

    fn def_lines(&self, def: &Def, ctx: &Ctx, depth: usize, out: &mut Vec<Line>) {
        let file = self
            .ini
            .files
            .get(def.file)
            .cloned()
            .unwrap_or_else(|| "?".into());
        for (lineno, text) in &def.lines {
            let pos = Pos {
                file: file.clone(),
                line: *lineno,
            };
            let t = text.trim();
            if t.is_empty() {
                continue;
            }
            if depth < MAX_DEPTH {
                if let Some((d, c)) = self.single_reference(t, ctx) {
                    self.def_lines(d, &c, depth + 1, out);
                    continue;
                }
            }
            match self.expand(t, ctx) {
                Ok(v) => {
                    for piece in v.split('\n') {
                        let p = piece.trim();
                        if !p.is_empty() {
                            out.push((pos.clone(), Ok(p.to_string())));
                        }
                    }
                }
                Err(e) => out.push((pos, Err((t.to_string(), e)))),
            }
        }
    }

    /// A line that is exactly `%(name)s` or `<name>` naming an option (not the prefix line).
    fn single_reference(&self, t: &str, ctx: &Ctx) -> Option<(&'a Def, Ctx)> {
        if let Some(name) = t.strip_prefix("%(").and_then(|r| r.strip_suffix(")s")) {
            let name = norm_name(name);
            if name.contains(['%', '(', ')']) || is_prefix_name(&name) {
                return None;
            }
            if self.overrides.contains_key(&name) {
                return None;
            }
            self.note_use(&name);
            return self.lookup_percent(&name, ctx);
        }
        let inner = t.strip_prefix('<')?.strip_suffix('>')?;
        let name = self.tags(inner.to_string(), 0).ok()?;
        if !is_tag_name(&name) || is_prefix_name(&name) || self.overrides.contains_key(&name) {
            return None;
        }
        let found = self.lookup_tag(&name);
        if found.is_some() {
            self.note_use(&name);
        }
        found
    }
}

fn is_tag_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '/' | '.'))
}

// ---------------------------------------------------------------------------------------
// Python regex → Portcullis pattern
// ---------------------------------------------------------------------------------------

/// Per-pattern translation state.
#[derive(Default)]
struct Tr {
    /// Date patterns: named groups become plain groups, `(?P=name)` repeats the group.
    date_mode: bool,
    has_fuser: bool,
    user_done: bool,
    host_done: bool,
    /// Notes about this pattern (approximations).
    notes: Vec<String>,
    /// The pattern used `<F-MLF…>` tags.
    multiline_tags: bool,
}

/// The `{HOST}` macro without its capture name, for a second address in one pattern.
fn anonymous_host() -> String {
    macros::get("HOST")
        .map(|v| v.replacen("(?P<host>", "(?:", 1))
        .unwrap_or_else(|| "\\S+".into())
}

impl Tr {
    fn run(&mut self, py: &str) -> Result<String, String> {
        let c: Vec<char> = py.chars().collect();
        self.has_fuser = py.contains("<F-USER>");
        let mut out = String::with_capacity(py.len() * 2);
        // open groups: Some((name, start of body in `out`)) for named groups in date mode
        let mut groups: Vec<Option<(String, usize)>> = Vec::new();
        let mut named_bodies: HashMap<String, String> = HashMap::new();
        let mut ftags: Vec<String> = Vec::new();
        let mut i = 0;
        while i < c.len() {
            let ch = c[i];
            match ch {
                '\\' => {
                    let Some(&e) = c.get(i + 1) else {
                        return Err("the pattern ends with a lone backslash".into());
                    };
                    escape(e, false, &mut out)?;
                    i += 2;
                }
                '[' => {
                    i = class(&c, i, &mut out)?;
                }
                '(' => {
                    if c.get(i + 1) != Some(&'?') {
                        out.push('(');
                        groups.push(None);
                        i += 1;
                        continue;
                    }
                    let rest: String = c[i + 2..].iter().take(3).collect();
                    if rest.starts_with("P<") {
                        let close =
                            find_char(&c, i + 4, '>').ok_or("unterminated group name (?P<…")?;
                        let name: String = c[i + 4..close].iter().collect();
                        if self.date_mode {
                            out.push_str("(?:");
                            groups.push(Some((name, out.len())));
                        } else {
                            let _ = write!(out, "(?P<{name}>");
                            groups.push(None);
                        }
                        i = close + 1;
                    } else if rest.starts_with("P=") {
                        let close =
                            find_char(&c, i + 4, ')').ok_or("unterminated back-reference (?P=…")?;
                        let name: String = c[i + 4..close].iter().collect();
                        match named_bodies.get(&name) {
                            Some(body) if self.date_mode => {
                                let _ = write!(out, "(?:{body})");
                            }
                            _ => {
                                return Err(format!(
                                    "back-reference (?P={name}) is not supported by the linear-time engine"
                                ))
                            }
                        }
                        i = close + 1;
                    } else if rest.starts_with('#') {
                        i = find_char(&c, i, ')').ok_or("unterminated comment (?#…")? + 1;
                    } else if rest.starts_with('=') {
                        return Err(
                            "look-ahead (?=…) is not supported by the linear-time engine".into(),
                        );
                    } else if rest.starts_with('!') {
                        return Err(
                            "look-ahead (?!…) is not supported by the linear-time engine".into(),
                        );
                    } else if rest.starts_with("<=") {
                        return Err(
                            "look-behind (?<=…) is not supported by the linear-time engine".into(),
                        );
                    } else if rest.starts_with("<!") {
                        return Err(
                            "look-behind (?<!…) is not supported by the linear-time engine".into(),
                        );
                    } else if rest.starts_with('(') {
                        return Err("conditional group (?(name)…|…) is not supported by the linear-time engine".into());
                    } else if rest.starts_with('>') {
                        return Err("atomic group (?>…) is not supported (Portcullis' matchers bound their work themselves)".into());
                    } else if rest.starts_with(':') {
                        out.push_str("(?:");
                        groups.push(None);
                        i += 3;
                    } else {
                        // inline flags: (?aiLmsux) or (?flags-flags:…)
                        let mut j = i + 2;
                        let mut flags = String::new();
                        while j < c.len() && "aiLmsux-".contains(c[j]) {
                            if "imsx-".contains(c[j]) {
                                flags.push(c[j]);
                            }
                            j += 1;
                        }
                        // Python-only flags (a, L, u) are dropped; `(?-i:…)` stays
                        let flags = flags.trim_end_matches('-').to_string();
                        match c.get(j) {
                            Some(')') => {
                                if !flags.is_empty() {
                                    let _ = write!(out, "(?{flags})");
                                }
                                i = j + 1;
                            }
                            Some(':') => {
                                let _ = write!(out, "(?{flags}:");
                                groups.push(None);
                                i = j + 1;
                            }
                            _ => {
                                return Err(format!(
                                    "unknown group syntax (?{}",
                                    c[i + 2..].iter().take(4).collect::<String>()
                                ));
                            }
                        }
                    }
                }
                ')' => {
                    match groups.pop() {
                        Some(Some((name, start))) => {
                            named_bodies.insert(name, out[start..].to_string());
                        }
                        Some(None) => {}
                        None => return Err("unbalanced parenthesis".into()),
                    }
                    out.push(')');
                    i += 1;
                }
                '{' => match quantifier(&c, i) {
                    Some((q, next)) => {
                        out.push_str(&q);
                        i = next;
                        possessive(&c, i)?;
                    }
                    None => {
                        out.push_str("\\{");
                        i += 1;
                    }
                },
                '}' => {
                    out.push_str("\\}");
                    i += 1;
                }
                '*' | '+' | '?' => {
                    out.push(ch);
                    i += 1;
                    possessive(&c, i)?;
                }
                '<' => {
                    i = self.tag(&c, i, &mut out, &mut ftags)?;
                }
                _ => {
                    out.push(ch);
                    i += 1;
                }
            }
        }
        if !groups.is_empty() {
            return Err("unbalanced parenthesis (missing `)`)".into());
        }
        if let Some(t) = ftags.last() {
            return Err(format!("<F-{t}> is not closed"));
        }
        Ok(out)
    }

    /// A fail2ban tag at `c[i] == '<'`; returns the next index.
    fn tag(
        &mut self,
        c: &[char],
        i: usize,
        out: &mut String,
        ftags: &mut Vec<String>,
    ) -> Result<usize, String> {
        let Some(close) = find_char(c, i + 1, '>') else {
            out.push('<');
            return Ok(i + 1);
        };
        let inner: String = c[i + 1..close].iter().collect();
        let next = close + 1;
        if let Some(name) = inner.strip_prefix("/F-") {
            if !name.is_empty() && name.chars().all(is_fname_char) {
                match ftags.pop() {
                    Some(open) if open == name => {
                        out.push(')');
                        return Ok(next);
                    }
                    _ => return Err(format!("unbalanced </F-{name}> tag")),
                }
            }
        }
        if let Some(name) = inner.strip_prefix("F-") {
            if !name.is_empty() && name.chars().all(is_fname_char) {
                let open = match name {
                    "USER" if !self.user_done => {
                        self.user_done = true;
                        "(?P<user>"
                    }
                    n if n.starts_with("ALT_USER") && !self.has_fuser && !self.user_done => {
                        self.user_done = true;
                        "(?P<user>"
                    }
                    "IP4" | "IP6" | "ADDR" | "HOST" if !self.host_done => {
                        self.host_done = true;
                        "(?P<host>"
                    }
                    "DNS" => {
                        return Err("<F-DNS> captures a host name: Portcullis bans addresses and does not resolve names".into())
                    }
                    "ID" => {
                        return Err("<F-ID> (a ban identifier other than the address) is not supported".into())
                    }
                    "MLFID" | "MLFFORGET" | "MLFGAINED" => {
                        self.multiline_tags = true;
                        "(?:"
                    }
                    _ => "(?:",
                };
                out.push_str(open);
                ftags.push(name.to_string());
                return Ok(next);
            }
        }
        match inner.as_str() {
            "HOST" | "ADDR" => {
                out.push_str("\\[?");
                self.host(out);
                out.push_str("\\]?");
            }
            "IP4" => {
                if self.host_done {
                    out.push_str("[0-9]{1,3}(?:\\.[0-9]{1,3}){3}");
                    self.notes.push("the address appears twice; only the first is captured".into());
                } else {
                    self.host_done = true;
                    out.push_str("{IPV4}");
                }
            }
            "IP6" => {
                if self.host_done {
                    out.push_str("[0-9A-Fa-f]{0,4}:[0-9A-Fa-f:.]{1,44}");
                    self.notes.push("the address appears twice; only the first is captured".into());
                } else {
                    self.host_done = true;
                    out.push_str("{IPV6}");
                }
            }
            "SUBNET" => {
                out.push_str("\\[?");
                self.host(out);
                out.push_str("(?:/[0-9]{1,3})?\\]?");
                self.notes.push(
                    "<SUBNET>: the /CIDR suffix is matched but only the address is banned".into(),
                );
            }
            "CIDR" => out.push_str("[0-9]{1,3}"),
            "DNS" => {
                return Err("<DNS> matches host names: Portcullis bans addresses and does not resolve names".into())
            }
            "SKIPLINES" => {
                return Err("<SKIPLINES> (multi-line matching) is not supported: Portcullis matches one line at a time".into())
            }
            _ => {
                if is_tag_name(&inner) {
                    self.notes.push(format!(
                        "<{inner}> is neither an option of the filter nor a fail2ban tag: kept as literal text"
                    ));
                }
                out.push('<');
                return Ok(i + 1);
            }
        }
        Ok(next)
    }

    fn host(&mut self, out: &mut String) {
        if self.host_done {
            out.push_str(&anonymous_host());
            self.notes
                .push("the address appears twice; only the first is captured".into());
        } else {
            self.host_done = true;
            out.push_str("{HOST}");
        }
    }
}

fn is_fname_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

fn find_char(c: &[char], from: usize, want: char) -> Option<usize> {
    (from..c.len()).find(|&k| c[k] == want)
}

/// A possessive quantifier (`*+`, `++`, `?+`, `{m,n}+`) at `c[i]`?
fn possessive(c: &[char], i: usize) -> Result<(), String> {
    if c.get(i) == Some(&'+') {
        return Err(
            "possessive quantifier (`*+`, `++`, `?+`) is not supported (Portcullis' matchers bound their work themselves)"
                .into(),
        );
    }
    Ok(())
}

/// A Python counted repetition at `c[i] == '{'`: the Rust form and the next index.
fn quantifier(c: &[char], i: usize) -> Option<(String, usize)> {
    let mut j = i + 1;
    let lo_start = j;
    while j < c.len() && c[j].is_ascii_digit() {
        j += 1;
    }
    let lo: String = c[lo_start..j].iter().collect();
    let mut hi: Option<String> = None;
    if c.get(j) == Some(&',') {
        j += 1;
        let hs = j;
        while j < c.len() && c[j].is_ascii_digit() {
            j += 1;
        }
        hi = Some(c[hs..j].iter().collect());
    }
    if c.get(j) != Some(&'}') || (lo.is_empty() && hi.is_none()) {
        return None;
    }
    let lo = if lo.is_empty() { "0".to_string() } else { lo };
    let q = match hi {
        None => format!("{{{lo}}}"),
        Some(h) => format!("{{{lo},{h}}}"),
    };
    Some((q, j + 1))
}

/// One escape `\e` (outside or inside a class), in Rust syntax.
fn escape(e: char, in_class: bool, out: &mut String) -> Result<(), String> {
    match e {
        '1'..='9' => {
            return Err(format!(
                "back-reference \\{e} is not supported by the linear-time engine"
            ))
        }
        '0' => out.push_str("\\x00"),
        'Z' if !in_class => out.push_str("\\z"),
        'b' if in_class => out.push_str("\\x08"),
        'N' => return Err("named Unicode escape \\N{…} is not supported".into()),
        c if c.is_ascii_alphanumeric() => {
            out.push('\\');
            out.push(c);
        }
        c if c.is_whitespace() => {
            let _ = write!(out, "\\x{{{:x}}}", c as u32);
        }
        c if regex_syntax::is_meta_character(c) => {
            out.push('\\');
            out.push(c);
        }
        c => out.push(c),
    }
    Ok(())
}

/// A character class starting at `c[i] == '['`; returns the index after it.
fn class(c: &[char], i: usize, out: &mut String) -> Result<usize, String> {
    let mut j = i + 1;
    out.push('[');
    if c.get(j) == Some(&'^') {
        out.push('^');
        j += 1;
    }
    if c.get(j) == Some(&']') {
        out.push_str("\\]");
        j += 1;
    }
    while j < c.len() {
        match c[j] {
            ']' => {
                out.push(']');
                return Ok(j + 1);
            }
            '\\' => {
                let Some(&e) = c.get(j + 1) else { break };
                escape(e, true, out)?;
                j += 2;
            }
            '[' | '&' | '~' => {
                out.push('\\');
                out.push(c[j]);
                j += 1;
            }
            '-' if c.get(j + 1) == Some(&'-') => {
                out.push_str("\\-");
                j += 1;
            }
            ch => {
                out.push(ch);
                j += 1;
            }
        }
    }
    Err("unterminated character class `[`".into())
}

/// Does the part of a Python pattern inside `<F-{tag}>` take part in every match? True when
/// the tag is present and neither it nor any group around it is optional or one branch of an
/// alternative (`<F-…>` groups around it are fine: they are plain groups).
fn tag_is_unconditional(py: &str, tag: &str) -> bool {
    struct G {
        ftag: bool,
        target: bool,
        alt: bool,
        holds_target: bool,
    }
    let c: Vec<char> = py.chars().collect();
    let open: Vec<char> = format!("<F-{tag}>").chars().collect();
    let optional_after = |k: usize| {
        matches!(c.get(k), Some('?') | Some('*'))
            || (c.get(k) == Some(&'{') && matches!(c.get(k + 1), Some('0') | Some(',')))
    };
    let mut stack: Vec<G> = Vec::new();
    let (mut found, mut ok, mut top_alt) = (false, true, false);
    let mut i = 0;
    while i < c.len() {
        match c[i] {
            '\\' => i += 1,
            '[' => {
                let mut j = i + 1;
                if c.get(j) == Some(&'^') {
                    j += 1;
                }
                if c.get(j) == Some(&']') {
                    j += 1;
                }
                while j < c.len() && c[j] != ']' {
                    if c[j] == '\\' {
                        j += 1;
                    }
                    j += 1;
                }
                i = j;
            }
            '(' => stack.push(G {
                ftag: false,
                target: false,
                alt: false,
                holds_target: false,
            }),
            ')' => {
                if let Some(g) = stack.pop() {
                    if g.holds_target && optional_after(i + 1) {
                        ok = false;
                    }
                }
            }
            '|' => match stack.last_mut() {
                Some(g) => g.alt = true,
                None => top_alt = true,
            },
            '<' if c.get(i + 1) == Some(&'F') && c.get(i + 2) == Some(&'-') => {
                let target = c[i..].starts_with(&open);
                if target {
                    found = true;
                    ok &= stack.iter().all(|g| g.ftag);
                    for g in stack.iter_mut() {
                        g.holds_target = true;
                    }
                }
                stack.push(G {
                    ftag: true,
                    target,
                    alt: false,
                    holds_target: false,
                });
                i = find_char(&c, i, '>').unwrap_or(c.len());
            }
            '<' if c.get(i + 1) == Some(&'/') && c.get(i + 2) == Some(&'F') => {
                let end = find_char(&c, i, '>').unwrap_or(c.len());
                if let Some(g) = stack.pop() {
                    if (g.holds_target && g.alt)
                        || ((g.target || g.holds_target) && optional_after(end + 1))
                    {
                        ok = false;
                    }
                }
                i = end;
            }
            _ => {}
        }
        i += 1;
    }
    found && ok && !top_alt
}

// ---------------------------------------------------------------------------------------
// Anchors, prefix line, prefregex
// ---------------------------------------------------------------------------------------

/// A Python pattern split into its leading inline flags, anchors and body.
#[derive(Debug, Clone)]
struct Parts {
    flags: String,
    start: bool,
    end: bool,
    body: String,
}

fn split_anchors(py: &str) -> Parts {
    let (flags, start, rest) = split_start(py);
    let (end, body) = split_end(rest);
    Parts {
        flags,
        start,
        end,
        body: body.to_string(),
    }
}

/// Leading inline flags (`(?i)`) and `^` / `\A`.
fn split_start(py: &str) -> (String, bool, &str) {
    let mut s = py;
    let mut flags = String::new();
    if let Some(tail) = s.strip_prefix("(?") {
        let n = tail
            .find(|ch: char| !"aiLmsux".contains(ch))
            .unwrap_or(tail.len());
        if n > 0 && tail[n..].starts_with(')') {
            flags = s[..n + 3].to_string();
            s = &s[n + 3..];
        }
    }
    if let Some(r) = s.strip_prefix('^') {
        (flags, true, r)
    } else if let Some(r) = s.strip_prefix("\\A") {
        (flags, true, r)
    } else {
        (flags, false, s)
    }
}

/// Trailing `$` / `\Z` (not escaped).
fn split_end(s: &str) -> (bool, &str) {
    let bs = |t: &str| t.chars().rev().take_while(|&c| c == '\\').count();
    if let Some(r) = s.strip_suffix('$').filter(|r| bs(r) % 2 == 0) {
        (true, r)
    } else if let Some(r) = s.strip_suffix("\\Z").filter(|r| bs(r) % 2 == 0) {
        (true, r)
    } else {
        (false, s)
    }
}

fn is_sentinel(c: char) -> bool {
    (SENTINEL_BASE..SENTINEL_BASE + 256).contains(&(c as u32))
}

/// Unwraps `<F-MLFID>S</F-MLFID>` and removes a leading prefix-line sentinel (after
/// optional whitespace). Returns the body and whether a sentinel was removed.
fn strip_prefix_sentinel(body: &str) -> (String, bool) {
    let mut b = body.to_string();
    for ch in b.clone().chars().filter(|&c| is_sentinel(c)) {
        b = b.replace(&format!("<F-MLFID>{ch}</F-MLFID>"), &ch.to_string());
    }
    let trimmed = b.strip_prefix("\\s*").unwrap_or(&b);
    let mut chars = trimmed.chars();
    match chars.next() {
        Some(c) if is_sentinel(c) => (chars.as_str().to_string(), true),
        _ => (b, false),
    }
}

/// The prefregex, split around its `<F-CONTENT>…</F-CONTENT>`.
#[derive(Debug, Clone)]
struct Pref {
    /// Python text before the content (leading anchor and prefix line removed).
    pre: String,
    /// Python text after the content (trailing anchor removed).
    post: String,
    flags: String,
    start: bool,
    end: bool,
    prefix_stripped: bool,
}

/// Glues a Python pattern into one whole-message pattern (still Python syntax + tags).
/// Returns the pattern and whether the syslog prefix line was removed.
fn assemble(pattern: &str, pref: Option<&Pref>) -> (String, bool) {
    let p = split_anchors(pattern);
    let (body, stripped) = strip_prefix_sentinel(&p.body);
    let mut inner = String::new();
    inner.push_str(&p.flags);
    if !p.start {
        inner.push_str(".*?");
    }
    inner.push_str(&body);
    if !p.end {
        inner.push_str(".*");
    }
    match pref {
        None => (inner, stripped),
        Some(pr) => {
            let mut s = pr.flags.clone();
            if !pr.start {
                s.push_str(".*?");
            }
            s.push_str(&pr.pre);
            let _ = write!(s, "(?:{inner})");
            s.push_str(&pr.post);
            if !pr.end {
                s.push_str(".*");
            }
            (s, stripped || pr.prefix_stripped)
        }
    }
}

// ---------------------------------------------------------------------------------------
// datepattern
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq)]
enum DateOutcome {
    /// fail2ban's default detection (or none): nothing to add.
    Default,
    /// Put this (Rust syntax) in front of every pattern.
    Prefix {
        regex: String,
        time_format: Option<String>,
    },
    /// Cannot translate; the reason.
    Unsupported(String),
}

/// Regex of a strftime directive (also valid Python).
fn directive_regex(d: char) -> Option<&'static str> {
    Some(match d {
        'Y' => "[0-9]{4}",
        'y' => "[0-9]{2}",
        'm' => "[0-9]{1,2}",
        'd' | 'e' => "[ 0-9]?[0-9]",
        'H' => "[0-9]{1,2}",
        'M' | 'S' => "[0-9]{2}",
        'T' => "[0-9]{1,2}:[0-9]{2}:[0-9]{2}",
        'b' => "[A-Za-z]{3}",
        'f' => "[0-9]{1,9}",
        'z' => "(?:Z|[+-][0-9]{2}:?[0-9]{2})",
        's' => "[0-9]{9,11}(?:\\.[0-9]+)?",
        _ => return None,
    })
}

/// Regex of directives Portcullis cannot parse (the time is then not taken from the line).
fn other_directive_regex(d: char) -> Option<&'static str> {
    Some(match d {
        'a' => "[A-Za-z]{3}",
        'A' | 'B' => "[A-Za-z]+",
        'I' => "[0-9]{1,2}",
        'p' => "(?:AM|PM|am|pm)",
        'j' => "[0-9]{1,3}",
        'Z' => "[A-Za-z]{1,5}",
        'k' | 'l' => "[ 0-9]?[0-9]",
        _ => return None,
    })
}

fn translate_datepattern(value: &str) -> DateOutcome {
    let lines: Vec<&str> = value
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    if lines.is_empty() {
        return DateOutcome::Default;
    }
    if lines.len() > 1 {
        return DateOutcome::Unsupported(format!(
            "datepattern has {} alternatives; Portcullis takes one time format",
            lines.len()
        ));
    }
    let mut dp = lines[0];
    if let Some(r) = dp.strip_prefix("{UNB}") {
        dp = r;
    }
    if matches!(
        dp,
        "{^LN-BEG}" | "{DEFAULT}" | "{^LN-BEG}{DEFAULT}" | "{NONE}"
    ) {
        return DateOutcome::Default;
    }
    let (anchored, dp) = if let Some(r) = dp.strip_prefix("{^LN-BEG}") {
        (true, r)
    } else if let Some(r) = dp.strip_prefix('^') {
        (true, r)
    } else {
        (false, dp)
    };
    if dp == "{DATE}" || dp == "{DEFAULT}" {
        return DateOutcome::Default;
    }
    if dp.contains("{DATE}") || dp.contains("{DEFAULT}") {
        return DateOutcome::Unsupported(
            "datepattern uses fail2ban's default date patterns ({DATE})".into(),
        );
    }
    if !anchored {
        return DateOutcome::Unsupported(
            "datepattern is not anchored at the start of the line (fail2ban cuts the date out of the middle of the line; Portcullis patterns see the whole line)".into(),
        );
    }
    if dp.eq_ignore_ascii_case("epoch") {
        return DateOutcome::Prefix {
            regex: format!("(?P<time>{})", directive_regex('s').unwrap_or_default()),
            time_format: Some("%s".into()),
        };
    }
    if dp.eq_ignore_ascii_case("tai64n") || dp.eq_ignore_ascii_case("iso8601") {
        return DateOutcome::Unsupported(format!("datepattern {dp} is not supported"));
    }
    if let Some((re, fmt)) = simple_date(dp) {
        return DateOutcome::Prefix {
            regex: format!("(?P<time>{re})"),
            time_format: Some(fmt),
        };
    }
    // regex syntax: match it (the time then comes from the prefix or the read time)
    let mut py = String::new();
    let c: Vec<char> = dp.chars().collect();
    let mut i = 0;
    while i < c.len() {
        if c[i] == '\\' && i + 1 < c.len() {
            py.push(c[i]);
            py.push(c[i + 1]);
            i += 2;
            continue;
        }
        if c[i] == '%' && i + 1 < c.len() {
            let (d, n) = if c[i + 1] == 'E' && c.get(i + 2) == Some(&'x') && i + 3 < c.len() {
                (c[i + 3], 4)
            } else {
                (c[i + 1], 2)
            };
            if d == '%' {
                py.push('%');
            } else if let Some(r) = directive_regex(d).or_else(|| other_directive_regex(d)) {
                let _ = write!(py, "(?:{r})");
            } else {
                return DateOutcome::Unsupported(format!(
                    "datepattern directive %{d} is not supported"
                ));
            }
            i += n;
            continue;
        }
        py.push(c[i]);
        i += 1;
    }
    let mut tr = Tr {
        date_mode: true,
        ..Tr::default()
    };
    match tr.run(&py) {
        Ok(re) => DateOutcome::Prefix {
            regex: format!("(?:{re})"),
            time_format: None,
        },
        Err(e) => DateOutcome::Unsupported(format!("datepattern: {e}")),
    }
}

/// A datepattern made of directives and literal characters only: (regex, time format).
fn simple_date(dp: &str) -> Option<(String, String)> {
    let c: Vec<char> = dp.chars().collect();
    let (mut re, mut fmt) = (String::new(), String::new());
    let mut i = 0;
    while i < c.len() {
        match c[i] {
            '%' => {
                let (d, n) = if c.get(i + 1) == Some(&'E') && c.get(i + 2) == Some(&'x') {
                    (*c.get(i + 3)?, 4)
                } else {
                    (*c.get(i + 1)?, 2)
                };
                if d == '%' {
                    re.push('%');
                    fmt.push_str("%%");
                } else {
                    re.push_str(directive_regex(d)?);
                    fmt.push('%');
                    fmt.push(d);
                }
                i += n;
            }
            '\\' => {
                let e = *c.get(i + 1)?;
                if e.is_ascii_alphanumeric() || e.is_whitespace() {
                    return None;
                }
                re.push_str(&regex_syntax::escape(&e.to_string()));
                fmt.push(e);
                i += 2;
            }
            '.' => {
                re.push_str("\\.");
                fmt.push('.');
                i += 1;
            }
            ch if "^$*+?()[]{}|".contains(ch) => return None,
            ch => {
                re.push_str(&regex_syntax::escape(&ch.to_string()));
                fmt.push(ch);
                i += 1;
            }
        }
    }
    crate::time::check_format(&fmt).ok()?;
    Some((re, fmt))
}

// ---------------------------------------------------------------------------------------
// Programs from _daemon
// ---------------------------------------------------------------------------------------

/// The program names a `_daemon` regex stands for, when it is a small finite set of names.
fn daemon_programs(daemon: &str) -> Option<Vec<String>> {
    let hir = regex_syntax::Parser::new().parse(daemon.trim()).ok()?;
    let set = finite(&hir, 16)?;
    let ok = |s: &String| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.-@/+".contains(c))
    };
    (set.iter().all(ok) && !set.is_empty()).then_some(set)
}

fn finite(hir: &Hir, limit: usize) -> Option<Vec<String>> {
    Some(match hir.kind() {
        HirKind::Empty => vec![String::new()],
        HirKind::Literal(l) => vec![String::from_utf8(l.0.to_vec()).ok()?],
        HirKind::Class(regex_syntax::hir::Class::Unicode(cls)) => {
            let mut v = Vec::new();
            for r in cls.iter() {
                for ch in r.start()..=r.end() {
                    v.push(ch.to_string());
                    if v.len() > limit {
                        return None;
                    }
                }
            }
            v
        }
        HirKind::Capture(c) => finite(&c.sub, limit)?,
        HirKind::Repetition(r) if r.max == Some(1) => {
            let mut v = finite(&r.sub, limit)?;
            if r.min == 0 {
                v.insert(0, String::new());
            }
            v
        }
        HirKind::Concat(xs) => {
            let mut acc = vec![String::new()];
            for x in xs {
                let part = finite(x, limit)?;
                let mut next = Vec::new();
                for a in &acc {
                    for p in &part {
                        next.push(format!("{a}{p}"));
                        if next.len() > limit {
                            return None;
                        }
                    }
                }
                acc = next;
            }
            acc
        }
        HirKind::Alternation(xs) => {
            let mut v = Vec::new();
            for x in xs {
                v.extend(finite(x, limit)?);
                if v.len() > limit {
                    return None;
                }
            }
            v
        }
        _ => return None,
    })
}

// ---------------------------------------------------------------------------------------
// The import
// ---------------------------------------------------------------------------------------

struct Env {
    pref: Option<Pref>,
    date: DateOutcome,
    maxlines: usize,
}

/// One translated pattern.
struct Done {
    pos: Pos,
    pattern: String,
    weight: u32,
    class: Class,
}

struct Importer<'a> {
    ini: &'a Ini,
    name: String,
    report: Report,
    notes: BTreeSet<String>,
    any_prefix_stripped: bool,
    prefix_kept: bool,
    date_skipped_for_prefix: bool,
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
            notes: BTreeSet::new(),
            any_prefix_stripped: false,
            prefix_kept: false,
            date_skipped_for_prefix: false,
        }
    }

    fn run(mut self) -> Result<Imported, String> {
        let ini = self.ini;
        let base = Resolver::new(ini);
        if base.lookup_tag("failregex").is_none() {
            return Err(format!(
                "{}: no failregex in [Definition] (is this a fail2ban filter.d file?)",
                self.name
            ));
        }
        let maxlines = match base.option("maxlines") {
            Ok(Some(v)) => match v.trim().parse::<usize>() {
                Ok(n) => n,
                Err(_) => {
                    self.notes.insert(format!(
                        "maxlines = {} is not a number; taken as 1",
                        v.trim()
                    ));
                    1
                }
            },
            _ => 1,
        };
        if maxlines > 1 {
            self.notes.insert(format!(
                "maxlines = {maxlines}: multi-line matching is not translated (patterns that span lines are skipped)"
            ));
        }

        // which `mode` values to import
        let mode_default = base.option("mode").ok().flatten();
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
                    Ok(p) => p.clone(),
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
            self.notes.insert(format!(
                "fail2ban `mode` parameter: the patterns of mode {base_mode} (the filter's default) are rules of class \"auth\"; the patterns only in mode {} are rules of class \"scan\" (a jail with mode = \"aggressive\" uses both)",
                others.join("/")
            ));
        }
        let r0 = &resolvers[0];

        // prefregex
        let pref = match r0.option("prefregex") {
            Ok(Some(p)) if !p.trim().is_empty() => self.prefregex(p.trim()),
            Ok(_) => None,
            Err(e) => {
                self.notes
                    .insert(format!("prefregex could not be read ({e}); not used"));
                None
            }
        };

        // datepattern
        let date = match r0.option("datepattern") {
            Ok(Some(v)) => translate_datepattern(&v),
            Ok(None) => DateOutcome::Default,
            Err(e) => DateOutcome::Unsupported(e),
        };
        let mut time_format = None;
        match &date {
            DateOutcome::Default => {}
            DateOutcome::Prefix {
                time_format: tf, ..
            } => time_format = tf.clone(),
            DateOutcome::Unsupported(why) => {
                self.notes.insert(format!(
                    "datepattern not translated: {why}; the time of a line comes from its syslog prefix or the time it is read"
                ));
            }
        }
        if let DateOutcome::Prefix {
            time_format: None, ..
        } = &date
        {
            self.notes.insert(
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
                    self.skip("failregex", pos, raw, e);
                    continue;
                }
            };
            match self.one(&py, &env, r0, true) {
                Ok((pattern, weight)) => {
                    self.report.failregex.translated += 1;
                    done.push(Done {
                        pos,
                        pattern,
                        weight,
                        class,
                    });
                }
                Err(reason) => {
                    let shown = self.display(&py, r0);
                    self.skip("failregex", pos, shown, reason);
                }
            }
        }
        let mut ignore = Vec::new();
        for (pos, res) in r0.option_lines("ignoreregex") {
            self.report.ignoreregex.total += 1;
            let py = match res {
                Ok(p) => p,
                Err((raw, e)) => {
                    self.skip("ignoreregex", pos, raw, e);
                    continue;
                }
            };
            match self.one(&py, &env, r0, false) {
                Ok((pattern, _)) => {
                    self.report.ignoreregex.translated += 1;
                    ignore.push(pattern);
                }
                Err(reason) => {
                    let shown = self.display(&py, r0);
                    self.skip("ignoreregex", pos, shown, reason);
                }
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
                    self.notes.insert(format!(
                        "[Init] parameter {k} = {} was applied (fail2ban jails can override it; edit the patterns to change it)",
                        v.trim()
                    ));
                }
            }
        }

        // programs
        let mut programs = Vec::new();
        if self.any_prefix_stripped {
            let daemon = r0.option("_daemon").ok().flatten().unwrap_or_default();
            match daemon_programs(&daemon) {
                Some(p) => programs = p,
                None => {
                    self.notes.insert(format!(
                        "_daemon = {} is not a plain list of program names: the filter reads the lines of every program (set `programs` by hand)",
                        daemon.trim()
                    ));
                }
            }
            self.notes.insert(
                "the syslog prefix (%(__prefix_line)s) was removed: Portcullis matches the message after `program[pid]: `".into(),
            );
        }
        if self.prefix_kept {
            self.notes.insert(
                "a syslog prefix reference that is not at the start of its pattern was kept as a regex; it now has to match inside the message".into(),
            );
        }
        if self.date_skipped_for_prefix {
            self.notes.insert(
                "datepattern not used for patterns that start with the syslog prefix: Portcullis takes their time from the prefix".into(),
            );
        }
        if r0.prefix_names.borrow().is_empty() && matches!(env.date, DateOutcome::Default) {
            self.notes.insert(
                "no syslog prefix and fail2ban's default date detection: the patterns expect a line whose time stamp Portcullis strips (syslog, ISO 8601, RFC 5424); for a program's own log file, add its date at the start of each pattern".into(),
            );
        }

        let uses_time = done.iter().any(|d| d.pattern.contains("(?P<time>"));
        let mut rules = Vec::new();
        let mut origins = Vec::new();
        let mut ids: Vec<String> = Vec::new();
        let main_file = ini.files.last().cloned().unwrap_or_default();
        for d in &done {
            let mut id = if d.pos.file == main_file || ini.files.len() == 1 {
                format!("line-{}", d.pos.line)
            } else {
                format!("{}-line-{}", file_stem(&d.pos.file), d.pos.line)
            };
            if ids.contains(&id) {
                let mut k = 2;
                while ids.contains(&format!("{id}-{k}")) {
                    k += 1;
                }
                id = format!("{id}-{k}");
            }
            ids.push(id.clone());
            rules.push(RuleDef {
                id,
                pattern: Some(d.pattern.clone()),
                patterns: Vec::new(),
                class: d.class,
                weight: d.weight,
                kind: Kind::Attempt,
            });
            origins.push(d.pos.clone());
        }
        self.report.notes.extend(ini.notes.iter().cloned());
        self.report.notes.extend(self.notes.iter().cloned());
        if rules.is_empty() {
            self.report
                .notes
                .push("no failregex could be translated: no filter written".into());
            return Ok(Imported {
                def: None,
                toml: None,
                origins,
                report: self.report,
            });
        }
        let def = FilterDef {
            name: self.name.clone(),
            description: format!("imported from fail2ban filter {}", self.name),
            programs,
            ignore,
            time_format: if uses_time { time_format } else { None },
            correlate: None,
            rules,
        };
        Filter::compile(&def)
            .map_err(|e| format!("internal error: the imported filter does not compile: {e}"))?;
        let toml = render_toml(&def, &origins, &self.report)?;
        Ok(Imported {
            def: Some(def),
            toml: Some(toml),
            origins,
            report: self.report,
        })
    }

    fn skip(&mut self, option: &'static str, pos: Pos, pattern: String, reason: String) {
        self.report.skipped.push(Skipped {
            option,
            pos,
            pattern,
            reason,
        });
    }

    /// The pattern as shown in the report: prefix sentinels as `%(name)s`.
    fn display(&self, py: &str, r: &Resolver<'_>) -> String {
        let mut s = py.to_string();
        for (ch, name) in r.sentinel_names() {
            s = s.replace(ch, &format!("%({name})s"));
        }
        s
    }

    fn prefregex(&mut self, p: &str) -> Option<Pref> {
        let Some(open) = p.find("<F-CONTENT>") else {
            self.notes.insert(
                "prefregex without <F-CONTENT> only pre-selects lines in fail2ban; not translated"
                    .into(),
            );
            return None;
        };
        let Some(close) = p.find("</F-CONTENT>") else {
            self.notes
                .insert("prefregex has <F-CONTENT> without </F-CONTENT>; not used".into());
            return None;
        };
        let content = &p[open + "<F-CONTENT>".len()..close];
        if !matches!(content, ".+" | ".*" | ".+?" | ".*?") {
            self.notes.insert(format!(
                "prefregex content <F-CONTENT>{content}</F-CONTENT> is not checked (the failregex describes the content)"
            ));
        }
        let (flags, start, before) = split_start(&p[..open]);
        let (end, post) = split_end(&p[close + "</F-CONTENT>".len()..]);
        let (pre, prefix_stripped) = strip_prefix_sentinel(before);
        Some(Pref {
            pre,
            post: post.to_string(),
            flags,
            start,
            end,
            prefix_stripped,
        })
    }

    /// Translates one pattern; returns (pattern, weight).
    fn one(
        &mut self,
        py: &str,
        env: &Env,
        r: &Resolver<'_>,
        fail: bool,
    ) -> Result<(String, u32), String> {
        if py.contains("<SKIPLINES>") {
            return Err("<SKIPLINES> (multi-line matching) is not supported: Portcullis matches one line at a time".into());
        }
        if env.maxlines > 1 && has_newline_escape(py) {
            return Err(format!(
                "multi-line pattern (maxlines = {}) is not translated: Portcullis matches one line at a time",
                env.maxlines
            ));
        }
        let mut weight = 1;
        if fail {
            for tag in ["NOFAIL", "MLFGAINED"] {
                if py.contains(&format!("<F-{tag}>")) {
                    if tag_is_unconditional(py, tag) {
                        weight = 0;
                    } else {
                        return Err(format!(
                            "<F-{tag}> inside a group or alternative: whether the line counts depends on the branch that matched, which Portcullis cannot express"
                        ));
                    }
                }
            }
        }
        let (mut whole, stripped) = assemble(py, env.pref.as_ref());
        // a prefix reference left anywhere: put the real regex back
        if whole.chars().any(is_sentinel) {
            let plain = Resolver {
                sentinels: false,
                ..Resolver::new(self.ini)
            };
            for (ch, name) in r.sentinel_names() {
                if whole.contains(ch) {
                    let v = plain
                        .option(&name)
                        .map_err(|e| format!("syslog prefix {name}: {e}"))?
                        .unwrap_or_default();
                    whole = whole.replace(ch, &v);
                    self.prefix_kept = true;
                }
            }
        }
        let mut tr = Tr::default();
        let mut out = match tr.run(&whole) {
            Ok(o) => o,
            Err(e) if env.pref.is_some() && Tr::default().run(&assemble(py, None).0).is_ok() => {
                return Err(format!("prefregex (combined with every pattern): {e}"))
            }
            Err(e) => return Err(e),
        };
        if fail && !tr.host_done && !whole.contains("(?P<host>") {
            return Err("no address (<HOST>) in the pattern: fail2ban takes it from another line of the same session (multi-line); not translated".into());
        }
        for n in &tr.notes {
            self.notes.insert(n.clone());
        }
        if tr.multiline_tags {
            self.notes.insert(
                "multi-line session tags (<F-MLFID>, <F-MLFFORGET>, <F-MLFGAINED>) were dropped; each line is matched on its own".into(),
            );
        }
        if stripped {
            self.any_prefix_stripped = true;
        }
        let mut tf = None;
        if let DateOutcome::Prefix { regex, time_format } = &env.date {
            if stripped {
                self.date_skipped_for_prefix = true;
            } else if fail {
                out = format!("{regex}{out}");
                tf = time_format.clone();
            } else {
                out = format!("{}{out}", regex.replacen("(?P<time>", "(?:", 1));
            }
        }
        // the compiler decides
        let check = if fail {
            FilterDef {
                name: self.name.clone(),
                description: String::new(),
                programs: Vec::new(),
                ignore: Vec::new(),
                time_format: tf,
                correlate: None,
                rules: vec![rule("check", &out)],
            }
        } else {
            FilterDef {
                name: self.name.clone(),
                description: String::new(),
                programs: Vec::new(),
                ignore: vec![out.clone()],
                time_format: None,
                correlate: None,
                rules: vec![rule("check", "{HOST}")],
            }
        };
        Filter::compile(&check).map_err(|e| e.message)?;
        Ok((out, weight))
    }
}

fn rule(id: &str, pattern: &str) -> RuleDef {
    RuleDef {
        id: id.into(),
        pattern: Some(pattern.into()),
        patterns: Vec::new(),
        class: Class::Auth,
        weight: 1,
        kind: Kind::Attempt,
    }
}

/// `\n` in a Python pattern (an escaped `n` after an odd number of backslashes).
fn has_newline_escape(py: &str) -> bool {
    let b = py.as_bytes();
    (1..b.len()).any(|i| {
        b[i] == b'n' && {
            let n = b[..i].iter().rev().take_while(|&&c| c == b'\\').count();
            n % 2 == 1
        }
    })
}

fn render_toml(def: &FilterDef, origins: &[Pos], report: &Report) -> Result<String, String> {
    let body = toml::to_string(def).map_err(|e| format!("cannot write TOML: {e}"))?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filter::{MatchSet, Mode};
    use crate::time::TimeContext;

    /// A small `common.conf` in fail2ban's format, written for these tests.
    const COMMON: &str = r"# shared definitions (test fixture)
[INCLUDES]
after = common.local

[DEFAULT]
_daemon = \S*
__pid_re = (?:\[\d+\])
__daemon_re = [\[\(]?%(_daemon)s(?:\(\S+\))?[\]\)]?:?
__prefix_line = \s*(?:\S+\s+)?(?:%(__daemon_re)s%(__pid_re)s?:?\s+)?
";

    fn import_files(list: &[(&str, &str)], path: &str) -> Imported {
        let map: HashMap<String, String> = list
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        import(path, &|n: &str| map.get(n).cloned()).expect("import")
    }

    struct HitInfo {
        rule: String,
        addr: String,
        user: Option<String>,
        time: Option<i64>,
        weight: u32,
    }

    fn hit(def: &FilterDef, line: &str) -> Option<HitInfo> {
        let f = Filter::compile(def).expect("compiles");
        let set = MatchSet::new(vec![f], Mode::Aggressive);
        let ctx = TimeContext {
            now: 1_795_000_000_000,
            local_offset: 0,
        };
        let mut sc = set.scratch();
        let h = set.match_line(line.as_bytes(), &ctx, &mut sc)?;
        let r = &set.filters()[0].rules()[h.rule];
        Some(HitInfo {
            rule: r.id.clone(),
            addr: h.addr.to_string(),
            user: h.user.map(|u| String::from_utf8_lossy(u).into_owned()),
            time: h.time,
            weight: r.weight,
        })
    }

    const DEMO: &str = r"# demo filter for an ssh-like daemon (test fixture)
[INCLUDES]
before = common.conf

[DEFAULT]
_daemon = (?:sshd|sshd-session)

[Definition]
_user = <F-USER>\S+</F-USER>
failregex = ^%(__prefix_line)sFailed (?:password|publickey) for (?:invalid user )?%(_user)s from <HOST> port \d+ ssh2$
            ^%(__prefix_line)sInvalid user <F-USER>.*?</F-USER> from <HOST>(?: port \d+)?\s*$
            ^%(__prefix_line)sUser \S+ from <HOST> not allowed(?! because)
            ^%(__prefix_line)sBad user (?P<u>\S+) repeated (?P=u) from <HOST>$
ignoreregex = ^%(__prefix_line)sFailed \S+ for \S+ from 192\.0\.2\.\d+ 
";

    #[test]
    fn sshd_like_filter_with_include() {
        let im = import_files(
            &[("/f/common.conf", COMMON), ("/f/demo.conf", DEMO)],
            "/f/demo.conf",
        );
        let def = im.def.clone().expect("a filter");
        assert_eq!(def.name, "demo");
        assert_eq!(def.description, "imported from fail2ban filter demo");
        assert_eq!(def.programs, vec!["sshd", "sshd-session"]);
        assert_eq!(
            im.report.failregex,
            Counts {
                translated: 2,
                total: 4
            }
        );
        assert_eq!(
            im.report.ignoreregex,
            Counts {
                translated: 1,
                total: 1
            }
        );
        assert!(!im.report.complete());

        let h = hit(
            &def,
            "Nov 21 10:00:01 h sshd[1]: Failed password for root from 203.0.113.5 port 22 ssh2",
        )
        .expect("matches");
        assert_eq!(h.addr, "203.0.113.5");
        assert_eq!(h.user.as_deref(), Some("root"));
        assert_eq!(h.rule, "line-10");
        let h = hit(
            &def,
            "Nov 21 10:00:02 h sshd-session[7]: Invalid user o from 1.2.3.4 x from 2001:db8::1 port 4",
        )
        .expect("matches");
        assert_eq!(h.addr, "2001:db8::1");
        // other programs are not read; the ignore pattern wins
        assert!(hit(
            &def,
            "Nov 21 10:00:01 h cron[1]: Failed password for root from 203.0.113.5 port 22 ssh2"
        )
        .is_none());
        assert!(hit(
            &def,
            "Nov 21 10:00:01 h sshd[1]: Failed password for root from 192.0.2.9 port 22 ssh2"
        )
        .is_none());

        let sk = &im.report.skipped;
        assert_eq!(sk.len(), 2, "{sk:?}");
        assert_eq!(sk[0].pos.to_string(), "demo.conf:12");
        assert_eq!(
            sk[0].reason,
            "look-ahead (?!…) is not supported by the linear-time engine"
        );
        assert!(
            sk[0].pattern.contains("%(__prefix_line)s"),
            "{}",
            sk[0].pattern
        );
        assert!(sk[0].pattern.contains("(?! because)"));
        assert_eq!(sk[1].pos.line, 13);
        assert!(
            sk[1].reason.contains("back-reference (?P=u)"),
            "{}",
            sk[1].reason
        );

        let toml = im.toml.expect("toml");
        assert!(toml.contains("# Not translated:"), "{toml}");
        assert!(
            toml.contains("demo.conf:12 (failregex): look-ahead"),
            "{toml}"
        );
        assert!(toml.contains("# from demo.conf:10\n[[rule]]"), "{toml}");
        let back: FilterDef = toml::from_str(&toml).expect("valid TOML");
        assert_eq!(back, def);
    }

    #[test]
    fn prefregex_is_combined_with_each_failregex() {
        let conf = r"[INCLUDES]
before = common.conf
[DEFAULT]
_daemon = mailsrv
[Definition]
prefregex = ^%(__prefix_line)s(?:error: )?<F-CONTENT>.+</F-CONTENT>$
failregex = ^auth failed for <F-USER>\S+</F-USER> from <HOST>
            bad packet from <ADDR>
ignoreregex = ^auth failed for \S+ from 198\.51\.100\.99$
";
        let im = import_files(&[("common.conf", COMMON), ("mail.conf", conf)], "mail.conf");
        assert!(im.report.complete(), "{}", im.report.render());
        let def = im.def.expect("a filter");
        assert_eq!(def.programs, vec!["mailsrv"]);
        let h = hit(
            &def,
            "Nov 21 10:00:01 h mailsrv[12]: error: auth failed for bob from 198.51.100.7",
        )
        .expect("first");
        assert_eq!(
            (h.addr.as_str(), h.user.as_deref()),
            ("198.51.100.7", Some("bob"))
        );
        // unanchored failregex: anywhere in the content
        let h = hit(
            &def,
            "Nov 21 10:00:01 h mailsrv[12]: conn 4: bad packet from [198.51.100.8] (dropped)",
        )
        .expect("second");
        assert_eq!(h.addr, "198.51.100.8");
        // the prefregex part is required
        assert!(hit(
            &def,
            "Nov 21 10:00:01 h mailsrv[12]: warning: auth failed for bob from 198.51.100.7"
        )
        .is_none());
        // the ignoreregex applies to the content too
        assert!(hit(
            &def,
            "Nov 21 10:00:01 h mailsrv[12]: auth failed for bob from 198.51.100.99"
        )
        .is_none());
    }

    #[test]
    fn datepattern_becomes_time_format_and_capture() {
        let conf = r"[Definition]
datepattern = ^%%Y-%%m-%%d %%H:%%M:%%S
failregex = ^ \[warn\] login failed for <F-ALT_USER>\S+</F-ALT_USER> from <IP4>$
";
        let im = import_files(&[("app.conf", conf)], "app.conf");
        assert!(im.report.complete(), "{}", im.report.render());
        let def = im.def.expect("a filter");
        assert_eq!(def.time_format.as_deref(), Some("%Y-%m-%d %H:%M:%S"));
        assert!(def.programs.is_empty());
        let h = hit(
            &def,
            "2026-11-21 10:00:01 [warn] login failed for eve from 192.0.2.44",
        )
        .expect("matches");
        assert_eq!(h.addr, "192.0.2.44");
        assert_eq!(h.user.as_deref(), Some("eve"));
        let want = crate::time::days_from_civil(2026, 11, 21) * 86_400_000 + 36_001_000;
        assert_eq!(h.time, Some(want));
    }

    #[test]
    fn datepattern_forms() {
        let p = |s: &str| translate_datepattern(s);
        assert_eq!(p("{^LN-BEG}"), DateOutcome::Default);
        assert_eq!(p("^{DATE}"), DateOutcome::Default);
        assert!(
            matches!(p("{^LN-BEG}Epoch"), DateOutcome::Prefix { time_format: Some(f), .. } if f == "%s")
        );
        assert!(matches!(
            p(r"^\[%d/%b/%Y %H:%M:%S\]"),
            DateOutcome::Prefix { time_format: Some(f), .. } if f == "[%d/%b/%Y %H:%M:%S]"
        ));
        // regex syntax: matched, but no time format
        match p("^(?:%Y-)?%m-%d[ T]%H:%M:%S(?:\\.%f)?") {
            DateOutcome::Prefix { regex, time_format } => {
                assert!(time_format.is_none());
                assert!(regex::Regex::new(&regex).is_ok(), "{regex}");
            }
            o => panic!("{o:?}"),
        }
        // a back-reference inside a date pattern repeats the group
        assert!(matches!(
            p("{^LN-BEG}%ExY(?P<_sep>[-/.])%m(?P=_sep)%d[T ]%H:%M:%S"),
            DateOutcome::Prefix {
                time_format: None,
                ..
            }
        ));
        assert!(
            matches!(p("%d/%b[^/]*/%Y:%H:%M:%S %z"), DateOutcome::Unsupported(w) if w.contains("not anchored"))
        );
        assert!(matches!(
            p("^[^\\[]*\\[({DATE})"),
            DateOutcome::Unsupported(_)
        ));
        assert!(
            matches!(p("^%b %d, %ExY %I:%M:%S %p\n^WARNING:"), DateOutcome::Unsupported(w) if w.contains("2 alternatives"))
        );
    }

    #[test]
    fn interpolation_known_local_init_and_loops() {
        let conf = r"[DEFAULT]
_greeting = hello%%
[Definition]
word = ignored
_who = <F-USER><word></F-USER>
failregex = ^%(_greeting)s <_who> %(word)s from <HOST>$
            ^loop %(a)s <HOST>
            ^missing %(nope)s <HOST>
a = %(b)s
b = %(a)s
[Init]
word = \w+
";
        let local = r"[Definition]
failregex = %(known/failregex)s
            ^added by local <HOST>$
word = [a-z]+
";
        let im = import_files(&[("x.conf", conf), ("x.local", local)], "x.conf");
        let def = im.def.clone().expect("a filter");
        // %% is a percent sign; <tag> takes [Init] (over [Definition]); %(word)s takes [Definition]
        let pats: Vec<&str> = def
            .rules
            .iter()
            .filter_map(|r| r.pattern.as_deref())
            .collect();
        assert_eq!(pats[0], r"hello% (?P<user>\w+) [a-z]+ from \[?{HOST}\]?");
        assert!(hit(&def, "hello% bob x from 192.0.2.1").is_some());
        assert!(hit(&def, "added by local 192.0.2.1").is_some());
        // the .local file's lines keep their own positions
        assert_eq!(im.origins[1].to_string(), "x.local:3");
        let sk = &im.report.skipped;
        assert_eq!(sk.len(), 2, "{}", im.report.render());
        assert!(sk[0].reason.contains("too deeply"), "{}", sk[0].reason);
        assert_eq!(sk[0].pos.to_string(), "x.conf:7");
        assert!(
            sk[1].reason.contains("unknown reference %(nope)s"),
            "{}",
            sk[1].reason
        );
    }

    #[test]
    fn mode_parameter_adds_scan_rules() {
        let conf = r"[Definition]
mode = normal
mdre-normal = ^bad password from <HOST>$
mdre-ddos = ^no banner from <HOST>$
mdre-aggressive = %(mdre-normal)s
                  %(mdre-ddos)s
failregex = ^common failure from <HOST>$
            <mdre-<mode>>
";
        let im = import_files(&[("m.conf", conf)], "m.conf");
        assert!(im.report.complete(), "{}", im.report.render());
        let def = im.def.expect("a filter");
        let got: Vec<(&str, Class)> = def.rules.iter().map(|r| (r.id.as_str(), r.class)).collect();
        assert_eq!(
            got,
            vec![
                ("line-7", Class::Auth),
                ("line-3", Class::Auth),
                ("line-4", Class::Scan)
            ]
        );
        assert!(im.report.notes.iter().any(|n| n.contains("`mode`")));
    }

    #[test]
    fn nofail_multiline_and_missing_address() {
        let conf = r"[Definition]
failregex = ^<F-NOFAIL>Connection from</F-NOFAIL> <HOST>$
            ^Failed (?:<F-NOFAIL>publickey</F-NOFAIL>|password) from <HOST>$
            ^<F-MLFFORGET><F-MLFGAINED>Accepted</F-MLFGAINED></F-MLFFORGET> for \S+ from <HOST>$
            ^session closed by peer$
            ^first line <HOST>\nsecond line$
            ^one <HOST><SKIPLINES>two$
            ^kept <F-USER>\S+</F-USER> <F-MLFID>x</F-MLFID> from <HOST>$
maxlines = 2
";
        let im = import_files(&[("n.conf", conf)], "n.conf");
        let def = im.def.clone().expect("a filter");
        let weights: Vec<(u32, &str)> = def
            .rules
            .iter()
            .map(|r| (r.weight, r.id.as_str()))
            .collect();
        assert_eq!(weights, vec![(0, "line-2"), (0, "line-4"), (1, "line-8")]);
        let h = hit(&def, "kept bob x from 192.0.2.3").expect("matches");
        assert_eq!((h.user.as_deref(), h.weight), (Some("bob"), 1));
        let reasons: Vec<(usize, &str)> = im
            .report
            .skipped
            .iter()
            .map(|s| (s.pos.line, s.reason.as_str()))
            .collect();
        assert!(
            reasons[0].1.contains("<F-NOFAIL> inside a group"),
            "{reasons:?}"
        );
        assert!(reasons[1].1.contains("no address"), "{reasons:?}");
        assert!(
            reasons[2].1.contains("multi-line pattern (maxlines = 2)"),
            "{reasons:?}"
        );
        assert!(reasons[3].1.contains("<SKIPLINES>"), "{reasons:?}");
        assert_eq!(
            reasons.iter().map(|r| r.0).collect::<Vec<_>>(),
            vec![3, 5, 6, 7]
        );
        assert!(im.report.notes.iter().any(|n| n.contains("maxlines = 2")));
        assert!(im.report.notes.iter().any(|n| n.contains("F-MLFID")));
    }

    #[test]
    fn python_syntax_is_translated() {
        let tr = |s: &str| Tr::default().run(s);
        assert_eq!(tr(r"a{,3}b{2,}c{1}").unwrap(), "a{0,3}b{2,}c{1}");
        assert_eq!(tr(r"x{y}").unwrap(), r"x\{y\}");
        assert_eq!(tr(r"end\Z").unwrap(), r"end\z");
        assert_eq!(tr(r"\<tag\>").unwrap(), "<tag>");
        assert_eq!(tr(r"[[(]x[^]a]").unwrap(), r"[\[(]x[^\]a]");
        assert_eq!(tr(r"(?iu)abc(?#note)").unwrap(), "(?i)abc");
        assert_eq!(tr(r"(?u)abc").unwrap(), "abc");
        assert_eq!(tr(r"(?-i:a)(?au:b)").unwrap(), "(?-i:a)(?:b)");
        assert_eq!(tr(r"a\ b").unwrap(), r"a\x{20}b");
        assert!(tr(r"(a)\1").unwrap_err().contains("back-reference \\1"));
        assert!(tr(r"(?=x)").unwrap_err().contains("look-ahead (?=…)"));
        assert!(tr(r"(?<!x)").unwrap_err().contains("look-behind (?<!…)"));
        assert!(tr(r"(?(1)a|b)").unwrap_err().contains("conditional"));
        assert!(tr(r"(?>a)").unwrap_err().contains("atomic"));
        assert!(tr(r"a*+").unwrap_err().contains("possessive"));
        assert!(tr(r"<F-USER>x").unwrap_err().contains("not closed"));
        assert!(tr(r"<DNS>").unwrap_err().contains("host names"));
        // escaped parentheses and classes are not look-arounds
        assert_eq!(tr(r"\(?!x[(?!]").unwrap(), r"\(?!x[(?!]");
        // a second address is matched without a capture
        let two = tr("<HOST> or <HOST>").unwrap();
        assert_eq!(two.matches("{HOST}").count(), 1);
    }

    #[test]
    fn tag_conditions() {
        assert!(tag_is_unconditional("^<F-NOFAIL>a</F-NOFAIL> b", "NOFAIL"));
        assert!(tag_is_unconditional(
            "^<F-X><F-NOFAIL>a</F-NOFAIL></F-X> <F-USER>a|b</F-USER>",
            "NOFAIL"
        ));
        assert!(!tag_is_unconditional(
            "^(?:<F-NOFAIL>a</F-NOFAIL>|b)",
            "NOFAIL"
        ));
        assert!(!tag_is_unconditional("^<F-NOFAIL>a</F-NOFAIL>?", "NOFAIL"));
        assert!(!tag_is_unconditional("^<F-NOFAIL>a</F-NOFAIL>|b", "NOFAIL"));
        assert!(!tag_is_unconditional(
            "^<F-X>a|<F-NOFAIL>b</F-NOFAIL></F-X>",
            "NOFAIL"
        ));
    }

    #[test]
    fn daemon_names() {
        assert_eq!(daemon_programs("sshd").unwrap(), vec!["sshd"]);
        assert_eq!(
            daemon_programs("(?:sshd|sshd-session)").unwrap(),
            vec!["sshd", "sshd-session"]
        );
        assert_eq!(
            daemon_programs("sshd(?:-session)?").unwrap(),
            vec!["sshd", "sshd-session"]
        );
        assert!(daemon_programs(r"\S*").is_none());
        assert!(daemon_programs(r"postfix(-\w+)?/\w+").is_none());
    }

    #[test]
    fn prefix_not_at_start_is_kept() {
        let conf = r"[INCLUDES]
before = common.conf
[Definition]
failregex = ^relay: %(__prefix_line)sdenied <HOST>$
";
        let im = import_files(&[("common.conf", COMMON), ("k.conf", conf)], "k.conf");
        let def = im.def.expect("a filter");
        assert!(def.programs.is_empty());
        let p = def.rules[0].pattern.as_deref().unwrap();
        assert!(p.starts_with(r"relay: \s*(?:\S+\s+)?"), "{p}");
        assert!(im.report.notes.iter().any(|n| n.contains("was kept")));
        assert!(hit(&def, "relay: denied 192.0.2.8").is_some());
    }

    #[test]
    fn ini_details() {
        let conf = "; comment\n[Definition]\nfailregex: ^one <HOST> ; inline comment\n\n  ^two <HOST>\n# comment inside\n  ^three;not a comment <HOST>\nFailRegex2 = x\n";
        let im = import_files(&[("d/i.conf", conf)], "d/i.conf");
        let lines: Vec<String> = im.origins.iter().map(Pos::to_string).collect();
        assert_eq!(lines, vec!["i.conf:3", "i.conf:5", "i.conf:7"]);
        let def = im.def.unwrap();
        assert_eq!(
            def.rules[2].pattern.as_deref(),
            Some(r"three;not a comment \[?{HOST}\]?.*")
        );
        assert_eq!(def.rules[0].pattern.as_deref(), Some(r"one \[?{HOST}\]?.*"));
    }

    #[test]
    fn errors() {
        let none = |_: &str| None;
        assert!(import("nope.conf", &none)
            .unwrap_err()
            .contains("cannot read"));
        let e = import("x.conf", &|_: &str| {
            Some("[Definition]\nignoreregex = a\n".into())
        })
        .unwrap_err();
        assert!(e.contains("no failregex"), "{e}");
        // nothing translatable: no filter, all skipped
        let im = import_files(
            &[("z.conf", "[Definition]\nfailregex = (?=x)<HOST>\n")],
            "z.conf",
        );
        assert!(im.def.is_none() && im.toml.is_none());
        assert_eq!(im.report.skipped.len(), 1);
    }

    #[test]
    fn includes_missing_and_loops() {
        let a = "[INCLUDES]\nbefore = b.conf\nafter = gone.conf\n[Definition]\nfailregex = ^a <HOST>$\n";
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

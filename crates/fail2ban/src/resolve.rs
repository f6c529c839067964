//! Stage 2: interpolation. `%(name)s` references, `%(known/name)s`, `<name>` tags that name
//! options (`<mode>`, `<mdre-<mode>>`, `<section/option>`), recursively with limits, with
//! fail2ban's lookup order: `[Init]` over `[Definition]` over `[DEFAULT]`.
//!
//! References to the syslog prefix line become [`Piece::Prefix`] tokens (see [`crate::token`]).

use std::cell::{Cell, RefCell};
use std::collections::{BTreeSet, HashMap};

use crate::error::ResolveError;
use crate::ini::{Def, Ini};
use crate::report::Pos;
use crate::token::{Expr, Piece};

/// Interpolation depth limit (references of references …).
pub(crate) const MAX_DEPTH: usize = 24;
/// Limit on the size of an interpolated value (guards against exponential references).
const MAX_LEN: usize = 1 << 20;
/// Context of an interpolation: the section whose options unqualified names refer to, and
/// the file of the value (for `known/`).
#[derive(Debug, Clone)]
pub(crate) struct Ctx {
    section: String,
    file: Option<usize>,
}

/// One pattern line after interpolation, or (the line as written, why it could not be
/// interpolated).
pub(crate) type Line = (Pos, Result<Expr, (String, ResolveError)>);

/// Interpolates the options of one [`Ini`].
pub(crate) struct Resolver<'a> {
    ini: &'a Ini,
    /// Values given by the importer (`mode`).
    pub(crate) overrides: HashMap<String, String>,
    /// Keep references to the syslog prefix line as tokens (else: interpolate them).
    tokens: bool,
    /// Names looked up (to know whether `mode` matters).
    pub(crate) used: RefCell<BTreeSet<String>>,
    /// A prefix-line reference was met.
    pub(crate) saw_prefix: Cell<bool>,
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
    /// A resolver that keeps prefix-line references as tokens.
    pub(crate) fn new(ini: &'a Ini) -> Resolver<'a> {
        Resolver {
            ini,
            overrides: HashMap::new(),
            tokens: true,
            used: RefCell::new(BTreeSet::new()),
            saw_prefix: Cell::new(false),
        }
    }

    /// A resolver that interpolates prefix-line references like any other option.
    pub(crate) fn plain(ini: &'a Ini) -> Resolver<'a> {
        Resolver {
            tokens: false,
            ..Resolver::new(ini)
        }
    }

    fn prefix_token(&self, name: &str) -> Expr {
        self.note_use(name);
        self.saw_prefix.set(true);
        Expr::prefix(name)
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
    pub(crate) fn lookup_tag(&self, name: &str) -> Option<(&'a Def, Ctx)> {
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
    fn interp(&self, text: &str, ctx: &Ctx, depth: usize) -> Result<Expr, ResolveError> {
        if depth > MAX_DEPTH {
            return Err(ResolveError::TooDeep);
        }
        let mut out = Expr::default();
        let mut rest = text;
        while let Some(p) = rest.find('%') {
            out.push_str(&rest[..p]);
            let after = &rest[p + 1..];
            if let Some(r) = after.strip_prefix('%') {
                out.push_str("%");
                rest = r;
            } else if let Some(r) = after.strip_prefix('(') {
                let Some(close) = r.find(")s") else {
                    return Err(ResolveError::Unterminated);
                };
                let name = norm_name(&r[..close]);
                out.push_expr(self.percent_ref(&name, ctx, depth + 1)?);
                rest = &r[close + 2..];
            } else {
                out.push_str("%");
                rest = after;
            }
            if out.len() > MAX_LEN {
                return Err(ResolveError::TooLarge);
            }
        }
        out.push_str(rest);
        Ok(out)
    }

    /// The syslog prefix as a token, and what a filter's own definition adds after it:
    /// `__prefix_line = %(known/__prefix_line)s(?:\w{14,20}: )?` (stock sendmail's queue id,
    /// asterisk's time stamp) keeps its addition, which belongs to the message.
    fn prefix_with_addition(
        &self,
        name: &str,
        def: Option<(&'a Def, Ctx)>,
        depth: usize,
    ) -> Result<Expr, ResolveError> {
        let mut out = self.prefix_token(name);
        if let Some((def, c)) = def {
            let text = def.joined();
            let t = text.trim_start();
            if let Some(inner) = t.strip_prefix("%(known/") {
                if let Some((r, rest)) = inner.split_once(")s") {
                    if is_prefix_name(r) && !rest.trim().is_empty() {
                        out.push_expr(self.interp(rest.trim_end(), &c, depth + 1)?);
                    }
                }
            }
        }
        Ok(out)
    }

    fn percent_ref(&self, name: &str, ctx: &Ctx, depth: usize) -> Result<Expr, ResolveError> {
        if self.tokens && is_prefix_name(name) {
            let def = if name.starts_with("known/") {
                None
            } else {
                self.lookup_percent(name, ctx)
            };
            return self.prefix_with_addition(name, def, depth);
        }
        self.note_use(name);
        if let Some(v) = self.overrides.get(name) {
            return Ok(Expr::text(v));
        }
        let (def, c) = self
            .lookup_percent(name, ctx)
            .ok_or_else(|| ResolveError::Unknown(name.to_string()))?;
        self.interp(&def.joined(), &c, depth)
    }

    /// The value a `<name>` tag stands for, if `name` is an option.
    fn tag_value(&self, name: &str, depth: usize) -> Result<Option<Expr>, ResolveError> {
        if self.tokens && is_prefix_name(name) {
            let def = self.lookup_tag(name);
            return self.prefix_with_addition(name, def, depth).map(Some);
        }
        if let Some(v) = self.overrides.get(name) {
            self.note_use(name);
            return Ok(Some(Expr::text(v)));
        }
        let Some((def, c)) = self.lookup_tag(name) else {
            return Ok(None);
        };
        self.note_use(name);
        self.interp(&def.joined(), &c, depth).map(Some)
    }

    /// Substitutes `<name>` tags that name options, innermost first, until none is left.
    fn tags(&self, mut value: Expr, depth: usize) -> Result<Expr, ResolveError> {
        for _ in 0..64 {
            let mut changed = false;
            let mut out = Expr::default();
            for piece in value.pieces() {
                match piece {
                    Piece::Prefix(_) => out.push_piece(piece.clone()),
                    Piece::Text(text) => changed |= self.tags_in(text, depth, &mut out)?,
                }
            }
            if out.len() > MAX_LEN {
                return Err(ResolveError::TooLarge);
            }
            value = out;
            if !changed {
                return Ok(value);
            }
        }
        Err(ResolveError::TagsTooDeep)
    }

    /// One round of [`Resolver::tags`] over one text; true when a tag was substituted.
    fn tags_in(&self, text: &str, depth: usize, out: &mut Expr) -> Result<bool, ResolveError> {
        let mut changed = false;
        let mut i = 0;
        let mut plain = 0;
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
                            out.push_str(&text[plain..i]);
                            out.push_expr(v);
                            i = end + 1;
                            plain = i;
                            changed = true;
                            continue;
                        }
                    }
                }
            }
            i += 1;
        }
        out.push_str(&text[plain..]);
        Ok(changed)
    }

    fn expand(&self, text: &str, ctx: &Ctx) -> Result<Expr, ResolveError> {
        let v = self.interp(text, ctx, 0)?;
        self.tags(v, 0)
    }

    /// A whole option (top-level lookup order), fully expanded.
    pub(crate) fn option(&self, key: &str) -> Result<Option<Expr>, ResolveError> {
        if let Some(v) = self.overrides.get(key) {
            return Ok(Some(Expr::text(v)));
        }
        let Some((def, ctx)) = self.lookup_tag(key) else {
            return Ok(None);
        };
        self.note_use(key);
        self.expand(&def.joined(), &ctx).map(Some)
    }

    /// The pattern lines of a list option (`failregex`, `ignoreregex`), each with the place
    /// it is written; a line that is only a reference is followed to the referenced lines.
    pub(crate) fn option_lines(&self, key: &str) -> Vec<Line> {
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
                    for line in v.lines() {
                        out.push((pos.clone(), Ok(line)));
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
        let name = self.tags(Expr::text(inner), 0).ok()?;
        if name.has_prefix() {
            return None;
        }
        let name = name.to_string();
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

/// Can `name` be the name in a `<name>` tag?
pub(crate) fn is_tag_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '/' | '.'))
}

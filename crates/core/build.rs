//! Embeds `filters/*.toml` and their sample logs (`filters/*.log`) into the library, and
//! with the `native` feature compiles the backtracker programs of their patterns to Rust
//! (`native_backtrack.rs`, see `src/filter/native.rs`) with the pattern crate's compiler.
use std::{env, fs, path::Path};

use portcullis_pattern::template;

fn main() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../filters");
    println!("cargo:rerun-if-changed={}", dir.display());
    println!("cargo:rerun-if-changed=src/filter/macros.txt");
    let mut names: Vec<String> = fs::read_dir(&dir)
        .expect("filters/ directory")
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let p = e.path();
            (p.extension()? == "toml").then(|| p.file_stem()?.to_str().map(String::from))?
        })
        .collect();
    names.sort();
    let mut out = String::from("static BUILTIN: &[Builtin] = &[\n");
    for n in &names {
        let toml = dir.join(format!("{n}.toml"));
        let log = dir.join(format!("{n}.log"));
        println!("cargo:rerun-if-changed={}", toml.display());
        println!("cargo:rerun-if-changed={}", log.display());
        let sample = if log.exists() {
            format!("include_str!({:?})", log.canonicalize().unwrap())
        } else {
            "\"\"".to_string()
        };
        out.push_str(&format!(
            "    Builtin {{ name: {n:?}, source: include_str!({:?}), sample: {sample} }},\n",
            toml.canonicalize().unwrap()
        ));
    }
    out.push_str("];\n");
    let out_dir = env::var("OUT_DIR").unwrap();
    fs::write(Path::new(&out_dir).join("builtin_filters.rs"), out).unwrap();
    let native = if env::var_os("CARGO_FEATURE_NATIVE").is_some() {
        native(&dir, &names)
    } else {
        "static NATIVE: &[(u64, NativeFn)] = &[];\n#[allow(dead_code)]\npub(crate) static NATIVE_FILTERS: &[&str] = &[];\n".to_string()
    };
    fs::write(Path::new(&out_dir).join("native_backtrack.rs"), native).unwrap();
}

/// The built-in filters whose programs get machine code: the ones whose lines come by the
/// hundred thousand in an attack (a password-guessing run against sshd). Code for all 132
/// filters is 7.4 MB of Rust and doubles the release build for no gain on the others'
/// lines, whose time is in the prefix and the prefilter (bench/README.md).
const NATIVE_FILTERS: &[&str] = &["sshd"];

/// Machine code for every distinct backtracker program of the rules of [`NATIVE_FILTERS`], with the
/// macros expanded and the anchoring the library applies (see src/filter/compile.rs).
fn native(dir: &Path, names: &[String]) -> String {
    let names = names
        .iter()
        .filter(|n| NATIVE_FILTERS.contains(&n.as_str()));
    let macros = fs::read_to_string("src/filter/macros.txt").expect("macros.txt");
    let table = template::parse_table(&macros).expect("macros.txt is valid");
    let mut patterns = Vec::new();
    for n in names {
        let text = fs::read_to_string(dir.join(format!("{n}.toml"))).unwrap();
        let doc: toml::Table = toml::from_str(&text).unwrap_or_else(|e| panic!("{n}: {e}"));
        let rules = doc.get("rule").and_then(|r| r.as_array()).cloned();
        for rule in rules.unwrap_or_default() {
            let mut pats: Vec<String> = Vec::new();
            if let Some(p) = rule.get("pattern").and_then(|p| p.as_str()) {
                pats.push(p.to_string());
            }
            for p in rule
                .get("patterns")
                .and_then(|p| p.as_array())
                .into_iter()
                .flatten()
            {
                pats.extend(p.as_str().map(String::from));
            }
            // (an invalid pattern is reported by the library's tests, not here)
            patterns.extend(
                pats.iter()
                    .filter_map(|p| template::expand(p, &table).ok())
                    .map(|p| template::anchored(&p)),
            );
        }
    }
    let mut code = portcullis_pattern::native_source(
        patterns.iter().map(String::as_str),
        &["host", "user", "time", "key"],
    );
    code.push_str(&format!(
        "/// The built-in filters whose programs have machine code.\n#[allow(dead_code)]\npub(crate) static NATIVE_FILTERS: &[&str] = &{NATIVE_FILTERS:?};\n"
    ));
    code
}

//! Embeds `filters/*.toml` and their sample logs (`filters/*.log`) into the library.
use std::{env, fs, path::Path};

fn main() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../filters");
    println!("cargo:rerun-if-changed={}", dir.display());
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
    fs::write(
        Path::new(&env::var("OUT_DIR").unwrap()).join("builtin_filters.rs"),
        out,
    )
    .unwrap();
}

//! `portcullis filters [--json]`: the built-in filter library, one line each.

use portcullis_core::filter::{builtin, Filter};

/// Prints one line per built-in filter: name first, then its description.
pub fn run(json: bool) -> anyhow::Result<i32> {
    let mut out = String::new();
    for b in builtin::all() {
        let f = Filter::from_toml(b.source, b.name).map_err(anyhow::Error::msg)?;
        if json {
            let programs: Vec<String> = f
                .programs
                .iter()
                .map(|p| String::from_utf8_lossy(p).into_owned())
                .collect();
            out.push_str(&serde_json::json!({"name": f.name, "description": f.description, "programs": programs, "rules": f.rules().len()}).to_string());
            out.push('\n');
        } else {
            out.push_str(&format!("{:<22} {}\n", f.name, f.description));
        }
    }
    print!("{out}");
    Ok(0)
}

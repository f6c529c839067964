//! `portcullis filters [--json] [--group G]`: the built-in filter library;
//! `portcullis filters NAME [--sample]`: one filter's file, or its sample log.

use portcullis_core::filter::{builtin, def::GROUPS, Filter, FilterDef};

/// Prints each built-in filter (of `group`, when given): name, group and description on
/// one line, the log it expects on the next, then the ports a jail without `ports` bans on;
/// or one JSON object per filter (`ports`: `[[from, to], …]`, null for every port).
pub fn run(json: bool, group: Option<&str>) -> anyhow::Result<i32> {
    if let Some(g) = group {
        if !GROUPS.contains(&g) {
            anyhow::bail!("unknown group {g:?}: one of {}", GROUPS.join(", "));
        }
    }
    let mut out = String::new();
    for b in builtin::all() {
        let f = Filter::from_toml(b.source, b.name).map_err(anyhow::Error::msg)?;
        let def: FilterDef = toml::from_str(b.source)?;
        let g = def.group.as_deref().unwrap_or("-");
        if group.is_some_and(|want| want != g) {
            continue;
        }
        if json {
            let programs: Vec<String> = f
                .programs
                .iter()
                .map(|p| String::from_utf8_lossy(p).into_owned())
                .collect();
            out.push_str(
                &serde_json::json!({
                    "name": f.name,
                    "group": def.group,
                    "description": f.description,
                    "logs": def.logs,
                    "programs": programs,
                    "rules": f.rules().len(),
                    "ports": f.ports(),
                })
                .to_string(),
            );
            out.push('\n');
        } else {
            out.push_str(&format!("{:<22} {g:<14} {}\n", f.name, f.description));
            out.push_str(&format!("{:<37} log: {}\n", "", def.logs.join(" | ")));
            out.push_str(&format!("{:<37} ports: {}\n", "", ports_text(f.ports())));
        }
    }
    print!("{out}");
    Ok(0)
}

/// Prints the built-in filter `name`'s file as it is built in (header, audit and patterns),
/// or with `sample` its sample log. A package install has no `filters/` directory: this is
/// where an admin reads which log format and service settings a filter expects.
pub fn show(name: &str, sample: bool) -> anyhow::Result<i32> {
    let Some(b) = builtin::get(name) else {
        if let Some(why) = builtin::withdrawn(name) {
            anyhow::bail!("filter {name:?} is not built in: {why}; a client could choose the banned address (README, security model)");
        }
        let names: Vec<&str> = builtin::all().iter().map(|b| b.name).collect();
        let hint = crate::config::did_you_mean(name, &names)
            .map_or(String::new(), |m| format!("; did you mean `{m}`?"));
        anyhow::bail!("no built-in filter {name:?}{hint} (`portcullis filters` lists them)");
    };
    print!("{}", if sample { b.sample } else { b.source });
    Ok(0)
}

/// `80,443` (ranges as `5900-5999`), or `all` when the filter names none.
fn ports_text(ports: Option<&[(u16, u16)]>) -> String {
    ports.map_or_else(
        || "all".to_string(),
        |p| crate::firewall::ratelimit::ports_text(p, ",", "-"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_written_as_a_jail_would_take_them() {
        assert_eq!(ports_text(None), "all");
        assert_eq!(ports_text(Some(&[(80, 80), (443, 443)])), "80,443");
        assert_eq!(ports_text(Some(&[(5900, 5999)])), "5900-5999");
    }
}

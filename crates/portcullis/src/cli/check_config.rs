//! `portcullis check-config`: validate the configuration without starting anything.

use std::path::Path;

use crate::config::{self, Config};

/// Loads and validates; prints a summary of the jails or the error.
pub fn run(path: Option<&Path>) -> anyhow::Result<i32> {
    let cfg = Config::load(path)?;
    // the backends' programs, templates and files (missing iptables, unwritable hosts.deny)
    let backends = crate::firewall::router::used(&cfg);
    crate::firewall::router::preflight(&cfg)?;
    let from = if cfg.sources.is_empty() {
        "built-in default configuration (no file)".to_string()
    } else {
        cfg.sources
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    println!("configuration OK: {from}");
    println!(
        "socket {}, state in {}, firewall {}",
        cfg.socket.display(),
        cfg.state_dir.display(),
        backends.join("+")
    );
    for j in &cfg.jails {
        let ports = match &j.ports {
            None => "all ports".to_string(),
            Some(p) => p
                .iter()
                .map(|(a, b)| {
                    if a == b {
                        a.to_string()
                    } else {
                        format!("{a}-{b}")
                    }
                })
                .collect::<Vec<_>>()
                .join(","),
        };
        println!(
            "jail {}: filter {} ({:?}), {} failures in {} -> ban {} on {} ({}), logs: {}",
            j.name,
            j.filter_names.join("+"),
            j.mode,
            j.maxretry,
            portcullis_core::duration::format(j.findtime),
            portcullis_core::duration::format(j.bantime),
            ports,
            j.action,
            if j.logs.is_empty() {
                "none".into()
            } else {
                j.logs.join(", ")
            }
        );
    }
    for w in crate::firewall::settings::warnings(&backends)
        .into_iter()
        .chain(config::warnings(&cfg))
    {
        eprintln!("warning: {w}");
    }
    Ok(0)
}

//! Client subcommands that talk to the daemon over its control socket.

use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::config::Config;
use crate::daemon::control;
use crate::daemon::protocol::{Request, Response};

/// Finds the socket: `--socket`, else the one named by the configuration.
pub fn socket_path(socket: Option<&Path>, config: Option<&Path>) -> Result<PathBuf> {
    match socket {
        Some(s) => Ok(s.to_path_buf()),
        None => Ok(Config::load(config)?.socket),
    }
}

/// Sends `req`, prints the answer (as JSON with `json`), returns the exit code. With the
/// daemon stopped, `bans` and `unban` work on the state file of the configuration at
/// `config` ([`super::offline`]).
pub fn run(socket: &Path, config: Option<&Path>, req: Request, json: bool) -> Result<i32> {
    let offline = matches!(req, Request::Bans { .. } | Request::Unban { .. })
        && super::offline::daemon_stopped(socket);
    let resp = if offline {
        let cfg = Config::load(config)?;
        let now = super::time_context().now;
        match &req {
            Request::Bans { jail, permanent } => {
                let mut r = super::offline::bans(&cfg, jail.as_deref(), now)?;
                if *permanent {
                    r.bans.retain(|b| b.permanent);
                }
                r
            }
            Request::Unban { addr, jail, .. } => {
                let ip = match addr {
                    None => None,
                    Some(a) => match portcullis_core::ignore::Cidr::parse(a) {
                        Ok(c) => Some(c),
                        Err(_) => anyhow::bail!("{a:?} is not an IP address or CIDR prefix"),
                    },
                };
                super::offline::unban(&cfg, ip, jail.as_deref(), now)?
            }
            _ => unreachable!("only bans and unban work offline"),
        }
    } else {
        match control::request(socket, &req) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("portcullis: {e:#}");
                return Ok(3);
            }
        }
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&resp)?);
    } else {
        print_human(&req, &resp);
    }
    Ok(if resp.ok { 0 } else { 1 })
}

fn print_human(req: &Request, r: &Response) {
    if let Some(e) = &r.error {
        eprintln!("portcullis: {e}");
        return;
    }
    if let Some(m) = &r.message {
        println!("{m}");
    }
    for j in &r.jails {
        println!(
            "jail {}: filters {}, {} failures in {} -> ban {}; logs: {}",
            j.name,
            j.filters.join("+"),
            j.maxretry,
            j.findtime,
            j.bantime,
            j.logs.join(", ")
        );
        if j.files.iter().any(|f| !j.logs.contains(f)) {
            println!("  files: {}", j.files.join(", "));
        }
        for w in &j.warnings {
            println!("  WARNING: {w}");
        }
        println!(
            "  banned now: {}   tracked addresses: {}",
            j.banned,
            j.failing.len()
        );
        if j.evicted > 0 {
            println!("  tracking cap reached: {} addresses evicted", j.evicted);
        }
        if let Some(f) = &j.flood {
            println!("  FLOOD: {f}");
        }
        const SHOWN: usize = 20;
        for (a, n) in j.failing.iter().take(SHOWN) {
            println!("  failing {a} ({n})");
        }
        if j.failing.len() > SHOWN {
            println!("  ... and {} more", j.failing.len() - SHOWN);
        }
    }
    if matches!(req, Request::Bans { .. } | Request::Status { .. }) {
        if r.bans.is_empty() {
            println!("no active bans");
        }
        for b in &r.bans {
            let origin = if b.origin == "local" {
                String::new()
            } else {
                format!(" origin={}", b.origin)
            };
            if b.permanent {
                println!(
                    "{:<40} jail={:<12} permanent reason={} ban #{}{origin}",
                    b.host, b.jail, b.reason, b.count
                );
            } else {
                println!(
                    "{:<40} jail={:<12} until {} ({}s left) reason={} ban #{}{origin}",
                    b.host, b.jail, b.until, b.remaining_secs, b.reason, b.count
                );
            }
        }
    }
    if let Some(f) = &r.fleet {
        println!(
            "fleet: node={} stream={} connected={} reading={} outbox={} fleet_bans={}",
            f.node, f.stream, f.connected, f.reading, f.outbox, f.fleet_bans
        );
        let c: Vec<String> = f.counters.iter().map(|(k, v)| format!("{k}={v}")).collect();
        println!("  {}", c.join(" "));
    }
}

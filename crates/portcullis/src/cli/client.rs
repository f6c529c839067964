//! Client subcommands that talk to the daemon over its control socket.

use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::config::Config;
use crate::daemon::control;
use crate::daemon::protocol::{Request, Response};

/// Finds the socket: `--socket`, else the one named by the configuration, read alone
/// ([`Config::socket_only`]); the configuration's error when even that cannot be read.
fn socket_path(socket: Option<&Path>, config: Option<&Path>) -> Result<PathBuf> {
    match socket {
        Some(s) => Ok(s.to_path_buf()),
        None => match Config::socket_only(config) {
            Some(s) => Ok(s),
            None => Ok(Config::load(config)?.socket),
        },
    }
}

/// The configuration file `config` names (`-c`), else the default one, in words.
fn config_name(config: Option<&Path>) -> String {
    match config {
        Some(c) => c.display().to_string(),
        None if Path::new(crate::config::DEFAULT_PATH).exists() => {
            crate::config::DEFAULT_PATH.to_string()
        }
        None => "the built-in default configuration".to_string(),
    }
}

/// Whether `a` and `b` name the same file (written differently, or through a link to a
/// directory); a socket that is not there cannot be resolved itself, its directory can.
fn same_path(a: &Path, b: &Path) -> bool {
    let norm = |p: &Path| -> Option<PathBuf> {
        // `..` taken lexically first: its directory may not exist
        let mut p = std::path::absolute(p).ok()?;
        if p.components().any(|c| c == std::path::Component::ParentDir) {
            let mut clean = PathBuf::new();
            for c in p.components() {
                match c {
                    std::path::Component::ParentDir => {
                        clean.pop();
                    }
                    c => clean.push(c),
                }
            }
            p = clean;
        }
        let dir = p.parent()?;
        let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
        Some(dir.join(p.file_name()?))
    };
    a == b || norm(a).is_some_and(|n| Some(n) == norm(b))
}

/// Sends `req` to the daemon on `socket` (`--socket`, else the configuration's `socket`),
/// prints the answer (as JSON with `json`), returns the exit code.
///
/// With no daemon answering, `bans` and `unban` work on the state file ([`super::offline`])
/// of the configuration: the one given with `--config` (which names both the socket and the
/// state directory), else the default one. A `--socket` alone that is not the default
/// configuration's socket says nothing of where that daemon keeps its state: that is an
/// error (exit 3, as for `status`), never the default state directory's "no active bans".
pub fn run(socket: Option<&Path>, config: Option<&Path>, req: Request, json: bool) -> Result<i32> {
    // (before any connection: the same words whether a daemon runs or not)
    let target = match &req {
        Request::Ban { addr, .. }
        | Request::Unban {
            addr: Some(addr), ..
        } => Some(addr),
        _ => None,
    };
    if let Some(Err(e)) = target.map(|a| crate::lists::parse_target(a)) {
        eprintln!("portcullis: {e}");
        return Ok(1);
    }
    // a `--for` that is no duration is a usage error (2), found before any connection
    if let Request::Ban {
        duration: Some(d), ..
    } = &req
    {
        match portcullis_core::duration::parse(d) {
            _ if d == "forever" => {}
            Ok(l) if l > 0 => {}
            Ok(_) => {
                eprintln!("portcullis: --for: the duration must be longer than 0");
                return Ok(2);
            }
            Err(e) => {
                eprintln!("portcullis: --for: {e} (or \"forever\")");
                return Ok(2);
            }
        }
    }
    let sock = socket_path(socket, config)?;
    let offline = matches!(req, Request::Bans { .. } | Request::Unban { .. })
        && super::offline::daemon_stopped(&sock);
    let resp = if offline {
        let cfg = match (socket, config) {
            (Some(s), None) => match Config::load(None) {
                Ok(cfg) if same_path(s, &cfg.socket) => cfg,
                found => {
                    let names = match found {
                        Ok(cfg) => format!("names the socket {}", cfg.socket.display()),
                        Err(e) => format!("cannot be read ({e:#})"),
                    };
                    eprintln!(
                        "portcullis: no portcullis daemon is answering on {}, and where its \
                         state is kept is unknown: {} {names}. With the daemon stopped, give \
                         its configuration instead (--config FILE: its `socket` and \
                         `state_dir`)",
                        s.display(),
                        config_name(None),
                    );
                    return Ok(3);
                }
            },
            _ => Config::load(config)?,
        };
        eprintln!(
            "portcullis: no daemon is running (none answers on {}); working on the state in \
             {} (the state_dir of {})",
            sock.display(),
            cfg.state_dir.display(),
            config_name(config)
        );
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
                    Some(a) => Some(crate::lists::parse_target(a).map_err(anyhow::Error::msg)?),
                };
                super::offline::unban(&cfg, ip, jail.as_deref(), now)?
            }
            _ => unreachable!("only bans and unban work offline"),
        }
    } else {
        match control::request(&sock, &req) {
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
            match req {
                Request::Bans {
                    permanent: true, ..
                } => println!("no permanent bans"),
                _ => println!("no active bans"),
            }
        }
        // `status` shows the first bans, `bans` all of them (a status of 60,000 bans was
        // 60,000 lines, a review found)
        let shown = if matches!(req, Request::Status { .. }) {
            50
        } else {
            usize::MAX
        };
        for b in r.bans.iter().take(shown) {
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
        if r.bans.len() > shown {
            println!(
                "... and {} more bans (`portcullis bans` lists them all)",
                r.bans.len() - shown
            );
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

#[cfg(test)]
mod tests {
    use super::same_path;
    use std::path::Path;

    #[test]
    fn the_same_socket_written_differently_is_the_same() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path();
        std::fs::create_dir(d.join("run")).unwrap();
        std::os::unix::fs::symlink(d.join("run"), d.join("link")).unwrap();
        let sock = d.join("run/p.sock");
        assert!(same_path(&sock, &sock));
        assert!(same_path(&d.join("link/p.sock"), &sock));
        assert!(same_path(&d.join("run/../run/./p.sock"), &sock));
        // a directory that does not exist: taken as written
        assert!(same_path(
            Path::new("/nonexistent/x/../p.sock"),
            Path::new("/nonexistent/p.sock")
        ));
        assert!(!same_path(&d.join("run/q.sock"), &sock));
        assert!(!same_path(Path::new("/run/portcullis/p.sock"), &sock));
    }
}

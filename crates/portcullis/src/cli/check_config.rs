//! `portcullis check-config`: validate the configuration without starting anything.

use std::path::Path;

use crate::config::{self, Config};

/// Loads and validates; prints a summary of the jails or the error.
pub fn run(path: Option<&Path>, notify_test: bool) -> anyhow::Result<i32> {
    let cfg = Config::load(path)?;
    // the checks `run` makes before it starts (a state_dir others can write is refused)
    crate::daemon::fsutil::check_state_dir(&cfg.state_dir)?;
    // and its files, which the start refuses when planted (review 65: "OK", then refused);
    // by the user the daemon runs as (its state directory's owner: another user linting a
    // production configuration cannot look inside)
    let owner = std::fs::metadata(&cfg.state_dir).map(|m| std::os::unix::fs::MetadataExt::uid(&m));
    if owner.is_ok_and(|u| u == crate::daemon::fsutil::euid()) {
        let d = &cfg.state_dir;
        crate::store::check_trusted(&d.join("portcullis.db"))?;
        for (name, what) in [
            ("notify.db", "notification queue"),
            ("fleet.db", "fleet state"),
            (crate::report::FILE, "statistics file"),
        ] {
            crate::daemon::fsutil::check_state_file(&d.join(name), what)?;
        }
    }
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
    for line in crate::lists::describe("ignore", &cfg.ignore_list)
        .into_iter()
        .chain(crate::lists::describe("deny", &cfg.deny))
    {
        println!("{line}");
    }
    for j in &cfg.jails {
        let ports = match &j.ports {
            // (all ports of the protocol: a recidive jail over tcp leaves udp open)
            None => match j.protocol.as_str() {
                "both" => "all ports (tcp, udp and every other protocol)".to_string(),
                "udp" => "all udp ports".to_string(),
                _ => "all tcp ports".to_string(),
            },
            Some(p) => {
                crate::firewall::ratelimit::ports_text(p, ",", "-")
                    + match j.protocol.as_str() {
                        "both" => "/tcp+udp",
                        "udp" => "/udp",
                        _ => "/tcp",
                    }
            }
        };
        println!(
            "jail {}: filter {} ({}), {} failures in {} -> ban {} on {} ({}), logs: {}",
            j.name,
            j.filter_names.join("+"),
            j.mode.name(),
            j.maxretry,
            portcullis_core::duration::format(j.findtime),
            if j.bantime == portcullis_core::decision::FOREVER {
                "forever".to_string()
            } else {
                portcullis_core::duration::format(j.bantime)
            },
            ports,
            j.action,
            if j.logs.is_empty() {
                "none".into()
            } else {
                j.logs.join(", ")
            }
        );
    }
    for j in &cfg.jails {
        let p = &j.policy;
        let mut extra = Vec::new();
        if let Some(i) = &p.ban.increment {
            extra.push(format!(
                "bantime x{} per repeat within {} (max {}{})",
                i.factor,
                portcullis_core::duration::format(i.window),
                portcullis_core::duration::format(i.max),
                if i.across_jails { ", across jails" } else { "" }
            ));
        }
        if let Some(n) = p.ban.permanent_after {
            extra.push(format!("permanent from ban #{n}"));
        }
        if p.ban.jitter_percent > 0 {
            extra.push(format!("jitter up to {}%", p.ban.jitter_percent));
        }
        use portcullis_core::track::{DEFAULT_V4_PREFIX, DEFAULT_V6_PREFIX};
        if (j.v4_prefix, j.v6_prefix) != (DEFAULT_V4_PREFIX, DEFAULT_V6_PREFIX) {
            extra.push(format!(
                "offenders per /{} (v4) and /{} (v6)",
                j.v4_prefix, j.v6_prefix
            ));
        }
        if let Some(s) = &p.subnet {
            extra.push(format!(
                "subnet ban /{} (v4) /{} (v6) after {} bans within {}",
                s.v4,
                s.v6,
                s.after,
                portcullis_core::duration::format(s.within)
            ));
        }
        if !j.ignore.is_empty() {
            let l: Vec<String> = j.ignore.iter().map(|c| c.to_string()).collect();
            extra.push(format!("also never banned here: {}", l.join(", ")));
        }
        if !j.rule_weights.is_empty() {
            let w: Vec<String> = j
                .rule_weights
                .iter()
                .map(|(r, w)| format!("{r}={w}"))
                .collect();
            extra.push(format!("rule weights {}", w.join(",")));
        }
        if !extra.is_empty() {
            println!("jail {} policy: {}", j.name, extra.join("; "));
        }
    }
    for w in crate::firewall::settings::warnings(&backends)
        .into_iter()
        .chain(config::warnings(&cfg))
        .chain(crate::daemon::blind_jails(&cfg))
        .chain(read_only_state(&cfg.state_dir))
        .chain(deny_cut(&cfg))
    {
        eprintln!("warning: {w}");
    }
    if notify_test {
        return Ok(send_test(&cfg));
    }
    Ok(0)
}

/// The `deny` entries the daemon bans cut around this host's own addresses (or the
/// ignore list's names), as it will say at start: check-config listed them uncut (a review).
fn deny_cut(cfg: &Config) -> Vec<String> {
    let own = crate::daemon::addrs::own().unwrap_or_default();
    crate::daemon::deny_targets(cfg, &own).1
}

/// A state directory (or, when it is missing, the nearest directory above it) on a file
/// system mounted read-only: `run` cannot take its lock file there and exits, while
/// check-config said OK (review 41). Said, not refused: the unit's sandbox may mount it
/// otherwise for the daemon.
fn read_only_state(dir: &Path) -> Option<String> {
    let at = dir.ancestors().find(|p| p.exists())?;
    let st = rustix::fs::statvfs(at).ok()?;
    st.f_flag
        .contains(rustix::fs::StatVfsMountFlags::RDONLY)
        .then(|| {
            format!(
                "state_dir {}: {} is on a read-only file system: `portcullis run` cannot start (it keeps its lock file and state there)",
                dir.display(),
                at.display()
            )
        })
}

/// `--notify-test`: a test message through each channel; 1 when one failed or none is
/// configured.
fn send_test(cfg: &Config) -> i32 {
    if cfg.notify.is_empty() {
        eprintln!(
            "notify test: no [notify.mail] and no [[notify.webhook]] configured: nothing to send"
        );
        return 1;
    }
    let mut code = 0;
    for (what, r) in crate::notify::send_test(&cfg.notify) {
        match r {
            Ok(()) => println!("notify test: {what}: sent"),
            Err(e) => {
                println!("notify test: {what}: FAILED: {e:#}");
                code = 1;
            }
        }
    }
    code
}

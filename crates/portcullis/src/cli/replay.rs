//! `portcullis replay [--config FILE] [--jail NAME]… [--json] LOG…`: the dry run.
//!
//! Feeds each line to the jails exactly as the daemon does ([`portcullis_core::jail::Jail`]),
//! using the log's own timestamps as the clock, and prints every decision.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Result;
use portcullis_core::decision::{Decision, Millis};
use portcullis_core::jail::{Jail, Step};
use portcullis_core::time::rfc3339;

use super::input;
use crate::config::{self, Config};

/// Runs the replay; returns the exit code.
pub fn run(
    config_path: Option<&Path>,
    jails: &[String],
    json: bool,
    logs: &[PathBuf],
) -> Result<i32> {
    let cfg = match config_path {
        Some(p) => Config::load(Some(p))?,
        None => Config::builtin()?,
    };
    config::check_jail_names(&cfg, jails)?;
    let ctx = super::time_context();
    let mut running: Vec<Jail> = cfg
        .jails
        .iter()
        .filter(|j| jails.is_empty() || jails.contains(&j.name))
        .map(|j| crate::engine::build_jail(&cfg, j, &[]))
        .collect();
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 16, stdout.lock());
    let mut last: Millis = i64::MIN;
    let mut bans = 0u64;
    let mut lines = 0u64;
    let mut err = Ok(());
    let sources: Vec<Option<&Path>> = if logs.is_empty() {
        vec![None]
    } else {
        logs.iter().map(|p| Some(p.as_path())).collect()
    };
    for src in sources {
        input::for_each_line(input::open(src)?, |line| {
            lines += 1;
            for j in running.iter_mut() {
                let step = j.process(
                    line,
                    &ctx,
                    None,
                    if last == i64::MIN { ctx.now } else { last },
                );
                if let Step::Failure { failure, decision } = step {
                    last = last.max(failure.time);
                    if let Some(d) = decision {
                        bans += 1;
                        if err.is_ok() {
                            err = print(&mut out, &d, j.name(), json);
                        }
                    }
                }
            }
            if last != i64::MIN {
                for j in running.iter_mut() {
                    if j.tracker().next_expiry().is_some_and(|t| t <= last) {
                        for d in j.tracker_mut().expire(last) {
                            if err.is_ok() {
                                err = print(&mut out, &d, j.name(), json);
                            }
                        }
                    }
                }
            }
        })?;
    }
    err?;
    out.flush()?;
    let active: usize = running.iter().map(|j| j.tracker().stats().banned).sum();
    eprintln!("replay: {lines} lines, {bans} bans, {active} still banned at the end of the log");
    for j in &running {
        let st = j.tracker().stats();
        if st.evicted > 0 {
            eprintln!("replay: jail {}: tracking cap reached, {} addresses evicted (a flood of many addresses)", j.name(), st.evicted);
        }
    }
    Ok(0)
}

fn print(out: &mut impl Write, d: &Decision, jail: &str, json: bool) -> std::io::Result<()> {
    match (d, json) {
        (Decision::Ban { addr, at, until, failures }, true) => writeln!(
            out,
            "{{\"action\":\"ban\",\"host\":\"{addr}\",\"jail\":{},\"time\":\"{}\",\"until\":\"{}\",\"failures\":{failures}}}",
            serde_json::to_string(jail).unwrap_or_default(),
            rfc3339(*at),
            rfc3339(*until)
        ),
        (Decision::Unban { addr, at }, true) => writeln!(
            out,
            "{{\"action\":\"unban\",\"host\":\"{addr}\",\"jail\":{},\"time\":\"{}\",\"failures\":null}}",
            serde_json::to_string(jail).unwrap_or_default(),
            rfc3339(*at)
        ),
        (Decision::Ban { addr, at, until, failures }, false) => writeln!(
            out,
            "{} ban   {addr} jail={jail} failures={failures} for={}",
            rfc3339(*at),
            portcullis_core::duration::format(until - at)
        ),
        (Decision::Unban { addr, at }, false) => writeln!(out, "{} unban {addr} jail={jail}", rfc3339(*at)),
    }
}

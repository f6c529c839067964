//! `portcullis`: the daemon and its command-line client.
#![allow(dead_code)]

mod cli;
mod config;
mod engine;
mod firewall;
mod sources;
mod store;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Portcullis follows the logs of network services, counts failed and abusive logins per
/// address over a time window, and bans offenders at the firewall (nftables) for a time.
#[derive(Parser)]
#[command(name = "portcullis", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Validate the configuration (and its portcullis.d/ drop-ins) without starting anything.
    CheckConfig {
        /// Configuration file [default: /etc/portcullis/portcullis.toml, else built-in defaults].
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Try a filter on a log: a summary of matches, or one JSON object per line.
    Test {
        /// Built-in filter name (see `portcullis filters`) or path to a filter file.
        #[arg(long, short)]
        filter: String,
        /// One JSON object per input line: matched, host, user, time, rule.
        #[arg(long)]
        json: bool,
        /// How many top hosts and users the summary shows.
        #[arg(long, default_value_t = 10)]
        top: usize,
        /// Log file to read [default: standard input].
        file: Option<PathBuf>,
    },
    /// Dry run: feed logs through the jails, with the logs' timestamps as the clock, and
    /// print every ban and unban that would happen.
    Replay {
        /// Configuration file [default: the built-in default configuration].
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Only these jails (repeatable).
        #[arg(long)]
        jail: Vec<String>,
        /// One JSON object per decision: action, host, jail, time, failures.
        #[arg(long)]
        json: bool,
        /// Log files, read in order [default: standard input].
        logs: Vec<PathBuf>,
    },
    /// List the built-in filters, one per line: name, then description.
    Filters {
        /// One JSON object per filter.
        #[arg(long)]
        json: bool,
    },
    /// Translate a fail2ban filter.d/*.conf into a Portcullis filter (TOML).
    ImportFail2ban {
        /// The fail2ban filter file.
        path: PathBuf,
        /// Write the filter here [default: standard output].
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let res = match cli.cmd {
        Cmd::CheckConfig { config } => cli::check_config::run(config.as_deref()),
        Cmd::Test { filter, json, top, file } => cli::test::run(&filter, json, file.as_deref(), top),
        Cmd::Replay { config, jail, json, logs } => cli::replay::run(config.as_deref(), &jail, json, &logs),
        Cmd::Filters { json } => cli::filters::run(json),
        Cmd::ImportFail2ban { path, output } => cli::import_fail2ban::run(&path, output.as_deref()),
    };
    match res {
        Ok(code) => ExitCode::from(code.clamp(0, 255) as u8),
        Err(e) => {
            eprintln!("portcullis: {e:#}");
            ExitCode::from(2)
        }
    }
}

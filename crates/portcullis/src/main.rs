//! `portcullis`: the daemon and its command-line client.

mod cli;
mod config;
mod daemon;
mod events;
mod firewall;
mod fleet;
mod jails;
mod lists;
mod logging;
mod metrics;
mod notify;
mod report;
mod sources;
mod store;
mod sys;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

/// Portcullis follows the logs of network services, counts failed and abusive logins per
/// address over a time window, and bans offenders at the firewall (nftables) for a time.
#[derive(Parser)]
#[command(
    name = "portcullis",
    version,
    about,
    // our own `help` (below), which has a --help of its own
    disable_help_subcommand = true,
    long_about = "Portcullis follows the logs of network services (sshd, mail, web, FTP, ...), \
recognises failed and abusive logins with anchored patterns, counts them per source address \
over a time window, and bans offenders in the kernel firewall for a time. Loopback, the \
host's own addresses and the `ignore` list are never banned.\n\n\
Files: /etc/portcullis/portcullis.toml and /etc/portcullis/portcullis.d/*.toml (the \
configuration, see portcullis.toml(5)); /var/lib/portcullis (the state: bans, history, read \
positions); /run/portcullis/portcullis.sock (the control socket).\n\n\
Exit status: 0 done; 1 the daemon refused the request (an address not banned, a reload \
refused, a ban refused) or the address given is not one; 2 a usage or configuration error \
(the message names the file, line and key); 3 the control socket cannot be reached (no daemon answers, or permission denied)."
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

/// How a client finds the daemon.
#[derive(clap::Args, Clone)]
struct Target {
    /// Configuration file whose `socket` to use (the commands `bans` and `unban` also work
    /// on its `state_dir` while no daemon answers) [default: /etc/portcullis/portcullis.toml,
    /// else the built-in default configuration].
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// Control socket path (overrides the configuration). (With no daemon answering there,
    /// the commands `bans` and `unban` need that daemon's configuration, --config, for its
    /// state, unless this is the default configuration's socket.)
    #[arg(long)]
    socket: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the daemon in the foreground (as systemd expects): follow the jails' logs, ban
    /// through nftables, keep state in SQLite, answer on the control socket.
    /// SIGHUP or `portcullis reload` re-reads the configuration; SIGTERM stops.
    Run {
        /// Configuration file [default: /etc/portcullis/portcullis.toml, else built-in defaults].
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Least important messages shown: error, warning, note, debug [default: the
        /// configuration's `log_level`, else note]. Bans, unbans and restores are always shown.
        #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(logging::LEVELS))]
        log_level: Option<String>,
        /// (BlockHosts' and others' habit: said what to use instead, review 61)
        #[arg(long, hide = true)]
        dry_run: bool,
    },
    /// Show jails, addresses failing in the window, and active bans.
    Status {
        /// Only this jail.
        jail: Option<String>,
        #[command(flatten)]
        target: Target,
        /// Print the daemon's JSON answer.
        #[arg(long)]
        json: bool,
    },
    /// List active bans.
    Bans {
        /// Only this jail's bans.
        #[arg(long)]
        jail: Option<String>,
        /// Only the permanent bans (`bantime = "forever"`, `permanent_after`, `deny`).
        #[arg(long)]
        permanent: bool,
        #[command(flatten)]
        target: Target,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Ban an address or CIDR prefix by hand (refused for loopback, own and ignored addresses).
    Ban {
        /// The address, or a prefix such as 2001:db8:5:6::/64.
        addr: String,
        /// Jail [default: the first jail].
        #[arg(long)]
        jail: Option<String>,
        /// Duration, e.g. 1h, 3d, forever [default: the jail's bantime].
        #[arg(long = "for")]
        duration: Option<String>,
        #[command(flatten)]
        target: Target,
    },
    /// Lift a ban (or all bans with --all); the offender's escalation starts again (of one
    /// not banned now, its earlier bans are forgotten).
    Unban {
        /// The address or prefix (an address inside a banned prefix lifts the prefix).
        addr: Option<String>,
        /// Every active ban but the `deny` list's, which stay until removed from `deny`
        /// (with no address: `unban ADDR --all` is refused, not read as "in every jail",
        /// which lifting ADDR does by default).
        #[arg(long, conflicts_with = "addr")]
        all: bool,
        /// Only in this jail.
        #[arg(long)]
        jail: Option<String>,
        #[command(flatten)]
        target: Target,
    },
    /// Ask the daemon to re-read its configuration (a bad one is refused; the old keeps running).
    Reload {
        #[command(flatten)]
        target: Target,
    },
    /// Validate the configuration (and its portcullis.d/ drop-ins) without starting anything.
    CheckConfig {
        /// Configuration file [default: /etc/portcullis/portcullis.toml, else built-in defaults].
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Also send a test message through each notification channel ([notify.mail], each
        /// [[notify.webhook]]) now and say what came of it (exit 1 if one failed).
        #[arg(long)]
        notify_test: bool,
    },
    /// Try a filter on a log: a summary of matches, or one JSON object per line.
    // (clap's usage in the error for a missing --filter would show FILE as required)
    #[command(override_usage = "portcullis test [OPTIONS] --filter <FILTER> [FILE]")]
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
        /// Also list the lines no rule matched (fail2ban-regex's "missed lines"): the first N
        /// in file order [N default: 20], after their total. Lines longer than 200
        /// characters are shortened; syslog's "last message repeated" lines are not listed.
        #[arg(
            long,
            value_name = "N",
            num_args = 0..=1,
            require_equals = true,
            default_missing_value = "20",
            conflicts_with = "json"
        )]
        missed: Option<usize>,
        /// Log file to read [default: standard input].
        file: Option<PathBuf>,
    },
    /// Dry run: feed logs through the jails, with the logs' timestamps as the clock, and
    /// print every ban and unban that would happen.
    Replay {
        /// Configuration file [default: /etc/portcullis/portcullis.toml, else built-in defaults].
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
    /// List the built-in filters: name, group (the kind of service) and description, then
    /// the log each expects (what a jail's `logs` would name on Debian); or show one.
    Filters {
        /// Show this built-in filter's file: its header says which log and which settings of
        /// the service it expects, and which fields of a line a client controls; a copy is a
        /// starting point for a filter of your own.
        name: Option<String>,
        /// With NAME: its sample log instead (lines the filter is tested on, each after a
        /// `#=` line that says what the filter must make of it: counted, for which address
        /// and rule, or not).
        #[arg(long, requires = "name")]
        sample: bool,
        /// One JSON object per filter.
        #[arg(long, conflicts_with = "name")]
        json: bool,
        /// Only the filters of this group (ssh, mail, web, webapp, ftp, voip, chat, vpn, database,
        /// directory, proxy, remote-desktop, monitoring, game, system).
        #[arg(long, conflicts_with = "name")]
        group: Option<String>,
    },
    /// Translate a fail2ban filter.d/*.conf into a Portcullis filter (TOML).
    ImportFail2ban {
        /// The fail2ban filter file.
        path: PathBuf,
        /// Write the filter here [default: standard output].
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Statistics from the daemon's history (stats.db in the state directory): top
    /// addresses, user names tried, bans per jail and rule, a timeline, repeat offenders,
    /// top /24 and /64 prefixes.
    Report {
        /// Configuration file (for its `state_dir`) [default: /etc/portcullis/portcullis.toml].
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// The period: the last 1h, 24h, 7d, 90d, ... (from the whole hour it falls in:
        /// failures are kept by the hour).
        #[arg(long, default_value = "7d")]
        since: String,
        /// Only this jail.
        #[arg(long)]
        jail: Option<String>,
        /// text (aligned columns), json (for scripts), html (one self-contained page with
        /// inline SVG charts).
        #[arg(long, default_value = "text", value_parser = ["text", "json", "html"])]
        format: String,
        /// Rows per top list.
        #[arg(long, default_value_t = 10)]
        top: usize,
        /// Write the report here [default: standard output].
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Print the help of portcullis, or of one of its subcommands (as `portcullis SUBCOMMAND
    /// --help` does).
    Help {
        /// The subcommand, e.g. `bans`.
        subcommand: Option<String>,
    },
    /// Write the man pages and shell completions generated from this command line into DIR
    /// (`man/`, `completions/`): how dist/ is kept up to date (a developer's command; README,
    /// "Install as a service").
    #[command(hide = true)]
    GenerateAssets {
        /// The directory to write into (created).
        dir: PathBuf,
    },
}

/// Lets a closed standard output end the process quietly, as it ends `cat` or `grep`:
/// `portcullis filters | head -1` must not abort (Rust ignores SIGPIPE, so a write to a
/// closed pipe fails, and `println!` panics on that failure). Not for `run`: the daemon
/// keeps SIGPIPE ignored so that a client that goes away is an error on its socket.
fn end_quietly_on_closed_stdout() {
    sys::default_sigpipe();
}

/// `portcullis help [SUBCOMMAND]`: what `portcullis [SUBCOMMAND] --help` prints.
fn help(sub: Option<&str>) -> anyhow::Result<i32> {
    let argv = ["portcullis"].into_iter().chain(sub).chain(["--help"]);
    match Cli::command().try_get_matches_from(argv) {
        Err(e) => {
            e.print()?;
            Ok(e.exit_code())
        }
        // (a subcommand with a positional argument could take "--help" as one: none does)
        Ok(_) => anyhow::bail!("no help for {sub:?}"),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if !matches!(cli.cmd, Cmd::Run { .. }) {
        end_quietly_on_closed_stdout();
    }
    use daemon::protocol::Request;
    let client = |t: &Target, req: Request, json: bool| -> anyhow::Result<i32> {
        cli::client::run(t.socket.as_deref(), t.config.as_deref(), req, json)
    };
    let res = match cli.cmd {
        Cmd::Run { dry_run: true, .. } => {
            eprintln!("portcullis: `run` has no --dry-run: a dry run is [firewall] backend = \"null\" in a configuration of its own (the daemon runs and logs its bans, blocks nothing; give it its own state_dir and socket, or its bans come back when the real one starts), or `portcullis replay LOG` (what a jail would have banned in a log, offline)");
            Ok(2)
        }
        Cmd::Run {
            config, log_level, ..
        } => daemon::run(config.as_deref(), log_level.as_deref()),
        Cmd::Status { jail, target, json } => client(&target, Request::Status { jail }, json),
        Cmd::Bans {
            jail,
            permanent,
            target,
            json,
        } => client(&target, Request::Bans { jail, permanent }, json),
        Cmd::Ban {
            addr,
            jail,
            duration,
            target,
        } => client(
            &target,
            Request::Ban {
                addr,
                jail,
                duration,
            },
            false,
        ),
        Cmd::Unban {
            addr,
            all,
            jail,
            target,
        } => {
            if addr.is_none() && !all {
                eprintln!("portcullis: give an address to unban, or --all");
                return ExitCode::from(2);
            }
            client(&target, Request::Unban { addr, jail, all }, false)
        }
        Cmd::Reload { target } => client(&target, Request::Reload, false),
        Cmd::CheckConfig {
            config,
            notify_test,
        } => cli::check_config::run(config.as_deref(), notify_test),
        Cmd::Test {
            filter,
            json,
            top,
            missed,
            file,
        } => cli::test::run(&filter, json, file.as_deref(), top, missed),
        Cmd::Replay {
            config,
            jail,
            json,
            logs,
        } => cli::replay::run(config.as_deref(), &jail, json, &logs),
        Cmd::Filters {
            name: Some(name),
            sample,
            ..
        } => cli::filters::show(&name, sample),
        Cmd::Filters { json, group, .. } => cli::filters::run(json, group.as_deref()),
        Cmd::ImportFail2ban { path, output } => cli::import_fail2ban::run(&path, output.as_deref()),
        Cmd::Report {
            config,
            since,
            jail,
            format,
            top,
            output,
        } => report::run(
            config.as_deref(),
            &since,
            jail.as_deref(),
            &format,
            output.as_deref(),
            top,
        ),
        Cmd::Help { subcommand } => help(subcommand.as_deref()),
        Cmd::GenerateAssets { dir } => cli::assets::run(Cli::command(), &dir),
    };
    match res {
        Ok(code) => ExitCode::from(code.clamp(0, 255) as u8),
        Err(e) => {
            eprintln!("portcullis: {e:#}");
            ExitCode::from(2)
        }
    }
}

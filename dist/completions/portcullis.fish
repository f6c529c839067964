# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_portcullis_global_optspecs
    string join \n h/help V/version
end

function __fish_portcullis_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_portcullis_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_portcullis_using_subcommand
    set -l cmd (__fish_portcullis_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c portcullis -n "__fish_portcullis_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c portcullis -n "__fish_portcullis_needs_command" -s V -l version -d 'Print version'
complete -c portcullis -n "__fish_portcullis_needs_command" -f -a "run" -d 'Run the daemon in the foreground (as systemd expects): follow the jails\' logs, ban through nftables, keep state in SQLite, answer on the control socket. SIGHUP or `portcullis reload` re-reads the configuration; SIGTERM stops'
complete -c portcullis -n "__fish_portcullis_needs_command" -f -a "status" -d 'Show jails, addresses failing in the window, and active bans'
complete -c portcullis -n "__fish_portcullis_needs_command" -f -a "bans" -d 'List active bans'
complete -c portcullis -n "__fish_portcullis_needs_command" -f -a "ban" -d 'Ban an address or CIDR prefix by hand (refused for loopback, own and ignored addresses)'
complete -c portcullis -n "__fish_portcullis_needs_command" -f -a "unban" -d 'Lift a ban (or all bans with --all); the offender\'s escalation starts again (of one not banned now, its earlier bans are forgotten)'
complete -c portcullis -n "__fish_portcullis_needs_command" -f -a "reload" -d 'Ask the daemon to re-read its configuration (a bad one is refused; the old keeps running)'
complete -c portcullis -n "__fish_portcullis_needs_command" -f -a "check-config" -d 'Validate the configuration (and its portcullis.d/ drop-ins) without starting anything'
complete -c portcullis -n "__fish_portcullis_needs_command" -f -a "test" -d 'Try a filter on a log: a summary of matches, or one JSON object per line'
complete -c portcullis -n "__fish_portcullis_needs_command" -f -a "replay" -d 'Dry run: feed logs through the jails, with the logs\' timestamps as the clock, and print every ban and unban that would happen'
complete -c portcullis -n "__fish_portcullis_needs_command" -f -a "filters" -d 'List the built-in filters: name, group (the kind of service) and description, then the log each expects (what a jail\'s `logs` would name on Debian); or show one'
complete -c portcullis -n "__fish_portcullis_needs_command" -f -a "import-fail2ban" -d 'Translate a fail2ban filter.d/*.conf into a Portcullis filter (TOML)'
complete -c portcullis -n "__fish_portcullis_needs_command" -f -a "report" -d 'Statistics from the daemon\'s history (stats.db in the state directory): top addresses, user names tried, bans per jail and rule, a timeline, repeat offenders, top /24 and /64 prefixes'
complete -c portcullis -n "__fish_portcullis_needs_command" -f -a "help" -d 'Print the help of portcullis, or of one of its subcommands (as `portcullis SUBCOMMAND --help` does)'
complete -c portcullis -n "__fish_portcullis_using_subcommand run" -s c -l config -d 'Configuration file [default: /etc/portcullis/portcullis.toml, else built-in defaults]' -r -F
complete -c portcullis -n "__fish_portcullis_using_subcommand run" -l log-level -d 'Least important messages shown: error, warning, note, debug [default: the configuration\'s `log_level`, else note]. Bans, unbans and restores are always shown' -r -f -a "error\t''
warning\t''
note\t''
debug\t''"
complete -c portcullis -n "__fish_portcullis_using_subcommand run" -l dry-run -d '(BlockHosts\' and others\' habit: said what to use instead, review 61)'
complete -c portcullis -n "__fish_portcullis_using_subcommand run" -s h -l help -d 'Print help'
complete -c portcullis -n "__fish_portcullis_using_subcommand status" -s c -l config -d 'Configuration file whose `socket` to use (the commands `bans` and `unban` also work on its `state_dir` while no daemon answers) [default: /etc/portcullis/portcullis.toml, else the built-in default configuration]' -r -F
complete -c portcullis -n "__fish_portcullis_using_subcommand status" -l socket -d 'Control socket path (overrides the configuration). (With no daemon answering there, the commands `bans` and `unban` need that daemon\'s configuration, --config, for its state, unless this is the default configuration\'s socket.)' -r -F
complete -c portcullis -n "__fish_portcullis_using_subcommand status" -l json -d 'Print the daemon\'s JSON answer'
complete -c portcullis -n "__fish_portcullis_using_subcommand status" -s h -l help -d 'Print help'
complete -c portcullis -n "__fish_portcullis_using_subcommand bans" -l jail -d 'Only this jail\'s bans' -r
complete -c portcullis -n "__fish_portcullis_using_subcommand bans" -s c -l config -d 'Configuration file whose `socket` to use (the commands `bans` and `unban` also work on its `state_dir` while no daemon answers) [default: /etc/portcullis/portcullis.toml, else the built-in default configuration]' -r -F
complete -c portcullis -n "__fish_portcullis_using_subcommand bans" -l socket -d 'Control socket path (overrides the configuration). (With no daemon answering there, the commands `bans` and `unban` need that daemon\'s configuration, --config, for its state, unless this is the default configuration\'s socket.)' -r -F
complete -c portcullis -n "__fish_portcullis_using_subcommand bans" -l permanent -d 'Only the permanent bans (`bantime = "forever"`, `permanent_after`, `deny`)'
complete -c portcullis -n "__fish_portcullis_using_subcommand bans" -l json -d 'Print JSON'
complete -c portcullis -n "__fish_portcullis_using_subcommand bans" -s h -l help -d 'Print help'
complete -c portcullis -n "__fish_portcullis_using_subcommand ban" -l jail -d 'Jail [default: the first jail]' -r
complete -c portcullis -n "__fish_portcullis_using_subcommand ban" -l for -d 'Duration, e.g. 1h, 3d, forever [default: the jail\'s bantime]' -r
complete -c portcullis -n "__fish_portcullis_using_subcommand ban" -s c -l config -d 'Configuration file whose `socket` to use (the commands `bans` and `unban` also work on its `state_dir` while no daemon answers) [default: /etc/portcullis/portcullis.toml, else the built-in default configuration]' -r -F
complete -c portcullis -n "__fish_portcullis_using_subcommand ban" -l socket -d 'Control socket path (overrides the configuration). (With no daemon answering there, the commands `bans` and `unban` need that daemon\'s configuration, --config, for its state, unless this is the default configuration\'s socket.)' -r -F
complete -c portcullis -n "__fish_portcullis_using_subcommand ban" -s h -l help -d 'Print help'
complete -c portcullis -n "__fish_portcullis_using_subcommand unban" -l jail -d 'Only in this jail' -r
complete -c portcullis -n "__fish_portcullis_using_subcommand unban" -s c -l config -d 'Configuration file whose `socket` to use (the commands `bans` and `unban` also work on its `state_dir` while no daemon answers) [default: /etc/portcullis/portcullis.toml, else the built-in default configuration]' -r -F
complete -c portcullis -n "__fish_portcullis_using_subcommand unban" -l socket -d 'Control socket path (overrides the configuration). (With no daemon answering there, the commands `bans` and `unban` need that daemon\'s configuration, --config, for its state, unless this is the default configuration\'s socket.)' -r -F
complete -c portcullis -n "__fish_portcullis_using_subcommand unban" -l all -d 'Every active ban but the `deny` list\'s, which stay until removed from `deny` (with no address: `unban ADDR --all` is refused, not read as "in every jail", which lifting ADDR does by default)'
complete -c portcullis -n "__fish_portcullis_using_subcommand unban" -s h -l help -d 'Print help'
complete -c portcullis -n "__fish_portcullis_using_subcommand reload" -s c -l config -d 'Configuration file whose `socket` to use (the commands `bans` and `unban` also work on its `state_dir` while no daemon answers) [default: /etc/portcullis/portcullis.toml, else the built-in default configuration]' -r -F
complete -c portcullis -n "__fish_portcullis_using_subcommand reload" -l socket -d 'Control socket path (overrides the configuration). (With no daemon answering there, the commands `bans` and `unban` need that daemon\'s configuration, --config, for its state, unless this is the default configuration\'s socket.)' -r -F
complete -c portcullis -n "__fish_portcullis_using_subcommand reload" -s h -l help -d 'Print help'
complete -c portcullis -n "__fish_portcullis_using_subcommand check-config" -s c -l config -d 'Configuration file [default: /etc/portcullis/portcullis.toml, else built-in defaults]' -r -F
complete -c portcullis -n "__fish_portcullis_using_subcommand check-config" -l notify-test -d 'Also send a test message through each notification channel ([notify.mail], each [[notify.webhook]]) now and say what came of it (exit 1 if one failed)'
complete -c portcullis -n "__fish_portcullis_using_subcommand check-config" -s h -l help -d 'Print help'
complete -c portcullis -n "__fish_portcullis_using_subcommand test" -s f -l filter -d 'Built-in filter name (see `portcullis filters`) or path to a filter file' -r
complete -c portcullis -n "__fish_portcullis_using_subcommand test" -l top -d 'How many top hosts and users the summary shows' -r
complete -c portcullis -n "__fish_portcullis_using_subcommand test" -l missed -d 'Also list the lines no rule matched (fail2ban-regex\'s "missed lines"): the first N in file order [N default: 20], after their total. Lines longer than 200 characters are shortened; syslog\'s "last message repeated" lines are not listed' -r
complete -c portcullis -n "__fish_portcullis_using_subcommand test" -l json -d 'One JSON object per input line: matched, host, user, time, rule'
complete -c portcullis -n "__fish_portcullis_using_subcommand test" -s h -l help -d 'Print help'
complete -c portcullis -n "__fish_portcullis_using_subcommand replay" -s c -l config -d 'Configuration file [default: /etc/portcullis/portcullis.toml, else built-in defaults]' -r -F
complete -c portcullis -n "__fish_portcullis_using_subcommand replay" -l jail -d 'Only these jails (repeatable)' -r
complete -c portcullis -n "__fish_portcullis_using_subcommand replay" -l json -d 'One JSON object per decision: action, host, jail, time, failures'
complete -c portcullis -n "__fish_portcullis_using_subcommand replay" -s h -l help -d 'Print help'
complete -c portcullis -n "__fish_portcullis_using_subcommand filters" -l group -d 'Only the filters of this group (ssh, mail, web, webapp, ftp, voip, chat, vpn, database, directory, proxy, remote-desktop, monitoring, game, system)' -r
complete -c portcullis -n "__fish_portcullis_using_subcommand filters" -l sample -d 'With NAME: its sample log instead (lines the filter is tested on, each after a `#=` line that says what the filter must make of it: counted, for which address and rule, or not)'
complete -c portcullis -n "__fish_portcullis_using_subcommand filters" -l json -d 'One JSON object per filter'
complete -c portcullis -n "__fish_portcullis_using_subcommand filters" -s h -l help -d 'Print help'
complete -c portcullis -n "__fish_portcullis_using_subcommand import-fail2ban" -s o -l output -d 'Write the filter here [default: standard output]' -r -F
complete -c portcullis -n "__fish_portcullis_using_subcommand import-fail2ban" -s h -l help -d 'Print help'
complete -c portcullis -n "__fish_portcullis_using_subcommand report" -s c -l config -d 'Configuration file (for its `state_dir`) [default: /etc/portcullis/portcullis.toml]' -r -F
complete -c portcullis -n "__fish_portcullis_using_subcommand report" -l since -d 'The period: the last 1h, 24h, 7d, 90d, ... (from the whole hour it falls in: failures are kept by the hour)' -r
complete -c portcullis -n "__fish_portcullis_using_subcommand report" -l jail -d 'Only this jail' -r
complete -c portcullis -n "__fish_portcullis_using_subcommand report" -l format -d 'text (aligned columns), json (for scripts), html (one self-contained page with inline SVG charts)' -r -f -a "text\t''
json\t''
html\t''"
complete -c portcullis -n "__fish_portcullis_using_subcommand report" -l top -d 'Rows per top list' -r
complete -c portcullis -n "__fish_portcullis_using_subcommand report" -s o -l output -d 'Write the report here [default: standard output]' -r -F
complete -c portcullis -n "__fish_portcullis_using_subcommand report" -s h -l help -d 'Print help'
complete -c portcullis -n "__fish_portcullis_using_subcommand help" -s h -l help -d 'Print help'

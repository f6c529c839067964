//! The `command` backend: the admin's own programs (sshblack's ADDRULE / DELRULE), run
//! without a shell.
//!
//! A template is an argv list: `["/usr/local/bin/block", "{addr}", "--jail={jail}"]`. Each
//! element becomes exactly one argument, whatever the values are, and the values are ours
//! and validated: an address as Rust prints it, a jail name of `[A-Za-z0-9_-]`, numbers and
//! fixed words. So neither a log line nor a jail name can add an argument, and no shell ever
//! parses anything. The program is an absolute path, checked when the configuration is read.
//!
//! Placeholders: `{cidr}` (what is banned, always as a CIDR: `203.0.113.5/32`,
//! `2001:db8:5:6::/64`), `{addr}` (the address, or the network address of a prefix ban:
//! `2001:db8:5:6::` alone blocks nobody, so a template with `{addr}` and neither `{prefix}`
//! nor `{cidr}` is a `check-config` warning where prefix bans can happen), `{family}` (4 or 6), `{jail}`, `{ports}` (comma list such as `22,8000-8080`; empty for
//! all ports), `{protocol}` (tcp, udp or both), `{bantime}` (seconds left; 0 when unbanning
//! and for a permanent ban, which has no end), `{prefix}` (the prefix length: 32 or 128 for
//! a single address, e.g. 64 for a `v6_prefix` ban, so `{addr}/{prefix}` is always the
//! CIDR). `{{` and `}}` are literal braces.
//!
//! Each run has a timeout; a failure is logged with the program's stderr and retried with
//! backoff. Bans do not expire by themselves here: the engine asks for the unban. At start,
//! `check` (when given) says which bans are still in place (exit 0) and need no new `ban`.
//! Programs run once per address: a batch is as many processes as it has changes.

use crate::sys::now_ms;
use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{bail, Result};
use portcullis_core::ignore::Cidr;
use tracing::{error, warn};

use super::{
    canonical_prefix, fold, never_ban_prefix, run_program, timeout_secs, Firewall, FwOp, JailRules,
    Proto,
};

/// A placeholder of a template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Var {
    Cidr,
    Addr,
    Family,
    Jail,
    Ports,
    Protocol,
    Bantime,
    Prefix,
}

const VARS: &[(&str, Var)] = &[
    ("cidr", Var::Cidr),
    ("addr", Var::Addr),
    ("family", Var::Family),
    ("jail", Var::Jail),
    ("ports", Var::Ports),
    ("protocol", Var::Protocol),
    ("bantime", Var::Bantime),
    ("prefix", Var::Prefix),
];

/// One piece of an argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    Lit(String),
    Var(Var),
}

/// A parsed argv template: the program (a literal absolute path) and its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    pub program: String,
    pub args: Vec<Vec<Piece>>,
}

/// The values of one run.
#[derive(Debug, Clone)]
pub struct Values<'a> {
    /// The address, or the prefix, banned.
    pub addr: Cidr,
    pub jail: &'a str,
    pub ports: Option<&'a [(u16, u16)]>,
    pub proto: Proto,
    pub bantime_secs: i64,
}

impl Template {
    /// Parses an argv list; errors say what is wrong and what is valid.
    pub fn parse(argv: &[String]) -> std::result::Result<Template, String> {
        let Some((program, args)) = argv.split_first() else {
            return Err(
                "empty command; give [\"/absolute/path/to/program\", \"{addr}\", ...]".into(),
            );
        };
        if !program.starts_with('/') || program.contains(['{', '}']) {
            return Err(format!("the program {program:?} must be an absolute path without placeholders, e.g. \"/usr/local/bin/block\" (no shell runs it, so PATH lookups and shell syntax do not work)"));
        }
        let args = args
            .iter()
            .map(|a| parse_arg(a))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        Ok(Template {
            program: program.clone(),
            args,
        })
    }

    /// Whether the template names `var` in some argument.
    pub fn uses(&self, var: Var) -> bool {
        self.args
            .iter()
            .flatten()
            .any(|p| matches!(p, Piece::Var(v) if *v == var))
    }

    /// Checks that the program exists and is executable.
    pub fn check_program(&self) -> Result<()> {
        let Some(found) = super::find_program(&self.program) else {
            bail!(
                "firewall backend \"command\": {} does not exist or is not executable",
                self.program
            );
        };
        // (run as root with every ban: review 65)
        crate::daemon::fsutil::check_trusted(
            &found,
            "firewall backend \"command\": the program",
            true,
        )?;
        // and, for an interpreter, a file an argument names whole: its script
        // (`["/bin/sh", "/usr/local/lib/ban.sh", "{cidr}"]`, review 67 L3; a data file
        // another user owns, given to another program, is that program's business, review
        // 69)
        let prog = std::path::Path::new(&self.program)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let interpreter = [
            "sh",
            "bash",
            "dash",
            "zsh",
            "ksh",
            "env",
            "busybox",
            "run-parts",
        ]
        .contains(&prog.as_str())
            || ["python", "perl", "ruby", "php", "node", "lua", "tclsh"]
                .iter()
                .any(|i| prog.starts_with(i));
        for arg in self.args.iter().filter(|_| interpreter) {
            if let [Piece::Lit(a)] = arg.as_slice() {
                let p = std::path::Path::new(a);
                // (a file, a directory (run-parts'), or one not made yet: review 68)
                if a.starts_with('/') {
                    crate::daemon::fsutil::check_trusted(
                        p,
                        "firewall backend \"command\": the file given as an argument,",
                        true,
                    )?;
                }
            }
        }
        Ok(())
    }

    /// The argv of one run: one argument per template element.
    pub fn expand(&self, v: &Values) -> Vec<String> {
        let addr = canonical_prefix(v.addr);
        let value = |var: Var| -> String {
            match var {
                Var::Cidr => format!("{}/{}", addr.addr, addr.len),
                Var::Addr => addr.addr.to_string(),
                Var::Family => if addr.addr.is_ipv6() { "6" } else { "4" }.into(),
                Var::Jail => v.jail.to_string(),
                Var::Ports => v
                    .ports
                    .unwrap_or(&[])
                    .iter()
                    .map(|&(lo, hi)| {
                        if lo == hi {
                            lo.to_string()
                        } else {
                            format!("{lo}-{hi}")
                        }
                    })
                    .collect::<Vec<_>>()
                    .join(","),
                Var::Protocol => match v.proto {
                    Proto::Tcp => "tcp",
                    Proto::Udp => "udp",
                    Proto::Both => "both",
                }
                .into(),
                Var::Bantime => v.bantime_secs.max(0).to_string(),
                Var::Prefix => addr.len.to_string(),
            }
        };
        let mut out = vec![self.program.clone()];
        for arg in &self.args {
            let mut s = String::new();
            for p in arg {
                match p {
                    Piece::Lit(l) => s.push_str(l),
                    Piece::Var(var) => s.push_str(&value(*var)),
                }
            }
            out.push(s);
        }
        out
    }
}

fn parse_arg(a: &str) -> std::result::Result<Vec<Piece>, String> {
    let mut pieces = Vec::new();
    let mut lit = String::new();
    let mut rest = a;
    while let Some(c) = rest.chars().next() {
        if let Some(r) = rest.strip_prefix("{{") {
            lit.push('{');
            rest = r;
        } else if let Some(r) = rest.strip_prefix("}}") {
            lit.push('}');
            rest = r;
        } else if c == '{' {
            let Some(end) = rest.find('}') else {
                return Err(format!(
                    "unclosed `{{` in {a:?}; write `{{{{` for a literal brace"
                ));
            };
            let name = &rest[1..end];
            let Some((_, var)) = VARS.iter().find(|(n, _)| *n == name) else {
                let known: Vec<String> = VARS.iter().map(|(n, _)| format!("{{{n}}}")).collect();
                return Err(format!(
                    "unknown placeholder {{{name}}} in {a:?}; use {}",
                    known.join(", ")
                ));
            };
            if !lit.is_empty() {
                pieces.push(Piece::Lit(std::mem::take(&mut lit)));
            }
            pieces.push(Piece::Var(*var));
            rest = &rest[end + 1..];
        } else if c == '}' {
            return Err(format!(
                "stray `}}` in {a:?}; write `}}}}` for a literal brace"
            ));
        } else {
            lit.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    if !lit.is_empty() || pieces.is_empty() {
        pieces.push(Piece::Lit(lit));
    }
    Ok(pieces)
}

/// How the command backend runs its programs.
#[derive(Debug, Clone)]
pub struct CommandOptions {
    pub ban: Template,
    pub unban: Option<Template>,
    pub check: Option<Template>,
    pub timeout: Duration,
    pub retries: u32,
    /// First backoff; doubled after each failure.
    pub backoff: Duration,
}

/// The command backend; see the module documentation.
pub struct CommandBackend {
    opts: CommandOptions,
    jails: BTreeMap<String, JailRules>,
    /// What we banned and did not unban (for teardown and tests), with the jail's rules it
    /// was banned with and when it ends: an unban, or a reload that changes the jail's
    /// `ports` or `protocol`, names what the program was given at the ban.
    banned: BTreeMap<(String, Cidr), Banned>,
}

/// One ban the program made.
#[derive(Debug, Clone)]
struct Banned {
    rules: JailRules,
    /// When it ends (ms since the epoch); None: permanent.
    until: Option<i64>,
}

impl CommandBackend {
    pub fn new(opts: CommandOptions) -> Self {
        CommandBackend {
            opts,
            jails: BTreeMap::new(),
            banned: BTreeMap::new(),
        }
    }

    fn values<'a>(&'a self, jail: &'a str, addr: Cidr, timeout_ms: i64) -> Values<'a> {
        values(self.jails.get(jail), jail, addr, timeout_ms)
    }

    /// What a ban made now records.
    fn record(&mut self, key: (String, Cidr), timeout_ms: i64) {
        if let Some(rules) = self.jails.get(&key.0).cloned() {
            let until = timeout_secs(timeout_ms).map(|s| now_ms() + s * 1000);
            self.banned.insert(key, Banned { rules, until });
        }
    }
}

/// The values of a template for a ban of `addr` in `jail` whose rules are `rules`.
fn values<'a>(
    rules: Option<&'a JailRules>,
    jail: &'a str,
    addr: Cidr,
    timeout_ms: i64,
) -> Values<'a> {
    Values {
        addr,
        jail,
        ports: rules.and_then(|r| r.ports.as_deref()),
        proto: rules.map_or(Proto::Tcp, |r| r.proto),
        // a permanent ban has no end: 0
        bantime_secs: timeout_secs(timeout_ms).unwrap_or(0),
    }
}

/// Changes whose program was given up, in a row, after which the rest of a batch is refused
/// without running it (not at a restore, which must try every ban).
const GIVE_UP_AFTER: usize = 2;

impl CommandBackend {
    /// Runs `argv` with the timeout, retrying with backoff; true if it succeeded once.
    fn run(&self, argv: &[String], what: &str) -> bool {
        let mut backoff = self.opts.backoff;
        for attempt in 0..=self.opts.retries {
            if attempt > 0 {
                std::thread::sleep(backoff);
                backoff *= 2;
            }
            match run_program(argv, None, self.opts.timeout) {
                Ok(out) if out.success() => return true,
                Ok(out) => warn!(
                    "firewall command: {what}: `{}` failed ({}, attempt {}): {}",
                    argv.join(" "),
                    out.status,
                    attempt + 1,
                    out.stderr_excerpt()
                ),
                Err(e) => warn!("firewall command: {what}: {e:#} (attempt {})", attempt + 1),
            }
        }
        error!(
            "firewall command: {what}: `{}` failed {} times, given up",
            argv.join(" "),
            self.opts.retries + 1
        );
        false
    }

    /// True when `check` says the ban is in place (exit 0). One run, no retries.
    fn present(&self, jail: &str, addr: Cidr, timeout_ms: i64) -> bool {
        let Some(check) = &self.opts.check else {
            return false;
        };
        let argv = check.expand(&self.values(jail, addr, timeout_ms));
        run_program(&argv, None, self.opts.timeout).is_ok_and(|o| o.success())
    }

    /// Runs the programs for `ops`; returns the changes whose program failed (the others
    /// carried out), or an error when the one change of a single-change batch failed.
    fn do_ops(&mut self, ops: &[FwOp], restoring: bool) -> Result<Vec<FwOp>> {
        let mut failed = 0;
        let mut refused = Vec::new();
        // programs given up in a row, and the changes then refused without running one: a
        // program that hangs cost `timeout` × (`retries` + 1) per change, one after another
        // on the engine, which answered nothing and banned nothing else meanwhile (30 s per
        // address at the defaults, a review measured)
        let (mut in_a_row, mut skipped) = (0, 0);
        let folded = fold(ops);
        for ((jail, addr), timeout) in &folded {
            if !self.jails.contains_key(jail) {
                bail!("cannot ban or unban {addr}: jail {jail:?} does not use the command backend");
            }
            // (bans only: an unban skipped so was lost, its block left in your system for
            // good while Portcullis no longer listed it, a review found; unbans are always
            // run)
            if let (Some(ms), true) = (timeout, in_a_row >= GIVE_UP_AFTER && !restoring) {
                skipped += 1;
                refused.push(FwOp::Add {
                    jail: jail.clone(),
                    addr: *addr,
                    timeout_ms: *ms,
                });
                continue;
            }
            let before = failed;
            let key = (jail.clone(), *addr);
            match timeout {
                Some(_) if never_ban_prefix(*addr) => {
                    error!("refusing to ban {addr} (jail {jail}): loopback/unspecified");
                }
                Some(ms) => {
                    if restoring && self.present(jail, *addr, *ms) {
                        self.record(key, *ms);
                        continue;
                    }
                    let argv = self.opts.ban.expand(&self.values(jail, *addr, *ms));
                    if self.run(&argv, &format!("ban {addr} (jail {jail})")) {
                        self.record(key, *ms);
                    } else {
                        failed += 1;
                        refused.push(FwOp::Add {
                            jail: jail.clone(),
                            addr: *addr,
                            timeout_ms: *ms,
                        });
                    }
                }
                None => {
                    // with the ports and protocol it was banned with
                    let was = self.banned.remove(&key);
                    if let Some(unban) = &self.opts.unban {
                        let rules = was.as_ref().map(|b| &b.rules).or(self.jails.get(jail));
                        let argv = unban.expand(&values(rules, jail, *addr, 0));
                        if !self.run(&argv, &format!("unban {addr} (jail {jail})")) {
                            failed += 1;
                            refused.push(FwOp::Del {
                                jail: jail.clone(),
                                addr: *addr,
                            });
                        }
                    }
                }
            }
            in_a_row = if failed > before { in_a_row + 1 } else { 0 };
        }
        if skipped > 0 {
            error!(
                "firewall command: given up {GIVE_UP_AFTER} times in a row: the {skipped} other ban(s) of this batch are refused without running it (tried again at the addresses' next failures; unbans are always run)"
            );
        }
        // a manual ban or unban of one address says the program failed; a batch logs each
        // failure and carries on (the admin's program is not the daemon's to die of)
        if failed > 0 && failed == folded.len() && folded.len() == 1 {
            bail!("the command failed (see the log for its stderr)");
        }
        Ok(refused)
    }
}

impl Firewall for CommandBackend {
    fn setup(&mut self, jails: &[JailRules]) -> Result<()> {
        for j in jails {
            j.check()?;
        }
        self.jails = jails.iter().map(|j| (j.name.clone(), j.clone())).collect();
        // a reload that changes a jail's ports or protocol: its bans are made again with the
        // new ones (unbanned with what they were banned with), as the kernel backends rewrite
        // their rules
        let changed: Vec<((String, Cidr), Banned)> = self
            .banned
            .iter()
            .filter(|((j, _), b)| {
                self.jails
                    .get(j)
                    .is_some_and(|r| (&r.ports, r.proto) != (&b.rules.ports, b.rules.proto))
            })
            .map(|(k, b)| (k.clone(), b.clone()))
            .collect();
        let now = now_ms();
        // (given up after GIVE_UP_AFTER failures in a row, as a batch is: the rest keep their
        // old ports here and are made again at the next setup; a program that hung held a
        // reload for every ban, a review found)
        let mut in_a_row = 0;
        for ((jail, addr), b) in changed {
            if in_a_row >= GIVE_UP_AFTER {
                error!("firewall command: given up {GIVE_UP_AFTER} times in a row: {addr} (jail {jail}) and the other bans whose ports changed keep the old ones until the next reload");
                break;
            }
            let mut ok = true;
            if let Some(unban) = &self.opts.unban {
                let argv = unban.expand(&values(Some(&b.rules), &jail, addr, 0));
                ok = self.run(&argv, &format!("unban {addr} (jail {jail}, ports changed)"));
            }
            let ms = b.until.map_or(super::PERMANENT, |u| (u - now).max(1000));
            let argv = self.opts.ban.expand(&self.values(&jail, addr, ms));
            if self.run(&argv, &format!("ban {addr} (jail {jail}, ports changed)")) {
                self.record((jail, addr), ms);
            } else {
                ok = false;
            }
            in_a_row = if ok { 0 } else { in_a_row + 1 };
        }
        Ok(())
    }

    fn apply(&mut self, ops: &[FwOp]) -> Result<()> {
        self.do_ops(ops, false).map(|_| ())
    }

    fn apply_each(&mut self, ops: &[FwOp]) -> Result<Vec<FwOp>> {
        self.do_ops(ops, false)
    }

    fn restore(&mut self, ops: &[FwOp]) -> Result<()> {
        self.do_ops(ops, true).map(|_| ())
    }

    fn expires_itself(&self) -> bool {
        false
    }

    #[cfg(test)]
    fn list(&mut self) -> Result<Vec<(String, std::net::IpAddr, Option<i64>)>> {
        Ok(self
            .banned
            .keys()
            .map(|(j, a)| (j.clone(), a.addr, None))
            .collect())
    }

    fn teardown(&mut self) -> Result<()> {
        let ops: Vec<FwOp> = self
            .banned
            .keys()
            .map(|(jail, addr)| FwOp::Del {
                jail: jail.clone(),
                addr: *addr,
            })
            .collect();
        self.do_ops(&ops, false).map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::firewall::{cidr, Action, PERMANENT};

    fn t(argv: &[&str]) -> std::result::Result<Template, String> {
        Template::parse(&argv.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn templates_parse_and_expand_one_argument_per_element() {
        let tpl = t(&[
            "/usr/local/bin/block",
            "{addr}/{prefix}",
            "--jail={jail}",
            "{ports}",
            "{protocol}",
            "{bantime}",
            "v{family}",
            "{{literal}}",
            "",
        ])
        .unwrap();
        let ports = [(22, 22), (8000, 8080)];
        let argv = tpl.expand(&Values {
            addr: Cidr::host("::ffff:192.0.2.7".parse().unwrap()),
            jail: "sshd",
            ports: Some(&ports),
            proto: Proto::Both,
            bantime_secs: 600,
        });
        assert_eq!(
            argv,
            [
                "/usr/local/bin/block",
                "192.0.2.7/32",
                "--jail=sshd",
                "22,8000-8080",
                "both",
                "600",
                "v4",
                "{literal}",
                ""
            ]
        );
        let argv = tpl.expand(&Values {
            addr: cidr("2001:db8::1"),
            jail: "x",
            ports: None,
            proto: Proto::Tcp,
            bantime_secs: -5,
        });
        assert_eq!(argv[1], "2001:db8::1/128");
        assert_eq!((argv[3].as_str(), argv[5].as_str()), ("", "0"));
        // a prefix: {addr} is the network, {prefix} its length
        let tpl = t(&[
            "/sbin/x",
            "{addr}",
            "{prefix}",
            "{addr}/{prefix}",
            "{family}",
            "{cidr}",
        ])
        .unwrap();
        assert!(tpl.uses(Var::Cidr) && tpl.uses(Var::Prefix) && !tpl.uses(Var::Jail));
        for (c, net, len, fam) in [
            ("198.51.100.0/24", "198.51.100.0", "24", "4"),
            ("2001:db8:5:6::/64", "2001:db8:5:6::", "64", "6"),
            ("203.0.113.5", "203.0.113.5", "32", "4"),
        ] {
            let argv = tpl.expand(&Values {
                addr: cidr(c),
                jail: "sshd",
                ports: None,
                proto: Proto::Tcp,
                bantime_secs: 60,
            });
            let whole = format!("{net}/{len}");
            assert_eq!(
                argv[1..],
                [net, len, whole.as_str(), fam, whole.as_str()],
                "{c}"
            );
        }
    }

    #[test]
    fn bad_templates_say_why() {
        for (argv, says) in [
            (&["block", "{addr}"][..], "absolute path"),
            (&["/bin/{jail}"][..], "absolute path"),
            (&[][..], "empty command"),
            (
                &["/bin/x", "{address}"][..],
                "unknown placeholder {address}",
            ),
            (&["/bin/x", "{addr"][..], "unclosed"),
            (&["/bin/x", "addr}"][..], "stray"),
        ] {
            let e = t(argv).unwrap_err();
            assert!(e.contains(says), "{argv:?}: {e}");
        }
    }

    fn jail(name: &str) -> JailRules {
        JailRules {
            name: name.into(),
            ports: Some(vec![(22, 22)]),
            proto: Proto::Tcp,
            action: Action::Drop,
            backends: vec![],
        }
    }

    /// A recording program: appends its argument count and arguments, one per line, to
    /// a file (the file's path is its first argument).
    fn recorder(dir: &std::path::Path, exit: i32) -> String {
        use std::os::unix::fs::PermissionsExt;
        let p = dir.join(format!("rec{exit}"));
        std::fs::write(
            &p,
            format!(
                "#!/bin/sh\nout=$1; shift\necho \"argc=$#\" >> \"$out\"\nfor a; do echo \"[$a]\" >> \"$out\"; done\necho oops >&2\nexit {exit}\n"
            ),
        )
        .unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        p.display().to_string()
    }

    fn backend(
        dir: &std::path::Path,
        exit: i32,
        check: bool,
    ) -> (CommandBackend, std::path::PathBuf) {
        let rec = recorder(dir, exit);
        let out = dir.join("calls");
        let o = out.display().to_string();
        let tpl = |verb: &str| t(&[&rec, &o, verb, "{addr}", "{jail}", "{bantime}"]).unwrap();
        let mut b = CommandBackend::new(CommandOptions {
            ban: tpl("ban"),
            unban: Some(tpl("unban")),
            check: check.then(|| t(&[&rec, &o, "check", "{addr}"]).unwrap()),
            timeout: Duration::from_secs(5),
            retries: 2,
            backoff: Duration::from_millis(10),
        });
        b.setup(&[jail("sshd")]).unwrap();
        (b, out)
    }

    #[test]
    fn runs_without_a_shell_and_values_never_add_arguments() {
        let dir = tempfile::tempdir().unwrap();
        let (mut b, out) = backend(dir.path(), 0, false);
        b.apply(&[FwOp::Add {
            jail: "sshd".into(),
            addr: cidr("2001:db8::5"),
            timeout_ms: 1500,
        }])
        .unwrap();
        b.apply(&[FwOp::Del {
            jail: "sshd".into(),
            addr: cidr("2001:db8::5"),
        }])
        .unwrap();
        let calls = std::fs::read_to_string(&out).unwrap();
        assert_eq!(
            calls,
            "argc=4\n[ban]\n[2001:db8::5]\n[sshd]\n[2]\nargc=4\n[unban]\n[2001:db8::5]\n[sshd]\n[0]\n"
        );
        // a jail name that could split or inject is refused before anything runs
        for bad in ["a b", "x;reboot", "$(id)", "a\nb", "--force"] {
            let r = b.setup(&[jail(bad)]);
            if bad == "--force" {
                // a valid name: still one argument, never an option of its own
                r.unwrap();
                b.apply(&[FwOp::Add {
                    jail: bad.into(),
                    addr: cidr("192.0.2.1"),
                    timeout_ms: 1000,
                }])
                .unwrap();
            } else {
                assert!(r.is_err(), "{bad:?}");
            }
        }
        let calls = std::fs::read_to_string(&out).unwrap();
        assert!(
            calls.ends_with("argc=4\n[ban]\n[192.0.2.1]\n[--force]\n[1]\n"),
            "{calls}"
        );
        // shell syntax in a template is passed as it is
        let t = t(&["/bin/echo", "$(id);", "`id`", "|", "{addr}"]).unwrap();
        let argv = t.expand(&b.values("sshd", cidr("192.0.2.1"), 0));
        let o = run_program(&argv, None, Duration::from_secs(5)).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&o.stdout),
            "$(id); `id` | 192.0.2.1\n"
        );
    }

    #[test]
    fn a_permanent_prefix_ban_runs_with_the_network_and_no_bantime() {
        let dir = tempfile::tempdir().unwrap();
        let (mut b, out) = backend(dir.path(), 0, false);
        b.apply(&[FwOp::Add {
            jail: "sshd".into(),
            addr: cidr("2001:db8:5:6::/64"),
            timeout_ms: PERMANENT,
        }])
        .unwrap();
        let calls = std::fs::read_to_string(&out).unwrap();
        assert_eq!(calls, "argc=4\n[ban]\n[2001:db8:5:6::]\n[sshd]\n[0]\n");
        assert_eq!(
            b.list().unwrap(),
            [("sshd".to_string(), "2001:db8:5:6::".parse().unwrap(), None)]
        );
    }

    #[test]
    fn failures_are_retried_and_a_lone_failure_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let (mut b, out) = backend(dir.path(), 3, false);
        let add = |a: &str| FwOp::Add {
            jail: "sshd".into(),
            addr: cidr(a),
            timeout_ms: 1000,
        };
        assert!(b.apply(&[add("192.0.2.1")]).is_err());
        let calls = std::fs::read_to_string(&out).unwrap();
        assert_eq!(calls.matches("[ban]").count(), 3, "{calls}");
        // in a batch, failures are logged and the rest goes on
        b.apply(&[add("192.0.2.2"), add("192.0.2.3")]).unwrap();
    }

    /// Found by a firewall review: a ban made with {ports} = 22 was unbanned with the ports
    /// of a reload (443), so the program never undid the port-22 block.
    #[test]
    fn a_reload_that_changes_the_ports_makes_the_bans_again() {
        let dir = tempfile::tempdir().unwrap();
        let rec = recorder(dir.path(), 0);
        let out = dir.path().join("calls");
        let o = out.display().to_string();
        let tpl = |verb: &str| t(&[&rec, &o, verb, "{addr}", "{ports}", "{protocol}"]).unwrap();
        let mut b = CommandBackend::new(CommandOptions {
            ban: tpl("ban"),
            unban: Some(tpl("unban")),
            check: None,
            timeout: Duration::from_secs(5),
            retries: 0,
            backoff: Duration::from_millis(10),
        });
        b.setup(&[jail("sshd")]).unwrap();
        b.apply(&[FwOp::Add {
            jail: "sshd".into(),
            addr: cidr("192.0.2.1"),
            timeout_ms: PERMANENT,
        }])
        .unwrap();
        let mut https = jail("sshd");
        https.ports = Some(vec![(443, 443)]);
        https.proto = Proto::Both;
        b.setup(&[https.clone()]).unwrap();
        // the same rules again: nothing runs
        b.setup(&[https]).unwrap();
        b.apply(&[FwOp::Del {
            jail: "sshd".into(),
            addr: cidr("192.0.2.1"),
        }])
        .unwrap();
        let calls = std::fs::read_to_string(&out).unwrap();
        let calls: Vec<&str> = calls.split("argc=4\n").filter(|c| !c.is_empty()).collect();
        assert_eq!(
            calls,
            [
                "[ban]\n[192.0.2.1]\n[22]\n[tcp]\n",
                "[unban]\n[192.0.2.1]\n[22]\n[tcp]\n",
                "[ban]\n[192.0.2.1]\n[443]\n[both]\n",
                "[unban]\n[192.0.2.1]\n[443]\n[both]\n",
            ]
        );
    }

    #[test]
    fn restore_asks_check_first() {
        let dir = tempfile::tempdir().unwrap();
        let (mut b, out) = backend(dir.path(), 0, true);
        b.restore(&[FwOp::Add {
            jail: "sshd".into(),
            addr: cidr("192.0.2.1"),
            timeout_ms: 1000,
        }])
        .unwrap();
        let calls = std::fs::read_to_string(&out).unwrap();
        assert!(
            calls.contains("[check]") && !calls.contains("[ban]"),
            "{calls}"
        );
        assert_eq!(b.list().unwrap().len(), 1);
    }
}

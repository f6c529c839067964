//! The daemon's events: what it did to the firewall and to itself (ban, unban, restore,
//! start, reload, stop), as one type with one `Display`.
//!
//! The text of an event is an interface: the `recidive` filter reads the daemon's own log
//! (`ban ADDR jail=NAME failures=N for=DURATION`), and admins grep it. It is written to
//! stderr (journald adds time and program; on a terminal the line starts with the time) whatever the log level. Notifications, metrics
//! and fleet sharing subscribe to these same events. Everything else the daemon says
//! (notes, warnings, errors) goes through `tracing` (see [`crate::logging`]).

use std::fmt;
use std::path::PathBuf;

use portcullis_core::decision::{BanReason, Millis, FOREVER};
use portcullis_core::duration;
use portcullis_core::ignore::Cidr;

/// Why a ban ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UnbanReason {
    /// Its time was up.
    Expired,
    /// `portcullis unban`.
    Manual,
    /// The ignore list, an own address or loopback now covers it (`ignore:CIDR`,
    /// `own-address`, `loopback`).
    Lifted(String),
}

/// Where the bans are left when the daemon stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopKind {
    /// The null backend never put anything in a firewall.
    NullBackend,
    /// `keep_bans_on_stop = true`: the kernel expires them.
    KeepBans,
    /// `keep_bans_on_stop = false`: the table is gone.
    TableRemoved,
    /// `keep_bans_on_stop = false`, but the firewall refused to remove what is ours.
    TeardownFailed,
}

/// One thing the daemon did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The daemon runs: its jails, socket and firewall backend.
    Started {
        /// Jail names.
        jails: Vec<String>,
        /// Control socket.
        socket: PathBuf,
        /// Backend name.
        firewall: String,
    },
    /// A new configuration runs; `lifted` bans the new ignore list covers were lifted.
    Reloaded {
        /// Jail names.
        jails: Vec<String>,
        /// Bans lifted.
        lifted: usize,
    },
    /// The daemon stops.
    Stopped(StopKind),
    /// An address (or prefix) is banned.
    Ban {
        /// The address or prefix.
        addr: Cidr,
        /// The jail.
        jail: String,
        /// Weighted failures that led to it (0 for a manual ban).
        failures: u32,
        /// Its length ([`FOREVER`]: permanent, written `for=forever`).
        length: Millis,
        /// Asked for with `portcullis ban`.
        manual: bool,
        /// Why (written as ` reason=…` unless `failures` or `manual`).
        reason: BanReason,
    },
    /// A ban ends.
    Unban {
        /// The address or prefix.
        addr: Cidr,
        /// The jail.
        jail: String,
        /// Why.
        reason: UnbanReason,
    },
    /// A ban from the store is put back into the firewall at start.
    Restore {
        /// The address or prefix.
        addr: Cidr,
        /// The jail.
        jail: String,
        /// Time left.
        remaining: Millis,
    },
    /// How many bans were restored, when too many to list each.
    Restored(usize),
    /// A flood (DOSBAIL): a jail's tracking cap was reached, or its matched-line rate jumped.
    /// The heavy hitters are kept and protection goes on; at most one per jail and interval.
    Flood {
        /// The jail.
        jail: String,
        /// Addresses with an open window now.
        tracked: usize,
        /// Windows evicted so far.
        evicted: u64,
        /// Failures counted in the interval.
        failures: u64,
        /// `tracking cap reached` or `failure rate jumped`.
        cause: String,
    },
}

fn names(jails: &[String]) -> String {
    jails.join(",")
}

impl Event {
    /// The `ban` event of jail `jail`'s ban decision `d` (made by its counts: not manual),
    /// as the daemon logs it; `None` for another decision.
    pub fn of_ban(jail: &str, d: &portcullis_core::decision::Decision) -> Option<Event> {
        let &portcullis_core::decision::Decision::Ban {
            addr,
            at,
            until,
            failures,
            reason,
        } = d
        else {
            return None;
        };
        Some(Event::Ban {
            addr,
            jail: jail.to_string(),
            failures,
            length: if until == FOREVER {
                FOREVER
            } else {
                until - at
            },
            manual: false,
            reason,
        })
    }
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Event::Started {
                jails,
                socket,
                firewall,
            } => write!(
                f,
                "started jails={} socket={} firewall={firewall}",
                names(jails),
                socket.display()
            ),
            Event::Reloaded { jails, lifted } => {
                write!(f, "reloaded jails={}", names(jails))?;
                if *lifted > 0 {
                    write!(f, " lifted={lifted}")?;
                }
                Ok(())
            }
            Event::Stopped(k) => f.write_str(match k {
                StopKind::NullBackend => {
                    "stopped (null backend: nothing was ever put in a firewall)"
                }
                StopKind::KeepBans => {
                    "stopped, bans stay in the firewall (nftables and ipset lift each at its end; iptables, route, hosts-deny and command keep them until the next start)"
                }
                StopKind::TableRemoved => {
                    "stopped, what the firewall held of ours removed (keep_bans_on_stop = false)"
                }
                StopKind::TeardownFailed => {
                    "stopped, but the firewall refused to remove what is ours (keep_bans_on_stop = false): the bans stay until the next start"
                }
            }),
            Event::Ban {
                addr,
                jail,
                failures,
                length,
                manual,
                reason,
            } => {
                let for_ = if *length == FOREVER {
                    "forever".to_string()
                } else {
                    duration::format(*length)
                };
                write!(f, "ban {addr} jail={jail} failures={failures} for={for_}")?;
                if *manual {
                    f.write_str(" manual")?;
                }
                if !matches!(reason, BanReason::Failures | BanReason::Manual) {
                    write!(f, " reason={reason}")?;
                }
                Ok(())
            }
            Event::Unban { addr, jail, reason } => {
                write!(f, "unban {addr} jail={jail}")?;
                match reason {
                    UnbanReason::Expired => Ok(()),
                    UnbanReason::Manual => f.write_str(" manual"),
                    UnbanReason::Lifted(r) => write!(f, " reason={r}"),
                }
            }
            Event::Restore {
                addr,
                jail,
                remaining,
            } => write!(
                f,
                "restore {addr} jail={jail} remaining={}",
                if *remaining >= FOREVER / 2 {
                    "forever".to_string()
                } else {
                    duration::format(*remaining)
                }
            ),
            Event::Restored(n) => write!(f, "restore {n} bans in all (first 100 listed)"),
            Event::Flood {
                jail,
                tracked,
                evicted,
                failures,
                cause,
            } => write!(
                f,
                "flood jail={jail} evicted={evicted} tracked={tracked} failures={failures} ({cause}: the \
                 heaviest offenders are kept, protection goes on)"
            ),
        }
    }
}

/// Something that receives every event (notifications, metrics). It runs on the thread
/// that emits, the engine's: it must only hand the event on, never wait.
pub type Subscriber = Box<dyn Fn(&Event) + Send + Sync>;

static SUBSCRIBERS: std::sync::RwLock<Vec<Subscriber>> = std::sync::RwLock::new(Vec::new());

/// Adds a subscriber for the rest of the process.
pub fn subscribe(s: Subscriber) {
    SUBSCRIBERS
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .push(s);
}

/// Publishes an event: its line on stderr (whatever the log level), then to the
/// subscribers.
pub fn emit(e: &Event) {
    // one write per line (stderr is unbuffered: `eprintln!` writes each piece on its own)
    let line = format!("{}{e}\n", crate::logging::terminal_stamp());
    let _ = std::io::Write::write_all(&mut std::io::stderr().lock(), line.as_bytes());
    for s in SUBSCRIBERS
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .iter()
    {
        s(e);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use portcullis_core::filter::{builtin, Filter, MatchSet, Mode};
    use portcullis_core::time::TimeContext;

    fn samples() -> Vec<Event> {
        let a = Cidr::parse("203.0.113.5").unwrap();
        let b = Cidr::parse("2001:db8::7").unwrap();
        vec![
            Event::Ban {
                addr: a,
                jail: "sshd".into(),
                failures: 5,
                length: 3_600_000,
                manual: false,
                reason: BanReason::Failures,
            },
            Event::Ban {
                addr: b,
                jail: "postfix".into(),
                failures: 7,
                length: 90 * 60_000,
                manual: false,
                reason: BanReason::Failures,
            },
            Event::Ban {
                addr: a,
                jail: "sshd".into(),
                failures: 0,
                length: 60_000,
                manual: true,
                reason: BanReason::Manual,
            },
            Event::Unban {
                addr: a,
                jail: "sshd".into(),
                reason: UnbanReason::Expired,
            },
            Event::Unban {
                addr: a,
                jail: "sshd".into(),
                reason: UnbanReason::Lifted("ignore:203.0.113.0/24".into()),
            },
            Event::Restore {
                addr: b,
                jail: "sshd".into(),
                remaining: 600_000,
            },
            Event::Started {
                jails: vec!["sshd".into()],
                socket: "/run/portcullis/portcullis.sock".into(),
                firewall: "nftables".into(),
            },
            Event::Flood {
                jail: "sshd".into(),
                tracked: 200_000,
                evicted: 12,
                failures: 3000,
                cause: "tracking cap reached".into(),
            },
        ]
    }

    #[test]
    fn lines_keep_their_published_form() {
        let lines: Vec<String> = samples().iter().map(ToString::to_string).collect();
        assert_eq!(
            lines,
            [
                "ban 203.0.113.5 jail=sshd failures=5 for=1h",
                "ban 2001:db8::7 jail=postfix failures=7 for=1h30m",
                "ban 203.0.113.5 jail=sshd failures=0 for=1m manual",
                "unban 203.0.113.5 jail=sshd",
                "unban 203.0.113.5 jail=sshd reason=ignore:203.0.113.0/24",
                "restore 2001:db8::7 jail=sshd remaining=10m",
                "started jails=sshd socket=/run/portcullis/portcullis.sock firewall=nftables",
                "flood jail=sshd evicted=12 tracked=200000 failures=3000 (tracking cap reached: \
                 the heaviest offenders are kept, protection goes on)",
            ]
        );
    }

    /// The recidive filter counts exactly the automatic bans among the daemon's lines.
    #[test]
    fn recidive_counts_the_bans_and_nothing_else() {
        let b = builtin::get("recidive").unwrap();
        let set = MatchSet::new(
            vec![Filter::from_toml(b.source, b.name).unwrap()],
            Mode::Aggressive,
        );
        let mut sc = set.scratch();
        let ctx = TimeContext {
            now: 1_795_000_000_000,
            local_offset: 0,
            zone: None,
        };
        let hosts: Vec<Option<String>> = samples()
            .iter()
            .map(|e| {
                // as journald forwards it to syslog
                let line = format!("Nov 21 10:00:01 gw portcullis[700]: {e}");
                set.match_line(line.as_bytes(), &ctx, &mut sc)
                    .map(|h| h.addr.to_string())
            })
            .collect();
        assert_eq!(
            hosts,
            [
                Some("203.0.113.5".to_string()),
                Some("2001:db8::7".to_string()),
                None,
                None,
                None,
                None,
                None,
                None
            ]
        );
    }
}

//! The report: what `stats.db` says about a period (and optionally one jail).

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::path::Path;

use anyhow::{Context, Result};
use portcullis_core::decision::Millis;
use portcullis_core::time::rfc3339;
use rusqlite::{params, Connection, OpenFlags};
use serde::Serialize;

/// An address (or prefix) with its counts.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Counted {
    /// The address, prefix, user name, jail or rule.
    pub name: String,
    /// Failures counted.
    pub failures: u64,
    /// Bans.
    pub bans: u64,
    /// Distinct addresses: of a prefix, failing in it; of a jail, failing in it; 1 for an
    /// address.
    pub addresses: u64,
}

/// A rule's bans.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct RuleCount {
    /// The jail.
    pub jail: String,
    /// The rule id (`manual` for `portcullis ban`, `unknown` when it was not recorded).
    pub rule: String,
    /// Bans.
    pub bans: u64,
    /// Failures counted by the rule.
    pub failures: u64,
}

/// One bar of the timeline.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Point {
    /// Start of the hour or day (RFC 3339, UTC).
    pub start: String,
    /// Bans in it.
    pub bans: u64,
    /// Failures in it.
    pub failures: u64,
}

/// An address banned more than once.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Repeat {
    /// The address.
    pub addr: String,
    /// Its bans.
    pub bans: u64,
    /// The jails that banned it.
    pub jails: Vec<String>,
    /// First ban (RFC 3339).
    pub first: String,
    /// Last ban (RFC 3339).
    pub last: String,
}

/// Totals of the period.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, Default)]
pub struct Totals {
    /// Failures counted.
    pub failures: u64,
    /// Bans.
    pub bans: u64,
    /// Distinct addresses that failed.
    pub addresses: u64,
    /// Distinct user names tried.
    pub users: u64,
}

/// The whole report (its JSON form is `--format json`).
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// When it was made (RFC 3339).
    pub generated: String,
    /// Start of the period (RFC 3339).
    pub since: String,
    /// The jail asked for (`None`: all).
    pub jail: Option<String>,
    /// Totals.
    pub totals: Totals,
    /// Addresses with the most failures.
    pub top_addresses: Vec<Counted>,
    /// User names tried most (attacker-controlled text; control characters escaped).
    pub top_users: Vec<Counted>,
    /// Bans per jail.
    pub bans_per_jail: Vec<Counted>,
    /// Bans per rule (the rule of the failure that triggered each ban).
    pub bans_per_rule: Vec<RuleCount>,
    /// `hour` (a period up to 2 days), `day` (up to 366 days) or `week`.
    pub timeline_unit: String,
    /// Bans and failures per hour or day, oldest first, empty ones included.
    pub timeline: Vec<Point>,
    /// Addresses banned more than once, most bans first.
    pub repeat_offenders: Vec<Repeat>,
    /// IPv4 /24 prefixes with the most failures.
    pub top_v4_24: Vec<Counted>,
    /// IPv6 /64 prefixes with the most failures.
    pub top_v6_64: Vec<Counted>,
}

/// Opens the stats file read-only (the daemon may be writing it).
pub fn open_ro(path: &Path) -> Result<Connection> {
    let c = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .with_context(|| {
        format!(
            "cannot open {} (the daemon writes it once it has counted something)",
            path.display()
        )
    })?;
    c.busy_timeout(std::time::Duration::from_secs(5))?;
    Ok(c)
}

/// `key` when it is a whole prefix of the report's length (`198.51.100.0/24`,
/// `2001:db8::/64`), written as [`prefix`] writes it.
pub fn whole_prefix(key: &str) -> Option<String> {
    let c = portcullis_core::ignore::Cidr::parse(key).ok()?;
    let want = if c.addr.is_ipv4() { 24 } else { 64 };
    (c.len == want).then(|| prefix(&c.addr.to_string()))?
}

/// The prefix of `addr`: /24 for IPv4, /64 for IPv6 (`None`: not an address, e.g. a
/// banned prefix).
pub fn prefix(addr: &str) -> Option<String> {
    match addr.parse::<IpAddr>().ok()? {
        IpAddr::V4(a) => {
            let o = a.octets();
            Some(format!("{}.{}.{}.0/24", o[0], o[1], o[2]))
        }
        IpAddr::V6(a) => {
            let s = a.segments();
            let p = std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0);
            Some(format!("{p}/64"))
        }
    }
}

fn top(mut v: Vec<Counted>, n: usize) -> Vec<Counted> {
    v.sort_by(|a, b| {
        (b.failures, b.bans)
            .cmp(&(a.failures, a.bans))
            .then_with(|| a.name.cmp(&b.name))
    });
    v.truncate(n);
    v
}

impl Report {
    /// The report of `conn` from `since` to `now` (Unix ms), for `jail` or all, `n` rows
    /// per top list.
    pub fn build(
        conn: &Connection,
        since: Millis,
        now: Millis,
        jail: Option<&str>,
        n: usize,
    ) -> Result<Report> {
        // failures are kept by the hour: the period starts at the hour `since` falls in,
        // for the bans too, and says so (`--since 30s` counted the hour's failures under a
        // period of 30 seconds, a review found)
        let hour0 = since.div_euclid(3_600_000);
        let since = hour0 * 3_600_000;
        let j = jail.unwrap_or("");
        let all = jail.is_none();
        // failures per address
        let mut per_addr: HashMap<String, (u64, u64)> = HashMap::new();
        let mut st = conn.prepare(
            "SELECT addr, sum(count) FROM failures WHERE hour >= ?1 AND (?2 OR jail = ?3)
             GROUP BY addr",
        )?;
        let mut rows = st.query(params![hour0, all, j])?;
        while let Some(r) = rows.next()? {
            per_addr.entry(r.get(0)?).or_default().0 = r.get::<_, i64>(1)? as u64;
        }
        // bans
        struct Ban {
            time: Millis,
            jail: String,
            addr: String,
            rule: String,
        }
        let mut bans = Vec::new();
        let mut st = conn.prepare(
            "SELECT time, jail, addr, coalesce(rule, 'unknown') FROM bans
             WHERE time >= ?1 AND (?2 OR jail = ?3) ORDER BY time",
        )?;
        let mut rows = st.query(params![since, all, j])?;
        while let Some(r) = rows.next()? {
            bans.push(Ban {
                time: r.get(0)?,
                jail: r.get(1)?,
                addr: r.get(2)?,
                rule: r.get(3)?,
            });
        }
        for b in &bans {
            per_addr.entry(b.addr.clone()).or_default().1 += 1;
        }
        let counted = |(name, (failures, bans)): (&String, &(u64, u64))| Counted {
            name: name.clone(),
            failures: *failures,
            bans: *bans,
            addresses: 1,
        };
        let mut totals = Totals {
            failures: per_addr.values().map(|v| v.0).sum(),
            bans: bans.len() as u64,
            addresses: per_addr.values().filter(|v| v.0 > 0).count() as u64,
            users: 0,
        };
        let top_addresses = top(per_addr.iter().map(counted).collect(), n);
        // prefixes
        let mut v4: HashMap<String, Counted> = HashMap::new();
        let mut v6: HashMap<String, Counted> = HashMap::new();
        for (a, (f, b)) in &per_addr {
            // (a ban of a whole /24 or /64, the default key of an IPv6 offender, is that
            // prefix's ban: it was left out, and no IPv6 ban was ever counted, a review
            // found)
            let (p, host) = match prefix(a) {
                Some(p) => (p, true),
                None => match whole_prefix(a) {
                    Some(p) => (p, false),
                    None => continue,
                },
            };
            let m = if p.contains(':') { &mut v6 } else { &mut v4 };
            let c = m.entry(p.clone()).or_insert(Counted {
                name: p,
                failures: 0,
                bans: 0,
                addresses: 0,
            });
            c.failures += f;
            c.bans += b;
            c.addresses += u64::from(host);
        }
        // users
        let mut st = conn.prepare(
            "SELECT user, sum(count), count(DISTINCT addr) FROM failures
             WHERE hour >= ?1 AND (?2 OR jail = ?3) AND user != '' GROUP BY user",
        )?;
        let users: Vec<Counted> = st
            .query_map(params![hour0, all, j], |r| {
                Ok(Counted {
                    name: r.get(0)?,
                    failures: r.get::<_, i64>(1)? as u64,
                    bans: 0,
                    addresses: r.get::<_, i64>(2)? as u64,
                })
            })?
            .collect::<rusqlite::Result<_>>()?;
        totals.users = users.len() as u64;
        // per jail and rule
        let mut jails: BTreeMap<String, Counted> = BTreeMap::new();
        let mut rules: BTreeMap<(String, String), RuleCount> = BTreeMap::new();
        let mut st = conn.prepare(
            "SELECT jail, rule, sum(count) FROM failures WHERE hour >= ?1 AND (?2 OR jail = ?3)
             GROUP BY jail, rule",
        )?;
        let mut rows = st.query(params![hour0, all, j])?;
        while let Some(r) = rows.next()? {
            let (jail, rule): (String, String) = (r.get(0)?, r.get(1)?);
            let f = r.get::<_, i64>(2)? as u64;
            jails
                .entry(jail.clone())
                .or_insert_with(|| Counted {
                    name: jail.clone(),
                    failures: 0,
                    bans: 0,
                    addresses: 0,
                })
                .failures += f;
            rules
                .entry((jail.clone(), rule.clone()))
                .or_insert(RuleCount {
                    jail,
                    rule,
                    bans: 0,
                    failures: 0,
                })
                .failures += f;
        }
        for b in &bans {
            jails
                .entry(b.jail.clone())
                .or_insert_with(|| Counted {
                    name: b.jail.clone(),
                    failures: 0,
                    bans: 0,
                    addresses: 0,
                })
                .bans += 1;
            rules
                .entry((b.jail.clone(), b.rule.clone()))
                .or_insert(RuleCount {
                    jail: b.jail.clone(),
                    rule: b.rule.clone(),
                    bans: 0,
                    failures: 0,
                })
                .bans += 1;
        }
        // each jail's distinct failing addresses (review 40: always 0)
        let mut st = conn.prepare(
            "SELECT jail, count(DISTINCT addr) FROM failures WHERE hour >= ?1 AND (?2 OR jail = ?3)
             GROUP BY jail",
        )?;
        let mut rows = st.query(params![hour0, all, j])?;
        while let Some(r) = rows.next()? {
            let jail: String = r.get(0)?;
            if let Some(c) = jails.get_mut(&jail) {
                c.addresses = r.get::<_, i64>(1)? as u64;
            }
        }
        let mut bans_per_jail: Vec<Counted> = jails.into_values().collect();
        bans_per_jail.sort_by(|a, b| b.bans.cmp(&a.bans).then(b.failures.cmp(&a.failures)));
        let mut bans_per_rule: Vec<RuleCount> = rules.into_values().collect();
        bans_per_rule.sort_by(|a, b| b.bans.cmp(&a.bans).then(b.failures.cmp(&a.failures)));
        // timeline: hours up to two days, else days
        let unit: Millis = if now - since <= 2 * 86_400_000 {
            3_600_000
        } else if now - since <= 366 * 86_400_000 {
            86_400_000
        } else {
            7 * 86_400_000
        };
        let first = since.div_euclid(unit);
        let last = now.div_euclid(unit);
        let mut timeline: Vec<(u64, u64)> = vec![(0, 0); timeline_len(first, last) as usize];
        let slot = |t: Millis| -> Option<usize> {
            let i = t.div_euclid(unit) - first;
            (0..timeline_len(first, last))
                .contains(&i)
                .then_some(i as usize)
        };
        for b in &bans {
            if let Some(i) = slot(b.time) {
                timeline[i].0 += 1;
            }
        }
        let mut st = conn.prepare(
            "SELECT hour, sum(count) FROM failures WHERE hour >= ?1 AND (?2 OR jail = ?3)
             GROUP BY hour",
        )?;
        let mut rows = st.query(params![hour0, all, j])?;
        while let Some(r) = rows.next()? {
            let h: i64 = r.get(0)?;
            if let Some(i) = slot(h * 3_600_000) {
                timeline[i].1 += r.get::<_, i64>(1)? as u64;
            }
        }
        let timeline = timeline
            .into_iter()
            .enumerate()
            .map(|(i, (b, f))| Point {
                start: rfc3339((first + i as i64) * unit),
                bans: b,
                failures: f,
            })
            .collect();
        // repeat offenders
        let mut rep: HashMap<&str, (u64, Vec<String>, Millis, Millis)> = HashMap::new();
        for b in &bans {
            let e = rep
                .entry(&b.addr)
                .or_insert((0, Vec::new(), b.time, b.time));
            e.0 += 1;
            if !e.1.contains(&b.jail) {
                e.1.push(b.jail.clone());
            }
            e.2 = e.2.min(b.time);
            e.3 = e.3.max(b.time);
        }
        let mut repeat_offenders: Vec<Repeat> = rep
            .into_iter()
            .filter(|(_, v)| v.0 > 1)
            .map(|(a, (n, mut jails, first, last))| {
                jails.sort();
                Repeat {
                    addr: a.to_string(),
                    bans: n,
                    jails,
                    first: rfc3339(first),
                    last: rfc3339(last),
                }
            })
            .collect();
        repeat_offenders.sort_by(|a, b| b.bans.cmp(&a.bans).then_with(|| a.addr.cmp(&b.addr)));
        repeat_offenders.truncate(n);
        Ok(Report {
            generated: rfc3339(now),
            since: rfc3339(since),
            jail: jail.map(str::to_string),
            totals,
            top_addresses,
            top_users: top(users, n),
            bans_per_jail,
            bans_per_rule,
            timeline_unit: match unit {
                3_600_000 => "hour",
                86_400_000 => "day",
                _ => "week",
            }
            .into(),
            timeline,
            repeat_offenders,
            top_v4_24: top(v4.into_values().collect(), n),
            top_v6_64: top(v6.into_values().collect(), n),
        })
    }
}

fn timeline_len(first: i64, last: i64) -> i64 {
    // at most 366 days or 2 days of hours; weeks past that, and a century is 5218 weeks
    (last - first + 1).clamp(1, 6000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes() {
        assert_eq!(prefix("203.0.113.77").unwrap(), "203.0.113.0/24");
        assert_eq!(prefix("2001:db8:1:2:3::9").unwrap(), "2001:db8:1:2::/64");
        assert_eq!(prefix("198.51.100.0/24"), None);
        assert_eq!(whole_prefix("198.51.100.0/24").unwrap(), "198.51.100.0/24");
        assert_eq!(
            whole_prefix("2001:db8:0:5::/64").unwrap(),
            "2001:db8:0:5::/64"
        );
        assert_eq!(whole_prefix("2001:db8::/48"), None);
        assert_eq!(whole_prefix("203.0.113.7"), None);
    }

    /// A ban of an IPv6 offender's /64 (the default key) counts for that /64 (a review found
    /// no IPv6 ban in the prefixes' table).
    #[test]
    fn a_prefix_ban_counts_for_its_prefix() {
        let dir = tempfile::tempdir().unwrap();
        let c = super::super::open_rw(&dir.path().join("s.db")).unwrap();
        let h = 1_795_000_000_000 / 3_600_000;
        for a in ["2001:db8:0:5::1", "2001:db8:0:5::2"] {
            c.execute(
                "INSERT INTO failures VALUES (?1,'sshd','failed',?2,'root',2)",
                params![h, a],
            )
            .unwrap();
        }
        c.execute(
            "INSERT INTO bans (time, jail, addr, rule, failures, length, manual)
             VALUES (?1,'sshd','2001:db8:0:5::/64','failed',4,600000,0)",
            params![h * 3_600_000 + 10],
        )
        .unwrap();
        let t = h * 3_600_000;
        let r = Report::build(&c, t - 3_600_000, t + 3_600_000, None, 10).unwrap();
        let p = &r.top_v6_64[0];
        assert_eq!(
            (p.name.as_str(), p.failures, p.bans, p.addresses),
            ("2001:db8:0:5::/64", 4, 1, 2)
        );
    }

    /// A small history: the numbers of every section.
    #[test]
    fn aggregates_every_section() {
        let dir = tempfile::tempdir().unwrap();
        let c = super::super::open_rw(&dir.path().join("s.db")).unwrap();
        let h = 1_795_000_000_000 / 3_600_000; // an hour
        let ins = |hour: i64, jail: &str, rule: &str, addr: &str, user: &str, n: i64| {
            c.execute(
                "INSERT INTO failures VALUES (?1,?2,?3,?4,?5,?6)",
                params![hour, jail, rule, addr, user, n],
            )
            .unwrap();
        };
        ins(h, "sshd", "failed", "203.0.113.5", "root", 4);
        ins(h, "sshd", "invalid-user", "203.0.113.5", "<x>", 2);
        ins(h + 1, "sshd", "failed", "203.0.113.6", "root", 3);
        ins(h + 1, "postfix", "auth", "2001:db8::7", "", 5);
        ins(h - 100, "sshd", "failed", "192.0.2.1", "old", 50); // before the period
        let ban = |t: Millis, jail: &str, addr: &str, rule: Option<&str>| {
            c.execute(
                "INSERT INTO bans (time, jail, addr, rule, failures, length, manual)
                 VALUES (?1,?2,?3,?4,5,600000,0)",
                params![t, jail, addr, rule],
            )
            .unwrap();
        };
        let t = h * 3_600_000;
        ban(t + 10, "sshd", "203.0.113.5", Some("failed"));
        ban(
            t + 3_600_000 + 10,
            "sshd",
            "203.0.113.5",
            Some("invalid-user"),
        );
        ban(t + 3_600_000 + 20, "postfix", "2001:db8::7", None);
        let r = Report::build(&c, t - 3_600_000, t + 2 * 3_600_000, None, 10).unwrap();
        assert_eq!(
            r.totals,
            Totals {
                failures: 14,
                bans: 3,
                addresses: 3,
                users: 2
            }
        );
        assert_eq!(r.top_addresses[0].name, "203.0.113.5");
        assert_eq!(
            (r.top_addresses[0].failures, r.top_addresses[0].bans),
            (6, 2)
        );
        assert_eq!(r.top_users[0].name, "root");
        assert_eq!((r.top_users[0].failures, r.top_users[0].addresses), (7, 2));
        assert_eq!(r.bans_per_jail[0].name, "sshd");
        assert_eq!(r.bans_per_jail[0].bans, 2);
        // 203.0.113.5 and .6 (192.0.2.1 failed before the period)
        assert_eq!(r.bans_per_jail[0].addresses, 2);
        let rules: Vec<(String, String, u64)> = r
            .bans_per_rule
            .iter()
            .map(|x| (x.jail.clone(), x.rule.clone(), x.bans))
            .collect();
        assert!(rules.contains(&("postfix".into(), "unknown".into(), 1)));
        assert!(rules.contains(&("sshd".into(), "invalid-user".into(), 1)));
        assert_eq!(r.timeline_unit, "hour");
        let tl: Vec<(u64, u64)> = r.timeline.iter().map(|p| (p.bans, p.failures)).collect();
        assert_eq!(tl, [(0, 0), (1, 6), (2, 8), (0, 0)]);
        assert_eq!(r.repeat_offenders.len(), 1);
        assert_eq!(r.repeat_offenders[0].addr, "203.0.113.5");
        assert_eq!(r.top_v4_24[0].name, "203.0.113.0/24");
        assert_eq!((r.top_v4_24[0].failures, r.top_v4_24[0].addresses), (9, 2));
        assert_eq!(r.top_v6_64[0].name, "2001:db8::/64");
        // one jail
        let r = Report::build(&c, t - 3_600_000, t + 2 * 3_600_000, Some("postfix"), 10).unwrap();
        assert_eq!((r.totals.failures, r.totals.bans), (5, 1));
        // a period starting inside an hour starts at that hour, for the failures kept by the
        // hour and for the bans alike, and says so
        let r = Report::build(&c, t + 1000, t + 2 * 3_600_000, None, 10).unwrap();
        assert_eq!(r.since, rfc3339(t));
        assert_eq!((r.totals.failures, r.totals.bans), (14, 3));
        // days over a week
        let r = Report::build(&c, t - 7 * 86_400_000, t + 2 * 3_600_000, None, 10).unwrap();
        assert_eq!(r.timeline_unit, "day");
        assert_eq!(r.timeline.iter().map(|p| p.bans).sum::<u64>(), 3);
        // years: per week, the bans at the end still counted
        let r = Report::build(&c, t - 3000 * 86_400_000, t + 2 * 3_600_000, None, 10).unwrap();
        assert_eq!(r.timeline_unit, "week");
        assert_eq!(r.timeline.iter().map(|p| p.bans).sum::<u64>(), 3);
    }
}

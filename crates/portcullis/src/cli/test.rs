//! `portcullis test --filter NAME [--json] [FILE]`: try a filter on a log, like
//! blacklist.py's test mode and fail2ban-regex.
//!
//! Summary mode counts lines, matches per rule, top hosts and top users. It splits the
//! input across threads (each with its own scratch) because matching is independent per
//! line. JSON mode prints exactly one object per input line, in input order.

use std::collections::HashMap;
use std::io::Write;
use std::net::IpAddr;
use std::path::Path;

use anyhow::Result;
use portcullis_core::filter::{Filter, MatchSet, Mode};
use portcullis_core::time::{rfc3339, TimeContext};

use super::input;

/// Counts gathered over (part of) the input.
#[derive(Default)]
struct Stats {
    lines: u64,
    matched: u64,
    per_rule: Vec<u64>,
    hosts: HashMap<IpAddr, u64>,
    users: HashMap<Box<[u8]>, u64>,
}

impl Stats {
    fn merge(&mut self, o: Stats) {
        self.lines += o.lines;
        self.matched += o.matched;
        if self.per_rule.len() < o.per_rule.len() {
            self.per_rule.resize(o.per_rule.len(), 0);
        }
        for (a, b) in self.per_rule.iter_mut().zip(o.per_rule) {
            *a += b;
        }
        for (h, n) in o.hosts {
            *self.hosts.entry(h).or_default() += n;
        }
        for (u, n) in o.users {
            *self.users.entry(u).or_default() += n;
        }
    }
}

/// Runs the test command; returns the exit code.
pub fn run(filter: &str, json: bool, file: Option<&Path>, top: usize) -> Result<i32> {
    let f = match crate::config::resolve_filter(filter, &[]) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("portcullis: {e}");
            return Ok(2);
        }
    };
    let ctx = super::time_context();
    let set = MatchSet::new(vec![f], Mode::Aggressive);
    if json {
        let stdout = std::io::stdout();
        let mut out = std::io::BufWriter::with_capacity(1 << 16, stdout.lock());
        let mut scratch = set.scratch();
        let mut res = Ok(());
        input::for_each_line(input::open(file)?, |line| {
            if res.is_ok() {
                res = write_json(&mut out, &set, &mut scratch, line, &ctx);
            }
        })?;
        res?;
        out.flush()?;
        return Ok(0);
    }
    let stats = match file {
        Some(p) if p.as_os_str() != "-" => summarise_file(&set, p, &ctx)?,
        _ => {
            let mut s = Stats::default();
            let mut scratch = set.scratch();
            input::for_each_line(input::open(None)?, |l| {
                count(&set, &mut scratch, &mut s, l, &ctx)
            })?;
            s
        }
    };
    print_summary(&set, &stats, top);
    Ok(0)
}

fn count(
    set: &MatchSet,
    scratch: &mut portcullis_core::filter::Scratch,
    s: &mut Stats,
    line: &[u8],
    ctx: &TimeContext,
) {
    s.lines += 1;
    if let Some(h) = set.match_line(line, ctx, scratch) {
        s.matched += 1;
        if s.per_rule.len() <= h.rule {
            s.per_rule.resize(h.rule + 1, 0);
        }
        s.per_rule[h.rule] += 1;
        *s.hosts.entry(h.addr).or_default() += 1;
        if let Some(u) = h.user {
            match s.users.get_mut(u) {
                Some(n) => *n += 1,
                None => {
                    s.users.insert(u.into(), 1);
                }
            }
        }
    }
}

/// Reads the whole file and splits it at line boundaries across the available cores.
fn summarise_file(set: &MatchSet, path: &Path, ctx: &TimeContext) -> Result<Stats> {
    use anyhow::Context;
    let data = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 8);
    let mut bounds = vec![0usize];
    for i in 1..threads {
        let guess = data.len() * i / threads;
        let cut = memchr::memchr(b'\n', &data[guess.max(*bounds.last().unwrap())..])
            .map_or(data.len(), |p| guess.max(*bounds.last().unwrap()) + p + 1);
        bounds.push(cut);
    }
    bounds.push(data.len());
    let mut total = Stats::default();
    std::thread::scope(|sc| {
        let handles: Vec<_> = bounds
            .windows(2)
            .map(|w| {
                let chunk = &data[w[0]..w[1]];
                sc.spawn(move || {
                    let mut s = Stats::default();
                    let mut scratch = set.scratch();
                    let mut start = 0;
                    for end in memchr::memchr_iter(b'\n', chunk) {
                        count(set, &mut scratch, &mut s, &chunk[start..end], ctx);
                        start = end + 1;
                    }
                    if start < chunk.len() {
                        count(set, &mut scratch, &mut s, &chunk[start..], ctx);
                    }
                    s
                })
            })
            .collect();
        for h in handles {
            total.merge(h.join().expect("worker thread"));
        }
    });
    Ok(total)
}

fn write_json(
    out: &mut impl Write,
    set: &MatchSet,
    scratch: &mut portcullis_core::filter::Scratch,
    line: &[u8],
    ctx: &TimeContext,
) -> Result<()> {
    match set.match_line(line, ctx, scratch) {
        None => out.write_all(
            b"{\"matched\":false,\"host\":null,\"user\":null,\"time\":null,\"rule\":null}\n",
        )?,
        Some(h) => {
            let rule = &set.filters()[h.filter].rules()[h.rule].id;
            let user = h.user.map(|u| String::from_utf8_lossy(u).into_owned());
            let v = serde_json::json!({
                "matched": true,
                "host": h.addr.to_string(),
                "user": user,
                "time": h.time.map(rfc3339),
                "rule": rule,
            });
            serde_json::to_writer(&mut *out, &v)?;
            out.write_all(b"\n")?;
        }
    }
    Ok(())
}

fn top_n<K: Clone, F: Fn(&K) -> String>(
    m: &HashMap<K, u64>,
    n: usize,
    show: F,
) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = m.iter().map(|(k, c)| (show(k), *c)).collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    v.truncate(n);
    v
}

fn print_summary(set: &MatchSet, s: &Stats, top: usize) {
    let f: &Filter = &set.filters()[0];
    let mut o = String::new();
    o.push_str(&format!("filter {}: {}\n", f.name, f.description));
    o.push_str(&format!(
        "lines read: {}\nlines matched: {}\nlines not matched: {}\n",
        s.lines,
        s.matched,
        s.lines - s.matched
    ));
    o.push_str("\nmatches per rule:\n");
    for (i, r) in f.rules().iter().enumerate() {
        let n = s.per_rule.get(i).copied().unwrap_or(0);
        o.push_str(&format!(
            "  {n:>10}  {} ({:?}, weight {})\n",
            r.id, r.class, r.weight
        ));
    }
    o.push_str(&format!(
        "\ndistinct hosts: {}, top {top}:\n",
        s.hosts.len()
    ));
    for (h, n) in top_n(&s.hosts, top, |h| h.to_string()) {
        o.push_str(&format!("  {n:>10}  {h}\n"));
    }
    o.push_str(&format!(
        "\ndistinct users: {}, top {top}:\n",
        s.users.len()
    ));
    for (u, n) in top_n(&s.users, top, |u| String::from_utf8_lossy(u).into_owned()) {
        o.push_str(&format!("  {n:>10}  {u}\n"));
    }
    print!("{o}");
}

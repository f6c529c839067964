//! `portcullis replay [--config FILE] [--jail NAME]… [--json] LOG…`: the dry run.
//!
//! Feeds each line to the jails exactly as the daemon does ([`portcullis_core::jail::Jail`]),
//! using the log's own timestamps as the clock, and prints every decision.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc};

use anyhow::Result;
use portcullis_core::decision::{BanReason, Decision, Millis, FOREVER};
use portcullis_core::jail::{prepare_parsed, Jail, LineAt, Prepared, Step};
use portcullis_core::policy::{self, History};
use portcullis_core::time::rfc3339;

use super::input;
use crate::config::{self, Config};
use crate::sources::line;

/// The filter of Portcullis' own ban log.
const RECIDIVE: &str = "recidive";

/// A chunk of lines and, when workers share it by session, each line's note and where its
/// newlines are (found once, by the reading thread, not again by each worker); and the
/// numbers of its lines no jail reads (see `input::Held`), in order.
type Noted = (Vec<u8>, Vec<input::LineNote>, Vec<usize>, Vec<u32>);

/// Runs the replay; returns the exit code.
pub fn run(
    config_path: Option<&Path>,
    jails: &[String],
    json: bool,
    logs: &[PathBuf],
) -> Result<i32> {
    // as `run` and `check-config`: --config, else /etc/portcullis/portcullis.toml when it
    // exists, else the built-in default
    let cfg = Config::load(config_path)?;
    config::check_jail_names(&cfg, jails)?;
    let ctx = super::time_context_for_logs();
    let selected: Vec<&config::JailConfig> = cfg
        .jails
        .iter()
        .filter(|j| jails.is_empty() || jails.contains(&j.name))
        .collect();
    let mut running: Vec<Jail> = selected
        .iter()
        .map(|j| crate::jails::build_jail(&cfg, j, &[]))
        .collect();
    let shared: Vec<_> = running.iter().map(Jail::shared).collect();
    // the jails that read Portcullis' own ban log (the `recidive` filter): the daemon's
    // bans come to them through its log, which a replay of the services' logs has not, so
    // each ban made here is fed to them as the line the daemon would write (review 40: a
    // replay never showed a recidive ban)
    let reads_own_log: Vec<bool> = selected
        .iter()
        .map(|j| j.filter_names.iter().any(|f| f == RECIDIVE))
        .collect();
    let mut own_scratch: Vec<_> = shared.iter().map(|(set, _)| set.scratch()).collect();
    let mut own_seq = 0u64;
    // (ban lines of Portcullis' own log read from the input, and bans fed: both at once
    // count twice, said at the end)
    let mut own_read = 0u64;
    let mut own_fed = 0u64;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 16, stdout.lock());
    let mut last: Millis = i64::MIN;
    // a line dated after this cannot be of a log written so far (a wrong year, a clock far
    // ahead): its time would move the replay's clock, and every ban after it would end at
    // once; it counts at the time of the line before it (the daemon counts it at now)
    let future = ctx.now.saturating_add(2 * 86_400_000);
    let mut future_lines = 0u64;
    let mut bans = 0u64;
    // every jail's bans, for escalation (the daemon loads it from its store)
    let mut history = History::new();
    let mut out_err: std::io::Result<()> = Ok(());
    // the deny list: banned from the start, permanently
    for c in &cfg.deny.cidrs {
        let d = Decision::Ban {
            addr: *c,
            at: ctx.now,
            until: FOREVER,
            failures: 0,
            reason: BanReason::Deny,
        };
        if out_err.is_ok() {
            out_err = print(&mut out, &d, crate::config::DENY_JAIL, json);
        }
    }
    let mut lines = 0u64;
    let mut err: std::io::Result<()> = out_err;
    let sources: Vec<Option<&Path>> = if logs.is_empty() {
        vec![None]
    } else {
        logs.iter().map(|p| Some(p.as_path())).collect()
    };
    // a progress bar on a terminal for large logs (nothing when piped or --json); cleared
    // when `_bar` goes out of scope
    let _bar = super::progress::Bar::start(
        super::progress::total_size(logs.iter().map(PathBuf::as_path)),
        json,
    );
    // Matching is independent per line, counting is not: worker threads match chunks of
    // lines (`prepare`), and this thread commits their results in input order, exactly as
    // `Jail::process` would line by line. A filter that ties lines together (`correlate`)
    // needs the lines of each session in order: then every worker reads every chunk and
    // matches the lines of its share of the sessions (`session_shard`), and the parts of a
    // chunk are merged back into line order before they are committed.
    let sharded = shared.iter().any(|(set, _)| set.correlates());
    let workers = super::match_threads(4);
    let parts = if sharded { workers } else { 1 };
    let mut job_txs = Vec::new();
    let mut job_rxs = Vec::new();
    for _ in 0..workers {
        let (tx, rx) = mpsc::sync_channel::<(u64, Arc<Noted>)>(2);
        job_txs.push(tx);
        job_rxs.push(rx);
    }
    // lines longer than the daemon's limit are cut as the daemon cuts them
    let max_line = cfg.max_line;
    let cut_lines = std::sync::atomic::AtomicU64::new(0);
    type Found = Vec<(u32, usize, Prepared)>;
    let (res_tx, res_rx) = mpsc::sync_channel::<(u64, u64, Found)>(workers * 2);
    // the chunks that start a file: the line before is not the same file's (a syslog
    // daemon's `last message repeated N times` counts only the line before it in its file)
    let file_starts = std::sync::Mutex::new(std::collections::BTreeSet::new());
    let file_starts = &file_starts;
    let read_result = std::thread::scope(|sc| -> Result<()> {
        for (w, job_rx) in job_rxs.into_iter().enumerate() {
            let (res_tx, shared, ctx) = (res_tx.clone(), &shared, &ctx);
            let cut_lines = &cut_lines;
            sc.spawn(move || {
                let mut scratch: Vec<_> = shared.iter().map(|(set, _)| set.scratch()).collect();
                // (the last chunk's number of matches: a chunk's list seldom grows)
                let mut room = 0;
                for (idx, noted) in job_rx {
                    let (chunk, notes, ends, unread) = &*noted;
                    let mut found = Vec::with_capacity(room);
                    let mut n = 0u32;
                    let mut each = |l: &[u8]| {
                        let at = n;
                        n += 1;
                        // (shared by session: the reader split the line and knows whose
                        // it is; most lines are another worker's and cost nothing more)
                        let note = notes.get(at as usize);
                        if note.is_some_and(|note| note.shard != w as u32) {
                            return;
                        }
                        // a container runtime's partial record, or the record that ends
                        // its line: read by no jail (the reader found them, in order)
                        if unread.binary_search(&at).is_ok() {
                            return;
                        }
                        let (line, cut) = line::prepare(l, max_line);
                        let parsed = match note {
                            Some(note) => note.parsed(&line),
                            None => portcullis_core::prefix::parse(&line),
                        };
                        if cut {
                            cut_lines.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                        for (ji, (set, settings)) in shared.iter().enumerate() {
                            let p = prepare_parsed(set, settings, &parsed, ctx, &mut scratch[ji]);
                            if p != Prepared::NoMatch {
                                found.push((at, ji, p));
                            }
                        }
                    };
                    if sharded {
                        input::split_at_ends(chunk, ends, |_, l| each(l));
                    } else {
                        input::split_chunk(chunk, each);
                    }
                    room = found.len() + found.len() / 8;
                    if res_tx.send((idx, u64::from(n), found)).is_err() {
                        return;
                    }
                }
            });
        }
        drop(res_tx);
        let reader = sc.spawn(move || -> Result<()> {
            let mut idx = 0u64;
            for src in sources {
                file_starts.lock().expect("file starts").insert(idx);
                // (a container runtime's partial records, per file: see `input::Held`)
                let mut held = input::Held::default();
                input::for_each_chunk(input::open(src)?, 1 << 20, |chunk| {
                    // shared by session: each line split once, here, for every worker
                    let mut notes = Vec::new();
                    let mut ends = Vec::new();
                    let mut unread = Vec::new();
                    if sharded {
                        ends.extend(memchr::memchr_iter(b'\n', &chunk));
                        input::split_at_ends(&chunk, &ends, |k, l| {
                            let note = input::LineNote::of(l, max_line, workers, true);
                            if held.unread(note.container) {
                                unread.push(k as u32);
                            }
                            notes.push(note);
                        });
                    } else if input::may_hold_container_records(&chunk) {
                        let mut k = 0u32;
                        input::split_chunk(&chunk, |l| {
                            let (line, _) = line::prepare(l, max_line);
                            if held.unread(portcullis_core::prefix::container_record(&line)) {
                                unread.push(k);
                            }
                            k += 1;
                        });
                    }
                    let chunk = Arc::new((chunk, notes, ends, unread));
                    let ok = if sharded {
                        job_txs
                            .iter()
                            .all(|tx| tx.send((idx, chunk.clone())).is_ok())
                    } else {
                        job_txs[(idx % job_txs.len() as u64) as usize]
                            .send((idx, chunk))
                            .is_ok()
                    };
                    idx += 1;
                    ok
                })?;
            }
            Ok(())
        });
        // chunk -> (parts received, lines, each part's matches)
        let mut pending: BTreeMap<u64, (usize, u64, Vec<Found>)> = BTreeMap::new();
        let mut next = 0u64;
        // the number of the next chunk's first line, counting one line more at each file's
        // start (see `file_starts`), for `Jail::commit_at`: the jails see only the lines
        // that matched, and know a line between two by the gap in their numbers
        let mut seq_base = 0u64;
        // each file its own source (2, 3, ...; 1 is the feed of the replay's own bans): a
        // container runtime's partial record at the end of one file holds back no record of
        // the next (see `LineAt::stream`)
        let mut source = 1u64;
        for (idx, n, found) in res_rx {
            let e = pending.entry(idx).or_insert((0, n, Vec::new()));
            e.0 += 1;
            e.2.push(found);
            while pending.get(&next).is_some_and(|e| e.0 == parts) {
                let (_, n, found) = pending.remove(&next).expect("complete chunk");
                if file_starts.lock().expect("file starts").remove(&next) {
                    seq_base += 1;
                    source += 1;
                }
                let base = seq_base;
                seq_base += n;
                next += 1;
                lines += n;
                for (at, ji, mut p) in in_line_order(found) {
                    if let Prepared::Failure { time, .. } | Prepared::Repeat { time, .. } = &mut p {
                        if time.is_some_and(|t| t > future) {
                            *time = None;
                            future_lines += 1;
                        }
                    }
                    // bans that ran out before this line's time end first, as the daemon's
                    // timer ends them: a failure just after a ban's end counts
                    if let Prepared::Failure { time: Some(t), .. }
                    | Prepared::Repeat { time: Some(t), .. } = &p
                    {
                        let t = (*t).max(last);
                        for j in running.iter_mut() {
                            if j.tracker().next_expiry().is_some_and(|e| e <= t) {
                                for d in j.tracker_mut().expire(t) {
                                    if err.is_ok() {
                                        err = print(&mut out, &d, j.name(), json);
                                    }
                                }
                            }
                        }
                    }
                    if reads_own_log[ji] && matches!(p, Prepared::Failure { .. }) {
                        own_read += 1;
                    }
                    let mut made: Vec<Decision> = Vec::new();
                    let j = &mut running[ji];
                    let fallback = if last == i64::MIN { ctx.now } else { last };
                    if let Step::Failure {
                        failure, decision, ..
                    } = j.commit_at(
                        LineAt {
                            source,
                            seq: base + u64::from(at),
                            // (container records the reader already dealt with)
                            stream: 0,
                        },
                        p,
                        None,
                        fallback,
                    ) {
                        last = last.max(failure.time);
                        if let Some(d) = decision {
                            let s = carry_out(
                                j,
                                &mut history,
                                d,
                                failure.addr,
                                &mut out,
                                json,
                                &mut err,
                            );
                            made.extend(
                                s.into_iter().filter(|d| matches!(d, Decision::Ban { .. })),
                            );
                            bans += made.len() as u64;
                            if reads_own_log[ji] {
                                made.clear();
                            }
                        }
                    }
                    // each ban, as the daemon logs it, to the jails that read that log
                    let banner = if made.is_empty() {
                        String::new()
                    } else {
                        running[ji].name().to_string()
                    };
                    for d in made {
                        let Some(ban) = crate::events::Event::of_ban(&banner, &d) else {
                            continue;
                        };
                        let Decision::Ban { at, .. } = d else {
                            continue;
                        };
                        let line = ban.to_string();
                        let parsed = portcullis_core::prefix::Parsed {
                            stamp: None,
                            host: None,
                            program: Some(b"portcullis"),
                            pid: 0,
                            message: line.as_bytes(),
                            repeat: 1,
                        };
                        for r in (0..running.len()).filter(|&r| reads_own_log[r]) {
                            let (set, settings) = &shared[r];
                            let p =
                                prepare_parsed(set, settings, &parsed, &ctx, &mut own_scratch[r]);
                            if p == Prepared::NoMatch {
                                continue;
                            }
                            // (two apart: never "the line before" of another)
                            own_seq += 2;
                            own_fed += 1;
                            let j = &mut running[r];
                            let Step::Failure {
                                failure,
                                decision: Some(d),
                                ..
                            } = j.commit_at(
                                LineAt {
                                    source: 1,
                                    seq: own_seq,
                                    stream: 0,
                                },
                                p,
                                None,
                                at,
                            )
                            else {
                                continue;
                            };
                            let s = carry_out(
                                j,
                                &mut history,
                                d,
                                failure.addr,
                                &mut out,
                                json,
                                &mut err,
                            );
                            bans += s
                                .iter()
                                .filter(|d| matches!(d, Decision::Ban { .. }))
                                .count() as u64;
                        }
                    }
                    // bans that ran out by this line's time
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
            }
        }
        reader.join().expect("reader thread")
    });
    read_result?;
    err?;
    out.flush()?;
    let active: usize = running.iter().map(|j| j.tracker().stats().banned).sum();
    eprintln!("replay: {}", summary(lines, bans, active as u64));
    if future_lines > 0 {
        eprintln!(
            "replay: {future_lines} matched lines dated more than 2 days after now counted at the time of the line before them (a wrong year or a clock far ahead)"
        );
    }
    let cut = cut_lines.into_inner();
    if cut > 0 {
        let head = line::head_len(max_line);
        eprintln!(
            "replay: {cut} lines longer than {max_line} bytes matched on their first {head} and last {} bytes, as the daemon does (max_line)",
            max_line - head
        );
    }
    if own_read > 0 && own_fed > 0 {
        eprintln!(
            "replay: {own_read} ban lines of Portcullis' own log were read besides the {own_fed} bans this replay made and fed to the jails that read that log (the recidive filter): a ban in both counts twice; replay the services' logs alone, or Portcullis' log alone"
        );
    }
    for j in &running {
        let st = j.tracker().stats();
        if st.evicted > 0 {
            eprintln!("replay: jail {}: tracking cap reached, {} addresses evicted (a flood of many addresses)", j.name(), st.evicted);
        }
    }
    Ok(0)
}

/// The ban policy's sentence of jail `j`'s decision `d` for the failure of `offender`
/// (escalation, subnet bans, narrowing), its notes said and its decisions printed; returns
/// them. The replay's "random" jitter is a hash of the ban, so that a replay is
/// reproducible.
fn carry_out(
    j: &mut Jail,
    history: &mut History,
    d: Decision,
    offender: std::net::IpAddr,
    out: &mut impl Write,
    json: bool,
    err: &mut std::io::Result<()>,
) -> Vec<Decision> {
    let jitter = match &d {
        Decision::Ban { addr, at, .. } => mix(addr, *at),
        _ => 0,
    };
    let s = policy::sentence(j, history, d, offender, jitter);
    for n in &s.notes {
        eprintln!("replay: jail {}: {n}", j.name());
    }
    for d in &s.decisions {
        if err.is_ok() {
            *err = print(out, d, j.name(), json);
        }
    }
    s.decisions
}

/// The matches of a chunk's parts, each part in line order, merged into line order. A
/// line's matches all come from one part (the one worker that matched the line), so they
/// stay in their order there, the order of the jails.
fn in_line_order<T>(parts: Vec<Vec<(u32, usize, T)>>) -> impl Iterator<Item = (u32, usize, T)> {
    let mut parts: Vec<_> = parts
        .into_iter()
        .map(|p| p.into_iter().peekable())
        .collect();
    std::iter::from_fn(move || {
        let (_, k) = parts
            .iter_mut()
            .enumerate()
            .filter_map(|(k, p)| p.peek().map(|f| (f.0, k)))
            .min()?;
        parts[k].next()
    })
}

/// A stand-in for randomness in replay: splitmix64 of the ban's target and start.
fn mix(addr: &portcullis_core::ignore::Cidr, at: Millis) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    addr.hash(&mut h);
    at.hash(&mut h);
    let mut z = h.finish().wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn print(out: &mut impl Write, d: &Decision, jail: &str, json: bool) -> std::io::Result<()> {
    match (d, json) {
        (Decision::Ban { addr, at, until, failures, reason }, true) => {
            let (until_s, secs) = if *until == FOREVER {
                ("forever".to_string(), String::new())
            } else {
                (rfc3339(*until), format!(",\"seconds\":{}", (until - at) / 1000))
            };
            writeln!(
                out,
                "{{\"action\":\"ban\",\"host\":\"{addr}\",\"jail\":{},\"time\":\"{}\",\"until\":\"{until_s}\"{secs},\"permanent\":{},\"reason\":\"{reason}\",\"failures\":{failures}}}",
                serde_json::to_string(jail).unwrap_or_default(),
                rfc3339(*at),
                *until == FOREVER
            )
        }
        (Decision::Unban { addr, at }, true) => writeln!(
            out,
            "{{\"action\":\"unban\",\"host\":\"{addr}\",\"jail\":{},\"time\":\"{}\",\"failures\":null}}",
            serde_json::to_string(jail).unwrap_or_default(),
            rfc3339(*at)
        ),
        (Decision::Ban { addr, at, until, failures, reason }, false) => writeln!(
            out,
            "{} ban   {addr} jail={jail} failures={failures} for={} reason={reason}",
            rfc3339(*at),
            if *until == FOREVER {
                "forever".to_string()
            } else {
                portcullis_core::duration::format(until - at)
            }
        ),
        (Decision::Unban { addr, at }, false) => writeln!(out, "{} unban {addr} jail={jail}", rfc3339(*at)),
    }
}

/// The last line of a replay: `1 line, 1 ban, 0 still banned at the end of the log`.
fn summary(lines: u64, bans: u64, active: u64) -> String {
    let s = |n: u64| if n == 1 { "" } else { "s" };
    format!(
        "{lines} line{}, {bans} ban{}, {active} still banned at the end of the log",
        s(lines),
        s(bans)
    )
}

#[cfg(test)]
mod tests {
    use super::{in_line_order, summary};

    #[test]
    fn the_summary_counts_in_the_singular_for_one() {
        assert_eq!(
            summary(1, 1, 0),
            "1 line, 1 ban, 0 still banned at the end of the log"
        );
        assert_eq!(
            summary(2, 0, 1),
            "2 lines, 0 bans, 1 still banned at the end of the log"
        );
    }

    #[test]
    fn parts_merge_into_line_order_keeping_a_lines_jails_in_order() {
        let parts = vec![
            vec![(0, 0, "a0"), (0, 1, "a1"), (3, 0, "d0"), (7, 2, "h2")],
            vec![(1, 1, "b1"), (2, 0, "c0"), (2, 1, "c1")],
            vec![],
            vec![(4, 0, "e0"), (4, 1, "e1"), (4, 2, "e2")],
        ];
        let got: Vec<_> = in_line_order(parts).map(|f| f.2).collect();
        assert_eq!(
            got,
            ["a0", "a1", "b1", "c0", "c1", "d0", "e0", "e1", "e2", "h2"]
        );
        assert_eq!(in_line_order::<()>(Vec::new()).count(), 0);
    }
}

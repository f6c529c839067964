//! The report as text (aligned columns, like `uniq -c`), JSON, or a self-contained HTML
//! page (inline CSS and SVG charts; no script, no external resource).
//!
//! User names are attacker-controlled: the stats writer escapes their control characters,
//! and the HTML page escapes every string it prints (in tables and in SVG text alike).

use std::fmt::Write;

use super::query::{Counted, Report};

/// The text form.
pub fn text(r: &Report) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "Portcullis report, {} to {}, {}",
        r.since,
        r.generated,
        r.jail
            .as_deref()
            .map_or("all jails".to_string(), |j| format!("jail {j}"))
    );
    let t = &r.totals;
    for (n, what) in [
        (t.failures, "failures"),
        (t.bans, "bans"),
        (t.addresses, "addresses"),
        (t.users, "user names"),
    ] {
        let _ = writeln!(o, "{n:>7} {what}");
    }
    let section = |o: &mut String, title: &str, head: &str, rows: Vec<String>| {
        let _ = writeln!(o, "\n{title}");
        if rows.is_empty() {
            let _ = writeln!(o, "      - (none)");
            return;
        }
        let _ = writeln!(o, "{head}");
        for r in rows {
            let _ = writeln!(o, "{r}");
        }
    };
    let counted = |v: &[Counted]| -> Vec<String> {
        v.iter()
            .map(|c| format!("{:>7} {:>5} {}", c.failures, c.bans, c.name))
            .collect()
    };
    section(
        &mut o,
        "Top addresses",
        "failures  bans address",
        counted(&r.top_addresses),
    );
    section(
        &mut o,
        "Top user names tried",
        "failures addrs user",
        r.top_users
            .iter()
            .map(|c| format!("{:>7} {:>5} {}", c.failures, c.addresses, c.name))
            .collect(),
    );
    section(
        &mut o,
        "Bans per jail",
        "   bans failures jail",
        r.bans_per_jail
            .iter()
            .map(|c| format!("{:>7} {:>8} {}", c.bans, c.failures, c.name))
            .collect(),
    );
    section(
        &mut o,
        "Bans per rule",
        "   bans failures jail/rule",
        r.bans_per_rule
            .iter()
            .map(|c| format!("{:>7} {:>8} {}/{}", c.bans, c.failures, c.jail, c.rule))
            .collect(),
    );
    section(
        &mut o,
        &format!("Timeline (per {}; quiet ones left out)", r.timeline_unit),
        "   bans failures start",
        r.timeline
            .iter()
            .filter(|p| p.bans > 0 || p.failures > 0)
            .map(|p| format!("{:>7} {:>8} {}", p.bans, p.failures, p.start))
            .collect(),
    );
    section(
        &mut o,
        "Repeat offenders",
        "   bans address (jails, first - last ban)",
        r.repeat_offenders
            .iter()
            .map(|x| {
                format!(
                    "{:>7} {} ({}, {} - {})",
                    x.bans,
                    x.addr,
                    x.jails.join(","),
                    x.first,
                    x.last
                )
            })
            .collect(),
    );
    section(
        &mut o,
        "Top /24 prefixes",
        "failures  bans addrs prefix",
        prefixes(&r.top_v4_24),
    );
    section(
        &mut o,
        "Top /64 prefixes",
        "failures  bans addrs prefix",
        prefixes(&r.top_v6_64),
    );
    o
}

fn prefixes(v: &[Counted]) -> Vec<String> {
    v.iter()
        .map(|c| {
            format!(
                "{:>7} {:>5} {:>5} {}",
                c.failures, c.bans, c.addresses, c.name
            )
        })
        .collect()
}

/// The JSON form (one object, pretty-printed).
pub fn json(r: &Report) -> String {
    let mut s = serde_json::to_string_pretty(r).unwrap_or_else(|_| "{}".into());
    s.push('\n');
    s
}

/// `s` made safe as HTML text and attribute value (also inside SVG).
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

const CSS: &str = "body{font-family:sans-serif;margin:2em;color:#222;max-width:60em}\
h1{font-size:1.4em}h2{font-size:1.1em;margin-top:1.6em;border-bottom:1px solid #ccc}\
table{border-collapse:collapse}td,th{padding:.15em .8em;text-align:left;\
font-family:monospace}td.n,th.n{text-align:right}tr:nth-child(even){background:#f4f4f4}\
svg text{font-family:monospace;font-size:11px}.none{color:#888}";

fn table(o: &mut String, id: &str, head: &[&str], rows: Vec<Vec<String>>) {
    if rows.is_empty() {
        let _ = writeln!(o, "<p class=\"none\" id=\"{id}\">none</p>");
        return;
    }
    let _ = write!(o, "<table id=\"{id}\"><tr>");
    for h in head {
        let class = if h.starts_with('#') {
            " class=\"n\""
        } else {
            ""
        };
        let _ = write!(o, "<th{class}>{}</th>", esc(h.trim_start_matches('#')));
    }
    o.push_str("</tr>\n");
    for r in rows {
        o.push_str("<tr>");
        for (h, c) in head.iter().zip(r) {
            let class = if h.starts_with('#') {
                " class=\"n\""
            } else {
                ""
            };
            let _ = write!(o, "<td{class}>{}</td>", esc(&c));
        }
        o.push_str("</tr>\n");
    }
    o.push_str("</table>\n");
}

/// A vertical bar chart of the timeline's bans (bars) and failures (a line).
fn timeline_svg(o: &mut String, r: &Report) {
    let (w, h, left, bottom) = (760.0f64, 200.0f64, 40.0f64, 30.0f64);
    let n = r.timeline.len().max(1) as f64;
    let max_b = r.timeline.iter().map(|p| p.bans).max().unwrap_or(0).max(1) as f64;
    let max_f = r
        .timeline
        .iter()
        .map(|p| p.failures)
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let bw = (w - left) / n;
    let ph = h - bottom - 24.0;
    let _ = writeln!(
        o,
        "<svg id=\"timeline\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" \
         viewBox=\"0 0 {w} {h}\" role=\"img\" aria-label=\"bans per {unit}\">\
         <rect x=\"0\" y=\"0\" width=\"{w}\" height=\"{h}\" fill=\"#fff\"/>\
         <text x=\"2\" y=\"12\">{mb} bans</text>\
         <line x1=\"{left}\" y1=\"{base}\" x2=\"{w}\" y2=\"{base}\" stroke=\"#999\"/>",
        unit = esc(&r.timeline_unit),
        mb = max_b as u64,
        base = h - bottom,
    );
    let mut line = String::new();
    for (i, p) in r.timeline.iter().enumerate() {
        let x = left + i as f64 * bw;
        let bh = p.bans as f64 / max_b * ph;
        let _ = writeln!(
            o,
            "<rect class=\"bar\" data-bans=\"{b}\" data-failures=\"{f}\" x=\"{x:.1}\" y=\"{y:.1}\" \
             width=\"{bw:.1}\" height=\"{bh:.1}\" fill=\"#c0392b\" stroke=\"#fff\" \
             stroke-width=\"0.5\"><title>{t}: {b} bans, {f} failures</title></rect>",
            b = p.bans,
            f = p.failures,
            y = h - bottom - bh,
            bw = bw.max(1.0),
            t = esc(&p.start),
        );
        let fy = h - bottom - p.failures as f64 / max_f * ph;
        let _ = write!(line, "{:.1},{fy:.1} ", x + bw / 2.0);
    }
    let _ = writeln!(
        o,
        "<polyline points=\"{}\" fill=\"none\" stroke=\"#2c7fb8\" stroke-width=\"1.5\"/>",
        line.trim_end()
    );
    // first and last labels
    if let (Some(a), Some(b)) = (r.timeline.first(), r.timeline.last()) {
        let _ = writeln!(
            o,
            "<text x=\"{left}\" y=\"{y}\">{}</text><text x=\"{w}\" y=\"{y}\" \
             text-anchor=\"end\">{}</text>",
            esc(&a.start),
            esc(&b.start),
            y = h - 10.0
        );
    }
    let _ = writeln!(
        o,
        "<text x=\"{w}\" y=\"12\" text-anchor=\"end\" fill=\"#2c7fb8\">failures (line, max {})</text></svg>",
        max_f as u64
    );
}

/// A horizontal bar chart of counts, labelled with the (escaped) names.
fn bars_svg(o: &mut String, id: &str, v: &[(String, u64)]) {
    if v.is_empty() {
        return;
    }
    let (w, row, label) = (760.0f64, 18.0f64, 300.0f64);
    let h = row * v.len() as f64 + 4.0;
    let max = v.iter().map(|x| x.1).max().unwrap_or(1).max(1) as f64;
    let _ = writeln!(
        o,
        "<svg id=\"{id}\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" \
         viewBox=\"0 0 {w} {h}\" role=\"img\">"
    );
    for (i, (name, n)) in v.iter().enumerate() {
        let y = i as f64 * row + 2.0;
        let bw = (*n as f64 / max * (w - label - 60.0)).max(1.0);
        let shown: String = if name.chars().count() > 40 {
            name.chars().take(39).chain(std::iter::once('…')).collect()
        } else {
            name.clone()
        };
        let _ = writeln!(
            o,
            "<text x=\"{tx}\" y=\"{ty:.1}\" text-anchor=\"end\">{}</text>\
             <rect class=\"bar\" data-count=\"{n}\" x=\"{label}\" y=\"{y:.1}\" width=\"{bw:.1}\" \
             height=\"{bh:.1}\" fill=\"#e67e22\"><title>{}: {n}</title></rect>\
             <text x=\"{nx:.1}\" y=\"{ty:.1}\">{n}</text>",
            esc(&shown),
            esc(name),
            tx = label - 6.0,
            ty = y + row - 5.0,
            bh = row - 4.0,
            nx = label + bw + 4.0,
        );
    }
    o.push_str("</svg>\n");
}

fn counted_rows(v: &[Counted], prefix: bool) -> Vec<Vec<String>> {
    v.iter()
        .map(|c| {
            let mut r = vec![c.name.clone(), c.failures.to_string(), c.bans.to_string()];
            if prefix {
                r.push(c.addresses.to_string());
            }
            r
        })
        .collect()
}

/// The HTML form: one self-contained page.
pub fn html(r: &Report) -> String {
    let mut o = String::new();
    let scope = r
        .jail
        .as_deref()
        .map_or("all jails".to_string(), |j| format!("jail {j}"));
    let _ = writeln!(
        o,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; \
         style-src 'unsafe-inline'; img-src data:\">\
         <title>Portcullis report {}</title><style>{CSS}</style></head><body>",
        esc(&r.generated)
    );
    let _ = writeln!(
        o,
        "<h1>Portcullis report</h1><p>{} to {}, {}</p>",
        esc(&r.since),
        esc(&r.generated),
        esc(&scope)
    );
    let t = &r.totals;
    table(
        &mut o,
        "totals",
        &["what", "#count"],
        vec![
            vec!["failures".into(), t.failures.to_string()],
            vec!["bans".into(), t.bans.to_string()],
            vec!["addresses".into(), t.addresses.to_string()],
            vec!["user names".into(), t.users.to_string()],
        ],
    );
    let _ = writeln!(o, "<h2>Bans per {}</h2>", esc(&r.timeline_unit));
    timeline_svg(&mut o, r);
    o.push_str("<h2>Top addresses</h2>\n");
    bars_svg(
        &mut o,
        "addresses-chart",
        &r.top_addresses
            .iter()
            .map(|c| (c.name.clone(), c.failures))
            .collect::<Vec<_>>(),
    );
    table(
        &mut o,
        "top-addresses",
        &["address", "#failures", "#bans"],
        counted_rows(&r.top_addresses, false),
    );
    o.push_str("<h2>Top user names tried</h2>\n");
    bars_svg(
        &mut o,
        "users-chart",
        &r.top_users
            .iter()
            .map(|c| (c.name.clone(), c.failures))
            .collect::<Vec<_>>(),
    );
    table(
        &mut o,
        "top-users",
        &["user", "#failures", "#addresses"],
        r.top_users
            .iter()
            .map(|c| {
                vec![
                    c.name.clone(),
                    c.failures.to_string(),
                    c.addresses.to_string(),
                ]
            })
            .collect(),
    );
    o.push_str("<h2>Bans per jail</h2>\n");
    table(
        &mut o,
        "bans-per-jail",
        &["jail", "#bans", "#failures"],
        r.bans_per_jail
            .iter()
            .map(|c| vec![c.name.clone(), c.bans.to_string(), c.failures.to_string()])
            .collect(),
    );
    o.push_str("<h2>Bans per rule</h2>\n");
    table(
        &mut o,
        "bans-per-rule",
        &["jail", "rule", "#bans", "#failures"],
        r.bans_per_rule
            .iter()
            .map(|c| {
                vec![
                    c.jail.clone(),
                    c.rule.clone(),
                    c.bans.to_string(),
                    c.failures.to_string(),
                ]
            })
            .collect(),
    );
    o.push_str("<h2>Repeat offenders</h2>\n");
    table(
        &mut o,
        "repeat-offenders",
        &["address", "#bans", "jails", "first", "last"],
        r.repeat_offenders
            .iter()
            .map(|x| {
                vec![
                    x.addr.clone(),
                    x.bans.to_string(),
                    x.jails.join(", "),
                    x.first.clone(),
                    x.last.clone(),
                ]
            })
            .collect(),
    );
    o.push_str("<h2>Top /24 prefixes</h2>\n");
    table(
        &mut o,
        "top-v4-24",
        &["prefix", "#failures", "#bans", "#addresses"],
        counted_rows(&r.top_v4_24, true),
    );
    o.push_str("<h2>Top /64 prefixes</h2>\n");
    table(
        &mut o,
        "top-v6-64",
        &["prefix", "#failures", "#bans", "#addresses"],
        counted_rows(&r.top_v6_64, true),
    );
    o.push_str("</body></html>\n");
    o
}

#[cfg(test)]
mod tests {
    use super::super::query::{Point, Totals};
    use super::*;

    const HOSTILE: &str = "<script>alert(\"x\")</script>&'";

    fn report() -> Report {
        let c = |name: &str, failures, bans| Counted {
            name: name.into(),
            failures,
            bans,
            addresses: 1,
        };
        Report {
            generated: "2026-12-03T13:00:00Z".into(),
            since: "2026-12-03T11:00:00Z".into(),
            jail: None,
            totals: Totals {
                failures: 12,
                bans: 2,
                addresses: 2,
                users: 2,
            },
            top_addresses: vec![c("203.0.113.5", 10, 2), c("2001:db8::7", 2, 0)],
            top_users: vec![c(HOSTILE, 7, 0), c("root", 5, 0)],
            bans_per_jail: vec![c("sshd", 12, 2)],
            bans_per_rule: vec![],
            timeline_unit: "hour".into(),
            timeline: vec![
                Point {
                    start: "2026-12-03T11:00:00Z".into(),
                    bans: 0,
                    failures: 3,
                },
                Point {
                    start: "2026-12-03T12:00:00Z".into(),
                    bans: 2,
                    failures: 9,
                },
            ],
            repeat_offenders: vec![],
            top_v4_24: vec![c("203.0.113.0/24", 10, 2)],
            top_v6_64: vec![],
        }
    }

    #[test]
    fn text_columns_align() {
        let t = text(&report());
        assert!(t.contains("\n     12 failures\n"), "{t}");
        assert!(t.contains("\n     10     2 203.0.113.5\n"), "{t}");
        assert!(t.contains("\n      2     0 2001:db8::7\n"), "{t}");
        assert!(t.contains("\n      2       12 sshd\n"), "{t}");
        assert!(t.contains("Bans per rule\n      - (none)\n"), "{t}");
    }

    #[test]
    fn json_round_trips_the_numbers() {
        let v: serde_json::Value = serde_json::from_str(&json(&report())).unwrap();
        assert_eq!(v["totals"]["bans"], 2);
        assert_eq!(v["top_users"][0]["name"], HOSTILE);
        assert_eq!(v["timeline"][1]["bans"], 2);
    }

    #[test]
    fn html_escapes_hostile_names_and_is_self_contained() {
        let h = html(&report());
        assert!(!h.contains("<script"), "{h}");
        assert!(!h.contains(HOSTILE));
        assert!(h.contains("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&#39;"));
        // in the table and in the chart's text and title
        assert_eq!(h.matches("&lt;script&gt;").count(), 3, "{h}");
        for external in ["src=", "href=", "@import", "url("] {
            assert!(!h.contains(external), "{external}");
        }
        assert!(h.contains("<svg id=\"timeline\""));
        assert_eq!(h.matches("data-bans=").count(), 2);
    }
}

//! `portcullis report` against the real daemon and a real browser (issue 14).
//!
//! The daemon (`portcullis run`, null firewall, no namespace) follows a log the test writes:
//! failures of five addresses under two jails reading the same log, one user name hostile
//! (`<script>`, quotes, `&`). While it runs, `report --format json` reads `stats.db`
//! read-only and sees the bans; after it stops, the JSON, text and HTML reports carry the
//! exact numbers. The HTML page is opened in Debian's headless `chromium` (`--dump-dom`
//! and `--screenshot`): the numbers and the SVG timeline are in the DOM, the hostile user
//! name is text, not markup, and the page loads nothing from outside.
//!
//! Run: `cargo test -p portcullis --test report` (chromium must be installed: the test
//! fails, it does not skip, without it).

mod common;

use common::*;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const HOSTILE: &str = "<script>alert(\"x\")&'</script>";
const CHROMIUM: &str = "/usr/bin/chromium";

fn append(log: &Path, lines: &[String]) {
    let mut f = fs::OpenOptions::new().append(true).open(log).unwrap();
    for l in lines {
        f.write_all(l.as_bytes()).unwrap();
        f.write_all(b"\n").unwrap();
    }
}

fn config(dir: &Path) -> PathBuf {
    let state = dir.join("state");
    fs::create_dir_all(&state).unwrap();
    let log = dir.join("auth.log");
    fs::write(&log, "").unwrap();
    let path = dir.join("portcullis.toml");
    // (v6_prefix = 128: the report's per-address numbers; a /64 ban is reported as its
    // prefix, a row of its own)
    let jail = |name: &str, maxretry: u32| {
        format!(
            "[[jail]]\nname = \"{name}\"\nfilter = \"sshd\"\nlogs = [{:?}]\nmaxretry = {maxretry}\nv6_prefix = 128\n",
            log.display().to_string()
        )
    };
    fs::write(
        &path,
        format!(
            // (a `deny` entry: configuration, not a ban the report counts)
            "socket = {:?}\nstate_dir = {:?}\ndeny = [\"192.0.2.200\"]\n[firewall]\nbackend = \"null\"\n{}{}",
            dir.join("portcullis.sock").display().to_string(),
            state.display().to_string(),
            jail("sshd", 3),
            jail("ssh-slow", 5),
        ),
    )
    .unwrap();
    path
}

fn report(cfg: &Path, args: &[&str]) -> String {
    let mut cmd = Command::new(BIN);
    cmd.arg("report").arg("-c").arg(cfg).args(args);
    let out = run_with_timeout(&mut cmd, None, Duration::from_secs(30));
    assert!(
        out.success(),
        "report {args:?} failed: {}",
        out.stderr_str()
    );
    out.stdout_str()
}

fn json(cfg: &Path, args: &[&str]) -> serde_json::Value {
    let mut a = vec!["--format", "json"];
    a.extend_from_slice(args);
    serde_json::from_str(&report(cfg, &a)).unwrap()
}

/// (name, failures, bans) of a list of counted entries.
fn counted(v: &serde_json::Value) -> Vec<(String, u64, u64)> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_string(),
                c["failures"].as_u64().unwrap(),
                c["bans"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn s(name: &str, f: u64, b: u64) -> (String, u64, u64) {
    (name.to_string(), f, b)
}

#[test]
fn report_counts_what_the_daemon_saw_in_json_text_and_a_real_browser() {
    let t = tempfile::Builder::new()
        .prefix("pct-report-")
        .tempdir()
        .unwrap();
    let dir = t.path();
    let cfg = config(dir);
    let log = dir.join("auth.log");
    let d = Daemon::start(&cfg, &dir.join("daemon.log"));

    let mut lines = Vec::new();
    for i in 0..3 {
        lines.push(format!(
            "Invalid user {HOSTILE} from 203.0.113.10 port {}",
            40000 + i
        ));
        lines.push(format!(
            "Failed password for invalid user admin from 2001:db8::12 port {} ssh2",
            40000 + i
        ));
    }
    for i in 0..5 {
        lines.push(format!(
            "Failed password for root from 203.0.113.11 port {} ssh2",
            41000 + i
        ));
    }
    for i in 0..2 {
        lines.push(format!(
            "Failed password for root from 198.51.100.7 port {} ssh2",
            42000 + i
        ));
    }
    append(&log, &lines);

    // sshd (maxretry 3) bans .10, .11 and ::12; ssh-slow (maxretry 5) bans .11 again
    let bans = |log: &str| {
        log.lines()
            .filter(|l| l.contains("ban ") && !l.contains("jail=deny"))
            .count()
    };
    wait_for("four bans", Duration::from_secs(20), || bans(&d.log()) >= 4);
    // the report reads stats.db while the daemon runs (it writes off the engine thread)
    wait_for(
        "the running daemon's stats in the report",
        Duration::from_secs(20),
        || {
            let v = json(&cfg, &["--since", "1d"]);
            v["totals"]["bans"] == 4 && v["totals"]["failures"] == 26
        },
    );
    let out = d.stop();
    assert_eq!(bans(&out), 4, "{out}");
    assert!(out.contains("ban 192.0.2.200 jail=deny"), "{out}");

    // --- JSON: every section's numbers
    let v = json(&cfg, &["--since", "1d"]);
    assert_eq!(
        v["totals"],
        serde_json::json!({"failures": 26, "bans": 4, "addresses": 4, "users": 3})
    );
    assert_eq!(
        counted(&v["top_addresses"]),
        [
            s("203.0.113.11", 10, 2),
            s("2001:db8::12", 6, 1),
            s("203.0.113.10", 6, 1),
            s("198.51.100.7", 4, 0),
        ]
    );
    assert_eq!(
        counted(&v["top_users"]),
        [s("root", 14, 0), s(HOSTILE, 6, 0), s("admin", 6, 0)]
    );
    assert_eq!(
        counted(&v["bans_per_jail"]),
        [s("sshd", 13, 3), s("ssh-slow", 13, 1)]
    );
    let rules: Vec<(String, String, u64)> = v["bans_per_rule"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["jail"].as_str().unwrap().to_string(),
                r["rule"].as_str().unwrap().to_string(),
                r["bans"].as_u64().unwrap(),
            )
        })
        .filter(|r| r.2 > 0)
        .collect();
    let mut sorted = rules.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        [
            ("ssh-slow".into(), "failed".into(), 1),
            ("sshd".into(), "failed".into(), 2),
            ("sshd".into(), "invalid-user".into(), 1),
        ],
        "{rules:?}"
    );
    assert_eq!(v["timeline_unit"], "hour");
    let tl = v["timeline"].as_array().unwrap();
    assert!((24..=26).contains(&tl.len()), "{}", tl.len());
    let sum = |k: &str| tl.iter().map(|p| p[k].as_u64().unwrap()).sum::<u64>();
    assert_eq!((sum("bans"), sum("failures")), (4, 26));
    let rep = &v["repeat_offenders"];
    assert_eq!(rep.as_array().unwrap().len(), 1, "{rep}");
    assert_eq!(rep[0]["addr"], "203.0.113.11");
    assert_eq!(rep[0]["bans"], 2);
    assert_eq!(rep[0]["jails"], serde_json::json!(["ssh-slow", "sshd"]));
    assert_eq!(
        counted(&v["top_v4_24"]),
        [s("203.0.113.0/24", 16, 3), s("198.51.100.0/24", 4, 0)]
    );
    assert_eq!(v["top_v4_24"][0]["addresses"], 2);
    assert_eq!(counted(&v["top_v6_64"]), [s("2001:db8::/64", 6, 1)]);

    // one jail
    let one = json(&cfg, &["--since", "1d", "--jail", "ssh-slow"]);
    assert_eq!(one["totals"]["bans"], 1);
    assert_eq!(one["totals"]["failures"], 13);
    // a jail that is nowhere: said, not an empty report
    let mut cmd = Command::new(BIN);
    cmd.arg("report")
        .arg("-c")
        .arg(&cfg)
        .args(["--jail", "nosuch"]);
    let out = run_with_timeout(&mut cmd, None, Duration::from_secs(30));
    assert!(
        !out.success() && out.stderr_str().contains("no jail named \"nosuch\""),
        "{}",
        out.stderr_str()
    );
    // a week: per day
    let week = json(&cfg, &["--since", "7d"]);
    assert_eq!(week["timeline_unit"], "day");
    assert_eq!(week["timeline"].as_array().unwrap().len(), 8);

    // --- text: aligned columns
    let text = report(&cfg, &["--since", "1d"]);
    for want in [
        "\n     26 failures\n",
        "\n      4 bans\n",
        "\n     10     2 203.0.113.11\n",
        "\n     14     2 root\n",
        "\n      3       13 sshd\n",
        "\n      2 203.0.113.11 (ssh-slow,sshd, ",
        "\n     16     3     2 203.0.113.0/24\n",
        "\n      6     1     1 2001:db8::/64\n",
    ] {
        assert!(text.contains(want), "{want:?} missing in:\n{text}");
    }

    // --- HTML in a real browser
    let page = dir.join("report.html");
    let page_s = page.display().to_string();
    assert_eq!(
        report(&cfg, &["--since", "1d", "--format", "html", "-o", &page_s]),
        ""
    );
    let html = fs::read_to_string(&page).unwrap();
    // self-contained: nothing is loaded from elsewhere
    for external in ["<script", "src=", "href=", "<link", "@import", "url("] {
        assert!(!html.contains(external), "{external} in the page");
    }
    let dom = browser_dom(dir, &page);
    // the hostile user name is text (escaped again when the DOM is serialised), in the
    // table and in the SVG chart; never an element
    assert!(
        !dom.to_lowercase().contains("<script"),
        "markup from a user name:\n{dom}"
    );
    let as_text = "&lt;script&gt;alert(\"x\")&amp;'&lt;/script&gt;";
    assert!(
        dom.matches(as_text).count() >= 3,
        "the hostile name as text in the table and the chart:\n{dom}"
    );
    // the numbers
    for want in [
        "<td>failures</td><td class=\"n\">26</td>",
        "<td>bans</td><td class=\"n\">4</td>",
        "<td>203.0.113.11</td><td class=\"n\">10</td><td class=\"n\">2</td>",
        "<td>203.0.113.0/24</td><td class=\"n\">16</td><td class=\"n\">3</td>",
        "<td>2001:db8::/64</td><td class=\"n\">6</td><td class=\"n\">1</td>",
    ] {
        assert!(dom.contains(want), "{want:?} missing in the DOM:\n{dom}");
    }
    // the SVG timeline: one bar per hour, the bans add up
    let svg_start = dom
        .find("<svg id=\"timeline\"")
        .expect("no SVG timeline in the DOM");
    let svg = &dom[svg_start..svg_start + dom[svg_start..].find("</svg>").unwrap()];
    let bars: Vec<u64> = svg
        .split("data-bans=\"")
        .skip(1)
        .map(|x| x[..x.find('"').unwrap()].parse().unwrap())
        .collect();
    assert_eq!(bars.len(), tl.len(), "{svg}");
    assert_eq!(bars.iter().sum::<u64>(), 4);
    assert!(svg.contains("<polyline"), "{svg}");

    // and it renders: a screenshot that is not blank
    let shot = dir.join("report.png");
    chromium(
        dir,
        &[
            &format!("--screenshot={}", shot.display()),
            "--window-size=1000,1600",
            &format!("file://{}", page.display()),
        ],
    );
    let png = fs::read(&shot).expect("chromium wrote no screenshot");
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "screenshot of {} bytes",
        png.len()
    );
}

/// Runs Debian's chromium headless (its own profile in `dir`); panics when it is missing.
fn chromium(dir: &Path, args: &[&str]) -> String {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: `apt-get install chromium` (the report test opens the HTML \
         page in a real browser)"
    );
    let profile = dir.join("chromium-profile");
    let mut cmd = Command::new(CHROMIUM);
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-extensions",
        "--disable-background-networking",
    ])
    .arg(format!("--user-data-dir={}", profile.display()))
    .args(args);
    let out = run_with_timeout(&mut cmd, None, Duration::from_secs(90));
    assert!(
        out.success(),
        "chromium {args:?} failed: {}",
        out.stderr_str()
    );
    out.stdout_str()
}

/// The page's DOM as the browser built it.
fn browser_dom(dir: &Path, page: &Path) -> String {
    let dom = chromium(dir, &["--dump-dom", &format!("file://{}", page.display())]);
    assert!(dom.contains("</html>"), "no DOM from chromium: {dom}");
    dom
}

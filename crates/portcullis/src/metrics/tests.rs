use super::*;
use crate::config::Config;
use crate::events::UnbanReason;
use crate::firewall::null::Null;
use portcullis_core::jail::Step;
use portcullis_core::time::TimeContext;

fn load(text: &str) -> Result<Config> {
    Config::from_texts(&[("test.toml".into(), text.into())], vec![])
}

fn sshd_jails(cfg: &Config) -> Vec<Jail> {
    cfg.jails
        .iter()
        .map(|j| crate::jails::build_jail(cfg, j, &[]))
        .collect()
}

/// The sample lines of `text` named `name` (labels and value as written).
fn samples<'a>(text: &'a str, name: &str) -> Vec<&'a str> {
    text.lines()
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|r| r.starts_with('{') || r.starts_with(' '))
        })
        .collect()
}

#[test]
fn config_off_by_default_loopback_when_named_and_bad_addresses_refused() {
    assert_eq!(load("").unwrap().metrics, None);
    let m = load("[metrics]\n").unwrap().metrics.unwrap();
    assert_eq!(m.listen.to_string(), "127.0.0.1:9617");
    let m = load("[metrics]\nlisten = \"[::1]:9100\"\n")
        .unwrap()
        .metrics
        .unwrap();
    assert_eq!(m.listen.to_string(), "[::1]:9100");
    assert_eq!(warning(&m), None);
    for bad in ["localhost:9617", "127.0.0.1", "127.0.0.1:0", "::1:9617", ""] {
        let e = format!(
            "{:#}",
            load(&format!("# x\n[metrics]\nlisten = {bad:?}\n")).unwrap_err()
        );
        assert!(e.starts_with("test.toml:3: `metrics.listen`"), "{bad}: {e}");
    }
    let e = format!("{:#}", load("[metrics]\nport = 9\n").unwrap_err());
    assert!(
        e.starts_with("test.toml:2: `metrics.port`: unknown key in [metrics]"),
        "{e}"
    );
    // beyond loopback: allowed, with a warning
    let c = load("[metrics]\nlisten = \"0.0.0.0:9617\"\n").unwrap();
    let w = crate::config::warnings(&c);
    assert!(
        w.iter().any(|w| w.contains("not a loopback address")),
        "{w:?}"
    );
}

#[test]
fn the_text_carries_every_name_with_its_counts() {
    let cfg = load(
        "[[jail]]\nname = \"sshd\"\nfilter = \"sshd\"\nlogs = [\"/var/log/auth.log\"]\nmaxretry = 3\n",
    )
    .unwrap();
    let mut jails = sshd_jails(&cfg);
    let (m, registry) = Metrics::new();

    // a batch of five lines from two sources, three of them failures of one address
    let mut b = Batch::default();
    let fail = "Failed password for invalid user oracle from 203.0.113.7 port 4000 ssh2";
    for _ in 0..3 {
        b.push("/var/log/auth.log", fail.as_bytes());
    }
    b.push(
        "/var/log/auth.log",
        b"Accepted publickey for alice from 192.0.2.1",
    );
    b.push("journal:_COMM=sshd", b"something else");
    m.lines(&b);
    let ctx = TimeContext {
        now: 1_795_000_000_000,
        local_offset: 0,
        zone: None,
    };
    let mut t = Tally::default();
    for (_, line) in b.iter() {
        if let Step::Failure { failure, .. } = jails[0].process(line, &ctx, Some(ctx.now), ctx.now)
        {
            t.failure(0, &failure);
        }
    }
    m.failures(&t, &jails);
    m.jails(&jails);
    let ev = m.events.clone();
    ev.on_event(&Event::Ban {
        addr: portcullis_core::ignore::Cidr::parse("203.0.113.7").unwrap(),
        jail: "sshd".into(),
        failures: 3,
        length: 3_600_000,
        manual: false,
        reason: portcullis_core::decision::BanReason::Failures,
    });
    ev.on_event(&Event::Ban {
        addr: portcullis_core::ignore::Cidr::parse("203.0.113.8").unwrap(),
        jail: "sshd".into(),
        failures: 0,
        length: 3_600_000,
        manual: true,
        reason: portcullis_core::decision::BanReason::Manual,
    });
    ev.on_event(&Event::Unban {
        addr: portcullis_core::ignore::Cidr::parse("203.0.113.8").unwrap(),
        jail: "sshd".into(),
        reason: UnbanReason::Manual,
    });
    let mut fw = m.timed(Box::new(Null::default()));
    fw.apply(&[]).unwrap();
    fw.restore(&[]).unwrap();

    let text = render(&registry);
    for (name, ty) in [
        ("portcullis_lines_total", "counter"),
        ("portcullis_failures_total", "counter"),
        ("portcullis_bans_total", "counter"),
        ("portcullis_unbans_total", "counter"),
        ("portcullis_bans_active", "gauge"),
        ("portcullis_tracked_addresses", "gauge"),
        ("portcullis_evictions_total", "counter"),
        ("portcullis_firewall_seconds", "histogram"),
        ("portcullis_notify_queue", "gauge"),
        ("portcullis_notify_failures_total", "counter"),
    ] {
        assert!(
            text.contains(&format!("\n# TYPE {name} {ty}\n"))
                || text.starts_with(&format!("# HELP {name} ")),
            "{name} {ty} missing:\n{text}"
        );
        assert!(text.contains(&format!("# HELP {name} ")), "{name}:\n{text}");
    }
    let mut lines = samples(&text, "portcullis_lines_total");
    lines.sort();
    assert_eq!(
        lines,
        [
            "portcullis_lines_total{source=\"/var/log/auth.log\"} 4",
            "portcullis_lines_total{source=\"journal:_COMM=sshd\"} 1",
        ]
    );
    assert_eq!(
        samples(&text, "portcullis_failures_total"),
        ["portcullis_failures_total{jail=\"sshd\",rule=\"failed\"} 3"]
    );
    let mut bans = samples(&text, "portcullis_bans_total");
    bans.sort();
    assert_eq!(
        bans,
        [
            "portcullis_bans_total{jail=\"sshd\",reason=\"failures\"} 1",
            "portcullis_bans_total{jail=\"sshd\",reason=\"manual\"} 1",
        ]
    );
    assert_eq!(
        samples(&text, "portcullis_unbans_total"),
        ["portcullis_unbans_total{jail=\"sshd\"} 1"]
    );
    // the third failure banned the address in the tracker
    assert_eq!(
        samples(&text, "portcullis_bans_active"),
        ["portcullis_bans_active{jail=\"sshd\"} 1"]
    );
    assert_eq!(
        samples(&text, "portcullis_evictions_total"),
        ["portcullis_evictions_total{jail=\"sshd\"} 0"]
    );
    assert_eq!(
        samples(&text, "portcullis_firewall_seconds_count"),
        ["portcullis_firewall_seconds_count 2"]
    );
    assert!(
        text.contains("portcullis_firewall_seconds_bucket{le=\"+Inf\"} 2\n"),
        "{text}"
    );
    assert_eq!(
        samples(&text, "portcullis_notify_queue").len(),
        2,
        "mail and webhook:\n{text}"
    );

    // a reload that drops the jail drops its gauges
    jails.clear();
    m.jails(&jails);
    let text = render(&registry);
    assert!(
        samples(&text, "portcullis_bans_active").is_empty(),
        "{text}"
    );
}

#[test]
fn weightless_failures_are_not_counted() {
    let mut t = Tally::default();
    let f = Failure {
        addr: "203.0.113.7".parse().unwrap(),
        time: 0,
        filter: 0,
        rule: 2,
        weight: 0,
        kind: portcullis_core::decision::Kind::Attempt,
        session: 0,
    };
    t.failure(0, &f);
    assert!(t.0.is_empty());
    t.failure(0, &Failure { weight: 2, ..f });
    t.failure(0, &Failure { weight: 1, ..f });
    t.failure(1, &Failure { weight: 1, ..f });
    assert_eq!(t.0, [(0, 0, 2, 2), (1, 0, 2, 1)]);
}

#[test]
fn the_series_of_a_forgotten_file_goes() {
    let (m, registry) = Metrics::new();
    let mut b = Batch::default();
    b.push("/var/log/app/a.log", b"x");
    b.push("/var/log/app/b.log", b"x");
    m.lines(&b);
    let b = Batch {
        forgotten: vec!["/var/log/app/a.log".into()],
        ..Default::default()
    };
    m.lines(&b);
    let text = render(&registry);
    assert!(!text.contains("a.log"), "{text}");
    assert!(
        text.contains("portcullis_lines_total{source=\"/var/log/app/b.log\"} 1\n"),
        "{text}"
    );
}

#[test]
fn label_values_are_escaped() {
    let (m, registry) = Metrics::new();
    let mut b = Batch::default();
    b.push("/var/log/a\"b\\c\nd.log", b"x");
    m.lines(&b);
    let text = render(&registry);
    assert!(
        text.contains("portcullis_lines_total{source=\"/var/log/a\\\"b\\\\c\\nd.log\"} 1\n"),
        "{text}"
    );
}

#[test]
fn the_responder_serves_only_metrics() {
    let page = || "x_total 1\n".to_string();
    let text = |head: &str| String::from_utf8(http::respond(head.as_bytes(), &page)).unwrap();
    let ok = text("GET /metrics HTTP/1.1\r\nHost: a\r\n");
    assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"), "{ok}");
    assert!(ok.contains("\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"));
    assert!(ok.contains("\r\nContent-Length: 10\r\n"), "{ok}");
    assert!(ok.ends_with("\r\n\r\nx_total 1\n"), "{ok}");
    assert!(text("GET /metrics?x=1 HTTP/1.0").starts_with("HTTP/1.1 200 OK\r\n"));
    let head = text("HEAD /metrics HTTP/1.1");
    assert!(
        head.starts_with("HTTP/1.1 200 OK\r\n") && head.ends_with("\r\n\r\n"),
        "{head}"
    );
    for (req, status) in [
        ("GET / HTTP/1.1", "404"),
        ("GET /metrics/ HTTP/1.1", "404"),
        ("GET /../metrics HTTP/1.1", "404"),
        ("POST /metrics HTTP/1.1", "405"),
        ("GET /metrics", "400"),
        ("GET /metrics HTTP/1.1 x", "400"),
        ("GET /metrics SMTP/1.1", "400"),
        ("", "400"),
    ] {
        let t = text(req);
        assert!(
            t.starts_with(&format!("HTTP/1.1 {status} ")),
            "{req:?}: {t}"
        );
        assert!(!t.contains("x_total"), "{req:?}: {t}");
    }
}

/// Found by a security review: any local user held the 8 places with idle connections,
/// reconnecting every 4.5 s, and every scrape failed. A new connection now takes the place
/// of the oldest still sending its head: idle ones, and ones that trickle a head byte by
/// byte, never keep a scraper out.
#[test]
fn idle_and_trickling_connections_never_keep_a_scraper_out() {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || http::serve(listener, || "up 1\n".to_string()));
    let scrape = || {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_secs(3)))
            .unwrap();
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let mut answer = String::new();
        let _ = s.read_to_string(&mut answer);
        assert!(
            answer.starts_with("HTTP/1.1 200") && answer.ends_with("up 1\n"),
            "{answer:?}"
        );
    };
    for trickle in [false, true] {
        let held: Vec<std::net::TcpStream> = (0..2 * http::MAX_CONNS)
            .map(|_| {
                let mut s = std::net::TcpStream::connect(addr).unwrap();
                if trickle {
                    // a head begun, never ended
                    let _ = s.write_all(b"GET /met");
                }
                s
            })
            .collect();
        std::thread::sleep(std::time::Duration::from_millis(100));
        for _ in 0..3 {
            scrape();
        }
        drop(held);
    }
}

/// A responder serving a 4 MB page on loopback: its address and the page's length.
fn large_page_server() -> (std::net::SocketAddr, usize) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let page = "x_total 1\n".repeat(400_000);
    let want = page.len();
    std::thread::spawn(move || http::serve(listener, move || page.clone()));
    (addr, want)
}

/// An answer larger than the socket takes at once is written as the client reads it, and a
/// client that stops reading does not stop the others.
#[test]
fn a_large_page_is_written_whole_beside_a_client_that_does_not_read() {
    use std::io::{Read, Write};
    let (addr, want) = large_page_server();
    let req = b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
    let mut stuck = std::net::TcpStream::connect(addr).unwrap();
    stuck.write_all(req).unwrap();
    for _ in 0..2 {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        s.write_all(req).unwrap();
        let mut answer = Vec::new();
        s.read_to_end(&mut answer).unwrap();
        let text = String::from_utf8(answer).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        assert_eq!(body.len(), want);
    }
    drop(stuck);
}

/// A client that sent more than its head (a body, a second request) still gets the whole
/// answer: closed with those bytes unread, the socket sent a reset that dropped what of the
/// answer the kernel still held (stop 43's left-over).
#[test]
fn bytes_after_the_head_never_cut_the_answer() {
    use std::io::{Read, Write};
    let (addr, want) = large_page_server();
    for _ in 0..3 {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        let mut req = b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n".to_vec();
        req.extend(std::iter::repeat_n(b'y', 100_000));
        s.write_all(&req).unwrap();
        // the answer is taken slowly, after the server has written it all to its socket
        std::thread::sleep(std::time::Duration::from_millis(300));
        let mut answer = Vec::new();
        let r = s.read_to_end(&mut answer);
        let text = String::from_utf8_lossy(&answer);
        let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
        assert!(
            r.is_ok() && body.len() == want,
            "{r:?}: {} of {want} bytes",
            body.len()
        );
    }
}

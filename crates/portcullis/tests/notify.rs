//! Notifications against real counterparts (issue 14): the real daemon (`portcullis run`,
//! null firewall, no namespace needed) follows a log file the test writes.
//!
//! * `mail_batches_bans_with_evidence_and_survives_outages_and_restarts` — a real SMTP
//!   server (Debian's python3-aiosmtpd, on loopback, started by the test) receives one
//!   mail for three bans, with each ban's evidence lines; a user name carrying CR and a
//!   `Bcc:` adds no header and no recipient; with the server down the mail arrives once
//!   it is back, and after a daemon restart.
//! * `webhooks_post_each_format_retry_and_drop_the_oldest` — a real HTTP server (std
//!   `TcpListener`, in the test) receives the JSON body of each format (slack, discord,
//!   matrix, ntfy, json) with the secret header from `header_file`; a POST answered 500 is
//!   retried; a hook whose server is down keeps only the newest events of its bounded
//!   queue and counts the dropped ones.
//!
//! Run: `cargo test -p portcullis --test notify` (python3-aiosmtpd must be installed:
//! the test fails, it does not skip, without it).

mod common;

use common::*;
use std::collections::HashMap;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Debian's interpreter (the one python3-aiosmtpd is installed for), not a PATH shim.
const PYTHON: &str = "/usr/bin/python3";

/// The SMTP server: every message is written to DIR as JSON (envelope, headers, body as
/// parsed by Python's email package, raw text).
const SMTP_SERVER: &str = r#"
import email, email.policy, json, os, sys, time
from aiosmtpd.controller import Controller

port, out = int(sys.argv[1]), sys.argv[2]
# a size limit (bytes), past which a message is refused for good as a relay refuses it
limit = int(sys.argv[3]) if len(sys.argv) > 3 else 0

class Save:
    async def handle_DATA(self, server, session, envelope):
        raw = envelope.original_content or envelope.content
        if limit and len(raw) > limit:
            print("refused %d" % len(raw), file=sys.stderr, flush=True)
            return "552 5.3.4 Message size exceeds fixed limit"
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        part = msg.get_body(preferencelist=("plain",))
        rec = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "headers": [[k, str(v)] for k, v in msg.items()],
            "content_type": msg.get_content_type(),
            "body": part.get_content() if part is not None else "",
            "raw": raw.decode("utf-8", "replace"),
        }
        name = "%d-%d" % (time.time_ns(), os.getpid())
        tmp = os.path.join(out, "." + name)
        with open(tmp, "w") as f:
            json.dump(rec, f)
        os.rename(tmp, os.path.join(out, name + ".json"))
        return "250 OK"

c = Controller(Save(), hostname="127.0.0.1", port=port)
c.start()
print("ready", flush=True)
try:
    sys.stdin.read()
finally:
    c.stop()
"#;

/// A running aiosmtpd; stopped on drop.
struct Smtp {
    _proc: ProcessGuard,
}

fn smtp_start(dir: &Path, port: u16, out: &Path) -> Smtp {
    smtp_start_limited(dir, port, out, 0)
}

/// [`smtp_start`] with a server that refuses for good (552) a message over `limit` bytes
/// (0: none).
fn smtp_start_limited(dir: &Path, port: u16, out: &Path, limit: usize) -> Smtp {
    let script = dir.join("smtpd.py");
    fs::write(&script, SMTP_SERVER).unwrap();
    let log = dir.join(format!("smtpd-{}.log", Instant::now().elapsed().as_nanos()));
    let mut cmd = Command::new(PYTHON);
    cmd.arg(&script)
        .arg(port.to_string())
        .arg(out)
        .arg(limit.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(fs::File::create(&log).unwrap());
    let mut p = ProcessGuard::spawn(cmd, "aiosmtpd");
    let stdout = p.child_mut().stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut l = String::new();
        let _ = BufReader::new(stdout).read_line(&mut l);
        let _ = tx.send(l);
    });
    let line = rx.recv_timeout(Duration::from_secs(20)).unwrap_or_default();
    assert!(
        line.trim() == "ready",
        "the SMTP server (python3-aiosmtpd, `apt-get install python3-aiosmtpd`) did not start: {}",
        fs::read_to_string(&log).unwrap_or_default()
    );
    Smtp { _proc: p }
}

/// A free loopback port (the SMTP server comes and goes on the same one).
fn mails(out: &Path) -> Vec<serde_json::Value> {
    let mut names: Vec<PathBuf> = fs::read_dir(out)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    names.sort();
    names
        .iter()
        .map(|p| serde_json::from_str(&fs::read_to_string(p).unwrap()).unwrap())
        .collect()
}

fn append(log: &Path, lines: &[String]) {
    let mut f = fs::OpenOptions::new().append(true).open(log).unwrap();
    for l in lines {
        f.write_all(l.as_bytes()).unwrap();
        f.write_all(b"\n").unwrap();
    }
}

/// Three failed sshd logins of `addr` (no time stamp: read time counts).
fn failures(addr: &str, user: &str) -> Vec<String> {
    (0..3)
        .map(|i| {
            format!(
                "Failed password for invalid user {user} from {addr} port {} ssh2",
                40000 + i
            )
        })
        .collect()
}

fn base_config(dir: &Path, extra: &str) -> PathBuf {
    config_with(dir, "", extra)
}

/// `top`: top-level keys; `extra`: tables after the jail.
fn config_with(dir: &Path, top: &str, extra: &str) -> PathBuf {
    let state = dir.join("state");
    fs::create_dir_all(&state).unwrap();
    let log = dir.join("auth.log");
    if !log.exists() {
        fs::write(&log, "").unwrap();
    }
    let path = dir.join("portcullis.toml");
    let text = format!(
        "{top}socket = {:?}\nstate_dir = {:?}\n[firewall]\nbackend = \"null\"\n\
         [[jail]]\nname = \"sshd\"\nfilter = \"sshd\"\nlogs = [{:?}]\nmaxretry = 3\n{extra}",
        dir.join("portcullis.sock").display().to_string(),
        state.display().to_string(),
        log.display().to_string(),
    );
    fs::write(&path, text).unwrap();
    path
}

/// `[notify.mail]` to a plain SMTP server on loopback `port`, then `rest` (more keys).
fn mail_table(port: u16, rest: &str) -> String {
    format!(
        "[notify.mail]\nsmtp = \"smtp://127.0.0.1:{port}\"\nfrom = \"portcullis@host.example.org\"\n\
         to = [\"admin@example.org\"]\n{rest}"
    )
}

fn tmp(prefix: &str) -> tempfile::TempDir {
    tempfile::Builder::new().prefix(prefix).tempdir().unwrap()
}

#[test]
fn mail_batches_bans_with_evidence_and_survives_outages_and_restarts() {
    let t = tmp("pct-notify-mail-");
    let dir = t.path();
    let out = dir.join("mails");
    fs::create_dir(&out).unwrap();
    let port = free_port();
    let cfg = base_config(dir, &mail_table(port, "interval = \"3s\"\n"));
    let log = dir.join("auth.log");
    let mut smtp = Some(smtp_start(dir, port, &out));
    let d = Daemon::start(&cfg, &dir.join("daemon1.log"));

    // 1. three bans in one interval: one mail, each with its evidence; the attacker's
    //    user name carries CR and a Bcc header
    let evil = "x\rBcc: victim@example.org";
    let mut lines = failures("203.0.113.10", evil);
    lines.extend(failures("203.0.113.11", "oracle"));
    lines.extend(failures("2001:db8::12", "admin"));
    append(&log, &lines);
    wait_for("three bans", Duration::from_secs(20), || {
        d.log().matches("\nban ").count() + usize::from(d.log().starts_with("ban ")) >= 3
    });
    wait_for("the first mail", Duration::from_secs(30), || {
        !mails(&out).is_empty()
    });
    std::thread::sleep(Duration::from_millis(500));
    let m = mails(&out);
    assert_eq!(m.len(), 1, "one mail for the batch: {m:#?}");
    let mail = &m[0];
    assert_eq!(
        mail["rcpt_tos"],
        serde_json::json!(["admin@example.org"]),
        "{mail:#}"
    );
    assert_eq!(mail["mail_from"], "portcullis@host.example.org");
    let headers: Vec<String> = mail["headers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h[0].as_str().unwrap().to_ascii_lowercase())
        .collect();
    assert!(
        !headers.iter().any(|h| h == "bcc"),
        "a Bcc header got in: {headers:?}"
    );
    for h in &headers {
        assert!(
            [
                "from",
                "to",
                "subject",
                "date",
                "content-type",
                "content-transfer-encoding",
                "mime-version",
                "message-id"
            ]
            .contains(&h.as_str()),
            "unexpected header {h:?}: {mail:#}"
        );
    }
    let raw = mail["raw"].as_str().unwrap();
    let head = raw.split("\r\n\r\n").next().unwrap();
    assert!(
        !head
            .lines()
            .any(|l| l.to_ascii_lowercase().starts_with("bcc:")),
        "a header line starts with Bcc:\n{raw}"
    );
    let subject = mail["headers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h[0] == "Subject")
        .unwrap()[1]
        .as_str()
        .unwrap()
        .to_string();
    assert!(subject.contains("3 bans"), "{subject}");
    let body = mail["body"].as_str().unwrap();
    // (an IPv6 offender is banned as its /64: the default v6_prefix)
    for (addr, ban, user) in [
        (
            "203.0.113.10",
            "203.0.113.10",
            "x\\x0dBcc: victim@example.org",
        ),
        ("203.0.113.11", "203.0.113.11", "oracle"),
        ("2001:db8::12", "2001:db8::/64", "admin"),
    ] {
        assert!(
            body.contains(&format!("address:  {ban}")),
            "{ban} missing:\n{body}"
        );
        for p in 40000..40003 {
            let line =
                format!("| Failed password for invalid user {user} from {addr} port {p} ssh2");
            assert!(body.contains(&line), "evidence {line:?} missing:\n{body}");
        }
    }
    assert!(
        !body.replace("\r\n", "\n").contains('\r'),
        "a lone CR in the body:\n{body:?}"
    );
    assert!(
        body.contains("jail:     sshd")
            && body.contains("failures: 3")
            && body.contains("duration: 1h"),
        "{body}"
    );

    // 2. the server is down when a ban comes: the ban is not held up, the mail is retried
    //    and arrives once the server is back
    drop(smtp.take());
    let before = Instant::now();
    append(&log, &failures("203.0.113.20", "root"));
    wait_for("the ban of 203.0.113.20", Duration::from_secs(10), || {
        d.log().contains("ban 203.0.113.20 ")
    });
    assert!(before.elapsed() < Duration::from_secs(5), "the ban waited");
    wait_for("a failed send", Duration::from_secs(30), || {
        d.log().contains("notify: mail of 1 event(s)")
    });
    smtp = Some(smtp_start(dir, port, &out));
    wait_for("the retried mail", Duration::from_secs(40), || {
        mails(&out).len() >= 2
    });
    let m = mails(&out);
    let body = m[1]["body"].as_str().unwrap();
    assert!(body.contains("address:  203.0.113.20"), "{body}");
    assert!(!body.contains("203.0.113.10"), "sent twice: {body}");
    // (the server has the mail before the daemon hears its answer and logs it)
    wait_for(
        "the note of the retried send",
        Duration::from_secs(10),
        || d.log().contains("notify: mail sent after"),
    );

    // 3. down again; the daemon stops before it could send; after the restart (server
    //    back) the mail arrives, once
    drop(smtp.take());
    let failed_before = d.log().matches("notify: mail of 1 event(s)").count();
    append(&log, &failures("203.0.113.30", "guest"));
    wait_for(
        "a failed send of 203.0.113.30",
        Duration::from_secs(30),
        || d.log().matches("notify: mail of 1 event(s)").count() > failed_before,
    );
    let stopped = d.stop();
    assert!(stopped.contains("ban 203.0.113.30 "), "{stopped}");
    smtp = Some(smtp_start(dir, port, &out));
    let d2 = Daemon::start(&cfg, &dir.join("daemon2.log"));
    wait_for(
        "the mail queued before the restart",
        Duration::from_secs(40),
        || mails(&out).len() >= 3,
    );
    std::thread::sleep(Duration::from_millis(1500));
    let m = mails(&out);
    assert_eq!(m.len(), 3, "{m:#?}");
    let body = m[2]["body"].as_str().unwrap();
    assert!(body.contains("address:  203.0.113.30"), "{body}");
    assert!(!body.contains("203.0.113.20"), "{body}");
    assert!(
        d2.log()
            .contains("mail event(s) waiting from before the restart"),
        "{}",
        d2.log()
    );
    d2.stop();
    drop(smtp);
}

/// What the test's HTTP server got: (path, headers lower-cased, body, status answered).
type Got = Arc<Mutex<Vec<(String, HashMap<String, String>, String, u16)>>>;

/// A tiny HTTP/1.1 server on loopback: one request per connection, answered with the
/// status `answer(path, n)` gives for the n-th request (from 0) to that path.
struct Http {
    port: u16,
    got: Got,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

type Answer = Arc<dyn Fn(&str, usize) -> u16 + Send + Sync>;

impl Http {
    fn start(answer: Answer) -> Http {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.set_nonblocking(true).unwrap();
        let port = l.local_addr().unwrap().port();
        let got: Got = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (g, s) = (got.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(300);
            while !s.load(Ordering::Relaxed) && Instant::now() < deadline {
                match l.accept() {
                    Ok((c, _)) => serve(c, &g, &answer),
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        Http {
            port,
            got,
            stop,
            thread: Some(thread),
        }
    }

    fn requests(&self, path: &str) -> Vec<(HashMap<String, String>, serde_json::Value, u16)> {
        self.got
            .lock()
            .unwrap()
            .iter()
            .filter(|(p, ..)| p == path)
            .map(|(_, h, b, s)| {
                (
                    h.clone(),
                    serde_json::from_str(b).unwrap_or(serde_json::Value::Null),
                    *s,
                )
            })
            .collect()
    }
}

impl Drop for Http {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(c: TcpStream, got: &Got, answer: &Answer) {
    c.set_nonblocking(false).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut r = BufReader::new(c.try_clone().unwrap());
    let mut first = String::new();
    if r.read_line(&mut first).is_err() {
        return;
    }
    let path = first.split(' ').nth(1).unwrap_or("").to_string();
    let mut headers = HashMap::new();
    for _ in 0..100 {
        let mut l = String::new();
        if r.read_line(&mut l).unwrap_or(0) == 0 || l.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let len: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; len.min(1 << 20)];
    let _ = r.read_exact(&mut body);
    let n = got
        .lock()
        .unwrap()
        .iter()
        .filter(|(p, ..)| *p == path)
        .count();
    let status = answer(&path, n);
    got.lock().unwrap().push((
        path,
        headers,
        String::from_utf8_lossy(&body).into_owned(),
        status,
    ));
    let mut c = c;
    let _ = write!(
        c,
        "HTTP/1.1 {status} X\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
    );
}

#[test]
fn webhooks_post_each_format_retry_and_drop_the_oldest() {
    let t = tmp("pct-notify-hook-");
    let dir = t.path();
    let down = Arc::new(AtomicBool::new(true));
    let d2 = down.clone();
    // /json fails its first POST; /drop fails while `down`
    let http = Http::start(Arc::new(move |path, n| match path {
        "/json" if n == 0 => 500,
        "/drop" if d2.load(Ordering::Relaxed) => 503,
        _ => 200,
    }));
    let p = http.port;
    let headers = dir.join("hook.headers");
    fs::write(
        &headers,
        "# secret kept out of the config\nAuthorization: Bearer s3cret-token\n",
    )
    .unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&headers, fs::Permissions::from_mode(0o644)).unwrap();
    }
    let hook = |path: &str, format: &str, extra: &str| {
        format!("[[notify.webhook]]\nurl = \"http://127.0.0.1:{p}{path}\"\nformat = \"{format}\"\n{extra}")
    };
    let extra = [
        hook("/slack", "slack", ""),
        hook("/discord", "discord", ""),
        hook("/matrix", "matrix", ""),
        hook("/ntfy/alerts", "ntfy", ""),
        hook(
            "/json",
            "json",
            &format!(
                "header_file = {:?}\nevents = [\"ban\", \"unban\"]\n",
                headers.display().to_string()
            ),
        ),
        hook("/drop", "json", "queue = 2\ntimeout = \"2s\"\n"),
    ]
    .concat();
    let cfg = base_config(dir, &extra);
    let log = dir.join("auth.log");
    let d = Daemon::start(&cfg, &dir.join("daemon.log"));
    // 0644: the daemon says the secret is readable by others
    assert!(
        d.log()
            .contains("hook.headers holds a secret but others may read it (mode 0644)"),
        "{}",
        d.log()
    );

    // one ban first: each format's body
    append(&log, &failures("203.0.113.40", "alice"));
    wait_for("the five formats", Duration::from_secs(20), || {
        ["/slack", "/discord", "/matrix", "/ntfy/"]
            .iter()
            .all(|p| !http.requests(p).is_empty())
    });
    let text = "ban 203.0.113.40 jail=sshd failures=3 for=1h";
    let slack = &http.requests("/slack")[0];
    assert!(
        slack.1["text"].as_str().unwrap().ends_with(text),
        "{slack:?}"
    );
    assert_eq!(slack.0["content-type"], "application/json");
    assert!(
        !slack.0.contains_key("authorization"),
        "the secret went to another hook"
    );
    let discord = &http.requests("/discord")[0].1;
    assert!(
        discord["content"]
            .as_str()
            .unwrap()
            .contains("ban 203.0.113.40 jail=sshd"),
        "{discord}"
    );
    assert_eq!(discord["allowed_mentions"]["parse"], serde_json::json!([]));
    let matrix = &http.requests("/matrix")[0].1;
    assert_eq!(matrix["msgtype"], "m.text");
    assert!(matrix["body"].as_str().unwrap().ends_with(text), "{matrix}");
    let ntfy = &http.requests("/ntfy/")[0].1;
    assert_eq!(ntfy["topic"], "alerts");
    assert_eq!(ntfy["message"], text);
    assert!(ntfy["title"].as_str().unwrap().ends_with(": ban"), "{ntfy}");

    // json: the first POST got 500, the retry (after the backoff) delivered it, with the
    // header from header_file and the evidence
    wait_for("the json retry", Duration::from_secs(20), || {
        http.requests("/json").len() >= 2
    });
    let js = http.requests("/json");
    assert_eq!((js[0].2, js[1].2), (500, 200));
    assert_eq!(js[0].1, js[1].1, "the retry sends the same event");
    let (h, body, _) = &js[1];
    assert_eq!(h["authorization"], "Bearer s3cret-token");
    assert_eq!(body["event"], "ban");
    assert_eq!(body["addr"], "203.0.113.40");
    assert_eq!(body["jail"], "sshd");
    assert_eq!(body["failures"], 3);
    assert_eq!(body["duration"], "1h");
    assert_eq!(body["evidence"].as_array().unwrap().len(), 3, "{body}");
    assert!(body["evidence"][2]
        .as_str()
        .unwrap()
        .contains("user alice from 203.0.113.40 port 40002"));
    wait_for("the retry logged", Duration::from_secs(5), || {
        d.log().contains("delivered after 1 failed try")
    });

    // /drop (queue = 2) is down: four more bans, only the two newest are kept
    let addrs = [
        "203.0.113.41",
        "203.0.113.42",
        "203.0.113.43",
        "203.0.113.44",
    ];
    for a in addrs {
        append(&log, &failures(a, "bob"));
        wait_for("a ban", Duration::from_secs(10), || {
            d.log().contains(&format!("ban {a} "))
        });
    }
    wait_for("the drops counted", Duration::from_secs(10), || {
        d.log()
            .contains("queue full (2 events): dropped 3 oldest event(s) so far")
    });
    down.store(false, Ordering::Relaxed);
    wait_for("the two newest delivered", Duration::from_secs(60), || {
        http.requests("/drop").iter().filter(|r| r.2 == 200).count() >= 2
    });
    std::thread::sleep(Duration::from_millis(500));
    let delivered: Vec<String> = http
        .requests("/drop")
        .iter()
        .filter(|r| r.2 == 200)
        .map(|r| r.1["addr"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(delivered, ["203.0.113.43", "203.0.113.44"]);
    // the other hooks got every ban, in order
    let slack: Vec<String> = http
        .requests("/slack")
        .iter()
        .map(|r| r.1["text"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(slack.len(), 5, "{slack:?}");
    d.stop();
}

/// `smtp+starttls://` against a server that offers no STARTTLS: the mail is not sent in
/// clear; it waits (retried) and the failure is logged.
#[test]
fn starttls_required_never_sends_in_clear() {
    let t = tmp("pct-notify-tls-");
    let dir = t.path();
    let out = dir.join("mails");
    fs::create_dir(&out).unwrap();
    let port = free_port();
    let cfg = base_config(
        dir,
        &format!(
            "[notify.mail]\nsmtp = \"smtp+starttls://127.0.0.1:{port}\"\n\
             from = \"portcullis@host.example.org\"\nto = [\"admin@example.org\"]\ninterval = \"1s\"\n"
        ),
    );
    let _smtp = smtp_start(dir, port, &out);
    let d = Daemon::start(&cfg, &dir.join("daemon.log"));
    append(&dir.join("auth.log"), &failures("203.0.113.50", "root"));
    wait_for("the refused send", Duration::from_secs(30), || {
        d.log().contains("notify: mail of 1 event(s)")
    });
    std::thread::sleep(Duration::from_millis(500));
    assert!(mails(&out).is_empty(), "a mail went out in clear");
    let log = d.stop();
    assert!(log.contains("ban 203.0.113.50 "), "{log}");
}

/// A flood from more addresses than the jail tracks (`max_tracked`) is an event of its own:
/// the `flood` webhook gets it.
#[test]
fn a_flood_is_notified() {
    let t = tmp("pct-notify-flood-");
    let dir = t.path();
    let http = Http::start(Arc::new(|_, _| 200));
    let cfg = config_with(
        dir,
        "max_tracked = 100\n",
        &format!(
            "[[notify.webhook]]\nurl = \"http://127.0.0.1:{}/hook\"\nformat = \"json\"\nevents = [\"flood\"]\n",
            http.port
        ),
    );
    let d = Daemon::start(&cfg, &dir.join("daemon.log"));
    // each in its own /64 (the default v6_prefix): 150 offenders
    let lines: Vec<String> = (0..150u32)
        .map(|i| {
            format!(
                "Failed password for root from 2001:db8:{:x}::1 port 1000 ssh2",
                i + 1
            )
        })
        .collect();
    append(&dir.join("auth.log"), &lines);
    wait_for("the flood notification", Duration::from_secs(20), || {
        !http.requests("/hook").is_empty()
    });
    let r = &http.requests("/hook")[0].1;
    assert_eq!(r["event"], "flood", "{r}");
    assert_eq!(r["jail"], "sshd");
    assert!(
        r["text"]
            .as_str()
            .unwrap()
            .starts_with("flood jail=sshd evicted="),
        "{r}"
    );
    let log = d.stop();
    assert!(log.contains("flood jail=sshd evicted="), "{log}");
    assert!(
        !log.contains("\nban "),
        "no ban in a flood of single failures: {log}"
    );
}

/// A mail the server refuses for good (552: too large) is followed at once by a short one
/// without evidence; one refused even short is dropped, said, and the next events are
/// mailed (the same mail was sent again every 5 minutes for ever, and every later event
/// waited behind it, a review found).
#[test]
fn a_mail_refused_for_good_is_sent_short_or_dropped() {
    let t = tmp("pct-notify-refused-");
    let dir = t.path();
    let out = dir.join("mails");
    fs::create_dir(&out).unwrap();
    let port = free_port();
    let cfg = base_config(dir, &mail_table(port, "interval = \"2s\"\n"));
    let log = dir.join("auth.log");
    // 12 bans with evidence make a mail of over 4 kB; short, it is under 3 kB
    let smtp = smtp_start_limited(dir, port, &out, 3000);
    let d = Daemon::start(&cfg, &dir.join("daemon.log"));
    let mut lines = Vec::new();
    for i in 0..12 {
        lines.extend(failures(&format!("203.0.113.{}", 100 + i), "oracle"));
    }
    append(&log, &lines);
    wait_for("the short mail", Duration::from_secs(40), || {
        !mails(&out).is_empty()
    });
    let m = mails(&out);
    let body = m[0]["body"].as_str().unwrap();
    assert!(
        body.contains("refused the whole report") && body.contains("203.0.113.111"),
        "{body}"
    );
    assert!(!body.contains("evidence (last log lines"), "{body}");
    assert!(
        d.log().contains("a short mail without evidence follows"),
        "{}",
        d.log()
    );
    drop(smtp);
    // a server that refuses even the short mail: the events are dropped, said
    let out2 = dir.join("mails2");
    fs::create_dir(&out2).unwrap();
    let smtp = smtp_start_limited(dir, port, &out2, 200);
    append(&log, &failures("198.51.100.20", "oracle"));
    wait_for("the events dropped", Duration::from_secs(60), || {
        d.log()
            .contains("refused even a short mail of 1 event(s) for good: they are dropped")
    });
    assert!(mails(&out2).is_empty(), "{}", d.log());
    // and the next events are mailed, in full
    drop(smtp);
    let out3 = dir.join("mails3");
    fs::create_dir(&out3).unwrap();
    let _smtp = smtp_start(dir, port, &out3);
    append(&log, &failures("198.51.100.21", "oracle"));
    wait_for("the next mail", Duration::from_secs(60), || {
        !mails(&out3).is_empty()
    });
    let body = mails(&out3)[0]["body"].as_str().unwrap().to_string();
    assert!(
        body.contains("198.51.100.21") && body.contains("evidence (last log lines"),
        "{body}"
    );
    assert!(!body.contains("198.51.100.20"), "{body}");
    d.stop();
}

/// An SMTP server that accepts and never answers holds up neither the bans nor the
/// webhooks (each sink has its own thread), nor the daemon's stop.
#[test]
fn a_hanging_mail_server_delays_no_ban_and_no_webhook() {
    let t = tmp("pct-notify-hang-");
    let dir = t.path();
    // accepts connections (the kernel's backlog) and never says a word
    let tarpit = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = tarpit.local_addr().unwrap().port();
    let http = Http::start(Arc::new(|_, _| 200));
    let cfg = base_config(
        dir,
        &mail_table(
            port,
            &format!(
                "interval = \"1s\"\ntimeout = \"60s\"\n\
                 [[notify.webhook]]\nurl = \"http://127.0.0.1:{}/hook\"\nformat = \"json\"\n",
                http.port
            ),
        ),
    );
    let d = Daemon::start(&cfg, &dir.join("daemon.log"));
    let log = dir.join("auth.log");
    append(&log, &failures("203.0.113.60", "root"));
    wait_for("the first ban", Duration::from_secs(10), || {
        d.log().contains("ban 203.0.113.60 ")
    });
    // the mail thread is now stuck in the SMTP greeting (60 s timeout)
    std::thread::sleep(Duration::from_millis(2500));
    let t0 = Instant::now();
    append(&log, &failures("203.0.113.61", "root"));
    wait_for("the second ban", Duration::from_secs(10), || {
        d.log().contains("ban 203.0.113.61 ")
    });
    wait_for("both webhooks", Duration::from_secs(10), || {
        http.requests("/hook").len() >= 2
    });
    assert!(
        t0.elapsed() < Duration::from_secs(10),
        "held up: {:?}",
        t0.elapsed()
    );
    let addrs: Vec<String> = http
        .requests("/hook")
        .iter()
        .map(|r| r.1["addr"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(addrs, ["203.0.113.60", "203.0.113.61"]);
    let t1 = Instant::now();
    let out = d.stop();
    assert!(
        t1.elapsed() < Duration::from_secs(10),
        "the stop waited for the mail server: {:?}\n{out}",
        t1.elapsed()
    );
    drop(tarpit);
}

/// A mail server that answers, but one continuation line of its greeting at a time, each
/// within the read timeout, never ends a conversation: lettre's `timeout` bounds each read
/// only. The send is given up after 5 × `timeout` and tried again later (a review found the
/// mail sink held for hours), and the events that come in meanwhile, even one banned just
/// before the stop, are in the queue file: the next start mails them.
#[test]
fn a_dribbling_mail_server_is_given_up_and_no_event_is_lost() {
    let t = tmp("pct-notify-dribble-");
    let dir = t.path();
    let dribbler = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = dribbler.local_addr().unwrap().port();
    dribbler.set_nonblocking(true).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let conns = Arc::new(Mutex::new(0usize));
    let server = {
        let (stop, conns) = (stop.clone(), conns.clone());
        std::thread::spawn(move || {
            let t0 = Instant::now();
            let mut talkers = Vec::new();
            // bounded: 90 s at most, whatever the test does
            while !stop.load(Ordering::Relaxed) && t0.elapsed() < Duration::from_secs(90) {
                match dribbler.accept() {
                    Ok((mut c, _)) => {
                        *conns.lock().unwrap() += 1;
                        let stop = stop.clone();
                        talkers.push(std::thread::spawn(move || {
                            let t1 = Instant::now();
                            while !stop.load(Ordering::Relaxed)
                                && t1.elapsed() < Duration::from_secs(90)
                            {
                                if c.write_all(b"220-still here\r\n").is_err() {
                                    return;
                                }
                                // well within the 1 s read timeout, a stalled thread
                                // too (300 ms left 700 ms of room, review 32)
                                std::thread::sleep(Duration::from_millis(100));
                            }
                        }));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(50)),
                }
            }
            for h in talkers {
                let _ = h.join();
            }
        })
    };
    let mail = |port: u16| mail_table(port, "interval = \"1s\"\ntimeout = \"1s\"\n");
    let cfg = base_config(dir, &mail(port));
    let d = Daemon::start(&cfg, &dir.join("daemon1.log"));
    let log = dir.join("auth.log");
    append(&log, &failures("203.0.113.70", "root"));
    wait_for("the first ban", Duration::from_secs(10), || {
        d.log().contains("ban 203.0.113.70 ")
    });
    // 1 s interval, then 5 × 1 s of dribble: given up, and tried again 2 s later
    wait_for("the send given up", Duration::from_secs(20), || {
        d.log().contains("no end after 5s")
    });
    wait_for("a second try", Duration::from_secs(20), || {
        *conns.lock().unwrap() >= 2
    });
    // the second is given up too; then, two conversations still open, no third starts, and
    // the log says why (a review found the second waited for without a word)
    wait_for("the second send given up", Duration::from_secs(20), || {
        d.log().matches("no end after 5s").count() >= 2
    });
    wait_for(
        "no new send while two are open",
        Duration::from_secs(20),
        || d.log().contains("no new one until one of them ends"),
    );
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        *conns.lock().unwrap(),
        2,
        "a third conversation: {}",
        d.log()
    );
    // a ban while the server still dribbles, then the stop right after it
    append(&log, &failures("203.0.113.71", "root"));
    wait_for("the second ban", Duration::from_secs(10), || {
        d.log().contains("ban 203.0.113.71 ")
    });
    let t1 = Instant::now();
    let out = d.stop();
    assert!(
        t1.elapsed() < Duration::from_secs(10),
        "the stop waited for the mail server: {:?}\n{out}",
        t1.elapsed()
    );
    assert!(
        !out.contains("sent: "),
        "no mail can have been delivered: {out}"
    );
    stop.store(true, Ordering::Relaxed);
    server.join().unwrap();

    // the next start, with a server that works, mails both bans from the queue file
    let out_dir = dir.join("mails");
    fs::create_dir(&out_dir).unwrap();
    let port2 = free_port();
    let _smtp = smtp_start(dir, port2, &out_dir);
    let cfg = base_config(dir, &mail(port2));
    let d = Daemon::start(&cfg, &dir.join("daemon2.log"));
    wait_for(
        "the mail after the restart",
        Duration::from_secs(30),
        || !mails(&out_dir).is_empty(),
    );
    let m = mails(&out_dir);
    let body = m[0]["body"].as_str().unwrap();
    for a in ["203.0.113.70", "203.0.113.71"] {
        assert!(body.contains(a), "{a} is not in the mail: {body}");
    }
    d.stop();
}

/// Review 27: a broken mail setup showed first at the first ban, in the daemon's log.
/// `check-config --notify-test` sends a test message through each channel now and says what
/// came of it: the real SMTP server gets the mail; a port nobody listens on fails, exit 1.
#[test]
fn check_config_notify_test_sends_through_each_channel_and_says_what_failed() {
    let t = tmp("pct-notify-test-");
    let dir = t.path();
    let out = dir.join("mails");
    fs::create_dir(&out).unwrap();
    let port = free_port();
    let _smtp = smtp_start(dir, port, &out);
    let check = |cfg: &Path| {
        let mut c = Command::new(BIN);
        c.args(["check-config", "--notify-test", "-c"]).arg(cfg);
        run_with_timeout(&mut c, None, Duration::from_secs(60))
    };
    let cfg = base_config(dir, &mail_table(port, ""));
    let o = check(&cfg);
    assert!(o.success(), "{}{}", o.stdout_str(), o.stderr_str());
    assert!(
        o.stdout_str().contains(&format!(
            "notify test: mail via smtp://127.0.0.1:{port} to admin@example.org: sent"
        )),
        "{}",
        o.stdout_str()
    );
    wait_for("the test mail", Duration::from_secs(20), || {
        !mails(&out).is_empty()
    });
    let m = mails(&out);
    assert_eq!(m.len(), 1, "{m:#?}");
    assert!(
        m[0]["body"].as_str().unwrap().contains("test notification"),
        "{:#}",
        m[0]
    );
    // nobody at the port: said, exit 1
    let dead = free_port();
    let cfg = base_config(dir, &mail_table(dead, ""));
    let o = check(&cfg);
    assert_eq!(o.code(), Some(1), "{}{}", o.stdout_str(), o.stderr_str());
    assert!(o.stdout_str().contains(": FAILED: "), "{}", o.stdout_str());
    // nothing configured: said, exit 1
    let cfg = base_config(dir, "");
    let o = check(&cfg);
    assert_eq!(o.code(), Some(1));
    assert!(
        o.stderr_str().contains("nothing to send"),
        "{}",
        o.stderr_str()
    );
}

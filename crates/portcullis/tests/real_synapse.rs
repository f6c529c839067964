//! The `synapse` filter (filters/synapse.toml: rules password, unknown-user, unknown-3pid,
//! read from Synapse's JSON log only) against the real Matrix Synapse. Debian 12 has no
//! matrix-synapse in main, so test.sh installs the pinned release from PyPI with pip into a
//! venv of Debian's python3 under /var/cache/portcullis-test/synapse/venv
//! (PORTCULLIS_SYNAPSE_VENV elsewhere), never on the system.
//!
//! The test writes a minimal homeserver.yaml (server_name example.net, SQLite in its temporary
//! directory, one listener of type http on 192.0.2.1:8008 and [2001:db8::1]:8008 with the
//! client resource and `x_forwarded: false`, registration off, report_stats off, no trusted
//! key servers, bcrypt_rounds 4, rc_login address/account/failed_attempts at 1000/s with a
//! burst of 1000 so that Synapse's own rate limiter refuses none of the test's logins) and a
//! log config whose only handler writes with `synapse.logging.TerseJsonFormatter` to
//! homeserver.json (what the filter's header asks for). `--generate-keys` makes the signing
//! key; Synapse runs (foreground) in a server network namespace (192.0.2.1, 2001:db8::1);
//! `register_new_matrix_user` (the shared secret) creates @alice:example.net from the server's
//! own address.
//!
//! Clients in a second namespace (Debian's python3, urllib, a handler binding the source
//! address), one POST /_matrix/client/v3/login each, in order, every one answered 403
//! M_FORBIDDEN but the last:
//! * 203.0.113.10: wrong passwords for alice (as `alice`, `@alice:example.net`, `ALICE`);
//! * 203.0.113.11 and 2001:db8::11: unknown users;
//! * 203.0.113.12: unknown 3PIDs (identifier m.id.thirdparty, two e-mail addresses, one
//!   phone number);
//! * 203.0.113.13: injections, every request with `X-Forwarded-For: 192.0.2.66` (ignored:
//!   x_forwarded is off) and a User-Agent carrying a forged `"ip_address":"192.0.2.66"`:
//!   user ids carrying "from 192.0.2.66" and the legitimate address, quotes, backslashes, a
//!   CR LF and a whole forged record, the JSON fragment `","ip_address":"192.0.2.66`, the
//!   message's own end, and a 3PID medium carrying the fragment;
//! * 198.51.100.7, the legitimate client: alice's right password (200).
//!
//! Asserted: what Synapse wrote (every line one JSON object; the WARNING records of
//! synapse.handlers.auth are exactly the expected messages, in order, each with the
//! client's ip_address, and their keys in the order the filter reads: log, namespace, level,
//! time, server_name, request, ip_address, ...; the legitimate login logged); `portcullis test
//! --filter synapse --json` counts exactly those records, each with its client's address,
//! rule and user, and never 198.51.100.7, 192.0.2.66 or the server's address; `portcullis
//! replay` bans exactly the attackers at maxretry 3 (IPv6 as its /64), at 4 the two of four
//! and more, at 8 the one of eight, at 9 nobody.
//!
//! Needs root, python3 and the venv of test.sh; fails loudly when they are missing. Runs in
//! about 5 s.

mod common;

use common::*;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const SERVER: &str = "192.0.2.1";
const SERVER_V6: &str = "2001:db8::1";
const PORT: u16 = 8008;
const LEGIT: &str = "198.51.100.7";
/// The address the injections type into the user ids, headers and 3PID.
const INJECTED: &str = "192.0.2.66";
const PYTHON: &str = "/usr/bin/python3";
/// Where test.sh makes the venv (PORTCULLIS_SYNAPSE_VENV overrides it).
const SYNAPSE_VENV: &str = "/var/cache/portcullis-test/synapse/venv";
const FILTER: &str = "synapse";
const SERVER_NAME: &str = "example.net";
const SHARED_SECRET: &str = "pct-registration-shared-secret";
const PASSWORD: &str = "correct horse battery staple";

const PASSWORD_ATTACKER: &str = "203.0.113.10";
const USER_ATTACKER: &str = "203.0.113.11";
const USER_ATTACKER_V6: &str = "2001:db8::11";
const THREEPID_ATTACKER: &str = "203.0.113.12";
const INJECTOR: &str = "203.0.113.13";
const ATTACKERS: [&str; 5] = [
    PASSWORD_ATTACKER,
    USER_ATTACKER,
    USER_ATTACKER_V6,
    THREEPID_ATTACKER,
    INJECTOR,
];

/// The keys of a failure record, in the order Synapse writes them (TerseJsonFormatter, then
/// LoggingContextFilter's attributes): the filter reads them in this order.
const RECORD_KEYS: [&str; 14] = [
    "log",
    "namespace",
    "level",
    "time",
    "server_name",
    "request",
    "ip_address",
    "site_tag",
    "requester",
    "authenticated_entity",
    "method",
    "url",
    "protocol",
    "user_agent",
];

/// The login clients, run with Debian's python3 inside the client namespace: the attempts
/// of attempts.json (argv[1]) in order, each one POST with urllib through a handler that binds
/// the attempt's source address (no proxy), each bounded by a 10 s timeout. Exits non-zero
/// when an answer is not the expected one.
const CLIENT_PY: &str = r##"# Login clients of crates/portcullis/tests/real_synapse.rs (Debian's python3, urllib).
import functools
import http.client
import json
import sys
import urllib.error
import urllib.request


class BoundHTTPHandler(urllib.request.HTTPHandler):
    def __init__(self, src):
        super().__init__()
        self.src = src

    def http_open(self, req):
        conn = functools.partial(http.client.HTTPConnection, source_address=(self.src, 0))
        return self.do_open(conn, req)


errors = []
with open(sys.argv[1]) as f:
    attempts = json.load(f)
for i, a in enumerate(attempts):
    src = a["src"]
    host = "[2001:db8::1]" if ":" in src else "192.0.2.1"
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), BoundHTTPHandler(src))
    headers = {"Content-Type": "application/json"}
    headers.update(a["headers"])
    req = urllib.request.Request("http://%s:8008/_matrix/client/v3/login" % host,
                                 data=json.dumps(a["body"]).encode(), headers=headers,
                                 method="POST")
    try:
        with opener.open(req, timeout=10) as r:
            status, body = r.status, r.read()
    except urllib.error.HTTPError as e:
        status, body = e.code, e.read()
    except Exception as e:  # noqa: BLE001 - reported below, the test fails
        errors.append("attempt %d from %s: %r" % (i, src, e))
        continue
    try:
        answer = json.loads(body)
    except ValueError:
        answer = {}
    if status != a["status"]:
        errors.append("attempt %d from %s: status %d, expected %d: %r"
                      % (i, src, status, a["status"], body[:300]))
    elif status == 403 and answer.get("errcode") != "M_FORBIDDEN":
        errors.append("attempt %d from %s: %r" % (i, src, body[:300]))
    elif status == 200 and answer.get("user_id") != "@alice:example.net":
        errors.append("attempt %d from %s: logged in as %r" % (i, src, answer.get("user_id")))
for e in errors:
    print("client error:", e, file=sys.stderr)
sys.exit(1 if errors else 0)
"##;

/// One login attempt, and what Synapse must log for it.
struct Attempt {
    src: &'static str,
    body: Value,
    headers: Vec<(&'static str, String)>,
    status: u16,
    /// The WARNING record's "log" text and the rule that must count it (None: the
    /// legitimate login, no failure record).
    failure: Option<(String, &'static str)>,
    /// The user the filter must give (None: no user).
    user: Option<String>,
}

fn password_login(identifier: Value, password: &str) -> Value {
    json!({"type": "m.login.password", "identifier": identifier, "password": password})
}

/// A user id as Synapse qualifies it (validate_login: "@" + ... + ":" + server_name unless
/// it starts with "@").
fn qualified(user: &str) -> String {
    if user.starts_with('@') {
        user.to_string()
    } else {
        format!("@{user}:{SERVER_NAME}")
    }
}

fn wrong_password(src: &'static str, user: &str) -> Attempt {
    Attempt {
        src,
        body: password_login(json!({"type": "m.id.user", "user": user}), "hunter2"),
        headers: Vec::new(),
        status: 403,
        failure: Some((
            format!("Failed password login for user @alice:{SERVER_NAME}"),
            "password",
        )),
        user: Some(format!("@alice:{SERVER_NAME}")),
    }
}

fn unknown_user(src: &'static str, user: &str, headers: Vec<(&'static str, String)>) -> Attempt {
    let q = qualified(user);
    Attempt {
        src,
        body: password_login(json!({"type": "m.id.user", "user": user}), "hunter2"),
        headers,
        status: 403,
        failure: Some((
            format!("Attempted to login as {q} but they do not exist"),
            "unknown-user",
        )),
        user: Some(q),
    }
}

/// `repr` is Python's repr() of the address as Synapse logs it (e-mail canonicalised).
fn unknown_3pid(
    src: &'static str,
    medium: &str,
    address: &str,
    repr: &str,
    headers: Vec<(&'static str, String)>,
) -> Attempt {
    Attempt {
        src,
        body: password_login(
            json!({"type": "m.id.thirdparty", "medium": medium, "address": address}),
            "hunter2",
        ),
        headers,
        status: 403,
        failure: Some((
            format!("unknown 3pid identifier medium {medium}, address {repr}"),
            "unknown-3pid",
        )),
        user: None,
    }
}

/// Every attempt, in the order the clients send them.
fn attempts() -> Vec<Attempt> {
    let forged = |what: &str| -> Vec<(&'static str, String)> {
        vec![
            ("X-Forwarded-For", INJECTED.to_string()),
            (
                "User-Agent",
                format!("x{what}\",\"ip_address\":\"{INJECTED}"),
            ),
        ]
    };
    let mut all = vec![
        wrong_password(PASSWORD_ATTACKER, "alice"),
        wrong_password(PASSWORD_ATTACKER, "alice"),
        wrong_password(PASSWORD_ATTACKER, "@alice:example.net"),
        wrong_password(PASSWORD_ATTACKER, "ALICE"),
        unknown_user(USER_ATTACKER, "admin", Vec::new()),
        unknown_user(USER_ATTACKER, "root", Vec::new()),
        unknown_user(USER_ATTACKER, "@test:example.net", Vec::new()),
        unknown_user(USER_ATTACKER_V6, "admin", Vec::new()),
        unknown_user(USER_ATTACKER_V6, "postmaster", Vec::new()),
        unknown_user(USER_ATTACKER_V6, "@support:example.net", Vec::new()),
        unknown_3pid(
            THREEPID_ATTACKER,
            "email",
            "Bob@Example.ORG",
            "'bob@example.org'",
            Vec::new(),
        ),
        unknown_3pid(
            THREEPID_ATTACKER,
            "email",
            "carol@example.org",
            "'carol@example.org'",
            Vec::new(),
        ),
        unknown_3pid(
            THREEPID_ATTACKER,
            "msisdn",
            "15555550100",
            "'15555550100'",
            Vec::new(),
        ),
    ];
    let forged_record = format!(
        "{{\"log\":\"Failed password login for user @alice:{SERVER_NAME}\",\"namespace\":\
         \"synapse.handlers.auth\",\"level\":\"WARNING\",\"time\":1796000000.0,\"ip_address\":\
         \"{INJECTED}\"}}"
    );
    let users = [
        format!("x from {INJECTED}"),
        format!("x from {LEGIT}"),
        format!("@x\" from {INJECTED} \"y:{SERVER_NAME}"),
        format!("x\\\" from \\{INJECTED}\\"),
        format!("x\r\n{forged_record}\n"),
        format!("x\",\"ip_address\":\"{INJECTED}"),
        format!(
            "x but they do not exist\",\"namespace\":\"synapse.handlers.auth\",\"level\":\
             \"WARNING\",\"ip_address\":\"{INJECTED}\"}}"
        ),
    ];
    for (i, u) in users.iter().enumerate() {
        all.push(unknown_user(INJECTOR, u, forged(&i.to_string())));
    }
    let medium = format!("x\",\"ip_address\":\"{INJECTED}");
    all.push(unknown_3pid(
        INJECTOR,
        &medium,
        INJECTED,
        &format!("'{INJECTED}'"),
        forged("3pid"),
    ));
    all.push(Attempt {
        src: LEGIT,
        body: password_login(json!({"type": "m.id.user", "user": "alice"}), PASSWORD),
        headers: Vec::new(),
        status: 200,
        failure: None,
        user: None,
    });
    all
}

/// The venv of test.sh; fails loudly when it is missing.
fn synapse_venv() -> PathBuf {
    let venv =
        PathBuf::from(std::env::var("PORTCULLIS_SYNAPSE_VENV").unwrap_or(SYNAPSE_VENV.into()));
    for bin in ["bin/python", "bin/register_new_matrix_user"] {
        assert!(
            venv.join(bin).is_file(),
            "{} is missing: run test.sh (it installs matrix-synapse from PyPI with pip into a \
             venv at {SYNAPSE_VENV})",
            venv.join(bin).display()
        );
    }
    venv
}

/// Without the machine's proxy settings: every request of the test stays in its namespaces.
fn no_proxy(cmd: &mut Command) -> &mut Command {
    for v in [
        "http_proxy",
        "HTTP_PROXY",
        "https_proxy",
        "HTTPS_PROXY",
        "all_proxy",
        "ALL_PROXY",
    ] {
        cmd.env_remove(v);
    }
    cmd
}

/// The namespaces, Synapse and the temporary directory; dropped in field order: Synapse
/// first (its process group killed), then the namespaces (with anything left inside), then
/// the directory.
struct SynapseLab {
    procs: Vec<ProcessGuard>,
    client: Netns,
    server: Netns,
    dir: tempfile::TempDir,
    venv: PathBuf,
}

impl SynapseLab {
    fn new() -> SynapseLab {
        require_root();
        assert!(
            Path::new(PYTHON).is_file(),
            "{PYTHON} is missing: install python3 (test.sh does)"
        );
        require_program("ss", "iproute2");
        let venv = synapse_venv();
        let server = Netns::new("syn-srv");
        let client = Netns::new("syn-cli");
        let dir = tempfile::Builder::new()
            .prefix("pct-synapse-")
            .tempdir()
            .expect("temp dir");
        let lab = SynapseLab {
            procs: Vec::new(),
            client,
            server,
            dir,
            venv,
        };
        let attackers: Vec<String> = ATTACKERS.iter().map(|a| a.to_string()).collect();
        wire_server_and_clients(
            &lab.server,
            &lab.client,
            (SERVER, SERVER_V6),
            LEGIT,
            &attackers,
        );
        lab
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn log(&self) -> PathBuf {
        self.path("homeserver.json")
    }

    fn log_text(&self) -> String {
        String::from_utf8_lossy(&fs::read(self.log()).unwrap_or_default()).into_owned()
    }

    /// homeserver.yaml, log.yaml, the clients and their attempts; the signing key with
    /// Synapse's `--generate-keys`.
    fn configure(&self, attempts: &[Attempt]) {
        let d = self.dir.path().to_str().expect("utf-8 path");
        fs::write(
            self.path("homeserver.yaml"),
            format!(
                "server_name: {SERVER_NAME}\n\
                 pid_file: {d}/homeserver.pid\n\
                 public_baseurl: http://{SERVER}:{PORT}/\n\
                 listeners:\n\
                 \x20 - port: {PORT}\n\
                 \x20   tls: false\n\
                 \x20   type: http\n\
                 \x20   x_forwarded: false\n\
                 \x20   bind_addresses: ['{SERVER}', '{SERVER_V6}']\n\
                 \x20   resources:\n\
                 \x20     - names: [client]\n\
                 \x20       compress: false\n\
                 database:\n\
                 \x20 name: sqlite3\n\
                 \x20 args:\n\
                 \x20   database: {d}/homeserver.db\n\
                 log_config: {d}/log.yaml\n\
                 media_store_path: {d}/media_store\n\
                 signing_key_path: {d}/{SERVER_NAME}.signing.key\n\
                 registration_shared_secret: \"{SHARED_SECRET}\"\n\
                 macaroon_secret_key: \"pct-macaroon-secret\"\n\
                 form_secret: \"pct-form-secret\"\n\
                 enable_registration: false\n\
                 report_stats: false\n\
                 enable_metrics: false\n\
                 trusted_key_servers: []\n\
                 suppress_key_server_warning: true\n\
                 bcrypt_rounds: 4\n\
                 rc_login:\n\
                 \x20 address: {{per_second: 1000, burst_count: 1000}}\n\
                 \x20 account: {{per_second: 1000, burst_count: 1000}}\n\
                 \x20 failed_attempts: {{per_second: 1000, burst_count: 1000}}\n"
            ),
        )
        .unwrap();
        fs::write(
            self.path("log.yaml"),
            format!(
                "version: 1\n\
                 formatters:\n\
                 \x20 structured:\n\
                 \x20   class: synapse.logging.TerseJsonFormatter\n\
                 handlers:\n\
                 \x20 json:\n\
                 \x20   class: logging.FileHandler\n\
                 \x20   formatter: structured\n\
                 \x20   filename: {d}/homeserver.json\n\
                 \x20   encoding: utf8\n\
                 root:\n\
                 \x20 level: INFO\n\
                 \x20 handlers: [json]\n\
                 disable_existing_loggers: false\n"
            ),
        )
        .unwrap();
        fs::write(self.path("client.py"), CLIENT_PY).unwrap();
        let list: Vec<Value> = attempts
            .iter()
            .map(|a| {
                let headers: serde_json::Map<String, Value> = a
                    .headers
                    .iter()
                    .map(|(k, v)| (k.to_string(), Value::from(v.as_str())))
                    .collect();
                json!({"src": a.src, "body": a.body, "headers": headers, "status": a.status})
            })
            .collect();
        fs::write(
            self.path("attempts.json"),
            serde_json::to_vec(&list).unwrap(),
        )
        .unwrap();

        let mut keys = Command::new(self.venv.join("bin/python"));
        keys.args(["-m", "synapse.app.homeserver", "--config-path"])
            .arg(self.path("homeserver.yaml"))
            .arg("--generate-keys")
            .current_dir(self.dir.path());
        run_with_timeout(&mut keys, None, Duration::from_secs(60)).check();
        assert!(
            self.path(&format!("{SERVER_NAME}.signing.key")).is_file(),
            "--generate-keys wrote no signing key"
        );
    }

    /// Starts Synapse in the server namespace and waits until it listens on both addresses
    /// and has logged so.
    fn start_synapse(&mut self) {
        let python = self.venv.join("bin/python");
        let mut cmd = self.server.command(
            python.to_str().expect("utf-8 path"),
            &[
                "-m",
                "synapse.app.homeserver",
                "--config-path",
                self.path("homeserver.yaml").to_str().unwrap(),
            ],
        );
        no_proxy(&mut cmd)
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(fs::File::create(self.path("synapse.stdout")).unwrap())
            .stderr(fs::File::create(self.path("synapse.stderr")).unwrap());
        let mut proc = ProcessGuard::spawn(cmd, "synapse");
        let up = wait_until(Duration::from_secs(60), || {
            proc.try_wait().is_some()
                || (self.server.listens_on(PORT, SERVER, SERVER_V6)
                    && self
                        .log_text()
                        .contains(&format!("\"Synapse now listening on TCP port {PORT}\"")))
        });
        if !up || proc.try_wait().is_some() {
            panic!(
                "Synapse did not come up (exit {:?}); stderr: {}\nlog:\n{}",
                proc.try_wait(),
                fs::read_to_string(self.path("synapse.stderr")).unwrap_or_default(),
                self.log_text()
            );
        }
        self.procs.push(proc);
    }

    /// alice, with `register_new_matrix_user` and the shared secret, from the server's
    /// namespace (its requests come from 192.0.2.1).
    fn register_alice(&self) {
        let tool = self.venv.join("bin/register_new_matrix_user");
        let url = format!("http://{SERVER}:{PORT}");
        let mut cmd = self.server.command(
            tool.to_str().expect("utf-8 path"),
            &[
                "-u",
                "alice",
                "-p",
                PASSWORD,
                "--no-admin",
                "-k",
                SHARED_SECRET,
                url.as_str(),
            ],
        );
        let out = run_with_timeout(no_proxy(&mut cmd), None, Duration::from_secs(30));
        assert!(
            out.success() && out.stdout_str().contains("Success"),
            "register_new_matrix_user failed (timed out: {}): {}\n{}\nlog:\n{}",
            out.timed_out,
            out.stdout_str(),
            out.stderr_str(),
            self.log_text()
        );
    }

    /// Runs the clients, then waits until Synapse has logged every login request (its
    /// access log line comes last) and the log has stopped growing.
    fn attack(&self, n: usize) {
        let out = self.client.exec_timeout(
            PYTHON,
            &[self.path("client.py"), self.path("attempts.json")],
            Duration::from_secs(60),
        );
        assert!(
            out.success(),
            "the login clients failed (timed out: {}): {}\n{}\nlog:\n{}",
            out.timed_out,
            out.stdout_str(),
            out.stderr_str(),
            self.log_text()
        );
        let done = wait_until(Duration::from_secs(20), || {
            self.log_text()
                .lines()
                .filter(|l| {
                    l.contains("\"namespace\":\"synapse.access.http.")
                        && l.contains("\"url\":\"/_matrix/client/v3/login\"")
                })
                .count()
                >= n
        });
        assert!(
            done,
            "Synapse did not log the {n} login requests\nlog:\n{}",
            self.log_text()
        );
        let size = || fs::metadata(self.log()).map(|m| m.len()).unwrap_or(0);
        let mut last = size();
        for _ in 0..20 {
            std::thread::sleep(Duration::from_millis(150));
            let now = size();
            if now == last {
                break;
            }
            last = now;
        }
    }
}

/// The top-level keys of a flat JSON object's text, in order (strings, null and numbers as
/// values: what Synapse writes).
fn keys_in_order(line: &str) -> Vec<String> {
    let mut keys = Vec::new();
    let (mut in_str, mut esc, mut depth) = (false, false, 0);
    let mut expect_key = false;
    let mut cur: Option<String> = None;
    for c in line.chars() {
        if in_str {
            if esc {
                esc = false;
            } else if c == '\\' {
                esc = true;
            } else if c == '"' {
                in_str = false;
                if let Some(k) = cur.take() {
                    keys.push(k);
                }
                continue;
            }
            if let Some(k) = cur.as_mut() {
                k.push(c);
            }
            continue;
        }
        match c {
            '"' => {
                in_str = true;
                if expect_key && depth == 1 {
                    cur = Some(String::new());
                }
                expect_key = false;
            }
            '{' | '[' => {
                depth += 1;
                expect_key = depth == 1;
            }
            '}' | ']' => depth -= 1,
            ',' => expect_key = depth == 1,
            _ => {}
        }
    }
    keys
}

fn bans(hosts: &[&str]) -> BTreeSet<String> {
    hosts.iter().map(|h| ban_of(h)).collect()
}

#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn real_synapse_failed_logins_give_the_attackers_and_only_them() {
    let started = Instant::now();
    let attempts = attempts();
    let mut lab = SynapseLab::new();
    lab.configure(&attempts);
    lab.start_synapse();
    lab.register_alice();
    lab.attack(attempts.len());

    // a snapshot: what every check below reads
    let log = lab.path("synapse.json");
    fs::copy(lab.log(), &log).expect("log snapshot");
    let text = fs::read_to_string(&log).expect("the log is UTF-8");
    let version = text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find_map(|v| {
            let m = v["log"].as_str()?;
            m.starts_with("Server ")
                .then(|| m.rsplit_once(" version ").map(|(_, v)| v.to_string()))?
        })
        .unwrap_or_default();
    eprintln!("real_synapse: Synapse {version}");
    assert!(
        !version.is_empty(),
        "Synapse logged no version\nlog:\n{text}"
    );
    // test.sh's stamp: the version, then a digest of the pinned dependencies
    if let Ok(stamp) = fs::read_to_string(lab.venv.join("../version")) {
        assert_eq!(
            version,
            stamp.split_whitespace().next().unwrap_or_default(),
            "the venv holds another Synapse than test.sh pinned"
        );
    }

    // ---- what Synapse wrote ----
    let records: Vec<Value> = text
        .lines()
        .map(|l| {
            serde_json::from_str(l).unwrap_or_else(|e| {
                panic!("a line that is no JSON object ({e}): {l}\nlog:\n{text}")
            })
        })
        .collect();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines.len(),
        text.split_terminator('\n').count(),
        "one record per line"
    );
    let failures: Vec<(usize, &Value)> = records
        .iter()
        .enumerate()
        .filter(|(_, r)| r["namespace"] == "synapse.handlers.auth" && r["level"] == "WARNING")
        .collect();
    let got: Vec<(String, String)> = failures
        .iter()
        .map(|(_, r)| {
            (
                r["ip_address"].as_str().unwrap_or("(none)").to_string(),
                r["log"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    let want: Vec<(String, String)> = attempts
        .iter()
        .filter_map(|a| Some((a.src.to_string(), a.failure.as_ref()?.0.clone())))
        .collect();
    assert_eq!(
        got, want,
        "Synapse's WARNING records of synapse.handlers.auth (ip_address, log) differ from the \
         expected ones\nlog:\n{text}"
    );
    for (i, r) in &failures {
        assert_eq!(
            keys_in_order(lines[*i]),
            RECORD_KEYS,
            "a failure record's keys are not in the order the filter reads: {}",
            lines[*i]
        );
        assert!(
            r["server_name"] == SERVER_NAME
                && r["method"] == "POST"
                && r["url"] == "/_matrix/client/v3/login"
                && r["time"].as_f64().is_some_and(|t| t > 1.0e9)
                && r["request"]
                    .as_str()
                    .is_some_and(|q| q.starts_with("POST-")),
            "a failure record: {}",
            lines[*i]
        );
    }
    // the legitimate login, from its own address
    assert!(
        records.iter().any(|r| {
            r["ip_address"] == LEGIT
                && r["log"]
                    .as_str()
                    .is_some_and(|m| m.starts_with("Logging in user @alice:example.net on device "))
        }),
        "Synapse logged no login of alice from {LEGIT}\nlog:\n{text}"
    );
    // x_forwarded is off: the forged X-Forwarded-For never becomes an ip_address
    assert!(
        records
            .iter()
            .all(|r| r["ip_address"].as_str() != Some(INJECTED)),
        "Synapse took {INJECTED} (the X-Forwarded-For) as a client's address\nlog:\n{text}"
    );

    // ---- portcullis test ----
    let results = test_json(FILTER, &log);
    assert_eq!(results.len(), lines.len(), "one JSON object per log line");
    let matched: Vec<(usize, &Value)> = results
        .iter()
        .enumerate()
        .filter(|(_, v)| v["matched"].as_bool() == Some(true))
        .collect();
    let shown: Vec<String> = matched
        .iter()
        .map(|(i, v)| format!("  {} {} {}: {}", v["host"], v["rule"], v["user"], lines[*i]))
        .collect();
    let shown = shown.join("\n");
    for (i, v) in &matched {
        let host = v["host"].as_str().unwrap_or_default();
        assert!(
            host != LEGIT && host != INJECTED && host != SERVER,
            "{host} (the legitimate client, the injected address or the server) reported from: \
             {}\nall matches:\n{shown}",
            lines[*i]
        );
    }
    let failure_lines: Vec<usize> = failures.iter().map(|(i, _)| *i).collect();
    let matched_lines: Vec<usize> = matched.iter().map(|(i, _)| *i).collect();
    assert_eq!(
        matched_lines, failure_lines,
        "the filter matched other lines than Synapse's failure records\nmatches:\n{shown}\n\
         log:\n{text}"
    );
    let expected: Vec<&Attempt> = attempts.iter().filter(|a| a.failure.is_some()).collect();
    for ((i, v), a) in matched.iter().zip(&expected) {
        let rule = a.failure.as_ref().map(|f| f.1).unwrap_or_default();
        assert!(
            v["host"] == a.src && v["rule"] == rule && v["weight"].as_u64().unwrap_or(1) == 1,
            "expected {} by rule {rule}, got {v}: {}\nall matches:\n{shown}",
            a.src,
            lines[*i]
        );
        // the user as Synapse wrote it: portcullis gives the text inside the JSON string,
        // its escapes kept (or unescaped, should it ever decode them)
        match &a.user {
            Some(u) => {
                let escaped = serde_json::to_string(u).unwrap();
                let escaped = &escaped[1..escaped.len() - 1];
                assert!(
                    v["user"] == escaped || v["user"] == u.as_str(),
                    "user {} for {u:?}: {}",
                    v["user"],
                    lines[*i]
                );
            }
            None => assert!(v["user"].is_null(), "a user for a 3PID: {v}"),
        }
        assert!(!v["time"].is_null(), "no time read from {}", lines[*i]);
    }

    // ---- portcullis replay ----
    // counts: 203.0.113.10 4, 203.0.113.11 3, 2001:db8::11 3, 203.0.113.12 3, 203.0.113.13 8
    let dir = lab.dir.path();
    assert_eq!(
        replay_jail(dir, FILTER, &log, "normal", 3),
        bans(&ATTACKERS),
        "replay (maxretry 3) banned other addresses than the attackers\nmatches:\n{shown}"
    );
    assert_eq!(
        replay_jail(dir, FILTER, &log, "normal", 4),
        bans(&[PASSWORD_ATTACKER, INJECTOR]),
        "replay (maxretry 4)\nmatches:\n{shown}"
    );
    assert_eq!(
        replay_jail(dir, FILTER, &log, "normal", 8),
        bans(&[INJECTOR]),
        "replay (maxretry 8)\nmatches:\n{shown}"
    );
    assert_eq!(
        replay_jail(dir, FILTER, &log, "normal", 9),
        BTreeSet::new(),
        "replay (maxretry 9)\nmatches:\n{shown}"
    );

    drop(lab);
    eprintln!("real_synapse: done in {:?}", started.elapsed());
}

//! Issue 11: Apache httpd lines the fail2ban corpus showed we missed, made by the real server.
//!
//! * 2.4.49+ refuses a path climbing above the root with `AH10244: invalid URI path (URI)`
//!   in its error log (server/request.c): the path-traversal probes of CVE-2021-41773 and
//!   CVE-2021-42013 (`/cgi-bin/.%2e/...`, `%%32%65`). `apache-overflows` counts them.
//! * An access log with the virtual host in front of the client (`%v %h ...`, and Debian's
//!   `vhost_combined`, `%v:%p %h ...`). `apache-badbots` reads both.
//!
//! `apache_lines_are_read_with_the_client_address` runs Debian's Apache (`/usr/sbin/apache2`,
//! own configuration, logs and runtime files in a temporary directory, listening on a free
//! loopback port) and sends, from 127.0.0.1, traversal probes and requests with scanner
//! user agents, plus the same with text forging a line naming 198.51.100.7 in the path, the
//! Basic user name (which the access log writes as `%u`, spaces kept) and the User-Agent.
//! It checks that the filters recognise the real lines with host 127.0.0.1 and that no match
//! ever names another host.
//!
//! Needs the `apache2` package (Debian 12's 2.4); fails, does not skip, without it. Apache is
//! stopped on every path (its process group is killed when the guard drops).

mod common;

use common::{wait_until, ProcessGuard};
use serde_json::Value;
use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_portcullis");
const APACHE: &str = "/usr/sbin/apache2";
/// The address every forged text names; it must never be reported.
const FORGED: &str = "198.51.100.7";

/// A running Apache in its own temporary directory; stopped, then the directory removed.
struct Apache {
    proc: ProcessGuard,
    dir: tempfile::TempDir,
    port: u16,
}

impl Apache {
    /// Starts Apache on a free loopback port (a few tries: another test may take the port
    /// between our probe and Apache's bind).
    fn start() -> Apache {
        assert!(
            Path::new(APACHE).is_file(),
            "{APACHE} is missing: install Debian's apache2 package (./test.sh does)"
        );
        let mut last_err = String::new();
        for _ in 0..5 {
            let dir = tempfile::Builder::new()
                .prefix("pct-apache-")
                .tempdir()
                .expect("temp dir");
            // the workers run as www-data: they must read the site
            fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
            let port = free_port();
            write_site(dir.path(), port);
            let mut cmd = Command::new(APACHE);
            cmd.arg("-f")
                .arg(dir.path().join("httpd.conf"))
                .args(["-D", "FOREGROUND"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped());
            let mut proc = ProcessGuard::spawn(cmd, "apache2");
            let up = wait_until(Duration::from_secs(10), || {
                proc.try_wait().is_some() || TcpStream::connect(("127.0.0.1", port)).is_ok()
            });
            if up && proc.try_wait().is_none() {
                return Apache { proc, dir, port };
            }
            last_err = fs::read_to_string(dir.path().join("error.log")).unwrap_or_default();
            if let Some(mut e) = proc.child_mut().stderr.take() {
                let _ = e.read_to_string(&mut last_err);
            }
            proc.kill();
        }
        panic!("apache2 did not start:\n{last_err}");
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn read(&self, name: &str) -> String {
        String::from_utf8_lossy(&fs::read(self.path(name)).unwrap()).into_owned()
    }

    /// A GET of `path` (sent as is) with extra header lines; returns the status code (0
    /// when Apache closed without an answer).
    fn get(&self, path: &str, headers: &[(&str, &str)]) -> u16 {
        let mut req = format!("GET {path} HTTP/1.1\r\nHost: www.example.com\r\n");
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("Connection: close\r\n\r\n");
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).expect("connect to apache");
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(req.as_bytes()).expect("send request");
        let mut answer = Vec::new();
        let _ = s.take(1 << 20).read_to_end(&mut answer);
        let head = String::from_utf8_lossy(&answer[..answer.len().min(64)]).into_owned();
        head.split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0)
    }
}

impl Drop for Apache {
    fn drop(&mut self) {
        // before the fields drop: the process goes before its directory
        self.proc.kill();
    }
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind a probe socket");
    l.local_addr().unwrap().port()
}

/// The configuration, an (empty) password file and a tiny site in `dir`.
fn write_site(dir: &Path, port: u16) {
    let d = dir.display();
    let conf = format!(
        "ServerRoot /usr/lib/apache2\n\
         LoadModule mpm_event_module modules/mod_mpm_event.so\n\
         LoadModule authz_core_module modules/mod_authz_core.so\n\
         LoadModule authz_user_module modules/mod_authz_user.so\n\
         LoadModule authn_core_module modules/mod_authn_core.so\n\
         LoadModule authn_file_module modules/mod_authn_file.so\n\
         LoadModule auth_basic_module modules/mod_auth_basic.so\n\
         LoadModule alias_module modules/mod_alias.so\n\
         LoadModule dir_module modules/mod_dir.so\n\
         DirectoryIndex index.html\n\
         DefaultRuntimeDir {d}\n\
         PidFile {d}/httpd.pid\n\
         Mutex file:{d} default\n\
         Listen 127.0.0.1:{port}\n\
         ServerName www.example.com\n\
         User www-data\n\
         Group www-data\n\
         DocumentRoot {d}/htdocs\n\
         ErrorLog {d}/error.log\n\
         LogLevel info\n\
         LogFormat \"%v %h %l %u %t \\\"%r\\\" %>s %O \\\"%{{Referer}}i\\\" \\\"%{{User-Agent}}i\\\"\" vhost_noport\n\
         LogFormat \"%v:%p %h %l %u %t \\\"%r\\\" %>s %O \\\"%{{Referer}}i\\\" \\\"%{{User-Agent}}i\\\"\" vhost_combined\n\
         CustomLog {d}/access.log vhost_noport\n\
         CustomLog {d}/access-port.log vhost_combined\n\
         <Directory />\n  Require all granted\n</Directory>\n\
         <Location /private/>\n  AuthType Basic\n  AuthName private\n  AuthUserFile {d}/htpasswd\n  Require valid-user\n</Location>\n\
         ScriptAlias /cgi-bin/ {d}/htdocs/cgi-bin/\n"
    );
    fs::write(dir.join("httpd.conf"), conf).unwrap();
    fs::write(dir.join("htpasswd"), "").unwrap();
    for sub in ["htdocs", "htdocs/cgi-bin", "htdocs/private"] {
        fs::create_dir_all(dir.join(sub)).unwrap();
        fs::set_permissions(dir.join(sub), fs::Permissions::from_mode(0o755)).unwrap();
    }
    fs::write(dir.join("htdocs/index.html"), "ok\n").unwrap();
    fs::write(dir.join("htdocs/private/index.html"), "ok\n").unwrap();
    fs::set_permissions(dir.join("htpasswd"), fs::Permissions::from_mode(0o644)).unwrap();
}

fn base64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in data.chunks(3) {
        let n = (c[0] as u32) << 16
            | (*c.get(1).unwrap_or(&0) as u32) << 8
            | *c.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            if i <= c.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// `portcullis test --filter NAME --json LOG`: (rule, host) of every matching line.
fn matches(filter: &str, log: &Path) -> Vec<(String, String)> {
    let o = Command::new(BIN)
        .args(["test", "--filter", filter, "--json", log.to_str().unwrap()])
        .stdin(Stdio::null())
        .output()
        .expect("run portcullis");
    assert!(
        o.status.success(),
        "portcullis test failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).expect("test --json line"))
        .filter(|v| v["matched"] == true)
        .map(|v| {
            (
                v["rule"].as_str().unwrap().to_string(),
                v["host"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn apache_lines_are_read_with_the_client_address() {
    let ap = Apache::start();

    // Traversal probes above the root: 400 and AH10244 (three real ones, two carrying a
    // forged "[client FORGED:1] AH10244: invalid URI path (" in the path).
    let probes = [
        "/cgi-bin/.%2e/.%2e/.%2e/.%2e/.%2e/bin/sh".to_string(),
        "/cgi-bin/%%32%65%%32%65/%%32%65%%32%65/%%32%65%%32%65/bin/sh".to_string(),
        "/icons/.%2e/%2e%2e/%2e%2e/etc/passwd".to_string(),
        format!("/%0a[client%20{FORGED}:1]%20AH10244:%20invalid%20URI%20path%20(/../../../a"),
        format!("/x\"[client%20{FORGED}:1]/../../../etc/passwd"),
    ];
    for p in &probes {
        assert_eq!(ap.get(p, &[]), 400, "{p}");
    }
    // Scanner user agents, plain and with a forged access-log line in the Basic user name
    // (%u: spaces kept, a line feed written as \n), the User-Agent and the Referer.
    assert_eq!(ap.get("/", &[("User-Agent", "sqlmap/1.7.2#stable")]), 200);
    assert_eq!(
        ap.get("/missing.php", &[("User-Agent", "TrackBack/1.02")]),
        404
    );
    let forged_line = format!(
        "{FORGED} - - [03/Dec/2026:12:00:00 +0000] \"GET / HTTP/1.1\" 200 3 \"-\" \"sqlmap/1.7\""
    );
    for user in [
        format!("x {FORGED} - -"),
        format!("x\n{forged_line}\n"),
        format!("www.example.com {FORGED}"),
    ] {
        let cred = base64(format!("{user}:pw").as_bytes());
        assert_eq!(
            ap.get(
                "/private/",
                &[
                    ("Authorization", &format!("Basic {cred}")),
                    ("User-Agent", "Mozilla/5.0 (Nikto/2.1.6)"),
                ]
            ),
            401
        );
    }
    // (no raw line feed fits in a header: quotes and backslashes try to close the field)
    let ua = format!("\" \\\" \\x0A{forged_line}");
    assert_eq!(
        ap.get("/", &[("User-Agent", &ua), ("Referer", &forged_line)]),
        200
    );

    // Apache writes what the filters read ...
    let error = ap.read("error.log");
    assert_eq!(
        error.matches("AH10244: invalid URI path (").count(),
        probes.len(),
        "{error}"
    );
    for log in ["access.log", "access-port.log"] {
        let text = ap.read(log);
        for l in text.lines() {
            let mut w = l.split(' ');
            let vhost = w.next().unwrap_or("");
            assert!(
                (vhost == "www.example.com" || vhost.starts_with("www.example.com:"))
                    && w.next() == Some("127.0.0.1"),
                "{log}: {l:?}"
            );
        }
        assert!(text.contains(&format!("x {FORGED} - -")), "{text}");
    }

    // ... and the filters read it with the client's address, never the forged one.
    let over = matches("apache-overflows", &ap.path("error.log"));
    assert_eq!(
        over.iter()
            .filter(|(r, h)| r == "invalid-uri" && h == "127.0.0.1")
            .count(),
        probes.len(),
        "{over:?}"
    );
    for log in ["access.log", "access-port.log"] {
        let bots = matches("apache-badbots", &ap.path(log));
        // sqlmap, TrackBack, three Nikto requests, and the forged-line User-Agent (its text
        // holds "sqlmap": a bad agent sent by 127.0.0.1)
        assert_eq!(bots.len(), 6, "{log}: {bots:?}");
        assert!(
            bots.iter()
                .all(|(r, h)| r == "bad-agent" && h == "127.0.0.1"),
            "{log}: {bots:?}"
        );
    }
    for (name, log) in [
        ("apache-overflows", "error.log"),
        ("apache-auth", "error.log"),
        ("apache-botsearch", "access.log"),
        ("apache-botsearch", "access-port.log"),
    ] {
        for (rule, host) in matches(name, &ap.path(log)) {
            assert_eq!(host, "127.0.0.1", "{name} rule {rule} on {log} took {host}");
        }
    }
}

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

use common::{base64, test_json, LocalServer};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};

const APACHE: &str = "/usr/sbin/apache2";
/// The address every forged text names; it must never be reported.
const FORGED: &str = "198.51.100.7";

/// Debian's Apache from its own temporary directory, on a free loopback port.
struct Apache(LocalServer);

impl std::ops::Deref for Apache {
    type Target = LocalServer;
    fn deref(&self) -> &LocalServer {
        &self.0
    }
}

impl Apache {
    fn start() -> Apache {
        Apache(LocalServer::start(
            APACHE,
            "apache2",
            "error.log",
            |dir, port| {
                write_site(dir, port);
                let mut cmd = Command::new(APACHE);
                cmd.arg("-f")
                    .arg(dir.join("httpd.conf"))
                    .args(["-D", "FOREGROUND"])
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped());
                cmd
            },
        ))
    }

    /// A GET of `path` (sent as is) with extra header lines; the status code (0 when
    /// Apache closed without an answer).
    fn get(&self, path: &str, headers: &[(&str, &str)]) -> u16 {
        self.0.get("www.example.com", path, headers)
    }
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

/// `portcullis test --filter NAME --json LOG`: (rule, host) of every matching line.
fn matches(filter: &str, log: &Path) -> Vec<(String, String)> {
    test_json(filter, log)
        .into_iter()
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

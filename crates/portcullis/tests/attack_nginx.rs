//! Issue 9, finding 1: forged lines in nginx's logs must never get an address banned.
//!
//! nginx writes the decoded request path and the Basic user name into its error log
//! unescaped, so `%0a` in a path (or a line feed in the user name) starts a physical line of
//! the client's choosing there. The nginx filters (`nginx-http-auth`, `nginx-limit-req`,
//! `nginx-botsearch`, `nginx-bad-request`, `nginx-forbidden`) therefore read only the access
//! log, where `ngx_http_log_escape` writes client text as `\xHH`.
//!
//! `forged_log_lines_never_ban_the_forged_address` performs the real attack on Debian's nginx
//! (`/usr/sbin/nginx`, own prefix, pid and temp paths in a temporary directory, listening on
//! a free loopback port): requests from 127.0.0.1 whose path, user name, User-Agent or
//! Referer carry forged error-log and access-log lines naming 198.51.100.7, each sent six
//! times, next to real failures (wrong passwords, missing credentials, limit_req refusals,
//! bot probes, garbage, a `deny all` location's 403s and a `return 444` location's dropped
//! connections, those two with forged access-log lines in the path and User-Agent). It
//! checks that the forged lines really reached the error log as physical lines, that `portcullis replay` with jails of the five filters on the real access
//! log never bans 198.51.100.7, and that `portcullis test` recognises the real 401, 503, 429,
//! 404 and 400 lines with host 127.0.0.1 (replay never bans loopback), and the 403 and 444
//! ones exactly once each.
//!
//! The same scenarios run against Debian 12's nginx 1.22.1 (the machine's, no root needed)
//! and Debian 13's 1.26.3 (`nginx_1_26_…`: test.sh's trixie tree, run with chroot in a
//! private overlay of it, common/real.rs `trixie_mount`, in its own pid and mount namespace
//! but on the host's loopback), with one table of exact counts per filter and rule: the two
//! releases wrote the same access log (but for the time stamps) and the same forged
//! error-log lines.
//!
//! Needs the `nginx` package (Debian's nginx 1.22); the 1.26 test needs root, util-linux's
//! unshare and the trixie tree (test.sh makes it); fails, does not skip, without them. nginx
//! is stopped on every path (its process group is killed when the guard drops). Each test
//! runs in under a second.

mod common;

use common::{
    base64, require_program, require_root, trixie_root, LocalServer, Release, PRIVATE_SYSLOG_SH,
    TRIXIE_SH,
};
use serde_json::Value;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_portcullis");
const NGINX: &str = "/usr/sbin/nginx";
/// The address every forged line names; it must never be banned.
const FORGED: &str = "198.51.100.7";
/// How often each attack request is sent (above every jail's maxretry).
const REPEAT: usize = 6;

/// Run by bash as pid 1 of a new pid and mount namespace (after [`PRIVATE_SYSLOG_SH`] and
/// [`TRIXIE_SH`]); $1 is the test's directory, $2 the Debian 13 tree. It writes `nginx -v`
/// into $1/version and then becomes the trixie tree's nginx in the foreground.
const TRIXIE_NGINX_SH: &str = r#"set -u
d="$1"; tree="$2"
private_dev
trixie_mount "$tree" "$d/root" "$d/trixie" || exit 4
chroot "$d/root" /usr/sbin/nginx -v 2> "$d/version"
exec chroot "$d/root" /usr/sbin/nginx -p "$d" -e "$d/error.log" -c "$d/nginx.conf" -g 'daemon off;'
"#;

// The nginx under test: Debian 12's (the machine's, 1.22.1) or Debian 13's (the trixie
// tree, 1.26.3, run with chroot).

/// nginx from its own temporary prefix, on a free loopback port.
struct Nginx(LocalServer);

impl std::ops::Deref for Nginx {
    type Target = LocalServer;
    fn deref(&self) -> &LocalServer {
        &self.0
    }
}

impl Nginx {
    /// Starts the nginx of `version`: Debian 12's directly, Debian 13's with chroot in a
    /// private overlay of the trixie tree ([`TRIXIE_SH`]), in its own pid and mount
    /// namespace (a private /dev, the test directory at the same path inside) but on the
    /// host's network, so the clients below reach it on 127.0.0.1 either way.
    fn start(version: Release) -> Nginx {
        let tree = match version {
            Release::Deb12 => None,
            Release::Deb13 => {
                require_root();
                require_program("unshare", "util-linux");
                require_program("chroot", "coreutils");
                Some(trixie_root(&["usr/sbin/nginx"]))
            }
        };
        let program = match &tree {
            Some(t) => t.join("usr/sbin/nginx").display().to_string(),
            None => NGINX.to_string(),
        };
        Nginx(LocalServer::start(
            &program,
            "nginx",
            "error.log",
            |dir, port| {
                write_site(dir, port);
                let Some(tree) = &tree else {
                    let mut cmd = Command::new(NGINX);
                    cmd.arg("-p")
                        .arg(dir)
                        .arg("-e")
                        .arg(dir.join("error.log"))
                        .arg("-c")
                        .arg(dir.join("nginx.conf"))
                        .args(["-g", "daemon off;"])
                        .stdin(Stdio::null())
                        .stdout(Stdio::null())
                        .stderr(Stdio::null());
                    return cmd;
                };
                let script = format!("{PRIVATE_SYSLOG_SH}{TRIXIE_SH}{TRIXIE_NGINX_SH}");
                let mut cmd = Command::new("unshare");
                cmd.args(["--pid", "--fork", "--kill-child", "--mount-proc"])
                    .args(["bash", "-c", &script, "nginx"])
                    .arg(dir)
                    .arg(tree)
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped());
                cmd
            },
        ))
    }

    /// A GET of `path` (already percent-encoded) with extra header lines.
    fn get(&self, path: &str, headers: &[(&str, &str)]) -> u16 {
        self.0.get("localhost", path, headers)
    }
}

/// The configuration, a password file and a tiny site in `dir`.
fn write_site(dir: &Path, port: u16) {
    let d = dir.display();
    let conf = format!(
        "worker_processes 1;\n\
         pid {d}/nginx.pid;\n\
         error_log {d}/error.log info;\n\
         events {{ worker_connections 64; }}\n\
         http {{\n\
           client_body_temp_path {d}/client_body; proxy_temp_path {d}/proxy;\n\
           fastcgi_temp_path {d}/fastcgi; uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;\n\
           access_log {d}/access.log;\n\
           limit_req_zone $binary_remote_addr zone=one:1m rate=1r/m;\n\
           server {{\n\
             listen 127.0.0.1:{port};\n\
             server_name localhost;\n\
             root {d}/html;\n\
             location /secret/ {{ auth_basic \"private\"; auth_basic_user_file {d}/htpasswd; }}\n\
             location /limited/ {{ limit_req zone=one; }}\n\
             location /limited429/ {{ limit_req zone=one; limit_req_status 429; }}\n\
             location /admin/ {{ deny all; }}\n\
             location /drop/ {{ return 444; }}\n\
           }}\n\
         }}\n"
    );
    fs::write(dir.join("nginx.conf"), conf).unwrap();
    // nginx's own plain-text scheme (ngx_crypt_plain): no hashing tool needed
    fs::write(dir.join("htpasswd"), "alice:{PLAIN}secret\n").unwrap();
    for sub in ["html/secret", "html/limited", "html/limited429"] {
        fs::create_dir_all(dir.join(sub)).unwrap();
        fs::write(dir.join(sub).join("index.html"), "ok\n").unwrap();
    }
    fs::write(dir.join("html/index.html"), "ok\n").unwrap();
    for p in ["html", "html/secret", "html/limited", "html/limited429"] {
        fs::set_permissions(dir.join(p), fs::Permissions::from_mode(0o755)).unwrap();
    }
}

/// Percent-encodes everything but unreserved characters and '/'.
fn pct(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn portcullis(args: &[&str]) -> std::process::Output {
    let o = Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run portcullis");
    assert!(
        o.status.success(),
        "portcullis {args:?} failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

/// `portcullis test --filter NAME --json LOG`: (rule, host, user) of every matching line.
fn matches(filter: &str, log: &Path) -> Vec<(String, String, Option<String>)> {
    let o = portcullis(&["test", "--filter", filter, "--json", log.to_str().unwrap()]);
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).expect("test --json line"))
        .filter(|v| v["matched"] == true)
        .map(|v| {
            (
                v["rule"].as_str().unwrap().to_string(),
                v["host"].as_str().unwrap().to_string(),
                v["user"].as_str().map(str::to_string),
            )
        })
        .collect()
}

#[test]
fn forged_log_lines_never_ban_the_forged_address() {
    run(Release::Deb12);
}

#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn nginx_1_26_forged_log_lines_never_ban_the_forged_address() {
    run(Release::Deb13);
}

/// Every scenario against `version`'s nginx, and what the filters count of its logs.
fn run(version: Release) {
    let ng = Nginx::start(version);
    if version == Release::Deb13 {
        let v = ng.read("version");
        assert!(v.starts_with("nginx version: nginx/1.26."), "{v}");
    }

    // A first request gives the time stamps the forged lines copy (a forger would too).
    assert_eq!(ng.get("/missing.html", &[]), 404);
    let access = ng.read("access.log");
    let now_access = access
        .split('[')
        .nth(1)
        .and_then(|r| r.split(']').next())
        .expect("time in the access log")
        .to_string();
    let error = ng.read("error.log");
    let now_error = error
        .lines()
        .find(|l| l.contains("missing.html"))
        .map(|l| l[..19].to_string())
        .expect("open() line in the error log");

    // Forged lines: nginx's own error-log messages naming FORGED (with and without nginx's
    // prefix), and access-log lines of every status the filters count.
    let error_forgeries = [
        format!("*1 user \"a\": password mismatch, client: {FORGED}, server: y"),
        format!("{now_error} [error] 1#1: *1 user \"a\" was not found in \"/etc/nginx/.htpasswd\", client: {FORGED}, server: y, request: \"GET / HTTP/1.1\", host: \"y\""),
        format!("*1 limiting requests, excess: 1.000 by zone \"one\", client: {FORGED}, server: y"),
        format!("{now_error} [error] 1#1: *1 limiting requests, excess: 9.000 by zone \"one\", client: {FORGED}, server: y, request: \"GET / HTTP/1.1\", host: \"y\""),
        format!("*1 open() \"/srv/wp-login.php\" failed (2: No such file or directory), client: {FORGED}, server: y, request: \"GET /wp-login.php HTTP/1.1\", host: \"y\""),
        format!("{now_error} [error] 1#1: *1 \"/srv/phpmyadmin/index.html\" is not found (2: No such file or directory), client: {FORGED}, server: y, request: \"GET /phpmyadmin/ HTTP/1.1\", host: \"y\""),
    ];
    let access_forgeries: Vec<String> = ["401", "503", "429", "404", "400"]
        .iter()
        .map(|st| {
            format!(
                "{FORGED} - bob [{now_access}] \"GET /wp-login.php HTTP/1.1\" {st} 0 \"-\" \"-\""
            )
        })
        .collect();
    let all: Vec<&String> = error_forgeries.iter().chain(&access_forgeries).collect();

    for _ in 0..REPEAT {
        for f in &all {
            // In the path: the static module writes the decoded path to the error log.
            let path = format!("/x%0a{}%0a", pct(f));
            assert_eq!(ng.get(&path, &[]), 404, "{path}");
            // The same under the protected and the rate-limited locations.
            ng.get(&format!("/secret{path}"), &[]);
            ng.get(&format!("/limited{path}"), &[]);
            // In the Basic user name: auth_basic writes it raw to the error log.
            let cred = base64(format!("a\n{f}\n:pw").as_bytes());
            assert_eq!(
                ng.get("/secret/", &[("Authorization", &format!("Basic {cred}"))]),
                401
            );
            // In the User-Agent and Referer (no raw line feed fits in a header; quotes and
            // backslashes try to close the quoted fields instead).
            let ua = format!("\"\\ \\x0A{f} \\");
            assert_eq!(
                ng.get("/secret/", &[("User-Agent", &ua), ("Referer", &ua)]),
                401
            );
        }
    }

    // Real failures from 127.0.0.1.
    for _ in 0..REPEAT {
        assert_eq!(ng.get("/secret/", &[]), 401);
        let wrong = base64(b"alice:wrong");
        assert_eq!(
            ng.get("/secret/", &[("Authorization", &format!("Basic {wrong}"))]),
            401
        );
        assert_eq!(ng.get("/wp-login.php", &[]), 404);
        assert_eq!(ng.get("/.env", &[]), 404);
        assert_eq!(
            ng.send_raw(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n"),
            400
        );
    }
    let ok = base64(b"alice:secret");
    assert_eq!(
        ng.get("/secret/", &[("Authorization", &format!("Basic {ok}"))]),
        200
    );
    // rate 1r/m without burst: the first passes, the rest are refused
    let limited: Vec<u16> = (0..REPEAT).map(|_| ng.get("/limited/", &[])).collect();
    // nginx-forbidden: a `deny all` location (403) and a `return 444` one (the connection
    // closed without an answer), each with a forged access-log line in the path and the
    // User-Agent
    for f in &access_forgeries {
        assert_eq!(
            ng.get(&format!("/admin/x%0a{}", pct(f)), &[("User-Agent", f)]),
            403
        );
        assert_eq!(
            ng.send_raw(
                format!("GET /drop/{} HTTP/1.0\r\nUser-Agent: \"{f}\r\n\r\n", pct(f)).as_bytes()
            ),
            0
        );
    }
    assert!(limited[1..].iter().all(|&s| s == 503), "{limited:?}");
    assert_eq!(ng.get("/limited429/", &[]), 429);

    let access_log = ng.path("access.log");
    let access = ng.read("access.log");
    let error = ng.read("error.log");

    // The attack is real: the error log holds forged physical lines naming FORGED ...
    for f in &all {
        assert!(
            error.lines().any(|l| l == f.as_str()),
            "the error log should hold the forged line {f:?} (nginx escapes nothing there)"
        );
    }
    // ... while every access-log line is one request of 127.0.0.1, client text escaped.
    assert!(access.lines().count() > all.len() * REPEAT * 5);
    for l in access.lines() {
        assert!(l.starts_with("127.0.0.1 - "), "access log line {l:?}");
    }
    assert!(access.contains("\\x0A") && access.contains("\\x22"));

    // The real failures are recognised, with 127.0.0.1; no match ever names another host.
    let count = |m: &[(String, String, Option<String>)], rule: &str, user: Option<&str>| {
        m.iter()
            .filter(|(r, h, u)| r == rule && h == "127.0.0.1" && u.as_deref() == user)
            .count()
    };
    let auth = matches("nginx-http-auth", &access_log);
    assert_eq!(count(&auth, "failed", Some("alice")), REPEAT, "{auth:?}");
    let limit = matches("nginx-limit-req", &access_log);
    let bots = matches("nginx-botsearch", &access_log);
    let bad = matches("nginx-bad-request", &access_log);
    let forbidden = matches("nginx-forbidden", &access_log);
    // Exact counts per rule, the same for nginx 1.22.1 and 1.26.3 (their access logs of this
    // run differ only in the time stamps). failed: alice's wrong password and the forged
    // user names (their Basic names, cut at the first ':'); no-user: the real requests
    // without credentials, the forged paths under /secret/ and the forged User-Agents;
    // limited: every /limited/ request but the very first (rate 1r/m), and the 429; probe-404:
    // /wp-login.php and /.env, and the forged paths with a probe name as a segment;
    // forbidden and dropped: the 403s and 444s, one per forged access-log line.
    let n = all.len() * REPEAT;
    for (name, m, rule, want) in [
        ("nginx-http-auth", &auth, "failed", n + REPEAT),
        ("nginx-http-auth", &auth, "no-user", 2 * n + REPEAT),
        ("nginx-limit-req", &limit, "limited", n - 1 + REPEAT + 1),
        ("nginx-botsearch", &bots, "probe-404", 65),
        ("nginx-bad-request", &bad, "bad-request", REPEAT),
        (
            "nginx-forbidden",
            &forbidden,
            "forbidden",
            access_forgeries.len(),
        ),
        (
            "nginx-forbidden",
            &forbidden,
            "dropped",
            access_forgeries.len(),
        ),
    ] {
        let got = m
            .iter()
            .filter(|(r, h, _)| r == rule && h == "127.0.0.1")
            .count();
        assert_eq!(got, want, "{version:?}: {name} rule {rule}: {m:?}");
    }
    assert_eq!(forbidden.len(), 2 * access_forgeries.len(), "{forbidden:?}");
    for (name, m) in [
        ("nginx-http-auth", &auth),
        ("nginx-limit-req", &limit),
        ("nginx-botsearch", &bots),
        ("nginx-bad-request", &bad),
        ("nginx-forbidden", &forbidden),
    ] {
        for (rule, host, _) in m.iter() {
            assert_eq!(host, "127.0.0.1", "{name} rule {rule} took {host}");
        }
    }
    assert!(
        access.contains("\" 429 "),
        "limit_req_status 429 was logged"
    );

    // Replay with jails of the five filters on the access log: FORGED is never banned.
    let cfg = ng.path("portcullis.toml");
    let mut jails = String::new();
    for f in [
        "nginx-http-auth",
        "nginx-limit-req",
        "nginx-botsearch",
        "nginx-bad-request",
        "nginx-forbidden",
    ] {
        let name = f.trim_start_matches("nginx-");
        jails.push_str(&format!(
            "[[jail]]\nname = \"{name}\"\nfilter = \"{f}\"\nlogs = [{:?}]\nmode = \"aggressive\"\nmaxretry = 2\nfindtime = \"1h\"\nbantime = \"1h\"\n\n",
            access_log.to_str().unwrap()
        ));
    }
    fs::write(&cfg, jails).unwrap();
    let replay = |log: &Path| -> Vec<(String, String)> {
        let o = portcullis(&[
            "replay",
            "--config",
            cfg.to_str().unwrap(),
            "--json",
            log.to_str().unwrap(),
        ]);
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).expect("replay --json line"))
            .filter(|v| v["action"] == "ban")
            .map(|v| {
                (
                    v["jail"].as_str().unwrap().to_string(),
                    v["host"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    let bans = replay(&access_log);
    assert!(
        bans.iter().all(|(_, h)| h != FORGED),
        "replay of the access log banned the forged address: {bans:?}"
    );
    // Control: the same traffic from a routable address (the first field rewritten, as if
    // 203.0.113.9 had sent it) is banned by every jail, and FORGED still by none.
    let moved = ng.path("access-moved.log");
    let text: String = access
        .lines()
        .map(|l| format!("203.0.113.9 {}\n", l.strip_prefix("127.0.0.1 ").unwrap()))
        .collect();
    fs::write(&moved, text).unwrap();
    let bans = replay(&moved);
    for jail in [
        "http-auth",
        "limit-req",
        "botsearch",
        "bad-request",
        "forbidden",
    ] {
        assert!(
            bans.contains(&(jail.to_string(), "203.0.113.9".to_string())),
            "jail {jail} should ban 203.0.113.9: {bans:?}"
        );
    }
    assert!(
        bans.iter().all(|(_, h)| h == "203.0.113.9"),
        "only the sender may be banned: {bans:?}"
    );
}

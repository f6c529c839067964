//! Issue 9, finding 4 (the filter audit): Monit writes the user name of an HTTP Basic
//! Authorization header into its own log file without escaping it, so a name holding newlines
//! writes lines of the client's choosing. This test performs that attack on the real Monit
//! from Debian and runs the built-in `monit` filter on the log it wrote: the forged lines must
//! not give the address they name, the real failure must still give the client's address.

mod common;

use common::*;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// The address the forged lines name.
const TARGET: &str = "198.51.100.7";

fn base64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Sends one request with `Authorization: Basic base64(credentials)` and returns the status line.
fn get_with_basic(port: u16, credentials: &[u8]) -> String {
    let mut s = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).expect("connect to monit");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let req = format!(
        "GET / HTTP/1.0\r\nHost: localhost\r\nAuthorization: Basic {}\r\n\r\n",
        base64(credentials)
    );
    s.write_all(req.as_bytes()).unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    // bounded: at most 64 reads or the read timeout
    for _ in 0..64 {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&answer)
        .lines()
        .next()
        .unwrap_or("")
        .to_string()
}

fn monit_binary() -> &'static str {
    for p in ["/usr/bin/monit", "/usr/sbin/monit"] {
        if Path::new(p).exists() {
            return p;
        }
    }
    panic!("monit is not installed (apt-get install monit; ./test.sh installs it)");
}

#[test]
fn monit_user_name_with_newlines_cannot_name_the_banned_address() {
    let monit = monit_binary();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let log = d.join("monit.log");
    let port = free_port();
    let rc = d.join("monitrc");
    std::fs::write(
        &rc,
        format!(
            "set daemon 60\nset log {log}\nset pidfile {d}/monit.pid\nset idfile {d}/id\n\
             set statefile {d}/state\nset httpd port {port}\n    use address 127.0.0.1\n    \
             allow \"admin\":\"secret\"\n",
            log = log.display(),
            d = d.display(),
        ),
    )
    .unwrap();
    std::fs::set_permissions(&rc, std::fs::Permissions::from_mode(0o600)).unwrap();

    let mut cmd = Command::new(monit);
    cmd.arg("-c").arg(&rc).arg("-I");
    cmd.stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut guard = ProcessGuard::spawn(cmd, "monit");
    wait_for("monit's http interface", Duration::from_secs(20), || {
        TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_ok()
    });

    // The attack: the name runs up to the first ':', so the forged lines hold none.
    let forged = format!(
        "x\nClient '{TARGET}' supplied unknown user 'y' accessing monit httpd\n\
         Denied connection from non-authorized client [{TARGET}]\nz:pw"
    );
    for _ in 0..3 {
        let status = get_with_basic(port, forged.as_bytes());
        assert!(status.contains("401"), "monit answered {status:?}");
    }
    // A real failure of the same client.
    let status = get_with_basic(port, b"admin:wrong");
    assert!(status.contains("401"), "monit answered {status:?}");
    wait_for("monit's log lines", Duration::from_secs(20), || {
        std::fs::read_to_string(&log)
            .map(|t| t.contains("wrong password for user 'admin'"))
            .unwrap_or(false)
    });
    guard.kill();

    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.lines()
            .any(|l| l == format!("Denied connection from non-authorized client [{TARGET}]")),
        "the attack did not write its own line; monit's log:\n{text}"
    );

    let filter = concat!(env!("CARGO_MANIFEST_DIR"), "/../../filters/monit.toml");
    let out = Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(["test", "--filter", filter, "--json"])
        .arg(&log)
        .output()
        .expect("run portcullis test");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let hosts: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["matched"] == true)
        .map(|v| v["host"].as_str().unwrap_or("").to_string())
        .collect();
    assert!(
        !hosts.iter().any(|h| h == TARGET),
        "a forged line named {TARGET}: matched hosts {hosts:?}; monit's log:\n{text}"
    );
    assert_eq!(
        hosts,
        vec!["127.0.0.1".to_string()],
        "the real failure must still count; monit's log:\n{text}"
    );
}

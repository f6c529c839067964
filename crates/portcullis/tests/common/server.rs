//! [`LocalServer`]: a real server (nginx, Apache) run from a temporary directory on a free
//! loopback port, for the log-injection tests that attack the real programs.

use super::netns::{wait_until, ProcessGuard};
use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// A running server in its own temporary directory; stopped, then the directory removed,
/// on drop.
pub struct LocalServer {
    proc: ProcessGuard,
    dir: tempfile::TempDir,
    /// The loopback port it listens on.
    pub port: u16,
}

impl LocalServer {
    /// Starts `program` (`label` in messages) on a free loopback port, a few tries (another
    /// test may take the port between our probe and the server's bind). `setup` writes the
    /// server's files into the directory (mode 0755: workers running as another user read
    /// it) and returns the command; `error_log` names the file whose text a failure shows.
    pub fn start(
        program: &str,
        label: &str,
        error_log: &str,
        mut setup: impl FnMut(&Path, u16) -> Command,
    ) -> LocalServer {
        assert!(
            Path::new(program).is_file(),
            "{program} is missing: install Debian's {label} package (./test.sh does)"
        );
        let mut last_err = String::new();
        for _ in 0..5 {
            let dir = tempfile::Builder::new()
                .prefix(&format!("pct-{label}-"))
                .tempdir()
                .expect("temp dir");
            fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
            let port = super::free_port();
            let cmd = setup(dir.path(), port);
            let mut proc = ProcessGuard::spawn(cmd, label);
            let up = wait_until(Duration::from_secs(10), || {
                proc.try_wait().is_some() || TcpStream::connect(("127.0.0.1", port)).is_ok()
            });
            if up && proc.try_wait().is_none() {
                return LocalServer { proc, dir, port };
            }
            last_err = fs::read_to_string(dir.path().join(error_log)).unwrap_or_default();
            if let Some(mut e) = proc.child_mut().stderr.take() {
                let _ = e.read_to_string(&mut last_err);
            }
            proc.kill();
        }
        panic!("{label} did not start:\n{last_err}");
    }

    /// A file of its directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The text of a file of its directory (a log).
    pub fn read(&self, name: &str) -> String {
        String::from_utf8_lossy(&fs::read(self.path(name)).unwrap()).into_owned()
    }

    /// Sends `raw` as the whole request on a new connection; returns the status code (0
    /// when the server closed without an answer).
    pub fn send_raw(&self, raw: &[u8]) -> u16 {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).expect("connect to the server");
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(raw).expect("send request");
        let mut answer = Vec::new();
        let _ = s.take(1 << 20).read_to_end(&mut answer);
        let head = String::from_utf8_lossy(&answer[..answer.len().min(64)]).into_owned();
        head.split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0)
    }

    /// A GET of `path` (sent as is) for `host`, with extra header lines.
    pub fn get(&self, host: &str, path: &str, headers: &[(&str, &str)]) -> u16 {
        let mut req = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n");
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("Connection: close\r\n\r\n");
        self.send_raw(req.as_bytes())
    }
}

impl Drop for LocalServer {
    fn drop(&mut self) {
        // before the fields drop: the process goes before its directory
        self.proc.kill();
    }
}

/// Standard base64 with padding (HTTP Basic credentials).
pub fn base64(data: &[u8]) -> String {
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

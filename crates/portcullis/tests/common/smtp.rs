//! The SMTP client part that the mail tests' Python scripts share (Debian's python3, raw
//! sockets, run inside the client network namespace). A script is its own head (imports
//! and constants), then [`SMTP_CLIENT_PY`], then its scenarios:
//! `[HEAD, SMTP_CLIENT_PY, SCENARIOS].concat()`.
//!
//! It gives `errors` (what the server answered that the scenario did not expect: the script
//! prints them and exits non-zero), `expect(what, got, prefix)`, and `SmtpConn(src, port)`:
//! a connection from the source address `src` to the test server (192.0.2.1, or
//! 2001:db8::1 when `src` is IPv6) with a 10 s timeout, whose `reply()` reads one whole
//! reply (continuation lines "NNN-" included), `cmd(data, want)` sends a command line and
//! checks the reply's start, `send(data)` sends raw bytes, `close()` and `quit()`. A test's
//! own `Conn` subclasses it (banner and EHLO, STARTTLS, IMAP/POP3 lines).

/// See the module documentation. Needs `import socket` in the script's head.
pub const SMTP_CLIENT_PY: &str = r##"
# ---- shared SMTP client part (crates/portcullis/tests/common/smtp.rs)
errors = []


def expect(what, got, prefix):
    if not got.startswith(prefix):
        errors.append("%s: expected %r, got %r" % (what, prefix, got))


class SmtpConn:
    def __init__(self, src, port, server="192.0.2.1", server_v6="2001:db8::1"):
        self.src = src
        dst = server_v6 if ":" in src else server
        self.sk = socket.create_connection((dst, port), timeout=10, source_address=(src, 0))
        self.f = self.sk.makefile("rb")

    def reply(self):
        out = b""
        for _ in range(50):
            l = self.f.readline()
            out += l
            if len(l) < 4 or l[3:4] != b"-":
                break
        return out

    def send(self, data):
        self.sk.sendall(data)

    def cmd(self, data, want):
        self.send(data + b"\r\n")
        got = self.reply()
        expect(self.src + " " + repr(data[:60]), got, want)
        return got

    def close(self):
        self.sk.close()

    def quit(self):
        self.cmd(b"QUIT", b"221 ")
        self.close()
# ---- end of the shared part

"##;

//! The daemon run by hand in the foreground (stderr a terminal) starts each line of its own
//! log with the time; into a pipe or a file (journald, syslog, a log file the recidive
//! filter reads) the lines stay as they are, without one. The terminal is a real
//! pseudo-terminal, from util-linux's `script`.

use std::fs;
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_portcullis");

/// A null-backend configuration in `dir` with one sshd jail on an empty file.
fn config(dir: &std::path::Path) -> std::path::PathBuf {
    let state = dir.join("state");
    fs::create_dir(&state).unwrap();
    fs::write(dir.join("auth.log"), "").unwrap();
    let cfg = dir.join("c.toml");
    fs::write(
        &cfg,
        format!(
            "state_dir = {:?}\nsocket = {:?}\n[firewall]\nbackend = \"null\"\n[[jail]]\nname = \"sshd\"\nlogs = [{:?}]\n",
            state.display().to_string(),
            dir.join("sock").display().to_string(),
            dir.join("auth.log").display().to_string(),
        ),
    )
    .unwrap();
    cfg
}

/// The daemon's lines (started, stopped) from a 2 s run, on a terminal or not.
fn run(on_terminal: bool) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    let daemon = format!("timeout -s TERM 2 {BIN} run -c {}", cfg.display());
    let out = if on_terminal {
        // (script's own output is the terminal's: the daemon's stderr, CR LF line ends)
        Command::new("timeout")
            .args(["20", "script", "-q", "-e", "-c", &daemon, "/dev/null"])
            .stdin(Stdio::null())
            .output()
            .expect("run script (util-linux)")
            .stdout
    } else {
        Command::new("timeout")
            .args(["20", "sh", "-c", &daemon])
            .stdin(Stdio::null())
            .output()
            .expect("run sh")
            .stderr
    };
    String::from_utf8_lossy(&out)
        .lines()
        .map(|l| l.trim_end_matches('\r').to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

fn stamped(line: &str) -> bool {
    let b = line.as_bytes();
    b.len() > 21
        && b[4] == b'-'
        && b[10] == b'T'
        && b[19] == b'Z'
        && b[20] == b' '
        && b[..19]
            .iter()
            .enumerate()
            .all(|(i, c)| matches!(i, 4 | 7 | 10 | 13 | 16) || c.is_ascii_digit())
}

#[test]
fn on_a_terminal_each_line_starts_with_the_time_and_in_a_pipe_none_does() {
    let tty = run(true);
    assert!(
        tty.iter()
            .any(|l| l.ends_with("firewall=null") && l.contains(" started ")),
        "{tty:?}"
    );
    assert!(tty.iter().any(|l| l.contains(" stopped ")), "{tty:?}");
    assert!(tty.iter().all(|l| stamped(l)), "{tty:?}");

    let pipe = run(false);
    assert!(pipe.iter().any(|l| l.starts_with("started ")), "{pipe:?}");
    assert!(pipe.iter().any(|l| l.starts_with("stopped ")), "{pipe:?}");
    assert!(!pipe.iter().any(|l| stamped(l)), "{pipe:?}");
}

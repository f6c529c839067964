//! The `command` backend's failures do not stop the daemon nor hold it: a ban program that
//! fails is logged and the other bans go on; one whose child hangs is killed with its whole
//! process group at `timeout`. (A review found the daemon exiting at the first failed ban,
//! leaving every jail unprotected, and a 2 s timeout taking 25 s while nothing was served.)

mod common;

use common::*;
use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[test]
fn a_failing_or_hanging_ban_program_neither_stops_nor_holds_the_daemon() {
    let t = tempfile::Builder::new()
        .prefix("pct-cmdfail-")
        .tempdir()
        .unwrap();
    let dir = t.path();
    let calls = dir.join("calls");
    let script = dir.join("block");
    // 203.0.113.7 fails, 203.0.113.8 hangs in a child, the rest are noted
    fs::write(
        &script,
        format!(
            "#!/bin/sh\ncase \"$1 $2\" in\n\
               *203.0.113.7) echo refused >&2; exit 1 ;;\n\
               *203.0.113.8) sleep 30; exit 0 ;;\n\
               'unban 203.0.113.9') echo refused >&2; exit 1 ;;\n\
             esac\necho \"$1 $2\" >> {calls:?}\n"
        ),
    )
    .unwrap();
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    let s = script.display().to_string();
    let log = dir.join("auth.log");
    fs::write(&log, "").unwrap();
    let socket = dir.join("portcullis.sock");
    let cfg = dir.join("portcullis.toml");
    fs::write(
        &cfg,
        format!(
            "socket = {socket:?}\nstate_dir = {:?}\n[firewall]\nbackend = \"command\"\n\
             [firewall.command]\nban = [{s:?}, \"ban\", \"{{addr}}\"]\n\
             unban = [{s:?}, \"unban\", \"{{addr}}\"]\ntimeout = \"1s\"\n\
             [[jail]]\nname = \"sshd\"\nfilter = \"sshd\"\nlogs = [{log:?}]\nmaxretry = 2\n\
             ports = [22]\n",
            dir.join("state")
        ),
    )
    .unwrap();
    let mut d = Daemon::start(&cfg, &dir.join("daemon.log"));
    let mut n = 0;
    let mut offend = |addr: &str| append_sshd_failures(&log, addr, 2, &mut n);
    offend("203.0.113.7");
    wait_for("the refusal logged", Duration::from_secs(15), || {
        d.log().contains("203.0.113.7 in jail sshd was refused")
    });
    assert!(d.running(), "{}", d.log());
    let start = Instant::now();
    offend("203.0.113.8");
    offend("203.0.113.9");
    wait_for("the next ban carried out", Duration::from_secs(28), || {
        fs::read_to_string(&calls)
            .unwrap_or_default()
            .contains("ban 203.0.113.9")
    });
    // the hung program was killed at its timeout (twice: the batch, then alone), not after
    // its child's 30 s (about 2 s; the bound leaves a loaded machine room, review 32)
    assert!(
        start.elapsed() < Duration::from_secs(25),
        "{:?}",
        start.elapsed()
    );
    assert!(d.running(), "{}", d.log());
    assert!(d.log().contains("did not finish within 1s"), "{}", d.log());
    let hosts = banned_hosts(&socket);
    assert!(hosts.contains(&"203.0.113.9".to_string()), "{hosts:?}");
    // a ban the program refused is not listed as one: alone in its batch (.7), or beside
    // one carried out (.8, written with .9)
    assert!(!hosts.contains(&"203.0.113.7".to_string()), "{hosts:?}");
    wait_for("the hung ban lifted", Duration::from_secs(10), || {
        !banned_hosts(&socket).contains(&"203.0.113.8".to_string())
    });
    assert!(
        d.log()
            .contains("unban 203.0.113.8 jail=sshd reason=firewall-refused"),
        "{}",
        d.log()
    );
    assert!(
        d.log()
            .contains("unban 203.0.113.7 jail=sshd reason=firewall-refused"),
        "{}",
        d.log()
    );

    // an unban the program refuses: said so, and lifted in the state all the same (the
    // next start does not put it back)
    let mut c = std::process::Command::new(BIN);
    c.args(["unban", "203.0.113.9", "--socket"]).arg(&socket);
    let o = run_with_timeout(&mut c, None, Duration::from_secs(30));
    assert_eq!(o.code(), Some(1), "{}", o.stderr_str());
    assert!(
        o.stderr_str().contains("the firewall refused to lift it"),
        "{}",
        o.stderr_str()
    );
    assert!(!banned_hosts(&socket).contains(&"203.0.113.9".to_string()));
    let _ = d.stop();
    let calls_before = fs::read_to_string(&calls).unwrap_or_default();
    let d = Daemon::start(&cfg, &dir.join("daemon2.log"));
    assert!(!banned_hosts(&socket).contains(&"203.0.113.9".to_string()));
    let calls_after = fs::read_to_string(&calls).unwrap_or_default();
    assert_eq!(
        calls_after[calls_before.len()..]
            .matches("ban 203.0.113.9")
            .count(),
        0,
        "{calls_after}"
    );
    drop(d);
}

/// A ban program that hangs for every address: after two changes given up in a row, the
/// rest of the batch is refused without running it, so the engine answers again within
/// two timeouts, not one per address (30 s per address at the defaults held everything, a
/// review measured).
#[test]
fn a_program_that_hangs_for_every_address_holds_one_batch_two_timeouts_at_most() {
    let t = tempfile::Builder::new()
        .prefix("pct-cmdhang-")
        .tempdir()
        .unwrap();
    let (d, log, socket) = quick_command_daemon(t.path(), "#!/bin/sh\nsleep 30\n");
    let start = Instant::now();
    // ten offenders in one write: one batch
    offenders_at_once(&log, 10);
    wait_for("the batch given up", Duration::from_secs(20), || {
        d.log().contains("refused without running it")
    });
    // two 1 s timeouts, about 2 s; ten (one per address) would be 10 s at least: the
    // bound is between, with room for a loaded machine (it was 6 s, review 32)
    assert!(
        start.elapsed() < Duration::from_secs(9),
        "{:?}\n{}",
        start.elapsed(),
        d.log()
    );
    assert!(d.log().contains("the 8 other ban(s)"), "{}", d.log());
    // none listed as banned: each refused ban is lifted
    wait_for("the refused bans lifted", Duration::from_secs(10), || {
        banned_hosts(&socket).is_empty()
    });
}

/// Unbans are never given up: with the unban program hanging for its first runs, every ban
/// lifted still gets its unban run (skipped with the bans, eight of ten blocks stayed in the
/// admin's system while Portcullis listed nothing, a review found).
#[test]
fn every_unban_is_run_even_after_two_failed_in_a_row() {
    let t = tempfile::Builder::new()
        .prefix("pct-cmdunban-")
        .tempdir()
        .unwrap();
    let dir = t.path();
    let calls = dir.join("calls");
    // an unban's first two runs hang; every run is noted first
    let (_d, log, socket) = quick_command_daemon(
        dir,
        &format!(
            "#!/bin/sh\necho \"$1 $2\" >> {calls:?}\n\
             if [ \"$1\" = unban ] && [ \"$(grep -c '^unban' {calls:?})\" -le 2 ]; then sleep 30; fi\n"
        ),
    );
    offenders_at_once(&log, 6);
    wait_for("six bans", Duration::from_secs(15), || {
        banned_hosts(&socket).len() == 6
    });
    let mut c = std::process::Command::new(BIN);
    c.args(["unban", "--all", "--socket"]).arg(&socket);
    run_with_timeout(&mut c, None, Duration::from_secs(60));
    let unbans = fs::read_to_string(&calls)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.starts_with("unban"))
        .count();
    assert_eq!(
        unbans,
        6,
        "{}",
        fs::read_to_string(&calls).unwrap_or_default()
    );
}

/// A daemon with the command backend running `script` (`ban ADDR`, `unban ADDR`), timeout 1 s,
/// no retries, one sshd jail at `maxretry = 1` reading DIR/auth.log: (daemon, log, socket).
fn quick_command_daemon(dir: &Path, script: &str) -> (Daemon, PathBuf, PathBuf) {
    let path = dir.join("block");
    fs::write(&path, script).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    let s = path.display().to_string();
    let log = dir.join("auth.log");
    fs::write(&log, "").unwrap();
    let socket = dir.join("portcullis.sock");
    let cfg = dir.join("portcullis.toml");
    fs::write(
        &cfg,
        format!(
            "socket = {socket:?}\nstate_dir = {:?}\n[firewall]\nbackend = \"command\"\n\
             [firewall.command]\nban = [{s:?}, \"ban\", \"{{addr}}\"]\n\
             unban = [{s:?}, \"unban\", \"{{addr}}\"]\ntimeout = \"1s\"\nretries = 0\n\
             [[jail]]\nname = \"sshd\"\nfilter = \"sshd\"\nlogs = [{log:?}]\nmaxretry = 1\n\
             ports = [22]\n",
            dir.join("state")
        ),
    )
    .unwrap();
    (Daemon::start(&cfg, &dir.join("daemon.log")), log, socket)
}

/// `n` failures of 203.0.113.20, .21, ... appended in one write (one batch).
fn offenders_at_once(log: &Path, n: u8) {
    let mut text = String::new();
    for i in 0..n {
        text += &format!(
            "{} host sshd[{}]: Failed password for root from 203.0.113.{} port 4000 ssh2\n",
            syslog_timestamp(std::time::SystemTime::now()),
            100 + u32::from(i),
            20 + i
        );
    }
    fs::OpenOptions::new()
        .append(true)
        .open(log)
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
}

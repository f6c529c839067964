//! Self-test of the network-namespace lab (tests/common/netns.rs): a real sshd, a legitimate
//! client, an attacker, and a hand-written nft ban standing in for the daemon.
//!
//! Needs root; fails (does not skip) otherwise.
//! Run: `cargo test -p portcullis --test netns_harness -- --nocapture`

mod common;

use common::*;
use std::time::{Duration, Instant};

const WRONG: &str = "not-the-password";

fn failed_lines(log: &str, from: &str) -> Vec<String> {
    let needle = format!("Failed password for {TEST_USER} from {from} port ");
    log.lines()
        .filter(|l| l.contains(&needle) && l.ends_with(" ssh2"))
        .map(str::to_owned)
        .collect()
}

fn nft_ban_table() -> &'static str {
    // What the daemon will do: a set per family, drop rules in an input hook.
    "table inet pcttest {
        set banned4 { type ipv4_addr; flags timeout; }
        set banned6 { type ipv6_addr; flags timeout; }
        chain input {
            type filter hook input priority filter - 10; policy accept;
            ip saddr @banned4 drop
            ip6 saddr @banned6 drop
        }
    }\n"
}

#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn lab_sshd_attack_and_manual_ban() {
    require_root();
    let t0 = Instant::now();
    let names: Vec<String>;
    {
        let mut lab = Lab::new();
        names = [&lab.server, &lab.attacker, &lab.legit]
            .iter()
            .map(|n| n.name().to_owned())
            .collect();
        println!("namespaces: {names:?} ({:?})", t0.elapsed());

        let log_path = lab.dir().join("auth.log");
        let pid = lab.start_sshd(&log_path);
        println!(
            "sshd pid {pid}, log {} ({:?})",
            log_path.display(),
            t0.elapsed()
        );
        let pw = lab.password();

        let srv_att4 = Lab::server_addr(Side::Attacker, false);
        let srv_att6 = Lab::server_addr(Side::Attacker, true);
        let srv_leg4 = Lab::server_addr(Side::Legit, false);
        let srv_leg6 = Lab::server_addr(Side::Legit, true);
        let ok = AttemptResult::Connected { auth_ok: true };
        let denied = AttemptResult::Connected { auth_ok: false };

        // Legitimate logins, both families.
        assert_eq!(
            lab.ssh_attempt(Side::Legit, srv_leg4, pw),
            ok,
            "legit IPv4 login"
        );
        assert_eq!(
            lab.ssh_attempt(Side::Legit, srv_leg6, pw),
            ok,
            "legit IPv6 login"
        );

        // Three wrong passwords from the attacker over IPv4.
        for i in 0..3 {
            assert_eq!(
                lab.ssh_attempt(Side::Attacker, srv_att4, WRONG),
                denied,
                "attack #{i}"
            );
        }
        // One over IPv6 and one for an unknown user, for the filter authors.
        assert_eq!(
            lab.ssh_attempt(Side::Attacker, srv_att6, WRONG),
            denied,
            "attack v6"
        );
        assert_eq!(
            lab.ssh_attempt_as(Side::Attacker, srv_att4, "nosuchuser", WRONG),
            denied,
            "invalid user"
        );

        wait_for(
            "3 IPv4 'Failed password' lines in the sshd log",
            Duration::from_secs(5),
            || failed_lines(&lab.sshd_log(), "192.0.2.2").len() >= 3,
        );
        wait_for(
            "the IPv6 'Failed password' line",
            Duration::from_secs(5),
            || !failed_lines(&lab.sshd_log(), "2001:db8:a::2").is_empty(),
        );
        wait_for("the invalid-user line", Duration::from_secs(5), || {
            lab.sshd_log()
                .contains("Failed password for invalid user nosuchuser from 192.0.2.2 port ")
        });
        let log = lab.sshd_log();
        println!(
            "──── sshd log ({} lines) ────\n{log}────────────",
            log.lines().count()
        );
        let v4 = failed_lines(&log, "192.0.2.2");
        assert_eq!(v4.len(), 3, "exactly 3 IPv4 failures expected:\n{log}");
        for l in log.lines() {
            assert!(is_syslog_line(l), "not in syslog format: {l:?}");
            assert!(
                l.contains(&format!(" server sshd[{pid}]: ")),
                "wrong tag: {l:?}"
            );
        }
        assert!(
            log.contains("Accepted password for pctuser from 198.51.100.2 port "),
            "{log}"
        );
        assert!(
            log.contains("Accepted password for pctuser from 2001:db8:b::2 port "),
            "{log}"
        );

        // Before any ban the attacker reaches port 22 on both families.
        let probe = Duration::from_millis(1000);
        assert!(lab.tcp_connects(Side::Attacker, srv_att4, 22, probe));
        assert!(lab.tcp_connects(Side::Attacker, srv_att6, 22, probe));

        // Stand-in for the daemon: ban the attacker's IPv4 address by hand.
        lab.server_nft(nft_ban_table());
        lab.server_nft(&format!(
            "add element inet pcttest banned4 {{ {} timeout 5m }}\n",
            ATTACKER_V4
        ));
        let rules = lab
            .server
            .exec("nft", &["list", "table", "inet", "pcttest"])
            .check();
        println!("──── server nft ────\n{}", rules.stdout_str());

        assert!(
            !lab.tcp_connects(Side::Attacker, srv_att4, 22, probe),
            "banned v4 still connects"
        );
        let r = lab.ssh_attempt(Side::Attacker, srv_att4, WRONG);
        assert!(
            r.blocked(),
            "banned attacker over IPv4 should be blocked, got {r:?}"
        );
        assert_eq!(
            lab.ssh_attempt(Side::Legit, srv_leg4, pw),
            ok,
            "legit v4 after v4 ban"
        );
        // The v4 ban does not cover the attacker's v6 address.
        assert!(
            lab.tcp_connects(Side::Attacker, srv_att6, 22, probe),
            "v6 blocked by a v4 ban"
        );

        // Same for IPv6.
        lab.server_nft(&format!(
            "add element inet pcttest banned6 {{ {} timeout 5m }}\n",
            ATTACKER_V6
        ));
        assert!(
            !lab.tcp_connects(Side::Attacker, srv_att6, 22, probe),
            "banned v6 still connects"
        );
        let r = lab.ssh_attempt(Side::Attacker, srv_att6, WRONG);
        assert!(
            r.blocked(),
            "banned attacker over IPv6 should be blocked, got {r:?}"
        );
        assert_eq!(
            lab.ssh_attempt(Side::Legit, srv_leg6, pw),
            ok,
            "legit v6 after v6 ban"
        );
        assert_eq!(
            lab.ssh_attempt(Side::Legit, srv_leg4, pw),
            ok,
            "legit v4 after v6 ban"
        );

        // The blocked attempts left no new failure lines.
        assert_eq!(failed_lines(&lab.sshd_log(), "192.0.2.2").len(), 3);
        println!("scenario done ({:?}); tearing down", t0.elapsed());
    }

    // Teardown: none of our namespaces remain, and nothing else with our pid.
    let list = host_cmd("ip", &["netns", "list"], Duration::from_secs(5))
        .check()
        .stdout_str();
    let mine = format!("{PREFIX}{}-", std::process::id());
    for line in list.lines() {
        let name = line.split_whitespace().next().unwrap_or("");
        assert!(
            !names.iter().any(|n| n == name) && !name.starts_with(&mine),
            "left behind: {name}"
        );
    }
    println!("clean; total {:?}", t0.elapsed());
}

/// The guards clean up when a test panics, and the startup sweep removes namespaces left by
/// dead processes. Runs in parallel with the scenario above (a second lab at the same time).
#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn cleanup_on_panic_and_stale_sweep() {
    require_root();
    // A namespace "left behind" by a process that cannot exist (pid above pid_max).
    let pid_max: u32 = std::fs::read_to_string("/proc/sys/kernel/pid_max")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let stale = format!("{PREFIX}{}-0-stale", pid_max + 1);
    host_cmd("ip", &["netns", "add", &stale], Duration::from_secs(5)).check();
    sweep_stale();
    let listed = |name: &str| {
        host_cmd("ip", &["netns", "list"], Duration::from_secs(5))
            .stdout_str()
            .lines()
            .any(|l| l.split_whitespace().next() == Some(name))
    };
    assert!(
        !listed(&stale),
        "stale namespace {stale} survived the sweep"
    );

    // A lab with a process inside, unwound by a panic. Keep the expected panic out of the
    // output (other panics still go to the default hook).
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let msg = info.payload().downcast_ref::<&str>().copied().unwrap_or("");
        if !msg.starts_with("intentional panic") {
            default_hook(info)
        }
    }));
    let seen = std::sync::Mutex::new((Vec::<String>::new(), 0u32));
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let lab = Lab::new();
        let mut s = seen.lock().unwrap();
        s.0 = [&lab.server, &lab.attacker, &lab.legit]
            .iter()
            .map(|n| n.name().to_owned())
            .collect();
        let sleeper = lab.attacker.spawn("sleep", &["60"]);
        s.1 = sleeper.pid();
        std::mem::forget(sleeper); // even a leaked guard: the namespace drop kills it
        drop(s);
        panic!("intentional panic inside a lab (expected)");
    }));
    assert!(r.is_err());
    let (names, pid) = seen.into_inner().unwrap();
    assert_eq!(names.len(), 3);
    for n in &names {
        assert!(!listed(n), "{n} left behind after panic");
    }
    assert!(
        wait_until(Duration::from_secs(3), || {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .map_or(true, |s| s.contains(") Z "))
        }),
        "process {pid} inside the lab survived"
    );
}

//! The journal source of filters/dropbear.toml (`portcullis filters --json`, its first
//! `logs` entry: `_SYSTEMD_UNIT=dropbear.service _UID=0 _TRANSPORT=stdout _TRANSPORT=syslog +
//! SYSLOG_IDENTIFIER=dropbear _UID=0 _TRANSPORT=syslog`)
//! against Debian 12's Dropbear (dropbear-bin 2022.83, the machine's) run as Debian's unit
//! runs it (dropbear 2022.83-1+deb12u3's dropbear.service: `ExecStart=/usr/sbin/dropbear -EF
//! -p "$DROPBEAR_PORT" -W "$DROPBEAR_RECEIVE_WINDOW" $DROPBEAR_EXTRA_ARGS`, every line on
//! stderr, a journal stream). There is no systemd as pid 1 here: the stream is made by
//! `systemd-cat -t dropbear` (its identifier the name systemd gives the unit's stream), and
//! the unit by a control group `pct-dropbear-PID-N.slice/dropbear.service` in each hierarchy
//! that names systemd units (the unified one and `name=systemd`; removed on drop), which
//! journald turns into `_SYSTEMD_UNIT=dropbear.service`.
//!
//! Debian 12's journald (systemd 252) runs in a private mount namespace (common/journald.rs);
//! Dropbear, in that namespace, in a pid and network namespace of its own, listens on
//! 192.0.2.1:22 with the machine's accounts; Debian 12's dbclient fails from 203.0.113.5
//! (root, a wrong password, until Dropbear's 10 tries) and from 203.0.113.6 (an unknown
//! user: 2022.83's line has no address, the connection's "Child connection" line gives it).
//! Then `nobody` writes Dropbear's own "-E" line of a bad password from 192.0.2.66 with
//! `systemd-cat -t dropbear` inside dropbear.service (a user's session left in the unit) and
//! the same line from 192.0.2.67 outside it.
//!
//! Asserted: the journal's fields (Dropbear's lines `_TRANSPORT=stdout`, `_UID=0`,
//! `_SYSTEMD_UNIT=dropbear.service`, identifier dropbear; nobody's `_UID=65534`, the first in
//! the unit); the daemon (null firewall, started before Dropbear) counts with a jail on the
//! shipped source 10 for 203.0.113.5 and 1 for 203.0.113.6 and neither forgery; a jail on
//! `journal:_SYSTEMD_UNIT=dropbear.service` counts 192.0.2.66 too (so `_UID=0` is what keeps
//! it out), one on `journal:SYSLOG_IDENTIFIER=dropbear` both forgeries.
//!
//! Needs root, dropbear-bin, systemd (journald, systemd-cat), util-linux (unshare, nsenter,
//! runuser), iproute2 and a cgroup hierarchy; fails loudly when they are missing. About 9 s.

mod common;

use common::*;
use serde_json::Value;
use std::collections::BTreeMap;
use std::fs;
use std::process::Command;
use std::time::Duration;

const UNIT_ONLY: &str = "journal:_SYSTEMD_UNIT=dropbear.service";
const IDENT_ONLY: &str = "journal:SYSLOG_IDENTIFIER=dropbear";

/// Run by bash in journald's mount namespace, in a pid and network namespace of its own: $1
/// the test's directory. (After `in_unit`: [`UnitCgroup::shell_function`].)
const SCRIPT: &str = r#"set -u
d="$1"
ip link set lo up
for a in 192.0.2.1 203.0.113.5 203.0.113.6; do ip addr add "$a/32" dev lo || exit 2; done
dropbearkey -t ed25519 -f "$d/hostkey" > "$d/dropbearkey.out" 2>&1 || exit 3
# Debian's unit: dropbear -EF -p "$DROPBEAR_PORT" -W "$DROPBEAR_RECEIVE_WINDOW" (its
# defaults 22 and 65536), stderr a journal stream, in dropbear.service
( in_unit; exec systemd-cat -t dropbear dropbear -EF -p 192.0.2.1:22 -W 65536 -r "$d/hostkey" ) &
# wait until it listens, without connecting (a probe's connection forks a child whose lines
# would leave the unit's stream before journald has read the child's cgroup: seen in CI,
# such lines came without _SYSTEMD_UNIT)
for _ in $(seq 200); do
  [ -n "$(ss -Hltn 'sport = :22')" ] && break
  sleep 0.05
done
try() {
  DROPBEAR_PASSWORD=wrong timeout 20 dbclient -y -y -b "$1" -p 22 -l "$2" 192.0.2.1 true \
    < /dev/null >> "$d/client.out" 2>&1
  echo "$1 $?" >> "$d/results"
}
try 203.0.113.5 root
try 203.0.113.6 nosuch-user
# nobody: Dropbear's -E line, once inside dropbear.service (a user's session left in the
# unit), once outside; each writer stays a moment (journald reads its unit from /proc)
line() {
  printf '[4242] Dec 05 15:00:00 Bad password attempt for '\''root'\'' from %s:4242\n' "$1"
}
( in_unit; exec runuser -u nobody -- systemd-cat -t dropbear sh -c 'echo "$0"; sleep 1' "$(line 192.0.2.66)" ) \
  || exit 4
runuser -u nobody -- systemd-cat -t dropbear sh -c 'echo "$0"; sleep 1' "$(line 192.0.2.67)" || exit 4
echo done > "$d/clients.done"
sleep 60
"#;

#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn real_dropbear_journal_source_counts_dropbears_lines_not_nobodys() {
    require_root();
    for (program, package) in [
        ("dropbear", "dropbear-bin"),
        ("dropbearkey", "dropbear-bin"),
        ("dbclient", "dropbear-bin"),
        ("systemd-cat", "systemd"),
        ("runuser", "util-linux"),
        ("unshare", "util-linux"),
        ("nsenter", "util-linux"),
        ("ip", "iproute2"),
        ("ss", "iproute2"),
    ] {
        require_program(program, package);
    }
    let version = run_with_timeout(
        Command::new("dpkg-query").args(["-W", "-f", "${Version}", "dropbear-bin"]),
        None,
        Duration::from_secs(10),
    )
    .check()
    .stdout_str();
    assert!(
        version.starts_with("2022.83-"),
        "not Debian 12's dropbear-bin 2022.83: {version:?}"
    );
    let shipped = shipped_journal_source("dropbear");
    let dir = test_dir("dropbearj");
    let d = dir.path().to_str().expect("utf-8 path").to_string();
    let path = |rel: &str| dir.path().join(rel);
    let read = |rel: &str| fs::read_to_string(path(rel)).unwrap_or_default();

    let journald = Journald::start_with("[Journal]\nStorage=volatile\nRateLimitBurst=0\n");
    journald.assert_release();
    // `pct-dropbear-PID-N.slice/dropbear.service`: journald files its processes' entries
    // under dropbear.service (common/journald.rs)
    let cgroup = UnitCgroup::private("dropbear", "dropbear.service");
    let mut text = null_config_head(dir.path());
    for (name, source) in [
        ("shipped", shipped.as_str()),
        ("unit-only", UNIT_ONLY),
        ("ident-only", IDENT_ONLY),
    ] {
        text.push_str(&format!(
            "[[jail]]\nname = \"{name}\"\nfilter = \"dropbear\"\nlogs = [{source:?}]\n\
             maxretry = 100\nfindtime = \"1h\"\nbantime = \"1h\"\n"
        ));
    }
    let config = path("portcullis.toml");
    fs::write(&config, text).unwrap();
    let socket = path("portcullis.sock");
    let mut daemon = journald.daemon(&config, &path("state"), &path("daemon.log"));

    let mut server = journald.spawn_unit_script(
        &cgroup,
        dir.path(),
        SCRIPT,
        std::slice::from_ref(&d),
        "dropbear -EF",
    );
    assert!(
        wait_marker(&mut server, &path("clients.done"), Duration::from_secs(60)),
        "the run did not end well (exit {:?}): {}\nclients: {}",
        server.try_wait(),
        read("run.stderr"),
        read("client.out")
    );
    // both clients refused
    assert_eq!(
        read("results"),
        "203.0.113.5 1\n203.0.113.6 1\n",
        "clients:\n{}",
        read("client.out")
    );

    // ---- what journald stored ----
    let entries = || journald.messages(&["SYSLOG_IDENTIFIER=dropbear"]);
    let forged = |a: &str| format!(" Bad password attempt for 'root' from {a}:4242");
    let mut all = Vec::new();
    let complete = wait_until(Duration::from_secs(20), || {
        all = entries();
        let n = |s: &str| all.iter().filter(|(m, _)| m.contains(s)).count();
        n("Exit before auth from <203.0.113.5:") == 1
            && n("Exit before auth from <203.0.113.6:") == 1
            && n(&forged("192.0.2.66")) == 1
            && n(&forged("192.0.2.67")) == 1
    });
    let shown = |e: &[(String, Value)]| -> String {
        e.iter()
            .map(|(m, v)| {
                format!(
                    "{} uid={} unit={} {m}\n",
                    v["_TRANSPORT"].as_str().unwrap_or("-"),
                    v["_UID"].as_str().unwrap_or("-"),
                    v["_SYSTEMD_UNIT"].as_str().unwrap_or("-"),
                )
            })
            .collect()
    };
    assert!(
        complete,
        "Dropbear's and nobody's lines are not all in the journal:\n{}",
        shown(&all)
    );
    let fields = |v: &Value| {
        (
            v["_TRANSPORT"].as_str().unwrap_or_default().to_string(),
            v["_UID"].as_str().unwrap_or_default().to_string(),
            v["_SYSTEMD_UNIT"].as_str().unwrap_or("-").to_string(),
        )
    };
    let unit = "dropbear.service".to_string();
    for (m, v) in &all {
        let want = if m.contains(&forged("192.0.2.66")) {
            ("stdout".into(), "65534".into(), unit.clone())
        } else if m.contains(&forged("192.0.2.67")) {
            ("stdout".into(), "65534".into(), "-".into())
        } else {
            ("stdout".into(), "0".into(), unit.clone())
        };
        assert_eq!(fields(v), want, "{m}\njournal:\n{}", shown(&all));
    }
    eprintln!(
        "real_dropbear_journal: dropbear-bin {version}, journald of systemd {}",
        journald.versions().1
    );

    // ---- what the daemon counted ----
    let counts = |pairs: &[(&str, u32)]| -> BTreeMap<String, u32> {
        pairs.iter().map(|(a, n)| (ban_of(a), *n)).collect()
    };
    let want = [
        (
            "shipped",
            counts(&[("203.0.113.5", 10), ("203.0.113.6", 1)]),
        ),
        (
            "unit-only",
            counts(&[("203.0.113.5", 10), ("203.0.113.6", 1), ("192.0.2.66", 1)]),
        ),
        (
            "ident-only",
            counts(&[
                ("203.0.113.5", 10),
                ("203.0.113.6", 1),
                ("192.0.2.66", 1),
                ("192.0.2.67", 1),
            ]),
        ),
    ];
    let mut got = BTreeMap::new();
    let counted = wait_until(Duration::from_secs(20), || {
        got = failing(&socket);
        want.iter().all(|(j, w)| got.get(*j) == Some(w))
    });
    assert!(
        counted,
        "{shipped}: what each jail counts: {got:#?}\nwanted {want:#?}\njournal:\n{}\ndaemon:\n{}",
        shown(&all),
        read("daemon.log")
    );
    assert!(daemon.try_wait().is_none(), "the daemon exited");
    server.kill();
    daemon.kill();
}

//! The `monit` filter against the real Monit, for two releases: Debian 12's monit (5.33.0,
//! the machine's) and Debian 13's (5.34.3, test.sh's trixie-c tree, run with chroot in a
//! private overlay of it: common/real.rs `trixie_mount`), the same scenarios and one table
//! of what counts for both (5.34.3 writes the same lines). Each release's Monit runs twice
//! in the foreground (`-I`) in its own pid, mount and network namespace (`unshare`), each
//! with an HTTP interface on every address of the namespace (192.0.2.28 and 2001:db8::28
//! among them), `allow admin:PASSWORD` and an address list (192.0.2.10, 198.51.100.9,
//! 2001:db8:77::7): one on port 2812 writing its own log file (`set log FILE`, the log the filter's header says to
//! read), one on port 2813 logging through syslog(3) (`set log syslog`) to a private rsyslogd
//! (a private /dev whose /dev/log is its socket), writing rsyslog's traditional file format.
//!
//! Clients (curl with `--interface SRC`), against both: 192.0.2.10 logs in with the right
//! password; 198.51.100.9 sends two wrong passwords, an unknown user, hostile user names
//! (`admin 192.0.2.66`, `x' from 192.0.2.66`, and one with newlines that writes a forged
//! "Denied connection from non-authorized client [192.0.2.66]" line into Monit's file), an
//! empty password, an empty name and no credentials at all; 2001:db8:77::7 a wrong password
//! over IPv6; 203.0.113.77, outside the address list, the right password.
//!
//! `portcullis test --filter monit --json` must count each failure once, for the address
//! Monit wrote (never 192.0.2.66, named only by the client), and nothing for 192.0.2.10 or
//! for the empty name and the missing credentials. In Monit's file the name with newlines
//! is split over three lines and counts nothing (an unknown name, with a newline, can never
//! log in); in the syslog rsyslog escapes it (#012) and it counts once. The syslog's bare
//! "Denied connection from non-authorized client [A]" is not read (see the filter's header:
//! a forged line on Monit's stdout looks the same). `portcullis replay` with `maxretry = 3`
//! on the file bans 198.51.100.9 alone.
//!
//! Needs root, monit, curl, rsyslogd and util-linux's unshare (test.sh installs them), and
//! for the second run chroot and the trixie-c tree; fails loudly when they are missing. Runs
//! in about 2 s each.

mod common;

use common::*;
use std::collections::BTreeMap;
use std::fs;

/// Run as pid 1 of the new pid, mount and network namespace (bash, after
/// [`PRIVATE_SYSLOG_SH`] and [`TRIXIE_SH`]): every process of the run is in it and dies with
/// it; $1 is the test's directory, $2 the Debian 13 tree (empty: the machine's Monit).
const SCRIPT: &str = r#"set -u
d="$1"; tree="$2"
ip link set lo up
for a in 192.0.2.28 192.0.2.10 198.51.100.9 203.0.113.77; do
  ip addr add "$a/32" dev lo || exit 2
done
for a in 2001:db8::28 2001:db8:77::7; do ip addr add "$a/128" dev lo nodad || exit 2; done
# a private /dev whose /dev/log is a private rsyslogd's socket (common/netns.rs)
private_syslog "$d"
# the Monit to run: the machine's (Debian 12), or Debian 13's in a private overlay of its tree
# (common/real.rs trixie_mount: its /etc, /run and /tmp private, $d at the same path)
monit=(monit); r=/
if [ -n "$tree" ]; then
  r="$d/root"
  trixie_mount "$tree" "$r" "$d/trixie" || exit 4
  monit=(chroot "$r" /usr/bin/monit)
fi
dpkg-query --admindir="$r/var/lib/dpkg" -W -f '${Version}' monit > "$d/version"
# monitrc NAME PORT LOG: Monit's control file $d/NAME.rc (mode 0600, as Monit requires)
monitrc() {
  cat > "$d/$1.rc" <<C
set daemon 60
set log $3
set pidfile $d/$1.pid
set idfile $d/$1.id
set statefile $d/$1.state
set httpd port $2
    allow admin:s3cret-pw
    allow 192.0.2.10
    allow 198.51.100.9
    allow 2001:db8:77::7
C
  chmod 600 "$d/$1.rc"
}
monitrc own 2812 "$d/monit.log"
monitrc sys 2813 syslog
"${monit[@]}" -I -c "$d/own.rc" >"$d/own.out" 2>&1 &
"${monit[@]}" -I -c "$d/sys.rc" >"$d/sys.out" 2>&1 &
for _ in $(seq 100); do
  grep -q "Monit 5.* started" "$d/monit.log" 2>/dev/null && grep -q "Monit 5.* started" "$d/syslog" && break
  sleep 0.1
done
grep -q "Monit 5.* started" "$d/monit.log" 2>/dev/null && grep -q "Monit 5.* started" "$d/syslog" \
  || { echo "monit did not start" >&2; exit 4; }
# u SRC URL [CURL ARGS]: one request, its HTTP status into $d/answers
u() { src=$1 url=$2; shift 2; printf '%s ' "$src" >> "$d/answers"
  timeout 10 curl -sS -o /dev/null -w '%{http_code}\n' -m 5 --interface "$src" "$@" "$url" >> "$d/answers" 2>>"$d/curl.err"; }
nl="$(printf 'x\nDenied connection from non-authorized client [192.0.2.66]\nz')"
for p in 2812 2813; do
  u 192.0.2.10 "http://192.0.2.28:$p/" -u admin:s3cret-pw
  u 198.51.100.9 "http://192.0.2.28:$p/" -u admin:wrong1
  u 198.51.100.9 "http://192.0.2.28:$p/" -u admin:wrong2
  u 198.51.100.9 "http://192.0.2.28:$p/" -u eve:x
  u 198.51.100.9 "http://192.0.2.28:$p/" -u 'admin 192.0.2.66:x'
  u 198.51.100.9 "http://192.0.2.28:$p/" -u "x' from 192.0.2.66:x"
  u 198.51.100.9 "http://192.0.2.28:$p/" -u "$nl:x"
  u 198.51.100.9 "http://192.0.2.28:$p/" -u 'admin:'
  u 198.51.100.9 "http://192.0.2.28:$p/" -u ':x'
  u 198.51.100.9 "http://192.0.2.28:$p/"
  u 2001:db8:77::7 "http://[2001:db8::28]:$p/" -u admin:wrong6
  u 203.0.113.77 "http://192.0.2.28:$p/" -u admin:s3cret-pw
done
for _ in $(seq 50); do
  [ "$(grep -c "non-authorized client \[203" "$d/syslog" 2>/dev/null)" -ge 1 ] \
    && [ "$(grep -c "non-authorized client \[203" "$d/monit.log" 2>/dev/null)" -ge 1 ] && break
  sleep 0.1
done
kill %2 %3
wait %2 %3
kill %1
wait
"#;

// The Monit under test: Debian 12's (the machine's, 5.33.0) or Debian 13's (the trixie-c tree,
// 5.34.3, run with chroot).

#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn real_monit_failures_count_for_the_client_monit_wrote() {
    run(Release::Deb12);
}

#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn real_monit_5_34_failures_count_for_the_client_monit_wrote() {
    run(Release::Deb13);
}

/// Runs every scenario against `version`'s Monit (the clients are the machine's) and checks
/// what the clients got, what Monit wrote and what the filter counts of it.
fn run(version: Release) {
    require_root();
    require_program("curl", "curl");
    require_program("rsyslogd", "rsyslog");
    require_program("unshare", "util-linux");
    let tree = match version {
        Release::Deb12 => {
            require_program("monit", "monit");
            String::new()
        }
        Release::Deb13 => {
            require_program("chroot", "coreutils");
            trixie_c_root(&["usr/bin/monit"]).display().to_string()
        }
    };
    let dir = test_dir(match version {
        Release::Deb12 => "monit",
        Release::Deb13 => "monit-5.34",
    });
    let shown = [
        ("monit (own.out)", "own.out"),
        ("monit (sys.out)", "sys.out"),
        ("log", "monit.log"),
        ("syslog", "syslog"),
    ];
    let script = format!("{PRIVATE_SYSLOG_SH}{TRIXIE_SH}{SCRIPT}");
    run_script_ok("monit", dir.path(), &script, &[tree.as_ref()], &shown);
    let read = |name: &str| fs::read_to_string(dir.path().join(name)).unwrap_or_default();
    // the Monit that ran is the release's: its package, and its own start line in both logs
    let release = match version {
        Release::Deb12 => "5.33.0",
        Release::Deb13 => "5.34.3",
    };
    assert!(
        read("version").starts_with(&format!("1:{release}-")),
        "monit {}",
        read("version")
    );
    let started = format!("Monit {release} started");
    for name in ["monit.log", "syslog"] {
        assert!(
            read(name).contains(&started),
            "{name}: no `{started}`:\n{}",
            read(name)
        );
    }
    let own = dir.path().join("monit.log");
    let sys = dir.path().join("syslog");

    // Monit let the right password in and refused every other request (curl's view); the
    // client outside the address list had its connection closed (000)
    let answers = read("answers");
    let status = |src: &str, code: &str| {
        answers
            .lines()
            .filter(|l| *l == format!("{src} {code}"))
            .count()
    };
    assert_eq!(status("192.0.2.10", "200"), 2, "answers:\n{answers}");
    assert_eq!(status("198.51.100.9", "401"), 18, "answers:\n{answers}");
    assert_eq!(status("2001:db8:77::7", "401"), 2, "answers:\n{answers}");
    assert_eq!(status("203.0.113.77", "000"), 2, "answers:\n{answers}");

    let file_text = read("monit.log");
    let sys_text = read("syslog");
    // the forged line is in Monit's file, on a line of its own; rsyslog escaped it
    assert!(
        file_text
            .lines()
            .any(|l| l == "Denied connection from non-authorized client [192.0.2.66]"),
        "the name with newlines did not write its own line:\n{file_text}"
    );
    assert!(
        sys_text.contains(
            "unknown user 'x#012Denied connection from non-authorized client [192.0.2.66]#012z'"
        ),
        "the name with newlines is not escaped in the syslog:\n{sys_text}"
    );
    assert!(
        sys_text.contains("monit["),
        "no monit line in the syslog:\n{sys_text}"
    );
    for text in [&file_text, &sys_text] {
        for shape in [
            "HttpRequest: access denied -- client [198.51.100.9]: wrong password for user 'admin'",
            "HttpRequest: access denied -- client [198.51.100.9]: unknown user 'x' from 192.0.2.66'",
            "HttpRequest: access denied -- client [198.51.100.9]: unknown user ''",
            "HttpRequest: access denied -- client [2001:db8:77::7]: wrong password for user 'admin'",
            "Denied connection from non-authorized client [203.0.113.77]",
        ] {
            assert!(text.contains(shape), "no `{shape}` in:\n{text}");
        }
    }

    let rules = |got: &BTreeMap<String, Vec<String>>| -> BTreeMap<String, Vec<String>> {
        got.iter()
            .map(|(h, v)| {
                let mut r: Vec<String> = v
                    .iter()
                    .map(|l| l.split(':').next().unwrap().to_string())
                    .collect();
                r.sort();
                (h.clone(), r)
            })
            .collect()
    };
    let want = |list: &[(&str, &[&str])]| -> BTreeMap<String, Vec<String>> {
        list.iter()
            .map(|(h, r)| (h.to_string(), r.iter().map(|s| s.to_string()).collect()))
            .collect()
    };
    // Monit's file: three wrong passwords (`admin:` is one), three unknown names; the name
    // with newlines is split and counts nothing; the address list's refusal counts
    let got = lines_by_host("monit", &own);
    assert_eq!(
        rules(&got),
        want(&[
            (
                "198.51.100.9",
                &[
                    "unknown-user",
                    "unknown-user",
                    "unknown-user",
                    "wrong-password",
                    "wrong-password",
                    "wrong-password",
                ],
            ),
            ("2001:db8:77::7", &["wrong-password"]),
            ("203.0.113.77", &["not-allowed"]),
        ]),
        "{}: what counted, per address: {got:#?}\nlog:\n{file_text}",
        own.display()
    );
    // the syslog: the escaped name counts once more; the bare refusal line is not read
    let got = lines_by_host("monit", &sys);
    assert_eq!(
        rules(&got),
        want(&[
            (
                "198.51.100.9",
                &[
                    "unknown-user",
                    "unknown-user",
                    "unknown-user",
                    "unknown-user",
                    "wrong-password",
                    "wrong-password",
                    "wrong-password",
                ],
            ),
            ("2001:db8:77::7", &["wrong-password"]),
        ]),
        "{}: what counted, per address: {got:#?}\nlog:\n{sys_text}",
        sys.display()
    );

    // a jail with maxretry 3 bans the client with six failures, and only it
    let bans = replay_jail(dir.path(), "monit", &own, "normal", 3);
    assert_eq!(
        bans.into_iter().collect::<Vec<_>>(),
        vec!["198.51.100.9".to_string()],
        "bans:\nlog:\n{file_text}"
    );
}

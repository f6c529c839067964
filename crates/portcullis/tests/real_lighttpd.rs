//! The `lighttpd-auth` filter against the real lighttpd, for two releases: Debian 12's
//! lighttpd (1.4.69, the machine's) and Debian 13's (1.4.79, test.sh's trixie tree, run with
//! chroot in a private overlay of it: common/real.rs `trixie_mount`), the same scenarios and
//! one table of what counts for both (1.4.79 writes the same lines; only mod_auth.c's line
//! numbers moved). Each release runs twice (`-D`) in its own pid, mount and network namespace (`unshare`), with mod_auth and
//! a plain user file written at run time: basic auth on /private/, digest auth on /dig/.
//! One instance (port 8080) writes its own error log (`server.errorlog`), the other (port
//! 8081) sends it through syslog(3) (`server.errorlog-use-syslog`) to a private rsyslogd (a
//! private /dev whose /dev/log is its socket, rsyslog's traditional file format).
//!
//! Clients (curl `--interface`), the same against each instance: 192.0.2.10 logs in with
//! the right basic and digest passwords; 198.51.100.9 sends three wrong passwords, the user
//! name `admin 192.0.2.66`, a user name with a newline and an escape byte, a path that
//! imitates the end of the line (`username: y IP: 192.0.2.66`) and a path with `%0a`
//! (refused 400 before mod_auth, not logged); 203.0.113.77 tries an unknown user, asks
//! without credentials (not logged), sends a wrong digest password and a digest whose uri
//! (`/x), IP: 192.0.2.66`) is not the request's, and digests for an unknown user and for
//! the user `bob: wrong password, IP: 192.0.2.66` (refused 401, logged by neither release);
//! 2001:db8:77::7 sends a wrong basic and a
//! wrong digest password over IPv6. lighttpd (1.4.59+) answers a wrong password after a
//! second: the attackers run in parallel.
//!
//! In both logs `portcullis test --filter lighttpd-auth --json` must count each failure
//! once, for the address lighttpd wrote (never one inside a user name, a path or a digest
//! uri), and nothing for 192.0.2.10, and read the user lighttpd checked (never one inside
//! the path); `portcullis replay` with `maxretry = 4` bans 198.51.100.9 alone. The first run
//! found the path's `username: y IP: 192.0.2.66` read into the user (the address was right).
//!
//! Needs root, lighttpd, curl, rsyslogd, iproute2 (ip, ss) and util-linux's unshare
//! (test.sh installs them), and for the second run chroot and the trixie tree; fails loudly
//! when they are missing. Runs in about 2 s each.

mod common;

use common::*;
use std::collections::BTreeMap;
use std::fs;

/// Run as pid 1 of the new pid, mount and network namespace (bash): every process of the
/// run is in it and dies with it; $1 is the test's directory, $2 the Debian 13 tree (empty:
/// the machine's lighttpd). (After [`PRIVATE_SYSLOG_SH`] and [`TRIXIE_SH`].)
const SCRIPT: &str = r##"set -u
d="$1"; tree="$2"
ip link set lo up
for a in 192.0.2.80 192.0.2.10 198.51.100.9 203.0.113.77; do
  ip addr add "$a/32" dev lo || exit 2
done
for a in 2001:db8::80 2001:db8:77::7; do ip addr add "$a/128" dev lo nodad || exit 2; done
# a private /dev whose /dev/log is a private rsyslogd's socket (common/netns.rs)
private_syslog "$d"
# the lighttpd to run: the machine's (Debian 12), or Debian 13's in a private overlay of its
# tree (common/real.rs trixie_mount: its /etc, /run and /tmp private, $d at the same path)
httpd=(lighttpd); r=/
if [ -n "$tree" ]; then
  r="$d/root"
  trixie_mount "$tree" "$r" "$d/trixie" || exit 4
  httpd=(chroot "$r" /usr/sbin/lighttpd)
fi
dpkg-query --admindir="$r/var/lib/dpkg" -W -f '${Version}' lighttpd > "$d/version"
mkdir -p "$d/www/private" "$d/www/dig"
for f in index.html private/index.html dig/index.html; do echo ok > "$d/www/$f"; done
printf 'alice:right-pw\nbob:bob-pw\n' > "$d/users"
for port in 8080 8081; do
  if [ "$port" = 8080 ]; then log="server.errorlog = \"$d/error.log\""; else log='server.errorlog-use-syslog = "enable"'; fi
  cat > "$d/lighttpd-$port.conf" <<C
server.document-root = "$d/www"
server.bind = "192.0.2.80"
server.port = $port
\$SERVER["socket"] == "[2001:db8::80]:$port" { }
$log
server.modules = ("mod_auth", "mod_authn_file")
index-file.names = ("index.html")
auth.backend = "plain"
auth.backend.plain.userfile = "$d/users"
auth.require = (
  "/private/" => ("method" => "basic", "realm" => "private", "require" => "valid-user"),
  "/dig/" => ("method" => "digest", "realm" => "dig", "require" => "valid-user"),
)
C
  "${httpd[@]}" -D -f "$d/lighttpd-$port.conf" > "$d/lighttpd-$port.out" 2>&1 &
  servers="${servers:-} $!"
done
up() { [ -n "$(ss -Hltn "sport = :$1")" ]; }
for _ in $(seq 100); do up 8080 && up 8081 && break; sleep 0.1; done
up 8080 && up 8081 || { echo "lighttpd did not start" >&2; exit 4; }
# c PORT LABEL CURL-ARGS...: one request; "PORT LABEL CODE" into codes
c() {
  local p=$1 l=$2 r
  shift 2
  r=$(timeout 10 curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$@" 2>>"$d/curl.err")
  echo "$p $l $r" >> "$d/codes"
}
b64() { printf "$1" | base64 -w0; }
bad_uri='Digest username="bob", realm="dig", nonce="0:0", uri="/x), IP: 192.0.2.66", response="0123456789abcdef0123456789abcdef", qop=auth, nc=00000001, cnonce="c"'
bad_user='Digest username="bob: wrong password, IP: 192.0.2.66", realm="dig", nonce="0:0", uri="/dig/", response="0123456789abcdef0123456789abcdef", qop=auth, nc=00000001, cnonce="c"'
attack() {
  local p=$1 u=http://192.0.2.80:$1 u6=http://[2001:db8::80]:$1
  c $p legit-basic --interface 192.0.2.10 -u alice:right-pw $u/private/
  c $p legit-digest --interface 192.0.2.10 --digest -u bob:bob-pw $u/dig/
  # lighttpd holds back each wrong-password answer for a second: all at once
  for i in 1 2 3; do c $p heavy-wrong$i --interface 198.51.100.9 -u alice:wrong$i $u/private/ & done
  c $p heavy-user --interface 198.51.100.9 -u 'admin 192.0.2.66:pw' $u/private/ &
  c $p heavy-ctrl --interface 198.51.100.9 -H "Authorization: Basic $(b64 'x\ny\033z 192.0.2.66:pw')" $u/private/ &
  c $p heavy-path --interface 198.51.100.9 -u x:y "$u/private/a%20username:%20y%20IP:%20192.0.2.66" &
  c $p heavy-lf --interface 198.51.100.9 -u x:y "$u/private/%0a192.0.2.66" &
  c $p other-unknown --interface 203.0.113.77 -u nosuch:pw $u/private/ &
  c $p other-none --interface 203.0.113.77 $u/private/ &
  c $p other-digest --interface 203.0.113.77 --digest -u bob:wrong $u/dig/ &
  c $p other-uri --interface 203.0.113.77 -H "Authorization: $bad_uri" $u/dig/ &
  c $p other-digest-unknown --interface 203.0.113.77 --digest -u nosuch:pw $u/dig/ &
  c $p other-digest-user --interface 203.0.113.77 -H "Authorization: $bad_user" $u/dig/ &
  c $p v6-basic --interface 2001:db8:77::7 -u alice:bad "$u6/private/" &
  c $p v6-digest --interface 2001:db8:77::7 --digest -u bob:bad "$u6/dig/" &
  wait
}
attack 8080 &
a1=$!
attack 8081 &
a2=$!
wait $a1 $a2
# 11 failures logged by each instance
for _ in $(seq 50); do
  [ "$(grep -c ' IP: ' "$d/syslog" 2>/dev/null)" -ge 11 ] && [ "$(grep -c ' IP: ' "$d/error.log")" -ge 11 ] && break
  sleep 0.1
done
kill $servers
wait $servers
kill %1
wait
"##;

// The lighttpd under test: Debian 12's (the machine's, 1.4.69) or Debian 13's (the trixie
// tree, 1.4.79, run with chroot).

/// Runs every scenario against `version`'s lighttpd and checks what the clients got, what
/// lighttpd wrote and what the filter counts of it.
fn run(version: Release) {
    require_root();
    require_program("lighttpd", "lighttpd");
    require_program("curl", "curl");
    require_program("rsyslogd", "rsyslog");
    require_program("ip", "iproute2");
    require_program("ss", "iproute2");
    require_program("unshare", "util-linux");
    let tree = match version {
        Release::Deb12 => String::new(),
        Release::Deb13 => {
            require_program("chroot", "coreutils");
            trixie_root(&["usr/sbin/lighttpd", "usr/lib/lighttpd/mod_authn_file.so"])
                .display()
                .to_string()
        }
    };
    let dir = test_dir(match version {
        Release::Deb12 => "lighttpd",
        Release::Deb13 => "lighttpd-1.4.79",
    });
    let shown = [
        ("lighttpd (lighttpd-8080.out)", "lighttpd-8080.out"),
        ("lighttpd (lighttpd-8081.out)", "lighttpd-8081.out"),
        ("log", "error.log"),
    ];
    let script = format!("{PRIVATE_SYSLOG_SH}{TRIXIE_SH}{SCRIPT}");
    run_script_ok("lighttpd", dir.path(), &script, &[tree.as_ref()], &shown);
    let read = |name: &str| fs::read_to_string(dir.path().join(name)).unwrap_or_default();
    let release = match version {
        Release::Deb12 => "1.4.69-",
        Release::Deb13 => "1.4.79-",
    };
    assert!(
        read("version").starts_with(release),
        "lighttpd {}",
        read("version")
    );
    let own = dir.path().join("error.log");
    let sys = dir.path().join("syslog");

    // what the clients got
    let mut codes: Vec<String> = read("codes").lines().map(str::to_string).collect();
    codes.sort();
    let mut want_codes = Vec::new();
    for port in ["8080", "8081"] {
        for (label, code) in [
            ("heavy-ctrl", "401"),
            ("heavy-lf", "400"),
            ("heavy-path", "401"),
            ("heavy-user", "401"),
            ("heavy-wrong1", "401"),
            ("heavy-wrong2", "401"),
            ("heavy-wrong3", "401"),
            ("legit-basic", "200"),
            ("legit-digest", "200"),
            ("other-digest", "401"),
            ("other-digest-unknown", "401"),
            ("other-digest-user", "401"),
            ("other-none", "401"),
            ("other-unknown", "401"),
            ("other-uri", "400"),
            ("v6-basic", "401"),
            ("v6-digest", "401"),
        ] {
            want_codes.push(format!("{port} {label} {code}"));
        }
    }
    assert_eq!(codes, want_codes, "curl: {}", read("curl.err"));

    let want: BTreeMap<&str, Vec<&str>> = [
        ("198.51.100.9", vec!["basic-mismatch"; 6]),
        (
            "203.0.113.77",
            vec!["basic-mismatch", "digest-mismatch", "digest-uri"],
        ),
        ("2001:db8:77::7", vec!["basic-mismatch", "digest-mismatch"]),
    ]
    .into_iter()
    .collect();
    for log in [&own, &sys] {
        let text = fs::read_to_string(log).unwrap_or_default();
        let failures = text.lines().filter(|l| l.contains(" IP: ")).count();
        assert_eq!(
            failures,
            11,
            "{}: lighttpd's failures:\n{text}",
            log.display()
        );
        // the hostile values are in the log, escaped by lighttpd, and took nothing
        for needle in [
            "username: admin 192.0.2.66 IP: 198.51.100.9",
            r"username: x\ny\x1bz 192.0.2.66 IP: 198.51.100.9",
            "for /private/a username: y IP: 192.0.2.66 username: x IP: 198.51.100.9",
            "uri mismatch (/dig/ != /x), IP: 192.0.2.66), IP: 203.0.113.77",
            "username: nosuch IP: 203.0.113.77",
            "digest: auth failed for bob: wrong password, IP: 2001:db8:77::7",
        ] {
            assert!(
                text.contains(needle),
                "{}: no {needle:?} in the log:\n{text}",
                log.display()
            );
        }
        let got = lines_by_host("lighttpd-auth", log);
        let rules = rules_of(&got);
        assert_eq!(
            rules,
            want,
            "{}: what counted, per address: {got:#?}\nlog:\n{text}",
            log.display()
        );
        assert!(
            !got.contains_key("192.0.2.10") && !got.contains_key("192.0.2.66"),
            "{}: {got:#?}",
            log.display()
        );

        // the user is the one lighttpd checked, not one written inside the path
        let snapshot = log.with_extension("users.snapshot");
        fs::write(&snapshot, &text).unwrap();
        let users: Vec<String> = test_json("lighttpd-auth", &snapshot)
            .iter()
            .zip(text.lines())
            .filter(|(_, l)| l.contains(" IP: ") && l.contains("username: "))
            .map(|(v, _)| v["user"].as_str().unwrap_or("-").to_string())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        assert_eq!(
            users,
            [
                "admin 192.0.2.66",
                "alice",
                "nosuch",
                "x",
                r"x\ny\x1bz 192.0.2.66"
            ],
            "{}: the users read:\n{text}",
            log.display()
        );

        // a jail with maxretry 4 bans the client with six failures, and only it
        let bans = replay_jail(dir.path(), "lighttpd-auth", log, "normal", 4);
        assert_eq!(
            bans.into_iter().collect::<Vec<_>>(),
            vec!["198.51.100.9".to_string()],
            "{}: bans:\nlog:\n{text}",
            log.display()
        );
    }
}

#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn real_lighttpd_auth_failures_count_for_the_client_lighttpd_wrote() {
    run(Release::Deb12);
}

#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn real_lighttpd_1_4_79_auth_failures_count_for_the_client_lighttpd_wrote() {
    run(Release::Deb13);
}

//! The `zoneminder` filter against the real ZoneMinder web console. Debian 12's ZoneMinder
//! 1.36.33 (/usr/share/zoneminder/www, aliased at /zm as Debian's apache conf does) runs
//! under Debian's Apache with mpm_prefork and mod_php 8.2 (common/php_web.rs, LogLevel warn
//! as Debian's) in its own pid, mount and network namespace (`unshare`), listening on
//! 192.0.2.1 and [2001:db8::1]. Its database is a private MariaDB (a fresh data directory,
//! unix socket only) loaded with /usr/share/zoneminder/db/zm_create.sql, then
//! ZM_OPT_USE_AUTH on, ZM_SHOW_PRIVACY off and the admin's password set (bcrypt). Its configuration is Debian's
//! /etc/zm/zm.conf (group www-data, as the package's postinst leaves it) and a
//! conf.d/99-pct.conf naming the socket and a log directory of the test, in a private /etc
//! overlay; PHP's sessions go to a private tmpfs; a private rsyslogd (a private /dev whose
//! /dev/log is its socket) takes syslog.
//!
//! With zm_create.sql's logging defaults (ZM_LOG_LEVEL_WEBLOG -5: none, ZM_LOG_LEVEL_SYSLOG
//! -1 and ZM_LOG_LEVEL_FILE 1) ZoneMinder writes a failed login only to its own
//! web_php.log and to syslog (program `web_php`), never to Apache's error log: 203.0.113.5
//! logs in with a wrong password and with a user name holding a line feed and a forged
//! Apache line of 192.0.2.66, sending `X-Forwarded-For: 192.0.2.66`. The run shows that
//! ZoneMinder 1.36 writes `[REMOTE_ADDR]` (203.0.113.5, not the X-Forwarded-For) in those
//! lines, but writes the user name's line feed raw into web_php.log and through PHP's
//! syslog(), which sends each line as a record of its own: a whole forged line either way.
//! That is why the filter does not read them: its programs are Apache's, so nothing counts
//! in the syslog file, and no jail may read web_php.log, where the forged line reads as
//! 192.0.2.66's. Then ZM_LOG_LEVEL_WEBLOG is set to -1 (warnings: Options > Logging, what the
//! filter needs) and ZoneMinder's logger hands its messages to PHP's error_log(), which
//! mod_php writes into Apache's error log as `[php:notice] [pid P:tid T] [client ADDR:PORT]
//! ERR [Login denied for user "admin"]`: 198.51.100.7 logs in with the right password and
//! opens the console (ZM_SHOW_PRIVACY off: the privacy notice was accepted); 203.0.113.6 tries a wrong password, an unknown
//! user, a user that exists whose name holds `] [client 192.0.2.66:1`, and an unknown user
//! holding a line feed and a forged line (with `X-Forwarded-For: 192.0.2.66`); 2001:db8::7
//! a wrong password over IPv6.
//!
//! `portcullis test --filter zoneminder --json` on Apache's error log must count each
//! failure once (`login-denied`), for the address Apache wrote, never 192.0.2.66, nothing
//! for 198.51.100.7; on the syslog file nothing at all; `portcullis replay`
//! with `maxretry = 3` bans 203.0.113.6 alone. The first run found the filter read every
//! Apache line as written (no change needed).
//!
//! Needs root, apache2 with mod_php 8.2 (libapache2-mod-php8.2), zoneminder, php8.2-mysql,
//! php8.2-cli, mariadb-server (mariadbd, mariadb-install-db, mariadb, mariadb-admin), curl,
//! rsyslogd, iproute2's ip and ss, util-linux's unshare (test.sh installs them); fails loudly
//! when they are missing. Runs in about 10 s (ZoneMinder answers each login in about 0.7 s).

mod common;

use common::*;
use std::fs;

/// Run as pid 1 of the new pid, mount and network namespace (bash): every process of the
/// run is in it and dies with it; $1 is the test's directory. (After [`PRIVATE_SYSLOG_SH`],
/// [`PRIVATE_ETC_SH`] and [`PHP_WEB_SH`].)
const SCRIPT: &str = r#"set -u
d="$1"
ip link set lo up
for a in 192.0.2.1 198.51.100.7 203.0.113.5 203.0.113.6; do
  ip addr add "$a/32" dev lo || exit 2
done
for a in 2001:db8::1 2001:db8::7; do ip addr add "$a/128" dev lo nodad || exit 2; done
chmod 755 "$d"
# a private /dev (and /dev/shm, which ZoneMinder's console measures) whose /dev/log is a
# private rsyslogd's socket (common/netns.rs)
private_syslog "$d" shm
# PHP's sessions, in this namespace only
mount -t tmpfs -o mode=1733 pct-sessions /var/lib/php/sessions || exit 4
mkdir -p "$d/zmlog" && chown www-data:www-data "$d/zmlog"
private_mariadb "$d"
sql -e "CREATE DATABASE zm; CREATE USER zmuser@localhost IDENTIFIED BY 'zmpass';
  GRANT ALL ON zm.* TO zmuser@localhost;" || exit 7
sql zm < /usr/share/zoneminder/db/zm_create.sql || exit 7
hash=$(php -r 'echo password_hash("Right-pw-1", PASSWORD_BCRYPT);') || exit 7
sql zm -e "UPDATE Config SET Value='1' WHERE Name='ZM_OPT_USE_AUTH';
  UPDATE Config SET Value='pct-secret' WHERE Name='ZM_AUTH_HASH_SECRET';
  UPDATE Config SET Value='0' WHERE Name='ZM_SHOW_PRIVACY';
  UPDATE Users SET Password='$hash' WHERE Username='admin';
  INSERT INTO Users (Username, Password, Enabled) VALUES ('x] [client 192.0.2.66:1', '$hash', 1);" \
  || exit 7
sql zm -N -e "SELECT Name, Value FROM Config WHERE Name LIKE 'ZM_LOG_LEVEL_%' ORDER BY Name;" \
  > "$d/log-levels" || exit 7
mkdir -p "$d/etc-src/zm/conf.d"
cp /etc/zm/zm.conf "$d/etc-src/zm/zm.conf"
cat > "$d/etc-src/zm/conf.d/99-pct.conf" <<Z
ZM_DB_HOST=localhost:$d/mysqld.sock
ZM_PATH_LOGS=$d/zmlog
Z
private_etc "$d/etc-ov" "$d/etc-src" zm/zm.conf zm/conf.d/99-pct.conf || exit 4
# what the package's postinst does: the web server's group reads it
chgrp www-data /etc/zm/zm.conf && chmod 640 /etc/zm/zm.conf || exit 4
php_apache_conf "$d"
cat >> "$d/httpd.conf" <<C
DocumentRoot $d/run
Alias /zm /usr/share/zoneminder/www
C
php_apache_start "$d"
# zlogin SRC USER PASSWORD [curl options]: the login form's POST
zlogin() {
  local src=$1 user=$2 pw=$3
  shift 3
  web "$src" /zm/index.php --data-urlencode action=login --data-urlencode view=login \
    --data-urlencode "username=$user" --data-urlencode "password=$pw" "$@"
}
forged=$'y\n[Sat Dec 05 00:00:00.000000 2026] [php:notice] [pid 1:tid 1] [client 192.0.2.66:1] ERR [Login denied for user "z"]'
# ZoneMinder's logging defaults: its own log and syslog only
zlogin 203.0.113.5 admin wrong
zlogin 203.0.113.5 "$forged" wrong -H 'X-Forwarded-For: 192.0.2.66'
# warnings to the web server's log too (Options > Logging > LOG_LEVEL_WEBLOG)
sql zm -e "UPDATE Config SET Value='-1' WHERE Name='ZM_LOG_LEVEL_WEBLOG';" || exit 7
zlogin 198.51.100.7 admin Right-pw-1
web 198.51.100.7 "/zm/index.php?view=console"
cp "$d/body" "$d/console.html"
zlogin 203.0.113.6 admin wrong
zlogin 203.0.113.6 nosuch wrong
zlogin 203.0.113.6 'x] [client 192.0.2.66:1' wrong
zlogin 203.0.113.6 "$forged" wrong -H 'X-Forwarded-For: 192.0.2.66'
zlogin 2001:db8::7 admin wrong
for _ in $(seq 50); do
  [ "$(grep -c 'web_php\[' "$d/syslog" 2>/dev/null)" -ge 10 ] && break
  sleep 0.1
done
"#;

#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn real_zoneminder_logins_count_for_the_client_apache_wrote() {
    require_php_web(
        true,
        &[
            ("/usr/share/zoneminder/www/index.php", "zoneminder"),
            ("/usr/share/zoneminder/db/zm_create.sql", "zoneminder"),
            ("/etc/zm/zm.conf", "zoneminder"),
            ("/etc/php/8.2/mods-available/pdo_mysql.ini", "php8.2-mysql"),
        ],
    );
    require_program("php", "php8.2-cli");
    require_program("rsyslogd", "rsyslog");
    let dir = test_dir("zoneminder");
    let shown = [
        ("apache", "apache.out"),
        ("curl", "curl.err"),
        ("error log", "error.log"),
        ("mariadb", "mysqld.err"),
    ];
    let script = format!("{PRIVATE_SYSLOG_SH}{PRIVATE_ETC_SH}{PHP_WEB_SH}{SCRIPT}");
    run_script_ok("ZoneMinder", dir.path(), &script, &[], &shown);
    let read = |name: &str| fs::read_to_string(dir.path().join(name)).unwrap_or_default();
    let (error, sys, own) = (
        dir.path().join("error.log"),
        dir.path().join("syslog"),
        dir.path().join("zmlog/web_php.log"),
    );
    let (error_text, sys_text, own_text) =
        (read("error.log"), read("syslog"), read("zmlog/web_php.log"));

    // zm_create.sql's logging defaults
    assert_eq!(
        read("log-levels"),
        "ZM_LOG_LEVEL_DATABASE\t0\nZM_LOG_LEVEL_FILE\t1\nZM_LOG_LEVEL_SYSLOG\t-1\n\
         ZM_LOG_LEVEL_WEBLOG\t-5\n",
        "ZoneMinder's logging defaults"
    );
    // what the clients saw: 200 to every login, right or wrong (ZoneMinder answers the
    // post-login page or the login form again)
    let want_codes: Vec<String> = [
        ("203.0.113.5", "200 200"),
        ("198.51.100.7", "200 200"),
        ("203.0.113.6", "200 200 200 200"),
        ("2001:db8::7", "200"),
    ]
    .iter()
    .flat_map(|(src, codes)| codes.split(' ').map(move |c| format!("{src} {c}")))
    .collect();
    assert_eq!(
        read("codes").lines().collect::<Vec<_>>(),
        want_codes,
        "HTTP statuses; curl: {}\nerror log: {error_text}",
        read("curl.err")
    );
    assert!(
        read("console.html").contains("Logout"),
        "the legitimate user did not reach the console:\n{}",
        read("console.html")
    );

    // ZoneMinder's own log and syslog: REMOTE_ADDR (never the X-Forwarded-For), and the
    // user name's line feed raw, a forged line of its own
    for (name, text) in [("web_php.log", &own_text), ("syslog", &sys_text)] {
        for (what, n) in [
            ("].ERR [203.0.113.5] [Login denied for user \"admin\"]", 1),
            ("].ERR [203.0.113.5] [Could not retrieve user y", 1),
            ("].ERR [203.0.113.6] [Login denied for user \"admin\"]", 1),
            (
                "].ERR [203.0.113.6] [Could not retrieve user nosuch details]",
                1,
            ),
            (
                "].ERR [203.0.113.6] [Login denied for user \"x] [client 192.0.2.66:1\"]",
                1,
            ),
            ("].ERR [2001:db8::7] [Login denied for user \"admin\"]", 1),
            // info: in the file (level 1), not through syslog (level -1)
            (
                "].INF [198.51.100.7] [Login successful for user \"admin\"]",
                usize::from(name != "syslog"),
            ),
            ("[192.0.2.66]", 0),
        ] {
            assert_eq!(text.matches(what).count(), n, "{name}: {what}\n{text}");
        }
        let forged_line = if name == "syslog" {
            "]: [Sat Dec 05 00:00:00.000000 2026] [php:notice] [pid 1:tid 1] [client 192.0.2.66:1]"
        } else {
            "\n[Sat Dec 05 00:00:00.000000 2026] [php:notice] [pid 1:tid 1] [client 192.0.2.66:1]"
        };
        assert_eq!(
            text.matches(forged_line).count(),
            2,
            "{name}: the raw line feed\n{text}"
        );
        // syslog: the records are web_php's, not Apache's, and nothing counts; web_php.log
        // (which no jail may read) holds the client's whole forged line, which reads as
        // 192.0.2.66's
        let want: &RuleCounts = if name == "syslog" {
            &[]
        } else {
            &[("192.0.2.66", &[("login-denied", 2)])]
        };
        assert_eq!(
            rules_by_host("zoneminder", if name == "syslog" { &sys } else { &own }),
            want_rules(want),
            "{name}: what counted\n{text}"
        );
    }

    // Apache's error log: only what came after LOG_LEVEL_WEBLOG was raised, the line feed
    // escaped
    for (what, n) in [
        ("ERR [disk_total_space", 0),
        ("[client 203.0.113.5:", 0),
        ("[client 198.51.100.7:", 0),
        (
            "] ERR [Could not retrieve user y\\n[Sat Dec 05 00:00:00.000000 2026] [php:notice] \
             [pid 1:tid 1] [client 192.0.2.66:1] ERR [Login denied for user \"z\"] details]",
            1,
        ),
    ] {
        assert_eq!(
            error_text.matches(what).count(),
            n,
            "error log: {what}\n{error_text}"
        );
    }
    assert_eq!(
        error_text
            .lines()
            .filter(|l| l.contains("] [php:notice] [pid "))
            .count(),
        5,
        "error log: ZoneMinder's lines\n{error_text}"
    );
    assert!(
        !error_text
            .lines()
            .any(|l| l.starts_with("[Sat Dec 05 00:00:00")),
        "a client forged a line:\n{error_text}"
    );
    assert_eq!(
        rules_by_host("zoneminder", &error),
        want_rules(&[
            ("203.0.113.6", &[("login-denied", 4)]),
            ("2001:db8::7", &[("login-denied", 1)]),
        ]),
        "error log: what counted, per address\n{error_text}"
    );
    assert_counted_users(
        "zoneminder",
        &error,
        &[
            ("203.0.113.6", "admin"),
            ("203.0.113.6", "nosuch"),
            ("203.0.113.6", "x] [client 192.0.2.66:1"),
        ],
    );

    // a jail with maxretry 3 bans the attacker, and only it
    let bans = replay_jail(dir.path(), "zoneminder", &error, "normal", 3);
    assert_eq!(
        bans.into_iter().collect::<Vec<_>>(),
        vec!["203.0.113.6".to_string()],
        "bans; error log:\n{error_text}"
    );
}

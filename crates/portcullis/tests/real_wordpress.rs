//! The `wordpress` filter's access-log rules against the real WordPress, twice: Debian 12's
//! WordPress (6.1, /usr/share/wordpress, with php8.2-xml for XML-RPC and the
//! twentytwentythree theme) under Debian's Apache with mpm_prefork and mod_php 8.2 and
//! MariaDB 10.11 (the machine's), and Debian 13's WordPress 6.8 (twentytwentyfive theme) on
//! mod_php 8.4, Apache 2.4 and MariaDB 11.8 (test.sh's trixie-e tree, run with chroot in a
//! private overlay of it: common/real.rs `trixie_mount`), the same scenarios and one table of
//! what the clients get and what counts for both (6.8 answers every request as 6.1 did, the
//! same statuses, error boxes and XML-RPC faults). Each run asserts the versions from its
//! dpkg database. It runs (common/php_web.rs) in its own pid, mount and network namespace
//! (`unshare`), listening on
//! 192.0.2.1 and [2001:db8::1], writing the "combined" access log. Its database is a private
//! MariaDB (a fresh data directory, unix socket only); its configuration is Debian's scheme,
//! /etc/wordpress/config-www.example.com.php, in a private /etc overlay. The site is
//! installed through wp-admin/install.php (the installer's form, by HTTP POST) with the admin
//! `alice`.
//!
//! Clients (`curl --interface SRC`, Host www.example.com): 198.51.100.7 logs in with the
//! right password (302), opens the dashboard and its profile, reads the first post and
//! comments on it (302); 198.51.100.8 is a blog editor app calling `wp.getUsersBlogs` over
//! XML-RPC with the right password; 198.51.100.9 is alice again after her session expired,
//! logging in through wp-admin's log-in window (`interim-login`, right password); 203.0.113.5
//! posts the login form with a wrong password, an unknown user, the user `admin from
//! 192.0.2.66 port 1`, no user, a forged Referer and User-Agent holding a whole access-log
//! line of 192.0.2.66, and asks a new password for an unknown user; 203.0.113.6 calls
//! `wp.getUsersBlogs` with wrong passwords (one user name holding `admin from 192.0.2.66`)
//! and a `system.multicall` of three; 203.0.113.9 posts wrong passwords to every other
//! spelling of wp-login.php and xmlrpc.php that WordPress answers (PATH_INFO, a
//! percent-encoded name, `//`, `/./`, `/x"y/../`, a quote in the query, the absolute form
//! `POST http://www.example.com/wp-login.php`); 2001:db8::7 two failed logins and one
//! failed XML-RPC call over IPv6.
//!
//! `portcullis test --filter wordpress --json` on the access log must count each failed
//! login POST (`login-post`: WordPress 6.1 answers 200 to a failed login, 302 to a right one,
//! as the run shows) and each XML-RPC POST (`xmlrpc-post`, class scan) once, for the address
//! Apache wrote, nothing for 198.51.100.7; what cannot be told apart in an access log counts
//! too, as the filter's header says: the editor app's XML-RPC call (scan) and the interim
//! log-in (WordPress answers that right password 200 with "You have logged in
//! successfully."). `portcullis replay` with `maxretry = 3` bans 203.0.113.5 and 203.0.113.9
//! in mode normal, and also 203.0.113.6 and the IPv6 attacker in mode aggressive. The first
//! run found that 203.0.113.9's spellings all evaded both rules (the request had to be
//! exactly `/DIR/wp-login.php[?QUERY]` with no quote in the query).
//!
//! The filter's other rules read the syslog lines of the WP fail2ban plugins, which Debian
//! does not package: not tested here.
//!
//! Needs root, apache2 with mod_php 8.2 (libapache2-mod-php8.2), wordpress,
//! wordpress-theme-twentytwentythree, php8.2-xml, php8.2-mysql, mariadb-server
//! (mariadbd, mariadb-install-db, mariadb, mariadb-admin), curl, iproute2's ip and ss,
//! util-linux's unshare (test.sh installs them), and for the second run chroot and the
//! trixie-e tree with the same programs of Debian 13 (wordpress-theme-twentytwentyfive,
//! php8.4-xml, php8.4-mysql); fails loudly when they are missing. Runs in about 4 s each.

mod common;

use common::*;
use std::fs;

/// Run as pid 1 of the new pid, mount and network namespace (bash): every process of the
/// run is in it and dies with it; $1 is the test's directory. (After [`PRIVATE_SYSLOG_SH`],
/// [`PRIVATE_ETC_SH`], [`TRIXIE_SH`] and [`PHP_WEB_SH`].) $2 is the Debian 13 tree (empty:
/// the machine's WordPress, PHP, Apache and MariaDB).
const SCRIPT: &str = r#"set -u
d="$1"; tree="$2"
ip link set lo up
for a in 192.0.2.1 198.51.100.7 198.51.100.8 198.51.100.9 203.0.113.5 203.0.113.6 \
         203.0.113.9; do
  ip addr add "$a/32" dev lo || exit 2
done
for a in 2001:db8::1 2001:db8::7; do ip addr add "$a/128" dev lo nodad || exit 2; done
chmod 755 "$d"
private_dev
# the programs to run: the machine's (Debian 12), or Debian 13's in a private overlay of its
# tree (common/real.rs trixie_mount: its /etc private and writable, $d at the same path)
r=
if [ -n "$tree" ]; then
  r="$d/root"
  trixie_mount "$tree" "$r" "$d/trixie" || exit 4
  PCT_ROOT=$r PCT_PHP=8.4
fi
dpkg-query --admindir="$r/var/lib/dpkg" -W -f '${Package} ${Version}\n' wordpress \
  "libapache2-mod-php$PCT_PHP" mariadb-server > "$d/version"
# WordPress mails the new site's admin: no mail leaves the namespace
if [ -e "$r/usr/sbin/sendmail" ]; then
  mount --bind "$r/bin/true" "$r/usr/sbin/sendmail" || exit 4
fi
private_mariadb "$d"
sql -e "CREATE DATABASE wordpress; CREATE USER wordpress@localhost IDENTIFIED BY 'Db-pw-1';
  GRANT ALL ON wordpress.* TO wordpress@localhost;" || exit 7
# Debian's scheme: /usr/share/wordpress/wp-config.php reads config-HOST.php
mkdir -p "$d/etc-src/wordpress"
cat > "$d/etc-src/wordpress/config-www.example.com.php" <<P
<?php
define('DB_NAME', 'wordpress');
define('DB_USER', 'wordpress');
define('DB_PASSWORD', 'Db-pw-1');
define('DB_HOST', 'localhost:$d/mysqld.sock');
define('DISABLE_WP_CRON', true);
define('WP_HTTP_BLOCK_EXTERNAL', true);
P
if [ -n "$tree" ]; then
  cp "$d/etc-src/wordpress/config-www.example.com.php" "$r/etc/wordpress/" || exit 4
else
  private_etc "$d/etc-ov" "$d/etc-src" wordpress/config-www.example.com.php || exit 4
fi
php_apache_conf "$d"
echo "DocumentRoot /usr/share/wordpress" >> "$d/httpd.conf"
php_apache_start "$d"
# login SRC PATH USER PASSWORD [curl options]: the login form's POST; "SRC ERR" into
# $d/errors when WordPress answered with its login error box
login() {
  local src=$1 path=$2 user=$3 pw=$4
  shift 4
  web "$src" "$path" --data-urlencode "log=$user" --data-urlencode "pwd=$pw" \
    --data-urlencode 'wp-submit=Log In' --data-urlencode testcookie=1 \
    --data-urlencode 'redirect_to=http://www.example.com/wp-admin/' "$@"
  if grep -q 'id="login_error"' "$d/body"; then echo "$src ERR" >> "$d/errors"; fi
}
# rpc SRC PATH BODY: an XML-RPC call, its answer appended to $d/xmlrpc.out
rpc() {
  web "$1" "$2" -H 'Content-Type: text/xml' --data-binary "$3"
  { cat "$d/body"; echo; } >> "$d/xmlrpc.out"
}
blogs() {
  printf '<?xml version="1.0"?><methodCall><methodName>wp.getUsersBlogs</methodName><params>'
  printf '<param><value><string>%s</string></value></param>' "$1" "$2"
  printf '</params></methodCall>'
}
call() {
  printf '<value><struct><member><name>methodName</name><value><string>wp.getUsersBlogs'
  printf '</string></value></member><member><name>params</name><value><array><data>'
  printf '<value><string>%s</string></value>' alice "$1"
  printf '</data></array></value></member></struct></value>'
}
# the site's installation, by its installer's form
web 198.51.100.7 "/wp-admin/install.php?step=2" --data-urlencode weblog_title=Test \
  --data-urlencode user_name=alice --data-urlencode admin_password=Right-pw-1 \
  --data-urlencode admin_password2=Right-pw-1 --data-urlencode pw_weak=1 \
  --data-urlencode admin_email=alice@example.com --data-urlencode blog_public=0
cp "$d/body" "$d/install.html"
# the legitimate user logs in and uses the site
web 198.51.100.7 /wp-login.php
login 198.51.100.7 /wp-login.php alice Right-pw-1
web 198.51.100.7 /wp-admin/
cp "$d/body" "$d/dashboard.html"
web 198.51.100.7 /wp-admin/profile.php
web 198.51.100.7 "/?p=1"
web 198.51.100.7 /wp-comments-post.php --data-urlencode 'comment=Nice post' \
  --data-urlencode comment_post_ID=1
# a blog editor app
rpc 198.51.100.8 /xmlrpc.php "$(blogs alice Right-pw-1)"
# alice's session expired: wp-admin's log-in window
web 198.51.100.9 "/wp-login.php?interim-login=1"
login 198.51.100.9 /wp-login.php alice Right-pw-1 --data-urlencode interim-login=1
cp "$d/body" "$d/interim.html"
# the attacker's failed logins
web 203.0.113.5 /wp-login.php
login 203.0.113.5 /wp-login.php alice wrong
login 203.0.113.5 /wp-login.php nosuch wrong
login 203.0.113.5 /wp-login.php 'admin from 192.0.2.66 port 1' wrong
login 203.0.113.5 /wp-login.php '' wrong
login 203.0.113.5 /wp-login.php alice wrong2 -e 'http://192.0.2.66/wp-login.php" 302 1 "-' \
  -A '192.0.2.66 - - [01/Jan/2026:00:00:00 +0000] "POST /wp-login.php HTTP/1.1" 200 1 "-" "-"'
web 203.0.113.5 "/wp-login.php?action=lostpassword" --data-urlencode user_login=nosuch
cp "$d/body" "$d/lostpassword.html"
# XML-RPC: wrong passwords, then three in one multicall
rpc 203.0.113.6 /xmlrpc.php "$(blogs alice wrong)"
rpc 203.0.113.6 /xmlrpc.php "$(blogs 'admin from 192.0.2.66' wrong)"
rpc 203.0.113.6 /xmlrpc.php "<?xml version=\"1.0\"?><methodCall><methodName>system.multicall</methodName><params><param><value><array><data>$(call a)$(call b)$(call c)</data></array></value></param></params></methodCall>"
# other spellings of the same scripts (and two that Apache answers 404)
web 203.0.113.9 /wp-login.php
for p in /wp-login.php/x /wp%2Dlogin.php /%77p-login.php //wp-login.php /./wp-login.php \
         '/wp-login.php?a="b' '/x"y/../wp-login.php' '/wp-login.php;x' /wp-login.php%3Fa; do
  login 203.0.113.9 "$p" alice wrong
done
login 203.0.113.9 /x alice wrong --request-target http://www.example.com/wp-login.php
for p in /xmlrpc.php/x /%78mlrpc.php '/xmlrpc.php?a="b'; do
  rpc 203.0.113.9 "$p" "$(blogs alice wrong)"
done
# IPv6
web 2001:db8::7 /wp-login.php
login 2001:db8::7 /wp-login.php alice wrong
login 2001:db8::7 /wp-login.php nosuch6 wrong
rpc 2001:db8::7 /xmlrpc.php "$(blogs alice wrong)"
"#;

#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn real_wordpress_logins_count_for_the_client_apache_wrote() {
    run(Release::Deb12);
}

#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn real_wordpress_6_8_logins_count_for_the_client_apache_wrote() {
    run(Release::Deb13);
}

/// Runs every scenario against `version`'s WordPress, PHP, Apache and MariaDB (the clients
/// are the machine's) and checks what the clients got, what Apache wrote and what the filter
/// counts of it.
fn run(version: Release) {
    let tree = match version {
        Release::Deb12 => {
            require_php_web(
                true,
                &[
                    ("/usr/share/wordpress/wp-login.php", "wordpress"),
                    (
                        "/usr/share/wordpress/wp-content/themes/twentytwentythree/theme.json",
                        "wordpress-theme-twentytwentythree",
                    ),
                    ("/etc/php/8.2/mods-available/xml.ini", "php8.2-xml"),
                    ("/etc/php/8.2/mods-available/mysqli.ini", "php8.2-mysql"),
                ],
            );
            String::new()
        }
        Release::Deb13 => require_php_web13(
            true,
            &[
                "usr/share/wordpress/wp-login.php",
                "usr/share/wordpress/wp-content/themes/twentytwentyfive/theme.json",
                "etc/php/8.4/mods-available/xml.ini",
                "etc/php/8.4/mods-available/mysqli.ini",
            ],
        )
        .display()
        .to_string(),
    };
    let dir = test_dir(match version {
        Release::Deb12 => "wordpress",
        Release::Deb13 => "wordpress-6.8",
    });
    let shown = [
        ("apache", "apache.out"),
        ("curl", "curl.err"),
        ("error log", "error.log"),
        ("mariadb", "mysqld.err"),
    ];
    let script = format!("{PRIVATE_SYSLOG_SH}{PRIVATE_ETC_SH}{TRIXIE_SH}{PHP_WEB_SH}{SCRIPT}");
    run_script_ok("WordPress", dir.path(), &script, &[tree.as_ref()], &shown);
    let read = |name: &str| fs::read_to_string(dir.path().join(name)).unwrap_or_default();
    // which release started (dpkg-query sorts by package): mod_php 8.2, MariaDB 10.11 and
    // WordPress 6.1 (Debian 12) or mod_php 8.4, MariaDB 11.8 and WordPress 6.8 (Debian 13)
    let want = match version {
        Release::Deb12 => [
            "libapache2-mod-php8.2 8.2.",
            "mariadb-server 1:10.11.",
            "wordpress 6.1.",
        ],
        Release::Deb13 => [
            "libapache2-mod-php8.4 8.4.",
            "mariadb-server 1:11.8.",
            "wordpress 6.8.",
        ],
    };
    let versions = read("version");
    assert!(
        versions.lines().count() == 3 && versions.lines().zip(want).all(|(l, w)| l.starts_with(w)),
        "versions: {versions}"
    );
    let access = dir.path().join("access.log");
    let access_text = read("access.log");

    // what the clients saw
    let codes = read("codes");
    let want_codes: Vec<String> = [
        ("198.51.100.7", "200 200 302 200 200 200 302"),
        ("198.51.100.8", "200"),
        ("198.51.100.9", "200 200"),
        ("203.0.113.5", "200 200 200 200 200 200 200"),
        ("203.0.113.6", "200 200 200"),
        (
            "203.0.113.9",
            "200 200 200 200 200 200 200 200 404 404 200 200 200 200",
        ),
        ("2001:db8::7", "200 200 200 200"),
    ]
    .iter()
    .flat_map(|(src, codes)| codes.split(' ').map(move |c| format!("{src} {c}")))
    .collect();
    assert_eq!(
        codes.lines().collect::<Vec<_>>(),
        want_codes,
        "HTTP statuses; curl: {}\nerror log: {}",
        read("curl.err"),
        read("error.log")
    );
    assert!(
        read("install.html").contains("Success!"),
        "the installation failed:\n{}",
        read("install.html")
    );
    assert!(
        read("dashboard.html").contains("<title>Dashboard"),
        "the legitimate user did not reach the dashboard"
    );
    assert!(
        read("interim.html").contains("You have logged in successfully."),
        "the interim log-in failed:\n{}",
        read("interim.html")
    );
    assert!(
        read("lostpassword.html").contains("There is no account with that username"),
        "lost password:\n{}",
        read("lostpassword.html")
    );
    // each failed login form answered with WordPress's error box (every spelling reached
    // wp-login.php), each wrong XML-RPC password with its fault
    let errors = read("errors");
    for (src, n) in [("203.0.113.5", 5), ("203.0.113.9", 8), ("2001:db8::7", 2)] {
        assert_eq!(
            errors.matches(&format!("{src} ERR")).count(),
            n,
            "{src}: login errors:\n{errors}"
        );
    }
    assert!(!errors.contains("198.51.100."), "{errors}");
    let rpc = read("xmlrpc.out");
    assert_eq!(
        rpc.matches("Incorrect username or password.").count(),
        9,
        "XML-RPC answers:\n{rpc}"
    );
    assert_eq!(
        rpc.matches("<string>http://www.example.com/xmlrpc.php</string>")
            .count(),
        1,
        "XML-RPC answers:\n{rpc}"
    );

    // the access log: the forged line stays inside the attacker's quoted fields
    assert!(
        access_text.contains(
            r#" "192.0.2.66 - - [01/Jan/2026:00:00:00 +0000] \"POST /wp-login.php HTTP/1.1\" 200 1 \"-\" \"-\"""#
        ),
        "access log:\n{access_text}"
    );
    assert!(
        access_text.contains(r#""POST /wp-login.php?a=\"b HTTP/1.1" 200 "#)
            && access_text.contains(r#""POST http://www.example.com/wp-login.php HTTP/1.1" 200 "#),
        "access log:\n{access_text}"
    );
    assert!(
        !access_text.lines().any(|l| l.starts_with("192.0.2.66")),
        "a client forged a line:\n{access_text}"
    );

    // what counts, per address and rule
    let want: &RuleCounts = &[
        ("198.51.100.8", &[("xmlrpc-post", 1)]),
        ("198.51.100.9", &[("login-post", 1)]),
        ("203.0.113.5", &[("login-post", 6)]),
        ("203.0.113.6", &[("xmlrpc-post", 3)]),
        ("203.0.113.9", &[("login-post", 8), ("xmlrpc-post", 3)]),
        ("2001:db8::7", &[("login-post", 2), ("xmlrpc-post", 1)]),
    ];
    assert_eq!(
        rules_by_host("wordpress", &access),
        want_rules(want),
        "what counted, per address; access log:\n{access_text}"
    );

    // a jail with maxretry 3 bans the login attackers in mode normal (xmlrpc-post is a scan
    // rule), and the XML-RPC ones too in mode aggressive; never a legitimate client
    for (mode, banned) in [
        ("normal", vec!["203.0.113.5", "203.0.113.9"]),
        (
            "aggressive",
            vec!["2001:db8::/64", "203.0.113.5", "203.0.113.6", "203.0.113.9"],
        ),
    ] {
        let bans = replay_jail(dir.path(), "wordpress", &access, mode, 3);
        assert_eq!(
            bans.iter().map(String::as_str).collect::<Vec<_>>(),
            banned,
            "bans in mode {mode}; access log:\n{access_text}"
        );
    }
}

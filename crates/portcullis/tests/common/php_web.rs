//! Pieces shared by the real tests of PHP web applications (real_wordpress.rs,
//! real_php_url_fopen.rs, real_zoneminder.rs): a private MariaDB and Debian's Apache with
//! mod_php, both started by the test's script in its own namespaces.

/// Bash for a script run by [`super::run_unshared`] (put before it). Every program runs on
/// the machine (Debian 12's), unless the script sets `PCT_ROOT` to a Debian 13 tree mounted
/// with [`super::TRIXIE_SH`]'s `trixie_mount` (its /etc private and writable, the test's
/// directory at the same path inside) and `PCT_PHP` to its PHP's version (8.4): then
/// MariaDB's programs and Apache run in it with `chroot` (`pct_in PROGRAM…` runs one so), and
/// the php.ini and modules are the tree's. The clients (curl) stay the machine's.
///
/// * `private_mariadb DIR` makes a fresh data directory DIR/mysql with `mariadb-install-db`
///   (root@localhost with no password, no test database) and starts `mariadbd` on it in the
///   background (a job of the script's shell) as root, listening on the unix socket
///   DIR/mysqld.sock only (`skip-networking`), its error log DIR/mysqld.err; it waits (at most
///   10 s) until the server answers, else the script exits 6. It never syncs to disk (a
///   throw-away database: loading ZoneMinder's schema takes 2 s instead of 3). Afterwards
///   `sql ARGS…` runs the `mariadb` client as root on that socket (`sql -e 'STATEMENT'`,
///   `sql DB < FILE`).
/// * `php_apache_conf DIR` writes DIR/httpd.conf: Debian's Apache with mpm_prefork (which
///   mod_php needs) and mod_php 8.2 or `PCT_PHP` (its php.ini is Debian's
///   /etc/php/VERSION/apache2/php.ini: display_errors Off, log_errors On, no error_log, so
///   PHP's messages go to Apache's error log), children as www-data, its own pid file and runtime directory under DIR/run, the
///   error log DIR/error.log (Apache's default ErrorLogFormat, LogLevel warn) and the
///   "combined" access log DIR/access.log; `.php` files run by mod_php, `index.php` the
///   directory index; it listens on 192.0.2.1:80 and [2001:db8::1]:80 (the caller adds
///   them to `lo`). The caller appends its DocumentRoot, aliases and directories (every
///   directory is granted: `<Directory />` Require all granted).
/// * `php_apache_start DIR` starts it in the foreground as a job of the script (output in
///   DIR/apache.out) and waits (at most 10 s) until both sockets listen, else the script
///   exits 5.
/// * `web SRC PATH [CURL OPTIONS…]` sends one request from SRC (`curl --interface`) to
///   http://www.example.com PATH, connecting to 192.0.2.1 or, from an IPv6 SRC,
///   [2001:db8::1] (`--connect-to`), with SRC's own cookie jar (DIR/jar-SRC), the path as
///   is; it appends "SRC STATUS" to DIR/codes and leaves the answer's body in DIR/body
///   (curl's errors in DIR/curl.err).
pub const PHP_WEB_SH: &str = r#"PCT_ROOT=${PCT_ROOT:-}
PCT_PHP=${PCT_PHP:-8.2}
pct_in() {
  if [ -n "$PCT_ROOT" ]; then chroot "$PCT_ROOT" "$@"; else "$@"; fi
}
private_mariadb() {
  local d=$1
  PCT_DB_SOCK="$d/mysqld.sock"
  pct_in mariadb-install-db --no-defaults --datadir="$d/mysql" --user=root \
    --auth-root-authentication-method=normal --skip-test-db > "$d/mariadb-install.out" 2>&1 \
    || { echo "mariadb-install-db failed" >&2; cat "$d/mariadb-install.out" >&2; exit 6; }
  pct_in mariadbd --no-defaults --datadir="$d/mysql" --socket="$PCT_DB_SOCK" --skip-networking \
    --user=root --pid-file="$d/mysqld.pid" --log-error="$d/mysqld.err" \
    --innodb-buffer-pool-size=16M --skip-log-bin --innodb-flush-log-at-trx-commit=0 \
    --innodb-flush-method=nosync --innodb-doublewrite=0 < /dev/null > /dev/null 2>&1 &
  for _ in $(seq 100); do
    pct_in mariadb-admin --no-defaults --socket="$PCT_DB_SOCK" -u root ping > /dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "mariadbd did not start" >&2; cat "$d/mysqld.err" >&2; exit 6
}
sql() {
  pct_in mariadb --no-defaults --socket="$PCT_DB_SOCK" -u root "$@"
}
php_apache_conf() {
  local d=$1
  mkdir -p "$d/run"
  cat > "$d/httpd.conf" <<C
ServerRoot /usr/lib/apache2
LoadModule mpm_prefork_module modules/mod_mpm_prefork.so
LoadModule authz_core_module modules/mod_authz_core.so
LoadModule alias_module modules/mod_alias.so
LoadModule dir_module modules/mod_dir.so
LoadModule mime_module modules/mod_mime.so
LoadModule env_module modules/mod_env.so
LoadModule php_module modules/libphp$PCT_PHP.so
StartServers 2
MinSpareServers 1
MaxSpareServers 4
TypesConfig /etc/mime.types
DirectoryIndex index.php index.html
DefaultRuntimeDir $d/run
PidFile $d/run/httpd.pid
Mutex file:$d/run default
ServerName www.example.com
User www-data
Group www-data
Listen 192.0.2.1:80
Listen [2001:db8::1]:80
ErrorLog $d/error.log
LogLevel warn
LogFormat "%h %l %u %t \"%r\" %>s %O \"%{Referer}i\" \"%{User-Agent}i\"" combined
CustomLog $d/access.log combined
<Directory />
  Require all granted
  AllowOverride None
</Directory>
<FilesMatch "\.php$">
  SetHandler application/x-httpd-php
</FilesMatch>
C
}
php_apache_start() {
  local d=$1
  PCT_WEB_DIR=$d
  pct_in /usr/sbin/apache2 -f "$d/httpd.conf" -D FOREGROUND > "$d/apache.out" 2>&1 < /dev/null &
  for _ in $(seq 100); do
    [ "$(ss -Hltn '( sport = :80 )' | wc -l)" -ge 2 ] && return 0
    sleep 0.1
  done
  echo "apache did not listen" >&2; cat "$d/apache.out" >&2; exit 5
}
web() {
  local src=$1 path=$2 to=192.0.2.1 code d=$PCT_WEB_DIR
  shift 2
  case $src in *:*) to='[2001:db8::1]';; esac
  code=$(timeout 10 curl -sS -g -m 8 --path-as-is --interface "$src" \
    --connect-to "www.example.com:80:$to:80" -b "$d/jar-$src" -c "$d/jar-$src" \
    -o "$d/body" -w '%{http_code}' "$@" "http://www.example.com$path" 2>> "$d/curl.err")
  printf '%s %s\n' "$src" "$code" >> "$d/codes"
}
"#;

/// What every PHP web-application test needs (fails loudly when missing: test.sh installs
/// them): root, Debian's Apache with mod_php 8.2, curl, iproute2's ip and ss, unshare;
/// with `mariadb`, MariaDB's server and client; and each (file, package) of `files`.
pub fn require_php_web(mariadb: bool, files: &[(&str, &str)]) {
    super::require_root();
    super::require_program("apache2", "apache2");
    let php = (
        "/usr/lib/apache2/modules/libphp8.2.so",
        "libapache2-mod-php8.2",
    );
    for (file, package) in std::iter::once(&php).chain(files) {
        assert!(
            std::path::Path::new(file).is_file(),
            "{file} is missing: install {package} (test.sh does)"
        );
    }
    if mariadb {
        super::require_program("mariadbd", "mariadb-server");
        super::require_program("mariadb-install-db", "mariadb-server");
        super::require_program("mariadb", "mariadb-client");
        super::require_program("mariadb-admin", "mariadb-client");
    }
    for (program, package) in [
        ("curl", "curl"),
        ("ip", "iproute2"),
        ("ss", "iproute2"),
        ("unshare", "util-linux"),
    ] {
        super::require_program(program, package);
    }
}

/// The Debian 13 counterpart of [`require_php_web`]: test.sh's fifth trixie tree
/// ([`super::trixie_e_root`]) with Apache, mod_php 8.4 and, with `mariadb`, MariaDB's server
/// and client, plus each of `files` (relative to the tree); on the machine root, chroot and
/// the clients. Returns the tree's root.
pub fn require_php_web13(mariadb: bool, files: &[&str]) -> std::path::PathBuf {
    super::require_root();
    let mut wanted = vec![
        "usr/sbin/apache2",
        "usr/lib/apache2/modules/libphp8.4.so",
        "etc/php/8.4/apache2/php.ini",
    ];
    if mariadb {
        wanted.extend([
            "usr/sbin/mariadbd",
            "usr/bin/mariadb-install-db",
            "usr/bin/mariadb",
            "usr/bin/mariadb-admin",
        ]);
    }
    wanted.extend(files);
    let root = super::trixie_e_root(&wanted);
    for (program, package) in [
        ("chroot", "coreutils"),
        ("curl", "curl"),
        ("ip", "iproute2"),
        ("ss", "iproute2"),
        ("unshare", "util-linux"),
    ] {
        super::require_program(program, package);
    }
    root
}

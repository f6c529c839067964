//! The `lemonldap-ng` filter against the real LemonLDAP::NG portal. Debian 12's portal (2.16)
//! runs in its own pid, mount and network namespace (`unshare`) under Debian's
//! llng-fastcgi-server (workers as www-data, a Unix socket in the test's directory),
//! behind Debian's nginx on 192.0.2.1:80 and [2001:db8::1]:80 (no real_ip module: the portal
//! gets the TCP peer as REMOTE_ADDR). The portal reads a private lemonldap-ng.ini (a private
//! /etc overlay, `PRIVATE_ETC_SH`) naming a File configuration backend in the test's
//! directory; its users are in a private slapd (dwho, rtyler and msmith, password = login,
//! on 127.0.0.1). It logs through its Syslog logger (ident LLNG, the user log at facility
//! auth) to a private rsyslogd (a private /dev whose /dev/log is its socket, rsyslog's
//! traditional file format): the log the filter reads. Two configurations run one after the
//! other: first `authentication = LDAP` (two workers), then `Combination` with `[L] or [D]`
//! (LDAP, then the Demo backend; one worker, which serves every login in turn).
//!
//! Clients (curl `--interface`, each login fetching the form's one-time token first, then
//! POSTing user, password and token): under LDAP, 203.0.113.5 sends wrong passwords (one with
//! `X-Forwarded-For: 192.0.2.66`), unknown users, and hostile names (`x (192.0.2.66)`,
//! `192.0.2.66`, `a@192.0.2.66`, `x` + LF, `dwho` + LF, a CR LF and a whole forged line);
//! 2001:db8:65::5 two wrong passwords (one with the forged header) and an unknown user;
//! 198.51.100.10 logs in as dwho/dwho. Under Combination, 203.0.113.6 sends a wrong password,
//! unknown and hostile names; 2001:db8:66::6 two wrong passwords and an unknown user;
//! 198.51.100.10 logs in as rtyler/rtyler.
//!
//! What the run showed: names with a space, parenthesis or CR fail the portal's userControl
//! (PE_MALFORMEDUSER) and log nothing under LDAP, "All schemes failed (A)" (no user, not
//! counted) under Combination; a name ending in LF passes it (Perl's `$`) and rsyslog writes
//! the LF as #012 in the line. Under Combination, the modules' own user-log lines come back as
//! `[notice] Combination (MODULE): ...` (not read), except the LDAP bind's "Bad password for
//! U (A)", which Lib/Net/LDAP.pm writes through the portal's logger as a plain `[warn]`: a
//! wrong password there writes both "Bad password for U (A)" and "All schemes failed for
//! user U (A)", in the same worker (pid), one after the other; an unknown user only the
//! second.
//!
//! `portcullis test --filter lemonldap-ng --json` must match each of those lines, for the
//! address nginx passed (never 192.0.2.66), and nothing for the legitimate logins;
//! `portcullis replay` with `maxretry` 3, 4 and 5 must show that a jail counts one per failed
//! login (the filter's rule all-schemes is of kind closing: after the same user's "Bad
//! password" in the same worker it is the same login), the two lines of a wrong password
//! under Combination once, and bans nothing else.
//!
//! A second test runs the same script, clients and table against Debian 13's portal (2.21.2:
//! liblemonldap-ng-portal-perl, lemonldap-ng-fastcgi-server and the same Perl modules, plus
//! libmime-tools-perl, libemail-address-xs-perl, libemail-sender-perl and
//! libstring-random-perl, which 2.21's Password::LDAP loads, in test.sh's third Debian 13
//! tree, `common::real::trixie_c_root`): llng-fastcgi-server with chroot in a private overlay
//! of the tree (`trixie_mount`: the ini in the overlay's /etc, the test's directory at the
//! same path inside, /dev/log the same private rsyslogd); nginx, slapd and the clients stay
//! the machine's. 2.21.2 wrote every failure line as 2.16 did (the Combination's two lines
//! of a wrong password too); only a login reads "User U connected from MODULE (A)" (2.16:
//! "U connected"), which no rule reads. The version is asserted from the tree's dpkg database.
//!
//! Needs root, llng-fastcgi-server (lemonldap-ng-fastcgi-server, liblemonldap-ng-portal-perl
//! and the Perl modules its LDAP backend and captcha plugin load: libnet-ldap-perl,
//! libio-socket-timeout-perl, libunicode-string-perl, libgd-securityimage-perl,
//! libimage-magick-perl), nginx, slapd and slapadd (slapd), curl, rsyslogd and util-linux's
//! unshare, and for the second test chroot and the trixie-c tree; fails loudly when they are
//! missing. Each runs in about 6 s.

mod common;

use common::*;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;

/// Run as pid 1 of the new pid, mount and network namespace (bash): every process of the
/// run is in it and dies with it; $1 is the test's directory, $2 the Debian 13 tree (empty:
/// the machine's portal). (After [`PRIVATE_ETC_SH`], [`PRIVATE_SYSLOG_SH`] and
/// [`TRIXIE_SH`].)
const SCRIPT: &str = r#"set -u
d="$1"; tree="$2"
ip link set lo up
for a in 192.0.2.1 198.51.100.10 203.0.113.5 203.0.113.6; do ip addr add "$a/32" dev lo || exit 2; done
for a in 2001:db8::1 2001:db8:65::5 2001:db8:66::6; do ip addr add "$a/128" dev lo nodad || exit 2; done
# a private /dev whose /dev/log is a private rsyslogd's socket (common/netns.rs)
private_syslog "$d"
mkdir -p "$d/etc-src/lemonldap-ng" "$d/conf" "$d/sessions/lock" "$d/psessions/lock" "$d/cache" \
  "$d/db" "$d/nginx-tmp" "$d/run"
# the portal reads /etc/lemonldap-ng/lemonldap-ng.ini only: a private /etc overlay holds it
cat > "$d/etc-src/lemonldap-ng/lemonldap-ng.ini" <<I
[all]
logLevel = notice
checkTime = 1
[configuration]
type = File
dirName = $d/conf
localStorage = Cache::FileCache
localStorageOptions = { 'namespace' => 'lemonldap-ng-config', 'default_expires_in' => 600, 'cache_root' => '$d/cache', 'cache_depth' => 3 }
[portal]
staticPrefix = /static
templateDir = /usr/share/lemonldap-ng/portal/templates
languages = en
[handler]
status = 0
I
# the portal to run: the machine's (Debian 12), or Debian 13's in a private overlay of its
# tree (common/real.rs trixie_mount: its /etc, /run and /tmp private, $d at the same path),
# whose /etc takes the ini
llng_server=(llng-fastcgi-server); r=/
if [ -n "$tree" ]; then
  r="$d/root"
  trixie_mount "$tree" "$r" "$d/trixie" || exit 4
  cp "$d/etc-src/lemonldap-ng/lemonldap-ng.ini" "$r/etc/lemonldap-ng/lemonldap-ng.ini" || exit 4
  llng_server=(chroot "$r" /usr/sbin/llng-fastcgi-server)
else
  private_etc "$d/etc-ov" "$d/etc-src" lemonldap-ng/lemonldap-ng.ini || exit 4
fi
dpkg-query --admindir="$r/var/lib/dpkg" -W -f '${Version}' liblemonldap-ng-portal-perl > "$d/version"
# the portal's configuration (File backend): LDAP first, then a Combination of LDAP and Demo
conf() {
  cat <<J
{
 "cfgNum": $1, "cfgAuthor": "portcullis test", "cfgDate": 1700000000, "cfgVersion": "2.16.1",
 "domain": "example.com", "portal": "http://auth.example.com/", "securedCookie": 0,
 "authentication": "$2", "userDB": "Same", "passwordDB": "LDAP", "registerDB": "Null",
 "combination": "[L] or [D]",
 "combModules": { "L": { "type": "LDAP", "for": 0, "over": {} }, "D": { "type": "Demo", "for": 0, "over": {} } },
 "ldapServer": "ldap://127.0.0.1:389", "ldapBase": "ou=users,dc=example,dc=com",
 "managerDn": "cn=admin,dc=example,dc=com", "managerPassword": "rootsecret",
 "globalStorage": "Apache::Session::File",
 "globalStorageOptions": { "Directory": "$d/sessions", "LockDirectory": "$d/sessions/lock" },
 "persistentStorage": "Apache::Session::File",
 "persistentStorageOptions": { "Directory": "$d/psessions", "LockDirectory": "$d/psessions/lock" },
 "localSessionStorage": "Cache::FileCache",
 "localSessionStorageOptions": { "cache_root": "$d/cache", "cache_depth": 3, "default_expires_in": 600, "namespace": "lemonldap-ng-sessions" },
 "notification": 0, "exportedVars": {}, "locationRules": {}, "reloadUrls": {}
}
J
}
conf 1 LDAP > "$d/conf/lmConf-1.json"
conf 2 Combination > "$d/conf2.json"
# the directory: dwho, rtyler and msmith, password = login
cat > "$d/slapd.conf" <<C
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
pidfile $d/slapd.pid
argsfile $d/slapd.args
modulepath /usr/lib/ldap
moduleload back_mdb
loglevel none
database mdb
suffix "dc=example,dc=com"
rootdn "cn=admin,dc=example,dc=com"
rootpw rootsecret
directory $d/db
maxsize 10485760
C
{
  printf 'dn: dc=example,dc=com\nobjectClass: dcObject\nobjectClass: organization\no: Example\ndc: example\n\n'
  printf 'dn: ou=users,dc=example,dc=com\nobjectClass: organizationalUnit\nou: users\n\n'
  for u in dwho rtyler msmith; do
    printf 'dn: uid=%s,ou=users,dc=example,dc=com\nobjectClass: inetOrgPerson\nuid: %s\ncn: %s\nsn: %s\nuserPassword: %s\n\n' $u $u $u $u $u
  done
} > "$d/data.ldif"
slapadd -f "$d/slapd.conf" -l "$d/data.ldif" > "$d/slapadd.out" 2>&1 || { cat "$d/slapadd.out" >&2; exit 5; }
slapd -d 0 -h "ldap://127.0.0.1/" -f "$d/slapd.conf" 2>"$d/slapd.err" &
slapd_pid=$!
chown -R www-data:www-data "$d/run" "$d/conf" "$d/sessions" "$d/psessions" "$d/cache"
cat > "$d/nginx.conf" <<N
daemon off;
user www-data;
pid $d/nginx.pid;
error_log $d/nginx.err;
events { worker_connections 64; }
http {
  access_log $d/access.log;
  client_body_temp_path $d/nginx-tmp/body;
  fastcgi_temp_path $d/nginx-tmp/fcgi;
  proxy_temp_path $d/nginx-tmp/proxy;
  uwsgi_temp_path $d/nginx-tmp/uwsgi;
  scgi_temp_path $d/nginx-tmp/scgi;
  server {
    listen 192.0.2.1:80;
    listen [2001:db8::1]:80;
    server_name auth.example.com;
    location / {
      include /etc/nginx/fastcgi_params;
      fastcgi_pass unix:$d/run/llng.sock;
      fastcgi_param HTTP_HOST \$host;
      fastcgi_param LLTYPE psgi;
      fastcgi_param SCRIPT_FILENAME /usr/share/lemonldap-ng/portal/htdocs/index.psgi;
      fastcgi_param SCRIPT_NAME "";
      fastcgi_param PATH_INFO \$uri;
    }
  }
}
N
nginx -c "$d/nginx.conf" 2> "$d/nginx.stderr" &
nginx_pid=$!
# CONF WORKERS: the FastCGI server (the portal compiles at the first request) on the socket
llng() {
  rm -f "$d/run/llng.sock"
  "${llng_server[@]}" --foreground -u www-data -g www-data -n "$2" -s "$d/run/llng.sock" \
    -p "$d/run/llng.pid" > "$d/llng$1.out" 2> "$d/llng$1.err" &
  llng_pid=$!
  for _ in $(seq 100); do [ -S "$d/run/llng.sock" ] && break; sleep 0.1; done
  [ -S "$d/run/llng.sock" ] || { echo "llng-fastcgi-server did not start" >&2; exit 6; }
}
llng 1 2
for _ in $(seq 100); do [ -s "$d/nginx.pid" ] && break; sleep 0.1; done
# LABEL SRC USER PASSWORD [curl args]: the login form's token, then one POST; the answer
# (HTTP status, whether a token was sent, the portal's message number) goes to answers
login() {
  local label=$1 src=$2 user=$3 pw=$4 host=192.0.2.1 tok msg; shift 4
  case $src in *:*) host='[2001:db8::1]';; esac
  tok=$(timeout 10 curl -s --interface "$src" -H 'Host: auth.example.com' "http://$host/" \
    | sed -n 's/.*name="token" value="\([^"]*\)".*/\1/p' | head -1)
  timeout 10 curl -s -o "$d/resp" -w "%{http_code}" --interface "$src" -H 'Host: auth.example.com' "$@" \
    --data-urlencode "user=$user" --data-urlencode "password=$pw" --data-urlencode "token=$tok" \
    "http://$host/" > "$d/code" 2>> "$d/curl.err"
  msg=$(grep -o 'trmsg="[0-9]*"' "$d/resp" | head -1)
  echo "$label $src $(cat "$d/code") token=${tok:+yes} ${msg:-none}" >> "$d/answers"
}
# 1. authentication = LDAP
login legit 198.51.100.10 dwho dwho
login wrong-pw 203.0.113.5 dwho wrong1
login unknown 203.0.113.5 nobody wrong2
login paren 203.0.113.5 'x (192.0.2.66)' wrong3
login addr 203.0.113.5 192.0.2.66 wrong4
login lf 203.0.113.5 $'x\n' wrong5
login xff 203.0.113.5 rtyler wrong6 -H 'X-Forwarded-For: 192.0.2.66'
login at 203.0.113.5 'a@192.0.2.66' wrong7
login crlf 203.0.113.5 $'x\r\nDec  4 00:00:01 sso LLNG[1]: [warn] Bad password for a (192.0.2.66)' wrong8
login user-lf 203.0.113.5 $'dwho\n' wrong9
login wrong-pw 2001:db8:65::5 msmith wrong10
login unknown 2001:db8:65::5 ghost wrong11
login xff 2001:db8:65::5 dwho wrong12 -H 'X-Forwarded-For: 192.0.2.66'
# 2. authentication = Combination, [L] or [D], one worker: every login goes through it
kill $llng_pid; wait $llng_pid
install -o www-data -g www-data -m 640 "$d/conf2.json" "$d/conf/lmConf-2.json"
llng 2 1
login legit 198.51.100.10 rtyler rtyler
login wrong-pw 203.0.113.6 dwho wrong1
login unknown 203.0.113.6 nobody wrong2
login addr 203.0.113.6 192.0.2.66 wrong3
login paren 203.0.113.6 'x (192.0.2.66)' wrong4
login addr-lf 203.0.113.6 $'192.0.2.66\n' wrong5
login wrong-pw 2001:db8:66::6 msmith wrong6
login wrong-pw 2001:db8:66::6 msmith wrong7
login unknown 2001:db8:66::6 ghost wrong8
for _ in $(seq 50); do grep -q "All schemes failed for user ghost" "$d/syslog" 2>/dev/null && break; sleep 0.1; done
kill $llng_pid $nginx_pid $slapd_pid
wait $llng_pid $nginx_pid $slapd_pid
kill %1
wait
"#;

/// The Perl modules the portal loads here (its LDAP backend and captcha plugin) and their
/// Debian packages: the machine's perl must load them for Debian 12's run.
const PERL_MODULES: [(&str, &str); 6] = [
    ("Lemonldap::NG::Portal::Main", "liblemonldap-ng-portal-perl"),
    ("Net::LDAP", "libnet-ldap-perl"),
    ("IO::Socket::Timeout", "libio-socket-timeout-perl"),
    ("Unicode::String", "libunicode-string-perl"),
    ("GD::SecurityImage", "libgd-securityimage-perl"),
    ("Image::Magick", "libimage-magick-perl"),
];

/// Panics unless perl loads `module`, saying which Debian `package` brings it.
fn require_perl_module(module: &str, package: &str) {
    let ok = Command::new("perl")
        .args([&format!("-M{module}"), "-e1"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(ok, "perl module {module} is missing: install {package}");
}

/// Runs every scenario against `version`'s portal (nginx, slapd and the clients are the
/// machine's) and checks what the clients got, what the portal wrote and what the filter
/// counts of it.
fn run(version: Release) {
    require_root();
    require_program("nginx", "nginx");
    require_program("slapd", "slapd");
    require_program("slapadd", "slapd");
    require_program("curl", "curl");
    require_program("perl", "perl");
    require_program("rsyslogd", "rsyslog");
    require_program("unshare", "util-linux");
    let tree = match version {
        Release::Deb12 => {
            require_program("llng-fastcgi-server", "lemonldap-ng-fastcgi-server");
            for (module, package) in PERL_MODULES {
                require_perl_module(module, package);
            }
            String::new()
        }
        Release::Deb13 => {
            require_program("chroot", "coreutils");
            trixie_c_root(&[
                "usr/sbin/llng-fastcgi-server",
                "usr/share/perl5/Lemonldap/NG/Portal/Main.pm",
                "usr/share/perl5/Net/LDAP.pm",
                "usr/share/perl5/IO/Socket/Timeout.pm",
                "usr/share/perl5/GD/SecurityImage.pm",
                "usr/share/perl5/MIME/Entity.pm",
                "usr/share/perl5/Email/Sender/Simple.pm",
                "usr/share/perl5/String/Random.pm",
            ])
            .display()
            .to_string()
        }
    };
    let dir = test_dir(match version {
        Release::Deb12 => "llng",
        Release::Deb13 => "llng-2.21",
    });
    // the portal's workers (www-data) reach their socket and files under it
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let shown = [
        ("llng (1)", "llng1.err"),
        ("llng (2)", "llng2.err"),
        ("nginx", "nginx.stderr"),
        ("nginx error log", "nginx.err"),
        ("log", "syslog"),
    ];
    let script = format!("{PRIVATE_ETC_SH}{PRIVATE_SYSLOG_SH}{TRIXIE_SH}{SCRIPT}");
    run_script_ok("portal", dir.path(), &script, &[tree.as_ref()], &shown);
    let read = |name: &str| fs::read_to_string(dir.path().join(name)).unwrap_or_default();
    let release = match version {
        Release::Deb12 => "2.16.",
        Release::Deb13 => "2.21.",
    };
    assert!(
        read("version").starts_with(release),
        "liblemonldap-ng-portal-perl {}",
        read("version")
    );
    let sys = dir.path().join("syslog");
    let text = read("syslog");

    // what the clients saw: the legitimate logins redirected (302), every other one refused
    // with PE_BADCREDENTIALS (5), the names with a space or CR with PE_MALFORMEDUSER (40);
    // every POST carried the form's token
    let answers = read("answers");
    let want_answers = "\
legit 198.51.100.10 302 token=yes none
wrong-pw 203.0.113.5 200 token=yes trmsg=\"5\"
unknown 203.0.113.5 200 token=yes trmsg=\"5\"
paren 203.0.113.5 200 token=yes trmsg=\"40\"
addr 203.0.113.5 200 token=yes trmsg=\"5\"
lf 203.0.113.5 200 token=yes trmsg=\"5\"
xff 203.0.113.5 200 token=yes trmsg=\"5\"
at 203.0.113.5 200 token=yes trmsg=\"5\"
crlf 203.0.113.5 200 token=yes trmsg=\"40\"
user-lf 203.0.113.5 200 token=yes trmsg=\"5\"
wrong-pw 2001:db8:65::5 200 token=yes trmsg=\"5\"
unknown 2001:db8:65::5 200 token=yes trmsg=\"5\"
xff 2001:db8:65::5 200 token=yes trmsg=\"5\"
legit 198.51.100.10 302 token=yes none
wrong-pw 203.0.113.6 200 token=yes trmsg=\"5\"
unknown 203.0.113.6 200 token=yes trmsg=\"5\"
addr 203.0.113.6 200 token=yes trmsg=\"5\"
paren 203.0.113.6 200 token=yes trmsg=\"40\"
addr-lf 203.0.113.6 200 token=yes trmsg=\"5\"
wrong-pw 2001:db8:66::6 200 token=yes trmsg=\"5\"
wrong-pw 2001:db8:66::6 200 token=yes trmsg=\"5\"
unknown 2001:db8:66::6 200 token=yes trmsg=\"5\"
";
    assert_eq!(
        answers,
        want_answers,
        "the portal's answers; curl: {}\nlog:\n{text}",
        read("curl.err")
    );

    // what the portal wrote: both legitimate logins (2.21 names the module, the Combination's
    // scheme and the address: read by no rule), the hostile names as typed (a LF as
    // rsyslog's #012), the Combination's wrapped module lines, and no line of a client's making
    let connected = match version {
        Release::Deb12 => ["[notice] dwho connected\n", "[notice] rtyler connected\n"],
        Release::Deb13 => [
            "[notice] User dwho connected from LDAP (198.51.100.10)\n",
            "[notice] User rtyler connected from L (198.51.100.10)\n",
        ],
    };
    for line in connected.into_iter().chain([
        "[warn] Bad password for rtyler (203.0.113.5)",
        "[warn] 192.0.2.66 was not found in LDAP directory (203.0.113.5)",
        "[warn] x#012 was not found in LDAP directory (203.0.113.5)",
        "[warn] Bad password for dwho (2001:db8:65::5)",
        "[warn] Bad password for dwho (203.0.113.6)",
        "[notice] Combination (Lemonldap::NG::Portal::Auth::Demo): Bad password for dwho\n",
        "[notice] Combination (Lemonldap::NG::Portal::Lib::LDAP): nobody was not found in LDAP directory (203.0.113.6)",
        "[warn] All schemes failed for user 192.0.2.66#012 (203.0.113.6)",
        "[warn] All schemes failed (203.0.113.6)",
    ]) {
        assert!(text.contains(line), "not in the log: {line:?}\nlog:\n{text}");
    }
    assert!(
        !text.contains("(192.0.2.66)") && !text.contains("00:00:01"),
        "a client's text named an address of its own or forged a line:\n{text}"
    );
    let failures = text
        .lines()
        .filter(|l| {
            l.contains(" LLNG[")
                && (l.contains("[warn] Bad password for ")
                    || (l.contains("[warn] ") && l.contains(" was not found in LDAP directory ("))
                    || l.contains("[warn] All schemes failed for user "))
        })
        .count();
    assert_eq!(failures, 20, "the portal's failure lines:\n{text}");
    // under Combination, each "Bad password for U (A)" is followed, as the worker's next
    // [warn] line, by "All schemes failed for user U (A)" with the same pid
    let warns: Vec<(&str, &str)> = text
        .lines()
        .filter_map(|l| {
            let (_, rest) = l.split_once(" LLNG[")?;
            let (pid, msg) = rest.split_once("]: [warn] ")?;
            Some((pid, msg))
        })
        .collect();
    let mut pairs = 0;
    for (i, (pid, msg)) in warns.iter().enumerate() {
        let Some(tail) = msg.strip_prefix("Bad password for ") else {
            continue;
        };
        if !tail.ends_with("(203.0.113.6)") && !tail.ends_with("(2001:db8:66::6)") {
            continue;
        }
        let next = warns[i + 1..].iter().find(|(p, _)| p == pid);
        assert_eq!(
            next.map(|(_, m)| *m),
            Some(format!("All schemes failed for user {tail}").as_str()),
            "the Combination's line after {msg:?}; log:\n{text}"
        );
        pairs += 1;
    }
    assert_eq!(pairs, 3, "wrong passwords under Combination; log:\n{text}");

    // what counted, per address and rule
    let got = rules_by_host("lemonldap-ng", &sys);
    let want = want_rules(&[
        ("203.0.113.5", &[("bad-password", 2), ("user-not-found", 5)]),
        (
            "2001:db8:65::5",
            &[("bad-password", 2), ("user-not-found", 1)],
        ),
        ("203.0.113.6", &[("bad-password", 1), ("all-schemes", 4)]),
        ("2001:db8:66::6", &[("bad-password", 2), ("all-schemes", 3)]),
    ]);
    assert_eq!(got, want, "the lines matched, per address; log:\n{text}");

    // the user names the filter read: the whole hostile names, never an address of theirs
    assert_counted_users(
        "lemonldap-ng",
        &sys,
        &[
            ("203.0.113.5", "192.0.2.66"),
            ("203.0.113.5", "a@192.0.2.66"),
            ("203.0.113.5", "x#012"),
            ("203.0.113.5", "dwho#012"),
            ("203.0.113.6", "192.0.2.66"),
            ("203.0.113.6", "192.0.2.66#012"),
        ],
    );

    // what a jail counts, one per failed login: 203.0.113.5 7, 2001:db8:65::5 3, and under
    // Combination, where a wrong password writes "Bad password" and "All schemes failed"
    // (rule all-schemes, kind closing: the same login through the same worker),
    // 203.0.113.6 4 (one wrong password, three unknown names; the malformed name counts
    // nothing) and 2001:db8:66::6 3 (two wrong passwords, one unknown user), never 5 and 5.
    // A jail with maxretry N bans the addresses that counted N or more: with 3, 4 and 5,
    // those counts exactly (an IPv6 client by its /64, the default prefix), never the
    // legitimate client nor the addresses the clients wrote
    for (maxretry, want) in [
        (
            3,
            &[
                "2001:db8:65::/64",
                "2001:db8:66::/64",
                "203.0.113.5",
                "203.0.113.6",
            ][..],
        ),
        (4, &["203.0.113.5", "203.0.113.6"][..]),
        (5, &["203.0.113.5"][..]),
    ] {
        let bans = replay_jail(dir.path(), "lemonldap-ng", &sys, "normal", maxretry);
        assert_eq!(
            bans.into_iter().collect::<Vec<_>>(),
            want,
            "bans with maxretry {maxretry}; log:\n{text}"
        );
    }
}

#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn real_lemonldap_failures_count_for_the_client_nginx_passed() {
    run(Release::Deb12);
}

#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn real_lemonldap_2_21_failures_count_for_the_client_nginx_passed() {
    run(Release::Deb13);
}

//! The `apache-modsecurity`, `apache-noscript`, `apache-nohome` and `apache-shellshock`
//! filters against the real Apache, the same scenarios and one table of counts for Debian 12's
//! Apache with ModSecurity 2.9.7 (the machine's) and Debian 13's with ModSecurity 2.9.11
//! (test.sh's trixie tree, run with chroot in a private overlay of it: common/real.rs
//! `trixie_mount`; its /etc and /home private). Apache (2.4.71, mpm_event) runs in the
//! foreground in its own pid, mount and network namespace (`unshare`) with its own
//! configuration: ModSecurity 2.9.7 (libapache2-mod-security2, no CRS) with four local rules
//! (phase 1: "w00tw00t" in the URI, whose msg holds "[client 198.51.100.7]", and "nikto" in
//! the User-Agent; phase 2: "union ... select" in any argument; all deny with 403; and one
//! that only warns), mod_cgid with a bash CGI script that prints its environment, mod_userdir
//! (`UserDir public_html`, `UserDir disabled root`; alice has a public_html, bob none, both
//! in a private /etc overlay and a private /home), Basic auth on /private/, `LogLevel info`.
//! It listens on 192.0.2.1 and [2001:db8::1], ports 80 and 81: port 80's virtual host writes
//! the error log to a file (default ErrorLogFormat) and a "combined" access log, port 81's
//! writes its error log through syslog (`ErrorLog syslog:local7`) to a private rsyslogd (a
//! private /dev whose /dev/log is its socket), in rsyslog's traditional file format.
//!
//! Clients (`curl --interface SRC`), the same requests on both ports: 198.51.100.7 makes
//! ordinary requests (a page, alice's home page, the CGI by GET and POST, a query ModSecurity
//! only warns about, a missing favicon, a right Basic login); 203.0.113.5 sends three requests
//! ModSecurity denies (phase 1 twice, phase 2 once); 203.0.113.6 asks for four scripts that do
//! not exist (.cgi under /cgi-bin/, .php, .asp, .exe); 203.0.113.7 for four home directories
//! that do not exist (no such user, bob without public_html, root disabled, daemon whose home
//! is /usr/sbin); 203.0.113.8 sends Shellshock (`() { :; }; ...`) in the User-Agent, Referer,
//! Cookie, another header and the query string of CGI requests; 2001:db8::7 one of each kind
//! over IPv6; 203.0.113.9 the same attacks with forged log text naming 192.0.2.66 (or the
//! rule's "[client 198.51.100.7]") in the URI, Host, User-Agent, Referer and Basic user names.
//!
//! In the file, the syslog file and the access log, `portcullis test --filter NAME --json`
//! must count exactly those failures per address and rule, for the address Apache wrote
//! (never one in the client's text), and nothing for 198.51.100.7; `portcullis replay` with
//! maxretry 3 bans exactly the attacker of each filter, in mode normal and aggressive alike
//! (each of the four is made only of scan rules, which count in every mode). The first run
//! found that `apache-nohome` missed a home outside /home (`File does not exist:
//! /usr/sbin/public_html/` for /~daemon/), and that Apache with Debian 12's bash writes
//! nothing at all to the error log for Shellshock (bash imports functions only from
//! BASH_FUNC_NAME%% variables, Apache names them HTTP_...): only the access log shows it, and
//! only in the request line, Referer and User-Agent. ModSecurity 2.9.11 differs in one thing:
//! it no longer writes its own "[client ADDR] " after Apache's "[client ADDR:PORT] " (the
//! filter reads both); Debian 13's bash 5.2.37 writes nothing for Shellshock either.
//!
//! Needs root, apache2 with mod_security2 (libapache2-mod-security2), curl, openssl,
//! rsyslogd, iproute2's ip and ss, util-linux's unshare (test.sh installs them); fails loudly
//! when they are missing; the 2.9.11 run needs the trixie tree and chroot. Each runs in
//! about 2 s.

mod common;

use common::*;
use std::fs;
use std::path::Path;

const MOD_SECURITY: &str = "/usr/lib/apache2/modules/mod_security2.so";

/// Run as pid 1 of the new pid, mount and network namespace (bash): every process of the
/// run is in it and dies with it; $1 is the test's directory, $2 the first of two uids free
/// on the machine. (After [`PRIVATE_ETC_SH`] and [`PRIVATE_SYSLOG_SH`].)
const SCRIPT: &str = r#"set -u
d="$1"; uid="$2"; tree="$3"
ip link set lo up
for a in 192.0.2.1 198.51.100.7 203.0.113.5 203.0.113.6 203.0.113.7 203.0.113.8 203.0.113.9; do
  ip addr add "$a/32" dev lo || exit 2
done
for a in 2001:db8::1 2001:db8::7; do ip addr add "$a/128" dev lo nodad || exit 2; done
# Apache's children run as www-data: they must reach the site
chmod 755 "$d"
# a private /dev whose /dev/log is a private rsyslogd's socket (common/netns.rs)
private_syslog "$d"
# the Apache to run: the machine's (Debian 12), or Debian 13's in a private overlay of its
# tree (common/real.rs trixie_mount: its /etc, /run and /tmp private, $d at the same path);
# $r is the root the server sees
r=""; apache=(/usr/sbin/apache2)
if [ -n "$tree" ]; then
  trixie_mount "$tree" "$d/root" "$d/trixie" || exit 4
  r="$d/root"; apache=(chroot "$r" /usr/sbin/apache2)
fi
"${apache[@]}" -v > "$d/version" 2>&1
# home directories in this namespace only: alice has a public_html, bob has none
mount -t tmpfs -o mode=755 pct-home "$r/home" || exit 4
mkdir -p "$r/home/alice/public_html" "$r/home/bob"
echo "alice's page" > "$r/home/alice/public_html/index.html"
chmod -R a+rX "$r/home"
mkdir -p "$d/etc-src"
cp "$r/etc/passwd" "$r/etc/group" "$d/etc-src/" || exit 4
echo "alice:x:$uid:$uid:web test:/home/alice:/usr/sbin/nologin" >> "$d/etc-src/passwd"
echo "bob:x:$((uid + 1)):$uid:web test:/home/bob:/usr/sbin/nologin" >> "$d/etc-src/passwd"
echo "pctweb:x:$uid:" >> "$d/etc-src/group"
if [ -n "$tree" ]; then
  cp "$d/etc-src/passwd" "$d/etc-src/group" "$r/etc/" || exit 4
else
  private_etc "$d/etc-ov" "$d/etc-src" passwd group || exit 4
fi
mkdir -p "$d/htdocs/private" "$d/cgi-bin" "$d/run"
echo ok > "$d/htdocs/index.html"
echo secret > "$d/htdocs/private/index.html"
printf '#!/bin/bash\nread -r -N "${CONTENT_LENGTH:-0}" body\necho "Content-Type: text/plain"\necho\nenv | sort\n' > "$d/cgi-bin/env.sh"
chmod -R a+rX "$d/htdocs" "$d/cgi-bin"
chmod 755 "$d/cgi-bin/env.sh"
printf 'alice:%s\n' "$(openssl passwd -apr1 Right-pw-1)" > "$d/htpasswd" || exit 4
chmod 644 "$d/htpasswd"
cat > "$d/modsec.conf" <<M
SecRuleEngine On
SecRequestBodyAccess On
SecDataDir $d/run
SecTmpDir $d/run
SecAuditEngine Off
SecRule REQUEST_URI "@contains w00tw00t" "id:100001,phase:1,deny,status:403,log,msg:'probe [client 198.51.100.7] x'"
SecRule REQUEST_HEADERS:User-Agent "@contains nikto" "id:100002,phase:1,t:lowercase,deny,status:403,log,msg:'scanner',logdata:'%{MATCHED_VAR}'"
SecRule ARGS "@rx (?i)union.+select" "id:100003,phase:2,deny,status:403,log,msg:'SQL injection',logdata:'%{MATCHED_VAR}'"
SecRule ARGS:q "@streq evil" "id:100004,phase:2,pass,log,msg:'warning only'"
M
cat > "$d/httpd.conf" <<C
ServerRoot /usr/lib/apache2
LoadModule mpm_event_module modules/mod_mpm_event.so
LoadModule authz_core_module modules/mod_authz_core.so
LoadModule authz_user_module modules/mod_authz_user.so
LoadModule authn_core_module modules/mod_authn_core.so
LoadModule authn_file_module modules/mod_authn_file.so
LoadModule auth_basic_module modules/mod_auth_basic.so
LoadModule alias_module modules/mod_alias.so
LoadModule dir_module modules/mod_dir.so
LoadModule mime_module modules/mod_mime.so
LoadModule cgid_module modules/mod_cgid.so
LoadModule userdir_module modules/mod_userdir.so
LoadModule unique_id_module modules/mod_unique_id.so
LoadModule security2_module modules/mod_security2.so
TypesConfig /etc/mime.types
DirectoryIndex index.html
DefaultRuntimeDir $d/run
PidFile $d/run/httpd.pid
Mutex file:$d/run default
ScriptSock $d/run/cgisock
Listen 192.0.2.1:80
Listen [2001:db8::1]:80
Listen 192.0.2.1:81
Listen [2001:db8::1]:81
ServerName www.example.com
User www-data
Group www-data
DocumentRoot $d/htdocs
ErrorLog $d/error.log
LogLevel info
LogFormat "%h %l %u %t \"%r\" %>s %O \"%{Referer}i\" \"%{User-Agent}i\"" combined
UserDir public_html
UserDir disabled root
Include $d/modsec.conf
<Directory />
  Require all granted
</Directory>
<Location /private/>
  AuthType Basic
  AuthName private
  AuthUserFile $d/htpasswd
  Require valid-user
</Location>
ScriptAlias /cgi-bin/ $d/cgi-bin/
<VirtualHost *:80>
  ErrorLog $d/error.log
  CustomLog $d/access.log combined
</VirtualHost>
<VirtualHost *:81>
  ErrorLog syslog:local7
</VirtualHost>
C
"${apache[@]}" -f "$d/httpd.conf" -D FOREGROUND > "$d/apache.out" 2>&1 < /dev/null &
for _ in $(seq 100); do
  [ "$(ss -Hltn | grep -c -E ':8[01] ')" -ge 4 ] && break
  sleep 0.1
done
[ "$(ss -Hltn | grep -c -E ':8[01] ')" -ge 4 ] || { echo "apache did not listen" >&2; exit 5; }
# c SRC URL [curl options]: one request, "SRC STATUS" into $d/codes-PORT
c() {
  local src=$1 url=$2 code
  shift 2
  code=$(timeout 10 curl -sS -g -m 5 --path-as-is --interface "$src" -o /dev/null \
    -w '%{http_code}' "$@" "$url" 2>> "$d/curl.err")
  printf '%s %s\n' "$src" "$code" >> "$d/codes-$port"
}
forged='192.0.2.66 - - [04/Dec/2026:00:00:00 +0000] "GET /~root/ HTTP/1.1" 404 1 "-" "() { :; }; id"'
for port in 80 81; do
  s="http://192.0.2.1:$port"
  s6="http://[2001:db8::1]:$port"
  # the legitimate client
  c 198.51.100.7 "$s/"
  c 198.51.100.7 "$s/~alice/"
  c 198.51.100.7 "$s/cgi-bin/env.sh"
  c 198.51.100.7 "$s/cgi-bin/env.sh" -d 'name=hello'
  c 198.51.100.7 "$s/?q=evil"
  c 198.51.100.7 "$s/favicon.ico"
  c 198.51.100.7 "$s/private/" -u alice:Right-pw-1
  # requests ModSecurity denies
  c 203.0.113.5 "$s/w00tw00t.at.ISC.SANS.DFind:)"
  c 203.0.113.5 "$s/" -A 'Mozilla/5.0 (Nikto/2.1.6)'
  c 203.0.113.5 "$s/cgi-bin/env.sh" -d 'id=1 union select password from users'
  # scripts that do not exist
  c 203.0.113.6 "$s/cgi-bin/nothere.cgi"
  c 203.0.113.6 "$s/shell.php"
  c 203.0.113.6 "$s/admin/default.asp"
  c 203.0.113.6 "$s/scripts/root.exe"
  # home directories that do not exist
  c 203.0.113.7 "$s/~nosuch/"
  c 203.0.113.7 "$s/~bob/"
  c 203.0.113.7 "$s/~root/"
  c 203.0.113.7 "$s/~daemon/"
  # Shellshock against the bash CGI script
  c 203.0.113.8 "$s/cgi-bin/env.sh" -A '() { :; }; echo; /bin/cat /etc/passwd'
  c 203.0.113.8 "$s/cgi-bin/env.sh" -e '() { :;}; /bin/bash -c "id"'
  c 203.0.113.8 "$s/cgi-bin/env.sh" -H 'Cookie: () { :; }; id'
  c 203.0.113.8 "$s/cgi-bin/env.sh?%28%29%20%7B%20%3A%3B%7D%3B%20id"
  c 203.0.113.8 "$s/cgi-bin/env.sh" -H 'X-Api: () { :; }; id'
  # one of each over IPv6
  c 2001:db8::7 "$s6/w00tw00t.at.blackhats"
  c 2001:db8::7 "$s6/x.php"
  c 2001:db8::7 "$s6/~nosuch6/"
  c 2001:db8::7 "$s6/" -A '() { :; }; id'
  # the same with forged text
  c 203.0.113.9 "$s/w00tw00t/[client%20192.0.2.66:1]%20[client%20192.0.2.66]%20ModSecurity:%20Access%20denied%20with%20code%20403" \
    -H 'Host: 192.0.2.66' -e 'http://x/ [client 192.0.2.66:1] [client 192.0.2.66] ModSecurity: Access denied with code 403 (phase 1).'
  c 203.0.113.9 "$s/" -A 'Nikto [client 192.0.2.66:1] [client 192.0.2.66] ModSecurity: Access denied with code 403'
  c 203.0.113.9 "$s/cgi-bin/[client%20192.0.2.66:1]%20x.cgi"
  c 203.0.113.9 "$s/x.php" -e 'http://x/ [client 192.0.2.66:1] AH00128: File does not exist: /y.php'
  c 203.0.113.9 "$s/favicon.ico" -e 'http://x/a.php'
  c 203.0.113.9 "$s/~x/[client%20192.0.2.66:1]%20AH00128:%20File%20does%20not%20exist:%20/home/y/public_html"
  c 203.0.113.9 "$s/index.html" -e 'http://x/~root/' -A "$forged"
  # Basic user names (no colon fits in one): a forged access line with a line feed, and one
  # holding Shellshock
  c 203.0.113.9 "$s/private/" -u 'x" 404 1 "-" "-"
192.0.2.66 - - [04/Dec/2026] "GET /~root/ HTTP/1.1" 404 1 "() { ;}; id":wrong'
  c 203.0.113.9 "$s/private/" -u '192.0.2.66 - - () { ;}; id [04/Dec/2026] "GET /~root/ HTTP/1.1" 404 1:wrong'
  c 203.0.113.9 "$s/~alice/" -H 'Host: 192.0.2.66' \
    -A '() { :; }; [client 192.0.2.66:1] AH01215: /bin/bash: warning: HTTP_X: ignoring function definition attempt'
done
for _ in $(seq 50); do
  [ "$(grep -c "AH01618: user" "$d/syslog" 2>/dev/null)" -ge 2 ] && break
  sleep 0.1
done
kill %2
wait %2
kill %1
wait
"#;

// The Apache under test: Debian 12's (the machine's: 2.4.71 with ModSecurity 2.9.7) or
// Debian 13's (the trixie tree: 2.4.71 with ModSecurity 2.9.11, run with chroot).

#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn real_apache_modules_count_for_the_client_apache_wrote() {
    run(Release::Deb12);
}

#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn real_apache_modsecurity_2_9_11_count_for_the_client_apache_wrote() {
    run(Release::Deb13);
}

/// Runs every scenario against `version`'s Apache and checks what the clients got, what it
/// wrote and what the filters count of it.
fn run(version: Release) {
    require_root();
    let tree = match version {
        Release::Deb12 => {
            require_program("apache2", "apache2");
            assert!(
                Path::new(MOD_SECURITY).is_file(),
                "{MOD_SECURITY} is missing: install libapache2-mod-security2 (test.sh does)"
            );
            String::new()
        }
        Release::Deb13 => {
            require_program("chroot", "coreutils");
            trixie_root(&["usr/sbin/apache2", &MOD_SECURITY[1..]])
                .display()
                .to_string()
        }
    };
    require_program("curl", "curl");
    require_program("openssl", "openssl");
    require_program("rsyslogd", "rsyslog");
    require_program("ip", "iproute2");
    require_program("ss", "iproute2");
    require_program("unshare", "util-linux");
    let dir = test_dir(match version {
        Release::Deb12 => "apache",
        Release::Deb13 => "apache-trixie",
    });
    let uid = free_ids(2, 64300..64500).to_string();
    let shown = [
        ("apache", "apache.out"),
        ("curl", "curl.err"),
        ("error log", "error.log"),
    ];
    let script = format!("{PRIVATE_ETC_SH}{PRIVATE_SYSLOG_SH}{TRIXIE_SH}{SCRIPT}");
    run_script_ok(
        "Apache",
        dir.path(),
        &script,
        &[uid.as_ref(), tree.as_ref()],
        &shown,
    );
    let read = |name: &str| fs::read_to_string(dir.path().join(name)).unwrap_or_default();
    assert!(
        read("version").contains("Server version: Apache/2.4.71 (Debian)"),
        "{version:?}: {}",
        read("version")
    );
    let (file, sys, access) = (
        dir.path().join("error.log"),
        dir.path().join("syslog"),
        dir.path().join("access.log"),
    );
    let (file_text, sys_text, access_text) =
        (read("error.log"), read("syslog"), read("access.log"));
    let modsec = match version {
        Release::Deb12 => "ModSecurity for Apache/2.9.7 ",
        Release::Deb13 => "ModSecurity for Apache/2.9.11 ",
    };
    assert!(
        file_text.contains(modsec),
        "{version:?}: {modsec}\n{file_text}"
    );

    // what the clients saw, on both ports
    let want_codes: Vec<String> = [
        ("198.51.100.7", "200 200 200 200 200 404 200"),
        ("203.0.113.5", "403 403 403"),
        ("203.0.113.6", "404 404 404 404"),
        ("203.0.113.7", "404 404 404 404"),
        ("203.0.113.8", "200 200 200 200 200"),
        ("2001:db8::7", "403 404 404 200"),
        ("203.0.113.9", "403 403 404 404 404 404 200 401 401 200"),
    ]
    .iter()
    .flat_map(|(src, codes)| codes.split(' ').map(move |c| format!("{src} {c}")))
    .collect();
    for port in ["80", "81"] {
        let codes = read(&format!("codes-{port}"));
        assert_eq!(
            codes.lines().collect::<Vec<_>>(),
            want_codes,
            "HTTP statuses on port {port}; curl: {}",
            read("curl.err")
        );
    }

    // what Apache wrote: the same request lines in the file and through syslog
    for (name, text) in [("error.log", &file_text), ("syslog", &sys_text)] {
        for (what, n) in [
            // five denials, and the same text in 203.0.113.9's forged Referer
            ("ModSecurity: Access denied with code 403 (phase 1).", 6),
            ("ModSecurity: Access denied with code 403 (phase 2).", 1),
            ("ModSecurity: Warning.", 1),
            (r#"[msg "probe [client 198.51.100.7] x"]"#, 3),
            ("AH01264: stderr from ", 2),
            ("AH00128: File does not exist: /home/bob/public_html/", 1),
            ("AH00128: File does not exist: /usr/sbin/public_html/", 1),
            ("[hostname \"192.0.2.66\"]", 1),
            ("AH01618: user ", 2),
            // ModSecurity's own client field after Apache's: 2.9.7 writes it, 2.9.11 not
            // ("[client 203.0.113.5:PORT] ModSecurity: Access denied ...")
            (
                "[client 203.0.113.5] ModSecurity: ",
                match version {
                    Release::Deb12 => 3,
                    Release::Deb13 => 0,
                },
            ),
            ("] ModSecurity: Access denied with code 403 (phase ", 7),
        ] {
            assert_eq!(
                text.matches(what).count(),
                n,
                "{version:?}: {name}: {what}\n{text}"
            );
        }
        // Shellshock leaves no trace in the error log: bash 5.2 imports no HTTP_* function
        for never in ["AH01215", "function definition"] {
            assert!(!text.contains(never), "{name}: {never}\n{text}");
        }
    }
    assert!(
        sys_text.contains(" apache2[") && sys_text.contains("]: [security2:error] [pid "),
        "syslog:\n{sys_text}"
    );
    // the forged Basic user name's line feed is escaped in the access log
    assert!(
        access_text.contains(r#"203.0.113.9 - x\" 404 1 \"-\" \"-\"\n192.0.2.66 - - "#),
        "access log:\n{access_text}"
    );
    assert!(
        !access_text.lines().any(|l| l.starts_with("192.0.2.66")),
        "a client forged a whole line:\n{access_text}"
    );

    // what counts, per filter, log and address
    let (f, s, a) = (file.as_path(), sys.as_path(), access.as_path());
    let checks: [(&str, &[&Path], &RuleCounts); 6] = [
        (
            "apache-modsecurity",
            &[f, s],
            &[
                ("203.0.113.5", &[("denied", 3)]),
                ("2001:db8::7", &[("denied", 1)]),
                ("203.0.113.9", &[("denied", 2)]),
            ],
        ),
        (
            "apache-noscript",
            &[f, s],
            &[
                ("203.0.113.6", &[("cgi-missing", 1), ("file-missing", 3)]),
                ("2001:db8::7", &[("file-missing", 1)]),
                ("203.0.113.9", &[("cgi-missing", 1), ("file-missing", 1)]),
            ],
        ),
        (
            "apache-nohome",
            &[f, s],
            &[
                ("203.0.113.7", &[("missing-home", 4)]),
                ("2001:db8::7", &[("missing-home", 1)]),
            ],
        ),
        (
            "apache-nohome",
            &[a],
            &[
                ("203.0.113.7", &[("home-404", 4)]),
                ("2001:db8::7", &[("home-404", 1)]),
                ("203.0.113.9", &[("home-404", 1)]),
            ],
        ),
        ("apache-shellshock", &[f, s], &[]),
        (
            "apache-shellshock",
            &[a],
            &[
                ("203.0.113.8", &[("access", 3)]),
                ("2001:db8::7", &[("access", 1)]),
                ("203.0.113.9", &[("access", 2)]),
            ],
        ),
    ];
    for (filter, logs, want) in checks {
        for log in logs {
            let got = rules_by_host(filter, log);
            assert_eq!(
                got,
                want_rules(want),
                "{version:?}: {filter} on {}: what counted, per address; log:\n{}",
                log.display(),
                fs::read_to_string(log).unwrap_or_default()
            );
        }
    }

    // a jail with maxretry 3 bans each filter's attacker, and only it, in mode normal and
    // aggressive alike (a filter made only of scan rules counts in every mode)
    for (filter, log, attacker) in [
        ("apache-modsecurity", f, "203.0.113.5"),
        ("apache-modsecurity", s, "203.0.113.5"),
        ("apache-noscript", f, "203.0.113.6"),
        ("apache-noscript", s, "203.0.113.6"),
        ("apache-nohome", f, "203.0.113.7"),
        ("apache-nohome", s, "203.0.113.7"),
        ("apache-nohome", a, "203.0.113.7"),
        ("apache-shellshock", a, "203.0.113.8"),
    ] {
        for mode in ["normal", "aggressive"] {
            let bans = replay_jail(dir.path(), filter, log, mode, 3);
            assert_eq!(
                bans.into_iter().collect::<Vec<_>>(),
                vec![attacker.to_string()],
                "{filter} on {}: bans in mode {mode}",
                log.display()
            );
        }
    }
}

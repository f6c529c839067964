//! Pieces shared by the real-server tests (real_*.rs): Debian package trees test.sh unpacked,
//! the run script of a test's namespaces, the private /etc files of a server's account.

use super::netns::{require_program, run_unshared, CmdOutput};
use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};

/// The root of a package tree test.sh unpacked with `dpkg -x`: env `var` if set, else
/// `default`. Panics unless each of `files` (relative to it) is there, naming the packages
/// test.sh downloads (`what`, e.g. "Debian's opensmtpd").
pub fn unpacked(var: &str, default: &str, files: &[&str], what: &str) -> PathBuf {
    let root = PathBuf::from(std::env::var(var).unwrap_or(default.into()));
    for f in files {
        let path = root.join(f);
        assert!(
            path.is_file(),
            "{} is missing: run test.sh (it downloads {what} with `apt-get download` and unpacks \
             them with `dpkg -x` under {default})",
            path.display()
        );
    }
    root
}

/// A temporary directory `pct-LABEL-…` for one test's files, removed on drop.
pub fn test_dir(label: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("pct-{label}-"))
        .tempdir()
        .expect("temp dir")
}

/// Writes `script` to DIR/run.sh and runs it with [`run_unshared`] (`$1` is DIR, then
/// `args`). Panics unless it succeeded, showing "the WHAT run failed", its output and each
/// `shown` file (label, path under DIR; a missing one as empty).
pub fn run_script_ok(
    what: &str,
    dir: &Path,
    script: &str,
    args: &[&OsStr],
    shown: &[(&str, &str)],
) -> CmdOutput {
    let path = dir.join("run.sh");
    fs::write(&path, script).unwrap();
    let mut argv = vec![dir.as_os_str()];
    argv.extend_from_slice(args);
    let out = run_unshared(&path, &argv);
    if !out.success() {
        let mut files = String::new();
        for (label, name) in shown {
            let text = fs::read(dir.join(name)).unwrap_or_default();
            files.push_str(&format!("\n{label}:\n{}", String::from_utf8_lossy(&text)));
        }
        panic!(
            "the {what} run failed (timed out: {}): {}\n{}{files}",
            out.timed_out,
            out.stdout_str(),
            out.stderr_str()
        );
    }
    out
}

/// Writes into `etc` the private /etc files of a server's account (for
/// [`super::netns::PRIVATE_ETC_SH`]): the host's passwd and group plus `user` (uid and gid
/// `id`, `gecos`, no home, nologin), an nsswitch.conf reading only files, and `hosts`.
pub fn write_account_etc(etc: &Path, user: &str, id: u32, gecos: &str, hosts: &str) {
    let host_file_plus = |file: &str, line: String| {
        let mut text = fs::read_to_string(format!("/etc/{file}")).unwrap_or_default();
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str(&line);
        fs::write(etc.join(file), text).unwrap();
    };
    host_file_plus(
        "passwd",
        format!("{user}:x:{id}:{id}:{gecos}:/nonexistent:/usr/sbin/nologin\n"),
    );
    host_file_plus("group", format!("{user}:x:{id}:\n"));
    fs::write(
        etc.join("nsswitch.conf"),
        "passwd: files\ngroup: files\nshadow: files\nhosts: files\n",
    )
    .unwrap();
    fs::write(etc.join("hosts"), hosts).unwrap();
}

/// Which Debian release's program a real test runs: Debian 12's (the machine's own, or
/// unpacked by test.sh) or Debian 13's (from one of test.sh's trixie trees, run with chroot).
/// The tests that cover both run one scenario table against each.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Release {
    Deb12,
    Deb13,
}

/// Debian 13's OpenSSH server in the trixie tree: sshd, and the programs it runs for each
/// connection (10.0: `sshd-session`, which logs the connection's lines, and `sshd-auth`).
pub const TRIXIE_SSHD: [&str; 3] = [
    "usr/sbin/sshd",
    "usr/lib/openssh/sshd-session",
    "usr/lib/openssh/sshd-auth",
];

/// The Debian 13 (trixie) tree test.sh makes with debootstrap (its lists name the programs:
/// OpenSSH 10.0, Dovecot 2.4, Postfix 3.10 and more; OpenSMTPD unpacked under
/// /opt/unpacked): env `PORTCULLIS_TRIXIE_ROOT` if set, else /var/cache/portcullis-test/trixie.
/// Panics unless each of `files` (relative to it) is there.
pub fn trixie_root(files: &[&str]) -> PathBuf {
    tree_root(
        "PORTCULLIS_TRIXIE_ROOT",
        "/var/cache/portcullis-test/trixie",
        files,
    )
}

/// test.sh's second Debian 13 tree, for what conflicts with the first one's programs (Exim
/// 4.98, Cyrus IMAP 3.10, strongSwan 6.0): env `PORTCULLIS_TRIXIE_B_ROOT` if set, else
/// /var/cache/portcullis-test/trixie-b. Panics unless each of `files` is there.
pub fn trixie_b_root(files: &[&str]) -> PathBuf {
    tree_root(
        "PORTCULLIS_TRIXIE_B_ROOT",
        "/var/cache/portcullis-test/trixie-b",
        files,
    )
}

/// test.sh's third Debian 13 tree: the Courier MTA 1.4 and Courier-IMAP 5.2 (they conflict
/// with the first tree's Postfix and Dovecot), Rspamd, Monit, Radicale, Net-SNMP, NRPE,
/// Perdition, xinetd, tcpd and PortSentry: env `PORTCULLIS_TRIXIE_C_ROOT` if set, else
/// /var/cache/portcullis-test/trixie-c. Panics unless each of `files` is there.
pub fn trixie_c_root(files: &[&str]) -> PathBuf {
    tree_root(
        "PORTCULLIS_TRIXIE_C_ROOT",
        "/var/cache/portcullis-test/trixie-c",
        files,
    )
}

/// test.sh's fourth Debian 13 tree: Sendmail 8.18 with Cyrus SASL (it conflicts with every
/// other tree's MTA): env `PORTCULLIS_TRIXIE_D_ROOT` if set, else
/// /var/cache/portcullis-test/trixie-d. Panics unless each of `files` is there.
pub fn trixie_d_root(files: &[&str]) -> PathBuf {
    tree_root(
        "PORTCULLIS_TRIXIE_D_ROOT",
        "/var/cache/portcullis-test/trixie-d",
        files,
    )
}

/// test.sh's fifth Debian 13 tree: WordPress 6.8 on PHP 8.4 under Apache with MariaDB 11.8,
/// PostgreSQL 17, and Exim 4.98's heavy daemon with SpamAssassin: env
/// `PORTCULLIS_TRIXIE_E_ROOT` if set, else /var/cache/portcullis-test/trixie-e. Panics unless
/// each of `files` is there.
pub fn trixie_e_root(files: &[&str]) -> PathBuf {
    tree_root(
        "PORTCULLIS_TRIXIE_E_ROOT",
        "/var/cache/portcullis-test/trixie-e",
        files,
    )
}

fn tree_root(var: &str, default: &str, files: &[&str]) -> PathBuf {
    let root = PathBuf::from(std::env::var(var).unwrap_or(default.into()));
    for f in files {
        let path = root.join(f);
        assert!(
            path.exists(),
            "{} is missing: run test.sh (it makes the Debian 13 trees with debootstrap under \
             /var/cache/portcullis-test)",
            path.display()
        );
    }
    root
}

/// A shell function for scripts run by [`run_unshared`] that run programs of a Debian 13
/// tree ([`trixie_root`], [`trixie_b_root`], [`trixie_c_root`], [`trixie_d_root`],
/// [`trixie_e_root`]):
/// `trixie_mount TREE ROOT WORK` mounts at ROOT an overlay with TREE below (never written: test.sh's cache, shared by every test) and a tmpfs at WORK above, then
/// binds into it the namespace's /proc, /dev (call `private_syslog` or `private_dev` of
/// [`super::PRIVATE_SYSLOG_SH`] first: its /dev/log reaches the private rsyslogd, whose socket
/// directory WORK's parent must be, so it is bound at the same path inside) and a fresh /run
/// and /tmp. Then `chroot ROOT PROGRAM…` runs a trixie program; files for it go under ROOT
/// (its /etc is the overlay's: writable, private to the run).
pub const TRIXIE_SH: &str = r#"trixie_mount() {
  local tree=$1 root=$2 work=$3 d
  mkdir -p "$root" "$work"
  mount -t tmpfs -o mode=755 pct-trixie "$work"
  mkdir -p "$work/up" "$work/work"
  mount -t overlay pct-trixie -o "lowerdir=$tree,upperdir=$work/up,workdir=$work/work" "$root"
  mount --rbind /proc "$root/proc"
  mount --rbind /dev "$root/dev"
  mount -t tmpfs -o mode=755 pct-run "$root/run"
  mount -t tmpfs -o mode=1777 pct-tmp "$root/tmp"
  d=$(dirname "$work")
  mkdir -p "$root$d" && mount --bind "$d" "$root$d"
}
"#;

/// Shell functions of the real Courier tests (real_courier, real_courier_smtp), after
/// `private_syslog` and with /etc/courier's upper layer at `$d/etc/up/courier`:
/// `courier_userdb HOME` writes authdaemonrc (the userdb module only, two daemons, the socket
/// under /run/courier/authdaemon) and a userdb whose one user, alice (uid/gid 65534, password
/// right-pw hashed by openssl), has a Maildir under HOME; `courier_authdaemond` starts
/// authdaemond under courierlogger (syslog name authdaemond, facility mail) on a fresh
/// /run and waits for its socket (exit 6 if it never comes); `courier13_authdaemond ROOT`
/// does the same for Debian 13's tree mounted at ROOT (after `trixie_mount`, whose fresh /run
/// it uses), with chroot.
pub const COURIER_AUTH_SH: &str = r#"courier_userdb() {
  local home=$1 s
  cat > "$d/etc/up/courier/authdaemonrc" <<A
authmodulelist="authuserdb"
authmodulelistorig="authuserdb"
daemons=2
authdaemonvar=/run/courier/authdaemon
DEBUG_LOGIN=0
DEFAULTOPTIONS=""
LOGGEROPTS=""
A
  for s in cur new tmp; do mkdir -p "$home/alice/Maildir/$s"; done
  chown -R 65534:65534 "$home/alice"
  printf 'alice\tuid=65534|gid=65534|home=%s|systempw=%s\n' "$home/alice" "$(openssl passwd -6 right-pw)" \
    > "$d/etc/up/courier/userdb"
  chmod 600 "$d/etc/up/courier/userdb"
}
courier_authdaemond() {
  mount -t tmpfs -o mode=755 pct-run /run
  mkdir -p /run/courier/authdaemon
  /usr/sbin/courierlogger -name=authdaemond -facility=mail /usr/lib/courier/courier-authlib/authdaemond &
  for _ in $(seq 50); do [ -S /run/courier/authdaemon/socket ] && break; sleep 0.1; done
  [ -S /run/courier/authdaemon/socket ] || { echo "authdaemond did not start" >&2; exit 6; }
}
courier13_authdaemond() {
  local r=$1
  mkdir -p "$r/run/courier/authdaemon"
  chroot "$r" /usr/sbin/courierlogger -name=authdaemond -facility=mail /usr/lib/courier/courier-authlib/authdaemond &
  for _ in $(seq 50); do [ -S "$r/run/courier/authdaemon/socket" ] && break; sleep 0.1; done
  [ -S "$r/run/courier/authdaemon/socket" ] || { echo "authdaemond did not start" >&2; exit 6; }
}
"#;

/// Shell function of the real ManageSieve tests (real_sieve, real_dovecot_journal), after
/// [`TRIXIE_SH`], with `$d` the test's directory and `$tree` the Debian 13 tree or empty:
/// `sieve_dovecot LISTEN` writes alice's passwd-file (password correct-horse, uid/gid 65534,
/// a Maildir under $d/mail) and a ManageSieve-only Dovecot configuration listening on
/// LISTEN, port 4190, logging through syslog(3) (facility mail), in 2.3's syntax or, with a
/// tree, 2.4's; then sets the array `dovecot` to the command that runs that Dovecot (the
/// machine's, or Debian 13's by chroot in a private overlay of the tree).
pub const SIEVE_DOVECOT_SH: &str = r#"sieve_dovecot() {
local listen=$1
mkdir -p "$d/run" "$d/state" "$d/mail"
chmod 1777 "$d/mail"
echo "alice:{PLAIN}correct-horse:65534:65534::$d/mail/alice" > "$d/passwd"
chmod 644 "$d/passwd"
# the configuration: 2.3's syntax, or 2.4's (dovecot_config_version first: it sets the
# defaults the rest is read with; named passdb/userdb blocks, auth_allow_cleartext,
# mail_driver/mail_path: as real_mail.rs writes it)
common="base_dir = $d/run
state_dir = $d/state
log_path = syslog
syslog_facility = mail
protocols = sieve
listen = $listen
ssl = no
auth_mechanisms = plain login
auth_failure_delay = 0
first_valid_uid = 1
service managesieve-login {
  inet_listener sieve {
    port = 4190
  }
}"
if [ -z "$tree" ]; then
  cat > "$d/dovecot.conf" <<C
$common
disable_plaintext_auth = no
mail_location = maildir:$d/mail/%u
passdb {
  driver = passwd-file
  args = $d/passwd
}
userdb {
  driver = passwd-file
  args = $d/passwd
}
C
  dovecot=(/usr/sbin/dovecot)
else
  cat > "$d/dovecot.conf" <<C
dovecot_config_version = 2.4.0
dovecot_storage_version = 2.4.0
$common
auth_allow_cleartext = yes
mail_driver = maildir
mail_path = $d/mail/%{user}
passdb passwd-file {
  passwd_file_path = $d/passwd
}
userdb passwd-file {
  passwd_file_path = $d/passwd
}
C
  # Debian 13's Dovecot in a private overlay of the tree (trixie_mount: $d at the same
  # path inside, so its /dev/log is the run's)
  trixie_mount "$tree" "$d/root" "$d/trixie" || exit 4
  dovecot=(chroot "$d/root" /usr/sbin/dovecot)
fi
}
"#;

/// What [`SIEVE_DOVECOT_SH`] runs (fails loudly when missing: test.sh installs it): the
/// machine's Dovecot with ManageSieve (dovecot-core, dovecot-managesieved), or Debian 13's
/// in the trixie tree (and chroot). Returns the tree for Debian 13, else "".
pub fn require_sieve_dovecot(release: Release) -> String {
    match release {
        Release::Deb12 => {
            require_program("dovecot", "dovecot-core");
            assert!(
                Path::new("/usr/lib/dovecot/managesieve-login").is_file(),
                "/usr/lib/dovecot/managesieve-login is missing: install dovecot-managesieved \
                 (test.sh does)"
            );
            String::new()
        }
        Release::Deb13 => {
            require_program("chroot", "coreutils");
            trixie_root(&[
                "usr/sbin/dovecot",
                "usr/lib/dovecot/managesieve-login",
                "usr/lib/dovecot/managesieve",
                "usr/lib/dovecot/auth",
                "usr/lib/dovecot/log",
            ])
            .display()
            .to_string()
        }
    }
}

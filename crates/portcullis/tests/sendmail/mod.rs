//! What the two real Sendmail tests (real_sendmail.rs, real_sendmail_auth.rs) share: the
//! Sendmail of each Debian release and how a script runs it, the base of their sendmail.mc,
//! and the head of their Python SMTP clients. Use with `mod sendmail;` after `mod common;`.
#![allow(dead_code)]

use crate::common::*;
use std::ffi::OsString;
use std::path::PathBuf;

/// Where test.sh unpacks Debian 12's .debs (PORTCULLIS_SENDMAIL_ROOT overrides it).
const SENDMAIL_ROOT: &str = "/var/cache/portcullis-test/sendmail/root";
/// The binaries inside an unpacked sendmail-bin (usr/sbin/sendmail-mta is an alternatives
/// link made by the package's postinst, absent from the .deb).
const SENDMAIL_BIN: &str = "usr/libexec/sendmail/sendmail";
const MAKEMAP_BIN: &str = "usr/libexec/sendmail/makemap";
const CF_M4: &str = "usr/share/sendmail/cf/m4/cf.m4";
/// Where test.sh's fourth Debian 13 tree holds the unpacked (never installed) packages.
const TRIXIE_UNPACKED: &str = "opt/unpacked";

/// The Sendmail a run uses: Debian 12's (8.17.1, unpacked by test.sh on the host, run with
/// LD_LIBRARY_PATH) or Debian 13's (8.18.1, unpacked in test.sh's trixie-d tree, copied into
/// place in a private overlay of it and run with chroot).
pub struct Sendmail {
    pub version: Release,
    /// Debian 12's unpacked root, or Debian 13's tree.
    pub root: PathBuf,
}

impl Sendmail {
    /// Fails loudly unless the release's files are there.
    pub fn new(version: Release) -> Sendmail {
        let root = match version {
            Release::Deb12 => unpacked(
                "PORTCULLIS_SENDMAIL_ROOT",
                SENDMAIL_ROOT,
                &[SENDMAIL_BIN, MAKEMAP_BIN, CF_M4],
                "Debian's sendmail-bin, sendmail-base and sendmail-cf",
            ),
            Release::Deb13 => {
                require_program("chroot", "coreutils");
                let u = TRIXIE_UNPACKED;
                trixie_d_root(&[
                    &format!("{u}/sendmail-bin/{SENDMAIL_BIN}"),
                    &format!("{u}/sendmail-bin/{MAKEMAP_BIN}"),
                    &format!("{u}/sendmail-base/etc/mail"),
                    &format!("{u}/sendmail-cf/{CF_M4}"),
                    "usr/sbin/saslpasswd2",
                    "usr/lib/x86_64-linux-gnu/sasl2/libplain.so.2",
                    "usr/lib/x86_64-linux-gnu/sasl2/liblogin.so.2",
                    "usr/lib/x86_64-linux-gnu/sasl2/libsasldb.so.2",
                ])
            }
        };
        Sendmail { version, root }
    }

    /// The version Sendmail writes in `starting daemon (VERSION)`.
    pub fn release(&self) -> &'static str {
        match self.version {
            Release::Deb12 => "8.17.1",
            Release::Deb13 => "8.18.1",
        }
    }

    /// The sendmail-cf directory, for the host's m4.
    pub fn cf_dir(&self) -> PathBuf {
        match self.version {
            Release::Deb12 => self.root.join("usr/share/sendmail/cf"),
            Release::Deb13 => self
                .root
                .join(TRIXIE_UNPACKED)
                .join("sendmail-cf/usr/share/sendmail/cf"),
        }
    }

    /// The arguments of [`SENDMAIL_SH`]'s `sendmail_release` after its first: the unpacked
    /// root (Debian 12) and the tree (Debian 13), the other one empty.
    pub fn script_args(&self) -> [OsString; 2] {
        match self.version {
            Release::Deb12 => [self.root.clone().into(), OsString::new()],
            Release::Deb13 => [OsString::new(), self.root.clone().into()],
        }
    }

    /// A test directory's label: `base`, with "-8.18" for Debian 13.
    pub fn label(&self, base: &str) -> String {
        match self.version {
            Release::Deb12 => base.to_string(),
            Release::Deb13 => format!("{base}-8.18"),
        }
    }
}

/// The version in Sendmail's `starting daemon (VERSION): …` line of `log`.
pub fn daemon_version(log: &str) -> Option<String> {
    log.lines().find_map(|l| {
        let (_, rest) = l
            .split_once(" sm-mta[")?
            .1
            .split_once("]: starting daemon (")?;
        Some(rest.split_once(')')?.0.to_string())
    })
}

/// A bash function (after [`PRIVATE_ETC_SH`], [`PRIVATE_SYSLOG_SH`]'s `private_dev` or
/// `private_syslog`, and [`TRIXIE_SH`]): `sendmail_release W UNPACKED TREE ETC FILE…` sets
/// up the release to run in this mount namespace. W is a directory of its own whose parent
/// is the test's directory. With UNPACKED (Debian 12): /etc an overlay with each ETC/FILE
/// over the host's (`private_etc`). With TREE (Debian 13): a private overlay of the tree at
/// W/root (`trixie_mount`, the test's directory at the same path inside) with sendmail-base,
/// -bin and -cf copied into place and each ETC/FILE into its /etc. Then `"${smx[@]}"
/// "$smbin/PROGRAM"` runs one of sendmail-bin's programs (sendmail, makemap) and
/// `"${smx[@]}" PATH` one of the tree's (Debian 13; Debian 12: the host's).
pub const SENDMAIL_SH: &str = r#"sendmail_release() {
  local w=$1 unp=$2 tree=$3 etc=$4 p f
  shift 4
  mkdir -p "$w"
  if [ -n "$unp" ]; then
    private_etc "$w/etc-ov" "$etc" "$@"
    smx=(env "LD_LIBRARY_PATH=$unp/usr/lib/x86_64-linux-gnu")
    smbin="$unp/usr/libexec/sendmail"
  else
    trixie_mount "$tree" "$w/root" "$w.trixie" || return 1
    for p in sendmail-base sendmail-bin sendmail-cf; do
      cp -a "$w/root/opt/unpacked/$p/." "$w/root/" || return 1
    done
    for f in "$@"; do
      mkdir -p "$w/root/etc/$(dirname "$f")"
      cp "$etc/$f" "$w/root/etc/$f" || return 1
    done
    smx=(chroot "$w/root")
    smbin=/usr/libexec/sendmail
  fi
}
"#;

/// The base of both tests' sendmail.mc: `cf_dir` is the release's sendmail-cf directory,
/// `dir` the test's directory (under /tmp: DontBlameSendmail=TrustStickyBit), `extra` the
/// test's own lines (after the FEATUREs every test uses, before the daemons).
pub fn sendmail_mc(cf_dir: &str, dir: &str, extra: &str) -> String {
    format!(
        "divert(-1)
include(`{cf_dir}/m4/cf.m4')
divert(0)dnl
define(`confDONT_BLAME_SENDMAIL', `TrustStickyBit')dnl
OSTYPE(`linux')dnl
define(`confDOMAIN_NAME', `mx.example.net')dnl
define(`confLOG_LEVEL', `9')dnl
define(`QUEUE_DIR', `{dir}/mqueue')dnl
define(`confPID_FILE', `{dir}/sendmail.pid')dnl
define(`ALIAS_FILE', `{dir}/aliases')dnl
define(`confSERVICE_SWITCH_FILE', `{dir}/service.switch')dnl
define(`confHOSTS_FILE', `{dir}/hosts')dnl
define(`confDEAD_LETTER_DROP', `{dir}/dead.letter')dnl
define(`confDELIVERY_MODE', `background')dnl
define(`confDONT_PROBE_INTERFACES', `true')dnl
define(`confTO_IDENT', `0')dnl
define(`confREFUSE_LA', `999')dnl
define(`confQUEUE_LA', `999')dnl
FEATURE(`no_default_msa')dnl
FEATURE(`nocanonify')dnl
FEATURE(`accept_unresolvable_domains')dnl
{extra}DAEMON_OPTIONS(`Port=25, Addr=192.0.2.1, Name=MTA-v4, Family=inet, Listen=64')dnl
DAEMON_OPTIONS(`Port=25, Addr=2001:db8::1, Name=MTA-v6, Family=inet6, Listen=64')dnl
LOCAL_DOMAIN(`example.net')dnl
define(`LOCAL_MAILER_PATH', `/bin/true')dnl
MAILER(`local')dnl
MAILER(`smtp')dnl
"
    )
}

/// Both tests' clients (Debian's python3, raw sockets): this head, the shared SMTP part
/// ([`SMTP_CLIENT_PY`]), `Conn(src)` that connects from `src` to Sendmail's port 25 (IPv4 or
/// IPv6 by the source), checks the banner and sends EHLO, and `main(ATTACKS, legit)` that runs
/// every attacker scenario `(function, source)` on a thread, then the legitimate client, and
/// exits non-zero when Sendmail answered something unexpected; then the test's `scenarios`.
/// Every socket has a 10 s timeout.
pub fn client_py(scenarios: &str) -> String {
    [CLIENT_PY_HEAD, SMTP_CLIENT_PY, CLIENT_PY_MAIN, scenarios].concat()
}

const CLIENT_PY_HEAD: &str = r##"# SMTP clients of crates/portcullis/tests/real_sendmail*.rs (head: tests/sendmail/mod.rs)
import base64
import socket
import sys
import threading
import traceback

SERVER, SERVER_V6, LEGIT = "192.0.2.1", "2001:db8::1", "198.51.100.7"
"##;

const CLIENT_PY_MAIN: &str = r##"
class Conn(SmtpConn):
    def __init__(self, src):
        super().__init__(src, 25)
        expect(src + " banner", self.reply(), b"220 ")
        self.cmd(b"EHLO client.example.com", b"250")


def run(f, *args):
    try:
        f(*args)
    except Exception as e:  # noqa: BLE001 - reported below, the test fails
        where = traceback.extract_tb(e.__traceback__)[-1]
        errors.append("%s%r: %r at line %d" % (f.__name__, args, e, where.lineno))


def main(attacks, legit):
    threads = [threading.Thread(target=run, args=a) for a in attacks]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    run(legit)
    if any(t.is_alive() for t in threads):
        errors.append("a client thread did not finish in 30 s")
    for e in errors:
        print("client error:", e, file=sys.stderr)
    sys.exit(1 if errors else 0)


"##;

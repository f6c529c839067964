//! The `hosts-deny` backend: tcp_wrappers lines for libwrap-linked services (BlockHosts'
//! way).
//!
//! Our lines live between `# portcullis begin` and `# portcullis end`; nothing outside the
//! markers is ever changed. A line is `DAEMONS: ADDR` (`sshd: 203.0.113.5`,
//! `vsftpd, in.ftpd: [2001:db8::1]`), or `DAEMONS: ADDR : deny` when the path ends in
//! `hosts.allow` (the single-file form of hosts_options(5)). A prefix ban is written in
//! hosts_access(5)'s pattern syntax: `net/mask` for IPv4 (`198.51.100.0/255.255.255.0`,
//! the form every libwrap reads; Debian's also reads `/24`) and `[net]/prefixlen` for IPv6
//! (`[2001:db8:5:6::]/64`). A single address stays plain (a mask of 255.255.255.255 is not
//! valid there). A permanent ban is a line like any other: the engine never sends its unban.
//!
//! Each batch is one rewrite: under an exclusive `flock` of the file's directory, the file is
//! read again (an admin may have edited it meanwhile), our block is replaced, and the whole
//! text is written to a temporary file in the same directory with the file's owner and mode,
//! synced, and renamed over it. A crash or a concurrent reader sees the old file or the new
//! one, never a truncated one. Bans do not expire by themselves here: the engine asks for
//! the unban, and at start the block is rewritten from the store (so nothing stays after a
//! crash and nothing is doubled).

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use tracing::error;

use portcullis_core::ignore::Cidr;

use super::{canonical_prefix, fold, never_ban_prefix, Firewall, FwOp, JailRules};

pub const BEGIN: &str =
    "# portcullis begin: managed by portcullis, do not edit between the markers";
pub const END: &str = "# portcullis end";

/// How many lines the file can take before each tcp_wrappers lookup (a linear scan per
/// connection) gets slow: `status`/`check-config` warn above it.
pub const WARN_LINES: usize = 5_000;

/// Where and for which daemons.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostsDenyOptions {
    pub path: PathBuf,
    pub daemons: Vec<String>,
}

/// The hosts-deny backend; see the module documentation.
pub struct HostsDeny {
    opts: HostsDenyOptions,
    jails: BTreeSet<String>,
    /// address or prefix -> jails banning it: the line stays while one of them does.
    banned: BTreeMap<Cidr, BTreeSet<String>>,
}

/// tcp_wrappers' form of an address or prefix (hosts_access(5)): `192.0.2.7`,
/// `198.51.100.0/255.255.255.0`, `[2001:db8::1]`, `[2001:db8:5:6::]/64`.
pub fn client(addr: Cidr) -> String {
    let c = canonical_prefix(addr);
    match c.addr {
        std::net::IpAddr::V4(a) if c.is_host() => a.to_string(),
        std::net::IpAddr::V4(a) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(c.len)).unwrap_or(0);
            format!("{a}/{}", std::net::Ipv4Addr::from(mask))
        }
        std::net::IpAddr::V6(a) if c.is_host() => format!("[{a}]"),
        std::net::IpAddr::V6(a) => format!("[{a}]/{}", c.len),
    }
}

/// Reads [`client`]'s form back.
#[cfg(test)]
pub fn parse_client(text: &str) -> Option<Cidr> {
    let (a, len) = match text.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (text, None),
    };
    let a: std::net::IpAddr = a
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok()?;
    let len = match (a, len) {
        (_, None) => return Some(Cidr::host(a)),
        (std::net::IpAddr::V4(_), Some(m)) => {
            let m: std::net::Ipv4Addr = m.parse().ok()?;
            u32::from(m).leading_ones() as u8
        }
        (std::net::IpAddr::V6(_), Some(l)) => l.parse().ok()?,
    };
    Cidr::new(a, len)
}

/// Whether the file is a hosts.allow (its lines get `: deny`, and our block goes first).
fn is_allow(opts: &HostsDenyOptions) -> bool {
    opts.path
        .file_name()
        .is_some_and(|n| n.to_string_lossy().ends_with("hosts.allow"))
}

/// Our block: the markers and one line per address or prefix.
pub fn block(opts: &HostsDenyOptions, addrs: impl Iterator<Item = Cidr>) -> String {
    let allow = is_allow(opts);
    let daemons = opts.daemons.join(", ");
    let mut s = format!("{BEGIN}\n");
    for a in addrs {
        s.push_str(&daemons);
        s.push_str(": ");
        s.push_str(&client(a));
        if allow {
            s.push_str(" : deny");
        }
        s.push('\n');
    }
    s.push_str(END);
    s.push('\n');
    s
}

/// `text` with our block replaced by `new_block` (appended when there is none; with `first`,
/// put before the first rule instead, after the comments that head the file: in
/// hosts.allow the first rule that matches decides, so a `: deny` line after `sshd: ALL`
/// denied nothing, a review found). Lines outside the markers stay byte for byte. A begin
/// marker without an end is an error: we cannot know where our part ends.
pub fn replace_block(text: &str, new_block: &str, first: bool) -> Result<String> {
    if first {
        // also when a block is there already: one an older version appended after the
        // rules moves up
        let rest = replace_block(text, "", false)?;
        let head: usize = rest
            .split_inclusive('\n')
            .take_while(|l| {
                let t = l.trim();
                t.is_empty() || t.starts_with('#')
            })
            .map(str::len)
            .sum();
        if head < rest.len() {
            return Ok(format!("{}{new_block}{}", &rest[..head], &rest[head..]));
        }
        return replace_block(&rest, new_block, false);
    }
    let is_begin = |l: &str| l.trim_end().starts_with("# portcullis begin");
    let is_end = |l: &str| l.trim_end() == END;
    let mut out = String::with_capacity(text.len() + new_block.len());
    let mut lines = text.split_inclusive('\n');
    let mut done = false;
    while let Some(l) = lines.next() {
        if is_begin(l) {
            if done {
                bail!("two portcullis blocks in the file; remove one by hand");
            }
            let mut closed = false;
            for l in lines.by_ref() {
                if is_end(l) {
                    closed = true;
                    break;
                }
            }
            if !closed {
                bail!("`# portcullis begin` without `{END}`; repair the file by hand (we do not guess where our lines end)");
            }
            out.push_str(new_block);
            done = true;
        } else {
            out.push_str(l);
        }
    }
    if !done {
        if !out.is_empty() && !out.ends_with('\n') {
            out.push('\n');
        }
        out.push_str(new_block);
    }
    Ok(out)
}

/// Reads the addresses and prefixes of our block (for tests and for `list`).
#[cfg(test)]
pub fn parse_block(text: &str) -> Vec<Cidr> {
    let mut inside = false;
    let mut v = Vec::new();
    for l in text.lines() {
        if l.starts_with("# portcullis begin") {
            inside = true;
        } else if l == END {
            inside = false;
        } else if inside {
            if let Some(c) = l.split(": ").nth(1) {
                let c = c.split_whitespace().next().unwrap_or_default();
                if let Some(a) = parse_client(c) {
                    v.push(a);
                }
            }
        }
    }
    v
}

/// `path`, or the file it links to.
fn resolve(path: &Path) -> Result<std::path::PathBuf> {
    Ok(match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => std::fs::canonicalize(path)
            .with_context(|| format!("cannot follow the link {}", path.display()))?,
        _ => path.to_path_buf(),
    })
}

/// Fails unless the file (or its directory, if the file does not exist) can be written.
pub fn check_writable(path: &Path) -> Result<()> {
    // the file and its directory, as written and resolved, only root's to change: whoever
    // can plant a link there has the daemon rewrite another file, or one of their own over
    // a file of root's (review 65); in the file's own directory not even a sticky bit will
    // do (anyone may create the file, or a link, there before the daemon does)
    let what = "[firewall.hosts_deny] path";
    crate::daemon::fsutil::check_trusted(path, what, true)?;
    let written_dir = path.parent().map(Path::to_path_buf);
    // a link: the file it points to is the one rewritten, in its own directory
    let resolved = resolve(path)?;
    let path = resolved.as_path();
    let dir = path.parent().context("hosts_deny.path has no directory")?;
    for d in std::iter::once(dir).chain(written_dir.as_deref()) {
        crate::daemon::fsutil::check_trusted(d, &format!("the directory of {what}"), true)?;
    }
    let c = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes())?;
    // SAFETY: a valid C string; access(2) has no other preconditions.
    if unsafe { libc::access(c.as_ptr(), libc::W_OK | libc::X_OK) } != 0 {
        bail!(
            "firewall backend \"hosts-deny\": cannot write in {} ({}); the daemon writes a temporary file there and renames it over {}",
            dir.display(),
            std::io::Error::last_os_error(),
            path.display()
        );
    }
    if path.exists() {
        let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes())?;
        // SAFETY: as above.
        if unsafe { libc::access(c.as_ptr(), libc::R_OK) } != 0 {
            bail!(
                "firewall backend \"hosts-deny\": cannot read {} ({})",
                path.display(),
                std::io::Error::last_os_error()
            );
        }
    }
    Ok(())
}

impl HostsDeny {
    pub fn new(opts: HostsDenyOptions) -> Self {
        HostsDeny {
            opts,
            jails: BTreeSet::new(),
            banned: BTreeMap::new(),
        }
    }

    /// Rewrites the file with our block as `banned` says; see the module documentation.
    fn write(&self) -> Result<()> {
        let block = block(&self.opts, self.banned.keys().copied());
        self.rewrite(|text| replace_block(text, &block, is_allow(&self.opts)))
    }

    /// Rewrites the file as `edit` says, under the lock, through a temporary file.
    fn rewrite(&self, edit: impl Fn(&str) -> Result<String>) -> Result<()> {
        // a link (hosts.deny kept elsewhere by configuration management): the file it
        // points to is rewritten, not the link replaced by a file
        let real = resolve(&self.opts.path)?;
        let path = &real;
        let dir = path.parent().context("hosts_deny.path has no directory")?;
        let lock = File::open(dir).with_context(|| format!("cannot open {}", dir.display()))?;
        // SAFETY: flock on a descriptor we own; released when `lock` is closed.
        if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) } != 0 {
            bail!(
                "cannot lock {}: {}",
                dir.display(),
                std::io::Error::last_os_error()
            );
        }
        // a file that is not UTF-8 (a Latin-1 comment of an admin's) is read byte for byte
        // as Latin-1 and written back the same way: our lines are ASCII, the others are
        // kept as they were (it stopped the daemon, a review found)
        let (text, meta, latin1) = match std::fs::read(path) {
            Ok(t) => {
                let meta = Some(std::fs::metadata(path)?);
                match String::from_utf8(t) {
                    Ok(s) => (s, meta, false),
                    Err(e) => (
                        e.into_bytes().iter().map(|&b| b as char).collect(),
                        meta,
                        true,
                    ),
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (String::new(), None, false),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        let new = edit(&text).with_context(|| format!("in {}", path.display()))?;
        if new == text {
            return Ok(());
        }
        let new: Vec<u8> = if latin1 {
            // (every char came from one byte, and our block is ASCII)
            new.chars().map(|c| c as u32 as u8).collect()
        } else {
            new.into_bytes()
        };
        let name = path.file_name().context("no file name")?.to_string_lossy();
        let tmp = dir.join(format!(".{name}.portcullis-{}", std::process::id()));
        let _ = std::fs::remove_file(&tmp);
        let result = (|| -> Result<()> {
            let mut f = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)
                .with_context(|| format!("cannot create {}", tmp.display()))?;
            f.write_all(&new)?;
            match &meta {
                Some(m) => {
                    std::os::unix::fs::fchown(&f, Some(m.uid()), Some(m.gid()))?;
                    f.set_permissions(std::fs::Permissions::from_mode(m.mode() & 0o7777))?;
                }
                None => f.set_permissions(std::fs::Permissions::from_mode(0o644))?,
            }
            f.sync_all()?;
            std::fs::rename(&tmp, path).with_context(|| {
                format!("cannot rename {} over {}", tmp.display(), path.display())
            })?;
            File::open(dir)?.sync_all()?;
            Ok(())
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result
    }
}

impl Firewall for HostsDeny {
    fn setup(&mut self, jails: &[JailRules]) -> Result<()> {
        for j in jails {
            j.check()?;
        }
        check_writable(&self.opts.path)?;
        self.jails = jails.iter().map(|j| j.name.clone()).collect();
        // bans of jails that are gone go with them
        let jails = &self.jails;
        self.banned.retain(|_, js| {
            js.retain(|j| jails.contains(j));
            !js.is_empty()
        });
        self.write()
    }

    fn apply(&mut self, ops: &[FwOp]) -> Result<()> {
        let before = self.banned.clone();
        for ((jail, addr), timeout) in fold(ops) {
            if !self.jails.contains(&jail) {
                bail!("cannot ban or unban {addr}: jail {jail:?} does not use hosts-deny");
            }
            match timeout {
                Some(_) if never_ban_prefix(addr) => {
                    error!("refusing to ban {addr} (jail {jail}): loopback/unspecified")
                }
                Some(_) => {
                    self.banned.entry(addr).or_default().insert(jail);
                }
                None => {
                    if let Some(js) = self.banned.get_mut(&addr) {
                        js.remove(&jail);
                        if js.is_empty() {
                            self.banned.remove(&addr);
                        }
                    }
                }
            }
        }
        if let Err(e) = self.write() {
            self.banned = before;
            return Err(e);
        }
        Ok(())
    }

    fn restore(&mut self, ops: &[FwOp]) -> Result<()> {
        // the store is the truth: what the file holds from before (a crash) goes
        self.banned.clear();
        self.apply(ops)
    }

    fn expires_itself(&self) -> bool {
        false
    }

    fn report(&mut self) -> Vec<String> {
        if self.banned.len() > WARN_LINES {
            vec![format!("hosts-deny holds {} lines: every connection of a tcp_wrappers service reads them all; above {WARN_LINES} use ipset or nftables", self.banned.len())]
        } else {
            Vec::new()
        }
    }

    #[cfg(test)]
    fn list(&mut self) -> Result<Vec<(String, std::net::IpAddr, Option<i64>)>> {
        let text = std::fs::read_to_string(&self.opts.path).unwrap_or_default();
        let mut v = Vec::new();
        for a in parse_block(&text) {
            for j in self.banned.get(&a).into_iter().flatten() {
                v.push((j.clone(), a.addr, None));
            }
        }
        Ok(v)
    }

    fn teardown(&mut self) -> Result<()> {
        self.banned.clear();
        if !self.opts.path.exists() {
            return Ok(());
        }
        // the block goes with its markers
        self.rewrite(|text| replace_block(text, "", false))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::firewall::{Action, Proto};

    fn opts(path: &Path, daemons: &[&str]) -> HostsDenyOptions {
        HostsDenyOptions {
            path: path.to_path_buf(),
            daemons: daemons.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn lines_and_blocks() {
        let o = opts(Path::new("/etc/hosts.deny"), &["sshd", "vsftpd"]);
        let b = block(
            &o,
            ["203.0.113.5", "2001:db8::1"]
                .iter()
                .map(|a| crate::firewall::cidr(a)),
        );
        assert_eq!(
            b,
            format!("{BEGIN}\nsshd, vsftpd: 203.0.113.5\nsshd, vsftpd: [2001:db8::1]\n{END}\n")
        );
        let o = opts(Path::new("/etc/hosts.allow"), &["ALL"]);
        let b = block(&o, std::iter::once(crate::firewall::cidr("192.0.2.1")));
        assert!(b.contains("\nALL: 192.0.2.1 : deny\n"), "{b}");
        assert_eq!(parse_block(&b), vec![crate::firewall::cidr("192.0.2.1")]);
    }

    #[test]
    fn prefixes_in_tcp_wrappers_syntax() {
        use crate::firewall::cidr;
        for (c, want) in [
            ("192.0.2.7", "192.0.2.7"),
            ("198.51.100.0/24", "198.51.100.0/255.255.255.0"),
            ("203.0.113.128/25", "203.0.113.128/255.255.255.128"),
            ("10.0.0.0/8", "10.0.0.0/255.0.0.0"),
            ("192.0.2.4/31", "192.0.2.4/255.255.255.254"),
            ("2001:db8::1", "[2001:db8::1]"),
            ("2001:db8:5:6::/64", "[2001:db8:5:6::]/64"),
            ("2001:db8::/32", "[2001:db8::]/32"),
        ] {
            assert_eq!(client(cidr(c)), want, "{c}");
            assert_eq!(parse_client(want), Some(cidr(c)), "{want}");
        }
        let o = opts(Path::new("/etc/hosts.allow"), &["sshd"]);
        let b = block(
            &o,
            [cidr("198.51.100.0/24"), cidr("2001:db8:5:6::/64")].into_iter(),
        );
        assert_eq!(
            b,
            format!("{BEGIN}\nsshd: 198.51.100.0/255.255.255.0 : deny\nsshd: [2001:db8:5:6::]/64 : deny\n{END}\n")
        );
        assert_eq!(
            parse_block(&b),
            [cidr("198.51.100.0/24"), cidr("2001:db8:5:6::/64")]
        );
    }

    /// What libwrap makes of a file in `dir`: tcpdmatch (Debian's tcpd) reads the
    /// hosts.allow/hosts.deny of its working directory.
    fn tcpdmatch(dir: &Path, daemon: &str, client: &str) -> String {
        let out = std::process::Command::new("tcpdmatch")
            .args(["-d", daemon, client])
            .current_dir(dir)
            .output()
            .expect("tcpdmatch (Debian package tcpd) must be installed: apt install tcpd");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.lines()
            .find_map(|l| l.strip_prefix("access:"))
            .map(|a| a.trim().to_string())
            .unwrap_or(text)
    }

    #[test]
    fn tcpdmatch_denies_the_whole_prefix_and_nothing_else() {
        use crate::firewall::{cidr, PERMANENT};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hosts.deny");
        let mut hd = HostsDeny::new(opts(&path, &["sshd"]));
        hd.setup(&[jail("sshd")]).unwrap();
        let add = |a: &str, t| FwOp::Add {
            jail: "sshd".into(),
            addr: cidr(a),
            timeout_ms: t,
        };
        hd.apply(&[
            add("198.51.100.0/24", 60_000),
            add("2001:db8:5:6::/64", PERMANENT),
            add("203.0.113.9", PERMANENT),
        ])
        .unwrap();
        let d = dir.path();
        for denied in [
            "198.51.100.0",
            "198.51.100.77",
            "198.51.100.255",
            "2001:db8:5:6::1",
            "2001:db8:5:6:ffff:ffff:ffff:ffff",
            "203.0.113.9",
        ] {
            assert_eq!(tcpdmatch(d, "sshd", denied), "denied", "{denied}");
        }
        for granted in [
            "198.51.101.1",
            "198.51.99.255",
            "2001:db8:5:7::1",
            "2001:db8:5:5:ffff::1",
            "203.0.113.10",
        ] {
            assert_eq!(tcpdmatch(d, "sshd", granted), "granted", "{granted}");
        }
        assert_eq!(tcpdmatch(d, "vsftpd", "198.51.100.77"), "granted");
        // the unban of the prefix lifts it
        hd.apply(&[FwOp::Del {
            jail: "sshd".into(),
            addr: cidr("198.51.100.0/24"),
        }])
        .unwrap();
        assert_eq!(tcpdmatch(d, "sshd", "198.51.100.77"), "granted");
        assert_eq!(tcpdmatch(d, "sshd", "2001:db8:5:6::1"), "denied");
    }

    #[test]
    fn only_our_block_changes() {
        let text = "# admin\nALL: 198.51.100.0/24\n# portcullis begin: old\nsshd: 192.0.2.9\n# portcullis end\nin.ftpd: ALL\n";
        let new = replace_block(text, "# portcullis begin: x\n# portcullis end\n", false).unwrap();
        assert_eq!(
            new,
            "# admin\nALL: 198.51.100.0/24\n# portcullis begin: x\n# portcullis end\nin.ftpd: ALL\n"
        );
        // no block yet: appended, after a missing final newline
        assert_eq!(
            replace_block("ALL: x", "B\n", false).unwrap(),
            "ALL: x\nB\n"
        );
        assert_eq!(replace_block("", "B\n", false).unwrap(), "B\n");
        assert!(replace_block("# portcullis begin\nsshd: 1.2.3.4\n", "B\n", false).is_err());
        // hosts.allow: before the first rule, after the heading comments; in place after
        let allow = "# hosts.allow\n\nsshd: ALL\n";
        let new = replace_block(allow, "B\n", true).unwrap();
        assert_eq!(new, "# hosts.allow\n\nB\nsshd: ALL\n");
        assert_eq!(
            replace_block("# only comments\n", "B\n", true).unwrap(),
            "# only comments\nB\n"
        );
        assert_eq!(replace_block("", "B\n", true).unwrap(), "B\n");
        // a block an older version appended after the rules moves up
        let old = "# hosts.allow\nsshd: ALL\n# portcullis begin\nsshd: 192.0.2.1 : deny\n# portcullis end\n";
        assert_eq!(
            replace_block(old, "# portcullis begin\nX\n# portcullis end\n", true).unwrap(),
            "# hosts.allow\n# portcullis begin\nX\n# portcullis end\nsshd: ALL\n"
        );
    }

    fn jail(name: &str) -> JailRules {
        JailRules {
            name: name.into(),
            ports: None,
            proto: Proto::Tcp,
            action: Action::Drop,
            backends: vec![],
        }
    }

    /// hosts.allow that already lets the service in (`sshd: ALL`), kept elsewhere and
    /// linked, with a Latin-1 comment: the ban denies (our block goes first), the link
    /// stays a link, and the admin's bytes are kept. (A review found each of the three
    /// broken: the ban granted, the link replaced by a file, the daemon stopped.)
    #[test]
    fn hosts_allow_first_rule_links_and_latin1() {
        let dir = tempfile::tempdir().unwrap();
        let real_dir = dir.path().join("tcpd");
        std::fs::create_dir(&real_dir).unwrap();
        let real = real_dir.join("hosts.allow");
        let mut text = b"# Zugang f\xfcr B\xfcro\n".to_vec();
        text.extend_from_slice(b"sshd: ALL\n");
        std::fs::write(&real, &text).unwrap();
        let link = dir.path().join("hosts.allow");
        std::os::unix::fs::symlink("tcpd/hosts.allow", &link).unwrap();
        let mut hd = HostsDeny::new(opts(&link, &["sshd"]));
        hd.setup(&[jail("sshd")]).unwrap();
        hd.apply(&[FwOp::Add {
            jail: "sshd".into(),
            addr: crate::firewall::cidr("192.0.2.1"),
            timeout_ms: 1000,
        }])
        .unwrap();
        assert!(std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        let got = std::fs::read(&real).unwrap();
        assert!(
            got.starts_with(b"# Zugang f\xfcr B\xfcro\n# portcullis begin"),
            "{got:?}"
        );
        assert!(got.ends_with(b"# portcullis end\nsshd: ALL\n"), "{got:?}");
        let tcpdmatch = |client: &str| {
            let out = std::process::Command::new("tcpdmatch")
                .args(["-d", "sshd", client])
                .current_dir(dir.path())
                .output()
                .expect("tcpdmatch (Debian package tcpd) must be installed: apt install tcpd");
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .find_map(|l| l.strip_prefix("access:").map(|a| a.trim().to_string()))
                .unwrap_or_default()
        };
        assert_eq!(tcpdmatch("192.0.2.1"), "denied");
        assert_eq!(tcpdmatch("192.0.2.9"), "granted");
        hd.teardown().unwrap();
        assert_eq!(std::fs::read(&real).unwrap(), text);
    }

    #[test]
    fn rewrites_keep_owner_mode_and_other_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hosts.deny");
        std::fs::write(&path, "# keep me\nALL: 198.51.100.7\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        let mut hd = HostsDeny::new(opts(&path, &["sshd"]));
        hd.setup(&[jail("sshd"), jail("ftp")]).unwrap();
        let add = |j: &str, a: &str| FwOp::Add {
            jail: j.into(),
            addr: crate::firewall::cidr(a),
            timeout_ms: 1000,
        };
        let del = |j: &str, a: &str| FwOp::Del {
            jail: j.into(),
            addr: crate::firewall::cidr(a),
        };
        hd.apply(&[
            add("sshd", "192.0.2.1"),
            add("ftp", "192.0.2.1"),
            add("sshd", "2001:db8::2"),
        ])
        .unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.starts_with("# keep me\nALL: 198.51.100.7\n# portcullis begin"),
            "{text}"
        );
        assert_eq!(text.matches("sshd: 192.0.2.1\n").count(), 1, "{text}");
        assert!(text.contains("sshd: [2001:db8::2]\n"), "{text}");
        assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o777, 0o640);
        // what libwrap makes of it: tcpdmatch (Debian's tcpd) reads the file of the directory
        let tcpdmatch = |daemon: &str, client: &str| {
            let out = std::process::Command::new("tcpdmatch")
                .args(["-d", daemon, client])
                .current_dir(dir.path())
                .output()
                .expect("tcpdmatch (Debian package tcpd) must be installed: apt install tcpd");
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            text.lines()
                .find_map(|l| l.strip_prefix("access:"))
                .map(|a| a.trim().to_string())
                .unwrap_or(text)
        };
        assert_eq!(tcpdmatch("sshd", "192.0.2.1"), "denied");
        assert_eq!(tcpdmatch("sshd", "2001:db8::2"), "denied");
        assert_eq!(tcpdmatch("sshd", "192.0.2.9"), "granted");
        assert_eq!(tcpdmatch("vsftpd", "192.0.2.1"), "granted");
        assert_eq!(
            tcpdmatch("in.ftpd", "198.51.100.7"),
            "denied",
            "the admin's line"
        );
        // an admin edits the file meanwhile: the edit stays
        std::fs::write(&path, text.replace("# keep me\n", "# keep me\n# edited\n")).unwrap();
        hd.apply(&[del("sshd", "192.0.2.1")]).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("# edited\n"), "{text}");
        assert!(
            text.contains("sshd: 192.0.2.1\n"),
            "ftp still bans it: {text}"
        );
        hd.apply(&[del("ftp", "192.0.2.1")]).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains("192.0.2.1"), "{text}");
        // restore from the store: only what it says, once
        let mut hd = HostsDeny::new(opts(&path, &["sshd"]));
        hd.setup(&[jail("sshd")]).unwrap();
        hd.restore(&[add("sshd", "192.0.2.3"), add("sshd", "192.0.2.3")])
            .unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(parse_block(&text), vec![crate::firewall::cidr("192.0.2.3")]);
        // no temporary file left
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
        hd.teardown().unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "# keep me\n# edited\nALL: 198.51.100.7\n"
        );
    }
}

//! `[fleet]`: shared bans through Redis (see [`crate::fleet`]). The raw table and its
//! validation live here so that config.rs only names them.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use anyhow::{anyhow, Result};
use portcullis_core::decision::Millis;
use portcullis_core::duration;
use serde::Deserialize;
use toml::Spanned;

/// Shortest shared key accepted, in bytes (HMAC-SHA256: 32 bytes of entropy; a
/// base64-encoded 32-byte key is 44 characters).
pub const MIN_KEY_LEN: usize = 32;

/// `[fleet]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFleet {
    redis: Option<Spanned<String>>,
    node: Option<Spanned<String>>,
    key_file: Option<Spanned<String>>,
    share: Option<Vec<Spanned<String>>>,
    accept: Option<bool>,
    stream: Option<Spanned<String>>,
    distrust: Option<Vec<Spanned<String>>>,
    max_bans: Option<Spanned<usize>>,
    accept_rate: Option<Spanned<u32>>,
    min_prefix_v4: Option<Spanned<u8>>,
    min_prefix_v6: Option<Spanned<u8>>,
    max_skew: Option<Spanned<String>>,
    max_bantime: Option<Spanned<String>>,
    maxlen: Option<Spanned<usize>>,
    ca_file: Option<Spanned<String>>,
}

/// The shared key; never printed.
#[derive(Clone)]
pub struct Key(pub Vec<u8>);

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Key(<redacted>)")
    }
}

/// A validated `[fleet]`.
#[derive(Debug, Clone)]
pub struct FleetConfig {
    /// `redis://` or `rediss://` URL (may carry user:password).
    pub redis: String,
    /// This node's name.
    pub node: String,
    /// The key read from it.
    pub key: Key,
    /// Jails whose bans are published; `None`: all.
    pub share: Option<Vec<String>>,
    /// Apply other nodes' bans.
    pub accept: bool,
    /// Key prefix: `PREFIX` is the stream, `PREFIX:active` the current-state hash,
    /// `PREFIX:epoch` the marker a restarted-empty Redis lacks.
    pub stream: String,
    /// Nodes whose entries are dropped.
    pub distrust: Vec<String>,
    /// Most fleet bans held at once (more are refused and counted).
    pub max_bans: usize,
    /// Most fleet bans accepted per second (a burst of as many is allowed).
    pub accept_rate: u32,
    /// Shortest IPv4 prefix length a fleet ban may have (wider ones are refused).
    pub min_prefix_v4: u8,
    /// Shortest IPv6 prefix length a fleet ban may have (wider ones are refused).
    pub min_prefix_v6: u8,
    /// Clock-skew tolerance: entries stamped further in the future are dropped, and a
    /// fleet ban never outlives its `until` by more.
    pub max_skew: Millis,
    /// Longest fleet ban applied: a longer `until` is cut to entry time + this.
    pub max_bantime: Millis,
    /// Approximate length the stream is trimmed to (XADD MAXLEN ~).
    pub maxlen: usize,
    /// With `rediss://`: the CA certificates (PEM) the server's certificate is checked
    /// against instead of the system's trust store.
    pub ca: Option<Vec<u8>>,
}

impl FleetConfig {
    /// Whether bans of `jail` are published.
    pub fn shares(&self, jail: &str) -> bool {
        self.share
            .as_ref()
            .is_none_or(|s| s.iter().any(|j| j == jail))
    }

    /// Whether a fleet ban of `c` is narrow enough to apply (`min_prefix_v4/v6`).
    pub fn narrow_enough(&self, c: &portcullis_core::ignore::Cidr) -> bool {
        c.len
            >= if c.addr.is_ipv4() {
                self.min_prefix_v4
            } else {
                self.min_prefix_v6
            }
    }
}

/// Node and jail names in entries: short, no separators.
pub fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default()
}

/// Reads and checks the key file: absolute, readable, at least [`MIN_KEY_LEN`] bytes
/// (trailing whitespace trimmed), and readable by its owner only.
pub fn read_key(path: &std::path::Path) -> std::result::Result<Vec<u8>, String> {
    // (its links and directories too: review 67 L5)
    crate::daemon::fsutil::check_trusted(path, "the fleet key", true)
        .map_err(|e| format!("{e:#}"))?;
    let meta =
        std::fs::metadata(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mode = meta.permissions().mode();
    // owned by another user, it could be replaced by that user (a review: a 0600 key owned
    // by nobody passed)
    {
        use std::os::unix::fs::MetadataExt;
        // SAFETY: geteuid has no preconditions.
        let me = unsafe { libc::geteuid() };
        if meta.uid() != me {
            return Err(format!(
                "{} is owned by uid {}, not by the daemon's user (uid {me}): its owner could replace the key; chown it",
                path.display(),
                meta.uid()
            ));
        }
    }
    if mode & 0o077 != 0 {
        return Err(format!(
            "{} is readable or writable by others (mode {:o}): whoever reads it can forge \
             bans for the whole fleet; chmod 600 it",
            path.display(),
            mode & 0o777
        ));
    }
    let mut key =
        std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    while key.last().is_some_and(|b| b.is_ascii_whitespace()) {
        key.pop();
    }
    if key.len() < MIN_KEY_LEN {
        return Err(format!(
            "{} holds {} bytes; the shared key needs at least {MIN_KEY_LEN} (e.g. `head -c 32 \
             /dev/urandom | base64 > {}`)",
            path.display(),
            key.len(),
            path.display()
        ));
    }
    Ok(key)
}

type ErrFn<'a> = &'a dyn Fn(std::ops::Range<usize>, &str, String) -> anyhow::Error;

fn dur(err: ErrFn, s: &Option<Spanned<String>>, key: &str, default: Millis) -> Result<Millis> {
    match s {
        None => Ok(default),
        Some(s) => match duration::parse(s.get_ref()) {
            Ok(d) if d > 0 => Ok(d),
            Ok(_) => Err(err(s.span(), key, "must be longer than 0".into())),
            Err(e) => Err(err(s.span(), key, e.to_string())),
        },
    }
}

fn names(err: ErrFn, v: &[Spanned<String>], key: &str) -> Result<Vec<String>> {
    v.iter()
        .map(|n| {
            if valid_name(n.get_ref()) {
                Ok(n.get_ref().clone())
            } else {
                Err(err(
                    n.span(),
                    key,
                    format!(
                        "{:?}: names are letters, digits, . _ - (at most 64)",
                        n.get_ref()
                    ),
                ))
            }
        })
        .collect()
}

impl RawFleet {
    /// Validates the table; `err` places a message at a span of the file.
    pub fn validate(self, err: ErrFn) -> Result<FleetConfig> {
        let Some(url) = self.redis else {
            return Err(anyhow!(
                "`fleet.redis`: [fleet] needs `redis = \"redis://HOST:PORT/DB\"`"
            ));
        };
        let u = url.get_ref();
        if !["redis://", "rediss://", "redis+unix://", "unix://"]
            .iter()
            .any(|p| u.starts_with(p))
        {
            return Err(err(
                url.span(),
                "fleet.redis",
                "must start with redis://, rediss:// or redis+unix:// (a local socket)".into(),
            ));
        }
        if let Err(e) = redis::Client::open(u.as_str()) {
            return Err(err(
                url.span(),
                "fleet.redis",
                format!("not a Redis URL: {e}"),
            ));
        }
        let node = match &self.node {
            Some(n) => names(err, std::slice::from_ref(n), "fleet.node")?.remove(0),
            None => {
                let h = host_name();
                if !valid_name(&h) {
                    return Err(anyhow!(
                        "`fleet.node`: the host name {h:?} is not a valid node name; set `node`"
                    ));
                }
                h
            }
        };
        let Some(kf) = self.key_file else {
            return Err(anyhow!(
                "`fleet.key_file`: [fleet] needs `key_file` (the shared key)"
            ));
        };
        let key_file = PathBuf::from(kf.get_ref());
        if !key_file.is_absolute() {
            return Err(err(
                kf.span(),
                "fleet.key_file",
                "must be an absolute path".into(),
            ));
        }
        let key = read_key(&key_file).map_err(|m| err(kf.span(), "fleet.key_file", m))?;
        let stream = match &self.stream {
            None => "portcullis:bans".to_string(),
            Some(s) => {
                let v = s.get_ref();
                if v.is_empty() || v.len() > 200 || v.bytes().any(|b| b <= b' ' || b == 0x7f) {
                    return Err(err(
                        s.span(),
                        "fleet.stream",
                        "must be a non-empty key name without spaces".into(),
                    ));
                }
                v.clone()
            }
        };
        let ca = match &self.ca_file {
            None => None,
            Some(c) => {
                if !u.starts_with("rediss://") {
                    return Err(err(
                        c.span(),
                        "fleet.ca_file",
                        "needs a rediss:// URL".into(),
                    ));
                }
                // (whoever could write it could pass for the Redis server, and read the
                // password of the URL: review 69)
                crate::daemon::fsutil::check_trusted(
                    std::path::Path::new(c.get_ref()),
                    "the file",
                    true,
                )
                .map_err(|e| err(c.span(), "fleet.ca_file", format!("{e:#}")))?;
                let pem = std::fs::read(c.get_ref()).map_err(|e| {
                    err(
                        c.span(),
                        "fleet.ca_file",
                        format!("cannot read {}: {e}", c.get_ref()),
                    )
                })?;
                if !pem.windows(27).any(|w| w == b"-----BEGIN CERTIFICATE-----") {
                    return Err(err(
                        c.span(),
                        "fleet.ca_file",
                        format!("{} holds no PEM certificate", c.get_ref()),
                    ));
                }
                Some(pem)
            }
        };
        let share = match &self.share {
            None => None,
            Some(v) => Some(names(err, v, "fleet.share")?),
        };
        let distrust = names(
            err,
            self.distrust.as_deref().unwrap_or(&[]),
            "fleet.distrust",
        )?;
        let max_bans = self.max_bans.map_or(10_000, |s| s.into_inner());
        let accept_rate = match self.accept_rate {
            None => 50,
            Some(s) if *s.get_ref() == 0 => {
                return Err(err(
                    s.span(),
                    "fleet.accept_rate",
                    "must be at least 1".into(),
                ))
            }
            Some(s) => s.into_inner(),
        };
        // (a floor below the range: no node should be able to ban a sixteenth of the IPv4
        // Internet or more in one entry, whatever an admin writes)
        let prefix = |v: &Option<Spanned<u8>>, key: &str, min: u8, max: u8, default: u8| match v {
            None => Ok(default),
            Some(s) if !(min..=max).contains(s.get_ref()) => Err(err(
                s.span(),
                key,
                format!("the widest prefix accepted from the fleet: {min}..={max}"),
            )),
            Some(s) => Ok(*s.get_ref()),
        };
        let min_prefix_v4 = prefix(&self.min_prefix_v4, "fleet.min_prefix_v4", 8, 32, 16)?;
        let min_prefix_v6 = prefix(&self.min_prefix_v6, "fleet.min_prefix_v6", 16, 128, 32)?;
        let maxlen = match self.maxlen {
            None => 100_000,
            Some(s) if *s.get_ref() < 100 => {
                return Err(err(s.span(), "fleet.maxlen", "must be at least 100".into()))
            }
            Some(s) => s.into_inner(),
        };
        Ok(FleetConfig {
            redis: u.clone(),
            node,
            key: Key(key),
            share,
            accept: self.accept.unwrap_or(true),
            stream,
            distrust,
            max_bans,
            accept_rate,
            min_prefix_v4,
            min_prefix_v6,
            max_skew: dur(err, &self.max_skew, "fleet.max_skew", 30_000)?,
            max_bantime: dur(err, &self.max_bantime, "fleet.max_bantime", 30 * 86_400_000)?,
            maxlen,
            ca,
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;
    use std::os::unix::fs::PermissionsExt;

    fn load(dir: &std::path::Path, fleet: &str) -> anyhow::Result<Config> {
        let text = format!(
            "state_dir = {:?}\n[firewall]\nbackend = \"null\"\n[fleet]\n{fleet}",
            dir.display().to_string()
        );
        Config::from_texts(&[("t.toml".into(), text)], vec![])
    }

    fn key(dir: &std::path::Path, text: &str, mode: u32) -> String {
        let p = dir.join(format!("k{mode:o}-{}", text.len()));
        std::fs::write(&p, text).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        p.display().to_string()
    }

    #[test]
    fn fleet_settings_are_checked() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path();
        let good = key(d, &"k".repeat(44), 0o600);
        let c = load(
            d,
            &format!(
                "redis = \"redis://u:p@127.0.0.1:6379/0\"\nnode = \"web1\"\nkey_file = {good:?}\n\
                 share = [\"sshd\"]\naccept = false\nstream = \"f1:bans\"\ndistrust = [\"x\"]\n\
                 max_bans = 7\naccept_rate = 3\nmax_skew = \"5s\"\n"
            ),
        )
        .unwrap();
        let f = c.fleet.unwrap();
        assert_eq!(
            (
                f.node.as_str(),
                f.stream.as_str(),
                f.accept,
                f.max_bans,
                f.accept_rate,
                f.max_skew
            ),
            ("web1", "f1:bans", false, 7, 3, 5000)
        );
        assert!(f.shares("sshd") && !f.shares("nginx"));
        assert_eq!(f.key.0.len(), 44);
        assert!(!format!("{f:?}").contains("kkkk"), "the key is printed");
        // defaults
        let f = load(
            d,
            &format!("redis = \"rediss://h:6380\"\nkey_file = {good:?}\n"),
        )
        .unwrap()
        .fleet
        .unwrap();
        assert!(f.accept && f.shares("anything") && f.stream == "portcullis:bans");
        assert_eq!((f.min_prefix_v4, f.min_prefix_v6), (16, 32));
        let wide = |s: &str| portcullis_core::ignore::Cidr::parse(s).unwrap();
        assert!(f.narrow_enough(&wide("198.51.0.0/16")) && !f.narrow_enough(&wide("198.0.0.0/15")));
        assert!(f.narrow_enough(&wide("2001:db8::/32")) && !f.narrow_enough(&wide("2001::/31")));
        let f = load(
            d,
            &format!("redis = \"redis://h\"\nkey_file = {good:?}\nmin_prefix_v4 = 24\nmin_prefix_v6 = 64\n"),
        )
        .unwrap()
        .fleet
        .unwrap();
        assert_eq!((f.min_prefix_v4, f.min_prefix_v6), (24, 64));

        let err = |fleet: String| format!("{:#}", load(d, &fleet).unwrap_err());
        let e = err(format!("redis = \"http://h\"\nkey_file = {good:?}\n"));
        assert!(e.contains("fleet.redis"), "{e}");
        let e = err(format!(
            "redis = \"redis://h:notaport\"\nkey_file = {good:?}\n"
        ));
        assert!(e.contains("fleet.redis"), "{e}");
        let e = err("redis = \"redis://h\"\nkey_file = \"/nonexistent/fleet.key\"\n".into());
        assert!(e.contains("cannot read"), "{e}");
        let short = key(d, "short\n", 0o600);
        let e = err(format!("redis = \"redis://h\"\nkey_file = {short:?}\n"));
        assert!(e.contains("at least 32"), "{e}");
        let open = key(d, &"k".repeat(44), 0o644);
        let e = err(format!("redis = \"redis://h\"\nkey_file = {open:?}\n"));
        assert!(e.contains("chmod 600"), "{e}");
        let e = err(format!(
            "redis = \"redis://h\"\nkey_file = {good:?}\nnode = \"a b\"\n"
        ));
        assert!(e.contains("fleet.node"), "{e}");
        let e = err(format!(
            "redis = \"redis://h\"\nkey_file = {good:?}\nbogus = 1\n"
        ));
        assert!(e.contains("bogus"), "{e}");
        let e = err(format!(
            "redis = \"redis://h\"\nkey_file = {good:?}\nca_file = {good:?}\n"
        ));
        assert!(e.contains("needs a rediss://"), "{e}");
        let e = err(format!(
            "redis = \"rediss://h\"\nkey_file = {good:?}\nca_file = {good:?}\n"
        ));
        assert!(e.contains("no PEM certificate"), "{e}");
        let e = err(format!(
            "redis = \"redis://h\"\nkey_file = {good:?}\nmin_prefix_v4 = 33\n"
        ));
        assert!(e.contains("fleet.min_prefix_v4"), "{e}");
        // a floor: no fleet entry may cover a /0../7 (IPv4) or /0../15 (IPv6)
        let e = err(format!(
            "redis = \"redis://h\"\nkey_file = {good:?}\nmin_prefix_v4 = 0\n"
        ));
        assert!(
            e.contains("fleet.min_prefix_v4") && e.contains("8..=32"),
            "{e}"
        );
        let e = err(format!(
            "redis = \"redis://h\"\nkey_file = {good:?}\nmin_prefix_v6 = 15\n"
        ));
        assert!(
            e.contains("fleet.min_prefix_v6") && e.contains("16..=128"),
            "{e}"
        );
        let e = err(format!("key_file = {good:?}\n"));
        assert!(e.contains("fleet.redis"), "{e}");
    }
}

//! The filter file format (TOML), as written in `filters/*.toml` or inline in a config.
//!
//! ```toml
//! name = "sshd"
//! description = "OpenSSH server: failed logins, invalid users, scans"
//! programs = ["sshd", "sshd-session"]      # syslog program names; empty = any; [""] = none
//! ports = [22]                              # the service's default ports; absent = all
//! ignore = ['^Accepted ']                   # lines matching these never count
//!
//! [[rule]]
//! id = "password"
//! class = "auth"                            # "auth" (default) or "scan"
//! weight = 1                                # how much one line counts (0 = seen, not counted)
//! kind = "attempt"                          # "attempt", "opener" or "followup" (see Kind)
//! pattern = 'Failed password for {USER} from {HOST} port {PORT} ssh2$'
//! ```
//!
//! Patterns describe the whole message of the program (after the syslog prefix); they are
//! anchored at both ends whether or not they say `^`/`$`.

use serde::{Deserialize, Serialize};

/// A filter as written in its file.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct FilterDef {
    /// Name users refer to in `filter = "…"` (as in fail2ban's `filter.d`).
    pub name: String,
    /// One-line description.
    #[serde(default)]
    pub description: String,
    /// Syslog program names whose lines this filter reads; empty = any program. An entry
    /// with one `*` after some fixed text is a pattern (`postfix-*/smtpd`: the `*` stands for
    /// one or more bytes other than `/` and space). Lines without a program name (a file a
    /// program writes itself, a message from the journal without an identifier) reach every
    /// filter; `[""]` (the empty name alone) reads only those: the filter of a program that
    /// writes its own log file, which lines of named programs never reach.
    #[serde(default)]
    pub programs: Vec<String>,
    /// With `programs = [""]`: the untagged lines come through a syslog transport (a router
    /// that sends over UDP with no tag), so a long one may have been cut there, as a tagged
    /// line may (see `cut`); not a program's own file.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub untagged_syslog: bool,
    /// The program itself splits a message longer than this many bytes into several
    /// lines, each under its own log prefix (Dovecot 2.2/2.3: `internal_send_split()` cuts
    /// at PIPE_BUF less its header, about 4,087 bytes): a piece after the first starts with
    /// whatever text stood there, client text as likely as not, so a line whose message is
    /// at least this long may be such a piece and no rule reads it. The last piece is
    /// shorter: the rules must not read a line that ends in the program's own text after
    /// client text (see filters/dovecot.toml).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split_at: Option<usize>,
    /// The kind of service, shown by `portcullis filters`: one of [`GROUPS`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// The log the filter expects, as a jail's `logs` would name it on Debian (files, globs
    /// or `journal:` matches), shown by `portcullis filters`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub logs: Vec<String>,
    /// The ports the filter's service listens on by default (its lines are about
    /// connections to them): port numbers 1-65535 or `"a-b"` range strings. A jail without
    /// its own `ports` bans these; absent when the filter does not know (a scan detector, a
    /// log of many services, an app with no standard port): all ports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ports: Option<Ports>,
    /// Patterns of lines that never count, even when a rule matches.
    #[serde(default)]
    pub ignore: Vec<String>,
    /// Format of a `(?P<time>…)` capture, for programs that write their own log files
    /// (strftime subset: `%Y %y %m %d %e %H %M %S %T %b %f %z %%`; `%s` for epoch seconds;
    /// see [`crate::time::parse_with_format`]). A list when the program writes different
    /// stamps in different versions or configurations: the first that reads the capture wins.
    #[serde(default)]
    pub time_format: Option<TimeFormat>,
    /// Multi-line correlation: the rules that need it, see [`CorrelateDef`].
    #[serde(default)]
    pub correlate: Option<CorrelateDef>,
    /// The rules, tried in order.
    #[serde(rename = "rule", default)]
    pub rules: Vec<RuleDef>,
}

/// `time_format`: one format (`time_format = "%Y-%m-%d %H:%M:%S"`) or several, tried in
/// order (`time_format = ["%a %b %d %H:%M:%S.%f %Y", "%a %b %d %H:%M:%S %Y"]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeFormat(pub Vec<String>);

impl TimeFormat {
    /// The formats, in the order they are tried.
    pub fn formats(&self) -> &[String] {
        &self.0
    }
}

impl From<String> for TimeFormat {
    fn from(f: String) -> Self {
        TimeFormat(vec![f])
    }
}

impl From<&str> for TimeFormat {
    fn from(f: &str) -> Self {
        TimeFormat(vec![f.to_string()])
    }
}

impl Serialize for TimeFormat {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0.as_slice() {
            [one] => s.serialize_str(one),
            many => many.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for TimeFormat {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = TimeFormat;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a time format or a non-empty list of time formats")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<TimeFormat, E> {
                Ok(v.into())
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<TimeFormat, A::Error> {
                let mut v = Vec::new();
                while let Some(f) = seq.next_element::<String>()? {
                    v.push(f);
                }
                if v.is_empty() {
                    return Err(serde::de::Error::invalid_length(0, &self));
                }
                Ok(TimeFormat(v))
            }
        }
        d.deserialize_any(V)
    }
}

/// `ports`: a non-empty list of port numbers (`80`) and ranges (`"6660-6669"`), kept as
/// inclusive ranges. Service names are refused: the core reads no /etc/services, and a
/// filter file means the same on every machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ports(pub Vec<(u16, u16)>);

impl Ports {
    /// The inclusive ranges, in the order written.
    pub fn ranges(&self) -> &[(u16, u16)] {
        &self.0
    }
}

const PORT_EXPECTED: &str =
    "a port number 1-65535 or a range string such as \"6660-6669\" (service names are not read here)";

/// A port number 1-65535.
pub fn port_number(n: i64) -> Option<u16> {
    u16::try_from(n).ok().filter(|&p| p > 0)
}

/// One range string `"a-b"` (or one number as a string), `a <= b`, both 1-65535 (spaces
/// around either number allowed). The configuration's `ports` reads numbers and ranges the
/// same way.
pub fn port_range(s: &str) -> Option<(u16, u16)> {
    let (a, b) = s.split_once('-').unwrap_or((s, s));
    let num = |t: &str| {
        let t = t.trim();
        (!t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()))
            .then(|| t.parse::<u16>().ok())
            .flatten()
            .filter(|&p| p > 0)
    };
    let (a, b) = (num(a)?, num(b)?);
    (a <= b).then_some((a, b))
}

impl Serialize for Ports {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for &(a, b) in &self.0 {
            if a == b {
                seq.serialize_element(&i64::from(a))?;
            } else {
                seq.serialize_element(&format!("{a}-{b}"))?;
            }
        }
        seq.end()
    }
}

impl<'de> Deserialize<'de> for Ports {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Ports;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                write!(f, "a non-empty list of port numbers and \"a-b\" ranges")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Ports, A::Error> {
                let mut v = Vec::new();
                while let Some(p) = seq.next_element::<PortValue>()? {
                    v.push(p.0);
                }
                if v.is_empty() {
                    return Err(serde::de::Error::custom(
                        "`ports = []` bans no port; leave `ports` out for all ports",
                    ));
                }
                Ok(Ports(v))
            }
        }
        d.deserialize_seq(V)
    }
}

/// One element of `ports`.
struct PortValue((u16, u16));

impl<'de> Deserialize<'de> for PortValue {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = PortValue;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str(PORT_EXPECTED)
            }
            fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<PortValue, E> {
                port_number(n)
                    .map(|p| PortValue((p, p)))
                    .ok_or_else(|| E::custom(format!("{n} is not {PORT_EXPECTED}")))
            }
            fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<PortValue, E> {
                match i64::try_from(n) {
                    Ok(n) => self.visit_i64(n),
                    Err(_) => Err(E::custom(format!("{n} is not {PORT_EXPECTED}"))),
                }
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<PortValue, E> {
                port_range(s)
                    .map(PortValue)
                    .ok_or_else(|| E::custom(format!("{s:?} is not {PORT_EXPECTED}")))
            }
        }
        d.deserialize_any(V)
    }
}

/// The groups a filter can belong to (`group = "…"`).
pub const GROUPS: &[&str] = &[
    "ssh",
    "mail",
    "web",
    "webapp",
    "ftp",
    "voip",
    "chat",
    "vpn",
    "database",
    "directory",
    "proxy",
    "remote-desktop",
    "monitoring",
    "game",
    "system",
];

/// Ties lines of one session together: a line that names the user (or that carries the
/// client's address) to a later failure line of the same session. The session is the
/// sending host and process id of the syslog prefix, with the pattern's `(?P<key>…)`
/// capture when it has one (slapd's `conn=N`). A rule without an address capture takes its address from here.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct CorrelateDef {
    /// Patterns with a `{USER}` and/or `{HOST}` capture (and maybe `(?P<key>…)`): what to
    /// remember per session. A line with an address starts its session afresh; a pattern
    /// with a `key` capture alone ends the session (a closed connection).
    pub remember: Vec<String>,
    /// How many sessions to remember at most (oldest forgotten first).
    #[serde(default = "default_correlate_capacity")]
    pub capacity: usize,
    /// Lines of a successful login (maybe with a `{USER}`): the session's held failures
    /// (rules of kind `pending`/`prelude`) of the same user are forgotten. Held failures
    /// of another user are counted, on the session's address (the login itself counts
    /// nothing). A success or `end` line with another address than the session's is a later
    /// connection of a reused pid: the session's held failures are dropped, never counted
    /// on that address.
    #[serde(default)]
    pub success: Vec<String>,
    /// Lines that end a session (maybe with a `{HOST}`): the session's held failures
    /// count now, on this line, even when no rule of the jail's mode matches it, and the
    /// session is over (a later line of its key, a reused pid, takes nothing of it; a line
    /// that a rule matches ends it too). (The sessions of a filter whose `success` and `end`
    /// patterns have no `key` are tested only when they hold something or a failed user:
    /// the others end by `max_age` or eviction.)
    #[serde(default)]
    pub end: Vec<String>,
    /// The longest a session lasts (a duration: "310s", "10m"), from its first line: a
    /// line of the same session key (a reused process id) later than that belongs to
    /// another connection and takes nothing (address, user, held failures) from the
    /// earlier one. Measured on the lines' own times. Unset: sessions end only by
    /// eviction or by their lines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age: Option<String>,
}

fn default_correlate_capacity() -> usize {
    1024
}

/// What kind of abuse a rule detects; jails choose with `mode`. A filter made only of
/// `scan` rules counts them in every mode (it has nothing else to count).
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum Class {
    /// Authentication failures: wrong passwords, unknown users (mode `normal`).
    #[default]
    Auth,
    /// Scans and protocol abuse: no identification, bad banners, kex failures (mode `ddos`).
    Scan,
}

/// One rule of a filter.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RuleDef {
    /// Short name, reported by `test` and `replay`.
    pub id: String,
    /// One pattern (use `patterns` for several that share the settings).
    #[serde(default)]
    pub pattern: Option<String>,
    /// Several patterns with the same settings.
    #[serde(default)]
    pub patterns: Vec<String>,
    /// Auth failure or scan.
    #[serde(default)]
    pub class: Class,
    /// How much one matching line counts towards `maxretry`.
    #[serde(default = "one")]
    pub weight: u32,
    /// How the line relates to the other lines of its session (see [`Kind`]).
    #[serde(default)]
    pub kind: Kind,
    /// The rule reads a line only when its prefix names its program (a syslog or journal
    /// line), never a line of a program's own log file: for a message the program also
    /// writes into a file where other messages carry client text raw (a client's newline
    /// there could write the message's line itself).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub tagged_only: bool,
}

/// How one line relates to the other lines of the same session (same address, same pid),
/// so that one wrong password logged as two or three lines counts once.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// One authentication attempt ("Failed password"): always counts, except that it
    /// takes the place of an `opener` counted just before in the same session.
    #[default]
    Attempt,
    /// Starts a session that is bad in itself ("Invalid user", "not allowed because"):
    /// counts once per session; the next `attempt` of the session is then not counted again.
    Opener,
    /// Summarises a session ("Connection closed by authenticating user", "maximum
    /// authentication attempts exceeded"): counts only when nothing else of the session did.
    /// Failures held back (`pending`, `prelude`) count with it. The session stays open (sshd
    /// writes two follow-ups after MaxAuthTries) unless the line is also one of the
    /// filter's `end` lines.
    Followup,
    /// A failure that may be part of a successful login ("Failed publickey" of an existing
    /// user whose agent offers several keys): held back in its session (needs a
    /// `[correlate]` section); it counts when the session ends without success (a
    /// `followup` rule or an `end` line of the correlate section), and is forgotten when a
    /// `success` line of the same user follows. Shown by `test` with weight 0.
    Pending,
    /// A line written just before the attempt's own line (pam_unix's "authentication
    /// failure" before sshd's "Failed password"): held back like `pending`, and the next
    /// `attempt` or `opener` of the session takes its place; it counts only when the session
    /// ends before that line (a client that disconnects during PAM's delay).
    Prelude,
    /// A new connection of the process ("connect from NAME[ADDR]"): counts nothing, in every
    /// mode, and tells the tracker that the address's next lines under this pid belong to a
    /// new connection. A process that serves many connections one after another (Postfix's
    /// smtpd, up to `max_use`) would otherwise make a follow-up of the next connection look
    /// like a repeat of the last one, and count it not at all.
    Connect,
    /// The last line of one attempt, in a process that serves attempts one after another
    /// and writes no line that starts each (LemonLDAP::NG's FastCGI worker: "All schemes
    /// failed for user U (A)" after the LDAP bind's own "Bad password for U (A)", or alone):
    /// counts only when no line of the session counted since the session's last `closing`
    /// line (like `followup`); either way the attempt is over, and the session's next lines
    /// are another attempt's (as after a `connect` line). Give it a `key` capture (the
    /// user) so that only the same attempt's lines are tied. Not in a filter with a
    /// `[correlate]` section.
    Closing,
}

fn one() -> u32 {
    1
}

impl RuleDef {
    /// All patterns of the rule (`pattern` first).
    pub fn all_patterns(&self) -> impl Iterator<Item = &str> {
        self.pattern
            .iter()
            .map(String::as_str)
            .chain(self.patterns.iter().map(String::as_str))
    }
}

#[cfg(test)]
mod time_format_tests {
    use super::*;
    use crate::filter::{Filter, MatchSet, Mode};

    fn def(tf: &str) -> Result<FilterDef, toml::de::Error> {
        toml::from_str(&format!(
            "name = \"t\"\n{tf}\n[[rule]]\nid = \"r\"\npattern = '(?P<time>[^|]+)\\| fail from {{HOST}}'\n"
        ))
    }

    #[test]
    fn one_format_or_a_list() {
        let one = def(r#"time_format = "%Y-%m-%d %H:%M:%S""#).unwrap();
        assert_eq!(one.time_format, Some("%Y-%m-%d %H:%M:%S".into()));
        let two = def(r#"time_format = ["%b %d %H:%M:%S.%f %Y", "%b %d %H:%M:%S %Y"]"#).unwrap();
        assert_eq!(two.time_format.as_ref().unwrap().formats().len(), 2);
        // written back the way it was read
        let back: FilterDef = toml::from_str(&toml::to_string(&two).unwrap()).unwrap();
        assert_eq!(back, two);
        assert!(toml::to_string(&one)
            .unwrap()
            .contains(r#"time_format = "%Y-%m-%d %H:%M:%S""#));
        assert!(def("time_format = []").is_err());
        assert!(def("time_format = [1]").is_err());
        // every format of the list is checked
        let bad = def(r#"time_format = ["%Y", "%Q"]"#).unwrap();
        assert!(Filter::compile(&bad).is_err());
    }

    #[test]
    fn the_first_format_that_reads_the_capture_wins() {
        let d = def(r#"time_format = ["%b %d %H:%M:%S.%f %Y", "%b %d %H:%M:%S %Y"]"#).unwrap();
        let set = MatchSet::new(vec![Filter::compile(&d).unwrap()], Mode::Normal);
        let mut scratch = set.scratch();
        let ctx = crate::time::TimeContext {
            now: 0,
            local_offset: 0,
            zone: None,
        };
        for (line, want) in [
            (
                "Nov 21 10:00:01.250 2026| fail from 192.0.2.1",
                "2026-11-21T10:00:01.250Z",
            ),
            (
                "Nov 21 10:00:02 2026| fail from 192.0.2.1",
                "2026-11-21T10:00:02Z",
            ),
        ] {
            let h = set.match_line(line.as_bytes(), &ctx, &mut scratch).unwrap();
            assert_eq!(crate::time::rfc3339(h.time.unwrap()), want, "{line}");
        }
    }
}

#[cfg(test)]
mod ports_tests {
    use super::*;
    use crate::filter::Filter;

    fn def(ports: &str) -> Result<FilterDef, toml::de::Error> {
        toml::from_str(&format!(
            "name = \"t\"\n{ports}\n[[rule]]\nid = \"r\"\npattern = 'fail from {{HOST}}'\n"
        ))
    }

    #[test]
    fn numbers_and_ranges() {
        let d = def(r#"ports = [80, 443, "6660-6669", "8080", " 20 - 21 "]"#).unwrap();
        let want = [(80, 80), (443, 443), (6660, 6669), (8080, 8080), (20, 21)];
        assert_eq!(d.ports.as_ref().unwrap().ranges(), want);
        let f = Filter::compile(&d).unwrap();
        assert_eq!(f.ports(), Some(&want[..]));
        assert_eq!(
            def("ports = [1, 65535]").unwrap().ports.unwrap().0,
            [(1, 1), (65535, 65535)]
        );
        // written back the way it was read (one port as a number, a range as a string)
        let back: FilterDef = toml::from_str(&toml::to_string(&d).unwrap()).unwrap();
        assert_eq!(back, d);
        assert!(toml::to_string(&d)
            .unwrap()
            .contains(r#"ports = [80, 443, "6660-6669", 8080, "20-21"]"#));
    }

    #[test]
    fn absent_is_all_ports() {
        let d = def("").unwrap();
        assert_eq!(d.ports, None);
        assert_eq!(Filter::compile(&d).unwrap().ports(), None);
        assert!(!toml::to_string(&d).unwrap().contains("ports"));
    }

    #[test]
    fn bad_ports_are_refused() {
        for bad in [
            "ports = []",
            "ports = [0]",
            "ports = [-1]",
            "ports = [70000]",
            "ports = [65536]",
            "ports = [18446744073709551615]",
            r#"ports = ["443-80"]"#,
            r#"ports = ["0-10"]"#,
            r#"ports = ["1-70000"]"#,
            r#"ports = ["http"]"#,
            r#"ports = ["ssh", 22]"#,
            r#"ports = ["80-"]"#,
            r#"ports = ["-80"]"#,
            r#"ports = ["+80"]"#,
            r#"ports = [""]"#,
            r#"ports = ["80-90-100"]"#,
            "ports = [22.0]",
            "ports = [true]",
            "ports = [[22]]",
            "ports = 22",
            r#"ports = "22""#,
        ] {
            assert!(def(bad).is_err(), "{bad} was accepted");
        }
        let e = def(r#"ports = ["http"]"#).unwrap_err().to_string();
        assert!(e.contains("service names are not read"), "{e}");
    }

    #[test]
    fn a_def_built_in_code_is_checked_too() {
        for bad in [vec![], vec![(0, 0)], vec![(443, 80)]] {
            let mut d = def("").unwrap();
            d.ports = Some(Ports(bad.clone()));
            assert!(Filter::compile(&d).is_err(), "{bad:?} was accepted");
        }
    }
}

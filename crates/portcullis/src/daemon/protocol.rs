//! The control protocol: one JSON request line, one JSON response line, over a Unix socket.
//! Requests are parsed, applied to the engine's state, then encoded — three steps, so the
//! logic is testable without a socket.

use serde::{Deserialize, Serialize};

/// A client request.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "cmd", rename_all = "lowercase")]
pub enum Request {
    /// Jails, failing addresses, active bans.
    Status {
        /// Only this jail.
        jail: Option<String>,
    },
    /// Active bans.
    Bans {
        /// Only this jail's.
        #[serde(default)]
        jail: Option<String>,
        /// Only the permanent ones.
        #[serde(default)]
        permanent: bool,
    },
    /// Ban an address or CIDR prefix by hand.
    Ban {
        /// Address or prefix.
        addr: String,
        /// Jail (default: the first one).
        jail: Option<String>,
        /// Duration like "1h" or "forever" (default: the jail's bantime).
        duration: Option<String>,
    },
    /// Lift bans of an address (or all).
    Unban {
        /// Address, or None with all = true.
        addr: Option<String>,
        /// Only this jail.
        jail: Option<String>,
        /// Every ban.
        all: bool,
    },
    /// Re-read the configuration.
    Reload,
}

/// One active ban, as reported.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct BanInfo {
    /// Address, or prefix in CIDR form.
    pub host: String,
    /// Jail.
    pub jail: String,
    /// End, RFC 3339; `"forever"` for a permanent ban.
    pub until: String,
    /// Seconds left (-1 for a permanent ban).
    pub remaining_secs: i64,
    /// Only an unban lifts it.
    #[serde(default)]
    pub permanent: bool,
    /// Why: failures, increment, subnet, deny, manual, fleet, restored (taken back from the
    /// firewall after the state file was lost).
    #[serde(default)]
    pub reason: String,
    /// The n-th ban of this address (or prefix) within the escalation window.
    #[serde(default)]
    pub count: u32,
    /// `local`, or `fleet:NODE` for a ban another node shared.
    #[serde(default = "local")]
    pub origin: String,
}

impl BanInfo {
    /// The report of a ban of `addr` in `jail` ending at `until` (FOREVER: permanent).
    pub fn new(
        addr: portcullis_core::ignore::Cidr,
        jail: &str,
        until: i64,
        now: i64,
        reason: portcullis_core::decision::BanReason,
        count: u32,
    ) -> BanInfo {
        let permanent = until == portcullis_core::decision::FOREVER;
        BanInfo {
            host: addr.to_string(),
            jail: jail.to_string(),
            until: if permanent {
                "forever".into()
            } else {
                portcullis_core::time::rfc3339(until)
            },
            remaining_secs: if permanent {
                -1
            } else {
                (until - now).max(0) / 1000
            },
            permanent,
            reason: reason.as_str().into(),
            count,
            origin: local(),
        }
    }
}

fn local() -> String {
    "local".into()
}

/// One jail in a status report.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct JailStatus {
    /// Name.
    pub name: String,
    /// Filters.
    pub filters: Vec<String>,
    /// Log sources.
    pub logs: Vec<String>,
    /// The files the file sources name now (wildcards expanded), readable or not.
    #[serde(default)]
    pub files: Vec<String>,
    /// Problems an admin must see: e.g. no source of the jail can be read.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// maxretry / findtime / bantime as configured.
    pub maxretry: u32,
    /// findtime, human form.
    pub findtime: String,
    /// bantime, human form.
    pub bantime: String,
    /// Addresses with failures in the window, and their counts.
    pub failing: Vec<(String, u32)>,
    /// Active bans.
    pub banned: usize,
    /// Addresses evicted because the tracking cap was reached.
    pub evicted: u64,
    /// Set while the jail is under a flood (DOSBAIL): what happens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flood: Option<String>,
}

/// A response.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
pub struct Response {
    /// Success.
    pub ok: bool,
    /// Error or refusal message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Human message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Jails (status).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub jails: Vec<JailStatus>,
    /// Bans (status, bans).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bans: Vec<BanInfo>,
    /// Shared bans (status, with `[fleet]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fleet: Option<crate::fleet::FleetStatus>,
}

impl Response {
    /// A success with a message.
    pub fn ok(msg: impl Into<String>) -> Response {
        Response {
            ok: true,
            message: Some(msg.into()),
            ..Default::default()
        }
    }

    /// A failure with a message.
    pub fn err(msg: impl Into<String>) -> Response {
        Response {
            ok: false,
            error: Some(msg.into()),
            ..Default::default()
        }
    }
}

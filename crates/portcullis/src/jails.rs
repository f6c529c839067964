//! Building core jails from the configuration (shared by `replay` and the daemon).

use std::net::IpAddr;

use portcullis_core::ignore::IgnoreList;
use portcullis_core::jail::{Jail, JailSettings};
use portcullis_core::track::TrackerConfig;

use crate::config::{Config, JailConfig};

/// The settings of a core jail for a configured jail; `own` are the host's addresses.
pub fn jail_settings(cfg: &Config, j: &JailConfig, own: &[IpAddr]) -> JailSettings {
    let global = IgnoreList::new(cfg.ignore.clone(), own.to_vec());
    let global = if cfg.ignore_self {
        global
    } else {
        global.counting_own()
    };
    JailSettings {
        name: j.name.clone(),
        tracker: TrackerConfig {
            maxretry: j.maxretry,
            findtime: j.findtime,
            bantime: j.bantime,
            max_tracked: cfg.max_tracked,
            v4_prefix: j.v4_prefix,
            v6_prefix: j.v6_prefix,
        },
        mode: j.mode,
        transport_cut: j.transport_cut,
        user_weights: j.user_weights.clone(),
        rule_weights: j.rule_weights.clone(),
        policy: j.policy.clone(),
        ignore: global.extended(&j.ignore),
    }
}

/// A fresh core jail for a configured jail.
pub fn build_jail(cfg: &Config, j: &JailConfig, own: &[IpAddr]) -> Jail {
    Jail::new(jail_settings(cfg, j, own), j.filters.clone())
}

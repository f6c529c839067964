//! Shared by the import tests: what an imported filter makes of one line.
#![allow(dead_code)]

use portcullis_core::filter::{Filter, FilterDef, MatchSet, Mode};
use portcullis_core::time::TimeContext;

/// What the rule that matched a line gave.
pub struct HitInfo {
    pub rule: String,
    pub addr: String,
    pub user: Option<String>,
    pub time: Option<i64>,
    pub weight: u32,
}

/// The hit of `line` for the filter `def` (all rules, as `test` runs them), if any.
pub fn hit(def: &FilterDef, line: &str) -> Option<HitInfo> {
    let f = Filter::compile(def).expect("compiles");
    let set = MatchSet::new(vec![f], Mode::Aggressive);
    let ctx = TimeContext {
        now: 1_795_000_000_000,
        local_offset: 0,
        zone: None,
    };
    let mut sc = set.scratch();
    let h = set.match_line(line.as_bytes(), &ctx, &mut sc)?;
    let r = &set.filters()[0].rules()[h.rule];
    Some(HitInfo {
        rule: r.id.clone(),
        addr: h.addr.to_string(),
        user: h.user.map(|u| String::from_utf8_lossy(u).into_owned()),
        time: h.time,
        weight: r.weight,
    })
}

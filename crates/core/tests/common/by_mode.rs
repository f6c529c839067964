//! The verdict of a built-in filter in one mode (normal, ddos or aggressive), as the mail
//! evasion tests ask it: the counted (address, rule) or nothing, never [`super::FORGED`],
//! and never a rule of the wrong class for the mode.

use std::collections::HashMap;

use portcullis_core::filter::{builtin, Class, Filter, MatchSet, Mode};
use portcullis_core::time::TimeContext;

use super::FORGED;

thread_local! {
    static SETS: std::cell::RefCell<HashMap<(&'static str, u8), MatchSet>> =
        std::cell::RefCell::new(HashMap::new());
}

pub fn mode_key(mode: Mode) -> u8 {
    match mode {
        Mode::Normal => 0,
        Mode::Ddos => 1,
        Mode::Aggressive => 2,
    }
}

/// (address, rule id) the built-in filter `name` counts for `line` in `mode` (a rule of
/// weight 0 reads as nothing), and how many matches the transport-cut guard refused. The
/// forged address is never accepted.
pub fn counted_refused(
    name: &'static str,
    mode: Mode,
    line: &str,
) -> (Option<(String, String)>, u64) {
    SETS.with(|sets| {
        let mut sets = sets.borrow_mut();
        let set = sets.entry((name, mode_key(mode))).or_insert_with(|| {
            let b = builtin::get(name).unwrap_or_else(|| panic!("built-in {name}"));
            let f = Filter::from_toml(b.source, b.name).expect("compiles");
            MatchSet::new(vec![f], mode)
        });
        let ctx = TimeContext {
            now: 1_795_000_000_000,
            local_offset: 0,
            zone: None,
        };
        let mut scratch = set.scratch();
        let got = set
            .match_line(line.as_bytes(), &ctx, &mut scratch)
            .and_then(|h| {
                let rule = &set.filters()[h.filter].rules()[h.rule];
                (rule.weight > 0).then(|| (h.addr.to_string(), rule.id.clone(), rule.class))
            });
        if let Some((host, _, _)) = &got {
            assert_ne!(host, FORGED, "the client's text chose the address: {line}");
        }
        let got = got.map(|(h, r, c)| {
            match (mode, c) {
                (Mode::Normal, Class::Scan) | (Mode::Ddos, Class::Auth) => {
                    panic!("rule {r} of the wrong class in {mode:?}")
                }
                _ => {}
            }
            (h, r)
        });
        (got, scratch.cut_refused())
    })
}

pub fn counted(name: &'static str, mode: Mode, line: &str) -> Option<(String, String)> {
    counted_refused(name, mode, line).0
}

pub fn assert_counted(name: &'static str, mode: Mode, line: &str, host: &str, rule: &str) {
    assert_eq!(
        counted(name, mode, line),
        Some((host.to_string(), rule.to_string())),
        "{name} ({mode:?}) must count {host} by {rule} ({} bytes): {line}",
        line.len()
    );
}

//! The host names of `ignore`, looked up again while the daemon runs: a home address behind
//! dynamic DNS changes without a reload, and the owner would be banned from the new one.
//!
//! A thread of its own does the lookups (`getaddrinfo` can wait seconds for a resolver that
//! does not answer; the engine never waits on DNS), every `ignore_refresh`, and sends what
//! each name resolved to ([`Msg::Resolved`]). The engine takes the new addresses and keeps a
//! name's last ones when its lookup gave nothing ([`crate::lists::Loaded::with_resolved`]).

use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use portcullis_core::decision::Millis;

use super::{EngineTx, Msg};

/// The names to look up and how often (0: never), as the configuration in force says, and
/// a generation: the engine sets them at start and at every reload (which looks the names
/// up itself), and takes only the answers of the generation in force: a lookup under way
/// at a reload came after the reload's own, and put back what the name resolved to before
/// (review 29).
#[derive(Clone, Default)]
pub struct Names(Arc<Mutex<(Vec<String>, Millis, u64)>>);

impl Names {
    pub fn set(&self, names: Vec<String>, every: Millis) {
        let mut g = self.0.lock().expect("names lock");
        *g = (names, every, g.2.wrapping_add(1));
    }

    /// The generation in force.
    pub fn generation(&self) -> u64 {
        self.0.lock().expect("names lock").2
    }

    fn get(&self) -> (Vec<String>, Millis, u64) {
        self.0.lock().expect("names lock").clone()
    }
}

/// How often the thread looks at the setting (a reload that shortens `ignore_refresh` takes
/// effect within this).
const POLL: Duration = Duration::from_secs(1);

/// Starts the thread. It ends when the engine is gone.
pub fn start(names: Names, engine: EngineTx) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("resolver".into())
        .spawn(move || {
            let mut last = Instant::now();
            loop {
                std::thread::sleep(POLL);
                let (list, every, generation) = names.get();
                let due = u128::try_from(every).unwrap_or(0);
                if list.is_empty() || due == 0 || last.elapsed().as_millis() < due {
                    continue;
                }
                last = Instant::now();
                let got: Vec<(String, Vec<IpAddr>)> = list
                    .into_iter()
                    .map(|n| {
                        let v = crate::lists::resolve(&n);
                        (n, v)
                    })
                    .collect();
                if engine.send(Msg::Resolved(generation, got)).is_err() {
                    return;
                }
            }
        })?;
    Ok(())
}

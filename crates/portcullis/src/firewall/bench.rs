//! Backend timings (issue 12): 10,000 bans applied in one batch and lifted in one batch, and
//! 100,000 bans restored at start, per backend, each in a network namespace of its own.
//! Run (root): `PORTCULLIS_BENCH=1 cargo test -p portcullis --release --bin portcullis
//! firewall::bench -- --ignored --nocapture --test-threads=1`. The numbers are in
//! bench/README.md. Without `PORTCULLIS_BENCH=1` (as in `./test.sh`, which runs the ignored
//! tests) it returns at once: it is a measurement, not a test.

use std::net::IpAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use super::command::{CommandBackend, CommandOptions, Template};
use super::hosts_deny::{HostsDeny, HostsDenyOptions};
use super::ipset::Ipset;
use super::iptables::{IptOptions, Iptables};
use super::nftables::{NftOptions, Nftables};
use super::route::{Route, RouteOptions};
use super::{Action, Firewall, FwOp, JailRules, Proto};

struct Ns(String);

impl Ns {
    fn new() -> Ns {
        // SAFETY: geteuid has no preconditions.
        assert!(unsafe { libc::geteuid() } == 0, "needs root");
        let n = format!("pc-bench-{}-{}", std::process::id(), rand_tag());
        assert!(Command::new("ip")
            .args(["netns", "add", &n])
            .status()
            .unwrap()
            .success());
        Ns(n)
    }
    fn prefix(&self) -> Vec<String> {
        ["ip", "netns", "exec", &self.0].map(String::from).to_vec()
    }
}

impl Drop for Ns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "delete", &self.0])
            .status();
    }
}

fn rand_tag() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos()
}

/// `n` distinct documentation-range addresses: the 768 IPv4 ones, then 2001:db8::/32.
fn addrs(n: usize) -> Vec<IpAddr> {
    let v4 = ["192.0.2", "198.51.100", "203.0.113"]
        .into_iter()
        .flat_map(|net| (0..256).map(move |i| format!("{net}.{i}").parse::<IpAddr>().unwrap()));
    let v6 = (0u32..).map(|i| {
        format!("2001:db8::{:x}:{:x}", i >> 16, i & 0xffff)
            .parse()
            .unwrap()
    });
    v4.chain(v6).take(n).collect()
}

fn jail() -> JailRules {
    JailRules {
        name: "sshd".into(),
        ports: Some(vec![(22, 22)]),
        proto: Proto::Tcp,
        action: Action::Drop,
        backends: vec![],
    }
}

fn adds(n: usize) -> Vec<FwOp> {
    addrs(n)
        .into_iter()
        .map(|addr| FwOp::Add {
            jail: "sshd".into(),
            addr: portcullis_core::ignore::Cidr::host(addr),
            timeout_ms: 3_600_000,
        })
        .collect()
}

fn dels(n: usize) -> Vec<FwOp> {
    addrs(n)
        .into_iter()
        .map(|addr| FwOp::Del {
            jail: "sshd".into(),
            addr: portcullis_core::ignore::Cidr::host(addr),
        })
        .collect()
}

fn time(f: impl FnOnce()) -> Duration {
    let t = Instant::now();
    f();
    t.elapsed()
}

/// Applies 10,000 and lifts them, then restores `restore_n` into a fresh instance.
fn measure(name: &str, mut make: impl FnMut() -> Box<dyn Firewall>, restore_n: usize) {
    let mut fw = make();
    fw.setup(&[jail()]).unwrap();
    let a = time(|| fw.apply(&adds(10_000)).unwrap());
    let d = time(|| fw.apply(&dels(10_000)).unwrap());
    let mut fw = make();
    fw.setup(&[jail()]).unwrap();
    let r = time(|| fw.restore(&adds(restore_n)).unwrap());
    let _ = fw.teardown();
    println!(
        "BENCH {name:<12} apply 10000: {:>8.2?}  lift 10000: {:>8.2?}  restore {restore_n}: {:>8.2?}",
        a, d, r
    );
}

#[test]
#[ignore = "benchmark, needs root: cargo test --release ... firewall::bench -- --ignored --nocapture"]
fn backends() {
    if std::env::var_os("PORTCULLIS_BENCH").is_none() {
        eprintln!("firewall::bench: a benchmark; set PORTCULLIS_BENCH=1 to run it");
        return;
    }
    let ns = Ns::new();
    let p = ns.prefix();
    measure(
        "nftables",
        || {
            let mut command = p.clone();
            command.push("nft".into());
            Box::new(Nftables::new(NftOptions {
                command,
                ..NftOptions::default()
            }))
        },
        100_000,
    );
    for variant in ["nft", "legacy"] {
        let ns = Ns::new();
        let p = ns.prefix();
        measure(
            &format!("iptables-{variant}"),
            || {
                Box::new(Iptables::new(IptOptions {
                    variant: variant.into(),
                    prefix: p.clone(),
                    ..IptOptions::default()
                }))
            },
            100_000,
        );
    }
    let ns = Ns::new();
    let p = ns.prefix();
    measure(
        "ipset",
        || {
            Box::new(Ipset::new(IptOptions {
                prefix: p.clone(),
                ..IptOptions::default()
            }))
        },
        100_000,
    );
    let ns = Ns::new();
    let p = ns.prefix();
    measure(
        "route",
        || {
            Box::new(Route::new(RouteOptions {
                kind: "blackhole".into(),
                proto: 211,
                prefix: p.clone(),
            }))
        },
        100_000,
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hosts.deny");
    measure(
        "hosts-deny",
        || {
            Box::new(HostsDeny::new(HostsDenyOptions {
                path: path.clone(),
                daemons: vec!["sshd".into()],
            }))
        },
        100_000,
    );
    // one process per address: 1,000 runs of /bin/true, as a per-ban cost
    let t = Template::parse(&["/bin/true".to_string(), "{addr}".to_string()]).unwrap();
    let mut c = CommandBackend::new(CommandOptions {
        ban: t.clone(),
        unban: Some(t),
        check: None,
        timeout: Duration::from_secs(5),
        retries: 0,
        backoff: Duration::from_millis(10),
    });
    c.setup(&[jail()]).unwrap();
    let a = time(|| c.apply(&adds(1000)).unwrap());
    println!("BENCH command      1000 bans (/bin/true each): {a:.2?}");
}

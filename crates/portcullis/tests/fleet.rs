//! Fleet (issue 15): bans shared through a real Redis (Debian's `redis-server`, started by
//! each test on loopback with its own port and temporary directory, killed at the end)
//! between real daemons (`portcullis run`, null firewall, separate state directories).
//!
//! * `a_ban_spreads_to_the_fleet_and_local_ignore_wins` — a brute force against A is banned
//!   on B with origin `fleet:a` (the time it took printed: a bound on it is the fleet
//!   bench's to measure, not a test's to assert under a loaded CI machine); C's ignore list keeps it off C; A's unban lifts
//!   it on B.
//! * `redis_down_then_back_empty_loses_nothing` — with Redis stopped A still bans locally
//!   (outbox), and B gets it once Redis is back (empty: no persistence); then Redis loses
//!   its data again and a new node D catches up from what A re-seeded.
//! * `forged_unsigned_replayed_and_distrusted_entries_are_dropped`.
//! * `kill_9_of_b_loses_no_entry` — B resumes from its saved position.
//! * `caps_hold_rate_and_count`.
//! * `offline_bans_show_the_fleet_origin` — with B stopped, `portcullis bans` (on the state
//!   files) shows `fleet:a` for A's address and prefix, `local` for B's own ban; an offline
//!   unban of a fleet ban leaves it no fleet ban at the next start.
//! * `a_reload_changes_what_is_shared_and_accepted` — `distrust` (the node's held bans are
//!   lifted), `accept = false` and back (B resumes from its position), `share`, `max_bans`
//!   take effect at a reload; `node` waits for a restart, with a warning.
//! * `metrics_count_every_cause_exactly` — B's `/metrics` (and A's) scraped: each counter,
//!   gauge and cause of the fleet's families to the exact number, and `promtool check
//!   metrics` accepts the text.
//! * `prefix_bans_are_shared_and_local_ignore_overlaps_win` — an IPv6 /64 ban (the default
//!   `v6_prefix`) and a manual IPv4 /24 spread as prefixes; a node whose ignore list holds
//!   one address inside the prefix refuses it whole; too wide a prefix is refused; the
//!   origin's unban of the prefix lifts it; a fleet /24 is not applied over B's own ban
//!   inside it (which outlives A's unban), a fleet /16 replaces the fleet ban inside it.
//! * `a_manual_ban_over_a_fleet_ban_is_not_lifted_by_the_fleet` — the admin's manual ban
//!   of an address held as a fleet ban outlives the origin's unban and a distrust (also
//!   after a restart).
//! * `a_replaced_ban_is_not_lifted_where_the_prefix_is_refused` — A's own /24 replacing
//!   its ban of one address is no pardon on B, which refuses the /24.
//!
//! Run: `cargo test -p portcullis --test fleet` (redis-server must be installed: the tests
//! fail, they do not skip, without it).

mod common;

use common::*;
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use serde_json::{json, Value};

const KEY: &str = "c2hhcmVkIGZsZWV0IGtleSBmb3IgdGhlIHRlc3RzIG9ubHkh";
const REDIS: &str = "/usr/bin/redis-server";
const REDIS_CLI: &str = "/usr/bin/redis-cli";
/// The README's ACL (Fleet, step 3), for the key prefix `portcullis:bans`.
const ACL: &str = "fleet on >fleet-pw resetkeys ~portcullis:bans ~portcullis:bans:* resetchannels \
                   -@all +xadd +xread +xrevrange +hset +hdel +hscan +set +get +ping";

fn tmp(prefix: &str) -> tempfile::TempDir {
    tempfile::Builder::new().prefix(prefix).tempdir().unwrap()
}

/// A redis-server on loopback, no persistence (a restart comes back empty); killed on drop.
struct Redis {
    proc: Option<ProcessGuard>,
    port: u16,
    dir: PathBuf,
    /// TLS only (`rediss://`), with this CA's server certificate.
    tls: Option<PathBuf>,
    /// On a Unix socket only (reachable from every network namespace).
    unix: bool,
    /// In this network namespace, on this address (TCP); `None`: on loopback.
    at: Option<(String, String)>,
}

impl Redis {
    fn start(dir: &Path) -> Redis {
        Redis::start_with(dir, None)
    }

    /// On a Unix socket only.
    fn start_unix(dir: &Path) -> Redis {
        let mut r = Redis {
            proc: None,
            port: 0,
            dir: dir.join("redis"),
            tls: None,
            unix: true,
            at: None,
        };
        fs::create_dir_all(&r.dir).unwrap();
        r.up();
        r
    }

    fn start_with(dir: &Path, tls: Option<PathBuf>) -> Redis {
        assert!(
            Path::new(REDIS).exists(),
            "redis-server is not installed (apt-get install redis-server)"
        );
        let mut r = Redis {
            proc: None,
            port: free_port(),
            dir: dir.join("redis"),
            tls,
            unix: false,
            at: None,
        };
        fs::create_dir_all(&r.dir).unwrap();
        r.up();
        r
    }

    /// On TCP at `addr` inside network namespace `ns`.
    fn start_in(dir: &Path, ns: &Netns, addr: &str) -> Redis {
        let mut r = Redis {
            proc: None,
            port: 6390,
            dir: dir.join("redis"),
            tls: None,
            unix: false,
            at: Some((ns.name().to_string(), addr.to_string())),
        };
        fs::create_dir_all(&r.dir).unwrap();
        r.up();
        r
    }

    /// `program` with `args`, inside the namespace when there is one.
    fn command(&self, program: &str) -> Command {
        match &self.at {
            None => Command::new(program),
            Some((ns, _)) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, program]);
                c
            }
        }
    }

    fn host(&self) -> &str {
        self.at.as_ref().map_or("127.0.0.1", |(_, a)| a.as_str())
    }

    fn up(&mut self) {
        let mut cmd = self.command(REDIS);
        match &self.tls {
            None if self.unix => cmd
                .args(["--port", "0", "--unixsocketperm", "700", "--unixsocket"])
                .arg(self.dir.join("redis.sock")),
            None => cmd.args(["--port", &self.port.to_string()]),
            Some(d) => cmd
                .args(["--port", "0", "--tls-port", &self.port.to_string()])
                .arg("--tls-cert-file")
                .arg(d.join("server.crt"))
                .arg("--tls-key-file")
                .arg(d.join("server.key"))
                .arg("--tls-ca-cert-file")
                .arg(d.join("ca.crt"))
                .args(["--tls-auth-clients", "no"]),
        };
        cmd.args(["--bind", self.host()])
            .args([
                "--save",
                "",
                "--appendonly",
                "no",
                "--protected-mode",
                // (in a namespace of its own, on a documentation address: PING from the
                // same namespace comes from that address, not loopback)
                if self.at.is_some() { "no" } else { "yes" },
            ])
            // the nodes log in as `fleet`, with exactly the ACL the README gives: the
            // commands the fleet uses, on its keys only
            .arg("--user")
            .args(ACL.split_whitespace())
            .arg("--dir")
            .arg(&self.dir)
            .stdin(Stdio::null())
            .stdout(fs::File::create(self.dir.join("redis.log")).unwrap())
            .stderr(Stdio::null());
        self.proc = Some(ProcessGuard::spawn(cmd, "redis-server"));
        wait_for("redis-server", Duration::from_secs(10), || {
            self.cli(&["PING"]).trim() == "PONG"
        });
    }

    /// Stops it (SIGKILL): everything in it is lost.
    fn down(&mut self) {
        if let Some(mut p) = self.proc.take() {
            p.kill();
        }
    }

    /// The nodes' URL: the restricted user.
    fn url(&self) -> String {
        if self.unix {
            return format!(
                "redis+unix://{}?db=0&user=fleet&pass=fleet-pw",
                self.dir.join("redis.sock").display()
            );
        }
        match self.tls {
            None => format!("redis://fleet:fleet-pw@{}:{}/0", self.host(), self.port),
            Some(_) => format!("rediss://fleet:fleet-pw@localhost:{}/0", self.port),
        }
    }

    fn cli(&self, args: &[&str]) -> String {
        let mut cmd = self.command(REDIS_CLI);
        if self.unix {
            cmd.arg("-s").arg(self.dir.join("redis.sock"));
        } else {
            cmd.args(["-h", self.host(), "-p", &self.port.to_string()]);
        }
        if let Some(d) = &self.tls {
            cmd.arg("--tls").arg("--cacert").arg(d.join("ca.crt"));
        }
        let out = run_with_timeout(cmd.args(args), None, Duration::from_secs(10));
        out.stdout_str()
    }
}

/// One node: its directory, configuration, log file, daemon.
struct Node {
    dir: PathBuf,
    cfg: PathBuf,
    daemon: Option<Daemon>,
    /// In a network namespace (real nftables): its name, the daemon and its log.
    ns: Option<(String, Option<ProcessGuard>, PathBuf)>,
    starts: usize,
}

impl Node {
    fn new(root: &Path, name: &str, redis: &Redis, extra_top: &str, extra_fleet: &str) -> Node {
        Node::new_in(root, name, redis, extra_top, extra_fleet, None)
    }

    /// With `ns`, the daemon runs in that namespace with the nftables backend.
    fn new_in(
        root: &Path,
        name: &str,
        redis: &Redis,
        extra_top: &str,
        extra_fleet: &str,
        ns: Option<&Netns>,
    ) -> Node {
        let jails = |dir: &Path| {
            format!(
                "[[jail]]\nname = \"sshd\"\nfilter = \"sshd\"\nlogs = [{:?}]\nmaxretry = 3\n\
                 bantime = \"1h\"\n",
                dir.join("auth.log").display().to_string()
            )
        };
        Node::with_jails(root, name, redis, extra_top, jails, extra_fleet, ns)
    }

    /// A node whose `[[jail]]` tables are `jails(dir)` (`dir/auth.log` exists, empty).
    fn with_jails(
        root: &Path,
        name: &str,
        redis: &Redis,
        extra_top: &str,
        jails: impl FnOnce(&Path) -> String,
        extra_fleet: &str,
        ns: Option<&Netns>,
    ) -> Node {
        let backend = if ns.is_some() { "nftables" } else { "null" };
        let dir = root.join(name);
        fs::create_dir_all(dir.join("state")).unwrap();
        let key = dir.join("fleet.key");
        fs::write(&key, format!("{KEY}\n")).unwrap();
        fs::set_permissions(&key, fs::Permissions::from_mode(0o600)).unwrap();
        fs::write(dir.join("auth.log"), "").unwrap();
        let cfg = dir.join("portcullis.toml");
        let jails = jails(&dir);
        fs::write(
            &cfg,
            format!(
                "{extra_top}socket = {:?}\nstate_dir = {:?}\n[firewall]\nbackend = {backend:?}\n\
                 {jails}\
                 [fleet]\nredis = {:?}\nnode = {name:?}\nkey_file = {:?}\nshare = [\"sshd\"]\n\
                 {extra_fleet}",
                dir.join("portcullis.sock").display().to_string(),
                dir.join("state").display().to_string(),
                redis.url(),
                key.display().to_string(),
            ),
        )
        .unwrap();
        let mut n = Node {
            dir,
            cfg,
            daemon: None,
            ns: ns.map(|n| (n.name().to_string(), None, PathBuf::new())),
            starts: 0,
        };
        n.start();
        n
    }

    fn start(&mut self) {
        self.starts += 1;
        let log = self.dir.join(format!("daemon{}.log", self.starts));
        let Some((name, proc, log_path)) = &mut self.ns else {
            self.daemon = Some(Daemon::start(&self.cfg, &log));
            return;
        };
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", name.as_str(), BIN, "run", "-c"])
            .arg(&self.cfg)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(&log).unwrap());
        let mut p = ProcessGuard::spawn(cmd, "portcullis run (netns)");
        let up = wait_until(Duration::from_secs(30), || {
            p.try_wait().is_some()
                || fs::read_to_string(&log)
                    .unwrap_or_default()
                    .contains("started jails=")
        });
        assert!(
            up && p.try_wait().is_none(),
            "the daemon did not start:\n{}",
            fs::read_to_string(&log).unwrap_or_default()
        );
        *proc = Some(p);
        *log_path = log;
    }

    fn log(&self) -> String {
        match &self.ns {
            Some((_, _, l)) => fs::read_to_string(l).unwrap_or_default(),
            None => self.daemon.as_ref().map(|d| d.log()).unwrap_or_default(),
        }
    }

    /// Whether the address is in this node's kernel set (nftables, v4, jail sshd).
    fn in_kernel(&self, addr: &str) -> bool {
        self.in_set("v4_sshd", addr)
    }

    /// Whether `elem` (an address or prefix, as nft lists it) is in this node's kernel sets
    /// of the family and jail `set` names (see `nft_jail_elements`).
    fn in_set(&self, set: &str, elem: &str) -> bool {
        let (name, _, _) = self.ns.as_ref().expect("a namespace node");
        nft_jail_elements(name, "portcullis", set)
            .iter()
            .any(|(v, _, _)| v == elem)
    }

    fn ask(&self, req: Value) -> Value {
        let mut s = UnixStream::connect(self.dir.join("portcullis.sock")).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(format!("{req}\n").as_bytes()).unwrap();
        let mut line = String::new();
        BufReader::new(s).read_line(&mut line).unwrap();
        serde_json::from_str(&line).unwrap()
    }

    /// Active bans: (address, origin).
    fn bans(&self) -> Vec<(String, String)> {
        let r = self.ask(json!({"cmd": "bans"}));
        r["bans"]
            .as_array()
            .map(|v| {
                v.iter()
                    .map(|b| {
                        (
                            b["host"].as_str().unwrap().to_string(),
                            b["origin"].as_str().unwrap().to_string(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    fn banned(&self, addr: &str) -> Option<String> {
        self.bans()
            .into_iter()
            .find(|(a, _)| a == addr)
            .map(|(_, o)| o)
    }

    fn fleet(&self) -> Value {
        self.ask(json!({"cmd": "status", "jail": null}))["fleet"].clone()
    }

    fn counter(&self, name: &str) -> u64 {
        self.fleet()["counters"][name].as_u64().unwrap_or(0)
    }

    fn ban(&self, addr: &str) {
        let r = self.ask(json!({"cmd": "ban", "addr": addr, "jail": "sshd", "duration": "1h"}));
        assert_eq!(r["ok"], true, "{r}");
    }

    /// Writes the configuration with `edit` applied and reloads it.
    fn reconfigure(&self, edit: impl Fn(&str) -> String) {
        let text = fs::read_to_string(&self.cfg).unwrap();
        fs::write(&self.cfg, edit(&text)).unwrap();
        let r = self.ask(json!({"cmd": "reload"}));
        assert_eq!(r["ok"], true, "{r}");
    }

    fn unban(&self, addr: &str) {
        let r = self.ask(json!({"cmd": "unban", "addr": addr, "jail": "sshd", "all": false}));
        assert_eq!(r["ok"], true, "{r}");
    }

    /// Three failed sshd logins of `addr` in this node's log.
    fn brute_force(&self, addr: &str) {
        let mut f = fs::OpenOptions::new()
            .append(true)
            .open(self.dir.join("auth.log"))
            .unwrap();
        for i in 0..3 {
            writeln!(
                f,
                "Failed password for invalid user admin from {addr} port {} ssh2",
                40000 + i
            )
            .unwrap();
        }
    }
}

/// Waits until every node's fleet reader is connected (it starts reading at the stream's
/// end, so entries published before would be missed by a node without a position).
fn readers_up(nodes: &[&Node]) {
    for n in nodes {
        wait_for("the fleet reader", Duration::from_secs(15), || {
            n.fleet()["reading"] == true
        });
    }
}

#[test]
fn a_ban_spreads_to_the_fleet_and_local_ignore_wins() {
    let t = tmp("pct-fleet-spread-");
    let redis = Redis::start(t.path());
    let a = Node::new(t.path(), "a", &redis, "", "");
    let b = Node::new(t.path(), "b", &redis, "", "");
    let c = Node::new(t.path(), "c", &redis, "ignore = [\"203.0.113.0/28\"]\n", "");
    readers_up(&[&a, &b, &c]);

    a.brute_force("203.0.113.10");
    wait_for("the ban on A", Duration::from_secs(10), || {
        a.banned("203.0.113.10").is_some()
    });
    let banned_at = Instant::now();
    assert_eq!(a.banned("203.0.113.10").as_deref(), Some("local"));
    wait_for("the ban on B", Duration::from_secs(10), || {
        b.banned("203.0.113.10").is_some()
    });
    println!("B banned {:?} after A", banned_at.elapsed());
    assert_eq!(b.banned("203.0.113.10").as_deref(), Some("fleet:a"));
    // C's own ignore list covers it: refused, counted, never banned
    wait_for("C's refusal", Duration::from_secs(10), || {
        c.counter("refused_ignored") >= 1
    });
    assert_eq!(c.banned("203.0.113.10"), None, "{}", c.log());
    // B does not publish it again (a fleet ban is not an own ban)
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(b.counter("published"), 0);
    let f = a.fleet();
    assert_eq!(f["connected"], true, "{f}");
    assert_eq!(f["outbox"], 0, "{f}");
    assert!(f["counters"]["published"].as_u64().unwrap() >= 1, "{f}");

    // the origin's unban lifts it everywhere
    a.unban("203.0.113.10");
    wait_for("the unban on B", Duration::from_secs(10), || {
        b.banned("203.0.113.10").is_none()
    });
    assert!(
        b.log()
            .contains("unban 203.0.113.10 jail=sshd reason=fleet:a"),
        "{}",
        b.log()
    );
    // the current-state view holds no more the lifted ban
    assert!(!redis
        .cli(&["HKEYS", "portcullis:bans:active"])
        .contains("203.0.113.10"));
}

/// Found by a review of fleet sharing: the last node's entry won. B banning what A had
/// shared made B the origin on C, and B's unban then lifted a ban A still held.
#[test]
fn a_ban_two_nodes_hold_ends_only_when_both_lift_it() {
    let t = tmp("pct-fleet-two-");
    let redis = Redis::start(t.path());
    let a = Node::new(t.path(), "a", &redis, "", "");
    let b = Node::new(t.path(), "b", &redis, "", "");
    let c = Node::new(t.path(), "c", &redis, "", "");
    readers_up(&[&a, &b, &c]);
    let x = "203.0.113.44";
    a.ban(x);
    wait_for("A's ban on C", Duration::from_secs(10), || {
        c.banned(x).as_deref() == Some("fleet:a")
    });
    wait_for("A's ban on B", Duration::from_secs(10), || {
        b.banned(x).is_some()
    });
    // B bans it too (a manual ban makes it B's own, published)
    b.ban(x);
    wait_for("B's entry read by C", Duration::from_secs(10), || {
        c.counter("received") >= 2
    });
    // B lifts its own: A still holds it, so C keeps it, as A's
    b.unban(x);
    wait_for("B's unban read by C", Duration::from_secs(10), || {
        c.counter("received") >= 3
    });
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(c.banned(x).as_deref(), Some("fleet:a"), "{}", c.log());
    // A lifts it: gone everywhere
    a.unban(x);
    wait_for("A's unban on C", Duration::from_secs(10), || {
        c.banned(x).is_none()
    });

    // (review of this change) A bans for 10 minutes, B for a day: C holds it a day; B's
    // unban gives it back A's end
    let y = "203.0.113.45";
    let left = |n: &Node| -> i64 {
        n.ask(json!({"cmd": "bans"}))["bans"]
            .as_array()
            .and_then(|v| v.iter().find(|b| b["host"] == y))
            .and_then(|b| b["remaining_secs"].as_i64())
            .unwrap_or(-1)
    };
    let r = a.ask(json!({"cmd": "ban", "addr": y, "jail": "sshd", "duration": "10m"}));
    assert_eq!(r["ok"], true, "{r}");
    wait_for("A's 10m ban on C", Duration::from_secs(10), || left(&c) > 0);
    let r = b.ask(json!({"cmd": "ban", "addr": y, "jail": "sshd", "duration": "1d"}));
    assert_eq!(r["ok"], true, "{r}");
    wait_for("B's day on C", Duration::from_secs(10), || left(&c) > 3600);
    b.unban(y);
    wait_for("A's end back on C", Duration::from_secs(10), || {
        (1..=600).contains(&left(&c))
    });
    assert_eq!(c.banned(y).as_deref(), Some("fleet:a"), "{}", c.log());
    // the fleet's bans are no offences on C (their origins count them): no history row,
    // which the next start counted toward escalation (one per new end, even); B's manual
    // ban of the address it held for A is B's own offence, one row (the state file is in
    // WAL mode: a second reader sees what the daemon committed)
    let rows = |n: &Node, addr: &str| -> i64 {
        rusqlite::Connection::open(n.dir.join("state/portcullis.db"))
            .unwrap()
            .query_row(
                "SELECT count(*) FROM ban_history WHERE addr = ?1",
                [addr],
                |r| r.get(0),
            )
            .unwrap()
    };
    assert_eq!((rows(&c, x), rows(&c, y)), (0, 0), "{}", c.log());
    assert_eq!(rows(&b, x), 1, "{}", b.log());
    // one `ban` line on C for y, marked fleet (which the recidive filter does not count),
    // though its end moved twice (review 35: each new end was a ban line of its own)
    let lines: Vec<String> = c
        .log()
        .lines()
        .filter(|l| l.starts_with(&format!("ban {y} ")))
        .map(str::to_string)
        .collect();
    assert!(
        lines.len() == 1 && lines[0].ends_with(" reason=fleet"),
        "{lines:?}\n{}",
        c.log()
    );
}

/// Found by the same review: a node catching up from the current state applied only
/// `accept_rate` (50) of the active bans and never retried the rest.
#[test]
fn a_new_node_catches_up_with_every_active_ban() {
    let t = tmp("pct-fleet-catchup-");
    let redis = Redis::start(t.path());
    let a = Node::new(t.path(), "a", &redis, "", "");
    readers_up(&[&a]);
    for i in 1..=80 {
        a.ban(&format!("203.0.113.{i}"));
    }
    wait_for("80 bans published", Duration::from_secs(20), || {
        a.counter("published") >= 80
    });
    let c = Node::new(t.path(), "c", &redis, "", "");
    wait_for("every ban on C", Duration::from_secs(30), || {
        c.bans().len() >= 80
    });
    assert_eq!(c.counter("refused_rate"), 0, "{}", c.fleet());
    assert_eq!(c.counter("applied"), 80, "{}", c.fleet());
}

#[test]
fn redis_down_then_back_empty_loses_nothing() {
    let t = tmp("pct-fleet-outage-");
    let mut redis = Redis::start(t.path());
    let a = Node::new(t.path(), "a", &redis, "", "");
    let b = Node::new(t.path(), "b", &redis, "", "");
    readers_up(&[&a, &b]);

    redis.down();
    a.brute_force("198.51.100.20");
    // local protection goes on
    wait_for("the local ban on A", Duration::from_secs(10), || {
        a.banned("198.51.100.20").is_some()
    });
    wait_for("the outbox", Duration::from_secs(10), || {
        let f = a.fleet();
        f["outbox"].as_i64().unwrap_or(0) >= 1 && f["connected"] == false
    });
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(b.banned("198.51.100.20"), None);

    // Redis back, empty: A's outbox reaches B
    redis.up();
    wait_for(
        "the ban on B after the outage",
        Duration::from_secs(30),
        || b.banned("198.51.100.20").is_some(),
    );
    assert_eq!(b.banned("198.51.100.20").as_deref(), Some("fleet:a"));
    wait_for("an empty outbox", Duration::from_secs(10), || {
        a.fleet()["outbox"] == 0
    });

    // Redis loses its data again with nothing pending: A re-seeds its active bans, and a
    // node that joins now catches up from the current-state view
    redis.down();
    std::thread::sleep(Duration::from_millis(500));
    redis.up();
    wait_for("the re-seed", Duration::from_secs(30), || {
        redis
            .cli(&["HKEYS", "portcullis:bans:active"])
            .contains("a|sshd|198.51.100.20")
    });
    let d = Node::new(t.path(), "d", &redis, "", "");
    wait_for("D's catch-up", Duration::from_secs(15), || {
        d.banned("198.51.100.20").is_some()
    });
    assert_eq!(d.banned("198.51.100.20").as_deref(), Some("fleet:a"));
    assert!(a.counter("reseeded") >= 1);
}

fn sign(key: &[u8], e: &mut Value) {
    let f = |k: &str| match &e[k] {
        Value::String(s) => s.clone(),
        v => v.to_string(),
    };
    let mut bytes = format!("portcullis-fleet-v{}", e["v"]).into_bytes();
    for v in [
        "portcullis:bans".to_string(),
        f("kind"),
        f("addr"),
        f("jail"),
        f("until"),
        f("reason"),
        f("failures"),
        f("node"),
        f("time"),
    ] {
        bytes.extend_from_slice(&(v.len() as u32).to_be_bytes());
        bytes.extend_from_slice(v.as_bytes());
    }
    let mut m = Hmac::<sha2::Sha256>::new_from_slice(key).unwrap();
    m.update(&bytes);
    let sig: String = m
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    e["sig"] = Value::String(sig);
}

/// Adds the signed `entries` to the stream in one script: they are there at once, and a
/// node reads them in one batch.
fn xadd_at_once(redis: &Redis, entries: &[String]) {
    let mut args = vec![
        "EVAL",
        "for i=1,#ARGV do redis.call('XADD', KEYS[1], '*', 'e', ARGV[i]) end return #ARGV",
        "1",
        "portcullis:bans",
    ];
    args.extend(entries.iter().map(String::as_str));
    let out = redis.cli(&args);
    assert!(out.trim() == entries.len().to_string(), "EVAL: {out}");
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn entry(addr: &str, node: &str) -> Value {
    let now = now_ms();
    json!({"v": 1, "kind": "ban", "addr": addr, "jail": "sshd", "until": now + 3_600_000,
           "reason": "failures", "failures": 5, "node": node, "time": now, "sig": ""})
}

#[test]
fn forged_unsigned_replayed_and_distrusted_entries_are_dropped() {
    let t = tmp("pct-fleet-forged-");
    let redis = Redis::start(t.path());
    let a = Node::new(t.path(), "a", &redis, "", "");
    let b = Node::new(t.path(), "b", &redis, "", "distrust = [\"x\"]\n");
    readers_up(&[&a, &b]);
    let xadd = |e: &Value| {
        let out = redis.cli(&["XADD", "portcullis:bans", "*", "e", &e.to_string()]);
        assert!(out.contains('-'), "XADD: {out}");
    };

    // the right key checks: control entry from a node "m" that exists only in Redis
    let mut good = entry("192.0.2.30", "m");
    sign(KEY.as_bytes(), &mut good);
    xadd(&good);
    wait_for("the signed entry applied", Duration::from_secs(10), || {
        b.banned("192.0.2.30").is_some()
    });
    // another key: forged
    let mut forged = entry("192.0.2.31", "m");
    sign(b"another key of at least thirty-two bytes!!", &mut forged);
    xadd(&forged);
    // unsigned
    let unsigned = entry("192.0.2.32", "m");
    xadd(&unsigned);
    // a field changed after signing
    let mut changed = entry("192.0.2.33", "m");
    sign(KEY.as_bytes(), &mut changed);
    changed["addr"] = json!("192.0.2.34");
    xadd(&changed);
    // malformed
    redis.cli(&["XADD", "portcullis:bans", "*", "e", "not json"]);
    // not UTF-8, and too long: malformed too, and the entries after them are still read (a
    // reply holding one failed whole, and the reader retried it for ever, a review found)
    for lua in [
        "return redis.call('XADD', KEYS[1], '*', 'e', string.char(255, 254) .. 'x')",
        "return redis.call('XADD', KEYS[1], '*', 'e', string.rep('a', 20000))",
    ] {
        let out = redis.cli(&["EVAL", lua, "1", "portcullis:bans"]);
        assert!(out.contains('-'), "XADD: {out}");
    }
    // from a distrusted node, signed right
    let mut x = entry("192.0.2.35", "x");
    sign(KEY.as_bytes(), &mut x);
    xadd(&x);
    // signed right, but long over
    let mut old = entry("192.0.2.36", "m");
    old["until"] = json!(now_ms() - 60_000);
    old["time"] = json!(now_ms() - 3_660_000);
    sign(KEY.as_bytes(), &mut old);
    xadd(&old);
    // signed right, stamped an hour ahead (a wrong clock, or a ban meant to outlast a
    // max_bantime check)
    let mut ahead = entry("192.0.2.37", "m");
    ahead["time"] = json!(now_ms() + 3_600_000);
    ahead["until"] = json!(now_ms() + 7_200_000);
    sign(KEY.as_bytes(), &mut ahead);
    xadd(&ahead);
    wait_for("the drops counted", Duration::from_secs(10), || {
        let f = b.fleet();
        let c = &f["counters"];
        c["dropped_forged"] == 2
            && c["dropped_unsigned"] == 1
            && c["dropped_malformed"] == 3
            && c["dropped_distrusted"] == 1
            && c["dropped_expired"] == 1
            && c["dropped_future"] == 1
    });
    for addr in [
        "192.0.2.31",
        "192.0.2.32",
        "192.0.2.33",
        "192.0.2.34",
        "192.0.2.35",
        "192.0.2.36",
        "192.0.2.37",
    ] {
        assert_eq!(b.banned(addr), None, "{addr} was banned");
    }
    // A does not distrust x
    assert_eq!(a.banned("192.0.2.35").as_deref(), Some("fleet:x"));
    for addr in [
        "192.0.2.31",
        "192.0.2.32",
        "192.0.2.33",
        "192.0.2.34",
        "192.0.2.36",
    ] {
        assert_eq!(a.banned(addr), None, "{addr} was banned on A");
    }

    // a replayed entry: A's real ban, lifted by A, then its old entry sent again
    a.ban("192.0.2.40");
    wait_for("B has A's ban", Duration::from_secs(10), || {
        b.banned("192.0.2.40").is_some()
    });
    let range = redis.cli(&["--no-raw", "XRANGE", "portcullis:bans", "-", "+"]);
    let original = range
        .lines()
        .filter_map(|l| {
            let s = l.trim();
            let s = s.split_once('"').map(|(_, r)| r)?;
            let s = s.strip_suffix('"')?;
            let s = s.replace("\\\"", "\"");
            (s.contains("192.0.2.40") && s.contains("\"node\":\"a\"")).then_some(s)
        })
        .next()
        .unwrap_or_else(|| panic!("A's entry not in the stream:\n{range}"));
    a.unban("192.0.2.40");
    wait_for("B lifts it", Duration::from_secs(10), || {
        b.banned("192.0.2.40").is_none()
    });
    redis.cli(&["XADD", "portcullis:bans", "*", "e", &original]);
    wait_for("the replay counted", Duration::from_secs(10), || {
        b.counter("dropped_replayed") >= 1
    });
    assert_eq!(b.banned("192.0.2.40"), None, "the replay banned again");
    // the one good entry is still there, and nothing else came in
    assert_eq!(b.banned("192.0.2.30").as_deref(), Some("fleet:m"));
}

#[test]
fn kill_9_of_b_loses_no_entry() {
    let t = tmp("pct-fleet-kill-");
    let redis = Redis::start(t.path());
    let a = Node::new(t.path(), "a", &redis, "", "");
    let mut b = Node::new(t.path(), "b", &redis, "", "accept_rate = 1000\n");
    readers_up(&[&a, &b]);
    let addrs: Vec<String> = (1..=60).map(|i| format!("198.51.100.{i}")).collect();
    for (i, addr) in addrs.iter().enumerate() {
        a.ban(addr);
        if i == 20 {
            b.daemon.as_mut().unwrap().kill();
        }
    }
    b.start();
    wait_for("every ban on B", Duration::from_secs(30), || {
        b.bans().len() == addrs.len()
    });
    for (addr, origin) in b.bans() {
        assert_eq!(origin, "fleet:a", "{addr}");
    }
}

/// A node away while the stream is trimmed past its position (`maxlen`) catches up from the
/// current state (the bans the trim took), then reads on from its old position (an unban
/// still in the stream is applied). Under the README's ACL: a check that needed XINFO was
/// refused there, so the trim went unnoticed and the trimmed bans were never applied.
#[test]
fn a_node_away_while_the_stream_is_trimmed_catches_up() {
    let t = tmp("pct-fleet-trim-");
    let redis = Redis::start(t.path());
    let a = Node::new(t.path(), "a", &redis, "", "");
    let mut b = Node::new(t.path(), "b", &redis, "", "");
    readers_up(&[&a, &b]);
    a.ban("198.51.100.1");
    wait_for("the first ban on B", Duration::from_secs(10), || {
        b.banned("198.51.100.1").is_some()
    });
    b.daemon.as_mut().unwrap().kill();
    let addrs: Vec<String> = (10..40).map(|i| format!("198.51.100.{i}")).collect();
    for addr in &addrs {
        a.ban(addr);
    }
    a.unban("198.51.100.1");
    wait_for("everything published", Duration::from_secs(20), || {
        a.fleet()["outbox"] == 0 && a.counter("published") >= 32
    });
    // only the unban is left in the stream
    redis.cli(&["XTRIM", "portcullis:bans", "MAXLEN", "1"]);
    assert_eq!(redis.cli(&["XLEN", "portcullis:bans"]).trim(), "1");
    b.start();
    wait_for("the trimmed bans on B", Duration::from_secs(30), || {
        let held = b.bans();
        addrs
            .iter()
            .all(|x| held.iter().any(|(h, o)| h == x && o == "fleet:a"))
    });
    wait_for(
        "the unban left in the stream",
        Duration::from_secs(10),
        || b.banned("198.51.100.1").is_none(),
    );
    assert!(b.log().contains("trimmed past"), "{}", b.log());

    // a restart with nothing trimmed is no catch-up
    b.daemon.as_mut().unwrap().kill();
    b.start();
    readers_up(&[&b]);
    std::thread::sleep(Duration::from_secs(1));
    assert!(!b.log().contains("trimmed past"), "{}", b.log());
}

/// An own ban that expires while Redis refuses the node leaves the current state (the
/// hash) once the node gets in again: the removal waits, it is not lost. So does one that
/// ends while the daemon is stopped, after its start.
#[test]
fn an_expiry_while_redis_is_away_leaves_the_hash_later() {
    let t = tmp("pct-fleet-forget-");
    let redis = Redis::start(t.path());
    let mut a = Node::new(t.path(), "a", &redis, "", "");
    readers_up(&[&a]);
    // long enough that the node is shut out before it ends, on a loaded machine too (3 s
    // left one redis-cli per poll and two more to do it in, review 32)
    let r =
        a.ask(json!({"cmd": "ban", "addr": "198.51.100.77", "jail": "sshd", "duration": "12s"}));
    assert_eq!(r["ok"], true, "{r}");
    let field = "a|sshd|198.51.100.77";
    wait_for("the ban in the hash", Duration::from_secs(10), || {
        redis
            .cli(&["HKEYS", "portcullis:bans:active"])
            .contains(field)
    });
    // the node is shut out: its user off, its connections closed (Redis keeps its data)
    redis.cli(&["ACL", "SETUSER", "fleet", "off"]);
    redis.cli(&["CLIENT", "KILL", "USER", "fleet"]);
    wait_for("the ban's end", Duration::from_secs(30), || {
        a.banned("198.51.100.77").is_none()
    });
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        redis
            .cli(&["HKEYS", "portcullis:bans:active"])
            .contains(field),
        "removed while the node was shut out?"
    );
    redis.cli(&["ACL", "SETUSER", "fleet", "on"]);
    wait_for("the removal from the hash", Duration::from_secs(30), || {
        !redis
            .cli(&["HKEYS", "portcullis:bans:active"])
            .contains(field)
    });

    // a ban that ends while the daemon is stopped leaves the hash after its start
    let r = a.ask(json!({"cmd": "ban", "addr": "198.51.100.78", "jail": "sshd", "duration": "3s"}));
    assert_eq!(r["ok"], true, "{r}");
    let r = a.ask(json!({"cmd": "ban", "addr": "198.51.100.79", "jail": "sshd", "duration": "1h"}));
    assert_eq!(r["ok"], true, "{r}");
    let field = "a|sshd|198.51.100.78";
    wait_for("the bans in the hash", Duration::from_secs(10), || {
        let k = redis.cli(&["HKEYS", "portcullis:bans:active"]);
        k.contains(field) && k.contains("a|sshd|198.51.100.79")
    });
    a.daemon.as_mut().unwrap().kill();
    std::thread::sleep(Duration::from_secs(4));
    a.start();
    wait_for(
        "the removal after the start",
        Duration::from_secs(30),
        || {
            !redis
                .cli(&["HKEYS", "portcullis:bans:active"])
                .contains(field)
        },
    );
    // the ban still running stays
    std::thread::sleep(Duration::from_secs(1));
    assert!(redis
        .cli(&["HKEYS", "portcullis:bans:active"])
        .contains("a|sshd|198.51.100.79"));
}

#[test]
fn caps_hold_rate_and_count() {
    let t = tmp("pct-fleet-caps-");
    let redis = Redis::start(t.path());
    let a = Node::new(t.path(), "a", &redis, "", "");
    // 2 a second: the 40 bans of A (a CLI process each) reach B faster than that on a
    // loaded machine too (at 5, 40 bans taking 7 s would be refused none, review 32)
    let b = Node::new(t.path(), "b", &redis, "", "accept_rate = 2\n");
    let c = Node::new(t.path(), "c", &redis, "", "max_bans = 3\n");
    readers_up(&[&a, &b, &c]);
    let start = Instant::now();
    for i in 1..=40 {
        a.ban(&format!("203.0.113.{}", 100 + i));
    }
    wait_for("B's delays", Duration::from_secs(10), || {
        b.counter("delayed_rate") >= 1
    });
    wait_for("C's refusals", Duration::from_secs(10), || {
        c.counter("refused_cap") >= 1
    });
    std::thread::sleep(Duration::from_secs(1));
    let secs = start.elapsed().as_secs_f64();
    let held = b.bans().len() as f64;
    // a burst of 2, then 2 a second
    assert!(held <= 2.0 + 2.0 * secs + 1.0, "{held} bans in {secs:.1}s");
    assert!(held < 40.0);
    assert_eq!(c.bans().len(), 3);
    let f = c.fleet();
    assert_eq!(f["fleet_bans"], 3, "{f}");
    // the bans the rate held back are applied as the tokens come, none refused (they were
    // dropped: an honest burst of 9,000 bans reached the others as 56, review 54)
    wait_for("all 40 on B", Duration::from_secs(40), || {
        b.bans().len() == 40
    });
    let secs = start.elapsed().as_secs_f64();
    assert!(
        secs >= 40.0 / 2.0 - 4.0,
        "40 bans at 2 a second in {secs:.1}s"
    );
    assert_eq!(b.counter("refused_rate"), 0);
}

/// The accept rate is each origin node's: one node's flood (120 entries signed as `m9`)
/// holds back neither another node's ban nor its unban, which are applied at once, while
/// the flood's bans come at the rate, every one in the end (one bucket for all refused the
/// other node's ban and dropped the flood's for good: review 54). An unban of a ban still
/// waiting takes its place: the ban is never applied.
#[test]
fn one_nodes_flood_holds_back_no_other_nodes_bans() {
    let t = tmp("pct-fleet-rate-");
    let redis = Redis::start(t.path());
    let b = Node::new(t.path(), "b", &redis, "", "accept_rate = 20\n");
    readers_up(&[&b]);
    let xadd = |e: &mut Value| {
        sign(KEY.as_bytes(), e);
        let out = redis.cli(&["XADD", "portcullis:bans", "*", "e", &e.to_string()]);
        assert!(out.contains('-'), "XADD: {out}");
    };
    let unban = |a: &str, node: &str| {
        let mut u = entry(a, node);
        u["kind"] = json!("unban");
        u["until"] = json!(0);
        u["reason"] = json!("manual");
        u["failures"] = json!(0);
        u
    };
    let start = Instant::now();
    let flood: Vec<String> = (0..120).map(|i| format!("198.51.100.{}", i + 1)).collect();
    // (one XADD with many entries would be faster; each is its own here, as nodes send)
    for a in &flood {
        xadd(&mut entry(a, "m9"));
    }
    // the last of the flood is withdrawn by its node before its turn comes
    xadd(&mut unban(&flood[119], "m9"));
    xadd(&mut entry("203.0.113.61", "m1"));
    wait_for("m1's ban on B", Duration::from_secs(10), || {
        b.banned("203.0.113.61").as_deref() == Some("fleet:m1")
    });
    let waited = start.elapsed().as_secs_f64();
    let flood_in = b
        .bans()
        .iter()
        .filter(|(a, _)| a.starts_with("198.51.100."))
        .count();
    assert!(
        flood_in < 119,
        "the flood was not held back: {flood_in} in {waited:.1}s"
    );
    xadd(&mut unban("203.0.113.61", "m1"));
    wait_for("m1's unban on B", Duration::from_secs(10), || {
        b.banned("203.0.113.61").is_none()
    });
    wait_for("the flood's bans on B", Duration::from_secs(30), || {
        b.bans()
            .iter()
            .filter(|(a, _)| a.starts_with("198.51.100."))
            .count()
            == 119
    });
    std::thread::sleep(Duration::from_millis(500));
    assert!(b.banned(&flood[119]).is_none(), "{}", b.log());
    assert_eq!(b.counter("refused_rate"), 0);
    assert!(b.counter("delayed_rate") >= 1, "{}", b.fleet());
}

#[test]
fn prefix_bans_are_shared_and_local_ignore_overlaps_win() {
    let t = tmp("pct-fleet-prefix-");
    let redis = Redis::start(t.path());
    let a = Node::new(t.path(), "a", &redis, "", "");
    let b = Node::new(t.path(), "b", &redis, "", "");
    // C ignores one address inside the /64 (not the attacker's) and one inside the /24
    let c = Node::new(
        t.path(),
        "c",
        &redis,
        "ignore = [\"2001:db8:5:6::9\", \"198.51.100.200/30\"]\n",
        "",
    );
    // D accepts nothing wider than a /28 or a /96
    let d = Node::new(
        t.path(),
        "d",
        &redis,
        "",
        "min_prefix_v4 = 28\nmin_prefix_v6 = 96\n",
    );
    readers_up(&[&a, &b, &c, &d]);

    // a local ban on B inside the /24 that A will ban: it stands, and the fleet prefix is
    // not applied on B (it would replace it, and A's unban would then lift it early)
    b.ban("198.51.100.7");
    // a brute force from one IPv6 address: A bans its /64 (default v6_prefix)
    a.brute_force("2001:db8:5:6::7");
    wait_for("the /64 on A", Duration::from_secs(10), || {
        a.banned("2001:db8:5:6::/64").is_some()
    });
    wait_for("the /64 on B", Duration::from_secs(10), || {
        b.banned("2001:db8:5:6::/64").is_some()
    });
    assert_eq!(
        b.banned("2001:db8:5:6::/64").as_deref(),
        Some("fleet:a"),
        "{:?}",
        b.bans()
    );
    // the entry in Redis is a version 2 entry of the prefix
    let active = redis.cli(&["HGETALL", "portcullis:bans:active"]);
    assert!(active.contains("a|sshd|2001:db8:5:6::/64"), "{active}");
    assert!(active.contains(r#""v":2"#), "{active}");
    // C: its ignored ::9 is inside the /64 (the attacker ::7 is not ignored): refused whole
    wait_for("C's refusal", Duration::from_secs(10), || {
        c.counter("refused_ignored") >= 1
    });
    assert_eq!(c.banned("2001:db8:5:6::/64"), None, "{:?}", c.bans());
    // D: a /64 is wider than its min_prefix_v6
    wait_for("D's refusal", Duration::from_secs(10), || {
        d.counter("refused_wide") >= 1
    });
    assert_eq!(d.banned("2001:db8:5:6::/64"), None, "{:?}", d.bans());

    // a manual /24 on A
    a.ban("198.51.100.0/24");
    wait_for("C's second refusal", Duration::from_secs(10), || {
        c.counter("refused_ignored") >= 2
    });
    wait_for("D's second refusal", Duration::from_secs(10), || {
        d.counter("refused_wide") >= 2
    });
    // a fleet ban of one address from node m after the /24 in the stream: once B holds
    // it, B has read the /24 (entries are read in order)
    wait_for("the /24 in Redis", Duration::from_secs(10), || {
        redis
            .cli(&["HKEYS", "portcullis:bans:active"])
            .contains("a|sshd|198.51.100.0/24")
    });
    let mut marker = entry("203.0.113.5", "m");
    sign(KEY.as_bytes(), &mut marker);
    redis.cli(&["XADD", "portcullis:bans", "*", "e", &marker.to_string()]);
    wait_for("m's 203.0.113.5 on B", Duration::from_secs(10), || {
        b.banned("203.0.113.5").is_some()
    });
    // B's own 198.51.100.7 stands alone; the /24 is not applied over it
    assert_eq!(b.banned("198.51.100.0/24"), None, "{:?}", b.bans());
    assert_eq!(
        b.banned("198.51.100.7").as_deref(),
        Some("local"),
        "{:?}",
        b.bans()
    );
    assert_eq!(c.banned("198.51.100.0/24"), None, "{:?}", c.bans());
    assert_eq!(d.banned("198.51.100.0/24"), None, "{:?}", d.bans());
    // (B's own 198.51.100.7 reached them as an address: applied)
    assert_eq!(d.banned("198.51.100.7").as_deref(), Some("fleet:b"));

    // a signed entry wider than the default bound (/16 IPv4) is refused by B; a /16 is not
    let mut wide = entry("198.0.0.0/15", "m");
    wide["v"] = json!(2);
    sign(KEY.as_bytes(), &mut wide);
    let mut ok16 = entry("203.0.0.0/16", "m");
    ok16["v"] = json!(2);
    sign(KEY.as_bytes(), &mut ok16);
    // a prefix with host bits set, signed right: malformed
    let mut sloppy = entry("192.0.2.1/24", "m");
    sloppy["v"] = json!(2);
    sign(KEY.as_bytes(), &mut sloppy);
    let dropped = b.counter("dropped_malformed");
    for e in [&wide, &ok16, &sloppy] {
        redis.cli(&["XADD", "portcullis:bans", "*", "e", &e.to_string()]);
    }
    wait_for("the /16 on B", Duration::from_secs(10), || {
        b.banned("203.0.0.0/16").is_some()
    });
    wait_for("B's refusal of the /15", Duration::from_secs(10), || {
        b.counter("refused_wide") >= 1 && b.counter("dropped_malformed") > dropped
    });
    assert_eq!(b.banned("198.0.0.0/15"), None);
    assert_eq!(b.banned("192.0.2.0/24"), None);
    // m's /16 replaced m's fleet ban of 203.0.113.5 inside it (a fleet ban, not a local one)
    assert_eq!(b.banned("203.0.113.5"), None, "{:?}", b.bans());

    // the origin's unban of the prefix lifts it everywhere
    a.unban("2001:db8:5:6::/64");
    a.unban("198.51.100.0/24");
    wait_for("the unbans on B", Duration::from_secs(10), || {
        b.banned("2001:db8:5:6::/64").is_none() && b.banned("198.51.100.0/24").is_none()
    });
    // B's local ban of 198.51.100.7 runs to its own end
    assert_eq!(
        b.banned("198.51.100.7").as_deref(),
        Some("local"),
        "{:?}",
        b.bans()
    );
    assert!(
        b.log()
            .contains("unban 2001:db8:5:6::/64 jail=sshd reason=fleet:a"),
        "{}",
        b.log()
    );
    let active = redis.cli(&["HKEYS", "portcullis:bans:active"]);
    assert!(
        !active.contains("/64") && !active.contains("/24"),
        "{active}"
    );
}

#[test]
fn offline_bans_show_the_fleet_origin() {
    let t = tmp("pct-fleet-offline-");
    let redis = Redis::start(t.path());
    let a = Node::new(t.path(), "a", &redis, "", "");
    let mut b = Node::new(t.path(), "b", &redis, "", "");
    readers_up(&[&a, &b]);
    a.ban("192.0.2.60");
    a.ban("2001:db8:7:8::/64");
    b.ban("198.51.100.61");
    wait_for("A's bans on B", Duration::from_secs(10), || {
        b.banned("192.0.2.60").is_some() && b.banned("2001:db8:7:8::/64").is_some()
    });
    let online = b.bans();
    b.daemon.take().unwrap().stop();
    let offline = |b: &Node| -> Vec<(String, String)> {
        let o = run_with_timeout(
            Command::new(BIN)
                .args(["bans", "--json", "--config"])
                .arg(&b.cfg),
            None,
            Duration::from_secs(30),
        );
        assert!(o.success(), "{o:?}");
        assert!(o.stderr_str().contains("no daemon is running"), "{o:?}");
        let v: Value = serde_json::from_str(&o.stdout_str()).unwrap();
        let mut bans: Vec<(String, String)> = v["bans"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| {
                (
                    b["host"].as_str().unwrap().to_string(),
                    b["origin"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        bans.sort();
        bans
    };
    let mut want = online.clone();
    want.sort();
    assert_eq!(
        want,
        vec![
            ("192.0.2.60".to_string(), "fleet:a".to_string()),
            ("198.51.100.61".to_string(), "local".to_string()),
            ("2001:db8:7:8::/64".to_string(), "fleet:a".to_string()),
        ]
    );
    // as the running daemon showed them
    assert_eq!(offline(&b), want);
    // an offline unban of a fleet ban: no more a fleet ban (nor held as one at start)
    let o = run_with_timeout(
        Command::new(BIN)
            .args(["unban", "192.0.2.60", "--config"])
            .arg(&b.cfg),
        None,
        Duration::from_secs(30),
    );
    assert!(o.success(), "{o:?}");
    assert_eq!(offline(&b).len(), 2);
    b.start();
    readers_up(&[&b]);
    assert_eq!(b.fleet()["fleet_bans"], 1, "{}", b.fleet());
    assert_eq!(b.banned("192.0.2.60"), None);
    // a manual ban over the fleet ban is B's own, also after a restart (fleet.db still
    // names A for the prefix, with the fleet ban's end)
    b.ban("2001:db8:7:8::/64");
    assert_eq!(b.fleet()["fleet_bans"], 0, "{}", b.fleet());
    b.daemon.take().unwrap().stop();
    b.start();
    readers_up(&[&b]);
    assert_eq!(b.fleet()["fleet_bans"], 0, "{}", b.fleet());
    assert!(
        b.bans()
            .contains(&("2001:db8:7:8::/64".to_string(), "local".to_string())),
        "{:?}",
        b.bans()
    );
}

#[test]
fn a_reload_changes_what_is_shared_and_accepted() {
    let t = tmp("pct-fleet-reload-");
    let redis = Redis::start(t.path());
    let a = Node::new(t.path(), "a", &redis, "", "");
    let b = Node::new(t.path(), "b", &redis, "", "");
    readers_up(&[&a, &b]);
    let original = fs::read_to_string(&b.cfg).unwrap();
    a.ban("192.0.2.70");
    wait_for("A's ban on B", Duration::from_secs(10), || {
        b.banned("192.0.2.70").is_some()
    });

    // B distrusts A: A's ban held on B is lifted, A's next one is refused
    b.reconfigure(|t| format!("{t}distrust = [\"a\"]\n"));
    wait_for("the lift on B", Duration::from_secs(10), || {
        b.banned("192.0.2.70").is_none()
    });
    assert!(
        b.log()
            .contains("unban 192.0.2.70 jail=sshd reason=distrust:a"),
        "{}",
        b.log()
    );
    a.ban("192.0.2.71");
    wait_for("B's refusal", Duration::from_secs(10), || {
        b.counter("dropped_distrusted") >= 1
    });
    assert_eq!(b.banned("192.0.2.71"), None);

    // B stops accepting: it reads nothing; then accepts again and resumes where it was
    b.reconfigure(|_| format!("{original}accept = false\n"));
    wait_for("B's reader stopped", Duration::from_secs(10), || {
        b.fleet()["reading"] == false
    });
    a.ban("192.0.2.72");
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(b.banned("192.0.2.72"), None);
    b.reconfigure(|_| original.clone());
    wait_for("A's ban on B after accept", Duration::from_secs(10), || {
        b.banned("192.0.2.72").is_some()
    });
    assert_eq!(b.banned("192.0.2.72").as_deref(), Some("fleet:a"));
    // the entry refused while A was distrusted is not tried again
    assert_eq!(b.banned("192.0.2.71"), None);

    // B holds one fleet ban: max_bans = 1 refuses the next
    b.reconfigure(|_| format!("{original}max_bans = 1\n"));
    a.ban("192.0.2.73");
    wait_for("B's cap", Duration::from_secs(10), || {
        b.counter("refused_cap") >= 1
    });
    assert_eq!(b.banned("192.0.2.73"), None);

    // A shares another jail only: its next ban is not published
    let published = a.counter("published");
    a.reconfigure(|t| t.replace("share = [\"sshd\"]", "share = [\"nginx\"]"));
    a.ban("192.0.2.74");
    std::thread::sleep(Duration::from_millis(1000));
    assert_eq!(a.counter("published"), published);
    assert!(!redis
        .cli(&["HKEYS", "portcullis:bans:active"])
        .contains("192.0.2.74"));

    // the node name waits for a restart
    b.reconfigure(|_| original.replace("node = \"b\"", "node = \"b2\""));
    assert!(
        b.log()
            .contains("fleet.node changed: it takes effect at the next restart"),
        "{}",
        b.log()
    );
    assert_eq!(b.fleet()["node"], "b");
}

/// `GET /metrics` on loopback: the body.
fn scrape(port: u16) -> String {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .unwrap();
    let mut out = String::new();
    std::io::Read::read_to_string(&mut s, &mut out).unwrap();
    let (head, body) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
    assert!(head.starts_with("HTTP/1.1 200 OK"), "{out}");
    body.to_string()
}

/// The fleet's samples of a scrape: `name{labels}` to value.
fn fleet_samples(text: &str) -> std::collections::BTreeMap<String, f64> {
    text.lines()
        .filter(|l| l.starts_with("portcullis_fleet_"))
        .map(|l| {
            let (k, v) = l.rsplit_once(' ').unwrap();
            (k.to_string(), v.parse().unwrap())
        })
        .collect()
}

#[test]
fn metrics_count_every_cause_exactly() {
    let promtool = ["/usr/bin/promtool", "/usr/local/bin/promtool"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("promtool is missing: install Debian's `prometheus` package (see test.sh)");
    let t = tmp("pct-fleet-metrics-");
    let redis = Redis::start(t.path());
    let (pa, pb) = (free_port(), free_port());
    let metrics = |p: u16| format!("[metrics]\nlisten = \"127.0.0.1:{p}\"\n");
    let a = Node::new(t.path(), "a", &redis, "", &metrics(pa));
    let b = Node::new(
        t.path(),
        "b",
        &redis,
        "ignore = [\"203.0.113.0/28\"]\n",
        &format!("distrust = [\"x\"]\n{}", metrics(pb)),
    );
    readers_up(&[&a, &b]);
    let xadd = |e: &str| {
        let out = redis.cli(&["XADD", "portcullis:bans", "*", "e", e]);
        assert!(out.contains('-'), "XADD: {out}");
    };

    // A: a ban B applies, a ban B's ignore list refuses
    a.ban("192.0.2.50");
    a.ban("203.0.113.5");
    wait_for("B's ban", Duration::from_secs(10), || {
        b.banned("192.0.2.50").is_some()
    });
    // entries of another node "m" (signed unless said): forged, unsigned, malformed,
    // long over, too wide, and one of the distrusted x
    let mut forged = entry("192.0.2.51", "m");
    sign(b"another key of at least thirty-two bytes!!", &mut forged);
    xadd(&forged.to_string());
    xadd(&entry("192.0.2.52", "m").to_string());
    xadd("not json");
    let mut old = entry("192.0.2.53", "m");
    old["until"] = json!(now_ms() - 60_000);
    old["time"] = json!(now_ms() - 3_660_000);
    sign(KEY.as_bytes(), &mut old);
    xadd(&old.to_string());
    let mut wide = entry("10.0.0.0/8", "m");
    wide["v"] = json!(2);
    sign(KEY.as_bytes(), &mut wide);
    xadd(&wide.to_string());
    let mut x = entry("192.0.2.54", "x");
    sign(KEY.as_bytes(), &mut x);
    xadd(&x.to_string());
    // A lifts its ban: lifted on B
    a.unban("192.0.2.50");
    wait_for("B's unban", Duration::from_secs(10), || {
        b.banned("192.0.2.50").is_none()
    });

    let want_b: Vec<(&str, f64)> = vec![
        ("portcullis_fleet_published_total", 0.0),
        ("portcullis_fleet_lost_total", 0.0),
        // A's two bans and its unban, the old, the wide and x's (signed entries of others)
        ("portcullis_fleet_received_total", 6.0),
        ("portcullis_fleet_applied_total", 1.0),
        ("portcullis_fleet_lifted_total", 1.0),
        ("portcullis_fleet_reseeded_total", 0.0),
        ("portcullis_fleet_refused_total{cause=\"ignore\"}", 1.0),
        ("portcullis_fleet_refused_total{cause=\"cap\"}", 0.0),
        ("portcullis_fleet_refused_total{cause=\"rate\"}", 0.0),
        ("portcullis_fleet_refused_total{cause=\"distrust\"}", 1.0),
        ("portcullis_fleet_refused_total{cause=\"wide\"}", 1.0),
        ("portcullis_fleet_dropped_total{cause=\"unsigned\"}", 1.0),
        ("portcullis_fleet_dropped_total{cause=\"forged\"}", 1.0),
        ("portcullis_fleet_dropped_total{cause=\"malformed\"}", 1.0),
        ("portcullis_fleet_dropped_total{cause=\"future\"}", 0.0),
        ("portcullis_fleet_dropped_total{cause=\"expired\"}", 1.0),
        ("portcullis_fleet_dropped_total{cause=\"replayed\"}", 0.0),
        ("portcullis_fleet_outbox", 0.0),
        ("portcullis_fleet_bans_active", 0.0),
        ("portcullis_fleet_connected{link=\"publish\"}", 1.0),
        ("portcullis_fleet_connected{link=\"read\"}", 1.0),
    ];
    let check = |port: u16, want: &[(&str, f64)], who: &str| {
        let mut text = String::new();
        let ok = wait_until(Duration::from_secs(10), || {
            text = scrape(port);
            let s = fleet_samples(&text);
            want.iter().all(|(k, v)| s.get(*k) == Some(v))
        });
        let s = fleet_samples(&text);
        let got: Vec<_> = want.iter().map(|(k, _)| (*k, s.get(*k))).collect();
        assert!(
            ok,
            "{who}: unexpected numbers {got:?}\n{}",
            redis.cli(&["XRANGE", "portcullis:bans", "-", "+"])
        );
        // nothing else of the fleet's
        assert_eq!(s.len(), want.len(), "{who}: {s:#?}");
        text
    };
    let text = check(pb, &want_b, "B");
    // A: its two bans and its unban sent, nothing held, the outbox empty; of the entries
    // of others it refused only x's (it distrusts nobody, and applied x's ban)
    let want_a: Vec<(&str, f64)> = vec![
        ("portcullis_fleet_published_total", 3.0),
        ("portcullis_fleet_outbox", 0.0),
        ("portcullis_fleet_applied_total", 1.0),
        ("portcullis_fleet_bans_active", 1.0),
        ("portcullis_fleet_refused_total{cause=\"wide\"}", 1.0),
        ("portcullis_fleet_refused_total{cause=\"distrust\"}", 0.0),
        ("portcullis_fleet_connected{link=\"publish\"}", 1.0),
    ];
    let mut text_a = String::new();
    let ok = wait_until(Duration::from_secs(10), || {
        text_a = scrape(pa);
        let s = fleet_samples(&text_a);
        want_a.iter().all(|(k, v)| s.get(*k) == Some(v))
    });
    assert!(ok, "A: {text_a}");
    assert_eq!(a.banned("192.0.2.54").as_deref(), Some("fleet:x"));

    // Prometheus' own checker: format and naming conventions
    for t in [&text, &text_a] {
        let o = run_with_timeout(
            Command::new(promtool).args(["check", "metrics"]),
            Some(t.as_bytes()),
            Duration::from_secs(60),
        );
        assert!(
            o.success() && o.stdout_str().trim().is_empty() && o.stderr_str().trim().is_empty(),
            "promtool check metrics: {o:?}\n{t}"
        );
    }
}

/// A CA and a server certificate for `localhost` / 127.0.0.1 it signed, in `dir`.
fn make_certs(dir: &Path) {
    fs::create_dir_all(dir).unwrap();
    fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    let ossl = |args: &[&str]| {
        let o = run_with_timeout(
            Command::new("openssl").current_dir(dir).args(args),
            None,
            Duration::from_secs(30),
        );
        assert!(o.success(), "openssl {args:?}: {}", o.stderr_str());
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    ossl(
        &[
            &["req", "-x509"][..],
            &ec,
            &[
                "-keyout",
                "ca.key",
                "-out",
                "ca.crt",
                "-days",
                "2",
                "-subj",
                "/CN=fleet test CA",
            ],
        ]
        .concat(),
    );
    ossl(
        &[
            &["req"][..],
            &ec,
            &[
                "-keyout",
                "server.key",
                "-out",
                "server.csr",
                "-subj",
                "/CN=localhost",
            ],
        ]
        .concat(),
    );
    ossl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.crt",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
    ]);
}

#[test]
fn tls_with_a_private_ca() {
    let t = tmp("pct-fleet-tls-");
    let certs = t.path().join("certs");
    make_certs(&certs);
    let other = t.path().join("other-ca");
    make_certs(&other);
    let redis = Redis::start_with(t.path(), Some(certs.clone()));
    let ca = |d: &Path| format!("ca_file = {:?}\n", d.join("ca.crt").display().to_string());
    let a = Node::new(t.path(), "a", &redis, "", &ca(&certs));
    let b = Node::new(t.path(), "b", &redis, "", &ca(&certs));
    // trusts another CA: the server's certificate is refused, nothing gets through
    let e = Node::new(t.path(), "e", &redis, "", &ca(&other));
    readers_up(&[&a, &b]);
    a.brute_force("203.0.113.50");
    wait_for("the ban on B over TLS", Duration::from_secs(10), || {
        b.banned("203.0.113.50").is_some()
    });
    assert_eq!(b.banned("203.0.113.50").as_deref(), Some("fleet:a"));
    let f = e.fleet();
    assert_eq!(
        (f["connected"].clone(), f["reading"].clone()),
        (json!(false), json!(false)),
        "{f}"
    );
    assert_eq!(e.banned("203.0.113.50"), None);
    wait_for(
        "E's refusal of the certificate",
        Duration::from_secs(10),
        || e.log().contains("invalid peer certificate"),
    );
}

/// The end-to-end test: three daemons with the nftables backend, each in a network
/// namespace of its own (its own kernel tables), one Redis on a Unix socket.
#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn nftables_in_three_namespaces() {
    require_root();
    let t = tmp("pct-fleet-nft-");
    let redis = Redis::start_unix(t.path());
    let (na, nb, nc) = (
        Netns::new("fleet-a"),
        Netns::new("fleet-b"),
        Netns::new("fleet-c"),
    );
    let a = Node::new_in(t.path(), "a", &redis, "", "", Some(&na));
    let b = Node::new_in(t.path(), "b", &redis, "", "", Some(&nb));
    let c = Node::new_in(
        t.path(),
        "c",
        &redis,
        "ignore = [\"203.0.113.0/24\", \"2001:db8:5:6::9\"]\n",
        "",
        Some(&nc),
    );
    readers_up(&[&a, &b, &c]);
    a.brute_force("203.0.113.60");
    wait_for("A's kernel set", Duration::from_secs(10), || {
        a.in_kernel("203.0.113.60")
    });
    let t0 = Instant::now();
    wait_for("B's kernel set", Duration::from_secs(10), || {
        b.in_kernel("203.0.113.60")
    });
    println!("in B's kernel {:?} after A's", t0.elapsed());
    wait_for("C's refusal", Duration::from_secs(10), || {
        c.counter("refused_ignored") >= 1
    });
    assert!(!c.in_kernel("203.0.113.60"), "C's ignore list lost");
    // the origin's unban leaves B's kernel
    a.unban("203.0.113.60");
    wait_for("B's kernel set empty", Duration::from_secs(10), || {
        !b.in_kernel("203.0.113.60")
    });

    // B's manual ban of one address reaches A and C as an address
    b.ban("2001:db8:5:6::99");
    wait_for("::99 on A and C", Duration::from_secs(10), || {
        a.in_set("v6_sshd", "2001:db8:5:6::99") && c.in_set("v6_sshd", "2001:db8:5:6::99")
    });
    // a /64 (the default v6_prefix) on A is a /64 element, replacing the fleet ban of ::99
    // inside it (interval sets refuse overlapping elements); C ignores one address inside
    // it and keeps it out of its kernel; B, whose own ban of ::99 is inside it, keeps its
    // ban and does not apply the /64 (A's unban would lift B's own ban early)
    a.brute_force("2001:db8:5:6::7");
    wait_for("A's /64", Duration::from_secs(10), || {
        a.in_set("v6_sshd", "2001:db8:5:6::/64")
    });
    wait_for("C's refusal of the /64", Duration::from_secs(10), || {
        c.counter("refused_ignored") >= 2
    });
    assert!(
        !c.in_set("v6_sshd", "2001:db8:5:6::/64"),
        "C's ignore list lost"
    );
    assert!(c.in_set("v6_sshd", "2001:db8:5:6::99"));
    assert!(!a.in_set("v6_sshd", "2001:db8:5:6::99"), "{}", a.log());
    assert_eq!(a.banned("2001:db8:5:6::99"), None, "{:?}", a.bans());
    // (B has read the /64 once it holds a later entry of A)
    a.ban("203.0.113.61");
    wait_for(
        "A's next ban in B's kernel",
        Duration::from_secs(10),
        || b.in_kernel("203.0.113.61"),
    );
    assert!(!b.in_set("v6_sshd", "2001:db8:5:6::/64"), "{}", b.log());
    a.unban("2001:db8:5:6::/64");
    a.unban("203.0.113.61");
    wait_for("A's unban on B", Duration::from_secs(10), || {
        !b.in_kernel("203.0.113.61")
    });
    // B's own ban of ::99 runs to its end
    assert!(b.in_set("v6_sshd", "2001:db8:5:6::99"), "{}", b.log());
    assert_eq!(b.banned("2001:db8:5:6::99").as_deref(), Some("local"));
}

/// An offline `unban` of a ban this node shared is unbanned in the fleet once the daemon
/// starts again (the other nodes kept it to its end, and Redis' current state kept serving
/// it to nodes that joined later, a review found).
#[test]
fn an_offline_unban_of_an_own_shared_ban_reaches_the_fleet() {
    let t = tmp("pct-fleet-offunban-");
    let redis = Redis::start(t.path());
    let mut a = Node::new(t.path(), "a", &redis, "", "");
    let b = Node::new(t.path(), "b", &redis, "", "");
    readers_up(&[&a, &b]);
    a.ban("203.0.113.72");
    wait_for("A's ban on B", Duration::from_secs(10), || {
        b.banned("203.0.113.72").is_some()
    });
    a.daemon.take().unwrap().stop();
    let o = run_with_timeout(
        Command::new(BIN)
            .args(["unban", "203.0.113.72", "--config"])
            .arg(&a.cfg),
        None,
        Duration::from_secs(30),
    );
    assert!(o.success(), "{o:?}");
    a.start();
    wait_for("the unban on B", Duration::from_secs(15), || {
        b.banned("203.0.113.72").is_none()
    });
    let field = redis.cli(&["HKEYS", "portcullis:bans:active"]);
    assert!(!field.contains("203.0.113.72"), "{field}");
}

/// A fleet ban handed over to another holder by its origin's unban stays that holder's
/// across a restart: it was taken for a local ban at the next start, published again under
/// the node's own name, and the real holder's unban lifted it nowhere (a review found).
#[test]
fn a_handed_over_fleet_ban_stays_a_fleet_ban_across_a_restart() {
    let t = tmp("pct-fleet-handover-");
    let redis = Redis::start(t.path());
    let mut b = Node::new(t.path(), "b", &redis, "", "");
    readers_up(&[&b]);
    let x = "203.0.113.97";
    let xadd = |e: &mut Value| {
        sign(KEY.as_bytes(), e);
        let out = redis.cli(&["XADD", "portcullis:bans", "*", "e", &e.to_string()]);
        assert!(out.contains('-'), "XADD: {out}");
    };
    let now = now_ms();
    let mut first = entry(x, "m1");
    first["until"] = json!(now + 600_000);
    xadd(&mut first);
    let mut second = entry(x, "m3");
    second["until"] = json!(now + 300_000);
    xadd(&mut second);
    wait_for("m1's ban on B", Duration::from_secs(10), || {
        b.banned(x).as_deref() == Some("fleet:m1")
    });
    let unban = |node: &str| {
        let mut u = entry(x, node);
        u["kind"] = json!("unban");
        u["until"] = json!(0);
        u["reason"] = json!("manual");
        u["failures"] = json!(0);
        u
    };
    xadd(&mut unban("m1"));
    wait_for("the hand-over to m3", Duration::from_secs(10), || {
        b.banned(x).as_deref() == Some("fleet:m3")
    });
    b.daemon.take().unwrap().stop();
    b.start();
    readers_up(&[&b]);
    assert_eq!(b.banned(x).as_deref(), Some("fleet:m3"), "{}", b.log());
    let fields = redis.cli(&["HKEYS", "portcullis:bans:active"]);
    assert!(!fields.contains(&format!("b|sshd|{x}")), "{fields}");
    // the holder's unban lifts it
    xadd(&mut unban("m3"));
    wait_for("m3's unban on B", Duration::from_secs(10), || {
        b.banned(x).is_none()
    });
}

/// A ban held back by the accept rate whose unban comes in the same read of the stream is
/// never applied: the unban takes its place (it was queued after its unban had been
/// handled, and banned for its whole time, review 57).
#[test]
fn a_held_back_ban_and_its_unban_in_one_read_leave_no_ban() {
    let t = tmp("pct-fleet-samebatch-");
    let redis = Redis::start(t.path());
    let b = Node::new(t.path(), "b", &redis, "", "accept_rate = 1\n");
    readers_up(&[&b]);
    let signed = |mut e: Value| {
        sign(KEY.as_bytes(), &mut e);
        e.to_string()
    };
    let mut unban = entry("203.0.113.82", "m1");
    unban["kind"] = json!("unban");
    unban["until"] = json!(0);
    unban["reason"] = json!("manual");
    unban["failures"] = json!(0);
    let entries = [
        signed(entry("203.0.113.81", "m1")),
        signed(entry("203.0.113.82", "m1")),
        signed(unban),
    ];
    // one script: the three entries are in the stream at once, and read in one batch
    xadd_at_once(&redis, &entries);
    wait_for("the first ban on B", Duration::from_secs(10), || {
        b.banned("203.0.113.81").is_some()
    });
    // the rate gives a token a second: a queued ban would be applied within 2 s
    std::thread::sleep(Duration::from_secs(3));
    assert!(b.banned("203.0.113.82").is_none(), "{}", b.log());
}

/// A manual unban of an address whose fleet ban waits for the accept rate drops the waiting
/// ban: applied after it, it banned again what the admin had just lifted (review 57 L4).
/// The other waiting bans are still applied.
#[test]
fn a_manual_unban_drops_a_fleet_ban_still_waiting_for_the_rate() {
    let t = tmp("pct-fleet-unbanwait-");
    let redis = Redis::start(t.path());
    let b = Node::new(t.path(), "b", &redis, "", "accept_rate = 1\n");
    readers_up(&[&b]);
    let signed = |mut e: Value| {
        sign(KEY.as_bytes(), &mut e);
        e.to_string()
    };
    let addrs: Vec<String> = (1..=4).map(|i| format!("203.0.113.{}", 90 + i)).collect();
    let entries: Vec<String> = addrs.iter().map(|a| signed(entry(a, "m1"))).collect();
    // one script: the entries are in the stream at once, and read in one batch: the first
    // is applied, the three others wait, one a second
    xadd_at_once(&redis, &entries);
    wait_for("the first ban on B", Duration::from_secs(10), || {
        b.banned(&addrs[0]).is_some()
    });
    let last = &addrs[3];
    let r = b.ask(json!({"cmd": "unban", "addr": last, "jail": "sshd", "all": false}));
    assert_eq!(r["ok"], true, "{r}");
    let said = r["message"].as_str().unwrap_or_default();
    assert!(
        said.contains("1 fleet ban(s) of it waiting for fleet.accept_rate dropped"),
        "{r}"
    );
    wait_for(
        "the other waiting bans on B",
        Duration::from_secs(15),
        || b.banned(&addrs[1]).is_some() && b.banned(&addrs[2]).is_some(),
    );
    // a token a second: the dropped one would have come within 2 s more
    std::thread::sleep(Duration::from_secs(3));
    assert!(b.banned(last).is_none(), "{}", b.log());
}

/// The origin's clock stepped back (an NTP step, the daemon's own clock only, through
/// libfaketime) between a ban and its manual unban: the unban still lifts the ban on the
/// other nodes. Its entry is stamped after the ban's; stamped with the clock, it was older
/// than the ban's, and the other nodes dropped it as a replay, so the ban held there to its
/// end (review 54 L4).
#[test]
fn an_unban_after_the_origins_clock_stepped_back_lifts_the_ban() {
    let lib = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";
    assert!(
        Path::new(lib).exists(),
        "{lib} missing: install faketime (test.sh does)"
    );
    let t = tmp("pct-fleet-clockback-");
    let redis = Redis::start(t.path());
    let mut a = Node::new(t.path(), "a", &redis, "", "");
    let b = Node::new(t.path(), "b", &redis, "", "");
    // A again, under a clock it can be told to step
    let offset = a.dir.join("faketime");
    fs::write(&offset, "+0\n").unwrap();
    a.daemon.take().expect("A runs").stop();
    let mut cmd = Command::new(BIN);
    cmd.args(["run", "-c"])
        .arg(&a.cfg)
        .env("LD_PRELOAD", lib)
        .env("FAKETIME_TIMESTAMP_FILE", &offset)
        .env("FAKETIME_NO_CACHE", "1")
        .env("FAKETIME_DONT_FAKE_MONOTONIC", "1");
    a.daemon = Some(Daemon::start_command(cmd, &a.dir.join("daemon-faked.log")));
    readers_up(&[&a, &b]);
    a.ban("203.0.113.71");
    wait_for("A's ban on B", Duration::from_secs(10), || {
        b.banned("203.0.113.71").as_deref() == Some("fleet:a")
    });
    fs::write(&offset, "-2m\n").unwrap();
    a.unban("203.0.113.71");
    wait_for("A's unban on B", Duration::from_secs(10), || {
        b.banned("203.0.113.71").is_none()
    });
    // and a ban made again, the clock still back (review 62: stamped by the clock, it was
    // older than the unban, and dropped)
    a.ban("203.0.113.71");
    wait_for("A's new ban on B", Duration::from_secs(10), || {
        b.banned("203.0.113.71").as_deref() == Some("fleet:a")
    });
    assert_eq!(b.counter("dropped_replayed"), 0, "{}", b.fleet());
}

/// A node's state file lost while it was stopped: the start takes back the bans its
/// nftables sets still hold, and a fleet ban among them stays its origin's, whose unban
/// lifts it there (review 62: it was taken back as the node's own, published again under
/// the node's name, and the origin's unban no longer reached it).
#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn a_fleet_ban_taken_back_from_the_kernel_stays_its_origins() {
    require_root();
    let t = tmp("pct-fleet-adopt-");
    let redis = Redis::start_unix(t.path());
    let (na, nb) = (Netns::new("fleet-adopt-a"), Netns::new("fleet-adopt-b"));
    let a = Node::new_in(t.path(), "a", &redis, "", "", Some(&na));
    let mut b = Node::new_in(t.path(), "b", &redis, "", "", Some(&nb));
    readers_up(&[&a, &b]);
    a.ban("203.0.113.74");
    wait_for("A's ban in B's kernel", Duration::from_secs(10), || {
        b.in_kernel("203.0.113.74")
    });
    // B stops (its bans stay in the kernel); its state file is lost meanwhile
    if let Some((_, p, _)) = b.ns.as_mut() {
        p.take().expect("B runs").kill();
    }
    assert!(b.in_kernel("203.0.113.74"));
    for f in ["portcullis.db", "portcullis.db-wal", "portcullis.db-shm"] {
        let _ = fs::remove_file(b.dir.join("state").join(f));
    }
    b.start();
    assert!(
        b.log()
            .contains("1 ban(s) the firewall still holds were taken back"),
        "{}",
        b.log()
    );
    readers_up(&[&b]);
    assert_eq!(
        b.banned("203.0.113.74").as_deref(),
        Some("fleet:a"),
        "{}",
        b.log()
    );
    a.unban("203.0.113.74");
    wait_for("the origin's unban on B", Duration::from_secs(10), || {
        !b.in_kernel("203.0.113.74")
    });
}

/// A fleet ban whose origin the node lost (its fleet.db deleted while it was stopped; a
/// `kill -9` between the state file and fleet.db, or a write fleet.db refused, leave the
/// same) is not published as the node's own at the next start, and its origin takes it
/// back: its next entry makes it that origin's again, and the origin's unban lifts it (it
/// was published under the node's name, and the origin's unban lifted it nowhere: review
/// 54). A second such ban taken back by another node's shorter ban keeps its end (review
/// 57), and that node's unban lifts it.
#[test]
fn a_fleet_ban_whose_origin_was_lost_is_given_back_to_it() {
    let t = tmp("pct-fleet-orphan-");
    let redis = Redis::start(t.path());
    let mut b = Node::new(t.path(), "b", &redis, "", "");
    readers_up(&[&b]);
    let (x, y) = ("203.0.113.98", "203.0.113.99");
    let xadd = |e: &mut Value| {
        sign(KEY.as_bytes(), e);
        let out = redis.cli(&["XADD", "portcullis:bans", "*", "e", &e.to_string()]);
        assert!(out.contains('-'), "XADD: {out}");
    };
    let now = now_ms();
    for a in [x, y] {
        let mut e = entry(a, "m1");
        e["until"] = json!(now + 600_000);
        xadd(&mut e);
    }
    wait_for("m1's bans on B", Duration::from_secs(10), || {
        b.banned(x).as_deref() == Some("fleet:m1") && b.banned(y).as_deref() == Some("fleet:m1")
    });
    b.daemon.take().unwrap().stop();
    fs::remove_file(b.dir.join("state/fleet.db")).unwrap();
    b.start();
    readers_up(&[&b]);
    assert!(
        b.banned(x).is_some() && b.banned(y).is_some(),
        "{}",
        b.log()
    );
    // (give the publisher time to send what it would)
    std::thread::sleep(Duration::from_millis(1500));
    let fields = redis.cli(&["HKEYS", "portcullis:bans:active"]);
    assert!(!fields.contains(&format!("b|sshd|{x}")), "{fields}");
    assert!(!fields.contains(&format!("b|sshd|{y}")), "{fields}");
    // another node's shorter ban of y takes it back, but never shortens it (review 57:
    // cut from an hour to seconds)
    let mut short = entry(y, "m3");
    short["until"] = json!(now_ms() + 5_000);
    xadd(&mut short);
    wait_for("y taken back by m3", Duration::from_secs(10), || {
        b.banned(y).as_deref() == Some("fleet:m3")
    });
    let left = b.ask(json!({"cmd": "bans"}))["bans"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["host"] == y)
        .map(|v| v["remaining_secs"].as_i64().unwrap())
        .unwrap();
    assert!(left > 500, "{left} s left");
    // m1's renewal of x makes it m1's again; its unban then lifts it
    let mut renew = entry(x, "m1");
    renew["until"] = json!(now_ms() + 900_000);
    xadd(&mut renew);
    wait_for("x given back to m1", Duration::from_secs(10), || {
        b.banned(x).as_deref() == Some("fleet:m1")
    });
    let unban_by = |a: &str, node: &str| {
        let mut u = entry(a, node);
        u["kind"] = json!("unban");
        u["until"] = json!(0);
        u["reason"] = json!("manual");
        u["failures"] = json!(0);
        u
    };
    let unban = |a: &str| unban_by(a, "m1");
    xadd(&mut unban(x));
    xadd(&mut unban_by(y, "m3"));
    wait_for("the unbans on B", Duration::from_secs(10), || {
        b.banned(x).is_none() && b.banned(y).is_none()
    });
}

/// An entry with the largest stream id, then the stream deleted by an admin: a node whose
/// position was that id read nothing more, for ever, while `status` said all was well (a
/// review found). It now sees its position is past the stream and catches up.
#[test]
fn a_position_past_the_stream_is_given_up() {
    let t = tmp("pct-fleet-ahead-");
    let redis = Redis::start(t.path());
    let a = Node::new(t.path(), "a", &redis, "", "");
    let b = Node::new(t.path(), "b", &redis, "", "");
    readers_up(&[&a, &b]);
    let out = redis.cli(&[
        "XADD",
        "portcullis:bans",
        "18446744073709551615-18446744073709551615",
        "e",
        "junk",
    ]);
    assert!(out.contains('-'), "XADD: {out}");
    wait_for("the junk read", Duration::from_secs(10), || {
        b.counter("dropped_malformed") >= 1
    });
    redis.cli(&["DEL", "portcullis:bans"]);
    a.ban("203.0.113.70");
    wait_for("A's ban on B", Duration::from_secs(30), || {
        b.banned("203.0.113.70").is_some()
    });
    assert!(b.log().contains("is past its newest entry"), "{}", b.log());
}

/// Ids go on from a far-future one once it was written (then deleted): a position there is
/// the stream's newest, not past it (every node caught up again every 10 s, for ever, a
/// review found).
#[test]
fn a_far_future_id_then_normal_entries_keep_the_position() {
    let t = tmp("pct-fleet-future-");
    let redis = Redis::start(t.path());
    let a = Node::new(t.path(), "a", &redis, "", "");
    let b = Node::new(t.path(), "b", &redis, "", "");
    readers_up(&[&a, &b]);
    let id = redis.cli(&["XADD", "portcullis:bans", "9999999999999-5", "e", "x"]);
    assert!(id.contains('-'), "XADD: {id}");
    redis.cli(&["XDEL", "portcullis:bans", id.trim()]);
    a.ban("203.0.113.71");
    wait_for("A's ban on B", Duration::from_secs(10), || {
        b.banned("203.0.113.71").is_some()
    });
    // past two of the reader's checks while quiet
    std::thread::sleep(Duration::from_secs(23));
    assert!(!b.log().contains("is past its newest entry"), "{}", b.log());
    a.ban("203.0.113.72");
    wait_for("A's next ban on B", Duration::from_secs(10), || {
        b.banned("203.0.113.72").is_some()
    });
}

/// With the key, a fleet ban of the Redis server's own address is refused: banned in a jail
/// that blocks every port, it cut the node off from the fleet, and the unban could then
/// never reach it (a review found).
#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn a_fleet_ban_of_the_redis_server_is_refused() {
    require_root();
    let t = tmp("pct-fleet-endpoint-");
    let (nr, na) = (Netns::new("fleet-epr"), Netns::new("fleet-epa"));
    let (vr, va) = (
        format!("pfe{}r", std::process::id() % 100_000),
        format!("pfe{}a", std::process::id() % 100_000),
    );
    host_cmd(
        "ip",
        &[
            "link",
            "add",
            &vr,
            "netns",
            nr.name(),
            "type",
            "veth",
            "peer",
            "name",
            &va,
            "netns",
            na.name(),
        ],
        Duration::from_secs(10),
    )
    .check();
    for (ns, dev, addr) in [(&nr, &vr, "198.51.100.1/24"), (&na, &va, "198.51.100.2/24")] {
        ns.ip(&["addr", "add", addr, "dev", dev]).check();
        ns.ip(&["link", "set", dev, "up"]).check();
        ns.ip(&["link", "set", "lo", "up"]).check();
    }
    let redis = Redis::start_in(t.path(), &nr, "198.51.100.1");
    let a = Node::with_jails(
        t.path(),
        "a",
        &redis,
        "",
        |dir| {
            format!(
                "[[jail]]\nname = \"sshd\"\nfilter = \"sshd\"\nlogs = [{:?}]\nports = \"all\"\n",
                dir.join("auth.log").display().to_string()
            )
        },
        "",
        Some(&na),
    );
    readers_up(&[&a]);
    let xadd = |addr: &str| {
        let mut e = entry(addr, "m");
        sign(KEY.as_bytes(), &mut e);
        let out = redis.cli(&["XADD", "portcullis:bans", "*", "e", &e.to_string()]);
        assert!(out.contains('-'), "XADD: {out}");
    };
    xadd("198.51.100.1");
    // a ban of another address after it: applied, so it was read
    xadd("198.51.100.77");
    wait_for("the control ban applied", Duration::from_secs(10), || {
        a.in_kernel("198.51.100.77")
    });
    assert_eq!(
        a.counter("refused_ignored"),
        1,
        "{}\n{}",
        a.fleet(),
        a.log()
    );
    assert!(!a.in_kernel("198.51.100.1"), "{}", a.log());
    assert_eq!(a.banned("198.51.100.1"), None);
    assert!(a.fleet()["reading"] == true, "{}", a.fleet());

    // a partition: `status` says so within seconds (it said connected for 20 to 30 s into
    // one, a review found)
    wait_for("the publisher connected", Duration::from_secs(10), || {
        a.fleet()["connected"] == true
    });
    na.ip(&["link", "set", &va, "down"]).check();
    let t0 = Instant::now();
    wait_for("the partition seen", Duration::from_secs(12), || {
        a.fleet()["connected"] == false
    });
    // (within the 12 s of the wait: an 8 s bound on top was a timing assertion, review 32)
    println!("partition seen after {:?}", t0.elapsed());
}

fn percentile(v: &mut [Duration], p: f64) -> Duration {
    v.sort();
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

/// A node of the benchmark: like [`Node::new`], with `jail` added to the `sshd` jail
/// (instead of `maxretry = 3`) and a second jail `idle` that never bans (a `status` of it
/// is cheap to poll: no ban list).
/// With `ns`, in that network namespace with the nftables backend.
fn bench_node(
    root: &Path,
    name: &str,
    redis: &Redis,
    jail: &str,
    fleet: &str,
    ns: Option<&Netns>,
) -> Node {
    let jails = |dir: &Path| {
        fs::write(dir.join("idle.log"), "").unwrap();
        format!(
            "[[jail]]\nname = \"sshd\"\nfilter = \"sshd\"\nlogs = [{:?}]\nbantime = \"1h\"\n{jail}\
             [[jail]]\nname = \"idle\"\nfilter = \"sshd\"\nlogs = [{:?}]\n",
            dir.join("auth.log").display().to_string(),
            dir.join("idle.log").display().to_string(),
        )
    };
    Node::with_jails(root, name, redis, "", jails, fleet, ns)
}

impl Node {
    /// The fleet status without the ban list (a `status` of the idle jail).
    fn fleet_cheap(&self) -> Value {
        self.ask(json!({"cmd": "status", "jail": "idle"}))["fleet"].clone()
    }

    fn log_path(&self) -> PathBuf {
        match &self.ns {
            Some((_, _, l)) => l.clone(),
            None => self.dir.join(format!("daemon{}.log", self.starts)),
        }
    }

    /// The daemon's process id (found by its configuration path).
    fn pid(&self) -> u32 {
        let cfg = self.cfg.display().to_string();
        fs::read_dir("/proc")
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
            .find(|pid| {
                fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| {
                    let c = String::from_utf8_lossy(&c);
                    c.contains(BIN) && c.contains(&cfg)
                })
            })
            .expect("the daemon's pid")
    }
}

/// CPU seconds (user + system) a process has used so far.
fn cpu_secs(pid: u32) -> f64 {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split(' ').collect();
    // fields 14 and 15 of stat(5); `rest` starts at field 3
    let ticks: u64 = f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap();
    // SAFETY: sysconf has no preconditions
    ticks as f64 / unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64
}

/// What a [`tail_bans`] thread saw in a daemon's log.
struct Tailed {
    /// Distinct addresses banned.
    count: usize,
    /// When the first and the last of them was logged (since the start).
    first: Option<Duration>,
    last: Option<Duration>,
    /// Whether they came in the order of `rank` (the feed's order).
    in_order: bool,
}

/// Follows `log` from its current end and times the `ban ADDR` lines whose address starts
/// with `prefix`, until `want` distinct addresses were banned or `timeout` passed. The
/// log is read every 2 ms (the daemon logs each ban when it is made: after the firewall
/// change for a fleet ban, before it for a local one).
fn tail_bans(
    log: PathBuf,
    prefix: &'static str,
    want: usize,
    t0: Instant,
    timeout: Duration,
) -> std::thread::JoinHandle<Tailed> {
    let start = fs::metadata(&log).unwrap().len();
    std::thread::spawn(move || {
        use std::io::{Read, Seek, SeekFrom};
        let mut f = fs::File::open(&log).unwrap();
        f.seek(SeekFrom::Start(start)).unwrap();
        let mut seen = std::collections::HashSet::new();
        let mut out = Tailed {
            count: 0,
            first: None,
            last: None,
            in_order: true,
        };
        let mut prev: Option<u32> = None;
        let mut buf = Vec::new();
        let deadline = Instant::now() + timeout;
        while seen.len() < want && Instant::now() < deadline {
            let mut chunk = Vec::new();
            f.read_to_end(&mut chunk).unwrap();
            if chunk.is_empty() {
                std::thread::sleep(Duration::from_millis(2));
                continue;
            }
            let at = t0.elapsed();
            buf.extend_from_slice(&chunk);
            let end = buf.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
            for line in buf[..end].split(|&b| b == b'\n') {
                let Some(rest) = line.strip_prefix(b"ban ") else {
                    continue;
                };
                let addr = rest.split(|&b| b == b' ').next().unwrap_or_default();
                let addr = String::from_utf8_lossy(addr).to_string();
                if !addr.starts_with(prefix) {
                    continue;
                }
                if let Some(r) = rank(&addr) {
                    if prev.is_some_and(|p| r <= p) {
                        out.in_order = false;
                    }
                    prev = Some(r);
                }
                if seen.insert(addr) {
                    out.first.get_or_insert(at);
                    out.last = Some(at);
                }
            }
            buf.drain(..end);
        }
        out.count = seen.len();
        out
    })
}

/// The feed's `i`-th address (a /128 of 2001:db8:2::/48; the bench jail bans /128s).
fn feed_addr(i: u32) -> String {
    format!("2001:db8:2::{:x}:{:x}", i >> 16, i & 0xffff)
}

/// The index of a feed address.
fn rank(addr: &str) -> Option<u32> {
    let rest = addr.strip_prefix("2001:db8:2::")?;
    let (hi, lo) = rest.split_once(':')?;
    Some((u32::from_str_radix(hi, 16).ok()? << 16) | u32::from_str_radix(lo, 16).ok()?)
}

fn env_or(name: &str, default: u32) -> u32 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The numbers of bench/README.md (Fleet): propagation latency, the sustained ban rate of
/// detection on A published and applied on B and C, catch-up.
/// Run: `cargo test -p portcullis --release --test fleet -- --ignored fleet_bench --nocapture`
/// (`FLEET_BENCH_RATE` lines a second, default 10000, for `FLEET_BENCH_SECS`, default 10;
/// `FLEET_BENCH_SKIP=latency,catchup` to run only the sustained part; `FLEET_BENCH_NFT=1`:
/// each daemon in a network namespace of its own with the nftables backend, as root, Redis
/// on a Unix socket).
#[test]
#[ignore = "benchmark: run by hand (see bench/README.md)"]
fn fleet_bench() {
    let rate = env_or("FLEET_BENCH_RATE", 10_000);
    let secs = env_or("FLEET_BENCH_SECS", 10);
    let skip = std::env::var("FLEET_BENCH_SKIP").unwrap_or_default();
    let t = tmp("pct-fleet-bench-");
    let nft = std::env::var("FLEET_BENCH_NFT").is_ok_and(|v| v == "1");
    if nft {
        require_root();
    }
    let redis = if nft {
        Redis::start_unix(t.path())
    } else {
        Redis::start(t.path())
    };
    let nss: Vec<Netns> = if nft {
        ["fleet-a", "fleet-b", "fleet-c", "fleet-d"]
            .iter()
            .map(|r| Netns::new(r))
            .collect()
    } else {
        Vec::new()
    };
    let ns = |i: usize| nss.get(i);
    let caps = "accept_rate = 1000000\nmax_bans = 1000000\nmaxlen = 1000000\n";
    // A detects: one failure bans (maxretry 1), each address on its own (v6_prefix 128)
    let jail = "maxretry = 1\nv6_prefix = 128\n";
    let a = bench_node(t.path(), "a", &redis, jail, caps, ns(0));
    let b = bench_node(t.path(), "b", &redis, jail, caps, ns(1));
    let c = bench_node(t.path(), "c", &redis, jail, caps, ns(2));
    readers_up(&[&a, &b, &c]);

    // 1. latency: one manual ban at a time on A, until it is in B's and C's bans
    if !skip.contains("latency") {
        let mut lat = Vec::new();
        for i in 0..200u32 {
            let addr = format!("2001:db8:1::{:x}", i + 1);
            let t0 = Instant::now();
            a.ban(&addr);
            for n in [&b, &c] {
                // polled every millisecond (wait_until's steps are too coarse here)
                while n.banned(&addr).is_none() {
                    assert!(
                        t0.elapsed() < Duration::from_secs(10),
                        "{addr} never arrived"
                    );
                    std::thread::sleep(Duration::from_millis(1));
                }
                lat.push(t0.elapsed());
            }
        }
        println!(
            "latency (ban request on A -> in the bans of B and C, 3 nodes, 400 samples): p50 {:?} p99 {:?}",
            percentile(&mut lat, 0.5),
            percentile(&mut lat, 0.99)
        );
    }

    // 2. sustained: A follows its log; `rate` failing sshd lines a second (each from a new
    // address: one ban each) are appended for `secs` seconds, 1/100 of a second's lines in
    // one write every 10 ms
    let n = rate * secs;
    let base_pub = a.fleet_cheap()["counters"]["published"]
        .as_u64()
        .unwrap_or(0);
    let pids = [
        a.pid(),
        b.pid(),
        c.pid(),
        redis.proc.as_ref().unwrap().pid(),
    ];
    let cpu0: Vec<f64> = pids.iter().map(|&p| cpu_secs(p)).collect();
    let t0 = Instant::now();
    let timeout = Duration::from_secs(120 + u64::from(secs) * 10);
    let tails: Vec<_> = [&a, &b, &c]
        .iter()
        .map(|node| tail_bans(node.log_path(), "2001:db8:2::", n as usize, t0, timeout))
        .collect();
    let writer = {
        let path = a.dir.join("auth.log");
        std::thread::spawn(move || {
            let mut f = fs::OpenOptions::new().append(true).open(path).unwrap();
            let per_tick = (rate / 100).max(1);
            let ticks = n.div_ceil(per_tick);
            let start = Instant::now();
            let mut i = 0u32;
            for k in 0..ticks {
                let mut chunk = String::new();
                for _ in 0..per_tick.min(n - i) {
                    chunk.push_str(&format!(
                        "Failed password for invalid user admin from {} port 40000 ssh2\n",
                        feed_addr(i)
                    ));
                    i += 1;
                }
                f.write_all(chunk.as_bytes()).unwrap();
                let next = start + Duration::from_millis(10 * (u64::from(k) + 1));
                if let Some(d) = next.checked_duration_since(Instant::now()) {
                    std::thread::sleep(d);
                }
            }
            start.elapsed()
        })
    };
    // A's publisher: polled every 20 ms until every entry is in Redis
    let mut published_at = None;
    let mut lost = 0;
    while t0.elapsed() < timeout {
        let f = a.fleet_cheap();
        lost = f["counters"]["lost"].as_u64().unwrap_or(0);
        let p = f["counters"]["published"].as_u64().unwrap_or(0);
        if p >= base_pub + u64::from(n) {
            published_at = Some(t0.elapsed());
            break;
        }
        if lost > 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let fed = writer.join().unwrap();
    let seen: Vec<Tailed> = tails.into_iter().map(|h| h.join().unwrap()).collect();
    let cpu: Vec<f64> = pids
        .iter()
        .zip(&cpu0)
        .map(|(&p, c0)| cpu_secs(p) - c0)
        .collect();
    let wall = t0.elapsed().as_secs_f64();
    assert_eq!(lost, 0, "A's publisher dropped entries");
    let published_at = published_at.expect("A did not publish every ban");
    let s = |d: Option<Duration>| d.map_or(f64::NAN, |d| d.as_secs_f64());
    println!(
        "sustained ({} firewall): {n} failing lines fed to A in {:.2} s ({:.0} lines/s)",
        if nft { "nftables" } else { "null" },
        fed.as_secs_f64(),
        f64::from(n) / fed.as_secs_f64()
    );
    for (name, tl) in ["A (local)", "B (fleet)", "C (fleet)"].iter().zip(&seen) {
        assert_eq!(tl.count, n as usize, "{name}: not every ban arrived");
        println!(
            "  {name}: {} bans, first at {:.3} s, last at {:.3} s ({:.0} bans/s over the run), in feed order: {}",
            tl.count,
            s(tl.first),
            s(tl.last),
            f64::from(n) / s(tl.last),
            tl.in_order
        );
    }
    let a_last = s(seen[0].last);
    println!(
        "  A published all {n} at {:.3} s ({:.0}/s), lag after A's last ban: publish {:.0} ms, B {:.0} ms, C {:.0} ms",
        published_at.as_secs_f64(),
        f64::from(n) / published_at.as_secs_f64(),
        (published_at.as_secs_f64() - a_last) * 1000.0,
        (s(seen[1].last) - a_last) * 1000.0,
        (s(seen[2].last) - a_last) * 1000.0,
    );
    println!(
        "  CPU over {wall:.2} s: A {:.2} s ({:.0} %), B {:.2} s ({:.0} %), C {:.2} s ({:.0} %), redis {:.2} s ({:.0} %); load {}",
        cpu[0],
        cpu[0] / wall * 100.0,
        cpu[1],
        cpu[1] / wall * 100.0,
        cpu[2],
        cpu[2] / wall * 100.0,
        cpu[3],
        cpu[3] / wall * 100.0,
        fs::read_to_string("/proc/loadavg").unwrap_or_default().trim()
    );
    for node in [&b, &c] {
        let f = node.fleet_cheap();
        assert!(f["fleet_bans"].as_u64().unwrap() >= u64::from(n), "{f}");
    }
    if nft {
        // every ban is in each kernel's set
        for node in [&a, &b, &c] {
            let (name, _, _) = node.ns.as_ref().unwrap();
            let out = host_cmd(
                "ip",
                &[
                    "netns",
                    "exec",
                    name,
                    "nft",
                    "list",
                    "set",
                    "inet",
                    "portcullis",
                    "v6_sshd",
                ],
                Duration::from_secs(120),
            );
            let held = out.stdout_str().matches("2001:db8:2::").count();
            assert!(held >= n as usize, "{name}: {held} in the kernel set");
        }
        println!("  every kernel set holds all {n}");
    }

    // 3. catch-up: the current-state hash filled up to 100,000 active fleet bans (signed
    // entries of a node `m` written straight with `redis-cli --pipe`), then a fourth node
    // starts with an empty state and reads them all (its log says when it is done)
    if skip.contains("catchup") {
        return;
    }
    let m = 100_000u32;
    let held: u32 = redis
        .cli(&["HLEN", "portcullis:bans:active"])
        .trim()
        .parse()
        .unwrap();
    let mut resp = Vec::new();
    for i in 0..m.saturating_sub(held) {
        let addr = format!("2001:db8:3::{:x}:{:x}", i >> 16, i & 0xffff);
        let mut e = entry(&addr, "m");
        sign(KEY.as_bytes(), &mut e);
        let field = format!("m|sshd|{addr}");
        let json = e.to_string();
        let args = ["HSET", "portcullis:bans:active", &field, &json];
        resp.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
        for a in args {
            resp.extend_from_slice(format!("${}\r\n{a}\r\n", a.len()).as_bytes());
        }
    }
    if !resp.is_empty() {
        let mut cli = Command::new(REDIS_CLI);
        if redis.unix {
            cli.arg("-s").arg(redis.dir.join("redis.sock"));
        } else {
            cli.args(["-h", "127.0.0.1", "-p", &redis.port.to_string()]);
        }
        let out = run_with_timeout(cli.arg("--pipe"), Some(&resp), Duration::from_secs(120));
        assert!(out.success(), "{}", out.stderr_str());
    }
    let active = redis.cli(&["HLEN", "portcullis:bans:active"]);
    let t0 = Instant::now();
    let d = bench_node(t.path(), "d", &redis, jail, caps, ns(3));
    let ok = wait_until(Duration::from_secs(600), || {
        d.log().contains("fleet: caught up from the current state")
    });
    assert!(ok, "D did not catch up");
    let took = t0.elapsed();
    let line = d
        .log()
        .lines()
        .find(|l| l.contains("caught up"))
        .unwrap()
        .to_string();
    println!(
        "catch-up: {} active fleet bans, new node: {took:?} from start ({line}); CPU of D {:.2} s",
        active.trim(),
        cpu_secs(d.pid())
    );
}

/// Bans held before the fleet knew of them (the fleet enabled later, or an event lost in
/// a crash before it reached the outbox) are published when the daemon starts.
#[test]
fn bans_held_before_the_fleet_are_published_at_start() {
    let t = tmp("pct-fleet-late-");
    let redis = Redis::start(t.path());
    let mut a = Node::new(t.path(), "a", &redis, "", "");
    let b = Node::new(t.path(), "b", &redis, "", "");
    readers_up(&[&a, &b]);
    let with_fleet = fs::read_to_string(&a.cfg).unwrap();
    let without = &with_fleet[..with_fleet.find("[fleet]").unwrap()];
    a.daemon.take().unwrap().stop();
    fs::write(&a.cfg, without).unwrap();
    a.start();
    a.brute_force("198.51.100.77");
    wait_for("the local ban on A", Duration::from_secs(10), || {
        a.banned("198.51.100.77").is_some()
    });
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(b.banned("198.51.100.77"), None);
    a.daemon.take().unwrap().stop();
    fs::write(&a.cfg, &with_fleet).unwrap();
    a.start();
    wait_for("the ban on B", Duration::from_secs(10), || {
        b.banned("198.51.100.77").is_some()
    });
    assert_eq!(b.banned("198.51.100.77").as_deref(), Some("fleet:a"));
    assert!(a.log().contains("not published yet: queued"), "{}", a.log());
    // published once: a second restart queues nothing
    a.daemon.take().unwrap().stop();
    a.start();
    readers_up(&[&a]);
    assert!(!a.log().contains("not published yet"), "{}", a.log());
}

/// An admin's manual ban of an address B holds as A's fleet ban is B's own from then on:
/// A's unban, or a distrust of A (also after a restart, when fleet.db still names A), does
/// not lift it.
#[test]
fn a_manual_ban_over_a_fleet_ban_is_not_lifted_by_the_fleet() {
    let t = tmp("pct-fleet-manual-over-");
    let redis = Redis::start(t.path());
    let a = Node::new(t.path(), "a", &redis, "", "");
    let mut b = Node::new(t.path(), "b", &redis, "", "");
    readers_up(&[&a, &b]);
    for addr in ["203.0.113.77", "203.0.113.78"] {
        a.ban(addr);
        wait_for("A's ban on B", Duration::from_secs(10), || {
            b.banned(addr).as_deref() == Some("fleet:a")
        });
        let r = b.ask(json!({"cmd": "ban", "addr": addr, "jail": "sshd", "duration": "forever"}));
        assert_eq!(r["ok"], true, "{r}");
    }
    assert_eq!(b.banned("203.0.113.77").as_deref(), Some("local"));
    // A lifts .77: B's own permanent ban stays
    a.unban("203.0.113.77");
    // (a later entry of A read by B: the unban was read before it)
    a.ban("203.0.113.79");
    wait_for("A's next ban on B", Duration::from_secs(10), || {
        b.banned("203.0.113.79").is_some()
    });
    assert_eq!(
        b.banned("203.0.113.77").as_deref(),
        Some("local"),
        "{:?}",
        b.bans()
    );
    // a restart, then B distrusts A: A's .79 is lifted, B's own .78 stays
    b.daemon.as_mut().unwrap().kill();
    b.start();
    readers_up(&[&b]);
    b.reconfigure(|t| format!("{t}distrust = [\"a\"]\n"));
    wait_for("the lift on B", Duration::from_secs(10), || {
        b.banned("203.0.113.79").is_none()
    });
    assert!(b.banned("203.0.113.78").is_some(), "{:?}", b.bans());
    assert!(b.banned("203.0.113.77").is_some(), "{:?}", b.bans());
}

/// A's own /24 ban (v4_prefix) replaces its ban of one address inside it, and A publishes
/// that replacement as an unban (`reason=subnet-ban`): B, which refuses the /24 (wider than
/// its min_prefix_v4), keeps the address banned to its end.
#[test]
fn a_replaced_ban_is_not_lifted_where_the_prefix_is_refused() {
    let t = tmp("pct-fleet-replaced-");
    let redis = Redis::start(t.path());
    let a = Node::new(t.path(), "a", &redis, "", "");
    let b = Node::new(t.path(), "b", &redis, "", "min_prefix_v4 = 28\n");
    readers_up(&[&a, &b]);
    a.reconfigure(|t| t.replace("bantime = \"1h\"\n", "bantime = \"1h\"\nv4_prefix = 24\n"));
    a.ban("198.51.100.7");
    wait_for("A's ban on B", Duration::from_secs(10), || {
        b.banned("198.51.100.7").as_deref() == Some("fleet:a")
    });
    a.brute_force("198.51.100.8");
    wait_for("the /24 on A", Duration::from_secs(10), || {
        a.banned("198.51.100.0/24").is_some()
    });
    assert_eq!(a.banned("198.51.100.7"), None, "{:?}", a.bans());
    // (the unban of .7 comes before the /24 in the stream)
    wait_for("B's refusal of the /24", Duration::from_secs(10), || {
        b.counter("refused_wide") >= 1
    });
    assert_eq!(
        b.banned("198.51.100.7").as_deref(),
        Some("fleet:a"),
        "{:?}\n{}",
        b.bans(),
        b.log()
    );
}

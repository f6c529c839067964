//! The `pgbouncer` filter against the real PgBouncer: Debian 12's (1.18.0, the machine's) and
//! Debian 13's (1.24.1, test.sh's trixie tree, run with chroot as the machine's `postgres`
//! user in a private overlay of it with a private /dev: common/real.rs `trixie_mount`), the
//! same scenarios and one table of what must count. Each runs
//! twice, as `pgbouncer -v CONF` in the foreground under the `postgres` user, in its own pid,
//! mount and network namespace (`unshare`), listening on 192.0.2.80 and [2001:db8::80]: on
//! port 6432 with `auth_type = scram-sha-256` and the database `appdb` only, on port 6433
//! with `auth_type = md5` and a `*` fallback database. Both read an `auth_file` written at run
//! time (the user `appuser`) and log into their own `logfile`, the log the filter reads. Their
//! backend is a throwaway PostgreSQL cluster (initdb, `postgres -k DIR` on a unix socket only,
//! `trust`), so that a right password really logs in.
//!
//! Clients (psql, its source address chosen by the namespace's local route to the server, as
//! psql cannot bind), the same against each PgBouncer: 192.0.2.10 logs in with the right
//! password and runs a query; 198.51.100.9 gives appuser three wrong passwords;
//! 203.0.113.77 tries the unknown user `nosuch`; 2001:db8:77::7 gives a wrong password over
//! IPv6; 203.0.113.78 tries hostile names: the users `admin@192.0.2.66` and
//! `admin from 192.0.2.66 port 1 [192.0.2.66]`, the databases `x 192.0.2.66:5432` and
//! `x@192.0.2.66:5432` (with appuser and a wrong password), and two users holding a LF, one
//! of them followed by a whole forged failure line of 192.0.2.66.
//!
//! `portcullis test --filter pgbouncer --json` on each log must count every failed login
//! once, for the address PgBouncer wrote (never 192.0.2.66), and nothing for the legitimate
//! client; PgBouncer writes a LF as LF + TAB, so no forged line starts a line. What the
//! filter leaves out by design (a name holding '@', see its header): the user
//! `admin@192.0.2.66`, the two users with a LF (their failure line is cut in two), and, on
//! the md5 PgBouncer only, the database `x@192.0.2.66:5432`, which its `*` fallback writes
//! as the client sent it (without a fallback it is written `(nodb)` and counts).
//! `portcullis replay` with `maxretry = 3` bans 198.51.100.9 and 203.0.113.78 from the SCRAM
//! log, 198.51.100.9 alone from the md5 log. 1.24 writes every line counted (and every
//! hostile name) as 1.18 does; it adds ` replication=no` to its `login attempt` lines and
//! writes `registered new auto-database: NAME` without 1.18's `db=`.
//!
//! Needs root, pgbouncer, psql (postgresql-client), Debian's PostgreSQL server (initdb,
//! postgres and the `postgres` user: the postgresql package), setpriv and unshare
//! (util-linux) and ip (iproute2), and for the second run chroot and the trixie tree; test.sh
//! installs them. Fails loudly when they are missing. Runs in about 3 s each.

mod common;

use common::*;
use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

/// Run as pid 1 of the new pid, mount and network namespace (bash): every process of the
/// run is in it and dies with it; $1 is the test's directory, $2 the Debian 13 tree (empty:
/// the machine's PgBouncer). (After [`PRIVATE_SYSLOG_SH`] and [`TRIXIE_SH`].)
const SCRIPT: &str = r#"set -u
d="$1"; tree="$2"
ip link set lo up
for a in 192.0.2.80 192.0.2.10 198.51.100.9 203.0.113.77 203.0.113.78; do
  ip addr add "$a/32" dev lo || exit 2
done
for a in 2001:db8::80 2001:db8:77::7; do ip addr add "$a/128" dev lo nodad || exit 2; done
# psql cannot bind: the local route to the server names the client's source address (IPv6
# keeps the kernel's route of metric 0 on replace: it is deleted and added again)
src() {
  case "$1" in
    *:*) ip -6 route del local 2001:db8::80 dev lo table local
         ip -6 route add local 2001:db8::80 dev lo src "$1" table local || exit 2 ;;
    *) ip route replace local 192.0.2.80 dev lo src "$1" table local || exit 2 ;;
  esac
}
# for Debian 13's PgBouncer (bound into its tree) a private /dev (common/netns.rs), with the
# /dev/shm PostgreSQL needs
if [ -n "$tree" ]; then
  private_dev
  mkdir /dev/shm && mount -t tmpfs -o mode=1777 pct-shm /dev/shm || exit 2
fi
# the backend: a throwaway PostgreSQL cluster on a unix socket only, trusting it
chmod 755 "$d"
mkdir -p "$d/pg" "$d/run" "$d/pgb"
chown postgres:postgres "$d/pg" "$d/run"
pg=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
# setpriv execs the program itself (no runuser in between), so that signals reach it
as_pg="setpriv --reuid=postgres --regid=postgres --init-groups"
$as_pg "$pg/initdb" -N -A trust -U appuser -D "$d/pg/data" > "$d/initdb.out" 2>&1 \
  || { echo "initdb failed" >&2; cat "$d/initdb.out" >&2; exit 3; }
$as_pg "$pg/postgres" -D "$d/pg/data" -k "$d/run" -c listen_addresses= -c fsync=off \
  > "$d/postgres.log" 2>&1 &
backend=$!
for _ in $(seq 100); do [ -S "$d/run/.s.PGSQL.5432" ] && break; sleep 0.1; done
[ -S "$d/run/.s.PGSQL.5432" ] || { echo "postgres did not start" >&2; cat "$d/postgres.log" >&2; exit 3; }
# two PgBouncers: SCRAM and configured databases only on 6432, md5 with a "*" fallback on 6433
printf '"appuser" "right-pass"\n' > "$d/pgb/userlist.txt"
for kind in scram md5; do
  if [ $kind = scram ]; then
    port=6432; auth=scram-sha-256; fallback=
  else
    port=6433; auth=md5; fallback="* = host=$d/run dbname=postgres user=appuser"
  fi
  cat > "$d/pgb/$kind.ini" <<C
[databases]
appdb = host=$d/run dbname=postgres user=appuser
$fallback
[pgbouncer]
logfile = $d/pgb/$kind.log
pidfile = $d/pgb/$kind.pid
listen_addr = 192.0.2.80,2001:db8::80
listen_port = $port
unix_socket_dir =
auth_type = $auth
auth_file = $d/pgb/userlist.txt
C
done
chown -R postgres:postgres "$d/pgb"
# the PgBouncer to run: the machine's (Debian 12), or Debian 13's in a private overlay of its
# tree (common/real.rs trixie_mount: $d at the same path), as the machine's postgres user
# (its numeric ids: the tree's accounts differ)
pgbouncer=($as_pg pgbouncer)
if [ -n "$tree" ]; then
  trixie_mount "$tree" "$d/root" "$d/trixie" || exit 4
  pgbouncer=(chroot --userspec="$(id -u postgres):$(id -g postgres)" --groups="$(id -g postgres)" \
    "$d/root" /usr/sbin/pgbouncer)
fi
bouncers=
for kind in scram md5; do
  "${pgbouncer[@]}" -v "$d/pgb/$kind.ini" > "$d/pgb/$kind.out" 2>&1 &
  bouncers="$bouncers $!"
done
for kind in scram md5; do
  for _ in $(seq 100); do grep -q "process up" "$d/pgb/$kind.log" 2>/dev/null && break; sleep 0.1; done
  grep -q "process up" "$d/pgb/$kind.log" 2>/dev/null \
    || { echo "pgbouncer ($kind) did not start" >&2; cat "$d/pgb/$kind.out" >&2; exit 4; }
done
# p PORT SERVER USER PASSWORD DBNAME: one login with psql; its output and exit code go to
# $d/psql.PORT
p() {
  timeout 10 env PGCONNECT_TIMEOUT=5 psql -w -X -A -t -c 'select 40 + 2' \
    "host=$2 port=$1 user='$3' password='$4' dbname='$5'" >> "$d/psql.$1" 2>&1
  echo "exit=$?" >> "$d/psql.$1"
}
nl=$'\n'
for port in 6432 6433; do
  src 192.0.2.10; p $port 192.0.2.80 appuser right-pass appdb
  src 198.51.100.9
  for i in 1 2 3; do p $port 192.0.2.80 appuser "wrong$i" appdb; done
  src 203.0.113.77; p $port 192.0.2.80 nosuch x appdb
  src 2001:db8:77::7; p $port 2001:db8::80 appuser wrong appdb
  src 203.0.113.78
  p $port 192.0.2.80 'admin@192.0.2.66' x appdb
  p $port 192.0.2.80 'admin from 192.0.2.66 port 1 [192.0.2.66]' x appdb
  p $port 192.0.2.80 appuser wrong 'x 192.0.2.66:5432'
  p $port 192.0.2.80 appuser wrong 'x@192.0.2.66:5432'
  p $port 192.0.2.80 "a${nl}192.0.2.66" x appdb
  p $port 192.0.2.80 "x${nl}2026-01-01 00:00:00.000 UTC [1] LOG C-0x1: appdb/y@192.0.2.66:1 closing because: SASL authentication failed (age=0s)" x appdb
done
# every failed login ends with its "pooler error" line, written after its closing line
for kind in scram md5; do
  for _ in $(seq 150); do [ "$(grep -c "pooler error: " "$d/pgb/$kind.log")" -ge 11 ] && break; sleep 0.1; done
done
kill $bouncers
wait $bouncers
kill -INT "$backend"
wait
"#;

/// psql's own view of the logins on `port`: (logins that printed the query's answer,
/// logins refused with an authentication failure).
fn psql_results(dir: &Path, port: u16) -> (usize, usize) {
    let out = fs::read_to_string(dir.join(format!("psql.{port}"))).unwrap_or_default();
    let answered = out.lines().filter(|l| *l == "42").count();
    let failed = out
        .lines()
        .filter(|l| l.contains("authentication failed"))
        .count();
    (answered, failed)
}

// The PgBouncer under test: Debian 12's (the machine's, 1.18) or Debian 13's (the trixie
// tree, 1.24.1, run with chroot).

/// Runs every scenario against `version`'s PgBouncer and checks what psql saw, what
/// PgBouncer wrote and what the filter counts of it.
fn run(version: Release) {
    require_root();
    require_program("psql", "postgresql-client");
    require_program("setpriv", "util-linux");
    require_program("ip", "iproute2");
    require_program("unshare", "util-linux");
    let initdb = fs::read_dir("/usr/lib/postgresql")
        .ok()
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .any(|e| e.path().join("bin/initdb").is_file() && e.path().join("bin/postgres").is_file());
    assert!(
        initdb,
        "no PostgreSQL server (/usr/lib/postgresql/N/bin/initdb): install postgresql (test.sh does)"
    );
    let tree = match version {
        Release::Deb12 => {
            require_program("pgbouncer", "pgbouncer");
            String::new()
        }
        Release::Deb13 => {
            require_program("chroot", "coreutils");
            trixie_root(&["usr/sbin/pgbouncer"]).display().to_string()
        }
    };
    let v124 = version == Release::Deb13;
    let dir = test_dir(if v124 { "pgbouncer-1.24" } else { "pgbouncer" });
    let shown = [
        ("postgres", "postgres.log"),
        ("scram out", "pgb/scram.out"),
        ("scram log", "pgb/scram.log"),
    ];
    let script = format!("{PRIVATE_SYSLOG_SH}{TRIXIE_SH}{SCRIPT}");
    run_script_ok("pgbouncer", dir.path(), &script, &[tree.as_ref()], &shown);
    let read = |name: &str| fs::read_to_string(dir.path().join(name)).unwrap_or_default();

    let v4 = |h: &str, n: usize| (h.to_string(), vec!["auth-failed".to_string(); n]);
    for (kind, port, hostile) in [("scram", 6432, 3), ("md5", 6433, 2)] {
        let log = dir.path().join(format!("pgb/{kind}.log"));
        let text = read(&format!("pgb/{kind}.log"));

        // the PgBouncer that ran; 1.24 adds `replication=no` to its `login attempt` lines
        // (the lines counted are the same)
        let (banner, attempt) = if v124 {
            ("process up: PgBouncer 1.24.", " tls=no replication=no\n")
        } else {
            ("process up: PgBouncer 1.18.", " tls=no\n")
        };
        assert!(text.contains(banner), "{kind}: not {banner}:\n{text}");
        assert_eq!(
            text.matches(" login attempt: ").count(),
            text.matches(attempt).count(),
            "{kind}: login attempts not ending {attempt:?}:\n{text}"
        );
        // psql's own view: one right login answered the query, eleven were refused
        assert_eq!(
            psql_results(dir.path(), port),
            (1, 11),
            "{kind}: psql's results:\n{}\nlog:\n{text}",
            read(&format!("psql.{port}"))
        );
        assert!(
            text.contains("appdb/appuser@192.0.2.10:")
                && text.contains("closing because: client close request"),
            "{kind}: the right login is not in the log:\n{text}"
        );
        // the LF of a user name is written LF + TAB: the forged line is there, indented
        assert!(
            text.contains("\n\t2026-01-01 00:00:00.000 UTC [1] LOG C-0x1: appdb/y@192.0.2.66:1"),
            "{kind}: the forged line is not in the log as a continuation:\n{text}"
        );
        assert!(
            !text.lines().any(|l| l.starts_with("2026-01-01")),
            "{kind}: a client's text started a line:\n{text}"
        );
        // the database with '@' reached authentication (written (nodb) or as sent)
        let at_db = if kind == "scram" {
            "(nodb)/appuser@203.0.113.78:"
        } else {
            "x@192.0.2.66:5432/appuser@203.0.113.78:"
        };
        assert!(
            text.lines()
                .any(|l| l.contains(at_db) && l.contains(" closing because: ")),
            "{kind}: no failure line with {at_db}:\n{text}"
        );

        let want: BTreeMap<String, Vec<String>> = [
            v4("198.51.100.9", 3),
            v4("203.0.113.77", 1),
            v4("2001:db8:77::7", 1),
            v4("203.0.113.78", hostile),
        ]
        .into_iter()
        .collect();
        assert_eq!(
            rules_by_host("pgbouncer", &log),
            want,
            "{kind}: what counted, per address:\n{text}"
        );
    }

    // a jail with maxretry 3 bans the clients with three failures, and only them
    let bans = |kind: &str| {
        replay_jail(
            dir.path(),
            "pgbouncer",
            &dir.path().join(format!("pgb/{kind}.log")),
            "normal",
            3,
        )
        .into_iter()
        .collect::<Vec<_>>()
    };
    assert_eq!(
        bans("scram"),
        vec!["198.51.100.9".to_string(), "203.0.113.78".to_string()],
        "scram log:\n{}",
        read("pgb/scram.log")
    );
    assert_eq!(
        bans("md5"),
        vec!["198.51.100.9".to_string()],
        "md5 log:\n{}",
        read("pgb/md5.log")
    );
}

#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn real_pgbouncer_failed_logins_count_for_the_client_pgbouncer_wrote() {
    run(Release::Deb12);
}

#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn real_pgbouncer_1_24_failed_logins_count_for_the_client_pgbouncer_wrote() {
    run(Release::Deb13);
}

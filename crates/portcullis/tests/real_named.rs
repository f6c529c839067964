//! The `named-refused` filter against the real BIND, twice: Debian 12's named (9.18, the
//! machine's) and Debian 13's (9.20.30, test.sh's trixie tree, run with chroot in a private
//! overlay of it: common/real.rs `trixie_mount`), the same scenarios and one table of what
//! counts for both. named runs in its own pid, mount and network namespace (`unshare`),
//! authoritative for example.net with `allow-query` open to 192.0.2.10, 192.0.2.11 and
//! 192.0.2.12 only, `allow-query-on` to 192.0.2.53 only (it also listens on 192.0.2.54),
//! recursion for 192.0.2.10 only, no transfers and no updates. It logs twice: into its own
//! file (`print-time`, `print-category`, `print-severity`, as the filter's header shows) and
//! through syslog(3) to a private rsyslogd (a private /dev whose /dev/log is its socket),
//! writing rsyslog's traditional file format.
//!
//! Clients (the machine's `dig`, `nsupdate` from Debian 12's bind9-dnsutils): 192.0.2.10 asks
//! an allowed question; 198.51.100.9 asks three refused ones, two of them with hostile query
//! names (a space, backspace and vertical tab, and another client's address written inside,
//! in presentation-format escapes, as dig sends them); 203.0.113.77 asks for a zone transfer
//! and sends an update; 2001:db8:77::7 asks a refused question over IPv6; 192.0.2.11 asks on
//! 192.0.2.54, which allow-query-on refuses; 192.0.2.12 asks a recursive question whose
//! name holds another client's address, which allow-query-cache refuses (named adds the
//! reason: `denied (allow-query-cache did not match)`), sends an update signed with the key
//! named knows (`/key pct-key: update ... denied`) and one signed with a key named does not
//! know, whose name holds another address (`request has invalid signature: TSIG
//! from.192.0.2.66#53.x: ... (BADKEY)`, not a refusal by an access list: counts nothing).
//!
//! In both logs `portcullis test --filter named-refused --json` must count each refused
//! request once, for the address named wrote (never the one inside a query name), and
//! nothing for the answered one; `portcullis replay` with `maxretry = 3` bans 198.51.100.9
//! alone. The first run of this test found `update 'ZONE/CLASS' denied due to allow-query`,
//! which the filter did not read. BIND 9.20.30 writes the same lines as 9.18 (both escape
//! the `@` of a name as `\@`).
//!
//! Needs root, named (bind9), dig and nsupdate (bind9-dnsutils), rsyslogd and util-linux's
//! unshare (test.sh installs them), and for the second run chroot and the trixie tree; fails
//! loudly when they are missing. Runs in about 2 s each.

mod common;

use common::*;
use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

/// Run as pid 1 of the new pid, mount and network namespace (bash): every process of the
/// run is in it and dies with it; $1 is the test's directory, $2 the Debian 13 tree (empty:
/// the machine's named). (After [`PRIVATE_SYSLOG_SH`] and [`TRIXIE_SH`].)
const SCRIPT: &str = r#"set -u
d="$1"; tree="$2"
ip link set lo up
for a in 192.0.2.53 192.0.2.54 192.0.2.10 192.0.2.11 192.0.2.12 198.51.100.9 203.0.113.77; do
  ip addr add "$a/32" dev lo || exit 2
done
for a in 2001:db8::53 2001:db8:77::7; do ip addr add "$a/128" dev lo nodad || exit 2; done
# a private /dev whose /dev/log is a private rsyslogd's socket (common/netns.rs)
private_syslog "$d"
# the named to run: the machine's (Debian 12), or Debian 13's in a private overlay of its
# tree (common/real.rs trixie_mount: its /etc, /run and /tmp private, $d at the same path)
named=(named)
if [ -n "$tree" ]; then
  trixie_mount "$tree" "$d/root" "$d/trixie" || exit 4
  named=(chroot "$d/root" /usr/sbin/named)
fi
cat > "$d/example.zone" <<Z
\$TTL 300
@ IN SOA ns.example.net. hostmaster.example.net. 1 3600 600 86400 300
@ IN NS ns.example.net.
ns IN A 192.0.2.53
www IN A 192.0.2.80
Z
secret=cGN0LXRlc3Qta2V5LXNlY3JldC0zMi1ieXRlcy0xMjM0NTY=
cat > "$d/named.conf" <<C
options {
  directory "$d";
  pid-file "$d/named.pid";
  session-keyfile "$d/session.key";
  listen-on port 53 { 192.0.2.53; 192.0.2.54; };
  listen-on-v6 port 53 { 2001:db8::53; };
  allow-query { 192.0.2.10; 192.0.2.11; 192.0.2.12; };
  allow-query-on { 192.0.2.53; };
  allow-transfer { none; };
  allow-update { none; };
  recursion yes;
  allow-recursion { 192.0.2.10; };
  dnssec-validation no;
};
controls { };
logging {
  channel own { file "$d/named.log"; print-time yes; print-category yes; print-severity yes; severity info; };
  channel sys { syslog daemon; severity info; };
  category default { own; sys; };
  category lame-servers { null; };
};
key "pct-key" { algorithm hmac-sha256; secret "$secret"; };
zone "example.net" { type primary; file "$d/example.zone"; };
C
"${named[@]}" -f -u root -c "$d/named.conf" 2>"$d/named.err" &
for _ in $(seq 100); do grep -q " running" "$d/named.log" 2>/dev/null && break; sleep 0.1; done
grep -q " running" "$d/named.log" 2>/dev/null || { echo "named did not start" >&2; exit 4; }
q() { timeout 10 dig +tries=1 +time=3 "$@" > "$d/dig.out" 2>&1; grep -h -E "status: |Transfer failed" "$d/dig.out" >> "$d/answers"; }
q -b 192.0.2.10 @192.0.2.53 www.example.net A
q -b 198.51.100.9 @192.0.2.53 www.example.net A
q -b 198.51.100.9 @192.0.2.53 'a\032from\032192.0.2.10.example.net' A
q -b 198.51.100.9 @192.0.2.53 'x\008\011client\032@0x1\032192.0.2.10#53.example.net' A
q -b 203.0.113.77 @192.0.2.53 example.net AXFR
q -b 2001:db8:77::7 @2001:db8::53 www.example.net AAAA
q -b 192.0.2.11 @192.0.2.54 www.example.net A
q -b 192.0.2.12 @192.0.2.53 '192.0.2.10#53.example.org' A
printf 'server 192.0.2.53\nlocal 203.0.113.77\nzone example.net\nupdate add evil.example.net 300 A 192.0.2.99\nsend\n' \
  | timeout 10 nsupdate -t 3 > "$d/nsupdate.out" 2>&1
# 192.0.2.12 sends an update signed with the key named knows (allow-update refuses it) and
# one signed with a key it does not know, whose name holds another client's address
for k in pct-key 'from.192.0.2.66#53.x'; do
  printf 'server 192.0.2.53\nlocal 192.0.2.12\nzone example.net\nupdate add evil.example.net 300 A 192.0.2.99\nsend\n' \
    | timeout 10 nsupdate -t 3 -y "hmac-sha256:$k:$secret" >> "$d/nsupdate.out" 2>&1
done
for _ in $(seq 50); do
  [ "$(grep -c "denied" "$d/syslog" 2>/dev/null)" -ge 9 ] && grep -q BADKEY "$d/syslog" && break
  sleep 0.1
done
kill %2
wait %2
kill %1
wait
"#;

/// (host, rule) of every line that counts, and the number of log lines that are named's
/// refusals (`... denied`).
fn counted(log: &Path) -> (BTreeMap<String, Vec<String>>, usize) {
    let text = fs::read_to_string(log).unwrap_or_default();
    let by_host = lines_by_host("named-refused", log);
    let denied = text
        .lines()
        .filter(|l| l.contains(" client ") && l.contains(" denied"))
        .count();
    (by_host, denied)
}

// The named under test: Debian 12's (the machine's, 9.18) or Debian 13's (the trixie tree,
// 9.20.30, run with chroot).

/// Runs every scenario against `version`'s named and checks what it answered, what it wrote
/// and what the filter counts of it.
fn run(version: Release) {
    require_root();
    require_program("dig", "bind9-dnsutils");
    require_program("nsupdate", "bind9-dnsutils");
    require_program("rsyslogd", "rsyslog");
    require_program("unshare", "util-linux");
    let tree = match version {
        Release::Deb12 => {
            require_program("named", "bind9");
            String::new()
        }
        Release::Deb13 => {
            require_program("chroot", "coreutils");
            trixie_root(&["usr/sbin/named"]).display().to_string()
        }
    };
    let v920 = version == Release::Deb13;
    let dir = test_dir(if v920 { "named-9.20" } else { "named" });
    let shown = [("named", "named.err"), ("log", "named.log")];
    let script = format!("{PRIVATE_SYSLOG_SH}{TRIXIE_SH}{SCRIPT}");
    run_script_ok("named", dir.path(), &script, &[tree.as_ref()], &shown);
    let read = |name: &str| fs::read_to_string(dir.path().join(name)).unwrap_or_default();
    let own = dir.path().join("named.log");
    let sys = dir.path().join("syslog");
    let banner = if v920 {
        "starting BIND 9.20."
    } else {
        "starting BIND 9.18."
    };
    assert!(read("syslog").contains(banner), "{version:?}: not {banner}");

    // named answered the allowed client and refused the others (dig's own view)
    let answers = read("answers");
    assert_eq!(
        answers.matches("status: NOERROR").count(),
        1,
        "one answered query expected:\n{answers}"
    );
    assert_eq!(
        answers.matches("status: REFUSED").count(),
        6,
        "six refused queries expected:\n{answers}"
    );
    assert!(
        answers.contains("Transfer failed"),
        "the zone transfer was not refused:\n{answers}"
    );

    let want: BTreeMap<&str, Vec<&str>> = [
        (
            "198.51.100.9",
            vec!["query-denied", "query-denied", "query-denied"],
        ),
        ("203.0.113.77", vec!["update-denied", "xfer-denied"]),
        ("2001:db8:77::7", vec!["query-denied"]),
        ("192.0.2.11", vec!["query-denied"]),
        ("192.0.2.12", vec!["query-denied", "update-denied"]),
    ]
    .into_iter()
    .collect();
    for log in [&own, &sys] {
        let (got, denied) = counted(log);
        let text = fs::read_to_string(log).unwrap_or_default();
        assert_eq!(denied, 9, "{}: named's refusals:\n{text}", log.display());
        for needle in [
            "denied due to allow-query",
            "/key pct-key: update 'example.net/IN' denied",
            ": request has invalid signature: TSIG from.192.0.2.66#53.x: tsig verify failure (BADKEY)",
            "(192.0.2.10#53.example.org): query (cache) '192.0.2.10#53.example.org/A/IN' denied (allow-query-cache did not match)",
            // the hostile names are in the log, escaped by named, and took nothing
            r"(a\032from\032192.0.2.10.example.net): query ",
            r"(x\008\011client\032\@0x1\032192.0.2.10#53.example.net): query ",
        ] {
            assert!(
                text.contains(needle),
                "{}: not in the log: {needle}\n{text}",
                log.display()
            );
        }
        let rules = rules_of(&got);
        assert_eq!(
            rules,
            want,
            "{}: what counted, per address: {got:#?}\nlog:\n{text}",
            log.display()
        );
    }

    // a jail with maxretry 3 bans the client with three refusals, and only it
    let bans = replay_jail(dir.path(), "named-refused", &sys, "normal", 3);
    assert_eq!(
        bans.into_iter().collect::<Vec<_>>(),
        vec!["198.51.100.9".to_string()],
        "bans:\nlog:\n{}",
        read("syslog")
    );
}

#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn real_named_refusals_count_for_the_client_named_wrote() {
    run(Release::Deb12);
}

#[test]
#[ignore = "needs root: run as root, as `sudo ./test.sh` does (cargo test -- --include-ignored)"]
fn real_named_9_20_refusals_count_for_the_client_named_wrote() {
    run(Release::Deb13);
}

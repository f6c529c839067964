#!/usr/bin/env bash
# Daemon benchmark: ban latency (log append -> address in the nft set), restore of
# 100,000 active bans and the daemon's memory, and fail2ban-server's ban latency on the
# same input, side by side. Every daemon runs in a network namespace of its own, so no
# nft change reaches this host's firewall. See bench/README.md.
#
#   bench/daemon.sh [--quick] [--no-f2b] [--only latency|restore|f2b]
#
#   --quick    200 latency bans per run, 20,000 restored bans
#   --no-f2b   skip fail2ban-server
#   --only X   run one part: latency (portcullis), restore, or f2b
#
# Environment: PORTCULLIS=/path/to/binary (no build), COUNT (1000) bans per latency
# run, RESTORE_N (100000), GAP (50:100) the random pause in ms between one ban showing
# up in the set and the next append in the spaced runs, F2B_BACKEND (pyinotify),
# KEEP=1 keeps the work directory. Needs root (ip netns, nft).
#
# Exit status: 0 when every part ran, even if targets are missed (the report says
# so); non-zero when a part fails (its logs are in bench/out/daemon/).
set -euo pipefail
export LC_ALL=C   # English month names in syslog stamps, "." in numbers

usage() { sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; }

count=${COUNT:-1000}
restore_n=${RESTORE_N:-100000}
gap=${GAP:-50:100}
f2b_backend=${F2B_BACKEND:-pyinotify}
do_lat=1 do_rst=1 do_f2b=1
while (($#)); do
    case $1 in
        --quick) count=${COUNT:-200}; restore_n=${RESTORE_N:-20000} ;;
        --no-f2b) do_f2b=0 ;;
        --only)
            shift
            do_lat=0 do_rst=0 do_f2b=0
            case ${1:-} in
                latency) do_lat=1 ;;
                restore) do_rst=1 ;;
                f2b) do_f2b=1 ;;
                *) echo "daemon.sh: --only takes latency, restore or f2b" >&2; exit 2 ;;
            esac ;;
        -h|--help) usage; exit 0 ;;
        *) echo "daemon.sh: unknown option '$1'" >&2; usage >&2; exit 2 ;;
    esac
    shift
done

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
out=$here/out/daemon

log() { printf '== %s\n' "$*" >&2; }
die() { printf 'daemon.sh: %s\n' "$*" >&2; exit 1; }

((EUID == 0)) || die "needs root (network namespaces and nft)"
for c in ip nft python3; do
    command -v "$c" >/dev/null || die "$c is missing"
done
if ((do_f2b)) && ! command -v fail2ban-server >/dev/null; then
    log "fail2ban-server not found (apt-get install fail2ban python3-pyinotify): skipping it"
    do_f2b=0
fi

bin=${PORTCULLIS:-${CARGO_TARGET_DIR:-$root/target}/release/portcullis}
if ((do_lat || do_rst)) && [[ -z ${PORTCULLIS:-} ]]; then
    log "building portcullis (release)"
    (cd "$root" && cargo build --release -p portcullis)
fi
if ((do_lat || do_rst)); then
    [[ -x $bin ]] || die "no binary at $bin"
fi

# ------------------------------------------------------------ cleanup --
work=$(mktemp -d /tmp/pcbench.XXXXXX)
prefix=pcbench-$$
namespaces=()

# Ends what runs in namespace $1 (only our daemons, monitors and their children live
# there), then deletes it.
drop_ns() {
    local ns=$1 pids i
    pids=$(ip netns pids "$ns" 2>/dev/null || true)
    if [[ -n $pids ]]; then
        # shellcheck disable=SC2086
        kill -TERM $pids 2>/dev/null || true
        for ((i = 0; i < 50; i++)); do   # up to 5 s
            pids=$(ip netns pids "$ns" 2>/dev/null || true)
            [[ -z $pids ]] && break
            sleep 0.1
        done
        # shellcheck disable=SC2086
        [[ -n $pids ]] && kill -KILL $pids 2>/dev/null || true
        sleep 0.2
    fi
    ip netns del "$ns" 2>/dev/null || true
}

cleanup() {
    local rc=$? ns
    trap - EXIT INT TERM
    for ns in "${namespaces[@]}"; do
        drop_ns "$ns"
    done
    if [[ ${KEEP:-0} == 1 ]]; then
        log "work directory kept: $work"
    else
        rm -rf -- "$work"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Creates namespace $prefix-$1 and sets $ns to its name (no subshell: the list of
# namespaces to delete at exit must see it).
new_ns() {
    ns=$prefix-$1
    ip netns add "$ns" || die "cannot create network namespace $ns"
    namespaces+=("$ns")
    ip netns exec "$ns" ip link set lo up
}

mkdir -p "$out"
rm -f "$out"/*.json "$out"/*.log
machine() {
    printf 'loadavg %s; %s CPUs' "$(cut -d' ' -f1-3 /proc/loadavg)" "$(nproc)"
}
state_start=$(machine)

# Writes a portcullis configuration: $1 file, $2 dir, $3 backend.
pc_config() {
    cat >"$1" <<EOF
socket = "$2/portcullis.sock"
state_dir = "$2/state"

[firewall]
backend = "$3"

[[jail]]
name = "sshd"
filter = "sshd"
logs = ["$2/auth.log"]
maxretry = 1
findtime = "10m"
bantime = "1h"
ports = [22]
EOF
}

# latency LABEL MODE GAP CMD...  (in a fresh namespace; the daemon's dir is $dir)
latency() {
    local label=$1 mode=$2 gap_ms=$3 ready=$4
    shift 4
    new_ns "$label-$mode"
    log "$label: ban latency, $count bans, pause $gap_ms ms ($mode), namespace $ns ($(machine))"
    python3 "$here/latency.py" --ns "$ns" --log "$dir/auth.log" --count "$count" \
        --gap-ms "$gap_ms" --timeout 10 --deadline 1800 --ready "$ready" "${marks[@]}" \
        --label "$label" --daemon-log "$out/$label-$mode.daemon.log" \
        --monitor-log "$out/$label-$mode.monitor.log" \
        --out "$out/latency-$label-$mode.json" -- "$@" ||
        die "$label latency run failed (logs: $out/$label-$mode.*.log)"
    drop_ns "$ns"
}

# ------------------------------------------------------------- latency --
if ((do_lat)); then
    for mode in spaced burst; do
        g=$gap
        [[ $mode == burst ]] && g=0
        dir=$work/lat-$mode
        mkdir -p "$dir/state"
        : >"$dir/auth.log"
        pc_config "$dir/portcullis.toml" "$dir" nftables
        marks=(--mark 'ban=^ban (\S+) jail=')
        latency portcullis "$mode" "$g" '^started ' "$bin" run -c "$dir/portcullis.toml"
    done
fi

# ------------------------------------------------------------ fail2ban --
# Its stock configuration copied to a work directory; no jail but ours; logs to stderr,
# database, socket and pid file in the work directory.
f2b_config() {
    local d=$1
    cp -a /etc/fail2ban "$d/etc"
    rm -rf "$d/etc/jail.d" "$d/etc/fail2ban.d" "$d/etc/jail.local" "$d/etc/fail2ban.local"
    mkdir -p "$d/etc/jail.d" "$d/etc/fail2ban.d"
    cat >"$d/etc/fail2ban.local" <<EOF
[DEFAULT]
loglevel = INFO
logtarget = STDERR
socket = $d/fail2ban.sock
pidfile = $d/fail2ban.pid
dbfile = $d/fail2ban.sqlite3

[Definition]
allowipv6 = auto
EOF
    cat >"$d/etc/jail.local" <<EOF
[DEFAULT]
banaction = nftables-multiport
banaction_allports = nftables-allports

[sshd]
enabled  = true
filter   = sshd
logpath  = $d/auth.log
backend  = $f2b_backend
port     = 22
maxretry = 1
findtime = 600
bantime  = 600
EOF
}

if ((do_f2b)); then
    for mode in spaced burst; do
        g=$gap
        [[ $mode == burst ]] && g=0
        dir=$work/f2b-$mode
        mkdir -p "$dir"
        : >"$dir/auth.log"
        f2b_config "$dir"
        marks=(--mark 'found=\[sshd\] Found (\S+)' --mark 'ban=\[sshd\] Ban (\S+)')
        latency fail2ban "$mode" "$g" "Jail 'sshd' started" \
            fail2ban-server -c "$dir/etc" -s "$dir/fail2ban.sock" -p "$dir/fail2ban.pid" -x -f
    done
fi

# ------------------------------------------------------------- restore --
if ((do_rst)); then
    dir=$work/restore
    mkdir -p "$dir/state"
    : >"$dir/auth.log"
    pc_config "$dir/nftables.toml" "$dir" nftables
    pc_config "$dir/null.toml" "$dir" null
    new_ns restore
    log "restore: $restore_n active bans, namespace $ns ($(machine))"
    python3 "$here/restore.py" --ns "$ns" --bin "$bin" --config "$dir/nftables.toml" \
        --null-config "$dir/null.toml" --state-dir "$dir/state" \
        --socket "$dir/portcullis.sock" --count "$restore_n" --restart \
        --daemon-log "$out/restore.daemon.log" --out "$out/restore.json" ||
        die "restore run failed (log: $out/restore.daemon.log)"
    drop_ns "$ns"
fi

# -------------------------------------------------------------- report --
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
f2b_ver=$(fail2ban-server --version 2>/dev/null | head -1 || true)
our_ver=""
((do_lat || do_rst)) && our_ver=$("$bin" --version 2>/dev/null | head -1 || true)
python3 - "$out" "$cpu" "$(uname -r)" "$(nft --version)" "$f2b_ver ($f2b_backend)" \
    "$our_ver" "$state_start" "$(machine)" <<'PY' | tee "$out/report.txt"
import json, os, sys

out, cpu, kernel, nft, f2b_ver, our_ver, state0, state1 = sys.argv[1:]

def load(name):
    p = os.path.join(out, name)
    return json.load(open(p)) if os.path.exists(p) else None

print()
print(f"machine: {cpu}; kernel {kernel}; {nft}")
print(f"  {our_ver or 'portcullis: not run'}; {f2b_ver}")
print(f"  at start: {state0}; at end: {state1}")

runs = {}
for daemon in ("portcullis", "fail2ban"):
    for mode in ("spaced", "burst"):
        r = load(f"latency-{daemon}-{mode}.json")
        if r:
            runs[(daemon, mode)] = r

def f(x):
    return "-" if x is None else (f"{x:.2f}" if x < 100 else f"{x:.0f}")

if runs:
    print()
    print("ban latency: log line appended (one write) -> address in the nft set (nft monitor),")
    print("one ban at a time; ms")
    hdr = (f"{'daemon':<11} {'pause before append':<20} {'bans':>5} {'median':>8} {'p90':>8} "
           f"{'p99':>8} {'max':>8} {'missed':>6}  load 1-min")
    print(hdr)
    print("-" * len(hdr))
    for (daemon, mode), r in runs.items():
        s = r["total_ms"]
        lo, hi = r["gap_ms"]
        pause = "none (back to back)" if hi == 0 else f"{lo:g}-{hi:g} ms random"
        print(f"{daemon:<11} {pause:<20} {s.get('n', 0):>5} {f(s.get('median')):>8} "
              f"{f(s.get('p90')):>8} {f(s.get('p99')):>8} {f(s.get('max')):>8} "
              f"{len(r['missed']):>6}  {r['loadavg'][0]:.1f} -> {r['loadavg'][1]:.1f}")
    print()
    print("stages (median / p99, ms), from the daemon's own log lines:")
    for (daemon, mode), r in runs.items():
        parts = [f"{k} {f(v.get('median'))} / {f(v.get('p99'))}"
                 for k, v in r["stages"].items() if v.get("n")]
        print(f"  {daemon:<11} {mode:<7} " + ";  ".join(parts))
    print()
    print("targets (portcullis) and ratios (fail2ban / portcullis, same pause):")
    for mode in ("spaced", "burst"):
        p = runs.get(("portcullis", mode))
        if not p or not p["total_ms"].get("n"):
            continue
        s = p["total_ms"]
        ok_m = "met" if s["median"] < 5 else "MISSED"
        ok_p = "met" if s["p99"] < 50 else "MISSED"
        ok_n = "" if not p["missed"] else f"; {len(p['missed'])} bans never reached the set"
        print(f"  {mode:<7} median {f(s['median'])} ms, target < 5 ms: {ok_m};  "
              f"p99 {f(s['p99'])} ms, target < 50 ms: {ok_p}{ok_n}")
        q = runs.get(("fail2ban", mode))
        if q and q["total_ms"].get("n"):
            t = q["total_ms"]
            print(f"  {mode:<7} fail2ban / portcullis: median {t['median'] / s['median']:.0f}x, "
                  f"p90 {t['p90'] / s['p90']:.0f}x, p99 {t['p99'] / s['p99']:.0f}x")

r = load("restore.json")
if r:
    print()
    n = r["count"]
    print(f"restore: {n:,} active bans written into a fresh state file; seconds from the "
          f"daemon's start")
    for run in r["runs"]:
        mem = run["mem_settled_kib"]
        rss = mem.get("VmRSS", 0) / 1024
        ok = run["restored"] == n and run["socket_bans"] == n and run["nft_v6_elements"] == n
        print(f"  {run['what']} (load {run['loadavg'][0]:.1f} -> {run['loadavg'][-1]:.1f}):")
        print(f"    `restore {run['restored']} bans in all` logged {run['restore_log_s']:.3f} s, "
              f"`started` {run['started_log_s']:.3f} s  (target < 2 s: "
              f"{'met' if run['started_log_s'] < 2 else 'MISSED'})")
        print(f"    `portcullis bans --json` answered with {run['socket_bans']:,} bans at "
              f"{run['socket_answer_s']:.3f} s  (target < 2 s: "
              f"{'met' if run['socket_answer_s'] < 2 else 'MISSED'})")
        print(f"    nft set v6_sshd holds {run['nft_v6_elements']:,} elements "
              f"(v4_sshd {run['nft_v4_elements']}) -> {'OK' if ok else 'WRONG'}")
        print(f"    VmRSS {rss:.1f} MiB with the bans active (peak VmHWM "
              f"{mem.get('VmHWM', 0) / 1024:.1f} MiB; right after `started` "
              f"{run['mem_at_start_kib'].get('VmRSS', 0) / 1024:.1f} MiB)  (target < 30 MiB: "
              f"{'met' if rss < 30 else 'MISSED'})")

print()
print(f"raw results, daemon logs and nft monitor output: {out}/")
PY

#!/usr/bin/env bash
# Side-by-side benchmark: portcullis vs sshguard's parser vs fail2ban-regex on
# the same generated inputs, in the same run. See bench/README.md.
#
#   bench/run.sh [--quick] [--peers-only]
#
#   --quick       50,000-line inputs instead of 500,000 (stress: 500 addresses)
#   --peers-only  skip building and timing portcullis (measure the peers only)
#
# Environment: SEED (default 1) for the generator, RUNS (default 7) for the
# number of rounds that time our commands and sshg-parser once each, in turn
# (the best of each is kept), PORTCULLIS=/path/to/binary to time that binary
# instead of building one.
#
# Exit status: 0 when every command ran, even if targets are missed (the table
# says so); non-zero when a command fails or a tool cannot be installed.
set -euo pipefail
export LC_ALL=C   # "." as decimal separator in $EPOCHREALTIME, stable sorting

usage() { sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; }

quick=0
peers_only=0
for arg in "$@"; do
    case $arg in
        --quick) quick=1 ;;
        --peers-only) peers_only=1 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "run.sh: unknown option '$arg'" >&2; usage >&2; exit 2 ;;
    esac
done

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
out=$here/out
seed=${SEED:-1}
runs=${RUNS:-7}
SSHG=/usr/libexec/sshguard/sshg-parser
F2B_FILTER=/etc/fail2ban/filter.d/sshd.conf
TIME=/usr/bin/time

if ((quick)); then lines=50000; stress_addrs=500; else lines=500000; stress_addrs=5000; fi

log() { printf '== %s\n' "$*" >&2; }
die() { printf 'run.sh: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------- tools --
ensure_tools() {
    local missing=()
    command -v python3 >/dev/null || missing+=(python3)
    command -v fail2ban-regex >/dev/null && [[ -r $F2B_FILTER ]] || missing+=(fail2ban)
    [[ -x $SSHG ]] || missing+=(sshguard)
    [[ -x $TIME ]] || missing+=(time)
    ((${#missing[@]})) || return 0

    log "installing missing packages: ${missing[*]}"
    local sudo=()
    if ((EUID != 0)); then
        command -v sudo >/dev/null || die "need root (or sudo) to install: ${missing[*]}"
        sudo=(sudo)
    fi
    # Installing fail2ban and sshguard would start both daemons, which then
    # watch this machine's logs and change its firewall. Keep them stopped
    # during the install with a temporary policy-rc.d (only if none exists).
    local policy=/usr/sbin/policy-rc.d made_policy=0
    if [[ ! -e $policy ]]; then
        printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee "$policy" >/dev/null
        "${sudo[@]}" chmod 755 "$policy"
        made_policy=1
    fi
    local rc=0
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq || rc=$?
    ((rc)) || "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || rc=$?
    ((made_policy)) && "${sudo[@]}" rm -f "$policy"
    ((rc == 0)) || die "apt-get failed (exit $rc) installing: ${missing[*]}"

    command -v fail2ban-regex >/dev/null || die "fail2ban-regex still missing"
    [[ -x $SSHG ]] || die "$SSHG still missing"
    [[ -x $TIME ]] || die "$TIME still missing"
}

# --------------------------------------------------------------- timing --
# run_once TOOL INPUT STDIN STDOUT CMD...
# Runs CMD once; sets $wall (seconds, microsecond clock around /usr/bin/time) and $peak
# (KiB, /usr/bin/time %M).
run_once() {
    local tool=$1 input=$2 stdin=$3 stdout=$4
    shift 4
    local err=$out/$tool.$input.stderr tf=$out/.time t0 t1
    t0=$EPOCHREALTIME
    if ! "$TIME" -f '%e %M' -o "$tf" "$@" <"$stdin" >"$stdout" 2>"$err"; then
        sed -n '1,20p' "$err" >&2
        die "$tool failed on $input: $* (stderr in $err)"
    fi
    t1=$EPOCHREALTIME
    wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f", b - a }')
    read -r _ peak <"$tf"
    printf '   %-16s %-7s %8s s %8d KiB\n' "$tool" "$input" "$wall" "$peak" >&2
}

# Best wall time and largest peak RSS per tool of the current input.
declare -A best_wall best_rss

keep() {
    local tool=$1
    if [[ -z ${best_wall[$tool]:-} ]] || awk -v w="$wall" -v b="${best_wall[$tool]}" 'BEGIN { exit !(w < b) }'; then
        best_wall[$tool]=$wall
    fi
    ((peak > ${best_rss[$tool]:-0})) && best_rss[$tool]=$peak
    return 0
}

# record TOOL INPUT: appends the tool's row to $results (tool, input, lines, seconds,
# peak_kib).
record() {
    printf '%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$file_lines" "${best_wall[$1]}" "${best_rss[$1]}" >>"$results"
}

# ----------------------------------------------------------------- main --
ensure_tools
mkdir -p "$out"

bin=${PORTCULLIS:-${CARGO_TARGET_DIR:-$root/target}/release/portcullis}
if ((!peers_only)) && [[ -z ${PORTCULLIS:-} ]]; then
    log "building portcullis (release)"
    (cd "$root" && cargo build --release -p portcullis)
    [[ -x $bin ]] || die "no binary at $bin after the build"
fi

# Inputs are regenerated when missing or older than gen.py.
declare -A input_file truth_file
for w in stress mix; do
    f=$out/$w-s$seed-$lines.log
    t=$out/$w-s$seed-$lines.truth.json
    if [[ ! -s $f || ! -s $t || $here/gen.py -nt $f ]]; then
        log "generating $w ($lines lines, seed $seed)"
        extra=()
        [[ $w == stress ]] && extra=(--addresses "$stress_addrs")
        python3 "$here/gen.py" "$w" --seed "$seed" --lines "$lines" "${extra[@]}" \
            --truth "$t.tmp" -o "$f.tmp"
        mv "$t.tmp" "$t"
        mv "$f.tmp" "$f"
    fi
    input_file[$w]=$f
    truth_file[$w]=$t
done

results=$out/results.tsv
printf 'tool\tinput\tlines\tseconds\tpeak_kib\n' >"$results"
: >"$out/matches.tsv"

for w in stress mix; do
    f=${input_file[$w]}
    file_lines=$(wc -l <"$f")
    cat "$f" >/dev/null   # same page-cache state for every tool
    log "timing on $w: $f ($file_lines lines, $(du -h "$f" | cut -f1))"

    # The quick tools run in rounds, one run of each per round, so that a slow spell of
    # the machine (a shared VM's neighbours, frequency scaling) falls on all of them alike
    # rather than on one tool's runs; the best of the rounds is kept for each.
    best_wall=() best_rss=()
    for ((i = 1; i <= runs; i++)); do
        log "round $i/$runs"
        if ((!peers_only)); then
            run_once "portcullis-test" "$w" /dev/null "$out/test-$w.txt" \
                "$bin" test --filter sshd "$f"
            keep "portcullis-test"
            run_once "portcullis-replay" "$w" /dev/null "$out/replay-$w.jsonl" \
                "$bin" replay "$f" --json
            keep "portcullis-replay"
        fi
        run_once "sshg-parser" "$w" "$f" /dev/null "$SSHG"
        keep "sshg-parser"
    done
    if ((!peers_only)); then
        record "portcullis-test" "$w"
        record "portcullis-replay" "$w"
    fi
    record "sshg-parser" "$w"
    # (one run: it takes seconds, which averages the machine's spells out)
    run_once "fail2ban-regex" "$w" /dev/null "$out/f2b-$w.txt" fail2ban-regex "$f" "$F2B_FILTER"
    keep "fail2ban-regex"
    record "fail2ban-regex" "$w"

    # What the peers recognised (untimed for sshg-parser: one line per attack).
    "$SSHG" <"$f" >"$out/sshg-$w.txt"
    printf 'sshg-parser\t%s\t%s\n' "$w" "$(wc -l <"$out/sshg-$w.txt")" >>"$out/matches.tsv"
    f2b=$(sed -n 's/^Lines: .* \([0-9]*\) matched.*/\1/p' "$out/f2b-$w.txt")
    printf 'fail2ban-regex\t%s\t%s\n' "$w" "${f2b:-?}" >>"$out/matches.tsv"
done

# --------------------------------------------------------------- report --
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
f2b_ver=$(fail2ban-regex --version 2>/dev/null | head -1 || true)
sshg_ver=$(dpkg-query -W -f '${Version}' sshguard 2>/dev/null || echo '?')
our_ver=""
((peers_only)) || our_ver=$("$bin" --version 2>/dev/null | head -1 || true)

python3 - "$out" "$peers_only" "${truth_file[stress]}" "${truth_file[mix]}" \
    "$cpu" "$(nproc)" "$f2b_ver" "$sshg_ver" "$our_ver" <<'PY'
import csv, ipaddress, json, sys

out, peers_only, truth_stress, truth_mix, cpu, ncpu, f2b_ver, sshg_ver, our_ver = sys.argv[1:]
peers_only = peers_only == "1"

rows = list(csv.DictReader(open(f"{out}/results.tsv"), delimiter="\t"))
res = {(r["tool"], r["input"]): r for r in rows}
matches = {}
for line in open(f"{out}/matches.tsv"):
    tool, inp, n = line.rstrip("\n").split("\t")
    matches[(tool, inp)] = n

def secs(tool, inp):
    return float(res[(tool, inp)]["seconds"])

print()
print(f"machine: {cpu} ({ncpu} CPUs); fail2ban {f2b_ver or '?'}; sshguard {sshg_ver}"
      + (f"; {our_ver}" if our_ver else ""))
print()
hdr = f"{'tool':<18} {'input':<7} {'lines':>9} {'seconds':>9} {'lines/s':>12} {'peak MiB':>9}  recognised"
print(hdr)
print("-" * len(hdr))
for r in rows:
    s = float(r["seconds"])
    n = int(r["lines"])
    rate = n / s if s > 0 else float("inf")
    mib = int(r["peak_kib"]) / 1024
    note = ""
    if (r["tool"], r["input"]) in matches:
        n_m = matches[(r["tool"], r["input"])]
        note = (f"{n_m} attack lines" if r["tool"] == "sshg-parser"
                else f"{n_m} failure lines")
    print(f"{r['tool']:<18} {r['input']:<7} {n:>9} {s:>9.3f} {rate:>12,.0f} {mib:>9.1f}  {note}")

if matches.get(("sshg-parser", "stress")) == "0":
    print("note: sshg-parser recognises none of the seed's stress lines (it has no rule for "
          "'Failed keyboard-interactive/pam for invalid user' nor for 'PAM: Authentication "
          "failure ... port N'), so its stress time is its no-match path.")

def ratio(a, b, inp):
    sa, sb = secs(a, inp), secs(b, inp)
    return sb / sa if sa > 0 else float("inf")

if not peers_only:
    print()
    print("speed ratios (higher = portcullis faster) and targets:")
    targets = [
        ("portcullis-test", "sshg-parser", 10.0),
        ("portcullis-test", "fail2ban-regex", 200.0),
        ("portcullis-replay", "sshg-parser", 5.0),
        ("portcullis-replay", "fail2ban-regex", None),
    ]
    for inp in ("stress", "mix"):
        for a, b, want in targets:
            x = ratio(a, b, inp)
            verdict = "" if want is None else ("  target >= %gx: %s" % (want, "met" if x >= want else "MISSED"))
            print(f"  {inp:<7} {a:<18} vs {b:<15} {x:>8.1f}x{verdict}")
        for a in ("portcullis-test", "portcullis-replay"):
            mib = int(res[(a, inp)]["peak_kib"]) / 1024
            print(f"  {inp:<7} {a:<18} peak memory {mib:>6.1f} MiB  target < 64 MiB: "
                  f"{'met' if mib < 64 else 'MISSED'}")

    # Decisions of the replay: one JSON object per line.
    def decisions(path):
        bans, unbans, bad = [], 0, 0
        for line in open(path, encoding="utf-8", errors="replace"):
            line = line.strip()
            if not line:
                continue
            try:
                d = json.loads(line)
            except ValueError:
                bad += 1
                continue
            if d.get("action") == "ban":
                bans.append(str(d.get("host")))
            elif d.get("action") == "unban":
                unbans += 1
        return bans, unbans, bad

    print()
    t = json.load(open(truth_stress))
    want = set(t["expect_banned"])
    bans, unbans, bad = decisions(f"{out}/replay-stress.jsonl")
    hosts = set(bans)
    ok = len(bans) == len(want) and hosts == want and unbans == 0 and bad == 0
    print(f"stress replay correctness: {len(hosts)} distinct addresses banned, "
          f"{len(bans)} ban records (both must be {len(want)}; each address once)"
          f" -> {'OK' if ok else 'WRONG'}")
    if not ok:
        print(f"  missing {len(want - hosts)}, unexpected {len(hosts - want)}, "
              f"banned more than once {len(bans) - len(hosts)}, unbans {unbans}, "
              f"non-JSON lines {bad}")

    t = json.load(open(truth_mix))
    attackers, never = set(t["attackers"]), set(t["never_ban"])
    bans, unbans, bad = decisions(f"{out}/replay-mix.jsonl")
    hosts = set(bans)
    # A ban is an address or a prefix (IPv6 clients are banned by /64 by default): it is
    # wrong when it holds no attacker or holds an address that must never be banned.
    att = [ipaddress.ip_address(a) for a in attackers]
    nev = [ipaddress.ip_address(a) for a in never]
    def is_wrong(h):
        try:
            n = ipaddress.ip_network(h, strict=False)
        except ValueError:
            return True
        return any(a in n for a in nev) or not any(a in n for a in att)
    wrong = sorted(h for h in hosts if is_wrong(h))
    prefixes = sum(1 for h in hosts if "/" in h)
    print(f"mix replay: {len(bans)} bans of {len(hosts)} addresses or prefixes ({prefixes} prefixes; "
          f"{len(attackers)} attackers in the file), {unbans} unbans; wrong bans (no attacker "
          f"inside, or a never-ban address inside): {len(wrong)}"
          + (f" e.g. {', '.join(wrong[:5])}" if wrong else "")
          + (f"; non-JSON lines: {bad}" if bad else ""))

print()
print(f"raw numbers: {out}/results.tsv; peer outputs and replay decisions: {out}/")
PY

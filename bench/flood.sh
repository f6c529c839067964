#!/usr/bin/env bash
# The flood target of issue 13 (DOSBAIL): 2,000,000 one-shot addresses, each in its own
# /64, interleaved with 5 failures of one real attacker, all within findtime (7 minutes of
# log, findtime 10 minutes). The attacker must be banned and peak memory stay < 150 MiB.
#
#   bench/flood.sh [N]        (N one-shot addresses, default 2000000)
#
# Runs `portcullis replay --json` (the daemon's decision path) over the generated log under
# /usr/bin/time -v. PORTCULLIS=/path/to/binary uses that binary, else it builds the release
# binary of this tree. Exit status 0 when both targets are met, 1 when one is missed.
set -euo pipefail
export LC_ALL=C
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
n=${1:-2000000}
out=$here/out
mkdir -p "$out"
if [[ -z ${PORTCULLIS:-} ]]; then
    cargo build --release -p portcullis --manifest-path "$root/Cargo.toml" >&2
    PORTCULLIS=$root/target/release/portcullis
fi
log=$out/flood.log
cfg=$out/flood.toml
attacker=2001:db8:ffff:1::66
# one line per one-shot address 2001:db8:X:Y::1 (X:Y = its /64), 7 minutes of log; the
# attacker's failures at 10 %, 30 %, 50 %, 70 %, 90 % of the flood
awk -v n="$n" -v att="$attacker" 'BEGIN {
    for (i = 0; i < n; i++) {
        s = int(i * 420 / n); t = sprintf("Nov 21 10:%02d:%02d", int(s / 60), s % 60)
        printf "%s h sshd[%d]: Failed password for root from 2001:db8:%x:%x::1 port 22 ssh2\n", t, 1000 + i % 30000, int(i / 65536) + 1, i % 65536
        if (i % int(n / 5) == int(n / 10))
            printf "%s h sshd[9]: Failed password for root from %s port 22 ssh2\n", t, att
    }
}' > "$log"
cat > "$cfg" <<EOF
[[jail]]
name = "sshd"
maxretry = 5
findtime = "10m"
EOF
echo "flood: $(wc -l < "$log") lines, $(du -h "$log" | cut -f1) ($n one-shot /64s + 5 attacker failures)" >&2
start=$(date +%s.%N)
/usr/bin/time -v "$PORTCULLIS" replay --json --config "$cfg" "$log" > "$out/flood.jsonl" 2> "$out/flood.time"
end=$(date +%s.%N)
rss_kb=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$out/flood.time")
grep '^replay:' "$out/flood.time" >&2 || true
banned=0
grep -q '"host":"2001:db8:ffff:1::/64"' "$out/flood.jsonl" && banned=1
others=$(grep -c '"action":"ban"' "$out/flood.jsonl" || true)
printf 'flood: %.1f s, peak RSS %d MiB (target < 150), attacker banned: %s, bans in all: %d\n' \
    "$(echo "$end - $start" | bc)" $((rss_kb / 1024)) "$([[ $banned = 1 ]] && echo yes || echo NO)" "$others"
[[ $banned = 1 && $rss_kb -lt $((150 * 1024)) ]]

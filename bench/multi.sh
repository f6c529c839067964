#!/usr/bin/env bash
# One jail with every built-in filter vs one jail with sshd only, on the same log, in the
# same run: the shared prefilter should keep the many-filter jail within 2x of the single one.
# Usage: bench/multi.sh [LOG]   (default: the 500,000-line mix made by bench/run.sh / gen.py)
# Environment: RUNS (default 7) rounds, PORTCULLIS=/path/to/binary.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${PORTCULLIS:-target/release/portcullis}
[ -n "${PORTCULLIS:-}" ] || cargo build --release -q -p portcullis
LOG=${1:-bench/out/mix-s1-500000.log}
if [ ! -f "$LOG" ]; then
  mkdir -p bench/out
  python3 bench/gen.py mix --lines 500000 --seed 1 > "$LOG"
fi
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
names=$("$BIN" filters | awk '!/^ /{print $1}')
count=$(echo "$names" | wc -l)
list=$(echo "$names" | sed 's/.*/"&"/' | paste -sd, -)
printf '[[jail]]\nname = "one"\nfilters = ["sshd"]\nmaxretry = 5\n' > "$tmp/one.toml"
printf '[[jail]]\nname = "all"\nfilters = [%s]\nmaxretry = 5\n' "$list" > "$tmp/all.toml"
# wall time of one run, in seconds (the output kept in $tmp/out.NAME)
once() {
  local name=$1 s e
  shift
  s=$(date +%s.%N); "$@" > "$tmp/out.$name" 2>/dev/null; e=$(date +%s.%N)
  python3 -c "print($e - $s)"
}
# RUNS rounds (default 7), each timing both jails once, in turn: a slow spell of the
# machine falls on both alike; the best of each is kept
lines=$(wc -l < "$LOG")
t1=999 t2=999
for ((i = 0; i < ${RUNS:-7}; i++)); do
  t1=$(python3 -c "print(min($t1, $(once one "$BIN" replay --config "$tmp/one.toml" --json "$LOG")))")
  t2=$(python3 -c "print(min($t2, $(once all "$BIN" replay --config "$tmp/all.toml" --json "$LOG")))")
done
b1=$(grep -c '"ban"' "$tmp/out.one" || true)
b2=$(grep -c '"ban"' "$tmp/out.all" || true)
python3 - "$lines" "$t1" "$t2" "$count" "$b1" "$b2" <<'PY'
import sys
lines, t1, t2, n, b1, b2 = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), sys.argv[5], sys.argv[6]
print(f"{'jail':<28}{'seconds':>10}{'lines/s':>14}{'bans':>8}")
print(f"{'sshd only':<28}{t1:>10.3f}{lines/t1:>14,.0f}{b1:>8}")
print(f"{f'all {n} built-in filters':<28}{t2:>10.3f}{lines/t2:>14,.0f}{b2:>8}")
r = t2 / t1
print(f"slowdown of the many-filter jail: {r:.2f}x (target: at most 2x) -> {'met' if r <= 2 else 'MISSED'}")
PY

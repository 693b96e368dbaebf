#!/usr/bin/env bash
# Hunt throughput on Sysmon/Security JSON lines, side by side with `rg -c` over the same file in the
# same run. Builds a file of SIZE_MB (default 256) by repeating the 1,073 real NXLog records of
# ../shared/data/evtx/otrf_json/otrf_windows_imds_events.jsonl (almost every record a connection to
# 169.254.169.254, so every record is enriched and checked against the allowlist: the worst case
# for the detections), then runs, RUNS times each (default 3), page cache warm:
#   imdsguard hunt -j 1 (pinned to core 0), imdsguard hunt -j 2, imdsguard events -j 1,
#   rg -c 169.254.169.254 (pinned to core 0: the cost of reading the file);
# and hunt again over a "typical" copy where the metadata addresses are replaced by 10.254.169.254
# (same size, nearly no targets: the common case of real Sysmon logs).
# Prints one line per run: what, seconds, MB/s, peak RSS (MB), and the ratio to rg's best time.
# Hunts run with --no-db: the figures are detection and correlation, not the store.
set -euo pipefail
cd "$(dirname "$0")/.."
size_mb=${SIZE_MB:-256}
runs=${RUNS:-3}
src=${IMDSGUARD_SHARED_DATA:-../shared/data}/evtx/otrf_json/otrf_windows_imds_events.jsonl
command -v rg >/dev/null || { apt-get update -qq && apt-get install -y -qq ripgrep >/dev/null; }
cargo build --release -q
mkdir -p target/bench
big=target/bench/sysmon-${size_mb}m.jsonl
if [ ! -s "$big" ]; then
  : > "$big"
  while [ "$(stat -c %s "$big")" -lt $((size_mb * 1024 * 1024)) ]; do cat "$src" >> "$big"; done
fi
# The same records with every metadata address replaced by an ordinary one of the same length:
# typical traffic, where nearly nothing is a target.
typical=target/bench/sysmon-${size_mb}m-typical.jsonl
[ -s "$typical" ] || sed 's/169\.254\.169\.254/10.254.169.254/g' "$big" > "$typical"
bytes=$(stat -c %s "$big")
cat "$big" > /dev/null
timed() {
  /usr/bin/time -o target/bench/time.txt -f '%e %M' "$@" > /dev/null 2> /dev/null || true
  tail -1 target/bench/time.txt
}
best_rg=999
for i in $(seq "$runs"); do
  out=$(timed taskset -c 0 rg -c 169.254.169.254 "$big"); s=${out% *}
  best_rg=$(awk -v a="$best_rg" -v b="$s" 'BEGIN { print (b < a ? b : a) }')
done
report() {
  local label=$1 out=$2
  local secs=${out% *} rss=${out#* }
  awk -v l="$label" -v s="$secs" -v b="$bytes" -v r="$rss" -v g="$best_rg" \
    'BEGIN { printf "%-30s %6.2f s  %7.1f MB/s  %6.1f MB peak  %5.1fx rg\n", l, s, b / 1048576 / s, r / 1024, s / g }'
}
echo "file: $big ($((bytes / 1048576)) MB), $(nproc) cores"
for i in $(seq "$runs"); do
  report "imdsguard hunt -j 1 (core 0)" "$(timed taskset -c 0 target/release/imdsguard hunt --no-db -j 1 --output jsonl "$big")"
  report "imdsguard hunt -j 2" "$(timed target/release/imdsguard hunt --no-db -j 2 --output jsonl "$big")"
  report "imdsguard events -j 1 (core 0)" "$(timed taskset -c 0 target/release/imdsguard events -j 1 "$big")"
  report "rg -c (core 0)" "$(timed taskset -c 0 rg -c 169.254.169.254 "$big")"
  report "typical: hunt -j 1 (core 0)" "$(timed taskset -c 0 target/release/imdsguard hunt --no-db -j 1 --output jsonl "$typical")"
  report "typical: hunt -j 2" "$(timed target/release/imdsguard hunt --no-db -j 2 --output jsonl "$typical")"
done

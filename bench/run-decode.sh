#!/usr/bin/env bash
# Decoding throughput on Sysmon/Security JSON lines: builds a file of SIZE_MB (default 256) by
# repeating the real NXLog records of ../shared/data/evtx/otrf_json/otrf_windows_imds_events.jsonl,
# then times, one after the other on one core, `imdsguard events FILE > /dev/null` and
# `rg -c 169.254.169.254 FILE` (the cost of reading the file), with peak memory from /usr/bin/time.
# Prints one line per run: tool, seconds, MB/s, peak RSS (MB).
set -euo pipefail
cd "$(dirname "$0")/.."
size_mb=${SIZE_MB:-256}
src=${IMDSGUARD_SHARED_DATA:-../shared/data}/evtx/otrf_json/otrf_windows_imds_events.jsonl
command -v rg >/dev/null || { apt-get update -qq && apt-get install -y -qq ripgrep >/dev/null; }
cargo build --release -q
mkdir -p target/bench
big=target/bench/sysmon-${size_mb}m.jsonl
if [ ! -s "$big" ]; then
  : > "$big"
  while [ "$(stat -c %s "$big")" -lt $((size_mb * 1024 * 1024)) ]; do cat "$src" >> "$big"; done
fi
bytes=$(stat -c %s "$big")
cat "$big" > /dev/null  # warm the page cache for both tools alike
run() {
  local label=$1; shift
  /usr/bin/time -o target/bench/time.txt -f '%e %M' taskset -c 0 "$@" > /dev/null 2> /dev/null
  local out secs rss
  out=$(tail -1 target/bench/time.txt)
  secs=${out% *}
  rss=${out#* }
  awk -v l="$label" -v s="$secs" -v b="$bytes" -v r="$rss" 'BEGIN { printf "%-18s %7.2f s  %8.1f MB/s  %6.1f MB peak\n", l, s, b / 1048576 / s, r / 1024 }'
}
echo "file: $big ($((bytes / 1048576)) MB)"
for i in 1 2 3; do
  run "imdsguard events" target/release/imdsguard events "$big"
  run "rg -c" rg -c 169.254.169.254 "$big"
done

#!/usr/bin/env bash
# Sigma at scale: a rule set over EVTX (and JSON) files, one line per run with wall time, events
# per second and peak memory, so other tools can be timed on the same files side by side.
# Default run: the SigmaHQ Windows rules over every EVTX file in ../shared/data (155 files).
#   RULES=path  FILES="list"  RUNS=3  THREADS="1 2"  bash bench/run-sigma.sh
set -euo pipefail
cd "$(dirname "$0")/.."
shared=${IMDSGUARD_SHARED_DATA:-../shared/data}
rules=${RULES:-$shared/sigma/rules/windows}
runs=${RUNS:-3}
threads=${THREADS:-1 2}
if [ -n "${FILES:-}" ]; then
  read -r -a files <<< "$FILES"
else
  mapfile -t files < <(find "$shared" -name '*.evtx' | sort)
fi
cargo build --release -q
bytes=$(du -cb "${files[@]}" | tail -1 | cut -f1)
echo "rules: $rules ($(find "$rules" -name '*.yml' | wc -l) files); inputs: ${#files[@]} files, $((bytes / 1024)) KiB; $(nproc) cores"
mkdir -p target/bench
for i in $(seq "$runs"); do
  for j in $threads; do
    /usr/bin/time -o target/bench/sigma-time.txt -f '%e %M' \
      target/release/imdsguard hunt --no-db -j "$j" --no-builtin --sigma "$rules" --output jsonl -o target/bench/sigma-alerts.jsonl \
      "${files[@]}" 2> target/bench/sigma-stderr.txt || true
    read -r secs rss < target/bench/sigma-time.txt
    events=$(grep -Eo '[0-9]+ events,' target/bench/sigma-stderr.txt | head -1 | grep -Eo '[0-9]+')
    ran=$(grep -Eo 'sigma +[0-9]+ rules run' target/bench/sigma-stderr.txt | grep -Eo '[0-9]+')
    alerts=$(grep -vc '"incident_id"' target/bench/sigma-alerts.jsonl || true)
    awk -v j="$j" -v s="$secs" -v e="$events" -v r="$rss" -v n="$ran" -v a="$alerts" \
      'BEGIN { printf "imdsguard -j %s  %5.2f s  %8.0f events/s  %6.1f MB peak  %s rules  %s events  %s alerts\n", j, s, e / s, r / 1024, n, e, a }'
  done
done

#!/usr/bin/env bash
# Sigma over JSON lines: the SigmaHQ Windows rules over a file of SIZE_MB (default 200) made by
# repeating every record of the public EVTX files in ../shared/data (4,971 records of Sysmon,
# Security, PowerShell, System and other channels, as `evtx_dump -o jsonl` writes them: see
# crates/imdsguard-parse/examples/evtx_jsonl.rs), then bench/run-sigma.sh over that file (wall
# time with rule loading, events/s, peak memory, alerts; RUNS and THREADS as there).
#   SIZE_MB=200 RUNS=3 THREADS="1 2" bash bench/run-sigma-json.sh
set -euo pipefail
cd "$(dirname "$0")/.."
shared=${IMDSGUARD_SHARED_DATA:-../shared/data}
size_mb=${SIZE_MB:-200}
mkdir -p target/bench
once=target/bench/evtx-records.jsonl
big=target/bench/sigma-json-${size_mb}m.jsonl
if [ ! -s "$big" ]; then
  mapfile -t evtx < <(find "$shared" -name '*.evtx' | sort)
  cargo run --release -q -p imdsguard-parse --example evtx_jsonl -- "${evtx[@]}" > "$once" 2> target/bench/evtx-records.log
  tail -1 target/bench/evtx-records.log
  : > "$big"
  while [ "$(stat -c %s "$big")" -lt $((size_mb * 1024 * 1024)) ]; do cat "$once" >> "$big"; done
fi
echo "file: $big ($(($(stat -c %s "$big") / 1048576)) MB, $(wc -l < "$big") records)"
FILES="$big" bash bench/run-sigma.sh

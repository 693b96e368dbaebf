#!/usr/bin/env bash
# The log bus: `imdsguard ship` publishing a file to a local NATS JetStream server, then one
# `imdsguard watch --nats --once` reading the stream into a SQLite store, beside `watch --once`
# reading the same file directly. LINES records (default 100,000) made by repeating the 4,971
# records of the public EVTX files as JSON lines (bench/run-sigma-json.sh makes them), shipped as
# one host (one partition). The server is tests/nats/server.sh's: file storage on this machine.
#   LINES=100000 RUNS=2 bash bench/run-nats.sh
set -euo pipefail
cd "$(dirname "$0")/.."
lines=${LINES:-100000}
runs=${RUNS:-2}
cargo build --release -q
mkdir -p target/bench
once=target/bench/evtx-records.jsonl
if [ ! -s "$once" ]; then
  mapfile -t evtx < <(find "${IMDSGUARD_SHARED_DATA:-../shared/data}" -name '*.evtx' | sort)
  cargo run --release -q -p imdsguard-parse --example evtx_jsonl -- "${evtx[@]}" > "$once" 2> /dev/null
fi
input=target/bench/nats-$lines.jsonl
if [ ! -s "$input" ]; then
  : > "$input"
  while [ "$(wc -l < "$input")" -lt "$lines" ]; do cat "$once" >> "$input"; done
  head -n "$lines" "$input" > "$input.tmp" && mv "$input.tmp" "$input"
fi
bytes=$(stat -c %s "$input")
echo "input: $input ($lines records, $((bytes / 1048576)) MB); $(nproc) cores"
bin=target/release/imdsguard
for i in $(seq "$runs"); do
  dir=/tmp/imdsguard-bench-nats-$$-$i
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  url=$(bash tests/nats/server.sh "$dir" "$port" $$)
  rm -f target/bench/nats-*.db* target/bench/nats-ship.json
  start=$(date +%s.%N)
  $bin ship "$input" --nats "$url" --host bench01 --state target/bench/nats-ship.json 2> target/bench/nats-ship.txt
  mid=$(date +%s.%N)
  $bin watch --nats "$url" --once --db target/bench/nats-watch.db > target/bench/nats-alerts.jsonl 2> target/bench/nats-watch.txt
  end=$(date +%s.%N)
  $bin watch "$input" --once --db target/bench/nats-file.db > /dev/null 2> target/bench/nats-file.txt
  done_file=$(date +%s.%N)
  events=$(grep -Eo 'watch stopped: [0-9]+ events' target/bench/nats-watch.txt | grep -Eo '[0-9]+ events' | grep -Eo '[0-9]+')
  awk -v a="$start" -v b="$mid" -v c="$end" -v d="$done_file" -v n="$lines" -v e="$events" -v by="$bytes" \
    'BEGIN { printf "ship %5.2f s (%6.0f lines/s, %5.1f MB/s)   watch --nats %5.2f s (%6.0f events/s, %s events)   watch FILE %5.2f s (%6.0f events/s)\n", b - a, n / (b - a), by / 1048576 / (b - a), c - b, e / (c - b), e, d - c, n / (d - c) }'
  kill "$(cat "$dir/pid")" 2> /dev/null || true
done

#!/usr/bin/env bash
# Workers sharing the log bus: RECORDS records, one in ALERT_EVERY raising an alert (curl
# reading role credentials; the others the SSM agent's connections: bench/watch.py's records;
# default every one, the worst case for the store) from HOSTS hosts (spread over the 16 partitions) are
# shipped to a local NATS JetStream server first; then W workers (`watch --nats`, each its share
# of the partitions) read them into one PostgreSQL store (a new local cluster with its default
# durability), for each W in WORKERS. The figure is the records over the time from the workers'
# start to the store holding every alert (less the second a worker waits before taking its
# share). On a machine with fewer cores than workers, they share the cores.
#   RECORDS=100000 HOSTS=64 WORKERS="1 2 4" ALERT_EVERY=1 bash bench/run-nats-workers.sh
set -euo pipefail
cd "$(dirname "$0")/.."
records=${RECORDS:-100000}
hosts=${HOSTS:-64}
workers=${WORKERS:-1 2 4}
alert_every=${ALERT_EVERY:-1}
cargo build --release -q
bin=target/release/imdsguard
work=/tmp/imdsguard-bench-workers-$$
mkdir -p "$work"
python3 - "$records" "$hosts" "$work" "$alert_every" <<'PY'
import json, sys, os
sys.path.insert(0, "bench")
from watch import record
n, hosts, work, every = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
files = [open(os.path.join(work, "h%03d.jsonl" % h), "w") for h in range(hosts)]
for i in range(n):
    r = json.loads(record(i, i // 50, i % every == 0))
    r["Hostname"] = "host%03d.corp.example" % (i % hosts)
    files[i % hosts].write(json.dumps(r) + "\n")
for f in files:
    f.close()
PY
cat "$work"/h*.jsonl > "$work/all.jsonl"
want=$($bin hunt --no-db --output jsonl "$work/all.jsonl" 2> /dev/null | grep -c '"type":"alert"' || true)
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
pg=$(bash tests/postgres/server.sh "$work/pg" "$port" $$)
echo "$records records from $hosts hosts, one in $alert_every alerting: $want alerts; $(nproc) cores"
for w in $workers; do
  nport=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  url=$(bash tests/nats/server.sh "$work/nats-$w" "$nport" $$)
  for h in $(seq 0 $((hosts - 1))); do
    f=$(printf '%s/h%03d.jsonl' "$work" "$h")
    $bin ship --nats "$url" --host "$(printf 'host%03d.corp.example' "$h")" --state "$work/ship-$w-$h.json" "$f" 2> /dev/null
  done
  psql -X -q "$pg" -c "DROP DATABASE IF EXISTS w$w" -c "CREATE DATABASE w$w"
  db=${pg%/*}/w$w
  $bin hunt --db "$db" /dev/null > /dev/null 2>&1 || true
  pids=()
  start=$(date +%s.%N)
  for i in $(seq "$w"); do
    $bin watch --nats "$url" --db "$db" > /dev/null 2> "$work/worker-$w-$i.err" &
    pids+=($!)
  done
  while :; do
    n=$(psql -X -tA "$db" -c "select count(*) from alerts" 2> /dev/null || echo 0)
    [ "${n:-0}" -ge "$want" ] && break
    sleep 0.1
  done
  end=$(date +%s.%N)
  kill "${pids[@]}" 2> /dev/null || true
  wait "${pids[@]}" 2> /dev/null || true
  kill "$(cat "$work/nats-$w/pid")" 2> /dev/null || true
  awk -v w="$w" -v a="$start" -v b="$end" -v n="$records" \
    'BEGIN { t = b - a - 1; printf "%d workers: %5.2f s  %7.0f records/s  (%5.0f per worker)\n", w, t, n / t, n / t / w }'
done

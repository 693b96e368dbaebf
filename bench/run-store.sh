#!/usr/bin/env bash
# The store's write path, SQLite file against PostgreSQL: `watch --once` over LINES Sysmon
# records (NXLog JSON, each a curl reading role credentials: one IMDS-004 alert and others, on
# 50 hosts), committed in chunks of CHUNK bytes (each chunk one transaction: its alerts, incident
# links, incidents, baselines and the file's position). PostgreSQL is a new local cluster
# (tests/postgres/server.sh) with its default durability (fsync on, synchronous_commit on), on
# loopback; SQLite is one file in WAL mode (synchronous=NORMAL). Prints wall time, alerts stored
# per second and transactions per second for each.
#   LINES=20000 CHUNK=65536 RUNS=3 bash bench/run-store.sh
set -euo pipefail
cd "$(dirname "$0")/.."
lines=${LINES:-20000}
chunk=${CHUNK:-65536}
runs=${RUNS:-3}
cargo build --release -q
mkdir -p target/bench
log=target/bench/store-sysmon-$lines.jsonl
python3 - "$lines" > "$log" <<'PY'
import json, sys
for i in range(int(sys.argv[1])):
    t = 8 * 3600 + i
    print(json.dumps({
        "EventTime": "2026-11-20 %02d:%02d:%02d" % (t // 3600 % 24, t // 60 % 60, t % 60),
        "Hostname": "web%02d" % (i % 50), "SourceModuleType": "im_msvistalog", "EventID": 1,
        "Channel": "Microsoft-Windows-Sysmon/Operational", "ProcessId": str(10000 + i),
        "Image": "C:\\Windows\\System32\\curl.exe",
        "CommandLine": "curl.exe -s http://169.254.169.254/latest/meta-data/iam/security-credentials/role-%d" % i,
        "User": "CORP\\svc-web", "ParentProcessId": "6900", "ParentImage": "C:\\Windows\\System32\\cmd.exe"}))
PY
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
pgdir=/tmp/imdsguard-bench-pg-$$
base=$(bash tests/postgres/server.sh "$pgdir" "$port" $$)
echo "input: $log ($lines records, $(($(stat -c %s "$log") / 1024)) KiB), chunks of $chunk bytes; $(nproc) cores"
for i in $(seq "$runs"); do
  for kind in sqlite postgres; do
    if [ "$kind" = sqlite ]; then
      db=target/bench/store-bench.db
      rm -f "$db" "$db-wal" "$db-shm"
    else
      psql -X -q "$base" -c "DROP DATABASE IF EXISTS bench" -c "CREATE DATABASE bench"
      db=${base%/*}/bench
    fi
    /usr/bin/time -o target/bench/store-time.txt -f '%e' \
      target/release/imdsguard watch --once --max-chunk "$chunk" --db "$db" "$log" \
      > target/bench/store-alerts.jsonl 2> target/bench/store-stderr.txt
    secs=$(cat target/bench/store-time.txt)
    alerts=$(grep -c '"rule_id"' target/bench/store-alerts.jsonl || true)
    stored=$(target/release/imdsguard alerts --db "$db" --output jsonl --limit 100000000 | wc -l)
    txs=$(( ($(stat -c %s "$log") + chunk - 1) / chunk ))
    awk -v k="$kind" -v s="$secs" -v a="$alerts" -v n="$stored" -v t="$txs" \
      'BEGIN { printf "%-8s  %6.2f s  %6d alerts printed  %6d stored  %8.0f alerts/s  %6.0f transactions/s\n", k, s, a, n, n / s, t / s }'
  done
done

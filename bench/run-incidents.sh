#!/usr/bin/env bash
# Memory of a hunt that makes many incidents: EVENTS (default 300,000) Security 5156 records of
# a binary in a user folder reaching 169.254.169.254 (IMDS-003, high), spread over HOSTS (default
# 20,000) hosts one second apart, so each host sees one every HOSTS seconds (5.5 h: longer than
# the one-hour incident gap) and every alert opens an incident: 300,000 incidents. Built from the
# first real NXLog record of ../shared/data/evtx/otrf_json/otrf_windows_imds_events.jsonl.
# Prints, per output form, the wall time and peak RSS of `imdsguard hunt --no-db -j 2`.
set -euo pipefail
cd "$(dirname "$0")/.."
events=${EVENTS:-300000}
hosts=${HOSTS:-20000}
src=${IMDSGUARD_SHARED_DATA:-../shared/data}/evtx/otrf_json/otrf_windows_imds_events.jsonl
cargo build --release -q
mkdir -p target/bench
big=target/bench/incidents-${events}-${hosts}.jsonl
if [ ! -s "$big" ]; then
  python3 - "$src" "$events" "$hosts" > "$big" <<'PY'
import datetime, json, sys
rec = json.loads(open(sys.argv[1]).readline())
n, hosts = int(sys.argv[2]), int(sys.argv[3])
t0 = datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc)
for i in range(n):
    t = t0 + datetime.timedelta(seconds=i)
    rec.update({
        "Hostname": f"HOST-{i % hosts}.corp.local",
        "Application": "\\device\\harddiskvolume4\\users\\public\\curl.exe",
        "@timestamp": t.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "EventTime": t.strftime("%Y-%m-%d %H:%M:%S"),
        "RecordNumber": i,
        "ProcessId": str(1000 + i % 5000),
    })
    print(json.dumps(rec))
PY
fi
echo "file: $big ($(($(stat -c %s "$big") / 1048576)) MB, $events events, $hosts hosts), $(nproc) cores"
for form in jsonl csv; do
  /usr/bin/time -o target/bench/time.txt -f '%e %M' \
    target/release/imdsguard hunt --no-db -j 2 --output "$form" "$big" > /dev/null 2> target/bench/incidents-stderr.txt || true
  read -r secs rss < target/bench/time.txt
  incidents=$(grep -o 'incidents [0-9]*' target/bench/incidents-stderr.txt | head -1)
  awk -v f="$form" -v s="$secs" -v r="$rss" -v i="$incidents" \
    'BEGIN { printf "hunt -j 2 --output %-6s %6.2f s  %7.1f MB peak  (%s)\n", f, s, r / 1024, i }'
done

#!/usr/bin/env bash
# A soak of the log bus: for DURATION seconds a writer appends records that each raise one alert
# (RATE a second, over HOSTS hosts, one file each) while `imdsguard ship --follow` publishes
# every file to a local NATS JetStream server and WORKERS `watch --nats` workers read the stream
# into one PostgreSQL store; every KILL_EVERY seconds one worker, in turn, is killed with SIGKILL
# and started again. At the end the writer stops, the workers drain, and the store must hold
# exactly the alerts `hunt` finds in the files (compared by rule, time and host), each once, with
# one incident per host (the correlations over a time window included: their windows are saved
# with every commit and taken over with the hosts). Prints PASS or FAIL with the counts, and how
# many of the differing lines are windowed correlations (IMDS-101, IMDS-103, IMDS-104).
#   DURATION=600 RATE=200 HOSTS=16 WORKERS=3 KILL_EVERY=30 bash bench/soak-nats.sh
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${DURATION:-600}
rate=${RATE:-200}
hosts=${HOSTS:-16}
nworkers=${WORKERS:-3}
kill_every=${KILL_EVERY:-30}
cargo build --release -q
bin=$PWD/target/release/imdsguard
work=/tmp/imdsguard-soak-nats-$$
mkdir -p "$work"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
pg=$(bash tests/postgres/server.sh "$work/pg" "$port" $$)
psql -X -q "$pg" -c "CREATE DATABASE soak"
db=${pg%/*}/soak
nport=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
url=$(bash tests/nats/server.sh "$work/nats" "$nport" $$)
$bin hunt --db "$db" /dev/null > /dev/null 2>&1 || true
# The writer: RATE records a second, host i % HOSTS, for DURATION seconds.
python3 - "$work" "$rate" "$hosts" "$duration" > "$work/writer.log" 2>&1 <<'PY' &
import json, os, sys, time
sys.path.insert(0, "bench")
from watch import record
work, rate, hosts, duration = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
files = [open(os.path.join(work, "h%03d.jsonl" % h), "a") for h in range(hosts)]
start = time.monotonic(); i = 0
while time.monotonic() - start < duration:
    due = int((time.monotonic() - start) * rate)
    while i < due:
        r = json.loads(record(i, i // 10, True))
        r["Hostname"] = "host%03d.corp.example" % (i % hosts)
        files[i % hosts].write(json.dumps(r) + "\n")
        i += 1
    for f in files:
        f.flush()
    time.sleep(0.01)
print(i)
PY
writer=$!
sleep 0.5
ships=()
for h in $(seq 0 $((hosts - 1))); do
  f=$(printf '%s/h%03d.jsonl' "$work" "$h")
  $bin ship --nats "$url" --host "$(printf 'host%03d.corp.example' "$h")" --follow --state "$work/ship-$h.json" "$f" 2>> "$work/ship.err" &
  ships+=($!)
done
start_worker() {
  $bin watch --nats "$url" --db "$db" >> "$work/worker-$1.out" 2>> "$work/worker-$1.err" &
  eval "worker_$1=$!"
}
for i in $(seq "$nworkers"); do start_worker "$i"; done
elapsed=0; turn=1; kills=0
while kill -0 "$writer" 2> /dev/null; do
  sleep 1; elapsed=$((elapsed + 1))
  if [ $((elapsed % kill_every)) -eq 0 ]; then
    eval "pid=\$worker_$turn"
    kill -9 "$pid" 2> /dev/null || true
    wait "$pid" 2> /dev/null || true
    kills=$((kills + 1))
    start_worker "$turn"
    turn=$((turn % nworkers + 1))
  fi
done
written=$(tail -1 "$work/writer.log")
# The shippers read to the files' ends, then stop; the workers drain.
sleep 2
kill "${ships[@]}" 2> /dev/null || true
wait "${ships[@]}" 2> /dev/null || true
cat "$work"/h*.jsonl > "$work/all.jsonl"
$bin hunt --no-db --output jsonl "$work/all.jsonl" 2> /dev/null \
  | python3 -c 'import json,sys; [print(v["rule_id"], v.get("time"), v.get("host")) for v in map(json.loads, sys.stdin) if v.get("type") == "alert"]' \
  | sort > "$work/want.txt"
want=$(wc -l < "$work/want.txt")
for _ in $(seq 300); do
  n=$(psql -X -tA "$db" -c "select count(*) from alerts")
  [ "$n" -ge "$want" ] && break
  sleep 1
done
for i in $(seq "$nworkers"); do eval "pid=\$worker_$i"; kill "$pid" 2> /dev/null || true; done
wait 2> /dev/null || true
$bin alerts --db "$db" --output jsonl --limit 100000000 2> /dev/null \
  | python3 -c 'import json,sys; [print(v["rule_id"], v.get("time"), v.get("host")) for v in map(json.loads, sys.stdin)]' \
  | sort > "$work/got.txt"
got=$(wc -l < "$work/got.txt")
incidents=$($bin incident --db "$db" --json --limit 100000 2> /dev/null | wc -l)
windowed='^IMDS-10[134] '
grep -Ev "$windowed" "$work/want.txt" > "$work/want-exact.txt" || true
grep -Ev "$windowed" "$work/got.txt" > "$work/got-exact.txt" || true
moved=$(diff "$work/want.txt" "$work/got.txt" | grep -c '^[<>]' || true)
echo "written $written records over ${duration}s at ${rate}/s from $hosts hosts; $nworkers workers, $kills killed with SIGKILL and restarted"
echo "alerts: hunt $want, store $got ($(wc -l < "$work/want-exact.txt") and $(wc -l < "$work/got-exact.txt") but for the windowed correlations; $moved lines differ, all windowed ones: $(diff "$work/want.txt" "$work/got.txt" | grep '^[<>]' | grep -cEv '^[<>] IMDS-10[134] ' || true) others); incidents $incidents (hosts $hosts)"
if cmp -s "$work/want.txt" "$work/got.txt" && [ "$incidents" -eq "$hosts" ]; then
  echo PASS; rm -rf "$work/h"*.jsonl "$work/all.jsonl"
else
  echo "FAIL (kept in $work)"; exit 1
fi

#!/usr/bin/env bash
# Hunt throughput on a web server access log (nginx `combined`), beside `rg -c` over the same file.
# Builds a file of SIZE_MB (default 256) from the shop's traffic in samples/logs/nginx-access.log:
# one request in 100 an SSRF payload from the sample (the rest its benign lines), each line with
# its own client address and a time one second later than the one before; then runs, RUNS times
# each (default 3), page cache warm: imdsguard hunt -j 1 (pinned to core 0), hunt -j 2,
# imdsguard events -j 1, and rg -c 169.254.169.254 (pinned to core 0).
# Prints one line per run: what, seconds, MB/s, peak RSS (MB). Hunts run with --no-db.
set -euo pipefail
cd "$(dirname "$0")/.."
size_mb=${SIZE_MB:-256}
runs=${RUNS:-3}
command -v rg >/dev/null || { apt-get update -qq && apt-get install -y -qq ripgrep >/dev/null; }
cargo build --release -q
mkdir -p target/bench
big=target/bench/access-${size_mb}m.log
if [ ! -s "$big" ]; then
  python3 - samples/logs/nginx-access.log "$size_mb" > "$big" <<'PY'
import datetime, re, sys
lines = open(sys.argv[1]).read().splitlines()
# The sample's attackers are 203.0.113.50 (the SSRF walk) and 198.51.100.23; the rest is benign.
attack = [l for l in lines if l.startswith(("203.0.113.50 ", "198.51.100.23 "))]
benign = [l for l in lines if l not in attack]
limit = int(sys.argv[2]) * 1024 * 1024
t0 = datetime.datetime(2026, 11, 1, tzinfo=datetime.timezone.utc)
stamp = re.compile(r"\[[^\]]+\]")
out, size, i = sys.stdout, 0, 0
while size < limit:
    src = attack[i // 100 % len(attack)] if i % 100 == 99 else benign[i % len(benign)]
    t = (t0 + datetime.timedelta(seconds=i)).strftime("[%d/%b/%Y:%H:%M:%S +0000]")
    client = f"198.18.{i // 256 % 256}.{i % 256}"
    line = client + src[src.index(" "):]
    line = stamp.sub(t, line, count=1) + "\n"
    out.write(line)
    size += len(line)
    i += 1
PY
fi
bytes=$(stat -c %s "$big")
mb=$(python3 -c "print($bytes / 1048576)")
echo "file: $big ($(python3 -c "print(round($mb))") MB, $(wc -l < "$big") lines), $(nproc) cores"
run() {
  local what=$1; shift
  for _ in $(seq "$runs"); do
    /usr/bin/time -o target/bench/time.txt -f '%e %M' "$@" > /dev/null 2> target/bench/web-stderr.txt || true
    read -r secs rss < target/bench/time.txt
    python3 -c "print(f'{\"$what\":<28} {$secs:6.2f} s {($mb / max($secs, 0.01)):8.0f} MB/s {$rss / 1024:7.1f} MB')"
  done
}
run "hunt -j 1" taskset -c 0 target/release/imdsguard hunt --no-db -j 1 --output jsonl "$big"
run "hunt -j 2" target/release/imdsguard hunt --no-db -j 2 --output jsonl "$big"
run "events -j 1" taskset -c 0 target/release/imdsguard events -j 1 "$big"
run "rg -c 169.254.169.254" taskset -c 0 rg -c 169.254.169.254 "$big"
grep -E "events   web-access|alerts   [0-9]" target/bench/web-stderr.txt || true

#!/usr/bin/env bash
# What the guard costs: `imdsguard mock` on loopback, asked straight and through `imdsguard proxy`
# (attribution of every connection, the policy's decision, the audit log: all on), by wrk.
# Two client shapes: keep-alive connections (an agent polling), and one connection per request
# (`Connection: close`, as curl and most SDKs ask the metadata service), each with 1 connection
# (latency) and 32 (throughput). Everything shares this machine's cores: wrk, the proxy and the
# mock. Prints one line per run: shape, connections, path, p50, p99, requests/s.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
cargo build --release -q
dur=${DURATION:-10s}
bin=target/release/imdsguard
mkdir -p target/bench
audit=target/bench/proxy-audit.jsonl
policy=target/bench/proxy-policy.toml
rm -f "$audit"*
# Every request decided by a rule that names the executable (it must be attributed to match).
cat > "$policy" <<'TOML'
mode = "enforce"
default = "deny"
[[rule]]
name = "wrk-reads-the-region"
action = "allow"
exe = ["*/wrk"]
path = ["/latest/meta-data/placement/region"]
TOML
"$bin" mock --listen 127.0.0.1:18190 --provider aws 2>/dev/null & mock=$!
"$bin" proxy --listen 127.0.0.1:18191 --upstream 127.0.0.1:18190 --policy "$policy" --audit-log "$audit" 2>/dev/null & proxy=$!
trap 'kill $mock $proxy 2>/dev/null || true' EXIT
sleep 1
run() {
  local shape=$1 conns=$2 port=$3 label=$4
  local extra=()
  [ "$shape" = close ] && extra=(-H "Connection: close")
  local threads=$(( conns < 2 ? 1 : 2 ))
  wrk -t"$threads" -c"$conns" -d"$dur" --latency "${extra[@]}" \
    "http://127.0.0.1:$port/latest/meta-data/placement/region" > target/bench/wrk.txt
  awk -v s="$shape" -v c="$conns" -v l="$label" '
    / 50%/ { p50 = $2 } / 99%/ { p99 = $2 } /Requests\/sec/ { rps = $2 }
    /Non-2xx/ { bad = $NF }
    END { printf "%-10s %3d conn  %-8s p50 %9s  p99 %9s  %10s req/s%s\n", s, c, l, p50, p99, rps, (bad ? "  NON-2xx: " bad : "") }' target/bench/wrk.txt
}
for shape in keepalive close; do
  for conns in 1 32; do
    run "$shape" "$conns" 18190 direct
    run "$shape" "$conns" 18191 proxied
  done
done
kill $proxy; wait $proxy 2>/dev/null || true
# The log rotates past 64 MiB: count every file of it.
all=$(cat "$audit"* | wc -l)
echo "audit records: $all, attributed: $(cat "$audit"* | grep -c '"attributed":true'), allowed: $(cat "$audit"* | grep -c '"decision":"allow"')"

#!/usr/bin/env bash
# Normalizer throughput on real command lines: extracts every command line and URL in the public
# logs of ../shared/data (JSON, JSON lines, Sentinel EventData, SigmaHQ regression events) into
# target/bench/corpus.txt, then runs the criterion bench over it on one core.
# Usage: bench/run-normalize.sh [criterion args...]
set -euo pipefail
cd "$(dirname "$0")/.."
data=${IMDSGUARD_SHARED_DATA:-../shared/data}
mkdir -p target/bench
if [ -d "$data" ]; then
  python3 bench/extract-commandlines.py "$data" target/bench/corpus.txt
  export IMDSGUARD_BENCH_CORPUS=$PWD/target/bench/corpus.txt
else
  echo "no $data: benchmarking the bundled samples/targets.txt only" >&2
fi
# One core: criterion runs on the calling thread; taskset keeps the OS from moving it around.
exec taskset -c 0 cargo bench -p imdsguard-target --bench normalize -- "$@"

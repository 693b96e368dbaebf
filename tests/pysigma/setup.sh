#!/usr/bin/env bash
# Installs the Python side of the conformance tests (pySigma and its backends, an EVTX parser,
# DuckDB) into target/pysigma-venv. Idempotent; needs PyPI. `cargo test` finds the venv there
# (or at $IMDSGUARD_PYSIGMA_PYTHON).
set -euo pipefail
cd "$(dirname "$0")/../.."
venv=target/pysigma-venv
req=tests/pysigma/requirements.txt
if [ -x "$venv/bin/python" ] && cmp -s "$req" "$venv/requirements.txt"; then
  exit 0
fi
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check -r "$req"
cp "$req" "$venv/requirements.txt"

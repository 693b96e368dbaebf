#!/usr/bin/env bash
# A private NATS server with JetStream for imdsguard's tests and benchmarks: listening on
# 127.0.0.1:PORT only, its store in DIR, the subject mapping of deploy/nats/imdsguard.conf
# (records published to imdsguard.logs.<host> land on imdsguard.part.<partition>.<host>). It
# stops, and DIR is removed, when process WATCH has exited. Prints the URL. Exit status 3: no
# nats-server installed (Debian's nats-server package; .ci/run installs it). With `tls`: TLS only,
# a certificate for localhost and 127.0.0.1 signed by DIR/ca.pem (DIR/other-ca.pem signed
# nothing), and one user, imdsguard, password s3cret; the URL printed is tls://.
#   bash tests/nats/server.sh DIR PORT WATCH [tls]
set -euo pipefail
dir=$1 port=$2 watch=$3 tls=${4:-}
here=$(cd "$(dirname "$0")/../.." && pwd)
if ! command -v nats-server > /dev/null; then
  echo "no nats-server here (Debian's nats-server package)" >&2
  exit 3
fi
mkdir -p "$dir"
# An included file is read relative to the including one.
cp "$here/deploy/nats/imdsguard.conf" "$dir/imdsguard.conf"
cat > "$dir/server.conf" <<CONF
listen: 127.0.0.1:$port
jetstream { store_dir: "$dir/js" }
include "imdsguard.conf"
CONF
scheme=nats
if [ "$tls" = tls ]; then
  bash "$here/tests/tls/certs.sh" "$dir" DNS:localhost,IP:127.0.0.1 \
    || { echo "openssl could not make the test certificates" >&2; exit 1; }
  cat >> "$dir/server.conf" <<CONF
tls { cert_file: "$dir/server.crt", key_file: "$dir/server.key" }
authorization { users: [ { user: imdsguard, password: s3cret } ] }
CONF
  scheme=tls
fi
setsid nats-server -c "$dir/server.conf" > "$dir/server.log" 2>&1 < /dev/null &
pid=$!
for _ in $(seq 100); do
  grep -q "Server is ready" "$dir/server.log" 2> /dev/null && break
  kill -0 "$pid" 2> /dev/null || { cat "$dir/server.log" >&2; exit 1; }
  sleep 0.05
done
grep -q "Server is ready" "$dir/server.log" || { cat "$dir/server.log" >&2; exit 1; }
echo "$pid" > "$dir/pid"
setsid bash -c "while kill -0 $watch 2>/dev/null; do sleep 1; done
  kill \$(cat $dir/pid) 2>/dev/null; sleep 1; rm -rf $dir" < /dev/null > /dev/null 2>&1 &
echo "$scheme://127.0.0.1:$port"

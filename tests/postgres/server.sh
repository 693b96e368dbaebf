#!/usr/bin/env bash
# A private PostgreSQL server for imdsguard's tests and benchmarks: a new cluster in DIR (initdb),
# listening on 127.0.0.1:PORT only (and a socket in DIR), the role `imdsguard` trusted from there,
# with TLS: a certificate for `localhost` signed by a certificate authority made here
# (DIR/ca.pem; DIR/other-ca.pem is one that signed nothing).
# It stops, and DIR is removed, when process WATCH (the test binary) has exited. Prints the URL
# of the `postgres` database. Exit status 3: no PostgreSQL server installed (Debian's
# `postgresql` package; .ci/run installs it).
#   bash tests/postgres/server.sh DIR PORT WATCH [setting=value…]
set -euo pipefail
dir=$1 port=$2 watch=$3
shift 3
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
if [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; then
  echo "no PostgreSQL server here (Debian's postgresql package)" >&2
  exit 3
fi
as=()
mkdir -p "$dir"
# PostgreSQL refuses to run as root: as root, the cluster belongs to the package's user.
if [ "$(id -u)" = 0 ]; then
  as=(runuser -u postgres --)
  chown postgres "$dir"
fi
"${as[@]}" "$bin/initdb" -D "$dir/data" -U imdsguard --auth=trust -E UTF8 --no-locale > "$dir/initdb.log" 2>&1 \
  || { cat "$dir/initdb.log" >&2; exit 1; }
# The certificate authority and the server's certificate (for the name localhost only).
bash "$(dirname "$0")/../tls/certs.sh" "$dir" DNS:localhost \
  || { echo "openssl could not make the test certificates" >&2; exit 1; }
if [ "$(id -u)" = 0 ]; then chown postgres "$dir/server.key" "$dir/server.crt"; fi
opts="-c ssl=on -c ssl_cert_file=$dir/server.crt -c ssl_key_file=$dir/server.key"
opts="$opts -c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$dir -c max_connections=200"
for s in "$@"; do opts="$opts -c $s"; done
"${as[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -o "$opts" -w -t 60 start > /dev/null \
  || { cat "$dir/server.log" >&2; exit 1; }
# Stopped when the process that asked for it is gone (a test binary cannot stop it at exit).
setsid bash -c "while kill -0 $watch 2>/dev/null; do sleep 1; done
  ${as[*]} $bin/pg_ctl -D $dir/data -m immediate stop > /dev/null 2>&1; rm -rf $dir" \
  < /dev/null > /dev/null 2>&1 &
echo "postgres://imdsguard@127.0.0.1:$port/postgres"

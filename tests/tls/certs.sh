#!/usr/bin/env bash
# Certificates for the tests' servers that speak TLS: a certificate authority (DIR/ca.pem), one
# that signed nothing (DIR/other-ca.pem), and the server's certificate for SAN (openssl's
# subjectAltName, such as `DNS:localhost,IP:127.0.0.1`) signed by the first: DIR/server.crt, its
# key DIR/server.key (mode 600). Two days of validity, P-256 keys.
#   bash tests/tls/certs.sh DIR SAN
set -euo pipefail
dir=$1 san=$2
cd "$dir"
for ca in ca other-ca; do
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj "/CN=imdsguard test $ca" -keyout "$ca.key" -out "$ca.pem" 2> /dev/null
done
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj /CN=localhost \
  -keyout server.key -out server.csr 2> /dev/null
printf 'subjectAltName=%s\n' "$san" > server.ext
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
  -extfile server.ext -out server.crt 2> /dev/null
chmod 600 server.key

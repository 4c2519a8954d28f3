#!/bin/sh
# tls_certs.sh DIR - a throw-away test PKI for the mux-stress TLS tests:
#   ca.pem/ca.key        a CA
#   srv.pem/srv.key      signed by it for DNS:localhost and IP:127.0.0.1
#   other-ca.pem         an unrelated CA (a client trusting it must refuse srv)
#   name.pem/name.key    signed by ca for DNS:other.example only (name mismatch)
#   junk.pem             not a certificate
set -eu
d=$1
cd "$d"
key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
ca() {
    key "$1.key"
    openssl req -x509 -new -key "$1.key" -out "$1.pem" -days 2 -subj "/CN=$2" 2>/dev/null
}
leaf() { # name SAN
    key "$1.key"
    openssl req -new -key "$1.key" -out "$1.csr" -subj "/CN=$1" 2>/dev/null
    printf 'subjectAltName=%s\nbasicConstraints=CA:FALSE\n' "$2" > "$1.ext"
    openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
        -extfile "$1.ext" -out "$1.pem" 2>/dev/null
}
ca ca "mux-stress test CA"
ca other-ca "an unrelated CA"
leaf srv "DNS:localhost,IP:127.0.0.1"
leaf name "DNS:other.example"
echo "not a certificate" > junk.pem

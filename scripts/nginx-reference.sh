#!/usr/bin/env bash
# The reference for `passerelle bench --handshakes`: an nginx asking for
# client certificates (`ssl_verify_client on`) on the same example PKI as
# the gateway (the gateway's P-256 certificate and key, the agencies' CAs),
# TLS 1.3 only, sessions resumable, answering 200 to every request; then
# the same handshake bench against it and against a passerelle gateway,
# one after the other on the same machine. Needs nginx on the PATH (it is
# not installed by CI, and nothing here runs in CI). Every argument goes to
# both `passerelle bench --handshakes` runs.
#
#   scripts/nginx-reference.sh --connections 2000 --concurrency 4
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v nginx >/dev/null 2>&1; then
  echo "nginx is not installed; nothing to compare against" >&2
  exit 2
fi
cargo build --release --quiet --bin passerelle
bin="$PWD/target/release/passerelle"
dir=$(mktemp -d)
port=${NGINX_PORT:-18444}
nginx_pid=""
cleanup() {
  if [ -n "$nginx_pid" ]; then kill "$nginx_pid" 2>/dev/null || true; wait "$nginx_pid" 2>/dev/null || true; fi
  rm -rf "$dir"
}
trap cleanup EXIT
"$bin" pki init "$dir/pki" >/dev/null
cat "$dir"/pki/police/ca.pem "$dir"/pki/vsse/ca.pem "$dir"/pki/oversight/ca.pem >"$dir/clients-ca.pem" 2>/dev/null ||
  cat "$dir"/pki/police/ca.pem "$dir"/pki/vsse/ca.pem >"$dir/clients-ca.pem"
cat >"$dir/nginx.conf" <<CONF
# As many workers as cores, as the gateway's runtime has threads.
worker_processes auto;
daemon off;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $dir/body;
  proxy_temp_path $dir/proxy;
  fastcgi_temp_path $dir/fastcgi;
  uwsgi_temp_path $dir/uwsgi;
  scgi_temp_path $dir/scgi;
  server {
    listen 127.0.0.1:$port ssl;
    ssl_protocols TLSv1.3;
    ssl_certificate $dir/pki/gateway/cert.pem;
    ssl_certificate_key $dir/pki/gateway/key.pem;
    ssl_client_certificate $dir/clients-ca.pem;
    ssl_verify_client on;
    ssl_verify_depth 2;
    ssl_session_cache shared:SSL:10m;
    ssl_session_tickets on;
    location / { return 200 "ok\n"; }
  }
}
CONF
nginx -c "$dir/nginx.conf" -p "$dir" &
nginx_pid=$!
sleep 1
echo "== nginx (ssl_verify_client on), load average $(cut -d' ' -f1-3 /proc/loadavg)"
"$bin" bench --handshakes --config "$dir/pki/stations/police-lo-rabat/client.toml" \
  --gateway "127.0.0.1:$port" "$@"
echo "== passerelle, load average $(cut -d' ' -f1-3 /proc/loadavg)"
scripts/bench-gateway.sh --handshakes "$@"

#!/usr/bin/env bash
# Runs `passerelle bench` against a gateway of its own: a release build, a
# fresh example PKI in a temporary directory, the per-address and
# per-principal limits lifted (the bench is one principal from one
# address: exactly what those limits exist to stop), the gateway started
# as its own process, the bench given its pid, then the gateway stopped
# and the directory removed. Every argument goes to `passerelle bench`,
# but `--cycle`, which adds the example VSSE CT desk as the recipient that
# fetches and acknowledges the items while they are submitted (with
# `--batch N`, N at a time in one request each).
#
#   scripts/bench-gateway.sh --stations 16 --duration 10
#   scripts/bench-gateway.sh --stations 16 --duration 10 --rate 2000
#   scripts/bench-gateway.sh --stations 16 --duration 10 --fresh-connections
#   scripts/bench-gateway.sh --stations 16 --duration 10 --cycle
#   scripts/bench-gateway.sh --stations 16 --duration 10 --cycle --batch 50
#   scripts/bench-gateway.sh --handshakes --connections 2000 --concurrency 4
#
# Print the load average beside the figures: on a shared machine it is
# part of the result. PASSERELLE_BIN names another build of the binary
# (gateway and generator both), to compare two versions in one sitting.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -n "${PASSERELLE_BIN:-}" ]; then
  bin="$PASSERELLE_BIN"
else
  cargo build --release --quiet --bin passerelle
  bin="$PWD/target/release/passerelle"
fi
dir=$(mktemp -d)
port=${BENCH_PORT:-18443}
gateway=""
cleanup() {
  if [ -n "$gateway" ]; then kill "$gateway" 2>/dev/null || true; wait "$gateway" 2>/dev/null || true; fi
  rm -rf "$dir"
}
trap cleanup EXIT
"$bin" pki init "$dir/pki" --listen "127.0.0.1:$port" >/dev/null
# Lift the limits one busy principal from one address would hit.
sed -i '/^\[limits\]/a handshakes_per_address_per_second = 1000000\nhandshake_burst_per_address = 1000000\nhandshakes_pending_per_address = 256\nrequests_per_principal_per_second = 1000000\nrequest_burst_per_principal = 1000000\nconnections_per_principal = 512' "$dir/pki/gateway.toml"
RUST_LOG=${RUST_LOG:-warn} "$bin" serve --config "$dir/pki/gateway.toml" >"$dir/gateway.log" 2>&1 &
gateway=$!
for _ in $(seq 1 100); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
  sleep 0.1
done
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
args=()
for a in "$@"; do
  if [ "$a" = --cycle ]; then
    args+=(--recipient "$dir/pki/stations/vsse-analysis-ct/client.toml")
  else
    args+=("$a")
  fi
done
status=0
"$bin" bench --config "$dir/pki/stations/police-lo-rabat/client.toml" --pid "$gateway" "${args[@]}" || status=$?
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
exit "$status"

#!/usr/bin/env bash
# The embedded store, one gateway instance on PostgreSQL and two instances
# on one PostgreSQL database, measured side by side in one run with the
# same load (`passerelle bench`, release build), on this machine: database,
# instances and load generator together.
#
#   scripts/bench-postgres.sh                 # 16 stations, 10 s per run
#   STATIONS=16 DURATION=10 RATE=500 scripts/bench-postgres.sh
#
# What it does, in order (each gateway is stopped before the next starts):
#   1. a PostgreSQL server of its own (Debian's `postgresql`: initdb in a
#      temporary directory, as the `postgres` user when run as root, fsync
#      and synchronous_commit on), a fresh example PKI, the per-address and
#      per-principal limits lifted (the bench is one principal from one
#      address: exactly what those limits exist to stop);
#   2. closed loop, $STATIONS stations: the embedded store; one instance on
#      PostgreSQL; two instances on one database, each driven by its own
#      bench process with half the stations, run at once (their items/s
#      add up);
#   3. open loop, $RATE items/s offered in all: two instances, half each,
#      for the p99 latency.
# After each two-instance run it prints, from pg_stat_statements, how many
# appending transactions the two made and how long they waited for the
# sequencer's lock (`sequencer:`). Print the load average beside the
# figures: on a shared machine it is part of the result. PASSERELLE_BIN names another build of the binary
# (gateways and generators both), to compare two versions in one sitting.
set -euo pipefail
cd "$(dirname "$0")/.."
STATIONS=${STATIONS:-16}
DURATION=${DURATION:-10}
RATE=${RATE:-500}
if [ -n "${PASSERELLE_BIN:-}" ]; then
  bin="$PASSERELLE_BIN"
else
  cargo build --release --quiet --bin passerelle
  bin="$PWD/target/release/passerelle"
fi
pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -x "$pgbin/initdb" ] || { echo "PostgreSQL's server binaries are missing: apt-get install postgresql" >&2; exit 2; }
dir=$(mktemp -d -p /tmp)
chmod 755 "$dir"
pids=()
as_pg=()
[ "$(id -u)" = 0 ] && as_pg=(runuser -u postgres --)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# Gateways are started in command substitutions, so they are not this
# shell's children: wait for them to be gone (at most 30 s each).
stop() {
  for p in "$@"; do
    kill "$p" 2>/dev/null || continue
    for _ in $(seq 1 300); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
  done
}
cleanup() {
  stop "${pids[@]}"
  [ -n "${pg:-}" ] && "${as_pg[@]}" "$pgbin/pg_ctl" stop -m fast -D "$dir/pg/data" >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap cleanup EXIT

# 1. PostgreSQL and the PKI.
mkdir -p "$dir/pg"
[ "$(id -u)" = 0 ] && chown postgres "$dir/pg"
"${as_pg[@]}" "$pgbin/initdb" -U postgres --auth=trust -E UTF8 --locale=C -D "$dir/pg/data" >/dev/null
pgport=$(free_port)
"${as_pg[@]}" "$pgbin/pg_ctl" start -w -D "$dir/pg/data" -l "$dir/pg/log" \
  -o "-p $pgport -k $dir/pg -c listen_addresses=127.0.0.1 -c fsync=on -c synchronous_commit=on \
      -c shared_preload_libraries=pg_stat_statements -c pg_stat_statements.track=all" >/dev/null
pg=1
psql() { "${as_pg[@]}" "$pgbin/psql" -q -h 127.0.0.1 -p "$pgport" -U postgres "$@"; }
psql -c "CREATE DATABASE one" -c "CREATE DATABASE two"
psql -d two -c "CREATE EXTENSION pg_stat_statements"
# How long the two instances' appending transactions waited for the
# sequencer's lock (its statement's time is the wait), since the last reset.
sequencer() {
  psql -d two -tA -c "SELECT 'sequencer: ' || sum(calls) || ' appending transactions, '
      || round(sum(total_exec_time)::numeric / 1000, 2) || ' s waiting for its lock in all, '
      || round((sum(total_exec_time) / sum(calls))::numeric, 2) || ' ms each'
    FROM pg_stat_statements WHERE query LIKE 'SELECT pg_advisory_xact_lock%'
      AND dbid = (SELECT oid FROM pg_database WHERE datname = 'two')"
}
p1=$(free_port); p2=$(free_port)
"$bin" pki init "$dir/pki" --listen "127.0.0.1:$p1" >/dev/null
sed -i '/^\[limits\]/a handshakes_per_address_per_second = 1000000\nhandshake_burst_per_address = 1000000\nhandshakes_pending_per_address = 256\nrequests_per_principal_per_second = 1000000\nrequest_burst_per_principal = 1000000\nconnections_per_principal = 512' "$dir/pki/gateway.toml"
station="$dir/pki/stations/police-lo-rabat/client.toml"

# A configuration of the PKI's gateway: store $1, port $2, key directory $3.
config() {
  local out="$dir/pki/gateway-$4.toml"
  sed -e "s|^store = .*|store = \"$1\"|" -e "s|^listen = .*|listen = \"127.0.0.1:$2\"|" \
      -e "s|^key = \"gateway/audit-key.pem\"|key = \"$3/audit-key.pem\"|" "$dir/pki/gateway.toml" >"$out"
  echo "$out"
}
# Starts the gateway of config $1 (port $2); prints its pid.
serve() {
  RUST_LOG=${RUST_LOG:-warn} "$bin" serve --config "$1" >>"$dir/gateway.log" 2>&1 &
  local pid=$!
  # Up to 60 s: a loaded machine starts slowly.
  for _ in $(seq 1 600); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$2") 2>/dev/null; then echo "$pid"; return; fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "the gateway of $1 did not start:" >&2
  tail -5 "$dir/gateway.log" >&2
  exit 1
}
# Fresh keys directories: each run is a log of its own.
keys() { mkdir -p "$dir/pki/$1"; cp -p "$dir/pki/gateway/audit-key.pem" "$dir/pki/$1/"; }
bench() { "$bin" bench --config "$station" --duration "$DURATION" "$@"; }

echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== embedded store (SQLite), one instance, $STATIONS stations"
keys k-embedded
c=$(config "data/bench.sqlite3" "$p1" k-embedded embedded)
g=$(serve "$c" "$p1"); pids+=("$g")
bench --gateway "127.0.0.1:$p1" --stations "$STATIONS" --pid "$g"
stop "$g"

echo "== PostgreSQL, one instance, $STATIONS stations"
keys k-one
c=$(config "postgres://postgres@127.0.0.1:$pgport/one" "$p1" k-one one)
g=$(serve "$c" "$p1"); pids+=("$g")
bench --gateway "127.0.0.1:$p1" --stations "$STATIONS" --pid "$g"
stop "$g"

echo "== PostgreSQL, two instances on one database, $((STATIONS / 2)) stations each, at once"
keys k-a; keys k-b
ca=$(config "postgres://postgres@127.0.0.1:$pgport/two" "$p1" k-a a)
cb=$(config "postgres://postgres@127.0.0.1:$pgport/two" "$p2" k-b b)
ga=$(serve "$ca" "$p1"); pids+=("$ga")
# The second instance joins with a head file of the first (README, PostgreSQL).
cp -p "$dir/pki/k-a/audit-key.head" "$dir/pki/k-b/"
gb=$(serve "$cb" "$p2"); pids+=("$gb")
psql -d two -tAc "SELECT pg_stat_statements_reset()" >/dev/null
bench --gateway "127.0.0.1:$p1" --stations "$((STATIONS / 2))" --pid "$ga" >"$dir/a.out" &
ba=$!
bench --gateway "127.0.0.1:$p2" --stations "$((STATIONS / 2))" --pid "$gb" >"$dir/b.out" &
bb=$!
wait "$ba" "$bb"
echo "-- instance A"; cat "$dir/a.out"
echo "-- instance B"; cat "$dir/b.out"
sequencer

echo "== PostgreSQL, two instances, open loop: $RATE items/s offered in all, half to each"
psql -d two -tAc "SELECT pg_stat_statements_reset()" >/dev/null
bench --gateway "127.0.0.1:$p1" --stations "$((STATIONS / 2))" --rate "$((RATE / 2))" >"$dir/a.out" &
ba=$!
bench --gateway "127.0.0.1:$p2" --stations "$((STATIONS / 2))" --rate "$((RATE / 2))" >"$dir/b.out" &
bb=$!
wait "$ba" "$bb"
echo "-- instance A"; cat "$dir/a.out"
echo "-- instance B"; cat "$dir/b.out"
sequencer
stop "$ga" "$gb"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"

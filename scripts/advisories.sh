#!/usr/bin/env bash
# The RustSec advisory check (cargo-deny), against the live database when
# it can be fetched, else against the snapshot kept in the project.
#
#   scripts/advisories.sh                       # live if reachable, else the snapshot
#   scripts/advisories.sh --snapshot            # the snapshot only
#   scripts/advisories.sh --make DIR            # refresh the snapshot from a clone of
#                                               # https://github.com/rustsec/advisory-db
#
# The snapshot (supply-chain/advisory-db.tar.gz, its commit and date in
# supply-chain/advisory-db.txt) lets a machine that cannot reach GitHub
# still check every dependency against every advisory published up to the
# snapshot's date. It is said loudly which database was used: a snapshot
# does not know of advisories published after it.
# PASSERELLE_REQUIRE_ADVISORIES=1 fails the run when the live database
# cannot be fetched.
set -euo pipefail
cd "$(dirname "$0")/.."
snapshot=supply-chain/advisory-db.tar.gz
about=supply-chain/advisory-db.txt

banner() {
  echo "############################################################"
  for line in "$@"; do echo "# $line"; done
  echo "############################################################"
}

if [ "${1:-}" = --make ]; then
  src=${2:?usage: scripts/advisories.sh --make ADVISORY_DB_CLONE}
  commit=$(git -C "$src" rev-parse HEAD)
  date=$(git -C "$src" show -s --format=%cI HEAD)
  # Reproducible: sorted names, one owner, the snapshot's own date.
  tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="$date" \
    -C "$src" -cf - crates LICENSE.txt LICENSES | gzip -n -9 > "$snapshot"
  printf 'commit %s\ndate %s\nsource https://github.com/rustsec/advisory-db\nadvisories %s\n' \
    "$commit" "$date" "$(tar tzf "$snapshot" | grep -c '^crates/.*\.md$')" > "$about"
  cat "$about"
  exit 0
fi

# cargo-deny keeps each database under db-path, in a directory named
# after its URL; pointing db-path at a directory of our own leaves the
# user's ~/.cargo alone.
check_with_db_path() {
  local db_path=$1 config
  config=$(mktemp)
  sed "s|^\[advisories\]$|[advisories]\ndb-path = \"$db_path\"|" deny.toml > "$config"
  local status=0
  cargo deny --log-level warn --offline --config "$config" check advisories || status=$?
  rm -f "$config"
  return "$status"
}

if [ "${1:-}" != --snapshot ] && cargo deny --log-level error fetch db; then
  echo "advisories: checked against the live RustSec database"
  cargo deny --log-level warn --offline check advisories
  exit 0
fi
if [ "${1:-}" != --snapshot ] && [ "${PASSERELLE_REQUIRE_ADVISORIES:-0}" = 1 ]; then
  banner "ADVISORIES: the live RustSec database could not be fetched" \
         "and PASSERELLE_REQUIRE_ADVISORIES=1 asks for it."
  exit 1
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# The directory name cargo-deny derives from the default database URL.
db="$work/advisory-db-3157b0e258782691"
mkdir -p "$db"
tar xzf "$snapshot" -C "$db"
date=$(sed -n 's/^date //p' "$about")
commit=$(sed -n 's/^commit //p' "$about")
# cargo-deny reads the database's date from its git HEAD: one commit,
# dated as the snapshot, so that its staleness is the snapshot's.
git -C "$db" init -q -b main
git -C "$db" add -A
GIT_AUTHOR_DATE="$date" GIT_COMMITTER_DATE="$date" \
  git -C "$db" -c user.name=snapshot -c user.email=snapshot@invalid commit -q -m "advisory-db $commit"
banner "ADVISORIES CHECKED AGAINST A SNAPSHOT, not the live database:" \
       "RustSec advisory-db at commit ${commit:0:12}, dated $date." \
       "Advisories published after that date are not known to this check."
check_with_db_path "$work"

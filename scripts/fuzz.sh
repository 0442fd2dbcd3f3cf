#!/usr/bin/env bash
# Runs every cargo-fuzz target (or the ones named) for SECONDS each, one
# after the other at the lowest CPU priority, then prints one line per
# target: seconds run, executions, coverage (libFuzzer's cov and ft),
# corpus size and crashes.
#
#   scripts/fuzz.sh                 # every target, 240 s each
#   scripts/fuzz.sh 3600            # every target, an hour each
#   scripts/fuzz.sh 600 tiles receipt
#
# Needs nightly Rust and cargo-fuzz (`cargo install cargo-fuzz`). The
# committed seeds (fuzz/corpus/<target>/) are only read: what the fuzzer
# finds goes to fuzz/work/corpus/<target>/ (kept between runs, so a second
# run starts where the first stopped) and crashes to
# fuzz/artifacts/<target>/; both are ignored by git. A target with a
# dictionary (fuzz/dict/<target>.dict) gets it. Exits 1 if any target
# crashed, leaked, ran out of memory or timed out.
set -euo pipefail

secs="${1:-240}"
shift || true
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root/fuzz"

# release, debug assertions and overflow checks, AddressSanitizer: the
# cargo-fuzz defaults.
nice -n 19 cargo +nightly fuzz build

if [ "$#" -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(cargo +nightly fuzz list)
fi

mkdir -p work/logs
failed=0
rows=()
for t in "${targets[@]}"; do
  mkdir -p "work/corpus/$t" "artifacts/$t"
  before=$(find "artifacts/$t" -type f | wc -l)
  dict=()
  if [ -f "dict/$t.dict" ]; then dict=("-dict=dict/$t.dict"); fi
  start=$(date +%s)
  # -timeout: an input taking 10 s is a hang; -rss_limit_mb: 2 GiB is an
  # OOM. libFuzzer writes new inputs to the first corpus directory only.
  if nice -n 19 cargo +nightly fuzz run "$t" "work/corpus/$t" "corpus/$t" -- \
      -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 \
      -print_final_stats=1 "${dict[@]}" >"work/logs/$t.log" 2>&1; then
    status=ok
  else
    status=FAILED
    failed=1
  fi
  ran=$(($(date +%s) - start))
  # The last status line: "#N DONE cov: C ft: F corp: K/size ...".
  last=$(grep -E '^#[0-9]+' "work/logs/$t.log" | tail -n 1 || true)
  execs=$(sed -nE 's/^stat::number_of_executed_units: *([0-9]+).*/\1/p' "work/logs/$t.log" | tail -n 1)
  cov=$(sed -nE 's/.* cov: ([0-9]+).*/\1/p' <<<"$last")
  ft=$(sed -nE 's/.* ft: ([0-9]+).*/\1/p' <<<"$last")
  corp=$(find "work/corpus/$t" "corpus/$t" -type f | wc -l)
  crashes=$(($(find "artifacts/$t" -type f | wc -l) - before))
  rows+=("$(printf '%-20s %6s %12s %7s %7s %7s %8s  %s' "$t" "$ran" "${execs:-?}" "${cov:-?}" "${ft:-?}" "$corp" "$crashes" "$status")")
done

printf '%-20s %6s %12s %7s %7s %7s %8s  %s\n' target seconds executions cov ft corpus crashes status
printf '%s\n' "${rows[@]}"
echo "logs: fuzz/work/logs/<target>.log; crashes: fuzz/artifacts/<target>/"
exit "$failed"

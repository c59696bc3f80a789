#!/usr/bin/env bash
# bench/fuzz.sh: runs each libFuzzer target of fuzz/ for a given time and
# reports executions, executions per second, coverage, corpus growth and
# crashes. See bench/README.md.
#
#   bench/fuzz.sh SECONDS [BUILD_DIR] [TARGET...]
#
# BUILD_DIR is a build configured with -Dfuzz=true (default: build-fuzz-opt,
# else build-fuzz); TARGET names such as "webhook" or "fuzz-webhook" (default:
# all). JOBS=N runs N targets at a time (default 1; one core each).
# Each target fuzzes a scratch copy of fuzz/corpus/<target>, fuzz/grown/<target>
# and fuzz/crashers/<target> under $TMPDIR (kept, and printed): the committed
# corpora are never changed (fuzz/grow.sh keeps what a run found). A run
# stops at its first crash; the crash file is in the scratch directory's
# artifacts/. Exits 1 when anything crashed.
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")/.."

if [ $# -lt 1 ] || ! [[ $1 =~ ^[0-9]+$ ]]; then
  sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
fi
seconds=$1
shift
build=
if [ $# -gt 0 ] && [ -d "$1" ]; then
  build=$1
  shift
fi
if [ -z "$build" ]; then
  build=build-fuzz-opt
  [ -x "$build/fuzz/fuzz-webhook" ] || build=build-fuzz
fi
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(webhook signature receiver-request rxline markup phone graph records)
fi
jobs=${JOBS:-1}

ninja -C "$build" >/dev/null
scratch=$(mktemp -d "${TMPDIR:-/tmp}/fuzz-bench.XXXXXX")
export G_SLICE=always-malloc
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

run_one() {
  local t=${1#fuzz-} dir=$scratch/${1#fuzz-}
  mkdir -p "$dir/corpus" "$dir/artifacts"
  cp fuzz/corpus/"$t"/* "$dir/corpus/" 2>/dev/null || true
  cp fuzz/grown/"$t"/* "$dir/corpus/" 2>/dev/null || true
  cp fuzz/crashers/"$t"/* "$dir/corpus/" 2>/dev/null || true
  ls "$dir/corpus" | wc -l >"$dir/seeds"
  # -rss_limit_mb: AddressSanitizer's quarantine alone takes 256 MB
  "$build/fuzz/fuzz-$t" -max_total_time="$seconds" -print_final_stats=1 -rss_limit_mb=4096 \
    -artifact_prefix="$dir/artifacts/" "$dir/corpus" >"$dir/log" 2>&1 || true
}

report() {
  local t=$1 dir=$scratch/$1 log=$scratch/$1/log took execs rate last cov corpus crashes
  took=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log")
  if [ -z "$took" ]; then
    # stopped early: by a crash (see crashes) or by a signal
    took="stopped"
    grep -q 'run interrupted' "$log" && took="interrupted"
  fi
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
  last=$(grep -E '^#[0-9]+' "$log" | tail -1)
  cov=$(sed -n 's/.* cov: \([0-9]*\) .*/\1/p' <<<"$last")
  corpus=$(sed -n 's/.* corp: \([0-9]*\)\/.*/\1/p' <<<"$last")
  crashes=$(find "$dir/artifacts" -type f | wc -l)
  printf '| fuzz-%s | %s | %s | %s | %s | %s → %s | %s |\n' "$t" "$took" "${execs:-?}" \
    "${rate:-?}" "${cov:-?}" "$(cat "$dir/seeds")" "${corpus:-?}" "$crashes"
  [ "$crashes" -eq 0 ] || find "$dir/artifacts" -type f | sed 's/^/    crash: /'
  [ -n "$execs" ] || echo "    no statistics: see $log"
}

echo "fuzzing ${#targets[@]} targets for ${seconds}s each, $jobs at a time, build $build, scratch $scratch"
running=0
for t in "${targets[@]}"; do
  run_one "$t" &
  running=$((running + 1))
  if [ "$running" -ge "$jobs" ]; then
    wait -n
    running=$((running - 1))
  fi
done
wait

echo
echo "| target | seconds | executions | exec/s | coverage (edges) | corpus (files, start → end) | crashes |"
echo "|---|---|---|---|---|---|---|"
status=0
for t in "${targets[@]}"; do
  report "${t#fuzz-}"
  [ -z "$(find "$scratch/${t#fuzz-}/artifacts" -type f)" ] || status=1
done
echo
echo "logs and grown corpora: $scratch"
exit $status

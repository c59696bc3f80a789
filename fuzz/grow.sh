#!/usr/bin/env bash
# fuzz/grow.sh: keeps what a timed run found, so that CI replays it too.
#
#   fuzz/grow.sh BUILD_DIR TARGET CORPUS_DIR...
#
# Adds to fuzz/grown/TARGET/ the inputs of CORPUS_DIR... (e.g. the grown
# corpus bench/fuzz.sh leaves in its scratch directory) that reach coverage
# that the seeds (fuzz/corpus/TARGET), the saved crashers and
# fuzz/grown/TARGET do not reach yet, as libFuzzer's -merge=1 picks them
# (named by the SHA-1 of their content). Prints how many were added.
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")/.."

if [ $# -lt 3 ]; then
  sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
fi
build=$1
target=${2#fuzz-}
shift 2
exe=$build/fuzz/fuzz-$target
[ -x "$exe" ] || { echo "no $exe: build with -Dfuzz=true first" >&2; exit 2; }

base=$(mktemp -d "${TMPDIR:-/tmp}/fuzz-grow.XXXXXX")
trap 'rm -rf "$base"' EXIT
mkdir -p "fuzz/grown/$target" "$base/all"
for dir in "fuzz/corpus/$target" "fuzz/crashers/$target" "fuzz/grown/$target"; do
  find "$dir" -maxdepth 1 -type f -size +0 -exec cp {} "$base/all/" \;
done
ls "$base/all" | sort >"$base/before"
G_SLICE=always-malloc ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
  "$exe" -merge=1 "$base/all" "$@" >"$base/log" 2>&1 || { tail -20 "$base/log" >&2; exit 1; }
ls "$base/all" | sort | comm -13 "$base/before" - >"$base/new"
while read -r name; do
  cp "$base/all/$name" "fuzz/grown/$target/$name"
done <"$base/new"
echo "fuzz-$target: $(wc -l <"$base/new") inputs added to fuzz/grown/$target ($(find "fuzz/grown/$target" -type f -size +0 | wc -l) in all)"

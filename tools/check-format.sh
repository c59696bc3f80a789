#!/bin/sh
# tools/check-format.sh [SOURCE_ROOT]: every C file of the project is laid out
# as its .clang-format says (clang-format 14, Debian 12: `apt-get install
# clang-format`). Prints the files that are not and exits 1; with no
# clang-format installed it says so and exits 77 (meson: skipped).
# To lay a file out: clang-format -i FILE
root=${1:-$(dirname "$0")/..}
cd "$root" || exit 2
if ! command -v clang-format >/dev/null 2>&1; then
  echo "SKIP: clang-format is not installed"
  exit 77
fi
if [ -d .git ] && command -v git >/dev/null 2>&1; then
  files=$(git ls-files '*.c' '*.h')
else
  files=$(find plugin tests fuzz bench -name '*.[ch]' 2>/dev/null)
fi
bad=0
for f in $files; do
  if ! clang-format --dry-run --Werror "$f" >/dev/null 2>&1; then
    echo "not laid out as .clang-format says: $f (clang-format -i $f)"
    bad=1
  fi
done
[ "$bad" = 0 ] && echo "format: $(echo "$files" | wc -w) files as .clang-format says"
exit "$bad"

#!/usr/bin/env python3
"""testcount.py: sums meson test logs into the line CI reads.

Usage: testcount.py BUILD_RC TESTLOG.json [TESTLOG.json ...]
Prints "tests: N passed, M failed" (", K skipped" when any) as its last line
and exits non-zero when anything failed, a log is missing, or BUILD_RC != 0.
"""
import json
import sys

PASSED = {"OK", "EXPECTEDFAIL"}
SKIPPED = {"SKIP"}


def main(argv):
    build_rc = int(argv[1])
    passed = failed = skipped = 0
    for path in argv[2:]:
        try:
            with open(path, encoding="utf-8") as f:
                for line in f:
                    line = line.strip()
                    if not line:
                        continue
                    result = json.loads(line).get("result")
                    if result in PASSED:
                        passed += 1
                    elif result in SKIPPED:
                        skipped += 1
                    else:
                        failed += 1
                        print(f"failed: {json.loads(line).get('name')} ({result}) in {path}")
        except FileNotFoundError:
            print(f"missing test log {path}: that build did not run its tests")
            failed += 1
    if build_rc == 2 and failed == 0:
        failed = 1  # a build failed: nothing proves that part works
    line = f"tests: {passed} passed, {failed} failed"
    if skipped:
        line += f", {skipped} skipped"
    print(line)
    return 1 if failed or build_rc else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

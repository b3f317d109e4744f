#!/usr/bin/env bash
# Runs every test: unit programs (build-san/tests/test_*, sanitizer build) and integration scripts
# (tests/integration/*.sh). Each test is one case: exit 0 pass, 77 skip, anything else fail.
# A failing test's log tail is printed. Last line: "N passed, N failed, N skipped".
#   tests/run.sh [PATTERN]     run only tests whose name contains PATTERN
# Integration scripts with a "# extended" line (peer-only comparisons, long soaks) run only with VUFS_EXTENDED=1
# (make check-extended) or when PATTERN names them; the others are what `make check` and CI run.
set -uo pipefail
cd "$(dirname "$0")/.."
export VUFS_ROOT=$PWD VUFS_BUILD=$PWD/build VUFS_SAN_BUILD=$PWD/build-san
logs=$PWD/build/test-logs; mkdir -p "$logs"
pattern=${1:-}
pass=0 fail=0 skip=0 failed=() extended=()

run_one() {   # name timeout cmd...
  local name=$1 limit=$2; shift 2
  [ -n "$pattern" ] && [[ $name != *"$pattern"* ]] && return
  local log=$logs/${name//\//_}.log start=$SECONDS rc
  timeout -k 10 "$limit" "$@" >"$log" 2>&1; rc=$?
  local took=$((SECONDS - start))
  case $rc in
    0)  pass=$((pass + 1)); echo "PASS $name (${took}s)" ;;
    77) skip=$((skip + 1)); echo "SKIP $name: $(tail -n 1 "$log")" ;;
    *)  fail=$((fail + 1)); failed+=("$name"); echo "FAIL $name (exit $rc, ${took}s)"
        [ $rc -eq 124 ] && echo "  timed out after ${limit}s"
        tail -n 30 "$log" | sed 's/^/  | /' ;;
  esac
}

for t in build-san/tests/test_*; do
  [ -x "$t" ] && run_one "unit/$(basename "$t")" 120 "$t"
done
for t in tests/integration/*.sh; do
  [ -x "$t" ] && [[ $(basename "$t") != *lib.sh ]] || continue
  if grep -q '^# extended' "$t" && [ "${VUFS_EXTENDED:-0}" != 1 ] && [ -z "$pattern" ]; then
    extended+=("$(basename "$t" .sh)")
    continue
  fi
  limit=$(sed -n 's/^# timeout: *\([0-9]*\).*/\1/p' "$t" | head -1)
  run_one "integration/$(basename "$t" .sh)" "${limit:-300}" "$t"
done

[ ${#extended[@]} -gt 0 ] && echo "not run here (make check-extended): ${extended[*]}"
[ ${#failed[@]} -gt 0 ] && echo "failed: ${failed[*]}"
echo "$pass passed, $fail failed, $skip skipped"
[ $fail -eq 0 ]

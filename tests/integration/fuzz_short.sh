#!/usr/bin/env bash
# The libFuzzer harnesses (fuzz/) build with clang and fuzz 20 s each without a crash, a leak or a broken
# invariant, and every input kept in fuzz/regressions/ (past crashes) replays cleanly.
# timeout: 400
set -uo pipefail
cd "${VUFS_ROOT:-$(dirname "$0")/../..}" || exit 1
scripts/deps.sh fuzz >/dev/null 2>&1 || true
if ! command -v clang >/dev/null || [ -z "$(find /usr/lib/llvm-* -name 'libclang_rt.fuzzer-x86_64.a' 2>/dev/null)" ]; then
  echo "skip: clang with libFuzzer is not installed (scripts/deps.sh fuzz failed)"
  exit 77
fi
rc=0
fuzz/run.sh --replay || rc=1
fuzz/run.sh "${FUZZ_SHORT_SECONDS:-20}" || rc=1
exit $rc

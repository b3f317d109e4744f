#!/usr/bin/env bash
# Builds the libFuzzer harnesses (clang, into build-fuzz/) and runs them one after the other.
#   fuzz/run.sh [SECONDS] [HARNESS...]   fuzz each harness SECONDS (default 60): fuzz_fuse_request,
#                                        fuzz_fuse_stub, fuzz_fs_state, fuzz_vring, fuzz_vhost_user (all by
#                                        default)
#   fuzz/run.sh --build                  build only
#   fuzz/run.sh --replay                 build, then run every input kept in fuzz/regressions/<harness>/ once
# Each harness fuzzes a working copy of its seed corpus (build-fuzz/corpus/<name>/, seeded from fuzz/corpus/<name>/,
# which stays as checked in). Crash inputs go to build-fuzz/artifacts/<harness>/; logs to build-fuzz/logs/.
# Prints the number of executions per harness; exits non-zero if any harness crashed (or failed to run).
# Environment: FUZZ_ARGS extra libFuzzer options; FUZZ_CC the compiler (clang).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
OUT=build-fuzz
ALL=(fuzz_fuse_request fuzz_fuse_stub fuzz_fs_state fuzz_vring fuzz_vhost_user)

max_len() {
  case $1 in
    fuzz_fuse_request|fuzz_fuse_stub) echo 16384 ;;
    fuzz_vring) echo 16384 ;;
    fuzz_fs_state) echo 4096 ;;
    fuzz_vhost_user) echo 40000 ;;
  esac
}

build() {
  command -v "${FUZZ_CC:-clang}" >/dev/null || { echo "run.sh: clang not found (scripts/deps.sh fuzz installs it)" >&2; return 1; }
  make -s -f fuzz/fuzz.mk -j"$(nproc)" FUZZ_BUILD=$OUT ${FUZZ_CC:+FUZZ_CC=$FUZZ_CC} all >"$OUT.build.log" 2>&1 || {
    cat "$OUT.build.log" >&2
    echo "run.sh: build failed" >&2
    return 1
  }
  rm -f "$OUT.build.log"
}

replay() {
  local rc=0 h files
  for h in "${ALL[@]}"; do
    [ -d "fuzz/regressions/$h" ] || continue
    mapfile -t files < <(find "fuzz/regressions/$h" -type f ! -name '*.md' ! -name '.*' | sort)
    [ ${#files[@]} -gt 0 ] || continue
    for f in "${files[@]}"; do
      if "$OUT/$h" -runs=1 "$f" >"$OUT/logs/replay.log" 2>&1; then
        echo "replay $h $(basename "$f"): ok"
      else
        echo "replay $h $(basename "$f"): CRASH"
        grep -E "ERROR|SUMMARY|invariant|runtime error|deadly signal|#[0-9]+ 0x" "$OUT/logs/replay.log" | head -25 | sed 's/^/  | /'
        rc=1
      fi
    done
  done
  return $rc
}

mkdir -p "$OUT/logs"
case ${1:-} in
  --build) build; exit ;;
  --replay) build || exit 1; replay; exit ;;
esac

secs=${1:-60}
[ -n "$secs" ] || secs=60
[[ $secs =~ ^[0-9]+$ ]] || { echo "usage: fuzz/run.sh [SECONDS] [HARNESS...] | --build | --replay" >&2; exit 2; }
shift $(( $# > 0 ? 1 : 0 ))
harnesses=("$@")
[ ${#harnesses[@]} -gt 0 ] || harnesses=("${ALL[@]}")

build || exit 1
status=0
for h in "${harnesses[@]}"; do
  [ -x "$OUT/$h" ] || { echo "run.sh: no harness $h" >&2; status=1; continue; }
  name=${h#fuzz_}
  corpus=$OUT/corpus/$name artifacts=$OUT/artifacts/$h/ log=$OUT/logs/$h.log
  mkdir -p "$corpus" "$artifacts"
  seed=$name
  [ "$name" = fuse_stub ] && seed=fuse_request   # the same input format, over the stub file system
  [ -d "fuzz/corpus/$seed" ] && cp -u fuzz/corpus/"$seed"/* "$corpus"/ 2>/dev/null
  # shellcheck disable=SC2086
  "$OUT/$h" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -max_len="$(max_len "$h")" -artifact_prefix="$artifacts" ${FUZZ_ARGS:-} "$corpus" >"$log" 2>&1
  rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  cov=$(grep -oE 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+' "$log" | tail -1)
  if [ $rc -eq 0 ]; then
    echo "$h: ${execs:-?} executions in ${secs}s ($cov)"
  else
    status=1
    echo "$h: FAILED (exit $rc) after ${execs:-?} executions ($cov); log $log"
    grep -E "ERROR|SUMMARY|invariant|runtime error|deadly signal|Test unit written|#[0-9]+ 0x" "$log" | head -30 |
      sed 's/^/  | /'
    echo "  keep the input under fuzz/regressions/$h/ once understood (fuzz_short.sh replays them)"
  fi
done
exit $status

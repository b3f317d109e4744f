#!/usr/bin/env bash
# A guest that holds more than the host lets it: vufsd (ASan) with a low open-file limit (1024) faces 20,000
# LOOKUPs never forgotten, 6,000 OPENs never released, and 2,000,000 LOOKUPs of the same 1,000 names. Each
# must be answered (EMFILE past the limit, which must really be reached), other requests still served, the
# daemon's fds back to where they were once the guest forgets and releases, its memory flat over the repeated
# lookups, and no sanitizer report. Then the default limit: raised to fs.nr_open, as virtiofsd does.
# timeout: 300
. "$(dirname "$0")/lib.sh"

HOSTILE=${VUFS_BUILD:-$PWD/build}/vufs-hostile
[ -x "$HOSTILE" ] || skip "$HOSTILE is not built"
[ "$(id -u)" = 0 ] || skip "needs root (vufsd switches credentials)"

run_check() {   # check extra-hostile-options...
  local name=$1; shift
  rm -f "$SOCK"
  start_vufsd --rlimit-nofile=1024
  local out
  out=$(timeout -k 5 200 "$HOSTILE" --socket="$SOCK" --share="$SHARE" --only="$name" --expect-exit \
        --backend-pid="$BACKEND_PID" "$@" 2>&1)
  echo "$out" | grep -E "^(NOTE|PASS|FAIL|SKIP)"
  wait_exit "$BACKEND_PID" "vufsd (after the disconnect)"
  wait "$BACKEND_PID"; local brc=$?; BACKEND_PID=
  if grep -qE "ERROR: (Address|Leak)Sanitizer|runtime error:" "$SCRATCH/backend.log"; then
    cat "$SCRATCH/backend.log"; fail "$name: sanitizer report"
  fi
  [ $brc -eq 0 ] || { tail -20 "$SCRATCH/backend.log"; fail "$name: vufsd exited with $brc"; }
  grep -q "^PASS $name" <<<"$out" || fail "$name did not pass"
  grep -q "backend fds: .* after" <<<"$out" || fail "$name: the backend's fds were not watched"
  LAST_OUT=$out
}

run_check fuse.lookup_flood
grep -qE "refused \((EMFILE|ENFILE)\)" <<<"$LAST_OUT" || fail "lookup flood: the fd limit was never reached"
run_check fuse.open_flood
grep -qE "refused \((EMFILE|ENFILE)\)" <<<"$LAST_OUT" || fail "open flood: the fd limit was never reached"
run_check fuse.lookup_repeat --flood=2000000
grep -q "backend RSS: .* after 2000000" <<<"$LAST_OUT" || fail "lookup repeat: memory was not watched"

# The default open-file limit: the kernel's ceiling (the daemon holds an fd per inode the guest knows).
rm -f "$SOCK"
BUILD=${VUFS_BUILD:-$PWD/build} start_vufsd
want=$(cat /proc/sys/fs/nr_open) why="fs.nr_open"
# Where raising the hard limit is not allowed (no CAP_SYS_RESOURCE in this container), the hard limit it is.
(ulimit -n "$want") 2>/dev/null || { want=$(ulimit -Hn) why="the hard limit; fs.nr_open is not allowed here"; }
got=$(awk '/^Max open files/ { print $4 }' "/proc/$BACKEND_PID/limits")
kill "$BACKEND_PID"; wait "$BACKEND_PID" 2>/dev/null; BACKEND_PID=
[ "$got" = "$want" ] || fail "default open-file limit: $got, expected $want ($why)"
echo "default open-file limit: $got ($why)"
echo "resource bounds hold"

# shellcheck shell=bash
# Small helpers for integration tests that boot a guest; source it:  . "$VUFS_ROOT/tests/vm/lib.sh"
# On sourcing: sets VUFS_ROOT, VUFS_BUILD (unless set), GUEST (tests/vm/guest.sh), creates TESTDIR (a temp dir,
# named after $TESTDIR_PREFIX, default vufs-test) and installs the cleanup trap (EXIT, INT, TERM).
#   start_backend CMD...  start CMD in the background and wait for its socket: the --socket-path value in CMD,
#                         else $SOCK; waits up to $BACKEND_WAIT s (default 60). Output goes to $BACKEND_LOG if set.
#                         Sets BACKEND_PID and exports WATCH_PID (guest.sh then stops QEMU if the backend dies).
#                         Returns 1 (with a note) if the backend exits or the socket never shows.
#                         Run it in the test's own shell, not in $(...): stop_backend must be able to wait for it.
#   stop_backend [SECS]   SIGTERM, wait up to SECS (default 10), then SIGKILL; prints the backend's exit status,
#                         stores it in BACKEND_STATUS and returns it (0 also when it had already exited with 0).
#   cleanup               the trap: stops a running backend, removes TESTDIR and the paths in CLEANUP_PATHS.
#   skip REASON           prints the reason and exits 77 (tests/run.sh counts it as skipped).

VUFS_ROOT=${VUFS_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
VUFS_BUILD=${VUFS_BUILD:-$VUFS_ROOT/build}
# shellcheck disable=SC2034   # used by the scripts that source this
GUEST=$VUFS_ROOT/tests/vm/guest.sh
BACKEND_PID='' BACKEND_STATUS=''
CLEANUP_PATHS=()
TESTDIR=$(mktemp -d "${TMPDIR:-/tmp}/${TESTDIR_PREFIX:-vufs-test}.XXXXXX")

skip() { echo "SKIP: $*"; exit 77; }

start_backend() {
  local sock=${SOCK:-} a prev='' i=0
  for a in "$@"; do
    case $a in --socket-path=*) sock=${a#*=} ;; esac
    [ "$prev" != --socket-path ] || sock=$a
    prev=$a
  done
  [ -n "$sock" ] || { echo "start_backend: no --socket-path in the command and no \$SOCK" >&2; return 1; }
  [ ! -S "$sock" ] || rm -f "$sock"          # a stale socket would look ready
  if [ -n "${BACKEND_LOG:-}" ]; then "$@" >>"$BACKEND_LOG" 2>&1 & else "$@" & fi
  BACKEND_PID=$!
  export WATCH_PID=$BACKEND_PID              # guest.sh stops QEMU early if the backend dies
  while [ ! -S "$sock" ]; do
    if ! kill -0 "$BACKEND_PID" 2>/dev/null; then
      BACKEND_STATUS=0; wait "$BACKEND_PID" || BACKEND_STATUS=$?; BACKEND_PID='' WATCH_PID=''
      echo "start_backend: $1 exited with status $BACKEND_STATUS before creating $sock" >&2; return 1
    fi
    if [ $i -ge $((${BACKEND_WAIT:-60} * 10)) ]; then
      echo "start_backend: no socket $sock after ${BACKEND_WAIT:-60}s" >&2; stop_backend 2 >/dev/null || true; return 1
    fi
    sleep 0.1; i=$((i + 1))
  done
}

stop_backend() {
  local limit=${1:-10} i=0 how=
  [ -n "$BACKEND_PID" ] || return 0
  kill -TERM "$BACKEND_PID" 2>/dev/null || how=" (had already exited)"
  while kill -0 "$BACKEND_PID" 2>/dev/null && [ $i -lt $((limit * 10)) ]; do sleep 0.1; i=$((i + 1)); done
  if kill -0 "$BACKEND_PID" 2>/dev/null; then
    kill -KILL "$BACKEND_PID" 2>/dev/null; how=" (killed: still running ${limit}s after SIGTERM)"
  fi
  BACKEND_STATUS=0
  wait "$BACKEND_PID" 2>/dev/null || BACKEND_STATUS=$?
  if [ "$BACKEND_STATUS" -gt 128 ]; then how+=" [SIG$(kill -l $((BACKEND_STATUS - 128)))]"; fi
  echo "backend (pid $BACKEND_PID) exited with status $BACKEND_STATUS$how"
  BACKEND_PID='' WATCH_PID=''
  return "$BACKEND_STATUS"
}

cleanup() {
  local rc=$?
  [ -z "$BACKEND_PID" ] || stop_backend 5 >&2 || true
  rm -rf "$TESTDIR" ${CLEANUP_PATHS[@]+"${CLEANUP_PATHS[@]}"}
  return $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

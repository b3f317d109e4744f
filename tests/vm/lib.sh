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
#   cleanup               the trap: runs the CLEANUP_CMDS (shell strings, last added first, failures ignored),
#                         stops a running backend, removes TESTDIR and the paths in CLEANUP_PATHS.
#   skip REASON           prints the reason and exits 77 (tests/run.sh counts it as skipped).
#   wait_backend_exit SECS  waits up to SECS for the backend to exit by itself (e.g. once the VMM has gone);
#                         sets BACKEND_STATUS (128+N if signal N ended it) and returns 0 when it has exited;
#                         returns 1 if it still runs (it is left running: stop_backend or cleanup stops it).
#   status_text STATUS    "exit N", or "killed by SIGNAME" for a status above 128
#   sanitizer_report FILE...  prints the ASan/LSan/UBSan report lines found in the FILEs; returns 0 if there
#                         is one, 1 if they are clean
#   console_section BEGIN END FILE  prints the lines of FILE after the line BEGIN up to (not including) the
#                         next line starting with END (the guest's console output between two markers)
#   san_env               exports the sanitizer options the integration tests use, unless already set
#   need_pkgs PKG...      installs the Debian packages that are missing (apt-get, only when one is missing)

VUFS_ROOT=${VUFS_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
VUFS_BUILD=${VUFS_BUILD:-$VUFS_ROOT/build}
# shellcheck disable=SC2034   # used by the scripts that source this
GUEST=$VUFS_ROOT/tests/vm/guest.sh
BACKEND_PID='' BACKEND_STATUS=''
CLEANUP_PATHS=() CLEANUP_CMDS=()
TESTDIR=$(mktemp -d "${TMPDIR:-/tmp}/${TESTDIR_PREFIX:-vufs-test}.XXXXXX")

skip() { echo "SKIP: $*"; exit 77; }
# shellcheck source=tests/lib/need_pkgs.sh
. "$VUFS_ROOT/tests/lib/need_pkgs.sh"

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

wait_backend_exit() {
  local limit=${1:-10} i=0
  [ -n "$BACKEND_PID" ] || return 0
  while kill -0 "$BACKEND_PID" 2>/dev/null && [ $i -lt $((limit * 10)) ]; do sleep 0.1; i=$((i + 1)); done
  # a zombie still answers kill -0; wait reaps it (and would block on a live process, hence the check)
  if kill -0 "$BACKEND_PID" 2>/dev/null && ! grep -q '^[0-9]* (.*) Z' "/proc/$BACKEND_PID/stat" 2>/dev/null; then
    return 1
  fi
  BACKEND_STATUS=0
  wait "$BACKEND_PID" 2>/dev/null || BACKEND_STATUS=$?
  BACKEND_PID='' WATCH_PID=''
  return 0
}

status_text() {
  if [ "$1" -gt 128 ] 2>/dev/null; then echo "killed by SIG$(kill -l $(($1 - 128)) 2>/dev/null || echo $(($1 - 128)))"
  else echo "exit $1"; fi
}

sanitizer_report() {
  grep -hE '^==[0-9]+==(ERROR|WARNING): [A-Za-z]*Sanitizer|^SUMMARY: [A-Za-z]*Sanitizer|runtime error:|^[A-Za-z]*Sanitizer:DEADLYSIGNAL' "$@" 2>/dev/null
}

# The guest's kernel died while booting, before our init ran (guest.sh exit 3, no GUEST-INIT, a panic on the
# console): seen with sid's 7.2 kernel under TCG on 2 vCPUs ("Oops: int3" in sched_clock_cpu, once in ~30 boots),
# before any virtio-fs request. Tests boot such a guest once more (vufsd exits with its VMM, so they restart it).
boot_crashed() {   # guest.sh-exit-status console-file
  [ "$1" = 3 ] && ! grep -q '^GUEST-INIT$' "$2" && grep -q 'Kernel panic' "$2"
}

console_section() {
  awk -v b="$1" -v e="$2" 'on && index($0, e) == 1 { exit } on { print } $0 == b { on = 1 }' "$3"
}

san_env() {
  export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:exitcode=66}
  export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
}

cleanup() {
  local rc=$? i
  for ((i = ${#CLEANUP_CMDS[@]} - 1; i >= 0; i--)); do eval "${CLEANUP_CMDS[i]}" || true; done
  [ -z "$BACKEND_PID" ] || stop_backend 5 >&2 || true
  [ "${VUFS_KEEP_TESTDIR:-0}" = 1 ] && echo "kept $TESTDIR" >&2 || rm -rf "$TESTDIR" ${CLEANUP_PATHS[@]+"${CLEANUP_PATHS[@]}"}
  return $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

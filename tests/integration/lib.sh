# Shared helpers for integration tests that mount a backend on the host with vufs-mount.
# Source it; it sets up a scratch directory and a cleanup trap.
#   start_vufsd [vufsd options...]     vufsd on $SHARE, socket $SOCK (BUILD picks the build: build or build-san)
#   start_qemu_virtiofsd [-o opts...]  QEMU 7.2's C virtiofsd on $SHARE
#   mount_backend [vufs-mount opts...] vufs-mount $SOCK on $MNT (in the background), waits for the mount;
#                                      VUFS_MOUNT_EXTRA adds options to every mount (e.g. --packed: any host test
#                                      on packed rings)
#   skip "why" / fail "why"
#   need_pkgs PKG...                   installs the Debian packages that are missing (tests/lib/need_pkgs.sh)
set -uo pipefail
# shellcheck source=tests/lib/need_pkgs.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/need_pkgs.sh"
BUILD=${BUILD:-${VUFS_SAN_BUILD:-$PWD/build-san}}
[ -x "$BUILD/vufsd" ] || BUILD=${VUFS_BUILD:-$PWD/build}
SCRATCH=$(mktemp -d /tmp/vufs-test.XXXXXX)
SHARE=$SCRATCH/share MNT=$SCRATCH/mnt SOCK=$SCRATCH/vhost.sock
mkdir -p "$SHARE" "$MNT"
BACKEND_PID= MOUNT_PID=
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:exitcode=66}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

POSIX=${VUFS_BUILD:-$PWD/build}/vufs-posix
FSX=${VUFS_BUILD:-$PWD/build}/vufs-fsx

# Runs vufs-posix natively on a scratch directory once per test: the reference results.
posix_reference() {
  [ -s "$SCRATCH/posix-native.txt" ] && return
  mkdir -p "$SCRATCH/native"
  "$POSIX" "$@" "$SCRATCH/native" >"$SCRATCH/posix-native.txt"
}

# posix_through LABEL "KEYS" [vufs-posix options]: runs vufs-posix on the mount and compares with the reference,
# allowing the differences known-limits.txt lists for KEYS.
posix_through() {
  local label=$1 keys=$2; shift 2
  posix_reference "$@"
  "$POSIX" "$@" "$MNT" >"$SCRATCH/posix-$label.txt"
  echo "== $label: $(grep '^RESULT' "$SCRATCH/posix-$label.txt")"
  "$VUFS_ROOT/tests/posix/compare.sh" "$SCRATCH/posix-native.txt" "$SCRATCH/posix-$label.txt" $keys ||
    fail "$label: results differ from the native reference"
}

skip() { echo "skip: $*"; exit 77; }
fail() { echo "FAIL: $*"; exit 1; }

cleanup() {
  mountpoint -q "$MNT" 2>/dev/null && umount -l "$MNT" 2>/dev/null
  [ -n "$MOUNT_PID" ] && { kill "$MOUNT_PID" 2>/dev/null; wait "$MOUNT_PID" 2>/dev/null; }
  [ -n "$BACKEND_PID" ] && { kill "$BACKEND_PID" 2>/dev/null; wait "$BACKEND_PID" 2>/dev/null; }
  rm -rf "$SCRATCH"
}
trap cleanup EXIT

# Waits up to 60 s for a process to exit; if it does not, logs its threads' stacks (for the bug report) and fails.
wait_exit() {   # pid what
  wait_for 60 bash -c "! kill -0 $1 2>/dev/null" && return 0
  command -v gdb >/dev/null && timeout 30 gdb -batch -p "$1" -ex "thread apply all bt" 2>/dev/null | grep -E "^#|^Thread" | head -60
  fail "$2 did not exit"
}

wait_for() {   # seconds command...
  local limit=$1; shift
  for _ in $(seq $((limit * 10))); do "$@" && return 0; sleep 0.1; done
  return 1
}

# LeakSanitizer stops the world with ptrace and reads /proc at exit: neither works inside the seccomp filter or
# after pivot_root, so the sanitizer build runs unconfined (the plain build's tests cover the sandbox).
sandbox_opts() {
  case $BUILD in *san*) echo "--sandbox=none --seccomp=none" ;; esac
}

start_vufsd() {
  # shellcheck disable=SC2046
  "$BUILD/vufsd" --socket-path="$SOCK" --shared-dir="$SHARE" $(sandbox_opts) "$@" >"$SCRATCH/backend.log" 2>&1 &
  BACKEND_PID=$!
  wait_for 10 test -S "$SOCK" || { cat "$SCRATCH/backend.log"; fail "vufsd did not create its socket"; }
}

start_qemu_virtiofsd() {
  [ -x /usr/lib/qemu/virtiofsd ] || skip "QEMU's virtiofsd is not installed"
  /usr/lib/qemu/virtiofsd --socket-path="$SOCK" -o source="$SHARE" "$@" >"$SCRATCH/backend.log" 2>&1 &
  BACKEND_PID=$!
  wait_for 10 test -S "$SOCK" || { cat "$SCRATCH/backend.log"; fail "virtiofsd did not create its socket"; }
}

mount_backend() {
  # shellcheck disable=SC2086
  "$BUILD/vufs-mount" --socket="$SOCK" "$MNT" -f ${VUFS_MOUNT_EXTRA:-} "$@" >"$SCRATCH/mount.log" 2>&1 &
  MOUNT_PID=$!
  wait_for 10 mountpoint -q "$MNT" || { cat "$SCRATCH/mount.log"; fail "vufs-mount did not mount"; }
}

# Unmounts, waits for vufs-mount and the backend to exit, and fails on sanitizer reports or bad exits.
finish() {
  umount "$MNT" || fail "umount failed"
  wait_exit "$MOUNT_PID" "vufs-mount (after the unmount)"
  wait "$MOUNT_PID"; local mrc=$?; MOUNT_PID=
  wait_exit "$BACKEND_PID" "the backend (after the disconnect)"
  wait "$BACKEND_PID"; local brc=$?; BACKEND_PID=
  if grep -qE "ERROR: (Address|Leak)Sanitizer|runtime error:" "$SCRATCH"/*.log; then
    cat "$SCRATCH"/*.log; fail "sanitizer report"
  fi
  [ $mrc -eq 0 ] || { cat "$SCRATCH/mount.log"; fail "vufs-mount exited with $mrc"; }
  [ $brc -eq 0 ] || { cat "$SCRATCH/backend.log"; fail "backend exited with $brc"; }
}

# Unmounts a mount whose backend is not ours to check (a peer): vufs-mount must still exit cleanly.
unmount_peer() {
  umount "$MNT" || fail "umount failed"
  wait_exit "$MOUNT_PID" "vufs-mount (after the unmount)"
  wait "$MOUNT_PID" || fail "vufs-mount exited with an error"; MOUNT_PID=
}

#!/usr/bin/env bash
# vufs-fsx (random reads, writes, truncates, mmap, fallocate, hole punching, copy_file_range, checked against an
# in-memory model) inside a real guest (Debian's kernel, QEMU TCG) on vufsd (sanitizer build, cache=auto), then
# again with --writeback (the guest caches writes and sends them late, in large pieces). Each run must print
# "FSX OK"; vufsd must exit 0 by itself after the poweroff with no sanitizer report.
# FSX_OPS sets the number of operations (default 10000: about 35-40 s per run under TCG here).
# timeout: 420
set -uo pipefail
TESTDIR_PREFIX=vufs-guest-fsx
# shellcheck source=tests/vm/lib.sh
. "$(dirname "$0")/../vm/lib.sh"
san_env
SAN_BUILD=${VUFS_SAN_BUILD:-$VUFS_ROOT/build-san}
VUFSD=$SAN_BUILD/vufsd FSX=$VUFS_BUILD/vufs-fsx OPS=${FSX_OPS:-10000}
export GUEST_TIMEOUT=${GUEST_TIMEOUT:-180}
fail() { echo "FAIL: $*"; exit 1; }
[ -x "$VUFSD" ] && [ -x "$FSX" ] || fail "build first: make all && make SAN=1 all ($VUFSD, $FSX)"
[ "$(id -u)" = 0 ] || skip "must run as root"
need_pkgs qemu-system-x86 qemu-system-common busybox-static cpio xz-utils || fail "cannot install the guest's packages"
t0=$SECONDS
problems=()
seed=0
for mode in auto writeback; do
  t=$SECONDS seed=$((seed + 1))
  opts=(--cache=auto); [ $mode = writeback ] && opts+=(--writeback)
  share=$TESTDIR/share-$mode SOCK=$TESTDIR/$mode.sock BACKEND_LOG=$TESTDIR/vufsd-$mode.log
  console=$TESTDIR/console-$mode.txt
  mkdir -p "$share"
  start_backend "$VUFSD" --socket-path="$SOCK" --shared-dir="$share" --sandbox=none --seccomp=none "${opts[@]}" ||
    { cat "$BACKEND_LOG"; fail "$mode: vufsd did not start"; }
  cat >"$TESTDIR/guest-fsx.sh" <<EOF
mkdir /mnt/fsx && vufs-fsx -q -n $OPS -s $seed /mnt/fsx
echo "FSX-EXIT \$?"
EOF
  grc=0
  "$GUEST" "$SOCK" "$TESTDIR/guest-fsx.sh" "$FSX" >"$console" 2>"$TESTDIR/guest-$mode.err" || grc=$?
  result=$(grep -m1 '^FSX ' "$console" || echo "no FSX line")
  echo "== ${opts[*]}: $result ($((SECONDS - t))s)"
  if [ $grc -ne 0 ] || ! grep -q '^FSX OK' "$console" || ! grep -q '^FSX-EXIT 0' "$console"; then
    sed -n '/GUEST-MOUNT/,$p' "$console" | tail -n 60; cat "$TESTDIR/guest-$mode.err"
    problems+=("${opts[*]}: fsx did not pass (guest.sh exit $grc; $result)")
  fi
  if wait_backend_exit 15; then
    [ "$BACKEND_STATUS" -eq 0 ] || problems+=("${opts[*]}: vufsd $(status_text "$BACKEND_STATUS") after the guest powered off")
  else
    problems+=("${opts[*]}: vufsd still running 15s after the guest powered off")
    stop_backend 5 || true
  fi
  if sanitizer_report "$BACKEND_LOG" >/dev/null; then
    cat "$BACKEND_LOG"; problems+=("${opts[*]}: sanitizer report in vufsd's log")
  fi
done
echo "== total $((SECONDS - t0))s"
if [ ${#problems[@]} -gt 0 ]; then
  printf 'FAIL: %s\n' "${problems[@]}"
  exit 1
fi
echo "guest_fsx: ok"

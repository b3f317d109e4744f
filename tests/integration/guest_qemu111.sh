#!/usr/bin/env bash
# A Debian bookworm guest (6.1, TCG) on QEMU 11.1 (Debian sid's, run by scripts/peers/qemu111.sh; skipped when it
# cannot be had) through the generic vhost-user-test-device-pci, the device that can carry a virtio-fs DAX window;
# vufsd (sanitizer build) serves it with --tag=myfs, the tag the guest mounts coming from vufsd's config space:
#  a) no window: the guest mounts, writes a file the host then reads with the same content, and reads a file the
#     host wrote; its dmesg says "No cache capability" (6.1's virtio_fs_setup_dax) and shows no "Cache len";
#     vufsd exits 0 by itself after the poweroff, with no sanitizer report;
#  b) only when vufsd --help lists --dax-window (else a SKIP line): --dax-window=64M and mount -o dax=always: the
#     guest's dmesg has "Cache len: 0x4000000", /proc/mounts shows dax=always, and files the host wrote (a small
#     one and 3 MiB of random data crossing the 2 MiB mapping granule) read back in the guest with the host's md5;
#     a file the guest writes through the window reaches the host with the guest's md5; vufsd exits 0.
# Each run prints the guest's DAX section (GUEST-DAX-INFO) and vufsd's warnings, without failing on the latter.
# timeout: 300
set -uo pipefail
TESTDIR_PREFIX=vufs-guest-qemu111
# shellcheck source=tests/vm/lib.sh
. "$(dirname "$0")/../vm/lib.sh"
san_env
SAN_BUILD=${VUFS_SAN_BUILD:-$VUFS_ROOT/build-san}
VUFSD=$SAN_BUILD/vufsd
QEMU111=$VUFS_ROOT/scripts/peers/qemu111.sh
export GUEST_TIMEOUT=${GUEST_TIMEOUT:-150} QEMU_VERSION=11.1 VIRTIO_FS_DEVICE=generic GUEST_KERNEL=bookworm
fail() { echo "FAIL: $*"; exit 1; }
say() { echo "== $*"; }
[ -x "$VUFSD" ] || fail "build first: make SAN=1 all (no $VUFSD)"
[ "$(id -u)" = 0 ] || skip "must run as root"
need_pkgs qemu-system-x86 qemu-system-common busybox-static cpio xz-utils || fail "cannot install the guest's packages"
t0=$SECONDS
qv=$("$QEMU111" --version 2>"$TESTDIR/qemu111.err"); qrc=$?
case $qrc in
  0) say "$qv (first run downloads it: $((SECONDS - t0))s)" ;;
  3) skip "QEMU 11.1 unavailable: $(tail -n 1 "$TESTDIR/qemu111.err")" ;;
  *) cat "$TESTDIR/qemu111.err"; fail "scripts/peers/qemu111.sh --version exited $qrc" ;;
esac

run() {   # NAME GUEST_SCRIPT [guest.sh options...]: boots, checks vufsd's exit; the console in $TESTDIR/console-NAME
  local name=$1 script=$2 grc=0; shift 2
  "$GUEST" "$@" "$SOCK" "$script" >"$TESTDIR/console-$name.txt" 2>"$TESTDIR/guest-$name.err" || grc=$?
  if [ $grc -ne 0 ]; then
    cat "$TESTDIR/console-$name.txt" "$TESTDIR/guest-$name.err" "$BACKEND_LOG"; fail "$name: guest.sh exited $grc"
  fi
  wait_backend_exit 15 || { cat "$BACKEND_LOG"; fail "$name: vufsd still running 15s after the guest powered off"; }
  if sanitizer_report "$BACKEND_LOG" >/dev/null; then cat "$BACKEND_LOG"; fail "$name: sanitizer report in vufsd's log"; fi
  [ "$BACKEND_STATUS" -eq 0 ] || { cat "$BACKEND_LOG"; fail "$name: vufsd $(status_text "$BACKEND_STATUS")"; }
  console_section GUEST-DAX-INFO-BEGIN GUEST-DAX-INFO-END "$TESTDIR/console-$name.txt" >"$TESTDIR/dax-$name.txt"
  sed 's/^/   guest | /' "$TESTDIR/dax-$name.txt"
  grep -E 'vufsd: (warn|error)' "$BACKEND_LOG" | sed 's/^/   vufsd | /' || true
}

# --- a) the generic device without a window ---------------------------------------------------------------
t=$SECONDS
SOCK=$TESTDIR/a.sock BACKEND_LOG=$TESTDIR/vufsd-a.log
mkdir -p "$TESTDIR/share-a"
echo "from the host" >"$TESTDIR/share-a/host.txt"
start_backend "$VUFSD" --socket-path="$SOCK" --shared-dir="$TESTDIR/share-a" --sandbox=none --seccomp=none --tag=myfs ||
  { cat "$BACKEND_LOG"; fail "a: vufsd did not start"; }
cat >"$TESTDIR/guest-a.sh" <<'EOF'
set -e
[ "$(cat /mnt/host.txt)" = "from the host" ]
echo "from the guest" >/mnt/guest.txt
[ "$(cat /mnt/guest.txt)" = "from the guest" ]
EOF
run a "$TESTDIR/guest-a.sh"
[ "$(cat "$TESTDIR/share-a/guest.txt" 2>/dev/null)" = "from the guest" ] || fail "a: the guest's file is not on the host"
grep -q 'No cache capability' "$TESTDIR/dax-a.txt" ||
  { cat "$TESTDIR/console-a.txt"; fail "a: no 'No cache capability' in the guest's dmesg"; }
! grep -qi 'cache len' "$TESTDIR/dax-a.txt" || { cat "$TESTDIR/dax-a.txt"; fail "a: a window without --dax-window"; }
say "a) $qv, vhost-user-test-device-pci, tag from vufsd: mount, both directions, \"$(grep -o 'No cache capability' \
  "$TESTDIR/dax-a.txt")\"; vufsd exited 0, sanitizer-clean ($((SECONDS - t))s)"

# --- b) a 64 MiB DAX window, dax=always ------------------------------------------------------------------
if ! "$VUFSD" --help 2>&1 | grep -q -- '--dax-window'; then
  echo "SKIP: b) vufsd has no --dax-window yet"
  say "all done ($((SECONDS - t0))s)"
  exit 0
fi
t=$SECONDS
SOCK=$TESTDIR/b.sock BACKEND_LOG=$TESTDIR/vufsd-b.log
mkdir -p "$TESTDIR/share-b"
echo "small file from the host" >"$TESTDIR/share-b/small.txt"
head -c 3145728 /dev/urandom >"$TESTDIR/share-b/big.bin"
small_md5=$(md5sum <"$TESTDIR/share-b/small.txt" | cut -d' ' -f1)
big_md5=$(md5sum <"$TESTDIR/share-b/big.bin" | cut -d' ' -f1)
start_backend "$VUFSD" --socket-path="$SOCK" --shared-dir="$TESTDIR/share-b" --sandbox=none --seccomp=none --tag=myfs \
              --dax-window=64M || { cat "$BACKEND_LOG"; fail "b: vufsd --dax-window=64M did not start"; }
cat >"$TESTDIR/guest-b.sh" <<EOF
set -e
[ "\$(cat /mnt/small.txt)" = "small file from the host" ]
[ "\$(md5sum </mnt/small.txt | cut -d' ' -f1)" = $small_md5 ]
[ "\$(md5sum </mnt/big.bin | cut -d' ' -f1)" = $big_md5 ]
dd if=/dev/urandom of=/tmp/w bs=65536 count=40 2>/dev/null
cp /tmp/w /mnt/guest.bin
md5sum </tmp/w | cut -d' ' -f1 >/mnt/guest.md5
sync
[ "\$(md5sum </mnt/guest.bin | cut -d' ' -f1)" = "\$(cat /mnt/guest.md5)" ]
EOF
run b "$TESTDIR/guest-b.sh" --mount-opts dax=always
grep -q 'Cache len: 0x4000000 ' "$TESTDIR/dax-b.txt" ||
  { cat "$TESTDIR/console-b.txt"; fail "b: no 'Cache len: 0x4000000' in the guest's dmesg"; }
grep -q '^mount: .*dax=always' "$TESTDIR/dax-b.txt" || { cat "$TESTDIR/dax-b.txt"; fail "b: /mnt is not mounted dax=always"; }
[ "$(md5sum <"$TESTDIR/share-b/guest.bin" | cut -d' ' -f1)" = "$(cat "$TESTDIR/share-b/guest.md5")" ] ||
  fail "b: the file the guest wrote through the window differs on the host"
say "b) --dax-window=64M, dax=always: \"$(grep -o 'Cache len: [^ ]*' "$TESTDIR/dax-b.txt")\"; host files read back with" \
    "the host's md5 (24 B, 3 MiB), the guest's 2.5 MiB reached the host intact; vufsd exited 0 ($((SECONDS - t))s)"
say "all done ($((SECONDS - t0))s)"

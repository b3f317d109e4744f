#!/usr/bin/env bash
# posix_host with packed virtqueues: the POSIX test program through `vufs-mount --packed` on vufsd gives the
# native results (but for known limits) in every cache mode, and both exit cleanly, sanitizer-clean. A backend
# that does not offer VIRTIO_F_RING_PACKED (QEMU's C virtiofsd) is refused with a clear message.
# timeout: 400
. "$(dirname "$0")/lib.sh"

for cache in never auto always; do
  start_vufsd --cache=$cache --xattr --log-level=debug
  mount_backend -o allow_other --packed
  grep -q "started (packed" "$SCRATCH/backend.log" || { cat "$SCRATCH/backend.log"; fail "vufsd did not run packed rings"; }
  posix_through "vufsd-packed-cache-$cache" "vufsd vufsd:$cache"
  finish
  rm -rf "${SHARE:?}"/*
done

if [ -x /usr/lib/qemu/virtiofsd ]; then
  start_qemu_virtiofsd -o cache=auto
  timeout 20 "$BUILD/vufs-mount" --socket="$SOCK" "$MNT" -f --packed >"$SCRATCH/mount.log" 2>&1
  rc=$?
  [ $rc -ne 0 ] && [ $rc -ne 124 ] || fail "vufs-mount --packed on a split-only backend exited with $rc"
  grep -q "does not offer VIRTIO_F_RING_PACKED" "$SCRATCH/mount.log" || { cat "$SCRATCH/mount.log"; fail "no clear message"; }
  mountpoint -q "$MNT" && fail "it mounted anyway"
  echo "== qemu-virtiofsd: --packed refused: $(grep -o 'packed virtqueues.*' "$SCRATCH/mount.log" | head -1)"
  kill "$BACKEND_PID" 2>/dev/null; wait "$BACKEND_PID" 2>/dev/null; BACKEND_PID=
fi

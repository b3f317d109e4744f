#!/usr/bin/env bash
# Killing the backend mid-run: file operations on the mount fail (ENOTCONN/EIO) instead of hanging, nothing is
# left hung, and the mount can be unmounted. For vufsd and for QEMU's virtiofsd.
# timeout: 120
. "$(dirname "$0")/lib.sh"

kill_mid_run() {
  mount_backend
  ( while :; do dd if=/dev/zero of="$MNT/f" bs=64k count=16 status=none 2>/dev/null || exit 0; cat "$MNT/f" >/dev/null 2>&1 || exit 0; done ) &
  local io=$!
  sleep 1
  kill -9 "$BACKEND_PID"; wait "$BACKEND_PID" 2>/dev/null; BACKEND_PID=
  wait_for 10 bash -c "! kill -0 $io 2>/dev/null" || { kill -9 $io; fail "I/O still running 10 s after the backend died"; }
  local err
  err=$(timeout 10 stat "$MNT/f" 2>&1) && fail "stat worked with the backend dead"
  [ $? -eq 124 ] && fail "stat hung with the backend dead"
  echo "stat after the backend died: $err"
  grep -qE "Transport endpoint is not connected|Input/output error" <<<"$err" || fail "unexpected error: $err"
  timeout 10 umount "$MNT" || fail "umount failed or hung"
  wait_for 10 bash -c "! kill -0 $MOUNT_PID 2>/dev/null" || fail "vufs-mount did not exit"
  wait "$MOUNT_PID"; MOUNT_PID=
}

start_vufsd
kill_mid_run
echo "vufsd: ok"
rm -f "$SOCK"
start_qemu_virtiofsd
kill_mid_run
echo "qemu virtiofsd: ok"

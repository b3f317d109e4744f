#!/usr/bin/env bash
# vufs-mount on vufsd and on QEMU's virtiofsd: list, read, create, write, rename, remove, and both sides agree.
# timeout: 120
. "$(dirname "$0")/lib.sh"

smoke() {
  echo hello > "$SHARE/a.txt"; mkdir "$SHARE/sub"
  [ "$(cat "$MNT/a.txt")" = hello ] || fail "read through the mount"
  ls "$MNT" | grep -qx sub || fail "listing"
  echo written > "$MNT/b.txt" && [ "$(cat "$SHARE/b.txt")" = written ] || fail "write seen on the host"
  mv "$MNT/b.txt" "$MNT/sub/c.txt" && [ -f "$SHARE/sub/c.txt" ] || fail "rename"
  dd if=/dev/urandom of="$SCRATCH/big" bs=1M count=8 status=none
  cp "$SCRATCH/big" "$MNT/big" && cmp "$SCRATCH/big" "$SHARE/big" || fail "8 MiB copy in"
  cmp "$SCRATCH/big" "$MNT/big" || fail "8 MiB read back"
  rm -r "$MNT/sub" "$MNT/big" && [ ! -e "$SHARE/sub" ] || fail "remove"
  rm -f "$SHARE"/*
}

start_vufsd
mount_backend
smoke
finish
echo "vufsd: ok"

start_qemu_virtiofsd -o cache=auto
mount_backend
smoke
unmount_peer
echo "qemu virtiofsd: ok"

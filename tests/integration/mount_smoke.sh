#!/usr/bin/env bash
# vufs-mount on vufsd and on QEMU's virtiofsd: list, read, create, write, rename, remove, and both sides agree;
# vufsd --tag answers its config space (vufs-mount reads it as QEMU's generic device does and mounts by the tag).
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

start_vufsd --tag=vufs-smoke-tag
mount_backend
src=$(awk -v m="$(realpath "$MNT")" '$2 == m { print $1 }' /proc/mounts)
[ "$src" = vufs-smoke-tag ] || fail "the mount's source is '$src', not the tag vufsd answered in its config space"
smoke
finish
"$BUILD/vufsd" --socket-path="$SOCK" --shared-dir="$SHARE" --tag=a-tag-of-more-than-36-bytes-is-refused-x 2>/dev/null &&
  fail "a 37-byte tag was accepted"
echo "vufsd --tag: ok (source $src)"

start_qemu_virtiofsd -o cache=auto
mount_backend
smoke
unmount_peer
echo "qemu virtiofsd: ok"

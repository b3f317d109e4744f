#!/usr/bin/env bash
# The POSIX test program through vufs-mount gives the native results (but for known limits) on vufsd in every
# cache mode and on QEMU's C virtiofsd in every cache mode; vufsd and vufs-mount exit cleanly, sanitizer-clean.
# timeout: 600
. "$(dirname "$0")/lib.sh"

for cache in never auto always; do
  start_vufsd --cache=$cache --xattr
  mount_backend -o allow_other
  posix_through "vufsd-cache-$cache" "vufsd vufsd:$cache"
  finish
  rm -rf "${SHARE:?}"/*
done

for cache in none auto always; do
  start_qemu_virtiofsd -o cache=$cache -o xattr
  mount_backend -o allow_other
  posix_through "qemu-virtiofsd-cache-$cache" "qemu qemu:$cache"
  unmount_peer
  wait "$BACKEND_PID" 2>/dev/null; BACKEND_PID=
  rm -rf "${SHARE:?}"/* "$SOCK"
done

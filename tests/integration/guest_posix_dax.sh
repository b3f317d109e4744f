#!/usr/bin/env bash
# guest_posix with the DAX window: QEMU 11.1.3's generic vhost-user device with vufsd's 64 MiB window, the guest
# mounted dax=always (file data read and written through the window); vufs-posix inside equals the native run.
# Twice: Debian bookworm's 6.1 guest, then sid's 7.2 (its FUSE 7.45 client; vufsd with --allow-mmap there).
# timeout: 500
rc=0
for kernel in bookworm sid; do
  echo "=== guest kernel: $kernel"
  VUFS_GUEST_DAX=1 GUEST_KERNEL=$kernel "$(dirname "$0")/guest_posix.sh" "$@" || rc=$?
done
exit $rc

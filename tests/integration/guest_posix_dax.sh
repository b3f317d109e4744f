#!/usr/bin/env bash
# guest_posix with the DAX window: QEMU 11.1.3's generic vhost-user device with vufsd's 64 MiB window, the 6.1 guest
# mounted dax=always (file data read and written through the window); vufs-posix inside equals the native run.
# timeout: 400
VUFS_GUEST_DAX=1 exec "$(dirname "$0")/guest_posix.sh" "$@"

#!/usr/bin/env bash
# guest_posix with Debian sid's 7.2 kernel (FUSE 7.45 client; vufsd answers 7.38) on QEMU 7.2: vufs-posix inside
# equals the native run in every cache mode but for the known limits; vufsd runs with --allow-mmap, so shared
# writable mmap works in cache=never too (FUSE_DIRECT_IO_ALLOW_MMAP, which the 7.2 guest offers). Each boot then
# runs vufs-fsx (5,000 operations, FSX_OPS), so fsx passes in a 7.2 guest in every cache mode too. vufsd gets
# Kata Containers' extra arguments (--thread-pool-size=1 -o announce_submounts), as Kata runs modern guests.
# timeout: 900
VUFS_GUEST_VUFSD_OPTS=${VUFS_GUEST_VUFSD_OPTS:---thread-pool-size=1 -o announce_submounts} \
VUFS_GUEST_FSX=${FSX_OPS:-5000} GUEST_KERNEL=sid exec "$(dirname "$0")/guest_posix.sh" "$@"

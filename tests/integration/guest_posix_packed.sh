#!/usr/bin/env bash
# guest_posix with packed virtqueues: QEMU 7.2's vhost-user-fs-pci with packed=on, the guest's virtio driver and
# vufsd all on VIRTIO_F_RING_PACKED; vufs-posix inside the guest equals the native run. One boot, cache=never
# (every read and write crosses the ring; the cache modes themselves are guest_posix's and posix_host_packed's
# concern), unless VUFS_GUEST_CACHES names others. vufsd serves with a worker pool of 4 (--thread-pool-size=4):
# replies come back out of order, which the packed ring carries by buffer id.
# timeout: 400
VUFS_GUEST_VUFSD_OPTS=${VUFS_GUEST_VUFSD_OPTS:---thread-pool-size=4} \
VUFS_GUEST_CACHES=${VUFS_GUEST_CACHES:-never} VUFS_GUEST_PACKED=1 exec "$(dirname "$0")/guest_posix.sh" "$@"

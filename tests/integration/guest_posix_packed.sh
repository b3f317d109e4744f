#!/usr/bin/env bash
# guest_posix with packed virtqueues: QEMU 7.2's vhost-user-fs-pci with packed=on, the guest's virtio driver and
# vufsd all on VIRTIO_F_RING_PACKED; vufs-posix inside the guest equals the native run in every cache mode.
# timeout: 720
VUFS_GUEST_PACKED=1 exec "$(dirname "$0")/guest_posix.sh" "$@"

/* The host kernel's FUSE device: mounting a FUSE file system and cloning /dev/fuse for more reader threads. */
#ifndef VUFS_FUSE_DEV_H
#define VUFS_FUSE_DEV_H

#include <stdbool.h>

/*
 * Opens /dev/fuse and mounts it on mountpoint. options: comma-separated mount options as mount(8) takes them
 * (ro, nosuid, nodev, noexec, noatime, ... become mount flags; allow_other, default_permissions, max_read=N
 * and the like go to the kernel's FUSE options). Returns the device fd or -errno.
 */
int fuse_dev_mount(const char *source, const char *mountpoint, const char *options);
/* Another fd reading the same connection (FUSE_DEV_IOC_CLONE). */
int fuse_dev_clone(int fd);
int fuse_dev_unmount(const char *mountpoint);

#endif

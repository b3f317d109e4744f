/*
 * Confinement of vufsd, in the order it must happen:
 *   sandbox_enter()   before the file system is opened: namespaces (new mount, pid and net namespaces; the
 *                     daemon continues in a child that is pid 1 there, the parent waits and passes its exit
 *                     status on), a fresh /proc, and the shared directory bind-mounted onto itself with the
 *                     mounts inside it
 *   ... fs_new() opens the shared directory and /proc/self/fd ...
 *   sandbox_confine() after: pivot_root (namespace) or chroot (chroot) into the shared directory, drop
 *                     capabilities, load the seccomp filter
 * Each step says clearly why it fails; the daemon does not start half-confined.
 */
#ifndef VUFS_DAEMON_SANDBOX_H
#define VUFS_DAEMON_SANDBOX_H

#include "daemon/options.h"

int sandbox_enter(const struct vufsd_options *o);
int sandbox_confine(const struct vufsd_options *o);

#endif

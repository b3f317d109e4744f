/*
 * The user namespace of an unprivileged vufsd (as virtiofsd's, for its namespace sandbox): a process that is not
 * root cannot create the mount, pid and net namespaces, but it can create a user namespace and become root of it,
 * and then create them there. Which host ids exist inside is given by --uid-map/--gid-map; without them only the
 * caller's own uid and gid are mapped, to themselves. Ranges beyond one's own id need newuidmap/newgidmap
 * (Debian's uidmap package), which allow what /etc/subuid and /etc/subgid grant the caller.
 */
#ifndef VUFS_DAEMON_USERNS_H
#define VUFS_DAEMON_USERNS_H

#include <sys/types.h>

#include "daemon/userns_map.h"

/*
 * Forks. The child enters a new user namespace, waits while the parent writes its maps from outside, and becomes
 * uid and gid 0 there when they are mapped (a warning when not: it then keeps its own ids). Returns 0 in both,
 * with *child the child's pid in the parent and 0 in the child; or a negative errno, in the parent, after saying
 * why (the child has exited then).
 */
int userns_fork(const struct userns_map *uids, const struct userns_map *gids, pid_t *child);

#endif

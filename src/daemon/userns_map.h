/*
 * --uid-map and --gid-map: ranges of host ids mapped into the user namespace an unprivileged vufsd serves from
 * (virtiofsd's :NS_ID:HOST_ID:COUNT:). The kernel does the mapping, not vufsd (that is --translate-uid/gid); this
 * file only reads and checks the ranges, so that a mistake stops vufsd with a clear message before any process
 * or namespace exists. daemon/userns.c writes them.
 */
#ifndef VUFS_DAEMON_USERNS_MAP_H
#define VUFS_DAEMON_USERNS_MAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The kernel takes at most 340 lines in uid_map/gid_map (UID_GID_MAP_MAX_EXTENTS). */
#define USERNS_MAP_MAX 340

struct userns_extent {
	uint32_t inside;   /* first id in the namespace */
	uint32_t outside;  /* the host id it is */
	uint32_t count;    /* ≥ 1; neither range reaches 4294967295, which is no id ((uid_t)-1) */
};

struct userns_map {
	struct userns_extent ext[USERNS_MAP_MAX];
	unsigned n;        /* 0: none given */
};

/*
 * Adds one --uid-map/--gid-map argument, ":NS_ID:HOST_ID:COUNT:": the last character is the separator (any
 * character but a letter or digit, as in virtiofsd), the first must be the same, three decimal fields between.
 * Returns 0; -EINVAL (format, a field that is no 32-bit number, count 0, a range past the last id), -EEXIST (it
 * overlaps an earlier range inside or outside the namespace, which the kernel refuses) or -E2BIG (more than
 * USERNS_MAP_MAX ranges), with why in err. m is unchanged on error.
 */
int userns_map_add(struct userns_map *m, const char *arg, char *err, size_t errlen);

/*
 * Whether the map is only the caller's own id, once (or is empty, which means that): what the kernel lets anyone
 * write, gids only with setgroups denied for good. Any other map needs newuidmap/newgidmap.
 */
bool userns_map_only_own(const struct userns_map *m, uint32_t own);

/* Whether id lies in a range inside the namespace. */
bool userns_map_has_inside(const struct userns_map *m, uint32_t id);

#endif

/*
 * The forgets vufs-mount still owes the backend because the hiprio queue had no room when the kernel sent them,
 * merged by node id (their lookup counts add up), as a set the bridge drains when hiprio entries come back.
 *
 * Memory bound: one 16-byte entry per distinct node id, never one per FORGET message. The kernel forgets only
 * node ids a backend reply handed it, one inode each, so the set holds at most as many entries as inodes the
 * kernel evicted since the queue last had room; however long the backend stalls, repeated lookups and forgets
 * of the same node cost nothing more. The table is freed whenever the set drains.
 * Not thread-safe: the bridge holds the hiprio queue's lock.
 */
#ifndef VUFS_MOUNT_FORGETS_H
#define VUFS_MOUNT_FORGETS_H

#include <linux/fuse.h>
#include <stddef.h>
#include <stdint.h>

struct forget_set {
	struct fuse_forget_one *e; /* open addressing, linear probing; node id 0 (no FUSE node has it) = empty */
	size_t cap, count;
	size_t cursor;             /* where the next partial take starts scanning */
};

/* Adds nlookup to nodeid's entry: 1 if it merged into one already there, 0 if new, -ENOMEM. */
int forget_set_add(struct forget_set *set, uint64_t nodeid, uint64_t nlookup);
/* Moves up to max entries to out; returns how many. */
size_t forget_set_take(struct forget_set *set, struct fuse_forget_one *out, size_t max);
/* Drops every entry and frees the table. */
void forget_set_clear(struct forget_set *set);

#endif

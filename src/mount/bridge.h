/*
 * vufs-mount's request path, the role of the Linux virtiofs driver: reader threads take requests from the
 * host kernel's /dev/fuse straight into shared memory, put them on the virtqueues, and hand the backend's
 * replies back to the kernel. The backend is untrusted: a reply that does not match its request becomes EIO,
 * a backend that goes away turns every request into ENOTCONN, and nothing waits forever.
 */
#ifndef VUFS_MOUNT_BRIDGE_H
#define VUFS_MOUNT_BRIDGE_H

#include <stdbool.h>
#include <stdint.h>

#include "transport/vu_frontend.h"

struct bridge_config {
	unsigned threads;        /* reader threads (each owns one request buffer) */
	uint32_t max_write;      /* bytes of data per READ/WRITE request */
	unsigned poll_us;        /* a reader polls the used ring this long for its reply before sleeping */
	unsigned hiprio_size;    /* entries on the hiprio queue: one forget buffer each */
	bool dax;                /* dax=always or inode: serve READ/WRITE through the frontend's DAX window (mount/dax.h) */
	bool dax_inode;          /* dax=inode: only for the files whose attributes carry FUSE_ATTR_DAX */
};

struct bridge;

/* Memory the bridge needs from the frontend's shared region for this configuration. */
size_t bridge_memory_needed(const struct bridge_config *cfg);
int bridge_new(struct vu_frontend *fe, int fuse_fd, const struct bridge_config *cfg, struct bridge **out);
/* Starts the reader, completion and monitor threads. */
int bridge_start(struct bridge *b);
/* Waits until every reader has left (the file system was unmounted) or done_fd-style wake-up by signal:
 * returns when the readers are gone. */
void bridge_wait(struct bridge *b);
/* Tells the threads to stop and joins them; the readers must have left (unmount first). */
void bridge_free(struct bridge *b);
/* fd that becomes readable when the last reader leaves. */
int bridge_done_fd(const struct bridge *b);
bool bridge_backend_dead(const struct bridge *b);

#endif

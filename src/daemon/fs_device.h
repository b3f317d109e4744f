/* Wires the FUSE protocol to a vhost-user device: the handler each virtqueue thread calls. */
#ifndef VUFS_DAEMON_FS_DEVICE_H
#define VUFS_DAEMON_FS_DEVICE_H

#include <pthread.h>

#include "protocol/fuse_server.h"
#include "transport/vu_device.h"

struct fs_device {
	struct fuse_server *srv;
	struct fuse_worker *workers[VU_MAX_QUEUES];   /* one per queue thread, touched only by it */
	/* Blocking requests (SETLKW) run on their own threads; this bounds how many. */
	pthread_mutex_t blocking_lock;
	unsigned blocking;
};

int fs_device_init(struct fs_device *d, struct fuse_server *srv, unsigned nqueues);
void fs_device_destroy(struct fs_device *d);
/* The vu_handle_fn for vufsd's device. */
long fs_device_handle(void *opaque, struct vu_queue *q, struct vq_chain *chain);

#endif

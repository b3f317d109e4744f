/* Wires the FUSE protocol to a vhost-user device: the handler each virtqueue thread calls. */
#ifndef VUFS_DAEMON_FS_DEVICE_H
#define VUFS_DAEMON_FS_DEVICE_H

#include <linux/virtio_fs.h>
#include <pthread.h>
#include <stdbool.h>

#include "protocol/fuse_server.h"
#include "transport/vu_device.h"

/* How many requests may wait at once (SETLKW): one thread each. Past that they are refused with ENOLCK. */
#define FS_DEVICE_MAX_WAITING 64

struct fs_waiter;

struct fs_device {
	struct fuse_server *srv;
	struct fuse_worker *workers[VU_SLOTS];   /* one per serving thread (its slot: queue or pool worker), its own */
	/* Requests that may block run on threads of their own, each in a slot; waiting_lock guards the slots.
	 * Every thread is joined: when its slot is reused, or by fs_device_cancel_waiting. */
	pthread_mutex_t waiting_lock;
	struct fs_waiter *waiting[FS_DEVICE_MAX_WAITING];
	bool cancelled;
};

/* Private state for nqueues queue threads and pool_threads pool workers. */
int fs_device_init(struct fs_device *d, struct fuse_server *srv, unsigned nqueues, unsigned pool_threads);
/* Interrupts every waiting request and joins its thread (their replies are dropped when the queues are stopped).
 * Call after the device's queues stopped and before the file system is freed. */
void fs_device_cancel_waiting(struct fs_device *d);
void fs_device_destroy(struct fs_device *d);
/* The virtio-fs config space: the tag the guest mounts by, and how many request queues there are. */
void fs_device_config(const char *tag, unsigned request_queues, struct virtio_fs_config *out);
/* The vu_dev_config state hooks for live migration: the FUSE session and the file system's state. */
int fs_device_state_save(void *opaque, void **buf, size_t *len);
int fs_device_state_load(void *opaque, const void *buf, size_t len);
/* The vu_handle_fn for vufsd's device. */
long fs_device_handle(void *opaque, struct vu_queue *q, struct vq_chain *chain, unsigned slot);

#endif

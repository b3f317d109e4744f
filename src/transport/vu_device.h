/*
 * The backend (device) side of a vhost-user connection: answers the frontend's messages, maps its memory,
 * and runs one thread per started virtqueue that pops requests and hands them to the device's handler.
 * Knows nothing of FUSE: the handler gets descriptor chains and says how many bytes it wrote back.
 */
#ifndef VUFS_VU_DEVICE_H
#define VUFS_VU_DEVICE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "transport/guest_mem.h"
#include "transport/vhost_user.h"
#include "transport/vq_device.h"

#define VU_MAX_QUEUES 17   /* hiprio + 16 request queues */
#define VU_DEFERRED (-1L)  /* handler kept the chain and will call vu_queue_complete() */

struct vu_dev;
struct vu_queue;

/*
 * Serves one chain. Returns the bytes written to its writable part (the used length), or VU_DEFERRED.
 * The chain's iovecs point into guest memory, which the guest may change at any time.
 */
typedef long (*vu_handle_fn)(void *opaque, struct vu_queue *q, struct vq_chain *chain);

struct vu_dev_config {
	unsigned max_queues;      /* total queues offered, including queue 0 */
	vu_handle_fn handle;
	void *opaque;
	unsigned poll_us;         /* busy-poll the ring up to this long before sleeping (0: never); adaptive below it */
};

struct vu_queue {
	struct vu_dev *dev;
	unsigned index;
	/* Set by the vhost-user thread while the queue thread is stopped. */
	unsigned num;
	uint64_t desc_ua, avail_ua, used_ua;
	bool addr_set, enabled, broken;
	uint16_t base;
	bool base_from_frontend;  /* base came with SET_VRING_BASE (else: our own pause, e.g. a memory change) */
	int kick_fd, err_fd;
	/* The queue thread exists between vu_queue start and stop; stop_fd wakes it to leave. */
	bool running;
	pthread_t thread;
	int stop_fd;
	/* push_lock serialises used-ring updates and notifications (queue thread and deferred completions)
	 * and guards call_fd and err_fd, which the frontend may replace while the queue runs. */
	pthread_mutex_t push_lock;
	int call_fd;
	struct vq_device vq;
	/* Bumped (under push_lock) each time the queue stops: a deferred completion from an older epoch must not
	 * touch guest memory, which may be unmapped by then. */
	uint64_t epoch;
	/* Queue thread only: the current busy-poll window, between 0 and poll_us (see busy_poll). */
	uint64_t poll_ns;
};

struct vu_dev {
	int sock;
	struct vu_dev_config cfg;
	uint64_t features, protocol_features;
	bool owner_set;
	struct guest_mem mem;
	int backend_req_fd;       /* kept for later use (DAX mapping requests) */
	struct vu_queue q[VU_MAX_QUEUES];
};

int vu_dev_init(struct vu_dev *dev, int sock, const struct vu_dev_config *cfg);
/* Serves the connection until the frontend closes it (0) or breaks the protocol (-errno). Stops all queues. */
int vu_dev_serve(struct vu_dev *dev);
void vu_dev_destroy(struct vu_dev *dev);
/*
 * Completes a chain the handler deferred: copies len bytes of reply into its writable iovecs and returns it.
 * epoch is q->epoch as the handler read it when it deferred (stable then: the queue thread was in the handler).
 * Thread-safe; does nothing if the queue stopped since.
 */
void vu_queue_complete(struct vu_queue *q, uint64_t epoch, uint16_t head, const struct iovec *wr, unsigned n_wr,
                       const void *reply, size_t len);

/* Offered virtio features (also what tests expect). */
uint64_t vu_dev_offered_features(void);
uint64_t vu_dev_offered_protocol_features(void);

#endif

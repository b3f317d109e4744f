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

#include "common/dev_services.h"

#include <sys/types.h>
#include "transport/dirty_log.h"
#include "transport/guest_mem.h"
#include "transport/vhost_user.h"
#include "transport/vq_device.h"

#define VU_MAX_QUEUES 17   /* hiprio + 16 request queues */
#define VU_DEFERRED (-1L)  /* handler kept the chain (vu_queue_defer) and will complete it */
#define VU_POOL_MAX 64     /* worker threads at most (--thread-pool-size) */
/* The handler's slot (the calling thread's, for its private state): a queue thread's is its queue index, pool
 * worker i's is VU_MAX_QUEUES + i. So VU_SLOTS slots in all. */
#define VU_SLOTS (VU_MAX_QUEUES + VU_POOL_MAX)

struct vu_dev;
struct vu_queue;

/*
 * Serves one chain, on the thread whose slot (< VU_SLOTS) is given: handlers for different slots run at the same
 * time. Returns the bytes written to its writable part (the used length), or VU_DEFERRED.
 * The chain's iovecs point into guest memory, which the guest may change at any time.
 */
typedef long (*vu_handle_fn)(void *opaque, struct vu_queue *q, struct vq_chain *chain, unsigned slot);

struct vu_dev_config {
	unsigned max_queues;      /* total queues offered, including queue 0 */
	vu_handle_fn handle;
	void *opaque;
	/* Request queues hand their chains to this many worker threads (vu_pool.c; 0 or 1: each queue's own thread
	 * serves them, one at a time; at most VU_POOL_MAX). The hiprio queue is always served on its own thread. */
	unsigned pool_threads;
	unsigned poll_us;         /* busy-poll the ring up to this long before sleeping (0: never); adaptive below it */
	/* The device's own part of the protocol. */
	const uint8_t *config;    /* its config space for GET_CONFIG; NULL: VHOST_USER_PROTOCOL_F_CONFIG not offered */
	uint32_t config_len;      /* at most VHU_CONFIG_MAX */
	unsigned n_shmem;         /* shared-memory regions (GET_SHMEM_CONFIG, F_SHMEM offered when > 0) */
	uint64_t shmem_sizes[VHU_SHMEM_MAX];
	unsigned backend_timeout_ms; /* how long a backend request waits for its reply (0: 5000), then -ETIMEDOUT */
	/* Live migration (VHOST_USER_PROTOCOL_F_DEVICE_STATE, offered when both are set; vu_state.c): the device's
	 * state as bytes while its queues are stopped (*buf malloc'ed), and loaded from such bytes (hostile). */
	int (*state_save)(void *opaque, void **buf, size_t *len);
	int (*state_load)(void *opaque, const void *buf, size_t len);
};

struct vu_queue {
	struct vu_dev *dev;
	unsigned index;
	uint64_t requests;        /* chains handled since the device was created (atomic: logged at the end) */
	unsigned pool_jobs;       /* chains of this queue in the worker pool, popped and not yet pushed (pool lock) */
	/* Set by the vhost-user thread while the queue thread is stopped. */
	unsigned num;
	uint64_t desc_ua, avail_ua, used_ua;  /* packed: descriptor ring, driver and device event areas */
	bool addr_set, enabled, broken;
	uint64_t log_gpa;         /* SET_VRING_ADDR's log_guest_addr: the used ring (packed: device area) */
	bool log_used;            /* ... and VHOST_VRING_F_LOG: the ring's own writes are logged there */
	uint32_t base;            /* the vring base (vq_device_base): packed rings carry wrap counters in it */
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
	/* Bumped (by the vhost-user thread, under ctrl_lock) each time the frontend takes the ring back
	 * (GET_VRING_BASE, SET_VRING_BASE, reset): a chain deferred before that is no longer ours to return.
	 * Our own pauses (memory changes) leave it: chains deferred across them come back. */
	uint64_t ring_gen;
	/* Queue thread only: the current busy-poll window, between 0 and poll_us (see busy_poll). */
	uint64_t poll_ns;
};

struct vu_dev {
	/* Held for writing by the vhost-user thread while it handles a message (memory, rings and queue threads
	 * change); deferred completions hold it for reading, so they see either the old or the new state, whole.
	 * Lock order: ctrl_lock, then a queue's push_lock. Queue threads never take it. */
	pthread_rwlock_t ctrl_lock;
	int sock;
	struct vu_dev_config cfg;
	uint64_t features, protocol_features;
	bool owner_set;
	struct guest_mem mem;
	/* Dirty logging (vu_log.c). The vhost-user thread sets both, under ctrl_lock; they are read without it by
	 * whoever writes guest memory, always under that queue's push_lock (pushes, arms, deferred completions):
	 * a log is unmapped only after it was unpublished and every push_lock was taken once since (the grace
	 * period), so no thread can still hold a pointer to it. */
	struct dirty_log *log;    /* SET_LOG_BASE's log (atomic pointer; NULL: none) */
	bool log_all;             /* VHOST_F_LOG_ALL negotiated now (atomic): mark what we write */
	/* The backend channel (SET_BACKEND_REQ_FD), for requests we send (vu_backend.c). backend_lock serialises
	 * them, each with its reply, and guards the fd, which the frontend may replace. Taken by queue threads:
	 * never while holding ctrl_lock's write side waits for them. */
	pthread_mutex_t backend_lock;
	int backend_req_fd;
	unsigned backend_unanswered; /* requests sent with NEED_REPLY whose reply has not been read (backend_lock) */
	/* The file ranges we map into a shared-memory region come back to us as memory regions (QEMU tells the
	 * backend of every RAM section, ADD_MEM_REG/REM_MEM_REG), one pair per map. We never translate guest
	 * addresses in our own window, so they are recorded, not mapped (vu_backend.c). window_lock guards these;
	 * taken by the vhost-user thread and by the thread sending a map, never with another lock but backend_lock
	 * (which nests outside it). */
	pthread_mutex_t window_lock;
	/* Maps sent whose region has not come back yet (QEMU announces it before or after its reply). */
#define VU_MAPS_UNANNOUNCED 64
	struct { dev_t dev; ino_t ino; uint64_t len; } maps_sent[VU_MAPS_UNANNOUNCED];
	unsigned n_maps_sent;
	unsigned n_window_regions;
	struct { uint64_t gpa, size; } *window_regions;
	/* A device-state transfer between SET_DEVICE_STATE_FD and CHECK_DEVICE_STATE (vu_state.c; ctrl_lock). */
	struct vu_state_xfer *state_xfer;
	struct vu_pool *pool;     /* the worker pool, or NULL (cfg.pool_threads < 2); lives as long as dev */
	struct vu_queue q[VU_MAX_QUEUES];
};

int vu_dev_init(struct vu_dev *dev, int sock, const struct vu_dev_config *cfg);
/* Serves the connection until the frontend closes it (0) or breaks the protocol (-errno). Stops all queues. */
int vu_dev_serve(struct vu_dev *dev);
void vu_dev_destroy(struct vu_dev *dev);
/*
 * A chain its handler keeps past returning (a request that waits, such as SETLKW). It holds the writable part
 * as guest-physical addresses, so it survives memory-table changes (memory hotplug): it is translated again
 * when it completes. Every pending chain must be completed exactly once; that also frees it.
 */
struct vu_pending;
/* Called from the handler, on the queue thread. NULL when out of memory: the handler must answer now. */
struct vu_pending *vu_queue_defer(struct vu_queue *q, const struct vq_chain *chain);
/*
 * Writes len bytes of reply into the chain, returns it to the driver and frees p. Thread-safe; waits while the
 * frontend changes memory or rings. If the frontend took the ring back since (GET_VRING_BASE, reset) or the
 * queue broke, the reply is dropped: the ring is not ours any more. A chain whose memory is gone comes back
 * with length 0.
 */
void vu_pending_complete(struct vu_pending *p, const void *reply, size_t len);
/* Forgets p without returning its chain: only in the handler that deferred it, which then answers itself. */
void vu_pending_drop(struct vu_pending *p);

/* Offered virtio features (also what tests expect), and the protocol features this device offers. */
uint64_t vu_dev_offered_features(void);
uint64_t vu_dev_offered_protocol_features(const struct vu_dev *dev);

/* The device services (common/dev_services.h) of this device: shared-memory maps through backend requests. */
void vu_dev_services(struct vu_dev *dev, struct dev_services *out);

#endif

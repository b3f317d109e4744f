/* Between the two halves of the vhost-user device: the control plane (vu_device.c) and the queue plane
 * (vu_queue.c). Not for other rooms. */
#ifndef VUFS_VU_INTERNAL_H
#define VUFS_VU_INTERNAL_H

#include <time.h>

#include "transport/vu_device.h"

/* CLOCK_MONOTONIC in nanoseconds (the queue plane's polling windows and the pool's service times). */
static inline uint64_t vu_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Called by the control plane, under ctrl_lock, while no other thread changes the queue's set-up. */
int vu_queue_start(struct vu_dev *dev, struct vu_queue *q);
void vu_queue_stop(struct vu_queue *q);
/* Guest memory may only change while no queue thread reads it: stops them all, returns which ran. */
unsigned vu_queues_stop_all(struct vu_dev *dev);
void vu_queues_restart(struct vu_dev *dev, unsigned mask);

/* vu_queue.c, for the pool's workers: the calling thread serves q until serve_end (so a completion on it does not
 * take ctrl_lock); pushing a chain with len bytes of reply, and notifying; stopping a queue whose ring is corrupt. */
void vu_queue_serve_begin(const struct vu_queue *q);
void vu_queue_serve_end(void);
void vu_queue_push(struct vu_queue *q, const struct vq_chain *chain, uint32_t len);
void vu_queue_mark_broken(struct vu_queue *q);

/* vu_pool.c (the lock story is there). new: *out NULL when nthreads < 2 (no pool); free after every queue stopped.
 * The queue thread takes a job's chain (waits while all are in use), pops into it, and submits it or gives it back
 * (nothing popped); drain waits until none of q's jobs is left, called when q's thread has stopped. */
struct vu_pool;
int vu_pool_new(struct vu_dev *dev, unsigned nthreads, struct vu_pool **out);
void vu_pool_free(struct vu_pool *p);
struct vq_chain *vu_pool_take(struct vu_pool *p, struct vu_queue *q);
void vu_pool_submit(struct vu_pool *p, struct vq_chain *chain);
void vu_pool_give_back(struct vu_pool *p, struct vq_chain *chain);
void vu_pool_drain(struct vu_pool *p, struct vu_queue *q);
/* Whether a popped chain goes to the pool: its shape's requests take long enough to be worth a worker's wake-up
 * (the rest are served on the queue thread); and the service time of a chain served, wherever it was. */
bool vu_pool_worth_handing(struct vu_pool *p, const struct vq_chain *chain);
void vu_pool_note_cost(struct vu_pool *p, const struct vq_chain *chain, uint64_t ns);

/* vu_backend.c: a memory region the frontend adds for a map we are making (same file, same length) is recorded
 * as ours instead of being mapped; true if so. Removing one of those: true if it was one. */
bool vu_window_region_add(struct vu_dev *dev, uint64_t gpa, uint64_t size, int fd);
bool vu_window_region_remove(struct vu_dev *dev, uint64_t gpa, uint64_t size);

/* vu_state.c, under ctrl_lock: SET_DEVICE_STATE_FD (takes fd; returns the reply's u64), CHECK_DEVICE_STATE
 * (0 when the transfer worked, 1 when not), and the end of a transfer nobody checked (reset, disconnect). */
uint64_t vu_state_set_fd(struct vu_dev *dev, uint32_t direction, uint32_t phase, int fd);
uint64_t vu_state_check(struct vu_dev *dev);
void vu_state_cancel(struct vu_dev *dev);

/* vu_log.c: dirty logging for live migration (the lock story is at vu_dev's log). Control plane, under ctrl_lock:
 * replaces the log (size and offset from SET_LOG_BASE, fd from it: mapped, not kept), or drops it (NULL fd -1). */
int vu_log_set_base(struct vu_dev *dev, int fd, uint64_t size, uint64_t mmap_offset);
void vu_log_drop(struct vu_dev *dev);
void vu_log_set_enabled(struct vu_dev *dev, bool on);
/* Queue plane, under q's push_lock: marks [gpa, gpa+len) if logging is on; marks the first len bytes of a chain's
 * writable part (the reply just written). */
void vu_log_mark(struct vu_dev *dev, uint64_t gpa, uint64_t len);
void vu_log_reply(struct vu_dev *dev, const struct vq_chain *chain, uint64_t len);
/* Where a queue's ring writes are logged, for its vq_device (at queue start). */
struct vq_log vu_log_ring(struct vu_dev *dev, const struct vu_queue *q, bool packed);

#endif

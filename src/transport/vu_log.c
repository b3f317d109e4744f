/*
 * Dirty logging of a vhost-user device for live migration: the log the frontend hands over (SET_LOG_BASE), the
 * switch VHOST_F_LOG_ALL turns, and the marks of everything we write to guest RAM: reply bytes in the writable
 * descriptors and the ring's own writes (vq_device's vq_log). Lock story at struct vu_dev's log.
 *
 * Not logged, because it is not guest RAM: writes through a DAX window (shared-memory region), which are the
 * host file's pages mapped into the guest (the VMM migrates the window's content, if at all, by itself).
 */
#include "transport/vu_internal.h"

#include <errno.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"

/* Unpublishes the current log, waits for every marker that may hold it, and unmaps it. A marker holds a queue's
 * push_lock from reading the pointer to its last bit: once each push_lock was taken once after the swap, no one
 * can reach the old log any more (and later markers see the new pointer: the lock orders them after the swap). */
static void log_replace(struct vu_dev *dev, struct dirty_log *next)
{
	struct dirty_log *old = __atomic_exchange_n(&dev->log, next, __ATOMIC_ACQ_REL);
	if (!old)
		return;
	for (unsigned i = 0; i < VU_MAX_QUEUES; i++) {
		pthread_mutex_lock(&dev->q[i].push_lock);
		pthread_mutex_unlock(&dev->q[i].push_lock);
	}
	dirty_log_unmap(old);
}

int vu_log_set_base(struct vu_dev *dev, int fd, uint64_t size, uint64_t mmap_offset)
{
	struct dirty_log *log;
	int rc = dirty_log_map(fd, size, mmap_offset, &log);
	if (rc < 0) {
		log_err("dirty log of %llu bytes at offset %llu refused: %s", (unsigned long long)size,
		        (unsigned long long)mmap_offset, strerror(-rc));
		return rc;
	}
	log_replace(dev, log);
	log_info("dirty log: %llu bytes (guest memory up to %llu MiB)", (unsigned long long)size,
	         (unsigned long long)(size * 8 * DIRTY_LOG_PAGE >> 20));
	return 0;
}

void vu_log_drop(struct vu_dev *dev)
{
	log_replace(dev, NULL);
}

void vu_log_set_enabled(struct vu_dev *dev, bool on)
{
	bool was = __atomic_exchange_n(&dev->log_all, on, __ATOMIC_SEQ_CST);
	if (was != on)
		log_info("dirty logging %s", on ? "on" : "off");
}

/* The log to mark now, or NULL when logging is off. Under a push_lock (the pointer stays valid while it is held). */
static struct dirty_log *active_log(struct vu_dev *dev)
{
	/* The caller's stores to guest memory come first: a write still in flight when the VMM starts copying pages
	 * must not pass a check that saw logging off (the VMM copies every page once after turning it on). */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (!__atomic_load_n(&dev->log_all, __ATOMIC_SEQ_CST))
		return NULL;
	return __atomic_load_n(&dev->log, __ATOMIC_ACQUIRE);
}

void vu_log_mark(struct vu_dev *dev, uint64_t gpa, uint64_t len)
{
	struct dirty_log *log = active_log(dev);
	if (log)
		dirty_log_mark(log, gpa, len);
}

void vu_log_reply(struct vu_dev *dev, const struct vq_chain *chain, uint64_t len)
{
	const struct iovec *wr = vq_chain_wr(chain);
	const uint64_t *gpa = chain->gpa + chain->n_rd;
	struct dirty_log *log = active_log(dev);

	for (unsigned i = 0; log && i < chain->n_wr && len > 0; i++) {
		uint64_t n = MIN(len, wr[i].iov_len);
		dirty_log_mark(log, gpa[i], n);
		len -= n;
	}
}

static void ring_mark(void *dev, uint64_t gpa, uint64_t len)
{
	vu_log_mark(dev, gpa, len);
}

/* The frontend names the used ring's (packed: device area's) guest address; a packed ring also writes used
 * elements over its descriptors, whose guest address we find through the memory table. */
struct vq_log vu_log_ring(struct vu_dev *dev, const struct vu_queue *q, bool packed)
{
	struct vq_log l = { .mark = ring_mark, .opaque = dev, .device_gpa = VQ_LOG_NONE, .desc_gpa = VQ_LOG_NONE };
	if (!q->log_used)
		return l;
	l.device_gpa = q->log_gpa;
	if (packed) {
		uint64_t len = vring_packed_desc_bytes(q->num);
		const void *desc = gm_uaddr_ptr(&dev->mem, q->desc_ua, len);
		if (!desc || gm_host_to_gpa(&dev->mem, desc, len, &l.desc_gpa) < 0)
			l.desc_gpa = VQ_LOG_NONE; /* the queue will not start: vq_device_start checks the same */
	}
	return l;
}

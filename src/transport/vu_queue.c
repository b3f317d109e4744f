/*
 * The queue plane of a vhost-user device: one thread per started virtqueue pops chains, hands them to the
 * device's handler and returns them (or keeps them as pending chains); notification, busy polling, and the
 * start and stop the control plane (vu_device.c) asks for.
 */
#include "transport/vu_internal.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"


/* The queue the calling thread serves (set by queue_thread for its lifetime; NULL on other threads). */
static __thread const struct vu_queue *serving;

/* How often a drain checks whether the driver wants an interrupt. Every 4 completions: a driver that sleeps
 * (it armed used_event) wakes early and refills the ring while we serve the rest; one that is busy asked for
 * nothing, and EVENT_IDX makes the check a read of used_event. Measured against 1 and 16 (bench/README.md). */
#define NOTIFY_EVERY 4

static void notify_locked(struct vu_queue *q)
{
	if (q->call_fd >= 0 && vq_device_need_notify(&q->vq))
		eventfd_write(q->call_fd, 1);
}

/* Returns a chain the handler wrote len bytes of reply into; the reply's pages are logged with the ring's. */
static void push_and_notify(struct vu_queue *q, const struct vq_chain *chain, uint32_t len, bool notify)
{
	pthread_mutex_lock(&q->push_lock);
	vq_device_push(&q->vq, chain->head, len);
	vu_log_reply(q->dev, chain, len);
	if (notify)
		notify_locked(q);
	pthread_mutex_unlock(&q->push_lock);
}

void vu_queue_push(struct vu_queue *q, const struct vq_chain *chain, uint32_t len)
{
	push_and_notify(q, chain, len, true);
}

void vu_queue_serve_begin(const struct vu_queue *q)
{
	serving = q;
}

void vu_queue_serve_end(void)
{
	serving = NULL;
}

struct vu_pending {
	struct vu_queue *q;
	uint64_t ring_gen;
	uint16_t head;
	unsigned n;                 /* writable segments, as guest-physical ranges */
	struct { uint64_t gpa, len; } seg[];
};

struct vu_pending *vu_queue_defer(struct vu_queue *q, const struct vq_chain *chain)
{
	const struct iovec *wr = vq_chain_wr(chain);
	struct vu_pending *p = malloc(sizeof(*p) + chain->n_wr * sizeof(p->seg[0]));

	if (!p)
		return NULL;
	*p = (struct vu_pending){ .q = q, .ring_gen = q->ring_gen, .head = chain->head, .n = chain->n_wr };
	for (unsigned i = 0; i < chain->n_wr; i++) {
		p->seg[i].gpa = chain->gpa[chain->n_rd + i];
		p->seg[i].len = wr[i].iov_len;
	}
	return p;
}

void vu_pending_drop(struct vu_pending *p)
{
	free(p);
}

/* Copies reply into the pending chain's buffers as the memory table has them now, and logs them; returns the bytes
 * written. Under push_lock (the log's lock story). */
static uint32_t write_pending(const struct vu_pending *p, const void *reply, size_t len)
{
	size_t done = 0;
	for (unsigned i = 0; i < p->n && done < len; i++) {
		size_t n = MIN(p->seg[i].len, len - done);
		void *dst = gm_gpa_ptr(&p->q->dev->mem, p->seg[i].gpa, n);
		if (!dst)
			return 0; /* the memory went away: the buffer comes back empty */
		memcpy(dst, (const uint8_t *)reply + done, n);
		vu_log_mark(p->q->dev, p->seg[i].gpa, n);
		done += n;
	}
	return (uint32_t)done;
}

void vu_pending_complete(struct vu_pending *p, const void *reply, size_t len)
{
	struct vu_queue *q = p->q;
	/* On the queue thread itself (a handler completing at once) memory cannot change: no ctrl_lock, which the
	 * vhost-user thread may hold while it waits for this thread to stop. */
	bool on_queue_thread = serving == q;

	if (!on_queue_thread)
		pthread_rwlock_rdlock(&q->dev->ctrl_lock);
	pthread_mutex_lock(&q->push_lock);
	if (q->running && !q->broken && q->ring_gen == p->ring_gen) {
		vq_device_push(&q->vq, p->head, write_pending(p, reply, len));
		notify_locked(q);
	}
	pthread_mutex_unlock(&q->push_lock);
	if (!on_queue_thread)
		pthread_rwlock_unlock(&q->dev->ctrl_lock);
	free(p);
}

void vu_queue_mark_broken(struct vu_queue *q)
{
	if (__atomic_exchange_n(&q->broken, true, __ATOMIC_RELAXED))
		return; /* said once */
	log_err("queue %u: ring is corrupt; the queue stops", q->index);
	pthread_mutex_lock(&q->push_lock);
	if (q->err_fd >= 0)
		eventfd_write(q->err_fd, 1);
	pthread_mutex_unlock(&q->push_lock);
}

/* Whether guest memory lost pages under us since *seen (the frontend shrank its file: see guest_mem.c). */
static bool memory_lost(uint64_t *seen)
{
	uint64_t now = gm_fault_count();
	bool lost = now != *seen;
	*seen = now;
	return lost;
}

/* Hands a popped chain on: to the worker pool (request queues, when there is one), else serves it here and pushes
 * it with a notification every NOTIFY_EVERY. Returns false when the memory under it was lost meanwhile. */
static bool serve_chain(struct vu_queue *q, struct vq_chain *chain, bool bad, unsigned *batch, uint64_t *faults)
{
	struct vu_pool *pool = q->index ? q->dev->pool : NULL;
	if (pool && !bad && vu_pool_worth_handing(pool, chain)) {
		vu_pool_submit(pool, chain);
		return true;
	}
	uint64_t t0 = pool ? vu_now_ns() : 0;
	long len = bad ? 0 : q->dev->cfg.handle(q->dev->cfg.opaque, q, chain, q->index);
	if (pool && !bad)
		vu_pool_note_cost(pool, chain, vu_now_ns() - t0);
	__atomic_add_fetch(&q->requests, 1, __ATOMIC_RELAXED);
	bool lost = memory_lost(faults); /* the request read zeros where the guest's bytes were: no reply */
	if (!lost && len != VU_DEFERRED)
		push_and_notify(q, chain, (uint32_t)len, ++*batch % NOTIFY_EVERY == 0);
	if (pool)
		vu_pool_give_back(pool, chain);
	return !lost;
}

/* Serves every chain available now. Returns 0, or -EIO when the ring or the memory under it is broken. */
static int drain(struct vu_queue *q, struct vq_chain *own, uint64_t *faults)
{
	struct vu_pool *pool = q->index ? q->dev->pool : NULL;
	unsigned batch = 0;
	for (;;) {
		if (__atomic_load_n(&q->broken, __ATOMIC_RELAXED))
			return -EIO; /* a worker found it so */
		struct vq_chain *chain = pool ? vu_pool_take(pool, q) : own;
		int rc = vq_device_pop(&q->vq, chain);
		if (memory_lost(faults))
			rc = -EIO;
		if (rc == VQ_EMPTY || rc == -EIO) {
			if (pool)
				vu_pool_give_back(pool, chain);
			if (rc == -EIO)
				return rc;
			break;
		}
		if (!serve_chain(q, chain, rc == -EBADMSG, &batch, faults))
			return -EIO;
	}
	if (batch % NOTIFY_EVERY == 0)
		return 0; /* nothing pushed since the last notification: no spurious interrupt */
	pthread_mutex_lock(&q->push_lock);
	notify_locked(q);
	pthread_mutex_unlock(&q->push_lock);
	return 0;
}

/*
 * Spins on the avail index for the current window before the thread sleeps: a wake-up costs tens of
 * microseconds on a virtual host, more than most requests. The window adapts as QEMU's event loop does
 * (aio-poll-max-ns): after a sleep that a window of up to poll_us would have covered, it doubles; after a longer
 * sleep it halves, so an idle queue soon stops burning CPU. Returns true when a request arrived.
 */
static bool busy_poll(struct vu_queue *q)
{
	if (!q->poll_ns)
		return false;
	uint64_t end = vu_now_ns() + q->poll_ns;
	do {
		if (vq_device_has_pending(&q->vq))
			return true;
		__builtin_ia32_pause();
	} while (vu_now_ns() < end);
	return false;
}

static void adapt_poll(struct vu_queue *q, uint64_t slept_ns)
{
	uint64_t max = (uint64_t)q->dev->cfg.poll_us * 1000u;
	if (!max)
		return;
	if (slept_ns <= max)
		q->poll_ns = q->poll_ns ? MIN(max, q->poll_ns * 2) : MIN(max, 4000u);
	else
		q->poll_ns = q->poll_ns >= 2000u ? q->poll_ns / 2 : 0;
}

/* Arming writes the ring (event suppression), which is logged: under push_lock like every other logged write. */
static bool arm(struct vu_queue *q)
{
	pthread_mutex_lock(&q->push_lock);
	bool more = vq_device_arm(&q->vq);
	pthread_mutex_unlock(&q->push_lock);
	return more;
}

static void *queue_thread(void *arg)
{
	struct vu_queue *q = arg;
	struct vq_chain *chain = malloc(sizeof(*chain));
	struct pollfd pfd[2] = { { .fd = q->kick_fd, .events = POLLIN }, { .fd = q->stop_fd, .events = POLLIN } };
	uint64_t faults = gm_fault_count();

	if (!chain) {
		log_err("queue %u: out of memory", q->index);
		return NULL;
	}
	serving = q;
	for (;;) {
		if (drain(q, chain, &faults) < 0) {
			vu_queue_mark_broken(q);
			break;
		}
		bool more = busy_poll(q) || arm(q);
		if (memory_lost(&faults)) {
			vu_queue_mark_broken(q);
			break;
		}
		if (more)
			continue;
		uint64_t slept = vu_now_ns();
		if (poll(pfd, 2, -1) < 0 && errno != EINTR)
			break;
		adapt_poll(q, vu_now_ns() - slept);
		if (pfd[1].revents)
			break;
		if (pfd[0].revents & POLLIN) {
			eventfd_t v;
			eventfd_read(q->kick_fd, &v);
		} else if (pfd[0].revents) {
			break; /* kick fd hung up */
		}
	}
	free(chain);
	return NULL;
}

static bool queue_ready(const struct vu_dev *dev, const struct vu_queue *q)
{
	bool enabled = q->enabled || !(dev->features & (1ull << VHU_F_PROTOCOL_FEATURES));
	return enabled && q->addr_set && q->num && q->kick_fd >= 0 && !q->broken;
}

int vu_queue_start(struct vu_dev *dev, struct vu_queue *q)
{
	struct vq_device_setup st = {
		.packed = dev->features & (1ull << VIRTIO_F_RING_PACKED_BIT),
		.num = q->num,
		.desc_ua = q->desc_ua,
		.driver_ua = q->avail_ua,
		.device_ua = q->used_ua,
		.event_idx = dev->features & (1ull << VIRTIO_RING_F_EVENT_IDX_BIT),
		.base = q->base,
		.resume = !q->base_from_frontend,
	};
	st.log = vu_log_ring(dev, q, st.packed);

	if (q->running || !queue_ready(dev, q))
		return 0;
	int rc = vq_device_start(&q->vq, &dev->mem, &st);
	if (rc < 0) {
		log_err("queue %u: %s", q->index, rc == -EFAULT ? "ring addresses are outside guest memory or misaligned"
		                                                : "the vring base is outside the ring");
		q->broken = true;
		return rc;
	}
	q->base_from_frontend = false;
	q->stop_fd = eventfd(0, EFD_CLOEXEC);
	if (q->stop_fd < 0)
		return neg_errno();
	q->poll_ns = (uint64_t)q->dev->cfg.poll_us * 1000u;
	/* running before the thread exists: a deferred completion checks it */
	pthread_mutex_lock(&q->push_lock);
	q->running = true;
	pthread_mutex_unlock(&q->push_lock);
	rc = pthread_create(&q->thread, NULL, queue_thread, q);
	if (rc) {
		pthread_mutex_lock(&q->push_lock);
		q->running = false;
		pthread_mutex_unlock(&q->push_lock);
		close_if_open(&q->stop_fd);
		return -rc;
	}
	log_debug("queue %u: started (%s, size %u, base 0x%x)", q->index, q->vq.ops->name, q->num,
	          vq_device_base(&q->vq));
	return 0;
}

void vu_queue_stop(struct vu_queue *q)
{
	if (!q->running)
		return;
	eventfd_write(q->stop_fd, 1);
	pthread_join(q->thread, NULL);
	if (q->dev->pool)
		vu_pool_drain(q->dev->pool, q); /* its chains in the pool are pushed before the ring is given back */
	close_if_open(&q->stop_fd);
	pthread_mutex_lock(&q->push_lock);
	q->running = false;
	pthread_mutex_unlock(&q->push_lock);
	q->base = vq_device_base(&q->vq);
	log_debug("queue %u: stopped at 0x%x", q->index, q->base);
}

/* Guest memory may only change while no queue thread reads it. */
unsigned vu_queues_stop_all(struct vu_dev *dev)
{
	unsigned mask = 0;
	for (unsigned i = 0; i < dev->cfg.max_queues; i++) {
		if (dev->q[i].running)
			mask |= 1u << i;
		vu_queue_stop(&dev->q[i]);
	}
	return mask;
}

void vu_queues_restart(struct vu_dev *dev, unsigned mask)
{
	for (unsigned i = 0; i < dev->cfg.max_queues; i++)
		if (mask & (1u << i))
			vu_queue_start(dev, &dev->q[i]);
}

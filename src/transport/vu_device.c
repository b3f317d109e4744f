#include "transport/vu_device.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"

/* A message that does not have the size or fds its request needs: the frontend is broken, drop it. */
#define FATAL (-EPROTO)

uint64_t vu_dev_offered_features(void)
{
	return 1ull << VIRTIO_F_VERSION_1_BIT | 1ull << VHU_F_PROTOCOL_FEATURES |
	       1ull << VIRTIO_RING_F_EVENT_IDX_BIT | 1ull << VIRTIO_RING_F_INDIRECT_DESC_BIT;
}

uint64_t vu_dev_offered_protocol_features(void)
{
	return 1ull << VHU_PROTOCOL_F_MQ | 1ull << VHU_PROTOCOL_F_REPLY_ACK | 1ull << VHU_PROTOCOL_F_BACKEND_REQ |
	       1ull << VHU_PROTOCOL_F_CONFIGURE_MEM_SLOTS;
}

/* ---- queue threads ---- */

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

static void push_and_notify(struct vu_queue *q, uint16_t head, uint32_t len, bool notify)
{
	pthread_mutex_lock(&q->push_lock);
	vq_device_push(&q->vq, head, len);
	if (notify)
		notify_locked(q);
	pthread_mutex_unlock(&q->push_lock);
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
		/* The walk handed these out of this memory table, which cannot change while we are in the handler. */
		if (gm_host_to_gpa(&q->dev->mem, wr[i].iov_base, wr[i].iov_len, &p->seg[i].gpa) < 0) {
			free(p);
			return NULL;
		}
		p->seg[i].len = wr[i].iov_len;
	}
	return p;
}

void vu_pending_drop(struct vu_pending *p)
{
	free(p);
}

/* Copies reply into the pending chain's buffers as the memory table has them now; returns the bytes written. */
static uint32_t write_pending(const struct vu_pending *p, const void *reply, size_t len)
{
	size_t done = 0;
	for (unsigned i = 0; i < p->n && done < len; i++) {
		size_t n = MIN(p->seg[i].len, len - done);
		void *dst = gm_gpa_ptr(&p->q->dev->mem, p->seg[i].gpa, n);
		if (!dst)
			return 0; /* the memory went away: the buffer comes back empty */
		memcpy(dst, (const uint8_t *)reply + done, n);
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

static void mark_broken(struct vu_queue *q)
{
	q->broken = true;
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

/* Serves every chain available now. Returns 0, or -EIO when the ring or the memory under it is broken. */
static int drain(struct vu_queue *q, struct vq_chain *chain, uint64_t *faults)
{
	unsigned batch = 0;
	for (;;) {
		int rc = vq_device_pop(&q->vq, chain);
		if (memory_lost(faults))
			return -EIO;
		if (rc == VQ_EMPTY)
			break;
		if (rc == -EIO)
			return rc;
		long len = rc == -EBADMSG ? 0 : q->dev->cfg.handle(q->dev->cfg.opaque, q, chain);
		if (memory_lost(faults))
			return -EIO; /* the request read zeros where the guest's bytes were: its reply means nothing */
		if (len == VU_DEFERRED)
			continue;
		push_and_notify(q, chain->head, (uint32_t)len, ++batch % NOTIFY_EVERY == 0);
	}
	if (batch % NOTIFY_EVERY == 0)
		return 0; /* nothing pushed since the last notification: no spurious interrupt */
	pthread_mutex_lock(&q->push_lock);
	notify_locked(q);
	pthread_mutex_unlock(&q->push_lock);
	return 0;
}

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
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
	uint64_t end = mono_ns() + q->poll_ns;
	do {
		if (load_acquire16(&q->vq.r.avail->idx) != q->vq.last_avail)
			return true;
		__builtin_ia32_pause();
	} while (mono_ns() < end);
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
			mark_broken(q);
			break;
		}
		bool more = busy_poll(q) || vq_device_arm(&q->vq);
		if (memory_lost(&faults)) {
			mark_broken(q);
			break;
		}
		if (more)
			continue;
		uint64_t slept = mono_ns();
		if (poll(pfd, 2, -1) < 0 && errno != EINTR)
			break;
		adapt_poll(q, mono_ns() - slept);
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

static int queue_start(struct vu_dev *dev, struct vu_queue *q)
{
	struct vring_split r = { .num = q->num };

	if (q->running || !queue_ready(dev, q))
		return 0;
	r.desc = gm_uaddr_ptr(&dev->mem, q->desc_ua, vring_desc_bytes(q->num));
	r.avail = gm_uaddr_ptr(&dev->mem, q->avail_ua, vring_avail_bytes(q->num));
	r.used = gm_uaddr_ptr(&dev->mem, q->used_ua, vring_used_bytes(q->num));
	if (!r.desc || !r.avail || !r.used || ((uintptr_t)r.desc & 15) || ((uintptr_t)r.avail & 1) ||
	    ((uintptr_t)r.used & 3)) {
		log_err("queue %u: ring addresses are outside guest memory or misaligned", q->index);
		q->broken = true;
		return -EFAULT;
	}
	vq_device_init(&q->vq, &dev->mem, &r, dev->features & (1ull << VIRTIO_RING_F_EVENT_IDX_BIT), q->base);
	/* vq_device_init takes requests popped but not returned as lost, which is right for a frontend's base.
	 * After our own pause, deferred requests (SETLKW) are still out and will be returned: keep our place. */
	if (!q->base_from_frontend)
		q->vq.last_avail = q->base;
	q->base_from_frontend = false;
	q->stop_fd = eventfd(0, EFD_CLOEXEC);
	if (q->stop_fd < 0)
		return neg_errno();
	q->poll_ns = (uint64_t)q->dev->cfg.poll_us * 1000u;
	/* running before the thread exists: a deferred completion checks it */
	pthread_mutex_lock(&q->push_lock);
	q->running = true;
	pthread_mutex_unlock(&q->push_lock);
	int rc = pthread_create(&q->thread, NULL, queue_thread, q);
	if (rc) {
		pthread_mutex_lock(&q->push_lock);
		q->running = false;
		pthread_mutex_unlock(&q->push_lock);
		close_if_open(&q->stop_fd);
		return -rc;
	}
	log_debug("queue %u: started (size %u, base %u)", q->index, q->num, q->vq.last_avail);
	return 0;
}

static void queue_stop(struct vu_queue *q)
{
	if (!q->running)
		return;
	eventfd_write(q->stop_fd, 1);
	pthread_join(q->thread, NULL);
	close_if_open(&q->stop_fd);
	pthread_mutex_lock(&q->push_lock);
	q->running = false;
	pthread_mutex_unlock(&q->push_lock);
	q->base = q->vq.last_avail;
	log_debug("queue %u: stopped at %u", q->index, q->base);
}

/* Guest memory may only change while no queue thread reads it. */
static unsigned stop_all(struct vu_dev *dev)
{
	unsigned mask = 0;
	for (unsigned i = 0; i < dev->cfg.max_queues; i++) {
		if (dev->q[i].running)
			mask |= 1u << i;
		queue_stop(&dev->q[i]);
	}
	return mask;
}

static void restart(struct vu_dev *dev, unsigned mask)
{
	for (unsigned i = 0; i < dev->cfg.max_queues; i++)
		if (mask & (1u << i))
			queue_start(dev, &dev->q[i]);
}

/* ---- message handlers: 0 ok, -errno refused (reported if the frontend asked), FATAL drops the connection ---- */

static void reply_u64(struct vhu_msg *msg, uint64_t v)
{
	msg->p.u64 = v;
	msg->hdr.size = sizeof(uint64_t);
}

static struct vu_queue *queue_of(struct vu_dev *dev, uint32_t index)
{
	return index < dev->cfg.max_queues ? &dev->q[index] : NULL;
}

static int on_set_features(struct vu_dev *dev, struct vhu_msg *msg)
{
	if (msg->p.u64 & ~vu_dev_offered_features())
		return -EINVAL;
	dev->features = msg->p.u64;
	return 0;
}

static int on_set_protocol_features(struct vu_dev *dev, struct vhu_msg *msg)
{
	if (msg->p.u64 & ~vu_dev_offered_protocol_features())
		return -EINVAL;
	dev->protocol_features = msg->p.u64;
	return 0;
}

static int add_region(struct vu_dev *dev, const struct vhu_mem_region *reg, int fd)
{
	int rc = gm_add(&dev->mem, reg->gpa, reg->size, reg->uaddr, reg->mmap_offset, fd);
	if (rc < 0)
		log_err("memory region gpa 0x%llx size 0x%llx refused: %s", (unsigned long long)reg->gpa,
		        (unsigned long long)reg->size, strerror(-rc));
	return rc;
}

static int on_set_mem_table(struct vu_dev *dev, struct vhu_msg *msg)
{
	uint32_t n = msg->p.mem.nregions;
	if (n == 0 || n > VHU_MEM_TABLE_MAX || msg->hdr.size != 8 + n * sizeof(struct vhu_mem_region) || msg->nfds != n)
		return FATAL;
	unsigned running = stop_all(dev);
	gm_clear(&dev->mem);
	int rc = 0;
	for (uint32_t i = 0; i < n && rc == 0; i++)
		rc = add_region(dev, &msg->p.mem.regions[i], msg->fds[i]);
	if (rc < 0)
		gm_clear(&dev->mem);
	restart(dev, running);
	return rc;
}

static int on_add_mem_reg(struct vu_dev *dev, struct vhu_msg *msg)
{
	if (msg->nfds != 1)
		return FATAL;
	unsigned running = stop_all(dev);
	int rc = add_region(dev, &msg->p.memreg.region, msg->fds[0]);
	restart(dev, running);
	return rc;
}

static int on_rem_mem_reg(struct vu_dev *dev, struct vhu_msg *msg)
{
	if (msg->nfds > 1)
		return FATAL;
	unsigned running = stop_all(dev);
	int rc = gm_remove(&dev->mem, msg->p.memreg.region.gpa, msg->p.memreg.region.size);
	restart(dev, running);
	return rc;
}

static int on_set_vring_num(struct vu_dev *dev, struct vhu_msg *msg)
{
	struct vu_queue *q = queue_of(dev, msg->p.state.index);
	if (!q || !vring_valid_num(msg->p.state.num))
		return -EINVAL;
	if (q->running)
		return -EBUSY;
	q->num = msg->p.state.num;
	return 0;
}

static int on_set_vring_addr(struct vu_dev *dev, struct vhu_msg *msg)
{
	struct vu_queue *q = queue_of(dev, msg->p.addr.index);
	if (!q)
		return -EINVAL;
	bool was = q->running;
	queue_stop(q);
	q->desc_ua = msg->p.addr.desc_uaddr;
	q->avail_ua = msg->p.addr.avail_uaddr;
	q->used_ua = msg->p.addr.used_uaddr;
	q->addr_set = true;
	q->broken = false;
	return was ? queue_start(dev, q) : 0;
}

static int on_set_vring_base(struct vu_dev *dev, struct vhu_msg *msg)
{
	struct vu_queue *q = queue_of(dev, msg->p.state.index);
	if (!q || msg->p.state.num > 0xffff)
		return -EINVAL;
	if (q->running)
		return -EBUSY;
	q->base = (uint16_t)msg->p.state.num;
	q->base_from_frontend = true;
	q->ring_gen++;
	return 0;
}

static int on_get_vring_base(struct vu_dev *dev, struct vhu_msg *msg)
{
	struct vu_queue *q = queue_of(dev, msg->p.state.index);
	if (!q)
		return FATAL; /* the frontend waits for a reply we cannot give */
	queue_stop(q);
	close_if_open(&q->kick_fd);
	q->broken = false;
	q->ring_gen++; /* the frontend owns the ring again: requests still deferred are lost with it */
	msg->p.state.num = q->base;
	msg->hdr.size = sizeof(msg->p.state);
	return 0;
}

/*
 * A kick, call or error fd is the frontend's and as hostile as its messages: a pipe or a file would block our
 * writes (a full pipe, or an eventfd at its maximum count, stalls the queue thread for ever while it holds the
 * push lock) or be always readable (a busy loop). Take only an eventfd (an anonymous inode: no file type), and
 * make it non-blocking: a write that would block can be dropped, since the counter is already non-zero and the
 * frontend will see it; a read that would block (the frontend drained it first) means no kick.
 * QEMU creates these eventfds non-blocking itself; the flag is on the file description it shares with us.
 */
static int check_event_fd(int fd)
{
	struct stat st;
	int fl;

	if (fstat(fd, &st) < 0)
		return neg_errno();
	if (st.st_mode & S_IFMT) {
		log_err("vhost-user: a vring fd must be an eventfd (mode 0%o refused)", (unsigned)st.st_mode);
		return -EINVAL;
	}
	fl = fcntl(fd, F_GETFL);
	if (fl < 0 || (!(fl & O_NONBLOCK) && fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0))
		return neg_errno();
	return 0;
}

/* KICK, CALL and ERR carry the queue index and "no fd" flag in a u64. */
static int take_vring_fd(struct vu_dev *dev, struct vhu_msg *msg, struct vu_queue **q, int *fd)
{
	bool nofd = msg->p.u64 & VHU_VRING_NOFD_MASK;
	if (msg->p.u64 & ~(uint64_t)(VHU_VRING_IDX_MASK | VHU_VRING_NOFD_MASK) || msg->nfds != (nofd ? 0u : 1u))
		return FATAL;
	*q = queue_of(dev, (uint32_t)(msg->p.u64 & VHU_VRING_IDX_MASK));
	if (!*q)
		return -EINVAL;
	if (!nofd) {
		int rc = check_event_fd(msg->fds[0]);
		if (rc < 0)
			return rc; /* the fd stays with the message, which closes it */
	}
	*fd = nofd ? -1 : msg->fds[0];
	msg->nfds = 0; /* ownership moves to the queue */
	return 0;
}

static int on_set_vring_kick(struct vu_dev *dev, struct vhu_msg *msg)
{
	struct vu_queue *q;
	int fd, rc = take_vring_fd(dev, msg, &q, &fd);
	if (rc < 0)
		return rc;
	queue_stop(q);
	close_if_open(&q->kick_fd);
	q->kick_fd = fd;
	if (fd < 0)
		return -EINVAL; /* polling mode without a kick fd is not supported */
	return queue_start(dev, q);
}

static int on_set_vring_call(struct vu_dev *dev, struct vhu_msg *msg)
{
	struct vu_queue *q;
	int fd, rc = take_vring_fd(dev, msg, &q, &fd);
	if (rc < 0)
		return rc;
	pthread_mutex_lock(&q->push_lock);
	close_if_open(&q->call_fd);
	q->call_fd = fd;
	pthread_mutex_unlock(&q->push_lock);
	return 0;
}

static int on_set_vring_err(struct vu_dev *dev, struct vhu_msg *msg)
{
	struct vu_queue *q;
	int fd, rc = take_vring_fd(dev, msg, &q, &fd);
	if (rc < 0)
		return rc;
	pthread_mutex_lock(&q->push_lock);
	close_if_open(&q->err_fd);
	q->err_fd = fd;
	pthread_mutex_unlock(&q->push_lock);
	return 0;
}

static int on_set_vring_enable(struct vu_dev *dev, struct vhu_msg *msg)
{
	struct vu_queue *q = queue_of(dev, msg->p.state.index);
	if (!q || msg->p.state.num > 1)
		return -EINVAL;
	q->enabled = msg->p.state.num;
	if (!q->enabled) {
		queue_stop(q);
		return 0;
	}
	return queue_start(dev, q);
}

static int on_set_backend_req_fd(struct vu_dev *dev, struct vhu_msg *msg)
{
	if (msg->nfds != 1)
		return FATAL;
	close_if_open(&dev->backend_req_fd);
	dev->backend_req_fd = msg->fds[0];
	msg->nfds = 0;
	return 0;
}

static void reset_queues(struct vu_dev *dev)
{
	stop_all(dev);
	for (unsigned i = 0; i < dev->cfg.max_queues; i++) {
		struct vu_queue *q = &dev->q[i];
		close_if_open(&q->kick_fd);
		close_if_open(&q->err_fd);
		pthread_mutex_lock(&q->push_lock);
		close_if_open(&q->call_fd);
		pthread_mutex_unlock(&q->push_lock);
		q->num = 0;
		q->addr_set = q->enabled = q->broken = false;
		q->base = 0;
		q->base_from_frontend = true;
		q->ring_gen++;
	}
}

static int on_message(struct vu_dev *dev, struct vhu_msg *msg, bool *has_reply)
{
	*has_reply = false;
	switch (msg->hdr.request) {
	case VHU_GET_FEATURES:
		*has_reply = true;
		reply_u64(msg, vu_dev_offered_features());
		return 0;
	case VHU_SET_FEATURES:
		return on_set_features(dev, msg);
	case VHU_GET_PROTOCOL_FEATURES:
		*has_reply = true;
		reply_u64(msg, vu_dev_offered_protocol_features());
		return 0;
	case VHU_SET_PROTOCOL_FEATURES:
		return on_set_protocol_features(dev, msg);
	case VHU_SET_OWNER:
		dev->owner_set = true;
		return 0;
	case VHU_RESET_OWNER:
	case VHU_RESET_DEVICE:
		reset_queues(dev);
		dev->features = 0;
		return 0;
	case VHU_GET_QUEUE_NUM:
		*has_reply = true;
		reply_u64(msg, dev->cfg.max_queues);
		return 0;
	case VHU_GET_MAX_MEM_SLOTS:
		*has_reply = true;
		reply_u64(msg, GM_MAX_REGIONS);
		return 0;
	case VHU_SET_MEM_TABLE:
		return on_set_mem_table(dev, msg);
	case VHU_ADD_MEM_REG:
		return on_add_mem_reg(dev, msg);
	case VHU_REM_MEM_REG:
		return on_rem_mem_reg(dev, msg);
	case VHU_SET_VRING_NUM:
		return on_set_vring_num(dev, msg);
	case VHU_SET_VRING_ADDR:
		return on_set_vring_addr(dev, msg);
	case VHU_SET_VRING_BASE:
		return on_set_vring_base(dev, msg);
	case VHU_GET_VRING_BASE:
		*has_reply = true;
		return on_get_vring_base(dev, msg);
	case VHU_SET_VRING_KICK:
		return on_set_vring_kick(dev, msg);
	case VHU_SET_VRING_CALL:
		return on_set_vring_call(dev, msg);
	case VHU_SET_VRING_ERR:
		return on_set_vring_err(dev, msg);
	case VHU_SET_VRING_ENABLE:
		return on_set_vring_enable(dev, msg);
	case VHU_SET_BACKEND_REQ_FD:
		return on_set_backend_req_fd(dev, msg);
	default:
		log_warn("vhost-user: %s (%u) is not supported", vhu_request_name(msg->hdr.request), msg->hdr.request);
		return -ENOSYS;
	}
}

/* The payload size each request must carry; -1: checked by its handler; -2: not one we know. */
static int expected_size(uint32_t request)
{
	switch (request) {
	case VHU_GET_FEATURES: case VHU_GET_PROTOCOL_FEATURES: case VHU_SET_OWNER: case VHU_RESET_OWNER:
	case VHU_GET_QUEUE_NUM: case VHU_GET_MAX_MEM_SLOTS: case VHU_SET_BACKEND_REQ_FD: case VHU_RESET_DEVICE:
		return 0;
	case VHU_SET_FEATURES: case VHU_SET_PROTOCOL_FEATURES:
	case VHU_SET_VRING_KICK: case VHU_SET_VRING_CALL: case VHU_SET_VRING_ERR:
		return sizeof(uint64_t);
	case VHU_SET_VRING_NUM: case VHU_SET_VRING_BASE: case VHU_GET_VRING_BASE: case VHU_SET_VRING_ENABLE:
		return sizeof(struct vhu_vring_state);
	case VHU_SET_VRING_ADDR:
		return sizeof(struct vhu_vring_addr);
	case VHU_ADD_MEM_REG: case VHU_REM_MEM_REG:
		return sizeof(struct vhu_mem_reg);
	case VHU_SET_MEM_TABLE:
		return -1;
	default:
		return -2;
	}
}

static bool takes_fds(uint32_t request)
{
	switch (request) {
	case VHU_SET_MEM_TABLE: case VHU_ADD_MEM_REG: case VHU_REM_MEM_REG: case VHU_SET_VRING_KICK:
	case VHU_SET_VRING_CALL: case VHU_SET_VRING_ERR: case VHU_SET_BACKEND_REQ_FD:
		return true;
	default:
		return false;
	}
}

/* Checks framing, runs the handler, answers. Returns 0 to go on, <0 to drop the connection. */
static int serve_one(struct vu_dev *dev, struct vhu_msg *msg)
{
	int want = expected_size(msg->hdr.request);
	bool has_reply;
	int rc;

	if ((msg->hdr.flags & 0x3) != VHU_VERSION || (msg->hdr.flags & VHU_FLAG_REPLY)) {
		log_err("vhost-user: bad header flags 0x%x", msg->hdr.flags);
		return FATAL;
	}
	if ((want >= 0 && msg->hdr.size != (uint32_t)want) || (msg->nfds && !takes_fds(msg->hdr.request))) {
		log_err("vhost-user: %s with %u bytes and %u fds is malformed", vhu_request_name(msg->hdr.request),
		        msg->hdr.size, msg->nfds);
		return FATAL;
	}
	log_debug("vhost-user: %s", vhu_request_name(msg->hdr.request));
	pthread_rwlock_wrlock(&dev->ctrl_lock);
	rc = on_message(dev, msg, &has_reply);
	pthread_rwlock_unlock(&dev->ctrl_lock);
	vhu_close_fds(msg);
	if (rc == FATAL) {
		log_err("vhost-user: %s is malformed", vhu_request_name(msg->hdr.request));
		return rc;
	}
	if (rc < 0)
		log_warn("vhost-user: %s failed: %s", vhu_request_name(msg->hdr.request), strerror(-rc));
	if (!has_reply) {
		bool ack = (dev->protocol_features & (1ull << VHU_PROTOCOL_F_REPLY_ACK)) &&
		           (msg->hdr.flags & VHU_FLAG_NEED_REPLY);
		if (!ack)
			return 0;
		reply_u64(msg, rc < 0);
	} else if (rc < 0) {
		return rc; /* the frontend expects a value we could not produce */
	}
	msg->hdr.flags = VHU_VERSION | VHU_FLAG_REPLY;
	return vhu_send(dev->sock, msg);
}

int vu_dev_init(struct vu_dev *dev, int sock, const struct vu_dev_config *cfg)
{
	if (cfg->max_queues < 2 || cfg->max_queues > VU_MAX_QUEUES || !cfg->handle)
		return -EINVAL;
	memset(dev, 0, sizeof(*dev));
	dev->sock = sock;
	dev->cfg = *cfg;
	dev->backend_req_fd = -1;
	pthread_rwlock_init(&dev->ctrl_lock, NULL);
	for (unsigned i = 0; i < VU_MAX_QUEUES; i++) {
		struct vu_queue *q = &dev->q[i];
		q->dev = dev;
		q->index = i;
		q->base_from_frontend = true;
		q->kick_fd = q->call_fd = q->err_fd = q->stop_fd = -1;
		pthread_mutex_init(&q->push_lock, NULL);
	}
	return 0;
}

int vu_dev_serve(struct vu_dev *dev)
{
	struct vhu_msg *msg = malloc(sizeof(*msg));
	int rc;

	if (!msg)
		return -ENOMEM;
	for (;;) {
		rc = vhu_recv(dev->sock, msg);
		if (rc < 0)
			break;
		rc = serve_one(dev, msg);
		vhu_close_fds(msg); /* a message refused before its handler ran still holds its fds */
		if (rc < 0)
			break;
	}
	free(msg);
	pthread_rwlock_wrlock(&dev->ctrl_lock);
	reset_queues(dev);
	pthread_rwlock_unlock(&dev->ctrl_lock);
	if (rc == -ECONNRESET) {
		log_info("vhost-user: frontend disconnected");
		return 0;
	}
	log_err("vhost-user: connection dropped: %s", strerror(-rc));
	return rc;
}

void vu_dev_destroy(struct vu_dev *dev)
{
	pthread_rwlock_wrlock(&dev->ctrl_lock);
	reset_queues(dev);
	close_if_open(&dev->backend_req_fd);
	gm_clear(&dev->mem);
	pthread_rwlock_unlock(&dev->ctrl_lock);
	for (unsigned i = 0; i < VU_MAX_QUEUES; i++)
		pthread_mutex_destroy(&dev->q[i].push_lock);
	pthread_rwlock_destroy(&dev->ctrl_lock);
}

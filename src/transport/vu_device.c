/*
 * The control plane of a vhost-user device: the frontend's messages (features, memory, rings, fds), answered on
 * the connection's thread under ctrl_lock. The queue plane is vu_queue.c.
 */
#include "transport/vu_internal.h"

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
	       1ull << VIRTIO_RING_F_EVENT_IDX_BIT | 1ull << VIRTIO_RING_F_INDIRECT_DESC_BIT |
	       1ull << VIRTIO_F_RING_PACKED_BIT | 1ull << VHOST_F_LOG_ALL_BIT;
}

uint64_t vu_dev_offered_protocol_features(const struct vu_dev *dev)
{
	uint64_t f = 1ull << VHU_PROTOCOL_F_MQ | 1ull << VHU_PROTOCOL_F_REPLY_ACK | 1ull << VHU_PROTOCOL_F_BACKEND_REQ |
	             1ull << VHU_PROTOCOL_F_CONFIGURE_MEM_SLOTS | 1ull << VHU_PROTOCOL_F_LOG_SHMFD;
	if (dev->cfg.config)
		f |= 1ull << VHU_PROTOCOL_F_CONFIG;
	if (dev->cfg.n_shmem)
		f |= 1ull << VHU_PROTOCOL_F_SHMEM;
	if (dev->cfg.state_save && dev->cfg.state_load)
		f |= 1ull << VHU_PROTOCOL_F_DEVICE_STATE;
	return f;
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

static void set_features(struct vu_dev *dev, uint64_t f)
{
	dev->features = f;
	/* The frontend turns logging on and off with the queues running (migration start, a failed one's end). */
	vu_log_set_enabled(dev, f & (1ull << VHOST_F_LOG_ALL_BIT));
}

static int on_set_features(struct vu_dev *dev, struct vhu_msg *msg)
{
	if (msg->p.u64 & ~vu_dev_offered_features())
		return -EINVAL;
	set_features(dev, msg->p.u64);
	return 0;
}

static int on_set_protocol_features(struct vu_dev *dev, struct vhu_msg *msg)
{
	if (msg->p.u64 & ~vu_dev_offered_protocol_features(dev))
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
	unsigned running = vu_queues_stop_all(dev);
	gm_clear(&dev->mem);
	int rc = 0;
	for (uint32_t i = 0; i < n && rc == 0; i++)
		rc = add_region(dev, &msg->p.mem.regions[i], msg->fds[i]);
	if (rc < 0)
		gm_clear(&dev->mem);
	vu_queues_restart(dev, running);
	return rc;
}

/*
 * Adding and removing one region never stops the queues (guest_mem.h): the VMM sends these while it maps and
 * unmaps DAX ranges at our request, with a queue thread waiting for its answer (stopping that thread would wait for
 * the answer, which waits for our reply to this message). Only when the table is full of retired regions are the
 * queues stopped to unmap them.
 */
static int on_add_mem_reg(struct vu_dev *dev, struct vhu_msg *msg)
{
	if (msg->nfds != 1)
		return FATAL;
	if (vu_window_region_add(dev, msg->p.memreg.region.gpa, msg->p.memreg.region.size, msg->fds[0]))
		return 0; /* one of our own maps: nothing of the guest's to translate there */
	if (dev->mem.n == GM_MAX_REGIONS) {
		unsigned running = vu_queues_stop_all(dev);
		gm_compact(&dev->mem);
		vu_queues_restart(dev, running);
	}
	return add_region(dev, &msg->p.memreg.region, msg->fds[0]);
}

static int on_rem_mem_reg(struct vu_dev *dev, struct vhu_msg *msg)
{
	if (msg->nfds > 1)
		return FATAL;
	if (vu_window_region_remove(dev, msg->p.memreg.region.gpa, msg->p.memreg.region.size))
		return 0;
	return gm_retire(&dev->mem, msg->p.memreg.region.gpa, msg->p.memreg.region.size);
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
	vu_queue_stop(q);
	q->desc_ua = msg->p.addr.desc_uaddr;
	q->avail_ua = msg->p.addr.avail_uaddr;
	q->used_ua = msg->p.addr.used_uaddr;
	q->log_gpa = msg->p.addr.log_gaddr;
	q->log_used = msg->p.addr.flags & (1u << VHU_VRING_F_LOG);
	q->addr_set = true;
	q->broken = false;
	return was ? vu_queue_start(dev, q) : 0;
}

static int on_set_vring_base(struct vu_dev *dev, struct vhu_msg *msg)
{
	struct vu_queue *q = queue_of(dev, msg->p.state.index);
	bool packed = dev->features & (1ull << VIRTIO_F_RING_PACKED_BIT);
	/* split: the next avail index; packed: avail slot and wrap counter, used slot and wrap counter (vring.h) */
	if (!q || (!packed && msg->p.state.num > 0xffff))
		return -EINVAL;
	if (q->running)
		return -EBUSY;
	q->base = msg->p.state.num;
	q->base_from_frontend = true;
	q->ring_gen++;
	return 0;
}

static int on_get_vring_base(struct vu_dev *dev, struct vhu_msg *msg)
{
	struct vu_queue *q = queue_of(dev, msg->p.state.index);
	if (!q)
		return FATAL; /* the frontend waits for a reply we cannot give */
	vu_queue_stop(q);
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
	vu_queue_stop(q);
	close_if_open(&q->kick_fd);
	q->kick_fd = fd;
	if (fd < 0)
		return -EINVAL; /* polling mode without a kick fd is not supported */
	return vu_queue_start(dev, q);
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
	/*
	 * A new call fd for a running queue moves the guest's interrupt: QEMU masking or unmasking an MSI-X vector
	 * swaps its own "masked" eventfd and the guest's. On unmask it sends this message without waiting for us and
	 * then looks once at the masked fd for a notification it should pass on; one we signalled there after that
	 * look, before this message reached us, is lost, and a driver asleep until its reply comes sleeps for ever.
	 * So signal the new fd once: at worst a spurious interrupt, which the driver ignores when it finds no new
	 * used entries (libvhost-user does the same).
	 */
	if (fd >= 0 && q->running)
		eventfd_write(fd, 1);
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
		vu_queue_stop(q);
		return 0;
	}
	return vu_queue_start(dev, q);
}

static int on_set_backend_req_fd(struct vu_dev *dev, struct vhu_msg *msg)
{
	if (msg->nfds != 1)
		return FATAL;
	pthread_mutex_lock(&dev->backend_lock);
	close_if_open(&dev->backend_req_fd);
	dev->backend_req_fd = msg->fds[0];
	dev->backend_unanswered = 0; /* a new channel owes us nothing */
	pthread_mutex_unlock(&dev->backend_lock);
	msg->nfds = 0;
	return 0;
}

static bool negotiated(const struct vu_dev *dev, unsigned protocol_feature)
{
	return dev->protocol_features & (1ull << protocol_feature);
}

/*
 * The dirty log. With LOG_SHMFD the frontend waits for an answer although it asked for none (QEMU reads one
 * reply and checks only its request code; Rust virtiofsd echoes the payload, as we do). Since any answer reads
 * as success, a log we cannot take is refused by dropping the connection: migrating on without our writes
 * logged would leave stale pages on the destination.
 */
static int on_set_log_base(struct vu_dev *dev, struct vhu_msg *msg, bool *has_reply)
{
	if (!negotiated(dev, VHU_PROTOCOL_F_LOG_SHMFD))
		return msg->nfds ? FATAL : -ENOTSUP; /* a kernel-style log address: nothing we can map */
	*has_reply = true;
	if (msg->nfds != 1)
		return FATAL;
	return vu_log_set_base(dev, msg->fds[0], msg->p.log.mmap_size, msg->p.log.mmap_offset);
}

/* A window of the config space. A request outside it gets an empty answer, which tells QEMU it failed. */
static int on_get_config(struct vu_dev *dev, struct vhu_msg *msg)
{
	struct vhu_config *c = &msg->p.config;
	if (!negotiated(dev, VHU_PROTOCOL_F_CONFIG) || msg->hdr.size < VHU_CONFIG_HDR ||
	    msg->hdr.size - VHU_CONFIG_HDR != c->size || c->size > VHU_CONFIG_MAX ||
	    !range_within(c->offset, c->size, dev->cfg.config_len)) {
		msg->hdr.size = 0;
		return 0;
	}
	memcpy(c->region, dev->cfg.config + c->offset, c->size);
	return 0;
}

static int on_get_shmem_config(struct vu_dev *dev, struct vhu_msg *msg)
{
	struct vhu_shmem_config *sc = &msg->p.shmem;
	memset(sc, 0, sizeof(*sc));
	if (negotiated(dev, VHU_PROTOCOL_F_SHMEM)) {
		sc->nregions = dev->cfg.n_shmem;
		memcpy(sc->sizes, dev->cfg.shmem_sizes, dev->cfg.n_shmem * sizeof(sc->sizes[0]));
	}
	/* As QEMU 11.1.3 takes it: the count, then a size for each region (not the whole array). */
	msg->hdr.size = (uint32_t)(8 + sc->nregions * sizeof(sc->sizes[0]));
	return 0;
}

static void reset_queues(struct vu_dev *dev)
{
	vu_queues_stop_all(dev);
	for (unsigned i = 0; i < dev->cfg.max_queues; i++) {
		struct vu_queue *q = &dev->q[i];
		close_if_open(&q->kick_fd);
		close_if_open(&q->err_fd);
		pthread_mutex_lock(&q->push_lock);
		close_if_open(&q->call_fd);
		pthread_mutex_unlock(&q->push_lock);
		q->num = 0;
		q->addr_set = q->enabled = q->broken = q->log_used = false;
		q->base = 0;
		q->base_from_frontend = true;
		q->ring_gen++;
	}
}

static int on_set_device_state_fd(struct vu_dev *dev, struct vhu_msg *msg, bool *has_reply)
{
	if (!negotiated(dev, VHU_PROTOCOL_F_DEVICE_STATE))
		return -ENOSYS;
	if (msg->nfds != 1)
		return FATAL;
	int fd = msg->fds[0];
	msg->fds[0] = -1; /* vu_state_set_fd owns it now */
	uint64_t r = vu_state_set_fd(dev, msg->p.dstate.direction, msg->p.dstate.phase, fd);
	*has_reply = true;
	reply_u64(msg, r);
	return 0;
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
		reply_u64(msg, vu_dev_offered_protocol_features(dev));
		return 0;
	case VHU_SET_PROTOCOL_FEATURES:
		return on_set_protocol_features(dev, msg);
	case VHU_SET_OWNER:
		dev->owner_set = true;
		return 0;
	case VHU_RESET_OWNER:
	case VHU_RESET_DEVICE:
		vu_state_cancel(dev);
		reset_queues(dev);
		set_features(dev, 0);
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
	case VHU_SET_LOG_BASE:
		return on_set_log_base(dev, msg, has_reply);
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
	case VHU_GET_CONFIG:
		*has_reply = true;
		return on_get_config(dev, msg);
	case VHU_SET_CONFIG:
		return -EPERM; /* virtio-fs config space is read-only */
	case VHU_GET_SHMEM_CONFIG:
		*has_reply = true;
		return on_get_shmem_config(dev, msg);
	case VHU_SET_DEVICE_STATE_FD:
		return on_set_device_state_fd(dev, msg, has_reply);
	case VHU_CHECK_DEVICE_STATE:
		if (!negotiated(dev, VHU_PROTOCOL_F_DEVICE_STATE))
			return -ENOSYS;
		*has_reply = true;
		reply_u64(msg, vu_state_check(dev));
		return 0;
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
	case VHU_GET_SHMEM_CONFIG: case VHU_CHECK_DEVICE_STATE:
		return 0;
	case VHU_SET_DEVICE_STATE_FD:
		return sizeof(struct vhu_device_state);
	case VHU_SET_FEATURES: case VHU_SET_PROTOCOL_FEATURES:
	case VHU_SET_VRING_KICK: case VHU_SET_VRING_CALL: case VHU_SET_VRING_ERR:
		return sizeof(uint64_t);
	case VHU_SET_VRING_NUM: case VHU_SET_VRING_BASE: case VHU_GET_VRING_BASE: case VHU_SET_VRING_ENABLE:
		return sizeof(struct vhu_vring_state);
	case VHU_SET_VRING_ADDR:
		return sizeof(struct vhu_vring_addr);
	case VHU_ADD_MEM_REG: case VHU_REM_MEM_REG:
		return sizeof(struct vhu_mem_reg);
	case VHU_SET_LOG_BASE:
		return sizeof(struct vhu_log);
	case VHU_SET_MEM_TABLE: case VHU_GET_CONFIG: case VHU_SET_CONFIG:
		return -1;
	default:
		return -2;
	}
}

static bool takes_fds(uint32_t request)
{
	switch (request) {
	case VHU_SET_MEM_TABLE: case VHU_ADD_MEM_REG: case VHU_REM_MEM_REG: case VHU_SET_VRING_KICK:
	case VHU_SET_VRING_CALL: case VHU_SET_VRING_ERR: case VHU_SET_BACKEND_REQ_FD: case VHU_SET_DEVICE_STATE_FD:
	case VHU_SET_LOG_BASE:
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
	if (cfg->max_queues < 2 || cfg->max_queues > VU_MAX_QUEUES || !cfg->handle || cfg->config_len > VHU_CONFIG_MAX ||
	    (cfg->config_len && !cfg->config) || cfg->n_shmem > VHU_SHMEM_MAX)
		return -EINVAL;
	memset(dev, 0, sizeof(*dev));
	dev->sock = sock;
	dev->cfg = *cfg;
	dev->backend_req_fd = -1;
	pthread_rwlock_init(&dev->ctrl_lock, NULL);
	pthread_mutex_init(&dev->backend_lock, NULL);
	pthread_mutex_init(&dev->window_lock, NULL);
	for (unsigned i = 0; i < VU_MAX_QUEUES; i++) {
		struct vu_queue *q = &dev->q[i];
		q->dev = dev;
		q->index = i;
		q->base_from_frontend = true;
		q->kick_fd = q->call_fd = q->err_fd = q->stop_fd = -1;
		pthread_mutex_init(&q->push_lock, NULL);
	}
	int rc = vu_pool_new(dev, cfg->pool_threads, &dev->pool);
	if (rc < 0)
		vu_dev_destroy(dev);
	return rc;
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

/* Which queues the guest used, and how much: multiqueue is only real if the guest spreads its requests. */
static void log_queue_counts(struct vu_dev *dev)
{
	for (unsigned i = 0; i < dev->cfg.max_queues; i++) {
		uint64_t n = __atomic_load_n(&dev->q[i].requests, __ATOMIC_RELAXED);
		if (n)
			log_info("queue %u: %llu requests", i, (unsigned long long)n);
	}
}

void vu_dev_destroy(struct vu_dev *dev)
{
	pthread_rwlock_wrlock(&dev->ctrl_lock);
	vu_state_cancel(dev);
	reset_queues(dev);
	log_queue_counts(dev);
	pthread_mutex_lock(&dev->backend_lock);
	close_if_open(&dev->backend_req_fd);
	pthread_mutex_unlock(&dev->backend_lock);
	gm_clear(&dev->mem);
	vu_log_drop(dev);
	pthread_rwlock_unlock(&dev->ctrl_lock);
	vu_pool_free(dev->pool); /* every queue stopped above: no job is left */
	dev->pool = NULL;
	pthread_mutex_destroy(&dev->backend_lock);
	pthread_mutex_destroy(&dev->window_lock);
	free(dev->window_regions);
	for (unsigned i = 0; i < VU_MAX_QUEUES; i++)
		pthread_mutex_destroy(&dev->q[i].push_lock);
	pthread_rwlock_destroy(&dev->ctrl_lock);
}

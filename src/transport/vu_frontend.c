#include "transport/vu_frontend.h"

#include <errno.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "transport/vhost_user.h"

#define RING_ALIGN 4096u

static int connect_unix(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return neg_errno();
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int rc = neg_errno();
		close(fd);
		return rc;
	}
	return fd;
}

void *vu_frontend_alloc(struct vu_frontend *fe, size_t size, size_t align, uint64_t *gpa)
{
	void *p = NULL;
	pthread_mutex_lock(&fe->alloc_lock);
	size_t off = (fe->mem_used + align - 1) & ~(align - 1);
	if (off <= fe->mem_size && size <= fe->mem_size - off) {
		fe->mem_used = off + size;
		*gpa = off;
		p = fe->mem + off;
	}
	pthread_mutex_unlock(&fe->alloc_lock);
	return p;
}

static int layout_queue(struct vu_frontend *fe, struct vu_fe_queue *q, unsigned num)
{
	q->num = num;
	q->desc = vu_frontend_alloc(fe, vq_driver_desc_bytes(num), RING_ALIGN, &q->desc_gpa);
	q->driver = vu_frontend_alloc(fe, vq_driver_driver_area_bytes(num), RING_ALIGN, &q->avail_gpa);
	q->device = vu_frontend_alloc(fe, vq_driver_device_area_bytes(num), RING_ALIGN, &q->used_gpa);
	if (!q->desc || !q->driver || !q->device)
		return -ENOMEM;
	/* The layout and EVENT_IDX are known only after negotiation; vu_frontend_start re-initialises. */
	return vq_driver_init_any(&q->vq, false, num, q->desc, q->driver, q->device, false);
}

int vu_frontend_connect(struct vu_frontend *fe, const char *socket_path, const struct vu_frontend_config *cfg)
{
	int rc;
	memset(fe, 0, sizeof(*fe));
	fe->sock = fe->memfd = -1;
	pthread_mutex_init(&fe->alloc_lock, NULL);
	for (unsigned i = 0; i < VU_FE_MAX_QUEUES; i++) {
		fe->q[i].kick_fd = fe->q[i].call_fd = fe->q[i].err_fd = -1;
		pthread_mutex_init(&fe->q[i].lock, NULL);
	}
	fe->hiprio_size = cfg->hiprio_size ? cfg->hiprio_size : cfg->queue_size;
	if (cfg->nqueues < 1 || cfg->nqueues > VU_FE_MAX_QUEUES || !vring_valid_num(cfg->queue_size) ||
	    !vring_valid_num(fe->hiprio_size))
		return -EINVAL;
	fe->nqueues = cfg->nqueues;
	fe->queue_size = cfg->queue_size;
	fe->mem_size = cfg->mem_size;
	fe->want_packed = cfg->packed;
	if (cfg->no_event_idx)
		fe->features = 1; /* marker read by start: never ask for EVENT_IDX */

	fe->memfd = memfd_create("vufs-guest-mem", MFD_CLOEXEC);
	if (fe->memfd < 0 || ftruncate(fe->memfd, (off_t)fe->mem_size) < 0)
		return neg_errno();
	fe->mem = mmap(NULL, fe->mem_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fe->memfd, 0);
	if (fe->mem == MAP_FAILED) {
		fe->mem = NULL;
		return neg_errno();
	}
	for (unsigned i = 0; i < fe->nqueues; i++) {
		struct vu_fe_queue *q = &fe->q[i];
		q->kick_fd = eventfd(0, EFD_CLOEXEC);
		q->call_fd = eventfd(0, EFD_CLOEXEC);
		q->err_fd = eventfd(0, EFD_CLOEXEC);
		if (q->kick_fd < 0 || q->call_fd < 0 || q->err_fd < 0)
			return neg_errno();
		rc = layout_queue(fe, q, i == 0 ? fe->hiprio_size : fe->queue_size);
		if (rc < 0)
			return rc;
	}
	fe->sock = connect_unix(socket_path);
	return fe->sock < 0 ? fe->sock : 0;
}

/* Sends a request; with REPLY_ACK negotiated and no reply of its own, waits for the backend's status. */
static int call(struct vu_frontend *fe, uint32_t request, const void *payload, uint32_t size, const int *fds,
                unsigned nfds, void *reply, uint32_t reply_size)
{
	struct vhu_msg msg = { .hdr = { .request = request, .flags = VHU_VERSION, .size = size } };
	bool ack = !reply && (fe->protocol_features & (1ull << VHU_PROTOCOL_F_REPLY_ACK));
	int rc;

	if (ack)
		msg.hdr.flags |= VHU_FLAG_NEED_REPLY;
	if (size)
		memcpy(&msg.p, payload, size);
	if (nfds)
		memcpy(msg.fds, fds, nfds * sizeof(int));
	msg.nfds = nfds;
	rc = vhu_send(fe->sock, &msg);
	if (rc < 0 || (!reply && !ack))
		return rc;
	rc = vhu_recv(fe->sock, &msg);
	if (rc < 0)
		return rc;
	vhu_close_fds(&msg);
	if (msg.hdr.request != request || !(msg.hdr.flags & VHU_FLAG_REPLY)) {
		log_err("vhost-user: backend answered %s with %s", vhu_request_name(request),
		        vhu_request_name(msg.hdr.request));
		return -EPROTO;
	}
	if (ack) {
		if (msg.hdr.size != sizeof(uint64_t))
			return -EPROTO;
		return msg.p.u64 ? -EIO : 0;
	}
	if (msg.hdr.size != reply_size)
		return -EPROTO;
	memcpy(reply, &msg.p, reply_size);
	return 0;
}

static int call_u64(struct vu_frontend *fe, uint32_t request, uint64_t v)
{
	return call(fe, request, &v, sizeof(v), NULL, 0, NULL, 0);
}

static int get_u64(struct vu_frontend *fe, uint32_t request, uint64_t *v)
{
	return call(fe, request, NULL, 0, NULL, 0, v, sizeof(*v));
}

static int start_queue(struct vu_frontend *fe, unsigned i)
{
	struct vu_fe_queue *q = &fe->q[i];
	struct vhu_vring_state num = { i, q->num }, base = { i, vq_driver_base(&q->vq) }, enable = { i, 1 };
	struct vhu_vring_addr addr = {
		.index = i,
		.desc_uaddr = (uint64_t)(uintptr_t)vu_frontend_host(fe, q->desc_gpa),
		.avail_uaddr = (uint64_t)(uintptr_t)vu_frontend_host(fe, q->avail_gpa),
		.used_uaddr = (uint64_t)(uintptr_t)vu_frontend_host(fe, q->used_gpa),
	};
	uint64_t idx = i;
	int rc;

	if ((rc = call(fe, VHU_SET_VRING_NUM, &num, sizeof(num), NULL, 0, NULL, 0)) < 0 ||
	    (rc = call(fe, VHU_SET_VRING_BASE, &base, sizeof(base), NULL, 0, NULL, 0)) < 0 ||
	    (rc = call(fe, VHU_SET_VRING_ADDR, &addr, sizeof(addr), NULL, 0, NULL, 0)) < 0 ||
	    (rc = call(fe, VHU_SET_VRING_CALL, &idx, sizeof(idx), &q->call_fd, 1, NULL, 0)) < 0 ||
	    (rc = call(fe, VHU_SET_VRING_ERR, &idx, sizeof(idx), &q->err_fd, 1, NULL, 0)) < 0 ||
	    (rc = call(fe, VHU_SET_VRING_KICK, &idx, sizeof(idx), &q->kick_fd, 1, NULL, 0)) < 0)
		return rc;
	if (fe->features & (1ull << VHU_F_PROTOCOL_FEATURES))
		rc = call(fe, VHU_SET_VRING_ENABLE, &enable, sizeof(enable), NULL, 0, NULL, 0);
	return rc;
}

static int negotiate(struct vu_frontend *fe)
{
	uint64_t offered, want, pf;
	bool no_event_idx = fe->features == 1;
	int rc;

	fe->features = 0;
	if ((rc = get_u64(fe, VHU_GET_FEATURES, &offered)) < 0)
		return rc;
	if (!(offered & (1ull << VIRTIO_F_VERSION_1_BIT))) {
		log_err("vhost-user: backend does not offer VIRTIO_F_VERSION_1");
		return -EPROTO;
	}
	if (fe->want_packed && !(offered & (1ull << VIRTIO_F_RING_PACKED_BIT))) {
		log_err("vhost-user: packed virtqueues asked for, but the backend does not offer VIRTIO_F_RING_PACKED");
		return -EPROTONOSUPPORT;
	}
	want = offered & (1ull << VIRTIO_F_VERSION_1_BIT | 1ull << VHU_F_PROTOCOL_FEATURES |
	                  (no_event_idx ? 0 : 1ull << VIRTIO_RING_F_EVENT_IDX_BIT) |
	                  (fe->want_packed ? 1ull << VIRTIO_F_RING_PACKED_BIT : 0));
	if (offered & (1ull << VHU_F_PROTOCOL_FEATURES)) {
		if ((rc = get_u64(fe, VHU_GET_PROTOCOL_FEATURES, &pf)) < 0)
			return rc;
		pf &= 1ull << VHU_PROTOCOL_F_MQ | 1ull << VHU_PROTOCOL_F_REPLY_ACK | 1ull << VHU_PROTOCOL_F_CONFIG;
		if ((rc = call_u64(fe, VHU_SET_PROTOCOL_FEATURES, pf)) < 0)
			return rc;
		fe->protocol_features = pf;
		if (pf & (1ull << VHU_PROTOCOL_F_MQ)) {
			uint64_t max;
			if ((rc = get_u64(fe, VHU_GET_QUEUE_NUM, &max)) < 0)
				return rc;
			if (max < fe->nqueues) {
				log_err("vhost-user: backend serves %llu queues, %u wanted", (unsigned long long)max,
				        fe->nqueues);
				return -EINVAL;
			}
		}
	}
	if ((rc = call(fe, VHU_SET_OWNER, NULL, 0, NULL, 0, NULL, 0)) < 0)
		return rc;
	if ((rc = call_u64(fe, VHU_SET_FEATURES, want)) < 0)
		return rc;
	fe->features = want;
	return 0;
}

/* A backend with a config space (F_CONFIG) names the device: virtio_fs_config's tag, as QEMU's generic
 * vhost-user device reads it. Anything else leaves the tag empty. */
static void read_tag(struct vu_frontend *fe)
{
	struct vhu_config cfg = { .offset = 0, .size = 40 };
	fe->tag[0] = 0;
	if (!(fe->protocol_features & (1ull << VHU_PROTOCOL_F_CONFIG)) ||
	    call(fe, VHU_GET_CONFIG, &cfg, VHU_CONFIG_HDR + 40, NULL, 0, &cfg, VHU_CONFIG_HDR + 40) < 0 ||
	    cfg.offset != 0 || cfg.size != 40)
		return;
	memcpy(fe->tag, cfg.region, 36);
	fe->tag[36] = 0;
}

int vu_frontend_start(struct vu_frontend *fe)
{
	struct vhu_mem_table mt = { .nregions = 1 };
	int rc = negotiate(fe);
	if (rc < 0)
		return rc;
	read_tag(fe);
	mt.regions[0] = (struct vhu_mem_region){ .gpa = 0, .size = fe->mem_size, .uaddr = (uintptr_t)fe->mem };
	rc = call(fe, VHU_SET_MEM_TABLE, &mt, 8 + sizeof(mt.regions[0]), &fe->memfd, 1, NULL, 0);
	if (rc < 0)
		return rc;
	bool event_idx = fe->features & (1ull << VIRTIO_RING_F_EVENT_IDX_BIT);
	bool packed = fe->features & (1ull << VIRTIO_F_RING_PACKED_BIT);
	for (unsigned i = 0; i < fe->nqueues; i++) {
		struct vu_fe_queue *q = &fe->q[i];
		vq_driver_free(&q->vq);
		if ((rc = vq_driver_init_any(&q->vq, packed, q->num, q->desc, q->driver, q->device, event_idx)) < 0)
			return rc;
		if ((rc = start_queue(fe, i)) < 0) {
			log_err("vhost-user: starting queue %u failed: %s", i, strerror(-rc));
			return rc;
		}
	}
	return 0;
}

int vu_frontend_submit(struct vu_frontend *fe, unsigned qi, const struct vq_seg *segs, unsigned n_rd,
                       unsigned n_wr, void *token)
{
	struct vu_fe_queue *q = &fe->q[qi];
	pthread_mutex_lock(&q->lock);
	int rc = vq_driver_add(&q->vq, segs, n_rd, n_wr, token);
	bool kick = rc == 0 && vq_driver_kick_needed(&q->vq);
	pthread_mutex_unlock(&q->lock);
	if (kick)
		eventfd_write(q->kick_fd, 1);
	return rc;
}

void vu_frontend_stop(struct vu_frontend *fe)
{
	if (fe->sock < 0)
		return;
	/* A backend stuck on a request must not keep us from exiting. */
	struct timeval tv = { .tv_sec = 5 };
	setsockopt(fe->sock, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	for (unsigned i = 0; i < fe->nqueues; i++) {
		struct vhu_vring_state st = { i, 0 };
		if (fe->features & (1ull << VHU_F_PROTOCOL_FEATURES))
			call(fe, VHU_SET_VRING_ENABLE, &st, sizeof(st), NULL, 0, NULL, 0);
	}
	for (unsigned i = 0; i < fe->nqueues; i++) {
		struct vhu_vring_state st = { i, 0 };
		if (call(fe, VHU_GET_VRING_BASE, &st, sizeof(st), NULL, 0, &st, sizeof(st)) == 0)
			fe->q[i].stop_base = st.num;
	}
}

void vu_frontend_close(struct vu_frontend *fe)
{
	close_if_open(&fe->sock);
	for (unsigned i = 0; i < VU_FE_MAX_QUEUES; i++) {
		struct vu_fe_queue *q = &fe->q[i];
		close_if_open(&q->kick_fd);
		close_if_open(&q->call_fd);
		close_if_open(&q->err_fd);
		vq_driver_free(&q->vq);
		pthread_mutex_destroy(&q->lock);
	}
	if (fe->mem)
		munmap(fe->mem, fe->mem_size);
	fe->mem = NULL;
	close_if_open(&fe->memfd);
	pthread_mutex_destroy(&fe->alloc_lock);
}

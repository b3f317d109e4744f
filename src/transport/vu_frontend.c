#include "transport/vu_frontend.h"

#include <errno.h>
#include <fcntl.h>
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

/* A log covering the whole memory (guest-physical 0 to mem_size), zeroed, as QEMU allocates one at migration. */
static int open_dirty_log(struct vu_frontend *fe, const char *path)
{
	fe->log_size = (fe->mem_size / 4096 + 63) / 64 * 8;
	fe->log_fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fe->log_fd < 0 || ftruncate(fe->log_fd, (off_t)fe->log_size) < 0)
		return neg_errno();
	return 0;
}

int vu_frontend_connect(struct vu_frontend *fe, const char *socket_path, const struct vu_frontend_config *cfg)
{
	int rc;
	memset(fe, 0, sizeof(*fe));
	fe->sock = fe->memfd = fe->log_fd = -1;
	fe->be.fd = fe->be.stop_fd = -1;
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
	fe->want_shmem = cfg->want_shmem;
	fe->max_window = cfg->max_window;
	if (cfg->no_event_idx)
		fe->features = 1; /* marker read by start: never ask for EVENT_IDX */

	if (cfg->dirty_log && (rc = open_dirty_log(fe, cfg->dirty_log)) < 0)
		return rc;
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

/* Builds and sends one request in msg. */
static int send_request(struct vu_frontend *fe, uint32_t request, const void *payload, uint32_t size,
                        const int *fds, unsigned nfds, uint32_t flags, struct vhu_msg *msg)
{
	msg->hdr = (struct vhu_hdr){ .request = request, .flags = VHU_VERSION | flags, .size = size };
	if (size)
		memcpy(&msg->p, payload, size);
	if (nfds)
		memcpy(msg->fds, fds, nfds * sizeof(int));
	msg->nfds = nfds;
	return vhu_send(fe->sock, msg);
}

/* Takes the backend's answer to request into msg (its size is the caller's to check). */
static int recv_reply(struct vu_frontend *fe, uint32_t request, struct vhu_msg *msg)
{
	int rc = vhu_recv(fe->sock, msg);
	if (rc < 0)
		return rc;
	vhu_close_fds(msg);
	if (msg->hdr.request != request || !(msg->hdr.flags & VHU_FLAG_REPLY)) {
		log_err("vhost-user: backend answered %s with %s", vhu_request_name(request),
		        vhu_request_name(msg->hdr.request));
		return -EPROTO;
	}
	return 0;
}

/* Sends a request; with REPLY_ACK negotiated and no reply of its own, waits for the backend's status. */
static int call(struct vu_frontend *fe, uint32_t request, const void *payload, uint32_t size, const int *fds,
                unsigned nfds, void *reply, uint32_t reply_size)
{
	struct vhu_msg msg;
	bool ack = !reply && (fe->protocol_features & (1ull << VHU_PROTOCOL_F_REPLY_ACK));
	int rc = send_request(fe, request, payload, size, fds, nfds, ack ? VHU_FLAG_NEED_REPLY : 0, &msg);

	if (rc < 0 || (!reply && !ack))
		return rc;
	if ((rc = recv_reply(fe, request, &msg)) < 0)
		return rc;
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
		.flags = fe->log_fd >= 0 ? 1u << VHU_VRING_F_LOG : 0,
		.log_gaddr = q->used_gpa,
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

/* Region 0's size from GET_SHMEM_CONFIG: 0 if there is none we can use as a window. */
static uint64_t shmem_window_size(struct vu_frontend *fe)
{
	struct vhu_msg msg;
	const struct vhu_shmem_config *sc = &msg.p.shmem;
	if (send_request(fe, VHU_GET_SHMEM_CONFIG, NULL, 0, NULL, 0, 0, &msg) < 0 ||
	    recv_reply(fe, VHU_GET_SHMEM_CONFIG, &msg) < 0)
		return 0;
	/* As QEMU 11.1.3 reads it: the count, then one size per region. */
	if (msg.hdr.size < 8 || sc->nregions < 1 || sc->nregions > VHU_SHMEM_MAX || msg.hdr.size != 8 + sc->nregions * 8)
		return 0;
	uint64_t size = sc->sizes[0];
	if (!size || size % (2u << 20) || size > VU_FE_MAX_WINDOW) {
		log_warn("vhost-user: shared-memory region 0 of %llu bytes is not a window we take",
		         (unsigned long long)size);
		return 0;
	}
	/* Smaller than the backend's is fine: the driver maps only ranges inside the window it has. */
	return fe->max_window ? MIN(size, fe->max_window) : size;
}

/* The backend channel (a socketpair whose other end the backend takes) and the window it maps into. */
static int setup_window(struct vu_frontend *fe)
{
	int sv[2], rc;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return neg_errno();
	rc = call(fe, VHU_SET_BACKEND_REQ_FD, NULL, 0, &sv[1], 1, NULL, 0);
	close(sv[1]);
	if (rc < 0) {
		close(sv[0]);
		return rc;
	}
	uint64_t size = shmem_window_size(fe);
	if (!size || shm_window_init(&fe->window, size) < 0) {
		close(sv[0]);
		return 0; /* no window: no DAX, the rest works */
	}
	rc = vu_fe_backend_start(&fe->be, sv[0], &fe->window);
	if (rc == 0)
		log_info("vhost-user: a DAX window of %llu MiB", (unsigned long long)(size >> 20));
	return rc;
}

static int negotiate(struct vu_frontend *fe)
{
	const uint64_t shmem_features = 1ull << VHU_PROTOCOL_F_REPLY_ACK | 1ull << VHU_PROTOCOL_F_BACKEND_REQ |
	                                1ull << VHU_PROTOCOL_F_SHMEM;
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
	                  (fe->want_packed ? 1ull << VIRTIO_F_RING_PACKED_BIT : 0) |
	                  (fe->log_fd >= 0 ? 1ull << VHOST_F_LOG_ALL_BIT : 0));
	if (offered & (1ull << VHU_F_PROTOCOL_FEATURES)) {
		if ((rc = get_u64(fe, VHU_GET_PROTOCOL_FEATURES, &pf)) < 0)
			return rc;
		pf &= 1ull << VHU_PROTOCOL_F_MQ | 1ull << VHU_PROTOCOL_F_REPLY_ACK | 1ull << VHU_PROTOCOL_F_CONFIG |
		      (fe->want_shmem ? shmem_features : 0) | (fe->log_fd >= 0 ? 1ull << VHU_PROTOCOL_F_LOG_SHMFD : 0);
		/* Maps are backend requests that must be acknowledged: the window needs all three (REPLY_ACK stays
		 * whatever becomes of the other two). */
		if ((pf & shmem_features) != shmem_features)
			pf &= ~(1ull << VHU_PROTOCOL_F_BACKEND_REQ | 1ull << VHU_PROTOCOL_F_SHMEM);
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
		if ((pf & shmem_features) == shmem_features && (rc = setup_window(fe)) < 0)
			return rc;
	}
	if (fe->log_fd >= 0 && (!(want & (1ull << VHOST_F_LOG_ALL_BIT)) ||
	                        !(fe->protocol_features & (1ull << VHU_PROTOCOL_F_LOG_SHMFD)))) {
		log_err("vhost-user: a dirty log asked for, but the backend lacks VHOST_F_LOG_ALL or LOG_SHMFD");
		return -EPROTONOSUPPORT;
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

/* As QEMU sends it: no NEED_REPLY, and a reply read anyway (whose request code is all QEMU checks). */
static int send_log_base(struct vu_frontend *fe)
{
	struct vhu_log lg = { .mmap_size = fe->log_size, .mmap_offset = 0 };
	struct vhu_msg msg;
	int rc = send_request(fe, VHU_SET_LOG_BASE, &lg, sizeof(lg), &fe->log_fd, 1, 0, &msg);
	return rc < 0 ? rc : recv_reply(fe, VHU_SET_LOG_BASE, &msg);
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
	if (rc < 0 || (fe->log_fd >= 0 && (rc = send_log_base(fe)) < 0))
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

/* The device is stopped: as QEMU at a reset, every mapping goes, and no more are taken. */
static void drop_window(struct vu_frontend *fe)
{
	vu_fe_backend_stop(&fe->be);
	if (!vu_frontend_has_window(fe))
		return;
	if (fe->be.maps)
		log_info("DAX window: %llu SHMEM_MAP and %llu SHMEM_UNMAP done, %llu refused",
		         (unsigned long long)fe->be.maps, (unsigned long long)fe->be.unmaps,
		         (unsigned long long)fe->be.failed);
	fe->be.maps = 0;
	shm_window_clear(&fe->window);
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
	drop_window(fe);
}

void vu_frontend_close(struct vu_frontend *fe)
{
	drop_window(fe);
	shm_window_destroy(&fe->window);
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
	close_if_open(&fe->log_fd);
	pthread_mutex_destroy(&fe->alloc_lock);
}

#include "transport/vu_fe_backend.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "transport/vhost_user.h"

/* A map or unmap against the window; the message is framed already. 0 done, negative errno refused. */
static int apply(struct vhu_msg *msg, struct shm_window *w, struct vu_fe_backend *st)
{
	const struct vhu_shmem_map *m = &msg->p.map;
	bool map = msg->hdr.request == VHU_BACKEND_SHMEM_MAP;
	int rc;

	if (m->shmid != 0 || (m->flags & ~(uint64_t)VHU_SHMEM_MAP_RW) || msg->nfds != (map ? 1u : 0u))
		return -EINVAL;
	if (map) {
		rc = shm_window_map(w, msg->fds[0], m->fd_offset, m->shm_offset, m->len, m->flags & VHU_SHMEM_MAP_RW);
		st->maps += rc == 0;
	} else {
		rc = shm_window_unmap(w, m->shm_offset, m->len);
		st->unmaps += rc == 0;
	}
	return rc;
}

static int send_ack(int fd, uint32_t request, bool failed)
{
	struct vhu_msg *r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->hdr = (struct vhu_hdr){ .request = request, .flags = VHU_VERSION | VHU_FLAG_REPLY, .size = sizeof(uint64_t) };
	r->p.u64 = failed; /* as QEMU: !!ret, no errno */
	int rc = vhu_send(fd, r);
	free(r);
	return rc;
}

int vu_fe_backend_serve_one(int fd, struct shm_window *w, struct vu_fe_backend *st)
{
	struct vhu_msg *msg = malloc(sizeof(*msg));
	int rc;

	if (!msg)
		return -ENOMEM;
	rc = vhu_recv(fd, msg);
	if (rc < 0)
		goto out;
	/* Framing, as QEMU's backend_read: the version, no reply flag, and the size a map message has. */
	bool known = msg->hdr.request == VHU_BACKEND_SHMEM_MAP || msg->hdr.request == VHU_BACKEND_SHMEM_UNMAP;
	if ((msg->hdr.flags & 3u) != VHU_VERSION || (msg->hdr.flags & VHU_FLAG_REPLY) ||
	    (known && msg->hdr.size != sizeof(struct vhu_shmem_map))) {
		log_warn("backend channel: malformed request %u (flags %#x, %u bytes): closing it", msg->hdr.request,
		         msg->hdr.flags, msg->hdr.size);
		rc = -EBADMSG;
		goto out;
	}
	rc = known ? apply(msg, w, st) : -ENOSYS;
	if (rc < 0) {
		st->failed++;
		log_debug("backend channel: request %u refused: %s", msg->hdr.request, strerror(-rc));
	}
	rc = msg->hdr.flags & VHU_FLAG_NEED_REPLY ? send_ack(fd, msg->hdr.request, rc < 0) : 0;
out:
	vhu_close_fds(msg);
	free(msg);
	return rc;
}

static void *serve_thread(void *arg)
{
	struct vu_fe_backend *be = arg;
	struct pollfd pfd[2] = { { .fd = be->fd, .events = POLLIN }, { .fd = be->stop_fd, .events = POLLIN } };
	for (;;) {
		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (pfd[1].revents)
			break;
		int rc = vu_fe_backend_serve_one(be->fd, be->window, be);
		if (rc < 0) {
			if (rc != -ECONNRESET)
				log_warn("backend channel: %s; no more mappings", strerror(-rc));
			break;
		}
	}
	return NULL;
}

int vu_fe_backend_start(struct vu_fe_backend *be, int fd, struct shm_window *w)
{
	*be = (struct vu_fe_backend){ .fd = fd, .window = w };
	be->stop_fd = eventfd(0, EFD_CLOEXEC);
	if (be->stop_fd < 0)
		return neg_errno();
	if (pthread_create(&be->thread, NULL, serve_thread, be))
		return -EAGAIN;
	be->running = true;
	return 0;
}

void vu_fe_backend_stop(struct vu_fe_backend *be)
{
	if (be->running) {
		eventfd_write(be->stop_fd, 1);
		shutdown(be->fd, SHUT_RDWR); /* a backend that sent half a message must not hold the join */
		pthread_join(be->thread, NULL);
		be->running = false;
	}
	close_if_open(&be->fd);
	close_if_open(&be->stop_fd);
}

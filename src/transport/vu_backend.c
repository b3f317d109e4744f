/*
 * Requests the backend sends the frontend on the backend channel (SET_BACKEND_REQ_FD), and the device services
 * built on them (common/dev_services.h): today, mapping file ranges into a shared-memory region (SHMEM_MAP and
 * SHMEM_UNMAP, for the DAX window).
 *
 * The frontend is as hostile here as anywhere: we never wait for its reply for ever (a VMM that is itself
 * waiting for our reply to one of its messages would never answer: backend_timeout_ms bounds it), and a reply
 * must be the reply to our request, with the size it must have, or the request failed.
 */
#include "transport/vu_internal.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>

#include "common/log.h"
#include "common/util.h"

#define PAGE 4096u

static uint64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/*
 * Waits for the reply to the request just sent; returns its u64 (0: done) as 0 or -EIO, or -ETIMEDOUT/-ECONNRESET.
 * The frontend answers in order, and a reply carries no request id: after a wait that timed out, the late reply
 * to that request comes first, so as many replies as were left unread are skipped before ours.
 */
static int await_reply(struct vu_dev *dev, uint32_t request)
{
	unsigned timeout_ms = dev->cfg.backend_timeout_ms;
	uint64_t deadline = mono_ms() + (timeout_ms ? timeout_ms : 5000);
	struct vhu_msg *reply = malloc(sizeof(*reply));
	int fd = dev->backend_req_fd, rc = -ETIMEDOUT;

	if (!reply)
		return -ENOMEM;
	for (uint64_t now = mono_ms(); now < deadline; now = mono_ms()) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int n = poll(&p, 1, (int)(deadline - now));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		rc = vhu_recv(fd, reply);
		if (rc < 0)
			break;
		vhu_close_fds(reply);
		if (!(reply->hdr.flags & VHU_FLAG_REPLY) || reply->hdr.size != sizeof(uint64_t)) {
			log_warn("backend channel: a reply that is not one (request %u, %u bytes)", reply->hdr.request,
			         reply->hdr.size);
			rc = -EPROTO;
			break;
		}
		if (--dev->backend_unanswered > 0) {
			rc = -ETIMEDOUT; /* the late reply to an earlier request: ours is still to come */
			continue;
		}
		if (reply->hdr.request != request) {
			log_warn("backend channel: a reply that does not answer %u (request %u)", request, reply->hdr.request);
			rc = -EPROTO;
			break;
		}
		rc = reply->p.u64 ? -EIO : 0;
		break;
	}
	free(reply);
	return rc;
}

#define WINDOW_REGIONS_MAX 8192 /* more than a 64 GiB window's ranges times the parts of one */

/* A map is being sent: its memory region will come back to us (before or after the reply), recognised by its file
 * and length. The oldest record goes when there is no room (a map QEMU refused announces nothing). */
static void map_sent(struct vu_dev *dev, int fd, uint64_t len)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return;
	pthread_mutex_lock(&dev->window_lock);
	if (dev->n_maps_sent == VU_MAPS_UNANNOUNCED) {
		memmove(&dev->maps_sent[0], &dev->maps_sent[1], (VU_MAPS_UNANNOUNCED - 1) * sizeof(dev->maps_sent[0]));
		dev->n_maps_sent--;
	}
	dev->maps_sent[dev->n_maps_sent].dev = st.st_dev;
	dev->maps_sent[dev->n_maps_sent].ino = st.st_ino;
	dev->maps_sent[dev->n_maps_sent].len = len;
	dev->n_maps_sent++;
	pthread_mutex_unlock(&dev->window_lock);
}

/* The map sent for this region, taken off the list; window_lock held. */
static bool take_map_sent(struct vu_dev *dev, const struct stat *st, uint64_t size)
{
	for (unsigned i = 0; i < dev->n_maps_sent; i++) {
		if (dev->maps_sent[i].dev == st->st_dev && dev->maps_sent[i].ino == st->st_ino &&
		    dev->maps_sent[i].len == size) {
			memmove(&dev->maps_sent[i], &dev->maps_sent[i + 1],
			        (dev->n_maps_sent - i - 1) * sizeof(dev->maps_sent[0]));
			dev->n_maps_sent--;
			return true;
		}
	}
	return false;
}

bool vu_window_region_add(struct vu_dev *dev, uint64_t gpa, uint64_t size, int fd)
{
	struct stat st;
	bool ours = false;

	if (fstat(fd, &st) < 0)
		return false;
	pthread_mutex_lock(&dev->window_lock);
	if (!dev->window_regions)
		dev->window_regions = calloc(WINDOW_REGIONS_MAX, sizeof(*dev->window_regions));
	if (dev->window_regions && dev->n_window_regions < WINDOW_REGIONS_MAX && take_map_sent(dev, &st, size)) {
		dev->window_regions[dev->n_window_regions].gpa = gpa;
		dev->window_regions[dev->n_window_regions].size = size;
		dev->n_window_regions++;
		ours = true;
	}
	pthread_mutex_unlock(&dev->window_lock);
	return ours;
}

bool vu_window_region_remove(struct vu_dev *dev, uint64_t gpa, uint64_t size)
{
	bool found = false;
	pthread_mutex_lock(&dev->window_lock);
	for (unsigned i = 0; i < dev->n_window_regions && !found; i++) {
		if (dev->window_regions[i].gpa == gpa && dev->window_regions[i].size == size) {
			dev->window_regions[i] = dev->window_regions[--dev->n_window_regions];
			found = true;
		}
	}
	pthread_mutex_unlock(&dev->window_lock);
	return found;
}

/* Sends one backend request (with at most one fd) and, when the frontend acknowledges requests, waits for it. */
static int backend_request(struct vu_dev *dev, uint32_t request, const void *payload, uint32_t size, int fd,
                           uint64_t map_len)
{
	struct vhu_msg *msg = calloc(1, sizeof(*msg));
	bool ack = dev->protocol_features & (1ull << VHU_PROTOCOL_F_REPLY_ACK);
	int rc;

	if (!msg)
		return -ENOMEM;
	msg->hdr = (struct vhu_hdr){ .request = request, .flags = VHU_VERSION | (ack ? VHU_FLAG_NEED_REPLY : 0),
	                             .size = size };
	memcpy(&msg->p, payload, size);
	if (fd >= 0) {
		msg->fds[0] = fd;
		msg->nfds = 1;
	}
	pthread_mutex_lock(&dev->backend_lock);
	if (dev->backend_req_fd < 0 || !(dev->protocol_features & (1ull << VHU_PROTOCOL_F_BACKEND_REQ)))
		rc = -ENOTCONN;
	else {
		if (map_len)
			map_sent(dev, fd, map_len);
		if ((rc = vhu_send(dev->backend_req_fd, msg)) == 0 && ack) {
			dev->backend_unanswered++;
			rc = await_reply(dev, request);
		}
	}
	pthread_mutex_unlock(&dev->backend_lock);
	free(msg);
	if (rc < 0)
		log_warn("backend channel: request %u failed: %s", request, strerror(-rc));
	return rc;
}

static uint64_t services_shm_size(void *ctx, uint8_t shmid)
{
	struct vu_dev *dev = ctx;
	return shmid < dev->cfg.n_shmem ? dev->cfg.shmem_sizes[shmid] : 0;
}

/* QEMU checks little of a map (not the region offset, for one): every range is checked here. */
static int check_range(struct vu_dev *dev, uint8_t shmid, uint64_t shm_offset, uint64_t len)
{
	uint64_t size = services_shm_size(dev, shmid);
	if (!size || !len || shm_offset % PAGE || len % PAGE || !range_within(shm_offset, len, size))
		return -EINVAL;
	/* QEMU 11.1.3 crashes on a map before the driver started the device: no queue runs before that. */
	for (unsigned i = 0; i < dev->cfg.max_queues; i++)
		if (__atomic_load_n(&dev->q[i].running, __ATOMIC_ACQUIRE))
			return 0;
	return -EAGAIN;
}

static int services_shm_map(void *ctx, uint8_t shmid, int fd, uint64_t fd_offset, uint64_t shm_offset,
                            uint64_t len, bool writable)
{
	struct vu_dev *dev = ctx;
	struct vhu_shmem_map m = { .shmid = shmid, .fd_offset = fd_offset, .shm_offset = shm_offset, .len = len,
	                           .flags = writable ? VHU_SHMEM_MAP_RW : 0 };
	int rc = check_range(dev, shmid, shm_offset, len);
	if (rc == 0 && (fd < 0 || fd_offset % PAGE))
		rc = -EINVAL;
	return rc < 0 ? rc : backend_request(dev, VHU_BACKEND_SHMEM_MAP, &m, sizeof(m), fd, len);
}

static int services_shm_unmap(void *ctx, uint8_t shmid, uint64_t shm_offset, uint64_t len)
{
	struct vu_dev *dev = ctx;
	struct vhu_shmem_map m = { .shmid = shmid, .shm_offset = shm_offset, .len = len };
	int rc = check_range(dev, shmid, shm_offset, len);
	return rc < 0 ? rc : backend_request(dev, VHU_BACKEND_SHMEM_UNMAP, &m, sizeof(m), -1, 0);
}

void vu_dev_services(struct vu_dev *dev, struct dev_services *out)
{
	*out = (struct dev_services){ .ctx = dev, .shm_size = services_shm_size, .shm_map = services_shm_map,
	                              .shm_unmap = services_shm_unmap };
}

/*
 * The device's state for live migration (VHOST_USER_PROTOCOL_F_DEVICE_STATE): SET_DEVICE_STATE_FD hands us one
 * end of a pipe, SAVE (source) or LOAD (destination), while the device is stopped; CHECK_DEVICE_STATE asks
 * whether the transfer worked. The bytes are the device's business (vu_dev_config.state_save/state_load).
 *
 * The frontend reads (or writes) its end only after our reply to SET_DEVICE_STATE_FD, so the bytes move on a
 * thread of their own; CHECK_DEVICE_STATE joins it. That thread never blocks on the VMM's fd for ever: the fd
 * is non-blocking and polled with a stall bound (a frontend that neither reads nor closes ends the transfer as a
 * failure), and a stop eventfd ends it at once when the connection resets or closes.
 *
 * Lock story: everything here is touched by the vhost-user thread only (under ctrl_lock), but the transfer
 * thread, which owns fd and the buffer while it runs and hands them back at join.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "transport/vu_internal.h"

#define STATE_STALL_MS 30000           /* no byte moved for this long: the frontend is not taking part */
#define STATE_LOAD_MAX (256u << 20)    /* the most state we accept (about a million nodes with long paths) */
#define VHU_STATE_REPLY_NO_FD (1u << 8) /* our reply: we give no fd back, the frontend's is used */

enum { STATE_SAVE = 0, STATE_LOAD = 1 };

struct vu_state_xfer {
	pthread_t thread;
	int fd, stop_fd;
	bool load;
	uint8_t *buf;
	size_t len, cap;
	int result;                    /* the thread's outcome, read after join */
};

/* Waits until fd is ready for events, the stop fd fires (-ECANCELED) or nothing happens for the stall bound. */
static int wait_fd(const struct vu_state_xfer *x, short events)
{
	struct pollfd p[2] = { { .fd = x->fd, .events = events }, { .fd = x->stop_fd, .events = POLLIN } };
	int n = poll(p, 2, STATE_STALL_MS);
	if (n < 0)
		return errno == EINTR ? 0 : neg_errno();
	if (n == 0)
		return -ETIMEDOUT;
	if (p[1].revents)
		return -ECANCELED;
	return 0;
}

static int save_bytes(struct vu_state_xfer *x)
{
	size_t done = 0;
	while (done < x->len) {
		ssize_t n = write(x->fd, x->buf + done, x->len - done);
		if (n > 0) {
			done += (size_t)n;
			continue;
		}
		if (n < 0 && errno != EAGAIN && errno != EINTR)
			return neg_errno();
		int rc = wait_fd(x, POLLOUT);
		if (rc < 0)
			return rc;
	}
	return 0;
}

static int load_bytes(struct vu_state_xfer *x)
{
	for (;;) {
		if (x->len == x->cap) {
			if (x->cap >= STATE_LOAD_MAX)
				return -EFBIG;
			size_t cap = MIN(MAX(x->cap * 2, (size_t)65536), (size_t)STATE_LOAD_MAX);
			uint8_t *b = realloc(x->buf, cap);
			if (!b)
				return -ENOMEM;
			x->buf = b;
			x->cap = cap;
		}
		ssize_t n = read(x->fd, x->buf + x->len, x->cap - x->len);
		if (n > 0) {
			x->len += (size_t)n;
			continue;
		}
		if (n == 0)
			return 0; /* the frontend closed its end: all of it is here */
		if (errno != EAGAIN && errno != EINTR)
			return neg_errno();
		int rc = wait_fd(x, POLLIN);
		if (rc < 0)
			return rc;
	}
}

static void *xfer_thread(void *arg)
{
	struct vu_state_xfer *x = arg;
	x->result = x->load ? load_bytes(x) : save_bytes(x);
	close_if_open(&x->fd); /* SAVE: the frontend's EOF */
	return NULL;
}

static void xfer_free(struct vu_state_xfer *x)
{
	close_if_open(&x->fd);
	close_if_open(&x->stop_fd);
	free(x->buf);
	free(x);
}

/* Ends a transfer: joins its thread (stopping it first when stop) and returns its outcome. */
static int xfer_finish(struct vu_dev *dev, bool stop, struct vu_state_xfer **out)
{
	struct vu_state_xfer *x = dev->state_xfer;
	if (!x)
		return -ENOENT;
	dev->state_xfer = NULL;
	if (stop) {
		uint64_t one = 1;
		if (write(x->stop_fd, &one, sizeof(one)) < 0)
			log_warn("device state: cannot stop the transfer thread (%s)", strerror(errno));
	}
	pthread_join(x->thread, NULL);
	int rc = x->result;
	if (out && rc == 0)
		*out = x;
	else
		xfer_free(x);
	return rc;
}

void vu_state_cancel(struct vu_dev *dev)
{
	if (dev->state_xfer)
		xfer_finish(dev, true, NULL);
}

static bool queues_stopped(const struct vu_dev *dev)
{
	for (unsigned i = 0; i < dev->cfg.max_queues; i++)
		if (dev->q[i].running)
			return false;
	return true;
}

uint64_t vu_state_set_fd(struct vu_dev *dev, uint32_t direction, uint32_t phase, int fd)
{
	vu_state_cancel(dev); /* a transfer the frontend never checked */
	struct vu_state_xfer *x = calloc(1, sizeof(*x));
	int rc = x ? 0 : -ENOMEM;
	if (x) {
		x->fd = fd;
		x->load = direction == STATE_LOAD;
		x->stop_fd = eventfd(0, EFD_CLOEXEC);
		fd = -1;
	}
	if (rc == 0 && (direction > STATE_LOAD || phase != 0 || !dev->cfg.state_save || !dev->cfg.state_load))
		rc = -EINVAL; /* only the stopped phase exists (the spec's "STOPPED") */
	else if (rc == 0 && !queues_stopped(dev))
		rc = -EBUSY;  /* the frontend must stop the device first: the state must not change under us */
	else if (rc == 0 && (x->stop_fd < 0 || fcntl(x->fd, F_SETFL, fcntl(x->fd, F_GETFL) | O_NONBLOCK) < 0))
		rc = neg_errno();
	if (rc == 0 && !x->load) {
		void *buf = NULL;
		rc = dev->cfg.state_save(dev->cfg.opaque, &buf, &x->len);
		x->buf = buf;
	}
	if (rc == 0)
		rc = -pthread_create(&x->thread, NULL, xfer_thread, x);
	if (rc < 0) {
		log_err("device state: cannot %s it: %s", direction == STATE_LOAD ? "load" : "save", strerror(-rc));
		if (x)
			xfer_free(x);
		close_if_open(&fd);
		return VHU_STATE_REPLY_NO_FD | 1;
	}
	dev->state_xfer = x;
	return VHU_STATE_REPLY_NO_FD;
}

uint64_t vu_state_check(struct vu_dev *dev)
{
	struct vu_state_xfer *x = NULL;
	int rc = xfer_finish(dev, false, &x);
	if (rc == 0 && x->load)
		rc = dev->cfg.state_load(dev->cfg.opaque, x->buf, x->len);
	if (rc < 0)
		log_err("device state: transfer failed: %s", strerror(-rc));
	else
		log_info("device state: %zu bytes %s", x->len, x->load ? "loaded" : "saved");
	if (x)
		xfer_free(x);
	return rc < 0 ? 1 : 0;
}

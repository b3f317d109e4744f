#include "daemon/fs_device.h"

#include <errno.h>
#include <linux/fuse.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"

#define MAX_BLOCKING 64
#define BLOCKING_REQUEST_MAX 4096 /* a lock request is a header and a fuse_lk_in; allow padding */
#define BLOCKING_REPLY_MAX 256 /* a lock reply is a header and a fuse_lk_out at most */

int fs_device_init(struct fs_device *d, struct fuse_server *srv, unsigned nqueues)
{
	memset(d, 0, sizeof(*d));
	d->srv = srv;
	pthread_mutex_init(&d->blocking_lock, NULL);
	for (unsigned i = 0; i < nqueues && i < VU_MAX_QUEUES; i++) {
		d->workers[i] = fuse_worker_new(VQ_MAX_SEGS);
		if (!d->workers[i]) {
			fs_device_destroy(d);
			return -ENOMEM;
		}
	}
	return 0;
}

void fs_device_destroy(struct fs_device *d)
{
	for (unsigned i = 0; i < VU_MAX_QUEUES; i++) {
		fuse_worker_free(d->workers[i]);
		d->workers[i] = NULL;
	}
	pthread_mutex_destroy(&d->blocking_lock);
}

/* A request that may block, copied out of guest memory so it can be served after the queue moved on. */
struct blocking_job {
	struct fs_device *dev;
	struct vu_queue *q;
	uint64_t epoch;
	uint16_t head;
	unsigned nwr;
	size_t wr_len;
	struct iovec *wr;
	size_t len;
	uint8_t req[];
};

static void *blocking_thread(void *arg)
{
	struct blocking_job *job = arg;
	struct fuse_worker *w = fuse_worker_new(2);
	uint8_t reply[BLOCKING_REPLY_MAX];
	struct iovec rd = { job->req, job->len }, out = { reply, MIN(sizeof(reply), job->wr_len) };
	size_t n = 0;

	if (w)
		n = fuse_serve(job->dev->srv, w, &rd, 1, job->len, &out, 1, out.iov_len);
	vu_queue_complete(job->q, job->epoch, job->head, job->wr, job->nwr, reply, n);
	fuse_worker_free(w);
	pthread_mutex_lock(&job->dev->blocking_lock);
	job->dev->blocking--;
	pthread_mutex_unlock(&job->dev->blocking_lock);
	free(job->wr);
	free(job);
	return NULL;
}

static bool take_blocking_slot(struct fs_device *d)
{
	pthread_mutex_lock(&d->blocking_lock);
	bool ok = d->blocking < MAX_BLOCKING;
	if (ok)
		d->blocking++;
	pthread_mutex_unlock(&d->blocking_lock);
	return ok;
}

static void give_back_slot(struct fs_device *d)
{
	pthread_mutex_lock(&d->blocking_lock);
	d->blocking--;
	pthread_mutex_unlock(&d->blocking_lock);
}

/* Hands the request to a thread of its own; false if it could not (too many, too big, out of memory). */
static bool defer_blocking(struct fs_device *d, struct vu_queue *q, struct vq_chain *c)
{
	const struct iovec *rd = vq_chain_rd(c);
	if (c->rd_len > BLOCKING_REQUEST_MAX || !take_blocking_slot(d))
		return false;
	struct blocking_job *job = malloc(sizeof(*job) + c->rd_len);
	struct iovec *wr = calloc(c->n_wr ? c->n_wr : 1, sizeof(*wr));
	if (!job || !wr)
		goto fail;
	*job = (struct blocking_job){ .dev = d, .q = q, .epoch = q->epoch, .head = c->head, .nwr = c->n_wr,
	                              .wr_len = c->wr_len, .wr = wr, .len = c->rd_len };
	memcpy(wr, vq_chain_wr(c), c->n_wr * sizeof(*wr));
	size_t off = 0;
	for (unsigned i = 0; i < c->n_rd; i++) {
		memcpy(job->req + off, rd[i].iov_base, rd[i].iov_len);
		off += rd[i].iov_len;
	}
	pthread_t t;
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	int rc = pthread_create(&t, &attr, blocking_thread, job);
	pthread_attr_destroy(&attr);
	if (rc == 0)
		return true;
fail:
	free(job);
	free(wr);
	give_back_slot(d);
	return false;
}

long fs_device_handle(void *opaque, struct vu_queue *q, struct vq_chain *c)
{
	struct fs_device *d = opaque;
	const struct iovec *rd = vq_chain_rd(c);

	if (fuse_request_may_block(rd, c->n_rd)) {
		if (defer_blocking(d, q, c))
			return VU_DEFERRED;
		/* Blocking here would stall the queue, and with it the unlock that would end the wait. */
		log_warn("queue %u: too many blocking lock requests; refusing one", q->index);
		return (long)fuse_reply_error(rd, c->n_rd, vq_chain_wr(c), c->n_wr, c->wr_len, -ENOLCK);
	}
	return (long)fuse_serve(d->srv, d->workers[q->index], rd, c->n_rd, c->rd_len, vq_chain_wr(c), c->n_wr,
	                        c->wr_len);
}

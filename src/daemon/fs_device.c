#include "daemon/fs_device.h"

#include <errno.h>
#include <linux/fuse.h>
#include <signal.h>
#include <stdlib.h>
#include <endian.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "common/util.h"

#define WAITING_REQUEST_MAX 4096 /* a lock request is a header and a fuse_lk_in; allow padding */
#define WAITING_REPLY_MAX 256    /* a lock reply is a header and a fuse_lk_out at most */
/* Interrupts a waiting thread's system call (F_OFD_SETLKW, flock): its handler does nothing, and it is
 * installed without SA_RESTART, so the call returns EINTR. Waiting threads block every other signal. */
#define WAKE_SIGNAL SIGUSR1

/* A request that may block, served on a thread of its own from a private copy of its bytes. */
struct fs_waiter {
	struct fs_device *dev;
	struct vu_pending *pending;
	struct fuse_worker *w;
	pthread_t thread;
	bool done;                 /* atomic: the thread has finished and may be joined */
	size_t wr_len, len;
	uint8_t req[WAITING_REQUEST_MAX];
};

static void on_wake(int sig)
{
	(void)sig;
}

static bool slot_used(unsigned slot, unsigned nqueues, unsigned pool_threads)
{
	return slot < VU_MAX_QUEUES ? slot < nqueues : slot - VU_MAX_QUEUES < pool_threads;
}

int fs_device_init(struct fs_device *d, struct fuse_server *srv, unsigned nqueues, unsigned pool_threads)
{
	struct sigaction sa = { .sa_handler = on_wake };

	memset(d, 0, sizeof(*d));
	d->srv = srv;
	pthread_mutex_init(&d->waiting_lock, NULL);
	sigemptyset(&sa.sa_mask);
	sigaction(WAKE_SIGNAL, &sa, NULL);
	for (unsigned i = 0; i < VU_SLOTS; i++) {
		if (!slot_used(i, nqueues, pool_threads))
			continue;
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
	fs_device_cancel_waiting(d);
	for (unsigned i = 0; i < VU_SLOTS; i++) {
		fuse_worker_free(d->workers[i]);
		d->workers[i] = NULL;
	}
	pthread_mutex_destroy(&d->waiting_lock);
}

static void *waiter_thread(void *arg)
{
	struct fs_waiter *wt = arg;
	uint8_t reply[WAITING_REPLY_MAX];
	struct iovec rd = { wt->req, wt->len }, out = { reply, MIN(sizeof(reply), wt->wr_len) };
	size_t n = 0;
	sigset_t only_wake;

	/* Process signals (SIGTERM) go to threads that can act on them; only the wake-up interrupts us. */
	sigfillset(&only_wake);
	sigdelset(&only_wake, WAKE_SIGNAL);
	pthread_sigmask(SIG_SETMASK, &only_wake, NULL);
	n = fuse_serve(wt->dev->srv, wt->w, &rd, 1, wt->len, &out, 1, out.iov_len);
	vu_pending_complete(wt->pending, reply, n);
	__atomic_store_n(&wt->done, true, __ATOMIC_RELEASE);
	return NULL;
}

static void waiter_free(struct fs_waiter *wt)
{
	if (wt)
		fuse_worker_free(wt->w);
	free(wt);
}

/* Joins a finished waiter and frees its slot; waiting_lock held. */
static void reap(struct fs_device *d, unsigned i)
{
	pthread_join(d->waiting[i]->thread, NULL);
	waiter_free(d->waiting[i]);
	d->waiting[i] = NULL;
}

/* A free slot (reaping finished waiters), or -1. waiting_lock held. */
static int free_slot(struct fs_device *d)
{
	int found = -1;
	for (unsigned i = 0; i < FS_DEVICE_MAX_WAITING; i++) {
		if (d->waiting[i] && __atomic_load_n(&d->waiting[i]->done, __ATOMIC_ACQUIRE))
			reap(d, i);
		if (!d->waiting[i] && found < 0)
			found = (int)i;
	}
	return found;
}

/* Hands the copied request to a thread of its own; false if it could not (too many, too big, out of memory). */
static bool defer_waiting(struct fs_device *d, struct fuse_worker *w, struct vu_queue *q, struct vq_chain *c)
{
	struct fs_waiter *wt = malloc(sizeof(*wt));
	bool ok = false;

	if (!wt)
		return false;
	*wt = (struct fs_waiter){ .dev = d, .wr_len = c->wr_len, .w = fuse_worker_new(2) };
	wt->len = fuse_request_save(w, wt->req, sizeof(wt->req));
	pthread_mutex_lock(&d->waiting_lock);
	int slot = d->cancelled || !wt->len || !wt->w ? -1 : free_slot(d);
	if (slot >= 0)
		wt->pending = vu_queue_defer(q, c);
	if (wt->pending) {
		if (pthread_create(&wt->thread, NULL, waiter_thread, wt) == 0) {
			d->waiting[slot] = wt;
			ok = true;
		} else {
			vu_pending_drop(wt->pending); /* the chain stays ours to answer now */
		}
	}
	pthread_mutex_unlock(&d->waiting_lock);
	if (!ok)
		waiter_free(wt);
	return ok;
}

void fs_device_cancel_waiting(struct fs_device *d)
{
	pthread_mutex_lock(&d->waiting_lock);
	d->cancelled = true;
	for (unsigned i = 0; i < FS_DEVICE_MAX_WAITING; i++) {
		if (!d->waiting[i])
			continue;
		/* Signal until it is done: it may not have entered its blocking call yet when a signal arrives. */
		while (!__atomic_load_n(&d->waiting[i]->done, __ATOMIC_ACQUIRE)) {
			pthread_kill(d->waiting[i]->thread, WAKE_SIGNAL);
			nanosleep(&(struct timespec){ 0, 5 * 1000 * 1000 }, NULL);
		}
		reap(d, i);
	}
	pthread_mutex_unlock(&d->waiting_lock);
}

void fs_device_config(const char *tag, unsigned request_queues, struct virtio_fs_config *out)
{
	memset(out, 0, sizeof(*out));
	/* tag[] is not NUL-terminated when it is full (the options allow at most its size). */
	memcpy(out->tag, tag, MIN(strlen(tag), sizeof(out->tag)));
	out->num_request_queues = htole32(request_queues);
}

/* Whether a request still waits (SETLKW): its chain is the guest's, and its lock is not migrated. */
static bool anyone_waiting(struct fs_device *d)
{
	bool busy = false;
	pthread_mutex_lock(&d->waiting_lock);
	for (unsigned i = 0; i < FS_DEVICE_MAX_WAITING; i++)
		busy |= d->waiting[i] && !__atomic_load_n(&d->waiting[i]->done, __ATOMIC_ACQUIRE);
	pthread_mutex_unlock(&d->waiting_lock);
	return busy;
}

int fs_device_state_save(void *opaque, void **buf, size_t *len)
{
	struct fs_device *d = opaque;
	if (anyone_waiting(d)) {
		log_err("migration: a lock request is still waiting on the host: its state cannot be moved");
		return -EBUSY;
	}
	return fuse_server_state_save(d->srv, buf, len);
}

int fs_device_state_load(void *opaque, const void *buf, size_t len)
{
	struct fs_device *d = opaque;
	return fuse_server_state_load(d->srv, buf, len);
}

long fs_device_handle(void *opaque, struct vu_queue *q, struct vq_chain *c, unsigned slot)
{
	struct fs_device *d = opaque;
	struct fuse_worker *w = d->workers[slot];

	/* One copy out of guest memory; every decision below is made from it. */
	fuse_request_copy(w, vq_chain_rd(c), c->n_rd, c->rd_len);
	if (fuse_request_may_block(w)) {
		if (defer_waiting(d, w, q, c))
			return VU_DEFERRED;
		/* Blocking here would stall the queue, and with it the unlock that would end the wait. */
		log_warn("queue %u: too many waiting lock requests; refusing one", q->index);
		return (long)fuse_reply_error(w, vq_chain_wr(c), c->n_wr, c->wr_len, -ENOLCK);
	}
	return (long)fuse_serve_copied(d->srv, w, vq_chain_wr(c), c->n_wr, c->wr_len);
}

#include "mount/bridge.h"

#include <errno.h>
#include <linux/fuse.h>
#include <poll.h>
#include <semaphore.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "mount/bridge_internal.h"
#include "transport/fuse_dev.h"

size_t bridge_memory_needed(const struct bridge_config *cfg)
{
	size_t per = 2 * ((size_t)cfg->max_write + 2 * PAGE_BYTES) + (cfg->dax ? CTL_BYTES : 0);
	return per * cfg->threads + (size_t)cfg->hiprio_size * FORGET_BUF_BYTES;
}

bool bridge_backend_dead(const struct bridge *b)
{
	return __atomic_load_n(&b->dead, __ATOMIC_ACQUIRE);
}

int bridge_done_fd(const struct bridge *b)
{
	return b->done_fd;
}

/*
 * Wakes every reader waiting on request queue qi, with status as its result. Why this races with nothing: the
 * slots in flight on qi are found through the ring's own record of the chains issued on it (their tokens),
 * which only qi's lock guards, and a slot's state changes only under the lock of the queue its chain is on:
 * in submit, in reap_replies and here. Whichever of reap_replies and this comes first turns the slot IDLE and
 * posts; the other finds it IDLE and leaves it. So a request is completed once, by its reply or by the failure.
 * A failed slot's chain stays on the ring, so it must not be submitted again: after fail_all submit refuses,
 * and after ENODEV the connection is gone for good, so no reader gets another request to submit.
 */
static void fail_queue(struct bridge *b, unsigned qi, int status)
{
	struct vu_fe_queue *q = &b->fe->q[qi];
	pthread_mutex_lock(&q->lock);
	for (unsigned head = 0; head < vq_driver_num(&q->vq); head++) {
		struct slot *s = vq_driver_token(&q->vq, head);
		if (s && s->state == SLOT_IN_FLIGHT) {
			s->state = SLOT_IDLE;
			s->status = status;
			sem_post(&s->done);
		}
	}
	pthread_mutex_unlock(&q->lock);
}

/* Wakes every reader waiting for the backend, with status as its result. */
static void fail_in_flight(struct bridge *b, int status)
{
	for (unsigned qi = HIPRIO_QUEUE + 1; qi < b->fe->nqueues; qi++)
		fail_queue(b, qi, status);
}

/* A dead backend has nothing left to forget: drop what waits (no reader waits for a forget). */
static void drop_forgets(struct bridge *b)
{
	struct vu_fe_queue *q = &b->fe->q[HIPRIO_QUEUE];
	pthread_mutex_lock(&q->lock);
	b->hp.dropped += b->hp.pending.count;
	forget_set_clear(&b->hp.pending);
	pthread_mutex_unlock(&q->lock);
}

/* The backend is gone or broke the protocol: nothing in flight will be answered, nothing new is sent. */
static void fail_all(struct bridge *b, int status)
{
	__atomic_store_n(&b->dead, true, __ATOMIC_RELEASE);
	drop_forgets(b);
	fail_in_flight(b, status);
}

static int submit(struct bridge *b, struct slot *s, unsigned qi, const struct vq_seg *segs, unsigned n_rd,
                  unsigned n_wr)
{
	struct vu_fe_queue *q = &b->fe->q[qi];
	pthread_mutex_lock(&q->lock);
	int rc = bridge_backend_dead(b) ? -ENOTCONN : vq_driver_add(&q->vq, segs, n_rd, n_wr, s);
	bool kick = rc == 0 && vq_driver_kick_needed(&q->vq);
	if (rc == 0)
		s->state = SLOT_IN_FLIGHT;
	pthread_mutex_unlock(&q->lock);
	if (kick)
		eventfd_write(q->kick_fd, 1);
	return rc;
}

void bridge_write_reply(struct slot *s, const void *buf, size_t len)
{
	const struct fuse_in_header *rq = (const struct fuse_in_header *)s->req;
	ssize_t n;
	do {
		n = write(s->fuse_fd, buf, len);
	} while (n < 0 && errno == EINTR);
	/* ENOENT: the kernel gave up on the request (interrupted); nothing to do. */
	if (n < 0 && errno != ENOENT)
		log_warn("reply to the kernel (opcode %u, %zu bytes) failed: %s", rq->opcode, len, strerror(errno));
}

static void reply_error(struct slot *s, uint64_t unique, int error)
{
	struct fuse_out_header h = { .len = sizeof(h), .error = error, .unique = unique };
	bridge_write_reply(s, &h, sizeof(h));
}

/* Makes the backend's INIT answer one the host kernel and this bridge can both live with. */
static void patch_init_reply(struct bridge *b, struct slot *s, uint64_t kernel_flags, uint32_t len)
{
	struct fuse_init_out *o = (struct fuse_init_out *)(s->rep + sizeof(struct fuse_out_header));
	size_t have = len - sizeof(struct fuse_out_header);
	if (have < offsetof(struct fuse_init_out, max_write) + sizeof(o->max_write))
		return;
	if (b->dax)
		bridge_dax_init_reply(b, o, have);
	uint64_t flags = o->flags;
	bool ext = have >= offsetof(struct fuse_init_out, flags2) + sizeof(o->flags2);
	if (ext && (flags & FUSE_INIT_EXT))
		flags |= (uint64_t)o->flags2 << 32;
	flags &= kernel_flags & ~INIT_FLAGS_DROPPED;
	o->flags = (uint32_t)flags;
	if (ext)
		o->flags2 = (uint32_t)(flags >> 32);
	o->max_write = MIN(o->max_write, b->cfg.max_write);
	if (have >= offsetof(struct fuse_init_out, max_pages) + sizeof(o->max_pages)) {
		o->max_pages = (uint16_t)MIN(o->max_pages, b->cfg.max_write / PAGE_BYTES);
		if (o->max_pages == 0)
			o->max_pages = 1;
		if (have >= offsetof(struct fuse_init_out, map_alignment) + sizeof(o->map_alignment))
			o->map_alignment = 0;
	}
	/* The 7.40+ words after flags2 pass as they are (request_timeout, 7.43, goes with its flag), but for the
	 * stack depth, which only FUSE_PASSTHROUGH (dropped) gives a meaning. */
	if (have >= FUSE_INIT_OUT_TAIL_OFFSET + sizeof(uint32_t))
		memset((uint8_t *)o + FUSE_INIT_OUT_TAIL_OFFSET, 0, sizeof(uint32_t));
	log_info("backend INIT: protocol 7.%u, flags 0x%llx, max_write %u", o->minor, (unsigned long long)flags,
	         o->max_write);
}

static uint64_t kernel_init_flags(const uint8_t *req, size_t len)
{
	const struct fuse_init_in *in = (const struct fuse_init_in *)(req + sizeof(struct fuse_in_header));
	if (len < sizeof(struct fuse_in_header) + offsetof(struct fuse_init_in, flags2))
		return 0;
	uint64_t f = in->flags;
	if ((f & FUSE_INIT_EXT) && len >= sizeof(struct fuse_in_header) + offsetof(struct fuse_init_in, unused))
		f |= (uint64_t)in->flags2 << 32;
	return f;
}

/* The checks the Linux driver leaves to the FUSE core: a reply must be whole and answer this request. */
int bridge_check_reply(const uint8_t *rep, size_t rep_size, uint64_t unique, uint32_t used_len)
{
	struct fuse_out_header h;
	if (used_len < sizeof(h) || used_len > rep_size)
		return -EIO;
	memcpy(&h, rep, sizeof(h));
	if (h.len != used_len || h.unique != unique || h.error > 0 || h.error < -4095 ||
	    (h.error != 0 && h.len != sizeof(h)))
		return -EIO;
	return 0;
}

/* A slot always uses the same request queue, so its state is only ever under that queue's lock. */
static unsigned pick_queue(const struct bridge *b, const struct slot *s)
{
	return HIPRIO_QUEUE + 1 + s->index % (b->fe->nqueues - 1);
}

/*
 * Room for the reply's payload. Like the Linux driver, offer no more than the kernel will take: for READ and
 * READDIR(PLUS) that is the size asked for (the kernel rejects a longer reply, and some backends fill the
 * whole buffer they are given).
 */
static uint32_t reply_room(const struct slot *s, uint32_t opcode, size_t len)
{
	uint32_t room = (uint32_t)(s->rep_size - sizeof(struct fuse_out_header));
	if ((opcode == FUSE_READ || opcode == FUSE_READDIR || opcode == FUSE_READDIRPLUS) &&
	    len >= sizeof(struct fuse_in_header) + sizeof(struct fuse_read_in)) {
		const struct fuse_read_in *in = (const struct fuse_read_in *)(s->req + sizeof(struct fuse_in_header));
		room = MIN(room, in->size);
	}
	return room;
}

/* Lays the request out as the Linux driver does: headers, then WRITE data, then reply header, then the rest. */
static unsigned make_segments(const struct slot *s, uint32_t opcode, size_t len, struct vq_seg *segs,
                              unsigned *n_wr)
{
	unsigned n = 0;
	size_t args = len;
	if (opcode == FUSE_WRITE && len > sizeof(struct fuse_in_header) + sizeof(struct fuse_write_in))
		args = sizeof(struct fuse_in_header) + sizeof(struct fuse_write_in);
	segs[n++] = (struct vq_seg){ s->req_gpa, (uint32_t)args };
	if (args < len)
		segs[n++] = (struct vq_seg){ s->req_gpa + args, (uint32_t)(len - args) };
	segs[n++] = (struct vq_seg){ s->rep_gpa, sizeof(struct fuse_out_header) };
	segs[n++] = (struct vq_seg){ s->rep_gpa + sizeof(struct fuse_out_header), reply_room(s, opcode, len) };
	*n_wr = 2;
	return n;
}

/*
 * Lays a FORGET (one node, as the kernel sends one) or a BATCH_FORGET out in f. The unique numbers are ours,
 * counted down from the top so as not to repeat the kernel's, which count up from 0; no reply will carry them.
 */
static uint32_t write_forget(struct hiprio *hp, struct forget_buf *f, const struct fuse_forget_one *batch, size_t n)
{
	struct fuse_in_header h = { .unique = hp->unique -= 2 };
	uint8_t *p = f->mem + sizeof(h);
	if (n == 1) {
		struct fuse_forget_in in = { .nlookup = batch[0].nlookup };
		h.opcode = FUSE_FORGET;
		h.nodeid = batch[0].nodeid;
		h.len = sizeof(h) + sizeof(in);
		memcpy(p, &in, sizeof(in));
	} else {
		struct fuse_batch_forget_in in = { .count = (uint32_t)n };
		h.opcode = FUSE_BATCH_FORGET;
		h.len = (uint32_t)(sizeof(h) + sizeof(in) + n * sizeof(*batch));
		memcpy(p, &in, sizeof(in));
		memcpy(p + sizeof(in), batch, n * sizeof(*batch));
	}
	memcpy(f->mem, &h, sizeof(h));
	return h.len;
}

/* Sends pending forgets while a hiprio entry is free; returns the nodes sent. Under the hiprio lock. */
static size_t send_forgets(struct bridge *b, bool *kick)
{
	struct hiprio *hp = &b->hp;
	struct vq_driver *vq = &b->fe->q[HIPRIO_QUEUE].vq;
	struct fuse_forget_one batch[FORGETS_PER_BUF];
	size_t sent = 0;
	while (hp->pending.count && hp->free) {
		struct forget_buf *f = hp->free;
		size_t n = forget_set_take(&hp->pending, batch, FORGETS_PER_BUF);
		struct vq_seg seg = { f->gpa, write_forget(hp, f, batch, n) };
		if (vq_driver_add(vq, &seg, 1, 0, f) < 0) {
			/* Cannot happen (a free buffer is a free descriptor); should it, the nodes wait for the next try. */
			for (size_t i = 0; i < n; i++)
				if (forget_set_add(&hp->pending, batch[i].nodeid, batch[i].nlookup) < 0)
					hp->dropped++;
			break;
		}
		hp->free = f->next_free;
		hp->messages++;
		sent += n;
	}
	*kick = sent && vq_driver_kick_needed(vq);
	return sent;
}


static void add_forget(void *ctx, uint64_t nodeid, uint64_t nlookup)
{
	struct hiprio *hp = ctx;
	int rc = forget_set_add(&hp->pending, nodeid, nlookup);
	hp->nodes_in++;
	if (rc > 0)
		hp->merged++;
	if (rc < 0 && hp->dropped++ == 0)
		log_err("no memory to keep a forget: the backend keeps node %#llx", (unsigned long long)nodeid);
}

/* Hands each node of the kernel's FORGET or BATCH_FORGET in req to fn. */
void bridge_each_forget(const uint8_t *req, size_t len, forget_fn *fn, void *ctx)
{
	struct fuse_in_header h;
	struct fuse_forget_in one;
	struct fuse_batch_forget_in batch;
	const uint8_t *p = req + sizeof(h);
	size_t room = len - sizeof(h);

	memcpy(&h, req, sizeof(h));
	if (h.opcode == FUSE_FORGET) {
		if (room >= sizeof(one)) {
			memcpy(&one, p, sizeof(one));
			fn(ctx, h.nodeid, one.nlookup);
		}
		return;
	}
	if (room < sizeof(batch))
		return;
	memcpy(&batch, p, sizeof(batch));
	size_t n = MIN(batch.count, (room - sizeof(batch)) / sizeof(struct fuse_forget_one));
	for (size_t i = 0; i < n; i++) {
		struct fuse_forget_one f;
		memcpy(&f, p + sizeof(batch) + i * sizeof(f), sizeof(f));
		fn(ctx, f.nodeid, f.nlookup);
	}
}

/*
 * Takes the kernel's forgets and sends what the hiprio queue has room for. The reader never waits for the
 * backend here: what does not fit waits in the pending set for reap_forgets.
 */
static void queue_forgets(struct bridge *b, const uint8_t *req, size_t len)
{
	struct vu_fe_queue *q = &b->fe->q[HIPRIO_QUEUE];
	bool kick = false;
	pthread_mutex_lock(&q->lock);
	/* Checked under the lock, as drop_forgets clears under it after dead is set: nothing is added after. */
	if (!bridge_backend_dead(b)) {
		bridge_each_forget(req, len, add_forget, &b->hp);
		send_forgets(b, &kick);
	}
	pthread_mutex_unlock(&q->lock);
	if (kick)
		eventfd_write(q->kick_fd, 1);
}

typedef void used_fn(struct bridge *b, void *token, uint32_t len);

/*
 * Hands every used entry of q to fn, then asks for an interrupt at the next one, taking what arrived meanwhile
 * too. The caller holds q's lock. -EIO if the backend broke the ring.
 */
static int take_used(struct bridge *b, struct vu_fe_queue *q, used_fn *fn)
{
	int rc;
	do {
		void *token;
		uint32_t len;
		while ((rc = vq_driver_get_used(&q->vq, &token, &len)) == 1)
			fn(b, token, len);
	} while (rc == 0 && vq_driver_arm(&q->vq));
	return rc;
}

static void free_forget_buf(struct bridge *b, void *token, uint32_t len)
{
	struct forget_buf *f = token;
	f->next_free = b->hp.free;
	b->hp.free = f;
}

/* Takes the backend's used hiprio entries: their buffers are free again, so forgets that waited can go. */
static int reap_forgets(struct bridge *b)
{
	struct vu_fe_queue *q = &b->fe->q[HIPRIO_QUEUE];
	struct hiprio *hp = &b->hp;
	bool kick = false;
	pthread_mutex_lock(&q->lock);
	int rc = take_used(b, q, free_forget_buf);
	if (rc == 0 && hp->pending.count && !bridge_backend_dead(b)) {
		size_t n = send_forgets(b, &kick);
		hp->retried += n;
		if (n)
			log_debug("hiprio: %zu forgets retried, %zu still waiting", n, hp->pending.count);
	}
	pthread_mutex_unlock(&q->lock);
	if (kick)
		eventfd_write(q->kick_fd, 1);
	return rc;
}

static int reap(struct bridge *b, unsigned qi);

static uint64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/*
 * Waits for the reply to s. Polling first saves two thread wake-ups per request (completion thread, then this
 * reader), which cost more than the request itself here; the reader reaps the used ring itself meanwhile.
 */
static void wait_reply(struct bridge *b, struct slot *s, unsigned qi)
{
	if (b->cfg.poll_us) {
		const struct vq_driver *vq = &b->fe->q[qi].vq;
		uint64_t deadline = now_us() + b->cfg.poll_us;
		do {
			if (sem_trywait(&s->done) == 0)
				return;
			if (vq_driver_has_used(vq) && reap(b, qi) < 0)
				break; /* the completion thread reports a broken ring */
			__builtin_ia32_pause();
		} while (now_us() < deadline);
	}
	while (sem_wait(&s->done) < 0 && errno == EINTR)
		;
}

/* Puts a chain on s's queue and waits for the answer: 0 (s->used_len bytes came back) or a negative errno. */
int bridge_roundtrip(struct bridge *b, struct slot *s, const struct vq_seg *segs, unsigned n_rd, unsigned n_wr)
{
	unsigned qi = pick_queue(b, s);
	int rc = submit(b, s, qi, segs, n_rd, n_wr);
	if (rc == 0) {
		wait_reply(b, s, qi);
		rc = s->status;
	}
	return rc;
}

static void forward(struct bridge *b, struct slot *s, size_t len)
{
	struct fuse_in_header h;
	struct vq_seg segs[4];
	unsigned n_wr;

	memcpy(&h, s->req, sizeof(h));
	if (b->dax && bridge_dax_request(b, s, &h, len))
		return;
	if (h.opcode == FUSE_FORGET || h.opcode == FUSE_BATCH_FORGET) {
		queue_forgets(b, s->req, len);
		return;
	}
	if (h.opcode == FUSE_INTERRUPT) {
		/* The Linux virtiofs driver does not forward interrupts either; ENOSYS makes the kernel stop. */
		reply_error(s, h.unique, -ENOSYS);
		return;
	}
	uint64_t kflags = h.opcode == FUSE_INIT ? kernel_init_flags(s->req, len) : 0;
	if (h.opcode == FUSE_INIT && b->dax)
		bridge_dax_init_request(b, s, len);
	uint64_t seq = b->dax ? mdax_seq(b->dax) : 0;
	unsigned n = make_segments(s, h.opcode, len, segs, &n_wr);
	int rc = bridge_roundtrip(b, s, segs, n - n_wr, n_wr);
	if (rc == 0)
		rc = bridge_check_reply(s->rep, s->rep_size, h.unique, s->used_len);
	if (rc < 0) {
		if (rc == -EIO)
			log_warn("backend reply to request %llu (opcode %u) is malformed", (unsigned long long)h.unique,
			         h.opcode);
		reply_error(s, h.unique, rc);
		return;
	}
	if (h.opcode == FUSE_INIT)
		patch_init_reply(b, s, kflags, s->used_len);
	else if (b->dax)
		mdax_note_reply(b->dax, s->req, len, s->rep + sizeof(struct fuse_out_header),
		                s->used_len - sizeof(struct fuse_out_header), seq);
	bridge_write_reply(s, s->rep, s->used_len);
}

static void *reader_thread(void *arg)
{
	struct slot *s = arg;
	struct bridge *b = s->b;
	for (;;) {
		ssize_t n = read(s->fuse_fd, s->req, s->req_size);
		if (n < 0) {
			if (errno == EINTR || errno == ENOENT || errno == EAGAIN)
				continue;
			if (errno != ENODEV)
				log_err("reading /dev/fuse: %s", strerror(errno));
			/* The mount is gone: a reader still waiting for the backend has no one to answer. */
			fail_in_flight(b, -ENODEV);
			break;
		}
		if ((size_t)n < sizeof(struct fuse_in_header))
			continue;
		forward(b, s, (size_t)n);
	}
	if (__atomic_add_fetch(&b->readers_left, 1, __ATOMIC_ACQ_REL) == b->nslots)
		eventfd_write(b->done_fd, 1);
	return NULL;
}

/* A reply arrived: wake its reader, unless the failure path already did (see fail_queue). */
static void complete_slot(struct bridge *b, void *token, uint32_t len)
{
	struct slot *s = token;
	if (s->state != SLOT_IN_FLIGHT)
		return;
	s->state = SLOT_IDLE;
	s->used_len = len;
	s->status = 0;
	sem_post(&s->done);
}

/* Takes the backend's used entries for request queue qi and wakes their readers. */
static int reap_replies(struct bridge *b, unsigned qi)
{
	struct vu_fe_queue *q = &b->fe->q[qi];
	pthread_mutex_lock(&q->lock);
	int rc = take_used(b, q, complete_slot);
	pthread_mutex_unlock(&q->lock);
	return rc;
}

static int reap(struct bridge *b, unsigned qi)
{
	return qi == HIPRIO_QUEUE ? reap_forgets(b) : reap_replies(b, qi);
}

struct completer_arg {
	struct bridge *b;
	unsigned qi;
};

static void *completer_thread(void *arg)
{
	struct completer_arg a = *(struct completer_arg *)arg;
	struct vu_fe_queue *q = &a.b->fe->q[a.qi];
	struct pollfd pfd[2] = { { .fd = q->call_fd, .events = POLLIN }, { .fd = a.b->stop_fd, .events = POLLIN } };
	free(arg);
	for (;;) {
		if (reap(a.b, a.qi) < 0) {
			log_err("queue %u: the backend broke the virtqueue protocol; failing all requests", a.qi);
			fail_all(a.b, -EIO);
			break;
		}
		if (poll(pfd, 2, -1) < 0 && errno != EINTR)
			break;
		if (pfd[1].revents)
			break;
		eventfd_t v;
		if (pfd[0].revents & POLLIN)
			eventfd_read(q->call_fd, &v);
	}
	return NULL;
}

/* The backend sends nothing on the socket once running: readable or hung up means it is gone. */
static void *monitor_thread(void *arg)
{
	struct bridge *b = arg;
	struct pollfd pfd[2] = { { .fd = b->fe->sock, .events = POLLIN | POLLRDHUP },
	                         { .fd = b->stop_fd, .events = POLLIN } };
	while (poll(pfd, 2, -1) < 0 && errno == EINTR)
		;
	if (!pfd[1].revents) {
		log_err("the backend closed the vhost-user connection; requests now fail with ENOTCONN");
		fail_all(b, -ENOTCONN);
	}
	return NULL;
}

/* One buffer per hiprio ring entry, all free. */
static int hiprio_init(struct bridge *b)
{
	unsigned num = b->fe->q[HIPRIO_QUEUE].num;
	b->hp.bufs = calloc(num, sizeof(*b->hp.bufs));
	if (!b->hp.bufs)
		return -ENOMEM;
	for (unsigned i = 0; i < num; i++) {
		struct forget_buf *f = &b->hp.bufs[i];
		f->mem = vu_frontend_alloc(b->fe, FORGET_BUF_BYTES, PAGE_BYTES, &f->gpa);
		if (!f->mem)
			return -ENOMEM;
		f->next_free = b->hp.free;
		b->hp.free = f;
	}
	return 0;
}

/* The threads are gone: what became of the kernel's forgets, then the memory. */
static void hiprio_free(struct bridge *b)
{
	struct hiprio *hp = &b->hp;
	if (hp->nodes_in)
		log_info("forgets: %llu from the kernel (%llu merged), %llu messages; %llu waited for room on the hiprio "
		         "queue, %llu dropped, %zu unsent",
		         (unsigned long long)hp->nodes_in, (unsigned long long)hp->merged,
		         (unsigned long long)hp->messages, (unsigned long long)hp->retried,
		         (unsigned long long)hp->dropped, hp->pending.count);
	forget_set_clear(&hp->pending);
	free(hp->bufs);
}

int bridge_new(struct vu_frontend *fe, int fuse_fd, const struct bridge_config *cfg, struct bridge **out)
{
	struct bridge *b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	b->fe = fe;
	b->fuse_fd = fuse_fd;
	b->cfg = *cfg;
	b->nslots = cfg->threads;
	b->slots = calloc(b->nslots, sizeof(*b->slots));
	b->stop_fd = eventfd(0, EFD_CLOEXEC);
	b->done_fd = eventfd(0, EFD_CLOEXEC);
	if (!b->slots || b->stop_fd < 0 || b->done_fd < 0 || hiprio_init(b) < 0)
		goto fail;
	if (cfg->dax)
		bridge_dax_new(b);
	for (unsigned i = 0; i < b->nslots; i++) {
		struct slot *s = &b->slots[i];
		s->b = b;
		s->index = i;
		s->fuse_fd = -1;
		s->req_size = s->rep_size = cfg->max_write + 2 * PAGE_BYTES;
		s->req = vu_frontend_alloc(fe, s->req_size, PAGE_BYTES, &s->req_gpa);
		s->rep = vu_frontend_alloc(fe, s->rep_size, PAGE_BYTES, &s->rep_gpa);
		if (cfg->dax && !(s->ctl = vu_frontend_alloc(fe, CTL_BYTES, PAGE_BYTES, &s->ctl_gpa)))
			goto fail;
		if (!s->req || !s->rep || sem_init(&s->done, 0, 0) < 0)
			goto fail;
		s->fuse_fd = i == 0 ? fuse_fd : fuse_dev_clone(fuse_fd);
		if (s->fuse_fd < 0)
			goto fail;
	}
	*out = b;
	return 0;
fail:
	bridge_free(b);
	return -ENOMEM;
}

int bridge_start(struct bridge *b)
{
	for (unsigned qi = 0; qi < b->fe->nqueues; qi++) {
		struct completer_arg *a = malloc(sizeof(*a));
		if (!a)
			return -ENOMEM;
		*a = (struct completer_arg){ b, qi };
		if (pthread_create(&b->completer[qi], NULL, completer_thread, a)) {
			free(a);
			return -EAGAIN;
		}
	}
	if (pthread_create(&b->monitor, NULL, monitor_thread, b))
		return -EAGAIN;
	b->started = true;
	for (unsigned i = 0; i < b->nslots; i++) {
		if (pthread_create(&b->slots[i].thread, NULL, reader_thread, &b->slots[i]))
			return -EAGAIN;
		b->slots[i].thread_started = true;
	}
	return 0;
}

void bridge_free(struct bridge *b)
{
	if (!b)
		return;
	if (b->slots) {
		for (unsigned i = 0; i < b->nslots; i++)
			if (b->slots[i].thread_started)
				pthread_join(b->slots[i].thread, NULL);
	}
	if (b->started) {
		eventfd_write(b->stop_fd, 1);
		for (unsigned qi = 0; qi < b->fe->nqueues; qi++)
			pthread_join(b->completer[qi], NULL);
		pthread_join(b->monitor, NULL);
	}
	if (b->slots) {
		for (unsigned i = 0; i < b->nslots; i++) {
			struct slot *s = &b->slots[i];
			if (s->fuse_fd >= 0 && s->fuse_fd != b->fuse_fd)
				close(s->fuse_fd);
			if (s->req)
				sem_destroy(&s->done);
		}
	}
	free(b->slots);
	hiprio_free(b);
	mdax_free(b->dax);
	close_if_open(&b->stop_fd);
	close_if_open(&b->done_fd);
	free(b);
}

void bridge_wait(struct bridge *b)
{
	eventfd_t v;
	eventfd_read(b->done_fd, &v);
}

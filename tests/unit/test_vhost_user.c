/*
 * The vhost-user backend (vu_device) over a socketpair: replies, REPLY_ACK, refusals, malformed messages that
 * must drop the connection without crashing or leaking fds, a queue set up with a memfd and driven with
 * vq_driver from this side, and one end-to-end run against the real frontend (vu_frontend).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/log.h"
#include "common/util.h"
#include "transport/vhost_user.h"
#include "transport/vq_driver.h"
#include "transport/vu_device.h"
#include "transport/vu_frontend.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define MEM_SIZE (1u << 20)
#define DESC_GPA 0x0ull
#define AVAIL_GPA 0x1000ull
#define USED_GPA 0x2000ull
#define DATA_GPA 0x10000ull
#define QSIZE 8u
#define WAIT_MS 5000

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;
	assert_non_null(d);
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

/* ---- the backend under test, serving one end of a socketpair on its own thread ---- */

struct server {
	int sock[2];             /* [0] the backend's end, [1] ours */
	struct vu_dev dev;
	pthread_t thread;
	int rc;
	bool joined;
	int calls;               /* handler invocations (atomic) */
	int last_queue;
	bool defer;              /* answer from another thread, as a waiting lock request is (atomic) */
	int late;                /* such answers not finished yet (atomic) */
	int delay_us;            /* each call sleeps this long (the pool tests) */
	int inflight, max_inflight; /* calls running now, and the most at once (atomic) */
	unsigned max_slot;       /* the highest slot a call came on (atomic) */
};

static void note_call_start(struct server *s, unsigned slot)
{
	int now = __atomic_add_fetch(&s->inflight, 1, __ATOMIC_SEQ_CST);
	int max = __atomic_load_n(&s->max_inflight, __ATOMIC_SEQ_CST);
	while (now > max && !__atomic_compare_exchange_n(&s->max_inflight, &max, now, false, __ATOMIC_SEQ_CST,
	                                                  __ATOMIC_SEQ_CST))
		;
	unsigned ms = __atomic_load_n(&s->max_slot, __ATOMIC_SEQ_CST);
	while (slot > ms && !__atomic_compare_exchange_n(&s->max_slot, &ms, slot, false, __ATOMIC_SEQ_CST,
	                                                 __ATOMIC_SEQ_CST))
		;
	if (s->delay_us)
		usleep((useconds_t)s->delay_us);
	__atomic_sub_fetch(&s->inflight, 1, __ATOMIC_SEQ_CST);
}

struct late_reply {
	struct server *s;
	struct vu_pending *p;
	size_t len;
	uint8_t buf[];
};

static void *complete_later(void *arg)
{
	struct late_reply *r = arg;
	nanosleep(&(struct timespec){ 0, 200 * 1000 }, NULL);
	struct server *s = r->s;
	vu_pending_complete(r->p, r->buf, r->len);
	free(r);
	__atomic_sub_fetch(&s->late, 1, __ATOMIC_SEQ_CST);
	return NULL;
}

/* Keeps the chain and answers buf from a thread of its own; false if it could not. */
static bool reply_later(struct server *s, struct vu_queue *q, struct vq_chain *c, const uint8_t *buf, size_t n)
{
	struct late_reply *r = malloc(sizeof(*r) + n);
	pthread_t t;
	assert_non_null(r);
	r->p = vu_queue_defer(q, c);
	assert_non_null(r->p);
	r->s = s;
	r->len = n;
	memcpy(r->buf, buf, n);
	__atomic_add_fetch(&s->late, 1, __ATOMIC_SEQ_CST);
	assert_int_equal(pthread_create(&t, NULL, complete_later, r), 0);
	pthread_detach(t);
	return true;
}

/* Upper-cases the readable bytes into the writable ones; the used length is what it wrote. */
static long echo_upper(void *opaque, struct vu_queue *q, struct vq_chain *c, unsigned slot)
{
	struct server *s = opaque;
	uint8_t buf[4096];
	size_t n = 0;
	const struct iovec *rd = vq_chain_rd(c), *wr = vq_chain_wr(c);

	__atomic_fetch_add(&s->calls, 1, __ATOMIC_SEQ_CST);
	__atomic_store_n(&s->last_queue, (int)q->index, __ATOMIC_SEQ_CST);
	note_call_start(s, slot);
	for (unsigned i = 0; i < c->n_rd && n < sizeof(buf); i++) {
		size_t k = MIN(rd[i].iov_len, sizeof(buf) - n);
		memcpy(buf + n, rd[i].iov_base, k);
		n += k;
	}
	for (size_t i = 0; i < n; i++)
		buf[i] = (uint8_t)toupper(buf[i]);
	if (__atomic_load_n(&s->defer, __ATOMIC_SEQ_CST) && reply_later(s, q, c, buf, n))
		return VU_DEFERRED;
	size_t done = 0;
	for (unsigned i = 0; i < c->n_wr && done < n; i++) {
		size_t k = MIN(wr[i].iov_len, n - done);
		memcpy(wr[i].iov_base, buf + done, k);
		done += k;
	}
	return (long)done;
}

static void *serve_thread(void *arg)
{
	struct server *s = arg;
	s->rc = vu_dev_serve(&s->dev);
	return NULL;
}

/* Device-state hooks for the migration tests: the state is STATE_TEST_LEN bytes of a pattern, more than a pipe
 * holds, so the transfer must run beside the control plane. */
#define STATE_TEST_LEN (300u * 1024)
static int state_save_hook(void *opaque, void **buf, size_t *len)
{
	uint8_t *b = malloc(STATE_TEST_LEN);
	if (!b)
		return -ENOMEM;
	for (size_t i = 0; i < STATE_TEST_LEN; i++)
		b[i] = (uint8_t)(i * 7 + 1);
	*buf = b;
	*len = STATE_TEST_LEN;
	return 0;
}

static int state_load_hook(void *opaque, const void *buf, size_t len)
{
	const uint8_t *b = buf;
	if (len != STATE_TEST_LEN)
		return -EINVAL;
	for (size_t i = 0; i < len; i++)
		if (b[i] != (uint8_t)(i * 7 + 1))
			return -EINVAL;
	return 0;
}

static struct server *server_start_cfg(unsigned max_queues, bool state_hooks);

static struct server *server_start(unsigned max_queues)
{
	return server_start_cfg(max_queues, false);
}

static struct server *server_start_cfg(unsigned max_queues, bool state_hooks)
{
	struct server *s = calloc(1, sizeof(*s));
	assert_non_null(s);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s->sock), 0);
	/* A reply that never comes fails the test instead of hanging it. */
	struct timeval tv = { .tv_sec = WAIT_MS / 1000 };
	assert_int_equal(setsockopt(s->sock[1], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
	struct vu_dev_config cfg = { .max_queues = max_queues, .handle = echo_upper, .opaque = s };
	if (state_hooks) {
		cfg.state_save = state_save_hook;
		cfg.state_load = state_load_hook;
	}
	assert_int_equal(vu_dev_init(&s->dev, s->sock[0], &cfg), 0);
	assert_int_equal(pthread_create(&s->thread, NULL, serve_thread, s), 0);
	return s;
}

/* Waits for vu_dev_serve to return (it must: the test fails after WAIT_MS) and gives its result. */
static int server_wait(struct server *s)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += WAIT_MS / 1000;
	assert_int_equal(pthread_timedjoin_np(s->thread, NULL, &ts), 0);
	s->joined = true;
	return s->rc;
}

/* Closes our end (EOF for the backend) and expects a clean return. */
static void server_finish(struct server *s)
{
	close_if_open(&s->sock[1]);
	assert_int_equal(server_wait(s), 0);
}

static void server_free(struct server *s)
{
	close_if_open(&s->sock[1]);
	if (!s->joined)
		server_wait(s);
	vu_dev_destroy(&s->dev);
	close_if_open(&s->sock[0]);
	free(s);
}

/* ---- our side of the conversation ---- */

static void send_msg(int sock, uint32_t request, uint32_t flags, const void *payload, uint32_t size, const int *fds,
                     unsigned nfds)
{
	struct vhu_msg m;
	memset(&m, 0, sizeof(m));
	m.hdr = (struct vhu_hdr){ .request = request, .flags = flags, .size = size };
	if (size)
		memcpy(&m.p, payload, size);
	if (nfds)
		memcpy(m.fds, fds, nfds * sizeof(int));
	m.nfds = nfds;
	assert_int_equal(vhu_send(sock, &m), 0);
}

static void recv_reply(int sock, uint32_t request, struct vhu_msg *m)
{
	assert_int_equal(vhu_recv(sock, m), 0);
	assert_int_equal(m->hdr.request, request);
	assert_int_equal(m->hdr.flags, VHU_VERSION | VHU_FLAG_REPLY);
	assert_int_equal(m->nfds, 0);
}

static uint64_t get_u64(int sock, uint32_t request)
{
	struct vhu_msg m;
	send_msg(sock, request, VHU_VERSION, NULL, 0, NULL, 0);
	recv_reply(sock, request, &m);
	assert_int_equal(m.hdr.size, sizeof(uint64_t));
	return m.p.u64;
}

/* Sends with NEED_REPLY and returns the backend's status (0 = success). REPLY_ACK must be negotiated. */
static uint64_t call_ack(int sock, uint32_t request, const void *payload, uint32_t size, const int *fds,
                         unsigned nfds)
{
	struct vhu_msg m;
	send_msg(sock, request, VHU_VERSION | VHU_FLAG_NEED_REPLY, payload, size, fds, nfds);
	recv_reply(sock, request, &m);
	assert_int_equal(m.hdr.size, sizeof(uint64_t));
	return m.p.u64;
}

static uint64_t ack_u64(int sock, uint32_t request, uint64_t v)
{
	return call_ack(sock, request, &v, sizeof(v), NULL, 0);
}

static uint64_t ack_state(int sock, uint32_t request, uint32_t index, uint32_t num)
{
	struct vhu_vring_state st = { index, num };
	return call_ack(sock, request, &st, sizeof(st), NULL, 0);
}

static void negotiate_reply_ack(int sock)
{
	uint64_t pf = get_u64(sock, VHU_GET_PROTOCOL_FEATURES);
	assert_true(pf & (1ull << VHU_PROTOCOL_F_REPLY_ACK));
	send_msg(sock, VHU_SET_PROTOCOL_FEATURES, VHU_VERSION, &(uint64_t){ 1ull << VHU_PROTOCOL_F_REPLY_ACK }, 8,
	         NULL, 0);
}

static void negotiate_pf(int c, uint64_t pf)
{
	assert_int_equal(get_u64(c, VHU_GET_PROTOCOL_FEATURES) & pf, pf);
	send_msg(c, VHU_SET_PROTOCOL_FEATURES, VHU_VERSION, &pf, sizeof(pf), NULL, 0);
}

static bool readable_within(int fd, int ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	return poll(&p, 1, ms) == 1 && (p.revents & POLLIN);
}

/* ---- replies ---- */

static void test_get_requests_answer_with_their_values(void **state)
{
	(void)state;
	struct server *s = server_start(3);
	uint64_t f = get_u64(s->sock[1], VHU_GET_FEATURES);
	assert_int_equal(f, vu_dev_offered_features());
	assert_true(f & (1ull << VIRTIO_F_VERSION_1_BIT));
	assert_true(f & (1ull << VHU_F_PROTOCOL_FEATURES));
	assert_true(f & (1ull << VIRTIO_RING_F_EVENT_IDX_BIT));
	uint64_t pf = get_u64(s->sock[1], VHU_GET_PROTOCOL_FEATURES);
	assert_int_equal(pf, vu_dev_offered_protocol_features(&s->dev));
	assert_false(pf & (1ull << VHU_PROTOCOL_F_CONFIG)); /* no config space given */
	assert_true(pf & (1ull << VHU_PROTOCOL_F_MQ));
	assert_true(pf & (1ull << VHU_PROTOCOL_F_CONFIGURE_MEM_SLOTS));
	assert_int_equal(get_u64(s->sock[1], VHU_GET_QUEUE_NUM), 3);
	assert_int_equal(get_u64(s->sock[1], VHU_GET_MAX_MEM_SLOTS), GM_MAX_REGIONS);
	server_finish(s);
	server_free(s);
}

static void test_clean_eof_returns_zero(void **state)
{
	(void)state;
	int before = count_fds();
	struct server *s = server_start(2);
	server_finish(s); /* no message at all */
	server_free(s);
	s = server_start(2);
	send_msg(s->sock[1], VHU_SET_OWNER, VHU_VERSION, NULL, 0, NULL, 0);
	server_finish(s);
	assert_true(s->dev.owner_set);
	server_free(s);
	assert_int_equal(count_fds(), before);
}

static void test_need_reply_ignored_until_reply_ack_negotiated(void **state)
{
	(void)state;
	struct server *s = server_start(2);
	struct vhu_msg m;
	/* Not negotiated: no ack, so the next thing we read answers the GET that follows. */
	send_msg(s->sock[1], VHU_SET_OWNER, VHU_VERSION | VHU_FLAG_NEED_REPLY, NULL, 0, NULL, 0);
	send_msg(s->sock[1], VHU_GET_QUEUE_NUM, VHU_VERSION, NULL, 0, NULL, 0);
	recv_reply(s->sock[1], VHU_GET_QUEUE_NUM, &m);
	assert_int_equal(m.p.u64, 2);
	server_finish(s);
	server_free(s);
}

static void test_reply_ack_zero_on_success_nonzero_on_failure(void **state)
{
	(void)state;
	struct server *s = server_start(2);
	int c = s->sock[1];
	negotiate_reply_ack(c);
	assert_int_equal(call_ack(c, VHU_SET_OWNER, NULL, 0, NULL, 0), 0);
	assert_int_equal(ack_u64(c, VHU_SET_FEATURES, 1ull << VIRTIO_F_VERSION_1_BIT), 0);
	assert_int_equal(ack_state(c, VHU_SET_VRING_NUM, 1, 256), 0);
	assert_int_not_equal(ack_state(c, VHU_SET_VRING_NUM, 1, 3), 0);       /* not a power of two */
	assert_int_not_equal(ack_state(c, VHU_SET_VRING_NUM, 1, 65536), 0);   /* too large */
	assert_int_not_equal(ack_state(c, VHU_SET_VRING_NUM, 2, 8), 0);       /* no such queue */
	assert_int_equal(ack_state(c, VHU_SET_VRING_BASE, 0, 65535), 0);
	assert_int_not_equal(ack_state(c, VHU_SET_VRING_BASE, 0, 65536), 0);
	assert_int_not_equal(ack_state(c, VHU_SET_VRING_ENABLE, 0, 2), 0);
	assert_int_not_equal(ack_u64(c, VHU_SET_VRING_CALL, 5 | VHU_VRING_NOFD_MASK), 0); /* no queue 5 */
	assert_int_not_equal(ack_u64(c, VHU_SET_PROTOCOL_FEATURES, 1ull << 63), 0);
	/* An unknown request is refused, not fatal. */
	uint64_t status = 0xf;
	assert_int_not_equal(call_ack(c, VHU_SET_STATUS, &status, sizeof(status), NULL, 0), 0);
	assert_int_not_equal(call_ack(c, 200, NULL, 0, NULL, 0), 0);
	/* A request with its own reply answers with the value, not an ack. */
	struct vhu_msg m;
	send_msg(c, VHU_GET_QUEUE_NUM, VHU_VERSION | VHU_FLAG_NEED_REPLY, NULL, 0, NULL, 0);
	recv_reply(c, VHU_GET_QUEUE_NUM, &m);
	assert_int_equal(m.p.u64, 2);
	server_finish(s);
	assert_int_equal(s->dev.features, 1ull << VIRTIO_F_VERSION_1_BIT);
	server_free(s);
}

static void test_set_features_with_unoffered_bits_is_refused(void **state)
{
	(void)state;
	struct server *s = server_start(2);
	int c = s->sock[1];
	negotiate_reply_ack(c);
	uint64_t offered = get_u64(c, VHU_GET_FEATURES);
	assert_int_not_equal(ack_u64(c, VHU_SET_FEATURES, offered | 1ull << 0), 0);
	assert_int_not_equal(ack_u64(c, VHU_SET_FEATURES, 1ull << VIRTIO_F_VERSION_1_BIT | 1ull << 33), 0);
	assert_int_equal(ack_u64(c, VHU_SET_FEATURES, offered), 0);
	assert_int_not_equal(ack_u64(c, VHU_SET_FEATURES, ~0ull), 0);
	server_finish(s);
	assert_int_equal(s->dev.features, offered); /* the refused ones changed nothing */
	server_free(s);
}

/* ---- malformed messages: the connection drops, nothing crashes, no fd is left behind ---- */

struct raw_fds {
	int fds[12];
	unsigned n;
};

static void make_eventfds(struct raw_fds *f, unsigned n)
{
	f->n = n;
	for (unsigned i = 0; i < n; i++) {
		f->fds[i] = eventfd(0, EFD_CLOEXEC);
		assert_true(f->fds[i] >= 0);
	}
}

static void close_raw(struct raw_fds *f)
{
	for (unsigned i = 0; i < f->n; i++)
		close(f->fds[i]);
	f->n = 0;
}

/* Sends bytes and fds as one sendmsg, bypassing vhu_send's checks. */
static void send_raw(int sock, const void *buf, size_t len, const int *fds, unsigned nfds)
{
	char control[CMSG_SPACE(12 * sizeof(int))];
	struct iovec iov = { (void *)buf, len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	if (nfds) {
		memset(control, 0, sizeof(control));
		mh.msg_control = control;
		mh.msg_controllen = CMSG_SPACE(nfds * sizeof(int));
		struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(nfds * sizeof(int));
		memcpy(CMSG_DATA(cm), fds, nfds * sizeof(int));
	}
	assert_int_equal(sendmsg(sock, &mh, MSG_NOSIGNAL), (ssize_t)len);
}

/* One malformed message (header, payload bytes, n eventfds attached) on a fresh connection: serve fails. */
static void expect_disconnect(uint32_t request, uint32_t flags, uint32_t size, const void *payload, size_t paylen,
                              unsigned nfds)
{
	int before = count_fds();
	struct server *s = server_start(2);
	struct raw_fds f;
	uint8_t buf[1024];
	struct vhu_hdr h = { request, flags, size };

	assert_true(sizeof(h) + paylen <= sizeof(buf));
	memcpy(buf, &h, sizeof(h));
	if (paylen)
		memcpy(buf + sizeof(h), payload, paylen);
	make_eventfds(&f, nfds);
	send_raw(s->sock[1], buf, sizeof(h) + paylen, f.fds, nfds);
	close_raw(&f);
	/* EOF after the message (a truncated one is only noticed then), but replies still get through: a message
	 * wrongly accepted ends in a clean EOF (0), not in a failed send. */
	assert_int_equal(shutdown(s->sock[1], SHUT_WR), 0);
	int rc = server_wait(s);
	assert_true(rc < 0);
	server_free(s);
	assert_int_equal(count_fds(), before);
}

/* ---- device state (live migration) ---- */

static uint64_t set_state_fd(int sock, uint32_t direction, uint32_t phase, int fd)
{
	struct vhu_device_state ds = { direction, phase };
	struct vhu_msg m;
	send_msg(sock, VHU_SET_DEVICE_STATE_FD, VHU_VERSION, &ds, sizeof(ds), &fd, 1);
	close(fd); /* the backend has its own copy */
	recv_reply(sock, VHU_SET_DEVICE_STATE_FD, &m);
	assert_int_equal(m.hdr.size, sizeof(uint64_t));
	return m.p.u64;
}

static struct server *state_server(void)
{
	struct server *s = server_start_cfg(2, true);
	uint64_t pf = get_u64(s->sock[1], VHU_GET_PROTOCOL_FEATURES);
	assert_true(pf & (1ull << VHU_PROTOCOL_F_DEVICE_STATE));
	send_msg(s->sock[1], VHU_SET_PROTOCOL_FEATURES, VHU_VERSION,
	         &(uint64_t){ 1ull << VHU_PROTOCOL_F_REPLY_ACK | 1ull << VHU_PROTOCOL_F_DEVICE_STATE }, 8, NULL, 0);
	return s;
}

static void test_device_state_saves_and_loads_through_a_pipe(void **state)
{
	/* Without the hooks the feature is not offered. */
	struct server *plain = server_start(2);
	assert_false(get_u64(plain->sock[1], VHU_GET_PROTOCOL_FEATURES) & (1ull << VHU_PROTOCOL_F_DEVICE_STATE));
	server_finish(plain);
	server_free(plain);

	struct server *src = state_server();
	int p[2];
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	/* We read only after the reply, as QEMU does: more than a pipe holds must not deadlock the backend. */
	assert_int_equal(set_state_fd(src->sock[1], 0, 0, p[1]), 0x100);
	uint8_t *got = malloc(STATE_TEST_LEN + 1);
	size_t n = 0;
	for (ssize_t k; (k = read(p[0], got + n, STATE_TEST_LEN + 1 - n)) > 0;)
		n += (size_t)k;
	close(p[0]);
	assert_int_equal(n, STATE_TEST_LEN);
	assert_int_equal(get_u64(src->sock[1], VHU_CHECK_DEVICE_STATE), 0);

	/* The destination loads what the source saved; a corrupted copy is refused at CHECK. */
	struct server *dst = state_server();
	for (int corrupt = 0; corrupt < 2; corrupt++) {
		assert_int_equal(pipe2(p, O_CLOEXEC), 0);
		assert_int_equal(set_state_fd(dst->sock[1], 1, 0, p[0]), 0x100);
		got[1000] ^= (uint8_t)corrupt;
		assert_int_equal(write(p[1], got, n), (ssize_t)n);
		close(p[1]);
		assert_int_equal(get_u64(dst->sock[1], VHU_CHECK_DEVICE_STATE), (uint64_t)corrupt);
	}
	free(got);
	server_finish(src);
	server_free(src);
	server_finish(dst);
	server_free(dst);
}

static void test_device_state_bad_requests_and_reset_mid_transfer(void **state)
{
	struct server *s = state_server();
	int p[2];
	/* Unknown direction or phase: an error in the reply's low byte, the fd closed (EOF for the frontend). */
	for (int i = 0; i < 2; i++) {
		assert_int_equal(pipe2(p, O_CLOEXEC), 0);
		uint64_t r = set_state_fd(s->sock[1], i ? 0 : 2, i ? 1 : 0, p[1]);
		assert_true(r & 0xff);
		char c;
		assert_int_equal(read(p[0], &c, 1), 0);
		close(p[0]);
		assert_int_equal(get_u64(s->sock[1], VHU_CHECK_DEVICE_STATE), 1); /* nothing to check */
	}
	/* A frontend that never reads: RESET_DEVICE ends the transfer at once (no 30 s stall). */
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	assert_int_equal(set_state_fd(s->sock[1], 0, 0, p[1]), 0x100);
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(call_ack(s->sock[1], VHU_RESET_DEVICE, NULL, 0, NULL, 0), 0);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	assert_true(t1.tv_sec - t0.tv_sec < 5);
	size_t n = 0;
	char buf[65536];
	for (ssize_t k; (k = read(p[0], buf, sizeof(buf))) > 0;)
		n += (size_t)k;
	close(p[0]);
	assert_true(n < STATE_TEST_LEN); /* cut short, and the fd closed */
	/* Without the feature negotiated: refused, and the connection goes on. */
	send_msg(s->sock[1], VHU_SET_PROTOCOL_FEATURES, VHU_VERSION, &(uint64_t){ 1ull << VHU_PROTOCOL_F_REPLY_ACK },
	         8, NULL, 0);
	assert_true(call_ack(s->sock[1], VHU_CHECK_DEVICE_STATE, NULL, 0, NULL, 0) != 0);
	server_finish(s);
	server_free(s);
}

static void test_malformed_wrong_payload_size_for_known_request(void **state)
{
	(void)state;
	uint8_t zero[64] = { 0 };
	expect_disconnect(VHU_GET_FEATURES, VHU_VERSION, 8, zero, 8, 0);
	expect_disconnect(VHU_SET_FEATURES, VHU_VERSION, 4, zero, 4, 0);
	expect_disconnect(VHU_SET_FEATURES, VHU_VERSION, 16, zero, 16, 0);
	expect_disconnect(VHU_SET_VRING_NUM, VHU_VERSION, 4, zero, 4, 0);
	expect_disconnect(VHU_SET_VRING_ADDR, VHU_VERSION, 8, zero, 8, 0);
	expect_disconnect(VHU_GET_VRING_BASE, VHU_VERSION, 0, NULL, 0, 0);
	expect_disconnect(VHU_ADD_MEM_REG, VHU_VERSION, 32, zero, 32, 1);
	expect_disconnect(VHU_SET_VRING_KICK, VHU_VERSION, 4, zero, 4, 1);
}

static void test_malformed_fds_on_request_that_takes_none(void **state)
{
	(void)state;
	struct vhu_vring_state st = { 0, 8 };
	expect_disconnect(VHU_GET_FEATURES, VHU_VERSION, 0, NULL, 0, 1);
	expect_disconnect(VHU_SET_VRING_NUM, VHU_VERSION, sizeof(st), &st, sizeof(st), 2);
	expect_disconnect(VHU_SET_OWNER, VHU_VERSION, 0, NULL, 0, 8);
	expect_disconnect(VHU_GET_CONFIG, VHU_VERSION, 0, NULL, 0, 1); /* unknown to us, still no fds */
	/* Vring fd requests: fd present with the "no fd" flag, or missing without it, or two. */
	uint64_t nofd = 0 | VHU_VRING_NOFD_MASK, idx = 0;
	expect_disconnect(VHU_SET_VRING_KICK, VHU_VERSION, 8, &nofd, 8, 1);
	expect_disconnect(VHU_SET_VRING_CALL, VHU_VERSION, 8, &idx, 8, 0);
	expect_disconnect(VHU_SET_VRING_ERR, VHU_VERSION, 8, &idx, 8, 2);
	uint64_t junk = 1ull << 20; /* bits beyond index and flag */
	expect_disconnect(VHU_SET_VRING_CALL, VHU_VERSION, 8, &junk, 8, 1);
	expect_disconnect(VHU_SET_BACKEND_REQ_FD, VHU_VERSION, 0, NULL, 0, 0);
	expect_disconnect(VHU_ADD_MEM_REG, VHU_VERSION, sizeof(struct vhu_mem_reg), &(struct vhu_mem_reg){ 0 },
	                  sizeof(struct vhu_mem_reg), 2);
}

static void test_malformed_set_mem_table(void **state)
{
	(void)state;
	struct vhu_mem_table mt;
	memset(&mt, 0, sizeof(mt));
	mt.nregions = 0;
	expect_disconnect(VHU_SET_MEM_TABLE, VHU_VERSION, 8, &mt, 8, 0);
	expect_disconnect(VHU_SET_MEM_TABLE, VHU_VERSION, 8, &mt, 8, 1);
	uint8_t nine[8 + 9 * 32] = { 9 }; /* nregions 9, nine regions' worth of bytes */
	expect_disconnect(VHU_SET_MEM_TABLE, VHU_VERSION, sizeof(nine), nine, sizeof(nine), 8);
	mt.nregions = 0xffffffffu; /* n * 32 must not wrap into a plausible size */
	expect_disconnect(VHU_SET_MEM_TABLE, VHU_VERSION, 8 + 32, &mt, 8 + 32, 1);
	mt.nregions = 2;
	for (int i = 0; i < 2; i++)
		mt.regions[i] = (struct vhu_mem_region){ .gpa = i * 0x1000ull, .size = 0x1000, .uaddr = i * 0x1000ull };
	expect_disconnect(VHU_SET_MEM_TABLE, VHU_VERSION, 8 + 2 * 32, &mt, 8 + 2 * 32, 1); /* fd count */
	expect_disconnect(VHU_SET_MEM_TABLE, VHU_VERSION, 8 + 2 * 32, &mt, 8 + 2 * 32, 3);
	expect_disconnect(VHU_SET_MEM_TABLE, VHU_VERSION, 8 + 1 * 32, &mt, 8 + 1 * 32, 2); /* size vs count */
	expect_disconnect(VHU_SET_MEM_TABLE, VHU_VERSION, sizeof(mt), &mt, sizeof(mt), 2);
}

static void test_malformed_header_flags(void **state)
{
	(void)state;
	expect_disconnect(VHU_GET_FEATURES, 0, 0, NULL, 0, 0);
	expect_disconnect(VHU_GET_FEATURES, 0x2, 0, NULL, 0, 0);
	expect_disconnect(VHU_GET_FEATURES, 0x3, 0, NULL, 0, 0);
	expect_disconnect(VHU_GET_FEATURES, VHU_VERSION | VHU_FLAG_REPLY, 0, NULL, 0, 0);
	expect_disconnect(VHU_SET_VRING_CALL, VHU_VERSION | VHU_FLAG_REPLY, 8, &(uint64_t){ 0 }, 8, 1);
}

static void test_malformed_size_beyond_payload_buffer(void **state)
{
	(void)state;
	uint8_t big[600] = { 0 };
	expect_disconnect(VHU_SET_MEM_TABLE, VHU_VERSION, sizeof(big), big, sizeof(big), 2);
	expect_disconnect(VHU_GET_FEATURES, VHU_VERSION, 0xffffffffu, NULL, 0, 1);
	expect_disconnect(VHU_SET_FEATURES, VHU_VERSION, 513, big, 513, 0);
}

static void test_malformed_too_many_fds(void **state)
{
	(void)state;
	struct vhu_mem_table mt = { .nregions = 8 };
	expect_disconnect(VHU_SET_MEM_TABLE, VHU_VERSION, 8 + 8 * 32, &mt, 8 + 8 * 32, 9);
	expect_disconnect(VHU_SET_MEM_TABLE, VHU_VERSION, 8 + 8 * 32, &mt, 8 + 8 * 32, 12);
}

static void test_malformed_truncated_message(void **state)
{
	(void)state;
	uint8_t zero[8] = { 0 };
	/* The header promises 8 bytes; 4 arrive, then EOF. */
	expect_disconnect(VHU_SET_FEATURES, VHU_VERSION, 8, zero, 4, 0);
	/* Half a header, then EOF */
	int before = count_fds();
	struct server *s = server_start(2);
	send_raw(s->sock[1], zero, 6, NULL, 0);
	assert_int_equal(shutdown(s->sock[1], SHUT_WR), 0);
	assert_true(server_wait(s) < 0);
	server_free(s);
	assert_int_equal(count_fds(), before);
}

static void test_get_vring_base_of_unknown_queue_disconnects(void **state)
{
	(void)state;
	struct vhu_vring_state st = { 2, 0 };
	expect_disconnect(VHU_GET_VRING_BASE, VHU_VERSION, sizeof(st), &st, sizeof(st), 0);
}

/* ---- memory and a live queue ---- */

struct guest {
	int memfd;
	uint8_t *mem;
	int kick, call, err;
	struct vq_driver drv;
	struct vring_split r;     /* the three areas (a packed guest uses the same places) */
	bool packed;
};

static void guest_init(struct guest *g, bool event_idx)
{
	g->memfd = memfd_create("test-vhost-user", MFD_CLOEXEC);
	assert_true(g->memfd >= 0);
	assert_int_equal(ftruncate(g->memfd, MEM_SIZE), 0);
	g->mem = mmap(NULL, MEM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, g->memfd, 0);
	assert_true(g->mem != MAP_FAILED);
	g->kick = eventfd(0, EFD_CLOEXEC);
	g->call = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	g->err = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	assert_true(g->kick >= 0 && g->call >= 0 && g->err >= 0);
	g->r = (struct vring_split){ .num = QSIZE, .desc = (void *)(g->mem + DESC_GPA),
	                             .avail = (void *)(g->mem + AVAIL_GPA), .used = (void *)(g->mem + USED_GPA) };
	assert_int_equal(vq_driver_init(&g->drv, &g->r, event_idx), 0);
	g->packed = false;
}

/* The same guest driving a packed ring: descriptor ring, driver and device event areas where split has its parts. */
static void guest_init_packed(struct guest *g, bool event_idx)
{
	guest_init(g, event_idx);
	vq_driver_free(&g->drv);
	assert_int_equal(vq_driver_init_any(&g->drv, true, QSIZE, g->r.desc, g->r.avail, g->r.used, event_idx), 0);
	g->packed = true;
}

static void guest_free(struct guest *g)
{
	vq_driver_free(&g->drv);
	munmap(g->mem, MEM_SIZE);
	close(g->memfd);
	close(g->kick);
	close(g->call);
	close(g->err);
}

static struct vhu_mem_region guest_region(const struct guest *g)
{
	return (struct vhu_mem_region){ .gpa = 0, .size = MEM_SIZE, .uaddr = (uintptr_t)g->mem, .mmap_offset = 0 };
}

static uint64_t send_mem_table(int c, const struct guest *g)
{
	struct vhu_mem_table mt = { .nregions = 1 };
	mt.regions[0] = guest_region(g);
	return call_ack(c, VHU_SET_MEM_TABLE, &mt, 8 + 32, &g->memfd, 1);
}

static uint64_t send_add_mem_reg(int c, const struct guest *g)
{
	struct vhu_mem_reg mr = { .region = guest_region(g) };
	return call_ack(c, VHU_ADD_MEM_REG, &mr, sizeof(mr), &g->memfd, 1);
}

static void send_vring_fd(int c, uint32_t request, unsigned qi, int fd)
{
	uint64_t v = qi;
	assert_int_equal(call_ack(c, request, &v, sizeof(v), &fd, 1), 0);
}

/* What start_queue_with adds to the usual start: protocol and virtio features, and SET_VRING_ADDR's log. */
struct start_opts {
	uint64_t pf, features;
	uint32_t addr_flags;
	uint64_t log_gaddr;
};

static uint64_t base_features(const struct guest *g, bool event_idx)
{
	return 1ull << VIRTIO_F_VERSION_1_BIT | 1ull << VHU_F_PROTOCOL_FEATURES |
	       (event_idx ? 1ull << VIRTIO_RING_F_EVENT_IDX_BIT : 0) | (g->packed ? 1ull << VIRTIO_F_RING_PACKED_BIT : 0);
}

static void start_queue_with(int c, struct guest *g, unsigned qi, bool event_idx, bool add_mem_reg, uint32_t base,
                             const struct start_opts *o);

/* Everything QEMU sends to start queue qi, each acknowledged. */
static void start_queue(int c, struct guest *g, unsigned qi, bool event_idx, bool add_mem_reg, uint32_t base)
{
	start_queue_with(c, g, qi, event_idx, add_mem_reg, base, &(struct start_opts){ 0 });
}

static void start_queue_with(int c, struct guest *g, unsigned qi, bool event_idx, bool add_mem_reg, uint32_t base,
                             const struct start_opts *o)
{
	negotiate_pf(c, 1ull << VHU_PROTOCOL_F_REPLY_ACK | o->pf);
	assert_int_equal(call_ack(c, VHU_SET_OWNER, NULL, 0, NULL, 0), 0);
	assert_int_equal(ack_u64(c, VHU_SET_FEATURES, base_features(g, event_idx) | o->features), 0);
	assert_int_equal(add_mem_reg ? send_add_mem_reg(c, g) : send_mem_table(c, g), 0);
	assert_int_equal(ack_state(c, VHU_SET_VRING_NUM, qi, QSIZE), 0);
	assert_int_equal(ack_state(c, VHU_SET_VRING_BASE, qi, base), 0);
	struct vhu_vring_addr a = { .index = qi, .flags = o->addr_flags, .desc_uaddr = (uintptr_t)g->r.desc,
	                            .used_uaddr = (uintptr_t)g->r.used, .avail_uaddr = (uintptr_t)g->r.avail,
	                            .log_gaddr = o->log_gaddr };
	assert_int_equal(call_ack(c, VHU_SET_VRING_ADDR, &a, sizeof(a), NULL, 0), 0);
	send_vring_fd(c, VHU_SET_VRING_CALL, qi, g->call);
	send_vring_fd(c, VHU_SET_VRING_ERR, qi, g->err);
	send_vring_fd(c, VHU_SET_VRING_KICK, qi, g->kick);
	assert_int_equal(ack_state(c, VHU_SET_VRING_ENABLE, qi, 1), 0);
}

static void guest_kick_if_needed(struct guest *g)
{
	if (vq_driver_kick_needed(&g->drv))
		assert_int_equal(eventfd_write(g->kick, 1), 0);
}

/* A driver's wait: take a used entry, else arm and sleep on the call fd (which must fire). */
static void *guest_wait_used(struct guest *g, uint32_t *len)
{
	void *tok = NULL;
	for (;;) {
		int rc = vq_driver_get_used(&g->drv, &tok, len);
		assert_true(rc >= 0);
		if (rc == 1)
			return tok;
		if (vq_driver_arm(&g->drv))
			continue;
		assert_true(readable_within(g->call, WAIT_MS));
		eventfd_t v;
		assert_int_equal(eventfd_read(g->call, &v), 0);
		assert_true(v >= 1);
	}
}

/* One request through the ring: "hello <n>" in, "HELLO <n>" back. */
static void round_trip(struct guest *g, unsigned n)
{
	char in[32], expect[32];
	int len_in = snprintf(in, sizeof(in), "hello %u", n);
	snprintf(expect, sizeof(expect), "HELLO %u", n);
	memcpy(g->mem + DATA_GPA, in, (size_t)len_in);
	memset(g->mem + DATA_GPA + 0x1000, 0, 64);
	struct vq_seg segs[3] = { { DATA_GPA, 3 }, { DATA_GPA + 3, (uint32_t)len_in - 3 }, { DATA_GPA + 0x1000, 64 } };
	static int token;
	assert_int_equal(vq_driver_add(&g->drv, segs, 2, 1, &token), 0);
	guest_kick_if_needed(g);
	uint32_t len = 0;
	assert_ptr_equal(guest_wait_used(g, &len), &token);
	assert_int_equal(len, len_in);
	assert_memory_equal(g->mem + DATA_GPA + 0x1000, expect, (size_t)len_in);
}

static uint32_t get_vring_base(int c, unsigned qi)
{
	struct vhu_vring_state st = { qi, 0 };
	struct vhu_msg m;
	send_msg(c, VHU_GET_VRING_BASE, VHU_VERSION, &st, sizeof(st), NULL, 0);
	recv_reply(c, VHU_GET_VRING_BASE, &m);
	assert_int_equal(m.hdr.size, sizeof(struct vhu_vring_state));
	assert_int_equal(m.p.state.index, qi);
	return m.p.state.num;
}

static void test_queue_serves_request_and_signals_call(void **state)
{
	(void)state;
	int before = count_fds();
	struct server *s = server_start(2);
	struct guest g;
	guest_init(&g, true);
	start_queue(s->sock[1], &g, 1, true, false, 0);

	round_trip(&g, 1);
	assert_int_equal(__atomic_load_n(&s->calls, __ATOMIC_SEQ_CST), 1);
	assert_int_equal(__atomic_load_n(&s->last_queue, __ATOMIC_SEQ_CST), 1);
	/* Each wait either finds the entry or sleeps on the call fd, which must fire: a lost notification fails. */
	for (unsigned i = 2; i <= 100; i++)
		round_trip(&g, i);
	assert_int_equal(__atomic_load_n(&s->calls, __ATOMIC_SEQ_CST), 100);
	/* A new memory table while the queue runs: the queue stops, the map changes, the queue goes on. */
	assert_int_equal(send_mem_table(s->sock[1], &g), 0);
	for (unsigned i = 101; i <= 110; i++)
		round_trip(&g, i);
	assert_int_equal(__atomic_load_n(&s->calls, __ATOMIC_SEQ_CST), 110);
	assert_int_equal(get_vring_base(s->sock[1], 1), 110);
	server_finish(s);
	server_free(s);
	guest_free(&g);
	assert_int_equal(count_fds(), before);
}

/* "ok" in, kicked if the queue wants it (the queue thread may already have taken it and re-armed past it). */
static void send_ok(struct guest *g, int *token)
{
	struct vq_seg segs[2] = { { DATA_GPA, 2 }, { DATA_GPA + 0x1000, 8 } };
	memcpy(g->mem + DATA_GPA, "ok", 2);
	assert_int_equal(vq_driver_add(&g->drv, segs, 1, 1, token), 0);
	guest_kick_if_needed(g);
}

/* The call fd has fired; "OK" must be the next used entry. */
static void expect_ok_after_call(struct guest *g, const int *token)
{
	eventfd_t v;
	void *tok;
	uint32_t len;
	assert_int_equal(eventfd_read(g->call, &v), 0);
	assert_int_equal(vq_driver_get_used(&g->drv, &tok, &len), 1);
	assert_ptr_equal(tok, token);
	assert_int_equal(len, 2);
	assert_memory_equal(g->mem + DATA_GPA + 0x1000, "OK", 2);
}

static void test_call_eventfd_fires_for_a_reply(void **state)
{
	(void)state;
	struct server *s = server_start(2);
	struct guest g;
	guest_init(&g, true);
	start_queue(s->sock[1], &g, 1, true, false, 0);
	int token;
	send_ok(&g, &token);
	assert_true(readable_within(g.call, WAIT_MS)); /* the first completion always notifies */
	expect_ok_after_call(&g, &token);
	server_finish(s);
	server_free(s);
	guest_free(&g);
}

/*
 * QEMU's MSI-X mask and unmask, racing a completion: the reply is signalled on the "masked" fd, which QEMU may
 * already have looked at (it does not wait for SET_VRING_CALL to be handled). The guest's own fd, given back at
 * unmask, must then fire, or a driver asleep on it never sees the reply.
 */
static void test_new_call_fd_fires_for_a_reply_signalled_on_the_old_one(void **state)
{
	(void)state;
	int before = count_fds();
	struct server *s = server_start(2);
	struct guest g;
	guest_init(&g, true);
	start_queue(s->sock[1], &g, 1, true, false, 0);
	int masked = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	assert_true(masked >= 0);
	send_vring_fd(s->sock[1], VHU_SET_VRING_CALL, 1, masked);
	int token;
	send_ok(&g, &token);
	for (int ms = 0; __atomic_load_n(&g.r.used->idx, __ATOMIC_ACQUIRE) != 1; ms++) {
		assert_true(ms < WAIT_MS);
		usleep(1000);
	}
	assert_false(readable_within(g.call, 0)); /* the completion went to the masked fd */

	send_vring_fd(s->sock[1], VHU_SET_VRING_CALL, 1, g.call);
	assert_true(readable_within(g.call, WAIT_MS));
	expect_ok_after_call(&g, &token);
	round_trip(&g, 2); /* and the queue goes on with the guest's fd */
	server_finish(s);
	server_free(s);
	guest_free(&g);
	close(masked);
	assert_int_equal(count_fds(), before);
}

/* A wake-up that finds nothing to serve must not interrupt the guest. */
static void no_call_without_reply(bool event_idx)
{
	struct server *s = server_start(2);
	struct guest g;
	guest_init(&g, event_idx);
	start_queue(s->sock[1], &g, 1, event_idx, false, 0);
	usleep(100 * 1000); /* the queue thread has started and drained an empty ring */
	assert_false(readable_within(g.call, 0));
	assert_int_equal(eventfd_write(g.kick, 1), 0); /* a kick with nothing new */
	usleep(100 * 1000);
	assert_false(readable_within(g.call, 0));
	round_trip(&g, 1);
	assert_int_equal(__atomic_load_n(&s->calls, __ATOMIC_SEQ_CST), 1);
	server_finish(s);
	server_free(s);
	guest_free(&g);
}

static void test_no_call_when_nothing_was_used_with_event_idx(void **state)
{
	(void)state;
	no_call_without_reply(true);
}

static void test_no_call_when_nothing_was_used_without_event_idx(void **state)
{
	(void)state;
	no_call_without_reply(false);
}

static void test_queue_without_event_idx_via_add_mem_reg(void **state)
{
	(void)state;
	int before = count_fds();
	struct server *s = server_start(2);
	struct guest g;
	guest_init(&g, false);
	start_queue(s->sock[1], &g, 0, false, true, 0);
	for (unsigned i = 0; i < 20; i++)
		round_trip(&g, i);
	assert_int_equal(__atomic_load_n(&s->last_queue, __ATOMIC_SEQ_CST), 0);
	/* The region can be removed again (by gpa and size), which stops nothing but changes the map. */
	struct vhu_mem_reg mr = { .region = guest_region(&g) };
	assert_int_equal(get_vring_base(s->sock[1], 0), 20);
	assert_int_equal(call_ack(s->sock[1], VHU_REM_MEM_REG, &mr, sizeof(mr), &g.memfd, 1), 0);
	assert_int_not_equal(call_ack(s->sock[1], VHU_REM_MEM_REG, &mr, sizeof(mr), &g.memfd, 1), 0);
	server_finish(s);
	/* Retired, not unmapped (a queue thread may still hold a pointer into it): no lookup finds it any more. */
	assert_null(gm_gpa_ptr(&s->dev.mem, mr.region.gpa, 1));
	assert_int_equal(gm_compact(&s->dev.mem), 1);
	assert_int_equal(s->dev.mem.n, 0);
	server_free(s);
	guest_free(&g);
	assert_int_equal(count_fds(), before);
}

static void test_get_vring_base_returns_next_avail_and_queue_restarts(void **state)
{
	(void)state;
	struct server *s = server_start(2);
	int c = s->sock[1];
	struct guest g;
	guest_init(&g, true);
	/* Start near the wrap: both sides agree the ring has gone round 65533 times already. */
	g.r.avail->idx = g.r.used->idx = 65533;
	g.drv.split.avail_idx = g.drv.split.kicked_avail = g.drv.split.last_used = 65533;
	start_queue(c, &g, 1, true, false, 65533);
	for (unsigned i = 0; i < 5; i++)
		round_trip(&g, i);
	assert_int_equal(get_vring_base(c, 1), 2);
	/* Stopped: a request now is not served... */
	struct vq_seg seg = { DATA_GPA, 1 };
	int token;
	assert_int_equal(vq_driver_add(&g.drv, &seg, 1, 0, &token), 0);
	assert_int_equal(eventfd_write(g.kick, 1), 0);
	usleep(50 * 1000);
	assert_int_equal(__atomic_load_n(&s->calls, __ATOMIC_SEQ_CST), 5);
	/* ...until the frontend gives the base back and a new kick fd. */
	assert_int_equal(ack_state(c, VHU_SET_VRING_BASE, 1, 2), 0);
	send_vring_fd(c, VHU_SET_VRING_KICK, 1, g.kick);
	uint32_t len;
	assert_ptr_equal(guest_wait_used(&g, &len), &token);
	assert_int_equal(len, 0);
	round_trip(&g, 99);
	assert_int_equal(__atomic_load_n(&s->calls, __ATOMIC_SEQ_CST), 7);
	assert_int_equal(get_vring_base(c, 1), 4);
	server_finish(s);
	server_free(s);
	guest_free(&g);
}

/* A chain whose buffer lies outside guest memory: given back with length 0 (the handler never sees it). */
static void bad_chain_comes_back_empty(struct guest *g)
{
	struct vq_seg bad[2] = { { MEM_SIZE + 0x1000, 16 }, { DATA_GPA + 0x1000, 64 } };
	static int token;
	assert_int_equal(vq_driver_add(&g->drv, bad, 1, 1, &token), 0);
	guest_kick_if_needed(g);
	uint32_t len = 1;
	assert_ptr_equal(guest_wait_used(g, &len), &token);
	assert_int_equal(len, 0);
}

static void test_malformed_chain_returned_empty_without_handler(void **state)
{
	(void)state;
	struct server *s = server_start(2);
	struct guest g;
	guest_init(&g, true);
	start_queue(s->sock[1], &g, 1, true, false, 0);
	round_trip(&g, 1);
	bad_chain_comes_back_empty(&g);
	assert_int_equal(__atomic_load_n(&s->calls, __ATOMIC_SEQ_CST), 1);
	/* and the queue goes on */
	round_trip(&g, 2);
	assert_int_equal(__atomic_load_n(&s->calls, __ATOMIC_SEQ_CST), 2);
	server_finish(s);
	server_free(s);
	guest_free(&g);
}

static void test_corrupt_ring_breaks_queue_and_signals_err(void **state)
{
	(void)state;
	struct server *s = server_start(2);
	int c = s->sock[1];
	struct guest g;
	guest_init(&g, true);
	start_queue(c, &g, 1, true, false, 0);
	round_trip(&g, 1);
	store_release16(&g.r.avail->idx, (uint16_t)(g.r.avail->idx + QSIZE + 1));
	assert_int_equal(eventfd_write(g.kick, 1), 0);
	assert_true(readable_within(g.err, WAIT_MS));
	assert_int_equal(__atomic_load_n(&s->calls, __ATOMIC_SEQ_CST), 1);
	/* GET_VRING_BASE still answers, with the last good index. */
	assert_int_equal(get_vring_base(c, 1), 1);
	server_finish(s);
	server_free(s);
	guest_free(&g);
}

/* The packed ring's vring base as the driver's state says it must be: avail slot and wrap, used slot and wrap. */
static uint32_t packed_base_of(const struct guest *g)
{
	const struct vq_packed_driver *p = &g->drv.packed;
	return (uint32_t)(p->next_avail | (p->avail_wrap ? VRING_PACKED_WRAP : 0)) |
	       (uint32_t)(p->last_used | (p->used_wrap ? VRING_PACKED_WRAP : 0)) << 16;
}

/* A live packed queue: round trips over many wraps, a memory-table change (the queue pauses and resumes from its
 * own base), a malformed chain given back empty, GET/SET_VRING_BASE with the wrap counters, and a buffer id out of
 * range breaking the queue (err fd) with GET_VRING_BASE still answering the last good base. */
static void test_packed_queue_live(void **state)
{
	(void)state;
	struct server *s = server_start(2);
	int c = s->sock[1];
	struct guest g;
	guest_init_packed(&g, true);
	start_queue(c, &g, 1, true, false, VRING_PACKED_BASE_INIT);
	for (unsigned i = 1; i <= 40; i++)
		round_trip(&g, i); /* 3 slots each on a ring of 8: 15 laps */
	assert_int_equal(send_mem_table(c, &g), 0);
	for (unsigned i = 41; i <= 60; i++)
		round_trip(&g, i);
	bad_chain_comes_back_empty(&g);
	assert_int_equal(__atomic_load_n(&s->calls, __ATOMIC_SEQ_CST), 60);
	round_trip(&g, 61);
	uint32_t base = get_vring_base(c, 1);
	assert_int_equal(base, packed_base_of(&g));
	assert_int_equal(ack_state(c, VHU_SET_VRING_BASE, 1, base), 0);
	send_vring_fd(c, VHU_SET_VRING_KICK, 1, g.kick);
	round_trip(&g, 62);
	assert_int_equal(__atomic_load_n(&s->calls, __ATOMIC_SEQ_CST), 62);
	/* a buffer id the ring cannot have, made available by hand at the driver's next slot */
	base = packed_base_of(&g);
	struct vring_packed_desc *d = &g.drv.packed.r.desc[g.drv.packed.next_avail];
	*d = (struct vring_packed_desc){ .addr = DATA_GPA, .len = 4, .id = QSIZE + 3 };
	store_release16(&d->flags, vring_packed_avail_flags(g.drv.packed.avail_wrap));
	assert_int_equal(eventfd_write(g.kick, 1), 0);
	assert_true(readable_within(g.err, WAIT_MS));
	assert_int_equal(__atomic_load_n(&s->calls, __ATOMIC_SEQ_CST), 62);
	assert_int_equal(get_vring_base(c, 1), base);
	server_finish(s);
	server_free(s);
	guest_free(&g);
}

static void test_overlapping_memory_regions_are_refused(void **state)
{
	(void)state;
	int before = count_fds();
	struct server *s = server_start(2);
	int c = s->sock[1];
	struct guest g;
	guest_init(&g, true);
	negotiate_reply_ack(c);
	struct vhu_mem_table mt = { .nregions = 2 };
	mt.regions[0] = (struct vhu_mem_region){ .gpa = 0, .size = 0x10000, .uaddr = 0x100000 };
	mt.regions[1] = (struct vhu_mem_region){ .gpa = 0x8000, .size = 0x10000, .uaddr = 0x200000 };
	int fds[2] = { g.memfd, g.memfd };
	assert_int_not_equal(call_ack(c, VHU_SET_MEM_TABLE, &mt, 8 + 2 * 32, fds, 2), 0);
	/* uaddr overlap, gpa apart */
	mt.regions[1] = (struct vhu_mem_region){ .gpa = 0x10000, .size = 0x10000, .uaddr = 0x10f000 };
	assert_int_not_equal(call_ack(c, VHU_SET_MEM_TABLE, &mt, 8 + 2 * 32, fds, 2), 0);
	/* Adjacent is fine */
	mt.regions[1] = (struct vhu_mem_region){ .gpa = 0x10000, .size = 0x10000, .uaddr = 0x110000 };
	assert_int_equal(call_ack(c, VHU_SET_MEM_TABLE, &mt, 8 + 2 * 32, fds, 2), 0);
	/* ADD_MEM_REG over an existing region */
	struct vhu_mem_reg mr = { .region = { .gpa = 0xf000, .size = 0x2000, .uaddr = 0x900000 } };
	assert_int_not_equal(call_ack(c, VHU_ADD_MEM_REG, &mr, sizeof(mr), &g.memfd, 1), 0);
	/* and a region of size 0 */
	mr.region = (struct vhu_mem_region){ .gpa = 0x40000, .size = 0, .uaddr = 0x900000 };
	assert_int_not_equal(call_ack(c, VHU_ADD_MEM_REG, &mr, sizeof(mr), &g.memfd, 1), 0);
	server_finish(s);
	assert_int_equal(s->dev.mem.n, 2);
	server_free(s);
	guest_free(&g);
	assert_int_equal(count_fds(), before);
}

static void test_ring_outside_memory_is_refused_at_start(void **state)
{
	(void)state;
	struct server *s = server_start(2);
	int c = s->sock[1];
	struct guest g;
	guest_init(&g, true);
	negotiate_reply_ack(c);
	assert_int_equal(ack_u64(c, VHU_SET_FEATURES, 1ull << VIRTIO_F_VERSION_1_BIT | 1ull << VHU_F_PROTOCOL_FEATURES),
	                 0);
	assert_int_equal(send_mem_table(c, &g), 0);
	assert_int_equal(ack_state(c, VHU_SET_VRING_NUM, 1, QSIZE), 0);
	struct vhu_vring_addr a = { .index = 1, .desc_uaddr = (uintptr_t)g.mem + MEM_SIZE - 64,
	                            .used_uaddr = (uintptr_t)g.r.used, .avail_uaddr = (uintptr_t)g.r.avail };
	assert_int_equal(call_ack(c, VHU_SET_VRING_ADDR, &a, sizeof(a), NULL, 0), 0);
	send_vring_fd(c, VHU_SET_VRING_CALL, 1, g.call);
	send_vring_fd(c, VHU_SET_VRING_KICK, 1, g.kick);
	assert_int_not_equal(ack_state(c, VHU_SET_VRING_ENABLE, 1, 1), 0);
	/* Misaligned used ring */
	a.desc_uaddr = (uintptr_t)g.r.desc;
	a.used_uaddr = (uintptr_t)g.r.used + 2;
	assert_int_equal(call_ack(c, VHU_SET_VRING_ADDR, &a, sizeof(a), NULL, 0), 0);
	assert_int_not_equal(ack_state(c, VHU_SET_VRING_ENABLE, 1, 1), 0);
	/* Right addresses: starts. */
	a.used_uaddr = (uintptr_t)g.r.used;
	assert_int_equal(call_ack(c, VHU_SET_VRING_ADDR, &a, sizeof(a), NULL, 0), 0);
	assert_int_equal(ack_state(c, VHU_SET_VRING_ENABLE, 1, 1), 0);
	round_trip(&g, 7);
	server_finish(s);
	server_free(s);
	guest_free(&g);
}

/* ---- dirty-page logging (live migration) ---- */

#define LOG_BYTES 4096u   /* covers 128 MiB of guest-physical space */
#define LOG_ALL (1ull << VHOST_F_LOG_ALL_BIT)
#define PAGE_BIT(gpa) (1ull << ((gpa) / 4096))
/* What one round trip writes: the reply (DATA_GPA + 0x1000) and the used ring. */
#define REPLY_AND_USED (PAGE_BIT(USED_GPA) | PAGE_BIT(DATA_GPA + 0x1000))

struct test_log {
	int fd;
	uint8_t *bits;
};

static void test_log_init(struct test_log *l)
{
	l->fd = memfd_create("test-dirty-log", MFD_CLOEXEC);
	assert_true(l->fd >= 0);
	assert_int_equal(ftruncate(l->fd, LOG_BYTES), 0);
	l->bits = mmap(NULL, LOG_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, l->fd, 0);
	assert_true(l->bits != MAP_FAILED);
}

static void test_log_free(struct test_log *l)
{
	munmap(l->bits, LOG_BYTES);
	close(l->fd);
}

/* The pages marked, as a bitmask of the first 64 (the guest has 256 pages; nothing may be marked beyond 64). */
static uint64_t marked_pages(const struct test_log *l)
{
	uint64_t m;
	memcpy(&m, l->bits, sizeof(m));
	for (unsigned i = sizeof(m); i < LOG_BYTES; i++)
		assert_int_equal(l->bits[i], 0);
	return m;
}

/* SET_LOG_BASE as QEMU sends it (no NEED_REPLY) and the reply it waits for anyway: the payload echoed. */
static void set_log_base(int c, const struct test_log *l)
{
	struct vhu_log lg = { .mmap_size = LOG_BYTES, .mmap_offset = 0 };
	struct vhu_msg m;
	send_msg(c, VHU_SET_LOG_BASE, VHU_VERSION, &lg, sizeof(lg), &l->fd, 1);
	recv_reply(c, VHU_SET_LOG_BASE, &m);
	assert_int_equal(m.hdr.size, sizeof(lg));
	assert_int_equal(m.p.log.mmap_size, LOG_BYTES);
}

/* SET_VRING_ADDR as QEMU sends it to a running queue, with or without the log flag. */
static void set_vring_addr_logged(int c, const struct guest *g, unsigned qi, bool log)
{
	struct vhu_vring_addr a = { .index = qi, .flags = log ? 1u << VHU_VRING_F_LOG : 0,
	                            .desc_uaddr = (uintptr_t)g->r.desc, .used_uaddr = (uintptr_t)g->r.used,
	                            .avail_uaddr = (uintptr_t)g->r.avail, .log_gaddr = USED_GPA };
	assert_int_equal(call_ack(c, VHU_SET_VRING_ADDR, &a, sizeof(a), NULL, 0), 0);
}

/* A server whose queue 1 runs (LOG_SHMFD negotiated, plus what o asks), l[0] its log once set, l[1] a spare. */
struct logged {
	struct server *s;
	int c;
	uint64_t features;        /* SET_FEATURES without LOG_ALL */
	struct guest g;
	struct test_log l[2];
};

static void logged_start(struct logged *x, bool packed, const struct start_opts *o, bool set_log)
{
	struct start_opts opts = *o;
	opts.pf |= 1ull << VHU_PROTOCOL_F_LOG_SHMFD;
	x->s = server_start(2);
	x->c = x->s->sock[1];
	if (packed)
		guest_init_packed(&x->g, true);
	else
		guest_init(&x->g, true);
	x->features = base_features(&x->g, true);
	test_log_init(&x->l[0]);
	test_log_init(&x->l[1]);
	start_queue_with(x->c, &x->g, 1, true, false, packed ? VRING_PACKED_BASE_INIT : 0, &opts);
	if (set_log)
		set_log_base(x->c, &x->l[0]);
}

static void logged_finish(struct logged *x)
{
	server_finish(x->s);
	server_free(x->s);
	test_log_free(&x->l[0]);
	test_log_free(&x->l[1]);
	guest_free(&x->g);
}

/* Rings logged at the used ring, as QEMU asks during a migration. */
static const struct start_opts rings_logged = { .addr_flags = 1u << VHU_VRING_F_LOG, .log_gaddr = USED_GPA };
static const struct start_opts all_logged = { .features = LOG_ALL, .addr_flags = 1u << VHU_VRING_F_LOG,
                                              .log_gaddr = USED_GPA };

static void test_log_shmfd_and_log_all_are_offered(void **state)
{
	(void)state;
	struct server *s = server_start(2);
	assert_true(get_u64(s->sock[1], VHU_GET_FEATURES) & LOG_ALL);
	assert_true(get_u64(s->sock[1], VHU_GET_PROTOCOL_FEATURES) & (1ull << VHU_PROTOCOL_F_LOG_SHMFD));
	server_finish(s);
	server_free(s);
}

/* A request served with logging on marks the reply's page and the used ring's page, and nothing else: not the
 * request's readable page, the descriptor table or the avail ring. Logging off (before LOG_ALL, and after it is
 * cleared again with the queue running) marks nothing. */
static void test_log_marks_reply_and_used_ring_only_while_log_all(void **state)
{
	(void)state;
	struct logged x;
	logged_start(&x, false, &rings_logged, true);
	round_trip(&x.g, 1);
	round_trip(&x.g, 2);
	assert_int_equal(marked_pages(&x.l[0]), 0); /* a log, but LOG_ALL not negotiated */

	assert_int_equal(ack_u64(x.c, VHU_SET_FEATURES, x.features | LOG_ALL), 0); /* the queue runs */
	for (unsigned i = 3; i <= 20; i++)
		round_trip(&x.g, i);
	assert_int_equal(marked_pages(&x.l[0]), REPLY_AND_USED);
	memset(x.l[0].bits, 0, LOG_BYTES); /* what the VMM does at each sync */
	round_trip(&x.g, 21);
	assert_int_equal(marked_pages(&x.l[0]), REPLY_AND_USED);

	assert_int_equal(ack_u64(x.c, VHU_SET_FEATURES, x.features), 0); /* a failed migration's end */
	round_trip(&x.g, 22);
	memset(x.l[0].bits, 0, LOG_BYTES);
	for (unsigned i = 23; i <= 30; i++)
		round_trip(&x.g, i);
	assert_int_equal(marked_pages(&x.l[0]), 0);

	assert_int_equal(ack_u64(x.c, VHU_SET_FEATURES, x.features | LOG_ALL), 0); /* and on again */
	round_trip(&x.g, 31);
	assert_int_equal(marked_pages(&x.l[0]), REPLY_AND_USED);
	assert_int_equal(__atomic_load_n(&x.s->calls, __ATOMIC_SEQ_CST), 31);
	logged_finish(&x);
}

/* The sequence of qemu111-migration-trace.md replayed on a running queue: migration start (SET_LOG_BASE,
 * SET_FEATURES with LOG_ALL, SET_VRING_ADDR with the log flag), requests logged, the switch-over's stop
 * (SET_VRING_ENABLE 0, GET_VRING_BASE), then the resume of a failed migration on the same connection
 * (SET_FEATURES without LOG_ALL, the ring set up again, no new log): nothing logged any more. */
static void test_log_qemu_migration_sequence(void **state)
{
	(void)state;
	struct logged x;
	logged_start(&x, false, &(struct start_opts){ 0 }, false);
	for (unsigned i = 1; i <= 5; i++)
		round_trip(&x.g, i);
	set_log_base(x.c, &x.l[0]);
	assert_int_equal(ack_u64(x.c, VHU_SET_FEATURES, x.features | LOG_ALL), 0);
	set_vring_addr_logged(x.c, &x.g, 1, true);
	for (unsigned i = 6; i <= 10; i++)
		round_trip(&x.g, i);
	assert_int_equal(marked_pages(&x.l[0]), REPLY_AND_USED);
	assert_int_equal(ack_state(x.c, VHU_SET_VRING_ENABLE, 1, 0), 0);
	assert_int_equal(get_vring_base(x.c, 1), 10);

	assert_int_equal(ack_u64(x.c, VHU_SET_FEATURES, x.features), 0);
	assert_int_equal(ack_state(x.c, VHU_SET_VRING_BASE, 1, 10), 0);
	set_vring_addr_logged(x.c, &x.g, 1, false);
	send_vring_fd(x.c, VHU_SET_VRING_KICK, 1, x.g.kick);
	assert_int_equal(ack_state(x.c, VHU_SET_VRING_ENABLE, 1, 1), 0);
	memset(x.l[0].bits, 0, LOG_BYTES);
	for (unsigned i = 11; i <= 15; i++)
		round_trip(&x.g, i);
	assert_int_equal(marked_pages(&x.l[0]), 0);
	assert_int_equal(__atomic_load_n(&x.s->calls, __ATOMIC_SEQ_CST), 15);
	logged_finish(&x);
}

/* Without VHOST_VRING_F_LOG in SET_VRING_ADDR only the reply is logged; a new log replaces the old one with the
 * queue running, and the old one is never written again. */
static void test_log_ring_flag_and_log_replacement(void **state)
{
	(void)state;
	struct logged x;
	logged_start(&x, false, &(struct start_opts){ .features = LOG_ALL }, true);
	round_trip(&x.g, 1);
	assert_int_equal(marked_pages(&x.l[0]), PAGE_BIT(DATA_GPA + 0x1000));
	set_log_base(x.c, &x.l[1]);
	memset(x.l[0].bits, 0, LOG_BYTES);
	for (unsigned i = 2; i <= 10; i++)
		round_trip(&x.g, i);
	assert_int_equal(marked_pages(&x.l[0]), 0);
	assert_int_equal(marked_pages(&x.l[1]), PAGE_BIT(DATA_GPA + 0x1000));
	logged_finish(&x);
}

/* A packed ring writes its used elements over the descriptor ring (page 0) and arms in the device area, which
 * SET_VRING_ADDR's log_guest_addr names (USED_GPA's page). */
static void test_log_packed_ring_marks_descriptor_ring(void **state)
{
	(void)state;
	struct logged x;
	logged_start(&x, true, &all_logged, true);
	for (unsigned i = 1; i <= 10; i++)
		round_trip(&x.g, i);
	uint64_t m = marked_pages(&x.l[0]), must = PAGE_BIT(DESC_GPA) | PAGE_BIT(DATA_GPA + 0x1000);
	assert_int_equal(m & must, must);
	assert_int_equal(m & ~(must | PAGE_BIT(USED_GPA)), 0); /* the device area: when the queue armed */
	logged_finish(&x);
}

/* A reply completed later from another thread (a pending chain, as SETLKW's) is logged where it lands, and a log
 * replaced again and again, with LOG_ALL toggled, while requests are served (the swap's grace period under
 * ASan: a mark into an unmapped log would crash). */
struct guest_loop {
	struct guest *g;
	unsigned n;
};

static void *guest_round_trips(void *arg)
{
	struct guest_loop *l = arg;
	for (unsigned i = 1; i <= l->n; i++)
		round_trip(l->g, i);
	return NULL;
}

static void test_log_pending_reply_and_swaps_under_load(void **state)
{
	(void)state;
	struct logged x;
	logged_start(&x, false, &all_logged, true);
	__atomic_store_n(&x.s->defer, true, __ATOMIC_SEQ_CST);
	round_trip(&x.g, 1);
	assert_int_equal(marked_pages(&x.l[0]), REPLY_AND_USED);

	struct guest_loop loop = { &x.g, 400 };
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, guest_round_trips, &loop), 0);
	for (unsigned i = 0; i < 200; i++) {
		set_log_base(x.c, &x.l[i % 2]);
		if (i % 7 == 3)
			assert_int_equal(ack_u64(x.c, VHU_SET_FEATURES, x.features | (i % 2 ? 0 : LOG_ALL)), 0);
	}
	assert_int_equal(ack_u64(x.c, VHU_SET_FEATURES, x.features | LOG_ALL), 0);
	assert_int_equal(pthread_join(t, NULL), 0);
	memset(x.l[1].bits, 0, LOG_BYTES);
	round_trip(&x.g, 401);
	assert_int_equal(marked_pages(&x.l[1]), REPLY_AND_USED);
	assert_int_equal(__atomic_load_n(&x.s->calls, __ATOMIC_SEQ_CST), 402);
	/* the completing threads are done with the device before it goes */
	for (unsigned i = 0; i < WAIT_MS && __atomic_load_n(&x.s->late, __ATOMIC_SEQ_CST); i++)
		nanosleep(&(struct timespec){ 0, 1000 * 1000 }, NULL);
	assert_int_equal(__atomic_load_n(&x.s->late, __ATOMIC_SEQ_CST), 0);
	logged_finish(&x);
}

/* The swap's grace period itself: while a marker could still hold the old log (here: the test holds a queue's
 * push lock, as a queue thread does while it marks), the old log is not unmapped and SET_LOG_BASE is not
 * answered; once the lock is free, it is. */
static void test_log_swap_waits_for_markers(void **state)
{
	(void)state;
	struct logged x;
	struct vhu_log lg = { .mmap_size = LOG_BYTES, .mmap_offset = 0 };
	struct vhu_msg m;
	logged_start(&x, false, &all_logged, true);
	round_trip(&x.g, 1);
	pthread_mutex_lock(&x.s->dev.q[1].push_lock);
	send_msg(x.c, VHU_SET_LOG_BASE, VHU_VERSION, &lg, sizeof(lg), &x.l[1].fd, 1);
	assert_false(readable_within(x.c, 200));
	pthread_mutex_unlock(&x.s->dev.q[1].push_lock);
	recv_reply(x.c, VHU_SET_LOG_BASE, &m);
	memset(x.l[0].bits, 0, LOG_BYTES);
	round_trip(&x.g, 2);
	assert_int_equal(marked_pages(&x.l[0]), 0);
	assert_int_equal(marked_pages(&x.l[1]), REPLY_AND_USED);
	logged_finish(&x);
}

/* A log the backend cannot take (LOG_SHMFD negotiated): the connection drops, nothing crashes, no fd stays. */
static void expect_log_base_disconnect(uint64_t size, uint64_t offset, int fd)
{
	int before = count_fds();
	struct server *s = server_start(2);
	int c = s->sock[1];
	struct vhu_log lg = { .mmap_size = size, .mmap_offset = offset };
	negotiate_pf(c, 1ull << VHU_PROTOCOL_F_LOG_SHMFD);
	send_msg(c, VHU_SET_LOG_BASE, VHU_VERSION, &lg, sizeof(lg), &fd, fd >= 0 ? 1 : 0);
	assert_int_equal(shutdown(c, SHUT_WR), 0);
	assert_true(server_wait(s) < 0);
	server_free(s);
	assert_int_equal(count_fds(), before);
}

static void test_log_base_hostile_sizes_disconnect(void **state)
{
	(void)state;
	struct test_log l;
	test_log_init(&l);
	int ev = eventfd(0, EFD_CLOEXEC);
	int big = memfd_create("test-big-log", MFD_CLOEXEC);
	assert_true(ev >= 0 && big >= 0);
	assert_int_equal(ftruncate(big, 1ll << 40), 0); /* sparse */
	expect_log_base_disconnect(0, 0, l.fd);                          /* empty */
	expect_log_base_disconnect(16, 2 * LOG_BYTES, l.fd);             /* offset beyond the file */
	expect_log_base_disconnect(LOG_BYTES, 16, l.fd);                 /* offset + size beyond the file */
	expect_log_base_disconnect(1ull << 40, 0, l.fd);                 /* huge, on a small file */
	expect_log_base_disconnect((1ull << 30) + 1, 0, big);            /* the file is long enough, the log too big */
	expect_log_base_disconnect(16, UINT64_MAX - 8, l.fd);            /* offset + size overflows */
	expect_log_base_disconnect(LOG_BYTES, 0, ev);                    /* not a file */
	expect_log_base_disconnect(LOG_BYTES, 0, -1);                    /* no fd at all */
	close(ev);
	close(big);
	test_log_free(&l);
}

/* Without LOG_SHMFD a SET_LOG_BASE has nothing to map: refused (an ack says so), and one with an fd is malformed. */
static void test_log_base_without_log_shmfd_is_refused(void **state)
{
	(void)state;
	struct server *s = server_start(2);
	int c = s->sock[1];
	struct vhu_log lg = { .mmap_size = LOG_BYTES };
	negotiate_reply_ack(c);
	assert_int_not_equal(call_ack(c, VHU_SET_LOG_BASE, &lg, sizeof(lg), NULL, 0), 0);
	server_finish(s);
	server_free(s);
	struct test_log l;
	test_log_init(&l);
	int before = count_fds();
	s = server_start(2);
	send_msg(s->sock[1], VHU_SET_LOG_BASE, VHU_VERSION, &lg, sizeof(lg), &l.fd, 1);
	assert_int_equal(shutdown(s->sock[1], SHUT_WR), 0);
	assert_true(server_wait(s) < 0);
	server_free(s);
	assert_int_equal(count_fds(), before);
	test_log_free(&l);
}

/* ---- end to end with the real frontend ---- */

struct listener {
	int lfd;
	struct server *s;        /* sock[0] is the accepted connection */
	char dir[64], path[128];
	unsigned poll_us;
	uint64_t shmem;          /* bytes of shared-memory region 0 the device offers (0: none) */
	unsigned pool;           /* worker threads (cfg.pool_threads) */
	int delay_us;            /* the handler's sleep per call */
};

static void *accept_and_serve(void *arg)
{
	struct listener *l = arg;
	int fd = accept4(l->lfd, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0) {
		l->s->rc = -errno;
		return NULL;
	}
	l->s->sock[0] = fd;
	l->s->delay_us = l->delay_us;
	struct vu_dev_config cfg = { .max_queues = 2, .handle = echo_upper, .opaque = l->s, .poll_us = l->poll_us,
	                             .pool_threads = l->pool,
	                             .n_shmem = l->shmem ? 1 : 0, .shmem_sizes = { l->shmem } };
	l->s->rc = vu_dev_init(&l->s->dev, fd, &cfg);
	if (l->s->rc == 0)
		l->s->rc = vu_dev_serve(&l->s->dev);
	return NULL;
}

static void listener_start(struct listener *l)
{
	strcpy(l->dir, "/tmp/vufs-vhu-XXXXXX");
	assert_non_null(mkdtemp(l->dir));
	snprintf(l->path, sizeof(l->path), "%s/sock", l->dir);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	strcpy(sa.sun_path, l->path);
	l->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(l->lfd >= 0);
	assert_int_equal(bind(l->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(l->lfd, 1), 0);
	l->s = calloc(1, sizeof(*l->s));
	assert_non_null(l->s);
	l->s->sock[0] = l->s->sock[1] = -1;
	assert_int_equal(pthread_create(&l->s->thread, NULL, accept_and_serve, l), 0);
}

/* After the frontend closed: the device's server ended cleanly. */
static void listener_finish(struct listener *l)
{
	assert_int_equal(server_wait(l->s), 0);
	vu_dev_destroy(&l->s->dev);
	close_if_open(&l->s->sock[0]);
	free(l->s);
	close(l->lfd);
	unlink(l->path);
	rmdir(l->dir);
}

/* With poll_us, every tenth request comes after a pause longer than the polling window, so the queue thread both
 * catches requests while it polls and sleeps with a shrinking window in between. */
static void frontend_round_trips(bool no_event_idx, unsigned poll_us, bool packed)
{
	int before = count_fds();
	struct listener l = { .lfd = -1, .poll_us = poll_us };
	listener_start(&l);

	struct vu_frontend *fe = malloc(sizeof(*fe));
	assert_non_null(fe);
	struct vu_frontend_config cfg = { .nqueues = 2, .queue_size = 16, .mem_size = MEM_SIZE,
	                                  .no_event_idx = no_event_idx, .packed = packed };
	assert_int_equal(vu_frontend_connect(fe, l.path, &cfg), 0);
	assert_int_equal(vu_frontend_start(fe), 0);
	assert_int_equal(!!(fe->features & (1ull << VIRTIO_F_RING_PACKED_BIT)), packed);
	assert_string_equal(fe->q[1].vq.ops->name, packed ? "packed" : "split");
	assert_int_equal(!!(fe->features & (1ull << VIRTIO_RING_F_EVENT_IDX_BIT)), !no_event_idx);
	assert_true(fe->protocol_features & (1ull << VHU_PROTOCOL_F_REPLY_ACK));

	uint64_t in_gpa, out_gpa;
	char *in = vu_frontend_alloc(fe, 64, 64, &in_gpa);
	char *out = vu_frontend_alloc(fe, 64, 64, &out_gpa);
	assert_non_null(in);
	assert_non_null(out);
	struct vu_fe_queue *q = &fe->q[1];
	for (unsigned i = 0; i < 50; i++) {
		if (poll_us && i % 10 == 9)
			usleep(poll_us * 3);
		int n = snprintf(in, 64, "request %u", i);
		struct vq_seg segs[2] = { { in_gpa, (uint32_t)n }, { out_gpa, 64 } };
		assert_int_equal(vu_frontend_submit(fe, 1, segs, 1, 1, in), 0);
		void *tok = NULL;
		uint32_t len = 0;
		for (;;) {
			pthread_mutex_lock(&q->lock);
			int rc = vq_driver_get_used(&q->vq, &tok, &len);
			bool pending = rc == 0 && vq_driver_arm(&q->vq);
			pthread_mutex_unlock(&q->lock);
			assert_true(rc >= 0);
			if (rc == 1)
				break;
			if (pending)
				continue;
			assert_true(readable_within(q->call_fd, WAIT_MS));
			eventfd_t v;
			eventfd_read(q->call_fd, &v);
		}
		assert_ptr_equal(tok, in);
		assert_int_equal(len, n);
		char expect[64];
		snprintf(expect, sizeof(expect), "REQUEST %u", i);
		assert_memory_equal(out, expect, (size_t)n);
	}
	assert_int_equal(__atomic_load_n(&l.s->calls, __ATOMIC_SEQ_CST), 50);
	vu_frontend_stop(fe);
	/* GET_VRING_BASE: split, the next avail index (50 chains); packed, 100 slots on a ring of 16 (six wraps, so
	 * the counters are back at 1) for both the avail and the used half */
	assert_int_equal(fe->q[1].stop_base, packed ? 0x80048004u : 50u);
	vu_frontend_close(fe);
	free(fe);
	listener_finish(&l);
	assert_int_equal(count_fds(), before);
}

/* The frontend as a VMM with a DAX window: it takes region 0 and serves the device's maps into it (through
 * vu_dev_services, as vufsd's file system sends them), and drops them all when it stops. */
static void test_frontend_window_takes_the_device_maps(void **state)
{
	(void)state;
	int before = count_fds();
	struct listener l = { .lfd = -1, .shmem = 4u << 20 };
	listener_start(&l);
	struct vu_frontend *fe = malloc(sizeof(*fe));
	assert_non_null(fe);
	struct vu_frontend_config cfg = { .nqueues = 2, .queue_size = 16, .mem_size = MEM_SIZE, .want_shmem = true };
	assert_int_equal(vu_frontend_connect(fe, l.path, &cfg), 0);
	assert_int_equal(vu_frontend_start(fe), 0);
	assert_true(vu_frontend_has_window(fe));
	assert_int_equal(fe->window.size, 4u << 20);
	struct dev_services svc;
	vu_dev_services(&l.s->dev, &svc);
	int fd = memfd_create("dax", MFD_CLOEXEC);
	assert_int_equal(ftruncate(fd, 8192), 0);
	assert_int_equal(pwrite(fd, "page", 4, 4096), 4);
	assert_int_equal(svc.shm_map(svc.ctx, 0, fd, 0, 2u << 20, 8192, true), 0);
	assert_memory_equal(fe->window.base + (2u << 20) + 4096, "page", 4);
	assert_int_equal(svc.shm_map(svc.ctx, 0, fd, 0, (2u << 20) + 4096, 8192, true), -EIO); /* overlaps: 1 */
	assert_int_equal(svc.shm_unmap(svc.ctx, 0, 2u << 20, 8192), 0);
	assert_int_equal(svc.shm_map(svc.ctx, 0, fd, 0, 0, 8192, false), 0);
	assert_int_equal(fe->window.n, 1);
	vu_frontend_stop(fe);
	assert_int_equal(fe->window.n, 0); /* as QEMU at a reset: every mapping gone */
	vu_frontend_close(fe);
	free(fe);
	close(fd);
	listener_finish(&l);
	assert_int_equal(count_fds(), before);
}

/* Without asking for a window the frontend takes none, and REPLY_ACK stays negotiated. */
static void test_frontend_without_window(void **state)
{
	(void)state;
	struct listener l = { .lfd = -1, .shmem = 4u << 20 };
	listener_start(&l);
	struct vu_frontend fe;
	struct vu_frontend_config cfg = { .nqueues = 2, .queue_size = 16, .mem_size = MEM_SIZE };
	assert_int_equal(vu_frontend_connect(&fe, l.path, &cfg), 0);
	assert_int_equal(vu_frontend_start(&fe), 0);
	assert_false(vu_frontend_has_window(&fe));
	assert_true(fe.protocol_features & (1ull << VHU_PROTOCOL_F_REPLY_ACK));
	assert_false(fe.protocol_features & (1ull << VHU_PROTOCOL_F_SHMEM));
	vu_frontend_stop(&fe);
	vu_frontend_close(&fe);
	listener_finish(&l);
}

/* 8 requests of delay_us each submitted at once on one request queue, with `pool` worker threads: every reply is
 * right, the calls overlapped (pool >= 2) or ran one at a time (no pool); with stop_at_once the frontend stops the
 * queue while they run, and GET_VRING_BASE must wait until every one of them is back in the used ring. */
static void pool_parallel(unsigned pool, bool stop_at_once, bool packed, int delay_us)
{
	enum { N = 8 };
	int before = count_fds();
	struct listener l = { .lfd = -1, .pool = pool, .delay_us = delay_us };
	listener_start(&l);
	struct vu_frontend *fe = malloc(sizeof(*fe));
	assert_non_null(fe);
	struct vu_frontend_config cfg = { .nqueues = 2, .queue_size = 16, .mem_size = MEM_SIZE, .packed = packed };
	assert_int_equal(vu_frontend_connect(fe, l.path, &cfg), 0);
	assert_int_equal(vu_frontend_start(fe), 0);
	char *in[N], *out[N];
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (unsigned i = 0; i < N; i++) {
		uint64_t in_gpa, out_gpa;
		in[i] = vu_frontend_alloc(fe, 64, 64, &in_gpa);
		out[i] = vu_frontend_alloc(fe, 64, 64, &out_gpa);
		assert_non_null(in[i]);
		assert_non_null(out[i]);
		int n = snprintf(in[i], 64, "job %u", i);
		struct vq_seg segs[2] = { { in_gpa, (uint32_t)n }, { out_gpa, 64 } };
		assert_int_equal(vu_frontend_submit(fe, 1, segs, 1, 1, in[i]), 0);
	}
	struct vu_fe_queue *q = &fe->q[1];
	unsigned got = 0;
	if (stop_at_once) {
		usleep(5000); /* the first ones are running */
		vu_frontend_stop(fe);
		/* Stopped: whatever was popped is back now, and nothing more comes. */
		void *tok;
		uint32_t len;
		while (vq_driver_get_used(&q->vq, &tok, &len) == 1)
			got++;
		assert_true(got >= 1);
		assert_int_equal(got, __atomic_load_n(&l.s->calls, __ATOMIC_SEQ_CST));
		assert_false(packed); /* split only: its base is the count */
		assert_int_equal(fe->q[1].stop_base, got);
	} else {
		while (got < N) {
			void *tok = NULL;
			uint32_t len = 0;
			pthread_mutex_lock(&q->lock);
			int rc = vq_driver_get_used(&q->vq, &tok, &len);
			bool pending = rc == 0 && vq_driver_arm(&q->vq);
			pthread_mutex_unlock(&q->lock);
			assert_true(rc >= 0);
			if (rc == 1) {
				unsigned i = 0;
				while (i < N && tok != in[i])
					i++;
				assert_true(i < N);
				char expect[64];
				int n = snprintf(expect, sizeof(expect), "JOB %u", i);
				assert_int_equal(len, n);
				assert_memory_equal(out[i], expect, (size_t)n);
				got++;
				continue;
			}
			if (pending)
				continue;
			assert_true(readable_within(q->call_fd, WAIT_MS));
			eventfd_t v;
			eventfd_read(q->call_fd, &v);
		}
		clock_gettime(CLOCK_MONOTONIC, &t1);
		double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
		int most = __atomic_load_n(&l.s->max_inflight, __ATOMIC_SEQ_CST);
		if (!delay_us) {
			/* Quick requests are not worth a worker's wake-up: the queue thread keeps them all. */
			assert_int_equal(__atomic_load_n(&l.s->max_slot, __ATOMIC_SEQ_CST), 1);
		} else if (pool >= 2) {
			assert_true(most >= 2);
			assert_true(most <= (int)pool);
			assert_true(ms < N * 20 * 0.75); /* 160 ms one at a time */
			assert_true(__atomic_load_n(&l.s->max_slot, __ATOMIC_SEQ_CST) >= VU_MAX_QUEUES);
		} else {
			assert_int_equal(most, 1);
			assert_true(ms >= N * 20);
			assert_int_equal(__atomic_load_n(&l.s->max_slot, __ATOMIC_SEQ_CST), 1);
		}
		vu_frontend_stop(fe);
		/* packed: 16 slots on a ring of 16, one wrap (counters 0 again) */
		assert_int_equal(fe->q[1].stop_base, packed ? 0u : (unsigned)N);
	}
	vu_frontend_close(fe);
	free(fe);
	listener_finish(&l);
	assert_int_equal(count_fds(), before);
}

static void test_pool_serves_one_queue_in_parallel(void **state)
{
	(void)state;
	pool_parallel(0, false, false, 20000);
	pool_parallel(1, false, false, 20000);
	pool_parallel(4, false, false, 20000);
	pool_parallel(4, false, true, 20000);
}

static void test_pool_keeps_quick_requests_on_the_queue_thread(void **state)
{
	(void)state;
	pool_parallel(4, false, false, 0);
}

static void test_pool_stop_waits_for_running_jobs(void **state)
{
	(void)state;
	pool_parallel(4, true, false, 20000);
	pool_parallel(2, true, false, 20000);
}

static void test_frontend_end_to_end_with_event_idx(void **state)
{
	(void)state;
	frontend_round_trips(false, 0, false);
}

static void test_frontend_end_to_end_without_event_idx(void **state)
{
	(void)state;
	frontend_round_trips(true, 0, false);
}

static void test_frontend_end_to_end_polling_backend(void **state)
{
	(void)state;
	frontend_round_trips(false, 200, false);
	frontend_round_trips(true, 200, false);
}

/* The same over packed virtqueues: 50 requests on a ring of 16 go round it several times. */
static void test_frontend_end_to_end_packed(void **state)
{
	(void)state;
	frontend_round_trips(false, 0, true);
	frontend_round_trips(true, 0, true);
	frontend_round_trips(false, 200, true);
}


/* ---- the device's own part: config space, shared-memory regions, backend requests ---- */

static const uint8_t fs_config[40] = { 'm', 'y', 'f', 's', [36] = 2 };

static struct server *server_start_device(void)
{
	struct server *s = calloc(1, sizeof(*s));
	assert_non_null(s);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s->sock), 0);
	struct timeval tv = { .tv_sec = WAIT_MS / 1000 };
	assert_int_equal(setsockopt(s->sock[1], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
	struct vu_dev_config cfg = { .max_queues = 3, .handle = echo_upper, .opaque = s, .config = fs_config,
	                             .config_len = sizeof(fs_config), .n_shmem = 1, .shmem_sizes = { 1ull << 28 },
	                             .backend_timeout_ms = 300 };
	assert_int_equal(vu_dev_init(&s->dev, s->sock[0], &cfg), 0);
	assert_int_equal(pthread_create(&s->thread, NULL, serve_thread, s), 0);
	return s;
}


/* GET_CONFIG with offset and size; returns the payload size of the answer (0: refused) and the bytes. */
static uint32_t get_config(int c, uint32_t offset, uint32_t size, uint8_t *out)
{
	struct vhu_config cfg = { .offset = offset, .size = size };
	struct vhu_msg m;
	send_msg(c, VHU_GET_CONFIG, VHU_VERSION, &cfg, VHU_CONFIG_HDR + (size <= VHU_CONFIG_MAX ? size : 0), NULL, 0);
	recv_reply(c, VHU_GET_CONFIG, &m);
	if (m.hdr.size >= VHU_CONFIG_HDR)
		memcpy(out, m.p.config.region, m.hdr.size - VHU_CONFIG_HDR);
	return m.hdr.size;
}

static void test_get_config_answers_the_config_space(void **state)
{
	(void)state;
	struct server *s = server_start_device();
	int c = s->sock[1];
	uint8_t buf[VHU_CONFIG_MAX];
	assert_true(get_u64(c, VHU_GET_PROTOCOL_FEATURES) & (1ull << VHU_PROTOCOL_F_CONFIG));
	/* Before F_CONFIG is negotiated: an empty answer. */
	assert_int_equal(get_config(c, 0, 40, buf), 0);
	negotiate_pf(c, 1ull << VHU_PROTOCOL_F_CONFIG);
	assert_int_equal(get_config(c, 0, 40, buf), VHU_CONFIG_HDR + 40);
	assert_memory_equal(buf, fs_config, 40);
	assert_int_equal(get_config(c, 36, 4, buf), VHU_CONFIG_HDR + 4);
	assert_int_equal(buf[0], 2); /* num_request_queues */
	/* Past the end, wrapping, or more than a message holds: refused, and the connection goes on. */
	assert_int_equal(get_config(c, 37, 4, buf), 0);
	assert_int_equal(get_config(c, UINT32_MAX - 1, 4, buf), 0);
	assert_int_equal(get_config(c, 0, 4096, buf), 0);
	assert_int_equal(get_u64(c, VHU_GET_QUEUE_NUM), 3);
	server_finish(s);
	server_free(s);
}

static void test_get_shmem_config_answers_region_sizes(void **state)
{
	(void)state;
	struct server *s = server_start_device();
	int c = s->sock[1];
	struct vhu_msg m;
	assert_true(get_u64(c, VHU_GET_PROTOCOL_FEATURES) & (1ull << VHU_PROTOCOL_F_SHMEM));
	negotiate_pf(c, 1ull << VHU_PROTOCOL_F_SHMEM);
	send_msg(c, VHU_GET_SHMEM_CONFIG, VHU_VERSION, NULL, 0, NULL, 0);
	recv_reply(c, VHU_GET_SHMEM_CONFIG, &m);
	assert_int_equal(m.hdr.size, 16);
	assert_int_equal(m.p.shmem.nregions, 1);
	assert_int_equal(m.p.shmem.sizes[0], 1ull << 28);
	server_finish(s);
	server_free(s);
}

struct map_call {
	struct dev_services svc;
	int fd;
	uint64_t shm_offset;
	int rc;
};

static void *map_thread(void *arg)
{
	struct map_call *mc = arg;
	mc->rc = mc->svc.shm_map(mc->svc.ctx, 0, mc->fd, 0, mc->shm_offset, 8192, true);
	return NULL;
}

/* The frontend's side of one SHMEM_MAP: checks it, answers value (or nothing). */
static void frontend_answers_map(int chan, uint64_t shm_offset, bool answer, uint64_t value)
{
	struct vhu_msg m;
	assert_int_equal(vhu_recv(chan, &m), 0);
	assert_int_equal(m.hdr.request, VHU_BACKEND_SHMEM_MAP);
	assert_true(m.hdr.flags & VHU_FLAG_NEED_REPLY);
	assert_int_equal(m.hdr.size, sizeof(struct vhu_shmem_map));
	assert_int_equal(m.nfds, 1);
	assert_int_equal(m.p.map.shm_offset, shm_offset);
	assert_int_equal(m.p.map.len, 8192);
	assert_int_equal(m.p.map.flags, VHU_SHMEM_MAP_RW);
	vhu_close_fds(&m);
	if (!answer)
		return;
	m.hdr.flags = VHU_VERSION | VHU_FLAG_REPLY;
	m.hdr.size = sizeof(uint64_t);
	m.p.u64 = value;
	assert_int_equal(vhu_send(chan, &m), 0);
}

static void test_backend_shmem_map_request_and_reply(void **state)
{
	(void)state;
	struct server *s = server_start_device();
	int c = s->sock[1], chan[2];
	struct map_call mc = { .fd = memfd_create("dax", MFD_CLOEXEC) };
	assert_true(mc.fd >= 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, chan), 0);
	vu_dev_services(&s->dev, &mc.svc);
	assert_int_equal(mc.svc.shm_size(mc.svc.ctx, 0), 1ull << 28);
	assert_int_equal(mc.svc.shm_size(mc.svc.ctx, 1), 0);
	/* Ranges outside the window, or a map before the device runs (QEMU 11.1.3 would crash): refused here. */
	assert_int_equal(mc.svc.shm_map(mc.svc.ctx, 0, mc.fd, 0, 0, 8192, true), -EAGAIN);
	assert_int_equal(mc.svc.shm_map(mc.svc.ctx, 0, mc.fd, 0, (1ull << 28) - 4096, 8192, true), -EINVAL);
	assert_int_equal(mc.svc.shm_map(mc.svc.ctx, 0, mc.fd, 0, 100, 8192, true), -EINVAL);
	assert_int_equal(mc.svc.shm_map(mc.svc.ctx, 1, mc.fd, 0, 0, 8192, true), -EINVAL);
	struct guest g;
	guest_init(&g, true);
	start_queue(c, &g, 1, true, false, 0);
	/* Started, but no backend channel yet. */
	assert_int_equal(mc.svc.shm_map(mc.svc.ctx, 0, mc.fd, 0, 0, 8192, true), -ENOTCONN);
	uint64_t pf = 1ull << VHU_PROTOCOL_F_SHMEM | 1ull << VHU_PROTOCOL_F_BACKEND_REQ | 1ull << VHU_PROTOCOL_F_REPLY_ACK;
	assert_int_equal(ack_u64(c, VHU_SET_PROTOCOL_FEATURES, pf), 0);
	assert_int_equal(call_ack(c, VHU_SET_BACKEND_REQ_FD, NULL, 0, &chan[0], 1), 0);
	close(chan[0]);
	/* Answered 0: mapped. Answered 1: failed. Never answered: the request times out, never hangs. */
	const struct { bool answer; uint64_t value; int rc; } cases[] = { { true, 0, 0 }, { true, 1, -EIO },
	                                                                 { false, 0, -ETIMEDOUT } };
	for (unsigned i = 0; i < 3; i++) {
		pthread_t t;
		mc.shm_offset = 4096u * 2 * i;
		assert_int_equal(pthread_create(&t, NULL, map_thread, &mc), 0);
		frontend_answers_map(chan[1], mc.shm_offset, cases[i].answer, cases[i].value);
		pthread_join(t, NULL);
		assert_int_equal(mc.rc, cases[i].rc);
	}
	close(chan[1]);
	close(mc.fd);
	server_finish(s);
	server_free(s);
	guest_free(&g);
}

int main(void)
{
	log_init("test_vhost_user", LOG_LVL_ERROR, false);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_get_requests_answer_with_their_values),
		cmocka_unit_test(test_clean_eof_returns_zero),
		cmocka_unit_test(test_need_reply_ignored_until_reply_ack_negotiated),
		cmocka_unit_test(test_reply_ack_zero_on_success_nonzero_on_failure),
		cmocka_unit_test(test_get_config_answers_the_config_space),
		cmocka_unit_test(test_get_shmem_config_answers_region_sizes),
		cmocka_unit_test(test_backend_shmem_map_request_and_reply),
		cmocka_unit_test(test_frontend_window_takes_the_device_maps),
		cmocka_unit_test(test_frontend_without_window),
		cmocka_unit_test(test_set_features_with_unoffered_bits_is_refused),
		cmocka_unit_test(test_device_state_saves_and_loads_through_a_pipe),
		cmocka_unit_test(test_device_state_bad_requests_and_reset_mid_transfer),
		cmocka_unit_test(test_malformed_wrong_payload_size_for_known_request),
		cmocka_unit_test(test_malformed_fds_on_request_that_takes_none),
		cmocka_unit_test(test_malformed_set_mem_table),
		cmocka_unit_test(test_malformed_header_flags),
		cmocka_unit_test(test_malformed_size_beyond_payload_buffer),
		cmocka_unit_test(test_malformed_too_many_fds),
		cmocka_unit_test(test_malformed_truncated_message),
		cmocka_unit_test(test_get_vring_base_of_unknown_queue_disconnects),
		cmocka_unit_test(test_queue_serves_request_and_signals_call),
		cmocka_unit_test(test_call_eventfd_fires_for_a_reply),
		cmocka_unit_test(test_new_call_fd_fires_for_a_reply_signalled_on_the_old_one),
		cmocka_unit_test(test_no_call_when_nothing_was_used_with_event_idx),
		cmocka_unit_test(test_no_call_when_nothing_was_used_without_event_idx),
		cmocka_unit_test(test_queue_without_event_idx_via_add_mem_reg),
		cmocka_unit_test(test_get_vring_base_returns_next_avail_and_queue_restarts),
		cmocka_unit_test(test_malformed_chain_returned_empty_without_handler),
		cmocka_unit_test(test_corrupt_ring_breaks_queue_and_signals_err),
		cmocka_unit_test(test_overlapping_memory_regions_are_refused),
		cmocka_unit_test(test_ring_outside_memory_is_refused_at_start),
		cmocka_unit_test(test_frontend_end_to_end_with_event_idx),
		cmocka_unit_test(test_pool_serves_one_queue_in_parallel),
		cmocka_unit_test(test_pool_stop_waits_for_running_jobs),
		cmocka_unit_test(test_pool_keeps_quick_requests_on_the_queue_thread),
		cmocka_unit_test(test_frontend_end_to_end_without_event_idx),
		cmocka_unit_test(test_frontend_end_to_end_polling_backend),
		cmocka_unit_test(test_frontend_end_to_end_packed),
		cmocka_unit_test(test_packed_queue_live),
		cmocka_unit_test(test_log_shmfd_and_log_all_are_offered),
		cmocka_unit_test(test_log_marks_reply_and_used_ring_only_while_log_all),
		cmocka_unit_test(test_log_ring_flag_and_log_replacement),
		cmocka_unit_test(test_log_qemu_migration_sequence),
		cmocka_unit_test(test_log_packed_ring_marks_descriptor_ring),
		cmocka_unit_test(test_log_pending_reply_and_swaps_under_load),
		cmocka_unit_test(test_log_swap_waits_for_markers),
		cmocka_unit_test(test_log_base_hostile_sizes_disconnect),
		cmocka_unit_test(test_log_base_without_log_shmfd_is_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * libFuzzer harness: the vhost-user message reader (vhost_user.c) and the backend's state machine (vu_device.c:
 * features, memory table, vring set-up, queue threads start/stop, resets, the dirty log of SET_LOG_BASE and LOG_ALL,
 * marked by the queues while they serve), with a dummy request handler behind
 * the queues.
 *
 * The input is a stream of records; each becomes one sendmsg() on the frontend end of a socketpair, with file
 * descriptors attached. All of it is sent before vu_dev_serve() runs (the socket buffers are made big enough),
 * then the frontend end is shut down for writing (or closed, see bit4), so vu_dev_serve() sees the whole stream
 * and then the end and must return. Replies pile up unread on the frontend end and are checked afterwards.
 *
 * Input:
 *   byte 0: bits0-3: queues offered - 2 (2..17); bit4: the frontend goes away instead of shutting down its
 *           writing side: one byte is put in its receive queue (a reply it never read) and its end is closed, so
 *           once the stream is consumed the backend's next read fails with ECONNRESET rather than seeing EOF
 *   records:
 *     ctl (1 byte): bits0-1 number of fds (0-3); bits2-3 their kind: 0 eventfds, 1 memfds, 2 one memfd then
 *                   eventfds, 3 pipe read ends (the write end closed: poll says POLLHUP); bit4 framed (the body is
 *                   u32 request, u32 flags, payload, and the harness puts in size = the payload's length; else the
 *                   body is sent as it is); bit5 short memfds (see below)
 *     len (2 bytes, little-endian): body length (clipped)
 *     if memfds are attached: u16 content length, content (written at offset 0 of each memfd of the record)
 *     body
 *   A memfd is normally made 64 TiB long (sparse): whatever region of it the input names and the backend maps
 *   (gm_add maps mmap_offset + size bytes of it) is inside the file. With bit5 it is exactly as long as its
 *   content: a frontend can hand over a file shorter than the region it declares, and touching a mapped page past
 *   the end of a file raises SIGBUS.
 * VUFS_FUZZ_SKIP_KNOWN=1 ignores byte 0's bit4 and the records' bit5, which led to the two crashes kept in
 * fuzz/regressions/fuzz_vhost_user/ (both fixed since; the switch stays for fuzzing past a future one).
 *
 * The dummy handler checks that every segment of a chain lies inside one mapped region, then, by the first byte
 * of the chain (mod 4): 0 writes up to 4 KiB of reply and returns its length; 1 returns the writable length
 * without writing; 2 defers and completes at once (vu_queue_defer, vu_pending_complete); 3 defers and keeps the chain, which is
 * completed only after vu_dev_serve() returned (every queue stopped since: the completion must do nothing).
 *
 * The device has state hooks, so SET_DEVICE_STATE_FD and CHECK_DEVICE_STATE run their transfer threads on
 * whatever fds the input attaches (eventfds, memfds, pipe ends).
 * Checked: vu_dev_serve() returns; every reply is a well-formed reply header (flags VERSION|REPLY, a payload of
 * 8 bytes); late completions leave the used ring alone; the backend-request fd the device keeps is still open
 * when vu_dev_serve() returns (nothing closed it behind the device's back); after vu_dev_destroy() no fd opened
 * during the input is left open; ASan, UBSan and LeakSanitizer for the rest.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "transport/vhost_user.h"
#include "transport/vu_device.h"

#define BIG_MEMFD (1ull << 46)
#define MAX_STASH 64

#define CHECK(cond, ...)                                                                                        \
	do {                                                                                                    \
		if (!(cond)) {                                                                                  \
			fprintf(stderr, "fuzz_vhost_user: invariant failed: %s: ", #cond);                      \
			fprintf(stderr, __VA_ARGS__);                                                           \
			fputc('\n', stderr);                                                                    \
			abort();                                                                                \
		}                                                                                               \
	} while (0)

/* The open fds, as a bitmap of the first 1024 (the fd table the harness and the code under test use). */
struct fdset {
	uint64_t bits[16];
};

static struct vu_dev g_dev;

struct stashed {
	struct vu_queue *q;
	struct vu_pending *p;
};
static struct stashed g_stash[MAX_STASH];
static unsigned g_nstash;
static pthread_mutex_t g_stash_mu = PTHREAD_MUTEX_INITIALIZER;
static int g_skip_known = -1; /* VUFS_FUZZ_SKIP_KNOWN=1: ignore the input bits that reach known, unfixed bugs */

static void die(const char *what)
{
	fprintf(stderr, "fuzz_vhost_user: %s: %s\n", what, strerror(errno));
	abort();
}

static void open_fds(struct fdset *s)
{
	memset(s, 0, sizeof(*s));
	DIR *d = opendir("/proc/self/fd");
	if (!d)
		die("opendir /proc/self/fd");
	int self = dirfd(d);
	for (struct dirent *e; (e = readdir(d));) {
		int fd = atoi(e->d_name);
		if (e->d_name[0] != '.' && fd != self && fd < 1024)
			s->bits[fd / 64] |= 1ull << (fd % 64);
	}
	closedir(d);
}

/* Aborts naming every fd open now that was not open in base. */
static void check_no_new_fds(const struct fdset *base, const char *after)
{
	struct fdset now;
	bool leak = false;
	open_fds(&now);
	for (int fd = 0; fd < 1024; fd++) {
		if ((now.bits[fd / 64] >> (fd % 64) & 1) && !(base->bits[fd / 64] >> (fd % 64) & 1)) {
			char link[64], what[PATH_MAX];
			snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
			ssize_t n = readlink(link, what, sizeof(what) - 1);
			what[n > 0 ? n : 0] = 0;
			fprintf(stderr, "fd %d (%s) is open after %s\n", fd, what, after);
			leak = true;
		}
	}
	CHECK(!leak, "fds leaked (listed above)");
}

static bool in_guest_memory(const struct guest_mem *gm, const void *p, size_t len)
{
	const uint8_t *b = p;
	for (unsigned i = 0; i < gm->n; i++) {
		const uint8_t *h = gm->r[i].host;
		if (b >= h && b <= h + gm->r[i].size && len <= (size_t)(h + gm->r[i].size - b))
			return true;
	}
	return false;
}

static long handle(void *opaque, struct vu_queue *q, struct vq_chain *c, unsigned slot)
{
	struct vu_dev *dev = opaque;
	static const uint8_t reply[4096] = { 0x5a };

	CHECK(c->n_rd + c->n_wr <= VQ_MAX_SEGS, "%u segments", c->n_rd + c->n_wr);
	for (unsigned i = 0; i < c->n_rd + c->n_wr; i++)
		CHECK(in_guest_memory(&dev->mem, c->iov[i].iov_base, c->iov[i].iov_len),
		      "segment %u (%p, %zu) outside guest memory", i, c->iov[i].iov_base, c->iov[i].iov_len);
	unsigned mode = c->n_rd ? *(volatile uint8_t *)c->iov[0].iov_base % 4 : 0;
	size_t n = c->wr_len < sizeof(reply) ? c->wr_len : sizeof(reply);
	switch (mode) {
	case 0: {
		size_t done = 0;
		const struct iovec *wr = vq_chain_wr(c);
		for (unsigned i = 0; i < c->n_wr && done < n; i++) {
			size_t k = wr[i].iov_len < n - done ? wr[i].iov_len : n - done;
			memcpy(wr[i].iov_base, reply + done, k);
			done += k;
		}
		return (long)done;
	}
	case 1:
		return (long)c->wr_len;
	case 2: {
		struct vu_pending *p = vu_queue_defer(q, c);
		if (!p)
			return 0;
		vu_pending_complete(p, reply, n < 64 ? n : 64);
		return VU_DEFERRED;
	}
	default: {
		struct vu_pending *p = NULL;
		pthread_mutex_lock(&g_stash_mu);
		if (g_nstash < MAX_STASH && (p = vu_queue_defer(q, c)))
			g_stash[g_nstash++] = (struct stashed){ q, p };
		pthread_mutex_unlock(&g_stash_mu);
		return p ? VU_DEFERRED : 0;
	}
	}
}

static int make_fd(unsigned kind, unsigned i, bool shortfd, const uint8_t *content, size_t clen)
{
	if (kind == 2)
		kind = i == 0 ? 1 : 0;
	switch (kind) {
	case 0:
		return eventfd(0, EFD_CLOEXEC);
	case 1: {
		int fd = memfd_create("vufs-fuzz", MFD_CLOEXEC);
		if (fd < 0)
			die("memfd_create");
		if (clen && pwrite(fd, content, clen, 0) != (ssize_t)clen)
			die("pwrite memfd");
		if (!shortfd && ftruncate(fd, (off_t)BIG_MEMFD) < 0)
			die("ftruncate memfd");
		return fd;
	}
	default: {
		int p[2];
		if (pipe2(p, O_CLOEXEC) < 0)
			die("pipe");
		close(p[1]);
		return p[0];
	}
	}
}

static void send_record(int sock, const uint8_t *body, size_t len, const int *fds, unsigned nfds)
{
	char control[CMSG_SPACE(4 * sizeof(int))];
	struct iovec iov = { .iov_base = (void *)body, .iov_len = len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	if (nfds) {
		memset(control, 0, sizeof(control));
		mh.msg_control = control;
		mh.msg_controllen = CMSG_SPACE(nfds * sizeof(int));
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(nfds * sizeof(int));
		memcpy(CMSG_DATA(c), fds, nfds * sizeof(int));
	}
	/* Nonblocking: should the buffer ever be full, the rest of the input is simply not sent. */
	ssize_t n = sendmsg(sock, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
	(void)n;
}

static void big_buffers(int sock)
{
	int sz = 64 << 20;
	if (setsockopt(sock, SOL_SOCKET, SO_SNDBUFFORCE, &sz, sizeof(sz)) < 0)
		setsockopt(sock, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
	if (setsockopt(sock, SOL_SOCKET, SO_RCVBUFFORCE, &sz, sizeof(sz)) < 0)
		setsockopt(sock, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
}

/* A reply's payload: 8 bytes (a value or an ack), or what GET_CONFIG, GET_SHMEM_CONFIG and SET_LOG_BASE (its
 * payload echoed, with LOG_SHMFD) answer. */
static bool reply_size_ok(const struct vhu_hdr *h)
{
	switch (h->request) {
	case VHU_GET_CONFIG:
		return h->size == 0 || (h->size >= VHU_CONFIG_HDR && h->size <= VHU_CONFIG_HDR + 40);
	case VHU_GET_SHMEM_CONFIG: case VHU_SET_LOG_BASE:
		return h->size == 8 || h->size == 16;
	default:
		return h->size == 8;
	}
}

/* Every reply on the frontend end: a header with VERSION|REPLY and a payload of the size its request has. */
static void check_replies(int sock)
{
	uint8_t buf[4096];
	size_t have = 0;
	for (;;) {
		ssize_t n = recv(sock, buf + have, sizeof(buf) - have, MSG_DONTWAIT);
		if (n <= 0)
			break;
		have += (size_t)n;
		size_t off = 0;
		while (have - off >= sizeof(struct vhu_hdr)) {
			struct vhu_hdr h;
			memcpy(&h, buf + off, sizeof(h));
			CHECK(h.flags == (VHU_VERSION | VHU_FLAG_REPLY) && reply_size_ok(&h), "reply to %u: flags %#x, size %u",
			      h.request, h.flags, h.size);
			if (have - off < sizeof(h) + h.size)
				break;
			off += sizeof(h) + h.size;
		}
		memmove(buf, buf + off, have - off);
		have -= off;
	}
	CHECK(have == 0, "%zu bytes of a partial reply", have);
}

/* Device state (SET_DEVICE_STATE_FD, CHECK_DEVICE_STATE): a small state out, anything accepted in. */
static int state_save(void *opaque, void **buf, size_t *len)
{
	*buf = strdup("vufs fuzz device state");
	*len = *buf ? strlen(*buf) : 0;
	return *buf ? 0 : -ENOMEM;
}

static int state_load(void *opaque, const void *buf, size_t len)
{
	return len && ((const char *)buf)[0] == 'v' ? 0 : -EINVAL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int sv[2];
	struct fdset fds_before;
	if (size < 1)
		return 0;
	if (g_skip_known < 0)
		g_skip_known = getenv("VUFS_FUZZ_SKIP_KNOWN") && getenv("VUFS_FUZZ_SKIP_KNOWN")[0] == '1';
	/* Taken per input: the sanitizer's symbolizer, started between inputs, keeps two pipes open. */
	open_fds(&fds_before);
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		die("socketpair");
	big_buffers(sv[0]);
	big_buffers(sv[1]);

	size_t pos = 1;
	uint8_t *body = malloc(65536 + sizeof(struct vhu_hdr));
	if (!body)
		die("malloc");
	while (size - pos >= 3) {
		uint8_t ctl = data[pos];
		size_t len = (size_t)(data[pos + 1] | data[pos + 2] << 8);
		pos += 3;
		unsigned nfds = ctl & 3, kind = (ctl >> 2) & 3;
		bool framed = ctl & 0x10, shortfd = (ctl & 0x20) && !g_skip_known;
		const uint8_t *content = NULL;
		size_t clen = 0;
		if (nfds && (kind == 1 || kind == 2)) {
			if (size - pos < 2)
				break;
			clen = (size_t)(data[pos] | data[pos + 1] << 8);
			pos += 2;
			if (clen > size - pos)
				clen = size - pos;
			content = data + pos;
			pos += clen;
		}
		if (len > size - pos)
			len = size - pos;
		size_t blen;
		if (framed) {
			if (len < 8) {
				pos += len;
				continue;
			}
			struct vhu_hdr h;
			memcpy(&h.request, data + pos, 4);
			memcpy(&h.flags, data + pos + 4, 4);
			h.size = (uint32_t)(len - 8);
			memcpy(body, &h, sizeof(h));
			memcpy(body + sizeof(h), data + pos + 8, len - 8);
			blen = len - 8 + sizeof(h);
		} else {
			memcpy(body, data + pos, len);
			blen = len;
		}
		pos += len;
		int fds[3];
		for (unsigned i = 0; i < nfds; i++) {
			fds[i] = make_fd(kind, i, shortfd, content, clen);
			if (fds[i] < 0)
				die("fd");
		}
		if (blen)
			send_record(sv[1], body, blen, fds, nfds);
		for (unsigned i = 0; i < nfds; i++)
			close(fds[i]);
	}
	free(body);
	bool vanish = (data[0] & 0x10) && !g_skip_known;
	if (vanish) {
		if (send(sv[0], "R", 1, MSG_DONTWAIT | MSG_NOSIGNAL) != 1)
			die("send");
		close(sv[1]);
	} else {
		shutdown(sv[1], SHUT_WR);
	}

	/* A config space and a shared-memory region, so GET_CONFIG, GET_SHMEM_CONFIG and their features are in play. */
	static const uint8_t fs_config[40] = { 'f', 'u', 'z', 'z', [36] = 1 };
	struct vu_dev_config cfg = { .max_queues = 2 + (data[0] & 15), .handle = handle, .opaque = &g_dev,
	                             .config = fs_config, .config_len = sizeof(fs_config), .n_shmem = 1,
	                             .shmem_sizes = { 1ull << 30 }, .backend_timeout_ms = 1,
	                             .state_save = state_save, .state_load = state_load };
	if (vu_dev_init(&g_dev, sv[0], &cfg) < 0)
		die("vu_dev_init");
	g_nstash = 0;
	vu_dev_serve(&g_dev);
	CHECK(g_dev.backend_req_fd < 0 || fcntl(g_dev.backend_req_fd, F_GETFD) >= 0,
	      "the backend-request fd %d the device holds was closed under it", g_dev.backend_req_fd);

	/* Every queue stopped when vu_dev_serve returned: completing a kept chain now must not touch the ring. */
	for (unsigned i = 0; i < g_nstash; i++) {
		struct vu_queue *q = g_stash[i].q;
		uint64_t before = q->vq.pushed;
		vu_pending_complete(g_stash[i].p, NULL, 0);
		CHECK(q->vq.pushed == before, "a completion after the queue stopped pushed (queue %u)", q->index);
	}
	vu_dev_destroy(&g_dev);
	close(sv[0]);
	if (!vanish) {
		check_replies(sv[1]);
		close(sv[1]);
	}
	check_no_new_fds(&fds_before, "vu_dev_destroy");
	return 0;
}

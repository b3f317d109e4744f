/*
 * Building FUSE requests by hand and serving them through the protocol room, for the protocol tests
 * (test_fuse_proto: over the passthrough and over the stub file system). One request at a time, in static
 * buffers; the test sets srv and worker. Included by one test program each (static helpers).
 */
#ifndef VUFS_TEST_FUSE_WIRE_H
#define VUFS_TEST_FUSE_WIRE_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>
#include <unistd.h>

#include "common/util.h"
#include "protocol/fuse_abi.h"
#include "protocol/fuse_server.h"

#define OUT_SIZE (256u * 1024)
#define GUARD 64
#define MAX_IOV 8192
#define WORKER_SEGS 16

static struct fuse_server *srv;
static struct fuse_worker *worker;

/* The request being built, and the reply space (with a guard zone after whatever length we offer). */
static uint8_t req[OUT_SIZE];
static size_t req_len;
static uint8_t out[OUT_SIZE + GUARD];
static struct iovec rd_iov[MAX_IOV], wr_iov[MAX_IOV];
static uint64_t next_unique = 0x1000;
static size_t payload_len; /* bytes after the reply header, from the last call */

/* ---- building requests ---- */

static inline struct fuse_in_header *hdr(void)
{
	return (struct fuse_in_header *)req;
}

static inline void begin(uint32_t opcode, uint64_t nodeid)
{
	memset(req, 0, sizeof(struct fuse_in_header));
	req_len = sizeof(struct fuse_in_header);
	hdr()->opcode = opcode;
	hdr()->nodeid = nodeid;
	hdr()->unique = next_unique++;
	hdr()->pid = (uint32_t)getpid();
}

static inline void put(const void *p, size_t n)
{
	assert_true(req_len + n <= sizeof(req));
	memcpy(req + req_len, p, n);
	req_len += n;
}

static inline void put_str(const char *s)
{
	put(s, strlen(s) + 1);
}

static inline void end(void)
{
	hdr()->len = (uint32_t)req_len;
}

/* ---- serving ---- */

static inline unsigned split(struct iovec *iov, uint8_t *buf, size_t len, size_t chunk)
{
	unsigned n = 0;
	if (!chunk)
		chunk = len ? len : 1;
	for (size_t off = 0; off < len; off += chunk) {
		assert_true(n < MAX_IOV);
		iov[n].iov_base = buf + off;
		iov[n].iov_len = MIN(chunk, len - off);
		n++;
	}
	return n;
}

/*
 * Serves the request as built, rd_len bytes of it (normally req_len), split into rd_chunk-byte iovecs, with
 * wr_len bytes of reply space in wr_chunk-byte iovecs (0 = one iovec). Checks what every reply must satisfy:
 * it fits, its header says its length, it echoes the request's unique, and nothing past wr_len was written.
 * Returns the reply length.
 */
static inline size_t serve_ex(size_t rd_len, size_t rd_chunk, size_t wr_len, size_t wr_chunk)
{
	assert_true(wr_len <= OUT_SIZE);
	memset(out, 0xa5, wr_len + GUARD);
	unsigned nrd = split(rd_iov, req, rd_len, rd_chunk);
	unsigned nwr = split(wr_iov, out, wr_len, wr_chunk);
	size_t n = fuse_serve(srv, worker, rd_iov, nrd, rd_len, wr_iov, nwr, wr_len);
	assert_true(n <= wr_len);
	for (size_t i = wr_len; i < wr_len + GUARD; i++)
		assert_int_equal(out[i], 0xa5);
	if (n) {
		const struct fuse_out_header *oh = (const void *)out;
		assert_true(n >= sizeof(*oh));
		assert_int_equal(oh->len, n);
		if (rd_len >= sizeof(struct fuse_in_header))
			assert_int_equal(oh->unique, hdr()->unique);
		assert_true(oh->error <= 0 && oh->error > -4096);
		if (oh->error)
			assert_int_equal(n, sizeof(*oh));
		payload_len = n - sizeof(*oh);
	} else {
		payload_len = 0;
	}
	return n;
}

static inline int reply_error(size_t n)
{
	assert_true(n >= sizeof(struct fuse_out_header));
	return ((const struct fuse_out_header *)out)->error;
}

/* The common case: whole request, ample reply space; returns the error and copies the payload. */
static inline int call(void *payload, size_t cap)
{
	end();
	size_t n = serve_ex(req_len, 0, OUT_SIZE, 0);
	int err = reply_error(n);
	if (payload && err == 0) {
		assert_true(payload_len <= cap);
		memcpy(payload, out + sizeof(struct fuse_out_header), payload_len);
	}
	return err;
}

static inline int do_init_full(uint32_t major, uint32_t minor, uint32_t flags, uint32_t flags2,
                               struct fuse_init_out *o)
{
	struct fuse_init_in in = { .major = major, .minor = minor, .max_readahead = 0x20000, .flags = flags,
	                           .flags2 = flags2 };
	begin(FUSE_INIT, 0);
	put(&in, sizeof(in));
	memset(o, 0, sizeof(*o));
	return call(o, sizeof(*o));
}

static inline int lookup(uint64_t parent, const char *name, struct fuse_entry_out *e)
{
	begin(FUSE_LOOKUP, parent);
	put_str(name);
	return call(e, sizeof(*e));
}

#endif

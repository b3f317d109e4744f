/*
 * The FUSE protocol room: decodes and validates one request at one boundary, calls the file system (fs.h),
 * encodes the reply. Knows nothing of transports: a request is the bytes in rd (untrusted, possibly in memory
 * the guest may change at any time), the reply goes into wr.
 */
#ifndef VUFS_FUSE_SERVER_H
#define VUFS_FUSE_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "fs/fs.h"

/* What the server offers at INIT. What the guest may cache is the file system's policy (fs_config.cache). */
struct fuse_server_opts {
	bool writeback;       /* offer FUSE_WRITEBACK_CACHE */
	bool readdirplus;     /* offer FUSE_DO_READDIRPLUS */
	bool posix_lock;      /* offer FUSE_POSIX_LOCKS */
	bool flock;           /* offer FUSE_FLOCK_LOCKS */
	bool posix_acl;       /* offer FUSE_POSIX_ACL (with DONT_MASK and SETXATTR_EXT) */
	bool posix_acl_required; /* ... and fail INIT without them (--posix-acl=always; auto serves without ACLs) */
	bool security_label;  /* offer FUSE_SECURITY_CTX: new nodes get the security context the guest sends */
	bool security_label_required; /* ... and fail INIT without it (--security-label=always) */
	bool killpriv_v2;     /* offer FUSE_HANDLE_KILLPRIV_V2 */
	bool allow_mmap;      /* offer FUSE_DIRECT_IO_ALLOW_MMAP: shared mmap of files opened for direct I/O */
	bool announce_submounts; /* offer FUSE_SUBMOUNTS: entries the fs marks submount get FUSE_ATTR_SUBMOUNT */
	uint16_t request_timeout; /* offer FUSE_REQUEST_TIMEOUT: the guest aborts the connection when a request is not
	                       * answered in this many seconds (0: not offered) */
	uint32_t max_write;   /* largest WRITE/READ we accept (bytes); 0 = 1 MiB */
};

struct fuse_server;
/* Per-thread scratch space: one per thread that calls fuse_serve. */
struct fuse_worker;

/* Serves the file system fs through its operations ops (fs_passthrough_ops for the passthrough). */
int fuse_server_new(const struct fs_ops *ops, struct fs *fs, const struct fuse_server_opts *opts,
                    struct fuse_server **out);
void fuse_server_free(struct fuse_server *srv);
struct fuse_worker *fuse_worker_new(unsigned max_segs);
void fuse_worker_free(struct fuse_worker *w);

/*
 * Copies one request out of rd/nrd (rd_len bytes in all, in memory the guest may change at any time) into w:
 * the header and the arguments, once. Everything decided about the request afterwards (its opcode, whether it
 * may block, how it is served) comes from this copy. WRITE data stays where it is: it is data, not a decision.
 */
void fuse_request_copy(struct fuse_worker *w, const struct iovec *rd, unsigned nrd, size_t rd_len);
/*
 * Serves the request copied into w. wr/nwr: room for the reply (wr_len bytes). Returns the number of reply bytes
 * written (0 when the request has no reply, e.g. FORGET, or when not even a reply header fits).
 */
size_t fuse_serve_copied(struct fuse_server *srv, struct fuse_worker *w, const struct iovec *wr, unsigned nwr,
                         size_t wr_len);
/* fuse_request_copy, then fuse_serve_copied. */
size_t fuse_serve(struct fuse_server *srv, struct fuse_worker *w, const struct iovec *rd, unsigned nrd,
                  size_t rd_len, const struct iovec *wr, unsigned nwr, size_t wr_len);

/* Whether the copied request may block for long (SETLKW), so a transport should serve it off its queue thread. */
bool fuse_request_may_block(const struct fuse_worker *w);
/* The copied request as contiguous bytes (header and arguments) into buf, to be served later with fuse_serve on
 * another worker; returns its length, or 0 if it does not fit, carries WRITE data or was malformed. */
size_t fuse_request_save(const struct fuse_worker *w, void *buf, size_t max);

/* Writes an error reply (negative errno) to the copied request without serving it; returns the reply's size. */
size_t fuse_reply_error(const struct fuse_worker *w, const struct iovec *wr, unsigned nwr, size_t wr_len, int error);

/* Live migration (fuse_state.c): the session and the file system's state as bytes, from a server whose device
 * is stopped (*buf malloc'ed); and loaded into a server the guest has not used yet (hostile bytes: checked).
 * A failed load leaves the server and its file system as new. */
int fuse_server_state_save(struct fuse_server *srv, void **buf, size_t *len);
int fuse_server_state_load(struct fuse_server *srv, const void *buf, size_t len);

/* The negotiated FUSE minor version (0 before INIT). */
uint32_t fuse_server_minor(const struct fuse_server *srv);

#endif

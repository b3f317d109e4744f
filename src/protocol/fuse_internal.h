/* Inside the protocol room: the request being served, the reply helpers, and each opcode's handler. */
#ifndef VUFS_FUSE_INTERNAL_H
#define VUFS_FUSE_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "fs/fs.h"
#include "protocol/fuse_abi.h"
#include "protocol/fuse_server.h"

/* The largest request we copy (SETXATTR: a 64 KiB value, a name, headers) and reply we build (READDIR,
 * GETXATTR, LISTXATTR). WRITE data and READ data are not copied: they go straight between guest memory and
 * the file. */
#define FUSE_REQ_COPY_MAX (128u * 1024)
#define FUSE_REPLY_BUF_MAX (128u * 1024)

struct fuse_server {
	const struct fs_ops *ops;
	struct fs *fs;
	struct fuse_server_opts opts;
	/* Written by INIT and DESTROY, which the kernel sends alone (nothing else is in flight); read by every
	 * request. INIT and DESTROY write under state_lock and publish with a release store of
	 * initialised; requests read initialised with an acquire load (no lock on the per-request path). */
	pthread_mutex_t state_lock;
	bool initialised;
	uint32_t minor;
	uint64_t flags;       /* negotiated FUSE_* init flags */
	uint32_t max_write;
};

struct fuse_worker {
	/* The request as fuse_request_copy took it out of guest memory: every decision about it is made from
	 * these bytes, never from a second read of the guest's (which it may have changed meanwhile). */
	struct fuse_in_header hdr;
	size_t arg_len;       /* argument bytes in in[] */
	size_t ext_len;       /* extension bytes in in[], right after the arguments (total_extlen words) */
	unsigned ndata;       /* WRITE payload: iov[0..ndata) still in guest memory (data, not decisions) */
	size_t data_len;
	size_t rd_len;        /* the request's length as it arrived */
	int frame_err;        /* 0, or why the request could not be framed (the reply says it) */
	/* Both buffers hold wire structs (8-byte aligned members) at their start. */
	uint8_t in[FUSE_REQ_COPY_MAX] __attribute__((aligned(8)));
	uint8_t out[FUSE_REPLY_BUF_MAX] __attribute__((aligned(8)));
	unsigned max_segs;
	struct iovec *iov;    /* max_segs + 2 entries: WRITE payload or READ destination */
};

/* Calls operation op of the file system the server serves: FS_CALL(srv, lookup, ctx, parent, name, &e). */
#define FS_CALL(srv, op, ...) ((srv)->ops->op((srv)->fs, ##__VA_ARGS__))

/* One request being served. Arguments are read through a bounds-checked cursor over the private copy. */
struct fuse_req {
	struct fuse_server *srv;
	struct fuse_worker *w;
	struct fuse_in_header in;
	const uint8_t *arg;
	size_t arg_len, pos;
	const uint8_t *ext;       /* the extensions (fuse_ext_header records), ext_len bytes, not aligned;
	                           * decoded by req_parse_extensions */
	size_t ext_len;
	const struct iovec *data; /* WRITE payload in guest memory */
	unsigned ndata;
	size_t data_len;
	const struct iovec *wr;   /* reply space */
	unsigned nwr;
	size_t wr_len;
	struct fs_ctx ctx;
	size_t reply_len;         /* set by the reply helpers */
	int arg_err;              /* why the last req_take_* failed: -EINVAL or -ENAMETOOLONG */
};

const void *req_take(struct fuse_req *r, size_t n);
/* A name: NUL-terminated within the arguments, not empty, no '/', at most NAME_MAX bytes. NULL if not. */
const char *req_take_name(struct fuse_req *r);
/* A NUL-terminated string of at most max bytes (symlink targets, xattr names). */
const char *req_take_string(struct fuse_req *r, size_t max);
size_t req_remaining(const struct fuse_req *r);
/* fuse_ext.c: checks every extension of a creating request and takes what this session agreed to (the
 * supplementary group, the new node's security context) into ctx. 0, or -EINVAL for a malformed one. */
int req_parse_extensions(struct fuse_req *r);
/* The caller's umask from a creating request, into ctx when the guest leaves it to the server. */
void req_take_umask(struct fuse_req *r, uint32_t umask);

void reply_err(struct fuse_req *r, int neg_errno);
void reply_ok(struct fuse_req *r, const void *payload, size_t len);
/* Header, then the first part from a buffer and the second part already placed in wr after them. */
void reply_with_placed_data(struct fuse_req *r, size_t placed);
void reply_none(struct fuse_req *r);
/* Encoders */
void fill_attr(struct fuse_attr *a, const struct stat *st);
void fill_entry(const struct fuse_server *srv, struct fuse_entry_out *o, const struct fs_entry *e);
void fill_attr_out(const struct fuse_server *srv, uint64_t nodeid, struct fuse_attr_out *o, const struct stat *st);
/* Every FUSE_* INIT flag this server may agree to (what it offers, plus the DAX window's when it has one). */
uint64_t fuse_session_flags_allowed(const struct fuse_server *srv);
/* Tells the file system what a session agreed (at INIT, and when a migrated session is loaded). */
void fuse_session_to_fs(struct fuse_server *srv, uint64_t flags);
void fill_statx_out(const struct fuse_server *srv, uint64_t nodeid, struct fuse_statx_out *o, const struct stat *st,
                    const struct fs_btime *bt);
/* FOPEN_* for an open of nodeid, from the fs's policy. */
uint32_t open_reply_flags(const struct fuse_server *srv, uint64_t nodeid, bool dir);

typedef void (*fuse_op_fn)(struct fuse_req *r);

/* fuse_ops_node.c */
void op_lookup(struct fuse_req *r);
void op_forget(struct fuse_req *r);
void op_batch_forget(struct fuse_req *r);
void op_getattr(struct fuse_req *r);
void op_statx(struct fuse_req *r);
void op_setattr(struct fuse_req *r);
void op_readlink(struct fuse_req *r);
void op_symlink(struct fuse_req *r);
void op_mknod(struct fuse_req *r);
void op_mkdir(struct fuse_req *r);
void op_unlink(struct fuse_req *r);
void op_rmdir(struct fuse_req *r);
void op_rename(struct fuse_req *r);
void op_rename2(struct fuse_req *r);
void op_link(struct fuse_req *r);
void op_statfs(struct fuse_req *r);
void op_access(struct fuse_req *r);
/* fuse_ops_file.c */
void op_open(struct fuse_req *r);
void op_create(struct fuse_req *r);
void op_tmpfile(struct fuse_req *r);
void op_read(struct fuse_req *r);
void op_write(struct fuse_req *r);
void op_flush(struct fuse_req *r);
void op_release(struct fuse_req *r);
void op_fsync(struct fuse_req *r);
void op_fallocate(struct fuse_req *r);
void op_lseek(struct fuse_req *r);
void op_copy_file_range(struct fuse_req *r);
void op_copy_file_range_64(struct fuse_req *r);
void op_getlk(struct fuse_req *r);
void op_setlk(struct fuse_req *r);
void op_syncfs(struct fuse_req *r);
/* fuse_ops_dir.c */
void op_opendir(struct fuse_req *r);
void op_readdir(struct fuse_req *r);
void op_readdirplus(struct fuse_req *r);
void op_releasedir(struct fuse_req *r);
void op_fsyncdir(struct fuse_req *r);
/* fuse_ops_dax.c */
void op_setupmapping(struct fuse_req *r);
void op_removemapping(struct fuse_req *r);
/* fuse_ops_xattr.c */
void op_setxattr(struct fuse_req *r);
void op_getxattr(struct fuse_req *r);
void op_listxattr(struct fuse_req *r);
void op_removexattr(struct fuse_req *r);

#endif

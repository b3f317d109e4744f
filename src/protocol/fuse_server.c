/* The session (INIT, DESTROY) and the one place each request is framed, validated and dispatched. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "protocol/fuse_internal.h"

#define DEFAULT_MAX_WRITE (1u << 20)
#define PAGE_BYTES 4096u
#define DAX_MAP_ALIGNMENT 21 /* log2(FS_DAX_RANGE) */
/* The guest enforces ACLs itself, leaves the umask to us (a default ACL replaces it) and says when setting an
 * access ACL must clear S_ISGID: virtiofsd asks for all three or none. */
#define POSIX_ACL_FLAGS (FUSE_POSIX_ACL | FUSE_DONT_MASK | FUSE_SETXATTR_EXT)

int fuse_server_new(const struct fs_ops *ops, struct fs *fs, const struct fuse_server_opts *opts,
                    struct fuse_server **out)
{
	struct fuse_server *srv = calloc(1, sizeof(*srv));
	if (!srv)
		return -ENOMEM;
	srv->ops = ops;
	srv->fs = fs;
	srv->opts = *opts;
	if (!srv->opts.max_write)
		srv->opts.max_write = DEFAULT_MAX_WRITE;
	pthread_mutex_init(&srv->state_lock, NULL);
	*out = srv;
	return 0;
}

void fuse_server_free(struct fuse_server *srv)
{
	if (!srv)
		return;
	pthread_mutex_destroy(&srv->state_lock);
	free(srv);
}

struct fuse_worker *fuse_worker_new(unsigned max_segs)
{
	struct fuse_worker *w = malloc(sizeof(*w));
	if (!w)
		return NULL;
	w->max_segs = max_segs;
	w->iov = calloc(max_segs + 2, sizeof(*w->iov));
	if (!w->iov) {
		free(w);
		return NULL;
	}
	return w;
}

void fuse_worker_free(struct fuse_worker *w)
{
	if (!w)
		return;
	free(w->iov);
	free(w);
}

uint32_t fuse_server_minor(const struct fuse_server *srv)
{
	pthread_mutex_lock((pthread_mutex_t *)&srv->state_lock);
	uint32_t m = srv->initialised ? srv->minor : 0;
	pthread_mutex_unlock((pthread_mutex_t *)&srv->state_lock);
	return m;
}

/*
 * What we offer, each only when served. Not offered (README, "FUSE protocol"): FUSE_HAS_EXPIRE_ONLY,
 * FUSE_HAS_RESEND (notifications: Linux's virtio-fs driver has no notification queue), FUSE_PASSTHROUGH and
 * FUSE_OVER_IO_URING (/dev/fuse only), FUSE_NO_EXPORT_SUPPORT, FUSE_ALLOW_IDMAP. FUSE_REQUEST_TIMEOUT only when
 * asked (--request-timeout, refused with host locks: a SETLKW may rightly wait longer than any timeout, which
 * would abort the whole connection).
 */
static uint64_t supported_flags(const struct fuse_server *srv)
{
	const struct fuse_server_opts *o = &srv->opts;
	uint64_t f = FUSE_ASYNC_READ | FUSE_ATOMIC_O_TRUNC | FUSE_BIG_WRITES | FUSE_ASYNC_DIO |
	             FUSE_PARALLEL_DIROPS | FUSE_MAX_PAGES | FUSE_INIT_EXT | FUSE_CACHE_SYMLINKS |
	             FUSE_CREATE_SUPP_GROUP;
	if (FS_CALL(srv, caches_data))
		f |= FUSE_AUTO_INVAL_DATA;
	if (o->readdirplus)
		f |= FUSE_DO_READDIRPLUS | FUSE_READDIRPLUS_AUTO;
	if (o->writeback)
		f |= FUSE_WRITEBACK_CACHE;
	if (o->posix_lock)
		f |= FUSE_POSIX_LOCKS;
	if (o->flock)
		f |= FUSE_FLOCK_LOCKS;
	if (o->allow_mmap)
		f |= FUSE_DIRECT_IO_ALLOW_MMAP;
	if (o->killpriv_v2)
		f |= FUSE_HANDLE_KILLPRIV_V2;
	if (o->announce_submounts)
		f |= FUSE_SUBMOUNTS;
	if (o->posix_acl)
		f |= POSIX_ACL_FLAGS;
	if (o->security_label)
		f |= FUSE_SECURITY_CTX;
	if (o->request_timeout)
		f |= FUSE_REQUEST_TIMEOUT;
	return f;
}

/* What an option promises and the guest cannot do fails INIT (=always), as in virtiofsd: a guest that cannot enforce ACLs
 * would let every caller past them, one that sends no security context would leave new nodes unlabelled. */
static bool missing_required(const struct fuse_server *srv, uint64_t offered)
{
	if (srv->opts.posix_acl_required && (offered & POSIX_ACL_FLAGS) != POSIX_ACL_FLAGS) {
		log_err("FUSE: --posix-acl, but the guest does not offer POSIX_ACL, DONT_MASK and SETXATTR_EXT");
		return true;
	}
	if (srv->opts.security_label_required && !(offered & FUSE_SECURITY_CTX)) {
		log_err("FUSE: --security-label, but the guest does not offer FUSE_SECURITY_CTX");
		return true;
	}
	return false;
}

uint64_t fuse_session_flags_allowed(const struct fuse_server *srv)
{
	uint64_t f = supported_flags(srv);
	if (FS_CALL(srv, dax_window))
		f |= FUSE_MAP_ALIGNMENT | FUSE_HAS_INODE_DAX;
	return f;
}

void fuse_session_to_fs(struct fuse_server *srv, uint64_t flags)
{
	struct fs_session s = { .guest_caches_writes = flags & FUSE_WRITEBACK_CACHE,
	                        .dax_per_inode = flags & FUSE_HAS_INODE_DAX,
	                        .posix_acl = (flags & POSIX_ACL_FLAGS) == POSIX_ACL_FLAGS };
	FS_CALL(srv, session_start, &s);
}

static void op_init(struct fuse_req *r)
{
	struct fuse_server *srv = r->srv;
	const struct fuse_init_in *in = req_take(r, offsetof(struct fuse_init_in, flags2));
	struct fuse_init_out out = { .major = FUSE_KERNEL_VERSION, .minor = VUFS_FUSE_MINOR };

	if (!in) {
		reply_err(r, -EINVAL);
		return;
	}
	if (in->major < 7) {
		log_err("FUSE: the guest speaks protocol %u.%u, too old", in->major, in->minor);
		reply_err(r, -EPROTO);
		return;
	}
	if (in->major > 7) {
		/* Tell the kernel our major; it answers with a 7.x INIT. */
		reply_ok(r, &out, offsetof(struct fuse_init_out, max_readahead) + sizeof(out.max_readahead));
		return;
	}
	uint64_t offered = in->flags;
	if ((in->flags & FUSE_INIT_EXT) && req_remaining(r) >= sizeof(uint32_t)) {
		const uint32_t *flags2 = req_take(r, sizeof(uint32_t));
		offered |= (uint64_t)*flags2 << 32;
	}
	uint64_t flags = offered & supported_flags(srv);
	if ((flags & POSIX_ACL_FLAGS) != POSIX_ACL_FLAGS)
		flags &= ~POSIX_ACL_FLAGS; /* ACLs take all three (--posix-acl=auto, a guest without them: none) */
	if (missing_required(srv, offered)) {
		reply_err(r, -EPROTO);
		return;
	}
	uint32_t minor = MIN(in->minor, (uint32_t)VUFS_FUSE_MINOR);
	uint32_t max_write = srv->opts.max_write;

	if (FS_CALL(srv, dax_window)) {
		/* Every offset in the window and the file is then a multiple of 2 MiB: Linux's only unit. */
		if (offered & FUSE_MAP_ALIGNMENT) {
			flags |= FUSE_MAP_ALIGNMENT;
			out.map_alignment = DAX_MAP_ALIGNMENT;
		}
		flags |= offered & FUSE_HAS_INODE_DAX;
	}
	/* A new session: whatever the window held belonged to the last one (the device was reset since). */
	fuse_session_to_fs(srv, flags);

	out.minor = minor;
	out.max_readahead = in->max_readahead;
	out.flags = (uint32_t)flags;
	out.flags2 = (uint32_t)(flags >> 32);
	out.max_write = max_write;
	out.time_gran = 1;
	out.max_pages = (uint16_t)MIN(max_write / PAGE_BYTES, 0xffffu);
	out.max_background = 64;
	out.congestion_threshold = 48;
	if (flags & FUSE_REQUEST_TIMEOUT) {
		struct fuse_init_out_tail tail = { .request_timeout = srv->opts.request_timeout };
		memcpy((uint8_t *)&out + FUSE_INIT_OUT_TAIL_OFFSET, &tail, sizeof(tail));
	}

	pthread_mutex_lock(&srv->state_lock);
	srv->minor = minor;
	srv->flags = flags;
	srv->max_write = max_write;
	__atomic_store_n(&srv->initialised, true, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&srv->state_lock);
	log_info("FUSE: guest protocol %u.%u, agreed 7.%u, flags 0x%llx, max_write %u", in->major, in->minor, minor,
	         (unsigned long long)flags, max_write);
	/* Replies older than 7.23 end before time_gran. */
	reply_ok(r, &out, minor < 23 ? 24 : sizeof(out));
}

static void op_destroy(struct fuse_req *r)
{
	pthread_mutex_lock(&r->srv->state_lock);
	__atomic_store_n(&r->srv->initialised, false, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&r->srv->state_lock);
	FS_CALL(r->srv, reset);
	reply_ok(r, NULL, 0);
}

static void op_enosys(struct fuse_req *r)
{
	reply_err(r, -ENOSYS);
}

static void op_no_reply(struct fuse_req *r)
{
	reply_none(r);
}

static const fuse_op_fn ops[] = {
	[FUSE_LOOKUP] = op_lookup,
	[FUSE_FORGET] = op_forget,
	[FUSE_GETATTR] = op_getattr,
	[FUSE_SETATTR] = op_setattr,
	[FUSE_READLINK] = op_readlink,
	[FUSE_SYMLINK] = op_symlink,
	[FUSE_MKNOD] = op_mknod,
	[FUSE_MKDIR] = op_mkdir,
	[FUSE_UNLINK] = op_unlink,
	[FUSE_RMDIR] = op_rmdir,
	[FUSE_RENAME] = op_rename,
	[FUSE_LINK] = op_link,
	[FUSE_OPEN] = op_open,
	[FUSE_READ] = op_read,
	[FUSE_WRITE] = op_write,
	[FUSE_STATFS] = op_statfs,
	[FUSE_RELEASE] = op_release,
	[FUSE_FSYNC] = op_fsync,
	[FUSE_SETXATTR] = op_setxattr,
	[FUSE_GETXATTR] = op_getxattr,
	[FUSE_LISTXATTR] = op_listxattr,
	[FUSE_REMOVEXATTR] = op_removexattr,
	[FUSE_FLUSH] = op_flush,
	[FUSE_INIT] = op_init,
	[FUSE_OPENDIR] = op_opendir,
	[FUSE_READDIR] = op_readdir,
	[FUSE_RELEASEDIR] = op_releasedir,
	[FUSE_FSYNCDIR] = op_fsyncdir,
	[FUSE_GETLK] = op_getlk,
	[FUSE_SETLK] = op_setlk,
	[FUSE_SETLKW] = op_setlk,
	[FUSE_ACCESS] = op_access,
	[FUSE_CREATE] = op_create,
	[FUSE_INTERRUPT] = op_enosys,   /* nothing we run can be interrupted yet: the kernel stops sending them */
	[FUSE_BMAP] = op_enosys,
	[FUSE_DESTROY] = op_destroy,
	[FUSE_IOCTL] = op_enosys,
	[FUSE_POLL] = op_enosys,
	[FUSE_NOTIFY_REPLY] = op_no_reply,
	[FUSE_BATCH_FORGET] = op_batch_forget,
	[FUSE_FALLOCATE] = op_fallocate,
	[FUSE_READDIRPLUS] = op_readdirplus,
	[FUSE_RENAME2] = op_rename2,
	[FUSE_LSEEK] = op_lseek,
	[FUSE_COPY_FILE_RANGE] = op_copy_file_range,
	[FUSE_SETUPMAPPING] = op_setupmapping,
	[FUSE_REMOVEMAPPING] = op_removemapping,
	[FUSE_SYNCFS] = op_syncfs,
	[FUSE_TMPFILE] = op_tmpfile,
	[FUSE_STATX] = op_statx,
	[FUSE_COPY_FILE_RANGE_64] = op_copy_file_range_64,
};

static size_t copy_in(const struct iovec *iov, unsigned n, size_t off, void *dst, size_t len)
{
	size_t done = 0;
	for (unsigned i = 0; i < n && done < len; i++) {
		size_t seg = iov[i].iov_len;
		if (off >= seg) {
			off -= seg;
			continue;
		}
		size_t k = MIN(seg - off, len - done);
		memcpy((uint8_t *)dst + done, (const uint8_t *)iov[i].iov_base + off, k);
		done += k;
		off = 0;
	}
	return done;
}

/* Points w->iov at [off, off+len) of the given segments; returns the count, or -1 if it needs too many. */
static int slice_iov(struct fuse_worker *w, const struct iovec *iov, unsigned n, size_t off, size_t len)
{
	unsigned k = 0;
	for (unsigned i = 0; i < n && len > 0; i++) {
		size_t seg = iov[i].iov_len;
		if (off >= seg) {
			off -= seg;
			continue;
		}
		if (k == w->max_segs + 2)
			return -1;
		size_t take = MIN(seg - off, len);
		w->iov[k].iov_base = (uint8_t *)iov[i].iov_base + off;
		w->iov[k].iov_len = take;
		k++;
		len -= take;
		off = 0;
	}
	return (int)k;
}

/* Copies the header and arguments out of guest memory, once (WRITE: all but the data, which stays where it is). */
static int frame_request(struct fuse_worker *w, const struct iovec *rd, unsigned nrd, size_t rd_len)
{
	size_t fixed;

	w->arg_len = w->ext_len = w->data_len = 0;
	w->ndata = 0;
	w->rd_len = rd_len;
	memset(&w->hdr, 0, sizeof(w->hdr));
	if (rd_len < sizeof(w->hdr) || copy_in(rd, nrd, 0, &w->hdr, sizeof(w->hdr)) != sizeof(w->hdr))
		return -EINVAL;
	/* Extensions (7.38) end the request: total_extlen counts their 8-byte words, all within what arrived. */
	size_t ext_len = (size_t)w->hdr.total_extlen * 8;
	if (w->hdr.len != rd_len || ext_len > rd_len - sizeof(w->hdr))
		return -EINVAL;
	fixed = rd_len - sizeof(w->hdr) - ext_len;
	if (w->hdr.opcode == FUSE_WRITE) {
		if (ext_len)
			return -EINVAL; /* the kernel extends only requests that create */
		fixed = MIN(fixed, sizeof(struct fuse_write_in));
		w->data_len = rd_len - sizeof(w->hdr) - fixed;
		int n = slice_iov(w, rd, nrd, sizeof(w->hdr) + fixed, w->data_len);
		if (n < 0)
			return -E2BIG;
		w->ndata = (unsigned)n;
	} else if (fixed + ext_len > FUSE_REQ_COPY_MAX) {
		return -E2BIG;
	}
	copy_in(rd, nrd, sizeof(w->hdr), w->in, fixed + ext_len);
	w->arg_len = fixed;
	w->ext_len = ext_len;
	return 0;
}

/* Every request asks: an acquire load, no lock, so queues never serialise on it. */
static bool is_initialised(struct fuse_server *srv)
{
	return __atomic_load_n(&srv->initialised, __ATOMIC_ACQUIRE);
}

void fuse_request_copy(struct fuse_worker *w, const struct iovec *rd, unsigned nrd, size_t rd_len)
{
	w->frame_err = frame_request(w, rd, nrd, rd_len);
}

static struct fuse_req req_of(struct fuse_server *srv, struct fuse_worker *w, const struct iovec *wr, unsigned nwr,
                              size_t wr_len)
{
	return (struct fuse_req){ .srv = srv, .w = w, .in = w->hdr, .arg = w->in, .arg_len = w->arg_len,
	                          .ext = w->in + w->arg_len, .ext_len = w->ext_len,
	                          .data = w->iov, .ndata = w->ndata, .data_len = w->data_len, .wr = wr, .nwr = nwr,
	                          .wr_len = wr_len, .arg_err = -EINVAL,
	                          .ctx = { .uid = w->hdr.uid, .gid = w->hdr.gid, .pid = w->hdr.pid } };
}

size_t fuse_serve_copied(struct fuse_server *srv, struct fuse_worker *w, const struct iovec *wr, unsigned nwr,
                         size_t wr_len)
{
	struct fuse_req r = req_of(srv, w, wr, nwr, wr_len);

	if (w->frame_err < 0) {
		log_warn("FUSE: malformed request (opcode %u, %zu bytes): %s", r.in.opcode, w->rd_len,
		         strerror(-w->frame_err));
		reply_err(&r, w->frame_err);
		return r.reply_len;
	}
	uint32_t op = r.in.opcode;
	int err;
	fuse_op_fn fn = op < ARRAY_SIZE(ops) ? ops[op] : NULL;
	if (!fn) {
		log_debug("FUSE: opcode %u is not implemented", op);
		reply_err(&r, -ENOSYS);
	} else if (op != FUSE_INIT && !is_initialised(srv)) {
		if (op == FUSE_FORGET || op == FUSE_BATCH_FORGET)
			reply_none(&r);
		else
			reply_err(&r, -EIO);
	} else if ((err = req_parse_extensions(&r)) < 0) {
		log_warn("FUSE: malformed extension (opcode %u, %zu bytes)", op, r.ext_len);
		reply_err(&r, err);
	} else {
		fn(&r);
	}
	return r.reply_len;
}

size_t fuse_serve(struct fuse_server *srv, struct fuse_worker *w, const struct iovec *rd, unsigned nrd,
                  size_t rd_len, const struct iovec *wr, unsigned nwr, size_t wr_len)
{
	fuse_request_copy(w, rd, nrd, rd_len);
	return fuse_serve_copied(srv, w, wr, nwr, wr_len);
}

bool fuse_request_may_block(const struct fuse_worker *w)
{
	return w->frame_err == 0 && w->hdr.opcode == FUSE_SETLKW;
}

size_t fuse_request_save(const struct fuse_worker *w, void *buf, size_t max)
{
	size_t n = sizeof(w->hdr) + w->arg_len + w->ext_len;
	if (w->frame_err < 0 || w->ndata || n > max)
		return 0;
	memcpy(buf, &w->hdr, sizeof(w->hdr));
	memcpy((uint8_t *)buf + sizeof(w->hdr), w->in, w->arg_len + w->ext_len);
	return n;
}

size_t fuse_reply_error(const struct fuse_worker *w, const struct iovec *wr, unsigned nwr, size_t wr_len, int error)
{
	struct fuse_req r = { .in = w->hdr, .wr = wr, .nwr = nwr, .wr_len = wr_len };
	reply_err(&r, error);
	return r.reply_len;
}

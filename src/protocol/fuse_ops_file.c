/* Opcodes on open files: open/create, data, sync, space, seek, locks. */
#include <errno.h>
#include <string.h>
#include <sys/file.h>

#include "common/util.h"
#include "protocol/fuse_internal.h"

#define TAKE(r, type) ((const type *)req_take((r), sizeof(type)))

static void reply_open(struct fuse_req *r, int rc, uint64_t fh, bool dir)
{
	struct fuse_open_out out = { .fh = fh };
	if (rc < 0)
		return reply_err(r, rc);
	out.open_flags = open_reply_flags(r->srv, r->in.nodeid, dir);
	reply_ok(r, &out, sizeof(out));
}

void op_open(struct fuse_req *r)
{
	const struct fuse_open_in *in = TAKE(r, struct fuse_open_in);
	uint64_t fh = 0;
	if (!in)
		return reply_err(r, -EINVAL);
	int rc = FS_CALL(r->srv, open, &r->ctx, r->in.nodeid, (int)in->flags, &fh);
	reply_open(r, rc, fh, false);
}

static void reply_create(struct fuse_req *r, int rc, const struct fs_entry *e, uint64_t fh)
{
	struct {
		struct fuse_entry_out entry;
		struct fuse_open_out open;
	} out;
	if (rc < 0)
		return reply_err(r, rc);
	fill_entry(r->srv, &out.entry, e);
	memset(&out.open, 0, sizeof(out.open));
	out.open.fh = fh;
	out.open.open_flags = open_reply_flags(r->srv, e->nodeid, false);
	reply_ok(r, &out, sizeof(out));
}

void op_create(struct fuse_req *r)
{
	const struct fuse_create_in *in = TAKE(r, struct fuse_create_in);
	const char *name = in ? req_take_name(r) : NULL;
	struct fs_entry e;
	uint64_t fh = 0;
	if (!name)
		return reply_err(r, r->arg_err);
	req_take_umask(r, in->umask);
	int rc = FS_CALL(r->srv, create, &r->ctx, r->in.nodeid, name, in->mode, (int)in->flags,
	                   &e, &fh);
	reply_create(r, rc, &e, fh);
}

void op_tmpfile(struct fuse_req *r)
{
	const struct fuse_create_in *in = TAKE(r, struct fuse_create_in);
	struct fs_entry e;
	uint64_t fh = 0;
	if (!in)
		return reply_err(r, -EINVAL);
	req_take_umask(r, in->umask);
	int rc = FS_CALL(r->srv, tmpfile, &r->ctx, r->in.nodeid, in->mode, (int)in->flags, &e, &fh);
	reply_create(r, rc, &e, fh);
}

void op_read(struct fuse_req *r)
{
	const struct fuse_read_in *in = TAKE(r, struct fuse_read_in);
	const size_t hdr = sizeof(struct fuse_out_header);
	if (!in)
		return reply_err(r, -EINVAL);
	if (r->wr_len < hdr)
		return reply_none(r);
	size_t size = MIN((size_t)in->size, r->wr_len - hdr);
	size = MIN(size, (size_t)r->srv->max_write);
	/* Read straight into the reply buffers after the header. */
	struct iovec *dst = r->w->iov;
	unsigned n = 0;
	size_t skip = hdr, want = size;
	for (unsigned i = 0; i < r->nwr && want > 0 && n < r->w->max_segs + 2; i++) {
		size_t seg = r->wr[i].iov_len;
		if (skip >= seg) {
			skip -= seg;
			continue;
		}
		size_t take = MIN(seg - skip, want);
		dst[n].iov_base = (uint8_t *)r->wr[i].iov_base + skip;
		dst[n].iov_len = take;
		n++;
		want -= take;
		skip = 0;
	}
	ssize_t got = FS_CALL(r->srv, read, in->fh, in->offset, size - want, dst, n);
	if (got < 0)
		return reply_err(r, (int)got);
	reply_with_placed_data(r, (size_t)got);
}

void op_write(struct fuse_req *r)
{
	const struct fuse_write_in *in = TAKE(r, struct fuse_write_in);
	struct fuse_write_out out = { 0 };
	if (!in)
		return reply_err(r, -EINVAL);
	if (in->size != r->data_len || in->size > r->srv->max_write)
		return reply_err(r, -EINVAL);
	bool kill = in->write_flags & FUSE_WRITE_KILL_SUIDGID;
	ssize_t n = FS_CALL(r->srv, write, &r->ctx, in->fh, in->offset, r->data, r->ndata, kill);
	if (n < 0)
		return reply_err(r, (int)n);
	out.size = (uint32_t)n;
	reply_ok(r, &out, sizeof(out));
}

void op_flush(struct fuse_req *r)
{
	const struct fuse_flush_in *in = TAKE(r, struct fuse_flush_in);
	if (!in)
		return reply_err(r, -EINVAL);
	reply_err(r, FS_CALL(r->srv, flush, r->in.nodeid, in->fh, in->lock_owner));
}

void op_release(struct fuse_req *r)
{
	const struct fuse_release_in *in = TAKE(r, struct fuse_release_in);
	if (!in)
		return reply_err(r, -EINVAL);
	bool flock = in->release_flags & FUSE_RELEASE_FLOCK_UNLOCK;
	reply_err(r, FS_CALL(r->srv, release, r->in.nodeid, in->fh, flock, in->lock_owner));
}

void op_fsync(struct fuse_req *r)
{
	const struct fuse_fsync_in *in = TAKE(r, struct fuse_fsync_in);
	if (!in)
		return reply_err(r, -EINVAL);
	reply_err(r, FS_CALL(r->srv, fsync, r->in.nodeid, in->fh, in->fsync_flags & FUSE_FSYNC_FDATASYNC));
}

void op_fallocate(struct fuse_req *r)
{
	const struct fuse_fallocate_in *in = TAKE(r, struct fuse_fallocate_in);
	if (!in)
		return reply_err(r, -EINVAL);
	reply_err(r, FS_CALL(r->srv, fallocate, r->in.nodeid, in->fh, (int)in->mode, in->offset, in->length));
}

void op_lseek(struct fuse_req *r)
{
	const struct fuse_lseek_in *in = TAKE(r, struct fuse_lseek_in);
	struct fuse_lseek_out out = { 0 };
	if (!in)
		return reply_err(r, -EINVAL);
	int64_t off = FS_CALL(r->srv, lseek, r->in.nodeid, in->fh, (int64_t)in->offset, (int)in->whence);
	if (off < 0)
		return reply_err(r, (int)off);
	out.offset = (uint64_t)off;
	reply_ok(r, &out, sizeof(out));
}

static ssize_t copy_range(struct fuse_req *r, const struct fuse_copy_file_range_in *in, size_t len)
{
	return FS_CALL(r->srv, copy_file_range, in->fh_in, in->off_in, in->fh_out, in->off_out, len,
	               (unsigned)in->flags);
}

void op_copy_file_range(struct fuse_req *r)
{
	const struct fuse_copy_file_range_in *in = TAKE(r, struct fuse_copy_file_range_in);
	struct fuse_write_out out = { 0 };
	if (!in)
		return reply_err(r, -EINVAL);
	size_t len = (size_t)MIN(in->len, (uint64_t)UINT32_MAX); /* the reply carries a 32-bit count */
	ssize_t n = copy_range(r, in, len);
	if (n < 0)
		return reply_err(r, (int)n);
	out.size = (uint32_t)n;
	reply_ok(r, &out, sizeof(out));
}

/* 7.45: the same copy, with a 64-bit count both ways (Linux sends it first and falls back on ENOSYS). */
void op_copy_file_range_64(struct fuse_req *r)
{
	const struct fuse_copy_file_range_in *in = TAKE(r, struct fuse_copy_file_range_in);
	struct fuse_copy_file_range_out out = { 0 };
	if (!in)
		return reply_err(r, -EINVAL);
	/* Short counts are allowed: no further than offset INT64_MAX (the fs refuses a range past it). */
	uint64_t last = MAX(in->off_in, in->off_out);
	size_t len = (size_t)(last <= INT64_MAX ? MIN(in->len, (uint64_t)INT64_MAX - last) : in->len);
	ssize_t n = copy_range(r, in, len);
	if (n < 0)
		return reply_err(r, (int)n);
	out.bytes_copied = (uint64_t)n;
	reply_ok(r, &out, sizeof(out));
}

void op_syncfs(struct fuse_req *r)
{
	reply_err(r, FS_CALL(r->srv, syncfs));
}

/* FUSE ranges are inclusive [start, end] with end = OFFSET_MAX for "to EOF"; struct flock uses a length. */
#define FUSE_OFFSET_MAX 0x7fffffffffffffffULL

static int to_flock(const struct fuse_file_lock *fl, struct flock *lk)
{
	if (fl->start > FUSE_OFFSET_MAX || fl->end > FUSE_OFFSET_MAX || fl->end < fl->start)
		return -EINVAL;
	if (fl->type != F_RDLCK && fl->type != F_WRLCK && fl->type != F_UNLCK)
		return -EINVAL;
	memset(lk, 0, sizeof(*lk));
	lk->l_type = (short)fl->type;
	lk->l_whence = SEEK_SET;
	lk->l_start = (off_t)fl->start;
	lk->l_len = fl->end == FUSE_OFFSET_MAX ? 0 : (off_t)(fl->end - fl->start + 1);
	lk->l_pid = (pid_t)fl->pid;
	return 0;
}

static void from_flock(const struct flock *lk, struct fuse_file_lock *fl)
{
	fl->type = (uint32_t)lk->l_type;
	fl->start = (uint64_t)lk->l_start;
	fl->end = lk->l_len == 0 ? FUSE_OFFSET_MAX : (uint64_t)(lk->l_start + lk->l_len - 1);
	fl->pid = lk->l_type == F_UNLCK ? 0 : (uint32_t)lk->l_pid;
}

void op_getlk(struct fuse_req *r)
{
	const struct fuse_lk_in *in = TAKE(r, struct fuse_lk_in);
	struct fuse_lk_out out;
	struct flock lk;
	if (!in)
		return reply_err(r, -EINVAL);
	int rc = to_flock(&in->lk, &lk);
	if (rc == 0)
		rc = FS_CALL(r->srv, getlk, r->in.nodeid, in->fh, in->owner, &lk);
	if (rc < 0)
		return reply_err(r, rc);
	memset(&out, 0, sizeof(out));
	from_flock(&lk, &out.lk);
	reply_ok(r, &out, sizeof(out));
}

void op_setlk(struct fuse_req *r)
{
	const struct fuse_lk_in *in = TAKE(r, struct fuse_lk_in);
	bool sleep = r->in.opcode == FUSE_SETLKW;
	struct flock lk;
	if (!in)
		return reply_err(r, -EINVAL);
	if (in->lk_flags & FUSE_LK_FLOCK) {
		int op;
		switch (in->lk.type) {
		case F_RDLCK: op = LOCK_SH; break;
		case F_WRLCK: op = LOCK_EX; break;
		case F_UNLCK: op = LOCK_UN; break;
		default: return reply_err(r, -EINVAL);
		}
		return reply_err(r, FS_CALL(r->srv, flock, r->in.nodeid, in->fh, sleep ? op : op | LOCK_NB));
	}
	int rc = to_flock(&in->lk, &lk);
	if (rc == 0)
		rc = FS_CALL(r->srv, setlk, r->in.nodeid, in->fh, in->owner, &lk, sleep);
	reply_err(r, rc);
}

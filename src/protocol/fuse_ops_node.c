/* Opcodes about names and inodes: lookup, attributes, creating and removing names. */
#include <errno.h>
#include <limits.h>
#include <stdio.h> /* RENAME_* */
#include <string.h>

#include "protocol/fuse_internal.h"

#define TAKE(r, type) ((const type *)req_take((r), sizeof(type)))

static void reply_entry(struct fuse_req *r, int rc, const struct fs_entry *e)
{
	struct fuse_entry_out out;
	if (rc < 0) {
		reply_err(r, rc);
		return;
	}
	fill_entry(r->srv, &out, e);
	reply_ok(r, &out, sizeof(out));
}

static void reply_attr(struct fuse_req *r, int rc, const struct stat *st)
{
	struct fuse_attr_out out;
	if (rc < 0) {
		reply_err(r, rc);
		return;
	}
	fill_attr_out(r->srv, r->in.nodeid, &out, st);
	reply_ok(r, &out, sizeof(out));
}

void op_lookup(struct fuse_req *r)
{
	const char *name = req_take_name(r);
	struct fs_entry e;
	if (!name)
		return reply_err(r, r->arg_err);
	reply_entry(r, FS_CALL(r->srv, lookup, &r->ctx, r->in.nodeid, name, &e), &e);
}

void op_forget(struct fuse_req *r)
{
	const struct fuse_forget_in *in = TAKE(r, struct fuse_forget_in);
	if (in)
		FS_CALL(r->srv, forget, r->in.nodeid, in->nlookup);
	reply_none(r);
}

void op_batch_forget(struct fuse_req *r)
{
	const struct fuse_batch_forget_in *in = TAKE(r, struct fuse_batch_forget_in);
	if (in) {
		for (uint32_t i = 0; i < in->count; i++) {
			const struct fuse_forget_one *one = TAKE(r, struct fuse_forget_one);
			if (!one)
				break; /* count larger than the bytes sent: forget what is there */
			FS_CALL(r->srv, forget, one->nodeid, one->nlookup);
		}
	}
	reply_none(r);
}

void op_getattr(struct fuse_req *r)
{
	const struct fuse_getattr_in *in = TAKE(r, struct fuse_getattr_in);
	struct stat st;
	if (!in)
		return reply_err(r, -EINVAL);
	uint64_t fh = (in->getattr_flags & FUSE_GETATTR_FH) ? in->fh : FS_NO_HANDLE;
	reply_attr(r, FS_CALL(r->srv, getattr, r->in.nodeid, fh, &st), &st);
}

/* Linux asks for it when a caller wants more than the basic stats (the birth time, STATX_BTIME). The guest's
 * sync flags are not needed: every answer is a fresh statx on the host. */
void op_statx(struct fuse_req *r)
{
	const struct fuse_statx_in *in = TAKE(r, struct fuse_statx_in);
	struct fuse_statx_out out;
	struct fs_btime bt = { 0 };
	struct stat st;
	if (!in)
		return reply_err(r, -EINVAL);
	uint64_t fh = (in->getattr_flags & FUSE_GETATTR_FH) ? in->fh : FS_NO_HANDLE;
	int ret = FS_CALL(r->srv, getattr_btime, r->in.nodeid, fh, &st, &bt);
	if (ret < 0)
		return reply_err(r, ret);
	fill_statx_out(r->srv, r->in.nodeid, &out, &st, &bt);
	reply_ok(r, &out, sizeof(out));
}

static void decode_setattr(const struct fuse_setattr_in *in, struct fs_setattr *sa)
{
	static const struct { uint32_t fattr; unsigned fs; } map[] = {
		{ FATTR_MODE, FS_SET_MODE }, { FATTR_UID, FS_SET_UID }, { FATTR_GID, FS_SET_GID },
		{ FATTR_SIZE, FS_SET_SIZE }, { FATTR_ATIME, FS_SET_ATIME }, { FATTR_MTIME, FS_SET_MTIME },
		{ FATTR_ATIME_NOW, FS_SET_ATIME_NOW }, { FATTR_MTIME_NOW, FS_SET_MTIME_NOW },
		{ FATTR_CTIME, FS_SET_CTIME }, { FATTR_KILL_SUIDGID, FS_SET_KILL_SUIDGID },
	};
	memset(sa, 0, sizeof(*sa));
	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (in->valid & map[i].fattr)
			sa->valid |= map[i].fs;
	sa->mode = in->mode;
	sa->uid = in->uid;
	sa->gid = in->gid;
	sa->size = in->size;
	sa->atime = (struct timespec){ (time_t)in->atime, in->atimensec };
	sa->mtime = (struct timespec){ (time_t)in->mtime, in->mtimensec };
	sa->ctime = (struct timespec){ (time_t)in->ctime, in->ctimensec };
}

void op_setattr(struct fuse_req *r)
{
	const struct fuse_setattr_in *in = TAKE(r, struct fuse_setattr_in);
	struct fs_setattr sa;
	struct stat st;
	if (!in)
		return reply_err(r, -EINVAL);
	if ((in->valid & FATTR_ATIME_NOW && !(in->valid & FATTR_ATIME)) ||
	    (in->valid & FATTR_MTIME_NOW && !(in->valid & FATTR_MTIME)) ||
	    in->atimensec >= 1000000000u || in->mtimensec >= 1000000000u || in->ctimensec >= 1000000000u)
		return reply_err(r, -EINVAL);
	decode_setattr(in, &sa);
	uint64_t fh = (in->valid & FATTR_FH) ? in->fh : FS_NO_HANDLE;
	reply_attr(r, FS_CALL(r->srv, setattr, &r->ctx, r->in.nodeid, fh, &sa, &st), &st);
}

void op_readlink(struct fuse_req *r)
{
	char *buf = (char *)r->w->out;
	ssize_t n = FS_CALL(r->srv, readlink, r->in.nodeid, buf, PATH_MAX);
	if (n < 0)
		return reply_err(r, (int)n);
	reply_ok(r, buf, (size_t)n);
}

void op_symlink(struct fuse_req *r)
{
	const char *name = req_take_name(r);
	const char *target = name ? req_take_string(r, PATH_MAX - 1) : NULL;
	struct fs_entry e;
	if (!target || !*target)
		return reply_err(r, target && !*target ? -EINVAL : r->arg_err);
	reply_entry(r, FS_CALL(r->srv, symlink, &r->ctx, r->in.nodeid, name, target, &e), &e);
}

void op_mknod(struct fuse_req *r)
{
	const struct fuse_mknod_in *in = TAKE(r, struct fuse_mknod_in);
	const char *name = in ? req_take_name(r) : NULL;
	struct fs_entry e;
	if (!name)
		return reply_err(r, r->arg_err);
	req_take_umask(r, in->umask);
	reply_entry(r, FS_CALL(r->srv, mknod, &r->ctx, r->in.nodeid, name, in->mode, in->rdev, &e), &e);
}

void op_mkdir(struct fuse_req *r)
{
	const struct fuse_mkdir_in *in = TAKE(r, struct fuse_mkdir_in);
	const char *name = in ? req_take_name(r) : NULL;
	struct fs_entry e;
	if (!name)
		return reply_err(r, r->arg_err);
	req_take_umask(r, in->umask);
	reply_entry(r, FS_CALL(r->srv, mkdir, &r->ctx, r->in.nodeid, name, in->mode, &e), &e);
}

void op_unlink(struct fuse_req *r)
{
	const char *name = req_take_name(r);
	reply_err(r, name ? FS_CALL(r->srv, unlink, &r->ctx, r->in.nodeid, name) : r->arg_err);
}

void op_rmdir(struct fuse_req *r)
{
	const char *name = req_take_name(r);
	reply_err(r, name ? FS_CALL(r->srv, rmdir, &r->ctx, r->in.nodeid, name) : r->arg_err);
}

static void do_rename(struct fuse_req *r, uint64_t newdir, unsigned flags)
{
	const char *name = req_take_name(r);
	const char *newname = name ? req_take_name(r) : NULL;
	if (!newname)
		return reply_err(r, r->arg_err);
	if (flags & ~(unsigned)(RENAME_NOREPLACE | RENAME_EXCHANGE | RENAME_WHITEOUT))
		return reply_err(r, -EINVAL);
	reply_err(r, FS_CALL(r->srv, rename, &r->ctx, r->in.nodeid, name, newdir, newname, flags));
}

void op_rename(struct fuse_req *r)
{
	const struct fuse_rename_in *in = TAKE(r, struct fuse_rename_in);
	if (!in)
		return reply_err(r, -EINVAL);
	do_rename(r, in->newdir, 0);
}

void op_rename2(struct fuse_req *r)
{
	const struct fuse_rename2_in *in = TAKE(r, struct fuse_rename2_in);
	if (!in)
		return reply_err(r, -EINVAL);
	do_rename(r, in->newdir, in->flags);
}

void op_link(struct fuse_req *r)
{
	const struct fuse_link_in *in = TAKE(r, struct fuse_link_in);
	const char *name = in ? req_take_name(r) : NULL;
	struct fs_entry e;
	if (!name)
		return reply_err(r, r->arg_err);
	reply_entry(r, FS_CALL(r->srv, link, &r->ctx, in->oldnodeid, r->in.nodeid, name, &e), &e);
}

void op_statfs(struct fuse_req *r)
{
	struct statvfs sv;
	struct fuse_statfs_out out;
	int rc = FS_CALL(r->srv, statfs, r->in.nodeid, &sv);
	if (rc < 0)
		return reply_err(r, rc);
	memset(&out, 0, sizeof(out));
	out.st.blocks = sv.f_blocks;
	out.st.bfree = sv.f_bfree;
	out.st.bavail = sv.f_bavail;
	out.st.files = sv.f_files;
	out.st.ffree = sv.f_ffree;
	out.st.bsize = (uint32_t)sv.f_bsize;
	out.st.namelen = (uint32_t)sv.f_namemax;
	out.st.frsize = (uint32_t)sv.f_frsize;
	reply_ok(r, &out, sizeof(out));
}

void op_access(struct fuse_req *r)
{
	const struct fuse_access_in *in = TAKE(r, struct fuse_access_in);
	if (!in)
		return reply_err(r, -EINVAL);
	reply_err(r, FS_CALL(r->srv, access, &r->ctx, r->in.nodeid, (int)in->mask));
}

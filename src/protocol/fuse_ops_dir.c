/* Directory opcodes: entries are encoded straight into the reply buffer as the file system emits them. */
#include <errno.h>
#include <string.h>

#include "common/util.h"
#include "protocol/fuse_internal.h"

#define TAKE(r, type) ((const type *)req_take((r), sizeof(type)))

void op_opendir(struct fuse_req *r)
{
	const struct fuse_open_in *in = TAKE(r, struct fuse_open_in);
	struct fuse_open_out out = { 0 };
	uint64_t fh = 0;
	if (!in)
		return reply_err(r, -EINVAL);
	int rc = FS_CALL(r->srv, opendir, &r->ctx, r->in.nodeid, &fh);
	if (rc < 0)
		return reply_err(r, rc);
	out.fh = fh;
	out.open_flags = open_reply_flags(r->srv, r->in.nodeid, true);
	reply_ok(r, &out, sizeof(out));
}

struct dir_sink {
	struct fuse_req *r;
	uint8_t *buf;
	size_t cap, used;
};

static int put_dirent(void *arg, const char *name, size_t namelen, uint64_t ino, unsigned dtype, uint64_t next_off,
                      const struct fs_entry *plus)
{
	struct dir_sink *s = arg;
	size_t head = plus ? sizeof(struct fuse_direntplus) : sizeof(struct fuse_dirent);
	size_t need = FUSE_DIRENT_ALIGN(head + namelen);

	if (need > s->cap - s->used)
		return 1;
	uint8_t *p = s->buf + s->used;
	memset(p, 0, need);
	struct fuse_dirent *d;
	if (plus) {
		struct fuse_direntplus *dp = (struct fuse_direntplus *)p;
		if (plus->nodeid)
			fill_entry(s->r->srv, &dp->entry_out, plus);
		else
			fill_attr(&dp->entry_out.attr, &plus->st); /* "." and "..": attributes only, no reference */
		d = &dp->dirent;
	} else {
		d = (struct fuse_dirent *)p;
	}
	d->ino = ino;
	d->off = next_off;
	d->namelen = (uint32_t)namelen;
	d->type = dtype;
	memcpy(d->name, name, namelen);
	s->used += need;
	return 0;
}

static void do_readdir(struct fuse_req *r, bool plus)
{
	const struct fuse_read_in *in = TAKE(r, struct fuse_read_in);
	const size_t hdr = sizeof(struct fuse_out_header);
	if (!in)
		return reply_err(r, -EINVAL);
	if (r->wr_len <= hdr)
		return reply_err(r, -EINVAL);
	struct dir_sink s = { .r = r, .buf = r->w->out };
	s.cap = MIN(MIN((size_t)in->size, r->wr_len - hdr), sizeof(r->w->out));
	int rc = FS_CALL(r->srv, readdir, &r->ctx, r->in.nodeid, in->fh, in->offset, plus, put_dirent, &s);
	/* Entries already encoded are worth more than an error about a later one. */
	if (rc < 0 && s.used == 0)
		return reply_err(r, rc);
	reply_ok(r, s.buf, s.used);
}

void op_readdir(struct fuse_req *r)
{
	do_readdir(r, false);
}

void op_readdirplus(struct fuse_req *r)
{
	do_readdir(r, true);
}

void op_releasedir(struct fuse_req *r)
{
	const struct fuse_release_in *in = TAKE(r, struct fuse_release_in);
	if (!in)
		return reply_err(r, -EINVAL);
	reply_err(r, FS_CALL(r->srv, releasedir, r->in.nodeid, in->fh));
}

void op_fsyncdir(struct fuse_req *r)
{
	const struct fuse_fsync_in *in = TAKE(r, struct fuse_fsync_in);
	if (!in)
		return reply_err(r, -EINVAL);
	reply_err(r, FS_CALL(r->srv, fsyncdir, r->in.nodeid, in->fh, in->fsync_flags & FUSE_FSYNC_FDATASYNC));
}

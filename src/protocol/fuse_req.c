/* Reading a request's arguments and writing its reply: the only code that touches wire bytes. */
#include <errno.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "common/util.h"
#include "protocol/fuse_internal.h"

const void *req_take(struct fuse_req *r, size_t n)
{
	if (n > r->arg_len - r->pos)
		return NULL;
	const void *p = r->arg + r->pos;
	r->pos += n;
	return p;
}

size_t req_remaining(const struct fuse_req *r)
{
	return r->arg_len - r->pos;
}

const char *req_take_string(struct fuse_req *r, size_t max)
{
	const char *s = (const char *)r->arg + r->pos;
	size_t room = r->arg_len - r->pos;
	const char *nul = memchr(s, '\0', MIN(room, max + 1));
	if (!nul) {
		r->arg_err = memchr(s, '\0', room) ? -ENAMETOOLONG : -EINVAL;
		return NULL;
	}
	r->pos += (size_t)(nul - s) + 1;
	return s;
}

const char *req_take_name(struct fuse_req *r)
{
	const char *s = req_take_string(r, NAME_MAX);
	if (s && (!*s || strchr(s, '/'))) {
		r->arg_err = -EINVAL;
		return NULL;
	}
	return s;
}

void req_take_umask(struct fuse_req *r, uint32_t umask)
{
	/* Without FUSE_DONT_MASK the guest applied it to the mode already: applying it again would be harmless, but
	 * the fs would then also apply it where a default ACL should have replaced it. */
	r->ctx.umask = (r->srv->flags & FUSE_DONT_MASK) ? umask & 0777 : 0;
}

/* Copies len bytes into the reply space at offset off; the caller checked that they fit. */
static void copy_out(const struct fuse_req *r, size_t off, const void *src, size_t len)
{
	const uint8_t *p = src;
	for (unsigned i = 0; i < r->nwr && len > 0; i++) {
		size_t seg = r->wr[i].iov_len;
		if (off >= seg) {
			off -= seg;
			continue;
		}
		size_t n = MIN(seg - off, len);
		memcpy((uint8_t *)r->wr[i].iov_base + off, p, n);
		p += n;
		len -= n;
		off = 0;
	}
}

static void put_header(struct fuse_req *r, int error, size_t total)
{
	struct fuse_out_header h = { .len = (uint32_t)total, .error = error, .unique = r->in.unique };
	copy_out(r, 0, &h, sizeof(h));
	r->reply_len = total;
}

void reply_err(struct fuse_req *r, int neg_errno)
{
	/* 0 is success with no payload, so handlers can pass an fs result straight through. */
	if (neg_errno == 0) {
		reply_ok(r, NULL, 0);
		return;
	}
	if (r->wr_len < sizeof(struct fuse_out_header))
		return; /* nowhere to say it: the chain goes back empty */
	if (neg_errno > 0 || neg_errno < -4095)
		neg_errno = -EIO;
	put_header(r, neg_errno, sizeof(struct fuse_out_header));
}

void reply_ok(struct fuse_req *r, const void *payload, size_t len)
{
	size_t total = sizeof(struct fuse_out_header) + len;
	if (total > r->wr_len) {
		reply_err(r, -ERANGE);
		return;
	}
	copy_out(r, sizeof(struct fuse_out_header), payload, len);
	put_header(r, 0, total);
}

void reply_with_placed_data(struct fuse_req *r, size_t placed)
{
	put_header(r, 0, sizeof(struct fuse_out_header) + placed);
}

void reply_none(struct fuse_req *r)
{
	r->reply_len = 0;
}

void fill_attr(struct fuse_attr *a, const struct stat *st)
{
	memset(a, 0, sizeof(*a));
	a->ino = st->st_ino;
	a->size = (uint64_t)st->st_size;
	a->blocks = (uint64_t)st->st_blocks;
	a->atime = (uint64_t)st->st_atim.tv_sec;
	a->mtime = (uint64_t)st->st_mtim.tv_sec;
	a->ctime = (uint64_t)st->st_ctim.tv_sec;
	a->atimensec = (uint32_t)st->st_atim.tv_nsec;
	a->mtimensec = (uint32_t)st->st_mtim.tv_nsec;
	a->ctimensec = (uint32_t)st->st_ctim.tv_nsec;
	a->mode = st->st_mode;
	a->nlink = (uint32_t)st->st_nlink;
	a->uid = st->st_uid;
	a->gid = st->st_gid;
	a->rdev = (uint32_t)st->st_rdev;
	a->blksize = (uint32_t)st->st_blksize;
}

void fill_entry(const struct fuse_server *srv, struct fuse_entry_out *o, const struct fs_entry *e)
{
	struct timespec t = FS_CALL(srv, cache_timeout, e->nodeid);
	memset(o, 0, sizeof(*o));
	o->nodeid = e->nodeid;
	o->generation = e->generation;
	o->entry_valid = o->attr_valid = (uint64_t)t.tv_sec;
	o->entry_valid_nsec = o->attr_valid_nsec = (uint32_t)t.tv_nsec;
	fill_attr(&o->attr, &e->st);
	/* Only a kernel that offered FUSE_SUBMOUNTS (virtio-fs) knows the field; it then mounts the directory anew. */
	if (e->submount && (srv->flags & FUSE_SUBMOUNTS))
		o->attr.flags = FUSE_ATTR_SUBMOUNT;
	if ((srv->flags & FUSE_HAS_INODE_DAX) && FS_CALL(srv, attr_dax, &e->st))
		o->attr.flags |= FUSE_ATTR_DAX;
}

void fill_attr_out(const struct fuse_server *srv, uint64_t nodeid, struct fuse_attr_out *o, const struct stat *st)
{
	struct timespec t = FS_CALL(srv, cache_timeout, nodeid);
	memset(o, 0, sizeof(*o));
	o->attr_valid = (uint64_t)t.tv_sec;
	o->attr_valid_nsec = (uint32_t)t.tv_nsec;
	fill_attr(&o->attr, st);
	if ((srv->flags & FUSE_HAS_INODE_DAX) && FS_CALL(srv, attr_dax, st))
		o->attr.flags |= FUSE_ATTR_DAX;
}

static struct fuse_sx_time sx_time(struct timespec t)
{
	return (struct fuse_sx_time){ .tv_sec = (int64_t)t.tv_sec, .tv_nsec = (uint32_t)t.tv_nsec };
}

/* Linux takes the basic stats from it (it refuses an answer without all of them) and the birth time when the
 * mask says so. The host's device numbers stay here, as in fuse_attr. */
void fill_statx_out(const struct fuse_server *srv, uint64_t nodeid, struct fuse_statx_out *o, const struct stat *st,
                    const struct fs_btime *bt)
{
	struct timespec t = FS_CALL(srv, cache_timeout, nodeid);
	struct fuse_statx *sx = &o->stat;
	memset(o, 0, sizeof(*o));
	o->attr_valid = (uint64_t)t.tv_sec;
	o->attr_valid_nsec = (uint32_t)t.tv_nsec;
	sx->mask = STATX_BASIC_STATS | (bt->valid ? STATX_BTIME : 0);
	sx->blksize = (uint32_t)st->st_blksize;
	sx->nlink = (uint32_t)st->st_nlink;
	sx->uid = st->st_uid;
	sx->gid = st->st_gid;
	sx->mode = (uint16_t)st->st_mode;
	sx->ino = st->st_ino;
	sx->size = (uint64_t)st->st_size;
	sx->blocks = (uint64_t)st->st_blocks;
	sx->atime = sx_time(st->st_atim);
	sx->mtime = sx_time(st->st_mtim);
	sx->ctime = sx_time(st->st_ctim);
	if (bt->valid)
		sx->btime = sx_time(bt->time);
	sx->rdev_major = major(st->st_rdev);
	sx->rdev_minor = minor(st->st_rdev);
}

uint32_t open_reply_flags(const struct fuse_server *srv, uint64_t nodeid, bool dir)
{
	struct fs_open_policy p;
	FS_CALL(srv, open_policy, nodeid, dir, &p);
	return (p.direct_io ? FOPEN_DIRECT_IO : 0) | (p.keep_cache ? FOPEN_KEEP_CACHE : 0) |
	       (p.cache_dir ? FOPEN_CACHE_DIR : 0);
}

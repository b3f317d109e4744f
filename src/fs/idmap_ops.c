/*
 * The passthrough's operations with its id maps applied at the boundary (fs_ops_of picks this table only when
 * --translate-uid/--translate-gid gave rules): a request runs as its caller's host ids, a chown asks for host
 * ids, and every owner the guest is told is a guest id. A caller or owner the rules forbid gets EPERM.
 */
#include "fs/fs_internal.h"

#include <errno.h>

/* The caller as the host sees it. */
static int ctx_to_host(struct fs *fs, const struct fs_ctx *ctx, struct fs_ctx *out)
{
	*out = *ctx;
	int rc = fs_idmap_to_host(&fs->uid_map, ctx->uid, &out->uid);
	if (rc == 0)
		rc = fs_idmap_to_host(&fs->gid_map, ctx->gid, &out->gid);
	if (rc == 0 && ctx->has_supp_gid)
		rc = fs_idmap_to_host(&fs->gid_map, ctx->supp_gid, &out->supp_gid);
	return rc;
}

static void stat_to_guest(const struct fs *fs, struct stat *st)
{
	st->st_uid = fs_idmap_to_guest(&fs->uid_map, st->st_uid);
	st->st_gid = fs_idmap_to_guest(&fs->gid_map, st->st_gid);
}

/* Wraps an operation that takes a caller and fills an entry. */
#define ENTRY_OP(name, params, args)                                                                            \
	static int idm_##name params                                                                            \
	{                                                                                                       \
		struct fs_ctx host;                                                                             \
		int rc = ctx_to_host(fs, ctx, &host);                                                           \
		if (rc == 0 && (rc = fs_##name args) == 0)                                                      \
			stat_to_guest(fs, &e->st);                                                              \
		return rc;                                                                                      \
	}
/* Wraps an operation that only takes a caller. */
#define CTX_OP(type, name, params, args)                                                                        \
	static type idm_##name params                                                                           \
	{                                                                                                       \
		struct fs_ctx host;                                                                             \
		int rc = ctx_to_host(fs, ctx, &host);                                                           \
		return rc ? rc : fs_##name args;                                                                \
	}

ENTRY_OP(lookup, (struct fs *fs, const struct fs_ctx *ctx, uint64_t parent, const char *name, struct fs_entry *e),
         (fs, &host, parent, name, e))
ENTRY_OP(mknod, (struct fs *fs, const struct fs_ctx *ctx, uint64_t parent, const char *name, mode_t mode, dev_t rdev,
                 struct fs_entry *e), (fs, &host, parent, name, mode, rdev, e))
ENTRY_OP(mkdir, (struct fs *fs, const struct fs_ctx *ctx, uint64_t parent, const char *name, mode_t mode,
                 struct fs_entry *e), (fs, &host, parent, name, mode, e))
ENTRY_OP(symlink, (struct fs *fs, const struct fs_ctx *ctx, uint64_t parent, const char *name, const char *target,
                   struct fs_entry *e), (fs, &host, parent, name, target, e))
ENTRY_OP(link, (struct fs *fs, const struct fs_ctx *ctx, uint64_t nodeid, uint64_t newparent, const char *newname,
                struct fs_entry *e), (fs, &host, nodeid, newparent, newname, e))
ENTRY_OP(create, (struct fs *fs, const struct fs_ctx *ctx, uint64_t parent, const char *name, mode_t mode, int flags,
                  struct fs_entry *e, uint64_t *fh), (fs, &host, parent, name, mode, flags, e, fh))
ENTRY_OP(tmpfile, (struct fs *fs, const struct fs_ctx *ctx, uint64_t parent, mode_t mode, int flags,
                   struct fs_entry *e, uint64_t *fh), (fs, &host, parent, mode, flags, e, fh))
CTX_OP(int, unlink, (struct fs *fs, const struct fs_ctx *ctx, uint64_t parent, const char *name),
       (fs, &host, parent, name))
CTX_OP(int, rmdir, (struct fs *fs, const struct fs_ctx *ctx, uint64_t parent, const char *name),
       (fs, &host, parent, name))
CTX_OP(int, rename, (struct fs *fs, const struct fs_ctx *ctx, uint64_t parent, const char *name, uint64_t newparent,
                     const char *newname, unsigned flags), (fs, &host, parent, name, newparent, newname, flags))
CTX_OP(int, access, (struct fs *fs, const struct fs_ctx *ctx, uint64_t nodeid, int mask), (fs, &host, nodeid, mask))
CTX_OP(int, open, (struct fs *fs, const struct fs_ctx *ctx, uint64_t nodeid, int flags, uint64_t *fh),
       (fs, &host, nodeid, flags, fh))
CTX_OP(int, opendir, (struct fs *fs, const struct fs_ctx *ctx, uint64_t nodeid, uint64_t *fh),
       (fs, &host, nodeid, fh))
CTX_OP(ssize_t, write, (struct fs *fs, const struct fs_ctx *ctx, uint64_t fh, uint64_t off, const struct iovec *src,
                        unsigned nsrc, bool kill_suidgid), (fs, &host, fh, off, src, nsrc, kill_suidgid))
CTX_OP(int, setxattr, (struct fs *fs, const struct fs_ctx *ctx, uint64_t nodeid, const char *name, const void *value,
                       size_t size, int flags), (fs, &host, nodeid, name, value, size, flags))
CTX_OP(ssize_t, getxattr, (struct fs *fs, const struct fs_ctx *ctx, uint64_t nodeid, const char *name, void *buf,
                           size_t size), (fs, &host, nodeid, name, buf, size))
CTX_OP(ssize_t, listxattr, (struct fs *fs, const struct fs_ctx *ctx, uint64_t nodeid, char *buf, size_t size),
       (fs, &host, nodeid, buf, size))
CTX_OP(int, removexattr, (struct fs *fs, const struct fs_ctx *ctx, uint64_t nodeid, const char *name),
       (fs, &host, nodeid, name))

static int idm_getattr(struct fs *fs, uint64_t nodeid, uint64_t fh, struct stat *st)
{
	int rc = fs_getattr(fs, nodeid, fh, st);
	if (rc == 0)
		stat_to_guest(fs, st);
	return rc;
}

static int idm_getattr_btime(struct fs *fs, uint64_t nodeid, uint64_t fh, struct stat *st, struct fs_btime *bt)
{
	int rc = fs_getattr_btime(fs, nodeid, fh, st, bt);
	if (rc == 0)
		stat_to_guest(fs, st);
	return rc;
}

static int idm_setattr(struct fs *fs, const struct fs_ctx *ctx, uint64_t nodeid, uint64_t fh,
                       const struct fs_setattr *sa, struct stat *st)
{
	struct fs_ctx host;
	struct fs_setattr hsa = *sa;
	int rc = ctx_to_host(fs, ctx, &host);
	if (rc == 0 && (sa->valid & FS_SET_UID))
		rc = fs_idmap_to_host(&fs->uid_map, sa->uid, &hsa.uid);
	if (rc == 0 && (sa->valid & FS_SET_GID))
		rc = fs_idmap_to_host(&fs->gid_map, sa->gid, &hsa.gid);
	if (rc == 0 && (rc = fs_setattr(fs, &host, nodeid, fh, &hsa, st)) == 0)
		stat_to_guest(fs, st);
	return rc;
}

/* READDIRPLUS: the entries' owners, on their way to the guest's sink. */
struct plus_sink {
	struct fs *fs;
	fs_dirent_fn fill;
	void *arg;
};

static int plus_to_guest(void *arg, const char *name, size_t namelen, uint64_t ino, unsigned dtype,
                         uint64_t next_off, const struct fs_entry *plus)
{
	struct plus_sink *s = arg;
	struct fs_entry e;
	if (plus) {
		e = *plus;
		stat_to_guest(s->fs, &e.st);
		plus = &e;
	}
	return s->fill(s->arg, name, namelen, ino, dtype, next_off, plus);
}

static int idm_readdir(struct fs *fs, const struct fs_ctx *ctx, uint64_t nodeid, uint64_t fh, uint64_t offset,
                       bool plus, fs_dirent_fn fill, void *arg)
{
	struct fs_ctx host;
	struct plus_sink s = { fs, fill, arg };
	int rc = ctx_to_host(fs, ctx, &host);
	return rc ? rc : fs_readdir(fs, &host, nodeid, fh, offset, plus, plus_to_guest, &s);
}

/* The passthrough's table, with the operations that take a caller or report owners replaced. */
#pragma GCC diagnostic push
#ifdef __clang__
#pragma GCC diagnostic ignored "-Winitializer-overrides"
#else
#pragma GCC diagnostic ignored "-Woverride-init"
#endif
static const struct fs_ops idmapped_ops = {
	FS_PASSTHROUGH_OPS_FIELDS,
	.lookup = idm_lookup,
	.getattr = idm_getattr,
	.getattr_btime = idm_getattr_btime,
	.setattr = idm_setattr,
	.mknod = idm_mknod,
	.mkdir = idm_mkdir,
	.symlink = idm_symlink,
	.link = idm_link,
	.unlink = idm_unlink,
	.rmdir = idm_rmdir,
	.rename = idm_rename,
	.access = idm_access,
	.open = idm_open,
	.create = idm_create,
	.tmpfile = idm_tmpfile,
	.write = idm_write,
	.opendir = idm_opendir,
	.readdir = idm_readdir,
	.setxattr = idm_setxattr,
	.getxattr = idm_getxattr,
	.listxattr = idm_listxattr,
	.removexattr = idm_removexattr,
};
#pragma GCC diagnostic pop

const struct fs_ops *fs_ops_of(const struct fs *fs)
{
	return fs_idmap_empty(&fs->uid_map) && fs_idmap_empty(&fs->gid_map) ? &fs_passthrough_ops : &idmapped_ops;
}

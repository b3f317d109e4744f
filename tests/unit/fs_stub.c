/* The stub file system of fs_stub.h: what each operation answers is described there. */
#include "fs_stub.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define STUB_XATTR_NAME "user.stub"
#define STUB_XATTR_VALUE "stubvalue"
#define STUB_LINK_TARGET "stub-target"

struct fs_stub {
	struct fs_stub_config cfg;
	int64_t refs;
	uint64_t calls, next_fh;
	struct fs_stub_call last;
};

static struct fs_stub *stub(struct fs *fs)
{
	return (struct fs_stub *)fs;
}

static const struct fs_stub *cstub(const struct fs *fs)
{
	return (const struct fs_stub *)fs;
}

/* Records the call; returns the configured failure when this call is one that fails, else 0. */
static int enter(struct fs *fs, const char *op, uint64_t nodeid, uint64_t fh)
{
	struct fs_stub *s = stub(fs);
	uint64_t n = __atomic_add_fetch(&s->calls, 1, __ATOMIC_RELAXED);
	s->last = (struct fs_stub_call){ .op = op, .nodeid = nodeid, .fh = fh };
	if (!s->cfg.fail)
		return 0;
	return s->cfg.fail_every <= 1 || n % s->cfg.fail_every == 0 ? s->cfg.fail : 0;
}

static void note_name(struct fs *fs, const char *name)
{
	snprintf(stub(fs)->last.name, sizeof(stub(fs)->last.name), "%s", name);
}

static bool node_exists(struct fs *fs, uint64_t nodeid)
{
	return nodeid >= 1 && nodeid <= stub(fs)->cfg.nodes;
}

static void node_stat(uint64_t nodeid, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = nodeid;
	st->st_nlink = 1;
	st->st_blksize = 4096;
	switch (nodeid % 3) {
	case 1: st->st_mode = S_IFDIR | 0755; st->st_nlink = 2; st->st_size = 4096; break;
	case 2: st->st_mode = S_IFREG | 0644; st->st_size = FS_STUB_FILE_SIZE; break;
	default: st->st_mode = S_IFLNK | 0777; st->st_size = sizeof(STUB_LINK_TARGET) - 1; break;
	}
	st->st_blocks = (st->st_size + 511) / 512;
	st->st_mtim.tv_sec = st->st_ctim.tv_sec = st->st_atim.tv_sec = 1700000000 + (time_t)nodeid;
}

static void fill_entry(struct fs *fs, uint64_t nodeid, struct fs_entry *e)
{
	memset(e, 0, sizeof(*e));
	e->nodeid = nodeid;
	e->generation = 1;
	node_stat(nodeid, &e->st);
	e->submount = stub(fs)->cfg.submounts && S_ISDIR(e->st.st_mode);
}

/* A new node for name: one reference, as a lookup takes. */
static int give_entry(struct fs *fs, const char *name, struct fs_entry *e)
{
	uint64_t h = 5381;
	for (const char *p = name; *p; p++)
		h = h * 33 + (unsigned char)*p;
	uint64_t nodes = stub(fs)->cfg.nodes;
	fill_entry(fs, nodes > 1 ? 2 + h % (nodes - 1) : 1, e);
	__atomic_add_fetch(&stub(fs)->refs, 1, __ATOMIC_RELAXED);
	return 0;
}

static uint64_t new_handle(struct fs *fs)
{
	return __atomic_add_fetch(&stub(fs)->next_fh, 1, __ATOMIC_RELAXED);
}

/* A value of len bytes answered the xattr way: size 0 asks for the length, too small a buffer is -ERANGE. */
static ssize_t give_value(const char *value, size_t len, void *buf, size_t size)
{
	if (size == 0)
		return (ssize_t)len;
	if (size < len)
		return -ERANGE;
	memcpy(buf, value, len);
	return (ssize_t)len;
}

static void stub_session_start(struct fs *fs, const struct fs_session *s)
{
	stub(fs)->last.op = "session_start";
	stub(fs)->last.other = s->guest_caches_writes;
	stub(fs)->last.flags = s->dax_per_inode;
}

static void stub_reset(struct fs *fs)
{
	stub(fs)->refs = 0;
}

static int stub_lookup(struct fs *fs, const struct fs_ctx *ctx, uint64_t parent, const char *name,
                       struct fs_entry *e)
{
	int rc = enter(fs, "lookup", parent, 0);
	note_name(fs, name);
	stub(fs)->last.ctx = *ctx;
	if (rc)
		return rc;
	if (!node_exists(fs, parent) || strcmp(name, "missing") == 0)
		return -ENOENT;
	return give_entry(fs, name, e);
}

static void stub_forget(struct fs *fs, uint64_t nodeid, uint64_t nlookup)
{
	enter(fs, "forget", nodeid, 0);
	stub(fs)->last.other = nlookup;
	__atomic_sub_fetch(&stub(fs)->refs, (int64_t)nlookup, __ATOMIC_RELAXED);
}

static int stat_op(struct fs *fs, const char *op, uint64_t nodeid, uint64_t fh, struct stat *st)
{
	int rc = enter(fs, op, nodeid, fh);
	if (rc)
		return rc;
	if (!node_exists(fs, nodeid))
		return -ESTALE;
	node_stat(nodeid, st);
	return 0;
}

static int stub_getattr(struct fs *fs, uint64_t nodeid, uint64_t fh, struct stat *st)
{
	return stat_op(fs, "getattr", nodeid, fh, st);
}

static int stub_getattr_btime(struct fs *fs, uint64_t nodeid, uint64_t fh, struct stat *st, struct fs_btime *bt)
{
	int rc = stat_op(fs, "getattr_btime", nodeid, fh, st);
	if (rc)
		return rc;
	/* Nodes with an even id have a birth time (ten seconds before their other times), odd ones none. */
	bt->valid = nodeid % 2 == 0;
	bt->time = (struct timespec){ st->st_mtim.tv_sec - 10, 123 };
	return 0;
}

static int stub_setattr(struct fs *fs, const struct fs_ctx *ctx, uint64_t nodeid, uint64_t fh,
                        const struct fs_setattr *sa, struct stat *st)
{
	int rc = enter(fs, "setattr", nodeid, fh);
	stub(fs)->last.flags = (int)sa->valid;
	stub(fs)->last.mode = sa->mode;
	stub(fs)->last.size = sa->size;
	if (rc)
		return rc;
	if (!node_exists(fs, nodeid))
		return -ESTALE;
	node_stat(nodeid, st);
	/* What was asked shows in the answer, as on a real file system. */
	if (sa->valid & FS_SET_MODE)
		st->st_mode = (st->st_mode & S_IFMT) | (sa->mode & 07777);
	if ((sa->valid & FS_SET_SIZE) && S_ISREG(st->st_mode))
		st->st_size = (off_t)sa->size;
	return 0;
}

static ssize_t stub_readlink(struct fs *fs, uint64_t nodeid, char *buf, size_t size)
{
	int rc = enter(fs, "readlink", nodeid, 0);
	if (rc)
		return rc;
	size_t n = sizeof(STUB_LINK_TARGET) - 1;
	n = n < size ? n : size;
	memcpy(buf, STUB_LINK_TARGET, n);
	return (ssize_t)n;
}

/* MKNOD, MKDIR, SYMLINK, CREATE: a new name in parent, of the type asked (a regular file if none). */
static int make_node(struct fs *fs, const struct fs_ctx *ctx, const char *op, uint64_t parent, const char *name,
                     mode_t mode, struct fs_entry *e)
{
	int rc = enter(fs, op, parent, 0);
	note_name(fs, name);
	stub(fs)->last.ctx = *ctx;
	stub(fs)->last.mode = mode;
	if (rc)
		return rc;
	give_entry(fs, name, e);
	e->st.st_mode = (mode & S_IFMT ? mode & S_IFMT : S_IFREG) | (mode & 07777);
	return 0;
}

static int stub_mknod(struct fs *fs, const struct fs_ctx *ctx, uint64_t parent, const char *name, mode_t mode,
                      dev_t rdev, struct fs_entry *e)
{
	int rc = make_node(fs, ctx, "mknod", parent, name, mode, e);
	stub(fs)->last.other = rdev;
	return rc;
}

static int stub_mkdir(struct fs *fs, const struct fs_ctx *ctx, uint64_t parent, const char *name, mode_t mode,
                      struct fs_entry *e)
{
	return make_node(fs, ctx, "mkdir", parent, name, S_IFDIR | (mode & 07777), e);
}

static int stub_symlink(struct fs *fs, const struct fs_ctx *ctx, uint64_t parent, const char *name,
                        const char *target, struct fs_entry *e)
{
	return make_node(fs, ctx, "symlink", parent, name, S_IFLNK | 0777, e);
}

static int stub_link(struct fs *fs, const struct fs_ctx *ctx, uint64_t nodeid, uint64_t newparent,
                     const char *newname, struct fs_entry *e)
{
	int rc = enter(fs, "link", nodeid, 0);
	note_name(fs, newname);
	stub(fs)->last.other = newparent;
	if (rc)
		return rc;
	if (!node_exists(fs, nodeid))
		return -ESTALE;
	fill_entry(fs, nodeid, e);
	__atomic_add_fetch(&stub(fs)->refs, 1, __ATOMIC_RELAXED);
	return 0;
}

static int stub_unlink(struct fs *fs, const struct fs_ctx *ctx, uint64_t parent, const char *name)
{
	int rc = enter(fs, "unlink", parent, 0);
	note_name(fs, name);
	return rc;
}

static int stub_rmdir(struct fs *fs, const struct fs_ctx *ctx, uint64_t parent, const char *name)
{
	int rc = enter(fs, "rmdir", parent, 0);
	note_name(fs, name);
	return rc;
}

static int stub_rename(struct fs *fs, const struct fs_ctx *ctx, uint64_t parent, const char *name,
                       uint64_t newparent, const char *newname, unsigned flags)
{
	int rc = enter(fs, "rename", parent, 0);
	snprintf(stub(fs)->last.name, sizeof(stub(fs)->last.name), "%s>%s", name, newname);
	stub(fs)->last.other = newparent;
	stub(fs)->last.flags = (int)flags;
	return rc;
}

static int stub_statfs(struct fs *fs, uint64_t nodeid, struct statvfs *out)
{
	int rc = enter(fs, "statfs", nodeid, 0);
	if (rc)
		return rc;
	*out = (struct statvfs){ .f_bsize = 4096, .f_frsize = 4096, .f_blocks = 1000, .f_bfree = 500,
	                         .f_bavail = 400, .f_files = 100, .f_ffree = 50, .f_namemax = 255 };
	return 0;
}

static int stub_access(struct fs *fs, const struct fs_ctx *ctx, uint64_t nodeid, int mask)
{
	int rc = enter(fs, "access", nodeid, 0);
	stub(fs)->last.flags = mask;
	return rc;
}

static int stub_open(struct fs *fs, const struct fs_ctx *ctx, uint64_t nodeid, int flags, uint64_t *fh)
{
	int rc = enter(fs, "open", nodeid, 0);
	stub(fs)->last.flags = flags;
	if (rc)
		return rc;
	*fh = new_handle(fs);
	return 0;
}

static int stub_create(struct fs *fs, const struct fs_ctx *ctx, uint64_t parent, const char *name, mode_t mode,
                       int flags, struct fs_entry *e, uint64_t *fh)
{
	int rc = make_node(fs, ctx, "create", parent, name, S_IFREG | (mode & 07777), e);
	stub(fs)->last.flags = flags;
	if (rc)
		return rc;
	*fh = new_handle(fs);
	return 0;
}

static int stub_tmpfile(struct fs *fs, const struct fs_ctx *ctx, uint64_t parent, mode_t mode, int flags,
                        struct fs_entry *e, uint64_t *fh)
{
	return stub_create(fs, ctx, parent, "tmpfile", mode, flags, e, fh);
}

static ssize_t stub_read(struct fs *fs, uint64_t fh, uint64_t off, size_t size, const struct iovec *dst,
                         unsigned ndst)
{
	int rc = enter(fs, "read", 0, fh);
	stub(fs)->last.off = off;
	stub(fs)->last.size = size;
	if (rc)
		return rc;
	size_t avail = off < FS_STUB_FILE_SIZE ? FS_STUB_FILE_SIZE - off : 0;
	size_t want = size < avail ? size : avail, done = 0;
	for (unsigned i = 0; i < ndst && done < want; i++) {
		uint8_t *p = dst[i].iov_base;
		for (size_t j = 0; j < dst[i].iov_len && done < want; j++, done++)
			p[j] = (uint8_t)(off + done);
	}
	return (ssize_t)done;
}

static ssize_t stub_write(struct fs *fs, const struct fs_ctx *ctx, uint64_t fh, uint64_t off,
                          const struct iovec *src, unsigned nsrc, bool kill_suidgid)
{
	int rc = enter(fs, "write", 0, fh);
	stub(fs)->last.off = off;
	stub(fs)->last.flags = kill_suidgid;
	if (rc)
		return rc;
	size_t total = 0;
	uint64_t sum = 0;
	for (unsigned i = 0; i < nsrc; i++) {
		/* Read every byte, as a real write would (ASan sees a source outside the request). */
		const volatile uint8_t *p = src[i].iov_base;
		for (size_t j = 0; j < src[i].iov_len; j++)
			sum += p[j];
		total += src[i].iov_len;
	}
	stub(fs)->last.size = total;
	stub(fs)->last.other = sum;
	return (ssize_t)total;
}

/* Operations on an open handle that only say yes or the configured failure. */
static int handle_op(struct fs *fs, const char *op, uint64_t nodeid, uint64_t fh, uint64_t other)
{
	int rc = enter(fs, op, nodeid, fh);
	stub(fs)->last.other = other;
	return rc;
}

static int stub_flush(struct fs *fs, uint64_t nodeid, uint64_t fh, uint64_t lock_owner)
{
	return handle_op(fs, "flush", nodeid, fh, lock_owner);
}

static int stub_release(struct fs *fs, uint64_t nodeid, uint64_t fh, bool release_flock, uint64_t lock_owner)
{
	return handle_op(fs, "release", nodeid, fh, lock_owner);
}

static int stub_fsync(struct fs *fs, uint64_t nodeid, uint64_t fh, bool datasync)
{
	return handle_op(fs, "fsync", nodeid, fh, datasync);
}

static int stub_fallocate(struct fs *fs, uint64_t nodeid, uint64_t fh, int mode, uint64_t off, uint64_t len)
{
	int rc = handle_op(fs, "fallocate", nodeid, fh, len);
	stub(fs)->last.off = off;
	stub(fs)->last.flags = mode;
	return rc;
}

static int64_t stub_lseek(struct fs *fs, uint64_t nodeid, uint64_t fh, int64_t off, int whence)
{
	int rc = handle_op(fs, "lseek", nodeid, fh, (uint64_t)whence);
	if (rc)
		return rc;
	return off < 0 || off > (int64_t)FS_STUB_FILE_SIZE ? -ENXIO : off;
}

static ssize_t stub_copy_file_range(struct fs *fs, uint64_t fh_in, uint64_t off_in, uint64_t fh_out,
                                    uint64_t off_out, size_t len, unsigned flags)
{
	int rc = handle_op(fs, "copy_file_range", 0, fh_in, fh_out);
	stub(fs)->last.off = off_in;
	stub(fs)->last.size = len;
	return rc ? rc : (ssize_t)(len < FS_STUB_FILE_SIZE ? len : FS_STUB_FILE_SIZE);
}

static int stub_syncfs(struct fs *fs)
{
	return enter(fs, "syncfs", 0, 0);
}

static int stub_opendir(struct fs *fs, const struct fs_ctx *ctx, uint64_t nodeid, uint64_t *fh)
{
	return stub_open(fs, ctx, nodeid, O_RDONLY | O_DIRECTORY, fh);
}

/* One listing entry i: ".", "..", then e0, e1, ... */
static int emit_dirent(struct fs *fs, uint64_t dir, unsigned i, bool plus, fs_dirent_fn fill, void *arg)
{
	char name[16];
	struct fs_entry e = { 0 };
	bool dot = i < 2;
	if (dot)
		snprintf(name, sizeof(name), "%s", i ? ".." : ".");
	else
		snprintf(name, sizeof(name), "e%u", i - 2);
	if (plus && !dot)
		give_entry(fs, name, &e);
	else
		fill_entry(fs, dot ? dir : 2, &e);
	if (dot)
		e.nodeid = 0;
	unsigned dtype = S_ISDIR(e.st.st_mode) ? DT_DIR : S_ISREG(e.st.st_mode) ? DT_REG : DT_LNK;
	int full = fill(arg, name, strlen(name), e.st.st_ino, dtype, i + 1, plus ? &e : NULL);
	if (full && plus && !dot)
		__atomic_sub_fetch(&stub(fs)->refs, 1, __ATOMIC_RELAXED);
	return full;
}

static int stub_readdir(struct fs *fs, const struct fs_ctx *ctx, uint64_t nodeid, uint64_t fh, uint64_t offset,
                        bool plus, fs_dirent_fn fill, void *arg)
{
	int rc = enter(fs, "readdir", nodeid, fh);
	stub(fs)->last.off = offset;
	if (rc)
		return rc;
	for (uint64_t i = offset; i < stub(fs)->cfg.dir_entries; i++)
		if (emit_dirent(fs, nodeid, (unsigned)i, plus, fill, arg))
			break;
	return 0;
}

static int stub_releasedir(struct fs *fs, uint64_t nodeid, uint64_t fh)
{
	return handle_op(fs, "releasedir", nodeid, fh, 0);
}

static int stub_fsyncdir(struct fs *fs, uint64_t nodeid, uint64_t fh, bool datasync)
{
	return handle_op(fs, "fsyncdir", nodeid, fh, datasync);
}

static int stub_setxattr(struct fs *fs, const struct fs_ctx *ctx, uint64_t nodeid, const char *name,
                         const void *value, size_t size, int flags)
{
	int rc = enter(fs, "setxattr", nodeid, 0);
	note_name(fs, name);
	stub(fs)->last.size = size;
	stub(fs)->last.flags = flags;
	return rc;
}

static ssize_t stub_getxattr(struct fs *fs, const struct fs_ctx *ctx, uint64_t nodeid, const char *name,
                             void *buf, size_t size)
{
	int rc = enter(fs, "getxattr", nodeid, 0);
	note_name(fs, name);
	stub(fs)->last.size = size;
	if (rc)
		return rc;
	if (strcmp(name, STUB_XATTR_NAME) != 0)
		return -ENODATA;
	return give_value(STUB_XATTR_VALUE, sizeof(STUB_XATTR_VALUE) - 1, buf, size);
}

static ssize_t stub_listxattr(struct fs *fs, const struct fs_ctx *ctx, uint64_t nodeid, char *buf, size_t size)
{
	int rc = enter(fs, "listxattr", nodeid, 0);
	stub(fs)->last.size = size;
	return rc ? rc : give_value(STUB_XATTR_NAME, sizeof(STUB_XATTR_NAME), buf, size);
}

static int stub_removexattr(struct fs *fs, const struct fs_ctx *ctx, uint64_t nodeid, const char *name)
{
	int rc = enter(fs, "removexattr", nodeid, 0);
	note_name(fs, name);
	return rc;
}

static int stub_getlk(struct fs *fs, uint64_t nodeid, uint64_t fh, uint64_t lock_owner, struct flock *lk)
{
	int rc = handle_op(fs, "getlk", nodeid, fh, lock_owner);
	if (rc)
		return rc;
	lk->l_type = F_UNLCK;
	lk->l_pid = 0;
	return 0;
}

static int stub_setlk(struct fs *fs, uint64_t nodeid, uint64_t fh, uint64_t lock_owner, const struct flock *lk,
                      bool sleep)
{
	int rc = handle_op(fs, "setlk", nodeid, fh, lock_owner);
	stub(fs)->last.flags = lk->l_type | (sleep ? 0x100 : 0);
	return rc;
}

static int stub_flock(struct fs *fs, uint64_t nodeid, uint64_t fh, int op)
{
	int rc = handle_op(fs, "flock", nodeid, fh, 0);
	stub(fs)->last.flags = op;
	return rc;
}

static uint64_t stub_dax_window(struct fs *fs)
{
	return stub(fs)->cfg.dax_window;
}

static int stub_setupmapping(struct fs *fs, uint64_t nodeid, uint64_t foffset, uint64_t len, uint64_t moffset,
                             bool write)
{
	int rc = handle_op(fs, "setupmapping", nodeid, 0, moffset);
	stub(fs)->last.off = foffset;
	stub(fs)->last.size = len;
	stub(fs)->last.flags = write;
	return rc;
}

static int stub_removemapping(struct fs *fs, uint64_t nodeid, uint64_t moffset, uint64_t len)
{
	int rc = handle_op(fs, "removemapping", nodeid, 0, moffset);
	stub(fs)->last.size = len;
	return rc;
}

/* The stub's whole state: the references it counts. */
static int stub_state_save(struct fs *fs, void **buf, size_t *len)
{
	int rc = enter(fs, "state_save", 0, 0);
	int64_t *p = rc ? NULL : malloc(sizeof(*p));
	if (rc || !p)
		return rc ? rc : -ENOMEM;
	*p = stub(fs)->refs;
	*buf = p;
	*len = sizeof(*p);
	return 0;
}

static int stub_state_load(struct fs *fs, const void *buf, size_t len)
{
	int rc = enter(fs, "state_load", 0, 0);
	stub(fs)->last.size = len;
	if (rc)
		return rc;
	if (len != sizeof(int64_t))
		return -EINVAL;
	memcpy(&stub(fs)->refs, buf, sizeof(int64_t));
	return 0;
}

static bool stub_attr_dax(const struct fs *fs, const struct stat *st)
{
	return cstub(fs)->cfg.attr_dax && S_ISREG(st->st_mode);
}

static void stub_open_policy(const struct fs *fs, uint64_t nodeid, bool dir, struct fs_open_policy *out)
{
	*out = cstub(fs)->cfg.policy;
}

static struct timespec stub_cache_timeout(const struct fs *fs, uint64_t nodeid)
{
	return cstub(fs)->cfg.timeout;
}

static bool stub_caches_data(const struct fs *fs)
{
	return cstub(fs)->cfg.caches_data;
}

const struct fs_ops fs_stub_ops = {
	.session_start = stub_session_start,
	.reset = stub_reset,
	.lookup = stub_lookup,
	.forget = stub_forget,
	.getattr = stub_getattr,
	.getattr_btime = stub_getattr_btime,
	.setattr = stub_setattr,
	.readlink = stub_readlink,
	.mknod = stub_mknod,
	.mkdir = stub_mkdir,
	.symlink = stub_symlink,
	.link = stub_link,
	.unlink = stub_unlink,
	.rmdir = stub_rmdir,
	.rename = stub_rename,
	.statfs = stub_statfs,
	.access = stub_access,
	.open = stub_open,
	.create = stub_create,
	.tmpfile = stub_tmpfile,
	.read = stub_read,
	.write = stub_write,
	.flush = stub_flush,
	.release = stub_release,
	.fsync = stub_fsync,
	.fallocate = stub_fallocate,
	.lseek = stub_lseek,
	.copy_file_range = stub_copy_file_range,
	.syncfs = stub_syncfs,
	.opendir = stub_opendir,
	.readdir = stub_readdir,
	.releasedir = stub_releasedir,
	.fsyncdir = stub_fsyncdir,
	.setxattr = stub_setxattr,
	.getxattr = stub_getxattr,
	.listxattr = stub_listxattr,
	.removexattr = stub_removexattr,
	.getlk = stub_getlk,
	.setlk = stub_setlk,
	.flock = stub_flock,
	.dax_window = stub_dax_window,
	.setupmapping = stub_setupmapping,
	.removemapping = stub_removemapping,
	.attr_dax = stub_attr_dax,
	.state_save = stub_state_save,
	.state_load = stub_state_load,
	.open_policy = stub_open_policy,
	.cache_timeout = stub_cache_timeout,
	.caches_data = stub_caches_data,
};

int fs_stub_new(const struct fs_stub_config *cfg, struct fs **out)
{
	struct fs_stub *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->cfg = *cfg;
	if (!s->cfg.nodes)
		s->cfg.nodes = 16;
	if (!s->cfg.dir_entries)
		s->cfg.dir_entries = 8;
	*out = (struct fs *)s;
	return 0;
}

void fs_stub_free(struct fs *fs)
{
	free(stub(fs));
}

void fs_stub_fail(struct fs *fs, int err, unsigned every)
{
	stub(fs)->cfg.fail = err;
	stub(fs)->cfg.fail_every = every;
}

int64_t fs_stub_refs(const struct fs *fs)
{
	return __atomic_load_n(&cstub(fs)->refs, __ATOMIC_RELAXED);
}

uint64_t fs_stub_calls(const struct fs *fs)
{
	return __atomic_load_n(&cstub(fs)->calls, __ATOMIC_RELAXED);
}

const struct fs_stub_call *fs_stub_last(const struct fs *fs)
{
	return &cstub(fs)->last;
}

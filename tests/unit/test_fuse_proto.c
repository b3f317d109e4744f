/*
 * The FUSE protocol room (fuse_serve) over the real passthrough fs on a fresh temporary directory: raw requests
 * built by hand, served from one or many small iovecs, replies decoded. INIT negotiation, round trips of the
 * common opcodes, framing and argument validation, reply space limits, FORGET accounting, submount announcement,
 * POSIX ACL negotiation, security contexts in request extensions.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/log.h"
#include "common/util.h"
#include "fs/fs.h"
#include "fs/xattrmap.h"
#include "protocol/fuse_server.h"
#include "transport/shm_window.h"
#include "fuse_wire.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

static char dir[64];
static struct fs *fs;

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st; (void)flag; (void)ftw;
	return remove(path);
}

/* The fs's cache policy for the next setup_opts (the server's INIT offer follows it). */
static enum fs_cache_mode g_cache = FS_CACHE_AUTO;
static bool g_posix_acl; /* the fs's posix_acl for the next setup_opts */
static const struct xattrmap *g_xattrmap; /* the fs's xattrmap for the next setup_opts */

static int setup_opts(const struct fuse_server_opts *opts)
{
	strcpy(dir, "/tmp/vufs-fuse-proto-XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	struct fs_config cfg = { .source = dir, .xattr = true, .posix_lock = true, .flock = true, .cache = g_cache,
	                         .posix_acl = g_posix_acl, .xattrmap = g_xattrmap };
	g_cache = FS_CACHE_AUTO;
	g_posix_acl = false;
	g_xattrmap = NULL;
	if (fs_new(&cfg, &fs) < 0)
		return -1;
	if (fuse_server_new(&fs_passthrough_ops, fs, opts, &srv) < 0)
		return -1;
	worker = fuse_worker_new(WORKER_SEGS);
	return worker ? 0 : -1;
}

static int setup(void **state)
{
	(void)state;
	struct fuse_server_opts opts = { .readdirplus = true, .posix_lock = true, .flock = true };
	return setup_opts(&opts);
}

static int teardown(void **state)
{
	(void)state;
	fuse_worker_free(worker);
	fuse_server_free(srv);
	fs_free(fs);
	worker = NULL;
	srv = NULL;
	fs = NULL;
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	return 0;
}

static const char *hpath(const char *name)
{
	static char p[PATH_MAX];
	snprintf(p, sizeof(p), "%s/%s", dir, name);
	return p;
}

/* ---- opcode helpers ---- */


static void init_ok(void)
{
	struct fuse_init_out o;
	assert_int_equal(do_init_full(7, 45, FUSE_ASYNC_READ | FUSE_DO_READDIRPLUS | FUSE_INIT_EXT,
	                              (uint32_t)(FUSE_CREATE_SUPP_GROUP >> 32), &o), 0);
	assert_int_equal(fuse_server_minor(srv), 45);
	assert_int_equal(o.flags2, FUSE_CREATE_SUPP_GROUP >> 32);
}


static int mkdir_op(uint64_t parent, const char *name, struct fuse_entry_out *e)
{
	struct fuse_mkdir_in in = { .mode = 0755, .umask = 0 };
	begin(FUSE_MKDIR, parent);
	put(&in, sizeof(in));
	put_str(name);
	return call(e, sizeof(*e));
}

struct create_out {
	struct fuse_entry_out e;
	struct fuse_open_out o;
};

static int create_op(uint64_t parent, const char *name, struct create_out *co)
{
	struct fuse_create_in in = { .flags = O_RDWR | O_CREAT, .mode = S_IFREG | 0644 };
	begin(FUSE_CREATE, parent);
	put(&in, sizeof(in));
	put_str(name);
	return call(co, sizeof(*co));
}

static void build_write(uint64_t nodeid, uint64_t fh, uint64_t off, const void *data, uint32_t size_field,
                        size_t data_len)
{
	struct fuse_write_in in = { .fh = fh, .offset = off, .size = size_field };
	begin(FUSE_WRITE, nodeid);
	put(&in, sizeof(in));
	put(data, data_len);
	end();
}

static int write_op(uint64_t nodeid, uint64_t fh, uint64_t off, const char *s, uint32_t *written)
{
	struct fuse_write_out wo = { 0 };
	build_write(nodeid, fh, off, s, (uint32_t)strlen(s), strlen(s));
	int err = call(&wo, sizeof(wo));
	if (err == 0)
		assert_int_equal(payload_len, sizeof(wo));
	*written = wo.size;
	return err;
}

static void build_read(uint32_t opcode, uint64_t nodeid, uint64_t fh, uint64_t off, uint32_t size)
{
	struct fuse_read_in in = { .fh = fh, .offset = off, .size = size };
	begin(opcode, nodeid);
	put(&in, sizeof(in));
	end();
}

static int rename2_op(uint64_t dir1, const char *a, uint64_t dir2, const char *b, uint32_t flags)
{
	struct fuse_rename2_in in = { .newdir = dir2, .flags = flags };
	begin(FUSE_RENAME2, dir1);
	put(&in, sizeof(in));
	put_str(a);
	put_str(b);
	return call(NULL, 0);
}

static int unlink_op(uint64_t parent, const char *name)
{
	begin(FUSE_UNLINK, parent);
	put_str(name);
	return call(NULL, 0);
}

static uint64_t ninodes(void)
{
	uint64_t n;
	fs_counts(fs, &n, NULL);
	return n;
}

static size_t forget_op(uint64_t nodeid, uint64_t nlookup)
{
	struct fuse_forget_in in = { .nlookup = nlookup };
	begin(FUSE_FORGET, nodeid);
	put(&in, sizeof(in));
	end();
	return serve_ex(req_len, 0, OUT_SIZE, 0);
}

/* Walks a READDIR(PLUS) reply; returns how many entries, and fills names as ",a,b," and the node ids. */
static unsigned parse_dir(const uint8_t *p, size_t len, bool plus, char *names, size_t cap, uint64_t *ids)
{
	unsigned n = 0;
	size_t off = 0;
	strcpy(names, ",");
	while (off < len) {
		const struct fuse_dirent *d;
		uint64_t id = 0;
		if (plus) {
			const struct fuse_direntplus *dp = (const void *)(p + off);
			assert_true(off + FUSE_NAME_OFFSET_DIRENTPLUS <= len);
			d = &dp->dirent;
			id = dp->entry_out.nodeid;
			off += FUSE_DIRENTPLUS_SIZE(dp);
		} else {
			d = (const void *)(p + off);
			assert_true(off + FUSE_NAME_OFFSET <= len);
			off += FUSE_DIRENT_SIZE(d);
		}
		assert_true(off <= len);
		assert_true(d->namelen > 0 && d->namelen <= NAME_MAX);
		strncat(names, d->name, MIN((size_t)d->namelen, cap - strlen(names) - 2));
		strcat(names, ",");
		if (ids)
			ids[n] = id;
		n++;
	}
	return n;
}

/* ---- INIT ---- */

static void test_requests_before_init_get_eio(void **state)
{
	(void)state;
	struct fuse_entry_out e;
	assert_int_equal(fuse_server_minor(srv), 0);
	assert_int_equal(lookup(FS_ROOT_ID, "x", &e), -EIO);
	begin(FUSE_GETATTR, FS_ROOT_ID);
	struct fuse_getattr_in gi = { 0 };
	put(&gi, sizeof(gi));
	assert_int_equal(call(NULL, 0), -EIO);
	/* FORGET before INIT: still no reply */
	assert_int_equal(forget_op(FS_ROOT_ID, 1), 0);
	init_ok();
	assert_int_equal(lookup(FS_ROOT_ID, "x", &e), -ENOENT);
}

static void test_init_negotiates_flags_intersection_and_minor(void **state)
{
	(void)state;
	struct fuse_init_out o;
	uint32_t offered = FUSE_ASYNC_READ | FUSE_POSIX_LOCKS | FUSE_FLOCK_LOCKS | FUSE_DO_READDIRPLUS |
	                   FUSE_WRITEBACK_CACHE | FUSE_DONT_MASK | FUSE_SPLICE_WRITE | FUSE_MAX_PAGES |
	                   FUSE_INIT_EXT | FUSE_AUTO_INVAL_DATA;
	uint32_t flags2 = (uint32_t)(FUSE_SECURITY_CTX >> 32) | (uint32_t)(FUSE_HAS_INODE_DAX >> 32);
	assert_int_equal(do_init_full(7, 46, offered, flags2, &o), 0);
	assert_int_equal(payload_len, sizeof(o));
	assert_int_equal(o.major, 7);
	assert_int_equal(o.minor, 45); /* min(ours, theirs) */
	assert_int_equal(fuse_server_minor(srv), 45);
	assert_int_equal(do_init_full(7, 40, offered, flags2, &o), 0);
	assert_int_equal(o.minor, 40);
	/* Exactly the intersection: what we support of what was offered */
	assert_int_equal(o.flags, FUSE_ASYNC_READ | FUSE_POSIX_LOCKS | FUSE_FLOCK_LOCKS | FUSE_DO_READDIRPLUS |
	                              FUSE_MAX_PAGES | FUSE_INIT_EXT | FUSE_AUTO_INVAL_DATA);
	assert_int_equal(o.flags & FUSE_WRITEBACK_CACHE, 0); /* not enabled in our options */
	assert_int_equal(o.flags2, 0);                       /* nothing above bit 31 is ours */
	assert_int_equal(o.max_readahead, 0x20000);
	assert_int_equal(o.max_write, 1u << 20);
	assert_int_equal(o.max_pages, 256);
	assert_int_equal(o.time_gran, 1);

	/* An older guest: its minor, and the 7.22 reply size */
	assert_int_equal(do_init_full(7, 22, FUSE_ASYNC_READ, 0, &o), 0);
	assert_int_equal(o.minor, 22);
	assert_int_equal(payload_len, FUSE_COMPAT_22_INIT_OUT_SIZE);
	assert_int_equal(fuse_server_minor(srv), 22);
	/* 7.31 gets the full reply */
	assert_int_equal(do_init_full(7, 31, 0, 0, &o), 0);
	assert_int_equal(o.minor, 31);
	assert_int_equal(o.flags, 0);
	assert_int_equal(payload_len, sizeof(o));
	/* flags2 without FUSE_INIT_EXT is ignored */
	assert_int_equal(do_init_full(7, 38, FUSE_ASYNC_READ, 0xffffffffu, &o), 0);
	assert_int_equal(o.flags, FUSE_ASYNC_READ);
	assert_int_equal(o.flags2, 0);
}

static void test_init_offers_options_we_enable(void **state)
{
	(void)state;
	teardown(NULL);
	struct fuse_server_opts opts = { .writeback = true, .max_write = 64 * 1024 };
	g_cache = FS_CACHE_NEVER;
	assert_int_equal(setup_opts(&opts), 0);
	struct fuse_init_out o;
	uint32_t offered = FUSE_WRITEBACK_CACHE | FUSE_DO_READDIRPLUS | FUSE_POSIX_LOCKS | FUSE_AUTO_INVAL_DATA;
	assert_int_equal(do_init_full(7, 38, offered, 0, &o), 0);
	assert_int_equal(o.flags, FUSE_WRITEBACK_CACHE); /* no readdirplus, no locks, cache=never: no inval */
	assert_int_equal(o.max_write, 64 * 1024);
	assert_int_equal(o.max_pages, 16);
}

static void test_init_offers_the_request_timeout_when_asked(void **state)
{
	(void)state;
	struct fuse_init_out o;
	struct fuse_init_out_tail tail;
	uint32_t flags2 = (uint32_t)(FUSE_REQUEST_TIMEOUT >> 32);
	assert_int_equal(do_init_full(7, 45, FUSE_INIT_EXT, flags2, &o), 0);
	assert_int_equal(o.flags2 & flags2, 0); /* not without --request-timeout */
	teardown(NULL);
	struct fuse_server_opts opts = { .request_timeout = 30 };
	assert_int_equal(setup_opts(&opts), 0);
	assert_int_equal(do_init_full(7, 45, FUSE_INIT_EXT, 0, &o), 0); /* a guest that does not offer it */
	memcpy(&tail, (uint8_t *)&o + FUSE_INIT_OUT_TAIL_OFFSET, sizeof(tail));
	assert_int_equal(o.flags2, 0);
	assert_int_equal(tail.request_timeout, 0);
	assert_int_equal(do_init_full(7, 45, FUSE_INIT_EXT, flags2, &o), 0);
	memcpy(&tail, (uint8_t *)&o + FUSE_INIT_OUT_TAIL_OFFSET, sizeof(tail));
	assert_int_equal(o.flags2, flags2);
	assert_int_equal(tail.request_timeout, 30);
}

static int mkdir_umask(const char *name, uint32_t mode, uint32_t umask)
{
	struct fuse_mkdir_in in = { .mode = mode, .umask = umask };
	struct fuse_entry_out e;
	begin(FUSE_MKDIR, FS_ROOT_ID);
	put(&in, sizeof(in));
	put_str(name);
	return call(&e, sizeof(e));
}

static int setxattr_ext(uint64_t node, const char *name, const void *value, uint32_t size, uint32_t flags,
                        uint32_t setxattr_flags)
{
	struct fuse_setxattr_in in = { .size = size, .flags = flags, .setxattr_flags = setxattr_flags };
	begin(FUSE_SETXATTR, node);
	put(&in, sizeof(in));
	put_str(name);
	put(value, size);
	return call(NULL, 0);
}

/* The same without SETXATTR_EXT: the short fuse_setxattr_in of a guest that did not agree it. */
static int setxattr_short(uint64_t node, const char *name, const void *value, uint32_t size)
{
	struct fuse_setxattr_in in = { .size = size };
	begin(FUSE_SETXATTR, node);
	put(&in, FUSE_COMPAT_SETXATTR_IN_SIZE);
	put_str(name);
	put(value, size);
	return call(NULL, 0);
}

static mode_t host_mode(const char *name)
{
	struct stat st;
	assert_int_equal(stat(hpath(name), &st), 0);
	return st.st_mode & 07777;
}

/* An access ACL with only the owner, group and other entries (the xattr's wire form): u::rw-, g::rwx, o::---. */
static const uint8_t minimal_acl[] = { 2, 0, 0, 0, 1, 0, 6, 0, 0xff, 0xff, 0xff, 0xff, 4, 0, 7, 0,
                                       0xff, 0xff, 0xff, 0xff, 0x20, 0, 0, 0, 0xff, 0xff, 0xff, 0xff };

static void test_posix_acl_negotiation_umask_and_kill_sgid(void **state)
{
	(void)state;
	const uint32_t acl_flags = FUSE_POSIX_ACL | FUSE_DONT_MASK | FUSE_SETXATTR_EXT;
	struct fuse_init_out o;
	struct create_out co;

	/* Without --posix-acl the guest applied its umask: a umask field is not applied again. */
	init_ok();
	assert_int_equal(mkdir_umask("plain", 0777, 027), 0);
	assert_int_equal(host_mode("plain"), 0777);
	teardown(NULL);

	/* --posix-acl=auto: a guest without all three flags gets none of them and no ACLs (ACL names refused, its
	 * umask its own); one with them gets ACLs. */
	struct fuse_server_opts opts = { .posix_acl = true };
	g_posix_acl = true;
	assert_int_equal(setup_opts(&opts), 0);
	assert_int_equal(do_init_full(7, 38, acl_flags & ~FUSE_DONT_MASK, 0, &o), 0);
	assert_int_equal(o.flags & acl_flags, 0);
	assert_int_equal(create_op(FS_ROOT_ID, "auto", &co), 0);
	assert_int_equal(setxattr_short(co.e.nodeid, "system.posix_acl_access", minimal_acl, sizeof(minimal_acl)),
	                 -EOPNOTSUPP);
	assert_int_equal(setxattr_short(co.e.nodeid, "user.fine", "v", 1), 0);
	assert_int_equal(mkdir_umask("auto-dir", 0777, 027), 0);
	assert_int_equal(host_mode("auto-dir"), 0777);
	teardown(NULL);
	g_posix_acl = true;
	assert_int_equal(setup_opts(&opts), 0);
	assert_int_equal(do_init_full(7, 38, acl_flags, 0, &o), 0);
	assert_int_equal(o.flags & acl_flags, acl_flags);
	teardown(NULL);

	opts.posix_acl_required = true; /* --posix-acl=always */
	g_posix_acl = true;
	assert_int_equal(setup_opts(&opts), 0);
	/* A guest that cannot enforce ACLs, keep the umask or report S_ISGID decisions is refused, as virtiofsd. */
	assert_int_equal(do_init_full(7, 38, acl_flags & ~FUSE_DONT_MASK, 0, &o), -EPROTO);
	assert_int_equal(do_init_full(7, 38, acl_flags & ~FUSE_SETXATTR_EXT, 0, &o), -EPROTO);
	assert_int_equal(do_init_full(7, 38, acl_flags, 0, &o), 0);
	assert_int_equal(o.flags & acl_flags, acl_flags);

	/* The guest left the umask to us: the host applies it (no default ACL here). */
	assert_int_equal(mkdir_umask("masked", 0777, 027), 0);
	assert_int_equal(host_mode("masked"), 0750);
	assert_int_equal(mkdir_umask("hostile", 0777, 0xffffffffu), 0); /* only the permission bits count */
	assert_int_equal(host_mode("hostile"), 0);

	/* S_ISGID goes with an access ACL only when the guest says so; our own flag bit is not the guest's. */
	assert_int_equal(create_op(FS_ROOT_ID, "kept", &co), 0);
	assert_int_equal(create_op(FS_ROOT_ID, "killed", &co), 0);
	assert_int_equal(chmod(hpath("kept"), 02770), 0);
	assert_int_equal(chmod(hpath("killed"), 02770), 0);
	uint64_t kept, killed;
	struct fuse_entry_out e;
	assert_int_equal(lookup(FS_ROOT_ID, "kept", &e), 0);
	kept = e.nodeid;
	assert_int_equal(lookup(FS_ROOT_ID, "killed", &e), 0);
	killed = e.nodeid;
	const char *name = "system.posix_acl_access";
	assert_int_equal(setxattr_ext(kept, name, minimal_acl, sizeof(minimal_acl), 0, 0), 0);
	assert_int_equal(setxattr_ext(killed, name, minimal_acl, sizeof(minimal_acl), 0,
	                              FUSE_SETXATTR_ACL_KILL_SGID), 0);
	assert_int_equal(host_mode("kept"), 02670);
	assert_int_equal(host_mode("killed"), 0670);
	assert_int_equal(setxattr_ext(kept, "user.x", "v", 1, FS_XATTR_KILL_SGID, 0), -EINVAL);
}

/* ---- security contexts (FUSE_SECURITY_CTX): request extensions built by hand ---- */

static uint8_t ext[512];
static size_t ext_len;

/* Appends one fuse_secctx_header record with nr contexts (the first named name with value), padded to 8. */
static void ext_secctx(uint32_t nr, const char *name, const char *value)
{
	struct fuse_secctx_header h = { .nr_secctx = nr };
	struct fuse_secctx sc = { .size = value ? (uint32_t)strlen(value) : 0 };
	size_t start = ext_len, n = sizeof(h);
	if (name) {
		memcpy(ext + start + n, &sc, sizeof(sc));
		n += sizeof(sc);
		memcpy(ext + start + n, name, strlen(name) + 1);
		n += strlen(name) + 1;
		memcpy(ext + start + n, value, sc.size);
		n += sc.size;
	}
	n = (n + 7) & ~(size_t)7; /* the padding is zero: ext is cleared after each request */
	h.size = (uint32_t)n;
	memcpy(ext + start, &h, sizeof(h));
	ext_len += n;
}

/* Ends the request with the extensions built so far (total_extlen in 8-byte units, as the kernel sends). */
static int call_ext(void)
{
	put(ext, ext_len);
	hdr()->total_extlen = (uint16_t)(ext_len / 8);
	ext_len = 0;
	memset(ext, 0, sizeof(ext));
	return call(NULL, 0);
}

static int mkdir_ext(const char *name)
{
	struct fuse_mkdir_in in = { .mode = 0755 };
	begin(FUSE_MKDIR, FS_ROOT_ID);
	put(&in, sizeof(in));
	put_str(name);
	return call_ext();
}

static int create_ext(const char *name)
{
	struct fuse_create_in in = { .flags = O_RDWR | O_CREAT, .mode = S_IFREG | 0644 };
	begin(FUSE_CREATE, FS_ROOT_ID);
	put(&in, sizeof(in));
	put_str(name);
	return call_ext();
}

static int symlink_ext(const char *name)
{
	begin(FUSE_SYMLINK, FS_ROOT_ID);
	put_str(name);
	put_str("target");
	return call_ext();
}

static int mknod_ext(const char *name)
{
	struct fuse_mknod_in in = { .mode = S_IFIFO | 0644 };
	begin(FUSE_MKNOD, FS_ROOT_ID);
	put(&in, sizeof(in));
	put_str(name);
	return call_ext();
}

/* The host's value of xattr on name ("" when it has none). */
static const char *host_xattr(const char *name, const char *xattr)
{
	static char v[256];
	ssize_t n = lgetxattr(hpath(name), xattr, v, sizeof(v) - 1);
	v[n > 0 ? n : 0] = '\0';
	return v;
}

static void init_secctx(void)
{
	struct fuse_init_out o;
	assert_int_equal(do_init_full(7, 38, FUSE_INIT_EXT, FUSE_SECURITY_CTX >> 32, &o), 0);
	assert_int_equal(o.flags2 & (FUSE_SECURITY_CTX >> 32), FUSE_SECURITY_CTX >> 32);
}

static void test_security_context_labels_every_kind_of_new_node(void **state)
{
	(void)state;
	teardown(NULL);
	/* --security-label=auto: a guest without FUSE_SECURITY_CTX is served without labels */
	struct fuse_server_opts opts = { .security_label = true };
	assert_int_equal(setup_opts(&opts), 0);
	struct fuse_init_out o;
	assert_int_equal(do_init_full(7, 38, FUSE_INIT_EXT, 0, &o), 0);
	assert_int_equal(o.flags2 & (FUSE_SECURITY_CTX >> 32), 0);
	teardown(NULL);
	opts.security_label_required = true; /* =always */
	assert_int_equal(setup_opts(&opts), 0);
	assert_int_equal(do_init_full(7, 38, FUSE_INIT_EXT, 0, &o), -EPROTO); /* as virtiofsd */
	init_secctx();

	ext_secctx(1, "security.vufs", "guest_t");
	assert_int_equal(create_ext("file"), 0);
	ext_secctx(1, "security.vufs", "dir_t");
	assert_int_equal(mkdir_ext("dir"), 0);
	ext_secctx(1, "security.vufs", "link_t");
	assert_int_equal(symlink_ext("link"), 0);
	ext_secctx(1, "security.vufs", "fifo_t");
	assert_int_equal(mknod_ext("fifo"), 0);
	assert_string_equal(host_xattr("file", "security.vufs"), "guest_t");
	assert_string_equal(host_xattr("dir", "security.vufs"), "dir_t");
	assert_string_equal(host_xattr("link", "security.vufs"), "link_t");
	assert_string_equal(host_xattr("fifo", "security.vufs"), "fifo_t");
	/* What Linux sends without an LSM: a header with no context. */
	ext_secctx(0, NULL, NULL);
	assert_int_equal(mkdir_ext("plain"), 0);
	assert_string_equal(host_xattr("plain", "security.vufs"), "");
}

static void test_hostile_request_extensions_are_refused(void **state)
{
	(void)state;

	/* Before FUSE_SECURITY_CTX is agreed (the default server does not offer it), a context is checked for its size
	 * like any extension but not taken: the node is made as without one. */
	init_ok();
	ext_secctx(1, "security.vufs", "early_t");
	assert_int_equal(mkdir_ext("early"), 0);
	assert_int_equal(lgetxattr(hpath("early"), "security.vufs", NULL, 0), -1);
	ext_secctx(0, NULL, NULL);
	memcpy(ext, &(uint32_t){ 64 }, sizeof(uint32_t)); /* a record past the extensions: refused all the same */
	assert_int_equal(mkdir_ext("early2"), -EINVAL);
	assert_int_equal(access(hpath("early2"), F_OK), -1);
	teardown(NULL);
	struct fuse_server_opts opts = { .security_label = true };
	assert_int_equal(setup_opts(&opts), 0);
	init_secctx();

	/* total_extlen beyond the bytes that arrived. */
	begin(FUSE_MKDIR, FS_ROOT_ID);
	struct fuse_mkdir_in in = { .mode = 0755 };
	put(&in, sizeof(in));
	put_str("x");
	hdr()->total_extlen = 1000;
	assert_int_equal(call(NULL, 0), -EINVAL);
	/* An extension on a request that creates nothing is not read (Linux extends none; a FORGET must stay without
	 * a reply whatever follows it): the LOOKUP is answered as without it. */
	begin(FUSE_LOOKUP, FS_ROOT_ID);
	put_str("x");
	ext_secctx(1, "trusted.a", "v");
	assert_int_equal(call_ext(), -ENOENT);
	/* A record of a type we do not know is skipped by its size, like FUSE_EXT_GROUPS in a session without it. */
	memcpy(ext, &(struct fuse_ext_header){ .size = 8, .type = 0xffffffffu }, 8);
	ext_len = 8;
	ext_secctx(1, "security.vufs", "after_t");
	assert_int_equal(mkdir_ext("skipped"), 0);
	assert_string_equal(host_xattr("skipped", "security.vufs"), "after_t");

	struct { uint32_t size, type; } bad[] = { { 4, 0 }, { 12, 0 }, { 64, 0 }, { 8, 32 }, { 0, 0xffffffffu } };
	for (unsigned i = 0; i < ARRAY_SIZE(bad); i++) {
		memset(ext, 0, 16);
		memcpy(ext, &bad[i], sizeof(bad[i]));
		ext_len = 16;
		assert_int_equal(mkdir_ext("x"), -EINVAL);
	}
	ext_secctx(2, "security.a", "v"); /* two contexts: Linux sends one */
	assert_int_equal(mkdir_ext("x"), -EINVAL);
	ext_secctx(1, "trusted.a", "v"); /* not a security context */
	assert_int_equal(mkdir_ext("x"), -EINVAL);
	ext_secctx(1, "security.", "v");
	assert_int_equal(mkdir_ext("x"), -EINVAL);
	ext_secctx(1, "security.a", "v");
	ext_secctx(1, "security.b", "w"); /* a second record with a context */
	assert_int_equal(mkdir_ext("x"), -EINVAL);

	/* A context size past its record, and a name with no NUL inside it. */
	ext_secctx(1, "security.a", "vvvvvv");
	uint32_t big = 14; /* 13 bytes follow the name */
	memcpy(ext + 8, &big, sizeof(big));
	assert_int_equal(mkdir_ext("x"), -EINVAL);
	struct fuse_secctx_header h = { .size = 24, .nr_secctx = 1 };
	struct fuse_secctx sc = { .size = 0 };
	memcpy(ext, &h, sizeof(h));
	memcpy(ext + 8, &sc, sizeof(sc));
	memcpy(ext + 16, "security", 8);
	ext_len = 24;
	assert_int_equal(mkdir_ext("x"), -EINVAL);
	/* A name longer than XATTR_NAME_MAX. */
	char longname[XATTR_NAME_MAX + 2];
	memset(longname, 'n', sizeof(longname) - 1);
	memcpy(longname, "security.", 9);
	longname[sizeof(longname) - 1] = '\0';
	ext_secctx(1, longname, "v");
	assert_int_equal(mkdir_ext("x"), -EINVAL);
	assert_int_equal(access(hpath("x"), F_OK), -1); /* nothing was made by any of them */
}

/* A fresh session with --security-label and these --xattrmap rules, FUSE_SECURITY_CTX agreed; the caller frees
 * the rules after its teardown. */
static struct xattrmap *session_with_map(const char *rules)
{
	static char err[128];
	struct xattrmap *m = NULL;
	struct fuse_server_opts opts = { .security_label = true };
	assert_int_equal(xattrmap_parse(rules, &m, err, sizeof(err)), 0);
	g_xattrmap = m;
	assert_int_equal(setup_opts(&opts), 0);
	init_secctx();
	return m;
}

static void test_security_context_goes_through_xattrmap(void **state)
{
	(void)state;
	teardown(NULL);
	struct xattrmap *m = session_with_map(":map:security.:user.virtiofs.:");
	ext_secctx(1, "security.selinux", "system_u:object_r:guest_t:s0");
	assert_int_equal(create_ext("mapped"), 0);
	assert_string_equal(host_xattr("mapped", "user.virtiofs.security.selinux"), "system_u:object_r:guest_t:s0");
	assert_string_equal(host_xattr("mapped", "security.selinux"), "");
	teardown(NULL);
	xattrmap_free(m);

	/* virtiofsd's advice, :map:security.selinux:trusted.virtiofs.: : a guest user reads the label as on a local
	 * file system, though the host name is trusted.* (the privilege is judged on the guest's name). */
	m = session_with_map(":map:security.selinux:trusted.virtiofs.:");
	ext_secctx(1, "security.selinux", "guest_t");
	assert_int_equal(create_ext("trusted"), 0);
	assert_string_equal(host_xattr("trusted", "trusted.virtiofs.security.selinux"), "guest_t");
	struct fuse_entry_out e;
	assert_int_equal(lookup(FS_ROOT_ID, "trusted", &e), 0);
	struct fuse_getxattr_in gin = { .size = 64 };
	char val[64] = "";
	begin(FUSE_GETXATTR, e.nodeid);
	hdr()->uid = hdr()->gid = 1000;
	put(&gin, sizeof(gin));
	put_str("security.selinux");
	assert_int_equal(call(val, sizeof(val)), 0);
	assert_memory_equal(val, "guest_t", 7);
	begin(FUSE_GETXATTR, e.nodeid); /* the host name itself is refused to the guest */
	put(&gin, sizeof(gin));
	put_str("trusted.virtiofs.security.selinux");
	assert_int_equal(call(val, sizeof(val)), -ENODATA);
	teardown(NULL);
	xattrmap_free(m);

	/* A label the rules refuse: the node goes again, as in virtiofsd. */
	m = session_with_map(":unsupported:client:security.:::ok:all:::");
	ext_secctx(1, "security.selinux", "x");
	assert_int_equal(create_ext("refused"), -EOPNOTSUPP);
	ext_secctx(1, "security.selinux", "x");
	assert_int_equal(mkdir_ext("refused_dir"), -EOPNOTSUPP);
	assert_int_equal(access(hpath("refused"), F_OK), -1);
	assert_int_equal(access(hpath("refused_dir"), F_OK), -1);
	teardown(NULL);
	xattrmap_free(m);
	assert_int_equal(setup(NULL), 0);
}

static void test_init_with_newer_major_answers_only_the_major(void **state)
{
	(void)state;
	struct fuse_init_out o;
	assert_int_equal(do_init_full(8, 0, FUSE_ASYNC_READ, 0, &o), 0);
	assert_int_equal(o.major, 7);
	assert_true(payload_len < sizeof(o)); /* not a full negotiation */
	assert_int_equal(o.flags, 0);
	assert_int_equal(fuse_server_minor(srv), 0); /* and no session yet */
	struct fuse_entry_out e;
	assert_int_equal(lookup(FS_ROOT_ID, "x", &e), -EIO);
	/* The kernel then retries with 7.x */
	init_ok();
	assert_int_equal(lookup(FS_ROOT_ID, "x", &e), -ENOENT);
}

static void test_init_with_older_major_or_short_args_is_refused(void **state)
{
	(void)state;
	struct fuse_init_out o;
	assert_int_equal(do_init_full(6, 99, 0, 0, &o), -EPROTO);
	assert_int_equal(fuse_server_minor(srv), 0);
	struct fuse_init_in in = { .major = 7, .minor = 38 };
	begin(FUSE_INIT, 0);
	put(&in, 12); /* not even the flags */
	assert_int_equal(call(NULL, 0), -EINVAL);
	assert_int_equal(fuse_server_minor(srv), 0);
}

static void test_destroy_ends_the_session(void **state)
{
	(void)state;
	init_ok();
	struct fuse_entry_out e;
	assert_int_equal(mkdir_op(FS_ROOT_ID, "d", &e), 0);
	assert_int_equal(ninodes(), 2);
	begin(FUSE_DESTROY, 0);
	assert_int_equal(call(NULL, 0), 0);
	assert_int_equal(payload_len, 0);
	assert_int_equal(ninodes(), 1); /* every reference the guest held is gone */
	assert_int_equal(lookup(FS_ROOT_ID, "d", &e), -EIO);
	init_ok();
	assert_int_equal(lookup(FS_ROOT_ID, "d", &e), 0);
}

/* ---- round trips ---- */

static void test_lookup_mkdir_create_write_read_round_trip(void **state)
{
	(void)state;
	init_ok();
	struct fuse_entry_out d, e;
	struct create_out co;
	assert_int_equal(mkdir_op(FS_ROOT_ID, "dir", &d), 0);
	assert_int_equal(payload_len, sizeof(d));
	assert_true(S_ISDIR(d.attr.mode));
	assert_int_equal(d.attr.mode & 0777, 0755);
	assert_int_equal(d.entry_valid, 1); /* cache=auto */
	assert_int_equal(lookup(FS_ROOT_ID, "dir", &e), 0);
	assert_int_equal(e.nodeid, d.nodeid);
	assert_int_equal(e.attr.ino, d.attr.ino);
	assert_int_equal(mkdir_op(FS_ROOT_ID, "dir", &e), -EEXIST);

	assert_int_equal(create_op(d.nodeid, "file", &co), 0);
	assert_int_equal(payload_len, sizeof(co));
	assert_true(S_ISREG(co.e.attr.mode));
	uint32_t written = 0;
	assert_int_equal(write_op(co.e.nodeid, co.o.fh, 0, "hello, world", &written), 0);
	assert_int_equal(written, 12);
	assert_int_equal(write_op(co.e.nodeid, co.o.fh, 7, "WORLD", &written), 0);
	assert_int_equal(written, 5);

	build_read(FUSE_READ, co.e.nodeid, co.o.fh, 0, 4096);
	char buf[64] = { 0 };
	assert_int_equal(call(buf, sizeof(buf)), 0);
	assert_int_equal(payload_len, 12);
	assert_memory_equal(buf, "hello, WORLD", 12);
	build_read(FUSE_READ, co.e.nodeid, co.o.fh, 5, 3);
	assert_int_equal(call(buf, sizeof(buf)), 0);
	assert_int_equal(payload_len, 3);
	assert_memory_equal(buf, ", W", 3);
	build_read(FUSE_READ, co.e.nodeid, co.o.fh, 100, 10);
	assert_int_equal(call(buf, sizeof(buf)), 0);
	assert_int_equal(payload_len, 0);

	/* The host sees the file where it belongs. */
	int fd = open(hpath("dir/file"), O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(read(fd, buf, sizeof(buf)), 12);
	close(fd);

	/* GETATTR agrees */
	struct fuse_getattr_in gi = { .getattr_flags = FUSE_GETATTR_FH, .fh = co.o.fh };
	struct fuse_attr_out ao;
	begin(FUSE_GETATTR, co.e.nodeid);
	put(&gi, sizeof(gi));
	assert_int_equal(call(&ao, sizeof(ao)), 0);
	assert_int_equal(ao.attr.size, 12);
	assert_int_equal(ao.attr.ino, co.e.attr.ino);

	struct fuse_release_in ri = { .fh = co.o.fh };
	begin(FUSE_RELEASE, co.e.nodeid);
	put(&ri, sizeof(ri));
	assert_int_equal(call(NULL, 0), 0);
	/* The handle is gone */
	build_read(FUSE_READ, co.e.nodeid, co.o.fh, 0, 10);
	assert_int_not_equal(call(buf, sizeof(buf)), 0);
}

static void test_readdir_and_readdirplus_round_trip(void **state)
{
	(void)state;
	init_ok();
	struct fuse_entry_out d, e;
	struct create_out co;
	assert_int_equal(mkdir_op(FS_ROOT_ID, "dir", &d), 0);
	assert_int_equal(create_op(d.nodeid, "a", &co), 0);
	assert_int_equal(mkdir_op(d.nodeid, "b", &e), 0);

	struct fuse_open_in oi = { .flags = O_RDONLY };
	struct fuse_open_out oo;
	begin(FUSE_OPENDIR, d.nodeid);
	put(&oi, sizeof(oi));
	assert_int_equal(call(&oo, sizeof(oo)), 0);

	static uint8_t list[8192];
	char names[256];
	build_read(FUSE_READDIR, d.nodeid, oo.fh, 0, sizeof(list));
	assert_int_equal(call(list, sizeof(list)), 0);
	assert_int_equal(parse_dir(list, payload_len, false, names, sizeof(names), NULL), 4);
	assert_non_null(strstr(names, ",.,"));
	assert_non_null(strstr(names, ",..,"));
	assert_non_null(strstr(names, ",a,"));
	assert_non_null(strstr(names, ",b,"));

	/* READDIRPLUS: entries carry node ids (a lookup each), "." and ".." none */
	uint64_t before = ninodes();
	uint64_t ids[8];
	build_read(FUSE_READDIRPLUS, d.nodeid, oo.fh, 0, sizeof(list));
	assert_int_equal(call(list, sizeof(list)), 0);
	assert_int_equal(parse_dir(list, payload_len, true, names, sizeof(names), ids), 4);
	assert_non_null(strstr(names, ",a,"));
	bool saw_a = false, saw_b = false;
	size_t off = 0;
	while (off < payload_len) {
		const struct fuse_direntplus *dp = (const void *)(list + off);
		if (dp->dirent.namelen == 1 && dp->dirent.name[0] == 'a') {
			saw_a = true;
			assert_int_equal(dp->entry_out.nodeid, co.e.nodeid);
			assert_int_equal(dp->dirent.type, DT_REG);
		} else if (dp->dirent.namelen == 1 && dp->dirent.name[0] == 'b') {
			saw_b = true;
			assert_int_equal(dp->entry_out.nodeid, e.nodeid);
			assert_true(S_ISDIR(dp->entry_out.attr.mode));
		} else {
			assert_int_equal(dp->entry_out.nodeid, 0);
		}
		off += FUSE_DIRENTPLUS_SIZE(dp);
	}
	assert_true(saw_a && saw_b);
	assert_int_equal(ninodes(), before); /* both already known: references added, no new inodes */

	/* A buffer that holds one entry only: one entry, and the next offset continues */
	build_read(FUSE_READDIR, d.nodeid, oo.fh, 0, FUSE_DIRENT_ALIGN(FUSE_NAME_OFFSET + 1));
	assert_int_equal(call(list, sizeof(list)), 0);
	assert_int_equal(parse_dir(list, payload_len, false, names, sizeof(names), NULL), 1);
	uint64_t next = ((const struct fuse_dirent *)list)->off;
	build_read(FUSE_READDIR, d.nodeid, oo.fh, next, sizeof(list));
	assert_int_equal(call(list, sizeof(list)), 0);
	assert_int_equal(parse_dir(list, payload_len, false, names, sizeof(names), NULL), 3);

	struct fuse_release_in ri = { .fh = oo.fh };
	begin(FUSE_RELEASEDIR, d.nodeid);
	put(&ri, sizeof(ri));
	assert_int_equal(call(NULL, 0), 0);
}

static void test_rename2_and_unlink_round_trip(void **state)
{
	(void)state;
	init_ok();
	struct fuse_entry_out d, e;
	struct create_out co, co2;
	assert_int_equal(mkdir_op(FS_ROOT_ID, "dir", &d), 0);
	assert_int_equal(create_op(FS_ROOT_ID, "f", &co), 0);
	assert_int_equal(create_op(FS_ROOT_ID, "g", &co2), 0);

	assert_int_equal(rename2_op(FS_ROOT_ID, "f", d.nodeid, "moved", 0), 0);
	assert_int_equal(lookup(FS_ROOT_ID, "f", &e), -ENOENT);
	assert_int_equal(lookup(d.nodeid, "moved", &e), 0);
	assert_int_equal(e.nodeid, co.e.nodeid); /* same inode, same node id */
	assert_int_equal(access(hpath("dir/moved"), F_OK), 0);

	assert_int_equal(rename2_op(FS_ROOT_ID, "g", d.nodeid, "moved", RENAME_NOREPLACE), -EEXIST);
	assert_int_equal(rename2_op(FS_ROOT_ID, "g", d.nodeid, "moved", RENAME_EXCHANGE), 0);
	assert_int_equal(lookup(FS_ROOT_ID, "g", &e), 0);
	assert_int_equal(e.nodeid, co.e.nodeid);
	assert_int_equal(rename2_op(FS_ROOT_ID, "g", d.nodeid, "x", 1u << 10), -EINVAL); /* unknown flag */
	assert_int_equal(rename2_op(FS_ROOT_ID, "nope", d.nodeid, "x", 0), -ENOENT);

	assert_int_equal(unlink_op(d.nodeid, "moved"), 0);
	assert_int_equal(access(hpath("dir/moved"), F_OK), -1);
	assert_int_equal(unlink_op(d.nodeid, "moved"), -ENOENT);
	assert_int_equal(unlink_op(FS_ROOT_ID, "dir"), -EISDIR);
}

/* ---- framing ---- */

static void test_request_split_across_small_iovecs(void **state)
{
	(void)state;
	init_ok();
	struct fuse_entry_out d;
	assert_int_equal(mkdir_op(FS_ROOT_ID, "some-directory", &d), 0);

	/* LOOKUP one byte per iovec, reply in 7-byte pieces */
	begin(FUSE_LOOKUP, FS_ROOT_ID);
	put_str("some-directory");
	end();
	size_t n = serve_ex(req_len, 1, 1024, 7);
	assert_int_equal(reply_error(n), 0);
	assert_int_equal(payload_len, sizeof(struct fuse_entry_out));
	const struct fuse_entry_out *e = (const void *)(out + sizeof(struct fuse_out_header));
	assert_int_equal(e->nodeid, d.nodeid);
	assert_true(S_ISDIR(e->attr.mode));

	/* CREATE split at every 3 bytes, so the name and the struct straddle iovecs */
	struct fuse_create_in ci = { .flags = O_RDWR | O_CREAT, .mode = S_IFREG | 0600 };
	begin(FUSE_CREATE, d.nodeid);
	put(&ci, sizeof(ci));
	put_str("file");
	end();
	n = serve_ex(req_len, 3, 1024, 5);
	assert_int_equal(reply_error(n), 0);
	struct create_out co;
	memcpy(&co, out + sizeof(struct fuse_out_header), sizeof(co));

	/* WRITE whose data is scattered over 2-byte iovecs (header and data share some) */
	static const char text[] = "scattered write data";
	build_write(co.e.nodeid, co.o.fh, 0, text, sizeof(text) - 1, sizeof(text) - 1);
	n = serve_ex(req_len, 2, 1024, 3);
	assert_int_equal(reply_error(n), 0);
	assert_int_equal(((const struct fuse_write_out *)(out + 16))->size, sizeof(text) - 1);

	/* READ into 3-byte reply iovecs */
	build_read(FUSE_READ, co.e.nodeid, co.o.fh, 0, 100);
	n = serve_ex(req_len, 5, 16 + 30, 3);
	assert_int_equal(reply_error(n), 0);
	assert_int_equal(payload_len, sizeof(text) - 1);
	assert_memory_equal(out + 16, text, sizeof(text) - 1);

	/* The host file holds exactly the data */
	char buf[64];
	int fd = open(hpath("some-directory/file"), O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(read(fd, buf, sizeof(buf)), sizeof(text) - 1);
	assert_memory_equal(buf, text, sizeof(text) - 1);
	close(fd);
}

static void test_read_into_more_segments_than_the_worker_has_is_short(void **state)
{
	(void)state;
	init_ok();
	struct create_out co;
	assert_int_equal(create_op(FS_ROOT_ID, "f", &co), 0);
	char data[100];
	memset(data, 'z', sizeof(data));
	build_write(co.e.nodeid, co.o.fh, 0, data, sizeof(data), sizeof(data));
	assert_int_equal(call(NULL, 0), 0);
	/* 1-byte reply iovecs: the header takes 16, the worker can point at WORKER_SEGS + 2 more */
	build_read(FUSE_READ, co.e.nodeid, co.o.fh, 0, 100);
	size_t n = serve_ex(req_len, 0, 16 + 100, 1);
	assert_int_equal(reply_error(n), 0);
	assert_int_equal(payload_len, WORKER_SEGS + 2);
	assert_int_equal(out[16], 'z');
	assert_int_equal(out[16 + WORKER_SEGS + 1], 'z');
	assert_int_equal(out[16 + WORKER_SEGS + 2], 0xa5); /* untouched */
	/* A WRITE scattered over more segments than that is refused */
	build_write(co.e.nodeid, co.o.fh, 0, data, 40, 40);
	n = serve_ex(req_len, 1, OUT_SIZE, 0);
	assert_int_equal(reply_error(n), -E2BIG);
}

static void test_header_len_must_equal_bytes(void **state)
{
	(void)state;
	init_ok();
	begin(FUSE_LOOKUP, FS_ROOT_ID);
	put_str("x");
	hdr()->len = (uint32_t)req_len + 1;
	size_t n = serve_ex(req_len, 0, OUT_SIZE, 0);
	assert_int_equal(reply_error(n), -EINVAL);
	hdr()->len = (uint32_t)req_len - 1;
	n = serve_ex(req_len, 0, OUT_SIZE, 0);
	assert_int_equal(reply_error(n), -EINVAL);
	hdr()->len = 0xffffffffu;
	n = serve_ex(req_len, 0, OUT_SIZE, 0);
	assert_int_equal(reply_error(n), -EINVAL);
	/* Extensions (total_extlen words) must lie within the arguments that arrived */
	hdr()->len = (uint32_t)req_len;
	hdr()->total_extlen = 1;
	n = serve_ex(req_len, 0, OUT_SIZE, 0);
	assert_int_equal(reply_error(n), -EINVAL);
	/* Fewer bytes than a header: an error, with whatever unique we could not read as 0 */
	n = serve_ex(10, 0, OUT_SIZE, 0);
	assert_int_equal(reply_error(n), -EINVAL);
	assert_int_equal(((const struct fuse_out_header *)out)->unique, 0);
	n = serve_ex(0, 0, OUT_SIZE, 0);
	assert_int_equal(reply_error(n), -EINVAL);
	/* The same request framed right works */
	hdr()->total_extlen = 0;
	n = serve_ex(req_len, 0, OUT_SIZE, 0);
	assert_int_equal(reply_error(n), -ENOENT);
	/* Arguments beyond what any request needs (more than the 128 KiB copy buffer) are refused, not copied */
	begin(FUSE_LOOKUP, FS_ROOT_ID);
	static uint8_t big[128 * 1024 + 1];
	memset(big, 'x', sizeof(big));
	put(big, sizeof(big));
	end();
	n = serve_ex(req_len, 0, OUT_SIZE, 0);
	assert_int_equal(reply_error(n), -E2BIG);
	/* while WRITE data of that size is not copied at all, so it is fine */
	struct create_out co;
	assert_int_equal(create_op(FS_ROOT_ID, "big", &co), 0);
	build_write(co.e.nodeid, co.o.fh, 0, big, sizeof(big), sizeof(big));
	struct fuse_write_out wo;
	assert_int_equal(call(&wo, sizeof(wo)), 0);
	assert_int_equal(wo.size, sizeof(big));
}

static void test_truncated_arguments_are_einval(void **state)
{
	(void)state;
	init_ok();
	struct fuse_entry_out d;
	struct create_out co;
	assert_int_equal(mkdir_op(FS_ROOT_ID, "d", &d), 0);
	assert_int_equal(create_op(FS_ROOT_ID, "f", &co), 0);
	uint8_t zeros[256] = { 0 };

	begin(FUSE_LOOKUP, FS_ROOT_ID); /* no name at all */
	assert_int_equal(call(NULL, 0), -EINVAL);
	begin(FUSE_MKDIR, FS_ROOT_ID); /* half a fuse_mkdir_in */
	put(zeros, sizeof(struct fuse_mkdir_in) / 2);
	assert_int_equal(call(NULL, 0), -EINVAL);
	begin(FUSE_MKDIR, FS_ROOT_ID); /* the struct, no name */
	put(zeros, sizeof(struct fuse_mkdir_in));
	assert_int_equal(call(NULL, 0), -EINVAL);
	begin(FUSE_RENAME2, FS_ROOT_ID);
	put(&(struct fuse_rename2_in){ .newdir = d.nodeid }, sizeof(struct fuse_rename2_in));
	put_str("f"); /* no new name */
	assert_int_equal(call(NULL, 0), -EINVAL);
	begin(FUSE_CREATE, FS_ROOT_ID);
	put(zeros, sizeof(struct fuse_create_in) - 1);
	assert_int_equal(call(NULL, 0), -EINVAL);
	begin(FUSE_READ, co.e.nodeid);
	put(zeros, sizeof(struct fuse_read_in) - 8);
	assert_int_equal(call(NULL, 0), -EINVAL);
	begin(FUSE_WRITE, co.e.nodeid);
	put(zeros, sizeof(struct fuse_write_in) - 4);
	assert_int_equal(call(NULL, 0), -EINVAL);
	begin(FUSE_GETATTR, co.e.nodeid);
	put(zeros, 4);
	assert_int_equal(call(NULL, 0), -EINVAL);
	begin(FUSE_SETATTR, co.e.nodeid);
	put(zeros, sizeof(struct fuse_setattr_in) - 1);
	assert_int_equal(call(NULL, 0), -EINVAL);
	begin(FUSE_OPEN, co.e.nodeid);
	assert_int_equal(call(NULL, 0), -EINVAL);
	/* Nothing was created along the way */
	assert_int_equal(access(hpath("f"), F_OK), 0);
	uint64_t n = ninodes();
	assert_int_equal(n, 3);
}

static void test_bad_names_are_refused(void **state)
{
	(void)state;
	init_ok();
	struct fuse_entry_out d, e;
	assert_int_equal(mkdir_op(FS_ROOT_ID, "d", &d), 0);
	char name[300];

	/* without NUL */
	begin(FUSE_LOOKUP, FS_ROOT_ID);
	put("d", 1);
	assert_int_equal(call(NULL, 0), -EINVAL);
	begin(FUSE_MKDIR, FS_ROOT_ID);
	put(&(struct fuse_mkdir_in){ .mode = 0755 }, sizeof(struct fuse_mkdir_in));
	put("newdir", 6);
	assert_int_equal(call(NULL, 0), -EINVAL);
	assert_int_equal(access(hpath("newdir"), F_OK), -1);
	/* empty */
	assert_int_equal(lookup(FS_ROOT_ID, "", &e), -EINVAL);
	assert_int_equal(mkdir_op(FS_ROOT_ID, "", &e), -EINVAL);
	/* with '/' */
	assert_int_equal(lookup(FS_ROOT_ID, "d/x", &e), -EINVAL);
	assert_int_equal(mkdir_op(FS_ROOT_ID, "d/x", &e), -EINVAL);
	assert_int_equal(mkdir_op(FS_ROOT_ID, "/", &e), -EINVAL);
	assert_int_equal(access(hpath("d/x"), F_OK), -1);
	/* 255 bytes is the limit; 256 is refused as too long (a NUL that is there but too far) */
	memset(name, 'n', 255);
	name[255] = 0;
	assert_int_equal(lookup(FS_ROOT_ID, name, &e), -ENOENT);
	assert_int_equal(mkdir_op(FS_ROOT_ID, name, &e), 0);
	memset(name, 'n', 256);
	name[256] = 0;
	assert_int_equal(lookup(FS_ROOT_ID, name, &e), -ENAMETOOLONG);
	assert_int_equal(mkdir_op(FS_ROOT_ID, name, &e), -ENAMETOOLONG);
	assert_int_equal(unlink_op(FS_ROOT_ID, name), -ENAMETOOLONG);
	assert_int_equal(rename2_op(FS_ROOT_ID, "d", FS_ROOT_ID, name, 0), -ENAMETOOLONG);
	assert_int_equal(access(hpath("d"), F_OK), 0);
	/* 256 bytes and no NUL at all: malformed, not too long */
	begin(FUSE_LOOKUP, FS_ROOT_ID);
	put(name, 256);
	assert_int_equal(call(NULL, 0), -EINVAL);
	/* "." and ".." never name something new, and ".." never leads up */
	assert_int_equal(mkdir_op(FS_ROOT_ID, ".", &e), -EINVAL);
	assert_int_equal(mkdir_op(d.nodeid, "..", &e), -EINVAL);
	struct create_out co;
	assert_int_equal(create_op(d.nodeid, ".", &co), -EINVAL);
	assert_int_equal(create_op(FS_ROOT_ID, "..", &co), -EINVAL);
	assert_int_not_equal(unlink_op(d.nodeid, "."), 0);
	assert_int_not_equal(unlink_op(d.nodeid, ".."), 0);
	assert_int_not_equal(rename2_op(FS_ROOT_ID, "d", FS_ROOT_ID, "..", 0), 0);
	assert_int_not_equal(rename2_op(d.nodeid, "..", FS_ROOT_ID, "up", 0), 0);
	begin(FUSE_RMDIR, d.nodeid);
	put_str(".");
	assert_int_not_equal(call(NULL, 0), 0);
	assert_int_equal(lookup(d.nodeid, "..", &e), -EINVAL);
	assert_int_equal(lookup(FS_ROOT_ID, "..", &e), 0);
	assert_int_equal(e.nodeid, FS_ROOT_ID); /* the root's parent is the root */
	struct stat st;
	assert_int_equal(stat(hpath("d"), &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	/* SYMLINK with a target that has no NUL */
	begin(FUSE_SYMLINK, FS_ROOT_ID);
	put_str("link");
	put("target", 6);
	assert_int_not_equal(call(NULL, 0), 0);
	assert_int_equal(access(hpath("link"), F_OK), -1);
}

static void test_unknown_opcode_is_enosys(void **state)
{
	(void)state;
	init_ok();
	uint32_t ops[] = { 0, 9999, CUSE_INIT, FUSE_IOCTL, FUSE_POLL, FUSE_BMAP, FUSE_SETUPMAPPING, 0xffffffffu };
	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
		begin(ops[i], FS_ROOT_ID);
		put("\0\0\0\0\0\0\0\0", 8);
		assert_int_equal(call(NULL, 0), -ENOSYS);
	}
	/* Unknown before INIT too (it cannot be anything else) */
	teardown(NULL);
	assert_int_equal(setup(NULL), 0);
	begin(9999, FS_ROOT_ID);
	assert_int_equal(call(NULL, 0), -ENOSYS);
}

static void test_reply_space_too_small(void **state)
{
	(void)state;
	init_ok();
	struct fuse_entry_out d;
	assert_int_equal(mkdir_op(FS_ROOT_ID, "d", &d), 0);

	begin(FUSE_LOOKUP, FS_ROOT_ID);
	put_str("d");
	end();
	/* The entry does not fit: ERANGE in a bare header */
	size_t n = serve_ex(req_len, 0, sizeof(struct fuse_out_header) + sizeof(struct fuse_entry_out) - 1, 0);
	assert_int_equal(reply_error(n), -ERANGE);
	n = serve_ex(req_len, 0, sizeof(struct fuse_out_header), 0);
	assert_int_equal(reply_error(n), -ERANGE);
	/* Not even a header fits: no reply at all */
	assert_int_equal(serve_ex(req_len, 0, sizeof(struct fuse_out_header) - 1, 0), 0);
	assert_int_equal(serve_ex(req_len, 0, 0, 0), 0);
	/* Exactly enough works, and it was a real lookup */
	n = serve_ex(req_len, 0, sizeof(struct fuse_out_header) + sizeof(struct fuse_entry_out), 4);
	assert_int_equal(reply_error(n), 0);

	/* An error reply needs only the header */
	begin(FUSE_LOOKUP, FS_ROOT_ID);
	put_str("missing");
	end();
	n = serve_ex(req_len, 0, sizeof(struct fuse_out_header), 0);
	assert_int_equal(reply_error(n), -ENOENT);

	/* READ: clipped to the space (a short read), no reply without room for a header */
	struct create_out co;
	assert_int_equal(create_op(FS_ROOT_ID, "f", &co), 0);
	build_write(co.e.nodeid, co.o.fh, 0, "0123456789", 10, 10);
	assert_int_equal(call(NULL, 0), 0);
	build_read(FUSE_READ, co.e.nodeid, co.o.fh, 0, 10);
	n = serve_ex(req_len, 0, sizeof(struct fuse_out_header) + 4, 0);
	assert_int_equal(reply_error(n), 0);
	assert_int_equal(payload_len, 4);
	assert_memory_equal(out + 16, "0123", 4);
	assert_int_equal(serve_ex(req_len, 0, sizeof(struct fuse_out_header) - 1, 0), 0);

	/* READDIR with room for the header only */
	struct fuse_open_out oo;
	begin(FUSE_OPENDIR, FS_ROOT_ID);
	put(&(struct fuse_open_in){ 0 }, sizeof(struct fuse_open_in));
	assert_int_equal(call(&oo, sizeof(oo)), 0);
	build_read(FUSE_READDIR, FS_ROOT_ID, oo.fh, 0, 4096);
	n = serve_ex(req_len, 0, sizeof(struct fuse_out_header), 0);
	assert_true(reply_error(n) < 0);
	/* Room for a header and a few bytes: no entry fits, so the listing is empty (never a torn entry) */
	n = serve_ex(req_len, 0, sizeof(struct fuse_out_header) + 8, 0);
	assert_int_equal(reply_error(n), 0);
	assert_int_equal(payload_len, 0);
}

/* ---- FORGET ---- */

static void test_forget_and_batch_forget_lower_lookup_counts_without_reply(void **state)
{
	(void)state;
	init_ok();
	struct fuse_entry_out a, b, c, e;
	assert_int_equal(mkdir_op(FS_ROOT_ID, "a", &a), 0); /* lookup count 1 each */
	assert_int_equal(mkdir_op(FS_ROOT_ID, "b", &b), 0);
	assert_int_equal(mkdir_op(FS_ROOT_ID, "c", &c), 0);
	assert_int_equal(lookup(FS_ROOT_ID, "a", &e), 0); /* a: 2 */
	assert_int_equal(ninodes(), 4);

	assert_int_equal(forget_op(a.nodeid, 1), 0); /* no reply, a: 1 */
	assert_int_equal(ninodes(), 4);
	assert_int_equal(forget_op(a.nodeid, 1), 0); /* a: 0, gone */
	assert_int_equal(ninodes(), 3);

	struct fuse_batch_forget_in bi = { .count = 2 };
	struct fuse_forget_one ones[2] = { { b.nodeid, 1 }, { c.nodeid, 1 } };
	begin(FUSE_BATCH_FORGET, 0);
	put(&bi, sizeof(bi));
	put(ones, sizeof(ones));
	end();
	assert_int_equal(serve_ex(req_len, 3, OUT_SIZE, 0), 0);
	assert_int_equal(ninodes(), 1);
	/* The node ids are stale now: a lookup makes new ones */
	assert_int_equal(lookup(FS_ROOT_ID, "b", &e), 0);
	assert_int_equal(ninodes(), 2);
	/* FORGET with a truncated argument: still no reply, nothing forgotten */
	begin(FUSE_FORGET, e.nodeid);
	put("\1\0\0", 3);
	end();
	assert_int_equal(serve_ex(req_len, 0, OUT_SIZE, 0), 0);
	assert_int_equal(ninodes(), 2);
}

static void test_batch_forget_count_beyond_data_stops_at_the_end(void **state)
{
	(void)state;
	init_ok();
	struct fuse_entry_out a, b, c;
	assert_int_equal(mkdir_op(FS_ROOT_ID, "a", &a), 0);
	assert_int_equal(mkdir_op(FS_ROOT_ID, "b", &b), 0);
	assert_int_equal(mkdir_op(FS_ROOT_ID, "c", &c), 0);
	assert_int_equal(ninodes(), 4);

	/* Leave forget entries for b and c in the worker's copy buffer: a batch with count 0 uses none of them. */
	struct fuse_batch_forget_in bi = { .count = 0 };
	struct fuse_forget_one stale[3] = { { a.nodeid, 1 }, { b.nodeid, 1 }, { c.nodeid, 1 } };
	begin(FUSE_BATCH_FORGET, 0);
	put(&bi, sizeof(bi));
	put(stale, sizeof(stale));
	end();
	assert_int_equal(serve_ex(req_len, 0, OUT_SIZE, 0), 0);
	assert_int_equal(ninodes(), 4);

	/* count 3 with one entry (a): reading past the request would find b and c from before. */
	bi.count = 3;
	begin(FUSE_BATCH_FORGET, 0);
	put(&bi, sizeof(bi));
	put(&stale[0], sizeof(stale[0]));
	end();
	assert_int_equal(serve_ex(req_len, 0, OUT_SIZE, 0), 0);
	assert_int_equal(ninodes(), 3);
	struct fuse_entry_out e;
	assert_int_equal(lookup(FS_ROOT_ID, "b", &e), 0);
	assert_int_equal(e.nodeid, b.nodeid); /* b survived: same node id */
	assert_int_equal(ninodes(), 3);
	/* A huge count with half an entry */
	bi.count = 0xffffffffu;
	begin(FUSE_BATCH_FORGET, 0);
	put(&bi, sizeof(bi));
	put(&stale[2], 8);
	end();
	assert_int_equal(serve_ex(req_len, 0, OUT_SIZE, 0), 0);
	assert_int_equal(ninodes(), 3);
}

/* ---- WRITE ---- */

static void test_write_size_field_must_match_the_data(void **state)
{
	(void)state;
	init_ok();
	struct create_out co;
	assert_int_equal(create_op(FS_ROOT_ID, "f", &co), 0);
	static const char data[] = "0123456789";
	build_write(co.e.nodeid, co.o.fh, 0, data, 9, 10);
	assert_int_equal(call(NULL, 0), -EINVAL);
	build_write(co.e.nodeid, co.o.fh, 0, data, 11, 10);
	assert_int_equal(call(NULL, 0), -EINVAL);
	build_write(co.e.nodeid, co.o.fh, 0, data, 0xffffffffu, 10);
	assert_int_equal(call(NULL, 0), -EINVAL);
	struct stat st;
	assert_int_equal(stat(hpath("f"), &st), 0);
	assert_int_equal(st.st_size, 0); /* nothing was written */
	build_write(co.e.nodeid, co.o.fh, 0, data, 10, 10);
	assert_int_equal(call(NULL, 0), 0);
	assert_int_equal(stat(hpath("f"), &st), 0);
	assert_int_equal(st.st_size, 10);
	/* Zero bytes with size 0 is a valid (empty) write */
	build_write(co.e.nodeid, co.o.fh, 3, data, 0, 0);
	struct fuse_write_out wo;
	assert_int_equal(call(&wo, sizeof(wo)), 0);
	assert_int_equal(wo.size, 0);
}

static void test_write_larger_than_max_write_is_refused(void **state)
{
	(void)state;
	teardown(NULL);
	struct fuse_server_opts opts = { .max_write = 4096 };
	assert_int_equal(setup_opts(&opts), 0);
	init_ok();
	struct create_out co;
	assert_int_equal(create_op(FS_ROOT_ID, "f", &co), 0);
	static char data[4097];
	memset(data, 'w', sizeof(data));
	build_write(co.e.nodeid, co.o.fh, 0, data, 4097, 4097);
	assert_int_equal(call(NULL, 0), -EINVAL);
	build_write(co.e.nodeid, co.o.fh, 0, data, 4096, 4096);
	assert_int_equal(call(NULL, 0), 0);
	/* READ is clipped to max_write too */
	build_read(FUSE_READ, co.e.nodeid, co.o.fh, 0, 8192);
	static char buf[8192];
	assert_int_equal(call(buf, sizeof(buf)), 0);
	assert_int_equal(payload_len, 4096);
}

/* ---- unique ---- */

static void test_unique_is_echoed_in_success_and_error_replies(void **state)
{
	(void)state;
	struct fuse_entry_out e;
	next_unique = 0xdeadbeefcafef00dull;
	assert_int_equal(lookup(FS_ROOT_ID, "x", &e), -EIO); /* before INIT */
	assert_int_equal(((const struct fuse_out_header *)out)->unique, 0xdeadbeefcafef00dull);
	init_ok();
	assert_int_equal(((const struct fuse_out_header *)out)->unique, 0xdeadbeefcafef00eull);
	assert_int_equal(mkdir_op(FS_ROOT_ID, "d", &e), 0);
	assert_int_equal(((const struct fuse_out_header *)out)->unique, 0xdeadbeefcafef00full);
	begin(12345, 1);
	hdr()->unique = 0;
	assert_int_equal(call(NULL, 0), -ENOSYS);
	assert_int_equal(((const struct fuse_out_header *)out)->unique, 0);
	begin(FUSE_LOOKUP, FS_ROOT_ID);
	hdr()->unique = UINT64_MAX;
	put_str("d");
	hdr()->len = 3; /* framing error: still answered to the right request */
	size_t n = serve_ex(req_len, 0, OUT_SIZE, 0);
	assert_int_equal(reply_error(n), -EINVAL);
	assert_int_equal(((const struct fuse_out_header *)out)->unique, UINT64_MAX);
	next_unique = 0x1000;
}

/* ---- submounts ---- */

/* The directory entry called name in a READDIRPLUS reply. */
static const struct fuse_direntplus *find_plus(const uint8_t *list, size_t len, const char *name)
{
	for (size_t off = 0; off < len;) {
		const struct fuse_direntplus *dp = (const void *)(list + off);
		if (dp->dirent.namelen == strlen(name) && !memcmp(dp->dirent.name, name, dp->dirent.namelen))
			return dp;
		off += FUSE_DIRENTPLUS_SIZE(dp);
	}
	return NULL;
}

static uint32_t readdirplus_flags(uint64_t nodeid, const char *name)
{
	static uint8_t list[8192];
	struct fuse_open_in oi = { .flags = O_RDONLY };
	struct fuse_open_out oo;
	begin(FUSE_OPENDIR, nodeid);
	put(&oi, sizeof(oi));
	assert_int_equal(call(&oo, sizeof(oo)), 0);
	build_read(FUSE_READDIRPLUS, nodeid, oo.fh, 0, sizeof(list));
	assert_int_equal(call(list, sizeof(list)), 0);
	const struct fuse_direntplus *dp = find_plus(list, payload_len, name);
	assert_non_null(dp);
	uint32_t flags = dp->entry_out.attr.flags;
	struct fuse_release_in ri = { .fh = oo.fh };
	begin(FUSE_RELEASEDIR, nodeid);
	put(&ri, sizeof(ri));
	assert_int_equal(call(NULL, 0), 0);
	return flags;
}

/*
 * A tmpfs mounted on a directory of the share (in a mount namespace of this test's own, so nothing reaches the
 * host): with announce_submounts and a kernel that offered FUSE_SUBMOUNTS, its LOOKUP and READDIRPLUS entries
 * carry FUSE_ATTR_SUBMOUNT; the plain directory beside it and a directory inside the tmpfs do not. Without the
 * option, or when the kernel did not offer the flag (a /dev/fuse mount never does), nothing is announced.
 */
static void test_submounts_are_announced_when_negotiated(void **state)
{
	(void)state;
	if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) {
		print_message("needs CAP_SYS_ADMIN to mount a tmpfs: skipped (%s)\n", strerror(errno));
		skip();
	}
	teardown(NULL);
	struct fuse_server_opts opts = { .readdirplus = true, .announce_submounts = true };
	assert_int_equal(setup_opts(&opts), 0);
	assert_int_equal(mkdir(hpath("plain"), 0755), 0);
	assert_int_equal(mkdir(hpath("mnt"), 0755), 0);
	assert_int_equal(mount("tmpfs", hpath("mnt"), "tmpfs", 0, "size=1m"), 0);
	assert_int_equal(mkdir(hpath("mnt/inner"), 0755), 0);

	struct fuse_init_out o;
	uint32_t base = FUSE_ASYNC_READ | FUSE_DO_READDIRPLUS;
	assert_int_equal(do_init_full(7, 38, base | FUSE_SUBMOUNTS, 0, &o), 0);
	assert_true(o.flags & FUSE_SUBMOUNTS);
	struct fuse_entry_out m, p, in;
	assert_int_equal(lookup(FS_ROOT_ID, "mnt", &m), 0);
	assert_int_equal(m.attr.flags, FUSE_ATTR_SUBMOUNT);
	assert_int_equal(lookup(FS_ROOT_ID, "plain", &p), 0);
	assert_int_equal(p.attr.flags, 0);
	assert_int_equal(lookup(m.nodeid, "inner", &in), 0);
	assert_int_equal(in.attr.flags, 0);
	/* Known inodes are answered from the table: still announced */
	assert_int_equal(lookup(FS_ROOT_ID, "mnt", &m), 0);
	assert_int_equal(m.attr.flags, FUSE_ATTR_SUBMOUNT);
	assert_int_equal(readdirplus_flags(FS_ROOT_ID, "mnt"), FUSE_ATTR_SUBMOUNT);
	assert_int_equal(readdirplus_flags(FS_ROOT_ID, "plain"), 0);
	assert_int_equal(readdirplus_flags(m.nodeid, "inner"), 0);

	/* A kernel that does not offer FUSE_SUBMOUNTS (any /dev/fuse mount) hears nothing of it */
	assert_int_equal(do_init_full(7, 38, base, 0, &o), 0);
	assert_int_equal(o.flags & FUSE_SUBMOUNTS, 0);
	assert_int_equal(lookup(FS_ROOT_ID, "mnt", &m), 0);
	assert_int_equal(m.attr.flags, 0);
	assert_int_equal(readdirplus_flags(FS_ROOT_ID, "mnt"), 0);

	/* Nor does one that offers it to a server without the option */
	fuse_server_free(srv);
	opts.announce_submounts = false;
	assert_int_equal(fuse_server_new(&fs_passthrough_ops, fs, &opts, &srv), 0);
	assert_int_equal(do_init_full(7, 38, base | FUSE_SUBMOUNTS, 0, &o), 0);
	assert_int_equal(o.flags & FUSE_SUBMOUNTS, 0);
	assert_int_equal(lookup(FS_ROOT_ID, "mnt", &m), 0);
	assert_int_equal(m.attr.flags, 0);
	assert_int_equal(readdirplus_flags(FS_ROOT_ID, "mnt"), 0);

	/* The fs still holds fds on the tmpfs: detach it so teardown can remove the directory */
	assert_int_equal(umount2(hpath("mnt"), MNT_DETACH), 0);
}

/*
 * DAX: with a window attached, INIT answers map_alignment 21 and FUSE_HAS_INODE_DAX to a guest that asks, attributes
 * carry FUSE_ATTR_DAX for files of whole pages (the default policy), and both mapping requests are decoded with
 * every size and flag checked. Without a window nothing of it is offered and both requests are ENOSYS.
 */
/* STATX over the host: the basic stats of GETATTR, and the birth time the host file system keeps. */
static void test_statx_gives_the_hosts_birth_time(void **state)
{
	(void)state;
	init_ok();
	struct create_out co;
	assert_int_equal(create_op(FS_ROOT_ID, "born", &co), 0);
	struct statx host;
	assert_int_equal(statx(AT_FDCWD, hpath("born"), AT_SYMLINK_NOFOLLOW, STATX_BASIC_STATS | STATX_BTIME, &host), 0);

	struct fuse_statx_in in = { .sx_mask = STATX_BASIC_STATS | STATX_BTIME };
	struct fuse_statx_out sx;
	begin(FUSE_STATX, co.e.nodeid);
	put(&in, sizeof(in));
	assert_int_equal(call(&sx, sizeof(sx)), 0);
	assert_int_equal(payload_len, sizeof(sx));
	assert_int_equal(sx.stat.mask & STATX_BASIC_STATS, STATX_BASIC_STATS);
	assert_int_equal(sx.stat.ino, host.stx_ino);
	assert_int_equal(sx.stat.mode, host.stx_mode);
	assert_int_equal(sx.stat.mtime.tv_sec, host.stx_mtime.tv_sec);
	assert_int_equal(sx.stat.mtime.tv_nsec, host.stx_mtime.tv_nsec);
	if (host.stx_mask & STATX_BTIME) {
		assert_true(sx.stat.mask & STATX_BTIME);
		assert_int_equal(sx.stat.btime.tv_sec, host.stx_btime.tv_sec);
		assert_int_equal(sx.stat.btime.tv_nsec, host.stx_btime.tv_nsec);
	} else {
		assert_false(sx.stat.mask & STATX_BTIME); /* a host fs without birth times: none invented */
	}
	/* Through the open handle too */
	in.getattr_flags = FUSE_GETATTR_FH;
	in.fh = co.o.fh;
	begin(FUSE_STATX, co.e.nodeid);
	put(&in, sizeof(in));
	assert_int_equal(call(&sx, sizeof(sx)), 0);
	assert_int_equal(sx.stat.ino, host.stx_ino);
	/* A stale node id */
	in.getattr_flags = 0;
	begin(FUSE_STATX, 0xdead);
	put(&in, sizeof(in));
	assert_true(call(&sx, sizeof(sx)) < 0);
}

static int setupmapping(uint64_t node, uint64_t foffset, uint64_t len, uint64_t flags, uint64_t moffset)
{
	struct fuse_setupmapping_in in = { .fh = UINT64_MAX, .foffset = foffset, .len = len, .flags = flags,
	                                   .moffset = moffset };
	begin(FUSE_SETUPMAPPING, node);
	put(&in, sizeof(in));
	return call(NULL, 0);
}

static int removemapping(uint64_t node, uint32_t count, uint32_t entries, uint64_t moffset)
{
	struct fuse_removemapping_in in = { .count = count };
	struct fuse_removemapping_one one = { .moffset = moffset, .len = 2u << 20 };
	begin(FUSE_REMOVEMAPPING, node);
	put(&in, sizeof(in));
	for (uint32_t i = 0; i < entries; i++)
		put(&one, sizeof(one));
	return call(NULL, 0);
}

static void test_dax_negotiation_and_mapping_requests(void **state)
{
	(void)state;
	struct fuse_init_out o;
	struct fuse_entry_out e, small;
	const uint32_t RANGE = 2u << 20;

	/* No window: nothing offered, both requests unknown */
	assert_int_equal(do_init_full(7, 38, FUSE_INIT_EXT | FUSE_MAP_ALIGNMENT, FUSE_HAS_INODE_DAX >> 32, &o), 0);
	assert_int_equal(o.flags & FUSE_MAP_ALIGNMENT, 0);
	assert_int_equal(o.map_alignment, 0);
	assert_int_equal(setupmapping(FS_ROOT_ID, 0, RANGE, FUSE_SETUPMAPPING_FLAG_READ, 0), -ENOSYS);

	struct shm_window win;
	struct dev_services svc;
	assert_int_equal(shm_window_init(&win, 4 * RANGE), 0);
	shm_window_services(&win, &svc);
	assert_int_equal(fs_dax_attach(fs, &svc), 0);
	assert_int_equal(do_init_full(7, 38, FUSE_INIT_EXT | FUSE_MAP_ALIGNMENT, FUSE_HAS_INODE_DAX >> 32, &o), 0);
	assert_true(o.flags & FUSE_MAP_ALIGNMENT);
	assert_true(o.flags2 & (FUSE_HAS_INODE_DAX >> 32));
	assert_int_equal(o.map_alignment, 21);

	int fd = open(hpath("pages"), O_CREAT | O_WRONLY, 0644);
	assert_int_equal(ftruncate(fd, 8192), 0);
	close(fd);
	fd = open(hpath("small"), O_CREAT | O_WRONLY, 0644);
	assert_int_equal(write(fd, "abc", 3), 3);
	close(fd);
	assert_int_equal(lookup(FS_ROOT_ID, "pages", &e), 0);
	assert_int_equal(e.attr.flags & FUSE_ATTR_DAX, FUSE_ATTR_DAX);
	assert_int_equal(lookup(FS_ROOT_ID, "small", &small), 0);
	assert_int_equal(small.attr.flags & FUSE_ATTR_DAX, 0);

	/* SETUPMAPPING: exact size, known flags only */
	begin(FUSE_SETUPMAPPING, e.nodeid);
	put("\0\0\0\0\0\0\0\0", 8);
	assert_int_equal(call(NULL, 0), -EINVAL);
	assert_int_equal(setupmapping(e.nodeid, 0, RANGE, 4, 0), -EINVAL);
	assert_int_equal(setupmapping(e.nodeid, 0, RANGE, FUSE_SETUPMAPPING_FLAG_READ, 4096), -EINVAL);
	assert_int_equal(setupmapping(e.nodeid, 0, RANGE, FUSE_SETUPMAPPING_FLAG_READ, RANGE), 0);
	assert_int_equal(win.base[RANGE], 0); /* the file's (zero) bytes, mapped */
	assert_int_equal(setupmapping(small.nodeid, 0, RANGE, FUSE_SETUPMAPPING_FLAG_WRITE, 0), 0);
	assert_memory_equal(win.base, "abc", 3); /* a copy of the partial page */

	/* REMOVEMAPPING: the count says exactly what follows, 1 to 256 */
	assert_int_equal(removemapping(e.nodeid, 0, 0, RANGE), -EINVAL);
	assert_int_equal(removemapping(e.nodeid, 2, 1, RANGE), -EINVAL);
	assert_int_equal(removemapping(e.nodeid, 257, 257, RANGE), -EINVAL);
	assert_int_equal(removemapping(e.nodeid, 1, 1, 0), -EINVAL); /* range 0 maps another inode */
	assert_int_equal(removemapping(e.nodeid, 1, 1, RANGE), 0);
	assert_int_equal(removemapping(small.nodeid, 1, 1, 0), 0);
	assert_int_equal(win.n, 0);
	fs_dax_detach(fs);
	shm_window_destroy(&win);
}

int main(void)
{
	log_init("test_fuse_proto", LOG_LVL_ERROR, false);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_requests_before_init_get_eio, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dax_negotiation_and_mapping_requests, setup, teardown),
		cmocka_unit_test_setup_teardown(test_statx_gives_the_hosts_birth_time, setup, teardown),
		cmocka_unit_test_setup_teardown(test_init_negotiates_flags_intersection_and_minor, setup, teardown),
		cmocka_unit_test_setup_teardown(test_init_offers_options_we_enable, setup, teardown),
		cmocka_unit_test_setup_teardown(test_init_offers_the_request_timeout_when_asked, setup, teardown),
		cmocka_unit_test_setup_teardown(test_posix_acl_negotiation_umask_and_kill_sgid, setup, teardown),
		cmocka_unit_test_setup_teardown(test_security_context_labels_every_kind_of_new_node, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hostile_request_extensions_are_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_security_context_goes_through_xattrmap, setup, teardown),
		cmocka_unit_test_setup_teardown(test_init_with_newer_major_answers_only_the_major, setup, teardown),
		cmocka_unit_test_setup_teardown(test_init_with_older_major_or_short_args_is_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_destroy_ends_the_session, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lookup_mkdir_create_write_read_round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_readdir_and_readdirplus_round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rename2_and_unlink_round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_request_split_across_small_iovecs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_into_more_segments_than_the_worker_has_is_short, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_header_len_must_equal_bytes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_truncated_arguments_are_einval, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_names_are_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unknown_opcode_is_enosys, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reply_space_too_small, setup, teardown),
		cmocka_unit_test_setup_teardown(test_forget_and_batch_forget_lower_lookup_counts_without_reply, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_batch_forget_count_beyond_data_stops_at_the_end, setup, teardown),
		cmocka_unit_test_setup_teardown(test_write_size_field_must_match_the_data, setup, teardown),
		cmocka_unit_test_setup_teardown(test_write_larger_than_max_write_is_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unique_is_echoed_in_success_and_error_replies, setup, teardown),
		cmocka_unit_test_setup_teardown(test_submounts_are_announced_when_negotiated, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * The FUSE protocol room over the stub file system (fs_stub.h), through the table of operations it binds:
 * every opcode's arguments reach the file system as the request gave them, every error the file system returns
 * reaches the guest alone in its reply, success replies have their opcode's size, and READDIRPLUS hands out
 * exactly the references its reply carries however small the buffer.
 */
#include "fuse_wire.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/file.h>

#include "common/log.h"
#include "fs/fs.h"
#include "fs_stub.h"

#define FILE_NODE 2 /* the stub's node 2 is a regular file, 1 and 4 directories, 3 a symlink */
#define DIR_NODE 4
#define XATTR_CREATE_FLAG 1 /* <sys/xattr.h>'s XATTR_CREATE */

static struct fs *fs;

static int setup_cfg(const struct fs_stub_config *cfg)
{
	struct fuse_server_opts opts = { .readdirplus = true, .posix_lock = true, .flock = true };
	if (fs_stub_new(cfg, &fs) < 0 || fuse_server_new(&fs_stub_ops, fs, &opts, &srv) < 0)
		return -1;
	worker = fuse_worker_new(WORKER_SEGS);
	return worker ? 0 : -1;
}

static int setup(void **state)
{
	struct fs_stub_config cfg = { .dax_window = 8u << 20 };
	return setup_cfg(&cfg);
}

static int teardown(void **state)
{
	fuse_worker_free(worker);
	fuse_server_free(srv);
	fs_stub_free(fs);
	worker = NULL;
	srv = NULL;
	fs = NULL;
	return 0;
}

static void init_session(void)
{
	struct fuse_init_out o;
	assert_int_equal(do_init_full(7, 45, FUSE_INIT_EXT | FUSE_DO_READDIRPLUS | FUSE_POSIX_LOCKS | FUSE_FLOCK_LOCKS |
	                              FUSE_MAP_ALIGNMENT, (uint32_t)(FUSE_CREATE_SUPP_GROUP >> 32), &o), 0);
	assert_int_equal(o.minor, 45);
	assert_int_equal(o.flags2, FUSE_CREATE_SUPP_GROUP >> 32);
	assert_int_equal(o.map_alignment, fs_stub_ops.dax_window(fs) ? 21 : 0);
}

/* ---- one well-formed request per opcode that reaches the file system ---- */

struct op_case {
	uint32_t opcode;
	size_t reply_size;   /* payload of a success reply; SIZE_MAX: varies */
	void (*build)(uint32_t opcode);
};

static void build_name(uint32_t opcode)
{
	begin(opcode, DIR_NODE);
	put_str("name");
}

static void build_nodeid_only(uint32_t opcode)
{
	begin(opcode, FILE_NODE);
}

#define BUILD_ARG(fn, node, type, ...)                                                                           \
	static void fn(uint32_t opcode)                                                                         \
	{                                                                                                       \
		type in = { __VA_ARGS__ };                                                                      \
		begin(opcode, node);                                                                            \
		put(&in, sizeof(in));                                                                           \
	}
BUILD_ARG(build_getattr, FILE_NODE, struct fuse_getattr_in, .fh = 7)
BUILD_ARG(build_setattr, FILE_NODE, struct fuse_setattr_in, .valid = FATTR_MODE | FATTR_SIZE, .mode = 0600,
          .size = 12345)
BUILD_ARG(build_open, FILE_NODE, struct fuse_open_in, .flags = O_RDWR | O_APPEND)
BUILD_ARG(build_opendir, DIR_NODE, struct fuse_open_in, .flags = O_RDONLY)
BUILD_ARG(build_read, FILE_NODE, struct fuse_read_in, .fh = 7, .offset = 4000, .size = 1000)
BUILD_ARG(build_readdir, DIR_NODE, struct fuse_read_in, .fh = 7, .size = 4096)
BUILD_ARG(build_release, FILE_NODE, struct fuse_release_in, .fh = 7, .lock_owner = 99,
          .release_flags = FUSE_RELEASE_FLOCK_UNLOCK, .flags = FUSE_RELEASE_FLUSH)
BUILD_ARG(build_releasedir, DIR_NODE, struct fuse_release_in, .fh = 7)
BUILD_ARG(build_fsync, FILE_NODE, struct fuse_fsync_in, .fh = 7, .fsync_flags = 1)
BUILD_ARG(build_flush, FILE_NODE, struct fuse_flush_in, .fh = 7, .lock_owner = 99)
BUILD_ARG(build_statfs, FILE_NODE, struct fuse_getattr_in)
BUILD_ARG(build_access, FILE_NODE, struct fuse_access_in, .mask = 4)
BUILD_ARG(build_getlk, FILE_NODE, struct fuse_lk_in, .fh = 7, .owner = 99, .lk = { .type = F_RDLCK, .end = 9 })
BUILD_ARG(build_setlk, FILE_NODE, struct fuse_lk_in, .fh = 7, .owner = 99, .lk = { .type = F_WRLCK, .end = 9 })
BUILD_ARG(build_fallocate, FILE_NODE, struct fuse_fallocate_in, .fh = 7, .offset = 8192, .length = 4096,
          .mode = 1)
BUILD_ARG(build_lseek, FILE_NODE, struct fuse_lseek_in, .fh = 7, .offset = 100, .whence = SEEK_DATA)
BUILD_ARG(build_copy_file_range, FILE_NODE, struct fuse_copy_file_range_in, .fh_in = 7, .off_in = 10,
          .nodeid_out = FILE_NODE, .fh_out = 8, .off_out = 20, .len = 3000)
BUILD_ARG(build_copy_file_range_64, FILE_NODE, struct fuse_copy_file_range_in, .fh_in = 7, .off_in = 10,
          .nodeid_out = FILE_NODE, .fh_out = 8, .off_out = 20, .len = 1ULL << 40)
BUILD_ARG(build_statx, FILE_NODE, struct fuse_statx_in, .getattr_flags = FUSE_GETATTR_FH, .fh = 7,
          .sx_mask = 0xfff)
BUILD_ARG(build_syncfs, FILE_NODE, struct fuse_syncfs_in)
BUILD_ARG(build_setupmapping, FILE_NODE, struct fuse_setupmapping_in, .fh = 7, .foffset = 2u << 20,
          .len = 2u << 20, .flags = FUSE_SETUPMAPPING_FLAG_READ, .moffset = 4u << 20)

static void build_entry_maker(uint32_t opcode)
{
	begin(opcode, DIR_NODE);
	if (opcode == FUSE_MKDIR) {
		struct fuse_mkdir_in in = { .mode = 0755 };
		put(&in, sizeof(in));
	} else if (opcode == FUSE_MKNOD) {
		struct fuse_mknod_in in = { .mode = S_IFIFO | 0644 };
		put(&in, sizeof(in));
	} else if (opcode == FUSE_CREATE) {
		struct fuse_create_in in = { .flags = O_RDWR | O_CREAT, .mode = S_IFREG | 0644 };
		put(&in, sizeof(in));
	} else if (opcode == FUSE_LINK) {
		struct fuse_link_in in = { .oldnodeid = FILE_NODE };
		put(&in, sizeof(in));
	}
	put_str("name");
	if (opcode == FUSE_SYMLINK)
		put_str("target");
}

static void build_rename2(uint32_t opcode)
{
	struct fuse_rename2_in in = { .newdir = 1, .flags = RENAME_NOREPLACE };
	begin(opcode, DIR_NODE);
	put(&in, sizeof(in));
	put_str("from");
	put_str("to");
}

static void build_write(uint32_t opcode)
{
	struct fuse_write_in in = { .fh = 7, .offset = 500, .size = 3 };
	begin(opcode, FILE_NODE);
	put(&in, sizeof(in));
	put("\x01\x02\x03", 3);
}

static void build_setxattr(uint32_t opcode)
{
	struct fuse_setxattr_in in = { .size = 5, .flags = XATTR_CREATE_FLAG };
	begin(opcode, FILE_NODE);
	put(&in, offsetof(struct fuse_setxattr_in, setxattr_flags)); /* no FUSE_SETXATTR_EXT: the short form */
	put_str("user.stub");
	put("value", 5);
}

static void build_getxattr(uint32_t opcode)
{
	struct fuse_getxattr_in in = { .size = 64 };
	begin(opcode, FILE_NODE);
	put(&in, sizeof(in));
	if (opcode == FUSE_GETXATTR)
		put_str("user.stub");
}

static void build_removemapping(uint32_t opcode)
{
	struct fuse_removemapping_in in = { .count = 1 };
	struct fuse_removemapping_one one = { .moffset = 4u << 20, .len = 2u << 20 };
	begin(opcode, FILE_NODE);
	put(&in, sizeof(in));
	put(&one, sizeof(one));
}

static const struct op_case cases[] = {
	{ FUSE_LOOKUP, sizeof(struct fuse_entry_out), build_name },
	{ FUSE_GETATTR, sizeof(struct fuse_attr_out), build_getattr },
	{ FUSE_SETATTR, sizeof(struct fuse_attr_out), build_setattr },
	{ FUSE_READLINK, sizeof("stub-target") - 1, build_nodeid_only },
	{ FUSE_SYMLINK, sizeof(struct fuse_entry_out), build_entry_maker },
	{ FUSE_MKNOD, sizeof(struct fuse_entry_out), build_entry_maker },
	{ FUSE_MKDIR, sizeof(struct fuse_entry_out), build_entry_maker },
	{ FUSE_LINK, sizeof(struct fuse_entry_out), build_entry_maker },
	{ FUSE_CREATE, sizeof(struct fuse_entry_out) + sizeof(struct fuse_open_out), build_entry_maker },
	{ FUSE_UNLINK, 0, build_name },
	{ FUSE_RMDIR, 0, build_name },
	{ FUSE_RENAME2, 0, build_rename2 },
	{ FUSE_OPEN, sizeof(struct fuse_open_out), build_open },
	{ FUSE_READ, 1000, build_read },
	{ FUSE_WRITE, sizeof(struct fuse_write_out), build_write },
	{ FUSE_STATFS, sizeof(struct fuse_statfs_out), build_statfs },
	{ FUSE_RELEASE, 0, build_release },
	{ FUSE_FSYNC, 0, build_fsync },
	{ FUSE_SETXATTR, 0, build_setxattr },
	{ FUSE_GETXATTR, sizeof("stubvalue") - 1, build_getxattr },
	{ FUSE_LISTXATTR, sizeof("user.stub"), build_getxattr },
	{ FUSE_REMOVEXATTR, 0, build_name },
	{ FUSE_FLUSH, 0, build_flush },
	{ FUSE_OPENDIR, sizeof(struct fuse_open_out), build_opendir },
	{ FUSE_READDIR, SIZE_MAX, build_readdir },
	{ FUSE_READDIRPLUS, SIZE_MAX, build_readdir },
	{ FUSE_RELEASEDIR, 0, build_releasedir },
	{ FUSE_FSYNCDIR, 0, build_fsync },
	{ FUSE_GETLK, sizeof(struct fuse_lk_out), build_getlk },
	{ FUSE_SETLK, 0, build_setlk },
	{ FUSE_SETLKW, 0, build_setlk },
	{ FUSE_ACCESS, 0, build_access },
	{ FUSE_FALLOCATE, 0, build_fallocate },
	{ FUSE_LSEEK, sizeof(struct fuse_lseek_out), build_lseek },
	{ FUSE_COPY_FILE_RANGE, sizeof(struct fuse_write_out), build_copy_file_range },
	{ FUSE_COPY_FILE_RANGE_64, sizeof(struct fuse_copy_file_range_out), build_copy_file_range_64 },
	{ FUSE_STATX, sizeof(struct fuse_statx_out), build_statx },
	{ FUSE_SYNCFS, 0, build_syncfs },
	{ FUSE_SETUPMAPPING, 0, build_setupmapping },
	{ FUSE_REMOVEMAPPING, 0, build_removemapping },
};

/* ---- tests ---- */

static void test_every_fs_error_reaches_the_reply_alone(void **state)
{
	static const int errors[] = { -EIO, -ENOENT, -EACCES, -ENOSPC, -EOVERFLOW };
	init_session();
	for (size_t e = 0; e < sizeof(errors) / sizeof(errors[0]); e++) {
		for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
			fs_stub_fail(fs, errors[e], 1);
			cases[i].build(cases[i].opcode);
			uint64_t calls = fs_stub_calls(fs);
			int err = call(NULL, 0);
			if (err != errors[e])
				fail_msg("opcode %u: reply error %d, the fs said %d", cases[i].opcode, err, errors[e]);
			assert_true(fs_stub_calls(fs) > calls); /* it was the fs that said it */
		}
	}
	fs_stub_fail(fs, 0, 0);
	assert_int_equal(fs_stub_refs(fs), 0); /* no failed lookup left a reference behind */
}

static void test_every_success_reply_has_its_opcodes_size(void **state)
{
	init_session();
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cases[i].build(cases[i].opcode);
		int err = call(NULL, 0);
		if (err)
			fail_msg("opcode %u: error %d from a stub that says yes", cases[i].opcode, err);
		if (cases[i].reply_size != SIZE_MAX && payload_len != cases[i].reply_size)
			fail_msg("opcode %u: payload %zu bytes, expected %zu", cases[i].opcode, payload_len,
			         cases[i].reply_size);
	}
}

static void test_arguments_reach_the_fs_as_sent(void **state)
{
	const struct fs_stub_call *last = fs_stub_last(fs);
	init_session();

	build_setattr(FUSE_SETATTR);
	assert_int_equal(call(NULL, 0), 0);
	assert_string_equal(last->op, "setattr");
	assert_int_equal(last->flags, FS_SET_MODE | FS_SET_SIZE);
	assert_int_equal(last->mode, 0600);
	assert_int_equal(last->size, 12345);

	build_read(FUSE_READ);
	assert_int_equal(call(NULL, 0), 0);
	assert_int_equal(last->fh, 7);
	assert_int_equal(last->off, 4000);
	assert_int_equal(last->size, 1000);
	assert_int_equal(out[sizeof(struct fuse_out_header)], 4000 & 0xff); /* the stub's bytes, at their offset */

	build_write(FUSE_WRITE);
	assert_int_equal(call(NULL, 0), 0);
	assert_int_equal(last->off, 500);
	assert_int_equal(last->size, 3);
	assert_int_equal(last->other, 1 + 2 + 3);

	build_rename2(FUSE_RENAME2);
	assert_int_equal(call(NULL, 0), 0);
	assert_string_equal(last->name, "from>to");
	assert_int_equal(last->nodeid, DIR_NODE);
	assert_int_equal(last->other, 1);
	assert_int_equal(last->flags, RENAME_NOREPLACE);

	build_fallocate(FUSE_FALLOCATE);
	assert_int_equal(call(NULL, 0), 0);
	assert_int_equal(last->off, 8192);
	assert_int_equal(last->other, 4096);
	assert_int_equal(last->flags, 1);

	build_setlk(FUSE_SETLKW);
	assert_int_equal(call(NULL, 0), 0);
	assert_int_equal(last->flags, F_WRLCK | 0x100); /* SETLKW: may sleep */
	assert_int_equal(last->other, 99);

	build_setxattr(FUSE_SETXATTR);
	assert_int_equal(call(NULL, 0), 0);
	assert_string_equal(last->name, "user.stub");
	assert_int_equal(last->size, 5);
	assert_int_equal(last->flags, XATTR_CREATE_FLAG);

	build_access(FUSE_ACCESS);
	assert_int_equal(call(NULL, 0), 0);
	assert_int_equal(last->flags, 4);

	build_setupmapping(FUSE_SETUPMAPPING);
	assert_int_equal(call(NULL, 0), 0);
	assert_int_equal(last->off, 2u << 20);
	assert_int_equal(last->other, 4u << 20);
	assert_int_equal(last->size, 2u << 20);
}

/* Counts the entries of a READDIRPLUS reply that carry a node id (each is one reference the guest holds). */
static unsigned plus_entries_with_nodes(const uint8_t *p, size_t n, uint64_t *last_off)
{
	unsigned with_node = 0;
	size_t pos = 0;
	while (pos + sizeof(struct fuse_direntplus) <= n) {
		const struct fuse_direntplus *d = (const void *)(p + pos);
		assert_true(d->dirent.namelen > 0 && d->dirent.namelen <= 255);
		with_node += d->entry_out.nodeid != 0;
		*last_off = d->dirent.off;
		pos += FUSE_DIRENTPLUS_SIZE(d);
	}
	assert_int_equal(pos, n);
	return with_node;
}

static void test_statx_and_copy_file_range_64_carry_what_the_fs_gave(void **state)
{
	const struct fs_stub_call *last = fs_stub_last(fs);
	struct fuse_statx_out sx;
	init_session();

	/* Node 2 has a birth time (even ids do), and the handle reaches the fs */
	build_statx(FUSE_STATX);
	assert_int_equal(call(&sx, sizeof(sx)), 0);
	assert_string_equal(last->op, "getattr_btime");
	assert_int_equal(last->fh, 7);
	assert_int_equal(sx.stat.mask, STATX_BASIC_STATS | STATX_BTIME);
	assert_int_equal(sx.stat.mode, S_IFREG | 0644);
	assert_int_equal(sx.stat.ino, FILE_NODE);
	assert_int_equal(sx.stat.size, FS_STUB_FILE_SIZE);
	assert_int_equal(sx.stat.mtime.tv_sec, 1700000000 + FILE_NODE);
	assert_int_equal(sx.stat.btime.tv_sec, 1700000000 + FILE_NODE - 10);
	assert_int_equal(sx.stat.btime.tv_nsec, 123);
	assert_int_equal(sx.stat.dev_major, 0); /* host device numbers stay on the host */
	/* Node 1 has none: the mask says so and the field stays zero; no handle without FUSE_GETATTR_FH */
	struct fuse_statx_in in = { .fh = 7, .sx_mask = STATX_BTIME };
	begin(FUSE_STATX, FS_ROOT_ID);
	put(&in, sizeof(in));
	assert_int_equal(call(&sx, sizeof(sx)), 0);
	assert_int_equal(last->fh, FS_NO_HANDLE);
	assert_int_equal(sx.stat.mask, STATX_BASIC_STATS);
	assert_int_equal(sx.stat.btime.tv_sec, 0);
	/* Short arguments */
	begin(FUSE_STATX, FILE_NODE);
	put(&in, sizeof(in) - 1);
	assert_int_equal(call(NULL, 0), -EINVAL);

	/* A count past 4 GiB reaches the fs whole, and comes back in 64 bits */
	struct fuse_copy_file_range_out co;
	build_copy_file_range_64(FUSE_COPY_FILE_RANGE_64);
	assert_int_equal(call(&co, sizeof(co)), 0);
	assert_int_equal(last->size, 1ULL << 40);
	assert_int_equal(last->off, 10);
	assert_int_equal(co.bytes_copied, FS_STUB_FILE_SIZE);
	/* ... but never past offset INT64_MAX (the fs would refuse the whole range) */
	struct fuse_copy_file_range_in ci = { .fh_in = 7, .off_in = INT64_MAX - 100, .fh_out = 8, .len = UINT64_MAX };
	begin(FUSE_COPY_FILE_RANGE_64, FILE_NODE);
	put(&ci, sizeof(ci));
	assert_int_equal(call(&co, sizeof(co)), 0);
	assert_int_equal(last->size, 100);
}

/* ---- extensions (total_extlen): the supplementary group of a creating request ---- */

/* Appends a FUSE_EXT_GROUPS extension of size bytes (a multiple of 8, at least 16) claiming nr groups, the first
 * gid, and sets total_extlen to cover ext_words words (normally size / 8). */
static void put_supp_group(uint32_t size, uint32_t type, uint32_t nr, uint32_t gid, uint16_t ext_words)
{
	uint8_t ext[64] = { 0 };
	struct fuse_ext_header xh = { .size = size, .type = type };
	assert_true(size <= sizeof(ext) || ext_words * 8u <= sizeof(ext));
	memcpy(ext, &xh, sizeof(xh));
	memcpy(ext + 8, &nr, sizeof(nr));
	memcpy(ext + 12, &gid, sizeof(gid));
	put(ext, ext_words * 8u);
	hdr()->total_extlen = ext_words;
}

static int create_with_group(uint32_t opcode, uint32_t size, uint32_t type, uint32_t nr, uint32_t gid,
                             uint16_t ext_words)
{
	build_entry_maker(opcode);
	hdr()->uid = 1000;
	hdr()->gid = 1000;
	put_supp_group(size, type, nr, gid, ext_words);
	return call(NULL, 0);
}

static void test_supplementary_group_reaches_the_fs_on_creating_requests(void **state)
{
	const struct fs_stub_call *last = fs_stub_last(fs);
	static const uint32_t creating[] = { FUSE_CREATE, FUSE_MKNOD, FUSE_MKDIR, FUSE_SYMLINK };
	init_session();
	for (size_t i = 0; i < sizeof(creating) / sizeof(creating[0]); i++) {
		assert_int_equal(create_with_group(creating[i], 16, FUSE_EXT_GROUPS, 1, 1002, 2), 0);
		assert_true(last->ctx.has_supp_gid);
		assert_int_equal(last->ctx.supp_gid, 1002);
		assert_int_equal(last->ctx.uid, 1000);
		assert_string_equal(last->name, "name"); /* the arguments end where the extensions begin */
	}
	/* TMPFILE too (no name) */
	struct fuse_create_in ci = { .flags = O_RDWR, .mode = 0600 };
	begin(FUSE_TMPFILE, DIR_NODE);
	put(&ci, sizeof(ci));
	put_supp_group(16, FUSE_EXT_GROUPS, 1, 1003, 2);
	assert_int_equal(call(NULL, 0), 0);
	assert_int_equal(last->ctx.supp_gid, 1003);
	/* Without one: none */
	build_entry_maker(FUSE_MKDIR);
	assert_int_equal(call(NULL, 0), 0);
	assert_false(last->ctx.has_supp_gid);
	/* Extra groups past the first are ignored (fewer groups only deny); an extension of another type is skipped
	 * by its size, so a group after it is still found */
	assert_int_equal(create_with_group(FUSE_MKDIR, 24, FUSE_EXT_GROUPS, 2, 1004, 3), 0);
	assert_int_equal(last->ctx.supp_gid, 1004);
	build_entry_maker(FUSE_MKDIR);
	put_supp_group(16, 5, 1, 1, 2); /* type 5: a security context count we never agreed to */
	put_supp_group(16, FUSE_EXT_GROUPS, 1, 1005, 2);
	hdr()->total_extlen = 4;
	assert_int_equal(call(NULL, 0), 0);
	assert_int_equal(last->ctx.supp_gid, 1005);
	/* No group (nr 0), or the invalid id: none */
	assert_int_equal(create_with_group(FUSE_MKDIR, 16, FUSE_EXT_GROUPS, 0, 1006, 2), 0);
	assert_false(last->ctx.has_supp_gid);
	assert_int_equal(create_with_group(FUSE_MKDIR, 16, FUSE_EXT_GROUPS, 1, UINT32_MAX, 2), 0);
	assert_false(last->ctx.has_supp_gid);
	/* A non-creating request's extensions are not read (Linux sends none there), even malformed ones */
	begin(FUSE_LOOKUP, DIR_NODE);
	put_str("name");
	put_supp_group(16, FUSE_EXT_GROUPS, 1, 1007, 2);
	struct fuse_entry_out e;
	assert_int_equal(call(&e, sizeof(e)), 0);
	assert_string_equal(last->op, "lookup");
	assert_false(last->ctx.has_supp_gid);
	int64_t refs = fs_stub_refs(fs);
	begin(FUSE_FORGET, e.nodeid);
	struct fuse_forget_in fi = { .nlookup = 1 };
	put(&fi, sizeof(fi));
	put_supp_group(0, FUSE_EXT_GROUPS, 1, 1007, 2);
	end();
	assert_int_equal(serve_ex(req_len, 0, OUT_SIZE, 0), 0); /* still no reply, and it forgot */
	assert_int_equal(fs_stub_refs(fs), refs - 1);
}

static void test_supplementary_group_is_ignored_unless_agreed(void **state)
{
	const struct fs_stub_call *last = fs_stub_last(fs);
	struct fuse_init_out o;
	assert_int_equal(do_init_full(7, 45, FUSE_INIT_EXT, 0, &o), 0);
	assert_int_equal(o.flags2, 0);
	assert_int_equal(create_with_group(FUSE_MKDIR, 16, FUSE_EXT_GROUPS, 1, 1002, 2), 0);
	assert_false(last->ctx.has_supp_gid);
}

static void test_hostile_extensions_are_refused_before_the_fs(void **state)
{
	init_session();
	uint64_t calls = fs_stub_calls(fs);
	/* size 0, below the header, not a multiple of 8, past the extension area */
	assert_int_equal(create_with_group(FUSE_MKDIR, 0, FUSE_EXT_GROUPS, 1, 1002, 2), -EINVAL);
	assert_int_equal(create_with_group(FUSE_MKDIR, 4, FUSE_EXT_GROUPS, 1, 1002, 2), -EINVAL);
	assert_int_equal(create_with_group(FUSE_MKDIR, 12, FUSE_EXT_GROUPS, 1, 1002, 2), -EINVAL);
	assert_int_equal(create_with_group(FUSE_MKDIR, 24, FUSE_EXT_GROUPS, 1, 1002, 2), -EINVAL);
	assert_int_equal(create_with_group(FUSE_MKDIR, UINT32_MAX & ~7u, FUSE_EXT_GROUPS, 1, 1002, 2), -EINVAL);
	assert_int_equal(create_with_group(FUSE_MKDIR, UINT32_MAX, 7, 1, 1002, 2), -EINVAL); /* unknown type too */
	/* groups counted past the extension: 2 in 16 bytes, and a count that would overflow a multiplication */
	assert_int_equal(create_with_group(FUSE_MKDIR, 16, FUSE_EXT_GROUPS, 2, 1002, 2), -EINVAL);
	assert_int_equal(create_with_group(FUSE_MKDIR, 16, FUSE_EXT_GROUPS, UINT32_MAX, 1002, 2), -EINVAL);
	assert_int_equal(create_with_group(FUSE_MKDIR, 16, FUSE_EXT_GROUPS, 0x40000001u, 1002, 2), -EINVAL);
	/* a header alone has no room for nr_groups */
	assert_int_equal(create_with_group(FUSE_MKDIR, 8, FUSE_EXT_GROUPS, 0, 0, 1), -EINVAL);
	/* a second extension whose size is below its own header */
	build_entry_maker(FUSE_MKDIR);
	put_supp_group(16, FUSE_EXT_GROUPS, 1, 1002, 2);
	put("\x04\0\0\0\0\0\0\0", 8);
	hdr()->total_extlen = 3;
	assert_int_equal(call(NULL, 0), -EINVAL);
	assert_int_equal(fs_stub_calls(fs), calls); /* none of these reached the fs */

	/* total_extlen past the request, or past the arguments the opcode needs */
	build_entry_maker(FUSE_MKDIR);
	hdr()->total_extlen = 0xffff;
	assert_int_equal(call(NULL, 0), -EINVAL);
	build_entry_maker(FUSE_MKDIR);
	put_supp_group(16, FUSE_EXT_GROUPS, 1, 1002, 2);
	hdr()->total_extlen = 3; /* eats the name: no NUL-terminated name left */
	assert_int_equal(call(NULL, 0), -EINVAL);
	/* WRITE never carries extensions */
	build_write(FUSE_WRITE);
	put_supp_group(16, FUSE_EXT_GROUPS, 1, 1002, 2);
	assert_int_equal(call(NULL, 0), -EINVAL);
	assert_int_equal(fs_stub_calls(fs), calls);
}

static void test_readdirplus_references_match_the_reply_at_every_buffer_size(void **state)
{
	teardown(state);
	struct fs_stub_config cfg = { .dir_entries = 40 };
	assert_int_equal(setup_cfg(&cfg), 0);
	init_session();
	for (uint32_t size = 0; size <= 2048; size += 37) {
		uint64_t off = 0, held = 0;
		for (int rounds = 0; rounds < 100; rounds++) {
			struct fuse_read_in in = { .fh = 7, .offset = off, .size = size };
			begin(FUSE_READDIRPLUS, DIR_NODE);
			put(&in, sizeof(in));
			assert_int_equal(call(NULL, 0), 0);
			if (payload_len == 0)
				break;
			held += plus_entries_with_nodes(out + sizeof(struct fuse_out_header), payload_len, &off);
		}
		assert_int_equal(fs_stub_refs(fs), (int64_t)held);
		if (size >= sizeof(struct fuse_direntplus) + 8)
			assert_int_equal(held, 38); /* every name once, "." and ".." without a reference */
		struct fuse_forget_in fin = { .nlookup = held };
		begin(FUSE_FORGET, FILE_NODE);
		put(&fin, sizeof(fin));
		end();
		assert_int_equal(serve_ex(req_len, 0, OUT_SIZE, 0), 0); /* no reply */
		assert_int_equal(fs_stub_refs(fs), 0);
	}
}

static void test_cache_policy_of_the_fs_reaches_open_and_entry_replies(void **state)
{
	teardown(state);
	struct fs_stub_config cfg = { .policy = { .direct_io = true, .cache_dir = true },
	                              .timeout = { .tv_sec = 5, .tv_nsec = 250000000 }, .attr_dax = true };
	assert_int_equal(setup_cfg(&cfg), 0);
	init_session();
	struct fuse_open_out o;
	build_open(FUSE_OPEN);
	assert_int_equal(call(&o, sizeof(o)), 0);
	assert_true(o.open_flags & FOPEN_DIRECT_IO);
	assert_false(o.open_flags & FOPEN_KEEP_CACHE);
	build_opendir(FUSE_OPENDIR);
	assert_int_equal(call(&o, sizeof(o)), 0);
	assert_true(o.open_flags & FOPEN_CACHE_DIR);

	struct fuse_entry_out e;
	assert_int_equal(lookup(DIR_NODE, "x", &e), 0);
	assert_int_equal(e.entry_valid, 5);
	assert_int_equal(e.entry_valid_nsec, 250000000);
	assert_int_equal(e.attr_valid, 5);
	assert_int_equal(lookup(DIR_NODE, "missing", &e), -ENOENT);
	assert_int_equal(fs_stub_refs(fs), 1);
}

/* Ends a test that stood up destinations on a stub fs of its own: back to the source's server and fs. */
static void back_to_source(struct fuse_server *source, struct fs *source_fs, void *st)
{
	fs_stub_free(fs);
	srv = source;
	fs = source_fs;
	free(st);
}

/* The session travels with the fs's state: the destination serves the guest's requests without an INIT. */
static void test_session_state_travels_and_is_checked(void **state)
{
	init_session();
	assert_int_equal(lookup(DIR_NODE, "x", &(struct fuse_entry_out){ 0 }), 0);
	void *st;
	size_t len;
	assert_int_equal(fuse_server_state_save(srv, &st, &len), 0);

	/* A destination like the source: the guest's next request is served. */
	struct fuse_server *source = srv;
	struct fs *source_fs = fs;
	uint32_t minor = fuse_server_minor(source);
	struct fs_stub_config cfg = { .dax_window = 8u << 20 };
	struct fuse_server_opts opts = { .readdirplus = true, .posix_lock = true, .flock = true };
	assert_int_equal(fs_stub_new(&cfg, &fs), 0);
	assert_int_equal(fuse_server_new(&fs_stub_ops, fs, &opts, &srv), 0);
	build_getattr(FUSE_GETATTR);
	assert_int_equal(call(NULL, 0), -EIO); /* before the state: no session */
	assert_int_equal(fuse_server_state_load(srv, st, len), 0);
	assert_string_equal(fs_stub_last(fs)->op, "session_start"); /* the destination's fs learns the session too */
	assert_int_equal(fs_stub_refs(fs), 1);
	assert_int_equal(fuse_server_minor(srv), minor);
	build_getattr(FUSE_GETATTR);
	assert_int_equal(call(NULL, 0), 0);

	/* Every truncation and a bad magic are refused before the fs sees anything. */
	uint64_t calls = fs_stub_calls(fs);
	for (size_t cut = 0; cut < len; cut++)
		assert_int_equal(fuse_server_state_load(srv, st, cut), -EINVAL);
	((uint8_t *)st)[0] ^= 1;
	assert_int_equal(fuse_server_state_load(srv, st, len), -EINVAL);
	((uint8_t *)st)[0] ^= 1;
	assert_int_equal(fs_stub_calls(fs), calls);
	fuse_server_free(srv);

	/* A destination started without locks cannot serve a guest that was promised them. */
	struct fuse_server_opts fewer = { .readdirplus = true };
	assert_int_equal(fuse_server_new(&fs_stub_ops, fs, &fewer, &srv), 0);
	assert_int_equal(fuse_server_state_load(srv, st, len), -EINVAL);
	fuse_server_free(srv);
	back_to_source(source, source_fs, st);
}

/* A session with POSIX ACLs and security labels travels too: the flags those options add (POSIX_ACL, DONT_MASK,
 * SETXATTR_EXT, SECURITY_CTX) are what a destination started with them offers, and one without them refuses. */
static void test_acl_and_label_session_state_travels(void **state)
{
	struct fuse_server *source = srv;
	struct fs *source_fs = fs;
	struct fuse_server_opts with = { .readdirplus = true, .posix_acl = true, .security_label = true };
	const uint64_t agreed = FUSE_POSIX_ACL | FUSE_DONT_MASK | FUSE_SETXATTR_EXT | FUSE_SECURITY_CTX;
	struct fs_stub_config cfg = { .dax_window = 0 };
	struct fuse_init_out o;
	void *st;
	size_t len;

	assert_int_equal(fs_stub_new(&cfg, &fs), 0);
	assert_int_equal(fuse_server_new(&fs_stub_ops, fs, &with, &srv), 0);
	assert_int_equal(do_init_full(7, 45, 0xffffffffu, 0xffffffffu, &o), 0);
	assert_int_equal((o.flags | (uint64_t)o.flags2 << 32) & agreed, agreed);
	assert_int_equal(fuse_server_state_save(srv, &st, &len), 0);
	fuse_server_free(srv);

	assert_int_equal(fuse_server_new(&fs_stub_ops, fs, &with, &srv), 0);
	assert_int_equal(fuse_server_state_load(srv, st, len), 0);
	build_getattr(FUSE_GETATTR);
	assert_int_equal(call(NULL, 0), 0);
	fuse_server_free(srv);
	struct fuse_server_opts without[] = { { .readdirplus = true, .posix_acl = true },
	                                      { .readdirplus = true, .security_label = true } };
	for (size_t i = 0; i < sizeof(without) / sizeof(without[0]); i++) {
		assert_int_equal(fuse_server_new(&fs_stub_ops, fs, &without[i], &srv), 0);
		assert_int_equal(fuse_server_state_load(srv, st, len), -EINVAL);
		fuse_server_free(srv);
	}
	back_to_source(source, source_fs, st);
}

int main(void)
{
	log_init("test_fuse_stub", LOG_LVL_ERROR, false);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_every_fs_error_reaches_the_reply_alone, setup, teardown),
		cmocka_unit_test_setup_teardown(test_every_success_reply_has_its_opcodes_size, setup, teardown),
		cmocka_unit_test_setup_teardown(test_arguments_reach_the_fs_as_sent, setup, teardown),
		cmocka_unit_test_setup_teardown(test_statx_and_copy_file_range_64_carry_what_the_fs_gave, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_supplementary_group_reaches_the_fs_on_creating_requests, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_supplementary_group_is_ignored_unless_agreed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hostile_extensions_are_refused_before_the_fs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_readdirplus_references_match_the_reply_at_every_buffer_size,
		                                setup, teardown),
		cmocka_unit_test_setup_teardown(test_session_state_travels_and_is_checked, setup, teardown),
		cmocka_unit_test_setup_teardown(test_acl_and_label_session_state_travels, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cache_policy_of_the_fs_reaches_open_and_entry_replies, setup,
		                                teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * Live migration of the file system's state (src/fs/migrate.c): a source fs with nodes looked up and files
 * open saves its state, a second fs on the same directory loads it, and the guest's node ids and handles work
 * there (same files, same lookup counts, reads and writes through the same handles). Nodes that cannot travel
 * follow migration_on_error. The bytes are hostile: every truncation, every single-byte change and crafted
 * records (slots taken twice, paths leaving the share, symlinks on the way) fail cleanly or load a consistent
 * state, never crash, and a failed load leaves the destination as new.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "fs/fs.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"

static char dir[64], share[96];
static struct fs *src, *dst;
static const struct fs_ctx root = { .uid = 0, .gid = 0, .pid = 1 };

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

static struct fs *new_fs(enum fs_migration_mode mode, enum fs_migration_on_error on_error)
{
	struct fs_config cfg = { .source = share, .posix_lock = true, .flock = true, .migration_mode = mode,
	                         .migration_on_error = on_error };
	struct fs *fs = NULL;
	assert_int_equal(fs_new(&cfg, &fs), 0);
	return fs;
}

static void put_file(const char *name, const char *content)
{
	char p[PATH_MAX];
	snprintf(p, sizeof(p), "%s/%s", share, name);
	int fd = open(p, O_CREAT | O_WRONLY | O_TRUNC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, content, strlen(content)), (ssize_t)strlen(content));
	close(fd);
}

static int setup(void **state)
{
	strcpy(dir, "/tmp/vufs-migrate-XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	snprintf(share, sizeof(share), "%s/share", dir);
	if (mkdir(share, 0755) < 0)
		return -1;
	char p[PATH_MAX];
	snprintf(p, sizeof(p), "%s/d", share);
	mkdir(p, 0755);
	put_file("a", "hello");
	put_file("d/b", "world");
	snprintf(p, sizeof(p), "%s/outside", dir);
	int fd = open(p, O_CREAT | O_WRONLY, 0644);
	close(fd);
	return 0;
}

static int teardown(void **state)
{
	if (src)
		fs_free(src);
	if (dst)
		fs_free(dst);
	src = dst = NULL;
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	return 0;
}

static uint64_t lookup(struct fs *fs, uint64_t parent, const char *name)
{
	struct fs_entry e;
	assert_int_equal(fs_lookup(fs, &root, parent, name, &e), 0);
	return e.nodeid;
}

static void counts(struct fs *fs, uint64_t inodes, uint64_t handles)
{
	uint64_t i, h;
	fs_counts(fs, &i, &h);
	assert_int_equal(i, inodes);
	assert_int_equal(h, handles);
}

static ssize_t read_str(struct fs *fs, uint64_t fh, char *buf, size_t size)
{
	struct iovec iov = { buf, size - 1 };
	ssize_t n = fs_read(fs, fh, 0, size - 1, &iov, 1);
	buf[n > 0 ? n : 0] = 0;
	return n;
}

/* The state of a source with: a (2 lookups, open read-write), d (1), d/b (1), d open as a directory. */
struct scene {
	uint64_t a, d, b, fa, fd;
	void *state;
	size_t len;
};

static void make_scene(struct scene *s, enum fs_migration_mode mode)
{
	src = new_fs(mode, FS_MIGRATE_ABORT);
	s->a = lookup(src, FS_ROOT_ID, "a");
	assert_int_equal(lookup(src, FS_ROOT_ID, "a"), s->a);
	s->d = lookup(src, FS_ROOT_ID, "d");
	s->b = lookup(src, s->d, "b");
	assert_int_equal(fs_open(src, &root, s->a, O_RDWR | O_TRUNC, &s->fa), 0); /* O_TRUNC must not travel */
	struct iovec iov = { "HELLO", 5 };
	assert_int_equal(fs_write(src, &root, s->fa, 0, &iov, 1, false), 5);
	assert_int_equal(fs_opendir(src, &root, s->d, &s->fd), 0);
	assert_int_equal(fs_state_save(src, &s->state, &s->len), 0);
}

static void test_nodes_and_handles_arrive_at_the_same_ids(void **state)
{
	struct scene s;
	make_scene(&s, FS_MIGRATE_FIND_PATHS);
	dst = new_fs(FS_MIGRATE_FIND_PATHS, FS_MIGRATE_ABORT);
	assert_int_equal(fs_state_load(dst, s.state, s.len), 0);
	counts(dst, 4, 2);

	struct stat st_src, st_dst;
	assert_int_equal(fs_getattr(src, s.b, FS_NO_HANDLE, &st_src), 0);
	assert_int_equal(fs_getattr(dst, s.b, FS_NO_HANDLE, &st_dst), 0);
	assert_int_equal(st_src.st_ino, st_dst.st_ino);
	char buf[16];
	assert_int_equal(read_str(dst, s.fa, buf, sizeof(buf)), 5);
	assert_string_equal(buf, "HELLO"); /* reopened without O_TRUNC */
	struct iovec iov = { "J", 1 };
	assert_int_equal(fs_write(dst, &root, s.fa, 0, &iov, 1, false), 1); /* still open for writing */
	/* A new lookup finds the node the guest knows, not a second one. */
	assert_int_equal(lookup(dst, s.d, "b"), s.b);
	/* Lookup counts came along: a has 2, so one FORGET of 2 (and its handle's release) frees it. */
	assert_int_equal(fs_release(dst, s.a, s.fa, false, 0), 0);
	fs_forget(dst, s.a, 1);
	assert_int_equal(fs_getattr(dst, s.a, FS_NO_HANDLE, &st_dst), 0);
	fs_forget(dst, s.a, 1);
	assert_int_equal(fs_getattr(dst, s.a, FS_NO_HANDLE, &st_dst), -ESTALE);
	/* New nodes and handles do not collide with migrated ones. */
	uint64_t fh;
	assert_int_equal(fs_open(dst, &root, s.b, O_RDONLY, &fh), 0);
	assert_true(fh != s.fd);
	assert_int_equal(fs_releasedir(dst, s.d, s.fd), 0);
	free(s.state);
}

static void test_load_into_a_used_fs_is_refused(void **state)
{
	struct scene s;
	make_scene(&s, FS_MIGRATE_FIND_PATHS);
	dst = new_fs(FS_MIGRATE_FIND_PATHS, FS_MIGRATE_ABORT);
	lookup(dst, FS_ROOT_ID, "a");
	assert_int_equal(fs_state_load(dst, s.state, s.len), -EBUSY);
	free(s.state);
}

/* A file unlinked while open: find-paths cannot describe it. */
static void unlinked_scene(enum fs_migration_mode mode, enum fs_migration_on_error on_error, uint64_t *node,
                           uint64_t *fh)
{
	src = new_fs(mode, on_error);
	put_file("gone", "still here");
	*node = lookup(src, FS_ROOT_ID, "gone");
	assert_int_equal(fs_open(src, &root, *node, O_RDONLY, fh), 0);
	char p[PATH_MAX];
	snprintf(p, sizeof(p), "%s/gone", share);
	assert_int_equal(unlink(p), 0);
}

static void test_unlinked_open_file_by_path_aborts_or_becomes_an_error(void **state)
{
	uint64_t node, fh, b;
	void *st;
	size_t len;
	unlinked_scene(FS_MIGRATE_FIND_PATHS, FS_MIGRATE_ABORT, &node, &fh);
	assert_int_equal(fs_state_save(src, &st, &len), -ENOENT);
	fs_free(src);

	unlinked_scene(FS_MIGRATE_FIND_PATHS, FS_MIGRATE_GUEST_ERROR, &node, &fh);
	b = lookup(src, FS_ROOT_ID, "a");
	assert_int_equal(fs_state_save(src, &st, &len), 0);
	dst = new_fs(FS_MIGRATE_FIND_PATHS, FS_MIGRATE_GUEST_ERROR);
	assert_int_equal(fs_state_load(dst, st, len), 0);
	struct stat sb;
	assert_int_equal(fs_getattr(dst, node, FS_NO_HANDLE, &sb), -ESTALE);
	char buf[16];
	struct iovec iov = { buf, sizeof(buf) };
	assert_int_equal(fs_read(dst, fh, 0, sizeof(buf), &iov, 1), -EBADF);
	assert_int_equal(fs_getattr(dst, b, FS_NO_HANDLE, &sb), 0); /* the rest works */
	/* Lost ids stay lost when the destination migrates on. */
	void *st2;
	size_t len2;
	assert_int_equal(fs_state_save(dst, &st2, &len2), 0);
	struct fs *third = new_fs(FS_MIGRATE_FIND_PATHS, FS_MIGRATE_GUEST_ERROR);
	assert_int_equal(fs_state_load(third, st2, len2), 0);
	assert_int_equal(fs_getattr(third, node, FS_NO_HANDLE, &sb), -ESTALE);
	assert_int_equal(fs_getattr(third, b, FS_NO_HANDLE, &sb), 0);
	/* A new session (DESTROY) frees them. */
	fs_reset(third);
	counts(third, 1, 0);
	fs_free(third);
	free(st);
	free(st2);
}

static void test_unlinked_open_file_travels_by_file_handle(void **state)
{
	uint64_t node, fh;
	void *st;
	size_t len;
	unlinked_scene(FS_MIGRATE_FILE_HANDLES, FS_MIGRATE_ABORT, &node, &fh);
	int rc = fs_state_save(src, &st, &len);
	if (rc == -EOPNOTSUPP || rc == -EPERM)
		skip(); /* no file handles on this file system, or no CAP_DAC_READ_SEARCH */
	assert_int_equal(rc, 0);
	dst = new_fs(FS_MIGRATE_FILE_HANDLES, FS_MIGRATE_ABORT);
	assert_int_equal(fs_state_load(dst, st, len), 0);
	char buf[16];
	assert_int_equal(read_str(dst, fh, buf, sizeof(buf)), 10);
	assert_string_equal(buf, "still here");
	free(st);
}

static void test_a_held_lock_aborts_the_save(void **state)
{
	src = new_fs(FS_MIGRATE_FIND_PATHS, FS_MIGRATE_ABORT);
	uint64_t a = lookup(src, FS_ROOT_ID, "a"), fh;
	assert_int_equal(fs_open(src, &root, a, O_RDWR, &fh), 0);
	struct flock lk = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_len = 1 };
	assert_int_equal(fs_setlk(src, a, fh, 7, &lk, false), 0);
	void *st;
	size_t len;
	assert_int_equal(fs_state_save(src, &st, &len), -EBUSY);
}

/* Every prefix and every single-byte change of a good state: no crash, and either a load or a clean failure
 * that leaves the destination as new (so the next load can still succeed). */
static void test_hostile_bytes_fail_cleanly(void **state)
{
	struct scene s;
	make_scene(&s, FS_MIGRATE_FIND_PATHS);
	uint8_t *bad = malloc(s.len);
	for (size_t cut = 0; cut < s.len; cut++) {
		dst = new_fs(FS_MIGRATE_FIND_PATHS, FS_MIGRATE_ABORT);
		assert_int_equal(fs_state_load(dst, s.state, cut), -EINVAL);
		counts(dst, 1, 0);
		fs_free(dst);
	}
	static const uint8_t values[] = { 0x00, 0x01, 0x02, 0x2e, 0x2f, 0x7f, 0x80, 0xff };
	for (size_t i = 0; i < s.len; i++) {
		for (size_t v = 0; v < sizeof(values); v++) {
			memcpy(bad, s.state, s.len);
			if (bad[i] == values[v])
				continue;
			bad[i] = values[v];
			dst = new_fs(FS_MIGRATE_FIND_PATHS, v & 1 ? FS_MIGRATE_GUEST_ERROR : FS_MIGRATE_ABORT);
			if (fs_state_load(dst, bad, s.len) < 0)
				counts(dst, 1, 0);
			fs_reset(dst);
			counts(dst, 1, 0);
			fs_free(dst);
		}
	}
	dst = NULL;
	free(bad);
	free(s.state);
}

/* A state crafted by hand: one node record (slot 2 generation 0) with the given path. */
static size_t craft(uint8_t *buf, uint32_t mode, uint32_t slot, uint32_t type, const char *path)
{
	size_t n = 0, plen = strlen(path);
#define LE(v, bytes)                                                                                            \
	do {                                                                                                    \
		for (int k_ = 0; k_ < (bytes); k_++)                                                            \
			buf[n++] = (uint8_t)((uint64_t)(v) >> (8 * k_));                                        \
	} while (0)
	memcpy(buf, "VUFSFS\0\1", 8);
	n = 8;
	LE(mode, 4); LE(0, 4); LE(1, 4); LE(0, 4);
	LE(slot, 4); LE(0, 4); LE(1, 8); LE(type, 4); LE(0, 4); LE(0, 4); LE(plen, 2); LE(0, 2);
	memcpy(buf + n, path, plen);
	return n + plen;
#undef LE
}

static void test_crafted_paths_cannot_leave_the_share(void **state)
{
	uint8_t buf[512];
	char p[PATH_MAX], q[PATH_MAX];
	snprintf(p, sizeof(p), "%s/escape", share);
	assert_int_equal(symlink(dir, p), 0); /* share/escape -> the directory above the share */
	snprintf(q, sizeof(q), "%s/d/file", share);
	put_file("d/file", "x");
	static const struct {
		const char *path;
		uint32_t slot, type;
	} cases[] = {
		{ "../outside", 2, S_IFREG }, { "escape/outside", 2, S_IFREG }, { "/etc/passwd", 2, S_IFREG },
		{ "d/../../outside", 2, S_IFREG }, { "a", 1, S_IFREG }, { "a", 0, S_IFREG },
		{ "a", 2, S_IFDIR },               /* the wrong type: not the file the guest knows */
		{ "", 2, S_IFREG }, { "a", 1u << 30, S_IFREG },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		dst = new_fs(FS_MIGRATE_FIND_PATHS, FS_MIGRATE_ABORT);
		size_t n = craft(buf, 1, cases[i].slot, cases[i].type, cases[i].path);
		int rc = fs_state_load(dst, buf, n);
		if (rc >= 0)
			fail_msg("case %zu (%s, slot %u) loaded", i, cases[i].path, cases[i].slot);
		counts(dst, 1, 0);
		fs_free(dst);
	}
	/* The same record with a path inside the share loads. */
	dst = new_fs(FS_MIGRATE_FIND_PATHS, FS_MIGRATE_ABORT);
	size_t n = craft(buf, 1, 2, S_IFREG, "d/file");
	assert_int_equal(fs_state_load(dst, buf, n), 0);
	struct stat st, host;
	assert_int_equal(fs_getattr(dst, 2, FS_NO_HANDLE, &st), 0);
	assert_int_equal(stat(q, &host), 0);
	assert_int_equal(st.st_ino, host.st_ino);
}

/* --migration-verify-handles: a file put at the path meanwhile is not the one the guest knows. */
static void test_verify_handles_catches_a_replaced_file(void **state)
{
	struct fs_config cfg = { .source = share, .migration_verify_handles = true };
	assert_int_equal(fs_new(&cfg, &src), 0);
	uint64_t a = lookup(src, FS_ROOT_ID, "a");
	void *st;
	size_t len;
	int rc = fs_state_save(src, &st, &len);
	if (rc == -EOPNOTSUPP)
		skip();
	assert_int_equal(rc, 0);
	char p[PATH_MAX];
	snprintf(p, sizeof(p), "%s/a", share);
	assert_int_equal(unlink(p), 0);
	put_file("a", "another file");
	assert_int_equal(fs_state_load(dst = new_fs(FS_MIGRATE_FIND_PATHS, FS_MIGRATE_ABORT), st, len), 0);
	fs_free(dst);
	cfg.migration_verify_handles = true;
	assert_int_equal(fs_new(&cfg, &dst), 0);
	assert_int_equal(fs_state_load(dst, st, len), -ESTALE);
	struct stat sb;
	assert_int_equal(fs_getattr(dst, a, FS_NO_HANDLE, &sb), -ESTALE);
	free(st);
}

int main(void)
{
	log_init("test_fs_migrate", getenv("VUFS_TEST_LOG") ? LOG_LVL_DEBUG : LOG_LVL_ERROR, false);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_nodes_and_handles_arrive_at_the_same_ids, setup, teardown),
		cmocka_unit_test_setup_teardown(test_load_into_a_used_fs_is_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unlinked_open_file_by_path_aborts_or_becomes_an_error, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_unlinked_open_file_travels_by_file_handle, setup, teardown),
		cmocka_unit_test_setup_teardown(test_a_held_lock_aborts_the_save, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hostile_bytes_fail_cleanly, setup, teardown),
		cmocka_unit_test_setup_teardown(test_crafted_paths_cannot_leave_the_share, setup, teardown),
		cmocka_unit_test_setup_teardown(test_verify_handles_catches_a_replaced_file, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

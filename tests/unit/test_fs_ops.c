/* File system operations on a fresh temporary directory: create, I/O, directories, names, attributes, xattrs.
 * Every test runs twice: with an O_PATH fd per inode, and with --inode-file-handles=mandatory (every inode but the
 * root kept as a file handle, so each operation goes through open_by_handle_at). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "fs/fs.h"
#include "fs_fixture.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <linux/falloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

static char dir[64];
static struct fs *fs;
static const struct fs_ctx root = { .uid = 0, .gid = 0, .pid = 1 };
static const struct fs_config default_cfg = { .xattr = true, .posix_lock = true, .flock = true };
static enum fs_inode_handles g_handles; /* the group being run */

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st; (void)flag; (void)ftw;
	return remove(path);
}

static int open_fs(const struct fs_config *over)
{
	struct fs_config cfg = *over;
	cfg.source = dir;
	cfg.inode_file_handles = g_handles;
	return fixture_fs_start(&cfg, &fs);
}

static int setup(void **state)
{
	(void)state;
	strcpy(dir, "/tmp/vufs-fs-ops-XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	return open_fs(&default_cfg);
}

static int teardown(void **state)
{
	(void)state;
	fs_free(fs);
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

static uint64_t ninodes(void)
{
	uint64_t n;
	fs_counts(fs, &n, NULL);
	return n;
}

static ssize_t write_str(uint64_t fh, uint64_t off, const char *s)
{
	struct iovec iov = { (void *)s, strlen(s) };
	return fs_write(fs, &root, fh, off, &iov, 1, false);
}

static ssize_t read_buf(uint64_t fh, uint64_t off, char *buf, size_t size)
{
	struct iovec iov = { buf, size };
	return fs_read(fs, fh, off, size, &iov, 1);
}

static void test_create_write_read(void **state)
{
	struct fs_entry e;
	uint64_t fh;
	char buf[64] = { 0 };
	char a[4], b[32];
	struct stat st;
	(void)state;
	assert_int_equal(fs_create(fs, &root, FS_ROOT_ID, "f", S_IFREG | 0640, O_RDWR, &e, &fh), 0);
	assert_true(S_ISREG(e.st.st_mode));
	assert_int_equal(e.st.st_mode & 07777, 0640);
	assert_int_equal(e.st.st_uid, 0);

	struct iovec w[2] = { { "hello ", 6 }, { "world", 5 } };
	assert_int_equal(fs_write(fs, &root, fh, 0, w, 2, false), 11);
	assert_int_equal(fs_getattr(fs, e.nodeid, fh, &st), 0);
	assert_int_equal(st.st_size, 11);

	/* Scattered read, clipped to size. */
	struct iovec r[2] = { { a, sizeof(a) }, { b, sizeof(b) } };
	memset(b, 0, sizeof(b));
	assert_int_equal(fs_read(fs, fh, 1, 7, r, 2), 7);
	assert_memory_equal(a, "ello", 4);
	assert_memory_equal(b, " wo", 3);
	assert_int_equal(b[3], 0);
	assert_int_equal(read_buf(fh, 100, buf, sizeof(buf)), 0);
	assert_int_equal(read_buf(fh, 6, buf, sizeof(buf)), 5);
	assert_memory_equal(buf, "world", 5);
	assert_int_equal(fs_read(fs, fh, (uint64_t)INT64_MAX + 1, 4, r, 1), -EINVAL);
	assert_int_equal(fs_write(fs, &root, fh, (uint64_t)INT64_MAX, w, 1, false), -EFBIG);
	assert_int_equal(fs_flush(fs, e.nodeid, fh, 42), 0);
	assert_int_equal(fs_fsync(fs, e.nodeid, fh, false), 0);
	assert_int_equal(fs_fsync(fs, e.nodeid, fh, true), 0);
	assert_int_equal(fs_fsync(fs, e.nodeid, FS_NO_HANDLE, false), 0);
	assert_int_equal(fs_release(fs, e.nodeid, fh, false, 42), 0);

	/* Host sees it. */
	int fd = open(hpath("f"), O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(read(fd, buf, sizeof(buf)), 11);
	close(fd);

	/* Create of an existing name: opened (same inode) without O_EXCL, EEXIST with it. */
	struct fs_entry e2;
	assert_int_equal(fs_create(fs, &root, FS_ROOT_ID, "f", 0600, O_RDONLY, &e2, &fh), 0);
	assert_int_equal(e2.nodeid, e.nodeid);
	assert_int_equal(e2.st.st_mode & 07777, 0640);
	assert_int_equal(read_buf(fh, 0, buf, 5), 5);
	assert_int_equal(fs_release(fs, e.nodeid, fh, false, 0), 0);
	assert_int_equal(fs_create(fs, &root, FS_ROOT_ID, "f", 0600, O_RDWR | O_EXCL, &e2, &fh), -EEXIST);
	/* O_TRUNC through create of an existing file. */
	assert_int_equal(fs_create(fs, &root, FS_ROOT_ID, "f", 0600, O_RDWR | O_TRUNC, &e2, &fh), 0);
	assert_int_equal(e2.st.st_size, 0);
	assert_int_equal(fs_release(fs, e.nodeid, fh, false, 0), 0);
	fs_forget(fs, e.nodeid, 3);

	struct fs_entry d;
	assert_int_equal(fs_mkdir(fs, &root, FS_ROOT_ID, "d", 0755, &d), 0);
	assert_int_equal(fs_create(fs, &root, FS_ROOT_ID, "d", 0600, O_RDWR, &e2, &fh), -EISDIR);
	assert_int_equal(fs_create(fs, &root, d.nodeid, "x/y", 0600, O_RDWR, &e2, &fh), -EINVAL);
	assert_int_equal(fs_create(fs, &root, d.nodeid, "..", 0600, O_RDWR, &e2, &fh), -EINVAL);
	fs_forget(fs, d.nodeid, 1);
	assert_int_equal(ninodes(), 1);
}

static void test_open_flags(void **state)
{
	struct fs_entry e;
	uint64_t fh;
	char buf[16];
	(void)state;
	int fd = open(hpath("o"), O_CREAT | O_WRONLY, 0644);
	assert_int_equal(write(fd, "0123456789", 10), 10);
	close(fd);
	assert_int_equal(fs_lookup(fs, &root, FS_ROOT_ID, "o", &e), 0);
	/* O_CREAT|O_EXCL are stripped: the file exists, the open still works. */
	assert_int_equal(fs_open(fs, &root, e.nodeid, O_RDONLY | O_CREAT | O_EXCL | O_NOFOLLOW, &fh), 0);
	assert_int_equal(read_buf(fh, 0, buf, sizeof(buf)), 10);
	/* Read-only handle cannot write. */
	assert_int_equal(write_str(fh, 0, "x"), -EBADF);
	assert_int_equal(fs_release(fs, e.nodeid, fh, false, 0), 0);

	assert_int_equal(fs_open(fs, &root, e.nodeid, O_WRONLY | O_TRUNC, &fh), 0);
	struct stat st;
	assert_int_equal(fs_getattr(fs, e.nodeid, fh, &st), 0);
	assert_int_equal(st.st_size, 0);
	assert_int_equal(read_buf(fh, 0, buf, sizeof(buf)), -EBADF);
	assert_int_equal(fs_release(fs, e.nodeid, fh, false, 0), 0);

	/* O_DIRECT is dropped unless allowed (tmpfs would refuse it; ext4 takes it). */
	assert_int_equal(fs_open(fs, &root, e.nodeid, O_RDWR | O_DIRECT, &fh), 0);
	assert_int_equal(write_str(fh, 0, "abc"), 3);
	assert_int_equal(fs_release(fs, e.nodeid, fh, false, 0), 0);

	/* Directories only read-only. */
	assert_int_equal(fs_open(fs, &root, FS_ROOT_ID, O_RDWR, &fh), -EISDIR);
	assert_int_equal(fs_open(fs, &root, FS_ROOT_ID, O_RDONLY, &fh), 0);
	assert_int_equal(read_buf(fh, 0, buf, sizeof(buf)), -EISDIR);
	assert_int_equal(fs_release(fs, FS_ROOT_ID, fh, false, 0), 0);
	fs_forget(fs, e.nodeid, 1);
}

struct seen {
	char names[256][32];
	uint64_t nodeids[256];
	unsigned n, limit;
	uint64_t last_off;
	bool plus;
	unsigned dots;
};

static int collect(void *arg, const char *name, size_t namelen, uint64_t ino, unsigned dtype, uint64_t next_off,
                   const struct fs_entry *plus)
{
	struct seen *s = arg;
	(void)dtype;
	if (s->n >= s->limit)
		return 1;
	assert_true(namelen < 32);
	assert_int_equal(strlen(name), namelen);
	memcpy(s->names[s->n], name, namelen);
	s->names[s->n][namelen] = 0;
	if (s->plus) {
		assert_non_null(plus);
		assert_int_equal(plus->st.st_ino, ino);
		if (!strcmp(name, ".") || !strcmp(name, "..")) {
			assert_int_equal(plus->nodeid, 0);
			assert_true(S_ISDIR(plus->st.st_mode));
			s->dots++;
		} else {
			assert_int_not_equal(plus->nodeid, 0);
		}
		s->nodeids[s->n] = plus->nodeid;
	} else {
		assert_null(plus);
	}
	s->n++;
	s->last_off = next_off;
	return 0;
}

static void read_all(uint64_t nodeid, uint64_t fh, bool plus, unsigned batch, struct seen *all)
{
	uint64_t off = 0;
	memset(all, 0, sizeof(*all));
	for (int rounds = 0; rounds < 1000; rounds++) {
		struct seen s = { .limit = batch, .plus = plus };
		assert_int_equal(fs_readdir(fs, &root, nodeid, fh, off, plus, collect, &s), 0);
		if (s.n == 0)
			return;
		for (unsigned i = 0; i < s.n; i++) {
			strcpy(all->names[all->n], s.names[i]);
			all->nodeids[all->n++] = s.nodeids[i];
		}
		all->dots += s.dots;
		off = s.last_off;
	}
	fail_msg("readdir does not end");
}

static int count_name(const struct seen *s, const char *name)
{
	int c = 0;
	for (unsigned i = 0; i < s->n; i++)
		c += !strcmp(s->names[i], name);
	return c;
}

static void test_readdir(void **state)
{
	struct fs_entry d;
	uint64_t fh;
	struct seen all;
	char name[16];
	(void)state;
	assert_int_equal(fs_mkdir(fs, &root, FS_ROOT_ID, "dir", 0755, &d), 0);
	for (int i = 0; i < 100; i++) {
		snprintf(name, sizeof(name), "dir/e%03d", i);
		int fd = open(hpath(name), O_CREAT | O_WRONLY, 0644);
		assert_true(fd >= 0);
		close(fd);
	}
	assert_int_equal(fs_opendir(fs, &root, d.nodeid, &fh), 0);
	/* In batches of 7: every name exactly once. */
	read_all(d.nodeid, fh, false, 7, &all);
	assert_int_equal(all.n, 102);
	assert_int_equal(count_name(&all, "."), 1);
	assert_int_equal(count_name(&all, ".."), 1);
	for (int i = 0; i < 100; i++) {
		snprintf(name, sizeof(name), "e%03d", i);
		assert_int_equal(count_name(&all, name), 1);
	}
	/* Offset 0 starts over, on the same handle. */
	read_all(d.nodeid, fh, false, 1000, &all);
	assert_int_equal(all.n, 102);
	assert_int_equal(ninodes(), 2);

	/* Plus: one lookup each but "." and "..", none for an entry the sink refused. */
	read_all(d.nodeid, fh, true, 5, &all);
	assert_int_equal(all.n, 102);
	assert_int_equal(all.dots, 2);
	assert_int_equal(ninodes(), 2 + 100);
	for (unsigned i = 0; i < all.n; i++) {
		if (all.nodeids[i])
			fs_forget(fs, all.nodeids[i], 1);
	}
	assert_int_equal(ninodes(), 2);

	/* A sink that is full at once takes nothing and keeps nothing. */
	struct seen none = { .limit = 0, .plus = true };
	assert_int_equal(fs_readdir(fs, &root, d.nodeid, fh, 0, true, collect, &none), 0);
	assert_int_equal(none.n, 0);
	assert_int_equal(ninodes(), 2);

	/* An entry removed between getdents and its lookup is skipped in plus mode. */
	struct seen first = { .limit = 3, .plus = true };
	assert_int_equal(fs_readdir(fs, &root, d.nodeid, fh, 0, true, collect, &first), 0);
	assert_int_equal(first.n, 3);
	char victim[32] = "";
	{
		/* Any name not yet returned: the rest are all still in the handle's buffer. */
		for (int i = 0; i < 100 && !victim[0]; i++) {
			snprintf(name, sizeof(name), "e%03d", i);
			bool taken = false;
			for (unsigned k = 0; k < first.n; k++)
				taken |= !strcmp(first.names[k], name);
			if (!taken)
				strcpy(victim, name);
		}
		char p[64];
		snprintf(p, sizeof(p), "dir/%s", victim);
		assert_int_equal(unlink(hpath(p)), 0);
	}
	struct seen rest = { .limit = 256, .plus = true };
	assert_int_equal(fs_readdir(fs, &root, d.nodeid, fh, first.last_off, true, collect, &rest), 0);
	assert_int_equal(first.n + rest.n, 101);
	assert_int_equal(count_name(&rest, victim), 0);
	for (unsigned i = 0; i < first.n; i++)
		if (first.nodeids[i])
			fs_forget(fs, first.nodeids[i], 1);
	for (unsigned i = 0; i < rest.n; i++)
		if (rest.nodeids[i])
			fs_forget(fs, rest.nodeids[i], 1);
	assert_int_equal(ninodes(), 2);

	assert_int_equal(fs_fsyncdir(fs, d.nodeid, fh, false), 0);
	assert_int_equal(fs_fsyncdir(fs, d.nodeid, FS_NO_HANDLE, true), 0);
	assert_int_equal(fs_lseek(fs, d.nodeid, fh, 0, SEEK_SET), -EINVAL);
	assert_int_equal(fs_releasedir(fs, d.nodeid, fh), 0);
	assert_int_equal(fs_readdir(fs, &root, d.nodeid, fh, 0, false, collect, &none), -EBADF);

	/* Not a directory. */
	struct fs_entry f;
	assert_int_equal(fs_create(fs, &root, FS_ROOT_ID, "file", 0644, O_RDWR, &f, &fh), 0);
	assert_int_equal(fs_readdir(fs, &root, f.nodeid, fh, 0, false, collect, &none), -ENOTDIR);
	assert_int_equal(fs_opendir(fs, &root, f.nodeid, &fh), -ENOTDIR);
	fs_forget(fs, d.nodeid, 1);
}

static void test_names(void **state)
{
	struct fs_entry a, b, s, l, n, x;
	char buf[64];
	struct stat st;
	uint64_t fh;
	(void)state;
	assert_int_equal(fs_create(fs, &root, FS_ROOT_ID, "a", 0644, O_RDWR, &a, &fh), 0);
	assert_int_equal(write_str(fh, 0, "A"), 1);
	assert_int_equal(fs_release(fs, a.nodeid, fh, false, 0), 0);
	assert_int_equal(fs_create(fs, &root, FS_ROOT_ID, "b", 0644, O_RDWR, &b, &fh), 0);
	assert_int_equal(write_str(fh, 0, "B"), 1);
	assert_int_equal(fs_release(fs, b.nodeid, fh, false, 0), 0);

	/* rename flags */
	assert_int_equal(fs_rename(fs, &root, FS_ROOT_ID, "a", FS_ROOT_ID, "b", RENAME_NOREPLACE), -EEXIST);
	assert_int_equal(fs_rename(fs, &root, FS_ROOT_ID, "a", FS_ROOT_ID, "b", RENAME_EXCHANGE), 0);
	assert_int_equal(fs_lookup(fs, &root, FS_ROOT_ID, "a", &x), 0);
	assert_int_equal(x.nodeid, b.nodeid);
	fs_forget(fs, x.nodeid, 1);
	assert_int_equal(fs_rename(fs, &root, FS_ROOT_ID, "a", FS_ROOT_ID, "c", RENAME_NOREPLACE), 0);
	assert_int_equal(fs_rename(fs, &root, FS_ROOT_ID, "c", FS_ROOT_ID, "b", 0), 0);
	assert_int_equal(fs_lookup(fs, &root, FS_ROOT_ID, "a", &x), -ENOENT);
	assert_int_equal(fs_rename(fs, &root, FS_ROOT_ID, "b", FS_ROOT_ID, "c", 0x80), -EINVAL);
	assert_int_equal(fs_rename(fs, &root, FS_ROOT_ID, "b", FS_ROOT_ID, "..", 0), -EINVAL);
	assert_int_equal(fs_rename(fs, &root, FS_ROOT_ID, ".", FS_ROOT_ID, "z", 0), -EINVAL);
	assert_int_equal(fs_rename(fs, &root, FS_ROOT_ID, "b", b.nodeid, "z", 0), -ENOTDIR);
	/* "b" is b again (a swapped in as "b" went away when "c" replaced it). */
	assert_int_equal(fs_lookup(fs, &root, FS_ROOT_ID, "b", &x), 0);
	assert_int_equal(x.nodeid, b.nodeid);
	fs_forget(fs, x.nodeid, 1);

	/* A RENAME_WHITEOUT leaves a 0:0 char device behind. */
	assert_int_equal(fs_rename(fs, &root, FS_ROOT_ID, "b", FS_ROOT_ID, "w", RENAME_WHITEOUT), 0);
	assert_int_equal(lstat(hpath("b"), &st), 0);
	assert_true(S_ISCHR(st.st_mode));
	assert_int_equal(st.st_rdev, makedev(0, 0));
	assert_int_equal(fs_unlink(fs, &root, FS_ROOT_ID, "b"), 0);

	/* symlink + readlink */
	assert_int_equal(fs_symlink(fs, &root, FS_ROOT_ID, "s", "w", &s), 0);
	assert_true(S_ISLNK(s.st.st_mode));
	assert_int_equal(fs_readlink(fs, s.nodeid, buf, sizeof(buf)), 1);
	assert_memory_equal(buf, "w", 1);
	assert_int_equal(fs_readlink(fs, s.nodeid, buf, 0), -EINVAL);
	assert_int_equal(fs_readlink(fs, FS_ROOT_ID, buf, sizeof(buf)), -EINVAL);
	assert_int_equal(fs_symlink(fs, &root, FS_ROOT_ID, "s", "w", &x), -EEXIST);

	/* link, also of a symlink (the link itself, not its target) */
	assert_int_equal(fs_link(fs, &root, b.nodeid, FS_ROOT_ID, "l", &l), 0);
	assert_int_equal(l.nodeid, b.nodeid);
	assert_int_equal(l.st.st_nlink, 2);
	assert_int_equal(fs_link(fs, &root, s.nodeid, FS_ROOT_ID, "s2", &x), 0);
	assert_int_equal(x.nodeid, s.nodeid);
	assert_int_equal(lstat(hpath("s2"), &st), 0);
	assert_true(S_ISLNK(st.st_mode));
	assert_int_equal(fs_link(fs, &root, FS_ROOT_ID, FS_ROOT_ID, "rootlink", &x), -EPERM);
	assert_int_equal(fs_link(fs, &root, b.nodeid, FS_ROOT_ID, "l", &x), -EEXIST);

	/* unlink keeps the inode usable while the guest holds it (an fd pins the file); a file handle does not pin it:
	 * once nothing has the file open it answers ESTALE, as virtiofsd's does */
	assert_int_equal(fs_unlink(fs, &root, FS_ROOT_ID, "w"), 0);
	assert_int_equal(fs_unlink(fs, &root, FS_ROOT_ID, "l"), 0);
	if (g_handles) {
		assert_int_equal(fs_getattr(fs, b.nodeid, FS_NO_HANDLE, &st), -ESTALE);
		assert_int_equal(fs_open(fs, &root, b.nodeid, O_RDONLY, &fh), -ESTALE);
	} else {
		assert_int_equal(fs_getattr(fs, b.nodeid, FS_NO_HANDLE, &st), 0);
		assert_int_equal(st.st_nlink, 0);
		assert_int_equal(fs_open(fs, &root, b.nodeid, O_RDONLY, &fh), 0);
		assert_int_equal(read_buf(fh, 0, buf, sizeof(buf)), 1);
		assert_int_equal(fs_release(fs, b.nodeid, fh, false, 0), 0);
	}
	assert_int_equal(fs_unlink(fs, &root, FS_ROOT_ID, "nope"), -ENOENT);
	assert_int_equal(fs_unlink(fs, &root, FS_ROOT_ID, "."), -EINVAL);

	/* mkdir / rmdir */
	struct fs_entry d;
	assert_int_equal(fs_mkdir(fs, &root, FS_ROOT_ID, "d", S_IFDIR | 0750, &d), 0);
	assert_true(S_ISDIR(d.st.st_mode));
	assert_int_equal(d.st.st_mode & 07777, 0750);
	assert_int_equal(fs_mknod(fs, &root, d.nodeid, "fifo", S_IFIFO | 0600, 0, &n), 0);
	assert_true(S_ISFIFO(n.st.st_mode));
	assert_int_equal(fs_rmdir(fs, &root, FS_ROOT_ID, "d"), -ENOTEMPTY);
	assert_int_equal(fs_unlink(fs, &root, d.nodeid, "fifo"), 0);
	assert_int_equal(fs_rmdir(fs, &root, FS_ROOT_ID, "d"), 0);
	assert_int_equal(fs_rmdir(fs, &root, FS_ROOT_ID, ".."), -EINVAL);
	/* a removed directory the guest still holds: ESTALE by handle (the guest's VFS then looks the path up again) */
	assert_int_equal(fs_mkdir(fs, &root, d.nodeid, "x", 0755, &x), g_handles ? -ESTALE : -ENOENT);
	assert_int_equal(fs_mkdir(fs, &root, FS_ROOT_ID, ".", 0755, &x), -EINVAL);

	/* mknod: regular file, socket, char device (as root) */
	assert_int_equal(fs_mknod(fs, &root, FS_ROOT_ID, "reg", S_IFREG | 0600, 0, &x), 0);
	assert_true(S_ISREG(x.st.st_mode));
	fs_forget(fs, x.nodeid, 1);
	assert_int_equal(fs_mknod(fs, &root, FS_ROOT_ID, "sock", S_IFSOCK | 0600, 0, &x), 0);
	assert_true(S_ISSOCK(x.st.st_mode));
	fs_forget(fs, x.nodeid, 1);
	assert_int_equal(fs_mknod(fs, &root, FS_ROOT_ID, "null", S_IFCHR | 0600, makedev(1, 3), &x), 0);
	assert_true(S_ISCHR(x.st.st_mode));
	assert_int_equal(x.st.st_rdev, makedev(1, 3));
	fs_forget(fs, x.nodeid, 1);
	assert_int_equal(fs_mknod(fs, &root, FS_ROOT_ID, "dd", S_IFDIR | 0600, 0, &x), -EINVAL);

	fs_forget(fs, a.nodeid, 1);
	fs_forget(fs, b.nodeid, 2);
	fs_forget(fs, s.nodeid, 2);
	fs_forget(fs, n.nodeid, 1);
	fs_forget(fs, d.nodeid, 1);
	assert_int_equal(ninodes(), 1);
}

static void test_setattr(void **state)
{
	struct fs_entry e, s, d;
	struct fs_setattr sa;
	struct stat st;
	uint64_t fh, rofh;
	(void)state;
	assert_int_equal(fs_create(fs, &root, FS_ROOT_ID, "f", 0644, O_RDWR, &e, &fh), 0);
	assert_int_equal(fs_open(fs, &root, e.nodeid, O_RDONLY, &rofh), 0);

	/* mode, without and with a handle */
	sa = (struct fs_setattr){ .valid = FS_SET_MODE, .mode = S_IFREG | 0600 };
	assert_int_equal(fs_setattr(fs, &root, e.nodeid, FS_NO_HANDLE, &sa, &st), 0);
	assert_int_equal(st.st_mode, S_IFREG | 0600);
	sa.mode = 04711;
	assert_int_equal(fs_setattr(fs, &root, e.nodeid, fh, &sa, &st), 0);
	assert_int_equal(st.st_mode & 07777, 04711);

	/* uid / gid, one or both */
	sa = (struct fs_setattr){ .valid = FS_SET_UID, .uid = 1000 };
	assert_int_equal(fs_setattr(fs, &root, e.nodeid, FS_NO_HANDLE, &sa, &st), 0);
	assert_int_equal(st.st_uid, 1000);
	assert_int_equal(st.st_gid, 0);
	/* chown cleared setuid, as on the host */
	assert_int_equal(st.st_mode & 07777, 0711);
	sa = (struct fs_setattr){ .valid = FS_SET_GID, .gid = 2000 };
	assert_int_equal(fs_setattr(fs, &root, e.nodeid, fh, &sa, &st), 0);
	assert_int_equal(st.st_uid, 1000);
	assert_int_equal(st.st_gid, 2000);

	/* size: path, write handle, read-only handle (reopens for writing) */
	sa = (struct fs_setattr){ .valid = FS_SET_SIZE, .size = 1000 };
	assert_int_equal(fs_setattr(fs, &root, e.nodeid, FS_NO_HANDLE, &sa, &st), 0);
	assert_int_equal(st.st_size, 1000);
	sa.size = 10;
	assert_int_equal(fs_setattr(fs, &root, e.nodeid, fh, &sa, &st), 0);
	assert_int_equal(st.st_size, 10);
	sa.size = 5;
	assert_int_equal(fs_setattr(fs, &root, e.nodeid, rofh, &sa, &st), 0);
	assert_int_equal(st.st_size, 5);
	sa.size = (uint64_t)INT64_MAX + 1;
	assert_int_equal(fs_setattr(fs, &root, e.nodeid, fh, &sa, &st), -EFBIG);
	sa.size = 0;
	assert_int_equal(fs_setattr(fs, &root, FS_ROOT_ID, FS_NO_HANDLE, &sa, &st), -EISDIR);

	/* times: explicit, now, omit */
	sa = (struct fs_setattr){ .valid = FS_SET_ATIME | FS_SET_MTIME, .atime = { 1000, 5 }, .mtime = { 2000, 7 } };
	assert_int_equal(fs_setattr(fs, &root, e.nodeid, FS_NO_HANDLE, &sa, &st), 0);
	assert_int_equal(st.st_atim.tv_sec, 1000);
	assert_int_equal(st.st_atim.tv_nsec, 5);
	assert_int_equal(st.st_mtim.tv_sec, 2000);
	assert_int_equal(st.st_mtim.tv_nsec, 7);
	sa = (struct fs_setattr){ .valid = FS_SET_MTIME | FS_SET_MTIME_NOW };
	assert_int_equal(fs_setattr(fs, &root, e.nodeid, fh, &sa, &st), 0);
	assert_int_equal(st.st_atim.tv_sec, 1000); /* omitted */
	assert_true(st.st_mtim.tv_sec > 1000000000);
	sa = (struct fs_setattr){ .valid = FS_SET_ATIME, .atime = { 3000, 0 } };
	assert_int_equal(fs_setattr(fs, &root, e.nodeid, fh, &sa, &st), 0);
	assert_int_equal(st.st_atim.tv_sec, 3000);
	assert_true(st.st_mtim.tv_sec > 1000000000);
	sa = (struct fs_setattr){ .valid = FS_SET_CTIME, .ctime = { 1, 0 } };
	assert_int_equal(fs_setattr(fs, &root, e.nodeid, fh, &sa, &st), 0);

	/* kill_suidgid with truncate: setuid always, setgid only with group exec */
	sa = (struct fs_setattr){ .valid = FS_SET_MODE, .mode = 06755 };
	assert_int_equal(fs_setattr(fs, &root, e.nodeid, FS_NO_HANDLE, &sa, &st), 0);
	sa = (struct fs_setattr){ .valid = FS_SET_SIZE | FS_SET_KILL_SUIDGID, .size = 1 };
	assert_int_equal(fs_setattr(fs, &root, e.nodeid, fh, &sa, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0755);
	sa = (struct fs_setattr){ .valid = FS_SET_MODE, .mode = 06745 };
	assert_int_equal(fs_setattr(fs, &root, e.nodeid, FS_NO_HANDLE, &sa, &st), 0);
	sa = (struct fs_setattr){ .valid = FS_SET_SIZE | FS_SET_KILL_SUIDGID, .size = 2 };
	assert_int_equal(fs_setattr(fs, &root, e.nodeid, FS_NO_HANDLE, &sa, &st), 0);
	assert_int_equal(st.st_mode & 07777, 02745);

	/* symlinks: no mode, no size; times and owner on the link itself */
	assert_int_equal(fs_symlink(fs, &root, FS_ROOT_ID, "s", "f", &s), 0);
	sa = (struct fs_setattr){ .valid = FS_SET_MODE, .mode = 0600 };
	assert_int_equal(fs_setattr(fs, &root, s.nodeid, FS_NO_HANDLE, &sa, &st), -EOPNOTSUPP);
	sa = (struct fs_setattr){ .valid = FS_SET_SIZE };
	assert_int_equal(fs_setattr(fs, &root, s.nodeid, FS_NO_HANDLE, &sa, &st), -EINVAL);
	sa = (struct fs_setattr){ .valid = FS_SET_MTIME | FS_SET_UID | FS_SET_GID, .mtime = { 4000, 0 }, .uid = 7,
	                          .gid = 8 };
	assert_int_equal(fs_setattr(fs, &root, s.nodeid, FS_NO_HANDLE, &sa, &st), 0);
	assert_true(S_ISLNK(st.st_mode));
	assert_int_equal(st.st_mtim.tv_sec, 4000);
	assert_int_equal(st.st_uid, 7);
	assert_int_equal(fs_getattr(fs, e.nodeid, FS_NO_HANDLE, &st), 0);
	assert_int_not_equal(st.st_mtim.tv_sec, 4000);
	assert_int_equal(st.st_uid, 1000);

	/* directories: mode and times */
	assert_int_equal(fs_mkdir(fs, &root, FS_ROOT_ID, "d", 0755, &d), 0);
	sa = (struct fs_setattr){ .valid = FS_SET_MODE | FS_SET_ATIME, .mode = 01777, .atime = { 5, 0 } };
	assert_int_equal(fs_setattr(fs, &root, d.nodeid, FS_NO_HANDLE, &sa, &st), 0);
	assert_int_equal(st.st_mode, S_IFDIR | 01777);
	assert_int_equal(st.st_atim.tv_sec, 5);

	assert_int_equal(fs_release(fs, e.nodeid, fh, false, 0), 0);
	assert_int_equal(fs_release(fs, e.nodeid, rofh, false, 0), 0);
	fs_forget(fs, e.nodeid, 1);
	fs_forget(fs, s.nodeid, 1);
	fs_forget(fs, d.nodeid, 1);
	assert_int_equal(ninodes(), 1);
}

static void test_tmpfile(void **state)
{
	struct fs_entry e, l;
	uint64_t fh;
	char buf[8];
	struct stat st;
	struct seen s = { .limit = 256 };
	uint64_t dfh;
	(void)state;
	assert_int_equal(fs_tmpfile(fs, &root, FS_ROOT_ID, 0600, O_RDWR, &e, &fh), 0);
	assert_true(S_ISREG(e.st.st_mode));
	assert_int_equal(e.st.st_nlink, 0);
	assert_int_equal(write_str(fh, 0, "tmp"), 3);
	assert_int_equal(read_buf(fh, 0, buf, sizeof(buf)), 3);
	/* Not in the directory... */
	assert_int_equal(fs_opendir(fs, &root, FS_ROOT_ID, &dfh), 0);
	assert_int_equal(fs_readdir(fs, &root, FS_ROOT_ID, dfh, 0, false, collect, &s), 0);
	assert_int_equal(s.n, 2);
	/* ...until linked in. */
	assert_int_equal(fs_link(fs, &root, e.nodeid, FS_ROOT_ID, "named", &l), 0);
	assert_int_equal(l.nodeid, e.nodeid);
	assert_int_equal(stat(hpath("named"), &st), 0);
	assert_int_equal(st.st_size, 3);
	assert_int_equal(fs_tmpfile(fs, &root, e.nodeid, 0600, O_RDWR, &l, &dfh), -ENOTDIR);
	assert_int_equal(fs_releasedir(fs, FS_ROOT_ID, dfh), 0);
	assert_int_equal(fs_release(fs, e.nodeid, fh, false, 0), 0);
	fs_forget(fs, e.nodeid, 2);
	assert_int_equal(ninodes(), 1);
}

static void test_seek_fallocate_copy(void **state)
{
	struct fs_entry a, b;
	uint64_t fa, fb;
	char buf[16];
	struct stat st;
	(void)state;
	assert_int_equal(fs_create(fs, &root, FS_ROOT_ID, "a", 0644, O_RDWR, &a, &fa), 0);
	assert_int_equal(fs_create(fs, &root, FS_ROOT_ID, "b", 0644, O_RDWR, &b, &fb), 0);
	assert_int_equal(write_str(fa, 1 << 20, "data"), 4);
	assert_int_equal(fs_lseek(fs, a.nodeid, fa, 0, SEEK_DATA), 1 << 20);
	assert_int_equal(fs_lseek(fs, a.nodeid, fa, 0, SEEK_HOLE), 0);
	assert_int_equal(fs_lseek(fs, a.nodeid, fa, 0, SEEK_END), (1 << 20) + 4);
	assert_int_equal(fs_lseek(fs, a.nodeid, fa, 17, SEEK_SET), 17);
	assert_int_equal(fs_lseek(fs, a.nodeid, fa, 0, SEEK_CUR), -EINVAL);
	assert_int_equal(fs_lseek(fs, a.nodeid, fa, (1 << 20) + 10, SEEK_DATA), -ENXIO);

	assert_int_equal(fs_fallocate(fs, b.nodeid, fb, 0, 0, 8192), 0);
	assert_int_equal(fs_getattr(fs, b.nodeid, fb, &st), 0);
	assert_int_equal(st.st_size, 8192);
	assert_int_equal(fs_fallocate(fs, b.nodeid, fb, FALLOC_FL_KEEP_SIZE, 8192, 4096), 0);
	assert_int_equal(fs_getattr(fs, b.nodeid, fb, &st), 0);
	assert_int_equal(st.st_size, 8192);
	assert_int_equal(fs_fallocate(fs, b.nodeid, fb, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 4096), 0);
	assert_int_equal(fs_fallocate(fs, b.nodeid, fb, 0, UINT64_MAX - 1, 2), -EFBIG);

	assert_int_equal(fs_copy_file_range(fs, fa, 1 << 20, fb, 2, 4, 0), 4);
	assert_int_equal(read_buf(fb, 0, buf, 6), 6);
	assert_memory_equal(buf, "\0\0data", 6);
	assert_int_equal(fs_copy_file_range(fs, fa, 0, 12345, 0, 4, 0), -EBADF);
	assert_int_equal(fs_copy_file_range(fs, fa, UINT64_MAX - 1, fb, 0, 4, 0), -EINVAL);

	struct statvfs sv;
	assert_int_equal(fs_statfs(fs, FS_ROOT_ID, &sv), 0);
	assert_true(sv.f_bsize > 0);
	assert_int_equal(fs_statfs(fs, a.nodeid, &sv), 0);
	assert_int_equal(fs_syncfs(fs), 0);

	assert_int_equal(fs_release(fs, a.nodeid, fa, false, 0), 0);
	assert_int_equal(fs_release(fs, b.nodeid, fb, false, 0), 0);
	fs_forget(fs, a.nodeid, 1);
	fs_forget(fs, b.nodeid, 1);
}

static void test_xattr(void **state)
{
	struct fs_entry f, d, s;
	uint64_t fh;
	char buf[256];
	(void)state;
	assert_int_equal(fs_create(fs, &root, FS_ROOT_ID, "f", 0644, O_RDWR, &f, &fh), 0);
	assert_int_equal(fs_release(fs, f.nodeid, fh, false, 0), 0);
	assert_int_equal(fs_mkdir(fs, &root, FS_ROOT_ID, "d", 0755, &d), 0);
	assert_int_equal(fs_symlink(fs, &root, FS_ROOT_ID, "s", "f", &s), 0);

	assert_int_equal(fs_setxattr(fs, &root, f.nodeid, "user.a", "va", 2, 0), 0);
	assert_int_equal(fs_setxattr(fs, &root, f.nodeid, "user.b", "vbb", 3, XATTR_CREATE), 0);
	assert_int_equal(fs_setxattr(fs, &root, f.nodeid, "user.b", "x", 1, XATTR_CREATE), -EEXIST);
	assert_int_equal(fs_setxattr(fs, &root, f.nodeid, "user.c", "x", 1, XATTR_REPLACE), -ENODATA);
	assert_int_equal(fs_getxattr(fs, &root, f.nodeid, "user.b", NULL, 0), 3);
	assert_int_equal(fs_getxattr(fs, &root, f.nodeid, "user.b", buf, 2), -ERANGE);
	assert_int_equal(fs_getxattr(fs, &root, f.nodeid, "user.b", buf, sizeof(buf)), 3);
	assert_memory_equal(buf, "vbb", 3);
	assert_int_equal(fs_getxattr(fs, &root, f.nodeid, "user.none", buf, sizeof(buf)), -ENODATA);
	assert_int_equal(getxattr(hpath("f"), "user.a", buf, sizeof(buf)), 2);

	ssize_t n = fs_listxattr(fs, &root, f.nodeid, NULL, 0);
	assert_true(n >= 14);
	assert_int_equal(fs_listxattr(fs, &root, f.nodeid, buf, sizeof(buf)), n);
	assert_int_equal(fs_listxattr(fs, &root, f.nodeid, buf, 3), -ERANGE);
	assert_int_equal(fs_removexattr(fs, &root, f.nodeid, "user.a"), 0);
	assert_int_equal(fs_removexattr(fs, &root, f.nodeid, "user.a"), -ENODATA);
	assert_int_equal(fs_listxattr(fs, &root, f.nodeid, NULL, 0), n - 7);

	/* directories too */
	assert_int_equal(fs_setxattr(fs, &root, d.nodeid, "user.dir", "1", 1, 0), 0);
	assert_int_equal(fs_getxattr(fs, &root, d.nodeid, "user.dir", buf, sizeof(buf)), 1);
	assert_int_equal(fs_listxattr(fs, &root, d.nodeid, buf, sizeof(buf)), 9);
	assert_string_equal(buf, "user.dir");
	/* symlinks: on the link itself (user.* is not allowed on symlinks, trusted.* is for root) */
	assert_int_equal(fs_setxattr(fs, &root, s.nodeid, "user.x", "1", 1, 0), -EPERM);
	assert_int_equal(fs_setxattr(fs, &root, s.nodeid, "trusted.link", "L", 1, 0), 0);
	assert_int_equal(lgetxattr(hpath("s"), "trusted.link", buf, sizeof(buf)), 1);
	assert_int_equal(getxattr(hpath("f"), "trusted.link", buf, sizeof(buf)), -1);
	assert_int_equal(fs_getxattr(fs, &root, s.nodeid, "trusted.link", buf, sizeof(buf)), 1);
	assert_int_equal(fs_listxattr(fs, &root, s.nodeid, buf, sizeof(buf)), 13);
	assert_int_equal(fs_removexattr(fs, &root, s.nodeid, "trusted.link"), 0);

	/* ACL names refused unless enabled, and hidden from lists */
	assert_int_equal(fs_setxattr(fs, &root, f.nodeid, "system.posix_acl_access", "x", 1, 0), -EOPNOTSUPP);
	assert_int_equal(fs_getxattr(fs, &root, f.nodeid, "system.posix_acl_default", buf, sizeof(buf)), -EOPNOTSUPP);
	assert_int_equal(fs_removexattr(fs, &root, f.nodeid, "system.posix_acl_access"), -EOPNOTSUPP);
	/* An ACL set on the host beyond the mode (a named user entry) shows as an xattr. */
	static const unsigned char acl[] = {
		2, 0, 0, 0,                                  /* version */
		1, 0, 6, 0, 0xff, 0xff, 0xff, 0xff,          /* USER_OBJ rw- */
		2, 0, 4, 0, 0xe8, 0x03, 0, 0,                /* USER 1000 r-- */
		4, 0, 4, 0, 0xff, 0xff, 0xff, 0xff,          /* GROUP_OBJ r-- */
		0x10, 0, 4, 0, 0xff, 0xff, 0xff, 0xff,       /* MASK r-- */
		0x20, 0, 4, 0, 0xff, 0xff, 0xff, 0xff,       /* OTHER r-- */
	};
	if (setxattr(hpath("f"), "system.posix_acl_access", acl, sizeof(acl), 0) == 0) {
		ssize_t raw = listxattr(hpath("f"), buf, sizeof(buf));
		assert_true(raw > 0);
		n = fs_listxattr(fs, &root, f.nodeid, buf, sizeof(buf));
		assert_int_equal(n, raw - (ssize_t)sizeof("system.posix_acl_access"));
		for (ssize_t i = 0; i < n; i += (ssize_t)strlen(buf + i) + 1)
			assert_null(strstr(buf + i, "posix_acl"));
		assert_int_equal(fs_listxattr(fs, &root, f.nodeid, NULL, 0), n);

		/* With ACLs on, it is visible. */
		struct fs *plain = fs;
		struct fs_config cfg = default_cfg;
		cfg.posix_acl = true;
		assert_int_equal(open_fs(&cfg), 0);
		struct fs_entry f2;
		assert_int_equal(fs_lookup(fs, &root, FS_ROOT_ID, "f", &f2), 0);
		assert_int_equal(fs_listxattr(fs, &root, f2.nodeid, NULL, 0), raw);
		assert_int_equal(fs_getxattr(fs, &root, f2.nodeid, "system.posix_acl_access", buf, sizeof(buf)),
		                 sizeof(acl));
		fs_free(fs);
		fs = plain;
	} else {
		print_message("host file system without POSIX ACLs: ACL listing not checked\n");
	}

	/* xattr off: ENOSYS for all */
	struct fs *on = fs;
	struct fs_config cfg = default_cfg;
	cfg.xattr = false;
	assert_int_equal(open_fs(&cfg), 0);
	assert_int_equal(fs_setxattr(fs, &root, FS_ROOT_ID, "user.a", "1", 1, 0), -ENOSYS);
	assert_int_equal(fs_getxattr(fs, &root, FS_ROOT_ID, "user.a", buf, 1), -ENOSYS);
	assert_int_equal(fs_listxattr(fs, &root, FS_ROOT_ID, buf, 1), -ENOSYS);
	assert_int_equal(fs_removexattr(fs, &root, FS_ROOT_ID, "user.a"), -ENOSYS);
	fs_free(fs);
	fs = on;

	fs_forget(fs, f.nodeid, 1);
	fs_forget(fs, d.nodeid, 1);
	fs_forget(fs, s.nodeid, 1);
	assert_int_equal(ninodes(), 1);
}

static int count_fds(void)
{
	int n = 0;
	DIR *d = opendir("/proc/self/fd");
	assert_non_null(d);
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

/* Every fd the room opened is closed again by forget/release/reset/free. */
static void test_no_fd_leaks(void **state)
{
	struct fs_entry e, d;
	uint64_t fh, dfh;
	struct seen s = { .limit = 256, .plus = true };
	struct flock lk = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_len = 1, .l_pid = 5 };
	char buf[8];
	(void)state;
	fs_free(fs);
	int before = count_fds();
	assert_int_equal(open_fs(&default_cfg), 0);
	assert_int_equal(fs_create(fs, &root, FS_ROOT_ID, "f", 0644, O_RDWR, &e, &fh), 0);
	assert_int_equal(fs_setlk(fs, e.nodeid, fh, 1, &lk, false), 0);
	assert_int_equal(fs_flock(fs, e.nodeid, fh, LOCK_EX), 0);
	assert_int_equal(fs_setxattr(fs, &root, e.nodeid, "user.x", "1", 1, 0), 0);
	assert_int_equal(fs_getxattr(fs, &root, e.nodeid, "user.x", buf, sizeof(buf)), 1);
	assert_int_equal(fs_mkdir(fs, &root, FS_ROOT_ID, "d", 0755, &d), 0);
	assert_int_equal(fs_opendir(fs, &root, FS_ROOT_ID, &dfh), 0);
	assert_int_equal(fs_readdir(fs, &root, FS_ROOT_ID, dfh, 0, true, collect, &s), 0);
	struct fs_setattr sa = { .valid = FS_SET_SIZE, .size = 3 };
	struct stat st;
	assert_int_equal(fs_setattr(fs, &root, e.nodeid, FS_NO_HANDLE, &sa, &st), 0);
	assert_int_equal(fs_access(fs, &root, e.nodeid, R_OK), 0);
	assert_int_equal(fs_syncfs(fs), 0);
	/* Handles and locks left open: fs_free must close them all. */
	fs_free(fs);
	assert_int_equal(count_fds(), before);

	/* Same with reset, then forget everything. */
	assert_int_equal(open_fs(&default_cfg), 0);
	int base = count_fds();
	assert_int_equal(fs_lookup(fs, &root, FS_ROOT_ID, "f", &e), 0);
	assert_int_equal(fs_open(fs, &root, e.nodeid, O_RDWR, &fh), 0);
	assert_int_equal(fs_setlk(fs, e.nodeid, fh, 2, &lk, false), 0);
	assert_int_equal(fs_opendir(fs, &root, FS_ROOT_ID, &dfh), 0);
	fs_reset(fs);
	assert_int_equal(count_fds(), base);
	assert_int_equal(fs_lookup(fs, &root, FS_ROOT_ID, "f", &e), 0);
	assert_int_equal(fs_open(fs, &root, e.nodeid, O_RDWR, &fh), 0);
	assert_int_equal(fs_setlk(fs, e.nodeid, fh, 3, &lk, false), 0);
	assert_int_equal(fs_release(fs, e.nodeid, fh, false, 3), 0);
	fs_forget(fs, e.nodeid, 1);
	assert_int_equal(count_fds(), base);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_create_write_read, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_flags, setup, teardown),
		cmocka_unit_test_setup_teardown(test_readdir, setup, teardown),
		cmocka_unit_test_setup_teardown(test_names, setup, teardown),
		cmocka_unit_test_setup_teardown(test_setattr, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tmpfile, setup, teardown),
		cmocka_unit_test_setup_teardown(test_seek_fallocate_copy, setup, teardown),
		cmocka_unit_test_setup_teardown(test_xattr, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_fd_leaks, setup, teardown),
	};
	int failed = _cmocka_run_group_tests("fs_ops, an fd per inode", tests, sizeof(tests) / sizeof(tests[0]), NULL, NULL);
	g_handles = FS_HANDLES_MANDATORY;
	failed += _cmocka_run_group_tests("fs_ops, --inode-file-handles=mandatory", tests, sizeof(tests) / sizeof(tests[0]), NULL, NULL);
	return failed;
}

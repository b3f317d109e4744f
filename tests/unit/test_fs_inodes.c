/* The inode and handle tables: lookup counts, freeing, stale ids, bounds, reset, concurrency. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "fs/fs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[64];
static struct fs *fs;
static const struct fs_ctx root = { .uid = 0, .gid = 0, .pid = 1 };

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st; (void)flag; (void)ftw;
	return remove(path);
}

static void make_dir(void)
{
	strcpy(dir, "/tmp/vufs-fs-inodes-XXXXXX");
	assert_non_null(mkdtemp(dir));
}

static int open_fs(const struct fs_config *over)
{
	struct fs_config cfg = { .source = dir };
	if (over) {
		cfg = *over;
		cfg.source = dir;
	}
	return fs_new(&cfg, &fs);
}

static int setup(void **state)
{
	(void)state;
	make_dir();
	return open_fs(NULL);
}

static int teardown(void **state)
{
	(void)state;
	fs_free(fs);
	fs = NULL;
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	return 0;
}

static void host_file(const char *name)
{
	char p[PATH_MAX];
	snprintf(p, sizeof(p), "%s/%s", dir, name);
	int fd = open(p, O_CREAT | O_WRONLY | O_TRUNC, 0644);
	assert_true(fd >= 0);
	close(fd);
}

static uint64_t ninodes(void)
{
	uint64_t n;
	fs_counts(fs, &n, NULL);
	return n;
}

static uint64_t nhandles(void)
{
	uint64_t n;
	fs_counts(fs, NULL, &n);
	return n;
}

static void test_new_rejects_bad_source(void **state)
{
	struct fs *f = NULL;
	struct fs_config cfg = { .source = "/nonexistent/vufs" };
	(void)state;
	assert_int_equal(fs_new(&cfg, &f), -ENOENT);
	assert_null(f);
	host_file("plain");
	char p[PATH_MAX];
	snprintf(p, sizeof(p), "%s/plain", dir);
	cfg.source = p;
	assert_int_equal(fs_new(&cfg, &f), -ENOTDIR);
	assert_null(f);
}

static void test_root_getattr(void **state)
{
	struct stat st, host;
	(void)state;
	assert_int_equal(fs_getattr(fs, FS_ROOT_ID, FS_NO_HANDLE, &st), 0);
	assert_int_equal(stat(dir, &host), 0);
	assert_int_equal(st.st_ino, host.st_ino);
	assert_int_equal(st.st_dev, host.st_dev);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(ninodes(), 1);
}

static void test_lookup_forget_frees(void **state)
{
	struct fs_entry e1, e2;
	struct stat st;
	(void)state;
	host_file("a");
	assert_int_equal(fs_lookup(fs, &root, FS_ROOT_ID, "a", &e1), 0);
	assert_int_not_equal(e1.nodeid, FS_ROOT_ID);
	assert_true(S_ISREG(e1.st.st_mode));
	assert_int_equal(ninodes(), 2);
	/* Same file, same node id, one more lookup. */
	assert_int_equal(fs_lookup(fs, &root, FS_ROOT_ID, "a", &e2), 0);
	assert_int_equal(e1.nodeid, e2.nodeid);
	assert_int_equal(ninodes(), 2);

	fs_forget(fs, e1.nodeid, 1);
	assert_int_equal(ninodes(), 2);
	assert_int_equal(fs_getattr(fs, e1.nodeid, FS_NO_HANDLE, &st), 0);
	fs_forget(fs, e1.nodeid, 1);
	assert_int_equal(ninodes(), 1);
	assert_int_equal(fs_getattr(fs, e1.nodeid, FS_NO_HANDLE, &st), -ESTALE);

	/* The slot is reused with another generation: the old id stays stale. */
	assert_int_equal(fs_lookup(fs, &root, FS_ROOT_ID, "a", &e2), 0);
	assert_int_not_equal(e1.nodeid, e2.nodeid);
	assert_int_equal((uint32_t)e1.nodeid, (uint32_t)e2.nodeid);
	assert_int_equal(fs_getattr(fs, e1.nodeid, FS_NO_HANDLE, &st), -ESTALE);
	assert_int_equal(fs_getattr(fs, e2.nodeid, FS_NO_HANDLE, &st), 0);
	/* Forgetting more than was looked up, or a stale id, is harmless. */
	fs_forget(fs, e1.nodeid, 5);
	fs_forget(fs, e2.nodeid, 1000);
	assert_int_equal(ninodes(), 1);
}

/* A name whose inode is known is answered without opening it again: replaced names, changed attributes and
 * removed names must still be seen at once. */
static void test_known_name_changes(void **state)
{
	struct fs_entry ea, eb, e;
	char pa[PATH_MAX], pb[PATH_MAX];
	(void)state;
	host_file("a");
	host_file("b");
	snprintf(pa, sizeof(pa), "%s/a", dir);
	snprintf(pb, sizeof(pb), "%s/b", dir);
	assert_int_equal(fs_lookup(fs, &root, FS_ROOT_ID, "a", &ea), 0);
	assert_int_equal(fs_lookup(fs, &root, FS_ROOT_ID, "b", &eb), 0);
	assert_int_equal(chmod(pa, 0600), 0);
	assert_int_equal(truncate(pa, 77), 0);
	assert_int_equal(fs_lookup(fs, &root, FS_ROOT_ID, "a", &e), 0);
	assert_int_equal(e.nodeid, ea.nodeid);
	assert_int_equal(e.st.st_mode & 07777, 0600);
	assert_int_equal(e.st.st_size, 77);
	/* b renamed over a: the name a now leads to b's node */
	assert_int_equal(rename(pb, pa), 0);
	assert_int_equal(fs_lookup(fs, &root, FS_ROOT_ID, "a", &e), 0);
	assert_int_equal(e.nodeid, eb.nodeid);
	assert_int_equal(e.st.st_ino, eb.st.st_ino);
	assert_int_equal(fs_lookup(fs, &root, FS_ROOT_ID, "b", &e), -ENOENT);
	/* a name turned into a directory: a new node of the right type */
	assert_int_equal(unlink(pa), 0);
	assert_int_equal(mkdir(pa, 0755), 0);
	assert_int_equal(fs_lookup(fs, &root, FS_ROOT_ID, "a", &e), 0);
	assert_true(S_ISDIR(e.st.st_mode));
	assert_int_not_equal(e.nodeid, ea.nodeid);
	assert_int_not_equal(e.nodeid, eb.nodeid);
	/* a symlink is not followed */
	assert_int_equal(symlink("/etc/passwd", pb), 0);
	assert_int_equal(fs_lookup(fs, &root, FS_ROOT_ID, "b", &e), 0);
	assert_true(S_ISLNK(e.st.st_mode));
	assert_int_equal(fs_lookup(fs, &root, FS_ROOT_ID, "b", &e), 0);
	assert_true(S_ISLNK(e.st.st_mode));
}

static void test_stale_ids(void **state)
{
	struct stat st;
	struct fs_entry e;
	uint64_t fh;
	char buf[8];
	struct iovec iov = { buf, sizeof(buf) };
	(void)state;
	const uint64_t bad[] = { 0, 2, 3, 12345, (uint64_t)1 << 32 | 1, UINT64_MAX, 0xffffffffull };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(fs_getattr(fs, bad[i], FS_NO_HANDLE, &st), -ESTALE);
		assert_int_equal(fs_lookup(fs, &root, bad[i], "x", &e), -ESTALE);
		assert_int_equal(fs_open(fs, &root, bad[i], O_RDONLY, &fh), -ESTALE);
		assert_int_equal(fs_opendir(fs, &root, bad[i], &fh), -ESTALE);
		fs_forget(fs, bad[i], 1);
	}
	const uint64_t badfh[] = { 0, 1, 12345, (uint64_t)7 << 32, FS_NO_HANDLE };
	for (size_t i = 0; i < sizeof(badfh) / sizeof(badfh[0]); i++) {
		assert_int_equal(fs_read(fs, badfh[i], 0, sizeof(buf), &iov, 1), -EBADF);
		assert_int_equal(fs_write(fs, &root, badfh[i], 0, &iov, 1, false), -EBADF);
		assert_int_equal(fs_release(fs, 1, badfh[i], false, 0), -EBADF);
		assert_int_equal(fs_releasedir(fs, 1, badfh[i]), -EBADF);
		assert_int_equal(fs_flush(fs, 1, badfh[i], 0), -EBADF);
	}
	assert_int_equal(fs_getattr(fs, FS_ROOT_ID, FS_ROOT_ID, &st), -EBADF);
}

static void test_stale_handle_after_release(void **state)
{
	struct fs_entry e;
	uint64_t fh, fh2;
	struct stat st;
	(void)state;
	assert_int_equal(fs_create(fs, &root, FS_ROOT_ID, "f", 0644, O_RDWR, &e, &fh), 0);
	assert_int_equal(nhandles(), 1);
	assert_int_equal(fs_getattr(fs, e.nodeid, fh, &st), 0);
	assert_int_equal(fs_release(fs, e.nodeid, fh, false, 0), 0);
	assert_int_equal(nhandles(), 0);
	assert_int_equal(fs_getattr(fs, e.nodeid, fh, &st), -EBADF);
	assert_int_equal(fs_release(fs, e.nodeid, fh, false, 0), -EBADF);
	/* Reused slot, new generation. */
	assert_int_equal(fs_open(fs, &root, e.nodeid, O_RDONLY, &fh2), 0);
	assert_int_not_equal(fh, fh2);
	assert_int_equal(fs_getattr(fs, e.nodeid, fh, &st), -EBADF);
	assert_int_equal(fs_release(fs, e.nodeid, fh2, false, 0), 0);
	fs_forget(fs, e.nodeid, 1);
	assert_int_equal(ninodes(), 1);
}

static void test_handle_keeps_inode(void **state)
{
	struct fs_entry e;
	uint64_t fh;
	struct stat st;
	(void)state;
	host_file("k");
	assert_int_equal(fs_lookup(fs, &root, FS_ROOT_ID, "k", &e), 0);
	assert_int_equal(fs_open(fs, &root, e.nodeid, O_RDONLY, &fh), 0);
	fs_forget(fs, e.nodeid, 1);
	/* Open handle holds the inode. */
	assert_int_equal(ninodes(), 2);
	assert_int_equal(fs_getattr(fs, e.nodeid, FS_NO_HANDLE, &st), 0);
	assert_int_equal(fs_release(fs, e.nodeid, fh, false, 0), 0);
	assert_int_equal(ninodes(), 1);
	assert_int_equal(fs_getattr(fs, e.nodeid, FS_NO_HANDLE, &st), -ESTALE);
}

static void test_dot_and_dotdot(void **state)
{
	struct fs_entry e, d;
	(void)state;
	assert_int_equal(fs_lookup(fs, &root, FS_ROOT_ID, ".", &e), 0);
	assert_int_equal(e.nodeid, FS_ROOT_ID);
	assert_int_equal(fs_lookup(fs, &root, FS_ROOT_ID, "..", &e), 0);
	assert_int_equal(e.nodeid, FS_ROOT_ID);
	fs_forget(fs, FS_ROOT_ID, 2);
	fs_forget(fs, FS_ROOT_ID, 100); /* never frees the root */
	assert_int_equal(fs_getattr(fs, FS_ROOT_ID, FS_NO_HANDLE, &e.st), 0);

	assert_int_equal(fs_mkdir(fs, &root, FS_ROOT_ID, "sub", 0755, &d), 0);
	assert_int_equal(fs_lookup(fs, &root, d.nodeid, ".", &e), 0);
	assert_int_equal(e.nodeid, d.nodeid);
	assert_int_equal(fs_lookup(fs, &root, d.nodeid, "..", &e), -EINVAL);
	fs_forget(fs, d.nodeid, 2);
	assert_int_equal(ninodes(), 1);
}

static void test_hard_links_share_inode(void **state)
{
	struct fs_entry a, b, l;
	char p1[PATH_MAX], p2[PATH_MAX];
	(void)state;
	host_file("h1");
	snprintf(p1, sizeof(p1), "%s/h1", dir);
	snprintf(p2, sizeof(p2), "%s/h2", dir);
	assert_int_equal(link(p1, p2), 0);
	assert_int_equal(fs_lookup(fs, &root, FS_ROOT_ID, "h1", &a), 0);
	assert_int_equal(fs_lookup(fs, &root, FS_ROOT_ID, "h2", &b), 0);
	assert_int_equal(a.nodeid, b.nodeid);
	assert_int_equal(fs_link(fs, &root, a.nodeid, FS_ROOT_ID, "h3", &l), 0);
	assert_int_equal(l.nodeid, a.nodeid);
	assert_int_equal(l.st.st_nlink, 3);
	fs_forget(fs, a.nodeid, 3);
	assert_int_equal(ninodes(), 1);
}

static void test_max_inodes(void **state)
{
	struct fs_config cfg = { .max_inodes = 3 };
	struct fs_entry e[3];
	(void)state;
	fs_free(fs);
	assert_int_equal(open_fs(&cfg), 0);
	host_file("m1");
	host_file("m2");
	host_file("m3");
	assert_int_equal(fs_lookup(fs, &root, FS_ROOT_ID, "m1", &e[0]), 0);
	assert_int_equal(fs_lookup(fs, &root, FS_ROOT_ID, "m2", &e[1]), 0);
	assert_int_equal(fs_lookup(fs, &root, FS_ROOT_ID, "m3", &e[2]), -ENFILE);
	/* An inode we already have still resolves. */
	assert_int_equal(fs_lookup(fs, &root, FS_ROOT_ID, "m1", &e[2]), 0);
	assert_int_equal(e[2].nodeid, e[0].nodeid);
	fs_forget(fs, e[0].nodeid, 2);
	assert_int_equal(fs_lookup(fs, &root, FS_ROOT_ID, "m3", &e[2]), 0);
	fs_forget(fs, e[1].nodeid, 1);
	fs_forget(fs, e[2].nodeid, 1);
	assert_int_equal(ninodes(), 1);
}

static void test_max_handles(void **state)
{
	struct fs_config cfg = { .max_handles = 2 };
	struct fs_entry e;
	uint64_t fh[3];
	(void)state;
	fs_free(fs);
	assert_int_equal(open_fs(&cfg), 0);
	host_file("h");
	assert_int_equal(fs_lookup(fs, &root, FS_ROOT_ID, "h", &e), 0);
	assert_int_equal(fs_open(fs, &root, e.nodeid, O_RDONLY, &fh[0]), 0);
	assert_int_equal(fs_opendir(fs, &root, FS_ROOT_ID, &fh[1]), 0);
	assert_int_equal(fs_open(fs, &root, e.nodeid, O_RDONLY, &fh[2]), -EMFILE);
	assert_int_equal(fs_opendir(fs, &root, FS_ROOT_ID, &fh[2]), -EMFILE);
	struct fs_entry ce;
	assert_int_equal(fs_create(fs, &root, FS_ROOT_ID, "new", 0644, O_RDWR, &ce, &fh[2]), -EMFILE);
	assert_int_equal(nhandles(), 2);
	assert_int_equal(fs_release(fs, e.nodeid, fh[0], false, 0), 0);
	assert_int_equal(fs_open(fs, &root, e.nodeid, O_RDONLY, &fh[2]), 0);
	assert_int_equal(fs_release(fs, e.nodeid, fh[2], false, 0), 0);
	assert_int_equal(fs_releasedir(fs, FS_ROOT_ID, fh[1]), 0);
	fs_forget(fs, e.nodeid, 1);
	/* The failed create left its lookup undone. */
	struct fs_entry n;
	assert_int_equal(fs_lookup(fs, &root, FS_ROOT_ID, "new", &n), 0);
	fs_forget(fs, n.nodeid, 1);
	assert_int_equal(ninodes(), 1);
	assert_int_equal(nhandles(), 0);
}

static void test_reset(void **state)
{
	struct fs_entry e, d;
	uint64_t fh, dfh;
	struct stat st;
	(void)state;
	assert_int_equal(fs_create(fs, &root, FS_ROOT_ID, "r", 0644, O_RDWR, &e, &fh), 0);
	assert_int_equal(fs_mkdir(fs, &root, FS_ROOT_ID, "rd", 0755, &d), 0);
	assert_int_equal(fs_opendir(fs, &root, d.nodeid, &dfh), 0);
	assert_int_equal(fs_lookup(fs, &root, FS_ROOT_ID, ".", &e), 0);
	fs_reset(fs);
	assert_int_equal(ninodes(), 1);
	assert_int_equal(nhandles(), 0);
	assert_int_equal(fs_getattr(fs, d.nodeid, FS_NO_HANDLE, &st), -ESTALE);
	assert_int_equal(fs_getattr(fs, 0, fh, &st), -EBADF);
	assert_int_equal(fs_getattr(fs, FS_ROOT_ID, FS_NO_HANDLE, &st), 0);
	/* Works as new afterwards. */
	assert_int_equal(fs_lookup(fs, &root, FS_ROOT_ID, "r", &e), 0);
	fs_reset(fs);
	assert_int_equal(ninodes(), 1);
}

/* Many threads looking up and forgetting the same few names, with opens in between. */
struct worker_arg {
	int id;
	int errors;
};

static void *worker(void *p)
{
	struct worker_arg *a = p;
	char name[8];
	for (int i = 0; i < 2000; i++) {
		struct fs_entry e;
		uint64_t fh;
		snprintf(name, sizeof(name), "c%d", (i + a->id) % 4);
		if (fs_lookup(fs, &root, FS_ROOT_ID, name, &e) != 0) {
			a->errors++;
			continue;
		}
		if (i % 3 == 0) {
			if (fs_open(fs, &root, e.nodeid, O_RDONLY, &fh) == 0)
				fs_release(fs, e.nodeid, fh, false, 0);
			else
				a->errors++;
		}
		fs_forget(fs, e.nodeid, 1);
	}
	return NULL;
}

static void test_concurrent_lookup_forget(void **state)
{
	pthread_t t[8];
	struct worker_arg a[8];
	(void)state;
	for (int i = 0; i < 4; i++) {
		char n[8];
		snprintf(n, sizeof(n), "c%d", i);
		host_file(n);
	}
	for (int i = 0; i < 8; i++) {
		a[i] = (struct worker_arg){ i, 0 };
		assert_int_equal(pthread_create(&t[i], NULL, worker, &a[i]), 0);
	}
	for (int i = 0; i < 8; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(a[i].errors, 0);
	}
	assert_int_equal(ninodes(), 1);
	assert_int_equal(nhandles(), 0);
}

static void test_many_inodes_grow_tables(void **state)
{
	struct fs_entry e;
	uint64_t ids[400], fhs[200];
	char name[16];
	(void)state;
	for (int i = 0; i < 400; i++) {
		snprintf(name, sizeof(name), "g%d", i);
		host_file(name);
		assert_int_equal(fs_lookup(fs, &root, FS_ROOT_ID, name, &e), 0);
		ids[i] = e.nodeid;
		if (i < 200)
			assert_int_equal(fs_open(fs, &root, e.nodeid, O_RDONLY, &fhs[i]), 0);
	}
	assert_int_equal(ninodes(), 401);
	assert_int_equal(nhandles(), 200);
	for (int i = 0; i < 400; i++) {
		snprintf(name, sizeof(name), "g%d", i);
		assert_int_equal(fs_lookup(fs, &root, FS_ROOT_ID, name, &e), 0);
		assert_int_equal(e.nodeid, ids[i]);
		fs_forget(fs, ids[i], 2);
	}
	assert_int_equal(ninodes(), 201);
	for (int i = 0; i < 200; i++)
		assert_int_equal(fs_release(fs, ids[i], fhs[i], false, 0), 0);
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
	return n - 3; /* ".", "..", the DIR's own fd */
}

static int collect_plus(void *arg, const char *name, size_t namelen, uint64_t ino, unsigned dtype, uint64_t next_off,
                        const struct fs_entry *plus)
{
	uint64_t *ids = arg;
	(void)name; (void)namelen; (void)ino; (void)dtype; (void)next_off;
	if (plus->nodeid) {
		if (ids[0] >= 63)
			return 1;
		ids[++ids[0]] = plus->nodeid;
	}
	return 0;
}

/* Out of file descriptors in the kernel: errors, no crash, and everything works again once fds are free. */
static void test_kernel_fd_exhaustion(void **state)
{
	struct rlimit old, low;
	struct fs_entry e;
	uint64_t ids[64] = { 0 }, fh;
	char name[16];
	int got = 0, ret = 0;
	(void)state;
	for (int i = 0; i < 40; i++) {
		snprintf(name, sizeof(name), "x%d", i);
		host_file(name);
	}
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
	low = old;
	low.rlim_cur = (rlim_t)count_fds() + 10;
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
	for (int i = 0; i < 40; i++) {
		snprintf(name, sizeof(name), "x%d", i);
		ret = fs_lookup(fs, &root, FS_ROOT_ID, name, &e);
		if (ret < 0)
			break;
		ids[++ids[0]] = e.nodeid;
		got++;
	}
	assert_int_equal(ret, -EMFILE);
	assert_true(got >= 5 && got < 40);
	/* Every fd-making operation now fails cleanly. */
	assert_int_equal(fs_open(fs, &root, ids[1], O_RDONLY, &fh), -EMFILE);
	assert_int_equal(fs_opendir(fs, &root, FS_ROOT_ID, &fh), -EMFILE);
	assert_int_equal(fs_create(fs, &root, FS_ROOT_ID, "new", 0644, O_RDWR, &e, &fh), -EMFILE);
	assert_int_equal(fs_mkdir(fs, &root, FS_ROOT_ID, "newdir", 0755, &e), -EMFILE);
	assert_int_equal(fs_syncfs(fs), -EMFILE);
	assert_int_equal(nhandles(), 0);
	assert_int_equal(ninodes(), (uint64_t)got + 1);
	/* Free two: a directory can be opened and read with plus, which stops at the limit. */
	fs_forget(fs, ids[ids[0]--], 1);
	fs_forget(fs, ids[ids[0]--], 1);
	got -= 2;
	assert_int_equal(fs_opendir(fs, &root, FS_ROOT_ID, &fh), 0);
	ret = fs_readdir(fs, &root, FS_ROOT_ID, fh, 0, true, collect_plus, ids);
	assert_true(ret == 0 || ret == -EMFILE);
	assert_int_equal(fs_releasedir(fs, FS_ROOT_ID, fh), 0);
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
	for (uint64_t i = 1; i <= ids[0]; i++)
		fs_forget(fs, ids[i], 1);
	assert_int_equal(ninodes(), 1);
	/* And all is well again. */
	assert_int_equal(fs_create(fs, &root, FS_ROOT_ID, "new", 0644, O_RDWR, &e, &fh), 0);
	assert_int_equal(fs_release(fs, e.nodeid, fh, false, 0), 0);
	fs_forget(fs, e.nodeid, 1);
}

/* A handle released while other threads still read through it: they finish or get EBADF, nothing breaks. */
struct reader_arg {
	uint64_t fh;
	volatile int stop;
	int bad;
};

static void *reader(void *p)
{
	struct reader_arg *a = p;
	char buf[16];
	struct iovec iov = { buf, sizeof(buf) };
	while (!__atomic_load_n(&a->stop, __ATOMIC_SEQ_CST)) {
		ssize_t r = fs_read(fs, a->fh, 0, sizeof(buf), &iov, 1);
		if (r != 5 && r != -EBADF)
			a->bad++;
		if (r == -EBADF)
			break;
	}
	return NULL;
}

static void test_release_during_io(void **state)
{
	struct fs_entry e;
	(void)state;
	for (int round = 0; round < 50; round++) {
		struct reader_arg a = { 0, 0, 0 };
		pthread_t t[4];
		struct iovec iov = { "hello", 5 };
		assert_int_equal(fs_create(fs, &root, FS_ROOT_ID, "io", 0644, O_RDWR, &e, &a.fh), 0);
		assert_int_equal(fs_write(fs, &root, a.fh, 0, &iov, 1, false), 5);
		for (int i = 0; i < 4; i++)
			assert_int_equal(pthread_create(&t[i], NULL, reader, &a), 0);
		usleep(200);
		assert_int_equal(fs_release(fs, e.nodeid, a.fh, false, 0), 0);
		fs_forget(fs, e.nodeid, 1);
		for (int i = 0; i < 4; i++)
			pthread_join(t[i], NULL);
		assert_int_equal(a.bad, 0);
		assert_int_equal(ninodes(), 1);
		assert_int_equal(nhandles(), 0);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_new_rejects_bad_source, setup, teardown),
		cmocka_unit_test_setup_teardown(test_root_getattr, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lookup_forget_frees, setup, teardown),
		cmocka_unit_test_setup_teardown(test_known_name_changes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stale_ids, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stale_handle_after_release, setup, teardown),
		cmocka_unit_test_setup_teardown(test_handle_keeps_inode, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dot_and_dotdot, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hard_links_share_inode, setup, teardown),
		cmocka_unit_test_setup_teardown(test_max_inodes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_max_handles, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reset, setup, teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_lookup_forget, setup, teardown),
		cmocka_unit_test_setup_teardown(test_many_inodes_grow_tables, setup, teardown),
		cmocka_unit_test_setup_teardown(test_kernel_fd_exhaustion, setup, teardown),
		cmocka_unit_test_setup_teardown(test_release_during_io, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

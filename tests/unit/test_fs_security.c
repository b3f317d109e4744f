/*
 * The guest must not reach past the shared directory or act with the daemon's privileges: special files are
 * never opened, symlinks never followed, files are created with the caller's fsuid/fsgid (setgid stripping as on
 * the host, CVE-2022-0358), supplementary groups do not leak in, access checks are the caller's.
 * Needs root (CAP_SETUID, CAP_MKNOD, CAP_CHOWN), as the daemon does.
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
#include <grp.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

static char dir[64], outside[64];
static struct fs *fs;
static const struct fs_ctx root = { .uid = 0, .gid = 0, .pid = 1 };
static const struct fs_ctx user = { .uid = 1000, .gid = 1000, .pid = 2 };

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st; (void)flag; (void)ftw;
	return remove(path);
}

static int setup(void **state)
{
	struct fs_config cfg = { .xattr = true, .posix_lock = true, .flock = true };
	(void)state;
	strcpy(dir, "/tmp/vufs-fs-sec-XXXXXX");
	strcpy(outside, "/tmp/vufs-fs-outside-XXXXXX");
	if (!mkdtemp(dir) || !mkdtemp(outside))
		return -1;
	/* mkdtemp makes 0700 directories: let unprivileged callers in. */
	chmod(dir, 0777);
	cfg.source = dir;
	return fs_new(&cfg, &fs);
}

static int teardown(void **state)
{
	(void)state;
	fs_free(fs);
	fs = NULL;
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	nftw(outside, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	return 0;
}

static const char *hpath(const char *base, const char *name)
{
	static char p[2][PATH_MAX];
	static int k;
	k ^= 1;
	snprintf(p[k], sizeof(p[k]), "%s/%s", base, name);
	return p[k];
}

static uid_t cur_fsuid(void)
{
	return (uid_t)syscall(SYS_setfsuid, -1);
}

static gid_t cur_fsgid(void)
{
	return (gid_t)syscall(SYS_setfsgid, -1);
}

static void assert_root_ids(void)
{
	assert_int_equal(cur_fsuid(), 0);
	assert_int_equal(cur_fsgid(), 0);
}

static void require_root(void)
{
	if (geteuid() != 0)
		skip();
}

static void test_special_files_never_opened(void **state)
{
	struct fs_entry fifo, cdev, bdev, sock, x;
	uint64_t fh;
	struct stat st;
	(void)state;
	require_root();
	assert_int_equal(mkfifo(hpath(dir, "fifo"), 0666), 0);
	assert_int_equal(fs_lookup(fs, &root, FS_ROOT_ID, "fifo", &fifo), 0);
	assert_int_equal(fs_mknod(fs, &root, FS_ROOT_ID, "null", S_IFCHR | 0666, makedev(1, 3), &cdev), 0);
	assert_int_equal(fs_mknod(fs, &root, FS_ROOT_ID, "blk", S_IFBLK | 0600, makedev(7, 0), &bdev), 0);
	assert_int_equal(fs_mknod(fs, &root, FS_ROOT_ID, "sock", S_IFSOCK | 0600, 0, &sock), 0);
	const struct fs_entry *all[] = { &fifo, &cdev, &bdev, &sock };
	for (size_t i = 0; i < 4; i++) {
		assert_int_equal(fs_open(fs, &root, all[i]->nodeid, O_RDONLY, &fh), -EACCES);
		assert_int_equal(fs_open(fs, &root, all[i]->nodeid, O_RDWR | O_NONBLOCK, &fh), -EACCES);
		assert_int_equal(fs_open(fs, &root, all[i]->nodeid, O_PATH, &fh), -EACCES);
		assert_int_equal(fs_opendir(fs, &root, all[i]->nodeid, &fh), -ENOTDIR);
		/* stat and friends still work */
		assert_int_equal(fs_getattr(fs, all[i]->nodeid, FS_NO_HANDLE, &st), 0);
		struct fs_setattr sa = { .valid = FS_SET_SIZE };
		assert_int_equal(fs_setattr(fs, &root, all[i]->nodeid, FS_NO_HANDLE, &sa, &st), -EINVAL);
		sa = (struct fs_setattr){ .valid = FS_SET_MODE | FS_SET_MTIME, .mode = 0640, .mtime = { 77, 0 } };
		assert_int_equal(fs_setattr(fs, &root, all[i]->nodeid, FS_NO_HANDLE, &sa, &st), 0);
		assert_int_equal(st.st_mode & 07777, 0640);
		assert_int_equal(st.st_mtim.tv_sec, 77);
		assert_int_equal(fs_fsync(fs, all[i]->nodeid, FS_NO_HANDLE, false), -EINVAL);
		struct flock lk = { .l_type = F_RDLCK };
		assert_int_equal(fs_setlk(fs, all[i]->nodeid, FS_NO_HANDLE, 1, &lk, false), -EINVAL);
		/* xattrs through the inode itself, nothing opened */
		assert_int_equal(fs_setxattr(fs, &root, all[i]->nodeid, "trusted.t", "v", 1, 0), 0);
		char v[4];
		assert_int_equal(fs_getxattr(fs, &root, all[i]->nodeid, "trusted.t", v, sizeof(v)), 1);
		assert_int_equal(fs_listxattr(fs, &root, all[i]->nodeid, NULL, 0), 10);
		assert_int_equal(fs_removexattr(fs, &root, all[i]->nodeid, "trusted.t"), 0);
	}
	assert_int_equal(lgetxattr(hpath(dir, "fifo"), "trusted.t", NULL, 0), -1);

	/* CREATE of an existing special file opens nothing (a FIFO would block here forever). */
	alarm(20);
	assert_int_equal(fs_create(fs, &root, FS_ROOT_ID, "fifo", 0644, O_RDONLY, &x, &fh), -EACCES);
	assert_int_equal(fs_create(fs, &root, FS_ROOT_ID, "fifo", 0644, O_WRONLY | O_TRUNC, &x, &fh), -EACCES);
	assert_int_equal(fs_create(fs, &root, FS_ROOT_ID, "null", 0644, O_RDWR, &x, &fh), -EACCES);
	assert_int_equal(fs_create(fs, &root, FS_ROOT_ID, "null", 0644, O_RDWR | O_EXCL, &x, &fh), -EEXIST);
	alarm(0);
	uint64_t n;
	fs_counts(fs, &n, NULL);
	assert_int_equal(n, 5);
	for (size_t i = 0; i < 4; i++)
		fs_forget(fs, all[i]->nodeid, 1);
}

static void test_symlink_escape(void **state)
{
	struct fs_entry etc, esc, escf, dang, x;
	uint64_t fh;
	char buf[PATH_MAX];
	struct stat st, before;
	(void)state;
	int fd = open(hpath(outside, "secret"), O_CREAT | O_WRONLY, 0644);
	assert_int_equal(write(fd, "s3cret", 6), 6);
	close(fd);
	struct timespec old[2] = { { 1000, 0 }, { 1000, 0 } };
	assert_int_equal(utimensat(AT_FDCWD, hpath(outside, "secret"), old, 0), 0);
	assert_int_equal(stat(hpath(outside, "secret"), &before), 0);
	assert_int_equal(symlink("/etc", hpath(dir, "etc")), 0);
	assert_int_equal(symlink(outside, hpath(dir, "esc")), 0);
	assert_int_equal(symlink(hpath(outside, "secret"), hpath(dir, "escf")), 0);
	assert_int_equal(symlink(hpath(outside, "new"), hpath(dir, "dang")), 0);

	/* Lookup gives the link itself. */
	assert_int_equal(fs_lookup(fs, &root, FS_ROOT_ID, "etc", &etc), 0);
	assert_true(S_ISLNK(etc.st.st_mode));
	assert_int_equal(fs_readlink(fs, etc.nodeid, buf, sizeof(buf)), 4);
	assert_memory_equal(buf, "/etc", 4);
	assert_int_equal(fs_lookup(fs, &root, etc.nodeid, "passwd", &x), -ENOTDIR);
	assert_int_equal(fs_lookup(fs, &root, etc.nodeid, ".", &x), -ENOTDIR);
	assert_int_equal(fs_opendir(fs, &root, etc.nodeid, &fh), -ENOTDIR);
	assert_int_equal(fs_open(fs, &root, etc.nodeid, O_RDONLY, &fh), -ELOOP);
	assert_int_equal(fs_open(fs, &root, etc.nodeid, O_RDONLY | O_DIRECTORY, &fh), -ELOOP);

	assert_int_equal(fs_lookup(fs, &root, FS_ROOT_ID, "esc", &esc), 0);
	assert_int_equal(fs_lookup(fs, &root, esc.nodeid, "secret", &x), -ENOTDIR);
	assert_int_equal(fs_mkdir(fs, &root, esc.nodeid, "d", 0755, &x), -ENOTDIR);
	assert_int_equal(fs_create(fs, &root, esc.nodeid, "n", 0644, O_RDWR, &x, &fh), -ENOTDIR);
	assert_int_equal(fs_symlink(fs, &root, esc.nodeid, "s", "x", &x), -ENOTDIR);
	assert_int_equal(fs_mknod(fs, &root, esc.nodeid, "s", S_IFIFO | 0600, 0, &x), -ENOTDIR);
	assert_int_equal(fs_unlink(fs, &root, esc.nodeid, "secret"), -ENOTDIR);
	assert_int_equal(fs_rename(fs, &root, esc.nodeid, "secret", FS_ROOT_ID, "stolen", 0), -ENOTDIR);
	assert_int_equal(fs_tmpfile(fs, &root, esc.nodeid, 0600, O_RDWR, &x, &fh), -ENOTDIR);

	assert_int_equal(fs_lookup(fs, &root, FS_ROOT_ID, "escf", &escf), 0);
	assert_int_equal(fs_open(fs, &root, escf.nodeid, O_RDONLY, &fh), -ELOOP);
	assert_int_equal(fs_open(fs, &root, escf.nodeid, O_RDWR | O_TRUNC, &fh), -ELOOP);
	assert_int_equal(fs_create(fs, &root, FS_ROOT_ID, "escf", 0644, O_RDWR | O_TRUNC, &x, &fh), -ELOOP);
	assert_int_equal(fs_create(fs, &root, FS_ROOT_ID, "dang", 0644, O_RDWR, &x, &fh), -ELOOP);
	assert_int_equal(fs_create(fs, &root, FS_ROOT_ID, "dang", 0644, O_RDWR | O_EXCL, &x, &fh), -EEXIST);
	assert_int_equal(access(hpath(outside, "new"), F_OK), -1);
	assert_int_equal(fs_lookup(fs, &root, FS_ROOT_ID, "dang", &dang), 0);

	/* Attributes change the link, never its target. */
	struct fs_setattr sa = { .valid = FS_SET_SIZE };
	assert_int_equal(fs_setattr(fs, &root, escf.nodeid, FS_NO_HANDLE, &sa, &st), -EINVAL);
	sa = (struct fs_setattr){ .valid = FS_SET_MODE, .mode = 0777 };
	assert_int_equal(fs_setattr(fs, &root, escf.nodeid, FS_NO_HANDLE, &sa, &st), -EOPNOTSUPP);
	sa = (struct fs_setattr){ .valid = FS_SET_UID | FS_SET_GID | FS_SET_ATIME_NOW | FS_SET_MTIME_NOW | FS_SET_ATIME |
	                                   FS_SET_MTIME,
	                          .uid = 1234, .gid = 1234 };
	assert_int_equal(fs_setattr(fs, &root, escf.nodeid, FS_NO_HANDLE, &sa, &st), 0);
	assert_int_equal(fs_setattr(fs, &root, dang.nodeid, FS_NO_HANDLE, &sa, &st), 0);
	assert_int_equal(fs_setxattr(fs, &root, escf.nodeid, "trusted.evil", "1", 1, 0), 0);
	assert_int_equal(fs_getxattr(fs, &root, escf.nodeid, "trusted.evil", buf, sizeof(buf)), 1);
	assert_int_equal(fs_link(fs, &root, escf.nodeid, FS_ROOT_ID, "escf2", &x), 0);
	assert_int_equal(x.nodeid, escf.nodeid);
	assert_int_equal(fs_access(fs, &user, escf.nodeid, W_OK), 0); /* the link's own mode: 0777 */
	struct statvfs sv;
	assert_int_equal(fs_statfs(fs, escf.nodeid, &sv), 0);

	/* The target outside is untouched, and nothing new appeared outside. */
	assert_int_equal(stat(hpath(outside, "secret"), &st), 0);
	assert_int_equal(st.st_uid, before.st_uid);
	assert_int_equal(st.st_mode, before.st_mode);
	assert_int_equal(st.st_size, 6);
	assert_int_equal(st.st_mtim.tv_sec, 1000);
	assert_int_equal(st.st_atim.tv_sec, 1000);
	assert_int_equal(st.st_nlink, 1);
	assert_int_equal(getxattr(hpath(outside, "secret"), "trusted.evil", buf, sizeof(buf)), -1);
	assert_int_equal(access(hpath(outside, "new"), F_OK), -1);
	assert_int_equal(lstat(hpath(dir, "escf2"), &st), 0);
	assert_true(S_ISLNK(st.st_mode));
	assert_int_equal(st.st_uid, 1234);

	fs_forget(fs, etc.nodeid, 1);
	fs_forget(fs, esc.nodeid, 1);
	fs_forget(fs, escf.nodeid, 2);
	fs_forget(fs, dang.nodeid, 1);
}

static void test_dotdot_and_names(void **state)
{
	struct fs_entry e, d;
	uint64_t fh;
	(void)state;
	/* ".." of the root is the root: never above the shared directory. */
	assert_int_equal(fs_lookup(fs, &root, FS_ROOT_ID, "..", &e), 0);
	assert_int_equal(e.nodeid, FS_ROOT_ID);
	fs_forget(fs, FS_ROOT_ID, 1);
	assert_int_equal(fs_mkdir(fs, &root, FS_ROOT_ID, "sub", 0755, &d), 0);
	assert_int_equal(fs_lookup(fs, &root, d.nodeid, "..", &e), -EINVAL);
	/* Names with a slash would be paths: refused everywhere. */
	assert_int_equal(fs_lookup(fs, &root, FS_ROOT_ID, "../etc", &e), -EINVAL);
	assert_int_equal(fs_lookup(fs, &root, d.nodeid, "../..", &e), -EINVAL);
	assert_int_equal(fs_lookup(fs, &root, FS_ROOT_ID, "/etc", &e), -EINVAL);
	assert_int_equal(fs_lookup(fs, &root, FS_ROOT_ID, "", &e), -ENOENT);
	assert_int_equal(fs_mkdir(fs, &root, FS_ROOT_ID, "..", 0755, &e), -EINVAL);
	assert_int_equal(fs_create(fs, &root, FS_ROOT_ID, "../x", 0644, O_RDWR, &e, &fh), -EINVAL);
	assert_int_equal(fs_symlink(fs, &root, FS_ROOT_ID, "..", "/", &e), -EINVAL);
	assert_int_equal(fs_link(fs, &root, d.nodeid, FS_ROOT_ID, "..", &e), -EINVAL);
	assert_int_equal(fs_rename(fs, &root, d.nodeid, "..", FS_ROOT_ID, "up", 0), -EINVAL);
	assert_int_equal(fs_rename(fs, &root, FS_ROOT_ID, "sub", d.nodeid, "..", 0), -EINVAL);
	assert_int_equal(fs_rmdir(fs, &root, d.nodeid, "."), -EINVAL);
	assert_int_equal(fs_unlink(fs, &root, FS_ROOT_ID, ".."), -EINVAL);
	assert_int_equal(fs_mknod(fs, &root, FS_ROOT_ID, ".", S_IFIFO | 0600, 0, &e), -EINVAL);
	assert_int_equal(access(hpath(dir, "../x"), F_OK), -1);
	fs_forget(fs, d.nodeid, 1);
}

static void make_setgid_dir(const char *name, gid_t gid)
{
	assert_int_equal(mkdir(hpath(dir, name), 0777), 0);
	assert_int_equal(chown(hpath(dir, name), 0, gid), 0);
	assert_int_equal(chmod(hpath(dir, name), 02777), 0);
}

/* CVE-2022-0358: a file created in a setgid directory by a caller outside its group must not keep S_ISGID. */
static void test_setgid_creation(void **state)
{
	struct fs_entry sg, e;
	uint64_t fh;
	(void)state;
	require_root();
	make_setgid_dir("sg", 1234);
	assert_int_equal(fs_lookup(fs, &root, FS_ROOT_ID, "sg", &sg), 0);

	const struct fs_ctx outsider = { .uid = 1000, .gid = 1000, .pid = 5 };
	const struct fs_ctx member = { .uid = 1000, .gid = 1234, .pid = 6 };
	assert_int_equal(fs_create(fs, &outsider, sg.nodeid, "out", 02755, O_RDWR, &e, &fh), 0);
	assert_root_ids();
	assert_int_equal(e.st.st_uid, 1000);
	assert_int_equal(e.st.st_gid, 1234);
	assert_int_equal(e.st.st_mode & 07777, 0755);
	assert_int_equal(fs_release(fs, e.nodeid, fh, false, 0), 0);
	fs_forget(fs, e.nodeid, 1);

	assert_int_equal(fs_create(fs, &member, sg.nodeid, "in", 02755, O_RDWR, &e, &fh), 0);
	assert_int_equal(e.st.st_mode & 07777, 02755);
	assert_int_equal(fs_release(fs, e.nodeid, fh, false, 0), 0);
	fs_forget(fs, e.nodeid, 1);

	/* Root keeps CAP_FSETID. */
	assert_int_equal(fs_create(fs, &root, sg.nodeid, "byroot", 02755, O_RDWR, &e, &fh), 0);
	assert_int_equal(e.st.st_mode & 07777, 02755);
	assert_int_equal(fs_release(fs, e.nodeid, fh, false, 0), 0);
	fs_forget(fs, e.nodeid, 1);

	/* mknod and O_TMPFILE too. */
	assert_int_equal(fs_mknod(fs, &outsider, sg.nodeid, "nod", S_IFREG | 02755, 0, &e), 0);
	assert_int_equal(e.st.st_mode & 07777, 0755);
	assert_int_equal(e.st.st_gid, 1234);
	fs_forget(fs, e.nodeid, 1);
	assert_int_equal(fs_tmpfile(fs, &outsider, sg.nodeid, 02755, O_RDWR, &e, &fh), 0);
	assert_int_equal(e.st.st_mode & 07777, 0755);
	assert_int_equal(e.st.st_uid, 1000);
	assert_int_equal(fs_release(fs, e.nodeid, fh, false, 0), 0);
	fs_forget(fs, e.nodeid, 1);

	/* Subdirectories inherit S_ISGID and the group. */
	assert_int_equal(fs_mkdir(fs, &outsider, sg.nodeid, "subdir", 0755, &e), 0);
	assert_true(e.st.st_mode & S_ISGID);
	assert_int_equal(e.st.st_gid, 1234);
	assert_int_equal(e.st.st_uid, 1000);
	fs_forget(fs, e.nodeid, 1);
	assert_root_ids();
	fs_forget(fs, sg.nodeid, 1);
}

/* The group from FUSE_CREATE_SUPP_GROUP: a caller who has the directory's group only as a supplementary group
 * keeps S_ISGID as on the host, for that request only; the thread has no group afterwards. */
static void test_setgid_creation_with_the_callers_supplementary_group(void **state)
{
	struct fs_entry sg, e;
	uint64_t fh;
	(void)state;
	require_root();
	make_setgid_dir("sgs", 1234);
	assert_int_equal(fs_lookup(fs, &root, FS_ROOT_ID, "sgs", &sg), 0);

	const struct fs_ctx member = { .uid = 1000, .gid = 1000, .pid = 5, .has_supp_gid = true, .supp_gid = 1234 };
	const struct fs_ctx outsider = { .uid = 1000, .gid = 1000, .pid = 5 };
	assert_int_equal(fs_create(fs, &member, sg.nodeid, "in", 02755, O_RDWR, &e, &fh), 0);
	assert_int_equal(e.st.st_uid, 1000);
	assert_int_equal(e.st.st_gid, 1234);
	assert_int_equal(e.st.st_mode & 07777, 02755);
	assert_int_equal(fs_release(fs, e.nodeid, fh, false, 0), 0);
	fs_forget(fs, e.nodeid, 1);
	assert_int_equal(getgroups(0, NULL), 0); /* the group lasted for that request only */
	assert_root_ids();
	assert_int_equal(fs_mknod(fs, &member, sg.nodeid, "nod", S_IFREG | 02755, 0, &e), 0);
	assert_int_equal(e.st.st_mode & 07777, 02755);
	fs_forget(fs, e.nodeid, 1);
	/* The next caller, without it, is an outsider again */
	assert_int_equal(fs_create(fs, &outsider, sg.nodeid, "out", 02755, O_RDWR, &e, &fh), 0);
	assert_int_equal(e.st.st_mode & 07777, 0755);
	assert_int_equal(fs_release(fs, e.nodeid, fh, false, 0), 0);
	fs_forget(fs, e.nodeid, 1);
	assert_int_equal(getgroups(0, NULL), 0);
	assert_root_ids();
	fs_forget(fs, sg.nodeid, 1);
}

struct group_thread {
	pthread_barrier_t *bar;
	int ret;
	int ngroups_after;
	struct fs_entry e;
	uint64_t parent;
};

/* A thread whose supplementary groups include the directory's group: they must not count for the caller. */
static void *creator(void *p)
{
	struct group_thread *g = p;
	gid_t groups[1] = { 1234 };
	const struct fs_ctx outsider = { .uid = 1000, .gid = 1000, .pid = 7 };
	uint64_t fh;

	if (syscall(SYS_setgroups, 1, groups) < 0) {
		g->ret = -errno;
		return NULL;
	}
	pthread_barrier_wait(g->bar);
	g->ret = fs_create(fs, &outsider, g->parent, "grp", 02755, O_RDWR, &g->e, &fh);
	if (g->ret == 0)
		fs_release(fs, g->e.nodeid, fh, false, 0);
	g->ngroups_after = (int)syscall(SYS_getgroups, 0, NULL);
	pthread_barrier_wait(g->bar);
	return NULL;
}

static void *bystander(void *p)
{
	struct group_thread *g = p;
	gid_t groups[1] = { 1234 }, now[4];

	if (syscall(SYS_setgroups, 1, groups) < 0)
		g->ret = -errno;
	pthread_barrier_wait(g->bar);
	pthread_barrier_wait(g->bar);
	/* Another thread's credential changes never touch this one. */
	g->ngroups_after = (int)syscall(SYS_getgroups, 4, now);
	if (g->ngroups_after != 1 || now[0] != 1234)
		g->ret = -EPERM;
	if (cur_fsuid() != 0 || cur_fsgid() != 0)
		g->ret = -EPERM;
	return NULL;
}

static void test_supplementary_groups_dropped(void **state)
{
	pthread_barrier_t bar;
	pthread_t t1, t2;
	struct fs_entry sg;
	struct group_thread a = { &bar, -1, -1, { 0 }, 0 }, b = { &bar, 0, -1, { 0 }, 0 };
	(void)state;
	require_root();
	make_setgid_dir("sg2", 1234);
	assert_int_equal(fs_lookup(fs, &root, FS_ROOT_ID, "sg2", &sg), 0);
	a.parent = sg.nodeid;
	pthread_barrier_init(&bar, NULL, 2);
	assert_int_equal(pthread_create(&t2, NULL, bystander, &b), 0);
	assert_int_equal(pthread_create(&t1, NULL, creator, &a), 0);
	pthread_join(t1, NULL);
	pthread_join(t2, NULL);
	pthread_barrier_destroy(&bar);
	assert_int_equal(a.ret, 0);
	assert_int_equal(a.e.st.st_mode & 07777, 0755);
	assert_int_equal(a.ngroups_after, 0);
	assert_int_equal(b.ret, 0);
	assert_int_equal(b.ngroups_after, 1);
	fs_forget(fs, a.e.nodeid, 1);
	fs_forget(fs, sg.nodeid, 1);
}

static void test_creation_as_caller(void **state)
{
	struct fs_entry d, e;
	uint64_t fh;
	(void)state;
	require_root();
	/* Owned by the caller. */
	assert_int_equal(fs_create(fs, &user, FS_ROOT_ID, "mine", 0640, O_RDWR, &e, &fh), 0);
	assert_int_equal(e.st.st_uid, 1000);
	assert_int_equal(e.st.st_gid, 1000);
	assert_int_equal(fs_release(fs, e.nodeid, fh, false, 0), 0);
	/* Linking one's own file works through the /proc magic link with the caller's ids. */
	assert_int_equal(fs_link(fs, &user, e.nodeid, FS_ROOT_ID, "mine2", &d), 0);
	assert_int_equal(d.nodeid, e.nodeid);
	assert_int_equal(d.st.st_nlink, 2);
	fs_forget(fs, e.nodeid, 2);
	assert_int_equal(fs_symlink(fs, &user, FS_ROOT_ID, "lnk", "mine", &e), 0);
	assert_int_equal(e.st.st_uid, 1000);
	fs_forget(fs, e.nodeid, 1);
	assert_int_equal(fs_mkdir(fs, &user, FS_ROOT_ID, "udir", 0700, &e), 0);
	assert_int_equal(e.st.st_uid, 1000);
	fs_forget(fs, e.nodeid, 1);

	/* Directory permissions are the guest's to check (virtio-fs mounts use default_permissions, and FUSE 7.38
	 * does not tell us the caller's supplementary groups): creation in a directory the caller could not write
	 * on the host succeeds, and the new names still belong to the caller. */
	assert_int_equal(fs_mkdir(fs, &root, FS_ROOT_ID, "rootonly", 0755, &d), 0);
	assert_int_equal(fs_create(fs, &user, d.nodeid, "c", 0644, O_RDWR, &e, &fh), 0);
	assert_int_equal(e.st.st_uid, 1000);
	assert_int_equal(fs_release(fs, e.nodeid, fh, false, 0), 0);
	fs_forget(fs, e.nodeid, 1);
	assert_int_equal(fs_mkdir(fs, &user, d.nodeid, "m", 0755, &e), 0);
	assert_int_equal(e.st.st_uid, 1000);
	fs_forget(fs, e.nodeid, 1);
	assert_int_equal(fs_mknod(fs, &user, d.nodeid, "f", S_IFIFO | 0644, 0, &e), 0);
	assert_int_equal(e.st.st_uid, 1000);
	fs_forget(fs, e.nodeid, 1);
	assert_int_equal(fs_tmpfile(fs, &user, d.nodeid, 0644, O_RDWR, &e, &fh), 0);
	assert_int_equal(e.st.st_uid, 1000);
	assert_int_equal(fs_release(fs, e.nodeid, fh, false, 0), 0);
	fs_forget(fs, e.nodeid, 1);
	assert_root_ids();
	assert_int_equal(fs_create(fs, &root, d.nodeid, "x", 0600, O_RDWR, &e, &fh), 0);
	assert_int_equal(fs_release(fs, e.nodeid, fh, false, 0), 0);
	/* Linking someone else's unreadable file, as a non-owner: refused (protected_hardlinks). */
	FILE *f = fopen("/proc/sys/fs/protected_hardlinks", "r");
	int prot = 0;
	if (f) {
		if (fscanf(f, "%d", &prot) != 1)
			prot = 0;
		fclose(f);
	}
	if (prot)
		assert_int_equal(fs_link(fs, &user, e.nodeid, FS_ROOT_ID, "stolen", &d), -EPERM);
	fs_forget(fs, e.nodeid, 1);
	/* No CAP_MKNOD for the caller. */
	assert_int_equal(fs_mknod(fs, &user, FS_ROOT_ID, "mem", S_IFCHR | 0666, makedev(1, 1), &e), -EPERM);
	assert_root_ids();
	fs_forget(fs, d.nodeid, 1);
}

static void test_access_as_caller(void **state)
{
	struct fs_entry e, o, d;
	uint64_t fh;
	struct fs_setattr sa;
	struct stat st;
	(void)state;
	require_root();
	assert_int_equal(fs_create(fs, &root, FS_ROOT_ID, "rootfile", 0600, O_RDWR, &e, &fh), 0);
	assert_int_equal(fs_release(fs, e.nodeid, fh, false, 0), 0);
	assert_int_equal(fs_access(fs, &user, e.nodeid, R_OK), -EACCES);
	assert_int_equal(fs_access(fs, &user, e.nodeid, 0), 0);
	assert_int_equal(fs_access(fs, &root, e.nodeid, R_OK | W_OK), 0);
	assert_int_equal(fs_access(fs, &root, e.nodeid, X_OK), -EACCES);
	assert_root_ids();

	assert_int_equal(fs_create(fs, &user, FS_ROOT_ID, "userfile", 0640, O_RDWR, &o, &fh), 0);
	assert_int_equal(fs_release(fs, o.nodeid, fh, false, 0), 0);
	const struct fs_ctx groupmate = { .uid = 2000, .gid = 1000, .pid = 3 };
	const struct fs_ctx stranger = { .uid = 2000, .gid = 2000, .pid = 4 };
	assert_int_equal(fs_access(fs, &user, o.nodeid, R_OK | W_OK), 0);
	assert_int_equal(fs_access(fs, &groupmate, o.nodeid, R_OK), 0);
	assert_int_equal(fs_access(fs, &groupmate, o.nodeid, W_OK), -EACCES);
	assert_int_equal(fs_access(fs, &stranger, o.nodeid, R_OK), -EACCES);
	assert_int_equal(fs_access(fs, &user, o.nodeid, 0x40), -EINVAL);

	assert_int_equal(fs_mkdir(fs, &root, FS_ROOT_ID, "private", 0700, &d), 0);
	assert_int_equal(fs_access(fs, &user, d.nodeid, X_OK), -EACCES);
	assert_int_equal(fs_access(fs, &root, d.nodeid, X_OK), 0);
	sa = (struct fs_setattr){ .valid = FS_SET_MODE, .mode = 0701 };
	assert_int_equal(fs_setattr(fs, &root, d.nodeid, FS_NO_HANDLE, &sa, &st), 0);
	assert_int_equal(fs_access(fs, &user, d.nodeid, X_OK), 0);
	assert_root_ids();
	fs_forget(fs, e.nodeid, 1);
	fs_forget(fs, o.nodeid, 1);
	fs_forget(fs, d.nodeid, 1);
}

static void test_write_kills_suidgid(void **state)
{
	struct fs_entry e;
	uint64_t fh;
	struct stat st;
	struct fs_setattr sa;
	struct iovec iov = { "x", 1 };
	(void)state;
	assert_int_equal(fs_create(fs, &root, FS_ROOT_ID, "suid", 0755, O_RDWR, &e, &fh), 0);
	const struct { mode_t mode; bool kill; mode_t after; } cases[] = {
		{ 06755, false, 06755 }, /* the daemon's own write keeps them */
		{ 06755, true, 00755 },
		{ 04700, true, 00700 },
		{ 02745, true, 02745 },  /* no group exec: setgid stays (mandatory-locking marker) */
		{ 02775, true, 00775 },
		{ 00755, true, 00755 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		sa = (struct fs_setattr){ .valid = FS_SET_MODE, .mode = cases[i].mode };
		assert_int_equal(fs_setattr(fs, &root, e.nodeid, FS_NO_HANDLE, &sa, &st), 0);
		assert_int_equal(fs_write(fs, &user, fh, i, &iov, 1, cases[i].kill), 1);
		assert_int_equal(fs_getattr(fs, e.nodeid, FS_NO_HANDLE, &st), 0);
		assert_int_equal(st.st_mode & 07777, cases[i].after);
	}
	assert_int_equal(fs_release(fs, e.nodeid, fh, false, 0), 0);
	fs_forget(fs, e.nodeid, 1);
}

static void test_unmappable_ids_refused(void **state)
{
	struct fs_entry e;
	const struct fs_ctx bad = { .uid = (uint32_t)-1, .gid = 0, .pid = 1 };
	(void)state;
	require_root();
	/* (uid_t)-1 cannot be an fsuid: the create must fail, not run as root. */
	assert_int_equal(fs_mkdir(fs, &bad, FS_ROOT_ID, "nope", 0755, &e), -EPERM);
	assert_int_equal(access(hpath(dir, "nope"), F_OK), -1);
	assert_root_ids();
}

/*
 * The daemon pivots (or chroots) into the shared directory after fs_new: there is no /proc any more, and what is
 * at "/proc/..." is the guest's. xattrs of symlinks and special files must still reach the right inode.
 */
static int chrooted_child(void)
{
	struct fs_entry lnk, fifo, decoy;
	char buf[32], p[64];
	struct stat before, after;

	/* /proc/self/fd was resolved at fs_new: it names the process that called it. */
	struct fs_config cfg = { .source = dir, .xattr = true };
	fs_free(fs);
	if (fs_new(&cfg, &fs) < 0)
		return 9;
	if (fs_symlink(fs, &root, FS_ROOT_ID, "lnk", "target", &lnk) || fs_mknod(fs, &root, FS_ROOT_ID, "fifo",
	                                                                           S_IFIFO | 0600, 0, &fifo))
		return 10;
	/* A decoy where an absolute /proc/self/fd/N would land inside the share. */
	snprintf(p, sizeof(p), "proc/self/fd/%d", 3);
	if (mkdir(hpath(dir, "proc"), 0755) || mkdir(hpath(dir, "proc/self"), 0755) ||
	    mkdir(hpath(dir, "proc/self/fd"), 0755))
		return 11;
	for (int fd = 0; fd < 64; fd++) {
		snprintf(p, sizeof(p), "proc/self/fd/%d", fd);
		int d = open(hpath(dir, p), O_CREAT | O_WRONLY, 0644);
		if (d < 0)
			return 12;
		close(d);
	}
	if (fs_lookup(fs, &root, FS_ROOT_ID, "proc", &decoy))
		return 13;
	if (chroot(dir) < 0 || chdir("/") < 0)
		return 14;
	if (stat(".", &before) < 0)
		return 15;
	int r = fs_setxattr(fs, &root, lnk.nodeid, "trusted.l", "L", 1, 0);
	if (r != 0) {
		fprintf(stderr, "setxattr: %s\n", strerror(-r));
		return 16;
	}
	if (fs_setxattr(fs, &root, fifo.nodeid, "trusted.f", "F", 1, 0) != 0)
		return 17;
	if (fs_getxattr(fs, &root, lnk.nodeid, "trusted.l", buf, sizeof(buf)) != 1 || buf[0] != 'L')
		return 18;
	if (fs_listxattr(fs, &root, fifo.nodeid, buf, sizeof(buf)) != 10)
		return 19;
	if (lgetxattr("/lnk", "trusted.l", buf, sizeof(buf)) != 1 || lgetxattr("/fifo", "trusted.f", buf, 1) != 1)
		return 20;
	if (fs_removexattr(fs, &root, lnk.nodeid, "trusted.l") != 0 || lgetxattr("/lnk", "trusted.l", buf, 1) != -1)
		return 21;
	/* The decoys were not touched. */
	for (int fd = 0; fd < 64; fd++) {
		snprintf(p, sizeof(p), "/proc/self/fd/%d", fd);
		if (getxattr(p, "trusted.l", buf, 1) != -1 || getxattr(p, "trusted.f", buf, 1) != -1)
			return 22;
	}
	/* The working directory is back. */
	if (stat(".", &after) < 0 || after.st_ino != before.st_ino || after.st_dev != before.st_dev)
		return 23;
	return 0;
}

static void test_xattr_without_proc_in_root(void **state)
{
	int status;
	(void)state;
	require_root();
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(chrooted_child());
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_special_files_never_opened, setup, teardown),
		cmocka_unit_test_setup_teardown(test_symlink_escape, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dotdot_and_names, setup, teardown),
		cmocka_unit_test_setup_teardown(test_setgid_creation, setup, teardown),
		cmocka_unit_test_setup_teardown(test_setgid_creation_with_the_callers_supplementary_group, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_supplementary_groups_dropped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_creation_as_caller, setup, teardown),
		cmocka_unit_test_setup_teardown(test_access_as_caller, setup, teardown),
		cmocka_unit_test_setup_teardown(test_write_kills_suidgid, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unmappable_ids_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_xattr_without_proc_in_root, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

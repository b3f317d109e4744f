/*
 * Inodes kept by file handle (--inode-file-handles=prefer|mandatory): they hold no fd, every operation on them works
 * (also for a caller whose fsuid drops CAP_DAC_READ_SEARCH), a deleted file answers ESTALE once nothing has it
 * open, a reused inode number is another node, file systems and submounts without handles fall back (prefer) or
 * fail (mandatory), and mount fds go with their last inode. Runs as root (mounts in a private mount namespace).
 */
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
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <unistd.h>

static char dir[64];
static struct fs *fs;
static const struct fs_ctx root = { .uid = 0, .gid = 0, .pid = 1 };
static const struct fs_ctx user = { .uid = 1000, .gid = 1000, .pid = 2 };

static const char *hpath(const char *name)
{
	static char p[PATH_MAX];
	snprintf(p, sizeof(p), "%s/%s", dir, name);
	return p;
}

static int open_at(const char *source, enum fs_inode_handles mode)
{
	struct fs_config cfg = { .source = source, .xattr = true, .inode_file_handles = mode };
	return fixture_fs_start(&cfg, &fs);
}

static int setup(void **state)
{
	(void)state;
	strcpy(dir, "/tmp/vufs-fs-handles-XXXXXX"); /* ext4 here: makes handles, reuses inode numbers */
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	fs_free(fs);
	fs = NULL;
	umount2(hpath("sub"), MNT_DETACH);
	nftw(dir, fixture_rm_one, 16, FTW_DEPTH | FTW_PHYS);
	return 0;
}

static void make_files(const char *sub, int n)
{
	char p[PATH_MAX];
	assert_int_equal(mkdir(hpath(sub), 0755), 0);
	for (int i = 0; i < n; i++) {
		snprintf(p, sizeof(p), "%s/%s/f%d", dir, sub, i);
		int fd = open(p, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
		assert_true(fd >= 0);
		close(fd);
	}
}

/* Looks up sub and its n files; returns how many fds the fs opened for them. */
static int fds_for_lookups(const char *sub, int n)
{
	struct fs_entry d, e;
	char name[16];
	int before = fixture_count_fds();
	assert_int_equal(fs_lookup(fs, &root, FS_ROOT_ID, sub, &d), 0);
	for (int i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "f%d", i);
		assert_int_equal(fs_lookup(fs, &root, d.nodeid, name, &e), 0);
		struct stat st;
		assert_int_equal(fs_getattr(fs, e.nodeid, FS_NO_HANDLE, &st), 0);
	}
	return fixture_count_fds() - before;
}

static void test_prefer_keeps_no_fd_per_inode_never_does(void **state)
{
	(void)state;
	make_files("many", 200);
	assert_int_equal(open_at(dir, FS_HANDLES_PREFER), 0);
	assert_true(fs_inode_handles_used(fs));
	assert_int_equal(fds_for_lookups("many", 200), 0);
	fs_free(fs);
	assert_int_equal(open_at(dir, FS_HANDLES_NEVER), 0);
	assert_false(fs_inode_handles_used(fs));
	assert_int_equal(fds_for_lookups("many", 200), 201);
}

/* A caller's fsuid drops CAP_DAC_READ_SEARCH: every fd of a handle-based inode is taken before switching. */
static void test_every_operation_on_handle_inodes_as_a_caller(void **state)
{
	struct fs_entry d, f, sd, fifo, s, l;
	struct stat st;
	struct statvfs sv;
	uint64_t fh;
	char buf[64];
	(void)state;
	assert_int_equal(open_at(dir, FS_HANDLES_MANDATORY), 0);
	assert_int_equal(fs_mkdir(fs, &root, FS_ROOT_ID, "d", 0777, &d), 0);
	int base = fixture_count_fds();
	assert_int_equal(fs_create(fs, &user, d.nodeid, "f", 0644, O_RDWR, &f, &fh), 0);
	struct iovec iov = { (void *)"hello", 5 };
	assert_int_equal(fs_write(fs, &user, fh, 0, &iov, 1, false), 5);
	assert_int_equal(fs_release(fs, f.nodeid, fh, false, 0), 0);
	assert_int_equal(stat(hpath("d/f"), &st), 0);
	assert_int_equal(st.st_uid, 1000);
	assert_int_equal(fs_open(fs, &user, f.nodeid, O_RDONLY, &fh), 0);
	assert_int_equal(fs_release(fs, f.nodeid, fh, false, 0), 0);
	assert_int_equal(fs_mkdir(fs, &user, d.nodeid, "sd", 0755, &sd), 0);
	assert_int_equal(fs_mknod(fs, &user, sd.nodeid, "fifo", S_IFIFO | 0600, 0, &fifo), 0);
	assert_int_equal(fs_symlink(fs, &user, d.nodeid, "s", "f", &s), 0);
	assert_int_equal(fs_readlink(fs, s.nodeid, buf, sizeof(buf)), 1);
	assert_int_equal(fs_link(fs, &user, f.nodeid, d.nodeid, "l", &l), 0);
	assert_int_equal(l.nodeid, f.nodeid);
	assert_int_equal(fs_rename(fs, &user, d.nodeid, "l", d.nodeid, "l2", 0), 0);
	assert_int_equal(fs_unlink(fs, &user, d.nodeid, "l2"), 0);
	assert_int_equal(fs_access(fs, &user, f.nodeid, R_OK | W_OK), 0);
	assert_int_equal(fs_access(fs, &user, f.nodeid, X_OK), -EACCES);
	struct fs_setattr sa = { .valid = FS_SET_MODE | FS_SET_MTIME | FS_SET_SIZE, .mode = 0600, .size = 2,
	                         .mtime = { 1000, 0 } };
	assert_int_equal(fs_setattr(fs, &user, f.nodeid, FS_NO_HANDLE, &sa, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(st.st_size, 2);
	assert_int_equal(st.st_mtim.tv_sec, 1000);
	sa = (struct fs_setattr){ .valid = FS_SET_UID | FS_SET_GID, .uid = 1001, .gid = 1001 };
	assert_int_equal(fs_setattr(fs, &root, f.nodeid, FS_NO_HANDLE, &sa, &st), 0);
	assert_int_equal(st.st_uid, 1001);
	assert_int_equal(fs_setxattr(fs, &root, f.nodeid, "user.k", "v", 1, 0), 0);
	assert_int_equal(fs_getxattr(fs, &root, f.nodeid, "user.k", buf, sizeof(buf)), 1);
	assert_true(fs_listxattr(fs, &root, f.nodeid, buf, sizeof(buf)) > 0);
	assert_int_equal(fs_removexattr(fs, &root, f.nodeid, "user.k"), 0);
	assert_int_equal(fs_setxattr(fs, &root, s.nodeid, "trusted.k", "v", 1, 0), 0); /* a symlink: by path */
	assert_int_equal(fs_getxattr(fs, &root, s.nodeid, "trusted.k", buf, sizeof(buf)), 1);
	assert_int_equal(fs_statfs(fs, f.nodeid, &sv), 0);
	assert_int_equal(fs_getattr(fs, fifo.nodeid, FS_NO_HANDLE, &st), 0);
	assert_true(S_ISFIFO(st.st_mode));
	assert_int_equal(fs_unlink(fs, &user, sd.nodeid, "fifo"), 0);
	assert_int_equal(fs_rmdir(fs, &user, d.nodeid, "sd"), 0);
	assert_int_equal(fixture_count_fds(), base); /* six inodes more, no fd more */
}

/* While anything has the file open, its handle opens; after that the guest's node of it answers ESTALE. */
static void test_deleted_file_is_estale_once_nothing_has_it_open(void **state)
{
	struct fs_entry e;
	struct stat st;
	uint64_t fh;
	(void)state;
	make_files("d", 1);
	assert_int_equal(open_at(dir, FS_HANDLES_MANDATORY), 0);
	assert_int_equal(fs_lookup(fs, &root, FS_ROOT_ID, "d", &e), 0);
	assert_int_equal(fs_lookup(fs, &root, e.nodeid, "f0", &e), 0);
	assert_int_equal(fs_open(fs, &root, e.nodeid, O_RDWR, &fh), 0);
	assert_int_equal(unlink(hpath("d/f0")), 0);
	assert_int_equal(fs_getattr(fs, e.nodeid, FS_NO_HANDLE, &st), 0);
	assert_int_equal(st.st_nlink, 0);
	struct iovec iov = { (void *)"x", 1 };
	assert_int_equal(fs_write(fs, &root, fh, 0, &iov, 1, false), 1);
	assert_int_equal(fs_release(fs, e.nodeid, fh, false, 0), 0);
	assert_int_equal(fs_getattr(fs, e.nodeid, FS_NO_HANDLE, &st), -ESTALE);
	assert_int_equal(fs_open(fs, &root, e.nodeid, O_RDONLY, &fh), -ESTALE);
	fs_forget(fs, e.nodeid, 1);
}

/* The freed inode number of a file the guest still holds goes to a new file: that is another node. */
static void test_reused_inode_number_is_another_node(void **state)
{
	struct fs_entry old, e;
	struct stat st;
	char name[32];
	(void)state;
	make_files("d", 1);
	assert_int_equal(stat(hpath("d/f0"), &st), 0);
	ino_t ino = st.st_ino;
	assert_int_equal(open_at(dir, FS_HANDLES_MANDATORY), 0);
	assert_int_equal(fs_lookup(fs, &root, FS_ROOT_ID, "d", &e), 0);
	uint64_t d = e.nodeid;
	assert_int_equal(fs_lookup(fs, &root, d, "f0", &old), 0);
	assert_int_equal(unlink(hpath("d/f0")), 0);
	int i;
	for (i = 0; i < 64; i++) {
		snprintf(name, sizeof(name), "d/g%d", i);
		int fd = open(hpath(name), O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
		assert_true(fd >= 0);
		assert_int_equal(fstat(fd, &st), 0);
		close(fd);
		if (st.st_ino == ino)
			break;
	}
	if (i == 64) {
		print_message("the file system did not reuse inode %llu: nothing to check\n", (unsigned long long)ino);
		return;
	}
	assert_int_equal(fs_lookup(fs, &root, d, name + 2, &e), 0);
	assert_int_equal(e.st.st_ino, ino);
	assert_true(e.nodeid != old.nodeid);
	assert_int_equal(fs_getattr(fs, old.nodeid, FS_NO_HANDLE, &st), -ESTALE);
	assert_int_equal(fs_lookup(fs, &root, d, name + 2, &old), 0); /* found again: the new node */
	assert_int_equal(old.nodeid, e.nodeid);
}

/* /proc makes no file handles. */
static void test_file_system_without_handles(void **state)
{
	struct fs_entry e;
	struct stat st;
	(void)state;
	assert_int_equal(open_at("/proc", FS_HANDLES_MANDATORY), -EOPNOTSUPP);
	assert_null(fs);
	assert_int_equal(open_at("/proc", FS_HANDLES_PREFER), 0);
	assert_false(fs_inode_handles_used(fs));
	assert_int_equal(fs_lookup(fs, &root, FS_ROOT_ID, "version", &e), 0);
	assert_int_equal(fs_getattr(fs, e.nodeid, FS_NO_HANDLE, &st), 0);
}

/* A submount without handles (procfs): prefer keeps an fd for its inodes, mandatory fails the lookup. */
static void test_submount_without_handles(void **state)
{
	struct fs_entry e, v;
	(void)state;
	assert_int_equal(mkdir(hpath("sub"), 0755), 0);
	assert_int_equal(mount("proc", hpath("sub"), "proc", 0, NULL), 0);
	assert_int_equal(open_at(dir, FS_HANDLES_PREFER), 0);
	int base = fixture_count_fds();
	assert_int_equal(fs_lookup(fs, &root, FS_ROOT_ID, "sub", &e), 0);
	assert_int_equal(fs_lookup(fs, &root, e.nodeid, "version", &v), 0);
	assert_int_equal(fixture_count_fds(), base + 2);
	fs_free(fs);
	assert_int_equal(open_at(dir, FS_HANDLES_MANDATORY), 0);
	assert_int_equal(fs_lookup(fs, &root, FS_ROOT_ID, "sub", &e), -EOPNOTSUPP);
}

/* A submount with handles (tmpfs) gets a mount fd with its first directory, closed with its last inode. */
static void test_mount_fd_lives_as_long_as_its_inodes(void **state)
{
	struct fs_entry t, a, b;
	(void)state;
	assert_int_equal(mkdir(hpath("sub"), 0755), 0);
	assert_int_equal(mount("tmpfs", hpath("sub"), "tmpfs", 0, NULL), 0);
	assert_int_equal(mkdir(hpath("sub/x"), 0755), 0);
	assert_int_equal(open_at(dir, FS_HANDLES_MANDATORY), 0);
	int base = fixture_count_fds();
	assert_int_equal(fs_lookup(fs, &root, FS_ROOT_ID, "sub", &t), 0);
	assert_int_equal(fixture_count_fds(), base + 1);
	assert_int_equal(fs_lookup(fs, &root, t.nodeid, "x", &a), 0);
	assert_int_equal(fs_create(fs, &root, a.nodeid, "y", 0644, O_RDONLY, &b, &(uint64_t){ 0 }), 0);
	assert_int_equal(fixture_count_fds(), base + 2); /* the mount fd and the open file */
	fs_forget(fs, t.nodeid, 1);
	fs_forget(fs, a.nodeid, 1);
	assert_int_equal(fixture_count_fds(), base + 2); /* y still uses the mount */
	fs_reset(fs);
	assert_int_equal(fixture_count_fds(), base);
}

int main(void)
{
	if (geteuid() != 0) {
		printf("skip: needs root (CAP_DAC_READ_SEARCH, mounts)\n");
		return 77;
	}
	/* The test's mounts stay in a namespace of its own. */
	if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) {
		printf("skip: no private mount namespace: %s\n", strerror(errno));
		return 77;
	}
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_prefer_keeps_no_fd_per_inode_never_does, setup, teardown),
		cmocka_unit_test_setup_teardown(test_every_operation_on_handle_inodes_as_a_caller, setup, teardown),
		cmocka_unit_test_setup_teardown(test_deleted_file_is_estale_once_nothing_has_it_open, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reused_inode_number_is_another_node, setup, teardown),
		cmocka_unit_test_setup_teardown(test_file_system_without_handles, setup, teardown),
		cmocka_unit_test_setup_teardown(test_submount_without_handles, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mount_fd_lives_as_long_as_its_inodes, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

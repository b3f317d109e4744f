/* POSIX record locks between guest lock owners, and flock, through fs.h. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "fs/fs.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

static char dir[64];
static struct fs *fs;
static const struct fs_ctx root = { .uid = 0, .gid = 0, .pid = 1 };
static struct fs_entry file;
static uint64_t fh1, fh2;

enum { OWNER_A = 0xa11ce, OWNER_B = 0xb0b, PID_A = 101, PID_B = 202 };

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st; (void)flag; (void)ftw;
	return remove(path);
}

static int setup_cfg(bool posix_lock, bool flk)
{
	struct fs_config cfg = { .posix_lock = posix_lock, .flock = flk };
	strcpy(dir, "/tmp/vufs-fs-locks-XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	cfg.source = dir;
	if (fs_new(&cfg, &fs) < 0)
		return -1;
	if (fs_create(fs, &root, FS_ROOT_ID, "f", 0644, O_RDWR, &file, &fh1) < 0)
		return -1;
	return fs_open(fs, &root, file.nodeid, O_RDWR, &fh2);
}

static int setup(void **state)
{
	(void)state;
	return setup_cfg(true, true);
}

static int setup_off(void **state)
{
	(void)state;
	return setup_cfg(false, false);
}

static int teardown(void **state)
{
	(void)state;
	fs_free(fs);
	fs = NULL;
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	return 0;
}

static struct flock lock(short type, off_t start, off_t len, pid_t pid)
{
	return (struct flock){ .l_type = type, .l_whence = SEEK_SET, .l_start = start, .l_len = len, .l_pid = pid };
}

static int setlk(uint64_t fh, uint64_t owner, short type, off_t start, off_t len, pid_t pid)
{
	struct flock lk = lock(type, start, len, pid);
	return fs_setlk(fs, file.nodeid, fh, owner, &lk, false);
}

static void test_two_owners_conflict(void **state)
{
	struct flock lk;
	(void)state;
	assert_int_equal(setlk(fh1, OWNER_A, F_WRLCK, 0, 100, PID_A), 0);
	/* Own lock: no conflict, may be replaced. */
	lk = lock(F_WRLCK, 0, 10, PID_A);
	assert_int_equal(fs_getlk(fs, file.nodeid, fh1, OWNER_A, &lk), 0);
	assert_int_equal(lk.l_type, F_UNLCK);
	assert_int_equal(setlk(fh1, OWNER_A, F_RDLCK, 0, 100, PID_A), 0);
	assert_int_equal(setlk(fh1, OWNER_A, F_WRLCK, 0, 100, PID_A), 0);

	/* The other owner (even on the same handle) conflicts. */
	assert_int_equal(setlk(fh2, OWNER_B, F_RDLCK, 50, 10, PID_B), -EAGAIN);
	assert_int_equal(setlk(fh1, OWNER_B, F_WRLCK, 99, 1, PID_B), -EAGAIN);
	assert_int_equal(setlk(fh2, OWNER_B, F_WRLCK, 100, 10, PID_B), 0);
	lk = lock(F_RDLCK, 50, 10, PID_B);
	assert_int_equal(fs_getlk(fs, file.nodeid, fh2, OWNER_B, &lk), 0);
	assert_int_equal(lk.l_type, F_WRLCK);
	assert_int_equal(lk.l_start, 0);
	assert_int_equal(lk.l_len, 100);
	assert_int_equal(lk.l_pid, PID_A);
	lk = lock(F_RDLCK, 105, 1, PID_A);
	assert_int_equal(fs_getlk(fs, file.nodeid, fh1, OWNER_A, &lk), 0);
	assert_int_equal(lk.l_type, F_WRLCK);
	assert_int_equal(lk.l_start, 100);
	assert_int_equal(lk.l_pid, PID_B);
	/* A third owner that never locked sees both. */
	lk = lock(F_WRLCK, 0, 0, 1);
	assert_int_equal(fs_getlk(fs, file.nodeid, fh1, 777, &lk), 0);
	assert_int_equal(lk.l_type, F_WRLCK);

	/* Unlocking part of A's range lets B in there. */
	assert_int_equal(setlk(fh1, OWNER_A, F_UNLCK, 50, 10, PID_A), 0);
	assert_int_equal(setlk(fh2, OWNER_B, F_RDLCK, 50, 10, PID_B), 0);
	assert_int_equal(setlk(fh2, OWNER_B, F_RDLCK, 60, 1, PID_B), -EAGAIN);
	/* Unlock by an owner that holds nothing. */
	assert_int_equal(setlk(fh2, 999, F_UNLCK, 0, 0, 1), 0);
	assert_int_equal(setlk(fh2, 999, 77, 0, 0, 1), -EINVAL);
}

static void test_read_locks_share(void **state)
{
	(void)state;
	assert_int_equal(setlk(fh1, OWNER_A, F_RDLCK, 0, 0, PID_A), 0);
	assert_int_equal(setlk(fh2, OWNER_B, F_RDLCK, 0, 0, PID_B), 0);
	assert_int_equal(setlk(fh2, OWNER_B, F_WRLCK, 0, 1, PID_B), -EAGAIN);
	assert_int_equal(setlk(fh1, OWNER_A, F_UNLCK, 0, 0, PID_A), 0);
	assert_int_equal(setlk(fh2, OWNER_B, F_WRLCK, 0, 1, PID_B), 0);
}

static void test_flush_and_release_drop_locks(void **state)
{
	(void)state;
	assert_int_equal(setlk(fh1, OWNER_A, F_WRLCK, 0, 0, PID_A), 0);
	assert_int_equal(setlk(fh2, OWNER_B, F_WRLCK, 0, 0, PID_B), -EAGAIN);
	/* Another owner's flush changes nothing. */
	assert_int_equal(fs_flush(fs, file.nodeid, fh2, OWNER_B), 0);
	assert_int_equal(setlk(fh2, OWNER_B, F_WRLCK, 0, 0, PID_B), -EAGAIN);
	/* A's close drops A's locks. */
	assert_int_equal(fs_flush(fs, file.nodeid, fh1, OWNER_A), 0);
	assert_int_equal(setlk(fh2, OWNER_B, F_WRLCK, 0, 0, PID_B), 0);
	assert_int_equal(setlk(fh1, OWNER_A, F_RDLCK, 0, 1, PID_A), -EAGAIN);
	/* Release with B's owner drops B's. */
	assert_int_equal(fs_release(fs, file.nodeid, fh2, false, OWNER_B), 0);
	assert_int_equal(setlk(fh1, OWNER_A, F_WRLCK, 0, 0, PID_A), 0);
}

static void test_host_lock_conflicts(void **state)
{
	char p[128];
	(void)state;
	snprintf(p, sizeof(p), "%s/f", dir);
	int fd = open(p, O_RDWR);
	assert_true(fd >= 0);
	struct flock hl = lock(F_WRLCK, 10, 5, 0);
	assert_int_equal(fcntl(fd, F_OFD_SETLK, &hl), 0);
	assert_int_equal(setlk(fh1, OWNER_A, F_WRLCK, 12, 1, PID_A), -EAGAIN);
	struct flock lk = lock(F_WRLCK, 0, 5, PID_B);
	assert_int_equal(setlk(fh1, OWNER_A, F_WRLCK, 0, 5, PID_A), 0);
	assert_int_equal(fs_getlk(fs, file.nodeid, fh2, OWNER_B, &lk), 0);
	assert_int_equal(lk.l_type, F_WRLCK);
	assert_int_equal(lk.l_start, 0);
	assert_int_equal(lk.l_pid, PID_A);
	lk = lock(F_WRLCK, 10, 1, PID_B);
	assert_int_equal(fs_getlk(fs, file.nodeid, fh2, OWNER_B, &lk), 0);
	assert_int_equal(lk.l_start, 10);
	assert_int_equal(lk.l_pid, 0); /* a host holder has no guest pid */
	close(fd);
	assert_int_equal(setlk(fh1, OWNER_B, F_WRLCK, 12, 1, PID_B), 0);
}

struct waiter {
	int ret;
	volatile int done;
};

static void *wait_lock(void *p)
{
	struct waiter *w = p;
	struct flock lk = lock(F_WRLCK, 0, 0, PID_B);
	w->ret = fs_setlk(fs, file.nodeid, fh2, OWNER_B, &lk, true);
	__atomic_store_n(&w->done, 1, __ATOMIC_SEQ_CST);
	return NULL;
}

static void test_sleeping_lock(void **state)
{
	pthread_t t;
	struct waiter w = { -1, 0 };
	(void)state;
	assert_int_equal(setlk(fh1, OWNER_A, F_WRLCK, 0, 0, PID_A), 0);
	assert_int_equal(pthread_create(&t, NULL, wait_lock, &w), 0);
	usleep(100 * 1000);
	assert_int_equal(__atomic_load_n(&w.done, __ATOMIC_SEQ_CST), 0);
	/* Other operations on the inode go on while B sleeps. */
	struct flock lk = lock(F_RDLCK, 0, 1, PID_A);
	assert_int_equal(fs_getlk(fs, file.nodeid, fh1, OWNER_A, &lk), 0);
	assert_int_equal(setlk(fh1, OWNER_A, F_UNLCK, 0, 0, PID_A), 0);
	pthread_join(t, NULL);
	assert_int_equal(w.ret, 0);
	assert_int_equal(setlk(fh1, OWNER_A, F_RDLCK, 0, 1, PID_A), -EAGAIN);
}

static void test_flock(void **state)
{
	(void)state;
	assert_int_equal(fs_flock(fs, file.nodeid, fh1, LOCK_EX | LOCK_NB), 0);
	assert_int_equal(fs_flock(fs, file.nodeid, fh2, LOCK_SH | LOCK_NB), -EWOULDBLOCK);
	assert_int_equal(fs_flock(fs, file.nodeid, fh1, LOCK_SH | LOCK_NB), 0);
	assert_int_equal(fs_flock(fs, file.nodeid, fh2, LOCK_SH | LOCK_NB), 0);
	assert_int_equal(fs_flock(fs, file.nodeid, fh2, LOCK_EX | LOCK_NB), -EWOULDBLOCK);
	assert_int_equal(fs_flock(fs, file.nodeid, fh1, LOCK_UN), 0);
	assert_int_equal(fs_flock(fs, file.nodeid, fh2, LOCK_EX | LOCK_NB), 0);
	/* Release of the holder with release_flock frees it. */
	assert_int_equal(fs_release(fs, file.nodeid, fh2, true, 0), 0);
	assert_int_equal(fs_flock(fs, file.nodeid, fh1, LOCK_EX | LOCK_NB), 0);
	assert_int_equal(fs_flock(fs, file.nodeid, fh1, 12345), -EINVAL);
	assert_int_equal(fs_flock(fs, file.nodeid, 999, LOCK_EX), -EBADF);
	/* flock and POSIX locks do not interact. */
	assert_int_equal(setlk(fh1, OWNER_A, F_WRLCK, 0, 0, PID_A), 0);
}

static void test_disabled(void **state)
{
	struct flock lk = lock(F_WRLCK, 0, 0, 1);
	(void)state;
	assert_int_equal(fs_setlk(fs, file.nodeid, fh1, OWNER_A, &lk, false), -ENOSYS);
	assert_int_equal(fs_getlk(fs, file.nodeid, fh1, OWNER_A, &lk), -ENOSYS);
	assert_int_equal(fs_flock(fs, file.nodeid, fh1, LOCK_EX), -ENOSYS);
	assert_int_equal(fs_flush(fs, file.nodeid, fh1, OWNER_A), 0);
}

static void test_stale(void **state)
{
	struct flock lk = lock(F_WRLCK, 0, 0, 1);
	(void)state;
	assert_int_equal(fs_setlk(fs, 12345, fh1, OWNER_A, &lk, false), -ESTALE);
	assert_int_equal(fs_getlk(fs, 12345, fh1, OWNER_A, &lk), -ESTALE);
	/* A lock goes through a handle open on the inode it names: none, a forged one, or another file's is refused. */
	lk = lock(F_RDLCK, 0, 0, 1);
	assert_int_equal(fs_setlk(fs, FS_ROOT_ID, FS_NO_HANDLE, OWNER_A, &lk, false), -EBADF);
	assert_int_equal(fs_setlk(fs, FS_ROOT_ID, fh1, OWNER_A, &lk, false), -EBADF);
	assert_int_equal(fs_getlk(fs, FS_ROOT_ID, fh1, OWNER_A, &lk), -EBADF);
	assert_int_equal(fs_setlk(fs, file.nodeid, fh1 ^ 0x5555, OWNER_A, &lk, false), -EBADF);
	/* Locks on a directory inode, through its handle, are refused only for writing (it opens read-only). */
	uint64_t dh;
	assert_int_equal(fs_opendir(fs, &root, FS_ROOT_ID, &dh), 0);
	assert_int_equal(fs_setlk(fs, FS_ROOT_ID, dh, OWNER_A, &lk, false), 0);
	lk.l_type = F_UNLCK;
	assert_int_equal(fs_setlk(fs, FS_ROOT_ID, dh, OWNER_A, &lk, false), 0);
	assert_int_equal(fs_releasedir(fs, FS_ROOT_ID, dh), 0);
}

static void test_owner_bound(void **state)
{
	struct fs_config cfg = { .posix_lock = true, .max_handles = 4 };
	struct fs *big = fs;
	struct fs_entry e;
	uint64_t fh;
	(void)state;
	cfg.source = dir;
	assert_int_equal(fs_new(&cfg, &fs), 0);
	assert_int_equal(fs_lookup(fs, &root, FS_ROOT_ID, "f", &e), 0);
	assert_int_equal(fs_open(fs, &root, e.nodeid, O_RDWR, &fh), 0);
	struct flock lk = lock(F_RDLCK, 0, 1, 1);
	for (uint64_t owner = 1; owner <= 4; owner++)
		assert_int_equal(fs_setlk(fs, e.nodeid, fh, owner, &lk, false), 0);
	assert_int_equal(fs_setlk(fs, e.nodeid, fh, 5, &lk, false), -ENOLCK);
	/* A known owner still works, and a flush frees room. */
	assert_int_equal(fs_setlk(fs, e.nodeid, fh, 4, &lk, false), 0);
	assert_int_equal(fs_flush(fs, e.nodeid, fh, 2), 0);
	assert_int_equal(fs_setlk(fs, e.nodeid, fh, 5, &lk, false), 0);
	fs_free(fs);
	fs = big;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_two_owners_conflict, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_locks_share, setup, teardown),
		cmocka_unit_test_setup_teardown(test_flush_and_release_drop_locks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_host_lock_conflicts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sleeping_lock, setup, teardown),
		cmocka_unit_test_setup_teardown(test_flock, setup, teardown),
		cmocka_unit_test_setup_teardown(test_disabled, setup_off, teardown),
		cmocka_unit_test_setup_teardown(test_stale, setup, teardown),
		cmocka_unit_test_setup_teardown(test_owner_bound, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

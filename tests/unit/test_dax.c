/*
 * The DAX window's file-system side (src/fs/dax.c) against an in-process window (shm_window) behind a device that
 * checks what QEMU 11.1 checks of every map and more: the file must cover the mapped pages (QEMU's EOF rule, which
 * is why a file's partial last page is a copy), no map may change a file's size, unmaps must match maps. Each case
 * reads the window as the guest would and compares it with the file byte for byte.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/log.h"
#include "fs/fs.h"
#include "transport/shm_window.h"

#include <errno.h>
#include "common/util.h"
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MiB (1u << 20)
#define RANGE (2 * MiB)
#define WINDOW (8 * MiB)

static char dir[64];
static struct fs *fs;
static struct shm_window win;
static struct dev_services window_svc, checked_svc;
static const struct fs_ctx root = { .uid = 0, .gid = 0, .pid = 1 };
static unsigned maps, unmaps, eof_violations;
static bool fail_maps;
static enum fs_dax_coherence coherence;

/* A VMM that refuses what QEMU refuses, and counts. */
static uint64_t checked_size(void *ctx, uint8_t shmid)
{
	return window_svc.shm_size(ctx, shmid);
}

static int checked_map(void *ctx, uint8_t shmid, int fd, uint64_t fd_offset, uint64_t shm_offset, uint64_t len,
                       bool writable)
{
	struct stat st;
	assert_int_equal(fstat(fd, &st), 0);
	assert_true((fcntl(fd, F_GETFL) & O_ACCMODE) == O_RDWR); /* QEMU needs a read-write fd */
	if ((uint64_t)st.st_size < fd_offset + len) {
		eof_violations++; /* QEMU would refuse (or grow the file when it is empty) */
		return -EINVAL;
	}
	if (fail_maps)
		return -EAGAIN;
	maps++;
	return window_svc.shm_map(ctx, shmid, fd, fd_offset, shm_offset, len, writable);
}

static int checked_unmap(void *ctx, uint8_t shmid, uint64_t shm_offset, uint64_t len)
{
	unmaps++;
	return window_svc.shm_unmap(ctx, shmid, shm_offset, len);
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st; (void)flag; (void)ftw;
	return remove(path);
}

static int setup(void **state)
{
	(void)state;
	strcpy(dir, "/tmp/vufs-dax-XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	struct fs_config cfg = { .source = dir, .flock = true, .dax_coherence = coherence };
	if (fs_new(&cfg, &fs) < 0 || shm_window_init(&win, WINDOW) < 0)
		return -1;
	shm_window_services(&win, &window_svc);
	checked_svc = (struct dev_services){ .ctx = window_svc.ctx, .shm_size = checked_size, .shm_map = checked_map,
	                                     .shm_unmap = checked_unmap };
	maps = unmaps = eof_violations = 0;
	fail_maps = false;
	return fs_dax_attach(fs, &checked_svc);
}

/* --dax-coherence=shared: no lease, the file's pages stay shared with host writers. */
static int setup_shared(void **state)
{
	coherence = FS_DAX_SHARED;
	int ret = setup(state);
	coherence = FS_DAX_GUARDED;
	return ret;
}

static int teardown(void **state)
{
	(void)state;
	fs_reset(fs); /* DESTROY: every range unmapped */
	uint64_t ranges, parts, copies;
	fs_dax_counts(fs, &ranges, &parts, &copies);
	assert_int_equal(ranges, 0);
	assert_int_equal(win.n, 0); /* nothing left mapped in the window */
	assert_int_equal(eof_violations, 0);
	fs_free(fs);
	shm_window_destroy(&win);
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	return 0;
}

static const char *hpath(const char *name)
{
	static char p[PATH_MAX];
	snprintf(p, sizeof(p), "%s/%s", dir, name);
	return p;
}

/* The byte at offset i of every test file: never 0, so a hole or a shifted page shows. */
static uint8_t pattern(uint64_t i)
{
	return (uint8_t)(1 + (i * 7 + i / 4096) % 251);
}

static uint64_t make_file(const char *name, uint64_t size)
{
	int fd = open(hpath(name), O_CREAT | O_TRUNC | O_WRONLY, 0644);
	assert_true(fd >= 0);
	uint8_t *buf = malloc(size ? size : 1);
	for (uint64_t i = 0; i < size; i++)
		buf[i] = pattern(i);
	assert_int_equal(write(fd, buf, size), (ssize_t)size);
	free(buf);
	close(fd);
	struct fs_entry e;
	assert_int_equal(fs_lookup(fs, &root, FS_ROOT_ID, name, &e), 0);
	return e.nodeid;
}

static uint64_t host_size(const char *name)
{
	struct stat st;
	assert_int_equal(stat(hpath(name), &st), 0);
	return (uint64_t)st.st_size;
}

/* What the guest sees: every byte of [foffset, size) through the range at moffset, and zeros after EOF in the
 * last page. */
static void assert_window_shows(uint64_t moffset, uint64_t foffset, uint64_t size)
{
	uint64_t end = size > foffset ? size - foffset : 0;
	if (end > RANGE)
		end = RANGE;
	for (uint64_t i = 0; i < end; i++) {
		if (win.base[moffset + i] != pattern(foffset + i))
			fail_msg("window byte %llu (file offset %llu) is %u, not %u", (unsigned long long)i,
			         (unsigned long long)(foffset + i), win.base[moffset + i], pattern(foffset + i));
	}
	for (uint64_t i = end; i % 4096; i++)
		assert_int_equal(win.base[moffset + i], 0);
}

static void counts(uint64_t *ranges, uint64_t *parts, uint64_t *copies)
{
	fs_dax_counts(fs, ranges, parts, copies);
}

static void test_every_size_around_pages(void **state)
{
	(void)state;
	static const uint64_t sizes[] = { 1, 4095, 4096, 4097, RANGE - 1, RANGE, RANGE + 1, RANGE + 4096, 2 * RANGE + 1 };
	for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		char name[32];
		snprintf(name, sizeof(name), "f%zu", k);
		uint64_t size = sizes[k], node = make_file(name, size);
		for (uint64_t foff = 0; foff < size; foff += RANGE) {
			uint64_t moff = (foff / RANGE) % (WINDOW / RANGE) * RANGE;
			assert_int_equal(fs_setupmapping(fs, node, foff, RANGE, moff, false), 0);
			assert_window_shows(moff, foff, size);
			uint64_t ranges, parts, copies;
			counts(&ranges, &parts, &copies);
			bool partial = size % 4096 && size - foff < RANGE;
			assert_int_equal(copies, partial ? 1 : 0);
			assert_int_equal(fs_removemapping(fs, node, moff, RANGE), 0);
		}
		assert_int_equal(host_size(name), size); /* no map grew the file */
	}
}

static void test_empty_file_maps_nothing_and_stays_empty(void **state)
{
	(void)state;
	uint64_t node = make_file("empty", 0);
	assert_int_equal(fs_setupmapping(fs, node, 0, RANGE, 0, true), 0);
	uint64_t ranges, parts, copies;
	counts(&ranges, &parts, &copies);
	assert_int_equal(ranges, 1);
	assert_int_equal(parts, 0);
	assert_int_equal(maps, 0);
	assert_int_equal(host_size("empty"), 0);
}

static uint64_t open_rw(uint64_t node)
{
	uint64_t fh;
	assert_int_equal(fs_open(fs, &root, node, O_RDWR, &fh), 0);
	return fh;
}

static void test_store_into_tail_copy_is_written_back_below_eof(void **state)
{
	(void)state;
	uint64_t node = make_file("tail", 5000), fh = open_rw(node);
	assert_int_equal(fs_setupmapping(fs, node, 0, RANGE, RANGE, true), 0);
	win.base[RANGE + 10] = 'A';       /* a file page: the file itself */
	win.base[RANGE + 4999] = 'B';     /* the copy of the last page, below EOF */
	win.base[RANGE + 5000] = 'C';     /* past EOF in the last page: dropped, as on a host mmap */
	assert_int_equal(fs_fsync(fs, node, fh, false), 0);
	int fd = open(hpath("tail"), O_RDONLY);
	char c;
	assert_int_equal(pread(fd, &c, 1, 10), 1);
	assert_int_equal(c, 'A');
	assert_int_equal(pread(fd, &c, 1, 4999), 1);
	assert_int_equal(c, 'B');
	close(fd);
	assert_int_equal(host_size("tail"), 5000);
	assert_int_equal(fs_release(fs, node, fh, false, 0), 0);
}

static void test_growth_is_mapped_before_the_reply(void **state)
{
	(void)state;
	uint64_t node = make_file("grow", 4097), fh = open_rw(node);
	assert_int_equal(fs_setupmapping(fs, node, 0, RANGE, 0, true), 0);
	/* The guest appends (an extending write always comes as FUSE_WRITE) past the copied page. */
	uint8_t buf[20000];
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = pattern(4097 + i);
	struct iovec iov = { buf, sizeof(buf) };
	assert_int_equal(fs_write(fs, &root, fh, 4097, &iov, 1, false), (ssize_t)sizeof(buf));
	assert_window_shows(0, 0, 4097 + sizeof(buf));
	uint64_t ranges, parts, copies;
	counts(&ranges, &parts, &copies);
	assert_int_equal(copies, 1); /* the old copy became file pages again; the new last page is a copy */
	/* A host process appends: the guest learns the size from GETATTR, and the window shows it first. */
	int fd = open(hpath("grow"), O_WRONLY | O_APPEND);
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = pattern(4097 + 20000 + i);
	assert_int_equal(write(fd, buf, 3000), 3000);
	close(fd);
	struct stat st;
	assert_int_equal(fs_getattr(fs, node, FS_NO_HANDLE, &st), 0);
	assert_int_equal(st.st_size, 4097 + 20000 + 3000);
	assert_window_shows(0, 0, (uint64_t)st.st_size);
	assert_int_equal(fs_release(fs, node, fh, false, 0), 0);
}

static void test_host_write_into_tail_is_seen_after_getattr(void **state)
{
	(void)state;
	uint64_t node = make_file("hostw", 6000);
	assert_int_equal(fs_setupmapping(fs, node, 0, RANGE, 0, false), 0);
	int fd = open(hpath("hostw"), O_WRONLY);
	assert_int_equal(pwrite(fd, "xyz", 3, 5000), 3);
	assert_int_equal(pwrite(fd, "q", 1, 100), 1);
	close(fd);
	assert_int_equal(win.base[100], 'q'); /* file pages: at once */
	struct stat st;
	assert_int_equal(fs_getattr(fs, node, FS_NO_HANDLE, &st), 0);
	assert_memory_equal(win.base + 5000, "xyz", 3); /* the copied tail: at the next attributes */
}

static void test_shrink_then_regrow(void **state)
{
	(void)state;
	uint64_t node = make_file("shrink", 3 * 4096 + 100), fh = open_rw(node);
	assert_int_equal(fs_setupmapping(fs, node, 0, RANGE, 0, true), 0);
	struct fs_setattr sa = { .valid = FS_SET_SIZE, .size = 5000 };
	struct stat st;
	assert_int_equal(fs_setattr(fs, &root, node, fh, &sa, &st), 0);
	assert_int_equal(host_size("shrink"), 5000);
	assert_window_shows(0, 0, 5000);
	sa.size = 3 * 4096 + 100; /* grows again: the bytes come back as zeros, as in the file */
	assert_int_equal(fs_setattr(fs, &root, node, fh, &sa, &st), 0);
	for (uint64_t i = 5000; i < 3 * 4096 + 100; i++)
		assert_int_equal(win.base[i], 0);
	assert_int_equal(fs_release(fs, node, fh, false, 0), 0);
}

static void test_hostile_mappings_are_refused(void **state)
{
	(void)state;
	uint64_t node = make_file("h", 8192);
	unsigned before = maps;
	assert_int_equal(fs_setupmapping(fs, node, 0, RANGE, 4096, false), -EINVAL);       /* moffset unaligned */
	assert_int_equal(fs_setupmapping(fs, node, 4096, RANGE, 0, false), -EINVAL);       /* foffset unaligned */
	assert_int_equal(fs_setupmapping(fs, node, 0, 4096, 0, false), -EINVAL);           /* not 2 MiB */
	assert_int_equal(fs_setupmapping(fs, node, 0, RANGE, WINDOW, false), -EINVAL);     /* past the window */
	assert_int_equal(fs_setupmapping(fs, node, 0, RANGE, UINT64_MAX - RANGE + 1, false), -EINVAL);
	assert_int_equal(fs_setupmapping(fs, node, UINT64_MAX - RANGE + 1, RANGE, 0, false), -EINVAL); /* overflow */
	assert_int_equal(fs_setupmapping(fs, FS_ROOT_ID, 0, RANGE, 0, false), -EINVAL);   /* a directory */
	assert_int_equal(fs_setupmapping(fs, 12345678, 0, RANGE, 0, false), -ESTALE);
	assert_int_equal(maps, before);
	/* REMOVEMAPPING: only a range this inode has, exactly */
	assert_int_equal(fs_setupmapping(fs, node, 0, RANGE, 0, false), 0);
	assert_int_equal(fs_removemapping(fs, FS_ROOT_ID, 0, RANGE), -EINVAL);
	assert_int_equal(fs_removemapping(fs, node, 0, 4096), -EINVAL);
	assert_int_equal(fs_removemapping(fs, node, RANGE, RANGE), -EINVAL); /* nothing there */
	assert_int_equal(fs_removemapping(fs, node, 0, RANGE), 0);
	assert_int_equal(fs_removemapping(fs, node, 0, RANGE), -EINVAL); /* twice */
}

static void test_upgrade_is_bookkeeping_and_remap_replaces(void **state)
{
	(void)state;
	uint64_t a = make_file("a", 8192), b = make_file("b", 8192);
	assert_int_equal(fs_setupmapping(fs, a, 0, RANGE, 0, false), 0);
	unsigned m = maps, u = unmaps;
	assert_int_equal(fs_setupmapping(fs, a, 0, RANGE, 0, true), 0); /* Linux's write upgrade */
	assert_int_equal(maps, m);
	assert_int_equal(unmaps, u);
	assert_int_equal(fs_setupmapping(fs, b, 0, RANGE, 0, false), 0); /* another file at the same place */
	assert_int_equal(unmaps, u + 1);
	uint64_t ranges, parts, copies;
	counts(&ranges, &parts, &copies);
	assert_int_equal(ranges, 1);
}

static void test_device_failure_is_eio_never_eagain(void **state)
{
	(void)state;
	uint64_t node = make_file("eio", 8192);
	fail_maps = true;
	assert_int_equal(fs_setupmapping(fs, node, 0, RANGE, 0, false), -EIO);
	uint64_t ranges, parts, copies;
	counts(&ranges, &parts, &copies);
	assert_int_equal(ranges, 0);
}

static void test_forget_keeps_a_mapped_inode_until_destroy(void **state)
{
	(void)state;
	uint64_t node = make_file("forgot", 8192);
	assert_int_equal(fs_setupmapping(fs, node, 0, RANGE, 0, false), 0);
	fs_forget(fs, node, 1);
	uint64_t inodes, handles;
	fs_counts(fs, &inodes, &handles);
	assert_true(inodes >= 2); /* root + the mapped one */
	assert_int_equal(win.base[0], pattern(0));
}

static void test_session_start_forgets_without_unmapping(void **state)
{
	(void)state;
	uint64_t node = make_file("reset", 8192);
	assert_int_equal(fs_setupmapping(fs, node, 0, RANGE, 0, false), 0);
	unsigned u = unmaps;
	fs_dax_session_start(fs); /* the VMM reset the device: its mappings are gone already */
	assert_int_equal(unmaps, u);
	uint64_t ranges, parts, copies;
	counts(&ranges, &parts, &copies);
	assert_int_equal(ranges, 0);
	/* Our test window is not a VMM: drop what it still holds, as a device reset would. */
	assert_int_equal(shm_window_unmap(&win, 0, 8192), 0);
}

/* A guest in miniature: one file, extending writes as FUSE_WRITE, stores below EOF straight into the window, stats
 * and syncs in a random order; after every step the window shows what the guest wrote, and at the end the file. */
static void test_random_growth_and_stores_match_a_model(void **state)
{
	(void)state;
	enum { MAX = 3 * RANGE / 2 };
	uint8_t *model = calloc(1, MAX);
	uint64_t node = make_file("model", 0), fh = open_rw(node), size = 0, x = 12345;
	assert_int_equal(fs_setupmapping(fs, node, 0, RANGE, 0, true), 0);
	for (int step = 0; step < 3000; step++) {
		x ^= x << 13; x ^= x >> 7; x ^= x << 17;
		unsigned op = x % 8, len = 1 + (unsigned)(x >> 8) % 3000;
		if (op < 3 && size + len < RANGE) {             /* extending write */
			uint8_t buf[3000];
			uint64_t off = size - (size ? (x >> 20) % (size < 100 ? size : 100) : 0);
			for (unsigned i = 0; i < len; i++)
				buf[i] = model[off + i] = (uint8_t)(x >> 3) + (uint8_t)i;
			struct iovec iov = { buf, len };
			assert_int_equal(fs_write(fs, &root, fh, off, &iov, 1, false), (ssize_t)len);
			if (off + len > size)
				size = off + len;
		} else if (op < 6 && size > 0) {                  /* a store below EOF through the window */
			uint64_t off = (x >> 24) % size;
			len = (unsigned)MIN((uint64_t)len, size - off);
			for (unsigned i = 0; i < len; i++)
				win.base[off + i] = model[off + i] = (uint8_t)(x >> 5) ^ (uint8_t)i;
		} else if (op == 6) {
			struct stat st;
			assert_int_equal(fs_getattr(fs, node, FS_NO_HANDLE, &st), 0);
			assert_int_equal((uint64_t)st.st_size, size);
		} else {
			assert_int_equal(fs_fsync(fs, node, fh, false), 0);
		}
		if (memcmp(win.base, model, size) != 0)
			fail_msg("step %d (op %u): the window differs from what the guest wrote", step, op);
	}
	assert_int_equal(fs_fsync(fs, node, fh, false), 0);
	uint8_t *file = malloc(size + 1);
	int fd = open(hpath("model"), O_RDONLY);
	assert_int_equal(pread(fd, file, size + 1, 0), (ssize_t)size);
	close(fd);
	for (uint64_t i = 0; i < size; i++)
		if (file[i] != model[i])
			fail_msg("file byte %llu is %u, the guest wrote %u", (unsigned long long)i, file[i], model[i]);
	free(file);
	free(model);
	assert_int_equal(fs_release(fs, node, fh, false, 0), 0);
}

/* ---- host processes and the lease (guarded mode, the default) ------------------------------------------------ */

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

enum host_act { HOST_WRITE, HOST_TRUNCATE, HOST_READ };

/* A host process acting on a file; returns how long it took (an open or truncate waits for the lease break). */
static uint64_t host_process(const char *name, enum host_act act, uint64_t arg)
{
	uint64_t t0 = now_ms();
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int fd, ok = 0;
		char c;
		switch (act) {
		case HOST_WRITE:
			fd = open(hpath(name), O_WRONLY);
			ok = fd >= 0 && pwrite(fd, "q", 1, (off_t)arg) == 1;
			break;
		case HOST_TRUNCATE:
			ok = truncate(hpath(name), (off_t)arg) == 0;
			break;
		case HOST_READ:
			fd = open(hpath(name), O_RDONLY);
			ok = fd >= 0 && pread(fd, &c, 1, 0) == 1;
			usleep(100 * 1000); /* keeps it open a while */
			break;
		}
		_exit(ok ? 0 : 1);
	}
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	return now_ms() - t0;
}

static void lease_counts(uint64_t *taken, uint64_t *broken)
{
	fs_dax_lease_counts(fs, taken, broken);
}

static void test_host_writer_turns_ranges_into_copies(void **state)
{
	(void)state;
	uint64_t node = make_file("hw", RANGE + 8192), fh = open_rw(node), taken, broken, ranges, parts, copies;
	assert_int_equal(fs_setupmapping(fs, node, 0, RANGE, 0, false), 0);
	assert_int_equal(fs_setupmapping(fs, node, RANGE, RANGE, RANGE, false), 0);
	lease_counts(&taken, &broken);
	assert_int_equal(taken, 1);
	counts(&ranges, &parts, &copies);
	assert_int_equal(copies, 0); /* the file's own pages */
	uint64_t ms = host_process("hw", HOST_WRITE, 100);
	assert_true(ms < 5000); /* the open waited for the break, not for lease-break-time */
	lease_counts(&taken, &broken);
	assert_int_equal(broken, 1);
	counts(&ranges, &parts, &copies);
	assert_int_equal(copies, parts); /* nothing of the file is mapped any more */
	assert_int_equal(win.base[100], pattern(100)); /* a copy: the host's byte is not there yet */
	struct stat st;
	assert_int_equal(fs_getattr(fs, node, FS_NO_HANDLE, &st), 0);
	assert_int_equal(win.base[100], 'q'); /* copied in before the attributes, as a tail page is */
	win.base[RANGE + 5] = 'G'; /* the guest's store into a copy reaches the file at its next sync */
	assert_int_equal(fs_fsync(fs, node, fh, false), 0);
	int fd = open(hpath("hw"), O_RDONLY);
	char c;
	assert_int_equal(pread(fd, &c, 1, RANGE + 5), 1);
	assert_int_equal(c, 'G');
	close(fd);
	assert_int_equal(fs_release(fs, node, fh, false, 0), 0);
}

static void test_host_truncate_while_mapped_leaves_the_window_whole(void **state)
{
	(void)state;
	uint64_t node = make_file("ht", 2 * RANGE), fh = open_rw(node), ranges, parts, copies;
	assert_int_equal(fs_setupmapping(fs, node, 0, RANGE, 0, false), 0);
	assert_int_equal(fs_setupmapping(fs, node, RANGE, RANGE, RANGE, true), 0);
	uint64_t ms = host_process("ht", HOST_TRUNCATE, 4096);
	assert_true(ms < 5000);
	assert_int_equal(host_size("ht"), 4096);
	/* The guest still believes the old size: every byte it may touch is there (with the truncation unguarded,
	 * this very read is the SIGBUS that kills QEMU: test_host_truncate_unguarded_would_fault). */
	assert_window_shows(0, 0, 2 * RANGE);
	counts(&ranges, &parts, &copies);
	assert_int_equal(copies, parts);
	win.base[RANGE + 7] = 'X'; /* past the new end: dropped, never written back */
	assert_int_equal(fs_fsync(fs, node, fh, false), 0);
	assert_int_equal(host_size("ht"), 4096);
	assert_int_equal(fs_release(fs, node, fh, false, 0), 0);
}

static sigjmp_buf fault_jmp;

static void on_fault(int sig)
{
	(void)sig;
	siglongjmp(fault_jmp, 1);
}

static void test_host_truncate_unguarded_would_fault(void **state)
{
	(void)state;
	uint64_t node = make_file("hu", RANGE), fh = open_rw(node);
	assert_int_equal(fs_setupmapping(fs, node, 0, RANGE, 0, false), 0);
	host_process("hu", HOST_TRUNCATE, 4096);
	struct sigaction sa = { .sa_handler = on_fault }, old;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGBUS, &sa, &old);
	volatile bool faulted = false;
	if (sigsetjmp(fault_jmp, 1) == 0)
		(void)*(volatile uint8_t *)(win.base + 8192);
	else
		faulted = true;
	sigaction(SIGBUS, &old, NULL);
	assert_true(faulted); /* what QEMU dies of */
	assert_int_equal(fs_release(fs, node, fh, false, 0), 0);
}

static void test_host_reader_leaves_ranges_shared_and_lease_returns(void **state)
{
	(void)state;
	uint64_t node = make_file("hr", RANGE), taken, broken, ranges, parts, copies;
	assert_int_equal(fs_setupmapping(fs, node, 0, RANGE, 0, false), 0);
	host_process("hr", HOST_READ, 0);
	lease_counts(&taken, &broken);
	assert_int_equal(broken, 1);
	counts(&ranges, &parts, &copies);
	assert_int_equal(copies, 0); /* a reader cannot truncate: still the file's pages */
	uint64_t t0 = now_ms();
	while (taken < 2 && now_ms() - t0 < 5000) {
		usleep(20 * 1000);
		lease_counts(&taken, &broken);
	}
	assert_int_equal(taken, 2); /* taken again once the reader closed the file */
	uint64_t ms = host_process("hr", HOST_TRUNCATE, 100); /* and so a truncation is guarded again */
	assert_true(ms < 5000);
	counts(&ranges, &parts, &copies);
	assert_int_equal(copies, parts);
	assert_window_shows(0, 0, RANGE);
}

static void test_file_open_elsewhere_is_mapped_as_copies(void **state)
{
	(void)state;
	uint64_t node = make_file("busy", RANGE), taken, broken, ranges, parts, copies;
	int fd = open(hpath("busy"), O_RDWR); /* a host process has it open: no lease can be had */
	assert_true(fd >= 0);
	assert_int_equal(fs_setupmapping(fs, node, 0, RANGE, 0, false), 0);
	lease_counts(&taken, &broken);
	assert_int_equal(taken, 0);
	counts(&ranges, &parts, &copies);
	assert_int_equal(copies, parts);
	assert_window_shows(0, 0, RANGE);
	assert_int_equal(ftruncate(fd, 0), 0); /* and so the host may truncate it at any time */
	assert_window_shows(0, 0, RANGE);
	close(fd);
}

static void test_shared_handles_keep_their_open_flags(void **state)
{
	(void)state;
	uint64_t node = make_file("fl", 8192), ro, wo, rw, taken, broken;
	char buf[4];
	struct iovec iov = { buf, sizeof(buf) };
	assert_int_equal(fs_open(fs, &root, node, O_RDONLY, &ro), 0);
	assert_int_equal(fs_open(fs, &root, node, O_WRONLY, &wo), 0);
	assert_int_equal(fs_setupmapping(fs, node, 0, RANGE, 0, false), 0);
	assert_int_equal(fs_open(fs, &root, node, O_RDWR, &rw), 0); /* one description: no break of our lease */
	lease_counts(&taken, &broken);
	assert_int_equal(taken, 1);
	assert_int_equal(broken, 0);
	assert_int_equal(fs_write(fs, &root, ro, 0, &iov, 1, false), -EBADF);
	assert_int_equal(fs_read(fs, wo, 0, sizeof(buf), &iov, 1), -EBADF);
	assert_int_equal(fs_fallocate(fs, node, ro, 0, 0, 4096), -EBADF);
	assert_int_equal(fs_read(fs, ro, 0, sizeof(buf), &iov, 1), (ssize_t)sizeof(buf));
	assert_int_equal(buf[0], (char)pattern(0));
	/* flock: each handle is its own owner, as two opens on the host are */
	assert_int_equal(fs_flock(fs, node, ro, LOCK_EX), 0);
	assert_int_equal(fs_flock(fs, node, rw, LOCK_EX | LOCK_NB), -EWOULDBLOCK);
	assert_int_equal(fs_flock(fs, node, ro, LOCK_UN), 0);
	assert_int_equal(fs_flock(fs, node, rw, LOCK_EX | LOCK_NB), 0);
	uint64_t tr;
	assert_int_equal(fs_open(fs, &root, node, O_WRONLY | O_TRUNC, &tr), 0);
	assert_int_equal(host_size("fl"), 0);
	uint64_t fhs[] = { ro, wo, rw, tr };
	for (size_t i = 0; i < 4; i++)
		assert_int_equal(fs_release(fs, node, fhs[i], true, 0), 0);
}

static void test_dax_inode_guest_shares_only_files_it_maps(void **state)
{
	(void)state;
	struct fs_session dax_inode = { .dax_per_inode = true };
	fs_session_start(fs, &dax_inode);
	uint64_t odd = make_file("odd", 5000), pages = make_file("pages", 8192), fo, fp, taken, broken;
	assert_int_equal(fs_open(fs, &root, odd, O_RDONLY, &fo), 0);   /* not FUSE_ATTR_DAX: its own description */
	assert_int_equal(fs_open(fs, &root, pages, O_RDONLY, &fp), 0); /* FUSE_ATTR_DAX: the shared one */
	assert_int_equal(fs_setupmapping(fs, pages, 0, RANGE, 0, false), 0);
	lease_counts(&taken, &broken);
	assert_int_equal(taken, 1);
	assert_int_equal(fs_setupmapping(fs, odd, 0, RANGE, RANGE, false), 0); /* a hostile guest maps it anyway */
	lease_counts(&taken, &broken);
	assert_int_equal(taken, 1); /* no lease with another description open: copies, safe */
	uint64_t ranges, parts, copies;
	counts(&ranges, &parts, &copies);
	assert_int_equal(copies, 1);
	assert_int_equal(fs_release(fs, odd, fo, false, 0), 0);
	assert_int_equal(fs_release(fs, pages, fp, false, 0), 0);
}

static void test_guest_truncate_leaves_no_file_page_past_eof(void **state)
{
	(void)state;
	uint64_t node = make_file("gt", RANGE), fh = open_rw(node);
	assert_int_equal(fs_setupmapping(fs, node, 0, RANGE, 0, true), 0);
	struct fs_setattr sa = { .valid = FS_SET_SIZE, .size = 5000 };
	struct stat st;
	assert_int_equal(fs_setattr(fs, &root, node, fh, &sa, &st), 0);
	/* A guest process that has not yet seen the new size may still touch the old pages: it reads zeros (copies of
	 * what is no longer in the file), and the VMM gets no SIGBUS. */
	assert_int_equal(win.base[RANGE - 1], 0);
	assert_window_shows(0, 0, 5000);
	assert_int_equal(fs_release(fs, node, fh, false, 0), 0);
}

int main(void)
{
	log_init("test_dax", LOG_LVL_ERROR, false);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_every_size_around_pages, setup, teardown),
		cmocka_unit_test_setup_teardown(test_empty_file_maps_nothing_and_stays_empty, setup, teardown),
		cmocka_unit_test_setup_teardown(test_store_into_tail_copy_is_written_back_below_eof, setup, teardown),
		cmocka_unit_test_setup_teardown(test_growth_is_mapped_before_the_reply, setup, teardown),
		cmocka_unit_test_setup_teardown(test_host_write_into_tail_is_seen_after_getattr, setup_shared, teardown),
		cmocka_unit_test_setup_teardown(test_host_writer_turns_ranges_into_copies, setup, teardown),
		cmocka_unit_test_setup_teardown(test_host_truncate_while_mapped_leaves_the_window_whole, setup, teardown),
		cmocka_unit_test_setup_teardown(test_host_truncate_unguarded_would_fault, setup_shared, teardown),
		cmocka_unit_test_setup_teardown(test_host_reader_leaves_ranges_shared_and_lease_returns, setup, teardown),
		cmocka_unit_test_setup_teardown(test_file_open_elsewhere_is_mapped_as_copies, setup, teardown),
		cmocka_unit_test_setup_teardown(test_shared_handles_keep_their_open_flags, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dax_inode_guest_shares_only_files_it_maps, setup, teardown),
		cmocka_unit_test_setup_teardown(test_guest_truncate_leaves_no_file_page_past_eof, setup, teardown),
		cmocka_unit_test_setup_teardown(test_shrink_then_regrow, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hostile_mappings_are_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_upgrade_is_bookkeeping_and_remap_replaces, setup, teardown),
		cmocka_unit_test_setup_teardown(test_device_failure_is_eio_never_eagain, setup, teardown),
		cmocka_unit_test_setup_teardown(test_forget_keeps_a_mapped_inode_until_destroy, setup, teardown),
		cmocka_unit_test_setup_teardown(test_session_start_forgets_without_unmapping, setup, teardown),
		cmocka_unit_test_setup_teardown(test_random_growth_and_stores_match_a_model, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

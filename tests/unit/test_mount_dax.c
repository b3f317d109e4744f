/*
 * vufs-mount's DAX driver (src/mount/dax.c) against a fake backend that maps, or lies: reads and writes through
 * the window, clipping to the size attributes told, the write upgrade, reclaim of the least recently used range,
 * REMOVEMAPPING batches before a FORGET, ENOSYS turning DAX off, and a backend that says it mapped a range but did
 * not (the copy faults in the window's hole: -EFAULT and the request is forwarded, the process lives).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "mount/dax.h"
#include "mount/dax_guard.h"
#include "transport/shm_window.h"

#define RANGES 4u
#define FILE_BYTES (5u << 20)

struct fake {
	struct shm_window w;
	int file;                 /* the one file every node shows */
	enum { HONEST, LIAR, NO_DAX } mode;
	unsigned setups, upgrades, removes, remove_msgs, max_batch;
	uint64_t last_remove_node;
};

static int fake_call(void *ctx, uint32_t opcode, uint64_t nodeid, const void *arg, uint32_t len)
{
	struct fake *f = ctx;
	if (f->mode == NO_DAX)
		return -ENOSYS;
	if (opcode == FUSE_SETUPMAPPING) {
		struct fuse_setupmapping_in in;
		assert_int_equal(len, sizeof(in));
		memcpy(&in, arg, sizeof(in));
		assert_int_equal(in.len, MDAX_RANGE);
		assert_int_equal(in.foffset % MDAX_RANGE, 0);
		assert_true(in.flags & FUSE_SETUPMAPPING_FLAG_READ);
		f->setups++;
		if (f->mode == LIAR)
			return 0;
		/* Linux's upgrade: the same range again with WRITE; the map stays (read-write from the start here). */
		if (shm_window_map(&f->w, f->file, in.foffset, in.moffset, MDAX_RANGE, true) == -EBUSY) {
			f->upgrades++;
			return 0;
		}
		return 0;
	}
	assert_int_equal(opcode, FUSE_REMOVEMAPPING);
	struct fuse_removemapping_in in;
	memcpy(&in, arg, sizeof(in));
	assert_int_equal(len, sizeof(in) + in.count * sizeof(struct fuse_removemapping_one));
	assert_true(in.count >= 1 && in.count <= MDAX_REMOVE_MAX);
	for (uint32_t i = 0; i < in.count; i++) {
		struct fuse_removemapping_one one;
		memcpy(&one, (const uint8_t *)arg + sizeof(in) + i * sizeof(one), sizeof(one));
		assert_int_equal(one.len, MDAX_RANGE);
		if (f->mode == HONEST)
			assert_int_equal(shm_window_unmap(&f->w, one.moffset, one.len), 0);
	}
	f->removes += in.count;
	f->remove_msgs++;
	f->max_batch = in.count > f->max_batch ? in.count : f->max_batch;
	f->last_remove_node = nodeid;
	return 0;
}

static struct fake f;
static struct mdax *d;
static struct mdax_io io = { &f, fake_call };

static int setup(void **state)
{
	memset(&f, 0, sizeof(f));
	assert_int_equal(shm_window_init(&f.w, RANGES * MDAX_RANGE), 0);
	f.file = memfd_create("mdax", MFD_CLOEXEC);
	assert_int_equal(ftruncate(f.file, 6u << 20), 0);
	for (uint32_t off = 0; off < FILE_BYTES; off += 4096) {
		uint32_t tag[1024];
		for (unsigned i = 0; i < 1024; i++)
			tag[i] = off + i * 4;
		assert_int_equal(pwrite(f.file, tag, sizeof(tag), off), sizeof(tag));
	}
	d = mdax_new(f.w.base, f.w.size);
	assert_non_null(d);
	*state = NULL;
	return 0;
}

static int teardown(void **state)
{
	mdax_free(d);
	shm_window_destroy(&f.w);
	close(f.file);
	return 0;
}

static void attr(uint64_t nodeid, uint64_t size, uint32_t mode)
{
	struct fuse_attr a = { .size = size, .mode = mode };
	mdax_attr(d, nodeid, &a, mdax_seq(d));
}

static void test_read_is_the_file_clipped_to_its_size(void **state)
{
	uint8_t buf[8192], want[8192];
	assert_true(mdax_read(d, &io, 2, 0, 4096, buf) < 0); /* no attrs seen: forward */
	attr(2, FILE_BYTES, S_IFREG | 0644);
	attr(3, 4096, S_IFDIR | 0755);
	assert_true(mdax_read(d, &io, 3, 0, 4096, buf) < 0); /* not a regular file */
	/* Across the 2 MiB boundary: two ranges. */
	uint64_t off = MDAX_RANGE - 4096;
	assert_int_equal(mdax_read(d, &io, 2, off, sizeof(buf), buf), sizeof(buf));
	assert_int_equal(pread(f.file, want, sizeof(want), (off_t)off), sizeof(want));
	assert_memory_equal(buf, want, sizeof(buf));
	assert_int_equal(f.setups, 2);
	/* Clipped at the size the attrs told; at or past it, forwarded. */
	assert_int_equal(mdax_read(d, &io, 2, FILE_BYTES - 100, 4096, buf), 100);
	assert_true(mdax_read(d, &io, 2, FILE_BYTES, 4096, buf) < 0);
	/* A short forwarded READ tells the end. */
	mdax_eof(d, 2, 3u << 20);
	assert_int_equal(mdax_read(d, &io, 2, (3u << 20) - 10, 4096, buf), 10);
}

static void test_dax_inode_serves_only_files_the_backend_marks(void **state)
{
	uint8_t buf[4096];
	mdax_per_inode(d);
	attr(2, FILE_BYTES, S_IFREG | 0644); /* no FUSE_ATTR_DAX: the backend keeps it out of the window */
	assert_true(mdax_read(d, &io, 2, 0, sizeof(buf), buf) < 0);
	assert_true(mdax_write(d, &io, 2, 0, sizeof(buf), buf) < 0);
	assert_int_equal(f.setups, 0);
	struct fuse_attr a = { .size = FILE_BYTES, .mode = S_IFREG | 0644, .flags = FUSE_ATTR_DAX };
	mdax_attr(d, 2, &a, mdax_seq(d));
	assert_int_equal(mdax_read(d, &io, 2, 0, sizeof(buf), buf), sizeof(buf));
	assert_int_equal(f.setups, 1);
	attr(2, FILE_BYTES, S_IFREG | 0644); /* the mark goes: forwarded again (the range stays until reclaimed) */
	assert_true(mdax_read(d, &io, 2, 0, sizeof(buf), buf) < 0);
}

static void test_write_below_the_last_page_upgrades_and_lands(void **state)
{
	uint8_t data[100], back[100];
	memset(data, 0x5a, sizeof(data));
	attr(2, FILE_BYTES - 100, S_IFREG | 0644);
	assert_int_equal(mdax_read(d, &io, 2, 0, 100, back), 100); /* a read mapping first */
	assert_int_equal(mdax_write(d, &io, 2, 4000, sizeof(data), data), sizeof(data));
	assert_int_equal(f.upgrades, 1); /* SETUPMAPPING again, with WRITE */
	assert_int_equal(pread(f.file, back, sizeof(back), 4000), sizeof(back));
	assert_memory_equal(back, data, sizeof(data));
	/* In the page that holds the end, or past it: forwarded. */
	assert_true(mdax_write(d, &io, 2, FILE_BYTES - 4096 - 50, sizeof(data), data) < 0);
	assert_true(mdax_write(d, &io, 2, FILE_BYTES, sizeof(data), data) < 0);
	/* A WRITE forwarded past the end raises the size: a later attr from before it does not lower it. */
	uint64_t seq = mdax_seq(d);
	mdax_grew(d, 2, FILE_BYTES + 4096);
	struct fuse_attr old = { .size = FILE_BYTES - 100, .mode = S_IFREG | 0644 };
	mdax_attr(d, 2, &old, seq);
	uint8_t page[4096];
	assert_int_equal(mdax_read(d, &io, 2, FILE_BYTES - 4096, sizeof(page), page), sizeof(page));
}

static void test_reclaim_takes_the_least_recently_used(void **state)
{
	uint8_t b[16];
	for (uint64_t node = 10; node < 10 + RANGES; node++) {
		attr(node, FILE_BYTES, S_IFREG | 0644);
		assert_int_equal(mdax_read(d, &io, node, 0, sizeof(b), b), sizeof(b));
	}
	assert_int_equal(mdax_read(d, &io, 10, 0, sizeof(b), b), sizeof(b)); /* 10 is now the most recent */
	attr(20, FILE_BYTES, S_IFREG | 0644);
	assert_int_equal(mdax_read(d, &io, 20, 0, sizeof(b), b), sizeof(b));
	assert_int_equal(f.removes, 1);
	assert_int_equal(f.last_remove_node, 11);
	assert_int_equal(f.setups, RANGES + 1);
}

static void test_forget_removes_the_node_ranges_first(void **state)
{
	uint8_t b[16];
	attr(5, FILE_BYTES, S_IFREG | 0644);
	for (uint64_t off = 0; off < FILE_BYTES; off += MDAX_RANGE)
		assert_int_equal(mdax_read(d, &io, 5, off, sizeof(b), b), sizeof(b));
	mdax_forget(d, &io, 5);
	assert_int_equal(f.remove_msgs, 1);
	assert_int_equal(f.removes, 3);
	assert_int_equal(f.max_batch, 3);
	assert_true(mdax_read(d, &io, 5, 0, sizeof(b), b) < 0); /* forgotten: nothing known */
	mdax_forget(d, &io, 5);
	assert_int_equal(f.remove_msgs, 1);
}

static void test_enosys_turns_dax_off(void **state)
{
	uint8_t b[16];
	f.mode = NO_DAX;
	attr(2, FILE_BYTES, S_IFREG | 0644);
	assert_true(mdax_read(d, &io, 2, 0, sizeof(b), b) < 0);
	assert_false(mdax_enabled(d));
	f.mode = HONEST;
	assert_true(mdax_read(d, &io, 2, 0, sizeof(b), b) < 0);
	assert_int_equal(f.setups, 0);
}

static void test_a_backend_that_maps_nothing_is_survived(void **state)
{
	uint8_t b[4096];
	/* cmocka puts its own SIGSEGV handler in place around each test: ours again, as mdax_new does. */
	assert_int_equal(dax_guard_init(f.w.base, f.w.size), 0);
	f.mode = LIAR;
	attr(2, FILE_BYTES, S_IFREG | 0644);
	assert_int_equal(mdax_read(d, &io, 2, 0, sizeof(b), b), -EFAULT); /* a hole: SIGSEGV, caught */
	assert_true(mdax_write(d, &io, 2, 0, sizeof(b), b) < 0);
	/* The fault made the size unknown: forwarded until attrs come again. */
	f.mode = HONEST;
	assert_true(mdax_read(d, &io, 2, 0, sizeof(b), b) < 0);
	f.mode = LIAR;
	mdax_forget(d, &io, 2); /* the lying range goes (the backend has nothing to unmap) */
	f.mode = HONEST;
	attr(2, FILE_BYTES, S_IFREG | 0644);
	assert_int_equal(mdax_read(d, &io, 2, 0, sizeof(b), b), sizeof(b));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_read_is_the_file_clipped_to_its_size, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dax_inode_serves_only_files_the_backend_marks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_write_below_the_last_page_upgrades_and_lands, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reclaim_takes_the_least_recently_used, setup, teardown),
		cmocka_unit_test_setup_teardown(test_forget_removes_the_node_ranges_first, setup, teardown),
		cmocka_unit_test_setup_teardown(test_enosys_turns_dax_off, setup, teardown),
		cmocka_unit_test_setup_teardown(test_a_backend_that_maps_nothing_is_survived, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

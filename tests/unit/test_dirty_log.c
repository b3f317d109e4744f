/*
 * The dirty-page log on its own (dirty_log.c): which bits a mark sets, marks beyond a frontend's short log, and
 * the sizes and files a log may not have.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "transport/dirty_log.h"

#include <errno.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

static int memfd_of(uint64_t len)
{
	int fd = memfd_create("test-dirty-log", MFD_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)len), 0);
	return fd;
}

static void test_mark_sets_one_bit_per_page_touched(void **state)
{
	(void)state;
	int fd = memfd_of(4096);
	struct dirty_log *log;
	assert_int_equal(dirty_log_map(fd, 2, 100, &log), 0); /* 16 pages, at an unaligned offset */
	uint8_t *view = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0);
	assert_true(view != MAP_FAILED);
	dirty_log_mark(log, 0x0fff, 2);        /* straddles pages 0 and 1 */
	dirty_log_mark(log, 9 * 4096, 4096);   /* exactly page 9 */
	dirty_log_mark(log, 12 * 4096, 0);     /* nothing */
	assert_int_equal(view[100], 0x03);
	assert_int_equal(view[101], 0x02);
	assert_int_equal(view[99], 0);
	assert_int_equal(view[102], 0);
	assert_true(dirty_log_test(log, 0x1000));
	assert_false(dirty_log_test(log, 0x2000));
	assert_int_equal(log->outside, 0);
	munmap(view, 4096);
	dirty_log_unmap(log);
	close(fd);
}

/* A frontend's log shorter than guest memory: the covered part is marked, the rest only counted. */
static void test_marks_beyond_the_log_are_dropped(void **state)
{
	(void)state;
	int fd = memfd_of(4096);
	struct dirty_log *log;
	assert_int_equal(dirty_log_map(fd, 2, 0, &log), 0);
	uint8_t *view = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0);
	assert_true(view != MAP_FAILED);
	dirty_log_mark(log, 15 * 4096, 3 * 4096);   /* pages 15-17: 15 is the last the log has */
	dirty_log_mark(log, 1ull << 40, 4096);
	dirty_log_mark(log, UINT64_MAX - 1, 100);   /* wraps around the address space */
	assert_int_equal(view[1], 0x80);
	assert_int_equal(view[0], 0);
	for (unsigned i = 2; i < 4096; i++)
		assert_int_equal(view[i], 0);
	assert_int_equal(log->outside, 3);
	munmap(view, 4096);
	dirty_log_unmap(log);
	close(fd);
}

static void test_map_refuses_what_does_not_fit(void **state)
{
	(void)state;
	int fd = memfd_of(4096), ev = eventfd(0, EFD_CLOEXEC);
	struct dirty_log *log = NULL;
	assert_int_equal(dirty_log_map(fd, 0, 0, &log), -EINVAL);
	assert_int_equal(dirty_log_map(fd, 4097, 0, &log), -EINVAL);
	assert_int_equal(dirty_log_map(fd, 4096, 1, &log), -EINVAL);
	assert_int_equal(dirty_log_map(fd, 8, UINT64_MAX - 4, &log), -EINVAL);
	assert_int_equal(dirty_log_map(fd, DIRTY_LOG_MAX + 1, 0, &log), -EINVAL);
	assert_int_equal(dirty_log_map(ev, 8, 0, &log), -EINVAL);
	assert_int_equal(dirty_log_map(-1, 8, 0, &log), -EINVAL);
	assert_null(log);
	assert_int_equal(dirty_log_map(fd, 4096, 0, &log), 0);
	dirty_log_unmap(log);
	dirty_log_unmap(NULL);
	close(ev);
	close(fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mark_sets_one_bit_per_page_touched),
		cmocka_unit_test(test_marks_beyond_the_log_are_dropped),
		cmocka_unit_test(test_map_refuses_what_does_not_fit),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * The device services seam (common/dev_services.h) through its in-process implementation, the shared-memory
 * window: what a mapping shows, and every range QEMU would refuse (and the region offset it does not check).
 * The vhost-user implementation (backend requests) is tested in test_vhost_user.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "transport/shm_window.h"

#define WIN (1u << 20)

static int file_of(size_t size, char fill)
{
	int fd = memfd_create("dev-services", MFD_CLOEXEC);
	assert_true(fd >= 0);
	char buf[4096];
	memset(buf, fill, sizeof(buf));
	for (size_t done = 0; done < size; done += sizeof(buf))
		assert_int_equal(write(fd, buf, sizeof(buf)), sizeof(buf));
	return fd;
}

static void test_map_shows_the_file_and_writes_reach_it(void **state)
{
	(void)state;
	struct shm_window w;
	struct dev_services svc;
	assert_int_equal(shm_window_init(&w, WIN), 0);
	shm_window_services(&w, &svc);
	assert_int_equal(svc.shm_size(svc.ctx, 0), WIN);
	assert_int_equal(svc.shm_size(svc.ctx, 1), 0);
	int fd = file_of(16384, 'a');
	assert_int_equal(svc.shm_map(svc.ctx, 0, fd, 4096, 65536, 8192, true), 0);
	assert_int_equal(w.base[65536], 'a');
	w.base[65536 + 8191] = 'z';
	char c;
	assert_int_equal(pread(fd, &c, 1, 4096 + 8191), 1);
	assert_int_equal(c, 'z'); /* one copy of the data: the window is the file */
	assert_int_equal(svc.shm_unmap(svc.ctx, 0, 65536, 8192), 0);
	close(fd);
	shm_window_destroy(&w);
}

static void test_bad_ranges_are_refused(void **state)
{
	(void)state;
	struct shm_window w;
	struct dev_services svc;
	assert_int_equal(shm_window_init(&w, WIN), 0);
	shm_window_services(&w, &svc);
	int fd = file_of(16384, 'b');
	assert_int_equal(svc.shm_map(svc.ctx, 0, fd, 0, 100, 4096, true), -EINVAL);          /* region offset */
	assert_int_equal(svc.shm_map(svc.ctx, 0, fd, 100, 0, 4096, true), -EINVAL);          /* file offset */
	assert_int_equal(svc.shm_map(svc.ctx, 0, fd, 0, 0, 100, true), -EINVAL);             /* length */
	assert_int_equal(svc.shm_map(svc.ctx, 0, fd, 0, WIN - 4096, 8192, true), -EINVAL);   /* past the end */
	assert_int_equal(svc.shm_map(svc.ctx, 0, fd, 0, UINT64_MAX - 4095, 8192, true), -EINVAL); /* wraps */
	assert_int_equal(svc.shm_map(svc.ctx, 1, fd, 0, 0, 4096, true), -EINVAL);            /* no region 1 */
	assert_int_equal(svc.shm_map(svc.ctx, 0, -1, 0, 0, 4096, true), -EINVAL);
	assert_int_equal(svc.shm_map(svc.ctx, 0, fd, 0, 0, 8192, false), 0);
	assert_int_equal(svc.shm_map(svc.ctx, 0, fd, 0, 4096, 8192, true), -EBUSY);          /* overlaps */
	assert_int_equal(svc.shm_unmap(svc.ctx, 0, 0, 4096), -ENOENT);                       /* not exact */
	assert_int_equal(svc.shm_unmap(svc.ctx, 0, 0, 8192), 0);
	assert_int_equal(svc.shm_unmap(svc.ctx, 0, 0, 8192), -ENOENT);                       /* twice */
	assert_int_equal(svc.shm_map(svc.ctx, 0, fd, 0, 4096, 8192, true), 0);              /* room again */
	close(fd);
	shm_window_destroy(&w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_map_shows_the_file_and_writes_reach_it),
		cmocka_unit_test(test_bad_ranges_are_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

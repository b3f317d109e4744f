/* The dirty-page log: mapping a frontend's bitmap, marking pages in it (dirty_log.h). */
#include "transport/dirty_log.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "common/log.h"
#include "common/util.h"
#include "transport/guest_mem.h"

/* A shared mapping of a file is only safe up to the file's end: touching a page past it raises SIGBUS. */
static int check_fits(int fd, uint64_t map_len)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return neg_errno();
	if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size < map_len)
		return -EINVAL;
	return 0;
}

int dirty_log_map(int fd, uint64_t size, uint64_t mmap_offset, struct dirty_log **out)
{
	uint64_t map_len;
	int rc;

	if (fd < 0 || size == 0 || size > DIRTY_LOG_MAX || add_overflows_u64(mmap_offset, size, &map_len) ||
	    map_len > SIZE_MAX)
		return -EINVAL;
	rc = check_fits(fd, map_len);
	if (rc < 0)
		return rc;
	struct dirty_log *log = calloc(1, sizeof(*log));
	if (!log)
		return -ENOMEM;
	/* From offset 0, as the memory regions are: an offset need not be page-aligned. */
	void *base = mmap(NULL, map_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd, 0);
	if (base == MAP_FAILED) {
		rc = neg_errno();
		free(log);
		return rc;
	}
	madvise(base, map_len, MADV_DONTDUMP);
	/* The frontend may shrink the file later (QEMU seals its log memfd; a hostile one need not): guarded as
	 * guest memory is, so the fault costs the queue that made it, not the process. */
	gm_guard_mapping(base, map_len);
	*log = (struct dirty_log){ .bits = (uint8_t *)base + mmap_offset, .size = size, .map_base = base,
	                           .map_len = map_len };
	*out = log;
	return 0;
}

void dirty_log_unmap(struct dirty_log *log)
{
	if (!log)
		return;
	uint64_t outside = __atomic_load_n(&log->outside, __ATOMIC_RELAXED);
	if (outside)
		log_warn("dirty log: %llu writes fell outside the log (%llu bytes) and were not logged",
		         (unsigned long long)outside, (unsigned long long)log->size);
	gm_unguard_mapping(log->map_base);
	munmap(log->map_base, log->map_len);
	free(log);
}

void dirty_log_mark(struct dirty_log *log, uint64_t gpa, uint64_t len)
{
	uint64_t last, pages = log->size * 8;   /* size <= DIRTY_LOG_MAX: no overflow */

	if (len == 0)
		return;
	if (add_overflows_u64(gpa, len - 1, &last))
		last = UINT64_MAX;
	uint64_t first_page = gpa / DIRTY_LOG_PAGE, last_page = last / DIRTY_LOG_PAGE;
	if (last_page >= pages) {
		__atomic_add_fetch(&log->outside, 1, __ATOMIC_RELAXED);
		if (first_page >= pages)
			return;
		last_page = pages - 1;  /* the part the log covers is still marked */
	}
	/* Release: the bytes written to the page are visible before the bit that makes the VMM copy it. */
	for (uint64_t page = first_page; page <= last_page; page++)
		__atomic_fetch_or(&log->bits[page / 8], (uint8_t)(1u << (page % 8)), __ATOMIC_RELEASE);
}

int dirty_log_test(const struct dirty_log *log, uint64_t gpa)
{
	uint64_t page = gpa / DIRTY_LOG_PAGE;
	if (page / 8 >= log->size)
		return 0;
	return (__atomic_load_n(&log->bits[page / 8], __ATOMIC_ACQUIRE) >> (page % 8)) & 1;
}

/*
 * The dirty-page log of a live migration (vhost-user "Migration", VHOST_USER_PROTOCOL_F_LOG_SHMFD): a bitmap in
 * memory the frontend shares with us (SET_LOG_BASE), one bit per 4 KiB page of guest-physical address space.
 * While the frontend has VHOST_F_LOG_ALL on, every guest page the backend writes gets its bit set, so the VMM
 * sends that page again. The frontend reads and clears bits concurrently: every update is an atomic OR.
 * The log's size and the addresses marked come from the frontend and are untrusted: a mark beyond the log is
 * dropped (and counted), never written.
 * Who may unmap a log while others mark it is the caller's business (vu_device.c: the swap under push locks).
 */
#ifndef VUFS_DIRTY_LOG_H
#define VUFS_DIRTY_LOG_H

#include <stdint.h>

#define DIRTY_LOG_PAGE 4096u
/* The largest log we map: 1 GiB of bits covers 32 TiB of guest-physical space (QEMU sizes it to the highest
 * guest address it knows, DAX windows included). */
#define DIRTY_LOG_MAX (1ull << 30)

struct dirty_log {
	uint8_t *bits;          /* the first byte of the log (mmap_offset into the mapping) */
	uint64_t size;          /* bytes of bits */
	void *map_base;         /* what to munmap */
	uint64_t map_len;
	uint64_t outside;       /* marks that fell beyond the log (atomic; reported at unmap) */
};

/* Maps size bytes of fd at mmap_offset as a log. -EINVAL for an empty, oversized or overflowing log, or one that
 * does not fit in fd (fstat: a regular file, long enough); -errno from mmap. *out is the caller's to unmap. */
int dirty_log_map(int fd, uint64_t size, uint64_t mmap_offset, struct dirty_log **out);
void dirty_log_unmap(struct dirty_log *log);

/* Sets the bit of every page [gpa, gpa + len) touches (len 0 marks nothing). Thread-safe. */
void dirty_log_mark(struct dirty_log *log, uint64_t gpa, uint64_t len);
/* Whether the page of gpa is marked (tests). */
int dirty_log_test(const struct dirty_log *log, uint64_t gpa);

#endif

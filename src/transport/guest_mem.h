/*
 * Guest memory as the backend sees it: regions of the frontend's shared memory, mapped into this process.
 * Addresses come from the frontend and are untrusted: every translation checks that the whole range lies in
 * one mapped region. Changed only by the vhost-user thread while no queue thread runs (see vu_device.c).
 */
#ifndef VUFS_GUEST_MEM_H
#define VUFS_GUEST_MEM_H

#include <stdint.h>
#include <sys/uio.h>

#define GM_MAX_REGIONS 32

struct gm_region {
	uint64_t gpa;       /* guest physical address of the first byte */
	uint64_t size;
	uint64_t uaddr;     /* where the frontend has it mapped (vring addresses use this space) */
	uint8_t *host;      /* where we have it mapped */
	void *map_base;     /* what to munmap */
	size_t map_len;
};

struct guest_mem {
	unsigned n;
	struct gm_region r[GM_MAX_REGIONS];
};

/* Maps size bytes of fd starting at mmap_offset. Refuses empty, overflowing or overlapping regions. */
int gm_add(struct guest_mem *gm, uint64_t gpa, uint64_t size, uint64_t uaddr, uint64_t mmap_offset, int fd);
/* Removes the region that starts at gpa with this size. */
int gm_remove(struct guest_mem *gm, uint64_t gpa, uint64_t size);
void gm_clear(struct guest_mem *gm);

/* Host pointer for [gpa, gpa+len) if it lies inside one region, else NULL. */
void *gm_gpa_ptr(const struct guest_mem *gm, uint64_t gpa, uint64_t len);
/* The same for a frontend user address. */
void *gm_uaddr_ptr(const struct guest_mem *gm, uint64_t uaddr, uint64_t len);
/* Splits [gpa, gpa+len) over adjacent regions into at most max iovecs; returns the count or -EFAULT/-E2BIG. */
int gm_gpa_iov(const struct guest_mem *gm, uint64_t gpa, uint64_t len, struct iovec *iov, unsigned max);
/* The guest-physical address of [p, p+len), a range inside one region (as gm_gpa_iov hands out); -EFAULT if not. */
int gm_host_to_gpa(const struct guest_mem *gm, const void *p, size_t len, uint64_t *gpa);

/* How many accesses to guest memory have hit a page the frontend took away (see guest_mem.c), process-wide:
 * a queue that sees it change while it served a request stops. */
uint64_t gm_fault_count(void);

#endif

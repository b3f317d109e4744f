/*
 * Guest memory as the backend sees it: regions of the frontend's shared memory, mapped into this process.
 * Addresses come from the frontend and are untrusted: every translation checks that the whole range lies in
 * one mapped region.
 * Changed only by the vhost-user thread. Queue threads may translate while it adds a region (gm_add fills the next
 * entry, then publishes the count) or retires one (gm_retire marks it dead: lookups skip it, its mapping stays, so
 * a pointer a request already holds stays valid); only gm_compact and gm_clear unmap, and they run while
 * no queue thread does. Adding and retiring without stopping the queues is what lets a queue thread wait for the
 * VMM's answer to a backend request (a DAX map) while the VMM tells us of the memory that map created.
 */
#ifndef VUFS_GUEST_MEM_H
#define VUFS_GUEST_MEM_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

/* QEMU adds a region for every file range mapped into a DAX window (and retires it at unmap): room for a
 * 128 MiB window's worth of live maps and their churn besides the guest's RAM. Answered to GET_MAX_MEM_SLOTS. */
#define GM_MAX_REGIONS 256

struct gm_region {
	uint64_t gpa;       /* guest physical address of the first byte */
	uint64_t size;
	uint64_t uaddr;     /* where the frontend has it mapped (vring addresses use this space) */
	uint8_t *host;      /* where we have it mapped */
	void *map_base;     /* what to munmap */
	size_t map_len;
	bool dead;          /* retired (atomic): invisible to lookups, unmapped by gm_compact */
};

struct guest_mem {
	unsigned n;         /* entries in use, live or dead (published with a release store) */
	struct gm_region r[GM_MAX_REGIONS];
};

/* Maps size bytes of fd starting at mmap_offset. Refuses empty, overflowing or overlapping regions. */
int gm_add(struct guest_mem *gm, uint64_t gpa, uint64_t size, uint64_t uaddr, uint64_t mmap_offset, int fd);
/* Marks that region dead without unmapping it (queue threads may run). */
int gm_retire(struct guest_mem *gm, uint64_t gpa, uint64_t size);
/* Unmaps the dead regions and packs the table (no queue thread may run). Returns how many went. */
unsigned gm_compact(struct guest_mem *gm);
void gm_clear(struct guest_mem *gm);

/* Host pointer for [gpa, gpa+len) if it lies inside one region, else NULL. */
void *gm_gpa_ptr(const struct guest_mem *gm, uint64_t gpa, uint64_t len);
/* The same for a frontend user address. */
void *gm_uaddr_ptr(const struct guest_mem *gm, uint64_t uaddr, uint64_t len);
/* Splits [gpa, gpa+len) over adjacent regions into at most max iovecs; returns the count or -EFAULT/-E2BIG. */
int gm_gpa_iov(const struct guest_mem *gm, uint64_t gpa, uint64_t len, struct iovec *iov, unsigned max);
/* The guest-physical address of [p, p+len), a range inside one region (as gm_gpa_iov hands out); -EFAULT if not. */
int gm_host_to_gpa(const struct guest_mem *gm, const void *p, size_t len, uint64_t *gpa);

/* Other mappings of the frontend's files (the dirty log) get the same SIGBUS guard as guest memory: register
 * before the first access, unregister before munmap. A fault in one counts in gm_fault_count. */
void gm_guard_mapping(void *base, size_t len);
void gm_unguard_mapping(void *base);

/* How many accesses to guest memory have hit a page the frontend took away (see guest_mem.c), process-wide:
 * a queue that sees it change while it served a request stops. */
uint64_t gm_fault_count(void);

#endif

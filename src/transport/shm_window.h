/*
 * A shared-memory region in this process, playing the VMM's part of a virtio shared-memory region (the DAX
 * window): file ranges are mapped into it at offsets the caller chooses. It implements the device services
 * (common/dev_services.h) in-process, for unit tests, fuzzing and vufs-mount; it checks at least what QEMU
 * checks of a SHMEM_MAP (page alignment, inside the window, no overlap with a live mapping, unmap matches a
 * mapping exactly), and the region offset too, which QEMU does not.
 * Thread-safe: one mutex per window (maps are rare next to the loads and stores they serve).
 */
#ifndef VUFS_SHM_WINDOW_H
#define VUFS_SHM_WINDOW_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "common/dev_services.h"

#define SHM_WINDOW_MAX_MAPS 4096

struct shm_window {
	uint8_t *base;            /* size bytes, PROT_NONE where nothing is mapped */
	uint64_t size;
	pthread_mutex_t lock;     /* guards maps */
	unsigned n;
	struct { uint64_t off, len; } maps[SHM_WINDOW_MAX_MAPS];
};

/* Reserves size bytes (a multiple of the page size). */
int shm_window_init(struct shm_window *w, uint64_t size);
void shm_window_destroy(struct shm_window *w);
int shm_window_map(struct shm_window *w, int fd, uint64_t fd_offset, uint64_t off, uint64_t len, bool writable);
int shm_window_unmap(struct shm_window *w, uint64_t off, uint64_t len);
/* Drops every mapping, as QEMU does at a device reset. */
void shm_window_clear(struct shm_window *w);
/* The window as device services (region 0 only). */
void shm_window_services(struct shm_window *w, struct dev_services *out);

#endif

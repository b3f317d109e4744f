/*
 * The frontend (VMM) side of vhost-user, as QEMU drives a vhost-user-fs device: owns the "guest memory"
 * (a memfd shared with the backend, guest physical address = offset in it), negotiates features, hands the
 * backend the memory table and the virtqueues, and submits chains on them. Used by vufs-mount and by the
 * test and benchmark clients. The backend is untrusted (see vq_driver.h).
 */
#ifndef VUFS_VU_FRONTEND_H
#define VUFS_VU_FRONTEND_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "transport/shm_window.h"
#include "transport/vq_driver.h"
#include "transport/vu_fe_backend.h"

#define VU_FE_MAX_QUEUES 17

struct vu_frontend_config {
	unsigned nqueues;         /* including queue 0 (hiprio for virtio-fs) */
	unsigned queue_size;      /* power of two */
	unsigned hiprio_size;     /* entries on queue 0, a power of two; 0: queue_size */
	size_t mem_size;          /* bytes of shared memory, rings included */
	bool no_event_idx;        /* do not negotiate EVENT_IDX even if offered */
	bool packed;              /* packed virtqueues (VIRTIO_F_RING_PACKED); start fails if not offered */
	bool want_shmem;          /* take the backend's shared-memory region 0 (F_SHMEM) as a DAX window */
	uint64_t max_window;      /* make the window at most this big (a multiple of 2 MiB); 0: the backend's size */
	/* Tests: a file made the dirty log, logging on from the start as QEMU has it during a migration (LOG_SHMFD,
	 * LOG_ALL, rings logged at their used ring); start fails if the backend lacks it. NULL: no logging. */
	const char *dirty_log;
};

/* The largest window we reserve address space for (vufsd's own bound). */
#define VU_FE_MAX_WINDOW (64ull << 30)

struct vu_fe_queue {
	pthread_mutex_t lock;     /* guards vq: submitters and the completion side */
	struct vq_driver vq;
	int kick_fd, call_fd, err_fd;
	unsigned num;
	void *desc, *driver, *device;  /* the ring's three parts, laid out for either layout */
	uint64_t desc_gpa, avail_gpa, used_gpa;
	uint32_t stop_base;       /* the backend's GET_VRING_BASE answer at vu_frontend_stop */
};

struct vu_frontend {
	int sock;
	int memfd;
	uint8_t *mem;
	size_t mem_size, mem_used; /* bump allocator over mem; under alloc_lock */
	pthread_mutex_t alloc_lock;
	uint64_t features, protocol_features;
	unsigned nqueues, queue_size, hiprio_size;
	char tag[37];             /* the device's tag from its config space (F_CONFIG), or "" */
	bool want_packed, want_shmem;
	uint64_t max_window;
	int log_fd;               /* the dirty log (-1: none), log_size bytes: one bit per page of mem */
	uint64_t log_size;
	/* The DAX window (window.base NULL: none) and the backend channel that maps into it. */
	struct shm_window window;
	struct vu_fe_backend be;
	struct vu_fe_queue q[VU_FE_MAX_QUEUES];
};

/* Connects to the backend's socket, creates and maps the shared memory, lays out the rings. */
int vu_frontend_connect(struct vu_frontend *fe, const char *socket_path, const struct vu_frontend_config *cfg);
/* Negotiates, sends the memory table and starts every queue. */
int vu_frontend_start(struct vu_frontend *fe);
/* Carves size bytes (aligned) out of shared memory; returns the host pointer and its guest address. */
void *vu_frontend_alloc(struct vu_frontend *fe, size_t size, size_t align, uint64_t *gpa);
static inline void *vu_frontend_host(const struct vu_frontend *fe, uint64_t gpa) { return fe->mem + gpa; }
/* Adds a chain to queue qi and kicks if the backend wants it. -ENOSPC when the ring is full. */
int vu_frontend_submit(struct vu_frontend *fe, unsigned qi, const struct vq_seg *segs, unsigned n_rd,
                       unsigned n_wr, void *token);
static inline bool vu_frontend_has_window(const struct vu_frontend *fe) { return fe->window.base != NULL; }
/* Stops the queues as QEMU does at shutdown (disable, GET_VRING_BASE) and drops every DAX mapping. */
void vu_frontend_stop(struct vu_frontend *fe);
void vu_frontend_close(struct vu_frontend *fe);

#endif

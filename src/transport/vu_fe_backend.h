/*
 * The VMM's side of the backend channel (SET_BACKEND_REQ_FD), as QEMU 11.1 serves it: the backend asks for file
 * ranges to be mapped into, or removed from, the device's shared-memory region 0 (the DAX window, a shm_window
 * here). Everything that arrives is hostile: a request that fails QEMU's checks (or ours: alignment, region
 * offset) is answered 1 and the channel stays open, as QEMU does; a message that cannot be framed closes it. Every
 * fd received is closed on every path (the window's mmap keeps its own reference).
 * One thread serves the channel; the counters are written by it only and read after it is joined.
 */
#ifndef VUFS_VU_FE_BACKEND_H
#define VUFS_VU_FE_BACKEND_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "transport/shm_window.h"

struct vu_fe_backend {
	int fd;                   /* our end of the channel, -1 when closed */
	int stop_fd;              /* eventfd: tells the thread to leave */
	struct shm_window *window;
	pthread_t thread;
	bool running;
	uint64_t maps, unmaps, failed;
};

/* Reads and answers one request from fd against w. 0: go on; negative errno: the channel must be closed. */
int vu_fe_backend_serve_one(int fd, struct shm_window *w, struct vu_fe_backend *stats);
/* Takes fd (closed by vu_fe_backend_stop) and starts the thread that serves it. */
int vu_fe_backend_start(struct vu_fe_backend *be, int fd, struct shm_window *w);
/* Stops the thread and closes the channel; safe on a backend channel never started. */
void vu_fe_backend_stop(struct vu_fe_backend *be);

#endif

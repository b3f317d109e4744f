/*
 * What the device offers the rooms above it. The FUSE server and the file system never see the transport; when
 * they need the device to act for them (map a file range into a shared-memory region for DAX, later: send a
 * notification the guest did not ask for) they call through this table, as Rust virtiofsd hands its backend
 * handle down to the file system. vufsd fills it from its vhost-user device (vu_dev_services: backend requests
 * on the backend channel); tests and vufs-mount from an in-process window (shm_window.h).
 * Every function returns 0 or a negative errno and may be called from any thread.
 */
#ifndef VUFS_DEV_SERVICES_H
#define VUFS_DEV_SERVICES_H

#include <stdbool.h>
#include <stdint.h>

struct dev_services {
	void *ctx;
	/* Bytes in shared-memory region shmid (0 = the virtio-fs cache window); 0 if there is none. */
	uint64_t (*shm_size)(void *ctx, uint8_t shmid);
	/* Maps len bytes of fd from fd_offset at shm_offset of region shmid, writable or read-only. The caller
	 * keeps fd; the device takes what it needs before returning. */
	int (*shm_map)(void *ctx, uint8_t shmid, int fd, uint64_t fd_offset, uint64_t shm_offset, uint64_t len,
	               bool writable);
	/* Removes the mapping that is exactly [shm_offset, shm_offset + len) of region shmid. */
	int (*shm_unmap)(void *ctx, uint8_t shmid, uint64_t shm_offset, uint64_t len);
};

#endif

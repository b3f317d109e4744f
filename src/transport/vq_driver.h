/*
 * The driver side of a split virtqueue, as the Linux virtio ring code does it: add buffers (by guest address),
 * publish them, collect what the device used. Used by vufs-mount and the test and bench clients.
 * The device is untrusted: used entries are checked against what we issued.
 * Not thread-safe: the caller holds the queue's lock.
 */
#ifndef VUFS_VQ_DRIVER_H
#define VUFS_VQ_DRIVER_H

#include <stdbool.h>
#include <stdint.h>

#include "transport/vring.h"

struct vq_seg {
	uint64_t gpa;
	uint32_t len;
};

struct vq_driver {
	struct vring_split r;
	bool event_idx;
	uint16_t free_head;     /* first free descriptor; our own list, never read back from shared memory */
	unsigned num_free;
	unsigned chains_out;    /* chains issued and not yet used: the most used->idx may move */
	uint16_t avail_idx;     /* our copy of avail->idx */
	uint16_t kicked_avail;  /* avail_idx at the last kick decision */
	uint16_t last_used;
	uint16_t *next;         /* free-list / chain links, private */
	uint16_t *chain_len;    /* descriptors per issued head */
	uint32_t *wr_capacity;  /* writable bytes per issued head */
	void **token;           /* caller's cookie per issued head; NULL = not issued */
};

/* The ring memory must be zeroed by the caller; num must be a power of two. */
int vq_driver_init(struct vq_driver *vq, const struct vring_split *r, bool event_idx);
void vq_driver_free(struct vq_driver *vq);
/* Adds one chain: n_rd device-readable segments then n_wr device-writable ones. -ENOSPC if it does not fit. */
int vq_driver_add(struct vq_driver *vq, const struct vq_seg *segs, unsigned n_rd, unsigned n_wr, void *token);
/* Whether the device wants a kick for what was added since the last call. */
bool vq_driver_kick_needed(struct vq_driver *vq);
/* Takes one used entry: 1 with *token and *len set, 0 if none, -EIO if the device broke the protocol. */
int vq_driver_get_used(struct vq_driver *vq, void **token, uint32_t *len);
/* Before sleeping: ask for an interrupt at the next used entry; true if entries arrived meanwhile. */
bool vq_driver_arm(struct vq_driver *vq);
unsigned vq_driver_in_flight(const struct vq_driver *vq);
/* The token of the chain issued at head (0 <= head < num), NULL if none: walks what is in flight. */
void *vq_driver_token(const struct vq_driver *vq, unsigned head);

#endif

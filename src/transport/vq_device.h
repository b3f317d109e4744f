/*
 * The device side of a split virtqueue: pop descriptor chains the driver made available, hand out their
 * buffers as iovecs, and return them on the used ring. Used by vufsd.
 * Not thread-safe: one thread pops; pushes and notifications are serialised by the caller (vu_queue's lock).
 */
#ifndef VUFS_VQ_DEVICE_H
#define VUFS_VQ_DEVICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "transport/guest_mem.h"
#include "transport/vring.h"

/* Most segments one chain may have (the Linux driver uses up to queue size; QEMU's queues are at most 1024). */
#define VQ_MAX_SEGS 1024u

/* One request: the device-readable segments first, then the device-writable ones. */
struct vq_chain {
	uint16_t head;
	unsigned n_rd, n_wr;
	size_t rd_len, wr_len;
	struct iovec iov[VQ_MAX_SEGS + 2];
};

static inline const struct iovec *vq_chain_rd(const struct vq_chain *c) { return c->iov; }
static inline const struct iovec *vq_chain_wr(const struct vq_chain *c) { return c->iov + c->n_rd; }

struct vq_device {
	struct vring_split r;
	const struct guest_mem *mem;
	bool event_idx;
	uint16_t last_avail;      /* next avail entry to read */
	uint16_t used_idx;        /* our copy of used->idx */
	uint16_t signalled_used;  /* used_idx when we last notified */
	bool signalled_valid;
};

enum vq_pop_result {
	VQ_EMPTY = 0,
	VQ_CHAIN = 1,        /* chain filled in */
};

/* Sets up the ring at host pointers already validated for num entries; reads used->idx as the start. */
void vq_device_init(struct vq_device *vq, const struct guest_mem *mem, const struct vring_split *r, bool event_idx,
                    uint16_t last_avail);
/*
 * Pops the next chain. Returns VQ_CHAIN, VQ_EMPTY, -EBADMSG for a malformed chain (chain->head is set: return it
 * with length 0 so the driver gets its buffer back), or -EIO when the ring itself is corrupt (the queue is broken).
 */
int vq_device_pop(struct vq_device *vq, struct vq_chain *chain);
void vq_device_push(struct vq_device *vq, uint16_t head, uint32_t len);
/* Before sleeping: ask for a kick at the next entry; returns true if entries arrived meanwhile. */
bool vq_device_arm(struct vq_device *vq);
/* After pushes: whether the driver wants an interrupt now. */
bool vq_device_need_notify(struct vq_device *vq);

#endif

/*
 * The device side of a virtqueue: pop descriptor chains the driver made available, hand out their buffers as
 * iovecs, and return them as used. Used by vufsd. One interface (struct vq_device and the vq_device_* calls
 * below) with one implementation per ring layout behind it: split (vq_device.c) and packed (vq_device_packed.c).
 * Every descriptor is read once, into a private copy, and checked before it is used.
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
	uint16_t head;            /* what push takes back: the head descriptor (split) or the buffer id (packed) */
	unsigned n_rd, n_wr;
	size_t rd_len, wr_len;
	struct iovec iov[VQ_MAX_SEGS + 2];
	uint64_t gpa[VQ_MAX_SEGS + 2];   /* the guest-physical address of each iov (the dirty log is kept in these) */
};

static inline const struct iovec *vq_chain_rd(const struct vq_chain *c) { return c->iov; }
static inline const struct iovec *vq_chain_wr(const struct vq_chain *c) { return c->iov + c->n_rd; }

enum vq_pop_result {
	VQ_EMPTY = 0,
	VQ_CHAIN = 1,        /* chain filled in */
};

struct vq_device;

/*
 * Dirty logging of the ring's own writes (used elements, used index, event suppression), for live migration.
 * The ring code reports each write it makes as a guest-physical range; mark decides whether logging is on.
 * Called from push and arm: the caller's serialisation of those (vu_queue's push_lock) covers mark too.
 */
#define VQ_LOG_NONE UINT64_MAX
struct vq_log {
	void (*mark)(void *opaque, uint64_t gpa, uint64_t len);   /* NULL: nothing is logged */
	void *opaque;
	uint64_t device_gpa;   /* split: the used ring; packed: the device event area (VQ_LOG_NONE: not logged) */
	uint64_t desc_gpa;     /* packed: the descriptor ring, written back as used (VQ_LOG_NONE: not logged) */
};

/* One ring layout. Each call is documented at its vq_device_* wrapper below. */
struct vq_device_ops {
	const char *name;
	int (*pop)(struct vq_device *vq, struct vq_chain *chain);
	void (*push)(struct vq_device *vq, uint16_t head, uint32_t len);
	bool (*arm)(struct vq_device *vq);
	bool (*need_notify)(struct vq_device *vq);
	bool (*has_pending)(const struct vq_device *vq);
	uint32_t (*base)(const struct vq_device *vq);
};

/* Split ring state (vq_device.c). */
struct vq_split_device {
	struct vring_split r;
	uint16_t last_avail;      /* next avail entry to read */
	uint16_t used_idx;        /* our copy of used->idx */
	uint16_t signalled_used;  /* used_idx when we last notified */
	bool signalled_valid;
};

/* Packed ring state (vq_device_packed.c). */
struct vq_packed_device {
	struct vring_packed r;
	uint16_t last_avail;      /* next descriptor slot to read ... */
	bool avail_wrap;          /* ... and the wrap counter it must carry */
	uint16_t used_idx;        /* next slot to write a used element ... */
	bool used_wrap;           /* ... and our used wrap counter */
	/* Slots pushed since the last notification check: the index before them is used_idx minus this, taken
	 * modulo 2^16 as Linux does with num_added. (A position remembered modulo num could not tell a whole lap
	 * of pushes from none, and would never notify a driver on a one-entry ring.) */
	uint16_t unsignalled;
	bool signalled_valid;
	/* Slots each buffer id in flight occupies on the ring (0: not in flight). Push skips that many; a driver
	 * that makes an id available twice breaks the ring. */
	uint16_t slots[VQ_MAX_SIZE];
};

struct vq_device {
	const struct vq_device_ops *ops;
	const struct guest_mem *mem;
	bool event_idx;
	uint64_t pushed;          /* chains returned since set-up (for tests and checks) */
	struct vq_log log;        /* none after vq_device_init*; vq_device_start sets the setup's */
	union {
		struct vq_split_device split;
		struct vq_packed_device packed;
	};
};

/* Where the frontend put a ring (SET_VRING_ADDR, in its address space) and how to start it. */
struct vq_device_setup {
	bool packed;
	unsigned num;
	uint64_t desc_ua;         /* descriptor table (split) or descriptor ring (packed) */
	uint64_t driver_ua;       /* avail ring (split) or driver event suppression area (packed) */
	uint64_t device_ua;       /* used ring (split) or device event suppression area (packed) */
	bool event_idx;
	uint32_t base;            /* the vring base: see vq_device_base */
	/* true: base is our own (vq_device_base after a pause of ours, chains still out): resume exactly there.
	 * false: the frontend's base (SET_VRING_BASE): requests it had taken and not returned are read again
	 * where the layout can tell (split: from used->idx). */
	bool resume;
	struct vq_log log;        /* dirty logging of the ring's writes (mark NULL: none) */
};

/*
 * Maps the ring through mem and starts it. -EFAULT when a part lies outside guest memory or is misaligned,
 * -EINVAL when the base does not fit the ring.
 */
int vq_device_start(struct vq_device *vq, const struct guest_mem *mem, const struct vq_device_setup *s);

/* Split ring at host pointers already validated for num entries; reads used->idx as the start. */
void vq_device_init(struct vq_device *vq, const struct guest_mem *mem, const struct vring_split *r, bool event_idx,
                    uint16_t last_avail);
/* Packed ring at host pointers already validated for num entries; base as vq_device_base returns it. resume:
 * the base is our own and the ids we still have out (vq was this packed ring before) stay out. -EINVAL when the
 * base names a slot beyond the ring. */
int vq_device_init_packed(struct vq_device *vq, const struct guest_mem *mem, const struct vring_packed *r,
                          bool event_idx, uint32_t base, bool resume);

/* For the ring implementations: reports a write of len bytes at offset off of the area at area_gpa. */
static inline void vq_log_write(const struct vq_device *vq, uint64_t area_gpa, uint64_t off, uint64_t len)
{
	if (vq->log.mark && area_gpa != VQ_LOG_NONE)
		vq->log.mark(vq->log.opaque, area_gpa + off, len);
}

/* For the ring implementations: adds one descriptor's buffer to c (0, or -EBADMSG: outside guest memory, too
 * many segments, or readable after writable). Zero-length buffers are skipped. */
int vq_chain_add(const struct guest_mem *mem, struct vq_chain *c, uint64_t addr, uint32_t len, bool writable);

/*
 * Pops the next chain. Returns VQ_CHAIN, VQ_EMPTY, -EBADMSG for a malformed chain (chain->head is set: return it
 * with length 0 so the driver gets its buffer back), or -EIO when the ring itself is corrupt (the queue is broken).
 */
static inline int vq_device_pop(struct vq_device *vq, struct vq_chain *chain)
{
	return vq->ops->pop(vq, chain);
}

/* Returns a popped chain (chain->head) with len bytes written. */
static inline void vq_device_push(struct vq_device *vq, uint16_t head, uint32_t len)
{
	vq->ops->push(vq, head, len);
	vq->pushed++;
}

/* Before sleeping: ask for a kick at the next entry; returns true if entries arrived meanwhile. */
static inline bool vq_device_arm(struct vq_device *vq)
{
	return vq->ops->arm(vq);
}

/* After pushes: whether the driver wants an interrupt now. */
static inline bool vq_device_need_notify(struct vq_device *vq)
{
	return vq->ops->need_notify(vq);
}

/* Whether the driver has made something available that we have not popped (busy polling; no side effects). */
static inline bool vq_device_has_pending(const struct vq_device *vq)
{
	return vq->ops->has_pending(vq);
}

/* The vring base for GET_VRING_BASE: split, the next avail index; packed, next avail slot | wrap << 15 and the
 * next used slot | wrap << 15 in the upper half (VRING_PACKED_BASE_INIT for a fresh ring). */
static inline uint32_t vq_device_base(const struct vq_device *vq)
{
	return vq->ops->base(vq);
}

#endif

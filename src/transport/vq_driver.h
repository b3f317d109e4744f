/*
 * The driver side of a virtqueue, as the Linux virtio ring code does it: add buffers (by guest address),
 * publish them, collect what the device used. Used by vufs-mount and the test and bench clients.
 * One interface (struct vq_driver and the vq_driver_* calls) with one implementation per ring layout behind it:
 * split (vq_driver.c) and packed (vq_driver_packed.c).
 * The device is untrusted: used entries are checked against what we issued.
 * Not thread-safe: the caller holds the queue's lock.
 */
#ifndef VUFS_VQ_DRIVER_H
#define VUFS_VQ_DRIVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "transport/vring.h"

struct vq_seg {
	uint64_t gpa;
	uint32_t len;
};

struct vq_driver;

/* One ring layout. Each call is documented at its vq_driver_* wrapper below. */
struct vq_driver_ops {
	const char *name;
	int (*add)(struct vq_driver *vq, const struct vq_seg *segs, unsigned n_rd, unsigned n_wr, void *token);
	bool (*kick_needed)(struct vq_driver *vq);
	int (*get_used)(struct vq_driver *vq, void **token, uint32_t *len);
	bool (*arm)(struct vq_driver *vq);
	bool (*has_used)(const struct vq_driver *vq);
};

/* Split ring state (vq_driver.c). */
struct vq_split_driver {
	struct vring_split r;
	uint16_t free_head;     /* first free descriptor; our own list, never read back from shared memory */
	uint16_t avail_idx;     /* our copy of avail->idx */
	uint16_t kicked_avail;  /* avail_idx at the last kick decision */
	uint16_t last_used;
	uint16_t *next;         /* free-list / chain links, private */
};

/* Packed ring state (vq_driver_packed.c). */
struct vq_packed_driver {
	struct vring_packed r;
	uint16_t next_avail;    /* next slot to fill ... */
	bool avail_wrap;        /* ... and our avail wrap counter */
	uint16_t last_used;     /* next slot the device writes a used element at ... */
	bool used_wrap;         /* ... and the wrap counter it carries */
	uint16_t added;         /* slots filled since the last kick decision */
	uint16_t free_id;       /* first free buffer id; free ids are linked through next_id */
	uint16_t *next_id;
};

struct vq_driver {
	const struct vq_driver_ops *ops;
	unsigned num;
	bool event_idx;
	unsigned num_free;      /* free descriptors (split) or slots (packed) */
	unsigned chains_out;    /* chains issued and not yet used */
	/* Per issued chain, indexed by head descriptor (split) or buffer id (packed): */
	uint16_t *chain_len;    /* descriptors (slots) it took */
	uint32_t *wr_capacity;  /* writable bytes */
	void **token;           /* caller's cookie; NULL = not issued */
	union {
		struct vq_split_driver split;
		struct vq_packed_driver packed;
	};
};

/* Where a frontend lays out a ring of num entries: the three parts and their sizes (the largest layout's, so a
 * ring placed before negotiation fits either). */
static inline uint64_t vq_driver_desc_bytes(unsigned num) { return vring_desc_bytes(num); }
static inline uint64_t vq_driver_driver_area_bytes(unsigned num) { return vring_avail_bytes(num); }
static inline uint64_t vq_driver_device_area_bytes(unsigned num) { return vring_used_bytes(num); }

/* Split ring. The ring memory must be zeroed by the caller; num must be a power of two. */
int vq_driver_init(struct vq_driver *vq, const struct vring_split *r, bool event_idx);
/* Packed ring, likewise; the first lap carries wrap counter 1 on both sides (VRING_PACKED_BASE_INIT). */
int vq_driver_init_packed(struct vq_driver *vq, const struct vring_packed *r, bool event_idx);
/* A ring of either layout from its three parts (desc, driver area, device area), as a frontend places them. */
int vq_driver_init_any(struct vq_driver *vq, bool packed, unsigned num, void *desc, void *driver, void *device,
                       bool event_idx);
void vq_driver_free(struct vq_driver *vq);
/* The vring base a frontend sends with SET_VRING_BASE for a ring just initialised. */
uint32_t vq_driver_base(const struct vq_driver *vq);

/* For the ring implementations: set-up of what every layout keeps, and the checks of a used entry (0 or -EIO). */
int vq_driver_common_init(struct vq_driver *vq, const struct vq_driver_ops *ops, unsigned num, bool event_idx);
int vq_driver_check_used(const struct vq_driver *vq, uint32_t id, uint32_t len);

/* Adds one chain: n_rd device-readable segments then n_wr device-writable ones. -ENOSPC if it does not fit. */
static inline int vq_driver_add(struct vq_driver *vq, const struct vq_seg *segs, unsigned n_rd, unsigned n_wr,
                                void *token)
{
	return vq->ops->add(vq, segs, n_rd, n_wr, token);
}

/* Whether the device wants a kick for what was added since the last call. */
static inline bool vq_driver_kick_needed(struct vq_driver *vq)
{
	return vq->ops->kick_needed(vq);
}

/* Takes one used entry: 1 with *token and *len set, 0 if none, -EIO if the device broke the protocol. */
static inline int vq_driver_get_used(struct vq_driver *vq, void **token, uint32_t *len)
{
	return vq->ops->get_used(vq, token, len);
}

/* Before sleeping: ask for an interrupt at the next used entry; true if entries arrived meanwhile. */
static inline bool vq_driver_arm(struct vq_driver *vq)
{
	return vq->ops->arm(vq);
}

/* Whether the device has returned something we have not taken (busy polling; no side effects). */
static inline bool vq_driver_has_used(const struct vq_driver *vq)
{
	return vq->ops->has_used(vq);
}

static inline unsigned vq_driver_in_flight(const struct vq_driver *vq)
{
	return vq->num - vq->num_free;
}

/* The token of the chain issued as id (0 <= id < num: head or buffer id), NULL if none. */
static inline void *vq_driver_token(const struct vq_driver *vq, unsigned id)
{
	return id < vq->num ? vq->token[id] : NULL;
}

/* Entries on the ring (the queue size). */
static inline unsigned vq_driver_num(const struct vq_driver *vq)
{
	return vq->num;
}

#endif

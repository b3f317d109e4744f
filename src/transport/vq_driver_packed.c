/*
 * The driver side of a packed virtqueue (virtio 1.1, 2.8), behind the vq_driver interface, as Linux's
 * virtio_ring.c does it: a chain's descriptors go to consecutive slots, all carrying its buffer id and our avail
 * wrap counter, the head's flags written last (release); the device writes used elements over them in its own
 * order, and we take each at our used slot, check its id and length, and skip the slots its chain took.
 * Buffer ids are ours: a free list, never read back from shared memory.
 */
#include "transport/vq_driver.h"

#include <errno.h>
#include <stdlib.h>

#include "common/log.h"

static const struct vq_driver_ops packed_ops;

int vq_driver_init_packed(struct vq_driver *vq, const struct vring_packed *r, bool event_idx)
{
	int rc = vq_driver_common_init(vq, &packed_ops, r->num, event_idx);
	if (rc < 0)
		return rc;
	struct vq_packed_driver *p = &vq->packed;
	p->r = *r;
	p->next_id = calloc(r->num, sizeof(*p->next_id));
	if (!p->next_id) {
		vq_driver_free(vq);
		return -ENOMEM;
	}
	for (unsigned i = 0; i < r->num; i++)
		p->next_id[i] = (uint16_t)(i + 1);
	p->avail_wrap = p->used_wrap = true; /* VRING_PACKED_BASE_INIT */
	store_once16(&p->r.driver->flags, VRING_PACKED_EVENT_FLAG_ENABLE);
	return 0;
}

static int packed_add(struct vq_driver *dv, const struct vq_seg *segs, unsigned n_rd, unsigned n_wr, void *token)
{
	struct vq_packed_driver *vq = &dv->packed;
	unsigned total = n_rd + n_wr;
	uint32_t capacity = 0;
	uint16_t head_flags = 0;

	if (total == 0 || !token)
		return -EINVAL;
	if (total > dv->num_free || vq->free_id >= dv->num)
		return -ENOSPC;
	uint16_t id = vq->free_id, head = vq->next_avail, i = head;
	bool wrap = vq->avail_wrap;
	vq->free_id = vq->next_id[id];
	for (unsigned k = 0; k < total; k++) {
		volatile struct vring_packed_desc *d = &vq->r.desc[i];
		uint16_t flags = (uint16_t)((k >= n_rd ? VRING_DESC_F_WRITE : 0) | (k + 1 < total ? VRING_DESC_F_NEXT : 0) |
		                            vring_packed_avail_flags(wrap));
		d->addr = segs[k].gpa;
		d->len = segs[k].len;
		d->id = id;
		if (k == 0)
			head_flags = flags;
		else
			store_once16(&d->flags, flags);
		if (k >= n_rd)
			capacity += segs[k].len;
		if (++i == dv->num) {
			i = 0;
			wrap = !wrap;
		}
	}
	vq->next_avail = i;
	vq->avail_wrap = wrap;
	vq->added = (uint16_t)(vq->added + total);
	dv->num_free -= total;
	dv->chains_out++;
	dv->chain_len[id] = (uint16_t)total;
	dv->wr_capacity[id] = capacity;
	dv->token[id] = token;
	store_release16(&vq->r.desc[head].flags, head_flags); /* the whole chain becomes available at once */
	return 0;
}

static bool packed_kick_needed(struct vq_driver *dv)
{
	struct vq_packed_driver *vq = &dv->packed;
	uint16_t added = vq->added, now = vq->next_avail;

	full_barrier(); /* the head's flags store before reading the device's suppression state */
	vq->added = 0;
	if (!added)
		return false;
	return vring_packed_event_wanted(vq->r.device, dv->event_idx, vq->avail_wrap, dv->num, now,
	                                 (uint16_t)(now - added), true);
}

static bool packed_has_used(const struct vq_driver *dv)
{
	const struct vq_packed_driver *vq = &dv->packed;
	return vring_packed_is_used(load_acquire16(&vq->r.desc[vq->last_used].flags), vq->used_wrap);
}

static int packed_get_used(struct vq_driver *dv, void **token, uint32_t *len)
{
	struct vq_packed_driver *vq = &dv->packed;
	volatile struct vring_packed_desc *d = &vq->r.desc[vq->last_used];

	if (!vring_packed_is_used(load_acquire16(&d->flags), vq->used_wrap))
		return 0;
	uint16_t id = load_once(&d->id);
	uint32_t n = load_once(&d->len);
	if (vq_driver_check_used(dv, id, n) < 0)
		return -EIO;
	unsigned slots = dv->chain_len[id];
	vq->last_used = (uint16_t)(vq->last_used + slots);
	if (vq->last_used >= dv->num) {
		vq->last_used = (uint16_t)(vq->last_used - dv->num);
		vq->used_wrap = !vq->used_wrap;
	}
	*token = dv->token[id];
	*len = n;
	dv->token[id] = NULL;
	vq->next_id[id] = vq->free_id;
	vq->free_id = id;
	dv->num_free += slots;
	dv->chains_out--;
	return 1;
}

static bool packed_arm(struct vq_driver *dv)
{
	struct vq_packed_driver *vq = &dv->packed;
	vring_packed_event_arm(vq->r.driver, dv->event_idx, vq->last_used, vq->used_wrap);
	return packed_has_used(dv);
}

static const struct vq_driver_ops packed_ops = {
	.name = "packed",
	.add = packed_add,
	.kick_needed = packed_kick_needed,
	.get_used = packed_get_used,
	.arm = packed_arm,
	.has_used = packed_has_used,
};

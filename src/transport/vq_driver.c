/*
 * The driver side of a split virtqueue (behind the vq_driver interface), and the parts every layout shares:
 * the per-chain records and the choice of layout.
 */
#include "transport/vq_driver.h"

#include <errno.h>
#include <stdlib.h>

#include "common/log.h"

static const struct vq_driver_ops split_ops;

/* The records every layout keeps per issued chain. */
int vq_driver_common_init(struct vq_driver *vq, const struct vq_driver_ops *ops, unsigned num, bool event_idx)
{
	if (!vring_valid_num(num))
		return -EINVAL;
	*vq = (struct vq_driver){ .ops = ops, .num = num, .event_idx = event_idx, .num_free = num };
	vq->chain_len = calloc(num, sizeof(*vq->chain_len));
	vq->wr_capacity = calloc(num, sizeof(*vq->wr_capacity));
	vq->token = calloc(num, sizeof(*vq->token));
	if (!vq->chain_len || !vq->wr_capacity || !vq->token) {
		vq_driver_free(vq);
		return -ENOMEM;
	}
	return 0;
}

int vq_driver_init(struct vq_driver *vq, const struct vring_split *r, bool event_idx)
{
	int rc = vq_driver_common_init(vq, &split_ops, r->num, event_idx);
	if (rc < 0)
		return rc;
	struct vq_split_driver *s = &vq->split;
	s->r = *r;
	s->next = calloc(r->num, sizeof(*s->next));
	if (!s->next) {
		vq_driver_free(vq);
		return -ENOMEM;
	}
	for (unsigned i = 0; i < r->num; i++)
		s->next[i] = (uint16_t)(i + 1);
	if (event_idx)
		store_once16(vring_used_event_ptr(&s->r), 0);
	return 0;
}

int vq_driver_init_any(struct vq_driver *vq, bool packed, unsigned num, void *desc, void *driver, void *device,
                       bool event_idx)
{
	if (packed)
		return vq_driver_init_packed(vq, &(struct vring_packed){ num, desc, driver, device }, event_idx);
	return vq_driver_init(vq, &(struct vring_split){ num, desc, driver, device }, event_idx);
}

void vq_driver_free(struct vq_driver *vq)
{
	if (vq->ops == &split_ops) {
		free(vq->split.next);
		vq->split.next = NULL;
	} else if (vq->ops) {
		free(vq->packed.next_id);
		vq->packed.next_id = NULL;
	}
	free(vq->chain_len);
	free(vq->wr_capacity);
	free(vq->token);
	vq->chain_len = NULL;
	vq->wr_capacity = NULL;
	vq->token = NULL;
}

uint32_t vq_driver_base(const struct vq_driver *vq)
{
	return vq->ops == &split_ops ? 0 : VRING_PACKED_BASE_INIT;
}

static int split_add(struct vq_driver *dv, const struct vq_seg *segs, unsigned n_rd, unsigned n_wr, void *token)
{
	struct vq_split_driver *vq = &dv->split;
	unsigned total = n_rd + n_wr;
	uint32_t capacity = 0;

	if (total == 0 || !token)
		return -EINVAL;
	if (total > dv->num_free)
		return -ENOSPC;
	uint16_t head = vq->free_head, i = head, last = head;
	for (unsigned k = 0; k < total; k++) {
		struct vring_desc *d = &vq->r.desc[i];
		d->addr = segs[k].gpa;
		d->len = segs[k].len;
		d->flags = (uint16_t)((k >= n_rd ? VRING_DESC_F_WRITE : 0) | (k + 1 < total ? VRING_DESC_F_NEXT : 0));
		d->next = vq->next[i];
		if (k >= n_rd)
			capacity += segs[k].len;
		last = i;
		i = vq->next[i];
	}
	vq->free_head = vq->next[last];
	dv->num_free -= total;
	dv->chains_out++;
	dv->chain_len[head] = (uint16_t)total;
	dv->wr_capacity[head] = capacity;
	dv->token[head] = token;
	store_once16(&vq->r.avail->ring[vq->avail_idx % vq->r.num], head);
	vq->avail_idx++;
	store_release16(&vq->r.avail->idx, vq->avail_idx);
	return 0;
}

static bool split_kick_needed(struct vq_driver *dv)
{
	struct vq_split_driver *vq = &dv->split;
	uint16_t old = vq->kicked_avail, now = vq->avail_idx;

	full_barrier(); /* avail->idx store before reading the device's suppression state */
	vq->kicked_avail = now;
	if (old == now)
		return false;
	if (dv->event_idx)
		return vring_need_event(load_once16(vring_avail_event_ptr(&vq->r)), now, old);
	return !(load_once16(&vq->r.used->flags) & VRING_USED_F_NO_NOTIFY);
}

static void free_chain(struct vq_driver *dv, uint16_t head)
{
	struct vq_split_driver *vq = &dv->split;
	uint16_t i = head;
	for (unsigned k = 1; k < dv->chain_len[head]; k++)
		i = vq->next[i];
	vq->next[i] = vq->free_head;
	vq->free_head = head;
	dv->num_free += dv->chain_len[head];
	dv->chains_out--;
	dv->token[head] = NULL;
}

/* The checks every layout makes of a used entry: an id we issued, no more bytes than it could take. */
int vq_driver_check_used(const struct vq_driver *vq, uint32_t id, uint32_t len)
{
	if (id >= vq->num || !vq->token[id]) {
		log_err("virtqueue: device returned descriptor %u that was never issued", id);
		return -EIO;
	}
	if (len > vq->wr_capacity[id]) {
		log_err("virtqueue: device wrote %u bytes into a %u-byte buffer", len, vq->wr_capacity[id]);
		return -EIO;
	}
	return 0;
}

static int split_get_used(struct vq_driver *dv, void **token, uint32_t *len)
{
	struct vq_split_driver *vq = &dv->split;
	uint16_t used_idx = load_acquire16(&vq->r.used->idx);
	uint16_t ready = (uint16_t)(used_idx - vq->last_used);

	if (ready == 0)
		return 0;
	if (ready > dv->chains_out) {
		log_err("virtqueue: device moved used index by %u with %u buffers out", ready, dv->chains_out);
		return -EIO;
	}
	struct vring_used_elem *e = &vq->r.used->ring[vq->last_used % vq->r.num];
	uint32_t id = __atomic_load_n(&e->id, __ATOMIC_RELAXED);
	uint32_t n = __atomic_load_n(&e->len, __ATOMIC_RELAXED);
	if (vq_driver_check_used(dv, id, n) < 0)
		return -EIO;
	vq->last_used++;
	*token = dv->token[id];
	*len = n;
	free_chain(dv, (uint16_t)id);
	return 1;
}

static bool split_has_used(const struct vq_driver *dv)
{
	return load_acquire16(&dv->split.r.used->idx) != dv->split.last_used;
}

static bool split_arm(struct vq_driver *dv)
{
	struct vq_split_driver *vq = &dv->split;
	if (dv->event_idx)
		store_once16(vring_used_event_ptr(&vq->r), vq->last_used);
	else
		store_once16(&vq->r.avail->flags, 0);
	full_barrier();
	return split_has_used(dv);
}

static const struct vq_driver_ops split_ops = {
	.name = "split",
	.add = split_add,
	.kick_needed = split_kick_needed,
	.get_used = split_get_used,
	.arm = split_arm,
	.has_used = split_has_used,
};

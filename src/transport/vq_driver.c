#include "transport/vq_driver.h"

#include <errno.h>
#include <stdlib.h>

#include "common/log.h"

int vq_driver_init(struct vq_driver *vq, const struct vring_split *r, bool event_idx)
{
	if (!vring_valid_num(r->num))
		return -EINVAL;
	*vq = (struct vq_driver){ .r = *r, .event_idx = event_idx, .num_free = r->num };
	vq->next = calloc(r->num, sizeof(*vq->next));
	vq->chain_len = calloc(r->num, sizeof(*vq->chain_len));
	vq->wr_capacity = calloc(r->num, sizeof(*vq->wr_capacity));
	vq->token = calloc(r->num, sizeof(*vq->token));
	if (!vq->next || !vq->chain_len || !vq->wr_capacity || !vq->token) {
		vq_driver_free(vq);
		return -ENOMEM;
	}
	for (unsigned i = 0; i < r->num; i++)
		vq->next[i] = (uint16_t)(i + 1);
	if (event_idx)
		store_once16(vring_used_event_ptr(&vq->r), 0);
	return 0;
}

void vq_driver_free(struct vq_driver *vq)
{
	free(vq->next);
	free(vq->chain_len);
	free(vq->wr_capacity);
	free(vq->token);
	vq->next = vq->chain_len = NULL;
	vq->wr_capacity = NULL;
	vq->token = NULL;
}

int vq_driver_add(struct vq_driver *vq, const struct vq_seg *segs, unsigned n_rd, unsigned n_wr, void *token)
{
	unsigned total = n_rd + n_wr;
	uint32_t capacity = 0;

	if (total == 0 || !token)
		return -EINVAL;
	if (total > vq->num_free)
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
	vq->num_free -= total;
	vq->chains_out++;
	vq->chain_len[head] = (uint16_t)total;
	vq->wr_capacity[head] = capacity;
	vq->token[head] = token;
	store_once16(&vq->r.avail->ring[vq->avail_idx % vq->r.num], head);
	vq->avail_idx++;
	store_release16(&vq->r.avail->idx, vq->avail_idx);
	return 0;
}

bool vq_driver_kick_needed(struct vq_driver *vq)
{
	uint16_t old = vq->kicked_avail, now = vq->avail_idx;

	full_barrier(); /* avail->idx store before reading the device's suppression state */
	vq->kicked_avail = now;
	if (old == now)
		return false;
	if (vq->event_idx)
		return vring_need_event(load_once16(vring_avail_event_ptr(&vq->r)), now, old);
	return !(load_once16(&vq->r.used->flags) & VRING_USED_F_NO_NOTIFY);
}

static void free_chain(struct vq_driver *vq, uint16_t head)
{
	uint16_t i = head;
	for (unsigned k = 1; k < vq->chain_len[head]; k++)
		i = vq->next[i];
	vq->next[i] = vq->free_head;
	vq->free_head = head;
	vq->num_free += vq->chain_len[head];
	vq->chains_out--;
	vq->token[head] = NULL;
}

int vq_driver_get_used(struct vq_driver *vq, void **token, uint32_t *len)
{
	uint16_t used_idx = load_acquire16(&vq->r.used->idx);
	uint16_t ready = (uint16_t)(used_idx - vq->last_used);

	if (ready == 0)
		return 0;
	if (ready > vq->chains_out) {
		log_err("virtqueue: device moved used index by %u with %u buffers out", ready, vq->chains_out);
		return -EIO;
	}
	struct vring_used_elem *e = &vq->r.used->ring[vq->last_used % vq->r.num];
	uint32_t id = __atomic_load_n(&e->id, __ATOMIC_RELAXED);
	uint32_t n = __atomic_load_n(&e->len, __ATOMIC_RELAXED);
	if (id >= vq->r.num || !vq->token[id]) {
		log_err("virtqueue: device returned descriptor %u that was never issued", id);
		return -EIO;
	}
	if (n > vq->wr_capacity[id]) {
		log_err("virtqueue: device wrote %u bytes into a %u-byte buffer", n, vq->wr_capacity[id]);
		return -EIO;
	}
	vq->last_used++;
	*token = vq->token[id];
	*len = n;
	free_chain(vq, (uint16_t)id);
	return 1;
}

bool vq_driver_arm(struct vq_driver *vq)
{
	if (vq->event_idx)
		store_once16(vring_used_event_ptr(&vq->r), vq->last_used);
	else
		store_once16(&vq->r.avail->flags, 0);
	full_barrier();
	return load_acquire16(&vq->r.used->idx) != vq->last_used;
}

unsigned vq_driver_in_flight(const struct vq_driver *vq)
{
	return vq->r.num - vq->num_free;
}

void *vq_driver_token(const struct vq_driver *vq, unsigned head)
{
	return head < vq->r.num ? vq->token[head] : NULL;
}

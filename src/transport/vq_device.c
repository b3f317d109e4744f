#include "transport/vq_device.h"

#include <errno.h>

#include "common/log.h"
#include "common/util.h"

void vq_device_init(struct vq_device *vq, const struct guest_mem *mem, const struct vring_split *r, bool event_idx,
                    uint16_t last_avail)
{
	vq->r = *r;
	vq->mem = mem;
	vq->event_idx = event_idx;
	vq->used_idx = load_once16(&r->used->idx);
	/* Requests in flight when the previous owner stopped are lost unless we read them again. */
	vq->last_avail = last_avail != vq->used_idx ? vq->used_idx : last_avail;
	vq->signalled_valid = false;
}

/* Walk state: where descriptors come from (the ring's table or one indirect table) and what we have taken. */
struct walk {
	const struct vring_desc *table;
	unsigned table_len;
	unsigned visited;
};

static int add_segment(struct vq_device *vq, struct vq_chain *c, const struct vring_desc *d)
{
	unsigned used = c->n_rd + c->n_wr;
	bool writable = d->flags & VRING_DESC_F_WRITE;
	int n;

	if (!writable && c->n_wr > 0)
		return -EBADMSG; /* readable after writable: the spec forbids it and we would mis-frame the request */
	if (d->len == 0)
		return 0;
	n = gm_gpa_iov(vq->mem, d->addr, d->len, &c->iov[used], VQ_MAX_SEGS - used);
	if (n < 0)
		return -EBADMSG;
	if (writable) {
		c->n_wr += (unsigned)n;
		c->wr_len += d->len;
	} else {
		c->n_rd += (unsigned)n;
		c->rd_len += d->len;
	}
	return 0;
}

/* Follows one chain of descriptors in w->table starting at index i. */
static int walk_table(struct vq_device *vq, struct vq_chain *c, struct walk *w, unsigned i, bool indirect)
{
	for (;;) {
		struct vring_desc d;
		if (i >= w->table_len || ++w->visited > w->table_len)
			return -EBADMSG; /* out of range, or a loop */
		d = w->table[i];  /* one copy: the driver may rewrite the table under us */
		__atomic_signal_fence(__ATOMIC_SEQ_CST);
		if (d.flags & VRING_DESC_F_INDIRECT) {
			if (indirect || (d.flags & VRING_DESC_F_NEXT) || d.len == 0 || d.len % sizeof(struct vring_desc))
				return -EBADMSG;
			struct walk inner = { .table_len = d.len / sizeof(struct vring_desc) };
			if (inner.table_len > VQ_MAX_SEGS)
				return -EBADMSG;
			inner.table = gm_gpa_ptr(vq->mem, d.addr, d.len);
			if (!inner.table)
				return -EBADMSG;
			return walk_table(vq, c, &inner, 0, true);
		}
		int rc = add_segment(vq, c, &d);
		if (rc < 0)
			return rc;
		if (!(d.flags & VRING_DESC_F_NEXT))
			return 0;
		i = d.next;
	}
}

int vq_device_pop(struct vq_device *vq, struct vq_chain *chain)
{
	struct vring_split *r = &vq->r;
	uint16_t avail_idx = load_acquire16(&r->avail->idx);
	uint16_t pending = (uint16_t)(avail_idx - vq->last_avail);

	if (pending == 0)
		return VQ_EMPTY;
	if (pending > r->num) {
		log_err("virtqueue: avail index jumped by %u (queue size %u)", pending, r->num);
		return -EIO;
	}
	uint16_t head = load_once16(&r->avail->ring[vq->last_avail % r->num]);
	if (head >= r->num) {
		log_err("virtqueue: avail ring names descriptor %u (queue size %u)", head, r->num);
		return -EIO;
	}
	vq->last_avail++;
	chain->head = head;
	chain->n_rd = chain->n_wr = 0;
	chain->rd_len = chain->wr_len = 0;
	struct walk w = { .table = r->desc, .table_len = r->num };
	if (walk_table(vq, chain, &w, head, false) < 0) {
		log_warn("virtqueue: dropping malformed descriptor chain at head %u", head);
		return -EBADMSG;
	}
	return VQ_CHAIN;
}

void vq_device_push(struct vq_device *vq, uint16_t head, uint32_t len)
{
	struct vring_used_elem *e = &vq->r.used->ring[vq->used_idx % vq->r.num];
	__atomic_store_n(&e->id, head, __ATOMIC_RELAXED);
	__atomic_store_n(&e->len, len, __ATOMIC_RELAXED);
	vq->used_idx++;
	store_release16(&vq->r.used->idx, vq->used_idx);
}

bool vq_device_arm(struct vq_device *vq)
{
	if (vq->event_idx)
		store_once16(vring_avail_event_ptr(&vq->r), vq->last_avail);
	else
		store_once16(&vq->r.used->flags, 0);
	full_barrier();
	return load_acquire16(&vq->r.avail->idx) != vq->last_avail;
}

bool vq_device_need_notify(struct vq_device *vq)
{
	uint16_t old = vq->signalled_used, now = vq->used_idx;
	bool valid = vq->signalled_valid;

	full_barrier(); /* our used->idx store before reading the driver's suppression state */
	vq->signalled_used = now;
	vq->signalled_valid = true;
	if (!vq->event_idx)
		return !(load_once16(&vq->r.avail->flags) & VRING_AVAIL_F_NO_INTERRUPT);
	if (!valid)
		return true;
	return vring_need_event(load_once16(vring_used_event_ptr(&vq->r)), now, old);
}

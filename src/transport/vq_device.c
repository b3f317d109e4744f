/*
 * The device side of a split virtqueue (behind the vq_device interface), and vq_device_start, which picks the
 * layout.
 */
#include "transport/vq_device.h"

#include <errno.h>
#include <stddef.h>

#include "common/log.h"
#include "common/util.h"

static const struct vq_device_ops split_ops;

void vq_device_init(struct vq_device *vq, const struct guest_mem *mem, const struct vring_split *r, bool event_idx,
                    uint16_t last_avail)
{
	struct vq_split_device *s = &vq->split;
	vq->ops = &split_ops;
	vq->mem = mem;
	vq->event_idx = event_idx;
	vq->pushed = 0;
	vq->log = (struct vq_log){ .device_gpa = VQ_LOG_NONE, .desc_gpa = VQ_LOG_NONE };
	s->r = *r;
	s->used_idx = load_once16(&r->used->idx);
	/* Requests in flight when the previous owner stopped are lost unless we read them again. */
	s->last_avail = last_avail != s->used_idx ? s->used_idx : last_avail;
	s->signalled_valid = false;
}

int vq_device_start(struct vq_device *vq, const struct guest_mem *mem, const struct vq_device_setup *st)
{
	if (st->packed) {
		struct vring_packed r = { .num = st->num };
		r.desc = gm_uaddr_ptr(mem, st->desc_ua, vring_packed_desc_bytes(st->num));
		r.driver = gm_uaddr_ptr(mem, st->driver_ua, VRING_PACKED_EVENT_BYTES);
		r.device = gm_uaddr_ptr(mem, st->device_ua, VRING_PACKED_EVENT_BYTES);
		if (!r.desc || !r.driver || !r.device || ((uintptr_t)r.desc & 15) || ((uintptr_t)r.driver & 3) ||
		    ((uintptr_t)r.device & 3))
			return -EFAULT;
		/* Our own base carries everything; the frontend's cannot be reconciled with anything on a packed
		 * ring (used elements overwrite the descriptors they return): it is taken as given either way. */
		int rc = vq_device_init_packed(vq, mem, &r, st->event_idx, st->base, st->resume);
		if (rc == 0)
			vq->log = st->log;
		return rc;
	}
	struct vring_split r = { .num = st->num };
	if (st->base > 0xffff)
		return -EINVAL;
	r.desc = gm_uaddr_ptr(mem, st->desc_ua, vring_desc_bytes(st->num));
	r.avail = gm_uaddr_ptr(mem, st->driver_ua, vring_avail_bytes(st->num));
	r.used = gm_uaddr_ptr(mem, st->device_ua, vring_used_bytes(st->num));
	if (!r.desc || !r.avail || !r.used || ((uintptr_t)r.desc & 15) || ((uintptr_t)r.avail & 1) ||
	    ((uintptr_t)r.used & 3))
		return -EFAULT;
	vq_device_init(vq, mem, &r, st->event_idx, (uint16_t)st->base);
	/* vq_device_init takes requests popped but not returned as lost, which is right for a frontend's base.
	 * After our own pause, deferred requests (SETLKW) are still out and will be returned: keep our place. */
	if (st->resume)
		vq->split.last_avail = (uint16_t)st->base;
	vq->log = st->log;
	return 0;
}

/* Walk state: where descriptors come from (the ring's table or one indirect table) and what we have taken. */
struct walk {
	const struct vring_desc *table;
	unsigned table_len;
	unsigned visited;
};

int vq_chain_add(const struct guest_mem *mem, struct vq_chain *c, uint64_t addr, uint32_t len, bool writable)
{
	unsigned used = c->n_rd + c->n_wr;
	int n;

	if (!writable && c->n_wr > 0)
		return -EBADMSG; /* readable after writable: the spec forbids it and we would mis-frame the request */
	if (len == 0)
		return 0;
	n = gm_gpa_iov(mem, addr, len, &c->iov[used], VQ_MAX_SEGS - used);
	if (n < 0)
		return -EBADMSG;
	for (int k = 0; k < n; k++) {
		c->gpa[used + k] = addr;
		addr += c->iov[used + k].iov_len;
	}
	if (writable) {
		c->n_wr += (unsigned)n;
		c->wr_len += len;
	} else {
		c->n_rd += (unsigned)n;
		c->rd_len += len;
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
		int rc = vq_chain_add(vq->mem, c, d.addr, d.len, d.flags & VRING_DESC_F_WRITE);
		if (rc < 0)
			return rc;
		if (!(d.flags & VRING_DESC_F_NEXT))
			return 0;
		i = d.next;
	}
}

static int split_pop(struct vq_device *dev, struct vq_chain *chain)
{
	struct vq_split_device *vq = &dev->split;
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
	if (walk_table(dev, chain, &w, head, false) < 0) {
		log_warn("virtqueue: dropping malformed descriptor chain at head %u", head);
		return -EBADMSG;
	}
	return VQ_CHAIN;
}

static void split_push(struct vq_device *dev, uint16_t head, uint32_t len)
{
	struct vq_split_device *vq = &dev->split;
	unsigned slot = vq->used_idx % vq->r.num;
	struct vring_used_elem *e = &vq->r.used->ring[slot];
	__atomic_store_n(&e->id, head, __ATOMIC_RELAXED);
	__atomic_store_n(&e->len, len, __ATOMIC_RELAXED);
	vq->used_idx++;
	store_release16(&vq->r.used->idx, vq->used_idx);
	vq_log_write(dev, dev->log.device_gpa, offsetof(struct vring_used, ring) + slot * sizeof(*e), sizeof(*e));
	vq_log_write(dev, dev->log.device_gpa, offsetof(struct vring_used, idx), sizeof(uint16_t));
}

static bool split_arm(struct vq_device *dev)
{
	struct vq_split_device *vq = &dev->split;
	if (dev->event_idx) {
		store_once16(vring_avail_event_ptr(&vq->r), vq->last_avail);
		vq_log_write(dev, dev->log.device_gpa,
		             offsetof(struct vring_used, ring) + vq->r.num * sizeof(struct vring_used_elem), sizeof(uint16_t));
	} else {
		store_once16(&vq->r.used->flags, 0);
		vq_log_write(dev, dev->log.device_gpa, offsetof(struct vring_used, flags), sizeof(uint16_t));
	}
	full_barrier();
	return load_acquire16(&vq->r.avail->idx) != vq->last_avail;
}

static bool split_need_notify(struct vq_device *dev)
{
	struct vq_split_device *vq = &dev->split;
	uint16_t old = vq->signalled_used, now = vq->used_idx;
	bool valid = vq->signalled_valid;

	full_barrier(); /* our used->idx store before reading the driver's suppression state */
	vq->signalled_used = now;
	vq->signalled_valid = true;
	if (!dev->event_idx)
		return !(load_once16(&vq->r.avail->flags) & VRING_AVAIL_F_NO_INTERRUPT);
	if (!valid)
		return true;
	return vring_need_event(load_once16(vring_used_event_ptr(&vq->r)), now, old);
}

static bool split_has_pending(const struct vq_device *dev)
{
	return load_acquire16(&dev->split.r.avail->idx) != dev->split.last_avail;
}

static uint32_t split_base(const struct vq_device *dev)
{
	return dev->split.last_avail;
}

static const struct vq_device_ops split_ops = {
	.name = "split",
	.pop = split_pop,
	.push = split_push,
	.arm = split_arm,
	.need_notify = split_need_notify,
	.has_pending = split_has_pending,
	.base = split_base,
};

/*
 * The device side of a packed virtqueue (virtio 1.1, 2.8), behind the vq_device interface. The driver makes a
 * chain available by writing its descriptors at consecutive slots of the one ring, the head's flags last; we
 * write each used element over the slots the chain took, in completion order, and skip that many slots. Which
 * lap a slot belongs to is told by the AVAIL/USED flag bits against each side's wrap counter.
 * Every descriptor is copied once (flags first, with acquire) and checked: a chain may not be longer than the
 * ring, its buffer id must be in range and not already in flight, INDIRECT follows the split rules.
 */
#include "transport/vq_device.h"

#include <errno.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"

static const struct vq_device_ops packed_ops;

int vq_device_init_packed(struct vq_device *vq, const struct guest_mem *mem, const struct vring_packed *r,
                          bool event_idx, uint32_t base, bool resume)
{
	struct vq_packed_device *p = &vq->packed;
	uint16_t avail = base & 0x7fff, used = (base >> 16) & 0x7fff;

	if (!vring_valid_num(r->num) || avail >= r->num || used >= r->num)
		return -EINVAL;
	/* Our own pause keeps the ids still out (deferred chains) so that their pushes skip the right slots. */
	if (!resume || vq->ops != &packed_ops)
		memset(p->slots, 0, sizeof(p->slots));
	vq->ops = &packed_ops;
	vq->mem = mem;
	vq->event_idx = event_idx;
	vq->pushed = 0;
	vq->log = (struct vq_log){ .device_gpa = VQ_LOG_NONE, .desc_gpa = VQ_LOG_NONE };
	p->r = *r;
	p->last_avail = avail;
	p->avail_wrap = base & VRING_PACKED_WRAP;
	p->used_idx = used;
	p->used_wrap = (base >> 16) & VRING_PACKED_WRAP;
	p->unsignalled = 0;
	p->signalled_valid = false;
	return 0;
}

/* Follows an indirect table of n descriptors at gpa (entries in order; NEXT and id are not used there). */
static int walk_indirect(const struct vq_device *vq, struct vq_chain *c, uint64_t gpa, uint32_t len)
{
	if (len == 0 || len % sizeof(struct vring_packed_desc) || len / sizeof(struct vring_packed_desc) > VQ_MAX_SEGS)
		return -EBADMSG;
	const volatile struct vring_packed_desc *t = gm_gpa_ptr(vq->mem, gpa, len);
	if (!t)
		return -EBADMSG;
	for (unsigned k = 0; k < len / sizeof(*t); k++) {
		uint16_t flags = load_once(&t[k].flags);
		uint64_t addr = load_once(&t[k].addr);
		uint32_t n = load_once(&t[k].len);
		if (flags & VRING_DESC_F_INDIRECT)
			return -EBADMSG;
		int rc = vq_chain_add(vq->mem, c, addr, n, flags & VRING_DESC_F_WRITE);
		if (rc < 0)
			return rc;
	}
	return 0;
}

static int packed_pop(struct vq_device *dev, struct vq_chain *c)
{
	struct vq_packed_device *vq = &dev->packed;
	unsigned num = vq->r.num, n = 0;
	uint16_t i = vq->last_avail, id = 0;
	bool wrap = vq->avail_wrap;
	int bad = 0;

	c->n_rd = c->n_wr = 0;
	c->rd_len = c->wr_len = 0;
	for (;;) {
		volatile struct vring_packed_desc *d = &vq->r.desc[i];
		uint16_t flags = load_acquire16(&d->flags);
		if (!vring_packed_is_avail(flags, wrap)) {
			if (n == 0)
				return VQ_EMPTY;
			/* The head was made available last: every later descriptor of the chain must be available too. */
			log_err("virtqueue: packed chain at slot %u is unfinished", vq->last_avail);
			return -EIO;
		}
		if (++n > num) {
			log_err("virtqueue: packed chain at slot %u is longer than the queue (%u)", vq->last_avail, num);
			return -EIO;
		}
		uint64_t addr = load_once(&d->addr);
		uint32_t len = load_once(&d->len);
		id = load_once(&d->id);
		if (++i == num) {
			i = 0;
			wrap = !wrap;
		}
		if (!bad && (flags & VRING_DESC_F_INDIRECT))
			bad = (flags & VRING_DESC_F_NEXT) ? -EBADMSG : walk_indirect(dev, c, addr, len);
		else if (!bad)
			bad = vq_chain_add(dev->mem, c, addr, len, flags & VRING_DESC_F_WRITE);
		if (!(flags & VRING_DESC_F_NEXT))
			break;
	}
	if (id >= num || vq->slots[id]) {
		log_err("virtqueue: packed chain names buffer id %u (%s)", id,
		        id >= num ? "out of range" : "already in flight");
		return -EIO;
	}
	vq->slots[id] = (uint16_t)n;
	vq->last_avail = i;
	vq->avail_wrap = wrap;
	c->head = id;
	if (bad) {
		log_warn("virtqueue: dropping malformed descriptor chain with buffer id %u", id);
		return -EBADMSG;
	}
	return VQ_CHAIN;
}

static void packed_push(struct vq_device *dev, uint16_t id, uint32_t len)
{
	struct vq_packed_device *vq = &dev->packed;
	volatile struct vring_packed_desc *d = &vq->r.desc[vq->used_idx];
	unsigned n = id < vq->r.num && vq->slots[id] ? vq->slots[id] : 1;

	__atomic_store_n(&d->id, id, __ATOMIC_RELAXED);
	__atomic_store_n(&d->len, len, __ATOMIC_RELAXED);
	store_release16(&d->flags, vring_packed_used_flags(vq->used_wrap));
	vq_log_write(dev, dev->log.desc_gpa, (uint64_t)vq->used_idx * sizeof(*d), sizeof(*d));
	if (id < vq->r.num)
		vq->slots[id] = 0;
	vq->used_idx = (uint16_t)(vq->used_idx + n);
	vq->unsignalled = (uint16_t)(vq->unsignalled + n);
	if (vq->used_idx >= vq->r.num) {
		vq->used_idx = (uint16_t)(vq->used_idx - vq->r.num);
		vq->used_wrap = !vq->used_wrap;
	}
}

static bool packed_has_pending(const struct vq_device *dev)
{
	const struct vq_packed_device *vq = &dev->packed;
	return vring_packed_is_avail(load_acquire16(&vq->r.desc[vq->last_avail].flags), vq->avail_wrap);
}

static bool packed_arm(struct vq_device *dev)
{
	struct vq_packed_device *vq = &dev->packed;
	vring_packed_event_arm(vq->r.device, dev->event_idx, vq->last_avail, vq->avail_wrap);
	vq_log_write(dev, dev->log.device_gpa, 0, VRING_PACKED_EVENT_BYTES);
	return packed_has_pending(dev);
}

static bool packed_need_notify(struct vq_device *dev)
{
	struct vq_packed_device *vq = &dev->packed;
	uint16_t now = vq->used_idx, old = (uint16_t)(now - vq->unsignalled);
	bool valid = vq->signalled_valid;

	full_barrier(); /* our used flags store before reading the driver's suppression state */
	vq->unsignalled = 0;
	vq->signalled_valid = true;
	return vring_packed_event_wanted(vq->r.driver, dev->event_idx, vq->used_wrap, vq->r.num, now, old, valid);
}

static uint32_t packed_base(const struct vq_device *dev)
{
	const struct vq_packed_device *vq = &dev->packed;
	uint32_t avail = vq->last_avail | (vq->avail_wrap ? VRING_PACKED_WRAP : 0);
	uint32_t used = vq->used_idx | (vq->used_wrap ? VRING_PACKED_WRAP : 0);
	return avail | used << 16;
}

static const struct vq_device_ops packed_ops = {
	.name = "packed",
	.pop = packed_pop,
	.push = packed_push,
	.arm = packed_arm,
	.need_notify = packed_need_notify,
	.has_pending = packed_has_pending,
	.base = packed_base,
};

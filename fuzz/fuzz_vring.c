/*
 * libFuzzer harness: the device side of a virtqueue, split or packed (vq_device_pop and its descriptor-chain
 * walkers, push, notification suppression, the vring base) on a ring and a guest memory filled from the input.
 *
 * Input (missing bytes read as 0):
 *   u8  log2 of the queue size (mod 9: 1..256)
 *   u8  flags: bit0 EVENT_IDX; bit1 a second memory region; bit2 the second region right after the first
 *       (chains may then cross from one to the other); bit3 the first region at the top of the 64-bit space;
 *       bit4 the same for the second region; bit5 the packed layout
 *   u16 last_avail as the previous owner left it, u16 used->idx (packed: the two halves of the vring base, the
 *       slot taken modulo the queue size, bit 15 the wrap counter)
 *   u32 gpa of region 0, u16 its size - 1 (mod 4096), u32 gpa of region 1, u16 its size - 1 (mod 4096)
 *   8 bytes: used lengths to push (cycled)
 *   split: the descriptor table (16 * num), the avail ring (flags, idx, ring[num], used_event);
 *   packed: the descriptor ring (16 * num), the driver event suppression area (4)
 *   the contents of region 0, then of region 1
 * The table, the rings and each region are exact-size heap blocks (ASan sees any access outside them); the
 * guest memory table is filled in directly, as gm_add would, with the same rules (no overflow, no overlap).
 *
 * Pops until the ring is empty or broken (at most 2 * num + 4 times). Checked for every chain: its head is in
 * the table, it has at most VQ_MAX_SEGS segments, none empty, each inside one region, readable ones first, and
 * rd_len / wr_len are the sums of their lengths; a malformed chain still names a head in the table. Each chain
 * (malformed ones with length 0) is pushed back, and used->idx and the used element are checked. Packed: a chain
 * moves the avail slot forward (wrapping with the counter), a broken ring or an empty pop moves nothing, the used
 * element lands at the used slot with the right id, length and flags, and has_pending agrees with pop.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "transport/guest_mem.h"
#include "transport/vq_device.h"
#include "transport/vring.h"

#define CHECK(cond, ...)                                                                                        \
	do {                                                                                                    \
		if (!(cond)) {                                                                                  \
			fprintf(stderr, "fuzz_vring: invariant failed: %s: ", #cond);                           \
			fprintf(stderr, __VA_ARGS__);                                                           \
			fputc('\n', stderr);                                                                    \
			abort();                                                                                \
		}                                                                                               \
	} while (0)

struct in {
	const uint8_t *p;
	size_t n;
};

static void take(struct in *in, void *dst, size_t len)
{
	size_t k = in->n < len ? in->n : len;
	memcpy(dst, in->p, k);
	memset((uint8_t *)dst + k, 0, len - k);
	in->p += k;
	in->n -= k;
}

static uint8_t u8(struct in *in)
{
	uint8_t v;
	take(in, &v, 1);
	return v;
}

static uint16_t u16(struct in *in)
{
	uint8_t b[2];
	take(in, b, 2);
	return (uint16_t)(b[0] | b[1] << 8);
}

static uint32_t u32(struct in *in)
{
	uint8_t b[4];
	take(in, b, 4);
	return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

static void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p)
		abort();
	return p;
}

static bool overlap(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	return a < b + blen && b < a + alen;
}

/* Whether [p, p+len) lies inside one region's host memory. */
static bool in_one_region(const struct guest_mem *gm, const void *p, size_t len)
{
	const uint8_t *b = p;
	for (unsigned i = 0; i < gm->n; i++) {
		const uint8_t *h = gm->r[i].host;
		if (b >= h && b <= h + gm->r[i].size && len <= (size_t)(h + gm->r[i].size - b))
			return true;
	}
	return false;
}

static struct vq_chain chain; /* big: keep it off the stack */

/* Checks a popped chain's segments; returns the length to push back (push_len * 16, at most its writable part). */
static uint32_t check_chain(const struct guest_mem *gm, uint8_t push_len)
{
	size_t rd = 0, wr = 0;
	CHECK(chain.n_rd + chain.n_wr <= VQ_MAX_SEGS, "%u + %u segments", chain.n_rd, chain.n_wr);
	for (unsigned i = 0; i < chain.n_rd + chain.n_wr; i++) {
		const struct iovec *v = &chain.iov[i];
		CHECK(v->iov_len > 0, "empty segment %u", i);
		CHECK(in_one_region(gm, v->iov_base, v->iov_len), "segment %u (%p, %zu) is outside guest memory", i,
		      v->iov_base, v->iov_len);
		/* touch it as a request handler would: ASan checks the bounds */
		volatile uint8_t *b = v->iov_base;
		(void)b[0];
		(void)b[v->iov_len - 1];
		if (i < chain.n_rd)
			rd += v->iov_len;
		else
			wr += v->iov_len;
	}
	CHECK(rd == chain.rd_len && wr == chain.wr_len, "lengths %zu/%zu, chain says %zu/%zu", rd, wr, chain.rd_len,
	      chain.wr_len);
	CHECK(vq_chain_rd(&chain) == chain.iov && vq_chain_wr(&chain) == chain.iov + chain.n_rd, "chain accessors");
	uint32_t len = (uint32_t)push_len * 16u;
	return len > chain.wr_len ? (uint32_t)chain.wr_len : len;
}

static struct vq_device vq;

/* Split: pops until empty or broken, checking indexes and the used ring. */
static void run_split(const struct guest_mem *gm, struct vring_split *r, unsigned num, bool event_idx,
                      uint16_t last_avail, uint16_t used_idx0, const uint8_t *push_lens)
{
	vq_device_init(&vq, gm, r, event_idx, last_avail);
	CHECK(vq.split.used_idx == used_idx0, "used_idx %u, ring says %u", vq.split.used_idx, used_idx0);
	unsigned pushes = 0;
	for (unsigned iter = 0; iter < 2 * num + 4; iter++) {
		uint16_t before = vq.split.last_avail;
		bool pending = vq_device_has_pending(&vq);
		int rc = vq_device_pop(&vq, &chain);
		if (rc == VQ_EMPTY) {
			CHECK(!pending, "has_pending said yes, pop found nothing");
			CHECK(vq.split.last_avail == before, "an empty pop moved last_avail");
			vq_device_arm(&vq);
			break;
		}
		CHECK(pending, "pop found something has_pending did not");
		if (rc == -EIO) {
			CHECK(vq.split.last_avail == before, "a broken ring moved last_avail");
			break;
		}
		CHECK(rc == VQ_CHAIN || rc == -EBADMSG, "pop returned %d", rc);
		CHECK(vq.split.last_avail == (uint16_t)(before + 1), "last_avail %u after %u", vq.split.last_avail, before);
		CHECK(vq_device_base(&vq) == vq.split.last_avail, "base");
		CHECK(chain.head < num, "head %u in a queue of %u", chain.head, num);
		uint32_t len = rc == VQ_CHAIN ? check_chain(gm, push_lens[pushes % 8]) : 0;
		uint16_t u = vq.split.used_idx;
		vq_device_push(&vq, chain.head, len);
		pushes++;
		CHECK(r->used->idx == (uint16_t)(u + 1) && vq.split.used_idx == r->used->idx, "used->idx %u after %u",
		      r->used->idx, u);
		const struct vring_used_elem *e = &r->used->ring[u % num];
		CHECK(e->id == chain.head && e->len == len, "used element %u/%u, pushed %u/%u", e->id, e->len,
		      chain.head, len);
		vq_device_need_notify(&vq);
	}
}

/* Packed: the same, with slots and wrap counters. Chains are pushed back in the order popped. */
static void run_packed(const struct guest_mem *gm, struct vring_packed *r, unsigned num, bool event_idx,
                       uint16_t avail_half, uint16_t used_half, const uint8_t *push_lens)
{
	uint32_t base = (uint32_t)((avail_half & 0x7fff) % num | (avail_half & 0x8000)) |
	                (uint32_t)((used_half & 0x7fff) % num | (used_half & 0x8000)) << 16;
	CHECK(vq_device_init_packed(&vq, gm, r, event_idx, base, false) == 0, "init refused base 0x%x", base);
	CHECK(vq_device_base(&vq) == base, "base 0x%x, set 0x%x", vq_device_base(&vq), base);
	struct vq_packed_device *p = &vq.packed;
	unsigned pushes = 0;
	for (unsigned iter = 0; iter < 2 * num + 4; iter++) {
		uint16_t before = p->last_avail;
		bool wrap_before = p->avail_wrap;
		bool pending = vq_device_has_pending(&vq);
		int rc = vq_device_pop(&vq, &chain);
		if (rc == VQ_EMPTY || rc == -EIO) {
			CHECK(rc == -EIO || !pending, "has_pending said yes, pop found nothing");
			CHECK(p->last_avail == before && p->avail_wrap == wrap_before, "an empty or broken pop moved");
			if (rc == VQ_EMPTY)
				vq_device_arm(&vq);
			break;
		}
		CHECK(pending, "pop found something has_pending did not");
		CHECK(rc == VQ_CHAIN || rc == -EBADMSG, "pop returned %d", rc);
		CHECK(chain.head < num, "buffer id %u in a queue of %u", chain.head, num);
		unsigned took = (p->last_avail + num - before) % num;
		took = took ? took : num;
		CHECK(p->slots[chain.head] == took, "id %u took %u slots, recorded %u", chain.head, took,
		      p->slots[chain.head]);
		CHECK(p->avail_wrap == (wrap_before ^ (before + took >= num)), "avail wrap counter");
		uint32_t len = rc == VQ_CHAIN ? check_chain(gm, push_lens[pushes % 8]) : 0;
		uint16_t u = p->used_idx;
		bool uw = p->used_wrap;
		vq_device_push(&vq, chain.head, len);
		pushes++;
		const struct vring_packed_desc *e = &r->desc[u];
		CHECK(e->id == chain.head && e->len == len && (e->flags & (1u << VRING_PACKED_DESC_F_AVAIL | 1u <<
		      VRING_PACKED_DESC_F_USED)) == vring_packed_used_flags(uw), "used element %u/%u/0x%x at %u, pushed %u/%u",
		      e->id, e->len, e->flags, u, chain.head, len);
		CHECK(p->used_idx == (u + took) % num && p->used_wrap == (uw ^ (u + took >= num)), "used slot %u after %u",
		      p->used_idx, u);
		CHECK(p->slots[chain.head] == 0, "id %u still in flight after its push", chain.head);
		vq_device_need_notify(&vq);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct in in = { data, size };
	unsigned num = 1u << (u8(&in) % 9);
	uint8_t flags = u8(&in);
	bool packed = flags & 0x20;
	uint16_t last_avail = u16(&in), used_idx0 = u16(&in);
	uint64_t gpa[2];
	uint64_t rsize[2];
	gpa[0] = u32(&in);
	rsize[0] = (u16(&in) % 4096) + 1;
	gpa[1] = u32(&in);
	rsize[1] = (u16(&in) % 4096) + 1;
	uint8_t push_lens[8];
	take(&in, push_lens, sizeof(push_lens));

	if (flags & 0x08)
		gpa[0] |= 0xffffffff00000000ull;
	if (flags & 0x04)
		gpa[1] = gpa[0] + rsize[0];
	else if (flags & 0x10)
		gpa[1] |= 0xffffffff00000000ull;
	for (int i = 0; i < 2; i++)
		if (gpa[i] > UINT64_MAX - rsize[i])
			gpa[i] = UINT64_MAX - rsize[i]; /* gm_add refuses gpa + size overflowing */

	struct vring_split r = { .num = num };
	struct vring_packed rp = { .num = num };
	if (packed) {
		rp.desc = xmalloc(vring_packed_desc_bytes(num));
		rp.driver = xmalloc(VRING_PACKED_EVENT_BYTES);
		rp.device = xmalloc(VRING_PACKED_EVENT_BYTES);
		take(&in, rp.desc, vring_packed_desc_bytes(num));
		take(&in, rp.driver, VRING_PACKED_EVENT_BYTES);
		memset(rp.device, 0, VRING_PACKED_EVENT_BYTES);
	} else {
		r.desc = xmalloc(vring_desc_bytes(num));
		r.avail = xmalloc(vring_avail_bytes(num));
		r.used = xmalloc(vring_used_bytes(num));
		take(&in, r.desc, vring_desc_bytes(num));
		take(&in, r.avail, vring_avail_bytes(num));
		memset(r.used, 0, vring_used_bytes(num));
		r.used->idx = used_idx0;
	}

	static struct guest_mem gm;
	memset(&gm, 0, sizeof(gm));
	unsigned nreg = (flags & 0x02) && !overlap(gpa[0], rsize[0], gpa[1], rsize[1]) ? 2 : 1;
	for (unsigned i = 0; i < nreg; i++) {
		uint8_t *host = xmalloc(rsize[i]);
		take(&in, host, rsize[i]);
		gm.r[i] = (struct gm_region){ .gpa = gpa[i], .size = rsize[i], .uaddr = 0x7f0000000000ull + gpa[i],
		                              .host = host, .map_base = NULL, .map_len = 0 };
	}
	gm.n = nreg;

	if (packed)
		run_packed(&gm, &rp, num, flags & 0x01, last_avail, used_idx0, push_lens);
	else
		run_split(&gm, &r, num, flags & 0x01, last_avail, used_idx0, push_lens);
	for (unsigned i = 0; i < nreg; i++)
		free(gm.r[i].host);
	free(r.desc);
	free(r.avail);
	free(r.used);
	free(rp.desc);
	free(rp.driver);
	free(rp.device);
	return 0;
}

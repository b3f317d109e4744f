/*
 * The packed virtqueue from both sides in one process (vq_driver on one mapping of a memfd, vq_device on the
 * guest_mem view of the same memfd), through the same interface as the split ring: round trips across many wraps
 * and chains that straddle the end of the ring, out-of-order completion, the vring base with its wrap counters,
 * event suppression, hand-written bad chains the device must refuse, and a hostile device the driver must catch.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/log.h"
#include "transport/guest_mem.h"
#include "transport/vq_device.h"
#include "transport/vq_driver.h"
#include "transport/vring.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define MEM_SIZE (1u << 20)
#define HALF (MEM_SIZE / 2)
#define UADDR_BASE 0x7f0000000000ull
#define DESC_GPA 0x0ull
#define DRIVER_GPA 0x1000ull       /* driver event suppression area */
#define DEVICE_GPA 0x2000ull       /* device event suppression area */
#define TABLE_GPA 0x4000ull        /* indirect tables */
#define DATA_GPA 0x20000ull

#define F_AVAIL (1u << VRING_PACKED_DESC_F_AVAIL)
#define F_USED (1u << VRING_PACKED_DESC_F_USED)

struct rig {
	int fd;
	uint8_t *mem;
	unsigned num;
	struct guest_mem gm;
	struct vring_packed dr;        /* driver's pointers */
	struct vring_packed vr;        /* device's pointers, translated through gm */
	struct vq_driver drv;
	struct vq_device dev;
	struct vq_chain *chain;
	uint16_t hand;                 /* next slot for hand-written chains ... */
	bool hand_wrap;                /* ... and the avail wrap counter they carry */
};

static struct rig *rig_new(unsigned num, bool event_idx)
{
	struct rig *g = calloc(1, sizeof(*g));
	assert_non_null(g);
	g->num = num;
	g->fd = memfd_create("test-vring-packed", MFD_CLOEXEC);
	assert_true(g->fd >= 0);
	assert_int_equal(ftruncate(g->fd, MEM_SIZE), 0);
	g->mem = mmap(NULL, MEM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, g->fd, 0);
	assert_true(g->mem != MAP_FAILED);
	assert_int_equal(gm_add(&g->gm, 0, HALF, UADDR_BASE, 0, g->fd), 0);
	assert_int_equal(gm_add(&g->gm, HALF, HALF, UADDR_BASE + HALF, HALF, g->fd), 0);
	g->dr = (struct vring_packed){ num, (void *)(g->mem + DESC_GPA), (void *)(g->mem + DRIVER_GPA),
	                               (void *)(g->mem + DEVICE_GPA) };
	struct vq_device_setup st = { .packed = true, .num = num, .desc_ua = UADDR_BASE + DESC_GPA,
	                              .driver_ua = UADDR_BASE + DRIVER_GPA, .device_ua = UADDR_BASE + DEVICE_GPA,
	                              .event_idx = event_idx, .base = VRING_PACKED_BASE_INIT };
	assert_int_equal(vq_driver_init_packed(&g->drv, &g->dr, event_idx), 0);
	assert_int_equal(vq_driver_base(&g->drv), VRING_PACKED_BASE_INIT);
	assert_int_equal(vq_device_start(&g->dev, &g->gm, &st), 0);
	assert_string_equal(g->dev.ops->name, "packed");
	assert_string_equal(g->drv.ops->name, "packed");
	g->vr = g->dev.packed.r;
	assert_ptr_not_equal(g->vr.desc, g->dr.desc);
	g->hand_wrap = true;
	g->chain = malloc(sizeof(*g->chain));
	assert_non_null(g->chain);
	return g;
}

static void rig_free(struct rig *g)
{
	vq_driver_free(&g->drv);
	gm_clear(&g->gm);
	munmap(g->mem, MEM_SIZE);
	close(g->fd);
	free(g->chain);
	free(g);
}

/* ---- hand-written chains (no driver state involved: tests of the device alone) ---- */

struct hd {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;                /* WRITE, NEXT, INDIRECT; the AVAIL/USED bits are added */
};

/* Writes n descriptors for buffer id at the hand cursor, the head's flags last, as a driver does. */
static void hand_publish(struct rig *g, const struct hd *d, unsigned n, uint16_t id)
{
	uint16_t head = g->hand, head_flags = 0;
	for (unsigned k = 0; k < n; k++) {
		uint16_t flags = (uint16_t)(d[k].flags | vring_packed_avail_flags(g->hand_wrap));
		g->dr.desc[g->hand] = (struct vring_packed_desc){ .addr = d[k].addr, .len = d[k].len, .id = id };
		if (k == 0)
			head_flags = flags;
		else
			g->dr.desc[g->hand].flags = flags;
		if (++g->hand == g->num) {
			g->hand = 0;
			g->hand_wrap = !g->hand_wrap;
		}
	}
	store_release16(&g->dr.desc[head].flags, head_flags);
}

static struct vring_packed_desc *table_at(struct rig *g, uint64_t gpa)
{
	return (struct vring_packed_desc *)(g->mem + gpa);
}

/* Publishes a bad chain and expects -EBADMSG naming id, the buffer back with length 0, and the ring usable. */
static void expect_bad_chain(struct rig *g, const struct hd *d, unsigned n, uint16_t id)
{
	uint16_t used_slot = g->dev.packed.used_idx;
	bool used_wrap = g->dev.packed.used_wrap;
	hand_publish(g, d, n, id);
	g->chain->head = 0xffff;
	assert_int_equal(vq_device_pop(&g->dev, g->chain), -EBADMSG);
	assert_int_equal(g->chain->head, id);
	assert_int_equal(g->dev.packed.last_avail, g->hand);
	vq_device_push(&g->dev, id, 0);
	struct vring_packed_desc *u = &g->dr.desc[used_slot];
	assert_int_equal(u->id, id);
	assert_int_equal(u->len, 0);
	assert_int_equal(u->flags & (F_AVAIL | F_USED), vring_packed_used_flags(used_wrap));
	assert_int_equal(g->dev.packed.used_idx, g->hand);
	assert_int_equal(vq_device_pop(&g->dev, g->chain), VQ_EMPTY);
	/* a good chain after it */
	struct hd good = { DATA_GPA, 4, 0 };
	hand_publish(g, &good, 1, 3);
	assert_int_equal(vq_device_pop(&g->dev, g->chain), VQ_CHAIN);
	assert_int_equal(g->chain->head, 3);
	assert_int_equal(g->chain->rd_len, 4);
	vq_device_push(&g->dev, 3, 0);
}

static void expect_broken_ring(struct rig *g, const struct hd *d, unsigned n, uint16_t id)
{
	uint16_t before = g->dev.packed.last_avail;
	hand_publish(g, d, n, id);
	assert_int_equal(vq_device_pop(&g->dev, g->chain), -EIO);
	assert_int_equal(g->dev.packed.last_avail, before);
}

/* ---- round trips ---- */

/* One single-descriptor request through both sides: each moves one slot. */
static void round_trip(struct rig *g)
{
	static int token;
	struct vq_seg s = { DATA_GPA, 4 };
	void *tok;
	uint32_t len;
	assert_int_equal(vq_driver_add(&g->drv, &s, 1, 0, &token), 0);
	assert_int_equal(vq_device_pop(&g->dev, g->chain), VQ_CHAIN);
	vq_device_push(&g->dev, g->chain->head, 0);
	assert_int_equal(vq_driver_get_used(&g->drv, &tok, &len), 1);
	assert_ptr_equal(tok, &token);
}

static void test_round_trip_segments_iovecs_and_lengths(void **state)
{
	(void)state;
	struct rig *g = rig_new(8, true);
	struct vq_seg segs[4] = { { DATA_GPA, 10 }, { DATA_GPA + 0x100, 20 }, { DATA_GPA + 0x1000, 30 },
	                          { DATA_GPA + 0x2000, 40 } };
	int token;
	memcpy(g->mem + DATA_GPA, "0123456789", 10);

	assert_false(vq_device_has_pending(&g->dev));
	assert_int_equal(vq_driver_add(&g->drv, segs, 2, 2, &token), 0);
	assert_int_equal(vq_driver_in_flight(&g->drv), 4);
	assert_true(vq_device_has_pending(&g->dev));
	struct vq_chain *c = g->chain;
	assert_int_equal(vq_device_pop(&g->dev, c), VQ_CHAIN);
	assert_int_equal(c->n_rd, 2);
	assert_int_equal(c->n_wr, 2);
	assert_int_equal(c->rd_len, 30);
	assert_int_equal(c->wr_len, 70);
	const struct iovec *rd = vq_chain_rd(c), *wr = vq_chain_wr(c);
	for (unsigned i = 0; i < 2; i++) {
		assert_ptr_equal(rd[i].iov_base, gm_gpa_ptr(&g->gm, segs[i].gpa, segs[i].len));
		assert_ptr_equal(wr[i].iov_base, gm_gpa_ptr(&g->gm, segs[2 + i].gpa, segs[2 + i].len));
	}
	assert_memory_equal(rd[0].iov_base, "0123456789", 10);
	assert_int_equal(vq_device_pop(&g->dev, c), VQ_EMPTY);
	assert_false(vq_driver_has_used(&g->drv));
	memcpy(wr[1].iov_base, "reply", 5);
	vq_device_push(&g->dev, c->head, 35);
	assert_true(vq_driver_has_used(&g->drv));
	void *tok = NULL;
	uint32_t len = 0;
	assert_int_equal(vq_driver_get_used(&g->drv, &tok, &len), 1);
	assert_ptr_equal(tok, &token);
	assert_int_equal(len, 35);
	assert_memory_equal(g->mem + DATA_GPA + 0x2000, "reply", 5);
	assert_int_equal(vq_driver_in_flight(&g->drv), 0);
	assert_int_equal(vq_driver_get_used(&g->drv, &tok, &len), 0);
	/* The used element sits where the chain began; the device skipped all four slots. */
	assert_int_equal(g->dev.packed.used_idx, 4);
	assert_int_equal(g->drv.packed.last_used, 4);
	rig_free(g);
}

static void test_out_of_order_completion_skips_each_chains_slots(void **state)
{
	(void)state;
	struct rig *g = rig_new(8, false);
	struct vq_seg a[3] = { { DATA_GPA, 8 }, { DATA_GPA + 0x100, 8 }, { DATA_GPA + 0x200, 8 } };
	struct vq_seg b = { DATA_GPA + 0x1000, 16 };
	int ta, tb;
	void *tok;
	uint32_t len;

	assert_int_equal(vq_driver_add(&g->drv, a, 1, 2, &ta), 0); /* slots 0-2 */
	assert_int_equal(vq_driver_add(&g->drv, &b, 0, 1, &tb), 0); /* slot 3 */
	assert_int_equal(vq_device_pop(&g->dev, g->chain), VQ_CHAIN);
	uint16_t ida = g->chain->head;
	assert_int_equal(vq_device_pop(&g->dev, g->chain), VQ_CHAIN);
	uint16_t idb = g->chain->head;
	assert_int_not_equal(ida, idb);
	/* b first: its used element goes to slot 0 and the device skips one slot; then a at slot 1, skipping 3. */
	vq_device_push(&g->dev, idb, 16);
	assert_int_equal(g->dev.packed.used_idx, 1);
	vq_device_push(&g->dev, ida, 16);
	assert_int_equal(g->dev.packed.used_idx, 4);
	assert_int_equal(vq_driver_get_used(&g->drv, &tok, &len), 1);
	assert_ptr_equal(tok, &tb);
	assert_int_equal(vq_driver_get_used(&g->drv, &tok, &len), 1);
	assert_ptr_equal(tok, &ta);
	assert_int_equal(g->drv.packed.last_used, 4);
	assert_int_equal(vq_driver_in_flight(&g->drv), 0);
	rig_free(g);
}

/* Many round trips with chains of 1 to 3 descriptors on a ring of 8: chains straddle the end of the ring and the
 * wrap counters flip thousands of times; both sides must agree throughout. */
static void test_more_than_70000_round_trips_wrap_the_ring(void **state)
{
	(void)state;
	struct rig *g = rig_new(8, true);
	struct vq_seg s[3] = { { DATA_GPA, 4 }, { DATA_GPA + 0x100, 4 }, { DATA_GPA + 0x200, 64 } };
	int tokens[2];
	unsigned flips = 0;
	bool last_wrap = g->dev.packed.avail_wrap;
	for (unsigned i = 0; i < 70001; i++) {
		unsigned n1 = 1 + i % 3, n2 = 1 + (i / 3) % 3;
		assert_int_equal(vq_driver_add(&g->drv, s + 3 - n1, n1 - 1, 1, &tokens[0]), 0);
		assert_int_equal(vq_driver_add(&g->drv, s + 3 - n2, n2 - 1, 1, &tokens[1]), 0);
		vq_driver_kick_needed(&g->drv);
		uint16_t ids[2];
		for (int k = 0; k < 2; k++) {
			assert_int_equal(vq_device_pop(&g->dev, g->chain), VQ_CHAIN);
			assert_int_equal(g->chain->n_wr, 1);
			assert_int_equal(g->chain->wr_len, 64);
			ids[k] = g->chain->head;
		}
		assert_int_equal(vq_device_pop(&g->dev, g->chain), VQ_EMPTY);
		/* alternate the completion order */
		vq_device_push(&g->dev, ids[i & 1], (uint32_t)(i & 1));
		vq_device_push(&g->dev, ids[!(i & 1)], (uint32_t)!(i & 1));
		vq_device_need_notify(&g->dev);
		void *tok;
		uint32_t len;
		for (int k = 0; k < 2; k++) {
			assert_int_equal(vq_driver_get_used(&g->drv, &tok, &len), 1);
			assert_ptr_equal(tok, &tokens[(i & 1) ^ k]);
			assert_int_equal(len, (uint32_t)(((i & 1) ^ k) & 1));
		}
		assert_int_equal(vq_driver_get_used(&g->drv, &tok, &len), 0);
		assert_false(vq_driver_arm(&g->drv));
		assert_false(vq_device_arm(&g->dev));
		if (g->dev.packed.avail_wrap != last_wrap) {
			flips++;
			last_wrap = g->dev.packed.avail_wrap;
		}
		assert_int_equal(g->dev.packed.last_avail, g->drv.packed.next_avail);
		assert_int_equal(g->dev.packed.avail_wrap, g->drv.packed.avail_wrap);
		assert_int_equal(g->dev.packed.used_idx, g->drv.packed.last_used);
		assert_int_equal(g->dev.packed.used_wrap, g->drv.packed.used_wrap);
	}
	assert_true(flips > 10000);
	assert_int_equal(vq_driver_in_flight(&g->drv), 0);
	rig_free(g);
}

static void test_chain_of_exactly_num_descriptors_across_the_end(void **state)
{
	(void)state;
	struct rig *g = rig_new(8, false);
	struct vq_seg one = { DATA_GPA, 4 }, segs[8];
	int t;
	void *tok;
	uint32_t len;
	for (unsigned i = 0; i < 8; i++)
		segs[i] = (struct vq_seg){ DATA_GPA + i * 0x100, 16 };
	for (int i = 0; i < 5; i++)
		round_trip(g); /* both sides to slot 5 */
	assert_int_equal(vq_driver_add(&g->drv, segs, 3, 5, &t), 0);
	assert_int_equal(vq_driver_add(&g->drv, &one, 1, 0, &t), -ENOSPC);
	assert_int_equal(vq_device_pop(&g->dev, g->chain), VQ_CHAIN);
	assert_int_equal(g->chain->n_rd, 3);
	assert_int_equal(g->chain->n_wr, 5);
	assert_int_equal(g->dev.packed.last_avail, 5);
	assert_false(g->dev.packed.avail_wrap);
	vq_device_push(&g->dev, g->chain->head, 80);
	assert_int_equal(vq_driver_get_used(&g->drv, &tok, &len), 1);
	assert_int_equal(len, 80);
	assert_int_equal(vq_driver_in_flight(&g->drv), 0);
	assert_false(g->drv.packed.used_wrap);
	rig_free(g);
}

static void test_indirect_table_is_followed(void **state)
{
	(void)state;
	struct rig *g = rig_new(8, false);
	struct vring_packed_desc *t = table_at(g, TABLE_GPA);
	t[0] = (struct vring_packed_desc){ DATA_GPA, 5, 0, 0 };
	t[1] = (struct vring_packed_desc){ DATA_GPA + 0x100, 7, 0, 0 };
	t[2] = (struct vring_packed_desc){ DATA_GPA + 0x200, 64, 0, VRING_DESC_F_WRITE };
	struct hd d = { TABLE_GPA, 3 * sizeof(*t), VRING_DESC_F_INDIRECT };
	hand_publish(g, &d, 1, 6);
	assert_int_equal(vq_device_pop(&g->dev, g->chain), VQ_CHAIN);
	assert_int_equal(g->chain->head, 6);
	assert_int_equal(g->chain->n_rd, 2);
	assert_int_equal(g->chain->rd_len, 12);
	assert_int_equal(g->chain->wr_len, 64);
	/* an indirect chain takes one slot */
	assert_int_equal(g->dev.packed.last_avail, 1);
	vq_device_push(&g->dev, 6, 0);
	assert_int_equal(g->dev.packed.used_idx, 1);
	rig_free(g);
}

/* ---- the vring base ---- */

static void test_base_carries_wrap_counters_and_resumes(void **state)
{
	(void)state;
	struct rig *g = rig_new(8, false);
	struct vq_seg s[3] = { { DATA_GPA, 4 }, { DATA_GPA + 0x100, 4 }, { DATA_GPA + 0x200, 4 } };
	int t;
	void *tok;
	uint32_t len;
	assert_int_equal(vq_device_base(&g->dev), 0x80008000u);
	/* 3 chains of 3 slots: the third straddles the end; the first two come back, the third stays out */
	uint16_t ids[3];
	for (int i = 0; i < 2; i++) {
		assert_int_equal(vq_driver_add(&g->drv, s, 2, 1, &t), 0);
		assert_int_equal(vq_device_pop(&g->dev, g->chain), VQ_CHAIN);
		ids[i] = g->chain->head;
	}
	vq_device_push(&g->dev, ids[0], 0);
	vq_device_push(&g->dev, ids[1], 0);
	for (int i = 0; i < 2; i++)
		assert_int_equal(vq_driver_get_used(&g->drv, &tok, &len), 1);
	assert_int_equal(vq_driver_add(&g->drv, s, 2, 1, &t), 0);
	assert_int_equal(vq_device_pop(&g->dev, g->chain), VQ_CHAIN);
	ids[2] = g->chain->head;
	/* avail: slot 1 of lap 0; used: slot 6 of lap 1 */
	assert_int_equal(vq_device_base(&g->dev), 0x8006u << 16 | 0x0001u);
	/* Our own pause: the device restarts from its own base with the chain still out, and returns it. */
	struct vq_device_setup st = { .packed = true, .num = 8, .desc_ua = UADDR_BASE + DESC_GPA,
	                              .driver_ua = UADDR_BASE + DRIVER_GPA, .device_ua = UADDR_BASE + DEVICE_GPA,
	                              .base = vq_device_base(&g->dev), .resume = true };
	assert_int_equal(vq_device_start(&g->dev, &g->gm, &st), 0);
	vq_device_push(&g->dev, ids[2], 0);
	assert_int_equal(vq_device_base(&g->dev), 0x0001u << 16 | 0x0001u);
	assert_int_equal(vq_driver_get_used(&g->drv, &tok, &len), 1);
	assert_int_equal(vq_driver_in_flight(&g->drv), 0);
	/* A frontend's base is taken as given (a packed ring has nothing to reconcile it with). */
	st.resume = false;
	st.base = vq_device_base(&g->dev);
	assert_int_equal(vq_device_start(&g->dev, &g->gm, &st), 0);
	assert_int_equal(vq_driver_add(&g->drv, s, 1, 0, &t), 0);
	assert_int_equal(vq_device_pop(&g->dev, g->chain), VQ_CHAIN);
	vq_device_push(&g->dev, g->chain->head, 0);
	assert_int_equal(vq_driver_get_used(&g->drv, &tok, &len), 1);
	/* A base naming a slot beyond the ring is refused; so is a split base beyond 16 bits. */
	st.base = 8;
	assert_int_equal(vq_device_start(&g->dev, &g->gm, &st), -EINVAL);
	st.base = 8u << 16;
	assert_int_equal(vq_device_start(&g->dev, &g->gm, &st), -EINVAL);
	st.packed = false;
	st.base = 0x10000;
	assert_int_equal(vq_device_start(&g->dev, &g->gm, &st), -EINVAL);
	/* Misplaced areas are refused. */
	st.packed = true;
	st.base = VRING_PACKED_BASE_INIT;
	st.driver_ua = UADDR_BASE + DRIVER_GPA + 2;
	assert_int_equal(vq_device_start(&g->dev, &g->gm, &st), -EFAULT);
	st.driver_ua = UADDR_BASE + MEM_SIZE;
	assert_int_equal(vq_device_start(&g->dev, &g->gm, &st), -EFAULT);
	rig_free(g);
}

/* ---- event suppression ---- */

static void test_event_idx_kick_follows_device_event(void **state)
{
	(void)state;
	struct rig *g = rig_new(8, true);
	struct vq_seg s = { DATA_GPA, 4 };
	int t;

	assert_false(vq_driver_kick_needed(&g->drv)); /* nothing added */
	assert_false(vq_device_arm(&g->dev));           /* device waits at slot 0, lap 1 */
	assert_int_equal(g->dr.device->flags, VRING_PACKED_EVENT_FLAG_DESC);
	assert_int_equal(g->dr.device->off_wrap, 0x8000);
	assert_int_equal(vq_driver_add(&g->drv, &s, 1, 0, &t), 0);
	assert_true(vq_driver_kick_needed(&g->drv));
	assert_false(vq_driver_kick_needed(&g->drv));
	assert_int_equal(vq_driver_add(&g->drv, &s, 1, 0, &t), 0);
	assert_false(vq_driver_kick_needed(&g->drv)); /* the device has not re-armed */
	assert_int_equal(vq_device_pop(&g->dev, g->chain), VQ_CHAIN);
	assert_int_equal(vq_device_pop(&g->dev, g->chain), VQ_CHAIN);
	assert_false(vq_device_arm(&g->dev));
	assert_int_equal(g->dr.device->off_wrap, 0x8002);
	assert_int_equal(vq_driver_add(&g->drv, &s, 1, 0, &t), 0);
	assert_true(vq_driver_kick_needed(&g->drv));
	/* arrivals between the last pop and arming are reported by arm */
	assert_true(vq_device_arm(&g->dev));
	/* an event on the next lap is not reached by this one */
	store_once16(&g->vr.device->off_wrap, 5);
	assert_int_equal(vq_driver_add(&g->drv, &s, 1, 0, &t), 0);
	assert_false(vq_driver_kick_needed(&g->drv));
	/* a device that disables kicks gets none, one that enables them gets every one */
	store_once16(&g->vr.device->flags, VRING_PACKED_EVENT_FLAG_DISABLE);
	assert_int_equal(vq_driver_add(&g->drv, &s, 1, 0, &t), 0);
	assert_false(vq_driver_kick_needed(&g->drv));
	store_once16(&g->vr.device->flags, VRING_PACKED_EVENT_FLAG_ENABLE);
	assert_int_equal(vq_driver_add(&g->drv, &s, 1, 0, &t), 0);
	assert_true(vq_driver_kick_needed(&g->drv));
	rig_free(g);
}

static void test_event_idx_kick_across_the_wrap(void **state)
{
	(void)state;
	struct rig *g = rig_new(4, true);
	struct vq_seg s = { DATA_GPA, 4 };
	int t;
	for (int i = 0; i < 3; i++)
		round_trip(g);
	vq_driver_kick_needed(&g->drv);
	assert_false(vq_device_arm(&g->dev)); /* slot 3, lap 1 */
	assert_int_equal(g->dr.device->off_wrap, 0x8003);
	/* two chains: slot 3 (lap 1) and slot 0 (lap 0): the event at 3 is passed */
	assert_int_equal(vq_driver_add(&g->drv, &s, 1, 0, &t), 0);
	assert_int_equal(vq_driver_add(&g->drv, &s, 1, 0, &t), 0);
	assert_false(g->drv.packed.avail_wrap);
	assert_true(vq_driver_kick_needed(&g->drv));
	assert_int_equal(vq_device_pop(&g->dev, g->chain), VQ_CHAIN);
	assert_int_equal(vq_device_pop(&g->dev, g->chain), VQ_CHAIN);
	assert_false(vq_device_arm(&g->dev));
	assert_int_equal(g->dr.device->off_wrap, 0x0001);
	assert_int_equal(vq_driver_add(&g->drv, &s, 1, 0, &t), 0); /* slot 1, lap 0: the event is met */
	assert_true(vq_driver_kick_needed(&g->drv));
	rig_free(g);
}

static void test_event_idx_need_notify_follows_driver_event(void **state)
{
	(void)state;
	struct rig *g = rig_new(8, true);
	struct vq_seg s = { DATA_GPA, 4 };
	int t;
	void *tok;
	uint32_t len;
	for (int i = 0; i < 3; i++)
		assert_int_equal(vq_driver_add(&g->drv, &s, 1, 0, &t), 0);
	uint16_t ids[3];
	for (int i = 0; i < 3; i++) {
		assert_int_equal(vq_device_pop(&g->dev, g->chain), VQ_CHAIN);
		ids[i] = g->chain->head;
	}
	assert_false(vq_driver_arm(&g->drv));      /* the driver waits at slot 0 */
	assert_int_equal(g->dr.driver->off_wrap, 0x8000);
	vq_device_push(&g->dev, ids[0], 0);
	assert_true(vq_device_need_notify(&g->dev));
	assert_false(vq_device_need_notify(&g->dev));
	vq_device_push(&g->dev, ids[1], 0);
	assert_false(vq_device_need_notify(&g->dev)); /* not re-armed */
	assert_int_equal(vq_driver_get_used(&g->drv, &tok, &len), 1);
	assert_int_equal(vq_driver_get_used(&g->drv, &tok, &len), 1);
	assert_false(vq_driver_arm(&g->drv));
	assert_int_equal(g->dr.driver->off_wrap, 0x8002);
	vq_device_push(&g->dev, ids[2], 0);
	assert_true(vq_device_need_notify(&g->dev));
	assert_true(vq_driver_arm(&g->drv));           /* a used entry before arming is reported */
	assert_int_equal(vq_driver_get_used(&g->drv, &tok, &len), 1);
	/* DISABLE: never; ENABLE: every time */
	assert_int_equal(vq_driver_add(&g->drv, &s, 1, 0, &t), 0);
	assert_int_equal(vq_device_pop(&g->dev, g->chain), VQ_CHAIN);
	store_once16(&g->vr.driver->flags, VRING_PACKED_EVENT_FLAG_DISABLE);
	vq_device_push(&g->dev, g->chain->head, 0);
	assert_false(vq_device_need_notify(&g->dev));
	store_once16(&g->vr.driver->flags, VRING_PACKED_EVENT_FLAG_ENABLE);
	assert_true(vq_device_need_notify(&g->dev));
	rig_free(g);
}

/* A driver that sleeps after every request (arms, waits for the interrupt) on a one-entry ring: every push must
 * notify, every add must kick, although each side's slot is always 0 (only the wrap counters move). */
static void test_event_idx_one_entry_ring_notifies_every_time(void **state)
{
	(void)state;
	struct rig *g = rig_new(1, true);
	struct vq_seg s = { DATA_GPA, 4 };
	int t;
	void *tok;
	uint32_t len;
	assert_false(vq_device_arm(&g->dev));
	assert_false(vq_driver_arm(&g->drv));
	for (int i = 0; i < 6; i++) {
		assert_int_equal(vq_driver_add(&g->drv, &s, 1, 0, &t), 0);
		assert_int_equal(vq_driver_add(&g->drv, &s, 1, 0, &t), -ENOSPC);
		assert_true(vq_driver_kick_needed(&g->drv));
		assert_int_equal(vq_device_pop(&g->dev, g->chain), VQ_CHAIN);
		assert_false(vq_device_arm(&g->dev));
		vq_device_push(&g->dev, g->chain->head, 0);
		assert_true(vq_device_need_notify(&g->dev));
		assert_false(vq_device_need_notify(&g->dev));
		assert_int_equal(vq_driver_get_used(&g->drv, &tok, &len), 1);
		assert_false(vq_driver_arm(&g->drv));
	}
	rig_free(g);
}

/* A whole lap of pushes between two checks is not "no move": the driver armed at the first must be notified. */
static void test_event_idx_whole_lap_between_checks_notifies(void **state)
{
	(void)state;
	struct rig *g = rig_new(4, true);
	struct vq_seg s = { DATA_GPA, 4 };
	int t;
	round_trip(g);
	assert_true(vq_device_need_notify(&g->dev)); /* the first notification out of the way */
	assert_false(vq_driver_arm(&g->drv));        /* the driver waits at slot 1 */
	for (int i = 0; i < 4; i++)
		assert_int_equal(vq_driver_add(&g->drv, &s, 1, 0, &t), 0);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(vq_device_pop(&g->dev, g->chain), VQ_CHAIN);
		vq_device_push(&g->dev, g->chain->head, 0);
	}
	assert_int_equal(g->dev.packed.used_idx, 1); /* back where the last check was */
	assert_true(vq_device_need_notify(&g->dev));
	rig_free(g);
}

static void test_flags_mode_without_event_idx(void **state)
{
	(void)state;
	struct rig *g = rig_new(8, false);
	struct vq_seg s = { DATA_GPA, 4 };
	int t;
	assert_int_equal(vq_driver_add(&g->drv, &s, 1, 0, &t), 0);
	assert_true(vq_driver_kick_needed(&g->drv));
	assert_false(vq_driver_kick_needed(&g->drv));
	assert_true(vq_device_arm(&g->dev)); /* the chain is there */
	assert_int_equal(g->dr.device->flags, VRING_PACKED_EVENT_FLAG_ENABLE);
	assert_int_equal(vq_device_pop(&g->dev, g->chain), VQ_CHAIN);
	vq_device_push(&g->dev, g->chain->head, 0);
	assert_true(vq_device_need_notify(&g->dev));
	vq_driver_arm(&g->drv);
	assert_int_equal(g->dr.driver->flags, VRING_PACKED_EVENT_FLAG_ENABLE);
	/* a DESC event is ignored without EVENT_IDX: every notification goes */
	store_once16(&g->vr.driver->flags, VRING_PACKED_EVENT_FLAG_DESC);
	store_once16(&g->vr.driver->off_wrap, 0x8007);
	assert_true(vq_device_need_notify(&g->dev));
	rig_free(g);
}

/* ---- malformed chains: refused, returned with length 0, the queue goes on ---- */

static void test_bad_chain_address_outside_memory(void **state)
{
	(void)state;
	struct rig *g = rig_new(8, false);
	struct hd d[2] = { { DATA_GPA, 4, VRING_DESC_F_NEXT }, { MEM_SIZE - 2, 4, VRING_DESC_F_WRITE } };
	expect_bad_chain(g, d, 2, 5);
	struct hd wrap = { UINT64_MAX - 1, 4, 0 };
	expect_bad_chain(g, &wrap, 1, 1);
	rig_free(g);
}

static void test_bad_chain_readable_after_writable(void **state)
{
	(void)state;
	struct rig *g = rig_new(8, false);
	struct hd d[2] = { { DATA_GPA, 4, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE }, { DATA_GPA, 4, 0 } };
	expect_bad_chain(g, d, 2, 2);
	rig_free(g);
}

static void test_bad_chain_indirect_rules(void **state)
{
	(void)state;
	struct rig *g = rig_new(8, false);
	struct vring_packed_desc *t = table_at(g, TABLE_GPA);
	t[0] = (struct vring_packed_desc){ DATA_GPA, 4, 0, 0 };
	t[1] = (struct vring_packed_desc){ TABLE_GPA, 32, 0, VRING_DESC_F_INDIRECT };
	struct hd with_next[2] = { { TABLE_GPA, 16, VRING_DESC_F_INDIRECT | VRING_DESC_F_NEXT }, { DATA_GPA, 4, 0 } };
	expect_bad_chain(g, with_next, 2, 0);
	struct hd zero = { TABLE_GPA, 0, VRING_DESC_F_INDIRECT };
	expect_bad_chain(g, &zero, 1, 1);
	struct hd unaligned = { TABLE_GPA, 20, VRING_DESC_F_INDIRECT };
	expect_bad_chain(g, &unaligned, 1, 2);
	struct hd huge = { TABLE_GPA, 16 * (VQ_MAX_SEGS + 1), VRING_DESC_F_INDIRECT };
	expect_bad_chain(g, &huge, 1, 4);
	struct hd nested = { TABLE_GPA, 32, VRING_DESC_F_INDIRECT };
	expect_bad_chain(g, &nested, 1, 5);
	struct hd outside = { MEM_SIZE - 16, 32, VRING_DESC_F_INDIRECT };
	expect_bad_chain(g, &outside, 1, 6);
	rig_free(g);
}

static void test_bad_chain_too_many_segments(void **state)
{
	(void)state;
	struct rig *g = rig_new(8, false);
	struct vring_packed_desc *t = table_at(g, TABLE_GPA);
	/* VQ_MAX_SEGS entries, the last one across the region boundary: one segment too many */
	for (unsigned i = 0; i < VQ_MAX_SEGS; i++)
		t[i] = (struct vring_packed_desc){ DATA_GPA + i, 1, 0, 0 };
	t[VQ_MAX_SEGS - 1] = (struct vring_packed_desc){ HALF - 1, 2, 0, 0 };
	struct hd d = { TABLE_GPA, 16 * VQ_MAX_SEGS, VRING_DESC_F_INDIRECT };
	expect_bad_chain(g, &d, 1, 7);
	rig_free(g);
}

/* ---- a broken ring: the queue stops ---- */

static void test_chain_longer_than_num_is_ring_corruption(void **state)
{
	(void)state;
	struct rig *g = rig_new(4, false);
	/* every slot says NEXT, and the hand cursor wraps onto the head again with the wrap flipped: the head
	 * stays available to the device's lap only once, so the walk meets an unavailable slot or the bound */
	struct hd d[4];
	for (int i = 0; i < 4; i++)
		d[i] = (struct hd){ DATA_GPA, 4, VRING_DESC_F_NEXT };
	expect_broken_ring(g, d, 4, 1);
	rig_free(g);
}

static void test_unfinished_chain_is_ring_corruption(void **state)
{
	(void)state;
	struct rig *g = rig_new(8, false);
	struct hd d = { DATA_GPA, 4, VRING_DESC_F_NEXT }; /* says more follows; slot 1 was never made available */
	expect_broken_ring(g, &d, 1, 1);
	rig_free(g);
}

static void test_buffer_id_out_of_range_or_in_flight_is_ring_corruption(void **state)
{
	(void)state;
	struct rig *g = rig_new(8, false);
	struct hd d = { DATA_GPA, 4, 0 };
	expect_broken_ring(g, &d, 1, 8);
	rig_free(g);
	g = rig_new(8, false);
	hand_publish(g, &d, 1, 2);
	assert_int_equal(vq_device_pop(&g->dev, g->chain), VQ_CHAIN);
	expect_broken_ring(g, &d, 1, 2); /* id 2 is still out */
	rig_free(g);
}

/* ---- a hostile device: the driver must catch it ---- */

static void device_writes_used(struct rig *g, uint16_t slot, uint16_t id, uint32_t len, bool wrap)
{
	g->vr.desc[slot].id = id;
	g->vr.desc[slot].len = len;
	store_release16(&g->vr.desc[slot].flags, vring_packed_used_flags(wrap));
}

static void test_driver_refuses_hostile_used_elements(void **state)
{
	(void)state;
	struct rig *g = rig_new(8, false);
	struct vq_seg s[2] = { { DATA_GPA, 4 }, { DATA_GPA + 0x100, 64 } };
	int t;
	void *tok;
	uint32_t len;
	assert_int_equal(vq_driver_add(&g->drv, s, 1, 1, &t), 0); /* id 0 */
	device_writes_used(g, 0, 5, 0, true);                      /* never issued */
	assert_int_equal(vq_driver_get_used(&g->drv, &tok, &len), -EIO);
	device_writes_used(g, 0, 8, 0, true);                      /* out of range */
	assert_int_equal(vq_driver_get_used(&g->drv, &tok, &len), -EIO);
	device_writes_used(g, 0, 0, 65, true);                     /* longer than the writable part */
	assert_int_equal(vq_driver_get_used(&g->drv, &tok, &len), -EIO);
	device_writes_used(g, 0, 0, 64, false);                    /* last lap's flags: not used yet */
	assert_int_equal(vq_driver_get_used(&g->drv, &tok, &len), 0);
	device_writes_used(g, 0, 0, 64, true);
	assert_int_equal(vq_driver_get_used(&g->drv, &tok, &len), 1);
	assert_int_equal(len, 64);
	device_writes_used(g, 2, 0, 0, true);                      /* the same id again */
	assert_int_equal(vq_driver_get_used(&g->drv, &tok, &len), -EIO);
	rig_free(g);
}

static void test_driver_ring_full_and_bad_num(void **state)
{
	(void)state;
	struct rig *g = rig_new(4, false);
	struct vq_seg s[3] = { { DATA_GPA, 4 }, { DATA_GPA, 4 }, { DATA_GPA, 4 } };
	int t;
	assert_int_equal(vq_driver_add(&g->drv, s, 3, 0, &t), 0);
	assert_int_equal(vq_driver_add(&g->drv, s, 2, 0, &t), -ENOSPC);
	assert_int_equal(vq_driver_add(&g->drv, s, 1, 0, &t), 0);
	assert_int_equal(vq_driver_add(&g->drv, s, 1, 0, &t), -ENOSPC);
	assert_int_equal(vq_driver_add(&g->drv, s, 0, 0, &t), -EINVAL);
	assert_non_null(vq_driver_token(&g->drv, 0));
	assert_non_null(vq_driver_token(&g->drv, 1));
	assert_null(vq_driver_token(&g->drv, 2));
	assert_null(vq_driver_token(&g->drv, 4));
	rig_free(g);
	struct vq_driver d;
	struct vring_packed r = { 6, NULL, NULL, NULL };
	assert_int_equal(vq_driver_init_packed(&d, &r, false), -EINVAL);
	r.num = 0;
	assert_int_equal(vq_driver_init_packed(&d, &r, false), -EINVAL);
}

int main(void)
{
	log_init("test_vring_packed", LOG_LVL_ERROR, false);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip_segments_iovecs_and_lengths),
		cmocka_unit_test(test_out_of_order_completion_skips_each_chains_slots),
		cmocka_unit_test(test_more_than_70000_round_trips_wrap_the_ring),
		cmocka_unit_test(test_chain_of_exactly_num_descriptors_across_the_end),
		cmocka_unit_test(test_indirect_table_is_followed),
		cmocka_unit_test(test_base_carries_wrap_counters_and_resumes),
		cmocka_unit_test(test_event_idx_kick_follows_device_event),
		cmocka_unit_test(test_event_idx_kick_across_the_wrap),
		cmocka_unit_test(test_event_idx_need_notify_follows_driver_event),
		cmocka_unit_test(test_event_idx_one_entry_ring_notifies_every_time),
		cmocka_unit_test(test_event_idx_whole_lap_between_checks_notifies),
		cmocka_unit_test(test_flags_mode_without_event_idx),
		cmocka_unit_test(test_bad_chain_address_outside_memory),
		cmocka_unit_test(test_bad_chain_readable_after_writable),
		cmocka_unit_test(test_bad_chain_indirect_rules),
		cmocka_unit_test(test_bad_chain_too_many_segments),
		cmocka_unit_test(test_chain_longer_than_num_is_ring_corruption),
		cmocka_unit_test(test_unfinished_chain_is_ring_corruption),
		cmocka_unit_test(test_buffer_id_out_of_range_or_in_flight_is_ring_corruption),
		cmocka_unit_test(test_driver_refuses_hostile_used_elements),
		cmocka_unit_test(test_driver_ring_full_and_bad_num),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * The split virtqueue from both sides in one process (vq_driver on one mapping of a memfd, vq_device on the
 * guest_mem view of the same memfd), hand-written bad chains the device must refuse, a hostile device the
 * driver must catch, and guest_mem translation edges.
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
#define HALF (MEM_SIZE / 2)        /* the device maps the memfd as two adjacent regions split here */
#define UADDR_BASE 0x7f0000000000ull
#define DESC_GPA 0x0ull
#define AVAIL_GPA 0x1000ull
#define USED_GPA 0x2000ull
#define TABLE_GPA 0x4000ull        /* indirect tables */
#define DATA_GPA 0x20000ull

/* One ring shared by both sides. */
struct rig {
	int fd;
	uint8_t *mem;                  /* the driver's mapping: gpa = offset */
	unsigned num;
	struct guest_mem gm;           /* the device's view: two regions of the same memfd */
	struct vring_split dr;         /* driver's pointers */
	struct vring_split vr;         /* device's pointers, translated through gm */
	struct vq_driver drv;
	struct vq_device dev;
	struct vq_chain *chain;
	uint16_t hand_avail;           /* next avail slot for hand-written chains */
};

static int memfd_of(size_t size)
{
	int fd = memfd_create("test-vring", MFD_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)size), 0);
	return fd;
}

/* Sets the ring's indexes as if base entries had gone round already (both sides agree on base). */
static void rig_set_base(struct rig *g, uint16_t base)
{
	g->dr.avail->idx = base;
	g->dr.used->idx = base;
	g->drv.split.avail_idx = g->drv.split.kicked_avail = g->drv.split.last_used = base;
	g->hand_avail = base;
}

static struct rig *rig_new(unsigned num, bool event_idx, uint16_t base)
{
	struct rig *g = calloc(1, sizeof(*g));
	assert_non_null(g);
	g->num = num;
	g->fd = memfd_of(MEM_SIZE);
	g->mem = mmap(NULL, MEM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, g->fd, 0);
	assert_true(g->mem != MAP_FAILED);
	assert_int_equal(gm_add(&g->gm, 0, HALF, UADDR_BASE, 0, g->fd), 0);
	assert_int_equal(gm_add(&g->gm, HALF, HALF, UADDR_BASE + HALF, HALF, g->fd), 0);

	g->dr = (struct vring_split){ .num = num, .desc = (void *)(g->mem + DESC_GPA),
	                              .avail = (void *)(g->mem + AVAIL_GPA), .used = (void *)(g->mem + USED_GPA) };
	g->vr = (struct vring_split){ .num = num };
	g->vr.desc = gm_gpa_ptr(&g->gm, DESC_GPA, vring_desc_bytes(num));
	g->vr.avail = gm_gpa_ptr(&g->gm, AVAIL_GPA, vring_avail_bytes(num));
	g->vr.used = gm_gpa_ptr(&g->gm, USED_GPA, vring_used_bytes(num));
	assert_non_null(g->vr.desc);
	assert_non_null(g->vr.avail);
	assert_non_null(g->vr.used);
	/* Two mappings of one file: not the same pointers, the same bytes. */
	assert_ptr_not_equal(g->vr.desc, g->dr.desc);

	assert_int_equal(vq_driver_init(&g->drv, &g->dr, event_idx), 0);
	rig_set_base(g, base);
	vq_device_init(&g->dev, &g->gm, &g->vr, event_idx, base);
	assert_int_equal(g->dev.split.last_avail, base);
	assert_int_equal(g->dev.split.used_idx, base);
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

/* ---- hand-written descriptors, for chains the real driver would never build ---- */

static void set_desc(struct rig *g, unsigned i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
	g->dr.desc[i] = (struct vring_desc){ .addr = addr, .len = len, .flags = flags, .next = next };
}

static struct vring_desc *table_at(struct rig *g, uint64_t gpa)
{
	return (struct vring_desc *)(g->mem + gpa);
}

static void publish(struct rig *g, uint16_t head)
{
	g->dr.avail->ring[g->hand_avail % g->num] = head;
	g->hand_avail++;
	store_release16(&g->dr.avail->idx, g->hand_avail);
}

/* Pops what was just published by hand and expects -EBADMSG for head, with the ring still usable after. */
static void expect_bad_chain(struct rig *g, uint16_t head)
{
	uint16_t before = g->dev.split.last_avail;
	publish(g, head);
	g->chain->head = 0xffff;
	assert_int_equal(vq_device_pop(&g->dev, g->chain), -EBADMSG);
	assert_int_equal(g->chain->head, head);
	assert_int_equal(g->dev.split.last_avail, (uint16_t)(before + 1));
	/* The buffer goes back with length 0 and the queue goes on. */
	vq_device_push(&g->dev, head, 0);
	assert_int_equal(g->dr.used->idx, g->dev.split.used_idx);
	assert_int_equal(g->dr.used->ring[(uint16_t)(g->dev.split.used_idx - 1) % g->num].id, head);
	assert_int_equal(g->dr.used->ring[(uint16_t)(g->dev.split.used_idx - 1) % g->num].len, 0);
	assert_int_equal(vq_device_pop(&g->dev, g->chain), VQ_EMPTY);
}

/* A good chain published by hand after a bad one still works. */
static void expect_good_after(struct rig *g)
{
	set_desc(g, 0, DATA_GPA, 4, 0, 0);
	publish(g, 0);
	assert_int_equal(vq_device_pop(&g->dev, g->chain), VQ_CHAIN);
	assert_int_equal(g->chain->head, 0);
	assert_int_equal(g->chain->rd_len, 4);
}

/* ---- round trips ---- */

static void test_round_trip_segments_iovecs_and_lengths(void **state)
{
	(void)state;
	struct rig *g = rig_new(8, true, 0);
	struct vq_seg segs[4] = {
		{ DATA_GPA, 10 }, { DATA_GPA + 0x100, 20 },          /* readable */
		{ DATA_GPA + 0x1000, 30 }, { DATA_GPA + 0x2000, 40 }, /* writable */
	};
	int token;
	memcpy(g->mem + DATA_GPA, "0123456789", 10);
	memset(g->mem + DATA_GPA + 0x100, 'x', 20);

	assert_int_equal(vq_driver_add(&g->drv, segs, 2, 2, &token), 0);
	assert_int_equal(vq_driver_in_flight(&g->drv), 4);
	assert_int_equal(g->dr.avail->idx, 1);

	struct vq_chain *c = g->chain;
	assert_int_equal(vq_device_pop(&g->dev, c), VQ_CHAIN);
	assert_int_equal(c->n_rd, 2);
	assert_int_equal(c->n_wr, 2);
	assert_int_equal(c->rd_len, 30);
	assert_int_equal(c->wr_len, 70);
	const struct iovec *rd = vq_chain_rd(c), *wr = vq_chain_wr(c);
	for (unsigned i = 0; i < 2; i++) {
		assert_ptr_equal(rd[i].iov_base, gm_gpa_ptr(&g->gm, segs[i].gpa, segs[i].len));
		assert_int_equal(rd[i].iov_len, segs[i].len);
		assert_ptr_equal(wr[i].iov_base, gm_gpa_ptr(&g->gm, segs[2 + i].gpa, segs[2 + i].len));
		assert_int_equal(wr[i].iov_len, segs[2 + i].len);
	}
	assert_memory_equal(rd[0].iov_base, "0123456789", 10);
	assert_int_equal(((char *)rd[1].iov_base)[19], 'x');
	assert_int_equal(vq_device_pop(&g->dev, c), VQ_EMPTY);

	/* The device writes into the writable part; the driver sees it in its own mapping. */
	memcpy(wr[1].iov_base, "reply", 5);
	vq_device_push(&g->dev, c->head, 35);

	void *tok = NULL;
	uint32_t len = 0;
	assert_int_equal(vq_driver_get_used(&g->drv, &tok, &len), 1);
	assert_ptr_equal(tok, &token);
	assert_int_equal(len, 35);
	assert_memory_equal(g->mem + DATA_GPA + 0x2000, "reply", 5);
	assert_int_equal(vq_driver_in_flight(&g->drv), 0);
	assert_int_equal(vq_driver_get_used(&g->drv, &tok, &len), 0);
	rig_free(g);
}

static void test_only_readable_or_only_writable_chains(void **state)
{
	(void)state;
	struct rig *g = rig_new(8, false, 0);
	struct vq_seg rd_only = { DATA_GPA, 100 }, wr_only = { DATA_GPA + 0x1000, 200 };
	int t1, t2;
	void *tok;
	uint32_t len;

	assert_int_equal(vq_driver_add(&g->drv, &rd_only, 1, 0, &t1), 0);
	assert_int_equal(vq_driver_add(&g->drv, &wr_only, 0, 1, &t2), 0);
	assert_int_equal(vq_device_pop(&g->dev, g->chain), VQ_CHAIN);
	assert_int_equal(g->chain->n_rd, 1);
	assert_int_equal(g->chain->n_wr, 0);
	assert_int_equal(g->chain->rd_len, 100);
	uint16_t h1 = g->chain->head;
	assert_int_equal(vq_device_pop(&g->dev, g->chain), VQ_CHAIN);
	assert_int_equal(g->chain->n_rd, 0);
	assert_int_equal(g->chain->n_wr, 1);
	assert_int_equal(g->chain->wr_len, 200);
	uint16_t h2 = g->chain->head;
	/* Completed out of order: the driver matches by descriptor id, not by position. */
	vq_device_push(&g->dev, h2, 200);
	vq_device_push(&g->dev, h1, 0);
	assert_int_equal(vq_driver_get_used(&g->drv, &tok, &len), 1);
	assert_ptr_equal(tok, &t2);
	assert_int_equal(len, 200);
	assert_int_equal(vq_driver_get_used(&g->drv, &tok, &len), 1);
	assert_ptr_equal(tok, &t1);
	assert_int_equal(len, 0);
	rig_free(g);
}

static void test_zero_length_descriptors_are_skipped(void **state)
{
	(void)state;
	struct rig *g = rig_new(8, false, 0);
	set_desc(g, 2, DATA_GPA, 0, VRING_DESC_F_NEXT, 3);
	set_desc(g, 3, DATA_GPA, 8, VRING_DESC_F_NEXT, 4);
	set_desc(g, 4, DATA_GPA + 64, 0, VRING_DESC_F_WRITE, 0);
	publish(g, 2);
	assert_int_equal(vq_device_pop(&g->dev, g->chain), VQ_CHAIN);
	assert_int_equal(g->chain->head, 2);
	assert_int_equal(g->chain->n_rd, 1);
	assert_int_equal(g->chain->n_wr, 0);
	assert_int_equal(g->chain->rd_len, 8);
	rig_free(g);
}

static void test_descriptor_across_two_regions_gives_two_iovecs(void **state)
{
	(void)state;
	struct rig *g = rig_new(8, false, 0);
	struct vq_seg seg = { HALF - 16, 48 };
	int t;
	memset(g->mem + HALF - 16, 'a', 16);
	memset(g->mem + HALF, 'b', 32);
	assert_int_equal(vq_driver_add(&g->drv, &seg, 1, 0, &t), 0);
	assert_int_equal(vq_device_pop(&g->dev, g->chain), VQ_CHAIN);
	assert_int_equal(g->chain->n_rd, 2);
	assert_int_equal(g->chain->rd_len, 48);
	assert_int_equal(g->chain->iov[0].iov_len, 16);
	assert_int_equal(g->chain->iov[1].iov_len, 32);
	assert_int_equal(((char *)g->chain->iov[0].iov_base)[15], 'a');
	assert_int_equal(((char *)g->chain->iov[1].iov_base)[0], 'b');
	assert_ptr_equal(g->chain->iov[1].iov_base, g->gm.r[1].host);
	rig_free(g);
}

static void test_chain_of_exactly_num_descriptors_is_accepted(void **state)
{
	(void)state;
	struct rig *g = rig_new(8, false, 0);
	struct vq_seg segs[8];
	int t;
	for (unsigned i = 0; i < 8; i++)
		segs[i] = (struct vq_seg){ DATA_GPA + i * 0x100, 16 };
	assert_int_equal(vq_driver_add(&g->drv, segs, 3, 5, &t), 0);
	assert_int_equal(vq_driver_in_flight(&g->drv), 8);
	assert_int_equal(vq_device_pop(&g->dev, g->chain), VQ_CHAIN);
	assert_int_equal(g->chain->n_rd, 3);
	assert_int_equal(g->chain->n_wr, 5);
	assert_int_equal(g->chain->wr_len, 80);
	vq_device_push(&g->dev, g->chain->head, 80);
	void *tok;
	uint32_t len;
	assert_int_equal(vq_driver_get_used(&g->drv, &tok, &len), 1);
	assert_int_equal(len, 80);
	assert_int_equal(vq_driver_in_flight(&g->drv), 0);
	rig_free(g);
}

static void test_indirect_table_is_followed(void **state)
{
	(void)state;
	struct rig *g = rig_new(8, false, 0);
	struct vring_desc *t = table_at(g, TABLE_GPA);
	t[0] = (struct vring_desc){ DATA_GPA, 5, VRING_DESC_F_NEXT, 2 };
	t[2] = (struct vring_desc){ DATA_GPA + 0x100, 7, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 1 };
	t[1] = (struct vring_desc){ DATA_GPA + 0x200, 9, VRING_DESC_F_WRITE, 0 };
	set_desc(g, 6, TABLE_GPA, 3 * 16, VRING_DESC_F_INDIRECT, 0);
	publish(g, 6);
	assert_int_equal(vq_device_pop(&g->dev, g->chain), VQ_CHAIN);
	assert_int_equal(g->chain->head, 6);
	assert_int_equal(g->chain->n_rd, 1);
	assert_int_equal(g->chain->n_wr, 2);
	assert_int_equal(g->chain->rd_len, 5);
	assert_int_equal(g->chain->wr_len, 16);
	assert_ptr_equal(vq_chain_wr(g->chain)[1].iov_base, gm_gpa_ptr(&g->gm, DATA_GPA + 0x200, 9));
	rig_free(g);
}

static void test_indirect_table_of_max_segments_is_accepted(void **state)
{
	(void)state;
	struct rig *g = rig_new(8, false, 0);
	struct vring_desc *t = table_at(g, TABLE_GPA);
	for (unsigned i = 0; i < VQ_MAX_SEGS; i++)
		t[i] = (struct vring_desc){ DATA_GPA + i, 1, i + 1 < VQ_MAX_SEGS ? VRING_DESC_F_NEXT : 0,
		                            (uint16_t)(i + 1) };
	set_desc(g, 0, TABLE_GPA, VQ_MAX_SEGS * 16, VRING_DESC_F_INDIRECT, 0);
	publish(g, 0);
	assert_int_equal(vq_device_pop(&g->dev, g->chain), VQ_CHAIN);
	assert_int_equal(g->chain->n_rd, VQ_MAX_SEGS);
	assert_int_equal(g->chain->rd_len, VQ_MAX_SEGS);
	rig_free(g);
}

/* Many round trips with up to three chains in flight, completed in reverse order, across the 16-bit wrap. */
static unsigned run_round_trips(struct rig *g, unsigned rounds)
{
	unsigned done = 0, serial = 0;
	static int tokens[3];
	while (done < rounds) {
		unsigned batch = 1 + done % 3;
		uint32_t sent[3];
		for (unsigned b = 0; b < batch; b++) {
			uint64_t rd = DATA_GPA + b * 0x1000, wr = rd + 0x800;
			sent[b] = serial++;
			memcpy(g->mem + rd, &sent[b], 4);
			struct vq_seg segs[2] = { { rd, 4 }, { wr, 8 } };
			assert_int_equal(vq_driver_add(&g->drv, segs, 1, 1, &tokens[b]), 0);
		}
		uint16_t heads[3];
		for (unsigned b = 0; b < batch; b++) {
			assert_int_equal(vq_device_pop(&g->dev, g->chain), VQ_CHAIN);
			assert_int_equal(g->chain->n_rd, 1);
			assert_int_equal(g->chain->n_wr, 1);
			uint32_t v;
			memcpy(&v, g->chain->iov[0].iov_base, 4);
			assert_int_equal(v, sent[b]);
			v = ~v;
			memcpy(g->chain->iov[1].iov_base, &v, 4);
			heads[b] = g->chain->head;
		}
		assert_int_equal(vq_device_pop(&g->dev, g->chain), VQ_EMPTY);
		for (unsigned b = batch; b-- > 0;)
			vq_device_push(&g->dev, heads[b], 4 + b);
		for (unsigned b = batch; b-- > 0;) {
			void *tok;
			uint32_t len, v;
			assert_int_equal(vq_driver_get_used(&g->drv, &tok, &len), 1);
			assert_ptr_equal(tok, &tokens[b]);
			assert_int_equal(len, 4 + b);
			memcpy(&v, g->mem + DATA_GPA + b * 0x1000 + 0x800, 4);
			assert_int_equal(v, ~sent[b]);
		}
		assert_int_equal(vq_driver_in_flight(&g->drv), 0);
		done += batch;
	}
	return done;
}

static void test_more_than_70000_round_trips_wrap_the_indexes(void **state)
{
	(void)state;
	struct rig *g = rig_new(8, true, 0);
	unsigned done = run_round_trips(g, 70001);
	uint16_t expect = (uint16_t)done;
	assert_true(done > 70000);
	assert_int_equal(g->drv.split.avail_idx, expect); /* wrapped, not saturated */
	assert_int_equal(g->dr.avail->idx, expect);
	assert_int_equal(g->dr.used->idx, expect);
	assert_int_equal(g->dev.split.last_avail, expect);
	assert_int_equal(g->drv.split.last_used, expect);
	rig_free(g);
}

static void test_round_trips_starting_just_below_65535(void **state)
{
	(void)state;
	for (uint16_t base = 65528; base != 2; base++) {
		struct rig *g = rig_new(8, true, base);
		unsigned done = run_round_trips(g, 20);
		assert_int_equal(g->drv.split.avail_idx, (uint16_t)(base + done));
		assert_int_equal(g->dr.used->idx, (uint16_t)(base + done));
		assert_int_equal(g->dev.split.last_avail, g->drv.split.avail_idx);
		rig_free(g);
	}
}

static void test_device_init_restarts_at_used_index(void **state)
{
	(void)state;
	struct rig *g = rig_new(8, false, 65534);
	struct vq_seg s[2] = { { DATA_GPA, 4 }, { DATA_GPA + 0x100, 4 } };
	int t1, t2;
	assert_int_equal(vq_driver_add(&g->drv, &s[0], 1, 0, &t1), 0);
	assert_int_equal(vq_driver_add(&g->drv, &s[1], 1, 0, &t2), 0);
	assert_int_equal(vq_device_pop(&g->dev, g->chain), VQ_CHAIN);
	uint16_t first = g->chain->head;
	vq_device_push(&g->dev, first, 0);
	assert_int_equal(vq_device_pop(&g->dev, g->chain), VQ_CHAIN);
	uint16_t second = g->chain->head;
	assert_int_equal(g->dev.split.last_avail, 0);
	/* The second chain was popped but never returned: a new owner given last_avail re-reads it from used->idx. */
	vq_device_init(&g->dev, &g->gm, &g->vr, false, g->dev.split.last_avail);
	assert_int_equal(g->dev.split.last_avail, 65535);
	assert_int_equal(vq_device_pop(&g->dev, g->chain), VQ_CHAIN);
	assert_int_equal(g->chain->head, second);
	assert_int_equal(vq_device_pop(&g->dev, g->chain), VQ_EMPTY);
	/* With nothing outstanding the given base is kept. */
	vq_device_push(&g->dev, second, 0);
	vq_device_init(&g->dev, &g->gm, &g->vr, false, 0);
	assert_int_equal(g->dev.split.last_avail, 0);
	assert_int_equal(g->dev.split.used_idx, 0);
	rig_free(g);
}

/* ---- notification suppression ---- */

static void test_event_idx_kick_needed_follows_avail_event(void **state)
{
	(void)state;
	struct rig *g = rig_new(8, true, 0);
	struct vq_seg s = { DATA_GPA, 4 };
	int t;

	assert_false(vq_driver_kick_needed(&g->drv)); /* nothing added */
	assert_int_equal(vq_driver_add(&g->drv, &s, 1, 0, &t), 0);
	assert_true(vq_driver_kick_needed(&g->drv)); /* avail_event 0: the device waits for entry 0 */
	assert_false(vq_driver_kick_needed(&g->drv)); /* nothing new since */
	assert_int_equal(vq_driver_add(&g->drv, &s, 1, 0, &t), 0);
	assert_false(vq_driver_kick_needed(&g->drv)); /* the device has not re-armed: it is still working */

	assert_int_equal(vq_device_pop(&g->dev, g->chain), VQ_CHAIN);
	assert_int_equal(vq_device_pop(&g->dev, g->chain), VQ_CHAIN);
	assert_int_equal(vq_device_pop(&g->dev, g->chain), VQ_EMPTY);
	assert_false(vq_device_arm(&g->dev)); /* nothing arrived meanwhile */
	assert_int_equal(*vring_avail_event_ptr(&g->dr), 2);
	assert_int_equal(vq_driver_add(&g->drv, &s, 1, 0, &t), 0);
	assert_true(vq_driver_kick_needed(&g->drv));

	/* Entries that arrive between the last pop and arming are reported by arm. */
	assert_true(vq_device_arm(&g->dev));
	assert_int_equal(vq_device_pop(&g->dev, g->chain), VQ_CHAIN);
	assert_false(vq_device_arm(&g->dev));

	/* Two adds in one batch, the device armed at the first of them: one kick. */
	assert_int_equal(vq_driver_add(&g->drv, &s, 1, 0, &t), 0);
	assert_int_equal(vq_driver_add(&g->drv, &s, 1, 0, &t), 0);
	assert_true(vq_driver_kick_needed(&g->drv));
	/* Armed further ahead (avail_event past our new entries): no kick. */
	store_once16(vring_avail_event_ptr(&g->vr), 10);
	assert_int_equal(vq_driver_add(&g->drv, &s, 1, 0, &t), 0);
	assert_false(vq_driver_kick_needed(&g->drv));
	rig_free(g);
}

static void test_event_idx_kick_across_the_wrap(void **state)
{
	(void)state;
	struct rig *g = rig_new(8, true, 65535);
	struct vq_seg s = { DATA_GPA, 4 };
	int t;
	assert_false(vq_device_arm(&g->dev));
	assert_int_equal(*vring_avail_event_ptr(&g->dr), 65535);
	assert_int_equal(vq_driver_add(&g->drv, &s, 1, 0, &t), 0);
	assert_int_equal(g->dr.avail->idx, 0);
	assert_true(vq_driver_kick_needed(&g->drv));
	assert_int_equal(vq_device_pop(&g->dev, g->chain), VQ_CHAIN);
	assert_false(vq_device_arm(&g->dev));
	assert_int_equal(*vring_avail_event_ptr(&g->dr), 0);
	assert_int_equal(vq_driver_add(&g->drv, &s, 1, 0, &t), 0);
	assert_true(vq_driver_kick_needed(&g->drv));
	rig_free(g);
}

static void test_event_idx_need_notify_follows_used_event(void **state)
{
	(void)state;
	struct rig *g = rig_new(8, true, 0);
	struct vq_seg s = { DATA_GPA, 4 };
	int t;
	void *tok;
	uint32_t len;

	for (int i = 0; i < 3; i++)
		assert_int_equal(vq_driver_add(&g->drv, &s, 1, 0, &t), 0);
	uint16_t heads[3];
	for (int i = 0; i < 3; i++) {
		assert_int_equal(vq_device_pop(&g->dev, g->chain), VQ_CHAIN);
		heads[i] = g->chain->head;
	}
	vq_device_push(&g->dev, heads[0], 0);
	assert_true(vq_device_need_notify(&g->dev));  /* first notification always goes */
	assert_false(vq_device_need_notify(&g->dev)); /* nothing pushed since */
	vq_device_push(&g->dev, heads[1], 0);
	assert_false(vq_device_need_notify(&g->dev)); /* used_event still 0: the driver has not re-armed */

	assert_int_equal(vq_driver_get_used(&g->drv, &tok, &len), 1);
	assert_int_equal(vq_driver_get_used(&g->drv, &tok, &len), 1);
	assert_false(vq_driver_arm(&g->drv));         /* nothing more used */
	assert_int_equal(*vring_used_event_ptr(&g->dr), 2);
	vq_device_push(&g->dev, heads[2], 0);
	assert_true(vq_device_need_notify(&g->dev));

	/* A used entry that lands before the driver arms is reported by arm. */
	assert_true(vq_driver_arm(&g->drv));
	assert_int_equal(vq_driver_get_used(&g->drv, &tok, &len), 1);
	assert_false(vq_driver_arm(&g->drv));
	rig_free(g);
}

static void test_event_idx_first_notify_after_init_always_goes(void **state)
{
	(void)state;
	/* A device (re)started at 300 knows nothing of what was signalled before: it notifies once regardless of
	 * used_event, then follows it. */
	struct rig *g = rig_new(8, true, 300);
	struct vq_seg s = { DATA_GPA, 4 };
	int t;
	store_once16(vring_used_event_ptr(&g->dr), 500);
	for (int i = 0; i < 2; i++)
		assert_int_equal(vq_driver_add(&g->drv, &s, 1, 0, &t), 0);
	assert_int_equal(vq_device_pop(&g->dev, g->chain), VQ_CHAIN);
	vq_device_push(&g->dev, g->chain->head, 0);
	assert_true(vq_device_need_notify(&g->dev));
	assert_int_equal(vq_device_pop(&g->dev, g->chain), VQ_CHAIN);
	vq_device_push(&g->dev, g->chain->head, 0);
	assert_false(vq_device_need_notify(&g->dev)); /* used_event 500 is not reached */
	rig_free(g);
}

static void test_flags_mode_without_event_idx(void **state)
{
	(void)state;
	struct rig *g = rig_new(8, false, 0);
	struct vq_seg s = { DATA_GPA, 4 };
	int t;
	void *tok;
	uint32_t len;

	assert_int_equal(vq_driver_add(&g->drv, &s, 1, 0, &t), 0);
	assert_true(vq_driver_kick_needed(&g->drv));
	assert_int_equal(vq_driver_add(&g->drv, &s, 1, 0, &t), 0);
	assert_true(vq_driver_kick_needed(&g->drv)); /* every batch kicks without suppression */
	assert_false(vq_driver_kick_needed(&g->drv)); /* but not for nothing */
	g->vr.used->flags = VRING_USED_F_NO_NOTIFY;
	assert_int_equal(vq_driver_add(&g->drv, &s, 1, 0, &t), 0);
	assert_false(vq_driver_kick_needed(&g->drv));
	/* arm clears NO_NOTIFY and reports what is pending */
	assert_true(vq_device_arm(&g->dev));
	assert_int_equal(g->dr.used->flags, 0);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(vq_device_pop(&g->dev, g->chain), VQ_CHAIN);
		vq_device_push(&g->dev, g->chain->head, 0);
	}
	assert_false(vq_device_arm(&g->dev));
	assert_int_equal(vq_driver_add(&g->drv, &s, 1, 0, &t), 0);
	assert_true(vq_driver_kick_needed(&g->drv));

	assert_true(vq_device_need_notify(&g->dev));
	assert_true(vq_device_need_notify(&g->dev)); /* flags mode: asked every time */
	g->dr.avail->flags = VRING_AVAIL_F_NO_INTERRUPT;
	assert_false(vq_device_need_notify(&g->dev));
	assert_true(vq_driver_arm(&g->drv)); /* used entries are waiting */
	assert_int_equal(g->dr.avail->flags, 0);
	assert_true(vq_device_need_notify(&g->dev));
	for (int i = 0; i < 3; i++)
		assert_int_equal(vq_driver_get_used(&g->drv, &tok, &len), 1);
	assert_false(vq_driver_arm(&g->drv));
	rig_free(g);
}

/* ---- malformed chains: -EBADMSG with the head set ---- */

static void test_bad_chain_address_outside_memory(void **state)
{
	(void)state;
	struct rig *g = rig_new(8, false, 0);
	set_desc(g, 3, MEM_SIZE, 1, 0, 0);
	expect_bad_chain(g, 3);
	set_desc(g, 3, MEM_SIZE - 8, 9, 0, 0); /* starts inside, ends one byte past */
	expect_bad_chain(g, 3);
	set_desc(g, 3, DATA_GPA, 8, VRING_DESC_F_NEXT, 4);
	set_desc(g, 4, 0x100000000ull, 8, VRING_DESC_F_WRITE, 0); /* second descriptor far away */
	expect_bad_chain(g, 3);
	expect_good_after(g);
	rig_free(g);
}

static void test_bad_chain_address_plus_len_overflows(void **state)
{
	(void)state;
	struct rig *g = rig_new(8, false, 0);
	set_desc(g, 1, UINT64_MAX - 10, 100, 0, 0);
	expect_bad_chain(g, 1);
	set_desc(g, 1, UINT64_MAX, 1, VRING_DESC_F_WRITE, 0);
	expect_bad_chain(g, 1);
	expect_good_after(g);
	rig_free(g);
}

static void test_bad_chain_loop(void **state)
{
	(void)state;
	struct rig *g = rig_new(8, false, 0);
	set_desc(g, 0, DATA_GPA, 4, VRING_DESC_F_NEXT, 1);
	set_desc(g, 1, DATA_GPA, 4, VRING_DESC_F_NEXT, 0);
	expect_bad_chain(g, 0);
	set_desc(g, 5, DATA_GPA, 4, VRING_DESC_F_NEXT, 5); /* points at itself */
	expect_bad_chain(g, 5);
	rig_free(g);
}

static void test_bad_chain_next_out_of_range(void **state)
{
	(void)state;
	struct rig *g = rig_new(8, false, 0);
	set_desc(g, 0, DATA_GPA, 4, VRING_DESC_F_NEXT, 8);
	expect_bad_chain(g, 0);
	set_desc(g, 0, DATA_GPA, 4, VRING_DESC_F_NEXT, 0xffff);
	expect_bad_chain(g, 0);
	expect_good_after(g);
	rig_free(g);
}

static void test_bad_chain_longer_than_num(void **state)
{
	(void)state;
	struct rig *g = rig_new(8, false, 0);
	/* Every descriptor once, then back to the start: the ninth visit is refused. */
	for (unsigned i = 0; i < 8; i++)
		set_desc(g, i, DATA_GPA + i, 1, VRING_DESC_F_NEXT, (uint16_t)((i + 1) % 8));
	expect_bad_chain(g, 0);
	/* Same in an indirect table of 4 whose last entry leads back in. */
	struct vring_desc *t = table_at(g, TABLE_GPA);
	for (unsigned i = 0; i < 4; i++)
		t[i] = (struct vring_desc){ DATA_GPA, 1, VRING_DESC_F_NEXT, (uint16_t)((i + 1) % 4) };
	set_desc(g, 2, TABLE_GPA, 4 * 16, VRING_DESC_F_INDIRECT, 0);
	expect_bad_chain(g, 2);
	rig_free(g);
}

static void test_bad_chain_readable_after_writable(void **state)
{
	(void)state;
	struct rig *g = rig_new(8, false, 0);
	set_desc(g, 0, DATA_GPA, 4, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 1);
	set_desc(g, 1, DATA_GPA, 4, 0, 0);
	expect_bad_chain(g, 0);
	/* and inside an indirect table */
	struct vring_desc *t = table_at(g, TABLE_GPA);
	t[0] = (struct vring_desc){ DATA_GPA, 4, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 1 };
	t[1] = (struct vring_desc){ DATA_GPA, 4, 0, 0 };
	set_desc(g, 4, TABLE_GPA, 32, VRING_DESC_F_INDIRECT, 0);
	expect_bad_chain(g, 4);
	expect_good_after(g);
	rig_free(g);
}

static void test_bad_chain_indirect_with_next(void **state)
{
	(void)state;
	struct rig *g = rig_new(8, false, 0);
	struct vring_desc *t = table_at(g, TABLE_GPA);
	t[0] = (struct vring_desc){ DATA_GPA, 4, 0, 0 };
	set_desc(g, 0, TABLE_GPA, 16, VRING_DESC_F_INDIRECT | VRING_DESC_F_NEXT, 1);
	set_desc(g, 1, DATA_GPA, 4, VRING_DESC_F_WRITE, 0);
	expect_bad_chain(g, 0);
	/* The same table without NEXT is fine: the refusal was about the flag. */
	set_desc(g, 0, TABLE_GPA, 16, VRING_DESC_F_INDIRECT, 0);
	publish(g, 0);
	assert_int_equal(vq_device_pop(&g->dev, g->chain), VQ_CHAIN);
	assert_int_equal(g->chain->rd_len, 4);
	rig_free(g);
}

static void test_bad_chain_indirect_table_length(void **state)
{
	(void)state;
	struct rig *g = rig_new(8, false, 0);
	struct vring_desc *t = table_at(g, TABLE_GPA);
	for (unsigned i = 0; i < VQ_MAX_SEGS + 1; i++)
		t[i] = (struct vring_desc){ DATA_GPA, 1, 0, 0 };
	set_desc(g, 7, TABLE_GPA, 0, VRING_DESC_F_INDIRECT, 0);
	expect_bad_chain(g, 7);
	set_desc(g, 7, TABLE_GPA, 24, VRING_DESC_F_INDIRECT, 0);
	expect_bad_chain(g, 7);
	set_desc(g, 7, TABLE_GPA, 15, VRING_DESC_F_INDIRECT, 0);
	expect_bad_chain(g, 7);
	set_desc(g, 7, TABLE_GPA, (VQ_MAX_SEGS + 1) * 16, VRING_DESC_F_INDIRECT, 0);
	expect_bad_chain(g, 7);
	set_desc(g, 7, TABLE_GPA, 0xfffffff0u, VRING_DESC_F_INDIRECT, 0);
	expect_bad_chain(g, 7);
	expect_good_after(g);
	rig_free(g);
}

static void test_bad_chain_indirect_inside_indirect(void **state)
{
	(void)state;
	struct rig *g = rig_new(8, false, 0);
	struct vring_desc *t = table_at(g, TABLE_GPA), *t2 = table_at(g, TABLE_GPA + 0x1000);
	t2[0] = (struct vring_desc){ DATA_GPA, 4, 0, 0 };
	t[0] = (struct vring_desc){ DATA_GPA, 4, VRING_DESC_F_NEXT, 1 };
	t[1] = (struct vring_desc){ TABLE_GPA + 0x1000, 16, VRING_DESC_F_INDIRECT, 0 };
	set_desc(g, 2, TABLE_GPA, 32, VRING_DESC_F_INDIRECT, 0);
	expect_bad_chain(g, 2);
	/* An indirect table that names itself */
	t[0] = (struct vring_desc){ TABLE_GPA, 16, VRING_DESC_F_INDIRECT, 0 };
	set_desc(g, 2, TABLE_GPA, 16, VRING_DESC_F_INDIRECT, 0);
	expect_bad_chain(g, 2);
	rig_free(g);
}

static void test_bad_chain_indirect_table_outside_memory(void **state)
{
	(void)state;
	struct rig *g = rig_new(8, false, 0);
	set_desc(g, 0, MEM_SIZE, 16, VRING_DESC_F_INDIRECT, 0);
	expect_bad_chain(g, 0);
	set_desc(g, 0, MEM_SIZE - 16, 32, VRING_DESC_F_INDIRECT, 0); /* last entry past the end */
	expect_bad_chain(g, 0);
	set_desc(g, 0, UINT64_MAX - 15, 32, VRING_DESC_F_INDIRECT, 0);
	expect_bad_chain(g, 0);
	/* A table that straddles the two regions is not one contiguous mapping for us: refused, not misread. */
	set_desc(g, 0, HALF - 16, 32, VRING_DESC_F_INDIRECT, 0);
	expect_bad_chain(g, 0);
	/* An indirect entry pointing outside memory */
	struct vring_desc *t = table_at(g, TABLE_GPA);
	t[0] = (struct vring_desc){ MEM_SIZE + 0x1000, 4, 0, 0 };
	set_desc(g, 0, TABLE_GPA, 16, VRING_DESC_F_INDIRECT, 0);
	expect_bad_chain(g, 0);
	expect_good_after(g);
	rig_free(g);
}

static void test_bad_chain_too_many_segments_after_split(void **state)
{
	(void)state;
	struct rig *g = rig_new(8, false, 0);
	/* VQ_MAX_SEGS descriptors, one of which spans the region boundary: one iovec too many. */
	struct vring_desc *t = table_at(g, TABLE_GPA);
	for (unsigned i = 0; i < VQ_MAX_SEGS; i++)
		t[i] = (struct vring_desc){ DATA_GPA + i, 1, i + 1 < VQ_MAX_SEGS ? VRING_DESC_F_NEXT : 0,
		                            (uint16_t)(i + 1) };
	t[VQ_MAX_SEGS - 1] = (struct vring_desc){ HALF - 1, 2, 0, 0 };
	set_desc(g, 0, TABLE_GPA, VQ_MAX_SEGS * 16, VRING_DESC_F_INDIRECT, 0);
	expect_bad_chain(g, 0);
	rig_free(g);
}

/* ---- ring corruption: -EIO ---- */

static void test_avail_idx_jump_beyond_num_is_ring_corruption(void **state)
{
	(void)state;
	struct rig *g = rig_new(8, false, 100);
	g->dr.avail->idx = 100 + 9;
	assert_int_equal(vq_device_pop(&g->dev, g->chain), -EIO);
	assert_int_equal(g->dev.split.last_avail, 100); /* nothing consumed */
	g->dr.avail->idx = 100 - 1;                /* backwards = a jump of 65535 */
	assert_int_equal(vq_device_pop(&g->dev, g->chain), -EIO);
	/* Exactly num available is a full ring, not corruption. */
	for (unsigned i = 0; i < 8; i++) {
		set_desc(g, i, DATA_GPA, 1, 0, 0);
		g->dr.avail->ring[(100 + i) % 8] = (uint16_t)i;
	}
	g->dr.avail->idx = 100 + 8;
	for (unsigned i = 0; i < 8; i++) {
		assert_int_equal(vq_device_pop(&g->dev, g->chain), VQ_CHAIN);
		assert_int_equal(g->chain->head, i);
	}
	assert_int_equal(vq_device_pop(&g->dev, g->chain), VQ_EMPTY);
	rig_free(g);
}

static void test_avail_ring_head_out_of_range_is_ring_corruption(void **state)
{
	(void)state;
	struct rig *g = rig_new(8, false, 0);
	publish(g, 8);
	assert_int_equal(vq_device_pop(&g->dev, g->chain), -EIO);
	assert_int_equal(g->dev.split.last_avail, 0);
	g->dr.avail->ring[0] = 0xffff;
	assert_int_equal(vq_device_pop(&g->dev, g->chain), -EIO);
	g->dr.avail->ring[0] = 7;
	set_desc(g, 7, DATA_GPA, 3, 0, 0);
	assert_int_equal(vq_device_pop(&g->dev, g->chain), VQ_CHAIN);
	assert_int_equal(g->chain->head, 7);
	rig_free(g);
}

/* ---- driver against a hostile device ---- */

static void device_writes_used(struct rig *g, uint32_t id, uint32_t len, uint16_t new_idx)
{
	struct vring_used_elem *e = &g->vr.used->ring[g->drv.split.last_used % g->num];
	e->id = id;
	e->len = len;
	store_release16(&g->vr.used->idx, new_idx);
}

static void test_driver_refuses_used_id_never_issued(void **state)
{
	(void)state;
	struct rig *g = rig_new(8, false, 0);
	struct vq_seg s[3] = { { DATA_GPA, 4 }, { DATA_GPA + 8, 4 }, { DATA_GPA + 16, 4 } };
	int t, t2;
	void *tok = NULL;
	uint32_t len = 0;
	assert_int_equal(vq_driver_add(&g->drv, s, 1, 2, &t), 0); /* descriptors 0, 1, 2; head 0 */
	assert_int_equal(vq_driver_add(&g->drv, s, 1, 0, &t2), 0); /* descriptor 3 */
	device_writes_used(g, 5, 0, 1);
	assert_int_equal(vq_driver_get_used(&g->drv, &tok, &len), -EIO);
	device_writes_used(g, 8, 0, 1);
	assert_int_equal(vq_driver_get_used(&g->drv, &tok, &len), -EIO);
	device_writes_used(g, 0x10000, 0, 1);
	assert_int_equal(vq_driver_get_used(&g->drv, &tok, &len), -EIO);
	device_writes_used(g, 1, 0, 1); /* inside our chain, but not its head */
	assert_int_equal(vq_driver_get_used(&g->drv, &tok, &len), -EIO);
	assert_null(tok);
	assert_int_equal(vq_driver_in_flight(&g->drv), 4);
	device_writes_used(g, 0, 8, 1);
	assert_int_equal(vq_driver_get_used(&g->drv, &tok, &len), 1);
	assert_ptr_equal(tok, &t);
	assert_int_equal(len, 8);
	/* The same id a second time (one chain still out, so the index move itself is plausible): not issued. */
	device_writes_used(g, 0, 0, 2);
	assert_int_equal(vq_driver_get_used(&g->drv, &tok, &len), -EIO);
	device_writes_used(g, 3, 0, 2);
	assert_int_equal(vq_driver_get_used(&g->drv, &tok, &len), 1);
	assert_ptr_equal(tok, &t2);
	rig_free(g);
}

static void test_driver_refuses_used_len_beyond_writable_capacity(void **state)
{
	(void)state;
	struct rig *g = rig_new(8, false, 0);
	struct vq_seg s[3] = { { DATA_GPA, 100 }, { DATA_GPA + 0x100, 30 }, { DATA_GPA + 0x200, 34 } };
	int t;
	void *tok;
	uint32_t len;
	assert_int_equal(vq_driver_add(&g->drv, s, 1, 2, &t), 0);
	device_writes_used(g, 0, 65, 1);
	assert_int_equal(vq_driver_get_used(&g->drv, &tok, &len), -EIO);
	device_writes_used(g, 0, UINT32_MAX, 1);
	assert_int_equal(vq_driver_get_used(&g->drv, &tok, &len), -EIO);
	device_writes_used(g, 0, 64, 1);
	assert_int_equal(vq_driver_get_used(&g->drv, &tok, &len), 1);
	assert_int_equal(len, 64);
	/* A readable-only chain has no capacity at all. */
	assert_int_equal(vq_driver_add(&g->drv, s, 1, 0, &t), 0);
	device_writes_used(g, g->dr.avail->ring[1], 1, 2);
	assert_int_equal(vq_driver_get_used(&g->drv, &tok, &len), -EIO);
	rig_free(g);
}

static void test_driver_refuses_used_idx_jump_beyond_in_flight(void **state)
{
	(void)state;
	struct rig *g = rig_new(8, false, 65535);
	struct vq_seg s = { DATA_GPA, 4 };
	int t;
	void *tok;
	uint32_t len;
	assert_int_equal(vq_driver_add(&g->drv, &s, 1, 0, &t), 0);
	assert_int_equal(vq_driver_add(&g->drv, &s, 1, 0, &t), 0);
	g->vr.used->ring[65535 % 8] = (struct vring_used_elem){ 0, 0 };
	g->vr.used->ring[0] = (struct vring_used_elem){ 1, 0 };
	store_release16(&g->vr.used->idx, 2); /* three entries claimed, two out */
	assert_int_equal(vq_driver_get_used(&g->drv, &tok, &len), -EIO);
	store_release16(&g->vr.used->idx, 65534); /* backwards */
	assert_int_equal(vq_driver_get_used(&g->drv, &tok, &len), -EIO);
	store_release16(&g->vr.used->idx, 1); /* two, across the wrap: fine */
	assert_int_equal(vq_driver_get_used(&g->drv, &tok, &len), 1);
	assert_int_equal(vq_driver_get_used(&g->drv, &tok, &len), 1);
	assert_int_equal(vq_driver_get_used(&g->drv, &tok, &len), 0);
	assert_int_equal(vq_driver_in_flight(&g->drv), 0);
	/* With nothing out, any movement is a lie. */
	store_release16(&g->vr.used->idx, 2);
	assert_int_equal(vq_driver_get_used(&g->drv, &tok, &len), -EIO);
	rig_free(g);
}

static void test_driver_counts_chains_not_descriptors_for_used_idx_jump(void **state)
{
	(void)state;
	struct rig *g = rig_new(8, false, 0);
	struct vq_seg s[3] = { { DATA_GPA, 4 }, { DATA_GPA + 8, 4 }, { DATA_GPA + 16, 4 } };
	int t;
	void *tok = NULL;
	uint32_t len;
	/* One chain of three descriptors out: the device may return one entry, not two (or three). */
	assert_int_equal(vq_driver_add(&g->drv, s, 1, 2, &t), 0);
	g->vr.used->ring[0] = (struct vring_used_elem){ 0, 4 };
	g->vr.used->ring[1] = (struct vring_used_elem){ 0, 4 };
	store_release16(&g->vr.used->idx, 2);
	assert_int_equal(vq_driver_get_used(&g->drv, &tok, &len), -EIO);
	assert_null(tok);
	store_release16(&g->vr.used->idx, 3);
	assert_int_equal(vq_driver_get_used(&g->drv, &tok, &len), -EIO);
	store_release16(&g->vr.used->idx, 1);
	assert_int_equal(vq_driver_get_used(&g->drv, &tok, &len), 1);
	assert_ptr_equal(tok, &t);
	assert_int_equal(vq_driver_in_flight(&g->drv), 0);
	rig_free(g);
}

static void test_driver_ring_full_is_enospc(void **state)
{
	(void)state;
	struct rig *g = rig_new(8, false, 0);
	struct vq_seg s[3] = { { DATA_GPA, 4 }, { DATA_GPA + 8, 4 }, { DATA_GPA + 16, 4 } };
	int t;
	void *tok;
	uint32_t len;
	for (int i = 0; i < 2; i++)
		assert_int_equal(vq_driver_add(&g->drv, s, 1, 2, &t), 0);
	assert_int_equal(vq_driver_in_flight(&g->drv), 6);
	assert_int_equal(vq_driver_add(&g->drv, s, 1, 2, &t), -ENOSPC); /* 3 needed, 2 free */
	assert_int_equal(g->dr.avail->idx, 2);                           /* nothing published */
	assert_int_equal(vq_driver_add(&g->drv, s, 1, 1, &t), 0);       /* 2 fit exactly */
	assert_int_equal(vq_driver_add(&g->drv, s, 1, 0, &t), -ENOSPC);
	assert_int_equal(vq_driver_add(&g->drv, s, 0, 0, &t), -EINVAL);
	assert_int_equal(vq_driver_add(&g->drv, s, 1, 0, NULL), -EINVAL);
	/* Return one chain: its descriptors are reusable. */
	assert_int_equal(vq_device_pop(&g->dev, g->chain), VQ_CHAIN);
	vq_device_push(&g->dev, g->chain->head, 0);
	assert_int_equal(vq_driver_get_used(&g->drv, &tok, &len), 1);
	assert_int_equal(vq_driver_add(&g->drv, s, 1, 2, &t), 0);
	assert_int_equal(vq_driver_in_flight(&g->drv), 8);
	rig_free(g);
}

static void test_driver_init_refuses_bad_num(void **state)
{
	(void)state;
	struct vq_driver d;
	uint8_t ring[4096] __attribute__((aligned(16))) = { 0 };
	struct vring_split r = { .num = 6, .desc = (void *)ring, .avail = (void *)(ring + 1024),
	                         .used = (void *)(ring + 2048) };
	assert_int_equal(vq_driver_init(&d, &r, false), -EINVAL);
	r.num = 0;
	assert_int_equal(vq_driver_init(&d, &r, false), -EINVAL);
	r.num = 2 * VQ_MAX_SIZE;
	assert_int_equal(vq_driver_init(&d, &r, false), -EINVAL);
	r.num = 4;
	assert_int_equal(vq_driver_init(&d, &r, true), 0);
	vq_driver_free(&d);
}

/* ---- guest_mem ---- */

static void test_gm_add_refuses_overlap_and_bad_regions(void **state)
{
	(void)state;
	struct guest_mem gm = { 0 };
	int fd = memfd_of(0x10000);
	assert_int_equal(gm_add(&gm, 0x10000, 0x4000, 0x100000, 0, fd), 0);
	/* gpa overlaps: inside, straddling the start, straddling the end, covering */
	assert_int_equal(gm_add(&gm, 0x11000, 0x1000, 0x200000, 0, fd), -EINVAL);
	assert_int_equal(gm_add(&gm, 0xf000, 0x1001, 0x200000, 0, fd), -EINVAL);
	assert_int_equal(gm_add(&gm, 0x13fff, 0x10, 0x200000, 0, fd), -EINVAL);
	assert_int_equal(gm_add(&gm, 0x0, 0x100000, 0x200000, 0, fd), -EINVAL);
	/* uaddr overlaps although gpa does not */
	assert_int_equal(gm_add(&gm, 0x20000, 0x1000, 0x103000, 0, fd), -EINVAL);
	/* empty, overflowing, no fd */
	assert_int_equal(gm_add(&gm, 0x20000, 0, 0x200000, 0, fd), -EINVAL);
	assert_int_equal(gm_add(&gm, UINT64_MAX - 0xfff, 0x2000, 0x200000, 0, fd), -EINVAL);
	assert_int_equal(gm_add(&gm, 0x20000, 0x1000, UINT64_MAX - 0xfff, 0, fd), -EINVAL);
	assert_int_equal(gm_add(&gm, 0x20000, 0x1000, 0x200000, UINT64_MAX - 0xfff, fd), -EINVAL);
	assert_int_equal(gm_add(&gm, 0x20000, 0x1000, 0x200000, 0, -1), -EINVAL);
	assert_int_equal(gm.n, 1);
	/* Exactly adjacent on both sides is fine. */
	assert_int_equal(gm_add(&gm, 0xf000, 0x1000, 0xff000, 0, fd), 0);
	assert_int_equal(gm_add(&gm, 0x14000, 0x1000, 0x104000, 0x4000, fd), 0);
	assert_int_equal(gm.n, 3);
	assert_int_equal(gm_retire(&gm, 0x10000, 0x1000), -ENOENT); /* size must match */
	assert_int_equal(gm_retire(&gm, 0x10000, 0x4000), 0);
	assert_int_equal(gm_compact(&gm), 1);
	assert_int_equal(gm.n, 2);
	assert_null(gm_gpa_ptr(&gm, 0x10000, 1));
	gm_clear(&gm);
	assert_int_equal(gm.n, 0);
	close(fd);
}

static void test_gm_add_refuses_more_than_max_regions(void **state)
{
	(void)state;
	struct guest_mem gm = { 0 };
	int fd = memfd_of(0x1000);
	for (unsigned i = 0; i < GM_MAX_REGIONS; i++)
		assert_int_equal(gm_add(&gm, i * 0x1000ull, 0x1000, 0x100000 + i * 0x1000ull, 0, fd), 0);
	assert_int_equal(gm_add(&gm, GM_MAX_REGIONS * 0x1000ull, 0x1000, 0x900000, 0, fd), -ENOSPC);
	gm_clear(&gm);
	close(fd);
}

static void test_gm_gpa_ptr_bounds_at_exact_edges(void **state)
{
	(void)state;
	struct guest_mem gm = { 0 };
	int fd = memfd_of(0x3000);
	assert_int_equal(gm_add(&gm, 0x1000, 0x2000, 0x40000, 0x1000, fd), 0);
	uint8_t *base = gm_gpa_ptr(&gm, 0x1000, 0x2000);
	assert_non_null(base);
	assert_ptr_equal(base, gm.r[0].host);
	assert_ptr_equal(gm_gpa_ptr(&gm, 0x1000, 0), base);
	assert_ptr_equal(gm_gpa_ptr(&gm, 0x2fff, 1), base + 0x1fff);
	assert_null(gm_gpa_ptr(&gm, 0x1000, 0x2001));
	assert_null(gm_gpa_ptr(&gm, 0x2fff, 2));
	assert_null(gm_gpa_ptr(&gm, 0x3000, 1));
	assert_null(gm_gpa_ptr(&gm, 0x3000, 0));
	assert_null(gm_gpa_ptr(&gm, 0xfff, 1));
	assert_null(gm_gpa_ptr(&gm, 0xfff, 2));
	assert_null(gm_gpa_ptr(&gm, 0x1001, UINT64_MAX));
	assert_null(gm_gpa_ptr(&gm, UINT64_MAX, 2));
	/* The same edges in the frontend's address space. */
	assert_ptr_equal(gm_uaddr_ptr(&gm, 0x40000, 0x2000), base);
	assert_ptr_equal(gm_uaddr_ptr(&gm, 0x41fff, 1), base + 0x1fff);
	assert_null(gm_uaddr_ptr(&gm, 0x41fff, 2));
	assert_null(gm_uaddr_ptr(&gm, 0x42000, 1));
	assert_null(gm_uaddr_ptr(&gm, 0x3ffff, 1));
	assert_null(gm_uaddr_ptr(&gm, 0x40010, UINT64_MAX - 4));
	/* The mapping honours mmap_offset: byte 0 of the region is byte 0x1000 of the file. */
	uint8_t v = 0x5a;
	assert_int_equal(pwrite(fd, &v, 1, 0x1000), 1);
	assert_int_equal(base[0], 0x5a);
	gm_clear(&gm);
	close(fd);
}

static void test_gm_gpa_iov_splits_across_adjacent_regions(void **state)
{
	(void)state;
	struct guest_mem gm = { 0 };
	int fd = memfd_of(0x4000);
	struct iovec iov[4];
	/* Added out of order to show that lookup does not depend on it; a gap after 0x3000. */
	assert_int_equal(gm_add(&gm, 0x1000, 0x2000, 0x80000, 0x1000, fd), 0);
	assert_int_equal(gm_add(&gm, 0x0, 0x1000, 0x10000, 0, fd), 0);
	assert_int_equal(gm_add(&gm, 0x4000, 0x1000, 0x90000, 0x3000, fd), 0);

	assert_int_equal(gm_gpa_iov(&gm, 0xff0, 0x20, iov, 4), 2);
	assert_ptr_equal(iov[0].iov_base, gm.r[1].host + 0xff0);
	assert_int_equal(iov[0].iov_len, 0x10);
	assert_ptr_equal(iov[1].iov_base, gm.r[0].host);
	assert_int_equal(iov[1].iov_len, 0x10);
	/* A range that ends or starts exactly at the boundary: one iovec per region, none empty. */
	assert_int_equal(gm_gpa_iov(&gm, 0x0, 0x3000, iov, 4), 2);
	assert_int_equal(iov[0].iov_len, 0x1000);
	assert_int_equal(iov[1].iov_len, 0x2000);
	assert_int_equal(gm_gpa_iov(&gm, 0x1000, 0x10, iov, 4), 1);
	assert_int_equal(gm_gpa_iov(&gm, 0xff0, 0x20, iov, 1), -E2BIG);
	assert_int_equal(gm_gpa_iov(&gm, 0x2ff0, 0x20, iov, 4), -EFAULT); /* runs into the gap */
	assert_int_equal(gm_gpa_iov(&gm, 0x3000, 1, iov, 4), -EFAULT);
	assert_int_equal(gm_gpa_iov(&gm, 0x10, UINT64_MAX, iov, 4), -EFAULT);
	assert_int_equal(gm_gpa_iov(&gm, 0x10, 0, iov, 4), 0);
	/* The bytes are the file's: region 0x0 and region 0x1000 are contiguous in the memfd. */
	uint8_t buf[0x20];
	for (unsigned i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)i;
	assert_int_equal(pwrite(fd, buf, sizeof(buf), 0xff0), (ssize_t)sizeof(buf));
	assert_int_equal(gm_gpa_iov(&gm, 0xff0, 0x20, iov, 4), 2);
	assert_memory_equal(iov[0].iov_base, buf, 0x10);
	assert_memory_equal(iov[1].iov_base, buf + 0x10, 0x10);
	gm_clear(&gm);
	close(fd);
}

int main(void)
{
	log_init("test_vring", LOG_LVL_ERROR, false);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip_segments_iovecs_and_lengths),
		cmocka_unit_test(test_only_readable_or_only_writable_chains),
		cmocka_unit_test(test_zero_length_descriptors_are_skipped),
		cmocka_unit_test(test_descriptor_across_two_regions_gives_two_iovecs),
		cmocka_unit_test(test_chain_of_exactly_num_descriptors_is_accepted),
		cmocka_unit_test(test_indirect_table_is_followed),
		cmocka_unit_test(test_indirect_table_of_max_segments_is_accepted),
		cmocka_unit_test(test_more_than_70000_round_trips_wrap_the_indexes),
		cmocka_unit_test(test_round_trips_starting_just_below_65535),
		cmocka_unit_test(test_device_init_restarts_at_used_index),
		cmocka_unit_test(test_event_idx_kick_needed_follows_avail_event),
		cmocka_unit_test(test_event_idx_kick_across_the_wrap),
		cmocka_unit_test(test_event_idx_need_notify_follows_used_event),
		cmocka_unit_test(test_event_idx_first_notify_after_init_always_goes),
		cmocka_unit_test(test_flags_mode_without_event_idx),
		cmocka_unit_test(test_bad_chain_address_outside_memory),
		cmocka_unit_test(test_bad_chain_address_plus_len_overflows),
		cmocka_unit_test(test_bad_chain_loop),
		cmocka_unit_test(test_bad_chain_next_out_of_range),
		cmocka_unit_test(test_bad_chain_longer_than_num),
		cmocka_unit_test(test_bad_chain_readable_after_writable),
		cmocka_unit_test(test_bad_chain_indirect_with_next),
		cmocka_unit_test(test_bad_chain_indirect_table_length),
		cmocka_unit_test(test_bad_chain_indirect_inside_indirect),
		cmocka_unit_test(test_bad_chain_indirect_table_outside_memory),
		cmocka_unit_test(test_bad_chain_too_many_segments_after_split),
		cmocka_unit_test(test_avail_idx_jump_beyond_num_is_ring_corruption),
		cmocka_unit_test(test_avail_ring_head_out_of_range_is_ring_corruption),
		cmocka_unit_test(test_driver_refuses_used_id_never_issued),
		cmocka_unit_test(test_driver_refuses_used_len_beyond_writable_capacity),
		cmocka_unit_test(test_driver_refuses_used_idx_jump_beyond_in_flight),
		cmocka_unit_test(test_driver_counts_chains_not_descriptors_for_used_idx_jump),
		cmocka_unit_test(test_driver_ring_full_is_enospc),
		cmocka_unit_test(test_driver_init_refuses_bad_num),
		cmocka_unit_test(test_gm_add_refuses_overlap_and_bad_regions),
		cmocka_unit_test(test_gm_add_refuses_more_than_max_regions),
		cmocka_unit_test(test_gm_gpa_ptr_bounds_at_exact_edges),
		cmocka_unit_test(test_gm_gpa_iov_splits_across_adjacent_regions),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

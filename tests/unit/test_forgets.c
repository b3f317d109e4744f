/*
 * vufs-mount's set of forgets waiting for room on the hiprio queue: merging by node id, partial takes across a
 * table that grows and shrinks, and no lookup count lost or counted twice against a plain model.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "mount/forgets.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define NODES 5000u

static void test_merges_by_node_id(void **state)
{
	struct forget_set set = { 0 };
	struct fuse_forget_one out[4];
	assert_int_equal(forget_set_add(&set, 7, 1), 0);
	assert_int_equal(forget_set_add(&set, 7, 2), 1);
	assert_int_equal(forget_set_add(&set, 0, 5), 0); /* node 0 names nothing */
	assert_int_equal(set.count, 1);
	assert_int_equal(forget_set_take(&set, out, 4), 1);
	assert_int_equal(out[0].nodeid, 7);
	assert_int_equal(out[0].nlookup, 3);
	assert_int_equal(set.count, 0);
	assert_null(set.e); /* drained: the table is given back */
}

/* Node ids as vufsd makes them (slot | generation << 32) and small counters, so probe runs cluster and wrap. */
static uint64_t node_of(unsigned i)
{
	return i % 2 ? (uint64_t)(i + 1) : (uint64_t)(i + 1) | (uint64_t)(i % 7 + 1) << 32;
}

/* Takes up to max and checks each entry against what the model still owes, which it then settles. */
static size_t take_and_check(struct forget_set *set, uint64_t *owed, size_t max)
{
	struct fuse_forget_one out[300];
	size_t n = forget_set_take(set, out, max);
	assert_true(n <= max);
	for (size_t k = 0; k < n; k++) {
		unsigned i;
		for (i = 0; i < NODES && node_of(i) != out[k].nodeid; i++)
			;
		assert_true(i < NODES);
		assert_int_equal(out[k].nlookup, owed[i]); /* all of it, once: a second take would find 0 owed */
		owed[i] = 0;
	}
	return n;
}

static void test_random_adds_and_takes_match_a_model(void **state)
{
	struct forget_set set = { 0 };
	uint64_t *owed = calloc(NODES, sizeof(*owed));
	size_t pending = 0, peak = 0;
	srand(11);
	for (unsigned round = 0; round < 200000; round++) {
		bool wide = round < 100000; /* a burst over many nodes that the takes cannot keep up with, then a few */
		if (rand() % (wide ? 400 : 50) == 0) {
			pending -= take_and_check(&set, owed, 1 + (size_t)rand() % 300);
		} else {
			unsigned i = (unsigned)rand() % (wide ? NODES : 100);
			uint64_t n = 1 + (uint64_t)rand() % 3;
			int rc = forget_set_add(&set, node_of(i), n);
			assert_int_equal(rc, owed[i] ? 1 : 0);
			pending += rc == 0;
			owed[i] += n;
		}
		assert_int_equal(set.count, pending);
		peak = pending > peak ? pending : peak;
	}
	assert_true(peak > NODES / 2); /* the table grew through several sizes */
	while (set.count)
		take_and_check(&set, owed, 253);
	for (unsigned i = 0; i < NODES; i++)
		assert_int_equal(owed[i], 0);
	assert_null(set.e);
	free(owed);
}

static void test_clear_frees(void **state)
{
	struct forget_set set = { 0 };
	for (unsigned i = 1; i <= 1000; i++)
		assert_true(forget_set_add(&set, i, 1) >= 0);
	forget_set_clear(&set);
	assert_int_equal(set.count, 0);
	assert_null(set.e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_merges_by_node_id),
		cmocka_unit_test(test_random_adds_and_takes_match_a_model),
		cmocka_unit_test(test_clear_frees),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

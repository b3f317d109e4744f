#include "mount/forgets.h"

#include <errno.h>
#include <stdlib.h>

#define FIRST_CAP 64u

/* Fibonacci hashing: node ids are often small counters or slot|generation<<32, so spread the bits. */
static size_t home_of(const struct forget_set *set, uint64_t nodeid)
{
	unsigned bits = (unsigned)__builtin_ctzll(set->cap);
	return (size_t)((nodeid * 0x9e3779b97f4a7c15ull) >> (64 - bits)) & (set->cap - 1);
}

/* The index holding nodeid, or the empty one where it would go. */
static size_t find(const struct forget_set *set, uint64_t nodeid)
{
	size_t i = home_of(set, nodeid);
	while (set->e[i].nodeid && set->e[i].nodeid != nodeid)
		i = (i + 1) & (set->cap - 1);
	return i;
}

static int grow(struct forget_set *set)
{
	struct forget_set bigger = { .cap = set->cap ? 2 * set->cap : FIRST_CAP };
	bigger.e = calloc(bigger.cap, sizeof(*bigger.e));
	if (!bigger.e)
		return -ENOMEM;
	for (size_t i = 0; i < set->cap; i++)
		if (set->e[i].nodeid)
			bigger.e[find(&bigger, set->e[i].nodeid)] = set->e[i];
	bigger.count = set->count;
	free(set->e);
	*set = bigger;
	return 0;
}

int forget_set_add(struct forget_set *set, uint64_t nodeid, uint64_t nlookup)
{
	if (nodeid == 0)
		return 0; /* names no node: nothing to forget */
	if (2 * (set->count + 1) > set->cap && grow(set) < 0) /* at most half full: probes stay short */
		return -ENOMEM;
	size_t i = find(set, nodeid);
	if (set->e[i].nodeid) {
		set->e[i].nlookup += nlookup;
		return 1;
	}
	set->e[i] = (struct fuse_forget_one){ .nodeid = nodeid, .nlookup = nlookup };
	set->count++;
	return 0;
}

/* Deletes entry i and shifts later entries of its probe run back, so lookups need no tombstones. */
static void remove_at(struct forget_set *set, size_t i)
{
	size_t mask = set->cap - 1;
	for (size_t j = (i + 1) & mask; set->e[j].nodeid; j = (j + 1) & mask) {
		/* e[j] may fill the hole if the hole lies between its home and j. */
		if (((j - home_of(set, set->e[j].nodeid)) & mask) >= ((j - i) & mask)) {
			set->e[i] = set->e[j];
			i = j;
		}
	}
	set->e[i] = (struct fuse_forget_one){ 0 };
	set->count--;
}

size_t forget_set_take(struct forget_set *set, struct fuse_forget_one *out, size_t max)
{
	size_t n = 0;
	if (set->count <= max) {
		for (size_t i = 0; i < set->cap; i++)
			if (set->e[i].nodeid)
				out[n++] = set->e[i];
		forget_set_clear(set); /* the burst is over: give the memory back */
		return n;
	}
	/* Scan on from where the last take stopped, so a large set is not rescanned from its emptied start. */
	size_t i = set->cursor;
	for (size_t k = 0; k < set->cap && n < max; k++, i = (i + 1) & (set->cap - 1))
		if (set->e[i].nodeid)
			out[n++] = set->e[i];
	set->cursor = i;
	/* Removing shifts entries back, possibly behind the cursor: a later take still finds them on its wrap. */
	for (size_t k = 0; k < n; k++)
		remove_at(set, find(set, out[k].nodeid));
	return n;
}

void forget_set_clear(struct forget_set *set)
{
	free(set->e);
	*set = (struct forget_set){ 0 };
}

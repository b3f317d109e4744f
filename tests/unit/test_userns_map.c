/* --uid-map/--gid-map: virtiofsd's :NS_ID:HOST_ID:COUNT: read, and every range the kernel would refuse refused first. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "daemon/userns_map.h"

static struct userns_map map;
static char err[160];

static int setup(void **state)
{
	(void)state;
	memset(&map, 0, sizeof(map));
	return 0;
}

static void add_ok(const char *arg, uint32_t inside, uint32_t outside, uint32_t count)
{
	err[0] = '\0';
	int ret = userns_map_add(&map, arg, err, sizeof(err));
	if (ret != 0)
		print_message("'%s': %s\n", arg, err);
	assert_int_equal(ret, 0);
	const struct userns_extent *e = &map.ext[map.n - 1];
	assert_int_equal(e->inside, inside);
	assert_int_equal(e->outside, outside);
	assert_int_equal(e->count, count);
}

/* Refused with ret, the map unchanged, and a message that says why. */
static void add_bad(const char *arg, int ret, const char *says)
{
	unsigned n = map.n;
	err[0] = '\0';
	assert_int_equal(userns_map_add(&map, arg, err, sizeof(err)), ret);
	assert_int_equal(map.n, n);
	if (!strstr(err, says))
		print_message("'%s': message '%s' lacks '%s'\n", arg, err, says);
	assert_non_null(strstr(err, says));
}

static void test_virtiofsd_example_and_any_separator(void **state)
{
	(void)state;
	add_ok(":0:100000:65536:", 0, 100000, 65536);
	add_ok("/70000/1000/1/", 70000, 1000, 1);
	add_ok("-70001-200000-5-", 70001, 200000, 5);
	assert_int_equal(map.n, 3);
}

static void test_format_errors_are_refused(void **state)
{
	(void)state;
	static const char sep[] = "same separator first and last", num[] = "three numbers";
	static const struct { const char *arg, *says; } bad[] = {
		{ "", sep }, { ":", sep }, { "0:1:2", sep }, { ":0:1:2", sep }, { "0:1:2:", sep },
		{ "a0a1a2a", sep },                    /* a letter is no separator, as in virtiofsd */
		{ "5:0:1:5", sep },
		{ "/0:1:2/", num },                    /* the first character chooses the separator */
		{ "::", num }, { ":0:1:", num }, { ":0:1:2:3:", num }, { ":0::2:", num }, { ":x:1:2:", num },
		{ ":-1:1:2:", num }, { ":+1:1:2:", num }, { ": 1:1:2:", num }, { ":1 :1:2:", num }, { ":0x10:1:2:", num },
		{ ":4294967296:1:2:", num }, { ":99999999999999999999:1:2:", num },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		add_bad(bad[i].arg, -EINVAL, bad[i].says);
}

static void test_count_zero_and_ranges_past_the_last_id_are_refused(void **state)
{
	(void)state;
	add_bad(":0:1000:0:", -EINVAL, "at least 1");
	add_bad(":4294967295:1000:1:", -EINVAL, "past id 4294967294");
	add_bad(":1000:4294967295:1:", -EINVAL, "past id 4294967294");
	add_bad(":4294967290:1000:6:", -EINVAL, "past id 4294967294");
	add_bad(":1:0:4294967295:", -EINVAL, "past id 4294967294");
	add_ok(":4294967289:1000:5:", 4294967289u, 1000, 5);         /* ends at 4294967293 */
	add_ok(":0:4294967290:1:", 0, 4294967290u, 1);
}

static void test_whole_id_space_but_the_last_id(void **state)
{
	(void)state;
	add_ok(":0:0:4294967295:", 0, 0, 4294967295u);            /* 0 to 4294967294: all but (uid_t)-1 */
	add_bad(":4294967294:5:1:", -EEXIST, "overlaps");
}

static void test_overlaps_inside_or_outside_are_refused(void **state)
{
	(void)state;
	add_ok(":0:100000:1000:", 0, 100000, 1000);
	add_bad(":999:200000:10:", -EEXIST, ":0:100000:1000:");  /* inside */
	add_bad(":5000:100999:10:", -EEXIST, "overlaps");        /* outside */
	add_bad(":0:100000:1000:", -EEXIST, "overlaps");         /* the same again */
	add_bad(":2000:99990:11:", -EEXIST, "overlaps");         /* its last id is the first one */
	add_ok(":1000:101000:10:", 1000, 101000, 10);            /* adjacent on both sides */
	add_ok(":2000:99990:10:", 2000, 99990, 10);              /* ends just before */
	assert_int_equal(map.n, 3);
}

static void test_more_ranges_than_the_kernel_takes_are_refused(void **state)
{
	(void)state;
	char arg[64];
	for (unsigned i = 0; i < USERNS_MAP_MAX; i++) {
		snprintf(arg, sizeof(arg), ":%u:%u:1:", i, 100000 + i);
		assert_int_equal(userns_map_add(&map, arg, err, sizeof(err)), 0);
	}
	snprintf(arg, sizeof(arg), ":%u:%u:1:", USERNS_MAP_MAX, 100000 + USERNS_MAP_MAX);
	add_bad(arg, -E2BIG, "340");
}

static void test_own_id_once_needs_no_helper(void **state)
{
	(void)state;
	assert_true(userns_map_only_own(&map, 1000));               /* none given: the caller's own id */
	add_ok(":0:1000:1:", 0, 1000, 1);
	assert_true(userns_map_only_own(&map, 1000));               /* mapped to any id inside */
	assert_false(userns_map_only_own(&map, 1001));
	add_ok(":1:100000:5:", 1, 100000, 5);
	assert_false(userns_map_only_own(&map, 1000));              /* more than one range */
	setup(NULL);
	add_ok(":0:1000:2:", 0, 1000, 2);
	assert_false(userns_map_only_own(&map, 1000));              /* more than one id */
}

static void test_ids_inside(void **state)
{
	(void)state;
	assert_false(userns_map_has_inside(&map, 0));
	add_ok(":0:100000:10:", 0, 100000, 10);
	add_ok(":4294967285:200000:10:", 4294967285u, 200000, 10);
	assert_true(userns_map_has_inside(&map, 0));
	assert_true(userns_map_has_inside(&map, 9));
	assert_false(userns_map_has_inside(&map, 10));
	assert_false(userns_map_has_inside(&map, 100000));          /* outside ids do not count */
	assert_true(userns_map_has_inside(&map, 4294967294u));
	assert_false(userns_map_has_inside(&map, 4294967284u));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_virtiofsd_example_and_any_separator, setup),
		cmocka_unit_test_setup(test_format_errors_are_refused, setup),
		cmocka_unit_test_setup(test_count_zero_and_ranges_past_the_last_id_are_refused, setup),
		cmocka_unit_test_setup(test_whole_id_space_but_the_last_id, setup),
		cmocka_unit_test_setup(test_overlaps_inside_or_outside_are_refused, setup),
		cmocka_unit_test_setup(test_more_ranges_than_the_kernel_takes_are_refused, setup),
		cmocka_unit_test_setup(test_own_id_once_needs_no_helper, setup),
		cmocka_unit_test_setup(test_ids_inside, setup),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

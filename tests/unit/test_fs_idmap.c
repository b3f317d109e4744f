/*
 * UID/GID translation (src/fs/idmap.c, src/fs/idmap_ops.c): the rule language, overlaps refused, and through
 * the file system's table as the protocol calls it: a guest caller's files land with the host ids the rules say,
 * the guest sees its own ids back (attributes, entries, READDIRPLUS), chown asks for host ids, forbidden ids
 * get EPERM, and unnamed ids pass unchanged.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "fs/fs.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"

static void test_rules_parse_and_translate(void **state)
{
	struct fs_idmap m = { 0 };
	uint32_t h;
	assert_int_equal(fs_idmap_add(&m, "map:1000:2000:10"), 0);
	assert_int_equal(fs_idmap_add(&m, "squash-guest:5000:65534:1000"), 0);
	assert_int_equal(fs_idmap_add(&m, "forbid-guest:0:1"), 0);
	assert_int_equal(fs_idmap_add(&m, "host:0:7000:1"), 0);
	assert_int_equal(fs_idmap_add(&m, "squash-host:3000:99:10"), 0);
	assert_int_equal(fs_idmap_to_host(&m, 1005, &h), 0);
	assert_int_equal(h, 2005);
	assert_int_equal(fs_idmap_to_guest(&m, 2009), 1009);
	assert_int_equal(fs_idmap_to_host(&m, 5999, &h), 0);
	assert_int_equal(h, 65534);
	assert_int_equal(fs_idmap_to_host(&m, 0, &h), -EPERM);
	assert_int_equal(fs_idmap_to_guest(&m, 0), 7000);
	assert_int_equal(fs_idmap_to_guest(&m, 3005), 99);
	assert_int_equal(fs_idmap_to_host(&m, 42, &h), 0); /* unnamed: unchanged */
	assert_int_equal(h, 42);
	assert_int_equal(fs_idmap_to_guest(&m, 42), 42);

	static const char *const bad[] = {
		"", "map", "map:1:2", "map:1:2:0", "map:1:2:3:4", "map:-1:2:3", "map:1:2:x", "nope:1:2:3",
		"forbid-guest:1:2:3", "map:4294967295:0:2", "map:0:4294967295:2", "guest:1:4294967296:1",
		"map:1:2:4294967297", "squash-guest:1:2", "::::",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (fs_idmap_add(&m, bad[i]) != -EINVAL)
			fail_msg("rule '%s' was taken", bad[i]);
	/* Overlaps in one direction are refused, all or nothing for map. */
	assert_int_equal(fs_idmap_add(&m, "guest:1009:1:1"), -EEXIST);
	assert_int_equal(fs_idmap_add(&m, "map:10:2000:1"), -EEXIST); /* host side overlaps map's */
	assert_int_equal(fs_idmap_to_host(&m, 10, &h), 0);
	assert_int_equal(h, 10);                                      /* and its guest side did not stay */
	assert_int_equal(fs_idmap_add(&m, "forbid-guest:4294967295:1"), 0);
	assert_int_equal(fs_idmap_add(&m, "guest:4294967294:1:2"), -EEXIST);
}

static char dir[64];

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

static void test_owners_through_the_ops_table(void **state)
{
	if (geteuid() != 0)
		skip(); /* creating files as other users needs root */
	strcpy(dir, "/tmp/vufs-idmap-XXXXXX");
	assert_non_null(mkdtemp(dir));
	chmod(dir, 0777);
	struct fs_idmap uids = { 0 }, gids = { 0 };
	assert_int_equal(fs_idmap_add(&uids, "map:1000:2000:10"), 0);
	assert_int_equal(fs_idmap_add(&uids, "forbid-guest:666:1"), 0);
	assert_int_equal(fs_idmap_add(&gids, "squash-guest:0:3000:4294967295"), 0);
	assert_int_equal(fs_idmap_add(&gids, "host:3000:50:1"), 0);
	struct fs_config cfg = { .source = dir, .uid_map = &uids, .gid_map = &gids };
	struct fs *fs;
	assert_int_equal(fs_new(&cfg, &fs), 0);
	const struct fs_ops *ops = fs_ops_of(fs);
	assert_ptr_not_equal(ops, &fs_passthrough_ops);

	const struct fs_ctx guest = { .uid = 1001, .gid = 77, .pid = 1 };
	struct fs_entry e;
	uint64_t fh;
	assert_int_equal(ops->create(fs, &guest, FS_ROOT_ID, "f", 0644, O_RDWR, &e, &fh), 0);
	assert_int_equal(e.st.st_uid, 1001); /* the guest sees its ids */
	assert_int_equal(e.st.st_gid, 50);
	char p[128];
	snprintf(p, sizeof(p), "%s/f", dir);
	struct stat host;
	assert_int_equal(stat(p, &host), 0);
	assert_int_equal(host.st_uid, 2001); /* the host has the mapped ones */
	assert_int_equal(host.st_gid, 3000);

	struct stat st;
	assert_int_equal(ops->getattr(fs, e.nodeid, FS_NO_HANDLE, &st), 0);
	assert_int_equal(st.st_uid, 1001);
	struct fs_setattr sa = { .valid = FS_SET_UID, .uid = 1009 };
	const struct fs_ctx root = { .uid = 0, .gid = 0, .pid = 1 };
	assert_int_equal(ops->setattr(fs, &root, e.nodeid, FS_NO_HANDLE, &sa, &st), 0);
	assert_int_equal(st.st_uid, 1009);
	assert_int_equal(stat(p, &host), 0);
	assert_int_equal(host.st_uid, 2009);
	sa.uid = 666;
	assert_int_equal(ops->setattr(fs, &root, e.nodeid, FS_NO_HANDLE, &sa, &st), -EPERM);
	const struct fs_ctx forbidden = { .uid = 666, .gid = 0, .pid = 1 };
	assert_int_equal(ops->mkdir(fs, &forbidden, FS_ROOT_ID, "d", 0755, &e), -EPERM);
	/* An unnamed uid passes unchanged. */
	const struct fs_ctx other = { .uid = 4242, .gid = 0, .pid = 1 };
	assert_int_equal(ops->mkdir(fs, &other, FS_ROOT_ID, "d", 0755, &e), 0);
	assert_int_equal(e.st.st_uid, 4242);
	fs_free(fs);
	nftw(dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);

	/* Without rules, the plain table. */
	strcpy(dir, "/tmp/vufs-idmap-XXXXXX");
	assert_non_null(mkdtemp(dir));
	struct fs_config plain = { .source = dir };
	assert_int_equal(fs_new(&plain, &fs), 0);
	assert_ptr_equal(fs_ops_of(fs), &fs_passthrough_ops);
	fs_free(fs);
	rmdir(dir);
}

int main(void)
{
	log_init("test_fs_idmap", LOG_LVL_ERROR, false);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rules_parse_and_translate),
		cmocka_unit_test(test_owners_through_the_ops_table),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

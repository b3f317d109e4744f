/* Small helpers the file-system unit tests share (header only: each test is one program). */
#ifndef VUFS_TEST_FS_FIXTURE_H
#define VUFS_TEST_FS_FIXTURE_H

#include "fs/fs.h"

#include <dirent.h>
#include <ftw.h>
#include <stdio.h>

/* nftw callback that removes everything (FTW_DEPTH | FTW_PHYS). */
static inline int fixture_rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st; (void)flag; (void)ftw;
	return remove(path);
}

/* The fds this process has open (-1 if /proc cannot tell). */
static inline int fixture_count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;
	if (!d)
		return -1;
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

/* fs_new, then fs_inode_handles_start as vufsd does after its sandbox: *out is NULL on failure. */
static inline int fixture_fs_start(const struct fs_config *cfg, struct fs **out)
{
	int rc = fs_new(cfg, out);
	if (rc == 0 && (rc = fs_inode_handles_start(*out)) < 0) {
		fs_free(*out);
		*out = NULL;
	}
	return rc;
}

#endif

/* Life cycle of the file system room: fs_new, fs_reset, fs_free. */
#include "fs/fs_internal.h"

#include "common/log.h"
#include "common/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static uint64_t bound(uint64_t v, uint64_t dflt)
{
	if (v == 0)
		return dflt;
	return v > FS_MAX_TABLE_BOUND ? FS_MAX_TABLE_BOUND : v;
}

int fs_new(const struct fs_config *cfg, struct fs **out)
{
	struct fs *fs;
	struct stat st;
	uint64_t mnt_id;
	int root_fd = -1, ret;

	*out = NULL;
	if (!cfg || !cfg->source || !cfg->source[0])
		return -EINVAL;
	fs = calloc(1, sizeof(*fs));
	if (!fs)
		return -ENOMEM;
	fs->proc_fd = -1;
	fs->cfg = *cfg;
	fs->source_copy = strdup(cfg->source);
	if (!fs->source_copy) {
		free(fs);
		return -ENOMEM;
	}
	fs->cfg.source = fs->source_copy;
	if (cfg->uid_map)
		fs->uid_map = *cfg->uid_map;
	if (cfg->gid_map)
		fs->gid_map = *cfg->gid_map;
	fs->cfg.uid_map = fs->cfg.gid_map = NULL; /* the copies above are the fs's */
	fs->acl_on = cfg->posix_acl; /* until a session says whether its guest enforces them */
	fs->cfg.max_inodes = bound(cfg->max_inodes, FS_DEFAULT_MAX_INODES);
	fs->cfg.max_handles = bound(cfg->max_handles, FS_DEFAULT_MAX_HANDLES);
	/* The guest already applied its umask to every mode it sends, or (FUSE_DONT_MASK) creds.c sets the caller's
	 * around each creation on the creating thread. */
	umask(0);
	fs->switch_creds = geteuid() == 0;

	dax_init(fs);
	ret = mounts_init(&fs->mounts);
	if (ret == 0)
		ret = itab_init(&fs->itab, fs->cfg.max_inodes);
	if (ret < 0) {
		mounts_destroy(fs);
		dax_destroy(fs);
		free(fs->source_copy);
		free(fs);
		return ret;
	}
	ret = htab_init(&fs->htab, fs->cfg.max_handles);
	if (ret < 0) {
		mounts_destroy(fs);
		dax_destroy(fs);
		itab_destroy(&fs->itab);
		free(fs->source_copy);
		free(fs);
		return ret;
	}

	fs->proc_fd = open("/proc/self/fd", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fs->proc_fd < 0) {
		ret = neg_errno();
		log_err("fs: cannot open /proc/self/fd: %s", strerror(-ret));
		goto fail;
	}
	/* The administrator's path may go through symlinks; from here on nothing is followed. */
	root_fd = open(fs->cfg.source, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (root_fd < 0) {
		ret = neg_errno();
		log_err("fs: cannot open shared directory %s: %s", fs->cfg.source, strerror(-ret));
		goto fail;
	}
	ret = fs_statx(root_fd, "", AT_EMPTY_PATH, &st, &mnt_id);
	if (ret < 0)
		goto fail;
	if (!S_ISDIR(st.st_mode)) {
		ret = -ENOTDIR;
		goto fail;
	}
	ret = itab_insert_root(fs, root_fd, &st, mnt_id);
	if (ret < 0)
		goto fail;
	if (!fs->switch_creds)
		log_warn("fs: not running as root: files are created with the daemon's own ids");
	*out = fs;
	return 0;

fail:
	close_if_open(&root_fd);
	fs_free(fs);
	return ret;
}

void fs_session_start(struct fs *fs, const struct fs_session *s)
{
	__atomic_store_n(&fs->guest_caches_writes, s->guest_caches_writes, __ATOMIC_RELEASE);
	__atomic_store_n(&fs->dax_per_inode, s->dax_per_inode, __ATOMIC_RELEASE);
	__atomic_store_n(&fs->acl_on, fs->cfg.posix_acl && s->posix_acl, __ATOMIC_RELEASE);
	fs_dax_session_start(fs);
}

void fs_open_policy(const struct fs *fs, uint64_t nodeid, bool dir, struct fs_open_policy *out)
{
	(void)nodeid;
	*out = (struct fs_open_policy){ 0 };
	switch (fs->cfg.cache) {
	case FS_CACHE_NEVER:
	case FS_CACHE_METADATA:
		out->direct_io = !dir;
		break;
	case FS_CACHE_ALWAYS:
		out->keep_cache = true;
		out->cache_dir = dir;
		break;
	case FS_CACHE_AUTO:
	default:
		break;
	}
}

struct timespec fs_cache_timeout(const struct fs *fs, uint64_t nodeid)
{
	(void)nodeid;
	switch (fs->cfg.cache) {
	case FS_CACHE_NEVER:
		return (struct timespec){ 0, 0 };
	case FS_CACHE_ALWAYS:
	case FS_CACHE_METADATA:
		return (struct timespec){ 86400, 0 };
	case FS_CACHE_AUTO:
	default:
		return (struct timespec){ 1, 0 };
	}
}

bool fs_caches_data(const struct fs *fs)
{
	return fs->cfg.cache == FS_CACHE_AUTO || fs->cfg.cache == FS_CACHE_ALWAYS;
}

void fs_reset(struct fs *fs)
{
	if (!fs)
		return;
	dax_reset(fs);
	htab_reset(fs);
	itab_reset(fs);
}

void fs_free(struct fs *fs)
{
	if (!fs)
		return;
	dax_destroy(fs);
	htab_destroy(fs);
	itab_destroy(&fs->itab); /* its inodes let go of their mounts */
	mounts_destroy(fs);
	close_if_open(&fs->proc_fd);
	free(fs->source_copy);
	free(fs);
}

/* Attributes: getattr, setattr, statfs, access. */
#include "fs/fs_internal.h"

#include "common/log.h"
#include "common/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

static void proc_name(char *buf, size_t size, int fd)
{
	snprintf(buf, size, "%d", fd);
}

/* The attributes of fd, and its birth time if bt is given. */
static int stat_fd(int fd, int flags, struct stat *st, struct fs_btime *bt)
{
	return bt ? fs_statx_btime(fd, "", flags, st, bt) : fs_statx(fd, "", flags, st, NULL);
}

static int getattr(struct fs *fs, uint64_t nodeid, uint64_t fh, struct stat *st, struct fs_btime *bt)
{
	struct fs_inode *inode;
	struct fs_handle *h;
	int ret;

	if (fh != FS_NO_HANDLE) {
		ret = handle_get(fs, fh, &h);
		if (ret < 0)
			return ret;
		ret = stat_fd(h->fd, AT_EMPTY_PATH, st, bt);
		dax_sync_after(fs, h->inode); /* the window shows the file up to the size the reply tells */
		handle_put(fs, h);
		return ret;
	}
	ret = inode_get(fs, nodeid, &inode);
	if (ret < 0)
		return ret;
	int fd = inode_fd_get(fs, inode);
	ret = fd < 0 ? fd : stat_fd(fd, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW, st, bt);
	inode_fd_put(inode, fd);
	dax_sync_after(fs, inode);
	inode_put(fs, inode);
	return ret;
}

int fs_getattr(struct fs *fs, uint64_t nodeid, uint64_t fh, struct stat *st)
{
	return getattr(fs, nodeid, fh, st, NULL);
}

int fs_getattr_btime(struct fs *fs, uint64_t nodeid, uint64_t fh, struct stat *st, struct fs_btime *bt)
{
	return getattr(fs, nodeid, fh, st, bt);
}

int inode_set_mode(struct fs *fs, struct fs_inode *inode, int fd, mode_t mode)
{
	char name[16];

	if (fd >= 0)
		return fchmod(fd, mode) < 0 ? neg_errno() : 0;
	if (inode->type == S_IFLNK)
		return -EOPNOTSUPP; /* Linux symlinks have no mode of their own */
	int pfd = inode_fd_get(fs, inode), ret = pfd;
	if (pfd >= 0) {
		proc_name(name, sizeof(name), pfd);
		ret = fchmodat(fs->proc_fd, name, mode, 0) < 0 ? neg_errno() : 0;
	}
	inode_fd_put(inode, pfd);
	return ret;
}

static int set_size(struct fs *fs, struct fs_inode *inode, struct fs_handle *h, uint64_t size)
{
	int fd, ret = 0;

	if (size > INT64_MAX)
		return -EFBIG;
	if (inode->type == S_IFDIR)
		return -EISDIR;
	if (inode->type != S_IFREG)
		return -EINVAL;
	dax_before_shrink(fs, inode, size);
	if (h && (h->flags & O_ACCMODE) != O_RDONLY)
		return ftruncate(h->fd, (off_t)size) < 0 ? neg_errno() : 0;
	fd = dax_share_dup(fs, inode); /* another open would break the daemon's own lease */
	if (fd == -ENOENT)
		fd = inode_reopen(fs, inode, O_WRONLY | O_NONBLOCK);
	if (fd < 0)
		return fd;
	if (ftruncate(fd, (off_t)size) < 0)
		ret = neg_errno();
	close(fd);
	return ret;
}

static int set_times(struct fs *fs, struct fs_inode *inode, int fd, const struct fs_setattr *sa)
{
	struct timespec ts[2] = { { 0, UTIME_OMIT }, { 0, UTIME_OMIT } };
	char name[16];
	int ret;

	if (sa->valid & FS_SET_ATIME_NOW)
		ts[0].tv_nsec = UTIME_NOW;
	else if (sa->valid & FS_SET_ATIME)
		ts[0] = sa->atime;
	if (sa->valid & FS_SET_MTIME_NOW)
		ts[1].tv_nsec = UTIME_NOW;
	else if (sa->valid & FS_SET_MTIME)
		ts[1] = sa->mtime;
	if (fd >= 0)
		return futimens(fd, ts) < 0 ? neg_errno() : 0;
	int pfd = inode_fd_get(fs, inode);
	if (pfd < 0)
		return pfd;
	if (inode->type == S_IFLNK) {
		ret = utimensat(pfd, "", ts, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW);
	} else {
		proc_name(name, sizeof(name), pfd);
		ret = utimensat(fs->proc_fd, name, ts, 0);
	}
	ret = ret < 0 ? neg_errno() : 0;
	inode_fd_put(inode, pfd);
	return ret;
}

static int chown_inode(struct fs *fs, struct fs_inode *inode, uid_t uid, gid_t gid)
{
	int fd = inode_fd_get(fs, inode), ret = fd;
	if (fd >= 0)
		ret = fchownat(fd, "", uid, gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0 ? neg_errno() : 0;
	inode_fd_put(inode, fd);
	return ret;
}

/* The attributes of inode, through fd when one is open (>= 0). */
static int stat_inode(struct fs *fs, struct fs_inode *inode, int fd, struct stat *st)
{
	if (fd >= 0)
		return fs_statx(fd, "", AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW, st, NULL);
	int pfd = inode_fd_get(fs, inode), ret = pfd;
	if (pfd >= 0)
		ret = fs_statx(pfd, "", AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW, st, NULL);
	inode_fd_put(inode, pfd);
	return ret;
}

int fs_setattr(struct fs *fs, const struct fs_ctx *ctx, uint64_t nodeid, uint64_t fh, const struct fs_setattr *sa,
               struct stat *st)
{
	if (fs->cfg.readonly)
		return -EROFS;
	struct fs_handle *h = NULL;
	struct fs_inode *inode = NULL;
	unsigned valid = sa->valid;
	int fd = -1, ret;

	(void)ctx;
	if (fh != FS_NO_HANDLE) {
		ret = handle_get(fs, fh, &h);
		if (ret < 0)
			return ret;
		inode = h->inode;
		fd = h->fd;
	} else {
		ret = inode_get(fs, nodeid, &inode);
		if (ret < 0)
			return ret;
	}

	dax_sync_before(fs, inode);
	if (valid & FS_SET_MODE) {
		ret = inode_set_mode(fs, inode, fd, sa->mode & 07777);
		if (ret < 0)
			goto out;
	}
	if (valid & (FS_SET_UID | FS_SET_GID)) {
		uid_t uid = (valid & FS_SET_UID) ? sa->uid : (uid_t)-1;
		gid_t gid = (valid & FS_SET_GID) ? sa->gid : (gid_t)-1;
		ret = chown_inode(fs, inode, uid, gid);
		if (ret < 0)
			goto out;
	}
	if (valid & FS_SET_SIZE) {
		ret = set_size(fs, inode, h, sa->size);
		if (ret < 0)
			goto out;
	}
	if (valid & (FS_SET_ATIME | FS_SET_MTIME | FS_SET_ATIME_NOW | FS_SET_MTIME_NOW)) {
		ret = set_times(fs, inode, fd, sa);
		if (ret < 0)
			goto out;
	}
	/* FS_SET_CTIME: the changes above already moved ctime; it cannot be set to a given value. */
	if ((valid & FS_SET_KILL_SUIDGID) && !(valid & FS_SET_MODE) && inode->type == S_IFREG) {
		ret = stat_inode(fs, inode, fd, st);
		if (ret < 0)
			goto out;
		mode_t kill = fs_suidgid_to_kill(st->st_mode);
		if (kill) {
			ret = inode_set_mode(fs, inode, fd, st->st_mode & 07777 & ~kill);
			if (ret < 0)
				goto out;
		}
	}
	ret = stat_inode(fs, inode, fd, st);
out:
	dax_sync_after_growth(fs, inode);
	if (h)
		handle_put(fs, h);
	else
		inode_put(fs, inode);
	return ret;
}

int fs_statfs(struct fs *fs, uint64_t nodeid, struct statvfs *out)
{
	struct fs_inode *inode;
	int ret = inode_get(fs, nodeid, &inode);

	if (ret < 0)
		return ret;
	int fd = inode_fd_get(fs, inode);
	ret = fd < 0 ? fd : fstatvfs(fd, out) < 0 ? neg_errno() : 0;
	inode_fd_put(inode, fd);
	inode_put(fs, inode);
	return ret;
}

int fs_access(struct fs *fs, const struct fs_ctx *ctx, uint64_t nodeid, int mask)
{
	struct fs_inode *inode;
	struct fs_creds creds;
	char name[16];
	int ret;

	if (mask & ~(R_OK | W_OK | X_OK))
		return -EINVAL;
	if ((mask & W_OK) && fs->cfg.readonly)
		return -EROFS;
	ret = inode_get(fs, nodeid, &inode);
	if (ret < 0)
		return ret;
	int fd = inode_fd_get(fs, inode); /* before creds_enter: see inode_fd_get */
	/* AT_EACCESS: the check uses the fsuid/fsgid and effective capabilities of this thread, i.e. the
	 * caller's, without faccessat's switch to the real ids. */
	ret = fd < 0 ? fd : creds_enter(fs, ctx, &creds);
	if (ret == 0) {
		proc_name(name, sizeof(name), fd);
		if (faccessat(fs->proc_fd, name, mask, AT_EACCESS) < 0)
			ret = neg_errno();
		creds_leave(&creds);
	}
	inode_fd_put(inode, fd);
	inode_put(fs, inode);
	return ret;
}

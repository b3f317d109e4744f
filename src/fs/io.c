/* Open files: open, create, tmpfile, read, write, flush, release, fsync, lseek, fallocate, copy_file_range. */
#include "fs/fs_internal.h"

#include "common/log.h"
#include "common/util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#ifndef IOV_MAX
#define IOV_MAX 1024
#endif
#define TMPFILE_BIT (O_TMPFILE & ~O_DIRECTORY)

/*
 * The guest's open flags, less what must never reach the host: creation (done explicitly), following symlinks
 * (the magic link is followed on purpose, and only it), controlling terminals, signals, O_PATH, O_TMPFILE.
 * The host file is never opened O_APPEND either: the guest kernel computes append offsets itself, and it writes
 * back mmap'ed pages through whichever writable handle it has, at their own offsets; pwrite on an O_APPEND fd
 * would put such a page at the end of the file instead (found by vufs-fsx). With writeback caching the guest
 * also reads pages of files opened write-only, so those are opened read-write.
 */
static int open_flags(const struct fs *fs, int flags)
{
	flags &= ~(O_CREAT | O_EXCL | O_NOCTTY | O_NOFOLLOW | O_PATH | TMPFILE_BIT | O_ASYNC | O_CLOEXEC | O_APPEND);
	if (!fs->cfg.allow_direct_io)
		flags &= ~O_DIRECT;
	if (__atomic_load_n(&fs->guest_caches_writes, __ATOMIC_ACQUIRE) && (flags & O_ACCMODE) == O_WRONLY)
		flags = (flags & ~O_ACCMODE) | O_RDWR;
	return flags;
}

/* Only regular files and directories are ever opened: a device node or FIFO opened by the daemon would act on
 * the host (CVE-2020-35517). */
static int openable(mode_t type)
{
	if (type == S_IFREG || type == S_IFDIR)
		return 0;
	return type == S_IFLNK ? -ELOOP : -EACCES;
}

/*
 * The fd a new handle does its I/O through: while a DAX window is attached, a regular file's handles share the
 * inode's one read-write description (so that a write lease can guard its mappings: dax.c), and the access mode,
 * O_TRUNC and O_SYNC are ours to apply; otherwise the file opened with the guest's flags.
 */
static int handle_fd(struct fs *fs, struct fs_inode *inode, int flags, bool *shared)
{
	int fd = dax_share_open(fs, inode, flags), ret;

	*shared = fd >= 0;
	if (flags & O_TRUNC)
		dax_before_shrink(fs, inode, 0);
	if (fd < 0)
		return inode_reopen(fs, inode, flags);
	if ((flags & O_TRUNC) && ftruncate(fd, 0) < 0) {
		ret = neg_errno();
		close(fd);
		dax_share_put(fs, inode);
		return ret;
	}
	return fd;
}

int fs_open(struct fs *fs, const struct fs_ctx *ctx, uint64_t nodeid, int flags, uint64_t *fh)
{
	struct fs_inode *inode;
	bool shared;
	int fd, ret;

	(void)ctx;
	if (fs->cfg.readonly && ((flags & O_ACCMODE) != O_RDONLY || (flags & O_TRUNC)))
		return -EROFS;
	ret = inode_get(fs, nodeid, &inode);
	if (ret < 0)
		return ret;
	ret = openable(inode->type);
	if (ret < 0)
		goto fail;
	flags = open_flags(fs, flags);
	/* As virtiofsd: O_NOATIME needs the file's owner or CAP_FOWNER over it, which an unprivileged daemon, or root
	 * of a user namespace for a file of an unmapped id, lacks, while the guest already allowed it. */
	if (!fs->cfg.preserve_noatime)
		flags &= ~O_NOATIME;
	if (inode->type == S_IFDIR) {
		if ((flags & O_ACCMODE) != O_RDONLY) {
			ret = -EISDIR;
			goto fail;
		}
		flags |= O_DIRECTORY;
	} else {
		flags &= ~O_DIRECTORY;
	}
	dax_sync_before(fs, inode);
	fd = handle_fd(fs, inode, flags, &shared);
	if (fd < 0) {
		ret = fd;
		goto fail;
	}
	if (flags & O_TRUNC)
		dax_sync_after(fs, inode);
	return handle_new(fs, fd, flags, inode, inode->type == S_IFDIR, shared, fh);
fail:
	inode_put(fs, inode);
	return ret;
}

/* Makes the new inode and handle for fd (an open regular file); opath is its O_PATH fd, or -1 to make one. */
static int register_open_file(struct fs *fs, int fd, int opath, int flags, struct fs_entry *e, uint64_t *fh)
{
	struct fs_inode *inode;
	struct stat st;
	uint64_t mnt_id;
	char name[16];
	int ret;

	if (opath < 0) {
		snprintf(name, sizeof(name), "%d", fd);
		opath = openat(fs->proc_fd, name, O_PATH | O_CLOEXEC);
		if (opath < 0) {
			ret = neg_errno();
			close(fd);
			return ret;
		}
	}
	ret = fs_statx(fd, "", AT_EMPTY_PATH, &st, &mnt_id);
	if (ret < 0) {
		close(opath);
		close(fd);
		return ret;
	}
	ret = inode_register(fs, opath, &st, mnt_id, &inode);
	if (ret < 0) {
		close(fd);
		return ret;
	}
	e->nodeid = inode_nodeid(inode);
	e->generation = inode->gen;
	e->st = st;
	e->submount = false;
	/* Created (or opened by CREATE) with the guest's flags; its handle shares the inode's description like any
	 * other while a window is attached (O_TRUNC, if any, was done by that open). */
	int sfd = dax_share_open(fs, inode, flags);
	if (sfd >= 0) {
		close(fd);
		fd = sfd;
	}
	ret = handle_new(fs, fd, flags, inode, false, sfd >= 0, fh);
	if (ret < 0)
		inode_forget(fs, e->nodeid, 1);
	return ret;
}

int fs_create(struct fs *fs, const struct fs_ctx *ctx, uint64_t parent, const char *name, mode_t mode, int flags,
              struct fs_entry *e, uint64_t *fh)
{
	if (fs->cfg.readonly)
		return -EROFS;
	struct fs_inode *dir;
	struct fs_creds creds;
	bool excl = flags & O_EXCL;
	int fd, opath = -1, ret, dfd;

	ret = fs_check_name(name);
	if (ret < 0)
		return ret;
	ret = dir_get(fs, parent, &dir);
	if (ret < 0)
		return ret;
	flags = open_flags(fs, flags) & ~O_DIRECTORY;
	dfd = inode_fd_get(fs, dir); /* before creds_enter: see inode_fd_get */
	ret = dfd < 0 ? dfd : creds_enter_creator(fs, ctx, &creds);
	if (ret < 0)
		goto out;
	/* Always O_EXCL: an existing name is opened below as fs_open would, never blindly (a FIFO would block). */
	fd = openat(dfd, name, flags | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode & 07777);
	if (fd < 0)
		ret = neg_errno();
	creds_leave(&creds);
	if (fd < 0 && ret == -EEXIST && !excl) {
		struct stat st;
		opath = openat(dfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
		if (opath < 0) {
			ret = neg_errno();
			goto out;
		}
		ret = fs_statx(opath, "", AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW, &st, NULL);
		if (ret == 0)
			ret = S_ISDIR(st.st_mode) ? -EISDIR : openable(st.st_mode & S_IFMT);
		if (ret == 0) {
			char pname[16];
			snprintf(pname, sizeof(pname), "%d", opath);
			fd = openat(fs->proc_fd, pname, flags | O_CLOEXEC);
			if (fd < 0)
				ret = neg_errno();
		}
		if (ret < 0) {
			close(opath);
			goto out;
		}
	}
	if (fd < 0)
		goto out;
	if (opath < 0 && (ret = xattr_set_secctx(fs, ctx, S_IFREG, fd)) < 0) {
		/* The new file goes again without its label, as in virtiofsd (an existing one is left alone). */
		close(fd);
		unlinkat(dfd, name, 0);
		goto out;
	}
	ret = register_open_file(fs, fd, opath, flags, e, fh);
out:
	inode_fd_put(dir, dfd);
	inode_put(fs, dir);
	return ret;
}

int fs_tmpfile(struct fs *fs, const struct fs_ctx *ctx, uint64_t parent, mode_t mode, int flags,
               struct fs_entry *e, uint64_t *fh)
{
	if (fs->cfg.readonly)
		return -EROFS;
	struct fs_inode *dir;
	struct fs_creds creds;
	int fd, ret, dfd;

	ret = dir_get(fs, parent, &dir);
	if (ret < 0)
		return ret;
	flags = open_flags(fs, flags) & ~O_DIRECTORY;
	dfd = inode_fd_get(fs, dir); /* before creds_enter: see inode_fd_get */
	ret = dfd < 0 ? dfd : creds_enter_creator(fs, ctx, &creds);
	if (ret < 0)
		goto out;
	fd = openat(dfd, ".", flags | O_TMPFILE | O_CLOEXEC, mode & 07777);
	if (fd < 0)
		ret = neg_errno();
	creds_leave(&creds);
	if (fd >= 0 && (ret = xattr_set_secctx(fs, ctx, S_IFREG, fd)) < 0)
		close(fd); /* unnamed: it goes with its last fd */
	else if (fd >= 0)
		ret = register_open_file(fs, fd, -1, flags, e, fh);
out:
	inode_fd_put(dir, dfd);
	inode_put(fs, dir);
	return ret;
}

/* Copies the first size bytes' worth of iov into out (which has room for n entries); returns the count. */
static unsigned clip_iov(const struct iovec *iov, unsigned n, size_t size, struct iovec *out)
{
	unsigned k = 0;
	for (unsigned i = 0; i < n && size > 0; i++) {
		if (iov[i].iov_len == 0)
			continue;
		out[k] = iov[i];
		if (out[k].iov_len > size)
			out[k].iov_len = size;
		size -= out[k].iov_len;
		k++;
	}
	return k;
}

/* preadv2/pwritev2 until everything is done, end of file, or an error (reported only if nothing was done). */
static ssize_t rw_all(int fd, bool write, struct iovec *iov, unsigned n, uint64_t off, int rwf)
{
	size_t done = 0;

	while (n > 0) {
		int cnt = (int)MIN(n, (unsigned)IOV_MAX);
		ssize_t r = write ? pwritev2(fd, iov, cnt, (off_t)(off + done), rwf)
		                  : preadv2(fd, iov, cnt, (off_t)(off + done), rwf);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			if (done)
				break;
			return neg_errno();
		}
		if (r == 0)
			break;
		done += (size_t)r;
		while (n > 0 && (size_t)r >= iov->iov_len) {
			r -= (ssize_t)iov->iov_len;
			iov++;
			n--;
		}
		if (n > 0) {
			iov->iov_base = (char *)iov->iov_base + r;
			iov->iov_len -= (size_t)r;
		}
	}
	return (ssize_t)done;
}

/* What the host kernel checks of an fd opened with the guest's flags, checked here for every handle (a shared one's
 * fd is read-write whatever the guest asked). */
static bool handle_allows(const struct fs_handle *h, bool write)
{
	int acc = h->flags & O_ACCMODE;
	return write ? acc != O_RDONLY : acc != O_WRONLY;
}

/* O_SYNC and O_DSYNC of a shared handle, per write (the shared description has neither). */
static int handle_sync_flags(const struct fs_handle *h)
{
	if (!h->shared)
		return 0;
	if ((h->flags & O_SYNC) == O_SYNC)
		return RWF_SYNC;
	return (h->flags & O_DSYNC) ? RWF_DSYNC : 0;
}

static ssize_t do_rw(struct fs_handle *h, bool write, const struct iovec *iov, unsigned n, size_t size,
                     uint64_t off)
{
	struct iovec local[16], *v = local;
	ssize_t ret;
	uint64_t end;

	if (h->is_dir)
		return -EISDIR;
	if (!handle_allows(h, write))
		return -EBADF;
	if (off > INT64_MAX)
		return write ? -EFBIG : -EINVAL;
	if (add_overflows_u64(off, size, &end) || end > INT64_MAX) {
		if (write)
			return -EFBIG;
		size = INT64_MAX - off; /* a read just stops at the largest offset */
	}
	if (n > ARRAY_SIZE(local)) {
		v = malloc(n * sizeof(*v));
		if (!v)
			return -ENOMEM;
	}
	n = clip_iov(iov, n, size, v);
	ret = n ? rw_all(h->fd, write, v, n, off, write ? handle_sync_flags(h) : 0) : 0;
	if (v != local)
		free(v);
	return ret;
}

ssize_t fs_read(struct fs *fs, uint64_t fh, uint64_t off, size_t size, const struct iovec *dst, unsigned ndst)
{
	struct fs_handle *h;
	ssize_t ret = handle_get(fs, fh, &h);

	if (ret < 0)
		return ret;
	dax_sync_before(fs, h->inode);
	ret = do_rw(h, false, dst, ndst, size, off);
	handle_put(fs, h);
	return ret;
}

ssize_t fs_write(struct fs *fs, const struct fs_ctx *ctx, uint64_t fh, uint64_t off, const struct iovec *src,
                 unsigned nsrc, bool kill_suidgid)
{
	struct fs_handle *h;
	uint64_t size = 0;
	ssize_t ret;

	(void)ctx;
	for (unsigned i = 0; i < nsrc; i++) {
		if (add_overflows_u64(size, src[i].iov_len, &size) || size > SSIZE_MAX)
			return -EINVAL;
	}
	ret = handle_get(fs, fh, &h);
	if (ret < 0)
		return ret;
	if (kill_suidgid && !h->is_dir) {
		/* The daemon has CAP_FSETID, so its write would keep the bits; clear them as the host kernel would
		 * for the unprivileged writer (security.capability goes away on any write anyway). */
		struct stat st;
		ret = fs_statx(h->fd, "", AT_EMPTY_PATH, &st, NULL);
		if (ret < 0)
			goto out;
		mode_t kill = fs_suidgid_to_kill(st.st_mode);
		if (kill && fchmod(h->fd, st.st_mode & 07777 & ~kill) < 0) {
			ret = neg_errno();
			goto out;
		}
	}
	dax_sync_before(fs, h->inode);
	ret = do_rw(h, true, src, nsrc, size, off);
	dax_sync_after_growth(fs, h->inode);
out:
	handle_put(fs, h);
	return ret;
}

int fs_flush(struct fs *fs, uint64_t nodeid, uint64_t fh, uint64_t lock_owner)
{
	struct fs_handle *h;
	int ret = handle_get(fs, fh, &h), fd;

	(void)nodeid;
	if (ret < 0)
		return ret;
	if (fs->cfg.posix_lock)
		locks_drop_owner(h->inode, lock_owner);
	dax_sync_before(fs, h->inode);
	/* close() of a duplicate: what a close(2) on the host would flush (NFS and the like), without the file. */
	fd = fcntl(h->fd, F_DUPFD_CLOEXEC, 0);
	if (fd < 0)
		ret = neg_errno();
	else if (close(fd) < 0 && errno != EINTR)
		ret = neg_errno();
	handle_put(fs, h);
	return ret;
}

int fs_release(struct fs *fs, uint64_t nodeid, uint64_t fh, bool release_flock, uint64_t lock_owner)
{
	struct fs_handle *h;
	int ret = handle_remove(fs, fh, &h);

	(void)nodeid;
	if (ret < 0)
		return ret;
	dax_sync_before(fs, h->inode);
	if (release_flock && fs->cfg.flock)
		flock(handle_flock_fd(h), LOCK_UN);
	if (fs->cfg.posix_lock) {
		locks_drop_owner(h->inode, lock_owner);
		locks_drop_handle(h->inode, fh);
	}
	handle_put(fs, h);
	return 0;
}

static int sync_fd(int fd, bool datasync)
{
	return (datasync ? fdatasync(fd) : fsync(fd)) < 0 ? neg_errno() : 0;
}

static int do_fsync(struct fs *fs, uint64_t nodeid, uint64_t fh, bool datasync, bool dir)
{
	struct fs_inode *inode;
	struct fs_handle *h;
	int fd, ret;

	if (fh != FS_NO_HANDLE) {
		ret = handle_get(fs, fh, &h);
		if (ret < 0)
			return ret;
		dax_sync_before(fs, h->inode);
		ret = sync_fd(h->fd, datasync);
		handle_put(fs, h);
		return ret;
	}
	ret = inode_get(fs, nodeid, &inode);
	if (ret < 0)
		return ret;
	if (inode->type == S_IFDIR) {
		fd = inode_reopen(fs, inode, O_RDONLY | O_DIRECTORY);
	} else if (inode->type == S_IFREG && !dir) {
		dax_sync_before(fs, inode);
		fd = dax_share_dup(fs, inode); /* another open would break the daemon's own lease */
		if (fd == -ENOENT)
			fd = inode_reopen(fs, inode, O_RDONLY);
	} else {
		fd = -EINVAL;
	}
	if (fd < 0) {
		ret = fd;
	} else {
		ret = sync_fd(fd, datasync);
		close(fd);
	}
	inode_put(fs, inode);
	return ret;
}

int fs_fsync(struct fs *fs, uint64_t nodeid, uint64_t fh, bool datasync)
{
	return do_fsync(fs, nodeid, fh, datasync, false);
}

int fs_fsyncdir(struct fs *fs, uint64_t nodeid, uint64_t fh, bool datasync)
{
	return do_fsync(fs, nodeid, fh, datasync, true);
}

int fs_fallocate(struct fs *fs, uint64_t nodeid, uint64_t fh, int mode, uint64_t off, uint64_t len)
{
	if (fs->cfg.readonly)
		return -EROFS;
	struct fs_handle *h;
	uint64_t end;
	int ret;

	(void)nodeid;
	if (add_overflows_u64(off, len, &end) || end > INT64_MAX)
		return -EFBIG;
	ret = handle_get(fs, fh, &h);
	if (ret < 0)
		return ret;
	if (h->is_dir) {
		ret = -EISDIR;
	} else if (!handle_allows(h, true)) {
		ret = -EBADF;
	} else {
		dax_sync_before(fs, h->inode);
		if (mode & FALLOC_FL_COLLAPSE_RANGE)
			dax_before_shrink(fs, h->inode, off); /* the file ends len sooner: pages past off move or go */
		if (fallocate(h->fd, mode, (off_t)off, (off_t)len) < 0)
			ret = neg_errno();
		dax_sync_after_growth(fs, h->inode);
	}
	handle_put(fs, h);
	return ret;
}

int64_t fs_lseek(struct fs *fs, uint64_t nodeid, uint64_t fh, int64_t off, int whence)
{
	struct fs_handle *h;
	int64_t ret;

	(void)nodeid;
	if (whence != SEEK_SET && whence != SEEK_END && whence != SEEK_DATA && whence != SEEK_HOLE)
		return -EINVAL;
	ret = handle_get(fs, fh, &h);
	if (ret < 0)
		return ret;
	/* A directory's position belongs to readdir. */
	if (h->is_dir) {
		ret = -EINVAL;
	} else {
		dax_sync_before(fs, h->inode);
		off_t r = lseek(h->fd, (off_t)off, whence);
		ret = r < 0 ? neg_errno() : (int64_t)r;
	}
	handle_put(fs, h);
	return ret;
}

ssize_t fs_copy_file_range(struct fs *fs, uint64_t fh_in, uint64_t off_in, uint64_t fh_out, uint64_t off_out,
                           size_t len, unsigned flags)
{
	if (fs->cfg.readonly)
		return -EROFS;
	struct fs_handle *in, *out;
	uint64_t end;
	ssize_t ret;

	if (add_overflows_u64(off_in, len, &end) || end > INT64_MAX || add_overflows_u64(off_out, len, &end) ||
	    end > INT64_MAX)
		return -EINVAL;
	ret = handle_get(fs, fh_in, &in);
	if (ret < 0)
		return ret;
	ret = handle_get(fs, fh_out, &out);
	if (ret < 0) {
		handle_put(fs, in);
		return ret;
	}
	if (in->is_dir || out->is_dir) {
		ret = -EISDIR;
	} else if (!handle_allows(in, false) || !handle_allows(out, true)) {
		ret = -EBADF;
	} else {
		off_t oi = (off_t)off_in, oo = (off_t)off_out;
		dax_sync_before(fs, in->inode);
		dax_sync_before(fs, out->inode);
		ret = copy_file_range(in->fd, &oi, out->fd, &oo, len, flags);
		if (ret < 0)
			ret = neg_errno();
		dax_sync_after_growth(fs, out->inode);
	}
	handle_put(fs, out);
	handle_put(fs, in);
	return ret;
}

int fs_syncfs(struct fs *fs)
{
	/* syncfs() does not take O_PATH fds. */
	int fd = inode_reopen(fs, fs->root, O_RDONLY | O_DIRECTORY), ret = 0;

	if (fd < 0)
		return fd;
	if (syncfs(fd) < 0)
		ret = neg_errno();
	close(fd);
	return ret;
}

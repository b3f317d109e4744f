/*
 * Inodes kept by file handle (--inode-file-handles=prefer|mandatory, as Rust virtiofsd): instead of an O_PATH fd
 * per inode, which makes a guest that walks a million files cost the daemon a million fds, an inode keeps the
 * file's handle (name_to_handle_at) and opens it again (open_by_handle_at) for each operation that needs an fd.
 *
 * open_by_handle_at needs CAP_DAC_READ_SEARCH and an fd on the file's mount that is not O_PATH (the kernel ignores
 * O_PATH files there): the mount table keeps one per mount id, a directory of that mount opened O_RDONLY, made
 * from the first directory of the mount that becomes an inode and closed with the last inode that uses it. A
 * non-directory whose mount has no entry yet (a file bind-mounted over a file) keeps its fd under prefer:
 * opening it for reading might act on the file (a FIFO, a device, a lease).
 *
 * Identity stays (dev, ino, mnt_id). An fd pins its inode, a handle does not: the file can be deleted and its inode
 * number reused while the guest still holds the node. So a handle-based inode matches a file only if their handles
 * are equal too (inodes.c), and one whose file is gone answers ESTALE, as virtiofsd's does; its open handles
 * (struct fs_handle) keep their own fds and work on.
 */
#include "fs/fs_internal.h"

#include "common/log.h"
#include "common/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct fs_mount {
	uint64_t mnt_id;
	int fd;                   /* O_RDONLY|O_DIRECTORY on a directory of the mount */
	uint64_t refs;            /* table->mu: inodes (and the fs, for the root's mount) using it */
	struct mount_table *table;
};

static void mount_put(struct fs_mount *m);

int mounts_init(struct mount_table *t)
{
	memset(t, 0, sizeof(*t));
	return -pthread_mutex_init(&t->mu, NULL);
}

void mounts_destroy(struct fs *fs)
{
	struct mount_table *t = &fs->mounts;
	if (fs->root_mount)
		mount_put(fs->root_mount);
	fs->root_mount = NULL;
	if (t->n)
		log_err("fs: %u mount fds still in use at the end", t->n);
	pthread_mutex_destroy(&t->mu);
}

int fhandle_take(int dirfd, const char *name, int flags, struct fs_handle_buf *buf)
{
	int mnt;
	buf->fh.handle_bytes = FS_HANDLE_MAX_BYTES;
	return name_to_handle_at(dirfd, name, &buf->fh, &mnt, flags) < 0 ? neg_errno() : 0;
}

bool fhandle_equal(const struct file_handle *a, const struct file_handle *b)
{
	return a->handle_type == b->handle_type && a->handle_bytes == b->handle_bytes &&
	       memcmp(a->f_handle, b->f_handle, a->handle_bytes) == 0;
}

/* A reference to the entry of mnt_id, or NULL. */
static struct fs_mount *mount_find(struct mount_table *t, uint64_t mnt_id)
{
	struct fs_mount *m = NULL;
	pthread_mutex_lock(&t->mu);
	for (unsigned i = 0; i < t->n && !m; i++) {
		if (t->m[i]->mnt_id == mnt_id) {
			m = t->m[i];
			m->refs++;
		}
	}
	pthread_mutex_unlock(&t->mu);
	return m;
}

/* Enters fd (consumed) as mnt_id's mount fd, or takes the entry another thread entered meanwhile. -ENOSPC when the
 * table is full. */
static int mount_add(struct mount_table *t, uint64_t mnt_id, int fd, struct fs_mount **out)
{
	struct fs_mount *fresh = malloc(sizeof(*fresh));
	int ret = 0;

	if (!fresh) {
		close(fd);
		return -ENOMEM;
	}
	*fresh = (struct fs_mount){ .mnt_id = mnt_id, .fd = fd, .refs = 1, .table = t };
	pthread_mutex_lock(&t->mu);
	*out = NULL;
	for (unsigned i = 0; i < t->n && !*out; i++) {
		if (t->m[i]->mnt_id == mnt_id) {
			*out = t->m[i];
			(*out)->refs++;
		}
	}
	if (!*out && t->n < FS_MAX_MOUNTS) {
		t->m[t->n++] = fresh;
		*out = fresh;
		fresh = NULL;
	} else if (!*out) {
		ret = -ENOSPC;
	}
	pthread_mutex_unlock(&t->mu);
	if (fresh) {
		close(fresh->fd);
		free(fresh);
	}
	return ret;
}

static void mount_put(struct fs_mount *m)
{
	struct mount_table *t = m->table;
	bool last;

	pthread_mutex_lock(&t->mu);
	last = --m->refs == 0;
	for (unsigned i = 0; last && i < t->n; i++) {
		if (t->m[i] == m) {
			t->m[i] = t->m[--t->n];
			break;
		}
	}
	pthread_mutex_unlock(&t->mu);
	if (last) {
		close(m->fd);
		free(m);
	}
}

/* The mount entry for a new inode on mnt_id: the table's, or one made from the inode itself if it is a directory.
 * -ENOENT when there is none and the inode cannot make one. */
static int mount_for(struct fs *fs, const struct fs_inode *inode, struct fs_mount **out)
{
	*out = mount_find(&fs->mounts, inode->mnt_id);
	if (*out)
		return 0;
	if (inode->type != S_IFDIR)
		return -ENOENT;
	int fd = fd_reopen(fs, inode->fd, O_RDONLY | O_DIRECTORY);
	return fd < 0 ? fd : mount_add(&fs->mounts, inode->mnt_id, fd, out);
}

/* A copy of buf's handle on the heap. */
static struct file_handle *fhandle_dup(const struct fs_handle_buf *buf)
{
	struct file_handle *fh = malloc(sizeof(*fh) + buf->fh.handle_bytes);
	if (fh)
		memcpy(fh, &buf->fh, sizeof(*fh) + buf->fh.handle_bytes);
	return fh;
}

int fhandle_attach(struct fs *fs, struct fs_inode *inode)
{
	struct fs_handle_buf buf;
	struct fs_mount *m = NULL;
	bool mandatory = fs->cfg.inode_file_handles == FS_HANDLES_MANDATORY;

	if (!fs->inode_handles)
		return 0;
	int ret = fhandle_take(inode->fd, "", AT_EMPTY_PATH, &buf);
	if (ret == 0)
		ret = mount_for(fs, inode, &m);
	if (ret == 0 && !(inode->fh = fhandle_dup(&buf))) {
		mount_put(m);
		return -ENOMEM;
	}
	if (ret < 0) {
		if (ret == -ENOMEM)
			return ret;
		if (!mandatory)
			return 0; /* prefer: this inode keeps its fd */
		log_debug("fs: inode %llu has no usable file handle: %s", (unsigned long long)inode->ino,
		          strerror(-ret));
		return ret == -ENOENT || ret == -ENOSPC ? -EOPNOTSUPP : ret;
	}
	inode->mount = m;
	close(inode->fd);
	inode->fd = -1;
	return 0;
}

void fhandle_detach(struct fs_inode *inode)
{
	free(inode->fh);
	inode->fh = NULL;
	if (inode->mount)
		mount_put(inode->mount);
	inode->mount = NULL;
}

int fhandle_open(const struct fs_inode *inode, int flags)
{
	int fd = open_by_handle_at(inode->mount->fd, inode->fh, (flags & ~O_NOFOLLOW) | O_CLOEXEC);
	return fd < 0 ? neg_errno() : fd;
}

int inode_fd_get(const struct fs *fs, const struct fs_inode *inode)
{
	(void)fs;
	return inode->fd >= 0 ? inode->fd : fhandle_open(inode, O_PATH);
}

void inode_fd_put(const struct fs_inode *inode, int fd)
{
	if (inode->fd < 0 && fd >= 0)
		close(fd);
}

/* Whether a handle of the root opens again as the root: the file system makes handles, and the daemon, with the
 * capabilities it serves with, may open them. Leaves the root's mount entered (fs->root_mount) on success. */
static int probe_root(struct fs *fs)
{
	struct fs_handle_buf buf;
	struct fs_inode probe = { .fd = -1, .type = S_IFDIR, .mnt_id = fs->root->mnt_id };
	struct stat st;
	int ret = fhandle_take(fs->root->fd, "", AT_EMPTY_PATH, &buf);

	if (ret < 0)
		return ret;
	probe.fd = fs->root->fd;
	ret = mount_for(fs, &probe, &probe.mount);
	if (ret < 0)
		return ret;
	probe.fh = &buf.fh;
	int fd = fhandle_open(&probe, O_PATH);
	ret = fd < 0 ? fd : fs_statx(fd, "", AT_EMPTY_PATH, &st, NULL);
	if (fd >= 0)
		close(fd);
	if (ret == 0 && (st.st_ino != fs->root->ino || st.st_dev != fs->root->dev))
		ret = -ESTALE;
	if (ret < 0)
		mount_put(probe.mount);
	else
		fs->root_mount = probe.mount;
	return ret;
}

int fs_inode_handles_start(struct fs *fs)
{
	enum fs_inode_handles mode = fs->cfg.inode_file_handles;
	if (mode == FS_HANDLES_NEVER)
		return 0;
	int ret = probe_root(fs);
	if (ret == 0) {
		fs->inode_handles = true;
		log_info("fs: inodes keep file handles (--inode-file-handles=%s)",
		         mode == FS_HANDLES_PREFER ? "prefer" : "mandatory");
		return 0;
	}
	const char *why = ret == -EPERM        ? "open_by_handle_at is not allowed (it needs CAP_DAC_READ_SEARCH in the "
	                                         "initial user namespace)"
	                  : ret == -EOPNOTSUPP ? "the shared directory's file system cannot make file handles"
	                                       : "a file handle of the shared directory did not open again";
	if (mode == FS_HANDLES_MANDATORY) {
		log_err("fs: --inode-file-handles=mandatory: %s (%s)", why, strerror(-ret));
		return ret;
	}
	log_warn("fs: --inode-file-handles=prefer: %s (%s): inodes keep O_PATH fds, as with never", why,
	         strerror(-ret));
	return 0;
}

bool fs_inode_handles_used(const struct fs *fs)
{
	return fs->inode_handles;
}

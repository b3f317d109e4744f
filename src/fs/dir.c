/* Directory handles: opendir, readdir(plus), releasedir. */
#include "fs/fs_internal.h"

#include "common/log.h"
#include "common/util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Per directory handle, only while a stream is mid-buffer (freed once drained): a guest holding max_handles
 * half-read directories pins at most max_handles * DIRBUF_SIZE bytes. */
#define DIRBUF_SIZE 8192

struct dirent64_raw {
	uint64_t d_ino;
	int64_t d_off;
	unsigned short d_reclen;
	unsigned char d_type;
	char d_name[];
};

void dir_handle_free(struct fs_handle *h)
{
	free(h->dbuf);
	h->dbuf = NULL;
}

int fs_opendir(struct fs *fs, const struct fs_ctx *ctx, uint64_t nodeid, uint64_t *fh)
{
	struct fs_inode *inode;
	int fd, ret;

	(void)ctx;
	ret = dir_get(fs, nodeid, &inode);
	if (ret < 0)
		return ret;
	fd = inode_reopen(fs, inode, O_RDONLY | O_DIRECTORY);
	if (fd < 0) {
		inode_put(fs, inode);
		return fd;
	}
	return handle_new(fs, fd, O_RDONLY | O_DIRECTORY, inode, true, false, fh);
}

static bool is_dot_or_dotdot(const char *name)
{
	return name[0] == '.' && (name[1] == 0 || (name[1] == '.' && name[2] == 0));
}

/* dir_mu held. */
static int read_dir(struct fs *fs, struct fs_handle *h, uint64_t offset, bool plus, fs_dirent_fn fill, void *arg)
{
	unsigned emitted = 0;

	if (!h->dbuf) {
		h->dbuf = malloc(DIRBUF_SIZE);
		if (!h->dbuf)
			return -ENOMEM;
	}
	if (offset != h->dir_off) {
		if (offset > INT64_MAX || lseek(h->fd, (off_t)offset, SEEK_SET) < 0)
			return offset > INT64_MAX ? -EINVAL : neg_errno();
		h->dlen = h->dpos = 0;
		h->dir_off = offset;
	}
	for (;;) {
		if (h->dpos >= h->dlen) {
			long n = syscall(SYS_getdents64, h->fd, h->dbuf, DIRBUF_SIZE);
			if (n < 0)
				return emitted ? 0 : neg_errno();
			if (n == 0)
				return 0;
			h->dlen = (size_t)n;
			h->dpos = 0;
		}
		const struct dirent64_raw *d = (const void *)(h->dbuf + h->dpos);
		const char *name = d->d_name;
		size_t namelen = strnlen(name, d->d_reclen - offsetof(struct dirent64_raw, d_name));
		struct fs_entry ent, *pe = NULL;
		bool looked_up = false;

		if (plus) {
			pe = &ent;
			if (is_dot_or_dotdot(name)) {
				memset(&ent, 0, sizeof(ent));
				ent.st.st_ino = d->d_ino;
				ent.st.st_mode = DTTOIF(d->d_type);
			} else {
				int r = inode_lookup_name_at(fs, h->inode, h->fd, name, &ent);
				if (r == -ENOENT) {
					/* Gone since getdents: as if it never was. */
					h->dpos += d->d_reclen;
					h->dir_off = (uint64_t)d->d_off;
					continue;
				}
				if (r < 0)
					return emitted ? 0 : r;
				looked_up = true;
			}
		}
		if (fill(arg, name, namelen, d->d_ino, d->d_type, (uint64_t)d->d_off, pe) != 0) {
			if (looked_up)
				inode_forget(fs, ent.nodeid, 1);
			return 0;
		}
		emitted++;
		h->dpos += d->d_reclen;
		h->dir_off = (uint64_t)d->d_off;
	}
}

int fs_readdir(struct fs *fs, const struct fs_ctx *ctx, uint64_t nodeid, uint64_t fh, uint64_t offset, bool plus,
               fs_dirent_fn fill, void *arg)
{
	struct fs_handle *h;
	int ret;

	(void)ctx;
	(void)nodeid;
	ret = handle_get(fs, fh, &h);
	if (ret < 0)
		return ret;
	if (!h->is_dir) {
		handle_put(fs, h);
		return -ENOTDIR;
	}
	pthread_mutex_lock(&h->dir_mu);
	ret = read_dir(fs, h, offset, plus, fill, arg);
	if (h->dpos >= h->dlen) {
		dir_handle_free(h);
		h->dpos = h->dlen = 0;
	}
	pthread_mutex_unlock(&h->dir_mu);
	handle_put(fs, h);
	return ret;
}

int fs_releasedir(struct fs *fs, uint64_t nodeid, uint64_t fh)
{
	struct fs_handle *h;
	int ret = handle_remove(fs, fh, &h);

	(void)nodeid;
	if (ret < 0)
		return ret;
	handle_put(fs, h);
	return 0;
}

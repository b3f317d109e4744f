/*
 * Extended attributes. Regular files and directories: f*xattr on an fd opened through /proc/self/fd. Anything
 * else (symlinks, device nodes, FIFOs, sockets) must not be opened: the path /proc/self/fd/N is used instead,
 * whose magic link lands on the inode itself and is not followed any further.
 */
#include "fs/fs_internal.h"

#include "common/log.h"
#include "common/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>
#include <unistd.h>

#define ACL_PREFIX "system.posix_acl_"

struct xtarget {
	int fd;                   /* -1: use path */
	char path[40];
};

static bool is_acl_name(const char *name)
{
	return !strncmp(name, ACL_PREFIX, sizeof(ACL_PREFIX) - 1);
}

static int xattr_allowed(const struct fs *fs, const char *name)
{
	if (!fs->cfg.xattr)
		return -ENOSYS;
	if (name && !fs->cfg.posix_acl && is_acl_name(name))
		return -EOPNOTSUPP;
	return 0;
}

static int target_open(struct fs *fs, struct fs_inode *inode, struct xtarget *t)
{
	t->fd = -1;
	t->path[0] = 0;
	if (inode->type == S_IFREG || inode->type == S_IFDIR) {
		t->fd = inode_reopen(fs, inode, inode->type == S_IFDIR ? O_RDONLY | O_DIRECTORY : O_RDONLY | O_NONBLOCK);
		return t->fd < 0 ? t->fd : 0;
	}
	snprintf(t->path, sizeof(t->path), "/proc/self/fd/%d", inode->fd);
	return 0;
}

static void target_close(struct xtarget *t)
{
	close_if_open(&t->fd);
}

/* Common prologue: checks, reference, target. */
static int xattr_begin(struct fs *fs, uint64_t nodeid, const char *name, struct fs_inode **inode,
                       struct xtarget *t)
{
	int ret = xattr_allowed(fs, name);

	if (ret < 0)
		return ret;
	ret = inode_get(fs, nodeid, inode);
	if (ret < 0)
		return ret;
	ret = target_open(fs, *inode, t);
	if (ret < 0)
		inode_put(fs, *inode);
	return ret;
}

int fs_setxattr(struct fs *fs, const struct fs_ctx *ctx, uint64_t nodeid, const char *name, const void *value,
                size_t size, int flags)
{
	struct fs_inode *inode;
	struct fs_creds creds = { 0 };
	struct xtarget t;
	int ret;

	if (!name)
		return -EINVAL;
	ret = xattr_begin(fs, nodeid, name, &inode, &t);
	if (ret < 0)
		return ret;
	/* Setting an access ACL may clear S_ISGID, which the kernel decides from the setter's groups and
	 * CAP_FSETID: set it as the caller. */
	if (!strcmp(name, "system.posix_acl_access"))
		ret = creds_enter(fs, ctx, &creds);
	if (ret == 0) {
		if (t.fd >= 0)
			ret = fsetxattr(t.fd, name, value, size, flags);
		else
			ret = setxattr(t.path, name, value, size, flags);
		if (ret < 0)
			ret = neg_errno();
		creds_leave(&creds);
	}
	target_close(&t);
	inode_put(fs, inode);
	return ret;
}

ssize_t fs_getxattr(struct fs *fs, const struct fs_ctx *ctx, uint64_t nodeid, const char *name, void *buf,
                    size_t size)
{
	struct fs_inode *inode;
	struct xtarget t;
	ssize_t ret;

	(void)ctx;
	if (!name)
		return -EINVAL;
	ret = xattr_begin(fs, nodeid, name, &inode, &t);
	if (ret < 0)
		return ret;
	if (t.fd >= 0)
		ret = fgetxattr(t.fd, name, size ? buf : NULL, size);
	else
		ret = getxattr(t.path, name, size ? buf : NULL, size);
	if (ret < 0)
		ret = neg_errno();
	target_close(&t);
	inode_put(fs, inode);
	return ret;
}

static ssize_t list_raw(const struct xtarget *t, char *buf, size_t size)
{
	ssize_t n = t->fd >= 0 ? flistxattr(t->fd, buf, size) : listxattr(t->path, buf, size);
	return n < 0 ? neg_errno() : n;
}

/* The list without system.posix_acl_* names, into buf (or only its size when size is 0). */
static ssize_t list_filtered(const struct xtarget *t, char *buf, size_t size)
{
	char *all = NULL;
	ssize_t n, out = 0;

	for (int tries = 0; tries < 8; tries++) {
		n = list_raw(t, NULL, 0);
		if (n <= 0)
			return n;
		free(all);
		all = malloc((size_t)n);
		if (!all)
			return -ENOMEM;
		n = list_raw(t, all, (size_t)n);
		if (n != -ERANGE)
			break; /* else the list grew in between: again */
	}
	if (n < 0) {
		free(all);
		return n;
	}
	for (ssize_t i = 0; i < n;) {
		size_t len = strnlen(all + i, (size_t)(n - i));
		if (!is_acl_name(all + i)) {
			if (size) {
				if ((size_t)out + len + 1 > size) {
					out = -ERANGE;
					break;
				}
				memcpy(buf + out, all + i, len);
				buf[out + (ssize_t)len] = 0;
			}
			out += (ssize_t)len + 1;
		}
		i += (ssize_t)len + 1;
	}
	free(all);
	return out;
}

ssize_t fs_listxattr(struct fs *fs, const struct fs_ctx *ctx, uint64_t nodeid, char *buf, size_t size)
{
	struct fs_inode *inode;
	struct xtarget t;
	ssize_t ret;

	(void)ctx;
	ret = xattr_begin(fs, nodeid, NULL, &inode, &t);
	if (ret < 0)
		return ret;
	if (fs->cfg.posix_acl)
		ret = list_raw(&t, size ? buf : NULL, size);
	else
		ret = list_filtered(&t, buf, size);
	target_close(&t);
	inode_put(fs, inode);
	return ret;
}

int fs_removexattr(struct fs *fs, const struct fs_ctx *ctx, uint64_t nodeid, const char *name)
{
	struct fs_inode *inode;
	struct xtarget t;
	int ret;

	(void)ctx;
	if (!name)
		return -EINVAL;
	ret = xattr_begin(fs, nodeid, name, &inode, &t);
	if (ret < 0)
		return ret;
	if (t.fd >= 0)
		ret = fremovexattr(t.fd, name);
	else
		ret = removexattr(t.path, name);
	if (ret < 0)
		ret = neg_errno();
	target_close(&t);
	inode_put(fs, inode);
	return ret;
}

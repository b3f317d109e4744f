/*
 * Extended attributes. Regular files and directories: f*xattr on an fd opened through /proc/self/fd. Anything
 * else (symlinks, device nodes, FIFOs, sockets) must not be opened, and f*xattr refuses O_PATH fds, so the
 * path-based calls are used on "N" relative to /proc/self/fd, whose magic link lands on the inode itself and is
 * not followed any further. The path is relative because the sandbox pivots into the shared directory, where an
 * absolute "/proc/self/fd/N" would name nothing (or whatever the guest put there): the process's working
 * directory is moved to our /proc/self/fd fd for the duration of the call, under cwd_mu, and then put back.
 * Nothing else in this room uses relative paths.
 */
#include "fs/fs_internal.h"
#include "fs/xattrmap.h"

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

/* The working directory is per process. */
static pthread_mutex_t cwd_mu = PTHREAD_MUTEX_INITIALIZER;

enum xop { XOP_SET, XOP_GET, XOP_LIST, XOP_REMOVE };

struct xcall {
	enum xop op;
	const char *name;
	void *buf;               /* XOP_SET: the value */
	size_t size;
	int flags;
	const struct fs_ctx *as; /* run as this caller (NULL: as the daemon) */
};

static bool is_acl_name(const char *name)
{
	return !strncmp(name, ACL_PREFIX, sizeof(ACL_PREFIX) - 1);
}

/*
 * Who may touch which names. On the host, trusted.* needs CAP_SYS_ADMIN to read or write, and security.* needs
 * CAP_SYS_ADMIN to write (security.capability: CAP_SETFCAP). The daemon keeps those capabilities to serve the
 * guest's root, and switching fsuid does not drop them, so it decides for the caller here: only a caller with
 * uid 0 in the guest gets them, as only root would on the host. Other names are set and removed as the caller
 * (fsuid/fsgid, which drops the file capabilities), so the host's own checks apply: user.* needs write
 * permission on a regular file or directory, ACLs need ownership.
 */
static bool privileged_name(const char *name, bool write)
{
	return !strncmp(name, "trusted.", 8) || (write && !strncmp(name, "security.", 9));
}

static int check_name_access(const struct fs_ctx *ctx, const char *name, bool write)
{
	return ctx && ctx->uid != 0 && privileged_name(name, write) ? -EPERM : 0;
}

static ssize_t call_fd(int fd, const struct xcall *c)
{
	switch (c->op) {
	case XOP_SET:
		return fsetxattr(fd, c->name, c->buf, c->size, c->flags);
	case XOP_GET:
		return fgetxattr(fd, c->name, c->size ? c->buf : NULL, c->size);
	case XOP_LIST:
		return flistxattr(fd, c->size ? c->buf : NULL, c->size);
	case XOP_REMOVE:
		return fremovexattr(fd, c->name);
	}
	errno = EINVAL;
	return -1;
}

static ssize_t call_path(const char *path, const struct xcall *c)
{
	switch (c->op) {
	case XOP_SET:
		return setxattr(path, c->name, c->buf, c->size, c->flags);
	case XOP_GET:
		return getxattr(path, c->name, c->size ? c->buf : NULL, c->size);
	case XOP_LIST:
		return listxattr(path, c->size ? c->buf : NULL, c->size);
	case XOP_REMOVE:
		return removexattr(path, c->name);
	}
	errno = EINVAL;
	return -1;
}

/* One xattr call on the node of opath (of type S_IFMT): as the daemon, or as c->as. */
static ssize_t xattr_call_on(struct fs *fs, mode_t type, int opath, const struct xcall *c)
{
	struct fs_creds creds;
	ssize_t ret;
	int fd, cwd;

	if (type == S_IFREG || type == S_IFDIR) {
		fd = fd_reopen(fs, opath, type == S_IFDIR ? O_RDONLY | O_DIRECTORY : O_RDONLY | O_NONBLOCK);
		if (fd < 0)
			return fd;
		ret = creds_enter(fs, c->as, &creds);
		if (ret == 0) {
			ret = call_fd(fd, c);
			if (ret < 0)
				ret = neg_errno();
			creds_leave(&creds);
		}
		close(fd);
		return ret;
	}

	char name[16];
	snprintf(name, sizeof(name), "%d", opath);
	pthread_mutex_lock(&cwd_mu);
	cwd = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fchdir(fs->proc_fd) < 0) {
		ret = neg_errno();
	} else {
		ret = creds_enter(fs, c->as, &creds);
		if (ret == 0) {
			ret = call_path(name, c);
			if (ret < 0)
				ret = neg_errno();
			creds_leave(&creds);
		}
		/* Back where we were; if that is gone, to the shared directory, never somewhere above it. */
		if ((cwd < 0 || fchdir(cwd) < 0) && fchdir(fs->root->fd) < 0)
			log_warn("fs: cannot restore the working directory: %s", strerror(errno));
	}
	if (cwd >= 0)
		close(cwd);
	pthread_mutex_unlock(&cwd_mu);
	return ret;
}

static ssize_t xattr_call(struct fs *fs, struct fs_inode *inode, const struct xcall *c)
{
	int fd = inode_fd_get(fs, inode);
	if (fd < 0)
		return fd;
	ssize_t ret = xattr_call_on(fs, inode->type, fd, c);
	inode_fd_put(inode, fd);
	return ret;
}

/* Common prologue: xattrs served at all, and a reference. */
static int xattr_begin(struct fs *fs, uint64_t nodeid, struct fs_inode **inode)
{
	if (!fs->cfg.xattr)
		return -ENOSYS;
	return inode_get(fs, nodeid, inode);
}

/*
 * The host's name for a guest's name: who may touch the name and whether ACL names are served (without
 * --posix-acl they are refused) are judged on the guest's name, whose meaning the guest's kernel gave it; then
 * --xattrmap gives the host's. A mapped name's host rules do not apply to the guest's callers (the daemon holds
 * the capabilities): a label kept as trusted.virtiofs.security.selinux reads as security.selinux does.
 * *host is name itself or buf. A get that a bad rule denies finds nothing, as in virtiofsd.
 */
static int host_name(struct fs *fs, const struct fs_ctx *ctx, enum xop op, const char *name,
                     char buf[XATTR_NAME_MAX + 1], const char **host)
{
	int ret;

	if (!fs->cfg.xattr)
		return -ENOSYS;
	if (!name)
		return -EINVAL;
	if (!fs_acl_on(fs) && is_acl_name(name))
		return -EOPNOTSUPP;
	ret = check_name_access(ctx, name, op != XOP_GET);
	if (ret < 0)
		return ret;
	*host = name;
	if (fs->cfg.xattrmap) {
		ret = xattrmap_to_host(fs->cfg.xattrmap, name, buf);
		if (ret < 0)
			return ret == -EPERM && op == XOP_GET ? -ENODATA : ret;
		*host = buf;
	}
	return 0;
}

/* Before an access ACL replaces the group bits: S_ISGID goes as the guest decided (FS_XATTR_KILL_SGID). */
static int clear_sgid(struct fs *fs, struct fs_inode *inode)
{
	struct stat st;
	int fd = inode_fd_get(fs, inode), ret = fd;
	if (fd >= 0)
		ret = fs_statx(fd, "", AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW, &st, NULL);
	inode_fd_put(inode, fd);
	if (ret < 0 || !(st.st_mode & S_ISGID))
		return ret;
	return inode_set_mode(fs, inode, -1, st.st_mode & 07777 & ~(mode_t)S_ISGID);
}

int fs_setxattr(struct fs *fs, const struct fs_ctx *ctx, uint64_t nodeid, const char *name, const void *value,
                size_t size, int flags)
{
	if (fs->cfg.readonly)
		return -EROFS;
	/* As the caller: permissions, and S_ISGID that setting an access ACL may clear (from the setter's groups
	 * and CAP_FSETID), are then the host's. Under --posix-acl the guest checked the ACL's owner itself and
	 * tells whether S_ISGID goes, knowing the caller's groups that we do not: ACLs are set as the daemon, as
	 * virtiofsd does. */
	bool acl = name && fs_acl_on(fs) && is_acl_name(name);
	struct xcall c = { XOP_SET, NULL, (void *)value, size, flags & ~FS_XATTR_KILL_SGID, acl ? NULL : ctx };
	char buf[XATTR_NAME_MAX + 1];
	struct fs_inode *inode;
	int ret;

	ret = host_name(fs, ctx, XOP_SET, name, buf, &c.name);
	if (ret == 0)
		ret = xattr_begin(fs, nodeid, &inode);
	if (ret < 0)
		return ret;
	if (acl && (flags & FS_XATTR_KILL_SGID) && !strcmp(name, ACL_PREFIX "access"))
		ret = clear_sgid(fs, inode);
	if (ret == 0)
		ret = (int)xattr_call(fs, inode, &c);
	inode_put(fs, inode);
	return ret;
}

ssize_t fs_getxattr(struct fs *fs, const struct fs_ctx *ctx, uint64_t nodeid, const char *name, void *buf,
                    size_t size)
{
	struct xcall c = { XOP_GET, NULL, buf, size, 0, NULL };
	char hbuf[XATTR_NAME_MAX + 1];
	struct fs_inode *inode;
	ssize_t ret;

	ret = host_name(fs, ctx, XOP_GET, name, hbuf, &c.name);
	if (ret == 0)
		ret = xattr_begin(fs, nodeid, &inode);
	if (ret < 0)
		return ret;
	ret = xattr_call(fs, inode, &c);
	inode_put(fs, inode);
	return ret;
}

/* What the guest sees of a host's name, NULL when hidden: --xattrmap's server rules, then without --posix-acl
 * no ACL names. */
static const char *listed_name(const struct fs *fs, const char *host)
{
	const char *name = fs->cfg.xattrmap ? xattrmap_to_guest(fs->cfg.xattrmap, host) : host;
	return name && (fs_acl_on(fs) || !is_acl_name(name)) ? name : NULL;
}

/* The list as the guest sees it (listed_name), into buf (or only its size when size is 0). */
static ssize_t list_filtered(struct fs *fs, struct fs_inode *inode, char *buf, size_t size)
{
	struct xcall c = { XOP_LIST, NULL, NULL, 0, 0, NULL };
	char *all = NULL;
	ssize_t n, out = 0;

	for (int tries = 0; tries < 8; tries++) {
		c.buf = NULL;
		c.size = 0;
		n = xattr_call(fs, inode, &c);
		if (n <= 0)
			return n;
		free(all);
		all = malloc((size_t)n + 1);
		if (!all)
			return -ENOMEM;
		all[n] = '\0'; /* the last name ends even if the host's list did not end it */
		c.buf = all;
		c.size = (size_t)n;
		n = xattr_call(fs, inode, &c);
		if (n != -ERANGE)
			break; /* else the list grew in between: again */
	}
	if (n < 0) {
		free(all);
		return n;
	}
	for (ssize_t i = 0; i < n;) {
		size_t len = strnlen(all + i, (size_t)(n - i));
		const char *name = len ? listed_name(fs, all + i) : NULL;
		if (name) {
			size_t glen = len - (size_t)(name - (all + i));
			if (size) {
				if ((size_t)out + glen + 1 > size) {
					out = -ERANGE;
					break;
				}
				memcpy(buf + out, name, glen);
				buf[out + (ssize_t)glen] = 0;
			}
			out += (ssize_t)glen + 1;
		}
		i += (ssize_t)len + 1;
	}
	free(all);
	return out;
}

ssize_t fs_listxattr(struct fs *fs, const struct fs_ctx *ctx, uint64_t nodeid, char *buf, size_t size)
{
	struct xcall c = { XOP_LIST, NULL, buf, size, 0, NULL };
	struct fs_inode *inode;
	ssize_t ret;

	(void)ctx;
	ret = xattr_begin(fs, nodeid, &inode);
	if (ret < 0)
		return ret;
	if (fs_acl_on(fs) && !fs->cfg.xattrmap)
		ret = xattr_call(fs, inode, &c);
	else
		ret = list_filtered(fs, inode, buf, size);
	inode_put(fs, inode);
	return ret;
}

int fs_removexattr(struct fs *fs, const struct fs_ctx *ctx, uint64_t nodeid, const char *name)
{
	if (fs->cfg.readonly)
		return -EROFS;
	struct xcall c = { XOP_REMOVE, NULL, NULL, 0, 0, ctx };
	char buf[XATTR_NAME_MAX + 1];
	struct fs_inode *inode;
	int ret;

	ret = host_name(fs, ctx, XOP_REMOVE, name, buf, &c.name);
	if (ret == 0)
		ret = xattr_begin(fs, nodeid, &inode);
	if (ret < 0)
		return ret;
	ret = (int)xattr_call(fs, inode, &c);
	inode_put(fs, inode);
	return ret;
}

/* virtiofsd does the same as the daemon: the caller could not set security.* itself, and the guest kernel chose
 * the context, not the caller. */
int xattr_set_secctx(struct fs *fs, const struct fs_ctx *ctx, mode_t type, int fd)
{
	struct xcall c = { XOP_SET, NULL, NULL, 0, 0, NULL };
	char buf[XATTR_NAME_MAX + 1];
	int ret;

	if (!ctx || !ctx->secctx_name)
		return 0;
	c.buf = (void *)ctx->secctx;
	c.size = ctx->secctx_len;
	ret = host_name(fs, NULL, XOP_SET, ctx->secctx_name, buf, &c.name);
	if (ret == 0)
		ret = (int)xattr_call_on(fs, type, fd, &c);
	return ret;
}

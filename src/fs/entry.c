/* The name space: lookup, forget, creating and removing names, readlink. Everything relative to a parent fd. */
#include "fs/fs_internal.h"

#include "common/log.h"
#include "common/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int fs_lookup(struct fs *fs, const struct fs_ctx *ctx, uint64_t parent, const char *name, struct fs_entry *e)
{
	struct fs_inode *dir;
	int ret;

	(void)ctx;
	if (!name)
		return -EINVAL;
	ret = inode_get(fs, parent, &dir);
	if (ret < 0)
		return ret;
	if (dir->type != S_IFDIR) {
		ret = -ENOTDIR;
	} else if (!strcmp(name, ".") || !strcmp(name, "..")) {
		/* Never above the shared directory; ".." below it would need a path walk we do not keep. */
		if (name[1] == '.' && dir != fs->root) {
			ret = -EINVAL;
		} else {
			ret = inode_fill_entry(fs, dir, e);
			if (ret == 0)
				inode_add_lookup(fs, dir);
		}
	} else {
		ret = fs_check_name(name);
		if (ret == 0)
			ret = inode_lookup_name(fs, dir, name, e);
	}
	inode_put(fs, dir);
	return ret;
}

void fs_forget(struct fs *fs, uint64_t nodeid, uint64_t nlookup)
{
	inode_forget(fs, nodeid, nlookup);
}

enum make_kind { MAKE_NOD, MAKE_DIR, MAKE_SYMLINK };

/* The guest's security context on a node just made by name; without it the node goes again (as in virtiofsd). */
static int label_new_name(struct fs *fs, const struct fs_ctx *ctx, struct fs_inode *dir, const char *name,
                          mode_t type)
{
	if (!ctx || !ctx->secctx_name)
		return 0;
	int ret, fd = -1, dfd = inode_fd_get(fs, dir);
	if (dfd < 0)
		return dfd;
	fd = openat(dfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		ret = neg_errno();
	else
		ret = xattr_set_secctx(fs, ctx, type, fd);
	if (fd >= 0)
		close(fd);
	if (ret < 0)
		unlinkat(dfd, name, type == S_IFDIR ? AT_REMOVEDIR : 0);
	inode_fd_put(dir, dfd);
	return ret;
}

static int make_node(struct fs *fs, const struct fs_ctx *ctx, uint64_t parent, const char *name,
                     enum make_kind kind, mode_t mode, dev_t rdev, const char *target, struct fs_entry *e)
{
	if (fs->cfg.readonly)
		return -EROFS;
	struct fs_inode *dir;
	struct fs_creds creds;
	int ret, dfd = -1;

	ret = fs_check_name(name);
	if (ret < 0)
		return ret;
	ret = dir_get(fs, parent, &dir);
	if (ret < 0)
		return ret;
	dfd = inode_fd_get(fs, dir); /* before creds_enter: see inode_fd_get */
	ret = dfd < 0 ? dfd : creds_enter_creator(fs, ctx, &creds);
	if (ret < 0)
		goto out;
	switch (kind) {
	case MAKE_NOD:
		ret = mknodat(dfd, name, mode, rdev);
		break;
	case MAKE_DIR:
		ret = mkdirat(dfd, name, mode);
		break;
	case MAKE_SYMLINK:
		ret = symlinkat(target, dfd, name);
		break;
	}
	if (ret < 0)
		ret = neg_errno();
	creds_leave(&creds);
	inode_fd_put(dir, dfd);
	dfd = -1;
	if (ret == 0)
		ret = label_new_name(fs, ctx, dir, name, kind == MAKE_DIR ? S_IFDIR : kind == MAKE_SYMLINK ? S_IFLNK :
		                     (mode & S_IFMT ? mode & S_IFMT : S_IFREG));
	if (ret == 0)
		ret = inode_open_name(fs, dir, name, e);
out:
	inode_fd_put(dir, dfd);
	inode_put(fs, dir);
	return ret;
}

int fs_mknod(struct fs *fs, const struct fs_ctx *ctx, uint64_t parent, const char *name, mode_t mode, dev_t rdev,
             struct fs_entry *e)
{
	if (S_ISDIR(mode) || S_ISLNK(mode))
		return -EINVAL;
	return make_node(fs, ctx, parent, name, MAKE_NOD, mode, rdev, NULL, e);
}

int fs_mkdir(struct fs *fs, const struct fs_ctx *ctx, uint64_t parent, const char *name, mode_t mode,
             struct fs_entry *e)
{
	return make_node(fs, ctx, parent, name, MAKE_DIR, mode & ~S_IFMT, 0, NULL, e);
}

int fs_symlink(struct fs *fs, const struct fs_ctx *ctx, uint64_t parent, const char *name, const char *target,
               struct fs_entry *e)
{
	if (!target || !target[0])
		return -ENOENT;
	return make_node(fs, ctx, parent, name, MAKE_SYMLINK, 0, 0, target, e);
}

int fs_link(struct fs *fs, const struct fs_ctx *ctx, uint64_t nodeid, uint64_t newparent, const char *newname,
            struct fs_entry *e)
{
	if (fs->cfg.readonly)
		return -EROFS;
	struct fs_inode *inode, *dir = NULL;
	struct fs_creds creds;
	char procname[16];
	int ret, fd = -1, dfd = -1;

	ret = fs_check_name(newname);
	if (ret < 0)
		return ret;
	ret = inode_get(fs, nodeid, &inode);
	if (ret < 0)
		return ret;
	ret = inode_get(fs, newparent, &dir);
	if (ret < 0)
		goto out;
	if (dir->type != S_IFDIR) {
		ret = -ENOTDIR;
		goto out;
	}
	if (inode->type == S_IFDIR) {
		ret = -EPERM;
		goto out;
	}
	fd = inode_fd_get(fs, inode);
	dfd = fd < 0 ? fd : inode_fd_get(fs, dir);
	/* Not as creator: the host's protected_hardlinks check must see the caller's own rights. */
	ret = dfd < 0 ? dfd : creds_enter(fs, ctx, &creds);
	if (ret < 0)
		goto out;
	/* linkat(fd, "", AT_EMPTY_PATH) needs CAP_DAC_READ_SEARCH, gone with a non-zero fsuid; the magic link in
	 * /proc/self/fd leads to the inode itself (a symlink too: it is not followed any further). */
	snprintf(procname, sizeof(procname), "%d", fd);
	ret = linkat(fs->proc_fd, procname, dfd, newname, AT_SYMLINK_FOLLOW);
	if (ret < 0)
		ret = neg_errno();
	creds_leave(&creds);
	if (ret == 0) {
		ret = inode_fill_entry(fs, inode, e);
		if (ret == 0)
			inode_add_lookup(fs, inode);
	}
out:
	if (dir)
		inode_fd_put(dir, dfd);
	inode_fd_put(inode, fd);
	inode_put(fs, dir);
	inode_put(fs, inode);
	return ret;
}

static int remove_name(struct fs *fs, uint64_t parent, const char *name, int flags)
{
	if (fs->cfg.readonly)
		return -EROFS;
	struct fs_inode *dir;
	int ret = fs_check_name(name);

	if (ret < 0)
		return ret;
	ret = inode_get(fs, parent, &dir);
	if (ret < 0)
		return ret;
	if (dir->type != S_IFDIR) {
		ret = -ENOTDIR;
	} else {
		int dfd = inode_fd_get(fs, dir);
		ret = dfd < 0 ? dfd : unlinkat(dfd, name, flags) < 0 ? neg_errno() : 0;
		inode_fd_put(dir, dfd);
	}
	inode_put(fs, dir);
	return ret;
}

int fs_unlink(struct fs *fs, const struct fs_ctx *ctx, uint64_t parent, const char *name)
{
	(void)ctx;
	return remove_name(fs, parent, name, 0);
}

int fs_rmdir(struct fs *fs, const struct fs_ctx *ctx, uint64_t parent, const char *name)
{
	(void)ctx;
	return remove_name(fs, parent, name, AT_REMOVEDIR);
}

static int rename_at(struct fs *fs, struct fs_inode *olddir, const char *name, struct fs_inode *newdir,
                     const char *newname, unsigned flags)
{
	int ofd = inode_fd_get(fs, olddir), nfd = ofd < 0 ? ofd : inode_fd_get(fs, newdir), ret = nfd;

	if (nfd >= 0)
		ret = renameat2(ofd, name, nfd, newname, flags) < 0 ? neg_errno() : 0;
	if (nfd >= 0)
		inode_fd_put(newdir, nfd);
	inode_fd_put(olddir, ofd);
	return ret;
}

int fs_rename(struct fs *fs, const struct fs_ctx *ctx, uint64_t parent, const char *name, uint64_t newparent,
              const char *newname, unsigned flags)
{
	if (fs->cfg.readonly)
		return -EROFS;
	struct fs_inode *olddir, *newdir = NULL;
	int ret;

	(void)ctx;
	if (flags & ~(unsigned)(RENAME_NOREPLACE | RENAME_EXCHANGE | RENAME_WHITEOUT))
		return -EINVAL;
	ret = fs_check_name(name);
	if (ret == 0)
		ret = fs_check_name(newname);
	if (ret < 0)
		return ret;
	ret = inode_get(fs, parent, &olddir);
	if (ret < 0)
		return ret;
	ret = inode_get(fs, newparent, &newdir);
	if (ret < 0)
		goto out;
	if (olddir->type != S_IFDIR || newdir->type != S_IFDIR)
		ret = -ENOTDIR;
	else
		ret = rename_at(fs, olddir, name, newdir, newname, flags);
out:
	inode_put(fs, newdir);
	inode_put(fs, olddir);
	return ret;
}

ssize_t fs_readlink(struct fs *fs, uint64_t nodeid, char *buf, size_t size)
{
	struct fs_inode *inode;
	ssize_t n;
	int ret = inode_get(fs, nodeid, &inode);

	if (ret < 0)
		return ret;
	if (inode->type != S_IFLNK) {
		n = -EINVAL;
	} else {
		int fd = inode_fd_get(fs, inode);
		n = fd < 0 ? fd : readlinkat(fd, "", buf, size);
		if (n < 0 && fd >= 0)
			n = neg_errno();
		inode_fd_put(inode, fd);
	}
	inode_put(fs, inode);
	return n;
}

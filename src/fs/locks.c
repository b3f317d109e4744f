/*
 * POSIX record locks and flock.
 *
 * Each (inode, guest lock owner) pair gets its own open file description, opened through /proc/self/fd, and the
 * owner's locks are open file description locks (F_OFD_*) on it: so two guest owners conflict with each other the
 * way two processes do, and one owner's locks merge and split as a process's would. FLUSH or RELEASE from an
 * owner closes its description, which drops its locks (a close(2) in the guest drops that process's locks on
 * the file). The kernel reports l_pid -1 for OFD locks; the guest pid each owner gave in its last SETLK is kept
 * so GETLK can name the holder when it is one of our owners.
 *
 * inode->lock_mu guards the owner list; a blocking F_OFD_SETLKW runs on a duplicate of the owner's fd with the
 * mutex released (the duplicate keeps the description alive even if the owner is dropped meanwhile).
 */
#include "fs/fs_internal.h"

#include "common/log.h"
#include "common/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/file.h>
#include <unistd.h>

struct fs_lock_owner {
	struct fs_lock_owner *next;
	uint64_t owner;
	int fd;
	pid_t pid;                /* as the guest gave it */
	uint64_t fh;              /* the handle it last locked through */
	uint64_t *count;          /* fs->lock_fds */
};

static void owner_free(struct fs_lock_owner *o)
{
	close(o->fd);
	__atomic_sub_fetch(o->count, 1, __ATOMIC_RELAXED);
	free(o);
}

void locks_free_inode(struct fs_inode *inode)
{
	struct fs_lock_owner *o = inode->owners, *next;
	for (; o; o = next) {
		next = o->next;
		owner_free(o);
	}
	inode->owners = NULL;
}

/* Unlinks from inode's list every owner for which match() holds, then frees them outside the mutex. */
static void drop_matching(struct fs_inode *inode, bool (*match)(const struct fs_lock_owner *, uint64_t),
                          uint64_t key)
{
	struct fs_lock_owner **p = &inode->owners, *dropped = NULL;

	pthread_mutex_lock(&inode->lock_mu);
	while (*p) {
		struct fs_lock_owner *o = *p;
		if (match(o, key)) {
			*p = o->next;
			o->next = dropped;
			dropped = o;
		} else {
			p = &o->next;
		}
	}
	pthread_mutex_unlock(&inode->lock_mu);
	while (dropped) {
		struct fs_lock_owner *next = dropped->next;
		owner_free(dropped);
		dropped = next;
	}
}

static bool any_owner(const struct fs_lock_owner *o, uint64_t unused)
{
	(void)o;
	(void)unused;
	return true;
}

void locks_drop_all(struct fs_inode *inode)
{
	drop_matching(inode, any_owner, 0);
}

static bool owner_is(const struct fs_lock_owner *o, uint64_t lock_owner)
{
	return o->owner == lock_owner;
}

static bool locked_through(const struct fs_lock_owner *o, uint64_t fh)
{
	return o->fh == fh;
}

void locks_drop_owner(struct fs_inode *inode, uint64_t lock_owner)
{
	drop_matching(inode, owner_is, lock_owner);
}

/*
 * RELEASE of a handle: an owner that locked through it and was never flushed is an open file description
 * lock's owner (the kernel flushes POSIX owners at every close, but names OFD owners in no request), and
 * the description is gone now, so are its locks.
 */
void locks_drop_handle(struct fs_inode *inode, uint64_t fh)
{
	drop_matching(inode, locked_through, fh);
}

/* inode_reopen; for a regular file whose open would wait for a lease break (ours: its mappings become copies
 * first), waits rather than fail with EWOULDBLOCK. */
static int reopen_waiting(struct fs *fs, struct fs_inode *inode, int flags)
{
	int fd = inode_reopen(fs, inode, flags);
	if (fd == -EWOULDBLOCK && inode->type == S_IFREG)
		fd = inode_reopen(fs, inode, flags & ~O_NONBLOCK);
	return fd;
}

/* An fd on its own open file description, readable and writable if at all possible. */
static int open_lock_fd(struct fs *fs, struct fs_inode *inode)
{
	int fd;

	if (inode->type == S_IFDIR)
		return inode_reopen(fs, inode, O_RDONLY | O_DIRECTORY);
	fd = reopen_waiting(fs, inode, O_RDWR | O_NONBLOCK);
	if (fd < 0)
		fd = reopen_waiting(fs, inode, O_RDONLY | O_NONBLOCK);
	if (fd < 0)
		fd = reopen_waiting(fs, inode, O_WRONLY | O_NONBLOCK);
	return fd;
}

/*
 * flock() locks belong to an open file description, and a shared handle's is every other shared handle's too: it
 * gets one of its own on first use (a reader's description, so a lease break leaves the inode's mappings shared).
 */
int handle_flock_fd_open(struct fs *fs, struct fs_handle *h)
{
	int fd = handle_flock_fd(h), mine, none = -1;

	if (fd >= 0)
		return fd;
	mine = reopen_waiting(fs, h->inode, O_RDONLY | O_NONBLOCK);
	if (mine < 0)
		return mine;
	if (!__atomic_compare_exchange_n(&h->flock_fd, &none, mine, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
		close(mine); /* another request of this handle was first */
		return none;
	}
	return mine;
}

int handle_flock_fd(struct fs_handle *h)
{
	return h->shared ? __atomic_load_n(&h->flock_fd, __ATOMIC_ACQUIRE) : h->fd;
}

/* lock_mu held. */
static struct fs_lock_owner *find_owner(struct fs_inode *inode, uint64_t lock_owner)
{
	struct fs_lock_owner *o = inode->owners;
	while (o && o->owner != lock_owner)
		o = o->next;
	return o;
}

/* The inode to lock, through a handle open on it: a guest names both, and a handle of another file (or none)
 * would let it lock files it never opened. */
static int lock_inode(struct fs *fs, uint64_t nodeid, uint64_t fh, struct fs_inode **inode)
{
	struct fs_handle *h;
	int ret;

	if (!fs->cfg.posix_lock)
		return -ENOSYS;
	ret = inode_get(fs, nodeid, inode);
	if (ret < 0)
		return ret;
	if ((*inode)->type != S_IFREG && (*inode)->type != S_IFDIR)
		ret = -EINVAL;
	else if ((ret = handle_get(fs, fh, &h)) == 0) {
		if (h->inode != *inode)
			ret = -EBADF;
		handle_put(fs, h);
	}
	if (ret < 0)
		inode_put(fs, *inode);
	return ret;
}

static bool valid_type(short type)
{
	return type == F_RDLCK || type == F_WRLCK || type == F_UNLCK;
}

int fs_getlk(struct fs *fs, uint64_t nodeid, uint64_t fh, uint64_t lock_owner, struct flock *lk)
{
	struct fs_inode *inode;
	struct fs_lock_owner *me;
	struct flock fl = *lk;
	int fd, ret;

	(void)fh;
	if (!valid_type(lk->l_type) || lk->l_type == F_UNLCK)
		return -EINVAL;
	ret = lock_inode(fs, nodeid, fh, &inode);
	if (ret < 0)
		return ret;
	pthread_mutex_lock(&inode->lock_mu);
	me = find_owner(inode, lock_owner);
	/* An owner without a description holds no locks: a fresh description asks the same question. */
	fd = me ? me->fd : open_lock_fd(fs, inode);
	if (fd < 0) {
		ret = fd;
		goto out;
	}
	fl.l_pid = 0;
	if (fcntl(fd, F_OFD_GETLK, &fl) < 0) {
		ret = neg_errno();
		goto out;
	}
	if (fl.l_type != F_UNLCK) {
		/* Which of our owners holds it? One whose own view of the range shows no such conflict. */
		pid_t pid = 0;
		for (struct fs_lock_owner *o = inode->owners; o; o = o->next) {
			struct flock q = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = fl.l_start, .l_len = fl.l_len };
			if (o == me || fcntl(o->fd, F_OFD_GETLK, &q) < 0)
				continue;
			if (q.l_type == F_UNLCK || q.l_type != fl.l_type || q.l_start != fl.l_start || q.l_len != fl.l_len) {
				pid = o->pid;
				break;
			}
		}
		fl.l_pid = pid;
	}
	*lk = fl;
out:
	pthread_mutex_unlock(&inode->lock_mu);
	if (!me && fd >= 0)
		close(fd);
	inode_put(fs, inode);
	return ret;
}

int fs_setlk(struct fs *fs, uint64_t nodeid, uint64_t fh, uint64_t lock_owner, const struct flock *lk, bool sleep)
{
	struct fs_inode *inode;
	struct fs_lock_owner *o;
	struct flock fl = *lk;
	int fd = -1, ret;

	if (!valid_type(lk->l_type))
		return -EINVAL;
	ret = lock_inode(fs, nodeid, fh, &inode);
	if (ret < 0)
		return ret;
	pthread_mutex_lock(&inode->lock_mu);
	o = find_owner(inode, lock_owner);
	if (!o && lk->l_type == F_UNLCK) {
		pthread_mutex_unlock(&inode->lock_mu);
		goto out; /* holds nothing: nothing to unlock */
	}
	if (!o) {
		/* Every owner costs an fd: a guest inventing owners is bounded like one opening files. */
		if (__atomic_add_fetch(&fs->lock_fds, 1, __ATOMIC_RELAXED) > fs->cfg.max_handles) {
			__atomic_sub_fetch(&fs->lock_fds, 1, __ATOMIC_RELAXED);
			pthread_mutex_unlock(&inode->lock_mu);
			ret = -ENOLCK;
			goto out;
		}
		o = calloc(1, sizeof(*o));
		fd = o ? open_lock_fd(fs, inode) : -ENOMEM;
		if (fd < 0) {
			__atomic_sub_fetch(&fs->lock_fds, 1, __ATOMIC_RELAXED);
			pthread_mutex_unlock(&inode->lock_mu);
			free(o);
			ret = fd;
			goto out;
		}
		o->owner = lock_owner;
		o->fd = fd;
		o->count = &fs->lock_fds;
		o->next = inode->owners;
		inode->owners = o;
	}
	if (lk->l_type != F_UNLCK)
		o->pid = lk->l_pid;
	o->fh = fh;
	fd = fcntl(o->fd, F_DUPFD_CLOEXEC, 0);
	pthread_mutex_unlock(&inode->lock_mu);
	if (fd < 0) {
		ret = neg_errno();
		goto out;
	}
	fl.l_pid = 0;
	if (fcntl(fd, sleep ? F_OFD_SETLKW : F_OFD_SETLK, &fl) < 0)
		ret = neg_errno();
	close(fd);
out:
	inode_put(fs, inode);
	return ret;
}

int fs_flock(struct fs *fs, uint64_t nodeid, uint64_t fh, int op)
{
	struct fs_handle *h;
	int ret;

	(void)nodeid;
	if (!fs->cfg.flock)
		return -ENOSYS;
	if ((op & ~LOCK_NB) != LOCK_SH && (op & ~LOCK_NB) != LOCK_EX && (op & ~LOCK_NB) != LOCK_UN)
		return -EINVAL;
	ret = handle_get(fs, fh, &h);
	if (ret < 0)
		return ret;
	int fd = handle_flock_fd_open(fs, h);
	if (fd < 0)
		ret = fd;
	else if (flock(fd, op) < 0)
		ret = neg_errno();
	handle_put(fs, h);
	return ret;
}

/* The inode table: host identity -> node id, lookup counts, in-flight references. Lock story: fs_internal.h. */
#include "fs/fs_internal.h"

#include "common/log.h"
#include "common/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#define ROOT_SLOT 1u
#define INITIAL_SLOTS 64u
#define INITIAL_BUCKETS 64u

static size_t hash_ident(dev_t dev, ino_t ino, uint64_t mnt_id)
{
	uint64_t h = (uint64_t)ino * 0x9e3779b97f4a7c15ull;
	h ^= ((uint64_t)dev + 0x632be59bd9b4e019ull) * 0xc2b2ae3d27d4eb4full;
	h ^= (mnt_id + 0x165667b19e3779f9ull) * 0x94d049bb133111ebull;
	h ^= h >> 31;
	return (size_t)h;
}

int itab_init(struct inode_table *t, uint64_t max)
{
	memset(t, 0, sizeof(*t));
	t->slots = calloc(INITIAL_SLOTS, sizeof(*t->slots));
	t->buckets = calloc(INITIAL_BUCKETS, sizeof(*t->buckets));
	if (!t->slots || !t->buckets) {
		free(t->slots);
		free(t->buckets);
		return -ENOMEM;
	}
	t->nslots = INITIAL_SLOTS;
	t->nbuckets = INITIAL_BUCKETS;
	t->high = ROOT_SLOT + 1;
	t->max = max;
	pthread_mutex_init(&t->mu, NULL);
	return 0;
}

static void inode_destroy(struct fs_inode *inode)
{
	locks_free_inode(inode);
	close_if_open(&inode->fd);
	fhandle_detach(inode);
	close_if_open(&inode->dax_fd);
	pthread_mutex_destroy(&inode->lock_mu);
	free(inode);
}

void itab_destroy(struct inode_table *t)
{
	for (uint32_t i = 1; i < t->high; i++) {
		if (t->slots[i].inode)
			inode_destroy(t->slots[i].inode);
	}
	free(t->slots);
	free(t->buckets);
	pthread_mutex_destroy(&t->mu);
	memset(t, 0, sizeof(*t));
}

uint64_t inode_nodeid(const struct fs_inode *inode)
{
	return (uint64_t)inode->gen << 32 | inode->slot;
}

/* mu held. */
static struct fs_inode *hash_find(struct inode_table *t, dev_t dev, ino_t ino, uint64_t mnt_id)
{
	struct fs_inode *i = t->buckets[hash_ident(dev, ino, mnt_id) & (t->nbuckets - 1)];
	while (i && !(i->ino == ino && i->dev == dev && i->mnt_id == mnt_id))
		i = i->hash_next;
	return i;
}

/* mu held. Growing is best effort: a table with long chains still works. */
static void hash_insert(struct inode_table *t, struct fs_inode *inode)
{
	if (t->count >= t->nbuckets && t->nbuckets < ((size_t)1 << 40)) {
		size_t n = t->nbuckets * 2;
		struct fs_inode **b = calloc(n, sizeof(*b));
		if (b) {
			for (size_t k = 0; k < t->nbuckets; k++) {
				struct fs_inode *i = t->buckets[k], *next;
				for (; i; i = next) {
					next = i->hash_next;
					size_t h = hash_ident(i->dev, i->ino, i->mnt_id) & (n - 1);
					i->hash_next = b[h];
					b[h] = i;
				}
			}
			free(t->buckets);
			t->buckets = b;
			t->nbuckets = n;
		}
	}
	size_t h = hash_ident(inode->dev, inode->ino, inode->mnt_id) & (t->nbuckets - 1);
	inode->hash_next = t->buckets[h];
	t->buckets[h] = inode;
}

/* mu held. */
static void hash_remove(struct inode_table *t, struct fs_inode *inode)
{
	struct fs_inode **p = &t->buckets[hash_ident(inode->dev, inode->ino, inode->mnt_id) & (t->nbuckets - 1)];
	while (*p && *p != inode)
		p = &(*p)->hash_next;
	if (*p)
		*p = inode->hash_next;
	inode->hash_next = NULL;
}

/* mu held: room for slots [0, need). */
static int slots_grow(struct inode_table *t, uint32_t need)
{
	uint32_t n = t->nslots;
	while (n < need)
		n *= 2;
	if (n == t->nslots)
		return 0;
	struct inode_slot *s = realloc(t->slots, (size_t)n * sizeof(*s));
	if (!s)
		return -ENOMEM;
	memset(s + t->nslots, 0, (size_t)(n - t->nslots) * sizeof(*s));
	t->slots = s;
	t->nslots = n;
	return 0;
}

/* mu held. Returns a free slot index (its generation is slots[i].gen), or 0 when out of memory. */
static uint32_t slot_alloc(struct inode_table *t)
{
	if (t->free_head) {
		uint32_t i = t->free_head;
		t->free_head = t->slots[i].next_free;
		t->slots[i].next_free = 0;
		return i;
	}
	if (slots_grow(t, t->high + 1) < 0)
		return 0;
	return t->high++;
}

/* mu held: takes inode out of the table; the caller destroys it after dropping mu. */
static void unlink_inode(struct inode_table *t, struct fs_inode *inode)
{
	struct inode_slot *s = &t->slots[inode->slot];
	hash_remove(t, inode);
	s->inode = NULL;
	s->gen++;
	s->next_free = t->free_head;
	t->free_head = inode->slot;
	t->count--;
}

static struct fs_inode *inode_alloc(int fd, const struct stat *st, uint64_t mnt_id)
{
	struct fs_inode *inode = calloc(1, sizeof(*inode));
	if (!inode)
		return NULL;
	inode->fd = fd;
	inode->type = st->st_mode & S_IFMT;
	inode->dev = st->st_dev;
	inode->ino = st->st_ino;
	inode->mnt_id = mnt_id;
	inode->dax_fd = -1;
	pthread_mutex_init(&inode->lock_mu, NULL);
	return inode;
}

int itab_insert_root(struct fs *fs, int fd, const struct stat *st, uint64_t mnt_id)
{
	struct inode_table *t = &fs->itab;
	struct fs_inode *inode = inode_alloc(fd, st, mnt_id);
	if (!inode)
		return -ENOMEM;
	inode->slot = ROOT_SLOT;
	inode->gen = 0;
	inode->refs = 1; /* permanent: dropped by fs_free only */
	pthread_mutex_lock(&t->mu);
	t->slots[ROOT_SLOT].inode = inode;
	t->slots[ROOT_SLOT].gen = 0;
	hash_insert(t, inode);
	t->count++;
	pthread_mutex_unlock(&t->mu);
	fs->root = inode;
	return 0;
}

int inode_get(struct fs *fs, uint64_t nodeid, struct fs_inode **out)
{
	struct inode_table *t = &fs->itab;
	uint32_t slot = (uint32_t)nodeid, gen = (uint32_t)(nodeid >> 32);
	int ret = -ESTALE;

	pthread_mutex_lock(&t->mu);
	if (slot != 0 && slot < t->high && t->slots[slot].inode && t->slots[slot].gen == gen) {
		*out = t->slots[slot].inode;
		(*out)->refs++;
		ret = 0;
	}
	pthread_mutex_unlock(&t->mu);
	return ret;
}

void inode_ref(struct fs *fs, struct fs_inode *inode)
{
	pthread_mutex_lock(&fs->itab.mu);
	inode->refs++;
	pthread_mutex_unlock(&fs->itab.mu);
}

void inode_put(struct fs *fs, struct fs_inode *inode)
{
	struct inode_table *t = &fs->itab;
	bool dead = false;

	if (!inode)
		return;
	pthread_mutex_lock(&t->mu);
	if (inode->refs == 0) {
		log_err("fs: inode %u put with no reference", inode->slot);
	} else if (--inode->refs == 0 && inode->nlookup == 0) {
		unlink_inode(t, inode);
		dead = true;
	}
	pthread_mutex_unlock(&t->mu);
	if (dead)
		inode_destroy(inode);
}

void inode_add_lookup(struct fs *fs, struct fs_inode *inode)
{
	pthread_mutex_lock(&fs->itab.mu);
	inode->nlookup++;
	pthread_mutex_unlock(&fs->itab.mu);
}

void inode_forget(struct fs *fs, uint64_t nodeid, uint64_t n)
{
	struct inode_table *t = &fs->itab;
	uint32_t slot = (uint32_t)nodeid, gen = (uint32_t)(nodeid >> 32);
	struct fs_inode *inode = NULL;
	bool dead = false;

	pthread_mutex_lock(&t->mu);
	if (slot != 0 && slot < t->high && t->slots[slot].inode && t->slots[slot].gen == gen) {
		inode = t->slots[slot].inode;
		if (n > inode->nlookup) {
			log_debug("fs: forget %llu of node %#llx with %llu lookups", (unsigned long long)n,
			          (unsigned long long)nodeid, (unsigned long long)inode->nlookup);
			n = inode->nlookup;
		}
		inode->nlookup -= n;
		if (inode->nlookup == 0 && inode->refs == 0) {
			unlink_inode(t, inode);
			dead = true;
		}
	}
	pthread_mutex_unlock(&t->mu);
	if (!inode)
		log_debug("fs: forget of stale node %#llx", (unsigned long long)nodeid);
	if (dead)
		inode_destroy(inode);
}

int inode_register(struct fs *fs, int opath_fd, const struct stat *st, uint64_t mnt_id, struct fs_inode **ref)
{
	struct inode_table *t = &fs->itab;
	struct fs_inode *fresh = inode_alloc(opath_fd, st, mnt_id), *inode;
	int ret = 0;

	if (!fresh) {
		close(opath_fd);
		return -ENOMEM;
	}
	ret = fhandle_attach(fs, fresh);
	if (ret < 0) {
		inode_destroy(fresh);
		return ret;
	}
	pthread_mutex_lock(&t->mu);
	inode = hash_find(t, st->st_dev, st->st_ino, mnt_id);
	if (inode && inode->fh && fresh->fh && !fhandle_equal(inode->fh, fresh->fh)) {
		/* Nothing pinned the old file: it is gone and its inode number is another file's now. The guest's node
		 * of it stays (ESTALE) but no longer answers for the identity. */
		hash_remove(t, inode);
		inode = NULL;
	}
	if (inode) {
		if ((st->st_mode & S_IFMT) != inode->type)
			log_warn("fs: inode %llu changed type under us", (unsigned long long)st->st_ino);
	} else if (t->count >= t->max) {
		ret = -ENFILE;
	} else {
		uint32_t slot = slot_alloc(t);
		if (!slot) {
			ret = -ENOMEM;
		} else {
			inode = fresh;
			fresh = NULL;
			inode->slot = slot;
			inode->gen = t->slots[slot].gen;
			t->slots[slot].inode = inode;
			hash_insert(t, inode);
			t->count++;
		}
	}
	if (inode) {
		inode->nlookup++;
		if (ref) {
			inode->refs++;
			*ref = inode;
		}
	}
	pthread_mutex_unlock(&t->mu);
	if (fresh)
		inode_destroy(fresh); /* closes opath_fd */
	return ret;
}

static void stat_of_statx(const struct statx *sx, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_dev = makedev(sx->stx_dev_major, sx->stx_dev_minor);
	st->st_ino = sx->stx_ino;
	st->st_mode = sx->stx_mode;
	st->st_nlink = sx->stx_nlink;
	st->st_uid = sx->stx_uid;
	st->st_gid = sx->stx_gid;
	st->st_rdev = makedev(sx->stx_rdev_major, sx->stx_rdev_minor);
	st->st_size = (off_t)sx->stx_size;
	st->st_blksize = sx->stx_blksize;
	st->st_blocks = (blkcnt_t)sx->stx_blocks;
	st->st_atim.tv_sec = sx->stx_atime.tv_sec;
	st->st_atim.tv_nsec = sx->stx_atime.tv_nsec;
	st->st_mtim.tv_sec = sx->stx_mtime.tv_sec;
	st->st_mtim.tv_nsec = sx->stx_mtime.tv_nsec;
	st->st_ctim.tv_sec = sx->stx_ctime.tv_sec;
	st->st_ctim.tv_nsec = sx->stx_ctime.tv_nsec;
}

static int statx_into(int dirfd, const char *path, int flags, unsigned mask, struct stat *st, struct statx *sx)
{
	if (statx(dirfd, path, flags | AT_STATX_SYNC_AS_STAT, STATX_BASIC_STATS | mask, sx) < 0)
		return neg_errno();
	stat_of_statx(sx, st);
	return 0;
}

int fs_statx_btime(int dirfd, const char *path, int flags, struct stat *st, struct fs_btime *bt)
{
	struct statx sx;
	int ret = statx_into(dirfd, path, flags, STATX_BTIME, st, &sx);
	if (ret < 0)
		return ret;
	bt->valid = (sx.stx_mask & STATX_BTIME) != 0;
	bt->time = bt->valid ? (struct timespec){ sx.stx_btime.tv_sec, sx.stx_btime.tv_nsec } : (struct timespec){ 0 };
	return 0;
}

int fs_statx(int dirfd, const char *path, int flags, struct stat *st, uint64_t *mnt_id)
{
	struct statx sx;
	int ret = statx_into(dirfd, path, flags, STATX_MNT_ID, st, &sx);
	if (ret < 0)
		return ret;
	if (mnt_id)
		*mnt_id = (sx.stx_mask & STATX_MNT_ID) ? sx.stx_mnt_id : 0;
	return 0;
}

/* Whether the entry st (on mount mnt_id) found in parent is the root of another mount or file system (a btrfs
 * subvolume changes st_dev without a mount), as virtiofsd decides it. Only directories: the guest mounts no
 * other kind. */
static bool is_submount(const struct fs_inode *parent, const struct stat *st, uint64_t mnt_id)
{
	return S_ISDIR(st->st_mode) && (mnt_id != parent->mnt_id || st->st_dev != parent->dev);
}

/* A reference to the inode the table holds for (st, mnt_id), if it has that type. */
static struct fs_inode *known_inode(struct fs *fs, const struct stat *st, uint64_t mnt_id)
{
	struct inode_table *t = &fs->itab;
	struct fs_inode *inode;

	pthread_mutex_lock(&t->mu);
	inode = hash_find(t, st->st_dev, st->st_ino, mnt_id);
	if (inode && inode->type == (st->st_mode & S_IFMT))
		inode->refs++;
	else
		inode = NULL;
	pthread_mutex_unlock(&t->mu);
	return inode;
}

/* A handle-based inode is the file at dirfd/name only if their handles agree: nothing kept its inode number from
 * going to another file. */
static bool still_same_file(int dirfd, const char *name, const struct fs_inode *inode)
{
	struct fs_handle_buf buf;
	return !inode->fh || (fhandle_take(dirfd, name, 0, &buf) == 0 && fhandle_equal(&buf.fh, inode->fh));
}

/*
 * A name that leads to an inode the table already holds is answered from one statx of the name (and for an inode
 * kept by handle, one name_to_handle_at): the table keeps an fd open on that inode, so its (dev, ino, mount) cannot
 * have been reused for another file, or its handle tells. Opening it again would only cost an openat and a close.
 * Returns 1 when answered so, 0 when the inode is not known (a new inode then costs this statx on top of
 * inode_open_name's), or a negative errno from the statx.
 */
static int lookup_known(struct fs *fs, struct fs_inode *parent, int pfd, const char *name, struct fs_entry *e)
{
	struct fs_inode *inode = NULL;
	struct stat st;
	uint64_t mnt_id;
	int ret = fs_statx(pfd, name, AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT, &st, &mnt_id);
	if (ret == 0)
		inode = known_inode(fs, &st, mnt_id);
	if (inode && !still_same_file(pfd, name, inode)) {
		inode_put(fs, inode);
		inode = NULL;
	}
	if (!inode)
		return ret;
	inode_add_lookup(fs, inode);
	e->nodeid = inode_nodeid(inode);
	e->generation = inode->gen;
	e->st = st;
	e->submount = is_submount(parent, &st, mnt_id);
	/* The reply tells the guest the size: the window must show the file up to it first. */
	if (__atomic_load_n(&inode->dax_ranges, __ATOMIC_ACQUIRE))
		dax_sync_after(fs, inode);
	inode_put(fs, inode);
	return 1;
}

static int open_name_at(struct fs *fs, struct fs_inode *parent, int pfd, const char *name, struct fs_entry *e)
{
	struct fs_inode *inode;
	struct stat st;
	uint64_t mnt_id;
	int fd, ret;

	fd = openat(pfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return neg_errno();
	ret = fs_statx(fd, "", AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW, &st, &mnt_id);
	if (ret < 0) {
		close(fd);
		return ret;
	}
	ret = inode_register(fs, fd, &st, mnt_id, &inode);
	if (ret < 0)
		return ret;
	e->nodeid = inode_nodeid(inode);
	e->generation = inode->gen;
	e->st = st;
	e->submount = is_submount(parent, &st, mnt_id);
	inode_put(fs, inode);
	return 0;
}

int inode_lookup_name_at(struct fs *fs, struct fs_inode *parent, int pfd, const char *name, struct fs_entry *e)
{
	int ret = lookup_known(fs, parent, pfd, name, e);

	if (ret != 0)
		return ret < 0 ? ret : 0;
	return open_name_at(fs, parent, pfd, name, e);
}

typedef int (*name_step_fn)(struct fs *fs, struct fs_inode *parent, int pfd, const char *name, struct fs_entry *e);

/* Runs step with the parent's fd, opened once (by handle under --inode-file-handles) for all it does. */
static int with_parent_fd(struct fs *fs, struct fs_inode *parent, const char *name, struct fs_entry *e,
                          name_step_fn step)
{
	int pfd = inode_fd_get(fs, parent);
	if (pfd < 0)
		return pfd;
	int ret = step(fs, parent, pfd, name, e);
	inode_fd_put(parent, pfd);
	return ret;
}

int inode_lookup_name(struct fs *fs, struct fs_inode *parent, const char *name, struct fs_entry *e)
{
	return with_parent_fd(fs, parent, name, e, inode_lookup_name_at);
}

int inode_open_name(struct fs *fs, struct fs_inode *parent, const char *name, struct fs_entry *e)
{
	return with_parent_fd(fs, parent, name, e, open_name_at);
}

int inode_fill_entry(struct fs *fs, struct fs_inode *inode, struct fs_entry *e)
{
	int fd = inode_fd_get(fs, inode), ret = fd;
	if (fd >= 0)
		ret = fs_statx(fd, "", AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW, &e->st, NULL);
	inode_fd_put(inode, fd);
	if (ret < 0)
		return ret;
	e->nodeid = inode_nodeid(inode);
	e->generation = inode->gen;
	e->submount = false;
	return 0;
}

int fd_reopen(struct fs *fs, int opath, int flags)
{
	char name[16];
	int fd;

	snprintf(name, sizeof(name), "%d", opath);
	fd = openat(fs->proc_fd, name, (flags & ~O_NOFOLLOW) | O_CLOEXEC);
	return fd < 0 ? neg_errno() : fd;
}

int inode_reopen(struct fs *fs, const struct fs_inode *inode, int flags)
{
	return inode->fd >= 0 ? fd_reopen(fs, inode->fd, flags) : fhandle_open(inode, flags);
}

/*
 * Inodes still referenced when the session ends are in use by requests still running: a lock wait (SETLKW) that
 * began before DESTROY, most likely. They live on until those requests end, but the session's locks must not:
 * every owner's locks on them are dropped now, so host processes (and the waits) see the files unlocked.
 */
static void drop_locks_in_use(struct fs *fs)
{
	struct inode_table *t = &fs->itab;
	for (uint32_t i = 1;; i++) {
		pthread_mutex_lock(&t->mu);
		if (i >= t->high) {
			pthread_mutex_unlock(&t->mu);
			return;
		}
		struct fs_inode *inode = t->slots[i].inode;
		if (inode)
			inode->refs++;
		pthread_mutex_unlock(&t->mu);
		if (inode) {
			locks_drop_all(inode);
			inode_put(fs, inode);
		}
	}
}

void itab_reset(struct fs *fs)
{
	struct inode_table *t = &fs->itab;
	struct fs_inode *dead = NULL;

	pthread_mutex_lock(&t->mu);
	for (uint32_t i = 1; i < t->high; i++) {
		struct fs_inode *inode = t->slots[i].inode;
		if (t->slots[i].lost) {
			/* A new session: the node ids a migration could not bring are nobody's any more. */
			t->slots[i] = (struct inode_slot){ .gen = t->slots[i].gen + 1, .next_free = t->free_head };
			t->free_head = i;
		}
		if (!inode)
			continue;
		inode->nlookup = 0;
		if (inode->refs == 0) {
			unlink_inode(t, inode);
			inode->hash_next = dead; /* reuse the link for the kill list */
			dead = inode;
		}
	}
	pthread_mutex_unlock(&t->mu);
	while (dead) {
		struct fs_inode *next = dead->hash_next;
		inode_destroy(dead);
		dead = next;
	}
	drop_locks_in_use(fs);
}

/* mu held: slot may take a migrated node (free, not the root, within the table's bound). */
static int slot_claimable(struct inode_table *t, uint32_t slot)
{
	/* A source's slots never pass its own bound (slots are reused before the table grows): nor may these, so
	 * a hostile slot number cannot make the table huge. */
	if (slot <= ROOT_SLOT || slot >= FS_MAX_TABLE_BOUND || slot > t->max + ROOT_SLOT)
		return -EINVAL;
	if (slot < t->high && (t->slots[slot].inode || t->slots[slot].lost))
		return -EEXIST;
	if (t->count >= t->max)
		return -ENFILE;
	int rc = slots_grow(t, slot + 1);
	if (rc == 0 && slot >= t->high)
		t->high = slot + 1;
	return rc;
}

int itab_place(struct fs *fs, uint32_t slot, uint32_t gen, int fd, const struct stat *st, uint64_t mnt_id,
               uint64_t nlookup, struct fs_inode **out)
{
	struct inode_table *t = &fs->itab;
	struct fs_inode *inode = inode_alloc(fd, st, mnt_id);
	if (!inode) {
		close(fd);
		return -ENOMEM;
	}
	int rc = fhandle_attach(fs, inode);
	if (rc < 0) {
		inode_destroy(inode);
		return rc;
	}
	pthread_mutex_lock(&t->mu);
	rc = slot_claimable(t, slot);
	if (rc == 0 && hash_find(t, st->st_dev, st->st_ino, mnt_id))
		rc = -EEXIST; /* two node ids for one file: the state is not one a source made */
	if (rc == 0) {
		inode->slot = slot;
		inode->gen = gen;
		inode->nlookup = nlookup;
		inode->refs = out ? 1 : 0;
		t->slots[slot] = (struct inode_slot){ .inode = inode, .gen = gen };
		hash_insert(t, inode);
		t->count++;
	}
	pthread_mutex_unlock(&t->mu);
	if (rc < 0)
		inode_destroy(inode);
	else if (out)
		*out = inode;
	return rc;
}

int itab_reserve(struct fs *fs, uint32_t slot, uint32_t gen)
{
	struct inode_table *t = &fs->itab;
	pthread_mutex_lock(&t->mu);
	int rc = slot_claimable(t, slot);
	if (rc == 0)
		t->slots[slot] = (struct inode_slot){ .gen = gen, .lost = true };
	pthread_mutex_unlock(&t->mu);
	return rc;
}

void itab_rebuild_free(struct fs *fs)
{
	struct inode_table *t = &fs->itab;
	pthread_mutex_lock(&t->mu);
	t->free_head = 0;
	for (uint32_t i = t->high; i-- > ROOT_SLOT + 1;) {
		if (t->slots[i].inode || t->slots[i].lost)
			continue;
		t->slots[i].next_free = t->free_head;
		t->free_head = i;
	}
	pthread_mutex_unlock(&t->mu);
}

int fs_check_name(const char *name)
{
	if (!name || !name[0])
		return -ENOENT;
	if (strchr(name, '/'))
		return -EINVAL;
	if (name[0] == '.' && (name[1] == 0 || (name[1] == '.' && name[2] == 0)))
		return -EINVAL;
	return 0;
}

void fs_counts(struct fs *fs, uint64_t *inodes, uint64_t *handles)
{
	if (inodes) {
		pthread_mutex_lock(&fs->itab.mu);
		*inodes = fs->itab.count;
		pthread_mutex_unlock(&fs->itab.mu);
	}
	if (handles) {
		pthread_mutex_lock(&fs->htab.mu);
		*handles = fs->htab.count;
		pthread_mutex_unlock(&fs->htab.mu);
	}
}

int dir_get(struct fs *fs, uint64_t nodeid, struct fs_inode **out)
{
	int ret = inode_get(fs, nodeid, out);
	if (ret == 0 && (*out)->type != S_IFDIR) {
		inode_put(fs, *out);
		ret = -ENOTDIR;
	}
	return ret;
}

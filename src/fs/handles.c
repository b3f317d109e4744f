/* The handle table: fh -> an fd opened for I/O plus a reference to its inode. Lock story: fs_internal.h. */
#include "fs/fs_internal.h"

#include "common/log.h"
#include "common/util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define INITIAL_HANDLES 64u

int htab_init(struct handle_table *t, uint64_t max)
{
	memset(t, 0, sizeof(*t));
	t->slots = calloc(INITIAL_HANDLES, sizeof(*t->slots));
	if (!t->slots)
		return -ENOMEM;
	t->nslots = INITIAL_HANDLES;
	for (uint32_t i = 0; i < t->nslots; i++)
		t->slots[i].gen = 1;
	t->max = max;
	pthread_mutex_init(&t->mu, NULL);
	return 0;
}

static void handle_destroy(struct fs *fs, struct fs_handle *h)
{
	if (h->is_dir)
		dir_handle_free(h);
	close_if_open(&h->fd);
	close_if_open(&h->flock_fd);
	if (h->shared)
		dax_share_put(fs, h->inode);
	inode_put(fs, h->inode);
	pthread_mutex_destroy(&h->dir_mu);
	free(h);
}

/* mu held: out of the table, and drops the table's reference. Returns true when the caller must destroy h. */
static bool unlink_handle(struct handle_table *t, struct fs_handle *h)
{
	struct handle_slot *s = &t->slots[h->idx];
	s->h = NULL;
	if (++s->gen == 0)
		s->gen = 1;
	s->next_free = t->free_head;
	t->free_head = h->idx + 1;
	t->count--;
	return --h->refs == 0;
}

void htab_reset(struct fs *fs)
{
	struct handle_table *t = &fs->htab;
	struct fs_handle *dead = NULL;

	/* Destroying a handle takes itab.mu (inode_put), which must not nest inside htab.mu: collect first. */
	pthread_mutex_lock(&t->mu);
	for (uint32_t i = 0; i < t->high; i++) {
		struct fs_handle *h = t->slots[i].h;
		if (t->slots[i].lost) {
			/* A new session: handles a migration could not bring are nobody's any more. */
			uint32_t gen = t->slots[i].gen + 1;
			t->slots[i] = (struct handle_slot){ .gen = gen ? gen : 1, .next_free = t->free_head };
			t->free_head = i + 1;
		}
		if (h && unlink_handle(t, h)) {
			h->kill_next = dead;
			dead = h;
		}
	}
	pthread_mutex_unlock(&t->mu);
	while (dead) {
		struct fs_handle *next = dead->kill_next;
		handle_destroy(fs, dead);
		dead = next;
	}
}

void htab_destroy(struct fs *fs)
{
	htab_reset(fs);
	free(fs->htab.slots);
	pthread_mutex_destroy(&fs->htab.mu);
	memset(&fs->htab, 0, sizeof(fs->htab));
}

/* mu held: room for slots [0, need); new slots start at generation 1 (fh 0 is never valid). */
static int slots_grow(struct handle_table *t, uint32_t need)
{
	uint32_t n = t->nslots;
	while (n < need)
		n *= 2;
	if (n == t->nslots)
		return 0;
	struct handle_slot *s = realloc(t->slots, (size_t)n * sizeof(*s));
	if (!s)
		return -ENOMEM;
	for (uint32_t i = t->nslots; i < n; i++)
		s[i] = (struct handle_slot){ .gen = 1 };
	t->slots = s;
	t->nslots = n;
	return 0;
}

static struct fs_handle *handle_alloc(int fd, int flags, struct fs_inode *inode, bool is_dir, bool shared)
{
	struct fs_handle *h = calloc(1, sizeof(*h));
	if (!h)
		return NULL;
	h->fd = fd;
	h->flock_fd = -1;
	h->flags = flags;
	h->inode = inode;
	h->is_dir = is_dir;
	h->shared = shared;
	h->refs = 1;
	pthread_mutex_init(&h->dir_mu, NULL);
	return h;
}

/* mu held: h takes slot h->idx, whose generation it gets. */
static uint64_t handle_install(struct handle_table *t, struct fs_handle *h)
{
	h->gen = t->slots[h->idx].gen;
	t->slots[h->idx].h = h;
	t->slots[h->idx].next_free = 0;
	t->count++;
	return (uint64_t)h->gen << 32 | h->idx;
}

int handle_new(struct fs *fs, int fd, int flags, struct fs_inode *inode, bool is_dir, bool shared, uint64_t *fh)
{
	struct handle_table *t = &fs->htab;
	struct fs_handle *h = handle_alloc(fd, flags, inode, is_dir, shared);
	int ret = 0;

	if (!h) {
		close(fd);
		if (shared)
			dax_share_put(fs, inode);
		inode_put(fs, inode);
		return -ENOMEM;
	}
	pthread_mutex_lock(&t->mu);
	if (t->count >= t->max) {
		ret = -EMFILE;
	} else if (t->free_head) {
		h->idx = t->free_head - 1;
		t->free_head = t->slots[h->idx].next_free;
	} else if ((ret = slots_grow(t, t->high + 1)) == 0) {
		h->idx = t->high++;
	}
	if (ret == 0)
		*fh = handle_install(t, h);
	pthread_mutex_unlock(&t->mu);
	if (ret < 0)
		handle_destroy(fs, h);
	return ret;
}

/* mu held: idx may take a migrated handle (free, within the bound; generation gen valid). */
static int slot_claimable(struct handle_table *t, uint32_t idx, uint32_t gen)
{
	if (idx >= FS_MAX_TABLE_BOUND || idx >= t->max || gen == 0) /* bounded as itab's slot_claimable */
		return -EINVAL;
	if (idx < t->high && (t->slots[idx].h || t->slots[idx].lost))
		return -EEXIST;
	if (t->count >= t->max)
		return -EMFILE;
	int rc = slots_grow(t, idx + 1);
	if (rc == 0 && idx >= t->high)
		t->high = idx + 1;
	return rc;
}

int htab_place(struct fs *fs, uint32_t idx, uint32_t gen, int fd, int flags, struct fs_inode *inode, bool is_dir)
{
	struct handle_table *t = &fs->htab;
	struct fs_handle *h = handle_alloc(fd, flags, inode, is_dir, false);
	if (!h) {
		close(fd);
		inode_put(fs, inode);
		return -ENOMEM;
	}
	pthread_mutex_lock(&t->mu);
	int rc = slot_claimable(t, idx, gen);
	if (rc == 0) {
		h->idx = idx;
		t->slots[idx].gen = gen;
		handle_install(t, h);
	}
	pthread_mutex_unlock(&t->mu);
	if (rc < 0)
		handle_destroy(fs, h);
	return rc;
}

int htab_reserve(struct fs *fs, uint32_t idx, uint32_t gen)
{
	struct handle_table *t = &fs->htab;
	pthread_mutex_lock(&t->mu);
	int rc = slot_claimable(t, idx, gen);
	if (rc == 0)
		t->slots[idx] = (struct handle_slot){ .gen = gen, .lost = true };
	pthread_mutex_unlock(&t->mu);
	return rc;
}

void htab_rebuild_free(struct fs *fs)
{
	struct handle_table *t = &fs->htab;
	pthread_mutex_lock(&t->mu);
	t->free_head = 0;
	for (uint32_t i = t->high; i-- > 0;) {
		if (t->slots[i].h || t->slots[i].lost)
			continue;
		t->slots[i].next_free = t->free_head;
		t->free_head = i + 1;
	}
	pthread_mutex_unlock(&t->mu);
}

/* mu held. */
static struct fs_handle *find(struct handle_table *t, uint64_t fh)
{
	uint32_t idx = (uint32_t)fh, gen = (uint32_t)(fh >> 32);
	if (fh == FS_NO_HANDLE || idx >= t->high || !t->slots[idx].h || t->slots[idx].gen != gen)
		return NULL;
	return t->slots[idx].h;
}

int handle_get(struct fs *fs, uint64_t fh, struct fs_handle **out)
{
	struct handle_table *t = &fs->htab;
	struct fs_handle *h;

	pthread_mutex_lock(&t->mu);
	h = find(t, fh);
	if (h)
		h->refs++;
	pthread_mutex_unlock(&t->mu);
	*out = h;
	return h ? 0 : -EBADF;
}

void handle_put(struct fs *fs, struct fs_handle *h)
{
	bool dead;

	if (!h)
		return;
	pthread_mutex_lock(&fs->htab.mu);
	dead = --h->refs == 0;
	pthread_mutex_unlock(&fs->htab.mu);
	if (dead)
		handle_destroy(fs, h);
}

int handle_remove(struct fs *fs, uint64_t fh, struct fs_handle **out)
{
	struct handle_table *t = &fs->htab;
	struct fs_handle *h;

	/* The caller gets an in-flight reference in place of the table's. */
	pthread_mutex_lock(&t->mu);
	h = find(t, fh);
	if (h) {
		h->refs++;
		unlink_handle(t, h);
	}
	pthread_mutex_unlock(&t->mu);
	*out = h;
	return h ? 0 : -EBADF;
}

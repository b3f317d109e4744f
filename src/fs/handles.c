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

int handle_new(struct fs *fs, int fd, int flags, struct fs_inode *inode, bool is_dir, uint64_t *fh)
{
	struct handle_table *t = &fs->htab;
	struct fs_handle *h = calloc(1, sizeof(*h));
	int ret = 0;

	if (!h) {
		close(fd);
		inode_put(fs, inode);
		return -ENOMEM;
	}
	h->fd = fd;
	h->flags = flags;
	h->inode = inode;
	h->is_dir = is_dir;
	h->refs = 1;
	pthread_mutex_init(&h->dir_mu, NULL);

	pthread_mutex_lock(&t->mu);
	if (t->count >= t->max) {
		ret = -EMFILE;
	} else if (t->free_head) {
		h->idx = t->free_head - 1;
		t->free_head = t->slots[h->idx].next_free;
	} else {
		if (t->high == t->nslots) {
			uint32_t n = t->nslots * 2;
			struct handle_slot *s = realloc(t->slots, (size_t)n * sizeof(*s));
			if (!s) {
				ret = -ENOMEM;
				goto out;
			}
			for (uint32_t i = t->nslots; i < n; i++)
				s[i] = (struct handle_slot){ .gen = 1 };
			t->slots = s;
			t->nslots = n;
		}
		h->idx = t->high++;
	}
	if (ret == 0) {
		h->gen = t->slots[h->idx].gen;
		t->slots[h->idx].h = h;
		t->slots[h->idx].next_free = 0;
		t->count++;
		*fh = (uint64_t)h->gen << 32 | h->idx;
	}
out:
	pthread_mutex_unlock(&t->mu);
	if (ret < 0)
		handle_destroy(fs, h);
	return ret;
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

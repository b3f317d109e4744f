#include "transport/shm_window.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#include "common/util.h"

#define PAGE 4096u

int shm_window_init(struct shm_window *w, uint64_t size)
{
	memset(w, 0, sizeof(*w));
	if (!size || size % PAGE || size > SIZE_MAX)
		return -EINVAL;
	/* Reserved, not backed: a load or store where nothing is mapped faults, as an unmapped DAX range should. */
	void *p = mmap(NULL, size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		return neg_errno();
	w->base = p;
	w->size = size;
	pthread_mutex_init(&w->lock, NULL);
	return 0;
}

void shm_window_destroy(struct shm_window *w)
{
	if (!w->base)
		return;
	munmap(w->base, w->size);
	pthread_mutex_destroy(&w->lock);
	w->base = NULL;
}

static bool overlaps(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	return a < b + blen && b < a + alen;
}

static int check_range(const struct shm_window *w, uint64_t off, uint64_t len)
{
	return len && !(off % PAGE) && !(len % PAGE) && range_within(off, len, w->size) ? 0 : -EINVAL;
}

int shm_window_map(struct shm_window *w, int fd, uint64_t fd_offset, uint64_t off, uint64_t len, bool writable)
{
	int rc = check_range(w, off, len);
	if (rc < 0 || fd < 0 || fd_offset % PAGE || fd_offset > (uint64_t)INT64_MAX - len)
		return -EINVAL;
	pthread_mutex_lock(&w->lock);
	for (unsigned i = 0; i < w->n && rc == 0; i++)
		if (overlaps(off, len, w->maps[i].off, w->maps[i].len))
			rc = -EBUSY; /* as QEMU: unmap first, also to change read to write */
	if (rc == 0 && w->n == SHM_WINDOW_MAX_MAPS)
		rc = -ENOSPC;
	if (rc == 0) {
		int prot = PROT_READ | (writable ? PROT_WRITE : 0);
		if (mmap(w->base + off, len, prot, MAP_SHARED | MAP_FIXED, fd, (off_t)fd_offset) == MAP_FAILED)
			rc = neg_errno();
		else
			w->maps[w->n++] = (typeof(w->maps[0])){ off, len };
	}
	pthread_mutex_unlock(&w->lock);
	return rc;
}

int shm_window_unmap(struct shm_window *w, uint64_t off, uint64_t len)
{
	int rc = -ENOENT;
	if (check_range(w, off, len) < 0)
		return -EINVAL;
	pthread_mutex_lock(&w->lock);
	for (unsigned i = 0; i < w->n; i++) {
		if (w->maps[i].off == off && w->maps[i].len == len) {
			/* Back to a reserved hole, never to whatever else the address space would put there. */
			if (mmap(w->base + off, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1,
			         0) == MAP_FAILED) {
				rc = neg_errno();
				break;
			}
			w->maps[i] = w->maps[--w->n];
			rc = 0;
			break;
		}
	}
	pthread_mutex_unlock(&w->lock);
	return rc;
}

void shm_window_clear(struct shm_window *w)
{
	if (!w->base)
		return;
	pthread_mutex_lock(&w->lock);
	/* One reserved hole over the whole window: cannot fail short of the address space being exhausted. */
	if (mmap(w->base, w->size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0) != MAP_FAILED)
		w->n = 0;
	pthread_mutex_unlock(&w->lock);
}

static uint64_t services_size(void *ctx, uint8_t shmid)
{
	struct shm_window *w = ctx;
	return shmid == 0 ? w->size : 0;
}

static int services_map(void *ctx, uint8_t shmid, int fd, uint64_t fd_offset, uint64_t off, uint64_t len,
                        bool writable)
{
	return shmid == 0 ? shm_window_map(ctx, fd, fd_offset, off, len, writable) : -EINVAL;
}

static int services_unmap(void *ctx, uint8_t shmid, uint64_t off, uint64_t len)
{
	return shmid == 0 ? shm_window_unmap(ctx, off, len) : -EINVAL;
}

void shm_window_services(struct shm_window *w, struct dev_services *out)
{
	*out = (struct dev_services){ .ctx = w, .shm_size = services_size, .shm_map = services_map,
	                              .shm_unmap = services_unmap };
}

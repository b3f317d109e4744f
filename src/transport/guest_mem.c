#include "transport/guest_mem.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "common/util.h"

static bool ranges_overlap(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	return a < b + blen && b < a + alen;
}

int gm_add(struct guest_mem *gm, uint64_t gpa, uint64_t size, uint64_t uaddr, uint64_t mmap_offset, int fd)
{
	uint64_t end, map_len;

	if (gm->n >= GM_MAX_REGIONS)
		return -ENOSPC;
	if (size == 0 || fd < 0 || add_overflows_u64(gpa, size, &end) || add_overflows_u64(uaddr, size, &end) ||
	    add_overflows_u64(mmap_offset, size, &map_len) || map_len > SIZE_MAX)
		return -EINVAL;
	for (unsigned i = 0; i < gm->n; i++) {
		if (ranges_overlap(gpa, size, gm->r[i].gpa, gm->r[i].size) ||
		    ranges_overlap(uaddr, size, gm->r[i].uaddr, gm->r[i].size))
			return -EINVAL;
	}
	/* A page of a shared mapping past the end of its file raises SIGBUS when touched (found by fuzzing).
	 * A frontend that shrinks its memfd later can still do that; QEMU seals its memfds against shrinking. */
	struct stat st;
	if (fstat(fd, &st) < 0)
		return neg_errno();
	if (S_ISREG(st.st_mode) && (uint64_t)st.st_size < map_len)
		return -EINVAL;
	void *base = mmap(NULL, map_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd, 0);
	if (base == MAP_FAILED)
		return neg_errno();
	/* Guest memory in a core dump would leak the guest's secrets and take forever. */
	madvise(base, map_len, MADV_DONTDUMP);
	gm->r[gm->n++] = (struct gm_region){
		.gpa = gpa, .size = size, .uaddr = uaddr,
		.host = (uint8_t *)base + mmap_offset, .map_base = base, .map_len = map_len,
	};
	return 0;
}

int gm_remove(struct guest_mem *gm, uint64_t gpa, uint64_t size)
{
	for (unsigned i = 0; i < gm->n; i++) {
		if (gm->r[i].gpa == gpa && gm->r[i].size == size) {
			munmap(gm->r[i].map_base, gm->r[i].map_len);
			gm->r[i] = gm->r[--gm->n];
			return 0;
		}
	}
	return -ENOENT;
}

void gm_clear(struct guest_mem *gm)
{
	for (unsigned i = 0; i < gm->n; i++)
		munmap(gm->r[i].map_base, gm->r[i].map_len);
	gm->n = 0;
}

static const struct gm_region *find_gpa(const struct guest_mem *gm, uint64_t gpa)
{
	for (unsigned i = 0; i < gm->n; i++) {
		if (gpa >= gm->r[i].gpa && gpa - gm->r[i].gpa < gm->r[i].size)
			return &gm->r[i];
	}
	return NULL;
}

void *gm_gpa_ptr(const struct guest_mem *gm, uint64_t gpa, uint64_t len)
{
	const struct gm_region *r = find_gpa(gm, gpa);
	if (!r || !range_within(gpa - r->gpa, len, r->size))
		return NULL;
	return r->host + (gpa - r->gpa);
}

void *gm_uaddr_ptr(const struct guest_mem *gm, uint64_t uaddr, uint64_t len)
{
	for (unsigned i = 0; i < gm->n; i++) {
		const struct gm_region *r = &gm->r[i];
		if (uaddr >= r->uaddr && uaddr - r->uaddr < r->size) {
			if (!range_within(uaddr - r->uaddr, len, r->size))
				return NULL;
			return r->host + (uaddr - r->uaddr);
		}
	}
	return NULL;
}

int gm_gpa_iov(const struct guest_mem *gm, uint64_t gpa, uint64_t len, struct iovec *iov, unsigned max)
{
	unsigned n = 0;
	uint64_t end;

	if (add_overflows_u64(gpa, len, &end))
		return -EFAULT;
	while (len > 0) {
		const struct gm_region *r = find_gpa(gm, gpa);
		if (!r)
			return -EFAULT;
		if (n == max)
			return -E2BIG;
		uint64_t off = gpa - r->gpa, piece = MIN(len, r->size - off);
		iov[n].iov_base = r->host + off;
		iov[n].iov_len = piece;
		n++;
		gpa += piece;
		len -= piece;
	}
	return (int)n;
}

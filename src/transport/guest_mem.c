#include "transport/guest_mem.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"

/*
 * Surviving a frontend that shrinks its memory file. A page of a shared mapping past the end of its file raises
 * SIGBUS when touched. gm_add refuses regions longer than their file, but a frontend can shrink the file later
 * (QEMU seals its memfds against that; a hostile frontend need not). So every mapping of guest memory is
 * registered here, and a SIGBUS inside one puts an anonymous zero page where the missing one was and counts a
 * fault: the access completes (reading zeros, writing nowhere) and the queue that made it sees the count change
 * and stops as broken (vu_device.c). A SIGBUS anywhere else is not ours: the default action runs.
 *
 * Process-wide because a signal handler can only find it there. Written under reg_lock by the thread that changes
 * guest memory (gm_add, gm_compact, gm_clear); read without a lock by the handler: a slot's length is published
 * before its base, and a base of 0 means free.
 */
#define REG_SLOTS (4 * GM_MAX_REGIONS)
static struct {
	uintptr_t base;
	size_t len;
} reg[REG_SLOTS];
static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t reg_once = PTHREAD_ONCE_INIT;
static uint64_t fault_count;   /* atomic */

static bool registered(uintptr_t addr)
{
	for (unsigned i = 0; i < REG_SLOTS; i++) {
		uintptr_t b = __atomic_load_n(&reg[i].base, __ATOMIC_ACQUIRE);
		if (b && addr >= b && addr - b < __atomic_load_n(&reg[i].len, __ATOMIC_RELAXED))
			return true;
	}
	return false;
}

static void on_sigbus(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	uintptr_t page = (uintptr_t)si->si_addr & ~(uintptr_t)4095;
	if (si->si_code == BUS_ADRERR && registered((uintptr_t)si->si_addr) &&
	    mmap((void *)page, 4096, PROT_READ | PROT_WRITE, MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) !=
	            MAP_FAILED) {
		__atomic_add_fetch(&fault_count, 1, __ATOMIC_SEQ_CST);
		return;
	}
	signal(sig, SIG_DFL); /* not guest memory: die as we would have */
}

static void install_sigbus(void)
{
	struct sigaction sa = { .sa_sigaction = on_sigbus, .sa_flags = SA_SIGINFO | SA_NODEFER };
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGBUS, &sa, NULL) < 0)
		log_warn("guest memory: cannot catch SIGBUS: a frontend that shrinks its memory can crash us");
}

static void reg_add(void *base, size_t len)
{
	pthread_once(&reg_once, install_sigbus);
	pthread_mutex_lock(&reg_lock);
	for (unsigned i = 0; i < REG_SLOTS; i++) {
		if (!reg[i].base) {
			__atomic_store_n(&reg[i].len, len, __ATOMIC_RELAXED);
			__atomic_store_n(&reg[i].base, (uintptr_t)base, __ATOMIC_RELEASE);
			break;
		}
	}
	pthread_mutex_unlock(&reg_lock);
}

static void reg_remove(void *base)
{
	pthread_mutex_lock(&reg_lock);
	for (unsigned i = 0; i < REG_SLOTS; i++)
		if (reg[i].base == (uintptr_t)base)
			__atomic_store_n(&reg[i].base, 0, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&reg_lock);
}

void gm_guard_mapping(void *base, size_t len)
{
	reg_add(base, len);
}

void gm_unguard_mapping(void *base)
{
	reg_remove(base);
}

uint64_t gm_fault_count(void)
{
	return __atomic_load_n(&fault_count, __ATOMIC_SEQ_CST);
}

static void region_unmap(struct gm_region *r)
{
	reg_remove(r->map_base);
	munmap(r->map_base, r->map_len);
}

/* Entries [0, count) are filled: the vhost-user thread writes an entry before publishing the count. */
static unsigned count(const struct guest_mem *gm)
{
	return __atomic_load_n(&gm->n, __ATOMIC_ACQUIRE);
}

static bool live(const struct gm_region *r)
{
	return !__atomic_load_n(&r->dead, __ATOMIC_ACQUIRE);
}

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
		if (!live(&gm->r[i]))
			continue; /* a retired range's place may be taken again (a DAX window slot remapped) */
		if (ranges_overlap(gpa, size, gm->r[i].gpa, gm->r[i].size) ||
		    ranges_overlap(uaddr, size, gm->r[i].uaddr, gm->r[i].size))
			return -EINVAL;
	}
	/* A page of a shared mapping past the end of its file raises SIGBUS when touched (found by fuzzing).
	 * A frontend that shrinks its file later still can: see on_sigbus. */
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
	reg_add(base, map_len);
	gm->r[gm->n] = (struct gm_region){
		.gpa = gpa, .size = size, .uaddr = uaddr,
		.host = (uint8_t *)base + mmap_offset, .map_base = base, .map_len = map_len,
	};
	__atomic_store_n(&gm->n, gm->n + 1, __ATOMIC_RELEASE);
	return 0;
}

static int find_live(const struct guest_mem *gm, uint64_t gpa, uint64_t size)
{
	for (unsigned i = 0; i < gm->n; i++) {
		if (live(&gm->r[i]) && gm->r[i].gpa == gpa && gm->r[i].size == size)
			return (int)i;
	}
	return -ENOENT;
}

int gm_retire(struct guest_mem *gm, uint64_t gpa, uint64_t size)
{
	int i = find_live(gm, gpa, size);
	if (i < 0)
		return i;
	__atomic_store_n(&gm->r[i].dead, true, __ATOMIC_RELEASE);
	return 0;
}

unsigned gm_compact(struct guest_mem *gm)
{
	unsigned kept = 0, gone = 0;
	for (unsigned i = 0; i < gm->n; i++) {
		if (live(&gm->r[i])) {
			gm->r[kept++] = gm->r[i];
		} else {
			region_unmap(&gm->r[i]);
			gone++;
		}
	}
	__atomic_store_n(&gm->n, kept, __ATOMIC_RELEASE);
	return gone;
}

void gm_clear(struct guest_mem *gm)
{
	for (unsigned i = 0; i < gm->n; i++)
		region_unmap(&gm->r[i]);
	gm->n = 0;
}

static const struct gm_region *find_gpa(const struct guest_mem *gm, uint64_t gpa)
{
	for (unsigned i = 0, n = count(gm); i < n; i++) {
		if (live(&gm->r[i]) && gpa >= gm->r[i].gpa && gpa - gm->r[i].gpa < gm->r[i].size)
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
	for (unsigned i = 0, n = count(gm); i < n; i++) {
		const struct gm_region *r = &gm->r[i];
		if (live(r) && uaddr >= r->uaddr && uaddr - r->uaddr < r->size) {
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

int gm_host_to_gpa(const struct guest_mem *gm, const void *p, size_t len, uint64_t *gpa)
{
	const uint8_t *b = p;
	for (unsigned i = 0, n = count(gm); i < n; i++) {
		const struct gm_region *r = &gm->r[i];
		if (live(r) && b >= r->host && (uint64_t)(b - r->host) < r->size) {
			if (!range_within((uint64_t)(b - r->host), len, r->size))
				return -EFAULT;
			*gpa = r->gpa + (uint64_t)(b - r->host);
			return 0;
		}
	}
	return -EFAULT;
}

/*
 * The DAX window, file-system side (docs/dax-design.md): which bytes back each 2 MiB range of the window.
 *
 * The guest asks for whole 2 MiB ranges (FUSE_SETUPMAPPING, map_alignment 21) of files of any size, but the VMM can
 * map only whole pages that lie inside the file when it maps them (QEMU 11.1 refuses a file shorter than the map and
 * grows an empty one). So a range is a list of parts, each one mapping sent through the device services:
 *   - file parts: the file's own pages (one copy of the data, coherent with the host and other guests);
 *   - copy parts: a memfd holding a copy of the file's bytes, for the page that holds the end of the file (and for a
 *     whole range when the file cannot be opened for writing). Guest stores into a copy are written back to the file
 *     at the sync points below (never past its end: the file never grows because of a mapping), and the file's
 *     bytes are copied in again before any reply that tells the guest the file's size;
 *   - nothing past the page that holds the end of the file: the guest never touches a page wholly past its i_size
 *     (a fault there is SIGBUS in the guest, read() stops at EOF), and when the file grows, the pages it grew into
 *     are mapped before the reply that tells the guest the new size.
 * Sync points: before a request that reads, writes or syncs the inode's data (dax_sync_before), and after one that
 * may have changed its size or reports it (dax_sync_after).
 *
 * Host truncation (docs/dax-design.md 2.8): a file page mapped by the VMM that a host process truncates away kills
 * QEMU at the guest's next touch. In guarded mode (the default) a range maps file pages only while the daemon
 * holds a write lease on the inode's one shared open file description (dax_fd, which the guest's handles of the
 * file share too: any other description would make the lease impossible). A host process that opens the file or
 * truncates it waits until dax_lease.c hears the break: a writer's turns every range of the file into copies first;
 * a reader's leaves them shared (a reader cannot truncate) and the lease is taken again once it is gone. Without a
 * lease when the guest maps (the file is open elsewhere), the range is a copy.
 *
 * Lock story: one mutex, dax.mu, guards the range table, every range and part, and the dax_* fields of every inode
 * (dax_ranges is also read without it, atomically, to skip the sync points of inodes that have no range). It is
 * held across the device requests (a map waits for the VMM's reply, bounded by the device): mappings are rare (one
 * per 2 MiB the guest touches) and must not interleave. Of the room's other locks only itab.mu is taken under
 * it (inode_put when every range goes at once); requests drop their references after unlocking.
 */
#include "fs/fs_internal.h"

#include "common/log.h"
#include "common/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define DAX_RANGE FS_DAX_RANGE
#define DAX_PAGE 4096u

struct dax_part {
	uint32_t off, len;        /* within the range; whole pages */
	bool copy;                /* backed by memfd (else by the file at foffset + off) */
	int memfd;
	uint8_t *mem;             /* our view of memfd: what the guest sees */
	uint8_t *clean;           /* the file's bytes as last synchronised */
};

struct dax_range {
	struct fs_inode *inode;   /* NULL: free; else holds one reference */
	uint64_t foffset;
	bool copies;              /* never file pages (no lease when mapped, or a host writer broke it) */
	unsigned nparts, cap;
	struct dax_part *parts;   /* sorted by off, disjoint */
};

static uint64_t page_down(uint64_t v)
{
	return v & ~(uint64_t)(DAX_PAGE - 1);
}

static uint64_t page_up(uint64_t v)
{
	return v > UINT64_MAX - (DAX_PAGE - 1) ? page_down(UINT64_MAX) : page_down(v + DAX_PAGE - 1);
}

/* How far into a range at foffset a file of size bytes reaches, clipped to the range. */
static uint32_t within_range(uint64_t size, uint64_t foffset)
{
	return size <= foffset ? 0 : (uint32_t)MIN(size - foffset, (uint64_t)DAX_RANGE);
}

void dax_init(struct fs *fs)
{
	pthread_mutex_init(&fs->dax.mu, NULL);
}

static ssize_t pread_full(int fd, uint8_t *buf, size_t len, uint64_t off)
{
	size_t done = 0;
	while (done < len) {
		ssize_t n = pread(fd, buf + done, len - done, (off_t)(off + done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return neg_errno();
		if (n == 0)
			break;
		done += (size_t)n;
	}
	memset(buf + done, 0, len - done);
	return (ssize_t)done;
}

/* ---- copy parts ---------------------------------------------------------------------------------------------- */

static void copy_free(struct dax_part *p)
{
	if (p->mem)
		munmap(p->mem, p->len);
	close_if_open(&p->memfd);
	free(p->clean);
	p->mem = p->clean = NULL;
}

static int copy_new(struct dax_part *p, int fd, uint64_t foff)
{
	int ret;

	p->memfd = memfd_create("vufs-dax-copy", MFD_CLOEXEC);
	if (p->memfd < 0)
		return neg_errno();
	if (ftruncate(p->memfd, p->len) < 0) {
		ret = neg_errno();
		goto fail;
	}
	p->mem = mmap(NULL, p->len, PROT_READ | PROT_WRITE, MAP_SHARED, p->memfd, 0);
	p->clean = malloc(p->len);
	if (p->mem == MAP_FAILED || !p->clean) {
		if (p->mem == MAP_FAILED)
			p->mem = NULL;
		ret = -ENOMEM;
		goto fail;
	}
	ret = (int)MIN(pread_full(fd, p->clean, p->len, foff), 0);
	if (ret < 0)
		goto fail;
	memcpy(p->mem, p->clean, p->len);
	return 0;
fail:
	copy_free(p);
	return ret;
}

/* Writes the bytes the guest changed in a copy part back to the file, below size only. */
static void copy_write_back(int fd, uint64_t foff, struct dax_part *p, uint64_t size)
{
	uint32_t end = MIN(within_range(size, foff), p->len), i = 0;

	while (i < end) {
		if (p->mem[i] == p->clean[i]) {
			i++;
			continue;
		}
		uint32_t j = i;
		while (j < end && p->mem[j] != p->clean[j])
			j++;
		memcpy(p->clean + i, p->mem + i, j - i);
		log_debug("dax: write back [%llu, +%u)", (unsigned long long)(foff + i), j - i);
		if (pwrite(fd, p->clean + i, j - i, (off_t)(foff + i)) != (ssize_t)(j - i))
			log_warn("dax: writing back %u bytes at %llu: %s", j - i, (unsigned long long)(foff + i),
			         strerror(errno));
		i = j;
	}
}

/* Copies in the file's bytes that changed since the last sync (the guest's own changes were written back). */
static void copy_refresh(int fd, uint64_t foff, struct dax_part *p)
{
	uint8_t *now = malloc(p->len);
	if (!now || pread_full(fd, now, p->len, foff) < 0) {
		free(now);
		return;
	}
	for (uint32_t i = 0; i < p->len; i++) {
		if (now[i] != p->clean[i])
			p->mem[i] = p->clean[i] = now[i];
	}
	free(now);
}

/* ---- parts of a range ---------------------------------------------------------------------------------------- */

static uint64_t range_moffset(const struct fs *fs, const struct dax_range *r)
{
	return (uint64_t)(r - fs->dax.ranges) * DAX_RANGE;
}

static int part_unmap(struct fs *fs, struct dax_range *r, struct dax_part *p, bool unmap)
{
	int ret = 0;
	if (unmap)
		ret = fs->dax.svc.shm_unmap(fs->dax.svc.ctx, 0, range_moffset(fs, r) + p->off, p->len);
	if (p->copy)
		copy_free(p);
	return ret;
}

/* Maps [off, off+len) of the range as file pages, or as a copy; inserts the part in order. */
static int part_add(struct fs *fs, struct dax_range *r, uint32_t off, uint32_t len, bool copy)
{
	struct fs_inode *inode = r->inode;
	struct dax_part p = { .off = off, .len = len, .copy = copy, .memfd = -1 };
	uint64_t foff = r->foffset + off;
	int ret;

	if (r->nparts == r->cap) {
		unsigned cap = r->cap ? r->cap * 2 : 4;
		struct dax_part *np = realloc(r->parts, cap * sizeof(*np));
		if (!np)
			return -ENOMEM;
		r->parts = np;
		r->cap = cap;
	}
	if (copy && (ret = copy_new(&p, inode->dax_fd, foff)) < 0)
		return ret;
	ret = fs->dax.svc.shm_map(fs->dax.svc.ctx, 0, copy ? p.memfd : inode->dax_fd, copy ? 0 : foff,
	                          range_moffset(fs, r) + off, len, true);
	log_debug("dax: map %s [%llu, +%u) of node %llu at window %llu: %d", copy ? "copy" : "file",
	          (unsigned long long)foff, len, (unsigned long long)inode_nodeid(inode),
	          (unsigned long long)(range_moffset(fs, r) + off), ret);
	if (ret < 0) {
		copy_free(&p);
		return ret;
	}
	unsigned i = r->nparts;
	while (i > 0 && r->parts[i - 1].off > off) {
		r->parts[i] = r->parts[i - 1];
		i--;
	}
	r->parts[i] = p;
	r->nparts++;
	return 0;
}

static void part_remove(struct dax_range *r, unsigned i)
{
	memmove(&r->parts[i], &r->parts[i + 1], (r->nparts - i - 1) * sizeof(r->parts[0]));
	r->nparts--;
}

/* Maps a gap [a, b) of the range: file pages up to file_end, then a copy of the rest. */
static int fill_gap(struct fs *fs, struct dax_range *r, uint32_t a, uint32_t b, uint32_t file_end)
{
	int ret = 0;
	if (a < file_end) {
		uint32_t e = MIN(b, file_end);
		ret = part_add(fs, r, a, e - a, false);
		a = e;
	}
	if (ret == 0 && a < b)
		ret = part_add(fs, r, a, b - a, true);
	return ret;
}

/*
 * Makes the range right for a file of size bytes: every page below the end of the file is mapped, whole pages of
 * the file as file pages, the page with the end of the file as a copy; a copy that now lies wholly inside the file
 * becomes file pages again (otherwise a file growing in small steps would become copies only).
 */
static int range_fit(struct fs *fs, struct dax_range *r, uint64_t size)
{
	struct fs_inode *inode = r->inode;
	uint32_t need = (uint32_t)MIN(page_up(within_range(size, r->foffset)), (uint64_t)DAX_RANGE);
	uint32_t file_end = r->copies ? 0 : (uint32_t)page_down(within_range(size, r->foffset));
	uint32_t pos = 0;
	int ret = 0;

	for (unsigned i = 0; i < r->nparts && ret == 0;) {
		struct dax_part *p = &r->parts[i];
		if (p->copy && p->off + p->len <= file_end) {
			copy_write_back(inode->dax_fd, r->foffset + p->off, p, size);
			uint32_t off = p->off, len = p->len;
			ret = part_unmap(fs, r, p, true);
			part_remove(r, i);
			if (ret == 0)
				ret = part_add(fs, r, off, len, false);
			continue; /* the new part is at i again, or the loop stops */
		}
		i++;
	}
	for (unsigned i = 0; ret == 0 && pos < need; i++) {
		uint32_t next = i < r->nparts ? r->parts[i].off : DAX_RANGE, gap_end = MIN(next, need);
		if (pos < gap_end) {
			unsigned before = r->nparts;
			ret = fill_gap(fs, r, pos, gap_end, file_end);
			i += r->nparts - before; /* skip what was inserted before parts[i] */
		}
		if (i >= r->nparts)
			break;
		pos = MAX(pos, r->parts[i].off + r->parts[i].len);
	}
	return ret;
}

static void range_write_back(struct dax_range *r, uint64_t size)
{
	if (!r->inode->dax_writable)
		return; /* opened read-only: stores through a copy of a file the guest cannot write are dropped */
	for (unsigned i = 0; i < r->nparts; i++) {
		if (r->parts[i].copy)
			copy_write_back(r->inode->dax_fd, r->foffset + r->parts[i].off, &r->parts[i], size);
	}
}

/*
 * Growth in small steps leaves a range in many small parts (each one a mapping QEMU keeps and a memory region it
 * announces). Under a request through which the guest itself grows the file (its read() and write() of the inode
 * wait for the reply: Linux holds the inode lock across an extending write), the range is laid out anew, one file
 * part and one copy, once it has more than RANGE_PARTS_MAX parts. Only a process with the file mapped could touch
 * the range meanwhile, and see a hole for one round trip to the VMM.
 */
#define RANGE_PARTS_MAX 8

static int range_rebuild(struct fs *fs, struct dax_range *r, uint64_t size)
{
	range_write_back(r, size);
	for (unsigned i = 0; i < r->nparts; i++)
		part_unmap(fs, r, &r->parts[i], true);
	r->nparts = 0;
	return range_fit(fs, r, size);
}

static void range_refresh(struct dax_range *r)
{
	for (unsigned i = 0; i < r->nparts; i++) {
		if (r->parts[i].copy)
			copy_refresh(r->inode->dax_fd, r->foffset + r->parts[i].off, &r->parts[i]);
	}
}

static uint64_t file_size(int fd)
{
	struct stat st;
	return fstat(fd, &st) == 0 ? (uint64_t)st.st_size : 0;
}

/* ---- the inode's shared description ------------------------------------------------------------------------ */

/* dax.mu held: the inode's last range is gone; nothing to guard any more. */
static void share_unmapped(struct fs_inode *inode)
{
	if (inode->dax_leased)
		dax_lease_release(inode->dax_fd);
	inode->dax_leased = inode->dax_exposed = false;
	if (inode->dax_handles == 0)
		close_if_open(&inode->dax_fd);
}

/* dax.mu held: a description nothing uses any more (opened for a mapping that failed) is closed. */
static void share_trim(struct fs_inode *inode)
{
	if (inode->dax_ranges == 0 && inode->dax_handles == 0 && !inode->dax_leased)
		close_if_open(&inode->dax_fd);
}

/*
 * Returns with dax.mu held and the inode's shared description open: read-write if at all possible, else (with
 * rdonly_ok) read-only. The open happens without dax.mu: it may wait for a lease break, ours included (a lease of
 * another inode of the same host file, reached through another mount), which needs dax.mu.
 */
static int share_ensure_locked(struct fs *fs, struct fs_inode *inode, bool rdonly_ok)
{
	struct fs_dax *d = &fs->dax;
	bool writable = true;
	struct stat st;
	int fd;

	pthread_mutex_lock(&d->mu);
	if (inode->dax_fd >= 0)
		return 0;
	pthread_mutex_unlock(&d->mu);
	fd = fs->cfg.readonly ? -EROFS : inode_reopen(fs, inode, O_RDWR);
	if (fd < 0 && rdonly_ok) {
		writable = false;
		fd = inode_reopen(fs, inode, O_RDONLY);
	}
	if (fd < 0)
		return fd;
	/* Only a regular file: a device node would map device memory into the guest. */
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return -EINVAL;
	}
	pthread_mutex_lock(&d->mu);
	if (inode->dax_fd >= 0) {
		close(fd); /* another request was first: one description per inode */
		return 0;
	}
	inode->dax_fd = fd;
	inode->dax_writable = writable;
	return 0;
}

/* Whether the file's attributes now get FUSE_ATTR_DAX. */
static bool inode_attr_dax(const struct fs *fs, const struct fs_inode *inode)
{
	struct stat st;
	int fd = inode_fd_get(fs, inode);
	bool dax = fd >= 0 && fs_statx(fd, "", AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW, &st, NULL) == 0 &&
	           fs_attr_dax(fs, &st);
	inode_fd_put(inode, fd);
	return dax;
}

int dax_share_open(struct fs *fs, struct fs_inode *inode, int flags)
{
	struct fs_dax *d = &fs->dax;
	int fd;

	if (inode->type != S_IFREG || (flags & (O_DIRECT | O_NOATIME)) || fs->cfg.readonly ||
	    !__atomic_load_n(&d->nranges, __ATOMIC_ACQUIRE))
		return -ENOTSUP;
	if (__atomic_load_n(&fs->dax_per_inode, __ATOMIC_ACQUIRE) && !inode_attr_dax(fs, inode))
		return -ENOTSUP; /* a dax=inode guest never maps it: no read-write description (it would keep the host
		                  * from executing the file, and a lease has nothing to guard) */
	if (share_ensure_locked(fs, inode, false) < 0)
		return -ENOTSUP;
	fd = inode->dax_writable && d->nranges ? fcntl(inode->dax_fd, F_DUPFD_CLOEXEC, 0) : -1;
	if (fd >= 0)
		inode->dax_handles++;
	else
		share_trim(inode);
	pthread_mutex_unlock(&d->mu);
	return fd >= 0 ? fd : -ENOTSUP;
}

void dax_share_put(struct fs *fs, struct fs_inode *inode)
{
	pthread_mutex_lock(&fs->dax.mu);
	inode->dax_handles--;
	share_trim(inode);
	pthread_mutex_unlock(&fs->dax.mu);
}

int dax_share_dup(struct fs *fs, struct fs_inode *inode)
{
	int fd = -ENOENT;

	pthread_mutex_lock(&fs->dax.mu);
	if (inode->dax_fd >= 0 && inode->dax_writable) {
		fd = fcntl(inode->dax_fd, F_DUPFD_CLOEXEC, 0);
		if (fd < 0)
			fd = neg_errno();
	}
	pthread_mutex_unlock(&fs->dax.mu);
	return fd;
}

/* Frees a range: writes its copies back, unmaps its parts (unless the device already dropped them), drops the
 * inode's reference (the caller puts it after unlocking). dax.mu held. Returns the first unmap error. */
static int range_release(struct fs *fs, struct dax_range *r, bool unmap, struct fs_inode **put)
{
	struct fs_inode *inode = r->inode;
	int ret = 0;

	range_write_back(r, file_size(inode->dax_fd));
	for (unsigned i = 0; i < r->nparts; i++) {
		int rc = part_unmap(fs, r, &r->parts[i], unmap);
		if (rc < 0 && ret == 0)
			ret = rc;
	}
	free(r->parts);
	*r = (struct dax_range){ 0 };
	if (__atomic_sub_fetch(&inode->dax_ranges, 1, __ATOMIC_RELEASE) == 0)
		share_unmapped(inode);
	*put = inode;
	return ret;
}

/* Releases every range, with its inode reference (itab.mu nests inside dax.mu here, never the other way). */
static void release_all(struct fs *fs, bool unmap)
{
	struct fs_dax *d = &fs->dax;

	pthread_mutex_lock(&d->mu);
	for (unsigned i = 0; i < d->nranges; i++) {
		struct fs_inode *inode;
		if (!d->ranges[i].inode)
			continue;
		range_release(fs, &d->ranges[i], unmap && d->attached, &inode);
		inode_put(fs, inode);
	}
	pthread_mutex_unlock(&d->mu);
}

/* ---- the device ---------------------------------------------------------------------------------------------- */

int fs_dax_attach(struct fs *fs, const struct dev_services *svc)
{
	struct fs_dax *d = &fs->dax;
	uint64_t size = svc && svc->shm_size ? svc->shm_size(svc->ctx, 0) : 0;
	unsigned n = (unsigned)MIN(size / DAX_RANGE, (uint64_t)FS_DAX_MAX_RANGES);

	fs_dax_detach(fs);
	if (!n)
		return 0;
	if (fs->cfg.dax_coherence == FS_DAX_GUARDED) {
		int ret = dax_lease_start(fs);
		if (ret < 0)
			return ret;
	}
	struct dax_range *ranges = calloc(n, sizeof(*ranges));
	if (!ranges)
		return -ENOMEM;
	pthread_mutex_lock(&d->mu);
	d->svc = *svc;
	d->ranges = ranges;
	__atomic_store_n(&d->nranges, n, __ATOMIC_RELEASE);
	d->attached = true;
	pthread_mutex_unlock(&d->mu);
	log_info("dax: a window of %llu MiB (%u ranges of 2 MiB)", (unsigned long long)(size >> 20), n);
	return 0;
}

void fs_dax_detach(struct fs *fs)
{
	struct fs_dax *d = &fs->dax;

	/* The device is gone (or about to be): it dropped its mappings itself. */
	release_all(fs, false);
	pthread_mutex_lock(&d->mu);
	if (d->attached)
		log_info("dax: %llu ranges mapped and %llu removed at the guest's request; %llu leases taken, %llu "
		         "broken by host processes", (unsigned long long)d->mapped, (unsigned long long)d->removed,
		         (unsigned long long)d->leases, (unsigned long long)d->breaks);
	d->mapped = d->removed = 0;
	free(d->ranges);
	d->ranges = NULL;
	__atomic_store_n(&d->nranges, 0, __ATOMIC_RELEASE);
	d->attached = false;
	pthread_mutex_unlock(&d->mu);
}

void dax_destroy(struct fs *fs)
{
	fs_dax_detach(fs);
	dax_lease_stop(fs);
	pthread_mutex_destroy(&fs->dax.mu);
}

uint64_t fs_dax_window(struct fs *fs)
{
	pthread_mutex_lock(&fs->dax.mu);
	uint64_t size = (uint64_t)fs->dax.nranges * DAX_RANGE;
	pthread_mutex_unlock(&fs->dax.mu);
	return size;
}

void fs_dax_session_start(struct fs *fs)
{
	/* A new INIT follows a device reset (or a DESTROY, which removed everything): the VMM dropped the mappings. */
	release_all(fs, false);
}

void dax_reset(struct fs *fs)
{
	release_all(fs, true);
}

void fs_dax_counts(struct fs *fs, uint64_t *ranges, uint64_t *parts, uint64_t *copies)
{
	struct fs_dax *d = &fs->dax;
	*ranges = *parts = *copies = 0;
	pthread_mutex_lock(&d->mu);
	for (unsigned i = 0; i < d->nranges; i++) {
		if (!d->ranges[i].inode)
			continue;
		(*ranges)++;
		*parts += d->ranges[i].nparts;
		for (unsigned k = 0; k < d->ranges[i].nparts; k++)
			*copies += d->ranges[i].parts[k].copy;
	}
	pthread_mutex_unlock(&d->mu);
}

/* ---- requests ------------------------------------------------------------------------------------------------ */

/* dax.mu held, dax_fd open: whether a new range of the inode may map the file's own pages. */
static bool range_direct(struct fs *fs, struct fs_inode *inode)
{
	if (!inode->dax_writable)
		return false;
	if (fs->cfg.dax_coherence == FS_DAX_SHARED || inode->dax_leased || inode->dax_exposed)
		return true;
	if (!dax_lease_take(fs, inode->dax_fd))
		return false;
	inode->dax_leased = true;
	fs->dax.leases++;
	return true;
}

/* A free range for a new mapping at moffset: an old mapping there (Linux never leaves one) is removed first. */
static int take_range(struct fs *fs, struct dax_range *r, struct fs_inode **put)
{
	if (!r->inode)
		return 0;
	return range_release(fs, r, true, put);
}

static int check_mapping(const struct fs_dax *d, uint64_t moffset, uint64_t len)
{
	if (!d->nranges)
		return -ENOSYS;
	if (len != DAX_RANGE || moffset % DAX_RANGE || moffset / DAX_RANGE >= d->nranges)
		return -EINVAL;
	return 0;
}

int fs_setupmapping(struct fs *fs, uint64_t nodeid, uint64_t foffset, uint64_t len, uint64_t moffset, bool write)
{
	struct fs_dax *d = &fs->dax;
	struct fs_inode *inode, *old = NULL;
	uint64_t end;
	int ret = inode_get(fs, nodeid, &inode);

	(void)write; /* QEMU needs a read-write fd and maps read-write whatever we ask: write changes nothing */
	if (ret < 0)
		return ret;
	if (inode->type != S_IFREG) {
		inode_put(fs, inode);
		return -EINVAL;
	}
	if (foffset % DAX_RANGE || add_overflows_u64(foffset, len, &end) || end > INT64_MAX) {
		inode_put(fs, inode);
		return -EINVAL;
	}
	ret = share_ensure_locked(fs, inode, true);
	if (ret < 0) {
		inode_put(fs, inode);
		return ret == -EAGAIN ? -EIO : ret;
	}
	ret = check_mapping(d, moffset, len);
	struct dax_range *r = ret == 0 ? &d->ranges[moffset / DAX_RANGE] : NULL;
	if (r && r->inode == inode && r->foffset == foffset) {
		/* Linux upgrades a read mapping to write by asking again: every mapping is sent read-write already. */
		pthread_mutex_unlock(&d->mu);
		inode_put(fs, inode);
		return 0;
	}
	if (r)
		ret = take_range(fs, r, &old);
	if (ret == 0) {
		*r = (struct dax_range){ .inode = inode, .foffset = foffset, .copies = !range_direct(fs, inode) };
		__atomic_add_fetch(&inode->dax_ranges, 1, __ATOMIC_RELEASE);
		ret = range_fit(fs, r, file_size(inode->dax_fd));
		if (ret < 0) {
			struct fs_inode *again;
			range_release(fs, r, true, &again);
			inode = again; /* put below, with the reference the range held */
		} else {
			inode = NULL; /* the range keeps the reference */
			d->mapped++;
		}
	}
	if (inode)
		share_trim(inode);
	pthread_mutex_unlock(&d->mu);
	if (old)
		inode_put(fs, old);
	if (inode)
		inode_put(fs, inode);
	if (ret < 0)
		log_debug("dax: SETUPMAPPING of node %llu at %llu: %s", (unsigned long long)nodeid,
		          (unsigned long long)moffset, strerror(-ret));
	/* Linux retries a mapping that failed with EAGAIN for ever: a failure is an I/O error. */
	return ret == -EAGAIN || ret == -ETIMEDOUT || ret == -ENOTCONN || ret == -ENOMEM ? -EIO : ret;
}

int fs_removemapping(struct fs *fs, uint64_t nodeid, uint64_t moffset, uint64_t len)
{
	struct fs_dax *d = &fs->dax;
	struct fs_inode *inode, *put = NULL;
	int ret = inode_get(fs, nodeid, &inode);

	if (ret < 0)
		return ret;
	pthread_mutex_lock(&d->mu);
	ret = check_mapping(d, moffset, len);
	struct dax_range *r = ret == 0 ? &d->ranges[moffset / DAX_RANGE] : NULL;
	if (r && r->inode != inode)
		ret = -EINVAL;
	else if (r)
		ret = range_release(fs, r, true, &put);
	if (r && put)
		d->removed++;
	pthread_mutex_unlock(&d->mu);
	if (put)
		inode_put(fs, put);
	inode_put(fs, inode);
	return ret < 0 && ret != -EINVAL && ret != -ENOSYS ? -EIO : ret;
}

/* ---- sync points --------------------------------------------------------------------------------------------- */

static bool has_ranges(const struct fs_inode *inode)
{
	return __atomic_load_n(&inode->dax_ranges, __ATOMIC_ACQUIRE) != 0;
}

/* Writes back what the guest stored in the inode's copies; with fit, then maps what the file grew into and copies
 * in what the host changed; with guest_waits (the guest's own I/O on the inode waits for this request), lays a
 * range in too many parts out anew. */
static void sync_ranges(struct fs *fs, struct fs_inode *inode, bool fit, bool guest_waits)
{
	struct fs_dax *d = &fs->dax;

	if (!has_ranges(inode))
		return;
	pthread_mutex_lock(&d->mu);
	uint64_t size = inode->dax_fd >= 0 ? file_size(inode->dax_fd) : 0;
	/* Stop at the inode's last range: a big window has thousands, a file a few. */
	unsigned left = inode->dax_fd >= 0 ? inode->dax_ranges : 0;
	for (unsigned i = 0; i < d->nranges && left > 0; i++) {
		struct dax_range *r = &d->ranges[i];
		if (r->inode != inode)
			continue;
		left--;
		range_write_back(r, size);
		if (!fit)
			continue;
		int rc = guest_waits && r->nparts > RANGE_PARTS_MAX ? range_rebuild(fs, r, size) : range_fit(fs, r, size);
		if (rc < 0)
			log_warn("dax: cannot map the pages node %llu grew into", (unsigned long long)inode_nodeid(inode));
		range_refresh(r);
	}
	pthread_mutex_unlock(&d->mu);
}

void dax_sync_before(struct fs *fs, struct fs_inode *inode)
{
	sync_ranges(fs, inode, false, false);
}

void dax_sync_after(struct fs *fs, struct fs_inode *inode)
{
	sync_ranges(fs, inode, true, false);
}

void dax_sync_after_growth(struct fs *fs, struct fs_inode *inode)
{
	sync_ranges(fs, inode, true, true);
}

/* ---- file pages that must go: host writers (lease breaks) and the guest's own truncation ---------------------- */

/* dax.mu held: turns file part i of r into a copy of the same bytes, in place (unmap, map: the guest must not
 * touch the range meanwhile, or it reads a hole for one round trip to the VMM). */
static int part_to_copy(struct fs *fs, struct dax_range *r, unsigned i)
{
	struct dax_part *p = &r->parts[i];
	struct dax_part c = { .off = p->off, .len = p->len, .copy = true, .memfd = -1 };
	uint64_t at = range_moffset(fs, r) + p->off;
	int ret = copy_new(&c, r->inode->dax_fd, r->foffset + p->off);

	if (ret < 0)
		return ret;
	ret = fs->dax.svc.shm_unmap(fs->dax.svc.ctx, 0, at, p->len);
	if (ret < 0) {
		copy_free(&c);
		return ret;
	}
	ret = fs->dax.svc.shm_map(fs->dax.svc.ctx, 0, c.memfd, 0, at, c.len, true);
	if (ret < 0) {
		copy_free(&c);
		part_remove(r, i); /* a hole now: the guest's accesses there fail, the VMM lives */
		return ret;
	}
	*p = c;
	return 0;
}

/* dax.mu held: every file part of the inode's ranges that reaches past file offset limit becomes a copy. */
static void inode_to_copies(struct fs *fs, struct fs_inode *inode, uint64_t limit, bool whole)
{
	struct fs_dax *d = &fs->dax;
	unsigned left = inode->dax_ranges;

	for (unsigned i = 0; i < d->nranges && left > 0; i++) {
		struct dax_range *r = &d->ranges[i];
		if (r->inode != inode)
			continue;
		left--;
		if (whole)
			r->copies = true;
		for (unsigned k = 0; k < r->nparts;) {
			struct dax_part *p = &r->parts[k];
			unsigned before = r->nparts;
			if (p->copy || r->foffset + p->off + p->len <= limit) {
				k++;
				continue;
			}
			int rc = part_to_copy(fs, r, k);
			if (rc < 0)
				log_warn("dax: node %llu: a mapped page could not become a copy: %s",
				         (unsigned long long)inode_nodeid(inode), strerror(-rc));
			if (r->nparts == before)
				k++;
		}
	}
}

void dax_before_shrink(struct fs *fs, struct fs_inode *inode, uint64_t size)
{
	if (!has_ranges(inode))
		return;
	pthread_mutex_lock(&fs->dax.mu);
	if (inode->dax_fd >= 0)
		inode_to_copies(fs, inode, page_down(size), false);
	pthread_mutex_unlock(&fs->dax.mu);
}

/* dax.mu held, the inode leased: someone else opens or truncates the file, and waits for us. */
static void lease_broken(struct fs *fs, struct fs_inode *inode)
{
	int target = fcntl(inode->dax_fd, F_GETLEASE);

	if (target == F_WRLCK)
		return; /* no break pending (a late signal) */
	fs->dax.breaks++;
	if (target == F_RDLCK) {
		/* A reader: it cannot truncate, and copies would end the sharing. The lease is taken again once it
		 * has closed the file (dax_lease_retry); meanwhile the file pages are exposed. */
		inode->dax_exposed = true;
		log_info("dax: a host process opens node %llu for reading: its ranges stay shared",
		         (unsigned long long)inode_nodeid(inode));
	} else {
		inode_to_copies(fs, inode, 0, true);
		inode->dax_exposed = false;
		log_info("dax: a host process opens node %llu for writing or truncates it: its ranges are copies now",
		         (unsigned long long)inode_nodeid(inode));
	}
	dax_lease_release(inode->dax_fd);
	inode->dax_leased = false;
}

/* dax.mu held: the leased inode whose shared description is fd, if any. */
static struct fs_inode *leased_inode(struct fs_dax *d, int fd)
{
	for (unsigned i = 0; i < d->nranges; i++) {
		struct fs_inode *inode = d->ranges[i].inode;
		if (inode && inode->dax_leased && inode->dax_fd == fd)
			return inode;
	}
	return NULL;
}

void dax_lease_broken(struct fs *fs, int fd)
{
	pthread_mutex_lock(&fs->dax.mu);
	struct fs_inode *inode = leased_inode(&fs->dax, fd);
	if (inode)
		lease_broken(fs, inode);
	pthread_mutex_unlock(&fs->dax.mu);
}

void dax_lease_check_all(struct fs *fs)
{
	struct fs_dax *d = &fs->dax;

	pthread_mutex_lock(&d->mu);
	for (unsigned i = 0; i < d->nranges; i++) {
		struct fs_inode *inode = d->ranges[i].inode;
		if (inode && inode->dax_leased)
			lease_broken(fs, inode);
	}
	pthread_mutex_unlock(&d->mu);
}

bool dax_lease_retry(struct fs *fs)
{
	struct fs_dax *d = &fs->dax;
	bool missing = false;

	pthread_mutex_lock(&d->mu);
	for (unsigned i = 0; i < d->nranges; i++) {
		struct fs_inode *inode = d->ranges[i].inode;
		if (!inode || !inode->dax_exposed || inode->dax_leased)
			continue;
		if (dax_lease_take(fs, inode->dax_fd)) {
			inode->dax_leased = true;
			inode->dax_exposed = false;
			d->leases++;
		} else {
			missing = true;
		}
	}
	pthread_mutex_unlock(&d->mu);
	return missing;
}

void fs_dax_lease_counts(struct fs *fs, uint64_t *taken, uint64_t *broken)
{
	pthread_mutex_lock(&fs->dax.mu);
	*taken = fs->dax.leases;
	*broken = fs->dax.breaks;
	pthread_mutex_unlock(&fs->dax.mu);
}

bool fs_attr_dax(const struct fs *fs, const struct stat *st)
{
	if (!S_ISREG(st->st_mode))
		return false;
	switch (fs->cfg.dax_files) {
	case FS_DAX_FILES_ALL:
		return true;
	case FS_DAX_FILES_PAGE:
		return st->st_size > 0 && st->st_size % DAX_PAGE == 0;
	case FS_DAX_FILES_NONE:
	default:
		return false;
	}
}

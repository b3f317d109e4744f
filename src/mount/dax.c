/*
 * Lock story: one mutex, mu, guards everything below (nodes, ranges, lists, counters). It is held across the
 * driver's own requests (SETUPMAPPING, REMOVEMAPPING), as the Linux driver holds its per-inode lock across them:
 * mappings are rare next to the copies they serve, and a range must not be handed out twice while its mapping is
 * being made. It is not held across a copy: a range in use by a copy has busy > 0 and is never reclaimed. Nothing
 * the backend needs to answer those requests takes mu (its SHMEM_MAP is served by the frontend's own thread).
 */
#include "mount/dax.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/log.h"
#include "common/util.h"
#include "mount/dax_guard.h"

#define NODE_BUCKETS 4096u
#define PAGE_BYTES 4096u

struct mnode;

struct mrange {
	struct mnode *node;       /* NULL: on the free list */
	uint64_t idx;             /* file offset / MDAX_RANGE */
	bool writable;
	unsigned busy;            /* copies in progress */
	struct mrange *prev, *next; /* LRU list of mapped ranges (oldest first), or the free list (next only) */
	struct mrange *node_next; /* the node's ranges */
};

struct mnode {
	uint64_t nodeid;
	uint64_t size;
	uint64_t raised_seq;      /* seq when a WRITE last raised size */
	bool size_known;
	bool dax;                 /* its last attributes carried FUSE_ATTR_DAX */
	struct mrange *ranges;
	struct mnode *hnext;
};

struct mdax_stats {
	uint64_t setups, upgrades, removes, remove_msgs, reclaims, reads, read_bytes, writes, write_bytes, faults,
	         refused;
};

struct mdax {
	pthread_mutex_t mu;
	uint8_t *base;
	unsigned nranges;
	bool enabled;
	bool per_inode;           /* dax=inode: serve only nodes marked dax */
	uint64_t seq;
	struct mrange *ranges, *free, *lru_head, *lru_tail;
	struct mnode *buckets[NODE_BUCKETS];
	struct mdax_stats st;
};

struct mdax *mdax_new(uint8_t *base, uint64_t size)
{
	unsigned n = (unsigned)(size / MDAX_RANGE);
	struct mdax *d = n ? calloc(1, sizeof(*d)) : NULL;
	if (!d)
		return NULL;
	d->ranges = calloc(n, sizeof(*d->ranges));
	if (!d->ranges || dax_guard_init(base, size) < 0) {
		free(d->ranges);
		free(d);
		return NULL;
	}
	pthread_mutex_init(&d->mu, NULL);
	d->base = base;
	d->nranges = n;
	d->enabled = true;
	for (unsigned i = n; i-- > 0;) {
		d->ranges[i].next = d->free;
		d->free = &d->ranges[i];
	}
	return d;
}

void mdax_free(struct mdax *d)
{
	if (!d)
		return;
	const struct mdax_stats *s = &d->st;
	if (s->setups)
		log_info("dax: %llu SETUPMAPPING (%llu write upgrades), %llu ranges removed in %llu REMOVEMAPPING "
		         "(%llu reclaimed); from the window: %llu reads (%llu KiB), %llu writes (%llu KiB); %llu faults, "
		         "%llu mappings refused",
		         (unsigned long long)s->setups, (unsigned long long)s->upgrades, (unsigned long long)s->removes,
		         (unsigned long long)s->remove_msgs, (unsigned long long)s->reclaims, (unsigned long long)s->reads,
		         (unsigned long long)(s->read_bytes >> 10), (unsigned long long)s->writes,
		         (unsigned long long)(s->write_bytes >> 10), (unsigned long long)s->faults,
		         (unsigned long long)s->refused);
	for (unsigned i = 0; i < NODE_BUCKETS; i++) {
		while (d->buckets[i]) {
			struct mnode *n = d->buckets[i];
			d->buckets[i] = n->hnext;
			free(n);
		}
	}
	free(d->ranges);
	pthread_mutex_destroy(&d->mu);
	free(d);
}

void mdax_per_inode(struct mdax *d)
{
	pthread_mutex_lock(&d->mu);
	d->per_inode = true;
	pthread_mutex_unlock(&d->mu);
}

/* mu held: whether reads and writes of n may go through the window. */
static bool servable(const struct mdax *d, const struct mnode *n)
{
	return d->enabled && n && n->size_known && (!d->per_inode || n->dax);
}

void mdax_disable(struct mdax *d, const char *why)
{
	pthread_mutex_lock(&d->mu);
	bool was = d->enabled;
	d->enabled = false;
	pthread_mutex_unlock(&d->mu);
	if (was)
		log_warn("DAX is not available (%s): reads and writes go to the backend", why);
}

bool mdax_enabled(struct mdax *d)
{
	pthread_mutex_lock(&d->mu);
	bool on = d->enabled;
	pthread_mutex_unlock(&d->mu);
	return on;
}

/* ---- nodes --------------------------------------------------------------------------------------------------- */

static struct mnode **bucket(struct mdax *d, uint64_t nodeid)
{
	return &d->buckets[(nodeid * 0x9e3779b97f4a7c15ull) >> 52];
}

static struct mnode *find_node(struct mdax *d, uint64_t nodeid)
{
	struct mnode *n = *bucket(d, nodeid);
	while (n && n->nodeid != nodeid)
		n = n->hnext;
	return n;
}

uint64_t mdax_seq(struct mdax *d)
{
	pthread_mutex_lock(&d->mu);
	uint64_t s = d->seq;
	pthread_mutex_unlock(&d->mu);
	return s;
}

void mdax_attr(struct mdax *d, uint64_t nodeid, const struct fuse_attr *attr, uint64_t seq)
{
	if (!nodeid)
		return;
	pthread_mutex_lock(&d->mu);
	struct mnode *n = find_node(d, nodeid);
	if (!n && S_ISREG(attr->mode) && (n = calloc(1, sizeof(*n)))) {
		n->nodeid = nodeid;
		n->hnext = *bucket(d, nodeid);
		*bucket(d, nodeid) = n;
	}
	if (n)
		n->dax = attr->flags & FUSE_ATTR_DAX;
	if (n && !S_ISREG(attr->mode)) {
		n->size_known = false; /* never served: only regular files have data in the window */
	} else if (n && n->raised_seq > seq) {
		/* The size changed after this request went out (a WRITE or FALLOCATE completed meanwhile): the kernel
		 * keeps the larger size of a WRITE (attr_version), so do we, else a read clipped short would shrink its
		 * i_size; a size we did not know stays unknown until an attr sent after the change. */
		if (n->size_known)
			n->size = MAX(n->size, attr->size);
	} else if (n) {
		n->size = attr->size;
		n->size_known = true;
	}
	pthread_mutex_unlock(&d->mu);
}

void mdax_grew(struct mdax *d, uint64_t nodeid, uint64_t end)
{
	pthread_mutex_lock(&d->mu);
	struct mnode *n = find_node(d, nodeid);
	if (n && (!n->size_known || end > n->size)) {
		if (n->size_known)
			n->size = end;
		n->raised_seq = ++d->seq;
	}
	pthread_mutex_unlock(&d->mu);
}

void mdax_eof(struct mdax *d, uint64_t nodeid, uint64_t end)
{
	pthread_mutex_lock(&d->mu);
	struct mnode *n = find_node(d, nodeid);
	if (n && n->size_known && end < n->size)
		n->size = end;
	pthread_mutex_unlock(&d->mu);
}

void mdax_size_unknown(struct mdax *d, uint64_t nodeid)
{
	pthread_mutex_lock(&d->mu);
	struct mnode *n = find_node(d, nodeid);
	if (n)
		n->size_known = false;
	d->seq++; /* an attr already on its way may not show the change: it must not make the size known again */
	if (n)
		n->raised_seq = d->seq;
	pthread_mutex_unlock(&d->mu);
}

/* ---- ranges -------------------------------------------------------------------------------------------------- */

static uint64_t moffset(const struct mdax *d, const struct mrange *r)
{
	return (uint64_t)(r - d->ranges) * MDAX_RANGE;
}

static void lru_unlink(struct mdax *d, struct mrange *r)
{
	*(r->prev ? &r->prev->next : &d->lru_head) = r->next;
	*(r->next ? &r->next->prev : &d->lru_tail) = r->prev;
	r->prev = r->next = NULL;
}

static void lru_append(struct mdax *d, struct mrange *r)
{
	r->prev = d->lru_tail;
	r->next = NULL;
	*(d->lru_tail ? &d->lru_tail->next : &d->lru_head) = r;
	d->lru_tail = r;
}

/* Takes r off its node and the LRU list and puts it on the free list. */
static void range_free(struct mdax *d, struct mrange *r)
{
	struct mrange **p = &r->node->ranges;
	while (*p != r)
		p = &(*p)->node_next;
	*p = r->node_next;
	lru_unlink(d, r);
	r->node = NULL;
	r->writable = false;
	r->next = d->free;
	d->free = r;
}

/* One REMOVEMAPPING for n ranges of one node. Linux frees the ranges whatever the answer: so do we. */
static void remove_ranges(struct mdax *d, const struct mdax_io *io, struct mrange **rs, unsigned n)
{
	struct {
		struct fuse_removemapping_in in;
		struct fuse_removemapping_one one[MDAX_REMOVE_MAX];
	} __attribute__((packed)) msg = { .in = { .count = n } };
	uint64_t nodeid = rs[0]->node->nodeid;
	for (unsigned i = 0; i < n; i++)
		msg.one[i] = (struct fuse_removemapping_one){ .moffset = moffset(d, rs[i]), .len = MDAX_RANGE };
	int rc = io->call(io->ctx, FUSE_REMOVEMAPPING, nodeid, &msg,
	                  (uint32_t)(sizeof(msg.in) + n * sizeof(msg.one[0])));
	if (rc < 0 && rc != -ENOTCONN)
		log_debug("dax: REMOVEMAPPING of %u ranges of node %llu: %s", n, (unsigned long long)nodeid,
		          strerror(-rc));
	d->st.removes += n;
	d->st.remove_msgs++;
	for (unsigned i = 0; i < n; i++)
		range_free(d, rs[i]);
}

/* A free range: from the free list, else the least recently used one no copy is using. */
static struct mrange *alloc_range(struct mdax *d, const struct mdax_io *io)
{
	struct mrange *r = d->free;
	if (r) {
		d->free = r->next;
		r->next = NULL;
		return r;
	}
	for (r = d->lru_head; r && r->busy; r = r->next)
		;
	if (!r)
		return NULL; /* every range is being copied from: forward rather than wait */
	remove_ranges(d, io, &r, 1);
	d->st.reclaims++;
	r = d->free;
	d->free = r->next;
	r->next = NULL;
	return r;
}

static int setup(struct mdax *d, const struct mdax_io *io, struct mnode *n, struct mrange *r, uint64_t idx,
                 bool write)
{
	struct fuse_setupmapping_in in = {
		.fh = UINT64_MAX, .foffset = idx * MDAX_RANGE, .len = MDAX_RANGE, .moffset = moffset(d, r),
		.flags = FUSE_SETUPMAPPING_FLAG_READ | (write ? FUSE_SETUPMAPPING_FLAG_WRITE : 0),
	};
	int rc = io->call(io->ctx, FUSE_SETUPMAPPING, n->nodeid, &in, sizeof(in));
	if (rc == -ENOSYS) {
		d->enabled = false;
		log_warn("DAX is not available (the backend answers SETUPMAPPING with ENOSYS): reads and writes go to "
		         "the backend");
	} else if (rc < 0) {
		d->st.refused++;
		log_debug("dax: SETUPMAPPING of node %llu at %llu: %s", (unsigned long long)n->nodeid,
		          (unsigned long long)in.foffset, strerror(-rc));
	} else {
		d->st.setups++;
	}
	return rc;
}

/* The range that maps 2 MiB number idx of n, mapped (writable if write) and marked busy; NULL: forward. */
static struct mrange *get_range(struct mdax *d, const struct mdax_io *io, struct mnode *n, uint64_t idx, bool write)
{
	struct mrange *r = n->ranges;
	while (r && r->idx != idx)
		r = r->node_next;
	if (r && write && !r->writable) {
		/* Linux upgrades a read mapping by asking again, same range, with WRITE. */
		if (setup(d, io, n, r, idx, true) < 0)
			return NULL;
		r->writable = true;
		d->st.upgrades++;
	}
	if (!r) {
		if (!(r = alloc_range(d, io)))
			return NULL;
		if (setup(d, io, n, r, idx, write) < 0) {
			r->next = d->free;
			d->free = r;
			return NULL;
		}
		*r = (struct mrange){ .node = n, .idx = idx, .writable = write, .node_next = n->ranges };
		n->ranges = r;
	} else {
		lru_unlink(d, r);
	}
	lru_append(d, r);
	r->busy++;
	return r;
}

/*
 * Copies [off, off + len) of nodeid between the window and buf, one range at a time: 0, or negative when any
 * part could not be (the caller forwards the whole request). Called with mu held; drops it for each copy.
 */
static int copy_io(struct mdax *d, const struct mdax_io *io, uint64_t nodeid, uint64_t off, uint64_t len,
                   uint8_t *buf, bool write)
{
	for (uint64_t done = 0; done < len;) {
		uint64_t pos = off + done, in = pos % MDAX_RANGE, chunk = MIN(len - done, MDAX_RANGE - in);
		/* Looked up again each time: the node may be another one's by now only if the kernel forgot it while
		 * it had a request in flight, which it does not; then this finds nothing and forwards. */
		struct mnode *n = find_node(d, nodeid);
		struct mrange *r = n && d->enabled ? get_range(d, io, n, pos / MDAX_RANGE, write) : NULL;
		if (!r)
			return -EAGAIN;
		uint8_t *w = d->base + moffset(d, r) + in;
		pthread_mutex_unlock(&d->mu);
		int rc = write ? dax_guard_copy(w, buf + done, chunk) : dax_guard_copy(buf + done, w, chunk);
		pthread_mutex_lock(&d->mu);
		r->busy--;
		if (rc < 0) {
			/* The file shrank under the mapping: its size is not what we think until attributes say again. */
			d->st.faults++;
			if ((n = find_node(d, nodeid)))
				n->size_known = false;
			return rc;
		}
		done += chunk;
	}
	return 0;
}

ssize_t mdax_read(struct mdax *d, const struct mdax_io *io, uint64_t nodeid, uint64_t off, uint32_t size,
                  void *dst)
{
	ssize_t rc = -EAGAIN;
	pthread_mutex_lock(&d->mu);
	struct mnode *n = find_node(d, nodeid);
	if (servable(d, n) && off < n->size && size) {
		uint64_t len = MIN((uint64_t)size, n->size - off);
		rc = copy_io(d, io, nodeid, off, len, dst, false);
		if (rc == 0) {
			rc = (ssize_t)len;
			d->st.reads++;
			d->st.read_bytes += len;
		}
	}
	pthread_mutex_unlock(&d->mu);
	return rc;
}

ssize_t mdax_write(struct mdax *d, const struct mdax_io *io, uint64_t nodeid, uint64_t off, uint32_t size,
                   const void *src)
{
	ssize_t rc = -EAGAIN;
	pthread_mutex_lock(&d->mu);
	struct mnode *n = find_node(d, nodeid);
	/* Below the page that holds the end: the backend writes that page back only at its sync points. */
	uint64_t whole = n ? n->size & ~(uint64_t)(PAGE_BYTES - 1) : 0;
	if (servable(d, n) && size && size <= whole && off <= whole - size) {
		rc = copy_io(d, io, nodeid, off, size, (uint8_t *)src, true);
		if (rc == 0) {
			rc = size;
			d->st.writes++;
			d->st.write_bytes += size;
		}
	}
	pthread_mutex_unlock(&d->mu);
	return rc;
}

void mdax_forget(struct mdax *d, const struct mdax_io *io, uint64_t nodeid)
{
	struct mrange *batch[MDAX_REMOVE_MAX];
	pthread_mutex_lock(&d->mu);
	struct mnode **p = bucket(d, nodeid);
	while (*p && (*p)->nodeid != nodeid)
		p = &(*p)->hnext;
	struct mnode *n = *p;
	if (n) {
		while (n->ranges) {
			unsigned k = 0;
			for (struct mrange *r = n->ranges; r && k < MDAX_REMOVE_MAX; r = r->node_next)
				batch[k++] = r;
			remove_ranges(d, io, batch, k);
		}
		*p = n->hnext;
		free(n);
	}
	pthread_mutex_unlock(&d->mu);
}

/*
 * vufs-microbench: raw FUSE requests straight onto a vhost-user-fs backend's request queue (no kernel in between),
 * or the same system calls made directly on the host directory (--native: the physical limit).
 *
 *   vufs-microbench --socket=PATH --dir=DIR [options]    DIR is the host path of the directory the backend shares
 *   vufs-microbench --native DIR [options]               (or --native --dir=DIR)
 *
 * We play the guest driver with vu_frontend (shared memfd, one hiprio queue, one or more request queues), send
 * FUSE INIT, then keep QD requests in flight on each request queue driven (one per slot; a slot's multi-request
 * operation, e.g. CREATE then RELEASE, is a chain of dependent requests) for a fixed time, measuring each operation
 * from its first submission to its last completion with CLOCK_MONOTONIC. Each request queue has a thread of its
 * own (as each vCPU of a guest submits on its own queue) that reaps its used ring and sleeps on the queue's call
 * eventfd when the ring is empty (as a guest vCPU waits for an interrupt), or spins (--spin), or spins up to
 * --poll-us before sleeping (as KVM halt-polls a vCPU that waits: 200 µs by default there). With --queues=1,2,4
 * the connection has 4 request queues and each measurement runs with 1, then 2, then 4 of them driven at once,
 * started together and stopped at the same deadline.
 * FORGETs go on the hiprio queue as BATCH_FORGET after each measurement (not timed), so lookup counts stay bounded.
 *
 * Each line "RESULT target=L op=O qd=N queues=Q ops_s=X p50_us=Y p99_us=Z reps=R ops=K" is the median over R
 * repetitions of the operations per second (all Q queues' operations over their common window) and of each
 * repetition's latency percentiles (over every queue's operations). Native mode is single-threaded and reports
 * qd=1 queues=1 only.
 *
 * The bench tree, made on the host under DIR/vufs-mb/ (kept between runs, except the create directory):
 *   names/f00000..  --entries empty files (LOOKUP names, the READDIRPLUS directory)
 *   create/         CREATE+RELEASE makes c<N> here; UNLINK removes the files the same repetition created, and
 *                   only then are they forgotten (as the kernel does: the inode is referenced while it unlinks)
 *   data.bin        --file-mib MiB of data for READ/WRITE, accessed sequentially and wrapping around (queue K of
 *                   Q starts at K/Q of it)
 *   names-qK/, data-qK.bin   with --private, queue K's own (K > 0; queue 0 uses names/ and data.bin)
 * CREATE on several queues makes c<K>.<N> (queue K), each queue CREATE_BUDGET/Q files at most per repetition.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <linux/fuse.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "transport/vhost_user.h"
#include "transport/vu_frontend.h"

#define PAGE 4096u
#define KIB 1024u
#define MIB (1024u * 1024u)
#define HIPRIO 0
#define REQQ 1
#define MAX_QD 1024
/* A repetition of CREATE stops after this many files: the backend holds an fd for each created inode until the
 * UNLINK repetition and the FORGETs after it, and a hard limit of 20,000 fds is common in containers. */
#define CREATE_BUDGET 12000u
#define READDIR_SIZE 4096u       /* what the Linux FUSE client asks per READDIRPLUS (one page) */
#define FORGET_CHUNK 8192u       /* bytes per BATCH_FORGET request */
#define FORGET_CHUNKS 8u
#define FORGET_PER_CHUNK ((FORGET_CHUNK - sizeof(struct fuse_in_header) - sizeof(struct fuse_batch_forget_in)) / \
                          sizeof(struct fuse_forget_one))
#define STALL_MS 20000           /* a backend silent this long with requests out is stuck */

enum op { OP_LOOKUP, OP_GETATTR, OP_CREATE, OP_UNLINK, OP_READDIRPLUS, OP_READ4K, OP_READ1M, OP_WRITE4K,
          OP_WRITE1M, OP_COUNT };

static const struct op_info {
	const char *name;
	uint32_t size; /* data bytes for READ/WRITE */
	bool read, write;
} ops[OP_COUNT] = {
	[OP_LOOKUP] = { "lookup", 0, false, false },
	[OP_GETATTR] = { "getattr", 0, false, false },
	[OP_CREATE] = { "create", 0, false, false },
	[OP_UNLINK] = { "unlink", 0, false, false },
	[OP_READDIRPLUS] = { "readdirplus", 0, false, false },
	[OP_READ4K] = { "read4k", 4 * KIB, true, false },
	[OP_READ1M] = { "read1m", MIB, true, false },
	[OP_WRITE4K] = { "write4k", 4 * KIB, false, true },
	[OP_WRITE1M] = { "write1m", MIB, false, true },
};

struct options {
	const char *socket, *dir, *label;
	bool native, spin;
	bool private_files;    /* each request queue its own names directory and data file */
	unsigned queues;       /* request queues connected: the largest of nq[] */
	unsigned nq[8], nnq;   /* how many of them are driven at once, one thread each, in turn */
	unsigned poll_us;      /* spin this long before sleeping, as KVM's halt polling does for a waiting vCPU */
	bool want[OP_COUNT];
	unsigned qd[8], nqd;
	unsigned reps, ms, warmup_ms, entries, file_mib, queue_size;
};

static struct options opt = {
	.queues = 1, .nq = { 1 }, .nnq = 1, .reps = 5, .ms = 1000, .warmup_ms = 100, .entries = 1000, .file_mib = 64, .queue_size = 1024,
};

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("vufs-microbench: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(1);
}

/* ---- latency samples and results ---- */

struct samples {
	uint64_t *v;
	size_t n, cap;
};

static void samples_add(struct samples *s, uint64_t ns)
{
	if (s->n == s->cap) {
		s->cap = s->cap ? 2 * s->cap : 65536;
		s->v = realloc(s->v, s->cap * sizeof(*s->v));
		if (!s->v)
			die("out of memory");
	}
	s->v[s->n++] = ns;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double percentile_us(struct samples *s, double p)
{
	if (!s->n)
		return 0;
	qsort(s->v, s->n, sizeof(*s->v), cmp_u64);
	size_t i = (size_t)(p * (double)(s->n - 1) + 0.5);
	return (double)s->v[i] / 1000.0;
}

static double median(double *v, unsigned n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

struct rep_result {
	double ops_s, p50, p99;
	uint64_t ops;
};

static unsigned report_queues = 1;
static void report(enum op op, unsigned qd, const struct rep_result *r, unsigned n)
{
	double a[64], b[64], c[64];
	uint64_t total = 0;
	for (unsigned i = 0; i < n; i++) {
		a[i] = r[i].ops_s;
		b[i] = r[i].p50;
		c[i] = r[i].p99;
		total += r[i].ops;
	}
	printf("RESULT target=%s op=%s qd=%u queues=%u ops_s=%.1f p50_us=%.2f p99_us=%.2f reps=%u ops=%" PRIu64 "\n",
	       opt.label, ops[op].name, qd, report_queues, median(a, n), median(b, n), median(c, n), n, total);
	fflush(stdout);
}

/* One measurement: how long, how many operations at most, and what it collected. */
struct run {
	enum op op;
	unsigned qd;
	bool record;
	uint64_t deadline, budget;
	uint64_t started, done, inflight;
	uint64_t t_start, t_last;
	struct samples lat;
};

static void run_begin(struct run *r, enum op op, unsigned qd, uint64_t ms, uint64_t budget, bool record)
{
	r->op = op;
	r->qd = qd;
	r->record = record;
	r->budget = budget;
	r->started = r->done = r->inflight = 0;
	r->lat.n = 0;
	r->t_start = r->t_last = now_ns();
	r->deadline = r->t_start + ms * 1000000ull;
}

static bool run_may_start(const struct run *r, uint64_t now)
{
	return r->started < r->budget && now < r->deadline;
}

static void run_finish_one(struct run *r, uint64_t t0, uint64_t now)
{
	r->done++;
	r->inflight--;
	r->t_last = now;
	if (r->record)
		samples_add(&r->lat, now - t0);
}

static struct rep_result run_result(struct run *r)
{
	struct rep_result res = { .ops = r->done };
	double secs = (double)(r->t_last - r->t_start) / 1e9;
	res.ops_s = secs > 0 ? (double)r->done / secs : 0;
	res.p50 = percentile_us(&r->lat, 0.50);
	res.p99 = percentile_us(&r->lat, 0.99);
	return res;
}

/* ---- the bench tree on the host ---- */

struct tree {
	int root, names, create, data; /* dir fds, data.bin O_RDWR */
	uint64_t file_bytes;
};

static void name_of(char *buf, size_t len, unsigned i)
{
	snprintf(buf, len, "f%05u", i);
}

static void empty_dir(int dfd)
{
	int fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *e;
	if (!d)
		die("cannot list the create directory: %s", strerror(errno));
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			unlinkat(dfd, e->d_name, 0);
	closedir(d);
}

static int open_subdir(int parent, const char *name)
{
	if (mkdirat(parent, name, 0755) < 0 && errno != EEXIST)
		die("mkdir %s: %s", name, strerror(errno));
	int fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		die("open %s: %s", name, strerror(errno));
	return fd;
}

/* Makes directory name under root hold exactly --entries empty files f00000.. (kept when it already does). */
static int prepare_names(int root, const char *dirname)
{
	int dfd = open_subdir(root, dirname);
	char name[32];
	unsigned have = 0;
	DIR *d = fdopendir(openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
	struct dirent *e;
	bool exact = d != NULL;
	while (d && (e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		unsigned i;
		char tail;
		if (sscanf(e->d_name, "f%5u%c", &i, &tail) != 1 || i >= opt.entries || strlen(e->d_name) != 6)
			exact = false;
		else
			have++;
	}
	if (d)
		closedir(d);
	if (!exact || have != opt.entries) {
		empty_dir(dfd);
		for (unsigned i = 0; i < opt.entries; i++) {
			name_of(name, sizeof(name), i);
			int fd = openat(dfd, name, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
			if (fd < 0)
				die("create %s/%s: %s", dirname, name, strerror(errno));
			close(fd);
		}
	}
	return dfd;
}

/* Makes file name under root --file-mib MiB of data (kept when it already is); returns it open O_RDWR. */
static int prepare_data(int root, const char *name, uint64_t bytes)
{
	int fd = openat(root, name, O_CREAT | O_RDWR | O_CLOEXEC, 0644);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0)
		die("%s: %s", name, strerror(errno));
	if ((uint64_t)st.st_size != bytes || st.st_blocks * 512 < (off_t)bytes) {
		uint8_t *buf = malloc(MIB);
		if (!buf || ftruncate(fd, 0) < 0)
			die("%s: %s", name, strerror(errno));
		for (unsigned i = 0; i < MIB; i++)
			buf[i] = (uint8_t)(i * 7 + 1);
		for (uint64_t off = 0; off < bytes; off += MIB)
			if (pwrite(fd, buf, MIB, (off_t)off) != (ssize_t)MIB)
				die("writing %s: %s", name, strerror(errno));
		fsync(fd);
		free(buf);
	}
	return fd;
}

/* The names directory and data file of request queue k (0-based): shared by all queues unless --private. */
static void queue_names(unsigned k, char *dir, char *data, size_t len)
{
	if (!opt.private_files || k == 0) {
		snprintf(dir, len, "names");
		snprintf(data, len, "data.bin");
	} else {
		snprintf(dir, len, "names-q%u", k);
		snprintf(data, len, "data-q%u.bin", k);
	}
}

static void tree_prepare(struct tree *t)
{
	int top = open(opt.dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (top < 0)
		die("%s: %s", opt.dir, strerror(errno));
	t->root = open_subdir(top, "vufs-mb");
	close(top);
	t->create = open_subdir(t->root, "create");
	empty_dir(t->create);
	t->file_bytes = (uint64_t)opt.file_mib * MIB;
	t->names = prepare_names(t->root, "names");
	t->data = prepare_data(t->root, "data.bin", t->file_bytes);
	for (unsigned k = 1; opt.private_files && k < opt.queues; k++) {
		char dir[32], data[32];
		queue_names(k, dir, data, sizeof(dir));
		close(prepare_names(t->root, dir));
		close(prepare_data(t->root, data, t->file_bytes));
	}
}

/* CREATE and UNLINK run as a pair (UNLINK removes what CREATE made), under CREATE's turn. */
static bool should_run(enum op op)
{
	if (op == OP_UNLINK)
		return false;
	if (op == OP_CREATE)
		return opt.want[OP_CREATE] || opt.want[OP_UNLINK];
	return opt.want[op];
}

/* ---- native: the same work as system calls on the host directory, one thread ---- */

static uint8_t *native_buf;
static uint64_t native_off, native_create_next;

static void native_one(struct tree *t, enum op op, uint64_t i, uint64_t create_base)
{
	char name[32];
	struct statx sx;
	int fd;

	switch (op) {
	case OP_LOOKUP:
		name_of(name, sizeof(name), (unsigned)(i % opt.entries));
		fd = openat(t->names, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0 || statx(fd, "", AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW, STATX_BASIC_STATS, &sx) < 0)
			die("native lookup %s: %s", name, strerror(errno));
		close(fd);
		break;
	case OP_GETATTR:
		if (statx(t->data, "", AT_EMPTY_PATH, STATX_BASIC_STATS, &sx) < 0)
			die("native statx: %s", strerror(errno));
		break;
	case OP_CREATE:
		snprintf(name, sizeof(name), "c%" PRIu64, native_create_next++);
		fd = openat(t->create, name, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0644);
		if (fd < 0)
			die("native create %s: %s", name, strerror(errno));
		close(fd);
		break;
	case OP_UNLINK:
		snprintf(name, sizeof(name), "c%" PRIu64, create_base + i);
		if (unlinkat(t->create, name, 0) < 0)
			die("native unlink %s: %s", name, strerror(errno));
		break;
	case OP_READDIRPLUS: {
		static char dbuf[32768]; /* glibc's readdir buffer size */
		fd = openat(t->names, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd < 0)
			die("native opendir: %s", strerror(errno));
		ssize_t n;
		while ((n = getdents64(fd, dbuf, sizeof(dbuf))) > 0) {
			for (ssize_t pos = 0; pos < n;) {
				struct dirent64 *e = (struct dirent64 *)(dbuf + pos);
				pos += e->d_reclen;
				if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
					continue;
				if (statx(fd, e->d_name, AT_SYMLINK_NOFOLLOW, STATX_BASIC_STATS, &sx) < 0)
					die("native statx %s: %s", e->d_name, strerror(errno));
			}
		}
		if (n < 0)
			die("native getdents64: %s", strerror(errno));
		close(fd);
		break;
	}
	default: {
		uint32_t size = ops[op].size;
		if (native_off + size > t->file_bytes)
			native_off = 0;
		ssize_t n = ops[op].read ? pread(t->data, native_buf, size, (off_t)native_off)
		                         : pwrite(t->data, native_buf, size, (off_t)native_off);
		if (n != (ssize_t)size)
			die("native %s: %s", ops[op].name, n < 0 ? strerror(errno) : "short");
		native_off += size;
		break;
	}
	}
}

static struct rep_result native_measure(struct tree *t, struct run *r, enum op op, uint64_t ms, uint64_t budget,
                                        bool record, uint64_t create_base)
{
	run_begin(r, op, 1, ms, budget, record);
	for (uint64_t now = now_ns(); run_may_start(r, now);) {
		uint64_t t0 = now;
		r->started++;
		r->inflight++;
		native_one(t, op, r->started - 1, create_base);
		now = now_ns();
		run_finish_one(r, t0, now);
	}
	return run_result(r);
}

static void native_main(struct tree *t)
{
	struct run r = { 0 };
	struct rep_result res[64], res2[64];
	native_buf = aligned_alloc(PAGE, MIB);
	if (!native_buf)
		die("out of memory");
	memset(native_buf, 0x5a, MIB);
	for (enum op op = 0; op < OP_COUNT; op++) {
		if (!should_run(op))
			continue;
		if (op == OP_CREATE) {
			uint64_t base = native_create_next;
			native_measure(t, &r, OP_CREATE, opt.warmup_ms, UINT64_MAX, false, 0);
			native_measure(t, &r, OP_UNLINK, 10 * (uint64_t)opt.ms + 10000, native_create_next - base, false, base);
			for (unsigned k = 0; k < opt.reps; k++) {
				base = native_create_next;
				res[k] = native_measure(t, &r, OP_CREATE, opt.ms, UINT64_MAX, true, 0);
				res2[k] = native_measure(t, &r, OP_UNLINK, 10 * (uint64_t)opt.ms + 10000, native_create_next - base,
				                         true, base);
			}
			if (opt.want[OP_CREATE])
				report(OP_CREATE, 1, res, opt.reps);
			if (opt.want[OP_UNLINK])
				report(OP_UNLINK, 1, res2, opt.reps);
			continue;
		}
		native_measure(t, &r, op, opt.warmup_ms, UINT64_MAX, false, 0);
		for (unsigned k = 0; k < opt.reps; k++)
			res[k] = native_measure(t, &r, op, opt.ms, UINT64_MAX, true, 0);
		report(op, 1, res, opt.reps);
	}
	free(native_buf);
	free(r.lat.v);
}

/* ---- backend: FUSE requests on the virtqueues ---- */

/* nodeid -> lookups to forget (open addressing; nodeid 0 marks a free cell) */
struct forget_table {
	struct { uint64_t nodeid, n; } *cell;
	size_t cap, used;
};

static void ft_add(struct forget_table *ft, uint64_t nodeid, uint64_t n);

static void ft_grow(struct forget_table *ft)
{
	struct forget_table old = *ft;
	ft->cap = old.cap ? old.cap * 2 : 4096;
	ft->used = 0;
	ft->cell = calloc(ft->cap, sizeof(*ft->cell));
	if (!ft->cell)
		die("out of memory");
	for (size_t i = 0; i < old.cap; i++)
		if (old.cell[i].nodeid)
			ft_add(ft, old.cell[i].nodeid, old.cell[i].n);
	free(old.cell);
}

static void ft_add(struct forget_table *ft, uint64_t nodeid, uint64_t n)
{
	if (!nodeid)
		return;
	if (2 * (ft->used + 1) > ft->cap)
		ft_grow(ft);
	size_t i = (size_t)(nodeid * 0x9e3779b97f4a7c15ull >> 20) & (ft->cap - 1);
	while (ft->cell[i].nodeid && ft->cell[i].nodeid != nodeid)
		i = (i + 1) & (ft->cap - 1);
	if (!ft->cell[i].nodeid) {
		ft->cell[i].nodeid = nodeid;
		ft->used++;
	}
	ft->cell[i].n += n;
}

struct queue;

struct slot {
	struct queue *q;
	unsigned index;
	uint8_t *req, *rep, *data;
	uint64_t req_gpa, rep_gpa, data_gpa;
	uint64_t unique;
	uint32_t opcode;
	/* the operation under way */
	unsigned stage;
	uint64_t t0, fh, nodeid, off, entries;
};

/* One request queue and the thread that drives it: its own slots, generators and lookups to forget. */
struct queue {
	unsigned k;               /* 0-based request queue number */
	unsigned vq;              /* its virtqueue index: k + 1 (0 is hiprio) */
	struct slot *slots;
	bool kick;
	uint64_t unique;
	struct forget_table ft;   /* lookups made by this queue's measurements */
	uint64_t names_nid, data_nid, data_fh;
	uint64_t name_next, create_next, create_base, file_off;
	/* the measurement under way */
	struct run run;
	uint64_t budget;
	pthread_t thread;
};

struct bench {
	struct vu_frontend fe;
	struct queue *q;          /* opt.queues of them */
	unsigned nslots;          /* per queue */
	uint32_t data_max;
	uint64_t unique;          /* hiprio */
	bool kick_hiprio;
	unsigned forgets_out;
	uint8_t *fbuf;
	uint64_t fbuf_gpa;
	struct forget_table keep; /* the setup's lookups, forgotten at teardown */
	struct tree *tree;
	/* from setup */
	uint32_t max_write, minor;
	uint64_t init_flags;
	uint64_t root_nid, create_nid;
	uint64_t expect_entries;
	/* the measurement under way, the same for every queue */
	unsigned active;          /* queues 0..active-1 are driven */
	enum op op;
	unsigned qd;
	uint64_t ms;
	bool record;
	uint64_t deadline;
	pthread_barrier_t start;
};

static struct bench B;

/* Request ids: a counter per queue, the queue in the low bits, so no two queues ever use the same one. */
#define UNIQUE_SHIFT 5

/* Queues a request: header + arg + optional NUL-terminated name (+ the slot's data for WRITE); the reply room is
 * the out header plus out_len bytes (in the data buffer for READ, else after the header). Kicked later. */
static void submit(struct slot *s, uint32_t opcode, uint64_t nodeid, const void *arg, size_t arg_len,
                   const char *name, uint32_t data_len, uint32_t out_len, bool out_to_data)
{
	struct fuse_in_header *h = (struct fuse_in_header *)s->req;
	size_t len = sizeof(*h);
	if (arg_len)
		memcpy(s->req + len, arg, arg_len);
	len += arg_len;
	if (name) {
		size_t n = strlen(name) + 1;
		memcpy(s->req + len, name, n);
		len += n;
	}
	if (len > PAGE)
		die("request too long");
	*h = (struct fuse_in_header){ .len = (uint32_t)(len + data_len), .opcode = opcode,
	                              .unique = ++s->q->unique << UNIQUE_SHIFT | s->q->vq, .nodeid = nodeid, .uid = 0,
	                              .gid = 0, .pid = (uint32_t)getpid() };
	s->unique = h->unique;
	s->opcode = opcode;
	struct vq_seg seg[4];
	unsigned n_rd = 0, n = 0;
	seg[n++] = (struct vq_seg){ s->req_gpa, (uint32_t)len };
	if (data_len)
		seg[n++] = (struct vq_seg){ s->data_gpa, data_len };
	n_rd = n;
	seg[n++] = (struct vq_seg){ s->rep_gpa, sizeof(struct fuse_out_header) };
	if (out_len)
		seg[n++] = (struct vq_seg){ out_to_data ? s->data_gpa : s->rep_gpa + sizeof(struct fuse_out_header),
		                            out_len };
	struct vu_fe_queue *q = &B.fe.q[s->q->vq];
	pthread_mutex_lock(&q->lock);
	int rc = vq_driver_add(&q->vq, seg, n_rd, n - n_rd, s);
	pthread_mutex_unlock(&q->lock);
	if (rc < 0)
		die("adding a chain to request queue %u: %s", s->q->k, strerror(-rc));
	s->q->kick = true;
}

static void kick(unsigned vq, bool *pending)
{
	if (!*pending)
		return;
	struct vu_fe_queue *q = &B.fe.q[vq];
	pthread_mutex_lock(&q->lock);
	bool needed = vq_driver_kick_needed(&q->vq);
	pthread_mutex_unlock(&q->lock);
	if (needed)
		eventfd_write(q->kick_fd, 1);
	*pending = false;
}

/* Checks the reply header; returns the payload length. */
static uint32_t reply_payload(struct slot *s, uint32_t used_len)
{
	struct fuse_out_header h;
	if (used_len < sizeof(h))
		die("reply to opcode %u of %u bytes", s->opcode, used_len);
	memcpy(&h, s->rep, sizeof(h));
	if (h.unique != s->unique || h.len != used_len)
		die("reply to opcode %u does not match its request (unique %" PRIu64 "/%" PRIu64 ", len %u/%u)", s->opcode,
		    (uint64_t)h.unique, s->unique, h.len, used_len);
	if (h.error)
		die("opcode %u failed: %s", s->opcode, strerror(-h.error));
	return used_len - (uint32_t)sizeof(h);
}

static void *payload(struct slot *s)
{
	return s->rep + sizeof(struct fuse_out_header);
}

/* Takes every used entry of virtqueue vq; on a request queue, hands each to cb. Returns how many. */
static unsigned reap(unsigned vq, void (*cb)(struct slot *, uint32_t, void *), void *arg)
{
	struct vu_fe_queue *q = &B.fe.q[vq];
	unsigned n = 0;
	for (;;) {
		void *token;
		uint32_t len;
		pthread_mutex_lock(&q->lock);
		int rc = vq_driver_get_used(&q->vq, &token, &len);
		pthread_mutex_unlock(&q->lock);
		if (rc < 0)
			die("queue %u: the backend broke the ring protocol", vq);
		if (rc == 0)
			return n;
		n++;
		if (vq == HIPRIO)
			B.forgets_out--;
		else
			cb(token, len, arg);
	}
}

/* Sleeps until virtqueue vq may have used entries (or spins with --spin). */
static void wait_used(unsigned vq)
{
	struct vu_fe_queue *q = &B.fe.q[vq];
	if (opt.spin || opt.poll_us) {
		uint64_t start = now_ns();
		uint64_t limit = start + (opt.spin ? (uint64_t)STALL_MS * 1000000ull : (uint64_t)opt.poll_us * 1000ull);
		while (!vq_driver_has_used(&q->vq)) {
			__builtin_ia32_pause();
			if (now_ns() <= limit)
				continue;
			if (opt.spin)
				die("the backend has not answered for %d s", STALL_MS / 1000);
			break; /* --poll-us ran out: sleep */
		}
		if (vq_driver_has_used(&q->vq))
			return;
	}
	pthread_mutex_lock(&q->lock);
	bool arrived = vq_driver_arm(&q->vq);
	pthread_mutex_unlock(&q->lock);
	if (arrived)
		return;
	struct pollfd p = { .fd = q->call_fd, .events = POLLIN };
	int rc;
	do
		rc = poll(&p, 1, STALL_MS);
	while (rc < 0 && errno == EINTR);
	if (rc == 0)
		die("the backend has not answered for %d s", STALL_MS / 1000);
	eventfd_t v;
	eventfd_read(q->call_fd, &v);
}

/* Sends every lookup of ft as BATCH_FORGET on the hiprio queue, waits until the backend took them all, and
 * empties ft. Only while no request queue is driven (one thread uses hiprio). */
static void forget_flush(struct forget_table *ft)
{
	size_t i = 0;
	while (i < ft->cap) {
		unsigned chunk = 0;
		for (; chunk < FORGET_CHUNKS && i < ft->cap; chunk++) {
			uint8_t *p = B.fbuf + chunk * FORGET_CHUNK;
			struct fuse_forget_one *one = (struct fuse_forget_one *)(p + sizeof(struct fuse_in_header) +
			                                                         sizeof(struct fuse_batch_forget_in));
			uint32_t count = 0;
			for (; i < ft->cap && count < FORGET_PER_CHUNK; i++) {
				if (!ft->cell[i].nodeid)
					continue;
				one[count].nodeid = ft->cell[i].nodeid;
				one[count].nlookup = ft->cell[i].n;
				count++;
			}
			if (!count)
				break;
			uint32_t len = (uint32_t)(sizeof(struct fuse_in_header) + sizeof(struct fuse_batch_forget_in) +
			                          count * sizeof(struct fuse_forget_one));
			*(struct fuse_in_header *)p = (struct fuse_in_header){ .len = len, .opcode = FUSE_BATCH_FORGET,
			                                                        .unique = ++B.unique << UNIQUE_SHIFT };
			*(struct fuse_batch_forget_in *)(p + sizeof(struct fuse_in_header)) =
				(struct fuse_batch_forget_in){ .count = count };
			struct vq_seg seg = { B.fbuf_gpa + chunk * FORGET_CHUNK, len };
			struct vu_fe_queue *q = &B.fe.q[HIPRIO];
			pthread_mutex_lock(&q->lock);
			int rc = vq_driver_add(&q->vq, &seg, 1, 0, p);
			pthread_mutex_unlock(&q->lock);
			if (rc < 0)
				die("adding a chain to the hiprio queue: %s", strerror(-rc));
			B.forgets_out++;
			B.kick_hiprio = true;
		}
		kick(HIPRIO, &B.kick_hiprio);
		while (B.forgets_out) {
			if (!reap(HIPRIO, NULL, NULL))
				wait_used(HIPRIO);
		}
	}
	if (ft->cell)
		memset(ft->cell, 0, ft->cap * sizeof(*ft->cell));
	ft->used = 0;
}

/* ---- one operation as a little state machine per slot ---- */

static void start_first(struct slot *s, enum op op, uint64_t i)
{
	struct queue *q = s->q;
	char name[32];
	s->stage = 0;
	switch (op) {
	case OP_LOOKUP:
		name_of(name, sizeof(name), (unsigned)(q->name_next++ % opt.entries));
		submit(s, FUSE_LOOKUP, q->names_nid, NULL, 0, name, 0, sizeof(struct fuse_entry_out), false);
		break;
	case OP_GETATTR: {
		struct fuse_getattr_in in = { 0 };
		submit(s, FUSE_GETATTR, q->data_nid, &in, sizeof(in), NULL, 0, sizeof(struct fuse_attr_out), false);
		break;
	}
	case OP_CREATE: {
		struct fuse_create_in in = { .flags = O_WRONLY | O_CREAT | O_EXCL, .mode = S_IFREG | 0644 };
		snprintf(name, sizeof(name), "c%u.%" PRIu64, q->k, q->create_next++);
		submit(s, FUSE_CREATE, B.create_nid, &in, sizeof(in), name, 0,
		       sizeof(struct fuse_entry_out) + sizeof(struct fuse_open_out), false);
		break;
	}
	case OP_UNLINK:
		snprintf(name, sizeof(name), "c%u.%" PRIu64, q->k, q->create_base + i);
		submit(s, FUSE_UNLINK, B.create_nid, NULL, 0, name, 0, 0, false);
		break;
	case OP_READDIRPLUS: {
		struct fuse_open_in in = { .flags = O_RDONLY | O_DIRECTORY };
		s->entries = 0;
		submit(s, FUSE_OPENDIR, q->names_nid, &in, sizeof(in), NULL, 0, sizeof(struct fuse_open_out), false);
		break;
	}
	default: {
		uint32_t size = ops[op].size;
		if (q->file_off + size > B.tree->file_bytes)
			q->file_off = 0;
		s->off = q->file_off;
		q->file_off += size;
		if (ops[op].read) {
			struct fuse_read_in in = { .fh = q->data_fh, .offset = s->off, .size = size, .flags = O_RDWR };
			submit(s, FUSE_READ, q->data_nid, &in, sizeof(in), NULL, 0, size, true);
		} else {
			struct fuse_write_in in = { .fh = q->data_fh, .offset = s->off, .size = size, .flags = O_RDWR };
			submit(s, FUSE_WRITE, q->data_nid, &in, sizeof(in), NULL, size, sizeof(struct fuse_write_out), false);
		}
		break;
	}
	}
}

static void readdirplus_next(struct slot *s)
{
	struct fuse_read_in in = { .fh = s->fh, .offset = s->off, .size = READDIR_SIZE, .flags = O_RDONLY };
	s->stage = 1;
	submit(s, FUSE_READDIRPLUS, s->q->names_nid, &in, sizeof(in), NULL, 0, READDIR_SIZE, false);
}

/* Parses one READDIRPLUS answer; counts entries, notes lookups to forget, advances the offset. */
static void readdirplus_parse(struct slot *s, uint32_t len)
{
	const uint8_t *p = payload(s);
	uint32_t pos = 0;
	while (pos + FUSE_NAME_OFFSET_DIRENTPLUS <= len) {
		struct fuse_direntplus d;
		memcpy(&d, p + pos, sizeof(d));
		uint32_t size = (uint32_t)FUSE_DIRENTPLUS_SIZE(&d);
		if (d.dirent.namelen == 0 || d.dirent.namelen > 255 || pos + size > len)
			die("malformed READDIRPLUS entry");
		const char *name = (const char *)p + pos + FUSE_NAME_OFFSET_DIRENTPLUS;
		bool dot = (d.dirent.namelen == 1 && name[0] == '.') ||
		           (d.dirent.namelen == 2 && name[0] == '.' && name[1] == '.');
		if (!dot) {
			ft_add(&s->q->ft, d.entry_out.nodeid, 1); /* as the kernel does: "." and ".." take no reference */
			s->entries++;
		}
		s->off = d.dirent.off;
		pos += size;
	}
	if (pos != len)
		die("READDIRPLUS answer has %u trailing bytes", len - pos);
}

static void on_reply(struct slot *s, uint32_t used_len, void *arg)
{
	struct run *r = arg;
	uint32_t len = reply_payload(s, used_len);
	bool done = true;

	switch (r->op) {
	case OP_LOOKUP: {
		struct fuse_entry_out e;
		if (len < sizeof(e))
			die("LOOKUP reply of %u bytes", len);
		memcpy(&e, payload(s), sizeof(e));
		ft_add(&s->q->ft, e.nodeid, 1);
		break;
	}
	case OP_CREATE:
		if (s->stage == 0) {
			struct fuse_entry_out e;
			struct fuse_open_out o;
			if (len < sizeof(e) + sizeof(o))
				die("CREATE reply of %u bytes", len);
			memcpy(&e, payload(s), sizeof(e));
			memcpy(&o, (uint8_t *)payload(s) + sizeof(e), sizeof(o));
			ft_add(&s->q->ft, e.nodeid, 1);
			struct fuse_release_in in = { .fh = o.fh, .flags = O_WRONLY };
			s->stage = 1;
			submit(s, FUSE_RELEASE, e.nodeid, &in, sizeof(in), NULL, 0, 0, false);
			done = false;
		}
		break;
	case OP_READDIRPLUS:
		if (s->stage == 0) {
			struct fuse_open_out o;
			if (len < sizeof(o))
				die("OPENDIR reply of %u bytes", len);
			memcpy(&o, payload(s), sizeof(o));
			s->fh = o.fh;
			s->off = 0;
			readdirplus_next(s);
			done = false;
		} else if (s->stage == 1) {
			if (len) {
				readdirplus_parse(s, len);
				readdirplus_next(s);
			} else {
				struct fuse_release_in in = { .fh = s->fh, .flags = O_RDONLY | O_DIRECTORY };
				if (s->entries != B.expect_entries)
					die("listing found %" PRIu64 " entries, not %" PRIu64, s->entries, B.expect_entries);
				s->stage = 2;
				submit(s, FUSE_RELEASEDIR, s->q->names_nid, &in, sizeof(in), NULL, 0, 0, false);
			}
			done = false;
		}
		break;
	case OP_READ4K:
	case OP_READ1M:
		if (len != ops[r->op].size)
			die("READ of %u bytes returned %u", ops[r->op].size, len);
		break;
	case OP_WRITE4K:
	case OP_WRITE1M: {
		struct fuse_write_out w;
		if (len < sizeof(w))
			die("WRITE reply of %u bytes", len);
		memcpy(&w, payload(s), sizeof(w));
		if (w.size != ops[r->op].size)
			die("WRITE of %u bytes wrote %u", ops[r->op].size, w.size);
		break;
	}
	default:
		break;
	}
	if (!done)
		return;
	uint64_t now = now_ns();
	run_finish_one(r, s->t0, now);
	if (run_may_start(r, now)) {
		s->t0 = now;
		r->started++;
		r->inflight++;
		start_first(s, r->op, r->started - 1);
	}
}

/* One queue's share of a measurement, on its own thread: every queue starts together (the barrier) and stops
 * starting operations at the same deadline. */
static void *queue_measure(void *arg)
{
	struct queue *q = arg;
	struct run *r = &q->run;

	if (pthread_barrier_wait(&B.start) == PTHREAD_BARRIER_SERIAL_THREAD)
		__atomic_store_n(&B.deadline, now_ns() + B.ms * 1000000ull, __ATOMIC_RELEASE);
	pthread_barrier_wait(&B.start);
	run_begin(r, B.op, B.qd, B.ms, q->budget, B.record);
	r->deadline = __atomic_load_n(&B.deadline, __ATOMIC_ACQUIRE);
	for (unsigned i = 0; i < B.qd; i++) {
		uint64_t now = now_ns();
		if (!run_may_start(r, now))
			break;
		q->slots[i].t0 = now;
		r->started++;
		r->inflight++;
		start_first(&q->slots[i], B.op, r->started - 1);
	}
	kick(q->vq, &q->kick);
	while (r->inflight) {
		unsigned n = reap(q->vq, on_reply, r);
		kick(q->vq, &q->kick);
		if (!n)
			wait_used(q->vq);
	}
	return NULL;
}

/* Runs one measurement on every request queue at once; budget(q) caps each queue's operations. The result is
 * the total: every queue's operations over the common window, latency percentiles over all of them. FORGETs
 * what was looked up afterwards unless the next measurement needs the references (UNLINK after CREATE: the
 * kernel's inode is still referenced when it unlinks, and QEMU's virtiofsd relies on that). */
static struct rep_result measure(enum op op, unsigned qd, uint64_t ms, bool record, uint64_t (*budget)(struct queue *))
{
	struct rep_result res = { 0 };
	uint64_t t_start = UINT64_MAX, t_last = 0;
	static struct samples all;

	B.op = op;
	B.qd = qd;
	B.ms = ms;
	B.record = record;
	if (pthread_barrier_init(&B.start, NULL, B.active))
		die("pthread_barrier_init failed");
	for (unsigned k = 0; k < B.active; k++) {
		struct queue *q = &B.q[k];
		q->budget = budget ? budget(q) : UINT64_MAX;
		int rc = pthread_create(&q->thread, NULL, queue_measure, q);
		if (rc)
			die("starting the thread of queue %u: %s", k, strerror(rc));
	}
	all.n = 0;
	for (unsigned k = 0; k < B.active; k++) {
		struct queue *q = &B.q[k];
		pthread_join(q->thread, NULL);
		res.ops += q->run.done;
		t_start = q->run.t_start < t_start ? q->run.t_start : t_start;
		t_last = q->run.t_last > t_last ? q->run.t_last : t_last;
		for (size_t i = 0; record && i < q->run.lat.n; i++)
			samples_add(&all, q->run.lat.v[i]);
	}
	double secs = t_last > t_start ? (double)(t_last - t_start) / 1e9 : 0;
	res.ops_s = secs > 0 ? (double)res.ops / secs : 0;
	res.p50 = percentile_us(&all, 0.50);
	res.p99 = percentile_us(&all, 0.99);
	pthread_barrier_destroy(&B.start);
	if (op != OP_CREATE)
		for (unsigned k = 0; k < B.active; k++)
			forget_flush(&B.q[k].ft);
	return res;
}

static uint64_t create_budget(struct queue *q)
{
	(void)q;
	return CREATE_BUDGET / B.active;
}

/* UNLINK removes exactly the files its queue's CREATE made. */
static uint64_t unlink_budget(struct queue *q)
{
	return q->create_next - q->create_base;
}

/* A synchronous request for setup on request queue k: its slot 0, waits for its answer. */
static uint8_t *sync_used_ptr;
static uint32_t sync_len;
static void on_sync(struct slot *s, uint32_t used_len, void *arg)
{
	(void)arg;
	sync_len = reply_payload(s, used_len);
	sync_used_ptr = payload(s);
}

static void *call_on(unsigned k, uint32_t opcode, uint64_t nodeid, const void *in, size_t in_len, const char *name,
                     uint32_t out_len, uint32_t *got)
{
	struct queue *q = &B.q[k];
	struct slot *s = &q->slots[0];
	sync_used_ptr = NULL;
	submit(s, opcode, nodeid, in, in_len, name, 0, out_len, false);
	kick(q->vq, &q->kick);
	while (!sync_used_ptr)
		if (!reap(q->vq, on_sync, NULL))
			wait_used(q->vq);
	if (got)
		*got = sync_len;
	return sync_used_ptr;
}

static void *call(uint32_t opcode, uint64_t nodeid, const void *in, size_t in_len, const char *name, uint32_t out_len,
                  uint32_t *got)
{
	return call_on(0, opcode, nodeid, in, in_len, name, out_len, got);
}

static uint64_t lookup(uint64_t parent, const char *name)
{
	uint32_t len;
	struct fuse_entry_out e;
	void *p = call(FUSE_LOOKUP, parent, NULL, 0, name, sizeof(e), &len);
	if (len < sizeof(e))
		die("LOOKUP %s: short reply", name);
	memcpy(&e, p, sizeof(e));
	ft_add(&B.keep, e.nodeid, 1);
	return e.nodeid;
}

static uint64_t open_file(unsigned k, uint64_t nodeid)
{
	uint32_t len;
	struct fuse_open_in oi = { .flags = O_RDWR };
	struct fuse_open_out oo;
	void *p = call_on(k, FUSE_OPEN, nodeid, &oi, sizeof(oi), NULL, sizeof(oo), &len);
	if (len < sizeof(oo))
		die("OPEN: short reply");
	memcpy(&oo, p, sizeof(oo));
	return oo.fh;
}

static void backend_setup(void)
{
	struct vu_frontend_config cfg = { .nqueues = 1 + opt.queues, .queue_size = opt.queue_size };
	unsigned maxqd = 1;
	for (unsigned i = 0; i < opt.nqd; i++)
		maxqd = opt.qd[i] > maxqd ? opt.qd[i] : maxqd;
	B.nslots = maxqd;
	B.data_max = PAGE;
	for (enum op op = 0; op < OP_COUNT; op++)
		if (opt.want[op] && ops[op].size > B.data_max)
			B.data_max = ops[op].size;
	if (4 * maxqd > opt.queue_size)
		die("--queue-size %u is too small for queue depth %u (4 descriptors per request)", opt.queue_size, maxqd);
	size_t rings = (1 + opt.queues) * (3 * PAGE + 16ull * opt.queue_size + 8ull * opt.queue_size +
	                                   2ull * opt.queue_size);
	cfg.mem_size = rings + (size_t)opt.queues * maxqd * (2 * PAGE + B.data_max) + FORGET_CHUNKS * FORGET_CHUNK + MIB;
	cfg.mem_size = (cfg.mem_size + MIB - 1) & ~(size_t)(MIB - 1);
	int rc = vu_frontend_connect(&B.fe, opt.socket, &cfg);
	if (rc == 0)
		rc = vu_frontend_start(&B.fe);
	if (rc == -EINVAL && opt.queues > 1)
		die("the backend at %s refused %u request queues (it serves fewer: start vufsd with --queues=%u)",
		    opt.socket, opt.queues, opt.queues);
	if (rc < 0)
		die("vhost-user connection to %s: %s", opt.socket, strerror(-rc));
	if (opt.queues > 1 && !(B.fe.protocol_features & (1ull << VHU_PROTOCOL_F_MQ)))
		die("the backend at %s does not offer several queues (VHOST_USER_PROTOCOL_F_MQ)", opt.socket);
	B.q = calloc(opt.queues, sizeof(*B.q));
	if (!B.q)
		die("out of memory");
	for (unsigned k = 0; k < opt.queues; k++) {
		struct queue *q = &B.q[k];
		q->k = k;
		q->vq = k + 1;
		q->slots = calloc(B.nslots, sizeof(*q->slots));
		if (!q->slots)
			die("out of memory");
		ft_grow(&q->ft);
		for (unsigned i = 0; i < B.nslots; i++) {
			struct slot *s = &q->slots[i];
			s->q = q;
			s->index = i;
			s->req = vu_frontend_alloc(&B.fe, PAGE, PAGE, &s->req_gpa);
			s->rep = vu_frontend_alloc(&B.fe, PAGE, PAGE, &s->rep_gpa);
			s->data = vu_frontend_alloc(&B.fe, B.data_max, PAGE, &s->data_gpa);
			if (!s->req || !s->rep || !s->data)
				die("shared memory too small");
			memset(s->data, 0x5a, B.data_max);
		}
	}
	B.fbuf = vu_frontend_alloc(&B.fe, FORGET_CHUNKS * FORGET_CHUNK, PAGE, &B.fbuf_gpa);
	if (!B.fbuf)
		die("shared memory too small");

	/* INIT, as the Linux virtiofs client sends it (minus DAX, submounts, locks, writeback) */
	struct fuse_init_in in = { .major = FUSE_KERNEL_VERSION, .minor = FUSE_KERNEL_MINOR_VERSION,
	                           .max_readahead = 128 * KIB };
	uint64_t want = FUSE_ASYNC_READ | FUSE_ATOMIC_O_TRUNC | FUSE_EXPORT_SUPPORT | FUSE_BIG_WRITES |
	                FUSE_DONT_MASK | FUSE_AUTO_INVAL_DATA | FUSE_DO_READDIRPLUS | FUSE_READDIRPLUS_AUTO |
	                FUSE_ASYNC_DIO | FUSE_PARALLEL_DIROPS | FUSE_MAX_PAGES | FUSE_INIT_EXT;
	in.flags = (uint32_t)want;
	in.flags2 = (uint32_t)(want >> 32);
	uint32_t len;
	struct fuse_init_out out = { 0 };
	void *p = call(FUSE_INIT, 0, &in, sizeof(in), NULL, sizeof(out), &len);
	memcpy(&out, p, len < sizeof(out) ? len : sizeof(out));
	if (len < 24 || out.major != FUSE_KERNEL_VERSION)
		die("INIT answered with protocol %u.%u (%u bytes)", out.major, out.minor, len);
	B.minor = out.minor;
	B.max_write = out.max_write;
	B.init_flags = out.flags | ((out.flags & FUSE_INIT_EXT) ? (uint64_t)out.flags2 << 32 : 0);
	fprintf(stderr, "vufs-microbench: %s: FUSE 7.%u, max_write %u, max_pages %u, flags 0x%" PRIx64 ", %u request "
	        "queue%s\n", opt.label, B.minor, B.max_write, out.max_pages, B.init_flags, opt.queues,
	        opt.queues == 1 ? "" : "s");
	for (enum op op = 0; op < OP_COUNT; op++)
		if (opt.want[op] && ops[op].write && ops[op].size > B.max_write)
			die("%s: the backend's max_write is %u", ops[op].name, B.max_write);
	if (opt.want[OP_READDIRPLUS] && !(B.init_flags & FUSE_DO_READDIRPLUS))
		die("the backend did not agree to READDIRPLUS");

	B.root_nid = FUSE_ROOT_ID;
	uint64_t mb = lookup(B.root_nid, "vufs-mb");
	B.create_nid = lookup(mb, "create");
	/* each queue's names directory and data file (the same ones unless --private); every queue opens its own
	 * handle on its own queue, so every queue is known to serve before the measurements start */
	for (unsigned k = 0; k < opt.queues; k++) {
		struct queue *q = &B.q[k];
		char dir[32], data[32];
		queue_names(k, dir, data, sizeof(dir));
		q->names_nid = lookup(mb, dir);
		q->data_nid = lookup(mb, data);
		q->data_fh = open_file(k, q->data_nid);
		/* the queues walk the data file from evenly spread offsets, page aligned */
		q->file_off = B.tree->file_bytes / opt.queues * k / PAGE * PAGE;
		q->name_next = (uint64_t)opt.entries * k / opt.queues;
	}
	B.expect_entries = opt.entries;
	/* keep the setup's own lookups: they are forgotten at the end */
}

static void backend_teardown(void)
{
	for (unsigned k = 0; k < opt.queues; k++) {
		struct queue *q = &B.q[k];
		struct fuse_release_in ri = { .fh = q->data_fh, .flags = O_RDWR };
		call_on(k, FUSE_RELEASE, q->data_nid, &ri, sizeof(ri), NULL, 0, NULL);
		forget_flush(&q->ft);
		free(q->ft.cell);
		free(q->slots);
		free(q->run.lat.v);
	}
	forget_flush(&B.keep);
	free(B.keep.cell);
	vu_frontend_stop(&B.fe);
	vu_frontend_close(&B.fe);
	free(B.q);
}

static void backend_measure(enum op op, unsigned qd)
{
	struct rep_result res[64], res2[64];
	if (op == OP_CREATE) {
		/* CREATE+RELEASE for the time, then UNLINK of exactly the files it made */
		uint64_t unlink_ms = 10ull * opt.ms + 10000;
		for (unsigned k = 0; k < B.active; k++)
			B.q[k].create_base = B.q[k].create_next;
		measure(OP_CREATE, qd, opt.warmup_ms, false, create_budget);
		measure(OP_UNLINK, qd, unlink_ms, false, unlink_budget);
		for (unsigned k = 0; k < opt.reps; k++) {
			uint64_t made = 0;
			for (unsigned j = 0; j < B.active; j++) {
				made -= B.q[j].create_next;
				B.q[j].create_base = B.q[j].create_next;
			}
			res[k] = measure(OP_CREATE, qd, opt.ms, true, create_budget);
			for (unsigned j = 0; j < B.active; j++)
				made += B.q[j].create_next;
			res2[k] = measure(OP_UNLINK, qd, unlink_ms, true, unlink_budget);
			if (res2[k].ops != made)
				die("UNLINK took longer than its time limit");
		}
		if (opt.want[OP_CREATE])
			report(OP_CREATE, qd, res, opt.reps);
		if (opt.want[OP_UNLINK])
			report(OP_UNLINK, qd, res2, opt.reps);
		return;
	}
	measure(op, qd, opt.warmup_ms, false, NULL);
	for (unsigned k = 0; k < opt.reps; k++)
		res[k] = measure(op, qd, opt.ms, true, NULL);
	report(op, qd, res, opt.reps);
}

static void backend_main(struct tree *t)
{
	B.tree = t;
	ft_grow(&B.keep);
	backend_setup();
	/* the queue counts innermost: the figures compared with each other are measured close together */
	for (enum op op = 0; op < OP_COUNT; op++) {
		if (!should_run(op))
			continue;
		for (unsigned qi = 0; qi < opt.nqd; qi++) {
			for (unsigned ni = 0; ni < opt.nnq; ni++) {
				B.active = report_queues = opt.nq[ni];
				backend_measure(op, opt.qd[qi]);
			}
		}
	}
	backend_teardown();
}

/* ---- options ---- */

static void usage(FILE *out)
{
	fputs("Usage: vufs-microbench --socket=PATH --dir=DIR [options]\n"
	      "       vufs-microbench --native DIR [options]\n"
	      "Raw FUSE requests on a vhost-user-fs backend's request queue, or the same system calls natively.\n\n"
	      "  --socket=PATH     the backend's vhost-user socket (it must share DIR)\n"
	      "  --native[=DIR]    make the system calls on DIR directly (one thread); DIR may follow\n"
	      "  --dir=DIR         host path of the shared directory; the bench tree is DIR/vufs-mb\n"
	      "  --label=NAME      target name in the RESULT lines (default: vufs or native)\n"
	      "  --ops=LIST        lookup,getattr,create,unlink,readdirplus,read4k,read1m,write4k,write1m (default all)\n"
	      "  --qd=LIST         queue depths (default 1,16,128; native: 1)\n"
	      "  --reps=N          repetitions per figure, median reported (default 5)\n"
	      "  --ms=N            length of one repetition in ms (default 1000)\n"
	      "  --warmup-ms=N     unrecorded run before the repetitions (default 100)\n"
	      "  --entries=N       files in the looked-up / listed directory (default 1000)\n"
	      "  --file-mib=N      size of the READ/WRITE file (default 64)\n"
	      "  --queue-size=N    virtqueue size (default 1024; 4 descriptors per request in flight)\n"
	      "  --spin            poll the used ring instead of sleeping on the call eventfd\n"
	      "  --poll-us=N       poll the used ring up to N µs before sleeping (a KVM vCPU halt-polls 200 µs)\n"
	      "  --queues=LIST     drive N request queues at once, one thread and --qd slots each, for each N of\n"
	      "                    the list in turn (default 1, at most 16); the backend must serve the largest:\n"
	      "                    start vufsd with --queues=N (or more). A RESULT line (queues=N) gives the total\n"
	      "                    ops/s over the common window and latency percentiles over all the queues\n"
	      "  --private         with --queues: each queue its own names directory and data file (names-qK,\n"
	      "                    data-qK.bin), so the queues share no inode or handle, only the tables\n",
	      out);
}

static unsigned parse_uint(const char *s, unsigned min, unsigned max, const char *what)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max || s[0] == '-')
		die("bad %s: %s", what, s);
	return (unsigned)v;
}

static void parse_ops(const char *list)
{
	char *copy = strdup(list), *save = NULL;
	memset(opt.want, 0, sizeof(opt.want));
	for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		enum op op = 0;
		while (op < OP_COUNT && strcmp(ops[op].name, t))
			op++;
		if (op == OP_COUNT)
			die("unknown operation %s", t);
		opt.want[op] = true;
	}
	free(copy);
}

static void parse_qd(const char *list)
{
	char *copy = strdup(list), *save = NULL;
	opt.nqd = 0;
	for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		if (opt.nqd == 8)
			die("at most 8 queue depths");
		opt.qd[opt.nqd++] = parse_uint(t, 1, MAX_QD, "queue depth");
	}
	free(copy);
}

static void parse_queues(const char *list)
{
	char *copy = strdup(list), *save = NULL;
	opt.nnq = 0;
	opt.queues = 1;
	for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		if (opt.nnq == 8)
			die("at most 8 queue counts");
		unsigned n = parse_uint(t, 1, VU_FE_MAX_QUEUES - 1, "queue count");
		opt.nq[opt.nnq++] = n;
		opt.queues = n > opt.queues ? n : opt.queues;
	}
	if (!opt.nnq)
		die("bad queue count: %s", list);
	free(copy);
}

int main(int argc, char **argv)
{
	enum { OPT_SOCKET = 256, OPT_NATIVE, OPT_DIR, OPT_LABEL, OPT_OPS, OPT_QD, OPT_REPS, OPT_MS, OPT_WARMUP, OPT_ENTRIES, OPT_FILE_MIB,
	       OPT_QUEUE_SIZE, OPT_SPIN, OPT_POLL_US, OPT_QUEUES, OPT_PRIVATE };
	static const struct option lo[] = {
		{ "socket", required_argument, NULL, OPT_SOCKET }, { "native", optional_argument, NULL, OPT_NATIVE },
		{ "dir", required_argument, NULL, OPT_DIR }, { "label", required_argument, NULL, OPT_LABEL },
		{ "ops", required_argument, NULL, OPT_OPS }, { "qd", required_argument, NULL, OPT_QD },
		{ "reps", required_argument, NULL, OPT_REPS }, { "ms", required_argument, NULL, OPT_MS },
		{ "warmup-ms", required_argument, NULL, OPT_WARMUP }, { "entries", required_argument, NULL, OPT_ENTRIES },
		{ "file-mib", required_argument, NULL, OPT_FILE_MIB }, { "queue-size", required_argument, NULL, OPT_QUEUE_SIZE },
		{ "spin", no_argument, NULL, OPT_SPIN }, { "poll-us", required_argument, NULL, OPT_POLL_US },
		{ "queues", required_argument, NULL, OPT_QUEUES }, { "private", no_argument, NULL, OPT_PRIVATE },
		{ "help", no_argument, NULL, 'h' }, { NULL, 0, NULL, 0 },
	};
	parse_ops("lookup,getattr,create,unlink,readdirplus,read4k,read1m,write4k,write1m");
	parse_qd("1,16,128");
	int c;
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (c) {
		case OPT_SOCKET: opt.socket = optarg; break;
		case OPT_NATIVE:
			opt.native = true;
			if (optarg)
				opt.dir = optarg;
			break;
		case OPT_DIR: opt.dir = optarg; break;
		case OPT_LABEL: opt.label = optarg; break;
		case OPT_OPS: parse_ops(optarg); break;
		case OPT_QD: parse_qd(optarg); break;
		case OPT_REPS: opt.reps = parse_uint(optarg, 1, 64, "repetition count"); break;
		case OPT_MS: opt.ms = parse_uint(optarg, 1, 600000, "time"); break;
		case OPT_WARMUP: opt.warmup_ms = parse_uint(optarg, 0, 600000, "warm-up time"); break;
		case OPT_ENTRIES: opt.entries = parse_uint(optarg, 1, 99999, "entry count"); break;
		case OPT_FILE_MIB: opt.file_mib = parse_uint(optarg, 1, 65536, "file size"); break;
		case OPT_QUEUE_SIZE: opt.queue_size = parse_uint(optarg, 1, 32768, "queue size"); break;
		case OPT_SPIN: opt.spin = true; break;
		case OPT_POLL_US: opt.poll_us = (unsigned)strtoul(optarg, NULL, 10); break;
		case OPT_QUEUES: parse_queues(optarg); break;
		case OPT_PRIVATE: opt.private_files = true; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (opt.native && !opt.dir && optind == argc - 1)
		opt.dir = argv[optind++]; /* --native DIR */
	if (optind != argc || !opt.dir || opt.native == (opt.socket != NULL)) {
		usage(stderr);
		return 2;
	}
	if (opt.native && opt.queues > 1)
		die("--queues needs a backend (native mode is one thread)");
	if (!opt.label)
		opt.label = opt.native ? "native" : "vufs";
	struct tree t;
	tree_prepare(&t);
	if (opt.native)
		native_main(&t);
	else
		backend_main(&t);
	return 0;
}

/*
 * vufs-fsx — data-integrity stress test in the style of fsx.
 *
 *   vufs-fsx [-n OPS] [-s SEED] [-f FILES] [-m MAXSIZE] [-N] [-q] DIR
 *
 * Creates FILES fresh files DIR/fsx.0 .. and runs OPS random operations on
 * them (pwrite/O_APPEND write, pread, ftruncate, mmap write+msync, mmap read,
 * fsync/fdatasync, close+reopen, fallocate, punch hole, copy_file_range),
 * chosen by a PRNG seeded with SEED, so a failing run can be replayed exactly
 * (as long as the same ops turn out to be supported).  An in-memory model holds
 * what every file must contain; the file size is checked with fstat after every
 * op, each read is compared with the model, and every FULL_CHECK_EVERY ops (and
 * at the end) all files are read back whole.
 *
 * Every byte written is a hash of (op number, file offset), so when bad data
 * turns up the report can say which op produced it: a lost write shows older
 * data, a misdirected one shows another op's data or data at a shifted offset.
 *
 * -m takes k/m/g suffixes.  -N leaves out the mmap ops.  -q prints only the
 * final line (and a failure report, on stderr).  Exit 0 on success ("FSX OK
 * ..." on stdout), 1 on a data/size mismatch or unexpected syscall error (the
 * files are then left in DIR), 2 on a usage error.
 *
 * Self-test of the checker: VUFS_FSX_CORRUPT=OP in the environment makes the
 * program flip one byte of a file through a separate descriptor, behind the
 * model's back, right after op OP.  With OP a multiple of FULL_CHECK_EVERY
 * (250) the full check that follows at once must catch it; with other values
 * the run fails unless a later op overwrites or cuts off the byte first.
 *
 * Self-contained, glibc only: it also runs statically linked inside the
 * busybox test guest.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#define MAX_FILES        32
#define MAX_IO           (256 * 1024)  /* largest single read/write/copy */
/* Whole-file verification every this many ops: files churn so fast that data
 * going bad later would mostly be overwritten before a rarer check saw it. */
#define FULL_CHECK_EVERY 250
#define PROGRESS_EVERY   10000
#define LOG_RING         65536         /* op history, also used to identify bad data */
#define LOG_SHOW         20            /* ops printed on failure */
#define SHIFT_SEARCH_OPS 1024          /* recent writes searched for data at a shifted offset */

enum op_kind {
	OP_WRITE, OP_READ, OP_TRUNCATE, OP_MAPWRITE, OP_MAPREAD, OP_FSYNC,
	OP_REOPEN, OP_FALLOC, OP_PUNCH, OP_COPY, OP_NKINDS
};

struct file {
	char path[PATH_MAX];
	char name[16];
	int fd;
	bool append;    /* fd has O_APPEND: data goes through write() and must land at EOF */
	off_t size;     /* expected size */
	uint8_t *data;  /* expected contents; always zero from size on, so growing needs no memset */
	uint32_t *who;  /* op that last set each byte (0: never touched), for mismatch reports */
};

/* One op as logged: enough to print it and to recompute the data it wrote. */
struct logent {
	unsigned long op;       /* 0: empty slot */
	enum op_kind kind;
	int file, file2;        /* file2: copy destination */
	off_t off, len;         /* range asked for (append: off is the EOF it wrote at) */
	off_t off2;             /* copy: destination offset; append: where the fd was positioned */
	off_t oldsize, newsize; /* size before/after, where the op may change it */
	int variant;            /* per op: append, fdatasync, KEEP_SIZE, extended first, ... */
	off_t result;           /* copy: bytes copied */
};

static bool op_write(struct file *f);
static bool op_read(struct file *f);
static bool op_truncate(struct file *f);
static bool op_mapwrite(struct file *f);
static bool op_mapread(struct file *f);
static bool op_fsync(struct file *f);
static bool op_reopen(struct file *f);
static bool op_falloc(struct file *f);
static bool op_punch(struct file *f);
static bool op_copy(struct file *f);

/*
 * The op mix.  Writes outnumber everything because they create the state the
 * other ops check; mmap gets a good share because page-cache/mapping coherence
 * is where a FUSE/virtio-fs implementation most easily goes wrong.  An op
 * returns false when it cannot run on the chosen file now; another is drawn.
 */
static const struct op_desc {
	const char *name;
	unsigned weight;
	bool uses_mmap;              /* left out under -N */
	bool (*run)(struct file *f);
} optab[OP_NKINDS] = {
	[OP_WRITE]    = { "write",     24, false, op_write },
	[OP_READ]     = { "read",      16, false, op_read },
	[OP_TRUNCATE] = { "truncate",   6, false, op_truncate },
	[OP_MAPWRITE] = { "mapwrite",  10, true,  op_mapwrite },
	[OP_MAPREAD]  = { "mapread",   10, true,  op_mapread },
	[OP_FSYNC]    = { "fsync",      3, false, op_fsync },
	[OP_REOPEN]   = { "reopen",     4, false, op_reopen },
	[OP_FALLOC]   = { "fallocate",  4, false, op_falloc },
	[OP_PUNCH]    = { "punch",      4, false, op_punch },
	[OP_COPY]     = { "copy_range", 5, false, op_copy },
};

static struct {
	unsigned long nops, seed;
	int nfiles;
	off_t maxsize;
	bool nommap, quiet;
	const char *dir;

	long pg;                   /* page size */
	off_t cap;                 /* model buffer size: maxsize rounded up to a page */
	unsigned long op;          /* number of the op running now, from 1 */
	uint64_t rng;
	struct file files[MAX_FILES];
	bool disabled[OP_NKINDS];
	unsigned long count[OP_NKINDS];
	uint8_t *buf, *buf2;       /* MAX_IO scratch buffers */
	struct logent ring[LOG_RING];

	/* the mapping being touched, so a SIGBUS can be reported as a file offset */
	uint8_t *volatile map;
	volatile size_t maplen;
	volatile off_t mapoff;
	volatile int mapfile;
} g;

/* ---------------------------------------------------------------- PRNG --- */

static uint64_t mix64(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* splitmix64: tiny, and its sequence depends on nothing but the seed. */
static uint64_t rnd64(void)
{
	g.rng += 0x9e3779b97f4a7c15ULL;
	return mix64(g.rng);
}

static off_t rnd(off_t n) { return n > 0 ? (off_t)(rnd64() % (uint64_t)n) : 0; }
static bool one_in(int n) { return rnd(n) == 0; }
static off_t min_off(off_t a, off_t b) { return a < b ? a : b; }
static off_t max_off(off_t a, off_t b) { return a > b ? a : b; }
static off_t pg_down(off_t x) { return x & ~(off_t)(g.pg - 1); }
static off_t pg_up(off_t x) { return pg_down(x + g.pg - 1); }

/* ------------------------------------------------------------- pattern --- */

/*
 * Data written by op N at file offset O is byte O%8 of mix64(key(N) ^ O/8).
 * Keyed on the absolute offset (not the position in the write) so the bytes at
 * an offset can be recomputed from the op log alone.
 */
static uint64_t pattern_key(unsigned long op) { return mix64(op * 0x2545f4914f6cdd1dULL + 0x5eed); }

static void fill_pattern(uint8_t *dst, unsigned long op, off_t off, off_t len)
{
	uint64_t key = pattern_key(op);
	off_t i = 0;
	while (i < len) {
		off_t o = off + i;
		uint64_t w = mix64(key ^ (uint64_t)(o >> 3));
		for (int b = o & 7; b < 8 && i < len; b++, i++)
			dst[i] = (uint8_t)(w >> (8 * b));
	}
}

/* ------------------------------------------------------------- op log --- */

static struct logent *log_begin(enum op_kind kind, const struct file *f)
{
	/* A redrawn op reuses its number, and so its slot. */
	struct logent *e = &g.ring[g.op % LOG_RING];
	memset(e, 0, sizeof(*e));
	e->op = g.op;
	e->kind = kind;
	e->file = (int)(f - g.files);
	e->file2 = -1;
	e->oldsize = e->newsize = f->size;
	return e;
}

static const struct logent *log_find(unsigned long op)
{
	const struct logent *e = &g.ring[op % LOG_RING];
	return op && e->op == op ? e : NULL;
}

/* Writes that lay down pattern data (as opposed to zeros or copies). */
static bool log_writes_pattern(const struct logent *e, off_t *start, off_t *end)
{
	if (e->kind != OP_WRITE && e->kind != OP_MAPWRITE)
		return false;
	*start = e->off;
	*end = e->off + e->len;
	return true;
}

static void describe(const struct logent *e, char *s, size_t n)
{
	const char *name = g.files[e->file].name;
	intmax_t off = e->off, len = e->len, oldsz = e->oldsize, newsz = e->newsize;
	switch (e->kind) {
	case OP_WRITE:
		if (e->variant)
			snprintf(s, n, "append     %s at EOF 0x%jx len 0x%jx (fd was at 0x%jx)",
				 name, off, len, (intmax_t)e->off2);
		else
			snprintf(s, n, "write      %s off 0x%jx len 0x%jx%s", name, off, len,
				 e->off > e->oldsize ? " (past EOF: hole)" : "");
		break;
	case OP_READ:
		snprintf(s, n, "read       %s off 0x%jx len 0x%jx%s", name, off, len,
			 e->off + e->len > e->oldsize ? " (crosses EOF)" : "");
		break;
	case OP_TRUNCATE:
		snprintf(s, n, "truncate   %s 0x%jx -> 0x%jx", name, oldsz, newsz);
		break;
	case OP_MAPWRITE:
		snprintf(s, n, "mapwrite   %s off 0x%jx len 0x%jx", name, off, len);
		if (e->variant) {
			size_t l = strlen(s);
			snprintf(s + l, n - l, " (ftruncate 0x%jx -> 0x%jx first)", oldsz, newsz);
		}
		break;
	case OP_MAPREAD:
		snprintf(s, n, "mapread    %s off 0x%jx len 0x%jx", name, off, len);
		break;
	case OP_FSYNC:
		snprintf(s, n, "%-10s %s", e->variant ? "fdatasync" : "fsync", name);
		break;
	case OP_REOPEN:
		snprintf(s, n, "reopen     %s%s", name, e->variant ? " O_APPEND" : "");
		break;
	case OP_FALLOC:
		snprintf(s, n, "fallocate  %s off 0x%jx len 0x%jx%s (size 0x%jx -> 0x%jx)", name, off, len,
			 e->variant ? " KEEP_SIZE" : "", oldsz, newsz);
		break;
	case OP_PUNCH:
		snprintf(s, n, "punch      %s off 0x%jx len 0x%jx (size 0x%jx)", name, off, len, oldsz);
		break;
	case OP_COPY:
		snprintf(s, n, "copy_range %s off 0x%jx len 0x%jx -> %s off 0x%jx (copied 0x%jx)",
			 name, off, len, g.files[e->file2].name, (intmax_t)e->off2, (intmax_t)e->result);
		break;
	default:
		snprintf(s, n, "?");
	}
}

static void print_log(void)
{
	char d[256];
	unsigned long first = g.op > LOG_SHOW ? g.op - LOG_SHOW + 1 : 1;
	fprintf(stderr, "last ops (newest last):\n");
	for (unsigned long op = first; op <= g.op; op++) {
		const struct logent *e = log_find(op);
		if (!e)
			continue;
		describe(e, d, sizeof(d));
		fprintf(stderr, "  %8lu %s\n", op, d);
	}
}

/* ------------------------------------------------------------ failing --- */

static void vfail(int err, const char *fmt, va_list ap)
{
	char d[256] = "?";
	const struct logent *e = log_find(g.op);
	fflush(stdout);
	if (g.op)
		fprintf(stderr, "vufs-fsx: FAIL at op %lu: ", g.op);
	else
		fprintf(stderr, "vufs-fsx: FAIL in setup: ");
	vfprintf(stderr, fmt, ap);
	if (err)
		fprintf(stderr, ": %s (errno %d)", strerror(err), err);
	fprintf(stderr, "\n");
	if (!g.op)
		exit(1);
	if (e)
		describe(e, d, sizeof(d));
	fprintf(stderr, "  op %lu was: %s\n", g.op, d);
	print_log();
	fprintf(stderr, "seed %lu; files left in %s; replay: vufs-fsx -s %lu -n %lu -f %d -m %jd%s %s\n",
		g.seed, g.dir, g.seed, g.nops, g.nfiles, (intmax_t)g.maxsize, g.nommap ? " -N" : "", g.dir);
	exit(1);
}

/* A failure not tied to errno: a size or EOF that disagrees with the model. */
__attribute__((noreturn, format(printf, 1, 2)))
static void fail(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vfail(0, fmt, ap);
	va_end(ap);
	exit(1);
}

/* An unexpected syscall error: any error is a failure unless the op knows better. */
__attribute__((noreturn, format(printf, 1, 2)))
static void fail_errno(const char *fmt, ...)
{
	int err = errno;
	va_list ap;
	va_start(ap, fmt);
	vfail(err, fmt, ap);
	va_end(ap);
	exit(1);
}

/*
 * Say where the bad bytes at file offset d came from: zeros point to a lost
 * write or a wrong hole/truncate; data of an older op to a lost or reordered
 * write (stale cache); data of another file or offset to a misdirected write.
 */
static void explain_got(int fi, off_t d, const uint8_t *got, off_t avail)
{
	off_t w = min_off(16, avail), s, e;
	uint32_t want_op = g.files[fi].who[d];
	bool zero = true;
	for (off_t i = 0; i < w; i++)
		zero &= got[i] == 0;
	if (zero) {
		fprintf(stderr, "  got zeros at 0x%jx: data lost, or a hole/truncate/punch applied where it should not\n",
			(intmax_t)d);
		return;
	}
	for (unsigned long k = 0; k < LOG_RING && k < g.op; k++) {
		const struct logent *le = log_find(g.op - k);
		off_t i = 0;
		if (!le || !log_writes_pattern(le, &s, &e) || d < s || d + w > e)
			continue;
		uint64_t key = pattern_key(le->op);
		for (; i < w; i++) {
			off_t o = d + i;
			if ((uint8_t)(mix64(key ^ (uint64_t)(o >> 3)) >> (8 * (o & 7))) != got[i])
				break;
		}
		if (i < w)
			continue;
		char desc[256];
		describe(le, desc, sizeof(desc));
		fprintf(stderr, "  got bytes at 0x%jx are data of op %lu (%s)", (intmax_t)d, le->op, desc);
		if (le->file != fi)
			fprintf(stderr, ": that op wrote %s, not this file\n", g.files[le->file].name);
		else if (le->op < want_op)
			fprintf(stderr, ": stale, op %u changed these bytes later\n", (unsigned)want_op);
		else
			fprintf(stderr, "\n");
		return;
	}
	/* Not at its own offset: look for it at a shifted one in the most recent writes. */
	for (unsigned long k = 0, n = 0; k < LOG_RING && k < g.op && n < SHIFT_SEARCH_OPS; k++) {
		const struct logent *le = log_find(g.op - k);
		if (!le || !log_writes_pattern(le, &s, &e) || w < 8)
			continue;
		n++;
		fill_pattern(g.buf2, le->op, s, e - s);
		uint8_t *hit = memmem(g.buf2, (size_t)(e - s), got, (size_t)w);
		if (hit) {
			off_t src = s + (hit - g.buf2);
			fprintf(stderr, "  got bytes at 0x%jx are data op %lu wrote to %s at 0x%jx (shifted by %+jd)\n",
				(intmax_t)d, le->op, g.files[le->file].name, (intmax_t)src, (intmax_t)(d - src));
			return;
		}
	}
	fprintf(stderr, "  got bytes at 0x%jx match no write in the op log: corrupted or foreign data\n",
		(intmax_t)d);
}

/* Compare what the file gave back for [off, off+len) with the model. */
static void verify(struct file *f, off_t off, const uint8_t *got, off_t len, const char *how)
{
	if (memcmp(f->data + off, got, (size_t)len) == 0)
		return;

	int fi = (int)(f - g.files);
	off_t first = -1, last = -1, ndiff = 0;
	for (off_t i = 0; i < len; i++) {
		if (f->data[off + i] != got[i]) {
			if (first < 0)
				first = i;
			last = i;
			ndiff++;
		}
	}
	char d[256] = "?";
	const struct logent *cur = log_find(g.op);
	if (cur)
		describe(cur, d, sizeof(d));
	fflush(stdout);
	fprintf(stderr, "vufs-fsx: DATA MISMATCH at op %lu in %s (%s), seen by %s\n", g.op, f->name, f->path, how);
	fprintf(stderr, "  op %lu was: %s\n", g.op, d);
	fprintf(stderr, "  checked off 0x%jx len 0x%jx: %jd bytes differ, first at 0x%jx, last at 0x%jx; model size 0x%jx\n",
		(intmax_t)off, (intmax_t)len, (intmax_t)ndiff, (intmax_t)(off + first), (intmax_t)(off + last),
		(intmax_t)f->size);
	fprintf(stderr, "  offset      expected got   expected bytes set by\n");
	for (off_t i = first, shown = 0; i < len && shown < 16; i++) {
		if (f->data[off + i] == got[i])
			continue;
		shown++;
		uint32_t who = f->who[off + i];
		const struct logent *we = log_find(who);
		fprintf(stderr, "  0x%08jx  %02x       %02x    ", (intmax_t)(off + i), f->data[off + i], got[i]);
		if (!who)
			fprintf(stderr, "nothing (never written: zero)\n");
		else
			fprintf(stderr, "op %u %s\n", (unsigned)who, we ? optab[we->kind].name : "(no longer in log)");
	}
	explain_got(fi, off + first, got + first, len - first);
	/* Zeros first and stray data after them (a shifted write) need both explained. */
	if (got[first] == 0) {
		for (off_t i = first; i <= last; i++) {
			if (got[i] != 0 && got[i] != f->data[off + i]) {
				explain_got(fi, off + i, got + i, len - i);
				break;
			}
		}
	}
	print_log();
	fprintf(stderr, "seed %lu; files left in %s; replay: vufs-fsx -s %lu -n %lu -f %d -m %jd%s %s\n",
		g.seed, g.dir, g.seed, g.nops, g.nfiles, (intmax_t)g.maxsize, g.nommap ? " -N" : "", g.dir);
	exit(1);
}

/* A bad mapping access must be reported like any other failure, not just kill us. */
static void on_sigbus(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)uc;
	uint8_t *a = si->si_addr;
	/* Not async-signal-safe, but SIGBUS comes from our own memcpy, never from inside stdio. */
	if (g.map && a >= g.map && a < g.map + g.maplen)
		fail("SIGBUS touching mapping of %s at file offset 0x%jx (model size 0x%jx)",
		     g.files[g.mapfile].name, (intmax_t)(g.mapoff + (a - g.map)), (intmax_t)g.files[g.mapfile].size);
	fail("SIGBUS at %p", (void *)a);
}

/* -------------------------------------------------------------- model --- */

/* Set the expected size; bytes beyond it are kept zero so later growth reads zeros. */
static void model_resize(struct file *f, off_t newsize)
{
	if (newsize > f->size) {
		for (off_t i = f->size; i < newsize; i++)
			f->who[i] = (uint32_t)g.op;
	} else {
		memset(f->data + newsize, 0, (size_t)(f->size - newsize));
	}
	f->size = newsize;
}

static void model_write(struct file *f, off_t off, const uint8_t *src, off_t len)
{
	if (off + len > f->size)
		model_resize(f, off + len);
	memmove(f->data + off, src, (size_t)len);
	for (off_t i = off; i < off + len; i++)
		f->who[i] = (uint32_t)g.op;
}

/* ------------------------------------------------------ range choices --- */

/*
 * Lengths are log-uniform from 1 byte to 256 KiB so both tiny and huge I/O
 * happen; only a quarter are page multiples because partial pages are where
 * caches and request splitting get it wrong.
 */
static off_t pick_len(off_t limit)
{
	off_t max = min_off(MAX_IO, limit);
	off_t len = 1 + rnd((off_t)1 << rnd(19));
	if (one_in(4) && len >= g.pg)
		len = pg_down(len);
	return max_off(1, min_off(len, max));
}

/*
 * An offset for len bytes ending at or before bound.  Besides uniform ones:
 * offsets around EOF (size changes, partial last page, small holes) and near
 * bound (large offsets, long holes when bound is MAXSIZE).
 */
static off_t pick_off(const struct file *f, off_t len, off_t bound)
{
	off_t last = bound - len, off;
	switch (rnd(8)) {
	case 0:
	case 1:
		off = f->size - rnd(2 * g.pg) + rnd(2 * g.pg);
		break;
	case 2:
		off = last - rnd(2 * g.pg);
		break;
	default:
		off = rnd(last + 1);
	}
	if (one_in(4))
		off = pg_down(off);
	return max_off(0, min_off(off, last));
}

static off_t pick_size(const struct file *f)
{
	off_t sz;
	switch (rnd(6)) {
	case 0:
		sz = rnd(g.maxsize + 1);
		break;
	case 1:
		sz = f->size - rnd(2 * g.pg) + rnd(2 * g.pg);
		break;
	case 2:
		sz = rnd(2 * g.pg);
		break;
	case 3:
		sz = g.maxsize - rnd(2 * g.pg);
		break;
	default:
		sz = one_in(2) ? f->size + pick_len(g.maxsize) : f->size - pick_len(g.maxsize);
	}
	if (one_in(4))
		sz = pg_down(sz);
	return max_off(0, min_off(sz, g.maxsize));
}

/* ----------------------------------------------------------------- I/O --- */

static void pwrite_all(struct file *f, const uint8_t *buf, off_t len, off_t off)
{
	for (off_t done = 0; done < len;) {
		ssize_t r = pwrite(f->fd, buf + done, (size_t)(len - done), off + done);
		if (r < 0)
			fail_errno("pwrite %s off 0x%jx len 0x%jx", f->name, (intmax_t)(off + done), (intmax_t)(len - done));
		if (r == 0)
			fail("pwrite %s off 0x%jx wrote nothing", f->name, (intmax_t)(off + done));
		done += r;
	}
}

/* Read until len bytes or EOF; the caller decides whether EOF came too soon. */
static off_t pread_all(struct file *f, uint8_t *buf, off_t len, off_t off)
{
	off_t done = 0;
	while (done < len) {
		ssize_t r = pread(f->fd, buf + done, (size_t)(len - done), off + done);
		if (r < 0)
			fail_errno("pread %s off 0x%jx len 0x%jx", f->name, (intmax_t)(off + done), (intmax_t)(len - done));
		if (r == 0)
			break;
		done += r;
	}
	return done;
}

static void check_sizes(void)
{
	for (int i = 0; i < g.nfiles; i++) {
		struct file *f = &g.files[i];
		struct stat st;
		if (fstat(f->fd, &st) < 0)
			fail_errno("fstat %s", f->name);
		if (st.st_size != f->size)
			fail("size of %s is 0x%jx (%jd), model says 0x%jx (%jd)", f->name, (intmax_t)st.st_size,
			     (intmax_t)st.st_size, (intmax_t)f->size, (intmax_t)f->size);
	}
}

static void check_file(struct file *f, const char *how)
{
	for (off_t off = 0; off < f->size; off += MAX_IO) {
		off_t len = min_off(MAX_IO, f->size - off);
		off_t got = pread_all(f, g.buf, len, off);
		if (got != len)
			fail("%s: %s ended at 0x%jx, model size 0x%jx", how, f->name, (intmax_t)(off + got), (intmax_t)f->size);
		verify(f, off, g.buf, len, how);
	}
	/* And nothing after EOF. */
	if (pread_all(f, g.buf, 1, f->size) != 0)
		fail("%s: %s has data at 0x%jx, past model EOF", how, f->name, (intmax_t)f->size);
}

static void check_all(const char *how)
{
	for (int i = 0; i < g.nfiles; i++)
		check_file(&g.files[i], how);
}

static void open_file(struct file *f, int extra)
{
	f->fd = open(f->path, O_RDWR | O_CLOEXEC | extra, 0644);
	if (f->fd < 0)
		fail_errno("open %s", f->path);
	f->append = extra & O_APPEND;
}

/* Call when an op turns out to be unsupported here: drop it and go on without it. */
static void disable_op(enum op_kind k, int err)
{
	g.disabled[k] = true;
	if (!g.quiet)
		printf("vufs-fsx: %s not supported here (%s), disabled from op %lu on\n", optab[k].name, strerror(err), g.op);
}

/* ----------------------------------------------------------------- ops --- */

/* O_APPEND data must land at EOF whatever the file position says. */
static bool op_append(struct file *f)
{
	struct logent *e = log_begin(OP_WRITE, f);
	off_t room = g.maxsize - f->size;
	if (room <= 0)
		return false;
	off_t len = pick_len(room), pos = rnd(f->size + 1);
	e->variant = 1;
	e->off = f->size;
	e->len = len;
	e->off2 = pos;
	e->newsize = f->size + len;
	if (lseek(f->fd, pos, SEEK_SET) < 0)
		fail_errno("lseek %s to 0x%jx", f->name, (intmax_t)pos);
	fill_pattern(g.buf, g.op, f->size, len);
	for (off_t done = 0; done < len;) {
		ssize_t r = write(f->fd, g.buf + done, (size_t)(len - done));
		if (r < 0)
			fail_errno("append write %s len 0x%jx", f->name, (intmax_t)(len - done));
		if (r == 0)
			fail("append write %s wrote nothing", f->name);
		done += r;
	}
	off_t oldsize = f->size;
	model_write(f, oldsize, g.buf, len);
	off_t now = lseek(f->fd, 0, SEEK_CUR);
	if (now != f->size)
		fail("after O_APPEND write %s file position is 0x%jx, expected new EOF 0x%jx", f->name, (intmax_t)now,
		     (intmax_t)f->size);
	/* Read the tail back now: if the data went to the old position the tail shows it at once. */
	if (pread_all(f, g.buf2, len, oldsize) != len)
		fail("O_APPEND data in %s not found at old EOF 0x%jx", f->name, (intmax_t)oldsize);
	verify(f, oldsize, g.buf2, len, "read-back of O_APPEND write");
	return true;
}

static bool op_write(struct file *f)
{
	if (f->append)
		return op_append(f);
	struct logent *e = log_begin(OP_WRITE, f);
	off_t len = pick_len(g.maxsize), off = pick_off(f, len, g.maxsize);
	e->off = off;
	e->len = len;
	e->newsize = max_off(f->size, off + len);
	fill_pattern(g.buf, g.op, off, len);
	pwrite_all(f, g.buf, len, off);
	model_write(f, off, g.buf, len);
	return true;
}

/* Reads may start or end past EOF: the short count is checked as well as the data. */
static bool op_read(struct file *f)
{
	struct logent *e = log_begin(OP_READ, f);
	off_t len = pick_len(g.maxsize), off = pick_off(f, len, g.maxsize);
	off_t want = max_off(0, min_off(len, f->size - off));
	e->off = off;
	e->len = len;
	off_t got = pread_all(f, g.buf, len, off);
	if (got != want)
		fail("pread %s off 0x%jx len 0x%jx returned 0x%jx bytes, model size 0x%jx says 0x%jx", f->name,
		     (intmax_t)off, (intmax_t)len, (intmax_t)got, (intmax_t)f->size, (intmax_t)want);
	verify(f, off, g.buf, got, "pread");
	return true;
}

static bool op_truncate(struct file *f)
{
	struct logent *e = log_begin(OP_TRUNCATE, f);
	off_t sz = pick_size(f);
	e->newsize = sz;
	if (ftruncate(f->fd, sz) < 0)
		fail_errno("ftruncate %s to 0x%jx", f->name, (intmax_t)sz);
	model_resize(f, sz);
	return true;
}

static uint8_t *map_range(struct file *f, off_t off, off_t len, int prot, off_t *pgoff, size_t *maplen)
{
	*pgoff = pg_down(off);
	/* Whole pages, so the zeroed tail of the EOF page is mapped too. */
	*maplen = (size_t)(pg_up(off + len) - *pgoff);
	uint8_t *p = mmap(NULL, *maplen, prot, MAP_SHARED, f->fd, *pgoff);
	if (p == MAP_FAILED)
		fail_errno("mmap %s off 0x%jx len 0x%zx", f->name, (intmax_t)*pgoff, *maplen);
	g.mapfile = (int)(f - g.files);
	g.mapoff = *pgoff;
	g.maplen = *maplen;
	g.map = p;
	return p;
}

static void unmap_range(struct file *f, uint8_t *p, size_t maplen)
{
	g.map = NULL;
	if (munmap(p, maplen) < 0)
		fail_errno("munmap %s", f->name);
}

/* Stores through a shared mapping must reach the file (msync) and agree with pread/pwrite. */
static bool op_mapwrite(struct file *f)
{
	struct logent *e = log_begin(OP_MAPWRITE, f);
	/* Like fsx, sometimes grow the file first so mmap writes also hit freshly extended pages. */
	if ((f->size == 0 || one_in(4)) && f->size < g.maxsize) {
		off_t sz = min_off(g.maxsize, f->size + pick_len(g.maxsize));
		e->variant = 1;
		e->newsize = sz;
		if (ftruncate(f->fd, sz) < 0)
			fail_errno("ftruncate %s to 0x%jx", f->name, (intmax_t)sz);
		model_resize(f, sz);
	}
	if (f->size == 0)
		return false;
	off_t len = pick_len(f->size), off = pick_off(f, len, f->size), pgoff;
	size_t maplen;
	e->off = off;
	e->len = len;
	uint8_t *p = map_range(f, off, len, PROT_READ | PROT_WRITE, &pgoff, &maplen);
	fill_pattern(p + (off - pgoff), g.op, off, len);
	if (msync(p, maplen, MS_SYNC) < 0)
		fail_errno("msync %s", f->name);
	unmap_range(f, p, maplen);
	fill_pattern(g.buf, g.op, off, len);
	model_write(f, off, g.buf, len);
	return true;
}

static bool op_mapread(struct file *f)
{
	struct logent *e = log_begin(OP_MAPREAD, f);
	if (f->size == 0)
		return false;
	off_t len = pick_len(f->size), off = pick_off(f, len, f->size), pgoff;
	size_t maplen;
	e->off = off;
	e->len = len;
	uint8_t *p = map_range(f, off, len, PROT_READ, &pgoff, &maplen);
	/* Copy out first: verify() may print and exit, and a SIGBUS should name this op. */
	memcpy(g.buf, p + (off - pgoff), (size_t)len);
	verify(f, off, g.buf, len, "mmap read");
	/* POSIX: the rest of the page holding EOF reads as zeros (stale data there is a classic bug). */
	off_t mapend = pgoff + (off_t)maplen;
	if (mapend > f->size) {
		memcpy(g.buf, p + (f->size - pgoff), (size_t)(mapend - f->size));
		verify(f, f->size, g.buf, mapend - f->size, "mmap read of the EOF page past EOF");
	}
	unmap_range(f, p, maplen);
	return true;
}

static bool op_fsync(struct file *f)
{
	struct logent *e = log_begin(OP_FSYNC, f);
	e->variant = one_in(2);
	if ((e->variant ? fdatasync(f->fd) : fsync(f->fd)) < 0)
		fail_errno("%s %s", e->variant ? "fdatasync" : "fsync", f->name);
	return true;
}

/* A fresh open must see everything written through the old one (open/release paths, caches). */
static bool op_reopen(struct file *f)
{
	struct logent *e = log_begin(OP_REOPEN, f);
	e->variant = one_in(3);
	if (close(f->fd) < 0)
		fail_errno("close %s", f->name);
	open_file(f, e->variant ? O_APPEND : 0);
	return true;
}

static bool fallocate_unsupported(int err) { return err == EOPNOTSUPP || err == ENOSYS; }

static bool op_falloc(struct file *f)
{
	struct logent *e = log_begin(OP_FALLOC, f);
	off_t len = pick_len(g.maxsize), off = pick_off(f, len, g.maxsize);
	/* KEEP_SIZE past EOF allocates blocks that a later extension must still read as zeros. */
	int mode = one_in(4) ? FALLOC_FL_KEEP_SIZE : 0;
	e->off = off;
	e->len = len;
	e->variant = mode != 0;
	e->newsize = mode ? f->size : max_off(f->size, off + len);
	if (fallocate(f->fd, mode, off, len) < 0) {
		if (!fallocate_unsupported(errno))
			fail_errno("fallocate %s mode %d off 0x%jx len 0x%jx", f->name, mode, (intmax_t)off, (intmax_t)len);
		disable_op(OP_FALLOC, errno);
		return false;
	}
	if (!mode && off + len > f->size)
		model_resize(f, off + len);
	return true;
}

static bool op_punch(struct file *f)
{
	struct logent *e = log_begin(OP_PUNCH, f);
	/* Mostly inside the file; now and then past EOF, where it must change nothing. */
	off_t bound = one_in(8) ? g.maxsize : f->size;
	if (bound == 0)
		return false;
	off_t len = pick_len(bound), off = pick_off(f, len, bound);
	e->off = off;
	e->len = len;
	if (fallocate(f->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, len) < 0) {
		if (!fallocate_unsupported(errno))
			fail_errno("punch hole %s off 0x%jx len 0x%jx", f->name, (intmax_t)off, (intmax_t)len);
		disable_op(OP_PUNCH, errno);
		return false;
	}
	off_t end = min_off(off + len, f->size);
	if (off < end) {
		memset(f->data + off, 0, (size_t)(end - off));
		for (off_t i = off; i < end; i++)
			f->who[i] = (uint32_t)g.op;
	}
	return true;
}

/*
 * Server-side copy between the files (or within one, without overlap); the
 * request may run past the source's EOF, and the copy must then stop there.
 */
static bool op_copy(struct file *src)
{
	struct logent *e = log_begin(OP_COPY, src);
	struct file *dst = &g.files[rnd(g.nfiles)];
	/* copy_file_range refuses an O_APPEND destination (EBADF). */
	if (dst->append || src->size == 0)
		return false;
	off_t len = pick_len(g.maxsize);
	off_t soff = pick_off(src, 1, src->size);
	off_t doff = pick_off(dst, len, g.maxsize);
	if (src == dst && doff < soff + len && soff < doff + len)
		return false; /* overlapping copies within a file are EINVAL by design */
	off_t want = min_off(len, src->size - soff);
	e->off = soff;
	e->len = len;
	e->file2 = (int)(dst - g.files);
	e->off2 = doff;
	e->oldsize = src->size;

	/*
	 * Only the first call asks for the full (maybe past-EOF) length: when a
	 * copy within one file extends it, later calls would see a larger EOF.
	 */
	loff_t so = soff, dof = doff;
	off_t done = 0;
	while (done < want) {
		off_t ask = done ? want - done : len;
		ssize_t r = copy_file_range(src->fd, &so, dst->fd, &dof, (size_t)ask, 0);
		if (r < 0) {
			int err = errno;
			if (done == 0 && (err == ENOSYS || err == EOPNOTSUPP || err == EXDEV)) {
				disable_op(OP_COPY, err);
				return false;
			}
			fail_errno("copy_file_range %s off 0x%jx -> %s off 0x%jx len 0x%jx", src->name,
				   (intmax_t)(soff + done), dst->name, (intmax_t)(doff + done), (intmax_t)ask);
		}
		if (r == 0)
			break;
		done += r;
	}
	/* Past the source's EOF there must be nothing more to copy. */
	if (done == want && len > want && src != dst) {
		ssize_t r = copy_file_range(src->fd, &so, dst->fd, &dof, (size_t)(len - want), 0);
		if (r < 0)
			fail_errno("copy_file_range %s at its EOF 0x%jx", src->name, (intmax_t)so);
		done += r;
	}
	e->result = done;
	if (done != want)
		fail("copy_file_range %s off 0x%jx len 0x%jx copied 0x%jx bytes, source size 0x%jx allows 0x%jx",
		     src->name, (intmax_t)soff, (intmax_t)len, (intmax_t)done, (intmax_t)src->size, (intmax_t)want);
	if (so != soff + done || dof != doff + done)
		fail("copy_file_range left offsets at 0x%jx/0x%jx, expected 0x%jx/0x%jx", (intmax_t)so, (intmax_t)dof,
		     (intmax_t)(soff + done), (intmax_t)(doff + done));
	model_write(dst, doff, src->data + soff, done);
	return true;
}

/* -------------------------------------------------------------- driver --- */

static enum op_kind pick_op(void)
{
	unsigned total = 0;
	for (int k = 0; k < OP_NKINDS; k++)
		if (!g.disabled[k])
			total += optab[k].weight;
	unsigned r = (unsigned)rnd(total);
	for (int k = 0; k < OP_NKINDS; k++) {
		if (g.disabled[k])
			continue;
		if (r < optab[k].weight)
			return (enum op_kind)k;
		r -= optab[k].weight;
	}
	return OP_READ;
}

/* The VUFS_FSX_CORRUPT hook: change a byte behind the model's back, as a broken fs would. */
static void corrupt_one_byte(void)
{
	for (int i = 0; i < g.nfiles; i++) {
		struct file *f = &g.files[i];
		if (f->size == 0)
			continue;
		off_t off = f->size / 2;
		uint8_t b = (uint8_t)~f->data[off];
		int fd = open(f->path, O_WRONLY | O_CLOEXEC);
		if (fd < 0 || pwrite(fd, &b, 1, off) != 1)
			fail_errno("corruption hook: writing %s", f->path);
		close(fd);
		fprintf(stderr, "vufs-fsx: debug hook: flipped byte 0x%jx of %s after op %lu\n", (intmax_t)off, f->name,
			g.op);
		return;
	}
	fprintf(stderr, "vufs-fsx: debug hook: all files empty after op %lu, nothing corrupted\n", g.op);
}

static void usage(void)
{
	fprintf(stderr, "usage: vufs-fsx [-n OPS] [-s SEED] [-f FILES] [-m MAXSIZE] [-N] [-q] DIR\n"
			"  -n OPS      random operations to run (default 10000)\n"
			"  -s SEED     PRNG seed (default 1)\n"
			"  -f FILES    files to work on, 1..%d (default 3)\n"
			"  -m MAXSIZE  largest file size, k/m/g suffixes allowed (default 1m)\n"
			"  -N          no mmap operations\n"
			"  -q          quiet: print only the final line\n", MAX_FILES);
	exit(2);
}

static unsigned long long parse_num(const char *s, bool suffixes)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 0);
	if (errno || end == s || *s == '-')
		usage();
	if (suffixes && *end) {
		int shift = 0;
		switch (*end++) {
		case 'k': case 'K': shift = 10; break;
		case 'm': case 'M': shift = 20; break;
		case 'g': case 'G': shift = 30; break;
		default: usage();
		}
		if (v > (ULLONG_MAX >> shift))
			usage();
		v <<= shift;
	}
	if (*end)
		usage();
	return v;
}

int main(int argc, char **argv)
{
	g.nops = 10000;
	g.seed = 1;
	g.nfiles = 3;
	g.maxsize = 1 << 20;
	for (int c; (c = getopt(argc, argv, "n:s:f:m:Nq")) != -1;) {
		switch (c) {
		case 'n': g.nops = parse_num(optarg, false); break;
		case 's': g.seed = parse_num(optarg, false); break;
		case 'f': g.nfiles = (int)min_off((off_t)parse_num(optarg, false), MAX_FILES + 1); break;
		case 'm': g.maxsize = (off_t)min_off((off_t)parse_num(optarg, true), (off_t)1 << 40); break;
		case 'N': g.nommap = true; break;
		case 'q': g.quiet = true; break;
		default: usage();
		}
	}
	if (optind != argc - 1 || g.nfiles < 1 || g.nfiles > MAX_FILES || g.maxsize < 1 ||
	    g.maxsize > ((off_t)1 << 30) || g.nops >= UINT32_MAX)
		usage();
	g.dir = argv[optind];
	g.pg = sysconf(_SC_PAGESIZE);
	g.cap = pg_up(g.maxsize);
	g.rng = g.seed;
	if (g.nommap)
		g.disabled[OP_MAPWRITE] = g.disabled[OP_MAPREAD] = true;

	struct sigaction sa = { .sa_sigaction = on_sigbus, .sa_flags = SA_SIGINFO };
	sigaction(SIGBUS, &sa, NULL);

	g.buf = malloc(MAX_IO);
	g.buf2 = malloc(MAX_IO);
	if (!g.buf || !g.buf2)
		fail("out of memory");
	for (int i = 0; i < g.nfiles; i++) {
		struct file *f = &g.files[i];
		char name[sizeof(f->name)];
		snprintf(name, sizeof(name), "fsx.%d", i);
		memcpy(f->name, name, sizeof(name));
		if ((size_t)snprintf(f->path, sizeof(f->path), "%s/%s", g.dir, name) >= sizeof(f->path))
			fail("directory name too long");
		f->data = calloc((size_t)g.cap, 1);
		f->who = calloc((size_t)g.cap, sizeof(*f->who));
		if (!f->data || !f->who)
			fail("out of memory for a %jd-byte model", (intmax_t)g.maxsize);
		/* Fresh files: leftovers of a failed run must not leak into this one. */
		if (unlink(f->path) < 0 && errno != ENOENT)
			fail_errno("unlink old %s", f->path);
		open_file(f, O_CREAT | O_EXCL);
	}

	if (!g.quiet)
		printf("vufs-fsx: seed %lu, %lu ops, %d files, maxsize %jd, %s in %s\n", g.seed, g.nops, g.nfiles,
		       (intmax_t)g.maxsize, g.nommap ? "no mmap" : "with mmap", g.dir);
	fflush(stdout);

	const char *hook = getenv("VUFS_FSX_CORRUPT");
	unsigned long corrupt_at = hook ? strtoul(hook, NULL, 0) : 0;

	for (g.op = 1; g.op <= g.nops; g.op++) {
		for (;;) {
			enum op_kind k = pick_op();
			struct file *f = &g.files[rnd(g.nfiles)];
			if (optab[k].run(f)) {
				g.count[k]++;
				break;
			}
		}
		if (g.op == corrupt_at)
			corrupt_one_byte();
		check_sizes();
		if (g.op % FULL_CHECK_EVERY == 0)
			check_all("full check");
		if (!g.quiet && g.op % PROGRESS_EVERY == 0 && g.op < g.nops) {
			printf("vufs-fsx: %lu/%lu ops ok\n", g.op, g.nops);
			fflush(stdout);
		}
	}
	g.op = g.nops;
	check_all("final check");

	for (int i = 0; i < g.nfiles; i++) {
		struct file *f = &g.files[i];
		if (close(f->fd) < 0)
			fail_errno("close %s", f->name);
		if (unlink(f->path) < 0)
			fail_errno("unlink %s", f->path);
	}
	if (!g.quiet) {
		printf("vufs-fsx: done:");
		for (int k = 0; k < OP_NKINDS; k++)
			printf(" %s=%lu%s", optab[k].name, g.count[k], g.disabled[k] ? "(off)" : "");
		printf("\n");
	}
	printf("FSX OK ops=%lu seed=%lu files=%d\n", g.nops, g.seed, g.nfiles);
	return 0;
}

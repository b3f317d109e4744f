/*
 * libFuzzer harness: the FUSE request decoder and dispatcher (fuse_serve) on the real passthrough file system.
 *
 * Set-up (once): a scratch tree /tmp/vufs-fuzz.XXXXXX/ holding a canary file and a canary directory next to
 * share/, the exported directory; a random marker is in the canary's contents, a name in the canary directory and
 * an xattr of both. When the process may (root), it enters a private mount namespace and mounts
 * a small tmpfs (32 MiB, nodev) on share/, so that what the file system writes is bounded and vanishes with the
 * process; else share/ is a plain directory and RLIMIT_FSIZE bounds file sizes.
 *
 * Each input runs in a session of its own: share/ is filled again (on tmpfs, by a fresh mount, so inode numbers
 * and directory offsets start over too) with files a, a2 (a hard link of a), b, suid (mode 6775), a directory d
 * with d/f, symlinks l -> a, up -> ../canary, abs -> the canary directory, a FIFO p; then a new fs and FUSE
 * server, and an INIT unless the input says not to. So the same input does the same thing each time, and node ids
 * and file handles are predictable: root 1, then 2, 3, ... in lookup order; file handles 1 << 32 | 0, 1, ...
 * (a freed handle slot comes back with its generation bumped). VUFS_FUZZ_RESET_EVERY=N keeps a session for N
 * inputs instead (state accumulates; no fd check then). VUFS_FUZZ_TRACE=1 prints each request and its answer.
 *
 * Input:
 *   byte 0: session config: bit0 no INIT; bits1-2 cache mode (never/auto/always); bit3 writeback; bit4 xattr;
 *           bit5 no POSIX/flock locks; bit6 no readdirplus; bit7 posix_acl and security_label (security
 *           contexts in the extensions of creating requests are then taken)
 *   then up to 256 records, each
 *     ctl  (1 byte): bit0 fix the header (len = request length, unique = a counter, total_extlen = 0 unless
 *                    its extensions fit in the request);
 *                    bits1-3 number of extra cut points in the request (it is spread over that many + 1
 *                    iovecs); bits4-7 reply buffer size class (see reply_sizes)
 *     ctl2 (1 byte): bits0-2 number of extra cut points in the reply buffer
 *     len  (2 bytes, little-endian): request length (clipped to what is left)
 *     cut points (1 byte each, request ones then reply ones: position = byte * length / 256)
 *     the request bytes
 *   Every iovec is its own exact-size heap block, so ASan sees any access outside the request or the reply.
 *   Guest memory is read once: after the copy, the request's header and arguments are poisoned for ASan while
 *   it is served, and a second thread rewrites a WRITE's payload meanwhile (see poison_request).
 *   SETLKW is skipped (fuse_request_may_block: the daemon serves it on its own thread; here it could wait for
 *   ever on a lock held by another guest owner).
 *
 * Checked after each request: the reply is empty or a fuse_out_header whose len is the returned size (at most
 * the reply room), whose unique is the request's, whose error is 0 or a -errno with no payload; no-reply opcodes
 * give nothing; successful replies have their opcode's size, READDIR(PLUS) replies are well-formed dirent
 * streams, READ/GETXATTR/LISTXATTR stay within the size asked; no reply carries the marker (nothing outside the
 * share was read); fsuid/fsgid are 0 again. After each input: the
 * canary file, the canary directory and the scratch root are unchanged (lstat: ino, mode, owner, size, nlink,
 * mtime, ctime), and after fs_free no fd opened during the input is left open. ASan, UBSan and LeakSanitizer
 * (the session is freed at the end of each input) for the rest.
 */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <sanitizer/asan_interface.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/random.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "fs/fs.h"
#include "protocol/fuse_internal.h" /* the worker's copy: how much of the request was copied */
#include "protocol/fuse_server.h"
#include "transport/shm_window.h"
#ifdef VUFS_FUZZ_STUB
#include "../tests/unit/fs_stub.h"
#endif

#define MAX_RECORDS 256
#define MAX_CUTS 7
#define WORKER_SEGS 4 /* small, so that spread-out WRITE and READ buffers reach the "too many segments" paths */

#define CHECK(cond, ...)                                                                                        \
	do {                                                                                                    \
		if (!(cond)) {                                                                                  \
			fprintf(stderr, "fuzz_fuse_request: invariant failed: %s: ", #cond);                    \
			fprintf(stderr, __VA_ARGS__);                                                           \
			fputc('\n', stderr);                                                                    \
			abort();                                                                                \
		}                                                                                               \
	} while (0)

/* The open fds, as a bitmap of the first 1024 (the fd table the harness and the code under test use). */
struct fdset {
	uint64_t bits[16];
};

static char g_base[64], g_share[96], g_canary[96], g_canary_dir[96];
/* Random per process, in the canary file's contents, a name in the canary directory and an xattr of both: no
 * reply may ever carry it. Searched for by code without coverage instrumentation, so that libFuzzer cannot learn
 * it from the comparisons and write it into a file of the share itself. */
static char g_marker[33];
static struct stat g_st_base, g_st_canary, g_st_canary_dir;
static bool g_tmpfs;
static unsigned g_reset_every = 1;
static unsigned long g_runs;

static uint64_t g_unique;

static struct fs *g_fs;
static struct fuse_server *g_srv;
static struct fuse_worker *g_worker;
static int g_cfg = -1;
static bool g_trace; /* VUFS_FUZZ_TRACE=1: print each request's opcode and the reply's error and length */

static const size_t reply_sizes[16] = {
	0, 8, 15, 16, 17, 24, 40, 80, 120, 144, 160, 512, 4096, 8192 + 16, 65536 + 16, 128 * 1024 + 16,
};

static void die(const char *what)
{
	fprintf(stderr, "fuzz_fuse_request: %s (errno %d: %s)\n", what, errno, strerror(errno));
	abort();
}

__attribute__((no_sanitize("coverage"))) static bool has_marker(const uint8_t *p, size_t n)
{
	uint64_t head, v;
	memcpy(&head, g_marker, sizeof(head));
	for (size_t i = 0; i + 32 <= n; i++) {
		memcpy(&v, p + i, sizeof(v));
		if (v != head)
			continue;
		size_t k = 8;
		while (k < 32 && p[i + k] == (uint8_t)g_marker[k])
			k++;
		if (k == 32)
			return true;
	}
	return false;
}

static void open_fds(struct fdset *s)
{
	memset(s, 0, sizeof(*s));
	DIR *d = opendir("/proc/self/fd");
	if (!d)
		die("opendir /proc/self/fd");
	int self = dirfd(d);
	for (struct dirent *e; (e = readdir(d));) {
		int fd = atoi(e->d_name);
		if (e->d_name[0] != '.' && fd != self && fd < 1024)
			s->bits[fd / 64] |= 1ull << (fd % 64);
	}
	closedir(d);
}

/* Aborts naming every fd open now that was not open in base. */
static void check_no_new_fds(const struct fdset *base, const char *after)
{
	struct fdset now;
	bool leak = false;
	open_fds(&now);
	for (int fd = 0; fd < 1024; fd++) {
		if ((now.bits[fd / 64] >> (fd % 64) & 1) && !(base->bits[fd / 64] >> (fd % 64) & 1)) {
			char link[64], what[PATH_MAX];
			snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
			ssize_t n = readlink(link, what, sizeof(what) - 1);
			what[n > 0 ? n : 0] = 0;
			fprintf(stderr, "fd %d (%s) is open after %s\n", fd, what, after);
			leak = true;
		}
	}
	CHECK(!leak, "fds leaked (listed above)");
}

/* ---- the scratch tree ---- */

static int rm_cb(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st;
	(void)type;
	if (ftw->level == 0)
		return 0; /* keep the root itself */
	if (remove(path) < 0 && errno != ENOENT)
		die(path);
	return 0;
}

static int rm_quiet_cb(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st;
	(void)type;
	(void)ftw;
	remove(path);
	return 0;
}

static void wipe(const char *dir)
{
	if (nftw(dir, rm_cb, 32, FTW_DEPTH | FTW_PHYS | FTW_MOUNT) < 0 && errno != ENOENT)
		die("nftw");
}

static void put_file(int dirfd, const char *name, const char *content, mode_t mode)
{
	int fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		die(name);
	size_t n = strlen(content);
	if (write(fd, content, n) != (ssize_t)n || fchmod(fd, mode) < 0)
		die(name);
	close(fd);
}

#define TMPFS_OPTS "size=32m,nr_inodes=4096,mode=0777"

/*
 * share/ back to its known contents. On tmpfs by a fresh mount: inode numbers and directory offsets start over,
 * so the same input sees the same ones each time. Else emptied, and its root back to mode 0777, root-owned,
 * without extended attributes.
 */
__attribute__((unused)) /* not in fuzz_fuse_stub */ static void populate(void)
{
	if (g_tmpfs) {
		if (umount2(g_share, MNT_DETACH) < 0 ||
		    mount("vufs-fuzz", g_share, "tmpfs", MS_NODEV | MS_NOSUID, TMPFS_OPTS) < 0)
			die("remount the scratch tmpfs");
	} else {
		char list[4096];
		wipe(g_share);
		if (chown(g_share, 0, 0) < 0 && geteuid() == 0)
			die("chown share");
		if (chmod(g_share, 0777) < 0)
			die("chmod share");
		ssize_t n = llistxattr(g_share, list, sizeof(list));
		for (ssize_t i = 0; i < n; i += (ssize_t)strlen(list + i) + 1)
			lremovexattr(g_share, list + i);
	}

	int d = open(g_share, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (d < 0)
		die("open share");
	put_file(d, "a", "hello, world: the quick brown fox jumps over the lazy dog\n", 0644);
	if (linkat(d, "a", d, "a2", 0) < 0)
		die("link a2");
	put_file(d, "b", "", 0600);
	put_file(d, "suid", "#!/bin/sh\n", 06775);
	if (mkdirat(d, "d", 0755) < 0)
		die("mkdir d");
	int sub = openat(d, "d", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (sub < 0)
		die("open d");
	put_file(sub, "f", "inner file\n", 0640);
	close(sub);
	if (symlinkat("a", d, "l") < 0 || symlinkat("../canary", d, "up") < 0 || symlinkat(g_canary_dir, d, "abs") < 0)
		die("symlink");
	if (mkfifoat(d, "p", 0644) < 0)
		die("mkfifo");
	close(d);
	char path[160];
	snprintf(path, sizeof(path), "%s/a", g_share);
	setxattr(path, "user.fuzz", "value", 5, 0); /* best effort: not every file system takes user.* */
	snprintf(path, sizeof(path), "%s/d", g_share);
	setxattr(path, "trusted.fuzz", "t", 1, 0);
}

static void snap(const char *path, struct stat *st)
{
	if (lstat(path, st) < 0)
		die(path);
}

static bool same_stat(const struct stat *a, const struct stat *b)
{
	return a->st_ino == b->st_ino && a->st_dev == b->st_dev && a->st_mode == b->st_mode &&
	       a->st_uid == b->st_uid && a->st_gid == b->st_gid && a->st_size == b->st_size &&
	       a->st_nlink == b->st_nlink && a->st_mtim.tv_sec == b->st_mtim.tv_sec &&
	       a->st_mtim.tv_nsec == b->st_mtim.tv_nsec && a->st_ctim.tv_sec == b->st_ctim.tv_sec &&
	       a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

static void check_outside(void)
{
	struct stat st;
	if (!g_base[0])
		return; /* the stub: no scratch tree */
	snap(g_canary, &st);
	CHECK(same_stat(&st, &g_st_canary), "the canary file %s changed", g_canary);
	snap(g_canary_dir, &st);
	CHECK(same_stat(&st, &g_st_canary_dir), "the canary directory %s changed", g_canary_dir);
	snap(g_base, &st);
	CHECK(same_stat(&st, &g_st_base), "the scratch root %s changed (an entry appeared or went)", g_base);
}

static void cleanup(void)
{
	fs_free(g_fs);
	g_fs = NULL;
	if (g_tmpfs)
		umount2(g_share, MNT_DETACH);
	if (g_base[0]) {
		nftw(g_base, rm_quiet_cb, 32, FTW_DEPTH | FTW_PHYS);
	}
}


/* ---- serving ---- */

static uint32_t fsuid_now(void)
{
	return (uint32_t)syscall(SYS_setfsuid, -1);
}

static uint32_t fsgid_now(void)
{
	return (uint32_t)syscall(SYS_setfsgid, -1);
}

/* Spreads len bytes of src over n+1 exact-size heap blocks cut at the given points. */
static unsigned make_iov(const uint8_t *src, size_t len, const uint8_t *cuts, unsigned ncuts, struct iovec *iov)
{
	size_t pos[MAX_CUTS + 2];
	unsigned n = 0;
	pos[n++] = 0;
	for (unsigned i = 0; i < ncuts; i++)
		pos[n++] = (size_t)cuts[i] * len / 256;
	/* insertion sort of the cut points */
	for (unsigned i = 1; i < n; i++)
		for (unsigned j = i; j > 0 && pos[j - 1] > pos[j]; j--) {
			size_t t = pos[j];
			pos[j] = pos[j - 1];
			pos[j - 1] = t;
		}
	pos[n] = len;
	for (unsigned i = 0; i < n; i++) {
		size_t l = pos[i + 1] - pos[i];
		iov[i].iov_base = malloc(l ? l : 1);
		iov[i].iov_len = l;
		if (!iov[i].iov_base)
			die("malloc");
		if (src)
			memcpy(iov[i].iov_base, src + pos[i], l);
	}
	return n;
}

static void free_iov(struct iovec *iov, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		free(iov[i].iov_base);
}

static void gather(const struct iovec *iov, unsigned n, uint8_t *dst, size_t len)
{
	size_t done = 0;
	for (unsigned i = 0; i < n && done < len; i++) {
		size_t k = iov[i].iov_len < len - done ? iov[i].iov_len : len - done;
		memcpy(dst + done, iov[i].iov_base, k);
		done += k;
	}
}

/* The size a successful reply to op must have, or -1 when it varies. */
static long fixed_reply_size(uint32_t op)
{
	const long h = sizeof(struct fuse_out_header);
	switch (op) {
	case FUSE_LOOKUP: case FUSE_MKNOD: case FUSE_MKDIR: case FUSE_SYMLINK: case FUSE_LINK:
		return h + (long)sizeof(struct fuse_entry_out);
	case FUSE_GETATTR: case FUSE_SETATTR:
		return h + (long)sizeof(struct fuse_attr_out);
	case FUSE_OPEN: case FUSE_OPENDIR:
		return h + (long)sizeof(struct fuse_open_out);
	case FUSE_CREATE: case FUSE_TMPFILE:
		return h + (long)(sizeof(struct fuse_entry_out) + sizeof(struct fuse_open_out));
	case FUSE_WRITE: case FUSE_COPY_FILE_RANGE:
		return h + (long)sizeof(struct fuse_write_out);
	case FUSE_COPY_FILE_RANGE_64:
		return h + (long)sizeof(struct fuse_copy_file_range_out);
	case FUSE_STATX:
		return h + (long)sizeof(struct fuse_statx_out);
	case FUSE_STATFS:
		return h + (long)sizeof(struct fuse_statfs_out);
	case FUSE_LSEEK:
		return h + (long)sizeof(struct fuse_lseek_out);
	case FUSE_GETLK:
		return h + (long)sizeof(struct fuse_lk_out);
	case FUSE_UNLINK: case FUSE_RMDIR: case FUSE_RENAME: case FUSE_RENAME2: case FUSE_RELEASE:
	case FUSE_RELEASEDIR: case FUSE_FLUSH: case FUSE_FSYNC: case FUSE_FSYNCDIR: case FUSE_SETLK:
	case FUSE_ACCESS: case FUSE_FALLOCATE: case FUSE_SETXATTR: case FUSE_REMOVEXATTR: case FUSE_DESTROY:
	case FUSE_SYNCFS:
		return h;
	default:
		return -1;
	}
}

static void check_dirents(const uint8_t *p, size_t n, bool plus)
{
	size_t off = 0, head = plus ? sizeof(struct fuse_direntplus) : sizeof(struct fuse_dirent);
	while (off < n) {
		CHECK(n - off >= head, "dirent header cut at %zu of %zu", off, n);
		struct fuse_dirent d;
		memcpy(&d, p + off + (plus ? offsetof(struct fuse_direntplus, dirent) : 0), sizeof(d));
		CHECK(d.namelen > 0 && d.namelen <= NAME_MAX, "dirent name length %u", d.namelen);
		size_t rec = FUSE_DIRENT_ALIGN(head + d.namelen);
		CHECK(rec <= n - off, "dirent of %zu bytes at %zu of %zu", rec, off, n);
		const char *name = (const char *)p + off + head;
		CHECK(memchr(name, '/', d.namelen) == NULL && memchr(name, 0, d.namelen) == NULL,
		      "dirent name with '/' or NUL");
		off += rec;
	}
}

static void check_reply(const uint8_t *req, size_t req_len, const struct iovec *wr, unsigned nwr, size_t wr_len,
                        size_t got)
{
	struct fuse_in_header in = { 0 };
	bool framed = req_len >= sizeof(in);
	if (framed)
		memcpy(&in, req, sizeof(in));
	bool valid = framed && in.len == req_len && (size_t)in.total_extlen * 8 <= req_len - sizeof(in);

	CHECK(got <= wr_len, "reply of %zu bytes in %zu of room", got, wr_len);
	if (got == 0) {
		/* Nothing said: no room for a header, or a request that has no reply. */
		CHECK(wr_len < sizeof(struct fuse_out_header) ||
		      (valid && (in.opcode == FUSE_FORGET || in.opcode == FUSE_BATCH_FORGET ||
		                 in.opcode == FUSE_NOTIFY_REPLY ||
		                 (in.opcode == FUSE_READ /* READ with room for less than a header */))),
		      "no reply to opcode %u (valid %d) with %zu bytes of room", in.opcode, valid, wr_len);
		return;
	}
	CHECK(got >= sizeof(struct fuse_out_header), "reply of %zu bytes", got);
	uint8_t *out = malloc(got);
	if (!out)
		die("malloc");
	gather(wr, nwr, out, got);
	struct fuse_out_header oh;
	memcpy(&oh, out, sizeof(oh));
	CHECK(!has_marker(out, got), "opcode %u: the reply carries the canary marker: something outside the share "
	      "was read", in.opcode);
	CHECK(oh.len == got, "header len %u, returned %zu", oh.len, got);
	CHECK(oh.unique == (framed ? in.unique : 0), "unique %llu for a request with %llu",
	      (unsigned long long)oh.unique, (unsigned long long)in.unique);
	CHECK(oh.error <= 0 && oh.error >= -4095, "error %d", oh.error);
	if (oh.error != 0) {
		CHECK(got == sizeof(oh), "error %d with %zu bytes", oh.error, got);
		free(out);
		return;
	}
	CHECK(valid, "success reply to a malformed request (opcode %u)", in.opcode);
	CHECK(in.opcode != FUSE_FORGET && in.opcode != FUSE_BATCH_FORGET, "a reply to FORGET");
	long want = fixed_reply_size(in.opcode);
	CHECK(want < 0 || (size_t)want == got, "opcode %u: %zu-byte reply, want %ld", in.opcode, got, want);
	const uint8_t *arg = req + sizeof(in), *pay = out + sizeof(oh);
	size_t arg_len = req_len - sizeof(in), pay_len = got - sizeof(oh);
	switch (in.opcode) {
	case FUSE_READDIR:
	case FUSE_READDIRPLUS: {
		struct fuse_read_in ri;
		CHECK(arg_len >= sizeof(ri), "READDIR succeeded without its argument");
		memcpy(&ri, arg, sizeof(ri));
		CHECK(pay_len <= ri.size, "READDIR gave %zu bytes for %u", pay_len, ri.size);
		check_dirents(pay, pay_len, in.opcode == FUSE_READDIRPLUS);
		break;
	}
	case FUSE_READ: {
		struct fuse_read_in ri;
		CHECK(arg_len >= sizeof(ri), "READ succeeded without its argument");
		memcpy(&ri, arg, sizeof(ri));
		CHECK(pay_len <= ri.size, "READ gave %zu bytes for %u", pay_len, ri.size);
		break;
	}
	case FUSE_GETXATTR:
	case FUSE_LISTXATTR: {
		struct fuse_getxattr_in gi;
		CHECK(arg_len >= sizeof(gi), "GETXATTR succeeded without its argument");
		memcpy(&gi, arg, sizeof(gi));
		if (gi.size == 0)
			CHECK(pay_len == sizeof(struct fuse_getxattr_out), "xattr size reply of %zu bytes", pay_len);
		else
			CHECK(pay_len <= gi.size, "xattr reply of %zu bytes for %u", pay_len, gi.size);
		break;
	}
	case FUSE_READLINK:
		CHECK(pay_len > 0 && pay_len <= PATH_MAX, "READLINK of %zu bytes", pay_len);
		break;
	case FUSE_INIT:
		CHECK(pay_len == 12 || pay_len == 24 || pay_len == sizeof(struct fuse_init_out), "INIT reply of %zu",
		      pay_len);
		break;
	case FUSE_MKDIR:
	case FUSE_SYMLINK:
	case FUSE_CREATE:
	case FUSE_TMPFILE: {
		struct fuse_entry_out eo;
		memcpy(&eo, pay, sizeof(eo));
		mode_t want_type = in.opcode == FUSE_MKDIR ? S_IFDIR : in.opcode == FUSE_SYMLINK ? S_IFLNK : S_IFREG;
		CHECK(eo.nodeid != 0 && (eo.attr.mode & S_IFMT) == want_type, "opcode %u made node %llu of mode %o",
		      in.opcode, (unsigned long long)eo.nodeid, eo.attr.mode);
		break;
	}
	case FUSE_LOOKUP:
	case FUSE_LINK:
	case FUSE_MKNOD: {
		struct fuse_entry_out eo;
		memcpy(&eo, pay, sizeof(eo));
		CHECK(eo.nodeid != 0, "opcode %u gave node id 0", in.opcode);
		break;
	}
	case FUSE_SETATTR: {
		struct fuse_setattr_in si;
		struct fuse_attr_out ao;
		CHECK(arg_len >= sizeof(si), "SETATTR succeeded without its argument");
		memcpy(&si, arg, sizeof(si));
		memcpy(&ao, pay, sizeof(ao));
		if ((si.valid & FATTR_MODE) && !(si.valid & (FATTR_UID | FATTR_GID)))
			CHECK((ao.attr.mode & 07777) == (si.mode & 07777), "SETATTR mode %o gave %o", si.mode & 07777,
			      ao.attr.mode & 07777);
		if ((si.valid & FATTR_SIZE) && S_ISREG(ao.attr.mode))
			CHECK(ao.attr.size == si.size, "SETATTR size %llu gave %llu", (unsigned long long)si.size,
			      (unsigned long long)ao.attr.size);
		break;
	}
	default:
		break;
	}
	free(out);
}

/*
 * Guest memory is read once. After fuse_request_copy, the request's bytes in "guest memory" (the rd iovecs) are
 * poisoned for ASan, except a WRITE's payload, which the file system still reads from where it is: any second
 * read of a header or an argument (a double fetch, a decision taken from bytes the guest may have changed) is
 * then an ASan report. The payload meanwhile is rewritten by a second thread, as a guest may do: its bytes are
 * data, whatever they are when they are written is fine.
 */
static struct {
	pthread_t thread;
	pthread_mutex_t mu;
	const struct iovec *iov;  /* the payload segments being served, or NULL */
	unsigned n;
	bool started;
} g_mutator = { .mu = PTHREAD_MUTEX_INITIALIZER };

static void *mutator_thread(void *arg)
{
	uint32_t x = 0x9e3779b9;
	(void)arg;
	for (;;) {
		pthread_mutex_lock(&g_mutator.mu);
		for (unsigned i = 0; g_mutator.iov && i < g_mutator.n; i++) {
			x ^= x << 13, x ^= x >> 17, x ^= x << 5;
			if (g_mutator.iov[i].iov_len)
				((volatile uint8_t *)g_mutator.iov[i].iov_base)[x % g_mutator.iov[i].iov_len] = (uint8_t)x;
		}
		pthread_mutex_unlock(&g_mutator.mu);
		sched_yield();
	}
	return NULL;
}

/* Poisons (or unpoisons) the first n bytes of the request; returns through *payload the segments after them. */
static unsigned poison_request(const struct iovec *rd, unsigned nrd, size_t n, bool poison, struct iovec *payload)
{
	unsigned np = 0;
	for (unsigned i = 0; i < nrd; i++) {
		size_t k = n < rd[i].iov_len ? n : rd[i].iov_len;
		if (poison)
			ASAN_POISON_MEMORY_REGION(rd[i].iov_base, k);
		else
			ASAN_UNPOISON_MEMORY_REGION(rd[i].iov_base, k);
		if (k < rd[i].iov_len)
			payload[np++] = (struct iovec){ (uint8_t *)rd[i].iov_base + k, rd[i].iov_len - k };
		n -= k;
	}
	return np;
}

static void mutate_payload(const struct iovec *iov, unsigned n)
{
	if (!g_mutator.started) {
		g_mutator.started = pthread_create(&g_mutator.thread, NULL, mutator_thread, NULL) == 0;
		if (g_mutator.started)
			pthread_detach(g_mutator.thread); /* the harness process's lifetime */
	}
	pthread_mutex_lock(&g_mutator.mu);
	g_mutator.iov = n ? iov : NULL;
	g_mutator.n = n;
	pthread_mutex_unlock(&g_mutator.mu);
}

/* Serves one request spread over iovecs; returns the reply size after checking it. */
static size_t serve(const uint8_t *req, size_t len, const uint8_t *rcuts, unsigned nrcuts, size_t wr_len,
                    const uint8_t *wcuts, unsigned nwcuts)
{
	struct iovec rd[MAX_CUTS + 1], wr[MAX_CUTS + 1];
	unsigned nrd = make_iov(req, len, rcuts, nrcuts, rd);
	unsigned nwr = make_iov(NULL, wr_len, wcuts, nwcuts, wr);
	size_t got = 0;

	struct iovec payload[MAX_CUTS + 1];
	fuse_request_copy(g_worker, rd, nrd, len);
	size_t copied = len - g_worker->data_len;
	unsigned npay = poison_request(rd, nrd, copied, true, payload);
	if (!fuse_request_may_block(g_worker)) {
		mutate_payload(payload, npay);
		got = fuse_serve_copied(g_srv, g_worker, wr, nwr, wr_len);
		mutate_payload(NULL, 0);
		poison_request(rd, nrd, copied, false, payload);
		check_reply(req, len, wr, nwr, wr_len, got);
		if (g_trace) {
			struct fuse_in_header ih = { 0 };
			struct fuse_out_header oh = { 0 };
			memcpy(&ih, req, len < sizeof(ih) ? len : sizeof(ih));
			if (got)
				gather(wr, nwr, (uint8_t *)&oh, sizeof(oh));
			fprintf(stderr, "  op %u node %#llx (%zu bytes in %u iovecs) -> %zu bytes, error %d\n", ih.opcode,
			        (unsigned long long)ih.nodeid, len, nrd, got, oh.error);
		}
		CHECK(fsuid_now() == 0 && fsgid_now() == 0, "fsuid %u fsgid %u after opcode", fsuid_now(), fsgid_now());
	}
	poison_request(rd, nrd, copied, false, payload);
	free_iov(rd, nrd);
	free_iov(wr, nwr);
	return got;
}

/* The DAX window a session's fs maps into (in-process, as vufs-mount's): remade with each session, since a
 * session's end forgets its ranges without unmapping them, as after a device reset. */
#define FUZZ_DAX_WINDOW (8u << 20)

#ifdef VUFS_FUZZ_STUB
/* fuzz_fuse_stub: the protocol room alone, over the stub file system (tests/unit/fs_stub.h). The config byte
 * picks the stub's answers: bits1-2 the open policy and timeouts, bit3 submounts, bit4 every third operation
 * fails with -EIO, bit5 every operation fails with -ENOENT, bit7 FUSE_ATTR_DAX on every file. */
static void session_end(void)
{
	fuse_server_free(g_srv);
	g_srv = NULL;
	fs_stub_free(g_fs);
	g_fs = NULL;
}

static void fs_session_new(uint8_t cfg, const struct fuse_server_opts *so)
{
	struct fs_stub_config sc = {
		.nodes = 64,
		.dir_entries = 40,
		.fail = cfg & 0x20 ? -ENOENT : cfg & 0x10 ? -EIO : 0,
		.fail_every = cfg & 0x20 ? 1 : 3,
		.dax_window = FUZZ_DAX_WINDOW,
		.attr_dax = cfg & 0x80,
		.policy = { .direct_io = cfg & 2, .keep_cache = cfg & 4, .cache_dir = cfg & 4 },
		.timeout = { .tv_sec = (cfg >> 1) & 3, .tv_nsec = cfg & 2 ? 999999999 : 0 },
		.caches_data = cfg & 4,
		.submounts = cfg & 8,
	};
	if (fs_stub_new(&sc, &g_fs) < 0)
		die("fs_stub_new");
	if (fuse_server_new(&fs_stub_ops, g_fs, so, &g_srv) < 0)
		die("fuse_server_new");
}
#else
static struct shm_window g_win;
static struct dev_services g_win_svc;

static void session_end(void)
{
	fuse_server_free(g_srv);
	g_srv = NULL;
	fs_free(g_fs);
	g_fs = NULL;
	shm_window_destroy(&g_win);
}

static void fs_session_new(uint8_t cfg, const struct fuse_server_opts *so)
{
	struct fs_config fc = {
		.source = g_share,
		.xattr = cfg & 0x10,
		.posix_acl = so->posix_acl,
		.allow_direct_io = false,
		.posix_lock = so->posix_lock,
		.flock = so->flock,
		.max_inodes = 100, /* above the tables' first size (64), so both growing and the bound are reachable */
		.max_handles = 80,
		.cache = (enum fs_cache_mode)(((cfg >> 1) & 3) % 3),
	};
	populate();
	if (fs_new(&fc, &g_fs) < 0)
		die("fs_new");
	if (fuse_server_new(&fs_passthrough_ops, g_fs, so, &g_srv) < 0)
		die("fuse_server_new");
	if (shm_window_init(&g_win, FUZZ_DAX_WINDOW) < 0)
		die("shm_window_init");
	shm_window_services(&g_win, &g_win_svc);
	if (fs_dax_attach(g_fs, &g_win_svc) < 0)
		die("fs_dax_attach");
}
#endif

static void session_start(uint8_t cfg)
{
	struct fuse_server_opts so = {
		.writeback = cfg & 0x08,
		.readdirplus = !(cfg & 0x40),
		.posix_lock = !(cfg & 0x20),
		.flock = !(cfg & 0x20),
		.posix_acl = cfg & 0x80,
		.security_label = cfg & 0x80,
		.killpriv_v2 = true,
		.announce_submounts = true,
		.max_write = 0,
	};
	fs_session_new(cfg, &so);
	g_cfg = cfg;
	if (cfg & 1)
		return;
	struct {
		struct fuse_in_header h;
		struct fuse_init_in i;
	} __attribute__((packed)) init = {
		.h = { .len = sizeof(init), .opcode = FUSE_INIT, .unique = ++g_unique },
		.i = { .major = FUSE_KERNEL_VERSION, .minor = VUFS_FUSE_MINOR, .max_readahead = 131072,
		       .flags = 0xffffffffu, .flags2 = 0xffffffffu },
	};
	if (serve((const uint8_t *)&init, sizeof(init), NULL, 0, 4096, NULL, 0) != 16 + sizeof(struct fuse_init_out))
		die("INIT failed");
}

/* The scratch tree around the share (canaries, a private tmpfs): see the top of this file. */
__attribute__((unused)) /* not in fuzz_fuse_stub */ static void scratch_init(void)
{
	/* A crash leaves its scratch tree behind (no atexit then): remove those of processes that are gone. */
	DIR *tmp = opendir("/tmp");
	for (struct dirent *e; tmp && (e = readdir(tmp));) {
		int pid = 0;
		if (sscanf(e->d_name, "vufs-fuzz.%d", &pid) == 1 && pid > 0 &&
		    (pid == getpid() || (kill(pid, 0) < 0 && errno == ESRCH))) {
			char old[300];
			snprintf(old, sizeof(old), "/tmp/%s", e->d_name);
			umount2(old, MNT_DETACH); /* not mounted in this namespace: harmless */
			nftw(old, rm_quiet_cb, 32, FTW_DEPTH | FTW_PHYS);
		}
	}
	if (tmp)
		closedir(tmp);
	snprintf(g_base, sizeof(g_base), "/tmp/vufs-fuzz.%d", (int)getpid());
	if (mkdir(g_base, 0755) < 0)
		die("mkdir scratch");
	snprintf(g_share, sizeof(g_share), "%s/share", g_base);
	snprintf(g_canary, sizeof(g_canary), "%s/canary", g_base);
	snprintf(g_canary_dir, sizeof(g_canary_dir), "%s/canary.d", g_base);
	if (mkdir(g_share, 0777) < 0 || mkdir(g_canary_dir, 0755) < 0)
		die("mkdir");
	char content[64];
	snprintf(content, sizeof(content), "canary %s\n", g_marker);
	int b = open(g_base, O_RDONLY | O_DIRECTORY | O_CLOEXEC), cd = open(g_canary_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (b < 0 || cd < 0)
		die("open base");
	put_file(b, "canary", content, 0644);
	put_file(cd, g_marker, content, 0644);
	close(cd);
	close(b);
	setxattr(g_canary, "user.canary", g_marker, 32, 0);
	setxattr(g_canary_dir, "user.canary", g_marker, 32, 0);
	atexit(cleanup);

	/* A private tmpfs: bounded, and gone with the process. */
	if (unshare(CLONE_NEWNS) == 0 && mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0 &&
	    mount("vufs-fuzz", g_share, "tmpfs", MS_NODEV | MS_NOSUID, TMPFS_OPTS) == 0) {
		g_tmpfs = true;
	} else {
		struct rlimit rl = { 64 << 20, 64 << 20 };
		setrlimit(RLIMIT_FSIZE, &rl);
		signal(SIGXFSZ, SIG_IGN);
		fprintf(stderr, "fuzz_fuse_request: no private tmpfs (%s); using %s with RLIMIT_FSIZE\n", strerror(errno),
		        g_share);
	}
	/* Snapshots after the mount: mounting on share/ does not change the scratch root itself. */
	snap(g_base, &g_st_base);
	snap(g_canary, &g_st_canary);
	snap(g_canary_dir, &g_st_canary_dir);

}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	const char *every = getenv("VUFS_FUZZ_RESET_EVERY");
	g_trace = getenv("VUFS_FUZZ_TRACE") && getenv("VUFS_FUZZ_TRACE")[0] == '1';
	if (every && atoi(every) > 0)
		g_reset_every = (unsigned)atoi(every);

	uint8_t rnd[16];
	if (getrandom(rnd, sizeof(rnd), 0) != sizeof(rnd))
		die("getrandom");
	for (int i = 0; i < 16; i++)
		snprintf(g_marker + 2 * i, 3, "%02x", rnd[i]);
#ifndef VUFS_FUZZ_STUB
	scratch_init();
#endif
	g_worker = fuse_worker_new(WORKER_SEGS);
	if (!g_worker)
		die("fuse_worker_new");
	return 0;
}

static uint16_t rd16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fdset fds_before;
	if (size < 1)
		return 0;
	uint8_t cfg = data[0];
	bool whole = g_reset_every == 1;
	if (whole) {
		/* One session per input, and no fd of it may outlive it. The snapshot is taken here, not once: the
		 * sanitizers' symbolizer, started between inputs, keeps two pipes open. */
		open_fds(&fds_before);
		session_start(cfg);
	} else if (!g_srv || g_runs % g_reset_every == 0 || cfg != g_cfg) {
		if (g_srv)
			session_end();
		session_start(cfg);
	}
	g_runs++;

	size_t pos = 1;
	for (unsigned rec = 0; rec < MAX_RECORDS && size - pos >= 4; rec++) {
		uint8_t ctl = data[pos], ctl2 = data[pos + 1];
		size_t len = rd16(data + pos + 2);
		pos += 4;
		unsigned nrc = (ctl >> 1) & 7, nwc = ctl2 & 7;
		if (size - pos < nrc + nwc)
			break;
		const uint8_t *rcuts = data + pos, *wcuts = data + pos + nrc;
		pos += nrc + nwc;
		if (len > size - pos)
			len = size - pos;
		uint8_t *req = malloc(len ? len : 1);
		if (!req)
			die("malloc");
		memcpy(req, data + pos, len);
		pos += len;
		if ((ctl & 1) && len >= sizeof(struct fuse_in_header)) {
			struct fuse_in_header h;
			memcpy(&h, req, sizeof(h));
			h.len = (uint32_t)len;
			h.unique = ++g_unique;
			if ((size_t)h.total_extlen * 8 > len - sizeof(h))
				h.total_extlen = 0; /* else kept: extensions are reached through fixed headers too */
			memcpy(req, &h, sizeof(h));
		}
		serve(req, len, rcuts, nrc, reply_sizes[ctl >> 4], wcuts, nwc);
		free(req);
	}
	check_outside();
	if (whole) {
		session_end();
		check_no_new_fds(&fds_before, "fs_free");
	}
	return 0;
}

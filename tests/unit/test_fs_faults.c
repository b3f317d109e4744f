/*
 * Fault injection (SQLite's approach): this binary is linked with -Wl,--wrap=SYM for every system call and
 * allocation function the file-system and protocol rooms call (the list is FAULT_WRAP in the Makefile), so each
 * such call lands in a __wrap_SYM below. While injection is armed (only around the calls into the library:
 * fs_new, fuse_server_new, fuse_serve, fuse_server_free, fs_free) each wrapped call is counted, and the Nth one
 * fails with a plausible errno instead of reaching the real function. A close(2) that "fails" still closes the
 * fd, as Linux does; setfsuid/setfsgid (through syscall(2)) are never failed or counted: the kernel has no
 * error return for them. free() is never failed.
 *
 * A scripted session of 201 requests (INIT, LOOKUP, MKDIR as another uid, CREATE, WRITE, READ, GETATTR,
 * SETATTR, FALLOCATE, LSEEK, FSYNC, FSYNCDIR, SYNCFS, xattrs on a file and a symlink, SYMLINK, READLINK, MKNOD,
 * LINK, RENAME, TMPFILE, COPY_FILE_RANGE, OPENDIR/READDIRPLUS/READDIR, a READDIRPLUS of 60 files and 66
 * directory handles at once so that the inode, hash and handle tables grow, OPEN, POSIX locks, flock, FLUSH,
 * RELEASE, ACCESS, STATFS, UNLINK, RMDIR, FORGET/BATCH_FORGET, DESTROY, and a DAX range mapped, stored into, grown,
 * synced and removed in an 8 MiB window: memfd_create, pread and pwrite too) is served through fuse_serve against a
 * real share in a fresh directory (on tmpfs when it takes user.* xattrs), on a thread of its own so that
 * creds.c's per-thread state starts over each time. VUFS_FAULTS_VERBOSE=1 prints what each N did. It runs once
 * without faults (every request must then get the reply the script expects) to count K armed calls, then for
 * N = 1..K with the Nth call failing (one-shot), and again with every call from the Nth on failing
 * (persistent); then both again with inodes kept by file handle (--inode-file-handles: prefer one-shot, mandatory
 * persistent), which adds name_to_handle_at and open_by_handle_at to the calls failed. Every run must show:
 *   - every request that has a reply got a well-formed one (length, unique, error 0 or -1..-4095 and then no
 *     payload, the opcode's size on success, node id non-zero in entries), fsuid/fsgid back to 0 after it;
 *   - after the guest's view is undone (every handle it was given released, every lookup it was given
 *     forgotten, exactly as counted from the successful replies) the fs holds only the root inode and no
 *     handle: an error reply took no reference;
 *   - after DESTROY and fs_free, the same open fds as before the session, and no allocation made during the
 *     session still live (every malloc/calloc/realloc/strdup is recorded until freed);
 *   - no crash; the SAN build adds ASan, UBSan and LeakSanitizer.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/log.h"
#include "common/util.h"
#include "fs/fs.h"
#include "protocol/fuse_server.h"
#include "transport/shm_window.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <linux/fuse.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

/* ---- the wrappers ---- */

enum sym {
	S_MALLOC, S_CALLOC, S_REALLOC, S_STRDUP, S_OPEN, S_OPENAT, S_CLOSE, S_STATX, S_FSTATVFS, S_FCHMOD, S_FCHMODAT,
	S_FCHOWNAT, S_FTRUNCATE, S_FUTIMENS, S_UTIMENSAT, S_FACCESSAT, S_MKDIRAT, S_MKNODAT, S_SYMLINKAT, S_LINKAT,
	S_UNLINKAT, S_RENAMEAT2, S_READLINKAT, S_PREADV, S_PWRITEV, S_FCNTL, S_FLOCK, S_FSYNC, S_FDATASYNC,
	S_FALLOCATE, S_LSEEK, S_COPY_FILE_RANGE, S_SYNCFS, S_SYSCALL, S_FSETXATTR, S_FGETXATTR, S_FLISTXATTR,
	S_FREMOVEXATTR, S_SETXATTR, S_GETXATTR, S_LISTXATTR, S_REMOVEXATTR, S_FCHDIR, S_MEMFD_CREATE, S_PREAD,
	S_PWRITE, S_NAME_TO_HANDLE, S_OPEN_BY_HANDLE, S_COUNT
};

static const char *const sym_name[S_COUNT] = {
	"malloc", "calloc", "realloc", "strdup", "open", "openat", "close", "statx", "fstatvfs", "fchmod", "fchmodat",
	"fchownat", "ftruncate", "futimens", "utimensat", "faccessat", "mkdirat", "mknodat", "symlinkat", "linkat",
	"unlinkat", "renameat2", "readlinkat", "preadv", "pwritev", "fcntl", "flock", "fsync", "fdatasync",
	"fallocate", "lseek", "copy_file_range", "syncfs", "syscall", "fsetxattr", "fgetxattr", "flistxattr",
	"fremovexattr", "setxattr", "getxattr", "listxattr", "removexattr", "fchdir", "memfd_create", "pread",
	"pwrite", "name_to_handle_at", "open_by_handle_at",
};

/* Only the session thread touches these while armed; the main thread waits for it meanwhile. */
static bool g_armed;
static unsigned long g_calls;      /* armed calls so far in this run */
static unsigned long g_fail_at;    /* 0: no fault */
static bool g_persistent;          /* fail every call from g_fail_at on, not only that one */
static bool g_fired;
static enum sym g_fired_sym;
static int g_fired_step;
static int g_step;                 /* the script step being served */
static unsigned long g_sym_calls[S_COUNT];
static enum fs_inode_handles g_handles; /* how the session's inodes are kept (set between walks) */

/* Allocations made while tracking, until freed: an open-addressing set of pointers. */
#define LIVE_SLOTS 16384u
#define TOMB ((void *)1)
static bool g_track;
static void *g_live[LIVE_SLOTS];
static unsigned g_nlive;

static size_t live_hash(const void *p)
{
	return (size_t)(((uintptr_t)p >> 4) * 0x9e3779b97f4a7c15ull >> 32) & (LIVE_SLOTS - 1);
}

static void live_add(void *p)
{
	if (!g_track || !p)
		return;
	for (size_t i = live_hash(p), k = 0; k < LIVE_SLOTS; i = (i + 1) & (LIVE_SLOTS - 1), k++) {
		if (!g_live[i] || g_live[i] == TOMB) {
			g_live[i] = p;
			g_nlive++;
			return;
		}
	}
	abort(); /* more than LIVE_SLOTS live allocations: the session is far larger than scripted */
}

static void live_del(void *p)
{
	if (!p)
		return;
	for (size_t i = live_hash(p), k = 0; k < LIVE_SLOTS && g_live[i]; i = (i + 1) & (LIVE_SLOTS - 1), k++) {
		if (g_live[i] == p) {
			g_live[i] = TOMB;
			g_nlive--;
			return;
		}
	}
}

static void live_reset(void)
{
	memset(g_live, 0, sizeof(g_live));
	g_nlive = 0;
}

/* Counts an armed call; true when this one must fail. */
static bool fault(enum sym s)
{
	if (!g_armed)
		return false;
	g_calls++;
	g_sym_calls[s]++;
	if (!g_fail_at || g_calls < g_fail_at || (g_calls > g_fail_at && !g_persistent))
		return false;
	if (!g_fired) {
		g_fired = true;
		g_fired_sym = s;
		g_fired_step = g_step;
	}
	return true;
}

#define FAIL_WITH(s, err, ret)                                                                                  \
	do {                                                                                                    \
		if (fault(s)) {                                                                                 \
			errno = (err);                                                                          \
			return (ret);                                                                           \
		}                                                                                               \
	} while (0)

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
void __real_free(void *p);
char *__real_strdup(const char *s);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t n);
void __wrap_free(void *p);
char *__wrap_strdup(const char *s);

void *__wrap_malloc(size_t n)
{
	FAIL_WITH(S_MALLOC, ENOMEM, NULL);
	void *p = __real_malloc(n);
	live_add(p);
	return p;
}

void *__wrap_calloc(size_t n, size_t size)
{
	FAIL_WITH(S_CALLOC, ENOMEM, NULL);
	void *p = __real_calloc(n, size);
	live_add(p);
	return p;
}

void *__wrap_realloc(void *p, size_t n)
{
	FAIL_WITH(S_REALLOC, ENOMEM, NULL);
	void *q = __real_realloc(p, n);
	if (q || n == 0) {
		live_del(p);
		live_add(q);
	}
	return q;
}

void __wrap_free(void *p)
{
	live_del(p);
	__real_free(p);
}

char *__wrap_strdup(const char *s)
{
	FAIL_WITH(S_STRDUP, ENOMEM, NULL);
	char *p = __real_strdup(s);
	live_add(p);
	return p;
}

/* Variadic open calls: the mode is there only when the flags need one. */
#define OPEN_MODE(flags, last, mode)                                                                            \
	do {                                                                                                    \
		if (__OPEN_NEEDS_MODE(flags)) {                                                                 \
			va_list ap;                                                                             \
			va_start(ap, last);                                                                     \
			mode = va_arg(ap, mode_t);                                                              \
			va_end(ap);                                                                             \
		}                                                                                               \
	} while (0)

int __real_open64(const char *path, int flags, ...);
int __wrap_open64(const char *path, int flags, ...);
int __wrap_open64(const char *path, int flags, ...)
{
	mode_t mode = 0;
	OPEN_MODE(flags, flags, mode);
	FAIL_WITH(S_OPEN, EMFILE, -1);
	return __real_open64(path, flags, mode);
}

int __real_openat64(int dirfd, const char *path, int flags, ...);
int __wrap_openat64(int dirfd, const char *path, int flags, ...);
int __wrap_openat64(int dirfd, const char *path, int flags, ...)
{
	mode_t mode = 0;
	OPEN_MODE(flags, flags, mode);
	FAIL_WITH(S_OPENAT, EMFILE, -1);
	return __real_openat64(dirfd, path, flags, mode);
}

int __real_close(int fd);
int __wrap_close(int fd);
int __wrap_close(int fd)
{
	int r = __real_close(fd); /* the fd is gone whatever close reports (Linux) */
	FAIL_WITH(S_CLOSE, EIO, -1);
	return r;
}

int __real_fcntl64(int fd, int cmd, ...);
int __wrap_fcntl64(int fd, int cmd, ...);
int __wrap_fcntl64(int fd, int cmd, ...)
{
	va_list ap;
	va_start(ap, cmd);
	void *arg = va_arg(ap, void *); /* as glibc's own fcntl64 reads it */
	va_end(ap);
	FAIL_WITH(S_FCNTL, cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC ? EMFILE : ENOLCK, -1);
	return __real_fcntl64(fd, cmd, arg);
}

long __real_syscall(long nr, ...);
long __wrap_syscall(long nr, ...);
long __wrap_syscall(long nr, ...)
{
	va_list ap;
	long a[5];
	va_start(ap, nr);
	for (int i = 0; i < 5; i++)
		a[i] = va_arg(ap, long); /* the fs passes at most 3; these all come from registers */
	va_end(ap);
	if (nr != SYS_setfsuid && nr != SYS_setfsgid)
		FAIL_WITH(S_SYSCALL, nr == SYS_getdents64 ? EIO : EPERM, -1);
	return __real_syscall(nr, a[0], a[1], a[2], a[3], a[4]);
}

/* The fixed-signature ones. */
#define WRAP(s, err, ret_t, name, params, args)                                                                 \
	ret_t __real_##name params;                                                                             \
	ret_t __wrap_##name params;                                                                             \
	ret_t __wrap_##name params                                                                              \
	{                                                                                                       \
		FAIL_WITH(s, err, (ret_t)-1);                                                                   \
		return __real_##name args;                                                                      \
	}

WRAP(S_STATX, EIO, int, statx, (int d, const char *p, int f, unsigned m, struct statx *b), (d, p, f, m, b))
WRAP(S_FSTATVFS, EIO, int, fstatvfs64, (int fd, struct statvfs64 *b), (fd, b))
WRAP(S_FCHMOD, EIO, int, fchmod, (int fd, mode_t m), (fd, m))
WRAP(S_FCHMODAT, EIO, int, fchmodat, (int d, const char *p, mode_t m, int f), (d, p, m, f))
WRAP(S_FCHOWNAT, EIO, int, fchownat, (int d, const char *p, uid_t u, gid_t g, int f), (d, p, u, g, f))
WRAP(S_FTRUNCATE, EIO, int, ftruncate64, (int fd, off64_t len), (fd, len))
WRAP(S_FUTIMENS, EIO, int, futimens, (int fd, const struct timespec t[2]), (fd, t))
WRAP(S_UTIMENSAT, EIO, int, utimensat, (int d, const char *p, const struct timespec t[2], int f), (d, p, t, f))
WRAP(S_FACCESSAT, EIO, int, faccessat, (int d, const char *p, int m, int f), (d, p, m, f))
WRAP(S_MKDIRAT, ENOSPC, int, mkdirat, (int d, const char *p, mode_t m), (d, p, m))
WRAP(S_MKNODAT, ENOSPC, int, mknodat, (int d, const char *p, mode_t m, dev_t r), (d, p, m, r))
WRAP(S_SYMLINKAT, ENOSPC, int, symlinkat, (const char *t, int d, const char *p), (t, d, p))
WRAP(S_LINKAT, ENOSPC, int, linkat, (int od, const char *op, int nd, const char *np, int f), (od, op, nd, np, f))
WRAP(S_UNLINKAT, EIO, int, unlinkat, (int d, const char *p, int f), (d, p, f))
WRAP(S_RENAMEAT2, ENOSPC, int, renameat2, (int od, const char *op, int nd, const char *np, unsigned f),
     (od, op, nd, np, f))
WRAP(S_READLINKAT, EIO, ssize_t, readlinkat, (int d, const char *p, char *b, size_t n), (d, p, b, n))
WRAP(S_PREADV, EIO, ssize_t, preadv64v2, (int fd, const struct iovec *v, int n, off64_t o, int f), (fd, v, n, o, f))
WRAP(S_PWRITEV, ENOSPC, ssize_t, pwritev64v2, (int fd, const struct iovec *v, int n, off64_t o, int f), (fd, v, n, o, f))
WRAP(S_FLOCK, ENOLCK, int, flock, (int fd, int op), (fd, op))
WRAP(S_FSYNC, EIO, int, fsync, (int fd), (fd))
WRAP(S_FDATASYNC, EIO, int, fdatasync, (int fd), (fd))
WRAP(S_FALLOCATE, ENOSPC, int, fallocate64, (int fd, int m, off64_t o, off64_t l), (fd, m, o, l))
WRAP(S_LSEEK, EIO, off64_t, lseek64, (int fd, off64_t o, int w), (fd, o, w))
WRAP(S_COPY_FILE_RANGE, ENOSPC, ssize_t, copy_file_range,
     (int i, off64_t *oi, int o, off64_t *oo, size_t n, unsigned f), (i, oi, o, oo, n, f))
WRAP(S_SYNCFS, EIO, int, syncfs, (int fd), (fd))
WRAP(S_FSETXATTR, ENOSPC, int, fsetxattr, (int fd, const char *n, const void *v, size_t s, int f), (fd, n, v, s, f))
WRAP(S_FGETXATTR, EIO, ssize_t, fgetxattr, (int fd, const char *n, void *v, size_t s), (fd, n, v, s))
WRAP(S_FLISTXATTR, EIO, ssize_t, flistxattr, (int fd, char *l, size_t s), (fd, l, s))
WRAP(S_FREMOVEXATTR, EIO, int, fremovexattr, (int fd, const char *n), (fd, n))
WRAP(S_SETXATTR, ENOSPC, int, setxattr, (const char *p, const char *n, const void *v, size_t s, int f),
     (p, n, v, s, f))
WRAP(S_GETXATTR, EIO, ssize_t, getxattr, (const char *p, const char *n, void *v, size_t s), (p, n, v, s))
WRAP(S_LISTXATTR, EIO, ssize_t, listxattr, (const char *p, char *l, size_t s), (p, l, s))
WRAP(S_REMOVEXATTR, EIO, int, removexattr, (const char *p, const char *n), (p, n))
WRAP(S_FCHDIR, EIO, int, fchdir, (int fd), (fd))
/* The DAX window's copies (src/fs/dax.c) */
WRAP(S_MEMFD_CREATE, EMFILE, int, memfd_create, (const char *n, unsigned f), (n, f))
WRAP(S_PREAD, EIO, ssize_t, pread64, (int fd, void *b, size_t n, off64_t o), (fd, b, n, o))
WRAP(S_PWRITE, ENOSPC, ssize_t, pwrite64, (int fd, const void *b, size_t n, off64_t o), (fd, b, n, o))
/* Inodes kept by file handle (src/fs/fhandle.c) */
WRAP(S_NAME_TO_HANDLE, EOPNOTSUPP, int, name_to_handle_at, (int d, const char *p, struct file_handle *h, int *m, int f),
     (d, p, h, m, f))
WRAP(S_OPEN_BY_HANDLE, ESTALE, int, open_by_handle_at, (int d, struct file_handle *h, int f), (d, h, f))

/* ---- one session ---- */

#define MAX_NODES 128
#define MANY 60           /* files in many/: past the inode table's and hash's first size (64) */
#define HANDLES 66        /* directory handles open at once: past the handle table's first size (64) */
#define OUT_ROOM 65536
#define MAX_STEPS 256

struct run {
	/* in */
	char dir[96];
	unsigned long fail_at;
	bool persistent;
	bool baseline;           /* no fault: every reply must be the expected one */
	/* out */
	unsigned long calls;
	bool fired;
	enum sym fired_sym;
	int fired_step;
	int nsteps;
	int err[MAX_STEPS];      /* each step's reply error (1: no reply, as for FORGET) */
	const char *step_name[MAX_STEPS];
	unsigned err_replies;    /* replies with an error the baseline did not have */
	char fail[768];          /* first broken invariant, empty if none */
};

static struct fuse_worker *g_worker;

/* The session's request and reply space (only the session thread uses them). */
static uint8_t s_req[8192];
static size_t s_req_len;
static uint8_t s_out[OUT_ROOM];
static uint64_t s_unique;
static unsigned s_dirents;               /* READDIRPLUS entries seen */
static size_t s_pay_len;                 /* payload bytes of the last successful reply */
static struct fs_ctx s_as;               /* ids the next request carries */
static struct { uint64_t id, n; } s_nodes[MAX_NODES];
static unsigned s_nnodes;
static struct run *s_run;
static struct fuse_server *s_srv;
static struct fs *s_fs;

#define BAD(...)                                                                                                \
	do {                                                                                                    \
		if (!s_run->fail[0])                                                                            \
			snprintf(s_run->fail, sizeof(s_run->fail), __VA_ARGS__);                                \
	} while (0)

static void track_lookup(uint64_t id)
{
	for (unsigned i = 0; i < s_nnodes; i++) {
		if (s_nodes[i].id == id) {
			s_nodes[i].n++;
			return;
		}
	}
	if (s_nnodes < MAX_NODES)
		s_nodes[s_nnodes++] = (typeof(s_nodes[0])){ id, 1 };
	else
		BAD("more than %d node ids", MAX_NODES);
}

static void begin(uint32_t opcode, uint64_t nodeid)
{
	struct fuse_in_header h = { .opcode = opcode, .nodeid = nodeid, .unique = ++s_unique, .uid = s_as.uid,
	                            .gid = s_as.gid, .pid = 4242 };
	memcpy(s_req, &h, sizeof(h));
	s_req_len = sizeof(h);
}

static void put(const void *p, size_t n)
{
	if (s_req_len + n > sizeof(s_req))
		abort();
	memcpy(s_req + s_req_len, p, n);
	s_req_len += n;
}

static void put_str(const char *s)
{
	put(s, strlen(s) + 1);
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
	case FUSE_STATFS:
		return h + (long)sizeof(struct fuse_statfs_out);
	case FUSE_LSEEK:
		return h + (long)sizeof(struct fuse_lseek_out);
	case FUSE_GETLK:
		return h + (long)sizeof(struct fuse_lk_out);
	case FUSE_UNLINK: case FUSE_RMDIR: case FUSE_RENAME: case FUSE_RELEASE: case FUSE_RELEASEDIR:
	case FUSE_FLUSH: case FUSE_FSYNC: case FUSE_FSYNCDIR: case FUSE_SYNCFS: case FUSE_SETLK: case FUSE_ACCESS: case FUSE_FALLOCATE:
	case FUSE_SETXATTR: case FUSE_REMOVEXATTR: case FUSE_DESTROY:
		return h;
	default:
		return -1;
	}
}

static unsigned fsid_now(long nr)
{
	return (unsigned)syscall(nr, -1);
}

/* Counts the lookups a READDIRPLUS reply gave (every entry but "." and ".."), checking its framing. */
static void track_direntplus(const uint8_t *p, size_t len)
{
	size_t off = 0;
	while (off < len) {
		struct fuse_direntplus dp;
		if (len - off < sizeof(dp)) {
			BAD("READDIRPLUS entry cut at %zu of %zu", off, len);
			return;
		}
		memcpy(&dp, p + off, sizeof(dp));
		size_t rec = FUSE_DIRENT_ALIGN(sizeof(dp) + dp.dirent.namelen);
		if (dp.dirent.namelen == 0 || dp.dirent.namelen > NAME_MAX || rec > len - off) {
			BAD("READDIRPLUS entry of name length %u at %zu of %zu", dp.dirent.namelen, off, len);
			return;
		}
		if (dp.entry_out.nodeid)
			track_lookup(dp.entry_out.nodeid);
		s_dirents++;
		off += rec;
	}
}

/*
 * Serves the request built, as step `name`, expecting error `expect` in the baseline (1: no reply). Checks the
 * reply; returns its error and copies a successful payload to payload (up to cap bytes).
 */
static int serve(const char *name, int expect, void *payload, size_t cap)
{
	struct fuse_in_header in;
	memcpy(&in, s_req, sizeof(in));
	in.len = (uint32_t)s_req_len;
	memcpy(s_req, &in, sizeof(in));

	int step = s_run->nsteps++;
	if (step >= MAX_STEPS)
		abort();
	s_run->step_name[step] = name;
	g_step = step;
	struct iovec rd = { s_req, s_req_len }, wr = { s_out, sizeof(s_out) };
	g_armed = true;
	size_t got = fuse_serve(s_srv, g_worker, &rd, 1, s_req_len, &wr, 1, sizeof(s_out));
	g_armed = false;

	int err = 1;
	bool no_reply = in.opcode == FUSE_FORGET || in.opcode == FUSE_BATCH_FORGET;
	if (fsid_now(SYS_setfsuid) != 0 || fsid_now(SYS_setfsgid) != 0)
		BAD("step %s: fsuid %u fsgid %u afterwards", name, fsid_now(SYS_setfsuid), fsid_now(SYS_setfsgid));
	if (no_reply) {
		if (got != 0)
			BAD("step %s: a %zu-byte reply to a FORGET", name, got);
	} else if (got < sizeof(struct fuse_out_header) || got > sizeof(s_out)) {
		BAD("step %s: reply of %zu bytes", name, got);
	} else {
		struct fuse_out_header oh;
		memcpy(&oh, s_out, sizeof(oh));
		long want = fixed_reply_size(in.opcode);
		err = oh.error;
		if (oh.len != got || oh.unique != in.unique)
			BAD("step %s: header len %u unique %llu, got %zu for unique %llu", name, oh.len,
			    (unsigned long long)oh.unique, got, (unsigned long long)in.unique);
		else if (oh.error > 0 || oh.error < -4095)
			BAD("step %s: error %d", name, oh.error);
		else if (oh.error && got != sizeof(oh))
			BAD("step %s: error %d with %zu bytes", name, oh.error, got);
		else if (!oh.error && want >= 0 && got != (size_t)want)
			BAD("step %s: %zu-byte success reply, want %ld", name, got, want);
		if (oh.error == 0) {
			const uint8_t *pay = s_out + sizeof(oh);
			size_t plen = got - sizeof(oh);
			if (in.opcode == FUSE_LOOKUP || in.opcode == FUSE_MKDIR || in.opcode == FUSE_MKNOD ||
			    in.opcode == FUSE_SYMLINK || in.opcode == FUSE_LINK || in.opcode == FUSE_CREATE ||
			    in.opcode == FUSE_TMPFILE) {
				struct fuse_entry_out eo;
				memcpy(&eo, pay, sizeof(eo));
				if (eo.nodeid == 0)
					BAD("step %s: entry with node id 0", name);
				else
					track_lookup(eo.nodeid);
			} else if (in.opcode == FUSE_READDIRPLUS) {
				track_direntplus(pay, plen);
			}
			if (payload)
				memcpy(payload, pay, MIN(plen, cap));
			s_pay_len = MIN(plen, cap);
		}
	}
	s_run->err[step] = err;
	if (s_run->baseline && err != expect)
		BAD("step %s: error %d without a fault, the script expects %d", name, err, expect);
	else if (!s_run->baseline && err != expect && err <= 0)
		s_run->err_replies++;
	return err;
}

/* ---- the script ---- */

struct create_out {
	struct fuse_entry_out e;
	struct fuse_open_out o;
};

static uint64_t s_root = FUSE_ROOT_ID;

static uint64_t entry_op(const char *name, int expect)
{
	struct fuse_entry_out e = { 0 };
	return serve(name, expect, &e, sizeof(e)) == 0 ? e.nodeid : 0;
}

static uint64_t lookup(uint64_t parent, const char *name, int expect)
{
	begin(FUSE_LOOKUP, parent);
	put_str(name);
	return entry_op("LOOKUP", expect);
}

static uint64_t create(uint32_t op, uint64_t parent, const char *name, uint32_t flags, uint64_t *fh)
{
	struct fuse_create_in ci = { .flags = flags, .mode = S_IFREG | 0644 };
	struct create_out co = { 0 };
	begin(op, parent);
	put(&ci, sizeof(ci));
	if (name)
		put_str(name);
	if (serve(op == FUSE_CREATE ? "CREATE" : "TMPFILE", 0, &co, sizeof(co)) != 0) {
		*fh = 0;
		return 0;
	}
	*fh = co.o.fh;
	return co.e.nodeid;
}

static uint64_t open_op(uint32_t op, uint64_t node, uint32_t flags)
{
	struct fuse_open_in oi = { .flags = flags };
	struct fuse_open_out oo = { 0 };
	begin(op, node);
	put(&oi, sizeof(oi));
	return serve(op == FUSE_OPEN ? "OPEN" : "OPENDIR", 0, &oo, sizeof(oo)) == 0 ? oo.fh : 0;
}

static void release(uint32_t op, uint64_t node, uint64_t fh, uint32_t flags, uint64_t owner)
{
	struct fuse_release_in ri = { .fh = fh, .release_flags = flags, .lock_owner = owner };
	begin(op, node);
	put(&ri, sizeof(ri));
	serve(op == FUSE_RELEASE ? "RELEASE" : "RELEASEDIR", 0, NULL, 0);
}

static void setattr(const char *name, uint64_t node, uint64_t fh, uint32_t valid, uint32_t mode, uint64_t size)
{
	struct fuse_setattr_in si = { .valid = valid | (fh ? FATTR_FH : 0), .fh = fh, .mode = mode, .size = size };
	begin(FUSE_SETATTR, node);
	put(&si, sizeof(si));
	serve(name, 0, NULL, 0);
}

static void rw(uint32_t op, uint64_t node, uint64_t fh, const char *data, uint32_t size)
{
	begin(op, node);
	if (op == FUSE_WRITE) {
		struct fuse_write_in wi = { .fh = fh, .size = (uint32_t)strlen(data) };
		put(&wi, sizeof(wi));
		put(data, strlen(data));
	} else {
		struct fuse_read_in ri = { .fh = fh, .size = size };
		put(&ri, sizeof(ri));
	}
	serve(op == FUSE_WRITE ? "WRITE" : op == FUSE_READ ? "READ" : op == FUSE_READDIR ? "READDIR" : "READDIRPLUS",
	      0, NULL, 0);
}

/* Returns the offset after the last entry of the reply (0 if none). */
static uint64_t readdirplus(uint64_t node, uint64_t fh, uint64_t off, uint32_t size)
{
	static uint8_t buf[OUT_ROOM];
	struct fuse_read_in ri = { .fh = fh, .offset = off, .size = size };
	uint64_t next = 0;
	begin(FUSE_READDIRPLUS, node);
	put(&ri, sizeof(ri));
	if (serve("READDIRPLUS", 0, buf, sizeof(buf)) != 0)
		return 0;
	size_t len = s_pay_len;
	for (size_t pos = 0; pos + sizeof(struct fuse_direntplus) <= len;) {
		struct fuse_direntplus dp;
		memcpy(&dp, buf + pos, sizeof(dp));
		next = dp.dirent.off;
		pos += FUSE_DIRENT_ALIGN(sizeof(dp) + dp.dirent.namelen);
	}
	return next;
}

static void xattr_get(uint32_t op, const char *step, uint64_t node, const char *name, uint32_t size)
{
	struct fuse_getxattr_in gi = { .size = size };
	begin(op, node);
	put(&gi, sizeof(gi));
	if (name)
		put_str(name);
	serve(step, 0, NULL, 0);
}

static void lk(const char *step, uint32_t op, uint64_t node, uint64_t fh, uint64_t owner, uint32_t type,
               uint32_t lk_flags, struct fuse_lk_out *out)
{
	struct fuse_lk_in li = { .fh = fh, .owner = owner, .lk = { .start = 0, .end = 99, .type = type, .pid = 42 },
	                         .lk_flags = lk_flags };
	begin(op, node);
	put(&li, sizeof(li));
	serve(step, 0, out, out ? sizeof(*out) : 0);
}

static void name_op(uint32_t op, const char *step, uint64_t parent, const char *name)
{
	begin(op, parent);
	put_str(name);
	serve(step, 0, NULL, 0);
}

/*
 * The DAX window (an 8 MiB shm_window attached to the fs): map the file, whose last page is then a copy, store into
 * it as a guest would, grow the file past that page (the copy becomes file pages, a new copy follows), ask its
 * attributes, sync (write-back), remove the range.
 */
static struct shm_window s_win;
static bool s_dax;

static void dax_steps(uint64_t f, uint64_t fh, const char *text)
{
	const uint64_t range = 2u << 20;
	struct fuse_setupmapping_in si = { .fh = UINT64_MAX, .foffset = 0, .len = range,
	                                   .flags = FUSE_SETUPMAPPING_FLAG_READ | FUSE_SETUPMAPPING_FLAG_WRITE };
	begin(FUSE_SETUPMAPPING, f);
	put(&si, sizeof(si));
	if (serve("SETUPMAPPING", s_dax ? 0 : -ENOSYS, NULL, 0) == 0 && s_win.n > 0)
		s_win.base[3] = 'X'; /* a store into the copied last page */
	struct fuse_write_in wi = { .fh = fh, .offset = 5000, .size = (uint32_t)strlen(text) };
	begin(FUSE_WRITE, f);
	put(&wi, sizeof(wi));
	put(text, strlen(text));
	serve("WRITE growing the mapped file", 0, NULL, 0);
	struct fuse_getattr_in gi = { 0 };
	begin(FUSE_GETATTR, f);
	put(&gi, sizeof(gi));
	serve("GETATTR mapped", 0, NULL, 0);
	struct fuse_fsync_in fi = { .fh = fh };
	begin(FUSE_FSYNC, f);
	put(&fi, sizeof(fi));
	serve("FSYNC mapped", 0, NULL, 0);
	struct fuse_removemapping_in ri = { .count = 1 };
	struct fuse_removemapping_one one = { .moffset = 0, .len = range };
	begin(FUSE_REMOVEMAPPING, f);
	put(&ri, sizeof(ri));
	put(&one, sizeof(one));
	serve("REMOVEMAPPING", s_dax ? 0 : -ENOSYS, NULL, 0);
}

static void session(void)
{
	static const char text[] = "hello, fault injection\n";
	const struct fs_ctx as_root = { .uid = 0, .gid = 0, .pid = 4242 };
	const struct fs_ctx as_user = { .uid = 1000, .gid = 1000, .pid = 4242 };
	uint64_t d, f, l, p, t, fh1, fh2, fh3, dfh;

	s_as = as_root;
	{
		struct fuse_init_in ii = { .major = FUSE_KERNEL_VERSION, .minor = FUSE_KERNEL_MINOR_VERSION,
		                           .max_readahead = 131072, .flags = 0xffffffffu, .flags2 = 0xffffffffu };
		begin(FUSE_INIT, 0);
		put(&ii, sizeof(ii));
		serve("INIT", 0, NULL, 0);
	}
	lookup(s_root, "missing", -ENOENT);
	{
		struct fuse_mkdir_in mi = { .mode = 0755 };
		s_as = as_user; /* creating as another uid: the credential switch (setgroups, capget/capset) */
		begin(FUSE_MKDIR, s_root);
		put(&mi, sizeof(mi));
		put_str("d");
		d = entry_op("MKDIR", 0);
		s_as = as_root;
	}
	f = create(FUSE_CREATE, d, "f", O_RDWR | O_CREAT, &fh1);
	rw(FUSE_WRITE, f, fh1, text, 0);
	rw(FUSE_READ, f, fh1, NULL, 64);
	dax_steps(f, fh1, text);
	{
		struct fuse_getattr_in gi = { 0 };
		begin(FUSE_GETATTR, f);
		put(&gi, sizeof(gi));
		serve("GETATTR", 0, NULL, 0);
		gi = (struct fuse_getattr_in){ .getattr_flags = FUSE_GETATTR_FH, .fh = fh1 };
		begin(FUSE_GETATTR, f);
		put(&gi, sizeof(gi));
		serve("GETATTR fh", 0, NULL, 0);
	}
	setattr("SETATTR size", f, 0, FATTR_SIZE, 0, 5);
	setattr("SETATTR fh mode mtime", f, fh1, FATTR_MODE | FATTR_MTIME | FATTR_MTIME_NOW, 0600, 0);
	setattr("SETATTR fh size", f, fh1, FATTR_SIZE, 0, 3);
	setattr("SETATTR mode atime", f, 0, FATTR_MODE | FATTR_ATIME | FATTR_ATIME_NOW, 0640, 0);
	{
		struct fuse_setattr_in si = { .valid = FATTR_UID | FATTR_GID, .uid = 1000, .gid = 1000 };
		begin(FUSE_SETATTR, f);
		put(&si, sizeof(si));
		serve("SETATTR owner", 0, NULL, 0);
	}
	{
		struct fuse_fallocate_in fi = { .fh = fh1, .offset = 0, .length = 4096 };
		begin(FUSE_FALLOCATE, f);
		put(&fi, sizeof(fi));
		serve("FALLOCATE", 0, NULL, 0);
		struct fuse_lseek_in li = { .fh = fh1, .offset = 0, .whence = SEEK_END };
		begin(FUSE_LSEEK, f);
		put(&li, sizeof(li));
		serve("LSEEK", 0, NULL, 0);
		struct fuse_fsync_in si = { .fh = fh1, .fsync_flags = FUSE_FSYNC_FDATASYNC };
		begin(FUSE_FSYNC, f);
		put(&si, sizeof(si));
		serve("FSYNC", 0, NULL, 0);
		si = (struct fuse_fsync_in){ .fh = FS_NO_HANDLE };
		begin(FUSE_FSYNCDIR, d);
		put(&si, sizeof(si));
		serve("FSYNCDIR", 0, NULL, 0);
		begin(FUSE_SYNCFS, s_root);
		put(&(struct fuse_syncfs_in){ 0 }, sizeof(struct fuse_syncfs_in));
		serve("SYNCFS", 0, NULL, 0);
	}
	{
		uint32_t sx[2] = { 1, 0 }; /* without FUSE_SETXATTR_EXT: size, flags */
		begin(FUSE_SETXATTR, f);
		put(sx, sizeof(sx));
		put_str("user.k");
		put("v", 1);
		serve("SETXATTR", 0, NULL, 0);
	}
	xattr_get(FUSE_GETXATTR, "GETXATTR size", f, "user.k", 0);
	xattr_get(FUSE_GETXATTR, "GETXATTR", f, "user.k", 64);
	xattr_get(FUSE_LISTXATTR, "LISTXATTR size", f, NULL, 0);
	xattr_get(FUSE_LISTXATTR, "LISTXATTR", f, NULL, 256);
	name_op(FUSE_REMOVEXATTR, "REMOVEXATTR", f, "user.k");
	begin(FUSE_SYMLINK, d);
	put_str("l");
	put_str("f");
	l = entry_op("SYMLINK", 0);
	begin(FUSE_READLINK, l);
	serve("READLINK", 0, NULL, 0);
	xattr_get(FUSE_LISTXATTR, "LISTXATTR symlink", l, NULL, 256); /* the path-based way, through the cwd */
	{
		struct fuse_getxattr_in gi = { .size = 64 };
		begin(FUSE_GETXATTR, l);
		put(&gi, sizeof(gi));
		put_str("user.k");
		serve("GETXATTR symlink", -ENODATA, NULL, 0); /* user.* on a symlink: none, by the kernel's rule */
	}
	{
		struct fuse_mknod_in mi = { .mode = S_IFIFO | 0644 };
		begin(FUSE_MKNOD, d);
		put(&mi, sizeof(mi));
		put_str("p");
		p = entry_op("MKNOD", 0);
	}
	{
		struct fuse_link_in li = { .oldnodeid = f };
		begin(FUSE_LINK, s_root);
		put(&li, sizeof(li));
		put_str("h");
		entry_op("LINK", 0);
		struct fuse_rename_in ri = { .newdir = d };
		begin(FUSE_RENAME, s_root);
		put(&ri, sizeof(ri));
		put_str("h");
		put_str("g");
		serve("RENAME", 0, NULL, 0);
	}
	t = create(FUSE_TMPFILE, d, NULL, O_RDWR, &fh3);
	{
		struct fuse_copy_file_range_in ci = { .fh_in = fh1, .off_in = 0, .nodeid_out = t, .fh_out = fh3,
		                                      .off_out = 0, .len = 3 };
		begin(FUSE_COPY_FILE_RANGE, f);
		put(&ci, sizeof(ci));
		serve("COPY_FILE_RANGE", 0, NULL, 0);
	}
	release(FUSE_RELEASE, t, fh3, 0, 0);
	dfh = open_op(FUSE_OPENDIR, d, O_RDONLY);
	rw(FUSE_READDIRPLUS, d, dfh, NULL, 4096);
	release(FUSE_RELEASEDIR, d, dfh, 0, 0);
	dfh = open_op(FUSE_OPENDIR, s_root, O_RDONLY);
	rw(FUSE_READDIR, s_root, dfh, NULL, 4096);
	release(FUSE_RELEASEDIR, s_root, dfh, 0, 0);
	{
		/* The tables grow: READDIRPLUS of MANY files takes a lookup of each (slots realloc'ed, hash buckets
		 * calloc'ed anew), then HANDLES directory handles at once (handle slots realloc'ed). */
		static uint64_t dfhs[HANDLES];
		uint64_t many = lookup(s_root, "many", 0);
		dfh = open_op(FUSE_OPENDIR, many, O_RDONLY);
		/* First a part (the entry that does not fit was looked up and is forgotten again), then the rest. */
		s_dirents = 0;
		uint64_t off = readdirplus(many, dfh, 0, 4096);
		unsigned first = s_dirents;
		readdirplus(many, dfh, off, 32768);
		if (s_run->baseline && (first >= MANY || s_dirents != MANY + 2))
			BAD("READDIRPLUS of many/ gave %u then %u entries, want a part then the rest of %d", first,
			    s_dirents - first, MANY + 2);
		release(FUSE_RELEASEDIR, many, dfh, 0, 0);
		for (int i = 0; i < HANDLES; i++)
			dfhs[i] = open_op(FUSE_OPENDIR, many, O_RDONLY);
		for (int i = 0; i < HANDLES; i++)
			release(FUSE_RELEASEDIR, many, dfhs[i], 0, 0);
	}
	lookup(d, "g", 0);
	fh2 = open_op(FUSE_OPEN, f, O_RDONLY);
	lk("SETLK", FUSE_SETLK, f, fh2, 7, F_RDLCK, 0, NULL);
	{
		struct fuse_lk_out lo = { 0 };
		lk("GETLK", FUSE_GETLK, f, fh2, 8, F_WRLCK, 0, &lo);
		if (s_run->baseline && (lo.lk.type != F_RDLCK || lo.lk.pid != 42))
			BAD("GETLK saw type %u pid %u, want the read lock of pid 42", lo.lk.type, lo.lk.pid);
	}
	lk("SETLK unlock", FUSE_SETLK, f, fh2, 7, F_UNLCK, 0, NULL);
	lk("SETLK flock", FUSE_SETLK, f, fh1, 9, F_WRLCK, FUSE_LK_FLOCK, NULL);
	{
		struct fuse_flush_in fi = { .fh = fh2, .lock_owner = 7 };
		begin(FUSE_FLUSH, f);
		put(&fi, sizeof(fi));
		serve("FLUSH", 0, NULL, 0);
	}
	release(FUSE_RELEASE, f, fh2, 0, 7);
	release(FUSE_RELEASE, f, fh1, FUSE_RELEASE_FLOCK_UNLOCK, 9);
	{
		struct fuse_access_in ai = { .mask = R_OK | X_OK };
		s_as = as_user;
		begin(FUSE_ACCESS, d);
		put(&ai, sizeof(ai));
		serve("ACCESS", 0, NULL, 0);
		s_as = as_root;
		begin(FUSE_STATFS, s_root);
		serve("STATFS", 0, NULL, 0);
	}
	name_op(FUSE_UNLINK, "UNLINK g", d, "g");
	name_op(FUSE_UNLINK, "UNLINK l", d, "l");
	name_op(FUSE_UNLINK, "UNLINK p", d, "p");
	name_op(FUSE_UNLINK, "UNLINK f", d, "f");
	name_op(FUSE_RMDIR, "RMDIR", s_root, "d");
	(void)p;

	/* The guest's view undone: one FORGET, then a BATCH_FORGET of the rest, each with its exact count. */
	if (s_nnodes > 0) {
		struct fuse_forget_in fi = { .nlookup = s_nodes[0].n };
		begin(FUSE_FORGET, s_nodes[0].id);
		put(&fi, sizeof(fi));
		serve("FORGET", 1, NULL, 0);
	}
	{
		struct fuse_batch_forget_in bi = { .count = s_nnodes > 0 ? s_nnodes - 1 : 0 };
		begin(FUSE_BATCH_FORGET, 0);
		put(&bi, sizeof(bi));
		for (unsigned i = 1; i < s_nnodes; i++) {
			struct fuse_forget_one one = { .nodeid = s_nodes[i].id, .nlookup = s_nodes[i].n };
			put(&one, sizeof(one));
		}
		serve("BATCH_FORGET", 1, NULL, 0);
	}
	uint64_t ninodes, nhandles;
	fs_counts(s_fs, &ninodes, &nhandles);
	uint64_t ranges, parts, copies;
	fs_dax_counts(s_fs, &ranges, &parts, &copies);
	if (ranges)
		BAD("%llu DAX ranges still mapped after REMOVEMAPPING", (unsigned long long)ranges);
	if (ninodes != 1 || nhandles != 0)
		BAD("after every handle was released and every lookup forgotten: %llu inodes (want the root only), "
		    "%llu handles", (unsigned long long)ninodes, (unsigned long long)nhandles);
	begin(FUSE_DESTROY, 0);
	serve("DESTROY", 0, NULL, 0);
	if (s_win.n)
		BAD("%u mappings left in the DAX window after DESTROY", s_win.n);
}

/* ---- fds ---- */

struct fdset {
	uint64_t bits[16];
};

static void open_fds(struct fdset *s)
{
	memset(s, 0, sizeof(*s));
	DIR *dp = opendir("/proc/self/fd");
	if (!dp)
		abort();
	int self = dirfd(dp);
	for (struct dirent *e; (e = readdir(dp));) {
		int fd = atoi(e->d_name);
		if (e->d_name[0] != '.' && fd != self && fd < 1024)
			s->bits[fd / 64] |= 1ull << (fd % 64);
	}
	closedir(dp);
}

static void check_fds(const struct fdset *before)
{
	struct fdset now;
	open_fds(&now);
	for (int fd = 0; fd < 1024; fd++) {
		bool was = before->bits[fd / 64] >> (fd % 64) & 1, is = now.bits[fd / 64] >> (fd % 64) & 1;
		if (was != is) {
			char link[64], what[PATH_MAX];
			snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
			ssize_t n = readlink(link, what, sizeof(what) - 1);
			what[n > 0 ? n : 0] = 0;
			BAD("fd %d (%.200s) %s after fs_free", fd, what, is ? "is open" : "was closed");
			return;
		}
	}
}

/* ---- running ---- */

/*
 * Where shares go: tmpfs when it takes user.* xattrs and O_TMPFILE (Linux 6.6 on), since a run there costs a
 * few ms against ~20 on a disk file system (syncfs, fsync, creating and removing many/), else /tmp.
 */
static const char *g_base = "/tmp";

static void choose_base(void)
{
	char dir[64] = "/dev/shm/vufs-faults-probe-XXXXXX";
	if (!mkdtemp(dir))
		return;
	int fd = open(dir, O_RDWR | O_TMPFILE | O_CLOEXEC, 0600);
	if (fd >= 0 && setxattr(dir, "user.probe", "1", 1, 0) == 0)
		g_base = "/dev/shm";
	if (fd >= 0)
		close(fd);
	rmdir(dir);
}

static void *session_thread(void *arg)
{
	struct run *r = arg;
	struct fdset fds;
	int cwd = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);

	s_run = r;
	s_unique = 0;
	s_nnodes = 0;
	s_srv = NULL;
	s_fs = NULL;
	open_fds(&fds);
	g_calls = 0;
	g_fail_at = r->fail_at;
	g_persistent = r->persistent;
	g_fired = false;
	g_step = -1;
	live_reset();
	g_track = true;

	struct fs_config cfg = { .source = r->dir, .xattr = true, .posix_lock = true, .flock = true,
	                         .cache = FS_CACHE_AUTO, .inode_file_handles = g_handles };
	struct fuse_server_opts so = { .readdirplus = true, .posix_lock = true, .flock = true };
	struct dev_services svc;
	if (shm_window_init(&s_win, 8u << 20) < 0)
		abort();
	shm_window_services(&s_win, &svc);
	g_armed = true;
	int rc = fs_new(&cfg, &s_fs);
	if (rc == 0 && (rc = fs_inode_handles_start(s_fs)) < 0) {
		fs_free(s_fs);
		s_fs = NULL;
	}
	if (rc == 0) {
		rc = fuse_server_new(&fs_passthrough_ops, s_fs, &so, &s_srv);
		if (rc < 0) {
			fs_free(s_fs);
			s_fs = NULL;
		}
	}
	/* Without the window (its table could not be allocated) the session goes on: mapping is then ENOSYS. */
	s_dax = rc == 0 && fs_dax_attach(s_fs, &svc) == 0 && fs_dax_window(s_fs) != 0;
	g_armed = false;
	if (rc < 0) {
		if (r->baseline || !g_fired)
			BAD("fs_new/fuse_server_new: %d without a fault", rc);
		r->err_replies++; /* the session could not start: the error went to the caller */
	} else {
		session();
		g_armed = true;
		fuse_server_free(s_srv);
		fs_free(s_fs);
		g_armed = false;
	}
	shm_window_destroy(&s_win);
	g_track = false;
	r->calls = g_calls;
	r->fired = g_fired;
	r->fired_sym = g_fired_sym;
	r->fired_step = g_fired_step;
	if (g_nlive)
		BAD("%u allocations made during the session are still live after fs_free", g_nlive);
	if (cwd >= 0 && fchdir(cwd) < 0)
		BAD("cannot restore the working directory");
	check_fds(&fds);
	if (cwd >= 0)
		close(cwd);
	return NULL;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void run_one(struct run *r)
{
	pthread_t th;
	char path[128];
	snprintf(r->dir, sizeof(r->dir), "%s/vufs-faults-XXXXXX", g_base);
	assert_non_null(mkdtemp(r->dir));
	snprintf(path, sizeof(path), "%s/many", r->dir);
	assert_int_equal(mkdir(path, 0755), 0);
	for (int i = 0; i < MANY; i++) {
		snprintf(path, sizeof(path), "%s/many/n%02d", r->dir, i);
		int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
		assert_true(fd >= 0);
		close(fd);
	}
	assert_int_equal(pthread_create(&th, NULL, session_thread, r), 0);
	assert_int_equal(pthread_join(th, NULL), 0);
	nftw(r->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static struct run g_base_run, g_r;
static bool g_verbose; /* VUFS_FAULTS_VERBOSE=1: one line per N */

static unsigned long baseline(void)
{
	memset(&g_base_run, 0, sizeof(g_base_run));
	memset(g_sym_calls, 0, sizeof(g_sym_calls));
	g_base_run.baseline = true;
	run_one(&g_base_run);
	if (g_base_run.fail[0])
		fail_msg("without a fault: %s", g_base_run.fail);
	return g_base_run.calls;
}

static void walk(bool persistent)
{
	unsigned long k = baseline();
	unsigned errors = 0, absorbed = 0, failed = 0;
	double t0 = now_s();

	assert_true(k > 0);
	/* The wrappers must see the calls that matter (a new name from the headers would escape them silently). */
	static const enum sym must[] = { S_CALLOC, S_MALLOC, S_OPENAT, S_OPEN, S_CLOSE, S_STATX, S_FCNTL,
	                                 S_PREADV, S_PWRITEV, S_SYSCALL, S_FGETXATTR, S_LISTXATTR, S_FCHDIR };
	for (size_t i = 0; i < ARRAY_SIZE(must); i++)
		if (!g_sym_calls[must[i]])
			fail_msg("the baseline made no %s call: is it still the symbol wrapped?", sym_name[must[i]]);
	if (g_handles && (!g_sym_calls[S_NAME_TO_HANDLE] || !g_sym_calls[S_OPEN_BY_HANDLE]))
		fail_msg("the baseline with inode file handles made no name_to_handle_at or open_by_handle_at call");
	if (!persistent) {
		printf("shares in %s\n", g_base);
		printf("K = %lu armed calls in the session (%d requests):", k, g_base_run.nsteps);
		for (int s = 0; s < S_COUNT; s++)
			if (g_sym_calls[s])
				printf(" %s %lu", sym_name[s], g_sym_calls[s]);
		printf("\n");
	}
	for (unsigned long n = 1; n <= k; n++) {
		memset(&g_r, 0, sizeof(g_r));
		g_r.fail_at = n;
		g_r.persistent = persistent;
		run_one(&g_r);
		if (!g_r.fired && !g_r.fail[0])
			snprintf(g_r.fail, sizeof(g_r.fail), "call %lu never came (the session made %lu): not deterministic",
			         n, g_r.calls);
		if (g_r.fail[0]) {
			failed++;
			fprintf(stderr, "%s N=%lu (%s in step %s): %s\n", persistent ? "persistent" : "one-shot", n,
			        sym_name[g_r.fired_sym],
			        g_r.fired_step >= 0 ? g_base_run.step_name[g_r.fired_step] : "set-up/tear-down", g_r.fail);
			continue;
		}
		if (g_r.err_replies)
			errors++;
		else
			absorbed++;
		if (g_verbose) {
			int first = -1;
			for (int i = 0; i < g_r.nsteps && first < 0; i++)
				if (g_r.err[i] != g_base_run.err[i])
					first = i;
			printf("  %s N=%lu: %s in %s -> ", persistent ? "persistent" : "one-shot", n,
			       sym_name[g_r.fired_sym],
			       g_r.fired_step >= 0 ? g_base_run.step_name[g_r.fired_step] : "set-up/tear-down");
			if (first >= 0)
				printf("first changed reply: %s error %d\n", g_base_run.step_name[first], g_r.err[first]);
			else
				printf("%s\n", g_r.err_replies ? "the session could not start" : "absorbed");
		}
	}
	printf("%s: N = 1..%lu: %u runs gave error replies, %u none (the failure absorbed: a close, a fallback, a "
	       "listing or read cut short), %u broke an invariant; %.2f s\n", persistent ? "persistent" : "one-shot", k, errors, absorbed, failed,
	       now_s() - t0);
	assert_int_equal(failed, 0);
}

static void test_baseline_session_gets_the_expected_replies(void **state)
{
	(void)state;
	baseline();
}

static void test_every_single_failure_becomes_an_error_reply_without_leaks(void **state)
{
	(void)state;
	walk(false);
}

static void test_every_failure_from_n_on_becomes_an_error_reply_without_leaks(void **state)
{
	(void)state;
	walk(true);
}

/* The same session with inodes kept by file handle: prefer absorbs a handle that cannot be made (that inode keeps
 * its fd), mandatory turns it into the lookup's error; a handle that does not open is the request's error. */
static void test_with_handles_every_single_failure_becomes_an_error_reply_without_leaks(void **state)
{
	(void)state;
	g_handles = FS_HANDLES_PREFER;
	walk(false);
	g_handles = FS_HANDLES_NEVER;
}

static void test_with_handles_every_failure_from_n_on_becomes_an_error_reply_without_leaks(void **state)
{
	(void)state;
	g_handles = FS_HANDLES_MANDATORY;
	walk(true);
	g_handles = FS_HANDLES_NEVER;
}

int main(void)
{
	log_init("test_fs_faults", LOG_LVL_ERROR, false);
	g_verbose = getenv("VUFS_FAULTS_VERBOSE") && getenv("VUFS_FAULTS_VERBOSE")[0] == '1';
	setvbuf(stdout, NULL, _IOLBF, 0);
	choose_base();
	g_worker = fuse_worker_new(16);
	if (!g_worker)
		return 1;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_baseline_session_gets_the_expected_replies),
		cmocka_unit_test(test_every_single_failure_becomes_an_error_reply_without_leaks),
		cmocka_unit_test(test_every_failure_from_n_on_becomes_an_error_reply_without_leaks),
		cmocka_unit_test(test_with_handles_every_single_failure_becomes_an_error_reply_without_leaks),
		cmocka_unit_test(test_with_handles_every_failure_from_n_on_becomes_an_error_reply_without_leaks),
	};
	int ret = cmocka_run_group_tests(tests, NULL, NULL);
	fuse_worker_free(g_worker);
	return ret;
}

/*
 * vufs-posix — POSIX file-system conformance checks.
 *
 *   vufs-posix [-q] [-k CASE] DIR
 *
 * Creates a fresh directory DIR/vufs-posix.<pid>, runs every case in its own
 * subdirectory of it and removes it again (best effort).  The same binary is run
 * natively on a host directory and inside a guest on a vufs mount, and the two
 * outputs are compared line by line, so the output is deterministic: one line
 * per case in a fixed order,
 *
 *   PASS name
 *   FAIL name: reason (line N)
 *   SKIP name: reason
 *
 * and a last line "RESULT N passed, N failed, N skipped".  No line carries a
 * pid, a time or an address.  Exit 0 when nothing failed, 1 otherwise, 2 on a
 * usage error.
 *
 *   -k CASE  run only the cases whose name contains CASE
 *   -q       quick mode: smaller directories and writer loads, for slow guests
 *
 * Must run as root: the permission cases fork children that switch to the
 * numeric uids 1000 and 1001 and gids 1000, 1001 and 1002 (root would bypass
 * the checks they make).  Nothing is looked up by name, because the test guest
 * has no /etc/passwd.
 *
 * Each case runs in a forked child (its own process group) under an alarm, so
 * a crash or a hang is reported as that case's FAIL and the others still run.
 * The reason of the first failed check is written to memory shared by the
 * whole process tree of the case, so a check that fails in a helper process
 * (another uid, a lock holder, a concurrent writer) is the one reported.
 *
 * Where Linux file systems legitimately differ (SEEK_HOLE reporting, optional
 * features such as O_TMPFILE or RENAME_WHITEOUT), a check accepts every
 * behaviour Linux allows, or the case is SKIPped with a reason.
 *
 * Self-contained, glibc only: it also runs statically linked inside the
 * busybox test guest.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#define CASE_TIMEOUT 120 /* seconds per case, enforced by alarm() in the case process */

#define KiB (1024LL)
#define MiB (1024 * KiB)
#define GiB (1024 * MiB)

static bool quick;

/* ------------------------------------------------------------------------- */
/* Outcome of the running case, shared by every process of the case.         */

enum { OUT_NONE, OUT_FAIL, OUT_SKIP };

struct outcome {
	int claimed; /* set once, by the first process that records a result */
	int kind;
	char msg[480];
};

static struct outcome *out;

static const char *errname(int e)
{
	static char buf[32];
	const char *s = e ? strerrorname_np(e) : NULL;

	if (s)
		return s;
	snprintf(buf, sizeof buf, "errno %d", e);
	return buf;
}

static void record(int kind, int line, const char *fmt, va_list ap)
{
	if (!__sync_bool_compare_and_swap(&out->claimed, 0, 1))
		return;
	int n = vsnprintf(out->msg, sizeof out->msg, fmt, ap);
	if (line && n >= 0 && (size_t)n < sizeof out->msg)
		snprintf(out->msg + n, sizeof out->msg - n, " (line %d)", line);
	__sync_synchronize();
	out->kind = kind;
}

/* Checks end the calling process: the case is over at its first failure. */
__attribute__((noreturn, format(printf, 2, 3)))
static void fail_at(int line, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	record(OUT_FAIL, line, fmt, ap);
	va_end(ap);
	_exit(1);
}

/* Only for the case process itself, never for its helpers. */
__attribute__((noreturn, format(printf, 1, 2)))
static void skip(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	record(OUT_SKIP, 0, fmt, ap);
	va_end(ap);
	_exit(0);
}

#define FAIL(...) fail_at(__LINE__, __VA_ARGS__)
#define CHECK(cond, ...) do { if (!(cond)) fail_at(__LINE__, __VA_ARGS__); } while (0)

/* A call that must succeed (return >= 0); evaluates to its result. */
#define OK(expr) ({ \
	__typeof__(expr) ok_r_ = (expr); \
	if (ok_r_ < 0) \
		fail_at(__LINE__, "%s: %s", #expr, errname(errno)); \
	ok_r_; })

/* A call that must fail with errno e1 (or e2, where POSIX allows either). */
#define FAILS2(expr, e1, e2) do { \
	errno = 0; \
	long f_r_ = (long)(expr); \
	expect_errno(__LINE__, #expr, f_r_, errno, (e1), (e2)); \
} while (0)
#define FAILS(expr, e) FAILS2(expr, e, e)

/* Integers that must be equal; a -1 result also shows errno. */
#define EQ(got, want, what) do { \
	errno = 0; \
	long long eq_g_ = (long long)(got); \
	int eq_e_ = errno; \
	long long eq_w_ = (long long)(want); \
	if (eq_g_ != eq_w_) \
		fail_at(__LINE__, "%s: expected %lld, got %lld%s%s", (what), eq_w_, eq_g_, \
			eq_g_ == -1 ? " " : "", eq_g_ == -1 ? errname(eq_e_) : ""); \
} while (0)

#define EQ_MODE(got, want, what) do { \
	unsigned m_g_ = (unsigned)(got), m_w_ = (unsigned)(want); \
	if (m_g_ != m_w_) \
		fail_at(__LINE__, "%s: expected mode %04o, got %04o", (what), m_w_, m_g_); \
} while (0)

static void expect_errno(int line, const char *call, long r, int err, int e1, int e2)
{
	if (r == -1 && (err == e1 || err == e2))
		return;
	char want[80];
	if (e1 == e2)
		snprintf(want, sizeof want, "%s", errname(e1));
	else
		snprintf(want, sizeof want, "%s or %s", errname(e1), errname(e2));
	if (r == -1)
		fail_at(line, "%s: expected %s, got %s", call, want, errname(err));
	fail_at(line, "%s: expected %s, got success", call, want);
}

/* ------------------------------------------------------------------------- */
/* Small helpers                                                              */

static void *xmalloc(size_t n)
{
	void *p = calloc(1, n ? n : 1);

	if (!p)
		FAIL("out of memory (%zu bytes)", n);
	return p;
}

static struct stat xstat(const char *path)
{
	struct stat st;

	if (stat(path, &st) < 0)
		FAIL("stat(%s): %s", path, errname(errno));
	return st;
}

static struct stat xlstat(const char *path)
{
	struct stat st;

	if (lstat(path, &st) < 0)
		FAIL("lstat(%s): %s", path, errname(errno));
	return st;
}

static struct stat xfstat(int fd)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		FAIL("fstat: %s", errname(errno));
	return st;
}

/* Deterministic, never-zero bytes: position and seed tell where data came from. */
static unsigned char pat(unsigned seed, uint64_t off)
{
	uint64_t x = (off + 1) * 0x9E3779B97F4A7C15ull ^ (seed + 1) * 0xC2B2AE3D27D4EB4Full;

	x ^= x >> 31;
	x *= 0xBF58476D1CE4E5B9ull;
	x ^= x >> 29;
	return (unsigned char)(x % 255 + 1);
}

static void fill(void *buf, size_t len, unsigned seed, uint64_t off)
{
	unsigned char *b = buf;

	for (size_t i = 0; i < len; i++)
		b[i] = pat(seed, off + i);
}

/* Index of the first byte that differs from the pattern, or -1. */
static long long mismatch(const void *buf, size_t len, unsigned seed, uint64_t off)
{
	const unsigned char *b = buf;

	for (size_t i = 0; i < len; i++)
		if (b[i] != pat(seed, off + i))
			return (long long)i;
	return -1;
}

static long long first_nonzero(const void *buf, size_t len)
{
	const unsigned char *b = buf;

	for (size_t i = 0; i < len; i++)
		if (b[i])
			return (long long)i;
	return -1;
}

static void pwrite_all(int fd, const void *buf, size_t len, off_t off)
{
	const char *p = buf;

	while (len) {
		ssize_t n = pwrite(fd, p, len, off);
		if (n < 0)
			FAIL("pwrite(%zu bytes at %lld): %s", len, (long long)off, errname(errno));
		if (n == 0)
			FAIL("pwrite(%zu bytes at %lld) wrote nothing", len, (long long)off);
		p += n, len -= (size_t)n, off += n;
	}
}

/* Reads until len bytes or end of file; returns the count. */
static size_t pread_full(int fd, void *buf, size_t len, off_t off)
{
	char *p = buf;
	size_t done = 0;

	while (done < len) {
		ssize_t n = pread(fd, p + done, len - done, off + (off_t)done);
		if (n < 0)
			FAIL("pread(%zu bytes at %lld): %s", len - done, (long long)(off + (off_t)done),
			     errname(errno));
		if (n == 0)
			break;
		done += (size_t)n;
	}
	return done;
}

static void expect_pat(int fd, off_t off, size_t len, unsigned seed, const char *what)
{
	unsigned char *b = xmalloc(len);
	size_t got = pread_full(fd, b, len, off);

	if (got != len)
		FAIL("%s: short read at %lld: %zu of %zu bytes", what, (long long)off, got, len);
	long long bad = mismatch(b, len, seed, off);
	if (bad >= 0)
		FAIL("%s: wrong data at offset %lld", what, (long long)off + bad);
	free(b);
}

static void expect_zero(int fd, off_t off, size_t len, const char *what)
{
	unsigned char *b = xmalloc(len);
	size_t got = pread_full(fd, b, len, off);

	if (got != len)
		FAIL("%s: short read at %lld: %zu of %zu bytes", what, (long long)off, got, len);
	long long bad = first_nonzero(b, len);
	if (bad >= 0)
		FAIL("%s: non-zero byte at offset %lld", what, (long long)off + bad);
	free(b);
}

static void make_file(const char *path, mode_t mode, size_t len, unsigned seed)
{
	unsigned char *b = xmalloc(len);
	int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, mode);

	if (fd < 0)
		FAIL("create %s: %s", path, errname(errno));
	fill(b, len, seed, 0);
	pwrite_all(fd, b, len, 0);
	OK(close(fd));
	free(b);
}

static void put_file(const char *path, const char *s)
{
	int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0644);

	if (fd < 0)
		FAIL("create %s: %s", path, errname(errno));
	pwrite_all(fd, s, strlen(s), 0);
	OK(close(fd));
}

/* The file's whole content as a string (files here are small). */
static const char *get_file(const char *path)
{
	static char buf[4096];
	int fd = open(path, O_RDONLY);

	if (fd < 0)
		FAIL("open %s: %s", path, errname(errno));
	size_t n = pread_full(fd, buf, sizeof buf - 1, 0);
	buf[n] = 0;
	close(fd);
	return buf;
}

static bool is_dot(const char *name)
{
	return !strcmp(name, ".") || !strcmp(name, "..");
}

/* Entries other than . and .. */
static int count_entries(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *e;
	int n = 0;

	if (!d)
		FAIL("opendir(%s): %s", path, errname(errno));
	for (errno = 0; (e = readdir(d)); errno = 0)
		if (!is_dot(e->d_name))
			n++;
	if (errno)
		FAIL("readdir(%s): %s", path, errname(errno));
	closedir(d);
	return n;
}

static void mkdir_mode(const char *path, mode_t mode)
{
	if (mkdir(path, 0700) < 0)
		FAIL("mkdir(%s): %s", path, errname(errno));
	/* chmod, not the mkdir mode, so that the umask and setgid parents don't interfere */
	if (chmod(path, mode) < 0)
		FAIL("chmod(%s, %04o): %s", path, mode, errname(errno));
}

static void wait_ok(pid_t pid, const char *what)
{
	int st;

	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			FAIL("waitpid (%s): %s", what, errname(errno));
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
		return;
	if (WIFSIGNALED(st))
		FAIL("%s: killed by signal SIG%s", what, sigabbrev_np(WTERMSIG(st)));
	FAIL("%s: exited with status %d", what, WEXITSTATUS(st));
}

/*
 * Forks; the child runs as uid/gid with exactly the given supplementary
 * groups, umask 022.  Returns 0 in the child, which must end with _exit(0).
 */
static pid_t fork_as(uid_t uid, gid_t gid, size_t ngroups, const gid_t *groups)
{
	fflush(stdout);
	pid_t pid = OK(fork());
	if (pid == 0) {
		if (setgroups(ngroups, groups) < 0 || setresgid(gid, gid, gid) < 0 ||
		    setresuid(uid, uid, uid) < 0)
			FAIL("cannot switch to uid %u gid %u: %s", (unsigned)uid, (unsigned)gid,
			     errname(errno));
		umask(022);
	}
	return pid;
}

/* AS_USER(uid, gid, supplementary groups...) */
#define AS_USER(uid, gid, ...) \
	fork_as((uid), (gid), sizeof((gid_t[]){ __VA_ARGS__ }) / sizeof(gid_t), (gid_t[]){ __VA_ARGS__ })

enum { TIMED_OUT = -2, END_OF_FILE = -1 };

/* One byte from a pipe, END_OF_FILE or TIMED_OUT. */
static int read_byte(int fd, int timeout_ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	int r;

	do
		r = poll(&p, 1, timeout_ms);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		FAIL("poll: %s", errname(errno));
	if (r == 0)
		return TIMED_OUT;
	unsigned char c;
	ssize_t n = read(fd, &c, 1);
	return n == 1 ? c : END_OF_FILE;
}

static void send_byte(int fd, char c)
{
	if (write(fd, &c, 1) != 1)
		FAIL("write to pipe: %s", errname(errno));
}

/*
 * Forks n workers that start at the same moment, runs work(i, arg) in each and
 * waits for all of them.
 */
static void run_workers(int n, void (*work)(int i, const void *arg), const void *arg)
{
	int gate[2];
	pid_t pids[16];

	OK(pipe(gate));
	fflush(stdout);
	for (int i = 0; i < n; i++) {
		pids[i] = OK(fork());
		if (pids[i] == 0) {
			char c;
			close(gate[1]);
			if (read(gate[0], &c, 1) != 0)
				FAIL("worker start gate: unexpected read");
			work(i, arg);
			_exit(0);
		}
	}
	close(gate[0]);
	close(gate[1]); /* EOF on the gate starts everyone */
	for (int i = 0; i < n; i++)
		wait_ok(pids[i], "worker process");
}

#define LK(type, start, len) \
	(&(struct flock){ .l_type = (type), .l_whence = SEEK_SET, .l_start = (start), .l_len = (len) })

/* ------------------------------------------------------------------------- */
/* file_*                                                                     */

static void t_file_create_rw(void)
{
	enum { LEN = 10000 };
	static unsigned char buf[LEN], back[LEN];

	fill(buf, LEN, 1, 0);
	int fd = OK(open("f", O_CREAT | O_EXCL | O_RDWR, 0644));
	EQ(write(fd, buf, LEN), LEN, "write 10000 bytes");
	struct stat st = xfstat(fd);
	CHECK(S_ISREG(st.st_mode), "fstat: not a regular file");
	EQ(st.st_size, LEN, "fstat size after write");
	EQ_MODE(st.st_mode & 07777, 0644, "mode of new file");
	EQ(st.st_nlink, 1, "nlink of new file");
	EQ(lseek(fd, 0, SEEK_CUR), LEN, "file offset after write");
	EQ(lseek(fd, 0, SEEK_SET), 0, "lseek to start");
	EQ(read(fd, back, LEN), LEN, "read back");
	CHECK(!memcmp(buf, back, LEN), "read back: data differs");
	EQ(read(fd, back, LEN), 0, "read at end of file");
	OK(close(fd));

	fd = OK(open("f", O_RDONLY));
	memset(back, 0, LEN);
	EQ(pread_full(fd, back, LEN, 0), LEN, "read after reopen");
	CHECK(!memcmp(buf, back, LEN), "read after reopen: data differs");
	EQ(xstat("f").st_size, LEN, "stat size");
	OK(close(fd));
}

static void t_file_o_excl(void)
{
	put_file("f", "keep");
	FAILS(open("f", O_CREAT | O_EXCL | O_WRONLY, 0644), EEXIST);
	/* O_EXCL must not follow a symlink, even a dangling one */
	OK(symlink("missing", "dangling"));
	FAILS(open("dangling", O_CREAT | O_EXCL | O_WRONLY, 0644), EEXIST);
	FAILS(stat("missing", &(struct stat){ 0 }), ENOENT);
	OK(mkdir("d", 0755));
	FAILS(open("d", O_CREAT | O_EXCL | O_RDONLY, 0644), EEXIST);

	int fd = OK(open("f", O_CREAT | O_WRONLY, 0600));
	OK(close(fd));
	CHECK(!strcmp(get_file("f"), "keep"), "O_CREAT without O_EXCL changed an existing file");
	EQ_MODE(xstat("f").st_mode & 07777, 0644, "O_CREAT on existing file changed its mode");
}

static void t_file_o_append(void)
{
	put_file("f", "0123456789");
	int fd = OK(open("f", O_WRONLY | O_APPEND));
	EQ(lseek(fd, 0, SEEK_SET), 0, "lseek");
	EQ(write(fd, "abc", 3), 3, "append write");
	EQ(lseek(fd, 0, SEEK_CUR), 13, "offset after append");
	EQ(lseek(fd, 2, SEEK_SET), 2, "lseek");
	EQ(write(fd, "de", 2), 2, "second append write");
	/* Linux appends with pwrite on an O_APPEND descriptor too (see pwrite(2), BUGS) */
	EQ(pwrite(fd, "f", 1, 0), 1, "pwrite on O_APPEND descriptor");
	EQ(xfstat(fd).st_size, 16, "size after appends");
	OK(close(fd));
	CHECK(!strcmp(get_file("f"), "0123456789abcdef"), "content after appends: \"%s\"",
	      get_file("f"));

	/* O_RDWR|O_APPEND reads at the file offset, but writes at the end */
	fd = OK(open("f", O_RDWR | O_APPEND));
	char c;
	EQ(read(fd, &c, 1), 1, "read");
	CHECK(c == '0', "read from O_APPEND descriptor returned the wrong byte");
	EQ(write(fd, "g", 1), 1, "append write");
	EQ(xfstat(fd).st_size, 17, "size after append");
	OK(close(fd));
}

static void t_file_o_trunc(void)
{
	make_file("f", 0644, 5000, 2);
	/* an old mtime, so that the update by O_TRUNC is visible on any clock */
	struct timespec old[2] = { { 1000000000, 0 }, { 1000000000, 0 } };
	OK(utimensat(AT_FDCWD, "f", old, 0));

	int fd = OK(open("f", O_WRONLY | O_TRUNC));
	struct stat st = xfstat(fd);
	EQ(st.st_size, 0, "size after O_TRUNC");
	CHECK(st.st_mtim.tv_sec != 1000000000, "O_TRUNC of a non-empty file did not update mtime");
	EQ(write(fd, "x", 1), 1, "write");
	OK(close(fd));
	EQ(xstat("f").st_size, 1, "size after write");
	CHECK(!strcmp(get_file("f"), "x"), "content after O_TRUNC and write");

	/* O_TRUNC on an empty file, and with O_CREAT on an existing file */
	fd = OK(open("f", O_WRONLY | O_CREAT | O_TRUNC, 0644));
	EQ(xfstat(fd).st_size, 0, "size after O_CREAT|O_TRUNC");
	OK(close(fd));
	fd = OK(open("f", O_RDWR | O_TRUNC));
	EQ(xfstat(fd).st_size, 0, "size after O_TRUNC of empty file");
	OK(close(fd));
}

static void t_file_o_tmpfile(void)
{
	enum { LEN = 10000 };
	static unsigned char buf[LEN];
	int fd = open(".", O_TMPFILE | O_RDWR, 0600);

	if (fd < 0 && (errno == EOPNOTSUPP || errno == EISDIR))
		skip("O_TMPFILE not supported (%s)", errname(errno));
	CHECK(fd >= 0, "open(O_TMPFILE): %s", errname(errno));
	fill(buf, LEN, 3, 0);
	pwrite_all(fd, buf, LEN, 0);
	struct stat st = xfstat(fd);
	EQ(st.st_nlink, 0, "nlink of O_TMPFILE file");
	CHECK(S_ISREG(st.st_mode), "O_TMPFILE file is not a regular file");
	EQ_MODE(st.st_mode & 07777, 0600, "mode of O_TMPFILE file");
	EQ(st.st_size, LEN, "size of O_TMPFILE file");
	EQ(count_entries("."), 0, "entries in directory with an unnamed O_TMPFILE file");

	/* /proc may be missing in a minimal guest; AT_EMPTY_PATH needs CAP_DAC_READ_SEARCH, which root has */
	bool have_proc = access("/proc/self/fd", F_OK) == 0;
	char proc[64];
	snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
	if (have_proc)
		OK(linkat(AT_FDCWD, proc, AT_FDCWD, "named", AT_SYMLINK_FOLLOW));
	else
		OK(linkat(fd, "", AT_FDCWD, "named", AT_EMPTY_PATH));
	struct stat named = xstat("named");
	EQ(named.st_ino, st.st_ino, "inode of linked O_TMPFILE file");
	EQ(named.st_nlink, 1, "nlink after linkat");
	EQ(xfstat(fd).st_nlink, 1, "fstat nlink after linkat");
	int rfd = OK(open("named", O_RDONLY));
	expect_pat(rfd, 0, LEN, 3, "content of linked O_TMPFILE file");
	OK(close(rfd));
	OK(close(fd));

	/* O_EXCL forbids ever linking it in */
	fd = OK(open(".", O_TMPFILE | O_RDWR | O_EXCL, 0600));
	snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
	if (have_proc)
		FAILS(linkat(AT_FDCWD, proc, AT_FDCWD, "excl", AT_SYMLINK_FOLLOW), ENOENT);
	else
		FAILS(linkat(fd, "", AT_FDCWD, "excl", AT_EMPTY_PATH), ENOENT);
	OK(close(fd));
	EQ(count_entries("."), 1, "entries after linking one O_TMPFILE file");
}

static void t_file_unlink_open(void)
{
	put_file("f", "hello");
	int fd = OK(open("f", O_RDWR));
	struct stat before = xfstat(fd);
	OK(unlink("f"));
	FAILS(stat("f", &(struct stat){ 0 }), ENOENT);
	EQ(count_entries("."), 0, "entries after unlinking an open file");
	struct stat st = xfstat(fd);
	EQ(st.st_nlink, 0, "fstat nlink of unlinked open file");
	EQ(st.st_size, 5, "fstat size of unlinked open file");

	EQ(pwrite(fd, " world", 6, 5), 6, "write to unlinked file");
	char buf[32] = { 0 };
	EQ(pread(fd, buf, sizeof buf, 0), 11, "read from unlinked file");
	CHECK(!strcmp(buf, "hello world"), "content of unlinked file: \"%s\"", buf);
	OK(ftruncate(fd, 3));
	EQ(xfstat(fd).st_size, 3, "size after ftruncate of unlinked file");

	/* a new file of the same name is another file; the old one is untouched */
	put_file("f", "new");
	CHECK(xstat("f").st_ino != before.st_ino, "new file reuses the inode of an open unlinked file");
	memset(buf, 0, sizeof buf);
	EQ(pread(fd, buf, sizeof buf, 0), 3, "read from unlinked file after re-create");
	CHECK(!strcmp(buf, "hel"), "unlinked file changed by re-create: \"%s\"", buf);
	CHECK(!strcmp(get_file("f"), "new"), "new file has the wrong content");
	OK(close(fd));
}

static void t_file_large_offset(void)
{
	enum { LEN = 4096 };
	const off_t big = 5 * GiB + 123, across = 4 * GiB - 2048;
	static unsigned char buf[LEN];

	int fd = OK(open("f", O_CREAT | O_RDWR, 0644));
	fill(buf, LEN, 4, big);
	pwrite_all(fd, buf, LEN, big);
	fill(buf, LEN, 4, across);
	pwrite_all(fd, buf, LEN, across); /* crosses the 4 GiB boundary */

	struct stat st = xfstat(fd);
	EQ(st.st_size, big + LEN, "size after write above 4 GiB");
	EQ(lseek(fd, 0, SEEK_END), big + LEN, "lseek SEEK_END");
	/* every Linux file system we compare against stores holes sparsely */
	CHECK(st.st_blocks * 512LL < 1 * GiB, "file is not sparse: %lld bytes allocated",
	      (long long)st.st_blocks * 512);
	expect_pat(fd, big, LEN, 4, "data above 4 GiB");
	expect_pat(fd, across, LEN, 4, "data across 4 GiB");
	expect_zero(fd, 2 * GiB, LEN, "hole at 2 GiB");
	expect_zero(fd, big - 123, 123, "hole just before data");
	expect_zero(fd, 4 * GiB + 2048, LEN, "hole just after 4 GiB");
	EQ(pread(fd, buf, LEN, big + LEN), 0, "read at end of file");
	EQ(pread(fd, buf, LEN, 6 * GiB), 0, "read beyond end of file");
	OK(close(fd));
	EQ(xstat("f").st_size, big + LEN, "stat size");
}

static void t_file_truncate_grow_shrink(void)
{
	make_file("f", 0644, 10000, 5);
	int fd = OK(open("f", O_RDWR));
	OK(ftruncate(fd, 20000));
	EQ(xfstat(fd).st_size, 20000, "size after ftruncate up");
	expect_pat(fd, 0, 10000, 5, "data kept by ftruncate up");
	expect_zero(fd, 10000, 10000, "range added by ftruncate up");

	OK(ftruncate(fd, 5000));
	EQ(xfstat(fd).st_size, 5000, "size after ftruncate down");
	expect_pat(fd, 0, 5000, 5, "data kept by ftruncate down");

	/* data cut off by shrinking must not come back when growing again */
	OK(truncate("f", 100000));
	EQ(xstat("f").st_size, 100000, "size after truncate up");
	expect_pat(fd, 0, 5000, 5, "data kept by truncate up");
	expect_zero(fd, 5000, 95000, "range added by truncate up after shrink");

	OK(truncate("f", 0));
	EQ(xfstat(fd).st_size, 0, "size after truncate to 0");
	OK(ftruncate(fd, 4096));
	expect_zero(fd, 0, 4096, "file grown from empty");
	OK(close(fd));

	fd = OK(open("f", O_RDONLY));
	FAILS(ftruncate(fd, 0), EINVAL);
	OK(close(fd));
	FAILS(truncate("f", -1), EINVAL);
}

static void t_file_sparse_seek(void)
{
	/* data [0,1M), hole [1M,5M), data [5M,6M); MiB-sized so any block size fits */
	const off_t A = 1 * MiB, B = 5 * MiB, END = 6 * MiB;
	unsigned char *buf = xmalloc(MiB);

	int fd = OK(open("f", O_CREAT | O_RDWR, 0644));
	fill(buf, MiB, 6, 0);
	pwrite_all(fd, buf, MiB, 0);
	fill(buf, MiB, 6, B);
	pwrite_all(fd, buf, MiB, B);

	off_t d = lseek(fd, 0, SEEK_DATA);
	if (d < 0 && errno == EINVAL)
		skip("SEEK_DATA not supported");
	EQ(d, 0, "lseek(0, SEEK_DATA) on data");
	EQ(lseek(fd, 100, SEEK_DATA), 100, "lseek(100, SEEK_DATA) on data");

	/*
	 * A file system may report a hole as data (then SEEK_HOLE gives the size),
	 * but never data as a hole.
	 */
	off_t h = OK(lseek(fd, 0, SEEK_HOLE));
	CHECK((h >= A && h <= B) || h == END, "lseek(0, SEEK_HOLE) = %lld: not a hole", (long long)h);
	bool holes = h < END;

	off_t d2 = OK(lseek(fd, 2 * MiB, SEEK_DATA));
	off_t h2 = OK(lseek(fd, 2 * MiB, SEEK_HOLE));
	CHECK(d2 >= 2 * MiB && d2 <= B, "lseek(2M, SEEK_DATA) = %lld skips data", (long long)d2);
	if (d2 == 2 * MiB)
		CHECK(h2 > 2 * MiB && h2 <= END, "2M reported as data, but lseek(2M, SEEK_HOLE) = %lld",
		      (long long)h2);
	else
		EQ(h2, 2 * MiB, "2M reported as hole: lseek(2M, SEEK_HOLE)");
	if (!holes)
		EQ(d2, 2 * MiB, "no hole reported from 0, so lseek(2M, SEEK_DATA)");

	if (holes) {
		off_t next = OK(lseek(fd, h, SEEK_DATA));
		CHECK(next > h && next <= B, "data after the first hole at %lld reported at %lld",
		      (long long)h, (long long)next);
	}
	EQ(lseek(fd, B + 100, SEEK_DATA), B + 100, "lseek(5M+100, SEEK_DATA) on data");
	EQ(lseek(fd, B + 100, SEEK_HOLE), END, "lseek(5M+100, SEEK_HOLE): implicit hole at end");
	FAILS(lseek(fd, END, SEEK_DATA), ENXIO);
	FAILS(lseek(fd, END, SEEK_HOLE), ENXIO);
	FAILS(lseek(fd, END + 1, SEEK_DATA), ENXIO);
	expect_zero(fd, A, (size_t)(B - A), "hole content");

	/* a hole at the end of the file, made by ftruncate */
	OK(ftruncate(fd, 8 * MiB));
	d = lseek(fd, 7 * MiB, SEEK_DATA);
	h = OK(lseek(fd, 7 * MiB, SEEK_HOLE));
	if (d < 0) {
		CHECK(errno == ENXIO, "lseek(7M, SEEK_DATA) in a trailing hole: %s", errname(errno));
		EQ(h, 7 * MiB, "trailing hole: lseek(7M, SEEK_HOLE)");
	} else {
		EQ(d, 7 * MiB, "trailing range reported as data: lseek(7M, SEEK_DATA)");
		EQ(h, 8 * MiB, "trailing range reported as data: lseek(7M, SEEK_HOLE)");
	}
	h = OK(lseek(fd, B, SEEK_HOLE));
	CHECK(h >= END && h <= 8 * MiB, "lseek(5M, SEEK_HOLE) after extension = %lld", (long long)h);
	OK(close(fd));
	free(buf);
}

static void t_file_fallocate(void)
{
	int fd = OK(open("f", O_CREAT | O_RDWR, 0644));

	if (fallocate(fd, 0, 0, MiB) < 0) {
		if (errno == EOPNOTSUPP)
			skip("fallocate not supported");
		FAIL("fallocate(0, 1M): %s", errname(errno));
	}
	struct stat st = xfstat(fd);
	EQ(st.st_size, MiB, "size after fallocate");
	CHECK(st.st_blocks * 512 >= MiB, "fallocate(1M) allocated only %lld bytes",
	      (long long)st.st_blocks * 512);
	expect_zero(fd, 0, MiB, "fallocated range");

	OK(fallocate(fd, FALLOC_FL_KEEP_SIZE, MiB, MiB));
	st = xfstat(fd);
	EQ(st.st_size, MiB, "size after fallocate KEEP_SIZE beyond end");
	CHECK(st.st_blocks * 512 >= 2 * MiB, "fallocate KEEP_SIZE did not allocate (%lld bytes)",
	      (long long)st.st_blocks * 512);
	OK(fallocate(fd, 0, 3 * MiB, 4096));
	EQ(xfstat(fd).st_size, 3 * MiB + 4096, "size after fallocate beyond end");
	expect_zero(fd, MiB, 2 * MiB + 4096, "range up to the new end");

	unsigned char *buf = xmalloc(MiB);
	fill(buf, MiB, 7, 0);
	pwrite_all(fd, buf, MiB, 0);
	if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 256 * KiB, 256 * KiB) < 0) {
		if (errno == EOPNOTSUPP)
			skip("FALLOC_FL_PUNCH_HOLE not supported (default mode passed)");
		FAIL("fallocate(PUNCH_HOLE|KEEP_SIZE): %s", errname(errno));
	}
	EQ(xfstat(fd).st_size, 3 * MiB + 4096, "size after punching a hole");
	expect_pat(fd, 0, 256 * KiB, 7, "data before the punched hole");
	expect_zero(fd, 256 * KiB, 256 * KiB, "punched hole");
	expect_pat(fd, 512 * KiB, 512 * KiB, 7, "data after the punched hole");

	/* not block aligned: the partial blocks at both ends are zeroed */
	OK(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 1000, 3000));
	expect_pat(fd, 0, 1000, 7, "data before an unaligned punched hole");
	expect_zero(fd, 1000, 3000, "unaligned punched hole");
	expect_pat(fd, 4000, 100 * KiB, 7, "data after an unaligned punched hole");
	OK(close(fd));
	free(buf);
}

static bool ts_is(struct timespec t, time_t sec, long nsec, bool coarse)
{
	return t.tv_sec == sec && (t.tv_nsec == nsec || (coarse && t.tv_nsec == 0));
}

static bool near_now(struct timespec t)
{
	/* generous: in a guest, "now" may come from the host's clock */
	return labs((long)(t.tv_sec - time(NULL))) <= 3600;
}

static void t_file_times(void)
{
	int fd = OK(open("f", O_CREAT | O_RDWR, 0644));
	EQ(write(fd, "data", 4), 4, "write");
	struct stat st = xfstat(fd);
	/* a file system that stores whole seconds only shows no nanoseconds in fresh stamps either */
	bool coarse = st.st_mtim.tv_nsec == 0 && st.st_ctim.tv_nsec == 0;

	const time_t A = 1000000000, M = 1100000000;
	const long AN = 123456789, MN = 987654321;
	OK(utimensat(AT_FDCWD, "f", ((struct timespec[]){ { A, AN }, { M, MN } }), 0));
	st = xstat("f");
	CHECK(ts_is(st.st_atim, A, AN, coarse), "utimensat atime: expected %lld.%09ld, got %lld.%09ld",
	      (long long)A, AN, (long long)st.st_atim.tv_sec, st.st_atim.tv_nsec);
	CHECK(ts_is(st.st_mtim, M, MN, coarse), "utimensat mtime: expected %lld.%09ld, got %lld.%09ld",
	      (long long)M, MN, (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
	CHECK(near_now(st.st_ctim), "utimensat: ctime not within an hour of now");

	OK(futimens(fd, ((struct timespec[]){ { 0, UTIME_NOW }, { 0, UTIME_OMIT } })));
	st = xstat("f");
	CHECK(near_now(st.st_atim), "UTIME_NOW: atime not within an hour of now");
	CHECK(ts_is(st.st_mtim, M, MN, coarse), "UTIME_OMIT changed mtime");

	OK(utimensat(AT_FDCWD, "f", ((struct timespec[]){ { A, AN }, { 0, UTIME_OMIT } }), 0));
	OK(utimensat(AT_FDCWD, "f", ((struct timespec[]){ { 0, UTIME_OMIT }, { 0, UTIME_NOW } }), 0));
	st = xstat("f");
	CHECK(ts_is(st.st_atim, A, AN, coarse), "UTIME_OMIT changed atime");
	CHECK(near_now(st.st_mtim), "UTIME_NOW: mtime not within an hour of now");

	/* a write moves mtime; a read of the same file does not */
	OK(utimensat(AT_FDCWD, "f", ((struct timespec[]){ { A, AN }, { M, MN } }), 0));
	EQ(pwrite(fd, "more", 4, 4), 4, "write");
	st = xstat("f");
	CHECK(!ts_is(st.st_mtim, M, MN, false), "write did not change mtime");
	CHECK(near_now(st.st_mtim), "mtime after write not within an hour of now");
	CHECK(near_now(st.st_ctim), "ctime after write not within an hour of now");
	char buf[8];
	EQ(pread(fd, buf, sizeof buf, 0), 8, "read");
	struct stat after = xstat("f");
	CHECK(after.st_mtim.tv_sec == st.st_mtim.tv_sec && after.st_mtim.tv_nsec == st.st_mtim.tv_nsec,
	      "read changed mtime");

	OK(utimensat(AT_FDCWD, "f", NULL, 0));
	st = xstat("f");
	CHECK(near_now(st.st_atim) && near_now(st.st_mtim), "utimensat(NULL) did not set both times to now");
	OK(close(fd));
}

static void t_file_mmap_shared(void)
{
	const size_t LEN = 256 * KiB;
	long ps = sysconf(_SC_PAGESIZE);

	int fd = OK(open("f", O_CREAT | O_RDWR, 0644));
	OK(ftruncate(fd, (off_t)LEN));
	unsigned char *p = mmap(NULL, LEN, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED && errno == ENODEV)
		skip("shared writable mmap not supported");
	CHECK(p != MAP_FAILED, "mmap(MAP_SHARED): %s", errname(errno));
	CHECK(first_nonzero(p, LEN) < 0, "new mapping of a zero-filled file is not zero");
	fill(p, LEN, 8, 0);
	OK(msync(p, LEN, MS_SYNC));

	int rfd = OK(open("f", O_RDONLY));
	expect_pat(rfd, 0, LEN, 8, "data written through the mapping");

	/* writes through the descriptor are visible in the mapping */
	unsigned char small[1000];
	fill(small, sizeof small, 9, 10000);
	pwrite_all(fd, small, sizeof small, 10000);
	CHECK(!memcmp(p + 10000, small, sizeof small), "pwrite not visible through the mapping");
	OK(munmap(p, LEN));
	OK(close(fd));
	expect_pat(rfd, 0, 10000, 8, "data before pwrite after munmap");
	expect_pat(rfd, 10000, sizeof small, 9, "pwrite data after munmap");
	expect_pat(rfd, 11000, LEN - 11000, 8, "data after pwrite after munmap");
	EQ(xfstat(rfd).st_size, LEN, "size after mmap writes");
	OK(close(rfd));

	/* the tail of the last page beyond EOF reads as zero and is never written out */
	const off_t size = ps + 904;
	fd = OK(open("g", O_CREAT | O_RDWR, 0644));
	OK(ftruncate(fd, size));
	p = mmap(NULL, 2 * ps, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	CHECK(p != MAP_FAILED, "mmap(MAP_SHARED): %s", errname(errno));
	CHECK(first_nonzero(p + size, (size_t)(2 * ps - size)) < 0, "mapping beyond EOF is not zero");
	memset(p, 'a', (size_t)size);
	memset(p + size, 'Z', (size_t)(2 * ps - size));
	OK(msync(p, 2 * ps, MS_SYNC));
	OK(munmap(p, 2 * ps));
	EQ(xfstat(fd).st_size, size, "size after writing beyond EOF in the mapping");
	char c;
	EQ(pread(fd, &c, 1, size), 0, "read at EOF after writing beyond EOF in the mapping");
	EQ(pread(fd, &c, 1, size - 1), 1, "read of the last byte");
	CHECK(c == 'a', "last byte written through the mapping is wrong");
	OK(close(fd));
}

static void t_file_rw_offsets(void)
{
	static const struct { long long off, len; } writes[] = {
		{ 0, 1 }, { 1, 4095 }, { 4095, 2 }, { 4096, 4096 }, { 8191, 4098 },
		{ 128 * KiB - 1, 2 }, { 128 * KiB - 100, 200 }, { 256 * KiB + 1, 128 * KiB },
		{ MiB - 1, 2 }, { MiB - 3000, 6000 }, { 12345, 4 * MiB }, { 2 * MiB + 17, 4 * MiB },
		{ 3 * MiB, 1 }, { 5 * MiB - 7, 3 * 4096 + 7 },
	};
	const size_t CAP = 7 * MiB;
	unsigned char *shadow = xmalloc(CAP), *buf = xmalloc(CAP);
	off_t size = 0;

	int fd = OK(open("f", O_CREAT | O_RDWR, 0644));
	for (size_t i = 0; i < sizeof writes / sizeof writes[0]; i++) {
		off_t off = writes[i].off;
		size_t len = (size_t)writes[i].len;
		fill(shadow + off, len, 10 + (unsigned)i, off);
		EQ(pwrite(fd, shadow + off, len, off), len, "pwrite");
		if (off + (off_t)len > size)
			size = off + (off_t)len;
		EQ(xfstat(fd).st_size, size, "size after pwrite");
	}

	/* vectored I/O with segments that straddle the 128 KiB boundary differently */
	const off_t voff = 128 * KiB - 1500;
	fill(shadow + voff, 1000 + 4096 + 70000, 99, voff);
	struct iovec wv[3] = {
		{ shadow + voff, 1000 }, { shadow + voff + 1000, 4096 }, { shadow + voff + 5096, 70000 },
	};
	EQ(pwritev(fd, wv, 3, voff), 1000 + 4096 + 70000, "pwritev");
	memset(buf, 0, CAP);
	struct iovec rv[3] = { { buf, 1 }, { buf + 1, 1500 }, { buf + 1501, 73595 } };
	EQ(preadv(fd, rv, 3, voff), 75096, "preadv");
	CHECK(!memcmp(buf, shadow + voff, 75096), "preadv returned wrong data");

	static const struct { long long off, len; } reads[] = {
		{ 0, 7 * MiB }, { 4095, 2 }, { 128 * KiB - 1, 128 * KiB + 3 }, { MiB - 1, 4 * MiB },
		{ 12345, 4 * MiB }, { 6 * MiB, 17 }, { 1, 1 },
	};
	for (size_t i = 0; i < sizeof reads / sizeof reads[0]; i++) {
		off_t off = reads[i].off;
		size_t len = (size_t)reads[i].len;
		size_t want = off + (off_t)len > size ? (size_t)(size - off) : len;
		EQ(pread_full(fd, buf, len, off), want, "pread length");
		for (size_t j = 0; j < want; j++)
			if (buf[j] != shadow[off + j])
				FAIL("pread(%zu bytes at %lld): wrong data at offset %lld", len,
				     (long long)off, (long long)(off + (off_t)j));
	}
	/* one read of 4 MiB, not split by pread_full's loop */
	EQ(pread(fd, buf, 4 * MiB, 100), 4 * MiB, "single 4 MiB pread");
	CHECK(!memcmp(buf, shadow + 100, 4 * MiB), "single 4 MiB pread: wrong data");
	EQ(pread(fd, buf, 100, size - 10), 10, "short read at end of file");
	EQ(pread(fd, buf, 10, size), 0, "read at end of file");
	EQ(pread(fd, buf, 10, size + 4096), 0, "read beyond end of file");
	EQ(pwrite(fd, buf, 0, size + 100), 0, "zero-length write beyond end");
	EQ(xfstat(fd).st_size, size, "size after zero-length write");
	OK(close(fd));
	free(shadow);
	free(buf);
}

/* ------------------------------------------------------------------------- */
/* dir_*                                                                      */

static void t_dir_mkdir_rmdir(void)
{
	OK(mkdir("d", 0777));
	struct stat st = xstat("d");
	CHECK(S_ISDIR(st.st_mode), "mkdir did not make a directory");
	EQ_MODE(st.st_mode & 07777, 0755, "mode of mkdir 0777 under umask 022");
	FAILS(mkdir("d", 0755), EEXIST);
	OK(mkdir("d/sub", 0750));
	EQ_MODE(xstat("d/sub").st_mode & 07777, 0750, "mode of mkdir 0750");
	FAILS2(rmdir("d"), ENOTEMPTY, EEXIST);
	FAILS(rmdir("missing"), ENOENT);
	FAILS(mkdir("missing/x", 0755), ENOENT);
	put_file("f", "x");
	FAILS(mkdir("f", 0755), EEXIST);
	FAILS(mkdir("f/x", 0755), ENOTDIR);
	FAILS(rmdir("f"), ENOTDIR);
	FAILS(rmdir("d/sub/."), EINVAL);
	OK(mkdir("slash/", 0755));
	OK(rmdir("slash/"));
	OK(rmdir("d/sub"));
	OK(rmdir("d"));
	FAILS(stat("d", &st), ENOENT);
	FAILS(rmdir("d"), ENOENT);
}

static void many_name(char *name, int i)
{
	int n = sprintf(name, "e%05d_", i);
	int pad = i % 200; /* varied lengths exercise the packing of readdir buffers */

	memset(name + n, 'x', (size_t)pad);
	name[n + pad] = 0;
}

/* Index of a name made by many_name, or -1. */
static int many_index(const char *name, int n)
{
	char want[256];
	int i;

	if (sscanf(name, "e%05d_", &i) != 1 || i < 0 || i >= n)
		return -1;
	many_name(want, i);
	return strcmp(want, name) ? -1 : i;
}

static void t_dir_readdir_many(void)
{
	const int n = quick ? 1000 : 10000;
	unsigned char *seen = xmalloc((size_t)n);
	char name[300], path[320];
	struct dirent *e;

	OK(mkdir("many", 0755));
	for (int i = 0; i < n; i++) {
		many_name(name, i);
		snprintf(path, sizeof path, "many/%s", name);
		int fd = open(path, O_CREAT | O_EXCL | O_WRONLY, 0644);
		if (fd < 0)
			FAIL("create entry %d: %s", i, errname(errno));
		close(fd);
	}

	DIR *d = opendir("many");
	CHECK(d, "opendir: %s", errname(errno));
	int dot = 0, dotdot = 0;
	for (errno = 0; (e = readdir(d)); errno = 0) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) {
			*(e->d_name[1] ? &dotdot : &dot) += 1;
			CHECK(e->d_type == DT_DIR || e->d_type == DT_UNKNOWN, "d_type of %s is %d",
			      e->d_name, e->d_type);
			continue;
		}
		int i = many_index(e->d_name, n);
		CHECK(i >= 0, "readdir returned an unknown name (length %zu)", strlen(e->d_name));
		CHECK(!seen[i], "readdir returned entry %d twice", i);
		CHECK(e->d_type == DT_REG || e->d_type == DT_UNKNOWN, "d_type of a file is %d", e->d_type);
		seen[i] = 1;
	}
	CHECK(!errno, "readdir: %s", errname(errno));
	EQ(dot, 1, "number of \".\" entries");
	EQ(dotdot, 1, "number of \"..\" entries");
	for (int i = 0; i < n; i++)
		CHECK(seen[i], "readdir did not return entry %d", i);

	/*
	 * Unlinking each entry as it is read: entries not yet removed must still be
	 * returned (a removed one may or may not come again, POSIX leaves that open).
	 */
	memset(seen, 0, (size_t)n);
	rewinddir(d);
	for (errno = 0; (e = readdir(d)); errno = 0) {
		if (is_dot(e->d_name))
			continue;
		int i = many_index(e->d_name, n);
		CHECK(i >= 0, "readdir while unlinking returned an unknown name");
		if (seen[i])
			continue;
		seen[i] = 1;
		if (unlinkat(dirfd(d), e->d_name, 0) < 0)
			FAIL("unlink entry %d while reading: %s", i, errname(errno));
	}
	CHECK(!errno, "readdir while unlinking: %s", errname(errno));
	for (int i = 0; i < n; i++)
		CHECK(seen[i], "readdir while unlinking skipped entry %d", i);

	rewinddir(d);
	int left = 0;
	for (errno = 0; (e = readdir(d)); errno = 0)
		left += !is_dot(e->d_name);
	EQ(left, 0, "entries left after unlinking all");
	closedir(d);
	OK(rmdir("many"));
	free(seen);
}

static void t_dir_readdir_seek(void)
{
	enum { N = 300, MAXE = N + 2 };
	static char names[MAXE][16];
	static long pos[MAXE]; /* telldir() after reading entry k */
	struct dirent *e;
	char path[32];

	OK(mkdir("d", 0755));
	for (int i = 0; i < N; i++) {
		snprintf(path, sizeof path, "d/s%03d", i);
		put_file(path, "");
	}
	DIR *d = opendir("d");
	CHECK(d, "opendir: %s", errname(errno));
	long start = telldir(d);
	int total = 0;
	for (errno = 0; (e = readdir(d)); errno = 0) {
		CHECK(total < MAXE, "readdir returned more than %d entries", MAXE);
		CHECK(strlen(e->d_name) < sizeof names[0], "readdir returned an unknown name");
		strcpy(names[total], e->d_name);
		pos[total++] = telldir(d);
	}
	CHECK(!errno, "readdir: %s", errname(errno));
	EQ(total, MAXE, "number of entries");

	/* seekdir to a telldir() position continues with exactly the entries that followed it */
	const int probes[] = { 0, 1, 2, 50, 150, MAXE - 2, MAXE - 1 };
	for (size_t p = 0; p < sizeof probes / sizeof probes[0]; p++) {
		int k = probes[p];
		seekdir(d, pos[k]);
		for (int j = k + 1; j < total; j++) {
			e = readdir(d);
			CHECK(e, "after seekdir to entry %d: readdir ended at %d of %d", k, j, total);
			CHECK(!strcmp(e->d_name, names[j]),
			      "after seekdir to entry %d: entry %d differs from the first pass", k, j);
		}
		CHECK(!readdir(d), "after seekdir to entry %d: extra entries at the end", k);
	}
	seekdir(d, start);
	for (int j = 0; j < total; j++) {
		e = readdir(d);
		CHECK(e && !strcmp(e->d_name, names[j]), "after seekdir to the start: entry %d differs", j);
	}

	/* a position taken after a seekdir is valid too */
	seekdir(d, pos[50]);
	CHECK(readdir(d), "readdir after seekdir");
	long t = telldir(d);
	for (int j = 0; j < 10; j++)
		CHECK(readdir(d), "readdir after seekdir");
	seekdir(d, t);
	e = readdir(d);
	CHECK(e && !strcmp(e->d_name, names[52]), "seekdir to a telldir() taken after seekdir");

	/* rewinddir gives the same set of entries */
	rewinddir(d);
	int again = 0;
	for (errno = 0; (e = readdir(d)); errno = 0) {
		bool found = false;
		for (int j = 0; j < total && !found; j++)
			found = !strcmp(e->d_name, names[j]);
		CHECK(found, "after rewinddir: unknown entry");
		again++;
	}
	EQ(again, total, "entries after rewinddir");
	closedir(d);
}

static void t_dir_nlink(void)
{
	OK(mkdir("p", 0755));
	EQ(xstat("p").st_nlink, 2, "nlink of an empty directory");
	OK(mkdir("p/a", 0755));
	OK(mkdir("p/b", 0755));
	OK(mkdir("p/c", 0755));
	put_file("p/file", "x");
	EQ(xstat("p").st_nlink, 5, "nlink with 3 subdirectories and a file");
	OK(rmdir("p/a"));
	EQ(xstat("p").st_nlink, 4, "nlink after rmdir of a subdirectory");
	OK(mkdir("q", 0755));
	OK(rename("p/b", "q/b"));
	EQ(xstat("p").st_nlink, 3, "nlink of source after moving a subdirectory away");
	EQ(xstat("q").st_nlink, 3, "nlink of target after moving a subdirectory in");
	OK(rename("p/file", "q/file"));
	EQ(xstat("q").st_nlink, 3, "nlink after moving a file in");
	EQ(xstat("q/b").st_nlink, 2, "nlink of the moved subdirectory");
}

/* ------------------------------------------------------------------------- */
/* link_*                                                                     */

static void t_link_hard(void)
{
	put_file("a", "hello");
	OK(link("a", "b"));
	struct stat sa = xstat("a"), sb = xstat("b");
	EQ(sa.st_ino, sb.st_ino, "inode of both names");
	CHECK(sa.st_dev == sb.st_dev, "st_dev of both names differs");
	EQ(sa.st_nlink, 2, "nlink after link");

	int fd = OK(open("b", O_WRONLY | O_APPEND));
	EQ(write(fd, " world", 6), 6, "write through second name");
	CHECK(!strcmp(get_file("a"), "hello world"), "write through one name not seen through the other");
	OK(unlink("a"));
	EQ(xstat("b").st_nlink, 1, "nlink after unlinking one name");
	EQ(xfstat(fd).st_nlink, 1, "fstat nlink after unlinking one name");
	CHECK(!strcmp(get_file("b"), "hello world"), "content lost after unlinking one name");
	OK(close(fd));

	FAILS(link("b", "b"), EEXIST);
	FAILS(link("missing", "x"), ENOENT);
	FAILS(link("b", "nodir/x"), ENOENT);

	OK(mkdir("d", 0755));
	char path[32];
	for (int i = 0; i < 10; i++) {
		snprintf(path, sizeof path, "d/l%d", i);
		OK(link("b", path));
	}
	EQ(xstat("b").st_nlink, 11, "nlink with 11 names");
	EQ(xstat("d/l7").st_ino, sb.st_ino, "inode of a link in a subdirectory");
	for (int i = 0; i < 10; i++) {
		snprintf(path, sizeof path, "d/l%d", i);
		OK(unlink(path));
	}
	EQ(xstat("b").st_nlink, 1, "nlink after removing the extra names");
}

static void t_link_symlink(void)
{
	char buf[256];

	put_file("target", "content");
	OK(symlink("target", "sl"));
	memset(buf, 'X', sizeof buf);
	EQ(readlink("sl", buf, sizeof buf), 6, "readlink length");
	CHECK(!memcmp(buf, "target", 6) && buf[6] == 'X', "readlink content or NUL added");
	EQ(readlink("sl", buf, 3), 3, "readlink into a short buffer");
	CHECK(!memcmp(buf, "tar", 3), "readlink into a short buffer: content");

	struct stat st = xlstat("sl");
	CHECK(S_ISLNK(st.st_mode), "lstat: not a symlink");
	EQ(st.st_size, 6, "lstat size of a symlink");
	st = xstat("sl");
	CHECK(S_ISREG(st.st_mode), "stat does not follow the symlink");
	EQ(st.st_ino, xstat("target").st_ino, "stat through symlink: inode");
	CHECK(!strcmp(get_file("sl"), "content"), "read through symlink");

	OK(symlink("nowhere", "dangling"));
	FAILS(stat("dangling", &st), ENOENT);
	CHECK(S_ISLNK(xlstat("dangling").st_mode), "lstat of a dangling symlink");
	FAILS(open("sl", O_RDONLY | O_NOFOLLOW), ELOOP);
	int fd = OK(open("sl", O_PATH | O_NOFOLLOW));
	CHECK(S_ISLNK(xfstat(fd).st_mode), "O_PATH|O_NOFOLLOW does not open the link itself");
	OK(close(fd));
	FAILS(symlink("x", "sl"), EEXIST);
	FAILS(readlink("target", buf, sizeof buf), EINVAL);

	/* relative targets resolve from the link's directory */
	OK(mkdir("d", 0755));
	OK(symlink("../target", "d/up"));
	CHECK(!strcmp(get_file("d/up"), "content"), "relative symlink in a subdirectory");
	OK(symlink("d", "dl"));
	put_file("dl/through", "x");
	CHECK(S_ISREG(xstat("d/through").st_mode), "file created through a directory symlink");

	OK(symlink("loop2", "loop1"));
	OK(symlink("loop1", "loop2"));
	FAILS(stat("loop1", &st), ELOOP);

	/* removing the link leaves the target */
	OK(unlink("sl"));
	CHECK(!strcmp(get_file("target"), "content"), "unlinking a symlink touched its target");
}

static void t_link_symlink_long(void)
{
	static char target[4097], buf[4200];

	for (int i = 0; i < 4096; i++)
		target[i] = i % 10 == 9 ? '/' : (char)('a' + i % 10);

	target[1000] = 0;
	OK(symlink(target, "l1000"));
	EQ(readlink("l1000", buf, sizeof buf), 1000, "readlink length of a 1000-byte target");
	CHECK(!memcmp(buf, target, 1000), "readlink content of a 1000-byte target");
	EQ(xlstat("l1000").st_size, 1000, "lstat size of a 1000-byte symlink");
	target[1000] = 'a';

	/* the longest target Linux allows; xfs caps symlinks at 1024 bytes */
	target[4095] = 0;
	if (symlink(target, "l4095") == 0) {
		EQ(readlink("l4095", buf, sizeof buf), 4095, "readlink length of a 4095-byte target");
		CHECK(!memcmp(buf, target, 4095), "readlink content of a 4095-byte target");
	} else {
		CHECK(errno == ENAMETOOLONG, "symlink with a 4095-byte target: %s", errname(errno));
	}
	target[4095] = 'a';
	target[4096] = 0;
	FAILS(symlink(target, "l4096"), ENAMETOOLONG);
}

static void t_link_symlink_times(void)
{
	put_file("target", "x");
	OK(symlink("target", "sl"));
	struct stat before = xstat("target");
	OK(utimensat(AT_FDCWD, "sl", ((struct timespec[]){ { 1000000000, 0 }, { 1100000000, 0 } }),
		     AT_SYMLINK_NOFOLLOW));
	struct stat st = xlstat("sl");
	EQ(st.st_atim.tv_sec, 1000000000, "atime of the symlink itself");
	EQ(st.st_mtim.tv_sec, 1100000000, "mtime of the symlink itself");
	st = xstat("target");
	CHECK(st.st_mtim.tv_sec == before.st_mtim.tv_sec && st.st_mtim.tv_nsec == before.st_mtim.tv_nsec,
	      "utimensat(AT_SYMLINK_NOFOLLOW) changed the target");
	OK(utimensat(AT_FDCWD, "sl", ((struct timespec[]){ { 1200000000, 0 }, { 1300000000, 0 } }), 0));
	EQ(xstat("target").st_mtim.tv_sec, 1300000000, "utimensat through the symlink: target mtime");
	EQ(xlstat("sl").st_mtim.tv_sec, 1100000000, "utimensat through the symlink changed the link");
}

/* ------------------------------------------------------------------------- */
/* rename_*                                                                   */

static void t_rename_basic(void)
{
	struct stat st;

	put_file("a", "A");
	put_file("b", "B");
	ino_t ia = xstat("a").st_ino;
	int fd = OK(open("a", O_RDONLY));
	OK(rename("a", "b"));
	FAILS(stat("a", &st), ENOENT);
	CHECK(!strcmp(get_file("b"), "A"), "rename over a file: target content");
	EQ(xstat("b").st_ino, ia, "rename over a file: inode");
	char c;
	EQ(pread(fd, &c, 1, 0), 1, "read from descriptor opened before rename");
	CHECK(c == 'A', "descriptor opened before rename reads wrong data");
	OK(close(fd));

	OK(mkdir("d1", 0755));
	put_file("d1/inner", "I");
	OK(mkdir("d2", 0755));
	OK(rename("d1", "d2"));
	FAILS(stat("d1", &st), ENOENT);
	CHECK(!strcmp(get_file("d2/inner"), "I"), "rename of a directory over an empty one: content");

	OK(mkdir("d3", 0755));
	FAILS2(rename("d3", "d2"), ENOTEMPTY, EEXIST);
	FAILS(rename("b", "d3"), EISDIR);
	FAILS(rename("d3", "b"), ENOTDIR);
	FAILS(rename("d2", "d2/inner2"), EINVAL);
	OK(mkdir("d2/sub", 0755));
	FAILS(rename("d2", "d2/sub/x"), EINVAL);
	FAILS(rename("missing", "x"), ENOENT);
	FAILS(rename("b", "nodir/x"), ENOENT);

	OK(rename("b", "b"));
	CHECK(!strcmp(get_file("b"), "A"), "rename of a file onto itself");
	/* two names of one inode: POSIX says rename does nothing */
	OK(link("b", "h"));
	OK(rename("b", "h"));
	CHECK(S_ISREG(xstat("b").st_mode) && S_ISREG(xstat("h").st_mode),
	      "rename between two links of one inode removed a name");
	EQ(xstat("h").st_nlink, 2, "nlink after rename between two links of one inode");
}

static void t_rename_noreplace(void)
{
	put_file("a", "A");
	put_file("b", "B");
	/* to a free name first: the VFS reports EEXIST by itself, without asking the file system */
	if (renameat2(AT_FDCWD, "a", AT_FDCWD, "c", RENAME_NOREPLACE) < 0) {
		if (errno == EINVAL || errno == EOPNOTSUPP || errno == ENOSYS)
			skip("RENAME_NOREPLACE not supported (%s)", errname(errno));
		FAIL("RENAME_NOREPLACE to a free name: %s", errname(errno));
	}
	CHECK(!strcmp(get_file("c"), "A"), "RENAME_NOREPLACE to a free name: content");
	FAILS(access("a", F_OK), ENOENT);
	FAILS(renameat2(AT_FDCWD, "c", AT_FDCWD, "b", RENAME_NOREPLACE), EEXIST);
	CHECK(!strcmp(get_file("b"), "B") && !strcmp(get_file("c"), "A"), "failed rename changed files");
	OK(mkdir("d", 0755));
	FAILS(renameat2(AT_FDCWD, "c", AT_FDCWD, "d", RENAME_NOREPLACE), EEXIST);
	OK(mkdir("e", 0755));
	FAILS(renameat2(AT_FDCWD, "e", AT_FDCWD, "d", RENAME_NOREPLACE), EEXIST);
	CHECK(S_ISDIR(xstat("e").st_mode) && S_ISDIR(xstat("d").st_mode), "failed rename changed directories");
}

static void t_rename_exchange(void)
{
	put_file("a", "A");
	put_file("b", "B");
	if (renameat2(AT_FDCWD, "a", AT_FDCWD, "b", RENAME_EXCHANGE) < 0) {
		if (errno == EINVAL || errno == EOPNOTSUPP || errno == ENOSYS)
			skip("RENAME_EXCHANGE not supported (%s)", errname(errno));
		FAIL("RENAME_EXCHANGE: %s", errname(errno));
	}
	CHECK(!strcmp(get_file("a"), "B") && !strcmp(get_file("b"), "A"), "RENAME_EXCHANGE did not swap");

	OK(mkdir("d", 0755));
	put_file("d/inner", "I");
	OK(renameat2(AT_FDCWD, "a", AT_FDCWD, "d", RENAME_EXCHANGE));
	CHECK(S_ISDIR(xstat("a").st_mode), "RENAME_EXCHANGE of file and directory: a is not a directory");
	CHECK(S_ISREG(xstat("d").st_mode), "RENAME_EXCHANGE of file and directory: d is not a file");
	CHECK(!strcmp(get_file("a/inner"), "I"), "exchanged directory lost its content");
	CHECK(!strcmp(get_file("d"), "B"), "exchanged file lost its content");

	/* across directories: each moved directory's .. follows it */
	OK(mkdir("x", 0755));
	OK(mkdir("x/sub", 0755));
	OK(renameat2(AT_FDCWD, "a", AT_FDCWD, "x/sub", RENAME_EXCHANGE));
	EQ(xstat("x/sub/..").st_ino, xstat("x").st_ino, ".. of a directory exchanged into x");
	EQ(xstat("a/..").st_ino, xstat(".").st_ino, ".. of a directory exchanged out of x");
	FAILS(renameat2(AT_FDCWD, "b", AT_FDCWD, "missing", RENAME_EXCHANGE), ENOENT);
}

static void t_rename_cross_dir(void)
{
	OK(mkdir("x", 0755));
	OK(mkdir("y", 0755));
	put_file("x/f", "F");
	OK(rename("x/f", "y/g"));
	CHECK(!strcmp(get_file("y/g"), "F"), "file moved to another directory: content");
	FAILS(access("x/f", F_OK), ENOENT);

	OK(mkdir("x/sub", 0755));
	put_file("x/sub/inner", "I");
	ino_t isub = xstat("x/sub").st_ino;
	OK(rename("x/sub", "y/sub"));
	EQ(xstat("y/sub").st_ino, isub, "moved directory: inode");
	EQ(xstat("y/sub/..").st_ino, xstat("y").st_ino, ".. of a moved directory");
	CHECK(!strcmp(get_file("y/sub/inner"), "I"), "moved directory lost its content");
	EQ(count_entries("x"), 0, "entries left in the source directory");
	EQ(count_entries("y"), 2, "entries in the target directory");

	put_file("x/over", "new");
	put_file("y/g2", "old");
	OK(rename("x/over", "y/g2"));
	CHECK(!strcmp(get_file("y/g2"), "new"), "rename over a file in another directory");

	OK(mkdir("x/deep", 0755));
	OK(mkdir("x/deep/er", 0755));
	OK(rename("x/deep", "y/sub/deep"));
	EQ(xstat("y/sub/deep/er/../..").st_ino, isub, "path through a moved tree");
}

static void t_rename_whiteout(void)
{
	put_file("a", "A");
	if (renameat2(AT_FDCWD, "a", AT_FDCWD, "b", RENAME_WHITEOUT) < 0) {
		if (errno == EINVAL || errno == EPERM || errno == EOPNOTSUPP || errno == ENOSYS)
			skip("RENAME_WHITEOUT not supported (%s)", errname(errno));
		FAIL("RENAME_WHITEOUT: %s", errname(errno));
	}
	CHECK(!strcmp(get_file("b"), "A"), "RENAME_WHITEOUT: target content");
	struct stat st = xlstat("a");
	CHECK(S_ISCHR(st.st_mode), "RENAME_WHITEOUT left no character device (mode %o)", st.st_mode);
	CHECK(major(st.st_rdev) == 0 && minor(st.st_rdev) == 0, "whiteout is device %u:%u, not 0:0",
	      major(st.st_rdev), minor(st.st_rdev));
}

/* ------------------------------------------------------------------------- */
/* perm_*                                                                     */

static void t_perm_mode_bits(void)
{
	static const mode_t modes[] = { 0, 0644, 0755, 07777, 04755, 02755, 01777, 0600, 0111, 02745 };

	put_file("f", "x");
	int fd = OK(open("f", O_RDONLY));
	for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) {
		OK(chmod("f", modes[i]));
		EQ_MODE(xstat("f").st_mode & 07777, modes[i], "chmod");
		OK(fchmod(fd, modes[i] ^ 0444));
		EQ_MODE(xfstat(fd).st_mode & 07777, modes[i] ^ 0444, "fchmod");
	}
	OK(close(fd));
	CHECK(S_ISREG(xstat("f").st_mode), "chmod changed the file type");

	OK(mkdir("d", 0755));
	OK(chmod("d", 07777));
	EQ_MODE(xstat("d").st_mode & 07777, 07777, "chmod of a directory");
	OK(chmod("d", 0500));
	EQ_MODE(xstat("d").st_mode & 07777, 0500, "chmod of a directory");
	CHECK(S_ISDIR(xstat("d").st_mode), "chmod changed the directory type");
}

static void t_perm_owner_chown(void)
{
	put_file("f", "x");
	OK(chown("f", 1000, 1000));
	struct stat st = xstat("f");
	EQ(st.st_uid, 1000, "uid after chown");
	EQ(st.st_gid, 1000, "gid after chown");

	int fd = OK(open("f", O_RDONLY));
	OK(fchown(fd, 1001, 1002));
	st = xfstat(fd);
	EQ(st.st_uid, 1001, "uid after fchown");
	EQ(st.st_gid, 1002, "gid after fchown");
	OK(fchown(fd, (uid_t)-1, 1000));
	st = xstat("f");
	EQ(st.st_uid, 1001, "uid after fchown with uid -1");
	EQ(st.st_gid, 1000, "gid after fchown with uid -1");
	OK(close(fd));

	OK(symlink("f", "sl"));
	OK(lchown("sl", 1002, 1002));
	st = xlstat("sl");
	EQ(st.st_uid, 1002, "uid of the symlink after lchown");
	EQ(st.st_gid, 1002, "gid of the symlink after lchown");
	EQ(xstat("f").st_uid, 1001, "lchown changed the target");
	OK(chown("sl", 0, 0));
	EQ(xstat("f").st_uid, 0, "chown through a symlink: target uid");
	EQ(xlstat("sl").st_uid, 1002, "chown through a symlink changed the link");

	OK(mkdir("d", 0755));
	OK(chown("d", 1000, 1001));
	st = xstat("d");
	CHECK(st.st_uid == 1000 && st.st_gid == 1001, "chown of a directory");
}

static void t_perm_chown_clears_suid(void)
{
	put_file("f", "x");
	OK(chmod("f", 06755));
	OK(chown("f", 1000, 1000));
	/* Linux clears both bits on chown of a regular file, even when root does it */
	EQ_MODE(xstat("f").st_mode & 07777, 0755, "mode after chown of a 06755 file");

	put_file("g", "x");
	OK(chmod("g", 02745));
	OK(chown("g", 1000, 1000));
	EQ_MODE(xstat("g").st_mode & 07777, 02745, "chown of a setgid file without group exec");

	OK(mkdir("d", 0755));
	OK(chmod("d", 06755));
	OK(chown("d", 1000, 1000));
	EQ_MODE(xstat("d").st_mode & 07777, 06755, "mode after chown of a 06755 directory");
}

static void t_perm_access_other_user(void)
{
	make_file("secret", 0600, 100, 11);
	OK(chmod("secret", 0600));
	make_file("public", 0644, 100, 12);
	OK(chmod("public", 0644));
	put_file("groupdeny", "x"); /* other may read, but uid 1000 is in the owning group */
	OK(chown("groupdeny", 0, 1000));
	OK(chmod("groupdeny", 0604));
	put_file("ownerdeny", "x"); /* group and other may read, but uid 1000 owns it */
	OK(chown("ownerdeny", 1000, 1001));
	OK(chmod("ownerdeny", 0044));
	mkdir_mode("noexec", 0755);
	put_file("noexec/inside", "x");
	OK(chmod("noexec", 0666));
	mkdir_mode("noread", 0755);
	put_file("noread/inside", "x");
	OK(chmod("noread", 0311));

	/* root: no DAC checks on read/write, but X_OK needs at least one x bit */
	put_file("plain", "x");
	OK(chmod("plain", 0644));
	FAILS(access("plain", X_OK), EACCES);
	OK(chmod("plain", 0));
	OK(access("plain", R_OK | W_OK));

	pid_t pid = AS_USER(1000, 1000, 1000);
	if (pid == 0) {
		struct stat st;
		FAILS(open("secret", O_RDONLY), EACCES);
		FAILS(access("secret", R_OK), EACCES);
		OK(access("secret", F_OK));
		int fd = OK(open("public", O_RDONLY));
		close(fd);
		FAILS(open("public", O_WRONLY), EACCES);
		FAILS(open("public", O_RDWR), EACCES);
		OK(access("public", R_OK));
		FAILS(access("public", W_OK), EACCES);
		FAILS(access("public", X_OK), EACCES);
		FAILS(open("groupdeny", O_RDONLY), EACCES);
		FAILS(open("ownerdeny", O_RDONLY), EACCES);
		FAILS(stat("noexec/inside", &st), EACCES);
		FAILS(open("noexec/inside", O_RDONLY), EACCES);
		errno = 0;
		CHECK(!opendir("noread") && errno == EACCES, "opendir of a directory without r: expected EACCES, got %s",
		      errno ? errname(errno) : "success");
		OK(stat("noread/inside", &st));
		FAILS(open("new", O_CREAT | O_WRONLY, 0644), EACCES);
		FAILS(unlink("public"), EACCES);
		FAILS(mkdir("newdir", 0755), EACCES);
		_exit(0);
	}
	wait_ok(pid, "uid 1000");
	/* reading as other users must not have changed anything */
	EQ_MODE(xstat("secret").st_mode & 07777, 0600, "mode of secret");
}

static void t_perm_supplementary_group(void)
{
	put_file("f", "group data");
	OK(chown("f", 0, 1002));
	OK(chmod("f", 0640));
	mkdir_mode("dg", 0770);
	OK(chown("dg", 0, 1002));

	pid_t pid = AS_USER(1000, 1000, 1000, 1002);
	if (pid == 0) {
		int fd = OK(open("f", O_RDONLY));
		close(fd);
		OK(access("f", R_OK));
		FAILS(open("f", O_WRONLY), EACCES);
		put_file("dg/new", "x");
		struct stat st = xstat("dg/new");
		CHECK(st.st_uid == 1000 && st.st_gid == 1000, "file created via a supplementary group: owner %u:%u",
		      (unsigned)st.st_uid, (unsigned)st.st_gid);
		_exit(0);
	}
	wait_ok(pid, "uid 1000 with supplementary group 1002");

	pid = AS_USER(1000, 1002, 1000);
	if (pid == 0) {
		int fd = OK(open("f", O_RDONLY));
		close(fd);
		_exit(0);
	}
	wait_ok(pid, "uid 1000 with primary group 1002");

	pid = AS_USER(1000, 1000, 1000);
	if (pid == 0) {
		FAILS(open("f", O_RDONLY), EACCES);
		FAILS(open("dg/new2", O_CREAT | O_WRONLY, 0644), EACCES);
		_exit(0);
	}
	wait_ok(pid, "uid 1000 without group 1002");
}

static void t_perm_create_owner(void)
{
	mkdir_mode("shared", 0777);
	pid_t pid = AS_USER(1000, 1000, 1000);
	if (pid == 0) {
		int fd = OK(open("shared/f", O_CREAT | O_EXCL | O_WRONLY, 0666));
		struct stat st = xfstat(fd);
		close(fd);
		EQ(st.st_uid, 1000, "owner of a file created by uid 1000");
		EQ(st.st_gid, 1000, "group of a file created by gid 1000");
		EQ_MODE(st.st_mode & 07777, 0644, "mode 0666 under umask 022");
		OK(mkdir("shared/d", 0777));
		st = xstat("shared/d");
		CHECK(st.st_uid == 1000 && st.st_gid == 1000, "owner of a new directory: %u:%u",
		      (unsigned)st.st_uid, (unsigned)st.st_gid);
		EQ_MODE(st.st_mode & 07777, 0755, "directory mode 0777 under umask 022");
		OK(symlink("f", "shared/sl"));
		st = xlstat("shared/sl");
		CHECK(st.st_uid == 1000 && st.st_gid == 1000, "owner of a new symlink: %u:%u",
		      (unsigned)st.st_uid, (unsigned)st.st_gid);
		OK(mkfifo("shared/p", 0666));
		st = xstat("shared/p");
		CHECK(st.st_uid == 1000 && st.st_gid == 1000, "owner of a new fifo");
		EQ_MODE(st.st_mode & 07777, 0644, "fifo mode 0666 under umask 022");
		umask(077);
		fd = OK(open("shared/g", O_CREAT | O_EXCL | O_WRONLY, 0666));
		EQ_MODE(xfstat(fd).st_mode & 07777, 0600, "mode 0666 under umask 077");
		close(fd);
		_exit(0);
	}
	wait_ok(pid, "uid 1000");
	struct stat st = xstat("shared/f");
	CHECK(st.st_uid == 1000 && st.st_gid == 1000, "owner seen by root: %u:%u", (unsigned)st.st_uid,
	      (unsigned)st.st_gid);
}

static void t_perm_sticky_dir(void)
{
	mkdir_mode("st", 01777);
	EQ_MODE(xstat("st").st_mode & 07777, 01777, "mode of the sticky directory");

	pid_t pid = AS_USER(1000, 1000, 1000);
	if (pid == 0) {
		put_file("st/a", "a");
		put_file("st/b", "b");
		OK(mkdir("st/d1000", 0755));
		_exit(0);
	}
	wait_ok(pid, "uid 1000 creating");

	/* POSIX allows EACCES; Linux says EPERM */
	pid = AS_USER(1001, 1001, 1001);
	if (pid == 0) {
		FAILS2(unlink("st/a"), EPERM, EACCES);
		FAILS2(rename("st/a", "st/c"), EPERM, EACCES);
		FAILS2(rmdir("st/d1000"), EPERM, EACCES);
		put_file("st/own", "own");
		FAILS2(rename("st/own", "st/b"), EPERM, EACCES);
		OK(rename("st/own", "st/own2"));
		OK(unlink("st/own2"));
		_exit(0);
	}
	wait_ok(pid, "uid 1001 in a sticky directory");
	CHECK(!strcmp(get_file("st/a"), "a") && !strcmp(get_file("st/b"), "b"),
	      "files of uid 1000 changed by uid 1001");

	pid = AS_USER(1000, 1000, 1000);
	if (pid == 0) {
		OK(rename("st/a", "st/a2"));
		OK(unlink("st/a2"));
		OK(rmdir("st/d1000"));
		_exit(0);
	}
	wait_ok(pid, "uid 1000 removing its own files");
	OK(unlink("st/b")); /* root */

	/* the owner of a sticky directory may remove anything in it */
	mkdir_mode("st2", 01777);
	OK(chown("st2", 1001, 1001));
	pid = AS_USER(1000, 1000, 1000);
	if (pid == 0) {
		put_file("st2/x", "x");
		_exit(0);
	}
	wait_ok(pid, "uid 1000 creating");
	pid = AS_USER(1001, 1001, 1001);
	if (pid == 0) {
		OK(unlink("st2/x"));
		_exit(0);
	}
	wait_ok(pid, "uid 1001 as owner of the sticky directory");
}

static void t_perm_setgid_dir(void)
{
	mkdir_mode("sg", 0755);
	OK(chown("sg", 0, 1002));
	OK(chmod("sg", 02777));
	EQ_MODE(xstat("sg").st_mode & 07777, 02777, "mode of the setgid directory");

	pid_t pid = AS_USER(1000, 1000, 1000);
	if (pid == 0) {
		put_file("sg/f", "x");
		EQ(xstat("sg/f").st_gid, 1002, "group of a file in a setgid directory");
		OK(mkdir("sg/sub", 0755));
		struct stat st = xstat("sg/sub");
		EQ(st.st_gid, 1002, "group of a subdirectory of a setgid directory");
		EQ_MODE(st.st_mode & 07777, 02755, "subdirectory of a setgid directory");
		/* CVE-2022-0358: a non-member must not get a setgid file of that group */
		int fd = OK(open("sg/sgidfile", O_CREAT | O_EXCL | O_WRONLY, 02755));
		st = xfstat(fd);
		close(fd);
		EQ(st.st_gid, 1002, "group of the new file");
		EQ_MODE(st.st_mode & 07777, 0755, "file created 02755 by a non-member of the directory's group");
		/* the same for chmod by the owner */
		OK(chmod("sg/f", 02755));
		EQ_MODE(xstat("sg/f").st_mode & 07777, 0755, "chmod 02755 by a non-member of the file's group");
		_exit(0);
	}
	wait_ok(pid, "uid 1000 (not in group 1002)");
	EQ_MODE(xstat("sg/sgidfile").st_mode & 07777, 0755, "setgid file as seen by root");

	pid = AS_USER(1001, 1001, 1001, 1002);
	if (pid == 0) {
		int fd = OK(open("sg/member", O_CREAT | O_EXCL | O_WRONLY, 02755));
		struct stat st = xfstat(fd);
		close(fd);
		EQ(st.st_gid, 1002, "group of a file created by a member");
		EQ_MODE(st.st_mode & 07777, 02755, "file created 02755 by a member of the group");
		_exit(0);
	}
	wait_ok(pid, "uid 1001 (in group 1002)");
}

static void t_perm_chown_nonroot(void)
{
	put_file("f", "x");
	OK(chown("f", 1000, 1000));
	pid_t pid = AS_USER(1000, 1000, 1000, 1002);
	if (pid == 0) {
		FAILS(chown("f", 1001, (gid_t)-1), EPERM);
		FAILS(chown("f", (uid_t)-1, 1001), EPERM);
		OK(chown("f", (uid_t)-1, 1002));
		EQ(xstat("f").st_gid, 1002, "group after chgrp to a supplementary group");
		OK(chown("f", 1000, 1000));
		int fd = OK(open("f", O_RDONLY));
		OK(fchown(fd, (uid_t)-1, 1002));
		EQ(xfstat(fd).st_gid, 1002, "group after fchown to a supplementary group");
		close(fd);
		_exit(0);
	}
	wait_ok(pid, "uid 1000 as owner");
	pid = AS_USER(1001, 1001, 1001, 1002);
	if (pid == 0) {
		FAILS(chown("f", (uid_t)-1, 1001), EPERM);
		FAILS(chown("f", 1001, (gid_t)-1), EPERM);
		FAILS(chmod("f", 0777), EPERM);
		_exit(0);
	}
	wait_ok(pid, "uid 1001 as non-owner");
	struct stat st = xstat("f");
	CHECK(st.st_uid == 1000 && st.st_gid == 1002, "owner after the attempts: %u:%u",
	      (unsigned)st.st_uid, (unsigned)st.st_gid);
	EQ_MODE(st.st_mode & 07777, 0644, "mode after chmod by a non-owner");
}

static void t_perm_suid_cleared_on_write(void)
{
	static const struct { const char *name; mode_t mode; } files[] = {
		{ "suid", 04755 }, { "sgid", 02755 }, { "both", 06755 }, { "trunc", 04755 },
	};
	for (size_t i = 0; i < 4; i++) {
		put_file(files[i].name, "content");
		OK(chown(files[i].name, 1000, 1000)); /* before chmod: chown clears the bits */
		OK(chmod(files[i].name, files[i].mode));
		EQ_MODE(xstat(files[i].name).st_mode & 07777, files[i].mode, "mode set by root");
	}
	pid_t pid = AS_USER(1000, 1000, 1000);
	if (pid == 0) {
		for (size_t i = 0; i < 3; i++) {
			int fd = OK(open(files[i].name, O_WRONLY));
			EQ(write(fd, "x", 1), 1, "write");
			EQ_MODE(xfstat(fd).st_mode & 07777, 0755, "mode after a write by a non-root owner");
			close(fd);
		}
		int fd = OK(open("trunc", O_WRONLY));
		OK(ftruncate(fd, 2));
		EQ_MODE(xfstat(fd).st_mode & 07777, 0755, "mode after ftruncate by a non-root owner");
		close(fd);
		_exit(0);
	}
	wait_ok(pid, "uid 1000");
	for (size_t i = 0; i < 4; i++)
		EQ_MODE(xstat(files[i].name).st_mode & 07777, 0755, "mode seen by root after the write");
}

static void t_perm_truncate_other(void)
{
	make_file("f", 0644, 1000, 13);
	OK(chmod("f", 0644));
	make_file("g", 0666, 1000, 13);
	OK(chmod("g", 0666));
	pid_t pid = AS_USER(1001, 1001, 1001);
	if (pid == 0) {
		FAILS(truncate("f", 0), EACCES);
		FAILS(open("f", O_WRONLY | O_TRUNC), EACCES);
		FAILS(open("f", O_RDWR), EACCES);
		int fd = OK(open("f", O_RDONLY));
		FAILS(ftruncate(fd, 0), EINVAL);
		close(fd);
		OK(truncate("g", 10));
		_exit(0);
	}
	wait_ok(pid, "uid 1001");
	EQ(xstat("f").st_size, 1000, "size of a file another user failed to truncate");
	int fd = OK(open("f", O_RDONLY));
	expect_pat(fd, 0, 1000, 13, "content of a file another user failed to truncate");
	close(fd);
	EQ(xstat("g").st_size, 10, "size of a world-writable file truncated by another user");
}

static void t_perm_utimes_nonowner(void)
{
	put_file("w", "x");
	OK(chmod("w", 0666));
	put_file("r", "x");
	OK(chmod("r", 0644));
	const struct timespec old[2] = { { 1000000000, 0 }, { 1000000000, 0 } };
	OK(utimensat(AT_FDCWD, "w", old, 0));
	OK(utimensat(AT_FDCWD, "r", old, 0));

	pid_t pid = AS_USER(1000, 1000, 1000);
	if (pid == 0) {
		/* write access allows "now"; only the owner may set explicit times */
		OK(utimensat(AT_FDCWD, "w", NULL, 0));
		OK(utimensat(AT_FDCWD, "w", ((struct timespec[]){ { 0, UTIME_NOW }, { 0, UTIME_NOW } }), 0));
		FAILS(utimensat(AT_FDCWD, "w", old, 0), EPERM);
		FAILS(utimensat(AT_FDCWD, "r", NULL, 0), EACCES);
		FAILS(utimensat(AT_FDCWD, "r", old, 0), EPERM);
		FAILS(chmod("w", 0600), EPERM);
		_exit(0);
	}
	wait_ok(pid, "uid 1000");
	CHECK(xstat("w").st_mtim.tv_sec != 1000000000, "utimensat(NULL) by a writer did not change mtime");
	EQ(xstat("r").st_mtim.tv_sec, 1000000000, "mtime of a file another user may not touch");
}

/* ------------------------------------------------------------------------- */
/* xattr_*                                                                    */

/* Whether name is in a listxattr() result. */
static bool in_list(const char *list, ssize_t len, const char *name)
{
	for (ssize_t i = 0; i < len; i += (ssize_t)strlen(list + i) + 1)
		if (!strcmp(list + i, name))
			return true;
	return false;
}

static void t_xattr_user(void)
{
	char buf[2048];

	put_file("f", "x");
	if (setxattr("f", "user.test", "value1", 6, 0) < 0) {
		if (errno == EOPNOTSUPP)
			skip("user xattrs not supported");
		FAIL("setxattr(user.test): %s", errname(errno));
	}
	EQ(getxattr("f", "user.test", NULL, 0), 6, "getxattr size query");
	FAILS(getxattr("f", "user.test", buf, 3), ERANGE);
	memset(buf, 0, sizeof buf);
	EQ(getxattr("f", "user.test", buf, sizeof buf), 6, "getxattr");
	CHECK(!memcmp(buf, "value1", 6), "getxattr value");

	FAILS(setxattr("f", "user.test", "v", 1, XATTR_CREATE), EEXIST);
	FAILS(setxattr("f", "user.missing", "v", 1, XATTR_REPLACE), ENODATA);
	OK(setxattr("f", "user.test", "second", 6, XATTR_REPLACE));
	EQ(getxattr("f", "user.test", buf, sizeof buf), 6, "getxattr after XATTR_REPLACE");
	CHECK(!memcmp(buf, "second", 6), "value after XATTR_REPLACE");
	OK(setxattr("f", "user.empty", "", 0, XATTR_CREATE));
	EQ(getxattr("f", "user.empty", buf, sizeof buf), 0, "getxattr of an empty value");
	/* all of a file's xattrs may have to share one 1 KiB block (ext4 with small blocks) */
	char big[512];
	fill(big, sizeof big, 14, 0);
	OK(setxattr("f", "user.big", big, sizeof big, 0));
	EQ(getxattr("f", "user.big", buf, sizeof buf), sizeof big, "getxattr of a 512-byte value");
	CHECK(!memcmp(buf, big, sizeof big), "512-byte value differs");

	ssize_t len = OK(listxattr("f", NULL, 0));
	CHECK(len > 0 && (size_t)len <= sizeof buf, "listxattr size query returned %zd", len);
	FAILS(listxattr("f", buf, 1), ERANGE);
	len = OK(listxattr("f", buf, sizeof buf));
	CHECK(in_list(buf, len, "user.test") && in_list(buf, len, "user.empty") &&
	      in_list(buf, len, "user.big"), "listxattr lacks a user attribute");

	int fd = OK(open("f", O_RDONLY));
	OK(fsetxattr(fd, "user.viafd", "fd", 2, 0));
	EQ(fgetxattr(fd, "user.viafd", buf, sizeof buf), 2, "fgetxattr");
	OK(fremovexattr(fd, "user.viafd"));
	close(fd);

	OK(removexattr("f", "user.test"));
	FAILS(getxattr("f", "user.test", buf, sizeof buf), ENODATA);
	FAILS(removexattr("f", "user.test"), ENODATA);
	len = OK(listxattr("f", buf, sizeof buf));
	CHECK(!in_list(buf, len, "user.test"), "listxattr shows a removed attribute");

	OK(mkdir("d", 0755));
	OK(setxattr("d", "user.dir", "d", 1, 0));
	EQ(getxattr("d", "user.dir", buf, sizeof buf), 1, "user xattr on a directory");
	/* Linux allows user.* only on regular files and directories */
	OK(symlink("f", "sl"));
	FAILS(lsetxattr("sl", "user.link", "l", 1, 0), EPERM);

	/* the file's permissions govern user xattrs */
	OK(chmod("f", 0644));
	pid_t pid = AS_USER(1000, 1000, 1000);
	if (pid == 0) {
		EQ(getxattr("f", "user.empty", buf, sizeof buf), 0, "getxattr by another user");
		FAILS(setxattr("f", "user.other", "o", 1, 0), EACCES);
		_exit(0);
	}
	wait_ok(pid, "uid 1000");
}

static void t_xattr_trusted_as_root(void)
{
	char buf[256];

	put_file("f", "x");
	if (setxattr("f", "trusted.test", "tvalue", 6, 0) < 0) {
		if (errno == EOPNOTSUPP || errno == EPERM)
			skip("trusted xattrs not supported (%s)", errname(errno));
		FAIL("setxattr(trusted.test): %s", errname(errno));
	}
	EQ(getxattr("f", "trusted.test", buf, sizeof buf), 6, "getxattr(trusted.test)");
	CHECK(!memcmp(buf, "tvalue", 6), "trusted xattr value");
	ssize_t len = OK(listxattr("f", buf, sizeof buf));
	CHECK(in_list(buf, len, "trusted.test"), "listxattr by root lacks trusted.test");

	/* invisible to, and not settable by, an unprivileged user */
	pid_t pid = AS_USER(1000, 1000, 1000);
	if (pid == 0) {
		char lbuf[256];
		ssize_t n = OK(listxattr("f", lbuf, sizeof lbuf));
		CHECK(!in_list(lbuf, n, "trusted.test"), "listxattr by uid 1000 shows trusted.test");
		FAILS(getxattr("f", "trusted.test", lbuf, sizeof lbuf), ENODATA);
		FAILS(setxattr("f", "trusted.other", "x", 1, 0), EPERM);
		_exit(0);
	}
	wait_ok(pid, "uid 1000");
	OK(removexattr("f", "trusted.test"));
	FAILS(getxattr("f", "trusted.test", buf, sizeof buf), ENODATA);
}

/* ------------------------------------------------------------------------- */
/* lock_*                                                                     */

/*
 * A separate process that holds locks on a file on command, so that the case
 * process can test them from the outside.  Commands (one byte each) are
 * answered with 'y' (done) or 'n' (refused).
 */
struct holder {
	pid_t pid;
	int cmd, reply;
};

static void holder_loop(const char *path, int cmd, int reply)
{
	int fd = open(path, O_RDWR), other = open(path, O_RDWR);
	char c;

	if (fd < 0 || other < 0)
		FAIL("lock holder: open %s: %s", path, errname(errno));
	while (read(cmd, &c, 1) == 1) {
		int r = -1;
		switch (c) {
		case 'W': r = fcntl(fd, F_SETLK, LK(F_WRLCK, 10, 10)); break;
		case 'U': r = fcntl(fd, F_SETLK, LK(F_UNLCK, 0, 0)); break;
		case 'C': r = close(other); break; /* closing any descriptor drops POSIX locks */
		case 'X': r = flock(fd, LOCK_EX | LOCK_NB); break;
		case 'S': r = flock(fd, LOCK_SH | LOCK_NB); break;
		case 'u': r = flock(fd, LOCK_UN); break;
		}
		char ans = r == 0 ? 'y' : 'n';
		if (write(reply, &ans, 1) != 1)
			_exit(1);
	}
	_exit(0);
}

static void holder_start(struct holder *h, const char *path)
{
	int cmd[2], reply[2];

	OK(pipe(cmd));
	OK(pipe(reply));
	fflush(stdout);
	h->pid = OK(fork());
	if (h->pid == 0) {
		close(cmd[1]);
		close(reply[0]);
		holder_loop(path, cmd[0], reply[1]);
	}
	close(cmd[0]);
	close(reply[1]);
	h->cmd = cmd[1];
	h->reply = reply[0];
}

static bool holder_do(struct holder *h, char c)
{
	send_byte(h->cmd, c);
	int r = read_byte(h->reply, 10000);
	CHECK(r == 'y' || r == 'n', "lock holder did not answer command '%c'", c);
	return r == 'y';
}

static void holder_stop(struct holder *h)
{
	close(h->cmd);
	close(h->reply);
	wait_ok(h->pid, "lock holder");
}

static void t_lock_posix(void)
{
	make_file("f", 0644, 100, 15);
	struct holder h;
	holder_start(&h, "f");
	CHECK(holder_do(&h, 'W'), "holder could not write-lock [10,20)");

	int fd = OK(open("f", O_RDWR));
	FAILS2(fcntl(fd, F_SETLK, LK(F_WRLCK, 15, 5)), EAGAIN, EACCES);
	FAILS2(fcntl(fd, F_SETLK, LK(F_RDLCK, 19, 1)), EAGAIN, EACCES);
	struct flock q = *LK(F_WRLCK, 0, 100);
	OK(fcntl(fd, F_GETLK, &q));
	EQ(q.l_type, F_WRLCK, "F_GETLK l_type");
	CHECK(q.l_pid == h.pid, "F_GETLK l_pid is not the pid of the lock holder");
	EQ(q.l_start, 10, "F_GETLK l_start");
	EQ(q.l_len, 10, "F_GETLK l_len");
	EQ(q.l_whence, SEEK_SET, "F_GETLK l_whence");

	/* ranges that do not overlap are independent */
	OK(fcntl(fd, F_SETLK, LK(F_WRLCK, 20, 10)));
	OK(fcntl(fd, F_SETLK, LK(F_WRLCK, 0, 10)));
	q = *LK(F_WRLCK, 30, 0);
	OK(fcntl(fd, F_GETLK, &q));
	EQ(q.l_type, F_UNLCK, "F_GETLK on a free range");
	OK(fcntl(fd, F_SETLK, LK(F_UNLCK, 0, 0)));

	CHECK(holder_do(&h, 'U'), "holder could not unlock");
	OK(fcntl(fd, F_SETLK, LK(F_WRLCK, 15, 5)));
	OK(fcntl(fd, F_SETLK, LK(F_UNLCK, 15, 5)));

	/* F_SETLKW waits for the holder to unlock */
	CHECK(holder_do(&h, 'W'), "holder could not write-lock again");
	int p[2];
	OK(pipe(p));
	fflush(stdout);
	pid_t w = OK(fork());
	if (w == 0) {
		close(p[0]);
		int wfd = OK(open("f", O_RDWR));
		send_byte(p[1], 'r');
		OK(fcntl(wfd, F_SETLKW, LK(F_WRLCK, 10, 10)));
		send_byte(p[1], 'g');
		_exit(0);
	}
	close(p[1]);
	CHECK(read_byte(p[0], 10000) == 'r', "F_SETLKW waiter did not start");
	CHECK(read_byte(p[0], 300) == TIMED_OUT, "F_SETLKW returned while another process held the lock");
	CHECK(holder_do(&h, 'U'), "holder could not unlock");
	CHECK(read_byte(p[0], 10000) == 'g', "F_SETLKW did not return after the lock was released");
	wait_ok(w, "F_SETLKW waiter");
	close(p[0]);

	/* closing any descriptor of the file releases the process's locks */
	CHECK(holder_do(&h, 'W'), "holder could not write-lock a third time");
	FAILS2(fcntl(fd, F_SETLK, LK(F_WRLCK, 10, 10)), EAGAIN, EACCES);
	CHECK(holder_do(&h, 'C'), "holder could not close its second descriptor");
	q = *LK(F_WRLCK, 0, 0);
	OK(fcntl(fd, F_GETLK, &q));
	EQ(q.l_type, F_UNLCK, "F_GETLK after the holder closed another descriptor of the file");
	OK(fcntl(fd, F_SETLK, LK(F_WRLCK, 10, 10)));
	holder_stop(&h);
	OK(close(fd));
}

static void t_lock_flock(void)
{
	put_file("f", "x");
	struct holder h;
	holder_start(&h, "f");
	CHECK(holder_do(&h, 'X'), "holder could not take LOCK_EX");

	int fd = OK(open("f", O_RDONLY));
	FAILS(flock(fd, LOCK_EX | LOCK_NB), EWOULDBLOCK);
	FAILS(flock(fd, LOCK_SH | LOCK_NB), EWOULDBLOCK);
	CHECK(holder_do(&h, 'u'), "holder could not unlock");
	CHECK(holder_do(&h, 'S'), "holder could not take LOCK_SH");
	OK(flock(fd, LOCK_SH | LOCK_NB));
	OK(flock(fd, LOCK_UN));
	FAILS(flock(fd, LOCK_EX | LOCK_NB), EWOULDBLOCK);
	CHECK(holder_do(&h, 'u'), "holder could not unlock");
	OK(flock(fd, LOCK_EX | LOCK_NB));
	CHECK(!holder_do(&h, 'S'), "holder got LOCK_SH while another process held LOCK_EX");

	/* flock locks belong to the open file description, not the process */
	int fd2 = OK(open("f", O_RDONLY));
	FAILS(flock(fd2, LOCK_EX | LOCK_NB), EWOULDBLOCK);
	int dup_fd = OK(dup(fd));
	OK(flock(dup_fd, LOCK_EX | LOCK_NB)); /* same description: already ours */
	OK(close(fd));
	FAILS(flock(fd2, LOCK_EX | LOCK_NB), EWOULDBLOCK); /* still held through the dup */
	OK(close(dup_fd));
	OK(flock(fd2, LOCK_EX | LOCK_NB));
	OK(close(fd2));
	CHECK(holder_do(&h, 'X'), "holder could not take LOCK_EX after the last close");
	holder_stop(&h);
}

static void t_lock_ofd(void)
{
	make_file("f", 0644, 100, 16);
	int fd1 = OK(open("f", O_RDWR)), fd2 = OK(open("f", O_RDWR));

	if (fcntl(fd1, F_OFD_SETLK, LK(F_WRLCK, 0, 10)) < 0) {
		if (errno == EINVAL || errno == EOPNOTSUPP)
			skip("F_OFD_SETLK not supported (%s)", errname(errno));
		FAIL("F_OFD_SETLK: %s", errname(errno));
	}
	/* unlike POSIX locks, two descriptions in one process conflict */
	FAILS2(fcntl(fd2, F_OFD_SETLK, LK(F_WRLCK, 5, 5)), EAGAIN, EACCES);
	struct flock q = *LK(F_WRLCK, 0, 100);
	OK(fcntl(fd2, F_OFD_GETLK, &q));
	EQ(q.l_type, F_WRLCK, "F_OFD_GETLK l_type");
	EQ(q.l_pid, -1, "F_OFD_GETLK l_pid of an OFD lock");
	EQ(q.l_start, 0, "F_OFD_GETLK l_start");
	EQ(q.l_len, 10, "F_OFD_GETLK l_len");
	FAILS2(fcntl(fd2, F_SETLK, LK(F_WRLCK, 0, 1)), EAGAIN, EACCES);
	OK(fcntl(fd2, F_OFD_SETLK, LK(F_WRLCK, 10, 5)));

	OK(close(fd1));
	OK(fcntl(fd2, F_OFD_SETLK, LK(F_WRLCK, 5, 5)));

	struct holder h;
	holder_start(&h, "f");
	CHECK(!holder_do(&h, 'W'), "POSIX lock granted over an OFD lock of another process");
	OK(fcntl(fd2, F_OFD_SETLK, LK(F_UNLCK, 0, 0)));
	CHECK(holder_do(&h, 'W'), "holder could not lock after the OFD lock was released");
	FAILS2(fcntl(fd2, F_OFD_SETLK, LK(F_RDLCK, 15, 1)), EAGAIN, EACCES);
	q = *LK(F_WRLCK, 0, 0);
	OK(fcntl(fd2, F_OFD_GETLK, &q));
	CHECK(q.l_type == F_WRLCK && q.l_pid == h.pid, "F_OFD_GETLK does not report the POSIX lock holder");
	holder_stop(&h);
	OK(fcntl(fd2, F_OFD_SETLK, LK(F_WRLCK, 10, 10)));
	OK(close(fd2));
}

/* ------------------------------------------------------------------------- */
/* mknod, concurrency, misc                                                   */

static void t_mknod_fifo_and_dev(void)
{
	OK(mkfifo("p", 0640));
	struct stat st = xstat("p");
	CHECK(S_ISFIFO(st.st_mode), "mkfifo did not make a fifo");
	EQ_MODE(st.st_mode & 07777, 0640, "fifo mode");
	OK(mknod("p2", S_IFIFO | 0600, 0));
	CHECK(S_ISFIFO(xstat("p2").st_mode), "mknod S_IFIFO did not make a fifo");
	OK(mknod("r", S_IFREG | 0600, 0));
	st = xstat("r");
	CHECK(S_ISREG(st.st_mode) && st.st_size == 0, "mknod S_IFREG did not make an empty file");
	OK(mknod("s", S_IFSOCK | 0600, 0));
	CHECK(S_ISSOCK(xstat("s").st_mode), "mknod S_IFSOCK did not make a socket");
	FAILS(mkfifo("p", 0600), EEXIST);

	/* a fifo on this file system carries data between processes */
	fflush(stdout);
	pid_t pid = OK(fork());
	if (pid == 0) {
		int wfd = OK(open("p", O_WRONLY));
		EQ(write(wfd, "fifo!", 5), 5, "write to fifo");
		_exit(0);
	}
	int rfd = OK(open("p", O_RDONLY));
	char buf[8] = { 0 };
	EQ(read(rfd, buf, sizeof buf), 5, "read from fifo");
	CHECK(!strcmp(buf, "fifo!"), "data read from fifo");
	wait_ok(pid, "fifo writer");
	close(rfd);

	if (mknod("c", S_IFCHR | 0600, makedev(1, 3)) < 0) {
		if (errno == EPERM)
			skip("mknod of a device: EPERM (fifo, socket and regular file passed)");
		FAIL("mknod S_IFCHR: %s", errname(errno));
	}
	st = xstat("c");
	CHECK(S_ISCHR(st.st_mode), "mknod S_IFCHR did not make a character device");
	CHECK(major(st.st_rdev) == 1 && minor(st.st_rdev) == 3, "character device is %u:%u, not 1:3",
	      major(st.st_rdev), minor(st.st_rdev));
	OK(mknod("b", S_IFBLK | 0600, makedev(7, 200)));
	st = xstat("b");
	CHECK(S_ISBLK(st.st_mode), "mknod S_IFBLK did not make a block device");
	CHECK(major(st.st_rdev) == 7 && minor(st.st_rdev) == 200, "block device is %u:%u, not 7:200",
	      major(st.st_rdev), minor(st.st_rdev));
	EQ(st.st_size, 0, "size of a block device node");
}

enum { WRITERS = 4 };

struct conc {
	const char *path;
	long long region; /* bytes per writer */
	int records;      /* O_APPEND records per writer */
};

static void region_writer(int i, const void *arg)
{
	const struct conc *c = arg;
	unsigned char buf[4096];
	int fd = OK(open(c->path, O_WRONLY));

	for (off_t off = i * c->region; off < (i + 1) * c->region; off += 4096) {
		fill(buf, sizeof buf, (unsigned)i + 20, off);
		pwrite_all(fd, buf, sizeof buf, off);
	}
	close(fd);
}

/* 512-byte stripes: all writers share every page */
static void stripe_writer(int i, const void *arg)
{
	const struct conc *c = arg;
	unsigned char buf[512];
	int fd = OK(open(c->path, O_WRONLY));

	for (off_t off = i * 512; off < WRITERS * c->region; off += WRITERS * 512) {
		fill(buf, sizeof buf, (unsigned)i + 30, off);
		pwrite_all(fd, buf, sizeof buf, off);
	}
	close(fd);
}

static size_t make_record(char *rec, int w, int n)
{
	int body = (w * 7 + n * 13) % 200;
	int h = sprintf(rec, "R%d:%06d:%03d:", w, n, body);

	memset(rec + h, 'a' + (w + n) % 26, (size_t)body);
	rec[h + body] = '\n';
	return (size_t)(h + body + 1);
}

static void append_writer(int i, const void *arg)
{
	const struct conc *c = arg;
	char rec[256];
	int fd = OK(open(c->path, O_WRONLY | O_APPEND));

	for (int n = 0; n < c->records; n++) {
		size_t len = make_record(rec, i, n);
		EQ(write(fd, rec, len), len, "O_APPEND record write");
	}
	close(fd);
}

static void t_conc_writers(void)
{
	struct conc c = { .region = quick ? 256 * KiB : MiB, .records = quick ? 300 : 2000 };
	const size_t total = (size_t)(WRITERS * c.region);

	c.path = "regions";
	int fd = OK(open(c.path, O_CREAT | O_RDWR, 0644));
	run_workers(WRITERS, region_writer, &c);
	EQ(xfstat(fd).st_size, total, "size after concurrent region writes");
	for (int i = 0; i < WRITERS; i++)
		expect_pat(fd, i * c.region, (size_t)c.region, (unsigned)i + 20, "region written concurrently");
	close(fd);

	c.path = "stripes";
	fd = OK(open(c.path, O_CREAT | O_RDWR, 0644));
	run_workers(WRITERS, stripe_writer, &c);
	EQ(xfstat(fd).st_size, total, "size after concurrent stripe writes");
	unsigned char *buf = xmalloc(total);
	EQ(pread_full(fd, buf, total, 0), total, "read of the striped file");
	for (size_t off = 0; off < total; off += 512) {
		unsigned w = (unsigned)(off / 512 % WRITERS);
		CHECK(mismatch(buf + off, 512, w + 30, off) < 0, "stripe at %zu lost or damaged", off);
	}
	close(fd);
	free(buf);

	c.path = "appends";
	fd = OK(open(c.path, O_CREAT | O_RDWR, 0644));
	run_workers(WRITERS, append_writer, &c);
	size_t want = 0;
	char rec[256];
	for (int w = 0; w < WRITERS; w++)
		for (int n = 0; n < c.records; n++)
			want += make_record(rec, w, n);
	EQ(xfstat(fd).st_size, want, "size after concurrent O_APPEND writes");
	char *data = xmalloc(want + 1);
	EQ(pread_full(fd, data, want, 0), want, "read of the appended file");
	int next[WRITERS] = { 0 };
	for (size_t pos = 0; pos < want;) {
		int w, n;
		CHECK(sscanf(data + pos, "R%d:%d:", &w, &n) == 2 && w >= 0 && w < WRITERS,
		      "garbled O_APPEND record at offset %zu", pos);
		CHECK(n == next[w], "O_APPEND records of writer %d out of order at offset %zu", w, pos);
		size_t len = make_record(rec, w, n);
		CHECK(pos + len <= want && !memcmp(data + pos, rec, len), "damaged O_APPEND record at offset %zu",
		      pos);
		next[w]++;
		pos += len;
	}
	for (int w = 0; w < WRITERS; w++)
		EQ(next[w], c.records, "O_APPEND records found for a writer");
	close(fd);
	free(data);
}

static void churn_worker(int i, const void *arg)
{
	const int iters = *(const int *)arg;
	char a[64], b[64];

	OK(chdir("churn"));
	if (i == WRITERS) {
		/* a reader that lists the directory while it changes */
		for (int pass = 0; pass < (quick ? 20 : 100); pass++) {
			DIR *d = opendir(".");
			struct dirent *e;
			CHECK(d, "opendir: %s", errname(errno));
			for (errno = 0; (e = readdir(d)); errno = 0) {
				int x, y;
				char kind;
				CHECK(is_dot(e->d_name) || (sscanf(e->d_name, "%c%d_%d", &kind, &x, &y) == 3 &&
							    strchr("crd", kind)),
				      "readdir during create/unlink returned a bad name");
			}
			CHECK(!errno, "readdir during create/unlink: %s", errname(errno));
			closedir(d);
		}
		return;
	}
	for (int n = 0; n < iters; n++) {
		snprintf(a, sizeof a, "c%d_%d", i, n);
		int fd = open(a, O_CREAT | O_EXCL | O_WRONLY, 0644);
		CHECK(fd >= 0, "create %s: %s", a, errname(errno));
		EQ(write(fd, "0123456789abcdef", 16), 16, "write");
		close(fd);
		if (n % 3 == 0) {
			snprintf(b, sizeof b, "r%d_%d", i, n);
			if (rename(a, b) < 0 || unlink(b) < 0)
				FAIL("rename+unlink %s: %s", a, errname(errno));
		} else if (n % 5 == 1) {
			snprintf(b, sizeof b, "d%d_%d", i, n);
			if (mkdir(b, 0755) < 0 || unlink(a) < 0 || rmdir(b) < 0)
				FAIL("mkdir+unlink+rmdir %s: %s", a, errname(errno));
		} else if (unlink(a) < 0) {
			FAIL("unlink %s: %s", a, errname(errno));
		}
	}
}

static void t_conc_create_unlink(void)
{
	const int iters = quick ? 250 : 1000;

	OK(mkdir("churn", 0755));
	run_workers(WRITERS + 1, churn_worker, &iters);
	EQ(count_entries("churn"), 0, "entries left after concurrent create/unlink");
	OK(rmdir("churn"));
}

static void t_statfs_basic(void)
{
	struct statfs sf;
	struct statvfs sv;

	OK(statfs(".", &sf));
	CHECK(sf.f_bsize > 0, "statfs f_bsize is %lld", (long long)sf.f_bsize);
	CHECK(sf.f_blocks > 0, "statfs f_blocks is 0");
	CHECK(sf.f_bfree <= sf.f_blocks, "statfs f_bfree > f_blocks");
	CHECK(sf.f_bavail <= sf.f_bfree, "statfs f_bavail > f_bfree");
	CHECK(sf.f_namelen > 0, "statfs f_namelen is 0");

	OK(statvfs(".", &sv));
	CHECK(sv.f_bsize > 0 && sv.f_frsize > 0, "statvfs f_bsize or f_frsize is 0");
	CHECK(sv.f_blocks > 0, "statvfs f_blocks is 0");
	CHECK(sv.f_namemax > 0, "statvfs f_namemax is 0");

	int fd = OK(open(".", O_RDONLY | O_DIRECTORY));
	struct statfs fsf;
	OK(fstatfs(fd, &fsf));
	CHECK(fsf.f_type == sf.f_type && fsf.f_blocks == sf.f_blocks, "fstatfs differs from statfs");
	close(fd);
}

static void t_fsync_basic(void)
{
	make_file("f", 0644, 100000, 17);
	int fd = OK(open("f", O_RDWR));
	unsigned char buf[4096];
	fill(buf, sizeof buf, 18, 50000);
	pwrite_all(fd, buf, sizeof buf, 50000);
	OK(fsync(fd));
	OK(fdatasync(fd));
	OK(sync_file_range(fd, 0, 0,
			   SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER));
	OK(syncfs(fd));
	expect_pat(fd, 50000, sizeof buf, 18, "data after fsync");
	OK(close(fd));

	fd = OK(open("f", O_RDONLY));
	OK(fsync(fd));
	OK(close(fd));
	int dfd = OK(open(".", O_RDONLY | O_DIRECTORY));
	OK(fsync(dfd));
	OK(close(dfd));
	sync();
}

static void t_copy_file_range_basic(void)
{
	const size_t SRC = 3 * MiB / 2 + 123, LEN = MiB + 5000;
	const off_t IN = 4096 + 7, OUT = 100;

	make_file("src", 0644, SRC, 19);
	int in = OK(open("src", O_RDONLY)), outfd = OK(open("dst", O_CREAT | O_RDWR, 0644));
	off_t oin = IN, oout = OUT;
	size_t done = 0;
	while (done < LEN) {
		ssize_t n = copy_file_range(in, &oin, outfd, &oout, LEN - done, 0);
		if (n < 0 && done == 0 && (errno == EXDEV || errno == ENOSYS || errno == EOPNOTSUPP))
			skip("copy_file_range not supported (%s)", errname(errno));
		CHECK(n >= 0, "copy_file_range: %s", errname(errno));
		CHECK(n > 0, "copy_file_range stopped after %zu of %zu bytes", done, LEN);
		done += (size_t)n;
	}
	EQ(oin, IN + (off_t)LEN, "input offset after copy_file_range");
	EQ(oout, OUT + (off_t)LEN, "output offset after copy_file_range");
	EQ(lseek(in, 0, SEEK_CUR), 0, "input file position (offsets were given)");
	EQ(lseek(outfd, 0, SEEK_CUR), 0, "output file position (offsets were given)");
	EQ(xfstat(outfd).st_size, OUT + (off_t)LEN, "size of the copy");
	expect_zero(outfd, 0, OUT, "range before the copied data");
	unsigned char *buf = xmalloc(LEN);
	EQ(pread_full(outfd, buf, LEN, OUT), LEN, "read of the copy");
	CHECK(mismatch(buf, LEN, 19, IN) < 0, "copied data wrong at offset %lld",
	      OUT + mismatch(buf, LEN, 19, IN));

	oin = (off_t)SRC;
	EQ(copy_file_range(in, &oin, outfd, NULL, 100, 0), 0, "copy_file_range at end of input");

	/* without offsets, the file positions are used and advanced */
	EQ(lseek(in, 10, SEEK_SET), 10, "lseek");
	EQ(lseek(outfd, 0, SEEK_SET), 0, "lseek");
	EQ(copy_file_range(in, NULL, outfd, NULL, 1000, 0), 1000, "copy_file_range using file positions");
	EQ(lseek(in, 0, SEEK_CUR), 1010, "input position after copy");
	EQ(lseek(outfd, 0, SEEK_CUR), 1000, "output position after copy");
	EQ(pread_full(outfd, buf, 1000, 0), 1000, "read of the copy");
	CHECK(mismatch(buf, 1000, 19, 10) < 0, "data copied using file positions is wrong");
	close(in);
	close(outfd);
	free(buf);
}

static void t_errors_basic(void)
{
	char name[300], path[5000];
	struct stat st;

	FAILS(open("missing", O_RDONLY), ENOENT);
	FAILS(open("", O_RDONLY), ENOENT);
	memset(name, 'n', 255);
	name[255] = 0;
	int fd = OK(open(name, O_CREAT | O_WRONLY, 0644));
	close(fd);
	OK(stat(name, &st));
	OK(unlink(name));
	memset(name, 'n', 256);
	name[256] = 0;
	FAILS(open(name, O_CREAT | O_WRONLY, 0644), ENAMETOOLONG);
	FAILS(stat(name, &st), ENAMETOOLONG);
	FAILS(mkdir(name, 0755), ENAMETOOLONG);
	for (size_t i = 0; i + 2 < sizeof path; i += 2)
		memcpy(path + i, "a/", 2);
	path[sizeof path - 1] = 0;
	FAILS(stat(path, &st), ENAMETOOLONG);

	put_file("f", "x");
	OK(mkdir("d", 0755));
	FAILS(mkdir("f/x", 0755), ENOTDIR);
	FAILS(open("f/x", O_RDONLY), ENOTDIR);
	FAILS(stat("f/", &st), ENOTDIR);
	FAILS(open("f", O_RDONLY | O_DIRECTORY), ENOTDIR);
	FAILS(unlink("d"), EISDIR);
	FAILS(rmdir("f"), ENOTDIR);
	FAILS(link("d", "dlink"), EPERM);
	FAILS(open("d", O_WRONLY), EISDIR);
	FAILS(open("d", O_RDWR), EISDIR);
	FAILS(rmdir("."), EINVAL);
	FAILS(unlink("missing"), ENOENT);

	fd = OK(open("f", O_RDONLY));
	FAILS(write(fd, "x", 1), EBADF);
	close(fd);
	fd = OK(open("f", O_WRONLY));
	char c;
	FAILS(read(fd, &c, 1), EBADF);
	close(fd);
	fd = OK(open("d", O_RDONLY | O_DIRECTORY));
	FAILS(read(fd, &c, 1), EISDIR);
	close(fd);
}

/* ------------------------------------------------------------------------- */
/* Driver                                                                     */

struct tcase {
	const char *name;
	void (*fn)(void);
};

#define CASE(n) { #n, t_##n }

static const struct tcase cases[] = {
	CASE(file_create_rw),
	CASE(file_o_excl),
	CASE(file_o_append),
	CASE(file_o_trunc),
	CASE(file_o_tmpfile),
	CASE(file_unlink_open),
	CASE(file_large_offset),
	CASE(file_truncate_grow_shrink),
	CASE(file_sparse_seek),
	CASE(file_fallocate),
	CASE(file_times),
	CASE(file_mmap_shared),
	CASE(file_rw_offsets),
	CASE(dir_mkdir_rmdir),
	CASE(dir_readdir_many),
	CASE(dir_readdir_seek),
	CASE(dir_nlink),
	CASE(link_hard),
	CASE(link_symlink),
	CASE(link_symlink_long),
	CASE(link_symlink_times),
	CASE(rename_basic),
	CASE(rename_noreplace),
	CASE(rename_exchange),
	CASE(rename_cross_dir),
	CASE(rename_whiteout),
	CASE(perm_mode_bits),
	CASE(perm_owner_chown),
	CASE(perm_chown_clears_suid),
	CASE(perm_access_other_user),
	CASE(perm_supplementary_group),
	CASE(perm_create_owner),
	CASE(perm_sticky_dir),
	CASE(perm_setgid_dir),
	CASE(perm_chown_nonroot),
	CASE(perm_suid_cleared_on_write),
	CASE(perm_truncate_other),
	CASE(perm_utimes_nonowner),
	CASE(xattr_user),
	CASE(xattr_trusted_as_root),
	CASE(lock_posix),
	CASE(lock_flock),
	CASE(lock_ofd),
	CASE(mknod_fifo_and_dev),
	CASE(conc_writers),
	CASE(conc_create_unlink),
	CASE(statfs_basic),
	CASE(fsync_basic),
	CASE(copy_file_range_basic),
	CASE(errors_basic),
};

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb, (void)flag, (void)ftw;
	remove(path);
	return 0;
}

static void remove_tree(const char *path)
{
	nftw(path, rm_entry, 32, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/*
 * Waits for the case process to exit without reaping it, so that its pid
 * (the process group id) stays reserved until the group has been killed.
 * Returns false if it could not be made to exit at all.
 */
static bool await_case(pid_t pid, const sigset_t *chld, bool *killed)
{
	double deadline = now_s() + CASE_TIMEOUT + 10;
	int kills = 0;

	for (;;) {
		siginfo_t si = { 0 };
		if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid == pid)
			return true;
		double left = deadline - now_s();
		if (left <= 0) {
			*killed = true;
			if (kills++ == 2)
				return false;
			kill(-pid, SIGKILL);
			deadline = now_s() + 10;
			continue;
		}
		struct timespec ts = { .tv_sec = left > 1 ? 1 : 0, .tv_nsec = left > 1 ? 0 : 100000000 };
		sigtimedwait(chld, NULL, &ts);
	}
}

/* Reaps the processes of finished cases that were reparented to us. */
static void reap_orphans(void)
{
	double until = now_s() + 2;

	while (now_s() < until) {
		pid_t p = waitpid(-1, NULL, WNOHANG);
		if (p < 0)
			return; /* ECHILD: none left */
		if (p == 0)
			usleep(1000);
	}
}

/* Runs one case; returns OUT_NONE for a pass, OUT_FAIL or OUT_SKIP. */
static int run_case(const struct tcase *c, const char *base, const sigset_t *chld)
{
	char dir[PATH_MAX + 64];

	snprintf(dir, sizeof dir, "%s/%s", base, c->name);
	memset(out, 0, sizeof *out);
	if (mkdir(dir, 0755) < 0) {
		printf("FAIL %s: cannot create the case directory: %s\n", c->name, errname(errno));
		return OUT_FAIL;
	}
	fflush(stdout);
	pid_t pid = fork();
	if (pid < 0) {
		printf("FAIL %s: fork: %s\n", c->name, errname(errno));
		return OUT_FAIL;
	}
	if (pid == 0) {
		setpgid(0, 0);
		sigprocmask(SIG_UNBLOCK, chld, NULL);
		signal(SIGPIPE, SIG_IGN);
		alarm(CASE_TIMEOUT);
		if (chdir(dir) < 0)
			FAIL("chdir to the case directory: %s", errname(errno));
		c->fn();
		_exit(0);
	}
	setpgid(pid, pid);

	int kind = OUT_NONE, st = 0;
	bool killed = false;
	char reason[sizeof out->msg + 64] = "";
	if (!await_case(pid, chld, &killed)) {
		kind = OUT_FAIL;
		snprintf(reason, sizeof reason, "hung and could not be killed");
	} else {
		kill(-pid, SIGKILL); /* helpers left behind */
		waitpid(pid, &st, 0);
		reap_orphans();
		__sync_synchronize();
		if (out->claimed) {
			kind = out->kind == OUT_SKIP ? OUT_SKIP : OUT_FAIL;
			snprintf(reason, sizeof reason, "%s", out->msg);
		} else if ((WIFSIGNALED(st) && WTERMSIG(st) == SIGALRM) || killed) {
			kind = OUT_FAIL;
			snprintf(reason, sizeof reason, "timed out after %d s", CASE_TIMEOUT);
		} else if (WIFSIGNALED(st)) {
			kind = OUT_FAIL;
			snprintf(reason, sizeof reason, "killed by signal SIG%s", sigabbrev_np(WTERMSIG(st)));
		} else if (WEXITSTATUS(st) != 0) {
			kind = OUT_FAIL;
			snprintf(reason, sizeof reason, "exited with status %d", WEXITSTATUS(st));
		}
		remove_tree(dir);
	}
	if (kind == OUT_NONE)
		printf("PASS %s\n", c->name);
	else
		printf("%s %s: %s\n", kind == OUT_FAIL ? "FAIL" : "SKIP", c->name, reason);
	fflush(stdout);
	return kind;
}

static void usage(void)
{
	fprintf(stderr, "usage: vufs-posix [-q] [-k CASE] DIR\n");
	exit(2);
}

int main(int argc, char **argv)
{
	const char *only = NULL;
	int opt;

	while ((opt = getopt(argc, argv, "qk:")) != -1) {
		switch (opt) {
		case 'q': quick = true; break;
		case 'k': only = optarg; break;
		default: usage();
		}
	}
	if (optind != argc - 1)
		usage();
	const char *top = argv[optind];

	size_t ncases = sizeof cases / sizeof cases[0], selected = 0;
	for (size_t i = 0; i < ncases; i++)
		selected += !only || strstr(cases[i].name, only);
	if (!selected) {
		fprintf(stderr, "vufs-posix: no case matches \"%s\"\n", only);
		return 2;
	}
	if (geteuid() != 0)
		fprintf(stderr, "vufs-posix: warning: not root, permission cases will fail\n");

	umask(022);
	setvbuf(stdout, NULL, _IOLBF, 0);
	/* helpers orphaned by a finished case come to us, to be killed and reaped */
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	sigset_t chld;
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	sigprocmask(SIG_BLOCK, &chld, NULL);

	out = mmap(NULL, sizeof *out, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (out == MAP_FAILED) {
		perror("vufs-posix: mmap");
		return 2;
	}

	char base[PATH_MAX];
	for (int n = 0;; n++) {
		if (n == 0)
			snprintf(base, sizeof base, "%s/vufs-posix.%d", top, (int)getpid());
		else
			snprintf(base, sizeof base, "%s/vufs-posix.%d.%d", top, (int)getpid(), n);
		if (mkdir(base, 0755) == 0)
			break;
		if (errno != EEXIST || n == 100) {
			fprintf(stderr, "vufs-posix: mkdir %s: %s\n", base, strerror(errno));
			return 2;
		}
	}
	chmod(base, 0755);

	int passed = 0, failed = 0, skipped = 0;
	for (size_t i = 0; i < ncases; i++) {
		if (only && !strstr(cases[i].name, only))
			continue;
		switch (run_case(&cases[i], base, &chld)) {
		case OUT_NONE: passed++; break;
		case OUT_FAIL: failed++; break;
		default: skipped++; break;
		}
	}
	remove_tree(base);
	printf("RESULT %d passed, %d failed, %d skipped\n", passed, failed, skipped);
	return failed ? 1 : 0;
}

/*
 * vufs-metabench: the timed steps of bench/run.sh's metadata and data workloads, one per invocation, each printing
 * "STEP SECONDS". Needs nothing but libc, so that run.sh can also build it static for the busybox guest.
 *
 *   vufs-metabench create DIR N    mkdir DIR, then create (open O_CREAT|O_EXCL, close) N empty files in it
 *   vufs-metabench stat DIR N      fstatat each of them
 *   vufs-metabench unlink DIR N    unlink each of them, then rmdir DIR
 *   vufs-metabench write FILE MIB  write MIB MiB in 1 MiB blocks, fsync, close (the time includes the fsync)
 *   vufs-metabench read FILE       read the whole file in 1 MiB blocks
 *   vufs-metabench drop            sync and drop the page, dentry and inode caches (root only)
 *   vufs-metabench time CMD [ARG...]  run CMD with its stdout on /dev/null; exits with its status
 *   vufs-metabench randread FILE SECONDS   4 KiB pread()s at random page offsets for SECONDS; prints "randread IOPS"
 *   vufs-metabench mmapread FILE SECONDS   the same through a MAP_SHARED mapping of the whole file (4 KiB copies)
 *   vufs-metabench cached          the kernel's page cache in KiB ("Cached:" of /proc/meminfo)
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MIB (1024 * 1024)

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void fail(const char *what, const char *arg)
{
	fprintf(stderr, "vufs-metabench: %s %s: %s\n", what, arg, strerror(errno));
	exit(1);
}

static void done(const char *step, double t0)
{
	printf("%s %.6f\n", step, now() - t0);
	fflush(stdout);
}

static long count(const char *s)
{
	char *end;
	long n = strtol(s, &end, 10);
	if (*end || n < 0) {
		fprintf(stderr, "vufs-metabench: not a count: %s\n", s);
		exit(2);
	}
	return n;
}

static int open_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		fail("open", dir);
	return fd;
}

static void files(const char *step, const char *dir, long n)
{
	char name[32];
	struct stat st;
	double t0 = now();
	if (!strcmp(step, "create") && mkdir(dir, 0755) < 0)
		fail("mkdir", dir);
	int dfd = open_dir(dir);
	for (long i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "f%06ld", i);
		if (!strcmp(step, "create")) {
			int fd = openat(dfd, name, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0644);
			if (fd < 0)
				fail("create", name);
			close(fd);
		} else if (!strcmp(step, "stat")) {
			if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
				fail("stat", name);
		} else if (unlinkat(dfd, name, 0) < 0) {
			fail("unlink", name);
		}
	}
	close(dfd);
	if (!strcmp(step, "unlink") && rmdir(dir) < 0)
		fail("rmdir", dir);
	done(step, t0);
}

static void data(const char *step, const char *file, long mib)
{
	char *buf = malloc(MIB);
	if (!buf)
		fail("malloc", "");
	memset(buf, 0x5a, MIB);
	double t0 = now();
	int w = !strcmp(step, "write");
	int fd = open(file, w ? O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC : O_RDONLY | O_CLOEXEC, 0644);
	if (fd < 0)
		fail("open", file);
	if (w) {
		for (long i = 0; i < mib; i++)
			if (write(fd, buf, MIB) != MIB)
				fail("write", file);
		if (fsync(fd) < 0)
			fail("fsync", file);
	} else {
		ssize_t n;
		while ((n = read(fd, buf, MIB)) > 0)
			;
		if (n < 0)
			fail("read", file);
	}
	if (close(fd) < 0)
		fail("close", file);
	done(step, t0);
	free(buf);
}

static void drop(void)
{
	sync();
	int fd = open("/proc/sys/vm/drop_caches", O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, "3\n", 2) != 2)
		fail("drop", "/proc/sys/vm/drop_caches");
	close(fd);
}

/* A small xorshift: the same sequence in every run, no libc state. */
static uint64_t next_random(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

static void random_reads(const char *step, const char *file, long seconds)
{
	static char buf[4096];
	struct stat st;
	uint64_t x = 88172645463325252ull, ops = 0;
	int fd = open(file, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0 || st.st_size < 4096)
		fail("open", file);
	uint64_t pages = (uint64_t)st.st_size / 4096;
	const char *map = NULL;
	if (!strcmp(step, "mmapread")) {
		map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
		if (map == MAP_FAILED)
			fail("mmap", file);
	}
	double t0 = now(), end = t0 + (double)seconds;
	while (now() < end) {
		for (int k = 0; k < 64; k++, ops++) {
			off_t off = (off_t)(next_random(&x) % pages) * 4096;
			if (map)
				memcpy(buf, map + off, sizeof(buf));
			else if (pread(fd, buf, sizeof(buf), off) != (ssize_t)sizeof(buf))
				fail("pread", file);
		}
	}
	printf("%s %.0f\n", step, (double)ops / (now() - t0));
	fflush(stdout);
	close(fd);
}

static void cached(void)
{
	char line[256];
	FILE *f = fopen("/proc/meminfo", "re");
	while (f && fgets(line, sizeof(line), f)) {
		if (!strncmp(line, "Cached:", 7)) {
			printf("cached %ld\n", strtol(line + 7, NULL, 10));
			fclose(f);
			return;
		}
	}
	fail("read", "/proc/meminfo");
}

static int timed(char **argv)
{
	double t0 = now();
	pid_t pid = fork();
	if (pid < 0)
		fail("fork", argv[0]);
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);
		if (null >= 0)
			dup2(null, 1);
		execvp(argv[0], argv);
		fprintf(stderr, "vufs-metabench: exec %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	int st;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			fail("wait", argv[0]);
	done("time", t0);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

int main(int argc, char **argv)
{
	const char *step = argc > 1 ? argv[1] : "";
	if ((!strcmp(step, "create") || !strcmp(step, "stat") || !strcmp(step, "unlink")) && argc == 4)
		files(step, argv[2], count(argv[3]));
	else if (!strcmp(step, "write") && argc == 4)
		data(step, argv[2], count(argv[3]));
	else if (!strcmp(step, "read") && argc == 3)
		data(step, argv[2], 0);
	else if (!strcmp(step, "drop") && argc == 2)
		drop();
	else if ((!strcmp(step, "randread") || !strcmp(step, "mmapread")) && argc == 4)
		random_reads(step, argv[2], count(argv[3]));
	else if (!strcmp(step, "cached") && argc == 2)
		cached();
	else if (!strcmp(step, "time") && argc >= 3)
		return timed(argv + 2);
	else {
		fputs("usage: vufs-metabench create|stat|unlink DIR N | write FILE MIB | read FILE | drop | time CMD... |\n"
		      "       randread|mmapread FILE SECONDS | cached\n",
		      stderr);
		return 2;
	}
	return 0;
}

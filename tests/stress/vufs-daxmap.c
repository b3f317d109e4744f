/*
 * vufs-daxmap: is a MAP_SHARED mapping of a file in the share coherent with the host without any invalidation?
 * Run inside a guest (static, no libc there) while the host side of the test watches the same file:
 *
 *   vufs-daxmap FILE FLAGDIR [TIMEOUT_S]
 *
 * 1. maps the first 8 KiB of FILE read-write, shared, and keeps that one mapping to the end;
 * 2. stores "GUEST-STORE" at offset 100 (no msync, no close) and creates FLAGDIR/guest-stored;
 * 3. waits for FLAGDIR/host-wrote (the host has checked offset 100 and written "HOST-WRITE" at offset 200);
 * 4. polls its mapping, never remapping, until offset 200 shows "HOST-WRITE" or TIMEOUT_S (default 20) passes.
 * Prints "DAXMAP OK" or "DAXMAP FAIL: why"; exits 0 or 1. With DAX both directions are immediate (one copy of the
 * page); through a guest page cache neither is (the host sees the store at writeback, the mapping never sees the
 * host's write). With a fourth argument "stat", step 4 also fstat()s the file between polls: vufsd's guarded
 * coherence shows a host writer's bytes at the guest's next revalidation, not at once.
 *
 *   vufs-daxmap --read-loop FILE FLAGDIR SECONDS
 *
 * maps all of FILE read-only, creates FLAGDIR/mapped, and reads every page of the mapping over and over for
 * SECONDS while the host truncates the file under it; a SIGBUS in this process is counted, not fatal. Prints
 * "DAXREAD passes N sigbus K"; the test's question is whether the VM is still alive afterwards.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdbool.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static int fail(const char *why)
{
	printf("DAXMAP FAIL: %s (%s)\n", why, errno ? strerror(errno) : "-");
	return 1;
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void nap(void)
{
	nanosleep(&(struct timespec){ 0, 50 * 1000 * 1000 }, NULL);
}

static int wait_for(const char *path, double deadline)
{
	struct stat st;
	while (stat(path, &st) < 0) {
		if (now() > deadline)
			return -1;
		nap();
	}
	return 0;
}

static sigjmp_buf bus_jmp;

static void on_bus(int sig)
{
	(void)sig;
	siglongjmp(bus_jmp, 1);
}

static int read_loop(const char *file, const char *flagdir, double seconds)
{
	char flag[4096];
	struct stat st;
	int fd = open(file, O_RDONLY);
	if (fd < 0 || fstat(fd, &st) < 0 || st.st_size == 0)
		return fail("open the file to read");
	size_t size = (size_t)st.st_size;
	volatile const unsigned char *p = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		return fail("mmap");
	struct sigaction sa = { .sa_handler = on_bus };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGBUS, &sa, NULL);
	snprintf(flag, sizeof(flag), "%s/mapped", flagdir);
	int ffd = open(flag, O_CREAT | O_WRONLY, 0644);
	if (ffd < 0)
		return fail("create mapped");
	close(ffd);
	volatile unsigned long passes = 0, sigbus = 0, sum = 0;
	double end = now() + seconds;
	while (now() < end) {
		if (sigsetjmp(bus_jmp, 1) != 0) {
			sigbus++; /* a page past the new end: this process's fault, as on a local file system */
			nap();
			continue;
		}
		for (size_t off = 0; off < size; off += 4096)
			sum += p[off];
		passes++;
	}
	printf("DAXREAD passes %lu sigbus %lu\n", passes, sigbus);
	return 0;
}

int main(int argc, char **argv)
{
	char flag[4096];
	double timeout = argc > 3 ? atof(argv[3]) : 20.0, deadline;

	if (argc == 5 && !strcmp(argv[1], "--read-loop"))
		return read_loop(argv[2], argv[3], atof(argv[4]));
	bool revalidate = argc > 4 && !strcmp(argv[4], "stat");

	if (argc < 3) {
		fprintf(stderr, "usage: vufs-daxmap FILE FLAGDIR [TIMEOUT_S]\n");
		return 2;
	}
	int fd = open(argv[1], O_RDWR);
	if (fd < 0)
		return fail("open");
	volatile char *p = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		return fail("mmap");
	memcpy((char *)p + 100, "GUEST-STORE", 11);
	snprintf(flag, sizeof(flag), "%s/guest-stored", argv[2]);
	int ffd = open(flag, O_CREAT | O_WRONLY, 0644);
	if (ffd < 0)
		return fail("create guest-stored");
	close(ffd);
	deadline = now() + timeout;
	snprintf(flag, sizeof(flag), "%s/host-wrote", argv[2]);
	if (wait_for(flag, deadline) < 0)
		return fail("the host never answered");
	double seen_at = now();
	while (memcmp((const char *)p + 200, "HOST-WRITE", 10) != 0) {
		if (revalidate) {
			struct stat st;
			fstat(fd, &st);
		}
		if (now() > seen_at + 5.0) {
			errno = 0;
			printf("DAXMAP FAIL: the mapping does not show the host's write: '%.10s'\n", (const char *)p + 200);
			return 1;
		}
		nap();
	}
	printf("DAXMAP OK (host write seen in the mapping %.3f s after the flag%s)\n", now() - seen_at,
	       revalidate ? ", revalidating" : "");
	return 0;
}

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
 * host's write).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

int main(int argc, char **argv)
{
	char flag[4096];
	double timeout = argc > 3 ? atof(argv[3]) : 20.0, deadline;

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
		if (now() > seen_at + 5.0) {
			errno = 0;
			printf("DAXMAP FAIL: the mapping does not show the host's write: '%.10s'\n", (const char *)p + 200);
			return 1;
		}
		nap();
	}
	printf("DAXMAP OK (host write seen in the mapping %.3f s after the flag)\n", now() - seen_at);
	return 0;
}

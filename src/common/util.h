/* Small helpers shared by every room: checked arithmetic, array sizes, fd hygiene. */
#ifndef VUFS_UTIL_H
#define VUFS_UTIL_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))

/* true when a + b overflows; *sum is set either way. */
static inline bool add_overflows_u64(uint64_t a, uint64_t b, uint64_t *sum)
{
	return __builtin_add_overflow(a, b, sum);
}

/* [off, off + len) lies inside [0, size). */
static inline bool range_within(uint64_t off, uint64_t len, uint64_t size)
{
	return off <= size && len <= size - off;
}

static inline void close_if_open(int *fd)
{
	if (*fd >= 0) {
		close(*fd);
		*fd = -1;
	}
}

/* -errno of the last failed call, never 0 (so a caller cannot mistake it for success). */
static inline int neg_errno(void)
{
	return errno ? -errno : -EIO;
}

/* A decimal number in [0, max]; -1 for anything else (signs, trailing junk, overflow). */
static inline int parse_u64(const char *s, uint64_t max, uint64_t *out)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s || *end || v > max || s[0] == '-' || s[0] == '+')
		return -1;
	*out = v;
	return 0;
}

#endif

#include "daemon/userns_map.h"

#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* The last id a range may reach: 4294967295 is (uid_t)-1, which means "no id" to every system call. */
#define ID_END 0xffffffffull

/* One decimal field of [s, end): digits only (no sign, no space), at most 4294967295. */
static int parse_field(const char *s, const char *end, uint32_t *out)
{
	uint64_t v = 0;
	if (s == end)
		return -1;
	for (; s < end; s++) {
		if (!isdigit((unsigned char)*s))
			return -1;
		v = v * 10 + (uint64_t)(*s - '0');
		if (v > UINT32_MAX)
			return -1;
	}
	*out = (uint32_t)v;
	return 0;
}

/* Splits ":A:B:C:" on its own separator into three numbers. */
static int parse_fields(const char *arg, uint32_t f[3], char *err, size_t errlen)
{
	size_t len = strlen(arg);
	char sep = len ? arg[len - 1] : '\0';

	if (len < 2 || isalnum((unsigned char)sep) || arg[0] != sep) {
		snprintf(err, errlen, "expected :NS_ID:HOST_ID:COUNT: (the same separator first and last, not a letter "
		         "or digit)");
		return -EINVAL;
	}
	/* The third field ends at the closing separator; one more separator inside it makes it no number. */
	const char *p = arg + 1, *end = arg + len - 1;
	for (int i = 0; i < 3; i++) {
		const char *next = i < 2 ? memchr(p, sep, (size_t)(end - p)) : end;
		if (!next || parse_field(p, next, &f[i]) < 0) {
			snprintf(err, errlen, "expected three numbers from 0 to 4294967295 between the separators");
			return -EINVAL;
		}
		p = next + 1;
	}
	return 0;
}

static bool overlap(uint32_t a, uint32_t b, uint32_t count_a, uint32_t count_b)
{
	return (uint64_t)a < (uint64_t)b + count_b && (uint64_t)b < (uint64_t)a + count_a;
}

static int check_extent(const struct userns_map *m, const struct userns_extent *e, char *err, size_t errlen)
{
	if (e->count == 0) {
		snprintf(err, errlen, "COUNT must be at least 1");
		return -EINVAL;
	}
	if ((uint64_t)e->inside + e->count > ID_END || (uint64_t)e->outside + e->count > ID_END) {
		snprintf(err, errlen, "the range runs past id 4294967294");
		return -EINVAL;
	}
	for (unsigned i = 0; i < m->n; i++) {
		const struct userns_extent *o = &m->ext[i];
		if (overlap(e->inside, o->inside, e->count, o->count) || overlap(e->outside, o->outside, e->count, o->count)) {
			snprintf(err, errlen, "overlaps the earlier range :%u:%u:%u: (inside or outside the namespace)",
			         o->inside, o->outside, o->count);
			return -EEXIST;
		}
	}
	if (m->n == USERNS_MAP_MAX) {
		snprintf(err, errlen, "more than %d ranges (the kernel's limit)", USERNS_MAP_MAX);
		return -E2BIG;
	}
	return 0;
}

int userns_map_add(struct userns_map *m, const char *arg, char *err, size_t errlen)
{
	uint32_t f[3];
	int ret = parse_fields(arg, f, err, errlen);
	if (ret < 0)
		return ret;
	struct userns_extent e = { .inside = f[0], .outside = f[1], .count = f[2] };
	ret = check_extent(m, &e, err, errlen);
	if (ret < 0)
		return ret;
	m->ext[m->n++] = e;
	return 0;
}

bool userns_map_only_own(const struct userns_map *m, uint32_t own)
{
	return m->n == 0 || (m->n == 1 && m->ext[0].outside == own && m->ext[0].count == 1);
}

bool userns_map_has_inside(const struct userns_map *m, uint32_t id)
{
	for (unsigned i = 0; i < m->n; i++)
		if (id >= m->ext[i].inside && (uint64_t)id < (uint64_t)m->ext[i].inside + m->ext[i].count)
			return true;
	return false;
}

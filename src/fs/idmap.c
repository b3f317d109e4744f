/*
 * UID/GID translation between guest and host (virtiofsd's --translate-uid / --translate-gid).
 *
 * Rules (one per option; the numbers are decimal):
 *   map:GUEST:HOST:COUNT           GUEST..GUEST+COUNT-1 <-> HOST..HOST+COUNT-1, both ways
 *   guest:GUEST:HOST:COUNT         the guest's ids become those host ids (guest to host only)
 *   host:HOST:GUEST:COUNT          those host ids are shown to the guest as these (host to guest only)
 *   squash-guest:GUEST:HOST:COUNT  every guest id of the range becomes the one host id HOST
 *   squash-host:HOST:GUEST:COUNT   every host id of the range is shown as the one guest id GUEST
 *   forbid-guest:GUEST:COUNT       a guest id of the range may not create or own anything: EPERM
 * Ids no rule names pass unchanged. In each direction the ranges may not overlap (the rule that would is
 * refused at start). Applied at the boundary of the file system (fs_idmapped_ops): the caller's ids of every
 * request before it runs as them, the owner a guest asks for (chown), and the owners of every attribute the
 * guest is told. The ids inside POSIX ACL values are not translated.
 */
#include "fs/fs_internal.h"

#include "common/util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { TO_HOST, TO_GUEST };

static struct fs_idmap_rule *rules_of(struct fs_idmap *m, int dir)
{
	return dir == TO_HOST ? m->g2h : m->h2g;
}

/* The rule covering id in one direction, or NULL. */
static const struct fs_idmap_rule *find(const struct fs_idmap_rule *r, unsigned n, uint32_t id)
{
	for (unsigned i = 0; i < n; i++)
		if (id >= r[i].from && (uint64_t)id - r[i].from < r[i].count)
			return &r[i];
	return NULL;
}

static int add_rule(struct fs_idmap *m, int dir, enum fs_idmap_kind kind, uint32_t from, uint32_t to,
                    uint64_t count)
{
	unsigned *n = dir == TO_HOST ? &m->n_g2h : &m->n_h2g;
	struct fs_idmap_rule *r = rules_of(m, dir);
	if (*n >= FS_IDMAP_MAX_RULES)
		return -E2BIG;
	for (unsigned i = 0; i < *n; i++)
		if (from < r[i].from + r[i].count && r[i].from < from + count)
			return -EEXIST; /* two rules for one id: which would win is not obvious, so neither does */
	r[(*n)++] = (struct fs_idmap_rule){ .kind = kind, .from = from, .to = to, .count = count };
	return 0;
}

static int parse_u32(const char *s, uint64_t *out)
{
	return parse_u64(s, UINT32_MAX, out);
}

int fs_idmap_add(struct fs_idmap *m, const char *spec)
{
	char buf[128], *f[5];
	unsigned nf = 0;
	if (strlen(spec) >= sizeof(buf))
		return -EINVAL;
	strcpy(buf, spec);
	for (char *p = buf, *save = NULL, *t; nf < 5 && (t = strtok_r(p, ":", &save)); p = NULL)
		f[nf++] = t;
	uint64_t a, b = 0, count;
	bool forbid = nf == 3 && !strcmp(f[0], "forbid-guest");
	if (forbid ? parse_u32(f[1], &a) || parse_u64(f[2], 1ull << 32, &count)
	           : nf != 4 || parse_u32(f[1], &a) || parse_u32(f[2], &b) || parse_u64(f[3], 1ull << 32, &count))
		return -EINVAL;
	if (count == 0 || a + count > (1ull << 32))
		return -EINVAL;
	if (forbid)
		return add_rule(m, TO_HOST, FS_IDMAP_FORBID, (uint32_t)a, 0, count);
	if (!strcmp(f[0], "squash-guest"))
		return add_rule(m, TO_HOST, FS_IDMAP_SQUASH, (uint32_t)a, (uint32_t)b, count);
	if (!strcmp(f[0], "squash-host"))
		return add_rule(m, TO_GUEST, FS_IDMAP_SQUASH, (uint32_t)a, (uint32_t)b, count);
	if (b + count > (1ull << 32))
		return -EINVAL;
	if (!strcmp(f[0], "guest"))
		return add_rule(m, TO_HOST, FS_IDMAP_RANGE, (uint32_t)a, (uint32_t)b, count);
	if (!strcmp(f[0], "host"))
		return add_rule(m, TO_GUEST, FS_IDMAP_RANGE, (uint32_t)a, (uint32_t)b, count);
	if (strcmp(f[0], "map"))
		return -EINVAL;
	int rc = add_rule(m, TO_HOST, FS_IDMAP_RANGE, (uint32_t)a, (uint32_t)b, count);
	if (rc == 0 && (rc = add_rule(m, TO_GUEST, FS_IDMAP_RANGE, (uint32_t)b, (uint32_t)a, count)) < 0)
		m->n_g2h--; /* all or nothing */
	return rc;
}

static int translate(const struct fs_idmap_rule *r, unsigned n, uint32_t id, uint32_t *out)
{
	const struct fs_idmap_rule *e = find(r, n, id);
	if (!e)
		*out = id;
	else if (e->kind == FS_IDMAP_FORBID)
		return -EPERM;
	else if (e->kind == FS_IDMAP_SQUASH)
		*out = e->to;
	else
		*out = e->to + (id - e->from);
	return 0;
}

int fs_idmap_to_host(const struct fs_idmap *m, uint32_t guest_id, uint32_t *host_id)
{
	return translate(m->g2h, m->n_g2h, guest_id, host_id);
}

uint32_t fs_idmap_to_guest(const struct fs_idmap *m, uint32_t host_id)
{
	uint32_t out;
	translate(m->h2g, m->n_h2g, host_id, &out); /* no forbid rule host to guest */
	return out;
}

bool fs_idmap_empty(const struct fs_idmap *m)
{
	return !m || (m->n_g2h == 0 && m->n_h2g == 0);
}

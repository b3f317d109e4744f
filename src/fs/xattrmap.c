/*
 * The --xattrmap rule language. Each rule is "<d>type<d>scope<d>key<d>prepend<d>", <d> being its first character
 * (any but white space), or "<d>map<d>key<d>prepend<d>", which must come last and stands for the three rules the
 * document gives. White space may surround rules. The first rule whose scope and prefix match decides: a guest's
 * name is matched against key, a host's name (in a listing) against prepend.
 * Where the document is silent, QEMU's C virtiofsd decided and we follow it: a name no rule matches is refused
 * to the guest (EPERM) and hidden in listings, as if a final "bad" rule were there (Rust virtiofsd panics).
 */
#include "fs/xattrmap.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum xtype { XR_PREFIX, XR_OK, XR_BAD, XR_UNSUPPORTED, XR_MAP };
enum { SCOPE_CLIENT = 1, SCOPE_SERVER = 2, SCOPE_ALL = 3 };

struct xfield {
	char s[XATTR_NAME_MAX + 1];
	size_t len;
};

struct xrule {
	enum xtype type;
	unsigned scope;
	struct xfield key;        /* matched against guest names */
	struct xfield prepend;    /* matched against host names; what prefix rules add */
};

struct xattrmap {
	unsigned n;
	struct xrule rule[XATTRMAP_MAX_RULES];
};

struct cursor {
	const char *p, *end;
	unsigned rule;            /* 1-based, for messages */
	char *err;
	size_t errlen;
};

static int fail(struct cursor *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(struct cursor *c, const char *fmt, ...)
{
	va_list ap;
	int n = snprintf(c->err, c->errlen, "rule %u: ", c->rule);
	if (n >= 0 && (size_t)n < c->errlen) {
		va_start(ap, fmt);
		vsnprintf(c->err + n, c->errlen - (size_t)n, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

/* virtiofsd trims ASCII white space (not \v) around and between rules. */
static bool is_space(char ch)
{
	return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\f';
}

/* The bytes up to the next delimiter, which is consumed. */
static int take_field(struct cursor *c, char delim, struct xfield *f)
{
	const char *stop = memchr(c->p, delim, (size_t)(c->end - c->p));
	if (!stop)
		return fail(c, "incomplete (a field does not end with '%c')", delim);
	size_t n = (size_t)(stop - c->p);
	if (n > XATTR_NAME_MAX)
		return fail(c, "a field is longer than %d bytes", XATTR_NAME_MAX);
	memcpy(f->s, c->p, n);
	f->s[n] = '\0';
	f->len = n;
	c->p = stop + 1;
	return 0;
}

static int parse_type(struct cursor *c, const struct xfield *f, enum xtype *out)
{
	static const char *const names[] = { "prefix", "ok", "bad", "unsupported", "map" };
	for (unsigned i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (!strcmp(f->s, names[i])) {
			*out = (enum xtype)i;
			return 0;
		}
	}
	return fail(c, "unknown type '%s' (prefix, ok, bad, unsupported, map)", f->s);
}

static int parse_scope(struct cursor *c, const struct xfield *f, unsigned *out)
{
	if (!strcmp(f->s, "client"))
		*out = SCOPE_CLIENT;
	else if (!strcmp(f->s, "server"))
		*out = SCOPE_SERVER;
	else if (!strcmp(f->s, "all"))
		*out = SCOPE_ALL;
	else
		return fail(c, "unknown scope '%s' (client, server, all)", f->s);
	return 0;
}

static int add_rule(struct cursor *c, struct xattrmap *m, enum xtype type, unsigned scope, const struct xfield *key,
                    const struct xfield *prepend)
{
	if (m->n == XATTRMAP_MAX_RULES)
		return fail(c, "more than %d rules", XATTRMAP_MAX_RULES);
	m->rule[m->n++] = (struct xrule){ .type = type, .scope = scope, .key = *key, .prepend = *prepend };
	return 0;
}

/* ":map:key:prepend:" is: prefix all key prepend; then, with a key, bad all prepend key (the guest may not name
 * the host's prefix, the host's unprefixed key names are hidden) and ok all for the rest; without one, bad all. */
static int add_map(struct cursor *c, struct xattrmap *m, const struct xfield *key, const struct xfield *prepend)
{
	static const struct xfield empty;
	int ret = add_rule(c, m, XR_PREFIX, SCOPE_ALL, key, prepend);
	if (ret == 0 && key->len)
		ret = add_rule(c, m, XR_BAD, SCOPE_ALL, prepend, key);
	if (ret == 0)
		ret = add_rule(c, m, key->len ? XR_OK : XR_BAD, SCOPE_ALL, &empty, &empty);
	return ret;
}

static int parse_rule(struct cursor *c, struct xattrmap *m)
{
	char delim = *c->p++;
	struct xfield f, key, prepend;
	enum xtype type = XR_BAD;
	unsigned scope = SCOPE_ALL;
	int ret = take_field(c, delim, &f);

	if (ret == 0)
		ret = parse_type(c, &f, &type);
	if (ret == 0 && type != XR_MAP) {
		ret = take_field(c, delim, &f);
		if (ret == 0)
			ret = parse_scope(c, &f, &scope);
	}
	if (ret == 0)
		ret = take_field(c, delim, &key);
	if (ret == 0)
		ret = take_field(c, delim, &prepend);
	if (ret < 0)
		return ret;
	if (type != XR_MAP)
		return add_rule(c, m, type, scope, &key, &prepend);
	if (c->p != c->end)
		return fail(c, "a map rule must be the last one");
	return add_map(c, m, &key, &prepend);
}

int xattrmap_parse(const char *rules, struct xattrmap **out, char *err, size_t errlen)
{
	struct cursor c = { .p = rules, .end = rules + strlen(rules), .rule = 1, .err = err, .errlen = errlen };
	struct xattrmap *m = calloc(1, sizeof(*m));
	int ret = 0;

	if (!m)
		return -ENOMEM;
	while (c.end > c.p && is_space(c.end[-1]))
		c.end--;
	for (; ret == 0 && c.p < c.end; c.rule++) {
		while (c.p < c.end && is_space(*c.p))
			c.p++;
		if (c.p < c.end)
			ret = parse_rule(&c, m);
	}
	if (ret == 0 && m->n == 0) {
		snprintf(err, errlen, "no rules");
		ret = -EINVAL;
	}
	if (ret < 0) {
		free(m);
		return ret;
	}
	*out = m;
	return 0;
}

void xattrmap_free(struct xattrmap *m)
{
	free(m);
}

static bool has_prefix(const char *name, const struct xfield *f)
{
	return !strncmp(name, f->s, f->len);
}

static const struct xrule *find(const struct xattrmap *m, unsigned scope, const char *name)
{
	for (unsigned i = 0; i < m->n; i++) {
		const struct xrule *r = &m->rule[i];
		if ((r->scope & scope) && has_prefix(name, scope == SCOPE_CLIENT ? &r->key : &r->prepend))
			return r;
	}
	return NULL;
}

int xattrmap_to_host(const struct xattrmap *m, const char *name, char out[XATTR_NAME_MAX + 1])
{
	const struct xrule *r = find(m, SCOPE_CLIENT, name);
	size_t len = strnlen(name, XATTR_NAME_MAX + 1), pre = 0;

	if (!r || r->type == XR_BAD)
		return -EPERM;
	if (r->type == XR_UNSUPPORTED)
		return -EOPNOTSUPP;
	if (r->type == XR_PREFIX)
		pre = r->prepend.len;
	if (len > XATTR_NAME_MAX - pre)
		return -ERANGE;
	memcpy(out, r->prepend.s, pre);
	memcpy(out + pre, name, len);
	out[pre + len] = '\0';
	return 0;
}

const char *xattrmap_to_guest(const struct xattrmap *m, const char *name)
{
	const struct xrule *r = find(m, SCOPE_SERVER, name);

	if (!r || (r->type != XR_OK && r->type != XR_PREFIX))
		return NULL;
	if (r->type == XR_OK)
		return name;
	return name[r->prepend.len] ? name + r->prepend.len : NULL;
}

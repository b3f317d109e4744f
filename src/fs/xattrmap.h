/*
 * virtiofsd's --xattrmap (its doc/xattr-mapping.md): rules that rename, pass, deny or hide extended attribute
 * names between the guest ("client") and the host ("server"). Parsed once at start-up; read-only afterwards, so
 * any thread may map names at once. Names from the guest are untrusted: they are only compared and copied
 * within XATTR_NAME_MAX.
 */
#ifndef VUFS_FS_XATTRMAP_H
#define VUFS_FS_XATTRMAP_H

#include <linux/limits.h>
#include <stddef.h>

struct xattrmap;

#define XATTRMAP_MAX_RULES 256

/* Parses rules. Returns 0, or -EINVAL with a message naming the rule (1-based) in err (errlen bytes),
 * or -ENOMEM. The caller frees *out with xattrmap_free. */
int xattrmap_parse(const char *rules, struct xattrmap **out, char *err, size_t errlen);
void xattrmap_free(struct xattrmap *m);

/* A guest's name as the host stores it, into out: 0; -EPERM (a bad rule, or no rule matches: the implicit last
 * rule is bad); -EOPNOTSUPP (an unsupported rule); -ERANGE (the host name would exceed XATTR_NAME_MAX). */
int xattrmap_to_host(const struct xattrmap *m, const char *name, char out[XATTR_NAME_MAX + 1]);
/* A host's name as the guest sees it: a pointer into name (its prefix stripped), or NULL when it is hidden
 * (a bad or unsupported rule, no rule, or nothing left after the prefix). */
const char *xattrmap_to_guest(const struct xattrmap *m, const char *name);

#endif

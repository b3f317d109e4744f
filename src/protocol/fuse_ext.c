/*
 * Request extensions (FUSE 7.38): records after a request's arguments, total_extlen 8-byte units in all (framed,
 * within the request, by fuse_server.c). This is the one place that walks them. Each record starts with a
 * fuse_ext_header whose size counts itself, a multiple of 8 (the kernel pads each), within what is left; its type
 * says what follows:
 *   - 0..FUSE_MAX_NR_SECCTX: a fuse_secctx_header, the security context of the node being created (Linux sends
 *     one, with nr_secctx 0 when no LSM labels it), taken when FUSE_SECURITY_CTX was agreed;
 *   - FUSE_EXT_GROUPS: the caller's supplementary group (FUSE_CREATE_SUPP_GROUP), taken when that was agreed.
 * Records of a kind this session did not agree to, and types we do not know, are skipped by their (checked) size:
 * ignoring a context or a group can only leave a node unlabelled or deny. Every size inside a record is checked
 * against the record's bytes. Only creating requests are looked at: Linux extends no others, and elsewhere the bytes
 * are left unread (a FORGET must stay without a reply whatever follows its arguments).
 */
#include <errno.h>
#include <linux/limits.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "protocol/fuse_internal.h"

/* The opcodes Linux extends (fs/fuse/dir.c get_create_ext): those that create a node. */
static bool creates(uint32_t opcode)
{
	return opcode == FUSE_CREATE || opcode == FUSE_MKNOD || opcode == FUSE_MKDIR || opcode == FUSE_SYMLINK ||
	       opcode == FUSE_TMPFILE;
}

/*
 * A FUSE_EXT_GROUPS body of len bytes: nr_groups, then that many gids, all within len. Linux sends one, the
 * parent directory's group, when the caller has it only as a supplementary group. Further ones are ignored:
 * fewer groups can only deny. Taken only where INIT agreed to it.
 */
static int take_supp_group(struct fuse_req *r, const uint8_t *p, size_t len)
{
	uint32_t nr, gid;
	if (len < sizeof(nr))
		return -EINVAL;
	memcpy(&nr, p, sizeof(nr));
	if (nr > (len - sizeof(nr)) / sizeof(gid))
		return -EINVAL;
	if (nr == 0 || !(r->srv->flags & FUSE_CREATE_SUPP_GROUP))
		return 0;
	memcpy(&gid, p + sizeof(nr), sizeof(gid));
	if (gid == FUSE_INVALID_UIDGID)
		return 0;
	r->ctx.supp_gid = gid;
	r->ctx.has_supp_gid = true;
	return 0;
}

/*
 * One fuse_secctx_header record of len bytes (header included) holding nr contexts: 0 or 1 (what Linux sends), a
 * security.* name and a value within the record, one context per request. Taken only where INIT agreed to it.
 */
static int take_secctx(struct fuse_req *r, const uint8_t *p, size_t len, uint32_t nr)
{
	struct fuse_secctx sc;
	size_t room = len - sizeof(struct fuse_secctx_header);

	if (!(r->srv->flags & FUSE_SECURITY_CTX))
		return 0;
	p += sizeof(struct fuse_secctx_header);
	if (nr == 0)
		return 0;
	if (nr > 1 || r->ctx.secctx_name || room < sizeof(sc))
		return -EINVAL;
	memcpy(&sc, p, sizeof(sc));
	p += sizeof(sc);
	room -= sizeof(sc);
	const char *name = (const char *)p;
	const char *nul = memchr(name, '\0', MIN(room, (size_t)XATTR_NAME_MAX + 1));
	if (!nul || strncmp(name, "security.", 9) || nul == name + 9)
		return -EINVAL; /* a security context is a security.* attribute, nothing else */
	room -= (size_t)(nul - name) + 1;
	if (sc.size > room || sc.size > XATTR_SIZE_MAX)
		return -EINVAL;
	r->ctx.secctx_name = name;
	r->ctx.secctx = nul + 1;
	r->ctx.secctx_len = sc.size;
	return 0;
}

int req_parse_extensions(struct fuse_req *r)
{
	size_t pos = 0;
	if (!creates(r->in.opcode))
		return 0;
	while (pos < r->ext_len) {
		struct fuse_ext_header xh;
		size_t left = r->ext_len - pos;
		if (left < sizeof(xh))
			return -EINVAL;
		memcpy(&xh, r->ext + pos, sizeof(xh));
		if (xh.size < sizeof(xh) || xh.size > left || xh.size % 8)
			return -EINVAL;
		int ret = 0;
		if (xh.type == FUSE_EXT_GROUPS)
			ret = take_supp_group(r, r->ext + pos + sizeof(xh), xh.size - sizeof(xh));
		else if (xh.type <= FUSE_MAX_NR_SECCTX)
			ret = take_secctx(r, r->ext + pos, xh.size, xh.type);
		if (ret < 0)
			return ret;
		pos += xh.size;
	}
	if (r->ext_len)
		log_debug("FUSE: opcode %u: %zu bytes of extensions, security context %s, supplementary group %s",
		          r->in.opcode, r->ext_len, r->ctx.secctx_name ? r->ctx.secctx_name : "none",
		          r->ctx.has_supp_gid ? "taken" : "none");
	return 0;
}

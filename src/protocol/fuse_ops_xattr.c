/* Extended attribute opcodes. Names are at most XATTR_NAME_MAX, values at most XATTR_SIZE_MAX. */
#include <errno.h>
#include <linux/limits.h>
#include <string.h>

#include "common/util.h"
#include "protocol/fuse_internal.h"

#define TAKE(r, type) ((const type *)req_take((r), sizeof(type)))

static const char *take_xattr_name(struct fuse_req *r)
{
	const char *name = req_take_string(r, XATTR_NAME_MAX);
	return name && *name ? name : NULL;
}

void op_setxattr(struct fuse_req *r)
{
	/* Without FUSE_SETXATTR_EXT the kernel sends the old 8-byte header. */
	size_t hdr = (r->srv->flags & FUSE_SETXATTR_EXT) ? sizeof(struct fuse_setxattr_in) : FUSE_COMPAT_SETXATTR_IN_SIZE;
	const struct fuse_setxattr_in *in = req_take(r, hdr);
	const char *name = in ? take_xattr_name(r) : NULL;
	if (!name)
		return reply_err(r, r->arg_err);
	if (in->size > XATTR_SIZE_MAX)
		return reply_err(r, -E2BIG);
	const void *value = req_take(r, in->size);
	if (!value)
		return reply_err(r, -EINVAL);
	/* setxattr(2)'s flags go to the host as given (it refuses unknown ones); our own bit is not the guest's. */
	int flags = (int)in->flags;
	if (in->flags & FS_XATTR_KILL_SGID)
		return reply_err(r, -EINVAL);
	if (hdr == sizeof(*in) && (in->setxattr_flags & FUSE_SETXATTR_ACL_KILL_SGID))
		flags |= FS_XATTR_KILL_SGID;
	reply_err(r, FS_CALL(r->srv, setxattr, &r->ctx, r->in.nodeid, name, value, in->size, flags));
}

/* size 0 asks for the length only; otherwise the value itself, or ERANGE. */
static void reply_xattr_value(struct fuse_req *r, uint32_t size, ssize_t n)
{
	if (n < 0)
		return reply_err(r, (int)n);
	if (size == 0) {
		struct fuse_getxattr_out out = { .size = (uint32_t)n };
		return reply_ok(r, &out, sizeof(out));
	}
	reply_ok(r, r->w->out, (size_t)n);
}

static size_t value_room(const struct fuse_req *r, uint32_t size)
{
	return MIN((size_t)size, sizeof(r->w->out));
}

void op_getxattr(struct fuse_req *r)
{
	const struct fuse_getxattr_in *in = TAKE(r, struct fuse_getxattr_in);
	const char *name = in ? take_xattr_name(r) : NULL;
	if (!name)
		return reply_err(r, r->arg_err);
	ssize_t n = FS_CALL(r->srv, getxattr, &r->ctx, r->in.nodeid, name, in->size ? r->w->out : NULL,
	                        value_room(r, in->size));
	reply_xattr_value(r, in->size, n);
}

void op_listxattr(struct fuse_req *r)
{
	const struct fuse_getxattr_in *in = TAKE(r, struct fuse_getxattr_in);
	if (!in)
		return reply_err(r, -EINVAL);
	ssize_t n = FS_CALL(r->srv, listxattr, &r->ctx, r->in.nodeid, in->size ? (char *)r->w->out : NULL,
	                         value_room(r, in->size));
	reply_xattr_value(r, in->size, n);
}

void op_removexattr(struct fuse_req *r)
{
	const char *name = take_xattr_name(r);
	if (!name)
		return reply_err(r, r->arg_err);
	reply_err(r, FS_CALL(r->srv, removexattr, &r->ctx, r->in.nodeid, name));
}

/* The DAX window's two requests: decoded and checked here, served by the file system (src/fs/dax.c). */
#include <errno.h>
#include <string.h>

#include "protocol/fuse_internal.h"

/* FUSE_REMOVEMAPPING_MAX_ENTRY: a 4 KiB page of 16-byte entries (the header's macro needs the kernel's PAGE_SIZE). */
#define REMOVEMAPPING_MAX (4096u / sizeof(struct fuse_removemapping_one))

void op_setupmapping(struct fuse_req *r)
{
	const struct fuse_setupmapping_in *in = req_take(r, sizeof(*in));

	if (!FS_CALL(r->srv, dax_window)) {
		reply_err(r, -ENOSYS); /* no window: as a server without DAX */
		return;
	}
	if (!in || req_remaining(r) || (in->flags & ~(uint64_t)(FUSE_SETUPMAPPING_FLAG_READ |
	                                                       FUSE_SETUPMAPPING_FLAG_WRITE))) {
		reply_err(r, -EINVAL);
		return;
	}
	/* in->fh is not used: Linux sends -1 and maps by inode; the range stays valid after the file is closed. */
	int ret = FS_CALL(r->srv, setupmapping, r->in.nodeid, in->foffset, in->len, in->moffset,
	                          in->flags & FUSE_SETUPMAPPING_FLAG_WRITE);
	reply_err(r, ret);
}

void op_removemapping(struct fuse_req *r)
{
	const struct fuse_removemapping_in *in = req_take(r, sizeof(*in));
	int first = 0;

	if (!FS_CALL(r->srv, dax_window)) {
		reply_err(r, -ENOSYS);
		return;
	}
	/* Linux sends at most a page of entries; the count must say exactly what follows. */
	if (!in || in->count == 0 || in->count > REMOVEMAPPING_MAX ||
	    req_remaining(r) != (size_t)in->count * sizeof(struct fuse_removemapping_one)) {
		reply_err(r, -EINVAL);
		return;
	}
	uint32_t count = in->count;
	for (uint32_t i = 0; i < count; i++) {
		struct fuse_removemapping_one one;
		/* The entries follow a 4-byte count: copied out, not read in place (unaligned). */
		memcpy(&one, req_take(r, sizeof(one)), sizeof(one));
		int ret = FS_CALL(r->srv, removemapping, r->in.nodeid, one.moffset, one.len);
		if (ret < 0 && first == 0)
			first = ret; /* every entry is tried: the guest frees its ranges whatever we answer */
	}
	reply_err(r, first);
}

/* vufs-mount's DAX, on the bridge's side: the driver's own requests in each slot's ctl buffer, READ and WRITE
 * served through the window, ranges removed before a FORGET, and the INIT negotiation (mount/dax.h). */
#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "mount/bridge_internal.h"

/* INIT's answer: the backend maps 2 MiB ranges (map_alignment <= 21, as Linux checks), or there is no DAX. */
void bridge_dax_init_reply(struct bridge *b, const struct fuse_init_out *o, size_t have)
{
	bool ext = have >= offsetof(struct fuse_init_out, flags2) + sizeof(o->flags2) && (o->flags & FUSE_INIT_EXT);
	uint64_t flags = o->flags | (ext ? (uint64_t)o->flags2 << 32 : 0);

	if (have < offsetof(struct fuse_init_out, map_alignment) + sizeof(o->map_alignment) ||
	    !(flags & FUSE_MAP_ALIGNMENT))
		mdax_disable(b->dax, "the backend's INIT has no map_alignment");
	else if (o->map_alignment > MDAX_ALIGN_SHIFT)
		mdax_disable(b->dax, "the backend's map_alignment is above 21");
	else if (b->cfg.dax_inode && !(flags & FUSE_HAS_INODE_DAX))
		mdax_disable(b->dax, "dax=inode, and the backend does not choose files (no FUSE_HAS_INODE_DAX)");
}

/* The DAX driver's own requests (mdax_io), in the slot's ctl buffer: the kernel's request stays in req. */
static int ctl_call(void *ctx, uint32_t opcode, uint64_t nodeid, const void *arg, uint32_t len)
{
	struct slot *s = ctx;
	struct fuse_in_header h = { .len = (uint32_t)sizeof(h) + len, .opcode = opcode, .nodeid = nodeid,
	                            .unique = __atomic_add_fetch(&s->b->ctl_unique, 2, __ATOMIC_RELAXED) };
	struct fuse_out_header o;
	uint8_t *rep = s->ctl + CTL_REQ_BYTES;

	if (len > CTL_REQ_BYTES - sizeof(h))
		return -EINVAL;
	memcpy(s->ctl, &h, sizeof(h));
	memcpy(s->ctl + sizeof(h), arg, len);
	struct vq_seg segs[2] = { { s->ctl_gpa, h.len }, { s->ctl_gpa + CTL_REQ_BYTES, sizeof(o) } };
	int rc = bridge_roundtrip(s->b, s, segs, 1, 1);
	if (rc == 0)
		rc = bridge_check_reply(rep, sizeof(o), h.unique, s->used_len);
	if (rc < 0)
		return rc;
	memcpy(&o, rep, sizeof(o)); /* read once more from shared memory: checked again */
	return o.error > 0 || o.error < -4095 ? -EIO : o.error;
}

/* READ served from the DAX window: true if answered. */
static bool dax_read(struct bridge *b, struct slot *s, const struct fuse_in_header *h, size_t len)
{
	struct fuse_read_in in;
	struct mdax_io io = { s, ctl_call };
	struct fuse_out_header o = { .unique = h->unique };

	if (len < sizeof(*h) + sizeof(in))
		return false;
	memcpy(&in, s->req + sizeof(*h), sizeof(in));
	uint32_t room = (uint32_t)(s->rep_size - sizeof(o));
	ssize_t n = mdax_read(b->dax, &io, h->nodeid, in.offset, MIN(in.size, room), s->rep + sizeof(o));
	if (n < 0)
		return false;
	o.len = (uint32_t)(sizeof(o) + (size_t)n);
	memcpy(s->rep, &o, sizeof(o));
	bridge_write_reply(s, s->rep, o.len);
	return true;
}

/* WRITE that does not extend the file, into the DAX window: true if answered. */
static bool dax_write(struct bridge *b, struct slot *s, const struct fuse_in_header *h, size_t len)
{
	struct fuse_write_in in;
	struct mdax_io io = { s, ctl_call };

	if (len < sizeof(*h) + sizeof(in))
		return false;
	memcpy(&in, s->req + sizeof(*h), sizeof(in));
	/* Killing suid/sgid is the backend's business: such a write goes to it. */
	if ((in.write_flags & FUSE_WRITE_KILL_SUIDGID) || len - sizeof(*h) - sizeof(in) != in.size)
		return false;
	ssize_t n = mdax_write(b->dax, &io, h->nodeid, in.offset, in.size, s->req + sizeof(*h) + sizeof(in));
	if (n < 0)
		return false;
	struct {
		struct fuse_out_header o;
		struct fuse_write_out w;
	} r = { { .len = sizeof(r), .unique = h->unique }, { .size = (uint32_t)n } };
	bridge_write_reply(s, &r, sizeof(r));
	return true;
}

struct forget_ctx {
	struct bridge *b;
	struct mdax_io io;
};

static void dax_forget_one(void *ctx, uint64_t nodeid, uint64_t nlookup)
{
	struct forget_ctx *f = ctx;
	mdax_forget(f->b->dax, &f->io, nodeid);
}

/* With DAX: READ and WRITE the window can serve, and ranges to remove before a FORGET. True if answered. */
bool bridge_dax_request(struct bridge *b, struct slot *s, const struct fuse_in_header *h, size_t len)
{
	if (h->opcode == FUSE_READ)
		return dax_read(b, s, h, len);
	if (h->opcode == FUSE_WRITE)
		return dax_write(b, s, h, len);
	if (h->opcode == FUSE_FORGET || h->opcode == FUSE_BATCH_FORGET) {
		struct forget_ctx f = { b, { s, ctl_call } };
		bridge_each_forget(s->req, len, dax_forget_one, &f);
	}
	return false;
}

/* INIT: ask for the window's alignment as the Linux driver does when it has a window, and with dax=inode for the
 * backend's choice of files (FUSE_HAS_INODE_DAX, a flags2 bit: the host kernel's INIT has flags2 since 5.17). */
void bridge_dax_init_request(struct bridge *b, struct slot *s, size_t len)
{
	struct fuse_init_in in;
	size_t ext = offsetof(struct fuse_init_in, flags2) + sizeof(in.flags2);
	if (len < sizeof(struct fuse_in_header) + offsetof(struct fuse_init_in, flags2))
		return;
	size_t have = MIN(len - sizeof(struct fuse_in_header), sizeof(in));
	memcpy(&in, s->req + sizeof(struct fuse_in_header), have);
	in.flags |= FUSE_MAP_ALIGNMENT;
	if (b->cfg.dax_inode && have >= ext && (in.flags & FUSE_INIT_EXT))
		in.flags2 |= (uint32_t)(FUSE_HAS_INODE_DAX >> 32);
	memcpy(s->req + sizeof(struct fuse_in_header), &in, have);
}

/* dax=always: the window the frontend took, if the backend offered one. */
void bridge_dax_new(struct bridge *b)
{
	b->ctl_unique = 1ull << 62; /* far from the kernel's numbers, which count up from 0 */
	if (!vu_frontend_has_window(b->fe)) {
		log_warn("DAX is not available (the backend offers no shared-memory window): reads and writes go to "
		         "the backend");
		return;
	}
	b->dax = mdax_new(b->fe->window.base, b->fe->window.size);
	if (b->dax && b->cfg.dax_inode)
		mdax_per_inode(b->dax);
	if (!b->dax)
		log_warn("DAX is not available (a window of %llu bytes has no 2 MiB range, or no memory)",
		         (unsigned long long)b->fe->window.size);
}

/* What the replies the bridge forwards tell the DAX driver about file sizes (see mdax_attr in dax.h). */
#include <stddef.h>
#include <string.h>

#include "mount/dax.h"

static void entry(struct mdax *d, const uint8_t *p, size_t len, uint64_t seq)
{
	struct fuse_entry_out e;
	if (len < sizeof(e))
		return;
	memcpy(&e, p, sizeof(e));
	mdax_attr(d, e.nodeid, &e.attr, seq);
}

static void direntplus(struct mdax *d, const uint8_t *p, size_t len, uint64_t seq)
{
	while (len >= FUSE_NAME_OFFSET_DIRENTPLUS) {
		struct fuse_direntplus de;
		memcpy(&de, p, FUSE_NAME_OFFSET_DIRENTPLUS);
		size_t rec = FUSE_DIRENTPLUS_SIZE(&de);
		if (rec > len)
			return;
		mdax_attr(d, de.entry_out.nodeid, &de.entry_out.attr, seq);
		p += rec;
		len -= rec;
	}
}

static void wrote(struct mdax *d, const struct fuse_in_header *h, const uint8_t *req, size_t req_len,
                  const uint8_t *rep, size_t rep_len)
{
	struct fuse_write_in in;
	struct fuse_write_out out;
	if (req_len < sizeof(*h) + sizeof(in) || rep_len < sizeof(out))
		return;
	memcpy(&in, req + sizeof(*h), sizeof(in));
	memcpy(&out, rep, sizeof(out));
	if (in.offset <= UINT64_MAX - out.size)
		mdax_grew(d, h->nodeid, in.offset + out.size);
}

static void read_short(struct mdax *d, const struct fuse_in_header *h, const uint8_t *req, size_t req_len,
                       size_t rep_len)
{
	struct fuse_read_in in;
	if (req_len < sizeof(*h) + sizeof(in))
		return;
	memcpy(&in, req + sizeof(*h), sizeof(in));
	if (rep_len < in.size && in.offset <= UINT64_MAX - rep_len)
		mdax_eof(d, h->nodeid, in.offset + rep_len);
}

void mdax_note_reply(struct mdax *d, const uint8_t *req, size_t req_len, const uint8_t *rep, size_t rep_len,
                     uint64_t seq)
{
	struct fuse_in_header h;
	struct fuse_attr_out a;
	struct fuse_copy_file_range_in cfr;

	memcpy(&h, req, sizeof(h));
	switch (h.opcode) {
	case FUSE_LOOKUP: case FUSE_MKNOD: case FUSE_MKDIR: case FUSE_SYMLINK: case FUSE_LINK: case FUSE_CREATE:
		entry(d, rep, rep_len, seq);
		break;
	case FUSE_GETATTR: case FUSE_SETATTR:
		if (rep_len >= sizeof(a)) {
			memcpy(&a, rep, sizeof(a));
			mdax_attr(d, h.nodeid, &a.attr, seq);
		}
		break;
	case FUSE_READDIRPLUS:
		direntplus(d, rep, rep_len, seq);
		break;
	case FUSE_WRITE:
		wrote(d, &h, req, req_len, rep, rep_len);
		break;
	case FUSE_READ:
		read_short(d, &h, req, req_len, rep_len);
		break;
	case FUSE_FALLOCATE:
		mdax_size_unknown(d, h.nodeid);
		break;
	case FUSE_COPY_FILE_RANGE:
		if (req_len >= sizeof(h) + sizeof(cfr)) {
			memcpy(&cfr, req + sizeof(h), sizeof(cfr));
			mdax_size_unknown(d, cfr.nodeid_out);
		}
		break;
	default:
		break;
	}
}

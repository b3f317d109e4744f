/*
 * vufs-mount's DAX, the guest driver's side (as Linux fs/fuse/dax.c, for dax=always): the window is cut into 2 MiB
 * ranges; a range maps 2 MiB of one file (node id) through FUSE_SETUPMAPPING; READ of a regular file is served by
 * one copy out of the window, WRITE that does not extend the file by one copy into it. Ranges come from a free
 * list, else the least recently used idle range is reclaimed with FUSE_REMOVEMAPPING; a node's ranges are removed
 * before its FORGET goes to the backend. Anything the window cannot serve (no range free, a mapping refused, a
 * fault because the host shrank the file, a size not known) is left to the caller to forward as before.
 *
 * File sizes: a read is clipped to the size the bridge last forwarded to the kernel in attributes (or that a
 * forwarded WRITE extended the file to), never read past it, and a WRITE goes through the window only below the
 * page that holds the end of the file (the backend keeps that page as a copy it writes back at its own sync points).
 */
#ifndef VUFS_MOUNT_DAX_H
#define VUFS_MOUNT_DAX_H

#include <linux/fuse.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define MDAX_RANGE (2u << 20)
#define MDAX_ALIGN_SHIFT 21
/* FUSE_REMOVEMAPPING_MAX_ENTRY: a page of entries. */
#define MDAX_REMOVE_MAX (4096u / sizeof(struct fuse_removemapping_one))

/* How the driver sends its own requests: the bridge's. */
struct mdax_io {
	void *ctx;
	/* Sends opcode with arg (len bytes) on nodeid and waits: 0 or a negative errno (the backend's or the
	 * transport's). */
	int (*call)(void *ctx, uint32_t opcode, uint64_t nodeid, const void *arg, uint32_t len);
};

struct mdax;

/* NULL when the window has no whole range. */
struct mdax *mdax_new(uint8_t *base, uint64_t size);
/* Logs what the window served. */
void mdax_free(struct mdax *d);
/* dax=inode: only files whose last attributes carried FUSE_ATTR_DAX are served from the window (the backend
 * chooses, as for a Linux guest mounted dax=inode). */
void mdax_per_inode(struct mdax *d);
/* The backend has no DAX after all: logged once, nothing is served from the window any more. */
void mdax_disable(struct mdax *d, const char *why);
bool mdax_enabled(struct mdax *d);

/* A stamp to take before forwarding a request whose reply may carry attributes (see mdax_attr). */
uint64_t mdax_seq(struct mdax *d);
/* attr came in a reply to a request forwarded at seq: its size is the file's, unless a WRITE that completed
 * since raised it. */
void mdax_attr(struct mdax *d, uint64_t nodeid, const struct fuse_attr *attr, uint64_t seq);
/* A forwarded WRITE (or one served from the window) reached end. */
void mdax_grew(struct mdax *d, uint64_t nodeid, uint64_t end);
/* A forwarded READ came back short: the file ends at end (the backend's answer, newer than any attr we saw). */
void mdax_eof(struct mdax *d, uint64_t nodeid, uint64_t end);
/* The size changed in a way the reply does not tell (FALLOCATE, COPY_FILE_RANGE): reads forward until attrs come. */
void mdax_size_unknown(struct mdax *d, uint64_t nodeid);

/* Takes what a successful reply (rep, len bytes after its header) to the request req (len bytes) tells about file
 * sizes: attributes in entries and attr replies, WRITE's reach, size changes no reply tells (dax_replies.c). */
void mdax_note_reply(struct mdax *d, const uint8_t *req, size_t req_len, const uint8_t *rep, size_t rep_len,
                     uint64_t seq);

/* READ of size bytes at off into dst: the bytes served (0 < n <= size), or negative: forward the request. */
ssize_t mdax_read(struct mdax *d, const struct mdax_io *io, uint64_t nodeid, uint64_t off, uint32_t size,
                  void *dst);
/* WRITE of size bytes at off from src: size, or negative: forward the request. */
ssize_t mdax_write(struct mdax *d, const struct mdax_io *io, uint64_t nodeid, uint64_t off, uint32_t size,
                   const void *src);
/* The kernel forgets nodeid: its ranges are removed (REMOVEMAPPING) and its state dropped. */
void mdax_forget(struct mdax *d, const struct mdax_io *io, uint64_t nodeid);

#endif

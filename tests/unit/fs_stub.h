/*
 * A stub file system behind the protocol room's table (struct fs_ops): no host system calls, deterministic
 * answers, failures on demand. Protocol tests use it to check decoding (what reached the fs: fs_stub_last) and
 * encoding (every reply shape, every error), and the FUSE fuzzer (fuzz_fuse_stub) to run the protocol room
 * without host system calls (1.5x the executions of the passthrough harness here).
 *
 * What it answers: node ids 1..nodes exist; node n is a directory when n % 3 == 1 (the root is one), a regular
 * file of FS_STUB_FILE_SIZE bytes when n % 3 == 2, a symlink when n % 3 == 0. LOOKUP of a name gives a node
 * chosen by the name's hash (never the root), "missing" gives -ENOENT. READ fills the bytes of the file (byte at
 * offset o is o & 0xff); WRITE takes every byte offered; a listing holds ".", ".." and dir_entries - 2 names
 * e0, e1, ...; READDIRPLUS takes a reference for each of those names it hands out (undone when the sink does not
 * take the entry). One xattr: user.stub = "stubvalue"; other names -ENODATA. Locks are always granted at once.
 * Lookup references are counted (lookups minus forgets) so tests can check that the protocol's books balance.
 *
 * Thread safety: counters are atomic; fs_stub_last is written by every call without a lock (tests read it from
 * the thread that served).
 */
#ifndef VUFS_FS_STUB_H
#define VUFS_FS_STUB_H

#include <stdbool.h>
#include <stdint.h>

#include "fs/fs.h"

#define FS_STUB_FILE_SIZE (256u * 1024)

struct fs_stub_config {
	uint64_t nodes;           /* node ids 1..nodes exist (0: 16) */
	unsigned dir_entries;     /* entries in every listing, "." and ".." included (0: 8) */
	int fail;                 /* 0, or the negative errno operations return ... */
	unsigned fail_every;      /* ... on every fail_every-th call (0 or 1: on every call) */
	uint64_t dax_window;      /* bytes of DAX window (0: none) */
	bool attr_dax;            /* every regular file gets FUSE_ATTR_DAX */
	struct fs_open_policy policy;
	struct timespec timeout;  /* entry and attribute timeout */
	bool caches_data;
	bool submounts;           /* every directory looked up is a submount */
};

/* The arguments of the last operation, as the stub received them. */
struct fs_stub_call {
	const char *op;
	uint64_t nodeid, fh, off, size, other;
	int flags;
	unsigned mode;
	char name[256];
	struct fs_ctx ctx;        /* the caller, as MKNOD, MKDIR, SYMLINK, CREATE and TMPFILE received it */
};

extern const struct fs_ops fs_stub_ops;

int fs_stub_new(const struct fs_stub_config *cfg, struct fs **out);
void fs_stub_free(struct fs *fs);
/* From now on, operations fail with err (0: never) on every every-th call (0 or 1: each). */
void fs_stub_fail(struct fs *fs, int err, unsigned every);
/* Lookup references held (taken minus forgotten), and operations called since fs_stub_new. */
int64_t fs_stub_refs(const struct fs *fs);
uint64_t fs_stub_calls(const struct fs *fs);
const struct fs_stub_call *fs_stub_last(const struct fs *fs);

#endif

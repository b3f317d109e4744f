/*
 * Live migration of the file system's state: what the guest's kernel still refers to (node ids with their lookup
 * counts, open handles with their flags) leaves the source as bytes and is rebuilt on the destination at the
 * same node ids and handles, before the guest runs again (the device is stopped on both sides meanwhile).
 *
 * How a node is found again (fs_config.migration_mode):
 *   find-paths:   the source asks /proc/self/fd where each inode is (its path under the shared directory, checked
 *                 by a stat of that path: same device and inode); the destination opens the path beneath its
 *                 shared directory (openat2 RESOLVE_BENEATH, no symlinks followed) and checks the type.
 *   file-handles: the source takes a file handle (name_to_handle_at), the destination opens it
 *                 (open_by_handle_at, CAP_DAC_READ_SEARCH, same file system) and checks that the file is the one
 *                 at the recorded path beneath the share, unless it has no name left (unlinked but open): those
 *                 are what this mode is for.
 * With migration_verify_handles, find-paths records carry the file handle too, and the destination checks that
 * the file it opened by path has it (the very same file, not one put at that path meanwhile).
 * A node the source cannot describe (deleted in find-paths mode, outside the share) and a node or handle the
 * destination cannot open follow migration_on_error: abort (saving or loading fails; the VMM keeps the source
 * running) or guest-error (that node id answers -ESTALE and that handle -EBADF, for ever; the rest works).
 * POSIX and flock locks held on the host are not migrated (abort, or dropped with a warning); nor is the DAX
 * window (a session with mapped ranges refuses to save).
 *
 * The bytes come from the VMM and are hostile: every count, index, length and flag is bounded, a record may
 * not claim a node id twice, and a load that fails leaves the file system as fs_reset does.
 *
 * Format (little-endian), version 1:
 *   "VUFSFS" 0 1 (8 bytes: magic and version), u32 mode (1 paths, 2 handles), u32 flags (bit 0: the guest
 *   caches writes), u32 ninodes, u32 nhandles;
 *   ninodes x { u32 slot, u32 gen, u64 nlookup, u32 type (S_IFMT), u32 lost (0/1), u32 handle_type,
 *               u16 path_len, u16 handle_len, path bytes (no NUL), handle bytes };
 *   nhandles x { u32 idx, u32 gen, u64 nodeid, u32 open flags, u32 is_dir (0/1), u32 lost (0/1) }.
 */
#include "fs/fs_internal.h"

#include "common/log.h"
#include "common/util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define STATE_MAGIC "VUFSFS\0\1"
#define STATE_MAX_HANDLE_BYTES FS_HANDLE_MAX_BYTES /* MAX_HANDLE_SZ */
#define MODE_PATHS 1u
#define MODE_HANDLES 2u
/* Open flags that would change the file again at the destination, or that make no sense for a reopen. */
#define REOPEN_DROP (O_CREAT | O_EXCL | O_TRUNC | O_NOCTTY | O_TMPFILE)

/* ---- bytes out ---- */

struct wbuf {
	uint8_t *p;
	size_t len, cap;
	int err;
};

static void put(struct wbuf *b, const void *src, size_t n)
{
	if (b->err || n == 0)
		return;
	if (b->cap - b->len < n) {
		size_t cap = MAX(b->cap * 2, b->len + n + 4096);
		uint8_t *p = realloc(b->p, cap);
		if (!p) {
			b->err = -ENOMEM;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, src, n);
	b->len += n;
}

static void put32(struct wbuf *b, uint32_t v)
{
	uint8_t le[4] = { (uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24) };
	put(b, le, sizeof(le));
}

static void put64(struct wbuf *b, uint64_t v)
{
	put32(b, (uint32_t)v);
	put32(b, (uint32_t)(v >> 32));
}

static void put16(struct wbuf *b, uint16_t v)
{
	uint8_t le[2] = { (uint8_t)v, (uint8_t)(v >> 8) };
	put(b, le, sizeof(le));
}

/* ---- bytes in ---- */

struct rbuf {
	const uint8_t *p;
	size_t len, pos;
	bool bad;
};

static const uint8_t *take(struct rbuf *b, size_t n)
{
	if (b->bad || b->len - b->pos < n) {
		b->bad = true;
		return NULL;
	}
	b->pos += n;
	return b->p + b->pos - n;
}

static uint64_t take_le(struct rbuf *b, size_t n)
{
	const uint8_t *p = take(b, n);
	uint64_t v = 0;
	for (size_t i = 0; p && i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

/* ---- where a node is ---- */

/* The path of fd beneath the shared directory (relative, "" for the root itself), or -ENOENT when it has no
 * name there (deleted, or not beneath the share). Checked: the path leads to the same device and inode now. */
static int path_of(struct fs *fs, const struct fs_inode *inode, char *rel, size_t size)
{
	char name[16], root[PATH_MAX], full[PATH_MAX];
	snprintf(name, sizeof(name), "%d", fs->root->fd);
	ssize_t rn = readlinkat(fs->proc_fd, name, root, sizeof(root) - 1);
	int fd = inode_fd_get(fs, inode); /* a handle's file that is gone has no path either */
	if (fd < 0)
		return fd == -ESTALE ? -ENOENT : fd;
	snprintf(name, sizeof(name), "%d", fd);
	ssize_t n = readlinkat(fs->proc_fd, name, full, sizeof(full) - 1);
	int err = neg_errno();
	inode_fd_put(inode, fd);
	if (rn <= 0 || n <= 0)
		return err;
	root[rn] = full[n] = 0;
	size_t rlen = strcmp(root, "/") == 0 ? 0 : (size_t)rn;
	if (strncmp(full, root, rlen) != 0 || full[rlen] != '/' || !full[rlen + 1])
		return -ENOENT;
	const char *p = full + rlen + 1;
	if (strlen(p) >= size)
		return -ENAMETOOLONG;
	struct stat st;
	if (fstatat(fs->root->fd, p, &st, AT_SYMLINK_NOFOLLOW) < 0 || st.st_dev != inode->dev ||
	    st.st_ino != inode->ino)
		return -ENOENT; /* deleted (the link then ends in " (deleted)"), or renamed meanwhile */
	snprintf(rel, size, "%s", p);
	return 0;
}

/* A file handle of the inode, for the file-handles mode: the one it keeps, if it is kept by handle. */
static int handle_of(const struct fs_inode *inode, struct fs_handle_buf *buf)
{
	if (!inode->fh)
		return fhandle_take(inode->fd, "", AT_EMPTY_PATH, buf);
	memcpy(&buf->fh, inode->fh, sizeof(*inode->fh) + inode->fh->handle_bytes);
	return 0;
}

/* ---- saving ---- */

static bool abort_on_error(const struct fs *fs)
{
	return fs->cfg.migration_on_error == FS_MIGRATE_ABORT;
}

/* One inode's record. Returns 0, or -errno when it cannot be described and the mode says abort. */
static int save_inode(struct fs *fs, struct wbuf *b, const struct fs_inode *inode, uint64_t nlookup)
{
	char rel[PATH_MAX] = "";
	struct fs_handle_buf h = { .fh.handle_bytes = 0 };
	bool handles = fs->cfg.migration_mode == FS_MIGRATE_FILE_HANDLES;
	int prc = path_of(fs, inode, rel, sizeof(rel));
	int rc = handles ? handle_of(inode, &h) : prc;
	if (!handles && rc == 0 && fs->cfg.migration_verify_handles)
		rc = handle_of(inode, &h); /* for the destination to check it opened the very same file */
	if (rc < 0) {
		log_warn("migration: node %#llx (inode %llu) cannot be found again on the destination (%s)%s",
		         (unsigned long long)inode_nodeid(inode), (unsigned long long)inode->ino, strerror(-rc),
		         abort_on_error(fs) ? "" : ": the guest gets ESTALE for it");
		if (abort_on_error(fs))
			return rc;
		h.fh.handle_bytes = 0;
		rel[0] = 0;
	}
	if (prc < 0)
		rel[0] = 0; /* file handles of an unlinked file: no path to check against */
	put32(b, inode->slot);
	put32(b, inode->gen);
	put64(b, nlookup);
	put32(b, inode->type);
	put32(b, rc < 0);
	put32(b, (uint32_t)h.fh.handle_type);
	put16(b, (uint16_t)strlen(rel));
	put16(b, (uint16_t)h.fh.handle_bytes);
	put(b, rel, strlen(rel));
	put(b, h.bytes, h.fh.handle_bytes);
	return 0;
}

static void put_lost_inode(struct wbuf *b, uint32_t slot, uint32_t gen)
{
	put32(b, slot);
	put32(b, gen);
	put64(b, 0);
	put32(b, 0);
	put32(b, 1);
	put32(b, 0);
	put16(b, 0);
	put16(b, 0);
}

/* Every inode but the root. The device is stopped: the table does not change meanwhile, but its lock is taken
 * around each look at it anyway (a SETLKW waiter may still end). */
static int save_inodes(struct fs *fs, struct wbuf *b, uint32_t *count)
{
	struct inode_table *t = &fs->itab;
	*count = 0;
	for (uint32_t i = 2;; i++) {
		pthread_mutex_lock(&t->mu);
		struct fs_inode *inode = i < t->high ? t->slots[i].inode : NULL;
		bool end = i >= t->high, lost = !end && t->slots[i].lost;
		uint32_t lost_gen = lost ? t->slots[i].gen : 0;
		uint64_t nlookup = inode ? inode->nlookup : 0;
		if (inode)
			inode->refs++;
		pthread_mutex_unlock(&t->mu);
		if (end)
			return 0;
		if (lost) {
			/* Lost on the way here already: stays lost on the next destination too. */
			put_lost_inode(b, i, lost_gen);
			(*count)++;
		}
		if (!inode)
			continue;
		pthread_mutex_lock(&inode->lock_mu);
		bool locked = inode->owners != NULL;
		pthread_mutex_unlock(&inode->lock_mu);
		int rc = 0;
		if (__atomic_load_n(&inode->dax_ranges, __ATOMIC_ACQUIRE))
			rc = -EOPNOTSUPP; /* the DAX window is not migrated */
		else if (locked && abort_on_error(fs))
			rc = -EBUSY;      /* a lock held on the host for the guest */
		else if (locked)
			log_warn("migration: the guest's locks on inode %llu stay behind", (unsigned long long)inode->ino);
		if (rc == 0)
			rc = save_inode(fs, b, inode, nlookup);
		inode_put(fs, inode);
		if (rc < 0)
			return rc;
		(*count)++;
	}
}

static int save_handles(struct fs *fs, struct wbuf *b, uint32_t *count)
{
	struct handle_table *t = &fs->htab;
	*count = 0;
	pthread_mutex_lock(&t->mu);
	for (uint32_t i = 0; i < t->high; i++) {
		const struct fs_handle *h = t->slots[i].h;
		if (!h && !t->slots[i].lost)
			continue;
		put32(b, i);
		put32(b, t->slots[i].gen);
		put64(b, h ? inode_nodeid(h->inode) : 0);
		put32(b, h ? (uint32_t)h->flags : 0);
		put32(b, h ? h->is_dir : 0);
		put32(b, !h);
		(*count)++;
	}
	pthread_mutex_unlock(&t->mu);
	return 0;
}

int fs_state_save(struct fs *fs, void **out, size_t *out_len)
{
	struct wbuf head = { 0 }, inodes = { 0 }, handles = { 0 };
	uint32_t ninodes, nhandles;
	int rc = save_inodes(fs, &inodes, &ninodes);
	if (rc == 0)
		rc = save_handles(fs, &handles, &nhandles);
	if (rc == 0) {
		put(&head, STATE_MAGIC, 8);
		put32(&head, fs->cfg.migration_mode == FS_MIGRATE_FILE_HANDLES ? MODE_HANDLES : MODE_PATHS);
		put32(&head, __atomic_load_n(&fs->guest_caches_writes, __ATOMIC_RELAXED));
		put32(&head, ninodes);
		put32(&head, nhandles);
		put(&head, inodes.p, inodes.len);
		put(&head, handles.p, handles.len);
		rc = head.err ? head.err : inodes.err ? inodes.err : handles.err;
	}
	free(inodes.p);
	free(handles.p);
	if (rc < 0) {
		free(head.p);
		return rc;
	}
	*out = head.p;
	*out_len = head.len;
	log_info("migration: state of %u nodes and %u open handles saved (%zu bytes)", ninodes, nhandles, head.len);
	return 0;
}

/* ---- loading ---- */

/* Opens rel beneath the shared directory, following no symlink on the way (O_PATH of the last component). */
static int open_beneath(struct fs *fs, const char *rel)
{
	struct open_how how = { .flags = O_PATH | O_NOFOLLOW | O_CLOEXEC,
	                        .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS };
	long fd = syscall(SYS_openat2, fs->root->fd, rel, &how, sizeof(how));
	return fd < 0 ? neg_errno() : (int)fd;
}

/* The handle's file, if it is the one at rel beneath the share (or has no name left anywhere). */
static int open_handle(struct fs *fs, struct file_handle *fh, const char *rel)
{
	/* open_by_handle_at wants a real fd of the file system, not an O_PATH one. */
	int mount_fd = inode_reopen(fs, fs->root, O_RDONLY | O_DIRECTORY);
	if (mount_fd < 0)
		return mount_fd;
	int fd = open_by_handle_at(mount_fd, fh, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	int err = neg_errno();
	close(mount_fd);
	if (fd < 0)
		return err;
	struct stat st, at;
	int rc = fstat(fd, &st) < 0 ? neg_errno() : 0;
	if (rc == 0 && st.st_nlink > 0) {
		/* Linked somewhere: it must be the file at rel beneath the share, not any file of that file system. */
		int pfd = rel[0] ? open_beneath(fs, rel) : -ENOENT;
		rc = pfd < 0 ? -EPERM : fstat(pfd, &at) < 0 ? neg_errno() : 0;
		if (rc == 0 && (at.st_dev != st.st_dev || at.st_ino != st.st_ino))
			rc = -EPERM;
		if (pfd >= 0)
			close(pfd);
	} else if (rc == 0 && rel[0]) {
		rc = -EPERM; /* claims a path, has none */
	}
	if (rc < 0) {
		close(fd);
		return rc;
	}
	return fd;
}

struct inode_rec {
	uint32_t slot, gen, type, lost, handle_type;
	uint64_t nlookup;
	char rel[PATH_MAX];
	struct fs_handle_buf h;
};

static int read_inode_rec(struct rbuf *b, struct inode_rec *r)
{
	r->slot = (uint32_t)take_le(b, 4);
	r->gen = (uint32_t)take_le(b, 4);
	r->nlookup = take_le(b, 8);
	r->type = (uint32_t)take_le(b, 4);
	r->lost = (uint32_t)take_le(b, 4);
	r->h.fh.handle_type = (int)take_le(b, 4);
	size_t plen = take_le(b, 2), hlen = take_le(b, 2);
	const uint8_t *path = take(b, plen), *hb = take(b, hlen);
	if (b->bad || plen >= sizeof(r->rel) || hlen > STATE_MAX_HANDLE_BYTES || r->lost > 1 ||
	    (r->type & ~(uint32_t)S_IFMT) || (!r->type && !r->lost))
		return -EINVAL;
	memcpy(r->rel, path, plen);
	r->rel[plen] = 0;
	if (strlen(r->rel) != plen || r->rel[0] == '/')
		return -EINVAL;
	r->h.fh.handle_bytes = (unsigned)hlen;
	memcpy(r->h.bytes, hb, hlen);
	return 0;
}

/* --migration-verify-handles: the file opened by path is the very file the source had (same handle). */
static int same_handle(int fd, const struct file_handle *want)
{
	struct fs_handle_buf h;
	int rc = fhandle_take(fd, "", AT_EMPTY_PATH, &h);
	return rc < 0 ? rc : fhandle_equal(&h.fh, want) ? 0 : -ESTALE;
}

/* Opens the file a record describes, by the state's mode. */
static int open_record(struct fs *fs, uint32_t mode, struct inode_rec *r, struct stat *st, uint64_t *mnt_id)
{
	if (r->lost)
		return -ESTALE;
	int fd = mode == MODE_HANDLES ? (r->h.fh.handle_bytes ? open_handle(fs, &r->h.fh, r->rel) : -EINVAL)
	                              : (r->rel[0] ? open_beneath(fs, r->rel) : -EINVAL);
	if (fd < 0)
		return fd;
	int rc = fs_statx(fd, "", AT_EMPTY_PATH, st, mnt_id);
	if (rc == 0 && (uint32_t)(st->st_mode & S_IFMT) != r->type)
		rc = -ESTALE; /* not the file the guest knows */
	if (rc == 0 && mode == MODE_PATHS && r->h.fh.handle_bytes && fs->cfg.migration_verify_handles)
		rc = same_handle(fd, &r->h.fh);
	if (rc < 0) {
		close(fd);
		return rc;
	}
	return fd;
}

static int load_inodes(struct fs *fs, struct rbuf *b, uint32_t mode, uint32_t count)
{
	struct inode_rec *r = malloc(sizeof(*r));
	int rc = r ? 0 : -ENOMEM;
	for (uint32_t i = 0; rc == 0 && i < count; i++) {
		struct stat st;
		uint64_t mnt_id;
		if ((rc = read_inode_rec(b, r)) < 0)
			break;
		int fd = open_record(fs, mode, r, &st, &mnt_id);
		if (fd >= 0) {
			rc = itab_place(fs, r->slot, r->gen, fd, &st, mnt_id, r->nlookup, NULL);
		} else if (abort_on_error(fs)) {
			log_err("migration: node %u:%u (%s) cannot be opened: %s", r->slot, r->gen,
			        r->rel[0] ? r->rel : "no path", strerror(-fd));
			rc = fd;
		} else {
			log_warn("migration: node %u:%u (%s) cannot be opened (%s): the guest gets ESTALE for it",
			         r->slot, r->gen, r->rel[0] ? r->rel : "no path", strerror(-fd));
			rc = itab_reserve(fs, r->slot, r->gen);
		}
	}
	free(r);
	return rc;
}

static int load_handle(struct fs *fs, struct rbuf *b)
{
	uint32_t idx = (uint32_t)take_le(b, 4), gen = (uint32_t)take_le(b, 4);
	uint64_t nodeid = take_le(b, 8);
	int flags = (int)take_le(b, 4);
	uint32_t is_dir = (uint32_t)take_le(b, 4), lost = (uint32_t)take_le(b, 4);
	if (b->bad || is_dir > 1 || lost > 1)
		return -EINVAL;
	struct fs_inode *inode = NULL;
	int rc = lost ? -ESTALE : inode_get(fs, nodeid, &inode);
	if (rc == 0 && (inode->type == S_IFDIR) != (bool)is_dir)
		rc = -EINVAL;
	flags &= ~REOPEN_DROP;
	if (is_dir)
		flags = O_RDONLY | O_DIRECTORY;
	int fd = rc == 0 ? inode_reopen(fs, inode, flags) : rc;
	if (fd >= 0)
		return htab_place(fs, idx, gen, fd, flags, inode, is_dir); /* consumes fd and the reference */
	inode_put(fs, inode);
	if (abort_on_error(fs) || rc == -EINVAL)
		return fd;
	log_warn("migration: open file %u:%u of node %#llx cannot be reopened (%s): the guest gets EBADF for it",
	         idx, gen, (unsigned long long)nodeid, strerror(-fd));
	return htab_reserve(fs, idx, gen);
}

int fs_state_load(struct fs *fs, const void *buf, size_t len)
{
	struct rbuf b = { .p = buf, .len = len };
	const uint8_t *magic = take(&b, 8);
	uint32_t mode = (uint32_t)take_le(&b, 4), flags = (uint32_t)take_le(&b, 4);
	uint32_t ninodes = (uint32_t)take_le(&b, 4), nhandles = (uint32_t)take_le(&b, 4);
	uint64_t inodes, handles;
	fs_counts(fs, &inodes, &handles);
	if (b.bad || memcmp(magic, STATE_MAGIC, 8) != 0 || (mode != MODE_PATHS && mode != MODE_HANDLES) || flags > 1)
		return -EINVAL;
	if (inodes != 1 || handles != 0)
		return -EBUSY; /* only into a file system the guest has not used yet */
	__atomic_store_n(&fs->guest_caches_writes, flags & 1, __ATOMIC_RELAXED);
	int rc = load_inodes(fs, &b, mode, ninodes);
	for (uint32_t i = 0; rc == 0 && i < nhandles; i++)
		rc = load_handle(fs, &b);
	if (rc == 0 && b.pos != b.len)
		rc = -EINVAL; /* trailing bytes: not a state we wrote */
	if (rc < 0) {
		fs_reset(fs);
		return rc;
	}
	itab_rebuild_free(fs);
	htab_rebuild_free(fs);
	log_info("migration: state of %u nodes and %u open handles loaded", ninodes, nhandles);
	return 0;
}

/*
 * Internal interface between the files of the file-system room. Nothing outside src/fs includes this.
 *
 * Lock story (the only locks in this room, and the order they may nest in):
 *
 *   handle->dir_mu  (one directory handle's getdents position and buffer; held across READDIRPLUS lookups)
 *     -> inode->lock_mu  (one inode's POSIX lock owners; never held across a blocking fcntl)
 *       -> itab.mu / htab.mu  (the inode table and the handle table: short critical sections without system
 *                              calls, e.g. fds of freed inodes are closed after unlocking; never nested in
 *                              each other)
 *   mounts.mu  (the table of mount fds that file handles open through, fhandle.c: a leaf, taken with no other
 *               lock of this room held and none taken under it; fds are opened before and closed after it)
 *     -> dax.mu  (the DAX window's ranges, dax.c: taken under dir_mu by READDIRPLUS lookups, never with lock_mu,
 *                 itab.mu or htab.mu held; itab.mu may nest inside it (inode_put when every range goes at once).
 *                 The device's own lock for backend requests nests inside it)
 *
 * An inode's immutable fields (fd or fh and mount, type, identity, slot, gen) may be read without a lock by anyone
 * holding a reference; a mount's mnt_id and fd likewise by anyone holding a reference to it (an inode's own).
 * fs->inode_handles is set by fs_inode_handles_start before the fs serves, and only read after. nlookup, refs and hash_next belong to itab.mu. A handle's immutable fields (fd, inode, is_dir)
 * may be read by anyone holding a reference; refs belongs to htab.mu.
 */
#ifndef VUFS_FS_INTERNAL_H
#define VUFS_FS_INTERNAL_H

#include "fs/fs.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

#define FS_DEFAULT_MAX_INODES 1000000u
#define FS_DEFAULT_MAX_HANDLES 100000u
/* Keeps slot indexes far from UINT32_MAX (node ids and handles pack index and generation in 32 bits each). */
#define FS_MAX_TABLE_BOUND (1u << 30)

struct fs_lock_owner;
struct fs_mount;

/* A file handle with room for the largest the kernel makes (MAX_HANDLE_SZ), on the stack. */
#define FS_HANDLE_MAX_BYTES 128
struct fs_handle_buf {
	struct file_handle fh;
	unsigned char bytes[FS_HANDLE_MAX_BYTES];
};

struct fs_inode {
	/* Immutable while the inode lives: either fd, or fh and mount (fd -1). The root always has fd. */
	int fd;                   /* O_PATH|O_NOFOLLOW, owned */
	struct file_handle *fh;   /* owned (--inode-file-handles): opened through mount's fd when needed */
	struct fs_mount *mount;   /* with fh: holds one reference */
	mode_t type;              /* S_IFMT bits */
	dev_t dev;
	ino_t ino;
	uint64_t mnt_id;
	uint32_t slot, gen;

	/* itab.mu */
	uint64_t nlookup;         /* guest references (LOOKUP and friends minus FORGET) */
	uint64_t refs;            /* in-flight operations and open handles */
	struct fs_inode *hash_next;

	/* dax.mu (dax.c); dax_ranges is also read atomically without it */
	uint32_t dax_ranges;      /* window ranges mapping this inode (each holds a reference) */
	uint32_t dax_handles;     /* open handles whose fd is a duplicate of dax_fd (one open file description) */
	int dax_fd;               /* the inode's shared description, the fd the VMM maps; -1 when nothing uses it */
	bool dax_writable;        /* dax_fd is read-write (else read-only: every range is a copy) */
	bool dax_leased;          /* we hold a write lease on dax_fd (dax_lease.c) */
	bool dax_exposed;         /* file pages stay mapped without a lease (a host reader broke it): retried */

	/* lock_mu: POSIX lock owners of this inode (locks.c) */
	pthread_mutex_t lock_mu;
	struct fs_lock_owner *owners;
};

struct inode_slot {
	struct fs_inode *inode;   /* NULL: free */
	uint32_t gen;             /* generation of the current (or next) occupant */
	uint32_t next_free;       /* free list link (0 ends it; slot 0 is never used) */
	bool lost;                /* a node the migration source could not hand over: never reused (-ESTALE) */
};

/*
 * The inode table: node id = gen << 32 | slot. Slot 1 generation 0 is the root, which holds one permanent
 * reference so it is never freed before fs_free. Identity (dev, ino, mnt_id) -> inode through a chained hash.
 * One mutex, mu, guards every field below and the nlookup/refs/hash_next of every inode; the table only ever
 * grows (slots and buckets are realloc'ed under mu, inodes themselves are separately allocated and so never
 * move). The fd of a freed inode is closed after mu is dropped.
 */
struct inode_table {
	pthread_mutex_t mu;
	struct inode_slot *slots;
	uint32_t nslots;          /* allocated */
	uint32_t high;            /* slots [1, high) have been used at least once */
	uint32_t free_head;
	struct fs_inode **buckets;
	size_t nbuckets;          /* power of two */
	uint64_t count, max;
};

struct fs_handle {
	/* Immutable while the handle lives. */
	int fd;                   /* opened for I/O (or O_RDONLY|O_DIRECTORY) */
	int flags;                /* the open(2) flags fd was opened with */
	struct fs_inode *inode;   /* holds one reference */
	bool is_dir;
	bool shared;              /* fd duplicates the inode's dax_fd: the access mode is ours to enforce */
	uint32_t idx, gen;
	int flock_fd;             /* shared handles: a description of their own for flock(), made on first use
	                           * (atomic; -1 until then) */

	/* htab.mu */
	uint64_t refs;            /* 1 while in the table + in-flight operations */
	struct fs_handle *kill_next; /* htab_reset's list of handles to destroy */

	/* dir_mu: directory stream state (dir.c) */
	pthread_mutex_t dir_mu;
	char *dbuf;               /* getdents64 buffer, allocated on first READDIR */
	size_t dlen, dpos;        /* valid bytes, next entry */
	uint64_t dir_off;         /* offset of the next entry to emit (0 = start) */
};

struct handle_slot {
	struct fs_handle *h;
	uint32_t gen;
	uint32_t next_free;       /* free list link, index + 1 (0 ends it) */
	bool lost;                /* a handle the migration source could not hand over: never reused (-EBADF) */
};

/* The handle table: fh = gen << 32 | index; generations start at 1 so fh 0 is never valid. mu guards
 * everything here and every handle's refs. */
struct handle_table {
	pthread_mutex_t mu;
	struct handle_slot *slots;
	uint32_t nslots, high, free_head;
	uint64_t count, max;
};

/* Mount id -> an fd on that mount that open_by_handle_at accepts (not O_PATH), for inodes kept by file handle
 * (fhandle.c). Entries live while some inode refers to them; the table is bounded (past it inodes keep fds). */
#define FS_MAX_MOUNTS 256u
struct mount_table {
	pthread_mutex_t mu;
	struct fs_mount *m[FS_MAX_MOUNTS];
	unsigned n;
};

/* The DAX window's ranges (dax.c, whose header has the lock story). */
#define FS_DAX_MAX_RANGES 32768u  /* 64 GiB */
struct dax_range;
struct fs_dax {
	pthread_mutex_t mu;
	struct dev_services svc;
	bool attached;
	unsigned nranges;         /* window / FS_DAX_RANGE */
	struct dax_range *ranges;
	uint64_t mapped, removed; /* ranges set up and removed at the guest's request, this attachment */
	uint64_t leases, breaks;  /* leases taken on mapped files, and broken by someone else's open or truncate */
	struct dax_lease_thread *lease; /* dax_lease.c, started with the first window in guarded mode */
};

struct fs {
	struct fs_config cfg;     /* source points at source_copy */
	char *source_copy;
	int proc_fd;              /* /proc/self/fd, O_PATH */
	bool switch_creds;        /* we may change fsuid/fsgid (running as root) */
	struct inode_table itab;
	struct handle_table htab;
	struct mount_table mounts;
	struct fs_inode *root;
	struct fs_mount *root_mount; /* inode_handles: the root's mount, one reference for the fs's life */
	bool inode_handles;       /* new inodes keep file handles (see the lock story) */
	uint64_t lock_fds;        /* open lock-owner fds (locks.c, atomic); bounded by max_handles */
	bool guest_caches_writes; /* negotiated writeback caching (set at INIT, atomic) */
	bool acl_on;              /* cfg.posix_acl and the session agreed FUSE_POSIX_ACL (set at INIT, atomic) */
	bool dax_per_inode;       /* the guest mounted dax=inode (set at INIT, atomic) */
	struct fs_idmap uid_map, gid_map; /* immutable after fs_new */
	struct fs_dax dax;
};

/* The passthrough's operations table (fs_ops.c) as designated initialisers, so that a table that differs in a few
 * operations (idmap_ops.c) names only those after it: a later designator overrides an earlier one (C11 6.7.9). */
#define FS_PASSTHROUGH_OPS_FIELDS \
	.session_start = fs_session_start, \
	.reset = fs_reset, \
	.lookup = fs_lookup, \
	.forget = fs_forget, \
	.getattr = fs_getattr, \
	.getattr_btime = fs_getattr_btime, \
	.setattr = fs_setattr, \
	.readlink = fs_readlink, \
	.mknod = fs_mknod, \
	.mkdir = fs_mkdir, \
	.symlink = fs_symlink, \
	.link = fs_link, \
	.unlink = fs_unlink, \
	.rmdir = fs_rmdir, \
	.rename = fs_rename, \
	.statfs = fs_statfs, \
	.access = fs_access, \
	.open = fs_open, \
	.create = fs_create, \
	.tmpfile = fs_tmpfile, \
	.read = fs_read, \
	.write = fs_write, \
	.flush = fs_flush, \
	.release = fs_release, \
	.fsync = fs_fsync, \
	.fallocate = fs_fallocate, \
	.lseek = fs_lseek, \
	.copy_file_range = fs_copy_file_range, \
	.syncfs = fs_syncfs, \
	.opendir = fs_opendir, \
	.readdir = fs_readdir, \
	.releasedir = fs_releasedir, \
	.fsyncdir = fs_fsyncdir, \
	.setxattr = fs_setxattr, \
	.getxattr = fs_getxattr, \
	.listxattr = fs_listxattr, \
	.removexattr = fs_removexattr, \
	.getlk = fs_getlk, \
	.setlk = fs_setlk, \
	.flock = fs_flock, \
	.dax_window = fs_dax_window, \
	.setupmapping = fs_setupmapping, \
	.removemapping = fs_removemapping, \
	.attr_dax = fs_attr_dax, \
	.state_save = fs_state_save, \
	.state_load = fs_state_load, \
	.open_policy = fs_open_policy, \
	.cache_timeout = fs_cache_timeout, \
	.caches_data = fs_caches_data

/* inodes.c */
int itab_init(struct inode_table *t, uint64_t max);
void itab_destroy(struct inode_table *t);
/* Inserts the root (fd owned on success). */
int itab_insert_root(struct fs *fs, int fd, const struct stat *st, uint64_t mnt_id);
/* A reference to a live inode, or -ESTALE. */
int inode_get(struct fs *fs, uint64_t nodeid, struct fs_inode **out);
/* inode_get for a directory: -ENOTDIR (and no reference) otherwise. */
int dir_get(struct fs *fs, uint64_t nodeid, struct fs_inode **out);
void inode_ref(struct fs *fs, struct fs_inode *inode);
void inode_put(struct fs *fs, struct fs_inode *inode);
uint64_t inode_nodeid(const struct fs_inode *inode);
/* Adds one lookup to an inode the caller holds a reference to. */
void inode_add_lookup(struct fs *fs, struct fs_inode *inode);
void inode_forget(struct fs *fs, uint64_t nodeid, uint64_t n);
/* Finds the inode of (st, mnt_id) or makes one from opath_fd; either way the fd is consumed and the result
 * carries one lookup (guest reference). If ref is non-NULL it also gets one in-flight reference. */
int inode_register(struct fs *fs, int opath_fd, const struct stat *st, uint64_t mnt_id, struct fs_inode **ref);
/* statx of fd (with path and AT_* flags) as a struct stat plus the mount id (0 when the kernel has none). */
int fs_statx(int dirfd, const char *path, int flags, struct stat *st, uint64_t *mnt_id);
/* fs_statx, asking the birth time too (into bt). */
int fs_statx_btime(int dirfd, const char *path, int flags, struct stat *st, struct fs_btime *bt);
/* Look name up in the directory parent: one lookup reference, entry filled. */
int inode_lookup_name(struct fs *fs, struct fs_inode *parent, const char *name, struct fs_entry *e);
/* inode_lookup_name through pfd, an fd of parent the caller has open (READDIRPLUS: the directory handle's), which
 * spares a handle-based parent an open_by_handle_at per entry. */
int inode_lookup_name_at(struct fs *fs, struct fs_inode *parent, int pfd, const char *name, struct fs_entry *e);
/* The same for a name just created (not yet in the table): skips the search for a known inode. */
int inode_open_name(struct fs *fs, struct fs_inode *parent, const char *name, struct fs_entry *e);
/* Fills e for inode (which the caller has already given a lookup reference); submount stays false. */
int inode_fill_entry(struct fs *fs, struct fs_inode *inode, struct fs_entry *e);
/* Opens the inode for I/O: through /proc/self/fd, or by its file handle (O_NOFOLLOW is dropped, O_CLOEXEC added).
 * A handle whose file is gone gives -ESTALE. */
int inode_reopen(struct fs *fs, const struct fs_inode *inode, int flags);
/* An O_PATH fd of the inode for *at() calls: its own (borrowed), or one opened from its file handle; either way
 * given back with inode_fd_put. Take it before creds_enter: opening a handle needs CAP_DAC_READ_SEARCH, which a
 * caller's fsuid drops. */
int inode_fd_get(const struct fs *fs, const struct fs_inode *inode);
void inode_fd_put(const struct fs_inode *inode, int fd);
/* The same for any fd of ours (O_PATH or not). */
int fd_reopen(struct fs *fs, int opath, int flags);
/* xattr.c: gives a node just created (fd: any fd of it, type: its S_IFMT) the security context the guest sent
 * with the request (ctx->secctx_name, through --xattrmap), as the daemon. 0 when none was sent. */
int xattr_set_secctx(struct fs *fs, const struct fs_ctx *ctx, mode_t type, int fd);
/* Drops every inode but the root (fs_reset). */
void itab_reset(struct fs *fs);
/* Loading a migrated state (migrate.c), into a table that holds the root only: an inode at the node id the guest
 * knows (slot, gen) with nlookup lookups (fd consumed; out: a reference, or NULL); a node id kept out of use
 * (-ESTALE for ever); then the free list anew from every other slot. */
int itab_place(struct fs *fs, uint32_t slot, uint32_t gen, int fd, const struct stat *st, uint64_t mnt_id,
               uint64_t nlookup, struct fs_inode **out);
int itab_reserve(struct fs *fs, uint32_t slot, uint32_t gen);
void itab_rebuild_free(struct fs *fs);

/* fhandle.c */
int mounts_init(struct mount_table *t);
void mounts_destroy(struct fs *fs);
/* The handle of dirfd/name (flags: AT_EMPTY_PATH, AT_SYMLINK_FOLLOW) into buf. */
int fhandle_take(int dirfd, const char *name, int flags, struct fs_handle_buf *buf);
bool fhandle_equal(const struct file_handle *a, const struct file_handle *b);
/* With handles in use, gives a new inode (not yet in the table, fd set) a handle and a mount instead of its fd,
 * which is closed; keeps the fd where prefer allows; fails where mandatory does not. */
int fhandle_attach(struct fs *fs, struct fs_inode *inode);
/* Lets go of a handle-based inode's handle and mount. */
void fhandle_detach(struct fs_inode *inode);
/* Opens a handle-based inode's file with flags. */
int fhandle_open(const struct fs_inode *inode, int flags);

/* handles.c */
int htab_init(struct handle_table *t, uint64_t max);
void htab_destroy(struct fs *fs);
/* Takes ownership of fd and the caller's inode reference (on failure both are released); shared: fd duplicates
 * the inode's dax_fd (dax_share_open), whose use is given back with the handle. */
int handle_new(struct fs *fs, int fd, int flags, struct fs_inode *inode, bool is_dir, bool shared, uint64_t *fh);
/* An in-flight reference to a live handle, or -EBADF. */
int handle_get(struct fs *fs, uint64_t fh, struct fs_handle **out);
void handle_put(struct fs *fs, struct fs_handle *h);
/* Removes fh from the table (the handle lives on until its last in-flight user puts it). */
int handle_remove(struct fs *fs, uint64_t fh, struct fs_handle **out);
void htab_reset(struct fs *fs);
/* Loading a migrated state, as itab_place: a handle at the fh the guest knows (fd and the inode reference
 * consumed, also on failure), a handle kept out of use (-EBADF), the free list anew. */
int htab_place(struct fs *fs, uint32_t idx, uint32_t gen, int fd, int flags, struct fs_inode *inode, bool is_dir);
int htab_reserve(struct fs *fs, uint32_t idx, uint32_t gen);
void htab_rebuild_free(struct fs *fs);

/* creds.c: run as the caller's fsuid/fsgid on this thread, without supplementary groups. */
struct fs_creds {
	bool switched;
	bool grouped;         /* the caller's supplementary group is this thread's only one (drop it on leave) */
	uid_t old_uid;
	gid_t old_gid;
	bool masked;              /* the thread's umask was set to the caller's: put back to 0 by creds_leave */
};
int creds_enter(struct fs *fs, const struct fs_ctx *ctx, struct fs_creds *saved);
/* creds_enter for creating names: directory permissions were checked by the guest (see creds.c); the caller's
 * umask (ctx->umask) applies to the new name until creds_leave. */
int creds_enter_creator(struct fs *fs, const struct fs_ctx *ctx, struct fs_creds *saved);
void creds_leave(struct fs_creds *saved);

/* attr.c: chmod of inode, through fd when one is open (>= 0), else through /proc/self/fd. */
int inode_set_mode(struct fs *fs, struct fs_inode *inode, int fd, mode_t mode);

/* names: "." and ".." and anything with a '/' -> -EINVAL, "" -> -ENOENT. */
int fs_check_name(const char *name);

/* locks.c */
void locks_free_inode(struct fs_inode *inode);
/* Drops every owner's locks on inode (the guest's session ended: DESTROY), while the inode may still be in use. */
void locks_drop_all(struct fs_inode *inode);
/* Closes lock_owner's fd for inode (its POSIX locks go away). */
void locks_drop_owner(struct fs_inode *inode, uint64_t lock_owner);
/* Drops the owners that locked through handle fh (RELEASE: their open file description is gone). */
void locks_drop_handle(struct fs_inode *inode, uint64_t fh);
/* The fd flock() works on for handle h: its own fd, or for a shared handle a description of its own (-1 before its
 * first flock; handle_flock_fd_open makes it). */
int handle_flock_fd(struct fs_handle *h);
int handle_flock_fd_open(struct fs *fs, struct fs_handle *h);

/* dax.c */
void dax_init(struct fs *fs);
void dax_destroy(struct fs *fs);
/* Unmaps every range (DESTROY). */
void dax_reset(struct fs *fs);
/* Sync points of an inode's copies in the window: before a request acts on its data, after one that changed or
 * reports its size (nothing to do, and no lock taken, for an inode that has no range). */
void dax_sync_before(struct fs *fs, struct fs_inode *inode);
void dax_sync_after(struct fs *fs, struct fs_inode *inode);
/* dax_sync_after for a request that may grow the file and that the guest's own I/O on the inode waits for
 * (WRITE, SETATTR, FALLOCATE, COPY_FILE_RANGE): a range in many small parts may be laid out anew. */
void dax_sync_after_growth(struct fs *fs, struct fs_inode *inode);

/* The inode's shared read-write description for a new handle of a regular file while a window is attached
 * (dax.c): a duplicate of dax_fd, so that a write lease on it can guard the file's mappings; -ENOTSUP when the
 * handle must have a description of its own (no window, O_DIRECT or O_NOATIME, which belong to a description, or
 * the file cannot be opened read-write). */
int dax_share_open(struct fs *fs, struct fs_inode *inode, int flags);
/* A shared handle of inode is gone (its duplicate closed). */
void dax_share_put(struct fs *fs, struct fs_inode *inode);
/* A duplicate of the inode's shared description if it has one (-ENOENT otherwise): requests without a handle use
 * it rather than open the file again, which would break the daemon's own lease. */
int dax_share_dup(struct fs *fs, struct fs_inode *inode);
/* The guest is about to shrink the file to size: file pages past it become copies first, so the VMM never maps a
 * page the truncation takes away (a guest process still touching one would kill the VMM). */
void dax_before_shrink(struct fs *fs, struct fs_inode *inode, uint64_t size);

/* dax_lease.c: the thread that hears lease breaks. Started once (guarded mode); it calls dax_lease_broken with
 * the fd whose lease a host process wants broken, and dax_lease_retry after each and then every LEASE_RETRY_MS
 * while it says some lease is missing. */
int dax_lease_start(struct fs *fs);
void dax_lease_stop(struct fs *fs);
/* A write lease on fd whose breaks reach the thread; false when it cannot be had (another description of the
 * file is open, or the daemon neither owns the file nor has CAP_LEASE). */
bool dax_lease_take(struct fs *fs, int fd);
void dax_lease_release(int fd);
/* dax.c, from the lease thread: */
void dax_lease_broken(struct fs *fs, int fd);
void dax_lease_check_all(struct fs *fs); /* the break signals overflowed: ask every leased fd */
/* Takes the leases host readers broke again where they are gone; returns whether some are still missing. */
bool dax_lease_retry(struct fs *fs);

/* dir.c */
void dir_handle_free(struct fs_handle *h);

/* kill_suidgid rule for regular files: the mode bits a write by an unprivileged caller would clear. */
static inline mode_t fs_suidgid_to_kill(mode_t mode)
{
	mode_t kill = 0;
	if (!S_ISREG(mode))
		return 0;
	if (mode & S_ISUID)
		kill |= S_ISUID;
	if ((mode & (S_ISGID | S_IXGRP)) == (S_ISGID | S_IXGRP))
		kill |= S_ISGID;
	return kill;
}

/* Whether system.posix_acl_* names are served: --posix-acl, and a guest that enforces them. */
static inline bool fs_acl_on(const struct fs *fs)
{
	return __atomic_load_n(&fs->acl_on, __ATOMIC_ACQUIRE);
}

#endif

/*
 * The file system room: a passthrough of one host directory.
 *
 * It knows nothing of FUSE wire structs or transports. Callers name inodes by node id and open files by handle,
 * both opaque 64-bit values this layer hands out (table indexes with a generation, never pointers or host fds).
 * Every function returns 0 (or a byte count) on success and a negative errno on failure. Names reaching this
 * layer were already checked by the protocol layer: NUL-terminated, non-empty, no '/', at most NAME_MAX bytes;
 * the fs still refuses "." and ".." where they could leave the shared directory.
 * Every function may be called from several threads at once.
 */
#ifndef VUFS_FS_H
#define VUFS_FS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <fcntl.h>
#include <time.h>

#include "common/dev_services.h"

#define FS_ROOT_ID 1            /* node id of the shared directory itself */
#define FS_NO_HANDLE UINT64_MAX /* "no file handle given" */

struct fs;
struct xattrmap;

/* How much the guest may cache (virtiofsd's --cache): the fs turns it into the policy of each open file and the
 * timeouts of each entry (today the same for every inode; per inode later). */
enum fs_cache_mode {
	FS_CACHE_NEVER,           /* nothing: every lookup, stat and read comes to us */
	FS_CACHE_AUTO,            /* metadata for 1 s, data while open (re-checked at open) */
	FS_CACHE_ALWAYS,          /* metadata for a day, data across opens: this guest is the only writer */
	FS_CACHE_METADATA,        /* metadata for a day, no data (direct I/O), as virtiofsd's cache=metadata */
};

/* Which regular files the guest is told to access through the DAX window when it lets the server choose
 * (mounted dax=inode: FUSE_ATTR_DAX). Under dax=always the guest maps every file anyway. */
enum fs_dax_files {
	FS_DAX_FILES_PAGE,        /* files whose size is a non-zero multiple of 4 KiB: no copied tail page */
	FS_DAX_FILES_ALL,
	FS_DAX_FILES_NONE,
};
/* What a mapped file's pages are shared with (docs/dax-design.md 2.8). A range of the window normally maps the
 * file's own pages, which a host truncation takes away from under the VMM (QEMU dies of the SIGBUS). */
enum fs_dax_coherence {
	FS_DAX_GUARDED,           /* a write lease guards every file mapping: a host process opening the file for
	                           * writing or truncating it first turns the guest's ranges of it into copies */
	FS_DAX_SHARED,            /* no lease: host writers are seen at once, a host truncation kills the VMM */
};
#define FS_DAX_RANGE (2u << 20) /* the unit of the window: Linux maps 2 MiB ranges, map_alignment 21 */

/* Live migration (virtiofsd's --migration-mode and --migration-on-error; src/fs/migrate.c has the details). */
enum fs_migration_mode {
	FS_MIGRATE_FIND_PATHS,    /* nodes travel as paths beneath the shared directory */
	FS_MIGRATE_FILE_HANDLES,  /* as file handles (same file system; unlinked open files too) */
};
/* How an inode remembers its file (virtiofsd's --inode-file-handles; src/fs/fhandle.c has the details). */
enum fs_inode_handles {
	FS_HANDLES_NEVER,         /* an O_PATH fd per inode */
	FS_HANDLES_PREFER,        /* a file handle per inode where the file system makes one, else an fd */
	FS_HANDLES_MANDATORY,     /* a file handle per inode (but the root), or the lookup fails */
};
enum fs_migration_on_error {
	FS_MIGRATE_ABORT,         /* a node that cannot travel fails the migration (the source runs on) */
	FS_MIGRATE_GUEST_ERROR,   /* that node alone answers errors on the destination */
};

/* UID/GID translation between guest and host (virtiofsd's --translate-uid/--translate-gid; src/fs/idmap.c). */
#define FS_IDMAP_MAX_RULES 64
enum fs_idmap_kind { FS_IDMAP_RANGE, FS_IDMAP_SQUASH, FS_IDMAP_FORBID };
struct fs_idmap_rule {
	enum fs_idmap_kind kind;
	uint32_t from, to;        /* first id of the range, and what it becomes (the first, or the only one) */
	uint64_t count;
};
struct fs_idmap {
	struct fs_idmap_rule g2h[FS_IDMAP_MAX_RULES], h2g[FS_IDMAP_MAX_RULES];
	unsigned n_g2h, n_h2g;
};
/* Adds one rule ("map:G:H:N", "guest:G:H:N", "host:H:G:N", "squash-guest:G:H:N", "squash-host:H:G:N",
 * "forbid-guest:G:N"): -EINVAL bad syntax or range, -EEXIST overlaps a rule of the same direction. */
int fs_idmap_add(struct fs_idmap *m, const char *spec);
/* A guest id as the host's (-EPERM: forbidden), a host id as the guest's. */
int fs_idmap_to_host(const struct fs_idmap *m, uint32_t guest_id, uint32_t *host_id);
uint32_t fs_idmap_to_guest(const struct fs_idmap *m, uint32_t host_id);
bool fs_idmap_empty(const struct fs_idmap *m);

struct fs_config {
	const char *source;       /* the shared directory */
	bool xattr;               /* serve extended attributes (else -ENOSYS for xattr ops) */
	bool posix_acl;           /* allow system.posix_acl_* names */
	const struct xattrmap *xattrmap; /* --xattrmap rules applied to every name (fs/xattrmap.h), or NULL; the
	                           * caller keeps it alive as long as the fs */
	bool allow_direct_io;     /* honour O_DIRECT from the guest (else it is dropped) */
	bool preserve_noatime;    /* OPEN keeps the guest's O_NOATIME (else it is dropped, as virtiofsd does) */
	bool posix_lock;          /* serve POSIX record locks (else -ENOSYS) */
	bool flock;               /* serve flock() locks (else -ENOSYS) */
	uint64_t max_inodes;      /* bound on live inodes; lookups past it fail with -ENFILE (0 = default) */
	uint64_t max_handles;     /* bound on open handles; opens past it fail with -EMFILE (0 = default) */
	enum fs_dax_files dax_files;
	enum fs_dax_coherence dax_coherence;
	enum fs_cache_mode cache;
	bool readonly;            /* every change fails with -EROFS (virtiofsd's --readonly) */
	enum fs_migration_mode migration_mode;
	enum fs_migration_on_error migration_on_error;
	bool migration_verify_handles; /* find-paths: the destination checks each file's handle too (same fs) */
	enum fs_inode_handles inode_file_handles; /* takes effect at fs_inode_handles_start */
	const struct fs_idmap *uid_map, *gid_map; /* NULL or empty: ids pass unchanged (copied at fs_new) */
};

/* Who asks: the caller's ids from the request, run as fsuid/fsgid for operations that create files. */
struct fs_ctx {
	uint32_t uid, gid, pid;
	/* The one supplementary group the caller creates with (FUSE_CREATE_SUPP_GROUP): the parent directory's group,
	 * which the caller has only as a supplementary group. Only on requests that create. */
	bool has_supp_gid;
	uint32_t supp_gid;
	uint32_t umask;           /* creations: the caller's umask when the guest left it to us (FUSE_DONT_MASK, with
	                           * POSIX ACLs), applied by the host unless the parent has a default ACL; else 0 */
	const char *secctx_name;  /* creations: the security context the guest gives the new node (FUSE_SECURITY_CTX):
	                           * a security.* name (through --xattrmap), or NULL */
	const void *secctx;       /* its value, secctx_len bytes */
	uint32_t secctx_len;
};

struct fs_entry {
	uint64_t nodeid;          /* 0 in READDIRPLUS for "." and "..": no lookup reference taken */
	uint64_t generation;
	struct stat st;
	bool submount;            /* a directory on another mount or device than the one it was looked up in: the
	                           * root of a file system mounted inside the share (LOOKUP and READDIRPLUS only) */
};

enum fs_setattr_valid {
	FS_SET_MODE = 1 << 0,
	FS_SET_UID = 1 << 1,
	FS_SET_GID = 1 << 2,
	FS_SET_SIZE = 1 << 3,
	FS_SET_ATIME = 1 << 4,
	FS_SET_MTIME = 1 << 5,
	FS_SET_ATIME_NOW = 1 << 6,
	FS_SET_MTIME_NOW = 1 << 7,
	FS_SET_CTIME = 1 << 8,
	FS_SET_KILL_SUIDGID = 1 << 9, /* clear setuid/setgid as a write by an unprivileged caller would */
};

struct fs_setattr {
	unsigned valid;           /* FS_SET_* */
	mode_t mode;
	uid_t uid;
	gid_t gid;
	uint64_t size;
	struct timespec atime, mtime, ctime;
};

/* READDIR(PLUS) sink. Returns 0 when the entry was taken, 1 when the buffer is full (entry not taken). */
typedef int (*fs_dirent_fn)(void *arg, const char *name, size_t namelen, uint64_t ino, unsigned dtype,
                            uint64_t next_off, const struct fs_entry *plus);

int fs_new(const struct fs_config *cfg, struct fs **out);
/* With cfg.inode_file_handles prefer or mandatory: checks, with the capabilities the daemon serves with (after the
 * sandbox dropped the others), that a file handle of the shared directory opens again (open_by_handle_at needs
 * CAP_DAC_READ_SEARCH), and if so makes new inodes keep handles instead of fds. prefer falls back to fds with a
 * warning; mandatory fails (-EOPNOTSUPP: no handles on that file system, -EPERM: not allowed to open them).
 * Call once, before the fs serves anything. */
int fs_inode_handles_start(struct fs *fs);
/* Whether new inodes keep file handles (after fs_inode_handles_start). */
bool fs_inode_handles_used(const struct fs *fs);
void fs_free(struct fs *fs);
/* Release every inode and handle the guest still holds (DESTROY, or the guest went away). */
void fs_reset(struct fs *fs);

int fs_lookup(struct fs *fs, const struct fs_ctx *ctx, uint64_t parent, const char *name, struct fs_entry *e);
void fs_forget(struct fs *fs, uint64_t nodeid, uint64_t nlookup);
int fs_getattr(struct fs *fs, uint64_t nodeid, uint64_t fh, struct stat *st);
/* A birth time, when the host file system keeps one. */
struct fs_btime {
	bool valid;
	struct timespec time;
};
/* fs_getattr plus the birth time (FUSE_STATX). */
int fs_getattr_btime(struct fs *fs, uint64_t nodeid, uint64_t fh, struct stat *st, struct fs_btime *bt);
int fs_setattr(struct fs *fs, const struct fs_ctx *ctx, uint64_t nodeid, uint64_t fh, const struct fs_setattr *sa,
               struct stat *st);
/* Writes at most size bytes, no NUL; returns the length. */
ssize_t fs_readlink(struct fs *fs, uint64_t nodeid, char *buf, size_t size);

int fs_mknod(struct fs *fs, const struct fs_ctx *ctx, uint64_t parent, const char *name, mode_t mode, dev_t rdev,
             struct fs_entry *e);
int fs_mkdir(struct fs *fs, const struct fs_ctx *ctx, uint64_t parent, const char *name, mode_t mode,
             struct fs_entry *e);
int fs_symlink(struct fs *fs, const struct fs_ctx *ctx, uint64_t parent, const char *name, const char *target,
               struct fs_entry *e);
int fs_link(struct fs *fs, const struct fs_ctx *ctx, uint64_t nodeid, uint64_t newparent, const char *newname,
            struct fs_entry *e);
int fs_unlink(struct fs *fs, const struct fs_ctx *ctx, uint64_t parent, const char *name);
int fs_rmdir(struct fs *fs, const struct fs_ctx *ctx, uint64_t parent, const char *name);
/* flags: RENAME_NOREPLACE, RENAME_EXCHANGE, RENAME_WHITEOUT */
int fs_rename(struct fs *fs, const struct fs_ctx *ctx, uint64_t parent, const char *name, uint64_t newparent,
              const char *newname, unsigned flags);

/* flags are open(2) flags as the guest gave them (O_ACCMODE, O_APPEND, O_TRUNC, O_DIRECT, ...).
 * Device nodes, FIFOs and sockets are never opened: -EACCES (they can still be created and stat'ed). */
int fs_open(struct fs *fs, const struct fs_ctx *ctx, uint64_t nodeid, int flags, uint64_t *fh);
int fs_create(struct fs *fs, const struct fs_ctx *ctx, uint64_t parent, const char *name, mode_t mode, int flags,
              struct fs_entry *e, uint64_t *fh);
/* O_TMPFILE in directory parent: an unnamed file, returned as a new inode plus an open handle. */
int fs_tmpfile(struct fs *fs, const struct fs_ctx *ctx, uint64_t parent, mode_t mode, int flags,
               struct fs_entry *e, uint64_t *fh);
/* Reads into dst (straight into the caller's memory); returns bytes read. */
ssize_t fs_read(struct fs *fs, uint64_t fh, uint64_t off, size_t size, const struct iovec *dst, unsigned ndst);
/* kill_suidgid: clear setuid/setgid bits as the host kernel does for a write by an unprivileged process. */
ssize_t fs_write(struct fs *fs, const struct fs_ctx *ctx, uint64_t fh, uint64_t off, const struct iovec *src,
                 unsigned nsrc, bool kill_suidgid);
/* close(2) of one guest file descriptor: drops the POSIX locks of lock_owner. */
int fs_flush(struct fs *fs, uint64_t nodeid, uint64_t fh, uint64_t lock_owner);
int fs_release(struct fs *fs, uint64_t nodeid, uint64_t fh, bool release_flock, uint64_t lock_owner);
int fs_fsync(struct fs *fs, uint64_t nodeid, uint64_t fh, bool datasync);

int fs_opendir(struct fs *fs, const struct fs_ctx *ctx, uint64_t nodeid, uint64_t *fh);
/* Emits entries from offset on (0 = start; later offsets are next_off values it gave) until fill says full or
 * the directory ends. With plus, each entry but "." and ".." is looked up (one reference each, undone if fill
 * does not take it). */
int fs_readdir(struct fs *fs, const struct fs_ctx *ctx, uint64_t nodeid, uint64_t fh, uint64_t offset, bool plus,
               fs_dirent_fn fill, void *arg);
int fs_releasedir(struct fs *fs, uint64_t nodeid, uint64_t fh);
int fs_fsyncdir(struct fs *fs, uint64_t nodeid, uint64_t fh, bool datasync);

int fs_statfs(struct fs *fs, uint64_t nodeid, struct statvfs *out);
int fs_access(struct fs *fs, const struct fs_ctx *ctx, uint64_t nodeid, int mask);

/* flags: XATTR_CREATE, XATTR_REPLACE, and FS_XATTR_KILL_SGID: the guest says the caller setting
 * system.posix_acl_access is outside the file's group without CAP_FSETID, so S_ISGID goes (as on the host). */
#define FS_XATTR_KILL_SGID (1 << 16)
int fs_setxattr(struct fs *fs, const struct fs_ctx *ctx, uint64_t nodeid, const char *name, const void *value,
                size_t size, int flags);
/* size 0: return the value's size only. Too small a buffer: -ERANGE. */
ssize_t fs_getxattr(struct fs *fs, const struct fs_ctx *ctx, uint64_t nodeid, const char *name, void *buf,
                    size_t size);
ssize_t fs_listxattr(struct fs *fs, const struct fs_ctx *ctx, uint64_t nodeid, char *buf, size_t size);
int fs_removexattr(struct fs *fs, const struct fs_ctx *ctx, uint64_t nodeid, const char *name);

/* POSIX record locks, per lock_owner (l_pid on return: the holder's pid as the guest knows it, or 0).
 * fs_setlk with sleep may block until the lock is granted: the caller runs it where blocking is harmless. */
int fs_getlk(struct fs *fs, uint64_t nodeid, uint64_t fh, uint64_t lock_owner, struct flock *lk);
int fs_setlk(struct fs *fs, uint64_t nodeid, uint64_t fh, uint64_t lock_owner, const struct flock *lk, bool sleep);
/* flock(2) on the handle: op is LOCK_SH, LOCK_EX or LOCK_UN, possibly | LOCK_NB. */
int fs_flock(struct fs *fs, uint64_t nodeid, uint64_t fh, int op);

int fs_fallocate(struct fs *fs, uint64_t nodeid, uint64_t fh, int mode, uint64_t off, uint64_t len);
/* Returns the new offset (SEEK_SET, SEEK_CUR is not meaningful here, SEEK_END, SEEK_DATA, SEEK_HOLE). */
int64_t fs_lseek(struct fs *fs, uint64_t nodeid, uint64_t fh, int64_t off, int whence);
ssize_t fs_copy_file_range(struct fs *fs, uint64_t fh_in, uint64_t off_in, uint64_t fh_out, uint64_t off_out,
                           size_t len, unsigned flags);
int fs_syncfs(struct fs *fs);

/* What a new session (INIT) agreed that the file system must know. */
struct fs_session {
	bool guest_caches_writes; /* writeback caching: the guest also reads pages of files it opened write-only
	                           * (those are then opened read-write on the host) */
	bool dax_per_inode;       /* FUSE_HAS_INODE_DAX (dax=inode): the guest maps only files attr_dax marks */
	bool posix_acl;           /* FUSE_POSIX_ACL agreed: the guest enforces ACLs (else fs_config.posix_acl is idle:
	                           * --posix-acl=auto with a guest that cannot) */
};
void fs_session_start(struct fs *fs, const struct fs_session *s);

/* What the guest may keep of an open file or directory (FUSE's FOPEN_* in the protocol's words). */
struct fs_open_policy {
	bool direct_io;           /* no page cache for this open file: every read and write comes to us */
	bool keep_cache;          /* the page cache survives this open (nothing changes the file behind the guest) */
	bool cache_dir;           /* the directory's listing may be cached */
};
void fs_open_policy(const struct fs *fs, uint64_t nodeid, bool dir, struct fs_open_policy *out);
/* How long the guest may trust the entry and the attributes of nodeid (0: ask every time). */
struct timespec fs_cache_timeout(const struct fs *fs, uint64_t nodeid);
/* Whether the guest keeps file data between opens, and so should drop it when the mtime it sees changes. */
bool fs_caches_data(const struct fs *fs);

/* The DAX window (src/fs/dax.c). The device's shared-memory region 0, if it has one, becomes the window when a
 * device is attached; its mappings are made through svc (which must outlive the attachment). Detaching forgets
 * every range without unmapping (the device is gone and dropped them). */
int fs_dax_attach(struct fs *fs, const struct dev_services *svc);
void fs_dax_detach(struct fs *fs);
/* Bytes of window usable for mappings (a multiple of FS_DAX_RANGE), 0 without one. */
uint64_t fs_dax_window(struct fs *fs);
/* A new session (INIT) starts: the device was reset, its mappings are gone; forget ours without unmapping. */
void fs_dax_session_start(struct fs *fs);
/* Maps FS_DAX_RANGE bytes of nodeid from foffset at moffset of the window (both multiples of FS_DAX_RANGE).
 * Never returns -EAGAIN (Linux would retry for ever): a device that cannot map gives -EIO. */
int fs_setupmapping(struct fs *fs, uint64_t nodeid, uint64_t foffset, uint64_t len, uint64_t moffset, bool write);
/* Removes the range at moffset, which must map nodeid, len FS_DAX_RANGE. */
int fs_removemapping(struct fs *fs, uint64_t nodeid, uint64_t moffset, uint64_t len);
/* Whether a file with these attributes gets FUSE_ATTR_DAX (dax_files policy). */
bool fs_attr_dax(const struct fs *fs, const struct stat *st);
void fs_dax_counts(struct fs *fs, uint64_t *ranges, uint64_t *parts, uint64_t *copies);
/* Leases taken on mapped files, and broken by host processes (each break turned the file's ranges into copies,
 * or, for a host reader, left them shared). */
void fs_dax_lease_counts(struct fs *fs, uint64_t *taken, uint64_t *broken);

/*
 * The operations the protocol room calls, as one table: the passthrough file system above is one implementation
 * (fs_passthrough_ops), a stub (tests/unit/fs_stub.c) is another, so protocol tests and the FUSE fuzzer can run
 * without host system calls. Each member has the meaning of the fs_ function of the same name; fs is the
 * implementation's own object (opaque here, cast back by the implementation).
 */
struct fs_ops {
	/* session */
	void (*session_start)(struct fs *fs, const struct fs_session *s);
	void (*reset)(struct fs *fs);
	/* names and attributes */
	int (*lookup)(struct fs *fs, const struct fs_ctx *ctx, uint64_t parent, const char *name, struct fs_entry *e);
	void (*forget)(struct fs *fs, uint64_t nodeid, uint64_t nlookup);
	int (*getattr)(struct fs *fs, uint64_t nodeid, uint64_t fh, struct stat *st);
	int (*getattr_btime)(struct fs *fs, uint64_t nodeid, uint64_t fh, struct stat *st, struct fs_btime *bt);
	int (*setattr)(struct fs *fs, const struct fs_ctx *ctx, uint64_t nodeid, uint64_t fh,
	               const struct fs_setattr *sa, struct stat *st);
	ssize_t (*readlink)(struct fs *fs, uint64_t nodeid, char *buf, size_t size);
	int (*mknod)(struct fs *fs, const struct fs_ctx *ctx, uint64_t parent, const char *name, mode_t mode,
	             dev_t rdev, struct fs_entry *e);
	int (*mkdir)(struct fs *fs, const struct fs_ctx *ctx, uint64_t parent, const char *name, mode_t mode,
	             struct fs_entry *e);
	int (*symlink)(struct fs *fs, const struct fs_ctx *ctx, uint64_t parent, const char *name, const char *target,
	               struct fs_entry *e);
	int (*link)(struct fs *fs, const struct fs_ctx *ctx, uint64_t nodeid, uint64_t newparent, const char *newname,
	            struct fs_entry *e);
	int (*unlink)(struct fs *fs, const struct fs_ctx *ctx, uint64_t parent, const char *name);
	int (*rmdir)(struct fs *fs, const struct fs_ctx *ctx, uint64_t parent, const char *name);
	int (*rename)(struct fs *fs, const struct fs_ctx *ctx, uint64_t parent, const char *name, uint64_t newparent,
	              const char *newname, unsigned flags);
	int (*statfs)(struct fs *fs, uint64_t nodeid, struct statvfs *out);
	int (*access)(struct fs *fs, const struct fs_ctx *ctx, uint64_t nodeid, int mask);
	/* open files */
	int (*open)(struct fs *fs, const struct fs_ctx *ctx, uint64_t nodeid, int flags, uint64_t *fh);
	int (*create)(struct fs *fs, const struct fs_ctx *ctx, uint64_t parent, const char *name, mode_t mode,
	              int flags, struct fs_entry *e, uint64_t *fh);
	int (*tmpfile)(struct fs *fs, const struct fs_ctx *ctx, uint64_t parent, mode_t mode, int flags,
	               struct fs_entry *e, uint64_t *fh);
	ssize_t (*read)(struct fs *fs, uint64_t fh, uint64_t off, size_t size, const struct iovec *dst, unsigned ndst);
	ssize_t (*write)(struct fs *fs, const struct fs_ctx *ctx, uint64_t fh, uint64_t off, const struct iovec *src,
	                 unsigned nsrc, bool kill_suidgid);
	int (*flush)(struct fs *fs, uint64_t nodeid, uint64_t fh, uint64_t lock_owner);
	int (*release)(struct fs *fs, uint64_t nodeid, uint64_t fh, bool release_flock, uint64_t lock_owner);
	int (*fsync)(struct fs *fs, uint64_t nodeid, uint64_t fh, bool datasync);
	int (*fallocate)(struct fs *fs, uint64_t nodeid, uint64_t fh, int mode, uint64_t off, uint64_t len);
	int64_t (*lseek)(struct fs *fs, uint64_t nodeid, uint64_t fh, int64_t off, int whence);
	ssize_t (*copy_file_range)(struct fs *fs, uint64_t fh_in, uint64_t off_in, uint64_t fh_out, uint64_t off_out,
	                           size_t len, unsigned flags);
	int (*syncfs)(struct fs *fs);
	/* directories */
	int (*opendir)(struct fs *fs, const struct fs_ctx *ctx, uint64_t nodeid, uint64_t *fh);
	int (*readdir)(struct fs *fs, const struct fs_ctx *ctx, uint64_t nodeid, uint64_t fh, uint64_t offset,
	               bool plus, fs_dirent_fn fill, void *arg);
	int (*releasedir)(struct fs *fs, uint64_t nodeid, uint64_t fh);
	int (*fsyncdir)(struct fs *fs, uint64_t nodeid, uint64_t fh, bool datasync);
	/* extended attributes */
	int (*setxattr)(struct fs *fs, const struct fs_ctx *ctx, uint64_t nodeid, const char *name, const void *value,
	                size_t size, int flags);
	ssize_t (*getxattr)(struct fs *fs, const struct fs_ctx *ctx, uint64_t nodeid, const char *name, void *buf,
	                    size_t size);
	ssize_t (*listxattr)(struct fs *fs, const struct fs_ctx *ctx, uint64_t nodeid, char *buf, size_t size);
	int (*removexattr)(struct fs *fs, const struct fs_ctx *ctx, uint64_t nodeid, const char *name);
	/* locks */
	int (*getlk)(struct fs *fs, uint64_t nodeid, uint64_t fh, uint64_t lock_owner, struct flock *lk);
	int (*setlk)(struct fs *fs, uint64_t nodeid, uint64_t fh, uint64_t lock_owner, const struct flock *lk,
	             bool sleep);
	int (*flock)(struct fs *fs, uint64_t nodeid, uint64_t fh, int op);
	/* the DAX window */
	uint64_t (*dax_window)(struct fs *fs);
	int (*setupmapping)(struct fs *fs, uint64_t nodeid, uint64_t foffset, uint64_t len, uint64_t moffset,
	                    bool write);
	int (*removemapping)(struct fs *fs, uint64_t nodeid, uint64_t moffset, uint64_t len);
	bool (*attr_dax)(const struct fs *fs, const struct stat *st);
	/* live migration */
	int (*state_save)(struct fs *fs, void **buf, size_t *len);
	int (*state_load)(struct fs *fs, const void *buf, size_t len);
	/* caching policy */
	void (*open_policy)(const struct fs *fs, uint64_t nodeid, bool dir, struct fs_open_policy *out);
	struct timespec (*cache_timeout)(const struct fs *fs, uint64_t nodeid);
	bool (*caches_data)(const struct fs *fs);
};

/* The passthrough file system's table (src/fs/fs_ops.c). */
extern const struct fs_ops fs_passthrough_ops;
/* The table to serve fs with: fs_passthrough_ops, or the same with its id maps applied at the boundary
 * (src/fs/idmap_ops.c) when it has any. */
const struct fs_ops *fs_ops_of(const struct fs *fs);

/* Live migration: what the guest refers to (node ids, lookup counts, open handles), as bytes from a stopped
 * device (*buf malloc'ed), and rebuilt from such bytes (hostile: checked) into a file system the guest has not
 * used yet (-EBUSY otherwise). A failed load leaves the file system as fs_reset does. */
int fs_state_save(struct fs *fs, void **buf, size_t *len);
int fs_state_load(struct fs *fs, const void *buf, size_t len);

/* Counters for tests and the resource-bound checks. */
void fs_counts(struct fs *fs, uint64_t *inodes, uint64_t *handles);

#endif

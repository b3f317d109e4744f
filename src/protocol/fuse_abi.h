/*
 * The FUSE wire format vufs speaks: the system's <linux/fuse.h> (Debian bookworm's is 7.38) plus what the kernel's
 * include/uapi/linux/fuse.h added in 7.39 to 7.45, with the kernel's names and values. Only what vufs reads,
 * writes or names in its README is here; a newer system header makes each block disappear.
 */
#ifndef VUFS_FUSE_ABI_H
#define VUFS_FUSE_ABI_H

#include <linux/fuse.h>
#include <stddef.h>
#include <stdint.h>

/* The minor version vufsd answers (and vufs-mount forwards): what the code below serves, not what the system
 * header happens to be. */
#define VUFS_FUSE_MINOR 45

#ifndef FUSE_CREATE_SUPP_GROUP
/* 7.38 as Linux 6.3 left it (bookworm's 7.38 is 6.1's, without these): the caller's supplementary group, as an
 * extension after the arguments of CREATE, MKNOD, MKDIR, SYMLINK and TMPFILE. */
#define FUSE_CREATE_SUPP_GROUP (1ULL << 34)
#define FUSE_EXT_GROUPS 32

struct fuse_supp_groups {
	uint32_t nr_groups;
	uint32_t groups[];
};
#endif

#if FUSE_KERNEL_MINOR_VERSION < 39
/* 7.39: shared mmap of FOPEN_DIRECT_IO files; FUSE_STATX. */
#define FUSE_DIRECT_IO_ALLOW_MMAP (1ULL << 36)
#define FUSE_STATX 52

/* Bit-for-bit the statx(2) ABI. */
struct fuse_sx_time {
	int64_t tv_sec;
	uint32_t tv_nsec;
	int32_t __reserved;
};

struct fuse_statx {
	uint32_t mask;
	uint32_t blksize;
	uint64_t attributes;
	uint32_t nlink;
	uint32_t uid;
	uint32_t gid;
	uint16_t mode;
	uint16_t __spare0[1];
	uint64_t ino;
	uint64_t size;
	uint64_t blocks;
	uint64_t attributes_mask;
	struct fuse_sx_time atime;
	struct fuse_sx_time btime;
	struct fuse_sx_time ctime;
	struct fuse_sx_time mtime;
	uint32_t rdev_major;
	uint32_t rdev_minor;
	uint32_t dev_major;
	uint32_t dev_minor;
	uint64_t __spare2[14];
};

struct fuse_statx_in {
	uint32_t getattr_flags;
	uint32_t reserved;
	uint64_t fh;
	uint32_t sx_flags;
	uint32_t sx_mask;
};

struct fuse_statx_out {
	uint64_t attr_valid;
	uint32_t attr_valid_nsec;
	uint32_t flags;
	uint64_t spare[2];
	struct fuse_statx stat;
};
#endif

#if FUSE_KERNEL_MINOR_VERSION < 40
/* 7.40: backing files (FOPEN_PASSTHROUGH, max_stack_depth), no-export, resend. */
#define FUSE_PASSTHROUGH (1ULL << 37)
#define FUSE_NO_EXPORT_SUPPORT (1ULL << 38)
#define FUSE_HAS_RESEND (1ULL << 39)
#define FUSE_NOTIFY_RESEND 7
#define FUSE_UNIQUE_RESEND (1ULL << 63)
#endif

#if FUSE_KERNEL_MINOR_VERSION < 41
/* 7.41: idmapped mounts; the header then carries FUSE_INVALID_UIDGID where no mapping exists. */
#define FUSE_ALLOW_IDMAP (1ULL << 40)
#define FUSE_INVALID_UIDGID ((uint32_t)(-1))
#endif

#if FUSE_KERNEL_MINOR_VERSION < 42
/* 7.42: requests over io_uring on /dev/fuse. */
#define FUSE_OVER_IO_URING (1ULL << 41)
#endif

#if FUSE_KERNEL_MINOR_VERSION < 43
/* 7.43: the kernel aborts the connection when a request is not answered in fuse_init_out.request_timeout s. */
#define FUSE_REQUEST_TIMEOUT (1ULL << 42)
#endif

#if FUSE_KERNEL_MINOR_VERSION < 44
/* 7.44 */
#define FUSE_NOTIFY_INC_EPOCH 8
#endif

#if FUSE_KERNEL_MINOR_VERSION < 45
/* 7.45: COPY_FILE_RANGE with a 64-bit count; the prune notification. */
#define FUSE_COPY_FILE_RANGE_64 53
#define FUSE_NOTIFY_PRUNE 9

struct fuse_copy_file_range_out {
	uint64_t bytes_copied;
};

struct fuse_notify_prune_out {
	uint32_t count;
	uint32_t padding;
	uint64_t spare;
};
#endif

/*
 * fuse_init_out as 7.40 laid out the words after flags2 (bookworm's header calls them unused[7]); same size, so
 * an INIT reply is the system struct with these read or written through the accessors below.
 */
struct fuse_init_out_tail {
	uint32_t max_stack_depth;  /* 7.40, with FUSE_PASSTHROUGH */
	uint16_t request_timeout;  /* 7.43, with FUSE_REQUEST_TIMEOUT: seconds */
	uint16_t unused[11];
};
_Static_assert(sizeof(struct fuse_init_out) ==
                   offsetof(struct fuse_init_out, flags2) + sizeof(uint32_t) + sizeof(struct fuse_init_out_tail),
               "fuse_init_out: 7.38 and 7.45 layouts have the same size");
#define FUSE_INIT_OUT_TAIL_OFFSET (offsetof(struct fuse_init_out, flags2) + sizeof(uint32_t))

#endif

/* vufsd's command line: virtiofsd's options (the Rust one), plus QEMU virtiofsd's -o form that libvirt uses. */
#ifndef VUFS_DAEMON_OPTIONS_H
#define VUFS_DAEMON_OPTIONS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "common/log.h"
#include "daemon/seccomp.h"
#include "daemon/userns_map.h"
#include "fs/fs.h"
#include "protocol/fuse_server.h"

enum sandbox_mode { SANDBOX_NAMESPACE, SANDBOX_CHROOT, SANDBOX_NONE };

#define VUFSD_NOFILE_DEFAULT UINT64_MAX

struct vufsd_options {
	const char *socket_path;
	const char *socket_group;
	int fd;                       /* inherited listening socket, or -1 */
	const char *shared_dir;
	enum fs_cache_mode cache;
	bool writeback, readdirplus, xattr, posix_lock, flock, allow_direct_io, killpriv_v2, allow_mmap;
	bool announce_submounts;       /* FUSE_SUBMOUNTS, FUSE_ATTR_SUBMOUNT */
	bool readonly;                 /* every change fails with EROFS */
	bool posix_acl;                /* FUSE_POSIX_ACL: the guest enforces ACLs we store on the host (needs xattr) */
	bool security_label;           /* FUSE_SECURITY_CTX: new nodes get the guest's security context (needs xattr) */
	bool posix_acl_auto, security_label_auto; /* =auto: a guest without the feature is served without it */
	bool no_xattr;                 /* --no-xattr / -o no_xattr given last: what implies xattr is refused */
	const char *xattrmap_rules;    /* --xattrmap, or NULL */
	struct xattrmap *xattrmap;     /* its rules, parsed by vufsd_parse_options; freed by vufsd_free_options */
	enum log_level log_level;
	bool syslog;
	bool print_capabilities, version, help;
	uint64_t rlimit_nofile;       /* 0: leave as is; VUFSD_NOFILE_DEFAULT: fs.nr_open (as virtiofsd) */
	enum sandbox_mode sandbox;
	enum seccomp_mode seccomp;
	const char *modcaps;          /* "+cap,-cap" adjustments, or NULL */
	unsigned queues;              /* request queues offered */
	unsigned thread_pool_size;    /* --thread-pool-size: worker threads for the request queues (0, 1: none) */
	unsigned poll_us;
	const char *tag;              /* --tag: answered in the config space (GET_CONFIG), or NULL */
	uint64_t dax_window;          /* bytes of shared-memory region 0 (0: no window) */
	enum fs_dax_files dax_files;
	enum fs_dax_coherence dax_coherence;
	uint16_t request_timeout;     /* seconds offered as FUSE_REQUEST_TIMEOUT (0: not offered) */
	enum fs_migration_mode migration_mode;
	enum fs_inode_handles inode_file_handles;
	enum fs_migration_on_error migration_on_error;
	bool migration_verify_handles;
	struct fs_idmap uid_map, gid_map;     /* --translate-uid, --translate-gid */
	struct userns_map ns_uid_map, ns_gid_map; /* --uid-map, --gid-map: an unprivileged vufsd's user namespace */
	bool preserve_noatime;        /* pass the guest's O_NOATIME to the host (else dropped, as virtiofsd) */
	char *owned[8];               /* copies of -o arguments that fields point into */
	unsigned nowned;
};

#define VUFSD_DAX_WINDOW_MAX (64ull << 30)
#define VUFSD_TAG_MAX 36          /* struct virtio_fs_config's tag[] */

/* Fills opts from argv. Returns 0, or -1 after printing why. */
int vufsd_parse_options(int argc, char **argv, struct vufsd_options *opts);
void vufsd_usage(FILE *out);
void vufsd_free_options(struct vufsd_options *opts);

#endif

/*
 * Caller credentials for operations that create files.
 *
 * fsuid/fsgid and the supplementary group list are per thread in the kernel, but glibc's setfsuid() et al. and
 * setgroups() broadcast the change to every thread of the process; the raw system calls do not, so only those
 * are used here. Leaving fsuid 0 also clears CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER,
 * CAP_FSETID, CAP_MKNOD, ... from the thread's effective set, and setting it back to 0 restores them: so a file
 * created in a setgid directory by a caller outside its group loses S_ISGID as on the host (CVE-2022-0358), and
 * permission checks are the host's. Supplementary groups are dropped once per thread, lazily, so that the
 * daemon's own groups never count for the caller; a creating request that carries the caller's supplementary
 * group (FUSE_CREATE_SUPP_GROUP) gets exactly that one for its duration, so the host decides setgid inheritance
 * as it would for the caller.
 */
#include "fs/fs_internal.h"

#include "common/log.h"
#include "common/util.h"

#include <errno.h>
#include <linux/capability.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifdef SYS_setfsuid32
#define SYS_SETFSUID SYS_setfsuid32
#define SYS_SETFSGID SYS_setfsgid32
#else
#define SYS_SETFSUID SYS_setfsuid
#define SYS_SETFSGID SYS_setfsgid
#endif
#ifdef SYS_setgroups32
#define SYS_SETGROUPS SYS_setgroups32
#else
#define SYS_SETGROUPS SYS_setgroups
#endif

static __thread bool groups_dropped;
/* Whether this thread has its own umask (and working directory): see set_caller_umask. */
static __thread bool fs_unshared;
/* 1 when this thread's fsuid and fsgid are 0 outside creds_enter/creds_leave, 0 when not, -1 before the first
 * look: a root caller then needs no switch at all (8 system calls saved per creating request). */
static __thread int at_root = -1;

/* setfsuid/setfsgid return the previous id and cannot fail visibly; an invalid id (-1) reads the current one. */
static uid_t set_fsuid(uid_t uid)
{
	return (uid_t)syscall(SYS_SETFSUID, uid);
}

static gid_t set_fsgid(gid_t gid)
{
	return (gid_t)syscall(SYS_SETFSGID, gid);
}

int creds_enter(struct fs *fs, const struct fs_ctx *ctx, struct fs_creds *saved)
{
	saved->switched = saved->grouped = saved->masked = false;
	if (!ctx || !fs->switch_creds)
		return 0;
	if (at_root < 0)
		at_root = set_fsuid((uid_t)-1) == 0 && set_fsgid((gid_t)-1) == 0;
	if (at_root && ctx->uid == 0 && ctx->gid == 0)
		return 0;
	if (!groups_dropped) {
		if (syscall(SYS_SETGROUPS, 0, NULL) < 0) {
			int err = errno;
			log_err("fs: cannot drop supplementary groups: %d", err);
			return -err;
		}
		groups_dropped = true;
	}
	if (ctx->has_supp_gid) {
		gid_t g = ctx->supp_gid;
		if (syscall(SYS_SETGROUPS, 1, &g) < 0)
			return neg_errno();
		saved->grouped = true;
	}
	saved->old_gid = set_fsgid(ctx->gid);
	saved->old_uid = set_fsuid(ctx->uid);
	saved->switched = true;
	if (set_fsgid((gid_t)-1) != ctx->gid || set_fsuid((uid_t)-1) != ctx->uid) {
		/* An id the kernel refuses (say, one not mapped in our user namespace). */
		creds_leave(saved);
		return -EPERM;
	}
	return 0;
}

void creds_leave(struct fs_creds *saved)
{
	if (saved->masked) {
		umask(0);
		saved->masked = false;
	}
	if (saved->grouped && syscall(SYS_SETGROUPS, 0, NULL) < 0) {
		/* The next caller would create with this one's group: a hole; cannot happen with CAP_SETGID. */
		log_err("fs: cannot drop the caller's supplementary group");
		abort();
	}
	saved->grouped = false;
	if (!saved->switched)
		return;
	set_fsuid(saved->old_uid);
	set_fsgid(saved->old_gid);
	saved->switched = false;
	if (set_fsuid((uid_t)-1) != saved->old_uid || set_fsgid((gid_t)-1) != saved->old_gid) {
		/* Running on with a guest's ids would be a hole; this cannot happen with CAP_SETUID/CAP_SETGID. */
		log_err("fs: cannot restore fsuid/fsgid");
		abort();
	}
}

/*
 * With POSIX ACLs the guest leaves the umask to us (FUSE_DONT_MASK): the host kernel applies it, or the parent's
 * default ACL instead of it, as it would for a local process. The umask is per process unless the thread has its
 * own fs_struct, so the thread leaves the shared one the first time (as virtiofsd's workers do); the umask is 0
 * whenever no creation is under way.
 */
static int set_caller_umask(const struct fs_ctx *ctx, struct fs_creds *saved)
{
	if (!ctx || !(ctx->umask & 0777))
		return 0;
	if (!fs_unshared) {
		if (unshare(CLONE_FS) < 0) {
			int err = errno;
			log_err("fs: cannot give this thread its own umask: %d", err);
			return -err;
		}
		fs_unshared = true;
	}
	umask(ctx->umask & 0777);
	saved->masked = true;
	return 0;
}

/*
 * Creating a name as the caller: the guest kernel has already checked the caller's right to do it
 * (virtio-fs mounts always use default_permissions), including through supplementary groups, of which FUSE tells
 * us at most the parent directory's (FUSE_CREATE_SUPP_GROUP). So the host's directory permission check is
 * bypassed (CAP_DAC_OVERRIDE raised again on this thread), while ownership still comes from fsuid/fsgid and
 * CAP_FSETID stays dropped (setgid stripping, which that one group then decides as on the host).
 */
int creds_enter_creator(struct fs *fs, const struct fs_ctx *ctx, struct fs_creds *saved)
{
	int ret = creds_enter(fs, ctx, saved);
	if (ret == 0) {
		ret = set_caller_umask(ctx, saved);
		if (ret < 0)
			creds_leave(saved);
	}
	if (ret < 0 || !saved->switched || ctx->uid == 0)
		return ret;
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
	struct __user_cap_data_struct data[2];
	if (syscall(SYS_capget, &hdr, data) == 0 && (data[0].permitted & (1u << CAP_DAC_OVERRIDE))) {
		data[0].effective |= 1u << CAP_DAC_OVERRIDE;
		syscall(SYS_capset, &hdr, data); /* per thread; failing only means host checks apply */
	}
	return 0;
}

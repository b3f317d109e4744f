#include "daemon/sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "daemon/caps.h"
#include "daemon/seccomp.h"
#include "daemon/userns.h"

static int fail(const char *step, const char *why)
{
	int rc = neg_errno();
	log_err("sandbox: %s failed: %s. %s", step, strerror(-rc), why);
	return rc;
}

/* The parent stays outside, waits for the sandboxed child and exits with its status (service managers and
 * libvirt watch the pid they started). */
static void wait_for_child(pid_t child, const char *socket_path)
{
	int status;
	while (waitpid(child, &status, 0) < 0) {
		if (errno != EINTR)
			_exit(1);
	}
	if (socket_path)
		unlink(socket_path);
	/* A child killed by a signal (seccomp's SIGSYS, say) must not look like an ordinary error exit. */
	_exit(WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
}

/* Set once before the handler is installed; read only by it. */
static pid_t sandboxed_child = -1;

static void forward_signal(int sig)
{
	if (sandboxed_child > 0)
		kill(sandboxed_child, sig);
}

/* Signals the VMM or an administrator sends to us must reach the child; its exit status is ours. */
static void stay_outside(pid_t child, const char *socket_path)
{
	sandboxed_child = child;
	struct sigaction sa = { .sa_handler = forward_signal };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	wait_for_child(child, socket_path);
}

/*
 * Not root: the namespaces are created as root of a user namespace (daemon/userns.h). The parent stays outside it
 * with the caller's ids, which may own nothing the namespace's root does: it is the one that can remove the socket.
 */
static int enter_user_namespace(const struct vufsd_options *o)
{
	pid_t child;
	int rc = userns_fork(&o->ns_uid_map, &o->ns_gid_map, &child);
	if (rc < 0)
		return rc;
	if (child > 0)
		stay_outside(child, o->socket_path);
	return 0;
}

static int enter_namespaces(const struct vufsd_options *o)
{
	bool userns = geteuid() != 0;
	if (userns && enter_user_namespace(o) < 0)
		return -EPERM;
	/* Only the pid namespace is entered before the fork (it applies to children): the parent stays in the
	 * host's mount namespace, where pivot_root cannot move its root and the socket path still means the same. */
	if (unshare(CLONE_NEWPID) < 0)
		return fail("creating a pid namespace (unshare)",
		            "Run as root (or with CAP_SYS_ADMIN), or use --sandbox=chroot inside a container that cannot "
		            "create namespaces, or --sandbox=none.");
	pid_t child = fork();
	if (child < 0)
		return fail("fork", "");
	if (child > 0)
		stay_outside(child, userns ? NULL : o->socket_path);
	/* Our parent is outside the new pid namespace (getppid() says 0): if it dies, so do we. */
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (unshare(CLONE_NEWNS | CLONE_NEWNET) < 0)
		return fail("creating mount and network namespaces (unshare)", "");
	/* Slaves, not private: nothing we mount or unmount from here on reaches the host, but what the host mounts
	 * under a shared mount still reaches us. */
	if (mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) < 0)
		return fail("making mounts slaves of the host's", "");
	/* /proc/self/fd must name this namespace's processes. */
	if (mount("proc", "/proc", "proc", MS_NODEV | MS_NOEXEC | MS_NOSUID | MS_RELATIME, NULL) < 0)
		return fail("mounting /proc", "");
	return 0;
}

/*
 * Whether host mounts made under the shared directory from now on will reach us: only if the mount it lives on
 * is a slave here (of a shared mount on the host). Said once at start, as that is when it can still be changed.
 */
static void report_propagation(const char *dir)
{
	struct statx sx;
	char line[4096];
	bool slave = false;
	FILE *f;

	if (statx(AT_FDCWD, dir, 0, STATX_MNT_ID, &sx) < 0 || !(sx.stx_mask & STATX_MNT_ID) ||
	    !(f = fopen("/proc/self/mountinfo", "re")))
		return;
	while (fgets(line, sizeof(line), f)) {
		unsigned long long id;
		if (sscanf(line, "%llu", &id) != 1 || id != sx.stx_mnt_id)
			continue;
		/* Optional fields end at " - "; paths are escaped, so " master:" is a field. */
		char *end = strstr(line, " - ");
		if (end)
			*end = '\0';
		slave = strstr(line, " master:") != NULL;
		break;
	}
	fclose(f);
	if (!slave)
		log_info("sandbox: the shared directory is on a private mount of the host: file systems mounted inside "
		         "it after this point stay invisible to the guest (it sees the directory underneath). To see "
		         "them, make the host mount shared before starting vufsd (mount --make-shared MOUNTPOINT, or "
		         "mount --bind DIR DIR && mount --make-shared DIR), or use --sandbox=chroot");
}

/*
 * The shared directory is bind-mounted onto itself (with every mount inside it: MS_REC) before the file system
 * opens it, so the fs holds the root of that bind mount, which pivot_root then makes "/". Opened before the bind,
 * the fs would hold the directory on the mount under it, which pivot_into detaches from everything mounted on
 * top: the guest would see, and write into, the directories under the host's submounts.
 * The bind mount is a slave of the host mount it copies, if that one is shared: host mounts made later under the
 * shared directory propagate to it.
 */
static int bind_shared_dir(const char *dir)
{
	if (mount(dir, dir, NULL, MS_BIND | MS_REC, NULL) < 0)
		return fail("bind-mounting the shared directory", "");
	report_propagation(dir);
	return 0;
}

int sandbox_enter(const struct vufsd_options *o)
{
	if (o->sandbox != SANDBOX_NAMESPACE)
		return 0;
	int rc = enter_namespaces(o);
	return rc < 0 ? rc : bind_shared_dir(o->shared_dir);
}

/* Makes the shared directory "/" and forgets the old root entirely. */
static int pivot_into(const char *dir)
{
	int oldroot = open("/", O_DIRECTORY | O_RDONLY | O_CLOEXEC);
	int newroot = open(dir, O_DIRECTORY | O_RDONLY | O_CLOEXEC);
	int rc = 0;

	if (oldroot < 0 || newroot < 0) {
		rc = fail("opening the old and new root", "");
		goto out;
	}
	/* newroot is the root of bind_shared_dir's mount. */
	if (fchdir(newroot) < 0 || syscall(SYS_pivot_root, ".", ".") < 0) {
		rc = fail("pivot_root into the shared directory", "");
		goto out;
	}
	/* The old root is stacked under the new one at "."; detach it. */
	if (fchdir(oldroot) < 0 || mount("", ".", "", MS_SLAVE | MS_REC, NULL) < 0 || umount2(".", MNT_DETACH) < 0 ||
	    fchdir(newroot) < 0) {
		rc = fail("detaching the old root", "");
		goto out;
	}
out:
	if (oldroot >= 0)
		close(oldroot);
	if (newroot >= 0)
		close(newroot);
	return rc;
}

static int chroot_into(const char *dir)
{
	if (chroot(dir) < 0 || chdir("/") < 0)
		return fail("chroot into the shared directory", "chroot needs root (CAP_SYS_CHROOT).");
	return 0;
}

int sandbox_confine(const struct vufsd_options *o)
{
	int rc = 0;
	if (o->sandbox == SANDBOX_NAMESPACE)
		rc = pivot_into(o->shared_dir);
	else if (o->sandbox == SANDBOX_CHROOT)
		rc = chroot_into(o->shared_dir);
	if (rc == 0)
		rc = caps_drop(o->modcaps, o->migration_mode == FS_MIGRATE_FILE_HANDLES ||
		                           o->inode_file_handles != FS_HANDLES_NEVER);
	if (rc == 0)
		rc = seccomp_install(o->seccomp);
	return rc;
}

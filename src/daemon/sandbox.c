#include "daemon/sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "daemon/caps.h"
#include "daemon/seccomp.h"

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

static int enter_namespaces(const char *socket_path)
{
	/* Only the pid namespace is entered before the fork (it applies to children): the parent stays in the
	 * host's mount namespace, where pivot_root cannot move its root and the socket path still means the same. */
	if (unshare(CLONE_NEWPID) < 0)
		return fail("creating a pid namespace (unshare)",
		            "Run as root (or with CAP_SYS_ADMIN), or use --sandbox=chroot inside a container that cannot "
		            "create namespaces, or --sandbox=none.");
	pid_t child = fork();
	if (child < 0)
		return fail("fork", "");
	if (child > 0) {
		/* Signals the VMM or an administrator sends to us must reach the daemon. */
		sandboxed_child = child;
		struct sigaction sa = { .sa_handler = forward_signal };
		sigemptyset(&sa.sa_mask);
		sigaction(SIGTERM, &sa, NULL);
		sigaction(SIGINT, &sa, NULL);
		sigaction(SIGHUP, &sa, NULL);
		wait_for_child(child, socket_path);
	}
	/* Our parent is outside the new pid namespace (getppid() says 0): if it dies, so do we. */
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (unshare(CLONE_NEWNS | CLONE_NEWNET) < 0)
		return fail("creating mount and network namespaces (unshare)", "");
	/* Nothing we mount from here on may propagate back to the host. */
	if (mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) < 0)
		return fail("making mounts private", "");
	/* /proc/self/fd must name this namespace's processes. */
	if (mount("proc", "/proc", "proc", MS_NODEV | MS_NOEXEC | MS_NOSUID | MS_RELATIME, NULL) < 0)
		return fail("mounting /proc", "");
	return 0;
}

int sandbox_enter(const struct vufsd_options *o)
{
	return o->sandbox == SANDBOX_NAMESPACE ? enter_namespaces(o->socket_path) : 0;
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
	if (mount(dir, dir, NULL, MS_BIND | MS_REC, NULL) < 0) {
		rc = fail("bind-mounting the shared directory", "");
		goto out;
	}
	close(newroot);
	newroot = open(dir, O_DIRECTORY | O_RDONLY | O_CLOEXEC); /* the bind mount's root, not the directory under it */
	if (newroot < 0 || fchdir(newroot) < 0 || syscall(SYS_pivot_root, ".", ".") < 0) {
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
		rc = caps_drop(o->modcaps);
	if (rc == 0)
		rc = seccomp_install(o->seccomp);
	return rc;
}

#include "daemon/userns.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"

extern char **environ;

/* What one kind of id needs: its map file's and helper's names, and the caller's own id. */
struct id_kind {
	const char *name;      /* "uid" or "gid" */
	const char *helper;    /* newuidmap or newgidmap */
	const char *option;    /* --uid-map or --gid-map */
	uint32_t own;
};

static int write_file(pid_t pid, const char *file, const char *text)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, file);
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return neg_errno();
	ssize_t n = write(fd, text, strlen(text));
	int ret = n == (ssize_t)strlen(text) ? 0 : n < 0 ? neg_errno() : -EIO;
	close(fd);
	return ret;
}

/*
 * Our own id mapped once is what the kernel lets anyone write. For gids only after setgroups is denied: otherwise
 * the namespace's root could drop a group the host uses to deny us access (user_namespaces(7)).
 */
static int write_own_map(pid_t pid, const struct id_kind *k, const struct userns_extent *e)
{
	char line[48], file[16];
	int ret = 0;

	if (!strcmp(k->name, "gid"))
		ret = write_file(pid, "setgroups", "deny");
	snprintf(line, sizeof(line), "%u %u 1\n", e->inside, e->outside);
	snprintf(file, sizeof(file), "%s_map", k->name);
	if (ret == 0)
		ret = write_file(pid, file, line);
	if (ret < 0)
		log_err("sandbox: writing the user namespace's %s map failed: %s", k->name, strerror(-ret));
	return ret;
}

static int wait_helper(pid_t helper, const struct id_kind *k)
{
	int status;
	while (waitpid(helper, &status, 0) < 0) {
		if (errno != EINTR)
			return neg_errno();
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	log_err("sandbox: %s refused the %s ranges (its message is above): each range must be the caller's own id or "
	        "lie in what /etc/sub%s grants the caller", k->helper, k->option, k->name);
	return -EPERM;
}

/* newuidmap PID NS_ID HOST_ID COUNT ...: the setuid helper that checks the ranges against /etc/subuid. */
static int run_helper(pid_t pid, const struct id_kind *k, const struct userns_map *m)
{
	char (*num)[12] = calloc(1 + 3 * (size_t)m->n, sizeof(*num));
	char **argv = calloc(3 + 3 * (size_t)m->n, sizeof(*argv));
	pid_t helper;
	int ret;

	if (!num || !argv) {
		free(num);
		free(argv);
		return -ENOMEM;
	}
	argv[0] = (char *)k->helper;
	snprintf(num[0], sizeof(num[0]), "%d", (int)pid);
	argv[1] = num[0];
	for (unsigned i = 0; i < m->n; i++) {
		const uint32_t v[3] = { m->ext[i].inside, m->ext[i].outside, m->ext[i].count };
		for (unsigned j = 0; j < 3; j++) {
			snprintf(num[1 + 3 * i + j], sizeof(num[0]), "%u", v[j]);
			argv[2 + 3 * i + j] = num[1 + 3 * i + j];
		}
	}
	ret = -posix_spawnp(&helper, k->helper, NULL, NULL, argv, environ);
	if (ret < 0)
		log_err("sandbox: cannot run %s for %s: %s%s", k->helper, k->option, strerror(-ret),
		        ret == -ENOENT ? " (install the uidmap package)" : "");
	else
		ret = wait_helper(helper, k);
	free(num);
	free(argv);
	return ret;
}

/* virtiofsd's rule: the helper only when the map is more than our own id once; without a map, our own id. */
static int write_map(pid_t pid, const struct id_kind *k, const struct userns_map *m)
{
	struct userns_extent own = { .inside = k->own, .outside = k->own, .count = 1 };
	if (!userns_map_only_own(m, k->own))
		return run_helper(pid, k, m);
	return write_own_map(pid, k, m->n ? &m->ext[0] : &own);
}

/* Root of the namespace can create the others and switch to any mapped id per request. gid first: after the
 * uid changes, changing the gid would still work (we hold every capability here), but this is the usual order. */
static void become_root(void)
{
	if (setresgid(0, 0, 0) < 0)
		log_warn("sandbox: gid 0 is not mapped in the user namespace (--gid-map): files are created with the "
		         "daemon's own gid");
	if (setresuid(0, 0, 0) < 0)
		log_warn("sandbox: uid 0 is not mapped in the user namespace (--uid-map): the daemon keeps its own uid "
		         "and cannot take the guest's ids");
}

/* The child: a new user namespace, told to the parent on ready; then it waits for go, which the parent sends
 * once the maps are written (a closed pipe instead: the parent failed and said why). */
static void child_enter(int ready, int go)
{
	char c = 'u';
	if (unshare(CLONE_NEWUSER) < 0) {
		log_err("sandbox: creating a user namespace (unshare) failed: %s. Unprivileged user namespaces may be "
		        "disabled (sysctl kernel.unprivileged_userns_clone, user.max_user_namespaces); run as root, or "
		        "use --sandbox=none", strerror(errno));
		_exit(1);
	}
	if (write(ready, &c, 1) != 1 || read(go, &c, 1) != 1)
		_exit(1);
	close(ready);
	close(go);
	become_root();
	/* Set after the change of ids, which clears it. */
	prctl(PR_SET_PDEATHSIG, SIGTERM);
}

static int parent_map(pid_t child, int ready, int go, const struct userns_map *uids, const struct userns_map *gids)
{
	const struct id_kind uid = { "uid", "newuidmap", "--uid-map", (uint32_t)geteuid() };
	const struct id_kind gid = { "gid", "newgidmap", "--gid-map", (uint32_t)getegid() };
	char c;
	int ret = read(ready, &c, 1) == 1 ? 0 : -ECHILD; /* the child said why */

	if (ret == 0)
		ret = write_map(child, &uid, uids);
	if (ret == 0)
		ret = write_map(child, &gid, gids);
	if (ret == 0 && write(go, &c, 1) != 1)
		ret = neg_errno();
	return ret;
}

int userns_fork(const struct userns_map *uids, const struct userns_map *gids, pid_t *child)
{
	int ready[2], go[2];

	if (pipe2(ready, O_CLOEXEC) < 0)
		return neg_errno();
	if (pipe2(go, O_CLOEXEC) < 0) {
		int ret = neg_errno();
		close(ready[0]);
		close(ready[1]);
		return ret;
	}
	*child = fork();
	if (*child == 0) {
		close(ready[0]);
		close(go[1]);
		child_enter(ready[1], go[0]);
		return 0;
	}
	close(ready[1]);
	close(go[0]);
	int ret = *child < 0 ? neg_errno() : parent_map(*child, ready[0], go[1], uids, gids);
	if (*child < 0)
		log_err("sandbox: fork failed: %s", strerror(-ret));
	close(ready[0]);
	close(go[1]);
	if (ret < 0 && *child > 0) {
		waitpid(*child, NULL, 0); /* it ends on the closed pipe */
		*child = -1;
	}
	return ret;
}

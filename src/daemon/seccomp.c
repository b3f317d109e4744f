#include "daemon/seccomp.h"

#include <errno.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"

static const char *const allowed[] = {
	/* files on behalf of the guest */
	"openat", "openat2", "close", "close_range", "read", "write", "readv", "writev", "pread64", "pwrite64",
	"preadv", "pwritev", "preadv2", "pwritev2", "lseek", "fstat", "newfstatat", "statx", "fstatfs", "statfs",
	"getdents64", "mkdirat", "mknodat", "symlinkat", "linkat", "unlinkat", "renameat", "renameat2", "readlinkat",
	"fchmod", "fchmodat", "fchown", "fchownat", "ftruncate", "utimensat", "fsync", "fdatasync", "sync_file_range",
	"syncfs", "fallocate", "copy_file_range", "faccessat", "faccessat2", "fgetxattr", "fsetxattr", "flistxattr",
	"fremovexattr", "getxattr", "setxattr", "listxattr", "removexattr", "lgetxattr", "lsetxattr", "llistxattr",
	"lremovexattr", "fchdir", "fcntl", "flock", "dup", "dup3", "umask", "ioctl",
	/* live migration: finding files again by handle */
	"name_to_handle_at", "open_by_handle_at",
	/* credentials per request */
	"setfsuid", "setfsgid", "setgroups", "setresuid", "setresgid", "getuid", "geteuid", "getgid", "getegid",
	"capget", "capset",
	/* vhost-user, virtqueues, threads, memory */
	"recvmsg", "sendmsg", "sendto", "recvfrom", "shutdown", "accept4", "poll", "ppoll", "epoll_wait",
	"epoll_pwait", "eventfd2", "memfd_create", "mmap", "munmap", "mprotect", "madvise", "mremap", "brk", "futex", "clone",
	"clone3", "set_robust_list", "rseq", "exit", "exit_group", "gettid", "getpid", "tgkill", "sched_yield",
	"sched_getaffinity", "clock_gettime", "clock_nanosleep", "nanosleep", "getrandom", "rt_sigaction",
	"rt_sigprocmask", "rt_sigreturn", "sigaltstack", "restart_syscall", "membarrier", "prctl", "gettimeofday",
	"rt_sigtimedwait" /* the DAX lease thread */,
	"time", "getrlimit", "prlimit64", "uname", "socket", "connect",
};

int seccomp_parse_mode(const char *s, enum seccomp_mode *out)
{
	static const char *const names[] = { "kill", "log", "trap", "none" };
	for (unsigned i = 0; i < ARRAY_SIZE(names); i++) {
		if (!strcmp(s, names[i])) {
			*out = (enum seccomp_mode)i;
			return 0;
		}
	}
	return -1;
}

/* trap mode: name the call that was refused, then die, so the allowlist can be completed. */
static void on_sigsys(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)uc;
	char msg[96];
	char *name = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, si->si_syscall);
	int n = snprintf(msg, sizeof(msg), "vufsd: seccomp refused system call %d (%s)\n", si->si_syscall,
	                 name ? name : "?");
	if (n > 0 && write(STDERR_FILENO, msg, (size_t)n) < 0)
		_exit(31);
	_exit(31);
}

int seccomp_install(enum seccomp_mode mode)
{
	uint32_t deny;
	switch (mode) {
	case SECCOMP_NONE:
		return 0;
	case SECCOMP_LOG:
		deny = SCMP_ACT_LOG;
		break;
	case SECCOMP_TRAP: {
		struct sigaction sa = { .sa_sigaction = on_sigsys, .sa_flags = SA_SIGINFO };
		sigemptyset(&sa.sa_mask);
		sigaction(SIGSYS, &sa, NULL);
		deny = SCMP_ACT_TRAP;
		break;
	}
	case SECCOMP_KILL:
	default:
		deny = SCMP_ACT_KILL_PROCESS;
		break;
	}
	scmp_filter_ctx ctx = seccomp_init(deny);
	if (!ctx)
		return -ENOMEM;
	int rc = 0;
	for (size_t i = 0; i < ARRAY_SIZE(allowed) && rc == 0; i++) {
		int nr = seccomp_syscall_resolve_name(allowed[i]);
		if (nr == __NR_SCMP_ERROR)
			continue; /* not on this architecture */
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0);
	}
	/* A thread's own umask for creations under POSIX ACLs (fs/creds.c): unshare, and only of CLONE_FS. */
	if (rc == 0)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(unshare), 1, SCMP_A0(SCMP_CMP_EQ, CLONE_FS));
	if (rc == 0)
		rc = seccomp_load(ctx);
	seccomp_release(ctx);
	if (rc < 0)
		log_err("installing the seccomp filter failed: %s", strerror(-rc));
	return rc;
}

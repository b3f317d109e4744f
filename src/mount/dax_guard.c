#include "mount/dax_guard.h"

#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <string.h>

/*
 * Process-wide because a signal handler can only find it there: the window's bounds are written once by
 * dax_guard_init before the reader threads start, and only read afterwards. Each thread arms its own jump buffer
 * (thread-local), so a fault in one thread's copy returns into that copy and no other.
 */
static uintptr_t win_base, win_end;
static __thread sigjmp_buf *armed;

static void on_fault(int sig, siginfo_t *si, void *uctx)
{
	(void)uctx;
	uintptr_t addr = (uintptr_t)si->si_addr;
	if (armed && addr >= win_base && addr < win_end) {
		sigjmp_buf *jb = armed;
		armed = NULL;
		siglongjmp(*jb, 1);
	}
	/* Not a copy of ours: the default action, as if we had never been here (the access faults again). */
	signal(sig, SIG_DFL);
}

int dax_guard_init(const void *base, uint64_t size)
{
	struct sigaction sa = { .sa_sigaction = on_fault, .sa_flags = SA_SIGINFO | SA_NODEFER };
	sigemptyset(&sa.sa_mask);
	win_base = (uintptr_t)base;
	win_end = win_base + size;
	if (sigaction(SIGBUS, &sa, NULL) < 0 || sigaction(SIGSEGV, &sa, NULL) < 0)
		return -errno;
	return 0;
}

int dax_guard_copy(void *dst, const void *src, size_t n)
{
	sigjmp_buf jb;
	/* Nothing here lives across the jump but jb itself: no local needs to be volatile. */
	if (sigsetjmp(jb, 1))
		return -EFAULT;
	armed = &jb;
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	memcpy(dst, src, n);
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	armed = NULL;
	return 0;
}

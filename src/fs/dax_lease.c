/*
 * Write leases on mapped files (docs/dax-design.md 2.8): the thread that hears them break.
 *
 * A file page the VMM maps into the DAX window disappears when a host process truncates the file, and QEMU 11.1
 * dies of the SIGBUS its next access raises. With a write lease (F_SETLEASE F_WRLCK) on the one open file
 * description the daemon and the VMM map the file through, the kernel makes any other open of the file, and any
 * truncate(2) of it, wait until the holder gives the lease up, and tells the holder first with a signal. dax.c then
 * turns the file's ranges into copies (or leaves them shared when the opener only reads) and gives the lease up.
 *
 * The signal (F_SETSIG, with the fd in si_fd) is sent to this thread alone (F_SETOWN_EX, F_OWNER_TID), which keeps
 * it blocked and takes it with sigtimedwait; so no handler runs and no other thread is interrupted. When too many
 * breaks are queued, the kernel sends SIGIO instead: then every leased fd is asked (F_GETLEASE). Both signals get a
 * handler that does nothing, process-wide, so a stray one never kills the daemon.
 *
 * Lock story: the thread's state is set before it runs and read-only after, but for stop (atomic). dax_lease_take
 * and dax_lease_release are plain fcntl calls on fds the caller owns (dax.c calls them under dax.mu).
 */
#include "fs/fs_internal.h"

#include "common/log.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* How soon a lease a host reader broke is asked for again (only while one is missing: no wake-ups otherwise). */
#define LEASE_RETRY_MS 20

struct dax_lease_thread {
	pthread_t thread;
	pid_t tid;
	bool stop;                /* atomic */
	struct fs *fs;
	pthread_mutex_t mu;       /* start-up handshake only */
	pthread_cond_t cond;
	bool ready;
};

static int lease_signal(void)
{
	return SIGRTMIN + 3;
}

static void ignore_signal(int sig)
{
	(void)sig;
}

static void wait_set(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, lease_signal());
	sigaddset(set, SIGIO);
}

static void *lease_main(void *arg)
{
	struct dax_lease_thread *t = arg;
	struct timespec retry = { 0, LEASE_RETRY_MS * 1000000L };
	sigset_t set;

	wait_set(&set);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	pthread_mutex_lock(&t->mu);
	t->tid = gettid();
	t->ready = true;
	pthread_cond_signal(&t->cond);
	pthread_mutex_unlock(&t->mu);

	bool exposed = false;
	while (!__atomic_load_n(&t->stop, __ATOMIC_ACQUIRE)) {
		siginfo_t info;
		int sig = exposed ? sigtimedwait(&set, &info, &retry) : sigwaitinfo(&set, &info);
		if (__atomic_load_n(&t->stop, __ATOMIC_ACQUIRE))
			break;
		if (sig == lease_signal() && info.si_code != SI_TKILL)
			dax_lease_broken(t->fs, info.si_fd);
		else if (sig == SIGIO)
			dax_lease_check_all(t->fs);
		if (sig >= 0 || errno == EAGAIN)
			exposed = dax_lease_retry(t->fs);
	}
	return NULL;
}

int dax_lease_start(struct fs *fs)
{
	struct sigaction sa = { .sa_handler = ignore_signal };
	struct dax_lease_thread *t;
	int ret;

	if (fs->dax.lease)
		return 0;
	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	sigemptyset(&sa.sa_mask);
	sigaction(lease_signal(), &sa, NULL);
	sigaction(SIGIO, &sa, NULL);
	t->fs = fs;
	pthread_mutex_init(&t->mu, NULL);
	pthread_cond_init(&t->cond, NULL);
	ret = -pthread_create(&t->thread, NULL, lease_main, t);
	if (ret < 0) {
		pthread_cond_destroy(&t->cond);
		pthread_mutex_destroy(&t->mu);
		free(t);
		return ret;
	}
	pthread_mutex_lock(&t->mu);
	while (!t->ready)
		pthread_cond_wait(&t->cond, &t->mu);
	pthread_mutex_unlock(&t->mu);
	fs->dax.lease = t;
	return 0;
}

void dax_lease_stop(struct fs *fs)
{
	struct dax_lease_thread *t = fs->dax.lease;

	if (!t)
		return;
	__atomic_store_n(&t->stop, true, __ATOMIC_RELEASE);
	pthread_kill(t->thread, lease_signal());
	pthread_join(t->thread, NULL);
	pthread_cond_destroy(&t->cond);
	pthread_mutex_destroy(&t->mu);
	free(t);
	fs->dax.lease = NULL;
}

bool dax_lease_take(struct fs *fs, int fd)
{
	struct dax_lease_thread *t = fs->dax.lease;
	struct f_owner_ex owner;

	if (!t)
		return false;
	owner = (struct f_owner_ex){ .type = F_OWNER_TID, .pid = t->tid };
	if (fcntl(fd, F_SETSIG, lease_signal()) < 0 || fcntl(fd, F_SETOWN_EX, &owner) < 0)
		return false;
	if (fcntl(fd, F_SETLEASE, F_WRLCK) < 0) {
		/* EAGAIN: another open file description exists (a host process, or one of the daemon's own). */
		if (errno != EAGAIN)
			log_debug("dax: no lease on fd %d: %s", fd, strerror(errno));
		return false;
	}
	return true;
}

void dax_lease_release(int fd)
{
	if (fcntl(fd, F_SETLEASE, F_UNLCK) < 0 && errno != EAGAIN)
		log_warn("dax: giving up the lease on fd %d: %s", fd, strerror(errno));
}

/*
 * vufs-hostile: a malicious VMM + guest for any vhost-user-fs backend.
 *
 *   vufs-hostile --socket=PATH --share=HOSTDIR [--only=GLOB[,GLOB...]] [--peer=NAME] [--list]
 *                [--timeout=MS] [--expect-exit] [--queues=N] [--backend-pid=PID] [--flood=N]
 *
 * Each check opens its own vhost-user connection (a backend that serves one connection, as vufsd and QEMU's
 * virtiofsd do, must be restarted between checks: the integration scripts run one --only=NAME per backend
 * instance). It sets up the device as QEMU does (vufs's frontend code: shared memfd, split virtqueues), sends
 * INIT as a guest would, attacks, and then verifies:
 *   - the backend still serves (a LOOKUP + GETATTR round trip) where the check demands it;
 *   - the host is unchanged: canary files outside the share untouched, nothing created outside it;
 *   - the backend never wrote outside the writable buffers it was given (canaries after every reply buffer)
 *     nor into device-readable buffers, and never returned a used entry we did not issue;
 *   - the backend process did not die from a signal (proc connector, when available), and with --expect-exit
 *     that it exits once the connection closes (a backend stuck in a blocking call would not).
 * Output: one line per check, "PASS name", "FAIL name: why" or "SKIP name: why" (with "NOTE name: ..." lines
 * before it saying what the backend did), then "N passed, N failed".
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <ftw.h>
#include <getopt.h>
#include <limits.h>
#include <linux/cn_proc.h>
#include <linux/connector.h>
#include <linux/fuse.h>
#include <linux/netlink.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "transport/vhost_user.h"
#include "transport/vq_driver.h"
#include "transport/vring.h"
#include "transport/vu_frontend.h"

/* Messages and paths are cut to fit their buffers on purpose. */
#pragma GCC diagnostic ignored "-Wformat-truncation"

/* ------------------------------------------------------------------------------------------------------------
 * Options and output
 * ------------------------------------------------------------------------------------------------------------ */

static struct {
	const char *socket, *share, *only, *peer;
	bool list, expect_exit;
	int timeout_ms;
	unsigned queues;       /* request queues */
	int backend_pid;       /* when known: the flood checks watch its fds and memory (0: not watched) */
	unsigned flood;        /* lookups of fuse.lookup_repeat */
} opt = { .peer = "backend", .timeout_ms = 10000, .queues = 1, .flood = 100000 };

static char share_dir[PATH_MAX], parent_dir[PATH_MAX], outside_dir[PATH_MAX], outside_base[64], esc_prefix[64];
static unsigned n_pass, n_fail, n_skip;

/* The check being run: its name, its verdict so far. */
static struct {
	const char *name;
	char fail[512];
	char skip[256];
	char notes[8][256];
	unsigned nnotes;
} cur;

static void __attribute__((format(printf, 1, 2))) failf(const char *fmt, ...)
{
	if (cur.fail[0])
		return; /* the first reason is the one that matters */
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cur.fail, sizeof(cur.fail), fmt, ap);
	va_end(ap);
}

static void __attribute__((format(printf, 1, 2))) skipf(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cur.skip, sizeof(cur.skip), fmt, ap);
	va_end(ap);
}

static void __attribute__((format(printf, 1, 2))) notef(const char *fmt, ...)
{
	if (cur.nnotes == sizeof(cur.notes) / sizeof(cur.notes[0]))
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cur.notes[cur.nnotes++], sizeof(cur.notes[0]), fmt, ap);
	va_end(ap);
}

static bool failed(void)
{
	return cur.fail[0] != 0;
}

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rnd64(void)
{
	uint64_t x = rng_state;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return rng_state = x;
}

static uint64_t fnv(const void *p, size_t n)
{
	const uint8_t *b = p;
	uint64_t h = 0xcbf29ce484222325ull;
	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 0x100000001b3ull;
	return h;
}

static const char *errname(int e)
{
	static __thread char buf[32];
	switch (e) {
#define E(x) case x: return #x;
	E(EPERM) E(ENOENT) E(EIO) E(ENXIO) E(E2BIG) E(EBADF) E(EAGAIN) E(ENOMEM) E(EACCES) E(EFAULT) E(EBUSY)
	E(EEXIST) E(EXDEV) E(ENODEV) E(ENOTDIR) E(EISDIR) E(EINVAL) E(ENFILE) E(EMFILE) E(EFBIG) E(ENOSPC)
	E(ESPIPE) E(EROFS) E(EMLINK) E(ERANGE) E(ENAMETOOLONG) E(ENOSYS) E(ENOTEMPTY) E(ELOOP) E(ENODATA)
	E(EPROTO) E(EBADMSG) E(EOVERFLOW) E(EOPNOTSUPP) E(ETIMEDOUT) E(ESTALE) E(ENOTCONN)
#undef E
	default:
		snprintf(buf, sizeof(buf), "errno %d", e);
		return buf;
	}
}

/* ------------------------------------------------------------------------------------------------------------
 * Watching the backend's processes: the proc connector reports every exit with its wait status, so a backend
 * killed by a signal is seen even inside a pid namespace whose parent maps the signal to an exit code.
 * ------------------------------------------------------------------------------------------------------------ */

#define MON_EVENTS 8192
static struct {
	int fd;
	bool ok;
	pthread_mutex_t lock;
	struct { pid_t pid, parent; uint32_t code; } ev[MON_EVENTS];
	unsigned n;
} mon = { .fd = -1, .lock = PTHREAD_MUTEX_INITIALIZER };

static void *mon_thread(void *arg)
{
	(void)arg;
	char buf[16384] __attribute__((aligned(NLMSG_ALIGNTO)));
	for (;;) {
		ssize_t n = recv(mon.fd, buf, sizeof(buf), 0);
		if (n < 0) {
			if (errno == EINTR || errno == ENOBUFS)
				continue;
			return NULL;
		}
		for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)n); h = NLMSG_NEXT(h, n)) {
			struct cn_msg *cn = NLMSG_DATA(h);
			struct proc_event ev, *pe = &ev;
			if ((size_t)h->nlmsg_len < NLMSG_LENGTH(sizeof(*cn)) + offsetof(struct proc_event, event_data))
				continue;
			memset(&ev, 0, sizeof(ev));
			size_t have = h->nlmsg_len - NLMSG_LENGTH(sizeof(*cn));
			memcpy(&ev, cn->data, have < sizeof(ev) ? have : sizeof(ev)); /* cn->data is not aligned */
			if (pe->what != PROC_EVENT_EXIT || pe->event_data.exit.process_pid != pe->event_data.exit.process_tgid)
				continue;
			pthread_mutex_lock(&mon.lock);
			mon.ev[mon.n % MON_EVENTS].pid = pe->event_data.exit.process_pid;
			mon.ev[mon.n % MON_EVENTS].code = pe->event_data.exit.exit_code;
			mon.ev[mon.n % MON_EVENTS].parent = pe->event_data.exit.parent_tgid;
			mon.n++;
			pthread_mutex_unlock(&mon.lock);
		}
	}
}

static void mon_start(void)
{
	mon.fd = socket(PF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_CONNECTOR);
	if (mon.fd < 0)
		return;
	int sz = 8 << 20;
	setsockopt(mon.fd, SOL_SOCKET, SO_RCVBUFFORCE, &sz, sizeof(sz));
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK, .nl_groups = CN_IDX_PROC };
	if (bind(mon.fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		goto fail;
	struct {
		struct nlmsghdr h;
		struct cn_msg cn;
		enum proc_cn_mcast_op op;
	} __attribute__((packed)) m = {
		.h = { .nlmsg_len = sizeof(m), .nlmsg_type = NLMSG_DONE, .nlmsg_pid = (uint32_t)getpid() },
		.cn = { .id = { CN_IDX_PROC, CN_VAL_PROC }, .len = sizeof(enum proc_cn_mcast_op) },
		.op = PROC_CN_MCAST_LISTEN,
	};
	if (send(mon.fd, &m, sizeof(m), 0) != (ssize_t)sizeof(m))
		goto fail;
	pthread_t t;
	if (pthread_create(&t, NULL, mon_thread, NULL))
		goto fail;
	pthread_detach(t);
	mon.ok = true;
	return;
fail:
	close(mon.fd);
	mon.fd = -1;
}

/* Adds to procs every process seen exiting whose parent is in procs (children forked after we looked). */
static unsigned mon_add_children(pid_t *procs, unsigned n, unsigned max)
{
	pthread_mutex_lock(&mon.lock);
	unsigned lo = mon.n > MON_EVENTS ? mon.n - MON_EVENTS : 0;
	for (bool grew = true; grew;) {
		grew = false;
		for (unsigned i = lo; i < mon.n && n < max; i++) {
			pid_t p = mon.ev[i % MON_EVENTS].pid, parent = mon.ev[i % MON_EVENTS].parent;
			bool have = false, parent_in = false;
			for (unsigned k = 0; k < n; k++) {
				have |= procs[k] == p;
				parent_in |= procs[k] == parent;
			}
			if (parent_in && !have) {
				procs[n++] = p;
				grew = true;
			}
		}
	}
	pthread_mutex_unlock(&mon.lock);
	return n;
}

/* The wait status of pid's exit, if seen. */
static bool mon_exit(pid_t pid, uint32_t *code)
{
	bool found = false;
	pthread_mutex_lock(&mon.lock);
	unsigned lo = mon.n > MON_EVENTS ? mon.n - MON_EVENTS : 0;
	for (unsigned i = mon.n; i-- > lo;) {
		if (mon.ev[i % MON_EVENTS].pid == pid) {
			*code = mon.ev[i % MON_EVENTS].code;
			found = true;
			break;
		}
	}
	pthread_mutex_unlock(&mon.lock);
	return found;
}

static pid_t ppid_of(pid_t pid)
{
	char path[64], buf[512];
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = 0;
	char *p = strrchr(buf, ')');
	int ppid;
	if (!p || sscanf(p + 1, " %*c %d", &ppid) != 1)
		return -1;
	return ppid;
}

/* pid and all its descendants (the sandboxed child of a backend that forks). */
static unsigned process_tree(pid_t root, pid_t *out, unsigned max)
{
	unsigned n = 0;
	out[n++] = root;
	for (unsigned i = 0; i < n && n < max; i++) {
		DIR *d = opendir("/proc");
		if (!d)
			break;
		struct dirent *de;
		while ((de = readdir(d)) && n < max) {
			if (!isdigit((unsigned char)de->d_name[0]))
				continue;
			pid_t p = atoi(de->d_name);
			if (ppid_of(p) == out[i])
				out[n++] = p;
		}
		closedir(d);
	}
	return n;
}

static const char *signame(int sig)
{
	static char buf[16];
	switch (sig) {
	case SIGSEGV: return "SIGSEGV";
	case SIGBUS: return "SIGBUS";
	case SIGABRT: return "SIGABRT";
	case SIGILL: return "SIGILL";
	case SIGFPE: return "SIGFPE";
	case SIGSYS: return "SIGSYS (seccomp)";
	case SIGKILL: return "SIGKILL";
	case SIGTERM: return "SIGTERM";
	case SIGTRAP: return "SIGTRAP";
	default:
		snprintf(buf, sizeof(buf), "signal %d", sig);
		return buf;
	}
}

/* ------------------------------------------------------------------------------------------------------------
 * The host side: canaries outside the share, the probe file inside, and a snapshot to compare against.
 * ------------------------------------------------------------------------------------------------------------ */

#define CANARY_TEXT "vufs-hostile canary: if you can read this through the share, the share leaks.\n"

struct snap_ent {
	char path[PATH_MAX];
	struct stat st;
	uint64_t hash;
	uint64_t xattrs;
	bool exists;
};
static struct snap_ent snap[32];
static unsigned nsnap;

static void snap_one(struct snap_ent *e, const char *path)
{
	snprintf(e->path, sizeof(e->path), "%s", path);
	e->exists = lstat(path, &e->st) == 0;
	e->hash = e->xattrs = 0;
	if (!e->exists)
		return;
	char list[4096];
	ssize_t n = llistxattr(path, list, sizeof(list));
	e->xattrs = n > 0 ? fnv(list, (size_t)n) : 0;
	if (S_ISREG(e->st.st_mode)) {
		int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
		if (fd >= 0) {
			char buf[65536];
			ssize_t k = read(fd, buf, sizeof(buf));
			e->hash = k > 0 ? fnv(buf, (size_t)k) : 0;
			close(fd);
		}
	} else if (S_ISLNK(e->st.st_mode)) {
		char buf[PATH_MAX];
		ssize_t k = readlink(path, buf, sizeof(buf));
		e->hash = k > 0 ? fnv(buf, (size_t)k) : 0;
	}
}

static const char *const snap_names[] = {
	"", "canary", "canary-rw", "vufs-hostile-marker", "dir", "dir/inner", "link-to-canary",
};

static void snapshot_take(void)
{
	char p[PATH_MAX + 64];
	nsnap = 0;
	for (unsigned i = 0; i < sizeof(snap_names) / sizeof(snap_names[0]); i++) {
		snprintf(p, sizeof(p), "%s/%s", outside_dir, snap_names[i]);
		snap_one(&snap[nsnap++], p);
	}
	snap_one(&snap[nsnap++], parent_dir); /* last: only its identity is compared */
}

static bool write_file(const char *path, const char *text, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
	if (fd < 0)
		return false;
	bool ok = write(fd, text, strlen(text)) == (ssize_t)strlen(text);
	fchmod(fd, mode);
	close(fd);
	return ok;
}

static int rm_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (flag == FTW_DP || flag == FTW_D)
		rmdir(path);
	else
		unlink(path);
	return 0;
}

static void rm_rf(const char *path)
{
	struct stat st;
	if (lstat(path, &st) < 0)
		return;
	if (!S_ISDIR(st.st_mode)) {
		unlink(path);
		return;
	}
	nftw(path, rm_cb, 32, FTW_DEPTH | FTW_PHYS);
}

static void host_setup(void)
{
	char p[PATH_MAX + 64];
	char big[64 * sizeof(CANARY_TEXT)];
	big[0] = 0;
	for (int i = 0; i < 64; i++)
		strcat(big, CANARY_TEXT);
	mkdir(outside_dir, 0755);
	snprintf(p, sizeof(p), "%s/canary", outside_dir);
	write_file(p, big, 0644);
	snprintf(p, sizeof(p), "%s/canary-rw", outside_dir);
	write_file(p, big, 0666);
	snprintf(p, sizeof(p), "%s/vufs-hostile-marker", outside_dir);
	write_file(p, "marker\n", 0644);
	snprintf(p, sizeof(p), "%s/dir", outside_dir);
	mkdir(p, 0777);
	snprintf(p, sizeof(p), "%s/dir/inner", outside_dir);
	write_file(p, big, 0644);
	snprintf(p, sizeof(p), "%s/link-to-canary", outside_dir);
	symlink("canary", p);
	/* Timestamps in the past: a backend that touches them changes them visibly. */
	struct timespec ts[2] = { { 1000000000, 0 }, { 1000000000, 0 } };
	for (unsigned i = 0; i < sizeof(snap_names) / sizeof(snap_names[0]); i++) {
		snprintf(p, sizeof(p), "%s/%s", outside_dir, snap_names[i]);
		utimensat(AT_FDCWD, p, ts, AT_SYMLINK_NOFOLLOW);
	}
	snprintf(p, sizeof(p), "%s/vufs-hostile-probe", share_dir);
	write_file(p, "probe\n", 0644);
	snapshot_take();
}

static void host_teardown(void)
{
	char p[PATH_MAX + 64];
	rm_rf(outside_dir);
	snprintf(p, sizeof(p), "%s/vufs-hostile-probe", share_dir);
	unlink(p);
}

/* Anything whose name starts with esc_prefix in a place outside the share means a guest created it. */
static bool find_escaped(const char *dir, char *found, size_t len)
{
	DIR *d = opendir(dir);
	if (!d)
		return false;
	struct dirent *de;
	bool hit = false;
	while ((de = readdir(d))) {
		if (!strncmp(de->d_name, esc_prefix, strlen(esc_prefix))) {
			snprintf(found, len, "%s/%s", dir, de->d_name);
			hit = true;
			break;
		}
	}
	closedir(d);
	return hit;
}

/* Empty string when the host outside the share is as we left it; else what changed. */
static bool host_changed(char *why, size_t len)
{
	char p[PATH_MAX + 64], found[PATH_MAX + 300];
	for (unsigned i = 0; i < nsnap; i++) {
		struct snap_ent now;
		snap_one(&now, snap[i].path);
		const struct snap_ent *was = &snap[i];
		bool is_parent = i == nsnap - 1; /* entries come and go in the share's parent; only its identity counts */
		const char *what = NULL;
		if (now.exists != was->exists)
			what = now.exists ? "appeared" : "disappeared";
		else if (!now.exists)
			continue;
		else if ((now.st.st_mode != was->st.st_mode) || now.st.st_ino != was->st.st_ino)
			what = "changed type, mode or identity";
		else if (now.st.st_uid != was->st.st_uid || now.st.st_gid != was->st.st_gid)
			what = "changed owner";
		else if (is_parent)
			continue;
		else if (now.st.st_size != was->st.st_size || now.hash != was->hash)
			what = "changed content";
		else if (now.st.st_nlink != was->st.st_nlink)
			what = "changed link count";
		else if (now.st.st_mtim.tv_sec != was->st.st_mtim.tv_sec ||
		         now.st.st_mtim.tv_nsec != was->st.st_mtim.tv_nsec ||
		         now.st.st_ctim.tv_sec != was->st.st_ctim.tv_sec ||
		         now.st.st_ctim.tv_nsec != was->st.st_ctim.tv_nsec)
			what = "changed timestamps (mtime/ctime)";
		else if (now.xattrs != was->xattrs)
			what = "changed extended attributes";
		if (what) {
			snprintf(why, len, "host file %s outside the share %s", was->path, what);
			return true;
		}
	}
	const char *dirs[] = { parent_dir, outside_dir, "/", "/tmp", "/etc", NULL };
	for (unsigned i = 0; dirs[i]; i++) {
		if (find_escaped(dirs[i], found, sizeof(found))) {
			snprintf(why, len, "%s was created outside the share", found);
			return true;
		}
	}
	snprintf(p, sizeof(p), "%s/dir", outside_dir);
	if (find_escaped(p, found, sizeof(found))) {
		snprintf(why, len, "%s was created outside the share", found);
		return true;
	}
	return false;
}

/* Restores the outside area so one check's damage does not fail the next. */
static void host_repair(void)
{
	char p[PATH_MAX + 64], found[PATH_MAX + 300];
	const char *dirs[] = { parent_dir, outside_dir, "/", "/tmp", "/etc", NULL };
	for (unsigned i = 0; dirs[i]; i++)
		while (find_escaped(dirs[i], found, sizeof(found)))
			rm_rf(found);
	snprintf(p, sizeof(p), "%s/dir", outside_dir);
	while (find_escaped(p, found, sizeof(found)))
		rm_rf(found);
	rm_rf(outside_dir);
	host_setup();
}

static void share_path(char *out, size_t len, const char *rel)
{
	snprintf(out, len, "%s/%s", share_dir, rel);
}

/* ------------------------------------------------------------------------------------------------------------
 * A connection: vufs's frontend (memfd, ring layout, queues) driven step by step so a check can misbehave at
 * any step.
 * ------------------------------------------------------------------------------------------------------------ */

#define QUEUE_SIZE 256u
#define MEM_SIZE (32u << 20)
#define NSLOTS 192u
#define SLOT_IN 8192u
#define SLOT_OUT 8192u
#define CANARY_LEN 256u
#define BIG_LEN (2u << 20)
#define SCRATCH_LEN (1u << 20)
#define TAIL_LEN (128u << 10)
#define NSTOLEN 16u
#define CANARY_BYTE 0xa5

/* Result codes of a request beyond -errno. */
#define RES_EMPTY (-5000)   /* used entry with length 0 */
#define RES_TIMEOUT (-5001) /* no used entry in time */
#define RES_DEAD (-5002)    /* the backend closed the connection */
#define RES_BAD (-5003)     /* a reply that does not answer the request (see conn.bad) */
#define RES_NOSLOT (-5004)

static bool is_errno(int rc) { return rc < 0 && rc > -4096; }
static bool refused(int rc) { return is_errno(rc) || rc == RES_EMPTY; }

static const char *res_str(int rc)
{
	static __thread char buf[64];
	if (rc >= 0)
		snprintf(buf, sizeof(buf), "success (%d bytes)", rc);
	else if (is_errno(rc))
		return errname(-rc);
	else if (rc == RES_EMPTY)
		return "empty used entry";
	else if (rc == RES_TIMEOUT)
		return "no reply";
	else if (rc == RES_DEAD)
		return "backend disconnected";
	else if (rc == RES_BAD)
		return "malformed reply";
	else
		snprintf(buf, sizeof(buf), "rc %d", rc);
	return buf;
}

struct slot {
	uint64_t in_gpa, out_gpa;
	uint8_t *in, *out;
	bool busy;
};

struct req {
	atomic_int done;
	uint32_t used_len;
	uint32_t wr_cap;
	const uint8_t *canary;  /* CANARY_LEN bytes after the writable buffer, or NULL */
	const uint8_t *in;      /* readable bytes the backend must not change */
	uint32_t in_len;
	uint64_t in_hash;
};

struct forged {
	uint16_t head;
	bool out;               /* issued, no used entry yet */
	bool got;
	uint32_t len;
};

struct qx {
	uint16_t stolen[NSTOLEN];
	unsigned nstolen;
	struct forged f[8];
	unsigned nf;
	bool lenient;           /* after an attack on this ring: garbage on it is the guest's own doing */
};

struct conn {
	struct vu_frontend fe;
	bool up, dead, started;
	uint64_t offered, features, pf;
	pid_t procs[8];
	unsigned nprocs;
	struct slot slots[NSLOTS];
	pthread_mutex_t slot_lock, big_lock;
	uint8_t *big, *scratch;
	uint64_t big_gpa, scratch_gpa, tail_gpa;
	struct qx qx[VU_FE_MAX_QUEUES];
	bool qstarted[VU_FE_MAX_QUEUES]; /* handed to the backend since the last GET_VRING_BASE */
	atomic_ullong unique;
	char bad[256];          /* last malformed reply */
	char violation[256];    /* the backend broke memory safety or the ring protocol */
	uint32_t fuse_minor;
	int timeout_ms;         /* per request */
	unsigned ntimeouts;     /* requests that got no reply in time */
	struct req *orphans[512]; /* their state, still reachable from the ring: freed when the connection closes */
	unsigned norphans;
	bool no_mem_checks;     /* the guest scribbles on its own buffers: canaries mean nothing */
};

static void __attribute__((format(printf, 2, 3))) violation(struct conn *c, const char *fmt, ...)
{
	if (c->violation[0])
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(c->violation, sizeof(c->violation), fmt, ap);
	va_end(ap);
}

static void check_socket(struct conn *c)
{
	struct pollfd p = { .fd = c->fe.sock, .events = POLLRDHUP };
	if (!c->dead && c->fe.sock >= 0 && poll(&p, 1, 0) == 1 && (p.revents & (POLLHUP | POLLRDHUP | POLLERR)))
		c->dead = true;
}

/* The backend's processes: the socket's owner and everything under it (some fork after accepting). */
static void conn_track(struct conn *c)
{
	struct ucred cr;
	socklen_t crl = sizeof(cr);
	if (c->fe.sock < 0 || getsockopt(c->fe.sock, SOL_SOCKET, SO_PEERCRED, &cr, &crl) < 0 || cr.pid <= 0)
		return;
	pid_t now[8];
	unsigned n = process_tree(cr.pid, now, 8);
	for (unsigned i = 0; i < n; i++) {
		bool have = false;
		for (unsigned k = 0; k < c->nprocs; k++)
			have |= c->procs[k] == now[i];
		if (!have && c->nprocs < 8)
			c->procs[c->nprocs++] = now[i];
	}
}

static int conn_open(struct conn *c)
{
	struct vu_frontend_config cfg = { .nqueues = 1 + opt.queues, .queue_size = QUEUE_SIZE, .mem_size = MEM_SIZE };
	uint64_t deadline = now_ms() + 15000;
	int rc;

	memset(c, 0, sizeof(*c));
	pthread_mutex_init(&c->slot_lock, NULL);
	pthread_mutex_init(&c->big_lock, NULL);
	atomic_init(&c->unique, 2);
	c->timeout_ms = opt.timeout_ms;
	for (;;) {
		rc = vu_frontend_connect(&c->fe, opt.socket, &cfg);
		if (rc == 0)
			break;
		vu_frontend_close(&c->fe);
		if ((rc != -ECONNREFUSED && rc != -ENOENT) || now_ms() > deadline)
			return rc;
		sleep_ms(50);
	}
	c->up = true;
	/* Several threads may wait on one queue: whoever polls the call fd must not block reading it. */
	for (unsigned i = 0; i < c->fe.nqueues; i++)
		fcntl(c->fe.q[i].call_fd, F_SETFL, fcntl(c->fe.q[i].call_fd, F_GETFL) | O_NONBLOCK);
	struct timeval tv = { opt.timeout_ms / 1000, (opt.timeout_ms % 1000) * 1000 };
	setsockopt(c->fe.sock, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(c->fe.sock, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	conn_track(c);

	/* Guest memory after the rings: request slots, a big area, scratch for forged tables, and a tail that ends
	 * exactly where guest memory ends (a backend reading past a request placed there reads past the mapping). */
	for (unsigned i = 0; i < NSLOTS; i++) {
		struct slot *s = &c->slots[i];
		s->in = vu_frontend_alloc(&c->fe, SLOT_IN, 64, &s->in_gpa);
		s->out = vu_frontend_alloc(&c->fe, SLOT_OUT + CANARY_LEN, 64, &s->out_gpa);
		if (!s->in || !s->out)
			return -ENOMEM;
		memset(s->out, CANARY_BYTE, SLOT_OUT + CANARY_LEN);
	}
	c->big = vu_frontend_alloc(&c->fe, BIG_LEN + CANARY_LEN, 4096, &c->big_gpa);
	c->scratch = vu_frontend_alloc(&c->fe, SCRATCH_LEN, 4096, &c->scratch_gpa);
	if (!c->big || !c->scratch || c->fe.mem_used > MEM_SIZE / 2 - 4096)
		return -ENOMEM;
	c->tail_gpa = MEM_SIZE - TAIL_LEN;
	return 0;
}

/* A vhost-user request; with REPLY_ACK (or force_ack) the backend's status; with reply, its answer. */
static int vcall(struct conn *c, uint32_t request, uint32_t flags, const void *payload, uint32_t size,
                 const int *fds, unsigned nfds, void *reply, uint32_t reply_size)
{
	struct vhu_msg msg = { .hdr = { .request = request, .flags = VHU_VERSION | flags, .size = size } };
	bool ack = !reply && ((c->pf & (1ull << VHU_PROTOCOL_F_REPLY_ACK)) || (flags & VHU_FLAG_NEED_REPLY));
	int rc;

	if (c->dead)
		return RES_DEAD;
	if (ack && (c->pf & (1ull << VHU_PROTOCOL_F_REPLY_ACK)))
		msg.hdr.flags |= VHU_FLAG_NEED_REPLY;
	else if (!(c->pf & (1ull << VHU_PROTOCOL_F_REPLY_ACK)))
		ack = false;
	if (size)
		memcpy(&msg.p, payload, size);
	if (nfds)
		memcpy(msg.fds, fds, nfds * sizeof(int));
	msg.nfds = nfds;
	rc = vhu_send(c->fe.sock, &msg);
	if (rc == -EPIPE || rc == -ECONNRESET) {
		c->dead = true;
		return RES_DEAD;
	}
	if (rc < 0 || (!reply && !ack))
		return rc;
	rc = vhu_recv(c->fe.sock, &msg);
	if (rc == -EAGAIN || rc == -EWOULDBLOCK)
		return RES_TIMEOUT;
	if (rc < 0) {
		c->dead = true;
		return RES_DEAD;
	}
	vhu_close_fds(&msg);
	if (msg.hdr.request != request || !(msg.hdr.flags & VHU_FLAG_REPLY))
		return -EPROTO;
	if (ack)
		return msg.hdr.size == sizeof(uint64_t) ? (msg.p.u64 ? -EIO : 0) : -EPROTO;
	if (msg.hdr.size != reply_size)
		return -EPROTO;
	memcpy(reply, &msg.p, reply_size);
	return 0;
}

static int vcall_u64(struct conn *c, uint32_t request, uint64_t v)
{
	return vcall(c, request, 0, &v, sizeof(v), NULL, 0, NULL, 0);
}

static int vget_u64(struct conn *c, uint32_t request, uint64_t *v)
{
	return vcall(c, request, 0, NULL, 0, NULL, 0, v, sizeof(*v));
}

/* Bytes straight onto the socket: for messages vhu_send refuses to build. */
static int raw_send(struct conn *c, const void *buf, size_t len, const int *fds, unsigned nfds)
{
	char control[CMSG_SPACE(32 * sizeof(int))];
	struct iovec iov = { (void *)buf, len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	if (nfds) {
		memset(control, 0, sizeof(control));
		mh.msg_control = control;
		mh.msg_controllen = CMSG_SPACE(nfds * sizeof(int));
		struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(nfds * sizeof(int));
		memcpy(CMSG_DATA(cm), fds, nfds * sizeof(int));
	}
	ssize_t n = sendmsg(c->fe.sock, &mh, MSG_NOSIGNAL);
	if (n < 0 && (errno == EPIPE || errno == ECONNRESET)) {
		c->dead = true;
		return RES_DEAD;
	}
	return n == (ssize_t)len ? 0 : -EIO;
}

static int negotiate(struct conn *c)
{
	uint64_t want;
	int rc;

	if ((rc = vcall(c, VHU_SET_OWNER, 0, NULL, 0, NULL, 0, NULL, 0)) < 0)
		return rc;
	if ((rc = vget_u64(c, VHU_GET_FEATURES, &c->offered)) < 0)
		return rc;
	if (!(c->offered & (1ull << VIRTIO_F_VERSION_1_BIT)))
		return -EPROTO;
	want = c->offered & (1ull << VIRTIO_F_VERSION_1_BIT | 1ull << VHU_F_PROTOCOL_FEATURES |
	                     1ull << VIRTIO_RING_F_EVENT_IDX_BIT | 1ull << VIRTIO_RING_F_INDIRECT_DESC_BIT);
	if (c->offered & (1ull << VHU_F_PROTOCOL_FEATURES)) {
		uint64_t pf;
		if ((rc = vget_u64(c, VHU_GET_PROTOCOL_FEATURES, &pf)) < 0)
			return rc;
		pf &= 1ull << VHU_PROTOCOL_F_MQ | 1ull << VHU_PROTOCOL_F_REPLY_ACK |
		      1ull << VHU_PROTOCOL_F_CONFIGURE_MEM_SLOTS;
		if ((rc = vcall_u64(c, VHU_SET_PROTOCOL_FEATURES, pf)) < 0)
			return rc;
		c->pf = pf;
		if (pf & (1ull << VHU_PROTOCOL_F_MQ)) {
			uint64_t max;
			if ((rc = vget_u64(c, VHU_GET_QUEUE_NUM, &max)) < 0)
				return rc;
			if (max < c->fe.nqueues)
				return -EINVAL;
		}
	}
	if ((rc = vcall_u64(c, VHU_SET_FEATURES, want)) < 0)
		return rc;
	c->features = c->fe.features = want;
	c->fe.protocol_features = c->pf;
	return 0;
}

static int send_mem_table(struct conn *c, uint64_t size)
{
	struct vhu_mem_table mt = { .nregions = 1 };
	mt.regions[0] = (struct vhu_mem_region){ .gpa = 0, .size = size, .uaddr = (uintptr_t)c->fe.mem };
	return vcall(c, VHU_SET_MEM_TABLE, 0, &mt, 8 + sizeof(mt.regions[0]), &c->fe.memfd, 1, NULL, 0);
}

static void steal_descriptors(struct conn *c, unsigned qi)
{
	struct vq_driver *vq = &c->fe.q[qi].vq;
	struct qx *x = &c->qx[qi];
	x->nstolen = 0;
	x->nf = 0;
	while (x->nstolen < NSTOLEN && vq->num_free > NSTOLEN) {
		uint16_t d = vq->split.free_head;
		vq->split.free_head = vq->split.next[d];
		vq->num_free--;
		x->stolen[x->nstolen++] = d;
	}
}

/* Zeroed rings, a fresh driver, and the queue handed to the backend. */
static int start_queue(struct conn *c, unsigned i)
{
	struct vu_fe_queue *q = &c->fe.q[i];
	struct vring_split r = q->vq.split.r;
	int rc;

	memset(r.desc, 0, vring_desc_bytes(r.num));
	memset(r.avail, 0, vring_avail_bytes(r.num) + 2);
	memset(r.used, 0, vring_used_bytes(r.num) + 2);
	vq_driver_free(&q->vq);
	if ((rc = vq_driver_init(&q->vq, &r, c->features & (1ull << VIRTIO_RING_F_EVENT_IDX_BIT))) < 0)
		return rc;
	steal_descriptors(c, i);
	c->qx[i].lenient = false;

	struct vhu_vring_state num = { i, r.num }, base = { i, 0 }, enable = { i, 1 };
	struct vhu_vring_addr addr = {
		.index = i,
		.desc_uaddr = (uintptr_t)vu_frontend_host(&c->fe, q->desc_gpa),
		.avail_uaddr = (uintptr_t)vu_frontend_host(&c->fe, q->avail_gpa),
		.used_uaddr = (uintptr_t)vu_frontend_host(&c->fe, q->used_gpa),
	};
	uint64_t idx = i;
	if ((rc = vcall(c, VHU_SET_VRING_NUM, 0, &num, sizeof(num), NULL, 0, NULL, 0)) < 0 ||
	    (rc = vcall(c, VHU_SET_VRING_BASE, 0, &base, sizeof(base), NULL, 0, NULL, 0)) < 0 ||
	    (rc = vcall(c, VHU_SET_VRING_ADDR, 0, &addr, sizeof(addr), NULL, 0, NULL, 0)) < 0 ||
	    (rc = vcall(c, VHU_SET_VRING_CALL, 0, &idx, sizeof(idx), &q->call_fd, 1, NULL, 0)) < 0 ||
	    (rc = vcall(c, VHU_SET_VRING_ERR, 0, &idx, sizeof(idx), &q->err_fd, 1, NULL, 0)) < 0 ||
	    (rc = vcall(c, VHU_SET_VRING_KICK, 0, &idx, sizeof(idx), &q->kick_fd, 1, NULL, 0)) < 0)
		return rc;
	c->qstarted[i] = true;
	if (c->features & (1ull << VHU_F_PROTOCOL_FEATURES))
		rc = vcall(c, VHU_SET_VRING_ENABLE, 0, &enable, sizeof(enable), NULL, 0, NULL, 0);
	return rc;
}

/* Stops a queue as QEMU does (disable, GET_VRING_BASE), if it was started. */
static int stop_queue(struct conn *c, unsigned i)
{
	struct vhu_vring_state st = { i, 0 };
	int rc;
	if (!c->qstarted[i])
		return 0;
	if (c->features & (1ull << VHU_F_PROTOCOL_FEATURES)) {
		rc = vcall(c, VHU_SET_VRING_ENABLE, 0, &st, sizeof(st), NULL, 0, NULL, 0);
		if (rc == RES_DEAD || rc == RES_TIMEOUT)
			return rc;
	}
	rc = vcall(c, VHU_GET_VRING_BASE, 0, &st, sizeof(st), NULL, 0, &st, sizeof(st));
	if (rc == 0)
		c->qstarted[i] = false;
	return rc;
}

/* Stops a queue as QEMU does on reset, then starts it again from scratch. */
static int reset_queue(struct conn *c, unsigned i)
{
	int rc = stop_queue(c, i);
	return rc < 0 ? rc : start_queue(c, i);
}

static int conn_start_queues(struct conn *c)
{
	int rc;
	if ((rc = negotiate(c)) < 0)
		return rc;
	if ((rc = send_mem_table(c, MEM_SIZE)) < 0)
		return rc;
	for (unsigned i = 0; i < c->fe.nqueues; i++)
		if ((rc = start_queue(c, i)) < 0)
			return rc;
	c->started = true;
	return 0;
}

static void conn_close(struct conn *c)
{
	if (!c->up)
		return;
	vu_frontend_close(&c->fe);
	for (unsigned i = 0; i < c->norphans; i++)
		free(c->orphans[i]);
	c->norphans = 0;
	pthread_mutex_destroy(&c->slot_lock);
	pthread_mutex_destroy(&c->big_lock);
	c->up = false;
}

/* ------------------------------------------------------------------------------------------------------------
 * Requests on the rings
 * ------------------------------------------------------------------------------------------------------------ */

static struct slot *slot_get(struct conn *c)
{
	struct slot *s = NULL;
	pthread_mutex_lock(&c->slot_lock);
	for (unsigned i = 0; i < NSLOTS; i++) {
		if (!c->slots[i].busy) {
			s = &c->slots[i];
			s->busy = true;
			break;
		}
	}
	pthread_mutex_unlock(&c->slot_lock);
	return s;
}

static void slot_put(struct conn *c, struct slot *s)
{
	pthread_mutex_lock(&c->slot_lock);
	s->busy = false;
	pthread_mutex_unlock(&c->slot_lock);
}

static struct forged *forged_find(struct qx *x, uint16_t head)
{
	for (unsigned i = 0; i < x->nf; i++)
		if (x->f[i].head == head && x->f[i].out)
			return &x->f[i];
	return NULL;
}

static bool is_stolen(const struct qx *x, uint32_t id)
{
	for (unsigned i = 0; i < x->nstolen; i++)
		if (x->stolen[i] == id)
			return true;
	return false;
}

static void finish_req(struct conn *c, struct req *r, uint32_t len)
{
	r->used_len = len;
	if (r->canary) {
		for (unsigned k = 0; k < CANARY_LEN; k++) {
			if (r->canary[k] != CANARY_BYTE) {
				violation(c, "the backend wrote past a %u-byte reply buffer (byte %u after it changed)", r->wr_cap,
				          k);
				break;
			}
		}
	}
	if (r->in && fnv(r->in, r->in_len) != r->in_hash)
		violation(c, "the backend wrote into a device-readable request buffer");
	atomic_store(&r->done, 1);
}

/* Takes every used entry of queue qi: our requests, and forged chains (tracked by head). */
static void reap(struct conn *c, unsigned qi)
{
	struct vu_fe_queue *q = &c->fe.q[qi];
	struct vq_driver *vq = &q->vq;
	struct qx *x = &c->qx[qi];

	pthread_mutex_lock(&q->lock);
	for (;;) {
		uint16_t used_idx = load_acquire16(&vq->split.r.used->idx);
		if (used_idx == vq->split.last_used)
			break;
		struct vring_used_elem *e = &vq->split.r.used->ring[vq->split.last_used % vq->split.r.num];
		uint32_t id = __atomic_load_n(&e->id, __ATOMIC_RELAXED), len = __atomic_load_n(&e->len, __ATOMIC_RELAXED);
		if (id < vq->split.r.num && is_stolen(x, id)) {
			struct forged *f = forged_find(x, (uint16_t)id);
			if (!f) {
				if (!x->lenient)
					violation(c, "queue %u: used entry for descriptor %u, which is not in flight", qi, id);
				x->lenient = true;
			} else {
				f->out = false;
				f->got = true;
				f->len = len;
				vq->chains_out--;
			}
			vq->split.last_used++;
			continue;
		}
		void *tok;
		uint32_t n;
		int rc = vq_driver_get_used(vq, &tok, &n);
		if (rc <= 0) {
			if (!x->lenient)
				violation(c, "queue %u: the backend returned a used entry we never issued (id %u, len %u, "
				             "used index %u, ours %u)", qi, id, len, used_idx, vq->split.last_used);
			x->lenient = true;
			/* Skip it: we cannot trust this ring any more. */
			vq->split.last_used = used_idx;
			break;
		}
		finish_req(c, tok, n);
	}
	pthread_mutex_unlock(&q->lock);
}

/* Waits until done is set (by reap), the backend goes away, or timeout. */
static int wait_for(struct conn *c, unsigned qi, atomic_int *done, int timeout_ms)
{
	struct vu_fe_queue *q = &c->fe.q[qi];
	uint64_t deadline = now_ms() + (uint64_t)timeout_ms;
	for (;;) {
		reap(c, qi);
		if (atomic_load(done))
			return 0;
		check_socket(c);
		if (c->dead) {
			reap(c, qi);
			return atomic_load(done) ? 0 : RES_DEAD;
		}
		if (now_ms() >= deadline)
			return RES_TIMEOUT;
		pthread_mutex_lock(&q->lock);
		bool more = vq_driver_arm(&q->vq);
		pthread_mutex_unlock(&q->lock);
		if (more)
			continue;
		struct pollfd p[2] = { { .fd = q->call_fd, .events = POLLIN }, { .fd = c->fe.sock, .events = POLLRDHUP } };
		if (poll(p, 2, 5) > 0 && (p[0].revents & POLLIN)) {
			eventfd_t v;
			eventfd_read(q->call_fd, &v);
		}
	}
}

static int submit(struct conn *c, unsigned qi, const struct vq_seg *segs, unsigned n_rd, unsigned n_wr,
                  struct req *r)
{
	for (int tries = 0;; tries++) {
		int rc = vu_frontend_submit(&c->fe, qi, segs, n_rd, n_wr, r);
		if (rc != -ENOSPC || tries > 2000)
			return rc;
		reap(c, qi);
		sleep_ms(1);
	}
}

/* Publishes a chain written by hand at head (a stolen descriptor) and kicks. */
static struct forged *forge_publish(struct conn *c, unsigned qi, uint16_t head)
{
	struct vu_fe_queue *q = &c->fe.q[qi];
	struct vq_driver *vq = &q->vq;
	struct qx *x = &c->qx[qi];
	struct forged *f = NULL;

	pthread_mutex_lock(&q->lock);
	for (unsigned i = 0; i < x->nf; i++)
		if (!x->f[i].out)
			f = &x->f[i];
	if (!f && x->nf < sizeof(x->f) / sizeof(x->f[0]))
		f = &x->f[x->nf++];
	if (f) {
		*f = (struct forged){ .head = head, .out = true };
		vq->chains_out++;
		store_once16(&vq->split.r.avail->ring[vq->split.avail_idx % vq->split.r.num], head);
		vq->split.avail_idx++;
		store_release16(&vq->split.r.avail->idx, vq->split.avail_idx);
		vq->split.kicked_avail = vq->split.avail_idx;
	}
	pthread_mutex_unlock(&q->lock);
	eventfd_write(q->kick_fd, 1);
	return f;
}

/* Waits for a forged chain's used entry: its length, RES_TIMEOUT or RES_DEAD. */
static int forge_wait(struct conn *c, unsigned qi, struct forged *f, int timeout_ms)
{
	uint64_t deadline = now_ms() + (uint64_t)timeout_ms;
	for (;;) {
		reap(c, qi);
		if (f->got)
			return (int)f->len;
		check_socket(c);
		if (c->dead)
			return RES_DEAD;
		if (now_ms() >= deadline)
			return RES_TIMEOUT;
		sleep_ms(2);
	}
}

/* ------------------------------------------------------------------------------------------------------------
 * FUSE requests
 * ------------------------------------------------------------------------------------------------------------ */

enum place { PLACE_SLOT, PLACE_TAIL, PLACE_BIG };

struct call {
	uint32_t opcode;
	uint64_t nodeid;
	const void *arg;
	size_t arglen;
	bool set_len;           /* header len = len instead of the bytes sent */
	uint32_t len;
	enum place place;
	uint32_t wr_cap;        /* writable bytes; 0: SLOT_OUT */
	bool no_wr;             /* no writable descriptor at all */
	bool hiprio;            /* queue 0 */
	unsigned qsel;          /* request queue (0-based) */
	int timeout_ms;
	void *out;              /* payload copy */
	size_t outcap;
	uint32_t uid, gid;
	bool volatile_in;       /* the caller changes the request while it is in flight */
	bool cut;               /* send only the first cut_len bytes (0: no readable descriptor) */
	uint32_t cut_len;
	uint8_t **in_ptr;       /* where the request was placed (for volatile_in) */
};

static unsigned queue_of_call(const struct call *k)
{
	return k->hiprio ? 0 : 1 + (k->qsel % opt.queues);
}

/* A request on its way: submitted by fsubmit, collected by ffinish. */
struct pend {
	struct req *r;
	struct slot *s;
	uint64_t unique;
	unsigned qi;
	bool locked;
	bool no_header;         /* the backend cannot know the unique: do not check it */
	struct call *k;
};

static int fsubmit(struct conn *c, struct call *k, struct pend *p)
{
	uint64_t unique = atomic_fetch_add(&c->unique, 2);
	size_t total = sizeof(struct fuse_in_header) + k->arglen;
	struct fuse_in_header h = {
		.len = k->set_len ? k->len : (uint32_t)total, .opcode = k->opcode, .unique = unique, .nodeid = k->nodeid,
		.uid = k->uid, .gid = k->gid, .pid = 4242,
	};
	*p = (struct pend){ .unique = unique, .qi = queue_of_call(k), .k = k };
	p->s = slot_get(c);
	if (!p->s)
		return RES_NOSLOT;
	enum place place = k->place;
	if (place == PLACE_SLOT && total > SLOT_IN)
		place = PLACE_BIG;
	uint8_t *in;
	uint64_t in_gpa;
	if (place == PLACE_SLOT) {
		in = p->s->in;
		in_gpa = p->s->in_gpa;
	} else {
		pthread_mutex_lock(&c->big_lock);
		p->locked = true;
		if (place == PLACE_TAIL && total <= TAIL_LEN) {
			in_gpa = MEM_SIZE - total;
			in = vu_frontend_host(&c->fe, in_gpa);
		} else {
			if (total > BIG_LEN)
				total = BIG_LEN;
			in = c->big;
			in_gpa = c->big_gpa;
		}
	}
	memcpy(in, &h, sizeof(h));
	if (k->arglen)
		memcpy(in + sizeof(h), k->arg, total - sizeof(h));
	if (k->in_ptr)
		*k->in_ptr = in;
	uint32_t rd_len = (uint32_t)total;
	if (k->cut) {
		rd_len = k->cut_len < total ? k->cut_len : (uint32_t)total;
		if (k->cut_len < total && place == PLACE_TAIL) {
			/* keep the shortened request flush with the end of guest memory */
			in_gpa = MEM_SIZE - rd_len;
			memmove(vu_frontend_host(&c->fe, in_gpa), in, rd_len);
			in = vu_frontend_host(&c->fe, in_gpa);
		}
		p->no_header = rd_len < sizeof(h);
	}

	uint32_t cap = k->wr_cap ? k->wr_cap : SLOT_OUT;
	if (cap > SLOT_OUT)
		cap = SLOT_OUT;
	memset(p->s->out, CANARY_BYTE, SLOT_OUT + CANARY_LEN);
	p->r = calloc(1, sizeof(*p->r));
	*p->r = (struct req){ .wr_cap = cap, .canary = p->s->out + cap,
	                      .in = (k->volatile_in || c->no_mem_checks) ? NULL : in, .in_len = rd_len };
	if (c->no_mem_checks)
		p->r->canary = NULL;
	atomic_init(&p->r->done, 0);
	if (p->r->in)
		p->r->in_hash = fnv(in, rd_len);
	struct vq_seg segs[2] = { { in_gpa, rd_len }, { p->s->out_gpa, cap } };
	unsigned n_rd = rd_len ? 1 : 0, n_wr = k->no_wr ? 0 : 1;
	int rc = submit(c, p->qi, segs + (n_rd ? 0 : 1), n_rd, n_wr, p->r);
	if (rc < 0) {
		free(p->r);
		p->r = NULL;
		if (p->locked)
			pthread_mutex_unlock(&c->big_lock);
		slot_put(c, p->s);
		return RES_NOSLOT;
	}
	return 0;
}

/* Waits for the reply; returns the payload length, -errno, or a RES_* code. */
static int ffinish(struct conn *c, struct pend *p)
{
	struct call *k = p->k;
	int limit = k->timeout_ms ? k->timeout_ms : c->timeout_ms;
	if (c->ntimeouts >= 3 && limit > 300)
		limit = 300; /* a backend that stopped answering: do not wait the full time for every request */
	int rc = wait_for(c, p->qi, &p->r->done, limit);
	if (rc == RES_TIMEOUT) {
		c->ntimeouts++;
		pthread_mutex_lock(&c->slot_lock);
		if (c->norphans < sizeof(c->orphans) / sizeof(c->orphans[0]))
			c->orphans[c->norphans++] = p->r;
		pthread_mutex_unlock(&c->slot_lock);
		/* The chain stays in flight: its request, its buffers and its slot are never reused. */
		if (p->locked)
			pthread_mutex_unlock(&c->big_lock);
		return rc;
	}
	if (rc < 0)
		goto out;
	if (p->r->used_len == 0) {
		rc = RES_EMPTY;
		goto out;
	}
	struct fuse_out_header oh;
	if (p->r->used_len < sizeof(oh)) {
		snprintf(c->bad, sizeof(c->bad), "%u-byte reply, shorter than a reply header", p->r->used_len);
		rc = RES_BAD;
		goto out;
	}
	memcpy(&oh, p->s->out, sizeof(oh));
	if (oh.unique != p->unique && !p->no_header) {
		snprintf(c->bad, sizeof(c->bad), "reply for unique %llu to request %llu", (unsigned long long)oh.unique,
		         (unsigned long long)p->unique);
		rc = RES_BAD;
	} else if (oh.len != p->r->used_len) {
		snprintf(c->bad, sizeof(c->bad), "reply header says %u bytes, used entry %u", oh.len, p->r->used_len);
		rc = RES_BAD;
	} else if (oh.error > 0 || oh.error < -4095) {
		snprintf(c->bad, sizeof(c->bad), "reply error %d", oh.error);
		rc = RES_BAD;
	} else if (oh.error < 0) {
		rc = oh.error;
	} else {
		rc = (int)(p->r->used_len - sizeof(oh));
		if (k->out)
			memcpy(k->out, p->s->out + sizeof(oh), (size_t)rc < k->outcap ? (size_t)rc : k->outcap);
	}
out:
	if (p->locked)
		pthread_mutex_unlock(&c->big_lock);
	free(p->r);
	p->r = NULL;
	slot_put(c, p->s);
	return rc;
}

static int fcall(struct conn *c, struct call *k)
{
	struct pend p;
	int rc = fsubmit(c, k, &p);
	return rc < 0 ? rc : ffinish(c, &p);
}

static int fop(struct conn *c, uint32_t opcode, uint64_t nodeid, const void *arg, size_t arglen, void *out,
               size_t outcap)
{
	struct call k = { .opcode = opcode, .nodeid = nodeid, .arg = arg, .arglen = arglen, .out = out, .outcap = outcap };
	return fcall(c, &k);
}

/* Arguments built piece by piece. */
struct args {
	uint8_t b[70000];
	size_t n;
};

static void a_put(struct args *a, const void *p, size_t n)
{
	if (a->n + n <= sizeof(a->b)) {
		memcpy(a->b + a->n, p, n);
		a->n += n;
	}
}

static void a_str(struct args *a, const char *s)
{
	a_put(a, s, strlen(s) + 1);
}

static int fuse_init(struct conn *c)
{
	struct fuse_init_in in = {
		.major = FUSE_KERNEL_VERSION, .minor = FUSE_KERNEL_MINOR_VERSION, .max_readahead = 128 << 10,
		.flags = FUSE_ASYNC_READ | FUSE_POSIX_LOCKS | FUSE_ATOMIC_O_TRUNC | FUSE_BIG_WRITES | FUSE_DONT_MASK |
		         FUSE_FLOCK_LOCKS | FUSE_DO_READDIRPLUS | FUSE_READDIRPLUS_AUTO | FUSE_PARALLEL_DIROPS |
		         FUSE_MAX_PAGES | FUSE_INIT_EXT,
	};
	struct fuse_init_out out;
	memset(&out, 0, sizeof(out));
	int rc = fop(c, FUSE_INIT, 0, &in, sizeof(in), &out, sizeof(out));
	if (rc < 0)
		return rc;
	if (rc < 8 || out.major != FUSE_KERNEL_VERSION)
		return -EPROTO;
	c->fuse_minor = out.minor;
	return 0;
}

static int lookup(struct conn *c, uint64_t parent, const char *name, struct fuse_entry_out *e)
{
	struct fuse_entry_out tmp;
	if (!e)
		e = &tmp;
	memset(e, 0, sizeof(*e));
	int rc = fop(c, FUSE_LOOKUP, parent, name, strlen(name) + 1, e, sizeof(*e));
	if (rc >= 0 && e->nodeid == 0)
		return -ENOENT; /* a negative entry */
	return rc;
}

static int forget(struct conn *c, uint64_t nodeid, uint64_t n)
{
	struct fuse_forget_in in = { .nlookup = n };
	struct call k = { .opcode = FUSE_FORGET, .nodeid = nodeid, .arg = &in, .arglen = sizeof(in), .no_wr = true };
	return fcall(c, &k);
}

static int getattr(struct conn *c, uint64_t nodeid, struct fuse_attr_out *a)
{
	struct fuse_getattr_in in = { 0 };
	struct fuse_attr_out tmp;
	return fop(c, FUSE_GETATTR, nodeid, &in, sizeof(in), a ? a : &tmp, sizeof(tmp));
}

static int do_open(struct conn *c, uint32_t opcode, uint64_t nodeid, uint32_t flags, uint64_t *fh)
{
	struct fuse_open_in in = { .flags = flags };
	struct fuse_open_out out = { 0 };
	int rc = fop(c, opcode, nodeid, &in, sizeof(in), &out, sizeof(out));
	if (rc >= 0 && fh)
		*fh = out.fh;
	return rc;
}

static int do_release(struct conn *c, uint32_t opcode, uint64_t nodeid, uint64_t fh)
{
	struct fuse_release_in in = { .fh = fh };
	return fop(c, opcode, nodeid, &in, sizeof(in), NULL, 0);
}

static int do_read(struct conn *c, uint64_t nodeid, uint64_t fh, uint64_t off, uint32_t size, void *out,
                   size_t cap)
{
	struct fuse_read_in in = { .fh = fh, .offset = off, .size = size };
	struct call k = { .opcode = FUSE_READ, .nodeid = nodeid, .arg = &in, .arglen = sizeof(in), .out = out,
	                  .outcap = cap, .wr_cap = (uint32_t)(cap + sizeof(struct fuse_out_header)) };
	return fcall(c, &k);
}

static int do_write(struct conn *c, uint64_t nodeid, uint64_t fh, uint64_t off, const void *data, uint32_t size)
{
	struct args *a = calloc(1, sizeof(*a));
	struct fuse_write_in in = { .fh = fh, .offset = off, .size = size };
	struct fuse_write_out out = { 0 };
	a_put(a, &in, sizeof(in));
	a_put(a, data, size);
	int rc = fop(c, FUSE_WRITE, nodeid, a->b, a->n, &out, sizeof(out));
	free(a);
	return rc >= 0 ? (int)out.size : rc;
}

static int do_mkdir(struct conn *c, uint64_t parent, const char *name, struct fuse_entry_out *e)
{
	struct args a = { .n = 0 };
	struct fuse_mkdir_in in = { .mode = 0755, .umask = 0 };
	struct fuse_entry_out tmp;
	a_put(&a, &in, sizeof(in));
	a_str(&a, name);
	return fop(c, FUSE_MKDIR, parent, a.b, a.n, e ? e : &tmp, sizeof(tmp));
}

static int do_create(struct conn *c, uint64_t parent, const char *name, uint32_t flags, struct fuse_entry_out *e,
                     uint64_t *fh)
{
	struct args a = { .n = 0 };
	struct fuse_create_in in = { .flags = flags, .mode = S_IFREG | 0644 };
	struct { struct fuse_entry_out e; struct fuse_open_out o; } out;
	memset(&out, 0, sizeof(out));
	a_put(&a, &in, sizeof(in));
	a_str(&a, name);
	int rc = fop(c, FUSE_CREATE, parent, a.b, a.n, &out, sizeof(out));
	if (rc >= 0) {
		if (e)
			*e = out.e;
		if (fh)
			*fh = out.o.fh;
	}
	return rc;
}

static int do_mknod(struct conn *c, uint64_t parent, const char *name, uint32_t mode, uint32_t rdev,
                    struct fuse_entry_out *e)
{
	struct args a = { .n = 0 };
	struct fuse_mknod_in in = { .mode = mode, .rdev = rdev };
	struct fuse_entry_out tmp;
	a_put(&a, &in, sizeof(in));
	a_str(&a, name);
	return fop(c, FUSE_MKNOD, parent, a.b, a.n, e ? e : &tmp, sizeof(tmp));
}

static int do_symlink(struct conn *c, uint64_t parent, const char *name, const char *target,
                      struct fuse_entry_out *e)
{
	struct args a = { .n = 0 };
	struct fuse_entry_out tmp;
	a_str(&a, name);
	a_str(&a, target);
	return fop(c, FUSE_SYMLINK, parent, a.b, a.n, e ? e : &tmp, sizeof(tmp));
}

static int do_link(struct conn *c, uint64_t oldnode, uint64_t newparent, const char *name, struct fuse_entry_out *e)
{
	struct args a = { .n = 0 };
	struct fuse_link_in in = { .oldnodeid = oldnode };
	struct fuse_entry_out tmp;
	a_put(&a, &in, sizeof(in));
	a_str(&a, name);
	return fop(c, FUSE_LINK, newparent, a.b, a.n, e ? e : &tmp, sizeof(tmp));
}

static int do_rename(struct conn *c, uint64_t parent, const char *name, uint64_t newparent, const char *newname,
                     uint32_t flags)
{
	struct args a = { .n = 0 };
	if (flags) {
		struct fuse_rename2_in in = { .newdir = newparent, .flags = flags };
		a_put(&a, &in, sizeof(in));
	} else {
		struct fuse_rename_in in = { .newdir = newparent };
		a_put(&a, &in, sizeof(in));
	}
	a_str(&a, name);
	a_str(&a, newname);
	return fop(c, flags ? FUSE_RENAME2 : FUSE_RENAME, parent, a.b, a.n, NULL, 0);
}

static int do_name_op(struct conn *c, uint32_t opcode, uint64_t parent, const char *name)
{
	return fop(c, opcode, parent, name, strlen(name) + 1, NULL, 0);
}

static int do_setattr(struct conn *c, uint64_t nodeid, const struct fuse_setattr_in *in, struct fuse_attr_out *out)
{
	struct fuse_attr_out tmp;
	return fop(c, FUSE_SETATTR, nodeid, in, sizeof(*in), out ? out : &tmp, sizeof(tmp));
}

/* ------------------------------------------------------------------------------------------------------------
 * Checks: shared pieces
 * ------------------------------------------------------------------------------------------------------------ */

struct ctx {
	struct conn c;
	uint64_t work;          /* node id of the check's own directory in the share */
	char work_name[128];
	char work_path[PATH_MAX];
	struct stat outside_st, parent_st, root_st, canary_st, passwd_st;
};

/* Whether an attribute reply names something outside the share we know of. */
static const char *outside_ino(const struct ctx *t, uint64_t ino)
{
	if (ino == t->outside_st.st_ino)
		return "the canary directory outside the share";
	if (ino == t->parent_st.st_ino)
		return "the share's parent directory";
	if (ino == t->canary_st.st_ino)
		return "the canary file outside the share";
	if (ino == t->passwd_st.st_ino)
		return "/etc/passwd";
	return NULL;
}

/* A directory node that reaches outside the share would find the marker. */
static bool reaches_outside(struct conn *c, uint64_t dir)
{
	struct fuse_entry_out e;
	if (lookup(c, dir, "vufs-hostile-marker", &e) >= 0)
		return true;
	if (lookup(c, dir, "canary", &e) >= 0 && e.attr.size == 64 * strlen(CANARY_TEXT))
		return true;
	return false;
}

/* The backend still answers a LOOKUP and a GETATTR of a file in the share, with the right inode. */
static bool alive(struct conn *c, char *why, size_t len)
{
	struct fuse_entry_out e;
	struct stat st;
	char p[PATH_MAX + 64];
	share_path(p, sizeof(p), "vufs-hostile-probe");
	stat(p, &st);
	int rc = lookup(c, FUSE_ROOT_ID, "vufs-hostile-probe", &e);
	if (rc < 0) {
		snprintf(why, len, "LOOKUP of a file in the share: %s%s%s", res_str(rc), rc == RES_BAD ? ": " : "",
		         rc == RES_BAD ? c->bad : "");
		return false;
	}
	if (e.attr.ino != st.st_ino) {
		snprintf(why, len, "LOOKUP of a file in the share answered inode %llu, the host says %llu",
		         (unsigned long long)e.attr.ino, (unsigned long long)st.st_ino);
		return false;
	}
	struct fuse_attr_out a;
	rc = getattr(c, e.nodeid, &a);
	if (rc < 0 || a.attr.ino != st.st_ino) {
		snprintf(why, len, "GETATTR after LOOKUP: %s", res_str(rc));
		return false;
	}
	forget(c, e.nodeid, 1);
	return true;
}

static bool ctx_connect(struct ctx *t)
{
	int rc = conn_open(&t->c);
	if (rc < 0) {
		skipf("cannot connect to %s: %s", opt.socket, strerror(-rc));
		return false;
	}
	return true;
}

/* Connects, starts the device, sends INIT, and makes the check's work directory. */
static bool ctx_start(struct ctx *t, bool init)
{
	char why[256];
	if (!ctx_connect(t))
		return false;
	int rc = conn_start_queues(&t->c);
	if (rc < 0) {
		failf("setting up the device failed: %s", rc < -4095 ? res_str(rc) : strerror(-rc));
		return false;
	}
	conn_track(&t->c);
	if (!init)
		return true;
	rc = fuse_init(&t->c);
	if (rc < 0) {
		failf("INIT failed: %s", res_str(rc));
		return false;
	}
	if (!alive(&t->c, why, sizeof(why))) {
		failf("baseline: %s", why);
		return false;
	}
	struct fuse_entry_out e;
	rc = lookup(&t->c, FUSE_ROOT_ID, t->work_name, &e);
	if (rc < 0) {
		failf("LOOKUP of the work directory: %s", res_str(rc));
		return false;
	}
	t->work = e.nodeid;
	return true;
}

/* The backend still serves on its request queue. */
static void require_alive(struct ctx *t, const char *after)
{
	char why[256];
	if (failed())
		return;
	if (!alive(&t->c, why, sizeof(why)))
		failf("the backend stopped serving after %s: %s", after, why);
}

/* The used-entry and memory checks every request made. */
static void require_clean(struct ctx *t)
{
	if (t->c.violation[0])
		failf("%s", t->c.violation);
}

static void host_mkdir(struct ctx *t, const char *rel)
{
	char p[PATH_MAX * 2];
	snprintf(p, sizeof(p), "%s/%s", t->work_path, rel);
	mkdir(p, 0777);
}

static void host_file(struct ctx *t, const char *rel, const char *text)
{
	char p[PATH_MAX * 2];
	snprintf(p, sizeof(p), "%s/%s", t->work_path, rel);
	write_file(p, text, 0666);
}

static bool host_exists(struct ctx *t, const char *rel, struct stat *st)
{
	char p[PATH_MAX * 2];
	struct stat tmp;
	snprintf(p, sizeof(p), "%s/%s", t->work_path, rel);
	return lstat(p, st ? st : &tmp) == 0;
}

/* Relative path from the work directory (share/hw-NAME) to the outside canary directory. */
static void outside_rel(char *out, size_t len, const char *tail)
{
	snprintf(out, len, "../../%s%s%s", outside_base, tail[0] ? "/" : "", tail);
}

static void __attribute__((format(printf, 3, 4))) expect_refused(struct conn *c, int rc, const char *fmt, ...)
{
	char what[256];
	va_list ap;
	if (refused(rc))
		return;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	if (rc == RES_BAD)
		failf("%s: malformed reply (%s)", what, c->bad);
	else if (rc == RES_TIMEOUT)
		failf("%s: no reply within %d ms", what, c->timeout_ms);
	else if (rc == RES_DEAD)
		failf("%s: the backend disconnected", what);
	else
		failf("%s was accepted (%s)", what, res_str(rc));
}

/* Any answer will do (an error, an empty used entry, even success), but one must come. */
static void __attribute__((format(printf, 3, 4))) expect_answer(struct conn *c, int rc, const char *fmt, ...)
{
	char what[256];
	va_list ap;
	if (rc >= 0 || refused(rc))
		return;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	if (rc == RES_BAD)
		failf("%s: malformed reply (%s)", what, c->bad);
	else if (rc == RES_TIMEOUT)
		failf("%s: no reply within %d ms", what, c->timeout_ms);
	else
		failf("%s: %s", what, res_str(rc));
}

static const uint64_t bogus_ids[] = {
	0, UINT64_MAX, UINT64_MAX - 1, 1ull << 63, 0x7fffffffffffffffull, 0xdeadbeefcafebabeull, 0x5a5a5a5a00000001ull,
	0x0123456789abcdefull, 0xffffffff00000001ull, 0x00000001ffffffffull,
};
#define NBOGUS (sizeof(bogus_ids) / sizeof(bogus_ids[0]))

static void esc_name(char *out, size_t len, const char *tag)
{
	snprintf(out, len, "%s-%s", esc_prefix, tag);
}

/* ---- session ---- */

static void ck_before_init(struct ctx *t)
{
	struct conn *c = &t->c;
	expect_refused(c, getattr(c, FUSE_ROOT_ID, NULL), "GETATTR before INIT");
	expect_refused(c, lookup(c, FUSE_ROOT_ID, "vufs-hostile-probe", NULL), "LOOKUP before INIT");
	char esc[128];
	esc_name(esc, sizeof(esc), "preinit");
	expect_refused(c, do_mkdir(c, FUSE_ROOT_ID, esc, NULL), "MKDIR before INIT");
	int rc = fuse_init(c);
	if (rc < 0)
		failf("INIT after refused requests: %s", res_str(rc));
}

static void ck_init_truncated(struct ctx *t)
{
	struct conn *c = &t->c;
	struct fuse_init_in in = { .major = 7, .minor = 38 };
	static const uint32_t lens[] = { 0, 4, 7 };
	for (unsigned i = 0; i < 3; i++) {
		struct call k = { .opcode = FUSE_INIT, .arg = &in, .arglen = lens[i] };
		expect_refused(c, fcall(c, &k), "INIT with %u argument bytes", lens[i]);
	}
	int rc = fuse_init(c);
	if (rc < 0)
		failf("a proper INIT after truncated ones: %s", res_str(rc));
}

static void ck_init_bad_version(struct ctx *t)
{
	struct conn *c = &t->c;
	struct fuse_init_in in = { .major = 6, .minor = 99 };
	expect_refused(c, fop(c, FUSE_INIT, 0, &in, sizeof(in), NULL, 0), "INIT for protocol 6.99");
	in = (struct fuse_init_in){ .major = 0, .minor = 0 };
	expect_refused(c, fop(c, FUSE_INIT, 0, &in, sizeof(in), NULL, 0), "INIT for protocol 0.0");
	in = (struct fuse_init_in){ .major = UINT32_MAX, .minor = UINT32_MAX, .max_readahead = UINT32_MAX,
	                            .flags = UINT32_MAX, .flags2 = UINT32_MAX };
	expect_answer(c, fop(c, FUSE_INIT, 0, &in, sizeof(in), NULL, 0), "INIT for protocol 4294967295.x");
	int rc = fuse_init(c);
	if (rc < 0)
		failf("a proper INIT after bad ones: %s", res_str(rc));
}

static void ck_init_twice(struct ctx *t)
{
	struct conn *c = &t->c;
	struct fuse_init_in in = { .major = 7, .minor = 38, .flags = UINT32_MAX, .flags2 = UINT32_MAX,
	                           .max_readahead = UINT32_MAX };
	int rc = fop(c, FUSE_INIT, 0, &in, sizeof(in), NULL, 0);
	expect_answer(c, rc, "a second INIT");
	notef("a second INIT: %s", res_str(rc));
}

static void ck_destroy_reinit(struct ctx *t)
{
	struct conn *c = &t->c;
	host_file(t, "f", "data");
	struct fuse_entry_out e;
	uint64_t fh = 0;
	int rc = lookup(c, t->work, "f", &e);
	if (rc < 0 || do_open(c, FUSE_OPEN, e.nodeid, O_RDWR, &fh) < 0) {
		failf("setup: LOOKUP/OPEN failed");
		return;
	}
	rc = fop(c, FUSE_DESTROY, 0, NULL, 0, NULL, 0);
	expect_answer(c, rc, "DESTROY");
	rc = getattr(c, e.nodeid, NULL);
	notef("GETATTR after DESTROY: %s", res_str(rc));
	if (rc == RES_TIMEOUT || rc == RES_DEAD || rc == RES_BAD) {
		failf("GETATTR after DESTROY: %s", res_str(rc));
		return;
	}
	rc = fuse_init(c);
	if (rc < 0) {
		notef("INIT after DESTROY: %s (the session ended)", res_str(rc));
		if (rc == RES_TIMEOUT || rc == RES_DEAD || rc == RES_BAD)
			failf("INIT after DESTROY: %s", res_str(rc));
		t->work = 0;
		return;
	}
	char buf[16];
	expect_refused(c, do_read(c, e.nodeid, fh, 0, 4, buf, sizeof(buf)), "READ with a handle opened before DESTROY");
	struct fuse_entry_out w;
	if (lookup(c, FUSE_ROOT_ID, t->work_name, &w) >= 0)
		t->work = w.nodeid;
}

/* ---- node ids ---- */

static void ck_nodeid_unknown(struct ctx *t)
{
	struct conn *c = &t->c;
	char esc[128];
	for (unsigned i = 0; i < NBOGUS && !failed(); i++) {
		uint64_t id = bogus_ids[i];
		struct fuse_setattr_in sa = { .valid = FATTR_MODE, .mode = S_IFDIR | 0777 };
		struct fuse_access_in ac = { .mask = 4 };
		esc_name(esc, sizeof(esc), "nodeid");
		expect_refused(c, getattr(c, id, NULL), "GETATTR of node %#llx", (unsigned long long)id);
		expect_refused(c, lookup(c, id, "vufs-hostile-probe", NULL), "LOOKUP in node %#llx", (unsigned long long)id);
		expect_refused(c, lookup(c, id, "..", NULL), "LOOKUP of .. in node %#llx", (unsigned long long)id);
		expect_refused(c, do_open(c, FUSE_OPENDIR, id, O_RDONLY, NULL), "OPENDIR of node %#llx",
		               (unsigned long long)id);
		expect_refused(c, do_open(c, FUSE_OPEN, id, O_RDWR, NULL), "OPEN of node %#llx", (unsigned long long)id);
		expect_refused(c, do_setattr(c, id, &sa, NULL), "SETATTR of node %#llx", (unsigned long long)id);
		expect_refused(c, do_mkdir(c, id, esc, NULL), "MKDIR in node %#llx", (unsigned long long)id);
		expect_refused(c, do_create(c, id, esc, O_RDWR | O_CREAT, NULL, NULL), "CREATE in node %#llx",
		               (unsigned long long)id);
		expect_refused(c, do_mknod(c, id, esc, S_IFREG | 0644, 0, NULL), "MKNOD in node %#llx",
		               (unsigned long long)id);
		expect_refused(c, do_symlink(c, id, esc, "/", NULL), "SYMLINK in node %#llx", (unsigned long long)id);
		expect_refused(c, do_name_op(c, FUSE_UNLINK, id, "vufs-hostile-probe"), "UNLINK in node %#llx",
		               (unsigned long long)id);
		expect_refused(c, do_name_op(c, FUSE_RMDIR, id, t->work_name), "RMDIR in node %#llx",
		               (unsigned long long)id);
		expect_refused(c, fop(c, FUSE_READLINK, id, NULL, 0, NULL, 0), "READLINK of node %#llx",
		               (unsigned long long)id);
		expect_refused(c, fop(c, FUSE_ACCESS, id, &ac, sizeof(ac), NULL, 0), "ACCESS of node %#llx",
		               (unsigned long long)id);
		expect_refused(c, do_rename(c, id, "vufs-hostile-probe", t->work, "stolen", 0), "RENAME from node %#llx",
		               (unsigned long long)id);
		expect_refused(c, do_rename(c, t->work, "nothing", id, "x", 0), "RENAME into node %#llx",
		               (unsigned long long)id);
		expect_refused(c, do_link(c, id, t->work, "hl", NULL), "LINK of node %#llx", (unsigned long long)id);
		expect_answer(c, forget(c, id, 1), "FORGET of node %#llx", (unsigned long long)id);
	}
}

static void ck_nodeid_forgotten(struct ctx *t)
{
	struct conn *c = &t->c;
	host_file(t, "a", "a");
	host_file(t, "b", "b");
	struct fuse_entry_out a, b, a2;
	if (lookup(c, t->work, "a", &a) < 0 || lookup(c, t->work, "b", &b) < 0) {
		failf("setup: LOOKUP failed");
		return;
	}
	forget(c, a.nodeid, 1);
	/* FORGET has no reply: the next request on the same queue is served after it. */
	struct fuse_attr_out at;
	int rc = getattr(c, a.nodeid, &at);
	if (rc >= 0 && at.attr.ino != a.attr.ino)
		failf("GETATTR of a forgotten node id answered another file (inode %llu, was %llu)",
		      (unsigned long long)at.attr.ino, (unsigned long long)a.attr.ino);
	notef("GETATTR of a forgotten node: %s", res_str(rc));
	/* Another lookup may reuse the slot: the old id must not silently become the new file. */
	forget(c, b.nodeid, 1);
	host_file(t, "c", "c");
	struct fuse_entry_out cc;
	if (lookup(c, t->work, "c", &cc) >= 0 && cc.nodeid == a.nodeid && cc.generation == a.generation)
		notef("a reused node id comes back with the same generation");
	rc = lookup(c, t->work, "a", &a2);
	if (rc < 0)
		failf("LOOKUP after FORGET: %s", res_str(rc));
}

/* ---- file handles ---- */

static void fh_attacks(struct ctx *t, uint64_t node, uint64_t fh, const char *what)
{
	struct conn *c = &t->c;
	char buf[64];
	struct fuse_flush_in fl = { .fh = fh };
	struct fuse_fsync_in fs = { .fh = fh };
	struct fuse_lseek_in ls = { .fh = fh, .whence = SEEK_END };
	struct fuse_fallocate_in fa = { .fh = fh, .offset = 0, .length = 4096 };
	struct fuse_lk_in lk = { .fh = fh, .owner = 7, .lk = { .start = 0, .end = 10, .type = F_RDLCK } };
	expect_refused(c, do_read(c, node, fh, 0, 16, buf, sizeof(buf)), "READ with %s %#llx", what, (unsigned long long)fh);
	expect_refused(c, do_write(c, node, fh, 0, "evil", 4), "WRITE with %s %#llx", what, (unsigned long long)fh);
	expect_refused(c, fop(c, FUSE_FLUSH, node, &fl, sizeof(fl), NULL, 0), "FLUSH with %s", what);
	expect_refused(c, fop(c, FUSE_FSYNC, node, &fs, sizeof(fs), NULL, 0), "FSYNC with %s", what);
	expect_refused(c, fop(c, FUSE_LSEEK, node, &ls, sizeof(ls), buf, sizeof(buf)), "LSEEK with %s", what);
	expect_refused(c, fop(c, FUSE_FALLOCATE, node, &fa, sizeof(fa), NULL, 0), "FALLOCATE with %s", what);
	/* GETLK tests the node's lock state: a backend may ignore the handle. */
	expect_answer(c, fop(c, FUSE_GETLK, node, &lk, sizeof(lk), buf, sizeof(buf)), "GETLK with %s", what);
	struct fuse_setattr_in sa = { .valid = FATTR_FH | FATTR_SIZE, .fh = fh, .size = 1 };
	struct fuse_attr_out ao;
	int rc = do_setattr(c, node, &sa, &ao);
	if (rc >= 0)
		notef("SETATTR(size) with %s was applied to the node", what);
	expect_answer(c, rc, "SETATTR with %s", what);
	expect_answer(c, do_release(c, FUSE_RELEASE, node, fh), "RELEASE of %s", what);
}

static void ck_fh_forged(struct ctx *t)
{
	struct conn *c = &t->c;
	host_file(t, "f", "0123456789");
	struct fuse_entry_out e;
	uint64_t fh;
	if (lookup(c, t->work, "f", &e) < 0 || do_open(c, FUSE_OPEN, e.nodeid, O_RDWR, &fh) < 0) {
		failf("setup: LOOKUP/OPEN failed");
		return;
	}
	/* (not 2^64-1: some backends read it as "no handle given" and act on the node, which is harmless) */
	const uint64_t forged[] = { fh + 1, fh + 2, fh + 1000, fh ^ (1ull << 40), UINT64_MAX - 1, 1ull << 63,
	                            0xdeadbeefcafebabeull, fh + 0x100000000ull };
	for (unsigned i = 0; i < sizeof(forged) / sizeof(forged[0]) && !failed(); i++)
		fh_attacks(t, e.nodeid, forged[i], "a forged file handle");
	/* The real handle still works and the file is as it was. */
	char buf[16] = { 0 };
	int rc = do_read(c, e.nodeid, fh, 0, 10, buf, sizeof(buf));
	if (rc != 10 || memcmp(buf, "0123456789", 10))
		failf("READ with the real handle after forged ones: %s", res_str(rc));
	do_release(c, FUSE_RELEASE, e.nodeid, fh);
}

static void ck_fh_stale(struct ctx *t)
{
	struct conn *c = &t->c;
	host_file(t, "f", "0123456789");
	struct fuse_entry_out e;
	uint64_t fh, dh;
	if (lookup(c, t->work, "f", &e) < 0 || do_open(c, FUSE_OPEN, e.nodeid, O_RDWR, &fh) < 0) {
		failf("setup: LOOKUP/OPEN failed");
		return;
	}
	int rc = do_release(c, FUSE_RELEASE, e.nodeid, fh);
	if (rc < 0) {
		failf("RELEASE: %s", res_str(rc));
		return;
	}
	fh_attacks(t, e.nodeid, fh, "a released file handle");
	if (do_open(c, FUSE_OPENDIR, t->work, O_RDONLY, &dh) < 0) {
		failf("setup: OPENDIR failed");
		return;
	}
	do_release(c, FUSE_RELEASEDIR, t->work, dh);
	struct fuse_read_in rd = { .fh = dh, .size = 4096 };
	char buf[4096];
	expect_refused(c, fop(c, FUSE_READDIR, t->work, &rd, sizeof(rd), buf, sizeof(buf)), "READDIR with a released handle");
	expect_refused(c, fop(c, FUSE_READDIRPLUS, t->work, &rd, sizeof(rd), buf, sizeof(buf)),
	               "READDIRPLUS with a released handle");
	expect_answer(c, do_release(c, FUSE_RELEASEDIR, t->work, dh), "RELEASEDIR twice");
	struct stat st;
	if (host_exists(t, "f", &st) && st.st_size != 10)
		failf("the file changed size through a released handle (%lld bytes)", (long long)st.st_size);
}

/* ---- names ---- */

/* Every name-taking operation with one hostile name: all must be refused (creating or removing nothing). */
static void name_attacks(struct ctx *t, const char *name, const char *label, bool allow_lookup_self)
{
	struct conn *c = &t->c;
	struct fuse_entry_out e;
	int rc = lookup(c, t->work, name, &e);
	if (rc >= 0) {
		const char *o = outside_ino(t, e.attr.ino);
		if (o)
			failf("LOOKUP of %s reached %s", label, o);
		else if (!allow_lookup_self)
			expect_refused(c, rc, "LOOKUP of %s", label);
		else if (S_ISDIR(e.attr.mode) && reaches_outside(c, e.nodeid))
			failf("LOOKUP of %s gave a directory outside the share", label);
	} else {
		expect_refused(c, rc, "LOOKUP of %s", label);
	}
	expect_refused(c, do_mkdir(c, t->work, name, NULL), "MKDIR of %s", label);
	expect_refused(c, do_create(c, t->work, name, O_RDWR | O_CREAT | O_EXCL, NULL, NULL), "CREATE of %s", label);
	expect_refused(c, do_mknod(c, t->work, name, S_IFREG | 0644, 0, NULL), "MKNOD of %s", label);
	expect_refused(c, do_symlink(c, t->work, name, "target", NULL), "SYMLINK named %s", label);
	expect_refused(c, do_name_op(c, FUSE_UNLINK, t->work, name), "UNLINK of %s", label);
	expect_refused(c, do_name_op(c, FUSE_RMDIR, t->work, name), "RMDIR of %s", label);
	struct fuse_entry_out f;
	if (lookup(c, t->work, "victim", &f) >= 0)
		expect_refused(c, do_link(c, f.nodeid, t->work, name, NULL), "LINK to %s", label);
	expect_refused(c, do_rename(c, t->work, "victim", t->work, name, 0), "RENAME to %s", label);
	expect_refused(c, do_rename(c, t->work, name, t->work, "stolen", 0), "RENAME from %s", label);
	expect_refused(c, do_rename(c, t->work, "victim", t->work, name, RENAME_NOREPLACE), "RENAME2 to %s", label);
	expect_refused(c, do_rename(c, t->work, name, t->work, "victim", 2 /* RENAME_EXCHANGE */), "RENAME2 exchange with %s",
	               label);
	if (!host_exists(t, "victim", NULL))
		failf("the file renamed to %s left the work directory", label);
	if (host_exists(t, "stolen", NULL))
		failf("RENAME from %s brought something into the share", label);
}

static void names_setup(struct ctx *t)
{
	host_file(t, "victim", "victim");
	host_mkdir(t, "sub");
	host_file(t, "sub/x", "x");
}

static void ck_name_slash(struct ctx *t)
{
	char rel[PATH_MAX], esc[128], abs_esc[PATH_MAX + 128];
	names_setup(t);
	esc_name(esc, sizeof(esc), "slash");
	name_attacks(t, "sub/x", "a name with '/' (sub/x)", false);
	snprintf(rel, sizeof(rel), "../../%s", esc);
	name_attacks(t, rel, "a name with '/' (../../esc)", false);
	outside_rel(rel, sizeof(rel), "canary");
	name_attacks(t, rel, "a name with '/' (../../outside/canary)", false);
	outside_rel(rel, sizeof(rel), "dir");
	name_attacks(t, rel, "a name with '/' (../../outside/dir)", false);
	snprintf(abs_esc, sizeof(abs_esc), "%s/%s", outside_dir, esc);
	name_attacks(t, abs_esc, "an absolute path", false);
	name_attacks(t, "/tmp", "\"/tmp\"", false);
	name_attacks(t, "x/", "a name ending in '/'", false);
}

static void ck_name_dotdot(struct ctx *t)
{
	struct conn *c = &t->c;
	names_setup(t);
	name_attacks(t, "..", "\"..\"", true);
	/* Climbing with .. from the root, and from below it, never leaves the share. */
	uint64_t node = FUSE_ROOT_ID;
	for (int i = 0; i < 4 && !failed(); i++) {
		struct fuse_entry_out e;
		int rc = lookup(c, node, "..", &e);
		if (rc < 0) {
			expect_refused(c, rc, "LOOKUP of .. from the root");
			break;
		}
		const char *o = outside_ino(t, e.attr.ino);
		if (o)
			failf("LOOKUP of .. from the root reached %s", o);
		else if (e.attr.ino != t->root_st.st_ino)
			failf("LOOKUP of .. from the root gave inode %llu, not the root", (unsigned long long)e.attr.ino);
		else if (reaches_outside(c, e.nodeid))
			failf("LOOKUP of .. from the root gave a directory outside the share");
		node = e.nodeid;
	}
	struct fuse_entry_out s;
	if (lookup(c, t->work, "sub", &s) >= 0) {
		struct fuse_entry_out e;
		int rc = lookup(c, s.nodeid, "..", &e);
		if (rc >= 0 && e.attr.ino != (uint64_t)0 && outside_ino(t, e.attr.ino))
			failf("LOOKUP of .. from a subdirectory left the share");
		expect_refused(c, do_rename(c, s.nodeid, "x", s.nodeid, "../../x", 0), "RENAME to ../../x");
	}
}

static void ck_name_dot(struct ctx *t)
{
	struct conn *c = &t->c;
	names_setup(t);
	name_attacks(t, ".", "\".\"", true);
	struct fuse_entry_out e;
	int rc = lookup(c, t->work, ".", &e);
	struct stat st;
	stat(t->work_path, &st);
	if (rc >= 0 && e.attr.ino != st.st_ino)
		failf("LOOKUP of . gave inode %llu, not the directory itself", (unsigned long long)e.attr.ino);
}

static void ck_name_empty(struct ctx *t)
{
	struct conn *c = &t->c;
	names_setup(t);
	name_attacks(t, "", "an empty name", true);
	struct fuse_entry_out e;
	struct stat st;
	stat(t->work_path, &st);
	int rc = lookup(c, t->work, "", &e);
	if (rc >= 0 && e.attr.ino != st.st_ino)
		failf("LOOKUP of an empty name gave inode %llu", (unsigned long long)e.attr.ino);
}

static void ck_name_too_long(struct ctx *t)
{
	static char name[70000];
	names_setup(t);
	const size_t lens[] = { 256, 257, 1024, 4096, 4097, 65536 };
	for (unsigned i = 0; i < sizeof(lens) / sizeof(lens[0]) && !failed(); i++) {
		memset(name, 'n', lens[i]);
		name[lens[i]] = 0;
		char label[64];
		snprintf(label, sizeof(label), "a %zu-byte name", lens[i]);
		name_attacks(t, name, label, false);
	}
	/* 255 bytes is fine. */
	memset(name, 'n', 255);
	name[255] = 0;
	int rc = do_mkdir(&t->c, t->work, name, NULL);
	if (rc < 0)
		notef("MKDIR of a 255-byte name: %s", res_str(rc));
}

/* Names without their NUL, placed so that they end exactly where guest memory ends. */
static void ck_name_no_nul(struct ctx *t)
{
	struct conn *c = &t->c;
	char esc[128];
	names_setup(t);
	esc_name(esc, sizeof(esc), "nonul");
	struct args a = { .n = 0 };
	a_put(&a, esc, strlen(esc));
	struct call k = { .opcode = FUSE_LOOKUP, .nodeid = t->work, .arg = a.b, .arglen = a.n, .place = PLACE_TAIL };
	expect_refused(c, fcall(c, &k), "LOOKUP of a name without NUL at the end of guest memory");
	k.opcode = FUSE_UNLINK;
	expect_refused(c, fcall(c, &k), "UNLINK of a name without NUL");
	k.opcode = FUSE_RMDIR;
	expect_refused(c, fcall(c, &k), "RMDIR of a name without NUL");
	k.opcode = FUSE_REMOVEXATTR;
	expect_refused(c, fcall(c, &k), "REMOVEXATTR of a name without NUL");

	a.n = 0;
	struct fuse_mkdir_in mi = { .mode = 0755 };
	a_put(&a, &mi, sizeof(mi));
	a_put(&a, esc, strlen(esc));
	k = (struct call){ .opcode = FUSE_MKDIR, .nodeid = t->work, .arg = a.b, .arglen = a.n, .place = PLACE_TAIL };
	expect_refused(c, fcall(c, &k), "MKDIR of a name without NUL");
	a.n = 0;
	struct fuse_create_in ci = { .flags = O_RDWR | O_CREAT, .mode = S_IFREG | 0644 };
	a_put(&a, &ci, sizeof(ci));
	a_put(&a, esc, strlen(esc));
	k = (struct call){ .opcode = FUSE_CREATE, .nodeid = t->work, .arg = a.b, .arglen = a.n, .place = PLACE_TAIL };
	expect_refused(c, fcall(c, &k), "CREATE of a name without NUL");
	/* SYMLINK: the name has its NUL, the target does not. */
	a.n = 0;
	a_str(&a, esc);
	a_put(&a, "/etc/passwd", 11);
	k = (struct call){ .opcode = FUSE_SYMLINK, .nodeid = t->work, .arg = a.b, .arglen = a.n, .place = PLACE_TAIL };
	expect_refused(c, fcall(c, &k), "SYMLINK with a target without NUL");
	/* RENAME: the new name has no NUL. */
	a.n = 0;
	struct fuse_rename_in ri = { .newdir = t->work };
	a_put(&a, &ri, sizeof(ri));
	a_str(&a, "victim");
	a_put(&a, esc, strlen(esc));
	k = (struct call){ .opcode = FUSE_RENAME, .nodeid = t->work, .arg = a.b, .arglen = a.n, .place = PLACE_TAIL };
	expect_refused(c, fcall(c, &k), "RENAME to a name without NUL");
	if (!host_exists(t, "victim", NULL))
		failf("RENAME to a name without NUL moved the file");
	char p[PATH_MAX + 200];
	snprintf(p, sizeof(p), "%s/%s", t->work_path, esc);
	if (access(p, F_OK) == 0)
		failf("a name without NUL was created");
}

static void ck_name_trailing_garbage(struct ctx *t)
{
	struct conn *c = &t->c;
	char esc[128], rel[256];
	names_setup(t);
	esc_name(esc, sizeof(esc), "trailing");
	snprintf(rel, sizeof(rel), "../../%s", esc);
	struct args a = { .n = 0 };
	struct fuse_mkdir_in mi = { .mode = 0755 };
	a_put(&a, &mi, sizeof(mi));
	a_str(&a, "okname");
	a_str(&a, rel);
	int rc = fop(c, FUSE_MKDIR, t->work, a.b, a.n, NULL, 0);
	expect_answer(c, rc, "MKDIR with bytes after the name's NUL");
	notef("MKDIR \"okname\\0../../esc\": %s", res_str(rc));
	a.n = 0;
	a_str(&a, "victim");
	a_str(&a, rel);
	a_str(&a, rel);
	rc = fop(c, FUSE_LOOKUP, t->work, a.b, a.n, NULL, 0);
	expect_answer(c, rc, "LOOKUP with bytes after the name's NUL");
}

/* ---- framing ---- */

static void ck_hdr_len_larger(struct ctx *t)
{
	struct conn *c = &t->c;
	const char *name = "vufs-hostile-probe";
	const uint32_t extra[] = { 1, 4096, 1u << 20, 0x7fffffffu, 0xffffffffu };
	host_file(t, "f", "0123456789");
	for (unsigned i = 0; i < sizeof(extra) / sizeof(extra[0]); i++) {
		uint32_t actual = (uint32_t)(sizeof(struct fuse_in_header) + strlen(name) + 1);
		uint32_t len = extra[i] >= 0x7fffffffu ? extra[i] : actual + extra[i];
		struct call k = { .opcode = FUSE_LOOKUP, .nodeid = FUSE_ROOT_ID, .arg = name, .arglen = strlen(name) + 1,
		                  .set_len = true, .len = len, .place = PLACE_TAIL };
		int rc = fcall(c, &k);
		expect_answer(c, rc, "LOOKUP whose header says %u bytes (%u sent)", len, actual);
		if (i == 1)
			notef("header len larger than sent: %s", res_str(rc));
		struct fuse_getattr_in gi = { 0 };
		k = (struct call){ .opcode = FUSE_GETATTR, .nodeid = FUSE_ROOT_ID, .arg = &gi, .arglen = sizeof(gi),
		                   .set_len = true, .len = len, .place = PLACE_TAIL };
		expect_answer(c, fcall(c, &k), "GETATTR whose header says %u bytes", len);
	}
	/* WRITE: data length from the header would run off the end of guest memory. */
	struct fuse_entry_out e;
	uint64_t fh;
	if (lookup(c, t->work, "f", &e) >= 0 && do_open(c, FUSE_OPEN, e.nodeid, O_RDWR, &fh) >= 0) {
		struct args a = { .n = 0 };
		struct fuse_write_in wi = { .fh = fh, .size = 1 << 20 };
		a_put(&a, &wi, sizeof(wi));
		a_put(&a, "ABCDEFGH", 8);
		struct call k = { .opcode = FUSE_WRITE, .nodeid = e.nodeid, .arg = a.b, .arglen = a.n, .set_len = true,
		                  .len = (uint32_t)(sizeof(struct fuse_in_header) + sizeof(wi) + (1 << 20)),
		                  .place = PLACE_TAIL };
		expect_answer(c, fcall(c, &k), "WRITE whose header and size say 1 MiB (8 bytes sent)");
		do_release(c, FUSE_RELEASE, e.nodeid, fh);
	}
}

static void ck_hdr_len_smaller(struct ctx *t)
{
	struct conn *c = &t->c;
	const char *name = "vufs-hostile-probe";
	uint32_t actual = (uint32_t)(sizeof(struct fuse_in_header) + strlen(name) + 1);
	const uint32_t lens[] = { actual - 1, actual - 5, sizeof(struct fuse_in_header), 39, 16, 1, 0 };
	for (unsigned i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		struct call k = { .opcode = FUSE_LOOKUP, .nodeid = FUSE_ROOT_ID, .arg = name, .arglen = strlen(name) + 1,
		                  .set_len = true, .len = lens[i] };
		int rc = fcall(c, &k);
		expect_answer(c, rc, "LOOKUP whose header says %u bytes (%u sent)", lens[i], actual);
		if (i == 0)
			notef("header len 1 byte short: %s", res_str(rc));
	}
}

static void ck_hdr_short(struct ctx *t)
{
	struct conn *c = &t->c;
	struct fuse_getattr_in gi = { 0 };
	const uint32_t cuts[] = { 39, 16, 8, 1 };
	for (unsigned i = 0; i < sizeof(cuts) / sizeof(cuts[0]) && !failed(); i++) {
		struct call k = { .opcode = FUSE_GETATTR, .nodeid = FUSE_ROOT_ID, .arg = &gi, .arglen = sizeof(gi),
		                  .cut = true, .cut_len = cuts[i], .place = PLACE_TAIL };
		int rc = fcall(c, &k);
		if (rc == RES_TIMEOUT)
			notef("%u-byte request: no used entry", cuts[i]);
		else
			expect_answer(c, rc, "a %u-byte request (shorter than a FUSE header)", cuts[i]);
	}
	/* No readable descriptor at all. */
	struct call k = { .opcode = FUSE_GETATTR, .nodeid = FUSE_ROOT_ID, .cut = true, .cut_len = 0 };
	int rc = fcall(c, &k);
	if (rc == RES_TIMEOUT)
		notef("chain with no readable part: no used entry");
	else
		expect_answer(c, rc, "a chain with no readable part");
}

struct argop {
	uint32_t op;
	uint32_t size;
	const char *name;
	bool on_file, no_reply;
};

static const struct argop argops[] = {
	{ FUSE_LOOKUP, 0, "LOOKUP", 0, 0 },
	{ FUSE_GETATTR, sizeof(struct fuse_getattr_in), "GETATTR", 1, 0 },
	{ FUSE_SETATTR, sizeof(struct fuse_setattr_in), "SETATTR", 1, 0 },
	{ FUSE_SYMLINK, 0, "SYMLINK", 0, 0 },
	{ FUSE_MKNOD, sizeof(struct fuse_mknod_in), "MKNOD", 0, 0 },
	{ FUSE_MKDIR, sizeof(struct fuse_mkdir_in), "MKDIR", 0, 0 },
	{ FUSE_UNLINK, 0, "UNLINK", 0, 0 },
	{ FUSE_RMDIR, 0, "RMDIR", 0, 0 },
	{ FUSE_RENAME, sizeof(struct fuse_rename_in), "RENAME", 0, 0 },
	{ FUSE_LINK, sizeof(struct fuse_link_in), "LINK", 0, 0 },
	{ FUSE_OPEN, sizeof(struct fuse_open_in), "OPEN", 1, 0 },
	{ FUSE_READ, sizeof(struct fuse_read_in), "READ", 1, 0 },
	{ FUSE_WRITE, sizeof(struct fuse_write_in), "WRITE", 1, 0 },
	{ FUSE_RELEASE, sizeof(struct fuse_release_in), "RELEASE", 1, 0 },
	{ FUSE_FSYNC, sizeof(struct fuse_fsync_in), "FSYNC", 1, 0 },
	{ FUSE_SETXATTR, FUSE_COMPAT_SETXATTR_IN_SIZE, "SETXATTR", 1, 0 },
	{ FUSE_GETXATTR, sizeof(struct fuse_getxattr_in), "GETXATTR", 1, 0 },
	{ FUSE_LISTXATTR, sizeof(struct fuse_getxattr_in), "LISTXATTR", 1, 0 },
	{ FUSE_REMOVEXATTR, 0, "REMOVEXATTR", 1, 0 },
	{ FUSE_FLUSH, sizeof(struct fuse_flush_in), "FLUSH", 1, 0 },
	{ FUSE_OPENDIR, sizeof(struct fuse_open_in), "OPENDIR", 0, 0 },
	{ FUSE_READDIR, sizeof(struct fuse_read_in), "READDIR", 0, 0 },
	{ FUSE_RELEASEDIR, sizeof(struct fuse_release_in), "RELEASEDIR", 0, 0 },
	{ FUSE_FSYNCDIR, sizeof(struct fuse_fsync_in), "FSYNCDIR", 0, 0 },
	{ FUSE_GETLK, sizeof(struct fuse_lk_in), "GETLK", 1, 0 },
	{ FUSE_SETLK, sizeof(struct fuse_lk_in), "SETLK", 1, 0 },
	{ FUSE_SETLKW, sizeof(struct fuse_lk_in), "SETLKW", 1, 0 },
	{ FUSE_ACCESS, sizeof(struct fuse_access_in), "ACCESS", 1, 0 },
	{ FUSE_CREATE, sizeof(struct fuse_create_in), "CREATE", 0, 0 },
	{ FUSE_BMAP, sizeof(struct fuse_bmap_in), "BMAP", 1, 0 },
	{ FUSE_IOCTL, sizeof(struct fuse_ioctl_in), "IOCTL", 1, 0 },
	{ FUSE_POLL, sizeof(struct fuse_poll_in), "POLL", 1, 0 },
	{ FUSE_FALLOCATE, sizeof(struct fuse_fallocate_in), "FALLOCATE", 1, 0 },
	{ FUSE_READDIRPLUS, sizeof(struct fuse_read_in), "READDIRPLUS", 0, 0 },
	{ FUSE_RENAME2, sizeof(struct fuse_rename2_in), "RENAME2", 0, 0 },
	{ FUSE_LSEEK, sizeof(struct fuse_lseek_in), "LSEEK", 1, 0 },
	{ FUSE_COPY_FILE_RANGE, sizeof(struct fuse_copy_file_range_in), "COPY_FILE_RANGE", 1, 0 },
	{ FUSE_SETUPMAPPING, sizeof(struct fuse_setupmapping_in), "SETUPMAPPING", 1, 0 },
	{ FUSE_REMOVEMAPPING, sizeof(struct fuse_removemapping_in), "REMOVEMAPPING", 1, 0 },
	{ FUSE_TMPFILE, sizeof(struct fuse_create_in), "TMPFILE", 0, 0 },
	{ FUSE_FORGET, sizeof(struct fuse_forget_in), "FORGET", 1, 1 },
	{ FUSE_BATCH_FORGET, sizeof(struct fuse_batch_forget_in), "BATCH_FORGET", 1, 1 },
	{ FUSE_INTERRUPT, sizeof(struct fuse_interrupt_in), "INTERRUPT", 1, 1 },
};

static void ck_args_truncated(struct ctx *t)
{
	struct conn *c = &t->c;
	host_file(t, "f", "0123456789");
	struct fuse_entry_out e;
	uint64_t fh = 0;
	if (lookup(c, t->work, "f", &e) < 0 || do_open(c, FUSE_OPEN, e.nodeid, O_RDWR, &fh) < 0) {
		failf("setup: LOOKUP/OPEN failed");
		return;
	}
	char accepted[400] = "";
	uint8_t arg[128];
	for (unsigned i = 0; i < sizeof(argops) / sizeof(argops[0]); i++) {
		const struct argop *o = &argops[i];
		/* A plausible struct (handle, sizes), then cut short. */
		memset(arg, 0, sizeof(arg));
		memcpy(arg, &fh, sizeof(fh));
		uint32_t cuts[3] = { 0, o->size / 2, o->size ? o->size - 1 : 0 };
		for (unsigned j = 0; j < 3; j++) {
			if (j > 0 && (cuts[j] == cuts[j - 1] || o->size == 0))
				continue;
			struct call k = { .opcode = o->op, .nodeid = o->on_file ? e.nodeid : t->work, .arg = arg,
			                  .arglen = cuts[j], .timeout_ms = o->no_reply ? 2000 : 0 };
			int rc = fcall(c, &k);
			if (o->no_reply) {
				if (rc == RES_DEAD || rc == RES_BAD)
					failf("%s with %u of %u argument bytes: %s", o->name, cuts[j], o->size, res_str(rc));
				continue;
			}
			if (rc >= 0) {
				if (strlen(accepted) < sizeof(accepted) - 40)
					snprintf(accepted + strlen(accepted), sizeof(accepted) - strlen(accepted), "%s%s(%u/%u)",
					         accepted[0] ? " " : "", o->name, cuts[j], o->size);
				continue;
			}
			expect_refused(c, rc, "%s with %u of %u argument bytes", o->name, cuts[j], o->size);
		}
	}
	if (accepted[0])
		failf("truncated arguments accepted: %s", accepted);
}

static void ck_opcode_unknown(struct ctx *t)
{
	struct conn *c = &t->c;
	const uint32_t ops[] = { 0, 7, 19, 52, 53, 99, 100, 1000, 4095, 4096, 0x7fffffff, 0x80000000, 0xffffffff };
	uint8_t garbage[64];
	for (unsigned i = 0; i < sizeof(garbage); i++)
		garbage[i] = (uint8_t)rnd64();
	for (unsigned i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
		struct call k = { .opcode = ops[i], .nodeid = FUSE_ROOT_ID, .arg = garbage, .arglen = sizeof(garbage),
		                  .timeout_ms = 3000 };
		int rc = fcall(c, &k);
		expect_refused(c, rc, "unknown opcode %u", ops[i]);
	}
}

static void ck_opcode_unsupported(struct ctx *t)
{
	struct conn *c = &t->c;
	host_file(t, "f", "0123456789");
	struct fuse_entry_out e;
	uint64_t fh = 0;
	if (lookup(c, t->work, "f", &e) < 0 || do_open(c, FUSE_OPEN, e.nodeid, O_RDWR, &fh) < 0) {
		failf("setup: LOOKUP/OPEN failed");
		return;
	}
	uint8_t garbage[512];
	for (unsigned i = 0; i < sizeof(garbage); i++)
		garbage[i] = (uint8_t)rnd64();
	memcpy(garbage, &fh, sizeof(fh));
	const struct { uint32_t op; const char *name; } ops[] = {
		{ FUSE_IOCTL, "IOCTL" }, { FUSE_POLL, "POLL" }, { FUSE_BMAP, "BMAP" }, { FUSE_SETUPMAPPING, "SETUPMAPPING" },
		{ FUSE_REMOVEMAPPING, "REMOVEMAPPING" }, { FUSE_NOTIFY_REPLY, "NOTIFY_REPLY" }, { FUSE_INTERRUPT, "INTERRUPT" },
	};
	for (unsigned i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
		struct call k = { .opcode = ops[i].op, .nodeid = e.nodeid, .arg = garbage, .arglen = sizeof(garbage),
		                  .timeout_ms = 3000 };
		int rc = fcall(c, &k);
		if (rc == RES_TIMEOUT && (ops[i].op == FUSE_NOTIFY_REPLY || ops[i].op == FUSE_INTERRUPT))
			continue; /* no reply is the normal answer */
		expect_answer(c, rc, "%s with garbage arguments", ops[i].name);
	}
	/* An ioctl with huge in/out sizes */
	struct fuse_ioctl_in io = { .fh = fh, .cmd = 0x5401 /* TCGETS */, .in_size = UINT32_MAX, .out_size = UINT32_MAX };
	expect_answer(c, fop(c, FUSE_IOCTL, e.nodeid, &io, sizeof(io), NULL, 0), "IOCTL with 4 GiB sizes");
	do_release(c, FUSE_RELEASE, e.nodeid, fh);
}

/* ---- sizes and offsets ---- */

static void ck_read_huge(struct ctx *t)
{
	struct conn *c = &t->c;
	static char data[8192];
	memset(data, 'r', sizeof(data) - 1);
	host_file(t, "f", data);
	struct fuse_entry_out e;
	uint64_t fh = 0;
	if (lookup(c, t->work, "f", &e) < 0 || do_open(c, FUSE_OPEN, e.nodeid, O_RDONLY, &fh) < 0) {
		failf("setup: LOOKUP/OPEN failed");
		return;
	}
	char buf[SLOT_OUT];
	const struct { uint64_t off; uint32_t size; } rs[] = {
		{ 0, UINT32_MAX }, { 0, 1u << 31 }, { 0, 64u << 20 }, { UINT64_MAX, 4096 }, { UINT64_MAX - 10, 4096 },
		{ 1ull << 63, 4096 }, { (1ull << 63) - 1, UINT32_MAX }, { 4000, UINT32_MAX },
	};
	for (unsigned i = 0; i < sizeof(rs) / sizeof(rs[0]); i++) {
		struct fuse_read_in in = { .fh = fh, .offset = rs[i].off, .size = rs[i].size };
		struct call k = { .opcode = FUSE_READ, .nodeid = e.nodeid, .arg = &in, .arglen = sizeof(in), .out = buf,
		                  .outcap = sizeof(buf), .wr_cap = 4096 + 16 };
		int rc = fcall(c, &k);
		expect_answer(c, rc, "READ of %u bytes at %#llx", rs[i].size, (unsigned long long)rs[i].off);
		if (rc > 4096)
			failf("READ returned %d bytes into a 4096-byte buffer", rc);
	}
	do_release(c, FUSE_RELEASE, e.nodeid, fh);
}

static void ck_write_huge(struct ctx *t)
{
	struct conn *c = &t->c;
	host_file(t, "f", "0123456789");
	struct fuse_entry_out e;
	uint64_t fh = 0;
	if (lookup(c, t->work, "f", &e) < 0 || do_open(c, FUSE_OPEN, e.nodeid, O_RDWR, &fh) < 0) {
		failf("setup: LOOKUP/OPEN failed");
		return;
	}
	/* The size field promises more than was sent; the request ends where guest memory ends. */
	const uint32_t sizes[] = { UINT32_MAX, 1u << 31, (1u << 20) + 1, 1u << 20, 4096, 17 };
	for (unsigned i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		struct args a = { .n = 0 };
		struct fuse_write_in wi = { .fh = fh, .offset = 0, .size = sizes[i] };
		a_put(&a, &wi, sizeof(wi));
		a_put(&a, "WXYZWXYZWXYZWXYZ", 16);
		struct call k = { .opcode = FUSE_WRITE, .nodeid = e.nodeid, .arg = a.b, .arglen = a.n, .place = PLACE_TAIL };
		expect_refused(c, fcall(c, &k), "WRITE whose size says %u bytes (16 sent)", sizes[i]);
	}
	const uint64_t offs[] = { UINT64_MAX - 8, UINT64_MAX, 1ull << 63, (1ull << 63) - 8 };
	for (unsigned i = 0; i < sizeof(offs) / sizeof(offs[0]); i++)
		expect_refused(c, do_write(c, e.nodeid, fh, offs[i], "evil", 4), "WRITE at offset %#llx",
		               (unsigned long long)offs[i]);
	/* Size smaller than the data: any answer, but only the first bytes may land. */
	struct args a = { .n = 0 };
	struct fuse_write_in wi = { .fh = fh, .offset = 0, .size = 4 };
	a_put(&a, &wi, sizeof(wi));
	a_put(&a, "abcdefghijklmnop", 16);
	struct fuse_write_out wo;
	int rc = fop(c, FUSE_WRITE, e.nodeid, a.b, a.n, &wo, sizeof(wo));
	expect_answer(c, rc, "WRITE whose size (4) is less than the data (16)");
	notef("WRITE size 4 with 16 bytes of data: %s", rc >= 0 ? "accepted" : res_str(rc));
	do_release(c, FUSE_RELEASE, e.nodeid, fh);
	struct stat st;
	if (host_exists(t, "f", &st) && st.st_size > 16)
		failf("the file grew to %lld bytes", (long long)st.st_size);
}

static void ck_setxattr_size(struct ctx *t)
{
	struct conn *c = &t->c;
	host_file(t, "f", "0123456789");
	struct fuse_entry_out e;
	if (lookup(c, t->work, "f", &e) < 0) {
		failf("setup: LOOKUP failed");
		return;
	}
	/* Does the backend serve xattrs at all? */
	struct args a = { .n = 0 };
	struct fuse_setxattr_in si = { .size = 4 };
	a_put(&a, &si, FUSE_COMPAT_SETXATTR_IN_SIZE); /* SETXATTR_EXT not negotiated */
	a_str(&a, "user.vufs-hostile");
	a_put(&a, "good", 4);
	int rc = fop(c, FUSE_SETXATTR, e.nodeid, a.b, a.n, NULL, 0);
	notef("xattrs: %s", rc >= 0 ? "served" : res_str(rc));
	const uint32_t sizes[] = { 5, 4096, 65536, 65537, 1u << 20, UINT32_MAX };
	for (unsigned i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		a.n = 0;
		si = (struct fuse_setxattr_in){ .size = sizes[i] };
		a_put(&a, &si, FUSE_COMPAT_SETXATTR_IN_SIZE); /* SETXATTR_EXT not negotiated */
		a_str(&a, "user.vufs-hostile2");
		a_put(&a, "evil", 4);
		struct call k = { .opcode = FUSE_SETXATTR, .nodeid = e.nodeid, .arg = a.b, .arglen = a.n, .place = PLACE_TAIL };
		expect_refused(c, fcall(c, &k), "SETXATTR whose size says %u bytes (4 sent)", sizes[i]);
	}
	char path[PATH_MAX * 2], val[16];
	snprintf(path, sizeof(path), "%s/f", t->work_path);
	ssize_t n = lgetxattr(path, "user.vufs-hostile2", val, sizeof(val));
	if (n >= 0)
		failf("an oversized SETXATTR stored a %zd-byte value", n);
	/* Replies: sizes far beyond the reply buffer. */
	struct fuse_getxattr_in gi = { .size = UINT32_MAX };
	a.n = 0;
	a_put(&a, &gi, sizeof(gi));
	a_str(&a, "user.vufs-hostile");
	struct call k = { .opcode = FUSE_GETXATTR, .nodeid = e.nodeid, .arg = a.b, .arglen = a.n, .wr_cap = 20 };
	expect_answer(c, fcall(c, &k), "GETXATTR of 4 GiB into a 20-byte buffer");
	k = (struct call){ .opcode = FUSE_LISTXATTR, .nodeid = e.nodeid, .arg = &gi, .arglen = sizeof(gi), .wr_cap = 20 };
	expect_answer(c, fcall(c, &k), "LISTXATTR of 4 GiB into a 20-byte buffer");
	/* A name without NUL, at the end of guest memory. */
	a.n = 0;
	si = (struct fuse_setxattr_in){ .size = 0 };
	a_put(&a, &si, FUSE_COMPAT_SETXATTR_IN_SIZE); /* SETXATTR_EXT not negotiated */
	a_put(&a, "user.vufs-hostile3", 18);
	k = (struct call){ .opcode = FUSE_SETXATTR, .nodeid = e.nodeid, .arg = a.b, .arglen = a.n, .place = PLACE_TAIL };
	expect_refused(c, fcall(c, &k), "SETXATTR with a name without NUL");
}

/* ---- forgetting ---- */

static void ck_batch_forget_overrun(struct ctx *t)
{
	struct conn *c = &t->c;
	host_file(t, "a", "a");
	host_file(t, "b", "b");
	struct fuse_entry_out a, b;
	if (lookup(c, t->work, "a", &a) < 0 || lookup(c, t->work, "b", &b) < 0) {
		failf("setup: LOOKUP failed");
		return;
	}
	const uint32_t counts[] = { 3, 1000, 1000000, UINT32_MAX };
	for (unsigned i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
		struct args g = { .n = 0 };
		struct fuse_batch_forget_in bi = { .count = counts[i] };
		struct fuse_forget_one one[2] = { { a.nodeid, 1 }, { b.nodeid, 1 } };
		g.n = 0;
		a_put(&g, &bi, sizeof(bi));
		a_put(&g, one, sizeof(one));
		struct call k = { .opcode = FUSE_BATCH_FORGET, .arg = g.b, .arglen = g.n, .place = PLACE_TAIL, .no_wr = true,
		                  .timeout_ms = 3000 };
		int rc = fcall(c, &k);
		if (rc == RES_DEAD || rc == RES_BAD)
			failf("BATCH_FORGET with count %u and 2 entries: %s", counts[i], res_str(rc));
		require_alive(t, "BATCH_FORGET past the end of the request");
		lookup(c, t->work, "a", &a);
		lookup(c, t->work, "b", &b);
	}
	/* count 0 with entries, and an entry list cut in the middle */
	struct args g = { .n = 0 };
	struct fuse_batch_forget_in bi = { .count = 0 };
	a_put(&g, &bi, sizeof(bi));
	a_put(&g, &a.nodeid, 12);
	struct call k = { .opcode = FUSE_BATCH_FORGET, .arg = g.b, .arglen = g.n, .place = PLACE_TAIL, .no_wr = true,
	                  .timeout_ms = 3000 };
	int rc = fcall(c, &k);
	if (rc == RES_DEAD || rc == RES_BAD)
		failf("BATCH_FORGET with a torn entry: %s", res_str(rc));
}

static void ck_forget_root(struct ctx *t)
{
	struct conn *c = &t->c;
	/* The kernel never forgets the root; a guest that does, one reference at a time, must not lose it. */
	for (int i = 0; i < 3; i++)
		expect_answer(c, forget(c, FUSE_ROOT_ID, 1), "FORGET of the root");
	require_alive(t, "three FORGETs of the root");
	expect_answer(c, forget(c, FUSE_ROOT_ID, UINT64_MAX), "FORGET of the root (2^64-1 references)");
	struct args g = { .n = 0 };
	struct fuse_batch_forget_in bi = { .count = 3 };
	struct fuse_forget_one one[3] = { { FUSE_ROOT_ID, UINT64_MAX }, { FUSE_ROOT_ID, 1 }, { t->work, UINT64_MAX } };
	a_put(&g, &bi, sizeof(bi));
	a_put(&g, one, sizeof(one));
	struct call k = { .opcode = FUSE_BATCH_FORGET, .arg = g.b, .arglen = g.n, .no_wr = true };
	expect_answer(c, fcall(c, &k), "BATCH_FORGET of the root");
	require_alive(t, "FORGET of the root");
	struct fuse_attr_out a;
	int rc = getattr(c, FUSE_ROOT_ID, &a);
	if (rc < 0)
		failf("GETATTR of the root after FORGET: %s", res_str(rc));
	else if (a.attr.ino != t->root_st.st_ino)
		failf("the root is another inode after FORGET");
	struct fuse_entry_out e;
	rc = lookup(c, FUSE_ROOT_ID, t->work_name, &e);
	if (rc < 0)
		failf("LOOKUP in the root after FORGET: %s", res_str(rc));
	else
		t->work = e.nodeid;
}

static void ck_forget_unknown(struct ctx *t)
{
	struct conn *c = &t->c;
	for (unsigned i = 0; i < NBOGUS; i++)
		expect_answer(c, forget(c, bogus_ids[i], 1 + rnd64() % 5), "FORGET of unknown node %#llx",
		              (unsigned long long)bogus_ids[i]);
	host_file(t, "a", "a");
	struct fuse_entry_out a;
	if (lookup(c, t->work, "a", &a) < 0) {
		failf("setup: LOOKUP failed");
		return;
	}
	expect_answer(c, forget(c, a.nodeid, 1000), "FORGET of 1000 references when 1 was taken");
	expect_answer(c, forget(c, a.nodeid, 1), "FORGET of an already forgotten node");
	struct fuse_attr_out at;
	int rc = getattr(c, a.nodeid, &at);
	if (rc >= 0 && at.attr.ino != a.attr.ino)
		failf("an over-forgotten node id now answers for another inode");
	rc = lookup(c, t->work, "a", &a);
	if (rc < 0)
		failf("LOOKUP after over-forgetting: %s", res_str(rc));
}

/* ---- resource floods ---- */

/* The backend's open fds (-1 when --backend-pid is not given or /proc cannot tell). */
static long backend_fds(void)
{
	char p[64];
	long n = 0;
	if (opt.backend_pid <= 0)
		return -1;
	snprintf(p, sizeof(p), "/proc/%d/fd", opt.backend_pid);
	DIR *d = opendir(p);
	if (!d)
		return -1;
	for (struct dirent *e; (e = readdir(d));)
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

/* The backend's resident memory in KiB (-1 when not watched). */
static long backend_rss_kib(void)
{
	char p[64], line[256];
	long kib = -1;
	if (opt.backend_pid <= 0)
		return -1;
	snprintf(p, sizeof(p), "/proc/%d/status", opt.backend_pid);
	FILE *f = fopen(p, "re");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

/* Once the guest has forgotten or released everything, the backend's fds must be back where they were. The
 * release of the last requests may still be under way on the backend's threads: wait up to 2 s. */
static void require_fds_back(long before, long held, const char *after)
{
	long now = backend_fds();
	for (int i = 0; i < 200 && now > before + 4; i++) {
		usleep(10000);
		now = backend_fds();
	}
	if (before < 0 || now < 0)
		return;
	notef("backend fds: %ld before, %ld at the peak, %ld after %s", before, held, now, after);
	if (now > before + 4)
		failf("the backend keeps %ld more fds after %s (%ld before, %ld after)", now - before, after, before, now);
}

/* OPEN one file thousands of times without RELEASE: past the backend's limit the answer must be an error
 * (EMFILE/ENFILE), other requests must still be served, and every fd comes back with the RELEASEs. */
static void ck_open_flood(struct ctx *t)
{
	struct conn *c = &t->c;
	enum { N = 6000, WINDOW = 96 };
	host_file(t, "openme", "x");
	struct fuse_entry_out e;
	if (lookup(c, t->work, "openme", &e) < 0) {
		failf("setup: LOOKUP failed");
		return;
	}
	long fd0 = backend_fds(), rss0 = backend_rss_kib();
	uint64_t *fhs = calloc(N, sizeof(*fhs));
	bool *open_ok = calloc(N, sizeof(*open_ok));
	struct fuse_open_in in = { .flags = O_RDONLY };
	struct fuse_open_out *outs = calloc(WINDOW, sizeof(*outs));
	struct pend *pend = calloc(WINDOW, sizeof(*pend));
	struct call *calls = calloc(WINDOW, sizeof(*calls));
	unsigned ok = 0, errs = 0, other = 0;
	int first_err = 0;
	for (int base = 0; base < N && !c->dead && !other; base += WINDOW) {
		int n = N - base < WINDOW ? N - base : WINDOW, sub[WINDOW];
		for (int i = 0; i < n; i++) {
			calls[i] = (struct call){ .opcode = FUSE_OPEN, .nodeid = e.nodeid, .arg = &in, .arglen = sizeof(in),
			                          .out = &outs[i], .outcap = sizeof(outs[i]) };
			sub[i] = fsubmit(c, &calls[i], &pend[i]);
		}
		for (int i = 0; i < n; i++) {
			int rc = sub[i] < 0 ? sub[i] : ffinish(c, &pend[i]);
			if (rc >= 0) {
				fhs[base + i] = outs[i].fh;
				open_ok[base + i] = true;
				ok++;
			} else if (is_errno(rc)) {
				errs++;
				if (!first_err)
					first_err = rc;
			} else {
				other++;
			}
		}
	}
	long fd_peak = backend_fds(), rss_peak = backend_rss_kib();
	notef("%u of %d opens succeeded, %u refused (%s)", ok, N, errs, first_err ? errname(-first_err) : "-");
	if (other)
		failf("OPEN number %u of %d: no proper answer (backend stopped serving)", ok + errs + 1, N);
	struct fuse_attr_out a;
	expect_answer(c, getattr(c, e.nodeid, &a), "a GETATTR while %u handles are open", ok);
	for (int i = 0; i < N && !failed() && !c->dead; i++) {
		if (!open_ok[i])
			continue;
		int rc = do_release(c, FUSE_RELEASE, e.nodeid, fhs[i]);
		if (rc < 0 && !is_errno(rc))
			failf("RELEASE of handle %d: %s", i, res_str(rc));
		else if (rc < 0)
			failf("RELEASE of a handle the backend gave: %s", res_str(rc));
	}
	require_alive(t, "releasing every handle");
	if (!failed())
		require_fds_back(fd0, fd_peak, "every RELEASE");
	if (rss0 >= 0)
		notef("backend RSS: %ld KiB before, %ld KiB with %u handles open", rss0, rss_peak, ok);
	free(fhs);
	free(open_ok);
	free(outs);
	free(pend);
	free(calls);
}

/* Creates N empty files DIR/<prefix><number> from the host and looks DIR up; false (and the check failed) if
 * that fails. */
static bool many_files(struct ctx *t, const char *dir, const char *prefix, int n, struct fuse_entry_out *d)
{
	char p[PATH_MAX * 2];
	host_mkdir(t, dir);
	for (int i = 0; i < n; i++) {
		snprintf(p, sizeof(p), "%s/%s/%s%05d", t->work_path, dir, prefix, i);
		int fd = open(p, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
		if (fd >= 0)
			close(fd);
	}
	if (lookup(&t->c, t->work, dir, d) < 0) {
		failf("setup: LOOKUP failed");
		return false;
	}
	return true;
}

/* The same few names looked up --flood times without a FORGET: the lookup counts grow, memory must not. */
static void ck_lookup_repeat(struct ctx *t)
{
	struct conn *c = &t->c;
	enum { NAMES = 1000, WINDOW = 96 };
	struct fuse_entry_out d;
	if (!many_files(t, "rep", "r", NAMES, &d))
		return;
	long fd0 = backend_fds(), rss0 = -1, rss_peak = -1;
	static uint64_t ids[NAMES];
	static uint64_t counts[NAMES];
	memset(ids, 0, sizeof(ids));
	memset(counts, 0, sizeof(counts));
	struct fuse_entry_out outs[WINDOW];
	struct pend pend[WINDOW];
	struct call calls[WINDOW];
	char names[WINDOW][16];
	unsigned sent = 0, errs = 0;
	uint64_t start = now_ms();
	while (sent < opt.flood && !c->dead && !failed()) {
		unsigned n = opt.flood - sent < WINDOW ? opt.flood - sent : WINDOW;
		int sub[WINDOW];
		for (unsigned i = 0; i < n; i++) {
			snprintf(names[i], sizeof(names[i]), "r%05u", (sent + i) % NAMES);
			calls[i] = (struct call){ .opcode = FUSE_LOOKUP, .nodeid = d.nodeid, .arg = names[i],
			                          .arglen = strlen(names[i]) + 1, .out = &outs[i], .outcap = sizeof(outs[i]) };
			sub[i] = fsubmit(c, &calls[i], &pend[i]);
		}
		for (unsigned i = 0; i < n; i++) {
			int rc = sub[i] < 0 ? sub[i] : ffinish(c, &pend[i]);
			unsigned k = (sent + i) % NAMES;
			if (rc >= 0 && outs[i].nodeid) {
				if (ids[k] && ids[k] != outs[i].nodeid)
					failf("name r%05u changed node id while looked up", k);
				ids[k] = outs[i].nodeid;
				counts[k]++;
			} else if (is_errno(rc)) {
				errs++;
			} else {
				failf("LOOKUP number %u: no proper answer (%s)", sent + i + 1, res_str(rc));
			}
		}
		sent += n;
		if (rss0 < 0 && sent >= NAMES * 4)
			rss0 = backend_rss_kib(); /* every node exists by now: growth after this is per lookup */
	}
	rss_peak = backend_rss_kib();
	notef("%u LOOKUPs of %d names in %llu ms, %u refused", sent, NAMES, (unsigned long long)(now_ms() - start), errs);
	if (rss0 >= 0 && rss_peak >= 0) {
		notef("backend RSS: %ld KiB after %d lookups, %ld KiB after %u", rss0, NAMES * 4, rss_peak, sent);
		if (rss_peak > rss0 + 32 * 1024)
			failf("the backend grew by %ld KiB over repeated lookups of the same names", rss_peak - rss0);
	}
	/* One FORGET per node with the whole count. */
	for (int i = 0; i < NAMES && !failed(); i++) {
		int rc = ids[i] ? forget(c, ids[i], counts[i]) : 0;
		if (rc == RES_DEAD || rc == RES_BAD || rc == RES_TIMEOUT)
			failf("FORGET of %llu lookups: %s", (unsigned long long)counts[i], res_str(rc));
	}
	require_alive(t, "forgetting every lookup");
	if (!failed())
		require_fds_back(fd0, -1, "the FORGETs");
}

static void ck_lookup_flood(struct ctx *t)
{
	struct conn *c = &t->c;
	enum { N = 20000, WINDOW = 96 };
	struct fuse_entry_out d;
	if (!many_files(t, "many", "f", N, &d))
		return;
	long fd0 = backend_fds();
	uint64_t *ids = calloc(N, sizeof(*ids));
	struct fuse_entry_out *outs = calloc(WINDOW, sizeof(*outs));
	struct pend *pend = calloc(WINDOW, sizeof(*pend));
	struct call *calls = calloc(WINDOW, sizeof(*calls));
	char (*names)[16] = calloc(WINDOW, sizeof(*names));
	unsigned ok = 0, errs = 0, other = 0;
	int first_err = 0;
	uint64_t start = now_ms();
	for (int base = 0; base < N && !c->dead; base += WINDOW) {
		int n = N - base < WINDOW ? N - base : WINDOW;
		int sub[WINDOW];
		for (int i = 0; i < n; i++) {
			snprintf(names[i], sizeof(names[i]), "f%05d", base + i);
			calls[i] = (struct call){ .opcode = FUSE_LOOKUP, .nodeid = d.nodeid, .arg = names[i],
			                          .arglen = strlen(names[i]) + 1, .out = &outs[i], .outcap = sizeof(outs[i]) };
			sub[i] = fsubmit(c, &calls[i], &pend[i]);
		}
		for (int i = 0; i < n; i++) {
			int rc = sub[i] < 0 ? sub[i] : ffinish(c, &pend[i]);
			if (rc >= 0 && outs[i].nodeid) {
				ids[base + i] = outs[i].nodeid;
				ok++;
			} else if (is_errno(rc)) {
				errs++;
				if (!first_err)
					first_err = rc;
			} else {
				other++;
			}
		}
		if (other)
			break;
	}
	long fd_peak = backend_fds();
	notef("%u of %d lookups succeeded, %u refused (%s), in %llu ms", ok, N, errs,
	      first_err ? errname(-first_err) : "-", (unsigned long long)(now_ms() - start));
	if (other)
		failf("LOOKUP number %u of %d: no proper answer (backend stopped serving)", ok + errs + 1, N);
	/* Out of inodes or fds is a fair answer while they are all held; an answer there must be. */
	int rc0 = lookup(c, FUSE_ROOT_ID, "vufs-hostile-probe", NULL);
	expect_answer(c, rc0, "a LOOKUP while 20000 nodes are held");
	if (rc0 < 0)
		notef("a LOOKUP while 20000 nodes are held: %s", res_str(rc0));
	/* Forget them all in batches. */
	struct args *g = calloc(1, sizeof(*g));
	for (int base = 0; base < N && !failed(); base += 1000) {
		g->n = 0;
		struct fuse_batch_forget_in bi = { .count = 0 };
		a_put(g, &bi, sizeof(bi));
		for (int i = base; i < base + 1000 && i < N; i++) {
			if (!ids[i])
				continue;
			struct fuse_forget_one one = { ids[i], 1 };
			a_put(g, &one, sizeof(one));
			bi.count++;
		}
		memcpy(g->b, &bi, sizeof(bi));
		struct call k = { .opcode = FUSE_BATCH_FORGET, .arg = g->b, .arglen = g->n, .no_wr = true, .hiprio = true };
		int rc = fcall(c, &k);
		if (rc == RES_DEAD || rc == RES_BAD || rc == RES_TIMEOUT)
			failf("BATCH_FORGET of 1000 nodes: %s", res_str(rc));
	}
	free(g);
	require_alive(t, "forgetting 20000 nodes");
	if (!failed())
		require_fds_back(fd0, fd_peak, "the FORGETs");
	/* and the files can be looked up again */
	if (!failed() && lookup(c, d.nodeid, "f12345", NULL) < 0)
		failf("LOOKUP after the flood was forgotten failed");
	free(ids);
	free(outs);
	free(pend);
	free(calls);
	free(names);
}

/* ---- special files ---- */

/* Opens from the host so that a backend blocked in open(2) of the FIFO returns. */
static void unstick_fifo(const char *path)
{
	for (int i = 0; i < 20; i++) {
		int w = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
		int r = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
		sleep_ms(20);
		if (w >= 0)
			close(w);
		if (r >= 0)
			close(r);
	}
}

static void ck_open_fifo(struct ctx *t)
{
	struct conn *c = &t->c;
	struct fuse_entry_out e;
	char path[PATH_MAX * 2];
	snprintf(path, sizeof(path), "%s/fifo", t->work_path);
	int rc = do_mknod(c, t->work, "fifo", S_IFIFO | 0666, 0, &e);
	notef("MKNOD of a FIFO by the guest: %s", res_str(rc));
	if (rc < 0) {
		mkfifo(path, 0666);
		if (lookup(c, t->work, "fifo", &e) < 0) {
			failf("setup: LOOKUP of a host-made FIFO failed");
			return;
		}
	}
	const struct { uint32_t flags; const char *name; } modes[] = {
		{ O_RDONLY, "O_RDONLY" }, { O_WRONLY, "O_WRONLY" }, { O_RDWR, "O_RDWR" }, { O_RDONLY | O_NONBLOCK, "O_RDONLY|O_NONBLOCK" },
	};
	c->timeout_ms = 3000;
	for (unsigned i = 0; i < sizeof(modes) / sizeof(modes[0]) && !failed(); i++) {
		uint64_t fh;
		rc = do_open(c, FUSE_OPEN, e.nodeid, modes[i].flags, &fh);
		if (rc == RES_TIMEOUT) {
			failf("OPEN(%s) of a FIFO hung (no reply in 3 s)", modes[i].name);
			unstick_fifo(path);
			break;
		}
		expect_refused(c, rc, "OPEN(%s) of a FIFO", modes[i].name);
		if (rc >= 0)
			do_release(c, FUSE_RELEASE, e.nodeid, fh);
	}
	if (!failed()) {
		/* CREATE of the existing name without O_EXCL must not open it either. */
		uint64_t fh;
		rc = do_create(c, t->work, "fifo", O_RDONLY | O_CREAT, NULL, &fh);
		if (rc == RES_TIMEOUT) {
			failf("CREATE of an existing FIFO's name hung");
			unstick_fifo(path);
		} else {
			expect_refused(c, rc, "CREATE (no O_EXCL) of an existing FIFO's name");
		}
	}
	c->timeout_ms = opt.timeout_ms;
}

static void open_device(struct ctx *t, const char *name, mode_t type, dev_t dev, const char *what)
{
	struct conn *c = &t->c;
	struct fuse_entry_out e;
	char path[PATH_MAX * 2];
	snprintf(path, sizeof(path), "%s/%s", t->work_path, name);
	uint32_t rdev = (uint32_t)((minor(dev) & 0xff) | (major(dev) << 8) | ((minor(dev) & ~0xffu) << 12));
	int rc = do_mknod(c, t->work, name, type | 0666, rdev, &e);
	notef("MKNOD of %s by the guest: %s", what, res_str(rc));
	if (rc < 0) {
		if (mknod(path, type | 0666, dev) < 0 || lookup(c, t->work, name, &e) < 0) {
			skipf("cannot make %s on the host (%s)", what, strerror(errno));
			return;
		}
	}
	const uint32_t modes[] = { O_RDONLY, O_RDONLY | O_NONBLOCK };
	c->timeout_ms = 3000;
	for (unsigned i = 0; i < 2 && !failed(); i++) {
		uint64_t fh;
		rc = do_open(c, FUSE_OPEN, e.nodeid, modes[i], &fh);
		if (rc >= 0) {
			char buf[64];
			int n = do_read(c, e.nodeid, fh, 0, 16, buf, sizeof(buf));
			failf("OPEN of %s was accepted%s", what, n > 0 ? " and READ returned the host device's data" : "");
			do_release(c, FUSE_RELEASE, e.nodeid, fh);
		} else {
			expect_refused(c, rc, "OPEN of %s", what);
		}
	}
	c->timeout_ms = opt.timeout_ms;
}

static void ck_open_chardev(struct ctx *t)
{
	open_device(t, "zero", S_IFCHR, makedev(1, 5), "a character device (1:5, /dev/zero)");
}

static void ck_open_blockdev(struct ctx *t)
{
	struct stat st;
	if (stat("/", &st) < 0 || major(st.st_dev) == 0) {
		skipf("the host's root file system is not on a block device");
		return;
	}
	open_device(t, "disk", S_IFBLK, st.st_dev, "a block device (the host's root disk, read-only attempt)");
}

static void ck_create_existing_special(struct ctx *t)
{
	struct conn *c = &t->c;
	char path[PATH_MAX * 2];
	snprintf(path, sizeof(path), "%s/fifo2", t->work_path);
	mkfifo(path, 0666);
	c->timeout_ms = 3000;
	const uint32_t flags[] = { O_RDONLY | O_CREAT, O_WRONLY | O_CREAT, O_RDWR | O_CREAT | O_TRUNC };
	for (unsigned i = 0; i < 3 && !failed(); i++) {
		uint64_t fh;
		int rc = do_create(c, t->work, "fifo2", flags[i], NULL, &fh);
		if (rc == RES_TIMEOUT) {
			failf("CREATE (no O_EXCL) of an existing FIFO's name hung");
			unstick_fifo(path);
			break;
		}
		expect_refused(c, rc, "CREATE (no O_EXCL, flags %#x) of an existing FIFO's name", flags[i]);
	}
	c->timeout_ms = opt.timeout_ms;
}

/* ---- symlinks ---- */

/* A symlink node must behave as the link itself: attributes of the link, never opened, never a directory. */
static void symlink_node_attacks(struct ctx *t, const char *name, const char *target, const char *what,
                                 const char *target_content)
{
	struct conn *c = &t->c;
	struct fuse_entry_out e;
	int rc = do_symlink(c, t->work, name, target, &e);
	if (rc < 0) {
		char p[PATH_MAX * 2];
		snprintf(p, sizeof(p), "%s/%s", t->work_path, name);
		symlink(target, p);
		notef("SYMLINK by the guest: %s (made on the host)", res_str(rc));
	}
	rc = lookup(c, t->work, name, &e);
	if (rc < 0) {
		failf("LOOKUP of %s: %s", what, res_str(rc));
		return;
	}
	const char *o = outside_ino(t, e.attr.ino);
	if (o)
		failf("LOOKUP of %s answered %s", what, o);
	else if (!S_ISLNK(e.attr.mode))
		failf("LOOKUP of %s answered mode %o, not a symlink", what, e.attr.mode);
	struct fuse_attr_out a;
	rc = getattr(c, e.nodeid, &a);
	if (rc >= 0 && (!S_ISLNK(a.attr.mode) || outside_ino(t, a.attr.ino)))
		failf("GETATTR of %s answered the target's attributes", what);
	const uint32_t modes[] = { O_RDONLY, O_RDWR, O_RDONLY | O_NOFOLLOW, O_WRONLY | O_APPEND };
	for (unsigned i = 0; i < 4 && !failed(); i++) {
		uint64_t fh;
		rc = do_open(c, FUSE_OPEN, e.nodeid, modes[i], &fh);
		if (rc >= 0) {
			char buf[256] = { 0 };
			int n = do_read(c, e.nodeid, fh, 0, 200, buf, sizeof(buf));
			if (n > 0 && target_content && !memcmp(buf, target_content, strlen(target_content) < (size_t)n ? strlen(target_content) : (size_t)n))
				failf("OPEN+READ of %s read the target outside the share", what);
			else
				failf("OPEN(%#x) of %s was accepted", modes[i], what);
			do_release(c, FUSE_RELEASE, e.nodeid, fh);
		} else {
			expect_refused(c, rc, "OPEN of %s", what);
		}
	}
	uint64_t dh;
	rc = do_open(c, FUSE_OPENDIR, e.nodeid, O_RDONLY, &dh);
	expect_refused(c, rc, "OPENDIR of %s", what);
	if (rc >= 0)
		do_release(c, FUSE_RELEASEDIR, e.nodeid, dh);
	expect_refused(c, lookup(c, e.nodeid, "vufs-hostile-marker", NULL), "LOOKUP inside %s", what);
	char buf[PATH_MAX];
	rc = fop(c, FUSE_READLINK, e.nodeid, NULL, 0, buf, sizeof(buf));
	if (rc < 0)
		notef("READLINK of %s: %s", what, res_str(rc));
	/* CREATE of the link's name without O_EXCL: an open(2) that follows the link would truncate the target. */
	uint64_t fh;
	rc = do_create(c, t->work, name, O_RDWR | O_CREAT | O_TRUNC, NULL, &fh);
	if (rc >= 0) {
		failf("CREATE (O_TRUNC, no O_EXCL) of %s's name opened something", what);
		do_release(c, FUSE_RELEASE, e.nodeid, fh);
	}
}

static void ck_symlink_abs(struct ctx *t)
{
	char target[PATH_MAX + 64];
	FILE *f = fopen("/etc/passwd", "r");
	char passwd[64] = "";
	if (f) {
		if (!fgets(passwd, sizeof(passwd), f))
			passwd[0] = 0;
		fclose(f);
	}
	symlink_node_attacks(t, "lnk-passwd", "/etc/passwd", "a symlink to /etc/passwd", passwd[0] ? passwd : NULL);
	snprintf(target, sizeof(target), "%s/canary-rw", outside_dir);
	symlink_node_attacks(t, "lnk-abs", target, "an absolute symlink to a file outside the share", CANARY_TEXT);
}

static void ck_symlink_rel(struct ctx *t)
{
	char target[PATH_MAX];
	outside_rel(target, sizeof(target), "canary-rw");
	symlink_node_attacks(t, "lnk-rel", target, "a symlink to ../../outside/canary-rw", CANARY_TEXT);
	outside_rel(target, sizeof(target), "link-to-canary");
	symlink_node_attacks(t, "lnk-rel2", target, "a symlink to a symlink outside the share", CANARY_TEXT);
}

/* A symlink to a directory outside: nothing may be looked up, created or removed through it. */
static void ck_symlink_dir(struct ctx *t)
{
	struct conn *c = &t->c;
	char esc[128];
	esc_name(esc, sizeof(esc), "symdir");
	const char *names[] = { "lnk-dir", "lnk-dir-abs", "lnk-up", "lnk-root" };
	char targets[4][PATH_MAX + 64];
	outside_rel(targets[0], sizeof(targets[0]), "");
	snprintf(targets[1], sizeof(targets[1]), "%s", outside_dir);
	snprintf(targets[2], sizeof(targets[2]), "../..");
	snprintf(targets[3], sizeof(targets[3]), "/");
	for (unsigned i = 0; i < 4 && !failed(); i++) {
		struct fuse_entry_out e;
		int rc = do_symlink(c, t->work, names[i], targets[i], &e);
		if (rc < 0) {
			char p[PATH_MAX * 2];
			snprintf(p, sizeof(p), "%s/%s", t->work_path, names[i]);
			symlink(targets[i], p);
		}
		if (lookup(c, t->work, names[i], &e) < 0) {
			failf("LOOKUP of the symlink %s failed", names[i]);
			return;
		}
		uint64_t l = e.nodeid;
		const char *what = names[i];
		struct fuse_entry_out x;
		rc = lookup(c, l, "vufs-hostile-marker", &x);
		if (rc >= 0)
			failf("LOOKUP through %s found a file outside the share", what);
		if (lookup(c, l, outside_base, &x) >= 0)
			failf("LOOKUP through %s found the directory outside the share", what);
		expect_refused(c, lookup(c, l, "canary", &x), "LOOKUP of canary inside %s", what);
		expect_refused(c, lookup(c, l, "..", &x), "LOOKUP of .. inside %s", what);
		expect_refused(c, do_mkdir(c, l, esc, NULL), "MKDIR inside %s", what);
		expect_refused(c, do_create(c, l, esc, O_RDWR | O_CREAT, NULL, NULL), "CREATE inside %s", what);
		expect_refused(c, do_mknod(c, l, esc, S_IFREG | 0600, 0, NULL), "MKNOD inside %s", what);
		expect_refused(c, do_symlink(c, l, esc, "x", NULL), "SYMLINK inside %s", what);
		expect_refused(c, do_name_op(c, FUSE_UNLINK, l, "canary"), "UNLINK inside %s", what);
		expect_refused(c, do_name_op(c, FUSE_RMDIR, l, "dir"), "RMDIR inside %s", what);
		expect_refused(c, do_rename(c, l, "canary", t->work, "stolen", 0), "RENAME out of %s", what);
		expect_refused(c, do_rename(c, t->work, "victim", l, esc, 0), "RENAME into %s", what);
		struct fuse_create_in ci = { .flags = O_RDWR, .mode = S_IFREG | 0600 };
		struct args a = { .n = 0 };
		a_put(&a, &ci, sizeof(ci));
		a_str(&a, "tmp");
		expect_refused(c, fop(c, FUSE_TMPFILE, l, a.b, a.n, NULL, 0), "TMPFILE inside %s", what);
		uint64_t dh;
		rc = do_open(c, FUSE_OPENDIR, l, O_RDONLY, &dh);
		if (rc >= 0) {
			failf("OPENDIR of %s was accepted", what);
			do_release(c, FUSE_RELEASEDIR, l, dh);
		}
		struct fuse_entry_out pr;
		if (lookup(c, FUSE_ROOT_ID, "vufs-hostile-probe", &pr) >= 0)
			expect_refused(c, do_link(c, pr.nodeid, l, esc, NULL), "LINK into %s", what);
		struct fuse_setattr_in sa = { .valid = FATTR_MODE, .mode = 0777 };
		do_setattr(c, l, &sa, NULL);
	}
}

static void ck_symlink_setattr(struct ctx *t)
{
	struct conn *c = &t->c;
	char target[PATH_MAX];
	outside_rel(target, sizeof(target), "canary-rw");
	struct fuse_entry_out e;
	int rc = do_symlink(c, t->work, "lnk-set", target, &e);
	if (rc < 0) {
		char p[PATH_MAX * 2];
		snprintf(p, sizeof(p), "%s/lnk-set", t->work_path);
		symlink(target, p);
		if (lookup(c, t->work, "lnk-set", &e) < 0) {
			failf("setup: LOOKUP of the symlink failed");
			return;
		}
	}
	const struct fuse_setattr_in sas[] = {
		{ .valid = FATTR_MODE, .mode = S_IFREG | 07777 },
		{ .valid = FATTR_UID | FATTR_GID, .uid = 65534, .gid = 65534 },
		{ .valid = FATTR_SIZE, .size = 0 },
		{ .valid = FATTR_SIZE, .size = 1 << 20 },
		{ .valid = FATTR_ATIME | FATTR_MTIME, .atime = 123456789, .mtime = 123456789 },
		{ .valid = FATTR_ATIME_NOW | FATTR_MTIME_NOW | FATTR_ATIME | FATTR_MTIME },
		{ .valid = FATTR_MODE | FATTR_UID | FATTR_GID | FATTR_SIZE | FATTR_ATIME | FATTR_MTIME | FATTR_CTIME,
		  .mode = 0777, .uid = 1, .gid = 1, .size = 3, .atime = 1, .mtime = 1, .ctime = 1 },
		{ .valid = FATTR_KILL_SUIDGID | FATTR_MODE, .mode = 0 },
	};
	for (unsigned i = 0; i < sizeof(sas) / sizeof(sas[0]); i++) {
		struct fuse_attr_out a;
		rc = do_setattr(c, e.nodeid, &sas[i], &a);
		expect_answer(c, rc, "SETATTR %#x of a symlink", sas[i].valid);
		if (rc >= 0 && outside_ino(t, a.attr.ino))
			failf("SETATTR of a symlink answered the target's attributes");
	}
	/* The same through a file handle the guest claims to have. */
	struct fuse_setattr_in sa = { .valid = FATTR_SIZE | FATTR_FH, .fh = 0, .size = 0 };
	expect_answer(c, do_setattr(c, e.nodeid, &sa, NULL), "SETATTR(size, fh 0) of a symlink");
	struct fuse_access_in ac = { .mask = 2 };
	expect_answer(c, fop(c, FUSE_ACCESS, e.nodeid, &ac, sizeof(ac), NULL, 0), "ACCESS of a symlink");
	struct fuse_fallocate_in fa = { .fh = 0, .length = 1 << 20 };
	expect_answer(c, fop(c, FUSE_FALLOCATE, e.nodeid, &fa, sizeof(fa), NULL, 0), "FALLOCATE on a symlink");
}

static void ck_symlink_xattr(struct ctx *t)
{
	struct conn *c = &t->c;
	char target[PATH_MAX];
	outside_rel(target, sizeof(target), "canary-rw");
	struct fuse_entry_out e;
	if (do_symlink(c, t->work, "lnk-x", target, &e) < 0) {
		char p[PATH_MAX * 2];
		snprintf(p, sizeof(p), "%s/lnk-x", t->work_path);
		symlink(target, p);
		if (lookup(c, t->work, "lnk-x", &e) < 0) {
			failf("setup: LOOKUP of the symlink failed");
			return;
		}
	}
	const char *names[] = { "user.vufs-hostile", "trusted.vufs-hostile", "security.vufs-hostile" };
	for (unsigned i = 0; i < 3; i++) {
		struct args a = { .n = 0 };
		struct fuse_setxattr_in si = { .size = 4 };
		a_put(&a, &si, FUSE_COMPAT_SETXATTR_IN_SIZE); /* SETXATTR_EXT not negotiated */
		a_str(&a, names[i]);
		a_put(&a, "evil", 4);
		expect_answer(c, fop(c, FUSE_SETXATTR, e.nodeid, a.b, a.n, NULL, 0), "SETXATTR %s on a symlink", names[i]);
		a.n = 0;
		struct fuse_getxattr_in gi = { .size = 64 };
		a_put(&a, &gi, sizeof(gi));
		a_str(&a, names[i]);
		char buf[64];
		expect_answer(c, fop(c, FUSE_GETXATTR, e.nodeid, a.b, a.n, buf, sizeof(buf)), "GETXATTR on a symlink");
		expect_answer(c, do_name_op(c, FUSE_REMOVEXATTR, e.nodeid, names[i]), "REMOVEXATTR on a symlink");
	}
}

/* ---- links and renames ---- */

static void ck_link_unknown(struct ctx *t)
{
	struct conn *c = &t->c;
	for (unsigned i = 0; i < NBOGUS; i++) {
		char name[32];
		snprintf(name, sizeof(name), "hl%u", i);
		expect_refused(c, do_link(c, bogus_ids[i], t->work, name, NULL), "LINK of never looked-up node %#llx",
		               (unsigned long long)bogus_ids[i]);
		if (host_exists(t, name, NULL))
			failf("LINK of node %#llx created a file", (unsigned long long)bogus_ids[i]);
	}
	/* A node forgotten before the LINK. */
	host_file(t, "a", "a");
	struct fuse_entry_out a;
	if (lookup(c, t->work, "a", &a) >= 0) {
		forget(c, a.nodeid, 1);
		int rc = do_link(c, a.nodeid, t->work, "hl-forgotten", NULL);
		struct stat st, sa;
		if (rc >= 0 && host_exists(t, "hl-forgotten", &st) && host_exists(t, "a", &sa) && st.st_ino != sa.st_ino)
			failf("LINK of a forgotten node linked another file");
	}
}

static void ck_link_escape(struct ctx *t)
{
	struct conn *c = &t->c;
	char target[PATH_MAX];
	outside_rel(target, sizeof(target), "canary");
	struct fuse_entry_out l, e;
	if (do_symlink(c, t->work, "lnk", target, &l) < 0) {
		char p[PATH_MAX * 2];
		snprintf(p, sizeof(p), "%s/lnk", t->work_path);
		symlink(target, p);
		if (lookup(c, t->work, "lnk", &l) < 0) {
			failf("setup: LOOKUP of the symlink failed");
			return;
		}
	}
	int rc = do_link(c, l.nodeid, t->work, "hl-sym", &e);
	struct stat st;
	if (rc >= 0) {
		if (!host_exists(t, "hl-sym", &st) || !S_ISLNK(st.st_mode))
			failf("LINK of a symlink made something that is not a symlink");
		if (outside_ino(t, e.attr.ino) || st.st_ino == t->canary_st.st_ino)
			failf("LINK of a symlink hard-linked the file outside the share");
	}
	expect_refused(c, do_link(c, t->work, t->work, "hl-dir", NULL), "LINK of a directory");
	expect_refused(c, do_link(c, FUSE_ROOT_ID, t->work, "hl-root", NULL), "LINK of the root");
	struct fuse_entry_out p;
	if (lookup(c, FUSE_ROOT_ID, "vufs-hostile-probe", &p) >= 0) {
		expect_refused(c, do_link(c, p.nodeid, l.nodeid, "hl", NULL), "LINK into a symlink");
		char rel[PATH_MAX + 128], esc[128];
		esc_name(esc, sizeof(esc), "link");
		snprintf(rel, sizeof(rel), "../../%s", esc);
		expect_refused(c, do_link(c, p.nodeid, t->work, rel, NULL), "LINK to ../../esc");
	}
}

static void ck_rename_escape(struct ctx *t)
{
	struct conn *c = &t->c;
	char rel[PATH_MAX + 128], esc[128], canary[PATH_MAX];
	names_setup(t);
	esc_name(esc, sizeof(esc), "rename");
	outside_rel(canary, sizeof(canary), "canary");
	struct fuse_entry_out s;
	if (lookup(c, t->work, "sub", &s) < 0) {
		failf("setup: LOOKUP failed");
		return;
	}
	snprintf(rel, sizeof(rel), "../../%s", esc);
	expect_refused(c, do_rename(c, t->work, "victim", t->work, rel, 0), "RENAME to ../../esc");
	expect_refused(c, do_rename(c, s.nodeid, "x", FUSE_ROOT_ID, rel + 3, 0), "RENAME to ../esc from the root");
	expect_refused(c, do_rename(c, t->work, canary, t->work, "stolen", 0), "RENAME of ../../outside/canary");
	expect_refused(c, do_rename(c, t->work, "victim", t->work, canary, 0), "RENAME over ../../outside/canary");
	expect_refused(c, do_rename(c, t->work, "victim", t->work, canary, 2 /* EXCHANGE */),
	               "RENAME_EXCHANGE with ../../outside/canary");
	expect_refused(c, do_rename(c, t->work, "sub", t->work, "sub/sub2", 0), "RENAME of a directory into itself");
	expect_refused(c, do_rename(c, t->work, "sub", s.nodeid, "loop", 0), "RENAME of a directory under itself");
	expect_refused(c, do_rename(c, FUSE_ROOT_ID, t->work_name, s.nodeid, "w", 0),
	               "RENAME of a directory into its own child");
	expect_refused(c, do_rename(c, t->work, "..", t->work, "up", 0), "RENAME of ..");
	expect_refused(c, do_rename(c, FUSE_ROOT_ID, ".", t->work, "root", 0), "RENAME of the root via .");
	expect_refused(c, do_rename(c, t->work, "victim", t->work, "x", 0xffffffff), "RENAME2 with every flag");
	if (!host_exists(t, "victim", NULL) || !host_exists(t, "sub/x", NULL))
		failf("a refused RENAME moved files");
	if (host_exists(t, "stolen", NULL))
		failf("RENAME brought a file from outside the share into it");
}

struct race {
	struct ctx *t;
	atomic_bool stop;
	uint64_t a, b, root_work;
	char escaped[256];
	unsigned renames, lookups, found;
};

static void *race_renamer(void *arg)
{
	struct race *r = arg;
	struct conn *c = &r->t->c;
	bool in_a = true;
	while (!atomic_load(&r->stop) && !c->dead) {
		int rc = in_a ? do_rename(c, r->a, "d", r->b, "d", 0) : do_rename(c, r->b, "d", r->a, "d", 0);
		if (rc == 0)
			in_a = !in_a;
		do_rename(c, r->root_work, "a", r->root_work, "a2", 0);
		do_rename(c, r->root_work, "a2", r->root_work, "a", 0);
		r->renames++;
		if (rc == RES_TIMEOUT || rc == RES_DEAD)
			break;
	}
	return NULL;
}

static void race_check_entry(struct race *r, const struct fuse_entry_out *e, const char *what)
{
	const char *o = outside_ino(r->t, e->attr.ino);
	if (o && !r->escaped[0])
		snprintf(r->escaped, sizeof(r->escaped), "%s reached %s", what, o);
}

static void *race_lookuper(void *arg)
{
	struct race *r = arg;
	struct conn *c = &r->t->c;
	while (!atomic_load(&r->stop) && !c->dead) {
		struct fuse_entry_out d, e, f;
		uint64_t parent = (r->lookups & 1) ? r->a : r->b;
		int rc = lookup(c, parent, "d", &d);
		if (rc == RES_TIMEOUT || rc == RES_DEAD)
			break;
		r->lookups++;
		if (rc < 0)
			continue;
		race_check_entry(r, &d, "LOOKUP of the moving directory");
		if (lookup(c, d.nodeid, "..", &e) >= 0) {
			race_check_entry(r, &e, "LOOKUP of .. in the moving directory");
			if (lookup(c, e.nodeid, "..", &f) >= 0) {
				race_check_entry(r, &f, "LOOKUP of ../.. in the moving directory");
				forget(c, f.nodeid, 1);
			}
			forget(c, e.nodeid, 1);
		}
		if (lookup(c, d.nodeid, "e", &e) >= 0) {
			race_check_entry(r, &e, "LOOKUP in the moving directory");
			if (lookup(c, e.nodeid, "vufs-hostile-marker", &f) >= 0 && !r->escaped[0])
				snprintf(r->escaped, sizeof(r->escaped), "a LOOKUP during the renames found the marker outside");
			forget(c, e.nodeid, 1);
		}
		if (lookup(c, d.nodeid, outside_base, &f) >= 0 || lookup(c, d.nodeid, "vufs-hostile-marker", &f) >= 0) {
			if (!r->escaped[0])
				snprintf(r->escaped, sizeof(r->escaped), "a LOOKUP during the renames found a name outside");
		}
		r->found++;
		forget(c, d.nodeid, 1);
	}
	return NULL;
}

static void ck_rename_race(struct ctx *t)
{
	struct conn *c = &t->c;
	host_mkdir(t, "a");
	host_mkdir(t, "b");
	host_mkdir(t, "a/d");
	host_mkdir(t, "a/d/e");
	host_file(t, "a/d/f", "f");
	struct fuse_entry_out a, b;
	if (lookup(c, t->work, "a", &a) < 0 || lookup(c, t->work, "b", &b) < 0) {
		failf("setup: LOOKUP failed");
		return;
	}
	struct race r = { .t = t, .a = a.nodeid, .b = b.nodeid, .root_work = t->work };
	atomic_init(&r.stop, false);
	pthread_t th[3];
	pthread_create(&th[0], NULL, race_renamer, &r);
	pthread_create(&th[1], NULL, race_lookuper, &r);
	pthread_create(&th[2], NULL, race_lookuper, &r);
	sleep_ms(1500);
	atomic_store(&r.stop, true);
	for (int i = 0; i < 3; i++)
		pthread_join(th[i], NULL);
	notef("%u rename rounds, %u lookups (%u found the directory)", r.renames, r.lookups, r.found);
	if (r.escaped[0])
		failf("%s", r.escaped);
	if (r.renames < 10 || r.lookups < 10)
		failf("the race barely ran (%u renames, %u lookups): requests stalled", r.renames, r.lookups);
}

/* ---- the guest changing a request while the backend reads it ---- */

struct flipper {
	atomic_bool stop;
	volatile uint8_t *p;   /* where the name starts */
	const char *v[3];
	unsigned flips;
};

static void *flip_thread(void *arg)
{
	struct flipper *f = arg;
	unsigned i = 0;
	while (!atomic_load(&f->stop)) {
		volatile uint8_t *p = __atomic_load_n(&f->p, __ATOMIC_ACQUIRE);
		if (p) {
			const char *s = f->v[i++ % 3];
			for (size_t k = 0; k <= strlen(s); k++)
				p[k] = (uint8_t)s[k];
			f->flips++;
		}
	}
	return NULL;
}

static void ck_toctou_name(struct ctx *t)
{
	struct conn *c = &t->c;
	char esc[128], rel[256], canary[PATH_MAX];
	esc_name(esc, sizeof(esc), "toctou");
	snprintf(rel, sizeof(rel), "../../%s", esc);
	outside_rel(canary, sizeof(canary), "");
	host_file(t, "victim", "victim");
	c->no_mem_checks = true;
	/* Each request sits at the same place in the big area; a thread rewrites its name as fast as it can. */
	static char name[300];
	memset(name, 0, sizeof(name));
	strcpy(name, "victim");
	struct flipper f = { .v = { "victim", "..", rel } };
	atomic_init(&f.stop, false);
	pthread_t th;
	pthread_create(&th, NULL, flip_thread, &f);
	unsigned escapes = 0;
	for (int i = 0; i < 3000 && !failed(); i++) {
		struct fuse_entry_out e;
		uint8_t *in = NULL;
		struct args *a = NULL;
		struct call k;
		uint32_t op = i % 3 == 0 ? FUSE_MKDIR : FUSE_LOOKUP;
		struct fuse_mkdir_in mi = { .mode = 0755 };
		size_t off = op == FUSE_MKDIR ? sizeof(mi) : 0;
		a = calloc(1, sizeof(*a));
		if (op == FUSE_MKDIR)
			a_put(a, &mi, sizeof(mi));
		a_put(a, name, sizeof(name));
		k = (struct call){ .opcode = op, .nodeid = i % 2 ? t->work : FUSE_ROOT_ID, .arg = a->b, .arglen = a->n,
		                   .place = PLACE_BIG, .volatile_in = true, .in_ptr = &in, .out = &e, .outcap = sizeof(e) };
		__atomic_store_n(&f.p, c->big + sizeof(struct fuse_in_header) + off, __ATOMIC_RELEASE);
		memset(&e, 0, sizeof(e));
		int rc = fcall(c, &k);
		free(a);
		if (rc >= 0 && outside_ino(t, e.attr.ino))
			escapes++;
		if (rc == RES_TIMEOUT || rc == RES_DEAD) {
			failf("a request whose name changed in flight: %s", res_str(rc));
			break;
		}
		if (op == FUSE_MKDIR && rc >= 0)
			do_name_op(c, FUSE_RMDIR, k.nodeid, "victim");
	}
	__atomic_store_n(&f.p, NULL, __ATOMIC_RELEASE);
	atomic_store(&f.stop, true);
	pthread_join(th, NULL);
	notef("%u name flips during 3000 requests", f.flips);
	if (escapes)
		failf("%u LOOKUPs whose name changed in flight reached outside the share", escapes);
}

struct hdrflip {
	atomic_bool stop;
	uint8_t *base;
	uint64_t work;
	unsigned flips;
};

/* Rewrites the header of the request in the big area: length, opcode, node id (never INIT or DESTROY). */
static void *hdr_flip_thread(void *arg)
{
	struct hdrflip *h = arg;
	const uint32_t ops[] = { FUSE_LOOKUP, FUSE_GETATTR, FUSE_BATCH_FORGET, FUSE_READLINK, FUSE_MKDIR, FUSE_SETXATTR,
	                         FUSE_FORGET, 9999 };
	const uint32_t lens[] = { 0, 16, 40, 60, 0xffffffff, 4096, 1 << 20 };
	const uint64_t nodes[] = { FUSE_ROOT_ID, 0, UINT64_MAX, h->work, 0xdeadbeefcafebabeull };
	volatile struct fuse_in_header *in = (volatile struct fuse_in_header *)h->base;
	while (!atomic_load(&h->stop)) {
		uint64_t r = rnd64();
		switch (r % 3) {
		case 0: in->len = lens[(r >> 8) % 7]; break;
		case 1: in->opcode = ops[(r >> 8) % 8]; break;
		default: in->nodeid = nodes[(r >> 8) % 5]; break;
		}
		h->flips++;
	}
	return NULL;
}

static void ck_toctou_header(struct ctx *t)
{
	struct conn *c = &t->c;
	c->no_mem_checks = true;
	struct hdrflip h = { .base = c->big, .work = t->work };
	atomic_init(&h.stop, false);
	pthread_t th;
	pthread_create(&th, NULL, hdr_flip_thread, &h);
	unsigned answered = 0;
	for (int i = 0; i < 3000; i++) {
		struct args a = { .n = 0 };
		struct fuse_batch_forget_in bi = { .count = 1 };
		a_put(&a, &bi, sizeof(bi));
		a_str(&a, "vufs-hostile-probe");
		struct call k = { .opcode = FUSE_LOOKUP, .nodeid = FUSE_ROOT_ID, .arg = a.b, .arglen = a.n,
		                  .place = PLACE_BIG, .volatile_in = true, .timeout_ms = 2000 };
		int rc = fcall(c, &k);
		if (rc == RES_DEAD) {
			failf("the backend disconnected while the guest rewrote request headers");
			break;
		}
		if (rc != RES_TIMEOUT)
			answered++;
		if (rc == RES_TIMEOUT && !c->dead) {
			/* Some forms (FORGET) have no reply and may keep the chain: fine, but the queue must go on. */
			continue;
		}
	}
	atomic_store(&h.stop, true);
	pthread_join(th, NULL);
	notef("%u of 3000 requests with a changing header were answered (%u flips)", answered, h.flips);
	/* Whatever happened to those, the session goes on. */
	struct fuse_entry_out e;
	if (lookup(c, FUSE_ROOT_ID, t->work_name, &e) >= 0)
		t->work = e.nodeid;
}

static void ck_hiprio_requests(struct ctx *t)
{
	struct conn *c = &t->c;
	char esc[128];
	esc_name(esc, sizeof(esc), "hiprio");
	const char *name = "vufs-hostile-probe";
	struct call k = { .opcode = FUSE_LOOKUP, .nodeid = FUSE_ROOT_ID, .arg = name, .arglen = strlen(name) + 1,
	                  .hiprio = true, .timeout_ms = 3000 };
	int rc = fcall(c, &k);
	notef("LOOKUP on the hiprio queue: %s", res_str(rc));
	if (rc == RES_DEAD || rc == RES_BAD)
		failf("LOOKUP on the hiprio queue: %s", res_str(rc));
	struct fuse_getattr_in gi = { 0 };
	k = (struct call){ .opcode = FUSE_GETATTR, .nodeid = UINT64_MAX, .arg = &gi, .arglen = sizeof(gi), .hiprio = true,
	                   .timeout_ms = 3000 };
	rc = fcall(c, &k);
	if (rc >= 0 || rc == RES_DEAD || rc == RES_BAD)
		failf("GETATTR of an unknown node on the hiprio queue: %s", res_str(rc));
	struct fuse_init_in in = { .major = 7, .minor = 38 };
	k = (struct call){ .opcode = FUSE_INIT, .arg = &in, .arglen = sizeof(in), .hiprio = true, .timeout_ms = 3000 };
	rc = fcall(c, &k);
	if (rc == RES_DEAD || rc == RES_BAD)
		failf("INIT on the hiprio queue: %s", res_str(rc));
}

static void ck_readdir_huge(struct ctx *t)
{
	struct conn *c = &t->c;
	char p[64];
	for (int i = 0; i < 200; i++) {
		snprintf(p, sizeof(p), "file-with-a-long-name-%03d", i);
		host_file(t, p, "x");
	}
	uint64_t dh;
	if (do_open(c, FUSE_OPENDIR, t->work, O_RDONLY, &dh) < 0) {
		failf("setup: OPENDIR failed");
		return;
	}
	const struct { uint32_t op; uint64_t off; uint32_t size; uint32_t cap; } rs[] = {
		{ FUSE_READDIR, 0, UINT32_MAX, 4096 }, { FUSE_READDIRPLUS, 0, UINT32_MAX, 4096 },
		{ FUSE_READDIR, 0, 4096, 17 }, { FUSE_READDIRPLUS, 0, 4096, 100 },
		{ FUSE_READDIR, 0xdeadbeefcafebabeull, 4096, 4096 }, { FUSE_READDIR, UINT64_MAX, 4096, 4096 },
		{ FUSE_READDIRPLUS, (1ull << 63) + 5, 4096, 4096 }, { FUSE_READDIR, 0, 0, 4096 },
	};
	for (unsigned i = 0; i < sizeof(rs) / sizeof(rs[0]); i++) {
		struct fuse_read_in in = { .fh = dh, .offset = rs[i].off, .size = rs[i].size };
		struct call k = { .opcode = rs[i].op, .nodeid = t->work, .arg = &in, .arglen = sizeof(in),
		                  .wr_cap = rs[i].cap };
		int rc = fcall(c, &k);
		expect_answer(c, rc, "%s of %u bytes at %#llx into %u bytes", rs[i].op == FUSE_READDIR ? "READDIR" : "READDIRPLUS",
		              rs[i].size, (unsigned long long)rs[i].off, rs[i].cap);
	}
	do_release(c, FUSE_RELEASEDIR, t->work, dh);
	/* READDIR on a file's handle and on a never opened one */
	struct fuse_read_in in = { .fh = dh ^ 0x5555, .size = 4096 };
	expect_refused(c, fop(c, FUSE_READDIR, t->work, &in, sizeof(in), NULL, 0), "READDIR with a forged handle");
}

static void ck_setattr_huge(struct ctx *t)
{
	struct conn *c = &t->c;
	host_file(t, "f", "0123456789");
	struct fuse_entry_out e;
	if (lookup(c, t->work, "f", &e) < 0) {
		failf("setup: LOOKUP failed");
		return;
	}
	const uint64_t sizes[] = { UINT64_MAX, 1ull << 63, (1ull << 63) + 1 };
	for (unsigned i = 0; i < 3; i++) {
		struct fuse_setattr_in sa = { .valid = FATTR_SIZE, .size = sizes[i] };
		expect_refused(c, do_setattr(c, e.nodeid, &sa, NULL), "SETATTR to size %#llx", (unsigned long long)sizes[i]);
	}
	struct fuse_setattr_in sa = { .valid = UINT32_MAX & ~(FATTR_SIZE | FATTR_FH | FATTR_LOCKOWNER), .mode = UINT32_MAX,
	                              .uid = UINT32_MAX, .gid = UINT32_MAX, .atime = UINT64_MAX, .mtime = UINT64_MAX,
	                              .atimensec = UINT32_MAX, .mtimensec = UINT32_MAX, .ctime = UINT64_MAX };
	expect_answer(c, do_setattr(c, e.nodeid, &sa, NULL), "SETATTR with every bit set");
	struct fuse_setattr_in sb = { .valid = FATTR_ATIME | FATTR_MTIME, .atime = 1, .atimensec = 2000000000u,
	                              .mtime = 1, .mtimensec = UINT32_MAX };
	expect_answer(c, do_setattr(c, e.nodeid, &sb, NULL), "SETATTR with nanoseconds past a second");
	struct stat st;
	if (host_exists(t, "f", &st) && st.st_size != 10)
		failf("the file's size changed to %lld", (long long)st.st_size);
}

static void ck_fallocate_huge(struct ctx *t)
{
	struct conn *c = &t->c;
	host_file(t, "f", "0123456789");
	struct fuse_entry_out e;
	uint64_t fh;
	if (lookup(c, t->work, "f", &e) < 0 || do_open(c, FUSE_OPEN, e.nodeid, O_RDWR, &fh) < 0) {
		failf("setup: LOOKUP/OPEN failed");
		return;
	}
	const struct { uint64_t off, len; uint32_t mode; } fs[] = {
		{ UINT64_MAX - 1, 2, 0 }, { 0, UINT64_MAX, 0 }, { 1ull << 63, 4096, 0 }, { 0, 4096, UINT32_MAX },
		{ UINT64_MAX, UINT64_MAX, 3 },
	};
	for (unsigned i = 0; i < sizeof(fs) / sizeof(fs[0]); i++) {
		struct fuse_fallocate_in in = { .fh = fh, .offset = fs[i].off, .length = fs[i].len, .mode = fs[i].mode };
		expect_refused(c, fop(c, FUSE_FALLOCATE, e.nodeid, &in, sizeof(in), NULL, 0),
		               "FALLOCATE of %#llx bytes at %#llx mode %#x", (unsigned long long)fs[i].len,
		               (unsigned long long)fs[i].off, fs[i].mode);
	}
	const struct { int64_t off; uint32_t whence; } ls[] = { { -1, SEEK_SET }, { 0, 12345 }, { INT64_MIN, SEEK_END },
	                                                        { INT64_MAX, SEEK_DATA } };
	for (unsigned i = 0; i < 4; i++) {
		struct fuse_lseek_in in = { .fh = fh, .offset = (uint64_t)ls[i].off, .whence = ls[i].whence };
		struct fuse_lseek_out out;
		expect_refused(c, fop(c, FUSE_LSEEK, e.nodeid, &in, sizeof(in), &out, sizeof(out)),
		               "LSEEK to %lld whence %u", (long long)ls[i].off, ls[i].whence);
	}
	do_release(c, FUSE_RELEASE, e.nodeid, fh);
	struct stat st;
	if (host_exists(t, "f", &st) && st.st_size != 10)
		failf("the file's size changed to %lld", (long long)st.st_size);
}

static void ck_copy_file_range_bad(struct ctx *t)
{
	struct conn *c = &t->c;
	host_file(t, "f", "0123456789");
	host_file(t, "g", "");
	struct fuse_entry_out e, g;
	uint64_t fh, gh;
	if (lookup(c, t->work, "f", &e) < 0 || do_open(c, FUSE_OPEN, e.nodeid, O_RDWR, &fh) < 0 ||
	    lookup(c, t->work, "g", &g) < 0 || do_open(c, FUSE_OPEN, g.nodeid, O_RDWR, &gh) < 0) {
		failf("setup: LOOKUP/OPEN failed");
		return;
	}
	const struct fuse_copy_file_range_in cs[] = {
		{ .fh_in = fh, .nodeid_out = 0xdeadbeefcafebabeull, .fh_out = gh, .len = 10 },
		{ .fh_in = fh, .nodeid_out = g.nodeid, .fh_out = gh ^ 0x777777, .len = 10 },
		{ .fh_in = fh ^ 0x777777, .nodeid_out = g.nodeid, .fh_out = gh, .len = 10 },
		{ .fh_in = fh, .off_in = UINT64_MAX - 4, .nodeid_out = g.nodeid, .fh_out = gh, .off_out = 0, .len = 100 },
		{ .fh_in = fh, .nodeid_out = g.nodeid, .fh_out = gh, .off_out = UINT64_MAX - 4, .len = 100 },
		{ .fh_in = fh, .nodeid_out = g.nodeid, .fh_out = gh, .off_out = 1ull << 63, .len = 10 },
	};
	for (unsigned i = 0; i < sizeof(cs) / sizeof(cs[0]); i++) {
		struct fuse_write_out wo;
		if (i == 0) { /* the output node id is redundant with its handle: a backend may ignore it */
			expect_answer(c, fop(c, FUSE_COPY_FILE_RANGE, e.nodeid, &cs[i], sizeof(cs[i]), &wo, sizeof(wo)),
			              "COPY_FILE_RANGE to a handle with a bogus output node id");
			continue;
		}
		expect_refused(c, fop(c, FUSE_COPY_FILE_RANGE, e.nodeid, &cs[i], sizeof(cs[i]), &wo, sizeof(wo)),
		               "COPY_FILE_RANGE variant %u", i);
	}
	struct fuse_copy_file_range_in big = { .fh_in = fh, .nodeid_out = g.nodeid, .fh_out = gh, .len = UINT64_MAX,
	                                       .flags = UINT64_MAX };
	struct fuse_write_out wo;
	expect_answer(c, fop(c, FUSE_COPY_FILE_RANGE, e.nodeid, &big, sizeof(big), &wo, sizeof(wo)),
	              "COPY_FILE_RANGE of 2^64-1 bytes with every flag");
	do_release(c, FUSE_RELEASE, e.nodeid, fh);
	do_release(c, FUSE_RELEASE, g.nodeid, gh);
}

static void ck_open_flags_garbage(struct ctx *t)
{
	struct conn *c = &t->c;
	host_file(t, "f", "0123456789");
	host_mkdir(t, "d");
	struct fuse_entry_out e, d;
	if (lookup(c, t->work, "f", &e) < 0 || lookup(c, t->work, "d", &d) < 0) {
		failf("setup: LOOKUP failed");
		return;
	}
	const uint32_t fl[] = { UINT32_MAX & ~(uint32_t)O_TRUNC, O_RDONLY | O_DIRECTORY, O_PATH, O_RDWR | __O_TMPFILE,
	                        O_ACCMODE, O_WRONLY | O_CREAT | O_EXCL, O_RDONLY | O_NOFOLLOW | O_NOATIME | O_ASYNC };
	for (unsigned i = 0; i < sizeof(fl) / sizeof(fl[0]); i++) {
		uint64_t fh;
		int rc = do_open(c, FUSE_OPEN, e.nodeid, fl[i], &fh);
		expect_answer(c, rc, "OPEN with flags %#x", fl[i]);
		if (rc >= 0)
			do_release(c, FUSE_RELEASE, e.nodeid, fh);
	}
	expect_refused(c, do_open(c, FUSE_OPEN, d.nodeid, O_WRONLY, NULL), "OPEN of a directory for writing");
	expect_refused(c, do_open(c, FUSE_OPEN, d.nodeid, O_RDWR | O_TRUNC, NULL), "OPEN of a directory O_RDWR|O_TRUNC");
	uint64_t fh;
	int rc = do_open(c, FUSE_OPENDIR, e.nodeid, O_RDONLY, &fh);
	expect_refused(c, rc, "OPENDIR of a regular file");
	struct stat st;
	if (!host_exists(t, "f", &st) || st.st_size != 10)
		failf("OPEN with garbage flags changed the file");
	if (!host_exists(t, "d", &st) || !S_ISDIR(st.st_mode))
		failf("the directory changed");
}

/* Guest processes waiting for a lock that another guest process holds: more than a backend's lock threads. */
static void ck_setlkw_flood(struct ctx *t)
{
	struct conn *c = &t->c;
	host_file(t, "f", "0123456789");
	struct fuse_entry_out e;
	uint64_t fh;
	if (lookup(c, t->work, "f", &e) < 0 || do_open(c, FUSE_OPEN, e.nodeid, O_RDWR, &fh) < 0) {
		failf("setup: LOOKUP/OPEN failed");
		return;
	}
	struct fuse_lk_in lk = { .fh = fh, .owner = 1, .lk = { .start = 0, .end = 9, .type = F_WRLCK, .pid = 1 } };
	int rc = fop(c, FUSE_SETLK, e.nodeid, &lk, sizeof(lk), NULL, 0);
	if (rc < 0) {
		notef("SETLK: %s: the backend does not serve POSIX locks", res_str(rc));
		if (rc == RES_TIMEOUT || rc == RES_DEAD || rc == RES_BAD)
			failf("SETLK: %s", res_str(rc));
		return;
	}
	enum { WAITERS = 100 };
	struct call calls[WAITERS];
	struct pend pend[WAITERS];
	struct fuse_lk_in w[WAITERS];
	int sub[WAITERS];
	for (int i = 0; i < WAITERS; i++) {
		w[i] = lk;
		w[i].owner = 100 + (uint64_t)i;
		w[i].lk.pid = 100 + (uint32_t)i;
		calls[i] = (struct call){ .opcode = FUSE_SETLKW, .nodeid = e.nodeid, .arg = &w[i], .arglen = sizeof(w[i]),
		                          .timeout_ms = 1 };
		sub[i] = fsubmit(c, &calls[i], &pend[i]);
	}
	int early = 0;
	for (int i = 0; i < WAITERS; i++) {
		if (sub[i] == 0) {
			rc = ffinish(c, &pend[i]); /* 1 ms: only replies that came at once */
			if (rc != RES_TIMEOUT) {
				early++;
				sub[i] = -1;
			}
		}
	}
	int submitted = 0;
	for (int i = 0; i < WAITERS; i++)
		submitted += sub[i] == 0 || sub[i] == -1;
	notef("%d SETLKW submitted, %d answered at once", submitted, early);
	/* Other requests must still be served while the waiters wait, and the holder must be able to unlock. */
	c->timeout_ms = 5000;
	require_alive(t, "100 SETLKW waiting on a held lock");
	int later = 0, first_err = 0;
	for (int i = 0; i < WAITERS; i++) {
		if (sub[i] == 0 && atomic_load(&pend[i].r->done)) {
			later++;
			struct fuse_out_header oh;
			memcpy(&oh, pend[i].s->out, sizeof(oh));
			if (!first_err)
				first_err = oh.error ? oh.error : 1;
		}
	}
	notef("%d more SETLKW answered while the lock was held (first: %s)", later,
	      first_err == 1 ? "granted" : first_err ? errname(-first_err) : "-");
	lk.lk.type = F_UNLCK;
	rc = fop(c, FUSE_SETLK, e.nodeid, &lk, sizeof(lk), NULL, 0);
	if (rc < 0 && !failed())
		failf("the lock holder's unlock while 100 SETLKW wait: %s", res_str(rc));
	/* The waiters now get the lock one by one; each gives it back at once. Every one must be answered. */
	bool answered[WAITERS] = { false };
	int n_answered = 0;
	uint64_t deadline = now_ms() + 3000;
	while (!failed() && n_answered < WAITERS && now_ms() < deadline && !c->dead) {
		reap(c, 1);
		bool progress = false;
		for (int i = 0; i < WAITERS; i++) {
			if (answered[i] || sub[i] != 0 || !atomic_load(&pend[i].r->done))
				continue;
			answered[i] = true;
			n_answered++;
			progress = true;
			struct fuse_lk_in un = w[i];
			un.lk.type = F_UNLCK;
			fop(c, FUSE_SETLK, e.nodeid, &un, sizeof(un), NULL, 0);
		}
		if (!progress)
			sleep_ms(5);
	}
	for (int i = 0; i < WAITERS; i++)
		if (sub[i] == -1 && !answered[i])
			n_answered++; /* answered at once, above */
	notef("%d of %d SETLKW answered after the holder unlocked", n_answered, WAITERS);
	if (!failed() && n_answered < WAITERS)
		failf("%d of %d SETLKW were never answered, even after the lock was released (requests lost)",
		      WAITERS - n_answered, WAITERS);
	c->timeout_ms = opt.timeout_ms;
}

/* A SETLKW with bytes after its arguments: refused or served, but answered. */
static void ck_setlkw_padded(struct ctx *t)
{
	struct conn *c = &t->c;
	host_file(t, "f", "0123456789");
	struct fuse_entry_out e;
	uint64_t fh;
	if (lookup(c, t->work, "f", &e) < 0 || do_open(c, FUSE_OPEN, e.nodeid, O_RDWR, &fh) < 0) {
		failf("setup: LOOKUP/OPEN failed");
		return;
	}
	static const uint32_t pads[] = { 4, 8192 };
	c->timeout_ms = 1500;
	for (unsigned i = 0; i < 2 && !failed(); i++) {
		struct args *a = calloc(1, sizeof(*a));
		struct fuse_lk_in lk = { .fh = fh, .owner = 1 + i, .lk = { .start = 0, .end = 9, .type = F_RDLCK, .pid = 1 } };
		a_put(a, &lk, sizeof(lk));
		memset(a->b + a->n, 'p', pads[i]);
		a->n += pads[i];
		int rc = fop(c, FUSE_SETLKW, e.nodeid, a->b, a->n, NULL, 0);
		free(a);
		notef("SETLKW (free lock) with %u bytes of padding: %s", pads[i], res_str(rc));
		if (rc == RES_TIMEOUT)
			failf("a SETLKW with %u bytes after its arguments was never answered (the lock was free)", pads[i]);
		else
			expect_answer(c, rc, "SETLKW with %u bytes of padding", pads[i]);
	}
	c->timeout_ms = opt.timeout_ms;
}

/* ------------------------------------------------------------------------------------------------------------
 * Virtqueue level: chains written by hand into the ring on request queue 1
 * ------------------------------------------------------------------------------------------------------------ */

struct vqbuf {
	uint64_t req_gpa, rep_gpa, tbl_gpa;
	uint8_t *req, *rep;
	struct vring_desc *tbl;  /* room for TBL_MAX descriptors */
	uint32_t req_len, rep_cap;
	uint64_t unique;
	uint16_t s[NSTOLEN];     /* stolen descriptor indexes */
};
#define TBL_MAX ((SCRATCH_LEN - 16384) / 16)

static void vq_prepare(struct ctx *t, struct vqbuf *v)
{
	struct conn *c = &t->c;
	const char *name = "vufs-hostile-probe";
	memset(c->scratch, CANARY_BYTE, SCRATCH_LEN);
	v->req = c->scratch;
	v->req_gpa = c->scratch_gpa;
	v->rep = c->scratch + 4096;
	v->rep_gpa = c->scratch_gpa + 4096;
	v->rep_cap = 4096;
	v->tbl = (struct vring_desc *)(c->scratch + 16384);
	v->tbl_gpa = c->scratch_gpa + 16384;
	v->unique = atomic_fetch_add(&c->unique, 2);
	struct fuse_in_header h = { .len = (uint32_t)(sizeof(h) + strlen(name) + 1), .opcode = FUSE_LOOKUP,
	                            .unique = v->unique, .nodeid = FUSE_ROOT_ID };
	memcpy(v->req, &h, sizeof(h));
	memcpy(v->req + sizeof(h), name, strlen(name) + 1);
	v->req_len = h.len;
	memset(v->rep, 0, v->rep_cap);
	memcpy(v->s, c->qx[1].stolen, sizeof(v->s));
	c->qx[1].lenient = true; /* whatever comes back on this ring now is the guest's own doing */
}

static void D(struct conn *c, uint16_t idx, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
	struct vq_driver *vq = &c->fe.q[1].vq;
	if (idx < vq->split.r.num)
		vq->split.r.desc[idx] = (struct vring_desc){ .addr = addr, .len = len, .flags = flags, .next = next };
}

static void vq_check_rep_canary(struct ctx *t, struct vqbuf *v)
{
	for (unsigned k = 0; k < 4096; k++) {
		if (v->rep[v->rep_cap + k] != CANARY_BYTE) {
			violation(&t->c, "the backend wrote past the %u-byte reply buffer of a forged chain", v->rep_cap);
			return;
		}
	}
}

/* Publishes the chain at head and reports what the backend did with it. */
static void vq_fire(struct ctx *t, struct vqbuf *v, uint16_t head)
{
	struct conn *c = &t->c;
	struct forged *f = forge_publish(c, 1, head);
	if (!f) {
		failf("no room to track the forged chain");
		return;
	}
	int rc = forge_wait(c, 1, f, 1000);
	if (rc == 0) {
		notef("empty used entry");
	} else if (rc > 0) {
		struct fuse_out_header oh;
		memcpy(&oh, v->rep, sizeof(oh));
		if ((uint32_t)rc > v->rep_cap && head != v->s[0])
			notef("used entry of %d bytes", rc);
		else if (oh.unique == v->unique)
			notef("answered: %s", oh.error ? errname(-oh.error) : "success");
		else
			notef("used entry of %d bytes", rc);
	} else if (rc == RES_TIMEOUT) {
		notef("no used entry");
	} else {
		notef("the backend disconnected");
	}
	vq_check_rep_canary(t, v);
}

/* After an attack on queue 1: it may be broken, or the backend may have left; it must not have crashed. */
static void vq_aftermath(struct ctx *t)
{
	struct conn *c = &t->c;
	char why[256];
	if (c->dead) {
		notef("backend closed the connection");
		return;
	}
	c->timeout_ms = 1000;
	if (alive(c, why, sizeof(why))) {
		notef("the queue still serves");
		return;
	}
	check_socket(c);
	if (c->dead) {
		notef("backend closed the connection");
		return;
	}
	int rc = reset_queue(c, 1);
	if (rc < 0) {
		notef("queue reset: %s", rc == RES_DEAD ? "backend closed the connection" : res_str(rc));
		return;
	}
	if (alive(c, why, sizeof(why)))
		notef("queue broken; serves again after a reset");
	else
		notef("queue broken; after a reset: %s", why);
}

static void ck_vq_desc_outside(struct ctx *t)
{
	struct vqbuf v;
	vq_prepare(t, &v);
	D(&t->c, v.s[0], MEM_SIZE + 0x10000, v.req_len, VRING_DESC_F_NEXT, v.s[1]);
	D(&t->c, v.s[1], v.rep_gpa, v.rep_cap, VRING_DESC_F_WRITE, 0);
	vq_fire(t, &v, v.s[0]);
}

static void ck_vq_desc_addr_overflow(struct ctx *t)
{
	struct vqbuf v;
	vq_prepare(t, &v);
	D(&t->c, v.s[0], UINT64_MAX - 15, 64, VRING_DESC_F_NEXT, v.s[1]);
	D(&t->c, v.s[1], v.rep_gpa, v.rep_cap, VRING_DESC_F_WRITE, 0);
	vq_fire(t, &v, v.s[0]);
}

static void ck_vq_desc_len_huge(struct ctx *t)
{
	struct vqbuf v;
	vq_prepare(t, &v);
	D(&t->c, v.s[0], v.req_gpa, UINT32_MAX, VRING_DESC_F_NEXT, v.s[1]);
	D(&t->c, v.s[1], v.rep_gpa, v.rep_cap, VRING_DESC_F_WRITE, 0);
	vq_fire(t, &v, v.s[0]);
}

static void ck_vq_desc_writable_outside(struct ctx *t)
{
	struct vqbuf v;
	vq_prepare(t, &v);
	D(&t->c, v.s[0], v.req_gpa, v.req_len, VRING_DESC_F_NEXT, v.s[1]);
	D(&t->c, v.s[1], MEM_SIZE - 16, 4096, VRING_DESC_F_WRITE, 0); /* starts inside, ends 4080 bytes outside */
	vq_fire(t, &v, v.s[0]);
}

static void ck_vq_desc_loop(struct ctx *t)
{
	struct vqbuf v;
	vq_prepare(t, &v);
	D(&t->c, v.s[0], v.req_gpa, v.req_len, VRING_DESC_F_NEXT, v.s[1]);
	D(&t->c, v.s[1], v.req_gpa, 8, VRING_DESC_F_NEXT, v.s[2]);
	D(&t->c, v.s[2], v.req_gpa, 8, VRING_DESC_F_NEXT, v.s[0]);
	vq_fire(t, &v, v.s[0]);
}

static void ck_vq_desc_self_loop(struct ctx *t)
{
	struct vqbuf v;
	vq_prepare(t, &v);
	D(&t->c, v.s[0], v.rep_gpa, 1, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, v.s[0]);
	vq_fire(t, &v, v.s[0]);
}

static void ck_vq_desc_next_out_of_range(struct ctx *t)
{
	struct vqbuf v;
	vq_prepare(t, &v);
	D(&t->c, v.s[0], v.req_gpa, v.req_len, VRING_DESC_F_NEXT, 0xffff);
	vq_fire(t, &v, v.s[0]);
}

static void ck_vq_head_out_of_range(struct ctx *t)
{
	struct vqbuf v;
	vq_prepare(t, &v);
	vq_fire(t, &v, (uint16_t)(QUEUE_SIZE + 3));
}

static void ck_vq_writable_before_readable(struct ctx *t)
{
	struct vqbuf v;
	vq_prepare(t, &v);
	D(&t->c, v.s[0], v.rep_gpa, v.rep_cap, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, v.s[1]);
	D(&t->c, v.s[1], v.req_gpa, v.req_len, 0, 0);
	vq_fire(t, &v, v.s[0]);
}

/* A WRITE request of `data` bytes cut into one-byte readable descriptors in an indirect table. */
static bool vq_tiny_write_table(struct ctx *t, struct vqbuf *v, unsigned data, unsigned *entries)
{
	struct conn *c = &t->c;
	host_file(t, "f", "");
	struct fuse_entry_out e;
	uint64_t fh;
	if (lookup(c, t->work, "f", &e) < 0 || do_open(c, FUSE_OPEN, e.nodeid, O_RDWR, &fh) < 0) {
		failf("setup: LOOKUP/OPEN failed");
		return false;
	}
	vq_prepare(t, v);
	struct fuse_in_header h = { .opcode = FUSE_WRITE, .unique = v->unique, .nodeid = e.nodeid };
	struct fuse_write_in wi = { .fh = fh, .size = data };
	unsigned total = (unsigned)(sizeof(h) + sizeof(wi)) + data;
	h.len = total;
	memcpy(v->req, &h, sizeof(h));
	memcpy(v->req + sizeof(h), &wi, sizeof(wi));
	memset(v->req + sizeof(h) + sizeof(wi), 'w', data);
	if (total + 1 > TBL_MAX || total > 4096) {
		failf("table too big");
		return false;
	}
	for (unsigned i = 0; i < total; i++)
		v->tbl[i] = (struct vring_desc){ .addr = v->req_gpa + i, .len = 1, .flags = VRING_DESC_F_NEXT,
		                                 .next = (uint16_t)(i + 1) };
	v->tbl[total] = (struct vring_desc){ .addr = v->rep_gpa, .len = v->rep_cap, .flags = VRING_DESC_F_WRITE };
	*entries = total + 1;
	return true;
}

static void ck_vq_chain_longer_than_queue(struct ctx *t)
{
	struct vqbuf v;
	unsigned n;
	if (!vq_tiny_write_table(t, &v, 600, &n))
		return;
	D(&t->c, v.s[0], v.tbl_gpa, n * 16, VRING_DESC_F_INDIRECT, 0);
	notef("%u descriptors in one chain (queue size %u)", n, QUEUE_SIZE);
	vq_fire(t, &v, v.s[0]);
}

static void ck_vq_indirect_too_long(struct ctx *t)
{
	struct vqbuf v;
	unsigned n;
	if (!vq_tiny_write_table(t, &v, 4000, &n))
		return;
	D(&t->c, v.s[0], v.tbl_gpa, n * 16, VRING_DESC_F_INDIRECT, 0);
	notef("%u descriptors in one indirect table", n);
	vq_fire(t, &v, v.s[0]);
}

static void vq_valid_table(struct vqbuf *v, struct vring_desc *tbl)
{
	tbl[0] = (struct vring_desc){ .addr = v->req_gpa, .len = v->req_len, .flags = VRING_DESC_F_NEXT, .next = 1 };
	tbl[1] = (struct vring_desc){ .addr = v->rep_gpa, .len = v->rep_cap, .flags = VRING_DESC_F_WRITE };
}

static void ck_vq_indirect_nested(struct ctx *t)
{
	struct vqbuf v;
	vq_prepare(t, &v);
	vq_valid_table(&v, v.tbl + 16);
	v.tbl[0] = (struct vring_desc){ .addr = v.tbl_gpa + 16 * 16, .len = 32, .flags = VRING_DESC_F_INDIRECT };
	D(&t->c, v.s[0], v.tbl_gpa, 16, VRING_DESC_F_INDIRECT, 0);
	vq_fire(t, &v, v.s[0]);
}

static void ck_vq_indirect_self(struct ctx *t)
{
	struct vqbuf v;
	vq_prepare(t, &v);
	v.tbl[0] = (struct vring_desc){ .addr = v.tbl_gpa, .len = 16, .flags = VRING_DESC_F_INDIRECT };
	D(&t->c, v.s[0], v.tbl_gpa, 16, VRING_DESC_F_INDIRECT, 0);
	vq_fire(t, &v, v.s[0]);
}

static void indirect_with(struct ctx *t, uint64_t addr_off, uint64_t abs_addr, uint32_t len, uint16_t flags)
{
	struct vqbuf v;
	vq_prepare(t, &v);
	vq_valid_table(&v, v.tbl);
	D(&t->c, v.s[0], abs_addr ? abs_addr : v.tbl_gpa + addr_off, len, VRING_DESC_F_INDIRECT | flags, v.s[1]);
	D(&t->c, v.s[1], v.rep_gpa, v.rep_cap, VRING_DESC_F_WRITE, 0);
	vq_fire(t, &v, v.s[0]);
}

static void ck_vq_indirect_len_unaligned(struct ctx *t) { indirect_with(t, 0, 0, 17, 0); }
static void ck_vq_indirect_len_zero(struct ctx *t) { indirect_with(t, 0, 0, 0, 0); }
static void ck_vq_indirect_len_huge(struct ctx *t) { indirect_with(t, 0, 0, 0xfffffff0u, 0); }
static void ck_vq_indirect_outside(struct ctx *t) { indirect_with(t, 0, MEM_SIZE + 4096, 32, 0); }
static void ck_vq_indirect_straddle(struct ctx *t) { indirect_with(t, 0, MEM_SIZE - 16, 64, 0); }
static void ck_vq_indirect_with_next(struct ctx *t) { indirect_with(t, 0, 0, 32, VRING_DESC_F_NEXT); }

static void ck_vq_indirect_loop(struct ctx *t)
{
	struct vqbuf v;
	vq_prepare(t, &v);
	v.tbl[0] = (struct vring_desc){ .addr = v.req_gpa, .len = v.req_len, .flags = VRING_DESC_F_NEXT, .next = 1 };
	v.tbl[1] = (struct vring_desc){ .addr = v.req_gpa, .len = 4, .flags = VRING_DESC_F_NEXT, .next = 0 };
	D(&t->c, v.s[0], v.tbl_gpa, 32, VRING_DESC_F_INDIRECT, 0);
	vq_fire(t, &v, v.s[0]);
}

static void ck_vq_indirect_next_out_of_range(struct ctx *t)
{
	struct vqbuf v;
	vq_prepare(t, &v);
	v.tbl[0] = (struct vring_desc){ .addr = v.req_gpa, .len = v.req_len, .flags = VRING_DESC_F_NEXT, .next = 7 };
	D(&t->c, v.s[0], v.tbl_gpa, 32, VRING_DESC_F_INDIRECT, 0);
	vq_fire(t, &v, v.s[0]);
}

static void ck_vq_avail_idx_jump(struct ctx *t)
{
	struct conn *c = &t->c;
	struct vu_fe_queue *q = &c->fe.q[1];
	struct vqbuf v;
	vq_prepare(t, &v);
	pthread_mutex_lock(&q->lock);
	uint16_t used_before = q->vq.split.r.used->idx;
	q->vq.split.avail_idx = (uint16_t)(q->vq.split.avail_idx + QUEUE_SIZE + 7);
	store_release16(&q->vq.split.r.avail->idx, q->vq.split.avail_idx);
	q->vq.split.kicked_avail = q->vq.split.avail_idx;
	pthread_mutex_unlock(&q->lock);
	eventfd_write(q->kick_fd, 1);
	sleep_ms(500);
	check_socket(c);
	uint16_t used_after = load_acquire16(&q->vq.split.r.used->idx);
	if (c->dead)
		notef("the backend disconnected");
	else if (used_after != used_before)
		notef("the backend served %u stale entries", (uint16_t)(used_after - used_before));
	else
		notef("nothing served");
	/* Our ring state no longer matches the backend's: the aftermath resets the queue. */
	pthread_mutex_lock(&q->lock);
	q->vq.split.last_used = used_after;
	pthread_mutex_unlock(&q->lock);
}

static void ck_vq_reply_too_small(struct ctx *t)
{
	struct conn *c = &t->c;
	static char data[8192];
	memset(data, 'd', sizeof(data) - 1);
	host_file(t, "f", data);
	struct fuse_entry_out e;
	uint64_t fh;
	if (lookup(c, t->work, "f", &e) < 0 || do_open(c, FUSE_OPEN, e.nodeid, O_RDONLY, &fh) < 0) {
		failf("setup: LOOKUP/OPEN failed");
		return;
	}
	c->qx[1].lenient = false;
	c->timeout_ms = 2000;
	struct fuse_getattr_in gi = { 0 };
	const char *name = "vufs-hostile-probe";
	struct fuse_read_in ri = { .fh = fh, .size = 4096 };
	const struct { uint32_t op; uint64_t node; const void *arg; size_t len; uint32_t cap; const char *what; } rs[] = {
		{ FUSE_GETATTR, FUSE_ROOT_ID, &gi, sizeof(gi), 8, "GETATTR into 8 bytes" },
		{ FUSE_GETATTR, FUSE_ROOT_ID, &gi, sizeof(gi), 1, "GETATTR into 1 byte" },
		{ FUSE_LOOKUP, FUSE_ROOT_ID, name, strlen(name) + 1, 16, "LOOKUP into 16 bytes" },
		{ FUSE_LOOKUP, FUSE_ROOT_ID, name, strlen(name) + 1, 100, "LOOKUP into 100 bytes" },
		{ FUSE_READ, e.nodeid, &ri, sizeof(ri), 100, "READ of 4096 bytes into 100" },
		{ FUSE_READ, e.nodeid, &ri, sizeof(ri), 15, "READ of 4096 bytes into 15" },
	};
	char summary[256] = "";
	for (unsigned i = 0; i < sizeof(rs) / sizeof(rs[0]); i++) {
		struct call k = { .opcode = rs[i].op, .nodeid = rs[i].node, .arg = rs[i].arg, .arglen = rs[i].len,
		                  .wr_cap = rs[i].cap };
		int rc = fcall(c, &k);
		if (rc == RES_DEAD) {
			failf("%s: the backend disconnected", rs[i].what);
			break;
		}
		if (rc >= 0 && (uint32_t)rc + 16 > rs[i].cap)
			failf("%s: the reply claims %d bytes", rs[i].what, rc + 16);
		if (i < 3)
			snprintf(summary + strlen(summary), sizeof(summary) - strlen(summary), "%s%s: %s", i ? "; " : "",
			         rs[i].what, rc == RES_BAD ? c->bad : res_str(rc));
	}
	notef("%s", summary);
	c->timeout_ms = opt.timeout_ms;
}

static void ck_vq_no_writable(struct ctx *t)
{
	struct conn *c = &t->c;
	struct fuse_getattr_in gi = { 0 };
	c->timeout_ms = 2000;
	struct call k = { .opcode = FUSE_GETATTR, .nodeid = FUSE_ROOT_ID, .arg = &gi, .arglen = sizeof(gi), .no_wr = true };
	int rc = fcall(c, &k);
	notef("GETATTR with no writable descriptor: %s", res_str(rc));
	if (rc == RES_DEAD)
		failf("the backend disconnected");
	c->timeout_ms = opt.timeout_ms;
}

/* A valid request cut into 1-byte descriptors, with garbage between them. */
static void ck_vq_request_split_tiny(struct ctx *t)
{
	struct conn *c = &t->c;
	struct vqbuf v;
	vq_prepare(t, &v);
	c->qx[1].lenient = false;
	uint8_t *spread = c->scratch + 65536;
	uint64_t spread_gpa = c->scratch_gpa + 65536;
	struct vq_seg segs[80];
	unsigned n = 0;
	for (unsigned i = 0; i < v.req_len; i++) {
		spread[2 * i] = v.req[i];
		spread[2 * i + 1] = '/';
		segs[n++] = (struct vq_seg){ spread_gpa + 2 * i, 1 };
	}
	segs[n] = (struct vq_seg){ v.rep_gpa, v.rep_cap };
	struct req *r = calloc(1, sizeof(*r));
	atomic_init(&r->done, 0);
	if (submit(c, 1, segs, n, 1, r) < 0) {
		failf("submit failed");
		free(r);
		return;
	}
	int rc = wait_for(c, 1, &r->done, opt.timeout_ms);
	if (rc < 0) {
		failf("a request in %u one-byte descriptors: %s", n, res_str(rc));
		if (c->norphans < sizeof(c->orphans) / sizeof(c->orphans[0]))
			c->orphans[c->norphans++] = r; /* still on the ring */
		return;
	}
	struct fuse_out_header oh;
	struct fuse_entry_out e;
	memcpy(&oh, v.rep, sizeof(oh));
	memcpy(&e, v.rep + sizeof(oh), sizeof(e));
	struct stat st;
	char p[PATH_MAX + 64];
	share_path(p, sizeof(p), "vufs-hostile-probe");
	stat(p, &st);
	if (r->used_len == 0 || oh.error)
		notef("a request in %u one-byte descriptors: %s", n, r->used_len ? errname(-oh.error) : "empty used entry");
	else if (oh.unique != v.unique || e.attr.ino != st.st_ino)
		failf("a request in one-byte descriptors was misread (unique %llu, inode %llu)",
		      (unsigned long long)oh.unique, (unsigned long long)e.attr.ino);
	else
		notef("served correctly");
	vq_check_rep_canary(t, &v);
	free(r);
}

/* The reply buffer cut into 1-byte descriptors with canary bytes between them. */
static void ck_vq_reply_split_tiny(struct ctx *t)
{
	struct conn *c = &t->c;
	struct vqbuf v;
	vq_prepare(t, &v);
	c->qx[1].lenient = false;
	uint8_t *spread = c->scratch + 65536;
	uint64_t spread_gpa = c->scratch_gpa + 65536;
	enum { N = 160 };
	struct vq_seg segs[N + 1];
	segs[0] = (struct vq_seg){ v.req_gpa, v.req_len };
	for (unsigned i = 0; i < N; i++)
		segs[1 + i] = (struct vq_seg){ spread_gpa + 2 * i, 1 };
	struct req *r = calloc(1, sizeof(*r));
	atomic_init(&r->done, 0);
	if (submit(c, 1, segs, 1, N, r) < 0) {
		failf("submit failed");
		free(r);
		return;
	}
	int rc = wait_for(c, 1, &r->done, opt.timeout_ms);
	if (rc < 0) {
		failf("a reply into %u one-byte descriptors: %s", N, res_str(rc));
		if (c->norphans < sizeof(c->orphans) / sizeof(c->orphans[0]))
			c->orphans[c->norphans++] = r; /* still on the ring */
		return;
	}
	uint8_t rep[N];
	for (unsigned i = 0; i < N; i++) {
		rep[i] = spread[2 * i];
		if (spread[2 * i + 1] != CANARY_BYTE) {
			failf("the backend wrote between the reply's descriptors (after byte %u)", i);
			break;
		}
	}
	for (unsigned i = 2 * N; i < 2 * N + 256; i++)
		if (spread[i] != CANARY_BYTE) {
			failf("the backend wrote past the last reply descriptor");
			break;
		}
	struct fuse_out_header oh;
	struct fuse_entry_out e;
	memcpy(&oh, rep, sizeof(oh));
	memcpy(&e, rep + sizeof(oh), sizeof(e));
	struct stat st;
	char p[PATH_MAX + 64];
	share_path(p, sizeof(p), "vufs-hostile-probe");
	stat(p, &st);
	if (r->used_len == 0 || oh.error)
		notef("a reply into %u one-byte descriptors: %s", N, r->used_len ? errname(-oh.error) : "empty used entry");
	else if (oh.unique != v.unique || e.attr.ino != st.st_ino || oh.len != r->used_len)
		failf("a reply into one-byte descriptors came out wrong (unique %llu, inode %llu, len %u/%u)",
		      (unsigned long long)oh.unique, (unsigned long long)e.attr.ino, oh.len, r->used_len);
	else
		notef("served correctly");
	free(r);
}

struct scribbler {
	atomic_bool stop;
	struct conn *c;
	unsigned writes;
};

static void *scribble_thread(void *arg)
{
	struct scribbler *s = arg;
	struct vring_desc *desc = s->c->fe.q[1].vq.split.r.desc;
	while (!atomic_load(&s->stop)) {
		uint64_t r = rnd64(), r2 = rnd64();
		uint64_t addr;
		switch (r % 3) {
		case 0: addr = MEM_SIZE + (r2 % (1ull << 40)); break;
		case 1: addr = UINT64_MAX - (r2 % 65536); break;
		default: addr = s->c->scratch_gpa + (r2 % SCRATCH_LEN); break;
		}
		/* Half the time, the chain just published (the one the backend is about to read). */
		struct vring_avail *av = s->c->fe.q[1].vq.split.r.avail;
		uint16_t last = av->ring[(uint16_t)(av->idx - 1) % QUEUE_SIZE];
		uint16_t target = (r & 1) ? (uint16_t)((last + ((r >> 1) & 1)) % QUEUE_SIZE) : (uint16_t)((r >> 8) % QUEUE_SIZE);
		volatile struct vring_desc *d = &desc[target];
		switch ((r >> 20) % 4) {
		case 0: d->addr = addr; break;
		case 1: d->len = (uint32_t)r2; break;
		case 2: d->flags = (uint16_t)((r2 >> 7) & 7); break;
		default: d->next = (uint16_t)(r2 >> 3); break;
		}
		s->writes++;
	}
	return NULL;
}

static void ck_vq_desc_rewrite_race(struct ctx *t)
{
	struct conn *c = &t->c;
	struct vqbuf v;
	vq_prepare(t, &v);
	/* Scratch holds descriptors that point outside guest memory, for indirect tables read from it. */
	for (unsigned i = 0; i < SCRATCH_LEN / 16; i++)
		((struct vring_desc *)c->scratch)[i] = (struct vring_desc){ .addr = MEM_SIZE + rnd64() % 4096,
		                                                           .len = (uint32_t)rnd64(),
		                                                           .flags = (uint16_t)(rnd64() & 7),
		                                                           .next = (uint16_t)rnd64() };
	c->no_mem_checks = true;
	struct scribbler s = { .c = c };
	atomic_init(&s.stop, false);
	pthread_t th;
	pthread_create(&th, NULL, scribble_thread, &s);
	unsigned answered = 0, sent = 0;
	uint64_t end = now_ms() + 1500;
	while (now_ms() < end && sent < 80 && !c->dead) {
		struct call k = { .opcode = FUSE_GETATTR, .nodeid = FUSE_ROOT_ID, .arg = &(struct fuse_getattr_in){ 0 },
		                  .arglen = sizeof(struct fuse_getattr_in), .timeout_ms = 100 };
		int rc = fcall(c, &k);
		sent++;
		if (rc != RES_TIMEOUT && rc != RES_DEAD && rc != RES_NOSLOT)
			answered++;
	}
	atomic_store(&s.stop, true);
	pthread_join(th, NULL);
	notef("%u of %u requests answered while descriptors were rewritten (%u writes)", answered, sent, s.writes);
	/* no_mem_checks stays: a rewritten length may have let the backend write anywhere in our buffers */
}

/* ------------------------------------------------------------------------------------------------------------
 * vhost-user level: a fresh connection per check, bad messages, then (if still connected) a full setup
 * ------------------------------------------------------------------------------------------------------------ */

static bool full_start(struct ctx *t);

static const char *vres(int rc)
{
	if (rc == 0)
		return "accepted";
	if (rc == -EIO)
		return "refused";
	if (rc == RES_DEAD)
		return "disconnected";
	if (rc == RES_TIMEOUT)
		return "no answer";
	if (rc == -EPROTO)
		return "bad answer";
	return res_str(rc);
}

/* Whatever the backend made of the bad message: still serving after a full setup, or gone cleanly. */
static void vu_probe(struct ctx *t)
{
	struct conn *c = &t->c;
	char why[256];
	check_socket(c);
	if (c->dead) {
		notef("backend closed the connection");
		return;
	}
	c->timeout_ms = 3000;
	struct timeval tv = { 3, 0 };
	setsockopt(c->fe.sock, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	/* As a VMM resets a device: negotiate, memory, and each queue stopped (GET_VRING_BASE) and started. */
	int rc = negotiate(c);
	if (rc == 0)
		rc = send_mem_table(c, MEM_SIZE);
	for (unsigned i = 0; i < c->fe.nqueues && rc == 0; i++)
		rc = reset_queue(c, i);
	if (rc < 0) {
		notef("a proper setup afterwards: %s", rc == RES_DEAD ? "backend closed the connection" : vres(rc));
		return;
	}
	rc = fuse_init(c);
	if (rc < 0) {
		notef("INIT afterwards: %s", res_str(rc));
		return;
	}
	if (alive(c, why, sizeof(why)))
		notef("still serves after a proper setup");
	else
		notef("after a proper setup: %s", why);
}

/* Waits up to ms for the backend to close the connection. */
static bool wait_closed(struct conn *c, int ms)
{
	uint64_t end = now_ms() + (uint64_t)ms;
	while (now_ms() < end) {
		check_socket(c);
		if (c->dead)
			return true;
		sleep_ms(10);
	}
	return false;
}

static void ck_vu_size_too_small(struct ctx *t)
{
	struct conn *c = &t->c;
	if (negotiate(c) < 0)
		return failf("negotiation failed");
	uint32_t v = 0;
	notef("SET_FEATURES with a 4-byte payload: %s",
	      vres(vcall(c, VHU_SET_FEATURES, VHU_FLAG_NEED_REPLY, &v, 4, NULL, 0, NULL, 0)));
}

static void ck_vu_size_too_large(struct ctx *t)
{
	struct conn *c = &t->c;
	if (negotiate(c) < 0)
		return failf("negotiation failed");
	uint8_t p[64] = { 1, 0, 0, 0, 0, 1 };
	notef("SET_VRING_NUM with a 64-byte payload: %s",
	      vres(vcall(c, VHU_SET_VRING_NUM, VHU_FLAG_NEED_REPLY, p, sizeof(p), NULL, 0, NULL, 0)));
}

static void ck_vu_size_4g(struct ctx *t)
{
	struct conn *c = &t->c;
	struct vhu_hdr h = { VHU_GET_FEATURES, VHU_VERSION, UINT32_MAX };
	raw_send(c, &h, sizeof(h), NULL, 0);
	if (wait_closed(c, 1000)) {
		notef("backend closed the connection");
		return;
	}
	uint64_t f;
	struct timeval tv = { 2, 0 };
	setsockopt(c->fe.sock, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	int rc = vget_u64(c, VHU_GET_FEATURES, &f);
	notef("GET_FEATURES after a 4 GiB size field: %s", rc == RES_TIMEOUT ? "no answer (waits for the payload)" : vres(rc));
}

static void ck_vu_size_over_payload(struct ctx *t)
{
	struct conn *c = &t->c;
	if (negotiate(c) < 0)
		return failf("negotiation failed");
	static uint8_t buf[sizeof(struct vhu_hdr) + 65536];
	struct vhu_hdr h = { VHU_SET_MEM_TABLE, VHU_VERSION | VHU_FLAG_NEED_REPLY, 4096 };
	memcpy(buf, &h, sizeof(h));
	memset(buf + sizeof(h), 0xff, 65536);
	raw_send(c, buf, sizeof(h) + 4096, NULL, 0);
	h = (struct vhu_hdr){ 24 /* GET_CONFIG */, VHU_VERSION, 65536 };
	memcpy(buf, &h, sizeof(h));
	raw_send(c, buf, sizeof(buf), NULL, 0);
	if (wait_closed(c, 1000))
		notef("backend closed the connection");
}

static void ck_vu_truncated_message(struct ctx *t)
{
	struct conn *c = &t->c;
	uint8_t buf[sizeof(struct vhu_hdr) + 4];
	struct vhu_hdr h = { VHU_SET_FEATURES, VHU_VERSION, 8 };
	memcpy(buf, &h, sizeof(h));
	memset(buf + sizeof(h), 0, 4);
	raw_send(c, buf, sizeof(buf), NULL, 0);
	shutdown(c->fe.sock, SHUT_WR);
	notef(wait_closed(c, 3000) ? "backend closed the connection" : "connection still open 3 s after EOF");
}

static void ck_vu_garbage_stream(struct ctx *t)
{
	struct conn *c = &t->c;
	static uint8_t buf[65536];
	for (size_t i = 0; i < sizeof(buf); i += 8) {
		uint64_t r = rnd64();
		memcpy(buf + i, &r, 8);
	}
	raw_send(c, buf, sizeof(buf), NULL, 0);
	if (wait_closed(c, 1000))
		notef("backend closed the connection");
	else
		notef("connection still open");
	shutdown(c->fe.sock, SHUT_WR);
	wait_closed(c, 2000);
}

static void ck_vu_missing_fd_mem_table(struct ctx *t)
{
	struct conn *c = &t->c;
	if (negotiate(c) < 0)
		return failf("negotiation failed");
	struct vhu_mem_table mt = { .nregions = 1 };
	mt.regions[0] = (struct vhu_mem_region){ .gpa = 0, .size = MEM_SIZE, .uaddr = (uintptr_t)c->fe.mem };
	notef("SET_MEM_TABLE without its fd: %s",
	      vres(vcall(c, VHU_SET_MEM_TABLE, VHU_FLAG_NEED_REPLY, &mt, 8 + sizeof(mt.regions[0]), NULL, 0, NULL, 0)));
}

static void ck_vu_missing_fd_kick(struct ctx *t)
{
	struct conn *c = &t->c;
	if (negotiate(c) < 0 || send_mem_table(c, MEM_SIZE) < 0 || start_queue(c, 0) < 0)
		return failf("setup failed");
	struct vu_fe_queue *q = &c->fe.q[1];
	struct vhu_vring_state num = { 1, QUEUE_SIZE }, base = { 1, 0 };
	struct vhu_vring_addr addr = { .index = 1, .desc_uaddr = (uintptr_t)vu_frontend_host(&c->fe, q->desc_gpa),
	                               .avail_uaddr = (uintptr_t)vu_frontend_host(&c->fe, q->avail_gpa),
	                               .used_uaddr = (uintptr_t)vu_frontend_host(&c->fe, q->used_gpa) };
	vcall(c, VHU_SET_VRING_NUM, 0, &num, sizeof(num), NULL, 0, NULL, 0);
	vcall(c, VHU_SET_VRING_BASE, 0, &base, sizeof(base), NULL, 0, NULL, 0);
	vcall(c, VHU_SET_VRING_ADDR, 0, &addr, sizeof(addr), NULL, 0, NULL, 0);
	uint64_t idx = 1;
	notef("SET_VRING_KICK without its fd: %s",
	      vres(vcall(c, VHU_SET_VRING_KICK, VHU_FLAG_NEED_REPLY, &idx, sizeof(idx), NULL, 0, NULL, 0)));
	if (!c->dead) {
		notef("SET_VRING_CALL without its fd: %s",
		      vres(vcall(c, VHU_SET_VRING_CALL, VHU_FLAG_NEED_REPLY, &idx, sizeof(idx), NULL, 0, NULL, 0)));
		struct vhu_vring_state en = { 1, 1 };
		vcall(c, VHU_SET_VRING_ENABLE, 0, &en, sizeof(en), NULL, 0, NULL, 0);
		eventfd_write(q->kick_fd, 1);
	}
}

static void ck_vu_extra_fds(struct ctx *t)
{
	struct conn *c = &t->c;
	int fds[32];
	for (int i = 0; i < 32; i++)
		fds[i] = eventfd(0, EFD_CLOEXEC);
	uint64_t f;
	int rc = vcall(c, VHU_GET_FEATURES, 0, NULL, 0, fds, 4, &f, sizeof(f));
	notef("GET_FEATURES with 4 fds: %s", vres(rc));
	if (!c->dead && negotiate(c) == 0) {
		struct vhu_vring_state num = { 1, QUEUE_SIZE };
		notef("SET_VRING_NUM with 2 fds: %s",
		      vres(vcall(c, VHU_SET_VRING_NUM, VHU_FLAG_NEED_REPLY, &num, sizeof(num), fds, 2, NULL, 0)));
	}
	if (!c->dead) {
		struct vhu_mem_table mt = { .nregions = 1 };
		mt.regions[0] = (struct vhu_mem_region){ .gpa = 0, .size = MEM_SIZE, .uaddr = (uintptr_t)c->fe.mem };
		int mfds[8] = { c->fe.memfd, fds[0], fds[1], fds[2], fds[3], fds[4], fds[5], fds[6] };
		notef("SET_MEM_TABLE with 8 fds for 1 region: %s",
		      vres(vcall(c, VHU_SET_MEM_TABLE, VHU_FLAG_NEED_REPLY, &mt, 8 + sizeof(mt.regions[0]), mfds, 8, NULL, 0)));
	}
	if (!c->dead) {
		struct vhu_hdr h = { VHU_GET_FEATURES, VHU_VERSION, 0 };
		raw_send(c, &h, sizeof(h), fds, 32);
		wait_closed(c, 500);
	}
	for (int i = 0; i < 32; i++)
		close(fds[i]);
}

static void ck_vu_mem_table_zero(struct ctx *t)
{
	struct conn *c = &t->c;
	if (negotiate(c) < 0)
		return failf("negotiation failed");
	struct vhu_mem_table mt = { .nregions = 0 };
	notef("SET_MEM_TABLE with 0 regions: %s",
	      vres(vcall(c, VHU_SET_MEM_TABLE, VHU_FLAG_NEED_REPLY, &mt, 8, NULL, 0, NULL, 0)));
}

static int mem_table2(struct conn *c, struct vhu_mem_region r0, struct vhu_mem_region r1)
{
	struct vhu_mem_table mt = { .nregions = 2 };
	mt.regions[0] = r0;
	mt.regions[1] = r1;
	int fds[2] = { c->fe.memfd, c->fe.memfd };
	return vcall(c, VHU_SET_MEM_TABLE, VHU_FLAG_NEED_REPLY, &mt, 8 + 2 * sizeof(r0), fds, 2, NULL, 0);
}

static void ck_vu_mem_table_overlap(struct ctx *t)
{
	struct conn *c = &t->c;
	if (negotiate(c) < 0)
		return failf("negotiation failed");
	uint64_t u = (uintptr_t)c->fe.mem;
	int rc = mem_table2(c, (struct vhu_mem_region){ 0, MEM_SIZE, u, 0 },
	                    (struct vhu_mem_region){ MEM_SIZE / 2, MEM_SIZE / 2, u + 2 * MEM_SIZE, MEM_SIZE / 2 });
	notef("guest addresses overlap: %s", vres(rc));
	if (c->dead)
		return;
	rc = mem_table2(c, (struct vhu_mem_region){ 0, MEM_SIZE / 2, u, 0 },
	                (struct vhu_mem_region){ 4ull * MEM_SIZE, MEM_SIZE / 2, u + MEM_SIZE / 4, MEM_SIZE / 2 });
	notef("frontend addresses overlap: %s", vres(rc));
	if (c->dead)
		return;
	rc = mem_table2(c, (struct vhu_mem_region){ 0, MEM_SIZE, u, 0 }, (struct vhu_mem_region){ 0, MEM_SIZE, u, 0 });
	notef("the same region twice: %s", vres(rc));
}

static void ck_vu_mem_table_too_many(struct ctx *t)
{
	struct conn *c = &t->c;
	if (negotiate(c) < 0)
		return failf("negotiation failed");
	uint8_t buf[8 + 16 * sizeof(struct vhu_mem_region)];
	memset(buf, 0, sizeof(buf));
	uint32_t n = 9;
	memcpy(buf, &n, 4);
	for (unsigned i = 0; i < 9; i++) {
		struct vhu_mem_region r = { (uint64_t)i << 30, 4096, (uintptr_t)c->fe.mem + ((uint64_t)i << 30), 0 };
		memcpy(buf + 8 + i * sizeof(r), &r, sizeof(r));
	}
	int fds[9];
	for (int i = 0; i < 9; i++)
		fds[i] = c->fe.memfd;
	struct vhu_hdr h = { VHU_SET_MEM_TABLE, VHU_VERSION | VHU_FLAG_NEED_REPLY, 8 + 9 * sizeof(struct vhu_mem_region) };
	uint8_t msg[sizeof(h) + sizeof(buf)];
	memcpy(msg, &h, sizeof(h));
	memcpy(msg + sizeof(h), buf, h.size);
	raw_send(c, msg, sizeof(h) + h.size, fds, 9);
	if (wait_closed(c, 500)) {
		notef("9 regions: backend closed the connection");
		return;
	}
	struct vhu_msg m;
	if (vhu_recv(c->fe.sock, &m) == 0)
		vhu_close_fds(&m);
	n = 255;
	memcpy(buf, &n, 4);
	notef("nregions 255 with one region's bytes: %s",
	      vres(vcall(c, VHU_SET_MEM_TABLE, VHU_FLAG_NEED_REPLY, buf, 8 + sizeof(struct vhu_mem_region), fds, 1, NULL, 0)));
	if (c->dead)
		return;
	n = UINT32_MAX;
	memcpy(buf, &n, 4);
	notef("nregions 2^32-1: %s",
	      vres(vcall(c, VHU_SET_MEM_TABLE, VHU_FLAG_NEED_REPLY, buf, 8 + sizeof(struct vhu_mem_region), fds, 1, NULL, 0)));
}

static int mem_table1(struct conn *c, struct vhu_mem_region r)
{
	struct vhu_mem_table mt = { .nregions = 1 };
	mt.regions[0] = r;
	return vcall(c, VHU_SET_MEM_TABLE, VHU_FLAG_NEED_REPLY, &mt, 8 + sizeof(r), &c->fe.memfd, 1, NULL, 0);
}

/* Queue setup without touching the rings (they may be where we cannot write). */
static void raw_queue(struct conn *c, unsigned i, uint32_t num, uint64_t desc, uint64_t avail, uint64_t used)
{
	struct vu_fe_queue *q = &c->fe.q[i];
	struct vhu_vring_state n = { i, num }, base = { i, 0 }, en = { i, 1 };
	struct vhu_vring_addr addr = { .index = i, .desc_uaddr = desc, .avail_uaddr = avail, .used_uaddr = used };
	uint64_t idx = i;
	vcall(c, VHU_SET_VRING_NUM, 0, &n, sizeof(n), NULL, 0, NULL, 0);
	vcall(c, VHU_SET_VRING_BASE, 0, &base, sizeof(base), NULL, 0, NULL, 0);
	vcall(c, VHU_SET_VRING_ADDR, 0, &addr, sizeof(addr), NULL, 0, NULL, 0);
	vcall(c, VHU_SET_VRING_CALL, 0, &idx, sizeof(idx), &q->call_fd, 1, NULL, 0);
	vcall(c, VHU_SET_VRING_ERR, 0, &idx, sizeof(idx), &q->err_fd, 1, NULL, 0);
	vcall(c, VHU_SET_VRING_KICK, 0, &idx, sizeof(idx), &q->kick_fd, 1, NULL, 0);
	c->qstarted[i] = true;
	if (c->features & (1ull << VHU_F_PROTOCOL_FEATURES))
		vcall(c, VHU_SET_VRING_ENABLE, 0, &en, sizeof(en), NULL, 0, NULL, 0);
	if (!c->dead)
		eventfd_write(q->kick_fd, 1);
}

static void ck_vu_mem_table_bad_offset(struct ctx *t)
{
	struct conn *c = &t->c;
	if (negotiate(c) < 0)
		return failf("negotiation failed");
	uint64_t u = (uintptr_t)c->fe.mem;
	notef("mmap_offset 2^64-4096: %s", vres(mem_table1(c, (struct vhu_mem_region){ 0, MEM_SIZE, u, UINT64_MAX - 4095 })));
	if (c->dead)
		return;
	notef("size 2^64-1: %s", vres(mem_table1(c, (struct vhu_mem_region){ 0, UINT64_MAX, u, 0 })));
	if (c->dead)
		return;
	notef("guest address range wrapping: %s",
	      vres(mem_table1(c, (struct vhu_mem_region){ UINT64_MAX - 4095, 8192, u, 0 })));
	if (c->dead)
		return;
	notef("size 0: %s", vres(mem_table1(c, (struct vhu_mem_region){ 0, 0, u, 0 })));
	if (c->dead)
		return;
	/* mmap_offset + size past the end of the fd: every access to the region would fault. */
	int rc = mem_table1(c, (struct vhu_mem_region){ 0, MEM_SIZE, u, MEM_SIZE });
	notef("region entirely past the end of its fd: %s", vres(rc));
	if (rc == 0 && !c->dead) {
		raw_queue(c, 0, QUEUE_SIZE, u + c->fe.q[0].desc_gpa, u + c->fe.q[0].avail_gpa, u + c->fe.q[0].used_gpa);
		raw_queue(c, 1, QUEUE_SIZE, u + c->fe.q[1].desc_gpa, u + c->fe.q[1].avail_gpa, u + c->fe.q[1].used_gpa);
		sleep_ms(500);
	}
}

static void ck_vu_mem_beyond_eof_ring(struct ctx *t)
{
	struct conn *c = &t->c;
	if (negotiate(c) < 0)
		return failf("negotiation failed");
	if (ftruncate(c->fe.memfd, MEM_SIZE / 2) < 0)
		return failf("ftruncate: %s", strerror(errno));
	uint64_t u = (uintptr_t)c->fe.mem;
	int rc = mem_table1(c, (struct vhu_mem_region){ 0, MEM_SIZE, u, 0 });
	notef("a region twice the size of its fd: %s", vres(rc));
	if (c->dead)
		return;
	uint64_t hi = u + MEM_SIZE * 3 / 4;
	raw_queue(c, 1, QUEUE_SIZE, hi, hi + 8192, hi + 16384);
	sleep_ms(500);
	if (ftruncate(c->fe.memfd, MEM_SIZE) < 0) /* whole again, for the setup that follows */
		failf("ftruncate: %s", strerror(errno));
}

/* Two chains into the second half of guest memory, past the end of its (shrunk) file: a request there, then a
 * reply there. Makes the file whole again afterwards. */
static void fire_past_eof(struct ctx *t)
{
	struct conn *c = &t->c;
	struct vqbuf v;
	vq_prepare(t, &v);
	D(c, v.s[0], MEM_SIZE * 3 / 4, 64, VRING_DESC_F_NEXT, v.s[1]);
	D(c, v.s[1], v.rep_gpa, v.rep_cap, VRING_DESC_F_WRITE, 0);
	vq_fire(t, &v, v.s[0]);
	D(c, v.s[2], v.req_gpa, v.req_len, VRING_DESC_F_NEXT, v.s[3]);
	D(c, v.s[3], MEM_SIZE * 3 / 4, 4096, VRING_DESC_F_WRITE, 0);
	if (!c->dead)
		vq_fire(t, &v, v.s[2]);
	if (ftruncate(c->fe.memfd, MEM_SIZE) < 0)
		failf("ftruncate: %s", strerror(errno));
}

static void ck_vu_mem_beyond_eof_request(struct ctx *t)
{
	struct conn *c = &t->c;
	if (ftruncate(c->fe.memfd, MEM_SIZE / 2) < 0)
		return failf("ftruncate: %s", strerror(errno));
	int rc = conn_start_queues(c);
	notef("a region twice the size of its fd: %s", rc < 0 ? vres(rc) : "accepted");
	if (rc < 0) {
		if (ftruncate(c->fe.memfd, MEM_SIZE) < 0)
			failf("ftruncate: %s", strerror(errno));
		return;
	}
	if (fuse_init(c) < 0)
		return notef("INIT failed");
	fire_past_eof(t);
}

static void queue_with_num(struct ctx *t, uint32_t num)
{
	struct conn *c = &t->c;
	struct vu_fe_queue *q = &c->fe.q[1];
	uint64_t u = (uintptr_t)c->fe.mem;
	struct vhu_vring_state n = { 1, num };
	if (stop_queue(c, 1) < 0)
		return;
	int rc = vcall(c, VHU_SET_VRING_NUM, VHU_FLAG_NEED_REPLY, &n, sizeof(n), NULL, 0, NULL, 0);
	notef("SET_VRING_NUM %u: %s", num, vres(rc));
	if (c->dead)
		return;
	memset(q->vq.split.r.avail, 0, vring_avail_bytes(QUEUE_SIZE));
	memset(q->vq.split.r.used, 0, vring_used_bytes(QUEUE_SIZE));
	struct vhu_vring_state base = { 1, 0 }, en = { 1, 1 };
	struct vhu_vring_addr addr = { .index = 1, .desc_uaddr = u + q->desc_gpa, .avail_uaddr = u + q->avail_gpa,
	                               .used_uaddr = u + q->used_gpa };
	uint64_t idx = 1;
	vcall(c, VHU_SET_VRING_BASE, 0, &base, sizeof(base), NULL, 0, NULL, 0);
	vcall(c, VHU_SET_VRING_ADDR, 0, &addr, sizeof(addr), NULL, 0, NULL, 0);
	vcall(c, VHU_SET_VRING_CALL, 0, &idx, sizeof(idx), &q->call_fd, 1, NULL, 0);
	vcall(c, VHU_SET_VRING_KICK, 0, &idx, sizeof(idx), &q->kick_fd, 1, NULL, 0);
	c->qstarted[1] = true;
	vcall(c, VHU_SET_VRING_ENABLE, 0, &en, sizeof(en), NULL, 0, NULL, 0);
	if (c->dead)
		return;
	/* A request as our 256-entry ring has it. */
	struct vring_split r = q->vq.split.r;
	vq_driver_free(&q->vq);
	vq_driver_init(&q->vq, &r, c->features & (1ull << VIRTIO_RING_F_EVENT_IDX_BIT));
	steal_descriptors(c, 1);
	c->qx[1].lenient = true;
	c->no_mem_checks = false;
	c->timeout_ms = 500;
	const char *name = "vufs-hostile-probe";
	struct call k = { .opcode = FUSE_LOOKUP, .nodeid = FUSE_ROOT_ID, .arg = name, .arglen = strlen(name) + 1 };
	notef("a request on it: %s", res_str(fcall(c, &k)));
}

static void vring_num_check(struct ctx *t, const uint32_t *nums, unsigned n)
{
	struct conn *c = &t->c;
	if (negotiate(c) < 0 || send_mem_table(c, MEM_SIZE) < 0 || start_queue(c, 0) < 0)
		return failf("setup failed");
	for (unsigned i = 0; i < n && !c->dead; i++)
		queue_with_num(t, nums[i]);
}

static void ck_vu_vring_num_zero(struct ctx *t)
{
	static const uint32_t nums[] = { 0 };
	vring_num_check(t, nums, 1);
}

static void ck_vu_vring_num_not_pow2(struct ctx *t)
{
	static const uint32_t nums[] = { 3, 255, 1000 };
	vring_num_check(t, nums, 3);
}

static void ck_vu_vring_num_too_big(struct ctx *t)
{
	static const uint32_t nums[] = { 32769, 65536, UINT32_MAX };
	vring_num_check(t, nums, 3);
}

static void ck_vu_vring_addr_outside(struct ctx *t)
{
	struct conn *c = &t->c;
	if (negotiate(c) < 0 || send_mem_table(c, MEM_SIZE) < 0 || start_queue(c, 0) < 0)
		return failf("setup failed");
	uint64_t u = (uintptr_t)c->fe.mem;
	raw_queue(c, 1, QUEUE_SIZE, u + MEM_SIZE + 4096, u + 2ull * MEM_SIZE, 0x1000);
	sleep_ms(300);
}

static void ck_vu_vring_addr_straddle(struct ctx *t)
{
	struct conn *c = &t->c;
	if (negotiate(c) < 0 || send_mem_table(c, MEM_SIZE) < 0 || start_queue(c, 0) < 0)
		return failf("setup failed");
	uint64_t u = (uintptr_t)c->fe.mem;
	struct vu_fe_queue *q = &c->fe.q[1];
	/* The descriptor table starts 16 bytes before the end of guest memory and runs 4080 bytes past it. */
	memset(c->fe.mem + MEM_SIZE - 16, 0, 16);
	raw_queue(c, 1, QUEUE_SIZE, u + MEM_SIZE - 16, u + q->avail_gpa, u + q->used_gpa);
	sleep_ms(300);
	if (c->dead || stop_queue(c, 1) < 0)
		return;
	/* and the used ring likewise */
	raw_queue(c, 1, QUEUE_SIZE, u + q->desc_gpa, u + q->avail_gpa, u + MEM_SIZE - 8);
	sleep_ms(300);
}

/* The queue's setup messages again while it runs, without stopping it first. */
static void ck_vu_setup_while_running(struct ctx *t)
{
	struct conn *c = &t->c;
	if (!full_start(t))
		return;
	struct vu_fe_queue *q = &c->fe.q[1];
	uint64_t idx = 1;
	int efd = eventfd(0, EFD_CLOEXEC);
	notef("SET_VRING_KICK on a running queue: %s",
	      vres(vcall(c, VHU_SET_VRING_KICK, VHU_FLAG_NEED_REPLY, &idx, sizeof(idx), &efd, 1, NULL, 0)));
	close(efd);
	if (c->dead)
		return;
	struct vhu_vring_state n = { 1, QUEUE_SIZE / 2 };
	notef("SET_VRING_NUM on a running queue: %s",
	      vres(vcall(c, VHU_SET_VRING_NUM, VHU_FLAG_NEED_REPLY, &n, sizeof(n), NULL, 0, NULL, 0)));
	if (c->dead)
		return;
	struct vhu_vring_state b = { 1, 77 };
	notef("SET_VRING_BASE on a running queue: %s",
	      vres(vcall(c, VHU_SET_VRING_BASE, VHU_FLAG_NEED_REPLY, &b, sizeof(b), NULL, 0, NULL, 0)));
	c->qx[1].lenient = true;
	eventfd_write(q->kick_fd, 1);
}

static void ck_vu_queue_index_out_of_range(struct ctx *t)
{
	struct conn *c = &t->c;
	if (negotiate(c) < 0 || send_mem_table(c, MEM_SIZE) < 0)
		return failf("setup failed");
	const uint32_t idx[] = { 17, 255, 256, 0x10000, UINT32_MAX };
	uint64_t u = (uintptr_t)c->fe.mem;
	unsigned refused_n = 0, accepted = 0;
	for (unsigned i = 0; i < 5 && !c->dead; i++) {
		struct vhu_vring_state st = { idx[i], QUEUE_SIZE };
		struct vhu_vring_addr addr = { .index = idx[i], .desc_uaddr = u, .avail_uaddr = u + 8192,
		                               .used_uaddr = u + 16384 };
		int rcs[4] = {
			vcall(c, VHU_SET_VRING_NUM, VHU_FLAG_NEED_REPLY, &st, sizeof(st), NULL, 0, NULL, 0),
			vcall(c, VHU_SET_VRING_BASE, VHU_FLAG_NEED_REPLY, &st, sizeof(st), NULL, 0, NULL, 0),
			vcall(c, VHU_SET_VRING_ADDR, VHU_FLAG_NEED_REPLY, &addr, sizeof(addr), NULL, 0, NULL, 0),
			vcall(c, VHU_SET_VRING_ENABLE, VHU_FLAG_NEED_REPLY, &(struct vhu_vring_state){ idx[i], 1 },
			      sizeof(st), NULL, 0, NULL, 0),
		};
		for (int k = 0; k < 4; k++) {
			if (rcs[k] == 0)
				accepted++;
			else if (rcs[k] == -EIO)
				refused_n++;
		}
	}
	notef("SET_VRING_NUM/BASE/ADDR/ENABLE for queues 17..2^32-1: %u refused, %u accepted%s", refused_n, accepted,
	      c->dead ? ", then disconnected" : "");
	const uint64_t u64s[] = { 0xff, 0xff | VHU_VRING_NOFD_MASK, 17, 0xffffffff00000001ull, UINT64_MAX };
	int efd = eventfd(0, EFD_CLOEXEC);
	for (unsigned i = 0; i < 5 && !c->dead; i++) {
		bool nofd = u64s[i] & VHU_VRING_NOFD_MASK;
		vcall(c, VHU_SET_VRING_CALL, VHU_FLAG_NEED_REPLY, &u64s[i], 8, &efd, nofd ? 0 : 1, NULL, 0);
		if (!c->dead)
			vcall(c, VHU_SET_VRING_KICK, VHU_FLAG_NEED_REPLY, &u64s[i], 8, &efd, nofd ? 0 : 1, NULL, 0);
		if (!c->dead)
			vcall(c, VHU_SET_VRING_ERR, VHU_FLAG_NEED_REPLY, &u64s[i], 8, &efd, nofd ? 0 : 1, NULL, 0);
	}
	close(efd);
	if (!c->dead) {
		struct vhu_vring_state st = { 4096, 0 };
		int rc = vcall(c, VHU_GET_VRING_BASE, 0, &st, sizeof(st), NULL, 0, &st, sizeof(st));
		notef("GET_VRING_BASE of queue 4096: %s", vres(rc));
	}
}

static void ck_vu_flags_garbage(struct ctx *t)
{
	struct conn *c = &t->c;
	const uint32_t flags[] = { 0, 2, 3, VHU_VERSION | VHU_FLAG_REPLY, 0xfffffff1u, UINT32_MAX };
	struct timeval tv = { 1, 0 };
	setsockopt(c->fe.sock, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	char summary[256] = "";
	for (unsigned i = 0; i < 6 && !c->dead; i++) {
		struct vhu_msg m = { .hdr = { VHU_GET_FEATURES, flags[i], 0 } };
		vhu_send(c->fe.sock, &m);
		int rc = vhu_recv(c->fe.sock, &m);
		if (rc == 0)
			vhu_close_fds(&m);
		else if (rc != -EAGAIN)
			c->dead = true;
		snprintf(summary + strlen(summary), sizeof(summary) - strlen(summary), "%sflags %#x: %s", i ? ", " : "",
		         flags[i], rc == 0 ? "answered" : rc == -EAGAIN ? "ignored" : "disconnected");
	}
	notef("%s", summary);
}

static void ck_vu_unknown_request(struct ctx *t)
{
	struct conn *c = &t->c;
	if (negotiate(c) < 0)
		return failf("negotiation failed");
	const uint32_t reqs[] = { 0, 19, 20, 22, 23, 26, 63, 64, 1000, UINT32_MAX };
	char summary[256] = "";
	for (unsigned i = 0; i < sizeof(reqs) / sizeof(reqs[0]) && !c->dead; i++) {
		uint64_t v = UINT64_MAX;
		int rc = vcall(c, reqs[i], VHU_FLAG_NEED_REPLY, &v, sizeof(v), NULL, 0, NULL, 0);
		if (i < 4)
			snprintf(summary + strlen(summary), sizeof(summary) - strlen(summary), "%s%u: %s", i ? ", " : "", reqs[i],
			         vres(rc));
	}
	notef("unknown requests %s", summary);
}

static void ck_vu_kick_before_mem_table(struct ctx *t)
{
	struct conn *c = &t->c;
	if (negotiate(c) < 0)
		return failf("negotiation failed");
	uint64_t u = (uintptr_t)c->fe.mem;
	struct vu_fe_queue *q = &c->fe.q[1];
	raw_queue(c, 1, QUEUE_SIZE, u + q->desc_gpa, u + q->avail_gpa, u + q->used_gpa);
	sleep_ms(300);
}

static void ck_vu_vring_base_huge(struct ctx *t)
{
	struct conn *c = &t->c;
	if (negotiate(c) < 0 || send_mem_table(c, MEM_SIZE) < 0 || start_queue(c, 0) < 0)
		return failf("setup failed");
	struct vhu_vring_state b = { 1, UINT32_MAX };
	notef("SET_VRING_BASE 2^32-1: %s", vres(vcall(c, VHU_SET_VRING_BASE, VHU_FLAG_NEED_REPLY, &b, sizeof(b), NULL, 0, NULL, 0)));
	if (c->dead)
		return;
	/* A base far from the ring's real indexes, then a request. */
	uint64_t u = (uintptr_t)c->fe.mem;
	struct vu_fe_queue *q = &c->fe.q[1];
	struct vhu_vring_state n = { 1, QUEUE_SIZE }, base = { 1, 0x7fff }, en = { 1, 1 };
	struct vhu_vring_addr addr = { .index = 1, .desc_uaddr = u + q->desc_gpa, .avail_uaddr = u + q->avail_gpa,
	                               .used_uaddr = u + q->used_gpa };
	uint64_t idx = 1;
	vcall(c, VHU_SET_VRING_NUM, 0, &n, sizeof(n), NULL, 0, NULL, 0);
	vcall(c, VHU_SET_VRING_BASE, 0, &base, sizeof(base), NULL, 0, NULL, 0);
	vcall(c, VHU_SET_VRING_ADDR, 0, &addr, sizeof(addr), NULL, 0, NULL, 0);
	vcall(c, VHU_SET_VRING_CALL, 0, &idx, sizeof(idx), &q->call_fd, 1, NULL, 0);
	vcall(c, VHU_SET_VRING_KICK, 0, &idx, sizeof(idx), &q->kick_fd, 1, NULL, 0);
	c->qstarted[1] = true;
	vcall(c, VHU_SET_VRING_ENABLE, 0, &en, sizeof(en), NULL, 0, NULL, 0);
	if (c->dead)
		return;
	c->qx[1].lenient = true;
	c->timeout_ms = 1500;
	const char *name = "vufs-hostile-probe";
	struct call k = { .opcode = FUSE_LOOKUP, .nodeid = FUSE_ROOT_ID, .arg = name, .arglen = strlen(name) + 1 };
	notef("a request with the backend's index at 0x7fff: %s", res_str(fcall(c, &k)));
}

static bool full_start(struct ctx *t)
{
	int rc = conn_start_queues(&t->c);
	if (rc < 0) {
		failf("setup failed: %s", vres(rc));
		return false;
	}
	if ((rc = fuse_init(&t->c)) < 0) {
		failf("INIT failed: %s", res_str(rc));
		return false;
	}
	return true;
}

static void ck_vu_rem_mem_reg_live(struct ctx *t)
{
	struct conn *c = &t->c;
	if (!full_start(t))
		return;
	if (!(c->pf & (1ull << VHU_PROTOCOL_F_CONFIGURE_MEM_SLOTS))) {
		skipf("the backend does not offer CONFIGURE_MEM_SLOTS");
		return;
	}
	struct vhu_mem_reg r = { .region = { 0, MEM_SIZE, (uintptr_t)c->fe.mem, 0 } };
	notef("REM_MEM_REG of the only region while queues run: %s",
	      vres(vcall(c, VHU_REM_MEM_REG, VHU_FLAG_NEED_REPLY, &r, sizeof(r), &c->fe.memfd, 1, NULL, 0)));
	if (c->dead)
		return;
	c->qx[1].lenient = true;
	c->timeout_ms = 1500;
	const char *name = "vufs-hostile-probe";
	struct call k = { .opcode = FUSE_LOOKUP, .nodeid = FUSE_ROOT_ID, .arg = name, .arglen = strlen(name) + 1 };
	notef("a request afterwards: %s", res_str(fcall(c, &k)));
}

static void ck_vu_add_mem_reg_overlap(struct ctx *t)
{
	struct conn *c = &t->c;
	if (!full_start(t))
		return;
	if (!(c->pf & (1ull << VHU_PROTOCOL_F_CONFIGURE_MEM_SLOTS))) {
		skipf("the backend does not offer CONFIGURE_MEM_SLOTS");
		return;
	}
	uint64_t u = (uintptr_t)c->fe.mem;
	struct vhu_mem_reg r = { .region = { MEM_SIZE / 2, MEM_SIZE, u + 8ull * MEM_SIZE, MEM_SIZE / 2 } };
	notef("ADD_MEM_REG overlapping guest memory: %s",
	      vres(vcall(c, VHU_ADD_MEM_REG, VHU_FLAG_NEED_REPLY, &r, sizeof(r), &c->fe.memfd, 1, NULL, 0)));
	if (c->dead)
		return;
	r.region = (struct vhu_mem_region){ 0, MEM_SIZE, u, 0 };
	notef("ADD_MEM_REG of the same region again: %s",
	      vres(vcall(c, VHU_ADD_MEM_REG, VHU_FLAG_NEED_REPLY, &r, sizeof(r), &c->fe.memfd, 1, NULL, 0)));
	if (c->dead)
		return;
	for (int i = 0; i < 40 && !c->dead; i++) {
		r.region = (struct vhu_mem_region){ (uint64_t)(i + 4) << 32, 4096, u + ((uint64_t)(i + 4) << 32), 0 };
		vcall(c, VHU_ADD_MEM_REG, VHU_FLAG_NEED_REPLY, &r, sizeof(r), &c->fe.memfd, 1, NULL, 0);
	}
	notef("40 more regions: %s", c->dead ? "disconnected" : "connection kept");
}

/* A burst of n LOOKUPs of the probe name in flight at once: submitted by probe_burst_submit (calling between(i)
 * after the i-th, if given), collected by probe_burst_finish within ms of its call, which counts the answers
 * accepted by ok(rc). */
#define PROBE_NAME "vufs-hostile-probe"

static void probe_burst_submit(struct conn *c, struct call *calls, struct pend *pend, int *sub, int n, int timeout_ms,
                               void (*between)(struct conn *c, int i))
{
	for (int i = 0; i < n; i++) {
		calls[i] = (struct call){ .opcode = FUSE_LOOKUP, .nodeid = FUSE_ROOT_ID, .arg = PROBE_NAME,
		                          .arglen = sizeof(PROBE_NAME), .timeout_ms = timeout_ms };
		sub[i] = fsubmit(c, &calls[i], &pend[i]);
		if (between)
			between(c, i);
	}
}

static int probe_burst_finish(struct conn *c, struct call *calls, struct pend *pend, const int *sub, int n,
                              unsigned ms, bool (*ok)(int rc))
{
	int answered = 0;
	uint64_t deadline = now_ms() + ms;
	for (int i = 0; i < n; i++) {
		uint64_t now = now_ms();
		calls[i].timeout_ms = now < deadline ? (int)(deadline - now) : 1;
		if (sub[i] == 0 && ok(ffinish(c, &pend[i])))
			answered++;
	}
	return answered;
}

static bool rc_success(int rc) { return rc >= 0; }
static bool rc_not_timeout(int rc) { return rc != RES_TIMEOUT; }

static void swap_mem_table_midway(struct conn *c, int i)
{
	if (i == 32)
		notef("SET_MEM_TABLE while requests are in flight: %s", vres(send_mem_table(c, MEM_SIZE)));
}

static void ck_vu_mem_table_swap_live(struct ctx *t)
{
	struct conn *c = &t->c;
	if (!full_start(t))
		return;
	enum { N = 64 };
	struct call calls[N];
	struct pend pend[N];
	int sub[N];
	probe_burst_submit(c, calls, pend, sub, N, 3000, swap_mem_table_midway);
	notef("%d of %d requests answered", probe_burst_finish(c, calls, pend, sub, N, 3000, rc_success), N);
}

static void ck_vu_reset_while_running(struct ctx *t)
{
	struct conn *c = &t->c;
	if (!full_start(t))
		return;
	enum { N = 32 };
	struct call calls[N];
	struct pend pend[N];
	int sub[N];
	probe_burst_submit(c, calls, pend, sub, N, 1000, NULL);
	c->qx[1].lenient = true;
	notef("RESET_OWNER with requests in flight: %s",
	      vres(vcall(c, VHU_RESET_OWNER, VHU_FLAG_NEED_REPLY, NULL, 0, NULL, 0, NULL, 0)));
	notef("%d of %d requests in flight were answered", probe_burst_finish(c, calls, pend, sub, N, 1000, rc_not_timeout),
	      N);
	if (!c->dead)
		eventfd_write(c->fe.q[1].kick_fd, 1);
}

static void ck_vu_features_unknown(struct ctx *t)
{
	struct conn *c = &t->c;
	if (negotiate(c) < 0)
		return failf("negotiation failed");
	notef("SET_FEATURES 2^64-1: %s", vres(vcall_u64(c, VHU_SET_FEATURES, UINT64_MAX)));
	if (!c->dead)
		notef("SET_PROTOCOL_FEATURES 2^64-1: %s", vres(vcall_u64(c, VHU_SET_PROTOCOL_FEATURES, UINT64_MAX)));
	c->pf &= ~(1ull << VHU_PROTOCOL_F_REPLY_ACK) | (c->pf & (1ull << VHU_PROTOCOL_F_REPLY_ACK));
}

static void ck_vu_log_base(struct ctx *t)
{
	struct conn *c = &t->c;
	if (negotiate(c) < 0)
		return failf("negotiation failed");
	struct { uint64_t size, offset; } log = { 1ull << 40, UINT64_MAX - 4095 };
	notef("SET_LOG_BASE (1 TiB at offset 2^64-4096): %s",
	      vres(vcall(c, VHU_SET_LOG_BASE, VHU_FLAG_NEED_REPLY, &log, sizeof(log), &c->fe.memfd, 1, NULL, 0)));
	if (c->dead)
		return;
	int efd = eventfd(0, EFD_CLOEXEC);
	notef("SET_LOG_FD: %s", vres(vcall(c, VHU_SET_LOG_FD, VHU_FLAG_NEED_REPLY, NULL, 0, &efd, 1, NULL, 0)));
	close(efd);
}

static void ck_vu_config_msgs(struct ctx *t)
{
	struct conn *c = &t->c;
	if (negotiate(c) < 0)
		return failf("negotiation failed");
	struct { uint32_t offset, size, flags; uint8_t region[256]; } cfg = { UINT32_MAX - 3, UINT32_MAX, UINT32_MAX, { 0 } };
	struct vhu_msg m = { .hdr = { VHU_GET_CONFIG, VHU_VERSION, sizeof(cfg) } };
	memcpy(&m.p, &cfg, sizeof(cfg));
	vhu_send(c->fe.sock, &m);
	struct timeval tv = { 1, 0 };
	setsockopt(c->fe.sock, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	int rc = vhu_recv(c->fe.sock, &m);
	if (rc == 0)
		vhu_close_fds(&m);
	notef("GET_CONFIG of 4 GiB at offset 2^32-4: %s", rc == 0 ? "answered" : rc == -EAGAIN ? "no answer" : "disconnected");
	if (rc < 0 && rc != -EAGAIN) {
		c->dead = true;
		return;
	}
	m = (struct vhu_msg){ .hdr = { VHU_SET_CONFIG, VHU_VERSION | VHU_FLAG_NEED_REPLY, sizeof(cfg) } };
	memcpy(&m.p, &cfg, sizeof(cfg));
	vhu_send(c->fe.sock, &m);
	rc = vhu_recv(c->fe.sock, &m);
	if (rc == 0)
		vhu_close_fds(&m);
	else if (rc != -EAGAIN)
		c->dead = true;
}

/* ------------------------------------------------------------------------------------------------------------
 * Hardening: double fetches, the VMM's fds, memory that shrinks, waits across memory changes and teardown,
 * privileged xattr names, lock handles
 * ------------------------------------------------------------------------------------------------------------ */

/* Opens work/NAME (made on the host with text) and returns its node id and handle; false if it could not. */
static bool open_work_file(struct ctx *t, const char *name, const char *text, uint64_t *node, uint64_t *fh)
{
	struct fuse_entry_out e;
	host_file(t, name, text);
	if (lookup(&t->c, t->work, name, &e) < 0 || do_open(&t->c, FUSE_OPEN, e.nodeid, O_RDWR, fh) < 0) {
		failf("setup: LOOKUP/OPEN of %s failed", name);
		return false;
	}
	*node = e.nodeid;
	return true;
}

/* Owner 1 takes a write lock on bytes 0-9; false (with a note) if the backend serves no POSIX locks. */
static bool hold_lock(struct ctx *t, uint64_t node, uint64_t fh, struct fuse_lk_in *lk)
{
	*lk = (struct fuse_lk_in){ .fh = fh, .owner = 1, .lk = { .start = 0, .end = 9, .type = F_WRLCK, .pid = 1 } };
	int rc = fop(&t->c, FUSE_SETLK, node, lk, sizeof(*lk), NULL, 0);
	if (rc < 0) {
		notef("SETLK: %s: the backend does not serve POSIX locks", res_str(rc));
		if (rc == RES_TIMEOUT || rc == RES_DEAD || rc == RES_BAD)
			failf("SETLK: %s", res_str(rc));
		return false;
	}
	return true;
}

struct opflip {
	atomic_bool stop;
	volatile struct fuse_in_header *h;
	atomic_uint flips;
};

static void *opcode_flip_thread(void *arg)
{
	struct opflip *f = arg;
	while (!atomic_load(&f->stop)) {
		f->h->opcode ^= FUSE_SETLK ^ FUSE_SETLKW; /* half the time each */
		atomic_fetch_add(&f->flips, 1);
	}
	return NULL;
}

/*
 * A conflicting lock request whose opcode the guest flips between SETLK and SETLKW while the backend reads it.
 * Taken for either, it is fine; but a backend that decides "does not block" from one read and serves "SETLKW"
 * from another waits for the lock on its queue thread: the queue stops serving and GET_VRING_BASE never returns.
 */
static void ck_setlk_opcode_flip(struct ctx *t)
{
	struct conn *c = &t->c;
	uint64_t node, fh;
	struct fuse_lk_in lk;
	if (!open_work_file(t, "f", "0123456789", &node, &fh) || !hold_lock(t, node, fh, &lk))
		return;
	c->no_mem_checks = true;
	struct opflip f = { .h = (volatile struct fuse_in_header *)c->big };
	atomic_init(&f.stop, false);
	atomic_init(&f.flips, 0);
	pthread_t th;
	pthread_create(&th, NULL, opcode_flip_thread, &f);
	unsigned answered = 0, waiting = 0;
	for (int i = 0; i < 200 && !failed(); i++) {
		struct fuse_lk_in w = lk;
		w.owner = 2 + (uint64_t)i;
		w.lk.pid = 2;
		struct call k = { .opcode = FUSE_SETLK, .nodeid = node, .arg = &w, .arglen = sizeof(w), .place = PLACE_BIG,
		                  .volatile_in = true, .timeout_ms = 100 };
		int rc = fcall(c, &k);
		if (rc == RES_DEAD) {
			failf("the backend disconnected while the guest flipped SETLK/SETLKW");
			break;
		}
		if (rc != RES_TIMEOUT) {
			answered++;
			continue;
		}
		/* Taken for SETLKW: it may wait, the queue may not. */
		waiting++;
		struct fuse_entry_out e;
		rc = lookup(c, t->work, "f", &e);
		if (rc == RES_TIMEOUT || rc == RES_DEAD)
			failf("the queue stopped serving behind a lock request whose opcode changed in flight: %s",
			      res_str(rc));
		else if (rc >= 0)
			forget(c, e.nodeid, 1);
	}
	atomic_store(&f.stop, true);
	pthread_join(th, NULL);
	notef("200 conflicting SETLK with a flipping opcode: %u answered at once, %u left waiting (%u flips)", answered,
	      waiting, atomic_load(&f.flips));
	if (failed())
		return;
	/* The VMM stops the queue (as QEMU does at shutdown or migration): a queue thread stuck in a wait never
	 * answers. */
	int rc = stop_queue(c, 1);
	if (rc == RES_TIMEOUT || rc == RES_DEAD)
		failf("GET_VRING_BASE after the flips: %s (the queue thread is stuck)", res_str(rc));
	else if (start_queue(c, 1) < 0)
		failf("restarting queue 1 failed");
	c->no_mem_checks = false;
}

static unsigned long backend_cpu_ms(struct conn *c)
{
	unsigned long total = 0;
	for (unsigned i = 0; i < c->nprocs; i++) {
		char p[64], buf[1024];
		snprintf(p, sizeof(p), "/proc/%d/stat", c->procs[i]);
		FILE *f = fopen(p, "re");
		if (!f)
			continue;
		size_t n = fread(buf, 1, sizeof(buf) - 1, f);
		fclose(f);
		buf[n] = 0;
		char *rp = strrchr(buf, ')');
		unsigned long ut = 0, st = 0;
		/* after "pid (comm)": state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime */
		if (rp && sscanf(rp + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) == 2)
			total += (ut + st) * 1000 / (unsigned long)sysconf(_SC_CLK_TCK);
	}
	return total;
}

/* 50 LOOKUPs on request queue 1 must all be answered. */
static void require_answers(struct ctx *t, const char *with)
{
	for (int i = 0; i < 50 && !failed(); i++) {
		struct fuse_entry_out e;
		int rc = lookup(&t->c, FUSE_ROOT_ID, t->work_name, &e);
		if (rc < 0) {
			failf("a LOOKUP %s: %s", with, res_str(rc));
			return;
		}
		forget(&t->c, e.nodeid, 1);
	}
}

/* Sets queue 1's fd for request (CALL, KICK, ERR); returns the backend's status. */
static int set_vring_fd(struct conn *c, uint32_t request, int fd)
{
	uint64_t idx = 1;
	return vcall(c, request, 0, &idx, sizeof(idx), &fd, 1, NULL, 0);
}

/*
 * The fds a VMM hands over are as hostile as its messages: an eventfd already at its maximum count or a full
 * pipe as the call fd (a blocking write stalls the queue for ever), a regular file as the kick fd (always
 * readable: a busy loop).
 */
static void ck_vu_vring_fds_hostile(struct ctx *t)
{
	struct conn *c = &t->c;
	struct vu_fe_queue *q = &c->fe.q[1];

	/* Blocking, as the fd's flags are the backend's too: a write past the maximum count then waits. */
	int full = eventfd(0, EFD_CLOEXEC);
	uint64_t max = 0xfffffffffffffffeull;
	if (full < 0 || write(full, &max, sizeof(max)) != sizeof(max))
		return failf("eventfd: %s", strerror(errno));
	notef("call eventfd at its maximum count: %s", vres(set_vring_fd(c, VHU_SET_VRING_CALL, full)));
	require_answers(t, "with a call eventfd at its maximum count");
	notef("error eventfd at its maximum count: %s", vres(set_vring_fd(c, VHU_SET_VRING_ERR, full)));
	close(full);

	int p[2];
	if (pipe2(p, O_NONBLOCK | O_CLOEXEC) < 0)
		return failf("pipe: %s", strerror(errno));
	while (write(p[1], "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", 64) > 0)
		;
	fcntl(p[1], F_SETFL, fcntl(p[1], F_GETFL) & ~O_NONBLOCK); /* full, and blocking for whoever writes next */
	notef("a full pipe as the call fd: %s", vres(set_vring_fd(c, VHU_SET_VRING_CALL, p[1])));
	require_answers(t, "with a full pipe as the call fd");
	close(p[0]);
	close(p[1]);

	int file = open("/tmp", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (file < 0 || write(file, "kickkickkickkick", 16) != 16)
		return failf("O_TMPFILE: %s", strerror(errno));
	notef("a regular file as the kick fd: %s", vres(set_vring_fd(c, VHU_SET_VRING_KICK, file)));
	close(file);
	unsigned long before = backend_cpu_ms(c);
	sleep_ms(1000);
	unsigned long spent = backend_cpu_ms(c) - before;
	notef("backend CPU in the next second: %lu ms", spent);
	if (spent > 500)
		failf("the backend spins on a kick fd that is always readable (%lu ms of CPU in 1 s, idle)", spent);
	require_answers(t, "after a regular file was offered as the kick fd");

	/* Back to proper fds for what follows. */
	set_vring_fd(c, VHU_SET_VRING_CALL, q->call_fd);
	set_vring_fd(c, VHU_SET_VRING_ERR, q->err_fd);
	set_vring_fd(c, VHU_SET_VRING_KICK, q->kick_fd);
}

/* The VMM shrinks its memory file after the backend mapped it; then requests and replies land in the part
 * that is gone. A backend that touches it dies of SIGBUS unless it survives the access. */
static void ck_vu_mem_shrink_live(struct ctx *t)
{
	struct conn *c = &t->c;
	if (ftruncate(c->fe.memfd, MEM_SIZE / 2) < 0)
		return failf("ftruncate: %s", strerror(errno));
	fire_past_eof(t);
}

/* Submits a SETLKW for owner 2 on the held lock; true when it waits (as it should). */
static bool submit_waiting_setlkw(struct ctx *t, uint64_t node, const struct fuse_lk_in *held, uint64_t owner,
                                  struct fuse_lk_in *w, struct call *k, struct pend *p)
{
	*w = *held;
	w->owner = owner;
	w->lk.pid = (uint32_t)owner;
	*k = (struct call){ .opcode = FUSE_SETLKW, .nodeid = node, .arg = w, .arglen = sizeof(*w), .timeout_ms = 200 };
	if (fsubmit(&t->c, k, p) < 0) {
		failf("SETLKW: could not submit");
		return false;
	}
	int rc = ffinish(&t->c, p);
	if (rc != RES_TIMEOUT) {
		notef("SETLKW on a held lock: %s (no wait)", res_str(rc));
		return false;
	}
	return true;
}

/* A guest process waits for a lock while the VMM changes the memory table (memory hotplug): when the lock is
 * released, the wait must end with a reply, or the guest process hangs while the lock is its own. */
static void ck_setlkw_mem_change(struct ctx *t)
{
	struct conn *c = &t->c;
	uint64_t node, fh;
	struct fuse_lk_in lk, w;
	struct call k;
	struct pend p;
	if (!open_work_file(t, "f", "0123456789", &node, &fh) || !hold_lock(t, node, fh, &lk) ||
	    !submit_waiting_setlkw(t, node, &lk, 2, &w, &k, &p))
		return;
	notef("SET_MEM_TABLE while a SETLKW waits: %s", vres(send_mem_table(c, MEM_SIZE)));
	require_alive(t, "a memory-table change");
	lk.lk.type = F_UNLCK;
	int rc = fop(c, FUSE_SETLK, node, &lk, sizeof(lk), NULL, 0);
	if (rc < 0)
		return failf("the holder's unlock: %s", res_str(rc));
	uint64_t deadline = now_ms() + 3000;
	while (!atomic_load(&p.r->done) && now_ms() < deadline && !c->dead) {
		reap(c, 1);
		sleep_ms(5);
	}
	if (!atomic_load(&p.r->done))
		return failf("a SETLKW waiting across a memory-table change was never answered after the lock was "
		             "released (the guest process hangs, and the lock may be granted to nobody)");
	struct fuse_out_header oh;
	memcpy(&oh, p.s->out, sizeof(oh));
	notef("the waiting SETLKW was answered: %s", oh.error ? errname(-oh.error) : "granted");
	if (oh.unique != p.unique)
		failf("the SETLKW's reply does not carry its unique (%llu, not %llu)", (unsigned long long)oh.unique,
		      (unsigned long long)p.unique);
}

/* The frontend goes away while guest processes wait for locks: the backend must cancel the waits before it
 * frees what they use (judged by its exit: no signal, no sanitizer report, no hang). */
static void ck_setlkw_disconnect(struct ctx *t)
{
	uint64_t node, fh;
	struct fuse_lk_in lk, w[8];
	struct call k[8];
	struct pend p[8];
	if (!open_work_file(t, "f", "0123456789", &node, &fh) || !hold_lock(t, node, fh, &lk))
		return;
	unsigned n = 0;
	for (unsigned i = 0; i < 8 && !failed(); i++)
		n += submit_waiting_setlkw(t, node, &lk, 2 + i, &w[i], &k[i], &p[i]);
	notef("%u SETLKW waiting when the frontend disconnects", n);
}

/* DESTROY (the guest unmounts) while guest processes wait for locks: the file system is reset under the waits.
 * The backend must stay whole: a new session (INIT) is served, and the waits end one way or another. */
static void ck_setlkw_destroy(struct ctx *t)
{
	struct conn *c = &t->c;
	uint64_t node, fh;
	struct fuse_lk_in lk, w[4];
	struct call k[4];
	struct pend p[4];
	if (!open_work_file(t, "f", "0123456789", &node, &fh) || !hold_lock(t, node, fh, &lk))
		return;
	unsigned n = 0;
	for (unsigned i = 0; i < 4 && !failed(); i++)
		n += submit_waiting_setlkw(t, node, &lk, 2 + i, &w[i], &k[i], &p[i]);
	expect_answer(c, fop(c, FUSE_DESTROY, 0, NULL, 0, NULL, 0), "DESTROY while %u SETLKW wait", n);
	int rc = fuse_init(c);
	if (rc == RES_TIMEOUT || rc == RES_DEAD || rc == RES_BAD)
		return failf("INIT after a DESTROY with waiting locks: %s", res_str(rc));
	struct fuse_entry_out e;
	if (lookup(c, FUSE_ROOT_ID, t->work_name, &e) >= 0)
		t->work = e.nodeid;
	unsigned answered = 0;
	for (uint64_t deadline = now_ms() + 2000; answered < n && now_ms() < deadline; sleep_ms(10)) {
		reap(c, 1);
		answered = 0;
		for (unsigned i = 0; i < n; i++)
			answered += atomic_load(&p[i].r->done) != 0;
	}
	notef("%u SETLKW waiting at DESTROY; %u answered since", n, answered);
	if (answered < n)
		failf("%u lock waits never ended after DESTROY: the ended session's locks still hold the file on the host",
		      n - answered);
}

/* xattr names a host user needs capabilities for, set by an unprivileged guest user on a root-owned file. */
static void ck_xattr_privileged(struct ctx *t)
{
	struct conn *c = &t->c;
	static const uint32_t fcap[5] = { 0x02000002, 0xffffffff, 0, 0xffffffff, 0 }; /* v2: every capability */
	static const char *const names[] = { "security.capability", "trusted.vufs-hostile", "security.vufs-hostile",
	                                     "user.vufs-hostile" };
	char path[PATH_MAX * 2];
	struct fuse_entry_out e;
	host_file(t, "f", "0123456789");
	snprintf(path, sizeof(path), "%s/f", t->work_path);
	chmod(path, 0644);
	if (lookup(c, t->work, "f", &e) < 0)
		return failf("setup: LOOKUP failed");
	for (unsigned i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		struct args a = { .n = 0 };
		struct fuse_setxattr_in si = { .size = sizeof(fcap) };
		a_put(&a, &si, FUSE_COMPAT_SETXATTR_IN_SIZE);
		a_str(&a, names[i]);
		a_put(&a, fcap, sizeof(fcap));
		struct call k = { .opcode = FUSE_SETXATTR, .nodeid = e.nodeid, .arg = a.b, .arglen = a.n, .uid = 1000,
		                  .gid = 1000 };
		expect_refused(c, fcall(c, &k), "SETXATTR %s by uid 1000 on a root-owned 0644 file", names[i]);
		char val[64];
		if (lgetxattr(path, names[i], val, sizeof(val)) >= 0)
			failf("uid 1000 in the guest set %s on a root-owned file", names[i]);
		struct call r = { .opcode = FUSE_REMOVEXATTR, .nodeid = e.nodeid, .arg = names[i],
		                  .arglen = strlen(names[i]) + 1, .uid = 1000, .gid = 1000 };
		int rc = fcall(c, &r);
		expect_refused(c, rc, "REMOVEXATTR %s by uid 1000", names[i]);
	}
}

/* SETLK/GETLK through a handle that does not exist, or that is open on another file. */
static void ck_lock_fh_mismatch(struct ctx *t)
{
	struct conn *c = &t->c;
	uint64_t f, fh, g, gh;
	if (!open_work_file(t, "f", "0123456789", &f, &fh) || !open_work_file(t, "g", "abcdefghij", &g, &gh))
		return;
	const uint64_t bad[] = { gh, fh ^ 0x5555, UINT64_MAX, 0 };
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct fuse_lk_in lk = { .fh = bad[i], .owner = 7, .lk = { .start = 0, .end = 9, .type = F_WRLCK, .pid = 7 } };
		struct fuse_lk_out out;
		expect_refused(c, fop(c, FUSE_SETLK, f, &lk, sizeof(lk), NULL, 0), "SETLK through handle %#llx",
		               (unsigned long long)bad[i]);
		expect_refused(c, fop(c, FUSE_GETLK, f, &lk, sizeof(lk), &out, sizeof(out)), "GETLK through handle %#llx",
		               (unsigned long long)bad[i]);
	}
	do_release(c, FUSE_RELEASE, f, fh);
	do_release(c, FUSE_RELEASE, g, gh);
}

/* ------------------------------------------------------------------------------------------------------------
 * The table, and running one check
 * ------------------------------------------------------------------------------------------------------------ */

enum kind {
	K_FUSE,    /* connected, started, INIT sent; the backend must still serve afterwards */
	K_NOINIT,  /* connected and started; the check sends INIT itself; must still serve afterwards */
	K_VQ,      /* like K_FUSE, but request queue 1 may end up broken (or the backend gone) */
	K_RAW,     /* only connected: the check drives the vhost-user protocol itself */
};

struct check {
	const char *name;
	void (*fn)(struct ctx *);
	enum kind kind;
};

static const struct check checks[] = {
	{ "fuse.before_init", ck_before_init, K_NOINIT },
	{ "fuse.init_truncated", ck_init_truncated, K_NOINIT },
	{ "fuse.init_bad_version", ck_init_bad_version, K_NOINIT },
	{ "fuse.init_twice", ck_init_twice, K_FUSE },
	{ "fuse.destroy_reinit", ck_destroy_reinit, K_FUSE },
	{ "fuse.nodeid_unknown", ck_nodeid_unknown, K_FUSE },
	{ "fuse.nodeid_forgotten", ck_nodeid_forgotten, K_FUSE },
	{ "fuse.fh_forged", ck_fh_forged, K_FUSE },
	{ "fuse.fh_stale", ck_fh_stale, K_FUSE },
	{ "fuse.name_slash", ck_name_slash, K_FUSE },
	{ "fuse.name_dotdot", ck_name_dotdot, K_FUSE },
	{ "fuse.name_dot", ck_name_dot, K_FUSE },
	{ "fuse.name_empty", ck_name_empty, K_FUSE },
	{ "fuse.name_too_long", ck_name_too_long, K_FUSE },
	{ "fuse.name_no_nul", ck_name_no_nul, K_FUSE },
	{ "fuse.name_trailing_garbage", ck_name_trailing_garbage, K_FUSE },
	{ "fuse.hdr_len_larger", ck_hdr_len_larger, K_FUSE },
	{ "fuse.hdr_len_smaller", ck_hdr_len_smaller, K_FUSE },
	{ "fuse.hdr_short", ck_hdr_short, K_FUSE },
	{ "fuse.args_truncated", ck_args_truncated, K_FUSE },
	{ "fuse.opcode_unknown", ck_opcode_unknown, K_FUSE },
	{ "fuse.opcode_unsupported", ck_opcode_unsupported, K_FUSE },
	{ "fuse.read_huge", ck_read_huge, K_FUSE },
	{ "fuse.write_huge", ck_write_huge, K_FUSE },
	{ "fuse.setxattr_size", ck_setxattr_size, K_FUSE },
	{ "fuse.readdir_huge", ck_readdir_huge, K_FUSE },
	{ "fuse.setattr_huge", ck_setattr_huge, K_FUSE },
	{ "fuse.fallocate_lseek_huge", ck_fallocate_huge, K_FUSE },
	{ "fuse.copy_file_range_bad", ck_copy_file_range_bad, K_FUSE },
	{ "fuse.open_flags_garbage", ck_open_flags_garbage, K_FUSE },
	{ "fuse.batch_forget_overrun", ck_batch_forget_overrun, K_FUSE },
	{ "fuse.forget_root", ck_forget_root, K_FUSE },
	{ "fuse.forget_unknown", ck_forget_unknown, K_FUSE },
	{ "fuse.lookup_flood", ck_lookup_flood, K_FUSE },
	{ "fuse.lookup_repeat", ck_lookup_repeat, K_FUSE },
	{ "fuse.open_flood", ck_open_flood, K_FUSE },
	{ "fuse.open_fifo", ck_open_fifo, K_FUSE },
	{ "fuse.open_chardev", ck_open_chardev, K_FUSE },
	{ "fuse.open_blockdev", ck_open_blockdev, K_FUSE },
	{ "fuse.create_existing_fifo", ck_create_existing_special, K_FUSE },
	{ "fuse.symlink_abs", ck_symlink_abs, K_FUSE },
	{ "fuse.symlink_rel", ck_symlink_rel, K_FUSE },
	{ "fuse.symlink_dir", ck_symlink_dir, K_FUSE },
	{ "fuse.symlink_setattr", ck_symlink_setattr, K_FUSE },
	{ "fuse.symlink_xattr", ck_symlink_xattr, K_FUSE },
	{ "fuse.link_unknown", ck_link_unknown, K_FUSE },
	{ "fuse.link_escape", ck_link_escape, K_FUSE },
	{ "fuse.rename_escape", ck_rename_escape, K_FUSE },
	{ "fuse.rename_race", ck_rename_race, K_FUSE },
	{ "fuse.toctou_name", ck_toctou_name, K_FUSE },
	{ "fuse.toctou_header", ck_toctou_header, K_FUSE },
	{ "fuse.hiprio_requests", ck_hiprio_requests, K_FUSE },
	{ "fuse.setlkw_flood", ck_setlkw_flood, K_FUSE },
	{ "fuse.setlkw_padded", ck_setlkw_padded, K_FUSE },
	{ "vq.desc_outside_memory", ck_vq_desc_outside, K_VQ },
	{ "vq.desc_addr_overflow", ck_vq_desc_addr_overflow, K_VQ },
	{ "vq.desc_len_huge", ck_vq_desc_len_huge, K_VQ },
	{ "vq.desc_writable_outside", ck_vq_desc_writable_outside, K_VQ },
	{ "vq.desc_loop", ck_vq_desc_loop, K_VQ },
	{ "vq.desc_self_loop", ck_vq_desc_self_loop, K_VQ },
	{ "vq.desc_next_out_of_range", ck_vq_desc_next_out_of_range, K_VQ },
	{ "vq.head_out_of_range", ck_vq_head_out_of_range, K_VQ },
	{ "vq.chain_longer_than_queue", ck_vq_chain_longer_than_queue, K_VQ },
	{ "vq.indirect_too_long", ck_vq_indirect_too_long, K_VQ },
	{ "vq.writable_before_readable", ck_vq_writable_before_readable, K_VQ },
	{ "vq.indirect_nested", ck_vq_indirect_nested, K_VQ },
	{ "vq.indirect_self", ck_vq_indirect_self, K_VQ },
	{ "vq.indirect_len_unaligned", ck_vq_indirect_len_unaligned, K_VQ },
	{ "vq.indirect_len_zero", ck_vq_indirect_len_zero, K_VQ },
	{ "vq.indirect_len_huge", ck_vq_indirect_len_huge, K_VQ },
	{ "vq.indirect_outside_memory", ck_vq_indirect_outside, K_VQ },
	{ "vq.indirect_straddles_end", ck_vq_indirect_straddle, K_VQ },
	{ "vq.indirect_with_next", ck_vq_indirect_with_next, K_VQ },
	{ "vq.indirect_loop", ck_vq_indirect_loop, K_VQ },
	{ "vq.indirect_next_out_of_range", ck_vq_indirect_next_out_of_range, K_VQ },
	{ "vq.avail_idx_jump", ck_vq_avail_idx_jump, K_VQ },
	{ "vq.reply_too_small", ck_vq_reply_too_small, K_VQ },
	{ "vq.no_writable", ck_vq_no_writable, K_VQ },
	{ "vq.request_split_tiny", ck_vq_request_split_tiny, K_VQ },
	{ "vq.reply_split_tiny", ck_vq_reply_split_tiny, K_VQ },
	{ "vq.desc_rewrite_race", ck_vq_desc_rewrite_race, K_VQ },
	{ "vu.size_too_small", ck_vu_size_too_small, K_RAW },
	{ "vu.size_too_large", ck_vu_size_too_large, K_RAW },
	{ "vu.size_4g", ck_vu_size_4g, K_RAW },
	{ "vu.size_over_payload", ck_vu_size_over_payload, K_RAW },
	{ "vu.truncated_message", ck_vu_truncated_message, K_RAW },
	{ "vu.garbage_stream", ck_vu_garbage_stream, K_RAW },
	{ "vu.missing_fd_mem_table", ck_vu_missing_fd_mem_table, K_RAW },
	{ "vu.missing_fd_kick", ck_vu_missing_fd_kick, K_RAW },
	{ "vu.extra_fds", ck_vu_extra_fds, K_RAW },
	{ "vu.mem_table_zero", ck_vu_mem_table_zero, K_RAW },
	{ "vu.mem_table_overlap", ck_vu_mem_table_overlap, K_RAW },
	{ "vu.mem_table_too_many", ck_vu_mem_table_too_many, K_RAW },
	{ "vu.mem_table_bad_offset", ck_vu_mem_table_bad_offset, K_RAW },
	{ "vu.mem_beyond_eof_ring", ck_vu_mem_beyond_eof_ring, K_RAW },
	{ "vu.mem_beyond_eof_request", ck_vu_mem_beyond_eof_request, K_RAW },
	{ "vu.vring_addr_outside", ck_vu_vring_addr_outside, K_RAW },
	{ "vu.vring_addr_straddle", ck_vu_vring_addr_straddle, K_RAW },
	{ "vu.vring_num_zero", ck_vu_vring_num_zero, K_RAW },
	{ "vu.vring_num_not_pow2", ck_vu_vring_num_not_pow2, K_RAW },
	{ "vu.vring_num_too_big", ck_vu_vring_num_too_big, K_RAW },
	{ "vu.vring_base_huge", ck_vu_vring_base_huge, K_RAW },
	{ "vu.setup_while_running", ck_vu_setup_while_running, K_RAW },
	{ "vu.queue_index_out_of_range", ck_vu_queue_index_out_of_range, K_RAW },
	{ "vu.flags_garbage", ck_vu_flags_garbage, K_RAW },
	{ "vu.unknown_request", ck_vu_unknown_request, K_RAW },
	{ "vu.kick_before_mem_table", ck_vu_kick_before_mem_table, K_RAW },
	{ "vu.rem_mem_reg_live", ck_vu_rem_mem_reg_live, K_RAW },
	{ "vu.add_mem_reg_overlap", ck_vu_add_mem_reg_overlap, K_RAW },
	{ "vu.mem_table_swap_live", ck_vu_mem_table_swap_live, K_RAW },
	{ "vu.reset_while_running", ck_vu_reset_while_running, K_RAW },
	{ "vu.features_unknown", ck_vu_features_unknown, K_RAW },
	{ "vu.log_base", ck_vu_log_base, K_RAW },
	{ "vu.config_msgs", ck_vu_config_msgs, K_RAW },
	{ "fuse.setlk_opcode_flip", ck_setlk_opcode_flip, K_FUSE },
	{ "fuse.setlkw_mem_change", ck_setlkw_mem_change, K_FUSE },
	{ "fuse.setlkw_disconnect", ck_setlkw_disconnect, K_FUSE },
	{ "fuse.setlkw_destroy", ck_setlkw_destroy, K_FUSE },
	{ "fuse.xattr_privileged", ck_xattr_privileged, K_FUSE },
	{ "fuse.lock_fh_mismatch", ck_lock_fh_mismatch, K_FUSE },
	{ "vu.vring_fds_hostile", ck_vu_vring_fds_hostile, K_FUSE },
	{ "vu.mem_shrink_live", ck_vu_mem_shrink_live, K_VQ },
};
#define NCHECKS (sizeof(checks) / sizeof(checks[0]))

static bool selected(const char *name)
{
	if (!opt.only)
		return true;
	char buf[1024];
	snprintf(buf, sizeof(buf), "%s", opt.only);
	for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
		if (!fnmatch(tok, name, 0) || !strcmp(tok, name))
			return true;
	return false;
}

/* After the connection closed: did a backend process die from a signal, or fail to exit? */
static void judge_exit(struct ctx *t)
{
	struct conn *c = &t->c;
	if (!c->nprocs)
		return;
	uint64_t deadline = now_ms() + (opt.expect_exit ? 8000 : 1500);
	bool all_gone;
	do {
		c->nprocs = mon_add_children(c->procs, c->nprocs, 8);
		all_gone = true;
		for (unsigned i = 0; i < c->nprocs; i++) {
			uint32_t code;
			if (mon_exit(c->procs[i], &code))
				continue;
			char p[64];
			snprintf(p, sizeof(p), "/proc/%d", c->procs[i]);
			if (access(p, F_OK) == 0)
				all_gone = false;
		}
		if (all_gone)
			break;
		sleep_ms(20);
	} while (now_ms() < deadline);
	if (mon.ok)
		sleep_ms(30); /* the exit event may trail the process's disappearance */
	c->nprocs = mon_add_children(c->procs, c->nprocs, 8);
	for (unsigned i = 0; i < c->nprocs; i++) {
		uint32_t code;
		if (getenv("VUFS_HOSTILE_DEBUG"))
			notef("process %d: %s %#x", c->procs[i], mon_exit(c->procs[i], &code) ? "exit" : "no exit seen",
			      mon_exit(c->procs[i], &code) ? code : 0);
		if (!mon_exit(c->procs[i], &code))
			continue;
		if (WIFSIGNALED(code)) {
			char prev[512];
			snprintf(prev, sizeof(prev), "%s", cur.fail);
			snprintf(cur.fail, sizeof(cur.fail), "backend process %d died from %s%s%s%s", c->procs[i],
			         signame(WTERMSIG(code)), WCOREDUMP(code) ? " (core dumped)" : "", prev[0] ? " -- " : "", prev);
			return;
		}
		if (i == 0 && WIFEXITED(code) && WEXITSTATUS(code) != 0)
			notef("backend exited with status %d", WEXITSTATUS(code));
	}
	if (opt.expect_exit && !all_gone)
		failf("the backend did not exit after the frontend disconnected (stuck?)");
}

static void run_check(const struct check *ck)
{
	static struct ctx t;
	char why[512];
	memset(&t, 0, sizeof(t));
	memset(&cur, 0, sizeof(cur));
	cur.name = ck->name;
	snprintf(t.work_name, sizeof(t.work_name), "hw-%s", ck->name);
	snprintf(t.work_path, sizeof(t.work_path), "%s/%s", share_dir, t.work_name);
	rm_rf(t.work_path);
	mkdir(t.work_path, 0777);
	chmod(t.work_path, 0777);
	stat(outside_dir, &t.outside_st);
	stat(parent_dir, &t.parent_st);
	stat(share_dir, &t.root_st);
	char p[PATH_MAX + 64];
	snprintf(p, sizeof(p), "%s/canary", outside_dir);
	stat(p, &t.canary_st);
	stat("/etc/passwd", &t.passwd_st);

	bool ok;
	switch (ck->kind) {
	case K_RAW: ok = ctx_connect(&t); break;
	case K_NOINIT: ok = ctx_start(&t, false); break;
	default: ok = ctx_start(&t, true); break;
	}
	if (ok) {
		if (ck->kind == K_NOINIT) {
			ck->fn(&t);
			struct fuse_entry_out e;
			if (!failed() && lookup(&t.c, FUSE_ROOT_ID, t.work_name, &e) >= 0)
				t.work = e.nodeid;
		} else {
			ck->fn(&t);
		}
		switch (ck->kind) {
		case K_FUSE:
		case K_NOINIT:
			t.c.timeout_ms = opt.timeout_ms;
			require_alive(&t, "the attack");
			break;
		case K_VQ:
			vq_aftermath(&t);
			break;
		case K_RAW:
			if (!cur.skip[0] && !failed())
				vu_probe(&t);
			break;
		}
		require_clean(&t);
	}
	if (t.c.up) {
		/* check the canaries of every slot that is not in flight */
		for (unsigned i = 0; i < NSLOTS && !t.c.no_mem_checks; i++) {
			if (t.c.slots[i].busy)
				continue;
			for (unsigned k = SLOT_OUT; k < SLOT_OUT + CANARY_LEN; k++)
				if (t.c.slots[i].out[k] != CANARY_BYTE) {
					failf("the backend wrote past a reply buffer (slot %u)", i);
					break;
				}
		}
	}
	if (t.c.up && !t.c.dead)
		conn_track(&t.c);
	conn_close(&t.c);
	if (host_changed(why, sizeof(why))) {
		failf("%s", why);
		host_repair();
	}
	judge_exit(&t);
	rm_rf(t.work_path);

	for (unsigned i = 0; i < cur.nnotes; i++)
		printf("NOTE %s: %s\n", ck->name, cur.notes[i]);
	if (cur.fail[0]) {
		printf("FAIL %s: %s\n", ck->name, cur.fail);
		n_fail++;
	} else if (cur.skip[0]) {
		printf("SKIP %s: %s\n", ck->name, cur.skip);
		n_skip++;
	} else {
		printf("PASS %s\n", ck->name);
		n_pass++;
	}
	fflush(stdout);
}

static void usage(FILE *f)
{
	fprintf(f, "usage: vufs-hostile --socket=PATH --share=HOSTDIR [--only=GLOB[,GLOB...]] [--peer=NAME]\n"
	           "                    [--timeout=MS] [--expect-exit] [--queues=N] [--list]\n"
	           "Attacks a vhost-user-fs backend as a malicious VMM and guest; one fresh connection per check\n"
	           "(restart a one-connection backend between checks, e.g. one --only=NAME per instance).\n"
	           "Canaries go next to HOSTDIR (in its parent directory); HOSTDIR must be the backend's share.\n"
	           "  --list          print the check names (with --only: those selected)\n"
	           "  --peer=NAME     a label for the output\n"
	           "  --timeout=MS    how long to wait for a reply (default 10000)\n"
	           "  --expect-exit   the backend serves one connection: it must exit once we disconnect\n"
	           "  --queues=N      request queues to set up (default 1)\n"
	           "  --backend-pid=PID  the backend process: flood checks require its fds to come back and its\n"
	           "                  memory to stay bounded (read from /proc/PID)\n"
	           "  --flood=N       LOOKUPs sent by fuse.lookup_repeat (default 100000)\n");
}

int main(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "socket", required_argument, NULL, 's' }, { "share", required_argument, NULL, 'd' },
		{ "only", required_argument, NULL, 'o' }, { "peer", required_argument, NULL, 'p' },
		{ "list", no_argument, NULL, 'l' }, { "timeout", required_argument, NULL, 't' },
		{ "expect-exit", no_argument, NULL, 'x' }, { "queues", required_argument, NULL, 'q' },
		{ "backend-pid", required_argument, NULL, 'P' }, { "flood", required_argument, NULL, 'F' },
		{ "help", no_argument, NULL, 'h' }, { NULL, 0, NULL, 0 },
	};
	int ch;
	while ((ch = getopt_long(argc, argv, "h", lopts, NULL)) != -1) {
		switch (ch) {
		case 's': opt.socket = optarg; break;
		case 'd': opt.share = optarg; break;
		case 'o': opt.only = optarg; break;
		case 'p': opt.peer = optarg; break;
		case 'l': opt.list = true; break;
		case 't': opt.timeout_ms = atoi(optarg); break;
		case 'x': opt.expect_exit = true; break;
		case 'q': opt.queues = (unsigned)atoi(optarg); break;
		case 'P': opt.backend_pid = atoi(optarg); break;
		case 'F': opt.flood = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (opt.list) {
		for (unsigned i = 0; i < NCHECKS; i++)
			if (selected(checks[i].name))
				printf("%s\n", checks[i].name);
		return 0;
	}
	if (!opt.socket || !opt.share || opt.queues < 1 || opt.queues + 1 > VU_FE_MAX_QUEUES) {
		usage(stderr);
		return 2;
	}
	log_init("vufs-hostile", LOG_LVL_ERROR, false);
	signal(SIGPIPE, SIG_IGN);
	if (!realpath(opt.share, share_dir)) {
		fprintf(stderr, "vufs-hostile: %s: %s\n", opt.share, strerror(errno));
		return 2;
	}
	snprintf(parent_dir, sizeof(parent_dir), "%s", share_dir);
	char *slash = strrchr(parent_dir, '/');
	if (!slash || slash == parent_dir) {
		fprintf(stderr, "vufs-hostile: the share must not be / or directly under it\n");
		return 2;
	}
	*slash = 0;
	snprintf(outside_base, sizeof(outside_base), "vufs-hostile-outside.%d", getpid());
	snprintf(outside_dir, sizeof(outside_dir), "%s/%s", parent_dir, outside_base);
	snprintf(esc_prefix, sizeof(esc_prefix), "vufs-hostile-esc.%d", getpid());
	rng_state ^= (uint64_t)getpid() << 17;
	mon_start();
	host_setup();
	printf("# vufs-hostile against %s (%s), share %s%s\n", opt.peer, opt.socket, share_dir,
	       mon.ok ? "" : " (no proc connector: signal deaths are not seen)");
	for (unsigned i = 0; i < NCHECKS; i++)
		if (selected(checks[i].name))
			run_check(&checks[i]);
	host_teardown();
	printf("%u passed, %u failed\n", n_pass, n_fail);
	return n_fail ? 1 : 0;
}

/* vufs-mount: options, then vhost-user frontend + /dev/fuse mount + bridge, wired together. */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "mount/bridge.h"
#include "transport/fuse_dev.h"
#include "transport/vu_frontend.h"

#define MIB (1024u * 1024u)

struct mount_options {
	const char *socket;
	const char *mountpoint;
	char options[1024];
	bool foreground;
	unsigned queues, queue_size, hiprio_size, threads;
	size_t memory;
	uint32_t max_write;
	unsigned poll_us;
	bool no_event_idx;
	bool packed;
	bool dax, dax_inode;
	uint64_t dax_window;      /* --dax-window: at most this much of the backend's window (0: all of it) */
	const char *dirty_log;    /* tests: --dirty-log=FILE, logging on as during a migration */
	enum log_level log_level;
};

static void usage(FILE *out)
{
	fputs("Usage: vufs-mount --socket=PATH MOUNTPOINT [-o OPTIONS] [-f]\n"
	      "Mounts a vhost-user-fs backend's export on the host, playing the VMM and the guest driver.\n\n"
	      "  --socket=PATH       the backend's vhost-user socket\n"
	      "  -o OPT[,OPT...]     mount options: ro, nosuid, nodev, noexec, noatime, allow_other,\n"
	      "                      default_permissions (on unless no_default_permissions), max_read=N, ...\n"
	      "  -f                  stay in the foreground\n"
	      "  --queues=N          request queues (default 1)\n"
	      "  --queue-size=N      entries per virtqueue, a power of two (default 128)\n"
	      "  --hiprio-size=N     entries on the hiprio (FORGET) queue, a power of two (default: --queue-size)\n"
	      "  --threads=N         reader threads, requests in flight at once (default 4)\n"
	      "  --max-write=BYTES   data per READ/WRITE request (default 1 MiB)\n"
	      "  --memory=MIB        shared memory in MiB (default: what the threads need)\n"
	      "  --no-event-idx      do not negotiate VIRTIO_RING_F_EVENT_IDX\n"
	      "  --packed            packed virtqueues (VIRTIO_F_RING_PACKED); fails if the backend lacks them\n"
	      "  --poll-us=N         poll for each reply N microseconds before sleeping (default 0)\n"
	      "  --dax=never|always|inode  serve reads and writes through the backend's DAX window (default\n"
	      "                      never; inode: the files the backend marks FUSE_ATTR_DAX; also -o dax=...)\n"
	      "  --dax-window=SIZE   use at most SIZE (K, M, G; a multiple of 2M) of the backend's window\n"
	      "  --log-level=LEVEL   error, warn, info (default), debug\n"
	      "  --dirty-log=FILE    (tests) make FILE the dirty-page log and have the backend log every page it\n"
	      "                      writes, as during a live migration; fails if the backend cannot\n"
	      "  -h, --help          this help\n",
	      out);
}

static int parse_dax(const char *v, struct mount_options *o)
{
	if (!strcmp(v, "never") || !strcmp(v, "always") || !strcmp(v, "inode")) {
		o->dax = strcmp(v, "never") != 0;
		o->dax_inode = !strcmp(v, "inode");
		return 0;
	}
	fprintf(stderr, "vufs-mount: dax=%s: never, always or inode\n", v);
	return -1;
}

/* --dax-window=SIZE: K, M or G, a multiple of 2 MiB (the driver's range), at most 64 GiB. */
static int parse_window(const char *v, uint64_t *out)
{
	char *end;
	errno = 0;
	unsigned long long n = strtoull(v, &end, 10);
	unsigned shift = *end == 'K' ? 10 : *end == 'M' ? 20 : *end == 'G' ? 30 : 0;
	if (shift)
		end++;
	if (errno || end == v || *end || n > (64ull << 30) >> shift || !n || (n << shift) % (2u << 20)) {
		fprintf(stderr, "vufs-mount: --dax-window=%s: a multiple of 2M, at most 64G\n", v);
		return -1;
	}
	*out = (uint64_t)n << shift;
	return 0;
}

/* Appends user options; default_permissions unless the user says no_default_permissions; dax= is ours. */
static int add_mount_options(struct mount_options *o, const char *opts)
{
	char *copy = strdup(opts), *save = NULL;
	if (!copy)
		return -1;
	for (char *item = strtok_r(copy, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
		if (!strncmp(item, "dax=", 4)) {
			if (parse_dax(item + 4, o) < 0) {
				free(copy);
				return -1;
			}
			continue;
		}
		if (!strcmp(item, "no_default_permissions")) {
			char *p = strstr(o->options, "default_permissions");
			if (p)
				memmove(p, p + strlen("default_permissions"), strlen(p + strlen("default_permissions")) + 1);
			continue;
		}
		size_t len = strlen(o->options);
		if (snprintf(o->options + len, sizeof(o->options) - len, ",%s", item) >= (int)(sizeof(o->options) - len)) {
			free(copy);
			return -1;
		}
	}
	free(copy);
	return 0;
}

static int parse(int argc, char **argv, struct mount_options *o)
{
	static const struct option longs[] = {
		{ "socket", required_argument, NULL, 's' }, { "queues", required_argument, NULL, 'q' },
		{ "queue-size", required_argument, NULL, 'Q' }, { "hiprio-size", required_argument, NULL, 'H' },
		{ "threads", required_argument, NULL, 't' },
		{ "memory", required_argument, NULL, 'm' }, { "max-write", required_argument, NULL, 'w' },
		{ "no-event-idx", no_argument, NULL, 'E' }, { "packed", no_argument, NULL, 'K' },
		{ "poll-us", required_argument, NULL, 'P' }, { "dax", required_argument, NULL, 'D' },
		{ "dax-window", required_argument, NULL, 'W' }, { "log-level", required_argument, NULL, 'L' },
		{ "dirty-log", required_argument, NULL, 'G' }, { "help", no_argument, NULL, 'h' }, { NULL, 0, NULL, 0 },
	};
	uint64_t v;
	int c;
	*o = (struct mount_options){ .queues = 1, .queue_size = 128, .threads = 4, .max_write = MIB,
	                             .log_level = LOG_LVL_INFO };
	strcpy(o->options, "default_permissions");
	while ((c = getopt_long(argc, argv, "o:fh", longs, NULL)) != -1) {
		switch (c) {
		case 's': o->socket = optarg; break;
		case 'o': if (add_mount_options(o, optarg) < 0) return -1; break;
		case 'f': o->foreground = true; break;
		case 'q': if (parse_u64(optarg, 16, &v) || !v) return -1; o->queues = (unsigned)v; break;
		case 'Q': if (parse_u64(optarg, 1024, &v) || !v || (v & (v - 1))) return -1; o->queue_size = (unsigned)v; break;
		case 'H': if (parse_u64(optarg, 1024, &v) || !v || (v & (v - 1))) return -1; o->hiprio_size = (unsigned)v; break;
		case 't': if (parse_u64(optarg, 256, &v) || !v) return -1; o->threads = (unsigned)v; break;
		case 'm': if (parse_u64(optarg, 65536, &v) || !v) return -1; o->memory = (size_t)v * MIB; break;
		case 'w': if (parse_u64(optarg, 16 * MIB, &v) || v < 8192) return -1; o->max_write = (uint32_t)v; break;
		case 'E': o->no_event_idx = true; break;
		case 'K': o->packed = true; break;
		case 'P': if (parse_u64(optarg, 1000000, &v)) return -1; o->poll_us = (unsigned)v; break;
		case 'D': if (parse_dax(optarg, o) < 0) return -1; break;
		case 'W': if (parse_window(optarg, &o->dax_window) < 0) return -1; break;
		case 'L': if (log_parse_level(optarg, &o->log_level)) return -1; break;
		case 'G': o->dirty_log = optarg; break;
		case 'h': usage(stdout); exit(0);
		default: return -1;
		}
	}
	if (optind + 1 != argc || !o->socket)
		return -1;
	if (!o->hiprio_size)
		o->hiprio_size = o->queue_size;
	o->mountpoint = argv[optind];
	return 0;
}

/* mountinfo writes space, tab, newline and backslash in paths as \ooo octal escapes; undo them in place. */
static void unescape_mountinfo(char *p)
{
	char *out = p;
	for (; *p; p++) {
		if (p[0] == '\\' && p[1] >= '0' && p[1] <= '3' && p[2] >= '0' && p[2] <= '7' && p[3] >= '0' && p[3] <= '7') {
			*out++ = (char)((p[1] - '0') << 6 | (p[2] - '0') << 3 | (p[3] - '0'));
			p += 3;
		} else {
			*out++ = *p;
		}
	}
	*out = 0;
}

/* Whether mountpoint still carries a fuse.vufs mount in our mount namespace. */
static bool still_mounted(const char *mountpoint)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char line[4096];
	bool found = false;
	if (!f)
		return true; /* cannot tell: assume it is */
	while (!found && fgets(line, sizeof(line), f)) {
		char mp[PATH_MAX], *dash = strstr(line, " - ");
		if (!dash || strncmp(dash + 3, "fuse.vufs ", 10) || sscanf(line, "%*s %*s %*s %*s %4095s", mp) != 1)
			continue;
		unescape_mountinfo(mp);
		found = !strcmp(mp, mountpoint);
	}
	fclose(f);
	return found;
}

enum run_end { ENDED_UNMOUNTED, ENDED_STUCK };

/*
 * Waits for a signal (then unmounts) or for the readers to leave (someone unmounted). If the mount is gone from
 * our namespace but the readers stay (a copy of the mount lives on in another mount namespace, made by a
 * process that unshared while we were mounted), the connection never ends by itself: report that.
 */
static enum run_end run_until_unmounted(struct bridge *b, const char *mountpoint, const char *canonical, int sfd)
{
	struct pollfd pfd[2] = { { .fd = sfd, .events = POLLIN }, { .fd = bridge_done_fd(b), .events = POLLIN } };
	unsigned gone = 0;
	for (;;) {
		int n = poll(pfd, 2, 1000);
		if (n < 0 && errno != EINTR)
			break;
		if (pfd[1].revents)
			return ENDED_UNMOUNTED;
		if (pfd[0].revents) {
			struct signalfd_siginfo si;
			if (read(sfd, &si, sizeof(si)) == sizeof(si))
				log_info("signal %u: unmounting %s", si.ssi_signo, mountpoint);
			fuse_dev_unmount(mountpoint);
			pfd[0].fd = -1;
		}
		if (n == 0 && !still_mounted(canonical) && ++gone >= 3)
			return ENDED_STUCK;
	}
	return ENDED_UNMOUNTED;
}

int main(int argc, char **argv)
{
	struct mount_options o;
	struct vu_frontend fe;
	struct bridge *b = NULL;
	int rc;

	if (parse(argc, argv, &o) < 0) {
		usage(stderr);
		return 2;
	}
	log_init("vufs-mount", o.log_level, false);
	struct bridge_config bcfg = { .threads = o.threads, .max_write = o.max_write, .poll_us = o.poll_us,
	                              .hiprio_size = o.hiprio_size, .dax = o.dax,
	                              .dax_inode = o.dax_inode };
	struct vu_frontend_config fcfg = { .nqueues = 1 + o.queues, .queue_size = o.queue_size,
	                                   .hiprio_size = o.hiprio_size, .no_event_idx = o.no_event_idx,
	                                   .packed = o.packed, .want_shmem = o.dax,
	                                   .max_window = o.dax_window, .dirty_log = o.dirty_log };
	size_t entries = (size_t)o.queues * o.queue_size + o.hiprio_size;
	size_t rings = entries * 3 * 16 + (size_t)fcfg.nqueues * 3 * 8192; /* the old per-queue bound, summed */
	fcfg.mem_size = o.memory ? o.memory : bridge_memory_needed(&bcfg) + rings;
	/* More readers than a queue has room for would fill the ring: four descriptors per request at most. */
	if (o.threads > o.queues * (o.queue_size / 4)) {
		fprintf(stderr, "vufs-mount: %u threads do not fit %u queue(s) of %u entries\n", o.threads, o.queues,
		        o.queue_size);
		return 2;
	}

	rc = vu_frontend_connect(&fe, o.socket, &fcfg);
	if (rc == 0)
		rc = vu_frontend_start(&fe);
	if (rc < 0) {
		log_err("cannot use the backend at %s: %s", o.socket, strerror(-rc));
		vu_frontend_close(&fe);
		return 1;
	}
	char canonical[PATH_MAX];
	if (!realpath(o.mountpoint, canonical)) {
		log_err("%s: %s", o.mountpoint, strerror(errno));
		vu_frontend_close(&fe);
		return 1;
	}
	/* The mount's source, as /proc/mounts shows it: the device's tag when the backend has one, as in a guest. */
	int fuse_fd = fuse_dev_mount(fe.tag[0] ? fe.tag : o.socket, o.mountpoint, o.options);
	if (fuse_fd < 0) {
		vu_frontend_close(&fe);
		return 1;
	}
	if (!o.foreground && daemon(0, 0) < 0) {
		log_err("cannot go to the background: %s", strerror(errno));
		fuse_dev_unmount(o.mountpoint);
		return 1;
	}
	sigset_t sigs;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL); /* every thread inherits this: only the signalfd sees them */
	signal(SIGPIPE, SIG_IGN);
	int sfd = signalfd(-1, &sigs, SFD_CLOEXEC);

	rc = bridge_new(&fe, fuse_fd, &bcfg, &b);
	if (rc == 0)
		rc = bridge_start(b);
	if (rc < 0) {
		log_err("cannot start: %s", strerror(-rc));
		fuse_dev_unmount(o.mountpoint);
	} else {
		if (run_until_unmounted(b, o.mountpoint, canonical, sfd) == ENDED_STUCK) {
			/* Exiting closes our /dev/fuse fds, which aborts the connection the other copy still uses. */
			log_warn("%s is unmounted here but still mounted in another mount namespace; exiting", o.mountpoint);
			_exit(0);
		}
	}
	bool dead = b && bridge_backend_dead(b);
	bridge_free(b);
	if (!dead)
		vu_frontend_stop(&fe);
	vu_frontend_close(&fe);
	close(fuse_fd);
	close(sfd);
	return rc < 0 ? 1 : 0;
}

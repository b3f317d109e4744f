/* vufsd: options, then file system + FUSE server + vhost-user device, wired together; nothing else. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "daemon/fs_device.h"
#include "daemon/listen.h"
#include "daemon/options.h"
#include "daemon/sandbox.h"
#include "fs/fs.h"

#ifndef VUFS_VERSION
#define VUFS_VERSION "0.1.0"
#endif

/* The connected socket, for the signal handler: shutting it down ends vu_dev_serve's read loop.
 * Written once before signals are installed, read only by the handler. */
static volatile int frontend_sock = -1;

static void on_term(int sig)
{
	(void)sig;
	if (frontend_sock >= 0)
		shutdown(frontend_sock, SHUT_RDWR);
	else
		_exit(0);
}

static void install_signals(void)
{
	struct sigaction sa = { .sa_handler = on_term };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

static void print_capabilities(void)
{
	/* What libvirt reads: a vhost-user "fs" backend that takes QEMU virtiofsd's -o options. */
	printf("{\n  \"type\": \"fs\"\n}\n");
}

/*
 * Every inode the guest holds is an open O_PATH fd here, so the usual limit of 1024 would turn a guest's `find`
 * over a big tree into EMFILE: like virtiofsd, raise the limit to the kernel's per-process ceiling by default
 * (where we may not, to the hard limit). An explicit --rlimit-nofile that cannot be set is an error.
 */
static int set_nofile_limit(uint64_t want)
{
	bool dflt = want == VUFSD_NOFILE_DEFAULT;
	struct rlimit rl;

	if (want == 0)
		return 0;
	if (dflt) {
		FILE *f = fopen("/proc/sys/fs/nr_open", "re");
		unsigned long long v = 0;
		if (!f || fscanf(f, "%llu", &v) != 1 || v == 0)
			v = 1048576; /* the kernel's default nr_open */
		if (f)
			fclose(f);
		want = v;
	}
	rl = (struct rlimit){ want, want };
	if (setrlimit(RLIMIT_NOFILE, &rl) == 0)
		return 0;
	if (!dflt) {
		log_err("cannot set the open-file limit to %llu: %s", (unsigned long long)want, strerror(errno));
		return -1;
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	log_info("open-file limit %llu (cannot raise it to %llu)", (unsigned long long)rl.rlim_cur,
	         (unsigned long long)want);
	return 0;
}

static const char *base_name(const char *path)
{
	const char *slash = strrchr(path, '/');
	return slash ? slash + 1 : path;
}

static int open_parent_dir(const char *path)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(path, '/');
	if (!slash)
		return open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
	snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path) + (slash == path), path);
	return open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
}

static int serve(const struct vufsd_options *o, int lfd, struct fuse_server *srv, struct fs *fs)
{
	struct fs_device fdev;
	struct vu_dev *dev = malloc(sizeof(*dev));
	unsigned nqueues = 1 + o->queues, pool = o->thread_pool_size;
	int rc;

	if (pool > VU_POOL_MAX) {
		log_warn("--thread-pool-size=%u: serving with %u worker threads, the most vufsd runs", pool, VU_POOL_MAX);
		pool = VU_POOL_MAX;
	}
	if (!dev || fs_device_init(&fdev, srv, nqueues, pool) < 0) {
		free(dev);
		return -ENOMEM;
	}
	log_info("waiting for the VMM to connect");
	int sock = accept_frontend(lfd);
	if (sock < 0) {
		rc = sock;
		goto out;
	}
	frontend_sock = sock;
	struct vu_dev_config cfg = { .max_queues = nqueues, .handle = fs_device_handle, .opaque = &fdev,
	                             .pool_threads = pool, .poll_us = o->poll_us, .state_save = fs_device_state_save,
	                             .state_load = fs_device_state_load };
	struct virtio_fs_config vcfg;
	if (o->tag) {
		fs_device_config(o->tag, o->queues, &vcfg);
		cfg.config = (const uint8_t *)&vcfg;
		cfg.config_len = sizeof(vcfg);
	}
	if (o->dax_window) {
		cfg.n_shmem = 1;
		cfg.shmem_sizes[0] = o->dax_window;
	}
	rc = vu_dev_init(dev, sock, &cfg);
	if (rc == 0) {
		struct dev_services svc;
		log_info("VMM connected");
		vu_dev_services(dev, &svc);
		rc = fs_dax_attach(fs, &svc);
		if (rc == 0)
			rc = vu_dev_serve(dev);
		/* Waiting requests hold pending chains of this device and use the file system: end them first. */
		fs_device_cancel_waiting(&fdev);
		fs_dax_detach(fs);
		vu_dev_destroy(dev);
	}
	close(sock);
out:
	fs_device_destroy(&fdev);
	free(dev);
	return rc;
}

int main(int argc, char **argv)
{
	struct vufsd_options o;
	struct fs *fs = NULL;
	struct fuse_server *srv = NULL;
	int rc, lfd;

	if (vufsd_parse_options(argc, argv, &o) < 0) {
		vufsd_free_options(&o);
		return 2;
	}
	if (o.help) {
		vufsd_usage(stdout);
		return 0;
	}
	if (o.version) {
		printf("vufsd %s\n", VUFS_VERSION);
		return 0;
	}
	if (o.print_capabilities) {
		print_capabilities();
		return 0;
	}
	log_init("vufsd", o.log_level, o.syslog);
	umask(0); /* the guest applied its umask to the modes it sends, or leaves it to the fs (--posix-acl) */
	if (set_nofile_limit(o.rlimit_nofile) < 0)
		return 1;

	/* The socket lives outside the shared directory: create it before the sandbox hides the host. */
	lfd = o.fd >= 0 ? listen_on_fd(o.fd) : listen_on_path(o.socket_path, o.socket_group);
	if (lfd < 0)
		return 1;
	/* After chroot the socket's path means nothing: keep its directory to remove it at exit. In a namespace
	 * sandbox the parent, which stays outside, removes it. */
	int sock_dir = -1;
	if (o.socket_path && o.sandbox != SANDBOX_NAMESPACE)
		sock_dir = open_parent_dir(o.socket_path);
	if (sandbox_enter(&o) < 0) {
		if (o.socket_path)
			unlink(o.socket_path); /* nobody will serve it */
		return 1;
	}
	struct fs_config fcfg = { .source = o.shared_dir, .xattr = o.xattr, .posix_acl = o.posix_acl, .xattrmap = o.xattrmap,
	                          .allow_direct_io = o.allow_direct_io, .preserve_noatime = o.preserve_noatime,
	                          .posix_lock = o.posix_lock, .flock = o.flock, .dax_files = o.dax_files,
	                          .dax_coherence = o.dax_coherence, .cache = o.cache,
	                          .readonly = o.readonly, .migration_mode = o.migration_mode,
	                          .migration_on_error = o.migration_on_error,
	                          .migration_verify_handles = o.migration_verify_handles,
	                          .inode_file_handles = o.inode_file_handles,
	                          .uid_map = &o.uid_map, .gid_map = &o.gid_map };
	rc = fs_new(&fcfg, &fs);
	if (rc < 0) {
		log_err("cannot share %s: %s", o.shared_dir, strerror(-rc));
		return 1;
	}
	/* After the sandbox: whether handles can be opened depends on the capabilities kept. */
	if (sandbox_confine(&o) < 0 || fs_inode_handles_start(fs) < 0) {
		fs_free(fs);
		return 1;
	}
	struct fuse_server_opts sopts = { .writeback = o.writeback, .readdirplus = o.readdirplus,
	                                  .posix_lock = o.posix_lock, .flock = o.flock, .killpriv_v2 = o.killpriv_v2,
	                                  .allow_mmap = o.allow_mmap, .posix_acl = o.posix_acl,
	                                  .request_timeout = o.request_timeout,
	                                  .security_label = o.security_label,
	                                  .posix_acl_required = o.posix_acl && !o.posix_acl_auto,
	                                  .security_label_required = o.security_label && !o.security_label_auto,
	                                  .announce_submounts = o.announce_submounts };
	rc = fuse_server_new(fs_ops_of(fs), fs, &sopts, &srv);
	if (rc < 0) {
		fs_free(fs);
		return 1;
	}
	install_signals();
	rc = serve(&o, lfd, srv, fs);
	close(lfd);
	if (sock_dir >= 0) {
		unlinkat(sock_dir, base_name(o.socket_path), 0);
		close(sock_dir);
	}
	fuse_server_free(srv);
	fs_free(fs);
	log_info("exiting%s", rc < 0 ? " after an error" : "");
	vufsd_free_options(&o);
	return rc < 0 ? 1 : 0;
}

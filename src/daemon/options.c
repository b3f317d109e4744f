#include "daemon/options.h"

#include "common/util.h"
#include "daemon/caps.h"
#include "fs/xattrmap.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum {
	OPT_SOCKET_PATH = 256, OPT_SOCKET_GROUP, OPT_FD, OPT_SHARED_DIR, OPT_CACHE, OPT_WRITEBACK, OPT_NO_WRITEBACK,
	OPT_NO_READDIRPLUS, OPT_XATTR, OPT_NO_XATTR, OPT_POSIX_ACL, OPT_THREAD_POOL, OPT_LOG_LEVEL, OPT_SYSLOG,
	OPT_PRINT_CAPS, OPT_RLIMIT_NOFILE, OPT_SANDBOX, OPT_SECCOMP, OPT_ALLOW_DIRECT_IO, OPT_KILLPRIV_V2,
	OPT_NO_KILLPRIV_V2, OPT_MODCAPS, OPT_QUEUES, OPT_POLL_US, OPT_NO_FLOCK, OPT_NO_POSIX_LOCK, OPT_FLOCK, OPT_POSIX_LOCK,
	OPT_SOCKET, OPT_NO_ANNOUNCE_SUBMOUNTS, OPT_TAG, OPT_ANNOUNCE_SUBMOUNTS, OPT_XATTRMAP, OPT_SECURITY_LABEL, OPT_DAX_WINDOW, OPT_DAX_FILES,
	OPT_DAX_COHERENCE, OPT_READONLY, OPT_INODE_FILE_HANDLES, OPT_ALLOW_MMAP, OPT_REQUEST_TIMEOUT,
	OPT_MIGRATION_MODE, OPT_MIGRATION_ON_ERROR, OPT_MIGRATION_VERIFY_HANDLES, OPT_MIGRATION_CONFIRM_PATHS,
	OPT_TRANSLATE_UID, OPT_TRANSLATE_GID, OPT_UID_MAP, OPT_GID_MAP, OPT_PRESERVE_NOATIME,
};

static const struct option long_opts[] = {
	{ "socket-path", required_argument, NULL, OPT_SOCKET_PATH },
	{ "socket", required_argument, NULL, OPT_SOCKET }, /* virtiofsd's deprecated spelling */
	{ "socket-group", required_argument, NULL, OPT_SOCKET_GROUP },
	{ "fd", required_argument, NULL, OPT_FD },
	{ "shared-dir", required_argument, NULL, OPT_SHARED_DIR },
	{ "cache", required_argument, NULL, OPT_CACHE },
	{ "writeback", no_argument, NULL, OPT_WRITEBACK },
	{ "no-writeback", no_argument, NULL, OPT_NO_WRITEBACK },
	{ "no-readdirplus", no_argument, NULL, OPT_NO_READDIRPLUS },
	{ "xattr", no_argument, NULL, OPT_XATTR },
	{ "no-xattr", no_argument, NULL, OPT_NO_XATTR },
	{ "posix-acl", optional_argument, NULL, OPT_POSIX_ACL },
	{ "thread-pool-size", required_argument, NULL, OPT_THREAD_POOL },
	{ "log-level", required_argument, NULL, OPT_LOG_LEVEL },
	{ "syslog", no_argument, NULL, OPT_SYSLOG },
	{ "print-capabilities", no_argument, NULL, OPT_PRINT_CAPS },
	{ "rlimit-nofile", required_argument, NULL, OPT_RLIMIT_NOFILE },
	{ "sandbox", required_argument, NULL, OPT_SANDBOX },
	{ "seccomp", required_argument, NULL, OPT_SECCOMP },
	{ "allow-direct-io", no_argument, NULL, OPT_ALLOW_DIRECT_IO },
	{ "killpriv-v2", no_argument, NULL, OPT_KILLPRIV_V2 },
	{ "no-killpriv-v2", no_argument, NULL, OPT_NO_KILLPRIV_V2 },
	{ "modcaps", required_argument, NULL, OPT_MODCAPS },
	{ "queues", required_argument, NULL, OPT_QUEUES },
	{ "poll-us", required_argument, NULL, OPT_POLL_US },
	{ "no-flock", no_argument, NULL, OPT_NO_FLOCK },
	{ "flock", no_argument, NULL, OPT_FLOCK },
	{ "posix-lock", no_argument, NULL, OPT_POSIX_LOCK },
	{ "no-posix-lock", no_argument, NULL, OPT_NO_POSIX_LOCK },
	{ "tag", required_argument, NULL, OPT_TAG },
	{ "announce-submounts", no_argument, NULL, OPT_ANNOUNCE_SUBMOUNTS },
	{ "no-announce-submounts", no_argument, NULL, OPT_NO_ANNOUNCE_SUBMOUNTS },
	{ "dax-window", required_argument, NULL, OPT_DAX_WINDOW },
	{ "dax-files", required_argument, NULL, OPT_DAX_FILES },
	{ "dax-coherence", required_argument, NULL, OPT_DAX_COHERENCE },
	{ "readonly", no_argument, NULL, OPT_READONLY },
	{ "allow-mmap", no_argument, NULL, OPT_ALLOW_MMAP },
	{ "request-timeout", required_argument, NULL, OPT_REQUEST_TIMEOUT },
	{ "inode-file-handles", optional_argument, NULL, OPT_INODE_FILE_HANDLES },
	{ "xattrmap", required_argument, NULL, OPT_XATTRMAP },
	{ "security-label", optional_argument, NULL, OPT_SECURITY_LABEL },
	{ "preserve-noatime", no_argument, NULL, OPT_PRESERVE_NOATIME },
	{ "migration-mode", required_argument, NULL, OPT_MIGRATION_MODE },
	{ "migration-on-error", required_argument, NULL, OPT_MIGRATION_ON_ERROR },
	{ "migration-verify-handles", no_argument, NULL, OPT_MIGRATION_VERIFY_HANDLES },
	{ "migration-confirm-paths", no_argument, NULL, OPT_MIGRATION_CONFIRM_PATHS },
	{ "translate-uid", required_argument, NULL, OPT_TRANSLATE_UID },
	{ "translate-gid", required_argument, NULL, OPT_TRANSLATE_GID },
	{ "uid-map", required_argument, NULL, OPT_UID_MAP },
	{ "gid-map", required_argument, NULL, OPT_GID_MAP },
	{ "version", no_argument, NULL, 'V' },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

void vufsd_usage(FILE *out)
{
	fputs("Usage: vufsd [OPTIONS]\n"
	      "vhost-user-fs backend: serves one host directory to one virtual machine.\n\n"
	      "  --socket-path=PATH        listen on this vhost-user UNIX socket\n"
	      "  --socket-group=GROUP      give the socket to this group\n"
	      "  --fd=N                    use the inherited listening socket N (as libvirt passes it)\n"
	      "  --shared-dir=DIR          the directory to share (also -o source=DIR)\n"
	      "  --cache=never|auto|always|metadata  metadata and data caching in the guest (none = never;\n"
	      "                            metadata: metadata for a day, no file data; default auto)\n"
	      "  --writeback               let the guest cache writes (FUSE writeback cache)\n"
	      "  --no-readdirplus          do not return attributes with directory listings\n"
	      "  --xattr / --no-xattr      serve extended attributes (default off)\n"
	      "  --posix-acl[=never|auto|always]  POSIX ACLs: the guest enforces the ACLs stored on the host, and\n"
	      "                            default ACLs replace its umask at creation (implies --xattr; default never;\n"
	      "                            alone: always, a guest without ACL support fails to mount; auto: it\n"
	      "                            mounts without ACLs)\n"
	      "  --xattrmap=RULES          rename, pass, deny or hide xattr names between guest and host, with\n"
	      "                            virtiofsd's rules (e.g. :map::user.virtiofs.:; implies --xattr)\n"
	      "  --security-label[=never|auto|always]  store the security context (SELinux label) the guest gives\n"
	      "                            each new file, under its name or the one --xattrmap gives it (implies\n"
	      "                            --xattr; alone: always, a guest that sends none fails to mount; auto: it\n"
	      "                            mounts without labels)\n"
	      "  --posix-lock, --flock     serve POSIX / flock() locks on the host (default off: the guest\n"
	      "                            kernel keeps them itself, visible inside the guest only)\n"
	      "  --allow-direct-io         honour the guest's O_DIRECT\n"
	      "  --killpriv-v2             let the daemon clear setuid/setgid bits on write (FUSE_HANDLE_KILLPRIV_V2)\n"
	      "  --[no-]announce-submounts  tell the guest which directories are mount points on the host, so it\n"
	      "                            gives them their own st_dev (default on, as virtiofsd 1.14)\n"
	      "  --thread-pool-size=N      serve the request queues' requests on N worker threads (at most 64), so\n"
	      "                            one queue's requests run in parallel (default 0: on the queue's thread)\n"
	      "  --readonly                share read-only: every change fails with EROFS\n"
	      "  --allow-mmap              let the guest mmap files shared that it opened for direct I/O (cache=never;\n"
	      "                            FUSE_DIRECT_IO_ALLOW_MMAP, guests from Linux 6.6)\n"
	      "  --inode-file-handles=never|prefer|mandatory  how an inode the guest holds is kept: an O_PATH fd\n"
	      "                            (never, default), or a file handle opened again when needed (prefer: fd\n"
	      "                            where the file system makes no handles, or everywhere when the daemon may\n"
	      "                            not open them; mandatory: refuse to start, or fail the lookup, instead)\n"
	      "  --queues=N                request queues offered to the VMM (default 1, at most 16)\n"
	      "  --poll-us=N               poll a queue up to N microseconds before sleeping, adaptively\n"
	      "                            (default 50; 0: never)\n"
	      "  --tag=NAME                the device's tag in its config space (VHOST_USER_PROTOCOL_F_CONFIG), for VMMs\n"
	      "                            that ask the backend (QEMU's generic vhost-user device)\n"
	      "  --dax-window=SIZE         offer a DAX window of SIZE bytes (K, M, G; a multiple of 2M, at most 64G;\n"
	      "                            default 0: none) to a VMM that takes its size from the backend (QEMU 11.1's\n"
	      "                            vhost-user-test-device-pci); the guest mounts with -o dax=always|inode\n"
	      "  --dax-files=page|all|none which files a dax=inode guest maps (default page: sizes that are a\n"
	      "                            multiple of 4 KiB)\n"
	      "  --request-timeout=SECS    let a guest of Linux 6.15 or later (FUSE 7.43) abort its mount when a request\n"
	      "                            is not answered in SECS seconds, e.g. because vufsd died (not with host locks)\n"
	      "  --dax-coherence=guarded|shared  guarded (default): a lease guards each mapped file, and a host\n"
	      "                            process opening it for writing or truncating it turns the guest's\n"
	      "                            mappings of it into copies; shared: no lease, host writes are seen at\n"
	      "                            once, and a host truncation of a mapped file kills QEMU\n"
	      "  --migration-mode=find-paths|file-handles  how the guest's files are found again on a live\n"
	      "                            migration's destination (default find-paths; file-handles: same file\n"
	      "                            system, CAP_DAC_READ_SEARCH, also unlinked open files)\n"
	      "  --migration-on-error=abort|guest-error  a file that cannot be migrated fails the migration\n"
	      "                            (default abort: the source runs on) or answers errors on that file only\n"
	      "  --migration-verify-handles  find-paths: also check each file's handle (same file system)\n"
	      "  --migration-confirm-paths accepted: vufsd always finds and checks paths at the switch-over\n"
	      "  --translate-uid=RULE, --translate-gid=RULE  translate ids between guest and host; RULE is\n"
	      "                            map:GUEST:HOST:COUNT, guest:GUEST:HOST:COUNT, host:HOST:GUEST:COUNT,\n"
	      "                            squash-guest:GUEST:HOST:COUNT, squash-host:HOST:GUEST:COUNT or\n"
	      "                            forbid-guest:GUEST:COUNT (repeatable; unnamed ids pass unchanged)\n"
	      "  --uid-map=:NS_UID:HOST_UID:COUNT:, --gid-map=:NS_GID:HOST_GID:COUNT:  not root, namespace\n"
	      "                            sandbox: map COUNT host ids from HOST_UID into vufsd's user namespace\n"
	      "                            from NS_UID (repeatable; beyond your own id through newuidmap/newgidmap\n"
	      "                            and /etc/subuid, /etc/subgid; default: your own ids only)\n"
	      "  --preserve-noatime        keep the guest's O_NOATIME when opening host files (default: dropped, as\n"
	      "                            virtiofsd, since it needs ownership or CAP_FOWNER on the host)\n"
	      "  --sandbox=namespace|chroot|none  confinement (default namespace: mount, pid and net namespaces\n"
	      "                            and pivot_root into the shared directory; not root: in a user namespace)\n"
	      "  --seccomp=kill|log|trap|none  system call allowlist; what happens to others (default kill)\n"
	      "  --modcaps=+cap,-cap       adjust the capabilities kept\n"
	      "  --rlimit-nofile=N         set the open-file limit to N (default fs.nr_open; 0: leave it)\n"
	      "  --log-level=LEVEL         error, warn, info (default) or debug\n"
	      "  --syslog                  log to syslog instead of stderr\n"
	      "  --print-capabilities      print the JSON capabilities libvirt reads, then exit\n"
	      "  -o OPT[,OPT...]           QEMU virtiofsd style: source=DIR, cache=, xattr, no_xattr, flock,\n"
	      "                            no_flock, posix_lock, no_posix_lock, writeback, no_writeback,\n"
	      "                            readdirplus, no_readdirplus, announce_submounts,\n"
	      "                            no_announce_submounts, log_level=LEVEL,\n"
	      "                            rlimit_nofile=N, dax_window=SIZE, dax_files=POLICY,\n"
	      "                            dax_coherence=MODE, request_timeout=SECS, readonly,\n"
	      "                            thread_pool_size=N, modcaps=+cap:-cap, sandbox=MODE, posix_acl,\n"
	      "                            no_posix_acl, xattrmap=RULES, security_label, no_security_label\n"
	      "  -V, --version             print the version\n"
	      "  -h, --help                this help\n",
	      out);
}

static int parse_cache(const char *s, enum fs_cache_mode *out)
{
	if (!strcmp(s, "never") || !strcmp(s, "none"))
		*out = FS_CACHE_NEVER;
	else if (!strcmp(s, "auto"))
		*out = FS_CACHE_AUTO;
	else if (!strcmp(s, "always"))
		*out = FS_CACHE_ALWAYS;
	else if (!strcmp(s, "metadata"))
		*out = FS_CACHE_METADATA;
	else
		return -1;
	return 0;
}

static int parse_sandbox(const char *s, enum sandbox_mode *out)
{
	if (!strcmp(s, "namespace"))
		*out = SANDBOX_NAMESPACE;
	else if (!strcmp(s, "chroot"))
		*out = SANDBOX_CHROOT;
	else if (!strcmp(s, "none"))
		*out = SANDBOX_NONE;
	else
		return -1;
	return 0;
}

static int bad(const char *what, const char *value)
{
	fprintf(stderr, "vufsd: invalid %s '%s'\n", what, value);
	return -1;
}

/* virtiofsd 1.14's never|auto|always of --posix-acl and --security-label; the option alone is always (a guest that
 * cannot fails INIT), auto serves such a guest without the feature. */
static int parse_when(const char *arg, const char *what, bool *on, bool *only_if_guest_can)
{
	if (!arg || !strcmp(arg, "always"))
		*on = true, *only_if_guest_can = false;
	else if (!strcmp(arg, "auto"))
		*on = true, *only_if_guest_can = true;
	else if (!strcmp(arg, "never"))
		*on = false, *only_if_guest_can = false;
	else
		return bad(what, arg);
	return 0;
}

/* virtiofsd's worker pool size: 0 and 1 serve on the queue's thread (main.c serves more than VU_POOL_MAX with
 * VU_POOL_MAX threads, and says so). */
static int parse_thread_pool(const char *s, unsigned *out)
{
	uint64_t v;
	if (parse_u64(s, 1024, &v))
		return bad("thread pool size", s);
	*out = (unsigned)v;
	return 0;
}

/* A size with an optional K, M or G suffix (powers of 1024). */
static int parse_size(const char *s, uint64_t max, uint64_t *out)
{
	char num[32];
	size_t n = strlen(s);
	unsigned shift = 0;

	if (n == 0 || n >= sizeof(num))
		return -1;
	memcpy(num, s, n + 1);
	switch (num[n - 1]) {
	case 'k': case 'K': shift = 10; break;
	case 'm': case 'M': shift = 20; break;
	case 'g': case 'G': shift = 30; break;
	default: break;
	}
	if (shift)
		num[n - 1] = '\0';
	if (parse_u64(num, max >> shift, out))
		return -1;
	*out <<= shift;
	return 0;
}

static int parse_dax_window(const char *s, uint64_t *out)
{
	if (parse_size(s, VUFSD_DAX_WINDOW_MAX, out) || *out % FS_DAX_RANGE)
		return bad("DAX window size (a multiple of 2M, at most 64G)", s);
	return 0;
}

static int parse_request_timeout(const char *s, uint16_t *out)
{
	uint64_t v;
	if (parse_u64(s, UINT16_MAX, &v) || v == 0)
		return bad("request timeout (1-65535 seconds)", s);
	*out = (uint16_t)v;
	return 0;
}

static int parse_dax_coherence(const char *s, enum fs_dax_coherence *out)
{
	if (!strcmp(s, "guarded"))
		*out = FS_DAX_GUARDED;
	else if (!strcmp(s, "shared"))
		*out = FS_DAX_SHARED;
	else
		return bad("DAX coherence (guarded, shared)", s);
	return 0;
}

static int parse_dax_files(const char *s, enum fs_dax_files *out)
{
	if (!strcmp(s, "page"))
		*out = FS_DAX_FILES_PAGE;
	else if (!strcmp(s, "all"))
		*out = FS_DAX_FILES_ALL;
	else if (!strcmp(s, "none"))
		*out = FS_DAX_FILES_NONE;
	else
		return bad("DAX file policy (page, all, none)", s);
	return 0;
}

/* One -o item: "key" or "key=value". */
static int parse_o_item(char *item, struct vufsd_options *o)
{
	char *val = strchr(item, '=');
	if (val)
		*val++ = '\0';
	static const struct { const char *name; size_t off; bool value; } flags[] = {
		{ "xattr", offsetof(struct vufsd_options, xattr), true },
		{ "no_xattr", offsetof(struct vufsd_options, xattr), false },
		{ "flock", offsetof(struct vufsd_options, flock), true },
		{ "no_flock", offsetof(struct vufsd_options, flock), false },
		{ "posix_lock", offsetof(struct vufsd_options, posix_lock), true },
		{ "no_posix_lock", offsetof(struct vufsd_options, posix_lock), false },
		{ "writeback", offsetof(struct vufsd_options, writeback), true },
		{ "no_writeback", offsetof(struct vufsd_options, writeback), false },
		{ "readdirplus", offsetof(struct vufsd_options, readdirplus), true },
		{ "no_readdirplus", offsetof(struct vufsd_options, readdirplus), false },
		{ "allow_direct_io", offsetof(struct vufsd_options, allow_direct_io), true },
		{ "no_allow_direct_io", offsetof(struct vufsd_options, allow_direct_io), false },
		{ "killpriv_v2", offsetof(struct vufsd_options, killpriv_v2), true },
		{ "allow_mmap", offsetof(struct vufsd_options, allow_mmap), true },
		{ "no_killpriv_v2", offsetof(struct vufsd_options, killpriv_v2), false },
		{ "announce_submounts", offsetof(struct vufsd_options, announce_submounts), true },
		{ "no_announce_submounts", offsetof(struct vufsd_options, announce_submounts), false },
		{ "readonly", offsetof(struct vufsd_options, readonly), true },
		{ "posix_acl", offsetof(struct vufsd_options, posix_acl), true },
		{ "no_posix_acl", offsetof(struct vufsd_options, posix_acl), false },
		{ "security_label", offsetof(struct vufsd_options, security_label), true },
		{ "no_security_label", offsetof(struct vufsd_options, security_label), false },
	};
	if (!val && (!strcmp(item, "xattr") || !strcmp(item, "no_xattr")))
		o->no_xattr = item[0] == 'n'; /* what implies xattr is refused after an explicit no */
	for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++) {
		if (!val && !strcmp(item, flags[i].name)) {
			*(bool *)((char *)o + flags[i].off) = flags[i].value;
			return 0;
		}
	}
	if (val && !strcmp(item, "source")) {
		o->shared_dir = val;
		return 0;
	}
	if (val && !strcmp(item, "xattrmap")) {
		o->xattrmap_rules = val;
		return 0;
	}
	if (val && !strcmp(item, "cache"))
		return parse_cache(val, &o->cache) ? bad("cache mode", val) : 0;
	if (val && !strcmp(item, "log_level"))
		return log_parse_level(val, &o->log_level) ? bad("log level", val) : 0;
	if (val && !strcmp(item, "rlimit_nofile"))
		return parse_u64(val, UINT32_MAX, &o->rlimit_nofile) ? bad("rlimit_nofile", val) : 0;
	if (val && !strcmp(item, "dax_window"))
		return parse_dax_window(val, &o->dax_window);
	if (val && !strcmp(item, "dax_files"))
		return parse_dax_files(val, &o->dax_files);
	if (val && !strcmp(item, "dax_coherence"))
		return parse_dax_coherence(val, &o->dax_coherence);
	if (val && !strcmp(item, "thread_pool_size"))
		return parse_thread_pool(val, &o->thread_pool_size);
	if (val && !strcmp(item, "request_timeout"))
		return parse_request_timeout(val, &o->request_timeout);
	if (val && !strcmp(item, "modcaps")) {
		/* QEMU virtiofsd's -o modcaps separates with ':' (',' separates -o items) */
		for (char *c = val; *c; c++)
			if (*c == ':')
				*c = ',';
		o->modcaps = val;
		return 0;
	}
	if (val && !strcmp(item, "sandbox"))
		return parse_sandbox(val, &o->sandbox) ? bad("sandbox mode", val) : 0;
	fprintf(stderr, "vufsd: -o %s%s%s is not supported\n", item, val ? "=" : "", val ? val : "");
	return -1;
}

/* Works on a copy (kept for the options' lifetime: source= points into it) so ps still shows the command line. */
static int parse_o(const char *arg, struct vufsd_options *o)
{
	char *list, *save = NULL;
	if (o->nowned == sizeof(o->owned) / sizeof(o->owned[0]) || !(list = strdup(arg))) {
		fprintf(stderr, "vufsd: too many -o options\n");
		return -1;
	}
	o->owned[o->nowned++] = list;
	for (char *item = strtok_r(list, ",", &save); item; item = strtok_r(NULL, ",", &save))
		if (parse_o_item(item, o) < 0)
			return -1;
	return 0;
}

static int parse_one(int c, char *arg, struct vufsd_options *o, const char *optname)
{
	uint64_t v;
	switch (c) {
	case OPT_SOCKET_PATH:
	case OPT_SOCKET: o->socket_path = arg; return 0;
	case OPT_SOCKET_GROUP: o->socket_group = arg; return 0;
	case OPT_FD:
		if (parse_u64(arg, INT32_MAX, &v))
			return bad("fd", arg);
		o->fd = (int)v;
		return 0;
	case OPT_SHARED_DIR: o->shared_dir = arg; return 0;
	case OPT_CACHE: return parse_cache(arg, &o->cache) ? bad("cache mode", arg) : 0;
	case OPT_WRITEBACK: o->writeback = true; return 0;
	case OPT_NO_WRITEBACK: o->writeback = false; return 0;
	case OPT_NO_READDIRPLUS: o->readdirplus = false; return 0;
	case OPT_XATTR: o->xattr = true; o->no_xattr = false; return 0;
	case OPT_NO_XATTR: o->xattr = false; o->no_xattr = true; return 0;
	case OPT_XATTRMAP: o->xattrmap_rules = arg; return 0;
	case OPT_SECURITY_LABEL: return parse_when(arg, "security label mode", &o->security_label, &o->security_label_auto);
	case OPT_NO_FLOCK: o->flock = false; return 0;
	case OPT_FLOCK: o->flock = true; return 0;
	case OPT_POSIX_LOCK: o->posix_lock = true; return 0;
	case OPT_NO_POSIX_LOCK: o->posix_lock = false; return 0;
	case OPT_ALLOW_DIRECT_IO: o->allow_direct_io = true; return 0;
	case OPT_KILLPRIV_V2: o->killpriv_v2 = true; return 0;
	case OPT_ALLOW_MMAP: o->allow_mmap = true; return 0;
	case OPT_REQUEST_TIMEOUT: return parse_request_timeout(arg, &o->request_timeout);
	case OPT_NO_KILLPRIV_V2: o->killpriv_v2 = false; return 0;
	case OPT_ANNOUNCE_SUBMOUNTS: o->announce_submounts = true; return 0;
	case OPT_NO_ANNOUNCE_SUBMOUNTS: o->announce_submounts = false; return 0;
	case OPT_POSIX_ACL: return parse_when(arg, "POSIX ACL mode", &o->posix_acl, &o->posix_acl_auto);
	case OPT_THREAD_POOL: return parse_thread_pool(arg, &o->thread_pool_size);
	case OPT_MIGRATION_MODE:
		if (!strcmp(arg, "find-paths"))
			o->migration_mode = FS_MIGRATE_FIND_PATHS;
		else if (!strcmp(arg, "file-handles"))
			o->migration_mode = FS_MIGRATE_FILE_HANDLES;
		else
			return bad("migration mode", arg);
		return 0;
	case OPT_MIGRATION_ON_ERROR:
		if (!strcmp(arg, "abort"))
			o->migration_on_error = FS_MIGRATE_ABORT;
		else if (!strcmp(arg, "guest-error"))
			o->migration_on_error = FS_MIGRATE_GUEST_ERROR;
		else
			return bad("migration error mode", arg);
		return 0;
	case OPT_TRANSLATE_UID:
	case OPT_TRANSLATE_GID: {
		int rc = fs_idmap_add(c == OPT_TRANSLATE_UID ? &o->uid_map : &o->gid_map, arg);
		if (rc == -EEXIST)
			fprintf(stderr, "vufsd: --%s=%s overlaps an earlier rule of the same direction\n", optname, arg);
		return rc ? (rc == -EEXIST ? -1 : bad(optname, arg)) : 0;
	}
	case OPT_UID_MAP:
	case OPT_GID_MAP: {
		char err[160];
		if (userns_map_add(c == OPT_UID_MAP ? &o->ns_uid_map : &o->ns_gid_map, arg, err, sizeof(err)) == 0)
			return 0;
		fprintf(stderr, "vufsd: --%s '%s': %s\n", optname, arg, err);
		return -1;
	}
	case OPT_PRESERVE_NOATIME: o->preserve_noatime = true; return 0;
	case OPT_MIGRATION_VERIFY_HANDLES: o->migration_verify_handles = true; return 0;
	case OPT_MIGRATION_CONFIRM_PATHS: return 0; /* always so: paths are found and checked at switch-over */
	case OPT_READONLY: o->readonly = true; return 0;
	case OPT_INODE_FILE_HANDLES:
		if (!arg || !strcmp(arg, "never"))
			o->inode_file_handles = FS_HANDLES_NEVER;
		else if (!strcmp(arg, "prefer"))
			o->inode_file_handles = FS_HANDLES_PREFER;
		else if (!strcmp(arg, "mandatory"))
			o->inode_file_handles = FS_HANDLES_MANDATORY;
		else
			return bad("inode-file-handles mode (never, prefer, mandatory)", arg);
		return 0;
	case OPT_LOG_LEVEL: return log_parse_level(arg, &o->log_level) ? bad("log level", arg) : 0;
	case OPT_SYSLOG: o->syslog = true; return 0;
	case OPT_PRINT_CAPS: o->print_capabilities = true; return 0;
	case OPT_RLIMIT_NOFILE:
		return parse_u64(arg, UINT32_MAX, &o->rlimit_nofile) ? bad("rlimit-nofile", arg) : 0;
	case OPT_SANDBOX: return parse_sandbox(arg, &o->sandbox) ? bad("sandbox mode", arg) : 0;
	case OPT_SECCOMP: return seccomp_parse_mode(arg, &o->seccomp) ? bad("seccomp mode", arg) : 0;
	case OPT_MODCAPS: o->modcaps = arg; return 0;
	case OPT_TAG:
		if (!*arg || strlen(arg) > VUFSD_TAG_MAX)
			return bad("tag (1 to 36 bytes)", arg);
		o->tag = arg;
		return 0;
	case OPT_DAX_WINDOW: return parse_dax_window(arg, &o->dax_window);
	case OPT_DAX_FILES: return parse_dax_files(arg, &o->dax_files);
	case OPT_DAX_COHERENCE: return parse_dax_coherence(arg, &o->dax_coherence);
	case OPT_QUEUES:
		if (parse_u64(arg, 16, &v) || v == 0)
			return bad("queue count (1-16)", arg);
		o->queues = (unsigned)v;
		return 0;
	case OPT_POLL_US:
		if (parse_u64(arg, 1000000, &v))
			return bad("poll time", arg);
		o->poll_us = (unsigned)v;
		return 0;
	case 'o': return parse_o(arg, o);
	case 'V': o->version = true; return 0;
	case 'h': o->help = true; return 0;
	case 'f': return 0; /* QEMU virtiofsd's foreground flag: we always run in the foreground */
	case 'd': o->log_level = LOG_LVL_DEBUG; return 0; /* QEMU virtiofsd's debug flag (libvirt passes it) */
	default:
		return -1;
	}
}

/*
 * ACLs, mapped names and security labels are extended attributes: as in virtiofsd, each implies --xattr. An
 * explicit --no-xattr with one of them is a contradiction vufsd refuses rather than resolves (virtiofsd lets the
 * implication win). The rules are parsed here, so that a mistake stops vufsd before it serves anything.
 */
static int check_xattr_options(struct vufsd_options *o)
{
	const char *needs = o->posix_acl ? "--posix-acl" : o->xattrmap_rules ? "--xattrmap" :
	                    o->security_label ? "--security-label" : NULL;
	char err[160];
	int ret;

	if (needs && o->no_xattr) {
		fprintf(stderr, "vufsd: %s needs extended attributes: drop --no-xattr (-o no_xattr)\n", needs);
		return -1;
	}
	if (needs)
		o->xattr = true;
	if (!o->xattrmap_rules)
		return 0;
	ret = xattrmap_parse(o->xattrmap_rules, &o->xattrmap, err, sizeof(err));
	if (ret < 0) {
		fprintf(stderr, "vufsd: --xattrmap: %s\n", ret == -EINVAL ? err : strerror(-ret));
		return -1;
	}
	return 0;
}

/*
 * The user namespace is how a vufsd that is not root gets its namespace sandbox (daemon/userns.h): as in
 * virtiofsd, its maps mean nothing to root, which needs no namespace to own every id (--translate-uid/gid
 * translates ids), nor without the namespace sandbox.
 */
static int check_userns_options(const struct vufsd_options *o)
{
	if (!o->ns_uid_map.n && !o->ns_gid_map.n)
		return 0;
	if (o->sandbox != SANDBOX_NAMESPACE) {
		fprintf(stderr, "vufsd: --uid-map and --gid-map need --sandbox=namespace (the user namespace they map is "
		        "part of it)\n");
		return -1;
	}
	if (geteuid() == 0) {
		fprintf(stderr, "vufsd: --uid-map and --gid-map are for an unprivileged vufsd (as in virtiofsd): root "
		        "serves every id without a user namespace; use --translate-uid/--translate-gid to translate "
		        "ids\n");
		return -1;
	}
	/* Root of the namespace switches to the guest's ids after dropping its supplementary groups, which a gid
	 * map of one's own gid forbids (setgroups denied); virtiofsd would start and then fail every creation. */
	if (userns_map_has_inside(&o->ns_uid_map, 0) && userns_map_only_own(&o->ns_gid_map, (uint32_t)getegid())) {
		fprintf(stderr, "vufsd: --uid-map maps uid 0, so vufsd takes the guest's ids and must drop its "
		        "supplementary groups, which a gid map of only your own gid forbids: give --gid-map a range "
		        "from /etc/subgid\n");
		return -1;
	}
	return 0;
}

int vufsd_parse_options(int argc, char **argv, struct vufsd_options *o)
{
	*o = (struct vufsd_options){
		.fd = -1, .cache = FS_CACHE_AUTO, .readdirplus = true, .posix_lock = false, .flock = false,
		.log_level = LOG_LVL_INFO, .sandbox = SANDBOX_NAMESPACE, .seccomp = SECCOMP_KILL, .queues = 1, .poll_us = 50,
		.rlimit_nofile = VUFSD_NOFILE_DEFAULT, .announce_submounts = true,
	};
	int c, idx = -1;
	while ((c = getopt_long(argc, argv, "o:Vhfd", long_opts, &idx)) != -1) {
		const char *name = idx >= 0 ? long_opts[idx].name : "";
		if (c == '?' || parse_one(c, optarg, o, name) < 0) {
			if (c == '?')
				vufsd_usage(stderr);
			return -1;
		}
		idx = -1;
	}
	if (optind < argc) {
		fprintf(stderr, "vufsd: unexpected argument '%s'\n", argv[optind]);
		return -1;
	}
	if (o->help || o->version || o->print_capabilities)
		return 0;
	if (!o->shared_dir) {
		fprintf(stderr, "vufsd: no shared directory: give --shared-dir=DIR or -o source=DIR\n");
		return -1;
	}
	if (!o->socket_path && o->fd < 0) {
		fprintf(stderr, "vufsd: give --socket-path=PATH or --fd=N\n");
		return -1;
	}
	if (caps_check_modcaps(o->modcaps) < 0 || check_xattr_options(o) < 0 || check_userns_options(o) < 0)
		return -1;
	if (o->writeback && (o->cache == FS_CACHE_NEVER || o->cache == FS_CACHE_METADATA)) {
		/* The guest would cache writes of files it opens for direct I/O: mtime and size go stale. */
		fprintf(stderr, "vufsd: --writeback needs --cache=auto or --cache=always\n");
		return -1;
	}
	if (o->socket_path && o->fd >= 0) {
		fprintf(stderr, "vufsd: --socket-path and --fd exclude each other\n");
		return -1;
	}
	if (o->request_timeout && (o->posix_lock || o->flock)) {
		/* A lock wait outlasting the timeout would make the guest abort the whole mount. */
		fprintf(stderr, "vufsd: --request-timeout cannot go with --posix-lock or --flock: a guest waiting for a "
		        "lock longer than the timeout would abort its mount\n");
		return -1;
	}
	return 0;
}

void vufsd_free_options(struct vufsd_options *o)
{
	xattrmap_free(o->xattrmap);
	o->xattrmap = NULL;
	for (unsigned i = 0; i < o->nowned; i++)
		free(o->owned[i]);
	o->nowned = 0;
}

/*
 * libFuzzer harness: the migration state a VMM hands a destination (fuse_server_state_load -> fs_state_load),
 * loaded into a fresh server and file system on a scratch share.
 *
 * Set-up (once): /tmp/vufs-fuzz-state.PID/ holds share/ (files a, b, directory d with d/c, a symlink l -> a, a
 * symlink up -> .. and a FIFO p) and, beside it, outside (a file the share must never reach). Each input: byte 0
 * picks the file system's migration mode (bit 0: file handles) and on-error rule (bit 1: guest-error); the rest is
 * the state. Inputs that start with neither magic get a valid session header and file-system magic prepended, so
 * the fuzzer spends its time in the records.
 *
 * Checked: a load that fails leaves one inode (the root) and no handle; a load that succeeds leaves only nodes
 * whose files are beneath the share (every node id the input named is asked for its attributes: the inode
 * number must be one of the share's, never outside's); then fs_reset leaves the root alone; no fd outlives
 * fs_free. ASan, UBSan and LeakSanitizer for the rest.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs/fs.h"
#include "protocol/fuse_server.h"

#define CHECK(cond, ...)                                                                                        \
	do {                                                                                                    \
		if (!(cond)) {                                                                                  \
			fprintf(stderr, "fuzz_fs_state: invariant failed: %s: ", #cond);                        \
			fprintf(stderr, __VA_ARGS__);                                                           \
			fputc('\n', stderr);                                                                    \
			abort();                                                                                \
		}                                                                                               \
	} while (0)

static char g_base[64], g_share[96];
static ino_t g_outside_ino, g_base_ino;

__attribute__((noreturn)) static void die(const char *what)
{
	perror(what);
	abort();
}

static void make_file(const char *rel, mode_t mode)
{
	char p[256];
	snprintf(p, sizeof(p), "%s/%s", g_base, rel);
	int fd = open(p, O_CREAT | O_WRONLY | O_CLOEXEC, mode);
	if (fd < 0 || write(fd, "data", 4) != 4)
		die(p);
	close(fd);
}

static int rm_cb(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	return remove(path);
}

static void cleanup(void)
{
	nftw(g_base, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char p[256];
	snprintf(g_base, sizeof(g_base), "/tmp/vufs-fuzz-state.%d", (int)getpid());
	snprintf(g_share, sizeof(g_share), "%s/share", g_base);
	cleanup();
	if (mkdir(g_base, 0755) < 0 || mkdir(g_share, 0755) < 0)
		die("mkdir");
	snprintf(p, sizeof(p), "%s/d", g_share);
	if (mkdir(p, 0755) < 0)
		die(p);
	make_file("share/a", 0644);
	make_file("share/b", 0600);
	make_file("share/d/c", 0644);
	make_file("outside", 0644);
	snprintf(p, sizeof(p), "%s/l", g_share);
	if (symlink("a", p) < 0)
		die(p);
	snprintf(p, sizeof(p), "%s/up", g_share);
	if (symlink("..", p) < 0)
		die(p);
	snprintf(p, sizeof(p), "%s/p", g_share);
	if (mkfifo(p, 0644) < 0)
		die(p);
	struct stat st;
	snprintf(p, sizeof(p), "%s/outside", g_base);
	if (stat(p, &st) < 0)
		die(p);
	g_outside_ino = st.st_ino;
	if (stat(g_base, &st) < 0)
		die(g_base);
	g_base_ino = st.st_ino;
	atexit(cleanup);
	return 0;
}

static unsigned count_fds(void)
{
	unsigned n = 0;
	DIR *d = opendir("/proc/self/fd");
	if (!d)
		die("/proc/self/fd");
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

/* The input as a whole state: its own if it has a magic, else behind a valid session and file-system header. */
static uint8_t *as_state(const uint8_t *data, size_t size, size_t *len)
{
	static const uint8_t head[32] = { 'V', 'U', 'F', 'S', 'P', 'R', 0, 1, 1, 0, 0, 0, 38, 0, 0, 0,
	                                  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10, 0, 0, 0, 0, 0 };
	bool whole = size >= 8 && memcmp(data, "VUFSPR", 6) == 0;
	bool fs_only = size >= 8 && memcmp(data, "VUFSFS", 6) == 0;
	size_t pre = whole ? 0 : fs_only ? sizeof(head) : sizeof(head) + 8;
	uint8_t *buf = malloc(pre + size + 1);
	if (!buf)
		die("malloc");
	memcpy(buf, head, pre ? sizeof(head) : 0);
	if (pre == sizeof(head) + 8)
		memcpy(buf + sizeof(head), "VUFSFS\0\1", 8);
	memcpy(buf + pre, data, size);
	*len = pre + size;
	if (pre) {
		uint32_t fs_len = (uint32_t)(*len - sizeof(head));
		memcpy(buf + 28, &fs_len, 4); /* little-endian host */
	}
	return buf;
}

/* Every node id a successful load may have made: ask the table for each 8 bytes of the input at every 4-byte
 * step (a record's slot and generation are two such u32s), which covers every id a record could name. */
static void check_nodes(struct fs *fs, const uint8_t *p, size_t len)
{
	for (size_t i = 0; i + 8 <= len; i += 4) {
		uint64_t nodeid;
		memcpy(&nodeid, p + i, 8); /* slot then gen, little-endian: gen << 32 | slot, a node id */
		struct stat st;
		if (fs_getattr(fs, nodeid, FS_NO_HANDLE, &st) == 0)
			CHECK(st.st_ino != g_outside_ino && st.st_ino != g_base_ino, "node %#llx is outside the share",
			      (unsigned long long)nodeid);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	unsigned fds = count_fds();
	struct fs_config cfg = {
		.source = g_share, .posix_lock = true, .flock = true, .max_inodes = 64, .max_handles = 64,
		.migration_mode = data[0] & 1 ? FS_MIGRATE_FILE_HANDLES : FS_MIGRATE_FIND_PATHS,
		.migration_on_error = data[0] & 2 ? FS_MIGRATE_GUEST_ERROR : FS_MIGRATE_ABORT,
	};
	struct fuse_server_opts so = { .readdirplus = true, .posix_lock = true, .flock = true };
	struct fs *fs;
	struct fuse_server *srv;
	if (fs_new(&cfg, &fs) < 0 || fuse_server_new(&fs_passthrough_ops, fs, &so, &srv) < 0)
		die("fs_new");
	size_t len;
	uint8_t *state = as_state(data + 1, size - 1, &len);
	uint64_t inodes, handles;
	if (fuse_server_state_load(srv, state, len) < 0) {
		fs_counts(fs, &inodes, &handles);
		CHECK(inodes == 1 && handles == 0, "a failed load left %llu inodes, %llu handles",
		      (unsigned long long)inodes, (unsigned long long)handles);
	} else {
		check_nodes(fs, state, len);
	}
	fs_reset(fs);
	fs_counts(fs, &inodes, &handles);
	CHECK(inodes == 1 && handles == 0, "fs_reset left %llu inodes, %llu handles", (unsigned long long)inodes,
	      (unsigned long long)handles);
	fuse_server_free(srv);
	fs_free(fs);
	free(state);
	CHECK(count_fds() == fds, "fds before %u, after %u", fds, count_fds());
	return 0;
}

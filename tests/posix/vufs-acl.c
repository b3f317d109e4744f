/*
 * POSIX ACLs and a security label on a virtio-fs or FUSE mount, checked from inside (a guest, or the host through
 * vufs-mount): the backend must run with --posix-acl (and, for the label, --xattrmap or --security-label).
 * Static, for the busybox guest (no setfacl there): ACLs are written as their xattr wire form.
 *   vufs-acl DIR [LABEL]
 *  1. an access ACL granting uid 1000 read only: it reads back byte for byte; uid 1000 may read and not write,
 *     uid 1001 (neither owner, named nor in the group) may not read;
 *  2. a default ACL on a directory (user 1000 rwx): a file created in it by root under umask 077 inherits an access
 *     ACL that lets uid 1000 write, which the umask alone would not, and still denies uid 1001;
 *  3. with LABEL: security.selinux set to LABEL on a file reads back (the host checks where it landed).
 * Prints one "ACL <check> ok|FAIL ..." line per check and "ACL-RESULT passed N failed M"; exits 1 on a failure.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#define ACL_ACCESS "system.posix_acl_access"
#define ACL_DEFAULT "system.posix_acl_default"
enum { TAG_USER_OBJ = 1, TAG_USER = 2, TAG_GROUP_OBJ = 4, TAG_MASK = 0x10, TAG_OTHER = 0x20 };
#define NO_ID 0xffffffffu

struct acl_entry {
	uint16_t tag, perm;
	uint32_t id;
};
struct acl_xattr {
	uint32_t version; /* 2 */
	struct acl_entry e[5];
};

static int passed, failed;

/* detail is read after the check ran: pass ERRNO_TEXT for the errno the checked call left. */
#define ERRNO_TEXT ((const char *)1)
static void check(const char *what, int ok, const char *detail)
{
	if (detail == ERRNO_TEXT)
		detail = strerror(errno);
	printf("ACL %s %s%s%s\n", what, ok ? "ok" : "FAIL", !ok && detail ? ": " : "", !ok && detail ? detail : "");
	ok ? passed++ : failed++;
}

/* u::OWNER, u:1000:NAMED, g::---, m::NAMED, o::--- (entries in the kernel's order) */
static void make_acl(struct acl_xattr *a, uint16_t owner, uint16_t named)
{
	struct acl_xattr v = { 2, { { TAG_USER_OBJ, owner, NO_ID }, { TAG_USER, named, 1000 },
	                            { TAG_GROUP_OBJ, 0, NO_ID }, { TAG_MASK, named, NO_ID }, { TAG_OTHER, 0, NO_ID } } };
	*a = v;
}

/* Whether uid (and gid) may open path with flags: in a child that drops to them. */
static int can_open_as(uid_t uid, const char *path, int flags)
{
	pid_t pid = fork();
	if (pid == 0) {
		if (setgroups(0, NULL) || setgid(uid) || setuid(uid))
			_exit(2);
		int fd = open(path, flags);
		_exit(fd >= 0 ? 0 : errno == EACCES ? 1 : 3);
	}
	int st;
	if (pid < 0 || waitpid(pid, &st, 0) < 0 || !WIFEXITED(st))
		return -1;
	return WEXITSTATUS(st) == 0 ? 1 : WEXITSTATUS(st) == 1 ? 0 : -1;
}

static void access_acl(const char *dir)
{
	char f[4096];
	struct acl_xattr a, back;
	snprintf(f, sizeof(f), "%s/acl-file", dir);
	unlink(f);
	int fd = open(f, O_CREAT | O_WRONLY, 0640);
	if (fd < 0 || write(fd, "x", 1) != 1 || close(fd)) {
		check("create", 0, ERRNO_TEXT);
		return;
	}
	make_acl(&a, 6, 4);
	check("set-access", setxattr(f, ACL_ACCESS, &a, sizeof(a), 0) == 0, ERRNO_TEXT);
	ssize_t n = getxattr(f, ACL_ACCESS, &back, sizeof(back));
	check("get-access", n == (ssize_t)sizeof(a) && !memcmp(&a, &back, sizeof(a)), n < 0 ? ERRNO_TEXT : NULL);
	check("named-user-reads", can_open_as(1000, f, O_RDONLY) == 1, NULL);
	check("named-user-cannot-write", can_open_as(1000, f, O_WRONLY) == 0, NULL);
	check("other-user-cannot-read", can_open_as(1001, f, O_RDONLY) == 0, NULL);
}

static void default_acl(const char *dir)
{
	char d[4096], f[4200];
	struct acl_xattr a;
	snprintf(d, sizeof(d), "%s/acl-dir", dir);
	snprintf(f, sizeof(f), "%s/inherits", d);
	unlink(f);
	rmdir(d);
	if (mkdir(d, 0755)) {
		check("mkdir", 0, ERRNO_TEXT);
		return;
	}
	make_acl(&a, 7, 7);
	check("set-default", setxattr(d, ACL_DEFAULT, &a, sizeof(a), 0) == 0, ERRNO_TEXT);
	mode_t old = umask(077);
	int fd = open(f, O_CREAT | O_WRONLY, 0666);
	umask(old);
	check("create-inheriting", fd >= 0 && close(fd) == 0, ERRNO_TEXT);
	check("inherited-access-acl", getxattr(f, ACL_ACCESS, NULL, 0) > 0, ERRNO_TEXT);
	check("inherited-lets-named-user-write", can_open_as(1000, f, O_WRONLY) == 1, NULL);
	check("others-still-denied", can_open_as(1001, f, O_RDONLY) == 0, NULL);
}

static void label(const char *dir, const char *value)
{
	char f[4096], back[256];
	snprintf(f, sizeof(f), "%s/labelled", dir);
	int fd = open(f, O_CREAT | O_WRONLY, 0644);
	check("create-labelled", fd >= 0 && close(fd) == 0, ERRNO_TEXT);
	check("set-label", setxattr(f, "security.selinux", value, strlen(value), 0) == 0, ERRNO_TEXT);
	ssize_t n = getxattr(f, "security.selinux", back, sizeof(back));
	check("get-label", n == (ssize_t)strlen(value) && !memcmp(back, value, (size_t)n), n < 0 ? ERRNO_TEXT : NULL);
}

int main(int argc, char **argv)
{
	if (argc < 2 || argc > 3) {
		fprintf(stderr, "usage: vufs-acl DIR [LABEL]\n");
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	access_acl(argv[1]);
	default_acl(argv[1]);
	if (argc == 3)
		label(argv[1], argv[2]);
	printf("ACL-RESULT passed %d failed %d\n", passed, failed);
	return failed ? 1 : 0;
}

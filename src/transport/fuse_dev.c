#include "transport/fuse_dev.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fuse.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"

struct mount_flag {
	const char *name;
	unsigned long set, clear;
};

static const struct mount_flag mount_flags[] = {
	{ "ro", MS_RDONLY, 0 }, { "rw", 0, MS_RDONLY }, { "nosuid", MS_NOSUID, 0 }, { "suid", 0, MS_NOSUID },
	{ "nodev", MS_NODEV, 0 }, { "dev", 0, MS_NODEV }, { "noexec", MS_NOEXEC, 0 }, { "exec", 0, MS_NOEXEC },
	{ "noatime", MS_NOATIME, 0 }, { "atime", 0, MS_NOATIME }, { "nodiratime", MS_NODIRATIME, 0 },
	{ "relatime", MS_RELATIME, 0 }, { "strictatime", MS_STRICTATIME, 0 }, { "sync", MS_SYNCHRONOUS, 0 },
	{ "async", 0, MS_SYNCHRONOUS }, { "dirsync", MS_DIRSYNC, 0 },
};

/* Splits options into mount flags and the FUSE data string (appended to data). */
static int split_options(const char *options, unsigned long *flags, char *data, size_t size)
{
	char *copy = strdup(options ? options : ""), *save = NULL;
	if (!copy)
		return -ENOMEM;
	for (char *o = strtok_r(copy, ",", &save); o; o = strtok_r(NULL, ",", &save)) {
		bool done = false;
		for (size_t i = 0; i < ARRAY_SIZE(mount_flags) && !done; i++) {
			if (!strcmp(o, mount_flags[i].name)) {
				*flags = (*flags | mount_flags[i].set) & ~mount_flags[i].clear;
				done = true;
			}
		}
		if (done)
			continue;
		size_t len = strlen(data);
		if (snprintf(data + len, size - len, ",%s", o) >= (int)(size - len)) {
			free(copy);
			return -E2BIG;
		}
	}
	free(copy);
	return 0;
}

int fuse_dev_mount(const char *source, const char *mountpoint, const char *options)
{
	char data[1024];
	unsigned long flags = MS_NOSUID | MS_NODEV;
	struct stat st;

	if (stat(mountpoint, &st) < 0)
		return neg_errno();
	int fd = open("/dev/fuse", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return neg_errno();
	snprintf(data, sizeof(data), "fd=%d,rootmode=%o,user_id=%u,group_id=%u", fd, st.st_mode & S_IFMT, getuid(),
	         getgid());
	int rc = split_options(options, &flags, data, sizeof(data));
	if (rc == 0 && mount(source, mountpoint, "fuse.vufs", flags, data) < 0)
		rc = neg_errno();
	if (rc < 0) {
		log_err("mount %s on %s (%s) failed: %s", source, mountpoint, data, strerror(-rc));
		close(fd);
		return rc;
	}
	return fd;
}

int fuse_dev_clone(int fd)
{
	int clone = open("/dev/fuse", O_RDWR | O_CLOEXEC);
	if (clone < 0)
		return neg_errno();
	uint32_t master = (uint32_t)fd;
	if (ioctl(clone, FUSE_DEV_IOC_CLONE, &master) < 0) {
		int rc = neg_errno();
		close(clone);
		return rc;
	}
	return clone;
}

int fuse_dev_unmount(const char *mountpoint)
{
	return umount2(mountpoint, MNT_DETACH) < 0 ? neg_errno() : 0;
}

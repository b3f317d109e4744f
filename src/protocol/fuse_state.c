/*
 * Live migration, the protocol's part: the session the guest negotiated at INIT (it sends no INIT to the
 * destination) and, inside it, the file system's state (fs_state_save/load through the ops table).
 *
 * Format (little-endian), version 1: "VUFSPR" 0 1 (8 bytes), u32 initialised (0/1), u32 minor, u64 flags,
 * u32 max_write, u32 fs_len, then fs_len bytes of the file system's state. Loading checks that this server
 * could have agreed to the same: a minor no newer than ours, no flag we would not offer (the destination must
 * be started with options that serve what the guest was promised), a max_write no larger than ours.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "protocol/fuse_internal.h"

#define STATE_MAGIC "VUFSPR\0\1"
#define STATE_HEAD 32u

static void le_put(uint8_t *p, uint64_t v, int bytes)
{
	for (int i = 0; i < bytes; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t le_get(const uint8_t *p, int bytes)
{
	uint64_t v = 0;
	for (int i = 0; i < bytes; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

int fuse_server_state_save(struct fuse_server *srv, void **out, size_t *out_len)
{
	void *fs_state = NULL;
	size_t fs_len = 0;
	int rc = FS_CALL(srv, state_save, &fs_state, &fs_len);
	if (rc < 0)
		return rc;
	uint8_t *buf = fs_len <= UINT32_MAX ? malloc(STATE_HEAD + fs_len) : NULL;
	if (!buf) {
		free(fs_state);
		return -ENOMEM;
	}
	pthread_mutex_lock(&srv->state_lock);
	memcpy(buf, STATE_MAGIC, 8);
	le_put(buf + 8, srv->initialised, 4);
	le_put(buf + 12, srv->minor, 4);
	le_put(buf + 16, srv->flags, 8);
	le_put(buf + 24, srv->max_write, 4);
	pthread_mutex_unlock(&srv->state_lock);
	le_put(buf + 28, fs_len, 4);
	memcpy(buf + STATE_HEAD, fs_state, fs_len);
	free(fs_state);
	*out = buf;
	*out_len = STATE_HEAD + fs_len;
	return 0;
}

int fuse_server_state_load(struct fuse_server *srv, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	if (len < STATE_HEAD || memcmp(p, STATE_MAGIC, 8) != 0 || le_get(p + 28, 4) != len - STATE_HEAD)
		return -EINVAL;
	uint32_t initialised = (uint32_t)le_get(p + 8, 4), minor = (uint32_t)le_get(p + 12, 4);
	uint64_t flags = le_get(p + 16, 8);
	uint32_t max_write = (uint32_t)le_get(p + 24, 4);
	uint64_t allowed = fuse_session_flags_allowed(srv);
	if (initialised > 1 || minor > VUFS_FUSE_MINOR || (flags & ~allowed) ||
	    max_write > srv->opts.max_write || (initialised && max_write == 0)) {
		log_err("migration: the guest's FUSE session (7.%u, flags %#llx, max_write %u) is not one this vufsd "
		        "can serve (flags %#llx, max_write %u): start it with the source's options", minor,
		        (unsigned long long)flags, max_write, (unsigned long long)allowed, srv->opts.max_write);
		return -EINVAL;
	}
	int rc = FS_CALL(srv, state_load, p + STATE_HEAD, len - STATE_HEAD);
	if (rc < 0)
		return rc;
	/* What INIT told the source's file system (writeback caching: write-only opens become read-write). */
	fuse_session_to_fs(srv, flags);
	pthread_mutex_lock(&srv->state_lock);
	srv->minor = minor;
	srv->flags = flags;
	srv->max_write = max_write;
	__atomic_store_n(&srv->initialised, initialised != 0, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&srv->state_lock);
	return 0;
}

/*
 * What the bridge's files share (bridge.c: the request path; bridge_dax.c: the DAX driver's requests and READ/WRITE
 * through the window): the slot, hiprio and bridge structures and the helpers both use. Not an interface: the
 * bridge's users see bridge.h only.
 */
#ifndef VUFS_MOUNT_BRIDGE_INTERNAL_H
#define VUFS_MOUNT_BRIDGE_INTERNAL_H

#include <pthread.h>
#include <semaphore.h>

#include "mount/bridge.h"
#include "mount/dax.h"
#include "mount/forgets.h"
#include "protocol/fuse_abi.h" /* the wire format only: 7.39-7.45 names */

#define PAGE_BYTES 4096u
#define HIPRIO_QUEUE 0
/* One page of shared memory per hiprio entry carries a FORGET or a BATCH_FORGET of up to this many nodes. */
#define FORGET_BUF_BYTES PAGE_BYTES
#define FORGETS_PER_BUF                                                                                         \
	((FORGET_BUF_BYTES - sizeof(struct fuse_in_header) - sizeof(struct fuse_batch_forget_in)) /           \
	 sizeof(struct fuse_forget_one))
/* What we take out of the backend's INIT answer: features a userspace bridge cannot carry. A backend behind a
 * virtqueue cannot register backing files on our /dev/fuse (FUSE_PASSTHROUGH) nor serve its io_uring. */
#define INIT_FLAGS_DROPPED ((uint64_t)FUSE_MAP_ALIGNMENT | FUSE_SUBMOUNTS | FUSE_SPLICE_READ | FUSE_SPLICE_WRITE | \
                            FUSE_SPLICE_MOVE | FUSE_HAS_INODE_DAX | FUSE_PASSTHROUGH | FUSE_OVER_IO_URING)

/* The driver's own requests (SETUPMAPPING, REMOVEMAPPING of up to a page of entries) and their reply header. */
#define CTL_REQ_BYTES (2 * PAGE_BYTES)
#define CTL_BYTES (CTL_REQ_BYTES + PAGE_BYTES)

enum slot_state { SLOT_IDLE, SLOT_IN_FLIGHT };

struct slot {
	struct bridge *b;
	unsigned index;
	int fuse_fd;
	uint8_t *req, *rep;
	uint64_t req_gpa, rep_gpa;
	uint8_t *ctl;             /* with DAX: the driver's own requests, sent while req holds the kernel's */
	uint64_t ctl_gpa;
	size_t req_size, rep_size;
	/* Under the lock of the queue it was submitted to. */
	enum slot_state state;
	uint32_t used_len;
	int status;
	sem_t done;
	pthread_t thread;
	bool thread_started;
};

/* A forget message's buffer; while its chain is on the hiprio ring it is the chain's token. */
struct forget_buf {
	uint8_t *mem;
	uint64_t gpa;
	struct forget_buf *next_free;
};

/*
 * Forgets, the Linux driver's way: sent on the hiprio queue with no reply awaited, and what finds the queue full
 * waits in a set that is drained as used entries come back (reap_forgets). All under the hiprio queue's lock.
 * There are as many buffers as hiprio ring entries and a message takes one descriptor, so a free buffer means
 * room on the ring.
 */
struct hiprio {
	struct forget_buf *bufs, *free;
	struct forget_set pending;
	uint64_t unique;         /* for the messages we make up; see write_forget */
	/* For the summary at exit: node ids taken from the kernel, merged into one pending, sent after waiting,
	 * messages sent, lost (backend gone, or no memory). */
	uint64_t nodes_in, merged, retried, messages, dropped;
};

struct bridge {
	struct vu_frontend *fe;
	int fuse_fd;
	struct bridge_config cfg;
	unsigned nslots;
	struct slot *slots;
	struct hiprio hp;
	int stop_fd;              /* wakes completion and monitor threads to leave */
	int done_fd;              /* counts readers that left */
	unsigned readers_left;    /* atomic */
	bool dead;                /* atomic: the backend is gone or broke the protocol */
	pthread_t completer[VU_FE_MAX_QUEUES];
	pthread_t monitor;
	bool started;
	struct mdax *dax;         /* NULL: no DAX */
	uint64_t ctl_unique;      /* atomic: unique numbers of the driver's own requests */
};

typedef void forget_fn(void *ctx, uint64_t nodeid, uint64_t nlookup);

/* Writes a reply to the kernel on s's /dev/fuse fd. */
void bridge_write_reply(struct slot *s, const void *buf, size_t len);
/* The checks the Linux driver leaves to the FUSE core: 0 if the reply is whole and answers unique, else -EIO. */
int bridge_check_reply(const uint8_t *rep, size_t rep_size, uint64_t unique, uint32_t used_len);
/* Puts a chain on s's queue and waits for the answer: 0 (s->used_len bytes came back) or a negative errno. */
int bridge_roundtrip(struct bridge *b, struct slot *s, const struct vq_seg *segs, unsigned n_rd, unsigned n_wr);
/* Hands each node of the kernel's FORGET or BATCH_FORGET in req to fn. */
void bridge_each_forget(const uint8_t *req, size_t len, forget_fn *fn, void *ctx);

/* bridge_dax.c */
void bridge_dax_new(struct bridge *b);
bool bridge_dax_request(struct bridge *b, struct slot *s, const struct fuse_in_header *h, size_t len);
void bridge_dax_init_request(struct bridge *b, struct slot *s, size_t len);
void bridge_dax_init_reply(struct bridge *b, const struct fuse_init_out *o, size_t have);

#endif

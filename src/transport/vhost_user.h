/*
 * vhost-user messages (QEMU docs/interop/vhost-user.rst): the wire format both sides share, and reading and
 * writing one message with its file descriptors. The peer is untrusted: sizes and fd counts are checked here
 * against the header, and each request's payload size is checked against what it must be.
 */
#ifndef VUFS_VHOST_USER_H
#define VUFS_VHOST_USER_H

#include <stdbool.h>
#include <stdint.h>

enum vhu_request {
	VHU_GET_FEATURES = 1,
	VHU_SET_FEATURES = 2,
	VHU_SET_OWNER = 3,
	VHU_RESET_OWNER = 4,
	VHU_SET_MEM_TABLE = 5,
	VHU_SET_LOG_BASE = 6,
	VHU_SET_LOG_FD = 7,
	VHU_SET_VRING_NUM = 8,
	VHU_SET_VRING_ADDR = 9,
	VHU_SET_VRING_BASE = 10,
	VHU_GET_VRING_BASE = 11,
	VHU_SET_VRING_KICK = 12,
	VHU_SET_VRING_CALL = 13,
	VHU_SET_VRING_ERR = 14,
	VHU_GET_PROTOCOL_FEATURES = 15,
	VHU_SET_PROTOCOL_FEATURES = 16,
	VHU_GET_QUEUE_NUM = 17,
	VHU_SET_VRING_ENABLE = 18,
	VHU_SET_BACKEND_REQ_FD = 21,
	VHU_GET_CONFIG = 24,
	VHU_SET_CONFIG = 25,
	VHU_RESET_DEVICE = 34,
	VHU_GET_MAX_MEM_SLOTS = 36,
	VHU_ADD_MEM_REG = 37,
	VHU_REM_MEM_REG = 38,
	VHU_SET_STATUS = 39,
	VHU_GET_STATUS = 40,
	VHU_SET_DEVICE_STATE_FD = 42,
	VHU_CHECK_DEVICE_STATE = 43,
	VHU_GET_SHMEM_CONFIG = 44,  /* QEMU 11.1.3's number */
	VHU_REQUEST_MAX = 64,
};

/* Requests the backend sends on the backend channel (SET_BACKEND_REQ_FD). */
enum vhu_backend_request {
	VHU_BACKEND_SHMEM_MAP = 9,
	VHU_BACKEND_SHMEM_UNMAP = 10,
};

/* Header flags */
#define VHU_VERSION 0x1u
#define VHU_FLAG_REPLY (1u << 2)
#define VHU_FLAG_NEED_REPLY (1u << 3)

/* Virtio feature bits we deal in */
#define VHU_F_PROTOCOL_FEATURES 30
#define VIRTIO_F_VERSION_1_BIT 32
#define VHOST_F_LOG_ALL_BIT 26   /* the frontend wants every guest page we write logged (live migration) */
#define VIRTIO_RING_F_INDIRECT_DESC_BIT 28
#define VIRTIO_RING_F_EVENT_IDX_BIT 29
#define VIRTIO_F_RING_PACKED_BIT 34

/* Protocol feature bits */
#define VHU_PROTOCOL_F_MQ 0
#define VHU_PROTOCOL_F_LOG_SHMFD 1
#define VHU_PROTOCOL_F_REPLY_ACK 3
#define VHU_PROTOCOL_F_BACKEND_REQ 5
#define VHU_PROTOCOL_F_CONFIG 9
#define VHU_PROTOCOL_F_CONFIGURE_MEM_SLOTS 15
#define VHU_PROTOCOL_F_DEVICE_STATE 19
#define VHU_PROTOCOL_F_SHMEM 22   /* QEMU 11.1.3's bit (early spec drafts said 20) */

#define VHU_VRING_IDX_MASK 0xffu
#define VHU_VRING_NOFD_MASK (1u << 8)

#define VHU_MAX_FDS 8
#define VHU_MEM_TABLE_MAX 8

struct vhu_hdr {
	uint32_t request;
	uint32_t flags;
	uint32_t size;
} __attribute__((packed));

struct vhu_vring_state {
	uint32_t index;
	uint32_t num;
};

struct vhu_vring_addr {
	uint32_t index;
	uint32_t flags;
	uint64_t desc_uaddr;
	uint64_t used_uaddr;
	uint64_t avail_uaddr;
	uint64_t log_gaddr;
};

/* SET_VRING_ADDR flags: log_gaddr is valid and the used ring's writes are to be logged there. */
#define VHU_VRING_F_LOG 0

/* SET_LOG_BASE with LOG_SHMFD: the log is mmap_size bytes at mmap_offset of the fd sent with it. */
struct vhu_log {
	uint64_t mmap_size;
	uint64_t mmap_offset;
};

struct vhu_mem_region {
	uint64_t gpa;
	uint64_t size;
	uint64_t uaddr;
	uint64_t mmap_offset;
};

struct vhu_mem_table {
	uint32_t nregions;
	uint32_t padding;
	struct vhu_mem_region regions[VHU_MEM_TABLE_MAX];
};

struct vhu_mem_reg {
	uint64_t padding;
	struct vhu_mem_region region;
};

/* GET_CONFIG / SET_CONFIG: a window of the device's config space. */
#define VHU_CONFIG_MAX 256
struct vhu_config {
	uint32_t offset;
	uint32_t size;
	uint32_t flags;
	uint8_t region[VHU_CONFIG_MAX];
};
#define VHU_CONFIG_HDR 12u

/* GET_SHMEM_CONFIG's answer: the size of each shared-memory region, by shmid. */
#define VHU_SHMEM_MAX 8
struct vhu_shmem_config {
	uint32_t nregions;
	uint32_t padding;
	uint64_t sizes[VHU_SHMEM_MAX];
};

/* SHMEM_MAP / SHMEM_UNMAP (backend requests): map len bytes of the fd sent with it at fd_offset to shm_offset of
 * region shmid. */
#define VHU_SHMEM_MAP_RW 1u
struct vhu_shmem_map {
	uint8_t shmid;
	uint8_t padding[7];
	uint64_t fd_offset;
	uint64_t shm_offset;
	uint64_t len;
	uint64_t flags;
};

/* SET_DEVICE_STATE_FD: direction 0 save (source), 1 load (destination); phase 0 (stopped) is the only one. */
struct vhu_device_state {
	uint32_t direction;
	uint32_t phase;
};

struct vhu_msg {
	struct vhu_hdr hdr;
	union {
		uint64_t u64;
		struct vhu_vring_state state;
		struct vhu_vring_addr addr;
		struct vhu_log log;
		struct vhu_mem_table mem;
		struct vhu_mem_reg memreg;
		struct vhu_config config;
		struct vhu_shmem_config shmem;
		struct vhu_shmem_map map;
		struct vhu_device_state dstate;
		uint8_t raw[512];
	} p;
	int fds[VHU_MAX_FDS];
	unsigned nfds;
};

/* Reads one message. 0 on success; -ECONNRESET on orderly EOF; other -errno (the connection is then unusable). */
int vhu_recv(int sock, struct vhu_msg *msg);
/* Sends one message and msg->nfds fds. */
int vhu_send(int sock, const struct vhu_msg *msg);
void vhu_close_fds(struct vhu_msg *msg);
const char *vhu_request_name(uint32_t request);

#endif

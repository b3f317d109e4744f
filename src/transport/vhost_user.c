#include "transport/vhost_user.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/util.h"

static int recv_full(int sock, void *buf, size_t len, struct msghdr *first)
{
	size_t got = 0;
	while (got < len) {
		ssize_t n;
		if (first && got == 0) {
			first->msg_iov->iov_base = buf;
			first->msg_iov->iov_len = len;
			n = recvmsg(sock, first, MSG_CMSG_CLOEXEC);
		} else {
			n = recv(sock, (uint8_t *)buf + got, len - got, 0);
		}
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (first && got == 0)
				first->msg_controllen = 0; /* a failed recvmsg wrote no control data: take no stale fds */
			return neg_errno();
		}
		if (n == 0)
			return got == 0 && first ? -ECONNRESET : -EPIPE;
		got += (size_t)n;
	}
	return 0;
}

static void take_fds(struct msghdr *mh, struct vhu_msg *msg, bool *extra)
{
	for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		int *fds = (int *)CMSG_DATA(c);
		for (size_t i = 0; i < n; i++) {
			if (msg->nfds < VHU_MAX_FDS) {
				msg->fds[msg->nfds++] = fds[i];
			} else {
				close(fds[i]);
				*extra = true;
			}
		}
	}
}

int vhu_recv(int sock, struct vhu_msg *msg)
{
	char control[CMSG_SPACE(VHU_MAX_FDS * sizeof(int))];
	struct iovec iov;
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control,
	                     .msg_controllen = sizeof(control) };
	bool extra = false;
	int rc;

	memset(msg, 0, sizeof(*msg));
	rc = recv_full(sock, &msg->hdr, sizeof(msg->hdr), &mh);
	take_fds(&mh, msg, &extra);
	if (rc < 0)
		goto fail;
	rc = -EBADMSG;
	if (extra || (mh.msg_flags & MSG_CTRUNC) || msg->hdr.size > sizeof(msg->p))
		goto fail;
	rc = recv_full(sock, &msg->p, msg->hdr.size, NULL);
	if (rc < 0)
		goto fail;
	return 0;
fail:
	vhu_close_fds(msg);
	return rc;
}

int vhu_send(int sock, const struct vhu_msg *msg)
{
	char control[CMSG_SPACE(VHU_MAX_FDS * sizeof(int))];
	struct iovec iov[2] = {
		{ .iov_base = (void *)&msg->hdr, .iov_len = sizeof(msg->hdr) },
		{ .iov_base = (void *)&msg->p, .iov_len = msg->hdr.size },
	};
	struct msghdr mh = { .msg_iov = iov, .msg_iovlen = 2 };

	if (msg->hdr.size > sizeof(msg->p) || msg->nfds > VHU_MAX_FDS)
		return -EINVAL;
	if (msg->nfds) {
		memset(control, 0, sizeof(control));
		mh.msg_control = control;
		mh.msg_controllen = CMSG_SPACE(msg->nfds * sizeof(int));
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(msg->nfds * sizeof(int));
		memcpy(CMSG_DATA(c), msg->fds, msg->nfds * sizeof(int));
	}
	size_t want = sizeof(msg->hdr) + msg->hdr.size;
	ssize_t n;
	do {
		n = sendmsg(sock, &mh, MSG_NOSIGNAL);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return neg_errno();
	/* A unix stream socket takes a message this small whole or not at all. */
	return (size_t)n == want ? 0 : -EIO;
}

void vhu_close_fds(struct vhu_msg *msg)
{
	for (unsigned i = 0; i < msg->nfds; i++)
		if (msg->fds[i] >= 0)
			close(msg->fds[i]);
	msg->nfds = 0;
}

const char *vhu_request_name(uint32_t request)
{
	static const char *const names[] = {
		[VHU_GET_FEATURES] = "GET_FEATURES", [VHU_SET_FEATURES] = "SET_FEATURES",
		[VHU_SET_OWNER] = "SET_OWNER", [VHU_RESET_OWNER] = "RESET_OWNER",
		[VHU_SET_MEM_TABLE] = "SET_MEM_TABLE", [VHU_SET_LOG_BASE] = "SET_LOG_BASE",
		[VHU_SET_LOG_FD] = "SET_LOG_FD", [VHU_SET_VRING_NUM] = "SET_VRING_NUM",
		[VHU_SET_VRING_ADDR] = "SET_VRING_ADDR", [VHU_SET_VRING_BASE] = "SET_VRING_BASE",
		[VHU_GET_VRING_BASE] = "GET_VRING_BASE", [VHU_SET_VRING_KICK] = "SET_VRING_KICK",
		[VHU_SET_VRING_CALL] = "SET_VRING_CALL", [VHU_SET_VRING_ERR] = "SET_VRING_ERR",
		[VHU_GET_PROTOCOL_FEATURES] = "GET_PROTOCOL_FEATURES",
		[VHU_SET_PROTOCOL_FEATURES] = "SET_PROTOCOL_FEATURES", [VHU_GET_QUEUE_NUM] = "GET_QUEUE_NUM",
		[VHU_SET_VRING_ENABLE] = "SET_VRING_ENABLE", [VHU_SET_BACKEND_REQ_FD] = "SET_BACKEND_REQ_FD",
		[VHU_GET_CONFIG] = "GET_CONFIG", [VHU_SET_CONFIG] = "SET_CONFIG",
		[VHU_RESET_DEVICE] = "RESET_DEVICE", [VHU_GET_MAX_MEM_SLOTS] = "GET_MAX_MEM_SLOTS",
		[VHU_ADD_MEM_REG] = "ADD_MEM_REG", [VHU_REM_MEM_REG] = "REM_MEM_REG",
		[VHU_SET_STATUS] = "SET_STATUS", [VHU_GET_STATUS] = "GET_STATUS",
		[VHU_SET_DEVICE_STATE_FD] = "SET_DEVICE_STATE_FD", [VHU_CHECK_DEVICE_STATE] = "CHECK_DEVICE_STATE",
		[VHU_GET_SHMEM_CONFIG] = "GET_SHMEM_CONFIG",
	};
	if (request < ARRAY_SIZE(names) && names[request])
		return names[request];
	return "UNKNOWN";
}

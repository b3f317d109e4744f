/*
 * The VMM side of the backend channel (transport/vu_fe_backend.c), driven by a hostile backend: QEMU's answers
 * (0 done, 1 failed, the channel kept) for every request that fails a check, the channel closed for a message that
 * cannot be framed, and no received fd left open on any path.
 */
#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "transport/vhost_user.h"
#include "transport/vu_fe_backend.h"

#define WIN (4u << 20)

struct fixture {
	int be, vmm;              /* the backend's end, the VMM's end */
	int file;
	unsigned fds_before;
	struct shm_window w;
	struct vu_fe_backend st;
};

static unsigned open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	unsigned n = 0;
	assert_non_null(d);
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

static int setup(void **state)
{
	static struct fixture f;
	int sv[2];
	memset(&f, 0, sizeof(f));
	f.fds_before = open_fds();
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	f.be = sv[0];
	f.vmm = sv[1];
	f.file = memfd_create("fe-backend", MFD_CLOEXEC);
	assert_int_equal(ftruncate(f.file, 1 << 20), 0);
	assert_int_equal(pwrite(f.file, "x", 1, 8192), 1);
	assert_int_equal(shm_window_init(&f.w, WIN), 0);
	*state = &f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	shm_window_destroy(&f->w);
	close(f->be);
	close(f->vmm);
	close(f->file);
	assert_int_equal(open_fds(), f->fds_before); /* every fd the backend sent is closed */
	return 0;
}

/* Sends a map/unmap with nfds copies of the file's fd; returns what serve_one said. */
static int send_req(struct fixture *f, uint32_t request, uint32_t flags, uint32_t size, struct vhu_shmem_map m,
                    unsigned nfds)
{
	struct vhu_msg msg = { .hdr = { .request = request, .flags = flags, .size = size } };
	memcpy(&msg.p, &m, sizeof(m));
	for (unsigned i = 0; i < nfds; i++)
		msg.fds[i] = f->file;
	msg.nfds = nfds;
	assert_int_equal(vhu_send(f->be, &msg), 0);
	return vu_fe_backend_serve_one(f->vmm, &f->w, &f->st);
}

/* The VMM's answer: 0 or 1; -1 if it sent none. */
static int answer(struct fixture *f, uint32_t request)
{
	struct vhu_msg r;
	if (recv(f->be, &r.hdr, 1, MSG_PEEK | MSG_DONTWAIT) < 0)
		return -1;
	assert_int_equal(vhu_recv(f->be, &r), 0);
	assert_int_equal(r.hdr.request, request);
	assert_true(r.hdr.flags & VHU_FLAG_REPLY);
	assert_int_equal(r.hdr.size, 8);
	assert_true(r.p.u64 <= 1);
	return (int)r.p.u64;
}

#define ACK (VHU_VERSION | VHU_FLAG_NEED_REPLY)
#define MAP(o, l, fl) ((struct vhu_shmem_map){ .fd_offset = 0, .shm_offset = (o), .len = (l), .flags = (fl) })

static int map(struct fixture *f, struct vhu_shmem_map m, unsigned nfds)
{
	assert_int_equal(send_req(f, VHU_BACKEND_SHMEM_MAP, ACK, sizeof(m), m, nfds), 0);
	return answer(f, VHU_BACKEND_SHMEM_MAP);
}

static int unmap(struct fixture *f, struct vhu_shmem_map m, unsigned nfds)
{
	assert_int_equal(send_req(f, VHU_BACKEND_SHMEM_UNMAP, ACK, sizeof(m), m, nfds), 0);
	return answer(f, VHU_BACKEND_SHMEM_UNMAP);
}

static void test_map_and_exact_unmap(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(map(f, MAP(2 << 20, 2 << 20, VHU_SHMEM_MAP_RW), 1), 0);
	assert_int_equal(f->w.base[(2 << 20) + 8192], 'x');
	f->w.base[(2 << 20) + 1] = 'y';
	char c;
	assert_int_equal(pread(f->file, &c, 1, 1), 1);
	assert_int_equal(c, 'y');
	assert_int_equal(unmap(f, MAP(2 << 20, 1 << 20, 0), 0), 1); /* not exactly the mapping */
	assert_int_equal(unmap(f, MAP(2 << 20, 2 << 20, 0), 0), 0);
	assert_int_equal(unmap(f, MAP(2 << 20, 2 << 20, 0), 0), 1); /* gone already */
	assert_int_equal(f->st.maps, 1);
	assert_int_equal(f->st.unmaps, 1);
	/* Without NEED_REPLY nothing is answered. */
	assert_int_equal(send_req(f, VHU_BACKEND_SHMEM_MAP, VHU_VERSION, sizeof(struct vhu_shmem_map), MAP(0, 4096, 0),
	                          1), 0);
	assert_int_equal(answer(f, VHU_BACKEND_SHMEM_MAP), -1);
}

static void test_refused_maps_keep_the_channel(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(map(f, MAP(0, 2 << 20, 1), 1), 0);
	assert_int_equal(map(f, MAP(1 << 20, 2 << 20, 1), 1), 1);          /* overlap */
	assert_int_equal(map(f, MAP(2 << 20, 4096, 1), 0), 1);             /* no fd */
	assert_int_equal(map(f, MAP(2 << 20, 4096, 1), 3), 1);             /* three fds, all closed */
	assert_int_equal(map(f, MAP((2 << 20) + 1, 4096, 1), 1), 1);       /* unaligned offset */
	assert_int_equal(map(f, MAP(2 << 20, 4095, 1), 1), 1);             /* unaligned length */
	assert_int_equal(map(f, MAP(WIN - 4096, 8192, 1), 1), 1);          /* past the window */
	assert_int_equal(map(f, MAP(UINT64_MAX - 4095, 8192, 1), 1), 1);  /* wraps */
	assert_int_equal(map(f, MAP(2 << 20, 0, 1), 1), 1);                /* empty */
	assert_int_equal(map(f, MAP(2 << 20, 4096, 6), 1), 1);             /* unknown flag */
	struct vhu_shmem_map m = MAP(2 << 20, 4096, 1);
	m.shmid = 1;
	assert_int_equal(map(f, m, 1), 1);                                 /* no region 1 */
	m = MAP(2 << 20, 4096, 1);
	m.fd_offset = 100;
	assert_int_equal(map(f, m, 1), 1);                                 /* unaligned file offset */
	assert_int_equal(unmap(f, MAP(0, 2 << 20, 0), 1), 1);              /* an fd with an unmap: refused, closed */
	assert_int_equal(send_req(f, 77, ACK, 0, MAP(0, 0, 0), 2), 0);     /* unknown request */
	assert_int_equal(answer(f, 77), 1);
	assert_int_equal(unmap(f, MAP(0, 2 << 20, 0), 0), 0);              /* the first map is still whole */
	assert_int_equal(f->st.failed, 13);
}

static void test_malformed_messages_close_the_channel(void **state)
{
	struct fixture *f = *state;
	assert_true(send_req(f, VHU_BACKEND_SHMEM_MAP, ACK, 16, MAP(0, 4096, 1), 1) < 0);       /* short */
	assert_true(send_req(f, VHU_BACKEND_SHMEM_MAP, ACK | VHU_FLAG_REPLY, sizeof(struct vhu_shmem_map),
	                     MAP(0, 4096, 1), 1) < 0);                                           /* a reply */
	assert_true(send_req(f, VHU_BACKEND_SHMEM_UNMAP, 2 | VHU_FLAG_NEED_REPLY, sizeof(struct vhu_shmem_map),
	                     MAP(0, 4096, 0), 1) < 0);                                           /* version 2 */
	struct vhu_hdr h = { .request = VHU_BACKEND_SHMEM_MAP, .flags = ACK, .size = 4096 };   /* too big */
	assert_int_equal(write(f->be, &h, sizeof(h)), sizeof(h));
	assert_true(vu_fe_backend_serve_one(f->vmm, &f->w, &f->st) < 0);
	h.size = 40;
	assert_int_equal(write(f->be, &h, sizeof(h)), sizeof(h)); /* then the peer goes */
	shutdown(f->be, SHUT_WR);
	assert_true(vu_fe_backend_serve_one(f->vmm, &f->w, &f->st) < 0);
	assert_int_equal(answer(f, VHU_BACKEND_SHMEM_MAP), -1);
	assert_int_equal(f->st.maps, 0);
}

static void test_clear_drops_every_mapping(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(map(f, MAP(0, 2 << 20, 1), 1), 0);
	assert_int_equal(map(f, MAP(2 << 20, 2 << 20, 0), 1), 0);
	shm_window_clear(&f->w);
	assert_int_equal(f->w.n, 0);
	assert_int_equal(map(f, MAP(0, 4 << 20, 1), 1), 0); /* nothing overlaps any more */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_map_and_exact_unmap, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refused_maps_keep_the_channel, setup, teardown),
		cmocka_unit_test_setup_teardown(test_malformed_messages_close_the_channel, setup, teardown),
		cmocka_unit_test_setup_teardown(test_clear_drops_every_mapping, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

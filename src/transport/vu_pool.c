/*
 * The worker pool (--thread-pool-size): a request queue's thread pops chains and hands them to the pool's
 * threads, so one queue's requests are served in parallel, as virtiofsd's pool serves its one queue. The
 * hiprio queue (FORGETs, cheap and never waiting) is served on its own thread as before.
 *
 * Lock story: pool->lock guards the job lists, `stopping` and every queue's pool_jobs. A job owns its chain
 * (iovecs into guest memory as mapped when it was popped) until a worker has pushed it; vu_queue_stop waits for
 * the queue's pool_jobs to reach 0 (vu_pool_drain) before the control plane changes memory or answers
 * GET_VRING_BASE, so no worker touches guest memory across a memory-table change or a ring taken back. Workers
 * never take ctrl_lock (the control plane holds it while it drains them): they run with `serving` set to their
 * job's queue, which tells vu_pending_complete so.
 */
#include "transport/vu_internal.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>

#include "common/log.h"

/*
 * Which chains are worth a hand-off. Waking a worker costs several microseconds here (a futex wake and a context
 * switch; bench/pool.sh: 0.18x the inline rate for 1 µs requests at depth 16), so a request that the file system
 * answers faster than that is served on the queue thread, and only slower ones go to the pool, where they overlap.
 * The transport does not know opcodes: chains are told apart by shape (log2 of their readable and writable
 * lengths: a GETATTR, a 4 KiB READ and a 1 MiB READ differ), and each shape keeps a moving average of its service
 * time, measured wherever it was served. A shape that turns slow (a network file system) moves to the pool after a
 * few requests, one that turns fast comes back. Relaxed atomics: a stale average only delays the switch.
 */
#define HANDOFF_MIN_NS 20000u
#define SHAPE_BUCKETS 21          /* log2 of a length, 0 to 20 (1 MiB and more) */

/* Jobs per thread: one in service and one popped and waiting, so the queue thread keeps ahead of the workers
 * without taking the whole ring (a deeper backlog only moves the wait from the ring into our lists). */
#define JOBS_PER_THREAD 2

struct vu_job {
	struct vu_job *next;
	struct vu_queue *q;
	struct vq_chain chain;
};

struct vu_pool {
	struct vu_dev *dev;
	pthread_mutex_t lock;
	pthread_cond_t work;        /* a job was queued, or the pool stops */
	pthread_cond_t done;        /* a job was finished: one more free, and maybe a queue drained */
	struct vu_job *free, *head, *tail;
	struct vu_job *jobs;        /* every job, in one allocation */
	bool stopping;
	unsigned busy, most_busy;   /* workers serving now, and the most at once (atomic: logged at the end) */
	uint64_t served;            /* chains the workers served (atomic) */
	uint64_t inline_served;     /* chains the queue threads kept because they are quick (atomic) */
	uint32_t cost_ns[SHAPE_BUCKETS][SHAPE_BUCKETS]; /* moving average service time per chain shape (atomic) */
	unsigned nthreads, started;
	pthread_t threads[VU_POOL_MAX];
};

struct worker_arg {
	struct vu_pool *pool;
	unsigned slot;
};

static struct vu_job *next_job(struct vu_pool *p)
{
	struct vu_job *job;
	pthread_mutex_lock(&p->lock);
	while (!p->head && !p->stopping)
		pthread_cond_wait(&p->work, &p->lock);
	job = p->head;
	if (job) {
		p->head = job->next;
		if (!p->head)
			p->tail = NULL;
	}
	pthread_mutex_unlock(&p->lock);
	return job;
}

static void finish_job(struct vu_pool *p, struct vu_job *job)
{
	pthread_mutex_lock(&p->lock);
	job->q->pool_jobs--;
	job->q = NULL;
	job->next = p->free;
	p->free = job;
	pthread_cond_broadcast(&p->done);
	pthread_mutex_unlock(&p->lock);
}

static unsigned bucket(size_t len)
{
	unsigned b = len ? 64u - (unsigned)__builtin_clzll((unsigned long long)len) : 0;
	return b < SHAPE_BUCKETS ? b : SHAPE_BUCKETS - 1;
}

static uint32_t *shape_cost(struct vu_pool *p, const struct vq_chain *chain)
{
	return &p->cost_ns[bucket(chain->rd_len)][bucket(chain->wr_len)];
}

bool vu_pool_worth_handing(struct vu_pool *p, const struct vq_chain *chain)
{
	bool slow = __atomic_load_n(shape_cost(p, chain), __ATOMIC_RELAXED) >= HANDOFF_MIN_NS;
	if (!slow)
		__atomic_add_fetch(&p->inline_served, 1, __ATOMIC_RELAXED);
	return slow;
}

void vu_pool_note_cost(struct vu_pool *p, const struct vq_chain *chain, uint64_t ns)
{
	uint32_t *avg = shape_cost(p, chain);
	uint32_t old = __atomic_load_n(avg, __ATOMIC_RELAXED), sample = ns > UINT32_MAX ? UINT32_MAX : (uint32_t)ns;
	/* 1/4 of the new sample: a shape that changes speed switches within a few requests */
	__atomic_store_n(avg, (uint32_t)(old - old / 4 + sample / 4), __ATOMIC_RELAXED);
}

/* Counts one more worker serving; keeps the most at once (whether the pool really runs requests in parallel). */
static void note_busy(struct vu_pool *p)
{
	unsigned now = __atomic_add_fetch(&p->busy, 1, __ATOMIC_RELAXED);
	unsigned most = __atomic_load_n(&p->most_busy, __ATOMIC_RELAXED);
	while (now > most && !__atomic_compare_exchange_n(&p->most_busy, &most, now, true, __ATOMIC_RELAXED,
	                                                  __ATOMIC_RELAXED))
		;
}

static void *worker_thread(void *arg)
{
	struct worker_arg wa = *(struct worker_arg *)arg;
	struct vu_pool *p = wa.pool;
	struct vu_job *job;

	free(arg);
	while ((job = next_job(p))) {
		struct vu_queue *q = job->q;
		uint64_t faults = gm_fault_count();
		long len = 0;

		if (!__atomic_load_n(&q->broken, __ATOMIC_RELAXED)) {
			note_busy(p);
			vu_queue_serve_begin(q);
			uint64_t t0 = vu_now_ns();
			len = p->dev->cfg.handle(p->dev->cfg.opaque, q, &job->chain, wa.slot);
			vu_pool_note_cost(p, &job->chain, vu_now_ns() - t0);
			vu_queue_serve_end();
			__atomic_add_fetch(&q->requests, 1, __ATOMIC_RELAXED);
			if (gm_fault_count() != faults)
				vu_queue_mark_broken(q); /* the request read zeros where the guest's bytes were */
			else if (len != VU_DEFERRED)
				vu_queue_push(q, &job->chain, (uint32_t)len);
			__atomic_sub_fetch(&p->busy, 1, __ATOMIC_RELAXED);
			__atomic_add_fetch(&p->served, 1, __ATOMIC_RELAXED);
		}
		finish_job(p, job);
	}
	return NULL;
}

int vu_pool_new(struct vu_dev *dev, unsigned nthreads, struct vu_pool **out)
{
	unsigned njobs = nthreads * JOBS_PER_THREAD;
	struct vu_pool *p;

	*out = NULL;
	if (nthreads < 2 || nthreads > VU_POOL_MAX)
		return nthreads < 2 ? 0 : -EINVAL; /* 0 or 1 thread: the queue thread serves, one request at a time */
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->dev = dev;
	p->nthreads = nthreads;
	p->jobs = calloc(njobs, sizeof(*p->jobs));
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->work, NULL);
	pthread_cond_init(&p->done, NULL);
	if (!p->jobs) {
		vu_pool_free(p);
		return -ENOMEM;
	}
	for (unsigned i = 0; i < njobs; i++) {
		p->jobs[i].next = p->free;
		p->free = &p->jobs[i];
	}
	for (unsigned i = 0; i < nthreads; i++) {
		struct worker_arg *wa = malloc(sizeof(*wa));
		int rc = ENOMEM;
		if (wa) {
			*wa = (struct worker_arg){ p, VU_MAX_QUEUES + i };
			rc = pthread_create(&p->threads[i], NULL, worker_thread, wa);
		}
		if (rc) {
			free(wa);
			vu_pool_free(p);
			return -rc;
		}
		p->started++;
	}
	*out = p;
	return 0;
}

void vu_pool_free(struct vu_pool *p)
{
	if (!p)
		return;
	log_info("pool: %u threads served %llu requests, at most %u at once; %llu quick ones stayed on their queue",
	         p->nthreads, (unsigned long long)__atomic_load_n(&p->served, __ATOMIC_RELAXED),
	         __atomic_load_n(&p->most_busy, __ATOMIC_RELAXED),
	         (unsigned long long)__atomic_load_n(&p->inline_served, __ATOMIC_RELAXED));
	pthread_mutex_lock(&p->lock);
	p->stopping = true;
	pthread_cond_broadcast(&p->work);
	pthread_mutex_unlock(&p->lock);
	for (unsigned i = 0; i < p->started; i++)
		pthread_join(p->threads[i], NULL);
	pthread_cond_destroy(&p->work);
	pthread_cond_destroy(&p->done);
	pthread_mutex_destroy(&p->lock);
	free(p->jobs);
	free(p);
}

struct vq_chain *vu_pool_take(struct vu_pool *p, struct vu_queue *q)
{
	struct vu_job *job;
	pthread_mutex_lock(&p->lock);
	while (!p->free)
		pthread_cond_wait(&p->done, &p->lock); /* workers finish in bounded time: they never wait on us */
	job = p->free;
	p->free = job->next;
	job->q = q;
	q->pool_jobs++;
	pthread_mutex_unlock(&p->lock);
	return &job->chain;
}

static struct vu_job *job_of(struct vq_chain *chain)
{
	return (struct vu_job *)((char *)chain - offsetof(struct vu_job, chain));
}

void vu_pool_give_back(struct vu_pool *p, struct vq_chain *chain)
{
	finish_job(p, job_of(chain));
}

void vu_pool_submit(struct vu_pool *p, struct vq_chain *chain)
{
	struct vu_job *job = job_of(chain);
	pthread_mutex_lock(&p->lock);
	job->next = NULL;
	if (p->tail)
		p->tail->next = job;
	else
		p->head = job;
	p->tail = job;
	pthread_cond_signal(&p->work);
	pthread_mutex_unlock(&p->lock);
}

void vu_pool_drain(struct vu_pool *p, struct vu_queue *q)
{
	pthread_mutex_lock(&p->lock);
	while (q->pool_jobs)
		pthread_cond_wait(&p->done, &p->lock);
	pthread_mutex_unlock(&p->lock);
}

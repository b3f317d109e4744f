/*
 * Split virtqueue layout shared by both sides (virtio 1.x, little-endian x86 only) and the memory-ordering
 * helpers the ring protocol needs. The ring lives in memory the other side writes concurrently: read each
 * field once, into a local, and never trust it again after validation.
 */
#ifndef VUFS_VRING_H
#define VUFS_VRING_H

#include <stdbool.h>
#include <stdint.h>
#include <linux/virtio_ring.h>

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "vufs assumes a little-endian host (virtio 1.x rings are little-endian)"
#endif

#define VQ_MAX_SIZE 32768u

/* The three parts of a split ring, as host pointers. */
struct vring_split {
	unsigned num;
	struct vring_desc *desc;
	struct vring_avail *avail;
	struct vring_used *used;
};

static inline uint16_t load_acquire16(const volatile uint16_t *p)
{
	return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

static inline void store_release16(volatile uint16_t *p, uint16_t v)
{
	__atomic_store_n(p, v, __ATOMIC_RELEASE);
}

static inline uint16_t load_once16(const volatile uint16_t *p)
{
	return __atomic_load_n(p, __ATOMIC_RELAXED);
}

static inline void store_once16(volatile uint16_t *p, uint16_t v)
{
	__atomic_store_n(p, v, __ATOMIC_RELAXED);
}

/* Orders our index store against our read of the other side's event index (the EVENT_IDX race). */
static inline void full_barrier(void)
{
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
}

/* used_event lives after the avail ring; avail_event after the used ring. */
static inline volatile uint16_t *vring_used_event_ptr(const struct vring_split *r)
{
	return (volatile uint16_t *)&r->avail->ring[r->num];
}

static inline volatile uint16_t *vring_avail_event_ptr(const struct vring_split *r)
{
	return (volatile uint16_t *)&r->used->ring[r->num];
}

static inline bool vring_valid_num(unsigned num)
{
	return num > 0 && num <= VQ_MAX_SIZE && (num & (num - 1)) == 0;
}

/* Bytes each part occupies, including the event index. */
static inline uint64_t vring_desc_bytes(unsigned num) { return 16ull * num; }
static inline uint64_t vring_avail_bytes(unsigned num) { return 6ull + 2ull * num; }
static inline uint64_t vring_used_bytes(unsigned num) { return 6ull + 8ull * num; }

#endif

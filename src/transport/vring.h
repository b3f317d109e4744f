/*
 * Virtqueue layouts shared by both sides (split and packed, virtio 1.x, little-endian x86 only) and the
 * memory-ordering helpers the ring protocol needs. Only the ring files (vq_device*.c, vq_driver*.c) and the
 * tests that corrupt a ring on purpose use the layout details. The ring lives in memory the other side writes
 * concurrently: read each field once, into a local, and never trust it again after validation.
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

/* The three parts of a packed ring, as host pointers (virtio 1.1, 2.8). */
struct vring_packed {
	unsigned num;
	struct vring_packed_desc *desc;
	struct vring_packed_desc_event *driver;  /* driver event suppression: written by the driver */
	struct vring_packed_desc_event *device;  /* device event suppression: written by the device */
};

/* The vring base (GET/SET_VRING_BASE) of a packed ring, as QEMU and vhost carry it: the next avail slot in bits
 * 0-14 and its wrap counter in bit 15; the next used slot and its wrap counter likewise in bits 16-31. */
#define VRING_PACKED_WRAP (1u << 15)
#define VRING_PACKED_BASE_INIT (VRING_PACKED_WRAP | VRING_PACKED_WRAP << 16)

/* A packed descriptor's AVAIL and USED bits as a side with wrap counter w writes them. */
static inline uint16_t vring_packed_avail_flags(bool w)
{
	return w ? 1u << VRING_PACKED_DESC_F_AVAIL : 1u << VRING_PACKED_DESC_F_USED;
}

static inline uint16_t vring_packed_used_flags(bool w)
{
	return w ? (1u << VRING_PACKED_DESC_F_AVAIL | 1u << VRING_PACKED_DESC_F_USED) : 0;
}

/* Available to a device whose avail wrap counter is w: AVAIL == w and USED != w. */
static inline bool vring_packed_is_avail(uint16_t flags, bool w)
{
	return !!(flags & (1u << VRING_PACKED_DESC_F_AVAIL)) == w && !!(flags & (1u << VRING_PACKED_DESC_F_USED)) != w;
}

/* Used, for a driver whose used wrap counter is w: AVAIL == USED == w. */
static inline bool vring_packed_is_used(uint16_t flags, bool w)
{
	return !!(flags & (1u << VRING_PACKED_DESC_F_AVAIL)) == w && !!(flags & (1u << VRING_PACKED_DESC_F_USED)) == w;
}

static inline uint64_t vring_packed_desc_bytes(unsigned num) { return 16ull * num; }
#define VRING_PACKED_EVENT_BYTES 4u

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

/* One relaxed read of a shared field of any width (a descriptor's address, length or id). */
#define load_once(p) __atomic_load_n((p), __ATOMIC_RELAXED)

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

/*
 * Whether a side that moved its packed index from old to now passed the other side's event (off_wrap, as it wrote
 * it) while its own wrap counter is wrap, as Linux does it. now is a slot in [0, num); old is now minus the slots
 * moved since the last check, modulo 2^16 (not a slot: a whole lap must not look like no move at all).
 */
static inline bool vring_packed_need_event(uint16_t off_wrap, bool wrap, unsigned num, uint16_t now, uint16_t old)
{
	uint16_t off = off_wrap & (uint16_t)~VRING_PACKED_WRAP;
	if (wrap != !!(off_wrap & VRING_PACKED_WRAP))
		off = (uint16_t)(off - num);
	return vring_need_event(off, now, old);
}

/* Asks the other side for a notification: at our index idx on lap wrap (EVENT_IDX), or at every one. */
static inline void vring_packed_event_arm(volatile struct vring_packed_desc_event *ev, bool event_idx, uint16_t idx,
                                          bool wrap)
{
	if (event_idx) {
		store_once16(&ev->off_wrap, (uint16_t)(idx | (wrap ? VRING_PACKED_WRAP : 0)));
		store_once16(&ev->flags, VRING_PACKED_EVENT_FLAG_DESC);
	} else {
		store_once16(&ev->flags, VRING_PACKED_EVENT_FLAG_ENABLE);
	}
	full_barrier();
}

/*
 * Whether the other side's event suppression area ev asks for a notification now that our index moved from old to
 * now (with wrap counter wrap). Without a valid old, a DESC event always fires. Call after a full barrier.
 */
static inline bool vring_packed_event_wanted(const volatile struct vring_packed_desc_event *ev, bool event_idx,
                                             bool wrap, unsigned num, uint16_t now, uint16_t old, bool old_valid)
{
	uint32_t snap = load_once((const volatile uint32_t *)ev); /* off_wrap and flags, one snapshot */
	uint16_t off_wrap = (uint16_t)snap, flags = (uint16_t)(snap >> 16);
	if (flags == VRING_PACKED_EVENT_FLAG_DISABLE)
		return false;
	if (flags != VRING_PACKED_EVENT_FLAG_DESC || !event_idx || !old_valid)
		return true;
	return vring_packed_need_event(off_wrap, wrap, num, now, old);
}

#endif

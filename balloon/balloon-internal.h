/* SPDX-License-Identifier: MIT */
/* balloon/: virtio transport and virtqueue internals shared by the transport and devices. */
#ifndef OVC_BALLOON_INTERNAL_H
#define OVC_BALLOON_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include <ovc/virtio.h>
#include "core/core-internal.h"

/* ------------------------------------------------------------------------ */
/* Guest memory as a device sees it */

/* An immutable copy of the VMM's RAM regions, sorted by gpa. */
struct ovc__virtio_memmap {
	unsigned int n;
	struct ovc_guest_region r[OVC_VIRTIO_MAX_REGIONS];
};

int ovc__virtio_memmap_init(struct ovc__virtio_memmap *map, const struct ovc_virtio_mem *mem);

/* Why a guest range did not translate. */
enum ovc__gpa_error {
	OVC_GPA_OK = 0,
	OVC_GPA_OUT_OF_RAM,	/* not inside any region, or it wraps */
	OVC_GPA_STRADDLE,	/* all RAM, but across regions that abut */
};

/*
 * ovc__virtio_gpa_to_hva() - host address of [gpa, gpa + len) if it lies inside
 * one region, else NULL with *why set. len 0 needs gpa inside a region or at
 * its end.
 */
void *ovc__virtio_gpa_to_hva(const struct ovc__virtio_memmap *map, uint64_t gpa,
			     uint64_t len, enum ovc__gpa_error *why);

/* ------------------------------------------------------------------------ */
/* What a virtqueue needs from its transport */

struct ovc__virtio_transport;

/*
 * Transport methods the queues call; run in the caller's serialization (the
 * thread calling ovc_virtq_*()).
 */
struct ovc__virtio_transport_ops {
	/* Set the used-buffer interrupt reason and raise the interrupt. */
	void (*used_interrupt)(struct ovc__virtio_transport *t, struct ovc_virtq *vq);
	/* Set the config-change interrupt reason and raise the interrupt. */
	void (*config_interrupt)(struct ovc__virtio_transport *t);
};

/*
 * The transport-independent half of a virtio device's state. A transport
 * (virtio-mmio.c) embeds it and recovers itself with container_of. All fields
 * but @stats belong to the caller's serialization.
 */
struct ovc__virtio_transport {
	const struct ovc__virtio_transport_ops *ops;
	struct ovc__virtio_memmap mem;
	uint8_t status;		/* the Status register */
	uint64_t features;	/* negotiated; meaningful once FEATURES_OK is set */
	struct ovc_virtio_stats stats;	/* ATOMIC: each field, relaxed */
};

/* Count one event. Single writer (the caller's serialization), many readers. */
#define ovc__virtio_count(t, field)                                                 \
	__atomic_store_n(&(t)->stats.field,                                         \
			 __atomic_load_n(&(t)->stats.field, __ATOMIC_RELAXED) + 1, \
			 __ATOMIC_RELAXED)

void ovc__virtio_stats_read(const struct ovc__virtio_transport *t, struct ovc_virtio_stats *st);

/*
 * The guest broke the device: set DEVICE_NEEDS_RESET and, once DRIVER_OK is
 * set, send a config-change notification (virtio 1.x, "Device Status
 * Field"). Idempotent.
 */
void ovc__virtio_set_needs_reset(struct ovc__virtio_transport *t);

/* Processing is allowed: DRIVER_OK set, no DEVICE_NEEDS_RESET. */
static inline bool ovc__virtio_running(const struct ovc__virtio_transport *t)
{
	return (t->status & (OVC_VIRTIO_STATUS_DRIVER_OK | OVC_VIRTIO_STATUS_NEEDS_RESET)) ==
	       OVC_VIRTIO_STATUS_DRIVER_OK;
}

static inline bool ovc__virtio_has(const struct ovc__virtio_transport *t, unsigned int bit)
{
	return (t->features & OVC_VIRTIO_FEATURE(bit)) != 0;
}

/* ------------------------------------------------------------------------ */
/* Split virtqueues */

/*
 * struct ovc_virtq - one split virtqueue, device side. Owned by its
 * transport; everything here belongs to the caller's serialization.
 *
 * The driver-written configuration (@num, the three gpas) is only read when
 * the driver sets QueueReady; ovc__virtq_enable() validates it once and maps
 * the rings, and the mapping cannot change until the queue is disabled or
 * reset. Ring indices the device owns (@last_avail, @used_idx) are kept
 * here and never read back from guest memory.
 *
 * Ring fields shared with the guest, which may write its side at any time:
 *
 *  field            | writer | how the device accesses it
 *  -----------------+--------+-----------------------------------------------
 *  avail.idx        | driver | load-acquire; at most size ahead, or broken
 *  avail.ring[i]    | driver | relaxed load, once, after that acquire
 *  descriptors      | driver | read once into a private copy, then checked;
 *                   |        | buffers handed out as checked host pointers
 *  avail.flags      | driver | relaxed load after a full fence (notify)
 *  avail.used_event | driver | relaxed load after a full fence (notify)
 *  used.ring[i]     | device | relaxed stores, before the release of used.idx
 *  used.idx         | device | store-release of our own count (0 at
 *                   |        | enable); never read back
 *  used.avail_event | device | relaxed store; when the ring looks empty, a
 *                   |        | full fence and avail.idx is read again
 *  used.flags       | device | 0 at enable: we always want notifications
 */
struct ovc_virtq {
	struct ovc__virtio_transport *t;
	unsigned int index;
	uint16_t max_size;

	/* As the driver wrote them (QueueNum, QueueDesc/Driver/Device). */
	uint32_t num;
	uint64_t desc_gpa, avail_gpa, used_gpa;

	/* Valid while @ready. */
	bool ready;
	uint16_t size;
	uint8_t *desc;		/* 16 * size bytes */
	uint8_t *avail;		/* 6 + 2 * size: flags, idx, ring[size], used_event */
	uint8_t *used;		/* 6 + 8 * size: flags, idx, ring[size], avail_event */

	uint16_t last_avail;	/* next avail ring slot to pop */
	uint16_t shadow_avail;	/* avail idx as last read (and checked) */
	uint16_t used_idx;	/* our used idx, published to the ring */
	uint16_t signalled_used;	/* used_idx at the last ovc_virtq_notify() */
	bool signalled_valid;
	bool pushed;		/* pushed since the last ovc_virtq_notify() */
	bool broken;		/* the guest broke it; stays until reset */
	bool kick_pending;	/* notified before DRIVER_OK: deliver after */
	uint32_t inflight;	/* popped, not pushed */
	uint32_t gen;		/* bumped on enable, disable and reset */
};

void ovc__virtq_init(struct ovc_virtq *vq, struct ovc__virtio_transport *t,
		     unsigned int index, uint16_t max_size);
/* Back to the state after reset: not ready, QueueNum = max, no addresses. */
void ovc__virtq_reset(struct ovc_virtq *vq);
/* QueueReady = 1: validate and map; 0, or -EINVAL (counted) when refused. */
int ovc__virtq_enable(struct ovc_virtq *vq);
/* QueueReady = 0: stop using the rings. */
void ovc__virtq_disable(struct ovc_virtq *vq);

/* ------------------------------------------------------------------------ */
/* The balloon device (balloon.c) */

#include <pthread.h>
#include <ovc/balloon.h>

enum ovc__balloon_queue {
	OVC__BQ_NONE = 0,
	OVC__BQ_INFLATE,
	OVC__BQ_DEFLATE,
	OVC__BQ_STATS,
	OVC__BQ_REPORTING,
};

/**
 * struct ovc_balloon - one VM's balloon device and controller state
 *
 * Locks: @tlock serializes the transport when the balloon owns it
 * (ovc_balloon_mmio()); @lock protects everything else and is taken inside
 * the transport's callbacks. Order: host lock, then @tlock, then @lock.
 */
struct ovc_balloon {
	struct ovc_ram *ram;
	const struct ovc_log *log;
	void *owner;			/* the struct ovc_vm, for host/ */
	struct ovc_balloon_config cfg;
	struct ovc_virtio_device_ops ops;	/* ovc_balloon_virtio_ops with cfg's features */
	uint64_t ram_pages;

	pthread_mutex_t tlock;		/* protects @mmio's transport */
	_Atomic bool notify_pending;	/* ATOMIC: a config change to raise */
	struct ovc_virtio_mmio *mmio;
	struct ovc_guest_region regions[OVC_VM_RAM_RANGES_MAX];
	struct ovc_virtio_mem mem;

	pthread_mutex_t lock;		/* protects all below */
	uint64_t features;		/* negotiated, 0 until DRIVER_OK */
	uint32_t num_pages;		/* config: what the device asks for */
	uint32_t actual;		/* config: what the driver says it holds */
	uint64_t target_pages;		/* where the controller steps num_pages */
	uint32_t last_actual;
	uint64_t moved_ns;		/* last progress (or change of num_pages) */
	bool stalled;
	bool stats_held;		/* a statistics buffer kept to request the next */
	struct ovc_virtq *stats_vq;
	struct ovc_virtq_elem stats_elem;
	uint64_t stats_asked_ns, stats_at_ns;
	uint32_t stats_valid;
	uint64_t stats[OVC_BALLOON_S_NR];
	struct ovc_virtq_elem elem;	/* scratch for the queue being served */
	struct ovc_xact xact;		/* scratch for page moves */
	struct {
		uint64_t inflated, deflated, reported;
		uint64_t bad_pfn, dup_pfn, bad_deflate, misaligned, bad_requests;
		uint64_t xact_errors, stalls, stats_updates;
		uint64_t inflate_ns, deflate_ns;	/* time spent moving pages */
	} ctr;
	uint64_t asked_ns;		/* when num_pages last changed */
	uint64_t settle_ns;		/* how long the guest took to follow it */
	bool settled;
};

/* A balloon on @ram; @owner is kept for the caller. NULL with errno. */
struct ovc_balloon *ovc__balloon_new(struct ovc_ram *ram, const struct ovc_log *log,
				     const struct ovc_balloon_config *cfg, void *owner);
void ovc__balloon_destroy(struct ovc_balloon *b);
void ovc__balloon_tick(struct ovc_balloon *b, uint64_t now);

#endif /* OVC_BALLOON_INTERNAL_H */

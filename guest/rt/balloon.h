/* SPDX-License-Identifier: MIT */
/* guest/rt/balloon.h: a guest-side virtio-balloon driver over a pool of guest pages. */
#ifndef OVC_GUEST_BALLOON_H
#define OVC_GUEST_BALLOON_H

#include "rt.h"
#include "virtio.h"

/*
 * Written from the virtio 1.x specification, "Traditional Memory Balloon
 * Device" (device ID 5), its driver requirements only, so that it checks the
 * VMM's device instead of sharing its reading of the spec.
 *
 * The guests have no page allocator, so the driver owns one: a pool of page
 * frames [pool_start, pool_end) that the guest hands over at init. Each pool
 * page is in exactly one state:
 *
 *   free       the guest owns it and is not using it (content undefined;
 *              a deflated or reported page may read as zero or as anything)
 *   used       handed out by balloon_alloc_page(), until balloon_free_page()
 *   ballooned  given to the device; the guest must not touch it
 *   in flight  in a buffer the device has not used yet (inflate, deflate or
 *              report); the guest must not touch it either
 *
 * Everything runs on one vCPU at a time and nothing is locked: the caller
 * serialises every call on a struct balloon (the test guests use it from
 * vCPU 0 only). There are no threads at CPL3, so the driver is polled:
 * balloon_poll() from the guest's main loop does what an interrupt handler
 * and a balloon thread would do in a kernel. Interrupts only end the idle
 * waits early.
 *
 * Every wait has a timeout. A buffer whose wait timed out (or was cut short
 * by boot->stop) stays with the device; its pages stay in flight, and later
 * calls complete it if the device ever uses it. Errors are negative
 * VIRTIO_E* codes from virtio.h.
 */

/* ---- the device's interface (spec: "Traditional Memory Balloon Device") ---- */

/* Feature bits (bit numbers). */
#define VIRTIO_BALLOON_F_MUST_TELL_HOST		0	/* deflate acked before reuse */
#define VIRTIO_BALLOON_F_STATS_VQ		1	/* statsq exists */
#define VIRTIO_BALLOON_F_DEFLATE_ON_OOM		2	/* may deflate when short */
#define VIRTIO_BALLOON_F_FREE_PAGE_HINT		3	/* never negotiated here */
#define VIRTIO_BALLOON_F_PAGE_POISON		4	/* never negotiated here */
#define VIRTIO_BALLOON_F_PAGE_REPORTING		5	/* reporting_vq exists */

/* The balloon features this driver can use; the caller picks from them. */
#define BALLOON_FEATURES_ALL	(VIRTIO_FEATURE(VIRTIO_BALLOON_F_MUST_TELL_HOST) | \
				 VIRTIO_FEATURE(VIRTIO_BALLOON_F_STATS_VQ) | \
				 VIRTIO_FEATURE(VIRTIO_BALLOON_F_DEFLATE_ON_OOM) | \
				 VIRTIO_FEATURE(VIRTIO_BALLOON_F_PAGE_REPORTING))

/* struct virtio_balloon_config: le32 num_pages, le32 actual, then two fields never negotiated. */
#define VIRTIO_BALLOON_CFG_NUM_PAGES	0
#define VIRTIO_BALLOON_CFG_ACTUAL	4

/* PFNs in inflate/deflate arrays are addresses >> 12, whatever the page size. */
#define VIRTIO_BALLOON_PFN_SHIFT	12

/* Memory statistics tags: 0-9 from the spec, 10-15 as Linux defines them. */
#define VIRTIO_BALLOON_S_SWAP_IN	0
#define VIRTIO_BALLOON_S_SWAP_OUT	1
#define VIRTIO_BALLOON_S_MAJFLT		2
#define VIRTIO_BALLOON_S_MINFLT		3
#define VIRTIO_BALLOON_S_MEMFREE	4
#define VIRTIO_BALLOON_S_MEMTOT		5
#define VIRTIO_BALLOON_S_AVAIL		6
#define VIRTIO_BALLOON_S_CACHES		7
#define VIRTIO_BALLOON_S_HTLB_PGALLOC	8
#define VIRTIO_BALLOON_S_HTLB_PGFAIL	9
#define VIRTIO_BALLOON_S_OOM_KILL	10
#define VIRTIO_BALLOON_S_ALLOC_STALL	11
#define VIRTIO_BALLOON_S_ASYNC_SCAN	12
#define VIRTIO_BALLOON_S_DIRECT_SCAN	13
#define VIRTIO_BALLOON_S_ASYNC_RECLAIM	14
#define VIRTIO_BALLOON_S_DIRECT_RECLAIM	15

/* One statistic: 10 bytes, packed, little-endian like x86. */
struct virtio_balloon_stat {
	uint16_t tag;
	uint64_t val;
} __attribute__((packed));

_Static_assert(sizeof(struct virtio_balloon_stat) == 10, "virtio_balloon_stat is 10 bytes");

/* ---- driver limits ---- */

#define BALLOON_PFNS_MAX	256	/* PFNs per inflate/deflate buffer (1 KiB) */
#define BALLOON_OOM_PAGES	256	/* pages one deflate-on-OOM takes back */
#define BALLOON_REPORT_SG	32	/* ranges per report buffer, at most */
#define BALLOON_REPORT_RANGE	512	/* pages per range at most: 2 MiB, never across a 2 MiB boundary */
#define BALLOON_NR_STATS	12	/* entries per stats buffer, see balloon.c */
#define BALLOON_WAIT_MS		5000	/* per buffer: generous, the host may be loaded */
#define BALLOON_RESET_MS	1000

/**
 * struct balloon_guest_stats - what the statsq tells the device, in its units
 * @majflt, @minflt: page faults (counts)
 * @memfree, @memtot, @avail, @caches: bytes
 * @oom_kills: count
 * @alloc_stall: balloon_alloc_page() calls that found the pool empty
 * @direct_scan: pages those stalls asked the balloon (deflate) for
 * @direct_reclaim: pages they got back that way
 * @async_scan: free pool pages balloon_report_free() looked at
 * @async_reclaim: pages it reported to the device
 *
 * The caller keeps @majflt .. @oom_kills current (the driver never writes
 * them); the driver adds to the last five, and the caller may add its own.
 * The values are read when the device asks for statistics. SWAP_IN/OUT and
 * the hugetlb tags are not supplied: the guests have neither.
 */
struct balloon_guest_stats {
	uint64_t majflt, minflt;
	uint64_t memfree, memtot, avail, caches;
	uint64_t oom_kills;
	uint64_t alloc_stall, direct_scan, direct_reclaim;
	uint64_t async_scan, async_reclaim;
};

/* struct balloon_op - the one buffer a queue may have in flight (private). */
struct balloon_op {
	bool busy;
	bool oom;		/* a deflate on OOM */
	int head;
	uint32_t n;		/* PFNs or ranges in the buffer */
	uint64_t pages;		/* pages it carries */
};

/**
 * struct balloon - one balloon device and the pool it manages
 * @dev: the device (probed by the caller or balloon_find())
 * @must_tell_host, @stats_vq, @deflate_on_oom, @reporting: negotiated
 * @report_writable: post reports as device-writable buffers instead of the
 *	default device-readable ones (the spec names no direction; Linux uses
 *	writable). Set before the first balloon_report_free().
 * @pool_start, @pool_end, @pool_pages: the pool
 * @nr_free: free pool pages
 * @nr_ballooned: pages in the balloon, acknowledged: what @actual says
 * @nr_inflight: pages in buffers the device has not used
 * @num_pages: the device's target, as last read
 * @num_pages_max: the largest target seen
 * @gstats: see struct balloon_guest_stats
 * @inflated, @deflated: pages the device acknowledged, whole run
 * @oom_deflated: of @deflated, taken back by balloon_alloc_page() with
 *	DEFLATE_ON_OOM while the target did not allow it
 * @reported: pages reported and acknowledged
 * @stats_updates: stats buffers refilled after the device used one
 * @config_changes: times num_pages was found changed
 * @config_irqs: configuration change interrupts (InterruptStatus bit 1)
 * @alloc_failed: balloon_alloc_page() calls that returned 0
 * @errors: failures: timeouts, refused steps, and device behaviour the
 *	spec does not allow (each logged, the first few on serial)
 *
 * Pair balloon_init() with balloon_finish(). The rest is private.
 */
struct balloon {
	struct virtio_dev *dev;
	bool must_tell_host, stats_vq, deflate_on_oom, reporting;
	bool report_writable;

	uint64_t pool_start, pool_end, pool_pages;
	uint64_t nr_free, nr_ballooned, nr_inflight;
	uint32_t num_pages, num_pages_max;

	struct balloon_guest_stats gstats;

	uint64_t inflated, deflated, oom_deflated, reported;
	uint64_t stats_updates, config_changes, config_irqs;
	uint64_t alloc_failed, errors;

	/* private */
	bool live;			/* DRIVER_OK set, queues usable */
	struct virtq inflateq, deflateq, statsq, reportq;
	uint64_t *free_map;		/* 1: free */
	uint64_t *balloon_map;		/* 1: ballooned and acknowledged */
	uint64_t *reported_map;		/* 1: free, reported, not used since */
	uint64_t words;			/* per bitmap */
	uint64_t alloc_hint;		/* no free page below this index */
	uint32_t *inflate_pfns, *deflate_pfns;
	struct virtio_balloon_stat *stats_buf;
	struct virtq_seg *report_segs;
	struct balloon_op inflate_op, deflate_op, stats_op, report_op;
	uint32_t gen;			/* ConfigGeneration with @num_pages */
	uint32_t actual;		/* last written */
	bool config_irq_seen;		/* InterruptStatus bit 1 since the last target read */
	unsigned int unexplained;	/* 1: a change still waiting for its interrupt; 2: failed */
	uint64_t unexplained_tsc;	/* when that change was seen */
	unsigned int logged, noted;
};

/**
 * balloon_meta_size() - bytes of @heap balloon_init() needs for a pool of @pool_bytes
 *
 * Rings, buffers and three bitmaps, with room for alignment.
 */
uint64_t balloon_meta_size(uint64_t pool_bytes);

/**
 * balloon_find() - probe the boot block's virtio windows for a balloon
 * @dev: filled in for the first window with DeviceID 5
 *
 * Return: 0; -VIRTIO_ENODEV if there is none (or no window at all).
 */
int balloon_find(struct virtio_dev *dev, const struct ovc_guest_boot *boot)
	__attribute__((warn_unused_result));

/**
 * balloon_init() - take over @dev and the pool [@pool_start, @pool_end)
 * @bd: caller-embedded; cleared first, except @bd->gstats, which the caller
 *	may fill beforehand for the first stats buffer
 * @dev: a probed balloon (balloon_find())
 * @heap: where rings, buffers and bitmaps come from (balloon_meta_size());
 *	must not overlap the pool
 * @pool_start, @pool_end: page aligned, non-empty, below 2^44 (le32 PFNs)
 * @features_wanted: balloon feature bits (BALLOON_FEATURES_ALL or a subset)
 *	plus optionally VIRTIO_F_EVENT_IDX; those the device offers are
 *	negotiated with VIRTIO_F_VERSION_1. The spec says a driver SHOULD
 *	accept MUST_TELL_HOST: leave it out only to test a device.
 *
 * The spec's initialisation: reset, ACKNOWLEDGE, DRIVER, features,
 * FEATURES_OK, the queues, a filled stats buffer added, DRIVER_OK, then the
 * stats buffer made available (kicked). Every pool page starts free, its
 * content undefined.
 *
 * Return: 0; -VIRTIO_EINVAL for bad arguments; -VIRTIO_ENOMEM if @heap is
 * too small; virtio_init()'s, virtq_setup()'s and virtio_driver_ok()'s
 * errors (the device is then marked FAILED).
 */
int balloon_init(struct balloon *bd, struct virtio_dev *dev, struct virtio_heap *heap,
		 uint64_t pool_start, uint64_t pool_end, uint64_t features_wanted)
	__attribute__((warn_unused_result));

/**
 * balloon_poll() - the balloon's work, called from the guest's main loop
 *
 * Takes pending interrupts, completes buffers the device has used, reads
 * num_pages and inflates or deflates toward it, BALLOON_PFNS_MAX pages per
 * buffer, waiting for each to be used, writing @actual after each; answers
 * a statistics request. Stops early at boot->stop and after a bounded number
 * of buffers, so callers keep polling boot->stop; the next call continues.
 *
 * Inflating stops when the pool has no free page left: the target may stay
 * out of reach (the spec's SHOULD).
 *
 * Return: pages moved (inflated + deflated), or a negative error (the work
 * done before it stands).
 */
int balloon_poll(struct balloon *bd);

/**
 * balloon_report_free() - free page reporting of up to @max_pages pool pages
 *
 * Reports free pages not reported since their last use, in contiguous ranges
 * of at most BALLOON_REPORT_RANGE pages, BALLOON_REPORT_SG ranges per buffer,
 * and waits for each buffer. Reported pages are free again afterwards, their
 * content lost: nothing in the driver relies on free page content.
 *
 * Return: pages reported; -VIRTIO_ENOTSUP without PAGE_REPORTING;
 * -VIRTIO_EAGAIN if an earlier report is still with the device; wait errors.
 */
int balloon_report_free(struct balloon *bd, uint64_t max_pages);

/**
 * balloon_alloc_page() - take a free pool page for the guest's own use
 *
 * When the pool is empty: counts an allocation stall, then deflates
 * (waiting for the device) if the target allows it (num_pages below the
 * balloon's size), or else with DEFLATE_ON_OOM (counted in @oom_deflated).
 *
 * Return: the page's guest-physical (= virtual) address, content undefined;
 * 0 if none could be had.
 */
uint64_t balloon_alloc_page(struct balloon *bd) __attribute__((warn_unused_result));

/**
 * balloon_free_page() - give back a page from balloon_alloc_page()
 *
 * Return: 0; -VIRTIO_EINVAL if @pa is not a used pool page.
 */
int balloon_free_page(struct balloon *bd, uint64_t pa);

/**
 * balloon_finish() - on the way out: complete what the device has used and
 *	write @actual a last time. The device stays live (no reset).
 *
 * Return: 0 or the @actual write's error.
 */
int balloon_finish(struct balloon *bd);

/**
 * balloon_check() - recount the bitmaps against the counters
 *
 * Return: 0; -VIRTIO_EPROTO (logged) if the driver's books disagree.
 */
int balloon_check(struct balloon *bd);

/* balloon_pool_free_bytes() - bytes of free pool pages. */
static inline uint64_t balloon_pool_free_bytes(const struct balloon *bd)
{
	return bd->nr_free * PAGE_SIZE;
}

#endif /* OVC_GUEST_BALLOON_H */

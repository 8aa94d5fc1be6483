/* SPDX-License-Identifier: MIT */
/* ovc/balloon.h: the virtio-balloon device of a VM and the controller that moves it to a target. */
#ifndef OVC_BALLOON_H
#define OVC_BALLOON_H

#include <stdbool.h>
#include <stdint.h>

#include <ovc/common.h>
#include <ovc/virtio.h>

#ifdef __cplusplus
extern "C" {
#endif

struct ovc_vm;
struct ovc_balloon;

/* Feature bits of the virtio balloon (virtio 1.x, 5.5.3). */
#define OVC_BALLOON_F_MUST_TELL_HOST	0
#define OVC_BALLOON_F_STATS_VQ		1
#define OVC_BALLOON_F_DEFLATE_ON_OOM	2
#define OVC_BALLOON_F_FREE_PAGE_HINT	3
#define OVC_BALLOON_F_PAGE_POISON	4
#define OVC_BALLOON_F_PAGE_REPORTING	5

/* What the device offers unless told otherwise. */
#define OVC_BALLOON_FEATURES_DEFAULT \
	(OVC_VIRTIO_FEATURE(OVC_BALLOON_F_MUST_TELL_HOST) | \
	 OVC_VIRTIO_FEATURE(OVC_BALLOON_F_STATS_VQ) | \
	 OVC_VIRTIO_FEATURE(OVC_BALLOON_F_DEFLATE_ON_OOM) | \
	 OVC_VIRTIO_FEATURE(OVC_BALLOON_F_PAGE_REPORTING))

/* Memory statistics tags: 0-9 from the specification, 10-15 Linux's. */
enum ovc_balloon_stat_tag {
	OVC_BALLOON_S_SWAP_IN = 0,
	OVC_BALLOON_S_SWAP_OUT,
	OVC_BALLOON_S_MAJFLT,
	OVC_BALLOON_S_MINFLT,
	OVC_BALLOON_S_MEMFREE,
	OVC_BALLOON_S_MEMTOT,
	OVC_BALLOON_S_AVAIL,
	OVC_BALLOON_S_CACHES,
	OVC_BALLOON_S_HTLB_PGALLOC,
	OVC_BALLOON_S_HTLB_PGFAIL,
	OVC_BALLOON_S_OOM_KILLS,
	OVC_BALLOON_S_ALLOC_STALL,
	OVC_BALLOON_S_ASYNC_SCAN,
	OVC_BALLOON_S_DIRECT_SCAN,
	OVC_BALLOON_S_ASYNC_RECLAIM,
	OVC_BALLOON_S_DIRECT_RECLAIM,
	OVC_BALLOON_S_NR
};

/**
 * typedef ovc_balloon_notify_fn - tell the guest the config (num_pages) changed
 * @opaque: from the configuration
 *
 * Only for a VMM that drives the balloon through its own transport; called
 * from the host's manager thread (host lock held) or from the thread calling
 * ovc_balloon_set_target(), so it must not call back into ovc. The VMM
 * raises the configuration-change interrupt of its transport.
 */
typedef void (*ovc_balloon_notify_fn)(void *opaque);

/**
 * struct ovc_balloon_config - how a VM's balloon behaves
 * @features: feature bits offered (OVC_BALLOON_F_*, as OVC_VIRTIO_FEATURE()
 *	bits); FREE_PAGE_HINT and PAGE_POISON are not supported
 * @max_fraction: the largest share of the VM's RAM the balloon may hold
 *	(0.65 by default, as ESX)
 * @step_bytes: the most num_pages moves per controller tick (64 MiB)
 * @stall_ms: a guest whose `actual` has not moved toward num_pages for this
 *	long is marked stalled (10000)
 * @stats_period_ms: how often the device asks the guest for statistics (1000;
 *	0: never)
 * @notify: for a VMM's own transport, see ovc_balloon_notify_fn; leave NULL
 *	with ovc_balloon_mmio()
 * @notify_opaque: passed to @notify
 *
 * Fill with ovc_balloon_config_init() first.
 */
struct ovc_balloon_config {
	uint64_t features;
	double max_fraction;
	uint64_t step_bytes;
	unsigned int stall_ms;
	unsigned int stats_period_ms;
	ovc_balloon_notify_fn notify;
	void *notify_opaque;
};

/**
 * struct ovc_balloon_stats - a balloon's state and what its guest did
 * @target_pages: where the scheduler wants the balloon (after the cap)
 * @num_pages: the device's num_pages now (the controller's step toward target)
 * @actual_pages: what the driver last wrote to `actual`
 * @ballooned_pages: guest pages BALLOONED in the page table now
 * @inflated: PFNs accepted from the inflate queue
 * @deflated: PFNs accepted from the deflate queue
 * @reported_pages: pages released through free page reporting
 * @touched: guest accesses to ballooned pages (each got a zero page)
 * @bad_pfn: PFNs outside guest RAM (inflate, deflate)
 * @dup_pfn: inflated PFNs already ballooned, or repeated in one request
 * @bad_deflate: deflated PFNs that were not ballooned
 * @misaligned: PFN lists ending partway through a PFN, statistics buffers
 *	ending partway through an entry, report ranges not page aligned
 * @bad_requests: descriptor chains of the wrong direction or shape
 * @stalled: the guest is not following num_pages (see stall_ms)
 * @stalls: times @stalled was set
 * @stats_updates: statistics buffers received
 * @stats_at_ns: CLOCK_MONOTONIC time of the last statistics buffer
 * @stats_valid: bit n set when tag n was in it
 * @stats: the values, by tag
 * @features: the features the driver accepted (0 before DRIVER_OK)
 * @inflate_ns: host time spent taking inflated pages (the device's own cost)
 * @deflate_ns: host time spent on deflated pages
 * @settle_ns: how long the guest took from the last change of num_pages to
 *	writing an equal `actual` (0 while it has not)
 * @move_errors: pages the device could not move (a failed hole punch: the
 *	page stayed as it was, the error is logged)
 */
struct ovc_balloon_stats {
	uint64_t target_pages;
	uint64_t num_pages;
	uint64_t actual_pages;
	uint64_t ballooned_pages;
	uint64_t inflated;
	uint64_t deflated;
	uint64_t reported_pages;
	uint64_t touched;
	uint64_t bad_pfn;
	uint64_t dup_pfn;
	uint64_t bad_deflate;
	uint64_t misaligned;
	uint64_t bad_requests;
	bool stalled;
	uint64_t stalls;
	uint64_t stats_updates;
	uint64_t stats_at_ns;
	uint32_t stats_valid;
	uint64_t stats[OVC_BALLOON_S_NR];
	uint64_t features;
	uint64_t inflate_ns;
	uint64_t deflate_ns;
	uint64_t settle_ns;
	uint64_t move_errors;
};

/**
 * ovc_balloon_config_init() - fill a balloon configuration with the defaults
 * @cfg: the configuration
 */
OVC_EXPORT void ovc_balloon_config_init(struct ovc_balloon_config *cfg);

/**
 * ovc_vm_add_balloon() - give @vm a virtio-balloon device and its controller
 * @vm: the VM, its RAM added
 * @cfg: NULL for the defaults
 *
 * The device changes @vm's page table: inflated pages become BALLOONED (their
 * memory released), deflated ones ZERO, reported free pages ZERO. The host's
 * manager thread moves num_pages toward the target each tick.
 * Pair with ovc_balloon_remove(); ovc_vm_destroy() refuses while it lives.
 *
 * Return: the balloon, or NULL with errno: EINVAL, EEXIST (one per VM), ENOMEM.
 * Context: any thread; takes the host lock.
 */
OVC_EXPORT struct ovc_balloon *ovc_vm_add_balloon(struct ovc_vm *vm,
						  const struct ovc_balloon_config *cfg);

/**
 * ovc_balloon_remove() - stop the controller and free the device (and its transport)
 * @b: the balloon
 *
 * Ballooned pages stay BALLOONED (a guest touching them gets zero pages).
 * Context: any thread but the manager; no vCPU may be inside the device.
 * Return: 0 or -EINVAL.
 */
OVC_EXPORT int ovc_balloon_remove(struct ovc_balloon *b);

/**
 * ovc_balloon_virtio_ops - the device, for a VMM's own virtio transport
 *
 * The device opaque is the struct ovc_balloon *. Four queues: inflateq,
 * deflateq, then statsq and reporting_vq, numbered in that order among the
 * negotiated ones. Set @notify in the configuration so the controller can
 * raise the configuration-change interrupt.
 */
OVC_EXPORT extern const struct ovc_virtio_device_ops ovc_balloon_virtio_ops;

/**
 * ovc_balloon_mmio() - the balloon behind ovc's virtio-mmio transport
 * @b: the balloon
 * @irq: raises the device's interrupt (e.g. writes a KVM irqfd)
 * @irq_opaque: passed to @irq
 *
 * The transport sees the VM's RAM ranges; the balloon owns and serializes it:
 * route the guest's accesses to its window through ovc_balloon_mmio_access().
 * Return: 0, -EEXIST (already made), -EINVAL, -ENOMEM.
 * Context: any thread, before the guest runs.
 */
OVC_EXPORT int ovc_balloon_mmio(struct ovc_balloon *b, ovc_virtio_irq_fn irq, void *irq_opaque);

/**
 * ovc_balloon_transport() - the transport ovc_balloon_mmio() made, for its counters
 * @b: the balloon
 *
 * Return: the transport or NULL. Only ovc_virtio_mmio_get_stats() may be
 * called on it; every access goes through ovc_balloon_mmio_access().
 */
OVC_EXPORT struct ovc_virtio_mmio *ovc_balloon_transport(struct ovc_balloon *b);

/**
 * ovc_balloon_mmio_access() - one guest access to the balloon's MMIO window
 * @b: the balloon, with ovc_balloon_mmio() done
 * @offset: from the start of the window
 * @data: in or out, @len bytes (1, 2, 4 or 8)
 * @len: access width
 * @is_write: direction
 *
 * Context: a vCPU thread (MMIO exit); takes the balloon's transport lock; may
 * change page states (and wait briefly for pages under another transition).
 * Return: 0, or -EINVAL for caller bugs (a bad guest access is counted and
 * reads as zeros).
 */
OVC_EXPORT int ovc_balloon_mmio_access(struct ovc_balloon *b, uint64_t offset, void *data,
				       unsigned int len, bool is_write);

/**
 * ovc_balloon_set_target() - how much of the VM's RAM the balloon should hold
 * @b: the balloon
 * @bytes: the target, rounded down to pages and capped at max_fraction
 *
 * num_pages takes its first step toward it at once (the guest is told),
 * and the following ones on the manager's ticks.
 * Context: any thread but the manager (it may call the notify callback);
 * takes the balloon's locks. Return: 0 or -EINVAL.
 */
OVC_EXPORT int ovc_balloon_set_target(struct ovc_balloon *b, uint64_t bytes);

/**
 * ovc_balloon_get_stats() - copy out the balloon's state
 * @b: the balloon
 * @st: filled in
 *
 * Context: any thread. Return: 0 or -EINVAL.
 */
OVC_EXPORT int ovc_balloon_get_stats(struct ovc_balloon *b, struct ovc_balloon_stats *st);

/**
 * ovc_balloon_stat_name() - the name of a statistics tag ("swap-in", ...)
 * @tag: an enum ovc_balloon_stat_tag
 *
 * Return: a static string; "unknown" for other values.
 */
OVC_EXPORT const char *ovc_balloon_stat_name(int tag);

#ifdef __cplusplus
}
#endif

#endif /* OVC_BALLOON_H */

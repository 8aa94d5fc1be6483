/* SPDX-License-Identifier: MIT */
/* Guest page states and the per-VM memory counters kept by the core. */
#ifndef OVC_CORE_H
#define OVC_CORE_H

#include <stdint.h>
#include <ovc/common.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Most RAM one VM may register, in bytes (sum of its ranges). */
#define OVC_VM_RAM_MAX (4ULL << 40)
/** Guest-physical addresses must lie below this (52-bit physical space). */
#define OVC_GPA_LIMIT (1ULL << 52)
/** Most RAM ranges one VM may register. */
#define OVC_VM_RAM_RANGES_MAX 16

/**
 * enum ovc_page_state - where a guest page's contents are
 * @OVC_PAGE_ZERO: nowhere: a hole that reads as zeros (never written, or a
 *	discarded zero page). A fault maps a zero-filled page.
 * @OVC_PAGE_RESIDENT: in the VM's memfd; the guest accesses it directly.
 * @OVC_PAGE_BALLOONED: given up by the guest's balloon driver; a fault maps
 *	a zero-filled page and is counted as a guest bug.
 * @OVC_PAGE_SHARED: in a sharing-pool page (dedup).
 * @OVC_PAGE_COMPRESSED: in the compressed tier.
 * @OVC_PAGE_SWAPPED: in a swap-file slot.
 * @OVC_PAGE_IMAGE: in a saved image being restored lazily (ovc_vm_restore()):
 *	read from the file on first touch or by the restore's streaming thread.
 *
 * ZERO is 0 so that a page table that was never written reads as all holes.
 */
enum ovc_page_state {
	OVC_PAGE_ZERO = 0,
	OVC_PAGE_RESIDENT = 1,
	OVC_PAGE_BALLOONED = 2,
	OVC_PAGE_SHARED = 3,
	OVC_PAGE_COMPRESSED = 4,
	OVC_PAGE_SWAPPED = 5,
	OVC_PAGE_IMAGE = 6,
	OVC_PAGE_NR_STATES
};

/**
 * enum ovc_fault_kind - how the fault engine served a userfaultfd fault
 * @OVC_FAULT_ZERO: missing page in state ZERO, served a zero page
 * @OVC_FAULT_BALLOONED: missing page in state BALLOONED (guest touched a
 *	page it had given up), served a zero page
 * @OVC_FAULT_STORE: missing page whose contents came from a store
 *	(compressed tier, swap, sharing pool)
 * @OVC_FAULT_WP: write to a write-protected resident page, released
 * @OVC_FAULT_WAIT: the page was under a transition; the faulting thread
 *	waited and retried after it ended
 * @OVC_FAULT_SPURIOUS: already resolved by another handler; woken only
 * @OVC_FAULT_ERROR: could not be served (store error: fatal for the page)
 * @OVC_FAULT_MINOR: first access to a resident page armed for reference
 *	tracking (working-set sampling, the pager's reference scan); mapped
 *	again in place, contents untouched
 */
enum ovc_fault_kind {
	OVC_FAULT_ZERO,
	OVC_FAULT_BALLOONED,
	OVC_FAULT_STORE,
	OVC_FAULT_WP,
	OVC_FAULT_WAIT,
	OVC_FAULT_SPURIOUS,
	OVC_FAULT_ERROR,
	OVC_FAULT_MINOR,
	OVC_FAULT_NR_KINDS
};

/** Bucket i of the fault service histogram counts times in [2^i, 2^(i+1)) ns. */
#define OVC_FAULT_HIST_BUCKETS 40

/**
 * struct ovc_mem_stats - a VM's memory counters, copied out at one moment
 * @ram_bytes: guest RAM registered with ovc_vm_add_ram()
 * @pages: pages per enum ovc_page_state
 * @busy_pages: pages under a transition right now
 * @faults: faults per enum ovc_fault_kind
 * @fault_ns_hist: service time of served faults (read of the fault message to
 *	the page being in place), log2 buckets of nanoseconds
 * @transitions_committed: page transitions committed
 * @transitions_aborted: page transitions aborted (page left where it was)
 * @store_errors: store loads that failed (each also counted in faults)
 * @host_bytes: host memory the VM's RAM holds now (the memfds' allocated
 *	blocks: what ballooning, sharing and paging give back shows here)
 */
struct ovc_mem_stats {
	uint64_t ram_bytes;
	uint64_t pages[OVC_PAGE_NR_STATES];
	uint64_t busy_pages;
	uint64_t faults[OVC_FAULT_NR_KINDS];
	uint64_t fault_ns_hist[OVC_FAULT_HIST_BUCKETS];
	uint64_t transitions_committed;
	uint64_t transitions_aborted;
	uint64_t store_errors;
	uint64_t host_bytes;
};

/**
 * typedef ovc_fatal_fn - a guest page's contents are lost
 *
 * Called from a fault-engine thread after a store's load failed for @gfn with
 * @err, just before the page is poisoned (any access then gets SIGBUS; a vCPU
 * thread gets it inside KVM_RUN, BUS_MCEERR_AR). The VMM decides what happens
 * to the VM.
 * Runs inside the engine's RCU read-side section with the page BUSY: must not
 * block long, touch guest RAM, or destroy the VM (defer that to another thread).
 */
typedef void (*ovc_fatal_fn)(void *opaque, uint64_t gfn, int err);

/**
 * ovc_page_state_name() - the lower-case name of a page state
 * @state: an enum ovc_page_state
 *
 * Return: a static string ("zero", "resident", ...), "invalid" otherwise.
 * Context: any thread, no locks.
 */
OVC_EXPORT const char *ovc_page_state_name(int state);

/**
 * ovc_fault_kind_name() - the lower-case name of a fault kind
 * @kind: an enum ovc_fault_kind
 *
 * Return: a static string, "invalid" for an unknown kind.
 * Context: any thread, no locks.
 */
OVC_EXPORT const char *ovc_fault_kind_name(int kind);

/**
 * ovc_mem_stats_fault_quantile_ns() - a quantile of fault service time
 * @st: counters from ovc_vm_get_mem_stats()
 * @q: the quantile, 0.0 to 1.0 (0.5 is the median)
 *
 * Interpolates within the log2 bucket, so the result is an estimate good to
 * the bucket's width.
 *
 * Return: nanoseconds, or 0 when no fault was served.
 * Context: any thread, no locks; pure function.
 */
OVC_EXPORT uint64_t ovc_mem_stats_fault_quantile_ns(const struct ovc_mem_stats *st,
						    double q);

#ifdef __cplusplus
}
#endif

#endif /* OVC_CORE_H */

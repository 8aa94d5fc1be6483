/* SPDX-License-Identifier: MIT */
/* ovc/pager.h: hypervisor paging of a VM's memory to a compressed tier and a swap file. */
#ifndef OVC_PAGER_H
#define OVC_PAGER_H

#include <stdbool.h>
#include <stdint.h>

#include <ovc/common.h>

#ifdef __cplusplus
extern "C" {
#endif

struct ovc_vm;
struct ovc_pager;

/**
 * struct ovc_pager_config - where a VM's paged-out memory goes
 * @zip_cap_bytes: host RAM the compressed tier may use (0: no tier)
 * @zip_max_bytes: a page that compresses to more than this goes to disk
 *	(2048, as ESX)
 * @swap_dir: directory of the swap file (NULL: no disk tier)
 * @swap_bytes: size of the swap file, allocated up front
 * @encrypt: encrypt swap slots (AEAD, a key held only in memory)
 * @batch: pages taken per transition while reclaiming (64)
 * @prefetch_max: when faults on swapped pages follow a sequence or a stride,
 *	bring back up to this many of the next pages ahead of the guest
 *	(8; 0: no prefetch)
 * @ref_scan: the CLOCK hand arms the resident pages it passes and leaves,
 *	so that their next access faults once (a minor fault, contents in
 *	place) and marks them referenced: pages the guest uses without
 *	faulting are kept (true; false: only served faults mark pages
 *	referenced; without minor faults in the kernel it does nothing)
 *
 * Fill with ovc_pager_config_init() first.
 */
struct ovc_pager_config {
	uint64_t zip_cap_bytes;
	uint32_t zip_max_bytes;
	const char *swap_dir;
	uint64_t swap_bytes;
	bool encrypt;
	unsigned int batch;
	unsigned int prefetch_max;
	bool ref_scan;
};

/**
 * struct ovc_pager_result - what one ovc_pager_reclaim() did
 * @scanned: resident pages looked at
 * @referenced: pages spared because they were used since the last pass
 * @zero: pages found all zero (now ZERO: no memory, no storage)
 * @compressed: pages now COMPRESSED
 * @swapped: pages now SWAPPED
 * @busy: pages skipped because another transition held them
 * @errors: pages left RESIDENT because a store failed (counted, backed off)
 */
struct ovc_pager_result {
	uint64_t scanned;
	uint64_t referenced;
	uint64_t zero;
	uint64_t compressed;
	uint64_t swapped;
	uint64_t busy;
	uint64_t errors;
};

/**
 * struct ovc_pager_stats - a pager's totals
 * @reclaimed: pages made non-resident (zero + compressed + swapped)
 * @zero, @compressed, @swapped: by destination
 * @evicted: compressed pages moved on to the swap file (the tier was full)
 * @store_errors: page-outs refused by a store (pages stayed resident)
 * @zip_pages, @zip_bytes: pages in the compressed tier and host bytes it uses
 * @swap_pages: pages in the swap file
 * @swap_slots: slots the swap file has
 * @prefetched: pages brought back ahead of the guest
 */
struct ovc_pager_stats {
	uint64_t reclaimed;
	uint64_t zero;
	uint64_t compressed;
	uint64_t swapped;
	uint64_t evicted;
	uint64_t store_errors;
	uint64_t zip_pages;
	uint64_t zip_bytes;
	uint64_t swap_pages;
	uint64_t swap_slots;
	uint64_t prefetched;
};

/**
 * ovc_pager_config_init() - the defaults: a 64 MiB compressed tier, no swap file
 * @cfg: filled in
 */
OVC_EXPORT void ovc_pager_config_init(struct ovc_pager_config *cfg);

/**
 * ovc_vm_add_pager() - let ovc page @vm's memory out
 * @vm: the VM, its RAM added
 * @cfg: NULL for the defaults
 *
 * Registers the compressed tier and the swap file as the stores of @vm's
 * COMPRESSED and SWAPPED pages; the fault engine pages them back in on touch.
 * The pager lives as long as the VM: ovc_vm_destroy() frees it.
 *
 * Return: the pager, or NULL with errno: EINVAL, EEXIST (one per VM), EBUSY
 * (the VM already has stores for those states), or what creating the swap
 * file failed with.
 * Context: any thread; takes the host lock.
 */
OVC_EXPORT struct ovc_pager *ovc_vm_add_pager(struct ovc_vm *vm,
					      const struct ovc_pager_config *cfg);

/**
 * ovc_pager_reclaim() - make up to @npages resident pages of the VM non-resident, coldest first
 * @p: the pager
 * @npages: how many; the pager never decides this itself
 * @res: what it did (may be NULL)
 *
 * A CLOCK hand sweeps the VM's RAM: a page used since the hand last passed
 * is spared once; a page under another transition is skipped. Use is seen
 * through faults: served ones, and with @ref_scan the one minor fault of each
 * page the hand armed when it last passed; the working-set sampler's
 * findings feed it too. Zero pages
 * become ZERO; others go to the compressed tier, or to the swap file when
 * they compress badly or the tier is full (the tier first moves its own
 * oldest pages to the swap file). A store failure leaves the page RESIDENT.
 *
 * Context: any thread but a fault-engine thread; one reclaim per pager at a
 * time (serialized inside). Return: pages made non-resident, or -EINVAL.
 */
OVC_EXPORT int64_t ovc_pager_reclaim(struct ovc_pager *p, uint64_t npages,
				     struct ovc_pager_result *res);

/**
 * ovc_pager_get_stats() - copy out the pager's totals
 * @p: the pager
 * @st: filled in
 *
 * Context: any thread. Return: 0 or -EINVAL.
 */
OVC_EXPORT int ovc_pager_get_stats(struct ovc_pager *p, struct ovc_pager_stats *st);

#ifdef __cplusplus
}
#endif

#endif /* OVC_PAGER_H */

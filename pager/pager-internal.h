/* SPDX-License-Identifier: MIT */
/* pager/: the pager's internal objects: the reclaim state and its two stores. */
#ifndef OVC_PAGER_INTERNAL_H
#define OVC_PAGER_INTERNAL_H

#include <pthread.h>

#include <ovc/pager.h>
#include "core/core-internal.h"
#include "pager/swapfile.h"
#include "pager/zstore.h"

/**
 * struct ovc_pager - one VM's pager
 *
 * Locks: @lock serializes reclaims and protects everything below it; the
 * stores have their own locks (taken inside, and by fault-engine threads).
 */
struct ovc_pager {
	struct ovc_ram *ram;
	const struct ovc_log *log;
	struct ovc_pager_config cfg;
	struct ovc_zstore *zip;		/* NULL: no compressed tier */
	struct ovc_swapfile *swap;	/* NULL: no swap file */

	pthread_mutex_t lock;		/* protects all below */
	unsigned int hand_region;	/* the CLOCK hand: range and page in it */
	uint64_t hand_off;
	bool evicting;			/* the tier is being drained to disk */
	struct ovc_xact x;
	struct ovc_xact *evict_x;	/* single-page transitions for eviction */
	uint64_t *bufs;			/* batch pages, page aligned */
	struct {
		uint64_t zero, compressed, swapped, evicted, store_errors;
	} ctr;

	/*
	 * Prefetch: fault-engine threads record faults on swapped pages in
	 * @pf_lock's fields and wake the prefetcher thread, which brings the
	 * predicted pages back with transitions of its own.
	 */
	struct ovc_store_ops swap_ops;	/* the swap file's, with the fault recorded */
	pthread_t pf_thread;
	bool pf_running;
	pthread_mutex_t pf_lock;	/* protects the fields below */
	pthread_cond_t pf_cond;
	bool pf_stop;
	uint64_t pf_last, pf_stride;	/* the last swapped fault and its step */
	unsigned int pf_run;		/* faults in a row at that step */
	uint64_t pf_next, pf_count;	/* requested: @pf_count pages from @pf_next by @pf_stride */
	int64_t pf_step;
	_Atomic uint64_t prefetched;	/* ATOMIC */
	struct ovc_xact *pf_x;
	uint64_t *pf_bufs;
};

struct ovc_pager *ovc__pager_new(struct ovc_ram *ram, const struct ovc_log *log,
				 const struct ovc_pager_config *cfg);
/* Stop the pager's own thread; before the RAM goes (it takes transitions). */
void ovc__pager_stop(struct ovc_pager *p);
/* Only once the RAM it served is gone (nothing refers to its stores). */
void ovc__pager_destroy(struct ovc_pager *p);

/*
 * A lazy restore (pager/snapshot.c): stop its streaming thread before the
 * RAM goes (it takes transitions); destroy it once the RAM is gone.
 */
struct ovc_snap;
void ovc__snap_stop(struct ovc_snap *s);
void ovc__snap_destroy(struct ovc_snap *s);

#endif /* OVC_PAGER_INTERNAL_H */

/* SPDX-License-Identifier: MIT */
/* stats/wss.h: the working-set sampler of one VM (internal API for host/). */
#ifndef OVC_STATS_WSS_H
#define OVC_STATS_WSS_H

#include <stdbool.h>
#include <stdint.h>

#include <ovc/stats.h>
#include "core/core-internal.h"

/* Weights of a new period in the fast and slow moving averages. */
#define OVC_WSS_FAST_WEIGHT 0.5
#define OVC_WSS_SLOW_WEIGHT 0.125
#define OVC_WSS_SAMPLES_MAX 65536

/*
 * struct ovc_wss_sampler - ESX-style working-set sampling of one VM's RAM.
 *
 * Each period it arms @samples random RESIDENT pages (ARMED|SAMPLED: their
 * next access is a minor fault that clears SAMPLED); at the period's end it
 * counts the sampled pages whose SAMPLED bit went, and adds the faults that
 * brought non-resident pages back meanwhile. See docs/stats.md.
 *
 * Not thread-safe: the owner serializes every call (host/: host->lock).
 */
struct ovc_wss_sampler;

/*
 * Create a sampler of @samples pages (1..OVC_WSS_SAMPLES_MAX) per
 * @period_ns. @seed seeds its random choices. NULL with errno (EINVAL,
 * ENOMEM).
 */
struct ovc_wss_sampler *ovc__wss_new(unsigned int samples, uint64_t period_ns,
				     uint64_t seed);

/* Free it; sampled pages keep their bits (a later touch just faults once). */
void ovc__wss_free(struct ovc_wss_sampler *w);

/*
 * ovc__wss_tick - advance the sampler to @now (CLOCK_MONOTONIC ns)
 *
 * The first call starts a period; a call at or after the end of a period
 * (less @slack_ns: half the caller's own period, so that a period as long
 * as the caller's is not stretched to two by jitter) finishes it, folds it into the averages, writes @out and starts the next.
 * Return true when @out was written.
 * Context: any thread but a fault-engine thread; never waits for BUSY pages.
 */
bool ovc__wss_tick(struct ovc_wss_sampler *w, struct ovc_ram *ram, uint64_t now,
		   uint64_t slack_ns, struct ovc_wss_snap *out);

/*
 * ovc__wss_estimate - the estimator on its own (exposed for tests)
 * @sampled, @touched: sampled resident pages and those touched
 * @resident: resident pages when the period began
 * @refaults: faults that made non-resident pages resident during the period
 * @npages: the VM's pages
 *
 * Return the active fraction of the VM's memory in [0, 1]:
 * (touched / sampled * resident + min(refaults, npages - resident)) / npages.
 */
double ovc__wss_estimate(uint64_t sampled, uint64_t touched, uint64_t resident,
			 uint64_t refaults, uint64_t npages);

#endif /* OVC_STATS_WSS_H */

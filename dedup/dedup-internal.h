/* SPDX-License-Identifier: MIT */
/* dedup/: the sharing scanner, its pool and content index (internal API). */
#ifndef OVC_DEDUP_INTERNAL_H
#define OVC_DEDUP_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include <ovc/dedup.h>
#include "core/core-internal.h"

struct ovc_dedup;
struct ovc_dedup_member;

/*
 * ovc__dedup_new - a sharing pool, content index and (with @thread) the
 * scanner thread. NULL with errno set. Pair with ovc__dedup_destroy() once
 * every member is forgotten.
 */
struct ovc_dedup *ovc__dedup_new(const struct ovc_log *log,
				 const struct ovc_dedup_config *cfg, bool thread);
void ovc__dedup_destroy(struct ovc_dedup *d);

/* Pool pages the host holds now (the pool memfd's allocated blocks). */
uint64_t ovc__dedup_pool_pages(struct ovc_dedup *d);
/* VMAs sharing adds over all members now, and the budget. */
void ovc__dedup_vmas(struct ovc_dedup *d, uint64_t *vmas, uint64_t *budget);

int ovc__dedup_set_cpu_budget(struct ovc_dedup *d, unsigned int permille);
int64_t ovc__dedup_scan(struct ovc_dedup *d, uint64_t max_pages);

/*
 * ovc__dedup_join - make @ram a member (scanning off, private group) and the
 * pool the store of its SHARED pages. NULL with errno set (EBUSY: the RAM
 * has another SHARED store).
 */
struct ovc_dedup_member *ovc__dedup_join(struct ovc_dedup *d, struct ovc_ram *ram);
void ovc__dedup_enable(struct ovc_dedup_member *m, bool on);
int ovc__dedup_set_group(struct ovc_dedup_member *m, const char *group);
void ovc__dedup_get_stats(struct ovc_dedup_member *m, struct ovc_dedup_stats *st);

/*
 * Leaving, in two steps around the fault engine's detach of the RAM:
 * ovc__dedup_leave() stops the scanner touching it; ovc__dedup_forget() (no
 * fault served any more, RAM not yet freed) drops its pool references and
 * frees the member.
 */
void ovc__dedup_leave(struct ovc_dedup_member *m);
void ovc__dedup_forget(struct ovc_dedup_member *m);

#endif /* OVC_DEDUP_INTERNAL_H */

/* SPDX-License-Identifier: MIT */
/* tests/kit/oracle.h: the integrity oracle: accessors verify every page while chaos moves them. */
#ifndef OVC_KIT_ORACLE_H
#define OVC_KIT_ORACLE_H

#include <stdbool.h>
#include <stdatomic.h>
#include <stdint.h>

#include <ovc/ovc.h>

/**
 * struct oracle_config - one oracle run
 * @accessors: host threads reading and writing guest pages as vCPUs would
 * @npages: guest pages exercised (one RAM range)
 * @min_accesses: run until at least this many page accesses...
 * @seconds: ...and at least this long
 * @max_seconds: stop here whatever the counts (a safety net)
 * @write_pct: accesses that write a new version of the page
 * @zero_pct: accesses that write the page back to all zeros
 * @chaos: run the chaos thread (random transitions through the real API)
 * @chaos_rate: pages per second chaos takes through transitions (0: as fast
 *	as it can)
 * @same_content: pages of the same version hold the same bytes (so a
 *	mechanism sharing identical pages finds many), instead of bytes
 *	that also name the page
 * @seed: seeds every thread's generator
 * @side: run in a thread of its own next to the accessors (e.g. a
 *	mechanism under test reclaiming pages) until *stop is true; the VM
 *	and its RAM exist when it starts, and it must stop touching the VM
 *	when it returns
 * @side_opaque: passed to @side
 */
struct oracle_config {
	unsigned int accessors;
	uint64_t npages;
	uint64_t min_accesses;
	double seconds;
	double max_seconds;
	unsigned int write_pct;
	unsigned int zero_pct;
	bool chaos;
	uint64_t chaos_rate;
	bool same_content;
	uint64_t seed;
	void (*side)(struct ovc_vm *vm, void *opaque, const _Atomic bool *stop);
	void *side_opaque;
};

struct oracle_result {
	uint64_t accesses;
	uint64_t writes;
	uint64_t transitions;	/* page transitions committed by chaos */
	uint64_t aborts;	/* page transitions chaos aborted */
	uint64_t busy;		/* chaos begins refused: page busy */
	uint64_t armed;		/* resident pages chaos armed outside transitions */
	uint64_t corrupt;	/* verifications that failed (incl. final sweep) */
	uint64_t store_leaks;	/* stored pages no entry refers to at the end */
	double seconds;
	struct ovc_mem_stats mem;
};

void oracle_config_init(struct oracle_config *cfg);

/* Run on a fresh VM of @host (created and destroyed here). 0 or -errno. */
int oracle_run(struct ovc_host *host, const struct oracle_config *cfg,
	       struct oracle_result *res);

void oracle_print(const struct oracle_result *res, FILE *out);

#endif /* OVC_KIT_ORACLE_H */

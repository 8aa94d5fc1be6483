// SPDX-License-Identifier: MIT
/* stats/wss.c: working-set estimation by sampling: armed random pages, touched or not. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "stats/wss.h"

#define DRAWS_PER_SAMPLE 4	/* random draws before a full scan picks the rest */

struct ovc_wss_sampler {
	unsigned int samples;
	uint64_t period_ns;
	uint64_t rng;

	/* The period under way. */
	bool running;
	uint64_t start_ns;
	uint64_t resident0;		/* RESIDENT pages when it began */
	uint64_t refaults0;		/* zero + ballooned + store faults then */
	unsigned int nsampled;
	uint64_t *gfns;			/* @samples entries */
	uint64_t *set;			/* open addressing, @set_mask + 1 slots, 0 empty */
	uint64_t set_mask;

	/* Folded periods. */
	uint64_t periods;
	double fast, slow;
};

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

struct ovc_wss_sampler *ovc__wss_new(unsigned int samples, uint64_t period_ns,
				     uint64_t seed)
{
	struct ovc_wss_sampler *w;
	uint64_t slots = 1;

	if (!samples || samples > OVC_WSS_SAMPLES_MAX || !period_ns) {
		errno = EINVAL;
		return NULL;
	}
	while (slots < 2ULL * samples)
		slots <<= 1;
	w = calloc(1, sizeof(*w));
	if (!w)
		return NULL;
	w->gfns = calloc(samples, sizeof(*w->gfns));
	w->set = calloc(slots, sizeof(*w->set));
	if (!w->gfns || !w->set) {
		ovc__wss_free(w);
		errno = ENOMEM;
		return NULL;
	}
	w->samples = samples;
	w->period_ns = period_ns;
	w->set_mask = slots - 1;
	w->rng = seed * 0x9e3779b97f4a7c15ULL | 1;
	return w;
}

void ovc__wss_free(struct ovc_wss_sampler *w)
{
	if (!w)
		return;
	free(w->gfns);
	free(w->set);
	free(w);
}

/* Add @gfn to this period's set; false when it is there already. */
static bool set_add(struct ovc_wss_sampler *w, uint64_t gfn)
{
	uint64_t key = gfn + 1, i = (key * 0x9e3779b97f4a7c15ULL) >> 20;

	for (;; i++) {
		uint64_t *slot = &w->set[i & w->set_mask];

		if (*slot == key)
			return false;
		if (!*slot) {
			*slot = key;
			return true;
		}
	}
}

static uint64_t ram_pages(struct ovc_ram *ram)
{
	return __atomic_load_n(&ram->total_bytes, __ATOMIC_RELAXED) >> OVC_PAGE_SHIFT;
}

/* The gfn of the @at-th page of the RAM, ranges in order. */
static bool nth_gfn(struct ovc_ram *ram, uint64_t at, uint64_t *gfn)
{
	unsigned int i, n = atomic_load_explicit(&ram->nregions, memory_order_acquire);

	for (i = 0; i < n; i++) {
		const struct ovc_region *rg = &ram->regions[i];

		if (at < rg->npages) {
			*gfn = rg->gfn0 + at;
			return true;
		}
		at -= rg->npages;
	}
	return false;
}

static uint64_t refaults(struct ovc_ram *ram)
{
	return atomic_load_explicit(&ram->faults[OVC_FAULT_ZERO], memory_order_relaxed) +
	       atomic_load_explicit(&ram->faults[OVC_FAULT_BALLOONED], memory_order_relaxed) +
	       atomic_load_explicit(&ram->faults[OVC_FAULT_STORE], memory_order_relaxed);
}

static void try_sample(struct ovc_wss_sampler *w, struct ovc_ram *ram, uint64_t gfn)
{
	_Atomic uint64_t *pte = ovc__ram_pte(ram, gfn);

	if (!pte || ovc__pte_state(atomic_load_explicit(pte, memory_order_relaxed)) !=
		    OVC_PAGE_RESIDENT)
		return;
	if (!set_add(w, gfn))
		return;
	/* Busy (under a transition) or gone meanwhile: not sampled this period. */
	if (ovc__ram_arm(ram, gfn, OVC_ARM_SAMPLE))
		return;
	w->gfns[w->nsampled++] = gfn;
}

/* Pick and arm up to @samples random resident pages. */
static void start_period(struct ovc_wss_sampler *w, struct ovc_ram *ram, uint64_t now)
{
	uint64_t npages = ram_pages(ram), draws, gfn, i, seen, want;

	memset(w->set, 0, (w->set_mask + 1) * sizeof(*w->set));
	w->nsampled = 0;
	w->start_ns = now;
	w->running = true;
	w->resident0 = atomic_load_explicit(&ram->pages[OVC_PAGE_RESIDENT], memory_order_relaxed);
	w->refaults0 = refaults(ram);
	if (!npages || !w->resident0)
		return;
	/* Uniform draws over the RAM; cheap while most pages are resident. */
	for (draws = 0; draws < (uint64_t)DRAWS_PER_SAMPLE * w->samples &&
	     w->nsampled < w->samples; draws++) {
		if (nth_gfn(ram, rnd(&w->rng) % npages, &gfn))
			try_sample(w, ram, gfn);
	}
	if (w->nsampled == w->samples)
		return;
	/*
	 * Few resident pages: choose the rest uniformly among them with one
	 * pass (selection sampling over the pages not drawn yet).
	 */
	want = w->samples - w->nsampled;
	seen = 0;
	for (i = 0; i < npages && want; i++) {
		_Atomic uint64_t *pte;
		uint64_t left;

		if (!nth_gfn(ram, i, &gfn))
			break;
		pte = ovc__ram_pte(ram, gfn);
		if (ovc__pte_state(atomic_load_explicit(pte, memory_order_relaxed)) !=
		    OVC_PAGE_RESIDENT)
			continue;
		seen++;
		/* Resident pages still ahead, this one included (an estimate: pages move). */
		left = w->resident0 > seen ? w->resident0 - seen + 1 : 1;
		if (rnd(&w->rng) % left < want) {
			unsigned int before = w->nsampled;

			try_sample(w, ram, gfn);
			if (w->nsampled > before)
				want--;
		}
	}
}

double ovc__wss_estimate(uint64_t sampled, uint64_t touched, uint64_t resident,
			 uint64_t refaults, uint64_t npages)
{
	double active = 0.0, frac;

	if (!npages)
		return 0.0;
	if (resident > npages)
		resident = npages;
	if (sampled)
		active = (double)(touched > sampled ? sampled : touched) / (double)sampled *
			 (double)resident;
	active += (double)(refaults < npages - resident ? refaults : npages - resident);
	frac = active / (double)npages;
	return frac > 1.0 ? 1.0 : frac;
}

/* Count the touched samples; untouched ones lose SAMPLED and ACCESSED (cold). */
static uint64_t finish_period(struct ovc_wss_sampler *w, struct ovc_ram *ram)
{
	uint64_t touched = 0;
	unsigned int i;

	for (i = 0; i < w->nsampled; i++) {
		_Atomic uint64_t *pte = ovc__ram_pte(ram, w->gfns[i]);
		uint64_t e = atomic_load_explicit(pte, memory_order_relaxed);

		if (!(e & OVC_PTE_SAMPLED)) {
			touched++;
			continue;
		}
		/*
		 * Untouched for a whole period: tell the pager's CLOCK hand it
		 * is cold. Hints only, never under another's BUSY (the holder
		 * publishes its own copy of the bits).
		 */
		while (!(e & OVC_PTE_BUSY) &&
		       !atomic_compare_exchange_weak_explicit(pte, &e,
							     e & ~(OVC_PTE_SAMPLED | OVC_PTE_ACCESSED),
							     memory_order_relaxed,
							     memory_order_relaxed))
			;
	}
	return touched;
}

bool ovc__wss_tick(struct ovc_wss_sampler *w, struct ovc_ram *ram, uint64_t now,
		   uint64_t slack_ns, struct ovc_wss_snap *out)
{
	uint64_t touched, npages, sampled;
	double last;

	if (!w->running) {
		start_period(w, ram, now);
		return false;
	}
	if (now - w->start_ns + slack_ns < w->period_ns)
		return false;

	npages = ram_pages(ram);
	sampled = w->nsampled;
	touched = finish_period(w, ram);
	last = ovc__wss_estimate(sampled, touched, w->resident0,
				 refaults(ram) - w->refaults0, npages);
	if (!w->periods) {
		w->fast = last;
		w->slow = last;
	} else {
		w->fast += OVC_WSS_FAST_WEIGHT * (last - w->fast);
		w->slow += OVC_WSS_SLOW_WEIGHT * (last - w->slow);
	}
	w->periods++;

	memset(out, 0, sizeof(*out));
	out->valid = true;
	out->period_ns = w->period_ns;
	out->sampled = sampled;
	out->touched = touched;
	out->fast = w->fast;
	out->slow = w->slow;
	out->active_frac = last;
	if (w->fast > out->active_frac)
		out->active_frac = w->fast;
	if (w->slow > out->active_frac)
		out->active_frac = w->slow;
	out->active_bytes = (uint64_t)(out->active_frac * (double)npages) << OVC_PAGE_SHIFT;
	out->periods = w->periods;
	out->last = last;

	start_period(w, ram, now);
	return true;
}

// SPDX-License-Identifier: MIT
/* pager/pager.c: reclaim (coldest first) into the compressed tier and the swap file, and tier eviction. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "pager/pager-internal.h"

#define WORDS (OVC_PAGE_SIZE / sizeof(uint64_t))
#define EVICT_BATCH 32
#define EVICT_ROUNDS 8		/* batches one eviction pass moves at most */
#define ZIP_HIGH_PCT 90		/* evict the tier's oldest above this share of its cap */
#define ZIP_LOW_PCT 80		/* ...down to this */
#define PF_MAX_STRIDE 16	/* larger steps between faults are not a pattern */
#define PF_TRIGGER 2		/* faults in a row at one step before prefetching */
#define PF_MAX 64		/* the most prefetch_max may be */

OVC_EXPORT void ovc_pager_config_init(struct ovc_pager_config *cfg)
{
	if (!cfg)
		return;
	memset(cfg, 0, sizeof(*cfg));
	cfg->zip_cap_bytes = 64ULL << 20;
	cfg->zip_max_bytes = 2048;
	cfg->batch = 64;
	cfg->prefetch_max = 8;
	cfg->ref_scan = true;
}

/*
 * A fault on a swapped page: note it, and when the last faults walked the
 * RAM at one step, ask the prefetcher for the next pages at that step.
 * Called from a fault-engine thread, page BUSY: brief and non-blocking.
 */
static void pf_record(struct ovc_pager *p, uint64_t gfn)
{
	int64_t step;

	pthread_mutex_lock(&p->pf_lock);
	step = (int64_t)(gfn - p->pf_last);
	if (step && step == p->pf_step && step >= -PF_MAX_STRIDE && step <= PF_MAX_STRIDE) {
		p->pf_run++;
	} else {
		p->pf_run = 1;
		p->pf_step = step;
	}
	p->pf_last = gfn;
	if (p->pf_run >= PF_TRIGGER && !p->pf_count) {
		p->pf_next = gfn + (uint64_t)step;
		p->pf_count = p->cfg.prefetch_max;
		pthread_cond_signal(&p->pf_cond);
	}
	pthread_mutex_unlock(&p->pf_lock);
}

static int pf_load(void *opaque, struct ovc_ram *ram, uint64_t gfn, uint64_t handle, void *dst)
{
	struct ovc_pager *p = opaque;
	int ret = ovc__swapfile_ops.load(p->swap, ram, gfn, handle, dst);

	if (!ret)
		pf_record(p, gfn);
	return ret;
}

/* A read that is not the guest's (a save): no prefetch pattern. */
static int pf_peek(void *opaque, struct ovc_ram *ram, uint64_t gfn, uint64_t handle, void *dst)
{
	struct ovc_pager *p = opaque;

	return ovc__swapfile_ops.load(p->swap, ram, gfn, handle, dst);
}

static void pf_release(void *opaque, struct ovc_ram *ram, uint64_t gfn, uint64_t handle)
{
	struct ovc_pager *p = opaque;

	ovc__swapfile_ops.release(p->swap, ram, gfn, handle);
}

/*
 * Bring @count pages from @gfn at @step back before the guest asks: the
 * swapped ones in one batched read. A page busy or no longer swapped is left
 * alone. Called from the prefetcher thread.
 */
static void prefetch(struct ovc_pager *p, uint64_t gfn, uint64_t count, int64_t step)
{
	uint64_t handles[PF_MAX];
	void *dst[PF_MAX];
	int errs[PF_MAX];
	unsigned int n = 0, i;

	for (; count && n < PF_MAX; count--, gfn += (uint64_t)step) {
		struct ovc_xact *x = &p->pf_x[n];
		uint64_t e;

		if (!ovc__ram_region_gfn(p->ram, gfn))
			break;
		if (ovc__xact_begin(x, p->ram, gfn, 1, 0))
			continue;
		e = ovc__xact_old(x, 0);
		if (ovc__pte_state(e) != OVC_PAGE_SWAPPED) {
			ovc__xact_abort(x);
			continue;
		}
		handles[n] = ovc__pte_payload(e);
		dst[n] = p->pf_bufs + (size_t)n * WORDS;
		n++;
	}
	if (!n)
		return;
	(void)!ovc__swapfile_read(p->swap, handles, dst, n, errs);
	for (i = 0; i < n; i++) {
		struct ovc_xact *x = &p->pf_x[i];

		if (errs[i]) {
			/* The fault will meet the same error and report it: leave the page. */
			ovc__xact_abort(x);
			continue;
		}
		ovc__xact_set(x, 0, OVC_PAGE_RESIDENT, 0, dst[i]);
		if (!ovc__xact_commit(x) && !x->failed[0]) {
			/*
			 * Brought back because the guest is heading there: referenced,
			 * or the next CLOCK pass would take it before it is read.
			 */
			atomic_fetch_or_explicit(ovc__ram_pte(p->ram, x->gfn), OVC_PTE_ACCESSED,
						 memory_order_relaxed);
			atomic_fetch_add_explicit(&p->prefetched, 1, memory_order_relaxed);
		}
	}
}

static void *prefetcher(void *arg)
{
	struct ovc_pager *p = arg;
	uint64_t next, count;
	int64_t step;

	pthread_mutex_lock(&p->pf_lock);
	while (!p->pf_stop) {
		if (!p->pf_count) {
			pthread_cond_wait(&p->pf_cond, &p->pf_lock);
			continue;
		}
		next = p->pf_next;
		count = p->pf_count;
		step = p->pf_step;
		pthread_mutex_unlock(&p->pf_lock);
		prefetch(p, next, count, step);
		pthread_mutex_lock(&p->pf_lock);
		p->pf_count = 0;
	}
	pthread_mutex_unlock(&p->pf_lock);
	return NULL;
}

void ovc__pager_stop(struct ovc_pager *p)
{
	if (!p || !p->pf_running)
		return;
	pthread_mutex_lock(&p->pf_lock);
	p->pf_stop = true;
	pthread_cond_signal(&p->pf_cond);
	pthread_mutex_unlock(&p->pf_lock);
	pthread_join(p->pf_thread, NULL);
	p->pf_running = false;
}

struct ovc_pager *ovc__pager_new(struct ovc_ram *ram, const struct ovc_log *log,
				 const struct ovc_pager_config *cfg)
{
	struct ovc_pager_config defaults;
	struct ovc_pager *p;
	int ret;

	if (!cfg) {
		ovc_pager_config_init(&defaults);
		cfg = &defaults;
	}
	if (cfg->batch == 0 || cfg->batch > OVC_XACT_MAX_PAGES || cfg->prefetch_max > PF_MAX ||
	    (cfg->swap_dir && cfg->swap_bytes < OVC_PAGE_SIZE) ||
	    (!cfg->zip_cap_bytes && !cfg->swap_dir)) {
		errno = EINVAL;
		return NULL;
	}
	p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->ram = ram;
	p->log = log;
	p->cfg = *cfg;
	p->cfg.swap_dir = NULL;		/* the caller's string is not ours to keep */
	pthread_mutex_init(&p->lock, NULL);
	pthread_mutex_init(&p->pf_lock, NULL);
	pthread_cond_init(&p->pf_cond, NULL);
	p->pf_last = UINT64_MAX;
	/* Reclaim runs and eviction batches share these pages. */
	p->bufs = aligned_alloc(OVC_PAGE_SIZE, (size_t)(cfg->batch > EVICT_BATCH ? cfg->batch :
							EVICT_BATCH) * OVC_PAGE_SIZE);
	p->evict_x = calloc(EVICT_BATCH, sizeof(*p->evict_x));
	if (!p->bufs || !p->evict_x) {
		ret = ENOMEM;
		goto err;
	}
	if (cfg->zip_cap_bytes) {
		struct ovc_zstore_config zc = {
			.cap_bytes = cfg->zip_cap_bytes,
			.max_csize = cfg->zip_max_bytes,
			.acceleration = 1,
		};

		p->zip = ovc__zstore_new(log, &zc);
		if (!p->zip) {
			ret = errno;
			goto err;
		}
	}
	if (cfg->swap_dir) {
		struct ovc_swapfile_config sc;

		ovc__swapfile_config_init(&sc);
		sc.dir = cfg->swap_dir;
		sc.bytes = cfg->swap_bytes;
		sc.encrypt = cfg->encrypt;
		p->swap = ovc__swapfile_new(log, &sc);
		if (!p->swap) {
			ret = errno;
			goto err;
		}
	}
	if (p->zip) {
		ret = -ovc__ram_set_store(ram, OVC_PAGE_COMPRESSED, &ovc__zstore_ops, p->zip);
		if (ret)
			goto err;
	}
	if (p->swap) {
		p->swap_ops.load = pf_load;
		p->swap_ops.release = pf_release;
		p->swap_ops.peek = pf_peek;
		ret = -ovc__ram_set_store(ram, OVC_PAGE_SWAPPED, &p->swap_ops, p);
		if (ret)
			goto err_unset;
		if (cfg->prefetch_max) {
			p->pf_x = calloc(PF_MAX, sizeof(*p->pf_x));
			p->pf_bufs = aligned_alloc(OVC_PAGE_SIZE, (size_t)PF_MAX * OVC_PAGE_SIZE);
			ret = !p->pf_x || !p->pf_bufs ? ENOMEM :
				pthread_create(&p->pf_thread, NULL, prefetcher, p);
			if (ret)
				goto err_unset;
			p->pf_running = true;
		}
	}
	return p;
err_unset:
	if (p->zip)
		ovc__ram_set_store(ram, OVC_PAGE_COMPRESSED, NULL, NULL);
	if (p->swap)
		ovc__ram_set_store(ram, OVC_PAGE_SWAPPED, NULL, NULL);
err:
	ovc__pager_destroy(p);
	errno = ret;
	return NULL;
}

/* Called once the VM's RAM is gone: nothing refers to the stores any more. */
void ovc__pager_destroy(struct ovc_pager *p)
{
	if (!p)
		return;
	ovc__pager_stop(p);
	ovc__zstore_destroy(p->zip);
	ovc__swapfile_destroy(p->swap);
	free(p->bufs);
	free(p->evict_x);
	free(p->pf_x);
	free(p->pf_bufs);
	pthread_cond_destroy(&p->pf_cond);
	pthread_mutex_destroy(&p->pf_lock);
	pthread_mutex_destroy(&p->lock);
	free(p);
}

/* The next run of pages under the CLOCK hand, inside one range. Called with p->lock held. */
static bool next_run(struct ovc_pager *p, uint64_t *gfn, unsigned int *n)
{
	unsigned int nr = atomic_load_explicit(&p->ram->nregions, memory_order_acquire);
	const struct ovc_region *rg;

	if (!nr)
		return false;
	if (p->hand_region >= nr) {
		p->hand_region = 0;
		p->hand_off = 0;
	}
	rg = &p->ram->regions[p->hand_region];
	*gfn = rg->gfn0 + p->hand_off;
	*n = rg->npages - p->hand_off < p->cfg.batch ? (unsigned int)(rg->npages - p->hand_off) :
		p->cfg.batch;
	p->hand_off += *n;
	if (p->hand_off >= rg->npages) {
		p->hand_region++;
		p->hand_off = 0;
	}
	return true;
}

/* Any resident page in the run? A racy look, to skip holes without taking them. */
static bool any_resident(struct ovc_pager *p, uint64_t gfn, unsigned int n)
{
	unsigned int i;

	for (i = 0; i < n; i++) {
		_Atomic uint64_t *pte = ovc__ram_pte(p->ram, gfn + i);

		if (pte && ovc__pte_state(atomic_load_explicit(pte, memory_order_relaxed)) ==
		    OVC_PAGE_RESIDENT)
			return true;
	}
	return false;
}

/*
 * Move the tier's oldest pages on to the swap file until it is back under
 * ZIP_LOW_PCT of its cap. Called with p->lock held.
 */
static void evict_tier(struct ovc_pager *p)
{
	struct ovc_zstore_victim v[EVICT_BATCH];
	const void *pages[EVICT_BATCH];
	uint64_t handles[EVICT_BATCH];
	int errs[EVICT_BATCH];
	struct ovc_zstore_stats zs;
	unsigned int nv, i, k, which[EVICT_BATCH], failed, rounds;

	if (!p->zip || !p->swap)
		return;
	/* Bounded per call: the tier's fixed overhead may keep it above the low mark. */
	for (rounds = 0; rounds < EVICT_ROUNDS; rounds++) {
		ovc__zstore_get_stats(p->zip, &zs);
		if (zs.bytes_used * 100 < p->cfg.zip_cap_bytes * ZIP_HIGH_PCT &&
		    !p->evicting)
			return;
		if (zs.bytes_used * 100 < p->cfg.zip_cap_bytes * ZIP_LOW_PCT) {
			p->evicting = false;
			return;
		}
		p->evicting = true;
		nv = ovc__zstore_coldest(p->zip, v, EVICT_BATCH);
		if (!nv)
			return;
		k = 0;
		for (i = 0; i < nv; i++) {
			struct ovc_xact *x = &p->evict_x[i];
			uint64_t e;

			if (ovc__xact_begin(x, p->ram, v[i].gfn, 1, 0))
				continue;
			e = ovc__xact_old(x, 0);
			/* The entry may have moved on since the tier listed it. */
			if (ovc__pte_state(e) != OVC_PAGE_COMPRESSED ||
			    ovc__pte_payload(e) != v[i].handle ||
			    ovc__ram_store_load(p->ram, v[i].gfn, e, p->bufs + (size_t)k * WORDS)) {
				ovc__xact_abort(x);
				continue;
			}
			which[k] = i;
			pages[k] = p->bufs + (size_t)k * WORDS;
			k++;
		}
		if (!k)
			return;
		/* errs[] says which pages made it; the return value only the first error. */
		(void)!ovc__swapfile_write(p->swap, pages, k, handles, errs);
		failed = 0;
		for (i = 0; i < k; i++) {
			struct ovc_xact *x = &p->evict_x[which[i]];

			if (errs[i]) {
				p->ctr.store_errors++;
				failed++;
				ovc__xact_abort(x);
				continue;
			}
			ovc__xact_set(x, 0, OVC_PAGE_SWAPPED, handles[i], NULL);
			if (ovc__xact_commit(x) || x->failed[0])
				ovc__swapfile_drop(p->swap, handles[i]);
			else
				p->ctr.evicted++;
		}
		if (failed)
			return;		/* the disk refuses: back off until next time */
	}
}

/* Page out the chosen pages of one run. Called with p->lock held, the run taken. */
static void page_out(struct ovc_pager *p, struct ovc_xact *x, uint64_t want,
		     struct ovc_pager_result *r)
{
	unsigned int i, nswap = 0, idx[OVC_XACT_MAX_PAGES];
	const void *pages[OVC_XACT_MAX_PAGES];
	uint64_t handles[OVC_XACT_MAX_PAGES], zh[OVC_XACT_MAX_PAGES];
	int errs[OVC_XACT_MAX_PAGES], ret = 0;
	uint64_t taken = 0;

	for (i = 0; i < x->npages; i++) {
		uint64_t e = ovc__xact_old(x, i), *buf = p->bufs + (size_t)i * WORDS;

		zh[i] = 0;
		if (ovc__pte_state(e) != OVC_PAGE_RESIDENT)
			continue;
		r->scanned++;
		if (e & OVC_PTE_ACCESSED) {
			r->referenced++;	/* second chance: the bit goes at commit */
			if (p->cfg.ref_scan)
				ovc__xact_arm(x, i, true);
			else
				x->new_e[i] &= ~OVC_PTE_ACCESSED;
			continue;
		}
		if (taken >= want) {
			if (p->cfg.ref_scan)
				ovc__xact_arm(x, i, false);
			continue;
		}
		taken++;
		if (ovc__xact_read(x, i, buf)) {
			r->errors++;
			continue;
		}
		if (ovc__page_is_zero(buf)) {
			ovc__xact_set(x, i, OVC_PAGE_ZERO, 0, NULL);
			continue;
		}
		if (p->zip) {
			ret = ovc__zstore_put_ram(p->zip, p->ram, x->gfn + i, buf, &zh[i]);
			if (!ret) {
				ovc__xact_set(x, i, OVC_PAGE_COMPRESSED, zh[i], NULL);
				continue;
			}
			zh[i] = 0;
			if (ret != -E2BIG && ret != -ENOSPC) {
				r->errors++;
				continue;
			}
		}
		if (!p->swap)
			continue;	/* compresses badly or the tier is full, and no disk: it stays */
		idx[nswap] = i;
		pages[nswap++] = buf;
	}
	if (nswap) {
		(void)!ovc__swapfile_write(p->swap, pages, nswap, handles, errs);
		for (i = 0; i < nswap; i++) {
			if (errs[i]) {
				r->errors++;	/* stays RESIDENT; nothing lost */
				continue;
			}
			ovc__xact_set(x, idx[i], OVC_PAGE_SWAPPED, handles[i], NULL);
		}
	}
	ovc__xact_commit(x);
	for (i = 0; i < x->npages; i++) {
		uint64_t old = x->old[i], e = x->new_e[i];

		if (e == old || ovc__pte_state(e) == ovc__pte_state(old))
			continue;
		if (x->failed[i]) {
			r->errors++;
			if (ovc__pte_state(e) == OVC_PAGE_COMPRESSED)
				ovc__zstore_drop(p->zip, ovc__pte_payload(e));
			else if (ovc__pte_state(e) == OVC_PAGE_SWAPPED)
				ovc__swapfile_drop(p->swap, ovc__pte_payload(e));
			continue;
		}
		switch (ovc__pte_state(e)) {
		case OVC_PAGE_ZERO: r->zero++; break;
		case OVC_PAGE_COMPRESSED: r->compressed++; break;
		case OVC_PAGE_SWAPPED: r->swapped++; break;
		default: break;
		}
	}
}

OVC_EXPORT int64_t ovc_pager_reclaim(struct ovc_pager *p, uint64_t npages,
				     struct ovc_pager_result *res)
{
	struct ovc_pager_result r = { 0 };
	uint64_t made = 0, looked = 0, limit;
	unsigned int n;
	uint64_t gfn;

	if (!p)
		return -EINVAL;
	/* Two sweeps at most: the first may only take reference bits away. */
	limit = 2 * (__atomic_load_n(&p->ram->total_bytes, __ATOMIC_RELAXED) >> OVC_PAGE_SHIFT) +
		p->cfg.batch;
	pthread_mutex_lock(&p->lock);
	evict_tier(p);
	while (made < npages && looked < limit && next_run(p, &gfn, &n)) {
		looked += n;
		if (!any_resident(p, gfn, n))
			continue;
		if (ovc__xact_begin(&p->x, p->ram, gfn, n, OVC_XACT_NOMAP)) {
			r.busy += n;	/* never a page under another transition */
			continue;
		}
		page_out(p, &p->x, npages - made, &r);
		made = r.zero + r.compressed + r.swapped;
		if (r.errors)
			break;		/* a store refused: back off until asked again */
		evict_tier(p);
	}
	p->ctr.zero += r.zero;
	p->ctr.compressed += r.compressed;
	p->ctr.swapped += r.swapped;
	p->ctr.store_errors += r.errors;
	pthread_mutex_unlock(&p->lock);
	if (res)
		*res = r;
	return (int64_t)made;
}

OVC_EXPORT int ovc_pager_get_stats(struct ovc_pager *p, struct ovc_pager_stats *st)
{
	struct ovc_zstore_stats zs = { 0 };
	struct ovc_swapfile_stats ss = { 0 };

	if (!p || !st)
		return -EINVAL;
	memset(st, 0, sizeof(*st));
	if (p->zip)
		ovc__zstore_get_stats(p->zip, &zs);
	if (p->swap)
		ovc__swapfile_get_stats(p->swap, &ss);
	pthread_mutex_lock(&p->lock);
	st->zero = p->ctr.zero;
	st->compressed = p->ctr.compressed;
	st->swapped = p->ctr.swapped;
	st->evicted = p->ctr.evicted;
	st->store_errors = p->ctr.store_errors;
	pthread_mutex_unlock(&p->lock);
	st->reclaimed = st->zero + st->compressed + st->swapped;
	st->zip_pages = zs.entries;
	st->zip_bytes = zs.bytes_used;
	st->swap_pages = ss.slots_used;
	st->swap_slots = ss.slots_total;
	st->prefetched = atomic_load_explicit(&p->prefetched, memory_order_relaxed);
	return 0;
}

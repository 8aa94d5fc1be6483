// SPDX-License-Identifier: MIT
/* core/xact.c: page transitions: take BUSY, fence writers, change state, wake. */
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/core-internal.h"

/* Sleep until @pte is no longer BUSY (it was, holding @e, when we looked). */
static void wait_not_busy(_Atomic uint64_t *pte, uint64_t e)
{
	if (!(e & OVC_PTE_WAITERS)) {
		if (!atomic_compare_exchange_strong_explicit(pte, &e, e | OVC_PTE_WAITERS,
							     memory_order_relaxed,
							     memory_order_relaxed))
			return;	/* changed: let the caller look again */
		e |= OVC_PTE_WAITERS;
	}
	/* The futex word is the entry's low half; it holds BUSY and WAITERS. */
	syscall(SYS_futex, (uint32_t *)pte, FUTEX_WAIT_PRIVATE, (uint32_t)e,
		NULL, NULL, 0);
}

static bool armed_resident(uint64_t e)
{
	return ovc__pte_state(e) == OVC_PAGE_RESIDENT && (e & OVC_PTE_ARMED);
}

/*
 * Zap the pages of the run that are armed and resident in @e[] (in runs):
 * their next access faults. The pages are BUSY.
 */
static void zap_armed(struct ovc_xact *x, const uint64_t *e, unsigned int n)
{
	unsigned int i, run = 0;
	int r;

	for (i = 0; i <= n; i++) {
		if (i < n && armed_resident(e[i])) {
			run++;
			continue;
		}
		if (!run)
			continue;
		r = ovc__ram_zap(x->ram, (uintptr_t)ovc__region_hva(x->rg, x->gfn + i - run),
				 (size_t)run << OVC_PAGE_SHIFT);
		if (r)	/* The page stays mapped: its next access is simply not seen. */
			ovc__warn(x->ram->log, "transition: zap armed gfn 0x%llx+%u: %s",
				  (unsigned long long)(x->gfn + i - run), run, strerror(-r));
		run = 0;
	}
}

static void unlock_taken(struct ovc_xact *x, unsigned int n)
{
	unsigned int i;

	for (i = 0; i < n; i++)
		ovc__pte_unlock(x->ram, x->rg, x->gfn + i, x->old[i]);
}

int ovc__xact_begin(struct ovc_xact *x, struct ovc_ram *ram, uint64_t gfn,
		    unsigned int npages, unsigned int flags)
{
	struct ovc_region *rg;
	bool any_resident = false;
	unsigned int i;
	int ret;

	if (!x || !ram || npages == 0 || npages > OVC_XACT_MAX_PAGES ||
	    (flags & ~(OVC_XACT_WAIT | OVC_XACT_NOMAP)))
		return -EINVAL;
	rg = ovc__ram_region_gfn(ram, gfn);
	if (!rg || gfn - rg->gfn0 + npages > rg->npages)
		return -EINVAL;

	x->ram = ram;
	x->rg = rg;
	x->gfn = gfn;
	x->npages = npages;
	x->flags = flags;
	x->wp = false;

	for (i = 0; i < npages; i++) {
		_Atomic uint64_t *pte = &rg->pt[gfn - rg->gfn0 + i];
		uint64_t e;

		for (;;) {
			e = atomic_load_explicit(pte, memory_order_relaxed);
			if (e & OVC_PTE_BUSY) {
				if (!(flags & OVC_XACT_WAIT)) {
					unlock_taken(x, i);
					return -EBUSY;
				}
				wait_not_busy(pte, e);
				continue;
			}
			if (atomic_compare_exchange_weak_explicit(pte, &e, e | OVC_PTE_BUSY,
								  memory_order_acquire,
								  memory_order_relaxed))
				break;
		}
		atomic_fetch_add_explicit(&ram->busy_pages, 1, memory_order_relaxed);
		x->old[i] = e;
		x->new_e[i] = e;
		x->fill[i] = NULL;
		x->failed[i] = false;
		if (ovc__pte_state(e) == OVC_PAGE_RESIDENT)
			any_resident = true;
	}

	/*
	 * Armed pages are not mapped: map them again, so that reading them
	 * through the mapping never faults into the engine, which would wait
	 * for our own BUSY. Commit or abort zaps them again.
	 */
	for (i = 0; i < npages && !(flags & OVC_XACT_NOMAP); i++) {
		if (!armed_resident(x->old[i]))
			continue;
		ret = ovc__uffd_continue(ram, (uintptr_t)ovc__region_hva(rg, gfn + i), false);
		if (ret && ret != -EEXIST) {
			ovc__err(ram->log, "transition: map armed gfn 0x%llx: %s",
				 (unsigned long long)(gfn + i), strerror(-ret));
			zap_armed(x, x->old, i);
			unlock_taken(x, npages);
			return ret;
		}
	}

	if (any_resident) {
		ret = ovc__uffd_wp(ram, (uintptr_t)ovc__region_hva(rg, gfn),
				   (size_t)npages << OVC_PAGE_SHIFT, true);
		if (ret) {
			ovc__err(ram->log, "transition: write-protect gfn 0x%llx+%u: %s",
				 (unsigned long long)gfn, npages, strerror(-ret));
			zap_armed(x, x->old, npages);
			unlock_taken(x, npages);
			return ret;
		}
		x->wp = true;
	}
	return 0;
}

int ovc__xact_read(const struct ovc_xact *x, unsigned int i, void *dst)
{
	ssize_t n;

	if (i >= x->npages || ovc__pte_state(x->old[i]) != OVC_PAGE_RESIDENT)
		return -EINVAL;
	if (!(x->flags & OVC_XACT_NOMAP) || !(x->old[i] & OVC_PTE_ARMED)) {
		memcpy(dst, ovc__xact_hva(x, i), OVC_PAGE_SIZE);
		return 0;
	}
	/* Not mapped: every writer is parked on the fault, the memfd is stable. */
	n = pread(x->rg->memfd, dst, OVC_PAGE_SIZE,
		  (off_t)((x->gfn + i - x->rg->gfn0) << OVC_PAGE_SHIFT));
	if (n == (ssize_t)OVC_PAGE_SIZE)
		return 0;
	return n < 0 ? -errno : -EIO;
}

void ovc__xact_arm(struct ovc_xact *x, unsigned int i, bool clear_accessed)
{
	if (i >= x->npages)
		OVC_BUG("arming page %u of a %u-page transition", i, x->npages);
	if (ovc__pte_state(x->new_e[i]) != OVC_PAGE_RESIDENT)
		return;
	if (clear_accessed)
		x->new_e[i] &= ~OVC_PTE_ACCESSED;
	if (x->ram->minor)
		x->new_e[i] |= OVC_PTE_ARMED;
}

void ovc__xact_set(struct ovc_xact *x, unsigned int i, unsigned int state,
		   uint64_t payload, const void *fill)
{
	if (i >= x->npages || state >= OVC_PAGE_NR_STATES ||
	    payload > OVC_PTE_PAYLOAD_MAX)
		OVC_BUG("bad transition target: page %u/%u state %u payload 0x%llx",
			i, x->npages, state, (unsigned long long)payload);
	x->new_e[i] = ovc__pte_make(state, payload) |
		      (x->old[i] & OVC_PTE_REF_BITS);
	x->fill[i] = fill;
}

static bool is_resident(uint64_t e)
{
	return ovc__pte_state(e) == OVC_PAGE_RESIDENT;
}

static bool holds_store_handle(uint64_t e)
{
	unsigned int st = ovc__pte_state(e);

	return st == OVC_PAGE_COMPRESSED || st == OVC_PAGE_SWAPPED ||
	       st == OVC_PAGE_SHARED || st == OVC_PAGE_IMAGE;
}

static int punch_run(struct ovc_xact *x, unsigned int first, unsigned int n)
{
	unsigned int i;
	int ret;

	ret = ovc__ram_punch(x->ram, x->rg, x->gfn + first, n);
	if (ret) {
		ovc__err(x->ram->log, "transition: punch gfn 0x%llx+%u: %s; pages stay resident",
			 (unsigned long long)(x->gfn + first), n, strerror(-ret));
		for (i = first; i < first + n; i++)
			x->failed[i] = true;
	}
	return ret;
}

static bool is_shared(uint64_t e)
{
	return ovc__pte_state(e) == OVC_PAGE_SHARED;
}

/* The entry page i ends with: the new one, or the old one where it failed. */
static uint64_t final_entry(const struct ovc_xact *x, unsigned int i)
{
	return x->failed[i] ? x->old[i] : x->new_e[i];
}

/*
 * Let writers through again, in runs, except onto shared pages: those stay
 * write-protected so a write reaches the fault engine, which breaks the share.
 */
static void unprotect(struct ovc_xact *x, bool final)
{
	unsigned int i, run = 0;
	int r;

	for (i = 0; i <= x->npages; i++) {
		if (i < x->npages && !is_shared(final ? final_entry(x, i) : x->old[i])) {
			run++;
			continue;
		}
		if (!run)
			continue;
		r = ovc__uffd_wp(x->ram, (uintptr_t)ovc__region_hva(x->rg, x->gfn + i - run),
				 (size_t)run << OVC_PAGE_SHIFT, false);
		if (r)	/* The engine releases stray write-protection on fault. */
			ovc__warn(x->ram->log, "transition: un-write-protect gfn 0x%llx+%u: %s",
				  (unsigned long long)(x->gfn + i - run), run, strerror(-r));
		run = 0;
	}
}

/* Where a SHARED handle's page lives (its store's backing file). */
static int shared_backing(struct ovc_ram *ram, uint64_t e, int *fd, uint64_t *off)
{
	const struct ovc_store_ops *ops;

	ops = __atomic_load_n(&ram->stores[OVC_PAGE_SHARED].ops, __ATOMIC_ACQUIRE);
	if (!ops || !ops->backing)
		return -ENOENT;
	return ops->backing(ram->stores[OVC_PAGE_SHARED].opaque, ovc__pte_payload(e), fd, off);
}

/*
 * A shared page leaving: its own mapping comes back holding its contents
 * (@fill, or the pool page's), so no access ever meets a hole, and from
 * here on it is a resident page of this transition: the pool reference
 * goes, and a page bound elsewhere is write-protected and checked. A writer
 * that came through while the own mapping was not yet protected wins: the
 * page then stays RESIDENT with what it wrote (failed).
 */
static int unshare_page(struct ovc_xact *x, unsigned int i, void *tmp)
{
	struct ovc_ram *ram = x->ram;
	uint64_t gfn = x->gfn + i, old = x->old[i], res;
	bool to_resident = is_resident(x->new_e[i]);
	const void *src = x->fill[i];
	int r;

	if (to_resident && !src)
		OVC_BUG("gfn 0x%llx made resident without contents", (unsigned long long)gfn);
	if (!to_resident) {
		r = ovc__ram_store_load(ram, gfn, old, tmp);
		if (r)
			return r;
		src = tmp;
	}
	r = ovc__ram_map_own(ram, x->rg, gfn, 1, src);
	if (r)
		return r;	/* still mapped from the pool, still SHARED */
	ovc__ram_store_release(ram, gfn, old);
	res = ovc__pte_make(OVC_PAGE_RESIDENT, 0) | (old & OVC_PTE_ACCESSED);
	ovc__pte_account(ram, old, res);
	x->old[i] = res;
	if (to_resident)
		return 0;
	r = ovc__uffd_wp(ram, (uintptr_t)ovc__region_hva(x->rg, gfn), OVC_PAGE_SIZE, true);
	x->wp = true;
	if (!r && memcmp(ovc__region_hva(x->rg, gfn), src, OVC_PAGE_SIZE))
		r = -EAGAIN;
	if (r)
		x->failed[i] = true;
	return r;
}

/* Step 0: shared pages change mapping first; a failure leaves the page as it was. */
static int remap_shared(struct ovc_xact *x)
{
	struct ovc_ram *ram = x->ram;
	void *tmp = NULL;
	unsigned int i;
	uint64_t off;
	int ret = 0, r, fd;

	for (i = 0; i < x->npages; i++) {
		uint64_t old = x->old[i], new_e = x->new_e[i];
		uint64_t gfn = x->gfn + i;

		if (is_shared(old) && is_shared(new_e)) {
			if (ovc__pte_payload(old) != ovc__pte_payload(new_e))
				OVC_BUG("gfn 0x%llx: shared page moved to another shared page",
					(unsigned long long)gfn);
			continue;
		}
		if (is_shared(old)) {
			if (!tmp && !(tmp = aligned_alloc(OVC_PAGE_SIZE, OVC_PAGE_SIZE)))
				r = -ENOMEM;
			else
				r = unshare_page(x, i, tmp);
			if (r && !x->failed[i] && is_shared(x->old[i]))
				x->failed[i] = true;
		} else if (is_shared(new_e)) {
			unsigned int n = 1, k;
			uint64_t o2;
			int fd2;

			if (!is_resident(old))
				OVC_BUG("gfn 0x%llx: only resident pages become shared",
					(unsigned long long)gfn);
			r = shared_backing(ram, new_e, &fd, &off);
			/* A run of pages bound for consecutive pages of one file: one mapping. */
			while (!r && i + n < x->npages && is_resident(x->old[i + n]) &&
			       is_shared(x->new_e[i + n]) &&
			       !shared_backing(ram, x->new_e[i + n], &fd2, &o2) && fd2 == fd &&
			       o2 == off + ((uint64_t)n << OVC_PAGE_SHIFT))
				n++;
			if (!r)
				r = ovc__ram_map_foreign(ram, x->rg, gfn, n, fd, off);
			for (k = 0; r && k < n; k++)
				x->failed[i + k] = true;
			i += n - 1;
		} else {
			continue;
		}
		if (r) {
			if (r != -EAGAIN)
				ovc__err(ram->log, "transition: map gfn 0x%llx (%s -> %s): %s; page stays %s",
					 (unsigned long long)gfn,
					 ovc_page_state_name((int)ovc__pte_state(old)),
					 ovc_page_state_name((int)ovc__pte_state(new_e)),
					 strerror(-r),
					 ovc_page_state_name((int)ovc__pte_state(x->old[i])));
			ret = ret ? ret : r;
		}
	}
	free(tmp);
	return ret;
}

int ovc__xact_commit(struct ovc_xact *x)
{
	struct ovc_ram *ram = x->ram;
	uint64_t foreign[OVC_XACT_MAX_PAGES / 64] = { 0 };
	unsigned int i, run = 0, nfailed = 0;
	int ret, r;

	/* 0. Shared pages: the pool page mapped in, or the own mapping back. */
	ret = remap_shared(x);
	for (i = 0; i < x->npages; i++) {
		if (is_resident(x->old[i]) && is_shared(x->new_e[i]) && !x->failed[i])
			foreign[i / 64] |= 1ULL << (i % 64);
	}

	/* 1. Contents for pages coming back: copied in atomically, still BUSY. */
	for (i = 0; i < x->npages; i++) {
		if (is_resident(x->old[i]) || !is_resident(x->new_e[i]) || x->failed[i])
			continue;
		if (!x->fill[i])
			OVC_BUG("gfn 0x%llx made resident without contents",
				(unsigned long long)(x->gfn + i));
		r = ovc__uffd_place(ram, (uintptr_t)ovc__region_hva(x->rg, x->gfn + i),
				    x->fill[i]);
		if (r) {
			ovc__err(ram->log, "transition: fill gfn 0x%llx: %s; page stays %s",
				 (unsigned long long)(x->gfn + i), strerror(-r),
				 ovc_page_state_name((int)ovc__pte_state(x->old[i])));
			x->failed[i] = true;
			ret = ret ? ret : r;
		}
	}

	/* 2. Resident pages leaving: punch them out, in runs. */
	for (i = 0; i <= x->npages; i++) {
		bool leaving = i < x->npages && is_resident(x->old[i]) &&
			       !is_resident(x->new_e[i]) && !x->failed[i];

		if (leaving) {
			run++;
			continue;
		}
		if (run) {
			r = punch_run(x, i - run, run);
			ret = ret ? ret : r;
			run = 0;
		}
	}
	/* A page whose pool page is mapped but whose memory stayed: back as it was. */
	for (i = 0; i < x->npages; i++) {
		if (x->failed[i] && (foreign[i / 64] & (1ULL << (i % 64)))) {
			r = ovc__ram_map_own(ram, x->rg, x->gfn + i, 1, NULL);
			if (r)
				OVC_BUG("gfn 0x%llx: cannot restore guest RAM mapping: %s",
					(unsigned long long)(x->gfn + i), strerror(-r));
		}
	}

	/* 2b. A poisoned page that changes drops its poison marker. */
	for (i = 0; i < x->npages; i++) {
		if ((x->old[i] & OVC_PTE_POISONED) && !x->failed[i] &&
		    x->new_e[i] != x->old[i])
			madvise(ovc__region_hva(x->rg, x->gfn + i), OVC_PAGE_SIZE,
				MADV_DONTNEED);
	}

	/* 3. Let writers through again; punched pages fault as missing. */
	if (x->wp)
		unprotect(x, true);

	/* 3b. Pages ending resident and armed leave the mapping again. */
	{
		uint64_t final[OVC_XACT_MAX_PAGES];

		for (i = 0; i < x->npages; i++)
			final[i] = x->failed[i] ? x->old[i] : x->new_e[i];
		zap_armed(x, final, x->npages);
	}

	/* 4. Publish. The old handle dies here; a failed page's new one is the caller's. */
	for (i = 0; i < x->npages; i++) {
		uint64_t old = x->old[i];
		uint64_t final = final_entry(x, i);

		if (x->failed[i])
			nfailed++;
		if (final != old && holds_store_handle(old))
			ovc__ram_store_release(ram, x->gfn + i, old);
		ovc__pte_account(ram, old, final);
		ovc__pte_unlock(ram, x->rg, x->gfn + i, final);
	}
	atomic_fetch_add_explicit(&ram->xact_committed, x->npages - nfailed,
				  memory_order_relaxed);
	atomic_fetch_add_explicit(&ram->xact_aborted, nfailed, memory_order_relaxed);
	return ret;
}

void ovc__xact_abort(struct ovc_xact *x)
{
	if (x->wp)
		unprotect(x, false);
	zap_armed(x, x->old, x->npages);
	unlock_taken(x, x->npages);
	atomic_fetch_add_explicit(&x->ram->xact_aborted, x->npages, memory_order_relaxed);
}

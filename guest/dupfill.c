// SPDX-License-Identifier: MIT
/* guest/dupfill.c: fills guest RAM with a known mix of zero, duplicate and unique pages. */

/*
 * dupfill - give the host something to deduplicate, then check it survived
 *
 * Args (boot->args, "key=value" separated by spaces or commas):
 *   zero=PCT        share of pages that are all zeros (default 30)
 *   dup=PCT         share of pages copied from a small set of templates
 *                   (default 40); zero + dup <= 100, the rest is unique
 *   dup-set=N       number of distinct duplicate templates (default 16)
 *   dup-seed=N      seeds the templates and which page gets which kind
 *                   (default 1): VMs with the same dup-seed and size hold
 *                   identical duplicate pages at identical addresses, i.e.
 *                   cross-VM duplicates
 *   size=SIZE       bytes to fill from OVC_GUEST_HEAP (K/M/G suffix, or N%
 *                   of the heap); default and maximum: all of the heap
 *   then=idle|touch after filling: sleep through idle_us(10000) until stopped,
 *                   or keep re-verifying and rewriting pages (default idle)
 *   touch=PCT       with then=touch, the share of its pages a vCPU verifies
 *                   and rewrites (same contents) per pass (default 10)
 *   pause=MS        with then=touch, idle this long between passes (default
 *                   0): pages then stay unwritten long enough for the host
 *                   to share them, and the rewrites break those shares
 *   seconds=N       run time after the fill; 0 = until boot->stop (default 0)
 *
 * Which page is zero, duplicate (and of which template) or unique is a
 * pseudo-random permutation of the page indices keyed by dup-seed, so exactly
 * zero% and dup% of the pages get those kinds, reproducibly. Unique contents
 * derive from boot->seed, boot->vm_index and the page frame. Zero pages are
 * written too (with zeros), so the host sees them dirty. vCPU n fills and
 * owns the n-th contiguous 1/nr_vcpus of the pages.
 *
 * On stop every vCPU verifies all its pages against their generator. A stop
 * during the fill ends the fill early; then only the filled pages count.
 *
 * Reports (ADD, per vCPU): zero_pages, dup_pages, unique_pages (the pages it
 * filled), sent as soon as the vCPU finished filling: their sum reaching
 * wss_pages means the whole fill is in place. At the end: corrupt,
 * touch_passes (complete passes), verified_pages. SET, from vCPU 0 at
 * start: wss_pages.
 * Exit code: 0 if nothing was corrupt, 1 otherwise, 2 for bad arguments.
 */
#include "rt/rt.h"

#define PROG		"dupfill"
#define DUP_MAGIC	0x6475702d73656564ULL	/* "dup-seed" */
#define UNIQ_MAGIC	0x756e697175652121ULL	/* "unique!!" */
#define PERM_MAGIC	0x7065726d75746521ULL	/* "permute!" */
#define DF_LOG_MAX	8	/* corrupt pages logged on serial, per VM */
#define DF_POLL_EVERY	64	/* pages between polls of boot->stop */

enum { THEN_IDLE, THEN_TOUCH };
static const char *const thens[] = { "idle", "touch", NULL };

enum kind { KIND_ZERO, KIND_DUP, KIND_UNIQUE, NR_KINDS };
static const char *const kind_names[] = { "zero", "dup", "unique" };

struct df_cfg {
	struct rt_size size;
	uint64_t zero, dup, dup_set, dup_seed, then, touch, pause, seconds;
};

/*
 * struct perm - a bijection on [0, n): a 4-round Feistel network on the
 * smallest even number of bits that covers n, cycle-walked back into range.
 * Stateless, so no vCPU needs a shared shuffle table.
 */
struct perm {
	uint64_t n, key, mask;
	unsigned int half;
};

/* Everything a vCPU needs to know what any page should hold. */
struct df {
	uint64_t npages, nzero, ndup, dup_set;
	uint64_t dup_key, uniq_key;
	struct perm perm;
	uint8_t *pages;
};

static uint32_t logged;		/* ATOMIC: corrupt pages logged on serial so far */
static uint64_t total_filled;	/* ATOMIC: pages written by the fill */
static uint64_t total_corrupt;	/* ATOMIC */
static uint64_t total_passes;	/* ATOMIC */
static struct rt_barrier barrier;

static void perm_init(struct perm *p, uint64_t n, uint64_t key)
{
	unsigned int bits = 2;

	while (bits < 64 && (1ULL << bits) < n)
		bits += 2;
	p->n = n;
	p->key = key;
	p->half = bits / 2;
	p->mask = (1ULL << p->half) - 1;
}

static uint64_t perm_apply(const struct perm *p, uint64_t x)
{
	uint64_t l, r, t;
	unsigned int i;

	/* The domain is < 4n, so this loops fewer than four times on average. */
	do {
		l = x >> p->half;
		r = x & p->mask;
		for (i = 0; i < 4; i++) {
			t = l ^ (mix64(r ^ p->key ^ (i + 1) * GOLDEN64) & p->mask);
			l = r;
			r = t;
		}
		x = l << p->half | r;
	} while (x >= p->n);
	return x;
}

/* The kind of page @i and, for non-zero pages, the seed of its contents. */
static enum kind page_kind(const struct df *d, uint64_t i, uint64_t *seed)
{
	uint64_t r = perm_apply(&d->perm, i);
	uint64_t pfn = ((uint64_t)(uintptr_t)d->pages >> PAGE_SHIFT) + i;

	if (r < d->nzero) {
		*seed = 0;
		return KIND_ZERO;
	}
	r -= d->nzero;
	if (r < d->ndup) {
		/* Round-robin over the templates: every one gets its share. */
		*seed = mix64(d->dup_key + (r % d->dup_set) * GOLDEN64);
		return KIND_DUP;
	}
	*seed = mix64(d->uniq_key ^ pfn * GOLDEN64);
	return KIND_UNIQUE;
}

static void fill_page(void *p, enum kind k, uint64_t seed)
{
	if (k == KIND_ZERO)
		memset(p, 0, PAGE_SIZE);
	else
		page_fill(p, seed);
}

/* Verify page @i, report and repair it if it lost its contents; return 1 if it did. */
static unsigned int check_page(const struct df *d, unsigned int vcpu, uint64_t i)
{
	uint8_t *p = d->pages + i * PAGE_SIZE;
	unsigned int bad, first = 0;
	uint64_t seed, pfn;
	enum kind k;

	k = page_kind(d, i, &seed);
	bad = page_check(p, seed, k == KIND_ZERO, &first);
	if (!bad)
		return 0;
	pfn = (uint64_t)(uintptr_t)p >> PAGE_SHIFT;
	corrupt(pfn);
	if (__atomic_fetch_add(&logged, 1, __ATOMIC_RELAXED) < DF_LOG_MAX)
		rt_printf(PROG ": vcpu %u: pfn %#lx corrupt: %s page, %u bad words from %u, "
			  "word %u is %#lx\n", vcpu, (unsigned long)pfn, kind_names[k],
			  bad, first, first, (unsigned long)((uint64_t *)p)[first]);
	fill_page(p, k, seed);
	return 1;
}

static bool deadline_passed(uint64_t end)
{
	return end && rdtsc() >= end;
}

/* Idle @ms between touch passes, waking for boot->stop and the deadline. */
static void pause_ms(struct ovc_guest_boot *boot, uint64_t ms, uint64_t end)
{
	uint64_t until = rdtsc() + ns_to_tsc(ms * NSEC_PER_MSEC);

	while (ms && !boot->stop && !deadline_passed(end) && rdtsc() < until)
		idle_us(10000);
}

int guest_main(unsigned int vcpu, struct ovc_guest_boot *boot)
{
	struct df_cfg cfg = {
		.zero = 30, .dup = 40, .dup_set = 16, .dup_seed = 1,
		.then = THEN_IDLE, .touch = 10,
	};
	const struct rt_arg args[] = {
		{ "zero", RT_ARG_PCT, &cfg.zero },
		{ "dup", RT_ARG_PCT, &cfg.dup },
		{ "dup-set", RT_ARG_U64, &cfg.dup_set, NULL, 1ULL << 32 },
		{ "dup-seed", RT_ARG_U64, &cfg.dup_seed },
		{ "size", RT_ARG_SIZE, &cfg.size },
		{ "then", RT_ARG_CHOICE, &cfg.then, thens },
		{ "touch", RT_ARG_PCT, &cfg.touch },
		{ "pause", RT_ARG_U64, &cfg.pause, NULL, 3600000 },
		{ "seconds", RT_ARG_U64, &cfg.seconds, NULL, 1ULL << 32 },
	};
	unsigned int nr = boot->nr_vcpus;
	uint64_t avail, lo, hi, i, t0, fill_ns, end, seed;
	uint64_t kinds[NR_KINDS] = { 0 }, corrupt_pages = 0, passes = 0, verified = 0;
	struct df d = { .pages = (uint8_t *)(uintptr_t)OVC_GUEST_HEAP };
	struct rng rng;
	enum kind k;
	char sz[32];

	if (rt_parse_args(PROG, boot->args, args, ARRAY_SIZE(args), vcpu == 0))
		return 2;
	if (cfg.zero + cfg.dup > 100 || (cfg.dup && !cfg.dup_set)) {
		if (vcpu == 0)
			rt_printf(PROG ": zero=%lu%% + dup=%lu%% exceeds 100%% or dup-set=0\n",
				  (unsigned long)cfg.zero, (unsigned long)cfg.dup);
		return 2;
	}
	avail = boot->heap_end > OVC_GUEST_HEAP ? boot->heap_end - OVC_GUEST_HEAP : 0;
	d.npages = MIN(rt_size_resolve(&cfg.size, avail), avail) / PAGE_SIZE;
	if (!d.npages) {
		if (vcpu == 0)
			rt_printf(PROG ": no heap to fill (heap_end %#lx)\n",
				  (unsigned long)boot->heap_end);
		return 2;
	}
	d.nzero = d.npages * cfg.zero / 100;
	d.ndup = d.npages * cfg.dup / 100;
	d.dup_set = cfg.dup_set ? cfg.dup_set : 1;
	d.dup_key = mix64(cfg.dup_seed ^ DUP_MAGIC);
	d.uniq_key = mix64(boot->seed ^ UNIQ_MAGIC) ^ mix64(boot->vm_index + GOLDEN64);
	perm_init(&d.perm, d.npages, mix64(cfg.dup_seed ^ PERM_MAGIC));

	lo = d.npages * vcpu / nr;
	hi = d.npages * (vcpu + 1) / nr;
	rng_seed(&rng, boot->seed ^ mix64(boot->vm_index + 1) ^ ((uint64_t)vcpu << 48));

	if (vcpu == 0) {
		rt_printf(PROG ": %u vcpus, size=%s (%lu pages at %p) zero=%lu%% dup=%lu%% "
			  "dup-set=%lu dup-seed=%lu then=%s touch=%lu%% seconds=%lu\n",
			  nr, rt_fmt_size(sz, sizeof(sz), d.npages * PAGE_SIZE),
			  (unsigned long)d.npages, (void *)d.pages, (unsigned long)cfg.zero,
			  (unsigned long)cfg.dup, (unsigned long)cfg.dup_set,
			  (unsigned long)cfg.dup_seed, thens[cfg.then],
			  (unsigned long)cfg.touch, (unsigned long)cfg.seconds);
		report("wss_pages", OVC_GUEST_REPORT_SET, d.npages);
	}

	/*
	 * First touches can be slow (the host allocates every page), so even
	 * the fill polls boot->stop; a stopped fill shrinks our range to what
	 * was written, which is all the final check looks at.
	 */
	t0 = now_ns();
	for (i = lo; i < hi; i++) {
		if ((i - lo) % DF_POLL_EVERY == 0 && boot->stop)
			break;
		k = page_kind(&d, i, &seed);
		fill_page(d.pages + i * PAGE_SIZE, k, seed);
		kinds[k]++;
	}
	hi = i;
	fill_ns = now_ns() - t0;
	__atomic_add_fetch(&total_filled, hi - lo, __ATOMIC_RELAXED);
	report("zero_pages", OVC_GUEST_REPORT_ADD, kinds[KIND_ZERO]);
	report("dup_pages", OVC_GUEST_REPORT_ADD, kinds[KIND_DUP]);
	report("unique_pages", OVC_GUEST_REPORT_ADD, kinds[KIND_UNIQUE]);

	rt_barrier_wait(&barrier, nr);
	if (vcpu == 0)
		rt_printf(PROG ": filled %lu of %lu pages (%lu zero, %lu dup, %lu unique) "
			  "in %lu ms on vcpu 0\n",
			  (unsigned long)__atomic_load_n(&total_filled, __ATOMIC_RELAXED),
			  (unsigned long)d.npages, (unsigned long)d.nzero,
			  (unsigned long)d.ndup, (unsigned long)(d.npages - d.nzero - d.ndup),
			  (unsigned long)(fill_ns / NSEC_PER_MSEC));

	end = cfg.seconds ? rdtsc() + ns_to_tsc(cfg.seconds * NSEC_PER_SEC) : 0;
	if (cfg.then == THEN_TOUCH && cfg.touch && hi > lo) {
		while (!boot->stop && !deadline_passed(end)) {
			for (i = lo; i < hi; i++) {
				if ((i - lo) % DF_POLL_EVERY == 0 &&
				    (boot->stop || deadline_passed(end)))
					break;
				if (!rng_pct(&rng, cfg.touch))
					continue;
				corrupt_pages += check_page(&d, vcpu, i);
				verified++;
				/* Same contents again: breaks any sharing the host set up. */
				k = page_kind(&d, i, &seed);
				fill_page(d.pages + i * PAGE_SIZE, k, seed);
			}
			if (i == hi)
				passes++;
			pause_ms(boot, cfg.pause, end);
		}
	} else {
		while (!boot->stop && !deadline_passed(end))
			idle_us(10000);
	}

	for (i = lo; i < hi; i++)
		corrupt_pages += check_page(&d, vcpu, i);
	verified += hi - lo;

	report("corrupt", OVC_GUEST_REPORT_ADD, corrupt_pages);
	report("touch_passes", OVC_GUEST_REPORT_ADD, passes);
	report("verified_pages", OVC_GUEST_REPORT_ADD, verified);

	__atomic_add_fetch(&total_corrupt, corrupt_pages, __ATOMIC_RELAXED);
	__atomic_add_fetch(&total_passes, passes, __ATOMIC_RELAXED);
	rt_barrier_wait(&barrier, nr);
	if (vcpu == 0)
		rt_printf(PROG ": done: %lu pages verified, corrupt=%lu touch_passes=%lu\n",
			  (unsigned long)__atomic_load_n(&total_filled, __ATOMIC_RELAXED),
			  (unsigned long)__atomic_load_n(&total_corrupt, __ATOMIC_RELAXED),
			  (unsigned long)__atomic_load_n(&total_passes, __ATOMIC_RELAXED));
	return corrupt_pages ? 1 : 0;
}

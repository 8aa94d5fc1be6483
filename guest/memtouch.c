// SPDX-License-Identifier: MIT
/* guest/memtouch.c: the in-guest integrity oracle: versioned pages, verified on every access. */

/*
 * memtouch - read, verify and rewrite a working set of pages until stopped
 *
 * Args (boot->args, "key=value" separated by spaces or commas):
 *   size=SIZE       working set in bytes (K/M/G suffix, or N% of the heap);
 *                   default: all of [OVC_GUEST_HEAP, heap_end) minus the
 *                   version array; clamped to that maximum
 *   hot=PCT         share of the working set that is hot (default 100)
 *   hot-access=PCT  share of accesses that go to the hot pages (default 90)
 *   write=PCT       share of accesses that write a new version (default 30)
 *   pattern=random|seq  how pages are picked inside the hot or cold subset
 *                   (default random)
 *   seconds=N       run time; 0 = until boot->stop (default 0)
 *   shift=SECS      move the hot subset to the next hot-sized part of the
 *                   working set every SECS seconds; 0 = never (default 0)
 *
 * Layout: a uint32_t version per page at OVC_GUEST_HEAP (one run per vCPU),
 * then the working-set pages, page aligned. Page i belongs to vCPU
 * i % nr_vcpus, which is its only reader and writer, so nothing is locked.
 *
 * Page contents: version 0 means never written and must read as all zeros
 * (the VMM's fresh RAM). Version v > 0 holds word0 = MAGIC ^ pfn, word1 = v,
 * word2 = hash_words(words 3..511), words 3..511 = gen_word(mix(pfn, v), i).
 *
 * Every access verifies the whole page against its expected version, then
 * with probability write% writes the next version. A mismatch is reported
 * through corrupt(pfn), logged on serial (the first few per VM) and counted;
 * the page is then rewritten with a new version so one loss counts once.
 * After the run each vCPU verifies every page it owns (the final sweep).
 *
 * Reports (ADD, per vCPU): accesses, writes (every page write, repairs
 * included), verified_pages (accesses + sweep pages), corrupt, sweeps (1 per
 * vCPU that completed its final sweep). SET, from vCPU 0 at start: wss_pages.
 * Exit code: 0 if nothing was corrupt, 1 otherwise, 2 for bad arguments.
 */
#include "rt/rt.h"

#define PROG		"memtouch"
#define MT_MAGIC	0x6d656d746f756368ULL	/* "memtouch" */
#define MT_HDR_WORDS	3
#define MT_LOG_MAX	8	/* corrupt pages logged on serial, per VM */
#define MT_TIME_EVERY	64	/* accesses between clock reads */

enum { PATTERN_RANDOM, PATTERN_SEQ };
static const char *const patterns[] = { "random", "seq", NULL };

struct mt_cfg {
	struct rt_size size;
	uint64_t hot, hot_access, write, pattern, seconds, shift;
};

/* What every vCPU computes identically from the boot block and the args. */
struct mt_layout {
	uint64_t npages;	/* working set */
	uint64_t stride;	/* version slots per vCPU */
	uint32_t *versions;	/* nr_vcpus runs of @stride */
	uint8_t *pages;		/* page-aligned, after the versions */
};

/* One vCPU's share: local page l is global page l * nr + vcpu. */
struct mt_vcpu {
	unsigned int vcpu, nr;
	const struct mt_layout *lay;
	uint32_t *ver;
	uint64_t nlocal;
	uint64_t nhot, hot_start, hot_cursor, cold_cursor;
	struct rng rng;
	uint64_t accesses, writes, verified, corrupt;
};

static uint32_t logged;		/* ATOMIC: corrupt pages logged on serial so far */
static struct rt_barrier end_barrier;
static uint64_t total[4];	/* ATOMIC: accesses, writes, verified, corrupt of all vCPUs */

static uint64_t layout_need(uint64_t npages, unsigned int nr)
{
	uint64_t stride = (npages + nr - 1) / nr;

	return ALIGN_UP(stride * nr * sizeof(uint32_t), PAGE_SIZE) + npages * PAGE_SIZE;
}

/* Return false if the heap cannot hold even one page per vCPU. */
static bool layout_init(struct mt_layout *lay, const struct ovc_guest_boot *boot,
			const struct mt_cfg *cfg)
{
	uint64_t avail = boot->heap_end > OVC_GUEST_HEAP ? boot->heap_end - OVC_GUEST_HEAP : 0;
	unsigned int nr = boot->nr_vcpus;
	uint64_t max, want;

	/* Solve npages * (PAGE_SIZE + 4) + rounding <= avail, then step down. */
	max = avail / (PAGE_SIZE + sizeof(uint32_t));
	while (max && layout_need(max, nr) > avail)
		max--;
	if (max < nr)
		return false;

	want = rt_size_resolve(&cfg->size, avail) / PAGE_SIZE;
	lay->npages = MAX(MIN(want, max), nr);
	lay->stride = (lay->npages + nr - 1) / nr;
	lay->versions = (uint32_t *)(uintptr_t)OVC_GUEST_HEAP;
	lay->pages = (uint8_t *)(uintptr_t)(OVC_GUEST_HEAP +
		ALIGN_UP(lay->stride * nr * sizeof(uint32_t), PAGE_SIZE));
	return true;
}

static inline uint64_t *local_page(const struct mt_vcpu *v, uint64_t l)
{
	return (uint64_t *)(v->lay->pages + (l * v->nr + v->vcpu) * PAGE_SIZE);
}

static inline uint64_t page_pfn(const uint64_t *p)
{
	return (uint64_t)(uintptr_t)p >> PAGE_SHIFT;
}

static inline uint64_t content_seed(uint64_t pfn, uint32_t ver)
{
	return mix64(pfn * GOLDEN64 ^ ((uint64_t)ver << 32 | ver) ^ MT_MAGIC);
}

static void write_page(uint64_t *p, uint32_t ver)
{
	uint64_t pfn = page_pfn(p), seed = content_seed(pfn, ver);
	unsigned int i;

	for (i = MT_HDR_WORDS; i < PAGE_WORDS; i++)
		p[i] = gen_word(seed, i);
	p[0] = MT_MAGIC ^ pfn;
	p[1] = ver;
	p[2] = hash_words(p + MT_HDR_WORDS, PAGE_WORDS - MT_HDR_WORDS);
}

/* Slow path of verify_page(): describe the damage on serial. */
static void log_corrupt(const struct mt_vcpu *v, const uint64_t *p, uint32_t ver)
{
	uint64_t pfn = page_pfn(p), seed = content_seed(pfn, ver);
	unsigned int i, bad = 0, first = PAGE_WORDS;

	for (i = 0; i < PAGE_WORDS; i++) {
		uint64_t want;

		if (!ver)
			want = 0;
		else if (i == 0)
			want = MT_MAGIC ^ pfn;
		else if (i == 1)
			want = ver;
		else if (i == 2)
			want = p[2];	/* checked as a whole below */
		else
			want = gen_word(seed, i);
		if (p[i] != want) {
			if (!bad)
				first = i;
			bad++;
		}
	}
	rt_printf(PROG ": vcpu %u: pfn %#lx corrupt: want version %u, found word0 %#lx "
		  "word1 %#lx, %u bad words from %u%s\n", v->vcpu, (unsigned long)pfn, ver,
		  (unsigned long)p[0], (unsigned long)p[1], bad, first,
		  ver && p[2] != hash_words(p + MT_HDR_WORDS, PAGE_WORDS - MT_HDR_WORDS) ?
		  ", hash mismatch" : "");
}

/* Return true if page @p holds version @ver. */
static bool verify_page(const uint64_t *p, uint32_t ver)
{
	uint64_t pfn, seed, diff = 0;
	unsigned int i;

	if (!ver) {
		for (i = 0; i < PAGE_WORDS; i++)
			diff |= p[i];
		return !diff;
	}
	pfn = page_pfn(p);
	seed = content_seed(pfn, ver);
	diff = (p[0] ^ (MT_MAGIC ^ pfn)) | (p[1] ^ ver);
	for (i = MT_HDR_WORDS; i < PAGE_WORDS; i++)
		diff |= p[i] ^ gen_word(seed, i);
	return !diff && p[2] == hash_words(p + MT_HDR_WORDS, PAGE_WORDS - MT_HDR_WORDS);
}

static inline uint32_t next_version(uint32_t ver)
{
	return ver + 1 ? ver + 1 : 1;
}

/* Verify local page @l; rewrite it if @write or if it was lost. */
static void access_page(struct mt_vcpu *v, uint64_t l, bool write)
{
	uint64_t *p = local_page(v, l);
	uint32_t ver = v->ver[l];

	v->verified++;
	if (!verify_page(p, ver)) {
		v->corrupt++;
		corrupt(page_pfn(p));
		if (__atomic_fetch_add(&logged, 1, __ATOMIC_RELAXED) < MT_LOG_MAX)
			log_corrupt(v, p, ver);
		write = true;
	}
	if (write) {
		ver = next_version(ver);
		write_page(p, ver);
		v->ver[l] = ver;
		v->writes++;
	}
}

/* Pick the next page: hot with probability hot-access%, else cold. */
static uint64_t pick(struct mt_vcpu *v, const struct mt_cfg *cfg)
{
	uint64_t ncold = v->nlocal - v->nhot, idx;

	if (!ncold || (v->nhot && rng_pct(&v->rng, cfg->hot_access))) {
		if (cfg->pattern == PATTERN_SEQ)
			idx = v->hot_cursor++ % v->nhot;
		else
			idx = rng_below(&v->rng, v->nhot);
		return (v->hot_start + idx) % v->nlocal;
	}
	if (cfg->pattern == PATTERN_SEQ)
		idx = v->cold_cursor++ % ncold;
	else
		idx = rng_below(&v->rng, ncold);
	/* The cold pages are the ones after the hot window, wrapping. */
	return (v->hot_start + v->nhot + idx) % v->nlocal;
}

static void run(struct mt_vcpu *v, const struct mt_cfg *cfg,
		const struct ovc_guest_boot *boot)
{
	uint64_t t0 = rdtsc(), now;
	uint64_t end = cfg->seconds ? t0 + ns_to_tsc(cfg->seconds * NSEC_PER_SEC) : 0;
	uint64_t shift_ticks = cfg->shift ? ns_to_tsc(cfg->shift * NSEC_PER_SEC) : 0;
	uint64_t next_shift = t0 + shift_ticks;
	unsigned int n = 0;

	while (!boot->stop) {
		if (!v->nlocal) {
			idle_us(1000);
			now = rdtsc();
			if (end && now >= end)
				break;
			continue;
		}
		access_page(v, pick(v, cfg), rng_pct(&v->rng, cfg->write));
		v->accesses++;

		if (++n < MT_TIME_EVERY)
			continue;
		n = 0;
		now = rdtsc();
		if (end && now >= end)
			break;
		if (shift_ticks && now >= next_shift) {
			v->hot_start = (v->hot_start + v->nhot) % v->nlocal;
			next_shift += shift_ticks;
		}
	}
}

int guest_main(unsigned int vcpu, struct ovc_guest_boot *boot)
{
	struct mt_cfg cfg = {
		.hot = 100, .hot_access = 90, .write = 30,
		.pattern = PATTERN_RANDOM,
	};
	const struct rt_arg args[] = {
		{ "size", RT_ARG_SIZE, &cfg.size },
		{ "hot", RT_ARG_PCT, &cfg.hot },
		{ "hot-access", RT_ARG_PCT, &cfg.hot_access },
		{ "write", RT_ARG_PCT, &cfg.write },
		{ "pattern", RT_ARG_CHOICE, &cfg.pattern, patterns },
		{ "seconds", RT_ARG_U64, &cfg.seconds, NULL, 1ULL << 32 },
		{ "shift", RT_ARG_U64, &cfg.shift, NULL, 1ULL << 32 },
	};
	struct mt_layout lay;
	struct mt_vcpu v = { .vcpu = vcpu, .nr = boot->nr_vcpus, .lay = &lay };
	uint64_t l, t0, sweep_ns;
	char sz[32];

	if (rt_parse_args(PROG, boot->args, args, ARRAY_SIZE(args), vcpu == 0))
		return 2;
	if (!layout_init(&lay, boot, &cfg)) {
		if (vcpu == 0)
			rt_printf(PROG ": heap [%#lx, %#lx) too small for %u vcpus\n",
				  (unsigned long)OVC_GUEST_HEAP, (unsigned long)boot->heap_end,
				  boot->nr_vcpus);
		return 2;
	}

	v.nlocal = (lay.npages - vcpu + v.nr - 1) / v.nr;
	v.ver = lay.versions + vcpu * lay.stride;
	v.nhot = v.nlocal * cfg.hot / 100;
	if (cfg.hot && !v.nhot && v.nlocal)
		v.nhot = 1;
	rng_seed(&v.rng, boot->seed ^ mix64(boot->vm_index + 1) ^ ((uint64_t)vcpu << 48));
	/* Our own run of versions: nobody else reads or writes it. */
	memset(v.ver, 0, lay.stride * sizeof(*v.ver));

	if (vcpu == 0) {
		rt_printf(PROG ": %u vcpus, size=%s (%lu pages at %p) hot=%lu%% hot-access=%lu%% "
			  "write=%lu%% pattern=%s seconds=%lu shift=%lu\n",
			  v.nr, rt_fmt_size(sz, sizeof(sz), lay.npages * PAGE_SIZE),
			  (unsigned long)lay.npages, (void *)lay.pages,
			  (unsigned long)cfg.hot, (unsigned long)cfg.hot_access,
			  (unsigned long)cfg.write, patterns[cfg.pattern],
			  (unsigned long)cfg.seconds, (unsigned long)cfg.shift);
		report("wss_pages", OVC_GUEST_REPORT_SET, lay.npages);
	}

	run(&v, &cfg, boot);

	/* Final sweep: every page we own, whatever its temperature. */
	t0 = now_ns();
	for (l = 0; l < v.nlocal; l++)
		access_page(&v, l, false);
	sweep_ns = now_ns() - t0;

	report("accesses", OVC_GUEST_REPORT_ADD, v.accesses);
	report("writes", OVC_GUEST_REPORT_ADD, v.writes);
	report("verified_pages", OVC_GUEST_REPORT_ADD, v.verified);
	report("corrupt", OVC_GUEST_REPORT_ADD, v.corrupt);
	report("sweeps", OVC_GUEST_REPORT_ADD, 1);

	__atomic_add_fetch(&total[0], v.accesses, __ATOMIC_RELAXED);
	__atomic_add_fetch(&total[1], v.writes, __ATOMIC_RELAXED);
	__atomic_add_fetch(&total[2], v.verified, __ATOMIC_RELAXED);
	__atomic_add_fetch(&total[3], v.corrupt, __ATOMIC_RELAXED);
	rt_barrier_wait(&end_barrier, v.nr);
	if (vcpu == 0)
		rt_printf(PROG ": done: accesses=%lu writes=%lu verified_pages=%lu corrupt=%lu "
			  "(vcpu 0 swept %lu pages in %lu ms)\n",
			  (unsigned long)__atomic_load_n(&total[0], __ATOMIC_RELAXED),
			  (unsigned long)__atomic_load_n(&total[1], __ATOMIC_RELAXED),
			  (unsigned long)__atomic_load_n(&total[2], __ATOMIC_RELAXED),
			  (unsigned long)__atomic_load_n(&total[3], __ATOMIC_RELAXED),
			  (unsigned long)v.nlocal, (unsigned long)(sweep_ns / NSEC_PER_MSEC));
	return v.corrupt ? 1 : 0;
}

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
 *   balloon=on|off  drive a virtio-balloon (rt/balloon.c) from vCPU 0 over
 *                   the heap after the working set (default off; with on,
 *                   size= defaults to 40% of the heap)
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
 * balloon=on: the heap after the working set holds the driver's rings and
 * bitmaps, then the balloon pool, which the working set never overlaps.
 * vCPU 0 calls balloon_poll() every MT_BALLOON_POLL_MS of its access loop
 * (inflating and deflating the pool toward the host's num_pages, answering
 * statistics requests), reports free pool pages every MT_BALLOON_REPORT_MS
 * when PAGE_REPORTING was negotiated, and at the end polls once more and
 * writes actual a last time. memtouch allocates nothing from the pool: the
 * working set must come through ballooning, reporting and chaos intact.
 * A balloon that cannot be set up (no device) is an error, but memtouch
 * runs on without it so that every vCPU reaches the end.
 *
 * Reports (ADD, per vCPU): accesses, writes (every page write, repairs
 * included), verified_pages (accesses + sweep pages), corrupt, sweeps (1 per
 * vCPU that completed its final sweep). SET, from vCPU 0 at start: wss_pages.
 * With balloon=on, from vCPU 0 at the end: SET balloon_pages (pages in the
 * balloon); ADD inflated, deflated, oom_deflated, reported, stats_updates,
 * config_changes, errors (the balloon driver's failures).
 * Exit code: 0 if nothing was corrupt and the balloon had no errors, 1
 * otherwise, 2 for bad arguments.
 */
#include "rt/rt.h"
#include "rt/virtio.h"
#include "rt/balloon.h"

#define PROG		"memtouch"
#define MT_MAGIC	0x6d656d746f756368ULL	/* "memtouch" */
#define MT_HDR_WORDS	3
#define MT_LOG_MAX	8	/* corrupt pages logged on serial, per VM */
#define MT_TIME_EVERY	64	/* accesses between clock reads */
#define MT_BALLOON_POLL_MS	5
#define MT_BALLOON_REPORT_MS	1000
#define MT_BALLOON_REPORT_PAGES	4096	/* 16 MiB per reporting round */
#define MT_BALLOON_WSS_PCT	40	/* default size= with balloon=on */

enum { PATTERN_RANDOM, PATTERN_SEQ };
static const char *const patterns[] = { "random", "seq", NULL };

struct mt_cfg {
	struct rt_size size;
	uint64_t hot, hot_access, write, pattern, seconds, shift, balloon;
};

static const char *const onoff[] = { "off", "on", NULL };

/* vCPU 0's balloon, with balloon=on: the heap after the working set. */
struct mt_balloon {
	bool live;		/* balloon_init() succeeded */
	uint64_t meta_start;	/* the driver's rings and bitmaps from here */
	uint64_t pool_start, pool_end;
	uint64_t next_poll, next_report, poll_ticks, report_ticks;
	uint64_t failures;	/* set-up failures, on top of the driver's errors */
	struct virtio_dev dev;
	struct virtio_heap heap;
	struct balloon bd;
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

/*
 * Where the balloon goes: after the working set, the driver's metadata, then
 * the pool, 2 MiB aligned when that costs at most half of it. Pure
 * arithmetic, so every vCPU agrees. Return false if no pool page is left.
 */
static bool balloon_layout(const struct mt_layout *lay, const struct ovc_guest_boot *boot,
			   uint64_t *meta_start, uint64_t *pool_start, uint64_t *pool_end)
{
	uint64_t ws_end = (uintptr_t)lay->pages + lay->npages * PAGE_SIZE;
	uint64_t heap_end = boot->heap_end & ~(PAGE_SIZE - 1), start;

	if (ws_end >= heap_end)
		return false;
	start = ALIGN_UP(ws_end + balloon_meta_size(heap_end - ws_end), PAGE_SIZE);
	if (start >= heap_end)
		return false;
	if (ALIGN_UP(start, 2ULL << 20) < heap_end - (heap_end - start) / 2)
		start = ALIGN_UP(start, 2ULL << 20);
	*meta_start = ws_end;
	*pool_start = start;
	*pool_end = heap_end;
	return true;
}

/* vCPU 0: find and start the balloon. Failures are counted, not fatal. */
static void balloon_start(struct mt_balloon *mb, const struct ovc_guest_boot *boot)
{
	const uint64_t features = BALLOON_FEATURES_ALL | VIRTIO_FEATURE(VIRTIO_F_EVENT_IDX);
	char sz[32];
	int ret;

	/*
	 * A guest's free memory has usually been used before: write each pool
	 * page once, so the host holds it and the balloon gives something back.
	 */
	for (uint64_t pa = mb->pool_start; pa < mb->pool_end; pa += PAGE_SIZE)
		*(volatile uint64_t *)pa = pa;
	virtio_heap_init(&mb->heap, mb->meta_start, mb->pool_start);
	ret = balloon_find(&mb->dev, boot);
	if (ret) {
		rt_printf(PROG ": balloon=on but no virtio-balloon among %u windows\n",
			  boot->virtio_mmio_count);
		mb->failures++;
		return;
	}
	mb->bd.gstats.memtot = boot->ram_bytes + boot->high_ram_bytes;
	ret = balloon_init(&mb->bd, &mb->dev, &mb->heap, mb->pool_start, mb->pool_end, features);
	if (ret) {
		rt_printf(PROG ": balloon_init: %s (status %#x)\n", virtio_strerror(ret),
			  virtio_status(&mb->dev));
		mb->failures++;
		return;
	}
	mb->live = true;
	mb->poll_ticks = ns_to_tsc(MT_BALLOON_POLL_MS * NSEC_PER_MSEC);
	mb->report_ticks = ns_to_tsc(MT_BALLOON_REPORT_MS * NSEC_PER_MSEC);
	mb->next_poll = rdtsc();
	mb->next_report = mb->next_poll + mb->report_ticks;
	rt_printf(PROG ": balloon pool %s at %#lx, features %#lx\n",
		  rt_fmt_size(sz, sizeof(sz), mb->pool_end - mb->pool_start),
		  (unsigned long)mb->pool_start, (unsigned long)mb->dev.features);
}

/* vCPU 0's balloon work, when due; @now is the current TSC. */
static void balloon_tick(struct mt_balloon *mb, uint64_t now)
{
	struct balloon_guest_stats *s;

	if (!mb->live || now < mb->next_poll)
		return;
	s = &mb->bd.gstats;
	/* The pool is the only memory here that is not in use. */
	s->memfree = s->avail = balloon_pool_free_bytes(&mb->bd);
	balloon_poll(&mb->bd);		/* failures are counted and logged by the driver */
	if (mb->bd.reporting && now >= mb->next_report) {
		balloon_report_free(&mb->bd, MT_BALLOON_REPORT_PAGES);
		mb->next_report = now + mb->report_ticks;
	}
	mb->next_poll = rdtsc() + mb->poll_ticks;
}

static void run(struct mt_vcpu *v, const struct mt_cfg *cfg,
		const struct ovc_guest_boot *boot, struct mt_balloon *mb)
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
			if (mb)
				balloon_tick(mb, now);
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
		if (mb)
			balloon_tick(mb, now);
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
		{ "balloon", RT_ARG_CHOICE, &cfg.balloon, onoff },
	};
	static struct mt_balloon mb;	/* vCPU 0's only */
	struct mt_layout lay;
	struct mt_vcpu v = { .vcpu = vcpu, .nr = boot->nr_vcpus, .lay = &lay };
	uint64_t l, t0, sweep_ns, meta_start = 0, pool_start = 0, pool_end = 0;
	char sz[32];

	if (rt_parse_args(PROG, boot->args, args, ARRAY_SIZE(args), vcpu == 0))
		return 2;
	/* With a balloon, "all of the heap" would leave it nothing. */
	if (cfg.balloon && !cfg.size.bytes && !cfg.size.pct)
		cfg.size.pct = MT_BALLOON_WSS_PCT;
	if (!layout_init(&lay, boot, &cfg)) {
		if (vcpu == 0)
			rt_printf(PROG ": heap [%#lx, %#lx) too small for %u vcpus\n",
				  (unsigned long)OVC_GUEST_HEAP, (unsigned long)boot->heap_end,
				  boot->nr_vcpus);
		return 2;
	}
	if (cfg.balloon && !balloon_layout(&lay, boot, &meta_start, &pool_start, &pool_end)) {
		if (vcpu == 0)
			rt_printf(PROG ": balloon=on: the working set of %lu pages leaves no "
				  "room for a balloon pool below %#lx\n", (unsigned long)lay.npages,
				  (unsigned long)boot->heap_end);
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
		if (cfg.balloon) {
			mb.meta_start = meta_start;
			mb.pool_start = pool_start;
			mb.pool_end = pool_end;
			balloon_start(&mb, boot);
		}
	}

	run(&v, &cfg, boot, vcpu == 0 && cfg.balloon ? &mb : NULL);
	if (vcpu == 0 && mb.live) {
		/* At stop: one more poll (it does no waiting once stop is set), then actual. */
		mb.next_poll = 0;
		balloon_tick(&mb, rdtsc());
		balloon_finish(&mb.bd);
		balloon_check(&mb.bd);
	}

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
	if (vcpu == 0 && cfg.balloon) {
		report("balloon_pages", OVC_GUEST_REPORT_SET, mb.bd.nr_ballooned);
		report("inflated", OVC_GUEST_REPORT_ADD, mb.bd.inflated);
		report("deflated", OVC_GUEST_REPORT_ADD, mb.bd.deflated);
		report("oom_deflated", OVC_GUEST_REPORT_ADD, mb.bd.oom_deflated);
		report("reported", OVC_GUEST_REPORT_ADD, mb.bd.reported);
		report("stats_updates", OVC_GUEST_REPORT_ADD, mb.bd.stats_updates);
		report("config_changes", OVC_GUEST_REPORT_ADD, mb.bd.config_changes);
		report("errors", OVC_GUEST_REPORT_ADD, mb.bd.errors + mb.failures);
		rt_printf(PROG ": balloon: %lu pages (target %u, peak %u), inflated=%lu "
			  "deflated=%lu reported=%lu stats_updates=%lu config_changes=%lu "
			  "errors=%lu\n", (unsigned long)mb.bd.nr_ballooned, mb.bd.num_pages,
			  mb.bd.num_pages_max, (unsigned long)mb.bd.inflated,
			  (unsigned long)mb.bd.deflated, (unsigned long)mb.bd.reported,
			  (unsigned long)mb.bd.stats_updates, (unsigned long)mb.bd.config_changes,
			  (unsigned long)(mb.bd.errors + mb.failures));
	}

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
	if (vcpu == 0 && cfg.balloon && (mb.bd.errors || mb.failures))
		return 1;
	return v.corrupt ? 1 : 0;
}

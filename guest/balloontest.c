// SPDX-License-Identifier: MIT
/* guest/balloontest.c: drives a virtio-balloon device through the guest driver in rt/balloon.c. */

/*
 * balloontest - follow the host's balloon target, report free pages and
 * statistics, and check that the device never disturbs the guest's pages
 *
 * Args (boot->args, "key=value" separated by spaces or commas):
 *   pool=PCT        share of the heap the balloon may take pages from
 *                   (the top of the heap; default 80)
 *   hold=PCT        share of the pool the guest allocates at start, fills
 *                   with a pattern and keeps verifying (default 10)
 *   churn=N         held pages freed (dirty, so that reporting has resident
 *                   pages to release) and replaced by fresh allocations
 *                   every 250 ms (default 16)
 *   report=on|off|writable  free page reporting when negotiated, with
 *                   device-readable buffers (on) or device-writable ones
 *                   as Linux posts them (writable); default on
 *   oom=PCT         once the host has lowered its target below the largest
 *                   it asked for, allocate this share of the pool at once
 *                   through balloon_alloc_page() (no polling in between),
 *                   so the balloon must deflate on OOM; default 0 (off)
 *   seconds=N       run time; 0 = until boot->stop (default 0)
 *   features=MASK   balloon feature bits to ask for (default 0x27: bits 0
 *                   MUST_TELL_HOST, 1 STATS_VQ, 2 DEFLATE_ON_OOM, 5
 *                   PAGE_REPORTING); fewer bits test the device's queue
 *                   numbering and its handling of a driver without them
 *
 * Only vCPU 0 works; the others return at once. It finds the first balloon
 * window, negotiates the features= the device offers plus EVENT_IDX, then
 * loops:
 * balloon_poll() (inflate/deflate toward num_pages, answer stats requests),
 * refresh the statistics, every 500 ms report up to 16 MiB of free pages,
 * every 250 ms verify a slice of the held pages and churn some, idle
 * 1-10 ms. At the end
 * (boot->stop or seconds=) it writes actual a last time, verifies every held
 * page, frees them and recounts the driver's books.
 *
 * Held pages are the guest's own: a device that discards or writes a page
 * outside the balloon and outside a pending report corrupts one, which is
 * reported through corrupt(pfn) and counted.
 *
 * Reports, from vCPU 0 at the end: SET balloon_pages (pages in the balloon
 * at the end), target_max (largest num_pages seen); ADD inflated, deflated,
 * oom_deflated, reported (pages), stats_updates, config_changes,
 * config_irqs, alloc_failed, corrupt, errors (the driver's plus this
 * test's).
 * Exit code: 0, 1 on any error (one serial line each), 2 for bad arguments.
 */
#include "rt/rt.h"
#include "rt/virtio.h"
#include "rt/balloon.h"

#define PROG		"balloontest"
#define BT_MAGIC	0x62616c6c6f6f6e21ULL	/* "balloon!" */
#define BT_REPORT_MS	500
#define BT_REPORT_PAGES	4096		/* 16 MiB per reporting round */
#define BT_VERIFY_MS	250
#define BT_VERIFY_PAGES	64		/* held pages checked per verify round */
#define BT_LOG_MAX	8

enum { REPORT_OFF, REPORT_ON, REPORT_WRITABLE };
static const char *const report_modes[] = { "off", "on", "writable", NULL };

struct bt {
	struct ovc_guest_boot *boot;
	struct virtio_dev dev;
	struct virtio_heap heap;
	struct balloon bd;
	uint64_t *held;		/* bitmap over pool pages the test allocated */
	uint64_t nheld;
	uint64_t verify_cursor;
	struct rng rng;
	uint64_t corrupt, errors;
	uint64_t oom_wanted, oom_got;
	bool oom_done;
};

static __attribute__((format(printf, 2, 3))) void fail(struct bt *t, const char *fmt, ...)
{
	char buf[200];
	va_list ap;

	if (t->errors++ < BT_LOG_MAX) {
		va_start(ap, fmt);
		rt_vsnprintf(buf, sizeof(buf), fmt, ap);
		va_end(ap);
		rt_printf(PROG ": FAIL: %s\n", buf);
	}
}

static inline uint64_t held_seed(const struct bt *t, uint64_t pa)
{
	return mix64((pa >> PAGE_SHIFT) * GOLDEN64 ^ t->boot->seed ^ BT_MAGIC);
}

static inline uint64_t pool_idx(const struct bt *t, uint64_t pa)
{
	return (pa - t->bd.pool_start) / PAGE_SIZE;
}

/* Allocate one page through the driver, fill it and keep it. */
static bool hold_one(struct bt *t)
{
	uint64_t pa = balloon_alloc_page(&t->bd), i;

	if (!pa)
		return false;
	i = pool_idx(t, pa);
	if (pa % PAGE_SIZE || pa < t->bd.pool_start || pa >= t->bd.pool_end ||
	    (t->held[i / 64] >> (i % 64) & 1)) {
		fail(t, "balloon_alloc_page() returned %#lx: outside the pool or already held",
		     (unsigned long)pa);
		return false;
	}
	page_fill((void *)(uintptr_t)pa, held_seed(t, pa));
	t->held[i / 64] |= 1ULL << (i % 64);
	t->nheld++;
	return true;
}

static void verify_one(struct bt *t, uint64_t idx)
{
	uint64_t pa = t->bd.pool_start + idx * PAGE_SIZE;
	unsigned int bad, first;

	bad = page_check((void *)(uintptr_t)pa, held_seed(t, pa), false, &first);
	if (!bad)
		return;
	corrupt(pa >> PAGE_SHIFT);
	if (t->corrupt++ < BT_LOG_MAX)
		rt_printf(PROG ": held page %#lx corrupt: %u bad words from %u (word %#lx)\n",
			  (unsigned long)pa, bad, first,
			  (unsigned long)((uint64_t *)(uintptr_t)pa)[first]);
	/* Rewrite it so that one loss counts once. */
	page_fill((void *)(uintptr_t)pa, held_seed(t, pa));
}

/* Verify up to @n held pages from the cursor on, round robin. */
static void verify_some(struct bt *t, uint64_t n)
{
	uint64_t pages = t->bd.pool_pages, idx = t->verify_cursor, seen = 0, w, word;

	while (n && seen < pages) {
		if (idx >= pages)
			idx = 0;
		w = idx / 64;
		word = t->held[w] >> (idx % 64);
		if (!word) {
			seen += 64 - idx % 64;
			idx = (w + 1) * 64;
			continue;
		}
		idx += (uint64_t)__builtin_ctzll(word);
		seen++;
		if (idx >= pages)
			continue;
		verify_one(t, idx++);
		n--;
	}
	t->verify_cursor = idx;
}

/* Free @n random held pages (after a last check) and hold as many fresh ones. */
static void churn(struct bt *t, uint64_t n)
{
	uint64_t pages = t->bd.pool_pages, i, idx, freed = 0, w, word;

	for (i = 0; i < n && t->nheld; i++) {
		idx = rng_below(&t->rng, pages);
		/* The next held page at or after idx, wrapping. */
		for (;;) {
			w = idx / 64;
			word = t->held[w] >> (idx % 64);
			if (word) {
				idx += (uint64_t)__builtin_ctzll(word);
				break;
			}
			idx = (w + 1) * 64 >= pages ? 0 : (w + 1) * 64;
		}
		verify_one(t, idx);
		if (balloon_free_page(&t->bd, t->bd.pool_start + idx * PAGE_SIZE)) {
			fail(t, "balloon_free_page(%#lx) refused a held page",
			     (unsigned long)(t->bd.pool_start + idx * PAGE_SIZE));
			return;
		}
		t->held[idx / 64] &= ~(1ULL << (idx % 64));
		t->nheld--;
		freed++;
	}
	while (freed-- && hold_one(t))
		;
}

static void refresh_stats(struct bt *t)
{
	struct balloon_guest_stats *s = &t->bd.gstats;

	s->memtot = t->boot->ram_bytes + t->boot->high_ram_bytes;
	s->memfree = balloon_pool_free_bytes(&t->bd);
	/* Nothing in this guest is reclaimable: what is free is what is available. */
	s->avail = s->memfree;
	s->caches = 0;
}

/* Allocate oom% of the pool in one go, the way a sudden demand would. */
static void oom_burst(struct bt *t, uint64_t pct)
{
	uint64_t d0 = t->bd.oom_deflated;

	t->oom_done = true;
	t->oom_wanted = t->bd.pool_pages * pct / 100;
	rt_printf(PROG ": target fell to %u pages (peak %u): allocating %lu pages, "
		  "pool free %lu, balloon %lu\n", t->bd.num_pages, t->bd.num_pages_max,
		  (unsigned long)t->oom_wanted, (unsigned long)t->bd.nr_free,
		  (unsigned long)t->bd.nr_ballooned);
	while (t->oom_got < t->oom_wanted && !t->boot->stop && hold_one(t))
		t->oom_got++;
	rt_printf(PROG ": oom burst: got %lu of %lu pages, %lu deflated on OOM (%s)\n",
		  (unsigned long)t->oom_got, (unsigned long)t->oom_wanted,
		  (unsigned long)(t->bd.oom_deflated - d0),
		  t->bd.deflate_on_oom ? "DEFLATE_ON_OOM negotiated" : "no DEFLATE_ON_OOM");
}

static void run(struct bt *t, uint64_t seconds, uint64_t report_mode, uint64_t oom,
		uint64_t churn_pages)
{
	uint64_t now = rdtsc(), end = seconds ? now + ns_to_tsc(seconds * NSEC_PER_SEC) : 0;
	uint64_t report_every = ns_to_tsc(BT_REPORT_MS * NSEC_PER_MSEC);
	uint64_t verify_every = ns_to_tsc(BT_VERIFY_MS * NSEC_PER_MSEC);
	uint64_t next_report = now + report_every, next_verify = now + verify_every;
	int ret;

	while (!t->boot->stop && (!end || now < end)) {
		refresh_stats(t);
		balloon_poll(&t->bd);	/* failures are counted and logged by the driver */

		if (oom && !t->oom_done && t->bd.num_pages < t->bd.num_pages_max)
			oom_burst(t, oom);

		now = rdtsc();
		if (report_mode != REPORT_OFF && t->bd.reporting && now >= next_report) {
			ret = balloon_report_free(&t->bd, BT_REPORT_PAGES);
			if (ret < 0 && ret != -VIRTIO_EAGAIN && ret != -VIRTIO_ECANCELED)
				rt_printf(PROG ": reporting: %s\n", virtio_strerror(ret));
			next_report = now + report_every;
		}
		if (now >= next_verify) {
			verify_some(t, BT_VERIFY_PAGES);
			churn(t, churn_pages);
			next_verify = now + verify_every;
		}
		idle_us(1000 + (uint32_t)rng_below(&t->rng, 9001));
		now = rdtsc();
	}
}

/* Heap layout: driver metadata and the held bitmap at the bottom, the pool at the top. */
static bool layout(struct bt *t, uint64_t pool_pct, uint64_t *pool_start, uint64_t *pool_end)
{
	uint64_t heap_end = t->boot->heap_end & ~(PAGE_SIZE - 1);
	uint64_t avail = heap_end > OVC_GUEST_HEAP ? heap_end - OVC_GUEST_HEAP : 0;
	uint64_t pool = avail * pool_pct / 100 & ~(PAGE_SIZE - 1), meta, start;

	meta = balloon_meta_size(pool) + pool / PAGE_SIZE / 8 + 4 * PAGE_SIZE;
	start = heap_end - pool;
	if (start < OVC_GUEST_HEAP + meta)
		start = ALIGN_UP(OVC_GUEST_HEAP + meta, PAGE_SIZE);
	/* A 2 MiB aligned start when it costs little: whole huge pages for the host. */
	if (ALIGN_UP(start, 2ULL << 20) < heap_end - (heap_end - start) / 2)
		start = ALIGN_UP(start, 2ULL << 20);
	if (start >= heap_end)
		return false;
	*pool_start = start;
	*pool_end = heap_end;
	virtio_heap_init(&t->heap, OVC_GUEST_HEAP, start);
	return true;
}

int guest_main(unsigned int vcpu, struct ovc_guest_boot *boot)
{
	uint64_t pool_pct = 80, hold_pct = 10, report_mode = REPORT_ON, oom = 0, seconds = 0;
	uint64_t churn_pages = 16, want_features = BALLOON_FEATURES_ALL;
	const struct rt_arg args[] = {
		{ "pool", RT_ARG_PCT, &pool_pct },
		{ "hold", RT_ARG_PCT, &hold_pct },
		{ "report", RT_ARG_CHOICE, &report_mode, report_modes },
		{ "oom", RT_ARG_PCT, &oom },
		{ "churn", RT_ARG_U64, &churn_pages, NULL, 1ULL << 20 },
		{ "features", RT_ARG_U64, &want_features, NULL, BALLOON_FEATURES_ALL },
		{ "seconds", RT_ARG_U64, &seconds, NULL, 1ULL << 32 },
	};
	static struct bt t;
	uint64_t pool_start, pool_end, want, i;
	char sz[32];
	int ret;

	if (rt_parse_args(PROG, boot->args, args, ARRAY_SIZE(args), vcpu == 0))
		return 2;
	if (vcpu != 0)
		return 0;
	t.boot = boot;
	rng_seed(&t.rng, boot->seed ^ BT_MAGIC);

	if (!pool_pct || !layout(&t, pool_pct, &pool_start, &pool_end)) {
		rt_printf(PROG ": heap [%#lx, %#lx) leaves no room for a %lu%% pool\n",
			  (unsigned long)OVC_GUEST_HEAP, (unsigned long)boot->heap_end,
			  (unsigned long)pool_pct);
		return 2;
	}
	ret = balloon_find(&t.dev, boot);
	if (ret) {
		fail(&t, "no virtio-balloon among %u virtio-mmio windows (devices=balloon?)",
		     boot->virtio_mmio_count);
		goto out;
	}
	t.held = virtio_heap_alloc(&t.heap, ALIGN_UP((pool_end - pool_start) / PAGE_SIZE, 64) / 8,
				   64);
	if (!t.held) {
		fail(&t, "no room below the pool for its bitmaps");
		goto out;
	}
	t.bd.gstats.memtot = boot->ram_bytes + boot->high_ram_bytes;
	t.bd.gstats.memfree = t.bd.gstats.avail = pool_end - pool_start;
	ret = balloon_init(&t.bd, &t.dev, &t.heap, pool_start, pool_end,
			   (want_features & BALLOON_FEATURES_ALL) |
			   VIRTIO_FEATURE(VIRTIO_F_EVENT_IDX));
	if (ret) {
		fail(&t, "balloon_init: %s (status %#x, features offered %#lx)",
		     virtio_strerror(ret), virtio_status(&t.dev),
		     (unsigned long)t.dev.device_features);
		goto out;
	}
	t.bd.report_writable = report_mode == REPORT_WRITABLE;
	rt_printf(PROG ": window %u, pool %s at %#lx, must_tell_host=%d stats_vq=%d "
		  "deflate_on_oom=%d reporting=%d event_idx=%d, report=%s hold=%lu%% oom=%lu%%\n",
		  t.dev.index, rt_fmt_size(sz, sizeof(sz), pool_end - pool_start),
		  (unsigned long)pool_start, t.bd.must_tell_host, t.bd.stats_vq,
		  t.bd.deflate_on_oom, t.bd.reporting,
		  !!(t.dev.features & VIRTIO_FEATURE(VIRTIO_F_EVENT_IDX)),
		  report_modes[report_mode], (unsigned long)hold_pct, (unsigned long)oom);

	want = t.bd.pool_pages * hold_pct / 100;
	for (i = 0; i < want; i++)
		if (!hold_one(&t)) {
			fail(&t, "only %lu of %lu pages to hold from a fresh pool",
			     (unsigned long)i, (unsigned long)want);
			break;
		}

	run(&t, seconds, report_mode, oom, churn_pages);

	ret = balloon_finish(&t.bd);
	if (ret)
		rt_printf(PROG ": final actual write: %s\n", virtio_strerror(ret));
	for (i = 0; i < t.bd.pool_pages; i++) {
		if (!(t.held[i / 64] >> (i % 64) & 1))
			continue;
		verify_one(&t, i);
		if (balloon_free_page(&t.bd, t.bd.pool_start + i * PAGE_SIZE))
			fail(&t, "balloon_free_page(%#lx) refused a held page",
			     (unsigned long)(t.bd.pool_start + i * PAGE_SIZE));
	}
	balloon_check(&t.bd);
	if (oom && !t.oom_done)
		rt_printf(PROG ": note: the target never fell, no oom burst\n");
	rt_printf(PROG ": target %u (peak %u), balloon %lu pages, actual %u, pool free %lu of %lu\n",
		  t.bd.num_pages, t.bd.num_pages_max, (unsigned long)t.bd.nr_ballooned,
		  t.bd.actual, (unsigned long)t.bd.nr_free, (unsigned long)t.bd.pool_pages);

out:
	report("balloon_pages", OVC_GUEST_REPORT_SET, t.bd.nr_ballooned);
	report("target_max", OVC_GUEST_REPORT_SET, t.bd.num_pages_max);
	report("inflated", OVC_GUEST_REPORT_ADD, t.bd.inflated);
	report("deflated", OVC_GUEST_REPORT_ADD, t.bd.deflated);
	report("oom_deflated", OVC_GUEST_REPORT_ADD, t.bd.oom_deflated);
	report("reported", OVC_GUEST_REPORT_ADD, t.bd.reported);
	report("stats_updates", OVC_GUEST_REPORT_ADD, t.bd.stats_updates);
	report("config_changes", OVC_GUEST_REPORT_ADD, t.bd.config_changes);
	report("config_irqs", OVC_GUEST_REPORT_ADD, t.bd.config_irqs);
	report("alloc_failed", OVC_GUEST_REPORT_ADD, t.bd.alloc_failed);
	report("corrupt", OVC_GUEST_REPORT_ADD, t.corrupt);
	report("errors", OVC_GUEST_REPORT_ADD, t.bd.errors + t.errors + t.corrupt);
	rt_printf(PROG ": %s: inflated=%lu deflated=%lu oom_deflated=%lu reported=%lu "
		  "stats_updates=%lu config_changes=%lu config_irqs=%lu alloc_failed=%lu "
		  "corrupt=%lu errors=%lu\n",
		  t.bd.errors + t.errors + t.corrupt ? "FAILED" : "ok",
		  (unsigned long)t.bd.inflated, (unsigned long)t.bd.deflated,
		  (unsigned long)t.bd.oom_deflated, (unsigned long)t.bd.reported,
		  (unsigned long)t.bd.stats_updates, (unsigned long)t.bd.config_changes,
		  (unsigned long)t.bd.config_irqs, (unsigned long)t.bd.alloc_failed,
		  (unsigned long)t.corrupt, (unsigned long)(t.bd.errors + t.errors + t.corrupt));
	return t.bd.errors + t.errors + t.corrupt ? 1 : 0;
}

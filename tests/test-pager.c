// SPDX-License-Identifier: MIT
/* tests/test-pager.c: reclaim into the compressed tier and the swap file, coldest first, nothing lost. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "host/host-internal.h"
#include "tests/kit/oracle.h"

#define MiB (1ULL << 20)
#define PAGE OVC_PAGE_SIZE
#define WORDS (PAGE / sizeof(uint64_t))

static struct ovc_host *host;
static char swap_dir[64];

static void setup(void)
{
	struct ovc_host_config cfg;

	ovc_host_config_init(&cfg);
	cfg.log_level = OVC_LOG_ERR;
	host = ovc_host_new(&cfg);
	cr_assert_not_null(host);
	snprintf(swap_dir, sizeof(swap_dir), "/tmp/ovc-test-pager-XXXXXX");
	cr_assert_not_null(mkdtemp(swap_dir));
}

static void teardown(void)
{
	if (host)
		cr_assert_eq(ovc_host_destroy(host), 0);
	rmdir(swap_dir);
}

static void host_done(void)
{
	cr_assert_eq(ovc_host_destroy(host), 0);
	host = NULL;
}

TestSuite(pager, .init = setup, .fini = teardown, .timeout = 120);

/* Page contents by kind: 0 zero, 1 compressible (text-like), 2 incompressible. */
static void fill(uint64_t *w, uint64_t page, unsigned int kind)
{
	uint64_t x = page * 0x9e3779b97f4a7c15ULL + 1, i;

	for (i = 0; i < WORDS; i++) {
		switch (kind) {
		case 0:
			w[i] = 0;
			break;
		case 1:
			w[i] = 0x2020202065676170ULL ^ (page << 8) ^ (i % 7);
			break;
		default:
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			w[i] = x;
			break;
		}
	}
}

static bool holds(const uint64_t *w, uint64_t page, unsigned int kind)
{
	uint64_t want[WORDS];

	fill(want, page, kind);
	return !memcmp(w, want, PAGE);
}

static struct ovc_vm *make_vm(const char *name, uint64_t bytes, uint64_t **base)
{
	struct ovc_vm *vm = ovc_vm_new(host, name);
	void *hva;

	cr_assert_not_null(vm);
	cr_assert_eq(ovc_vm_add_ram(vm, 0, bytes, &hva), 0);
	*base = hva;
	return vm;
}

static struct ovc_pager *make_pager(struct ovc_vm *vm, uint64_t zip_cap, uint64_t swap_bytes)
{
	struct ovc_pager_config cfg;
	struct ovc_pager *p;

	ovc_pager_config_init(&cfg);
	cfg.zip_cap_bytes = zip_cap;
	if (swap_bytes) {
		cfg.swap_dir = swap_dir;
		cfg.swap_bytes = swap_bytes;
	}
	p = ovc_vm_add_pager(vm, &cfg);
	cr_assert_not_null(p, "ovc_vm_add_pager: %s", strerror(errno));
	return p;
}

static int state_of(struct ovc_vm *vm, uint64_t page)
{
	return ovc_vm_page_state(vm, page * PAGE, NULL);
}

/* Zero pages to ZERO, compressible ones to the tier, the rest to disk; all come back. */
Test(pager, reclaim_sorts_pages_by_content)
{
	const uint64_t n = 3000;
	struct ovc_pager_result r;
	struct ovc_pager_stats ps;
	struct ovc_mem_stats before, after;
	struct ovc_pager *p;
	struct ovc_vm *vm;
	uint64_t *base, i;

	vm = make_vm("sort", 16 * MiB, &base);
	p = make_pager(vm, 8 * MiB, 16 * MiB);
	for (i = 0; i < n; i++)
		fill(base + i * WORDS, i, (unsigned int)(i % 3));
	ovc_vm_get_mem_stats(vm, &before);

	cr_assert_eq(ovc_pager_reclaim(p, n, &r), (int64_t)n);
	cr_assert_eq(r.zero, n / 3);
	cr_assert_eq(r.compressed, n / 3);
	cr_assert_eq(r.swapped, n / 3);
	cr_assert_eq(r.errors, 0);
	/* Every page was just written: the first sweep only took the bits away. */
	cr_assert_geq(r.referenced, n);
	cr_assert_eq(state_of(vm, 0), OVC_PAGE_ZERO);
	cr_assert_eq(state_of(vm, 1), OVC_PAGE_COMPRESSED);
	cr_assert_eq(state_of(vm, 2), OVC_PAGE_SWAPPED);
	ovc_vm_get_mem_stats(vm, &after);
	cr_assert_leq(after.host_bytes + n * PAGE * 9 / 10, before.host_bytes,
		      "host bytes %llu -> %llu", (unsigned long long)before.host_bytes,
		      (unsigned long long)after.host_bytes);
	ovc_pager_get_stats(p, &ps);
	cr_assert_eq(ps.zip_pages, n / 3);
	cr_assert_eq(ps.swap_pages, n / 3);
	cr_assert_lt(ps.zip_bytes, n / 3 * PAGE / 4, "the tier holds %llu bytes",
		     (unsigned long long)ps.zip_bytes);

	for (i = 0; i < n; i++)
		cr_assert(holds(base + i * WORDS, i, (unsigned int)(i % 3)), "page %llu",
			  (unsigned long long)i);
	ovc_pager_get_stats(p, &ps);
	cr_assert_eq(ps.zip_pages, 0);
	cr_assert_eq(ps.swap_pages, 0);
	cr_assert_eq(ovc_vm_destroy(vm), 0);
	host_done();
}

/* CLOCK: pages used since the hand passed are spared; the hand moves on. */
Test(pager, coldest_first)
{
	const uint64_t n = 2000;
	struct ovc_pager_result r;
	struct ovc_pager *p;
	struct ovc_vm *vm;
	uint64_t *base, i, cold;

	vm = make_vm("clock", 16 * MiB, &base);
	p = make_pager(vm, 16 * MiB, 0);
	for (i = 0; i < n; i++)
		fill(base + i * WORDS, i, 1);
	/* A first pass clears every bit, a second takes the first half. */
	cr_assert_eq(ovc_pager_reclaim(p, n / 2, &r), (int64_t)(n / 2));
	for (i = 0; i < n / 2; i++)
		cr_assert_eq(state_of(vm, i), OVC_PAGE_COMPRESSED);
	/* The guest uses pages 0..99 again: they come back referenced. */
	for (i = 0; i < 100; i++)
		cr_assert(holds(base + i * WORDS, i, 1));
	cr_assert_eq(ovc_pager_reclaim(p, 100, &r), 100);
	cr_assert_eq(r.referenced, 0);
	for (i = 0; i < 100; i++)
		cr_assert_eq(state_of(vm, i), OVC_PAGE_RESIDENT, "hot page %llu went",
			     (unsigned long long)i);
	/* The hundred came from the cold half the hand had already passed. */
	for (i = n / 2, cold = 0; i < n; i++)
		cold += state_of(vm, i) == OVC_PAGE_COMPRESSED;
	cr_assert_eq(cold, 100);
	cr_assert_eq(ovc_vm_destroy(vm), 0);
	host_done();
}

/* A page under another transition is never taken. */
Test(pager, skips_busy_pages)
{
	struct ovc_pager_result r;
	struct ovc_xact *x = malloc(sizeof(*x));
	struct ovc_pager *p;
	struct ovc_vm *vm;
	uint64_t *base, i;

	vm = make_vm("busy", 4 * MiB, &base);
	p = make_pager(vm, 4 * MiB, 0);
	for (i = 0; i < 256; i++)
		fill(base + i * WORDS, i, 1);
	cr_assert_eq(ovc__xact_begin(x, ovc__vm_ram(vm), 0, 64, 0), 0);
	ovc_pager_reclaim(p, 256, &r);
	cr_assert_geq(r.busy, 64);
	ovc__xact_abort(x);
	for (i = 0; i < 64; i++)
		cr_assert_eq(state_of(vm, i), OVC_PAGE_RESIDENT);
	for (i = 64; i < 256; i++)
		cr_assert_eq(state_of(vm, i), OVC_PAGE_COMPRESSED);
	free(x);
	cr_assert_eq(ovc_vm_destroy(vm), 0);
	host_done();
}

/* A full tier moves its oldest pages on to the swap file. */
Test(pager, tier_evicts_to_disk)
{
	const uint64_t n = 4000;
	struct ovc_pager_stats ps;
	struct ovc_pager *p;
	struct ovc_vm *vm;
	uint64_t *base, i;

	vm = make_vm("evict", 32 * MiB, &base);
	p = make_pager(vm, 256 * 1024, 32 * MiB);
	for (i = 0; i < n; i++)
		fill(base + i * WORDS, i, 1);
	cr_assert_eq(ovc_pager_reclaim(p, n, NULL), (int64_t)n);
	ovc_pager_get_stats(p, &ps);
	cr_assert_gt(ps.evicted, 0);
	cr_assert_leq(ps.zip_bytes, 256 * 1024);
	cr_assert_eq(ps.zip_pages + ps.swap_pages, n);
	for (i = 0; i < n; i++)
		cr_assert(holds(base + i * WORDS, i, 1), "page %llu", (unsigned long long)i);
	cr_assert_eq(ovc_vm_destroy(vm), 0);
	host_done();
}

/* Without a disk, pages that compress badly stay; nothing is an error. */
Test(pager, no_disk_keeps_incompressible)
{
	struct ovc_pager_result r;
	struct ovc_pager *p;
	struct ovc_vm *vm;
	uint64_t *base, i;

	vm = make_vm("nodisk", 4 * MiB, &base);
	p = make_pager(vm, 4 * MiB, 0);
	for (i = 0; i < 100; i++)
		fill(base + i * WORDS, i, 2);
	cr_assert_eq(ovc_pager_reclaim(p, 100, &r), 0);
	cr_assert_eq(r.errors, 0);
	for (i = 0; i < 100; i++)
		cr_assert_eq(state_of(vm, i), OVC_PAGE_RESIDENT);
	cr_assert_eq(ovc_vm_destroy(vm), 0);
	host_done();
}

static void reclaimer(struct ovc_vm *vm, void *opaque, const _Atomic bool *stop)
{
	struct ovc_pager *p = make_pager(vm, 1 * MiB, 32 * MiB);
	uint64_t *total = opaque;

	while (!atomic_load(stop)) {
		int64_t n = ovc_pager_reclaim(p, 256, NULL);

		if (n > 0)
			*total += (uint64_t)n;
		usleep(1000);
	}
}

/* The integrity oracle with the pager reclaiming hard underneath the accessors. */
Test(pager, oracle_under_reclaim, .timeout = 300)
{
	struct oracle_config cfg;
	struct oracle_result res;
	uint64_t reclaimed = 0;

	oracle_config_init(&cfg);
	cfg.chaos = false;
	cfg.npages = 2048;
	cfg.min_accesses = 200000;
	cfg.seconds = 3;
	cfg.side = reclaimer;
	cfg.side_opaque = &reclaimed;
	cr_assert_eq(oracle_run(host, &cfg, &res), 0);
	cr_log_info("accesses %llu reclaimed %llu store faults %llu",
		    (unsigned long long)res.accesses, (unsigned long long)reclaimed,
		    (unsigned long long)res.mem.faults[OVC_FAULT_STORE]);
	cr_assert_eq(res.corrupt, 0);
	cr_assert_eq(res.mem.faults[OVC_FAULT_ERROR], 0);
	cr_assert_gt(reclaimed, 1000);
	cr_assert_gt(res.mem.faults[OVC_FAULT_STORE], 1000);
	host_done();
}

Test(pager, bad_config)
{
	struct ovc_pager_config cfg;
	struct ovc_vm *vm;
	uint64_t *base;

	vm = make_vm("bad", 4 * MiB, &base);
	ovc_pager_config_init(&cfg);
	cfg.zip_cap_bytes = 0;		/* neither tier */
	errno = 0;
	cr_assert_null(ovc_vm_add_pager(vm, &cfg));
	cr_assert_eq(errno, EINVAL);
	cfg.zip_cap_bytes = MiB;
	cfg.swap_dir = "/nonexistent/ovc";
	cfg.swap_bytes = MiB;
	cr_assert_null(ovc_vm_add_pager(vm, &cfg));
	cr_assert_not_null(ovc_vm_add_pager(vm, NULL));
	errno = 0;
	cr_assert_null(ovc_vm_add_pager(vm, NULL));
	cr_assert_eq(errno, EEXIST);
	cr_assert_eq(ovc_pager_reclaim(NULL, 1, NULL), -EINVAL);
	cr_assert_eq(ovc_vm_destroy(vm), 0);
	host_done();
}

/* The disk refuses writes: those pages stay RESIDENT with their contents, and it is counted. */
Test(pager, store_faults_leave_pages_resident)
{
	struct ovc_pager_result r;
	struct ovc_pager_stats ps;
	struct ovc_pager *p;
	struct ovc_vm *vm;
	uint64_t *base, i, resident = 0;

	vm = make_vm("faults", 8 * MiB, &base);
	p = make_pager(vm, 4 * MiB, 8 * MiB);
	for (i = 0; i < 256; i++)
		fill(base + i * WORDS, i, 2);		/* all for the disk */
	ovc__swapfile_inject(p->swap, OVC_SWAPFILE_WRITE_EIO, 20);
	ovc__swapfile_inject(p->swap, OVC_SWAPFILE_WRITE_SHORT, 10);
	ovc__swapfile_inject(p->swap, OVC_SWAPFILE_WRITE_ENOSPC, 10);
	/* The first batch meets every fault; the pager stops there (backs off). */
	cr_assert_eq(ovc_pager_reclaim(p, 256, &r), 24);
	cr_assert_eq(r.errors, 40);
	for (i = 0; i < 256; i++)
		resident += state_of(vm, i) == OVC_PAGE_RESIDENT;
	cr_assert_eq(resident, 256 - 24);
	ovc_pager_get_stats(p, &ps);
	cr_assert_eq(ps.store_errors, 40);
	cr_assert_eq(ps.swap_pages, 24);
	/* Asked again, the disk works: the rest goes. */
	cr_assert_eq(ovc_pager_reclaim(p, 256, &r), 232);
	cr_assert_eq(r.errors, 0);
	for (i = 0; i < 256; i++)
		cr_assert(holds(base + i * WORDS, i, 2), "page %llu", (unsigned long long)i);
	ovc_pager_get_stats(p, &ps);
	cr_assert_eq(ps.swap_pages, 0, "slots leaked");
	cr_assert_eq(ovc_vm_destroy(vm), 0);
	host_done();
}

/* Faults walking the swapped pages in order bring the next ones back ahead of the reader. */
Test(pager, sequential_prefetch)
{
	const uint64_t n = 1024;
	struct ovc_pager_stats ps;
	struct ovc_mem_stats st;
	struct ovc_pager *p;
	struct ovc_vm *vm;
	uint64_t *base, i;

	vm = make_vm("prefetch", 8 * MiB, &base);
	p = make_pager(vm, 4 * MiB, 8 * MiB);
	for (i = 0; i < n; i++)
		fill(base + i * WORDS, i, 2);		/* all to disk */
	cr_assert_eq(ovc_pager_reclaim(p, n, NULL), (int64_t)n);
	for (i = 0; i < n; i++) {
		cr_assert(holds(base + i * WORDS, i, 2), "page %llu", (unsigned long long)i);
		if (i % 8 == 7)
			usleep(200);	/* a reader that computes a little between pages */
	}
	ovc_pager_get_stats(p, &ps);
	ovc_vm_get_mem_stats(vm, &st);
	cr_log_info("prefetched %llu of %llu; store faults %llu",
		    (unsigned long long)ps.prefetched, (unsigned long long)n,
		    (unsigned long long)st.faults[OVC_FAULT_STORE]);
	cr_assert_gt(ps.prefetched, n / 4);
	cr_assert_lt(st.faults[OVC_FAULT_STORE], n);
	cr_assert_eq(ps.swap_pages, 0);
	cr_assert_eq(ovc_vm_destroy(vm), 0);
	host_done();
}

/* Eviction batches are larger than a small reclaim batch: both share the pager's buffers. */
Test(pager, small_batch_eviction)
{
	struct ovc_pager_config cfg;
	struct ovc_pager_stats ps;
	struct ovc_pager *p;
	struct ovc_vm *vm;
	uint64_t *base, i;

	vm = make_vm("smallbatch", 32 * MiB, &base);
	ovc_pager_config_init(&cfg);
	cfg.batch = 8;
	cfg.zip_cap_bytes = 512 * 1024;
	cfg.swap_dir = swap_dir;
	cfg.swap_bytes = 32 * MiB;
	p = ovc_vm_add_pager(vm, &cfg);
	cr_assert_not_null(p);
	for (i = 0; i < 6000; i++)
		fill(base + i * WORDS, i, 1);
	cr_assert_eq(ovc_pager_reclaim(p, 6000, NULL), 6000);
	ovc_pager_get_stats(p, &ps);
	cr_assert_gt(ps.evicted, 0, "zip %llu pages %llu bytes, swap %llu",
		     (unsigned long long)ps.zip_pages, (unsigned long long)ps.zip_bytes,
		     (unsigned long long)ps.swap_pages);
	for (i = 0; i < 6000; i++)
		cr_assert(holds(base + i * WORDS, i, 1), "page %llu", (unsigned long long)i);
	cr_assert_eq(ovc_vm_destroy(vm), 0);
	host_done();
}

/* ------------------------------------------------------------------------ */
/* The reference scan: pages used without faults are seen. */

static struct ovc_pager *make_scan_pager(struct ovc_vm *vm, bool scan)
{
	struct ovc_pager_config cfg;
	struct ovc_pager *p;

	ovc_pager_config_init(&cfg);
	cfg.zip_cap_bytes = 16 * MiB;
	cfg.ref_scan = scan;
	p = ovc_vm_add_pager(vm, &cfg);
	cr_assert_not_null(p, "ovc_vm_add_pager: %s", strerror(errno));
	return p;
}

static bool can_arm(struct ovc_vm *vm)
{
	return ovc__ram_can_arm(ovc__vm_ram(vm));
}

/* Pages read by the guest after the hand passed them: spared only with the scan. */
static void hot_after_pass(bool scan)
{
	const uint64_t n = 2000;
	struct ovc_pager_result r;
	struct ovc_mem_stats st;
	struct ovc_pager *p;
	struct ovc_vm *vm;
	uint64_t *base, i, kept = 0;

	vm = make_vm("scan", 16 * MiB, &base);
	if (!can_arm(vm)) {
		cr_assert_eq(ovc_vm_destroy(vm), 0);
		cr_skip_test("no minor faults on shared memory here");
	}
	p = make_scan_pager(vm, scan);
	for (i = 0; i < n; i++)
		fill(base + i * WORDS, i, 1);
	/* The first sweep takes every bit away (and arms), the second 0..1023. */
	cr_assert_eq(ovc_pager_reclaim(p, 1024, &r), 1024);
	for (i = 1024; i < 1124; i++)
		cr_assert(holds(base + i * WORDS, i, 1));
	ovc_vm_get_mem_stats(vm, &st);
	cr_assert_eq(st.faults[OVC_FAULT_MINOR], scan ? 100 : 0);
	cr_assert_eq(st.faults[OVC_FAULT_STORE], 0);
	cr_assert_eq(ovc_pager_reclaim(p, 100, &r), 100);
	cr_assert_eq(r.referenced, scan ? 100 : 0);
	for (i = 1024; i < 1124; i++)
		kept += state_of(vm, i) == OVC_PAGE_RESIDENT;
	cr_assert_eq(kept, scan ? 100 : 0, "hot pages kept: %llu", (unsigned long long)kept);
	for (i = 0; i < n; i++)
		cr_assert(holds(base + i * WORDS, i, 1), "page %llu", (unsigned long long)i);
	cr_assert_eq(ovc_vm_destroy(vm), 0);
	host_done();
}

Test(pager, scan_sees_use_without_faults)
{
	hot_after_pass(true);
}

Test(pager, without_scan_use_without_faults_is_missed)
{
	hot_after_pass(false);
}

struct toucher {
	uint64_t *base;
	uint64_t n;
	_Atomic bool stop;
	_Atomic uint64_t rounds;
};

#define HOT_EVERY 10	/* every tenth page is hot */

static void *touch_hot(void *arg)
{
	struct toucher *t = arg;
	uint64_t i;

	while (!atomic_load(&t->stop)) {
		for (i = 0; i < t->n; i += HOT_EVERY) {
			volatile uint64_t *w = t->base + i * WORDS;

			w[1] = w[1];	/* read and write, never changing the contents */
		}
		atomic_fetch_add(&t->rounds, 1);
		usleep(200);
	}
	return NULL;
}

/* Hot pages evicted while a host thread keeps using them, reclaiming 3/4 of RAM. */
static uint64_t hot_evictions(bool scan)
{
	const uint64_t n = 2000;
	struct toucher t = { .n = n };
	struct ovc_mem_stats st;
	struct ovc_pager *p;
	struct ovc_vm *vm;
	uint64_t *base, i, made = 0, evicted;
	pthread_t th;

	vm = make_vm(scan ? "hot-scan" : "hot-noscan", 16 * MiB, &base);
	p = make_scan_pager(vm, scan);
	for (i = 0; i < n; i++)
		fill(base + i * WORDS, i, 1);
	t.base = base;
	cr_assert_eq(pthread_create(&th, NULL, touch_hot, &t), 0);
	while (atomic_load(&t.rounds) < 2)
		usleep(1000);
	while (made < n * 3 / 4) {
		int64_t got = ovc_pager_reclaim(p, 25, NULL);

		cr_assert_geq(got, 0);
		made += (uint64_t)got;
		/* Give the guest a moment between bites, as a scheduler tick would. */
		usleep(2000);
	}
	atomic_store(&t.stop, true);
	pthread_join(th, NULL);
	ovc_vm_get_mem_stats(vm, &st);
	/* A hot page evicted is faulted straight back from the tier. */
	evicted = st.faults[OVC_FAULT_STORE];
	for (i = 0; i < n; i++)
		cr_assert(holds(base + i * WORDS, i, 1), "page %llu", (unsigned long long)i);
	cr_assert_eq(st.faults[OVC_FAULT_ERROR], 0);
	cr_assert_eq(ovc_vm_destroy(vm), 0);
	return evicted;
}

Test(pager, scan_keeps_a_hot_set_resident)
{
	uint64_t with, without;
	struct ovc_vm *vm;
	uint64_t *base;

	vm = make_vm("probe", MiB, &base);
	if (!can_arm(vm)) {
		cr_assert_eq(ovc_vm_destroy(vm), 0);
		cr_skip_test("no minor faults on shared memory here");
	}
	cr_assert_eq(ovc_vm_destroy(vm), 0);
	without = hot_evictions(false);
	with = hot_evictions(true);
	cr_log_info("hot-page evictions of 200: %llu without the scan, %llu with it",
		    (unsigned long long)without, (unsigned long long)with);
	/* Without the scan the hand cannot tell the hot tenth from the rest. */
	cr_assert_geq(without, 100, "without the scan: %llu", (unsigned long long)without);
	cr_assert_leq(with, 20, "with the scan: %llu", (unsigned long long)with);
	host_done();
}

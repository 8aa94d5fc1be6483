// SPDX-License-Identifier: MIT
/* tests/test-dedup.c: page sharing: zero pages, shared pages, copy-on-write, pool, groups, VMAs. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "host/host-internal.h"
#include "tests/kit/oracle.h"

#define NPAGES 64
#define PAGE OVC_PAGE_SIZE

static struct ovc_host *host;

static void setup(void)
{
	struct ovc_host_config cfg;

	ovc_host_config_init(&cfg);
	cfg.fault_threads = 2;
	host = ovc_host_new(&cfg);
	cr_assert_not_null(host);
}

static void teardown(void)
{
	cr_assert_eq(ovc_host_destroy(host), 0);
}

TestSuite(dedup, .init = setup, .fini = teardown, .timeout = 60);

static void dedup_setup(uint64_t vma_budget)
{
	struct ovc_dedup_config cfg;

	ovc_dedup_config_init(&cfg);
	cfg.vma_budget = vma_budget ? vma_budget : 10000;
	cr_assert_eq(ovc_host_dedup_setup(host, &cfg, false), 0);
}

static struct ovc_vm *vm_with_ram(const char *name, uint8_t **ram)
{
	struct ovc_vm *vm = ovc_vm_new(host, name);
	void *hva;

	cr_assert_not_null(vm);
	cr_assert_eq(ovc_vm_add_ram(vm, 0, NPAGES * PAGE, &hva), 0);
	*ram = hva;
	return vm;
}

/* Page contents named by @tag: equal tags, equal pages. */
static void fill(uint8_t *page, uint64_t tag)
{
	uint64_t *w = (uint64_t *)page;
	size_t i;

	for (i = 0; i < PAGE / 8; i++)
		w[i] = (tag + 1) * 0x9e3779b97f4a7c15ULL ^ i;
}

static bool holds(const uint8_t *page, uint64_t tag)
{
	uint8_t want[PAGE];

	fill(want, tag);
	return !memcmp(page, want, PAGE);
}

static int state(struct ovc_vm *vm, uint64_t page)
{
	return ovc_vm_page_state(vm, page * PAGE, NULL);
}

/* Two passes: a page is shared once it looked the same twice. */
static void scan_twice(void)
{
	cr_assert_geq(ovc_host_dedup_scan(host, 2 * NPAGES * ovc_host_vm_count(host)), 0);
}

/* Kernel VMAs covering [ram, ram + NPAGES pages), from /proc/self/maps. */
static unsigned int vmas_in(const uint8_t *ram)
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[512];
	unsigned int n = 0;

	cr_assert_not_null(f);
	while (fgets(line, sizeof(line), f)) {
		unsigned long a, b;

		if (sscanf(line, "%lx-%lx", &a, &b) == 2 && a >= (uintptr_t)ram &&
		    b <= (uintptr_t)ram + NPAGES * PAGE)
			n++;
	}
	fclose(f);
	return n;
}

static void destroy_vm(struct ovc_vm *vm)
{
	cr_assert_eq(ovc_vm_destroy(vm), 0);
}

Test(dedup, zero_pages_become_holes)
{
	struct ovc_dedup_stats st;
	struct ovc_mem_stats ms;
	uint8_t *ram;
	struct ovc_vm *vm;
	uint64_t p;

	dedup_setup(0);
	vm = vm_with_ram("z", &ram);
	for (p = 0; p < NPAGES; p++) {
		if (p % 4)
			fill(ram + p * PAGE, 1000 + p);
		else
			memset(ram + p * PAGE, 0, PAGE);	/* resident zeros */
	}
	cr_assert_eq(state(vm, 0), OVC_PAGE_RESIDENT);
	cr_assert_eq(ovc_vm_set_dedup(vm, true), 0);
	cr_assert_eq(ovc_host_dedup_scan(host, NPAGES), NPAGES);
	cr_assert_eq(state(vm, 0), OVC_PAGE_RESIDENT, "one look is not stable yet");
	cr_assert_eq(ovc_host_dedup_scan(host, NPAGES), NPAGES);
	for (p = 0; p < NPAGES; p++)
		cr_assert_eq(state(vm, p), p % 4 ? OVC_PAGE_RESIDENT : OVC_PAGE_ZERO, "page %lu",
			     (unsigned long)p);
	cr_assert_eq(ovc_vm_get_dedup_stats(vm, &st), 0);
	cr_assert_eq(st.zero, NPAGES / 4);
	cr_assert_eq(st.scanned, 2 * NPAGES);
	cr_assert_eq(st.sharing, 0, "unique pages are not shared");
	cr_assert_gt(st.cpu_ns, 0);
	ovc_vm_get_mem_stats(vm, &ms);
	cr_assert_eq(ms.host_bytes, (uint64_t)(NPAGES - NPAGES / 4) * PAGE);
	for (p = 0; p < NPAGES; p++)
		cr_assert(p % 4 ? holds(ram + p * PAGE, 1000 + p) : ovc__page_is_zero(ram + p * PAGE));
	destroy_vm(vm);
}

Test(dedup, duplicates_share_one_pool_page_and_cow_breaks_one)
{
	struct ovc_dedup_stats st;
	struct ovc_mem_stats ms;
	uint8_t *ram;
	struct ovc_vm *vm;
	uint64_t p;

	dedup_setup(0);
	vm = vm_with_ram("s", &ram);
	for (p = 0; p < NPAGES; p++)
		fill(ram + p * PAGE, p < 16 && p % 2 == 0 ? 7 : 100 + p);	/* 8 copies of one page */
	cr_assert_eq(ovc_vm_set_dedup(vm, true), 0);
	scan_twice();
	for (p = 0; p < 16; p++)
		cr_assert_eq(state(vm, p), p % 2 ? OVC_PAGE_RESIDENT : OVC_PAGE_SHARED);
	cr_assert_eq(ovc_vm_get_dedup_stats(vm, &st), 0);
	cr_assert_eq(st.sharing, 8);
	cr_assert_eq(st.shared, 8);
	cr_assert_eq(st.saved_bytes, 7 * PAGE);
	cr_assert_eq(ovc__dedup_pool_pages(host->dedup), 1);
	ovc_vm_get_mem_stats(vm, &ms);
	cr_assert_eq(ms.host_bytes, (uint64_t)(NPAGES - 8) * PAGE);
	cr_assert_eq(ms.pages[OVC_PAGE_SHARED], 8);
	/* Each shared page alone: one VMA of its own and a split around it. */
	cr_assert_eq(st.vmas, 15);
	cr_assert_eq(vmas_in(ram), 1 + st.vmas);
	for (p = 0; p < NPAGES; p++)
		cr_assert(holds(ram + p * PAGE, p < 16 && p % 2 == 0 ? 7 : 100 + p));

	/* A write breaks the share of that page only. */
	ram[4 * PAGE + 10] = 0x55;
	cr_assert_eq(state(vm, 4), OVC_PAGE_RESIDENT);
	cr_assert_eq(ram[4 * PAGE + 10], 0x55);
	for (p = 0; p < 16; p += 2)
		cr_assert(p == 4 || holds(ram + p * PAGE, 7));
	cr_assert_eq(ovc_vm_get_dedup_stats(vm, &st), 0);
	cr_assert_eq(st.cow_breaks, 1);
	cr_assert_eq(st.sharing, 7);
	cr_assert_eq(st.vmas, 13);
	cr_assert_eq(vmas_in(ram), 1 + st.vmas, "the page's own mapping merged back");

	/* The last sharer leaving frees the pool page. */
	for (p = 0; p < 16; p += 2)
		ram[p * PAGE] ^= 1;
	cr_assert_eq(ovc_vm_get_dedup_stats(vm, &st), 0);
	cr_assert_eq(st.sharing, 0);
	cr_assert_eq(st.cow_breaks, 8);
	cr_assert_eq(st.vmas, 0);
	cr_assert_eq(vmas_in(ram), 1);
	cr_assert_eq(ovc__dedup_pool_pages(host->dedup), 0);
	destroy_vm(vm);
}

Test(dedup, adjacent_duplicates_merge_into_few_vmas)
{
	struct ovc_dedup_stats st;
	uint8_t *ram;
	struct ovc_vm *vm;
	uint64_t p;

	dedup_setup(0);
	vm = vm_with_ram("m", &ram);
	for (p = 0; p < NPAGES; p++)
		fill(ram + p * PAGE, p < 32 ? p % 8 : 100 + p);	/* 8 pages, 4 times */
	cr_assert_eq(ovc_vm_set_dedup(vm, true), 0);
	scan_twice();
	cr_assert_eq(ovc_vm_get_dedup_stats(vm, &st), 0);
	cr_assert_eq(st.sharing, 32);
	cr_assert_eq(ovc__dedup_pool_pages(host->dedup), 8);
	/* Four runs of eight consecutive pool pages, then the rest of the RAM. */
	cr_assert_eq(vmas_in(ram), 5);
	cr_assert_eq(st.vmas, 4);
	for (p = 0; p < NPAGES; p++)
		cr_assert(holds(ram + p * PAGE, p < 32 ? p % 8 : 100 + p));
	destroy_vm(vm);
	cr_assert_eq(ovc__dedup_pool_pages(host->dedup), 0, "a VM going frees its references");
}

Test(dedup, vma_budget_stops_sharing_not_zero_pages)
{
	struct ovc_dedup_stats st;
	uint64_t vmas, budget;
	uint8_t *ram;
	struct ovc_vm *vm;
	uint64_t p;

	dedup_setup(6);
	vm = vm_with_ram("b", &ram);
	for (p = 0; p < NPAGES; p++) {
		if (p >= 48)
			memset(ram + p * PAGE, 0, PAGE);
		else
			fill(ram + p * PAGE, p % 4 == 0 ? 3 : 100 + p);	/* isolated copies */
	}
	cr_assert_eq(ovc_vm_set_dedup(vm, true), 0);
	scan_twice();
	cr_assert_eq(ovc_vm_get_dedup_stats(vm, &st), 0);
	ovc__dedup_vmas(host->dedup, &vmas, &budget);
	cr_assert_eq(budget, 6);
	cr_assert_leq(vmas, 6);
	cr_assert_eq(st.sharing, 3, "2 VMAs per isolated page: 3 fit in 6");
	cr_assert_gt(st.budget_stops, 0);
	cr_assert_eq(st.zero, 16, "zero pages need no VMA");
	cr_assert_eq(vmas_in(ram), 1 + vmas);
	for (p = 0; p < 48; p++)
		cr_assert(holds(ram + p * PAGE, p % 4 == 0 ? 3 : 100 + p));
	destroy_vm(vm);
}

/* The pool pages (payloads) a VM's shared pages map. */
static void slots_of(struct ovc_vm *vm, bool *used, size_t n)
{
	struct ovc_ram *r = ovc__vm_ram(vm);
	uint64_t p;

	for (p = 0; p < NPAGES; p++) {
		uint64_t e = atomic_load(ovc__ram_pte(r, p));

		if (ovc__pte_state(e) == OVC_PAGE_SHARED) {
			cr_assert_lt(ovc__pte_payload(e), n);
			used[ovc__pte_payload(e)] = true;
		}
	}
}

static void fill_vm(uint8_t *ram, uint64_t salt)
{
	uint64_t p;

	/* Pages 0-15 the same in every VM, 16-19 zero, the rest unique. */
	for (p = 0; p < NPAGES; p++) {
		if (p < 16)
			fill(ram + p * PAGE, 500 + p);
		else if (p < 20)
			memset(ram + p * PAGE, 0, PAGE);
		else
			fill(ram + p * PAGE, salt * 1000 + p);
	}
}

Test(dedup, groups_isolate_and_share)
{
	struct ovc_vm *a, *b, *c;
	uint8_t *ra, *rb, *rc;
	struct ovc_dedup_stats sa, sb, sc;
	bool ua[256] = { 0 }, ub[256] = { 0 }, uc[256] = { 0 };
	unsigned int i, both = 0;

	dedup_setup(0);
	a = vm_with_ram("a", &ra);
	b = vm_with_ram("b", &rb);
	c = vm_with_ram("c", &rc);
	fill_vm(ra, 1);
	fill_vm(rb, 2);
	fill_vm(rc, 3);
	cr_assert_eq(ovc_vm_set_dedup(a, true), 0);
	cr_assert_eq(ovc_vm_set_dedup(b, true), 0);
	cr_assert_eq(ovc_vm_set_dedup(c, true), 0);

	/* By default each VM shares only with itself: nothing repeats inside one. */
	scan_twice();
	ovc_vm_get_dedup_stats(a, &sa);
	ovc_vm_get_dedup_stats(b, &sb);
	cr_assert_eq(sa.sharing + sb.sharing, 0);
	cr_assert_eq(sa.zero, 4, "zero pages are reclaimed in every group");
	cr_assert_eq(sb.zero, 4);

	/* a and b in one group: their 16 common pages become 16 pool pages. */
	cr_assert_eq(ovc_vm_set_dedup_group(a, "tenant-1"), 0);
	cr_assert_eq(ovc_vm_set_dedup_group(b, "tenant-1"), 0);
	cr_assert_eq(ovc_vm_set_dedup_group(c, "tenant-2"), 0);
	scan_twice();
	ovc_vm_get_dedup_stats(a, &sa);
	ovc_vm_get_dedup_stats(b, &sb);
	ovc_vm_get_dedup_stats(c, &sc);
	cr_assert_eq(sa.sharing, 16);
	cr_assert_eq(sb.sharing, 16);
	cr_assert_eq(sc.sharing, 0, "alone in its group");
	cr_assert_eq(ovc__dedup_pool_pages(host->dedup), 16);
	cr_assert_eq(sa.saved_bytes + sb.saved_bytes, 16 * PAGE);

	/* c joins a group of its own with the same content as a and b: never their pages. */
	fill_vm(rc, 1);
	cr_assert_eq(ovc_vm_set_dedup_group(b, "tenant-2"), 0);
	ovc_vm_get_dedup_stats(b, &sb);
	cr_assert_eq(sb.sharing, 0, "moving group takes every shared page back");
	scan_twice();
	slots_of(a, ua, 256);
	slots_of(b, ub, 256);
	slots_of(c, uc, 256);
	for (i = 0; i < 256; i++) {
		cr_assert(!(ua[i] && (ub[i] || uc[i])), "pool page %u crosses groups", i);
		both += ub[i] && uc[i];
	}
	cr_assert_eq(both, 16, "b and c share in tenant-2");
	for (i = 0; i < NPAGES; i++) {
		cr_assert(i < 16 ? holds(ra + i * PAGE, 500 + i) : true);
		cr_assert(i < 16 ? holds(rb + i * PAGE, 500 + i) : true);
	}
	destroy_vm(a);
	destroy_vm(b);
	destroy_vm(c);
	cr_assert_eq(ovc__dedup_pool_pages(host->dedup), 0);
}

Test(dedup, transitions_out_of_shared)
{
	struct ovc_ram *r;
	struct ovc_xact x;
	uint8_t *ram, buf[PAGE] __attribute__((aligned(8)));
	struct ovc_vm *vm;
	struct ovc_dedup_stats st;
	uint64_t p;

	dedup_setup(0);
	vm = vm_with_ram("t", &ram);
	for (p = 0; p < NPAGES; p++)
		fill(ram + p * PAGE, p < 4 ? 9 : 100 + p);
	cr_assert_eq(ovc_vm_set_dedup(vm, true), 0);
	scan_twice();
	cr_assert_eq(state(vm, 0), OVC_PAGE_SHARED);
	r = ovc__vm_ram(vm);
	/* SHARED -> RESIDENT with contents (as a prefetch would), and SHARED -> ZERO. */
	cr_assert_eq(ovc__xact_begin(&x, r, 0, 2, 0), 0);
	cr_assert_eq(ovc__ram_store_load(r, 0, ovc__xact_old(&x, 0), buf), 0);
	ovc__xact_set(&x, 0, OVC_PAGE_RESIDENT, 0, buf);
	ovc__xact_set(&x, 1, OVC_PAGE_ZERO, 0, NULL);
	cr_assert_eq(ovc__xact_commit(&x), 0);
	cr_assert_eq(state(vm, 0), OVC_PAGE_RESIDENT);
	cr_assert_eq(state(vm, 1), OVC_PAGE_ZERO);
	cr_assert(holds(ram, 9));
	cr_assert(ovc__page_is_zero(ram + PAGE));
	cr_assert_eq(state(vm, 1), OVC_PAGE_RESIDENT, "a hole again: read faults a zero page");
	ram[0] = 1;	/* own memory again: no break */
	ovc_vm_get_dedup_stats(vm, &st);
	cr_assert_eq(st.cow_breaks, 0);
	cr_assert_eq(st.sharing, 2);
	/* An aborted transition leaves shared pages write-protected: a write still breaks. */
	cr_assert_eq(ovc__xact_begin(&x, r, 2, 2, 0), 0);
	ovc__xact_abort(&x);
	ram[2 * PAGE] ^= 0xff;
	cr_assert_eq(state(vm, 2), OVC_PAGE_RESIDENT);
	cr_assert(holds(ram + 3 * PAGE, 9));
	ovc_vm_get_dedup_stats(vm, &st);
	cr_assert_eq(st.cow_breaks, 1);
	cr_assert_eq(vmas_in(ram), 1 + st.vmas);
	destroy_vm(vm);
}

Test(dedup, hostile_and_edge_arguments)
{
	struct ovc_dedup_config cfg;
	struct ovc_dedup_stats st;
	char longname[OVC_DEDUP_GROUP_MAX + 2];
	uint8_t *ram;
	struct ovc_vm *vm;

	vm = vm_with_ram("h", &ram);
	cr_assert_eq(ovc_vm_set_dedup(vm, true), -ENOENT, "no scanner yet");
	cr_assert_eq(ovc_host_dedup_scan(host, 10), -ENOENT);
	cr_assert_eq(ovc_host_dedup_set_cpu_budget(host, 10), -ENOENT);
	cr_assert_eq(ovc_vm_get_dedup_stats(vm, &st), 0);
	cr_assert_eq(st.scanned, 0);
	cr_assert_eq(ovc_host_dedup_setup(NULL, NULL, false), -EINVAL);
	ovc_dedup_config_init(&cfg);
	cfg.cpu_permille = 0;
	cr_assert_eq(ovc_host_dedup_setup(host, &cfg, false), -EINVAL);
	cfg.cpu_permille = 1001;
	cr_assert_eq(ovc_host_dedup_setup(host, &cfg, false), -EINVAL);
	ovc_dedup_config_init(&cfg);
	cfg.batch = 0;
	cr_assert_eq(ovc_host_dedup_setup(host, &cfg, false), -EINVAL);
	cfg.batch = 100000;
	cr_assert_eq(ovc_host_dedup_setup(host, &cfg, false), -EINVAL);
	cr_assert_eq(ovc_host_dedup_setup(host, NULL, true), 0);
	cr_assert_eq(ovc_host_dedup_setup(host, NULL, true), -EEXIST);
	cr_assert_eq(ovc_host_dedup_set_cpu_budget(host, 0), -EINVAL);
	cr_assert_eq(ovc_host_dedup_set_cpu_budget(host, 1001), -EINVAL);
	cr_assert_eq(ovc_host_dedup_set_cpu_budget(host, 1000), 0);
	cr_assert_eq(ovc_host_dedup_set_cpu_budget(NULL, 5), -EINVAL);
	cr_assert_eq(ovc_vm_set_dedup(NULL, true), -EINVAL);
	cr_assert_eq(ovc_vm_set_dedup_group(vm, "x"), -ENOENT, "dedup never on for it");
	cr_assert_eq(ovc_vm_set_dedup(vm, false), 0, "off when never on: nothing to do");
	cr_assert_eq(ovc_vm_set_dedup(vm, true), 0);
	cr_assert_eq(ovc_vm_set_dedup_group(vm, ""), -EINVAL);
	cr_assert_eq(ovc_vm_set_dedup_group(vm, "two words"), -EINVAL);
	cr_assert_eq(ovc_vm_set_dedup_group(vm, "tab\there"), -EINVAL);
	memset(longname, 'g', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = 0;
	cr_assert_eq(ovc_vm_set_dedup_group(vm, longname), -EINVAL);
	longname[OVC_DEDUP_GROUP_MAX] = 0;
	cr_assert_eq(ovc_vm_set_dedup_group(vm, longname), 0);
	cr_assert_eq(ovc_vm_set_dedup_group(vm, NULL), 0);
	cr_assert_eq(ovc_vm_set_dedup_group(NULL, "x"), -EINVAL);
	cr_assert_eq(ovc_vm_get_dedup_stats(NULL, &st), -EINVAL);
	cr_assert_eq(ovc_vm_get_dedup_stats(vm, NULL), -EINVAL);
	cr_assert_eq(ovc_host_dedup_scan(host, 0), 0);
	cr_assert_eq(ovc_vm_set_dedup(vm, false), 0);
	cr_assert_eq(ovc_host_dedup_scan(host, 100), 0, "no VM enabled: nothing to look at");
	destroy_vm(vm);
}

static long read_mmc(void)
{
	FILE *f = fopen("/proc/sys/vm/max_map_count", "r");
	long v = -1;

	if (f) {
		if (fscanf(f, "%ld", &v) != 1)
			v = -1;
		fclose(f);
	}
	return v;
}

Test(dedup, max_map_count_raised_and_restored)
{
	struct ovc_dedup_config cfg;
	long before = read_mmc();

	if (before < 0 || access("/proc/sys/vm/max_map_count", W_OK))
		cr_skip_test("vm.max_map_count not writable here");
	ovc_dedup_config_init(&cfg);
	cfg.max_map_count = (uint64_t)before + 4096;
	cr_assert_eq(ovc_host_dedup_setup(host, &cfg, false), 0);
	cr_assert_eq(read_mmc(), before + 4096);
	cr_assert_eq(ovc_host_destroy(host), 0);
	cr_assert_eq(read_mmc(), before, "restored when the host goes");
	setup();	/* the fixture destroys a host */
}

Test(dedup, scanner_thread_within_budget)
{
	struct ovc_dedup_config cfg;
	struct ovc_dedup_stats st;
	uint8_t *ram;
	struct ovc_vm *vm;
	uint64_t p;
	int i;

	ovc_dedup_config_init(&cfg);
	cfg.cpu_permille = 1000;	/* a whole core: fast in a test */
	cr_assert_eq(ovc_host_dedup_setup(host, &cfg, true), 0);
	vm = vm_with_ram("th", &ram);
	for (p = 0; p < NPAGES; p++)
		fill(ram + p * PAGE, p % 2);
	cr_assert_eq(ovc_vm_set_dedup(vm, true), 0);
	for (i = 0; i < 500; i++) {
		ovc_vm_get_dedup_stats(vm, &st);
		if (st.sharing == NPAGES)
			break;
		usleep(10000);
	}
	cr_assert_eq(st.sharing, NPAGES);
	cr_assert_eq(ovc__dedup_pool_pages(host->dedup), 2);
	cr_assert_eq(ovc_host_dedup_set_cpu_budget(host, 1), 0);
	for (p = 0; p < NPAGES; p++)
		cr_assert(holds(ram + p * PAGE, p % 2));
	destroy_vm(vm);
}

/* Scan flat out next to the oracle's writers until told to stop. */
static void scan_side(struct ovc_vm *vm, void *opaque, const _Atomic bool *stop)
{
	const char *group = opaque;

	cr_assert_eq(ovc_vm_set_dedup(vm, true), 0);
	if (group)
		cr_assert_eq(ovc_vm_set_dedup_group(vm, group), 0);
	while (!atomic_load(stop)) {
		cr_assert_geq(ovc_host_dedup_scan(host, 256), 0);
		/* Moving group takes every page back under the writers. */
		if (group && rand() % 64 == 0)
			cr_assert_eq(ovc_vm_set_dedup_group(vm, rand() % 2 ? group : NULL), 0);
	}
}

static void oracle_with_dedup(bool chaos, const char *group)
{
	struct oracle_config cfg;
	struct oracle_result res;

	dedup_setup(0);
	oracle_config_init(&cfg);
	cfg.npages = 2048;
	cfg.write_pct = 1;
	cfg.zero_pct = 1;
	cfg.same_content = true;
	cfg.chaos = chaos;
	cfg.chaos_rate = chaos ? 20000 : 0;
	cfg.seconds = 2;
	cfg.min_accesses = 200000;
	cfg.max_seconds = 30;
	cfg.side = scan_side;
	cfg.side_opaque = (void *)group;
	cr_assert_eq(oracle_run(host, &cfg, &res), 0);
	cr_log_info("accesses %llu wp faults %llu corrupt %llu",
		    (unsigned long long)res.accesses,
		    (unsigned long long)res.mem.faults[OVC_FAULT_WP],
		    (unsigned long long)res.corrupt);
	cr_assert_eq(res.corrupt, 0);
	cr_assert_eq(res.store_leaks, 0);
	cr_assert_eq(res.mem.faults[OVC_FAULT_ERROR], 0);
	cr_assert_eq(res.mem.busy_pages, 0);
	cr_assert_gt(res.mem.faults[OVC_FAULT_WP], 0, "writers broke shares");
	cr_assert_eq(ovc__dedup_pool_pages(host->dedup), 0, "the VM went: the pool is empty");
}

Test(dedup, oracle_writers_during_share_and_cow, .timeout = 120)
{
	oracle_with_dedup(false, NULL);
}

Test(dedup, oracle_writers_with_chaos_and_group_moves, .timeout = 120)
{
	oracle_with_dedup(true, "g");
}

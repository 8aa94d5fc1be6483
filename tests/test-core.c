// SPDX-License-Identifier: MIT
/* tests/test-core.c: guest RAM, the page table, transitions and the fault engine. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "core/core-internal.h"
#include "tests/kit/memstore.h"
#include "tests/kit/sigbus.h"

#define NPAGES 256

struct fix {
	struct ovc_log log;
	struct ovc_fault_engine *eng;
	struct ovc_ram *ram;
	struct memstore *ms;
	uint8_t *mem;
	_Atomic int fatal_calls;
	_Atomic int fatal_err;
};

static struct fix f;

static void quiet(void *opaque, int level, const char *msg)
{
}

static void on_fatal(void *opaque, uint64_t gfn, int err)
{
	struct fix *fx = opaque;

	atomic_fetch_add(&fx->fatal_calls, 1);
	atomic_store(&fx->fatal_err, err);
}

static void setup(void)
{
	void *hva;

	memset(&f, 0, sizeof(f));
	f.log.fn = quiet;
	f.log.level = OVC_LOG_DEBUG;
	f.eng = ovc__fault_engine_new(&f.log, 2);
	cr_assert_not_null(f.eng);
	f.ram = ovc__ram_new(&f.log);
	cr_assert_not_null(f.ram);
	cr_assert_eq(ovc__ram_add_range(f.ram, 0x100000, NPAGES * OVC_PAGE_SIZE, &hva), 0);
	f.mem = hva;
	f.ms = memstore_new(NPAGES);
	cr_assert_not_null(f.ms);
	cr_assert_eq(ovc__ram_set_store(f.ram, OVC_PAGE_COMPRESSED, &memstore_ops, f.ms), 0);
	cr_assert_eq(ovc__ram_set_store(f.ram, OVC_PAGE_SWAPPED, &memstore_ops, f.ms), 0);
	ovc__ram_set_fatal(f.ram, on_fatal, &f);
	cr_assert_eq(ovc__fault_engine_attach(f.eng, f.ram), 0);
}

static void teardown(void)
{
	ovc__fault_engine_detach(f.eng, f.ram);
	ovc__ram_destroy(f.ram);
	ovc__fault_engine_destroy(f.eng);
	memstore_destroy(f.ms);
}

#define GFN(i) ((0x100000 >> OVC_PAGE_SHIFT) + (i))

static unsigned int state_of(unsigned int i)
{
	return ovc__pte_state(atomic_load(ovc__ram_pte(f.ram, GFN(i))));
}

static void fill(unsigned int i, uint8_t seed)
{
	unsigned int b;

	for (b = 0; b < OVC_PAGE_SIZE; b++)
		f.mem[i * OVC_PAGE_SIZE + b] = (uint8_t)(seed + b * 7);
}

static bool check(unsigned int i, uint8_t seed)
{
	unsigned int b;

	for (b = 0; b < OVC_PAGE_SIZE; b++) {
		if (f.mem[i * OVC_PAGE_SIZE + b] != (uint8_t)(seed + b * 7))
			return false;
	}
	return true;
}

static uint64_t memfd_blocks(void)
{
	struct stat st;

	cr_assert_eq(fstat(f.ram->regions[0].memfd, &st), 0);
	return (uint64_t)st.st_blocks;
}

/* Move page i to the memstore in state @state through a real transition. */
static void page_out(unsigned int i, unsigned int state)
{
	struct ovc_xact x;
	uint64_t h;

	cr_assert_eq(ovc__xact_begin(&x, f.ram, GFN(i), 1, 0), 0);
	cr_assert_eq(ovc__pte_state(ovc__xact_old(&x, 0)), OVC_PAGE_RESIDENT);
	cr_assert_eq(memstore_save(f.ms, ovc__xact_hva(&x, 0), &h), 0);
	ovc__xact_set(&x, 0, state, h, NULL);
	cr_assert_eq(ovc__xact_commit(&x), 0);
}

static uint64_t faults(enum ovc_fault_kind k)
{
	struct ovc_mem_stats st;

	ovc__ram_get_stats(f.ram, &st);
	return st.faults[k];
}

TestSuite(core, .init = setup, .fini = teardown, .timeout = 30);

Test(core, fresh_ram_is_all_zero_and_sparse)
{
	struct ovc_mem_stats st;

	ovc__ram_get_stats(f.ram, &st);
	cr_assert_eq(st.ram_bytes, NPAGES * OVC_PAGE_SIZE);
	cr_assert_eq(st.pages[OVC_PAGE_ZERO], NPAGES);
	cr_assert_eq(st.pages[OVC_PAGE_RESIDENT], 0);
	cr_assert_eq(memfd_blocks(), 0);
	cr_assert_null(ovc__ram_pte(f.ram, GFN(NPAGES)));
	cr_assert_null(ovc__ram_pte(f.ram, GFN(0) - 1));
}

Test(core, first_touch_is_a_zero_fault)
{
	struct ovc_mem_stats st;

	cr_assert_eq(f.mem[5 * OVC_PAGE_SIZE + 17], 0);
	cr_assert_eq(state_of(5), OVC_PAGE_RESIDENT);
	f.mem[5 * OVC_PAGE_SIZE] = 9;	/* writable without another fault */
	ovc__ram_get_stats(f.ram, &st);
	cr_assert_eq(st.faults[OVC_FAULT_ZERO], 1);
	cr_assert_eq(st.faults[OVC_FAULT_WP], 0);
	cr_assert_eq(st.pages[OVC_PAGE_RESIDENT], 1);
	cr_assert_eq(st.pages[OVC_PAGE_ZERO], NPAGES - 1);
	cr_assert_eq(st.busy_pages, 0);
	cr_assert(ovc_mem_stats_fault_quantile_ns(&st, 0.5) > 0);
}

Test(core, page_out_to_store_and_fault_back)
{
	uint64_t before;

	fill(3, 11);
	before = memfd_blocks();
	page_out(3, OVC_PAGE_COMPRESSED);
	cr_assert_eq(state_of(3), OVC_PAGE_COMPRESSED);
	cr_assert_eq(memstore_used(f.ms), 1);
	cr_assert_lt(memfd_blocks(), before, "the page's memory was released");
	cr_assert(check(3, 11));		/* read faults it back */
	cr_assert_eq(state_of(3), OVC_PAGE_RESIDENT);
	cr_assert_eq(faults(OVC_FAULT_STORE), 1);
	cr_assert_eq(memstore_used(f.ms), 0, "the store's copy was released");
}

Test(core, zero_and_ballooned_targets)
{
	struct ovc_xact x;
	struct ovc_mem_stats st;

	fill(0, 1);
	fill(1, 2);
	cr_assert_eq(ovc__xact_begin(&x, f.ram, GFN(0), 2, 0), 0);
	ovc__xact_set(&x, 0, OVC_PAGE_ZERO, 0, NULL);
	ovc__xact_set(&x, 1, OVC_PAGE_BALLOONED, 0, NULL);
	cr_assert_eq(ovc__xact_commit(&x), 0);
	ovc__ram_get_stats(f.ram, &st);
	cr_assert_eq(st.pages[OVC_PAGE_BALLOONED], 1);
	cr_assert_eq(st.transitions_committed, 2);
	cr_assert_eq(f.mem[OVC_PAGE_SIZE + 5], 0);
	cr_assert_eq(f.mem[5], 0);
	cr_assert_eq(faults(OVC_FAULT_BALLOONED), 1);
}

Test(core, abort_leaves_page_as_it_was)
{
	struct ovc_xact x;
	uint64_t h;

	fill(7, 3);
	cr_assert_eq(ovc__xact_begin(&x, f.ram, GFN(7), 1, 0), 0);
	cr_assert_eq(memstore_save(f.ms, ovc__xact_hva(&x, 0), &h), 0);
	ovc__xact_set(&x, 0, OVC_PAGE_SWAPPED, h, NULL);
	memstore_drop(f.ms, h);
	ovc__xact_abort(&x);
	cr_assert_eq(state_of(7), OVC_PAGE_RESIDENT);
	cr_assert(check(7, 3));
	f.mem[7 * OVC_PAGE_SIZE] = 3;	/* writable again, without a fault */
	cr_assert_eq(faults(OVC_FAULT_WP), 0);
	cr_assert_eq(faults(OVC_FAULT_WAIT), 0);
}

Test(core, second_transition_on_a_page_is_refused)
{
	struct ovc_xact a, b;

	fill(9, 1);
	cr_assert_eq(ovc__xact_begin(&a, f.ram, GFN(8), 3, 0), 0);
	cr_assert_eq(ovc__xact_begin(&b, f.ram, GFN(10), 2, 0), -EBUSY);
	cr_assert_eq(ovc__xact_begin(&b, f.ram, GFN(11), 2, 0), 0, "other pages run in parallel");
	ovc__xact_abort(&b);
	ovc__xact_abort(&a);
	cr_assert_eq(ovc__xact_begin(&b, f.ram, GFN(10), 2, 0), 0);
	ovc__xact_abort(&b);
}

Test(core, bad_transition_ranges)
{
	struct ovc_xact x;

	cr_assert_eq(ovc__xact_begin(&x, f.ram, GFN(NPAGES - 1), 2, 0), -EINVAL);
	cr_assert_eq(ovc__xact_begin(&x, f.ram, GFN(0), 0, 0), -EINVAL);
	cr_assert_eq(ovc__xact_begin(&x, f.ram, GFN(0), OVC_XACT_MAX_PAGES + 1, 0), -EINVAL);
	cr_assert_eq(ovc__xact_begin(&x, f.ram, 0, 1, 0), -EINVAL);
	cr_assert_eq(ovc__xact_begin(&x, f.ram, GFN(0), 1, 0x80), -EINVAL);
}

struct waiter {
	struct ovc_xact x;
	_Atomic bool got;
};

static void *wait_begin(void *arg)
{
	struct waiter *w = arg;

	cr_assert_eq(ovc__xact_begin(&w->x, f.ram, GFN(20), 1, OVC_XACT_WAIT), 0);
	atomic_store(&w->got, true);
	return NULL;
}

Test(core, waiting_transition_runs_after_the_first)
{
	struct waiter *w = calloc(1, sizeof(*w));
	struct ovc_xact x;
	pthread_t t;

	fill(20, 5);
	cr_assert_eq(ovc__xact_begin(&x, f.ram, GFN(20), 1, 0), 0);
	cr_assert_eq(pthread_create(&t, NULL, wait_begin, w), 0);
	usleep(50000);
	cr_assert_not(atomic_load(&w->got), "serialized behind the first transition");
	ovc__xact_set(&x, 0, OVC_PAGE_ZERO, 0, NULL);
	cr_assert_eq(ovc__xact_commit(&x), 0);
	pthread_join(t, NULL);
	cr_assert(atomic_load(&w->got));
	cr_assert_eq(ovc__pte_state(ovc__xact_old(&w->x, 0)), OVC_PAGE_ZERO,
		     "it sees the first one's result");
	ovc__xact_abort(&w->x);
	free(w);
}

struct writer {
	uint8_t *p;
	_Atomic bool done;
};

static void *write_byte(void *arg)
{
	struct writer *w = arg;

	*(volatile uint8_t *)w->p = 0xee;
	atomic_store(&w->done, true);
	return NULL;
}

Test(core, writer_waits_for_transition_and_is_not_lost)
{
	struct writer w = { .p = f.mem + 30 * OVC_PAGE_SIZE + 100 };
	struct ovc_xact x;
	pthread_t t;
	uint64_t h;

	fill(30, 8);
	cr_assert_eq(ovc__xact_begin(&x, f.ram, GFN(30), 1, 0), 0);
	cr_assert_eq(pthread_create(&t, NULL, write_byte, &w), 0);
	usleep(50000);
	cr_assert_not(atomic_load(&w.done), "the write is fenced");
	cr_assert(check(30, 8), "contents stable under the transition");
	cr_assert_eq(memstore_save(f.ms, ovc__xact_hva(&x, 0), &h), 0);
	ovc__xact_set(&x, 0, OVC_PAGE_COMPRESSED, h, NULL);
	cr_assert_eq(ovc__xact_commit(&x), 0);
	pthread_join(t, NULL);
	cr_assert_eq(f.mem[30 * OVC_PAGE_SIZE + 100], 0xee);
	f.mem[30 * OVC_PAGE_SIZE + 100] = (uint8_t)(8 + 100 * 7);
	cr_assert(check(30, 8), "the rest of the page came back from the store");
	cr_assert_eq(state_of(30), OVC_PAGE_RESIDENT);
	cr_assert_geq(faults(OVC_FAULT_WAIT) + faults(OVC_FAULT_SPURIOUS), 1);
	cr_assert_eq(faults(OVC_FAULT_STORE), 1);
}

Test(core, writer_waits_for_abort_then_writes_in_place)
{
	struct writer w = { .p = f.mem + 31 * OVC_PAGE_SIZE };
	struct ovc_xact x;
	pthread_t t;

	fill(31, 4);
	cr_assert_eq(ovc__xact_begin(&x, f.ram, GFN(31), 1, 0), 0);
	cr_assert_eq(pthread_create(&t, NULL, write_byte, &w), 0);
	usleep(50000);
	cr_assert_not(atomic_load(&w.done));
	ovc__xact_abort(&x);
	pthread_join(t, NULL);
	cr_assert_eq(f.mem[31 * OVC_PAGE_SIZE], 0xee);
	cr_assert_eq(state_of(31), OVC_PAGE_RESIDENT);
}

Test(core, fill_brings_a_stored_page_back_without_a_fault)
{
	static uint8_t buf[OVC_PAGE_SIZE] __attribute__((aligned(4096)));
	struct ovc_xact x;

	fill(40, 6);
	page_out(40, OVC_PAGE_SWAPPED);
	cr_assert_eq(ovc__xact_begin(&x, f.ram, GFN(40), 1, 0), 0);
	cr_assert_eq(ovc__ram_store_load(f.ram, GFN(40), ovc__xact_old(&x, 0), buf), 0);
	ovc__xact_set(&x, 0, OVC_PAGE_RESIDENT, 0, buf);
	cr_assert_eq(ovc__xact_commit(&x), 0);
	cr_assert_eq(memstore_used(f.ms), 0);
	cr_assert(check(40, 6));
	cr_assert_eq(faults(OVC_FAULT_STORE), 0);
}

Test(core, store_to_store_releases_the_old_handle)
{
	static uint8_t buf[OVC_PAGE_SIZE] __attribute__((aligned(4096)));
	struct ovc_xact x;
	uint64_t h;

	fill(41, 2);
	page_out(41, OVC_PAGE_COMPRESSED);
	cr_assert_eq(ovc__xact_begin(&x, f.ram, GFN(41), 1, 0), 0);
	cr_assert_eq(ovc__ram_store_load(f.ram, GFN(41), ovc__xact_old(&x, 0), buf), 0);
	cr_assert_eq(memstore_save(f.ms, buf, &h), 0);
	cr_assert_eq(memstore_used(f.ms), 2);
	ovc__xact_set(&x, 0, OVC_PAGE_SWAPPED, h, NULL);
	cr_assert_eq(ovc__xact_commit(&x), 0);
	cr_assert_eq(memstore_used(f.ms), 1);
	cr_assert_eq(state_of(41), OVC_PAGE_SWAPPED);
	cr_assert(check(41, 2));
}

Test(core, failed_punch_leaves_page_resident_and_intact)
{
	struct ovc_xact x;
	uint64_t h[2];

	fill(50, 1);
	fill(52, 2);
	atomic_store(&f.ram->inject_punch_errno, EIO);
	atomic_store(&f.ram->inject_punch_count, 1);
	cr_assert_eq(ovc__xact_begin(&x, f.ram, GFN(50), 3, 0), 0);
	cr_assert_eq(memstore_save(f.ms, ovc__xact_hva(&x, 0), &h[0]), 0);
	cr_assert_eq(memstore_save(f.ms, ovc__xact_hva(&x, 2), &h[1]), 0);
	ovc__xact_set(&x, 0, OVC_PAGE_COMPRESSED, h[0], NULL);
	ovc__xact_set(&x, 2, OVC_PAGE_COMPRESSED, h[1], NULL);
	cr_assert_eq(ovc__xact_commit(&x), -EIO);
	cr_assert(x.failed[0]);
	cr_assert_not(x.failed[1]);
	cr_assert_not(x.failed[2]);
	memstore_drop(f.ms, h[0]);	/* the caller's, as documented */
	cr_assert_eq(state_of(50), OVC_PAGE_RESIDENT);
	cr_assert_eq(state_of(52), OVC_PAGE_COMPRESSED);
	cr_assert(check(50, 1));
	cr_assert(check(52, 2));
	f.mem[50 * OVC_PAGE_SIZE] = 1;	/* still writable */
	cr_assert_eq(memstore_used(f.ms), 0);
}

Test(core, lost_contents_poison_the_page, .signal = SIGBUS)
{
	fill(60, 9);
	page_out(60, OVC_PAGE_COMPRESSED);
	memstore_fail_loads(f.ms, 1, -EIO);
	(void)*(volatile uint8_t *)(f.mem + 60 * OVC_PAGE_SIZE);
}

Test(core, corrupt_store_page_poisons_not_zeroes, .signal = SIGBUS)
{
	uint64_t h;

	fill(61, 9);
	page_out(61, OVC_PAGE_SWAPPED);
	h = ovc__pte_payload(atomic_load(ovc__ram_pte(f.ram, GFN(61))));
	memstore_corrupt(f.ms, h);
	(void)*(volatile uint8_t *)(f.mem + 61 * OVC_PAGE_SIZE);
}

/* Touch page i from a thread of its own; true when the access raised SIGBUS. */
static bool touch_raises_sigbus(unsigned int i)
{
	int r = sigbus_probe(f.mem + i * OVC_PAGE_SIZE);

	cr_assert_geq(r, 0, "SIGBUS probe: %s", strerror(-r));
	return r == 1;
}

Test(core, store_error_is_counted_and_reported)
{
	struct ovc_mem_stats st;

	fill(62, 9);
	page_out(62, OVC_PAGE_COMPRESSED);
	memstore_fail_loads(f.ms, 1, -EBADMSG);
	cr_assert(touch_raises_sigbus(62), "the access was refused, not served zeros");
	cr_assert_eq(atomic_load(&f.fatal_calls), 1);
	cr_assert_eq(atomic_load(&f.fatal_err), -EBADMSG);
	ovc__ram_get_stats(f.ram, &st);
	cr_assert_eq(st.store_errors, 1);
	cr_assert_eq(st.faults[OVC_FAULT_ERROR], 1);
	cr_assert_eq(state_of(62), OVC_PAGE_COMPRESSED, "never turned into a zero page");
	cr_assert_eq(memstore_used(f.ms), 1, "the stored copy is kept");
	cr_assert_eq(f.mem[63 * OVC_PAGE_SIZE], 0, "neighbours are unaffected");
}

Test(core, fault_quantiles)
{
	struct ovc_mem_stats st;

	memset(&st, 0, sizeof(st));
	cr_assert_eq(ovc_mem_stats_fault_quantile_ns(&st, 0.5), 0);
	st.fault_ns_hist[10] = 50;	/* [1024, 2048) */
	st.fault_ns_hist[20] = 50;
	cr_assert_geq(ovc_mem_stats_fault_quantile_ns(&st, 0.25), 1024);
	cr_assert_lt(ovc_mem_stats_fault_quantile_ns(&st, 0.25), 2048);
	cr_assert_geq(ovc_mem_stats_fault_quantile_ns(&st, 0.99), 1 << 20);
	cr_assert_eq(ovc_mem_stats_fault_quantile_ns(NULL, 0.5), 0);
	cr_assert_str_eq(ovc_page_state_name(OVC_PAGE_SWAPPED), "swapped");
	cr_assert_str_eq(ovc_page_state_name(99), "invalid");
	cr_assert_str_eq(ovc_fault_kind_name(OVC_FAULT_WP), "wp");
	cr_assert_str_eq(ovc_fault_kind_name(-1), "invalid");
}

Test(core, set_store_rejects_resident_and_zero)
{
	cr_assert_eq(ovc__ram_set_store(f.ram, OVC_PAGE_RESIDENT, &memstore_ops, f.ms), -EINVAL);
	cr_assert_eq(ovc__ram_set_store(f.ram, OVC_PAGE_ZERO, &memstore_ops, f.ms), -EINVAL);
	cr_assert_eq(ovc__ram_set_store(f.ram, 7, &memstore_ops, f.ms), -EINVAL);
}

Test(core, bug_trap_aborts, .signal = SIGABRT)
{
	struct ovc_xact x;

	cr_assert_eq(ovc__xact_begin(&x, f.ram, GFN(70), 1, 0), 0);
	ovc__xact_set(&x, 1, OVC_PAGE_ZERO, 0, NULL);	/* page 1 of a 1-page run */
}

Test(core, busy_store_is_retried_not_poisoned)
{
	fill(64, 5);
	page_out(64, OVC_PAGE_SWAPPED);
	memstore_fail_loads(f.ms, 25, -EAGAIN);	/* longer than one fault's retries */
	cr_assert_not(touch_raises_sigbus(64), "served once the store had it");
	cr_assert(check(64, 5));
	cr_assert_eq(atomic_load(&f.fatal_calls), 0);
	cr_assert_eq(faults(OVC_FAULT_ERROR), 0);
}

Test(core, poison_is_cleared_when_the_page_moves_on)
{
	struct ovc_xact x;
	uint64_t e;

	fill(65, 5);
	page_out(65, OVC_PAGE_COMPRESSED);
	memstore_fail_loads(f.ms, 1, -EIO);
	cr_assert(touch_raises_sigbus(65));
	e = atomic_load(ovc__ram_pte(f.ram, GFN(65)));
	cr_assert(e & OVC_PTE_POISONED);
	/* The guest gives the page up (balloon): it must become usable again. */
	cr_assert_eq(ovc__xact_begin(&x, f.ram, GFN(65), 1, 0), 0);
	ovc__xact_set(&x, 0, OVC_PAGE_BALLOONED, 0, NULL);
	cr_assert_eq(ovc__xact_commit(&x), 0);
	cr_assert_eq(memstore_used(f.ms), 0, "the lost copy was released");
	cr_assert_not(touch_raises_sigbus(65), "no SIGBUS after the page moved on");
	cr_assert_eq(f.mem[65 * OVC_PAGE_SIZE + 9], 0);
	cr_assert_eq(state_of(65), OVC_PAGE_RESIDENT);
}

Test(core, store_in_use_cannot_be_replaced)
{
	fill(66, 1);
	page_out(66, OVC_PAGE_COMPRESSED);
	cr_assert_eq(ovc__ram_set_store(f.ram, OVC_PAGE_COMPRESSED, &memstore_ops, NULL), -EBUSY);
	cr_assert(check(66, 1));
	cr_assert_eq(ovc__ram_set_store(f.ram, OVC_PAGE_COMPRESSED, &memstore_ops, f.ms), 0);
}

/* ------------------------------------------------------------------------ */
/* Arming: a resident page's next access faults, contents in place. */

/* Whether page i is mapped in this process (pagemap's present bit). */
static bool mapped(unsigned int i)
{
	uint64_t ent = 0;
	FILE *fp = fopen("/proc/self/pagemap", "r");

	cr_assert_not_null(fp);
	cr_assert_eq(fseek(fp, (long)(((uintptr_t)f.mem / OVC_PAGE_SIZE + i) * 8), SEEK_SET), 0);
	cr_assert_eq(fread(&ent, sizeof(ent), 1, fp), 1);
	fclose(fp);
	return ent >> 63;
}

static uint64_t entry(unsigned int i)
{
	return atomic_load(ovc__ram_pte(f.ram, GFN(i)));
}

Test(core, armed_page_faults_once_and_keeps_its_contents)
{
	uint64_t blocks;

	if (!ovc__ram_can_arm(f.ram))
		cr_skip_test("no minor faults on shared memory here");
	fill(40, 3);
	atomic_fetch_and(ovc__ram_pte(f.ram, GFN(40)), ~OVC_PTE_ACCESSED);
	blocks = memfd_blocks();
	cr_assert(mapped(40));
	cr_assert_eq(ovc__ram_arm(f.ram, GFN(40), OVC_ARM_SAMPLE), 0);
	cr_assert_not(mapped(40), "zapped from the mapping");
	cr_assert_eq(memfd_blocks(), blocks, "the memfd keeps the page");
	cr_assert_eq(entry(40) & (OVC_PTE_ARMED | OVC_PTE_SAMPLED | OVC_PTE_ACCESSED),
		     OVC_PTE_ARMED | OVC_PTE_SAMPLED);
	cr_assert_eq(faults(OVC_FAULT_MINOR), 0);
	cr_assert(check(40, 3), "read through the minor fault");
	cr_assert_eq(faults(OVC_FAULT_MINOR), 1);
	cr_assert(mapped(40));
	cr_assert_eq(entry(40) & (OVC_PTE_ARMED | OVC_PTE_SAMPLED | OVC_PTE_ACCESSED),
		     OVC_PTE_ACCESSED, "touched: referenced, no longer armed");
	cr_assert(check(40, 3));
	cr_assert_eq(faults(OVC_FAULT_MINOR), 1, "once only");
	cr_assert_eq(state_of(40), OVC_PAGE_RESIDENT);
}

Test(core, arming_skips_busy_and_non_resident_pages)
{
	struct ovc_xact x;

	if (!ovc__ram_can_arm(f.ram))
		cr_skip_test("no minor faults on shared memory here");
	cr_assert_eq(ovc__ram_arm(f.ram, GFN(41), 0), -ENOENT, "ZERO is not armed");
	fill(42, 1);
	cr_assert_eq(ovc__xact_begin(&x, f.ram, GFN(42), 1, 0), 0);
	cr_assert_eq(ovc__ram_arm(f.ram, GFN(42), 0), -EBUSY);
	ovc__xact_abort(&x);
	cr_assert_eq(entry(42) & OVC_PTE_ARMED, 0);
	cr_assert_eq(ovc__ram_arm(f.ram, GFN(NPAGES), 0), -EINVAL);
	page_out(42, OVC_PAGE_COMPRESSED);
	cr_assert_eq(ovc__ram_arm(f.ram, GFN(42), 0), -ENOENT);
}

Test(core, transition_reads_an_armed_page_and_keeps_it_armed)
{
	struct ovc_xact x;

	if (!ovc__ram_can_arm(f.ram))
		cr_skip_test("no minor faults on shared memory here");
	fill(43, 5);
	fill(44, 6);
	cr_assert_eq(ovc__ram_arm(f.ram, GFN(43), OVC_ARM_SAMPLE), 0);
	cr_assert_eq(ovc__ram_arm(f.ram, GFN(44), 0), 0);
	/* A transition that only looks (compare, dedup miss): no fault, no deadlock. */
	cr_assert_eq(ovc__xact_begin(&x, f.ram, GFN(43), 2, 0), 0);
	cr_assert(ovc__page_is_zero(ovc__xact_hva(&x, 0)) == false);
	cr_assert_eq(((const uint8_t *)ovc__xact_hva(&x, 1))[1], (uint8_t)(6 + 7));
	cr_assert_eq(ovc__xact_commit(&x), 0);
	cr_assert_not(mapped(43));
	cr_assert_not(mapped(44));
	cr_assert_eq(entry(43) & (OVC_PTE_ARMED | OVC_PTE_SAMPLED), OVC_PTE_ARMED | OVC_PTE_SAMPLED);
	cr_assert_eq(faults(OVC_FAULT_MINOR), 0, "the transition's reads did not fault");
	/* Abort too. */
	cr_assert_eq(ovc__xact_begin(&x, f.ram, GFN(43), 1, 0), 0);
	ovc__xact_abort(&x);
	cr_assert_not(mapped(43));
	cr_assert(check(43, 5));
	cr_assert(check(44, 6));
	cr_assert_eq(faults(OVC_FAULT_MINOR), 2);
	/* Out and back: the contents survive, the next access faults as missing. */
	cr_assert_eq(ovc__ram_arm(f.ram, GFN(43), 0), 0);
	page_out(43, OVC_PAGE_SWAPPED);
	cr_assert(check(43, 5));
	cr_assert_eq(faults(OVC_FAULT_STORE), 1);
	cr_assert_eq(entry(43) & OVC_PTE_ARMED, 0);
}

Test(core, arming_during_writes_loses_nothing)
{
	unsigned int round, i;

	if (!ovc__ram_can_arm(f.ram))
		cr_skip_test("no minor faults on shared memory here");
	for (i = 0; i < 16; i++)
		fill(100 + i, (uint8_t)i);
	for (round = 0; round < 200; round++) {
		for (i = 0; i < 16; i++) {
			cr_assert_eq(ovc__ram_arm(f.ram, GFN(100 + i), 0), 0);
			f.mem[(100 + i) * OVC_PAGE_SIZE + round % OVC_PAGE_SIZE] ^= 0xff;
			f.mem[(100 + i) * OVC_PAGE_SIZE + round % OVC_PAGE_SIZE] ^= 0xff;
		}
	}
	for (i = 0; i < 16; i++)
		cr_assert(check(100 + i, (uint8_t)i));
	cr_assert_eq(faults(OVC_FAULT_MINOR), 200 * 16);
	cr_assert_eq(faults(OVC_FAULT_ERROR), 0);
}

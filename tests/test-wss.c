// SPDX-License-Identifier: MIT
/* tests/test-wss.c: the working-set sampler against host threads with known working sets. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "host/host-internal.h"

#define MiB (1ULL << 20)
#define PAGE OVC_PAGE_SIZE
#define RAM_BYTES (32 * MiB)
#define NPAGES (RAM_BYTES / PAGE)
#define PERIOD_MS 200
#define TOLERANCE 0.10		/* the goal: within 10 percentage points */

static struct ovc_host *host;

static double dist(double d)
{
	return d < 0 ? -d : d;
}

static void setup(void)
{
	struct ovc_host_config cfg;

	ovc_host_config_init(&cfg);
	cfg.log_level = OVC_LOG_ERR;
	cfg.tick_ms = 20;
	host = ovc_host_new(&cfg);
	cr_assert_not_null(host);
}

static void teardown(void)
{
	cr_assert_eq(ovc_host_destroy(host), 0);
}

TestSuite(wss, .init = setup, .fini = teardown, .timeout = 60);

static struct ovc_vm *make_vm(const char *name, uint8_t **base, uint64_t prefault)
{
	struct ovc_vm *vm = ovc_vm_new(host, name);
	uint64_t i;
	void *hva;

	cr_assert_not_null(vm);
	cr_assert_eq(ovc_vm_add_ram(vm, 0, RAM_BYTES, &hva), 0);
	*base = hva;
	for (i = 0; i < prefault; i++)
		(*base)[i * PAGE] = (uint8_t)(i | 1);
	return vm;
}

static bool can_sample(struct ovc_vm *vm)
{
	return ovc__ram_can_arm(ovc__vm_ram(vm));
}

/*
 * The guest stand-in: threads reading a known set of pages over and over,
 * the way memtouch's hot set is used. Page i is hot when its place in a
 * fixed permutation of the RAM falls below the hot count (scattered pages,
 * exactly @hot of them).
 */
struct workload {
	uint8_t *base;
	_Atomic uint64_t hot;		/* pages in the working set */
	_Atomic bool stop;
	_Atomic uint64_t rounds;
	pthread_t threads[2];
};

static uint64_t perm(uint64_t i)
{
	return (i * 2654435761ULL + 12345) % NPAGES;	/* odd multiplier: a bijection */
}

static void *touch(void *arg)
{
	struct workload *w = arg;
	volatile uint64_t sink = 0;
	uint64_t i;

	while (!atomic_load(&w->stop)) {
		uint64_t hot = atomic_load(&w->hot);

		for (i = 0; i < NPAGES; i++) {
			if (perm(i) < hot)
				sink += *(volatile uint8_t *)(w->base + i * PAGE);
		}
		atomic_fetch_add(&w->rounds, 1);
		usleep(1000);
	}
	(void)sink;
	return NULL;
}

static void work_start(struct workload *w, uint8_t *base, double frac)
{
	unsigned int i;

	memset(w, 0, sizeof(*w));
	w->base = base;
	atomic_store(&w->hot, (uint64_t)(frac * NPAGES));
	for (i = 0; i < 2; i++)
		cr_assert_eq(pthread_create(&w->threads[i], NULL, touch, w), 0);
}

static void work_stop(struct workload *w)
{
	unsigned int i;

	atomic_store(&w->stop, true);
	for (i = 0; i < 2; i++)
		pthread_join(w->threads[i], NULL);
}

/* Wait until @n more periods have finished; return the estimate. */
static struct ovc_wss_snap wait_periods(struct ovc_vm *vm, uint64_t n)
{
	struct ovc_wss_snap s;
	uint64_t until;

	cr_assert_eq(ovc_vm_get_wss(vm, &s), 0);
	until = s.periods + n;
	do {
		usleep(10000);
		cr_assert_eq(ovc_vm_get_wss(vm, &s), 0);
	} while (s.periods < until);
	return s;
}

/* Run a working set of @frac for a few periods; return the worst error seen. */
static double measure(double frac, unsigned int samples, double *mean_last)
{
	struct ovc_wss_snap s;
	struct workload w;
	struct ovc_vm *vm;
	double worst = 0.0, sum = 0.0;
	uint8_t *base;
	unsigned int p;
	const unsigned int periods = 5;

	vm = make_vm("memtouch", &base, NPAGES);
	work_start(&w, base, frac);
	cr_assert_eq(ovc_vm_set_wss_sampling(vm, PERIOD_MS, samples), 0);
	/* The first period starts on a tick and may begin before the threads run. */
	s = wait_periods(vm, 2);
	for (p = 0; p < periods; p++) {
		s = wait_periods(vm, 1);
		cr_assert(s.valid);
		cr_assert_eq(s.period_ns, PERIOD_MS * 1000000ULL);
		cr_assert_geq(s.sampled, samples * 95 / 100, "sampled %llu",
			      (unsigned long long)s.sampled);
		sum += s.last;
		if (dist(s.active_frac - frac) > worst)
			worst = dist(s.active_frac - frac);
		cr_log_info("hot %.2f samples %u: last %.3f fast %.3f slow %.3f -> %.3f",
			    frac, samples, s.last, s.fast, s.slow, s.active_frac);
	}
	work_stop(&w);
	*mean_last = sum / periods;
	cr_assert_eq(ovc_vm_destroy(vm), 0);
	return worst;
}

Test(wss, estimate_within_ten_points_of_known_working_sets)
{
	static const double fracs[] = { 0.1, 0.5, 0.9 };
	struct ovc_vm *vm;
	uint8_t *base;
	unsigned int i;

	vm = make_vm("probe", &base, 0);
	if (!can_sample(vm)) {
		cr_assert_eq(ovc_vm_destroy(vm), 0);
		cr_skip_test("no minor faults on shared memory here");
	}
	cr_assert_eq(ovc_vm_destroy(vm), 0);
	for (i = 0; i < sizeof(fracs) / sizeof(fracs[0]); i++) {
		double mean, worst = measure(fracs[i], 400, &mean);

		cr_log_info("hot %.2f: worst error %.1f points, mean of periods %.3f",
			    fracs[i], worst * 100, mean);
		cr_assert_leq(worst, TOLERANCE, "hot %.2f: estimate off by %.1f points",
			      fracs[i], worst * 100);
		cr_assert_leq(dist(mean - fracs[i]), TOLERANCE);
	}
}

/* ESX's 100 samples: each period is noisier (binomial), their mean is not. */
Test(wss, default_samples_mean_within_ten_points)
{
	struct ovc_vm *vm;
	double mean;
	uint8_t *base;

	vm = make_vm("probe", &base, 0);
	if (!can_sample(vm)) {
		cr_assert_eq(ovc_vm_destroy(vm), 0);
		cr_skip_test("no minor faults on shared memory here");
	}
	cr_assert_eq(ovc_vm_destroy(vm), 0);
	measure(0.3, 0, &mean);
	cr_log_info("hot 0.30, 100 samples: mean of periods %.3f", mean);
	cr_assert_leq(dist(mean - 0.3), TOLERANCE, "mean %.3f", mean);
}

Test(wss, idle_vm_is_estimated_idle_and_snapshots_carry_it)
{
	const struct ovc_stats_snapshot *snap;
	const struct ovc_vm_snap *v;
	struct ovc_wss_snap s;
	struct ovc_mem_stats st;
	struct ovc_vm *vm;
	uint8_t *base;

	vm = make_vm("idle", &base, NPAGES);
	if (!can_sample(vm)) {
		cr_assert_eq(ovc_vm_destroy(vm), 0);
		cr_skip_test("no minor faults on shared memory here");
	}
	cr_assert_eq(ovc_vm_set_wss_sampling(vm, PERIOD_MS, 0), 0);
	s = wait_periods(vm, 2);
	cr_assert(s.valid);
	cr_assert_eq(s.sampled, OVC_WSS_SAMPLES_DEFAULT);
	cr_assert_eq(s.touched, 0);
	cr_assert_eq(s.active_frac, 0.0);
	cr_assert_eq(s.active_bytes, 0);
	ovc_vm_get_mem_stats(vm, &st);
	cr_assert_eq(st.faults[OVC_FAULT_MINOR], 0, "nobody touched the armed pages");

	/* The snapshot of a later tick carries it. */
	usleep(100000);
	ovc_thread_register();
	snap = ovc_stats_get(host);
	cr_assert_not_null(snap);
	v = ovc_stats_find_vm(snap, "idle");
	cr_assert_not_null(v);
	cr_assert(v->wss.valid);
	cr_assert_geq(v->wss.periods, 2);
	cr_assert_eq(v->wss.sampled, OVC_WSS_SAMPLES_DEFAULT);
	ovc_stats_put(snap);
	ovc_thread_unregister();

	/* Stopping clears the estimate; the armed pages still read back intact. */
	cr_assert_eq(ovc_vm_set_wss_sampling(vm, 0, 0), 0);
	cr_assert_eq(ovc_vm_get_wss(vm, &s), 0);
	cr_assert_not(s.valid);
	for (uint64_t i = 0; i < NPAGES; i++)
		cr_assert_eq(base[i * PAGE], (uint8_t)(i | 1));
	ovc_vm_get_mem_stats(vm, &st);
	cr_assert_geq(st.faults[OVC_FAULT_MINOR], 1);
	cr_assert_eq(st.faults[OVC_FAULT_ERROR], 0);
	cr_assert_eq(ovc_vm_destroy(vm), 0);
}

/* Up at once (the last period), down slowly (the slow average), as ESX. */
Test(wss, rises_at_once_and_falls_slowly)
{
	struct ovc_wss_snap s;
	struct workload w;
	struct ovc_vm *vm;
	uint8_t *base;

	vm = make_vm("shift", &base, NPAGES);
	if (!can_sample(vm)) {
		cr_assert_eq(ovc_vm_destroy(vm), 0);
		cr_skip_test("no minor faults on shared memory here");
	}
	work_start(&w, base, 0.2);
	cr_assert_eq(ovc_vm_set_wss_sampling(vm, PERIOD_MS, 400), 0);
	s = wait_periods(vm, 4);
	cr_assert_leq(dist(s.active_frac - 0.2), TOLERANCE, "at 0.2: %.3f", s.active_frac);

	atomic_store(&w.hot, (uint64_t)(0.8 * NPAGES));
	wait_periods(vm, 1);	/* the period the change fell in */
	/* The first full period after it (or the next, on a loaded machine). */
	s = wait_periods(vm, 1);
	if (s.active_frac < 0.8 - TOLERANCE)
		s = wait_periods(vm, 1);
	cr_assert_leq(dist(s.active_frac - 0.8), TOLERANCE, "up to 0.8: %.3f", s.active_frac);

	atomic_store(&w.hot, (uint64_t)(0.2 * NPAGES));
	wait_periods(vm, 1);
	s = wait_periods(vm, 1);
	cr_assert_leq(dist(s.last - 0.2), TOLERANCE, "the last period sees 0.2: %.3f", s.last);
	cr_assert_geq(s.active_frac, s.last + 0.1, "the averages hold the estimate up: %.3f",
		      s.active_frac);
	cr_assert_eq(s.active_frac, s.fast > s.slow ? s.fast : s.slow);
	work_stop(&w);
	cr_assert_eq(ovc_vm_destroy(vm), 0);
}

Test(wss, estimator_formula)
{
	cr_assert_eq(ovc__wss_estimate(100, 50, 1000, 0, 1000), 0.5);
	/* Half the RAM resident, half of it touched, 100 pages faulted back. */
	cr_assert_float_eq(ovc__wss_estimate(100, 50, 500, 100, 1000), 0.35, 1e-9);
	/* Refaults count at most the pages that were not resident. */
	cr_assert_float_eq(ovc__wss_estimate(100, 100, 900, 500, 1000), 1.0, 1e-9);
	cr_assert_float_eq(ovc__wss_estimate(0, 0, 0, 250, 1000), 0.25, 1e-9);
	cr_assert_eq(ovc__wss_estimate(0, 0, 0, 0, 0), 0.0);
}

/* Driven by hand: pages touched for the first time count through their faults. */
Test(wss, non_resident_pages_count_through_their_faults)
{
	struct ovc_wss_sampler *smp;
	struct ovc_wss_snap s;
	struct ovc_vm *vm;
	struct ovc_ram *ram;
	uint8_t *base;
	uint64_t i;

	vm = make_vm("fresh", &base, NPAGES / 2);
	ram = ovc__vm_ram(vm);
	if (!can_sample(vm)) {
		cr_assert_eq(ovc_vm_destroy(vm), 0);
		cr_skip_test("no minor faults on shared memory here");
	}
	smp = ovc__wss_new(400, 1000, 7);
	cr_assert_not_null(smp);
	cr_assert_not(ovc__wss_tick(smp, ram, 1, 0, &s));
	/* A quarter of the RAM (half the resident pages) used, an eighth touched fresh. */
	for (i = 0; i < NPAGES / 4; i++)
		(void)*(volatile uint8_t *)(base + i * PAGE);
	for (i = NPAGES / 2; i < NPAGES / 2 + NPAGES / 8; i++)
		base[i * PAGE] = 1;
	cr_assert(ovc__wss_tick(smp, ram, 2000, 0, &s));
	cr_log_info("fresh: sampled %llu touched %llu -> %.3f",
		    (unsigned long long)s.sampled, (unsigned long long)s.touched, s.last);
	cr_assert_eq(s.sampled, 400);
	cr_assert_leq(dist(s.last - 0.375), TOLERANCE, "%.3f", s.last);
	/* Pages sampled but untouched lost ACCESSED (set by their first fault): cold for the pager. */
	{
		uint64_t cold = 0;

		for (i = NPAGES / 4; i < NPAGES / 2; i++)
			cold += !(atomic_load(ovc__ram_pte(ram, i)) & OVC_PTE_ACCESSED);
		cr_log_info("untouched pages the sampler told the pager about: %llu",
			    (unsigned long long)cold);
		cr_assert_geq(cold, 100);
	}
	ovc__wss_free(smp);
	cr_assert_eq(ovc_vm_destroy(vm), 0);
}

Test(wss, bad_arguments_change_nothing)
{
	struct ovc_wss_snap s;
	struct ovc_vm *vm;
	uint8_t *base;

	vm = make_vm("args", &base, 0);
	cr_assert_eq(ovc_vm_set_wss_sampling(NULL, PERIOD_MS, 0), -EINVAL);
	cr_assert_eq(ovc_vm_set_wss_sampling(vm, 5, 0), -EINVAL);
	cr_assert_eq(ovc_vm_set_wss_sampling(vm, 3600001, 0), -EINVAL);
	cr_assert_eq(ovc_vm_set_wss_sampling(vm, PERIOD_MS, OVC_WSS_SAMPLES_MAX + 1), -EINVAL);
	cr_assert_eq(ovc_vm_get_wss(vm, NULL), -EINVAL);
	cr_assert_eq(ovc_vm_get_wss(vm, &s), 0);
	cr_assert_not(s.valid);
	cr_assert_eq(ovc_vm_set_wss_sampling(vm, 0, 0), 0, "stopping what never ran is fine");
	cr_assert_eq(ovc_vm_destroy(vm), 0);
}

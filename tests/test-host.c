// SPDX-License-Identifier: MIT
/* tests/test-host.c: the host and VM API: lifetimes, names, RAM ranges, the manager tick. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <criterion/parameterized.h>

#include <ovc/ovc.h>
#include "host/host-internal.h"

#define MiB (1ULL << 20)
#define GiB (1ULL << 30)
#define TiB (1ULL << 40)

/* Long enough for a loaded sanitizer build, short next to the test timeout. */
#define SETTLE_MS 3000

/*
 * Log lines of the host under test. The fault engine and the manager may log
 * from their own threads, hence the lock.
 */
struct log_capture {
	pthread_mutex_t lock;
	unsigned int total;
	unsigned int per_level[8];
	char last[512];
};

static struct log_capture logs = { .lock = PTHREAD_MUTEX_INITIALIZER };

static struct ovc_host *host;
static struct ovc_host *host2;

static void capture_log(void *opaque, int level, const char *msg)
{
	struct log_capture *lc = opaque;

	pthread_mutex_lock(&lc->lock);
	lc->total++;
	if (level >= 0 && level < 8)
		lc->per_level[level]++;
	snprintf(lc->last, sizeof(lc->last), "%s", msg);
	pthread_mutex_unlock(&lc->lock);
}

static void log_reset(void)
{
	pthread_mutex_lock(&logs.lock);
	logs.total = 0;
	memset(logs.per_level, 0, sizeof(logs.per_level));
	logs.last[0] = '\0';
	pthread_mutex_unlock(&logs.lock);
}

/* Lines since the last log_reset(): all of them, and those at @level. */
static void log_counts(int level, unsigned int *total, unsigned int *at_level)
{
	pthread_mutex_lock(&logs.lock);
	*total = logs.total;
	*at_level = logs.per_level[level];
	pthread_mutex_unlock(&logs.lock);
}

static void test_config(struct ovc_host_config *cfg, unsigned int tick_ms)
{
	ovc_host_config_init(cfg);
	cfg->tick_ms = tick_ms;
	cfg->log_fn = capture_log;
	cfg->log_opaque = &logs;
	/* Capture everything, so that "exactly one ERR line" means one line. */
	cfg->log_level = OVC_LOG_DEBUG;
}

static void setup(void)
{
	struct ovc_host_config cfg;

	test_config(&cfg, 1000);
	host = ovc_host_new(&cfg);
	cr_assert_not_null(host, "ovc_host_new: %s", strerror(errno));
}

static void setup_fast_tick(void)
{
	struct ovc_host_config cfg;

	test_config(&cfg, 10);
	host = ovc_host_new(&cfg);
	cr_assert_not_null(host, "ovc_host_new: %s", strerror(errno));
}

static void setup_default(void)
{
	host = ovc_host_new(NULL);
	cr_assert_not_null(host, "ovc_host_new(NULL): %s", strerror(errno));
}

static void setup_two(void)
{
	setup();
	host2 = ovc_host_new(NULL);
	cr_assert_not_null(host2, "second ovc_host_new: %s", strerror(errno));
}

/*
 * Criterion 2.4 reports a test before its .fini runs and ignores assertions
 * failing there (Snaipe/Criterion#211), so each test ends by calling this
 * itself; .fini calls it again to free what a failed test left behind.
 */
static void hosts_destroy(void)
{
	if (host2) {
		cr_assert_eq(ovc_host_destroy(host2), 0);
		host2 = NULL;
	}
	if (host) {
		cr_assert_eq(ovc_host_destroy(host), 0);
		host = NULL;
	}
}

static void teardown(void)
{
	hosts_destroy();
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void sleep_ms(unsigned int ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static uint64_t sum(const uint64_t *v, int n)
{
	uint64_t total = 0;
	int i;

	for (i = 0; i < n; i++)
		total += v[i];
	return total;
}

static uint64_t hist_sum(const struct ovc_mem_stats *st)
{
	return sum(st->fault_ns_hist, OVC_FAULT_HIST_BUCKETS);
}

/*
 * The fault engine counts a fault after it has woken the faulting thread,
 * so the counters lag a touch by a moment. A served fault's last update is
 * its histogram bucket: once @served faults are in the histogram, every
 * entry and counter they change is final.
 */
static void settle(struct ovc_vm *vm, uint64_t served, struct ovc_mem_stats *st)
{
	uint64_t deadline = now_ms() + SETTLE_MS;

	for (;;) {
		cr_assert_eq(ovc_vm_get_mem_stats(vm, st), 0);
		if (hist_sum(st) >= served || now_ms() > deadline)
			break;
		sleep_ms(1);
	}
	cr_assert_eq(ovc_vm_get_mem_stats(vm, st), 0);
	cr_assert_eq(hist_sum(st), served, "%llu faults served, expected %llu",
		     (unsigned long long)hist_sum(st), (unsigned long long)served);
	cr_assert_eq(st->busy_pages, 0);
}

/* The first touch of a page faults; the tag shows which VM and page it was. */
static uint64_t tag(unsigned int vm_id, uint64_t page)
{
	return 0x6f7663ULL << 40 | (uint64_t)vm_id << 32 | page;
}

static void write_page(uint8_t *hva, uint64_t page, uint64_t val)
{
	volatile uint64_t *p = (volatile uint64_t *)(hva + page * OVC_PAGE_SIZE);

	p[0] = val;
	p[OVC_PAGE_SIZE / sizeof(*p) - 1] = ~val;
}

static bool page_holds(uint8_t *hva, uint64_t page, uint64_t val)
{
	volatile uint64_t *p = (volatile uint64_t *)(hva + page * OVC_PAGE_SIZE);

	return p[0] == val && p[OVC_PAGE_SIZE / sizeof(*p) - 1] == ~val &&
	       p[1] == 0;
}

static uint64_t page_word(uint8_t *hva, uint64_t page)
{
	return *(volatile uint64_t *)(hva + page * OVC_PAGE_SIZE);
}

static void assert_only_zero_faults(const struct ovc_mem_stats *st, uint64_t n)
{
	int k;

	for (k = 0; k < OVC_FAULT_NR_KINDS; k++)
		cr_assert_eq(st->faults[k], k == OVC_FAULT_ZERO ? n : 0,
			     "faults[%s] = %llu", ovc_fault_kind_name(k),
			     (unsigned long long)st->faults[k]);
}

static uint64_t total_pages(const struct ovc_mem_stats *st)
{
	return sum(st->pages, OVC_PAGE_NR_STATES);
}

/* ------------------------------------------------------------------------ */
/* Configuration and creation */

Test(host, config_defaults, .init = setup, .fini = teardown)
{
	struct ovc_host_config cfg;

	memset(&cfg, 0xa5, sizeof(cfg));
	ovc_host_config_init(&cfg);
	cr_assert_eq(cfg.fault_threads, 2);
	cr_assert_eq(cfg.tick_ms, 1000);
	cr_assert_null(cfg.log_fn);
	cr_assert_null(cfg.log_opaque);
	cr_assert_eq(cfg.log_level, OVC_LOG_INFO);
	/* Documented as harmless. */
	ovc_host_config_init(NULL);
	hosts_destroy();
}

struct cfg_case {
	unsigned int fault_threads;
	unsigned int tick_ms;
	bool ok;
};

ParameterizedTestParameters(host, new_config)
{
	static struct cfg_case cases[] = {
		{ .fault_threads = 0, .tick_ms = 1000, .ok = false },
		{ .fault_threads = 65, .tick_ms = 1000, .ok = false },
		{ .fault_threads = 2, .tick_ms = 5, .ok = false },
		{ .fault_threads = 2, .tick_ms = 9, .ok = false },
		{ .fault_threads = 2, .tick_ms = 60001, .ok = false },
		{ .fault_threads = 2, .tick_ms = 70000, .ok = false },
		{ .fault_threads = 1, .tick_ms = 10, .ok = true },
		{ .fault_threads = 64, .tick_ms = 60000, .ok = true },
	};

	return cr_make_param_array(struct cfg_case, cases, OVC_ARRAY_SIZE(cases));
}

ParameterizedTest(struct cfg_case *c, host, new_config, .init = setup, .fini = teardown,
		  .timeout = 10)
{
	struct ovc_host_config cfg;
	struct ovc_host *h;

	ovc_host_config_init(&cfg);
	cfg.fault_threads = c->fault_threads;
	cfg.tick_ms = c->tick_ms;
	errno = 0;
	h = ovc_host_new(&cfg);
	if (c->ok) {
		cr_assert_not_null(h, "fault_threads %u tick_ms %u: %s", c->fault_threads,
				   c->tick_ms, strerror(errno));
		cr_assert_eq(ovc_host_vm_count(h), 0);
		cr_assert_eq(ovc_host_destroy(h), 0);
	} else {
		cr_assert_null(h, "fault_threads %u tick_ms %u accepted",
			       c->fault_threads, c->tick_ms);
		cr_assert_eq(errno, EINVAL);
	}
	hosts_destroy();
}

/* The host of this test comes from ovc_host_new(NULL). */
Test(host, new_null_config, .init = setup_default, .fini = teardown, .timeout = 10)
{
	struct ovc_mem_stats st;
	struct ovc_vm *vm;
	void *hva;

	vm = ovc_vm_new(host, "defaults");
	cr_assert_not_null(vm, "ovc_vm_new: %s", strerror(errno));
	cr_assert_eq(ovc_vm_add_ram(vm, 0, 4 * MiB, &hva), 0);
	write_page(hva, 7, tag(0, 7));
	cr_assert(page_holds(hva, 7, tag(0, 7)));
	settle(vm, 1, &st);
	assert_only_zero_faults(&st, 1);
	cr_assert_eq(ovc_vm_page_state(vm, 7 * OVC_PAGE_SIZE, NULL), OVC_PAGE_RESIDENT);
	cr_assert_eq(ovc_vm_destroy(vm), 0);
	hosts_destroy();
}

/* ------------------------------------------------------------------------ */
/* Two hosts in one process share nothing */

struct toucher {
	uint8_t *hva[2];
	uint64_t npages[2];
	bool ok;
};

/*
 * Like a vCPU: the first access to each page, a read on odd pages and a
 * write on the others, faults; then every page is written and read back.
 */
static void *toucher_thread(void *arg)
{
	struct toucher *t = arg;
	unsigned int v;
	uint64_t p;

	t->ok = true;
	for (v = 0; v < 2; v++) {
		for (p = 0; p < t->npages[v]; p++) {
			if (p & 1 && page_word(t->hva[v], p) != 0)
				t->ok = false;
			write_page(t->hva[v], p, tag(v, p));
		}
	}
	for (v = 0; v < 2; v++) {
		for (p = 0; p < t->npages[v]; p++) {
			if (!page_holds(t->hva[v], p, tag(v, p)))
				t->ok = false;
		}
	}
	return NULL;
}

Test(host, two_hosts, .init = setup_two, .fini = teardown, .timeout = 20)
{
	struct toucher t = { .npages = { 100, 37 } };
	struct ovc_mem_stats st[2];
	struct ovc_vm *vm[2];
	uint64_t ram[2] = { 8 * MiB, 4 * MiB };
	pthread_t thr;
	unsigned int v;
	void *hva;

	/* Same name on both: names are per host. */
	vm[0] = ovc_vm_new(host, "guest");
	cr_assert_not_null(vm[0], "ovc_vm_new: %s", strerror(errno));
	vm[1] = ovc_vm_new(host2, "guest");
	cr_assert_not_null(vm[1], "ovc_vm_new on the second host: %s", strerror(errno));
	for (v = 0; v < 2; v++) {
		cr_assert_eq(ovc_vm_add_ram(vm[v], 0, ram[v], &hva), 0);
		t.hva[v] = hva;
	}
	cr_assert_neq(t.hva[0], t.hva[1]);
	cr_assert_eq(ovc_host_vm_count(host), 1);
	cr_assert_eq(ovc_host_vm_count(host2), 1);

	cr_assert_eq(pthread_create(&thr, NULL, toucher_thread, &t), 0);
	cr_assert_eq(pthread_join(thr, NULL), 0);
	cr_assert(t.ok, "guest RAM contents do not check out");

	for (v = 0; v < 2; v++) {
		uint64_t npages = ram[v] / OVC_PAGE_SIZE;

		settle(vm[v], t.npages[v], &st[v]);
		assert_only_zero_faults(&st[v], t.npages[v]);
		cr_assert_eq(st[v].ram_bytes, ram[v]);
		cr_assert_eq(st[v].pages[OVC_PAGE_RESIDENT], t.npages[v]);
		cr_assert_eq(st[v].pages[OVC_PAGE_ZERO], npages - t.npages[v]);
		cr_assert_eq(total_pages(&st[v]), npages);
		cr_assert_eq(ovc_vm_page_state(vm[v], (t.npages[v] - 1) * OVC_PAGE_SIZE, NULL),
			     OVC_PAGE_RESIDENT);
		cr_assert_eq(ovc_vm_page_state(vm[v], t.npages[v] * OVC_PAGE_SIZE, NULL),
			     OVC_PAGE_ZERO);
	}
	/* Contents are still there once the other host's VM is gone. */
	cr_assert_eq(ovc_vm_destroy(vm[1]), 0);
	cr_assert_eq(ovc_host_vm_count(host2), 0);
	cr_assert_eq(ovc_host_vm_count(host), 1);
	cr_assert(page_holds(t.hva[0], t.npages[0] - 1, tag(0, t.npages[0] - 1)));
	cr_assert_eq(ovc_vm_destroy(vm[0]), 0);
	hosts_destroy();
}

/* ------------------------------------------------------------------------ */
/* Lifetime */

Test(host, destroy_busy, .init = setup_fast_tick, .fini = teardown, .timeout = 10)
{
	struct ovc_mem_stats st;
	unsigned int total, errs;
	struct ovc_vm *vm;
	uint64_t ticks, deadline;
	void *hva;

	vm = ovc_vm_new(host, "busy");
	cr_assert_not_null(vm, "ovc_vm_new: %s", strerror(errno));
	cr_assert_eq(ovc_vm_add_ram(vm, 0, 4 * MiB, &hva), 0);
	write_page(hva, 0, tag(0, 0));

	log_reset();
	cr_assert_eq(ovc_host_destroy(host), -EBUSY);
	log_counts(OVC_LOG_ERR, &total, &errs);
	cr_assert_eq(errs, 1);
	cr_assert_eq(total, 1);

	/* Nothing was torn down: the VM, its faults and the manager still run. */
	cr_assert_eq(ovc_host_vm_count(host), 1);
	cr_assert_str_eq(ovc_vm_name(vm), "busy");
	cr_assert(page_holds(hva, 0, tag(0, 0)));
	write_page(hva, 1, tag(0, 1));
	cr_assert(page_holds(hva, 1, tag(0, 1)));
	settle(vm, 2, &st);
	assert_only_zero_faults(&st, 2);
	cr_assert_eq(st.pages[OVC_PAGE_RESIDENT], 2);
	ticks = ovc_host_ticks(host);
	deadline = now_ms() + SETTLE_MS;
	while (ovc_host_ticks(host) <= ticks && now_ms() < deadline)
		sleep_ms(1);
	cr_assert_gt(ovc_host_ticks(host), ticks, "the manager stopped ticking");

	cr_assert_eq(ovc_vm_destroy(vm), 0);
	cr_assert_eq(ovc_host_vm_count(host), 0);
	hosts_destroy();
}

Test(host, destroy_null, .init = setup, .fini = teardown)
{
	cr_assert_eq(ovc_host_destroy(NULL), -EINVAL);
	cr_assert_eq(ovc_vm_destroy(NULL), -EINVAL);
	cr_assert_eq(ovc_host_ticks(NULL), 0);
	cr_assert_eq(ovc_host_vm_count(NULL), 0);
	cr_assert_null(ovc_vm_name(NULL));
	hosts_destroy();
}

/* ------------------------------------------------------------------------ */
/* VM names */

/*
 * Criterion re-executes the test binary, so a parameter must hold its data,
 * not point at it.
 */
struct name_case {
	bool null;
	char name[72];
};

ParameterizedTestParameters(host, vm_bad_name)
{
	static struct name_case cases[] = {
		{ .null = true },
		{ .name = "" },
		{ .name = "0123456789012345678901234567890123456789012345678901234567890123" },
		{ .name = "a b" },
		{ .name = "x/y" },
		{ .name = "tab\there" },
		{ .name = "caf\xc3\xa9" },
	};

	return cr_make_param_array(struct name_case, cases, OVC_ARRAY_SIZE(cases));
}

ParameterizedTest(struct name_case *c, host, vm_bad_name, .init = setup, .fini = teardown,
		  .timeout = 10)
{
	const char *name = c->null ? NULL : c->name;
	unsigned int total, errs;

	log_reset();
	errno = 0;
	cr_assert_null(ovc_vm_new(host, name), "name '%s' accepted", name ? name : "(null)");
	cr_assert_eq(errno, EINVAL);
	cr_assert_eq(ovc_host_vm_count(host), 0);
	log_counts(OVC_LOG_ERR, &total, &errs);
	cr_assert_eq(errs, 1);
	cr_assert_eq(total, 1);
	hosts_destroy();
}

Test(host, vm_names, .init = setup, .fini = teardown, .timeout = 10)
{
	static const char longest[] =
		"012345678901234567890123456789012345678901234567890123456789012";
	char buf[16] = "vm-a";
	struct ovc_vm *a, *b, *c;

	cr_assert_eq(strlen(longest), 63);
	errno = 0;
	cr_assert_null(ovc_vm_new(NULL, "vm-a"));
	cr_assert_eq(errno, EINVAL);

	cr_assert_eq(ovc_host_vm_count(host), 0);
	a = ovc_vm_new(host, buf);
	cr_assert_not_null(a, "ovc_vm_new: %s", strerror(errno));
	/* The VM keeps its own copy of the name. */
	buf[0] = 'X';
	cr_assert_str_eq(ovc_vm_name(a), "vm-a");
	cr_assert_eq(ovc_host_vm_count(host), 1);

	b = ovc_vm_new(host, longest);
	cr_assert_not_null(b, "63-character name: %s", strerror(errno));
	cr_assert_str_eq(ovc_vm_name(b), longest);
	cr_assert_eq(ovc_host_vm_count(host), 2);

	errno = 0;
	cr_assert_null(ovc_vm_new(host, "vm-a"));
	cr_assert_eq(errno, EEXIST);
	cr_assert_eq(ovc_host_vm_count(host), 2);

	c = ovc_vm_new(host, "Vm_A.9");
	cr_assert_not_null(c, "ovc_vm_new: %s", strerror(errno));
	cr_assert_str_eq(ovc_vm_name(c), "Vm_A.9");
	cr_assert_eq(ovc_host_vm_count(host), 3);

	cr_assert_eq(ovc_vm_destroy(a), 0);
	cr_assert_eq(ovc_host_vm_count(host), 2);
	/* A destroyed VM's name is free again. */
	a = ovc_vm_new(host, "vm-a");
	cr_assert_not_null(a, "name of a destroyed VM: %s", strerror(errno));
	cr_assert_eq(ovc_host_vm_count(host), 3);

	cr_assert_eq(ovc_vm_destroy(b), 0);
	cr_assert_eq(ovc_vm_destroy(a), 0);
	cr_assert_eq(ovc_vm_destroy(c), 0);
	cr_assert_eq(ovc_host_vm_count(host), 0);
	hosts_destroy();
}

/* ------------------------------------------------------------------------ */
/* The manager thread */

/* What the last published snapshot says of VM @name (zeros before it appears). */
struct last_tick {
	uint64_t at_ns;
	struct ovc_mem_stats mem;
	double faults_per_sec;
};

static void last_tick(struct ovc_host *h, const char *name, struct last_tick *out)
{
	const struct ovc_stats_snapshot *s = ovc_stats_read_lock(h);
	const struct ovc_vm_snap *v = ovc_stats_find_vm(s, name);

	memset(out, 0, sizeof(*out));
	if (v) {
		out->at_ns = s->at_ns;
		out->mem = v->mem;
		out->faults_per_sec = v->faults_per_sec;
	}
	ovc_stats_read_unlock(h);
}

Test(host, ticks, .init = setup_fast_tick, .fini = teardown, .timeout = 10)
{
	struct last_tick last;
	struct ovc_mem_stats st;
	uint64_t deadline, t0;
	struct ovc_vm *vm;
	void *hva;
	int i;

	/* 10 ms ticks: a few within a second even on a loaded machine. */
	t0 = now_ms();
	while (ovc_host_ticks(host) < 3 && now_ms() - t0 < 1000)
		sleep_ms(1);
	cr_assert_geq(ovc_host_ticks(host), 3, "%llu ticks in a second",
		      (unsigned long long)ovc_host_ticks(host));

	vm = ovc_vm_new(host, "ticked");
	cr_assert_not_null(vm, "ovc_vm_new: %s", strerror(errno));
	cr_assert_eq(ovc_vm_add_ram(vm, 0, 4 * MiB, &hva), 0);
	for (i = 0; i < 10; i++)
		write_page(hva, (uint64_t)i, tag(0, (uint64_t)i));
	settle(vm, 10, &st);

	deadline = now_ms() + SETTLE_MS;
	ovc_thread_register();
	do {
		last_tick(host, "ticked", &last);
		if (last.mem.faults[OVC_FAULT_ZERO] == 10)
			break;
		sleep_ms(1);
	} while (now_ms() < deadline);
	ovc_thread_unregister();
	cr_assert_eq(last.mem.faults[OVC_FAULT_ZERO], 10);
	cr_assert_eq(last.mem.pages[OVC_PAGE_RESIDENT], 10);
	cr_assert_eq(last.mem.ram_bytes, 4 * MiB);
	cr_assert_gt(last.at_ns, 0);
	cr_assert_geq(last.faults_per_sec, 0.0);
	cr_assert_eq(ovc_vm_destroy(vm), 0);
	hosts_destroy();
}

/* A tick run by hand folds what is there now, with no manager involved. */
Test(host, tick_by_hand, .init = setup, .fini = teardown, .timeout = 10)
{
	struct last_tick last;
	struct ovc_mem_stats st;
	struct ovc_vm *vm;
	uint64_t ticks;
	void *hva;

	vm = ovc_vm_new(host, "hand");
	cr_assert_not_null(vm, "ovc_vm_new: %s", strerror(errno));
	ovc_thread_register();
	last_tick(host, "hand", &last);
	cr_assert_eq(last.at_ns, 0);
	cr_assert_eq(ovc_vm_add_ram(vm, 0, 4 * MiB, &hva), 0);
	write_page(hva, 3, tag(0, 3));
	write_page(hva, 4, tag(0, 4));
	settle(vm, 2, &st);

	ticks = ovc_host_ticks(host);
	ovc__host_tick(host);
	cr_assert_geq(ovc_host_ticks(host), ticks + 1);
	last_tick(host, "hand", &last);
	ovc_thread_unregister();
	cr_assert_eq(last.mem.faults[OVC_FAULT_ZERO], 2);
	cr_assert_eq(last.mem.pages[OVC_PAGE_RESIDENT], 2);
	cr_assert_eq(last.mem.pages[OVC_PAGE_ZERO], 4 * MiB / OVC_PAGE_SIZE - 2);
	cr_assert_gt(last.at_ns, 0);
	cr_assert_eq(ovc_vm_destroy(vm), 0);
	hosts_destroy();
}

struct hook_probe {
	atomic_uint calls;
	_Atomic(struct ovc_host *) seen;
};

static void count_hook(struct ovc_host *h, void *opaque)
{
	struct hook_probe *p = opaque;

	atomic_store(&p->seen, h);
	atomic_fetch_add(&p->calls, 1);
}

Test(host, tick_hooks, .init = setup_fast_tick, .fini = teardown, .timeout = 10)
{
	static struct hook_probe probes[OVC_HOST_MAX_TICK_HOOKS + 1];
	uint64_t t0;
	int i;

	cr_assert_eq(ovc__host_add_tick_hook(host, NULL, &probes[0]), -EINVAL);
	cr_assert_eq(ovc__host_add_tick_hook(NULL, count_hook, &probes[0]), -EINVAL);

	cr_assert_eq(ovc__host_add_tick_hook(host, count_hook, &probes[0]), 0);
	t0 = now_ms();
	while (atomic_load(&probes[0].calls) < 3 && now_ms() - t0 < 1000)
		sleep_ms(1);
	cr_assert_geq(atomic_load(&probes[0].calls), 3, "hook ran %u times in a second",
		      atomic_load(&probes[0].calls));
	cr_assert_eq(atomic_load(&probes[0].seen), host);

	for (i = 1; i < OVC_HOST_MAX_TICK_HOOKS; i++)
		cr_assert_eq(ovc__host_add_tick_hook(host, count_hook, &probes[i]), 0,
			     "hook %d", i + 1);
	cr_assert_eq(ovc__host_add_tick_hook(host, count_hook,
					     &probes[OVC_HOST_MAX_TICK_HOOKS]), -ENOSPC);

	/* Every registered hook runs; the refused one never does. */
	t0 = now_ms();
	while (atomic_load(&probes[OVC_HOST_MAX_TICK_HOOKS - 1].calls) < 2 &&
	       now_ms() - t0 < 1000)
		sleep_ms(1);
	for (i = 0; i < OVC_HOST_MAX_TICK_HOOKS; i++) {
		cr_assert_geq(atomic_load(&probes[i].calls), 1, "hook %d never ran", i + 1);
		cr_assert_eq(atomic_load(&probes[i].seen), host);
	}
	cr_assert_eq(atomic_load(&probes[OVC_HOST_MAX_TICK_HOOKS].calls), 0);
	hosts_destroy();
}

/* ------------------------------------------------------------------------ */
/* RAM ranges */

Test(host, ram_ranges, .init = setup, .fini = teardown, .timeout = 10)
{
	const uint64_t lo = 0, hi = 4 * GiB, mid = 1 * GiB, size = 16 * MiB;
	const uint64_t last = size - OVC_PAGE_SIZE;
	struct ovc_mem_stats st;
	uint8_t *lo_hva, *hi_hva, *mid_hva;
	struct ovc_vm *vm;
	void *hva;
	int busy;

	vm = ovc_vm_new(host, "ranges");
	cr_assert_not_null(vm, "ovc_vm_new: %s", strerror(errno));
	cr_assert_eq(ovc_vm_page_state(vm, 0, NULL), -EINVAL, "no RAM yet");
	cr_assert_eq(ovc_vm_add_ram(vm, lo, size, &hva), 0);
	lo_hva = hva;
	cr_assert_eq(ovc_vm_add_ram(vm, hi, size, &hva), 0);
	hi_hva = hva;
	/* Out of gpa order, in the gap: lookups must not assume sorted ranges. */
	cr_assert_eq(ovc_vm_add_ram(vm, mid, 4 * MiB, &hva), 0);
	mid_hva = hva;

	cr_assert_eq(ovc_vm_get_mem_stats(vm, &st), 0);
	cr_assert_eq(st.ram_bytes, 2 * size + 4 * MiB);
	cr_assert_eq(st.pages[OVC_PAGE_ZERO], (2 * size + 4 * MiB) / OVC_PAGE_SIZE);
	cr_assert_eq(total_pages(&st), (2 * size + 4 * MiB) / OVC_PAGE_SIZE);

	busy = -1;
	cr_assert_eq(ovc_vm_page_state(vm, lo, &busy), OVC_PAGE_ZERO);
	cr_assert_eq(busy, 0);
	cr_assert_eq(ovc_vm_page_state(vm, lo + last, NULL), OVC_PAGE_ZERO);
	cr_assert_eq(ovc_vm_page_state(vm, hi, NULL), OVC_PAGE_ZERO);
	cr_assert_eq(ovc_vm_page_state(vm, hi + last + OVC_PAGE_SIZE - 1, NULL), OVC_PAGE_ZERO);
	cr_assert_eq(ovc_vm_page_state(vm, mid, NULL), OVC_PAGE_ZERO);

	/* The gaps around each range and what lies beyond the last. */
	cr_assert_eq(ovc_vm_page_state(vm, lo + size, NULL), -EINVAL);
	cr_assert_eq(ovc_vm_page_state(vm, mid - 1, NULL), -EINVAL);
	cr_assert_eq(ovc_vm_page_state(vm, mid + 4 * MiB, NULL), -EINVAL);
	cr_assert_eq(ovc_vm_page_state(vm, hi - 1, NULL), -EINVAL);
	cr_assert_eq(ovc_vm_page_state(vm, hi + size, NULL), -EINVAL);
	cr_assert_eq(ovc_vm_page_state(vm, OVC_GPA_LIMIT, NULL), -EINVAL);
	cr_assert_eq(ovc_vm_page_state(vm, UINT64_MAX, NULL), -EINVAL);
	cr_assert_eq(ovc_vm_page_state(NULL, lo, NULL), -EINVAL);

	/* Page i of a range is gpa start + i: touch different pages in each. */
	write_page(lo_hva, 0, tag(0, 0));
	write_page(lo_hva, last / OVC_PAGE_SIZE, tag(0, 1));
	write_page(hi_hva, 1, tag(1, 1));
	write_page(hi_hva, last / OVC_PAGE_SIZE, tag(1, 2));
	cr_assert_eq(page_word(mid_hva, 2), 0);
	settle(vm, 5, &st);
	assert_only_zero_faults(&st, 5);

	cr_assert(page_holds(lo_hva, 0, tag(0, 0)));
	cr_assert(page_holds(lo_hva, last / OVC_PAGE_SIZE, tag(0, 1)));
	cr_assert(page_holds(hi_hva, 1, tag(1, 1)));
	cr_assert(page_holds(hi_hva, last / OVC_PAGE_SIZE, tag(1, 2)));

	busy = -1;
	cr_assert_eq(ovc_vm_page_state(vm, lo, &busy), OVC_PAGE_RESIDENT);
	cr_assert_eq(busy, 0);
	cr_assert_eq(ovc_vm_page_state(vm, lo + OVC_PAGE_SIZE, NULL), OVC_PAGE_ZERO);
	cr_assert_eq(ovc_vm_page_state(vm, lo + last, NULL), OVC_PAGE_RESIDENT);
	cr_assert_eq(ovc_vm_page_state(vm, hi, NULL), OVC_PAGE_ZERO);
	cr_assert_eq(ovc_vm_page_state(vm, hi + OVC_PAGE_SIZE + 123, NULL), OVC_PAGE_RESIDENT);
	cr_assert_eq(ovc_vm_page_state(vm, hi + last, NULL), OVC_PAGE_RESIDENT);
	cr_assert_eq(ovc_vm_page_state(vm, mid + 2 * OVC_PAGE_SIZE, NULL), OVC_PAGE_RESIDENT);
	cr_assert_eq(ovc_vm_page_state(vm, mid + 3 * OVC_PAGE_SIZE, NULL), OVC_PAGE_ZERO);

	cr_assert_eq(st.pages[OVC_PAGE_RESIDENT], 5);
	cr_assert_eq(st.pages[OVC_PAGE_ZERO], (2 * size + 4 * MiB) / OVC_PAGE_SIZE - 5);
	cr_assert_eq(total_pages(&st), (2 * size + 4 * MiB) / OVC_PAGE_SIZE);
	cr_assert_eq(ovc_vm_destroy(vm), 0);
	hosts_destroy();
}

/* One rejected ovc_vm_add_ram(): the error, one ERR line, nothing changed. */
static void assert_rejected(struct ovc_vm *vm, uint64_t gpa, uint64_t size, int err)
{
	struct ovc_mem_stats before, after;
	unsigned int total, errs;
	void *hva = (void *)&hva;

	cr_assert_eq(ovc_vm_get_mem_stats(vm, &before), 0);
	log_reset();
	cr_assert_eq(ovc_vm_add_ram(vm, gpa, size, &hva), err,
		     "add_ram 0x%llx+0x%llx: expected %d",
		     (unsigned long long)gpa, (unsigned long long)size, err);
	cr_assert_eq(hva, (void *)&hva, "hva written on failure");
	log_counts(OVC_LOG_ERR, &total, &errs);
	cr_assert_eq(errs, 1, "add_ram 0x%llx+0x%llx: %u ERR lines",
		     (unsigned long long)gpa, (unsigned long long)size, errs);
	cr_assert_eq(total, 1, "add_ram 0x%llx+0x%llx: %u lines",
		     (unsigned long long)gpa, (unsigned long long)size, total);
	cr_assert_eq(ovc_vm_get_mem_stats(vm, &after), 0);
	cr_assert_eq(after.ram_bytes, before.ram_bytes);
	cr_assert_eq(total_pages(&after), total_pages(&before));
}

Test(host, add_ram_rejects, .init = setup, .fini = teardown, .timeout = 10)
{
	const uint64_t base = 1 * GiB, size = 16 * MiB;
	struct ovc_mem_stats st;
	struct ovc_vm *vm;
	void *hva;

	vm = ovc_vm_new(host, "rejects");
	cr_assert_not_null(vm, "ovc_vm_new: %s", strerror(errno));

	/* Empty or misaligned. */
	assert_rejected(vm, 0, 0, -EINVAL);
	assert_rejected(vm, 1, size, -EINVAL);
	assert_rejected(vm, OVC_PAGE_SIZE / 2, size, -EINVAL);
	assert_rejected(vm, 0, size + 1, -EINVAL);
	assert_rejected(vm, 0, OVC_PAGE_SIZE - 1, -EINVAL);

	/* Beyond the 52-bit guest-physical space, with and without wrapping. */
	assert_rejected(vm, OVC_GPA_LIMIT - OVC_PAGE_SIZE, 2 * OVC_PAGE_SIZE, -EINVAL);
	assert_rejected(vm, OVC_GPA_LIMIT, OVC_PAGE_SIZE, -EINVAL);
	assert_rejected(vm, UINT64_MAX & ~(OVC_PAGE_SIZE - 1), 2 * OVC_PAGE_SIZE, -EINVAL);
	assert_rejected(vm, OVC_PAGE_SIZE, UINT64_MAX & ~(OVC_PAGE_SIZE - 1), -EINVAL);

	/* Overlaps: inside, across either end, around. */
	cr_assert_eq(ovc_vm_add_ram(vm, base, size, &hva), 0);
	assert_rejected(vm, base, size, -EINVAL);
	assert_rejected(vm, base + OVC_PAGE_SIZE, OVC_PAGE_SIZE, -EINVAL);
	assert_rejected(vm, base - OVC_PAGE_SIZE, 2 * OVC_PAGE_SIZE, -EINVAL);
	assert_rejected(vm, base + size - OVC_PAGE_SIZE, 2 * OVC_PAGE_SIZE, -EINVAL);
	assert_rejected(vm, base - OVC_PAGE_SIZE, size + 2 * OVC_PAGE_SIZE, -EINVAL);

	/* More than OVC_VM_RAM_MAX in total, by a lot or by one page. */
	assert_rejected(vm, 2 * TiB, OVC_VM_RAM_MAX, -ENOMEM);
	assert_rejected(vm, 8 * TiB, OVC_VM_RAM_MAX - size + OVC_PAGE_SIZE, -ENOMEM);

	/* NULL arguments: programming errors, refused before any range check. */
	cr_assert_eq(ovc_vm_add_ram(vm, 0, size, NULL), -EINVAL);
	hva = NULL;
	cr_assert_eq(ovc_vm_add_ram(NULL, 0, size, &hva), -EINVAL);
	cr_assert_null(hva);

	/* Adjacent ranges are fine; the VM still works after all of the above. */
	cr_assert_eq(ovc_vm_add_ram(vm, base + size, OVC_PAGE_SIZE, &hva), 0);
	cr_assert_eq(ovc_vm_add_ram(vm, base - OVC_PAGE_SIZE, OVC_PAGE_SIZE, &hva), 0);
	cr_assert_eq(ovc_vm_add_ram(vm, 0, 4 * MiB, &hva), 0);
	write_page(hva, 5, tag(0, 5));
	cr_assert(page_holds(hva, 5, tag(0, 5)));
	settle(vm, 1, &st);
	assert_only_zero_faults(&st, 1);
	cr_assert_eq(ovc_vm_page_state(vm, 5 * OVC_PAGE_SIZE, NULL), OVC_PAGE_RESIDENT);
	cr_assert_eq(st.ram_bytes, size + 2 * OVC_PAGE_SIZE + 4 * MiB);
	cr_assert_eq(total_pages(&st), st.ram_bytes / OVC_PAGE_SIZE);
	cr_assert_eq(ovc_vm_destroy(vm), 0);
	hosts_destroy();
}

Test(host, add_ram_limits, .init = setup, .fini = teardown, .timeout = 10)
{
	const uint64_t size = 1 * MiB;
	struct ovc_mem_stats st;
	struct ovc_vm *vm;
	void *hva;
	int i;

	vm = ovc_vm_new(host, "limits");
	cr_assert_not_null(vm, "ovc_vm_new: %s", strerror(errno));
	/* Every range in its own GiB, the last one ending at OVC_GPA_LIMIT. */
	for (i = 0; i < OVC_VM_RAM_RANGES_MAX - 1; i++)
		cr_assert_eq(ovc_vm_add_ram(vm, (uint64_t)i * GiB, size, &hva), 0,
			     "range %d", i + 1);
	/* Exactly OVC_VM_RAM_MAX in total is allowed, one page more is not. */
	assert_rejected(vm, OVC_GPA_LIMIT - OVC_VM_RAM_MAX, OVC_VM_RAM_MAX - 15 * size +
			OVC_PAGE_SIZE, -ENOMEM);
	cr_assert_eq(ovc_vm_add_ram(vm, OVC_GPA_LIMIT - (OVC_VM_RAM_MAX - 15 * size),
				    OVC_VM_RAM_MAX - 15 * size, &hva), 0);
	cr_assert_eq(ovc_vm_get_mem_stats(vm, &st), 0);
	cr_assert_eq(st.ram_bytes, OVC_VM_RAM_MAX);
	cr_assert_eq(st.pages[OVC_PAGE_ZERO], OVC_VM_RAM_MAX / OVC_PAGE_SIZE);

	/* The 17th range is refused whatever its size. */
	assert_rejected(vm, 100 * GiB, OVC_PAGE_SIZE, -EINVAL);

	/* The last page below OVC_GPA_LIMIT is guest RAM. */
	write_page(hva, (OVC_VM_RAM_MAX - 15 * size) / OVC_PAGE_SIZE - 1, tag(0, 1));
	settle(vm, 1, &st);
	cr_assert_eq(ovc_vm_page_state(vm, OVC_GPA_LIMIT - 1, NULL), OVC_PAGE_RESIDENT);
	cr_assert_eq(ovc_vm_destroy(vm), 0);
	hosts_destroy();
}

static uint64_t rss_bytes(void)
{
	unsigned long long size, resident;
	FILE *f;
	int n;

	f = fopen("/proc/self/statm", "r");
	cr_assert_not_null(f, "/proc/self/statm: %s", strerror(errno));
	n = fscanf(f, "%llu %llu", &size, &resident);
	fclose(f);
	cr_assert_eq(n, 2);
	return resident * (uint64_t)sysconf(_SC_PAGESIZE);
}

static uint64_t rss_growth(uint64_t before, uint64_t after)
{
	return after > before ? after - before : 0;
}

Test(host, ram_1tib, .init = setup, .fini = teardown, .timeout = 20)
{
	const uint64_t size = 1 * TiB, last = size / OVC_PAGE_SIZE - 1;
	struct ovc_mem_stats st;
	uint64_t rss0, rss1;
	struct ovc_vm *vm;
	void *hva;

	vm = ovc_vm_new(host, "big");
	cr_assert_not_null(vm, "ovc_vm_new: %s", strerror(errno));
	rss0 = rss_bytes();
	cr_assert_eq(ovc_vm_add_ram(vm, 0, size, &hva), 0);
	rss1 = rss_bytes();
	cr_assert_lt(rss_growth(rss0, rss1), 64 * MiB, "1 TiB of RAM cost %llu MiB resident",
		     (unsigned long long)(rss_growth(rss0, rss1) / MiB));
	cr_assert_eq(ovc_vm_page_state(vm, last * OVC_PAGE_SIZE, NULL), OVC_PAGE_ZERO);

	write_page(hva, last, tag(0, last));
	cr_assert(page_holds(hva, last, tag(0, last)));
	settle(vm, 1, &st);
	assert_only_zero_faults(&st, 1);
	cr_assert_eq(st.ram_bytes, size);
	cr_assert_eq(st.pages[OVC_PAGE_RESIDENT], 1);
	cr_assert_eq(st.pages[OVC_PAGE_ZERO], size / OVC_PAGE_SIZE - 1);
	cr_assert_eq(ovc_vm_page_state(vm, last * OVC_PAGE_SIZE, NULL), OVC_PAGE_RESIDENT);
	cr_assert_eq(ovc_vm_page_state(vm, size, NULL), -EINVAL);
	rss1 = rss_bytes();
	cr_assert_lt(rss_growth(rss0, rss1), 64 * MiB, "touching 1 page of 1 TiB cost %llu MiB",
		     (unsigned long long)(rss_growth(rss0, rss1) / MiB));
	cr_assert_eq(ovc_vm_destroy(vm), 0);
	hosts_destroy();
}

/* vCPU registration: indexes, duplicates, and the VM kept alive while vCPUs live. */
Test(host, vcpu_register, .init = setup, .fini = teardown, .timeout = 10)
{
	struct ovc_vcpu *a, *b, *c;
	struct ovc_vcpu_stats st;
	struct ovc_vm *vm;

	vm = ovc_vm_new(host, "cpus");
	cr_assert_not_null(vm);
	errno = 0;
	cr_assert_null(ovc_vm_add_vcpu(vm, 0));
	cr_assert_eq(errno, EINVAL);
	cr_assert_null(ovc_vm_add_vcpu(NULL, 100));
	a = ovc_vm_add_vcpu(vm, 100);
	b = ovc_vm_add_vcpu(vm, 101);
	cr_assert(a && b);
	errno = 0;
	cr_assert_null(ovc_vm_add_vcpu(vm, 101));
	cr_assert_eq(errno, EEXIST);
	cr_assert_eq(ovc_vm_vcpu_count(vm), 2);

	cr_assert_eq(ovc_vcpu_get_stats(a, &st), 0);
	cr_assert_eq(st.index, 0);
	cr_assert_eq(st.tid, 100);
	cr_assert_eq(ovc_vcpu_get_stats(b, &st), 0);
	cr_assert_eq(st.index, 1);

	/* The lowest free index is reused. */
	cr_assert_eq(ovc_vcpu_remove(a), 0);
	c = ovc_vm_add_vcpu(vm, 102);
	cr_assert_not_null(c);
	cr_assert_eq(ovc_vcpu_get_stats(c, &st), 0);
	cr_assert_eq(st.index, 0);

	cr_assert_eq(ovc_vm_destroy(vm), -EBUSY);
	cr_assert_eq(ovc_host_vm_count(host), 1);
	cr_assert_eq(ovc_vcpu_remove(b), 0);
	cr_assert_eq(ovc_vcpu_remove(c), 0);
	cr_assert_eq(ovc_vcpu_remove(NULL), -EINVAL);
	cr_assert_eq(ovc_vm_vcpu_count(vm), 0);
	cr_assert_eq(ovc_vm_destroy(vm), 0);
	hosts_destroy();
}

/* Run and halt time are charged by the hooks, including an interval still open. */
Test(host, vcpu_accounting, .init = setup, .fini = teardown, .timeout = 10)
{
	struct ovc_vcpu_stats st;
	struct ovc_vcpu *v;
	struct ovc_vm *vm;

	vm = ovc_vm_new(host, "acct");
	cr_assert_not_null(vm);
	v = ovc_vm_add_vcpu(vm, gettid());
	cr_assert_not_null(v);

	cr_assert_eq(ovc_vcpu_run_begin(v), 0);
	sleep_ms(30);
	cr_assert_eq(ovc_vcpu_get_stats(v, &st), 0);
	cr_assert_eq(st.running, 1);
	cr_assert_geq(st.run_ns, 30000000ULL);
	ovc_vcpu_run_end(v);
	ovc_vcpu_halt_begin(v);
	sleep_ms(20);
	ovc_vcpu_halt_end(v);
	cr_assert_eq(ovc_vcpu_run_begin(v), 0);
	ovc_vcpu_run_end(v);

	cr_assert_eq(ovc_vcpu_get_stats(v, &st), 0);
	cr_assert_eq(st.running, 0);
	cr_assert_eq(st.runs, 2);
	cr_assert_eq(st.halts, 1);
	cr_assert_geq(st.run_ns, 30000000ULL);
	cr_assert_geq(st.halt_ns, 20000000ULL);
	cr_assert_eq(ovc_vcpu_run_begin(NULL), -EINVAL);
	cr_assert_eq(ovc_vcpu_get_stats(NULL, &st), -EINVAL);

	cr_assert_eq(ovc_vcpu_remove(v), 0);
	cr_assert_eq(ovc_vm_destroy(vm), 0);
	hosts_destroy();
}

/* A hook out of order is a VMM bug that would corrupt the accounting: it aborts. */
Test(host, vcpu_hook_order, .init = setup, .fini = teardown, .timeout = 10,
     .signal = SIGABRT)
{
	struct ovc_vcpu *v;
	struct ovc_vm *vm;

	vm = ovc_vm_new(host, "order");
	cr_assert_not_null(vm);
	v = ovc_vm_add_vcpu(vm, gettid());
	cr_assert_not_null(v);
	ovc_vcpu_halt_begin(v);
	ovc_vcpu_run_end(v);
}

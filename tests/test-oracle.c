// SPDX-License-Identifier: MIT
/* tests/test-oracle.c: the integrity oracle: no page is lost or corrupted under chaos. */
#include <criterion/criterion.h>

#include "tests/kit/oracle.h"

static struct ovc_host *host;

static void make_host(unsigned int fault_threads)
{
	struct ovc_host_config cfg;

	ovc_host_config_init(&cfg);
	cfg.fault_threads = fault_threads;
	host = ovc_host_new(&cfg);
	cr_assert_not_null(host);
}

static void setup(void)
{
	make_host(2);
}

static void teardown(void)
{
	cr_assert_eq(ovc_host_destroy(host), 0);
}

static void run(struct oracle_config *cfg, struct oracle_result *res)
{
	cr_assert_eq(oracle_run(host, cfg, res), 0);
	cr_log_info("accesses %llu transitions %llu armed %llu minor %llu corrupt %llu",
		    (unsigned long long)res->accesses, (unsigned long long)res->transitions,
		    (unsigned long long)res->armed,
		    (unsigned long long)res->mem.faults[OVC_FAULT_MINOR],
		    (unsigned long long)res->corrupt);
	cr_assert_eq(res->corrupt, 0);
	cr_assert_eq(res->store_leaks, 0);
	cr_assert_geq(res->accesses, cfg->min_accesses);
	cr_assert_eq(res->mem.faults[OVC_FAULT_ERROR], 0);
	cr_assert_eq(res->mem.busy_pages, 0, "busy %llu", (unsigned long long)res->mem.busy_pages);
}

TestSuite(oracle, .init = setup, .fini = teardown, .timeout = 120);

Test(oracle, chaos_at_full_speed)
{
	struct oracle_config cfg;
	struct oracle_result res;

	oracle_config_init(&cfg);
	cfg.npages = 1024;		/* small: chaos and accessors collide often */
	cfg.min_accesses = 300000;
	cfg.seconds = 2;
	run(&cfg, &res);
	cr_assert_gt(res.transitions, 10000);
	cr_assert_gt(res.aborts, 0);
	cr_assert_gt(res.mem.faults[OVC_FAULT_STORE], 1000);
	cr_assert_gt(res.mem.faults[OVC_FAULT_ZERO], 0);
	cr_assert_gt(res.mem.faults[OVC_FAULT_WAIT], 0, "writers met transitions");
	if (res.armed)	/* the kernel has minor faults: armed pages were met */
		cr_assert_gt(res.mem.faults[OVC_FAULT_MINOR], 1000);
}

Test(oracle, many_accessors_one_fault_thread)
{
	struct oracle_config cfg;
	struct oracle_result res;

	cr_assert_eq(ovc_host_destroy(host), 0);
	make_host(1);
	oracle_config_init(&cfg);
	cfg.accessors = 6;
	cfg.npages = 2048;
	cfg.write_pct = 60;
	cfg.min_accesses = 200000;
	run(&cfg, &res);
	cr_assert_gt(res.transitions, 0);
}

Test(oracle, hot_few_pages)
{
	struct oracle_config cfg;
	struct oracle_result res;

	oracle_config_init(&cfg);
	cfg.npages = 16;		/* every access races a transition */
	cfg.accessors = 3;
	cfg.min_accesses = 100000;
	cfg.zero_pct = 20;
	run(&cfg, &res);
	cr_assert_gt(res.busy, 0, "chaos met busy pages");
}

Test(oracle, without_chaos_only_zero_faults)
{
	struct oracle_config cfg;
	struct oracle_result res;

	oracle_config_init(&cfg);
	cfg.chaos = false;
	cfg.npages = 512;
	cfg.min_accesses = 100000;
	run(&cfg, &res);
	cr_assert_eq(res.transitions, 0);
	cr_assert_eq(res.mem.faults[OVC_FAULT_STORE], 0);
	cr_assert_leq(res.mem.faults[OVC_FAULT_ZERO], 512);
}

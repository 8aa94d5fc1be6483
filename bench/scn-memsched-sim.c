// SPDX-License-Identifier: MIT
/* bench/scn-memsched-sim.c: the memory scheduler driving a model of 1,000 VMs, 2x overcommitted. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <ovc/memsched.h>

#include "harness.h"
#include "scenarios.h"

#define MiB (1ULL << 20)
#define GiB (1ULL << 30)
#define PAGE ((uint64_t)OVC_PAGE_SIZE)

/*
 * The model, per VM and per simulated second (one tick):
 * - the guest wants a footprint W(t) of which A(t) is active, from its trace;
 *   it touches new pages at up to FAULT_RATE, and pages its active set back
 *   in at up to PAGEIN_RATE when the pager took some of it;
 * - memory it stops using stays resident (guests do not give memory back);
 * - its balloon driver follows the device's target by at most BALLOON_STEP a
 *   tick, giving first free resident memory, then free untouched memory,
 *   then cache down to the active set; a driver that cannot go further stops
 *   (and the device marks it stalled after STALL_TICKS); a few drivers never
 *   answer at all;
 * - the pager takes the pages asked, idle ones first.
 */
#define FAULT_RATE (256 * MiB)
#define PAGEIN_RATE (64 * MiB)
#define BALLOON_STEP (64 * MiB)
#define BALLOON_CAP 0.65
#define STALL_TICKS 10
#define WSS_PERIOD 30
#define WSS_SAMPLES 100

enum trace_kind { T_IDLE, T_STEADY, T_PHASED, T_SHIFT, T_NR };

struct sim_vm {
	uint64_t ram;
	enum trace_kind kind;
	double a0, a1;		/* active shares of RAM (phases, or start/end) */
	double cache;		/* cache share on top of the active set */
	unsigned int period, offset;
	bool dead_driver;	/* a balloon whose guest never answers */
	/* State. */
	uint64_t res, paged;
	uint64_t bal_target, bal_actual, bal_deflated;
	unsigned int bal_still;	/* ticks without progress toward the target */
	bool stalled;
	double wss_est;
	uint64_t faults, pageins;	/* last tick, pages */
	int last_bal_dir;
	unsigned int bal_flips;
};

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t rnd(void)
{
	uint64_t x = rng_state;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	rng_state = x;
	return x;
}

static double urand(void)
{
	return (double)(rnd() >> 11) / (double)(1ULL << 53);
}

static uint64_t min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

static uint64_t pages_down(double bytes)
{
	return bytes <= 0 ? 0 : ((uint64_t)bytes) & ~(PAGE - 1);
}

/* Active share and footprint share of RAM at tick @t. */
static void trace_at(const struct sim_vm *v, unsigned int t, double *active, double *foot)
{
	double a;

	switch (v->kind) {
	case T_IDLE:
		a = v->a0;
		break;
	case T_STEADY:
		a = v->a0;
		break;
	case T_PHASED:
		a = ((t + v->offset) / v->period) % 2 ? v->a1 : v->a0;
		break;
	default: {
		/* Grows from a0 to a1 over a period, then drops back. */
		double ph = (double)((t + v->offset) % v->period) / (double)v->period;

		a = v->a0 + (v->a1 - v->a0) * ph;
		break;
	}
	}
	*active = a;
	*foot = a + v->cache > 1.0 ? 1.0 : a + v->cache;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* The plan's cost is the CPU time of the thread: other work on the machine does not count. */
static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* Binomial(n, p) by n draws: the sampler's estimate of an active share. */
static double sample_share(double p)
{
	unsigned int i, hit = 0;

	for (i = 0; i < WSS_SAMPLES; i++)
		hit += urand() < p;
	return (double)hit / WSS_SAMPLES;
}

const char ovcb_scn_memsched_sim_help[] =
"the memory scheduler driving a model of 1,000 VMs, 2x overcommitted\n"
"options: [--vms N] [--ticks N] [--overcommit X] [--seed N]\n"
"         [--page-rate-total MIB] [--quiet]   (--seconds: ticks, default 600)\n"
"Each tick (one simulated second) the guests of N modelled VMs (default\n"
"1000) follow their traces (idle, steady, phased, shifting working sets),\n"
"their balloons follow the device's target at a bounded rate (a few never\n"
"answer) and the pager takes what it is asked, idle pages first; the\n"
"memory scheduler (ovc_memsched_plan()) plans from the resulting snapshot.\n"
"Metrics: ovc.mem_tick_ms (median plan cost), ovc.mem_tick_p99_ms,\n"
"ovc.mem_tick_max_ms, ovc.reservation_violations (must be 0: the run fails\n"
"otherwise), ovc.active_resident_pct, ovc.over_budget_ticks,\n"
"ovc.over_budget_max_pct, ovc.balloon_reversals_per_vm_hour,\n"
"ovc.state_high_ticks, _soft_, _hard_, _low_. No peer: \"ok\" is false.\n";

int ovcb_scn_memsched_sim(struct ovcb *b, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "vms", required_argument, NULL, 'n' },
		{ "ticks", required_argument, NULL, 't' },
		{ "overcommit", required_argument, NULL, 'o' },
		{ "seed", required_argument, NULL, 's' },
		{ "page-rate-total", required_argument, NULL, 'p' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	unsigned int nvms = 1000, ticks = ovcb_seconds(b, 600), warmup, i, t;
	unsigned long long violations = 0, over_budget_ticks = 0, state_ticks[OVC_MEM_NR_STATES] = { 0 };
	unsigned long long bal_flips = 0, growing_ticks = 0, viol[3] = { 0 };
	double overcommit = 2.0, act_sum = 0, act_res_sum = 0, max_over = 0;
	unsigned long long page_total_mib = 0;
	bool quiet = false;
	struct ovc_memsched_config cfg;
	struct ovc_memsched_plan plans[2];
	struct ovc_stats_snapshot snap;
	struct ovc_vm_snap *vs;
	struct sim_vm *vms;
	uint64_t *cost, ram_sum = 0, res_sum_rsv = 0;
	int ch, cur = 0;
	int ret = -ENOMEM;

	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 'n':
			nvms = (unsigned int)strtoul(optarg, NULL, 0);
			break;
		case 't':
			ticks = (unsigned int)strtoul(optarg, NULL, 0);
			break;
		case 'o':
			overcommit = strtod(optarg, NULL);
			break;
		case 's':
			rng_state = strtoull(optarg, NULL, 0) * 0x9e3779b97f4a7c15ULL + 0x2545f4914f6cdd1dULL;
			break;
		case 'p':
			page_total_mib = strtoull(optarg, NULL, 0);
			break;
		case 'q':
			quiet = true;
			break;
		case 'h':
			printf("%s", ovcb_scn_memsched_sim_help);
			return 0;
		default:
			return 2;
		}
	}
	if (nvms < 1 || nvms > 100000 || ticks < 2 || ticks > 1000000 ||
	    !(overcommit >= 1.0 && overcommit <= 16.0)) {
		fprintf(stderr, "memsched-sim: --vms 1-100000, --ticks 2-1000000, --overcommit 1-16\n");
		return 2;
	}
	warmup = ticks / 10;
	ovcb_param_int(b, "vms", nvms);
	ovcb_param_int(b, "ticks", ticks);
	ovcb_param_real(b, "overcommit", overcommit);

	vms = calloc(nvms, sizeof(*vms));
	vs = calloc(nvms, sizeof(*vs));
	cost = calloc(ticks, sizeof(*cost));
	ovc_memsched_plan_init(&plans[0]);
	ovc_memsched_plan_init(&plans[1]);
	if (!vms || !vs || !cost)
		goto out;
	if (ovc_memsched_plan_reserve(&plans[0], nvms) || ovc_memsched_plan_reserve(&plans[1], nvms))
		goto out;

	/* The VMs: sizes, traces, policies, mechanisms. */
	for (i = 0; i < nvms; i++) {
		static const uint64_t sizes[] = { 1 * GiB, 2 * GiB, 2 * GiB, 4 * GiB, 4 * GiB, 8 * GiB };
		struct sim_vm *v = &vms[i];
		double r = urand();

		v->ram = sizes[rnd() % 6];
		ram_sum += v->ram;
		v->kind = r < 0.25 ? T_IDLE : r < 0.65 ? T_STEADY : r < 0.85 ? T_PHASED : T_SHIFT;
		v->period = 60 + (unsigned int)(rnd() % 180);
		v->offset = (unsigned int)(rnd() % v->period);
		switch (v->kind) {
		case T_IDLE:
			v->a0 = 0.02 + 0.03 * urand();
			v->cache = 0.4 + 0.4 * urand();	/* booted, touched, went idle */
			break;
		case T_STEADY:
			v->a0 = 0.15 + 0.35 * urand();
			v->cache = 0.1 + 0.2 * urand();
			break;
		case T_PHASED:
			v->a0 = 0.05 + 0.15 * urand();
			v->a1 = 0.4 + 0.3 * urand();
			v->cache = 0.1 + 0.1 * urand();
			break;
		default:
			v->a0 = 0.1 + 0.1 * urand();
			v->a1 = 0.5 + 0.3 * urand();
			v->cache = 0.05 + 0.1 * urand();
			break;
		}
		v->dead_driver = urand() < 0.03;
		v->last_bal_dir = 0;

		vs[i].id = i + 1;
		snprintf(vs[i].name, sizeof(vs[i].name), "vm%u", i);
		vs[i].mem.ram_bytes = v->ram;
		vs[i].policy.mem_shares = 1000 * (v->ram / GiB);	/* ESX: shares by size */
		r = urand();
		if (r < 0.1)
			vs[i].policy.mem_shares *= 2;
		else if (r < 0.2)
			vs[i].policy.mem_shares /= 2;
		vs[i].policy.cpu_shares = 1000;
		vs[i].has_balloon = urand() < 0.90;
		vs[i].has_pager = urand() < 0.95;
		if (vs[i].has_balloon)
			vs[i].balloon.features = 1ULL << 32;
	}
	ovc_memsched_config_init(&cfg);
	cfg.budget_bytes = (uint64_t)((double)ram_sum / overcommit) & ~(PAGE - 1);
	cfg.follow_host = false;
	if (page_total_mib)
		cfg.page_rate_total_bytes = page_total_mib * MiB;
	if (ovc_memsched_config_check(&cfg, NULL)) {
		fprintf(stderr, "memsched-sim: --page-rate-total must be at least %llu MiB\n",
			(unsigned long long)(cfg.page_rate_bytes / MiB));
		return 2;
	}
	/*
	 * Reservations on 10% of the VMs (a quarter to half their RAM, within
	 * half the budget), limits on 10%.
	 */
	for (i = 0; i < nvms; i++) {
		uint64_t ram = vms[i].ram;

		if (urand() < 0.10) {
			uint64_t rsv = pages_down((double)ram * (0.25 + 0.25 * urand()));

			if (res_sum_rsv + rsv <= cfg.budget_bytes / 2) {
				vs[i].policy.mem_reservation_bytes = rsv;
				res_sum_rsv += rsv;
			}
		}
		if (urand() < 0.10)
			vs[i].policy.mem_limit_bytes = pages_down((double)ram * (0.5 + 0.25 * urand()));
		if (vs[i].policy.mem_limit_bytes &&
		    vs[i].policy.mem_limit_bytes < vs[i].policy.mem_reservation_bytes)
			vs[i].policy.mem_limit_bytes = vs[i].policy.mem_reservation_bytes;
	}
	memset(&snap, 0, sizeof(snap));
	snap.vms = vs;
	snap.nvms = nvms;

	for (t = 0; t < ticks; t++) {
		if (t % 16 == 0 && ovcb_stopping(b)) {
			ret = -EINTR;
			goto out;
		}
		const struct ovc_memsched_state *prev = t ? &plans[cur].next : NULL;
		struct ovc_memsched_plan *p = &plans[cur ^ 1];
		uint64_t t0, held = 0;
		double act_t = 0, act_res_t = 0;

		/* The snapshot the manager would take. */
		for (i = 0; i < nvms; i++) {
			struct sim_vm *v = &vms[i];
			struct ovc_vm_snap *s = &vs[i];
			double a, foot;

			trace_at(v, t, &a, &foot);
			s->mem.pages[OVC_PAGE_RESIDENT] = v->res / PAGE;
			s->faults_per_sec = (double)v->faults;
			s->pageins_per_sec = (double)v->pageins;
			if (s->has_balloon) {
				s->balloon.target_pages = v->bal_target / PAGE;
				s->balloon.num_pages = v->bal_target / PAGE;
				s->balloon.actual_pages = v->bal_actual / PAGE;
				s->balloon.stalled = v->stalled;
				s->balloon.deflated = v->bal_deflated;
			}
			if (t && t % WSS_PERIOD == 0) {
				double est = sample_share(a);

				/* Fast-moving average, and the larger of it and the last period. */
				v->wss_est = 0.5 * v->wss_est + 0.5 * est;
				if (est > v->wss_est)
					v->wss_est = est;
				s->wss.valid = true;
				s->wss.sampled = WSS_SAMPLES;
				s->wss.active_frac = v->wss_est;
				s->wss.active_bytes = (uint64_t)(v->wss_est * (double)v->ram);
				s->wss.periods++;
			}
		}
		snap.seq = t + 1;

		t0 = now_ns();
		if (ovc_memsched_plan(&cfg, &snap, prev, p)) {
			fprintf(stderr, "memsched-sim: plan failed\n");
			ret = -EIO;
			goto out;
		}
		cost[t] = now_ns() - t0;
		cur ^= 1;
		state_ticks[p->state]++;

		/* The mechanisms and the guests, over one second. */
		for (i = 0; i < nvms; i++) {
			struct sim_vm *v = &vms[i];
			const struct ovc_memsched_vm_plan *pv = &p->vms[i];
			const struct ovc_vm_snap *s = &vs[i];
			uint64_t rsv = min_u64(s->policy.mem_reservation_bytes, v->ram);
			uint64_t res0 = v->res, want, act_b;
			double a, foot;

			trace_at(v, t, &a, &foot);
			act_b = pages_down(a * (double)v->ram);
			want = pages_down(foot * (double)v->ram);
			if (pv->flags & OVC_MEMSCHED_GROWING)
				growing_ticks++;
			if (pv->target_bytes < min_u64(rsv, v->ram))
				viol[0]++;

			/* Balloon: the device caps the target; the guest follows or not. */
			if (s->has_balloon && (pv->flags & OVC_MEMSCHED_BALLOON)) {
				uint64_t tg = min_u64(pv->balloon_target_bytes,
						      pages_down(BALLOON_CAP * (double)v->ram));
				int dir = tg > v->bal_target ? 1 : tg < v->bal_target ? -1 : 0;

				if (dir && v->last_bal_dir && dir != v->last_bal_dir)
					v->bal_flips++;
				if (dir)
					v->last_bal_dir = dir;
				if (tg != v->bal_target)
					v->bal_still = 0;
				v->bal_target = tg;
			}
			if (s->has_balloon && !v->dead_driver && v->bal_actual != v->bal_target) {
				uint64_t before = v->bal_actual;

				if (v->bal_actual < v->bal_target) {
					uint64_t step = min_u64(v->bal_target - v->bal_actual, BALLOON_STEP);
					uint64_t used = v->res + v->paged;
					uint64_t free_res = used > want ? used - want : 0;
					uint64_t free_untouched = v->ram - v->bal_actual > used ?
						v->ram - v->bal_actual - used : 0;
					uint64_t cache = want > act_b ? want - act_b : 0;
					uint64_t x;

					/* Free resident memory first: the host gets it back. */
					x = min_u64(step, min_u64(free_res, v->res));
					v->res -= x;
					v->bal_actual += x;
					step -= x;
					/* Then memory the guest never touched: nothing to give. */
					x = min_u64(step, free_untouched);
					v->bal_actual += x;
					step -= x;
					/* Then its cache, down to the active set; no further. */
					x = min_u64(step, min_u64(cache, v->res));
					v->res -= x;
					v->bal_actual += x;
				} else {
					uint64_t x = min_u64(v->bal_actual - v->bal_target, BALLOON_STEP);

					v->bal_actual -= x;
					v->bal_deflated += x / PAGE;
				}
				if (v->bal_actual == before)
					v->bal_still++;
				else
					v->bal_still = 0;
			} else if (s->has_balloon && v->bal_actual != v->bal_target) {
				v->bal_still++;
			} else {
				v->bal_still = 0;
			}
			v->stalled = v->bal_still >= STALL_TICKS;

			/* Pager: idle pages first. */
			if (s->has_pager && pv->reclaim_pages) {
				uint64_t x = min_u64(pv->reclaim_pages * PAGE, v->res);

				v->res -= x;
				v->paged += x;
			}
			if (v->res < res0 && v->res < rsv)
				viol[1]++;	/* reclaimed under the reservation */
			if (v->bal_actual > v->ram - rsv)
				viol[2]++;	/* ballooned under the reservation */

			/* The guest: within what the balloon leaves it. */
			{
				uint64_t room = v->ram - v->bal_actual;
				uint64_t foot_b = min_u64(want, room);
				uint64_t act_in = min_u64(act_b, room);
				uint64_t used = v->res + v->paged, x;

				v->faults = v->pageins = 0;
				/* Its active pages that were paged out come back first. */
				if (v->res < act_in && v->paged) {
					x = min_u64(min_u64(act_in - v->res, v->paged), PAGEIN_RATE);
					v->res += x;
					v->paged -= x;
					v->pageins = x / PAGE;
				}
				used = v->res + v->paged;
				if (used < foot_b) {
					x = min_u64(foot_b - used, FAULT_RATE);
					v->res += x;
					v->faults = x / PAGE;
				}
				/* Paged memory it freed is dropped from the stores. */
				used = v->res + v->paged;
				if (used > room && v->paged) {
					x = min_u64(used - room, v->paged);
					v->paged -= x;
				}
				if (v->res > room)
					v->res = room;	/* cannot happen with a cooperative guest */
			}
			held += v->res;
			if (t >= warmup) {
				act_t += (double)act_b;
				act_res_t += (double)min_u64(act_b, v->res);
			}
		}
		if (held > cfg.budget_bytes) {
			double over = (double)(held - cfg.budget_bytes) / (double)cfg.budget_bytes;

			if (t >= warmup)
				over_budget_ticks++;
			if (over > max_over && t >= warmup)
				max_over = over;
		}
		act_sum += act_t;
		act_res_sum += act_res_t;
		if (!quiet && (t % (ticks / 10 ? ticks / 10 : 1) == 0 || t == ticks - 1))
			printf("t=%4u %-4s used %6.1f GiB of %6.1f, targets %6.1f, plan %6.3f ms, "
			       "balloon %6.1f GiB, paged %5.1f GiB asked\n",
			       t, ovc_mem_state_name(p->state), (double)held / GiB,
			       (double)cfg.budget_bytes / GiB, (double)p->target_sum_bytes / GiB,
			       (double)cost[t] / 1e6, (double)p->balloon_bytes / GiB,
			       (double)p->page_bytes / GiB);
	}
	for (i = 0; i < nvms; i++)
		bal_flips += vms[i].bal_flips;
	violations = viol[0] + viol[1] + viol[2];

	qsort(cost, ticks, sizeof(*cost), cmp_u64);
	{
		double med = (double)cost[ticks / 2] / 1e6;
		double p99 = (double)cost[(size_t)((double)ticks * 0.99)] / 1e6;
		double mx = (double)cost[ticks - 1] / 1e6;
		double act_pct = act_sum > 0 ? 100.0 * act_res_sum / act_sum : 100.0;
		double flips_per_vm_hour = (double)bal_flips / nvms / ((double)ticks / 3600.0);

		printf("memsched-sim: %u VMs, %.1f GiB RAM on a %.1f GiB budget (%.1fx), %u ticks\n",
		       nvms, (double)ram_sum / GiB, (double)cfg.budget_bytes / GiB, overcommit, ticks);
		printf("  plan cost: median %.3f ms, p99 %.3f ms, max %.3f ms\n", med, p99, mx);
		printf("  reservation violations: %llu (targets %llu, reclaimed under %llu, "
		       "ballooned under %llu)\n",
		       violations, viol[0], viol[1], viol[2]);
		printf("  active memory resident: %.2f%% (after %u warm-up ticks)\n", act_pct, warmup);
		printf("  over budget: %llu ticks, at most %.2f%%\n", over_budget_ticks, 100 * max_over);
		printf("  states: high %llu, soft %llu, hard %llu, low %llu ticks\n", state_ticks[0],
		       state_ticks[1], state_ticks[2], state_ticks[3]);
		printf("  balloon reversals: %.2f per VM-hour; growing VM-ticks: %llu\n",
		       flips_per_vm_hour, growing_ticks);
		ovcb_metric(b, "ovc.mem_tick_ms", med);
		ovcb_metric(b, "ovc.mem_tick_p99_ms", p99);
		ovcb_metric(b, "ovc.mem_tick_max_ms", mx);
		ovcb_metric(b, "ovc.reservation_violations", (double)violations);
		ovcb_metric(b, "ovc.active_resident_pct", act_pct);
		ovcb_metric(b, "ovc.over_budget_ticks", (double)over_budget_ticks);
		ovcb_metric(b, "ovc.over_budget_max_pct", 100 * max_over);
		ovcb_metric(b, "ovc.balloon_reversals_per_vm_hour", flips_per_vm_hour);
		ovcb_metric(b, "ovc.state_high_ticks", (double)state_ticks[0]);
		ovcb_metric(b, "ovc.state_soft_ticks", (double)state_ticks[1]);
		ovcb_metric(b, "ovc.state_hard_ticks", (double)state_ticks[2]);
		ovcb_metric(b, "ovc.state_low_ticks", (double)state_ticks[3]);
	}
	/* No peer: nothing else plans memory across KVM VMs here. */
	ovcb_set_ok(b, false);
	ret = 0;
	if (violations) {
		fprintf(stderr, "memsched-sim: %llu reservation violations\n", violations);
		ret = -ERANGE;
	}
out:
	ovc_memsched_plan_fini(&plans[0]);
	ovc_memsched_plan_fini(&plans[1]);
	free(cost);
	free(vs);
	free(vms);
	return ret;
}

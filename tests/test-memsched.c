// SPDX-License-Identifier: MIT
/* tests/test-memsched.c: memory scheduler: entitlements, states, reclaim, hysteresis, live host. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "host/host-internal.h"
#include <ovc/memsched.h>

#define MiB (1ULL << 20)
#define GiB (1ULL << 30)
#define PAGE OVC_PAGE_SIZE
#define MAXVMS 64

/* ------------------------------------------------------------------------ */
/* Snapshots made by hand, and a chain of plans */

static struct ovc_vm_snap vms[MAXVMS];
static struct ovc_stats_snapshot snap;
static struct ovc_memsched_config cfg;
static struct ovc_memsched_plan plans[2];
static unsigned int cur;
static bool have_prev;

/* Idempotent: the suite's .init and a live test's own .init both run it. */
static void pure_setup(void)
{
	ovc_memsched_plan_fini(&plans[0]);
	ovc_memsched_plan_fini(&plans[1]);
	memset(vms, 0, sizeof(vms));
	memset(&snap, 0, sizeof(snap));
	snap.vms = vms;
	ovc_memsched_config_init(&cfg);
	ovc_memsched_plan_init(&plans[0]);
	ovc_memsched_plan_init(&plans[1]);
	cr_assert_eq(ovc_memsched_plan_reserve(&plans[0], MAXVMS), 0);
	cr_assert_eq(ovc_memsched_plan_reserve(&plans[1], MAXVMS), 0);
	cur = 0;
	have_prev = false;
}

static void pure_teardown(void)
{
	ovc_memsched_plan_fini(&plans[0]);
	ovc_memsched_plan_fini(&plans[1]);
}

TestSuite(memsched, .init = pure_setup, .fini = pure_teardown, .timeout = 30);

/*
 * VM @i: @ram bytes, @res resident, @active bytes active per the working-set
 * sampler (UINT64_MAX: no estimate yet), default policy.
 */
static struct ovc_vm_snap *add_vm(uint64_t ram, uint64_t res, uint64_t active)
{
	struct ovc_vm_snap *v = &vms[snap.nvms];

	memset(v, 0, sizeof(*v));
	snprintf(v->name, sizeof(v->name), "vm%u", snap.nvms);
	v->id = snap.nvms + 1;
	v->mem.ram_bytes = ram;
	v->mem.pages[OVC_PAGE_RESIDENT] = res / PAGE;
	if (active != UINT64_MAX) {
		v->wss.valid = true;
		v->wss.active_bytes = active;
		v->wss.active_frac = (double)active / (double)ram;
	}
	ovc_vm_policy_init(&v->policy);
	snap.nvms++;
	return v;
}

static void give_balloon(struct ovc_vm_snap *v, uint64_t target, uint64_t actual)
{
	v->has_balloon = true;
	v->balloon.features = 1ULL << 32;
	v->balloon.target_pages = target / PAGE;
	v->balloon.num_pages = target / PAGE;
	v->balloon.actual_pages = actual / PAGE;
}

static void set_res(struct ovc_vm_snap *v, uint64_t res)
{
	v->mem.pages[OVC_PAGE_RESIDENT] = res / PAGE;
}

static uint64_t res_of(const struct ovc_vm_snap *v)
{
	return v->mem.pages[OVC_PAGE_RESIDENT] * PAGE;
}

/* One tick: the plan made from the current snapshot, chained to the last. */
static const struct ovc_memsched_plan *tick(void)
{
	const struct ovc_memsched_state *prev = have_prev ? &plans[cur].next : NULL;
	struct ovc_memsched_plan *out = &plans[cur ^ 1];

	snap.seq++;
	cr_assert_eq(ovc_memsched_plan(&cfg, &snap, prev, out), 0);
	cur ^= 1;
	have_prev = true;
	return out;
}

/* The invariants every plan keeps, whatever it was given. */
static void check_invariants(const struct ovc_memsched_plan *p)
{
	uint64_t sum = 0;
	unsigned int i;

	cr_assert_eq(p->nvms, snap.nvms);
	for (i = 0; i < p->nvms; i++) {
		const struct ovc_memsched_vm_plan *v = &p->vms[i];

		cr_assert_eq(v->id, vms[i].id);
		cr_assert_geq(v->target_bytes, v->min_bytes, "vm %u target %llu under floor %llu", i,
			      (unsigned long long)v->target_bytes, (unsigned long long)v->min_bytes);
		cr_assert_leq(v->target_bytes, v->max_bytes);
		cr_assert_geq(v->entitled_bytes, v->min_bytes);
		cr_assert_leq(v->entitled_bytes, v->max_bytes);
		cr_assert_eq(v->target_bytes % PAGE, 0);
		if (v->flags & OVC_MEMSCHED_BALLOON)
			cr_assert_leq(v->balloon_target_bytes, v->ram_bytes - v->min_bytes,
				      "vm %u balloon below its reservation", i);
		sum += v->target_bytes;
	}
	cr_assert_eq(sum, p->target_sum_bytes);
	if (!p->reservations_over_budget) {
		cr_assert_leq(sum, p->alloc_bytes);
		cr_assert_leq(p->alloc_bytes, p->budget_bytes);
	}
}

static double ratio(uint64_t a, uint64_t b)
{
	return (double)a / (double)b;
}

/* ------------------------------------------------------------------------ */
/* Entitlement */

/* Equal activity, shares 2:1: the budget splits 2:1. */
Test(memsched, shares_split_two_to_one)
{
	const struct ovc_memsched_plan *p;
	struct ovc_vm_snap *a, *b;

	a = add_vm(4 * GiB, 4 * GiB, 4 * GiB);
	b = add_vm(4 * GiB, 4 * GiB, 4 * GiB);
	a->policy.mem_shares = 2000;
	b->policy.mem_shares = 1000;
	cfg.budget_bytes = 4 * GiB;
	p = tick();
	check_invariants(p);
	cr_assert_eq(p->alloc_bytes, 4 * GiB - (uint64_t)(0.06 * 4 * GiB));
	cr_assert_float_eq(ratio(p->vms[0].entitled_bytes, p->vms[1].entitled_bytes), 2.0, 0.001);
	cr_assert_leq(p->alloc_bytes - p->target_sum_bytes, 2 * PAGE);
	cr_assert_eq(p->vms[0].target_bytes, p->vms[0].entitled_bytes);
}

/*
 * The worked example of docs/memsched.md: two 4 GiB VMs with equal shares,
 * all resident, on a 4 GiB budget; A is all active, B is idle. Without the
 * tax they split evenly; with τ = 0.75 (k = 4) an idle page costs B four
 * times as much, so B gets a fifth; with B 25% active, B's first GiB is
 * charged 1 and the rest 4.
 */
Test(memsched, idle_tax_takes_from_the_idle)
{
	const struct ovc_memsched_plan *p;
	uint64_t alloc = 4 * GiB - (uint64_t)(0.06 * 4 * GiB);

	add_vm(4 * GiB, 4 * GiB, 4 * GiB);
	add_vm(4 * GiB, 4 * GiB, 0);
	cfg.budget_bytes = 4 * GiB;

	cfg.idle_tax = 0.0;
	p = tick();
	check_invariants(p);
	cr_assert_float_eq(ratio(p->vms[0].entitled_bytes, alloc), 0.5, 0.001);
	cr_assert_float_eq(ratio(p->vms[1].entitled_bytes, alloc), 0.5, 0.001);

	cfg.idle_tax = 0.75;
	have_prev = false;
	p = tick();
	check_invariants(p);
	cr_assert_float_eq(ratio(p->vms[0].entitled_bytes, alloc), 0.8, 0.001);
	cr_assert_float_eq(ratio(p->vms[1].entitled_bytes, alloc), 0.2, 0.001);

	/* B 25% active (1 GiB): cost_B(P) = 1 GiB + 4 (P - 1 GiB) = cost_A(P_A) = P_A. */
	vms[1].wss.active_bytes = 1 * GiB;
	have_prev = false;
	p = tick();
	check_invariants(p);
	{
		double m = (double)alloc, g = (double)GiB;
		double pb = (m + 3 * g) / 5;	/* P_A + P_B = M, P_A = 4 P_B - 3 GiB */

		cr_assert_float_eq((double)p->vms[1].entitled_bytes / pb, 1.0, 0.001);
		cr_assert_float_eq((double)p->vms[0].entitled_bytes / (m - pb), 1.0, 0.001);
	}

	/* The highest tax allowed: B keeps almost nothing beyond its active GiB. */
	cfg.idle_tax = 0.99;
	have_prev = false;
	p = tick();
	check_invariants(p);
	cr_assert_lt(p->vms[1].entitled_bytes, 1 * GiB + 64 * MiB);
}

/* No working-set estimate yet: the resident memory counts as active (no tax on it). */
Test(memsched, no_estimate_counts_resident_as_active)
{
	const struct ovc_memsched_plan *p;

	add_vm(4 * GiB, 4 * GiB, 4 * GiB);
	add_vm(4 * GiB, 4 * GiB, UINT64_MAX);
	cfg.budget_bytes = 4 * GiB;
	p = tick();
	check_invariants(p);
	cr_assert_eq(p->vms[1].active_bytes, 4 * GiB);
	cr_assert_float_eq(ratio(p->vms[0].entitled_bytes, p->vms[1].entitled_bytes), 1.0, 0.001);
}

Test(memsched, reservation_is_a_floor)
{
	const struct ovc_memsched_plan *p;
	struct ovc_vm_snap *b;
	unsigned int t;

	add_vm(4 * GiB, 4 * GiB, 4 * GiB);
	b = add_vm(4 * GiB, 4 * GiB, 0);
	give_balloon(b, 0, 0);
	b->has_pager = true;
	b->policy.mem_reservation_bytes = 1536 * MiB;
	cfg.budget_bytes = 4 * GiB;
	for (t = 0; t < 20; t++) {
		p = tick();
		check_invariants(p);
		/* Without the reservation the idle VM would get a fifth (~750 MiB). */
		cr_assert_eq(p->vms[1].entitled_bytes, 1536 * MiB);
		cr_assert_geq(p->vms[1].target_bytes, 1536 * MiB);
		give_balloon(b, p->vms[1].balloon_target_bytes, p->vms[1].balloon_target_bytes);
		cr_assert_leq(b->balloon.target_pages * PAGE, 4 * GiB - 1536 * MiB);
		/* The pager never goes under the floor either. */
		set_res(b, res_of(b) - p->vms[1].reclaim_pages * PAGE);
		cr_assert_geq(res_of(b), 1536 * MiB);
	}
}

/* A VM at its floor with pages in the compressed tier: the pager does not go under the floor. */
Test(memsched, floor_holds_with_compressed_pages)
{
	const struct ovc_memsched_plan *p;
	struct ovc_vm_snap *b;

	add_vm(4 * GiB, 4 * GiB, 4 * GiB);
	b = add_vm(4 * GiB, 1 * GiB, 0);
	b->has_pager = true;
	b->pager.zip_bytes = 512 * MiB;
	b->policy.mem_reservation_bytes = 1 * GiB;
	cfg.budget_bytes = 4 * GiB;
	p = tick();
	cr_assert_eq(p->state, OVC_MEM_LOW);
	cr_assert_eq(p->vms[1].target_bytes, 1 * GiB);
	cr_assert_gt(p->vms[1].reclaim_bytes, 0, "it holds more than its floor");
	cr_assert_eq(p->vms[1].reclaim_pages, 0);
	cr_assert_gt(p->vms[1].unmet_bytes, 0);
}

Test(memsched, limit_is_a_ceiling)
{
	const struct ovc_memsched_plan *p;
	struct ovc_vm_snap *a;

	a = add_vm(4 * GiB, 3 * GiB, 3 * GiB);
	a->policy.mem_limit_bytes = 1 * GiB;
	a->has_pager = true;
	add_vm(4 * GiB, 1 * GiB, 1 * GiB);
	cfg.budget_bytes = 64 * GiB;	/* plenty: HIGH */
	p = tick();
	check_invariants(p);
	cr_assert_eq(p->state, OVC_MEM_HIGH);
	cr_assert_eq(p->vms[0].target_bytes, 1 * GiB);
	cr_assert_eq(p->vms[1].target_bytes, 4 * GiB);
	/* Above its limit a VM is reclaimed even with memory to spare. */
	cr_assert(p->vms[0].flags & OVC_MEMSCHED_PAGE);
	cr_assert_eq(p->vms[0].reclaim_bytes, 2 * GiB);
	cr_assert_eq(p->vms[0].reclaim_pages, cfg.page_rate_bytes / PAGE);
	cr_assert_eq(p->vms[1].reclaim_bytes, 0);
}

/* Whatever the VMs, policies and history: targets stay in bounds and within the budget. */
Test(memsched, budget_never_exceeded)
{
	unsigned int round, t, i;

	srand(7);
	for (round = 0; round < 40; round++) {
		uint64_t res_sum = 0;

		snap.nvms = 0;
		have_prev = false;
		cfg.budget_bytes = (uint64_t)(1 + rand() % 64) * GiB;
		cfg.idle_tax = (rand() % 100) / 100.0;
		for (i = 0; i < 1 + (unsigned int)rand() % MAXVMS; i++) {
			uint64_t ram = (uint64_t)(1 + rand() % 16) * 256 * MiB;
			struct ovc_vm_snap *v = add_vm(ram, ram / 2, rand() % 2 ? ram / 4 : UINT64_MAX);

			v->policy.mem_shares = 1 + (uint64_t)(rand() % 4000);
			if (rand() % 4 == 0 && res_sum + ram / 4 <= cfg.budget_bytes) {
				v->policy.mem_reservation_bytes = ram / 4;
				res_sum += ram / 4;
			}
			if (rand() % 4 == 0)
				v->policy.mem_limit_bytes = ram / 2 + ram / 4;
			if (rand() % 2)
				give_balloon(v, 0, 0);
			v->has_pager = rand() % 2;
		}
		for (t = 0; t < 30; t++) {
			const struct ovc_memsched_plan *p;

			/* Demand wanders, the budget shrinks now and then. */
			for (i = 0; i < snap.nvms; i++) {
				uint64_t ram = vms[i].mem.ram_bytes;

				set_res(&vms[i], (uint64_t)(rand() % 17) * (ram / 16));
				if (vms[i].wss.valid)
					vms[i].wss.active_bytes = (uint64_t)(rand() % 17) * (ram / 16);
			}
			if (t == 15 && cfg.budget_bytes / 2 >= res_sum && cfg.budget_bytes >= 2 * GiB)
				cfg.budget_bytes /= 2;
			p = tick();
			check_invariants(p);
			cr_assert(!p->reservations_over_budget);
			/* Balloon and pager together never take a VM under its floor. */
			for (i = 0; i < snap.nvms; i++) {
				const struct ovc_memsched_vm_plan *v = &p->vms[i];
				uint64_t res = res_of(&vms[i]), take = v->reclaim_pages * PAGE;

				if (vms[i].has_balloon && v->balloon_target_bytes > vms[i].balloon.actual_pages * PAGE)
					take += v->balloon_target_bytes - vms[i].balloon.actual_pages * PAGE;
				if (take)
					cr_assert_geq(res, v->min_bytes + take, "vm %u under its floor", i);
			}
		}
	}
}

/* ------------------------------------------------------------------------ */
/* Free-memory states and their actions */

/* Used memory set so that free is @pct percent of an 10 GiB budget. */
static const struct ovc_memsched_plan *tick_at_free(double pct)
{
	uint64_t used = (uint64_t)((100.0 - pct) / 100.0 * 10.0 * (double)GiB);
	unsigned int i;

	for (i = 0; i < snap.nvms; i++)
		set_res(&vms[i], (used / snap.nvms) & ~(PAGE - 1));
	return tick();
}

Test(memsched, states_switch_at_thresholds_with_hysteresis)
{
	static const struct {
		double free_pct;
		int state;
	} steps[] = {
		{ 20.0, OVC_MEM_HIGH },
		{ 4.5, OVC_MEM_HIGH },	/* under high, above soft: stays */
		{ 3.5, OVC_MEM_SOFT },
		{ 5.5, OVC_MEM_SOFT },	/* back above soft, not yet high */
		{ 6.5, OVC_MEM_HIGH },
		{ 0.5, OVC_MEM_LOW },	/* down: several steps at once */
		{ 1.5, OVC_MEM_LOW },	/* above low, under hard */
		{ 2.5, OVC_MEM_HARD },	/* up: one step per tick */
		{ 30.0, OVC_MEM_SOFT },
		{ 30.0, OVC_MEM_HIGH },
		{ 1.9, OVC_MEM_HARD },
		{ 3.0, OVC_MEM_HARD },
		{ 4.1, OVC_MEM_SOFT },
	};
	unsigned int i;

	add_vm(8 * GiB, 0, UINT64_MAX);
	add_vm(8 * GiB, 0, UINT64_MAX);
	cfg.budget_bytes = 10 * GiB;
	for (i = 0; i < OVC_ARRAY_SIZE(steps); i++) {
		const struct ovc_memsched_plan *p = tick_at_free(steps[i].free_pct);

		cr_assert_eq(p->state, steps[i].state, "step %u (%.1f%% free): %s, want %s", i,
			     steps[i].free_pct, ovc_mem_state_name(p->state),
			     ovc_mem_state_name(steps[i].state));
		check_invariants(p);
	}
	cr_assert_str_eq(ovc_mem_state_name(OVC_MEM_LOW), "low");
	cr_assert_str_eq(ovc_mem_state_name(9), "invalid");
}

/*
 * Four VMs over target: one with a balloon and a pager, one with a pager
 * only, one with a balloon only, one with nothing. In each state, which
 * mechanism is asked.
 */
static void four_vms(void)
{
	struct ovc_vm_snap *v;

	v = add_vm(4 * GiB, 0, 0);
	give_balloon(v, 0, 0);
	v->has_pager = true;
	v = add_vm(4 * GiB, 0, 0);
	v->has_pager = true;
	v = add_vm(4 * GiB, 0, 0);
	give_balloon(v, 0, 0);
	add_vm(4 * GiB, 0, 0);
	/* One busy VM that holds its memory (shares are per VM: it has many). */
	add_vm(8 * GiB, 0, 8 * GiB)->policy.mem_shares = 8000;
	cfg.budget_bytes = 10 * GiB;
}

/* Free memory at @pct of the budget, the idle VMs holding 1 GiB each. */
static const struct ovc_memsched_plan *four_vms_at(double pct)
{
	uint64_t used = (uint64_t)((100.0 - pct) / 100.0 * 10.0 * (double)GiB);
	unsigned int i;

	for (i = 0; i < 4; i++)
		set_res(&vms[i], 1 * GiB);
	set_res(&vms[4], (used - 4 * GiB) & ~(PAGE - 1));
	vms[4].wss.active_bytes = res_of(&vms[4]);
	have_prev = false;	/* each state from scratch */
	return tick();
}

Test(memsched, high_reclaims_nothing)
{
	const struct ovc_memsched_plan *p;
	unsigned int i;

	four_vms();
	p = four_vms_at(10.0);
	cr_assert_eq(p->state, OVC_MEM_HIGH);
	for (i = 0; i < p->nvms; i++) {
		cr_assert_eq(p->vms[i].reclaim_bytes, 0);
		cr_assert_eq(p->vms[i].flags & (OVC_MEMSCHED_BALLOON | OVC_MEMSCHED_PAGE |
						OVC_MEMSCHED_SHARE), 0);
	}
	cr_assert_eq(p->reclaim_goal_bytes, 0);
}

Test(memsched, soft_balloons_and_pages_only_without_balloon)
{
	const struct ovc_memsched_plan *p;

	four_vms();
	p = four_vms_at(3.0);
	cr_assert_eq(p->state, OVC_MEM_SOFT);
	check_invariants(p);
	cr_assert_gt(p->reclaim_goal_bytes, 0);
	/* Balloon and pager: the balloon only. */
	cr_assert(p->vms[0].flags & OVC_MEMSCHED_SHARE);
	cr_assert(p->vms[0].flags & OVC_MEMSCHED_BALLOON);
	cr_assert_not(p->vms[0].flags & OVC_MEMSCHED_PAGE);
	cr_assert_gt(p->vms[0].balloon_target_bytes, 0);
	/* Pager only: paged, since it cannot balloon. */
	cr_assert(p->vms[1].flags & OVC_MEMSCHED_NO_BALLOON);
	cr_assert(p->vms[1].flags & OVC_MEMSCHED_PAGE);
	cr_assert_gt(p->vms[1].reclaim_pages, 0);
	/* Balloon only. */
	cr_assert(p->vms[2].flags & OVC_MEMSCHED_BALLOON);
	/* Nothing: skipped, counted as unmet. */
	cr_assert(p->vms[3].flags & OVC_MEMSCHED_NO_BALLOON);
	cr_assert(p->vms[3].flags & OVC_MEMSCHED_NO_PAGER);
	cr_assert_eq(p->vms[3].reclaim_pages, 0);
	cr_assert_gt(p->vms[3].unmet_bytes, 0);
	cr_assert_geq(p->unmet_bytes, p->vms[3].unmet_bytes);
	/* The busy VM is under its target. */
	cr_assert_eq(p->vms[4].reclaim_bytes, 0);
	/* Reclaim asked adds up to the goal, no more. */
	cr_assert_leq(p->vms[0].reclaim_bytes + p->vms[1].reclaim_bytes + p->vms[2].reclaim_bytes +
		      p->vms[3].reclaim_bytes, p->reclaim_goal_bytes + 4 * PAGE);
}

Test(memsched, hard_balloons_and_pages)
{
	const struct ovc_memsched_plan *p;

	four_vms();
	p = four_vms_at(1.5);
	cr_assert_eq(p->state, OVC_MEM_HARD);
	check_invariants(p);
	cr_assert(p->vms[0].flags & OVC_MEMSCHED_BALLOON);
	/* The balloon's first step covers part of this tick's share; the pager the rest. */
	cr_assert_gt(p->vms[0].balloon_target_bytes, 0);
	cr_assert(p->vms[0].flags & OVC_MEMSCHED_PAGE);
	cr_assert_leq(p->vms[0].reclaim_pages * PAGE + p->vms[0].balloon_target_bytes,
		      p->vms[0].reclaim_bytes);
	cr_assert(p->vms[1].flags & OVC_MEMSCHED_PAGE);
	cr_assert_not(p->vms[0].flags & OVC_MEMSCHED_OVER_TARGET);
}

Test(memsched, low_pages_everything_above_target)
{
	const struct ovc_memsched_plan *p;

	four_vms();
	p = four_vms_at(0.5);
	cr_assert_eq(p->state, OVC_MEM_LOW);
	check_invariants(p);
	cr_assert(p->vms[0].flags & OVC_MEMSCHED_BALLOON);
	cr_assert(p->vms[0].flags & OVC_MEMSCHED_PAGE);
	cr_assert(p->vms[0].flags & OVC_MEMSCHED_OVER_TARGET);
	cr_assert_eq(p->vms[0].reclaim_pages * PAGE,
		     (p->vms[0].reclaim_bytes < 2 * cfg.page_rate_bytes ?
		      p->vms[0].reclaim_bytes : 2 * cfg.page_rate_bytes) & ~(PAGE - 1));
	cr_assert(p->vms[1].flags & OVC_MEMSCHED_PAGE);
	cr_assert(p->vms[3].flags & OVC_MEMSCHED_NO_PAGER);
}

/* The pager's total per tick is shared among VMs. */
Test(memsched, pager_total_rate)
{
	const struct ovc_memsched_plan *p;
	uint64_t sum = 0;
	unsigned int i;

	for (i = 0; i < 32; i++)
		add_vm(4 * GiB, 1 * GiB, 0)->has_pager = true;
	cfg.budget_bytes = 16 * GiB;	/* 32 GiB resident: LOW */
	cfg.page_rate_total_bytes = 256 * MiB;
	p = tick();
	cr_assert_eq(p->state, OVC_MEM_LOW);
	for (i = 0; i < p->nvms; i++)
		sum += p->vms[i].reclaim_pages;
	cr_assert_leq(sum * PAGE, (uint64_t)(cfg.low_boost * 256 * MiB));
	cr_assert_gt(sum * PAGE, 256 * MiB);
	cr_assert_eq(sum * PAGE, p->page_bytes);
}

Test(memsched, stalled_balloon_falls_through)
{
	const struct ovc_memsched_plan *p;

	four_vms();
	vms[0].balloon.stalled = true;
	p = four_vms_at(3.0);
	cr_assert_eq(p->state, OVC_MEM_SOFT);
	cr_assert(p->vms[0].flags & OVC_MEMSCHED_STALLED);
	cr_assert_not(p->vms[0].flags & OVC_MEMSCHED_BALLOON);
	cr_assert(p->vms[0].flags & OVC_MEMSCHED_PAGE);
	cr_assert_gt(p->vms[0].reclaim_pages, 0);
	/* Stalled and no pager: skipped, unmet. */
	vms[2].balloon.stalled = true;
	p = four_vms_at(3.0);
	cr_assert(p->vms[2].flags & OVC_MEMSCHED_STALLED);
	cr_assert(p->vms[2].flags & OVC_MEMSCHED_NO_PAGER);
	cr_assert_gt(p->vms[2].unmet_bytes, 0);
}

/* A balloon whose driver never came up (no features) is as good as none. */
Test(memsched, balloon_without_driver_is_missing)
{
	const struct ovc_memsched_plan *p;

	four_vms();
	vms[0].balloon.features = 0;
	p = four_vms_at(3.0);
	cr_assert(p->vms[0].flags & OVC_MEMSCHED_NO_BALLOON);
	cr_assert(p->vms[0].flags & OVC_MEMSCHED_PAGE);
}

/* A device that capped our target (max_fraction) makes the rest fall through. */
Test(memsched, capped_balloon_falls_through)
{
	const struct ovc_memsched_plan *p;
	unsigned int t;

	four_vms();
	four_vms_at(3.0);
	for (t = 0; t < 40; t++) {
		p = tick();
		/* The device holds at most 256 MiB of VM 0 and VM 2. */
		give_balloon(&vms[0], p->vms[0].balloon_target_bytes < 256 * MiB ?
			     p->vms[0].balloon_target_bytes : 256 * MiB,
			     vms[0].balloon.actual_pages * PAGE);
		vms[0].balloon.actual_pages = vms[0].balloon.target_pages;
	}
	/* Known as capped tick after tick, not every other one. */
	for (t = 0; t < 3; t++) {
		p = tick();
		cr_assert(p->vms[0].flags & OVC_MEMSCHED_NO_BALLOON, "flags 0x%x", p->vms[0].flags);
		cr_assert_not(p->vms[0].flags & OVC_MEMSCHED_BALLOON);
		cr_assert(p->vms[0].flags & OVC_MEMSCHED_PAGE);
	}
}

/* ------------------------------------------------------------------------ */
/* Dynamics: a little model of balloons and pager closes the loop */

struct model {
	uint64_t want[MAXVMS];	/* what the guest would keep resident */
	uint64_t noise;		/* working-set sampling noise, bytes */
	unsigned int balloon_pages_per_tick;
};

/* Apply @p to the snapshot as the mechanisms would over one tick. */
static void model_step(const struct model *m, const struct ovc_memsched_plan *p)
{
	unsigned int i;

	for (i = 0; i < snap.nvms; i++) {
		struct ovc_vm_snap *v = &vms[i];
		const struct ovc_memsched_vm_plan *pv = &p->vms[i];
		uint64_t ram = v->mem.ram_bytes, res = res_of(v), bal, act;

		if (v->has_balloon) {
			uint64_t tgt = (pv->flags & OVC_MEMSCHED_BALLOON) ? pv->balloon_target_bytes :
				v->balloon.target_pages * PAGE;
			uint64_t step = (uint64_t)m->balloon_pages_per_tick * PAGE;

			act = v->balloon.actual_pages * PAGE;
			if (act < tgt)
				act = act + step < tgt ? act + step : tgt;
			else if (act > tgt)
				act = act - tgt > step ? act - step : tgt;
			give_balloon(v, tgt, act);
		}
		bal = v->has_balloon ? v->balloon.actual_pages * PAGE : 0;
		res -= pv->reclaim_pages * PAGE < res ? pv->reclaim_pages * PAGE : res;
		/* The guest holds what it wants of what the balloon leaves it. */
		if (res > ram - bal)
			res = ram - bal;
		if (res < m->want[i] && res < ram - bal)
			res = m->want[i] < ram - bal ? m->want[i] : ram - bal;
		set_res(v, res);
		if (v->wss.valid && m->noise) {
			uint64_t n = (uint64_t)(rand() % 3) * m->noise;
			uint64_t a = m->want[i] > m->noise ? m->want[i] - m->noise : 0;

			v->wss.active_bytes = a + n;
		}
	}
}

/*
 * Three VMs, 2x overcommitted, working sets sampled with noise (±4% of RAM)
 * over 300 ticks: once settled, targets and balloon targets do not swing
 * back and forth.
 */
Test(memsched, no_oscillation)
{
	struct model m = { .noise = 160 * MiB, .balloon_pages_per_tick = (32 * MiB) / PAGE };
	uint64_t last_t[3] = { 0 }, last_b[3] = { 0 };
	int dir_t[3] = { 0 }, dir_b[3] = { 0 };
	unsigned int flips_t[3] = { 0 }, flips_b[3] = { 0 };
	unsigned int t, i;

	srand(11);
	for (i = 0; i < 3; i++) {
		struct ovc_vm_snap *v = add_vm(4 * GiB, 3 * GiB, 2 * GiB);

		give_balloon(v, 0, 0);
		v->has_pager = true;
	}
	m.want[0] = 3 * GiB;
	m.want[1] = 2 * GiB;
	m.want[2] = 1 * GiB;
	vms[0].wss.active_bytes = 3 * GiB;
	vms[2].wss.active_bytes = 512 * MiB;
	cfg.budget_bytes = 6 * GiB;
	for (t = 0; t < 300; t++) {
		const struct ovc_memsched_plan *p = tick();

		check_invariants(p);
		if (getenv("MEMSCHED_TRACE"))
			for (i = 0; i < 3; i++)
				fprintf(stderr, "t%u %s vm%u res %4llu act %4llu ent %4llu tgt %4llu "
					"bal %4llu/%4llu pg %5llu fl %x\n",
					t, ovc_mem_state_name(p->state), i,
					(unsigned long long)(res_of(&vms[i]) >> 20),
					(unsigned long long)(p->vms[i].active_bytes >> 20),
					(unsigned long long)(p->vms[i].entitled_bytes >> 20),
					(unsigned long long)(p->vms[i].target_bytes >> 20),
					(unsigned long long)(p->vms[i].balloon_target_bytes >> 20),
					(unsigned long long)(vms[i].balloon.actual_pages * PAGE >> 20),
					(unsigned long long)p->vms[i].reclaim_pages, p->vms[i].flags);
		for (i = 0; i < 3; i++) {
			uint64_t tg = p->vms[i].target_bytes, b = p->vms[i].balloon_target_bytes;
			int dt = tg > last_t[i] ? 1 : tg < last_t[i] ? -1 : 0;
			int db = b > last_b[i] ? 1 : b < last_b[i] ? -1 : 0;

			if (t >= 30) {
				if (dt && dir_t[i] && dt != dir_t[i])
					flips_t[i]++;
				if (db && dir_b[i] && db != dir_b[i])
					flips_b[i]++;
			}
			if (dt)
				dir_t[i] = dt;
			if (db)
				dir_b[i] = db;
			last_t[i] = tg;
			last_b[i] = b;
		}
		model_step(&m, p);
	}
	for (i = 0; i < 3; i++) {
		cr_assert_leq(flips_t[i], 2, "vm %u target changed direction %u times", i, flips_t[i]);
		cr_assert_leq(flips_b[i], 2, "vm %u balloon changed direction %u times", i, flips_b[i]);
	}
	/* And the host got back under its budget. */
	cr_assert_leq(plans[cur].used_bytes, cfg.budget_bytes);
}

/*
 * Demand growth: VM 0 is ballooned down while idle; then its working set
 * grows. Reclaim stops at once, the target rises, the balloon deflates.
 */
Test(memsched, demand_growth_returns_memory)
{
	struct model m = { .balloon_pages_per_tick = (64 * MiB) / PAGE };
	const struct ovc_memsched_plan *p = NULL;
	uint64_t bal_before, target_before;
	unsigned int t;
	struct ovc_vm_snap *a, *b;

	a = add_vm(4 * GiB, 3 * GiB, 256 * MiB);
	b = add_vm(4 * GiB, 3 * GiB, 3 * GiB);
	give_balloon(a, 0, 0);
	give_balloon(b, 0, 0);
	a->has_pager = b->has_pager = true;
	m.want[0] = 256 * MiB;
	m.want[1] = 3 * GiB;
	cfg.budget_bytes = 5 * GiB;
	for (t = 0; t < 60; t++) {
		p = tick();
		model_step(&m, p);
	}
	cr_assert_gt(a->balloon.actual_pages * PAGE, 512 * MiB, "idle VM was not ballooned");
	bal_before = a->balloon.target_pages * PAGE;
	target_before = p->vms[0].target_bytes;

	/* The idle VM wakes up: its working set grows to 3 GiB. */
	a->wss.active_bytes = 3 * GiB;
	m.want[0] = 3 * GiB;
	p = tick();
	if (getenv("MEMSCHED_TRACE"))
		fprintf(stderr, "%s res %llu tgt %llu (was %llu) bal %llu (was %llu) actual %llu fl %x\n",
			ovc_mem_state_name(p->state), (unsigned long long)res_of(a) >> 20,
			(unsigned long long)p->vms[0].target_bytes >> 20,
			(unsigned long long)target_before >> 20,
			(unsigned long long)p->vms[0].balloon_target_bytes >> 20,
			(unsigned long long)bal_before >> 20,
			(unsigned long long)(a->balloon.actual_pages * PAGE) >> 20, p->vms[0].flags);
	cr_assert(p->vms[0].flags & OVC_MEMSCHED_GROWING);
	cr_assert_eq(p->vms[0].reclaim_bytes, 0);
	cr_assert_eq(p->vms[0].reclaim_pages, 0);
	cr_assert_gt(p->vms[0].target_bytes, target_before);
	cr_assert(p->vms[0].flags & OVC_MEMSCHED_BALLOON);
	cr_assert_lt(p->vms[0].balloon_target_bytes, bal_before);
	model_step(&m, p);
	for (t = 0; t < 60; t++) {
		p = tick();
		check_invariants(p);
		model_step(&m, p);
	}
	/* Equal shares, both busy: it holds its half of the budget; the budget still holds. */
	cr_assert_gt(p->vms[0].target_bytes, target_before + 512 * MiB);
	cr_assert_geq(res_of(a), p->vms[0].target_bytes - 64 * MiB, "resident %llu",
		      (unsigned long long)res_of(a));
	cr_assert_lt(a->balloon.actual_pages * PAGE, bal_before);
	cr_assert_leq(p->target_sum_bytes, cfg.budget_bytes);
}

/* Page-ins and rising faults are growth too. */
Test(memsched, pageins_and_faults_are_growth)
{
	const struct ovc_memsched_plan *p;

	four_vms();
	p = four_vms_at(3.0);
	cr_assert_gt(p->vms[1].reclaim_pages, 0);
	vms[1].pageins_per_sec = 5000;
	p = tick();
	cr_assert(p->vms[1].flags & OVC_MEMSCHED_GROWING);
	cr_assert_eq(p->vms[1].reclaim_pages, 0);
	/* It stays spared for grow_hold_ticks after the last sign. */
	vms[1].pageins_per_sec = 0;
	p = tick();
	cr_assert(p->vms[1].flags & OVC_MEMSCHED_GROWING);
	vms[0].faults_per_sec = 100;
	p = tick();
	vms[0].faults_per_sec = 50000;
	p = tick();
	cr_assert(p->vms[0].flags & OVC_MEMSCHED_GROWING);
}

/* A guest that deflates its balloon itself (deflate on OOM) is followed, not fought. */
Test(memsched, guest_deflate_is_followed)
{
	const struct ovc_memsched_plan *p;

	four_vms();
	give_balloon(&vms[0], 512 * MiB, 512 * MiB);
	vms[0].balloon.deflated = 10;
	p = four_vms_at(3.0);
	/* The guest gives back 256 MiB. */
	vms[0].balloon.actual_pages = (256 * MiB) / PAGE;
	vms[0].balloon.deflated += (256 * MiB) / PAGE;
	p = tick();
	cr_assert(p->vms[0].flags & OVC_MEMSCHED_GUEST_DEFLATE);
	cr_assert(p->vms[0].flags & OVC_MEMSCHED_BALLOON);
	cr_assert_eq(p->vms[0].balloon_target_bytes, 256 * MiB);
	cr_assert(p->vms[0].flags & OVC_MEMSCHED_GROWING);
}

/* ------------------------------------------------------------------------ */
/* Hostile input */

Test(memsched, hostile_config_refused)
{
	static const struct {
		const char *what;
		size_t off;
		double v;
	} dbl[] = {
		{ "tax 1.0", offsetof(struct ovc_memsched_config, idle_tax), 1.0 },
		{ "tax -0.1", offsetof(struct ovc_memsched_config, idle_tax), -0.1 },
		{ "tax NaN", offsetof(struct ovc_memsched_config, idle_tax), NAN },
		{ "high under soft", offsetof(struct ovc_memsched_config, high_frac), 0.03 },
		{ "low 0", offsetof(struct ovc_memsched_config, low_frac), 0.0 },
		{ "soft inf", offsetof(struct ovc_memsched_config, soft_frac), INFINITY },
		{ "headroom -1", offsetof(struct ovc_memsched_config, demand_headroom), -1 },
		{ "step 0", offsetof(struct ovc_memsched_config, target_step_frac), 0 },
		{ "boost 0.5", offsetof(struct ovc_memsched_config, low_boost), 0.5 },
		{ "grow 0", offsetof(struct ovc_memsched_config, grow_frac), 0 },
		{ "pagein NaN", offsetof(struct ovc_memsched_config, pagein_rate), NAN },
		{ "fault -1", offsetof(struct ovc_memsched_config, fault_rate_min), -1 },
	};
	struct ovc_memsched_plan before;
	struct ovc_memsched_config bad;
	const char *why;
	unsigned int i;

	add_vm(1 * GiB, 1 * GiB, UINT64_MAX);
	cfg.budget_bytes = 1 * GiB;
	cr_assert_eq(ovc_memsched_config_check(&cfg, &why), 0);
	for (i = 0; i < OVC_ARRAY_SIZE(dbl); i++) {
		bad = cfg;
		memcpy((char *)&bad + dbl[i].off, &dbl[i].v, sizeof(double));
		why = NULL;
		cr_assert_eq(ovc_memsched_config_check(&bad, &why), -EINVAL, "%s", dbl[i].what);
		cr_assert_not_null(why);
		cr_assert_eq(ovc_memsched_plan(&bad, &snap, NULL, &plans[0]), -EINVAL);
	}
	bad = cfg;
	bad.budget_bytes = 0;
	cr_assert_eq(ovc_memsched_config_check(&bad, NULL), -EINVAL);
	bad = cfg;
	bad.balloon_rate_bytes = 0;
	cr_assert_eq(ovc_memsched_config_check(&bad, NULL), -EINVAL);
	bad = cfg;
	bad.page_rate_total_bytes = bad.page_rate_bytes - 1;
	cr_assert_eq(ovc_memsched_config_check(&bad, NULL), -EINVAL);
	bad = cfg;
	bad.grow_hold_ticks = 0;
	cr_assert_eq(ovc_memsched_config_check(&bad, NULL), -EINVAL);
	cr_assert_eq(ovc_memsched_config_check(NULL, &why), -EINVAL);

	/* Bad arguments leave the plan as it was. */
	before = plans[0];
	cr_assert_eq(ovc_memsched_plan(&cfg, NULL, NULL, &plans[0]), -EINVAL);
	cr_assert_eq(ovc_memsched_plan(NULL, &snap, NULL, &plans[0]), -EINVAL);
	cr_assert_eq(ovc_memsched_plan(&cfg, &snap, NULL, NULL), -EINVAL);
	cr_assert_eq(ovc_memsched_plan(&cfg, &snap, &plans[0].next, &plans[0]), -EINVAL);
	cr_assert_eq(memcmp(&before, &plans[0], sizeof(before)), 0);
	{
		struct ovc_memsched_plan small;

		ovc_memsched_plan_init(&small);
		cr_assert_eq(ovc_memsched_plan(&cfg, &snap, NULL, &small), -ENOSPC);
		cr_assert_eq(ovc_memsched_plan_reserve(&small, 1), 0);
		cr_assert_eq(ovc_memsched_plan(&cfg, &snap, NULL, &small), 0);
		ovc_memsched_plan_fini(&small);
		ovc_memsched_plan_fini(NULL);
		cr_assert_eq(ovc_memsched_plan_reserve(NULL, 1), -EINVAL);
	}
}

/* Reservations over the budget (admission bypassed): everyone at the floor, flagged. */
Test(memsched, reservations_over_budget_flagged)
{
	const struct ovc_memsched_plan *p;

	add_vm(4 * GiB, 4 * GiB, UINT64_MAX)->policy.mem_reservation_bytes = 3 * GiB;
	add_vm(4 * GiB, 4 * GiB, UINT64_MAX)->policy.mem_reservation_bytes = 3 * GiB;
	cfg.budget_bytes = 4 * GiB;
	p = tick();
	cr_assert(p->reservations_over_budget);
	cr_assert_eq(p->vms[0].target_bytes, 3 * GiB);
	cr_assert_eq(p->vms[1].target_bytes, 3 * GiB);
}

/* VMs come and go between ticks: state follows them by id. */
Test(memsched, vms_come_and_go)
{
	const struct ovc_memsched_plan *p;
	unsigned int t;

	for (t = 0; t < 8; t++)
		add_vm(1 * GiB, 1 * GiB, 512 * MiB);
	cfg.budget_bytes = 4 * GiB;
	for (t = 0; t < 5; t++)
		check_invariants(tick());
	/* VM 3 goes, a new one comes with a higher id. */
	memmove(&vms[3], &vms[4], 4 * sizeof(vms[0]));
	vms[7] = vms[6];
	vms[7].id = 100;
	p = tick();
	check_invariants(p);
	cr_assert_eq(p->vms[3].id, 5);
	cr_assert_eq(p->vms[7].id, 100);
	for (t = 0; t < 5; t++)
		check_invariants(tick());
}

/* ------------------------------------------------------------------------ */
/* Live: a host, two VMs, real pagers and a balloon with a driver double */

#include "tests/kit/vring.h"

#define LIVE_RAM (32 * MiB)
#define LIVE_PAGES (LIVE_RAM / PAGE)
#define QSIZE 64
/* Guest layout of the balloon driver double: rings, then a PFN buffer. */
#define Q_GPA(q) ((uint64_t)(q) * 0x4000)
#define DESC_GPA(q) Q_GPA(q)
#define AVAIL_GPA(q) (Q_GPA(q) + 0x1000)
#define USED_GPA(q) (Q_GPA(q) + 0x2000)
#define PFN_GPA 0x8000
#define DRIVER_PAGES 16	/* pages the driver double uses (never checked) */

static struct ovc_host *lhost;
static struct ovc_vm *lvm[2];
static uint8_t *lram[2];
static struct ovc_balloon *lbln;
static char swap_dir[64];
static uint16_t avail_idx[2];
static uint32_t drv_actual;
static bool drv_on;

static void live_setup(void)
{
	struct ovc_host_config hc;
	struct ovc_pager_config pc;
	unsigned int i;
	void *hva;

	pure_setup();
	ovc_host_config_init(&hc);
	hc.tick_ms = 60000;	/* ticks run by hand */
	hc.log_level = OVC_LOG_ERR - 1;
	lhost = ovc_host_new(&hc);
	cr_assert_not_null(lhost);
	ovc_thread_register();
	snprintf(swap_dir, sizeof(swap_dir), "/tmp/ovc-test-memsched-XXXXXX");
	cr_assert_not_null(mkdtemp(swap_dir));
	for (i = 0; i < 2; i++) {
		lvm[i] = ovc_vm_new(lhost, i ? "live-b" : "live-a");
		cr_assert_not_null(lvm[i]);
		cr_assert_eq(ovc_vm_add_ram(lvm[i], 0, LIVE_RAM, &hva), 0);
		lram[i] = hva;
		ovc_pager_config_init(&pc);
		pc.zip_cap_bytes = 4 * MiB;
		pc.swap_dir = swap_dir;
		pc.swap_bytes = 2 * LIVE_RAM;
		cr_assert_not_null(ovc_vm_add_pager(lvm[i], &pc));
	}
	memset(avail_idx, 0, sizeof(avail_idx));
	drv_actual = 0;
	drv_on = false;
}

/* Each test ends with this (Criterion ignores assertions in .fini). */
static void live_finish(void)
{
	unsigned int i;

	if (lbln) {
		cr_assert_eq(ovc_balloon_remove(lbln), 0);
		lbln = NULL;
	}
	for (i = 0; i < 2; i++) {
		if (lvm[i]) {
			cr_assert_eq(ovc_vm_destroy(lvm[i]), 0);
			lvm[i] = NULL;
		}
	}
	if (lhost) {
		cr_assert_eq(ovc_host_destroy(lhost), 0);
		lhost = NULL;
		ovc_thread_unregister();
	}
	rmdir(swap_dir);
	pure_teardown();
}

static uint64_t page_word(unsigned int vm, uint64_t page, unsigned int w)
{
	return (page * 0x9e3779b97f4a7c15ULL) ^ ((uint64_t)vm << 60) ^ w;
}

/* Every page of the VMs in @mask written with its own contents (from DRIVER_PAGES on). */
static void fill_guests(unsigned int mask)
{
	unsigned int vm, w;
	uint64_t pg;

	for (vm = 0; vm < 2; vm++) {
		if (!(mask & (1u << vm)))
			continue;
		for (pg = DRIVER_PAGES; pg < LIVE_PAGES; pg++) {
			uint64_t *p = (uint64_t *)(void *)(lram[vm] + pg * PAGE);

			/* Half of each page zero: compressible, like real memory. */
			for (w = 0; w < PAGE / 16; w++)
				p[w] = page_word(vm, pg, w);
		}
	}
}

/* Pages of @vm below @end whose contents are wrong (read back through the fault engine). */
static unsigned int corrupt_pages(unsigned int vm, uint64_t end)
{
	unsigned int bad = 0, w;
	uint64_t pg;

	for (pg = DRIVER_PAGES; pg < end; pg++) {
		const uint64_t *p = (const uint64_t *)(const void *)(lram[vm] + pg * PAGE);

		for (w = 0; w < PAGE / 8; w++) {
			if (p[w] != (w < PAGE / 16 ? page_word(vm, pg, w) : 0)) {
				bad++;
				break;
			}
		}
	}
	return bad;
}

static uint64_t resident(unsigned int vm)
{
	struct ovc_mem_stats st;

	cr_assert_eq(ovc_vm_get_mem_stats(lvm[vm], &st), 0);
	return st.pages[OVC_PAGE_RESIDENT] * PAGE;
}

static struct ovc_vm_targets targets(unsigned int vm)
{
	struct ovc_vm_targets t;

	pthread_mutex_lock(&lhost->lock);
	t = lvm[vm]->targets;
	pthread_mutex_unlock(&lhost->lock);
	return t;
}

/* The driver double: virtio-mmio handshake, inflate and deflate queues. */
static uint32_t brd(uint64_t off)
{
	uint32_t v = 0;

	cr_assert_eq(ovc_balloon_mmio_access(lbln, off, &v, 4, false), 0);
	return le32toh(v);
}

static void bwr(uint64_t off, uint32_t v)
{
	v = htole32(v);
	cr_assert_eq(ovc_balloon_mmio_access(lbln, off, &v, 4, true), 0);
}

static void driver_start(void)
{
	uint8_t *g = lram[1];
	unsigned int q;

	bwr(R_STATUS, 0);
	bwr(R_STATUS, OVC_VIRTIO_STATUS_ACKNOWLEDGE);
	bwr(R_STATUS, OVC_VIRTIO_STATUS_ACKNOWLEDGE | OVC_VIRTIO_STATUS_DRIVER);
	bwr(R_DRV_FEAT_SEL, 0);
	bwr(R_DRV_FEAT, 0);
	bwr(R_DRV_FEAT_SEL, 1);
	bwr(R_DRV_FEAT, 1);	/* VERSION_1 */
	bwr(R_STATUS, OVC_VIRTIO_STATUS_ACKNOWLEDGE | OVC_VIRTIO_STATUS_DRIVER |
		      OVC_VIRTIO_STATUS_FEATURES_OK);
	cr_assert(brd(R_STATUS) & OVC_VIRTIO_STATUS_FEATURES_OK);
	for (q = 0; q < 2; q++) {
		memset(g + Q_GPA(q), 0, 0x4000);
		bwr(R_QUEUE_SEL, q);
		bwr(R_QUEUE_NUM, QSIZE);
		bwr(R_QUEUE_DESC, (uint32_t)DESC_GPA(q));
		bwr(R_QUEUE_DESC + 4, 0);
		bwr(R_QUEUE_DRIVER, (uint32_t)AVAIL_GPA(q));
		bwr(R_QUEUE_DRIVER + 4, 0);
		bwr(R_QUEUE_DEVICE, (uint32_t)USED_GPA(q));
		bwr(R_QUEUE_DEVICE + 4, 0);
		bwr(R_QUEUE_READY, 1);
	}
	bwr(R_STATUS, OVC_VIRTIO_STATUS_ACKNOWLEDGE | OVC_VIRTIO_STATUS_DRIVER |
		      OVC_VIRTIO_STATUS_FEATURES_OK | OVC_VIRTIO_STATUS_DRIVER_OK);
	drv_on = true;
}

/* Hand @n PFNs over queue @q (0 inflate, 1 deflate): the top pages of RAM, downward. */
static void driver_move(unsigned int q, uint32_t first, uint32_t n)
{
	uint8_t *g = lram[1];
	uint16_t used;
	uint32_t i;

	for (i = 0; i < n; i++)
		vring_put32(g + PFN_GPA + 4 * i, first + i);
	vring_put_desc(g + DESC_GPA(q), PFN_GPA, 4 * n, 0, 0);
	vring_put16(g + AVAIL_GPA(q) + 4 + 2 * (avail_idx[q] % QSIZE), 0);
	avail_idx[q]++;
	__atomic_thread_fence(__ATOMIC_RELEASE);
	vring_put16(g + AVAIL_GPA(q) + 2, avail_idx[q]);
	bwr(R_QUEUE_NOTIFY, q);
	used = vring_get16(g + USED_GPA(q) + 2);
	cr_assert_eq(used, avail_idx[q], "the device did not take the PFNs");
}

/* What a guest driver does on a config change: follow num_pages, then say so in actual. */
static void driver_follow(void)
{
	uint32_t num;

	if (!drv_on)
		return;
	num = brd(0x100);
	while (drv_actual < num) {
		uint32_t n = num - drv_actual > 1024 ? 1024 : num - drv_actual;

		driver_move(0, (uint32_t)LIVE_PAGES - drv_actual - n, n);
		drv_actual += n;
	}
	while (drv_actual > num) {
		uint32_t n = drv_actual - num > 1024 ? 1024 : drv_actual - num;

		driver_move(1, (uint32_t)LIVE_PAGES - drv_actual, n);
		drv_actual -= n;
	}
	bwr(0x104, drv_actual);
}

static void irq_none(void *opaque)
{
	(void)opaque;
}

/*
 * Two 32 MiB VMs, fully written, on a 40 MiB budget (1.6x overcommitted):
 * A has a pager only, B a pager and a balloon whose driver follows. Targets
 * are written to the VMs, the balloon is set to the plan's target and
 * followed, the pager takes A's excess; the host ends under budget and
 * every page that was not given to the balloon reads back intact.
 */
Test(memsched, live_targets_applied, .init = live_setup, .fini = live_finish, .timeout = 60)
{
	struct ovc_memsched_config mc;
	struct ovc_memsched_status st;
	struct ovc_balloon_stats bs;
	struct ovc_balloon_config bc;
	struct ovc_vm_targets ta, tb;
	unsigned int t;

	ovc_balloon_config_init(&bc);
	bc.features = OVC_VIRTIO_FEATURE(OVC_BALLOON_F_MUST_TELL_HOST);
	lbln = ovc_vm_add_balloon(lvm[1], &bc);
	cr_assert_not_null(lbln);
	cr_assert_eq(ovc_balloon_mmio(lbln, irq_none, NULL), 0);
	driver_start();
	fill_guests(3);
	cr_assert_geq(resident(0) + resident(1), 2 * LIVE_RAM - 2 * DRIVER_PAGES * PAGE);

	ovc_memsched_config_init(&mc);
	mc.budget_bytes = 40 * MiB;
	mc.follow_host = false;
	mc.page_rate_bytes = 4 * MiB;	/* several ticks of work */
	mc.balloon_rate_bytes = 4 * MiB;
	mc.deadband_min_bytes = 256 * 1024;
	cr_assert_eq(ovc_host_set_memsched(lhost, &mc), 0);
	for (t = 0; t < 40; t++) {
		ovc__host_tick(lhost);
		driver_follow();
		if (getenv("MEMSCHED_TRACE")) {
			cr_assert_eq(ovc_host_get_memsched(lhost, NULL, &st), 0);
			fprintf(stderr, "t%u %s used %llu free %llu res %llu %llu tgt %llu %llu "
				"bal %llu recl %llu %llu\n",
				t, ovc_mem_state_name(st.state),
				(unsigned long long)st.used_bytes >> 10, (unsigned long long)st.free_bytes >> 10,
				(unsigned long long)resident(0) >> 10, (unsigned long long)resident(1) >> 10,
				(unsigned long long)targets(0).mem_target_bytes >> 10,
				(unsigned long long)targets(1).mem_target_bytes >> 10,
				(unsigned long long)targets(1).balloon_target_bytes >> 10,
				(unsigned long long)targets(0).reclaim_pages,
				(unsigned long long)targets(1).reclaim_pages);
		}
	}
	cr_assert_eq(ovc_host_get_memsched(lhost, NULL, &st), 0);
	cr_assert(st.enabled);
	cr_assert_eq(st.ticks, 40);
	cr_assert_gt(st.paged, 0);
	cr_assert_gt(st.balloon_sets, 0);
	cr_assert_eq(st.errors, 0);

	ta = targets(0);
	tb = targets(1);
	cr_assert_gt(ta.mem_target_bytes, 0);
	cr_assert_leq(ta.mem_target_bytes + tb.mem_target_bytes, mc.budget_bytes);
	/* The balloon holds what the plan asked (the device agrees, the driver followed). */
	cr_assert_eq(ovc_balloon_get_stats(lbln, &bs), 0);
	cr_assert_gt(tb.balloon_target_bytes, 0);
	cr_assert_eq(bs.target_pages * PAGE, tb.balloon_target_bytes);
	cr_assert_eq(bs.actual_pages, drv_actual);
	cr_assert_gt(bs.inflated, 0);
	/* The host is back under budget, with free memory above the high threshold. */
	cr_assert_leq(resident(0) + resident(1),
		      mc.budget_bytes - (uint64_t)(mc.soft_frac * (double)mc.budget_bytes));
	cr_assert_leq(resident(0), ta.mem_target_bytes + 4 * MiB);
	cr_assert_neq(st.state, OVC_MEM_LOW);

	/* Not one page lost: A whole, B up to what its balloon holds. */
	cr_assert_eq(corrupt_pages(0, LIVE_PAGES), 0);
	cr_assert_eq(corrupt_pages(1, LIVE_PAGES - drv_actual), 0);

	/* Turned off: no more plans; on again: the chain starts over. */
	cr_assert_eq(ovc_host_set_memsched(lhost, NULL), 0);
	ovc__host_tick(lhost);
	cr_assert_eq(ovc_host_get_memsched(lhost, NULL, &st), 0);
	cr_assert_not(st.enabled);
	cr_assert_eq(st.ticks, 40);
	live_finish();
}

/* A balloon whose guest stops following stalls; the pager takes over. */
Test(memsched, live_stalled_balloon_pages, .init = live_setup, .fini = live_finish, .timeout = 60)
{
	struct ovc_memsched_config mc;
	struct ovc_balloon_config bc;
	struct ovc_memsched_status st;
	struct ovc_balloon_stats bs;
	uint64_t before;
	unsigned int t;

	ovc_balloon_config_init(&bc);
	bc.features = OVC_VIRTIO_FEATURE(OVC_BALLOON_F_MUST_TELL_HOST);
	bc.stall_ms = 50;
	lbln = ovc_vm_add_balloon(lvm[1], &bc);
	cr_assert_not_null(lbln);
	cr_assert_eq(ovc_balloon_mmio(lbln, irq_none, NULL), 0);
	driver_start();	/* and then never follows */
	fill_guests(2);
	before = resident(1);

	ovc_memsched_config_init(&mc);
	mc.budget_bytes = 33 * MiB;	/* 3% free: SOFT, balloons first */
	mc.follow_host = false;
	mc.deadband_min_bytes = 256 * 1024;
	cr_assert_eq(ovc_host_set_memsched(lhost, &mc), 0);
	ovc__host_tick(lhost);
	cr_assert_eq(ovc_host_get_memsched(lhost, NULL, &st), 0);
	cr_assert_eq(st.state, OVC_MEM_SOFT);
	cr_assert_gt(targets(1).balloon_target_bytes, 0);
	cr_assert_eq(targets(1).reclaim_pages, 0, "in SOFT a working balloon goes first");
	for (t = 0; t < 30; t++) {
		usleep(10000);
		ovc__host_tick(lhost);
	}
	cr_assert_eq(ovc_balloon_get_stats(lbln, &bs), 0);
	cr_assert(bs.stalled);
	cr_assert_lt(resident(1), before, "the pager did not take over from the stalled balloon");
	cr_assert_eq(corrupt_pages(1, LIVE_PAGES), 0);
	live_finish();
}

/* Admission: reservations never add up to more than the budget. */
Test(memsched, live_admission, .init = live_setup, .fini = live_finish, .timeout = 30)
{
	struct ovc_memsched_config mc, got;
	struct ovc_vm_policy p;

	ovc_memsched_config_init(&mc);
	cr_assert_eq(ovc_host_set_memsched(lhost, &mc), -EINVAL, "no budget");
	mc.budget_bytes = 40 * MiB;
	mc.idle_tax = 1.5;
	cr_assert_eq(ovc_host_set_memsched(lhost, &mc), -EINVAL);
	cr_assert_eq(ovc_host_set_memsched(NULL, &mc), -EINVAL);
	mc.idle_tax = 0.75;

	/* Before the scheduler is on, anything self-consistent goes. */
	ovc_vm_policy_init(&p);
	p.mem_reservation_bytes = 30 * MiB;
	cr_assert_eq(ovc_vm_set_policy(lvm[0], &p), 0);
	cr_assert_eq(ovc_vm_set_policy(lvm[1], &p), 0);
	/* 60 MiB reserved: a 40 MiB budget is refused, nothing changes. */
	cr_assert_eq(ovc_host_set_memsched(lhost, &mc), -ENOSPC);
	cr_assert_eq(ovc_host_get_memsched(lhost, &got, NULL), 0);
	cr_assert_eq(got.budget_bytes, 0);
	mc.budget_bytes = 64 * MiB;
	cr_assert_eq(ovc_host_set_memsched(lhost, &mc), 0);
	/* Now raising a reservation past the budget is refused. */
	p.mem_reservation_bytes = 35 * MiB;
	cr_assert_eq(ovc_vm_set_policy(lvm[0], &p), -ENOSPC);
	cr_assert_eq(ovc_vm_get_policy(lvm[0], &p), 0);
	cr_assert_eq(p.mem_reservation_bytes, 30 * MiB);
	p.mem_reservation_bytes = 34 * MiB;	/* more than its RAM: the floor is the RAM */
	cr_assert_eq(ovc_vm_set_policy(lvm[0], &p), 0);
	/* Lowering the budget under them is refused; the old one stays. */
	mc.budget_bytes = 50 * MiB;
	cr_assert_eq(ovc_host_set_memsched(lhost, &mc), -ENOSPC);
	cr_assert_eq(ovc_host_get_memsched(lhost, &got, NULL), 0);
	cr_assert_eq(got.budget_bytes, 64 * MiB);
	ovc__host_tick(lhost);
	ovc__host_tick(lhost);
	cr_assert_eq(targets(0).mem_target_bytes, LIVE_RAM);
	cr_assert_geq(targets(1).mem_target_bytes, 30 * MiB);
	live_finish();
}

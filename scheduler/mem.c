// SPDX-License-Identifier: MIT
/* scheduler/mem.c: memory entitlements (shares per active page, idle tax) and the reclaim plan. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <ovc/memsched.h>

#define MiB (1ULL << 20)
#define PAGE ((uint64_t)OVC_PAGE_SIZE)

/* Directions a balloon target last moved, for the dwell time. */
enum { DIR_NONE = 0, DIR_INFLATE = 1, DIR_DEFLATE = -1 };

OVC_EXPORT void ovc_memsched_config_init(struct ovc_memsched_config *cfg)
{
	if (!cfg)
		return;
	memset(cfg, 0, sizeof(*cfg));
	cfg->idle_tax = 0.75;
	cfg->high_frac = 0.06;
	cfg->soft_frac = 0.04;
	cfg->hard_frac = 0.02;
	cfg->low_frac = 0.01;
	cfg->follow_host = true;
	cfg->demand_headroom = 0.10;
	cfg->deadband_frac = 0.05;
	cfg->deadband_min_bytes = 4 * MiB;
	cfg->target_step_frac = 0.10;
	cfg->balloon_rate_bytes = 64 * MiB;
	cfg->page_rate_bytes = 32 * MiB;
	cfg->page_rate_total_bytes = 256 * MiB;
	cfg->low_boost = 2.0;
	cfg->dwell_ticks = 5;
	cfg->grow_hold_ticks = 5;
	cfg->grow_frac = 0.02;
	cfg->pagein_rate = 256;
	cfg->fault_rate_min = 1000;
}

static bool in_range(double v, double lo, double hi)
{
	return isfinite(v) && v >= lo && v <= hi;
}

OVC_EXPORT int ovc_memsched_config_check(const struct ovc_memsched_config *c, const char **why)
{
	const char *r = NULL;

	if (!c)
		r = "no configuration";
	else if (c->budget_bytes < MiB || c->budget_bytes > (1ULL << 56))
		r = "budget must be 1 MiB - 64 PiB";
	else if (!in_range(c->idle_tax, 0.0, 0.99))
		r = "idle tax must be 0-0.99";
	else if (!in_range(c->high_frac, 0.0, 0.5) || !in_range(c->soft_frac, 0.0, 0.5) ||
		 !in_range(c->hard_frac, 0.0, 0.5) || !in_range(c->low_frac, 0.0, 0.5))
		r = "free-memory thresholds must be shares of the budget, 0-0.5";
	else if (!(c->high_frac > c->soft_frac && c->soft_frac > c->hard_frac &&
		   c->hard_frac > c->low_frac && c->low_frac > 0))
		r = "free-memory thresholds must be high > soft > hard > low > 0";
	else if (!in_range(c->demand_headroom, 0.0, 4.0))
		r = "demand headroom must be 0-4";
	else if (!in_range(c->deadband_frac, 0.0, 0.5) || c->deadband_min_bytes > c->budget_bytes)
		r = "dead band must be 0-0.5 of a VM's RAM and at most the budget";
	else if (!in_range(c->target_step_frac, 0.001, 1.0))
		r = "target step must be 0.001-1 of a VM's RAM";
	else if (c->balloon_rate_bytes < PAGE || c->page_rate_bytes < PAGE)
		r = "balloon and pager rates must be at least a page per tick";
	else if (c->page_rate_total_bytes < c->page_rate_bytes)
		r = "total pager rate must be at least the per-VM rate";
	else if (!in_range(c->low_boost, 1.0, 16.0))
		r = "low-state boost must be 1-16";
	else if (c->dwell_ticks > 1000 || c->grow_hold_ticks < 1 || c->grow_hold_ticks > 1000)
		r = "dwell must be 0-1000 ticks, growth hold 1-1000";
	else if (!in_range(c->grow_frac, 0.001, 1.0))
		r = "growth share must be 0.001-1";
	else if (!in_range(c->pagein_rate, 0.0, 1e12) || !in_range(c->fault_rate_min, 0.0, 1e12))
		r = "page-in and fault rates must be finite and >= 0";
	if (why)
		*why = r;
	return r ? -EINVAL : 0;
}

OVC_EXPORT const char *ovc_mem_state_name(int state)
{
	static const char *const names[OVC_MEM_NR_STATES] = { "high", "soft", "hard", "low" };

	if (state < 0 || state >= OVC_MEM_NR_STATES)
		return "invalid";
	return names[state];
}

OVC_EXPORT void ovc_memsched_plan_init(struct ovc_memsched_plan *plan)
{
	if (plan)
		memset(plan, 0, sizeof(*plan));
}

OVC_EXPORT int ovc_memsched_plan_reserve(struct ovc_memsched_plan *plan, unsigned int nvms)
{
	struct ovc_memsched_vm_state *st;
	struct ovc_memsched_vm_plan *v;

	if (!plan)
		return -EINVAL;
	if (nvms <= plan->capacity)
		return 0;
	v = calloc(nvms, sizeof(*v));
	st = calloc(nvms, sizeof(*st));
	if (!v || !st) {
		free(v);
		free(st);
		return -ENOMEM;
	}
	if (plan->nvms) {
		memcpy(v, plan->vms, plan->nvms * sizeof(*v));
		memcpy(st, plan->next.vms, plan->next.nvms * sizeof(*st));
	}
	free(plan->vms);
	free(plan->next.vms);
	plan->vms = v;
	plan->next.vms = st;
	plan->capacity = nvms;
	return 0;
}

OVC_EXPORT void ovc_memsched_plan_fini(struct ovc_memsched_plan *plan)
{
	if (!plan)
		return;
	free(plan->vms);
	free(plan->next.vms);
	memset(plan, 0, sizeof(*plan));
}

/* ------------------------------------------------------------------------ */
/* Helpers */

static uint64_t min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

static uint64_t max_u64(uint64_t a, uint64_t b)
{
	return a > b ? a : b;
}

static uint64_t clamp_u64(uint64_t v, uint64_t lo, uint64_t hi)
{
	return v < lo ? lo : v > hi ? hi : v;
}

static uint64_t page_down(uint64_t b)
{
	return b & ~(PAGE - 1);
}

static uint64_t frac_of(double f, uint64_t bytes)
{
	double v = f * (double)bytes;

	return v >= 18446744073709549568.0 ? UINT64_MAX : (uint64_t)v;
}

/*
 * The previous tick's entry for @id. VMs come in creation order and ids grow
 * with creation, so the entry is almost always at *cursor; otherwise a
 * binary search (the state is written in snapshot order, hence sorted).
 */
static const struct ovc_memsched_vm_state *find_prev(const struct ovc_memsched_state *prev,
						     uint64_t id, unsigned int *cursor)
{
	unsigned int lo = 0, hi;

	if (!prev || !prev->nvms || !prev->vms)
		return NULL;
	if (*cursor < prev->nvms && prev->vms[*cursor].id == id)
		return &prev->vms[(*cursor)++];
	hi = prev->nvms;
	while (lo < hi) {
		unsigned int mid = lo + (hi - lo) / 2;

		if (prev->vms[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < prev->nvms && prev->vms[lo].id == id) {
		*cursor = lo + 1;
		return &prev->vms[lo];
	}
	/* Not sorted after all (a caller's own snapshot): look at every entry. */
	for (lo = 0; lo < prev->nvms; lo++) {
		if (prev->vms[lo].id == id)
			return &prev->vms[lo];
	}
	return NULL;
}

/* ------------------------------------------------------------------------ */
/* Entitlement: shares per active page with the idle memory tax */

/*
 * A VM holding P bytes of which A are active "pays" cost(P) = min(P, A) +
 * k * max(0, P - A): active pages cost 1, idle ones k = 1/(1-τ). Its shares
 * per cost, ρ = S / cost(P), is Waldspurger's S / (P (f + k (1 - f))) with
 * f = A / P. Equal ρ for everybody means cost(P_i) = S_i / ρ = λ S_i, so
 * P_i = cost_i^-1(λ S_i), clamped to the VM's bounds: monotone in λ, and the
 * λ that spends the budget is found by bisection.
 */
static double alloc_at(double lam, double shares, double active, double k)
{
	double x = lam * shares;

	return x <= active ? x : active + (x - active) / k;
}

static double cost_of(double bytes, double active, double k)
{
	return bytes <= active ? bytes : active + k * (bytes - active);
}

struct fill {
	double shares;
	double active;
	uint64_t lo, hi;
};

static uint64_t fill_at(const struct fill *f, double lam, double k, unsigned int i)
{
	double a = alloc_at(lam, f[i].shares, f[i].active, k);
	uint64_t b;

	if (a <= (double)f[i].lo)
		return f[i].lo;
	if (a >= (double)f[i].hi)
		return f[i].hi;
	b = page_down((uint64_t)a);
	return clamp_u64(b, f[i].lo, f[i].hi);
}

/*
 * Water-fill @total bytes over the VMs: each gets fill_at(λ) for the largest
 * λ whose sum fits. Writes v[i].entitled_bytes. Σ lo ≤ @total is the
 * caller's to ensure.
 */
static void water_fill(struct ovc_memsched_vm_plan *v, const struct fill *f, unsigned int n,
		       uint64_t total, double k)
{
	double lam_lo = 0.0, lam_hi = 0.0;
	uint64_t sum_hi = 0;
	unsigned int i, it;

	for (i = 0; i < n; i++) {
		double need = cost_of((double)f[i].hi, f[i].active, k) / f[i].shares;

		sum_hi += f[i].hi;
		if (need > lam_hi)
			lam_hi = need;
	}
	if (sum_hi <= total) {
		for (i = 0; i < n; i++)
			v[i].entitled_bytes = f[i].hi;
		return;
	}
	/*
	 * Halve until the fill is within a page per VM of the total, or λ is
	 * known to 2^-40 of its range (a page of a TiB).
	 */
	for (it = 0; it < 40; it++) {
		double mid = (lam_lo + lam_hi) / 2;
		uint64_t sum = 0;

		for (i = 0; i < n && sum <= total; i++)
			sum += fill_at(f, mid, k, i);
		if (sum <= total) {
			lam_lo = mid;
			if (total - sum <= (uint64_t)n * PAGE)
				break;
		} else {
			lam_hi = mid;
		}
	}
	for (i = 0; i < n; i++)
		v[i].entitled_bytes = fill_at(f, lam_lo, k, i);
}

/*
 * Where a VM's target starts from this tick: the previous target (within the
 * VM's bounds now), or the new target when that is lower.
 */
static uint64_t base_of(const struct ovc_memsched_vm_plan *v, const struct ovc_memsched_vm_state *p)
{
	uint64_t tp = p ? p->target_bytes : v->entitled_bytes;

	return min_u64(v->target_bytes, clamp_u64(tp, v->min_bytes, v->max_bytes));
}

/* ------------------------------------------------------------------------ */
/* Free-memory states */

static int state_now(const uint64_t thr[OVC_MEM_NR_STATES], uint64_t free_b, int prev_state,
		     bool have_prev)
{
	int s = OVC_MEM_HIGH, t;

	/* Down: any number of steps, as soon as free memory is below a threshold. */
	for (t = OVC_MEM_SOFT; t < OVC_MEM_NR_STATES; t++) {
		if (free_b < thr[t])
			s = t;
	}
	if (!have_prev || s >= prev_state)
		return s;
	/* Up: one step per tick, and only past the threshold of the state above. */
	if (free_b >= thr[prev_state - 1])
		return prev_state - 1;
	return prev_state;
}

/* ------------------------------------------------------------------------ */
/* The plan */

struct vm_in {
	uint64_t ram, res, zip;
	bool balloon_ok;	/* a balloon whose driver is up */
	uint64_t bal_target, bal_actual;
	bool stalled;
	bool guest_deflate;
	bool growing;
	unsigned int grow_hold;
	uint64_t grow_delta;
};

/*
 * Whether the working set exceeds the resident memory by more than @delta
 * and by more than twice the standard error of an estimate from
 * wss.sampled pages (at most 0.5/sqrt(K) of RAM): (a - r)^2 K >= ram^2.
 */
static bool wss_above(const struct ovc_vm_snap *s, uint64_t active, uint64_t res, uint64_t ram,
		      uint64_t delta)
{
	double k = s->wss.sampled ? (double)s->wss.sampled : 100.0, d;

	if (!s->wss.valid || active < res + delta)
		return false;
	d = (double)(active - res);
	return d * d * k >= (double)ram * (double)ram;
}

static void read_vm(const struct ovc_memsched_config *cfg, const struct ovc_vm_snap *s,
		    const struct ovc_memsched_vm_state *p, struct ovc_memsched_vm_plan *v,
		    struct vm_in *in)
{
	uint64_t active, demand, grow_bytes;
	bool sign = false;

	memset(v, 0, sizeof(*v));
	memset(in, 0, sizeof(*in));
	v->id = s->id;
	in->ram = page_down(s->mem.ram_bytes);
	in->res = min_u64(s->mem.pages[OVC_PAGE_RESIDENT], in->ram / PAGE) * PAGE;
	in->zip = s->has_pager ? s->pager.zip_bytes : 0;
	if (s->has_balloon) {
		in->balloon_ok = s->balloon.features != 0;
		in->bal_target = s->balloon.target_pages * PAGE;
		in->bal_actual = s->balloon.actual_pages * PAGE;
		in->stalled = s->balloon.stalled;
	}
	v->ram_bytes = in->ram;
	v->resident_bytes = in->res;
	v->zip_bytes = in->zip;

	/* No estimate yet: the resident memory is taken as all active. */
	active = s->wss.valid ? min_u64(s->wss.active_bytes, in->ram) : in->res;
	v->active_bytes = active;

	v->min_bytes = page_down(min_u64(s->policy.mem_reservation_bytes, in->ram));
	v->max_bytes = s->policy.mem_limit_bytes ?
		page_down(min_u64(s->policy.mem_limit_bytes, in->ram)) : in->ram;
	if (v->max_bytes < v->min_bytes)
		v->max_bytes = v->min_bytes;

	in->grow_delta = max_u64(page_down(frac_of(cfg->grow_frac, in->ram)), PAGE);
	grow_bytes = 0;
	if (p) {
		/*
		 * The working set outgrowing what is resident means pages it
		 * needs are out. Sampling K pages has a standard error of at
		 * most 0.5/sqrt(K) of RAM: only a rise past twice that counts.
		 */
		if (wss_above(s, active, in->res, in->ram, in->grow_delta))
			sign = true;
		if (in->res >= p->resident_bytes + in->grow_delta) {
			sign = true;
			grow_bytes = in->res - p->resident_bytes;
		}
		if (s->pageins_per_sec >= cfg->pagein_rate && s->pageins_per_sec > 0)
			sign = true;
		if (s->faults_per_sec >= cfg->fault_rate_min && s->faults_per_sec > 0 &&
		    s->faults_per_sec >= 2 * p->faults_per_sec)
			sign = true;
		if (s->has_balloon && s->balloon.deflated > p->balloon_deflated &&
		    in->bal_actual < p->balloon_actual_bytes) {
			sign = true;
			in->guest_deflate = true;
		}
	}
	in->grow_hold = sign ? cfg->grow_hold_ticks : p && p->grow_hold ? p->grow_hold - 1 : 0;
	in->growing = in->grow_hold > 0;

	demand = frac_of(1.0 + cfg->demand_headroom, max_u64(in->res, active));
	if (in->growing)
		demand = max_u64(demand, frac_of(1.0 + cfg->demand_headroom,
						 in->res + max_u64(in->grow_delta, grow_bytes)));
	v->demand_bytes = clamp_u64(page_down(demand), v->min_bytes, v->max_bytes);
	if (in->growing)
		v->flags |= OVC_MEMSCHED_GROWING;
}

OVC_EXPORT int ovc_memsched_plan(const struct ovc_memsched_config *cfg,
				 const struct ovc_stats_snapshot *snap,
				 const struct ovc_memsched_state *prev,
				 struct ovc_memsched_plan *out)
{
	uint64_t thr[OVC_MEM_NR_STATES], budget, used = 0, free_b, alloc, sum_lo = 0;
	uint64_t sum = 0, sum_base = 0, sum_inc = 0, excess_sum = 0, page_sum = 0;
	struct ovc_memsched_vm_state *nx;
	struct ovc_memsched_vm_plan *v;
	unsigned int i, n, cur = 0;
	double k, scale;
	int state;

	if (ovc_memsched_config_check(cfg, NULL) || !snap || !out || (snap->nvms && !snap->vms))
		return -EINVAL;
	if (prev && prev == &out->next)
		return -EINVAL;
	n = snap->nvms;
	if (n > out->capacity)
		return -ENOSPC;
	v = out->vms;
	nx = out->next.vms;
	k = 1.0 / (1.0 - cfg->idle_tax);
	budget = page_down(cfg->budget_bytes);
	thr[OVC_MEM_HIGH] = frac_of(cfg->high_frac, budget);
	thr[OVC_MEM_SOFT] = frac_of(cfg->soft_frac, budget);
	thr[OVC_MEM_HARD] = frac_of(cfg->hard_frac, budget);
	thr[OVC_MEM_LOW] = frac_of(cfg->low_frac, budget);

	/* What each VM holds, wants and may have; what the host has left. */
	out->reservations_over_budget = false;
	for (i = 0; i < n; i++) {
		const struct ovc_vm_snap *s = &snap->vms[i];
		const struct ovc_memsched_vm_state *p = find_prev(prev, s->id, &cur);
		struct vm_in in;

		read_vm(cfg, s, p, &v[i], &in);
		used += in.res + in.zip;
		sum_lo += v[i].min_bytes;
	}
	free_b = used < budget ? budget - used : 0;
	if (cfg->follow_host && snap->host.total_bytes && snap->host.available_bytes < free_b)
		free_b = snap->host.available_bytes;
	state = state_now(thr, free_b, prev ? prev->state : OVC_MEM_HIGH, prev != NULL);

	/* Entitlement: the budget less the free memory kept, never below the reservations. */
	alloc = budget > thr[OVC_MEM_HIGH] ? budget - thr[OVC_MEM_HIGH] : 0;
	if (alloc < sum_lo)
		alloc = min_u64(sum_lo, budget);
	if (sum_lo > budget)
		out->reservations_over_budget = true;
	if (n) {
		struct fill fbuf[256];
		struct fill *f = n <= 256 ? fbuf : NULL;
		unsigned int base;

		/*
		 * The plan allocates nothing: above 256 VMs the fill table borrows
		 * the next state's room, which is written only after this.
		 */
		if (!f) {
			_Static_assert(sizeof(struct fill) <= sizeof(struct ovc_memsched_vm_state),
				       "fill entries borrow the next state's room");
			f = (struct fill *)(void *)nx;
		}
		for (base = 0; base < n; base++) {
			f[base].shares = (double)(snap->vms[base].policy.mem_shares ?
						  snap->vms[base].policy.mem_shares : 1);
			f[base].active = (double)v[base].active_bytes;
			f[base].lo = v[base].min_bytes;
			f[base].hi = v[base].demand_bytes;
		}
		if (!out->reservations_over_budget) {
			water_fill(v, f, n, alloc, k);
			for (i = 0; i < n; i++)
				sum += v[i].entitled_bytes;
			/* What demand leaves over goes on by the same rule, up to the limits. */
			if (sum < alloc) {
				for (i = 0; i < n; i++) {
					f[i].lo = v[i].entitled_bytes;
					f[i].hi = v[i].max_bytes;
				}
				water_fill(v, f, n, alloc, k);
			}
		} else {
			for (i = 0; i < n; i++)
				v[i].entitled_bytes = v[i].min_bytes;
		}
	}

	/* Targets: dead band, falls bounded per tick, rises bounded by the budget. */
	cur = 0;
	for (i = 0; i < n; i++) {
		const struct ovc_memsched_vm_state *p = find_prev(prev, v[i].id, &cur);
		uint64_t ram = v[i].ram_bytes, r = v[i].entitled_bytes, t, tp, db, step, b;

		db = max_u64(frac_of(cfg->deadband_frac, ram), cfg->deadband_min_bytes);
		step = max_u64(page_down(frac_of(cfg->target_step_frac, ram)), PAGE);
		tp = p ? p->target_bytes : r;
		t = (r > tp ? r - tp : tp - r) < db ? tp : r;
		if (t < tp && tp - t > step)
			t = tp - step;
		v[i].target_bytes = clamp_u64(t, v[i].min_bytes, v[i].max_bytes);
		b = base_of(&v[i], p);
		t = v[i].target_bytes;
		sum_base += b;
		sum_inc += t - b;
	}
	sum = sum_base + sum_inc;
	if (sum > alloc && sum_base <= alloc) {
		/* Rises share what the falls and the budget leave. */
		uint64_t room = alloc - sum_base;

		scale = sum_inc ? (double)room / (double)sum_inc : 0.0;
		sum = 0;
		cur = 0;
		for (i = 0; i < n; i++) {
			const struct ovc_memsched_vm_state *p = find_prev(prev, v[i].id, &cur);
			uint64_t b = base_of(&v[i], p);
			uint64_t inc = v[i].target_bytes - b;

			v[i].target_bytes = b + page_down((uint64_t)((double)inc * (scale < 1 ? scale : 1)));
			sum += v[i].target_bytes;
		}
	} else if (sum > alloc) {
		/*
		 * The slow falls alone overshoot (a VM arrived, a reservation or
		 * the budget changed): no rises, and every fall goes the same
		 * share of its way further, just enough to fit.
		 */
		uint64_t floor_sum = 0, over = 0;
		double f;

		cur = 0;
		for (i = 0; i < n; i++) {
			const struct ovc_memsched_vm_state *p = find_prev(prev, v[i].id, &cur);
			uint64_t b = base_of(&v[i], p), e = v[i].entitled_bytes;

			floor_sum += min_u64(b, e);
			over += b > e ? b - e : 0;
		}
		f = over && alloc > floor_sum ? (double)(alloc - floor_sum) / (double)over : 0.0;
		if (f > 1.0)
			f = 1.0;
		sum = 0;
		cur = 0;
		for (i = 0; i < n; i++) {
			const struct ovc_memsched_vm_state *p = find_prev(prev, v[i].id, &cur);
			uint64_t b = base_of(&v[i], p), e = v[i].entitled_bytes;

			v[i].target_bytes = min_u64(b, e) +
				(b > e ? page_down((uint64_t)((double)(b - e) * f)) : 0);
			sum += v[i].target_bytes;
		}
	}
	out->target_sum_bytes = sum;

	/* How much reclaim this tick wants: enough to get back to the high threshold. */
	out->reclaim_goal_bytes = state == OVC_MEM_HIGH ? 0 :
		(thr[OVC_MEM_HIGH] > free_b ? thr[OVC_MEM_HIGH] - free_b : 0);
	for (i = 0; i < n; i++) {
		uint64_t held = v[i].resident_bytes + v[i].zip_bytes;

		if ((!(v[i].flags & OVC_MEMSCHED_GROWING) || state >= OVC_MEM_HARD) &&
		    held > v[i].target_bytes)
			excess_sum += held - v[i].target_bytes;
	}
	scale = excess_sum ? (double)out->reclaim_goal_bytes / (double)excess_sum : 0.0;
	if (scale > 1.0)
		scale = 1.0;

	/* Actions, per VM: share → balloon → pager (compressed tier, then swap). */
	out->balloon_bytes = out->page_bytes = out->unmet_bytes = 0;
	cur = 0;
	for (i = 0; i < n; i++) {
		const struct ovc_vm_snap *s = &snap->vms[i];
		const struct ovc_memsched_vm_state *p = find_prev(prev, s->id, &cur);
		struct ovc_memsched_vm_plan *w = &v[i];
		uint64_t excess, r = 0, cover = 0, rem, bal, db, rate, taken, held, asked = 0;
		int dir = p ? p->last_dir : DIR_NONE;
		unsigned int dwell = p && p->dwell ? p->dwell - 1 : 0;
		struct ovc_memsched_vm_plan keep = *w;
		bool balloon_blocked = false, growing, over_limit;
		struct vm_in in;

		/* Re-read the mechanism view (read_vm is cheap and pure). */
		read_vm(cfg, s, p, w, &in);
		w->entitled_bytes = keep.entitled_bytes;
		w->target_bytes = keep.target_bytes;
		growing = in.growing;
		db = max_u64(frac_of(cfg->deadband_frac, in.ram), cfg->deadband_min_bytes);
		/* A VM holds its resident pages and its share of the compressed tier. */
		held = in.res + in.zip;
		excess = held > w->target_bytes ? held - w->target_bytes : 0;
		bal = in.bal_target;
		w->balloon_target_bytes = bal;

		/*
		 * A growing VM is spared in SOFT; in HARD and LOW it too comes
		 * down to its target (which its growth has already raised).
		 */
		if (state != OVC_MEM_HIGH && excess && (!growing || state >= OVC_MEM_HARD)) {
			r = page_down((uint64_t)((double)excess * scale));
			if (!r && excess)
				r = min_u64(excess, PAGE);
			w->flags |= OVC_MEMSCHED_SHARE;
			if (state == OVC_MEM_LOW)
				w->flags |= OVC_MEMSCHED_OVER_TARGET;
		}
		/* A limit holds in every state, growing or not. */
		over_limit = held > w->max_bytes;
		if (over_limit && r < held - w->max_bytes)
			r = held - w->max_bytes;
		w->reclaim_bytes = r;

		/* The balloon: inflate toward the target, never under the reservation. */
		if (!s->has_balloon || !in.balloon_ok) {
			balloon_blocked = true;
			if (r)
				w->flags |= OVC_MEMSCHED_NO_BALLOON;
		} else if (in.stalled) {
			balloon_blocked = true;
			if (r)
				w->flags |= OVC_MEMSCHED_STALLED;
		} else if (r) {
			uint64_t most = in.ram - max_u64(w->target_bytes, w->min_bytes);
			uint64_t in_flight = bal > in.bal_actual ? bal - in.bal_actual : 0;
			bool capped = p && p->balloon_bytes > bal + PAGE;

			cover = min_u64(in_flight, r);
			if (capped) {
				/* Keep asking what was capped, so it stays known as capped. */
				asked = p->balloon_bytes;
				balloon_blocked = true;
				w->flags |= OVC_MEMSCHED_NO_BALLOON;
			} else if (r > in_flight && bal < most &&
				   (dir != DIR_DEFLATE || !dwell || state >= OVC_MEM_HARD)) {
				uint64_t add = min_u64(r - in_flight, cfg->balloon_rate_bytes);
				uint64_t nb = page_down(min_u64(bal + add, most));

				if (nb > bal) {
					w->balloon_target_bytes = nb;
					w->flags |= OVC_MEMSCHED_BALLOON;
					cover += nb - bal;
					out->balloon_bytes += nb - bal;
					if (dir != DIR_INFLATE)
						dwell = cfg->dwell_ticks;
					dir = DIR_INFLATE;
				}
			}
			if (cover > r)
				cover = r;
		}

		/*
		 * A balloon still inflating toward more than the VM now holds
		 * above its target would take it under: ask only for the rest.
		 */
		if (s->has_balloon && in.balloon_ok && !in.stalled &&
		    !(w->flags & OVC_MEMSCHED_BALLOON) && bal > in.bal_actual &&
		    bal - in.bal_actual > excess + min_u64(max_u64(PAGE, db / 4),
							   w->target_bytes - w->min_bytes)) {
			w->balloon_target_bytes = page_down(in.bal_actual + excess);
			w->flags |= OVC_MEMSCHED_BALLOON;
		}

		/* Memory flows back: deflate toward what the target allows. */
		if (s->has_balloon && in.balloon_ok && !(w->flags & OVC_MEMSCHED_BALLOON)) {
			uint64_t want = w->target_bytes >= in.ram ? 0 : in.ram - w->target_bytes;

			if (in.guest_deflate && in.bal_actual < bal) {
				/* The guest took pages back (deflate on OOM): do not fight it. */
				w->balloon_target_bytes = in.bal_actual;
				w->flags |= OVC_MEMSCHED_BALLOON | OVC_MEMSCHED_GUEST_DEFLATE;
				dir = DIR_DEFLATE;
				dwell = cfg->dwell_ticks;
			} else if (want < bal &&
				   ((state == OVC_MEM_HIGH && bal - want >= db &&
				     (dir != DIR_INFLATE || !dwell)) ||
				    (growing && !excess && state != OVC_MEM_LOW))) {
				/* A growing VM gets memory back at once, dead band or not. */
				uint64_t speed = cfg->balloon_rate_bytes * (growing ? 4 : 1);
				uint64_t nb = bal - want > speed ? bal - speed : want;

				w->balloon_target_bytes = page_down(nb);
				w->flags |= OVC_MEMSCHED_BALLOON;
				if (dir != DIR_DEFLATE)
					dwell = cfg->dwell_ticks;
				dir = DIR_DEFLATE;
			}
		}

		/* The pager: where the state asks for it and the balloon does not cover. */
		rem = state == OVC_MEM_LOW ? r : r - cover;
		if (rem && (state >= OVC_MEM_HARD || balloon_blocked || over_limit)) {
			rate = cfg->page_rate_bytes;
			if (state == OVC_MEM_LOW)
				rate = frac_of(cfg->low_boost, rate);
			if (!s->has_pager) {
				w->flags |= OVC_MEMSCHED_NO_PAGER;
			} else {
				/*
				 * Resident memory never goes under the floor, whatever
				 * the tier holds, even with the balloon (in LOW both
				 * work at once) taking its part too.
				 */
				uint64_t pending = s->has_balloon && in.balloon_ok &&
					w->balloon_target_bytes > in.bal_actual ?
					w->balloon_target_bytes - in.bal_actual : 0;
				uint64_t room = in.res > w->min_bytes + pending ?
					in.res - w->min_bytes - pending : 0;

				w->reclaim_pages = min_u64(min_u64(rem, rate), room) / PAGE;
				if (w->reclaim_pages)
					w->flags |= OVC_MEMSCHED_PAGE;
				page_sum += w->reclaim_pages;
			}
		}
		taken = min_u64(r, cover + w->reclaim_pages * PAGE);
		/* In SOFT a working balloon takes the rest over the next ticks. */
		w->unmet_bytes = state <= OVC_MEM_SOFT && !balloon_blocked && !over_limit ? 0 : r - taken;

		nx[i].id = s->id;
		nx[i].target_bytes = w->target_bytes;
		nx[i].balloon_bytes = (w->flags & OVC_MEMSCHED_BALLOON) || !asked ?
			w->balloon_target_bytes : asked;
		nx[i].balloon_actual_bytes = in.bal_actual;
		nx[i].balloon_deflated = s->has_balloon ? s->balloon.deflated : 0;
		nx[i].active_bytes = w->active_bytes;
		nx[i].resident_bytes = in.res;
		nx[i].faults_per_sec = s->faults_per_sec;
		nx[i].last_dir = dir;
		nx[i].dwell = dwell;
		nx[i].grow_hold = in.grow_hold;
	}

	/* The pager's budget for the tick, shared in proportion to what each asked. */
	{
		uint64_t total = cfg->page_rate_total_bytes / PAGE;

		if (state == OVC_MEM_LOW)
			total = frac_of(cfg->low_boost, total);
		if (page_sum > total) {
			double f = (double)total / (double)page_sum;

			page_sum = 0;
			for (i = 0; i < n; i++) {
				uint64_t np = (uint64_t)((double)v[i].reclaim_pages * f);

				v[i].unmet_bytes += (v[i].reclaim_pages - np) * PAGE;
				v[i].reclaim_pages = np;
				if (!np)
					v[i].flags &= ~OVC_MEMSCHED_PAGE;
				page_sum += np;
			}
		}
	}
	for (i = 0; i < n; i++)
		out->unmet_bytes += v[i].unmet_bytes;

	out->state = state;
	out->budget_bytes = budget;
	out->used_bytes = used;
	out->free_bytes = free_b;
	out->alloc_bytes = alloc;
	out->page_bytes = page_sum * PAGE;
	out->nvms = n;
	out->next.seq = snap->seq;
	out->next.state = state;
	out->next.ticks = prev ? prev->ticks + 1 : 1;
	out->next.nvms = n;
	return 0;
}

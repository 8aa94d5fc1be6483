// SPDX-License-Identifier: MIT
/* scheduler/cpu.c: CPU demand, water-filled entitlement and admission, as pure functions of snapshots. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <ovc/cpusched.h>

OVC_EXPORT void ovc_cpusched_config_init(struct ovc_cpusched_config *cfg)
{
	if (!cfg)
		return;
	memset(cfg, 0, sizeof(*cfg));
	cfg->backend = "auto";
	cfg->demand_headroom = 0.05;
	cfg->demand_decay = 0.001;
	cfg->throttle_period_ms = OVC_CPU_THROTTLE_PERIOD_MS;
	cfg->rebalance_ms = OVC_CPU_REBALANCE_MS;
	cfg->imbalance_pct = OVC_CPU_IMBALANCE_PCT;
	cfg->place = true;
	cfg->bind_memory = true;
}

static bool finite_nonneg(double x)
{
	return isfinite(x) && x >= 0.0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double clamp(double x, double lo, double hi)
{
	return x < lo ? lo : x > hi ? hi : x;
}

/* Sum of each VM's allocation at water level @l. */
static double fill(const struct ovc_cpu_claim *c, const double *lo, const double *hi,
		   unsigned int n, double l)
{
	double s = 0.0;
	unsigned int i;

	for (i = 0; i < n; i++)
		s += clamp(l * c[i].shares, lo[i], hi[i]);
	return s;
}

OVC_EXPORT int ovc_cpu_entitle(const struct ovc_cpu_claim *claims, unsigned int n,
			       double capacity, double *entitled)
{
	double *lo, *hi, *bps, sum_lo = 0.0, sum_hi = 0.0, a, b, fa, fb, l;
	unsigned int i, nb = 0, left, right;

	if ((n && (!claims || !entitled)) || !finite_nonneg(capacity))
		return -EINVAL;
	for (i = 0; i < n; i++) {
		const struct ovc_cpu_claim *c = &claims[i];

		if (!isfinite(c->shares) || c->shares <= 0.0 || !finite_nonneg(c->reservation) ||
		    !finite_nonneg(c->limit) || !finite_nonneg(c->demand))
			return -EINVAL;
	}
	if (!n)
		return 0;
	lo = malloc(sizeof(double) * n * 4);
	if (!lo)
		return -ENOMEM;
	hi = lo + n;
	bps = hi + n;
	for (i = 0; i < n; i++) {
		hi[i] = fmin(claims[i].limit, claims[i].demand);
		lo[i] = fmin(claims[i].reservation, hi[i]);
		sum_lo += lo[i];
		sum_hi += hi[i];
	}
	if (sum_hi <= capacity) {
		/* Everyone gets what they demand: nothing to divide. */
		memcpy(entitled, hi, sizeof(double) * n);
		goto out;
	}
	if (sum_lo >= capacity) {
		/* Over-reserved (admission skipped): reservations shrink alike. */
		for (i = 0; i < n; i++)
			entitled[i] = sum_lo > 0.0 ? lo[i] * capacity / sum_lo : 0.0;
		goto out;
	}
	/*
	 * fill() is piecewise linear and non-decreasing in the level, with kinks
	 * where a VM leaves its reservation or reaches its demand or limit:
	 * find the segment holding @capacity by bisection over the sorted
	 * kinks, then interpolate inside it.
	 */
	for (i = 0; i < n; i++) {
		bps[nb++] = lo[i] / claims[i].shares;
		bps[nb++] = hi[i] / claims[i].shares;
	}
	qsort(bps, nb, sizeof(double), cmp_double);
	left = 0;
	right = nb - 1;		/* fill(bps[right]) == sum_hi > capacity >= fill(bps[0]) == sum_lo */
	while (right - left > 1) {
		unsigned int mid = left + (right - left) / 2;

		if (fill(claims, lo, hi, n, bps[mid]) <= capacity)
			left = mid;
		else
			right = mid;
	}
	a = bps[left];
	b = bps[right];
	fa = fill(claims, lo, hi, n, a);
	fb = fill(claims, lo, hi, n, b);
	l = fb > fa ? a + (b - a) * (capacity - fa) / (fb - fa) : b;
	for (i = 0; i < n; i++)
		entitled[i] = clamp(l * claims[i].shares, lo[i], hi[i]);
out:
	free(lo);
	return 0;
}

OVC_EXPORT double ovc_cpu_vcpu_demand(const struct ovc_vcpu_snap *prev,
				      const struct ovc_vcpu_snap *cur, uint64_t interval_ns)
{
	uint64_t busy = 0;

	if (!cur || !interval_ns)
		return 0.0;
	if (!prev || prev->tid != cur->tid)
		return 1.0;	/* not measured yet: assume busy, the next tick corrects it */
	if (cur->schedstat_valid && prev->schedstat_valid) {
		if (cur->cpu_ns >= prev->cpu_ns)
			busy += cur->cpu_ns - prev->cpu_ns;
		if (cur->wait_ns >= prev->wait_ns)
			busy += cur->wait_ns - prev->wait_ns;
	} else if (cur->run_ns >= prev->run_ns) {
		busy += cur->run_ns - prev->run_ns;
	}
	if (cur->throttled_ns >= prev->throttled_ns)
		busy += cur->throttled_ns - prev->throttled_ns;
	/*
	 * A halted vCPU demands nothing, whatever its thread waited for when
	 * it woke to poll (an idle guest's ready time is not demand).
	 */
	if (cur->halt_ns >= prev->halt_ns) {
		uint64_t halted = cur->halt_ns - prev->halt_ns;
		uint64_t awake = halted < interval_ns ? interval_ns - halted : 0;

		if (busy > awake)
			busy = awake;
	}
	return fmin(1.0, (double)busy / (double)interval_ns);
}

static double resolved_limit(const struct ovc_vm_policy *p, unsigned int nvcpus)
{
	double cap = (double)nvcpus;

	return p->cpu_limit > 0.0 && p->cpu_limit < cap ? p->cpu_limit : cap;
}

/* The VM with @id in @snap, searching from *@hint: ids grow in creation order. */
static const struct ovc_vm_snap *find_id(const struct ovc_stats_snapshot *snap, uint64_t id,
					 unsigned int *hint)
{
	unsigned int i;

	for (i = *hint; i < snap->nvms; i++) {
		if (snap->vms[i].id == id) {
			*hint = i + 1;
			return &snap->vms[i];
		}
		if (snap->vms[i].id > id)
			break;
	}
	*hint = i;
	return NULL;
}

static const struct ovc_cpu_vm_plan *find_plan(const struct ovc_cpu_plan *p, uint64_t id,
					       unsigned int *hint)
{
	unsigned int i;

	for (i = *hint; i < p->nvms; i++) {
		if (p->vms[i].id == id) {
			*hint = i + 1;
			return &p->vms[i];
		}
		if (p->vms[i].id > id)
			break;
	}
	*hint = i;
	return NULL;
}

static const struct ovc_vcpu_snap *find_vcpu(const struct ovc_vm_snap *vm, unsigned int index,
					     unsigned int pos)
{
	unsigned int i;

	if (pos < vm->nvcpus && vm->vcpus[pos].index == index)
		return &vm->vcpus[pos];
	for (i = 0; i < vm->nvcpus; i++) {
		if (vm->vcpus[i].index == index)
			return &vm->vcpus[i];
	}
	return NULL;
}

OVC_EXPORT int ovc_cpu_plan_compute(const struct ovc_stats_snapshot *prev,
				    const struct ovc_stats_snapshot *cur,
				    const struct ovc_cpu_plan *prev_plan,
				    const struct ovc_cpusched_config *cfg,
				    struct ovc_cpu_plan *out)
{
	struct ovc_cpu_claim *claims;
	unsigned int i, j, hs = 0, hp = 0;
	double *ent, capacity;
	int ret;

	if (!cur || !cfg || !out || out == prev_plan || !finite_nonneg(cfg->capacity) ||
	    !finite_nonneg(cfg->demand_headroom) || !(cfg->demand_decay >= 0.0 && cfg->demand_decay < 1.0))
		return -EINVAL;
	capacity = cfg->capacity > 0.0 ? cfg->capacity : (double)cur->ncpus;
	if (cur->nvms > out->cap) {
		struct ovc_cpu_vm_plan *v = realloc(out->vms, sizeof(*v) * cur->nvms);

		if (!v)
			return -ENOMEM;
		out->vms = v;
		out->cap = cur->nvms;
	}
	claims = malloc((sizeof(*claims) + sizeof(double)) * (cur->nvms ? cur->nvms : 1));
	if (!claims)
		return -ENOMEM;
	ent = (double *)(claims + (cur->nvms ? cur->nvms : 1));

	for (i = 0; i < cur->nvms; i++) {
		const struct ovc_vm_snap *vm = &cur->vms[i];
		const struct ovc_vm_snap *pvm = prev ? find_id(prev, vm->id, &hs) : NULL;
		const struct ovc_cpu_vm_plan *pp = prev_plan ? find_plan(prev_plan, vm->id, &hp) : NULL;
		uint64_t interval = prev && cur->at_ns > prev->at_ns ? cur->at_ns - prev->at_ns : 0;
		struct ovc_cpu_vm_plan *o = &out->vms[i];
		double d = 0.0;

		for (j = 0; j < vm->nvcpus; j++) {
			const struct ovc_vcpu_snap *pv = pvm ? find_vcpu(pvm, vm->vcpus[j].index, j) : NULL;

			d += interval ? ovc_cpu_vcpu_demand(pv, &vm->vcpus[j], interval) : 1.0;
		}
		/*
		 * Rise at once, fall geometrically at a rate per second (so any
		 * tick period releases an idle VM's share alike): a burst is
		 * served at once, a short pause is not forgotten in one tick.
		 */
		if (pp && d < pp->demand && interval) {
			double keep = pow(cfg->demand_decay, (double)interval / 1e9);

			d = keep * pp->demand + (1.0 - keep) * d;
		}
		o->id = vm->id;
		o->nvcpus = vm->nvcpus;
		o->demand = d;
		o->shares = (double)(vm->policy.cpu_shares ? vm->policy.cpu_shares : OVC_SHARES_DEFAULT);
		o->reservation = vm->policy.cpu_reservation;
		o->limit = resolved_limit(&vm->policy, vm->nvcpus);
		o->home_node = pp ? pp->home_node : -1;
		claims[i].shares = o->shares;
		claims[i].reservation = finite_nonneg(o->reservation) ? o->reservation : 0.0;
		claims[i].limit = o->limit;
		claims[i].demand = fmin(o->limit, d * (1.0 + cfg->demand_headroom));
	}
	ret = ovc_cpu_entitle(claims, cur->nvms, capacity, ent);
	if (!ret) {
		for (i = 0; i < cur->nvms; i++)
			out->vms[i].entitled = ent[i];
		out->nvms = cur->nvms;
		out->capacity = capacity;
	}
	free(claims);
	return ret;
}

OVC_EXPORT void ovc_cpu_plan_fini(struct ovc_cpu_plan *plan)
{
	if (!plan)
		return;
	free(plan->vms);
	memset(plan, 0, sizeof(*plan));
}

OVC_EXPORT int ovc_cpu_admit(const struct ovc_stats_snapshot *snap, double capacity,
			     const char *name, const struct ovc_vm_policy *p, const char **why)
{
	double sum = 0.0;
	unsigned int i;

	if (!p || !name || !finite_nonneg(capacity) || !finite_nonneg(p->cpu_reservation)) {
		if (why)
			*why = "bad argument";
		return -EINVAL;
	}
	sum = p->cpu_reservation;
	for (i = 0; snap && i < snap->nvms; i++) {
		if (strcmp(snap->vms[i].name, name))
			sum += snap->vms[i].policy.cpu_reservation;
	}
	/* A relative epsilon so reservations that add up to exactly the host pass. */
	if (sum > capacity * (1.0 + 1e-9)) {
		if (why)
			*why = "CPU reservations would exceed the host's capacity";
		return -ENOSPC;
	}
	return 0;
}

// SPDX-License-Identifier: MIT
/* host/memsched.c: the memory scheduler on the manager's tick: plan, then apply. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "host/host-internal.h"
#include <ovc/memsched.h>

/* One mechanism call, gathered under the host lock and made outside it. */
struct memsched_call {
	struct ovc_balloon *balloon;	/* NULL: no balloon change */
	uint64_t balloon_bytes;
	struct ovc_pager *pager;	/* NULL: no paging */
	uint64_t pages;
};

/*
 * struct ovc__memsched - a host's memory scheduler
 *
 * @enabled, @cfg and @st are under host->lock (set_memsched also holds
 * tick_lock while it changes them). The rest belongs to the tick: only the
 * tick hook touches it, with host->tick_lock held.
 *
 * Lifetime of what a plan is applied to: the hook copies vm->balloon and
 * vm->pager under host->lock and calls them after dropping it. That is safe
 * because the whole hook runs inside host->tick_lock, and ovc_vm_destroy()
 * (which frees the pager) and ovc_balloon_remove() (which frees the balloon)
 * take tick_lock before they unlink: they wait for the tick to end.
 */
struct ovc__memsched {
	bool enabled;
	struct ovc_memsched_config cfg;
	struct ovc_memsched_status st;

	struct ovc_memsched_plan plan[2];	/* plan[cur] is the last made */
	unsigned int cur;
	bool have_prev;
	struct memsched_call *calls;
	unsigned int ncalls_max;
};

static int reserve_calls(struct ovc__memsched *ms, unsigned int n)
{
	struct memsched_call *c;

	if (n <= ms->ncalls_max)
		return 0;
	c = realloc(ms->calls, (size_t)n * sizeof(*c));
	if (!c)
		return -ENOMEM;
	ms->calls = c;
	ms->ncalls_max = n;
	return 0;
}

/* Sum of the VMs' memory reservations, @skip's replaced by @res. Called with host->lock held. */
static uint64_t reservations(struct ovc_host *host, const struct ovc_vm *skip, uint64_t res)
{
	uint64_t sum = res;
	struct ovc_vm *vm;

	cds_list_for_each_entry(vm, &host->vms, node) {
		if (vm != skip)
			sum += vm->policy.mem_reservation_bytes;
	}
	return sum;
}

int ovc__memsched_admit(struct ovc_host *host, const struct ovc_vm *vm,
			const struct ovc_vm_policy *p)
{
	struct ovc__memsched *ms = host->memsched;

	if (!ms || !ms->enabled)
		return 0;
	if (reservations(host, vm, p->mem_reservation_bytes) > ms->cfg.budget_bytes)
		return -ENOSPC;
	return 0;
}

/*
 * The tick hook. Runs in the manager (or a thread running a tick by hand),
 * registered with RCU, host->tick_lock held, host->lock not held.
 */
static void memsched_tick(struct ovc_host *host, void *opaque)
{
	struct ovc__memsched *ms = opaque;
	const struct ovc_memsched_state *prev;
	const struct ovc_stats_snapshot *snap;
	struct ovc_memsched_config cfg;
	struct ovc_memsched_plan *out;
	uint64_t t0, t1, paged = 0, sets = 0, errors = 0;
	unsigned int i, j, ncalls = 0;
	struct ovc_vm *vm;
	bool enabled;
	int ret;

	pthread_mutex_lock(&host->lock);
	enabled = ms->enabled;
	cfg = ms->cfg;
	pthread_mutex_unlock(&host->lock);
	if (!enabled)
		return;
	snap = ovc_stats_get(host);
	if (!snap)
		return;

	prev = ms->have_prev ? &ms->plan[ms->cur].next : NULL;
	out = &ms->plan[ms->cur ^ 1];
	ret = ovc_memsched_plan_reserve(out, snap->nvms);
	if (!ret)
		ret = reserve_calls(ms, snap->nvms);
	if (ret) {
		ovc__err(&host->log, "memsched: no memory for a plan of %u VMs", snap->nvms);
		ovc_stats_put(snap);
		return;
	}
	t0 = ovc__now_ns();
	ret = ovc_memsched_plan(&cfg, snap, prev, out);
	t1 = ovc__now_ns();
	ovc_stats_put(snap);
	if (ret) {
		ovc__err(&host->log, "memsched: plan failed: %s", strerror(-ret));
		return;
	}
	ms->cur ^= 1;
	ms->have_prev = true;

	/* Targets for everyone; mechanism calls gathered for after the lock. */
	pthread_mutex_lock(&host->lock);
	j = 0;
	cds_list_for_each_entry(vm, &host->vms, node) {
		const struct ovc_memsched_vm_plan *pv;
		struct memsched_call *c;

		/* Both lists are in creation order, ids ascending. */
		while (j < out->nvms && out->vms[j].id < vm->id)
			j++;
		if (j == out->nvms)
			break;
		pv = &out->vms[j];
		if (pv->id != vm->id)
			continue;	/* born after the snapshot: next tick */
		vm->targets.mem_target_bytes = pv->target_bytes;
		vm->targets.balloon_target_bytes = pv->balloon_target_bytes;
		vm->targets.reclaim_pages = pv->reclaim_pages;
		c = &ms->calls[ncalls];
		memset(c, 0, sizeof(*c));
		if ((pv->flags & OVC_MEMSCHED_BALLOON) && vm->balloon) {
			c->balloon = vm->balloon;
			c->balloon_bytes = pv->balloon_target_bytes;
		}
		if ((pv->flags & OVC_MEMSCHED_PAGE) && vm->pager) {
			c->pager = vm->pager;
			c->pages = pv->reclaim_pages;
		}
		/*
		 * OVC_MEMSCHED_SHARE: the call point for page sharing. When a
		 * VM has a dedup scanner, this is where it is told to scan this
		 * VM first; until then sharing is skipped like any missing
		 * mechanism.
		 */
		if (c->balloon || c->pager)
			ncalls++;
	}
	ms->st.state = out->state;
	ms->st.plan_ns = t1 - t0;
	if (ms->st.plan_ns > ms->st.plan_ns_max)
		ms->st.plan_ns_max = ms->st.plan_ns;
	ms->st.used_bytes = out->used_bytes;
	ms->st.free_bytes = out->free_bytes;
	pthread_mutex_unlock(&host->lock);

	/* Outside the host lock; tick_lock keeps the balloons and pagers alive. */
	for (i = 0; i < ncalls; i++) {
		struct memsched_call *c = &ms->calls[i];

		if (c->balloon) {
			if (ovc_balloon_set_target(c->balloon, c->balloon_bytes))
				errors++;
			else
				sets++;
		}
		if (c->pager) {
			int64_t got = ovc_pager_reclaim(c->pager, c->pages, NULL);

			if (got < 0)
				errors++;
			else
				paged += (uint64_t)got;
		}
	}
	if (errors)
		ovc__warn(&host->log, "memsched: %llu mechanism calls failed",
			  (unsigned long long)errors);

	pthread_mutex_lock(&host->lock);
	ms->st.ticks++;
	ms->st.apply_ns = ovc__now_ns() - t1;
	ms->st.balloon_sets += sets;
	ms->st.paged += paged;
	ms->st.errors += errors;
	pthread_mutex_unlock(&host->lock);
}

OVC_EXPORT int ovc_host_set_memsched(struct ovc_host *host, const struct ovc_memsched_config *cfg)
{
	struct ovc__memsched *ms;
	const char *why;
	int ret = 0;

	if (!host)
		return -EINVAL;
	if (cfg && ovc_memsched_config_check(cfg, &why)) {
		ovc__err(&host->log, "memsched: configuration refused: %s", why);
		return -EINVAL;
	}
	/* No tick in progress while the scheduler changes. */
	pthread_mutex_lock(&host->tick_lock);
	ms = host->memsched;
	if (!ms) {
		if (!cfg)
			goto out;
		ms = calloc(1, sizeof(*ms));
		if (!ms) {
			ret = -ENOMEM;
			goto out;
		}
		ovc_memsched_plan_init(&ms->plan[0]);
		ovc_memsched_plan_init(&ms->plan[1]);
		ret = ovc__host_add_tick_hook(host, memsched_tick, ms);
		if (ret) {
			ovc__err(&host->log, "memsched: no tick hook slot left");
			free(ms);
			ret = -EBUSY;
			goto out;
		}
		pthread_mutex_lock(&host->lock);
		host->memsched = ms;
		pthread_mutex_unlock(&host->lock);
	}
	pthread_mutex_lock(&host->lock);
	if (cfg) {
		uint64_t res = reservations(host, NULL, 0);

		if (res > cfg->budget_bytes) {
			ovc__err(&host->log,
				 "memsched: reservations (%llu bytes) exceed the budget (%llu bytes)",
				 (unsigned long long)res, (unsigned long long)cfg->budget_bytes);
			ret = -ENOSPC;
		} else {
			/* Re-enabled after a pause: the old plan no longer describes the VMs. */
			if (!ms->enabled)
				ms->have_prev = false;
			ms->cfg = *cfg;
			ms->enabled = true;
		}
	} else {
		ms->enabled = false;
	}
	ms->st.enabled = ms->enabled;
	pthread_mutex_unlock(&host->lock);
out:
	pthread_mutex_unlock(&host->tick_lock);
	return ret;
}

OVC_EXPORT int ovc_host_get_memsched(struct ovc_host *host, struct ovc_memsched_config *cfg,
				     struct ovc_memsched_status *st)
{
	struct ovc__memsched *ms;

	if (!host)
		return -EINVAL;
	pthread_mutex_lock(&host->lock);
	ms = host->memsched;
	if (cfg) {
		if (ms)
			*cfg = ms->cfg;
		else
			ovc_memsched_config_init(cfg);
	}
	if (st) {
		if (ms)
			*st = ms->st;
		else
			memset(st, 0, sizeof(*st));
	}
	pthread_mutex_unlock(&host->lock);
	return 0;
}

void ovc__memsched_free(struct ovc_host *host)
{
	struct ovc__memsched *ms = host->memsched;

	if (!ms)
		return;
	host->memsched = NULL;
	ovc_memsched_plan_fini(&ms->plan[0]);
	ovc_memsched_plan_fini(&ms->plan[1]);
	free(ms->calls);
	free(ms);
}

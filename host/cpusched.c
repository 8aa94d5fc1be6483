// SPDX-License-Identifier: MIT
/* host/cpusched.c: the CPU scheduler's tick: plan from the snapshot, targets under the host lock, backend. */
#include <errno.h>
#include <math.h>
#include <numaif.h>
#include <stdlib.h>
#include <string.h>

#include <ovc/cpusched.h>
#include "host/host-internal.h"

/*
 * struct ovc__cpusched - one host's CPU scheduler. Everything here is
 * touched only by the tick hook (the manager thread, one tick at a time)
 * and by ovc__cpusched_destroy() after the manager stopped, except @cfg's
 * capacity, read by ovc__cpusched_admit() (immutable after setup).
 */
struct ovc__cpusched {
	struct ovc_host *host;
	struct ovc_cpusched_config cfg;
	char backend[32];
	char cg_root[256];
	char cg_cpuset_root[256];
	char xml[512];
	const struct ovc_cpu_enforce_ops *ops;
	void *state;
	struct ovc_topology *topo;
	bool topo_real;			/* placement may be applied (not an XML machine) */
	int **node_cpus;		/* per node: its cores' first CPUs, -1 terminated */
	const struct ovc_stats_snapshot *prev;
	struct ovc_cpu_plan plans[2];
	unsigned int cur;
	struct ovc_cpu_placement pl;
	uint64_t last_rebalance_ns;
	uint64_t *applied;		/* VM ids the backend has state for */
	int *bound;			/* home node each applied VM's RAM is bound to */
	unsigned int napplied, cap_applied;
	pid_t tids[OVC_VM_VCPUS_MAX];
	int cpus[OVC_VM_VCPUS_MAX];
};

static int remember(struct ovc__cpusched *cs, uint64_t id)
{
	unsigned int i;

	for (i = 0; i < cs->napplied; i++) {
		if (cs->applied[i] == id)
			return (int)i;
	}
	if (cs->napplied == cs->cap_applied) {
		unsigned int cap = cs->cap_applied ? cs->cap_applied * 2 : 16;
		uint64_t *a = realloc(cs->applied, sizeof(*a) * cap);
		int *b;

		if (!a)
			return -1;
		cs->applied = a;
		b = realloc(cs->bound, sizeof(*b) * cap);
		if (!b)
			return -1;
		cs->bound = b;
		cs->cap_applied = cap;
	}
	cs->applied[cs->napplied] = id;
	cs->bound[cs->napplied] = -1;
	return (int)cs->napplied++;
}

/* Bind @vm's RAM to NUMA node @os_node (moving what is resident). Called with host->lock held. */
static void bind_ram(struct ovc__cpusched *cs, struct ovc_vm *vm, int os_node)
{
	struct ovc_ram *ram = ovc__vm_ram(vm);
	unsigned long mask[16] = { 0 };
	unsigned int i, n;

	if (!ram || os_node < 0 || os_node >= (int)(sizeof(mask) * 8))
		return;
	mask[os_node / (8 * sizeof(long))] |= 1UL << (os_node % (8 * sizeof(long)));
	n = atomic_load_explicit(&ram->nregions, memory_order_acquire);
	for (i = 0; i < n; i++) {
		struct ovc_region *rg = &ram->regions[i];

		if (mbind(rg->hva, rg->size, MPOL_BIND, mask, sizeof(mask) * 8, MPOL_MF_MOVE))
			ovc__warn(&cs->host->log, "vm %s: cannot bind RAM at %#llx to node %d: %s",
				  vm->name, (unsigned long long)rg->gpa, os_node, strerror(errno));
	}
}

/* Called with host->lock held. */
static void apply_vm(struct ovc__cpusched *cs, struct ovc_vm *vm, unsigned int pi, bool placed)
{
	const struct ovc_cpu_vm_plan *p = &cs->plans[cs->cur].vms[pi];
	struct ovc_cpu_enforce_vm e = {
		.id = vm->id, .name = vm->name, .tids = cs->tids, .cpus = cs->cpus,
		.shares = p->shares, .entitled = p->entitled, .reservation = p->reservation,
		.limit = vm->policy.cpu_limit, .capacity = cs->plans[cs->cur].capacity,
	};
	struct ovc_vcpu *v;
	int slot, ret;

	vm->targets.cpu_entitled = p->entitled;
	vm->targets.cpu_demand = p->demand;
	if (!cs->ops)
		return;
	cds_list_for_each_entry(v, &vm->vcpus, node) {
		unsigned int k = e.nvcpus;

		cs->tids[k] = v->tid;
		cs->cpus[k] = -1;
		/* The placement is by the snapshot's vCPUs; ones added since wait a tick. */
		if (placed && k < p->nvcpus)
			cs->cpus[k] = ovc_topology_core_cpu(cs->topo, cs->pl.vcpu_core[cs->pl.vcpu_first[pi] + k]);
		e.nvcpus++;
	}
	if (placed && p->home_node >= 0)
		e.node_cpus = cs->node_cpus[p->home_node];
	else
		e.cpus = NULL;
	slot = remember(cs, vm->id);
	if (slot < 0)
		return;
	ret = cs->ops->apply(cs->state, &e);
	if (ret)
		ovc__warn(&cs->host->log, "vm %s: %s: cannot apply CPU entitlement: %s",
			  vm->name, cs->ops->name, strerror(-ret));
	if (placed && cs->cfg.bind_memory && p->home_node >= 0 && cs->bound[slot] != p->home_node) {
		bind_ram(cs, vm, ovc_topology_node_os_index(cs->topo, (unsigned int)p->home_node));
		cs->bound[slot] = p->home_node;
	}
}

static void tick(struct ovc_host *host, void *opaque)
{
	struct ovc__cpusched *cs = opaque;
	const struct ovc_stats_snapshot *snap;
	struct ovc_cpu_plan *plan, *prev_plan;
	bool placed = false;
	struct ovc_vm *vm;
	unsigned int i, pi = 0;
	uint64_t now;
	int ret;

	snap = ovc_stats_get(host);
	if (!snap)
		return;
	if (snap == cs->prev) {
		ovc_stats_put(snap);
		return;
	}
	prev_plan = cs->prev ? &cs->plans[cs->cur] : NULL;
	plan = &cs->plans[cs->cur ^ 1];
	ret = ovc_cpu_plan_compute(cs->prev, snap, prev_plan, &cs->cfg, plan);
	if (ret) {
		ovc__warn(&host->log, "cpusched: no plan this tick: %s", strerror(-ret));
		ovc_stats_put(snap);
		return;
	}
	cs->cur ^= 1;
	if (cs->topo && cs->cfg.place) {
		now = ovc__now_ns();
		ret = ovc_cpu_place(cs->topo, plan,
				    now - cs->last_rebalance_ns >= cs->cfg.rebalance_ms * 1000000ULL,
				    cs->cfg.imbalance_pct, &cs->pl);
		if (!ret && now - cs->last_rebalance_ns >= cs->cfg.rebalance_ms * 1000000ULL)
			cs->last_rebalance_ns = now;
		placed = !ret && cs->topo_real;
	}

	pthread_mutex_lock(&host->lock);
	/* Both lists are in creation (id) order: one merge walk. */
	cds_list_for_each_entry(vm, &host->vms, node) {
		while (pi < plan->nvms && plan->vms[pi].id < vm->id)
			pi++;
		if (pi < plan->nvms && plan->vms[pi].id == vm->id)
			apply_vm(cs, vm, pi, placed);
	}
	/* VMs gone since the last tick: the backend undoes what it did for them. */
	for (i = 0; i < cs->napplied;) {
		bool alive = false;

		cds_list_for_each_entry(vm, &host->vms, node)
			alive |= vm->id == cs->applied[i];
		if (alive) {
			i++;
			continue;
		}
		if (cs->ops)
			cs->ops->forget(cs->state, cs->applied[i]);
		cs->napplied--;
		cs->applied[i] = cs->applied[cs->napplied];
		cs->bound[i] = cs->bound[cs->napplied];
	}
	pthread_mutex_unlock(&host->lock);

	if (cs->prev)
		ovc_stats_put(cs->prev);
	cs->prev = snap;
}

void ovc__cpusched_destroy(struct ovc__cpusched *cs)
{
	unsigned int n;

	if (!cs)
		return;
	if (cs->ops)
		cs->ops->close(cs->state);
	if (cs->prev)
		ovc_stats_put(cs->prev);
	ovc_cpu_plan_fini(&cs->plans[0]);
	ovc_cpu_plan_fini(&cs->plans[1]);
	ovc_cpu_placement_fini(&cs->pl);
	if (cs->node_cpus) {
		for (n = 0; n < ovc_topology_nodes(cs->topo); n++)
			free(cs->node_cpus[n]);
		free(cs->node_cpus);
	}
	ovc_topology_destroy(cs->topo);
	free(cs->applied);
	free(cs->bound);
	free(cs);
}

static int node_lists(struct ovc__cpusched *cs)
{
	unsigned int n, c, k, nn = ovc_topology_nodes(cs->topo), nc = ovc_topology_cores(cs->topo, -1);

	cs->node_cpus = calloc(nn, sizeof(int *));
	if (!cs->node_cpus)
		return -ENOMEM;
	for (n = 0; n < nn; n++) {
		cs->node_cpus[n] = malloc(sizeof(int) * (nc + 1));
		if (!cs->node_cpus[n])
			return -ENOMEM;
		for (c = 0, k = 0; c < nc; c++) {
			if (ovc_topology_core_node(cs->topo, c) == (int)n)
				cs->node_cpus[n][k++] = ovc_topology_core_cpu(cs->topo, c);
		}
		cs->node_cpus[n][k] = -1;
	}
	return 0;
}

static void copy_str(char *dst, size_t len, const char **field)
{
	if (!*field)
		return;
	snprintf(dst, len, "%s", *field);
	*field = dst;
}

OVC_EXPORT int ovc_host_set_cpusched(struct ovc_host *host, const struct ovc_cpusched_config *cfg)
{
	struct ovc__cpusched *cs;
	char why[256] = "";
	int ret;

	if (!host)
		return -EINVAL;
	cs = calloc(1, sizeof(*cs));
	if (!cs)
		return -ENOMEM;
	cs->host = host;
	if (cfg)
		cs->cfg = *cfg;
	else
		ovc_cpusched_config_init(&cs->cfg);
	if (!isfinite(cs->cfg.capacity) || cs->cfg.capacity < 0 || !isfinite(cs->cfg.imbalance_pct) ||
	    !(cs->cfg.demand_decay >= 0 && cs->cfg.demand_decay < 1) ||
	    !isfinite(cs->cfg.demand_headroom) || cs->cfg.demand_headroom < 0) {
		ovc__err(&host->log, "cpusched: bad configuration");
		free(cs);
		return -EINVAL;
	}
	copy_str(cs->backend, sizeof(cs->backend), &cs->cfg.backend);
	copy_str(cs->cg_root, sizeof(cs->cg_root), &cs->cfg.cgroup_root);
	copy_str(cs->cg_cpuset_root, sizeof(cs->cg_cpuset_root), &cs->cfg.cgroup_cpuset_root);
	copy_str(cs->xml, sizeof(cs->xml), &cs->cfg.topology_xml);

	if (cs->cfg.place) {
		cs->topo = ovc_topology_load(cs->cfg.topology_xml);
		if (!cs->topo) {
			ret = -errno;
			ovc__err(&host->log, "cpusched: cannot load the topology%s%s: %s",
				 cs->cfg.topology_xml ? " " : "",
				 cs->cfg.topology_xml ? cs->cfg.topology_xml : "", strerror(errno));
			goto err_free;
		}
		cs->topo_real = !cs->cfg.topology_xml;
		ret = node_lists(cs);
		if (ret)
			goto err_free;
	}
	cs->ops = ovc_cpu_enforce_find(&cs->cfg, why, sizeof(why));
	if (!cs->ops && errno) {
		ret = -errno;
		ovc__err(&host->log, "cpusched: %s", why);
		goto err_free;
	}
	if (cs->ops) {
		ret = cs->ops->open(&cs->cfg, host, &cs->state, why, sizeof(why));
		if (ret) {
			ovc__err(&host->log, "cpusched: %s", why);
			cs->ops = NULL;
			goto err_free;
		}
	}
	pthread_mutex_lock(&host->lock);
	if (host->cpusched) {
		pthread_mutex_unlock(&host->lock);
		ret = -EALREADY;
		goto err_free;
	}
	host->cpusched = cs;
	pthread_mutex_unlock(&host->lock);
	ret = ovc__host_add_tick_hook(host, tick, cs);
	if (ret) {
		/* The host keeps it and frees it in destroy; it just never runs. */
		ovc__err(&host->log, "cpusched: no room for the tick hook");
		return ret;
	}
	ovc__info(&host->log, "cpusched: backend %s, %u node(s), %u core(s)",
		  cs->ops ? cs->ops->name : "none", ovc_topology_nodes(cs->topo),
		  ovc_topology_cores(cs->topo, -1));
	return 0;

err_free:
	ovc__cpusched_destroy(cs);
	return ret;
}

OVC_EXPORT const char *ovc_host_cpusched_backend(struct ovc_host *host)
{
	const char *name = "none";

	if (!host)
		return name;
	pthread_mutex_lock(&host->lock);
	if (host->cpusched && host->cpusched->ops)
		name = host->cpusched->ops->name;
	pthread_mutex_unlock(&host->lock);
	return name;
}

int ovc__cpusched_admit(struct ovc_host *host, struct ovc_vm *vm,
			 const struct ovc_vm_policy *p)
{
	struct ovc_vm *it;
	double sum, cap;

	cap = host->cpusched && host->cpusched->cfg.capacity > 0 ? host->cpusched->cfg.capacity :
	      (double)host->ncpus;
	sum = p->cpu_reservation;
	cds_list_for_each_entry(it, &host->vms, node) {
		if (it != vm)
			sum += it->policy.cpu_reservation;
	}
	return sum > cap * (1.0 + 1e-9) ? -ENOSPC : 0;
}

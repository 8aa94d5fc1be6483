// SPDX-License-Identifier: MIT
/* scheduler/placement.c: NUMA home nodes and vCPU cores from a hwloc topology (real or XML). */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <hwloc.h>

#include <ovc/cpusched.h>

/*
 * The topology flattened once at load: cores in logical order, each with
 * its node and first PU, so placement never walks hwloc objects.
 */
struct ovc_topology {
	hwloc_topology_t topo;
	unsigned int nnodes;
	unsigned int ncores;
	int *node_os;		/* nnodes: OS index of each node */
	unsigned int *node_ncores;	/* nnodes */
	int *core_cpu;		/* ncores: OS index of the core's first PU */
	int *core_node;		/* ncores: logical node */
	unsigned int *node_first;	/* nnodes + 1: node n's cores are node_core[node_first[n]..] */
	unsigned int *node_core;	/* ncores: core indexes grouped by node */
};

static int node_of(hwloc_topology_t t, hwloc_obj_t core, unsigned int nnodes)
{
	unsigned int i;

	for (i = 0; i < nnodes; i++) {
		hwloc_obj_t n = hwloc_get_obj_by_type(t, HWLOC_OBJ_NUMANODE, i);

		if (n && hwloc_bitmap_intersects(n->cpuset, core->cpuset))
			return (int)i;
	}
	return 0;
}

OVC_EXPORT struct ovc_topology *ovc_topology_load(const char *xml_path)
{
	struct ovc_topology *t;
	hwloc_obj_type_t ctype = HWLOC_OBJ_CORE;
	unsigned int i;
	int err = ENOMEM, n;

	t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	if (hwloc_topology_init(&t->topo)) {
		err = errno ? errno : ENOMEM;
		goto err_free;
	}
	if (xml_path && hwloc_topology_set_xml(t->topo, xml_path)) {
		err = errno ? errno : EINVAL;
		goto err_destroy;
	}
	if (hwloc_topology_load(t->topo)) {
		err = errno ? errno : EINVAL;
		goto err_destroy;
	}
	n = hwloc_get_nbobjs_by_type(t->topo, HWLOC_OBJ_NUMANODE);
	t->nnodes = n > 0 ? (unsigned int)n : 1;
	n = hwloc_get_nbobjs_by_type(t->topo, HWLOC_OBJ_CORE);
	if (n <= 0) {
		/* Some machines (and XML files) show PUs only. */
		ctype = HWLOC_OBJ_PU;
		n = hwloc_get_nbobjs_by_type(t->topo, HWLOC_OBJ_PU);
	}
	if (n <= 0) {
		err = EINVAL;
		goto err_destroy;
	}
	t->ncores = (unsigned int)n;
	t->node_os = calloc(t->nnodes, sizeof(int));
	t->node_ncores = calloc(t->nnodes, sizeof(unsigned int));
	t->core_cpu = calloc(t->ncores, sizeof(int));
	t->core_node = calloc(t->ncores, sizeof(int));
	t->node_first = calloc(t->nnodes + 1, sizeof(unsigned int));
	t->node_core = calloc(t->ncores, sizeof(unsigned int));
	if (!t->node_os || !t->node_ncores || !t->core_cpu || !t->core_node || !t->node_first ||
	    !t->node_core)
		goto err_arrays;
	for (i = 0; i < t->nnodes; i++) {
		hwloc_obj_t nd = hwloc_get_obj_by_type(t->topo, HWLOC_OBJ_NUMANODE, i);

		t->node_os[i] = nd ? (int)nd->os_index : 0;
	}
	for (i = 0; i < t->ncores; i++) {
		hwloc_obj_t c = hwloc_get_obj_by_type(t->topo, ctype, i);
		int pu = c ? hwloc_bitmap_first(c->cpuset) : -1;

		t->core_cpu[i] = pu;
		t->core_node[i] = c ? node_of(t->topo, c, t->nnodes) : 0;
		t->node_ncores[t->core_node[i]]++;
	}
	for (i = 0; i < t->nnodes; i++)
		t->node_first[i + 1] = t->node_first[i] + t->node_ncores[i];
	for (i = 0, n = 0; i < t->nnodes; i++) {
		unsigned int c;

		for (c = 0; c < t->ncores; c++) {
			if (t->core_node[c] == (int)i)
				t->node_core[n++] = c;
		}
	}
	return t;

err_arrays:
	free(t->node_first);
	free(t->node_core);
	free(t->node_os);
	free(t->node_ncores);
	free(t->core_cpu);
	free(t->core_node);
err_destroy:
	hwloc_topology_destroy(t->topo);
err_free:
	free(t);
	errno = err;
	return NULL;
}

OVC_EXPORT void ovc_topology_destroy(struct ovc_topology *t)
{
	if (!t)
		return;
	hwloc_topology_destroy(t->topo);
	free(t->node_os);
	free(t->node_ncores);
	free(t->core_cpu);
	free(t->core_node);
	free(t->node_first);
	free(t->node_core);
	free(t);
}

OVC_EXPORT unsigned int ovc_topology_nodes(const struct ovc_topology *t)
{
	return t ? t->nnodes : 0;
}

OVC_EXPORT unsigned int ovc_topology_cores(const struct ovc_topology *t, int node)
{
	if (!t)
		return 0;
	if (node < 0)
		return t->ncores;
	return (unsigned int)node < t->nnodes ? t->node_ncores[node] : 0;
}

OVC_EXPORT int ovc_topology_node_os_index(const struct ovc_topology *t, unsigned int node)
{
	return t && node < t->nnodes ? t->node_os[node] : -1;
}

OVC_EXPORT int ovc_topology_core_cpu(const struct ovc_topology *t, unsigned int core)
{
	return t && core < t->ncores ? t->core_cpu[core] : -1;
}

OVC_EXPORT int ovc_topology_core_node(const struct ovc_topology *t, unsigned int core)
{
	return t && core < t->ncores ? t->core_node[core] : -1;
}

static int grow(struct ovc_cpu_placement *pl, unsigned int nvms, unsigned int nvcpus,
		unsigned int nnodes)
{
	if (nvms + 1 > pl->cap_vms) {
		unsigned int *f = realloc(pl->vcpu_first, sizeof(*f) * (nvms + 1));

		if (!f)
			return -ENOMEM;
		pl->vcpu_first = f;
		pl->cap_vms = nvms + 1;
	}
	if (nvcpus > pl->cap_vcpus) {
		unsigned int *c = realloc(pl->vcpu_core, sizeof(*c) * nvcpus);

		if (!c)
			return -ENOMEM;
		pl->vcpu_core = c;
		pl->cap_vcpus = nvcpus;
	}
	if (nnodes != pl->nnodes || !pl->node_load) {
		double *l = realloc(pl->node_load, sizeof(*l) * nnodes);

		if (!l)
			return -ENOMEM;
		pl->node_load = l;
		pl->nnodes = nnodes;
	}
	return 0;
}

/* Load per core of node @n, if @add more were put on it. */
static double per_core(const struct ovc_topology *t, const double *load, unsigned int n, double add)
{
	return (load[n] + add) / (double)(t->node_ncores[n] ? t->node_ncores[n] : 1);
}

static void spread(const struct ovc_topology *t, const double *load, unsigned int *lo,
		   unsigned int *hi)
{
	unsigned int n;

	*lo = *hi = 0;
	for (n = 1; n < t->nnodes; n++) {
		if (per_core(t, load, n, 0) < per_core(t, load, *lo, 0))
			*lo = n;
		if (per_core(t, load, n, 0) > per_core(t, load, *hi, 0))
			*hi = n;
	}
}

/* What a VM weighs on its node: its entitlement, at least a little so idle VMs spread too. */
static double weight(const struct ovc_cpu_vm_plan *v)
{
	return fmax(v->entitled, 0.01 * (double)(v->nvcpus ? v->nvcpus : 1));
}

OVC_EXPORT int ovc_cpu_place(const struct ovc_topology *t, struct ovc_cpu_plan *plan,
			     bool rebalance, double imbalance_pct,
			     struct ovc_cpu_placement *out)
{
	unsigned int i, j, n, nvcpus = 0, lo, hi, moves;
	double *core_load;
	int ret;

	if (!t || !plan || !out || !isfinite(imbalance_pct) || imbalance_pct < 0.0)
		return -EINVAL;
	for (i = 0; i < plan->nvms; i++)
		nvcpus += plan->vms[i].nvcpus;
	ret = grow(out, plan->nvms, nvcpus, t->nnodes);
	if (ret)
		return ret;
	core_load = calloc(t->ncores, sizeof(double));
	if (!core_load)
		return -ENOMEM;
	out->nvms = plan->nvms;
	out->nvcpus = nvcpus;
	out->moved = 0;
	for (n = 0; n < t->nnodes; n++)
		out->node_load[n] = 0.0;

	/* VMs keep their homes; new ones (or ones on a node that vanished) are placed after. */
	for (i = 0; i < plan->nvms; i++) {
		struct ovc_cpu_vm_plan *v = &plan->vms[i];

		if (v->home_node >= 0 && (unsigned int)v->home_node < t->nnodes)
			out->node_load[v->home_node] += weight(v);
		else
			v->home_node = -1;
	}
	for (i = 0; i < plan->nvms; i++) {
		struct ovc_cpu_vm_plan *v = &plan->vms[i];
		unsigned int best = 0;

		if (v->home_node >= 0)
			continue;
		for (n = 1; n < t->nnodes; n++) {
			if (per_core(t, out->node_load, n, weight(v)) <
			    per_core(t, out->node_load, best, weight(v)))
				best = n;
		}
		v->home_node = (int)best;
		out->node_load[best] += weight(v);
		out->moved++;
	}

	/*
	 * Rebalance: move the VM from the busiest node that best closes the gap
	 * to the idlest, while the spread is at least @imbalance_pct of a core
	 * and each move makes it smaller. Bounded, so one call stays cheap.
	 */
	for (moves = 0; rebalance && t->nnodes > 1 && moves < plan->nvms; moves++) {
		double gap, best_after, after;
		int pick = -1;

		spread(t, out->node_load, &lo, &hi);
		gap = per_core(t, out->node_load, hi, 0) - per_core(t, out->node_load, lo, 0);
		if (gap * 100.0 < imbalance_pct)
			break;
		best_after = gap;
		for (i = 0; i < plan->nvms; i++) {
			const struct ovc_cpu_vm_plan *v = &plan->vms[i];
			double w = weight(v);

			if (v->home_node != (int)hi)
				continue;
			after = fabs(per_core(t, out->node_load, hi, -w) -
				     per_core(t, out->node_load, lo, w));
			if (after < best_after - 1e-12) {
				best_after = after;
				pick = (int)i;
			}
		}
		if (pick < 0)
			break;
		out->node_load[hi] -= weight(&plan->vms[pick]);
		out->node_load[lo] += weight(&plan->vms[pick]);
		plan->vms[pick].home_node = (int)lo;
		out->moved++;
	}

	/* vCPUs on the least loaded cores of their node, each carrying an even part of the VM. */
	nvcpus = 0;
	for (i = 0; i < plan->nvms; i++) {
		const struct ovc_cpu_vm_plan *v = &plan->vms[i];
		double part = weight(v) / (double)(v->nvcpus ? v->nvcpus : 1);

		out->vcpu_first[i] = nvcpus;
		for (j = 0; j < v->nvcpus; j++) {
			unsigned int x, best = t->ncores, h = (unsigned int)v->home_node;

			for (x = t->node_first[h]; x < t->node_first[h + 1]; x++) {
				unsigned int c = t->node_core[x];

				if (best == t->ncores || core_load[c] < core_load[best])
					best = c;
			}
			if (best == t->ncores)
				best = 0;
			core_load[best] += part;
			out->vcpu_core[nvcpus++] = best;
		}
	}
	out->vcpu_first[plan->nvms] = nvcpus;
	spread(t, out->node_load, &lo, &hi);
	out->imbalance_pct = 100.0 * (per_core(t, out->node_load, hi, 0) -
				      per_core(t, out->node_load, lo, 0));
	free(core_load);
	return 0;
}

OVC_EXPORT void ovc_cpu_placement_fini(struct ovc_cpu_placement *pl)
{
	if (!pl)
		return;
	free(pl->vcpu_first);
	free(pl->vcpu_core);
	free(pl->node_load);
	memset(pl, 0, sizeof(*pl));
}

// SPDX-License-Identifier: MIT
/* scheduler/enforce-cgroup1.c: entitlements as cgroup v1 cpu.shares, CFS quota and cpuset.cpus. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "scheduler/sched-internal.h"

#define DEFAULT_CPU "/sys/fs/cgroup/cpu"
#define DEFAULT_CPUSET "/sys/fs/cgroup/cpuset"
#define CFS_PERIOD_US 100000
#define SHARES_MAX 262144

/*
 * Layout: CPU/ovc-PID/vm-ID and CPUSET/ovc-PID/vm-ID per VM, holding only
 * that VM's vCPU threads (v1 moves single threads through "tasks"). Each
 * thread goes back to the group it came from when the VM is forgotten.
 */
struct cg1 {
	char cpu_root[256];
	char set_root[256];
	char cpu_dir[300];
	char set_dir[300];	/* "" without cpusets */
	struct ovc__cg_vm **vms;	/* cpu hierarchy: thread, group it came from */
	unsigned int nvms;
	struct ovc__cg_vm **sets;	/* cpuset hierarchy */
	unsigned int nsets;
};

static const char *cpu_root(const struct ovc_cpusched_config *cfg)
{
	return cfg && cfg->cgroup_root && *cfg->cgroup_root ? cfg->cgroup_root : DEFAULT_CPU;
}

static const char *set_root(const struct ovc_cpusched_config *cfg)
{
	if (cfg && cfg->cgroup_cpuset_root)
		return cfg->cgroup_cpuset_root;
	return DEFAULT_CPUSET;
}

static int probe(const struct ovc_cpusched_config *cfg, char *why, size_t len)
{
	const char *root = cpu_root(cfg);
	char v[64];
	int ret;

	ret = ovc__cg_read(root, "cpu.shares", v, sizeof(v));
	if (ret) {
		ovc__why(why, len, "cgroup1: no cpu controller at %s (%s)", root, strerror(-ret));
		return ret;
	}
	if (access(root, W_OK)) {
		ret = -errno;
		ovc__why(why, len, "cgroup1: cannot write to %s (%s)", root, strerror(errno));
		return ret;
	}
	return 0;
}

/* A new cpuset group needs cpus and mems before it takes threads: copy the parent's. */
static int cpuset_init(const char *parent, const char *dir)
{
	char v[1024];
	int ret;

	if ((ret = ovc__cg_read(parent, "cpuset.mems", v, sizeof(v))) ||
	    (ret = ovc__cg_write(dir, "cpuset.mems", false, "%s", v)))
		return ret;
	if ((ret = ovc__cg_read(parent, "cpuset.cpus", v, sizeof(v))) ||
	    (ret = ovc__cg_write(dir, "cpuset.cpus", false, "%s", v)))
		return ret;
	return 0;
}

static int open_(const struct ovc_cpusched_config *cfg, struct ovc_host *host, void **state,
		 char *why, size_t len)
{
	struct cg1 *cg;
	int ret;

	ret = probe(cfg, why, len);
	if (ret)
		return ret;
	cg = calloc(1, sizeof(*cg));
	if (!cg)
		return -ENOMEM;
	snprintf(cg->cpu_root, sizeof(cg->cpu_root), "%s", cpu_root(cfg));
	snprintf(cg->set_root, sizeof(cg->set_root), "%s", set_root(cfg));
	snprintf(cg->cpu_dir, sizeof(cg->cpu_dir), "%s/ovc-%d", cg->cpu_root, (int)getpid());
	if (mkdir(cg->cpu_dir, 0755) && errno != EEXIST) {
		ret = -errno;
		ovc__why(why, len, "cgroup1: mkdir %s: %s", cg->cpu_dir, strerror(errno));
		free(cg);
		return ret;
	}
	if (*cg->set_root) {
		snprintf(cg->set_dir, sizeof(cg->set_dir), "%s/ovc-%d", cg->set_root, (int)getpid());
		if ((mkdir(cg->set_dir, 0755) && errno != EEXIST) ||
		    cpuset_init(cg->set_root, cg->set_dir)) {
			/* Without cpusets, placement is left to the scheduler; shares still work. */
			ovc__cg_rmdir(cg->set_dir);
			cg->set_dir[0] = 0;
		}
	}
	*state = cg;
	return 0;
}

static void put_back(const char *root, struct ovc__moved *m)
{
	char dir[600];

	snprintf(dir, sizeof(dir), "%s%s", root, strcmp(m->from, "/") ? m->from : "");
	ovc__cg_write(dir, "tasks", true, "%d", (int)m->tid);
}

/* Move @vm's threads into @dir, remembering where each came from; send back those gone. */
static int sync_threads(const char *root, const char *controller, const char *dir,
			struct ovc__cg_vm *e, const struct ovc_cpu_enforce_vm *vm)
{
	unsigned int i, j;
	int ret;

	for (i = 0; i < e->nmoved;) {
		if (!ovc__tid_in(vm, e->moved[i].tid)) {
			put_back(root, &e->moved[i]);
			e->moved[i] = e->moved[--e->nmoved];
		} else {
			i++;
		}
	}
	for (i = 0; i < vm->nvcpus; i++) {
		struct ovc__moved *m;

		for (j = 0; j < e->nmoved && e->moved[j].tid != vm->tids[i]; j++)
			;
		if (j < e->nmoved || e->nmoved >= OVC_VM_VCPUS_MAX)
			continue;
		m = &e->moved[e->nmoved];
		if (ovc__cg_of_thread(vm->tids[i], controller, m->from, sizeof(m->from)))
			snprintf(m->from, sizeof(m->from), "/");
		ret = ovc__cg_write(dir, "tasks", true, "%d", (int)vm->tids[i]);
		if (ret)
			return ret;
		m->tid = vm->tids[i];
		e->nmoved++;
	}
	return 0;
}

static int apply(void *state, const struct ovc_cpu_enforce_vm *vm)
{
	struct cg1 *cg = state;
	struct ovc__cg_vm *e = ovc__cg_vm_get(&cg->vms, &cg->nvms, vm->id, true);
	double cap = vm->capacity > 0 ? vm->capacity : 1.0;
	char dir[400], list[1024];
	long long shares;
	int ret;

	if (!e)
		return -ENOMEM;
	snprintf(dir, sizeof(dir), "%s/vm-%llu", cg->cpu_dir, (unsigned long long)vm->id);
	if (!e->made) {
		if (mkdir(dir, 0755) && errno != EEXIST)
			return -errno;
		e->made = true;
	}
	shares = llround(SHARES_MAX * fmax(vm->entitled, 0.001) / cap);
	shares = shares < 2 ? 2 : shares > SHARES_MAX ? SHARES_MAX : shares;
	if ((ret = ovc__cg_write(dir, "cpu.shares", false, "%lld", shares)) ||
	    (ret = ovc__cg_write(dir, "cpu.cfs_period_us", false, "%d", CFS_PERIOD_US)) ||
	    (ret = ovc__cg_write(dir, "cpu.cfs_quota_us", false, "%lld",
				 vm->limit > 0 ? (long long)llround(vm->limit * CFS_PERIOD_US) : -1LL)))
		return ret;
	ret = sync_threads(cg->cpu_root, "cpu", dir, e, vm);
	if (ret || !*cg->set_dir)
		return ret;

	e = ovc__cg_vm_get(&cg->sets, &cg->nsets, vm->id, true);
	if (!e)
		return -ENOMEM;
	snprintf(dir, sizeof(dir), "%s/vm-%llu", cg->set_dir, (unsigned long long)vm->id);
	if (!e->made) {
		if (mkdir(dir, 0755) && errno != EEXIST)
			return -errno;
		e->made = true;
		ret = cpuset_init(cg->set_dir, dir);
		if (ret)
			return ret;
	}
	if (vm->node_cpus) {
		ovc__cpulist(vm->node_cpus, list, sizeof(list));
		ret = ovc__cg_write(dir, "cpuset.cpus", false, "%s", list);
		if (ret)
			return ret;
	}
	return sync_threads(cg->set_root, "cpuset", dir, e, vm);
}

static void forget_in(const char *root, const char *parent, struct ovc__cg_vm **vms,
		      unsigned int *n, struct ovc__cg_vm *e)
{
	char dir[400];
	unsigned int i;

	for (i = 0; i < e->nmoved; i++)
		put_back(root, &e->moved[i]);
	snprintf(dir, sizeof(dir), "%s/vm-%llu", parent, (unsigned long long)e->id);
	if (e->made)
		ovc__cg_rmdir(dir);
	ovc__cg_vm_drop(vms, n, e);
}

static void forget(void *state, uint64_t id)
{
	struct cg1 *cg = state;
	struct ovc__cg_vm *e;

	e = ovc__cg_vm_get(&cg->vms, &cg->nvms, id, false);
	if (e)
		forget_in(cg->cpu_root, cg->cpu_dir, cg->vms, &cg->nvms, e);
	e = ovc__cg_vm_get(&cg->sets, &cg->nsets, id, false);
	if (e)
		forget_in(cg->set_root, cg->set_dir, cg->sets, &cg->nsets, e);
}

static void close_(void *state)
{
	struct cg1 *cg = state;

	if (!cg)
		return;
	while (cg->nvms)
		forget(cg, cg->vms[0]->id);
	while (cg->nsets)
		forget(cg, cg->sets[0]->id);
	ovc__cg_rmdir(cg->cpu_dir);
	if (*cg->set_dir)
		ovc__cg_rmdir(cg->set_dir);
	free(cg->vms);
	free(cg->sets);
	free(cg);
}

const struct ovc_cpu_enforce_ops ovc_cpu_enforce_cgroup1 = {
	.name = "cgroup1",
	.probe = probe,
	.open = open_,
	.apply = apply,
	.forget = forget,
	.close = close_,
};

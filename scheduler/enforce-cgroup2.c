// SPDX-License-Identifier: MIT
/* scheduler/enforce-cgroup2.c: entitlements as cgroup v2 cpu.weight, cpu.max and cpuset.cpus. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "scheduler/sched-internal.h"

#define DEFAULT_ROOT "/sys/fs/cgroup/unified"
#define CFS_PERIOD_US 100000

/*
 * Layout: ROOT/ovc-PID is a threaded domain holding the whole process (v2
 * puts a process's threads in one domain); each VM gets a threaded child
 * ROOT/ovc-PID/vm-ID with its vCPU threads. Everything goes back on close.
 */
struct cg2 {
	char root[256];
	char dir[300];		/* ROOT/ovc-PID */
	char proc_from[256];	/* where the process was, relative to ROOT */
	bool moved_proc;
	bool subtree_on;
	struct ovc__cg_vm **vms;
	unsigned int nvms;
};

static const char *root_of(const struct ovc_cpusched_config *cfg)
{
	return cfg && cfg->cgroup_root && *cfg->cgroup_root ? cfg->cgroup_root : DEFAULT_ROOT;
}

static int probe(const struct ovc_cpusched_config *cfg, char *why, size_t len)
{
	const char *root = root_of(cfg);
	char ctl[256];
	int ret;

	ret = ovc__cg_read(root, "cgroup.controllers", ctl, sizeof(ctl));
	if (ret) {
		ovc__why(why, len, "cgroup2: %s is not a cgroup v2 directory (%s)", root, strerror(-ret));
		return ret;
	}
	if (!strstr(ctl, "cpu")) {
		ovc__why(why, len, "cgroup2: %s offers no cpu controller (cgroup.controllers: '%s')",
			 root, ctl);
		return -EOPNOTSUPP;
	}
	if (access(root, W_OK)) {
		ret = -errno;
		ovc__why(why, len, "cgroup2: cannot write to %s (%s)", root, strerror(errno));
		return ret;
	}
	return 0;
}

static void path_join(char *out, size_t len, const char *root, const char *rel)
{
	snprintf(out, len, "%s%s", root, strcmp(rel, "/") ? rel : "");
}

static int open_(const struct ovc_cpusched_config *cfg, struct ovc_host *host, void **state,
		 char *why, size_t len)
{
	struct cg2 *cg;
	int ret;

	ret = probe(cfg, why, len);
	if (ret)
		return ret;
	cg = calloc(1, sizeof(*cg));
	if (!cg)
		return -ENOMEM;
	snprintf(cg->root, sizeof(cg->root), "%s", root_of(cfg));
	snprintf(cg->dir, sizeof(cg->dir), "%s/ovc-%d", cg->root, (int)getpid());
	if (mkdir(cg->dir, 0755) && errno != EEXIST) {
		ret = -errno;
		ovc__why(why, len, "cgroup2: mkdir %s: %s", cg->dir, strerror(errno));
		goto err_free;
	}
	if (ovc__cg_of_thread(getpid(), NULL, cg->proc_from, sizeof(cg->proc_from)))
		snprintf(cg->proc_from, sizeof(cg->proc_from), "/");
	ret = ovc__cg_write(cg->dir, "cgroup.procs", true, "%d", (int)getpid());
	if (ret) {
		ovc__why(why, len, "cgroup2: cannot move the process into %s: %s", cg->dir,
			 strerror(-ret));
		goto err_rmdir;
	}
	cg->moved_proc = true;
	*state = cg;
	return 0;

err_rmdir:
	ovc__cg_rmdir(cg->dir);
err_free:
	free(cg);
	return ret;
}

static void put_back(struct cg2 *cg, struct ovc__moved *m)
{
	char from[600];

	path_join(from, sizeof(from), cg->dir, "/");
	/* Threads go back to the process's domain, where v2 keeps them. */
	ovc__cg_write(from, "cgroup.threads", true, "%d", (int)m->tid);
}

static int apply(void *state, const struct ovc_cpu_enforce_vm *vm)
{
	struct cg2 *cg = state;
	struct ovc__cg_vm *e = ovc__cg_vm_get(&cg->vms, &cg->nvms, vm->id, true);
	char dir[400], list[1024];
	double cap = vm->capacity > 0 ? vm->capacity : 1.0;
	unsigned int i, w;
	int ret;

	if (!e)
		return -ENOMEM;
	snprintf(dir, sizeof(dir), "%s/vm-%llu", cg->dir, (unsigned long long)vm->id);
	if (!e->made) {
		if (mkdir(dir, 0755) && errno != EEXIST)
			return -errno;
		e->made = true;
		ret = ovc__cg_write(dir, "cgroup.type", false, "threaded");
		if (ret)
			return ret;
		if (!cg->subtree_on) {
			ret = ovc__cg_write(cg->dir, "cgroup.subtree_control", false, "+cpu +cpuset");
			if (ret)
				ret = ovc__cg_write(cg->dir, "cgroup.subtree_control", false, "+cpu");
			if (ret)
				return ret;
			cg->subtree_on = true;
		}
	}
	/* Weights in proportion to entitlement: busy VMs then split the CPUs as planned. */
	w = (unsigned int)lround(10000.0 * fmax(vm->entitled, 0.001) / cap);
	w = w < 1 ? 1 : w > 10000 ? 10000 : w;
	ret = ovc__cg_write(dir, "cpu.weight", false, "%u", w);
	if (!ret && vm->limit > 0)
		ret = ovc__cg_write(dir, "cpu.max", false, "%lld %d",
				    (long long)llround(vm->limit * CFS_PERIOD_US), CFS_PERIOD_US);
	else if (!ret)
		ret = ovc__cg_write(dir, "cpu.max", false, "max %d", CFS_PERIOD_US);
	if (ret)
		return ret;
	if (vm->node_cpus) {
		ovc__cpulist(vm->node_cpus, list, sizeof(list));
		ovc__cg_write(dir, "cpuset.cpus", false, "%s", list);	/* optional controller */
	}
	/* Threads that left the VM go back; new ones come in. */
	for (i = 0; i < e->nmoved;) {
		if (!ovc__tid_in(vm, e->moved[i].tid)) {
			put_back(cg, &e->moved[i]);
			e->moved[i] = e->moved[--e->nmoved];
		} else {
			i++;
		}
	}
	for (i = 0; i < vm->nvcpus; i++) {
		unsigned int j;

		for (j = 0; j < e->nmoved && e->moved[j].tid != vm->tids[i]; j++)
			;
		if (j < e->nmoved || e->nmoved >= OVC_VM_VCPUS_MAX)
			continue;
		ret = ovc__cg_write(dir, "cgroup.threads", true, "%d", (int)vm->tids[i]);
		if (ret)
			return ret;
		e->moved[e->nmoved].tid = vm->tids[i];
		snprintf(e->moved[e->nmoved].from, sizeof(e->moved[0].from), "/");
		e->nmoved++;
	}
	return 0;
}

static void forget(void *state, uint64_t id)
{
	struct cg2 *cg = state;
	struct ovc__cg_vm *e = ovc__cg_vm_get(&cg->vms, &cg->nvms, id, false);
	char dir[400];
	unsigned int i;

	if (!e)
		return;
	for (i = 0; i < e->nmoved; i++)
		put_back(cg, &e->moved[i]);
	snprintf(dir, sizeof(dir), "%s/vm-%llu", cg->dir, (unsigned long long)id);
	if (e->made)
		ovc__cg_rmdir(dir);
	ovc__cg_vm_drop(cg->vms, &cg->nvms, e);
}

static void close_(void *state)
{
	struct cg2 *cg = state;
	char from[600];

	if (!cg)
		return;
	while (cg->nvms)
		forget(cg, cg->vms[0]->id);
	if (cg->moved_proc) {
		path_join(from, sizeof(from), cg->root, cg->proc_from);
		ovc__cg_write(from, "cgroup.procs", true, "%d", (int)getpid());
	}
	ovc__cg_rmdir(cg->dir);
	free(cg->vms);
	free(cg);
}

const struct ovc_cpu_enforce_ops ovc_cpu_enforce_cgroup2 = {
	.name = "cgroup2",
	.probe = probe,
	.open = open_,
	.apply = apply,
	.forget = forget,
	.close = close_,
};

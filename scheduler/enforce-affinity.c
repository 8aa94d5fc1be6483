// SPDX-License-Identifier: MIT
/* scheduler/enforce-affinity.c: placement only, by sched_setaffinity (no privileges needed). */
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "scheduler/sched-internal.h"

/* A thread ovc pinned, with the mask it had before. */
struct pinned {
	uint64_t vm;
	pid_t tid;
	cpu_set_t before;
};

struct aff {
	struct pinned *p;
	unsigned int n, cap;
};

static int probe(const struct ovc_cpusched_config *cfg, char *why, size_t len)
{
	cpu_set_t set;

	if (sched_getaffinity(0, sizeof(set), &set)) {
		int ret = -errno;

		ovc__why(why, len, "affinity: sched_getaffinity: %s", strerror(errno));
		return ret;
	}
	return 0;
}

static int open_(const struct ovc_cpusched_config *cfg, struct ovc_host *host, void **state,
		 char *why, size_t len)
{
	int ret = probe(cfg, why, len);

	if (ret)
		return ret;
	*state = calloc(1, sizeof(struct aff));
	return *state ? 0 : -ENOMEM;
}

static void unpin(struct aff *a, unsigned int i)
{
	/* The thread may be gone (ESRCH): nothing to restore then. */
	sched_setaffinity(a->p[i].tid, sizeof(cpu_set_t), &a->p[i].before);
	a->p[i] = a->p[--a->n];
}

static int apply(void *state, const struct ovc_cpu_enforce_vm *vm)
{
	struct aff *a = state;
	unsigned int i, j;
	cpu_set_t set;
	int ret = 0;

	for (i = 0; i < a->n;) {
		if (a->p[i].vm == vm->id && !ovc__tid_in(vm, a->p[i].tid))
			unpin(a, i);
		else
			i++;
	}
	for (i = 0; i < vm->nvcpus; i++) {
		const int *c;

		CPU_ZERO(&set);
		/* The vCPU's own core; its home node when the node is busy elsewhere is CFS's call. */
		if (vm->cpus && vm->cpus[i] >= 0 && vm->cpus[i] < CPU_SETSIZE)
			CPU_SET(vm->cpus[i], &set);
		for (c = vm->node_cpus; c && *c >= 0; c++) {
			if (*c < CPU_SETSIZE)
				CPU_SET(*c, &set);
		}
		if (!CPU_COUNT(&set))
			continue;
		for (j = 0; j < a->n && !(a->p[j].vm == vm->id && a->p[j].tid == vm->tids[i]); j++)
			;
		if (j == a->n) {
			if (a->n == a->cap) {
				unsigned int cap = a->cap ? a->cap * 2 : 16;
				struct pinned *p = realloc(a->p, sizeof(*p) * cap);

				if (!p)
					return -ENOMEM;
				a->p = p;
				a->cap = cap;
			}
			if (sched_getaffinity(vm->tids[i], sizeof(cpu_set_t), &a->p[j].before))
				continue;	/* the thread is gone */
			a->p[j].vm = vm->id;
			a->p[j].tid = vm->tids[i];
			a->n++;
		}
		if (sched_setaffinity(vm->tids[i], sizeof(set), &set) && errno != ESRCH)
			ret = -errno;
	}
	return ret;
}

static void forget(void *state, uint64_t id)
{
	struct aff *a = state;
	unsigned int i;

	for (i = 0; i < a->n;) {
		if (a->p[i].vm == id)
			unpin(a, i);
		else
			i++;
	}
}

static void close_(void *state)
{
	struct aff *a = state;

	if (!a)
		return;
	while (a->n)
		unpin(a, 0);
	free(a->p);
	free(a);
}

const struct ovc_cpu_enforce_ops ovc_cpu_enforce_affinity = {
	.name = "affinity",
	.probe = probe,
	.open = open_,
	.apply = apply,
	.forget = forget,
	.close = close_,
};

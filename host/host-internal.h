/* SPDX-License-Identifier: MIT */
/* host/: the host and VM objects and the manager thread (internal API). */
#ifndef OVC_HOST_INTERNAL_H
#define OVC_HOST_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include <urcu/list.h>

#include <ovc/host.h>
#include <ovc/vcpu.h>
#include "core/core-internal.h"
#include "balloon/balloon-internal.h"
#include "pager/pager-internal.h"
#include "stats/stats-internal.h"
#include "stats/wss.h"
#include <ovc/policy.h>
#include "dedup/dedup-internal.h"

/*
 * typedef ovc_tick_fn - work the manager thread runs each tick, after the
 * VMs' counters are folded. Called from the manager thread with no lock held.
 */
typedef void (*ovc_tick_fn)(struct ovc_host *host, void *opaque);

#define OVC_HOST_MAX_TICK_HOOKS 8

struct ovc_vm {
	struct ovc_host *host;
	struct cds_list_head node;	/* in host->vms, under host->lock */
	char name[64];
	struct ovc_ram *ram;
	struct cds_list_head vcpus;	/* struct ovc_vcpu by index, under host->lock */
	unsigned int nvcpus;		/* under host->lock */
	struct ovc_balloon *balloon;	/* under host->lock */
	struct ovc_pager *pager;	/* under host->lock; freed with the VM */
	uint64_t id;			/* unique in the host, never reused */
	struct ovc_vm_policy policy;	/* under host->lock */
	struct ovc_vm_targets targets;	/* under host->lock; the schedulers' last plan */
	struct ovc_wss_snap wss;	/* under host->lock; the working-set sampler's */
	struct ovc_wss_sampler *wss_sampler; /* under host->lock; NULL: not sampling */
	struct ovc_snap *snap;		/* the last restore; under host->lock; freed with the VM */
	struct ovc_dedup_member *dedup;	/* under host->lock; freed with the VM */
};

/**
 * struct ovc_vcpu - one registered vCPU thread
 *
 * @node, @index: under host->lock. The counters are written only by the
 * vCPU's own thread (the hooks), inside a sequence count @seq, and read by
 * any thread through ovc_vcpu_get_stats().
 */
struct ovc_vcpu {
	struct ovc_vm *vm;
	struct cds_list_head node;
	unsigned int index;
	pid_t tid;
	_Atomic unsigned int seq;	/* ATOMIC: odd while the counters change */
	_Atomic unsigned int state;	/* ATOMIC: out, in the guest, halted */
	_Atomic uint64_t since_ns;	/* ATOMIC: when @state began */
	_Atomic uint64_t run_ns;	/* ATOMIC */
	_Atomic uint64_t halt_ns;	/* ATOMIC */
	_Atomic uint64_t runs;		/* ATOMIC */
	_Atomic uint64_t halts;		/* ATOMIC */
	_Atomic uint64_t throttled_ns;	/* ATOMIC: added by CPU enforcement */
	/*
	 * CPU throttle (scheduler/enforce-throttle.c): @park_lock protects
	 * @kick_fn, @kick_opaque and pairs with @park_cond; it nests inside
	 * host->lock. @parked is set by the pacer, read by the vCPU thread.
	 */
	pthread_mutex_t park_lock;
	pthread_cond_t park_cond;
	ovc_vcpu_kick_fn kick_fn;
	void *kick_opaque;
	_Atomic bool parked;		/* ATOMIC: over budget, wait in run_begin */
	_Atomic unsigned int wakes;	/* ATOMIC: ovc_vcpu_wake() calls */
	uint64_t thr_clock0;		/* pacer only: thread CPU time at period start */
};

/**
 * struct ovc_host - everything ovc runs for one VMM.
 *
 * Locks: @tick_lock serializes whole ticks (the manager's and ones run by
 * hand), so the snapshot has one writer at a time; it is taken before @lock.
 * @lock protects @vms, @nvms, the VMs' tick state and the tick hooks; it is
 * taken before any VM's RAM lock. @mgr_lock with @mgr_cond only paces and
 * stops the manager thread; nothing is taken inside it.
 */
struct ovc_host {
	struct ovc_log log;
	struct ovc_host_config cfg;
	struct ovc_fault_engine *engine;

	pthread_mutex_t tick_lock;	/* one tick at a time; before lock */
	pthread_mutex_t lock;		/* protects vms, nvms, ticks, hooks, next_vm_id */
	struct cds_list_head vms;
	unsigned int nvms;
	uint64_t next_vm_id;
	struct ovc_stats *stats;	/* published by the manager thread each tick */
	unsigned int ncpus;		/* CPUs the process may run on, at creation */
	struct {
		ovc_tick_fn fn;
		void *opaque;
	} hooks[OVC_HOST_MAX_TICK_HOOKS];
	unsigned int nhooks;

	pthread_t manager;
	pthread_mutex_t mgr_lock;	/* protects mgr_stop; pairs with mgr_cond */
	pthread_cond_t mgr_cond;
	bool mgr_stop;
	_Atomic uint64_t ticks;		/* ATOMIC */
	bool wss_hook;			/* under tick_lock: the sampler's tick hook is in */
	struct ovc_dedup *dedup;	/* under @lock; set once, freed with the host */
	/* host/memsched.c: set under tick_lock and lock; freed by ovc_host_destroy() */
	struct ovc__memsched *memsched;
	struct ovc__cpusched *cpusched;	/* host/cpusched.c; set once, freed in destroy */
};

struct ovc__cpusched;
void ovc__cpusched_destroy(struct ovc__cpusched *cs);

/* The VM's guest memory, for mechanisms and tests. */
static inline struct ovc_ram *ovc__vm_ram(struct ovc_vm *vm)
{
	return vm->ram;
}

/* Add work to every tick. Return 0, -ENOSPC. Takes host->lock. */
int ovc__host_add_tick_hook(struct ovc_host *host, ovc_tick_fn fn, void *opaque);

/*
 * Run one tick now, in the calling thread (the manager does this each period).
 * The thread must be registered with ovc_thread_register(): the tick
 * publishes a snapshot and retires the previous one with call_rcu().
 */
void ovc__host_tick(struct ovc_host *host);

/*
 * ovc_vm_set_policy() for callers that hold host->lock (the control socket):
 * check, admit against the schedulers' budgets, store. Return 0 or a negative
 * errno with a static reason in @why; nothing changes on failure.
 */
int ovc__vm_set_policy_locked(struct ovc_vm *vm, const struct ovc_vm_policy *p,
			      const char **why);

/*
 * Whether @vm may hold @p's CPU reservation: the sum over all VMs must fit the
 * CPU scheduler's capacity (the host's CPUs without one). Return 0 or -ENOSPC.
 * Called with host->lock held.
 */
int ovc__cpusched_admit(struct ovc_host *host, struct ovc_vm *vm,
			const struct ovc_vm_policy *p);


/*
 * The memory scheduler's admission check for a new policy of @vm: 0, or
 * -ENOSPC when the reservations would exceed its budget. Called with
 * host->lock held (host/memsched.c).
 */
int ovc__memsched_admit(struct ovc_host *host, const struct ovc_vm *vm,
			const struct ovc_vm_policy *p);

/* Free the memory scheduler once the manager has stopped (host/memsched.c). */
void ovc__memsched_free(struct ovc_host *host);

#endif /* OVC_HOST_INTERNAL_H */

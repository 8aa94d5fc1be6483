// SPDX-License-Identifier: MIT
/* host/host.c: the host object, its manager thread and its VMs. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <sched.h>
#include <string.h>
#include <time.h>

#include <urcu/urcu-memb.h>

#include "host/host-internal.h"

OVC_EXPORT void ovc_host_config_init(struct ovc_host_config *cfg)
{
	if (!cfg)
		return;
	memset(cfg, 0, sizeof(*cfg));
	cfg->fault_threads = 2;
	cfg->tick_ms = 1000;
	cfg->log_level = OVC_LOG_INFO;
}

static int check_config(const struct ovc_host_config *cfg)
{
	if (cfg->fault_threads < 1 || cfg->fault_threads > 64)
		return -EINVAL;
	if (cfg->tick_ms < 10 || cfg->tick_ms > 60000)
		return -EINVAL;
	return 0;
}

static unsigned int count_cpus(void)
{
	cpu_set_t set;

	if (sched_getaffinity(0, sizeof(set), &set))
		return 1;
	return (unsigned int)CPU_COUNT(&set);
}

/* Called with host->lock held. */
static void snap_vm(struct ovc_vm *vm, struct ovc_vm_snap *v, struct ovc_vcpu_snap *c)
{
	struct ovc_vcpu_stats vs;
	struct ovc_vcpu *vcpu;
	unsigned int n = 0;

	snprintf(v->name, sizeof(v->name), "%s", vm->name);
	v->id = vm->id;
	ovc__ram_get_stats(vm->ram, &v->mem);
	if (vm->balloon)
		v->has_balloon = !ovc_balloon_get_stats(vm->balloon, &v->balloon);
	if (vm->pager)
		v->has_pager = !ovc_pager_get_stats(vm->pager, &v->pager);
	v->wss = vm->wss;
	v->policy = vm->policy;
	v->targets = vm->targets;
	v->vcpus = c;
	cds_list_for_each_entry(vcpu, &vm->vcpus, node) {
		ovc_vcpu_get_stats(vcpu, &vs);
		c[n].index = vs.index;
		c[n].tid = vs.tid;
		c[n].run_ns = vs.run_ns;
		c[n].halt_ns = vs.halt_ns;
		c[n].halts = vs.halts;
		c[n].throttled_ns = atomic_load_explicit(&vcpu->throttled_ns, memory_order_relaxed);
		c[n].schedstat_valid = !ovc__schedstat_read(vs.tid, &c[n].cpu_ns, &c[n].wait_ns);
		n++;
	}
	v->nvcpus = n;
}

/* Called with host->lock held. */
static struct ovc_stats_snapshot *take_snapshot(struct ovc_host *host, uint64_t now)
{
	struct ovc_stats_snapshot *snap;
	struct ovc_vcpu_snap *pool;
	unsigned int nvcpus = 0, i = 0;
	struct ovc_vm *vm;

	cds_list_for_each_entry(vm, &host->vms, node)
		nvcpus += vm->nvcpus;
	snap = ovc__stats_alloc(host->nvms, nvcpus);
	if (!snap)
		return NULL;
	snap->at_ns = now;
	snap->ncpus = host->ncpus;
	pool = ovc__stats_vcpu_pool(snap);
	cds_list_for_each_entry(vm, &host->vms, node) {
		struct ovc_vm_snap *v = ovc__stats_vm(snap, i++);

		snap_vm(vm, v, pool);
		pool += v->nvcpus;
	}
	return snap;
}

void ovc__host_tick(struct ovc_host *host)
{
	uint64_t now = ovc__now_ns();
	struct ovc_stats_snapshot *snap;
	struct ovc_vm *vm;
	unsigned int i, n;
	struct {
		ovc_tick_fn fn;
		void *opaque;
	} hooks[OVC_HOST_MAX_TICK_HOOKS];

	pthread_mutex_lock(&host->tick_lock);
	pthread_mutex_lock(&host->lock);
	snap = take_snapshot(host, now);
	cds_list_for_each_entry(vm, &host->vms, node) {
		if (vm->balloon)
			ovc__balloon_tick(vm->balloon, now);
	}
	n = host->nhooks;
	memcpy(hooks, host->hooks, sizeof(hooks));
	pthread_mutex_unlock(&host->lock);

	/* A tick that cannot allocate keeps the previous snapshot. */
	if (snap)
		ovc__stats_publish(host->stats, snap);
	for (i = 0; i < n; i++)
		hooks[i].fn(host, hooks[i].opaque);
	atomic_fetch_add_explicit(&host->ticks, 1, memory_order_relaxed);
	pthread_mutex_unlock(&host->tick_lock);
}

static void *manager_thread(void *arg)
{
	struct ovc_host *host = arg;
	struct timespec next;

	urcu_memb_register_thread();
	clock_gettime(CLOCK_MONOTONIC, &next);
	pthread_mutex_lock(&host->mgr_lock);
	while (!host->mgr_stop) {
		next.tv_nsec += (long)(host->cfg.tick_ms % 1000) * 1000000L;
		next.tv_sec += host->cfg.tick_ms / 1000 + next.tv_nsec / 1000000000L;
		next.tv_nsec %= 1000000000L;
		while (!host->mgr_stop &&
		       pthread_cond_timedwait(&host->mgr_cond, &host->mgr_lock, &next) != ETIMEDOUT)
			;
		if (host->mgr_stop)
			break;
		pthread_mutex_unlock(&host->mgr_lock);
		ovc__host_tick(host);
		pthread_mutex_lock(&host->mgr_lock);
	}
	pthread_mutex_unlock(&host->mgr_lock);
	urcu_memb_unregister_thread();
	return NULL;
}

OVC_EXPORT struct ovc_host *ovc_host_new(const struct ovc_host_config *cfg)
{
	struct ovc_host_config defaults;
	pthread_condattr_t ca;
	struct ovc_host *host;
	int ret;

	if (!cfg) {
		ovc_host_config_init(&defaults);
		cfg = &defaults;
	}
	if (check_config(cfg)) {
		errno = EINVAL;
		return NULL;
	}
	host = calloc(1, sizeof(*host));
	if (!host)
		return NULL;
	host->cfg = *cfg;
	host->log.fn = cfg->log_fn;
	host->log.opaque = cfg->log_opaque;
	host->log.level = cfg->log_level;
	CDS_INIT_LIST_HEAD(&host->vms);

	ret = pthread_mutex_init(&host->lock, NULL);
	if (ret)
		goto err_free;
	ret = pthread_mutex_init(&host->tick_lock, NULL);
	if (ret)
		goto err_destroy_lock;
	ret = pthread_mutex_init(&host->mgr_lock, NULL);
	if (ret)
		goto err_destroy_tick_lock;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	ret = pthread_cond_init(&host->mgr_cond, &ca);
	pthread_condattr_destroy(&ca);
	if (ret)
		goto err_destroy_mgr_lock;

	host->ncpus = count_cpus();
	host->stats = ovc__stats_new();
	if (!host->stats) {
		ret = ENOMEM;
		goto err_destroy_cond;
	}
	host->engine = ovc__fault_engine_new(&host->log, cfg->fault_threads);
	if (!host->engine) {
		ret = errno;
		goto err_destroy_stats;
	}
	ret = pthread_create(&host->manager, NULL, manager_thread, host);
	if (ret)
		goto err_destroy_engine;
	return host;

err_destroy_engine:
	ovc__fault_engine_destroy(host->engine);
err_destroy_stats:
	ovc__stats_destroy(host->stats);
err_destroy_cond:
	pthread_cond_destroy(&host->mgr_cond);
err_destroy_mgr_lock:
	pthread_mutex_destroy(&host->mgr_lock);
err_destroy_tick_lock:
	pthread_mutex_destroy(&host->tick_lock);
err_destroy_lock:
	pthread_mutex_destroy(&host->lock);
err_free:
	free(host);
	errno = ret;
	return NULL;
}

OVC_EXPORT int ovc_host_destroy(struct ovc_host *host)
{
	if (!host)
		return -EINVAL;
	pthread_mutex_lock(&host->lock);
	if (host->nvms) {
		ovc__err(&host->log, "host_destroy: %u VMs still alive", host->nvms);
		pthread_mutex_unlock(&host->lock);
		return -EBUSY;
	}
	pthread_mutex_unlock(&host->lock);

	pthread_mutex_lock(&host->mgr_lock);
	host->mgr_stop = true;
	pthread_cond_signal(&host->mgr_cond);
	pthread_mutex_unlock(&host->mgr_lock);
	pthread_join(host->manager, NULL);
	ovc__cpusched_destroy(host->cpusched);

	ovc__dedup_destroy(host->dedup);
	ovc__fault_engine_destroy(host->engine);
	ovc__memsched_free(host);
	ovc__stats_destroy(host->stats);
	/* Callbacks queued by RCU users below must run before the host goes. */
	urcu_memb_barrier();
	pthread_cond_destroy(&host->mgr_cond);
	pthread_mutex_destroy(&host->mgr_lock);
	pthread_mutex_destroy(&host->tick_lock);
	pthread_mutex_destroy(&host->lock);
	free(host);
	return 0;
}

OVC_EXPORT uint64_t ovc_host_ticks(const struct ovc_host *host)
{
	return host ? atomic_load_explicit(&host->ticks, memory_order_relaxed) : 0;
}

OVC_EXPORT unsigned int ovc_host_vm_count(struct ovc_host *host)
{
	unsigned int n;

	if (!host)
		return 0;
	pthread_mutex_lock(&host->lock);
	n = host->nvms;
	pthread_mutex_unlock(&host->lock);
	return n;
}

int ovc__host_add_tick_hook(struct ovc_host *host, ovc_tick_fn fn, void *opaque)
{
	int ret = -ENOSPC;

	if (!host || !fn)
		return -EINVAL;
	pthread_mutex_lock(&host->lock);
	if (host->nhooks < OVC_HOST_MAX_TICK_HOOKS) {
		host->hooks[host->nhooks].fn = fn;
		host->hooks[host->nhooks].opaque = opaque;
		host->nhooks++;
		ret = 0;
	}
	pthread_mutex_unlock(&host->lock);
	return ret;
}

static bool valid_name(const char *name)
{
	size_t i, n;

	if (!name)
		return false;
	n = strlen(name);
	if (n == 0 || n > 63)
		return false;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)name[i];

		if (!isalnum(c) && c != '_' && c != '.' && c != '-')
			return false;
	}
	return true;
}

/* Called with host->lock held. */
static struct ovc_vm *find_vm(struct ovc_host *host, const char *name)
{
	struct ovc_vm *vm;

	cds_list_for_each_entry(vm, &host->vms, node) {
		if (!strcmp(vm->name, name))
			return vm;
	}
	return NULL;
}

OVC_EXPORT struct ovc_vm *ovc_vm_new(struct ovc_host *host, const char *name)
{
	struct ovc_vm *vm;
	int ret;

	if (!host || !valid_name(name)) {
		if (host)
			ovc__err(&host->log, "vm_new: bad name (1-63 characters of A-Za-z0-9_.-)");
		errno = EINVAL;
		return NULL;
	}
	vm = calloc(1, sizeof(*vm));
	if (!vm)
		return NULL;
	vm->host = host;
	CDS_INIT_LIST_HEAD(&vm->vcpus);
	snprintf(vm->name, sizeof(vm->name), "%s", name);
	vm->ram = ovc__ram_new(&host->log);
	if (!vm->ram) {
		ret = errno;
		goto err_free;
	}

	pthread_mutex_lock(&host->lock);
	if (find_vm(host, name)) {
		ovc__err(&host->log, "vm_new: a VM named '%s' exists", name);
		ret = EEXIST;
		goto err_unlock;
	}
	ret = -ovc__fault_engine_attach(host->engine, vm->ram);
	if (ret)
		goto err_unlock;
	vm->id = ++host->next_vm_id;
	ovc_vm_policy_init(&vm->policy);
	cds_list_add_tail(&vm->node, &host->vms);
	host->nvms++;
	pthread_mutex_unlock(&host->lock);
	return vm;

err_unlock:
	pthread_mutex_unlock(&host->lock);
	ovc__ram_destroy(vm->ram);
err_free:
	free(vm);
	errno = ret;
	return NULL;
}

OVC_EXPORT int ovc_vm_destroy(struct ovc_vm *vm)
{
	struct ovc_host *host;

	if (!vm)
		return -EINVAL;
	host = vm->host;
	/* Tick hooks use the VM's pager outside the host lock: wait for the tick. */
	pthread_mutex_lock(&host->tick_lock);
	pthread_mutex_lock(&host->lock);
	if (vm->nvcpus || vm->balloon) {
		pthread_mutex_unlock(&host->lock);
		pthread_mutex_unlock(&host->tick_lock);
		ovc__err(&host->log, "vm %s: cannot destroy: %u vCPUs%s still registered",
			 vm->name, vm->nvcpus, vm->balloon ? " and a balloon" : "");
		return -EBUSY;
	}
	cds_list_del(&vm->node);
	host->nvms--;
	pthread_mutex_unlock(&host->lock);
	pthread_mutex_unlock(&host->tick_lock);

	/* The pager's own thread takes transitions: it stops while the RAM lives. */
	ovc__pager_stop(vm->pager);
	ovc__snap_stop(vm->snap);
	ovc__dedup_leave(vm->dedup);
	ovc__fault_engine_detach(host->engine, vm->ram);
	/* No fault is served any more: the pool references go before the RAM. */
	ovc__dedup_forget(vm->dedup);
	ovc__ram_destroy(vm->ram);
	/* After the RAM: no entry and no fault refer to its stores any more. */
	ovc__pager_destroy(vm->pager);
	ovc__wss_free(vm->wss_sampler);
	ovc__snap_destroy(vm->snap);
	free(vm);
	return 0;
}

OVC_EXPORT const char *ovc_vm_name(const struct ovc_vm *vm)
{
	return vm ? vm->name : NULL;
}

OVC_EXPORT int ovc_vm_add_ram(struct ovc_vm *vm, uint64_t gpa, uint64_t size, void **hva)
{
	if (!vm)
		return -EINVAL;
	if (!hva) {
		ovc__err(&vm->host->log, "add_ram: no place for the host address (hva is NULL)");
		return -EINVAL;
	}
	return ovc__ram_add_range(vm->ram, gpa, size, hva);
}

OVC_EXPORT int ovc_vm_set_fatal_handler(struct ovc_vm *vm, ovc_fatal_fn fn, void *opaque)
{
	if (!vm)
		return -EINVAL;
	ovc__ram_set_fatal(vm->ram, fn, opaque);
	return 0;
}

OVC_EXPORT int ovc_vm_get_mem_stats(struct ovc_vm *vm, struct ovc_mem_stats *st)
{
	if (!vm || !st)
		return -EINVAL;
	ovc__ram_get_stats(vm->ram, st);
	return 0;
}

OVC_EXPORT int ovc_vm_page_state(struct ovc_vm *vm, uint64_t gpa, int *busy)
{
	_Atomic uint64_t *pte;
	uint64_t e;

	if (!vm)
		return -EINVAL;
	pte = ovc__ram_pte(vm->ram, gpa >> OVC_PAGE_SHIFT);
	if (!pte)
		return -EINVAL;
	e = atomic_load_explicit(pte, memory_order_relaxed);
	if (busy)
		*busy = !!(e & OVC_PTE_BUSY);
	return (int)ovc__pte_state(e);
}

OVC_EXPORT struct ovc_balloon *ovc_vm_add_balloon(struct ovc_vm *vm,
						  const struct ovc_balloon_config *cfg)
{
	struct ovc_balloon *b;
	int err = 0;

	if (!vm) {
		errno = EINVAL;
		return NULL;
	}
	b = ovc__balloon_new(vm->ram, &vm->host->log, cfg, vm);
	if (!b) {
		ovc__err(&vm->host->log, "vm %s: bad balloon configuration", vm->name);
		return NULL;
	}
	pthread_mutex_lock(&vm->host->lock);
	if (vm->balloon)
		err = EEXIST;
	else
		vm->balloon = b;
	pthread_mutex_unlock(&vm->host->lock);
	if (err) {
		ovc__balloon_destroy(b);
		errno = err;
		return NULL;
	}
	return b;
}

OVC_EXPORT int ovc_balloon_remove(struct ovc_balloon *b)
{
	struct ovc_vm *vm;

	if (!b)
		return -EINVAL;
	vm = b->owner;
	/*
	 * Under the host lock no tick is inside the controller; under the tick
	 * lock no tick hook is using the balloon outside the host lock.
	 */
	pthread_mutex_lock(&vm->host->tick_lock);
	pthread_mutex_lock(&vm->host->lock);
	vm->balloon = NULL;
	pthread_mutex_unlock(&vm->host->lock);
	pthread_mutex_unlock(&vm->host->tick_lock);
	ovc__balloon_destroy(b);
	return 0;
}

OVC_EXPORT struct ovc_pager *ovc_vm_add_pager(struct ovc_vm *vm,
					      const struct ovc_pager_config *cfg)
{
	struct ovc_pager *p = NULL;
	int err = 0;

	if (!vm) {
		errno = EINVAL;
		return NULL;
	}
	pthread_mutex_lock(&vm->host->lock);
	if (vm->pager) {
		err = EEXIST;
	} else {
		p = ovc__pager_new(vm->ram, &vm->host->log, cfg);
		if (p)
			vm->pager = p;
		else
			err = errno;
	}
	pthread_mutex_unlock(&vm->host->lock);
	if (err) {
		ovc__err(&vm->host->log, "vm %s: cannot add a pager: %s", vm->name, strerror(err));
		errno = err;
		return NULL;
	}
	return p;
}

OVC_EXPORT void ovc_vm_policy_init(struct ovc_vm_policy *p)
{
	if (!p)
		return;
	memset(p, 0, sizeof(*p));
	p->mem_shares = OVC_SHARES_DEFAULT;
	p->cpu_shares = OVC_SHARES_DEFAULT;
}

OVC_EXPORT int ovc_vm_policy_check(const struct ovc_vm_policy *p, const char **why)
{
	const char *reason = NULL;

	if (!p)
		reason = "no policy";
	else if (p->mem_shares < 1 || p->mem_shares > OVC_SHARES_MAX)
		reason = "mem.shares must be 1-1000000";
	else if (p->cpu_shares < 1 || p->cpu_shares > OVC_SHARES_MAX)
		reason = "cpu.shares must be 1-1000000";
	else if (p->mem_limit_bytes && p->mem_limit_bytes < p->mem_reservation_bytes)
		reason = "mem.limit is below mem.reservation";
	else if (!isfinite(p->cpu_reservation) || p->cpu_reservation < 0)
		reason = "cpu.reservation must be a finite number >= 0";
	else if (!isfinite(p->cpu_limit) || p->cpu_limit < 0)
		reason = "cpu.limit must be a finite number >= 0";
	else if (p->cpu_limit > 0 && p->cpu_limit < p->cpu_reservation)
		reason = "cpu.limit is below cpu.reservation";
	if (why)
		*why = reason;
	return reason ? -EINVAL : 0;
}

int ovc__vm_set_policy_locked(struct ovc_vm *vm, const struct ovc_vm_policy *p,
			      const char **why)
{
	int ret;

	if (ovc_vm_policy_check(p, why))
		return -EINVAL;
	ret = ovc__memsched_admit(vm->host, vm, p);
	if (ret) {
		*why = "memory reservations would exceed the memory budget";
		return ret;
	}
	ret = ovc__cpusched_admit(vm->host, vm, p);
	if (ret) {
		*why = "CPU reservations would exceed the host's CPU capacity";
		return ret;
	}
	vm->policy = *p;
	return 0;
}

OVC_EXPORT int ovc_vm_set_policy(struct ovc_vm *vm, const struct ovc_vm_policy *p)
{
	const char *why = NULL;
	int ret;

	if (!vm)
		return -EINVAL;
	pthread_mutex_lock(&vm->host->lock);
	ret = ovc__vm_set_policy_locked(vm, p, &why);
	pthread_mutex_unlock(&vm->host->lock);
	if (ret)
		ovc__err(&vm->host->log, "vm %s: policy refused: %s", vm->name, why);
	return ret;
}

OVC_EXPORT int ovc_vm_get_policy(struct ovc_vm *vm, struct ovc_vm_policy *p)
{
	if (!vm || !p)
		return -EINVAL;
	pthread_mutex_lock(&vm->host->lock);
	*p = vm->policy;
	pthread_mutex_unlock(&vm->host->lock);
	return 0;
}

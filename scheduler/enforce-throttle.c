// SPDX-License-Identifier: MIT
/* scheduler/enforce-throttle.c: in-process enforcement: vCPUs over budget are kicked out of the guest and parked. */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "host/host-internal.h"
#include "scheduler/sched-internal.h"

#define MIN_SLEEP_NS	200000ULL	/* shortest pacer sleep */
#define PACER_NICE	-15
#define RECHECK_NS	1000000ULL	/* while a parked VM's vCPU is still in the guest */

/*
 * Each period every VM gets a budget of entitled x period nanoseconds of
 * CPU, shared by its vCPUs and charged from their threads' CPU clocks (the
 * nanoseconds really run, never samples). The pacer thread sleeps until the
 * earliest VM could have spent its budget, parks the VMs that have, and at
 * the end of the period carries any overshoot into the next budget (debt)
 * and releases everyone.
 */
struct budget {
	uint64_t id;
	int64_t per_period_ns;		/* under lock */
	int64_t credit_ns;		/* pacer only */
	int64_t carry_max_ns;		/* under lock: unused credit kept into the next period */
	int64_t late_ns;		/* pacer only: average overrun when parked, the guard */
	bool parked;			/* pacer only */
};

struct thr {
	struct ovc_host *host;
	uint64_t period_ns;
	pthread_t pacer;
	pthread_mutex_t lock;		/* protects budgets, nbudgets, stop; after host->lock */
	pthread_cond_t cond;
	bool stop;
	struct budget *budgets;
	unsigned int nbudgets, cap;
};

static int probe(const struct ovc_cpusched_config *cfg, char *why, size_t len)
{
	struct timespec ts;

	/* The pacer reads the vCPU threads' CPU clocks. */
	if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)) {
		int ret = -errno;

		ovc__why(why, len, "throttle: no thread CPU clocks: %s", strerror(errno));
		return ret;
	}
	return 0;
}

static struct budget *find(struct thr *t, uint64_t id)
{
	unsigned int i;

	for (i = 0; i < t->nbudgets; i++) {
		if (t->budgets[i].id == id)
			return &t->budgets[i];
	}
	return NULL;
}

static void set_parked(struct ovc_vcpu *v, bool parked)
{
	pthread_mutex_lock(&v->park_lock);
	atomic_store_explicit(&v->parked, parked, memory_order_release);
	/* Store parked, then look at the state: ovc_vcpu_run_begin() does the reverse. */
	atomic_thread_fence(memory_order_seq_cst);
	if (parked) {
		/* In the guest: make it come out so ovc_vcpu_run_begin() holds it. */
		if (atomic_load_explicit(&v->state, memory_order_relaxed) == 1 && v->kick_fn)
			v->kick_fn(v->kick_opaque);
	} else {
		pthread_cond_broadcast(&v->park_cond);
	}
	pthread_mutex_unlock(&v->park_lock);
}

/*
 * One pass. Called with host->lock and t->lock held. Returns how long the
 * pacer may sleep before a VM could overrun.
 */
static uint64_t pass(struct thr *t, bool refill)
{
	uint64_t sleep = t->period_ns;
	struct ovc_vm *vm;

	cds_list_for_each_entry(vm, &t->host->vms, node) {
		struct budget *b = find(t, vm->id);
		struct ovc_vcpu *v;
		int64_t used = 0;
		unsigned int n = 0;

		if (!b)
			continue;
		cds_list_for_each_entry(v, &vm->vcpus, node) {
			uint64_t now = ovc__thread_cpu_ns(v->tid);

			if (!v->thr_clock0 || now < v->thr_clock0)
				v->thr_clock0 = now;	/* new here: charged from now */
			used += (int64_t)(now - v->thr_clock0);
			if (refill)
				v->thr_clock0 = now;
			n++;
		}
		if (refill) {
			/*
			 * Debt carries over in full; unused credit only up to
			 * carry_max (a VM the machine's other work delayed
			 * catches up next period, an idle one cannot hoard).
			 */
			int64_t left = b->credit_ns - used;

			/*
			 * Learn how far a parked VM overruns (the pacer wakes
			 * late, the kick takes time): later it is parked that
			 * much early, and the credit that leaves unused is
			 * carried even at a limit, so the average stays exact
			 * and windows see little of either.
			 */
			if (b->parked) {
				int64_t past = b->late_ns - left;	/* run past the park point */

				b->late_ns = (b->late_ns * 7 + (past > 0 ? past : 0)) / 8;
			}
			if (b->late_ns > b->per_period_ns / 4)
				b->late_ns = b->per_period_ns / 4;
			if (left > b->carry_max_ns + b->late_ns)
				left = b->carry_max_ns + b->late_ns;
			b->credit_ns = b->per_period_ns + left;
			used = 0;
		}
		if (used + b->late_ns >= b->credit_ns) {
			/*
			 * Park, and kick again any vCPU still in the guest: one
			 * may have entered just as the flag was set, and a
			 * guest that never exits would run on unchecked.
			 */
			cds_list_for_each_entry(v, &vm->vcpus, node) {
				if (!b->parked ||
				    atomic_load_explicit(&v->state, memory_order_relaxed) == 1) {
					set_parked(v, true);
					if (b->parked && sleep > RECHECK_NS)
						sleep = RECHECK_NS;
				}
			}
			b->parked = true;
		} else {
			uint64_t eta = (uint64_t)(b->credit_ns - used - b->late_ns) / (n ? n : 1);

			if (b->parked) {
				cds_list_for_each_entry(v, &vm->vcpus, node)
					set_parked(v, false);
				b->parked = false;
			}
			if (eta < sleep)
				sleep = eta;
		}
	}
	return sleep < MIN_SLEEP_NS ? MIN_SLEEP_NS : sleep;
}

static void *pacer(void *arg)
{
	struct thr *t = arg;
	uint64_t now = ovc__now_ns(), period_end = now + t->period_ns, sleep;
	struct timespec ts;
	bool refill;

	/*
	 * A late pacer lets VMs overrun (the debt is repaid next period, but a
	 * window that ends meanwhile sees it): ask to be scheduled before the
	 * vCPUs. Unprivileged processes keep the default priority.
	 */
	/*
	 * No timer slack: the pacer's wake-ups are the enforcement. (Not
	 * real-time: a cgroup's small real-time budget would stall it.)
	 */
	setpriority(PRIO_PROCESS, (id_t)gettid(), PACER_NICE);
	prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
	for (;;) {
		pthread_mutex_lock(&t->host->lock);
		pthread_mutex_lock(&t->lock);
		if (t->stop) {
			pthread_mutex_unlock(&t->lock);
			pthread_mutex_unlock(&t->host->lock);
			break;
		}
		now = ovc__now_ns();
		refill = now >= period_end;
		if (refill)
			period_end += t->period_ns * (1 + (now - period_end) / t->period_ns);
		sleep = pass(t, refill);
		pthread_mutex_unlock(&t->host->lock);
		if (now + sleep > period_end)
			sleep = period_end - now;
		now += sleep;
		ts.tv_sec = (time_t)(now / 1000000000ULL);
		ts.tv_nsec = (long)(now % 1000000000ULL);
		while (!t->stop && pthread_cond_timedwait(&t->cond, &t->lock, &ts) != ETIMEDOUT)
			;
		pthread_mutex_unlock(&t->lock);
	}
	return NULL;
}

static int open_(const struct ovc_cpusched_config *cfg, struct ovc_host *host, void **state,
		 char *why, size_t len)
{
	pthread_condattr_t ca;
	struct thr *t;
	int ret;

	ret = probe(cfg, why, len);
	if (ret)
		return ret;
	if (!host) {
		ovc__why(why, len, "throttle: needs a host");
		return -EINVAL;
	}
	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->host = host;
	t->period_ns = (uint64_t)(cfg && cfg->throttle_period_ms ? cfg->throttle_period_ms :
				  OVC_CPU_THROTTLE_PERIOD_MS) * 1000000ULL;
	pthread_mutex_init(&t->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&t->cond, &ca);
	pthread_condattr_destroy(&ca);
	ret = pthread_create(&t->pacer, NULL, pacer, t);
	if (ret) {
		ovc__why(why, len, "throttle: cannot start the pacer: %s", strerror(ret));
		pthread_cond_destroy(&t->cond);
		pthread_mutex_destroy(&t->lock);
		free(t);
		return -ret;
	}
	*state = t;
	return 0;
}

static int apply(void *state, const struct ovc_cpu_enforce_vm *vm)
{
	struct thr *t = state;
	struct budget *b;
	bool at_limit = false;
	double cpus;
	int ret = 0;

	/* Never starve a VM completely: 1% of a CPU per vCPU lets its demand be seen. */
	cpus = fmax(vm->entitled, 0.01 * vm->nvcpus);
	if (vm->limit > 0 && cpus >= vm->limit) {
		cpus = vm->limit;
		at_limit = true;
	}
	pthread_mutex_lock(&t->lock);
	b = find(t, vm->id);
	if (!b) {
		if (t->nbudgets == t->cap) {
			unsigned int cap = t->cap ? t->cap * 2 : 8;
			struct budget *nb = realloc(t->budgets, sizeof(*nb) * cap);

			if (!nb) {
				ret = -ENOMEM;
				goto out;
			}
			t->budgets = nb;
			t->cap = cap;
		}
		b = &t->budgets[t->nbudgets++];
		memset(b, 0, sizeof(*b));
		b->id = vm->id;
		b->credit_ns = (int64_t)(cpus * (double)t->period_ns);
	}
	b->per_period_ns = (int64_t)(cpus * (double)t->period_ns);
	/* A limit is a ceiling over any window: no catching up to it. */
	b->carry_max_ns = at_limit ? 0 : b->per_period_ns;
out:
	pthread_mutex_unlock(&t->lock);
	return ret;
}

/* Called with host->lock held. */
static void release_vm(struct thr *t, uint64_t id)
{
	struct ovc_vm *vm;
	struct ovc_vcpu *v;

	cds_list_for_each_entry(vm, &t->host->vms, node) {
		if (vm->id != id)
			continue;
		cds_list_for_each_entry(v, &vm->vcpus, node) {
			set_parked(v, false);
			v->thr_clock0 = 0;
		}
	}
}

static void forget(void *state, uint64_t id)
{
	struct thr *t = state;
	struct budget *b;

	pthread_mutex_lock(&t->lock);
	b = find(t, id);
	if (b) {
		release_vm(t, id);
		*b = t->budgets[--t->nbudgets];
	}
	pthread_mutex_unlock(&t->lock);
}

static void close_(void *state)
{
	struct thr *t = state;

	if (!t)
		return;
	pthread_mutex_lock(&t->lock);
	t->stop = true;
	pthread_cond_signal(&t->cond);
	pthread_mutex_unlock(&t->lock);
	pthread_join(t->pacer, NULL);
	pthread_mutex_lock(&t->host->lock);
	while (t->nbudgets)
		forget(t, t->budgets[0].id);
	pthread_mutex_unlock(&t->host->lock);
	pthread_cond_destroy(&t->cond);
	pthread_mutex_destroy(&t->lock);
	free(t->budgets);
	free(t);
}

const struct ovc_cpu_enforce_ops ovc_cpu_enforce_throttle = {
	.name = "throttle",
	.probe = probe,
	.open = open_,
	.apply = apply,
	.forget = forget,
	.close = close_,
};

OVC_EXPORT const struct ovc_cpu_enforce_ops *ovc_cpu_enforce_find(const struct ovc_cpusched_config *cfg,
								  char *why, size_t len)
{
	static const struct ovc_cpu_enforce_ops *const all[] = {
		&ovc_cpu_enforce_cgroup2, &ovc_cpu_enforce_cgroup1, &ovc_cpu_enforce_throttle,
		&ovc_cpu_enforce_affinity,
	};
	const char *name = cfg && cfg->backend ? cfg->backend : "auto";
	unsigned int i;
	int ret;

	if (!strcmp(name, "none")) {
		ovc__why(why, len, "none: entitlements are computed, not enforced");
		errno = 0;
		return NULL;
	}
	for (i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
		if (strcmp(name, "auto") && strcmp(name, all[i]->name))
			continue;
		ret = all[i]->probe(cfg, why, len);
		if (!ret)
			return all[i];
		if (strcmp(name, "auto")) {
			errno = -ret;
			return NULL;
		}
	}
	if (!strcmp(name, "auto"))
		ovc__why(why, len, "auto: no backend works here");
	else
		ovc__why(why, len, "unknown CPU enforcement backend '%s'", name);
	errno = ENOENT;
	return NULL;
}

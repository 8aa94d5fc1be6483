// SPDX-License-Identifier: MIT
/* host/vcpu.c: registered vCPU threads and their run / halt accounting. */
#include <errno.h>
#include <stdlib.h>
#include <time.h>

#include "host/host-internal.h"

enum {
	VCPU_OUT = 0,		/* in the VMM, neither in the guest nor idle */
	VCPU_RUN = 1,
	VCPU_HALT = 2,
};

#define PARK_SLICE_MS 100	/* longest single wait of a throttled vCPU */

#define GET(f) atomic_load_explicit(&(f), memory_order_relaxed)
#define SET(f, v) atomic_store_explicit(&(f), (v), memory_order_relaxed)

/*
 * Only the vCPU's own thread writes the counters; readers on other threads
 * take a consistent copy through the sequence count.
 */
static void write_begin(struct ovc_vcpu *v)
{
	SET(v->seq, GET(v->seq) + 1);
	atomic_thread_fence(memory_order_release);
}

static void write_end(struct ovc_vcpu *v)
{
	atomic_store_explicit(&v->seq, GET(v->seq) + 1, memory_order_release);
}

static void enter(struct ovc_vcpu *v, unsigned int state)
{
	uint64_t now = ovc__now_ns();

	write_begin(v);
	SET(v->state, state);
	SET(v->since_ns, now);
	if (state == VCPU_RUN)
		SET(v->runs, GET(v->runs) + 1);
	else
		SET(v->halts, GET(v->halts) + 1);
	write_end(v);
}

static void leave(struct ovc_vcpu *v, unsigned int state)
{
	uint64_t now = ovc__now_ns();

	if (GET(v->state) != state)
		OVC_BUG("vcpu %u: hook out of order (state %u, leaving %u)", v->index, GET(v->state), state);
	write_begin(v);
	if (state == VCPU_RUN)
		SET(v->run_ns, GET(v->run_ns) + now - GET(v->since_ns));
	else
		SET(v->halt_ns, GET(v->halt_ns) + now - GET(v->since_ns));
	SET(v->state, VCPU_OUT);
	write_end(v);
}

OVC_EXPORT struct ovc_vcpu *ovc_vm_add_vcpu(struct ovc_vm *vm, pid_t tid)
{
	struct ovc_host *host;
	struct ovc_vcpu *v, *it;
	unsigned int index = 0;
	int err = 0;

	if (!vm || tid <= 0) {
		errno = EINVAL;
		return NULL;
	}
	host = vm->host;
	v = calloc(1, sizeof(*v));
	if (!v)
		return NULL;
	v->vm = vm;
	v->tid = tid;
	if (pthread_mutex_init(&v->park_lock, NULL)) {
		free(v);
		errno = ENOMEM;
		return NULL;
	}
	if (pthread_cond_init(&v->park_cond, NULL)) {
		pthread_mutex_destroy(&v->park_lock);
		free(v);
		errno = ENOMEM;
		return NULL;
	}

	pthread_mutex_lock(&host->lock);
	if (vm->nvcpus >= OVC_VM_VCPUS_MAX) {
		err = ENOSPC;
		goto out;
	}
	/* The list is kept sorted by index, so the lowest free index is found in one walk. */
	cds_list_for_each_entry(it, &vm->vcpus, node) {
		if (it->tid == tid) {
			err = EEXIST;
			goto out;
		}
	}
	cds_list_for_each_entry(it, &vm->vcpus, node) {
		if (it->index != index)
			break;
		index++;
	}
	v->index = index;
	cds_list_add_tail(&v->node, &it->node);
	vm->nvcpus++;
out:
	pthread_mutex_unlock(&host->lock);
	if (err) {
		ovc__err(&host->log, "vm %s: cannot add vCPU thread %d: %s", vm->name,
			 (int)tid, err == EEXIST ? "already registered" :
			 "too many vCPUs");
		pthread_cond_destroy(&v->park_cond);
		pthread_mutex_destroy(&v->park_lock);
		free(v);
		errno = err;
		return NULL;
	}
	return v;
}

OVC_EXPORT int ovc_vcpu_remove(struct ovc_vcpu *vcpu)
{
	struct ovc_host *host;

	if (!vcpu)
		return -EINVAL;
	host = vcpu->vm->host;
	pthread_mutex_lock(&host->lock);
	cds_list_del(&vcpu->node);
	vcpu->vm->nvcpus--;
	pthread_mutex_unlock(&host->lock);
	pthread_cond_destroy(&vcpu->park_cond);
	pthread_mutex_destroy(&vcpu->park_lock);
	free(vcpu);
	return 0;
}

/*
 * Wait while the throttle backend has the vCPU over its budget. The pacer
 * clears @parked and broadcasts when the budget refills. One wait is
 * bounded (PARK_SLICE_MS) so the VMM regains control to notice a stop.
 */
static int park(struct ovc_vcpu *v)
{
	unsigned int wakes = atomic_load(&v->wakes);
	uint64_t t0 = ovc__now_ns();
	struct timespec ts;
	int ret = 0;

	pthread_mutex_lock(&v->park_lock);
	while (atomic_load(&v->parked)) {
		if (atomic_load(&v->wakes) != wakes) {
			ret = -EAGAIN;
			break;
		}
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += PARK_SLICE_MS * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		if (pthread_cond_timedwait(&v->park_cond, &v->park_lock, &ts) == ETIMEDOUT &&
		    atomic_load(&v->parked)) {
			ret = -EAGAIN;
			break;
		}
	}
	pthread_mutex_unlock(&v->park_lock);
	atomic_fetch_add_explicit(&v->throttled_ns, ovc__now_ns() - t0, memory_order_relaxed);
	return ret;
}

OVC_EXPORT int ovc_vcpu_run_begin(struct ovc_vcpu *vcpu)
{
	int ret;

	if (!vcpu)
		return -EINVAL;
	for (;;) {
		if (atomic_load_explicit(&vcpu->parked, memory_order_acquire)) {
			ret = park(vcpu);
			if (ret)
				return ret;
		}
		enter(vcpu, VCPU_RUN);
		/*
		 * The throttle kicks only vCPUs it sees in the guest: parked
		 * between the check above and enter(), this vCPU was not
		 * kicked, so it looks again now that it counts as running.
		 */
		atomic_thread_fence(memory_order_seq_cst);	/* pairs with the pacer's */
		if (!atomic_load_explicit(&vcpu->parked, memory_order_relaxed))
			return 0;
		leave(vcpu, VCPU_RUN);
	}
}

OVC_EXPORT int ovc_vcpu_set_kick(struct ovc_vcpu *vcpu, ovc_vcpu_kick_fn fn, void *opaque)
{
	if (!vcpu)
		return -EINVAL;
	pthread_mutex_lock(&vcpu->park_lock);
	vcpu->kick_fn = fn;
	vcpu->kick_opaque = opaque;
	pthread_mutex_unlock(&vcpu->park_lock);
	return 0;
}

OVC_EXPORT bool ovc_vcpu_may_run(struct ovc_vcpu *vcpu)
{
	return !vcpu || !atomic_load_explicit(&vcpu->parked, memory_order_acquire);
}

OVC_EXPORT void ovc_vcpu_wake(struct ovc_vcpu *vcpu)
{
	if (!vcpu)
		return;
	pthread_mutex_lock(&vcpu->park_lock);
	atomic_fetch_add(&vcpu->wakes, 1);
	pthread_cond_broadcast(&vcpu->park_cond);
	pthread_mutex_unlock(&vcpu->park_lock);
}

OVC_EXPORT void ovc_vcpu_run_end(struct ovc_vcpu *vcpu)
{
	if (vcpu)
		leave(vcpu, VCPU_RUN);
}

OVC_EXPORT void ovc_vcpu_halt_begin(struct ovc_vcpu *vcpu)
{
	if (vcpu)
		enter(vcpu, VCPU_HALT);
}

OVC_EXPORT void ovc_vcpu_halt_end(struct ovc_vcpu *vcpu)
{
	if (vcpu)
		leave(vcpu, VCPU_HALT);
}

OVC_EXPORT int ovc_vcpu_get_stats(struct ovc_vcpu *vcpu, struct ovc_vcpu_stats *st)
{
	unsigned int seq, state;
	uint64_t since, now;

	if (!vcpu || !st)
		return -EINVAL;
	do {
		seq = atomic_load_explicit(&vcpu->seq, memory_order_acquire);
		if (seq & 1)
			continue;
		st->run_ns = GET(vcpu->run_ns);
		st->halt_ns = GET(vcpu->halt_ns);
		st->runs = GET(vcpu->runs);
		st->halts = GET(vcpu->halts);
		state = GET(vcpu->state);
		since = GET(vcpu->since_ns);
		atomic_thread_fence(memory_order_acquire);
	} while ((seq & 1) || atomic_load_explicit(&vcpu->seq, memory_order_relaxed) != seq);

	now = ovc__now_ns();
	if (state == VCPU_RUN && now > since)
		st->run_ns += now - since;
	else if (state == VCPU_HALT && now > since)
		st->halt_ns += now - since;
	st->index = vcpu->index;
	st->tid = vcpu->tid;
	st->running = state;
	st->throttled_ns = atomic_load_explicit(&vcpu->throttled_ns, memory_order_relaxed);
	return 0;
}

OVC_EXPORT unsigned int ovc_vm_vcpu_count(struct ovc_vm *vm)
{
	unsigned int n;

	if (!vm)
		return 0;
	pthread_mutex_lock(&vm->host->lock);
	n = vm->nvcpus;
	pthread_mutex_unlock(&vm->host->lock);
	return n;
}

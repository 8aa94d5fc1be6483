// SPDX-License-Identifier: MIT
/* host/wss-hook.c: per-VM working-set sampling, run by the manager thread each tick. */
#include <errno.h>
#include <string.h>

#include "host/host-internal.h"

#define WSS_PERIOD_MS_MIN 10U
#define WSS_PERIOD_MS_MAX 3600000U

/* The tick hook: advance every sampling VM's sampler. No lock held on entry. */
static void wss_tick(struct ovc_host *host, void *opaque)
{
	uint64_t now = ovc__now_ns(), slack = (uint64_t)host->cfg.tick_ms * 500000ULL;
	struct ovc_vm *vm;

	(void)opaque;
	pthread_mutex_lock(&host->lock);
	cds_list_for_each_entry(vm, &host->vms, node) {
		if (vm->wss_sampler)
			ovc__wss_tick(vm->wss_sampler, vm->ram, now, slack, &vm->wss);
	}
	pthread_mutex_unlock(&host->lock);
}

OVC_EXPORT int ovc_vm_set_wss_sampling(struct ovc_vm *vm, unsigned int period_ms,
				       unsigned int samples)
{
	struct ovc_wss_sampler *w = NULL, *old;
	struct ovc_host *host;
	int ret = 0;

	if (!vm)
		return -EINVAL;
	host = vm->host;
	if (!samples)
		samples = OVC_WSS_SAMPLES_DEFAULT;
	if (period_ms && (period_ms < WSS_PERIOD_MS_MIN || period_ms > WSS_PERIOD_MS_MAX)) {
		ovc__err(&host->log, "vm %s: working-set period %u ms is outside %u ms to %u ms",
			 vm->name, period_ms, WSS_PERIOD_MS_MIN, WSS_PERIOD_MS_MAX);
		return -EINVAL;
	}
	if (samples > OVC_WSS_SAMPLES_MAX) {
		ovc__err(&host->log, "vm %s: %u working-set samples per period, at most %u",
			 vm->name, samples, OVC_WSS_SAMPLES_MAX);
		return -EINVAL;
	}
	if (period_ms && !ovc__ram_can_arm(vm->ram)) {
		ovc__err(&host->log, "vm %s: working-set sampling needs minor faults on shared memory (Linux 5.14+, UFFD_FEATURE_MINOR_SHMEM)",
			 vm->name);
		return -EOPNOTSUPP;
	}
	if (period_ms) {
		w = ovc__wss_new(samples, (uint64_t)period_ms * 1000000ULL,
				 vm->id ^ ovc__now_ns());
		if (!w)
			return -errno;
	}

	/* One hook per host, added once; tick_lock keeps ticks out meanwhile. */
	pthread_mutex_lock(&host->tick_lock);
	if (w && !host->wss_hook) {
		ret = ovc__host_add_tick_hook(host, wss_tick, NULL);
		if (ret) {
			pthread_mutex_unlock(&host->tick_lock);
			ovc__wss_free(w);
			ovc__err(&host->log, "vm %s: no tick hook left for working-set sampling",
				 vm->name);
			return ret;
		}
		host->wss_hook = true;
	}
	pthread_mutex_lock(&host->lock);
	old = vm->wss_sampler;
	vm->wss_sampler = w;
	memset(&vm->wss, 0, sizeof(vm->wss));
	pthread_mutex_unlock(&host->lock);
	pthread_mutex_unlock(&host->tick_lock);
	ovc__wss_free(old);
	return 0;
}

OVC_EXPORT int ovc_vm_get_wss(struct ovc_vm *vm, struct ovc_wss_snap *out)
{
	if (!vm || !out)
		return -EINVAL;
	pthread_mutex_lock(&vm->host->lock);
	*out = vm->wss;
	pthread_mutex_unlock(&vm->host->lock);
	return 0;
}

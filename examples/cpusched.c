// SPDX-License-Identifier: MIT
/* examples/cpusched.c: two VMs with shares 2:1 and a limit, their CPU entitlements from the scheduler. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <ovc/ovc.h>

static atomic_bool stop;

/* A busy thread standing in for a vCPU: it tells ovc when it "enters the guest". */
static void *vcpu_thread(void *arg)
{
	struct ovc_vcpu *v = ovc_vm_add_vcpu(arg, gettid());
	volatile unsigned long x = 0;

	if (!v)
		return NULL;
	while (!atomic_load(&stop)) {
		unsigned int i;

		if (ovc_vcpu_run_begin(v))
			continue;	/* held back (throttle backend): ask again */
		for (i = 0; i < 100000; i++)
			x++;
		ovc_vcpu_run_end(v);
	}
	ovc_vcpu_remove(v);
	return NULL;
}

int main(void)
{
	struct ovc_host_config hc;
	struct ovc_cpusched_config cfg;
	struct ovc_vm_policy p;
	const struct ovc_stats_snapshot *s;
	struct ovc_host *host;
	struct ovc_vm *vm[2];
	pthread_t th[2];
	unsigned int i;
	int ret;

	ovc_host_config_init(&hc);
	hc.tick_ms = 100;
	host = ovc_host_new(&hc);
	if (!host)
		return 1;
	ovc_cpusched_config_init(&cfg);
	cfg.backend = "none";		/* compute only: works anywhere, unprivileged */
	cfg.capacity = 1.0;		/* divide one physical CPU */
	ret = ovc_host_set_cpusched(host, &cfg);
	if (ret) {
		fprintf(stderr, "ovc_host_set_cpusched: %s\n", strerror(-ret));
		return 1;
	}
	vm[0] = ovc_vm_new(host, "big");
	vm[1] = ovc_vm_new(host, "small");
	if (!vm[0] || !vm[1])
		return 1;
	for (i = 0; i < 2; i++) {
		ovc_vm_policy_init(&p);
		p.cpu_shares = i ? 1000 : 2000;
		if (ovc_vm_set_policy(vm[i], &p))
			return 1;
		pthread_create(&th[i], NULL, vcpu_thread, vm[i]);
	}
	usleep(500000);

	ovc_thread_register();
	s = ovc_stats_get(host);
	for (i = 0; s && i < s->nvms; i++)
		printf("%s: shares %llu, demand %.2f CPUs, entitled %.2f CPUs, %%USED %.0f, %%RDY %.0f\n",
		       s->vms[i].name, (unsigned long long)s->vms[i].policy.cpu_shares,
		       s->vms[i].targets.cpu_demand, s->vms[i].targets.cpu_entitled,
		       s->vms[i].used_pct, s->vms[i].rdy_pct);
	ovc_stats_put(s);
	ovc_thread_unregister();

	atomic_store(&stop, true);
	for (i = 0; i < 2; i++) {
		pthread_join(th[i], NULL);
		if (ovc_vm_destroy(vm[i]))
			return 1;
	}
	return ovc_host_destroy(host) ? 1 : 0;
}

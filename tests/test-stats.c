// SPDX-License-Identifier: MIT
/* tests/test-stats.c: snapshots published each tick, per-VM policy, schedstat, host memory. */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <urcu/urcu-memb.h>

#include <ovc/ovc.h>
#include "host/host-internal.h"

#define MiB (1ULL << 20)

static struct ovc_host *host;

static void setup(void)
{
	struct ovc_host_config cfg;

	ovc_host_config_init(&cfg);
	cfg.tick_ms = 60000;	/* ticks run by hand: each test decides when */
	cfg.log_level = OVC_LOG_ERR - 1;
	host = ovc_host_new(&cfg);
	cr_assert_not_null(host, "ovc_host_new: %s", strerror(errno));
	ovc_thread_register();
}

static void teardown(void)
{
	ovc_thread_unregister();
}

static void host_done(void)
{
	cr_assert_eq(ovc_host_destroy(host), 0);
	host = NULL;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void burn_ms(unsigned int ms)
{
	uint64_t end = now_ns() + ms * 1000000ULL;
	volatile uint64_t x = 0;

	while (now_ns() < end)
		x++;
}

Test(stats, none_before_first_tick, .init = setup, .fini = teardown, .timeout = 10)
{
	const struct ovc_stats_snapshot *s;

	s = ovc_stats_read_lock(host);
	cr_assert_null(s);
	ovc_stats_read_unlock(host);
	errno = 0;
	cr_assert_null(ovc_stats_get(host));
	cr_assert_eq(errno, EAGAIN);
	errno = 0;
	cr_assert_null(ovc_stats_get(NULL));
	cr_assert_eq(errno, EINVAL);
	ovc_stats_put(NULL);
	host_done();
}

Test(stats, tick_publishes_vms, .init = setup, .fini = teardown, .timeout = 10)
{
	const struct ovc_stats_snapshot *s;
	const struct ovc_vm_snap *v;
	struct ovc_vm *a, *b;
	uint64_t seq;
	void *hva;

	a = ovc_vm_new(host, "alpha");
	b = ovc_vm_new(host, "beta");
	cr_assert(a && b);
	cr_assert_eq(ovc_vm_add_ram(a, 0, 4 * MiB, &hva), 0);
	memset(hva, 0x5a, 3 * OVC_PAGE_SIZE);

	ovc__host_tick(host);
	s = ovc_stats_read_lock(host);
	cr_assert_not_null(s);
	cr_assert_eq(s->seq, 1);
	cr_assert_eq(s->interval_ns, 0);
	cr_assert_eq(s->nvms, 2);
	cr_assert_geq(s->ncpus, 1);
	cr_assert_str_eq(s->vms[0].name, "alpha");
	cr_assert_str_eq(s->vms[1].name, "beta");
	cr_assert_neq(s->vms[0].id, s->vms[1].id);
	cr_assert_eq(s->vms[0].mem.ram_bytes, 4 * MiB);
	cr_assert_eq(s->vms[0].mem.pages[OVC_PAGE_RESIDENT], 3);
	cr_assert_eq(s->vms[0].policy.mem_shares, OVC_SHARES_DEFAULT);
	cr_assert_eq(s->vms[0].nvcpus, 0);
	cr_assert_not(s->vms[0].has_balloon);
	cr_assert_gt(s->host.total_bytes, 0);
	cr_assert_leq(s->host.available_bytes, s->host.total_bytes);
	v = ovc_stats_find_vm(s, "beta");
	cr_assert_eq(v, &s->vms[1]);
	cr_assert_null(ovc_stats_find_vm(s, "gamma"));
	cr_assert_null(ovc_stats_find_vm(s, NULL));
	seq = s->seq;
	ovc_stats_read_unlock(host);

	memset((char *)hva + 8 * OVC_PAGE_SIZE, 1, 10 * OVC_PAGE_SIZE);
	usleep(2000);
	ovc__host_tick(host);
	s = ovc_stats_read_lock(host);
	cr_assert_eq(s->seq, seq + 1);
	cr_assert_gt(s->interval_ns, 0);
	cr_assert_eq(s->vms[0].mem.pages[OVC_PAGE_RESIDENT], 13);
	cr_assert_gt(s->vms[0].faults_per_sec, 0.0);
	cr_assert_eq(s->vms[1].faults_per_sec, 0.0);
	ovc_stats_read_unlock(host);

	/* A VM that goes leaves the next snapshot; the other keeps its id. */
	cr_assert_eq(ovc_vm_destroy(b), 0);
	ovc__host_tick(host);
	s = ovc_stats_read_lock(host);
	cr_assert_eq(s->nvms, 1);
	cr_assert_str_eq(s->vms[0].name, "alpha");
	ovc_stats_read_unlock(host);
	cr_assert_eq(ovc_vm_destroy(a), 0);
	host_done();
}

/* A reference outlives later publishes and the host's own reference. */
Test(stats, get_outlives_publish, .init = setup, .fini = teardown, .timeout = 10)
{
	const struct ovc_stats_snapshot *held, *s;
	struct ovc_vm *vm;
	int i;

	vm = ovc_vm_new(host, "held");
	cr_assert_not_null(vm);
	ovc__host_tick(host);
	held = ovc_stats_get(host);
	cr_assert_not_null(held);
	for (i = 0; i < 5; i++)
		ovc__host_tick(host);
	urcu_memb_barrier();	/* retired snapshots are freed now, if at all */
	cr_assert_eq(held->seq, 1);
	cr_assert_str_eq(held->vms[0].name, "held");
	s = ovc_stats_read_lock(host);
	cr_assert_eq(s->seq, 6);
	ovc_stats_read_unlock(host);
	cr_assert_eq(ovc_vm_destroy(vm), 0);
	host_done();
	/* The host is gone; the reference still reads (ASan proves no UAF). */
	cr_assert_str_eq(held->vms[0].name, "held");
	ovc_stats_put(held);
}

struct reader {
	struct ovc_host *host;
	atomic_bool stop;
	uint64_t reads;
	uint64_t bad;
};

static void *reader_thread(void *arg)
{
	struct reader *r = arg;
	uint64_t last = 0;

	ovc_thread_register();
	while (!atomic_load(&r->stop)) {
		const struct ovc_stats_snapshot *s = ovc_stats_read_lock(r->host);

		if (s) {
			/* Never older than one seen before; arrays consistent. */
			if (s->seq < last || s->nvms != 2 || strcmp(s->vms[1].name, "b"))
				r->bad++;
			last = s->seq;
		}
		ovc_stats_read_unlock(r->host);
		r->reads++;
	}
	ovc_thread_unregister();
	return NULL;
}

/* Readers run flat out while the manager publishes every 10 ms. */
Test(stats, readers_while_publishing, .timeout = 30)
{
	struct ovc_host_config cfg;
	struct ovc_vm *a, *b;
	struct reader r[2];
	pthread_t t[2];
	int i;

	ovc_host_config_init(&cfg);
	cfg.tick_ms = 10;
	host = ovc_host_new(&cfg);
	cr_assert_not_null(host);
	a = ovc_vm_new(host, "a");
	b = ovc_vm_new(host, "b");
	cr_assert(a && b);
	for (i = 0; i < 2; i++) {
		r[i] = (struct reader){ .host = host };
		cr_assert_eq(pthread_create(&t[i], NULL, reader_thread, &r[i]), 0);
	}
	while (ovc_host_ticks(host) < 30)
		usleep(5000);
	for (i = 0; i < 2; i++) {
		atomic_store(&r[i].stop, true);
		pthread_join(t[i], NULL);
		cr_assert_gt(r[i].reads, 0);
		cr_assert_eq(r[i].bad, 0);
	}
	cr_assert_eq(ovc_vm_destroy(a), 0);
	cr_assert_eq(ovc_vm_destroy(b), 0);
	host_done();
}

static void *burner(void *arg)
{
	atomic_int *tid = arg;

	atomic_store(tid, gettid());
	burn_ms(300);
	return NULL;
}

/* %USED comes from the kernel's schedstat for the registered thread. */
Test(stats, vcpu_schedstat, .init = setup, .fini = teardown, .timeout = 20)
{
	const struct ovc_stats_snapshot *s;
	const struct ovc_vcpu_snap *c;
	struct ovc_vcpu *vcpu;
	atomic_int tid = 0;
	struct ovc_vm *vm;
	pthread_t t;

	vm = ovc_vm_new(host, "cpu");
	cr_assert_not_null(vm);
	cr_assert_eq(pthread_create(&t, NULL, burner, &tid), 0);
	while (!atomic_load(&tid))
		usleep(100);
	vcpu = ovc_vm_add_vcpu(vm, atomic_load(&tid));
	cr_assert_not_null(vcpu);
	ovc__host_tick(host);
	usleep(150000);
	ovc__host_tick(host);
	s = ovc_stats_read_lock(host);
	cr_assert_eq(s->vms[0].nvcpus, 1);
	c = &s->vms[0].vcpus[0];
	cr_assert_eq(c->tid, atomic_load(&tid));
	cr_assert(c->schedstat_valid);
	cr_assert_gt(c->cpu_ns, 0);
	/* The thread burned most of the 150 ms: well above zero on any machine. */
	cr_assert_gt(c->used_pct, 5.0, "%%USED %.1f", c->used_pct);
	cr_assert_leq(c->used_pct, 100.0 * 1.2);
	cr_assert_geq(c->rdy_pct, 0.0);
	cr_assert_eq(s->vms[0].used_pct, c->used_pct);
	ovc_stats_read_unlock(host);
	pthread_join(t, NULL);

	/* The thread is gone: its schedstat cannot be read, and it says so. */
	ovc__host_tick(host);
	s = ovc_stats_read_lock(host);
	cr_assert_not(s->vms[0].vcpus[0].schedstat_valid);
	ovc_stats_read_unlock(host);
	cr_assert_eq(ovc_vcpu_remove(vcpu), 0);
	cr_assert_eq(ovc_vm_destroy(vm), 0);
	host_done();
}

Test(stats, policy_set_get_and_refusals, .init = setup, .fini = teardown, .timeout = 10)
{
	struct ovc_vm_policy p, q;
	const struct ovc_stats_snapshot *s;
	const char *why = NULL;
	struct ovc_vm *vm;

	vm = ovc_vm_new(host, "pol");
	cr_assert_not_null(vm);
	ovc_vm_policy_init(&p);
	cr_assert_eq(ovc_vm_policy_check(&p, &why), 0);
	cr_assert_null(why);
	p.mem_shares = 2000;
	p.mem_reservation_bytes = 64 * MiB;
	p.mem_limit_bytes = 128 * MiB;
	p.cpu_shares = 500;
	p.cpu_reservation = 0.5;
	p.cpu_limit = 1.5;
	cr_assert_eq(ovc_vm_set_policy(vm, &p), 0);
	cr_assert_eq(ovc_vm_get_policy(vm, &q), 0);
	cr_assert_eq(memcmp(&p, &q, sizeof(p)), 0);

	/* Each refusal names its reason and changes nothing. */
	for (int k = 0; k < 9; k++) {
		q = p;
		switch (k) {
		case 0: q.mem_shares = 0; break;
		case 1: q.mem_shares = OVC_SHARES_MAX + 1; break;
		case 2: q.cpu_shares = 0; break;
		case 3: q.mem_limit_bytes = 32 * MiB; break;
		case 4: q.cpu_reservation = -1.0; break;
		case 5: q.cpu_reservation = NAN; break;
		case 6: q.cpu_limit = INFINITY; break;
		case 7: q.cpu_limit = 0.25; break;
		case 8: q.cpu_limit = -0.5; break;
		}
		why = NULL;
		cr_assert_eq(ovc_vm_policy_check(&q, &why), -EINVAL, "case %d", k);
		cr_assert_not_null(why, "case %d", k);
		cr_assert_eq(ovc_vm_set_policy(vm, &q), -EINVAL, "case %d", k);
		cr_assert_eq(ovc_vm_get_policy(vm, &q), 0);
		cr_assert_eq(memcmp(&p, &q, sizeof(p)), 0, "case %d changed the policy", k);
	}
	cr_assert_eq(ovc_vm_policy_check(NULL, &why), -EINVAL);
	cr_assert_eq(ovc_vm_set_policy(NULL, &p), -EINVAL);
	cr_assert_eq(ovc_vm_set_policy(vm, NULL), -EINVAL);
	cr_assert_eq(ovc_vm_get_policy(vm, NULL), -EINVAL);
	/* No limit (0) is fine with any reservation. */
	q = p;
	q.mem_limit_bytes = 0;
	q.cpu_limit = 0;
	cr_assert_eq(ovc_vm_policy_check(&q, NULL), 0);

	ovc__host_tick(host);
	s = ovc_stats_read_lock(host);
	cr_assert_eq(s->vms[0].policy.mem_shares, 2000);
	cr_assert_eq(s->vms[0].policy.cpu_limit, 1.5);
	ovc_stats_read_unlock(host);
	cr_assert_eq(ovc_vm_destroy(vm), 0);
	host_done();
}

Test(stats, meminfo, .timeout = 10)
{
	struct ovc_host_mem_snap m;

	cr_assert_eq(ovc_host_read_meminfo(NULL), -EINVAL);
	cr_assert_eq(ovc_host_read_meminfo(&m), 0);
	cr_assert_gt(m.total_bytes, 64 * MiB);
	cr_assert_gt(m.free_bytes, 0);
	cr_assert_leq(m.free_bytes, m.total_bytes);
	cr_assert_leq(m.swap_free_bytes, m.swap_total_bytes);
	if (m.psi_valid) {
		cr_assert_geq(m.psi_some_avg10, 0.0);
		cr_assert_leq(m.psi_some_avg10, 100.0);
		cr_assert_geq(m.psi_full_avg10, 0.0);
	}
}

// SPDX-License-Identifier: MIT
/* bench/scn-cpusched-sim.c: the CPU scheduler's pure functions on 1,000 simulated VMs over 256 pCPUs in 8 NUMA nodes. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <ovc/ovc.h>

#include "harness.h"
#include "scenarios.h"

#ifndef OVC_BENCH_TOPOLOGY
#define OVC_BENCH_TOPOLOGY "tests/data/topo-8n-256c.xml"
#endif

const char ovcb_scn_cpusched_sim_help[] =
"cost of one CPU scheduler tick on 1,000 simulated VMs, 256 pCPUs, 8 nodes\n"
"options: [--vms N] [--ticks N] [--topology XML]\n"
"Builds snapshots of N simulated VMs (default 1000; 1-8 vCPUs, random\n"
"shares, a tenth with reservations, a tenth with limits) whose demand\n"
"follows a random walk with idle spells, and runs the scheduler's tick on\n"
"them for --ticks ticks of 100 ms (default 300): demand and entitlement\n"
"(ovc_cpu_plan_compute()) and NUMA placement (ovc_cpu_place(), rebalancing\n"
"every 2 s of simulated time) on an XML topology (default 8 nodes x 32\n"
"cores). Each VM receives min(demand, entitlement) until the next tick;\n"
"what it wanted beyond that shows as ready time, what it did not want as\n"
"halted time, so the next tick measures it as the real one would.\n"
"Metrics (CPU time of the ticking thread): ovc.cpu_tick_ms (median),\n"
"ovc.cpu_tick_p99_ms, ovc.cpu_place_ms, sim.capacity_used_pct,\n"
"sim.node_imbalance_pct. No peer: \"ok\" is false.\n";

#define TICK_NS 100000000ULL	/* 100 ms of simulated time per tick */

/*
 * The thread's CPU time: what a tick costs the manager thread, without the
 * waits of a shared machine (other builds run beside the benchmark).
 */
static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double quantile(double *v, unsigned int n, double q)
{
	qsort(v, n, sizeof(double), cmp_d);
	return v[(unsigned int)(q * (n - 1))];
}

/* A snapshot the simulation owns: arrays reused from tick to tick. */
struct sim {
	unsigned int nvms, nvcpus;
	struct ovc_stats_snapshot snap[2];
	struct ovc_vm_snap *vms[2];
	struct ovc_vcpu_snap *vcpus[2];
	double *want;		/* per VM: CPUs it would use (random walk) */
};

static double frand(void)
{
	return (double)rand() / RAND_MAX;
}

int ovcb_scn_cpusched_sim(struct ovcb *b, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "vms", required_argument, NULL, 'v' },
		{ "ticks", required_argument, NULL, 't' },
		{ "topology", required_argument, NULL, 'x' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	unsigned int nvms = 1000, ticks = 300, i, j, k, t, cur = 0;
	const char *xml = OVC_BENCH_TOPOLOGY;
	struct ovc_cpusched_config cfg;
	struct ovc_cpu_plan plans[2] = { { 0 }, { 0 } };
	struct ovc_cpu_placement pl = { 0 };
	struct ovc_topology *topo;
	double *tick_ms = NULL, *place_ms = NULL, used_pct = 0, imbalance = 0, capacity;
	struct sim s = { 0 };
	unsigned long val;
	char *end;
	int opt, ret;

	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 'v':
		case 't':
			val = strtoul(optarg, &end, 10);
			if (*end || val > 100000 || (opt == 'v' ? val < 1 : val < 2)) {
				fprintf(stderr, "cpusched-sim: --vms must be 1 to 100000, "
					"--ticks 2 to 100000\n");
				return 2;
			}
			if (opt == 'v')
				nvms = (unsigned int)val;
			else
				ticks = (unsigned int)val;
			break;
		case 'x':
			xml = optarg;
			break;
		case 'h':
			printf("%s", ovcb_scn_cpusched_sim_help);
			return 0;
		default:
			return 2;
		}
	}
	topo = ovc_topology_load(xml);
	if (!topo) {
		ret = -errno;
		fprintf(stderr, "cpusched-sim: cannot load topology %s: %s\n", xml, strerror(-ret));
		return ret;
	}
	capacity = ovc_topology_cores(topo, -1);
	srand(42);
	s.nvms = nvms;
	s.want = calloc(nvms, sizeof(double));
	for (k = 0; k < 2; k++)
		s.vms[k] = calloc(nvms, sizeof(struct ovc_vm_snap));
	tick_ms = calloc(ticks, sizeof(double));
	place_ms = calloc(ticks, sizeof(double));
	ret = -ENOMEM;
	if (!s.want || !s.vms[0] || !s.vms[1] || !tick_ms || !place_ms)
		goto out;
	for (i = 0; i < nvms; i++) {
		unsigned int n = 1 + (unsigned int)(rand() % 8);

		s.nvcpus += n;
		for (k = 0; k < 2; k++) {
			struct ovc_vm_snap *v = &s.vms[k][i];

			snprintf(v->name, sizeof(v->name), "vm%u", i);
			v->id = i + 1;
			v->nvcpus = n;
			ovc_vm_policy_init(&v->policy);
			v->policy.cpu_shares = 500 + (uint64_t)(rand() % 3500);
			if (i % 10 == 0)
				v->policy.cpu_reservation = 0.05 * n;
			if (i % 10 == 5)
				v->policy.cpu_limit = 0.5 * n;
		}
		s.want[i] = frand() * n;
	}
	for (k = 0; k < 2; k++) {
		struct ovc_vcpu_snap *cs = calloc(s.nvcpus, sizeof(*cs));

		if (!cs)
			goto out;
		s.vcpus[k] = cs;
		for (i = 0, j = 0; i < nvms; i++) {
			s.vms[k][i].vcpus = cs + j;
			for (t = 0; t < s.vms[k][i].nvcpus; t++, j++) {
				cs[j].index = t;
				cs[j].tid = (pid_t)(1000 + j);
				cs[j].schedstat_valid = true;
			}
		}
		s.snap[k].ncpus = (unsigned int)capacity;
		s.snap[k].nvms = nvms;
		s.snap[k].vms = s.vms[k];
	}

	ovc_cpusched_config_init(&cfg);
	cfg.capacity = capacity;
	printf("cpusched-sim: %u VMs, %u vCPUs on %.0f cores in %u nodes, %u ticks of 100 ms\n",
	       nvms, s.nvcpus, capacity, ovc_topology_nodes(topo), ticks);
	for (t = 0; t < ticks; t++) {
		if (t % 16 == 0 && ovcb_stopping(b)) {
			ret = -EINTR;
			goto out;
		}
		struct ovc_stats_snapshot *sn = &s.snap[t & 1];
		const struct ovc_stats_snapshot *prev = t ? &s.snap[(t - 1) & 1] : NULL;
		const struct ovc_cpu_plan *last = t ? &plans[cur] : NULL;
		double got_sum = 0;
		uint64_t t0, t1, t2;

		/* Advance the counters: each VM got min(want, entitled) spread over its vCPUs. */
		sn->seq = t + 1;
		sn->at_ns = (t + 1) * TICK_NS;
		for (i = 0; i < nvms; i++) {
			const struct ovc_vm_snap *pv = prev ? &prev->vms[i] : NULL;
			struct ovc_vm_snap *v = &s.vms[t & 1][i];
			double ent = last ? last->vms[i].entitled : (double)v->nvcpus;
			double got = fmin(s.want[i], ent), per = got / v->nvcpus,
			       rdy = (s.want[i] - got) / v->nvcpus, idle = 1.0 - s.want[i] / v->nvcpus;

			got_sum += got;
			for (j = 0; j < v->nvcpus; j++) {
				struct ovc_vcpu_snap *c = (struct ovc_vcpu_snap *)&v->vcpus[j];
				const struct ovc_vcpu_snap *pc = pv ? &pv->vcpus[j] : NULL;

				c->cpu_ns = (pc ? pc->cpu_ns : 0) + (uint64_t)(per * TICK_NS);
				c->wait_ns = (pc ? pc->wait_ns : 0) + (uint64_t)(rdy * TICK_NS);
				c->halt_ns = (pc ? pc->halt_ns : 0) + (uint64_t)(fmax(idle, 0) * TICK_NS);
			}
			/* Random walk with idle spells and bursts. */
			if (frand() < 0.02)
				s.want[i] = frand() < 0.5 ? 0 : v->nvcpus;
			else
				s.want[i] = fmin(v->nvcpus, fmax(0, s.want[i] + (frand() - 0.5) * 0.2 * v->nvcpus));
		}
		t0 = now_ns();
		ret = ovc_cpu_plan_compute(prev, sn, last, &cfg, &plans[cur ^ 1]);
		t1 = now_ns();
		if (ret) {
			fprintf(stderr, "cpusched-sim: plan: %s\n", strerror(-ret));
			goto out;
		}
		cur ^= 1;
		ret = ovc_cpu_place(topo, &plans[cur], t % 20 == 0, cfg.imbalance_pct, &pl);
		t2 = now_ns();
		if (ret) {
			fprintf(stderr, "cpusched-sim: place: %s\n", strerror(-ret));
			goto out;
		}
		tick_ms[t] = (double)(t2 - t0) / 1e6;
		place_ms[t] = (double)(t2 - t1) / 1e6;
		if (t >= ticks / 2) {
			used_pct += 100.0 * got_sum / capacity / (ticks - ticks / 2);
			imbalance = fmax(imbalance, t % 20 == 0 ? pl.imbalance_pct : 0);
		}
	}

	ovcb_param_int(b, "vms", nvms);
	ovcb_param_int(b, "vcpus", s.nvcpus);
	ovcb_param_int(b, "ticks", ticks);
	ovcb_param_real(b, "capacity", capacity);
	ovcb_param_str(b, "topology", xml);
	printf("tick: median %.3f ms, p99 %.3f ms (placement %.3f ms); capacity used %.1f%%, "
	       "node imbalance after rebalance %.1f%%\n", quantile(tick_ms, ticks, 0.5),
	       quantile(tick_ms, ticks, 0.99), quantile(place_ms, ticks, 0.5), used_pct, imbalance);
	ovcb_metric(b, "ovc.cpu_tick_ms", quantile(tick_ms, ticks, 0.5));
	ovcb_metric(b, "ovc.cpu_tick_p99_ms", quantile(tick_ms, ticks, 0.99));
	ovcb_metric(b, "ovc.cpu_place_ms", quantile(place_ms, ticks, 0.5));
	ovcb_metric(b, "sim.capacity_used_pct", used_pct);
	ovcb_metric(b, "sim.node_imbalance_pct", imbalance);
	/* No peer: nothing else computes CPU entitlements for KVM VMs here. */
	ovcb_set_ok(b, false);
	ret = 0;
out:
	ovc_cpu_plan_fini(&plans[0]);
	ovc_cpu_plan_fini(&plans[1]);
	ovc_cpu_placement_fini(&pl);
	ovc_topology_destroy(topo);
	for (k = 0; k < 2; k++) {
		free(s.vms[k]);
		free(s.vcpus[k]);
	}
	free(s.want);
	free(tick_ms);
	free(place_ms);
	return ret;
}

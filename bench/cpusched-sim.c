// SPDX-License-Identifier: MIT
/* bench/cpusched-sim.c: the CPU scheduler's pure functions on 1,000 simulated VMs over 256 pCPUs in 8 NUMA nodes. */

/*
 * cpusched-sim - cost of one CPU scheduler tick at scale
 *
 * Builds snapshots of VMS simulated VMs (1-8 vCPUs, random shares, a tenth
 * with reservations, a tenth with limits) whose demand follows a random
 * walk with idle spells, and runs the scheduler's tick on them: demand and
 * entitlement (ovc_cpu_plan_compute()) and NUMA placement (ovc_cpu_place(),
 * rebalancing every 2 s of simulated time) on an XML topology of 8 nodes x
 * 32 cores. Each simulated VM receives min(demand, entitlement) until the
 * next tick; what it wanted beyond that shows as ready time, what it did
 * not want as halted time, so the next tick measures it as the real one would.
 *
 * Usage: cpusched-sim [--vms N] [--ticks N] [--topology XML] [--json FILE]
 * Metrics (CPU time of the ticking thread): ovc.cpu_tick_ms (median),
 * ovc.cpu_tick_p99_ms, ovc.cpu_place_ms,
 * sim.capacity_used_pct, sim.node_imbalance_pct.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include <ovc/ovc.h>

#ifndef OVC_BENCH_TOPOLOGY
#define OVC_BENCH_TOPOLOGY "tests/data/topo-8n-256c.xml"
#endif

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

static void usage(void)
{
	fprintf(stderr, "usage: cpusched-sim [--vms N] [--ticks N] [--topology XML] [--json FILE]\n");
}

int main(int argc, char **argv)
{
	unsigned int nvms = 1000, ticks = 300, i, j, k, t, cur = 0;
	const char *xml = OVC_BENCH_TOPOLOGY, *json = NULL;
	struct ovc_cpusched_config cfg;
	struct ovc_cpu_plan plans[2] = { { 0 }, { 0 } };
	struct ovc_cpu_placement pl = { 0 };
	struct ovc_topology *topo;
	double *tick_ms, *place_ms, used_pct = 0, imbalance = 0, capacity;
	struct sim s = { 0 };
	struct utsname un;
	json_t *out, *m;
	int ret;

	for (i = 1; i < (unsigned int)argc; i++) {
		if (!strcmp(argv[i], "--vms") && i + 1 < (unsigned int)argc)
			nvms = (unsigned int)strtoul(argv[++i], NULL, 0);
		else if (!strcmp(argv[i], "--ticks") && i + 1 < (unsigned int)argc)
			ticks = (unsigned int)strtoul(argv[++i], NULL, 0);
		else if (!strcmp(argv[i], "--topology") && i + 1 < (unsigned int)argc)
			xml = argv[++i];
		else if (!strcmp(argv[i], "--json") && i + 1 < (unsigned int)argc)
			json = argv[++i];
		else {
			usage();
			return 2;
		}
	}
	if (!nvms || ticks < 2) {
		usage();
		return 2;
	}
	topo = ovc_topology_load(xml);
	if (!topo) {
		fprintf(stderr, "cpusched-sim: cannot load topology %s: %s\n", xml, strerror(errno));
		return 1;
	}
	capacity = ovc_topology_cores(topo, -1);
	srand(42);
	s.nvms = nvms;
	s.want = calloc(nvms, sizeof(double));
	for (k = 0; k < 2; k++)
		s.vms[k] = calloc(nvms, sizeof(struct ovc_vm_snap));
	tick_ms = calloc(ticks, sizeof(double));
	place_ms = calloc(ticks, sizeof(double));
	if (!s.want || !s.vms[0] || !s.vms[1] || !tick_ms || !place_ms)
		return 1;
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
		struct ovc_vcpu_snap *c = calloc(s.nvcpus, sizeof(*c));

		if (!c)
			return 1;
		s.vcpus[k] = c;
		for (i = 0, j = 0; i < nvms; i++) {
			s.vms[k][i].vcpus = c + j;
			for (t = 0; t < s.vms[k][i].nvcpus; t++, j++) {
				c[j].index = t;
				c[j].tid = (pid_t)(1000 + j);
				c[j].schedstat_valid = true;
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
			return 1;
		}
		cur ^= 1;
		ret = ovc_cpu_place(topo, &plans[cur], t % 20 == 0, cfg.imbalance_pct, &pl);
		t2 = now_ns();
		if (ret) {
			fprintf(stderr, "cpusched-sim: place: %s\n", strerror(-ret));
			return 1;
		}
		tick_ms[t] = (double)(t2 - t0) / 1e6;
		place_ms[t] = (double)(t2 - t1) / 1e6;
		if (t >= ticks / 2) {
			used_pct += 100.0 * got_sum / capacity / (ticks - ticks / 2);
			imbalance = fmax(imbalance, t % 20 == 0 ? pl.imbalance_pct : 0);
		}
	}

	out = json_object();
	m = json_object();
	uname(&un);
	json_object_set_new(out, "scenario", json_string("cpusched-sim"));
	json_object_set_new(out, "machine", json_pack("{s:i, s:s}",
		"cpus", (int)sysconf(_SC_NPROCESSORS_ONLN), "kernel", un.release));
	json_object_set_new(out, "params", json_pack("{s:i, s:i, s:i, s:f, s:s}", "vms", (int)nvms,
		"vcpus", (int)s.nvcpus, "ticks", (int)ticks, "capacity", capacity, "topology", xml));
	json_object_set_new(m, "ovc.cpu_tick_ms", json_real(quantile(tick_ms, ticks, 0.5)));
	json_object_set_new(m, "ovc.cpu_tick_p99_ms", json_real(quantile(tick_ms, ticks, 0.99)));
	json_object_set_new(m, "ovc.cpu_place_ms", json_real(quantile(place_ms, ticks, 0.5)));
	json_object_set_new(m, "sim.capacity_used_pct", json_real(used_pct));
	json_object_set_new(m, "sim.node_imbalance_pct", json_real(imbalance));
	json_object_set_new(out, "metrics", m);
	json_object_set_new(out, "ok", json_true());
	printf("tick: median %.3f ms, p99 %.3f ms (placement %.3f ms); capacity used %.1f%%, "
	       "node imbalance after rebalance %.1f%%\n", quantile(tick_ms, ticks, 0.5),
	       quantile(tick_ms, ticks, 0.99), quantile(place_ms, ticks, 0.5), used_pct, imbalance);
	if (json && json_dump_file(out, json, JSON_INDENT(2)))
		fprintf(stderr, "cpusched-sim: cannot write %s\n", json);
	json_decref(out);
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
	return 0;
}

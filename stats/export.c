// SPDX-License-Identifier: MIT
/* stats/export.c: snapshots as JSON (the control socket's "stats") and as Prometheus text. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <ovc/export.h>
#include "core/core-internal.h"
#include "stats/stats-internal.h"

#define PAGE ((uint64_t)OVC_PAGE_SIZE)

/* jansson integers are signed: counters past 2^63 are clamped, never wrapped. */
static json_t *ju(uint64_t v)
{
	return json_integer(v > (uint64_t)INT64_MAX ? INT64_MAX : (json_int_t)v);
}

/* NaN and infinities are not JSON: they go out as null. */
static json_t *jd(double v)
{
	return isfinite(v) ? json_real(v) : json_null();
}

static int set(json_t *o, const char *key, json_t *v)
{
	return json_object_set_new(o, key, v);
}

static json_t *host_json(const struct ovc_host_mem_snap *h)
{
	json_t *o = json_object();

	set(o, "total_bytes", ju(h->total_bytes));
	set(o, "free_bytes", ju(h->free_bytes));
	set(o, "available_bytes", ju(h->available_bytes));
	set(o, "swap_total_bytes", ju(h->swap_total_bytes));
	set(o, "swap_free_bytes", ju(h->swap_free_bytes));
	if (h->psi_valid)
		set(o, "psi", json_pack("{s:o,s:o}", "some_avg10", jd(h->psi_some_avg10),
					"full_avg10", jd(h->psi_full_avg10)));
	else
		set(o, "psi", json_null());
	set(o, "state", json_string(ovc__mem_state_name(ovc__mem_state(h))));
	return o;
}

static json_t *balloon_json(const struct ovc_balloon_stats *b)
{
	json_t *o = json_object(), *st = json_object();
	int i;

	set(o, "target_bytes", ju(b->target_pages * PAGE));
	set(o, "num_bytes", ju(b->num_pages * PAGE));
	set(o, "actual_bytes", ju(b->actual_pages * PAGE));
	set(o, "ballooned_bytes", ju(b->ballooned_pages * PAGE));
	set(o, "inflated_pages", ju(b->inflated));
	set(o, "deflated_pages", ju(b->deflated));
	set(o, "reported_pages", ju(b->reported_pages));
	set(o, "stalled", json_boolean(b->stalled));
	set(o, "stalls", ju(b->stalls));
	set(o, "bad_requests", ju(b->bad_requests));
	set(o, "move_errors", ju(b->move_errors));
	for (i = 0; i < OVC_BALLOON_S_NR; i++) {
		if (b->stats_valid & (1u << i))
			set(st, ovc_balloon_stat_name(i), ju(b->stats[i]));
	}
	set(o, "guest", st);
	return o;
}

static json_t *pager_json(const struct ovc_pager_stats *p)
{
	json_t *o = json_object();

	set(o, "reclaimed_pages", ju(p->reclaimed));
	set(o, "zero_pages", ju(p->zero));
	set(o, "compressed_pages", ju(p->compressed));
	set(o, "swapped_pages", ju(p->swapped));
	set(o, "evicted_pages", ju(p->evicted));
	set(o, "store_errors", ju(p->store_errors));
	set(o, "zip_pages", ju(p->zip_pages));
	set(o, "zip_bytes", ju(p->zip_bytes));
	set(o, "swap_pages", ju(p->swap_pages));
	set(o, "swap_slots", ju(p->swap_slots));
	set(o, "prefetched_pages", ju(p->prefetched));
	return o;
}

static json_t *vcpu_json(const struct ovc_vcpu_snap *c)
{
	json_t *o = json_object();

	set(o, "index", json_integer(c->index));
	set(o, "tid", json_integer(c->tid));
	set(o, "run_ns", ju(c->run_ns));
	set(o, "halt_ns", ju(c->halt_ns));
	set(o, "cpu_ns", ju(c->cpu_ns));
	set(o, "wait_ns", ju(c->wait_ns));
	set(o, "throttled_ns", ju(c->throttled_ns));
	set(o, "halts", ju(c->halts));
	set(o, "used_pct", jd(c->used_pct));
	set(o, "rdy_pct", jd(c->rdy_pct));
	set(o, "halt_pct", jd(c->halt_pct));
	set(o, "schedstat_valid", json_boolean(c->schedstat_valid));
	return o;
}

json_t *ovc__vm_snap_json(const struct ovc_vm_snap *v)
{
	json_t *o = json_object(), *pages = json_object(), *faults = json_object();
	json_t *hist = json_array(), *vcpus = json_array();
	const struct ovc_vm_policy *p = &v->policy;
	const struct ovc_vm_targets *t = &v->targets;
	const struct ovc_wss_snap *w = &v->wss;
	unsigned int i, last = 0;

	set(o, "name", json_string(v->name));
	set(o, "id", ju(v->id));
	set(o, "ram_bytes", ju(v->mem.ram_bytes));
	set(o, "host_bytes", ju(v->mem.host_bytes));
	for (i = 0; i < OVC_PAGE_NR_STATES; i++)
		set(pages, ovc_page_state_name((int)i), ju(v->mem.pages[i]));
	set(o, "pages", pages);
	set(o, "busy_pages", ju(v->mem.busy_pages));
	for (i = 0; i < OVC_FAULT_NR_KINDS; i++)
		set(faults, ovc_fault_kind_name((int)i), ju(v->mem.faults[i]));
	set(o, "faults", faults);
	/* Trailing empty buckets say nothing: the array stops at the last used one. */
	for (i = 0; i < OVC_FAULT_HIST_BUCKETS; i++)
		if (v->mem.fault_ns_hist[i])
			last = i + 1;
	for (i = 0; i < last; i++)
		json_array_append_new(hist, ju(v->mem.fault_ns_hist[i]));
	set(o, "fault_ns_log2_hist", hist);
	set(o, "transitions_committed", ju(v->mem.transitions_committed));
	set(o, "transitions_aborted", ju(v->mem.transitions_aborted));
	set(o, "store_errors", ju(v->mem.store_errors));
	set(o, "faults_per_sec", jd(v->faults_per_sec));
	set(o, "pageins_per_sec", jd(v->pageins_per_sec));
	set(o, "pageouts_per_sec", jd(v->pageouts_per_sec));
	set(o, "balloon", v->has_balloon ? balloon_json(&v->balloon) : json_null());
	set(o, "pager", v->has_pager ? pager_json(&v->pager) : json_null());
	set(o, "wss", json_pack("{s:b,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o}",
				"valid", w->valid, "period_ns", ju(w->period_ns),
				"sampled", ju(w->sampled), "touched", ju(w->touched),
				"fast", jd(w->fast), "slow", jd(w->slow),
				"active_frac", jd(w->active_frac),
				"active_bytes", ju(w->active_bytes), "periods", ju(w->periods)));
	set(o, "policy", json_pack("{s:o,s:o,s:o,s:o,s:o,s:o}",
				   "mem_shares", ju(p->mem_shares),
				   "mem_reservation_bytes", ju(p->mem_reservation_bytes),
				   "mem_limit_bytes", ju(p->mem_limit_bytes),
				   "cpu_shares", ju(p->cpu_shares),
				   "cpu_reservation", jd(p->cpu_reservation),
				   "cpu_limit", jd(p->cpu_limit)));
	set(o, "targets", json_pack("{s:o,s:o,s:o,s:o,s:o}",
				    "mem_target_bytes", ju(t->mem_target_bytes),
				    "balloon_target_bytes", ju(t->balloon_target_bytes),
				    "reclaim_pages", ju(t->reclaim_pages),
				    "cpu_entitled", jd(t->cpu_entitled),
				    "cpu_demand", jd(t->cpu_demand)));
	for (i = 0; i < v->nvcpus; i++)
		json_array_append_new(vcpus, vcpu_json(&v->vcpus[i]));
	set(o, "vcpus", vcpus);
	set(o, "used_pct", jd(v->used_pct));
	set(o, "rdy_pct", jd(v->rdy_pct));
	return o;
}

json_t *ovc__stats_json(const struct ovc_stats_snapshot *s, const char *vm)
{
	json_t *o, *vms;
	unsigned int i;

	if (vm && !ovc_stats_find_vm(s, vm)) {
		errno = ENOENT;
		return NULL;
	}
	o = json_object();
	vms = json_array();
	if (!o || !vms) {
		json_decref(o);
		json_decref(vms);
		errno = ENOMEM;
		return NULL;
	}
	set(o, "seq", ju(s->seq));
	set(o, "at_ns", ju(s->at_ns));
	set(o, "interval_ns", ju(s->interval_ns));
	set(o, "fold_ns", ju(s->fold_ns));
	set(o, "ncpus", json_integer(s->ncpus));
	set(o, "host", host_json(&s->host));
	for (i = 0; i < s->nvms; i++) {
		if (!vm || !strcmp(s->vms[i].name, vm))
			json_array_append_new(vms, ovc__vm_snap_json(&s->vms[i]));
	}
	set(o, "vms", vms);
	return o;
}

OVC_EXPORT char *ovc_stats_format_json(const struct ovc_stats_snapshot *snap, const char *vm)
{
	json_t *o;
	char *s;

	if (!snap) {
		errno = EINVAL;
		return NULL;
	}
	o = ovc__stats_json(snap, vm);
	if (!o)
		return NULL;
	s = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	if (!s)
		errno = ENOMEM;
	return s;
}

/*
 * ESX's free-memory states, by the share of host memory available: high at
 * 6 % and more, soft from 4 %, hard from 2 %, low below.
 */
enum ovc__mem_state ovc__mem_state(const struct ovc_host_mem_snap *h)
{
	double pct;

	if (!h->total_bytes)
		return OVC__MEM_HIGH;
	pct = 100.0 * (double)h->available_bytes / (double)h->total_bytes;
	if (pct >= 6.0)
		return OVC__MEM_HIGH;
	if (pct >= 4.0)
		return OVC__MEM_SOFT;
	if (pct >= 2.0)
		return OVC__MEM_HARD;
	return OVC__MEM_LOW;
}

const char *ovc__mem_state_name(enum ovc__mem_state st)
{
	static const char *const names[] = { "high", "soft", "hard", "low" };

	return (unsigned int)st < OVC_ARRAY_SIZE(names) ? names[st] : "unknown";
}

/* Prometheus text exposition. */

enum { GAUGE, COUNTER };

struct prom {
	FILE *f;
	const struct ovc_stats_snapshot *s;
};

static void family(struct prom *p, const char *name, int type, const char *help)
{
	fprintf(p->f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name,
		type == COUNTER ? "counter" : "gauge");
}

/* Label values: backslash, double quote and newline escaped. */
static void label_value(FILE *f, const char *v)
{
	for (; *v; v++) {
		if (*v == '\\' || *v == '"')
			fprintf(f, "\\%c", *v);
		else if (*v == '\n')
			fputs("\\n", f);
		else
			fputc(*v, f);
	}
}

static void value(FILE *f, double v)
{
	if (isnan(v))
		fputs(" NaN\n", f);
	else if (isinf(v))
		fputs(v > 0 ? " +Inf\n" : " -Inf\n", f);
	else if (v == floor(v) && fabs(v) < 1e15)
		fprintf(f, " %.0f\n", v);
	else
		fprintf(f, " %.9g\n", v);
}

static void sample_u(FILE *f, const char *name, uint64_t v)
{
	fprintf(f, "%s %llu\n", name, (unsigned long long)v);
}

static void vm_sample(FILE *f, const char *name, const char *vm, const char *extra, double v)
{
	fprintf(f, "%s{vm=\"", name);
	label_value(f, vm);
	fprintf(f, "\"%s%s}", extra ? "," : "", extra ? extra : "");
	value(f, v);
}

/* One per-VM family: a value for each VM, from @get. */
typedef double (*vm_value_fn)(const struct ovc_vm_snap *v);

struct vm_metric {
	const char *name;
	int type;
	const char *help;
	vm_value_fn get;
	bool (*has)(const struct ovc_vm_snap *v);	/* NULL: every VM */
};

static bool has_balloon(const struct ovc_vm_snap *v) { return v->has_balloon; }
static bool has_pager(const struct ovc_vm_snap *v) { return v->has_pager; }
static bool has_wss(const struct ovc_vm_snap *v) { return v->wss.valid; }

#define PAGES(st) ((double)(v->mem.pages[st] * PAGE))
static double m_ram(const struct ovc_vm_snap *v) { return (double)v->mem.ram_bytes; }
static double m_host(const struct ovc_vm_snap *v) { return (double)v->mem.host_bytes; }
static double m_resident(const struct ovc_vm_snap *v) { return PAGES(OVC_PAGE_RESIDENT); }
static double m_zero(const struct ovc_vm_snap *v) { return PAGES(OVC_PAGE_ZERO); }
static double m_ballooned(const struct ovc_vm_snap *v) { return PAGES(OVC_PAGE_BALLOONED); }
static double m_shared(const struct ovc_vm_snap *v) { return PAGES(OVC_PAGE_SHARED); }
static double m_compressed(const struct ovc_vm_snap *v) { return PAGES(OVC_PAGE_COMPRESSED); }
static double m_swapped(const struct ovc_vm_snap *v) { return PAGES(OVC_PAGE_SWAPPED); }
static double m_busy(const struct ovc_vm_snap *v) { return (double)v->mem.busy_pages; }
static double m_store_err(const struct ovc_vm_snap *v) { return (double)v->mem.store_errors; }
static double m_wss(const struct ovc_vm_snap *v) { return (double)v->wss.active_bytes; }
static double m_mem_shares(const struct ovc_vm_snap *v) { return (double)v->policy.mem_shares; }
static double m_mem_res(const struct ovc_vm_snap *v) { return (double)v->policy.mem_reservation_bytes; }
static double m_mem_lim(const struct ovc_vm_snap *v) { return (double)v->policy.mem_limit_bytes; }
static double m_cpu_shares(const struct ovc_vm_snap *v) { return (double)v->policy.cpu_shares; }
static double m_cpu_res(const struct ovc_vm_snap *v) { return v->policy.cpu_reservation; }
static double m_cpu_lim(const struct ovc_vm_snap *v) { return v->policy.cpu_limit; }
static double m_mem_target(const struct ovc_vm_snap *v) { return (double)v->targets.mem_target_bytes; }
static double m_cpu_ent(const struct ovc_vm_snap *v) { return v->targets.cpu_entitled; }
static double m_cpu_dem(const struct ovc_vm_snap *v) { return v->targets.cpu_demand; }
static double m_vcpus(const struct ovc_vm_snap *v) { return v->nvcpus; }
static double m_bl_target(const struct ovc_vm_snap *v) { return (double)(v->balloon.target_pages * PAGE); }
static double m_bl_size(const struct ovc_vm_snap *v) { return (double)(v->balloon.actual_pages * PAGE); }
static double m_bl_held(const struct ovc_vm_snap *v) { return (double)(v->balloon.ballooned_pages * PAGE); }
static double m_bl_infl(const struct ovc_vm_snap *v) { return (double)(v->balloon.inflated * PAGE); }
static double m_bl_defl(const struct ovc_vm_snap *v) { return (double)(v->balloon.deflated * PAGE); }
static double m_bl_stalled(const struct ovc_vm_snap *v) { return v->balloon.stalled; }
static double m_bl_stalls(const struct ovc_vm_snap *v) { return (double)v->balloon.stalls; }
static double m_pg_recl(const struct ovc_vm_snap *v) { return (double)(v->pager.reclaimed * PAGE); }
static double m_pg_evict(const struct ovc_vm_snap *v) { return (double)(v->pager.evicted * PAGE); }
static double m_pg_pref(const struct ovc_vm_snap *v) { return (double)(v->pager.prefetched * PAGE); }
static double m_pg_err(const struct ovc_vm_snap *v) { return (double)v->pager.store_errors; }
static double m_pg_zip(const struct ovc_vm_snap *v) { return (double)v->pager.zip_bytes; }
static double m_pg_swap(const struct ovc_vm_snap *v) { return (double)(v->pager.swap_slots * PAGE); }
#undef PAGES

static const struct vm_metric vm_metrics[] = {
	{ "ovc_vm_ram_bytes", GAUGE, "Guest RAM registered.", m_ram },
	{ "ovc_vm_host_bytes", GAUGE, "Host memory the guest RAM holds now.", m_host },
	{ "ovc_vm_resident_bytes", GAUGE, "Guest memory resident in host RAM.", m_resident },
	{ "ovc_vm_zero_bytes", GAUGE, "Guest memory known to be zero (no host memory).", m_zero },
	{ "ovc_vm_ballooned_bytes", GAUGE, "Guest memory given back through the balloon.", m_ballooned },
	{ "ovc_vm_shared_bytes", GAUGE, "Guest memory shared with identical pages.", m_shared },
	{ "ovc_vm_compressed_bytes", GAUGE, "Guest memory held compressed.", m_compressed },
	{ "ovc_vm_swapped_bytes", GAUGE, "Guest memory held in the swap file.", m_swapped },
	{ "ovc_vm_busy_pages", GAUGE, "Pages under a transition at the snapshot.", m_busy },
	{ "ovc_vm_store_errors_total", COUNTER, "Store loads that failed.", m_store_err },
	{ "ovc_vm_working_set_bytes", GAUGE, "Working-set (active memory) estimate.", m_wss, has_wss },
	{ "ovc_vm_mem_shares", GAUGE, "Memory shares.", m_mem_shares },
	{ "ovc_vm_mem_reservation_bytes", GAUGE, "Memory reservation.", m_mem_res },
	{ "ovc_vm_mem_limit_bytes", GAUGE, "Memory limit (0: none).", m_mem_lim },
	{ "ovc_vm_mem_target_bytes", GAUGE, "Memory the schedulers entitle the VM to (0: none set).", m_mem_target },
	{ "ovc_vm_cpu_shares", GAUGE, "CPU shares.", m_cpu_shares },
	{ "ovc_vm_cpu_reservation_cpus", GAUGE, "CPU reservation in physical CPUs.", m_cpu_res },
	{ "ovc_vm_cpu_limit_cpus", GAUGE, "CPU limit in physical CPUs (0: none).", m_cpu_lim },
	{ "ovc_vm_cpu_entitled_cpus", GAUGE, "CPU entitlement in physical CPUs.", m_cpu_ent },
	{ "ovc_vm_cpu_demand_cpus", GAUGE, "Estimated CPU demand in physical CPUs.", m_cpu_dem },
	{ "ovc_vm_vcpus", GAUGE, "Registered vCPUs.", m_vcpus },
	{ "ovc_vm_balloon_target_bytes", GAUGE, "What the balloon is asked to hold.", m_bl_target, has_balloon },
	{ "ovc_vm_balloon_size_bytes", GAUGE, "What the guest driver says the balloon holds.", m_bl_size, has_balloon },
	{ "ovc_vm_balloon_held_bytes", GAUGE, "Pages the device holds for the balloon.", m_bl_held, has_balloon },
	{ "ovc_vm_balloon_inflated_bytes_total", COUNTER, "Memory the guest gave to the balloon.", m_bl_infl, has_balloon },
	{ "ovc_vm_balloon_deflated_bytes_total", COUNTER, "Memory the balloon gave back.", m_bl_defl, has_balloon },
	{ "ovc_vm_balloon_stalled", GAUGE, "1 while the guest does not follow the balloon.", m_bl_stalled, has_balloon },
	{ "ovc_vm_balloon_stalls_total", COUNTER, "Times the balloon stalled.", m_bl_stalls, has_balloon },
	{ "ovc_vm_pager_reclaimed_bytes_total", COUNTER, "Memory the pager made non-resident.", m_pg_recl, has_pager },
	{ "ovc_vm_pager_evicted_bytes_total", COUNTER, "Compressed memory moved to the swap file.", m_pg_evict, has_pager },
	{ "ovc_vm_pager_prefetched_bytes_total", COUNTER, "Memory brought back ahead of the guest.", m_pg_pref, has_pager },
	{ "ovc_vm_pager_store_errors_total", COUNTER, "Page-outs a store refused.", m_pg_err, has_pager },
	{ "ovc_vm_pager_zip_host_bytes", GAUGE, "Host memory the compressed tier uses.", m_pg_zip, has_pager },
	{ "ovc_vm_pager_swap_capacity_bytes", GAUGE, "Size of the swap file.", m_pg_swap, has_pager },
};

static void vm_families(struct prom *p)
{
	const struct ovc_stats_snapshot *s = p->s;
	unsigned int m, i;

	for (m = 0; m < OVC_ARRAY_SIZE(vm_metrics); m++) {
		const struct vm_metric *d = &vm_metrics[m];
		bool any = false;

		for (i = 0; i < s->nvms; i++)
			any |= !d->has || d->has(&s->vms[i]);
		if (!any)
			continue;
		family(p, d->name, d->type, d->help);
		for (i = 0; i < s->nvms; i++) {
			if (!d->has || d->has(&s->vms[i]))
				vm_sample(p->f, d->name, s->vms[i].name, NULL, d->get(&s->vms[i]));
		}
	}
}

static void fault_families(struct prom *p)
{
	const struct ovc_stats_snapshot *s = p->s;
	const char *name = "ovc_vm_fault_service_seconds";
	unsigned int i, k;
	char extra[64];

	if (!s->nvms)
		return;
	family(p, "ovc_vm_faults_total", COUNTER, "Guest page faults served, by how.");
	for (i = 0; i < s->nvms; i++) {
		for (k = 0; k < OVC_FAULT_NR_KINDS; k++) {
			snprintf(extra, sizeof(extra), "kind=\"%s\"", ovc_fault_kind_name((int)k));
			vm_sample(p->f, "ovc_vm_faults_total", s->vms[i].name, extra,
				  (double)s->vms[i].mem.faults[k]);
		}
	}
	family(p, "ovc_vm_transitions_total", COUNTER, "Page transitions, by outcome.");
	for (i = 0; i < s->nvms; i++) {
		vm_sample(p->f, "ovc_vm_transitions_total", s->vms[i].name, "result=\"committed\"",
			  (double)s->vms[i].mem.transitions_committed);
		vm_sample(p->f, "ovc_vm_transitions_total", s->vms[i].name, "result=\"aborted\"",
			  (double)s->vms[i].mem.transitions_aborted);
	}
	/* Bucket i of the log2 histogram holds [2^i, 2^(i+1)) ns: le is its upper end. */
	fprintf(p->f, "# HELP %s Time from a fault's message to its page in place.\n"
		"# TYPE %s histogram\n", name, name);
	for (i = 0; i < s->nvms; i++) {
		const struct ovc_vm_snap *v = &s->vms[i];
		uint64_t cum = 0;
		double sum = 0;

		for (k = 0; k < OVC_FAULT_HIST_BUCKETS; k++) {
			cum += v->mem.fault_ns_hist[k];
			/* The bucket's midpoint stands in for its members in the sum. */
			sum += (double)v->mem.fault_ns_hist[k] * 1.5 * ldexp(1.0, (int)k) / 1e9;
			if (k < 10 || k > 34)	/* 1 us .. 34 s: the rest folds into +Inf */
				continue;
			snprintf(extra, sizeof(extra), "le=\"%.9g\"", ldexp(1.0, (int)k + 1) / 1e9);
			vm_sample(p->f, "ovc_vm_fault_service_seconds_bucket", v->name, extra, (double)cum);
		}
		vm_sample(p->f, "ovc_vm_fault_service_seconds_bucket", v->name, "le=\"+Inf\"", (double)cum);
		vm_sample(p->f, "ovc_vm_fault_service_seconds_sum", v->name, NULL, sum);
		vm_sample(p->f, "ovc_vm_fault_service_seconds_count", v->name, NULL, (double)cum);
	}
}

struct vcpu_metric {
	const char *name;
	const char *help;
	size_t off;	/* of a uint64_t in struct ovc_vcpu_snap */
	double scale;
};

static const struct vcpu_metric vcpu_metrics[] = {
	{ "ovc_vcpu_run_seconds_total", "Time inside KVM_RUN.",
	  offsetof(struct ovc_vcpu_snap, run_ns), 1e-9 },
	{ "ovc_vcpu_halt_seconds_total", "Time the guest was idle.",
	  offsetof(struct ovc_vcpu_snap, halt_ns), 1e-9 },
	{ "ovc_vcpu_cpu_seconds_total", "Time on a physical CPU (schedstat).",
	  offsetof(struct ovc_vcpu_snap, cpu_ns), 1e-9 },
	{ "ovc_vcpu_ready_seconds_total", "Time runnable but waiting for a CPU (schedstat).",
	  offsetof(struct ovc_vcpu_snap, wait_ns), 1e-9 },
	{ "ovc_vcpu_throttled_seconds_total", "Time held back by the CPU limit.",
	  offsetof(struct ovc_vcpu_snap, throttled_ns), 1e-9 },
	{ "ovc_vcpu_halts_total", "Idle periods.", offsetof(struct ovc_vcpu_snap, halts), 1 },
};

static void vcpu_families(struct prom *p)
{
	const struct ovc_stats_snapshot *s = p->s;
	unsigned int m, i, j, n = 0;
	char extra[32];

	for (i = 0; i < s->nvms; i++)
		n += s->vms[i].nvcpus;
	if (!n)
		return;
	for (m = 0; m < OVC_ARRAY_SIZE(vcpu_metrics); m++) {
		const struct vcpu_metric *d = &vcpu_metrics[m];

		family(p, d->name, COUNTER, d->help);
		for (i = 0; i < s->nvms; i++) {
			for (j = 0; j < s->vms[i].nvcpus; j++) {
				const struct ovc_vcpu_snap *c = &s->vms[i].vcpus[j];
				uint64_t raw;

				memcpy(&raw, (const char *)c + d->off, sizeof(raw));
				snprintf(extra, sizeof(extra), "vcpu=\"%u\"", c->index);
				vm_sample(p->f, d->name, s->vms[i].name, extra, (double)raw * d->scale);
			}
		}
	}
}

static void host_families(struct prom *p)
{
	const struct ovc_host_mem_snap *h = &p->s->host;
	static const char *const states[] = { "high", "soft", "hard", "low" };
	enum ovc__mem_state st = ovc__mem_state(h);
	unsigned int i;

	family(p, "ovc_host_memory_total_bytes", GAUGE, "MemTotal.");
	sample_u(p->f, "ovc_host_memory_total_bytes", h->total_bytes);
	family(p, "ovc_host_memory_free_bytes", GAUGE, "MemFree.");
	sample_u(p->f, "ovc_host_memory_free_bytes", h->free_bytes);
	family(p, "ovc_host_memory_available_bytes", GAUGE, "MemAvailable.");
	sample_u(p->f, "ovc_host_memory_available_bytes", h->available_bytes);
	family(p, "ovc_host_swap_total_bytes", GAUGE, "SwapTotal.");
	sample_u(p->f, "ovc_host_swap_total_bytes", h->swap_total_bytes);
	family(p, "ovc_host_swap_free_bytes", GAUGE, "SwapFree.");
	sample_u(p->f, "ovc_host_swap_free_bytes", h->swap_free_bytes);
	family(p, "ovc_host_memory_state", GAUGE,
	       "Free-memory state (high, soft, hard, low by available memory): 1 for the current one.");
	for (i = 0; i < OVC_ARRAY_SIZE(states); i++)
		fprintf(p->f, "ovc_host_memory_state{state=\"%s\"} %d\n", states[i], (int)st == (int)i);
	if (h->psi_valid) {
		family(p, "ovc_host_memory_pressure_some_ratio", GAUGE,
		       "Share of the last 10 s some task stalled on memory (PSI).");
		fprintf(p->f, "ovc_host_memory_pressure_some_ratio");
		value(p->f, h->psi_some_avg10 / 100.0);
		family(p, "ovc_host_memory_pressure_full_ratio", GAUGE,
		       "Share of the last 10 s all tasks stalled on memory (PSI).");
		fprintf(p->f, "ovc_host_memory_pressure_full_ratio");
		value(p->f, h->psi_full_avg10 / 100.0);
	}
	family(p, "ovc_host_cpus", GAUGE, "CPUs the process may run on.");
	sample_u(p->f, "ovc_host_cpus", p->s->ncpus);
	family(p, "ovc_host_vms", GAUGE, "VMs in the host.");
	sample_u(p->f, "ovc_host_vms", p->s->nvms);
	family(p, "ovc_stats_snapshots_total", COUNTER, "Snapshots published (the last one's sequence number).");
	sample_u(p->f, "ovc_stats_snapshots_total", p->s->seq);
	family(p, "ovc_stats_fold_seconds", GAUGE, "How long taking the last snapshot took.");
	fprintf(p->f, "ovc_stats_fold_seconds");
	value(p->f, (double)p->s->fold_ns / 1e9);
}

OVC_EXPORT char *ovc_stats_format_prometheus(const struct ovc_stats_snapshot *snap, size_t *len)
{
	struct prom p = { .s = snap };
	char *buf = NULL;
	size_t n = 0;

	if (!snap) {
		errno = EINVAL;
		return NULL;
	}
	p.f = open_memstream(&buf, &n);
	if (!p.f)
		return NULL;
	host_families(&p);
	vm_families(&p);
	fault_families(&p);
	vcpu_families(&p);
	if (fclose(p.f)) {
		free(buf);
		errno = ENOMEM;
		return NULL;
	}
	if (len)
		*len = n;
	return buf;
}

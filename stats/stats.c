// SPDX-License-Identifier: MIT
/* stats/stats.c: immutable per-tick snapshots published with RCU. */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <urcu/urcu-memb.h>

#include "core/core-internal.h"
#include "stats/stats-internal.h"

/* A snapshot and what keeps it alive; the arrays follow in the same block. */
struct snap_box {
	struct rcu_head rcu;
	_Atomic long refs;		/* ATOMIC: publisher's + ovc_stats_get()'s */
	unsigned int nvcpus;
	struct ovc_stats_snapshot s;
};

struct ovc_stats {
	struct ovc_stats_snapshot *cur;	/* RCU pointer; written by the manager only */
	uint64_t seq;			/* manager thread only */
};

static struct snap_box *box_of(const struct ovc_stats_snapshot *s)
{
	return container_of(s, struct snap_box, s);
}

struct ovc_stats *ovc__stats_new(void)
{
	return calloc(1, sizeof(struct ovc_stats));
}

struct ovc_stats_snapshot *ovc__stats_alloc(unsigned int nvms, unsigned int nvcpus)
{
	size_t size = sizeof(struct snap_box) + (size_t)nvms * sizeof(struct ovc_vm_snap) +
		      (size_t)nvcpus * sizeof(struct ovc_vcpu_snap);
	struct snap_box *b = calloc(1, size);

	if (!b)
		return NULL;
	atomic_init(&b->refs, 1);
	b->nvcpus = nvcpus;
	b->s.nvms = nvms;
	b->s.vms = (struct ovc_vm_snap *)(b + 1);
	return &b->s;
}

struct ovc_vm_snap *ovc__stats_vm(struct ovc_stats_snapshot *s, unsigned int i)
{
	return (struct ovc_vm_snap *)&s->vms[i];
}

struct ovc_vcpu_snap *ovc__stats_vcpu_pool(struct ovc_stats_snapshot *s)
{
	return (struct ovc_vcpu_snap *)((struct ovc_vm_snap *)s->vms + s->nvms);
}

void ovc__stats_discard(struct ovc_stats_snapshot *s)
{
	if (s)
		free(box_of(s));
}

static void snap_unref(struct snap_box *b)
{
	if (atomic_fetch_sub_explicit(&b->refs, 1, memory_order_acq_rel) == 1)
		free(b);
}

static void snap_unref_rcu(struct rcu_head *head)
{
	snap_unref(container_of(head, struct snap_box, rcu));
}

static double per_sec(uint64_t before, uint64_t after, uint64_t ns)
{
	return ns && after >= before ? (double)(after - before) * 1e9 / (double)ns : 0.0;
}

static double pct(uint64_t before, uint64_t after, uint64_t ns)
{
	return ns && after >= before ? (double)(after - before) * 100.0 / (double)ns : 0.0;
}

static uint64_t served_faults(const struct ovc_mem_stats *m)
{
	uint64_t n = 0;
	int k;

	for (k = 0; k < OVC_FAULT_NR_KINDS; k++)
		if (k != OVC_FAULT_WAIT && k != OVC_FAULT_SPURIOUS)
			n += m->faults[k];
	return n;
}

static const struct ovc_vm_snap *find_id(const struct ovc_stats_snapshot *s, uint64_t id,
					 unsigned int hint)
{
	unsigned int i;

	if (!s)
		return NULL;
	if (hint < s->nvms && s->vms[hint].id == id)
		return &s->vms[hint];
	for (i = 0; i < s->nvms; i++)
		if (s->vms[i].id == id)
			return &s->vms[i];
	return NULL;
}

static void derive_vm(struct ovc_vm_snap *v, const struct ovc_vm_snap *p, uint64_t ns)
{
	struct ovc_vcpu_snap *c = (struct ovc_vcpu_snap *)v->vcpus;
	unsigned int i;

	v->used_pct = v->rdy_pct = 0.0;
	if (p) {
		v->faults_per_sec = per_sec(served_faults(&p->mem), served_faults(&v->mem), ns);
		v->pageins_per_sec = per_sec(p->mem.faults[OVC_FAULT_STORE],
					     v->mem.faults[OVC_FAULT_STORE], ns);
		v->pageouts_per_sec = per_sec(p->pager.reclaimed, v->pager.reclaimed, ns);
	}
	for (i = 0; i < v->nvcpus; i++) {
		const struct ovc_vcpu_snap *q = NULL;
		unsigned int j;

		for (j = 0; p && j < p->nvcpus; j++) {
			if (p->vcpus[j].index == c[i].index && p->vcpus[j].tid == c[i].tid) {
				q = &p->vcpus[j];
				break;
			}
		}
		if (!q)
			continue;
		if (c[i].schedstat_valid && q->schedstat_valid) {
			c[i].used_pct = pct(q->cpu_ns, c[i].cpu_ns, ns);
			c[i].rdy_pct = pct(q->wait_ns, c[i].wait_ns, ns);
		}
		c[i].halt_pct = pct(q->halt_ns, c[i].halt_ns, ns);
		v->used_pct += c[i].used_pct;
		v->rdy_pct += c[i].rdy_pct;
	}
}

void ovc__stats_publish(struct ovc_stats *st, struct ovc_stats_snapshot *s)
{
	struct ovc_stats_snapshot *prev = st->cur;
	uint64_t ns = 0;
	unsigned int i;

	if (prev && s->at_ns > prev->at_ns)
		ns = s->at_ns - prev->at_ns;
	s->interval_ns = ns;
	s->seq = ++st->seq;
	ovc_host_read_meminfo(&s->host);
	for (i = 0; i < s->nvms; i++)
		derive_vm(ovc__stats_vm(s, i), find_id(prev, s->vms[i].id, i), ns);
	s->fold_ns = ovc__now_ns() - s->at_ns;

	rcu_assign_pointer(st->cur, s);
	if (prev)
		urcu_memb_call_rcu(&box_of(prev)->rcu, snap_unref_rcu);
}

const struct ovc_stats_snapshot *ovc__stats_latest(struct ovc_stats *st)
{
	return st->cur;
}

const struct ovc_stats_snapshot *ovc__stats_deref(struct ovc_stats *st)
{
	return rcu_dereference(st->cur);
}

void ovc__stats_destroy(struct ovc_stats *st)
{
	if (!st)
		return;
	if (st->cur) {
		struct ovc_stats_snapshot *s = st->cur;

		/* The caller may be unregistered: no call_rcu() here. */
		rcu_assign_pointer(st->cur, NULL);
		urcu_memb_synchronize_rcu();
		snap_unref(box_of(s));
	}
	free(st);
}

OVC_EXPORT void ovc_thread_register(void)
{
	urcu_memb_register_thread();
}

OVC_EXPORT void ovc_thread_unregister(void)
{
	urcu_memb_unregister_thread();
}

OVC_EXPORT void ovc_stats_put(const struct ovc_stats_snapshot *snap)
{
	if (snap)
		snap_unref(box_of(snap));
}

const struct ovc_stats_snapshot *ovc__stats_ref(const struct ovc_stats_snapshot *s)
{
	if (s)
		atomic_fetch_add_explicit(&box_of(s)->refs, 1, memory_order_relaxed);
	return s;
}

OVC_EXPORT const struct ovc_vm_snap *ovc_stats_find_vm(const struct ovc_stats_snapshot *snap,
						       const char *name)
{
	unsigned int i;

	if (!snap || !name)
		return NULL;
	for (i = 0; i < snap->nvms; i++)
		if (!strcmp(snap->vms[i].name, name))
			return &snap->vms[i];
	return NULL;
}

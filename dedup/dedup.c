// SPDX-License-Identifier: MIT
/* dedup/dedup.c: the sharing scanner: stable pages hashed, confirmed, made ZERO or SHARED from one pool. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <urcu/list.h>
#include <xxhash.h>

#include "dedup/dedup-internal.h"

#define POOL_MAX_SLOTS (1ULL << 28)	/* 1 TiB of pool address space, sparse */
#define INDEX_MIN 1024
#define IDLE_NS 100000000ULL		/* nothing to scan: look again in 100 ms */
#define BATCH_MAX 256

/* One pool page: its sharers, and the key it is indexed under. */
struct slot_meta {
	uint32_t ref;		/* 0: free */
	uint32_t group;
	uint64_t hash;
};

/*
 * Content index: open addressing, linear probing, backward-shift deletion.
 * Key (hash, group); for the pool index @a is the slot, for the candidate
 * index (pages seen once) @a is the member id and @b the gfn.
 */
struct index_ent {
	uint64_t hash;
	uint32_t group;
	uint32_t used;
	uint64_t a;
	uint64_t b;
};

struct index {
	struct index_ent *e;
	size_t cap;		/* power of two */
	size_t n;
};

/*
 * Per range of a member: the last hash seen of each page (0: never), and
 * which pool page is mapped over it (slot + 1; 0: its own memfd page). The
 * map mirrors the kernel's mappings and is what VMAs are counted from.
 */
struct member_region {
	uint32_t *hash;
	uint64_t *map;
	uint64_t npages;
	size_t bytes_hash, bytes_map;
};

/**
 * struct ovc_dedup_member - one VM's RAM taking part in sharing.
 * Everything below @node is under d->lock; @cur_* only under d->scan_lock.
 */
struct ovc_dedup_member {
	struct ovc_dedup *d;
	struct ovc_ram *ram;
	uint32_t id;
	struct cds_list_head node;	/* d->members */
	bool enabled;
	uint32_t group;
	struct member_region rgn[OVC_VM_RAM_RANGES_MAX];
	unsigned int nrgn;
	uint64_t scanned, unstable, zero, shared, sharing, busy, budget_stops;
	uint64_t cpu_ns, vmas;
	unsigned int cur_region;
	uint64_t cur_off;
};

struct named_group {
	char name[OVC_DEDUP_GROUP_MAX + 1];
	uint32_t id;
};

/**
 * struct ovc_dedup - the sharing pool, its index and the scanner.
 *
 * Locks, in nesting order: @scan_lock (one scan step at a time; group moves
 * and members leaving take it to keep the scanner out), then @lock (pool,
 * indexes, members and their maps and counters). @lock is also taken by the
 * store's release, from the fault engine, with a page BUSY: nothing waits
 * for a BUSY page while holding @lock. @thr_lock paces the thread only.
 */
struct ovc_dedup {
	const struct ovc_log *log;
	struct ovc_dedup_config cfg;
	_Atomic unsigned int cpu_permille;	/* ATOMIC */
	uint64_t salt;

	pthread_mutex_t scan_lock;
	uint8_t *buf;				/* batch reads, under scan_lock */
	struct ovc_xact *x;			/* two transitions, under scan_lock */
	uint32_t rr_last;			/* under scan_lock */

	pthread_mutex_t lock;
	int pool_fd;
	uint8_t *pool;				/* MAP_SHARED view of the pool */
	struct slot_meta *slots;
	uint64_t nslots, cap_slots, free_slots, free_hint;
	struct index pool_idx, cand_idx;
	struct cds_list_head members;
	uint32_t next_id;
	struct named_group *groups;
	unsigned int ngroups;
	uint64_t vmas, vma_budget;
	long saved_max_map_count;		/* -1: untouched */

	pthread_t thread;
	bool running;
	pthread_mutex_t thr_lock;		/* protects stop; pairs with thr_cond */
	pthread_cond_t thr_cond;
	bool stop;
};

static const struct ovc_store_ops pool_ops;

OVC_EXPORT void ovc_dedup_config_init(struct ovc_dedup_config *cfg)
{
	if (!cfg)
		return;
	memset(cfg, 0, sizeof(*cfg));
	cfg->cpu_permille = 20;
	cfg->batch = 64;
}

/* ------------------------------------------------------------------------ */
/* Content index */

static size_t index_slot(const struct index *ix, uint64_t hash, uint32_t group)
{
	return (size_t)((hash ^ ((uint64_t)group * 0x9e3779b97f4a7c15ULL)) & (ix->cap - 1));
}

static struct index_ent *index_find(struct index *ix, uint64_t hash, uint32_t group)
{
	size_t i;

	if (!ix->cap)
		return NULL;
	for (i = index_slot(ix, hash, group);; i = (i + 1) & (ix->cap - 1)) {
		struct index_ent *e = &ix->e[i];

		if (!e->used)
			return NULL;
		if (e->hash == hash && e->group == group)
			return e;
	}
}

static int index_put(struct index *ix, uint64_t hash, uint32_t group, uint64_t a, uint64_t b);

static int index_grow(struct index *ix)
{
	struct index old = *ix;
	size_t i;

	ix->cap = old.cap ? old.cap * 2 : INDEX_MIN;
	ix->e = calloc(ix->cap, sizeof(*ix->e));
	ix->n = 0;
	if (!ix->e) {
		*ix = old;
		return -ENOMEM;
	}
	for (i = 0; i < old.cap; i++) {
		if (old.e[i].used)
			index_put(ix, old.e[i].hash, old.e[i].group, old.e[i].a, old.e[i].b);
	}
	free(old.e);
	return 0;
}

/* Insert or overwrite. -ENOMEM leaves the index as it was. */
static int index_put(struct index *ix, uint64_t hash, uint32_t group, uint64_t a, uint64_t b)
{
	struct index_ent *e;
	size_t i;

	if ((ix->n + 1) * 4 > ix->cap * 3 && index_grow(ix))
		return -ENOMEM;
	for (i = index_slot(ix, hash, group);; i = (i + 1) & (ix->cap - 1)) {
		e = &ix->e[i];
		if (!e->used || (e->hash == hash && e->group == group))
			break;
	}
	if (!e->used)
		ix->n++;
	*e = (struct index_ent){ .hash = hash, .group = group, .used = 1, .a = a, .b = b };
	return 0;
}

static void index_del(struct index *ix, struct index_ent *e)
{
	size_t i = (size_t)(e - ix->e), j = i, home;

	for (;;) {
		j = (j + 1) & (ix->cap - 1);
		if (!ix->e[j].used)
			break;
		home = index_slot(ix, ix->e[j].hash, ix->e[j].group);
		/* Move j back to the hole at i unless its home lies in (i, j]. */
		if ((j > i && (home <= i || home > j)) || (j < i && home <= i && home > j)) {
			ix->e[i] = ix->e[j];
			i = j;
		}
	}
	ix->e[i].used = 0;
	ix->n--;
}

/* ------------------------------------------------------------------------ */
/* Pool */

static uint8_t *pool_page(struct ovc_dedup *d, uint64_t slot)
{
	return d->pool + (slot << OVC_PAGE_SHIFT);
}

/* A free slot, @pref if it is free (keeps runs mergeable). Called with d->lock held. */
static int64_t slot_alloc(struct ovc_dedup *d, uint64_t pref)
{
	uint64_t i;

	if (pref < d->nslots && !d->slots[pref].ref) {
		d->free_slots--;
		return (int64_t)pref;
	}
	if (d->free_slots) {
		for (i = 0; i < d->nslots; i++) {
			uint64_t s = (d->free_hint + i) % d->nslots;

			if (!d->slots[s].ref) {
				d->free_slots--;
				d->free_hint = s + 1;
				return (int64_t)s;
			}
		}
		OVC_BUG("pool counts %llu free slots but has none",
			(unsigned long long)d->free_slots);
	}
	if (d->nslots == POOL_MAX_SLOTS)
		return -ENOSPC;
	if (d->nslots == d->cap_slots) {
		uint64_t cap = d->cap_slots ? d->cap_slots * 2 : 1024;
		struct slot_meta *s = realloc(d->slots, cap * sizeof(*s));

		if (!s)
			return -ENOMEM;
		d->slots = s;
		d->cap_slots = cap;
	}
	d->slots[d->nslots].ref = 0;
	return (int64_t)d->nslots++;
}

/* Drop one reference; the last gives the page back to the host. Called with d->lock held. */
static void slot_put(struct ovc_dedup *d, uint64_t slot)
{
	struct slot_meta *sm = &d->slots[slot];
	struct index_ent *e;

	if (!sm->ref)
		OVC_BUG("pool slot %llu released once too often", (unsigned long long)slot);
	if (--sm->ref)
		return;
	e = index_find(&d->pool_idx, sm->hash, sm->group);
	if (e && e->a == slot)
		index_del(&d->pool_idx, e);
	if (fallocate(d->pool_fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		      (off_t)(slot << OVC_PAGE_SHIFT), OVC_PAGE_SIZE) < 0)
		ovc__warn(d->log, "dedup: free pool page %llu: %s", (unsigned long long)slot,
			  strerror(errno));
	d->free_slots++;
}

/* ------------------------------------------------------------------------ */
/* Members: maps and VMA accounting */

static struct member_region *member_region(struct ovc_dedup_member *m, uint64_t gfn,
					   uint64_t *off)
{
	struct ovc_region *rg = ovc__ram_region_gfn(m->ram, gfn);
	unsigned int r;

	if (!rg)
		return NULL;
	r = (unsigned int)(rg - m->ram->regions);
	if (r >= m->nrgn)
		return NULL;
	*off = gfn - rg->gfn0;
	return &m->rgn[r];
}

/* Whether neighbours with map values @a then @b lie in one kernel VMA. */
static bool one_vma(uint64_t a, uint64_t b)
{
	return (!a && !b) || (a && b && b == a + 1);
}

static unsigned int boundaries(const struct member_region *mr, uint64_t off)
{
	unsigned int n = 0;

	if (off > 0 && !one_vma(mr->map[off - 1], mr->map[off]))
		n++;
	if (off + 1 < mr->npages && !one_vma(mr->map[off], mr->map[off + 1]))
		n++;
	return n;
}

/* The change in VMAs if page @off showed @val instead. Called with d->lock held. */
static int64_t map_delta(struct member_region *mr, uint64_t off, uint64_t val)
{
	uint64_t save = mr->map[off];
	int64_t before = boundaries(mr, off), after;

	mr->map[off] = val;
	after = boundaries(mr, off);
	mr->map[off] = save;
	return after - before;
}

/* Record that page @off shows @val now; VMAs counted. Called with d->lock held. */
static void map_set(struct ovc_dedup *d, struct ovc_dedup_member *m, struct member_region *mr,
		    uint64_t off, uint64_t val)
{
	int64_t delta = map_delta(mr, off, val);

	mr->map[off] = val;
	d->vmas += (uint64_t)delta;
	m->vmas += (uint64_t)delta;
}

/* Per-range arrays for ranges added since. Called with d->lock held. */
static int member_sync_regions(struct ovc_dedup_member *m)
{
	unsigned int n = atomic_load_explicit(&m->ram->nregions, memory_order_acquire);

	while (m->nrgn < n) {
		struct member_region *mr = &m->rgn[m->nrgn];
		void *h, *mp;

		mr->npages = m->ram->regions[m->nrgn].npages;
		mr->bytes_hash = mr->npages * sizeof(*mr->hash);
		mr->bytes_map = mr->npages * sizeof(*mr->map);
		h = mmap(NULL, mr->bytes_hash, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (h == MAP_FAILED)
			return -errno;
		mp = mmap(NULL, mr->bytes_map, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (mp == MAP_FAILED) {
			munmap(h, mr->bytes_hash);
			return -errno;
		}
		mr->hash = h;
		mr->map = mp;
		m->nrgn++;
	}
	return 0;
}

static struct ovc_dedup_member *member_by_id(struct ovc_dedup *d, uint32_t id)
{
	struct ovc_dedup_member *m;

	cds_list_for_each_entry(m, &d->members, node) {
		if (m->id == id)
			return m;
	}
	return NULL;
}

/* ------------------------------------------------------------------------ */
/* The store of SHARED pages */

static int pool_load(void *opaque, struct ovc_ram *ram, uint64_t gfn, uint64_t handle, void *dst)
{
	struct ovc_dedup_member *m = opaque;

	/* The page holds a reference: the slot cannot be freed or reused. */
	memcpy(dst, pool_page(m->d, handle), OVC_PAGE_SIZE);
	return 0;
}

static void pool_release(void *opaque, struct ovc_ram *ram, uint64_t gfn, uint64_t handle)
{
	struct ovc_dedup_member *m = opaque;
	struct ovc_dedup *d = m->d;
	struct member_region *mr;
	uint64_t off;

	pthread_mutex_lock(&d->lock);
	mr = member_region(m, gfn, &off);
	if (mr && mr->map[off] == handle + 1)
		map_set(d, m, mr, off, 0);
	m->sharing--;
	slot_put(d, handle);
	pthread_mutex_unlock(&d->lock);
}

static int pool_backing(void *opaque, uint64_t handle, int *fd, uint64_t *off)
{
	struct ovc_dedup_member *m = opaque;

	*fd = m->d->pool_fd;
	*off = handle << OVC_PAGE_SHIFT;
	return 0;
}

static const struct ovc_store_ops pool_ops = {
	.load = pool_load,
	.release = pool_release,
	.backing = pool_backing,
};

/* ------------------------------------------------------------------------ */
/* Transitions */

static uint64_t group_seed(struct ovc_dedup *d, uint32_t group)
{
	return d->salt ^ ((uint64_t)group * 0x9e3779b97f4a7c15ULL);
}

/* A stable zero page becomes a hole. Called with scan_lock held. */
static void make_zero(struct ovc_dedup *d, struct ovc_dedup_member *m, uint64_t gfn)
{
	struct ovc_xact *x = &d->x[0];

	if (ovc__xact_begin(x, m->ram, gfn, 1, 0)) {
		pthread_mutex_lock(&d->lock);
		m->busy++;
		pthread_mutex_unlock(&d->lock);
		return;
	}
	if (ovc__pte_state(ovc__xact_old(x, 0)) != OVC_PAGE_RESIDENT ||
	    !ovc__page_is_zero(ovc__xact_hva(x, 0))) {
		ovc__xact_abort(x);
		return;
	}
	ovc__xact_set(x, 0, OVC_PAGE_ZERO, 0, NULL);
	if (!ovc__xact_commit(x) && !x->failed[0]) {
		pthread_mutex_lock(&d->lock);
		m->zero++;
		pthread_mutex_unlock(&d->lock);
	}
}

/*
 * Reserve the mapping of @slot over @gfn: VMAs counted (refused over the
 * budget), a reference taken. Undone by unreserve() when the commit fails.
 * Called with d->lock held, the page BUSY.
 */
static bool reserve(struct ovc_dedup *d, struct ovc_dedup_member *m, uint64_t gfn, uint64_t slot)
{
	struct member_region *mr;
	uint64_t off;
	int64_t delta;

	mr = member_region(m, gfn, &off);
	if (!mr)
		return false;
	delta = map_delta(mr, off, slot + 1);
	if (delta > 0 && d->vmas + (uint64_t)delta > d->vma_budget) {
		m->budget_stops++;
		return false;
	}
	map_set(d, m, mr, off, slot + 1);
	d->slots[slot].ref++;
	return true;
}

static void unreserve(struct ovc_dedup *d, struct ovc_dedup_member *m, uint64_t gfn, uint64_t slot)
{
	struct member_region *mr;
	uint64_t off;

	mr = member_region(m, gfn, &off);
	if (mr)
		map_set(d, m, mr, off, 0);
	slot_put(d, slot);
}

/* The page's left neighbour's pool page + 1: sharing it keeps one VMA. */
static uint64_t preferred_slot(struct ovc_dedup_member *m, uint64_t gfn)
{
	struct member_region *mr;
	uint64_t off;

	mr = member_region(m, gfn, &off);
	if (!mr || !off || !mr->map[off - 1])
		return UINT64_MAX;
	return mr->map[off - 1];	/* (slot + 1) of the neighbour */
}

/*
 * A run of stable pages of one member seen in one batch, consecutive guest
 * pages that match either consecutive pool pages (INTO) or consecutive pages
 * seen once before (PAIR): shared in one transition, mapped in one go.
 */
enum { RUN_NONE, RUN_INTO, RUN_PAIR };

struct run {
	unsigned int kind;
	struct ovc_dedup_member *other;	/* PAIR: the member of the pages seen before */
	uint64_t gfn, ogfn, slot;	/* first page, first page seen before, first pool page */
	unsigned int n;
	uint64_t hash[BATCH_MAX];
};

static void count_busy(struct ovc_dedup *d, struct ovc_dedup_member *m, unsigned int n)
{
	pthread_mutex_lock(&d->lock);
	m->busy += n;
	pthread_mutex_unlock(&d->lock);
}

/* After a commit: undo the reservations of pages that stayed, count the others. */
static void settle(struct ovc_dedup *d, struct ovc_dedup_member *m, struct ovc_xact *x,
		   const bool *set)
{
	unsigned int i;

	for (i = 0; i < x->npages; i++) {
		if (!set[i])
			continue;
		if (x->failed[i]) {
			unreserve(d, m, x->gfn + i, ovc__pte_payload(x->new_e[i]));
		} else {
			m->shared++;
			m->sharing++;
		}
	}
}

/*
 * Read the resident pages of a transition through their mapping once, before
 * d->lock is taken: a page whose mapping is new (its own mapping put back when
 * a share broke) or armed takes a minor fault there, and the fault engine may
 * itself be waiting for d->lock (a share broken releases its pool page), so
 * touching such a page under d->lock could wait forever. Mapped once, the page
 * stays mapped while the transition holds it BUSY.
 */
static void map_resident(struct ovc_xact *x, unsigned int n)
{
	unsigned int i;

	for (i = 0; i < n; i++) {
		if (ovc__pte_state(ovc__xact_old(x, i)) == OVC_PAGE_RESIDENT)
			(void)*(volatile const uint8_t *)ovc__xact_hva(x, i);
	}
}

/* Share a run into existing pool pages. Called with scan_lock held. */
static void share_into(struct ovc_dedup *d, struct ovc_dedup_member *m, const struct run *r)
{
	struct ovc_xact *x = &d->x[0];
	bool set[BATCH_MAX] = { false }, any = false;
	unsigned int i;

	if (ovc__xact_begin(x, m->ram, r->gfn, r->n, 0)) {
		count_busy(d, m, r->n);
		return;
	}
	map_resident(x, r->n);
	pthread_mutex_lock(&d->lock);
	for (i = 0; i < r->n; i++) {
		uint64_t slot = r->slot + i;

		/* The slot may have been freed (and reused) since the lookup. */
		set[i] = ovc__pte_state(ovc__xact_old(x, i)) == OVC_PAGE_RESIDENT &&
			 slot < d->nslots && d->slots[slot].ref &&
			 d->slots[slot].group == m->group && d->slots[slot].hash == r->hash[i] &&
			 !memcmp(ovc__xact_hva(x, i), pool_page(d, slot), OVC_PAGE_SIZE) &&
			 reserve(d, m, r->gfn + i, slot);
		if (set[i]) {
			ovc__xact_set(x, i, OVC_PAGE_SHARED, slot, NULL);
			any = true;
		}
	}
	pthread_mutex_unlock(&d->lock);
	if (!any) {
		ovc__xact_abort(x);
		return;
	}
	(void)ovc__xact_commit(x);
	pthread_mutex_lock(&d->lock);
	settle(d, m, x, set);
	pthread_mutex_unlock(&d->lock);
}

/* The run's pages become the candidates for their contents. Called with d->lock held. */
static void make_candidates(struct ovc_dedup *d, struct ovc_dedup_member *m, const struct run *r)
{
	unsigned int i;

	for (i = 0; i < r->n; i++)
		(void)index_put(&d->cand_idx, r->hash[i], m->group, m->id, r->gfn + i);
}

/*
 * Pages seen twice: confirm each pair, copy it into a new pool page (the run
 * into consecutive pool pages where free) and map it over both. Called with
 * scan_lock held.
 */
static void share_pair(struct ovc_dedup *d, struct ovc_dedup_member *mb, const struct run *r)
{
	struct ovc_dedup_member *ma = r->other;
	struct ovc_xact *xa = &d->x[0], *xb = &d->x[1];
	bool set_a[BATCH_MAX] = { false }, set_b[BATCH_MAX] = { false }, any = false;
	uint64_t slots[BATCH_MAX], pref;
	unsigned int i;

	if (ovc__xact_begin(xb, mb->ram, r->gfn, r->n, 0)) {
		count_busy(d, mb, r->n);
		return;
	}
	if (ovc__xact_begin(xa, ma->ram, r->ogfn, r->n, 0)) {
		ovc__xact_abort(xb);
		count_busy(d, mb, r->n);
		pthread_mutex_lock(&d->lock);
		make_candidates(d, mb, r);
		pthread_mutex_unlock(&d->lock);
		return;
	}
	map_resident(xa, r->n);
	map_resident(xb, r->n);
	pthread_mutex_lock(&d->lock);
	pref = preferred_slot(mb, r->gfn);
	for (i = 0; i < r->n; i++) {
		struct index_ent *e;
		int64_t slot;

		if (ovc__pte_state(ovc__xact_old(xa, i)) != OVC_PAGE_RESIDENT ||
		    ovc__pte_state(ovc__xact_old(xb, i)) != OVC_PAGE_RESIDENT ||
		    memcmp(ovc__xact_hva(xa, i), ovc__xact_hva(xb, i), OVC_PAGE_SIZE)) {
			/* Gone or changed: this page is the candidate now. */
			(void)index_put(&d->cand_idx, r->hash[i], mb->group, mb->id, r->gfn + i);
			continue;
		}
		slot = slot_alloc(d, pref);
		if (slot < 0)
			break;
		pref = (uint64_t)slot + 1;
		memcpy(pool_page(d, (uint64_t)slot), ovc__xact_hva(xb, i), OVC_PAGE_SIZE);
		d->slots[slot].group = mb->group;
		d->slots[slot].hash = r->hash[i];
		d->slots[slot].ref = 1;	/* held by us until both commits are done */
		set_a[i] = reserve(d, ma, r->ogfn + i, (uint64_t)slot);
		set_b[i] = set_a[i] && reserve(d, mb, r->gfn + i, (uint64_t)slot);
		if (!set_b[i] || index_put(&d->pool_idx, r->hash[i], mb->group, (uint64_t)slot, 0)) {
			if (set_b[i])
				unreserve(d, mb, r->gfn + i, (uint64_t)slot);
			if (set_a[i])
				unreserve(d, ma, r->ogfn + i, (uint64_t)slot);
			set_a[i] = set_b[i] = false;
			slot_put(d, (uint64_t)slot);
			continue;
		}
		e = index_find(&d->cand_idx, r->hash[i], mb->group);
		if (e)
			index_del(&d->cand_idx, e);
		slots[i] = (uint64_t)slot;
		ovc__xact_set(xa, i, OVC_PAGE_SHARED, (uint64_t)slot, NULL);
		ovc__xact_set(xb, i, OVC_PAGE_SHARED, (uint64_t)slot, NULL);
		any = true;
	}
	pthread_mutex_unlock(&d->lock);
	if (!any) {
		ovc__xact_abort(xa);
		ovc__xact_abort(xb);
		return;
	}
	(void)ovc__xact_commit(xb);
	(void)ovc__xact_commit(xa);
	pthread_mutex_lock(&d->lock);
	settle(d, mb, xb, set_b);
	settle(d, ma, xa, set_a);
	for (i = 0; i < r->n; i++) {
		if (set_a[i])
			slot_put(d, slots[i]);
	}
	pthread_mutex_unlock(&d->lock);
}

static void run_flush(struct ovc_dedup *d, struct ovc_dedup_member *m, struct run *r)
{
	if (r->kind == RUN_INTO)
		share_into(d, m, r);
	else if (r->kind == RUN_PAIR)
		share_pair(d, m, r);
	r->kind = RUN_NONE;
	r->n = 0;
}

/*
 * A page that looked the same on two passes: what to do with it, added to
 * the pending run when it continues it. Called with scan_lock held.
 */
static void stable_page(struct ovc_dedup *d, struct ovc_dedup_member *m, struct run *r,
			uint64_t gfn, uint64_t hash)
{
	struct ovc_dedup_member *other;
	struct index_ent *e;
	unsigned int kind, again;
	uint64_t slot, ogfn;

	/* Twice at most: a run that does not go on is shared first, and that changes the index. */
	for (again = 0; again < 2; again++) {
		other = NULL;
		kind = RUN_NONE;
		slot = ogfn = 0;
		pthread_mutex_lock(&d->lock);
		e = index_find(&d->pool_idx, hash, m->group);
		if (e) {
			kind = RUN_INTO;
			slot = e->a;
		} else {
			e = index_find(&d->cand_idx, hash, m->group);
			if (e && !(e->a == m->id && e->b == gfn))
				other = member_by_id(d, (uint32_t)e->a);
			if (other) {
				kind = RUN_PAIR;
				ogfn = e->b;
				/* Within one VM, the two runs must not overlap. */
				if (other == m && (ogfn > gfn ? ogfn - gfn : gfn - ogfn) <= r->n)
					kind = RUN_NONE;
			}
		}
		if (kind == RUN_NONE && (r->kind == RUN_NONE || again))
			(void)index_put(&d->cand_idx, hash, m->group, m->id, gfn);
		pthread_mutex_unlock(&d->lock);
		if (r->kind == RUN_NONE)
			break;
		if (kind == r->kind && gfn == r->gfn + r->n &&
		    (kind != RUN_INTO || slot == r->slot + r->n) &&
		    (kind != RUN_PAIR || (other == r->other && ogfn == r->ogfn + r->n)))
			break;
		run_flush(d, m, r);
	}
	if (kind == RUN_NONE)
		return;
	if (r->kind == RUN_NONE) {
		r->kind = kind;
		r->other = other;
		r->gfn = gfn;
		r->ogfn = ogfn;
		r->slot = slot;
		r->n = 0;
	}
	r->hash[r->n++] = hash;
}

/* ------------------------------------------------------------------------ */
/* Scanning */

static uint64_t thread_cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* The next enabled member after the last one scanned. Called with both locks held. */
static struct ovc_dedup_member *next_member(struct ovc_dedup *d)
{
	struct ovc_dedup_member *m, *first = NULL;

	cds_list_for_each_entry(m, &d->members, node) {
		if (!m->enabled)
			continue;
		if (!first)
			first = m;
		if (m->id > d->rr_last)
			return m;
	}
	return first;
}

/*
 * One batch of one member's pages: read in one go from the memfd (holes read
 * as zeros and nothing faults), hashed; stable ones shared. Return pages
 * looked at, 0 when no member is enabled. Called with scan_lock held.
 */
static uint64_t scan_batch(struct ovc_dedup *d)
{
	struct ovc_dedup_member *m;
	struct member_region *mr;
	struct ovc_region *rg;
	uint64_t t0 = thread_cpu_ns(), n, i, off, gfn0;
	struct run run = { .kind = RUN_NONE };
	ssize_t got;

	pthread_mutex_lock(&d->lock);
	m = next_member(d);
	if (m && member_sync_regions(m))
		m = NULL;
	if (!m || !m->nrgn) {
		pthread_mutex_unlock(&d->lock);
		return 0;
	}
	d->rr_last = m->id;
	if (m->cur_region >= m->nrgn) {
		m->cur_region = 0;
		m->cur_off = 0;
	}
	mr = &m->rgn[m->cur_region];
	rg = &m->ram->regions[m->cur_region];
	off = m->cur_off;
	n = mr->npages - off < d->cfg.batch ? mr->npages - off : d->cfg.batch;
	m->cur_off += n;
	if (m->cur_off >= mr->npages) {
		m->cur_region++;
		m->cur_off = 0;
	}
	pthread_mutex_unlock(&d->lock);

	gfn0 = rg->gfn0 + off;
	got = pread(rg->memfd, d->buf, n << OVC_PAGE_SHIFT, (off_t)(off << OVC_PAGE_SHIFT));
	if (got < 0)
		got = 0;
	for (i = 0; i < (uint64_t)got >> OVC_PAGE_SHIFT; i++) {
		uint64_t e = atomic_load_explicit(&rg->pt[off + i], memory_order_relaxed);
		const uint8_t *page = d->buf + (i << OVC_PAGE_SHIFT);
		uint64_t h;
		uint32_t h32, prev;
		bool zero;

		if (ovc__pte_state(e) != OVC_PAGE_RESIDENT)
			continue;
		if (e & OVC_PTE_BUSY) {
			pthread_mutex_lock(&d->lock);
			m->busy++;
			pthread_mutex_unlock(&d->lock);
			continue;
		}
		zero = ovc__page_is_zero(page);
		h = zero ? 0 : XXH3_64bits_withSeed(page, OVC_PAGE_SIZE, group_seed(d, m->group));
		/* 32 bits of history per page are enough to see a change; 0 is "never seen". */
		h32 = (uint32_t)(h ^ (h >> 32)) | 1;
		prev = mr->hash[off + i];
		mr->hash[off + i] = h32;
		pthread_mutex_lock(&d->lock);
		m->scanned++;
		if (prev != h32)
			m->unstable++;
		pthread_mutex_unlock(&d->lock);
		if (prev != h32)
			continue;
		if (zero) {
			run_flush(d, m, &run);
			make_zero(d, m, gfn0 + i);
		} else {
			stable_page(d, m, &run, gfn0 + i, h);
		}
	}
	run_flush(d, m, &run);
	pthread_mutex_lock(&d->lock);
	m->cpu_ns += thread_cpu_ns() - t0;
	pthread_mutex_unlock(&d->lock);
	return n;
}

int64_t ovc__dedup_scan(struct ovc_dedup *d, uint64_t max_pages)
{
	uint64_t done = 0, n;

	if (!d)
		return -EINVAL;
	while (done < max_pages) {
		pthread_mutex_lock(&d->scan_lock);
		n = scan_batch(d);
		pthread_mutex_unlock(&d->scan_lock);
		if (!n)
			break;
		done += n;
	}
	return (int64_t)done;
}

/* Sleep @ns unless stopped. Return true when stopped. */
static bool thread_sleep(struct ovc_dedup *d, uint64_t ns)
{
	struct timespec ts;
	bool stop;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += (time_t)(ns / 1000000000ULL);
	ts.tv_nsec += (long)(ns % 1000000000ULL);
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&d->thr_lock);
	if (!d->stop)
		pthread_cond_timedwait(&d->thr_cond, &d->thr_lock, &ts);
	stop = d->stop;
	pthread_mutex_unlock(&d->thr_lock);
	return stop;
}

/* The scanner: a batch, then a sleep long enough to keep within the CPU budget. */
static void *scanner(void *arg)
{
	struct ovc_dedup *d = arg;

	for (;;) {
		uint64_t t0 = thread_cpu_ns(), spent, n;
		unsigned int pm;

		pthread_mutex_lock(&d->scan_lock);
		n = scan_batch(d);
		pthread_mutex_unlock(&d->scan_lock);
		spent = thread_cpu_ns() - t0;
		pm = atomic_load_explicit(&d->cpu_permille, memory_order_relaxed);
		if (thread_sleep(d, n ? spent * (1000 - pm) / pm : IDLE_NS))
			break;
	}
	return NULL;
}

/* ------------------------------------------------------------------------ */
/* Life */

static long read_max_map_count(void)
{
	FILE *f = fopen("/proc/sys/vm/max_map_count", "r");
	long v = -1;

	if (f) {
		if (fscanf(f, "%ld", &v) != 1)
			v = -1;
		fclose(f);
	}
	return v;
}

static int write_max_map_count(long v)
{
	FILE *f = fopen("/proc/sys/vm/max_map_count", "w");
	int ret = 0;

	if (!f)
		return -errno;
	if (fprintf(f, "%ld\n", v) < 0)
		ret = -EIO;
	if (fclose(f))
		ret = -errno;
	return ret;
}

struct ovc_dedup *ovc__dedup_new(const struct ovc_log *log, const struct ovc_dedup_config *cfg,
				 bool thread)
{
	struct ovc_dedup_config defaults;
	struct ovc_dedup *d;
	long mmc;
	int ret;

	if (!cfg) {
		ovc_dedup_config_init(&defaults);
		cfg = &defaults;
	}
	if (cfg->cpu_permille < 1 || cfg->cpu_permille > 1000 || cfg->batch < 1 ||
	    cfg->batch > BATCH_MAX || cfg->max_map_count > INT32_MAX) {
		ovc__err(log, "dedup: bad config (cpu_permille 1..1000, batch 1..%d, max_map_count < 2^31)",
			 BATCH_MAX);
		errno = EINVAL;
		return NULL;
	}
	d = calloc(1, sizeof(*d));
	if (!d)
		return NULL;
	d->log = log;
	d->cfg = *cfg;
	d->pool_fd = -1;
	d->saved_max_map_count = -1;
	atomic_store(&d->cpu_permille, cfg->cpu_permille);
	CDS_INIT_LIST_HEAD(&d->members);
	pthread_mutex_init(&d->scan_lock, NULL);
	pthread_mutex_init(&d->lock, NULL);
	pthread_mutex_init(&d->thr_lock, NULL);
	{
		pthread_condattr_t ca;

		/* The budget's sleeps are timed on CLOCK_MONOTONIC. */
		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_cond_init(&d->thr_cond, &ca);
		pthread_condattr_destroy(&ca);
	}
	if (getrandom(&d->salt, sizeof(d->salt), 0) != sizeof(d->salt))
		d->salt = ovc__now_ns() * 0x9e3779b97f4a7c15ULL;

	d->buf = aligned_alloc(OVC_PAGE_SIZE, (size_t)BATCH_MAX * OVC_PAGE_SIZE);
	d->x = calloc(2, sizeof(*d->x));
	if (!d->buf || !d->x) {
		ret = ENOMEM;
		goto err;
	}
	d->pool_fd = memfd_create("ovc-dedup-pool", MFD_CLOEXEC);
	if (d->pool_fd < 0 || ftruncate(d->pool_fd, (off_t)(POOL_MAX_SLOTS << OVC_PAGE_SHIFT)) < 0) {
		ret = errno;
		ovc__err(log, "dedup: pool memfd: %s", strerror(ret));
		goto err;
	}
	d->pool = mmap(NULL, POOL_MAX_SLOTS << OVC_PAGE_SHIFT, PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_NORESERVE, d->pool_fd, 0);
	if (d->pool == MAP_FAILED) {
		d->pool = NULL;
		ret = errno;
		ovc__err(log, "dedup: pool mapping: %s", strerror(ret));
		goto err;
	}
	madvise(d->pool, POOL_MAX_SLOTS << OVC_PAGE_SHIFT, MADV_DONTFORK);

	mmc = read_max_map_count();
	if (cfg->max_map_count && mmc >= 0 && (long)cfg->max_map_count > mmc) {
		ret = write_max_map_count((long)cfg->max_map_count);
		if (ret) {
			ovc__warn(log, "dedup: cannot raise vm.max_map_count to %llu (%s); keeping %ld",
				  (unsigned long long)cfg->max_map_count, strerror(-ret), mmc);
		} else {
			d->saved_max_map_count = mmc;
			mmc = (long)cfg->max_map_count;
		}
	}
	d->vma_budget = cfg->vma_budget ? cfg->vma_budget : (mmc > 0 ? (uint64_t)mmc / 4 : 16384);

	if (thread) {
		ret = pthread_create(&d->thread, NULL, scanner, d);
		if (ret)
			goto err;
		d->running = true;
	}
	return d;
err:
	ovc__dedup_destroy(d);
	errno = ret;
	return NULL;
}

void ovc__dedup_destroy(struct ovc_dedup *d)
{
	if (!d)
		return;
	if (!cds_list_empty(&d->members))
		OVC_BUG("dedup destroyed with members");
	if (d->running) {
		pthread_mutex_lock(&d->thr_lock);
		d->stop = true;
		pthread_cond_signal(&d->thr_cond);
		pthread_mutex_unlock(&d->thr_lock);
		pthread_join(d->thread, NULL);
	}
	if (d->saved_max_map_count >= 0 && write_max_map_count(d->saved_max_map_count))
		ovc__warn(d->log, "dedup: cannot restore vm.max_map_count to %ld",
			  d->saved_max_map_count);
	if (d->pool)
		munmap(d->pool, POOL_MAX_SLOTS << OVC_PAGE_SHIFT);
	if (d->pool_fd >= 0)
		close(d->pool_fd);
	free(d->pool_idx.e);
	free(d->cand_idx.e);
	free(d->slots);
	free(d->groups);
	free(d->buf);
	free(d->x);
	pthread_cond_destroy(&d->thr_cond);
	pthread_mutex_destroy(&d->thr_lock);
	pthread_mutex_destroy(&d->lock);
	pthread_mutex_destroy(&d->scan_lock);
	free(d);
}

uint64_t ovc__dedup_pool_pages(struct ovc_dedup *d)
{
	struct stat sb;

	if (fstat(d->pool_fd, &sb) < 0)
		return 0;
	return (uint64_t)sb.st_blocks * 512 / OVC_PAGE_SIZE;
}

void ovc__dedup_vmas(struct ovc_dedup *d, uint64_t *vmas, uint64_t *budget)
{
	pthread_mutex_lock(&d->lock);
	*vmas = d->vmas;
	*budget = d->vma_budget;
	pthread_mutex_unlock(&d->lock);
}

int ovc__dedup_set_cpu_budget(struct ovc_dedup *d, unsigned int permille)
{
	if (!d || permille < 1 || permille > 1000)
		return -EINVAL;
	atomic_store_explicit(&d->cpu_permille, permille, memory_order_relaxed);
	return 0;
}

struct ovc_dedup_member *ovc__dedup_join(struct ovc_dedup *d, struct ovc_ram *ram)
{
	struct ovc_dedup_member *m;
	int ret;

	m = calloc(1, sizeof(*m));
	if (!m)
		return NULL;
	m->d = d;
	m->ram = ram;
	ret = ovc__ram_set_store(ram, OVC_PAGE_SHARED, &pool_ops, m);
	if (ret) {
		free(m);
		errno = -ret;
		return NULL;
	}
	pthread_mutex_lock(&d->lock);
	m->id = ++d->next_id;
	m->group = m->id;	/* private: a group of its own */
	cds_list_add_tail(&m->node, &d->members);
	pthread_mutex_unlock(&d->lock);
	return m;
}

void ovc__dedup_enable(struct ovc_dedup_member *m, bool on)
{
	pthread_mutex_lock(&m->d->lock);
	m->enabled = on;
	pthread_mutex_unlock(&m->d->lock);
}

/* Take every shared page of @m back (a copy each). Called with scan_lock held. */
static int unshare_all(struct ovc_dedup_member *m)
{
	struct ovc_dedup *d = m->d;
	struct ovc_xact *x = &d->x[0];
	unsigned int r, nr;
	uint64_t off;
	int ret;

	pthread_mutex_lock(&d->lock);
	nr = m->nrgn;
	pthread_mutex_unlock(&d->lock);
	for (r = 0; r < nr; r++) {
		struct ovc_region *rg = &m->ram->regions[r];

		for (off = 0; off < rg->npages; off++) {
			uint64_t e = atomic_load_explicit(&rg->pt[off], memory_order_relaxed);

			if (ovc__pte_state(e) != OVC_PAGE_SHARED)
				continue;
			ret = ovc__xact_begin(x, m->ram, rg->gfn0 + off, 1, OVC_XACT_WAIT);
			if (ret)
				return ret;
			e = ovc__xact_old(x, 0);
			if (ovc__pte_state(e) != OVC_PAGE_SHARED) {
				ovc__xact_abort(x);
				continue;
			}
			memcpy(d->buf, pool_page(d, ovc__pte_payload(e)), OVC_PAGE_SIZE);
			ovc__xact_set(x, 0, OVC_PAGE_RESIDENT, 0, d->buf);
			ret = ovc__xact_commit(x);
			if (ret || x->failed[0])
				return ret ? ret : -EIO;
		}
	}
	return 0;
}

int ovc__dedup_set_group(struct ovc_dedup_member *m, const char *group)
{
	struct ovc_dedup *d = m->d;
	unsigned int i;
	uint32_t id = 0;
	int ret;

	pthread_mutex_lock(&d->scan_lock);
	ret = unshare_all(m);
	if (ret) {
		ovc__err(d->log, "dedup: cannot take shared pages back before a group change: %s",
			 strerror(-ret));
		goto out;
	}
	pthread_mutex_lock(&d->lock);
	if (!group) {
		id = ++d->next_id;	/* a fresh private group */
	} else {
		for (i = 0; i < d->ngroups; i++) {
			if (!strcmp(d->groups[i].name, group))
				id = d->groups[i].id;
		}
		if (!id) {
			struct named_group *g = realloc(d->groups, (d->ngroups + 1) * sizeof(*g));

			if (!g) {
				ret = -ENOMEM;
				pthread_mutex_unlock(&d->lock);
				goto out;
			}
			d->groups = g;
			id = ++d->next_id;
			snprintf(g[d->ngroups].name, sizeof(g[d->ngroups].name), "%s", group);
			g[d->ngroups++].id = id;
		}
	}
	m->group = id;
	pthread_mutex_unlock(&d->lock);
out:
	pthread_mutex_unlock(&d->scan_lock);
	return ret;
}

void ovc__dedup_get_stats(struct ovc_dedup_member *m, struct ovc_dedup_stats *st)
{
	struct ovc_dedup *d = m->d;
	unsigned int r;
	uint64_t off;

	memset(st, 0, sizeof(*st));
	pthread_mutex_lock(&d->lock);
	st->enabled = m->enabled;
	st->scanned = m->scanned;
	st->unstable = m->unstable;
	st->zero = m->zero;
	st->shared = m->shared;
	st->sharing = m->sharing;
	st->busy = m->busy;
	st->budget_stops = m->budget_stops;
	st->cpu_ns = m->cpu_ns;
	st->vmas = m->vmas;
	for (r = 0; r < m->nrgn && m->sharing; r++) {
		const struct member_region *mr = &m->rgn[r];

		for (off = 0; off < mr->npages; off++) {
			uint32_t ref;

			if (!mr->map[off])
				continue;
			ref = d->slots[mr->map[off] - 1].ref;
			st->saved_bytes += (uint64_t)OVC_PAGE_SIZE * (ref - 1) / ref;
		}
	}
	pthread_mutex_unlock(&d->lock);
	st->cow_breaks = atomic_load_explicit(&m->ram->cow_breaks, memory_order_relaxed);
}

void ovc__dedup_leave(struct ovc_dedup_member *m)
{
	struct ovc_dedup *d;

	if (!m)
		return;
	d = m->d;
	/* After this the scanner is not inside a batch of @m and never starts one. */
	pthread_mutex_lock(&d->scan_lock);
	pthread_mutex_lock(&d->lock);
	m->enabled = false;
	cds_list_del(&m->node);
	pthread_mutex_unlock(&d->lock);
	pthread_mutex_unlock(&d->scan_lock);
}

void ovc__dedup_forget(struct ovc_dedup_member *m)
{
	struct ovc_dedup *d;
	unsigned int r;
	uint64_t off;

	if (!m)
		return;
	d = m->d;
	pthread_mutex_lock(&d->lock);
	for (r = 0; r < m->nrgn; r++) {
		struct member_region *mr = &m->rgn[r];

		for (off = 0; off < mr->npages; off++) {
			if (mr->map[off])
				slot_put(d, mr->map[off] - 1);
		}
		munmap(mr->hash, mr->bytes_hash);
		munmap(mr->map, mr->bytes_map);
	}
	d->vmas -= m->vmas;
	pthread_mutex_unlock(&d->lock);
	free(m);
}

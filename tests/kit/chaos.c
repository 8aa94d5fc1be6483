// SPDX-License-Identifier: MIT
/* tests/kit/chaos.c: random page transitions through the real transition API, against a live VM. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "host/host-internal.h"
#include "tests/kit/chaos.h"
#include "tests/kit/memstore.h"

#define WORDS (OVC_PAGE_SIZE / sizeof(uint64_t))
#define CHAOS_MAX_RUN 8

struct chaos {
	struct ovc_ram *ram;
	uint64_t rate;
	uint64_t seed;
	struct memstore *zip, *swp;
	pthread_t thread;
	bool running;
	_Atomic bool stop;
	_Atomic uint64_t transitions, aborts, busy, armed;
};

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static struct memstore *store_of(struct chaos *c, unsigned int st)
{
	return st == OVC_PAGE_COMPRESSED ? c->zip : c->swp;
}

/* Decide page i's target; a new store handle is recorded in @made. */
static void chaos_page(struct chaos *c, struct ovc_xact *x, unsigned int i,
		       uint64_t *seed, uint64_t (*bufs)[WORDS], uint64_t *made)
{
	uint64_t e = ovc__xact_old(x, i), h, gfn = x->gfn + i;
	unsigned int st = ovc__pte_state(e);
	bool coin = rnd(seed) & 1;
	struct memstore *to;

	made[i] = 0;
	switch (st) {
	case OVC_PAGE_RESIDENT:
		/* Both ways of reading a page that may be armed (zapped). */
		if (x->flags & OVC_XACT_NOMAP) {
			if (ovc__xact_read(x, i, bufs[i]))
				return;
		} else {
			memcpy(bufs[i], ovc__xact_hva(x, i), OVC_PAGE_SIZE);
		}
		if (ovc__page_is_zero(bufs[i])) {
			ovc__xact_set(x, i, coin ? OVC_PAGE_ZERO : OVC_PAGE_BALLOONED, 0, NULL);
			return;
		}
		to = coin ? c->zip : c->swp;
		if (memstore_save(to, bufs[i], &h) == 0) {
			ovc__xact_set(x, i, coin ? OVC_PAGE_COMPRESSED : OVC_PAGE_SWAPPED,
				      h, NULL);
			made[i] = h;
		}
		return;
	case OVC_PAGE_COMPRESSED:
	case OVC_PAGE_SWAPPED:
		if (ovc__ram_store_load(c->ram, gfn, e, bufs[i]))
			return;
		if (coin) {	/* prefetch-style: back in place */
			ovc__xact_set(x, i, OVC_PAGE_RESIDENT, 0, bufs[i]);
			return;
		}
		/* tier eviction-style: to the other store */
		to = st == OVC_PAGE_COMPRESSED ? c->swp : c->zip;
		if (memstore_save(to, bufs[i], &h) == 0) {
			ovc__xact_set(x, i, st == OVC_PAGE_COMPRESSED ? OVC_PAGE_SWAPPED :
				      OVC_PAGE_COMPRESSED, h, NULL);
			made[i] = h;
		}
		return;
	case OVC_PAGE_SHARED:
		/* Out of the sharing pool (whoever owns it): back in place, or to a store. */
		if (ovc__ram_store_load(c->ram, gfn, e, bufs[i]))
			return;
		if (coin) {
			ovc__xact_set(x, i, OVC_PAGE_RESIDENT, 0, bufs[i]);
			return;
		}
		if (memstore_save(c->zip, bufs[i], &h) == 0) {
			ovc__xact_set(x, i, OVC_PAGE_COMPRESSED, h, NULL);
			made[i] = h;
		}
		return;
	case OVC_PAGE_ZERO:
	case OVC_PAGE_BALLOONED:
		if (coin)
			ovc__xact_set(x, i, st == OVC_PAGE_ZERO ? OVC_PAGE_BALLOONED :
				      OVC_PAGE_ZERO, 0, NULL);
		return;
	}
}

/* A random run of pages inside one RAM range, ranges weighted by size. */
static bool pick(struct chaos *c, uint64_t *seed, uint64_t *gfn, unsigned int *n)
{
	unsigned int nr = atomic_load_explicit(&c->ram->nregions, memory_order_acquire);
	uint64_t total = 0, at, i;

	for (i = 0; i < nr; i++)
		total += c->ram->regions[i].npages;
	if (!total)
		return false;
	at = rnd(seed) % total;
	for (i = 0; i < nr; i++) {
		const struct ovc_region *rg = &c->ram->regions[i];

		if (at < rg->npages) {
			*n = 1 + (unsigned int)(rnd(seed) % CHAOS_MAX_RUN);
			if (at + *n > rg->npages)
				*n = (unsigned int)(rg->npages - at);
			*gfn = rg->gfn0 + at;
			return true;
		}
		at -= rg->npages;
	}
	return false;
}

static void *chaos_thread(void *arg)
{
	struct chaos *c = arg;
	uint64_t seed = c->seed * 0x9e3779b97f4a7c15ULL | 1;
	uint64_t made[CHAOS_MAX_RUN];
	uint64_t (*bufs)[WORDS] = aligned_alloc(OVC_PAGE_SIZE, CHAOS_MAX_RUN * OVC_PAGE_SIZE);
	struct ovc_xact *x = malloc(sizeof(*x));
	uint64_t taken = 0, t0 = ovc__now_ns(), gfn;
	unsigned int n, i;
	bool abort_it;

	if (!x || !bufs) {
		free(x);
		free(bufs);
		return NULL;
	}
	while (!atomic_load_explicit(&c->stop, memory_order_relaxed)) {
		if (c->rate) {
			/* Pace: sleep while ahead of rate pages per second. */
			uint64_t due = taken * 1000000000ULL / c->rate;
			uint64_t now = ovc__now_ns() - t0;

			if (now < due) {
				uint64_t us = (due - now) / 1000 + 1;

				usleep((useconds_t)(us > 100000 ? 100000 : us));
				continue;
			}
		}
		if (!pick(c, &seed, &gfn, &n)) {
			usleep(10000);
			continue;
		}
		taken += n;
		if (rnd(&seed) % 4 == 0) {
			/* Arm the run: the next access of each resident page faults once. */
			for (i = 0; i < n; i++) {
				if (!ovc__ram_arm(c->ram, gfn + i, rnd(&seed) & 1 ? OVC_ARM_SAMPLE : 0))
					atomic_fetch_add_explicit(&c->armed, 1, memory_order_relaxed);
			}
			continue;
		}
		abort_it = rnd(&seed) % 10 == 0;
		if (ovc__xact_begin(x, c->ram, gfn, n, rnd(&seed) & 1 ? OVC_XACT_NOMAP : 0)) {
			atomic_fetch_add_explicit(&c->busy, 1, memory_order_relaxed);
			continue;
		}
		for (i = 0; i < n; i++) {
			chaos_page(c, x, i, &seed, bufs, made);
			/* Some resident pages that stay are armed as a CLOCK hand does. */
			if (ovc__pte_state(x->old[i]) == OVC_PAGE_RESIDENT &&
			    x->new_e[i] == x->old[i] && rnd(&seed) % 3 == 0)
				ovc__xact_arm(x, i, rnd(&seed) & 1);
		}
		if (abort_it) {
			for (i = 0; i < n; i++) {
				if (made[i])
					memstore_drop(store_of(c, ovc__pte_state(x->new_e[i])),
						      made[i]);
			}
			ovc__xact_abort(x);
			atomic_fetch_add_explicit(&c->aborts, n, memory_order_relaxed);
			continue;
		}
		ovc__xact_commit(x);
		for (i = 0; i < n; i++) {
			if (x->failed[i] && made[i])
				memstore_drop(store_of(c, ovc__pte_state(x->new_e[i])), made[i]);
			else if (!x->failed[i] && x->new_e[i] != x->old[i])
				atomic_fetch_add_explicit(&c->transitions, 1,
							  memory_order_relaxed);
		}
	}
	free(bufs);
	free(x);
	return NULL;
}

struct chaos *chaos_start(struct ovc_vm *vm, uint64_t rate, uint64_t seed)
{
	struct ovc_mem_stats st;
	struct chaos *c;
	uint64_t npages;
	int ret;

	if (!vm) {
		errno = EINVAL;
		return NULL;
	}
	c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->ram = ovc__vm_ram(vm);
	c->rate = rate;
	c->seed = seed ? seed : 1;
	ovc_vm_get_mem_stats(vm, &st);
	npages = st.ram_bytes >> OVC_PAGE_SHIFT;
	c->zip = memstore_new(npages);
	c->swp = memstore_new(npages);
	if (!c->zip || !c->swp) {
		ret = ENOMEM;
		goto err;
	}
	ret = -ovc__ram_set_store(c->ram, OVC_PAGE_COMPRESSED, &memstore_ops, c->zip);
	if (!ret)
		ret = -ovc__ram_set_store(c->ram, OVC_PAGE_SWAPPED, &memstore_ops, c->swp);
	if (ret)
		goto err;
	ret = pthread_create(&c->thread, NULL, chaos_thread, c);
	if (ret)
		goto err;
	c->running = true;
	return c;
err:
	memstore_destroy(c->zip);
	memstore_destroy(c->swp);
	free(c);
	errno = ret;
	return NULL;
}

void chaos_stop(struct chaos *c, struct chaos_result *res)
{
	if (c->running) {
		atomic_store(&c->stop, true);
		pthread_join(c->thread, NULL);
		c->running = false;
	}
	if (res) {
		res->transitions = atomic_load(&c->transitions);
		res->aborts = atomic_load(&c->aborts);
		res->busy = atomic_load(&c->busy);
		res->armed = atomic_load(&c->armed);
	}
}

uint64_t chaos_stored(struct chaos *c)
{
	return memstore_used(c->zip) + memstore_used(c->swp);
}

void chaos_destroy(struct chaos *c)
{
	if (!c)
		return;
	chaos_stop(c, NULL);
	memstore_destroy(c->zip);
	memstore_destroy(c->swp);
	free(c);
}

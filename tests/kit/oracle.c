// SPDX-License-Identifier: MIT
/* tests/kit/oracle.c: the integrity oracle: versioned self-checking pages under random transitions. */
#include <errno.h>
#include <inttypes.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <xxhash.h>

#include "host/host-internal.h"
#include "tests/kit/chaos.h"
#include "tests/kit/oracle.h"

#define WORDS (OVC_PAGE_SIZE / sizeof(uint64_t))
#define MAGIC 0x6f76632d70616765ULL	/* "ovc-page" */
#define MAX_REPORTS 5

struct shadow {
	atomic_flag lock;
	uint32_t version;	/* 0: the page must read as all zeros */
};

struct oracle {
	const struct oracle_config *cfg;
	struct ovc_vm *vm;
	struct ovc_ram *ram;
	uint64_t *base;
	struct shadow *shadow;
	_Atomic bool stop;
	_Atomic uint64_t accesses, writes, corrupt;
	_Atomic unsigned int reports;
};

static uint64_t splitmix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static uint64_t word(uint64_t page, uint32_t v, uint64_t i)
{
	return splitmix((page << 24) ^ ((uint64_t)v << 4) ^ i ^ 0xa5a5a5a5ULL * (i + 1));
}

static void report(struct oracle *o, uint64_t page, uint32_t v, const uint64_t *w,
		   const char *what)
{
	if (atomic_fetch_add(&o->reports, 1) < MAX_REPORTS)
		fprintf(stderr, "oracle: CORRUPT page %" PRIu64 " expected version %u: %s "
			"(header %016" PRIx64 " %016" PRIx64 ")\n",
			page, v, what, w[0], w[1]);
}

/* What names a page in its contents: itself, or nothing when contents repeat. */
static uint64_t tag(const struct oracle *o, uint64_t page)
{
	return o->cfg->same_content ? 0 : page;
}

static bool verify(struct oracle *o, uint64_t page, uint32_t v)
{
	const volatile uint64_t *vw = o->base + page * WORDS;
	uint64_t w[WORDS];
	uint64_t i;

	for (i = 0; i < WORDS; i++)
		w[i] = vw[i];
	if (v == 0) {
		for (i = 0; i < WORDS; i++) {
			if (w[i]) {
				report(o, page, v, w, "not zero");
				return false;
			}
		}
		return true;
	}
	if (w[0] != (MAGIC ^ tag(o, page)) || w[1] != v) {
		report(o, page, v, w, "wrong page or version");
		return false;
	}
	if (w[2] != XXH3_64bits(&w[3], (WORDS - 3) * sizeof(uint64_t))) {
		report(o, page, v, w, "checksum");
		return false;
	}
	for (i = 3; i < WORDS; i++) {
		if (w[i] != word(tag(o, page), v, i)) {
			report(o, page, v, w, "body");
			return false;
		}
	}
	return true;
}

static void write_page(struct oracle *o, uint64_t page, uint32_t v)
{
	uint64_t *pw = o->base + page * WORDS;
	uint64_t i;

	if (v == 0) {
		memset(pw, 0, OVC_PAGE_SIZE);
		return;
	}
	for (i = 3; i < WORDS; i++)
		pw[i] = word(tag(o, page), v, i);
	pw[2] = XXH3_64bits(&pw[3], (WORDS - 3) * sizeof(uint64_t));
	pw[1] = v;
	pw[0] = MAGIC ^ tag(o, page);
}

static void lock_page(struct shadow *s)
{
	while (atomic_flag_test_and_set_explicit(&s->lock, memory_order_acquire))
		sched_yield();
}

static void unlock_page(struct shadow *s)
{
	atomic_flag_clear_explicit(&s->lock, memory_order_release);
}

static void *accessor(void *arg)
{
	struct oracle *o = arg;
	const struct oracle_config *cfg = o->cfg;
	uint64_t seed = splitmix(cfg->seed ^ (uintptr_t)&seed) | 1;

	while (!atomic_load_explicit(&o->stop, memory_order_relaxed)) {
		uint64_t page = rnd(&seed) % cfg->npages;
		unsigned int dice = (unsigned int)(rnd(&seed) % 100);
		struct shadow *s = &o->shadow[page];

		lock_page(s);
		if (!verify(o, page, s->version))
			atomic_fetch_add_explicit(&o->corrupt, 1, memory_order_relaxed);
		if (dice < cfg->zero_pct) {
			s->version = 0;
			write_page(o, page, 0);
			atomic_fetch_add_explicit(&o->writes, 1, memory_order_relaxed);
		} else if (dice < cfg->zero_pct + cfg->write_pct) {
			s->version = s->version + 1 ? s->version + 1 : 1;
			write_page(o, page, s->version);
			atomic_fetch_add_explicit(&o->writes, 1, memory_order_relaxed);
		}
		unlock_page(s);
		atomic_fetch_add_explicit(&o->accesses, 1, memory_order_relaxed);
	}
	return NULL;
}

void oracle_config_init(struct oracle_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->accessors = 2;
	cfg->npages = 4096;
	cfg->min_accesses = 100000;
	cfg->seconds = 0;
	cfg->max_seconds = 600;
	cfg->write_pct = 30;
	cfg->zero_pct = 2;
	cfg->chaos = true;
	cfg->seed = 42;
}

static void *side_thread(void *arg)
{
	struct oracle *o = arg;

	o->cfg->side(o->vm, o->cfg->side_opaque, &o->stop);
	return NULL;
}

static double elapsed(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)(t.tv_sec - t0->tv_sec) + (double)(t.tv_nsec - t0->tv_nsec) / 1e9;
}

int oracle_run(struct ovc_host *host, const struct oracle_config *cfg,
	       struct oracle_result *res)
{
	struct chaos_result cres = { 0 };
	struct oracle o = { .cfg = cfg };
	struct chaos *chaos = NULL;
	pthread_t threads[64], side;
	bool side_started = false;
	unsigned int i, started = 0;
	struct timespec t0;
	char name[32];
	void *hva;
	uint64_t p;
	int ret;

	if (!host || !cfg || !res || cfg->accessors == 0 || cfg->accessors > 64 ||
	    cfg->npages == 0 || cfg->write_pct + cfg->zero_pct > 100)
		return -EINVAL;
	memset(res, 0, sizeof(*res));
	snprintf(name, sizeof(name), "oracle-%u", (unsigned int)getpid());
	o.vm = ovc_vm_new(host, name);
	if (!o.vm)
		return -errno;
	ret = ovc_vm_add_ram(o.vm, 0, cfg->npages << OVC_PAGE_SHIFT, &hva);
	if (ret)
		goto out_vm;
	o.base = hva;
	o.ram = ovc__vm_ram(o.vm);
	o.shadow = calloc(cfg->npages, sizeof(*o.shadow));
	if (!o.shadow) {
		ret = -ENOMEM;
		goto out_vm;
	}
	for (p = 0; p < cfg->npages; p++)
		atomic_flag_clear(&o.shadow[p].lock);

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (i = 0; i < cfg->accessors; i++) {
		ret = -pthread_create(&threads[i], NULL, accessor, &o);
		if (ret)
			goto out_stop;
		started++;
	}
	if (cfg->side) {
		ret = -pthread_create(&side, NULL, side_thread, &o);
		if (ret)
			goto out_stop;
		side_started = true;
	}
	if (cfg->chaos) {
		chaos = chaos_start(o.vm, cfg->chaos_rate, cfg->seed ^ 0xc4a05);
		if (!chaos) {
			ret = -errno;
			goto out_stop;
		}
	}
	for (;;) {
		double t = elapsed(&t0);

		if (t >= cfg->max_seconds)
			break;
		if (t >= cfg->seconds &&
		    atomic_load(&o.accesses) >= cfg->min_accesses)
			break;
		usleep(10000);
	}
out_stop:
	atomic_store(&o.stop, true);
	for (i = 0; i < started; i++)
		pthread_join(threads[i], NULL);
	if (side_started)
		pthread_join(side, NULL);
	if (chaos)
		chaos_stop(chaos, &cres);
	res->seconds = elapsed(&t0);

	/* Final sweep: every page, whatever state it was left in. */
	for (p = 0; p < cfg->npages; p++) {
		if (!verify(&o, p, o.shadow[p].version))
			atomic_fetch_add(&o.corrupt, 1);
	}
	/*
	 * Two threads faulting on one page leave two messages; the second may
	 * still be in a handler's hands (BUSY briefly) after both resumed.
	 */
	for (p = 0; p < 1000; p++) {
		ovc_vm_get_mem_stats(o.vm, &res->mem);
		if (!res->mem.busy_pages)
			break;
		usleep(1000);
	}
	res->accesses = atomic_load(&o.accesses);
	res->writes = atomic_load(&o.writes);
	res->transitions = cres.transitions;
	res->aborts = cres.aborts;
	res->busy = cres.busy;
	res->armed = cres.armed;
	res->corrupt = atomic_load(&o.corrupt);
	/* The sweep brought every page back: the stores must be empty. */
	res->store_leaks = chaos ? chaos_stored(chaos) : 0;
	free(o.shadow);
out_vm:
	if (ovc_vm_destroy(o.vm) && !ret)
		ret = -EIO;
	chaos_destroy(chaos);
	return ret;
}

void oracle_print(const struct oracle_result *r, FILE *out)
{
	const struct ovc_mem_stats *m = &r->mem;

	fprintf(out, "accesses     %" PRIu64 "\n", r->accesses);
	fprintf(out, "writes       %" PRIu64 "\n", r->writes);
	fprintf(out, "transitions  %" PRIu64 "\n", r->transitions);
	fprintf(out, "aborts       %" PRIu64 "\n", r->aborts);
	fprintf(out, "busy         %" PRIu64 "\n", r->busy);
	fprintf(out, "armed        %" PRIu64 "\n", r->armed);
	fprintf(out, "faults       zero %" PRIu64 " ballooned %" PRIu64 " store %" PRIu64
		" wp %" PRIu64 " wait %" PRIu64 " spurious %" PRIu64 " error %" PRIu64
		" minor %" PRIu64 "\n",
		m->faults[OVC_FAULT_ZERO], m->faults[OVC_FAULT_BALLOONED],
		m->faults[OVC_FAULT_STORE], m->faults[OVC_FAULT_WP],
		m->faults[OVC_FAULT_WAIT], m->faults[OVC_FAULT_SPURIOUS],
		m->faults[OVC_FAULT_ERROR], m->faults[OVC_FAULT_MINOR]);
	fprintf(out, "fault_ns     p50 %" PRIu64 " p99 %" PRIu64 "\n",
		ovc_mem_stats_fault_quantile_ns(m, 0.5),
		ovc_mem_stats_fault_quantile_ns(m, 0.99));
	fprintf(out, "seconds      %.1f\n", r->seconds);
	fprintf(out, "rate         %.0f accesses/s\n",
		r->seconds > 0 ? (double)r->accesses / r->seconds : 0.0);
	fprintf(out, "store_leaks  %" PRIu64 "\n", r->store_leaks);
	fprintf(out, "corrupt      %" PRIu64 "\n", r->corrupt);
}

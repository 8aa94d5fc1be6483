// SPDX-License-Identifier: MIT
/* bench/scn-fault-latency.c: p50/p99 of missing faults served by the fault engine, seen by the faulting thread, against the kernel's own anonymous faults. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "host/host-internal.h"
#include "tests/kit/memstore.h"

#include "harness.h"
#include "scenarios.h"

const char ovcb_scn_fault_latency_help[] =
"first-touch and page-in fault latency of ovc's fault engine vs kernel anonymous faults\n"
"options: [--pages N]\n"
"Maps N pages (default 20000) as a VM's RAM and times, from the faulting\n"
"thread, the first touch of every page (a hole filled by the engine: ZERO ->\n"
"RESIDENT) and, after moving every page into an in-memory store, the touch\n"
"that brings each back (COMPRESSED -> RESIDENT). The peer is the kernel's own\n"
"first touch of anonymous memory (4 KiB pages), which has no store to read.\n"
"Metrics: ovc.fault_zero.*, ovc.fault_store.*, kernel.fault_zero.* (p50/p99 us).\n";

struct phase {
	const char *name;
	uint64_t n;
	uint64_t *ns;
	uint64_t p50, p99, min;
};

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void summarize(struct phase *ph)
{
	qsort(ph->ns, ph->n, sizeof(uint64_t), cmp_u64);
	ph->min = ph->ns[0];
	ph->p50 = ph->ns[ph->n / 2];
	ph->p99 = ph->ns[ph->n * 99 / 100];
	printf("%-12s faults %8" PRIu64 "  p50 %7.2f us  p99 %7.2f us  min %6.2f us\n",
	       ph->name, ph->n, (double)ph->p50 / 1e3, (double)ph->p99 / 1e3,
	       (double)ph->min / 1e3);
}

/* Touch one byte of every page, timing each first touch. */
static void touch_all(uint8_t *mem, struct phase *ph)
{
	uint64_t i;

	for (i = 0; i < ph->n; i++) {
		uint64_t t0 = ovc__now_ns();

		(void)*(volatile uint8_t *)(mem + (i << OVC_PAGE_SHIFT));
		ph->ns[i] = ovc__now_ns() - t0;
	}
}

/* Move every page into @ms through real transitions. */
static int page_out_all(struct ovc_ram *ram, struct memstore *ms, uint64_t npages)
{
	struct ovc_xact *x = malloc(sizeof(*x));
	uint64_t gfn, h;
	unsigned int i, n;
	int ret = 0;

	if (!x)
		return -ENOMEM;
	for (gfn = 0; gfn < npages && !ret; gfn += n) {
		n = npages - gfn < 64 ? (unsigned int)(npages - gfn) : 64;
		ret = ovc__xact_begin(x, ram, gfn, n, OVC_XACT_WAIT);
		if (ret)
			break;
		for (i = 0; i < n; i++) {
			ret = memstore_save(ms, ovc__xact_hva(x, i), &h);
			if (ret)
				break;
			ovc__xact_set(x, i, OVC_PAGE_COMPRESSED, h, NULL);
		}
		if (ret) {
			ovc__xact_abort(x);
			break;
		}
		ret = ovc__xact_commit(x);
	}
	free(x);
	return ret;
}

/* The kernel's first touch of fresh anonymous memory, 4 KiB pages. */
static int kernel_touch(struct phase *ph)
{
	uint8_t *mem = mmap(NULL, ph->n << OVC_PAGE_SHIFT, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (mem == MAP_FAILED)
		return -errno;
	madvise(mem, ph->n << OVC_PAGE_SHIFT, MADV_NOHUGEPAGE);
	touch_all(mem, ph);
	munmap(mem, ph->n << OVC_PAGE_SHIFT);
	return 0;
}

/* Nanoseconds to microseconds, for the CDF plot. */
static double *to_us(const struct phase *ph)
{
	double *v = malloc(ph->n * sizeof(*v));
	uint64_t i;

	for (i = 0; v && i < ph->n; i++)
		v[i] = (double)ph->ns[i] / 1e3;
	return v;
}

static void plot(struct ovcb *b, struct phase *zero, struct phase *store, struct phase *kzero)
{
	double *z = to_us(zero), *s = to_us(store), *k = to_us(kzero);
	struct ovcb_series ser[] = {
		{ "ovc: hole filled (zero)", z, z ? zero->n : 0 },
		{ "ovc: page-in from a store", s, s ? store->n : 0 },
		{ "kernel: anonymous first touch", k, k ? kzero->n : 0 },
	};

	ovcb_plot_cdf(b, NULL, "fault latency seen by the faulting thread", "microseconds", ser,
		      3, true);
	free(z);
	free(s);
	free(k);
}

int ovcb_scn_fault_latency(struct ovcb *b, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "pages", required_argument, NULL, 'p' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct phase zero = { .name = "ovc zero" }, store = { .name = "ovc store" };
	struct phase kzero = { .name = "kernel zero" };
	uint64_t npages = 20000, i;
	struct ovc_host *host;
	struct memstore *ms;
	struct ovc_vm *vm;
	struct utsname u;
	uint8_t *mem;
	void *hva;
	int c, ret;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'p':
			npages = strtoull(optarg, NULL, 0);
			break;
		case 'h':
			printf("%s", ovcb_scn_fault_latency_help);
			return 0;
		default:
			return 2;
		}
	}
	if (npages < 100 || npages > (1ULL << 24)) {
		fprintf(stderr, "fault-latency: --pages must be 100..16777216\n");
		return 2;
	}
	zero.n = store.n = kzero.n = npages;
	zero.ns = calloc(npages, sizeof(uint64_t));
	store.ns = calloc(npages, sizeof(uint64_t));
	kzero.ns = calloc(npages, sizeof(uint64_t));
	ms = memstore_new(npages);
	host = ovc_host_new(NULL);
	if (!zero.ns || !store.ns || !kzero.ns || !ms || !host) {
		fprintf(stderr, "fault-latency: set-up: %s\n", strerror(errno));
		return -EIO;
	}
	vm = ovc_vm_new(host, "fault-latency");
	if (!vm || (ret = ovc_vm_add_ram(vm, 0, npages << OVC_PAGE_SHIFT, &hva))) {
		fprintf(stderr, "fault-latency: VM: %s\n", strerror(errno));
		return -EIO;
	}
	mem = hva;
	ovc__ram_set_store(ovc__vm_ram(vm), OVC_PAGE_COMPRESSED, &memstore_ops, ms);

	/* Phase 1: first touch of holes (ZERO -> RESIDENT). */
	touch_all(mem, &zero);
	for (i = 0; i < npages; i++)
		memset(mem + (i << OVC_PAGE_SHIFT), (int)(i | 1), 64);
	/* Phase 2: page everything out to the in-memory store, touch it back. */
	ret = page_out_all(ovc__vm_ram(vm), ms, npages);
	if (ret) {
		fprintf(stderr, "fault-latency: page out: %s\n", strerror(-ret));
		return -EIO;
	}
	touch_all(mem, &store);
	for (i = 0; i < npages; i++) {
		if (mem[(i << OVC_PAGE_SHIFT) + 63] != (uint8_t)(i | 1)) {
			fprintf(stderr, "fault-latency: page %" PRIu64 " came back wrong\n", i);
			return -EIO;
		}
	}

	ret = kernel_touch(&kzero);
	if (ret) {
		fprintf(stderr, "fault-latency: kernel peer: %s\n", strerror(-ret));
		return -EIO;
	}

	uname(&u);
	printf("fault-latency: %" PRIu64 " pages, 2 fault threads, kernel %s\n", npages, u.release);
	summarize(&zero);
	summarize(&store);
	summarize(&kzero);
	plot(b, &zero, &store, &kzero);
	ovcb_param_int(b, "pages", (int64_t)npages);
	ovcb_param_int(b, "fault_threads", 2);
	ovcb_metric(b, "ovc.fault_zero.p50_us", (double)zero.p50 / 1e3);
	ovcb_metric(b, "ovc.fault_zero.p99_us", (double)zero.p99 / 1e3);
	ovcb_metric(b, "ovc.fault_store.p50_us", (double)store.p50 / 1e3);
	ovcb_metric(b, "ovc.fault_store.p99_us", (double)store.p99 / 1e3);
	ovcb_metric(b, "kernel.fault_zero.p50_us", (double)kzero.p50 / 1e3);
	ovcb_metric(b, "kernel.fault_zero.p99_us", (double)kzero.p99 / 1e3);
	ovcb_ratio(b, "fault_zero_p50_vs_kernel", (double)zero.p50, (double)kzero.p50);
	ovcb_ratio(b, "fault_zero_p99_vs_kernel", (double)zero.p99, (double)kzero.p99);
	ovcb_set_ok(b, true);
	if (ovc_vm_destroy(vm) || ovc_host_destroy(host)) {
		fprintf(stderr, "fault-latency: teardown failed\n");
		return -EIO;
	}
	memstore_destroy(ms);
	free(zero.ns);
	free(store.ns);
	free(kzero.ns);
	return 0;
}

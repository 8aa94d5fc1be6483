// SPDX-License-Identifier: MIT
/* bench/scn-pager-latency.c: page-in latency of ovc's pager (compressed tier, swap file) against the kernel's zswap and swap, on the same pages. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/swap.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <ovc/ovc.h>

#include "content.h"
#include "harness.h"
#include "scenarios.h"

#ifndef MADV_PAGEOUT
#define MADV_PAGEOUT 21
#endif

#define PAGE OVC_PAGE_SIZE
#define MiB (1ULL << 20)
#define ZSWAP_DIR OVCB_ZSWAP_DIR
#define PAGE_CLUSTER "/proc/sys/vm/page-cluster"
#define PAGEMAP_SWAPPED (1ULL << 62)
#define PAGEMAP_PRESENT (1ULL << 63)

const char ovcb_scn_pager_latency_help[] =
"page-in latency of ovc's pager (compressed tier, swap file) vs kernel zswap and swap\n"
"options: [--pages N] [--dir DIR] [--no-peers] [--kernel-readahead]\n"
"Fills N pages (default 16384) with a mix of text-like, log, binary-record,\n"
"sparse and random pages, pages them all out, then touches each once in a\n"
"random order from one thread and times every first touch:\n"
"  ovc           a VM's RAM, ovc_pager_reclaim() into the compressed tier and a\n"
"                swap file in DIR (default /var/tmp); split by where each page was\n"
"  kernel_zswap  an anonymous mapping in a memory cgroup, MADV_PAGEOUT, zswap on,\n"
"                a swap file in DIR\n"
"  kernel_swap   the same with zswap off\n"
"The kernel peers need root, cgroup v1 memory and swap support; they change\n"
"zswap's 'enabled' (and 'compressor' to lz4 where the kernel has it) and\n"
"vm.page-cluster (0: no swap readahead, since ovc prefetches only sequences and\n"
"strides, which a random order never makes; --kernel-readahead keeps the\n"
"kernel's), and put back everything, also on SIGINT/SIGTERM. The 'major'\n"
"column is the share of first touches that did a page-in themselves (not a\n"
"swap-cache or prefetch hit).\n"
"--no-peers measures ovc only.\n";

/* snprintf() for paths and messages, where cutting short is fine. */
static OVC_PRINTF(3, 4) void strf(char *buf, size_t size, const char *f, ...)
{
	va_list ap;

	va_start(ap, f);
	vsnprintf(buf, size, f, ap);
	va_end(ap);
}

static void nap_ms(long ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* ---- distributions ---- */

/* Where ovc put a page; the kernel runs are split the same way. */
enum cls { CLS_OTHER, CLS_ZIP, CLS_DISK };

struct dist {
	uint64_t n;
	double p50_us, p99_us, p999_us, max_us;
	double major_pct;	/* kernel: first touches that did the page-in (not a swap-cache hit) */
};

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* The distribution of @ns over pages of class @want (-1: every page ovc paged out). */
static void dist_of(const uint64_t *ns, const uint8_t *major, const uint8_t *cls, int want,
		    uint64_t npages, uint64_t *tmp, struct dist *d)
{
	uint64_t i, n = 0, maj = 0;

	memset(d, 0, sizeof(*d));
	for (i = 0; i < npages; i++) {
		if (cls[i] == CLS_OTHER || (want >= 0 && cls[i] != want))
			continue;
		tmp[n++] = ns[i];
		if (major && major[i])
			maj++;
	}
	d->n = n;
	if (!n)
		return;
	qsort(tmp, n, sizeof(*tmp), cmp_u64);
	d->p50_us = (double)tmp[n / 2] / 1e3;
	d->p99_us = (double)tmp[n * 99 / 100] / 1e3;
	d->p999_us = (double)tmp[n * 999 / 1000] / 1e3;
	d->max_us = (double)tmp[n - 1] / 1e3;
	d->major_pct = major ? 100.0 * (double)maj / (double)n : -1;
}

/* ---- the benchmark ---- */

struct peer {
	const char *name;
	bool zswap;			/* kernel_zswap, else kernel_swap */
	bool ran;
	char skip[160];			/* why it did not run */
	struct dist zip, disk, all;
	uint64_t pageout_ns;
	uint64_t swapped, present, incore; /* after pushing out: pagemap / mincore */
	uint64_t bad;
	int64_t zswpout, pswpout, zswpin, pswpin;
	char compressor[64];
	uint64_t *ns;			/* per page, for the plot */
};

struct bench {
	struct ovcb *ob;
	uint64_t npages;
	const char *dir;
	bool peers;
	bool kernel_ra;
	uint64_t *order;		/* touch order, the same for every system */
	uint8_t *cls;			/* per page: enum cls, from ovc's page states */
	uint64_t *tmp;
	uint64_t kinds[OVCB_KIND_NR];
	/* ovc */
	bool ovc_ran;
	char ovc_err[160];
	struct dist ovc_zip, ovc_disk;
	uint64_t ovc_reclaim_ns, ovc_bad, ovc_other;
	struct ovc_pager_stats ovc_ps;
	double ovc_service_p50_us, ovc_service_p99_us;
	/* kernel */
	char cg_path[PATH_MAX];
	pid_t pid;			/* the benchmark's, for its workers */
	uint64_t *ovc_ns;		/* per page, for the plot */
	int page_cluster;		/* in force for the peers */
	struct peer zswap, swap;
	char swaps_before[4096], swaps_after[4096];
};

/* Fault service time quantile over what was served between two snapshots. */
static double service_quantile_us(const struct ovc_mem_stats *a, const struct ovc_mem_stats *b,
				  double q)
{
	struct ovc_mem_stats d;
	unsigned int i;

	memset(&d, 0, sizeof(d));
	for (i = 0; i < OVC_FAULT_HIST_BUCKETS; i++)
		d.fault_ns_hist[i] = b->fault_ns_hist[i] - a->fault_ns_hist[i];
	return (double)ovc_mem_stats_fault_quantile_ns(&d, q) / 1e3;
}

static int run_ovc(struct bench *b)
{
	struct ovc_host_config hc;
	struct ovc_pager_config pc;
	struct ovc_mem_stats st0, st1;
	uint64_t i, ram_bytes, made = 0, t0, *ns;
	uint8_t *major;
	struct ovc_host *host;
	struct ovc_pager *p;
	struct ovc_vm *vm;
	uint8_t *mem;
	void *hva;
	int ret = -1, r = 0, pass;

	ns = calloc(b->npages, sizeof(*ns));
	major = calloc(b->npages, 1);
	if (!ns || !major) {
		free(ns);
		free(major);
		strf(b->ovc_err, sizeof(b->ovc_err), "out of memory");
		return -1;
	}
	ovc_host_config_init(&hc);
	hc.log_level = OVC_LOG_WARN;
	host = ovc_host_new(&hc);
	if (!host) {
		strf(b->ovc_err, sizeof(b->ovc_err), "ovc_host_new: %s", strerror(errno));
		free(ns);
		free(major);
		return -1;
	}
	vm = ovc_vm_new(host, "pager-latency");
	ram_bytes = b->npages * PAGE > 256 * MiB ? b->npages * PAGE : 256 * MiB;
	if (!vm || (r = ovc_vm_add_ram(vm, 0, ram_bytes, &hva))) {
		strf(b->ovc_err, sizeof(b->ovc_err), "VM: %s", strerror(vm ? -r : errno));
		goto out_host;
	}
	mem = hva;
	for (i = 0; i < b->npages; i++)
		ovcb_fill_page(mem + i * PAGE, i);

	ovc_pager_config_init(&pc);
	/* Room for every compressible page; the random ones go to disk. */
	pc.zip_cap_bytes = b->npages * PAGE > 4 * MiB ? b->npages * PAGE : 4 * MiB;
	pc.swap_dir = b->dir;
	pc.swap_bytes = b->npages * PAGE + 4 * MiB;
	p = ovc_vm_add_pager(vm, &pc);
	if (!p) {
		strf(b->ovc_err, sizeof(b->ovc_err), "ovc_vm_add_pager(dir %s): %s", b->dir,
			 strerror(errno));
		goto out_vm;
	}
	t0 = ovcb_now_ns();
	/* CLOCK spares a page touched since the hand last passed: a few passes. */
	for (pass = 0; pass < 8 && made < b->npages; pass++) {
		struct ovc_pager_result res;
		int64_t got = ovc_pager_reclaim(p, b->npages - made, &res);

		if (got < 0) {
			strf(b->ovc_err, sizeof(b->ovc_err), "ovc_pager_reclaim: %s",
				 strerror((int)-got));
			goto out_vm;
		}
		made += (uint64_t)got;
		if (res.errors)
			fprintf(stderr, "pager-latency: ovc: %" PRIu64 " store errors while reclaiming\n",
				res.errors);
	}
	b->ovc_reclaim_ns = ovcb_now_ns() - t0;
	ovc_pager_get_stats(p, &b->ovc_ps);

	for (i = 0; i < b->npages; i++) {
		int s = ovc_vm_page_state(vm, i * PAGE, NULL);

		b->cls[i] = s == OVC_PAGE_COMPRESSED ? CLS_ZIP : s == OVC_PAGE_SWAPPED ? CLS_DISK :
			CLS_OTHER;
		b->ovc_other += b->cls[i] == CLS_OTHER;
	}

	ovc_vm_get_mem_stats(vm, &st0);
	for (i = 0; i < b->npages; i++) {
		uint64_t g = b->order[i], a;
		int s = ovc_vm_page_state(vm, g * PAGE, NULL);

		/* Already back (prefetched): this touch is no page-in, as a swap-cache hit is not. */
		major[g] = s == OVC_PAGE_COMPRESSED || s == OVC_PAGE_SWAPPED;
		a = ovcb_now_ns();
		(void)*(volatile uint8_t *)(mem + g * PAGE);
		ns[g] = ovcb_now_ns() - a;
	}
	ovc_vm_get_mem_stats(vm, &st1);
	b->ovc_service_p50_us = service_quantile_us(&st0, &st1, 0.5);
	b->ovc_service_p99_us = service_quantile_us(&st0, &st1, 0.99);
	for (i = 0; i < b->npages; i++)
		b->ovc_bad += !ovcb_page_ok(mem + i * PAGE, i);
	{
		struct ovc_pager_stats after;

		/* The tier's size stays as reclaim left it; prefetch counts what the touches set off. */
		ovc_pager_get_stats(p, &after);
		b->ovc_ps.prefetched = after.prefetched;
	}
	dist_of(ns, major, b->cls, CLS_ZIP, b->npages, b->tmp, &b->ovc_zip);
	dist_of(ns, major, b->cls, CLS_DISK, b->npages, b->tmp, &b->ovc_disk);
	b->ovc_ran = true;
	b->ovc_ns = ns;
	ns = NULL;
	ret = 0;
out_vm:
	if (vm && ovc_vm_destroy(vm)) {
		fprintf(stderr, "pager-latency: ovc_vm_destroy failed\n");
		ret = -1;
	}
out_host:
	if (ovc_host_destroy(host)) {
		fprintf(stderr, "pager-latency: ovc_host_destroy failed\n");
		ret = -1;
	}
	free(ns);
	free(major);
	return ret;
}

/* ---- the kernel peers ---- */

/* What the worker hands back, in a shared mapping the parent faulted in. */
struct shared {
	uint64_t pageout_ns;
	uint64_t swapped, present, incore;
	uint64_t bad;
	char msg[160];
	/* then uint64_t ns[n], uint8_t major[n], unsigned char vec[n] */
};

static size_t shared_size(uint64_t n)
{
	return sizeof(struct shared) + n * (sizeof(uint64_t) + 2);
}

static uint64_t *sh_ns(struct shared *sh)
{
	return (uint64_t *)(sh + 1);
}

static uint8_t *sh_major(struct shared *sh, uint64_t n)
{
	return (uint8_t *)(sh_ns(sh) + n);
}

static unsigned char *sh_vec(struct shared *sh, uint64_t n)
{
	return sh_major(sh, n) + n;
}

/* Fault the worker's stack in before it joins the cgroup, so only the test region is charged there. */
static __attribute__((noinline)) void touch_stack(void)
{
	volatile uint8_t buf[128 * 1024];
	size_t i;

	for (i = 0; i < sizeof(buf); i += 512)
		buf[i] = (uint8_t)i;
}

/* Count pages present and swapped per /proc/self/pagemap. */
static int pagemap_count(int fd, const uint8_t *region, uint64_t n, uint64_t *present,
			 uint64_t *swapped)
{
	uint64_t e[512], i, k, m;
	ssize_t got;

	*present = *swapped = 0;
	for (i = 0; i < n; i += m) {
		m = n - i < 512 ? n - i : 512;
		got = pread(fd, e, m * 8, (off_t)(((uintptr_t)region / PAGE + i) * 8));
		if (got != (ssize_t)(m * 8))
			return -EIO;
		for (k = 0; k < m; k++) {
			*present += !!(e[k] & PAGEMAP_PRESENT);
			*swapped += !!(e[k] & PAGEMAP_SWAPPED);
		}
	}
	return 0;
}

/* Pages in memory per mincore(): mapped, or still in the swap cache. */
static uint64_t incore_count(uint8_t *region, uint64_t n, unsigned char *vec)
{
	uint64_t i, c = 0;

	if (mincore(region, n * PAGE, vec))
		return UINT64_MAX;
	for (i = 0; i < n; i++)
		c += vec[i] & 1;
	return c;
}

#define FAIL(...) do { strf(sh->msg, sizeof(sh->msg), __VA_ARGS__); _exit(1); } while (0)

/*
 * The worker: joins the cgroup, fills its own anonymous region, pushes it
 * out, drops what the swap cache still holds, times each first touch.
 * Never returns.
 */
static void __attribute__((noreturn)) kernel_worker(struct bench *b, struct shared *sh)
{
	uint64_t n = b->npages, i, *ns = sh_ns(sh), t0, t1;
	uint8_t *major = sh_major(sh, n), *region;
	unsigned char *vec = sh_vec(sh, n);
	char path[PATH_MAX], pid[32];
	int pm, fe, tries;
	sigset_t all;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != b->pid)
		_exit(1);
	for (i = 1; i < NSIG; i++)
		if (i != SIGKILL && i != SIGSTOP)
			signal((int)i, SIG_DFL);
	sigfillset(&all);
	pthread_sigmask(SIG_UNBLOCK, &all, NULL);
	touch_stack();

	region = mmap(NULL, n * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (region == MAP_FAILED)
		FAIL("mmap: %s", strerror(errno));
	madvise(region, n * PAGE, MADV_NOHUGEPAGE);	/* 4 KiB pages, as ovc pages */
	pm = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	strf(path, sizeof(path), "%s/memory.force_empty", b->cg_path);
	fe = open(path, O_WRONLY | O_CLOEXEC);
	if (pm < 0 || fe < 0)
		FAIL("open pagemap / force_empty: %s", strerror(errno));
	strf(path, sizeof(path), "%s/cgroup.procs", b->cg_path);
	strf(pid, sizeof(pid), "%d", (int)getpid());
	if (ovcb_write_str(path, pid))
		FAIL("join %s: %s", b->cg_path, strerror(errno));

	for (i = 0; i < n; i++)
		ovcb_fill_page(region + i * PAGE, i);

	t0 = ovcb_now_ns();
	for (tries = 0; tries < 5; tries++) {
		if (madvise(region, n * PAGE, MADV_PAGEOUT))
			FAIL("madvise(MADV_PAGEOUT): %s", strerror(errno));
		if (pagemap_count(pm, region, n, &sh->present, &sh->swapped))
			FAIL("pagemap: read failed");
		if (!sh->present)
			break;
	}
	sh->pageout_ns = ovcb_now_ns() - t0;
	/*
	 * A page written to disk stays in the swap cache (clean) until reclaim
	 * comes round again; a touch would then be a minor fault. Reclaim the
	 * cgroup, which holds nothing but the region, until none is left.
	 */
	for (tries = 0; tries < 50; tries++) {
		sh->incore = incore_count(region, n, vec);
		if (!sh->incore)
			break;
		(void)!write(fe, "0", 1);
		nap_ms(20);
	}
	if (pagemap_count(pm, region, n, &sh->present, &sh->swapped))
		FAIL("pagemap: read failed");
	sh->incore = incore_count(region, n, vec);

	for (i = 0; i < n; i++) {
		uint64_t g = b->order[i];
		struct rusage r0, r1;

		getrusage(RUSAGE_THREAD, &r0);
		t0 = ovcb_now_ns();
		(void)*(volatile uint8_t *)(region + g * PAGE);
		t1 = ovcb_now_ns();
		getrusage(RUSAGE_THREAD, &r1);
		ns[g] = t1 - t0;
		major[g] = r1.ru_majflt != r0.ru_majflt;
	}
	for (i = 0; i < n; i++)
		sh->bad += !ovcb_page_ok(region + i * PAGE, i);
	_exit(0);
}

struct vmstat4 {
	int64_t zswpout, pswpout, zswpin, pswpin;
};

static void vmstat_read(struct vmstat4 *v)
{
	v->zswpout = ovcb_vmstat("zswpout");
	v->pswpout = ovcb_vmstat("pswpout");
	v->zswpin = ovcb_vmstat("zswpin");
	v->pswpin = ovcb_vmstat("pswpin");
}

/* Return: 0, or -EINTR on a stop (anything else is said in @pr->skip). */
static int run_peer(struct bench *b, struct peer *pr, bool zswap)
{
	size_t size = shared_size(b->npages);
	unsigned int mark = ovcb_restore_mark(b->ob);
	struct vmstat4 v0, v1;
	struct shared *sh;
	int status, ret;
	pid_t pid;

	/* zswap as wanted only as long as this peer is measured. */
	ret = ovcb_setting_write(b->ob, ZSWAP_DIR "enabled", zswap ? "Y" : "N");
	if (ret) {
		strf(pr->skip, sizeof(pr->skip), "cannot set zswap enabled=%s: %s",
			 zswap ? "Y" : "N", strerror(-ret));
		return 0;
	}
	if (zswap)
		ovcb_read_str(ZSWAP_DIR "compressor", pr->compressor, sizeof(pr->compressor));
	sh = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED) {
		strf(pr->skip, sizeof(pr->skip), "mmap: %s", strerror(errno));
		ovcb_restore_to(b->ob, mark);
		return 0;
	}
	memset(sh, 0, size);	/* charged here, before the worker joins its cgroup */
	vmstat_read(&v0);
	fflush(NULL);
	pid = fork();
	if (pid == 0)
		kernel_worker(b, sh);
	if (pid < 0) {
		strf(pr->skip, sizeof(pr->skip), "fork: %s", strerror(errno));
		goto out;
	}
	if (ovcb_child_track(b->ob, pid)) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		strf(pr->skip, sizeof(pr->skip), "restore stack full");
		goto out;
	}
	ret = ovcb_waitpid(b->ob, pid, &status);
	ovcb_child_untrack(b->ob, pid);
	vmstat_read(&v1);
	ovcb_restore_to(b->ob, mark);
	if (ret) {
		strf(pr->skip, sizeof(pr->skip), "%s", strerror(-ret));
		munmap(sh, size);
		return ret == -EINTR ? ret : 0;
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status)) {
		strf(pr->skip, sizeof(pr->skip), "worker failed: %s",
			 sh->msg[0] ? sh->msg : WIFSIGNALED(status) ? strsignal(WTERMSIG(status)) :
			 "exit status");
		goto out;
	}
	pr->pageout_ns = sh->pageout_ns;
	pr->swapped = sh->swapped;
	pr->present = sh->present;
	pr->incore = sh->incore;
	pr->bad = sh->bad;
	pr->zswpout = v1.zswpout - v0.zswpout;
	pr->pswpout = v1.pswpout - v0.pswpout;
	pr->zswpin = v1.zswpin - v0.zswpin;
	pr->pswpin = v1.pswpin - v0.pswpin;
	pr->ns = malloc(b->npages * sizeof(*pr->ns));
	if (pr->ns)
		memcpy(pr->ns, sh_ns(sh), b->npages * sizeof(*pr->ns));
	dist_of(sh_ns(sh), sh_major(sh, b->npages), b->cls, CLS_ZIP, b->npages, b->tmp, &pr->zip);
	dist_of(sh_ns(sh), sh_major(sh, b->npages), b->cls, CLS_DISK, b->npages, b->tmp, &pr->disk);
	dist_of(sh_ns(sh), sh_major(sh, b->npages), b->cls, -1, b->npages, b->tmp, &pr->all);
	if (pr->present || pr->swapped < b->npages * 99 / 100)
		strf(pr->skip, sizeof(pr->skip),
			 "only %" PRIu64 " of %" PRIu64 " pages left memory (%" PRIu64 " present)",
			 pr->swapped, b->npages, pr->present);
	else if (pr->bad)
		strf(pr->skip, sizeof(pr->skip), "%" PRIu64 " pages came back wrong", pr->bad);
	else
		pr->ran = true;
out:
	ovcb_restore_to(b->ob, mark);
	munmap(sh, size);
	return 0;
}

/* Return: 0, or -EINTR on a stop (anything else is said in the peers' skip). */
static int run_peers(struct bench *b)
{
	uint64_t swap_pages = b->npages * 2 + 1024;
	unsigned int mark = ovcb_restore_mark(b->ob);
	char cur[64], swap_path[PATH_MAX], root[PATH_MAX];
	const char *why;
	int ret;

	why = ovcb_swap_peer_missing(root, sizeof(root));
	if (why) {
		strf(b->zswap.skip, sizeof(b->zswap.skip), "%s", why);
		strf(b->swap.skip, sizeof(b->swap.skip), "%s", why);
		return 0;
	}

	/* Our swap file, preferred over any other swap (which we never touch). */
	ret = ovcb_swapfile_on(b->ob, b->dir, swap_pages, swap_path, sizeof(swap_path));
	if (!ret)
		ret = ovcb_cgroup_new(b->ob, "memory", "ovc-bench", b->cg_path, sizeof(b->cg_path));
	if (ret) {
		strf(b->zswap.skip, sizeof(b->zswap.skip), "swap file in %s or memory cgroup: %s",
			 b->dir, strerror(-ret));
		strf(b->swap.skip, sizeof(b->swap.skip), "%s", b->zswap.skip);
		ovcb_restore_to(b->ob, mark);
		return 0;
	}

	/*
	 * ovc prefetches only on sequences and strides, which the random order
	 * never makes; the kernel's readahead would bring in neighbours that
	 * this benchmark (which touches every page) then finds for free. So
	 * both sides measure bare page-ins unless --kernel-readahead.
	 */
	b->page_cluster = -1;
	if (!ovcb_read_str(PAGE_CLUSTER, cur, sizeof(cur))) {
		b->page_cluster = atoi(cur);
		if (!b->kernel_ra && !ovcb_setting_write(b->ob, PAGE_CLUSTER, "0"))
			b->page_cluster = 0;
	}
	/* lz4 as ovc uses, when the kernel's crypto API has it (it loads no module here). */
	if (ovcb_crypto_has("lz4")) {
		ret = ovcb_setting_write(b->ob, ZSWAP_DIR "compressor", "lz4");
		if (ret)
			fprintf(stderr, "pager-latency: zswap compressor lz4: %s\n", strerror(-ret));
	}

	ret = run_peer(b, &b->zswap, true);
	if (!ret)
		ret = run_peer(b, &b->swap, false);
	ovcb_restore_to(b->ob, mark);
	return ret;
}

/* ---- output ---- */

static void row(const char *sys, const char *set, const struct dist *d)
{
	char maj[16] = "-";

	if (!d->n)
		return;
	if (d->major_pct >= 0)
		strf(maj, sizeof(maj), "%.0f%%", d->major_pct);
	printf("%-13s %-9s %7" PRIu64 " %9.2f %9.2f %9.2f %9.1f %6s\n", sys, set, d->n, d->p50_us,
	       d->p99_us, d->p999_us, d->max_us, maj);
}

static void print_peer(const struct peer *p)
{
	if (!p->ran && !p->all.n) {
		printf("%-13s skipped: %s\n", p->name, p->skip);
		return;
	}
	row(p->name, "zip-set", &p->zip);
	row(p->name, "disk-set", &p->disk);
	row(p->name, "all", &p->all);
	if (!p->ran)
		printf("%-13s not counted: %s\n", p->name, p->skip);
}

static void set_dist(struct ovcb *ob, const char *prefix, const struct dist *d, bool full)
{
	if (!d->n)
		return;
	ovcb_metricf(ob, d->p50_us, "%s.p50_us", prefix);
	ovcb_metricf(ob, d->p99_us, "%s.p99_us", prefix);
	ovcb_metricf(ob, d->p999_us, "%s.p999_us", prefix);
	ovcb_metricf(ob, (double)d->n, "%s.n_pages", prefix);
	if (full && d->major_pct >= 0)
		ovcb_metricf(ob, d->major_pct, "%s.major_pct", prefix);
}

static void set_peer(struct ovcb *ob, const struct peer *p)
{
	char key[128];

	if (!p->ran)
		return;
	/* Like for like: zswap over the pages ovc compressed, swap over those ovc sent to disk. */
	strf(key, sizeof(key), "%s.pagein", p->name);
	set_dist(ob, key, p->zswap ? &p->zip : &p->disk, true);
	strf(key, sizeof(key), "%s.pagein_zipset", p->name);
	set_dist(ob, key, &p->zip, true);
	strf(key, sizeof(key), "%s.pagein_diskset", p->name);
	set_dist(ob, key, &p->disk, true);
	strf(key, sizeof(key), "%s.pagein_all", p->name);
	set_dist(ob, key, &p->all, true);
	ovcb_metricf(ob, (double)p->pageout_ns / 1e6, "%s.pageout_ms", p->name);
	ovcb_metricf(ob, (double)p->zswpout, "%s.zswpout_pages", p->name);
	ovcb_metricf(ob, (double)p->pswpout, "%s.pswpout_pages", p->name);
	ovcb_metricf(ob, (double)p->zswpin, "%s.zswpin_pages", p->name);
	ovcb_metricf(ob, (double)p->pswpin, "%s.pswpin_pages", p->name);
}

static void report(struct bench *b, bool ok)
{
	struct ovcb *ob = b->ob;
	json_t *mix;
	unsigned int k;

	mix = json_object();
	for (k = 0; k < OVCB_KIND_NR; k++)
		json_object_set_new(mix, ovcb_kind_names[k], json_integer((json_int_t)b->kinds[k]));
	ovcb_param_int(ob, "pages", (int64_t)b->npages);
	ovcb_param_str(ob, "dir", b->dir);
	ovcb_param_str(ob, "order", "random");
	ovcb_param_int(ob, "page_cluster", b->page_cluster);
	ovcb_param_str(ob, "zswap_compressor", b->zswap.compressor);
	ovcb_param_json(ob, "mix", mix);

	if (b->ovc_ran) {
		set_dist(ob, "ovc.pagein_zip", &b->ovc_zip, true);
		set_dist(ob, "ovc.pagein_disk", &b->ovc_disk, true);
		ovcb_metric(ob, "ovc.fault_service.p50_us", b->ovc_service_p50_us);
		ovcb_metric(ob, "ovc.fault_service.p99_us", b->ovc_service_p99_us);
		ovcb_metric(ob, "ovc.reclaim_ms", (double)b->ovc_reclaim_ns / 1e6);
		ovcb_metric(ob, "ovc.zip_bytes", (double)b->ovc_ps.zip_bytes);
		ovcb_metric(ob, "ovc.prefetched_pages", (double)b->ovc_ps.prefetched);
	}
	set_peer(ob, &b->zswap);
	set_peer(ob, &b->swap);

	if (b->ovc_ran && b->zswap.ran && b->zswap.zip.n) {
		ovcb_ratio(ob, "pagein_zip_p50_vs_zswap", b->ovc_zip.p50_us, b->zswap.zip.p50_us);
		ovcb_ratio(ob, "pagein_zip_p99_vs_zswap", b->ovc_zip.p99_us, b->zswap.zip.p99_us);
	}
	if (b->ovc_ran && b->swap.ran && b->swap.disk.n) {
		ovcb_ratio(ob, "pagein_disk_p50_vs_swap", b->ovc_disk.p50_us, b->swap.disk.p50_us);
		ovcb_ratio(ob, "pagein_disk_p99_vs_swap", b->ovc_disk.p99_us, b->swap.disk.p99_us);
	}
	ovcb_set_ok(ob, ok);
}

/* Microseconds of the pages of class @want, for a CDF. */
static size_t class_us(const struct bench *b, const uint64_t *ns, int want, double *out)
{
	uint64_t i;
	size_t n = 0;

	for (i = 0; ns && i < b->npages; i++)
		if (b->cls[i] == want)
			out[n++] = (double)ns[i] / 1e3;
	return n;
}

static void plot(struct bench *b)
{
	double *v = malloc(4 * b->npages * sizeof(*v));
	struct ovcb_series s[4];
	uint64_t n = b->npages;

	if (!v || !ovcb_plot_enabled(b->ob)) {
		free(v);
		return;
	}
	s[0] = (struct ovcb_series){ "ovc: compressed tier", v,
				     class_us(b, b->ovc_ns, CLS_ZIP, v) };
	s[1] = (struct ovcb_series){ "kernel zswap (same pages)", v + n,
				     class_us(b, b->zswap.ran ? b->zswap.ns : NULL, CLS_ZIP, v + n) };
	ovcb_plot_cdf(b->ob, "zip", "page-in latency: ovc compressed tier vs kernel zswap",
		      "microseconds (first touch)", s, 2, true);
	s[2] = (struct ovcb_series){ "ovc: swap file", v + 2 * n,
				     class_us(b, b->ovc_ns, CLS_DISK, v + 2 * n) };
	s[3] = (struct ovcb_series){ "kernel swap (same pages)", v + 3 * n,
				     class_us(b, b->swap.ran ? b->swap.ns : NULL, CLS_DISK,
					      v + 3 * n) };
	ovcb_plot_cdf(b->ob, "disk", "page-in latency: ovc swap file vs kernel swap",
		      "microseconds (first touch)", s + 2, 2, true);
	free(v);
}

int ovcb_scn_pager_latency(struct ovcb *ob, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "pages", required_argument, NULL, 'p' },
		{ "dir", required_argument, NULL, 'd' },
		{ "no-peers", no_argument, NULL, 'n' },
		{ "kernel-readahead", no_argument, NULL, 'r' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct bench b = {
		.ob = ob, .npages = 16384, .dir = "/var/tmp", .peers = true, .page_cluster = -1,
		.zswap = { .name = "kernel_zswap", .zswap = true },
		.swap = { .name = "kernel_swap" },
	};
	uint64_t i, s = 0x5eed;
	struct utsname un;
	bool ok;
	int c, ret = 0;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'p':
			b.npages = strtoull(optarg, NULL, 0);
			break;
		case 'd':
			b.dir = optarg;
			break;
		case 'n':
			b.peers = false;
			break;
		case 'r':
			b.kernel_ra = true;
			break;
		case 'h':
			printf("%s", ovcb_scn_pager_latency_help);
			return 0;
		default:
			return 2;
		}
	}
	if (b.npages < 256 || b.npages > (1ULL << 22)) {
		fprintf(stderr, "pager-latency: --pages must be 256..4194304\n");
		return 2;
	}
	b.pid = getpid();
	ovcb_read_str("/proc/swaps", b.swaps_before, sizeof(b.swaps_before));

	b.order = malloc(b.npages * sizeof(*b.order));
	b.cls = calloc(b.npages, 1);
	b.tmp = malloc(b.npages * sizeof(*b.tmp));
	if (!b.order || !b.cls || !b.tmp) {
		fprintf(stderr, "pager-latency: out of memory\n");
		ret = -ENOMEM;
		goto out;
	}
	for (i = 0; i < b.npages; i++) {
		b.order[i] = i;
		b.kinds[ovcb_page_kind(i)]++;
	}
	for (i = b.npages - 1; i > 0; i--) {
		uint64_t j = ovcb_splitmix(&s) % (i + 1), t = b.order[i];

		b.order[i] = b.order[j];
		b.order[j] = t;
	}

	if (run_ovc(&b))
		fprintf(stderr, "pager-latency: ovc: %s\n", b.ovc_err[0] ? b.ovc_err : "failed");
	if (!b.ovc_ran) {
		/* Nothing to split the kernel's figures by: use the content. */
		for (i = 0; i < b.npages; i++)
			b.cls[i] = ovcb_page_kind(i) == OVCB_KIND_RANDOM ? CLS_DISK : CLS_ZIP;
	}
	if (ovcb_stopping(ob)) {
		ret = -EINTR;
		goto out;
	}
	if (b.peers) {
		ret = run_peers(&b);
		if (ret)
			goto out;
	} else {
		strf(b.zswap.skip, sizeof(b.zswap.skip), "--no-peers");
		strf(b.swap.skip, sizeof(b.swap.skip), "--no-peers");
	}
	ovcb_read_str("/proc/swaps", b.swaps_after, sizeof(b.swaps_after));
	uname(&un);
	printf("pager-latency: %" PRIu64 " pages (text %" PRIu64 ", log %" PRIu64 ", data %" PRIu64
	       ", sparse %" PRIu64 ", random %" PRIu64 "), dir %s, kernel %s, %ld cpus\n",
	       b.npages, b.kinds[OVCB_KIND_TEXT], b.kinds[OVCB_KIND_LOG], b.kinds[OVCB_KIND_DATA],
	       b.kinds[OVCB_KIND_SPARSE], b.kinds[OVCB_KIND_RANDOM], b.dir, un.release,
	       sysconf(_SC_NPROCESSORS_ONLN));
	if (b.ovc_ran)
		printf("ovc: reclaimed in %.1f ms: %" PRIu64 " compressed (tier %.1f MiB), %" PRIu64
		       " swapped, %" PRIu64 " zero, %" PRIu64 " left; fault service p50 %.2f us"
		       " p99 %.2f us; %" PRIu64 " prefetched\n", (double)b.ovc_reclaim_ns / 1e6,
		       b.ovc_zip.n, (double)b.ovc_ps.zip_bytes / MiB, b.ovc_disk.n, b.ovc_ps.zero,
		       b.ovc_other, b.ovc_service_p50_us, b.ovc_service_p99_us, b.ovc_ps.prefetched);
	if (b.zswap.all.n)
		printf("kernel_zswap: pageout %.1f ms, zswpout %" PRId64 " pswpout %" PRId64
		       ", zswpin %" PRId64 " pswpin %" PRId64 ", compressor %s, page-cluster %d,"
		       " %" PRIu64 " still in memory\n", (double)b.zswap.pageout_ns / 1e6,
		       b.zswap.zswpout, b.zswap.pswpout, b.zswap.zswpin, b.zswap.pswpin,
		       b.zswap.compressor, b.page_cluster, b.zswap.incore);
	if (b.swap.all.n)
		printf("kernel_swap:  pageout %.1f ms, pswpout %" PRId64 ", pswpin %" PRId64
		       ", page-cluster %d, %" PRIu64 " still in memory\n",
		       (double)b.swap.pageout_ns / 1e6, b.swap.pswpout, b.swap.pswpin,
		       b.page_cluster, b.swap.incore);
	printf("\n%-13s %-9s %7s %9s %9s %9s %9s %6s\n", "system", "pages", "n", "p50 us", "p99 us",
	       "p99.9 us", "max us", "major");
	if (b.ovc_ran) {
		row("ovc", "zip", &b.ovc_zip);
		row("ovc", "disk", &b.ovc_disk);
	} else {
		printf("%-13s failed: %s\n", "ovc", b.ovc_err);
	}
	print_peer(&b.zswap);
	print_peer(&b.swap);
	if (b.ovc_ran && b.zswap.ran)
		printf("\novc zip / zswap: p50 %.2fx, p99 %.2fx (goal: p50 <= 8 us and <= 1.5x)\n",
		       b.ovc_zip.p50_us / b.zswap.zip.p50_us, b.ovc_zip.p99_us / b.zswap.zip.p99_us);
	if (b.ovc_ran && b.swap.ran)
		printf("ovc disk / swap: p50 %.2fx, p99 %.2fx\n",
		       b.ovc_disk.p50_us / b.swap.disk.p50_us, b.ovc_disk.p99_us / b.swap.disk.p99_us);
	if (b.ovc_bad)
		printf("ovc: %" PRIu64 " pages came back wrong\n", b.ovc_bad);
	if (strcmp(b.swaps_before, b.swaps_after))
		printf("pager-latency: /proc/swaps differs from the start:\n%s\n--- now:\n%s\n",
		       b.swaps_before, b.swaps_after);

	ok = b.ovc_ran && !b.ovc_bad && b.zswap.ran && b.swap.ran;
	report(&b, ok);
	plot(&b);
	ret = b.ovc_ran && !b.ovc_bad ? 0 : -EIO;
out:
	free(b.order);
	free(b.cls);
	free(b.tmp);
	free(b.ovc_ns);
	free(b.zswap.ns);
	free(b.swap.ns);
	return ret;
}

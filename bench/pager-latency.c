// SPDX-License-Identifier: MIT
/* bench/pager-latency.c: page-in latency of ovc's pager (compressed tier, swap file) against the kernel's zswap and swap, on the same pages. */
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

#include <jansson.h>

#include <ovc/ovc.h>

#ifndef MADV_PAGEOUT
#define MADV_PAGEOUT 21
#endif

#define PAGE OVC_PAGE_SIZE
#define MiB (1ULL << 20)
#define ZSWAP_DIR "/sys/module/zswap/parameters/"
#define PAGE_CLUSTER "/proc/sys/vm/page-cluster"
#define PAGEMAP_SWAPPED (1ULL << 62)
#define PAGEMAP_PRESENT (1ULL << 63)

static void usage(FILE *out)
{
	fprintf(out,
"usage: pager-latency [--pages N] [--dir DIR] [--json FILE] [--no-peers]\n"
"                     [--kernel-readahead]\n"
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
"--no-peers measures ovc only.\n");
}

/*
 * What to put back. The handler reads this, so it holds plain values and
 * the main thread changes it only with the termination signals blocked
 * (crit_begin/crit_end).
 */
static struct {
	pid_t pid;			/* only this process restores */
	pid_t main_tid;			/* the handler runs here */
	pid_t child;			/* a kernel peer's worker, 0: none */
	bool swap_created, swap_on;
	char swap_path[PATH_MAX];
	bool cg_created;
	char cg_path[PATH_MAX];
	bool zswap_enabled_changed, zswap_comp_changed, page_cluster_changed;
	char zswap_enabled0[16], zswap_comp0[64], page_cluster0[16];
	volatile sig_atomic_t restoring;
} mstate;

static const int term_signals[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT };
static const int crash_signals[] = { SIGABRT, SIGSEGV, SIGBUS, SIGFPE, SIGILL };

static sigset_t crit_mask(void)
{
	sigset_t set;
	size_t i;

	sigemptyset(&set);
	for (i = 0; i < sizeof(term_signals) / sizeof(term_signals[0]); i++)
		sigaddset(&set, term_signals[i]);
	return set;
}

static void crit_begin(void)
{
	sigset_t set = crit_mask();

	pthread_sigmask(SIG_BLOCK, &set, NULL);
}

static void crit_end(void)
{
	sigset_t set = crit_mask();

	pthread_sigmask(SIG_UNBLOCK, &set, NULL);
}

/* snprintf() for paths and messages, where cutting short is fine. */
static OVC_PRINTF(3, 4) void strf(char *buf, size_t size, const char *f, ...)
{
	va_list ap;

	va_start(ap, f);
	vsnprintf(buf, size, f, ap);
	va_end(ap);
}

/* Async-signal-safe helpers: open/write/close only. */
static int write_str(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC), ret = 0;

	if (fd < 0)
		return -errno;
	if (write(fd, s, strlen(s)) < 0)
		ret = -errno;
	close(fd);
	return ret;
}

static void say(const char *s)
{
	(void)!write(STDERR_FILENO, s, strlen(s));
}

static void nap_ms(long ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/*
 * Put the machine back as it was: stop the worker, zswap and page-cluster
 * as found, our swap file off and gone, our cgroup gone. Idempotent and
 * async-signal-safe; a no-op in any process but the benchmark's own.
 */
static void restore(void)
{
	int i;

	if (getpid() != mstate.pid || mstate.restoring)
		return;
	mstate.restoring = 1;
	if (mstate.child > 0) {
		kill(mstate.child, SIGKILL);
		waitpid(mstate.child, NULL, 0);
		mstate.child = 0;
	}
	if (mstate.zswap_enabled_changed &&
	    !write_str(ZSWAP_DIR "enabled", mstate.zswap_enabled0))
		mstate.zswap_enabled_changed = false;
	if (mstate.zswap_comp_changed &&
	    !write_str(ZSWAP_DIR "compressor", mstate.zswap_comp0))
		mstate.zswap_comp_changed = false;
	if (mstate.page_cluster_changed && !write_str(PAGE_CLUSTER, mstate.page_cluster0))
		mstate.page_cluster_changed = false;
	if (mstate.swap_on) {
		if (!swapoff(mstate.swap_path))
			mstate.swap_on = false;
		else
			say("pager-latency: swapoff of our swap file failed: remove it by hand\n");
	}
	if (mstate.swap_created && !mstate.swap_on && !unlink(mstate.swap_path))
		mstate.swap_created = false;
	/* An exited task may hold the cgroup for a moment. */
	for (i = 0; mstate.cg_created && i < 100; i++) {
		if (!rmdir(mstate.cg_path) || errno == ENOENT)
			mstate.cg_created = false;
		else if (errno == EBUSY)
			nap_ms(20);
		else
			break;
	}
	if (mstate.cg_created)
		say("pager-latency: could not remove our memory cgroup\n");
	mstate.restoring = 0;
}

/* restore() from the main thread: a signal arriving meanwhile waits for it to finish. */
static void restore_main(void)
{
	crit_begin();
	restore();
	crit_end();
}

static void on_signal(int sig)
{
	if (getpid() != mstate.pid)
		_exit(128 + sig);	/* a worker between fork and its own handlers */
	if (syscall(SYS_gettid) != mstate.main_tid) {
		bool term = sig == SIGINT || sig == SIGTERM || sig == SIGHUP || sig == SIGQUIT;

		/* The main thread may be mid-change with these blocked: let it take them. */
		if (term) {
			syscall(SYS_tgkill, mstate.pid, mstate.main_tid, sig);
			return;
		}
	}
	restore();
	signal(sig, SIG_DFL);
	raise(sig);
}

static void install_handlers(void)
{
	struct sigaction sa;
	size_t i;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigfillset(&sa.sa_mask);
	for (i = 0; i < sizeof(term_signals) / sizeof(term_signals[0]); i++)
		sigaction(term_signals[i], &sa, NULL);
	for (i = 0; i < sizeof(crash_signals) / sizeof(crash_signals[0]); i++)
		sigaction(crash_signals[i], &sa, NULL);
}

static void default_handlers(void)
{
	size_t i;

	for (i = 0; i < sizeof(term_signals) / sizeof(term_signals[0]); i++)
		signal(term_signals[i], SIG_DFL);
	for (i = 0; i < sizeof(crash_signals) / sizeof(crash_signals[0]); i++)
		signal(crash_signals[i], SIG_DFL);
}

/* ---- page contents: the same generator for every system ---- */

enum kind { KIND_TEXT, KIND_LOG, KIND_DATA, KIND_SPARSE, KIND_RANDOM, KIND_NR };

static const char *const kind_names[KIND_NR] = { "text", "log", "data", "sparse", "random" };

static const char *const words[] = {
	"memory", "page", "guest", "host", "kernel", "request", "server", "value",
	"config", "error", "buffer", "thread", "process", "virtual", "machine",
	"network", "storage", "latency", "timeout", "connection", "database",
	"transaction", "response", "status", "version", "default", "enabled",
	"session", "the", "with", "from", "which", "their", "there", "would",
	"handler", "queue", "socket", "record", "offset", "length", "client",
};
#define NWORDS (sizeof(words) / sizeof(words[0]))

static uint64_t splitmix(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* Of 16 pages: 5 text-like, 3 log lines, 2 binary records, 2 sparse, 4 random. */
static enum kind page_kind(uint64_t i)
{
	uint64_t s = i * 0x2545f4914f6cdd1dULL;
	unsigned int k = (unsigned int)(splitmix(&s) % 16);

	return k < 5 ? KIND_TEXT : k < 8 ? KIND_LOG : k < 10 ? KIND_DATA :
		k < 12 ? KIND_SPARSE : KIND_RANDOM;
}

/* One line of source/markup-like text from a page's own small vocabulary. */
static int text_line(char *line, size_t size, uint64_t r, const char *const *vw)
{
	unsigned int t = (unsigned int)(r >> 4) % 8, ind = (t % 3) * 4;
	unsigned int num = (unsigned int)(r >> 32) % 64;
	const char *a = vw[(r >> 8) % 8], *b = vw[(r >> 16) % 8], *c = vw[(r >> 24) % 8];

	switch (t) {
	case 0: return snprintf(line, size, "%*sif (%s->%s == NULL)\n", ind, "", a, b);
	case 1: return snprintf(line, size, "%*sreturn %s_%s(%s, %u);\n", ind, "", a, b, c, num);
	case 2: return snprintf(line, size, "%*s<div class=\"%s-%s\">%s</div>\n", ind, "", a, b, c);
	case 3: return snprintf(line, size, "%*s%s = %s_%s + %u;\n", ind, "", a, b, c, num);
	case 4: return snprintf(line, size, "%*s/* %s the %s before %s */\n", ind, "", a, b, c);
	case 5: return snprintf(line, size, "%*s\"%s\": \"%s_%s\", \"id\": %u,\n", ind, "", a, b, c,
				num);
	case 6: return snprintf(line, size, "%*s%s.%s(%s);\n", ind, "", a, b, c);
	default: return snprintf(line, size, "%*sfor (i = 0; i < %s_%s; i++)\n", ind, "", a, b);
	}
}

static int log_line(char *line, size_t size, uint64_t r, uint64_t page, unsigned int *t)
{
	static const char *const lv[] = { "INFO", "INFO", "INFO", "DEBUG", "WARN", "ERROR" };

	*t += (unsigned int)(r % 3);
	return snprintf(line, size,
			"2024-05-%02u %02u:%02u:%02u.%03u %s worker[%u]: %s %s %s %u in %u ms\n",
			(unsigned int)(1 + page % 28), *t / 3600 % 24, *t / 60 % 60, *t % 60,
			(unsigned int)(r >> 20) % 100, lv[(r >> 8) % 6], (unsigned int)(r >> 32) % 16,
			words[(r >> 36) % 24], words[(r >> 42) % 24], words[(r >> 48) % 24],
			(unsigned int)(r >> 12) % 1000, (unsigned int)(r >> 54) % 50);
}

/*
 * Page @i's contents. Text and log pages compress 2-2.5x with LZ4, records
 * about 3x, sparse pages 20x or more, random ones not at all; no page is all
 * zero (that would be no page-in at all).
 */
static void fill_page(uint8_t *p, uint64_t i)
{
	uint64_t s = i ^ 0xabcdef1234ULL, v, r;
	enum kind k = page_kind(i);
	const char *vw[8];
	unsigned int t, j;
	char line[200];
	size_t o = 0;
	int n;

	switch (k) {
	case KIND_RANDOM:
		for (o = 0; o < PAGE; o += 8) {
			v = splitmix(&s);
			memcpy(p + o, &v, 8);
		}
		return;
	case KIND_SPARSE:
		memset(p, 0, PAGE);
		n = 8 + (int)(splitmix(&s) % 32);
		for (j = 0; j < (unsigned int)n; j++) {
			r = splitmix(&s);
			v = r | 1;
			memcpy(p + (r >> 52) % (PAGE / 8) * 8, &v, 8);
		}
		return;
	case KIND_DATA: {
		uint64_t base = 0x00007f0000000000ULL | ((splitmix(&s) & 0xffffff) << 12);

		for (o = 0; o < PAGE; o += 16) {
			uint64_t a, b;

			r = splitmix(&s);
			a = (r & 3) == 0 ? base + ((r >> 8) & 0xfff0) : (r >> 16) & 0x3f;
			b = ((r >> 40) & 7) == 0 ? (r >> 44) & 0xffff : 0;
			memcpy(p + o, &a, 8);
			memcpy(p + o + 8, &b, 8);
		}
		return;
	}
	case KIND_LOG:
		t = (unsigned int)(splitmix(&s) % 86400);
		while (o < PAGE) {
			n = log_line(line, sizeof(line), splitmix(&s), i, &t);
			n = n < 0 ? 0 : n >= (int)sizeof(line) ? (int)sizeof(line) - 1 : n;
			if (o + (size_t)n > PAGE)
				n = (int)(PAGE - o);
			memcpy(p + o, line, (size_t)n);
			o += (size_t)n;
		}
		return;
	default:
		for (j = 0; j < 8; j++)
			vw[j] = words[splitmix(&s) % NWORDS];
		while (o < PAGE) {
			n = text_line(line, sizeof(line), splitmix(&s), vw);
			n = n < 0 ? 0 : n >= (int)sizeof(line) ? (int)sizeof(line) - 1 : n;
			if (o + (size_t)n > PAGE)
				n = (int)(PAGE - o);
			memcpy(p + o, line, (size_t)n);
			o += (size_t)n;
		}
		return;
	}
}

static bool page_ok(const uint8_t *p, uint64_t i)
{
	uint8_t want[PAGE];

	fill_page(want, i);
	return !memcmp(p, want, PAGE);
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

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
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
};

struct bench {
	uint64_t npages;
	const char *dir;
	const char *json;
	bool peers;
	bool kernel_ra;
	uint64_t *order;		/* touch order, the same for every system */
	uint8_t *cls;			/* per page: enum cls, from ovc's page states */
	uint64_t *tmp;
	uint64_t kinds[KIND_NR];
	/* ovc */
	bool ovc_ran;
	char ovc_err[160];
	struct dist ovc_zip, ovc_disk;
	uint64_t ovc_reclaim_ns, ovc_bad, ovc_other;
	struct ovc_pager_stats ovc_ps;
	double ovc_service_p50_us, ovc_service_p99_us;
	/* kernel */
	char cg_root[PATH_MAX];
	int page_cluster;		/* in force for the peers */
	struct peer zswap, swap;
	char swaps_before[4096], swaps_after[4096];
};

static int read_str(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, buf, size - 1);
	close(fd);
	if (n < 0)
		return -errno;
	buf[n] = 0;
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		buf[--n] = 0;
	return 0;
}

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
		fill_page(mem + i * PAGE, i);

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
	t0 = now_ns();
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
	b->ovc_reclaim_ns = now_ns() - t0;
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
		a = now_ns();
		(void)*(volatile uint8_t *)(mem + g * PAGE);
		ns[g] = now_ns() - a;
	}
	ovc_vm_get_mem_stats(vm, &st1);
	b->ovc_service_p50_us = service_quantile_us(&st0, &st1, 0.5);
	b->ovc_service_p99_us = service_quantile_us(&st0, &st1, 0.99);
	for (i = 0; i < b->npages; i++)
		b->ovc_bad += !page_ok(mem + i * PAGE, i);
	{
		struct ovc_pager_stats after;

		/* The tier's size stays as reclaim left it; prefetch counts what the touches set off. */
		ovc_pager_get_stats(p, &after);
		b->ovc_ps.prefetched = after.prefetched;
	}
	dist_of(ns, major, b->cls, CLS_ZIP, b->npages, b->tmp, &b->ovc_zip);
	dist_of(ns, major, b->cls, CLS_DISK, b->npages, b->tmp, &b->ovc_disk);
	b->ovc_ran = true;
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
	if (getppid() != mstate.pid)
		_exit(1);
	default_handlers();
	sigfillset(&all);
	pthread_sigmask(SIG_UNBLOCK, &all, NULL);
	touch_stack();

	region = mmap(NULL, n * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (region == MAP_FAILED)
		FAIL("mmap: %s", strerror(errno));
	madvise(region, n * PAGE, MADV_NOHUGEPAGE);	/* 4 KiB pages, as ovc pages */
	pm = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	strf(path, sizeof(path), "%s/memory.force_empty", mstate.cg_path);
	fe = open(path, O_WRONLY | O_CLOEXEC);
	if (pm < 0 || fe < 0)
		FAIL("open pagemap / force_empty: %s", strerror(errno));
	strf(path, sizeof(path), "%s/cgroup.procs", mstate.cg_path);
	strf(pid, sizeof(pid), "%d", (int)getpid());
	if (write_str(path, pid))
		FAIL("join %s: %s", mstate.cg_path, strerror(errno));

	for (i = 0; i < n; i++)
		fill_page(region + i * PAGE, i);

	t0 = now_ns();
	for (tries = 0; tries < 5; tries++) {
		if (madvise(region, n * PAGE, MADV_PAGEOUT))
			FAIL("madvise(MADV_PAGEOUT): %s", strerror(errno));
		if (pagemap_count(pm, region, n, &sh->present, &sh->swapped))
			FAIL("pagemap: read failed");
		if (!sh->present)
			break;
	}
	sh->pageout_ns = now_ns() - t0;
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
		t0 = now_ns();
		(void)*(volatile uint8_t *)(region + g * PAGE);
		t1 = now_ns();
		getrusage(RUSAGE_THREAD, &r1);
		ns[g] = t1 - t0;
		major[g] = r1.ru_majflt != r0.ru_majflt;
	}
	for (i = 0; i < n; i++)
		sh->bad += !page_ok(region + i * PAGE, i);
	_exit(0);
}

static int vmstat_get(const char *key, int64_t *v)
{
	char line[128];
	size_t kl = strlen(key);
	FILE *f = fopen("/proc/vmstat", "re");

	*v = -1;
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		if (!strncmp(line, key, kl) && line[kl] == ' ') {
			*v = strtoll(line + kl + 1, NULL, 10);
			break;
		}
	}
	fclose(f);
	return *v < 0 ? -ENOENT : 0;
}

struct vmstat4 {
	int64_t zswpout, pswpout, zswpin, pswpin;
};

static void vmstat_read(struct vmstat4 *v)
{
	vmstat_get("zswpout", &v->zswpout);
	vmstat_get("pswpout", &v->pswpout);
	vmstat_get("zswpin", &v->zswpin);
	vmstat_get("pswpin", &v->pswpin);
}

/* Set a zswap parameter, remembering its first value. Return 0 or -errno. */
static int zswap_set(const char *name, const char *val, char *saved, size_t size, bool *changed)
{
	char path[128], cur[64];
	int ret;

	strf(path, sizeof(path), ZSWAP_DIR "%s", name);
	if ((ret = read_str(path, cur, sizeof(cur))))
		return ret;
	if (!strcmp(cur, val))
		return 0;
	crit_begin();
	if (!*changed) {
		strf(saved, size, "%s", cur);
		*changed = true;
	}
	ret = write_str(path, val);
	crit_end();
	return ret;
}

static void run_peer(struct bench *b, struct peer *pr, bool zswap)
{
	size_t size = shared_size(b->npages);
	struct vmstat4 v0, v1;
	struct shared *sh;
	int status, ret;
	pid_t pid;

	ret = zswap_set("enabled", zswap ? "Y" : "N", mstate.zswap_enabled0,
			sizeof(mstate.zswap_enabled0), &mstate.zswap_enabled_changed);
	if (ret) {
		strf(pr->skip, sizeof(pr->skip), "cannot set zswap enabled=%s: %s",
			 zswap ? "Y" : "N", strerror(-ret));
		return;
	}
	if (zswap)
		read_str(ZSWAP_DIR "compressor", pr->compressor, sizeof(pr->compressor));
	sh = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED) {
		strf(pr->skip, sizeof(pr->skip), "mmap: %s", strerror(errno));
		return;
	}
	memset(sh, 0, size);	/* charged here, before the worker joins its cgroup */
	vmstat_read(&v0);
	fflush(NULL);
	crit_begin();
	pid = fork();
	if (pid == 0)
		kernel_worker(b, sh);
	if (pid > 0)
		mstate.child = pid;
	crit_end();
	if (pid < 0) {
		strf(pr->skip, sizeof(pr->skip), "fork: %s", strerror(errno));
		goto out;
	}
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	crit_begin();
	mstate.child = 0;
	crit_end();
	vmstat_read(&v1);
	/* zswap only as long as it is measured. */
	if (zswap) {
		crit_begin();
		if (mstate.zswap_enabled_changed &&
		    !write_str(ZSWAP_DIR "enabled", mstate.zswap_enabled0))
			mstate.zswap_enabled_changed = false;
		crit_end();
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
	munmap(sh, size);
}

/* The mount point of the cgroup v1 hierarchy with the memory controller. */
static int find_memcg(char *out, size_t size)
{
	char dev[256], dir[PATH_MAX], type[64], opts[512];
	FILE *f = fopen("/proc/mounts", "re");
	int found = 0;

	if (!f)
		return -errno;
	while (fscanf(f, "%255s %4095s %63s %511s %*d %*d", dev, dir, type, opts) == 4) {
		char *tok, *save = NULL;

		if (strcmp(type, "cgroup"))
			continue;
		for (tok = strtok_r(opts, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
			if (!strcmp(tok, "memory")) {
				strf(out, size, "%s", dir);
				found = 1;
			}
		}
		if (found)
			break;
	}
	fclose(f);
	return found ? 0 : -ENOENT;
}

/* Does the kernel's crypto API have algorithm @name loaded? */
static bool crypto_has(const char *name)
{
	FILE *f = fopen("/proc/crypto", "re");
	char line[256], want[128];
	bool found = false;

	if (!f)
		return false;
	strf(want, sizeof(want), ": %s\n", name);
	while (!found && fgets(line, sizeof(line), f))
		found = !strncmp(line, "name", 4) && strstr(line, want);
	fclose(f);
	return found;
}

/* A swap file of @pages pages with a version-1 header (what mkswap writes). */
static int make_swapfile(const char *path, uint64_t pages, bool zero_fill)
{
	static uint8_t hdr[PAGE] __attribute__((aligned(4096)));
	uint32_t info[3] = { 1, (uint32_t)(pages - 1), 0 };	/* version, last_page, nr_badpages */
	uint64_t off;
	int fd, ret = 0;

	/* Never an existing file: it could be someone's swap. */
	crit_begin();
	fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd >= 0)
		mstate.swap_created = true;
	crit_end();
	if (fd < 0)
		return -errno;
	memset(hdr, 0, sizeof(hdr));
	if (zero_fill) {
		/* No unwritten extents at all, for filesystems whose swapon wants that. */
		for (off = 0; off < pages * PAGE && !ret; off += PAGE)
			if (pwrite(fd, hdr, PAGE, (off_t)off) != (ssize_t)PAGE)
				ret = -EIO;
	} else if (fallocate(fd, 0, 0, (off_t)(pages * PAGE))) {
		ret = -errno;
	}
	memcpy(hdr + 1024, info, sizeof(info));
	memcpy(hdr + PAGE - 10, "SWAPSPACE2", 10);
	if (!ret && pwrite(fd, hdr, PAGE, 0) != (ssize_t)PAGE)
		ret = -EIO;
	if (!ret && fsync(fd))
		ret = -errno;
	close(fd);
	return ret;
}

static void run_peers(struct bench *b)
{
	uint64_t swap_pages = b->npages * 2 + 1024;
	char pc[16], cur[64];
	const char *why = NULL;
	struct statfs sf;
	int ret;

	if (geteuid() != 0)
		why = "not root";
	else if (access(ZSWAP_DIR "enabled", W_OK))
		why = "no zswap (/sys/module/zswap/parameters)";
	else if (find_memcg(b->cg_root, sizeof(b->cg_root)))
		why = "no cgroup v1 memory controller mounted";
	else if (statfs(b->dir, &sf))
		why = "cannot statfs --dir";
	else if (sf.f_type == 0x01021994 /* TMPFS_MAGIC */)
		why = "--dir is on tmpfs, which cannot hold a swap file";
	if (why)
		goto skip;

	/* Our swap file, preferred over any other swap (which we never touch). */
	strf(mstate.swap_path, sizeof(mstate.swap_path), "%s/ovc-bench-swap-%d", b->dir,
		 (int)getpid());
	ret = make_swapfile(mstate.swap_path, swap_pages, false);
	crit_begin();
	if (!ret && swapon(mstate.swap_path, SWAP_FLAG_PREFER | SWAP_FLAG_PRIO_MASK) == 0)
		mstate.swap_on = true;
	crit_end();
	if (!mstate.swap_on && !ret) {
		/* Some filesystems refuse unwritten extents: write every block, once. */
		crit_begin();
		if (!unlink(mstate.swap_path))
			mstate.swap_created = false;
		crit_end();
		ret = make_swapfile(mstate.swap_path, swap_pages, true);
		crit_begin();
		if (!ret && swapon(mstate.swap_path, SWAP_FLAG_PREFER | SWAP_FLAG_PRIO_MASK) == 0)
			mstate.swap_on = true;
		else if (!ret)
			ret = -errno;
		crit_end();
	}
	if (!mstate.swap_on) {
		strf(b->zswap.skip, sizeof(b->zswap.skip), "swapon %s: %s", mstate.swap_path,
			 strerror(-ret));
		strf(b->swap.skip, sizeof(b->swap.skip), "%s", b->zswap.skip);
		restore_main();
		return;
	}

	crit_begin();
	strf(mstate.cg_path, sizeof(mstate.cg_path), "%s/ovc-bench-%d", b->cg_root,
		 (int)getpid());
	ret = mkdir(mstate.cg_path, 0755) ? -errno : 0;
	mstate.cg_created = !ret;
	crit_end();
	if (ret) {
		strf(b->zswap.skip, sizeof(b->zswap.skip), "mkdir %s: %s", mstate.cg_path,
			 strerror(-ret));
		strf(b->swap.skip, sizeof(b->swap.skip), "%s", b->zswap.skip);
		restore_main();
		return;
	}

	/*
	 * ovc prefetches only on sequences and strides, which the random order
	 * never makes; the kernel's readahead would bring in neighbours that
	 * this benchmark (which touches every page) then finds for free. So
	 * both sides measure bare page-ins unless --kernel-readahead.
	 */
	b->page_cluster = -1;
	if (!read_str(PAGE_CLUSTER, cur, sizeof(cur))) {
		b->page_cluster = atoi(cur);
		if (!b->kernel_ra && b->page_cluster != 0) {
			crit_begin();
			strf(mstate.page_cluster0, sizeof(mstate.page_cluster0), "%s", cur);
			mstate.page_cluster_changed = true;
			strf(pc, sizeof(pc), "0");
			if (!write_str(PAGE_CLUSTER, pc))
				b->page_cluster = 0;
			crit_end();
		}
	}
	/* lz4 as ovc uses, when the kernel's crypto API has it (it loads no module here). */
	if (crypto_has("lz4")) {
		ret = zswap_set("compressor", "lz4", mstate.zswap_comp0, sizeof(mstate.zswap_comp0),
				&mstate.zswap_comp_changed);
		if (ret)
			fprintf(stderr, "pager-latency: zswap compressor lz4: %s\n", strerror(-ret));
	}

	run_peer(b, &b->zswap, true);
	run_peer(b, &b->swap, false);
	restore_main();
	return;
skip:
	strf(b->zswap.skip, sizeof(b->zswap.skip), "%s", why);
	strf(b->swap.skip, sizeof(b->swap.skip), "%s", why);
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

static void set_dist(json_t *m, const char *prefix, const struct dist *d, bool full)
{
	char key[128];

	if (!d->n)
		return;
	strf(key, sizeof(key), "%s.p50_us", prefix);
	json_object_set_new(m, key, json_real(d->p50_us));
	strf(key, sizeof(key), "%s.p99_us", prefix);
	json_object_set_new(m, key, json_real(d->p99_us));
	if (!full)
		return;
	strf(key, sizeof(key), "%s.p999_us", prefix);
	json_object_set_new(m, key, json_real(d->p999_us));
	strf(key, sizeof(key), "%s.pages", prefix);
	json_object_set_new(m, key, json_integer((json_int_t)d->n));
	if (d->major_pct >= 0) {
		strf(key, sizeof(key), "%s.major_pct", prefix);
		json_object_set_new(m, key, json_real(d->major_pct));
	}
}

static void set_peer(json_t *m, const struct peer *p)
{
	char key[128];

	if (!p->ran)
		return;
	/* Like for like: zswap over the pages ovc compressed, swap over those ovc sent to disk. */
	strf(key, sizeof(key), "%s.pagein", p->name);
	set_dist(m, key, p->zswap ? &p->zip : &p->disk, true);
	strf(key, sizeof(key), "%s.pagein_zipset", p->name);
	set_dist(m, key, &p->zip, true);
	strf(key, sizeof(key), "%s.pagein_diskset", p->name);
	set_dist(m, key, &p->disk, true);
	strf(key, sizeof(key), "%s.pagein_all", p->name);
	set_dist(m, key, &p->all, true);
	strf(key, sizeof(key), "%s.pageout_ms", p->name);
	json_object_set_new(m, key, json_real((double)p->pageout_ns / 1e6));
	strf(key, sizeof(key), "%s.zswpout_pages", p->name);
	json_object_set_new(m, key, json_integer(p->zswpout));
	strf(key, sizeof(key), "%s.pswpout_pages", p->name);
	json_object_set_new(m, key, json_integer(p->pswpout));
	strf(key, sizeof(key), "%s.zswpin_pages", p->name);
	json_object_set_new(m, key, json_integer(p->zswpin));
	strf(key, sizeof(key), "%s.pswpin_pages", p->name);
	json_object_set_new(m, key, json_integer(p->pswpin));
}

static int write_json(struct bench *b, bool ok)
{
	struct utsname un;
	json_t *out, *m, *r, *params, *mix;
	unsigned int k;
	int ret = 0;

	uname(&un);
	out = json_object();
	json_object_set_new(out, "scenario", json_string("pager-latency"));
	json_object_set_new(out, "machine", json_pack("{s:i, s:I, s:s}",
		"cpus", (int)sysconf(_SC_NPROCESSORS_ONLN),
		"memory", (json_int_t)sysconf(_SC_PHYS_PAGES) * sysconf(_SC_PAGESIZE),
		"kernel", un.release));
	mix = json_object();
	for (k = 0; k < KIND_NR; k++)
		json_object_set_new(mix, kind_names[k], json_integer((json_int_t)b->kinds[k]));
	params = json_pack("{s:I, s:s, s:s, s:i, s:s, s:o}",
		"pages", (json_int_t)b->npages, "dir", b->dir, "order", "random",
		"page_cluster", b->page_cluster,
		"zswap_compressor", b->zswap.compressor[0] ? b->zswap.compressor : "",
		"mix", mix);
	json_object_set_new(out, "params", params);

	m = json_object();
	if (b->ovc_ran) {
		set_dist(m, "ovc.pagein_zip", &b->ovc_zip, false);
		set_dist(m, "ovc.pagein_disk", &b->ovc_disk, false);
		json_object_set_new(m, "ovc.pagein_zip.p999_us", json_real(b->ovc_zip.p999_us));
		json_object_set_new(m, "ovc.pagein_disk.p999_us", json_real(b->ovc_disk.p999_us));
		json_object_set_new(m, "ovc.pagein_zip.pages", json_integer((json_int_t)b->ovc_zip.n));
		json_object_set_new(m, "ovc.pagein_disk.pages",
				    json_integer((json_int_t)b->ovc_disk.n));
		json_object_set_new(m, "ovc.fault_service.p50_us", json_real(b->ovc_service_p50_us));
		json_object_set_new(m, "ovc.fault_service.p99_us", json_real(b->ovc_service_p99_us));
		json_object_set_new(m, "ovc.reclaim_ms", json_real((double)b->ovc_reclaim_ns / 1e6));
		json_object_set_new(m, "ovc.zip_bytes", json_integer((json_int_t)b->ovc_ps.zip_bytes));
		json_object_set_new(m, "ovc.prefetched_pages",
				    json_integer((json_int_t)b->ovc_ps.prefetched));
		json_object_set_new(m, "ovc.pagein_zip.major_pct", json_real(b->ovc_zip.major_pct));
		json_object_set_new(m, "ovc.pagein_disk.major_pct", json_real(b->ovc_disk.major_pct));
	}
	set_peer(m, &b->zswap);
	set_peer(m, &b->swap);
	json_object_set_new(out, "metrics", m);

	r = json_object();
	if (b->ovc_ran && b->zswap.ran && b->zswap.zip.n && b->zswap.zip.p50_us > 0) {
		json_object_set_new(r, "pagein_zip_p50_vs_zswap",
				    json_real(b->ovc_zip.p50_us / b->zswap.zip.p50_us));
		json_object_set_new(r, "pagein_zip_p99_vs_zswap",
				    json_real(b->ovc_zip.p99_us / b->zswap.zip.p99_us));
	}
	if (b->ovc_ran && b->swap.ran && b->swap.disk.n && b->swap.disk.p50_us > 0) {
		json_object_set_new(r, "pagein_disk_p50_vs_swap",
				    json_real(b->ovc_disk.p50_us / b->swap.disk.p50_us));
		json_object_set_new(r, "pagein_disk_p99_vs_swap",
				    json_real(b->ovc_disk.p99_us / b->swap.disk.p99_us));
	}
	json_object_set_new(out, "ratios", r);
	json_object_set_new(out, "ok", json_boolean(ok));
	if (json_dump_file(out, b->json, JSON_INDENT(2))) {
		fprintf(stderr, "pager-latency: cannot write %s\n", b->json);
		ret = -1;
	}
	json_decref(out);
	return ret;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "pages", required_argument, NULL, 'p' },
		{ "dir", required_argument, NULL, 'd' },
		{ "json", required_argument, NULL, 'j' },
		{ "no-peers", no_argument, NULL, 'n' },
		{ "kernel-readahead", no_argument, NULL, 'r' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct bench b = {
		.npages = 16384, .dir = "/var/tmp", .peers = true, .page_cluster = -1,
		.zswap = { .name = "kernel_zswap", .zswap = true },
		.swap = { .name = "kernel_swap" },
	};
	uint64_t i, s = 0x5eed;
	struct utsname un;
	bool ok;
	int c;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'p':
			b.npages = strtoull(optarg, NULL, 0);
			break;
		case 'd':
			b.dir = optarg;
			break;
		case 'j':
			b.json = optarg;
			break;
		case 'n':
			b.peers = false;
			break;
		case 'r':
			b.kernel_ra = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (b.npages < 256 || b.npages > (1ULL << 22)) {
		fprintf(stderr, "pager-latency: --pages must be 256..4194304\n");
		return 2;
	}
	mstate.pid = getpid();
	mstate.main_tid = (pid_t)syscall(SYS_gettid);
	install_handlers();
	atexit(restore_main);
	read_str("/proc/swaps", b.swaps_before, sizeof(b.swaps_before));

	b.order = malloc(b.npages * sizeof(*b.order));
	b.cls = calloc(b.npages, 1);
	b.tmp = malloc(b.npages * sizeof(*b.tmp));
	if (!b.order || !b.cls || !b.tmp) {
		fprintf(stderr, "pager-latency: out of memory\n");
		return 1;
	}
	for (i = 0; i < b.npages; i++) {
		b.order[i] = i;
		b.kinds[page_kind(i)]++;
	}
	for (i = b.npages - 1; i > 0; i--) {
		uint64_t j = splitmix(&s) % (i + 1), t = b.order[i];

		b.order[i] = b.order[j];
		b.order[j] = t;
	}

	if (run_ovc(&b))
		fprintf(stderr, "pager-latency: ovc: %s\n", b.ovc_err[0] ? b.ovc_err : "failed");
	if (!b.ovc_ran) {
		/* Nothing to split the kernel's figures by: use the content. */
		for (i = 0; i < b.npages; i++)
			b.cls[i] = page_kind(i) == KIND_RANDOM ? CLS_DISK : CLS_ZIP;
	}
	if (b.peers) {
		run_peers(&b);
	} else {
		strf(b.zswap.skip, sizeof(b.zswap.skip), "--no-peers");
		strf(b.swap.skip, sizeof(b.swap.skip), "--no-peers");
	}
	restore_main();
	read_str("/proc/swaps", b.swaps_after, sizeof(b.swaps_after));

	uname(&un);
	printf("pager-latency: %" PRIu64 " pages (text %" PRIu64 ", log %" PRIu64 ", data %" PRIu64
	       ", sparse %" PRIu64 ", random %" PRIu64 "), dir %s, kernel %s, %ld cpus\n",
	       b.npages, b.kinds[KIND_TEXT], b.kinds[KIND_LOG], b.kinds[KIND_DATA],
	       b.kinds[KIND_SPARSE], b.kinds[KIND_RANDOM], b.dir, un.release,
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
	if (mstate.zswap_enabled_changed || mstate.zswap_comp_changed ||
	    mstate.page_cluster_changed || mstate.swap_on || mstate.swap_created ||
	    mstate.cg_created)
		printf("pager-latency: could not restore everything (see above)\n");

	ok = b.ovc_ran && !b.ovc_bad && b.zswap.ran && b.swap.ran;
	if (b.json && write_json(&b, ok))
		return 1;
	free(b.order);
	free(b.cls);
	free(b.tmp);
	return b.ovc_ran && !b.ovc_bad ? 0 : 1;
}

// SPDX-License-Identifier: MIT
/* bench/scn-pager-throughput.c: sustained paging throughput of ovc's pager vs kernel swap and zswap, same memory limit, same content. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <ovc/ovc.h>

#include "content.h"
#include "harness.h"
#include "scenarios.h"

#define PAGE OVC_PAGE_SIZE
#define MiB (1ULL << 20)
#define ZSWAP_DIR OVCB_ZSWAP_DIR
#define MAX_WINDOWS 600

const char ovcb_scn_pager_throughput_help[] =
"sustained page-out+page-in throughput of ovc's pager vs kernel swap and zswap\n"
"options: [--mib L] [--ws-ratio R] [--write-pct W] [--dir DIR] [--no-peers]\n"
"Gives each system L MiB of RAM (default 128) for a working set R times\n"
"larger (default 1.5) of the same mixed content (text, logs, records,\n"
"sparse, random pages), then touches it --seconds (default 10) sequentially\n"
"(cyclic: every touch misses) and as long uniformly at random, W% (default\n"
"50) of touches writing, and verifies every page after. Reported per\n"
"pattern: the median over 1 s windows of the working-set bytes touched per\n"
"second (access_mb_per_s), and the pages moved in and out per second\n"
"(paging_mb_per_s).\n"
"  ovc           a VM's RAM with the pager (compressed tier of L/4, swap file\n"
"                in DIR, default /var/tmp); a thread keeps resident memory plus\n"
"                the tier within L by calling ovc_pager_reclaim()\n"
"  kernel_zswap  an anonymous mapping in a cgroup v1 memory cgroup limited to\n"
"                L, swap file in DIR, zswap on (lz4 where loaded)\n"
"  kernel_swap   the same with zswap off\n"
"The kernel peers need root; every setting they change (zswap, swapon, the\n"
"cgroup) is put back, also on Ctrl-C. --no-peers measures ovc only.\n";

enum { PAT_SEQ, PAT_RAND, PAT_NR };
static const char *const pat_names[PAT_NR] = { "seq", "rand" };

struct phase {
	double mbps[MAX_WINDOWS];	/* working-set MB touched per second, per window */
	unsigned int nw;
	uint64_t accesses, ns;
	uint64_t in_pages, out_pages;
	double throttled_pct;		/* ovc: time waiting for reclaim, -1: n/a */
};

/* One system's results; lives in a shared mapping for a kernel worker. */
struct sys {
	const char *name;
	bool ran;
	char skip[160];
	struct phase ph[PAT_NR];
	double fill_s;
	uint64_t bad;
	uint64_t used_max;		/* bytes: ovc resident + tier; kernel memory.max_usage */
	unsigned int attempts;		/* kernel: runs started (OOM kills are retried) */
	volatile int stage;		/* kernel worker: 0 fill, 1 seq, 2 rand, 3 verify */
	char msg[160];
};

static const char *const stage_names[] = { "fill", "seq", "rand", "verify" };

struct tp {
	struct ovcb *ob;
	uint64_t limit;			/* bytes */
	uint64_t npages;		/* working set */
	unsigned int seconds;
	unsigned int write_pct;
	const char *dir;
	bool peers;
	pid_t pid;
	char cg_path[PATH_MAX];
	struct sys ovc, zswap, swap;
	char compressor[64];
};

/* Paging counters of one system: pages brought in, pages sent out. */
typedef void (*counters_fn)(void *arg, uint64_t *in, uint64_t *out);

static OVC_PRINTF(3, 4) void strf(char *buf, size_t size, const char *f, ...)
{
	va_list ap;

	va_start(ap, f);
	vsnprintf(buf, size, f, ap);
	va_end(ap);
}

/*
 * Touch pages for @seconds in 1 s windows. Every touch reads a word of the
 * page and, for @write_pct of them, writes the same value back (the page is
 * dirty, its contents unchanged, so it can be verified after).
 * @cnt, @arg: the system's paging counters, and @throttle's argument
 * @throttle: called every 64 touches (NULL: none)
 * @stop: polled once per window (NULL: never). Return: 0 or -EINTR.
 */
static int run_phase(uint8_t *mem, uint64_t npages, int pat, unsigned int write_pct,
		     unsigned int seconds, struct phase *ph, counters_fn cnt, void *arg,
		     void (*throttle)(void *), bool (*stop)(void *), void *stop_arg)
{
	uint64_t rng = 0x7468726f75676870ULL ^ (uint64_t)pat, pos = 0, in0, out0, in1, out1;
	uint64_t t_start = ovcb_now_ns(), t_end = t_start + (uint64_t)seconds * 1000000000ULL;
	uint64_t w_start = t_start, w_n = 0, now;

	memset(ph, 0, sizeof(*ph));
	cnt(arg, &in0, &out0);
	for (;;) {
		unsigned int k;

		for (k = 0; k < 64; k++) {
			uint64_t r = ovcb_splitmix(&rng), g;
			volatile uint64_t *w;
			uint64_t v;

			if (pat == PAT_SEQ) {
				g = pos;
				pos = pos + 1 == npages ? 0 : pos + 1;
			} else {
				g = r % npages;
			}
			w = (volatile uint64_t *)(mem + g * PAGE + ((r >> 40) % (PAGE / 8)) * 8);
			v = *w;
			if ((r >> 32) % 100 < write_pct)
				*w = v;
		}
		w_n += 64;
		if (throttle)
			throttle(arg);
		now = ovcb_now_ns();
		if (now - w_start >= 1000000000ULL || now >= t_end) {
			if (ph->nw < MAX_WINDOWS && now > w_start)
				ph->mbps[ph->nw++] = (double)w_n * PAGE / 1e6 /
					((double)(now - w_start) / 1e9);
			ph->accesses += w_n;
			w_n = 0;
			w_start = now;
			if (now >= t_end)
				break;
			if (stop && stop(stop_arg))
				return -EINTR;
		}
	}
	ph->ns = ovcb_now_ns() - t_start;
	cnt(arg, &in1, &out1);
	ph->in_pages = in1 - in0;
	ph->out_pages = out1 - out0;
	return 0;
}

/* ---- ovc ---- */

struct keeper {
	struct ovc_vm *vm;
	struct ovc_pager *p;
	uint64_t limit_pages;
	atomic_bool quit;
	atomic_bool measure;		/* the patterns run: track the peak */
	uint64_t used_max;		/* bytes, read after join */
	uint64_t errors;
};

static uint64_t ovc_used(struct ovc_vm *vm, struct ovc_pager *p)
{
	struct ovc_mem_stats st;
	struct ovc_pager_stats ps;

	ovc_vm_get_mem_stats(vm, &st);
	ovc_pager_get_stats(p, &ps);
	return st.pages[OVC_PAGE_RESIDENT] * PAGE + ps.zip_bytes;
}

/*
 * Keep the VM's resident pages plus the compressed tier's bytes within the
 * limit: the memory the host gives this VM, as a memory cgroup's limit does
 * for the kernel's peers. Reclaims down to a little below the limit so that
 * faults arriving meanwhile do not cross it at once.
 */
static void *keeper_main(void *arg)
{
	struct keeper *k = arg;
	uint64_t headroom = 256;	/* pages: 1 MiB */
	struct timespec nap = { 0, 50000 };

	while (!atomic_load(&k->quit)) {
		struct ovc_pager_result res;
		uint64_t used = ovc_used(k->vm, k->p);

		if (atomic_load(&k->measure) && used > k->used_max)
			k->used_max = used;
		if (used + headroom / 2 * PAGE > k->limit_pages * PAGE) {
			/* In small steps: the peak is sampled between them. */
			uint64_t want = (used - k->limit_pages * PAGE) / PAGE + headroom;

			if (want > 512)
				want = 512;
			int64_t got = ovc_pager_reclaim(k->p, want, &res);

			if (got < 0 || res.errors)
				k->errors++;
			if (got > 0)
				continue;
		}
		nanosleep(&nap, NULL);
	}
	return NULL;
}

struct ovc_cnt {
	struct ovc_vm *vm;
	struct ovc_pager *p;
	struct keeper *k;
	uint64_t throttled_ns;		/* the workload waited for reclaim */
};

/*
 * Over the limit, the workload waits for the keeper, as a task over its
 * memory cgroup's limit waits in direct reclaim: so the limit binds ovc as
 * firmly as it binds the kernel's peers (the time waited counts).
 */
static void ovc_throttle(void *arg)
{
	struct ovc_cnt *c = arg;
	struct timespec nap = { 0, 20000 };
	uint64_t t0 = 0;

	while (ovc_used(c->vm, c->p) > c->k->limit_pages * PAGE && !atomic_load(&c->k->quit)) {
		if (!t0)
			t0 = ovcb_now_ns();
		nanosleep(&nap, NULL);
	}
	if (t0)
		c->throttled_ns += ovcb_now_ns() - t0;
}

static void ovc_counters(void *arg, uint64_t *in, uint64_t *out)
{
	struct ovc_cnt *c = arg;
	struct ovc_mem_stats st;
	struct ovc_pager_stats ps;

	ovc_vm_get_mem_stats(c->vm, &st);
	ovc_pager_get_stats(c->p, &ps);
	*in = st.faults[OVC_FAULT_STORE] + ps.prefetched;
	*out = ps.compressed + ps.swapped;
}

static bool ovc_stop(void *arg)
{
	return ovcb_stopping(arg);
}

static int run_ovc(struct tp *t)
{
	struct ovc_host_config hc;
	struct ovc_pager_config pc;
	struct keeper k = { .limit_pages = t->limit / PAGE };
	struct ovc_cnt cnt;
	struct ovc_host *host;
	struct ovc_vm *vm;
	pthread_t th;
	bool started = false;
	uint64_t i, t0;
	uint8_t *mem;
	void *hva;
	int ret = 0, pat;

	ovc_host_config_init(&hc);
	hc.log_level = OVC_LOG_WARN;
	host = ovc_host_new(&hc);
	if (!host) {
		strf(t->ovc.skip, sizeof(t->ovc.skip), "ovc_host_new: %s", strerror(errno));
		return 0;
	}
	vm = ovc_vm_new(host, "pager-throughput");
	if (!vm || (ret = ovc_vm_add_ram(vm, 0, t->npages * PAGE, &hva))) {
		strf(t->ovc.skip, sizeof(t->ovc.skip), "VM: %s", strerror(vm ? -ret : errno));
		ret = 0;
		goto out_host;
	}
	mem = hva;
	ovc_pager_config_init(&pc);
	pc.zip_cap_bytes = t->limit / 4;
	pc.swap_dir = t->dir;
	pc.swap_bytes = t->npages * PAGE + 16 * MiB;
	k.p = ovc_vm_add_pager(vm, &pc);
	if (!k.p) {
		strf(t->ovc.skip, sizeof(t->ovc.skip), "ovc_vm_add_pager(dir %s): %s", t->dir,
		     strerror(errno));
		goto out_vm;
	}
	k.vm = vm;
	cnt.vm = vm;
	cnt.p = k.p;
	cnt.k = &k;
	if ((ret = pthread_create(&th, NULL, keeper_main, &k))) {
		strf(t->ovc.skip, sizeof(t->ovc.skip), "pthread_create: %s", strerror(ret));
		ret = 0;
		goto out_vm;
	}
	started = true;

	t0 = ovcb_now_ns();
	for (i = 0; i < t->npages; i++) {
		ovcb_fill_page(mem + i * PAGE, i);
		if (!(i & 4095) && ovcb_stopping(t->ob)) {
			ret = -EINTR;
			goto out_keeper;
		}
	}
	t->ovc.fill_s = (double)(ovcb_now_ns() - t0) / 1e9;
	/* The fill outruns reclaim: start from within the limit, as the kernel does. */
	while (ovc_used(vm, k.p) > t->limit) {
		if ((ret = ovcb_sleep_ms(t->ob, 10)))
			goto out_keeper;
	}
	atomic_store(&k.measure, true);
	for (pat = 0; pat < PAT_NR; pat++) {
		cnt.throttled_ns = 0;
		ret = run_phase(mem, t->npages, pat, t->write_pct, t->seconds, &t->ovc.ph[pat],
				ovc_counters, &cnt, ovc_throttle, ovc_stop, t->ob);
		if (ret)
			goto out_keeper;
		t->ovc.ph[pat].throttled_pct = 100.0 * (double)cnt.throttled_ns /
			(double)t->ovc.ph[pat].ns;
	}
	atomic_store(&k.measure, false);
	for (i = 0; i < t->npages; i++)
		t->ovc.bad += !ovcb_page_ok(mem + i * PAGE, i);
out_keeper:
	atomic_store(&k.quit, true);
	if (started)
		pthread_join(th, NULL);
	t->ovc.used_max = k.used_max;
	if (!ret) {
		if (t->ovc.bad)
			strf(t->ovc.skip, sizeof(t->ovc.skip), "%" PRIu64 " pages came back wrong",
			     t->ovc.bad);
		else if (k.errors)
			strf(t->ovc.skip, sizeof(t->ovc.skip), "%" PRIu64 " reclaims failed",
			     k.errors);
		else
			t->ovc.ran = true;
	}
out_vm:
	if (ovc_vm_destroy(vm)) {
		fprintf(stderr, "pager-throughput: ovc_vm_destroy failed\n");
		t->ovc.ran = false;
	}
out_host:
	if (ovc_host_destroy(host)) {
		fprintf(stderr, "pager-throughput: ovc_host_destroy failed\n");
		t->ovc.ran = false;
	}
	return ret;
}

/* ---- the kernel ---- */

static void kernel_counters(void *arg, uint64_t *in, uint64_t *out)
{
	int64_t pi = ovcb_vmstat("pswpin"), zi = ovcb_vmstat("zswpin");
	int64_t po = ovcb_vmstat("pswpout"), zo = ovcb_vmstat("zswpout");

	*in = (uint64_t)(pi > 0 ? pi : 0) + (uint64_t)(zi > 0 ? zi : 0);
	*out = (uint64_t)(po > 0 ? po : 0) + (uint64_t)(zo > 0 ? zo : 0);
}

#define FAIL(...) do { strf(sh->msg, sizeof(sh->msg), __VA_ARGS__); _exit(1); } while (0)

/* The worker: joins the limited cgroup, fills, runs both patterns, verifies. Never returns. */
static void __attribute__((noreturn)) kernel_worker(struct tp *t, struct sys *sh)
{
	char path[PATH_MAX], pid[32];
	uint8_t *region;
	uint64_t i, t0;
	sigset_t all;
	int pat, s;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != t->pid)
		_exit(1);
	for (s = 1; s < NSIG; s++)
		if (s != SIGKILL && s != SIGSTOP)
			signal(s, SIG_DFL);
	sigfillset(&all);
	pthread_sigmask(SIG_UNBLOCK, &all, NULL);

	region = mmap(NULL, t->npages * PAGE, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (region == MAP_FAILED)
		FAIL("mmap: %s", strerror(errno));
	madvise(region, t->npages * PAGE, MADV_NOHUGEPAGE);	/* 4 KiB pages, as ovc pages */
	strf(path, sizeof(path), "%s/cgroup.procs", t->cg_path);
	strf(pid, sizeof(pid), "%d", (int)getpid());
	if (ovcb_write_str(path, pid))
		FAIL("join %s: %s", t->cg_path, strerror(errno));

	t0 = ovcb_now_ns();
	for (i = 0; i < t->npages; i++)
		ovcb_fill_page(region + i * PAGE, i);
	sh->fill_s = (double)(ovcb_now_ns() - t0) / 1e9;
	for (pat = 0; pat < PAT_NR; pat++) {
		sh->stage = 1 + pat;
		run_phase(region, t->npages, pat, t->write_pct, t->seconds, &sh->ph[pat],
			  kernel_counters, NULL, NULL, NULL, NULL);
	}
	sh->stage = 3;
	for (i = 0; i < t->npages; i++)
		sh->bad += !ovcb_page_ok(region + i * PAGE, i);
	_exit(0);
}

/* One kernel peer. Return: 0, or -EINTR on a stop (other failures go to @pr->skip). */
static int run_peer(struct tp *t, struct sys *pr, bool zswap)
{
	unsigned int mark = ovcb_restore_mark(t->ob);
	char path[PATH_MAX], val[64];
	struct sys *sh;
	int status, ret;
	pid_t pid;

	ret = ovcb_setting_write(t->ob, ZSWAP_DIR "enabled", zswap ? "Y" : "N");
	if (ret) {
		strf(pr->skip, sizeof(pr->skip), "zswap enabled=%s: %s", zswap ? "Y" : "N",
		     strerror(-ret));
		return 0;
	}
	/*
	 * zswap's pool is charged to the cgroup: without writeback to the swap
	 * file it fills the limit and the worker is OOM-killed. ovc's tier
	 * likewise moves its oldest pages to its swap file when full.
	 */
	if (zswap && !access(ZSWAP_DIR "shrinker_enabled", W_OK)) {
		ret = ovcb_setting_write(t->ob, ZSWAP_DIR "shrinker_enabled", "Y");
		if (ret)
			fprintf(stderr, "pager-throughput: zswap shrinker_enabled: %s\n",
				strerror(-ret));
	}
	/* A fresh cgroup per peer: its peak usage is this peer's. */
	ret = ovcb_cgroup_new(t->ob, "memory", zswap ? "ovc-bench-zswap" : "ovc-bench-swap",
			      t->cg_path, sizeof(t->cg_path));
	if (!ret) {
		strf(path, sizeof(path), "%s/memory.limit_in_bytes", t->cg_path);
		strf(val, sizeof(val), "%" PRIu64, t->limit);
		ret = ovcb_write_str(path, val);
	}
	if (!ret) {
		strf(path, sizeof(path), "%s/memory.swappiness", t->cg_path);
		ret = ovcb_write_str(path, "60");
	}
	if (ret) {
		strf(pr->skip, sizeof(pr->skip), "memory cgroup: %s", strerror(-ret));
		ovcb_restore_to(t->ob, mark);
		return 0;
	}
	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED) {
		strf(pr->skip, sizeof(pr->skip), "mmap: %s", strerror(errno));
		ovcb_restore_to(t->ob, mark);
		return 0;
	}
	/*
	 * A cgroup v1 memory limit may OOM-kill a task that swaps this hard
	 * (reclaim makes no progress while its swap-outs are in flight): the
	 * run is then tried again, up to three times, and the kills are said.
	 */
	for (pr->attempts = 1; ; pr->attempts++) {
		memset(sh, 0, sizeof(*sh));
		fflush(NULL);
		pid = fork();
		if (pid == 0)
			kernel_worker(t, sh);
		if (pid < 0 || ovcb_child_track(t->ob, pid)) {
			strf(pr->skip, sizeof(pr->skip), "fork: %s",
			     pid < 0 ? strerror(errno) : "no room");
			if (pid > 0) {
				kill(pid, SIGKILL);
				waitpid(pid, NULL, 0);
			}
			ret = 0;
			goto out;
		}
		ret = ovcb_waitpid(t->ob, pid, &status);
		ovcb_child_untrack(t->ob, pid);
		if (ret) {
			strf(pr->skip, sizeof(pr->skip), "%s", strerror(-ret));
			goto out;
		}
		if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL || pr->attempts == 3)
			break;
		fprintf(stderr, "pager-throughput: %s: killed during %s (memory cgroup OOM?);"
			" again\n", pr->name, stage_names[sh->stage & 3]);
		/* A fresh peak for the next attempt. */
		strf(path, sizeof(path), "%s/memory.max_usage_in_bytes", t->cg_path);
		ovcb_write_str(path, "0");
	}
	strf(path, sizeof(path), "%s/memory.max_usage_in_bytes", t->cg_path);
	if (!ovcb_read_str(path, val, sizeof(val)))
		pr->used_max = strtoull(val, NULL, 10);
	if (!WIFEXITED(status) || WEXITSTATUS(status)) {
		strf(pr->skip, sizeof(pr->skip), "worker failed during %s (%u attempts): %s",
		     stage_names[sh->stage & 3], pr->attempts,
		     sh->msg[0] ? sh->msg : WIFSIGNALED(status) ? strsignal(WTERMSIG(status)) :
		     "exit status");
		goto out;
	}
	memcpy(pr->ph, sh->ph, sizeof(pr->ph));
	pr->fill_s = sh->fill_s;
	pr->bad = sh->bad;
	if (pr->bad)
		strf(pr->skip, sizeof(pr->skip), "%" PRIu64 " pages came back wrong", pr->bad);
	else
		pr->ran = true;
out:
	munmap(sh, sizeof(*sh));
	ovcb_restore_to(t->ob, mark);
	return ret == -EINTR ? ret : 0;
}

static int run_peers(struct tp *t)
{
	unsigned int mark = ovcb_restore_mark(t->ob);
	char swap_path[PATH_MAX], root[PATH_MAX];
	const char *why;
	int ret;

	why = ovcb_swap_peer_missing(root, sizeof(root));
	if (why) {
		strf(t->zswap.skip, sizeof(t->zswap.skip), "%s", why);
		strf(t->swap.skip, sizeof(t->swap.skip), "%s", why);
		return 0;
	}
	/* Room for the whole working set twice over, preferred over any other swap. */
	ret = ovcb_swapfile_on(t->ob, t->dir, t->npages * 2 + 1024, swap_path, sizeof(swap_path));
	if (ret) {
		strf(t->zswap.skip, sizeof(t->zswap.skip), "swap file in %s: %s", t->dir,
		     strerror(-ret));
		strf(t->swap.skip, sizeof(t->swap.skip), "%s", t->zswap.skip);
		ovcb_restore_to(t->ob, mark);
		return 0;
	}
	/* lz4 as ovc uses, when the kernel's crypto API has it loaded. */
	if (ovcb_crypto_has("lz4") && ovcb_setting_write(t->ob, ZSWAP_DIR "compressor", "lz4"))
		fprintf(stderr, "pager-throughput: could not set zswap's compressor to lz4\n");
	ovcb_read_str(ZSWAP_DIR "compressor", t->compressor, sizeof(t->compressor));
	ret = run_peer(t, &t->zswap, true);
	if (!ret)
		ret = run_peer(t, &t->swap, false);
	ovcb_restore_to(t->ob, mark);
	return ret;
}

/* ---- output ---- */

static double phase_median(const struct phase *ph)
{
	double v[MAX_WINDOWS];

	memcpy(v, ph->mbps, ph->nw * sizeof(double));
	return ovcb_median(v, ph->nw);
}

static double paging_mbps(const struct phase *ph)
{
	if (!ph->ns)
		return NAN;
	return (double)(ph->in_pages + ph->out_pages) * PAGE / 1e6 / ((double)ph->ns / 1e9);
}

static void print_sys(const struct sys *s)
{
	int pat;

	if (!s->ran) {
		printf("%-13s not counted: %s\n", s->name, s->skip);
		return;
	}
	for (pat = 0; pat < PAT_NR; pat++) {
		const struct phase *ph = &s->ph[pat];

		printf("%-13s %-5s %10.1f %10.1f %10" PRIu64 " %10" PRIu64 " %8.2f %9.1f\n",
		       s->name, pat_names[pat], phase_median(ph), paging_mbps(ph), ph->in_pages,
		       ph->out_pages, s->fill_s, (double)s->used_max / MiB);
	}
}

static void report(struct tp *t)
{
	const struct sys *all[] = { &t->ovc, &t->zswap, &t->swap };
	struct ovcb *ob = t->ob;
	unsigned int i;
	int pat;

	ovcb_param_int(ob, "limit_mib", (int64_t)(t->limit / MiB));
	ovcb_param_int(ob, "working_set_mib", (int64_t)(t->npages * PAGE / MiB));
	ovcb_param_int(ob, "phase_seconds", t->seconds);
	ovcb_param_int(ob, "write_pct", t->write_pct);
	ovcb_param_str(ob, "dir", t->dir);
	ovcb_param_int(ob, "ovc_zip_cap_mib", (int64_t)(t->limit / 4 / MiB));
	ovcb_param_str(ob, "zswap_compressor", t->compressor);

	for (i = 0; i < 3; i++) {
		const struct sys *s = all[i];

		if (!s->ran)
			continue;
		for (pat = 0; pat < PAT_NR; pat++) {
			const struct phase *ph = &s->ph[pat];

			ovcb_metricf(ob, phase_median(ph), "%s.%s.access_mb_per_s", s->name,
				     pat_names[pat]);
			ovcb_metricf(ob, paging_mbps(ph), "%s.%s.paging_mb_per_s", s->name,
				     pat_names[pat]);
			ovcb_metricf(ob, (double)ph->in_pages, "%s.%s.pagein_pages", s->name,
				     pat_names[pat]);
			ovcb_metricf(ob, (double)ph->out_pages, "%s.%s.pageout_pages", s->name,
				     pat_names[pat]);
			if (s == &t->ovc)
				ovcb_metricf(ob, ph->throttled_pct, "%s.%s.throttled_pct", s->name,
					     pat_names[pat]);
		}
		ovcb_metricf(ob, s->fill_s, "%s.fill_s", s->name);
		ovcb_metricf(ob, (double)s->used_max / MiB, "%s.used_max_mib", s->name);
		if (s->attempts)
			ovcb_metricf(ob, (double)s->attempts, "%s.attempts_count", s->name);
	}
	for (pat = 0; pat < PAT_NR && t->ovc.ran; pat++) {
		const struct phase *o = &t->ovc.ph[pat];
		char name[64];

		if (t->swap.ran) {
			strf(name, sizeof(name), "%s_access_vs_swap", pat_names[pat]);
			ovcb_ratio(ob, name, phase_median(o), phase_median(&t->swap.ph[pat]));
			strf(name, sizeof(name), "%s_paging_vs_swap", pat_names[pat]);
			ovcb_ratio(ob, name, paging_mbps(o), paging_mbps(&t->swap.ph[pat]));
		}
		if (t->zswap.ran) {
			strf(name, sizeof(name), "%s_access_vs_zswap", pat_names[pat]);
			ovcb_ratio(ob, name, phase_median(o), phase_median(&t->zswap.ph[pat]));
			strf(name, sizeof(name), "%s_paging_vs_zswap", pat_names[pat]);
			ovcb_ratio(ob, name, paging_mbps(o), paging_mbps(&t->zswap.ph[pat]));
		}
	}
	ovcb_set_ok(ob, t->ovc.ran && t->zswap.ran && t->swap.ran);
}

static void plot(struct tp *t)
{
	const struct sys *all[] = { &t->ovc, &t->zswap, &t->swap };
	static const char *const groups[PAT_NR] = { "sequential", "random" };
	double med[3][PAT_NR], ts[3][MAX_WINDOWS], tt[MAX_WINDOWS];
	struct ovcb_series s[3];
	unsigned int i, n = 0, w, nw = 0;
	int pat;

	for (i = 0; i < 3; i++) {
		if (!all[i]->ran)
			continue;
		for (pat = 0; pat < PAT_NR; pat++)
			med[n][pat] = phase_median(&all[i]->ph[pat]);
		s[n] = (struct ovcb_series){ all[i]->name, med[n], PAT_NR };
		n++;
	}
	ovcb_plot_bars(t->ob, NULL, "working-set MB/s touched at 1.5x the memory limit (median of 1 s windows)",
		       "MB/s", groups, PAT_NR, s, n);
	for (pat = 0; pat < PAT_NR; pat++) {
		char suffix[16], title[128];

		n = 0;
		nw = 0;
		for (i = 0; i < 3; i++)
			if (all[i]->ran && all[i]->ph[pat].nw > nw)
				nw = all[i]->ph[pat].nw;
		for (w = 0; w < nw; w++)
			tt[w] = w + 1;
		for (i = 0; i < 3; i++) {
			if (!all[i]->ran)
				continue;
			for (w = 0; w < nw; w++)
				ts[n][w] = w < all[i]->ph[pat].nw ? all[i]->ph[pat].mbps[w] : NAN;
			s[n] = (struct ovcb_series){ all[i]->name, ts[n], nw };
			n++;
		}
		strf(suffix, sizeof(suffix), "%s", pat_names[pat]);
		strf(title, sizeof(title), "%s touches: working-set MB/s per second", groups[pat]);
		ovcb_plot_timeseries(t->ob, suffix, title, "MB/s", tt, nw, s, n, false);
	}
}

int ovcb_scn_pager_throughput(struct ovcb *ob, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "mib", required_argument, NULL, 'm' },
		{ "ws-ratio", required_argument, NULL, 'r' },
		{ "write-pct", required_argument, NULL, 'w' },
		{ "dir", required_argument, NULL, 'd' },
		{ "no-peers", no_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct tp *t = calloc(1, sizeof(*t));
	unsigned long mib = 128, wp;
	double ratio = 1.5;
	int c, ret = 0;

	if (!t)
		return -ENOMEM;
	t->ob = ob;
	t->write_pct = 50;
	t->dir = "/var/tmp";
	t->peers = true;
	t->ovc.name = "ovc";
	t->zswap.name = "kernel_zswap";
	t->swap.name = "kernel_swap";
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'm':
			mib = strtoul(optarg, NULL, 0);
			break;
		case 'r':
			ratio = strtod(optarg, NULL);
			break;
		case 'w':
			wp = strtoul(optarg, NULL, 0);
			t->write_pct = wp > 100 ? 101 : (unsigned int)wp;
			break;
		case 'd':
			t->dir = optarg;
			break;
		case 'n':
			t->peers = false;
			break;
		case 'h':
			printf("%s", ovcb_scn_pager_throughput_help);
			free(t);
			return 0;
		default:
			free(t);
			return 2;
		}
	}
	if (mib < 8 || mib > 65536 || !(ratio >= 1.0 && ratio <= 8.0) || t->write_pct > 100) {
		fprintf(stderr, "pager-throughput: --mib 8..65536, --ws-ratio 1..8, --write-pct 0..100\n");
		free(t);
		return 2;
	}
	t->limit = mib * MiB;
	t->npages = (uint64_t)((double)t->limit * ratio) / PAGE;
	t->seconds = ovcb_seconds(ob, 10);
	if (t->seconds > MAX_WINDOWS)
		t->seconds = MAX_WINDOWS;
	t->pid = getpid();
	/* The keeper and the throttle nap for tens of microseconds: no 50 us slack. */
	prctl(PR_SET_TIMERSLACK, 1UL);

	printf("pager-throughput: limit %lu MiB, working set %" PRIu64 " MiB, %u s per pattern,"
	       " %u%% writes, dir %s\n", mib, (uint64_t)(t->npages * PAGE / MiB), t->seconds, t->write_pct,
	       t->dir);
	fflush(stdout);
	ret = run_ovc(t);
	if (!ret && !t->ovc.ran)
		fprintf(stderr, "pager-throughput: ovc: %s\n", t->ovc.skip);
	if (!ret && t->peers)
		ret = run_peers(t);
	else if (!t->peers) {
		strf(t->zswap.skip, sizeof(t->zswap.skip), "--no-peers");
		strf(t->swap.skip, sizeof(t->swap.skip), "--no-peers");
	}
	if (ret)
		goto out;
	printf("\n%-13s %-5s %10s %10s %10s %10s %8s %9s\n", "system", "order", "access MB/s",
	       "paging MB/s", "pages in", "pages out", "fill s", "peak MiB");
	print_sys(&t->ovc);
	print_sys(&t->zswap);
	print_sys(&t->swap);
	report(t);
	plot(t);
	ret = t->ovc.ran ? 0 : -EIO;
out:
	free(t);
	return ret;
}

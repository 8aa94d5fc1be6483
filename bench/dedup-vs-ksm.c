// SPDX-License-Identifier: MIT
/* bench/dedup-vs-ksm.c: ovc page sharing on memfd RAM against Linux KSM on the same content. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <xxhash.h>

#include <ovc/ovc.h>

#define PAGE 4096UL
#define KSM "/sys/kernel/mm/ksm/"
#define MAX_VMS 16
#define MAX_SAMPLES 4096

/* The KSM settings this program changes, as found: restored on every exit path. */
static const char *const ksm_knobs[] = { "run", "pages_to_scan", "sleep_millisecs" };
#define NKNOBS (sizeof(ksm_knobs) / sizeof(ksm_knobs[0]))
static char ksm_saved[NKNOBS][64];
static bool ksm_touched;
static volatile sig_atomic_t interrupted;

struct opts {
	const char *corpus;
	unsigned int vms;
	uint64_t mib;
	double perturb, zero, unique;
	double seconds;
	unsigned int permille;
	uint64_t max_map_count;
	const char *json;
	bool no_ksm;
};

struct sample {
	double t;
	uint64_t saved;
};

struct phase {
	const char *name;
	uint64_t saved;			/* at the end */
	double t90;			/* seconds to 90% of achievable; -1 never */
	double cpu_s, wall_s;
	uint64_t scanned_pages;
	uint64_t vmas;
	struct sample s[MAX_SAMPLES];
	unsigned int ns;
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void on_signal(int sig)
{
	(void)sig;
	interrupted = 1;
}

static int read_str(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "r");

	if (!f)
		return -errno;
	if (!fgets(buf, (int)len, f)) {
		fclose(f);
		return -EIO;
	}
	fclose(f);
	buf[strcspn(buf, "\n")] = 0;
	return 0;
}

static int write_str(const char *path, const char *val)
{
	FILE *f = fopen(path, "w");
	int ret = 0;

	if (!f)
		return -errno;
	if (fprintf(f, "%s\n", val) < 0)
		ret = -EIO;
	if (fclose(f) && !ret)
		ret = -errno;
	return ret;
}

static uint64_t read_u64(const char *path)
{
	char buf[64];

	return read_str(path, buf, sizeof(buf)) ? 0 : strtoull(buf, NULL, 10);
}

static int ksm_set(const char *knob, const char *val)
{
	char path[128];

	snprintf(path, sizeof(path), KSM "%s", knob);
	return write_str(path, val);
}

static int ksm_save(void)
{
	char path[128];
	size_t i;
	int ret;

	for (i = 0; i < NKNOBS; i++) {
		snprintf(path, sizeof(path), KSM "%s", ksm_knobs[i]);
		ret = read_str(path, ksm_saved[i], sizeof(ksm_saved[i]));
		if (ret)
			return ret;
	}
	ksm_touched = true;
	return 0;
}

static void ksm_restore(void)
{
	size_t i;

	if (!ksm_touched)
		return;
	/* run last: the scan settings are back before ksmd runs with them. */
	for (i = NKNOBS; i-- > 0;) {
		size_t k = (i + 1) % NKNOBS;	/* pages_to_scan, sleep_millisecs, then run */

		if (ksm_set(ksm_knobs[k], ksm_saved[k]))
			fprintf(stderr, "dedup-vs-ksm: cannot restore %s%s to %s\n", KSM,
				ksm_knobs[k], ksm_saved[k]);
	}
	ksm_touched = false;
}

/*
 * Unmerge everything and drop stale tree nodes (run=2), so a phase starts
 * from zero counters; then stop ksmd (run=0).
 */
static void ksm_flush(void)
{
	int i;

	ksm_set("run", "2");
	for (i = 0; i < 100 && read_u64(KSM "pages_sharing") + read_u64(KSM "pages_shared"); i++)
		usleep(100000);
	ksm_set("run", "0");
}

/* ksmd's CPU time so far, in seconds (utime + stime of the kernel thread). */
static double ksmd_cpu_s(void)
{
	static char stat_path[64];
	char buf[1024], *p;
	unsigned long ut, st;
	FILE *f;

	if (!stat_path[0]) {
		DIR *d = opendir("/proc");
		struct dirent *de;

		while (d && (de = readdir(d))) {
			char path[512], comm[64];

			if (de->d_name[0] < '0' || de->d_name[0] > '9')
				continue;
			snprintf(path, sizeof(path), "/proc/%s/comm", de->d_name);
			if (!read_str(path, comm, sizeof(comm)) && !strcmp(comm, "ksmd")) {
				snprintf(stat_path, sizeof(stat_path), "/proc/%.32s/stat", de->d_name);
				break;
			}
		}
		if (d)
			closedir(d);
		if (!stat_path[0])
			return 0;
	}
	f = fopen(stat_path, "r");
	if (!f)
		return 0;
	if (!fgets(buf, sizeof(buf), f)) {
		fclose(f);
		return 0;
	}
	fclose(f);
	p = strrchr(buf, ')');
	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
		return 0;
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* ------------------------------------------------------------------------ */
/* Content */

struct corpus {
	uint8_t *data;
	uint64_t pages;
};

static void load_dir(const char *dir, struct corpus *c, uint64_t want, int depth)
{
	DIR *d;
	struct dirent *de;

	if (depth > 6 || c->pages >= want)
		return;
	d = opendir(dir);
	if (!d)
		return;
	while ((de = readdir(d)) && c->pages < want) {
		char path[4096];
		struct stat sb;
		int fd;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (lstat(path, &sb) < 0)
			continue;
		if (S_ISDIR(sb.st_mode)) {
			load_dir(path, c, want, depth + 1);
			continue;
		}
		if (!S_ISREG(sb.st_mode) || sb.st_size == 0)
			continue;
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		/* Files start on page boundaries, as they would in a guest's page cache. */
		while (c->pages < want) {
			ssize_t n = read(fd, c->data + c->pages * PAGE, PAGE);

			if (n <= 0)
				break;
			c->pages++;
		}
		close(fd);
	}
	closedir(d);
}

static uint64_t mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

/* VM @v's page @p: the corpus page, maybe perturbed for this VM, or zero, or unique. */
static void make_page(const struct opts *o, const struct corpus *c, unsigned int v, uint64_t p,
		      uint8_t *dst)
{
	double r = (double)(mix(p * 31 + 7) % 1000000) / 1e6;
	double q = (double)(mix(((uint64_t)v << 40) ^ p) % 1000000) / 1e6;
	uint64_t *w = (uint64_t *)dst;
	size_t i;

	if (r < o->zero) {
		memset(dst, 0, PAGE);
		return;
	}
	if (r < o->zero + o->unique) {
		for (i = 0; i < PAGE / 8; i++)
			w[i] = mix(((uint64_t)v << 48) ^ (p << 9) ^ i);
		return;
	}
	memcpy(dst, c->data + (p % c->pages) * PAGE, PAGE);
	if (q < o->perturb)
		w[mix(p) % (PAGE / 8)] ^= mix((uint64_t)v + 1) | 1;
}

/* Bytes an ideal sharer saves: every copy but one of each content; zero pages entirely (ovc). */
static uint64_t achievable(const struct opts *o, const struct corpus *c, uint64_t npages,
			   bool zero_free)
{
	uint64_t total = (uint64_t)o->vms * npages, cap = 1, distinct = 0, zeros = 0, i;
	XXH128_hash_t *set;
	uint8_t *page = aligned_alloc(PAGE, PAGE);
	unsigned int v;

	while (cap < total * 2)
		cap <<= 1;
	set = calloc(cap, sizeof(*set));
	if (!set || !page) {
		free(set);
		free(page);
		return 0;
	}
	for (v = 0; v < o->vms; v++) {
		for (i = 0; i < npages; i++) {
			XXH128_hash_t h;
			uint64_t k;
			bool z = true;
			size_t j;

			make_page(o, c, v, i, page);
			for (j = 0; j < PAGE && z; j++)
				z = !page[j];
			if (z) {
				zeros++;
				continue;
			}
			h = XXH3_128bits(page, PAGE);
			h.low64 |= 1;
			for (k = h.low64 & (cap - 1);; k = (k + 1) & (cap - 1)) {
				if (!set[k].low64) {
					set[k] = h;
					distinct++;
					break;
				}
				if (set[k].low64 == h.low64 && set[k].high64 == h.high64)
					break;
			}
		}
	}
	free(set);
	free(page);
	return (total - distinct - (zero_free ? 0 : (zeros ? 1 : 0))) * PAGE;
}

/* ------------------------------------------------------------------------ */
/* Phases */

static void sample(struct phase *ph, double t0, uint64_t saved, uint64_t goal)
{
	double t = now_s() - t0;

	if (ph->ns < MAX_SAMPLES)
		ph->s[ph->ns++] = (struct sample){ t, saved };
	if (ph->t90 < 0 && saved >= goal * 9 / 10)
		ph->t90 = t;
	ph->saved = saved;
}

/* Stop once the savings held still for 5 s after 99% of the goal, or at the time limit. */
static bool settled(const struct phase *ph, uint64_t goal, double limit)
{
	unsigned int i;

	if (interrupted || (ph->ns && ph->s[ph->ns - 1].t >= limit))
		return true;
	if (!ph->ns || ph->saved < goal * 99 / 100)
		return false;
	for (i = ph->ns; i-- > 0;) {
		if (ph->s[i].saved != ph->saved)
			return ph->s[ph->ns - 1].t - ph->s[i].t >= 5.0;
	}
	return false;
}

static int run_ovc(const struct opts *o, const struct corpus *c, uint64_t npages, uint64_t goal,
		   struct phase *ph)
{
	struct ovc_host_config hc;
	struct ovc_dedup_config dc;
	struct ovc_vm *vms[MAX_VMS] = { 0 };
	struct ovc_host *host;
	struct ovc_mem_stats ms;
	struct ovc_dedup_stats ds;
	uint64_t base = 0, i;
	unsigned int v;
	double t0;
	int ret = 0;

	ovc_host_config_init(&hc);
	host = ovc_host_new(&hc);
	if (!host)
		return -errno;
	ovc_dedup_config_init(&dc);
	dc.cpu_permille = o->permille;
	dc.max_map_count = o->max_map_count;
	dc.vma_budget = o->max_map_count ? o->max_map_count / 2 : 0;
	for (v = 0; v < o->vms; v++) {
		char name[16];
		void *hva;

		snprintf(name, sizeof(name), "vm%u", v);
		vms[v] = ovc_vm_new(host, name);
		if (!vms[v] || ovc_vm_add_ram(vms[v], 0, npages * PAGE, &hva)) {
			ret = -ENOMEM;
			goto out;
		}
		for (i = 0; i < npages; i++)
			make_page(o, c, v, i, (uint8_t *)hva + i * PAGE);
		ovc_vm_get_mem_stats(vms[v], &ms);
		base += ms.host_bytes;
	}
	ret = ovc_host_dedup_setup(host, &dc, true);
	if (ret)
		goto out;
	t0 = now_s();
	for (v = 0; v < o->vms; v++) {
		/* One tenant: KSM knows no tenants, so compare like with like. */
		if ((ret = ovc_vm_set_dedup(vms[v], true)) ||
		    (ret = ovc_vm_set_dedup_group(vms[v], "bench")))
			goto out;
	}
	do {
		uint64_t held = 0, sharing = 0, attributed = 0;

		usleep(250000);
		for (v = 0; v < o->vms; v++) {
			ovc_vm_get_mem_stats(vms[v], &ms);
			ovc_vm_get_dedup_stats(vms[v], &ds);
			held += ms.host_bytes;
			sharing += ds.sharing;
			attributed += ds.saved_bytes;
		}
		/*
		 * The VMs no longer hold base - held; the pool holds one page per
		 * content, i.e. what the sharers map less what is attributed saved.
		 */
		sample(ph, t0, base - held - (sharing * PAGE - attributed), goal);
	} while (!settled(ph, goal, o->seconds));
	ph->wall_s = now_s() - t0;
	for (v = 0; v < o->vms; v++) {
		ovc_vm_get_dedup_stats(vms[v], &ds);
		ph->cpu_s += (double)ds.cpu_ns / 1e9;
		ph->scanned_pages += ds.scanned;
		ph->vmas += ds.vmas;
	}
out:
	for (v = 0; v < o->vms; v++) {
		if (vms[v] && ovc_vm_destroy(vms[v]) && !ret)
			ret = -EBUSY;
	}
	if (ovc_host_destroy(host) && !ret)
		ret = -EBUSY;
	return ret;
}

static int run_ksm(const struct opts *o, const struct corpus *c, uint64_t npages, uint64_t goal,
		   unsigned int pages_to_scan, struct phase *ph)
{
	uint64_t bytes = (uint64_t)o->vms * npages * PAGE, base_sharing, base_scanned, i;
	double t0, cpu0;
	char val[32];
	uint8_t *mem;
	unsigned int v;
	int ret;

	mem = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		return -errno;
	madvise(mem, bytes, MADV_NOHUGEPAGE);
	for (v = 0; v < o->vms; v++) {
		for (i = 0; i < npages; i++)
			make_page(o, c, v, i, mem + ((uint64_t)v * npages + i) * PAGE);
	}
	snprintf(val, sizeof(val), "%u", pages_to_scan);
	if ((ret = ksm_set("pages_to_scan", val)) || (ret = ksm_set("sleep_millisecs", "20")))
		goto out;
	ksm_flush();
	base_sharing = read_u64(KSM "pages_sharing");
	base_scanned = read_u64(KSM "pages_scanned");
	if (madvise(mem, bytes, MADV_MERGEABLE) < 0) {
		ret = -errno;
		goto out;
	}
	cpu0 = ksmd_cpu_s();
	t0 = now_s();
	if ((ret = ksm_set("run", "1")))
		goto out;
	do {
		usleep(250000);
		sample(ph, t0, (read_u64(KSM "pages_sharing") - base_sharing) * PAGE, goal);
	} while (!settled(ph, goal, o->seconds));
	ph->wall_s = now_s() - t0;
	ph->cpu_s = ksmd_cpu_s() - cpu0;
	ph->scanned_pages = read_u64(KSM "pages_scanned") - base_scanned;
	ret = 0;
out:
	madvise(mem, bytes, MADV_UNMERGEABLE);
	munmap(mem, bytes);
	ksm_flush();
	return ret;
}

/* ------------------------------------------------------------------------ */
/* Report */

static double per_gib(const struct phase *ph)
{
	double gib = (double)ph->scanned_pages * PAGE / (double)(1ULL << 30);

	return gib > 0 ? ph->cpu_s / gib : 0;
}

static void print_phase(const struct phase *ph, uint64_t goal)
{
	unsigned int i, step = ph->ns > 20 ? ph->ns / 20 : 1;

	printf("%-12s saved %7.1f MiB (%5.1f%% of achievable)  90%% at %6.1f s  cpu %.2f s (%.2f%% of a core)  %.3f cpu-s/GiB scanned",
	       ph->name, (double)ph->saved / 1048576.0, goal ? 100.0 * (double)ph->saved / (double)goal : 0,
	       ph->t90, ph->cpu_s, ph->wall_s > 0 ? 100.0 * ph->cpu_s / ph->wall_s : 0, per_gib(ph));
	if (ph->vmas)
		printf("  vmas %" PRIu64, ph->vmas);
	printf("\n  over time (s: MiB):");
	for (i = 0; i < ph->ns; i += step)
		printf(" %.0f:%.0f", ph->s[i].t, (double)ph->s[i].saved / 1048576.0);
	printf("\n");
}

static void put_phase(json_t *j, const char *key, const struct phase *ph)
{
	char k[96];

#define PUT(name, val) do { snprintf(k, sizeof(k), "%s.%s", key, name); \
	json_object_set_new(j, k, val); } while (0)
	PUT("saved_bytes", json_integer((json_int_t)ph->saved));
	PUT("time_to_90pct_s", json_real(ph->t90));
	PUT("cpu_s", json_real(ph->cpu_s));
	PUT("cpu_pct", json_real(ph->wall_s > 0 ? 100.0 * ph->cpu_s / ph->wall_s : 0));
	PUT("cpu_s_per_gib", json_real(per_gib(ph)));
	PUT("scanned_pages", json_integer((json_int_t)ph->scanned_pages));
	PUT("wall_s", json_real(ph->wall_s));
	if (ph->vmas)
		PUT("vmas", json_integer((json_int_t)ph->vmas));
#undef PUT
}

static double ratio(double a, double b)
{
	return b > 0 ? a / b : 0;
}

static void usage(FILE *out)
{
	fprintf(out,
"usage: dedup-vs-ksm [--corpus DIR] [--vms N] [--mib-per-vm M] [--perturb F]\n"
"                    [--zero F] [--unique F] [--seconds S] [--permille P]\n"
"                    [--max-map-count N] [--no-ksm] [--json FILE]\n"
"Loads DIR's files as guest RAM of N VMs (each VM's copy with a fraction F of\n"
"pages perturbed, plus zero and unique pages), then measures ovc sharing on\n"
"memfd RAM and KSM on an anonymous MADV_MERGEABLE copy: ksmd at its defaults\n"
"and tuned to ovc's CPU. KSM settings are restored on exit.\n");
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "corpus", required_argument, NULL, 'c' },
		{ "vms", required_argument, NULL, 'n' },
		{ "mib-per-vm", required_argument, NULL, 'm' },
		{ "perturb", required_argument, NULL, 'p' },
		{ "zero", required_argument, NULL, 'z' },
		{ "unique", required_argument, NULL, 'u' },
		{ "seconds", required_argument, NULL, 's' },
		{ "permille", required_argument, NULL, 'P' },
		{ "max-map-count", required_argument, NULL, 'M' },
		{ "no-ksm", no_argument, NULL, 'K' },
		{ "json", required_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct opts o = {
		.corpus = "/usr/lib/x86_64-linux-gnu", .vms = 4, .mib = 64,
		.perturb = 0.05, .zero = 0.10, .unique = 0.05, .seconds = 120,
		.permille = 20, .max_map_count = 262144,
	};
	static struct phase ovc, ksm_a, ksm_b;
	struct sigaction sa = { .sa_handler = on_signal };
	struct corpus c = { 0 };
	uint64_t npages, goal_ovc, goal_ksm;
	unsigned int tuned_pts = 0;
	char *end;
	int opt, ret = 0;

	while ((opt = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		errno = 0;
		switch (opt) {
		case 'c': o.corpus = optarg; break;
		case 'n': o.vms = (unsigned int)strtoul(optarg, &end, 10); break;
		case 'm': o.mib = strtoull(optarg, &end, 10); break;
		case 'p': o.perturb = strtod(optarg, &end); break;
		case 'z': o.zero = strtod(optarg, &end); break;
		case 'u': o.unique = strtod(optarg, &end); break;
		case 's': o.seconds = strtod(optarg, &end); break;
		case 'P': o.permille = (unsigned int)strtoul(optarg, &end, 10); break;
		case 'M': o.max_map_count = strtoull(optarg, &end, 10); break;
		case 'K': o.no_ksm = true; end = (char *)""; break;
		case 'j': o.json = optarg; end = (char *)""; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
		if (errno || *end) {
			fprintf(stderr, "dedup-vs-ksm: bad number: %s\n", optarg);
			return 2;
		}
	}
	if (o.vms < 1 || o.vms > MAX_VMS || o.mib < 1 || o.mib > 65536 || o.perturb < 0 ||
	    o.zero < 0 || o.unique < 0 || o.perturb > 1 || o.zero + o.unique > 1 ||
	    o.seconds <= 0 || o.permille < 1 || o.permille > 1000) {
		fprintf(stderr, "dedup-vs-ksm: --vms 1..%d, --mib-per-vm 1..65536, fractions 0..1, --permille 1..1000\n",
			MAX_VMS);
		return 2;
	}
	npages = o.mib << 20 >> 12;
	c.data = malloc(npages * PAGE);
	if (!c.data)
		return 1;
	load_dir(o.corpus, &c, npages, 0);
	if (!c.pages) {
		fprintf(stderr, "dedup-vs-ksm: no readable files under %s\n", o.corpus);
		return 1;
	}
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);

	goal_ovc = achievable(&o, &c, npages, true);
	goal_ksm = achievable(&o, &c, npages, false);
	printf("dedup-vs-ksm: %u VMs x %" PRIu64 " MiB from %s (%" PRIu64 " corpus pages), perturb %.2f zero %.2f unique %.2f\n",
	       o.vms, o.mib, o.corpus, c.pages, o.perturb, o.zero, o.unique);
	printf("achievable: ovc %.1f MiB, ksm %.1f MiB of %.1f MiB\n", (double)goal_ovc / 1048576.0,
	       (double)goal_ksm / 1048576.0, (double)(o.vms * o.mib));

	ovc.name = "ovc";
	ovc.t90 = ksm_a.t90 = ksm_b.t90 = -1;
	ret = run_ovc(&o, &c, npages, goal_ovc, &ovc);
	if (ret) {
		fprintf(stderr, "dedup-vs-ksm: ovc run: %s\n", strerror(-ret));
		goto out;
	}
	print_phase(&ovc, goal_ovc);

	if (!o.no_ksm && !interrupted) {
		ret = ksm_save();
		if (ret) {
			fprintf(stderr, "dedup-vs-ksm: KSM not available (%s): skipping it\n", strerror(-ret));
			ret = 0;
			goto report;
		}
		ksm_a.name = "ksm_default";
		ret = run_ksm(&o, &c, npages, goal_ksm, 100, &ksm_a);
		if (ret)
			goto out;
		print_phase(&ksm_a, goal_ksm);
		/* ksmd's CPU grows with pages per wake-up: scale it to ovc's share of a core. */
		if (!interrupted && ksm_a.cpu_s > 0 && ovc.wall_s > 0) {
			double want = ovc.cpu_s / ovc.wall_s, had = ksm_a.cpu_s / ksm_a.wall_s;

			tuned_pts = (unsigned int)(100.0 * want / had + 0.5);
			if (tuned_pts < 1)
				tuned_pts = 1;
			ksm_b.name = "ksm_tuned";
			ret = run_ksm(&o, &c, npages, goal_ksm, tuned_pts, &ksm_b);
			if (ret)
				goto out;
			printf("(ksm_tuned: pages_to_scan %u)\n", tuned_pts);
			print_phase(&ksm_b, goal_ksm);
		}
	}
report:
	printf("ratios: time to 90%% ksm_tuned/ovc %.1fx, ksm_default/ovc %.1fx; cpu per GiB ksm_default/ovc %.1fx; saved ovc/ksm_default %.3f\n",
	       ratio(ksm_b.t90, ovc.t90), ratio(ksm_a.t90, ovc.t90), ratio(per_gib(&ksm_a), per_gib(&ovc)),
	       ratio((double)ovc.saved, (double)ksm_a.saved));
	if (o.json) {
		json_t *j = json_object();

		json_object_set_new(j, "bench", json_string("dedup-vs-ksm"));
		json_object_set_new(j, "vms", json_integer(o.vms));
		json_object_set_new(j, "ram_bytes", json_integer((json_int_t)(o.vms * o.mib << 20)));
		json_object_set_new(j, "ovc.achievable_bytes", json_integer((json_int_t)goal_ovc));
		json_object_set_new(j, "ksm.achievable_bytes", json_integer((json_int_t)goal_ksm));
		put_phase(j, "ovc", &ovc);
		if (ksm_a.name)
			put_phase(j, "ksm_default", &ksm_a);
		if (ksm_b.name) {
			put_phase(j, "ksm_tuned", &ksm_b);
			json_object_set_new(j, "ksm_tuned.pages_to_scan", json_integer(tuned_pts));
			json_object_set_new(j, "ratio.time_to_90pct_ksm_tuned_over_ovc",
					    json_real(ratio(ksm_b.t90, ovc.t90)));
		}
		json_object_set_new(j, "ratio.time_to_90pct_ksm_default_over_ovc",
				    json_real(ratio(ksm_a.t90, ovc.t90)));
		json_object_set_new(j, "ratio.cpu_per_gib_ksm_default_over_ovc",
				    json_real(ratio(per_gib(&ksm_a), per_gib(&ovc))));
		json_object_set_new(j, "ratio.saved_ovc_over_ksm_default",
				    json_real(ratio((double)ovc.saved, (double)ksm_a.saved)));
		if (json_dump_file(j, o.json, JSON_INDENT(2) | JSON_SORT_KEYS)) {
			fprintf(stderr, "dedup-vs-ksm: cannot write %s\n", o.json);
			ret = -EIO;
		}
		json_decref(j);
	}
out:
	ksm_restore();
	free(c.data);
	if (interrupted)
		fprintf(stderr, "dedup-vs-ksm: interrupted; settings restored\n");
	return ret ? 1 : 0;
}
